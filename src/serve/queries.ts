/**
 * Read queries shared by the tools. All take the read-only connection and a
 * session id; times are ns (session-relative timestamps, durations).
 */
import { OP_BY_NAME } from '../common/ops.js';
import { MAX_CUDA_OP, Op } from '../common/wire.js';
import type { Db } from '../store/db.js';
import { ToolError } from './context.js';
import { cudaOpCode, hasAggregates, hostTotals, opStats as storeOpStats } from '../store/reader.js';

/** An op's statistics as the tools print them (snake_case JSON of store/reader OpStat). */
export interface OpStatJson {
  op: string;
  calls: number;
  errors: number;
  total_ns: number;
  p50_ns: number;
  p95_ns: number;
  p99_ns: number;
  max_ns: number;
}

export function opCode(name: string): number {
  const code = cudaOpCode(name);
  if (code === undefined) {
    const valid = [...OP_BY_NAME.values()].filter((o) => o.code <= MAX_CUDA_OP).map((o) => o.name);
    throw new ToolError('UNKNOWN_OP', `${name} is not a traced CUDA op`, `use one of: ${valid.join(', ')} (causeway://ops explains each)`, { valid_ops: valid });
  }
  return code;
}

/** Per-op latency statistics (store/reader opStats: the aggregates' sketches, else an exact pass over the events). */
export function opStats(db: Db, sessionId: number, filter: { pid?: number; op?: string } = {}): OpStatJson[] {
  const code = filter.op !== undefined ? opCode(filter.op) : undefined;
  return storeOpStats(db, sessionId, { pid: filter.pid, op: code }).map((o) => ({
    op: o.op,
    calls: o.count,
    errors: o.errors,
    total_ns: o.totalNs,
    p50_ns: o.p50Ns,
    p95_ns: o.p95Ns,
    p99_ns: o.p99Ns,
    max_ns: o.maxNs,
  }));
}

export function sumDur(db: Db, sessionId: number, op: number, pid?: number): number {
  if ((op === Op.OFF_CPU || op === Op.BLOCK_IO) && hasAggregates(db, sessionId)) {
    const t = hostTotals(db, sessionId, pid);
    return op === Op.OFF_CPU ? t.offCpuNs : t.ioNs;
  }
  const row = db
    .prepare(`SELECT COALESCE(SUM(dur), 0) AS s FROM events WHERE session_id = ? AND op = ?${pid !== undefined ? ' AND pid = ?' : ''}`)
    .get(...(pid !== undefined ? [sessionId, op, pid] : [sessionId, op])) as { s: number };
  return row.s;
}

export function tableExists(db: Db, name: string): boolean {
  return db.prepare("SELECT 1 FROM sqlite_master WHERE type IN ('table','view') AND name = ?").get(name) !== undefined;
}
