// Locks in, without root or BPF: the lifecycle ring (fastRings) is drained when the addon's ringWatch
// callback fires (the kernel woke us: a parked process, a traced fork or exec) and is not polled on a
// timer meanwhile; stop() ends the watch; an addon without ringWatch keeps the 2 ms poll.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Capture, type BatchSink } from '../../src/capture/pipeline.js';
import { TimeBase } from '../../src/capture/decode.js';
import type { EventBatch } from '../../src/common/events.js';
import type { RingHandle } from '../../src/probe/addon-types.js';
import { FakeAddon, exitRecord, frame } from '../helpers/fake-addon.js';

class WatchingAddon extends FakeAddon {
  readonly watches = new Map<RingHandle, (() => void) | null>();
  ringWatch(ring: RingHandle, fn: (() => void) | null): void {
    this.watches.set(ring, fn);
  }
}

const start = 1_000_000_000n;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function capture(addon: FakeAddon, stored: number[]): Capture {
  const sink: BatchSink = {
    write: (b: EventBatch) => void stored.push(b.n),
    processes: () => {},
    internStack: () => -1,
  };
  const rings = ['rb_calls', 'rb_life'].map((name) => ({ name, handle: addon.ringOpen(1, name) }));
  // the main drain timer far out of the way: only the watch (or the fallback poll) can drain here
  return new Capture(addon, rings, 1, new TimeBase(start), sink, {}, null, { intervalMs: 60_000, fastRings: ['rb_life'] });
}

test('the lifecycle ring is drained when the kernel wakes the watch, and not polled meanwhile', async () => {
  const addon = new WatchingAddon();
  const stored: number[] = [];
  const cap = capture(addon, stored);
  cap.start();
  const life = addon.ringOpen(1, 'rb_life');
  const cb = addon.watches.get(life);
  assert.equal(typeof cb, 'function', 'rb_life is watched');
  assert.equal(addon.watches.size, 1, 'only the fast ring is watched');
  addon.push('rb_life', frame([exitRecord({ ts: start + 1000n, pid: 4242, code: 0, signaled: false, comm: 'w' })]));
  await sleep(50);
  assert.equal(addon.drains, 0, 'no timer drains the ring while nothing wakes the watch');
  cb!();
  assert.deepEqual(stored, [1], 'the record is decoded and handed over from the watch callback');
  cap.stop();
  assert.equal(addon.watches.get(life), null, 'stop() ends the watch');
});

test('an addon without ringWatch: the lifecycle ring is polled', async () => {
  const addon = new FakeAddon();
  const stored: number[] = [];
  const cap = capture(addon, stored);
  cap.start();
  addon.push('rb_life', frame([exitRecord({ ts: start + 1000n, pid: 4242, code: 0, signaled: false, comm: 'w' })]));
  for (let i = 0; i < 100 && !stored.length; i++) await sleep(10);
  cap.stop();
  assert.deepEqual(stored, [1]);
  assert.ok(addon.drains > 1, 'drained by the poll timer');
});
