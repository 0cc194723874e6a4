// Locks in: what LLM serving really calls is traced exactly once per call with real eBPF: CUDA Graph capture/instantiate/launch, the launch family (Ex, cooperative), events and stream queries, async and pool allocation, 2D/3D/peer copies, module loading; `_ptds`/`_ptsz` exports are the same op with the variant kept; arguments decoded (grid/block/shared memory, graph exec, stream, bytes and direction, pool); launches carry their kernel's name (runtime host stub symbol, driver lookup name), on the fakes and on the real libcudart.so.13.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { OP_BY_NAME } from '../../src/common/ops.js';
import { BIN, lostEvents, opCounts, openDb, parseTraceOutput, runCli, tmpDir, tracerLost } from '../cli/helpers.js';

function trace(bin: string, args: string[], env: NodeJS.ProcessEnv = {}) {
  const db = path.join(tmpDir('cw-llm-'), 't.db');
  const r = runCli(['trace', '--json', '--db', db, '--', path.join(BIN, bin), ...args], { env });
  assert.equal(r.code, 0, r.stderr);
  const { workload, summary } = parseTraceOutput(r.stdout);
  assert.equal(tracerLost(summary), 0, `nothing lost: ${JSON.stringify(summary.losses)}`);
  const d = openDb(db);
  assert.equal(lostEvents(d), 0);
  return { d, workload, db };
}

/** Every op the workload says it called that Causeway probes: stored rows == calls made. */
function assertExactCounts(d: ReturnType<typeof openDb>, workload: any, atLeast = 3): void {
  const counts = opCounts(d);
  let checked = 0;
  for (const [op, made] of Object.entries<number>(workload.counts)) {
    if (!OP_BY_NAME.has(op)) continue; // cuInit, cuStreamCreate ...: not probed
    assert.equal(counts[op] ?? 0, made, `${op}: stored vs made`);
    checked++;
  }
  assert.ok(checked >= atLeast, `${checked} ops checked`);
}

const rows = (d: ReturnType<typeof openDb>, op: string) => d.prepare('SELECT * FROM v_cuda_calls WHERE op = ? ORDER BY ts_ns').all(op) as any[];

test('rt_ops: every new runtime op exactly N times, arguments decoded, plain exports have no variant', () => {
  const N = 5;
  const { d, workload } = trace('rt_ops', [String(N)]);
  assertExactCounts(d, workload);
  for (const op of ['cudaLaunchKernelExC', 'cudaGraphLaunch', 'cudaStreamBeginCapture', 'cudaGraphInstantiateWithFlags', 'cudaMemcpy3DPeerAsync', 'cudaMallocFromPoolAsync', 'cudaEventQuery', 'cudaStreamQuery', 'cudaHostRegister'])
    assert.equal(opCounts(d)[op], op === 'cudaLaunchKernelExC' ? 3 * N : N, op);
  assert.equal((d.prepare('SELECT count(*) AS n FROM v_cuda_calls WHERE variant IS NOT NULL').get() as any).n, 0);

  const stream = rows(d, 'cudaStreamCreateWithFlags')[0].stream;
  assert.ok(stream > 0, 'the created stream is returned through the out-pointer');
  rows(d, 'cudaLaunchKernelExC').forEach((r, i) => {
    assert.equal(r.grid_blocks, 128);
    assert.equal(r.block_threads, 256);
    assert.equal(r.shared_mem, 4096 + Math.floor(i / 3), 'dynamic shared memory read from the config struct');
    assert.equal(r.stream, stream);
    assert.equal(r.func, Number(workload.attention_kernel));
    assert.equal(r.kernel, 'attention_kernel');
  });
  assert.deepEqual(rows(d, 'cudaLaunchCooperativeKernel').map((r) => [r.grid_blocks, r.block_threads, r.kernel]), Array(N).fill([8, 256, 'cooperative_reduce']));
  const execs = rows(d, 'cudaGraphInstantiate').map((r) => r.graph_exec);
  assert.ok(execs.every((x) => x > 0));
  assert.deepEqual(rows(d, 'cudaGraphLaunch').map((r) => [r.graph_exec, r.stream]), execs.map((x) => [x, stream]), 'graph launches name the instantiated exec and the stream');
  assert.deepEqual(rows(d, 'cudaStreamEndCapture').map((r) => r.graph), rows(d, 'cudaGraphInstantiate').map((r) => r.graph));
  const events = rows(d, 'cudaEventCreate').map((r) => r.event);
  assert.deepEqual(rows(d, 'cudaEventRecord').map((r) => r.event), events, 'event records name the created events');
  assert.deepEqual(rows(d, 'cudaEventQuery').map((r) => r.event), events);
  const copy = (op: string) => rows(d, op).map((r) => [r.bytes, r.direction]);
  assert.deepEqual(copy('cudaMemcpy2D'), Array(N).fill([128 * 64, 'HostToDevice']));
  assert.deepEqual(copy('cudaMemcpy2DAsync'), Array(N).fill([256 * 32, 'DeviceToHost']));
  assert.deepEqual(copy('cudaMemcpy3D'), Array(N).fill([64 * 4 * 8, 'HostToDevice']), 'bytes from the cudaMemcpy3DParms extent');
  assert.deepEqual(copy('cudaMemcpy3DAsync'), Array(N).fill([64 * 4 * 8, 'DeviceToHost']));
  assert.deepEqual(copy('cudaMemcpy3DPeer'), Array(N).fill([32 * 2 * 3, 'DeviceToDevice']));
  assert.deepEqual(copy('cudaMemcpyPeerAsync'), Array(N).fill([2000, 'DeviceToDevice']));
  assert.ok(rows(d, 'cudaMemcpy2DAsync').every((r) => r.stream === stream));
  assert.ok(rows(d, 'cudaMallocFromPoolAsync').every((r) => r.pool > 0 && r.bytes === 65536 && r.dev_ptr > 0 && r.stream === stream));
  assert.ok(rows(d, 'cudaMallocAsync').every((r) => r.dev_ptr >= 0x7f0000000000 && r.stream === stream));
  d.close();
});

test('rt_ops_pt (per-thread default stream build): same ops, same counts, each row keeps the _ptds/_ptsz export it entered through', () => {
  const N = 4;
  const { d, workload } = trace('rt_ops_pt', [String(N)]);
  assertExactCounts(d, workload);
  let variants = 0;
  for (const [op, sym] of Object.entries<string>(workload.symbols)) {
    const want = sym.endsWith('_ptds') ? 'ptds' : sym.endsWith('_ptsz') ? 'ptsz' : null;
    if (want) variants++;
    const got = d.prepare('SELECT DISTINCT variant FROM v_cuda_calls WHERE op = ?').all(op) as any[];
    assert.deepEqual(got.map((g) => g.variant), [want], `${op} bound to ${sym}`);
  }
  assert.ok(variants >= 20, `${variants} ops went through a variant export`);
  d.close();
});

test('drv_ops: driver ops exactly N times; kernel names from cuModuleGetFunction/cuLibraryGetKernel, demangled; Ex launch configuration', () => {
  const N = 4;
  const { d, workload } = trace('drv_ops', [String(N)]);
  assertExactCounts(d, workload);
  const dem = (s: string) => execFileSync('c++filt', [], { input: s, encoding: 'utf8' }).trim();
  const names = Object.fromEntries(Object.entries<string>(workload.kernels).map(([h, n]) => [Number(h), dem(n)]));
  assert.ok(Object.values(names).includes('void flash_fwd_split<128>(float*, float*, int)'), JSON.stringify(names));
  // each iteration loads fresh modules (new handles); the JSON names the last iteration's
  const all = new Set(Object.values(names));
  for (const op of ['cuLaunchKernel', 'cuLaunchKernelEx']) {
    const rs = rows(d, op);
    assert.ok(rs.length > 0);
    for (const r of rs) {
      assert.ok(all.has(r.kernel), `${op} of handle ${r.func}: ${r.kernel}`);
      if (names[r.func]) assert.equal(r.kernel, names[r.func], `${op} of handle ${r.func}`);
    }
  }
  rows(d, 'cuLaunchKernelEx').forEach((r) => {
    assert.equal(r.grid_blocks, 264);
    assert.equal(r.block_threads, 128);
    assert.equal(r.shared_mem, 49152);
    assert.ok(r.stream > 0);
  });
  assert.deepEqual(rows(d, 'cuMemcpyDtoD').map((r) => [r.bytes, r.direction]), Array.from({ length: N }, (_, i) => [3000 + i, 'DeviceToDevice']));
  assert.deepEqual(rows(d, 'cuMemcpy').map((r) => r.bytes), Array.from({ length: N }, (_, i) => 1000 + i));
  assert.ok(rows(d, 'cuGraphLaunch').every((r) => r.graph_exec > 0 && r.stream > 0));
  assert.ok(rows(d, 'cuModuleGetFunction').every((r) => r.module > 0 && r.func > 0), 'the module and the CUfunction returned');
  d.close();
});

test('drv_ops_pt (per-thread default stream build against the fake libcuda.so.1): same ops, same counts, each row keeps the driver _ptsz/_ptds export it entered through', () => {
  const N = 4;
  const { d, workload } = trace('drv_ops_pt', [String(N)]);
  assertExactCounts(d, workload, 15);
  let variants = 0;
  for (const [op, sym] of Object.entries<string>(workload.symbols)) {
    const want = sym.endsWith('_ptds') ? 'ptds' : sym.endsWith('_ptsz') ? 'ptsz' : null;
    if (want) variants++;
    const got = d.prepare('SELECT DISTINCT variant FROM v_cuda_calls WHERE op = ?').all(op) as any[];
    assert.deepEqual(got.map((g) => g.variant), [want], `${op} bound to ${sym}`);
  }
  // what the header binds, per cuda.h's __CUDA_API_PTSZ/__CUDA_API_PTDS defines
  assert.equal(workload.symbols.cuMemcpyHtoDAsync, 'cuMemcpyHtoDAsync_v2_ptsz');
  assert.equal(workload.symbols.cuMemcpyDtoD, 'cuMemcpyDtoD_v2_ptds');
  assert.ok(variants >= 17, `${variants} driver ops went through a variant export`);
  // arguments are decoded the same through the variant export
  assert.deepEqual(rows(d, 'cuMemcpyHtoD').map((r) => [r.bytes, r.direction]), Array.from({ length: N }, (_, i) => [500 + i, 'HostToDevice']));
  assert.deepEqual(rows(d, 'cuMemcpyDtoHAsync').map((r) => [r.bytes, r.direction]), Array.from({ length: N }, (_, i) => [800 + i, 'DeviceToHost']));
  assert.ok(rows(d, 'cuLaunchKernelEx').every((r) => r.grid_blocks === 264 && r.shared_mem === 49152 && r.stream > 0));
  d.close();
});

test('graph_decode --sync-logprobs: one row per graph launch and per blocking copy; explain --baseline names the blocking copy as the main cause', () => {
  const steps = 60;
  const base = trace('graph_decode', ['--steps', String(steps)]);
  base.d.close();
  const { d, workload, db } = trace('graph_decode', ['--steps', String(steps), '--sync-logprobs']);
  assertExactCounts(d, workload);
  assert.equal(opCounts(d).cudaGraphLaunch, steps);
  assert.equal(opCounts(d).cudaMemcpy, steps);
  // the captured launches ran once (into the graph), each with its kernel name
  assert.deepEqual([...new Set(rows(d, 'cudaLaunchKernel').map((r) => r.kernel))].sort(), ['graph_decode_kernel', 'graph_sample_kernel']);
  d.close();
  // Explained like the non-graph seed (incidents.test.ts): against the healthy graph loop, the new blocking DtoH copy
  // is the main cause. (Alone, the run's own blocking_sync chain is small, 1-2% of the wall: each copy waits for the
  // graph and its transfer keeps the device busy; the loss is the overlap the healthy loop had, which the comparison
  // measures. At 60 steps it straddles the 1% reporting threshold, so it is printed, not asserted.)
  const r = runCli(['explain', '--db', db, '--baseline', base.db, '--json', '--no-persist']);
  assert.equal(r.code, 0, r.stderr);
  const chains = JSON.parse(r.stdout).chains as any[];
  const top = chains[0];
  assert.ok(top, 'a chain');
  assert.equal(top.kind, 'regression', JSON.stringify(chains.map((x) => [x.kind, x.op])));
  assert.equal(top.op, 'cudaMemcpy');
  assert.match(top.summary, /DeviceToHost/);
  assert.match(top.summary, /main cause/);
  assert.equal(top.pid, workload.pid);
  const own = chains.find((x) => x.kind === 'blocking_sync');
  console.log(`# graph_decode: ${top.summary.slice(0, 160)}; own blocking_sync chain: ${own ? `${own.op} ${(own.impact_ns / 1e6).toFixed(2)} ms` : 'below threshold'}`);
});

test('event_poll: every cudaEventQuery of the spin is one row; the not-ready ones return 600', () => {
  const { d, workload } = trace('event_poll', ['20']);
  assertExactCounts(d, workload);
  const q = d.prepare("SELECT count(*) AS n, sum(ret = 600) AS nr, max(op_kind) AS kind FROM v_cuda_calls WHERE op = 'cudaEventQuery'").get() as any;
  assert.equal(q.n, workload.polls);
  assert.equal(q.nr, workload.not_ready);
  assert.equal(q.kind, 'poll');
  d.close();
});

// A spin on a completion query is a wait for the GPU (like cudaEventSynchronize), not host computation: the
// ready answer after not-ready ones marks the completion, and the idle time after it is owned by the poll op.
for (const [flag, op] of [[[], 'cudaEventQuery'], [['--stream-query'], 'cudaStreamQuery']] as const) {
  test(`event_poll ${flag.join(' ')}: the ${op} spin is waiting for the GPU; its idle time is owned by ${op}, not host computation`, () => {
    const { d, workload, db } = trace('event_poll', ['100', ...flag]);
    assert.equal(workload.poll, op);
    assert.ok(workload.not_ready > 0, 'the spin found the GPU busy');
    d.close();
    const r = runCli(['explain', '--db', db, '--json', '--no-persist']);
    assert.equal(r.code, 0, r.stderr);
    const e = JSON.parse(r.stdout);
    const chains = e.chains as any[];
    const desc = JSON.stringify(chains.map((x) => [x.kind, x.op, x.severity, x.impact_ns]));
    // the idle time after each ready answer (the host's path to the next launch: µs) is owned by the poll op,
    // as after a drain; a chain only where it is significant
    const cov = (e.coverage.kinds as any[]).find((k) => k.kind === 'blocking_sync');
    assert.match(cov.detail, new RegExp(`most after ${op}`), cov.detail);
    const c = chains.find((x) => x.kind === 'blocking_sync');
    if (c) assert.equal(c.op, op);
    // the loop computes nothing on the host: its spin must not read as host work starving the GPU. The one host
    // time a chain may rightly show is where the thread sat on a CPU between two calls far longer than the loop
    // ever does, outside any spin: a stalled vCPU (this VM reports no steal time) or interrupt work on its CPU.
    // CI runs had such 0.5 ms gaps between two launches, and between a record and the first (already ready) poll.
    const hc = chains.find((x) => x.kind === 'host_compute');
    if (hc) {
      const d2 = openDb(db);
      const calls = d2.prepare('SELECT id, op_kind, ret, ts_ns, ts_ns + dur_ns AS end_ns FROM v_cuda_calls WHERE tid = ? ORDER BY ts_ns').all(hc.tid) as any[];
      const offIn = d2.prepare('SELECT coalesce(sum(min(ts_ns + dur_ns, ?) - max(ts_ns, ?)), 0) AS ns FROM v_off_cpu WHERE tid = ? AND ts_ns < ? AND ts_ns + dur_ns > ?');
      let stalls = 0;
      let inSpin = false;
      for (let i = 1; i < calls.length; i++) {
        const p = calls[i - 1];
        const c = calls[i];
        // a spin: from a not-ready answer through the ready one that ends it, and the path to the next call
        inSpin = p.op_kind === 'poll' && (p.ret === 600 || inSpin);
        const onCpu = c.ts_ns - p.end_ns - Number((offIn.get(c.ts_ns, p.end_ns, hc.tid, c.ts_ns, p.end_ns) as any).ns);
        if (!inSpin && onCpu >= 100_000) stalls += onCpu;
      }
      d2.close();
      console.log(`# event_poll ${op}: host_compute ${hc.impact_ns} ns; on-CPU gaps >= 100 us outside the spin: ${stalls} ns`);
      assert.ok(hc.impact_ns <= stalls + 100_000, `host computation beyond the thread's long on-CPU gaps outside the spin (${stalls} ns): ${desc}`);
    }
  });
}

test('lazy_load: the first launch of each kernel carries the module-load stall and the kernel name; explain raises module_load', () => {
  const loadUs = 4000;
  const { d, workload, db } = trace('lazy_load', ['10', '4'], { FAKE_CUDA_MODULE_LOAD_US: String(loadUs) });
  assertExactCounts(d, workload);
  const names = Object.keys(workload.kernel_addrs).sort();
  const byKernel = d.prepare("SELECT kernel, group_concat(dur_ns) AS durs FROM (SELECT kernel, dur_ns FROM v_cuda_calls WHERE op = 'cudaLaunchKernel' ORDER BY ts_ns) GROUP BY kernel ORDER BY kernel").all() as any[];
  assert.deepEqual(byKernel.map((r) => r.kernel), names);
  for (const r of byKernel) {
    const [first, ...later] = String(r.durs).split(',').map(Number);
    assert.ok(first! >= loadUs * 1000, `${r.kernel}: first launch ${first} ns`);
    for (const l of later) assert.ok(l < (loadUs * 1000) / 2, `${r.kernel}: later launch ${l} ns`);
  }
  d.close();
  const r = runCli(['explain', '--db', db, '--json', '--no-persist']);
  assert.equal(r.code, 0, r.stderr);
  const chains = JSON.parse(r.stdout).chains as any[];
  const c = chains.find((x) => x.kind === 'module_load');
  assert.ok(c, `module_load chain: ${JSON.stringify(chains.map((x) => [x.kind, x.op, x.impact_ns]))}`);
  assert.equal(c.op, 'cudaLaunchKernel');
  assert.equal(c.pid, workload.pid);
  assert.ok(names.some((n) => c.summary.includes(`cudaLaunchKernel(${n})`)), c.summary);
  // the first kernel's load precedes any GPU work (nothing to starve): at most the other K-1 loads are idle
  // time; preemption inside a stall belongs to cpu_preemption, so on a loaded host the impact is lower
  const k = names.length;
  console.log(`# module_load impact ${(c.impact_ns / 1e6).toFixed(1)} ms, injected ${(k - 1) * loadUs / 1000} ms on the critical path`);
  assert.ok(c.impact_ns <= 1.25 * (k - 1) * loadUs * 1000, `impact ${c.impact_ns} above the injected stalls`);
});

test('real libcudart.so.13, --default-stream per-thread: every call once, variants as the binary imports them, kernel names demangled', (t) => {
  const exe = path.join(BIN, 'real_cudart13_pt');
  if (!fs.existsSync(exe)) return t.skip('nvcc not available: real_cudart13_pt was not built');
  const N = 3;
  const { d, workload } = trace('real_cudart13_pt', [String(N)]);
  assertExactCounts(d, workload);
  const imports = new Set(
    execFileSync('nm', ['-D', '--undefined-only', exe], { encoding: 'utf8' })
      .split('\n')
      .map((l) => l.trim().split(/\s+/).pop()!.replace(/@.*/, '')),
  );
  for (const [op, info] of Object.entries<any>(workload.ops)) {
    assert.equal(info.code, 35, `${op}: no driver here`);
    const want = imports.has(`${op}_ptsz`) || imports.has(`__${op}_ptsz`) ? 'ptsz' : imports.has(`${op}_ptds`) ? 'ptds' : null;
    const got = d.prepare('SELECT DISTINCT variant, ret FROM v_cuda_calls WHERE op = ?').all(op) as any[];
    assert.deepEqual(got.map((g) => [g.variant, g.ret]), [[want, 35]], op);
  }
  for (const op of ['cudaLaunchKernel', 'cudaLaunchKernelExC'])
    assert.deepEqual([...new Set(rows(d, op).map((r) => r.kernel))], ['pt_kernel(float*, int)'], op);
  d.close();
});
