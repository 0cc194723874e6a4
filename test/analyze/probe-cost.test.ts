// Locks in the analysis net of the tracer's own cost (issue #11): launch_overhead counts submission time net of the
// probe cost measured at trace start (a session's probe-cost calibration), and preemption by sibling launch threads
// net of what the tracer's own CPU time could have caused; a session without either keeps the old figures.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { openReadOnly, openWritable } from '../../src/store/db.js';
import { explainSession } from '../../src/analyze/explain.js';
import { putProbeCost, putTracerCpu, type ProbeCostRecord } from '../../src/store/probe-cost.js';
import * as S from './scenarios.js';

const { US, MS } = S;

function calibration(inCallNs: number): ProbeCostRecord {
  return {
    mode: 'uprobe_multi',
    op: 'cudaLaunchKernel',
    classes: { emulated: [{ threads: 1, calls: 1000, recorded: 1000, in_call_ns: inCallNs, p10_ns: inCallNs, p90_ns: inCallNs, per_call_ns: 3 * inCallNs }] },
    ops: { cudaLaunchKernel: 'emulated', cudaStreamSynchronize: 'emulated' },
    ms: 100,
    method: 'test',
  };
}

function launchChain(file: string, sessionId: number) {
  const db = openReadOnly(file);
  try {
    const c = explainSession(db, sessionId).chains.find((x) => x.kind === 'launch_overhead');
    assert.ok(c, 'a launch_overhead chain');
    return c;
  } finally {
    db.close();
  }
}

test('launch_overhead: the probe cost measured at trace start is taken out of every launch on the path, and the summary says so', () => {
  const plain = S.launchOverhead();
  const cal = S.launchOverhead();
  const db = openWritable(cal.file);
  putProbeCost(db, cal.sessionId, calibration(2 * US));
  db.close();
  const before = launchChain(plain.file, plain.sessionId);
  const after = launchChain(cal.file, cal.sessionId);
  assert.doesNotMatch(before.summary, /net of/);
  assert.match(after.summary, /net of 2\.00 µs per call of tracing cost measured at trace start/);
  // 100 steps x 200 launches of 20 µs (tiny kernels): each launch lies on the path to the next submission, so each
  // gives up its 2 µs (the first launch of a step follows the sync and is partly outside an idle interval)
  const taken = before.impact_ns - after.impact_ns;
  const launches = 100 * 200;
  assert.ok(taken <= launches * 2 * US + 1, `taken ${taken} <= 2 µs per launch`);
  assert.ok(taken >= 0.95 * launches * 2 * US, `taken ${taken} ~ 2 µs x ${launches} launches`);
});

/**
 * Two launch threads of one process; once a step both are pushed off their CPUs by a thread of their own process for
 * 100 µs (the GPU idles: sibling preemption on the path), and thread 902 once (1 ms) by the tracer (pid 777). They run
 * on CPUs 0 and 1, or both on CPU 0 (`oneCpu`: pinned there).
 */
function twoThreads(tracerCpuNs: number | null, oneCpu = false, cal: ProbeCostRecord | null = null, mainIo = false): { file: string; sessionId: number } {
  const b = new S.TraceBuilder(S.tmpDb('launch2'), 'two launch threads').process(900, 'bench').process(777, 'node');
  b.db.prepare('UPDATE sessions SET tracer_pid = 777 WHERE id = ?').run(b.sessionId);
  const a = new S.GpuThread(b, 900, 901);
  const c = new S.GpuThread(b, 900, 902);
  if (!oneCpu) c.cpu = 1;
  for (let s = 0; s < 50; s++) {
    for (let k = 0; k < 100; k++) {
      a.launch(1500, 20 * US, 1);
      c.launch(1500, 20 * US, 1);
      if (k === 50) {
        a.host(0, [[0, 100 * US, 900]]);
        c.host(0, [[0, 100 * US, 900]]);
      }
      if (k === 60 && s === 10) c.host(0, [[0, 1 * MS, 777]]);
    }
    c.t = a.t = Math.max(a.t, c.t);
    a.sync();
    c.sync();
    c.t = a.t = Math.max(a.t, c.t);
  }
  if (tracerCpuNs !== null) putTracerCpu(b.db, b.sessionId, { cpu_ns: tracerCpuNs, wall_ns: 200 * MS });
  if (cal) putProbeCost(b.db, b.sessionId, cal);
  // the process's main thread: read its libraries from disk at start-up, then asleep in a join until the end
  if (mainIo) {
    b.off(0, 1 * MS, 900, 900, 'io_wait', 0, 0);
    b.off(1 * MS, a.t, 900, 900, 'voluntary', 0, 901);
  }
  return { file: b.close(), sessionId: b.sessionId };
}

test('launch_overhead: preemption by a sibling launch thread is counted net of the tracer CPU time that did not preempt the traced threads directly', () => {
  const plain = launchChain(...(Object.values(twoThreads(null)) as [string, number]));
  // 10 ms of sibling preemption in all (2 threads x 50 steps x 100 µs); the tracer ran 6 ms of CPU, 1 ms of it
  // preempting thread 902 directly: 5 ms could only have pushed the threads onto each other's CPUs, so half of the
  // sibling part is the tracer's
  const half = launchChain(...(Object.values(twoThreads(6 * MS)) as [string, number]));
  const all = launchChain(...(Object.values(twoThreads(20 * MS)) as [string, number]));
  const sib = (c: { summary: string }) => {
    const m = /and ([\d.]+) (ms|µs) more while another launch thread/.exec(c.summary);
    return m ? Number(m[1]) * (m[2] === 'ms' ? MS : US) : 0;
  };
  assert.ok(sib(plain) > 0, `the plain trace counts sibling preemption: ${plain.summary}`);
  assert.ok(Math.abs(sib(half) - sib(plain) / 2) <= 0.01 * sib(plain) + 10 * US, `half of ${sib(plain)} left: ${sib(half)}`);
  assert.match(half.summary, /taken as the tracer's \(Causeway's threads ran 6\.00 ms of CPU while the command ran, 1\.00 ms of it preempting traced threads directly/);
  assert.equal(sib(all), 0, 'spare tracer CPU beyond the sibling preemption takes all of it, no more');
  // (the sibling part is read from the summary, to its three significant digits)
  assert.ok(Math.abs(plain.impact_ns - sib(plain) - (all.impact_ns - sib(all))) <= 0.005 * sib(plain) + 1 * US, 'the submission part is unchanged');
});

const sibOf = (c: { summary: string }) => {
  const m = /and ([\d.]+) (ms|µs) more while another launch thread/.exec(c.summary);
  return m ? Number(m[1]) * (m[2] === 'ms' ? MS : US) : 0;
};

test('launch_overhead: threads that only ran on one CPU serialize on it whatever the tracer did elsewhere', () => {
  const plain = launchChain(...(Object.values(twoThreads(null, true)) as [string, number]));
  // the same tracer CPU time that takes all of it from threads on two CPUs
  const busy = launchChain(...(Object.values(twoThreads(20 * MS, true)) as [string, number]));
  assert.ok(sibOf(plain) > 0, plain.summary);
  assert.equal(sibOf(busy), sibOf(plain));
  assert.doesNotMatch(busy.summary, /taken as the tracer's/);
});

test("launch_overhead: while a sibling held the thread's CPU, the probes' share of the sibling's CPU time is the tracer's", () => {
  const plain = launchChain(...(Object.values(twoThreads(null, true)) as [string, number]));
  // 2 µs inside each record and 4 µs around it, per call: each thread runs ~50 x (100 launches of 20 µs + 100 µs)
  // and makes ~50 x 101 calls, so about 6 / 20.4 of its CPU time was the probes'
  const cal = launchChain(...(Object.values(twoThreads(null, true, calibration(2 * US))) as [string, number]));
  assert.match(cal.summary, /Nor [\d.]+ ms of the time a sibling launch thread held its CPU that was the probes' own cost/);
  const ratio = sibOf(cal) / sibOf(plain);
  assert.ok(ratio > 0.6 && ratio < 0.8, `sibling part kept: ${sibOf(cal)} of ${sibOf(plain)} (${ratio.toFixed(3)})`);
});

test('a main thread that waited on the disk at start-up and then slept is no loader: sibling preemption stays launch_overhead', () => {
  const e = (mainIo: boolean) => {
    const { file, sessionId } = twoThreads(null, true, null, mainIo);
    const db = openReadOnly(file);
    try {
      return explainSession(db, sessionId).chains;
    } finally {
      db.close();
    }
  };
  const without = e(false);
  const withMain = e(true);
  const launch = (cs: typeof without) => cs.find((c) => c.kind === 'launch_overhead')!;
  assert.ok(sibOf(launch(without)) > 0);
  assert.equal(sibOf(launch(withMain)), sibOf(launch(without)));
  assert.equal(withMain.find((c) => c.kind === 'io_starvation'), undefined, withMain.map((c) => `${c.kind} ${c.impact_ns}`).join(', '));
});
