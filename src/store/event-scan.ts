/**
 * A session's events, in id order, handed to a callback one row at a time: the read side of the cold analysis.
 *
 * Reading costs about as much as analysing: SQLite calls into JS once per row (a user-defined function receiving
 * the eleven columns, no row objects), ~0.4 us a row against ~1.3-1.9 us of analysis. Above SCAN_THREAD_MIN_ROWS
 * the read moves to a worker thread with its own read-only connection, so it runs on the second core beside the
 * analysis: the worker packs rows into slots of a shared Float64Array (NaN for SQL NULL, which no stored value
 * is) and the caller replays them from there, synchronously, waiting on Atomics when it has caught up. Both
 * paths give the callback the same values in the same order: SQLite returns the same numbers to either thread.
 *
 * The worker reads the rows up to the session's max(id) as the caller's connection sees it when the scan starts,
 * so a trace still writing cannot make the two connections disagree. If the worker does not start or fails before
 * its first row (a module that fails to load, a file unlinked since it was opened here), the scan runs inline; an
 * error after rows were delivered is rethrown here.
 */
import { Worker } from 'node:worker_threads';
import type { Db } from './db.js';

/** id, ts, dur, pid, tid, op, ret, a0, a1, a2, a3 */
export type EventRowFn = (id: number, ts: number, dur: number | null, pid: number, tid: number, op: number, ret: number | null, a0: number | null, a1: number | null, a2: number | null, a3: number | null) => void;

export const EVENT_COLS = 'id, ts, dur, pid, tid, op, ret, a0, a1, a2, a3';
/** numbers per row in a slot */
export const ROW_F = 11;
/** rows per slot and slots in the ring: 8 x 8,192 rows x 88 B = 5.8 MB shared */
export const SLOT_ROWS = 8192;
export const SLOTS = 8;
/**
 * Below this many rows the scan stays on the calling thread: starting a worker, loading better-sqlite3 in it and
 * opening the file costs 40-170 ms on this machine, what reading ~100-400k rows inline costs.
 */
export const SCAN_THREAD_MIN_ROWS = 400_000;

/** control words (Int32Array over the shared buffer) */
export const C_PRODUCED = 0;
export const C_CONSUMED = 1;
export const C_STATE = 2;
export const C_STARTED = 3;
export const C_ERRLEN = 4;
export const C_COUNTS = 8;
export const CTL_WORDS = C_COUNTS + SLOTS;
export const ERR_BYTES = 4096;
export const STATE_RUNNING = 0;
export const STATE_DONE = 1;
export const STATE_ERROR = 2;

export interface ScanJob {
  path: string;
  sessionId: number;
  afterId: number;
  toId: number;
  ctl: SharedArrayBuffer;
  rows: SharedArrayBuffer;
  err: SharedArrayBuffer;
}

/** How scans ran in this process (a thread that did not start or open the file counts as a fallback). */
export const scanCounts = { threaded: 0, inline: 0, fallbacks: 0 };

const START_TIMEOUT_MS = 15_000;
const STALL_TIMEOUT_MS = 120_000;

/**
 * Calls `row` for every event of the session with afterId < id (<= toId when given), in id order; returns the rows
 * read. `threads`: false keeps the read inline whatever the size (CAUSEWAY_SCAN_THREAD=0 does the same).
 */
export function scanEvents(db: Db, sessionId: number, afterId: number, toId: number | undefined, row: EventRowFn, opts: { onProgress?: (read: number) => void; threads?: boolean; minRows?: number } = {}): number {
  // the table's max rowid is O(1) (no index on session_id): an upper bound of the session's rows, and the worker's snapshot bound
  const top = toId ?? ((db.prepare('SELECT max(id) FROM events').pluck().get() as number | null) ?? afterId);
  const useThread = opts.threads !== false && process.env.CAUSEWAY_SCAN_THREAD !== '0' && !db.memory && db.name !== '' && top - afterId >= (opts.minRows ?? SCAN_THREAD_MIN_ROWS);
  if (useThread) {
    const n = scanOnThread(db.name, sessionId, afterId, top, row, opts.onProgress);
    if (n !== null) {
      scanCounts.threaded++;
      return n;
    }
    scanCounts.fallbacks++;
  }
  scanCounts.inline++;
  return new InlineScan(db, row).scan(sessionId, afterId, toId, opts.onProgress);
}

/** The inline read: one SQLite-to-JS call per row. Statements are prepared once per instance (the live tap reuses one). */
export class InlineScan {
  private readonly all;
  private readonly upTo;
  private read = 0;
  private onProgress?: (read: number) => void;

  constructor(db: Db, row: EventRowFn) {
    const fn = (id: number, ts: number, dur: number | null, pid: number, tid: number, op: number, ret: number | null, a0: number | null, a1: number | null, a2: number | null, a3: number | null): null => {
      row(id, ts, dur, pid, tid, op, ret, a0, a1, a2, a3);
      if ((++this.read & 0xffff) === 0) this.onProgress?.(this.read);
      return null;
    };
    // one name per connection: an InlineScan registers it again (SQLite replaces the function; scans do not nest)
    db.function('cw_stream_row', { deterministic: false }, fn as (...args: unknown[]) => null);
    this.all = db.prepare(`SELECT count(cw_stream_row(${EVENT_COLS})) FROM events WHERE session_id = ? AND id > ?`);
    this.upTo = db.prepare(`SELECT count(cw_stream_row(${EVENT_COLS})) FROM events WHERE session_id = ? AND id > ? AND id <= ?`);
  }

  scan(sessionId: number, afterId: number, toId: number | undefined, onProgress?: (read: number) => void): number {
    const before = this.read;
    this.onProgress = onProgress;
    if (toId === undefined) this.all.get(sessionId, afterId);
    else this.upTo.get(sessionId, afterId, toId);
    return this.read - before;
  }
}

/** The threaded read; null when the worker did not start (the caller reads inline). */
function scanOnThread(path: string, sessionId: number, afterId: number, toId: number, row: EventRowFn, onProgress?: (read: number) => void): number | null {
  const job: ScanJob = {
    path, sessionId, afterId, toId,
    ctl: new SharedArrayBuffer(CTL_WORDS * 4),
    rows: new SharedArrayBuffer(SLOTS * SLOT_ROWS * ROW_F * 8),
    err: new SharedArrayBuffer(ERR_BYTES),
  };
  const ctl = new Int32Array(job.ctl);
  let worker: Worker;
  try {
    worker = new Worker(new URL('./event-scan-worker.js', import.meta.url), { workerData: job });
  } catch {
    return null;
  }
  worker.unref();
  // the worker reports through the shared words only: this thread does not return to its event loop meanwhile
  worker.on('error', () => undefined);
  if (Atomics.wait(ctl, C_STARTED, 0, START_TIMEOUT_MS) === 'timed-out' && Atomics.load(ctl, C_STARTED) === 0) {
    void worker.terminate();
    return null;
  }
  const S = new Float64Array(job.rows);
  let consumed = 0;
  let read = 0;
  let idleMs = 0;
  for (;;) {
    const produced = Atomics.load(ctl, C_PRODUCED);
    if (produced > consumed) {
      const slot = consumed % SLOTS;
      const n = Atomics.load(ctl, C_COUNTS + slot);
      let o = slot * SLOT_ROWS * ROW_F;
      for (let i = 0; i < n; i++, o += ROW_F) {
        const dur = S[o + 2]!, ret = S[o + 6]!, a0 = S[o + 7]!, a1 = S[o + 8]!, a2 = S[o + 9]!, a3 = S[o + 10]!;
        // NaN stands for NULL (x !== x only for NaN)
        row(S[o]!, S[o + 1]!, dur === dur ? dur : null, S[o + 3]!, S[o + 4]!, S[o + 5]!, ret === ret ? ret : null, a0 === a0 ? a0 : null, a1 === a1 ? a1 : null, a2 === a2 ? a2 : null, a3 === a3 ? a3 : null);
        if ((++read & 0xffff) === 0) onProgress?.(read);
      }
      consumed++;
      Atomics.store(ctl, C_CONSUMED, consumed);
      Atomics.notify(ctl, C_CONSUMED);
      idleMs = 0;
      continue;
    }
    const state = Atomics.load(ctl, C_STATE);
    if (state === STATE_ERROR) {
      // nothing delivered yet (the file could not be opened there, say): the caller's connection reads it inline
      if (read === 0 && consumed === 0) return null;
      const len = Atomics.load(ctl, C_ERRLEN);
      throw new Error(`reading events on the scan thread failed: ${Buffer.from(new Uint8Array(job.err, 0, len)).toString('utf8')}`);
    }
    // DONE is set after the last slot was published: produced, read again, is final
    if (state === STATE_DONE && Atomics.load(ctl, C_PRODUCED) === consumed) return read;
    if (Atomics.wait(ctl, C_PRODUCED, produced, 1000) === 'timed-out' && (idleMs += 1000) >= STALL_TIMEOUT_MS) {
      void worker.terminate();
      throw new Error(`the event scan thread made no progress for ${STALL_TIMEOUT_MS / 1000} s (${read} rows read)`);
    }
  }
}
