// Locks in, without root or BPF: the capture loop (Capture over an in-memory Addon replaying recorded
// batches) decodes every record into the store exactly once across drains and batch boundaries, keeps
// the header flags, turns the kernel's cw_drops counters into drops rows, and the session bookkeeping
// (events_stored, events_dropped, processes) adds up: stored + lost = produced.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { Capture, type BatchSink } from '../../src/capture/pipeline.js';
import { TimeBase } from '../../src/capture/decode.js';
import { openWritable } from '../../src/store/db.js';
import { createSession, finishSession, recordLosses, upsertProcesses } from '../../src/store/session.js';
import { EventWriter } from '../../src/store/writer.js';
import { getSession } from '../../src/store/reader.js';
import { OP_BY_NAME } from '../../src/common/ops.js';
import { Flag, LOSS_REASONS } from '../../src/common/wire.js';
import { FakeAddon, callRecord, exitRecord, frame } from '../helpers/fake-addon.js';
import { tempDir } from '../helpers/temp-dir.js';

test('capture loop over a fake addon: exact counts, flags, losses and session bookkeeping', () => {
  const dir = tempDir('cw-capture-');
  const db = openWritable(path.join(dir, 'c.db'));
  const start = 1_000_000_000n;
  const sid = createSession(db, { startedNs: start, wallStartNs: 0n });
  const writer = new EventWriter(db, sid);
  const sink: BatchSink = {
    write: (b) => void writer.writeBatch(b),
    processes: (p) => upsertProcesses(db, sid, p),
    internStack: () => -1,
  };
  const addon = new FakeAddon();
  const memcpy = OP_BY_NAME.get('cudaMemcpy')!.code;
  const malloc = OP_BY_NAME.get('cudaMalloc')!.code;
  // 3 drains on rb_calls of 400, 1 and 599 records (one with an unreadable out-pointer), 1 on rb_life
  let ts = start;
  const calls = (n: number) => Array.from({ length: n }, (_, i) => callRecord({ ts: (ts += 1000n), pid: 4242, op: i % 2 ? memcpy : malloc, dur: 500 + i, a0: 4096 }));
  addon.push('rb_calls', frame(calls(400)));
  addon.push('rb_calls', frame([callRecord({ ts: (ts += 1000n), pid: 4242, op: malloc, dur: 10, a0: 64, flags: Flag.OUT_READ_FAIL })]));
  addon.push('rb_calls', frame(calls(599)));
  addon.push('rb_life', frame([exitRecord({ ts: (ts += 1000n), pid: 4242, code: 9, signaled: true, comm: 'trainer' })]));
  // the kernel lost 7 calls to a full ring and 2 to missed returns; 3 stacks were unavailable (not lost events)
  const drops = LOSS_REASONS.map(() => 0n);
  drops[LOSS_REASONS.indexOf('rb_calls_full')] = 7n;
  drops[LOSS_REASONS.indexOf('missed_return')] = 2n;
  drops[LOSS_REASONS.indexOf('stack_unavailable')] = 3n;
  addon.counters.set('cw_drops', drops);

  const rings = ['rb_calls', 'rb_host', 'rb_life'].map((name) => ({ name, handle: addon.ringOpen(1, name) }));
  // batches of 128 events: 1001 records cross batch boundaries inside one drain
  const cap = new Capture(addon, rings, 1, new TimeBase(start), sink, {}, null, { batchEvents: 128, drainBytes: 1 << 17 });
  const moved = cap.tick();
  assert.equal(moved, 1001);
  assert.equal(cap.tick(), 0, 'nothing replayed twice');
  assert.equal(cap.stats.malformed, 0);
  const losses = cap.losses();
  assert.deepEqual(
    losses.map((l) => [l.stage, l.reason, l.count]).sort(),
    [
      ['kernel', 'missed_return', 2],
      ['kernel', 'rb_calls_full', 7],
      ['kernel', 'stack_unavailable', 3],
    ],
  );
  assert.equal(Capture.lostEvents(losses), 9);
  cap.stop();
  writer.close();
  const lost = Capture.lostEvents(losses);
  recordLosses(db, sid, losses);
  finishSession(db, sid, { status: 'complete', endedNs: Number(ts - start) });

  const s = getSession(db, sid)!;
  assert.equal(s.eventsStored, 1001);
  assert.equal(s.eventsStored + lost, 1001 + 9, 'stored + lost = produced');
  assert.equal(db.prepare('SELECT count(*) FROM v_cuda_calls WHERE session_id = ?').pluck().get(sid), 1000);
  assert.deepEqual(db.prepare('SELECT dur_ns, bytes, out_read_failed FROM v_cuda_calls WHERE out_read_failed = 1').all(), [{ dur_ns: 10, bytes: 64, out_read_failed: 1 }]);
  // times are session-relative and in order
  const t = db.prepare('SELECT min(ts_ns) AS lo, max(ts_ns) AS hi FROM v_cuda_calls').get() as { lo: number; hi: number };
  assert.deepEqual(t, { lo: 1000, hi: 1000 * 1000 }); // the 1000th call; the exit is the 1001st record
  assert.deepEqual(db.prepare("SELECT pid, exit_code, signaled, comm FROM v_process_events WHERE event = 'exit'").all(), [{ pid: 4242, exit_code: 9, signaled: 1, comm: 'trainer' }]);
  assert.deepEqual(db.prepare('SELECT stage, reason, count FROM drops WHERE session_id = ? ORDER BY reason').all(sid), [
    { stage: 'kernel', reason: 'missed_return', count: 2 },
    { stage: 'kernel', reason: 'rb_calls_full', count: 7 },
    { stage: 'kernel', reason: 'stack_unavailable', count: 3 },
  ]);
  db.close();
  fs.rmSync(dir, { recursive: true });
});
