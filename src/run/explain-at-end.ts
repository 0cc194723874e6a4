/**
 * Analyse a trace right when it ends and store the chains, so `explain`, MCP
 * and exports read them instead of recomputing: traces up to
 * EXPLAIN_AT_END_MAX_EVENTS only, larger ones are left to `causeway explain`
 * (which shows progress).
 */
import { explainSession } from '../analyze/explain.js';
import type { Db } from '../store/db.js';
import type { TraceSummary } from './options.js';

/** Traces up to this many events are analysed when the trace ends (~7 s per million events here). */
export const EXPLAIN_AT_END_MAX_EVENTS = 1_000_000;

export function explainAtEnd(db: Db, sessionId: number, dbPath: string, stored: number): TraceSummary['chains'] {
  if (stored > EXPLAIN_AT_END_MAX_EVENTS) return { analysed: false, reason: `${stored} events: run \`causeway explain --db ${dbPath}\``, top: [] };
  try {
    const r = explainSession(db, sessionId, { persist: true, dbPath });
    return { analysed: true, top: r.chains.slice(0, 3).map((c) => ({ kind: c.kind, severity: c.severity, impact_ns: c.impact_ns, summary: c.summary })) };
  } catch (e) {
    return { analysed: false, reason: `analysis failed: ${(e as Error).message}`, top: [] };
  }
}
