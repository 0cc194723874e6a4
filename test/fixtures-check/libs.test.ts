// Locks in: the fake libraries carry the real sonames and symbol versions (cudaX@@libcudart.so.12 / .so.13, unversioned cu* in libcuda.so.1), export both _v2 and legacy driver names, hide their internals, and honour FAKE_CUDA_* latency/failure/timing settings.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { LIB, ensureBuilt, exportedFunctions, run } from './_helpers.js';
import { tempDir } from '../helpers/temp-dir.js';

before(() => ensureBuilt());

function soname(file: string): string {
  const out = execFileSync('readelf', ['-d', file], { encoding: 'utf8' });
  return out.match(/\(SONAME\)\s+Library soname: \[([^\]]+)\]/)?.[1] ?? '';
}

test('sonames and version nodes match the real libraries', () => {
  for (const [lib, node] of [['libcudart.so.12', 'libcudart.so.12'], ['libcudart.so.13', 'libcudart.so.13']]) {
    const file = path.join(LIB, lib);
    assert.equal(soname(file), lib);
    const fns = exportedFunctions(file);
    for (const sym of ['cudaMalloc', 'cudaLaunchKernel', 'cudaMemcpy', 'cudaGetErrorString'])
      assert.equal(fns.get(sym), node, `${lib}: ${sym} version`);
    // internals stay hidden; the non-CUDA exports are the fake device's enqueue hook, which the fake cuBLAS uses to
    // put a GEMM's GPU time on the same simulated device, and its device-lock statistics, which the contention
    // workloads read for their ground truth (named fakecuda_* so they cannot pass for a CUDA API)
    for (const [name] of fns) assert.match(name, /^(cuda|fakecuda_enqueue_ns$|fakecuda_lock_stats$)/, `${lib} leaks ${name}`);
  }
  const drv = path.join(LIB, 'libcuda.so.1');
  assert.equal(soname(drv), 'libcuda.so.1');
  const fns = exportedFunctions(drv);
  for (const sym of ['cuInit', 'cuMemAlloc_v2', 'cuMemAlloc', 'cuMemFree_v2', 'cuMemFree', 'cuMemcpyHtoD_v2', 'cuMemcpyHtoD',
    'cuMemcpyDtoH_v2', 'cuMemcpyDtoH', 'cuMemcpyHtoDAsync_v2', 'cuMemcpyHtoDAsync', 'cuMemcpyDtoHAsync_v2',
    'cuMemcpyDtoHAsync', 'cuLaunchKernel', 'cuCtxSynchronize', 'cuStreamSynchronize']) {
    assert.ok(fns.has(sym), `libcuda.so.1 lacks ${sym}`);
  }
  for (const [name] of fns) assert.match(name, /^cu[A-Z]/, `libcuda.so.1 leaks ${name}`);
});

test('injected host latency is spent inside the call', () => {
  const j = run('alloc_stall', ['20'], { FAKE_CUDA_LATENCY_US_cudaMalloc: '2000' });
  assert.equal(j.counts.cudaMalloc, 20);
  assert.equal(j.injected_total_ns, 40_000_000);
  assert.ok(j.malloc_ns >= 40_000_000, `malloc_ns ${j.malloc_ns}`);
  const quick = run('alloc_stall', ['20'], { FAKE_CUDA_LATENCY_US_cudaMalloc: '0' });
  assert.ok(quick.malloc_ns < 20_000_000, `malloc_ns with no latency ${quick.malloc_ns}`);
});

test('a sync waits for the queued GPU work (FAKE_CUDA_KERNEL_US)', () => {
  // 25 launches x 400 us per step: every sync drains >= 10 ms of queued work
  const j = run('contend', ['0.3'], { FAKE_CUDA_KERNEL_US: '400' });
  assert.ok(j.steps >= 1);
  assert.ok(j.sync_mean_ns >= 9_000_000, `sync_mean_ns ${j.sync_mean_ns}`);
  assert.ok(j.steps <= Math.ceil(0.3e9 / 10e6) + 1, `steps ${j.steps} exceed device throughput`);
});

test('FAKE_CUDA_WAIT=spin burns CPU while block sleeps', () => {
  const env = { FAKE_CUDA_KERNEL_US: '200' };
  const block = run('contend', ['0.4'], { ...env, FAKE_CUDA_WAIT: 'block' });
  const spin = run('contend', ['0.4'], { ...env, FAKE_CUDA_WAIT: 'spin' });
  assert.ok(block.cpu_ns < 0.25 * block.elapsed_ns, `block cpu ${block.cpu_ns} of ${block.elapsed_ns}`);
  assert.ok(spin.cpu_ns > 3 * block.cpu_ns, `spin cpu ${spin.cpu_ns} vs block ${block.cpu_ns}`);
});

test('FAKE_CUDA_DEVICE_LOCK serializes two processes on one device', async () => {
  const { runAsync } = await import('./_helpers.js');
  const fs = await import('node:fs');
  const os = await import('node:os');
  const dir = tempDir('cw-lock-');
  const env = { FAKE_CUDA_KERNEL_US: '200', FAKE_CUDA_DEVICE_LOCK: path.join(dir, 'device.lock') };
  try {
    // 25 x 200 us = 5 ms of GPU work per step; one device gives <= 200 steps/s in total
    const [a, b] = await Promise.all([runAsync('contend', ['1'], env), runAsync('contend', ['1'], env)]);
    assert.equal(a.device_lock, env.FAKE_CUDA_DEVICE_LOCK);
    const limit = (Math.max(a.elapsed_ns, b.elapsed_ns) / 5e6) * 1.1 + 2;
    assert.ok(a.steps + b.steps <= limit, `steps ${a.steps}+${b.steps} > ${limit}: device not shared`);
    assert.ok(a.steps > 0 && b.steps > 0);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
