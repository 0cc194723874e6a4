// Locks in that the host probes (host.bpf.o, io.bpf.o via loadHost) report ground truth measured by the fixture programs: preemption by a named hog, wakers, block I/O latency, fork/exec/exit, page windows, and nothing for untraced processes.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { loadAddon, drainedRecords, type Addon, type ObjHandle, type RingHandle } from '../../src/probe/addon.js';
import { HOST_PROGRAMS, loadHost, type HostProbes } from '../../src/probe/host.js';
import { bpfObjectPath } from '../../src/probe/paths.js';
import { BIN, startFixture, startFixtureAt, field } from './host-fixture.js';
import { markTraced } from '../../src/probe/traced.js';
import { LOSS_REASONS } from '../../src/common/wire.js';
import { tempDir } from '../helpers/temp-dir.js';

const isRoot = process.getuid?.() === 0;
const skip = isRoot ? false : 'needs root (CAP_BPF, CAP_PERFMON) to load BPF programs';

// bpf/events.h values used here
const OP = { OFF_CPU: 128, EXEC: 129, EXIT: 130, FORK: 131, OOM: 132, PAGE_ALLOC: 133, BLOCK_IO: 134, READ_IO: 138 } as const;
const REASON = { PREEMPTED: 0, VOLUNTARY: 1, IO_WAIT: 2 } as const;
const TRACE_ON = 1;
const TRACE_CHILDREN = 2;
const F_SIGNALED = 1 << 3;
const F_FLUSHED = 1 << 4;
const EXECF_PATH_TRUNCATED = 1 << 8;
const EXECF_ARGS_TRUNCATED = 1 << 9;
const EXEC_DATA = 48; // offsetof(struct cw_exec, data)
const EXEC_PATH_LEN = 1024;
const EXEC_ARGS_LEN = 4096;

// ---- record decoding per bpf/events.h (test-local; the shared decoder lives in src/capture) ----
interface Rec {
  ts: bigint; tgid: number; tid: number; op: number; source: number; version: number; flags: number; len: number;
  dur?: bigint; reason?: number; cpu?: number; byTgid?: number; byTid?: number; wakerTgid?: number; wakerTid?: number;
  byComm?: string; wakerComm?: string;
  ppid?: number; childTgid?: number; exitCode?: number; isThread?: number; comm?: string; filename?: string;
  pathLen?: number; argsLen?: number; args?: string[];
  windowNs?: bigint; pages?: bigint;
  sector?: bigint; bytes?: number; dev?: number; rwbs?: string;
  ret?: bigint; nr?: number; fd?: number;
}

function cstr(b: Buffer, off: number, len: number): string {
  const s = b.subarray(off, off + len);
  const z = s.indexOf(0);
  return s.subarray(0, z < 0 ? len : z).toString('latin1');
}

function decode(buf: Buffer, off: number, len: number): Rec {
  const b = buf.subarray(off, off + len);
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const r: Rec = {
    ts: v.getBigUint64(0, true), tgid: v.getUint32(8, true), tid: v.getUint32(12, true),
    op: v.getUint16(16, true), source: v.getUint8(18), version: v.getUint8(19), flags: v.getUint32(20, true), len,
  };
  switch (r.op) {
    case OP.OFF_CPU: // struct cw_offcpu, 88 bytes
      Object.assign(r, {
        dur: v.getBigUint64(24, true), reason: v.getUint32(32, true), cpu: v.getUint32(36, true),
        byTgid: v.getUint32(40, true), byTid: v.getUint32(44, true), wakerTgid: v.getUint32(48, true), wakerTid: v.getUint32(52, true),
        byComm: cstr(b, 56, 16), wakerComm: cstr(b, 72, 16),
      });
      break;
    case OP.EXEC: { // struct cw_exec, variable length: 48 + path_len + args_len bytes
      const pathLen = v.getUint16(28, true);
      const argsLen = v.getUint16(30, true);
      const args = b.subarray(EXEC_DATA + pathLen, EXEC_DATA + pathLen + argsLen).toString('latin1').split('\0');
      if (args.at(-1) === '') args.pop();
      Object.assign(r, { ppid: v.getUint32(24, true), pathLen, argsLen, comm: cstr(b, 32, 16), filename: cstr(b, EXEC_DATA, pathLen), args });
      break;
    }
    case OP.EXIT: case OP.FORK: case OP.OOM: // struct cw_proc, 56 bytes
      Object.assign(r, {
        ppid: v.getUint32(24, true), childTgid: v.getUint32(28, true), exitCode: v.getInt32(32, true), isThread: v.getUint32(36, true),
        comm: cstr(b, 40, 16),
      });
      break;
    case OP.PAGE_ALLOC: // struct cw_mem, 40 bytes
      Object.assign(r, { windowNs: v.getBigUint64(24, true), pages: v.getBigUint64(32, true) });
      break;
    case OP.BLOCK_IO: // struct cw_io, 56 bytes
      Object.assign(r, { dur: v.getBigUint64(24, true), sector: v.getBigUint64(32, true), bytes: v.getUint32(40, true), dev: v.getUint32(44, true), rwbs: cstr(b, 48, 8) });
      break;
    case OP.READ_IO: // struct cw_read_io, 48 bytes
      Object.assign(r, { dur: v.getBigUint64(24, true), ret: v.getBigInt64(32, true), nr: v.getUint32(40, true), fd: v.getInt32(44, true) });
      break;
  }
  return r;
}

const SIZE: Record<number, number> = { [OP.OFF_CPU]: 88, [OP.EXIT]: 56, [OP.FORK]: 56, [OP.OOM]: 56, [OP.PAGE_ALLOC]: 40, [OP.BLOCK_IO]: 56, 136: 40, [OP.READ_IO]: 48 };

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** wait until the process is asleep (state S in /proc/PID/stat), at most `ms` */
async function asleep(pid: number, ms = 2000): Promise<boolean> {
  for (const t0 = Date.now(); Date.now() - t0 < ms; await sleep(5)) {
    const st = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    if (st.slice(st.lastIndexOf(')') + 2, st.lastIndexOf(')') + 3) === 'S') return true;
  }
  return false;
}

// ---- one set of probes for the file ----
let addon: Addon;
let owner: ObjHandle;
let probes: HostProbes;
let rings: RingHandle[] = [];
let timer: NodeJS.Timeout | undefined;
const records: Rec[] = [];
const out = Buffer.alloc(1 << 20);
let detachMs = 0;

function drainAll(): void {
  for (const ring of rings) {
    for (;;) {
      const n = addon.drain(ring, out);
      if (n === 0) break;
      for (const { offset, length } of drainedRecords(out, n)) records.push(decode(out, offset, length));
    }
  }
}

function trace(pid: number, flags = TRACE_ON): void {
  markTraced(addon, owner, pid, flags); // bumps cw_traced_gen: the host programs' untraced memo must see the insertion
}

function tracedFlags(pid: number): number | null {
  const k = Buffer.alloc(4);
  k.writeUInt32LE(pid);
  const v = addon.mapLookup(owner, 'cw_traced', k);
  return v ? v.readUInt32LE(0) : null;
}

/** cw_traced_gen: [bumped by BPF, bumped by user space] (the host programs' untraced memo is tagged with their sum) */
function tracedGen(): [number, number] {
  const g = (i: number) => addon.mapLookup(owner, 'cw_traced_gen', Buffer.from(Uint32Array.of(i).buffer))!.readUInt32LE(0);
  return [g(0), g(1)];
}

const of = (pid: number) => records.filter((r) => r.tgid === pid);

before(() => {
  if (skip) return;
  addon = loadAddon();
  // The map owner: an unattached host.bpf.o stands in for the CUDA object that owns the maps in a trace.
  owner = addon.openObject(bpfObjectPath('host.bpf.o'), { rodata: { cw_self_tgid: process.pid } });
  probes = loadHost(addon, { shareFrom: owner, selfTgid: process.pid });
  rings = [addon.ringOpen(owner, 'rb_host'), addon.ringOpen(owner, 'rb_life')];
  timer = setInterval(drainAll, 50);
});

after(() => {
  if (skip) return;
  clearInterval(timer);
  detachMs = probes.close();
  assert.equal(probes.close(), 0, 'second close is a no-op');
  const drops = addon.readPercpuCounters(owner, 'cw_drops');
  addon.closeObject(owner);
  console.log(`# host probes: load ${probes.loadMs.toFixed(1)} ms, attach ${probes.attachMs.toFixed(2)} ms, detach ${detachMs.toFixed(2)} ms (${probes.status.length} programs); drops ${drops.join(',')}`);
});

test('every host program attaches, records carry version 1 and their documented sizes', { skip }, async () => {
  assert.deepEqual(probes.failed.map((f) => `${f.program}: ${f.error}`), []);
  assert.equal(probes.status.length, HOST_PROGRAMS.length);
  assert.equal(HOST_PROGRAMS.length, 24, 'scheduler 3, interrupt context 6, lifecycle 3, OOM, pages, reclaim 4, block I/O 4, read syscalls 2');
  const lc = startFixture('lifecycle', ['sleep']);
  const pid = field(await lc.line(), 'pid');
  trace(pid);
  lc.proc.kill('SIGKILL');
  await lc.exited;
  await sleep(100);
  drainAll();
  assert.ok(records.length > 0);
  for (const r of records) {
    assert.equal(r.version, 1);
    if (r.op === OP.EXEC) assert.equal(r.len, EXEC_DATA + r.pathLen! + r.argsLen!, 'exec record: its used length');
    else assert.equal(r.len, SIZE[r.op], `op ${r.op} record size`);
  }
});

test('nothing traced: no host records, switches counted in the kernel only', { skip }, async () => {
  drainAll();
  const before = records.length;
  const s0 = probes.stats();
  const t0 = process.hrtime.bigint();
  await sleep(1000);
  drainAll();
  const secs = Number(process.hrtime.bigint() - t0) / 1e9;
  const s1 = probes.stats();
  const switches = Number(s1.switches - s0.switches) / secs;
  console.log(`# idle: ${((records.length - before) / secs).toFixed(1)} records/s, ${switches.toFixed(0)} switches/s aggregated, self ${(Number(s1.switchesSelf - s0.switchesSelf) / secs).toFixed(0)}/s`);
  assert.equal(records.length - before, 0, 'no records without a traced pid');
  assert.ok(s1.switches > s0.switches, 'switches are counted');
  assert.equal(s1.switchesUntraced - s0.switchesUntraced, s1.switches - s0.switches);
});

test('preempted victim: intervals marked preempted, name the hog, sum within 20% of measured loss; tid mapped to tgid', { skip }, async () => {
  // SCHED_RR, same priority, one CPU: they preempt each other every 100 ms quantum and background
  // load on this shared machine cannot get between them (see maybe_rr in test/fixtures/host/common.h).
  const rr = { CW_FIXTURE_RR: '1' };
  const hog = startFixture('cpu_hog', ['10'], rr);
  const hogPid = field(await hog.line(), 'pid');
  const victim = startFixture('victim', ['2'], rr);
  const ready = await victim.line();
  const pid = field(ready, 'pid');
  const tid = field(ready, 'tid');
  assert.notEqual(tid, pid, 'worker thread is not the group leader');
  trace(pid);
  const s0 = probes.stats();
  const t0 = process.hrtime.bigint();
  victim.go();
  const res = JSON.parse(await victim.line()) as { start_ns: number; end_ns: number; lost_ns: number; wall_ns: number };
  await victim.exited;
  hog.proc.kill('SIGKILL');
  await hog.exited;
  await sleep(100);
  drainAll();
  const secs = Number(process.hrtime.bigint() - t0) / 1e9;
  const s1 = probes.stats();

  const start = BigInt(res.start_ns), end = BigInt(res.end_ns);
  const iv = of(pid).filter((r) => r.op === OP.OFF_CPU && r.tid === tid && r.ts < end && r.ts + r.dur! > start);
  assert.ok(res.lost_ns > 0.2 * res.wall_ns, `the hog took CPU time (lost ${res.lost_ns} of ${res.wall_ns})`);
  assert.ok(iv.length >= 4, `off-CPU intervals seen: ${iv.length}`);
  let sum = 0n, byHog = 0n;
  const by = new Map<string, bigint>();
  for (const r of iv) {
    by.set(r.byComm!, (by.get(r.byComm!) ?? 0n) + r.dur!);
    const a = r.ts > start ? r.ts : start;
    const b = r.ts + r.dur! < end ? r.ts + r.dur! : end;
    sum += b - a;
    assert.equal(r.tgid, pid, 'tgid from the task, not the tid');
    assert.equal(r.reason, REASON.PREEMPTED, 'a CPU-bound thread is only ever preempted');
    if (r.byTgid === hogPid) {
      byHog += r.dur!;
      assert.equal(r.byComm, 'cpu_hog');
    }
  }
  const err = Math.abs(Number(sum) - res.lost_ns) / res.lost_ns;
  console.log(`# victim: measured loss ${(res.lost_ns / 1e6).toFixed(1)} ms, traced ${(Number(sum) / 1e6).toFixed(1)} ms (${(err * 100).toFixed(1)}% off), ${iv.length} intervals, ${(Number(byHog) / 1e6).toFixed(1)} ms by cpu_hog; ${(records.length / secs).toFixed(0)} host records/s over the run, ${(Number(s1.switches - s0.switches) / secs).toFixed(0)} switches/s`);
  assert.ok(err <= 0.2, `traced off-CPU ${sum} ns vs measured ${res.lost_ns} ns`);
  const top = [...by].sort((a, b) => Number(b[1] - a[1])).slice(0, 4).map(([c, d]) => `${c} ${(Number(d) / 1e6).toFixed(0)} ms`);
  assert.ok(byHog * 2n >= sum, `cpu_hog took most of the lost time (top preempters: ${top.join(', ')})`);
  assert.equal(of(hogPid).length, 0, 'the untraced hog produced no records');
});

test('voluntary waits name the waker', { skip }, async () => {
  const rounds = 10;
  const f = startFixture('futex_pair', [String(rounds), '20']);
  const ready = await f.line();
  const waker = field(ready, 'waker');
  const waiter = field(ready, 'waiter');
  trace(waiter);
  f.go();
  await f.line();
  await f.exited;
  await sleep(100);
  drainAll();
  const iv = of(waiter).filter((r) => r.op === OP.OFF_CPU && r.dur! >= 10_000_000n);
  // the first wait began before the waiter was traced, so rounds - 1 complete intervals at least
  assert.ok(iv.length >= rounds - 1, `long waits seen: ${iv.length}`);
  for (const r of iv) {
    assert.equal(r.reason, REASON.VOLUNTARY);
    assert.equal(r.wakerTgid, waker);
    assert.equal(r.wakerTid, waker);
    assert.equal(r.wakerComm, 'cw_waker');
    assert.ok(r.dur! < 200_000_000n, `a 20 ms gap, not ${r.dur}`);
  }
  assert.equal(of(waker).length, 0, 'the untraced waker has no records of its own');
});

/** Run dio_reader (4 MiB of O_DIRECT reads) traced to its end: its own figures and the block reads charged to it. */
async function tracedDirectRead(): Promise<{ pid: number; res: { reads: number; bytes: number; read_ns: number }; reads: Rec[]; bytes: number }> {
  const f = startFixture('dio_reader', [path.join(BIN, `dio-${process.pid}.bin`), '4']);
  const pid = field(await f.line(), 'pid');
  trace(pid);
  f.go();
  const res = JSON.parse(await f.line()) as { reads: number; bytes: number; read_ns: number };
  assert.equal(await f.exited, 0);
  await sleep(100);
  drainAll();
  const reads = of(pid).filter((r) => r.op === OP.BLOCK_IO && r.rwbs!.startsWith('R'));
  return { pid, res, reads, bytes: reads.reduce((s, r) => s + r.bytes!, 0) };
}

test('direct reads: block I/O latency attributed to the reader', { skip }, async () => {
  const { pid, res, reads, bytes } = await tracedDirectRead();
  const dur = reads.reduce((s, r) => s + Number(r.dur!), 0);
  console.log(`# dio: ${res.reads} reads in ${(res.read_ns / 1e6).toFixed(2)} ms, ${reads.length} block requests, device time ${(dur / 1e6).toFixed(2)} ms`);
  assert.equal(bytes, res.bytes, 'every byte read came from a traced block request');
  assert.ok(reads.length >= res.reads);
  assert.ok(dur <= res.read_ns * 1.05, 'device time fits inside the read syscalls');
  assert.ok(dur >= res.read_ns * 0.1, 'device time is a real share of the read time (scheduling delay on a busy machine makes up the rest)');
  for (const r of reads) {
    assert.equal(r.tid, pid);
    assert.notEqual(r.dev, 0);
  }
  assert.ok(of(pid).some((r) => r.op === OP.OFF_CPU && r.reason === REASON.IO_WAIT), 'the reader waited uninterruptibly');
});

test('direct reads: each read syscall that issued block I/O is one record spanning its requests; reads that issued none are not', { skip }, async () => {
  // dio_reader's reads: its wait for the go byte (a pipe) and the last read (EOF) issue no block I/O
  const { pid, res, reads } = await tracedDirectRead();
  const sys = of(pid).filter((r) => r.op === OP.READ_IO);
  const sum = sys.reduce((s, r) => s + Number(r.dur!), 0);
  console.log(`# dio: ${res.reads} reads in ${(res.read_ns / 1e6).toFixed(2)} ms; ${sys.length} read_io records, ${(sum / 1e6).toFixed(2)} ms`);
  assert.equal(sys.length, res.reads, 'one record per read that went to the device, none for the pipe read or EOF');
  for (const r of sys) {
    assert.equal(r.tid, pid);
    assert.equal(r.ret, 65536n, 'bytes read');
    assert.equal(r.nr, 0, 'read(2) on x86_64');
    assert.equal(r.fd, sys[0]!.fd);
    assert.ok(r.fd! > 2);
  }
  assert.ok(sum <= res.read_ns, 'the syscalls fit inside the reader\'s own timing of them');
  assert.ok(sum >= res.read_ns * 0.5, 'and are most of it');
  for (const q of reads) {
    const inside = sys.some((r) => r.ts <= q.ts && q.ts + q.dur! <= r.ts + r.dur!);
    assert.ok(inside, `block request at ${q.ts} lies inside a read syscall`);
  }
});

test('direct reads beside untraced direct readers: only the traced reader\'s requests are charged to it', { skip }, async () => {
  // Four untraced `dd` loops keep the device queue busy: a direct issue the device refuses goes to
  // the dispatch list and a kworker issues it later, and a queue run in the traced reader's context
  // dispatches the bystanders' requests. Neither may move bytes into or out of the reader's account.
  // (Before block_io_start was traced this failed about 1 run in 3 here, both ways.)
  const busy = path.join(BIN, `dio-busy-${process.pid}.bin`);
  const fd = fs.openSync(busy, 'w');
  const mib = Buffer.alloc(1 << 20, 7);
  // large enough that the host side does not serve it from its cache: the device must be slow to be busy
  for (let i = 0; i < 512; i++) fs.writeSync(fd, mib);
  fs.fsyncSync(fd);
  fs.closeSync(fd);
  const loops = [0, 1, 2, 3].map(() =>
    spawn('sh', ['-c', `while :; do dd if=${busy} of=/dev/null iflag=direct bs=128k status=none || exit 1; done`], { stdio: 'ignore', detached: true }),
  );
  try {
    await sleep(200);
    for (const l of loops) assert.equal(l.exitCode, null, 'the dd loops run (dd with iflag=direct)');
    const { pid, res, reads, bytes } = await tracedDirectRead();
    console.log(`# dio beside 4 dd loops: ${res.reads} reads in ${(res.read_ns / 1e6).toFixed(2)} ms, ${reads.length} block requests, ${bytes} bytes charged (read ${res.bytes})`);
    assert.equal(bytes, res.bytes, 'exactly the bytes the traced reader read');
    for (const r of reads) assert.equal(r.tid, pid);
    for (const l of loops) assert.equal(of(l.pid!).length, 0, 'untraced readers have no records');
  } finally {
    for (const l of loops) {
      try {
        process.kill(-l.pid!, 'SIGKILL');
      } catch {
        /* already gone */
      }
    }
    fs.rmSync(busy, { force: true });
  }
});

test('fork with CW_TRACE_CHILDREN adds the child; exec and exit records carry pids and exit codes', { skip }, async () => {
  const f = startFixture('lifecycle', []);
  const pid = field(await f.line(), 'pid');
  const gen0 = tracedGen();
  trace(pid, TRACE_ON | TRACE_CHILDREN);
  assert.deepEqual(tracedGen(), [gen0[0], gen0[1] + 1], 'an insertion from user space bumps its generation (element 1)');
  f.go();
  const child = field(await f.line(), 'pid');
  assert.equal(tracedFlags(child), TRACE_ON | TRACE_CHILDREN, 'child inherited the filter entry');
  assert.ok(tracedGen()[0] > gen0[0], 'the fork tracepoint bumps the generation (element 0) after adding the child');
  assert.match(await f.line(), /status=7/);
  assert.equal(await f.exited, 3);
  await sleep(100);
  drainAll();
  const forks = of(pid).filter((r) => r.op === OP.FORK);
  assert.equal(forks.filter((r) => r.isThread === 1).length, 1, 'one thread created');
  const pf = forks.filter((r) => r.isThread === 0);
  assert.equal(pf.length, 1);
  assert.equal(pf[0].childTgid, child);
  assert.equal(pf[0].ppid, pid);
  const exec = of(child).filter((r) => r.op === OP.EXEC);
  assert.equal(exec.length, 1);
  assert.equal(exec[0].filename, path.join(BIN, 'lifecycle'));
  assert.deepEqual(exec[0].args, ['lifecycle', 'child', '7'], "the new image's argv (argv[0] as execl set it), not the parent's");
  assert.equal(exec[0].flags & (EXECF_PATH_TRUNCATED | EXECF_ARGS_TRUNCATED), 0);
  assert.equal(exec[0].ppid, pid);
  const cexit = of(child).filter((r) => r.op === OP.EXIT);
  assert.equal(cexit.length, 1);
  assert.equal(cexit[0].exitCode, 7);
  assert.equal(cexit[0].flags & F_SIGNALED, 0);
  const pexit = of(pid).filter((r) => r.op === OP.EXIT);
  assert.equal(pexit.length, 1, 'one exit record per process, not per thread');
  assert.equal(pexit[0].exitCode, 3);
  assert.equal(tracedFlags(pid), null, 'exit removes the process from cw_traced');
  assert.equal(tracedFlags(child), null);
});

/** Copy the lifecycle fixture to DIR/lifecycle (a copy: /proc/self/exe of a symlink would be the target). */
function lifecycleUnder(dir: string): string {
  fs.mkdirSync(dir, { recursive: true });
  const exe = path.join(dir, 'lifecycle');
  fs.copyFileSync(path.join(BIN, 'lifecycle'), exe);
  fs.chmodSync(exe, 0o755);
  return exe;
}

/** Run a copy of lifecycle at `exe` with its children traced; the child's exec record. */
async function childExec(exe: string, extra?: string): Promise<Rec> {
  const f = startFixtureAt(exe, extra === undefined ? [] : [extra]);
  const pid = field(await f.line(), 'pid');
  trace(pid, TRACE_ON | TRACE_CHILDREN);
  f.go();
  const child = field(await f.line(), 'pid');
  await f.line();
  assert.equal(await f.exited, 3);
  await sleep(100);
  drainAll();
  const exec = of(child).filter((r) => r.op === OP.EXEC);
  assert.equal(exec.length, 1);
  return exec[0]!;
}

test('exec records carry the whole path (here 160+ characters), unflagged', { skip }, async () => {
  const tmp = tempDir('cw-exec-');
  try {
    const exe = lifecycleUnder(path.join(tmp, 'a'.repeat(60), 'b'.repeat(60), 'c'.repeat(20)));
    assert.ok(exe.length > 160, exe);
    const e = await childExec(exe);
    assert.equal(e.filename, exe);
    assert.equal(e.pathLen, Buffer.byteLength(exe) + 1, 'path_len counts the NUL');
    assert.equal(e.flags & EXECF_PATH_TRUNCATED, 0);
    assert.deepEqual(e.args, ['lifecycle', 'child', '7']);
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
});

test('exec records cut a path past CW_EXEC_PATH_LEN and argv past CW_EXEC_ARGS_LEN, and flag each cut', { skip }, async () => {
  const tmp = tempDir('cw-exec-');
  try {
    const exe = lifecycleUnder(path.join(tmp, ...Array.from({ length: 5 }, (_, k) => String(k).repeat(250))));
    assert.ok(exe.length > EXEC_PATH_LEN, `${exe.length} characters`);
    const extra = 'x'.repeat(5000);
    const e = await childExec(exe, extra);
    assert.equal(e.pathLen, EXEC_PATH_LEN);
    assert.equal(e.filename, exe.slice(0, EXEC_PATH_LEN - 1), 'the first CW_EXEC_PATH_LEN - 1 bytes and a NUL');
    assert.notEqual(e.flags & EXECF_PATH_TRUNCATED, 0, 'path cut: flagged');
    assert.equal(e.argsLen, EXEC_ARGS_LEN);
    assert.notEqual(e.flags & EXECF_ARGS_TRUNCATED, 0, 'argv cut: flagged');
    const head = 'lifecycle child 7 '.length; // the three arguments and their NULs
    assert.deepEqual(e.args, ['lifecycle', 'child', '7', 'x'.repeat(EXEC_ARGS_LEN - head)]);
    // exactly at the cap: a path of CW_EXEC_PATH_LEN - 1 bytes is whole, not flagged
    const exact = lifecycleUnder(dirOfLength(path.join(tmp, 'e'), EXEC_PATH_LEN - 1 - '/lifecycle'.length));
    assert.equal(exact.length, EXEC_PATH_LEN - 1);
    const x = await childExec(exact);
    assert.equal(x.filename, exact);
    assert.equal(x.flags & (EXECF_PATH_TRUNCATED | EXECF_ARGS_TRUNCATED), 0, 'a path that fits exactly is not flagged');
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
});

/** base/yyy.../yyy..., exactly `len` characters long (components of at most 200). */
function dirOfLength(base: string, len: number): string {
  let dir = base;
  for (let left = len - base.length; left > 0; ) {
    const n = left - 1 <= 200 ? left - 1 : left - 201 >= 2 ? 200 : 150; // never leave a remainder of 1 (an empty component)
    dir = path.join(dir, 'y'.repeat(n));
    left -= n + 1;
  }
  assert.equal(dir.length, len);
  return dir;
}

test('fork without CW_TRACE_CHILDREN leaves the child untraced', { skip }, async () => {
  const f = startFixture('lifecycle', []);
  const pid = field(await f.line(), 'pid');
  trace(pid, TRACE_ON);
  f.go();
  const child = field(await f.line(), 'pid');
  assert.equal(tracedFlags(child), null);
  await f.exited;
  await sleep(100);
  drainAll();
  assert.equal(of(pid).filter((r) => r.op === OP.FORK && r.childTgid === child).length, 1, 'the fork itself is reported');
  assert.equal(of(child).length, 0, 'the untraced child produced no records');
});

test('a process killed by a signal: exit record flags the signal', { skip }, async () => {
  const f = startFixture('lifecycle', ['sleep']);
  const pid = field(await f.line(), 'pid');
  trace(pid);
  f.proc.kill('SIGKILL');
  await f.exited;
  await sleep(100);
  drainAll();
  const ex = of(pid).filter((r) => r.op === OP.EXIT);
  assert.equal(ex.length, 1);
  assert.equal(ex[0].exitCode, 9);
  assert.equal(ex[0].flags & F_SIGNALED, F_SIGNALED);
});

// The kernel on this project's VMs sometimes fires no sched_switch for a switch (ftrace's own stream shows the same
// gap): a thread then switches out twice with no switch-in between, or in twice. Each is counted (offcpu_unpaired)
// instead of an interval silently overwritten or never opened. A closed entry left for a sleeping thread is what a
// missed switch-out looks like; the switch-in that wakes it must count one.
test('a switch-in with no switch-out seen is counted as offcpu_unpaired, not lost in silence', { skip }, async () => {
  const UNPAIRED = LOSS_REASONS.indexOf('offcpu_unpaired');
  assert.ok(UNPAIRED > 0);
  const f = startFixture('lifecycle', ['sleep']);
  const pid = field(await f.line(), 'pid');
  // asleep in pause() before it is traced (it prints its line just before: on a busy machine it may not be there yet),
  // so its switch-out came before the trace and it has no entry
  assert.ok(await asleep(pid), 'the fixture went to sleep in pause()');
  trace(pid);
  await sleep(50);
  const key = Buffer.from(Uint32Array.of(pid).buffer);
  assert.equal(addon.mapLookup(probes.host, 'cw_offcpu_start', key), null, 'no interval opened for it');
  // struct offcpu_start (bpf/host.bpf.c), all zero: closed, as after a switch-in
  addon.mapUpdate(probes.host, 'cw_offcpu_start', key, Buffer.alloc(72));
  const before = addon.readPercpuCounters(owner, 'cw_drops')[UNPAIRED];
  f.proc.kill('SIGKILL'); // woken to die: its switch-in finds the closed entry
  await f.exited;
  await sleep(50);
  drainAll();
  const after = addon.readPercpuCounters(owner, 'cw_drops')[UNPAIRED];
  assert.equal(Number(after - before), 1, 'one unpaired switch counted');
  assert.equal(of(pid).filter((r) => r.op === OP.OFF_CPU).length, 0, 'and no interval made up for it');
  assert.equal(addon.mapLookup(probes.host, 'cw_offcpu_start', key), null, 'its entry goes with the thread');
});

test('page allocations: windows emitted per tgid, remainder flushed from cw_page_win', { skip }, async () => {
  const f = startFixture('alloc_touch', ['16']);
  const pid = field(await f.line(), 'pid');
  trace(pid);
  f.go();
  const res = JSON.parse(await f.line()) as { pages: number };
  await sleep(50);
  drainAll();
  const flushed = probes.flushPageAggregates().filter((w) => w.tgid === pid);
  const windows = of(pid).filter((r) => r.op === OP.PAGE_ALLOC);
  f.go();
  await f.exited;
  assert.ok(windows.length >= 1, 'the 250 ms pause closed at least one 100 ms window');
  for (const w of windows) {
    assert.equal(w.windowNs, 100_000_000n);
    assert.equal(w.flags & F_FLUSHED, 0);
  }
  assert.equal(flushed.length, 1, 'the last window was still open');
  const total = windows.reduce((s, r) => s + r.pages!, 0n) + flushed[0].pages;
  assert.ok(total >= BigInt(res.pages), `pages ${total} >= touched ${res.pages}`);
  assert.ok(total <= BigInt(Math.ceil(res.pages * 1.25)) + 2048n, `pages ${total} close to touched ${res.pages}`);
});
