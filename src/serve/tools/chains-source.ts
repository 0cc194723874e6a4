/**
 * Where chains come from (SEAM with src/analyze/):
 *   1. the latest analysis run stored in `chains` for the session (what
 *      `causeway explain` wrote), so answers are stable and cheap;
 *   2. otherwise, when src/analyze has landed, explainSession(db, id) computed now;
 *   3. otherwise none, and the caller is told to run `causeway explain`.
 * Chain objects follow GUIDE §4; normalize() accepts either source.
 */
import type { Db } from '../../store/db.js';
import { explainSession } from '../../analyze/explain.js';

export interface ChainView {
  id: string;
  kind: string;
  severity: string;
  summary: string;
  impact_ns: number;
  pid: number | null;
  tid: number | null;
  op: string | null;
  ts_ns: number | null;
  recommendation: string | null;
  evidence: { event_ids: number[]; sql: string | null; detail: string | null }[];
}

export const SEVERITY_RANK: Record<string, number> = { critical: 0, high: 1, medium: 2, low: 3 };

function normalize(c: Record<string, unknown>, fallback: Partial<ChainView> = {}): ChainView {
  const num = (v: unknown) => (typeof v === 'number' ? v : typeof v === 'bigint' ? Number(v) : v == null ? null : Number(v));
  const ev = Array.isArray(c.evidence) ? (c.evidence as Record<string, unknown>[]) : [];
  return {
    id: String(c.id ?? c.chain_id ?? fallback.id ?? ''),
    kind: String(c.kind ?? fallback.kind ?? 'unknown'),
    severity: String(c.severity ?? fallback.severity ?? 'low'),
    summary: String(c.summary ?? fallback.summary ?? ''),
    impact_ns: num(c.impact_ns ?? fallback.impact_ns) ?? 0,
    pid: num(c.pid ?? fallback.pid),
    tid: num(c.tid ?? fallback.tid),
    op: c.op != null ? String(c.op) : (fallback.op ?? null),
    ts_ns: num(c.ts_ns ?? fallback.ts_ns),
    recommendation: c.recommendation != null ? String(c.recommendation) : null,
    evidence: ev.map((e) => ({
      event_ids: Array.isArray(e.event_ids) ? (e.event_ids as unknown[]).map(Number).filter(Number.isFinite) : [],
      sql: e.sql != null ? String(e.sql) : null,
      detail: e.detail != null ? String(e.detail) : null,
    })),
  };
}

/** Chains computed by this process, by database, session and session state. */
const COMPUTED = new Map<string, { chains: ChainView[]; coverage: unknown }>();

export interface ChainsResult {
  source: 'stored' | 'computed' | 'none';
  run_id: number | null;
  chains: ChainView[];
  /** the analysis' coverage object (explain's `coverage`, stored in analysis_runs.coverage), as it is */
  coverage: unknown;
}

export async function loadChains(db: Db, sessionId: number): Promise<ChainsResult> {
  const run = db.prepare('SELECT MAX(id) AS id FROM analysis_runs WHERE session_id = ?').get(sessionId) as { id: number | null };
  let stored: ChainView[] = [];
  if (run.id !== null) {
    const rows = db
      .prepare('SELECT chain_id, kind, severity, impact_ns, pid, tid, op, ts_ns, summary, json FROM chains WHERE session_id = ? AND run_id = ?')
      .all(sessionId, run.id) as (Record<string, unknown> & { json: string })[];
    stored = rows.map((r) => {
      let parsed: Record<string, unknown> = {};
      try {
        parsed = JSON.parse(r.json) as Record<string, unknown>;
      } catch {
        /* keep the columns */
      }
      // the table columns are authoritative for the indexed fields
      return normalize({ ...parsed, id: r.chain_id, kind: r.kind, severity: r.severity, impact_ns: r.impact_ns, pid: r.pid, tid: r.tid, op: r.op, ts_ns: r.ts_ns, summary: r.summary });
    });
  }
  // The audit (src/serve/audit) appends its alerts as kind 'mcp_anomaly' chains to the latest run,
  // creating a run when there is none: such a run alone does not mean the trace was analysed.
  const alerts = stored.filter((c) => c.kind === 'mcp_anomaly');
  if (stored.length > alerts.length || (run.id !== null && storedCoverage(db, run.id) !== null)) {
    return { source: 'stored', run_id: run.id, chains: sortChains(stored), coverage: storedCoverage(db, run.id!) };
  }
  // analysing is expensive (seconds per million events): once per session state, not per call
  const state = db.prepare('SELECT events_stored, status FROM sessions WHERE id = ?').get(sessionId) as { events_stored: number; status: string } | undefined;
  const key = `${db.name}\0${sessionId}\0${state?.events_stored}\0${state?.status}`;
  let computed = COMPUTED.get(key);
  if (!computed) {
    const r = explainSession(db, sessionId);
    computed = { chains: r.chains.map((c) => normalize(c as unknown as Record<string, unknown>)), coverage: r.coverage };
    COMPUTED.set(key, computed);
    if (COMPUTED.size > 16) COMPUTED.delete(COMPUTED.keys().next().value!);
  }
  return { source: 'computed', run_id: null, chains: sortChains([...computed.chains, ...alerts]), coverage: computed.coverage };
}

/** A run written by `causeway explain` carries its coverage; one the audit created for its alerts does not. */
function storedCoverage(db: Db, runId: number): unknown {
  const row = db.prepare('SELECT coverage FROM analysis_runs WHERE id = ?').get(runId) as { coverage: string | null } | undefined;
  if (!row?.coverage) return null;
  try {
    const c = JSON.parse(row.coverage) as { analyzer?: unknown } | null;
    // the audit's own run (serve/audit/anomaly.ts) is marked { analyzer: 'mcp_anomaly' }
    return c && typeof c === 'object' && c.analyzer !== 'mcp_anomaly' ? c : null;
  } catch {
    return null;
  }
}

function sortChains(c: ChainView[]): ChainView[] {
  return c.sort((a, b) => b.impact_ns - a.impact_ns || (SEVERITY_RANK[a.severity] ?? 9) - (SEVERITY_RANK[b.severity] ?? 9) || a.id.localeCompare(b.id));
}
