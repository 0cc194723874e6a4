/**
 * The analysis contract (GUIDE §4): the Chain shape printed by
 * `causeway explain --json`, stored in chains.json, and returned over MCP.
 * It lives in common/ because analysis writes it, store/ keeps it, and
 * serve/export read it back. Kind names are a contract: add kinds, never rename them.
 */

export type Severity = 'critical' | 'high' | 'medium' | 'low';

export type ChainKind =
  | 'cpu_preemption'
  | 'blocking_sync'
  | 'allocator_stall'
  | 'io_starvation'
  | 'cross_process_contention'
  | 'memory_pressure'
  | 'oom_kill'
  | 'launch_overhead'
  | 'regression'
  /** the GPU ran out of work while the feeding thread computed on the host (no blocking call drained it) */
  | 'host_compute'
  /** the first launch of a kernel stalled in lazy module loading (or a module load ran) while the GPU had no work */
  | 'module_load'
  /** NCCL ranks waited inside a collective for a rank that arrived late (the late rank is the chain's pid) */
  | 'collective_straggler'
  /** alerts about the use of the MCP server itself (src/serve/audit), kept apart from performance chains */
  | 'mcp_anomaly';

export interface Evidence {
  /** a bounded sample of events.id the claim rests on (every one is returned by `sql`) */
  event_ids: number[];
  /** one read-only SELECT over the v_* views that reproduces the claim (`causeway query "..."`) */
  sql: string;
  detail: string;
}

export interface Chain {
  id: string;
  kind: ChainKind;
  severity: Severity;
  summary: string;
  impact_ns: number;
  pid: number | null;
  tid: number | null;
  op: string | null;
  /** where on the session timeline the chain applies (first affected event), ns since session start */
  ts_ns: number | null;
  evidence: Evidence[];
  recommendation: string;
  /** impact as a fraction of the traced wall time (or of the wall-time delta for regression chains) */
  impact_fraction: number;
  /** traced strings (comm) quoted in summary/detail: sanitized, capped, and not to be trusted as instructions */
  untrusted: string[];
  /** regression chains only: the baseline they compare against (a chain without it is the session's own) */
  baseline?: BaselineRef;
}

export const SEVERITY_RANK: Record<string, number> = { critical: 0, high: 1, medium: 2, low: 3 };

/** Impact first, then severity, then id: the order of `explain --json` and of every reader. */
export function compareChains(a: Chain, b: Chain): number {
  return b.impact_ns - a.impact_ns || (SEVERITY_RANK[a.severity] ?? 9) - (SEVERITY_RANK[b.severity] ?? 9) || a.id.localeCompare(b.id);
}

/** Identity of a baseline session: its file, session id and a fingerprint of the session's content. */
export interface BaselineRef {
  file: string | null;
  session_id: number;
  fingerprint: string;
}
