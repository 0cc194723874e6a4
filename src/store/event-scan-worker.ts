/**
 * The scan thread of event-scan.ts: reads the session's rows (afterId, toId] on its own read-only connection and
 * packs them into the shared slots, waiting while every slot is full.
 */
import { workerData } from 'node:worker_threads';
import Database from 'better-sqlite3';
import {
  C_CONSUMED, C_COUNTS, C_ERRLEN, C_PRODUCED, C_STARTED, C_STATE, ERR_BYTES, EVENT_COLS, ROW_F, SLOTS, SLOT_ROWS, STATE_DONE, STATE_ERROR,
  type ScanJob,
} from './event-scan.js';

const job = workerData as ScanJob;
const ctl = new Int32Array(job.ctl);
const S = new Float64Array(job.rows);
Atomics.store(ctl, C_STARTED, 1);
Atomics.notify(ctl, C_STARTED);

let produced = 0;
let fill = 0;
let base = 0;

/** Publish the slot being filled; wait until the next one is free. */
function publish(): void {
  Atomics.store(ctl, C_COUNTS + (produced % SLOTS), fill);
  produced++;
  Atomics.store(ctl, C_PRODUCED, produced);
  Atomics.notify(ctl, C_PRODUCED);
  fill = 0;
  base = (produced % SLOTS) * SLOT_ROWS * ROW_F;
  for (;;) {
    const consumed = Atomics.load(ctl, C_CONSUMED);
    if (produced - consumed < SLOTS) return;
    Atomics.wait(ctl, C_CONSUMED, consumed, 1000);
  }
}

try {
  const db = new Database(job.path, { readonly: true, fileMustExist: true });
  db.pragma('query_only = 1');
  db.function('cw_scan_row', { deterministic: false }, ((id: number, ts: number, dur: number | null, pid: number, tid: number, op: number, ret: number | null, a0: number | null, a1: number | null, a2: number | null, a3: number | null): null => {
    const o = base + fill * ROW_F;
    S[o] = id;
    S[o + 1] = ts;
    S[o + 2] = dur ?? NaN;
    S[o + 3] = pid;
    S[o + 4] = tid;
    S[o + 5] = op;
    S[o + 6] = ret ?? NaN;
    S[o + 7] = a0 ?? NaN;
    S[o + 8] = a1 ?? NaN;
    S[o + 9] = a2 ?? NaN;
    S[o + 10] = a3 ?? NaN;
    if (++fill === SLOT_ROWS) publish();
    return null;
  }) as (...args: unknown[]) => null);
  db.prepare(`SELECT count(cw_scan_row(${EVENT_COLS})) FROM events WHERE session_id = ? AND id > ? AND id <= ?`).get(job.sessionId, job.afterId, job.toId);
  if (fill > 0) publish();
  db.close();
  Atomics.store(ctl, C_STATE, STATE_DONE);
} catch (e) {
  const msg = Buffer.from(String((e as Error)?.message ?? e)).subarray(0, ERR_BYTES);
  new Uint8Array(job.err).set(msg);
  Atomics.store(ctl, C_ERRLEN, msg.length);
  Atomics.store(ctl, C_STATE, STATE_ERROR);
}
Atomics.notify(ctl, C_PRODUCED);
