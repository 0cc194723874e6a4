// Locks in the in-process capture path without a tracer or root: workloads run with the shim preloaded, their rings are drained by InprocSource and decoded by the same RecordDecoder as the BPF rings; calls recorded = calls made (runtime, driver, fork, dlopen + dlsym, Python ctypes threads), with the workload's own arguments; a stalled or absent consumer never blocks the target and stored + dropped = calls made exactly.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { InprocSource } from '../../src/capture/inproc-source.js';
import { RecordDecoder, TimeBase } from '../../src/capture/decode.js';
import { allocBatch, type EventBatch } from '../../src/common/events.js';
import { OP_BY_NAME, opName } from '../../src/common/ops.js';
import { BIN, LIB, ROOT } from '../cli/helpers.js';

const SHIM = path.join(ROOT, 'shim/.output/libcauseway-shim.so');
const skip = !fs.existsSync(SHIM) ? 'shim not built (make -C shim)' : !fs.existsSync(path.join(BIN, 'calls')) ? 'fixtures not built' : false;
const dirs: string[] = [];
after(() => dirs.forEach((d) => fs.rmSync(d, { recursive: true, force: true })));

interface Drained {
  rows: { pid: number; tid: number; op: string; ret: number; a0: number; a1: number; a2: number; a3: number; dur: number; variant: number; flags: number }[];
  /** cw_func_name records: [pid, handle, name] */
  names: [number, number, string][];
  source: InprocSource;
  stdout: string;
  status: number | null;
}

/** Run argv with the shim preloaded into a fresh ring directory, then drain everything it wrote. */
function runShimmed(argv: string[], opts: { slots?: number; env?: NodeJS.ProcessEnv; noDir?: boolean } = {}): Drained {
  const dir = InprocSource.createDir();
  dirs.push(dir);
  if (opts.noDir) fs.rmSync(dir, { recursive: true });
  const env = { ...process.env, ...opts.env, LD_PRELOAD: SHIM, CAUSEWAY_SHIM_DIR: dir, ...(opts.slots ? { CAUSEWAY_SHIM_RING_SLOTS: String(opts.slots) } : {}) };
  const r = spawnSync(argv[0]!, argv.slice(1), { env, encoding: 'utf8', timeout: 60_000 });
  assert.equal(r.error, undefined);
  const source = new InprocSource(dir);
  const batch: EventBatch = allocBatch(1 << 16);
  const names: Drained['names'] = [];
  const decoder = new RecordDecoder(new TimeBase(0n), { process: () => {}, libLoad: () => {}, fork: () => {}, funcName: (pid, handle, name) => names.push([pid, handle, name]) });
  const buf = Buffer.alloc(1 << 20);
  const rows: Drained['rows'] = [];
  source.beforeFinalDrain();
  for (;;) {
    const n = source.drain(buf);
    if (n === 0) break;
    let off = 0;
    while (off < n) {
      off = decoder.decode(buf, n, batch, off);
      for (let i = 0; i < batch.n; i++)
        rows.push({ pid: batch.pid[i]!, tid: batch.tid[i]!, op: opName(batch.op[i]!), ret: batch.ret[i]!, a0: batch.a0[i]!, a1: batch.a1[i]!, a2: batch.a2[i]!, a3: batch.a3[i]!, dur: batch.dur[i]!, variant: batch.variant[i]!, flags: batch.flags[i]! });
      batch.n = 0;
    }
  }
  assert.equal(decoder.stats.malformed, 0, 'every slot decodes as a cw_call');
  source.beforeFinalDrain();
  source.drain(buf); // a scan after the last read: counters of finished rings
  return { rows, names, source, stdout: r.stdout, status: r.status };
}

/** runtime ops the calls workload makes that Causeway probes (each N times) */
const CALLS_OPS = 19;
const count = (rows: Drained['rows'], op: string) => rows.filter((r) => r.op === op).length;
const workloadJson = (s: string) => JSON.parse(s.split('\n').find((l) => l.startsWith('{"workload"'))!);

test('calls N: exactly N records per runtime op, with the arguments the workload passed', { skip }, () => {
  const N = 200;
  const d = runShimmed([path.join(BIN, 'calls'), String(N)]);
  assert.equal(d.status, 0);
  const w = workloadJson(d.stdout);
  const rtOps = Object.keys(w.counts).filter((o) => OP_BY_NAME.has(o)); // cudaGetLastError ...: not probed
  assert.equal(rtOps.length, CALLS_OPS);
  for (const o of rtOps) assert.equal(count(d.rows, o), N, o);
  assert.equal(d.rows.length, rtOps.length * N);
  assert.equal(d.source.callsMade(), d.rows.length);
  assert.deepEqual(d.source.losses(), []);
  const mallocs = d.rows.filter((r) => r.op === 'cudaMalloc');
  mallocs.forEach((r, i) => assert.equal(r.a0, (1 << 20) + i * 64, 'cudaMalloc bytes'));
  assert.equal(mallocs[0]!.a1, Number(BigInt(w.first_dev_ptr)), 'the returned device pointer, read through the out-pointer after the call');
  const copies = d.rows.filter((r) => r.op === 'cudaMemcpy');
  copies.forEach((r, i) => assert.equal(r.a1, i % 5, 'cudaMemcpy kind'));
  const launches = d.rows.filter((r) => r.op === 'cudaLaunchKernel');
  launches.forEach((r, i) => {
    assert.equal(r.a0, Number(BigInt(w.kernel_func)), 'kernel function');
    assert.equal(r.a1, ((i % 8) + 1) * 2, 'grid blocks = x*y*z');
    assert.equal(r.a2, 128, 'block threads');
  });
  assert.ok(d.rows.every((r) => r.dur > 0 && r.pid === w.pid && r.tid === w.pid));
});

test('driver calls (drv_calls N): N records per driver op, directions as the uprobes write them', { skip }, () => {
  const N = 50;
  const d = runShimmed([path.join(BIN, 'drv_calls'), String(N)]);
  assert.equal(d.status, 0);
  const w = workloadJson(d.stdout);
  let checked = 0;
  for (const [o, made] of Object.entries<number>(w.counts)) {
    if (!OP_BY_NAME.has(o)) continue; // cuInit ...: not probed
    assert.equal(count(d.rows, o), made, o);
    checked++;
  }
  assert.ok(checked >= 8, `${checked} driver ops checked`);
  assert.equal(d.rows.length, Object.entries<number>(w.counts).filter(([o]) => OP_BY_NAME.has(o)).reduce((s, [, n]) => s + n, 0));
  for (const r of d.rows.filter((x) => x.op.startsWith('cuMemcpy'))) assert.equal(r.a1, r.op.includes('HtoD') ? 1 : 2);
  assert.equal(d.source.callsMade(), d.rows.length);
});

test('fork: parent and child each get their own ring and every call is recorded once', { skip }, () => {
  const d = runShimmed([path.join(BIN, 'forker')]);
  const w = workloadJson(d.stdout);
  assert.equal(count(d.rows.filter((r) => r.pid === w.parent_pid), 'cudaMalloc'), w.parent_calls);
  assert.equal(count(d.rows.filter((r) => r.pid === w.child_pid), 'cudaMalloc'), w.child_calls);
  const child = d.source.processes().find((p) => p.pid === w.child_pid);
  assert.equal(child?.forkedFrom, w.parent_pid, 'the child registered itself as forked');
});

test('dlopen RTLD_LOCAL + dlsym after start: the wrapper is handed out and every call is recorded', { skip }, () => {
  const d = runShimmed([path.join(BIN, 'dlopen_late'), '50', '25']);
  const w = workloadJson(d.stdout);
  assert.equal(w.ok, 25);
  assert.equal(count(d.rows, 'cudaMalloc'), 25);
  d.rows.forEach((r, i) => assert.equal(r.a0, (1 << 20) + i * 4096));
});

test('Python ctypes, three threads + main: every call recorded, one ring per thread, thread exits close their rings', { skip }, () => {
  const wheel = path.join(ROOT, 'test/fixtures/build/root/opt/venv/lib/python3.11/site-packages/nvidia/cuda_runtime/lib/libcudart.so.12');
  const lib = fs.existsSync(wheel) ? wheel : path.join(LIB, 'libcudart.so.12');
  const py = [
    'import ctypes, threading, json, os',
    `rt = ctypes.CDLL(${JSON.stringify(lib)})`,
    'm = rt.cudaMalloc; m.argtypes = [ctypes.POINTER(ctypes.c_void_p), ctypes.c_size_t]',
    'ok = [0]',
    'def work(n):',
    '    for i in range(n):',
    '        p = ctypes.c_void_p()',
    '        if m(ctypes.byref(p), 4096 + i) == 0: ok[0] += 1',
    'ts = [threading.Thread(target=work, args=(300,)) for _ in range(3)]',
    '[t.start() for t in ts]; [t.join() for t in ts]; work(100)',
    'print(json.dumps({"workload": "ctypes", "pid": os.getpid(), "ok": ok[0]}))',
  ].join('\n');
  const d = runShimmed(['python3', '-c', py]);
  assert.equal(d.status, 0, d.stdout);
  const w = workloadJson(d.stdout);
  assert.equal(w.ok, 1000);
  assert.equal(count(d.rows, 'cudaMalloc'), 1000);
  const threads = d.source.threads().filter((t) => t.pid === w.pid);
  assert.equal(threads.length, 4, 'one ring per calling thread');
  assert.equal(threads.filter((t) => t.closed).length, 3, 'the three exited threads closed their rings');
  assert.deepEqual(threads.map((t) => t.calls).sort((a, b) => a - b), [100, 300, 300, 300]);
});

test('stalled consumer: a 64-slot ring nobody drains while the target runs; it never blocks and stored + dropped = calls made', { skip }, () => {
  const N = 100; // 19 probed runtime ops x 100 = 1900 calls into 64 slots
  const d = runShimmed([path.join(BIN, 'calls'), String(N)], { slots: 64 });
  assert.equal(d.status, 0);
  const made = CALLS_OPS * N;
  const full = d.source.losses().find((l) => l.reason === 'shim_ring_full')?.count ?? 0;
  assert.equal(d.rows.length, 64, 'the ring holds its 64 oldest records');
  assert.equal(d.rows.length + full, made);
  assert.equal(d.source.callsMade(), made);
  const t = d.source.threads();
  assert.equal(t.length, 1);
  assert.equal(t[0]!.drops.ring_full, made - 64, 'counted per thread');
});

test('no tracer at all (ring directory gone): the target runs to completion unharmed', { skip }, () => {
  const d = runShimmed([path.join(BIN, 'calls'), '20'], { noDir: true });
  assert.equal(d.status, 0);
  assert.equal(workloadJson(d.stdout).n, 20);
  assert.equal(d.rows.length, 0);
});

test('a full /dev/shm: the ring is refused when it is created (every call counted as no_ring), never a SIGBUS in the target', { skip: skip || (process.getuid?.() !== 0 ? 'needs root (mounts a small tmpfs)' : false) }, (t) => {
  // 64 KiB of tmpfs: the process file (one page) fits, a 65536-slot ring (5 MiB) does not. A ring whose pages
  // are not reserved up front would be mapped anyway and the target's first store into it would fault.
  const mnt = fs.mkdtempSync('/tmp/cw-shm-full-');
  dirs.push(mnt);
  const m = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=64k,mode=0700', 'tmpfs', mnt], { encoding: 'utf8' });
  if (m.status !== 0) return t.skip(`cannot mount a tmpfs here: ${m.stderr.trim()}`);
  try {
    const dir = InprocSource.createDir(mnt);
    const N = 20;
    const env = { ...process.env, LD_PRELOAD: SHIM, CAUSEWAY_SHIM_DIR: dir, CAUSEWAY_SHIM_RING_SLOTS: '65536' };
    const r = spawnSync(path.join(BIN, 'calls'), [String(N)], { env, encoding: 'utf8', timeout: 60_000 });
    assert.equal(r.signal, null, 'the target was not killed');
    assert.equal(r.status, 0);
    assert.equal(workloadJson(r.stdout).n, N);
    const source = new InprocSource(dir);
    source.beforeFinalDrain();
    assert.equal(source.drain(Buffer.alloc(1 << 16)), 0, 'nothing recorded');
    assert.equal(source.threads().length, 0, 'no ring file left behind');
    assert.equal(source.callsMade(), CALLS_OPS * N, 'every call counted');
    assert.deepEqual(source.losses(), [{ stage: 'shim', reason: 'shim_no_ring', count: CALLS_OPS * N }]);
    source.close();
  } finally {
    spawnSync('umount', [mnt]);
  }
});

/** Every op the workload says it called that Causeway probes: recorded rows == calls made, nothing else recorded. */
function assertExactCounts(d: Drained, w: any, atLeast: number): void {
  let checked = 0;
  let made = 0;
  for (const [op, n] of Object.entries<number>(w.counts)) {
    if (!OP_BY_NAME.has(op)) continue;
    assert.equal(count(d.rows, op), n, `${op}: recorded vs made`);
    checked++;
    made += n;
  }
  assert.ok(checked >= atLeast, `${checked} ops checked`);
  assert.ok(made > 0);
  // calls the workload does not count itself (cudaFree of its buffers ...) are recorded too: every call once
  assert.equal(d.source.callsMade(), d.rows.length);
  assert.deepEqual(d.source.losses(), []);
}
const sel = (d: Drained, op: string) => d.rows.filter((r) => r.op === op);

test('rt_ops N: every new runtime op exactly as often as called, arguments decoded as the uprobes decode them, no variant', { skip }, () => {
  const N = 5;
  const d = runShimmed([path.join(BIN, 'rt_ops'), String(N)]);
  assert.equal(d.status, 0);
  const w = workloadJson(d.stdout);
  assertExactCounts(d, w, 30);
  assert.equal(count(d.rows, 'cudaLaunchKernelExC'), 3 * N);
  assert.ok(d.rows.every((r) => r.variant === 0));
  const stream = sel(d, 'cudaStreamCreateWithFlags')[0]!.a1;
  assert.ok(stream > 0, 'the created stream, read through the out-pointer');
  sel(d, 'cudaLaunchKernelExC').forEach((r, i) => {
    assert.equal(r.a0, Number(BigInt(w.attention_kernel)), 'kernel function');
    assert.equal(r.a1, 128, 'grid blocks from the launch config');
    assert.equal(r.a2 % 2 ** 32, 256, 'block threads');
    assert.equal(Math.floor(r.a2 / 2 ** 32), 4096 + Math.floor(i / 3), 'dynamic shared memory in the high half');
    assert.equal(r.a3, stream);
  });
  assert.deepEqual(sel(d, 'cudaLaunchCooperativeKernel').map((r) => [r.a1, r.a2]), Array(N).fill([8, 256]));
  const execs = sel(d, 'cudaGraphInstantiate').map((r) => r.a1);
  assert.ok(execs.every((x) => x > 0));
  assert.deepEqual(sel(d, 'cudaGraphLaunch').map((r) => [r.a0, r.a1]), execs.map((x) => [x, stream]), 'graph exec + stream');
  assert.deepEqual(sel(d, 'cudaStreamEndCapture').map((r) => r.a1), sel(d, 'cudaGraphInstantiate').map((r) => r.a0), 'captured graph = instantiated graph');
  const events = sel(d, 'cudaEventCreate').map((r) => r.a1);
  assert.deepEqual(sel(d, 'cudaEventRecord').map((r) => r.a0), events);
  assert.deepEqual(sel(d, 'cudaEventQuery').map((r) => r.a0), events);
  const copy = (op: string) => sel(d, op).map((r) => [r.a0, r.a1]);
  assert.deepEqual(copy('cudaMemcpy2D'), Array(N).fill([128 * 64, 1]));
  assert.deepEqual(copy('cudaMemcpy2DAsync'), Array(N).fill([256 * 32, 2]));
  assert.deepEqual(copy('cudaMemcpy3D'), Array(N).fill([64 * 4 * 8, 1]), 'bytes from the cudaMemcpy3DParms extent');
  assert.deepEqual(copy('cudaMemcpy3DAsync'), Array(N).fill([64 * 4 * 8, 2]));
  assert.deepEqual(copy('cudaMemcpy3DPeer'), Array(N).fill([32 * 2 * 3, 3]));
  assert.deepEqual(copy('cudaMemcpyPeerAsync'), Array(N).fill([2000, 3]));
  assert.ok(sel(d, 'cudaMemcpy2DAsync').every((r) => r.a2 === stream));
  assert.ok(sel(d, 'cudaMallocFromPoolAsync').every((r) => r.a2 > 0 && r.a0 === 65536 && r.a1 > 0 && r.a3 === stream), 'pool, bytes, pointer, stream');
  assert.ok(sel(d, 'cudaMallocAsync').every((r) => r.a1 >= 0x7f0000000000 && r.a2 === stream));
});

test('rt_ops_pt N: calls bound to _ptds/_ptsz exports are recorded once each as the same op, with the variant the export carries', { skip }, () => {
  const N = 4;
  const d = runShimmed([path.join(BIN, 'rt_ops_pt'), String(N)]);
  assert.equal(d.status, 0);
  const w = workloadJson(d.stdout);
  assertExactCounts(d, w, 30);
  let variants = 0;
  for (const [op, sym] of Object.entries<string>(w.symbols)) {
    const want = sym.endsWith('_ptds') ? 1 : sym.endsWith('_ptsz') ? 2 : 0;
    if (want) variants++;
    assert.deepEqual([...new Set(sel(d, op).map((r) => r.variant))], [want], `${op} bound to ${sym}`);
  }
  assert.ok(variants >= 20, `${variants} ops went through a variant export`);
});

test('drv_ops N: driver ops exactly as often as called; cuModuleGetFunction/cuLibraryGetKernel emit the kernel name of the returned handle', { skip }, () => {
  const N = 4;
  const d = runShimmed([path.join(BIN, 'drv_ops'), String(N)]);
  assert.equal(d.status, 0);
  const w = workloadJson(d.stdout);
  assertExactCounts(d, w, 20);
  const lookups = [...sel(d, 'cuModuleGetFunction'), ...sel(d, 'cuLibraryGetKernel')];
  assert.equal(d.names.length, lookups.length, 'one name record per successful lookup');
  const byHandle = new Map(d.names.map(([, h, n]) => [h, n]));
  for (const r of lookups) assert.ok(byHandle.has(r.a1), `handle ${r.a1} named`);
  for (const [h, n] of Object.entries<string>(w.kernels)) assert.equal(byHandle.get(Number(h)), n, `handle ${h}`);
  sel(d, 'cuLaunchKernelEx').forEach((r) => {
    assert.equal(r.a1, 264);
    assert.equal(r.a2 % 2 ** 32, 128);
    assert.equal(Math.floor(r.a2 / 2 ** 32), 49152);
    assert.ok(r.a3 > 0);
  });
  assert.deepEqual(sel(d, 'cuMemcpyDtoD').map((r) => [r.a0, r.a1]), Array.from({ length: N }, (_, i) => [3000 + i, 3]));
  assert.deepEqual(sel(d, 'cuMemcpy').map((r) => [r.a0, r.a1]), Array.from({ length: N }, (_, i) => [1000 + i, 4]));
  assert.ok(sel(d, 'cuGraphLaunch').every((r) => r.a0 > 0 && r.a1 > 0));
});

test('a 16-slot ring with kernel lookups: a name travels with its call or both are dropped and counted once (stored + dropped = calls made)', { skip }, () => {
  // 10 one-slot calls come first; the first lookup (name: 3 slots + call) fits, the second does not
  const d = runShimmed([path.join(BIN, 'drv_ops'), '3'], { slots: 16 });
  assert.equal(d.status, 0);
  const full = d.source.losses().find((l) => l.reason === 'shim_ring_full')?.count ?? 0;
  assert.equal(d.rows.length + full, d.source.callsMade());
  assert.ok(d.rows.length > 0 && full > 0);
  const lookups = d.rows.filter((r) => r.op === 'cuModuleGetFunction' || r.op === 'cuLibraryGetKernel');
  assert.equal(d.names.length, lookups.length);
  assert.ok(lookups.length >= 1, 'a lookup and its name fit');
});

test('graph_decode, event_poll, lazy_load: recorded = made for every probed op', { skip }, () => {
  for (const argv of [['graph_decode', '--steps', '30', '--sync-logprobs'], ['event_poll', '20'], ['lazy_load', '10', '4']]) {
    const d = runShimmed([path.join(BIN, argv[0]!), ...argv.slice(1)]);
    assert.equal(d.status, 0, argv[0]);
    const w = workloadJson(d.stdout);
    assertExactCounts(d, w, 2);
    if (argv[0] === 'event_poll') {
      assert.equal(count(d.rows, 'cudaEventQuery'), w.polls);
      assert.equal(d.rows.filter((r) => r.op === 'cudaEventQuery' && r.ret === 600).length, w.not_ready);
    }
  }
});
