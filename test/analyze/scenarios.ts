// Incident databases built event by event, shaped exactly as the probes write them, with the injected delay known exactly.
import fs from 'node:fs';
import path from 'node:path';
import { openWritable, type Db } from '../../src/store/db.js';
import { OP_BY_NAME } from '../../src/common/ops.js';
import { tempDir } from '../helpers/temp-dir.js';

export const US = 1_000;
export const MS = 1_000_000;
const REASON = { preempted: 0, voluntary: 1, io_wait: 2 } as const;
const DIR = { HostToDevice: 1, DeviceToHost: 2, DeviceToDevice: 3 } as const;

export function tmpDb(name: string): string {
  const dir = tempDir('cw-analyze-');
  return path.join(dir, `${name}.db`);
}

/** Writes one session; events per ops.ts argument slots (off_cpu: a0 reason, a1 by_pid, a2 waker_pid, a3 cpu). */
export class TraceBuilder {
  readonly db: Db;
  readonly sessionId: number;
  private ins;
  constructor(readonly file: string, command = 'workload') {
    this.db = openWritable(file);
    this.sessionId = Number(
      this.db.prepare("INSERT INTO sessions (started_ns, wall_start_ns, status, command) VALUES (?, ?, 'complete', ?)").run(1_000_000_000, 1_700_000_000_000_000_000n, command).lastInsertRowid,
    );
    this.ins = this.db.prepare('INSERT INTO events (session_id, ts, dur, pid, tid, op, ret, a0, a1, a2, a3) VALUES (?, ?, ?, ?, ?, ?, 0, ?, ?, ?, ?)');
    this.db.exec('BEGIN');
  }
  process(pid: number, comm: string, traced = true): this {
    this.db.prepare('INSERT INTO processes (session_id, pid, comm, traced) VALUES (?, ?, ?, ?)').run(this.sessionId, pid, comm, traced ? 1 : 0);
    return this;
  }
  raw(ts: number, dur: number, pid: number, tid: number, op: number, a: (number | null)[] = []): number {
    return Number(this.ins.run(this.sessionId, Math.round(ts), Math.round(dur), pid, tid, op, a[0] ?? null, a[1] ?? null, a[2] ?? null, a[3] ?? null).lastInsertRowid);
  }
  /** A CUDA call; args by name, placed in the op's slots. */
  call(name: string, ts: number, dur: number, pid: number, tid: number, args: Record<string, number> = {}): number {
    const info = OP_BY_NAME.get(name)!;
    const a = info.args.map((n) => (n && n in args ? args[n] : null));
    return this.raw(ts, dur, pid, tid, info.code, a);
  }
  off(ts: number, dur: number, pid: number, tid: number, reason: keyof typeof REASON, byPid: number, wakerPid: number, cpu = 0): number {
    return this.raw(ts, dur, pid, tid, 128, [REASON[reason], byPid, wakerPid, cpu]);
  }
  io(ts: number, dur: number, pid: number, tid: number, bytes: number): number {
    return this.raw(ts, dur, pid, tid, 134, [bytes, 1000, 8 << 20, 0]);
  }
  /** a read syscall that issued block I/O (op 138): entry to return, `bytes` read */
  readIo(ts: number, dur: number, pid: number, tid: number, bytes: number, fd = 3): number {
    const id = this.raw(ts, dur, pid, tid, 138, [fd, 17]);
    this.db.prepare('UPDATE events SET ret = ? WHERE id = ?').run(bytes, id);
    return id;
  }
  pageAlloc(ts: number, pid: number, pages: number, windowNs: number): number {
    return this.raw(ts, 0, pid, pid, 133, [pages, windowNs]);
  }
  oomKill(ts: number, pid: number, victim: number): number {
    return this.raw(ts, 0, pid, pid, 132, [victim]);
  }
  close(): string {
    this.db.exec('COMMIT');
    const n = this.db.prepare('SELECT count(*) FROM events WHERE session_id = ?').pluck().get(this.sessionId) as number;
    this.db.prepare('UPDATE sessions SET events_stored = ?, ended_ns = (SELECT max(ts + dur) FROM events WHERE session_id = ?) WHERE id = ?').run(n, this.sessionId, this.sessionId);
    this.db.close();
    return this.file;
  }
}

/**
 * One host thread driving the simulated device, like the fake CUDA library:
 * launches cost host time and push the stream's busy-until; syncs and
 * synchronous copies sleep (voluntary off-CPU, woken by the timer: pid 0)
 * until the queue is drained.
 */
export class GpuThread {
  t: number;
  busyUntil = 0;
  /** the CPU its preemptions (host()) are recorded on */
  cpu = 0;
  constructor(readonly b: TraceBuilder, readonly pid: number, readonly tid: number, start = 1 * MS) {
    this.t = start;
  }
  launch(gpuNs: number, hostNs = 6 * US, blocks = 128, func = 0x401000): number {
    const id = this.b.call('cudaLaunchKernel', this.t, hostNs, this.pid, this.tid, { func, grid_blocks: blocks, block_threads: 256, stream: 0 });
    this.t += hostNs;
    this.busyUntil = Math.max(this.busyUntil, this.t) + gpuNs;
    return id;
  }
  /** cudaGraphLaunch of an instantiated graph: one submission that enqueues all of the graph's kernels (gpuNs) */
  graphLaunch(exec: number, gpuNs: number, hostNs = 4 * US): number {
    const id = this.b.call('cudaGraphLaunch', this.t, hostNs, this.pid, this.tid, { graph_exec: exec, stream: 0 });
    this.t += hostNs;
    this.busyUntil = Math.max(this.busyUntil, this.t) + gpuNs;
    return id;
  }
  memcpyAsyncD2H(bytes: number, gpuNs: number, hostNs = 5 * US): number {
    const id = this.b.call('cudaMemcpyAsync', this.t, hostNs, this.pid, this.tid, { bytes, direction: DIR.DeviceToHost, stream: 0, dst: 0x7000 });
    this.t += hostNs;
    this.busyUntil = Math.max(this.busyUntil, this.t) + gpuNs;
    return id;
  }
  /** sleep inside a call until `until`: the voluntary off-CPU interval the sched probe records */
  private sleepTo(until: number, by = 0, waker = 0): void {
    const from = this.t + 1 * US;
    if (until > from) {
      this.b.off(from, until - from, this.pid, this.tid, 'voluntary', by, waker);
      this.t = until;
    } else this.t = from;
  }
  sync(op = 'cudaStreamSynchronize', opts: { by?: number; waker?: number; extraWait?: number } = {}): number {
    const start = this.t;
    this.sleepTo(Math.max(this.busyUntil, start) + (opts.extraWait ?? 0), opts.by ?? 0, opts.waker ?? 0);
    this.t += 2 * US;
    return this.b.call(op, start, this.t - start, this.pid, this.tid, op === 'cudaStreamSynchronize' ? { stream: 0 } : {});
  }
  /** cudaEventRecord of `event` on the default stream: remembers how far the queue reaches now */
  private events = new Map<number, number>();
  eventRecord(event: number, hostNs = 3 * US): number {
    const id = this.b.call('cudaEventRecord', this.t, hostNs, this.pid, this.tid, { event, stream: 0 });
    this.events.set(event, this.busyUntil);
    this.t += hostNs;
    return id;
  }
  /** cudaEventSynchronize: sleeps until the work queued before the event's record is done (later work stays queued) */
  eventSync(event: number): number {
    const start = this.t;
    this.sleepTo(Math.max(this.events.get(event) ?? 0, start));
    this.t += 2 * US;
    return this.b.call('cudaEventSynchronize', start, this.t - start, this.pid, this.tid, { event });
  }
  /** blocking cudaMemcpy DeviceToHost: waits for the queue, then copies */
  memcpyD2H(bytes: number, copyNs: number): number {
    const start = this.t;
    const done = Math.max(this.busyUntil, start) + copyNs;
    this.sleepTo(done);
    this.t += 2 * US;
    this.busyUntil = this.t;
    return this.b.call('cudaMemcpy', start, this.t - start, this.pid, this.tid, { bytes, direction: DIR.DeviceToHost, dst: 0x7000, src: 0x7f0000000000 });
  }
  /** host computation; `preemptions` are [offset into the work, duration, by_pid] */
  host(ns: number, preemptions: [number, number, number][] = []): number {
    let extra = 0;
    for (const [at, dur, by] of preemptions) {
      this.b.off(this.t + at + extra, dur, this.pid, this.tid, 'preempted', by, 0, this.cpu);
      extra += dur;
    }
    this.t += ns + extra;
    return extra;
  }
  alloc(op: string, dur: number, bytes: number, sleepNs = 0): number {
    const start = this.t;
    if (sleepNs > 0) this.b.off(start + 10 * US, sleepNs, this.pid, this.tid, 'voluntary', 0, 0);
    this.t += dur;
    return this.b.call(op, start, dur, this.pid, this.tid, op === 'cudaFree' ? { dev_ptr: 0x7f0000000000 } : { bytes, dev_ptr: 0x7f0000000000 });
  }
}

export interface Scenario {
  file: string;
  sessionId: number;
  kind: string;
  pid: number;
  op: string | null;
  injectedNs: number;
  /** a pid the summary must name (preemptor, waker, victim) */
  names?: number;
}

/** GPU-bound training loop: 200 steps of 10 x 400 µs kernels and one sync, light scheduling noise. */
export function healthy(file = tmpDb('healthy')): Scenario {
  const b = new TraceBuilder(file, 'train.py').process(100, 'python3').process(7, 'kworker/0:1', false).process(4242, 'stress', false);
  const g = new GpuThread(b, 100, 100);
  g.alloc('cudaMalloc', 180 * US, 1 << 30);
  g.alloc('cudaMalloc', 150 * US, 1 << 28);
  for (let s = 0; s < 200; s++) {
    g.host(60 * US, s % 20 === 0 ? [[10 * US, 15 * US, 7]] : []);
    for (let k = 0; k < 10; k++) g.launch(400 * US);
    // the sleeping sync: voluntary, and the task that ran next may well be a hog (by_pid 4242): still not preemption
    g.sync('cudaStreamSynchronize', { by: 4242 });
  }
  g.alloc('cudaFree', 40 * US, 0);
  return { file: b.close(), sessionId: b.sessionId, kind: 'none', pid: 100, op: null, injectedNs: 0 };
}

/** Host-bound loop on a CPU shared with a hog: 3 ms preempted by pid 4242 in each of 100 steps' host phase. */
export function cpuPreemption(file = tmpDb('preempt')): Scenario {
  const b = new TraceBuilder(file, 'infer').process(200, 'infer').process(4242, 'stress', false);
  const g = new GpuThread(b, 200, 201);
  let injected = 0;
  for (let s = 0; s < 100; s++) {
    injected += g.host(2 * MS, [[500 * US, 1 * MS, 4242], [1200 * US, 2 * MS, 4242]]);
    for (let k = 0; k < 5; k++) g.launch(200 * US);
    g.sync();
  }
  return { file: b.close(), sessionId: b.sessionId, kind: 'cpu_preemption', pid: 200, op: null, injectedNs: injected, names: 4242 };
}

/** Decode loop with a blocking D2H cudaMemcpy per step and 1.5 ms of host logprob work after it. */
export function blockingSync(file = tmpDb('blocking')): Scenario {
  const b = new TraceBuilder(file, 'decode --sync-logprobs').process(300, 'decode');
  const g = new GpuThread(b, 300, 300);
  let injected = 0;
  for (let s = 0; s < 200; s++) {
    const hostStart = g.t;
    for (let k = 0; k < 4; k++) g.launch(500 * US, 5 * US);
    const hostLaunch = g.t - hostStart;
    const before = g.t;
    g.memcpyD2H(4096, 20 * US);
    const gpu = g.t - before + hostLaunch; // GPU busy from the first launch to the copy's return (approximately)
    g.host(1500 * US);
    // an overlapped loop needs max(host, gpu) per step; the serialization is the smaller of the two
    injected += Math.min(1500 * US + hostLaunch, gpu);
  }
  return { file: b.close(), sessionId: b.sessionId, kind: 'blocking_sync', pid: 300, op: 'cudaMemcpy', injectedNs: injected };
}

/** cudaMalloc in the loop stalls 8 ms each (sleeping in the driver), 50 steps. */
export function allocatorStall(file = tmpDb('alloc')): Scenario {
  const b = new TraceBuilder(file, 'train').process(400, 'train');
  const g = new GpuThread(b, 400, 400);
  let injected = 0;
  for (let s = 0; s < 50; s++) {
    g.alloc('cudaMalloc', 8 * MS, 64 << 20, 7 * MS);
    injected += 8 * MS - 100 * US;
    for (let k = 0; k < 4; k++) g.launch(500 * US);
    g.sync();
    g.alloc('cudaFree', 20 * US, 0);
  }
  return { file: b.close(), sessionId: b.sessionId, kind: 'allocator_stall', pid: 400, op: 'cudaMalloc', injectedNs: injected };
}

/** The feeding thread reads each batch with O_DIRECT: 4 ms of I/O wait per step while the GPU idles. */
export function ioStarvation(file = tmpDb('io')): Scenario {
  const b = new TraceBuilder(file, 'loader').process(500, 'loader');
  const g = new GpuThread(b, 500, 500);
  let injected = 0;
  for (let s = 0; s < 100; s++) {
    b.io(g.t + 20 * US, 3900 * US, 500, 500, 1 << 20);
    b.off(g.t + 10 * US, 4 * MS, 500, 500, 'io_wait', 0, 0);
    injected += 4 * MS;
    g.t += 4 * MS + 30 * US;
    for (let k = 0; k < 4; k++) g.launch(500 * US);
    g.sync();
  }
  return { file: b.close(), sessionId: b.sessionId, kind: 'io_starvation', pid: 500, op: null, injectedNs: injected };
}

/**
 * Small O_DIRECT reads on the feeding thread with its queue empty (a 256 KiB read per step): each read is 60 us of
 * on-CPU setup (pinning pages, building the request), a 200 us request slept through in D state, then 40 us of
 * completion work. The GPU waits for the whole call; only its middle is off-CPU. `syscalls`: false leaves out the
 * read_io records (a trace from before they were captured).
 */
export function smallReads(syscalls = true, file = tmpDb(syscalls ? 'reads' : 'reads-nosys')): Scenario {
  const b = new TraceBuilder(file, 'reader').process(510, 'reader');
  const g = new GpuThread(b, 510, 510);
  let injected = 0;
  for (let s = 0; s < 100; s++) {
    const t0 = g.t + 5 * US;
    if (syscalls) b.readIo(t0, 300 * US, 510, 510, 256 << 10);
    b.io(t0 + 60 * US, 195 * US, 510, 510, 256 << 10);
    b.off(t0 + 60 * US, 200 * US, 510, 510, 'io_wait', 0, 0);
    injected += 300 * US;
    g.t = t0 + 300 * US + 5 * US;
    for (let k = 0; k < 4; k++) g.launch(500 * US);
    g.sync();
  }
  return { file: b.close(), sessionId: b.sessionId, kind: 'io_starvation', pid: 510, op: null, injectedNs: injected };
}

/** Two processes share one device lock: B's syncs wait 3 ms for A's unlock in each of 100 steps. */
export function crossProcess(file = tmpDb('contention')): Scenario {
  const b = new TraceBuilder(file, 'two jobs').process(600, 'jobA').process(700, 'jobB');
  const a = new GpuThread(b, 600, 600);
  const v = new GpuThread(b, 700, 700, 1 * MS + 100 * US);
  let injected = 0;
  for (let s = 0; s < 100; s++) {
    for (let k = 0; k < 2; k++) a.launch(500 * US);
    a.sync();
    a.host(200 * US);
    for (let k = 0; k < 2; k++) v.launch(500 * US);
    // the sync waits in flock() for A's unlock (woken by pid 600), then for its own 1 ms of GPU work (timer)
    const start = v.t;
    b.off(start + 1 * US, 3 * MS, 700, 700, 'voluntary', 0, 600);
    injected += 3 * MS;
    const own = start + 1 * US + 3 * MS + 5 * US;
    b.off(own, 1 * MS, 700, 700, 'voluntary', 0, 0);
    v.t = own + 1 * MS + 2 * US;
    v.busyUntil = v.t;
    b.call('cudaStreamSynchronize', start, v.t - start, 700, 700, { stream: 0 });
    v.host(200 * US);
  }
  return { file: b.close(), sessionId: b.sessionId, kind: 'cross_process_contention', pid: 700, op: 'cudaStreamSynchronize', injectedNs: injected, names: 600 };
}

/** 200 tiny kernels per step at 20 µs of host time each; the GPU drains before every sync. */
export function launchOverhead(file = tmpDb('launch')): Scenario {
  const b = new TraceBuilder(file, 'tiny kernels').process(800, 'bench');
  const g = new GpuThread(b, 800, 800);
  let injected = 0;
  for (let s = 0; s < 100; s++) {
    for (let k = 0; k < 200; k++) {
      g.launch(5 * US, 20 * US, 1);
      injected += 20 * US;
    }
    g.t += 50 * US;
    g.sync();
  }
  return { file: b.close(), sessionId: b.sessionId, kind: 'launch_overhead', pid: 800, op: 'cudaLaunchKernel', injectedNs: injected };
}

/** A memory hog allocates at 2 GiB/s; the GPU thread stalls 2 ms in reclaim (I/O wait, no block I/O of its own) per step. */
export function memoryPressure(file = tmpDb('mem')): Scenario {
  const b = new TraceBuilder(file, 'train').process(900, 'train').process(950, 'memhog', false);
  const g = new GpuThread(b, 900, 900);
  let injected = 0;
  for (let s = 0; s < 100; s++) {
    b.off(g.t + 10 * US, 2 * MS, 900, 900, 'io_wait', 0, 0);
    injected += 2 * MS;
    g.t += 2 * MS + 20 * US;
    for (let k = 0; k < 4; k++) g.launch(300 * US);
    g.sync();
  }
  for (let w = 0; w * 10 * MS < g.t + 10 * MS; w++) b.pageAlloc(w * 10 * MS, 950, 5243, 10 * MS); // ~2 GiB/s
  return { file: b.close(), sessionId: b.sessionId, kind: 'memory_pressure', pid: 900, op: null, injectedNs: injected, names: 950 };
}

/** The GPU process is OOM-killed at 100 ms; the trace runs on to 400 ms. */
export function oomKill(file = tmpDb('oom')): Scenario {
  const b = new TraceBuilder(file, 'train').process(1000, 'train').process(1100, 'other');
  const g = new GpuThread(b, 1000, 1000, 0);
  while (g.t < 100 * MS) {
    for (let k = 0; k < 4; k++) g.launch(500 * US);
    g.sync();
  }
  const killAt = g.t;
  b.oomKill(killAt, 1100, 1000);
  const o = new GpuThread(b, 1100, 1100, killAt);
  while (o.t < 400 * MS) {
    o.launch(1 * MS);
    o.sync();
  }
  return { file: b.close(), sessionId: b.sessionId, kind: 'oom_kill', pid: 1000, op: null, injectedNs: o.t - killAt };
}

/**
 * The seed incident: a decode loop. Baseline: per token, kernels + an async
 * 4-byte token copy + an event sync (1 ms of GPU per token). Regressed
 * (--sync-logprobs): per token, a blocking cudaMemcpy of the full logits
 * (12 ms from pageable memory) and 1 ms of host logprob work.
 */
export function decode(kind: 'baseline' | 'regressed', file = tmpDb(`decode-${kind}`), tokens = 100): Scenario {
  const b = new TraceBuilder(file, kind === 'baseline' ? 'decode' : 'decode --sync-logprobs').process(1200, 'decode');
  const g = new GpuThread(b, 1200, 1200);
  for (let k = 0; k < 2; k++) g.launch(100 * US); // prefill
  for (let s = 0; s < tokens; s++) {
    for (let k = 0; k < 4; k++) g.launch(250 * US, 5 * US);
    if (kind === 'baseline') {
      g.memcpyAsyncD2H(4, 5 * US);
      g.sync('cudaEventSynchronize');
      g.host(30 * US);
    } else {
      g.memcpyD2H(128 * 1024 * 4, 12 * MS);
      g.host(1 * MS);
    }
  }
  return { file: b.close(), sessionId: b.sessionId, kind: kind === 'baseline' ? 'none' : 'regression', pid: 1200, op: 'cudaMemcpy', injectedNs: 0 };
}

/**
 * Finding 1 of issue 11: a decode step launches 15 kernels, copies 512 KiB DeviceToHost with a blocking
 * cudaMemcpy mid-step (the queue drains), computes 3 ms on the host (softmax), launches 15 more and ends
 * with the usual cudaStreamSynchronize. Injected: the copy's own transfer + the host work it serialized.
 */
export function midStepCopy(file = tmpDb('midcopy'), steps = 200, hostNs = 3 * MS): Scenario {
  const b = new TraceBuilder(file, 'decode-midcopy').process(1300, 'decode');
  const g = new GpuThread(b, 1300, 1300);
  let injected = 0;
  const copyNs = 44 * US;
  for (let s = 0; s < steps; s++) {
    for (let k = 0; k < 15; k++) g.launch(100 * US);
    g.memcpyD2H(512 * 1024, copyNs);
    if (hostNs > 0) g.host(hostNs);
    injected += copyNs + hostNs;
    for (let k = 0; k < 15; k++) g.launch(100 * US);
    g.sync();
  }
  return { file: b.close(), sessionId: b.sessionId, kind: 'blocking_sync', pid: 1300, op: 'cudaMemcpy', injectedNs: injected };
}

/**
 * A wait on an event recorded mid-step, at the step's end: 15 launches, record, 15 more, cudaEventSynchronize (the
 * first half), `hostNs` of host work, an end-of-step sync that finds the queue empty. The second half (1.5 ms)
 * still runs when the wait returns; the rest of the host work leaves the GPU idle: injected = host work - second half.
 */
export function eventWaitAtEnd(file = tmpDb('eventend'), steps = 150, hostNs = 2500 * US): Scenario {
  const b = new TraceBuilder(file, 'decode-eventend').process(1400, 'decode');
  const g = new GpuThread(b, 1400, 1400);
  let injected = 0;
  for (let s = 0; s < steps; s++) {
    for (let k = 0; k < 15; k++) g.launch(100 * US);
    g.eventRecord(0x5e);
    for (let k = 0; k < 15; k++) g.launch(100 * US);
    g.eventSync(0x5e);
    const ranOut = g.busyUntil;
    g.host(hostNs);
    injected += Math.max(0, g.t - ranOut);
    g.sync();
  }
  return { file: b.close(), sessionId: b.sessionId, kind: 'blocking_sync', pid: 1400, op: 'cudaEventSynchronize', injectedNs: injected };
}

/**
 * Finding 2 of issue 11: 15 launches, 2 ms of host work, 15 launches, sync; in steps 50-150 a hog
 * (pid 4343) takes the CPU for 1.5 ms in the host phase. Injected: the slowdown of those steps against the
 * others (the host phase is longer than the GPU's first half, so the preemption delays the whole step).
 */
export function midRunHog(file = tmpDb('midhog'), preemptNs = 1500 * US, kernelNs = 100 * US): Scenario {
  const b = new TraceBuilder(file, 'decode-hog').process(1400, 'decode').process(4343, 'hog', false);
  const g = new GpuThread(b, 1400, 1400);
  const durs: number[] = [];
  for (let s = 0; s < 200; s++) {
    const t0 = g.t;
    for (let k = 0; k < 15; k++) g.launch(kernelNs);
    g.host(2 * MS, s >= 50 && s < 150 ? [[300 * US, preemptNs, 4343]] : []);
    for (let k = 0; k < 15; k++) g.launch(kernelNs);
    g.sync();
    durs.push(g.t - t0);
  }
  const normal = durs[10];
  const injected = durs.slice(50, 150).reduce((x, d) => x + d - normal, 0);
  return { file: b.close(), sessionId: b.sessionId, kind: 'cpu_preemption', pid: 1400, op: null, injectedNs: injected, names: 4343 };
}

/**
 * A hog from the start (the zoo's "before" shape): 15 launches of 200 µs kernels, 2 ms of host work, a sync that
 * waits ~1 ms (GPU-bound). In the first 8 steps a hog (pid 4545) takes the CPU for 10 ms in the host work, so the
 * queue runs dry; the sync after it finds the queue empty, and in the first two steps it returns 14 µs late (cold
 * after the preemption, no off-CPU time in it), which reads as a completion measured at its return: kernels of
 * ~800 µs. Injected: those 8 steps' time beyond a normal step.
 */
export function hogFromStart(file = tmpDb('hogstart')): Scenario {
  const b = new TraceBuilder(file, 'decode-hogstart').process(1500, 'decode').process(4545, 'hog', false);
  const g = new GpuThread(b, 1500, 1500);
  const durs: number[] = [];
  for (let s = 0; s < 60; s++) {
    const t0 = g.t;
    for (let k = 0; k < 15; k++) g.launch(200 * US);
    g.host(2 * MS, s < 8 ? [[100 * US, 10 * MS, 4545]] : []);
    if (s < 2) {
      // the cold return: 14 µs on the CPU, the queue long done
      b.call('cudaStreamSynchronize', g.t, 14 * US, 1500, 1500, { stream: 0 });
      g.t += 14 * US;
    } else g.sync();
    durs.push(g.t - t0);
  }
  const normal = durs[30];
  const injected = durs.slice(0, 8).reduce((x, d) => x + d - normal, 0);
  return { file: b.close(), sessionId: b.sessionId, kind: 'cpu_preemption', pid: 1500, op: null, injectedNs: injected, names: 4545 };
}

/**
 * Healthy graph decode: 30 eager prefill steps (4 x 100 µs kernels, sync), then 150 decode steps of one
 * cudaGraphLaunch (3 ms of GPU work: the whole graph) followed by 2 ms of host work that overlaps it, 3
 * eager 100 µs kernels queued behind the graph and a sync. The GPU never waits for the host in decode
 * (injected 0); a model that gave the graph launch one kernel's time would see the queue run dry during
 * the host work.
 */
export function graphOverlap(file = tmpDb('graph')): Scenario {
  const b = new TraceBuilder(file, 'serve --graphs').process(1300, 'serve');
  const g = new GpuThread(b, 1300, 1300);
  for (let s = 0; s < 30; s++) {
    g.host(50 * US);
    for (let k = 0; k < 4; k++) g.launch(100 * US);
    g.sync();
  }
  for (let s = 0; s < 150; s++) {
    g.host(50 * US);
    g.graphLaunch(0x5a5a000, 3 * MS);
    g.host(2 * MS);
    for (let k = 0; k < 3; k++) g.launch(100 * US);
    g.sync();
  }
  return { file: b.close(), sessionId: b.sessionId, kind: 'healthy', pid: 1300, op: null, injectedNs: 0 };
}

/**
 * Lazy module loading: 8 kernels launched once per step (200 µs of GPU work each, sync per step) for 40
 * steps; the first launch of each kernel spends 3 ms loading its module (on-CPU, in the launch call). The
 * first kernel's load comes before any GPU work (nothing to starve); the other 7 each leave the GPU idle.
 */
export function lazyLoad(file = tmpDb('lazy')): Scenario {
  const b = new TraceBuilder(file, 'serve --lazy').process(1400, 'serve');
  const g = new GpuThread(b, 1400, 1400);
  let injected = 0;
  for (let s = 0; s < 40; s++) {
    g.host(30 * US);
    for (let k = 0; k < 8; k++) {
      const load = s === 0 ? 3 * MS : 0;
      if (s === 0 && k > 0) injected += Math.max(0, load - (g.busyUntil - g.t)); // the GPU had that much left to run
      g.launch(200 * US, 6 * US + load, 128, 0x402000 + k * 0x100);
    }
    g.sync();
  }
  return { file: b.close(), sessionId: b.sessionId, kind: 'module_load', pid: 1400, op: 'cudaLaunchKernel', injectedNs: injected };
}
