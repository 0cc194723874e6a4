/**
 * Where chains come from (SEAM with src/analyze/): the one rule of
 * analyze/explain.sessionChains: the latest stored analysis run of the
 * session, else an analysis computed now (not stored), with the session's
 * stored MCP alerts in both cases.
 */
import type { Db } from '../../store/db.js';
import type { Chain } from '../../common/chain.js';
import { sessionChains } from '../../analyze/explain.js';

export { SEVERITY_RANK } from '../../common/chain.js';

/** A chain as the tools see it: the GUIDE §4 Chain. */
export type ChainView = Chain;

export interface ChainsResult {
  source: 'stored' | 'computed' | 'none';
  run_id: number | null;
  chains: ChainView[];
  /** the analysis' coverage object (explain's `coverage`, stored in analysis_runs.coverage), as it is: rendered generically */
  coverage: unknown;
}

export async function loadChains(db: Db, sessionId: number): Promise<ChainsResult> {
  const r = sessionChains(db, sessionId);
  return { source: r.source, run_id: r.source === 'stored' ? (r.run?.run_id ?? null) : null, chains: r.chains, coverage: r.coverage ?? null };
}
