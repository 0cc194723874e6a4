// Locks in, without root or BPF and without timing (mocked timers): an idle capture loop backs off
// (after IDLE_TICKS empty ticks the drain period doubles up to idleIntervalMs), the first tick that
// drains a record goes back to the full rate, wake() (a lifecycle record) pulls the next tick forward,
// the `active` hook fires when the loop leaves its back-off, and without idleIntervalMs nothing changes.
import { test, mock } from 'node:test';
import assert from 'node:assert/strict';
import { Capture, type BatchSink } from '../../src/capture/pipeline.js';
import { TimeBase } from '../../src/capture/decode.js';
import type { EventBatch } from '../../src/common/events.js';
import { FakeAddon, callRecord, frame } from '../helpers/fake-addon.js';

const start = 1_000_000_000n;

function setup(opts: { idleIntervalMs?: number }, active?: () => void) {
  const addon = new FakeAddon();
  const stored: number[] = [];
  const sink: BatchSink = { write: (b: EventBatch) => void stored.push(b.n), processes: () => {}, internStack: () => -1 };
  const rings = ['rb_calls'].map((name) => ({ name, handle: addon.ringOpen(1, name) }));
  const cap = new Capture(addon, rings, 1, new TimeBase(start), sink, { ...(active ? { active } : {}) }, null, { intervalMs: 20, ...opts });
  return { addon, stored, cap };
}

/** ticks (one drain of the one ring each) in the next `ms` of mocked time, 1 ms at a time */
function ticksIn(addon: FakeAddon, ms: number): number {
  const d0 = addon.drains;
  for (let i = 0; i < ms; i++) mock.timers.tick(1);
  return addon.drains - d0;
}

test('idle: the drain period backs off to idleIntervalMs; a record brings it back to intervalMs', () => {
  mock.timers.enable({ apis: ['setTimeout', 'setInterval'] });
  try {
    let activations = 0;
    const { addon, stored, cap } = setup({ idleIntervalMs: 160 }, () => activations++);
    cap.start();
    // 5 empty ticks at 20 ms, then 40, 80, 160, 160, ...: 100 + 40 + 80 + 160 = 380 ms for the first 8
    assert.equal(ticksIn(addon, 100), 5);
    assert.equal(cap.idle, true);
    assert.equal(ticksIn(addon, 280), 3);
    assert.equal(ticksIn(addon, 1600), 10, 'backed off: one tick per 160 ms');
    // a record arrives: drained at the next (backed-off) tick, then the full rate again
    addon.push('rb_calls', frame([callRecord({ ts: start + 1000n, pid: 7, op: 1, dur: 5 })]));
    ticksIn(addon, 160);
    assert.deepEqual(stored, [1], 'drained and handed over');
    assert.equal(cap.idle, false);
    assert.equal(activations, 1, 'active hook: the loop left its back-off');
    assert.equal(ticksIn(addon, 100), 5, 'back at one tick per 20 ms');
    cap.stop();
  } finally {
    mock.timers.reset();
  }
});

test('idle: wake() pulls the next tick to within intervalMs', () => {
  mock.timers.enable({ apis: ['setTimeout', 'setInterval'] });
  try {
    let activations = 0;
    const { addon, cap } = setup({ idleIntervalMs: 160 }, () => activations++);
    cap.start();
    ticksIn(addon, 1000);
    assert.equal(cap.idle, true);
    // just after a tick: the next one is ~160 ms away
    const d0 = addon.drains;
    while (addon.drains === d0) mock.timers.tick(1);
    cap.wake();
    assert.equal(activations, 1);
    assert.equal(ticksIn(addon, 20), 1, 'the next tick within 20 ms');
    cap.wake();
    assert.equal(activations, 1, 'a wake at the full rate calls no hook (it only restarts the idle count)');
    // 5 empty ticks at 20 ms after that wake, then it backs off again (40 ms)
    assert.equal(ticksIn(addon, 100), 5, 'the full rate until it idles again');
    assert.equal(ticksIn(addon, 40), 1, 'then backs off again');
    cap.stop();
    const after = addon.drains;
    ticksIn(addon, 500);
    assert.equal(addon.drains, after, 'stop() leaves no timer behind');
  } finally {
    mock.timers.reset();
  }
});

test('without idleIntervalMs the loop drains every intervalMs, idle or not', () => {
  mock.timers.enable({ apis: ['setTimeout', 'setInterval'] });
  try {
    const { addon, cap } = setup({});
    cap.start();
    assert.equal(ticksIn(addon, 1000), 50);
    assert.equal(cap.idle, true, 'idle is reported');
    cap.stop();
  } finally {
    mock.timers.reset();
  }
});
