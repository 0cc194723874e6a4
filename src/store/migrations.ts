/**
 * Schema migrations, applied by db.ts migrate() before the (idempotent)
 * CREATE ... IF NOT EXISTS of schema.ts. Each step takes a database at
 * version N-1 to N inside the migrate transaction.
 */
import type { Db } from './db.js';

/** Events per event_spans row (writer and backfill agree). */
export const SPAN_EVENTS = 16384;

const STEPS: Record<number, (db: Db) => void> = {
  // v1 -> v2: drop the per-row (session_id, ts) index (18 B/event), add the sparse event_spans map
  2: (db) => {
    db.exec(`
      DROP INDEX IF EXISTS events_session_ts;
      CREATE TABLE IF NOT EXISTS event_spans (
        session_id INTEGER NOT NULL, first_id INTEGER NOT NULL, last_id INTEGER NOT NULL,
        ts_min INTEGER NOT NULL, ts_max INTEGER NOT NULL, PRIMARY KEY (session_id, first_id)
      ) WITHOUT ROWID;
      INSERT OR REPLACE INTO event_spans (session_id, first_id, last_id, ts_min, ts_max)
        SELECT session_id, min(id), max(id), min(ts), max(ts) FROM events GROUP BY session_id, id / ${SPAN_EVENTS};
    `);
  },
  // v2 -> v3: who the tracer was, and which boot the monotonic clock belongs to
  3: (db) => {
    const cols = new Set((db.prepare('PRAGMA table_info(sessions)').all() as { name: string }[]).map((c) => c.name));
    if (!cols.has('tracer_pid')) db.exec('ALTER TABLE sessions ADD COLUMN tracer_pid INTEGER');
    if (!cols.has('boot_id')) db.exec('ALTER TABLE sessions ADD COLUMN boot_id TEXT');
  },
  // v3 -> v4: hdr.flags kept for the events that carry a noteworthy one (exit by signal, failed I/O, ...)
  4: (db) => {
    db.exec('CREATE TABLE IF NOT EXISTS event_flags (event_id INTEGER PRIMARY KEY, flags INTEGER NOT NULL)');
  },
  // v4 -> v5: aggregated counts of HTTP requests refused before authentication (mcp_refusals, created by TABLES_SQL)
  5: () => {},
  // v5 -> v6: export variant of a CUDA call (_ptds/_ptsz); kernel_names is created by schema.ts
  6: (db) => {
    const cols = new Set((db.prepare('PRAGMA table_info(events)').all() as { name: string }[]).map((c) => c.name));
    if (!cols.has('variant')) db.exec('ALTER TABLE events ADD COLUMN variant INTEGER');
  },
  // v6 -> v7: thread_gaps (host time after each call per thread), created by TABLES_SQL and kept by the
  // writer from now on; older sessions get no rows (a backfill would sort every stored call at open)
  7: () => {},
  // v7 -> v8: NVTX messages (nvtx_names, created by TABLES_SQL); v_nvtx_ranges is a view
  8: () => {},
  // v8 -> v9: off-CPU rows say whether the thread was inside a probed call (events.a3 bits 32.., common/wire.ts
  // offCpuA3; v_off_cpu.in_cuda/cuda_op). Older rows hold the CPU alone in a3: unknown (NULL), never guessed
  9: () => {},
};

/** Apply the steps from `from` (exclusive) to `to` (inclusive). */
export function applyMigrations(db: Db, from: number, to: number): void {
  for (let v = from + 1; v <= to; v++) STEPS[v]?.(db);
}
