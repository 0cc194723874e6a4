/**
 * Where chains come from (SEAM with src/analyze/): the one rule of
 * analyze/explain.sessionChains: the latest stored analysis run of the
 * session, else an analysis computed now (not stored), with the session's
 * stored MCP alerts in both cases.
 */
import type { Db } from '../../store/db.js';
import type { Chain } from '../../common/chain.js';
import { boundedSessionChains, type AnalysisProgress } from '../background-analysis.js';
import { liveNow, liveView, type LiveView } from '../live.js';

export { SEVERITY_RANK } from '../../common/chain.js';

/** A chain as the tools see it: the GUIDE §4 Chain. */
export type ChainView = Chain;

export interface ChainsResult {
  /** pending: a background analysis is still running (progress says how far it got) */
  source: 'stored' | 'computed' | 'pending' | 'none';
  progress: AnalysisProgress | null;
  run_id: number | null;
  chains: ChainView[];
  /** the analysis' coverage object (explain's `coverage`, stored in analysis_runs.coverage), as it is: rendered generically */
  coverage: unknown;
  /** the session is still being traced: how far the chains reach */
  live: LiveView;
}

export interface LoadOptions {
  /** the database file, for the background analysis' own connection */
  dbPath: string;
  /** how long to wait for an analysis (default DEFAULT_ANALYSIS_BUDGET_MS, or CAUSEWAY_ANALYSIS_BUDGET_MS) */
  budgetMs?: number;
  onProgress?: (p: AnalysisProgress) => void;
}

export async function loadChains(db: Db, sessionId: number, opts: LoadOptions): Promise<ChainsResult> {
  const envBudget = Number(process.env.CAUSEWAY_ANALYSIS_BUDGET_MS);
  const budgetMs = opts.budgetMs ?? (envBudget > 0 ? envBudget : undefined);
  const r = await boundedSessionChains(db, sessionId, { ...opts, budgetMs });
  return {
    source: r.source,
    run_id: r.source === 'stored' ? (r.run?.run_id ?? null) : null,
    chains: r.chains,
    coverage: r.coverage ?? null,
    progress: r.source === 'pending' ? r.progress : null,
    // the analysis' own snapshot when it ran on a growing session; else whether the session grows now
    live: 'live' in r && r.live ? liveView(r.live) : liveNow(db, sessionId),
  };
}
