/**
 * The owner of `analysis_runs` and `chains` (GUIDE §3: history kept,
 * append-only). Analysis appends a run with its chains; the MCP audit appends
 * its alerts (kind 'mcp_anomaly'); serve and export read the latest run back
 * with its provenance. Nothing outside store/ writes SQL against these tables.
 *
 * A run whose coverage is ALERTS_ONLY was created by the audit because the
 * session had no analysis yet: it holds alerts, and does not mean the trace
 * was analysed (latestRun().analysed is false for it).
 */
import type { Db } from './db.js';
import type { Chain } from '../common/chain.js';
import { compareChains } from '../common/chain.js';

/** coverage of a run that only holds MCP alerts (written by appendAlerts) */
const ALERTS_ONLY = { analyzer: 'mcp_anomaly' } as const;

export interface RunProvenance {
  run_id: number;
  /** unix epoch ns when the run was stored */
  created_wall_ns: number;
  /** the --baseline file the run compared against, if any */
  baseline: string | null;
}

export interface StoredRun extends RunProvenance {
  /** false for a run that only holds MCP alerts (no analysis of the trace) */
  analysed: boolean;
  /** the run's coverage object as stored (null when unreadable) */
  coverage: unknown;
  /** chains of the run, sorted by impact; each row's indexed columns override its JSON */
  chains: Chain[];
}

function nowWallNs(): bigint {
  return BigInt(Date.now()) * 1_000_000n;
}

/** Append one analysis run and its chains in one transaction; returns the run id. */
export function appendRun(db: Db, sessionId: number, run: { baseline?: string | null; coverage: unknown }, chains: readonly Chain[]): number {
  const insRun = db.prepare('INSERT INTO analysis_runs (session_id, created_wall_ns, baseline, coverage) VALUES (?, ?, ?, ?)');
  const ins = db.prepare('INSERT INTO chains (run_id, session_id, chain_id, kind, severity, impact_ns, pid, tid, op, ts_ns, summary, json) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)');
  return db.transaction(() => {
    const runId = Number(insRun.run(sessionId, nowWallNs(), run.baseline ?? null, JSON.stringify(run.coverage)).lastInsertRowid);
    for (const c of chains) ins.run(runId, sessionId, c.id, c.kind, c.severity, c.impact_ns, c.pid, c.tid, c.op, c.ts_ns, c.summary, JSON.stringify(c));
    return runId;
  })();
}

/** An MCP-usage alert stored as a chain (impact 0, no op). */
export interface AlertChain {
  id: string;
  kind: 'mcp_anomaly';
  severity: Chain['severity'];
  summary: string;
  pid: number | null;
  tid: number | null;
  ts_ns: number;
}

/**
 * Append alerts to the session's latest run (so v_chains shows them beside
 * that run's chains), creating an ALERTS_ONLY run when the session has none.
 * Alerts whose id is already stored for the session are skipped. Returns the
 * rows written.
 */
export function appendAlerts(db: Db, sessionId: number, alerts: readonly AlertChain[]): number {
  if (alerts.length === 0) return 0;
  const exists = db.prepare("SELECT 1 FROM chains WHERE session_id = ? AND chain_id = ? AND kind = 'mcp_anomaly'");
  const ins = db.prepare('INSERT INTO chains (run_id, session_id, chain_id, kind, severity, impact_ns, pid, tid, op, ts_ns, summary, json) VALUES (?, ?, ?, ?, ?, 0, ?, ?, NULL, ?, ?, ?)');
  return db.transaction(() => {
    let run = latestRunId(db, sessionId);
    if (run === null) {
      run = Number(db.prepare('INSERT INTO analysis_runs (session_id, created_wall_ns, baseline, coverage) VALUES (?, ?, NULL, ?)').run(sessionId, nowWallNs(), JSON.stringify(ALERTS_ONLY)).lastInsertRowid);
    }
    let n = 0;
    for (const a of alerts) {
      if (exists.get(sessionId, a.id)) continue;
      ins.run(run, sessionId, a.id, a.kind, a.severity, a.pid, a.tid, a.ts_ns, a.summary, JSON.stringify(a));
      n++;
    }
    return n;
  })();
}

export function latestRunId(db: Db, sessionId: number): number | null {
  return (db.prepare('SELECT MAX(id) AS id FROM analysis_runs WHERE session_id = ?').get(sessionId) as { id: number | null }).id;
}

const num = (v: unknown): number | null => (typeof v === 'number' ? v : typeof v === 'bigint' ? Number(v) : v == null ? null : Number(v));
const str = (v: unknown, d: string): string => (v == null ? d : String(v));

/** One stored row as a Chain: the indexed columns are authoritative, the JSON fills the rest. */
function rowToChain(r: Record<string, unknown> & { json: string }): Chain {
  let c: Record<string, unknown> = {};
  try {
    c = JSON.parse(r.json) as Record<string, unknown>;
  } catch {
    /* a damaged JSON keeps the columns */
  }
  const ev = Array.isArray(c.evidence) ? (c.evidence as Record<string, unknown>[]) : [];
  return {
    id: str(r.chain_id, ''),
    kind: str(r.kind, 'unknown') as Chain['kind'],
    severity: str(r.severity, 'low') as Chain['severity'],
    summary: str(r.summary, ''),
    impact_ns: num(r.impact_ns) ?? 0,
    pid: num(r.pid),
    tid: num(r.tid),
    op: r.op != null ? String(r.op) : null,
    ts_ns: num(r.ts_ns),
    evidence: ev.map((e) => ({
      event_ids: Array.isArray(e.event_ids) ? (e.event_ids as unknown[]).map(Number).filter(Number.isFinite) : [],
      sql: str(e.sql, ''),
      detail: str(e.detail, ''),
    })),
    recommendation: str(c.recommendation, ''),
    impact_fraction: num(c.impact_fraction) ?? 0,
    untrusted: Array.isArray(c.untrusted) ? (c.untrusted as unknown[]).map(String) : [],
  };
}

/** The session's latest run with its chains and provenance; null when the session was never analysed nor alerted on. */
export function latestRun(db: Db, sessionId: number): StoredRun | null {
  const run = db.prepare('SELECT id, created_wall_ns, baseline, coverage FROM analysis_runs WHERE session_id = ? ORDER BY id DESC LIMIT 1').get(sessionId) as
    | { id: number; created_wall_ns: number | bigint; baseline: string | null; coverage: string | null }
    | undefined;
  if (!run) return null;
  let coverage: unknown = null;
  try {
    coverage = run.coverage == null ? null : JSON.parse(run.coverage);
  } catch {
    /* unreadable coverage: the chains still stand */
  }
  const rows = db
    .prepare('SELECT chain_id, kind, severity, impact_ns, pid, tid, op, ts_ns, summary, json FROM chains WHERE session_id = ? AND run_id = ?')
    .all(sessionId, run.id) as (Record<string, unknown> & { json: string })[];
  const chains = rows.map(rowToChain).sort(compareChains);
  const alertsOnly = !!coverage && typeof coverage === 'object' && (coverage as Record<string, unknown>).analyzer === ALERTS_ONLY.analyzer;
  return { run_id: run.id, created_wall_ns: Number(run.created_wall_ns), baseline: run.baseline, analysed: !alertsOnly, coverage, chains };
}

/**
 * Every MCP alert (kind 'mcp_anomaly') of the session, from whatever run it
 * was stored in, once per alert id: alerts stay visible until acknowledged
 * (there is no acknowledgement yet, so: all of them), and a later
 * `causeway explain` run must not hide them.
 */
export function sessionAlerts(db: Db, sessionId: number): Chain[] {
  const rows = db
    .prepare("SELECT chain_id, kind, severity, impact_ns, pid, tid, op, ts_ns, summary, json FROM chains WHERE session_id = ? AND kind = 'mcp_anomaly' ORDER BY id")
    .all(sessionId) as (Record<string, unknown> & { json: string })[];
  const byId = new Map<string, Chain>();
  for (const r of rows) byId.set(String(r.chain_id), rowToChain(r));
  return [...byId.values()].sort(compareChains);
}
