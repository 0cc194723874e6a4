// Locks in: each incident workload runs and its JSON ground truth is exact where the workload makes it exact (calls N = N of every op, injected failures with their codes, child/parent pids, chunk counts) and shows the incident where timing is involved (sync-logprobs TTFT > 10x healthy, preemption loses CPU time, the real libcudart 13 returns errors).
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { BIN, ensureBuilt, run, runAsync } from './_helpers.js';
import { tempDir } from '../helpers/temp-dir.js';

before(() => ensureBuilt());

const RUNTIME_OPS = [
  'cudaMalloc', 'cudaFree', 'cudaMallocManaged', 'cudaMallocHost', 'cudaFreeHost', 'cudaLaunchKernel', 'cudaMemcpy',
  'cudaMemcpyAsync', 'cudaMemset', 'cudaMemsetAsync', 'cudaStreamSynchronize', 'cudaDeviceSynchronize',
  'cudaEventSynchronize', 'cudaStreamWaitEvent', 'cudaStreamCreate', 'cudaStreamDestroy', 'cudaEventCreate',
  'cudaEventRecord', 'cudaEventDestroy', 'cudaGetLastError', 'cudaGetErrorString',
];
const DRIVER_OPS = [
  'cuInit', 'cuLaunchKernel', 'cuMemAlloc', 'cuMemFree', 'cuMemcpyHtoD', 'cuMemcpyDtoH', 'cuMemcpyHtoDAsync',
  'cuMemcpyDtoHAsync', 'cuCtxSynchronize', 'cuStreamSynchronize',
];

test('calls 5: exactly 5 calls of every runtime op, none failing', () => {
  const j = run('calls', ['5']);
  assert.equal(j.workload, 'calls');
  assert.equal(j.n, 5);
  for (const op of RUNTIME_OPS) {
    assert.equal(j.counts[op], 5, op);
    assert.equal(j.ops[op].failed, 0, `${op} failed`);
  }
  assert.equal(j.args.cudaMalloc_bytes_base, 1 << 20);
  assert.equal(j.args.step, 64);
  assert.match(j.first_dev_ptr, /^0x7f[0-9a-f]{10}$/);
  assert.notEqual(j.first_dev_ptr, j.last_dev_ptr);
});

test('calls with FAKE_CUDA_FAIL_cudaMalloc every 2nd call: the right calls fail with the right code', () => {
  const j = run('calls', ['6'], { FAKE_CUDA_FAIL_cudaMalloc: 'cudaErrorMemoryAllocation', FAKE_CUDA_FAIL_EVERY_cudaMalloc: '2' });
  assert.equal(j.ops.cudaMalloc.calls, 6);
  assert.equal(j.ops.cudaMalloc.failed, 3);
  assert.equal(j.ops.cudaMalloc.code, 2);
  for (const op of RUNTIME_OPS.filter((o) => o !== 'cudaMalloc' && o !== 'cudaGetLastError')) assert.equal(j.ops[op].failed, 0, `${op} failed`);
  // the sticky-until-read last error reports each injected failure once
  assert.equal(j.ops.cudaGetLastError.failed, 3);
  assert.equal(j.ops.cudaGetLastError.code, 2);
  const all = run('calls', ['4'], { FAKE_CUDA_FAIL_cudaStreamSynchronize: '700' });
  assert.equal(all.ops.cudaStreamSynchronize.failed, 4);
  assert.equal(all.ops.cudaStreamSynchronize.code, 700);
});

test('drv_calls 4 (_v2 symbols) and --legacy: 4 of every driver op', () => {
  const v2 = run('drv_calls', ['4']);
  const legacy = run('drv_calls', ['4', '--legacy']);
  for (const op of DRIVER_OPS) {
    assert.equal(v2.counts[op], 4, op);
    assert.equal(v2.ops[op].failed, 0, `${op} failed`);
    assert.equal(legacy.counts[op], 4, `legacy ${op}`);
    assert.equal(legacy.ops[op].failed, 0, `legacy ${op} failed`);
  }
  assert.equal(v2.symbols.cuMemAlloc_v2, 4);
  assert.equal(legacy.symbols.cuMemAlloc, 4);
  assert.equal(legacy.symbols.cuMemAlloc_v2, undefined);
  assert.ok(BigInt(legacy.first_dev_ptr) < 2n ** 32n, 'legacy pointers are 32-bit');
  const f = run('drv_calls', ['3'], { FAKE_CUDA_FAIL_cuMemAlloc: 'CUDA_ERROR_OUT_OF_MEMORY' });
  assert.equal(f.ops.cuMemAlloc.failed, 3);
  assert.equal(f.ops.cuMemAlloc.code, 2);
  for (const op of DRIVER_OPS.filter((o) => o !== 'cuMemAlloc')) assert.equal(f.ops[op].failed, 0, `${op} failed`);
  const every = run('drv_calls', ['6', '--legacy'], { FAKE_CUDA_FAIL_cuStreamSynchronize: '3', FAKE_CUDA_FAIL_EVERY_cuStreamSynchronize: '3' });
  assert.equal(every.ops.cuStreamSynchronize.failed, 2);
  assert.equal(every.ops.cuStreamSynchronize.code, 3);
});

test('burst 2000: every launch succeeds', () => {
  const j = run('burst', ['2000']);
  assert.equal(j.counts.cudaLaunchKernel, 2000);
  assert.equal(j.ok, 2000);
  assert.ok(j.calls_per_s > 0);
});

test('launch_loop: counts launches for the duration', () => {
  const j = run('launch_loop', ['0.2']);
  assert.equal(j.counts.cudaLaunchKernel, j.calls);
  assert.ok(j.elapsed_ns >= 0.2e9);
  assert.ok(j.ns_per_call >= 2000, 'default launch cost is 2 us');
});

test('sleep_split: each step waits in the sync for the launch\'s GPU time, then sleeps on the host, exact calls', () => {
  const j = run('sleep_split', ['--steps', '5', '--sync-us', '2000', '--host-sleep-us', '1000'], { FAKE_CUDA_KERNEL_US: '1' });
  assert.deepEqual(j.counts, { cudaStreamCreate: 1, cudaLaunchKernel: 5, cudaStreamSynchronize: 5, cudaStreamDestroy: 1 });
  // the sync's deadline counts from the launch (its 2 us of host time come first); a sleep ends at its deadline or later
  assert.ok(j.sync_wall_ns >= 5 * 1_990_000, `in the syncs: ${j.sync_wall_ns}`);
  assert.ok(j.host_sleep_wall_ns >= 5 * 1_000_000, `host sleeps: ${j.host_sleep_wall_ns}`);
});

test('decode_loop: --sync-logprobs makes time to first token > 10x slower', () => {
  const healthy = [0, 1, 2].map(() => run('decode_loop'));
  const bad = run('decode_loop', ['--sync-logprobs']);
  const best = Math.min(...healthy.map((h) => h.ttft_ns));
  assert.equal(healthy[0]!.mode, 'healthy');
  assert.equal(bad.mode, 'sync_logprobs');
  assert.ok(bad.ttft_ns > 10 * best, `ttft ${bad.ttft_ns} vs healthy ${best}`);
  assert.ok(bad.step_mean_ns > Math.min(...healthy.map((h) => h.step_mean_ns)), 'steps slower');
  // ground truth: one blocking copy per prefill chunk and per step; none when healthy
  const chunks = Math.ceil(bad.prompt_tokens / bad.chunk_tokens);
  assert.equal(bad.counts.cudaMemcpy, bad.steps + chunks);
  assert.equal(bad.sync_copies, bad.steps + chunks);
  assert.equal(healthy[0]!.counts.cudaMemcpy, undefined);
  assert.equal(healthy[0]!.counts.cudaMemcpyAsync, healthy[0]!.steps);
  assert.equal(healthy[0]!.counts.cudaLaunchKernel, chunks * 4 * 3 + healthy[0]!.steps * (8 + 1));
  const small = run('decode_loop', ['--steps', '10', '--prompt-tokens', '64', '--sync-logprobs']);
  assert.equal(small.steps, 10);
  assert.equal(small.counts.cudaMemcpy, 10 + 1);
});

test('stack_demo: main -> decode_step -> sample_logprobs -> cudaMemcpy, symbols present', () => {
  const j = run('stack_demo', ['3']);
  assert.deepEqual(j.stack, ['cudaMemcpy', 'sample_logprobs', 'decode_step', 'main']);
  assert.equal(j.counts.cudaMemcpy, 3);
  const syms = execFileSync('nm', [path.join(BIN, 'stack_demo')], { encoding: 'utf8' });
  for (const f of ['sample_logprobs', 'decode_step', 'main']) assert.match(syms, new RegExp(` T ${f}\\n`), f);
});

test('real_cudart13: the real CUDA 13 runtime returns nonzero error codes for every op', (t) => {
  const bin = path.join(BIN, 'real_cudart13');
  if (!fs.existsSync(bin)) {
    t.skip('nvcc absent: real_cudart13 not built');
    return;
  }
  const needed = execFileSync('readelf', ['-d', bin], { encoding: 'utf8' });
  assert.match(needed, /Shared library: \[libcudart\.so\.13\]/);
  const j = run('real_cudart13', ['3']);
  for (const op of ['cudaMalloc', 'cudaMemcpy', 'cudaLaunchKernel', 'cudaStreamSynchronize', 'cudaDeviceSynchronize', 'cudaFree']) {
    assert.equal(j.counts[op], 3, op);
    assert.notEqual(j.ops[op].code, 0, `${op} returned success without a GPU`);
    assert.equal(j.ops[op].failed, 3, op);
  }
});

test('alloc_stall, launch_storm, mem_pressure: exact counts', () => {
  const a = run('alloc_stall', ['10']);
  assert.deepEqual([a.counts.cudaMalloc, a.counts.cudaFree, a.counts.cudaLaunchKernel], [10, 10, 10]);
  const s = run('launch_storm', ['2500']);
  assert.equal(s.counts.cudaLaunchKernel, 2500);
  assert.equal(s.counts.cudaStreamSynchronize, 3);
  assert.ok(s.launch_ns >= 2500 * 2000, 'host launch cost spent');
  const m = run('mem_pressure', ['8']);
  assert.equal(m.pages_touched, (8 << 20) / 4096);
  assert.equal(m.counts.cudaMemcpy, 8);
});

test('io_starved: the feeder receives every chunk and reports its wait', () => {
  const dir = tempDir('cw-io-');
  const file = path.join(dir, 'data.bin');
  try {
    const c = run('io_starved', ['--create', file, '8']);
    assert.equal(c.bytes, 8 << 20);
    const j = run('io_starved', [file, '512']);
    assert.equal(j.chunks, 16);
    assert.equal(j.bytes, 8 << 20);
    assert.equal(j.counts.cudaMemcpy, 16);
    assert.ok(j.feeder_wait_ns > 0 && j.feeder_waits >= 1);
    assert.notEqual(j.loader_tid, j.feeder_tid);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('forker: parent and child each make N calls under their own pids', () => {
  const j = run('forker', ['4']);
  assert.equal(j.parent_pid, j.pid);
  assert.ok(j.child_pid > 0 && j.child_pid !== j.parent_pid);
  assert.deepEqual([j.parent_calls, j.child_calls, j.child_ok, j.child_status], [4, 4, 4, 0]);
  assert.equal(j.counts.cudaMalloc, 4);
});

test('dlopen_late: no CUDA library at start, dlopen after the delay, N calls', () => {
  const needed = execFileSync('readelf', ['-d', path.join(BIN, 'dlopen_late')], { encoding: 'utf8' });
  assert.doesNotMatch(needed, /libcudart/);
  const j = run('dlopen_late', ['50', '3']);
  assert.ok(j.dlopen_at_ns >= 50e6);
  assert.deepEqual([j.calls, j.ok, j.failed], [3, 3, 0]);
  assert.match(j.lib, /libcudart\.so\.12$/);
});

test('static_calls: cudaMalloc is inside the executable', () => {
  const bin = path.join(BIN, 'static_calls');
  assert.doesNotMatch(execFileSync('readelf', ['-d', bin], { encoding: 'utf8' }), /libcudart/);
  assert.match(execFileSync('nm', [bin], { encoding: 'utf8' }), / T cudaMalloc\n/);
  assert.equal(run('static_calls', ['3']).counts.cudaMalloc, 3);
});

test('preempt_victim loses CPU time to a cpu_hog pinned on the same CPU', async () => {
  const [victim, hog] = await Promise.all([runAsync('preempt_victim', ['1.5', '0']), runAsync('cpu_hog', ['1.7', '0'])]);
  assert.equal(hog.comm, 'cpu_hog');
  assert.ok(victim.steps > 0);
  assert.ok(victim.cpu_lost_ns > 0.2 * victim.elapsed_ns, `lost ${victim.cpu_lost_ns} of ${victim.elapsed_ns}`);
});

test('nccl_ranks: two ranks, exact call counts, the fast rank waits inside ncclAllReduce for the slow one', () => {
  const shm = () => new Set(fs.readdirSync('/dev/shm').filter((f) => f.startsWith('fake_nccl_')));
  const before = shm();
  const out = execFileSync(path.join(BIN, 'nccl_ranks'), ['--steps', '20', '--slow-us', '3000'], { encoding: 'utf8', timeout: 60_000, stdio: ['ignore', 'pipe', 'inherit'] });
  const ranks = out.trim().split('\n').map((l) => JSON.parse(l)).sort((a, b) => a.rank - b.rank);
  assert.deepEqual(ranks.map((r) => [r.workload, r.rank, r.nranks]), [['nccl_ranks', 0, 2], ['nccl_ranks', 1, 2]]);
  assert.notEqual(ranks[0].pid, ranks[1].pid);
  for (const r of ranks) {
    assert.equal(r.counts.ncclAllReduce, 20);
    assert.equal(r.counts.cudaLaunchKernel, 80);
    assert.equal(r.counts.cudaStreamSynchronize, 21);
    for (const [op, s] of Object.entries(r.ops as Record<string, { failed: number }>)) assert.equal(s.failed, 0, `${op} failed on rank ${r.rank}`);
  }
  assert.equal(ranks[0].counts.ncclSend, 1);
  assert.equal(ranks[1].counts.ncclRecv, 1);
  // rank 1 burned >= 20 x 3 ms of CPU before its all-reduces; rank 0 spent most of that waiting at the barrier
  assert.ok(ranks[1].slow_ns >= 60e6, `slow_ns ${ranks[1].slow_ns}`);
  assert.ok(ranks[0].nccl_wait_ns >= 0.5 * ranks[1].slow_ns, `rank 0 waited ${ranks[0].nccl_wait_ns} ns for ${ranks[1].slow_ns} ns of host work`);
  assert.ok(ranks[1].nccl_wait_ns < ranks[0].nccl_wait_ns, 'the late rank waits less than the early one');
  assert.deepEqual([...shm()].filter((f) => !before.has(f)), [], 'the last ncclCommDestroy unlinked the barrier files');
});

test('gemm_loop: six shapes, exact counts, and the fake cuBLAS enqueues its GEMM time on the runtime device (the loop lasts at least 2 m n k batch / TFLOPS)', () => {
  const steps = 10;
  const tflops = 50;
  const out = execFileSync(path.join(BIN, 'gemm_loop'), ['--steps', String(steps)], {
    encoding: 'utf8', timeout: 60_000, stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, FAKE_CUBLAS_TFLOPS: String(tflops) },
  });
  const w = JSON.parse(out);
  assert.equal(w.workload, 'gemm_loop');
  assert.equal(w.shapes.length, 6);
  assert.equal(new Set(w.shapes.map((s: any) => `${s.m}x${s.n}x${s.k}x${s.batch}`)).size, 6, 'distinct shapes');
  for (const s of w.shapes) assert.equal(s.calls, steps, s.fn);
  for (const fn of ['cublasGemmEx', 'cublasGemmEx_64', 'cublasGemmStridedBatchedEx', 'cublasSgemm_v2', 'cublasHgemm', 'cublasLtMatmul', 'cudaStreamSynchronize', 'cublasLtMatmulDescCreate'])
    assert.equal(w.counts[fn], steps, fn);
  assert.equal(w.counts.cublasLtMatrixLayoutCreate, 3 * steps);
  assert.equal(w.counts.cublasSetStream_v2, 1);
  for (const [op, s] of Object.entries(w.ops as Record<string, { failed: number }>)) assert.equal(s.failed, 0, `${op} failed`);
  // every step syncs the stream the GEMMs went to: the loop cannot be shorter than their GPU time
  const gpuNs = w.shapes.reduce((a: number, s: any) => a + (2 * s.m * s.n * s.k * s.batch * s.calls) / (tflops * 1e3), 0);
  assert.ok(w.loop_ns >= gpuNs, `loop ${w.loop_ns} ns < ${Math.round(gpuNs)} ns of GEMM time`);
});
