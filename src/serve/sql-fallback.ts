/**
 * SEAM FALLBACK for ../store/sql-guard.ts (owned by the storage teammate):
 * the same contract, kept minimal. One read-only connection per query in a
 * worker thread (query_only, one statement, Statement.readonly), row and byte
 * caps, and a time limit enforced by terminating the worker.
 */
import { Worker } from 'node:worker_threads';
import { CausewayError } from '../common/errors.js';
import type { SqlCaps, SqlResult } from './seams.js';

type WorkerReply =
  | { ok: true; columns: string[]; rows: unknown[][]; rowCount: number; truncated: boolean; truncatedReason?: string }
  | { ok: false; code: 'BAD_SQL' | 'SQL_REFUSED'; message: string; fix?: string };

export function runReadOnlySqlFallback(dbPath: string, sql: string, caps: SqlCaps): Promise<SqlResult> {
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const worker = new Worker(new URL('./sql-fallback-worker.js', import.meta.url), { workerData: { dbPath, sql, caps } });
    let settled = false;
    const timer = setTimeout(() => {
      if (settled) return;
      settled = true;
      void worker.terminate();
      reject(new CausewayError('SQL_TIMEOUT', `the query ran longer than ${caps.timeoutMs} ms and was stopped`, 'add a LIMIT, filter on session_id and ts_ns, or avoid unbounded recursive CTEs'));
    }, caps.timeoutMs);
    worker.once('message', (m: WorkerReply) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      void worker.terminate();
      if (m.ok) resolve({ columns: m.columns, rows: m.rows, rowCount: m.rowCount, truncated: m.truncated, truncatedReason: m.truncatedReason, elapsedMs: performance.now() - started });
      else reject(new CausewayError(m.code, m.message, m.fix));
    });
    worker.once('error', (e) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      reject(new CausewayError('INTERNAL', `SQL worker failed: ${e.message}`));
    });
  });
}
