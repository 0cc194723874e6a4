/**
 * Store the chains of a trace right when it ends, so `explain`, MCP and exports read them instead of
 * recomputing. The writer thread analysed the trace while it ran (src/analyze/stream-live.ts): its chains and
 * coverage arrive with the writer's close, the session's part of the coverage (status, losses) is read again
 * now that the session is closed, and the run is appended: any size, no pass over the events here. Without a
 * streamed analysis (the tap failed, a retention cap was set, or CAUSEWAY_STREAM=0) the database is replayed through the same engine,
 * for traces up to EXPLAIN_AT_END_MAX_EVENTS (larger ones are left to `causeway explain`, which shows progress).
 */
import { explainSession, persistRun, withSessionCoverage } from '../analyze/explain.js';
import type { StreamedAnalysis } from '../analyze/stream-live.js';
import type { Db } from '../store/db.js';
import type { TraceSummary } from './options.js';

/** Without a streamed analysis, traces up to this many events are replayed when the trace ends (~5 s per million here). */
export const EXPLAIN_AT_END_MAX_EVENTS = 1_000_000;

function top(chains: { kind: string; severity: string; impact_ns: number; summary: string }[]): NonNullable<TraceSummary['chains']>['top'] {
  return chains.slice(0, 3).map((c) => ({ kind: c.kind, severity: c.severity, impact_ns: c.impact_ns, summary: c.summary }));
}

export function explainAtEnd(db: Db, sessionId: number, dbPath: string, stored: number, streamed?: unknown): TraceSummary['chains'] {
  const s = streamed as Partial<StreamedAnalysis> & { error?: string } | undefined;
  const why = s?.error;
  if (s && s.chains && s.coverage && s.sessionId === sessionId) {
    try {
      const t0 = performance.now();
      const coverage = withSessionCoverage(db, sessionId, s.coverage, s.sessionNotes ?? 0);
      persistRun(db, sessionId, { chains: s.chains, coverage }, { persist: true, dbPath });
      const storeMs = performance.now() - t0;
      return {
        analysed: true,
        top: top(s.chains),
        streamed: {
          events: s.stats?.events ?? 0,
          behind_at_close: s.behindAtClose ?? 0,
          deferred_writes: s.deferredWrites ?? 0,
          close_cpu_ms: Math.round((s.closeCpuNs ?? 0) / 1e4) / 100,
          close_wall_ms: Math.round((s.closeWallMs ?? 0) * 100) / 100,
          store_ms: Math.round(storeMs * 100) / 100,
          feed_cpu_ns_per_event: s.feedEvents ? Math.round((s.feedCpuNs ?? 0) / s.feedEvents) : null,
          late: s.stats?.late ?? 0,
          forced: s.stats?.forced ?? 0,
        },
      };
    } catch (e) {
      return { analysed: false, reason: `storing the streamed analysis failed: ${(e as Error).message}`, top: [] };
    }
  }
  if (stored > EXPLAIN_AT_END_MAX_EVENTS) return { analysed: false, reason: `${stored} events${why ? ` (${why})` : ''}: run \`causeway explain --db ${dbPath}\``, top: [] };
  try {
    const r = explainSession(db, sessionId, { persist: true, dbPath });
    return { analysed: true, top: top(r.chains) };
  } catch (e) {
    return { analysed: false, reason: `analysis failed: ${(e as Error).message}`, top: [] };
  }
}
