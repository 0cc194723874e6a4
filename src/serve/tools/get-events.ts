/** get_events: a bounded, compact window of events around an event id or a time. */
import { z } from 'zod';
import { MEMCPY_KIND, NCCL_DATATYPES, NCCL_REDOPS, OP_BY_CODE, OP_BY_NAME, opName } from '../../common/ops.js';
import { NcclPack } from '../../common/wire.js';
import { nvtxNames } from '../../store/nvtx.js';
import { decodeGemm } from '../../common/gemm.js';
import { fitRows, renderTable, type Cell } from '../budget.js';
import { resolveSession, ToolError, type App } from '../context.js';
import { opCode, tableExists } from '../queries.js';
import { eventsInRange, findNvtxRange } from '../../store/nvtx.js';
import { defineTool } from '../tool.js';
import { sessionArg, TableSchema } from './common.js';

const COLUMNS = ['id', 'ts_ns', 'dur_ns', 'pid', 'tid', 'op', 'ret', 'args'];

export const input = z.object({
  session: sessionArg,
  event_id: z.number().int().positive().optional().describe('anchor event'),
  ts_ns: z.number().int().min(0).optional().describe('or anchor time (ns)'),
  range: z.string().max(128).optional().describe('or: calls in this NVTX range'),
  before: z.number().int().min(0).max(50).default(10).describe('events before'),
  after: z.number().int().min(0).max(50).default(10).describe('events after'),
  pid: z.number().int().positive().optional().describe('only this process'),
  tid: z.number().int().positive().optional().describe('only this thread'),
  ops: z.array(z.string().max(64)).max(20).optional().describe('only these op names'),
});

export const output = z.object({
  session: z.number().int(),
  anchor: z.object({ event_id: z.number().int().nullable(), ts_ns: z.number() }),
  range: z
    .object({ name: z.string(), kind: z.string(), pid: z.number().int(), tid: z.number().int(), start_ns: z.number(), end_ns: z.number().nullable(), calls: z.number().int() })
    .optional()
    .describe('the NVTX range whose calls are listed (untrusted name); calls = how many it holds'),
  events: TableSchema.describe('the neighbours in recording order (events.id), sorted by ts; args decoded per op (causeway://ops); off_cpu args: reason, by_pid, waker'),
  truncated: z.boolean().describe('true when the budget cut events at the far ends of the window'),
  untrusted: z.array(z.string()),
});

const REASONS = ['preempted', 'voluntary', 'io_wait'];

type Args = z.infer<typeof input>;

/** range: the calls inside the named NVTX range (the first one ending at or after ts_ns, if given), before + after of them at most. */
function inRange(app: App, session: number, args: Args): { data: z.output<typeof output>; text: string } {
  const db = app.db();
  const r = findNvtxRange(db, session, args.range!, { pid: args.pid, atNs: args.ts_ns });
  if (!r) throw new ToolError('UNKNOWN_RANGE', `no NVTX range named ${JSON.stringify(args.range)} in session ${session}`, "list the names with run_sql: SELECT name, count(*) FROM v_nvtx_ranges GROUP BY name");
  const limit = Math.max(1, args.before + args.after);
  const { rows: raw, total } = eventsInRange(db, session, r, limit);
  const filtered = args.ops?.length ? raw.filter((x) => args.ops!.includes(opName(x[5]!))) : raw;
  const names = namesOf(db, filtered);
  const all = filtered.map((x): Cell[] => [x[0]!, x[1]!, x[2]!, x[3]!, x[4]!, opName(x[5]!), x[6]!, decodeArgs(x[5]!, x.slice(7, 11), names)]);
  const range = { name: r.name ?? '', kind: r.kind, pid: r.pid, tid: r.tid, start_ns: r.startNs, end_ns: r.endNs, calls: total };
  const base = { session, anchor: { event_id: r.id, ts_ns: r.startNs }, range, untrusted: ['range.name', 'events.args'] };
  let rows = all;
  const fits = (x: Cell[][]) => fitRows([x], app.structuredBytes, (y) => ({ ...base, events: { columns: COLUMNS, rows: y[0] ?? [] }, truncated: true })).length === 1;
  while (rows.length > 1 && !fits(rows)) rows = rows.slice(0, -1);
  const truncated = rows.length < total;
  const data = { ...base, events: { columns: COLUMNS, rows }, truncated };
  const span = r.endNs === null ? 'still open at the end' : `${r.endNs - r.startNs} ns`;
  const head = `session ${session}: NVTX range ${JSON.stringify(r.name)} (${r.kind}, pid ${r.pid} tid ${r.tid}, ${span}): ${rows.length} of ${total} calls inside${truncated ? ' (cut: raise before/after, or use run_sql)' : ''}`;
  return { data, text: `${head}\n${renderTable(COLUMNS, rows, app.textBytes - head.length)}` };
}

/** NCCL's packed slot: datatype, reduction, root/peer rank (bpf/events.h CW_NCCL_*). */
function ncclText(v: number): string {
  const lo = v % 0x100000000;
  const redop = (lo >>> 8) & 0xff;
  const parts = [`dtype=${NCCL_DATATYPES[lo & 0xff]?.name ?? lo & 0xff}`];
  if (redop !== NcclPack.NO_REDOP) parts.push(`redop=${NCCL_REDOPS[redop] ?? redop}`);
  if (lo & NcclPack.HAS_PEER) parts.push(`peer=${Math.floor(v / 0x100000000)}`);
  return parts.join(' ');
}

/** NVTX messages of the rows (nvtx_names ids in a3), for the args column. */
function namesOf(db: ReturnType<App['db']>, rows: number[][]): Map<number, string> {
  const ids = rows.filter((r) => OP_BY_CODE.get(r[5]!)?.args[3] === 'name_id' && r[10]).map((r) => r[10]!);
  return ids.length ? nvtxNames(db, ids) : new Map();
}

function decodeArgs(op: number, a: (number | null)[], names?: Map<number, string>): string {
  if (op === 128) return `reason=${REASONS[a[0] ?? 3] ?? 'other'} by_pid=${a[1]} waker=${a[2] || '-'} cpu=${a[3]}`;
  if (op === 134) return `bytes=${a[0]} sector=${a[1]} dev=${a[2]} ${a[3] === 1 ? 'write' : 'read'}`;
  if (op === 130) return `exit_code=${a[0]}`;
  if (op === 131) return `child=${a[0]}${a[1] ? ' thread' : ''}`;
  if (op === 132) return `victim=${a[0]}`;
  if (op === 133) return `pages=${a[0]} window_ns=${a[1]}`;
  if (op === 136) return `pages_reclaimed=${a[0]}`;
  if (op === 138) return `fd=${a[0]} syscall=${a[1]}`;
  const info = OP_BY_CODE.get(op);
  if (!info) return '';
  if (info.args[0] === 'mn') {
    // cuBLAS GEMM: packed slots decoded (common/gemm.ts); unknown fields left out
    const g = decodeGemm(a[0] ?? 0, a[1] ?? 0, a[2] ?? 0, a[3] ?? 0);
    return Object.entries(g)
      .filter(([, v]) => v !== null && v !== false)
      .map(([k, v]) => `${k}=${k === 'stream' ? '0x' + (v as number).toString(16) : v}`)
      .join(' ');
  }
  return info.args
    .map((name, i) => {
      const v = a[i];
      if (!name || v === null || v === undefined) return null;
      if (name === 'dtype_op') return ncclText(v);
      if (name === 'name_id') return v ? `name=${JSON.stringify(names?.get(v) ?? '?')}` : null;
      if ((name === 'domain' || name === 'string_handle') && !v) return null;
      return `${name}=${name === 'direction' ? (MEMCPY_KIND[v] ?? v) : /ptr|func|stream|event|dst|src|comm|domain|handle/.test(name) ? '0x' + v.toString(16) : v}`;
    })
    .filter(Boolean)
    .join(' ');
}

export const tool = defineTool({
  name: 'get_events',
  title: 'Events around a point',
  description: 'Use to see raw events around a slow call (event_id/ts_ns) or the calls inside an NVTX range.',
  input,
  output,
  run(args, app) {
    const db = app.db();
    const s = resolveSession(db, args.session);
    if (args.range !== undefined) return inRange(app, s.id, args);
    let anchorTs: number;
    let anchorId: number | null = null;
    if (args.event_id !== undefined) {
      const row = db.prepare('SELECT ts FROM events WHERE session_id = ? AND id = ?').get(s.id, args.event_id) as { ts: number } | undefined;
      if (!row) throw new ToolError('UNKNOWN_EVENT', `event ${args.event_id} is not in session ${s.id}`, 'use an event id from get_causal_chains evidence or run_sql (v_cuda_calls.id), or pass ts_ns');
      anchorTs = row.ts;
      anchorId = args.event_id;
    } else if (args.ts_ns !== undefined) {
      anchorTs = args.ts_ns;
    } else {
      throw new ToolError('BAD_ARGUMENTS', 'give event_id or ts_ns', 'e.g. {"event_id": 1234} or {"ts_ns": 1500000000}');
    }
    const where = ['session_id = ?'];
    const params: number[] = [s.id];
    if (args.pid !== undefined) (where.push('pid = ?'), params.push(args.pid));
    if (args.tid !== undefined) (where.push('tid = ?'), params.push(args.tid));
    if (args.ops?.length) {
      // host events by their op names (ops.ts), CUDA calls through opCode (which explains an unknown name)
      const codes = args.ops.map((n) => {
        const o = OP_BY_NAME.get(n);
        return o?.kind === 'host' ? o.code : opCode(n);
      });
      where.push(`op IN (${codes.join(',')})`);
    }
    const w = where.join(' AND ');
    // Window by recording order (events.id: time order up to the drain interval), which the
    // primary key serves without a scan; shown sorted by ts. A time anchor is mapped to the
    // first event at or after it through event_spans when the writer kept them.
    let fromId = anchorId;
    if (fromId === null) {
      const span = tableExists(db, 'event_spans')
        ? (db.prepare('SELECT first_id, last_id FROM event_spans WHERE session_id = ? AND ts_max >= ? ORDER BY first_id LIMIT 1').get(s.id, anchorTs) as { first_id: number; last_id: number } | undefined)
        : undefined;
      const hit = span
        ? (db.prepare('SELECT min(id) AS id FROM events WHERE id BETWEEN ? AND ? AND session_id = ? AND ts >= ?').get(span.first_id, span.last_id, s.id, anchorTs) as { id: number | null })
        : (db.prepare('SELECT id FROM events WHERE session_id = ? AND ts >= ? ORDER BY ts, id LIMIT 1').get(s.id, anchorTs) as { id: number } | undefined);
      fromId = hit?.id ?? (db.prepare('SELECT COALESCE(max(id), 0) + 1 AS id FROM events').get() as { id: number }).id;
    }
    const sel = 'SELECT id, ts, dur, pid, tid, op, ret, a0, a1, a2, a3 FROM events';
    const beforeRows = db.prepare(`${sel} WHERE ${w} AND id < ? ORDER BY id DESC LIMIT ?`).raw(true).all(...params, fromId, args.before) as number[][];
    const afterRows = db.prepare(`${sel} WHERE ${w} AND id >= ? ORDER BY id LIMIT ?`).raw(true).all(...params, fromId, args.after + (anchorId !== null ? 1 : 0)) as number[][];
    const window = [...beforeRows.reverse(), ...afterRows].sort((a, b) => a[1] - b[1] || a[0] - b[0]);
    const names = namesOf(db, window);
    const all = window.map((r): Cell[] => [r[0], r[1], r[2], r[3], r[4], opName(r[5]), r[6], decodeArgs(r[5], r.slice(7, 11), names)]);
    // trim the far ends first, keeping the anchor in the middle
    const base = { session: s.id, anchor: { event_id: anchorId, ts_ns: anchorTs }, untrusted: names.size ? ['events.args'] : ([] as string[]) };
    let rows = all;
    const fits = (r: Cell[][]) => fitRows([r], app.structuredBytes, (x) => ({ ...base, events: { columns: COLUMNS, rows: x[0] ?? [] }, truncated: true })).length === 1;
    while (rows.length > 1 && !fits(rows)) rows = rows.slice(1, rows.length - 1);
    const truncated = rows.length < all.length;
    const data = { ...base, events: { columns: COLUMNS, rows }, truncated };
    const head = `session ${s.id}: ${rows.length} events around ${anchorId !== null ? `event ${anchorId}` : `ts ${anchorTs} ns`}${truncated ? ' (window cut to the budget)' : ''}`;
    return { data, text: `${head}\n${renderTable(COLUMNS, rows, app.textBytes - head.length)}` };
  },
});
