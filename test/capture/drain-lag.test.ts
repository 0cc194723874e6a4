// Locks in the two signals the tracer's CPU confinement (src/run/tracer-cpus.ts) takes from the capture loop:
// Capture.calls counts CUDA call records only (host context excluded), the "first call" that confinement waits for;
// and the behind hook fires once when a source's ring is found half full (BEHIND_FILL) and once when it is near
// empty again (CAUGHT_UP_FILL), with nothing in between.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Capture, type BatchSink } from '../../src/capture/pipeline.js';
import type { RecordSource } from '../../src/capture/inproc-source.js';
import { TimeBase } from '../../src/capture/decode.js';
import { FakeAddon, callRecord, frame, offCpuRecord } from '../helpers/fake-addon.js';

function rig(fills: number[]) {
  const addon = new FakeAddon();
  const rings = ['rb_calls', 'rb_host', 'rb_life'].map((name) => ({ name, handle: addon.ringOpen(1, name) }));
  const sink: BatchSink = { write: () => {}, processes: () => {}, internStack: () => -1 };
  let k = 0;
  const src: RecordSource = { name: 'fake', drain: () => 0, losses: () => [], takeFill: () => fills[k++] ?? 0 };
  const seen: boolean[] = [];
  const cap = new Capture(addon, rings, 1, new TimeBase(1_000_000_000n), sink, { behind: (on) => seen.push(on) }, null, { batchEvents: 128, drainBytes: 1 << 16, sources: [src] });
  return { addon, cap, seen };
}

test('behind: once at half a ring unread, once when near empty again; never without a source that reports its fill', () => {
  const { cap, seen } = rig([0.1, 0.49, 0.5, 0.9, 0.3, 0.2, 0.124, 0.05, 0.6]);
  const at: boolean[][] = [];
  for (let i = 0; i < 9; i++) {
    cap.tick();
    at.push([...seen]);
  }
  assert.deepEqual(at[1], [], 'below half: not behind');
  assert.deepEqual(at[2], [true], 'half a ring unread: behind');
  assert.deepEqual(at[5], [true], 'still above the caught-up mark: no change');
  assert.deepEqual(at[6], [true, false], 'caught up');
  assert.deepEqual(seen, [true, false, true], 'behind again later');

  const addon = new FakeAddon();
  const rings = ['rb_calls'].map((name) => ({ name, handle: addon.ringOpen(1, name) }));
  const quiet: boolean[] = [];
  const plain = new Capture(addon, rings, 1, new TimeBase(1n), { write: () => {}, processes: () => {}, internStack: () => -1 }, { behind: (on) => quiet.push(on) }, null, {
    batchEvents: 128,
    drainBytes: 1 << 16,
    sources: [{ name: 'old', drain: () => 0, losses: () => [] }],
  });
  plain.tick();
  assert.deepEqual(quiet, []);
});

test('calls: CUDA call records only, not host context; firstCall once, at the tick of the first', () => {
  const addon = new FakeAddon();
  const rings = ['rb_calls', 'rb_host', 'rb_life'].map((name) => ({ name, handle: addon.ringOpen(1, name) }));
  let first = 0;
  const cap = new Capture(addon, rings, 1, new TimeBase(1_000_000_000n), { write: () => {}, processes: () => {}, internStack: () => -1 }, { firstCall: () => first++ }, null, { batchEvents: 128, drainBytes: 1 << 16 });
  const t = 1_000_000_000n;
  assert.equal(cap.calls, 0);
  addon.push('rb_host', frame([offCpuRecord({ ts: t + 10n, pid: 5, dur: 100, by: 6, byComm: 'x' })]));
  cap.tick();
  assert.equal(cap.calls, 0, 'an off-CPU record is no call');
  assert.equal(first, 0);
  addon.push('rb_calls', frame([callRecord({ ts: t + 20n, pid: 5, op: 1, dur: 50 }), callRecord({ ts: t + 30n, pid: 5, op: 2, dur: 50 })]));
  cap.tick();
  assert.equal(cap.calls, 2);
  assert.equal(first, 1);
  addon.push('rb_calls', frame([callRecord({ ts: t + 40n, pid: 5, op: 1, dur: 50 })]));
  cap.tick();
  assert.equal(cap.calls, 3);
  assert.equal(first, 1, 'once');
});
