/**
 * Worker thread body for background-analysis.ts: analyses one session on its own read-only connection and posts
 * progress (events read) and the result (chains and coverage: plain data, structured-cloned). Runs the same
 * explainSession as every other caller, so its chains are the batch chains.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { openReadOnly } from '../store/db.js';
import { explainSession } from '../analyze/explain.js';

const { dbPath, sessionId } = workerData as { dbPath: string; sessionId: number };
const port = parentPort!;
try {
  const db = openReadOnly(dbPath);
  const r = explainSession(db, sessionId, { persist: false, onProgress: (read) => port.postMessage({ type: 'progress', read }) });
  port.postMessage({ type: 'done', chains: r.chains, coverage: r.coverage, live: r.live });
  db.close();
} catch (e) {
  port.postMessage({ type: 'error', message: (e as Error).message });
}
