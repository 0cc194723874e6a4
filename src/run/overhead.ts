/**
 * Causeway's own cost, for the summary and get_agent_health: probe hits per
 * second times the measured cost of one traced call.
 */
import type { Db } from '../store/db.js';
import { putSessionMeta } from '../store/session.js';

/**
 * Cost of one traced call (uprobe + uretprobe + record + drain) to the calling
 * thread, ns: BENCHMARKS.md section 1 measures 1,900-2,150 added CPU ns per call
 * with default options on this class of machine (2,700 where every call takes a stack).
 */
export const NS_PER_TRACED_CALL = 2100;
/** The same for a call recorded by the in-process shim (BENCHMARKS.md section 1, in-process row). */
export const NS_PER_SHIM_CALL = 60;

/** How the calls were captured: by the shim (`inProcess`), else by uprobes, perhaps because the shim could not be preloaded (`fallback`). */
export interface CaptureMode {
  inProcess: boolean;
  fallback: string | null;
}

function nsPerCall(m: CaptureMode): number {
  return m.inProcess ? NS_PER_SHIM_CALL : NS_PER_TRACED_CALL;
}

/** CPU percent of one calling thread spent in tracing, or null when no call was traced. */
export function estimatedOverheadPct(calls: number, probeHitsPerS: number, m: CaptureMode): number | null {
  return calls ? (probeHitsPerS * nsPerCall(m)) / 1e9 * 100 : null;
}

/** Store the estimate in session meta (prefix 'overhead') for get_agent_health; best effort. */
export function recordOverhead(db: Db, sessionId: number, s: { probeHitsPerS: number; estimatedOverheadPct: number | null }, m: CaptureMode): void {
  try {
    putSessionMeta(db, sessionId, 'overhead', {
      probe_hits_per_s: String(Math.round(s.probeHitsPerS)),
      ns_per_traced_call: String(nsPerCall(m)),
      ...(m.inProcess || m.fallback ? { capture: m.inProcess ? 'in_process (shim)' : `uprobes (in-process fallback: ${m.fallback})` } : {}),
      estimated_cpu_pct: String(s.estimatedOverheadPct ?? 0),
      method: 'probe hits per second x ns per traced call measured by `npm run bench` (BENCHMARKS.md); an upper bound for one calling thread',
    });
  } catch {
    /* the database may be full or closed: the summary still carries it */
  }
}
