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
  rows: { pid: number; tid: number; op: string; ret: number; a0: number; a1: number; a2: number; a3: number; dur: number }[];
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
  const decoder = new RecordDecoder(new TimeBase(0n), { process: () => {}, libLoad: () => {}, fork: () => {} });
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
        rows.push({ pid: batch.pid[i]!, tid: batch.tid[i]!, op: opName(batch.op[i]!), ret: batch.ret[i]!, a0: batch.a0[i]!, a1: batch.a1[i]!, a2: batch.a2[i]!, a3: batch.a3[i]!, dur: batch.dur[i]! });
      batch.n = 0;
    }
  }
  assert.equal(decoder.stats.malformed, 0, 'every slot decodes as a cw_call');
  source.beforeFinalDrain();
  source.drain(buf); // a scan after the last read: counters of finished rings
  return { rows, source, stdout: r.stdout, status: r.status };
}

const count = (rows: Drained['rows'], op: string) => rows.filter((r) => r.op === op).length;
const workloadJson = (s: string) => JSON.parse(s.split('\n').find((l) => l.startsWith('{"workload"'))!);

test('calls N: exactly N records per runtime op, with the arguments the workload passed', { skip }, () => {
  const N = 200;
  const d = runShimmed([path.join(BIN, 'calls'), String(N)]);
  assert.equal(d.status, 0);
  const w = workloadJson(d.stdout);
  const rtOps = [...OP_BY_NAME.values()].filter((o) => o.source === 1);
  for (const o of rtOps) assert.equal(count(d.rows, o.name), N, o.name);
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
  for (const o of [...OP_BY_NAME.values()].filter((x) => x.source === 2 && x.name !== 'cuCtxSynchronize')) assert.equal(count(d.rows, o.name), N, o.name);
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
  const N = 100; // 14 runtime ops x 100 = 1400 calls into 64 slots
  const d = runShimmed([path.join(BIN, 'calls'), String(N)], { slots: 64 });
  assert.equal(d.status, 0);
  const made = 14 * N;
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
