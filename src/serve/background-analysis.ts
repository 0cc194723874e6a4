/**
 * Analysis that never outlasts its tool call. A session without a stored analysis is analysed on a worker thread
 * (its own read-only connection), once per session state however many calls ask; a call waits at most its budget,
 * reporting progress (events read of events stored) as it goes, and then answers with what is known: the chains
 * if the analysis finished, else how far it got. The next call after it finished gets the chains at once (they are
 * remembered per session state, like every computed analysis). Small sessions are analysed inline: a worker's
 * start-up (~100 ms) would cost more than it saves.
 */
import { Worker } from 'node:worker_threads';
import type { Chain } from '../common/chain.js';
import type { Coverage, LiveSnapshot } from '../analyze/explain.js';
import { readySessionChains, rememberChains, sessionChains, withAlerts, type SessionChains } from '../analyze/explain.js';
import type { Db } from '../store/db.js';

/** below this many events the analysis runs inline (about a second on this machine's 2 cores) */
export const BACKGROUND_MIN_EVENTS = 200_000;
/** how long a tool call waits for an analysis by default: under the 10 s many MCP clients allow a call */
export const DEFAULT_ANALYSIS_BUDGET_MS = 8_000;

export interface AnalysisProgress {
  read: number;
  total: number;
  elapsed_ms: number;
}

export type BoundedChains = SessionChains | (Omit<SessionChains, 'source'> & { source: 'pending'; progress: AnalysisProgress });

type Done = { chains: Chain[]; coverage: Coverage; live?: LiveSnapshot };

interface Job {
  done: Promise<Done | { error: string }>;
  /** events the worker has read so far */
  readonly read: number;
  total: number;
  startedMs: number;
}

const JOBS = new Map<string, Job>();

/** jobKey: the session state analysed, or one key per growing session (one analysis of it at a time) */
function start(dbPath: string, sessionId: number, key: string, jobKey: string, total: number): Job {
  const seen = { read: 0 };
  const done = new Promise<Awaited<Job['done']>>((resolve) => {
    const w = new Worker(new URL('./analysis-worker.js', import.meta.url), { workerData: { dbPath, sessionId } });
    w.unref(); // a server shutting down does not wait for an analysis nobody will read
    w.on('message', (m: { type: string; read?: number; chains?: Chain[]; coverage?: Coverage; live?: LiveSnapshot; message?: string }) => {
      if (m.type === 'progress') seen.read = m.read!;
      else if (m.type === 'done') {
        const r: Done = { chains: m.chains!, coverage: m.coverage!, ...(m.live ? { live: m.live } : {}) };
        rememberChains(key, r);
        resolve(r);
      } else if (m.type === 'error') resolve({ error: m.message! });
    });
    // after 'done' these resolve nothing (a promise settles once)
    w.on('error', (e) => resolve({ error: e.message }));
    w.on('exit', (code) => resolve({ error: `analysis worker exited with code ${code}` }));
  });
  const job: Job = {
    done,
    get read() {
      return seen.read;
    },
    total,
    startedMs: Date.now(),
  };
  void done.then(() => JOBS.delete(jobKey));
  JOBS.set(jobKey, job);
  return job;
}

export interface BoundedOptions {
  /** the database file (the worker opens its own connection) */
  dbPath: string;
  budgetMs?: number;
  /** called about twice a second while waiting */
  onProgress?: (p: AnalysisProgress) => void;
}

/** sessionChains, bounded in time: see the top of this file. */
export async function boundedSessionChains(db: Db, sessionId: number, opts: BoundedOptions): Promise<BoundedChains> {
  const r = readySessionChains(db, sessionId);
  if ('ready' in r) return r.ready;
  if (r.eventsStored < BACKGROUND_MIN_EVENTS) return sessionChains(db, sessionId);
  // a growing session: the analysis already running answers (as of its snapshot) rather than a second one
  const jobKey = r.growing ? `${opts.dbPath}\0${sessionId}\0growing` : r.key;
  const job = JOBS.get(jobKey) ?? start(opts.dbPath, sessionId, r.key, jobKey, r.eventsStored);
  const budget = opts.budgetMs ?? DEFAULT_ANALYSIS_BUDGET_MS;
  const progress = (): AnalysisProgress => ({ read: job.read, total: job.total, elapsed_ms: Date.now() - job.startedMs });
  let timer: NodeJS.Timeout | undefined;
  let ticker: NodeJS.Timeout | undefined;
  const timeout = new Promise<'timeout'>((resolve) => (timer = setTimeout(() => resolve('timeout'), budget)));
  if (opts.onProgress) {
    // at once (a short budget may end before the first tick), then about twice a second
    opts.onProgress(progress());
    ticker = setInterval(() => opts.onProgress!(progress()), 500);
  }
  try {
    const res = await Promise.race([job.done, timeout]);
    if (res === 'timeout') return { source: 'pending', run: r.run, chains: r.alerts, coverage: null, progress: progress() };
    if ('error' in res) return { source: r.alerts.length ? 'stored' : 'none', run: r.run, chains: r.alerts, coverage: null, note: `analysis failed: ${res.error}` };
    return withAlerts(r.run, r.alerts, res);
  } finally {
    clearTimeout(timer);
    clearInterval(ticker);
  }
}
