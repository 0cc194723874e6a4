/**
 * Per-op lookups of the attribution sweep, as arrays indexed by op code and interned key strings. The sweep
 * asks these for every CUDA call; a Map lookup with a key string built per call (`op:name`, `op:direction`)
 * cost more than the rest of the call's work (profile of explain on a 1M-event trace).
 */
import { OP_BY_CODE, type OpInfo } from '../common/ops.js';

export const OP_INFO: (OpInfo | undefined)[] = [];
for (const o of OP_BY_CODE.values()) OP_INFO[o.code] = o;

function slotTable(name: string): Int8Array {
  const t = new Int8Array(OP_INFO.length).fill(-1);
  for (const o of OP_BY_CODE.values()) t[o.code] = o.args.indexOf(name as never);
  return t;
}
export const SLOT_DIRECTION = slotTable('direction');
export const SLOT_BYTES = slotTable('bytes');
export const SLOT_STREAM = slotTable('stream');
export const SLOT_EVENT = slotTable('event');
export const SLOT_GRAPH_EXEC = slotTable('graph_exec');
export const SLOT_FUNC = slotTable('func');

/** The value in an op's argument slot (0 for a NULL column), or null when the op has no such argument. */
export function slot(t: Int8Array, op: number, a: number[]): number | null {
  const i = Number.isInteger(op) && op >= 0 && op < t.length ? t[op] : -1;
  return i < 0 ? null : a[i];
}

const DIRS: Record<number, string> = { 0: 'HostToHost', 1: 'HostToDevice', 2: 'DeviceToHost', 3: 'DeviceToDevice', 4: 'Default' };

/** Per-op aggregate key: the API name, with the copy direction for copies. */
export function opKey(op: number, direction: number | null): string {
  const name = OP_BY_CODE.get(op)?.name ?? `op_${op}`;
  return direction === null ? name : `${name}(${DIRS[direction] ?? direction})`;
}

/** index of (op, direction 0..4 or null) in the interned-key arrays, or -1 (not interned: computed each time) */
export function keyIndex(op: number, direction: number | null): number {
  if (!Number.isInteger(op) || op < 0 || op >= 1024) return -1;
  if (direction === null) return op * 8 + 7;
  return Number.isInteger(direction) && direction >= 0 && direction <= 4 ? op * 8 + direction : -1;
}
const KEYS: string[] = [];
const RATE_KEYS: string[] = [];

/** opKey, interned. */
export function keyOf(op: number, direction: number | null): string {
  const i = keyIndex(op, direction);
  return i < 0 ? opKey(op, direction) : (KEYS[i] ??= opKey(op, direction));
}

/** The copy-rate key of an op and direction (`op:direction`, `op:` without one), interned. */
export function rateKey(op: number, direction: number | null): string {
  const i = keyIndex(op, direction);
  return i < 0 ? `${op}:${direction ?? ''}` : (RATE_KEYS[i] ??= `${op}:${direction ?? ''}`);
}
