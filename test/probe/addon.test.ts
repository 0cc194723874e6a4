// Locks in: the addon + cuda/driver BPF objects record every CUDA call of a traced process exactly once (real libcudart.so.13, uprobe_multi and classic), with the arguments, return codes and loss counts the C side really produced.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { rmSync, writeFileSync, existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { loadAddon, addonPath, repoRoot, drainedRecords, DRAIN_MIN_BUFFER, type Addon, type ObjHandle } from '../../src/probe/addon.js';
import { tempDir } from '../helpers/temp-dir.js';

const ROOT = repoRoot();
const CUDART = '/usr/local/cuda/lib64/libcudart.so.13';
const CUDA_OBJ = resolve(ROOT, 'bpf/.output/cuda.bpf.o');
const DRV_OBJ = resolve(ROOT, 'bpf/.output/driver.bpf.o');
const isRoot = process.getuid?.() === 0;
const haveCuda = existsSync(CUDART);
const skip = !isRoot ? 'needs root (BPF)' : !haveCuda ? `${CUDART} not installed` : false;

// enum cw_op / cw_loss / flags (bpf/events.h)
const OP = { cudaMalloc: 1, cudaLaunchKernel: 6, cudaMemcpy: 7, cudaDeviceSynchronize: 12, cuLaunchKernel: 64, cuMemAlloc: 65, cuMemcpyHtoD: 67, cuMemcpyDtoH: 68, cuCtxSynchronize: 71 } as const;
const LOSS = { RB_CALLS: 0, ENTRY_MAP_FULL: 3, MISSED_RETURN: 4, ORPHAN_RETURN: 5, STACK: 6 } as const;
const F_STACK = 1, F_ERROR = 2;
const CALL_SIZE = 72;

interface Call {
  ts: bigint; tgid: number; tid: number; op: number; source: number; version: number; flags: number;
  dur: bigint; a: bigint[]; ret: number; stackId: number;
}

/** struct cw_call, decoded here independently of src/capture so the test checks the C bytes themselves. */
function decodeCall(buf: Buffer, off: number): Call {
  const v = new DataView(buf.buffer, buf.byteOffset + off, CALL_SIZE);
  return {
    ts: v.getBigUint64(0, true), tgid: v.getUint32(8, true), tid: v.getUint32(12, true),
    op: v.getUint16(16, true), source: v.getUint8(18), version: v.getUint8(19), flags: v.getUint32(20, true),
    dur: v.getBigUint64(24, true), a: [0, 1, 2, 3].map((i) => v.getBigUint64(32 + 8 * i, true)),
    ret: v.getInt32(64, true), stackId: v.getInt32(68, true),
  };
}

/** Drains a ring through a deliberately small buffer (several passes) and decodes every record. */
function drainAll(addon: Addon, ring: number, bufSize = DRAIN_MIN_BUFFER + 3 * 80): Call[] {
  const out = Buffer.alloc(bufSize);
  const calls: Call[] = [];
  for (;;) {
    const n = addon.drain(ring, out);
    if (n === 0) return calls;
    assert.ok(n <= out.length);
    for (const { offset, length } of drainedRecords(out, n)) {
      assert.equal(length, CALL_SIZE);
      calls.push(decodeCall(out, offset));
    }
  }
}

const RT_PROG = String.raw`
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cuda_runtime_api.h>
static char host[1 << 16];
int main(int argc, char **argv) {
  const char *mode = argv[1];
  int n = atoi(argv[2]);
  char line[16];
  if (!fgets(line, sizeof line, stdin)) return 2; /* wait until the tracer is ready */
  if (!strcmp(mode, "rt")) {
    for (int i = 0; i < n; i++) {
      void *p = 0; size_t sz = 4096u * (i + 1);
      int r = cudaMalloc(&p, sz);
      printf("cudaMalloc %d %zu %p\n", r, sz, p);
    }
    for (int i = 0; i < n; i++) {
      size_t c = 100 + i; int k = i % 4;
      int r = cudaMemcpy(host + i, host + 1000 + i, c, (enum cudaMemcpyKind)k);
      printf("cudaMemcpy %d %zu %d %p %p\n", r, c, k, (void *)(host + i), (void *)(host + 1000 + i));
    }
    for (int i = 0; i < n; i++) {
      int r = cudaDeviceSynchronize();
      printf("cudaDeviceSynchronize %d\n", r);
    }
    for (int i = 0; i < n; i++) {
      dim3 g = { i + 1, 2, 3 }, b = { 32, i + 1, 2 };
      void *args[1] = { 0 };
      int r = cudaLaunchKernel((const void *)(0x1000ul + i), g, b, args, 64, (cudaStream_t)(0x5000ul + i));
      printf("cudaLaunchKernel %d %u %u %p %p\n", r, g.x * g.y * g.z, b.x * b.y * b.z, (void *)(0x1000ul + i), (void *)(0x5000ul + i));
    }
  } else { /* sync */
    int r = 0;
    for (int i = 0; i < n; i++) r = cudaDeviceSynchronize();
    printf("sync %d %d\n", n, r);
  }
  printf("addr %p\n", (void *)cudaDeviceSynchronize);
  return 0;
}
`;

// A fake libcuda.so.1 with the real driver signatures and a frame-pointer prologue (GUIDE §8).
const FAKE_DRV = String.raw`
#include <stddef.h>
typedef int CUresult; typedef unsigned long long CUdeviceptr; typedef void *CUfunction; typedef void *CUstream;
CUresult cuLaunchKernel(CUfunction f, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by, unsigned bz,
                        unsigned shm, CUstream s, void **params, void **extra) {
  __asm__ volatile("" ::: "memory");
  return (gx * gy * gz + bx * by * bz + shm + (s != 0) + (params != 0) + (extra != 0)) ? 0 : 1;
}
CUresult cuMemAlloc_v2(CUdeviceptr *d, size_t n) { *d = 0x7f0000000000ull + n; return 0; }
CUresult cuMemcpyHtoD_v2(CUdeviceptr dst, const void *src, size_t n) { return n > 1000 ? 700 : 0; }
CUresult cuMemcpyDtoH_v2(void *dst, CUdeviceptr src, size_t n) { return 0; }
CUresult cuCtxSynchronize(void) { return 999; }
`;
const DRV_PROG = String.raw`
#include <stdio.h>
#include <stdlib.h>
#include <stddef.h>
typedef int CUresult; typedef unsigned long long CUdeviceptr; typedef void *CUfunction; typedef void *CUstream;
CUresult cuLaunchKernel(CUfunction, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned, CUstream, void **, void **);
CUresult cuMemAlloc_v2(CUdeviceptr *, size_t);
CUresult cuMemcpyHtoD_v2(CUdeviceptr, const void *, size_t);
CUresult cuMemcpyDtoH_v2(void *, CUdeviceptr, size_t);
CUresult cuCtxSynchronize(void);
int main(int argc, char **argv) {
  int n = atoi(argv[1]);
  char line[16], buf[4096];
  if (!fgets(line, sizeof line, stdin)) return 2;
  for (int i = 0; i < n; i++) {
    void *params[1] = { 0 };
    int r = cuLaunchKernel((CUfunction)(0x2000ul + i), i + 1, 2, 3, 4, 5, i + 6, 128, (CUstream)(0x9000ul + i), params, 0);
    printf("cuLaunchKernel %d %u %u %p %p\n", r, (i + 1) * 6, 20 * (i + 6), (void *)(0x2000ul + i), (void *)(0x9000ul + i));
    CUdeviceptr d = 0;
    r = cuMemAlloc_v2(&d, 512 * (i + 1));
    printf("cuMemAlloc %d %d 0x%llx\n", r, 512 * (i + 1), d);
    r = cuMemcpyHtoD_v2(d, buf, 600 * (i + 1));
    printf("cuMemcpyHtoD %d %d 0x%llx %p\n", r, 600 * (i + 1), d, (void *)buf);
    r = cuMemcpyDtoH_v2(buf, d, 7 + i);
    printf("cuMemcpyDtoH %d %d %p 0x%llx\n", r, 7 + i, (void *)buf, d);
    r = cuCtxSynchronize();
    printf("cuCtxSynchronize %d\n", r);
  }
  return 0;
}
`;

let dir = '';
let addon: Addon;
let rtBin = '';
let drvBin = '';
let fakeCuda = '';

/** File offset of each exported function (readelf symbol value mapped through the LOAD segments). */
function fileOffsets(lib: string, names: string[]): Map<string, number> {
  const segs = [...execFileSync('readelf', ['-lW', lib]).toString().matchAll(/^\s*LOAD\s+(0x[0-9a-f]+)\s+(0x[0-9a-f]+)\s+0x[0-9a-f]+\s+0x[0-9a-f]+\s+(0x[0-9a-f]+)/gm)]
    .map((m) => ({ off: Number(m[1]), vaddr: Number(m[2]), memsz: Number(m[3]) }));
  const syms = execFileSync('readelf', ['-Ws', '--dyn-syms', lib]).toString();
  const res = new Map<string, number>();
  for (const name of names) {
    const m = syms.match(new RegExp(String.raw`^\s*\d+:\s+([0-9a-f]+)\s+\d+\s+FUNC\s+GLOBAL\s+DEFAULT\s+\d+\s+${name}(@@\S+)?$`, 'm'));
    assert.ok(m, `${name} not exported by ${lib}`);
    const v = parseInt(m[1], 16);
    const seg = segs.find((s) => v >= s.vaddr && v < s.vaddr + s.memsz);
    assert.ok(seg, `${name}: no LOAD segment`);
    res.set(name, v - seg.vaddr + seg.off);
  }
  return res;
}

interface Run { pid: number; lines: string[]; code: number | null }

/** Starts a workload that waits for a line on stdin; `ready` runs with its pid before the line is sent. */
async function runWorkload(argv: string[], ready: (pid: number) => void = () => {}, env?: NodeJS.ProcessEnv): Promise<Run> {
  const c = spawn(argv[0], argv.slice(1), { stdio: ['pipe', 'pipe', 'inherit'], env: env ?? process.env });
  let out = '';
  c.stdout.on('data', (d) => (out += d));
  // 'close', not 'exit': 'exit' can come before the last stdout data event, leaving `out` short (seen in CI:
  // a run that printed all its lines parsed as none)
  const exited = new Promise<number | null>((r) => c.on('close', (code) => r(code)));
  ready(c.pid!);
  c.stdin.write('go\n');
  const code = await exited;
  return { pid: c.pid!, lines: out.trim().split('\n'), code };
}

function trace(obj: ObjHandle, pid: number): void {
  const k = Buffer.alloc(4);
  k.writeUInt32LE(pid);
  const v = Buffer.alloc(4);
  v.writeUInt32LE(1);
  addon.mapUpdate(obj, 'cw_traced', k, v);
}

const ptr = (s: string): bigint => (s === '(nil)' ? 0n : BigInt(s));
const RT_SYMS = ['cudaMalloc', 'cudaMemcpy', 'cudaDeviceSynchronize', 'cudaLaunchKernel'] as const;
let rtOffsets: Map<string, number>;

before(() => {
  if (skip) return;
  execFileSync('make', ['-s', '-C', resolve(ROOT, 'bpf')], { stdio: 'inherit' });
  if (!existsSync(addonPath())) execFileSync('npm', ['run', 'install'], { cwd: ROOT, stdio: 'inherit' });
  addon = loadAddon();
  dir = tempDir('cw-addon-');
  writeFileSync(join(dir, 'rt.c'), RT_PROG);
  rtBin = join(dir, 'rt');
  execFileSync('gcc', ['-O1', '-fPIE', '-pie', '-I/usr/local/cuda/include', join(dir, 'rt.c'), '-o', rtBin,
    '-L/usr/local/cuda/lib64', '-lcudart', '-Wl,-rpath,/usr/local/cuda/lib64']);
  writeFileSync(join(dir, 'fakecuda.c'), FAKE_DRV);
  fakeCuda = join(dir, 'libcuda.so.1');
  execFileSync('gcc', ['-O2', '-fno-omit-frame-pointer', '-fcf-protection=none', '-shared', '-fPIC', '-Wl,-soname,libcuda.so.1',
    join(dir, 'fakecuda.c'), '-o', fakeCuda]);
  writeFileSync(join(dir, 'drv.c'), DRV_PROG);
  drvBin = join(dir, 'drv');
  execFileSync('gcc', ['-O1', join(dir, 'drv.c'), '-o', drvBin, fakeCuda, `-Wl,-rpath,${dir}`]);
  rtOffsets = fileOffsets(CUDART, [...RT_SYMS]);
});

after(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

function openRt(opts: Parameters<Addon['openObject']>[1] = {}, multi = true): ObjHandle {
  return addon.openObject(CUDA_OBJ, { uprobeMultiPrograms: multi ? ['cw_cuda_entry', 'cw_cuda_return'] : [], ...opts });
}

function attachRtMulti(obj: ObjHandle, syms: readonly string[] = RT_SYMS, pid = 0): number[] {
  const offs = syms.map((s) => rtOffsets.get(s)!);
  const cookies = syms.map((s) => OP[s as keyof typeof OP]);
  return [
    addon.attachUprobeMulti(obj, 'cw_cuda_entry', CUDART, offs, cookies, false, pid),
    addon.attachUprobeMulti(obj, 'cw_cuda_return', CUDART, offs, cookies, true, pid),
  ];
}

/** Checks the records of one `rt` run against what the program printed, op by op, in call order. */
function checkRtRun(calls: Call[], run: Run, n: number): void {
  assert.equal(run.code, 0);
  const mine = calls.filter((c) => c.tgid === run.pid);
  for (const sym of RT_SYMS) {
    const printed = run.lines.filter((l) => l.startsWith(sym + ' ')).map((l) => l.split(' ').slice(1));
    assert.equal(printed.length, n);
    const recs = mine.filter((c) => c.op === OP[sym]).sort((x, y) => (x.ts < y.ts ? -1 : 1));
    assert.equal(recs.length, n, `${sym}: expected exactly ${n} records, got ${recs.length}`);
    recs.forEach((r, i) => {
      const p = printed[i];
      const ret = Number(p[0]);
      assert.equal(r.ret, ret, `${sym}[${i}] ret`);
      assert.equal(r.tid, run.pid);
      assert.equal(r.source, 1);
      assert.equal(r.version, 1);
      assert.equal((r.flags & F_ERROR) !== 0, ret !== 0, `${sym}[${i}] error flag`);
      assert.equal(r.stackId, -1);
      assert.ok(r.dur > 0n);
      if (sym === 'cudaMalloc') assert.deepEqual(r.a, [BigInt(p[1]), ret === 0 ? ptr(p[2]) : 0n, 0n, 0n]);
      if (sym === 'cudaMemcpy') assert.deepEqual(r.a, [BigInt(p[1]), BigInt(p[2]), ptr(p[3]), ptr(p[4])]);
      if (sym === 'cudaDeviceSynchronize') assert.deepEqual(r.a, [0n, 0n, 0n, 0n]);
      if (sym === 'cudaLaunchKernel') assert.deepEqual(r.a, [ptr(p[3]), BigInt(p[1]), BigInt(p[2]), ptr(p[4])]);
    });
  }
}

test('uprobe_multi on libcudart.so.13: N records per op with real return codes and arguments; untraced process ignored; zero drops', { skip }, async () => {
  const N = 7;
  const obj = openRt();
  try {
    const links = attachRtMulti(obj);
    const ring = addon.ringOpen(obj, 'rb_calls');
    const t0 = addon.monotonicNs();
    const untraced = runWorkload([rtBin, 'sync', '50']);
    const run = await runWorkload([rtBin, 'rt', String(N)], (pid) => trace(obj, pid));
    const other = await untraced;
    const t1 = addon.monotonicNs();
    const calls = drainAll(addon, ring);
    addon.detach(links);

    checkRtRun(calls, run, N);
    assert.equal(calls.length, 4 * N, 'nothing but the traced process is recorded');
    assert.ok(other.lines[0].startsWith('sync 50 '), 'the untraced process made its calls while probes were attached');
    assert.equal(calls.filter((c) => c.tgid === other.pid).length, 0);
    for (const c of calls) assert.ok(c.ts >= t0 && c.ts + c.dur <= t1, 'timestamps are CLOCK_MONOTONIC (monotonicNs)');
    assert.deepEqual(addon.readPercpuCounters(obj, 'cw_drops').map(Number), new Array(addon.readPercpuCounters(obj, 'cw_drops').length).fill(0));
    assert.equal(addon.mapLookup(obj, 'cw_entries', Buffer.alloc(8)), null);
    assert.equal(addon.mapKeys(obj, 'cw_entries').length, 0, 'every entry state was consumed by its return');
  } finally {
    addon.closeObject(obj);
  }
});

test('tiny rb_calls: every call is either stored or counted as a reserve failure', { skip }, async () => {
  const M = 400;
  const obj = openRt({ mapSizes: { rb_calls: 4096 } });
  try {
    const links = attachRtMulti(obj, ['cudaDeviceSynchronize']);
    const ring = addon.ringOpen(obj, 'rb_calls');
    const run = await runWorkload([rtBin, 'sync', String(M)], (pid) => trace(obj, pid));
    assert.ok(run.lines[0].startsWith(`sync ${M} `));
    const calls = drainAll(addon, ring);
    addon.detach(links);
    const drops = addon.readPercpuCounters(obj, 'cw_drops');
    assert.ok(calls.length > 0 && calls.length < M, `a 4 KiB ring holds a few dozen records, stored ${calls.length}`);
    assert.equal(BigInt(calls.length) + drops[LOSS.RB_CALLS], BigInt(M));
    assert.equal(drops[LOSS.ORPHAN_RETURN] + drops[LOSS.MISSED_RETURN] + drops[LOSS.ENTRY_MAP_FULL], 0n);
  } finally {
    addon.closeObject(obj);
  }
});

test('classic uprobes (plain object and uprobe_multi twin) record the same calls; detach stops recording and is idempotent', { skip }, async () => {
  const N = 4;
  for (const multiLoaded of [false, true]) {
    const obj = openRt({}, multiLoaded);
    try {
      const links: number[] = [];
      for (const sym of RT_SYMS) {
        links.push(addon.attachUprobe(obj, 'cw_cuda_entry', CUDART, rtOffsets.get(sym)!, OP[sym], false, 0));
        links.push(addon.attachUprobe(obj, 'cw_cuda_return', CUDART, rtOffsets.get(sym)!, OP[sym], true, 0));
      }
      const ring = addon.ringOpen(obj, 'rb_calls');
      const run = await runWorkload([rtBin, 'rt', String(N)], (pid) => trace(obj, pid));
      const calls = drainAll(addon, ring);
      checkRtRun(calls, run, N);
      assert.equal(calls.length, 4 * N);
      addon.detach(links);
      addon.detach(links); // twice: no error
      const after = await runWorkload([rtBin, 'rt', String(N)], (pid) => trace(obj, pid));
      assert.equal(after.code, 0);
      assert.equal(drainAll(addon, ring).length, 0, 'no record after detach');
      assert.equal(addon.readPercpuCounters(obj, 'cw_drops').reduce((x, y) => x + y, 0n), 0n);
    } finally {
      addon.closeObject(obj);
      addon.closeObject(obj); // twice: no error
    }
  }
});

test('user stacks: every call, or every Nth call per CPU, with the probed function as the first frame', { skip }, async () => {
  const every1 = new Array(256).fill(0);
  every1[OP.cudaDeviceSynchronize] = 1;
  const obj = openRt({ rodata: { cw_stack_every: every1 } });
  try {
    const links = attachRtMulti(obj, ['cudaDeviceSynchronize']);
    const ring = addon.ringOpen(obj, 'rb_calls');
    const run = await runWorkload([rtBin, 'sync', '5'], (pid) => trace(obj, pid));
    const calls = drainAll(addon, ring);
    addon.detach(links);
    assert.equal(calls.length, 5);
    const fn = ptr(run.lines.find((l) => l.startsWith('addr '))!.split(' ')[1]);
    for (const c of calls) {
      assert.ok(c.flags & F_STACK, 'stack flag');
      assert.ok(c.stackId >= 0);
      const frames = addon.stackFrames(obj, 'cw_stacks', c.stackId);
      assert.ok(frames.length >= 2, 'probed function + its caller');
      assert.equal(frames[0], fn, 'first frame is cudaDeviceSynchronize itself');
    }
    assert.deepEqual(addon.stackFrames(obj, 'cw_stacks', 4095), []);
  } finally {
    addon.closeObject(obj);
  }

  const obj3 = openRt({ rodata: { 'cw_stack_every[12]': 3 } });
  try {
    const links = attachRtMulti(obj3, ['cudaDeviceSynchronize']);
    const ring = addon.ringOpen(obj3, 'rb_calls');
    // pinned to one CPU so the per-CPU counter makes the sampled calls exact: 3rd, 6th, 9th
    await runWorkload(['taskset', '-c', '0', rtBin, 'sync', '9'], (pid) => trace(obj3, pid));
    const calls = drainAll(addon, ring).sort((x, y) => (x.ts < y.ts ? -1 : 1));
    addon.detach(links);
    assert.equal(calls.length, 9);
    assert.deepEqual(calls.map((c) => (c.flags & F_STACK ? 1 : 0)), [0, 0, 1, 0, 0, 1, 0, 0, 1]);
    assert.deepEqual(calls.map((c) => c.stackId >= 0), [false, false, true, false, false, true, false, false, true]);
    assert.equal(addon.readPercpuCounters(obj3, 'cw_drops')[LOSS.STACK], 0n);
  } finally {
    addon.closeObject(obj3);
  }
});

test('driver object (shared maps): cuLaunchKernel stack arguments, cuMemAlloc out-pointer, copy directions', { skip }, async () => {
  const N = 3;
  const rt = openRt();
  const drv = addon.openObject(DRV_OBJ, {
    uprobeMultiPrograms: ['cw_drv_entry', 'cw_drv_return'],
    shareMaps: { from: rt, names: ['cw_traced', 'cw_drops', 'rb_calls', 'rb_host', 'rb_life', 'cw_stacks'] },
  });
  try {
    assert.deepEqual(addon.programs(drv), ['cw_drv_entry', 'cw_drv_return']);
    const syms = ['cuLaunchKernel', 'cuMemAlloc_v2', 'cuMemcpyHtoD_v2', 'cuMemcpyDtoH_v2', 'cuCtxSynchronize'];
    const ops = [OP.cuLaunchKernel, OP.cuMemAlloc, OP.cuMemcpyHtoD, OP.cuMemcpyDtoH, OP.cuCtxSynchronize];
    const offs = fileOffsets(fakeCuda, syms);
    const links = [
      addon.attachUprobeMulti(drv, 'cw_drv_entry', fakeCuda, syms.map((s) => offs.get(s)!), ops, false, 0),
      addon.attachUprobeMulti(drv, 'cw_drv_return', fakeCuda, syms.map((s) => offs.get(s)!), ops, true, 0),
    ];
    const ring = addon.ringOpen(rt, 'rb_calls'); // the driver writes into the runtime object's ring
    const run = await runWorkload([drvBin, String(N)], (pid) => trace(rt, pid)); // filter shared too
    const calls = drainAll(addon, ring).sort((x, y) => (x.ts < y.ts ? -1 : 1));
    addon.detach(links);
    assert.equal(run.code, 0);
    assert.equal(calls.length, 5 * N);
    const byName: Record<string, number> = { cuLaunchKernel: 64, cuMemAlloc: 65, cuMemcpyHtoD: 67, cuMemcpyDtoH: 68, cuCtxSynchronize: 71 };
    run.lines.forEach((line, i) => {
      const [name, ...p] = line.split(' ');
      const c = calls[i];
      assert.equal(c.op, byName[name], `record ${i} is ${name}`);
      assert.equal(c.source, 2);
      assert.equal(c.ret, Number(p[0]));
      assert.equal((c.flags & F_ERROR) !== 0, Number(p[0]) !== 0);
      if (name === 'cuLaunchKernel') assert.deepEqual(c.a, [ptr(p[3]), BigInt(p[1]), BigInt(p[2]), ptr(p[4])]);
      if (name === 'cuMemAlloc') assert.deepEqual(c.a, [BigInt(p[1]), BigInt(p[2]), 0n, 0n]);
      if (name === 'cuMemcpyHtoD') assert.deepEqual(c.a, [BigInt(p[1]), 1n, BigInt(p[2]), ptr(p[3])]);
      if (name === 'cuMemcpyDtoH') assert.deepEqual(c.a, [BigInt(p[1]), 2n, ptr(p[2]), BigInt(p[3])]);
      if (name === 'cuCtxSynchronize') assert.deepEqual(c.a, [0n, 0n, 0n, 0n]);
    });
    assert.equal(addon.readPercpuCounters(drv, 'cw_drops').reduce((x, y) => x + y, 0n), 0n);
  } finally {
    addon.closeObject(drv);
    addon.closeObject(rt);
  }
});

test('trace_all: a calling process is recorded and added to cw_traced with TRACE_ON|CHILDREN; Causeway itself is not', { skip }, async () => {
  const obj = openRt({ rodata: { cw_trace_all: true, cw_self_tgid: process.pid } });
  try {
    const links = attachRtMulti(obj, ['cudaDeviceSynchronize']);
    const ring = addon.ringOpen(obj, 'rb_calls');
    const run = await runWorkload([rtBin, 'sync', '6']);
    const calls = drainAll(addon, ring);
    addon.detach(links);
    assert.equal(calls.filter((c) => c.tgid === run.pid).length, 6);
    const k = Buffer.alloc(4);
    k.writeUInt32LE(run.pid);
    assert.equal(addon.mapLookup(obj, 'cw_traced', k)?.readUInt32LE(0), 3);
    const self = Buffer.alloc(4);
    self.writeUInt32LE(process.pid);
    assert.equal(addon.mapLookup(obj, 'cw_traced', self), null);
    assert.equal(addon.mapDelete(obj, 'cw_traced', k), true);
    assert.equal(addon.mapDelete(obj, 'cw_traced', k), false);
  } finally {
    addon.closeObject(obj);
  }
});

test('loss accounting: returns without entry are orphans, entries without return are missed returns', { skip }, async () => {
  const obj = openRt();
  try {
    const off = [rtOffsets.get('cudaDeviceSynchronize')!];
    const ret = addon.attachUprobeMulti(obj, 'cw_cuda_return', CUDART, off, [OP.cudaDeviceSynchronize], true, 0);
    await runWorkload([rtBin, 'sync', '5'], (pid) => trace(obj, pid));
    addon.detach([ret]);
    let drops = addon.readPercpuCounters(obj, 'cw_drops');
    assert.equal(drops[LOSS.ORPHAN_RETURN], 5n);

    const ent = addon.attachUprobeMulti(obj, 'cw_cuda_entry', CUDART, off, [OP.cudaDeviceSynchronize], false, 0);
    const run = await runWorkload([rtBin, 'sync', '5'], (pid) => trace(obj, pid));
    addon.detach([ent]);
    drops = addon.readPercpuCounters(obj, 'cw_drops');
    assert.equal(drops[LOSS.MISSED_RETURN], 4n, 'each new entry of the same (tid, op) overwrote one that never returned');
    const key = Buffer.alloc(8);
    key.writeUInt32LE(run.pid, 0);
    key.writeUInt32LE(OP.cudaDeviceSynchronize, 4);
    const e = addon.mapLookup(obj, 'cw_entries', key);
    assert.ok(e, 'the last entry is still pending');
    assert.equal(drainAll(addon, addon.ringOpen(obj, 'rb_calls')).length, 0);
  } finally {
    addon.closeObject(obj);
  }
});

test('detach: 30 classic links in parallel threads vs 30 probes on two uprobe_multi links', { skip }, () => {
  const syms = execFileSync('readelf', ['-Ws', '--dyn-syms', CUDART]).toString();
  const names = [...new Set([...syms.matchAll(/\sFUNC\s+GLOBAL\s+DEFAULT\s+\d+\s+(cuda\w+)@@/g)].map((m) => m[1]))].slice(0, 60);
  const offs = [...new Set(fileOffsets(CUDART, names).values())].slice(0, 15);
  const obj = openRt({}, false);
  const objm = openRt();
  try {
    const classic = offs.flatMap((o) => [
      addon.attachUprobe(obj, 'cw_cuda_entry', CUDART, o, 12, false, 0),
      addon.attachUprobe(obj, 'cw_cuda_return', CUDART, o, 12, true, 0),
    ]);
    let t = performance.now();
    addon.detach(classic);
    const classicMs = performance.now() - t;
    const multi = [
      addon.attachUprobeMulti(objm, 'cw_cuda_entry', CUDART, offs, offs.map(() => 12), false, 0),
      addon.attachUprobeMulti(objm, 'cw_cuda_return', CUDART, offs, offs.map(() => 12), true, 0),
    ];
    t = performance.now();
    addon.detach(multi);
    const multiMs = performance.now() - t;
    console.log(`# detach of 30 probes: classic (parallel) ${classicMs.toFixed(0)} ms, uprobe_multi ${multiMs.toFixed(0)} ms`);
    assert.equal(classic.length, 30);
    assert.ok(multiMs < classicMs / 4, 'uprobe_multi teardown is much cheaper than classic');
  } finally {
    addon.closeObject(obj);
    addon.closeObject(objm);
  }
});

test('errors name the libbpf call, the object/program/path and errno text', { skip }, () => {
  assert.throws(() => addon.openObject('/nonexistent/x.bpf.o'), /bpf_object__open_file\(\/nonexistent\/x\.bpf\.o\): No such file/);
  assert.throws(() => addon.openObject(CUDA_OBJ, { rodata: { no_such_var: 1 } }), /no const volatile global named 'no_such_var'/);
  assert.throws(() => addon.openObject(CUDA_OBJ, { mapSizes: { rb_calls: 5000 } }), /power of two/);
  const obj = openRt({}, false);
  try {
    const off = rtOffsets.get('cudaMalloc')!;
    assert.throws(() => addon.attachUprobeMulti(obj, 'cw_cuda_entry', CUDART, [off], [1], false, 0), /BPF_LINK_CREATE\(uprobe_multi, cuda\.bpf\.o:cw_cuda_entry, .*libcudart\.so\.13.*Invalid argument/);
    assert.throws(() => addon.attachUprobe(obj, 'cw_cuda_entry', '/nonexistent/lib.so', 0x1000, 1, false, 0), /bpf_program__attach_uprobe_opts\(cuda\.bpf\.o:cw_cuda_entry, \/nonexistent\/lib\.so.*No such file/);
    assert.throws(() => addon.ringOpen(obj, 'cw_drops'), /not a BPF_MAP_TYPE_RINGBUF/);
    assert.throws(() => addon.drain(addon.ringOpen(obj, 'rb_calls'), Buffer.alloc(64)), /cannot hold one record/);
    assert.throws(() => addon.programs(9999), /invalid or closed object handle/);
  } finally {
    addon.closeObject(obj);
  }
  assert.match(addon.libbpfVersion(), /^\d+\.\d+/);
  assert.equal(readFileSync(addonPath()).subarray(0, 4).toString('latin1'), '\x7fELF');
});

test('a signal storm while the verifier runs does not fail the load (signals are held off the loading thread)', { skip }, async () => {
  // the verifier gives up with EAGAIN when a signal is pending for the loading thread; a process-directed
  // signal picks the main thread first, which is the loader here
  let got = 0;
  const onSig = () => void got++;
  process.on('SIGUSR2', onSig);
  const storm = spawn('sh', ['-c', `while kill -USR2 ${process.pid}; do :; done`], { stdio: 'ignore' });
  try {
    await new Promise((r) => setTimeout(r, 200)); // the storm is on
    for (let i = 0; i < 5; i++) addon.closeObject(openRt());
    await new Promise((r) => setTimeout(r, 50)); // the held signals are delivered once unblocked
    assert.ok(got > 0, 'no signal arrived: the storm did not run');
  } finally {
    storm.kill('SIGKILL');
    await new Promise((r) => storm.once('exit', r));
    process.off('SIGUSR2', onSig);
  }
});
