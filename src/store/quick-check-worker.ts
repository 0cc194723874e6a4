/** The thread of quick-check-thread.ts: opens the file read-only, runs the bounded quick_check, posts the report. */
import { workerData } from 'node:worker_threads';
import Database from 'better-sqlite3';
import { quickCheck } from './db.js';
import type { CheckJob } from './quick-check-thread.js';

const job = workerData as CheckJob;
const flag = new Int32Array(job.done);
try {
  const db = new Database(job.path, { readonly: true, fileMustExist: true });
  try {
    job.port.postMessage(quickCheck(db, job.path));
  } finally {
    db.close();
  }
  Atomics.store(flag, 0, 1);
} catch {
  Atomics.store(flag, 0, 2); // the caller runs the check itself
}
Atomics.notify(flag, 0);
job.port.close();
