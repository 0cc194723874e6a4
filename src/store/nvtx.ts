/**
 * NVTX ranges read back (v_nvtx_ranges): one range by name, the events inside
 * it, and per-name totals. The view pairs pushes with pops and starts with
 * ends; these readers only select from it and bound the events scan by time
 * through event_spans.
 */
import type { Db } from './db.js';
import { eventIdRange } from './reader.js';

export interface NvtxRange {
  id: number;
  kind: 'push' | 'start';
  pid: number;
  tid: number;
  startNs: number;
  /** null while open at the end of the trace */
  endNs: number | null;
  endId: number | null;
  name: string | null;
  depth: number | null;
}

/** True when the database has the NVTX view (traces recorded before schema v7 do not). */
export function hasNvtx(db: Db): boolean {
  return db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'view' AND name = 'v_nvtx_ranges'").get() !== undefined;
}

/**
 * The range named `name` (exact), of `pid` when given: the first one that ends at or
 * after `atNs` (the one containing it, or the next), else the first of the session.
 */
export function findNvtxRange(db: Db, sessionId: number, name: string, opts: { pid?: number; atNs?: number } = {}): NvtxRange | null {
  if (!hasNvtx(db)) return null;
  const where = ['session_id = ?', 'name = ?', "kind <> 'mark'"];
  const params: (number | string)[] = [sessionId, name];
  if (opts.pid !== undefined) (where.push('pid = ?'), params.push(opts.pid));
  if (opts.atNs !== undefined) (where.push('coalesce(end_ns, 9e18) >= ?'), params.push(opts.atNs));
  const r = db
    .prepare(`SELECT id, kind, pid, tid, start_ns, end_ns, end_id, name, depth FROM v_nvtx_ranges WHERE ${where.join(' AND ')} ORDER BY start_ns, id LIMIT 1`)
    .get(...params) as { id: number; kind: 'push' | 'start'; pid: number; tid: number; start_ns: number; end_ns: number | null; end_id: number | null; name: string | null; depth: number | null } | undefined;
  if (!r) return null;
  return { id: r.id, kind: r.kind, pid: r.pid, tid: r.tid, startNs: r.start_ns, endNs: r.end_ns, endId: r.end_id, name: r.name, depth: r.depth };
}

/**
 * Calls (op < 128: CUDA, NCCL, nested NVTX) made inside a range, in time order: on its
 * thread for a pushed range, in its process for a start/end range (those may end on
 * another thread). The range's own opening and closing calls are left out. Returns up
 * to `limit` raw rows [id, ts, dur, pid, tid, op, ret, a0, a1, a2, a3] and the count.
 */
export function eventsInRange(db: Db, sessionId: number, r: NvtxRange, limit: number): { rows: number[][]; total: number } {
  const end = r.endNs ?? Number.MAX_SAFE_INTEGER;
  const ids = eventIdRange(db, sessionId, r.startNs, end);
  if (!ids) return { rows: [], total: 0 };
  const where = 'id BETWEEN ? AND ? AND session_id = ? AND pid = ? AND op < 128 AND ts >= ? AND ts + dur <= ? AND id <> ? AND id <> ?' + (r.kind === 'push' ? ' AND tid = ?' : '');
  const params = [ids.firstId, ids.lastId, sessionId, r.pid, r.startNs, end, r.id, r.endId ?? -1, ...(r.kind === 'push' ? [r.tid] : [])];
  const total = (db.prepare(`SELECT count(*) AS n FROM events WHERE ${where}`).get(...params) as { n: number }).n;
  const rows = db.prepare(`SELECT id, ts, dur, pid, tid, op, ret, a0, a1, a2, a3 FROM events WHERE ${where} ORDER BY ts, id LIMIT ?`).raw(true).all(...params, limit) as number[][];
  return { rows, total };
}

export interface NvtxTotal {
  name: string;
  ranges: number;
  totalNs: number;
  maxNs: number;
}

/** Closed ranges per name (push and start kinds), by total time, top `limit` (of one pid / opening tid when given). */
export function nvtxRangeTotals(db: Db, sessionId: number, limit: number, pid?: number, tid?: number): NvtxTotal[] {
  if (!hasNvtx(db)) return [];
  const where = ['session_id = ?', "kind <> 'mark'", 'end_ns IS NOT NULL'];
  const params: number[] = [sessionId];
  if (pid !== undefined) (where.push('pid = ?'), params.push(pid));
  if (tid !== undefined) (where.push('tid = ?'), params.push(tid));
  const rows = db
    .prepare(
      `SELECT coalesce(name, '(registered string)') AS name, count(*) AS ranges, sum(dur_ns) AS total, max(dur_ns) AS mx FROM v_nvtx_ranges
       WHERE ${where.join(' AND ')} GROUP BY 1 ORDER BY total DESC, name LIMIT ?`,
    )
    .all(...params, limit) as { name: string; ranges: number; total: number; mx: number }[];
  return rows.map((r) => ({ name: r.name, ranges: r.ranges, totalNs: r.total, maxNs: r.mx }));
}

/** NVTX messages by nvtx_names id (the a3 of NVTX calls); ids not found are left out. */
export function nvtxNames(db: Db, ids: readonly number[]): Map<number, string> {
  const out = new Map<number, string>();
  if (!ids.length || db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'nvtx_names'").get() === undefined) return out;
  const rows = db.prepare('SELECT id, name FROM nvtx_names WHERE id IN (SELECT value FROM json_each(?))').all(JSON.stringify([...new Set(ids)])) as { id: number; name: string }[];
  for (const r of rows) out.set(r.id, r.name);
  return out;
}
