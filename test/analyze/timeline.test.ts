// Locks in two rules of the GPU timeline (src/analyze/timeline.ts, issue #11) on hand-made event sequences, where
// the right answer follows from the sequence itself:
//  - a runnable span right after a wakeup, while the task that woke the thread holds its CPU, is still the wait
//    for that task (a loader handing over data), not preemption;
//  - drains that found the queue empty bound the kernel time: one drain that returned late (a measured completion
//    is only an upper bound) does not stretch the kernels of every later segment over the host gaps, nor, when it
//    returns later than those bounds let the queue run, the kernels of its own segment.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { OP_BY_NAME } from '../../src/common/ops.js';
import { Timeline, WAKE_IO } from '../../src/analyze/timeline.js';
import { q } from '../../src/analyze/stats.js';
import type { ProbeCost } from '../../src/analyze/probe-cost.js';

const LAUNCH = OP_BY_NAME.get('cudaLaunchKernel')!.code;
const SYNC = OP_BY_NAME.get('cudaStreamSynchronize')!.code;
const US = 1000;
const PREEMPTED = 0;
const VOLUNTARY = 1;
const IO_WAIT = 2;
const EREC = OP_BY_NAME.get('cudaEventRecord')!.code;
const ESYNC = OP_BY_NAME.get('cudaEventSynchronize')!.code;

/** One thread's clock feeding a Timeline: 10 launches of 100 µs kernels (5 µs each), records and waits on event 7. */
class EventLoop {
  id = 0;
  t = 0;
  /** the queue's completion */
  gpu = 0;
  constructor(readonly tl: Timeline) {}
  launches(): void {
    for (let i = 0; i < 10; i++) {
      this.tl.call(++this.id, this.t, this.t + 5 * US, LAUNCH, 'cudaLaunchKernel', 'submit', 0, null);
      this.t += 5 * US;
      this.gpu = Math.max(this.gpu, this.t) + 100 * US;
    }
  }
  /** cudaEventRecord of event 7; returns the completion of the work before it */
  record(): number {
    this.tl.call(++this.id, this.t, this.t + 2 * US, EREC, 'cudaEventRecord', 'other', 0, null);
    this.tl.eventRecord(7, 0);
    this.t += 2 * US;
    return this.gpu;
  }
  /** cudaEventSynchronize of event 7, returning once `done` (the recorded work's completion) passed */
  wait(done: number): void {
    const end = Math.max(this.t + 2 * US, done + 5 * US);
    this.tl.call(++this.id, this.t, end, ESYNC, 'cudaEventSynchronize', 'drain', 0, null);
    this.tl.drain(this.id, this.t, end, 'cudaEventSynchronize', 0, null, ESYNC, false, 7);
    this.t = end;
  }
}

test('woken by a task, then runnable while that task keeps the CPU: the whole span is the wait for it', () => {
  // the sync returns at once (1 µs, the thread's fastest), so its queue of one 1 µs-ish kernel is empty after it
  const tl = new Timeline(new Map(), new Map([[SYNC, 1 * US]]));
  let id = 0;
  tl.call(++id, 0, 1 * US, LAUNCH, 'cudaLaunchKernel', 'submit', 0, null);
  tl.call(++id, 2 * US, 3 * US, SYNC, 'cudaStreamSynchronize', 'drain', 0, null);
  tl.drain(id, 2 * US, 3 * US, 'cudaStreamSynchronize', 0, null, SYNC);
  // asleep until pid 42 (a loader of the same process) wakes it, then runnable 300 µs while pid 42 runs on its CPU
  tl.off(++id, 10 * US, 1000 * US, VOLUNTARY, 7, 42);
  tl.off(++id, 1000 * US, 1300 * US, PREEMPTED, 42, 0);
  // and 200 µs of preemption by an unrelated task later on the path, which stays preemption
  tl.off(++id, 1400 * US, 1600 * US, PREEMPTED, 99, 0);
  tl.call(++id, 1700 * US, 1701 * US, LAUNCH, 'cudaLaunchKernel', 'submit', 0, null);
  tl.call(++id, 1702 * US, 1703 * US, SYNC, 'cudaStreamSynchronize', 'drain', 0, null);
  tl.drain(id, 1702 * US, 1703 * US, 'cudaStreamSynchronize', 0, null, SYNC);
  const m = tl.finish(new Map());
  assert.equal(m.preempted.get(42) ?? 0, 0, 'the waker holding the CPU after the wakeup is not preemption');
  assert.ok(Math.abs((m.waitBy.get(42) ?? 0) - 1290 * US) < 1 * US, `wait for pid 42: ${m.waitBy.get(42)}`);
  assert.ok(Math.abs((m.runnableBehindWaker.get(42) ?? 0) - 300 * US) < 1 * US, `runnable behind it: ${m.runnableBehindWaker.get(42)}`);
  assert.ok(Math.abs((m.preempted.get(99) ?? 0) - 200 * US) < 1 * US, 'an unrelated task stays preemption');
});

test('one late drain does not set the kernel time when drains that found the queue empty bound it', () => {
  const tl = new Timeline(new Map(), new Map([[SYNC, 1 * US]]));
  let id = 0;
  let t = 0;
  const launches = (n: number, gap: number) => {
    for (let i = 0; i < n; i++) {
      tl.call(++id, t, t + 1 * US, LAUNCH, 'cudaLaunchKernel', 'submit', 0, null);
      t += gap;
    }
  };
  const sync = (dur: number) => {
    tl.call(++id, t, t + dur, SYNC, 'cudaStreamSynchronize', 'drain', 0, null);
    tl.drain(id, t, t + dur, 'cudaStreamSynchronize', 0, null, SYNC);
    t += dur + 1 * US;
  };
  // a sync that returns 5 ms late (a late wakeup): taken as a completion it teaches ~500 µs kernels
  launches(10, 10 * US);
  sync(5000 * US);
  // twenty steps whose sync, 2 µs after the last launch, finds the queue empty: kernels take at most ~3 µs
  for (let s = 0; s < 20; s++) {
    launches(10, 10 * US);
    sync(1 * US);
  }
  // then a step with 2 ms of host work between its launches and its sync (which finds the queue empty)
  launches(10, 10 * US);
  t += 2000 * US;
  sync(1 * US);
  launches(1, 10 * US);
  sync(1 * US);
  const m = tl.finish(new Map());
  // the 2 ms host gap is GPU idle time (the kernels queued before it took microseconds); with 500 µs kernels
  // (10 queued = 5 ms) the model would have called the GPU busy through it
  assert.ok(m.idleNs >= 1900 * US, `GPU idle ${m.idleNs} ns covers the 2 ms host gap`);
});

test('a copy preempted after its transfer ended in a wakeup: the queue completed by that wakeup, not at its return', () => {
  const COPY = OP_BY_NAME.get('cudaMemcpy')!.code;
  const key = 'cudaMemcpy(HostToDevice)';
  const tl = new Timeline(new Map(), new Map([[COPY, 1 * US]]));
  let id = 0;
  // two kernels, then 3 ms of host work (touching pages), then a synchronous copy whose own transfer is 100 µs: it
  // sleeps 110 µs (the transfer, a timer wakeup), is preempted 2 ms, runs 20 µs, is preempted 1 ms, runs 5 µs
  tl.call(++id, 0, 1 * US, LAUNCH, 'cudaLaunchKernel', 'submit', 0, null);
  tl.call(++id, 2 * US, 3 * US, LAUNCH, 'cudaLaunchKernel', 'submit', 0, null);
  const t = 3003 * US;
  const end = t + 3135 * US;
  tl.call(++id, t, end, COPY, key, 'submit_drain', 1 << 20, 1);
  tl.off(++id, t, t + 110 * US, VOLUNTARY, 7, 0xfffffff3);
  tl.off(++id, t + 110 * US, t + 2110 * US, PREEMPTED, 99, 0);
  tl.off(++id, t + 2130 * US, t + 3130 * US, PREEMPTED, 99, 0);
  tl.drain(id, t, end, key, 100 * US, null, COPY, true);
  tl.call(++id, end + 10 * US, end + 11 * US, LAUNCH, 'cudaLaunchKernel', 'submit', 0, null);
  const m = tl.finish(new Map());
  // taken as a completion at its return (or at its last preemption), the copy would teach ~2.5 ms kernels and call
  // the GPU busy through the 3 ms of host work; the only wait it shows is its own transfer
  assert.equal(m.kernelNs.count, 0, `no kernel time learned from it (${m.kernelNs.count})`);
  assert.ok(m.idleNs >= 2900 * US, `GPU idle ${m.idleNs} ns covers the 3 ms of host work`);
});

test('a wait on the event of two steps before leaves the later steps queued: preemption while they run is no idle', () => {
  // A loop pipelined three deep: each step launches 10 kernels of 1 ms (10 ms of GPU work) on stream 5, records
  // an event, and waits for the event recorded two steps before. The GPU never runs dry; each wait returns when
  // the older step completes, with ~20 ms of work still queued behind it. The host is then preempted 3 ms by pid
  // 99 before its next launches: the queue still holds two steps, so that costs the GPU nothing.
  const S = 5;
  const tl = new Timeline(new Map(), new Map([[ESYNC, 2 * US]]));
  let id = 0;
  let t = 0;
  let gpu = 0; // when the GPU finishes the work queued so far (the truth the sequence is built from)
  const done: number[] = [];
  for (let step = 0; step < 12; step++) {
    for (let i = 0; i < 10; i++) {
      tl.call(++id, t, t + 10 * US, LAUNCH, 'cudaLaunchKernel', 'submit', 0, null, S);
      t += 10 * US;
      gpu = Math.max(gpu, t) + 1000 * US;
    }
    done[step] = gpu;
    tl.call(++id, t, t + 2 * US, EREC, 'cudaEventRecord', 'other', 0, null, S);
    tl.eventRecord(1000 + (step % 3), S);
    t += 2 * US;
    if (step >= 2) {
      // wait for the step two before: returns when it completes (or at once if it already has)
      const end = Math.max(t + 2 * US, done[step - 2] + 5 * US);
      tl.call(++id, t, end, ESYNC, 'cudaEventSynchronize', 'drain', 0, null);
      tl.drain(id, t, end, 'cudaEventSynchronize', 0, null, ESYNC, false, 1000 + ((step - 2) % 3));
      t = end + 1 * US;
    }
    // 3 ms preempted by pid 99, then 1 ms of host work
    tl.off(++id, t, t + 3000 * US, PREEMPTED, 99, 0);
    t += 4000 * US;
  }
  const m = tl.finish(new Map([[99, 36000 * US]]));
  // The queue runs dry only before the first step (nothing before it) and never after: at most a few µs per step
  // of estimate slack. Taking each wait as a drain of the whole queue made every preemption GPU idle (~30 ms).
  assert.ok((m.preempted.get(99) ?? 0) < 100 * US, `preemption while two steps were queued counted as idle: ${m.preempted.get(99)}`);
  assert.ok(m.idleNs < 1000 * US, `idle ${m.idleNs}`);
  // the kernel time is learned from the waits' completions of their own steps (1 ms), not from the whole queue
  assert.ok(m.kernelNs.count > 0, 'kernel time learned');
});

test('a wait on an event mid-queue: the rest of the queue covers part of the host work after it, the wait owns the idle after', () => {
  // Each step: wait for the event recorded after the previous step's first half (10 kernels of 100 µs), then 2 ms
  // of host work, then the first half, the record, the second half (10 more kernels). When the wait returns the
  // second half (1 ms) is still queued, so of the 2 ms of host work after it only ~1 ms leaves the GPU idle, and
  // that idle was serialized behind the wait (the host could have done that work while the first half ran).
  const tl = new Timeline(new Map(), new Map([[ESYNC, 2 * US]]));
  const f = new EventLoop(tl);
  let half = 0; // completion of the last first half
  const steps = 20;
  for (let step = 0; step < steps; step++) {
    if (step > 0) f.wait(half);
    f.t += 2000 * US; // host work (on CPU: no off-CPU act)
    f.launches();
    half = f.record();
    f.launches();
  }
  const m = tl.finish(new Map());
  const held = m.byDrain.get('cudaEventSynchronize')?.hostNs ?? 0;
  // ~1 ms per step after the first (2 ms of host work less the 1 ms second half still queued)
  assert.ok(Math.abs(held - (steps - 1) * 1000 * US) < (steps - 1) * 100 * US, `idle owned by the wait: ${held}`);
  assert.ok(m.hostNs < (steps - 1) * 100 * US, `host_compute left: ${m.hostNs}`);
});

test('a wait on an event mid-queue at the step\'s end: the rest runs dry in the host work after it, before an empty-queue sync; the wait owns that idle', () => {
  // Each step: 10 kernels of 100 µs, an event record, 10 more, a wait on the event (the first half), 2 ms of host
  // work, then an end-of-step stream sync that finds the queue empty. The second half (1 ms) covers half of the host
  // work; the other ~1 ms per step is GPU idle the wait serialized (the host could have worked while the first half
  // ran). The segment closes by estimate at the empty sync, with no submission since the wait: the idle up to the
  // next step's first launch is the wait's, not host_compute (found on a scratch zoo variant, --wait event --at end).
  const tl = new Timeline(new Map(), new Map([[ESYNC, 2 * US], [SYNC, 2 * US]]));
  const f = new EventLoop(tl);
  const steps = 20;
  for (let step = 0; step < steps; step++) {
    f.launches();
    const half = f.record();
    f.launches();
    f.wait(half);
    f.t += 2000 * US; // host work (on CPU)
    tl.call(++f.id, f.t, f.t + 2 * US, SYNC, 'cudaStreamSynchronize', 'drain', 0, null);
    tl.drain(f.id, f.t, f.t + 2 * US, 'cudaStreamSynchronize', 0, 0, SYNC, false, null);
    f.t += 2 * US + 50 * US; // to the next step
  }
  const m = tl.finish(new Map());
  const d = m.byDrain.get('cudaEventSynchronize');
  const held = d?.hostNs ?? 0;
  // ~1.05 ms per step between steps (the last step has no next submission)
  assert.ok(Math.abs(held - (steps - 1) * 1050 * US) < (steps - 1) * 150 * US, `idle owned by the wait: ${held}`);
  assert.equal(d?.partialGaps, d?.gaps, 'every interval came from the partial wait');
  assert.ok(m.hostNs < (steps - 1) * 100 * US, `host_compute left: ${m.hostNs}`);
});

test('with a probe-cost calibration, the probes\' traps between calls are the tracer\'s, not host computation', () => {
  // A launch-bound loop: a 5 µs launch every 15 µs (10 µs between calls), 1 µs kernels, a sync per step of 20 that
  // finds the queue empty. The calibration says each launch's probe costs 2 µs inside the record and 6 µs outside it
  // (entry and return traps): of each 10 µs between calls, 6 µs are the tracer's and 4 µs host computation, and of
  // each launch 3 µs is launch time. The same loop without a calibration reads all 10 µs as host computation.
  const ESYNC_FAST = new Map([[SYNC, 2 * US]]);
  const run = (probeCost: ProbeCost | null) => {
    const tl = new Timeline(new Map(), ESYNC_FAST);
    tl.probeCost = probeCost;
    let id = 0;
    let t = 0;
    for (let step = 0; step < 10; step++) {
      for (let i = 0; i < 20; i++) {
        tl.call(++id, t, t + 5 * US, LAUNCH, 'cudaLaunchKernel', 'submit', 0, null);
        t += 15 * US;
      }
      tl.call(++id, t, t + 2 * US, SYNC, 'cudaStreamSynchronize', 'drain', 0, null);
      tl.drain(id, t, t + 2 * US, 'cudaStreamSynchronize', 0, null, SYNC);
      t += 12 * US;
    }
    return tl.finish(new Map());
  };
  const cal: ProbeCost = { inCall: new Map([[LAUNCH, 2 * US]]), outside: new Map([[LAUNCH, 6 * US], [SYNC, 6 * US]]) };
  const bare = run(null);
  const net = run(cal);
  assert.equal(bare.tracerOutsideNs, 0);
  assert.equal(bare.idleNs, net.idleNs, 'the calibration moves idle time between causes, it does not change it');
  // every idle interval's path enters one call (a launch, or the sync and the next launch): 6 µs of traps each
  assert.ok(net.tracerOutsideNs > 0 && Math.abs(bare.hostNs - net.hostNs - net.tracerOutsideNs) < 1, `host ${bare.hostNs} -> ${net.hostNs}, traps ${net.tracerOutsideNs}`);
  assert.ok(net.hostNs < 0.5 * bare.hostNs, `host computation net of the traps: ${net.hostNs} of ${bare.hostNs}`);
  assert.ok(net.tracerInCallNs > 0, 'the part inside the launches is taken out of them too');
});

/**
 * The thread's first cudaStreamSynchronize, with nothing queued (before the scenario): a first call runs cold, and
 * an on-CPU wait of a cold call counts only past DRAIN_BLOCK_NS; the scenarios below time their own syncs.
 */
function warmSync(tl: Timeline, id: number, at: number): void {
  tl.call(id, at, at + 2 * US, SYNC, 'cudaStreamSynchronize', 'drain', 0, null);
  tl.drain(id, at, at + 2 * US, 'cudaStreamSynchronize', 0, null, SYNC);
}

test('a thread\'s first sync runs cold: its on-CPU excess teaches no kernel time unless past an empty-queue call\'s most', () => {
  // a launch-bound loop: 100 launches 30 µs apart (1.5 µs kernels), a sync 60 µs after the last; the first sync takes
  // 17 µs (fastest 6 µs: lazy binding, cold code), the others 6 µs
  const run = (firstDur: number, warm: boolean) => {
    const tl = new Timeline(new Map(), new Map([[SYNC, 6 * US]]));
    let id = 0;
    let t = 0;
    if (warm) warmSync(tl, ++id, -100 * US);
    for (let seg = 0; seg < 5; seg++) {
      for (let j = 0; j < 100; j++) {
        tl.call(++id, t, t + 20 * US, LAUNCH, 'cudaLaunchKernel', 'submit', 0, null);
        t += 30 * US;
      }
      const s = t + 60 * US;
      const d = (seg === 0 ? firstDur : 6) * US;
      tl.call(++id, s, s + d, SYNC, 'cudaStreamSynchronize', 'drain', 0, null);
      tl.drain(id, s, s + d, 'cudaStreamSynchronize', 0, null, SYNC);
      t = s + d + 10 * US;
    }
    return tl.finish(new Map());
  };
  const cold = run(17, false);
  assert.equal(cold.kernelNs.count, 0, `no kernel time learned from the cold first sync (got ${cold.kernelNs.count ? q(cold.kernelNs, 0.5) : 0})`);
  assert.equal(cold.waitedSegments, 0);
  // the same 17 µs after a warm-up call is a wait (over the fastest by more than NOISE_NS): it teaches
  const warm = run(17, true);
  assert.equal(warm.waitedSegments, 1);
  // a cold first sync that waits 3 ms on the CPU (a spin-waiting runtime) is a wait
  const spin = run(3000, false);
  assert.equal(spin.waitedSegments, 1);
  assert.equal(spin.kernelNs.count, 1);
});

test('a sync preempted at its end before any kernel time is learned measures nothing (its completion cannot be placed)', () => {
  // launch-bound segments: 100 launches 30 µs apart (1.5 µs kernels), a sync 60 µs after the last that finds the
  // queue empty (fastest 6 µs). The first segment's sync (`preemptFirst`) is preempted 6 µs after its entry for
  // 232 µs and returns 8 µs after it is back. Its completion lies anywhere in [preemption, return]: at the return it
  // needs ~34 µs kernels.
  const run = (preemptFirst: boolean, segs = 3) => {
    const tl = new Timeline(new Map(), new Map([[SYNC, 6 * US]]));
    let id = 0;
    let t = 0;
    for (let seg = 0; seg < segs; seg++) {
      for (let j = 0; j < 100; j++) {
        tl.call(++id, t, t + 20 * US, LAUNCH, 'cudaLaunchKernel', 'submit', 0, null);
        t += 30 * US;
      }
      const s = t + 60 * US;
      const d = (seg === 0 && preemptFirst ? 246 : 6) * US;
      tl.call(++id, s, s + d, SYNC, 'cudaStreamSynchronize', 'drain', 0, null);
      if (seg === 0 && preemptFirst) tl.off(++id, s + 6 * US, s + 238 * US, PREEMPTED, 99, 0);
      tl.drain(id, s, s + d, 'cudaStreamSynchronize', 0, null, SYNC);
      t = s + d + 10 * US;
    }
    return tl.finish(new Map());
  };
  const m = run(true);
  assert.equal(m.kernelNs.count, 0, `no kernel time learned (got ${m.kernelNs.count ? q(m.kernelNs, 0.5) : 0})`);
  assert.equal(m.waitedSegments, 0);
  // kernel time unknown: the launches on the path are idle time (an upper bound), as in the same loop unpreempted
  const bare = run(false);
  assert.ok(Math.abs(m.idleNs - bare.idleNs) < 300 * US, `idle ${m.idleNs} against ${bare.idleNs} unpreempted`);
});

test('a kernel time resting on a few late completions gives way to more empty-queue segments that contradict it', () => {
  // A host-bound loop of 40 segments of 10 launches 2 µs apart (returning at +1, +3 .. +19 µs). Kinds: L, a sync 5 ms
  // after them that returns at once (its bound, ~500 µs, says little); T, a sync at +25 µs that returns at once
  // (bound 2.6 µs); M, a sync at +25 µs that sleeps until +1020 µs (a late timer: a completion implying 102 µs
  // kernels); E (in place of M when m = 0), a sync at +1020 µs that returns at once. With 3 T segments among 35 L
  // ones, the 10th percentile of the bounds is an L bound; each M comes right before a T.
  const run = (m: number) => {
    const tl = new Timeline(new Map(), new Map([[SYNC, 2 * US]]));
    let id = 0;
    warmSync(tl, ++id, -100 * US);
    let t = 0;
    for (let i = 0; i < 40; i++) {
      const kind = i === 3 || i === 9 || i === 16 ? 'T' : i === 2 || i === 15 ? (m > 0 ? 'M' : 'E') : 'L';
      for (let j = 0; j < 10; j++) tl.call(++id, t + 2 * j * US, t + (2 * j + 1) * US, LAUNCH, 'cudaLaunchKernel', 'submit', 0, null);
      // without M segments (m = 0) the same two segments end the same way, their sync returning at once
      const s = t + (kind === 'L' ? 5000 : kind === 'T' || m > 0 ? 25 : 1020) * US;
      const d = (kind === 'M' ? 997 : 2) * US;
      tl.call(++id, s, s + d, SYNC, 'cudaStreamSynchronize', 'drain', 0, null);
      if (kind === 'M') tl.off(++id, s + 2 * US, s + 995 * US, VOLUNTARY, 0, 0xfffffff3);
      tl.drain(id, s, s + d, 'cudaStreamSynchronize', 0, null, SYNC);
      t = s + d + 10 * US;
    }
    return tl.finish(new Map());
  };
  const few = run(2);
  // the first late completion is a sample; the second needs kernels longer than the bounds' 10th percentile by then
  // (two T bounds among 14) and is capped there (closeSegment), as before this rule
  assert.equal(few.kernelNs.count, 1, 'the first late completion is a sample');
  assert.ok(Math.abs(q(few.kernelNs, 0.5) - 102 * US) < 2 * US, `sample median ${q(few.kernelNs, 0.5)}`);
  // the L segments' kernels take a T bound (2.6 µs), not the sample's 102 µs: each of their host waits is idle but
  // for ~26 µs of kernels, as with no sample at all (kernels taken as 0: the upper bound); the sample's own segment
  // is ~1 ms busy (~3 ms lost in all). Without this rule, the L segments whose bounds' 10th percentile was an L
  // bound took the sample's 102 µs and hid ~1 ms of idle each (9.9 ms lost).
  const none = run(0);
  const lost = none.idleNs - few.idleNs;
  assert.ok(lost > 1000 * US && lost < 5000 * US, `idle lost to the late sample: ${lost} ns`);
});

test('a second sweep\'s prior stands for the samples it summarizes: one early completion measured late does not set the kernel time after it', () => {
  // Segment 1: 10 launches, then a sync that returns 5 ms after the first one (late: the thread was held off its
  // CPU before the sync, and its return measures a completion that implies 500 µs kernels). Segments 2-4: 10
  // launches, 3 ms of host work, a sync that finds the queue empty (closed by estimate). With the prior of a first
  // sweep (100 µs, the median of 16 samples), the estimated segments' kernels take 100 µs and ~2 ms of each host
  // phase is GPU idle; with the late sample alone they took its 500 µs (capped by the empty-queue bound) and most
  // of that idle time read as busy.
  const run = (priorSamples: number) => {
    const tl = new Timeline(new Map(), new Map([[SYNC, 2 * US]]), 100 * US, null, priorSamples);
    let id = 0;
    let t = 0;
    warmSync(tl, ++id, -100 * US);
    for (let seg = 0; seg < 4; seg++) {
      const s0 = t;
      for (let i = 0; i < 10; i++) {
        tl.call(++id, t, t + 5 * US, LAUNCH, 'cudaLaunchKernel', 'submit', 0, null);
        t += 5 * US;
      }
      if (seg === 0) {
        const end = s0 + 5000 * US;
        tl.call(++id, end - 20 * US, end, SYNC, 'cudaStreamSynchronize', 'drain', 0, null);
        tl.drain(id, end - 20 * US, end, 'cudaStreamSynchronize', 0, null, SYNC);
        t = end + 10 * US;
        continue;
      }
      t += 3000 * US;
      tl.call(++id, t, t + 2 * US, SYNC, 'cudaStreamSynchronize', 'drain', 0, null);
      tl.drain(id, t, t + 2 * US, 'cudaStreamSynchronize', 0, null, SYNC);
      t += 10 * US;
    }
    return tl.finish(new Map());
  };
  const withPrior = run(16);
  const firstSampleOnly = run(0);
  assert.equal(withPrior.kernelNs.count, 1, 'the late completion is still a sample');
  // idle is counted up to the next submission: the host phases of segments 2 and 3 (segment 4 has none after it)
  assert.ok(withPrior.idleNs > firstSampleOnly.idleNs + 2 * 1500 * US, `idle ${withPrior.idleNs} vs ${firstSampleOnly.idleNs}`);
  assert.ok(Math.abs(withPrior.idleNs - 2 * 2000 * US) < 2 * 300 * US, `each host phase leaves ~2 ms idle: ${withPrior.idleNs}`);
});

test('segments of many launches on two streams, synced one stream at a time: every gap as computed by hand', () => {
  // Five identical steps, 3 ms apart. Per step: 50 launches on stream 2 every 40 µs and 50 on stream 1 in between
  // (1 µs each), a sync of stream 1 (other work pending: stream 1's part leaves the queue, nothing closes), then a
  // sync of stream 2 that waits 12 µs. Sizes beyond the first allocations of the pending submissions, and acts
  // trimmed at one segment and logged again at the next (src/analyze/timeline.ts keeps both in reused storage):
  // any value left over from an earlier segment would change the sums below.
  const tl = new Timeline(new Map(), new Map([[SYNC, 1 * US]]));
  const STEPS = 5;
  let id = 0;
  warmSync(tl, ++id, -100 * US);
  for (let s = 0; s < STEPS; s++) {
    const T = s * 3000 * US;
    for (let j = 0; j < 50; j++) {
      tl.call(++id, T + 40 * j * US, T + (40 * j + 1) * US, LAUNCH, 'cudaLaunchKernel', 'submit', 0, null, 2);
      tl.call(++id, T + (40 * j + 20) * US, T + (40 * j + 21) * US, LAUNCH, 'cudaLaunchKernel', 'submit', 0, null, 1);
    }
    tl.call(++id, T + 1982 * US, T + 1983 * US, SYNC, 'cudaStreamSynchronize', 'drain', 0, null, 1);
    tl.drain(id, T + 1982 * US, T + 1983 * US, 'cudaStreamSynchronize', 0, 1, SYNC);
    tl.call(++id, T + 1984 * US, T + 1996 * US, SYNC, 'cudaStreamSynchronize', 'drain', 0, null, 2);
    tl.drain(id, T + 1984 * US, T + 1996 * US, 'cudaStreamSynchronize', 0, 2, SYNC);
  }
  const m = tl.finish(new Map());
  // stream 2's launches return at T + 40j + 1 and complete at T + 1996: the kernel time is min over the last M of
  // (1996 - (40(50-M) + 1)) / M, 35 µs (M = 1); each of the 49 gaps between them leaves the GPU idle 40 - 35 = 5 µs
  assert.equal(m.segments, STEPS);
  assert.equal(m.waitedSegments, STEPS);
  assert.equal(m.kernelNs.count, STEPS);
  assert.ok(Math.abs(q(m.kernelNs, 0.5) - 35 * US) <= 0.01 * 35 * US, `kernel time ${q(m.kernelNs, 0.5)}`);
  // between steps: idle from the sync's return (T + 1996) to the next step's first submission (T + 3001)
  assert.equal(m.idleNs, STEPS * 49 * 5 * US + (STEPS - 1) * 1005 * US);
  assert.equal(m.busyNs, STEPS * 50 * 35 * US);
  // each 5 µs gap's path (from the previous stream-2 return) holds two 1 µs launches, the rest is host time; each
  // gap between steps holds one launch and is the sync's host time
  assert.equal(m.inCalls.get('cudaLaunchKernel')?.ns, STEPS * 49 * 2 * US + (STEPS - 1) * 1 * US);
  assert.equal(m.hostNs, STEPS * 49 * 3 * US);
  assert.equal(m.byDrain.get('cudaStreamSynchronize')?.hostNs, (STEPS - 1) * 1004 * US);
});

test('a launch-bound loop whose sync returns a few µs late teaches no kernel as long as a launch; a backed-up queue still teaches', () => {
  // segments of 200 launches 27 µs apart (20 µs each); each ends in a sync entered `after` µs after the last launch's
  // return and taking `dur` µs (its fastest is 4 µs)
  const run = (segs: [after: number, dur: number][]) => {
    const tl = new Timeline(new Map(), new Map([[SYNC, 4 * US]]));
    let id = 0;
    let t = 0;
    for (const [after, dur] of segs) {
      for (let j = 0; j < 200; j++) {
        tl.call(++id, t, t + 20 * US, LAUNCH, 'cudaLaunchKernel', 'submit', 0, null);
        t += 27 * US;
      }
      const s = t - 7 * US + after * US;
      tl.call(++id, s, s + dur * US, SYNC, 'cudaStreamSynchronize', 'drain', 0, null);
      tl.drain(id, s, s + dur * US, 'cudaStreamSynchronize', 0, null, SYNC);
      t = s + dur * US + 10 * US;
    }
    return tl.finish(new Map());
  };
  // the shape of a recorded launch_storm sync: entered 11 µs after the last launch returned, 20 µs long. At face value
  // its completion needs the 200 kernels back to back at the launch rate (~27 µs each), yet it waited 20 µs, less
  // than one of them
  const late = run([[11, 20], [11, 20]]);
  assert.equal(late.kernelNs.count, 0, `no kernel time learned (got ${late.kernelNs.count ? q(late.kernelNs, 0.5) : 0})`);
  // kernel time unknown: each launch on the path to the next is idle time (an upper bound)
  assert.ok((late.inCalls.get('cudaLaunchKernel')?.ns ?? 0) >= 2 * 199 * 20 * US, `launch time on the idle path: ${late.inCalls.get('cudaLaunchKernel')?.ns}`);
  // syncs that return at once bound the kernels by ~9 µs; a later one 20 µs long (the last kernel alone would take
  // 25 µs) is not taken over them
  const bounded = run([[5, 4], [5, 4], [5, 20]]);
  assert.equal(bounded.kernelNs.count, 0, `no kernel time learned (got ${bounded.kernelNs.count ? q(bounded.kernelNs, 0.5) : 0})`);
  // the same loop where the sync waits 3 ms: kernels ran back to back behind the launches, ~27 + 3000/200 µs each
  const backed = run([[5, 3000], [5, 3000]]);
  assert.equal(backed.kernelNs.count, 2);
  assert.ok(Math.abs(q(backed.kernelNs, 0.5) - 42 * US) <= 0.02 * 42 * US, `kernel ${q(backed.kernelNs, 0.5)}`);
});

test('after a drain: the drain\'s own return is time in the call, not host work it serialized; the transition stays the drain\'s', () => {
  // steps of 10 launches 10 µs apart (1 µs each: a 9 µs transition between them), a sync that sleeps until the
  // kernels finish (woken at +300 µs), then runnable 20 µs and 6 µs more on the CPU before it returns; the next step's
  // first launch comes 9 µs after that return. No host work after the sync: the gap is the runnable span, the return
  // and one transition.
  const tl = new Timeline(new Map(), new Map([[SYNC, 2 * US]]));
  let id = 0;
  for (let s = 0; s < 4; s++) {
    const T = s * 335 * US;
    for (let j = 0; j < 10; j++) tl.call(++id, T + 10 * j * US, T + (10 * j + 1) * US, LAUNCH, 'cudaLaunchKernel', 'submit', 0, null);
    tl.call(++id, T + 100 * US, T + 326 * US, SYNC, 'cudaStreamSynchronize', 'drain', 0, null);
    tl.off(++id, T + 102 * US, T + 300 * US, VOLUNTARY, 0, 5);
    tl.off(++id, T + 300 * US, T + 320 * US, PREEMPTED, 99, 0);
    tl.drain(id, T + 100 * US, T + 326 * US, 'cudaStreamSynchronize', 0, null, SYNC);
  }
  const m = tl.finish(new Map());
  const d = m.byDrain.get('cudaStreamSynchronize')!;
  // per gap after the waiting sync (three gaps): 20 µs runnable (preemption), 6 µs of return (in-call time), 9 µs of
  // transition (the sync's host time: a poll loop that computes nothing must not read as host computation)
  assert.equal(d.gaps, 3);
  assert.equal(d.hostNs, 3 * 9 * US);
  assert.equal(d.ownNs, 0);
  assert.equal(m.inCalls.get('cudaStreamSynchronize')?.ns, 3 * 6 * US);
  assert.equal(m.hostNs, 0);
  assert.ok(Math.abs((m.preempted.get(99) ?? 0) - 3 * 20 * US) < 1 * US, `preempted ${m.preempted.get(99)}`);
});

test('a copy that waited, but would need longer kernels than the empty-queue copies allow: capped there, teaches nothing', () => {
  // io_starved's feeder: two launches, a wait for the loader, a synchronous 1 MiB copy (own transfer 100 µs)
  const COPY = OP_BY_NAME.get('cudaMemcpy')!.code;
  const key = 'cudaMemcpy(HostToDevice)';
  const tl = new Timeline(new Map(), new Map([[COPY, 100 * US]]));
  let id = 0;
  let t = 0;
  const step = (waitUs: number, copyUs: number) => {
    for (let i = 0; i < 2; i++) {
      tl.call(++id, t, t + 1 * US, LAUNCH, 'cudaLaunchKernel', 'submit', 0, null);
      t += 10 * US;
    }
    t += waitUs * US;
    const end = t + copyUs * US;
    tl.call(++id, t, end, COPY, key, 'submit_drain', 1 << 20, 1);
    tl.drain(id, t, end, key, 100 * US, null, COPY, true);
    t = end + 1 * US;
  };
  // twenty steps whose copy, right after the launches, takes its own transfer: the queue was empty, kernels <= ~10 µs
  for (let s = 0; s < 20; s++) step(0, 100);
  const learned = tl.m.kernelNs.count;
  // a 500 µs wait for the loader, then a copy that returns 300 µs late (a late timer): taken as a completion, its
  // two kernels would have run ~450 µs each, through the whole wait
  const idleBefore = tl.m.idleNs;
  step(500, 400);
  const m = tl.finish(new Map());
  assert.equal(m.kernelNs.count, learned, 'the late completion teaches no kernel time');
  // the queue ran dry ~10 µs after the last launch by the bound: the rest of the 500 µs wait is GPU idle
  assert.ok(m.idleNs - idleBefore >= 450 * US, `GPU idle ${m.idleNs - idleBefore} ns covers the wait before the late copy`);
});

test('runnable right after an I/O wait while another task holds the CPU: preemption, kept apart by who held it', () => {
  const tl = new Timeline(new Map(), new Map([[SYNC, 1 * US]]));
  let id = 0;
  tl.call(++id, 0, 1 * US, LAUNCH, 'cudaLaunchKernel', 'submit', 0, null);
  tl.call(++id, 2 * US, 3 * US, SYNC, 'cudaStreamSynchronize', 'drain', 0, null);
  tl.drain(id, 2 * US, 3 * US, 'cudaStreamSynchronize', 0, null, SYNC);
  // three reads: each an I/O wait (woken from softirq), then runnable behind an idle CPU's exit (pid 0), the
  // tracer (pid 55) or an unrelated task (pid 99); and a plain preemption by pid 55 later, not after a wakeup
  let t = 10 * US;
  for (const by of [0, 55, 99]) {
    tl.off(++id, t, t + 400 * US, IO_WAIT, 7, 0xfffffff1);
    tl.off(++id, t + 400 * US, t + 500 * US, PREEMPTED, by, 0);
    t += 600 * US;
  }
  tl.off(++id, t, t + 100 * US, PREEMPTED, 55, 0);
  tl.call(++id, t + 200 * US, t + 201 * US, LAUNCH, 'cudaLaunchKernel', 'submit', 0, null);
  tl.call(++id, t + 202 * US, t + 203 * US, SYNC, 'cudaStreamSynchronize', 'drain', 0, null);
  tl.drain(id, t + 202 * US, t + 203 * US, 'cudaStreamSynchronize', 0, null, SYNC);
  const m = tl.finish(new Map());
  const near = (x: number | undefined, v: number) => Math.abs((x ?? 0) - v) < 1 * US;
  assert.ok(near(m.io, 1200 * US), `I/O wait ${m.io}`);
  assert.ok(near(m.preempted.get(55), 200 * US) && near(m.preempted.get(99), 100 * US) && near(m.preempted.get(0), 100 * US), 'all runnable time is preemption here');
  const after = m.afterWake.get(WAKE_IO);
  assert.ok(after && near(after.get(0), 100 * US) && near(after.get(55), 100 * US) && near(after.get(99), 100 * US), `after the I/O wakeups: ${JSON.stringify([...(after ?? [])])}`);
});

test('runnable spans are kept for the merge: from the first submission, held off by a task, not on an idle CPU nor behind the task that woke it', () => {
  const tl = new Timeline(new Map(), new Map([[SYNC, 1 * US]]));
  let id = 0;
  // before any submission: start-up, nothing to starve
  tl.off(++id, 0, 5 * US, PREEMPTED, 42, 0);
  tl.call(++id, 10 * US, 11 * US, LAUNCH, 'cudaLaunchKernel', 'submit', 0, null);
  tl.off(++id, 20 * US, 30 * US, PREEMPTED, 42, 0);
  // runnable on an idle CPU (wakeup latency) and asleep: not held off by a task
  tl.off(++id, 40 * US, 45 * US, PREEMPTED, 0, 0);
  tl.off(++id, 50 * US, 60 * US, VOLUNTARY, 7, 42);
  // runnable right after that sleep while pid 42, which ended it, holds the CPU: still the wait for pid 42
  tl.off(++id, 60 * US, 65 * US, PREEMPTED, 42, 0);
  tl.off(++id, 70 * US, 80 * US, PREEMPTED, 99, 0);
  tl.call(++id, 90 * US, 91 * US, SYNC, 'cudaStreamSynchronize', 'drain', 0, null);
  tl.drain(id, 90 * US, 91 * US, 'cudaStreamSynchronize', 0, null, SYNC);
  const m = tl.finish(new Map());
  assert.deepEqual(Array.from(m.ready ?? []), [20 * US, 30 * US, 42, 70 * US, 80 * US, 99]);
});
