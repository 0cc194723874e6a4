/**
 * Calls and errors per CUDA op for a trace's closing summary: read from the
 * per-second aggregates when the writer kept them (no pass over every event),
 * else counted from v_cuda_calls. Most calls first.
 */
import type { Db } from './db.js';
import { hasAggregates, opStats } from './reader.js';

export interface OpCallCount {
  op: string;
  count: number;
  errors: number;
}

/** `useAggregates`: false when the writer failed (its aggregates may miss the last batches). */
export function opCallCounts(db: Db, sessionId: number, useAggregates: boolean): OpCallCount[] {
  if (useAggregates && hasAggregates(db, sessionId)) {
    return opStats(db, sessionId)
      .map((o) => ({ op: o.op, count: o.count, errors: o.errors }))
      .sort((a, b) => b.count - a.count);
  }
  return db.prepare(`SELECT op, count(*) AS count, sum(ret <> 0) AS errors FROM v_cuda_calls WHERE session_id = ? GROUP BY op ORDER BY count DESC`).all(sessionId) as OpCallCount[];
}
