/**
 * Read queries shared by the tools. All take the read-only connection and a
 * session id; times are ns (session-relative timestamps, durations).
 */
import { OP_BY_NAME, opName } from '../common/ops.js';
import type { Db } from '../store/db.js';
import { ToolError } from './context.js';
import { hasAggregates, hostTotals, opStats as storeOpStats } from '../store/reader.js';

export interface OpStat {
  op: string;
  calls: number;
  errors: number;
  total_ns: number;
  p50_ns: number;
  p95_ns: number;
  p99_ns: number;
  max_ns: number;
}

/** Nearest-rank percentile of an ascending array: the value at rank ceil(p*n). */
export function nearestRank(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return 0;
  const rank = Math.max(1, Math.ceil(p * sorted.length));
  return sorted[rank - 1];
}

export function opCode(name: string): number {
  const info = OP_BY_NAME.get(name);
  if (!info || info.code >= 128) {
    const valid = [...OP_BY_NAME.values()].filter((o) => o.code < 128).map((o) => o.name);
    throw new ToolError('UNKNOWN_OP', `${name} is not a traced CUDA op`, `use one of: ${valid.join(', ')} (causeway://ops explains each)`, { valid_ops: valid });
  }
  return info.code;
}

/**
 * Per-op latency statistics. Sessions written by the trace writer carry
 * per-second aggregates with mergeable DDSketches: read those (milliseconds
 * on 10M events; percentiles within 1% relative error, counts/totals/max
 * exact). Otherwise fall back to an exact pass over the raw events.
 */
export function opStats(db: Db, sessionId: number, filter: { pid?: number; op?: string } = {}): OpStat[] {
  if (hasAggregates(db, sessionId)) {
    const code = filter.op !== undefined ? opCode(filter.op) : undefined;
    return storeOpStats(db, sessionId, { pid: filter.pid })
      .filter((o) => code === undefined || o.opCode === code)
      .map((o) => ({ op: o.op, calls: o.count, errors: o.errors, total_ns: o.totalNs, p50_ns: o.p50Ns, p95_ns: o.p95Ns, p99_ns: o.p99Ns, max_ns: o.maxNs }));
  }
  return exactOpStats(db, sessionId, filter);
}

/** Exact nearest-rank statistics over the raw events (about a second per 1M events). */
export function exactOpStats(db: Db, sessionId: number, filter: { pid?: number; op?: string } = {}): OpStat[] {
  const where = ['session_id = ?', 'op < 128'];
  const params: number[] = [sessionId];
  if (filter.pid !== undefined) {
    where.push('pid = ?');
    params.push(filter.pid);
  }
  if (filter.op !== undefined) {
    where.push('op = ?');
    params.push(opCode(filter.op));
  }
  const byOp = new Map<number, { durs: number[]; errors: number; total: number }>();
  const stmt = db.prepare(`SELECT op, dur, ret FROM events WHERE ${where.join(' AND ')}`).raw(true);
  for (const [op, dur, ret] of stmt.iterate(...params) as Iterable<[number, number, number]>) {
    let s = byOp.get(op);
    if (!s) byOp.set(op, (s = { durs: [], errors: 0, total: 0 }));
    s.durs.push(dur);
    s.total += dur;
    if (ret !== 0) s.errors++;
  }
  const out: OpStat[] = [];
  for (const [op, s] of byOp) {
    const sorted = Float64Array.from(s.durs).sort();
    out.push({
      op: opName(op),
      calls: sorted.length,
      errors: s.errors,
      total_ns: s.total,
      p50_ns: nearestRank(sorted, 0.5),
      p95_ns: nearestRank(sorted, 0.95),
      p99_ns: nearestRank(sorted, 0.99),
      max_ns: sorted[sorted.length - 1],
    });
  }
  out.sort((a, b) => b.total_ns - a.total_ns || a.op.localeCompare(b.op));
  return out;
}

export function sumDur(db: Db, sessionId: number, op: number, pid?: number): number {
  if ((op === 128 || op === 134) && hasAggregates(db, sessionId)) {
    const t = hostTotals(db, sessionId, pid);
    return op === 128 ? t.offCpuNs : t.ioNs;
  }
  const row = db
    .prepare(`SELECT COALESCE(SUM(dur), 0) AS s FROM events WHERE session_id = ? AND op = ?${pid !== undefined ? ' AND pid = ?' : ''}`)
    .get(...(pid !== undefined ? [sessionId, op, pid] : [sessionId, op])) as { s: number };
  return row.s;
}

export function tableExists(db: Db, name: string): boolean {
  return db.prepare("SELECT 1 FROM sqlite_master WHERE type IN ('table','view') AND name = ?").get(name) !== undefined;
}
