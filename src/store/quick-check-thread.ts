/**
 * The bounded quick_check (db.ts quickCheck) on a worker thread, so a command can analyse while the file is checked:
 * on a 50 MB trace the check reads every page (0.15-0.55 s warm) and the analysis does not need its answer, only
 * the operator does, before the command exits. `result()` blocks until the check is done; a worker that cannot run
 * the check (it failed to start, or threw) yields the check run inline on the caller's connection.
 */
import { MessageChannel, receiveMessageOnPort, Worker, type MessagePort } from 'node:worker_threads';
import { dbFileBytes, QUICK_CHECK_MAX_BYTES, quickCheck, type Db, type IntegrityReport } from './db.js';

export interface PendingCheck {
  result(): IntegrityReport;
}

export interface CheckJob {
  path: string;
  done: SharedArrayBuffer;
  port: MessagePort;
}

const WAIT_MS = 120_000;

export function quickCheckOnThread(db: Db, path: string): PendingCheck {
  const inline = (): PendingCheck => ({ result: () => quickCheck(db, path) });
  // above the check's bound the inline call answers 'skipped' at once: no thread to start for that
  if (process.env.CAUSEWAY_SCAN_THREAD === '0' || dbFileBytes(path) > QUICK_CHECK_MAX_BYTES) return inline();
  const done = new SharedArrayBuffer(4);
  const flag = new Int32Array(done);
  const { port1, port2 } = new MessageChannel();
  let worker: Worker;
  try {
    const job: CheckJob = { path, done, port: port2 };
    worker = new Worker(new URL('./quick-check-worker.js', import.meta.url), { workerData: job, transferList: [port2] });
  } catch {
    return inline();
  }
  worker.unref();
  worker.on('error', () => {
    Atomics.store(flag, 0, 2);
    Atomics.notify(flag, 0);
  });
  let report: IntegrityReport | null = null;
  return {
    result(): IntegrityReport {
      if (report) return report;
      // 'error' events need this thread's event loop, which a synchronous caller does not return to: the worker
      // also sets the flag itself when it throws
      if (Atomics.load(flag, 0) === 0) Atomics.wait(flag, 0, 0, WAIT_MS);
      const msg = Atomics.load(flag, 0) === 1 ? receiveMessageOnPort(port1) : undefined;
      port1.close();
      report = (msg?.message as IntegrityReport | undefined) ?? quickCheck(db, path);
      return report;
    },
  };
}

