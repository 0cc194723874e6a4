// Locks in the timeline's reading of a drain that returned a little slower than an empty-queue call but neither
// slept nor was preempted (timeline.ts drainQueue, needsLongerKernels): right after a 20 ms preemption a
// cudaStreamSynchronize on an empty queue took 16 µs on the CPU (cold caches) against its 3 µs fastest. Taken as a
// measured completion it had the GPU busy through the preemption, which then "cost nothing" (a nice -10 hog read
// 14 ms of a 214 ms cost). The queue was empty at entry: the preemption is the GPU's idle time.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { openReadOnly } from '../../src/store/db.js';
import { explainSession } from '../../src/analyze/explain.js';
import { GpuThread, MS, TraceBuilder, US, tmpDb } from './scenarios.js';

test('a slow on-CPU return after a long preemption is no measured completion: the preemption empties the queue and costs', () => {
  const b = new TraceBuilder(tmpDb('cold-return'), 'decode').process(950, 'decode').process(4242, 'hog', false);
  const g = new GpuThread(b, 950, 950);
  let idle = 0;
  for (let s = 0; s < 100; s++) {
    for (let k = 0; k < 8; k++) g.launch(300 * US);
    const hog = s >= 40 && s < 60;
    if (hog) {
      const queueEnd = g.busyUntil;
      const start = g.t;
      g.host(1 * MS, [[500 * US, 20 * MS, 4242]]);
      // the GPU ran dry during the preemption: idle from then until the host submits again (the rest of the step)
      idle += start + 500 * US + 20 * MS - Math.max(queueEnd, start + 500 * US);
      // an empty queue: the sync returns without sleeping, 16 µs of CPU
      b.call('cudaStreamSynchronize', g.t, 16 * US, 950, 950, { stream: 0 });
      g.t += 16 * US;
    } else {
      // one step in four host-bound (3 ms of host work against 2.4 ms of GPU work): its sync returns at once (3 µs,
      // the op's fastest), an empty-queue bound on the kernel time; the others wait for the queue
      g.host(s % 4 === 0 ? 3 * MS : 1 * MS);
      g.sync();
    }
  }
  const file = b.close();
  const db = openReadOnly(file);
  const r = explainSession(db, b.sessionId);
  db.close();
  const c = r.chains.find((x) => x.kind === 'cpu_preemption');
  assert.ok(c, `a cpu_preemption chain: ${r.chains.map((x) => `${x.kind} ${x.summary.slice(0, 120)}`).join(' | ')}`);
  assert.match(c.summary, /\(hog\)/);
  assert.ok(Math.abs(c.impact_ns - idle) / idle <= 0.25, `impact ${(c.impact_ns / 1e6).toFixed(1)} ms vs the idle time the preemptions made ${(idle / 1e6).toFixed(1)} ms`);
});
