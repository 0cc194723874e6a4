/**
 * mcp_refusals: HTTP requests the MCP server refused before authenticating
 * them, counted per (session, 60 s window, source, reason). The counts are
 * added in batches (one transaction per flush) by the audit writer.
 */
import type { Db } from './db.js';

export const REFUSAL_WINDOW_NS = 60_000_000_000n;
/** distinct sources per window; later ones are counted as OTHER_SOURCE */
export const REFUSAL_MAX_SOURCES = 32;
export const OTHER_SOURCE = '(other)';

export interface RefusalCount {
  sessionId: number;
  /** window start, ns since session start (a multiple of REFUSAL_WINDOW_NS) */
  windowNs: bigint;
  source: string;
  reason: string;
  status: number;
  count: number;
}

/** Add counts (upsert); one transaction. */
export function addRefusals(db: Db, rows: RefusalCount[]): void {
  if (rows.length === 0) return;
  const up = db.prepare(
    `INSERT INTO mcp_refusals (session_id, window_ns, source, reason, status, count) VALUES (?, ?, ?, ?, ?, ?)
     ON CONFLICT(session_id, window_ns, source, reason) DO UPDATE SET count = count + excluded.count, status = excluded.status`,
  );
  db.transaction(() => {
    for (const r of rows) up.run(r.sessionId, r.windowNs, r.source, r.reason, r.status, r.count);
  })();
}

/** Sources already counted in a window (to keep the per-window bound across flushes and restarts). */
export function refusalSources(db: Db, sessionId: number, windowNs: bigint): string[] {
  return (db.prepare('SELECT DISTINCT source FROM mcp_refusals WHERE session_id = ? AND window_ns = ?').raw(true).all(sessionId, windowNs) as string[][]).map((r) => r[0]);
}
