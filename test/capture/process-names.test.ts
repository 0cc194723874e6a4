// Locks in which name a process keeps (ProcessInfo.commSeen): an off-CPU record names the task that preempted a
// traced thread as it was at the switch-out, and arrives when the preempted thread runs again, possibly after that
// task exec'd and exited (seen in CI: a forked `sh` child stored as 'sh' after its exec of `true`). Such a name never
// replaces one from the process's own records, in the same drain or a later one; a task seen only that way keeps
// the latest name seen.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { Capture, type BatchSink } from '../../src/capture/pipeline.js';
import { TimeBase } from '../../src/capture/decode.js';
import { openWritable } from '../../src/store/db.js';
import { createSession, upsertProcesses } from '../../src/store/session.js';
import { EventWriter } from '../../src/store/writer.js';
import { FakeAddon, exitRecord, frame, offCpuRecord } from '../helpers/fake-addon.js';
import { tempDir } from '../helpers/temp-dir.js';

test('a name seen beside a traced thread never replaces the process own; a task only seen keeps the latest', () => {
  const dir = tempDir('cw-names-');
  const db = openWritable(path.join(dir, 'n.db'));
  const start = 1_000_000_000n;
  const sid = createSession(db, { startedNs: start, wallStartNs: 0n });
  const writer = new EventWriter(db, sid);
  const sink: BatchSink = { write: (b) => void writer.writeBatch(b), processes: (p) => upsertProcesses(db, sid, p), internStack: () => -1 };
  const addon = new FakeAddon();
  const rings = ['rb_calls', 'rb_host', 'rb_life'].map((name) => ({ name, handle: addon.ringOpen(1, name) }));
  const cap = new Capture(addon, rings, 1, new TimeBase(start), sink, {}, null, { batchEvents: 128, drainBytes: 1 << 17 });
  // drain 1: the child (77) exits as 'true'; in the same drain, but from the host ring drained before the life ring,
  // the parent's off-CPU record names it 'sh' (its name before the exec)
  addon.push('rb_host', frame([offCpuRecord({ ts: start + 1000n, pid: 50, dur: 5000, by: 77, byComm: 'sh' })]));
  addon.push('rb_life', frame([exitRecord({ ts: start + 9000n, pid: 77, code: 0, comm: 'true' })]));
  cap.tick();
  // drain 2: another late record with the old name; and a task (88) only ever seen preempting, renamed between
  addon.push('rb_host', frame([offCpuRecord({ ts: start + 2000n, pid: 50, dur: 100, by: 77, byComm: 'sh' }), offCpuRecord({ ts: start + 3000n, pid: 50, dur: 100, by: 88, byComm: 'old-name' })]));
  cap.tick();
  addon.push('rb_host', frame([offCpuRecord({ ts: start + 4000n, pid: 50, dur: 100, by: 88, byComm: 'new-name' })]));
  cap.tick();
  cap.stop?.();
  const rows = db.prepare('SELECT pid, comm, traced FROM processes WHERE session_id = ? ORDER BY pid').all(sid) as { pid: number; comm: string; traced: number }[];
  db.close();
  assert.deepEqual(rows.find((r) => r.pid === 77), { pid: 77, comm: 'true', traced: 1 });
  assert.deepEqual(rows.find((r) => r.pid === 88), { pid: 88, comm: 'new-name', traced: 0 });
});
