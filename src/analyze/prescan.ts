/**
 * The attribution's pre-pass: one unordered scan of a session's events (rowid order, no sort) that gathers
 * what the ordered sweep needs before it starts, and what later stages would each have scanned for:
 *  - copy rates: per thread and synchronous copy/memset op (and direction), the fastest ns per byte;
 *  - fastest drains: per thread and drain op, the fastest call (an empty-queue return);
 *  - first launches: per thread, launch op and kernel, the first launch's excess over the fastest later one;
 *  - per-op event counts of the whole session (events per source; detectors skip the scans of ops that
 *    never occur: at 10M events each scan costs about a second).
 *
 * These were three queries (two grouped in SQLite, one iterated in JS) plus a grouped join for the counts;
 * the rows now reach JS as the arguments of a user-defined function (better-sqlite3 calls it once per row,
 * about 0.3 µs, against about 1.3 µs per row through iterate()). Memory: one entry per (thread, op) and per
 * kernel, never per event.
 */
import type { Db } from '../store/db.js';
import { OP_BY_CODE } from '../common/ops.js';
import { roleOf } from './timeline.js';

/** below this bandwidth a copy's best observed rate is not its own transfer rate (PCIe 3 x16 moves ~12 GB/s) */
export const MIN_COPY_GBPS = 1;

export interface Prescan {
  /** tid -> `op:direction` -> fastest ns per byte (only rates of at least MIN_COPY_GBPS) */
  rates: Map<number, Map<string, number>>;
  /** tid -> drain op -> fastest duration */
  fastest: Map<number, Map<number, number>>;
  /** event id of a kernel's first launch -> its excess over the kernel's fastest launch (ns) */
  first: Map<number, number>;
  /** op code -> events of the session */
  opCounts: Map<number, number>;
}

/** what the scan does with a row of an op: bit 1 copy rate, 2 fastest drain, 4 first launch (shared with stream.ts) */
export const RATE = 1;
export const FASTEST = 2;
export const LAUNCH = 4;
export interface OpPlan {
  what: number;
  /** argument slots (0..3, -1 none) */
  bytes: number;
  dir: number;
  func: number;
}
/** per op code: what a row of that op teaches (undefined: nothing) */
export const PLAN: (OpPlan | undefined)[] = [];
for (const o of OP_BY_CODE.values()) {
  let what = 0;
  const bytes = o.args.indexOf('bytes' as never);
  if (o.blocking && (o.kind === 'copy' || o.kind === 'memset') && bytes >= 0) what |= RATE;
  const r = roleOf(o);
  if (r === 'drain' || r === 'submit_drain') what |= FASTEST;
  const func = o.args.indexOf('func' as never);
  if (o.kind === 'launch' && func >= 0) what |= LAUNCH;
  // memsets have no direction: their rate key has none (copyRates grouped them under a NULL direction)
  if (what) PLAN[o.code] = { what, bytes, func, dir: o.kind === 'copy' ? o.args.indexOf('direction' as never) : -1 };
}

interface Launch {
  id: number;
  ts: number;
  dur: number;
  min: number;
  n: number;
}

function sub<K, V>(m: Map<number, Map<K, V>>, k: number): Map<K, V> {
  let x = m.get(k);
  if (!x) m.set(k, (x = new Map()));
  return x;
}

export function prescan(db: Db, sessionId: number): Prescan {
  const rates = new Map<number, Map<string, number>>();
  const fastest = new Map<number, Map<number, number>>();
  const launches = new Map<number, Map<number, Map<number | null, Launch>>>();
  const counts: number[] = [];
  const odd = new Map<number, number>();
  const a: (number | null)[] = [null, null, null, null];
  const row = (id: number, ts: number, dur: number, tid: number, op: number, a0: number | null, a1: number | null, a2: number | null, a3: number | null): null => {
    if (Number.isInteger(op) && op >= 0 && op < 4096) counts[op] = (counts[op] ?? 0) + 1;
    else odd.set(op, (odd.get(op) ?? 0) + 1);
    const p = Number.isInteger(op) && op >= 0 ? PLAN[op] : undefined;
    if (p === undefined) return null;
    a[0] = a0;
    a[1] = a1;
    a[2] = a2;
    a[3] = a3;
    if (p.what & RATE) {
      const bytes = a[p.bytes];
      if (dur > 0 && bytes !== null && bytes > 0) {
        const d = p.dir >= 0 ? a[p.dir] : null;
        const key = `${op}:${d !== null && d >= 0 && d <= 4 ? d : ''}`;
        const rate = dur / bytes;
        const m = sub(rates, tid);
        const was = m.get(key);
        if (was === undefined || rate < was) m.set(key, rate);
      }
    }
    if (p.what & FASTEST) {
      const m = sub(fastest, tid);
      const was = m.get(op);
      if (was === undefined || dur < was) m.set(op, dur);
    }
    if (p.what & LAUNCH) {
      const f = a[p.func];
      const byTid = sub(launches, tid);
      let byOp = byTid.get(op);
      if (!byOp) byTid.set(op, (byOp = new Map()));
      const x = byOp.get(f);
      if (!x) byOp.set(f, { id, ts, dur, min: dur, n: 1 });
      else {
        x.n++;
        if (dur < x.min) x.min = dur;
        if (ts < x.ts || (ts === x.ts && id < x.id)) {
          x.id = id;
          x.ts = ts;
          x.dur = dur;
        }
      }
    }
    return null;
  };
  db.function('cw_prescan_row', { deterministic: false }, row as (...args: unknown[]) => null);
  db.prepare('SELECT count(cw_prescan_row(id, ts, dur, tid, op, a0, a1, a2, a3)) FROM events WHERE session_id = ?').get(sessionId);

  // slower than MIN_COPY_GBPS even at its best: every call also waited for queued work (or the size is too
  // small for a rate to mean anything), so no own-time estimate
  for (const [tid, m] of rates) {
    for (const [k, r] of m) if (!(r <= 1 / MIN_COPY_GBPS)) m.delete(k);
    if (m.size === 0) rates.delete(tid);
  }
  // the fastest later launch is the fastest overall unless the first one is it, in which case the first shows
  // no excess; a kernel launched once has nothing to compare with
  const first = new Map<number, number>();
  for (const byOp of launches.values()) for (const byF of byOp.values()) for (const x of byF.values()) if (x.n > 1 && x.dur > x.min) first.set(x.id, x.dur - x.min);
  const opCounts = new Map<number, number>();
  for (let op = 0; op < counts.length; op++) if (counts[op]) opCounts.set(op, counts[op]);
  for (const [op, n] of odd) opCounts.set(op, n);
  return { rates, fastest, first, opCounts };
}
