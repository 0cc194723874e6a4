// Locks in: zoo_step (the scenario zoo's workload) makes exactly the calls its options say, and its measured ground
// truth has the lower bounds the workload guarantees (host work is burnt as thread CPU time, so a gap after a wait is
// at least that long in wall time); a healthy twin reports injected_ns 0; bad options are refused. Untraced and short.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { BIN, cleanEnv, ensureBuilt, run } from './_helpers.js';

before(() => ensureBuilt());

test('zoo_step: a blocking copy mid-step with 1 ms of host work after it: exact counts, one gap per step of >= 1 ms', () => {
  const steps = 20;
  const j = run('zoo_step', ['--scenario', 'x', '--steps', String(steps), '--wait', 'memcpy', '--at', 'mid', '--host-after', '1', '--kind', 'blocking_sync', '--op', 'cudaMemcpy']);
  assert.equal(j.workload, 'zoo');
  assert.equal(j.scenario, 'x');
  assert.equal(j.steps, steps);
  assert.equal(j.counts.cudaMemcpy, steps);
  assert.equal(j.counts.cudaLaunchKernel, steps * 30);
  assert.equal(j.counts.cudaStreamSynchronize, steps);
  assert.deepEqual({ kind: j.truth.kind, op: j.truth.op, culprit: j.truth.culprit, healthy: j.truth.healthy, measure: j.truth.measure },
    { kind: 'blocking_sync', op: 'cudaMemcpy', culprit: null, healthy: false, measure: 'idle_gap_after_wait' });
  assert.equal(j.gaps, steps, 'every wait is followed by one submission');
  assert.ok(j.truth.injected_ns >= steps * 1e6, `gap ${j.truth.injected_ns} ns >= ${steps} x 1 ms of host work`);
  assert.ok(j.truth.injected_ns <= j.elapsed_ns);
});

test('zoo_step: the healthy twin (async copy, overlapped host work) injects 0 and makes no blocking copy', () => {
  const j = run('zoo_step', ['--steps', '10', '--wait', 'memcpy_async', '--host-overlap', '1', '--healthy']);
  assert.equal(j.truth.kind, null);
  assert.equal(j.truth.injected_ns, 0);
  assert.equal(j.truth.healthy, true);
  assert.equal(j.counts.cudaMemcpy, undefined);
  assert.equal(j.counts.cudaMemcpyAsync, 10);
});

test('zoo_step: each wait op is the call named, once per step', () => {
  const cases: [string, string][] = [['stream', 'cudaStreamSynchronize'], ['event', 'cudaEventSynchronize'], ['device', 'cudaDeviceSynchronize'], ['free', 'cudaFree']];
  for (const [wait, op] of cases) {
    const j = run('zoo_step', ['--steps', '5', '--wait', wait, '--host-after', '0.2']);
    const extra = op === 'cudaStreamSynchronize' ? 5 : 0; // the end-of-step sync is a cudaStreamSynchronize too
    assert.equal(j.counts[op], 5 + extra, `${wait}: ${JSON.stringify(j.counts)}`);
    assert.equal(j.gaps, 5);
  }
});

test('zoo_step: allocation churn measures the injected cudaMalloc stall; pipelined steps wait on events', () => {
  const a = run('zoo_step', ['--steps', '10', '--alloc-kb', '64,1024', '--kind', 'allocator_stall'], { FAKE_CUDA_LATENCY_US_cudaMalloc: '500' });
  assert.equal(a.counts.cudaMalloc, 1 + 20); // the copy source + 2 per step
  assert.equal(a.counts.cudaFree, 20);
  assert.ok(a.truth.injected_ns >= 20 * 500e3, `malloc time ${a.truth.injected_ns} >= 20 x 500 us`);
  const p = run('zoo_step', ['--steps', '10', '--pipeline', '3']);
  assert.equal(p.counts.cudaEventSynchronize, 7);
  assert.equal(p.counts.cudaStreamSynchronize, 1, 'only the final drain');
});

test('zoo_step: two launch threads make every launch; a bad option is refused with a message', () => {
  const j = run('zoo_step', ['--threads', '2', '--tiny', '--k1', '5', '--k2', '5', '--steps', '10']);
  assert.equal(j.counts.cudaLaunchKernel, 2 * 10 * 10);
  assert.throws(() => execFileSync(path.join(BIN, 'zoo_step'), ['--wait', 'nope'], { env: cleanEnv(), stdio: 'pipe' }), /bad --wait/);
});
