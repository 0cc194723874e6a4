/**
 * makeFixtureDb(path, spec): a realistic synthetic Causeway trace written
 * through the real store (createSession, upsertProcesses, EventWriter), for
 * tests of the MCP server, the analysis and the CLI, and for benchmarks.
 *
 * What one session holds (all counts exact and returned in FixtureInfo):
 *  - `processes` traced processes (pid 1000, 1001, ...; comm 'python3'), each with
 *    `threadsPerProcess` threads (tid = pid, pid*10+1, ...), plus one untraced
 *    hog (pid 4242, comm 'stress') that preempts them;
 *  - CUDA calls on every thread, in a decode-loop pattern: cudaLaunchKernel x N,
 *    cudaMemcpyAsync (HtoD), cudaStreamSynchronize, cudaMemcpy (DtoH); every
 *    `allocEvery` iterations a cudaMalloc + cudaFree pair; every `memsetEvery` a
 *    cudaMemsetAsync. Arguments sit in the slots ops.ts names (bytes, direction,
 *    stream, dst, src, func, grid_blocks, block_threads, dev_ptr, value). About
 *    1 call in `errorEvery` returns an error (ret 2, cudaErrorMemoryAllocation);
 *  - per-tid calls never overlap and ts is globally non-decreasing;
 *  - incidents (spec.incidentEvery > 0): every Nth cudaStreamSynchronize lasts
 *    `incidentDurNs` and an off_cpu interval on the same tid (reason preempted,
 *    by_pid 4242) covers `incidentOffCpuFraction` of it; ids are returned;
 *  - background off_cpu (voluntary) and block_io events at the given rates;
 *  - every off_cpu row says which call it fell in (events.a3 bits 32.., as the
 *    probes record it since schema v9: the incident's sync, or none for the
 *    background ones, which lie between calls); `offCpuCallState: false`
 *    writes them as older sessions hold them (a3 = the CPU alone: unknown);
 *  - exec + one thread fork per traced process at the start, exit at the end;
 *  - stacks: `stacks` distinct interned stacks; every `stackEvery`th CUDA call
 *    carries one (0 = none);
 *  - MCP audit: `mcpCalls` events (op mcp_tool_call) with mcp_calls rows.
 * Aggregates (1 s buckets, DDSketch) are maintained by the writer.
 *
 * For benchmarks: makeFixtureDb(path, { cudaCalls: 10_000_000, ... }) streams
 * events through one reused EventBatch (no per-event objects); 1M events take
 * a few seconds. Set `aggregates: false` or `stacks: 0` to measure variants.
 */
import fs from 'node:fs';
import { openWritable, type Db } from '../../src/store/db.js';
import { createSession, finishSession, upsertProcesses, recordLosses } from '../../src/store/session.js';
import { EventWriter, type WriterOptions } from '../../src/store/writer.js';
import { allocBatch, type EventBatch, type ProcessInfo } from '../../src/common/events.js';
import { OP_BY_NAME } from '../../src/common/ops.js';
import { OFFCPU_CALL_UNKNOWN, offCpuA3 } from '../../src/common/wire.js';
import { mulberry32 } from '../../src/common/prng.js';

export interface FixtureSpec {
  /** sessions to create (each one a full trace); default 1 */
  sessions?: number;
  /** traced processes per session; default 2 */
  processes?: number;
  /** threads per process that call CUDA; default 2 */
  threadsPerProcess?: number;
  /** CUDA calls per session (exact); default 2000 */
  cudaCalls?: number;
  /** cudaLaunchKernel calls per decode iteration; default 6 */
  launchesPerIter?: number;
  /** a cudaMalloc/cudaFree pair every N iterations (0 = never); default 10 */
  allocEvery?: number;
  /** a cudaMemsetAsync every N iterations (0 = never); default 5 */
  memsetEvery?: number;
  /** one CUDA call in N returns ret=2 (0 = never); default 500 */
  errorEvery?: number;
  /** background voluntary off_cpu events per session (exact); default cudaCalls/20 */
  offCpu?: number;
  /** block_io events per session (exact); default cudaCalls/100 */
  io?: number;
  /** off_cpu rows say which call they fell in (schema v9); false: as recorded before v9 (unknown); default true */
  offCpuCallState?: boolean;
  /** every Nth cudaStreamSynchronize is a preemption incident (0 = none); default 25 */
  incidentEvery?: number;
  /** duration of an incident sync, ns; default 5 ms */
  incidentDurNs?: number;
  /** share of the incident sync spent off-CPU (preempted by 4242); default 0.9 */
  incidentOffCpuFraction?: number;
  /** distinct stacks to intern (0 = none); default 8 */
  stacks?: number;
  /** every Nth CUDA call carries a stack (0 = none); default 10 */
  stackEvery?: number;
  /** MCP tool-call audit events per session; default 0 */
  mcpCalls?: number;
  /** losses to record per session; default none */
  losses?: { stage: 'kernel' | 'queue' | 'writer'; reason: string; count: number }[];
  /** PRNG seed (deterministic output); default 1 */
  seed?: number;
  /** CLOCK_MONOTONIC ns of the first session's start; default 5e12 (83 min uptime). Use > 2^53 to test safe reads. */
  startedNs?: bigint;
  /** wall clock of the first session's start, unix ns; default 2026-01-15T10:00:00Z */
  wallStartNs?: bigint;
  /** gap between sessions, ns; default 1 hour */
  sessionGapNs?: bigint;
  /** events per writer batch; default 4096 */
  batchSize?: number;
  /** writer options (rowsPerStatement, aggregates ...) */
  writer?: WriterOptions;
  /** remove an existing file (and -wal/-shm) first; default true */
  overwrite?: boolean;
  /** session label; default 'fixture' */
  label?: string;
}

export interface FixtureIncident {
  /** events.id of the long cudaStreamSynchronize */
  syncId: number;
  /** events.id of the off_cpu interval inside it */
  offCpuId: number;
  pid: number;
  tid: number;
  tsNs: number;
  durNs: number;
  offCpuNs: number;
}

export interface FixtureSession {
  id: number;
  pids: number[];
  tids: number[];
  hogPid: number;
  /** exact count of events per op name in this session */
  byOp: Record<string, number>;
  /** total events of the session */
  events: number;
  firstEventId: number;
  lastEventId: number;
  endNs: number;
  incidents: FixtureIncident[];
  stackIds: number[];
}

export interface FixtureInfo {
  path: string;
  sessions: FixtureSession[];
  totalEvents: number;
  elapsedMs: number;
}

const OPC = (name: string): number => {
  const o = OP_BY_NAME.get(name);
  if (!o) throw new Error(`unknown op ${name}`);
  return o.code;
};

const OP = {
  malloc: OPC('cudaMalloc'),
  free: OPC('cudaFree'),
  launch: OPC('cudaLaunchKernel'),
  memcpy: OPC('cudaMemcpy'),
  memcpyAsync: OPC('cudaMemcpyAsync'),
  memsetAsync: OPC('cudaMemsetAsync'),
  streamSync: OPC('cudaStreamSynchronize'),
  offCpu: OPC('off_cpu'),
  exec: OPC('exec'),
  exit: OPC('exit'),
  fork: OPC('fork'),
  io: OPC('block_io'),
  mcpTool: OPC('mcp_tool_call'),
};

interface Thread {
  pid: number;
  tid: number;
  clock: number;
  step: number; // position in the iteration pattern
  iter: number;
  stream: number;
  devPtr: number;
}

/** Accumulates events and flushes them through the writer; tracks ids. */
class Sink {
  readonly b: EventBatch;
  private pending: Array<(firstId: number) => void> = [];
  firstId = 0;
  lastId = 0;
  count = 0;
  constructor(
    private readonly w: EventWriter,
    size: number,
  ) {
    this.b = allocBatch(size);
  }
  /** push one event; returns its index in the current batch */
  push(ts: number, dur: number, pid: number, tid: number, op: number, ret: number, a0: number, a1: number, a2: number, a3: number, stack: number): number {
    const b = this.b;
    const i = b.n++;
    b.ts[i] = ts;
    b.dur[i] = dur;
    b.pid[i] = pid;
    b.tid[i] = tid;
    b.op[i] = op;
    b.ret[i] = ret;
    b.a0[i] = a0;
    b.a1[i] = a1;
    b.a2[i] = a2;
    b.a3[i] = a3;
    b.stack[i] = stack;
    return i;
  }
  /** call cb with the id of event index i once flushed */
  onId(i: number, cb: (id: number) => void): void {
    this.pending.push((first) => cb(first + i));
  }
  full(): boolean {
    return this.b.n >= this.b.ts.length - 4;
  }
  flush(): void {
    if (this.b.n === 0) return;
    const r = this.w.writeBatch(this.b);
    if (this.count === 0) this.firstId = r.firstId;
    this.lastId = r.firstId + r.count - 1;
    this.count += r.count;
    for (const p of this.pending) p(r.firstId);
    this.pending = [];
    this.b.n = 0;
  }
}

/** Build a fixture database at `path`. */
export function makeFixtureDb(path: string, spec: FixtureSpec = {}): FixtureInfo {
  const t0 = performance.now();
  if (spec.overwrite ?? true) for (const s of ['', '-wal', '-shm', '-journal']) fs.rmSync(path + s, { force: true });
  const db = openWritable(path);
  try {
    const sessions: FixtureSession[] = [];
    const nSessions = spec.sessions ?? 1;
    let started = spec.startedNs ?? 5_000_000_000_000n;
    let wall = spec.wallStartNs ?? BigInt(Date.UTC(2026, 0, 15, 10, 0, 0)) * 1_000_000n;
    const gap = spec.sessionGapNs ?? 3_600_000_000_000n;
    for (let s = 0; s < nSessions; s++) {
      sessions.push(buildSession(db, path, spec, s, started, wall));
      const len = BigInt(Math.ceil(sessions[s].endNs));
      started += len + gap;
      wall += len + gap;
    }
    db.pragma('wal_checkpoint(TRUNCATE)');
    return { path, sessions, totalEvents: sessions.reduce((a, s) => a + s.events, 0), elapsedMs: performance.now() - t0 };
  } finally {
    db.close();
  }
}

function buildSession(db: Db, path: string, spec: FixtureSpec, index: number, startedNs: bigint, wallStartNs: bigint): FixtureSession {
  const rnd = mulberry32((spec.seed ?? 1) * 1000 + index);
  const nProc = spec.processes ?? 2;
  const nThr = spec.threadsPerProcess ?? 2;
  const cudaCalls = spec.cudaCalls ?? 2000;
  const launches = spec.launchesPerIter ?? 6;
  const allocEvery = spec.allocEvery ?? 10;
  const memsetEvery = spec.memsetEvery ?? 5;
  const errorEvery = spec.errorEvery ?? 500;
  const offCpuTotal = spec.offCpu ?? Math.floor(cudaCalls / 20);
  const ioTotal = spec.io ?? Math.floor(cudaCalls / 100);
  const incidentEvery = spec.incidentEvery ?? 25;
  const incidentDur = spec.incidentDurNs ?? 5_000_000;
  const incidentFrac = spec.incidentOffCpuFraction ?? 0.9;
  // a3 of an off_cpu row: its CPU and the call it fell in (callOp 0: none), or the CPU alone (pre-v9 rows)
  const offA3 = (cpu: number, callOp: number) => offCpuA3(cpu, spec.offCpuCallState === false ? OFFCPU_CALL_UNKNOWN : callOp);
  const nStacks = spec.stacks ?? 8;
  const stackEvery = nStacks > 0 ? (spec.stackEvery ?? 10) : 0;
  const mcpCalls = spec.mcpCalls ?? 0;
  const hogPid = 4242;

  const sessionId = createSession(db, {
    startedNs,
    wallStartNs,
    command: 'python3 serve.py --model llama',
    label: spec.label ?? 'fixture',
    hostname: 'fixture-host',
    kernel: '6.18.0-fixture',
    stackMode: nStacks > 0 ? `sampled:${stackEvery}` : 'none',
  });
  const w = new EventWriter(db, sessionId, { path, ...spec.writer });
  const sink = new Sink(w, spec.batchSize ?? 4096);
  const byOp: Record<string, number> = {};
  const count = (name: string, n = 1): void => {
    byOp[name] = (byOp[name] ?? 0) + n;
  };

  const pids: number[] = [];
  const tids: number[] = [];
  const threads: Thread[] = [];
  const procs: ProcessInfo[] = [];
  for (let p = 0; p < nProc; p++) {
    const pid = 1000 + p;
    pids.push(pid);
    procs.push({ pid, ppid: 1, comm: 'python3', exe: '/usr/bin/python3.11', cmdline: `python3 serve.py --rank ${p}`, traced: true, startNs: 0 });
    for (let t = 0; t < nThr; t++) {
      const tid = t === 0 ? pid : pid * 10 + t;
      tids.push(tid);
      threads.push({ pid, tid, clock: 1_000_000 + p * 1000 + t * 100, step: 0, iter: 0, stream: 0x5581_0000_0000 + pid * 0x1000 + t * 0x10, devPtr: 0x7f00_0000_0000 + pid * 0x1_0000_0000 });
    }
  }
  procs.push({ pid: hogPid, comm: 'stress', exe: '/usr/bin/stress', cmdline: 'stress --cpu 2', traced: false });
  upsertProcesses(db, sessionId, procs);

  const stackIds: number[] = [];
  for (let k = 0; k < nStacks; k++) {
    const frames = [
      { addr: 0x7f11_0000_1000 + k * 0x40, module: '/usr/lib/x86_64-linux-gnu/libcudart.so.12', offset: 0x1000 + k * 0x40, symbol: 'cudaStreamSynchronize' },
      { addr: 0x7f22_0000_2000 + k * 0x80, module: '/usr/lib/python3/site-packages/torch/lib/libtorch_cuda.so', offset: 0x2000 + k * 0x80, symbol: `at::native::step_${k}` },
      { addr: 0x5555_0000_3000, module: '/usr/bin/python3.11', offset: 0x3000, symbol: '_PyEval_EvalFrameDefault' },
    ];
    stackIds.push(w.internStack(frames, frames.map((f) => `${f.symbol} (${f.module}+0x${f.offset.toString(16)})`).join('\n')));
  }

  // process start: exec + a thread fork for each extra thread
  for (const pid of pids) {
    sink.push(0, 0, pid, pid, OP.exec, 0, 0, 0, 0, 0, -1);
    count('exec');
    for (let t = 1; t < nThr; t++) {
      sink.push(1000 + t, 0, pid, pid, OP.fork, 0, pid * 10 + t, 1, 0, 0, -1);
      count('fork');
    }
  }

  const incidents: FixtureIncident[] = [];
  // background events are spread evenly over CUDA calls
  const offEvery = offCpuTotal > 0 ? cudaCalls / offCpuTotal : Infinity;
  const ioEvery = ioTotal > 0 ? cudaCalls / ioTotal : Infinity;
  const mcpEvery = mcpCalls > 0 ? cudaCalls / mcpCalls : Infinity;
  let nextOff = offEvery / 2;
  let nextIo = ioEvery / 2;
  let nextMcp = mcpEvery / 2;
  let offDone = 0;
  let ioDone = 0;
  let mcpDone = 0;
  let syncs = 0;
  const mcpIdx: number[] = [];
  const iterLen = launches + 3 + 2; // launches, memcpyAsync, sync, memcpy, + room for alloc/free
  for (let c = 0; c < cudaCalls; c++) {
    // the thread with the earliest clock goes next: per-tid calls never overlap, ts is sorted
    let th = threads[0];
    for (let k = 1; k < threads.length; k++) if (threads[k].clock < th.clock) th = threads[k];
    const ts = th.clock;
    let dur: number;
    let op: number;
    let a0 = 0;
    let a1 = 0;
    let a2 = 0;
    let a3 = 0;
    let ret = 0;
    let name: string;
    const step = th.step;
    let incident = false;
    if (step < launches) {
      op = OP.launch;
      name = 'cudaLaunchKernel';
      dur = 4_000 + Math.floor(rnd() * 3_000);
      a0 = 0x7f33_0000_0000 + (step % 4) * 0x100; // func
      a1 = [108, 216, 1024, 4096][step % 4]; // grid blocks
      a2 = [256, 128, 512, 1024][step % 4]; // threads per block
      a3 = th.stream;
    } else if (step === launches) {
      op = OP.memcpyAsync;
      name = 'cudaMemcpyAsync';
      dur = 6_000 + Math.floor(rnd() * 4_000);
      a0 = 4096 * (1 + Math.floor(rnd() * 64));
      a1 = 1; // HostToDevice
      a2 = th.stream;
      a3 = th.devPtr;
    } else if (step === launches + 1) {
      op = OP.streamSync;
      name = 'cudaStreamSynchronize';
      syncs++;
      incident = incidentEvery > 0 && syncs % incidentEvery === 0;
      dur = incident ? incidentDur : 200_000 + Math.floor(rnd() * 400_000);
      a0 = th.stream;
    } else if (step === launches + 2) {
      op = OP.memcpy;
      name = 'cudaMemcpy';
      dur = 30_000 + Math.floor(rnd() * 20_000);
      a0 = 16384;
      a1 = 2; // DeviceToHost
      a2 = 0x7ffd_0000_0000 + th.tid * 0x100; // dst (host)
      a3 = th.devPtr; // src (device)
    } else if (step === launches + 3 && allocEvery > 0 && th.iter % allocEvery === 0) {
      op = OP.malloc;
      name = 'cudaMalloc';
      dur = 100_000 + Math.floor(rnd() * 50_000);
      a0 = 1 << 20;
      a1 = th.devPtr + 0x1000_0000;
    } else if (step === launches + 4 && allocEvery > 0 && th.iter % allocEvery === 0) {
      op = OP.free;
      name = 'cudaFree';
      dur = 50_000 + Math.floor(rnd() * 20_000);
      a0 = th.devPtr + 0x1000_0000;
    } else if (memsetEvery > 0 && th.iter % memsetEvery === 1 && step >= launches + 3) {
      op = OP.memsetAsync;
      name = 'cudaMemsetAsync';
      dur = 5_000 + Math.floor(rnd() * 2_000);
      a0 = 65536;
      a1 = 0;
      a2 = th.devPtr;
      a3 = th.stream;
      th.step = iterLen; // one memset ends the iteration
    } else {
      // nothing else in this iteration: start the next one with a launch
      th.step = 0;
      th.iter++;
      op = OP.launch;
      name = 'cudaLaunchKernel';
      dur = 4_000 + Math.floor(rnd() * 3_000);
      a0 = 0x7f33_0000_0000;
      a1 = 108;
      a2 = 256;
      a3 = th.stream;
    }
    if (errorEvery > 0 && c % errorEvery === errorEvery - 1) ret = 2;
    const stack = stackEvery > 0 && c % stackEvery === 0 ? stackIds[c % stackIds.length] : -1;
    const idx = sink.push(ts, dur, th.pid, th.tid, op, ret, a0, a1, a2, a3, stack);
    count(name);
    if (incident) {
      // inside the sync: a thread cannot leave a call while it is off-CPU (the probes mark it with the call)
      const off = Math.min(Math.floor(dur * incidentFrac), dur - 40_000);
      const oi = sink.push(ts + 20_000, off, th.pid, th.tid, OP.offCpu, 0, 0, hogPid, 0, offA3(1, op), -1);
      count('off_cpu');
      const inc: FixtureIncident = { syncId: 0, offCpuId: 0, pid: th.pid, tid: th.tid, tsNs: ts, durNs: dur, offCpuNs: off };
      incidents.push(inc);
      sink.onId(idx, (id) => (inc.syncId = id));
      sink.onId(oi, (id) => (inc.offCpuId = id));
    }
    // advance the thread: the call, then a little host time
    th.clock = ts + dur + 2_000 + Math.floor(rnd() * 8_000);
    th.step++;
    if (th.step > iterLen) {
      th.step = 0;
      th.iter++;
    }
    // background events, placed in the gap after this call on this thread (no overlap with its calls)
    if (c >= nextOff && offDone < offCpuTotal) {
      nextOff += offEvery;
      offDone++;
      const d = 20_000 + Math.floor(rnd() * 80_000);
      sink.push(ts + dur + 1_000, d, th.pid, th.tid, OP.offCpu, 0, 1, 0, th.pid, offA3(Math.floor(rnd() * 2), 0), -1);
      count('off_cpu');
      th.clock = Math.max(th.clock, ts + dur + 1_000 + d + 1_000);
    }
    if (c >= nextIo && ioDone < ioTotal) {
      nextIo += ioEvery;
      ioDone++;
      sink.push(ts + dur + 500, 150_000 + Math.floor(rnd() * 100_000), th.pid, th.tid, OP.io, 0, 131072, 2048 * (ioDone + 1), 0x800010, rnd() < 0.2 ? 1 : 0, -1);
      count('block_io');
    }
    if (c >= nextMcp && mcpDone < mcpCalls) {
      nextMcp += mcpEvery;
      mcpDone++;
      const i = sink.push(ts + 100, 300_000, 9999, 9999, OP.mcpTool, 0, 0, 0, 0, 0, -1);
      sink.onId(i, (id) => mcpIdx.push(id));
      count('mcp_tool_call');
    }
    if (sink.full()) sink.flush();
  }
  // leftovers (exact totals even when cudaCalls is small)
  let end = Math.max(...threads.map((t) => t.clock));
  while (offDone < offCpuTotal) {
    offDone++;
    sink.push(end, 10_000, threads[0].pid, threads[0].tid, OP.offCpu, 0, 1, 0, threads[0].pid, offA3(0, 0), -1);
    count('off_cpu');
    end += 20_000;
    if (sink.full()) sink.flush();
  }
  while (ioDone < ioTotal) {
    ioDone++;
    sink.push(end, 100_000, threads[0].pid, threads[0].tid, OP.io, 0, 4096, 8 * ioDone, 0x800010, 0, -1);
    count('block_io');
    end += 200_000;
    if (sink.full()) sink.flush();
  }
  while (mcpDone < mcpCalls) {
    mcpDone++;
    const i = sink.push(end, 300_000, 9999, 9999, OP.mcpTool, 0, 0, 0, 0, 0, -1);
    sink.onId(i, (id) => mcpIdx.push(id));
    count('mcp_tool_call');
    end += 400_000;
    if (sink.full()) sink.flush();
  }
  end += 1_000_000;
  for (const pid of pids) {
    sink.push(end, 0, pid, pid, OP.exit, 0, 0, 0, 0, 0, -1);
    count('exit');
  }
  sink.flush();
  w.close();

  if (mcpIdx.length > 0) {
    const st = db.prepare('INSERT INTO mcp_calls (event_id, client, method, tool, args_digest, rows, bytes, outcome) VALUES (?, ?, ?, ?, ?, ?, ?, ?)');
    db.transaction(() => {
      mcpIdx.forEach((id, k) => st.run(id, 'fixture-agent', 'tools/call', k % 2 ? 'run_sql' : 'get_trace_stats', 'sha256:' + (k * 7919).toString(16).padStart(8, '0'), 10, 512, 'ok'));
    })();
  }
  if (spec.losses) recordLosses(db, sessionId, spec.losses);
  upsertProcesses(db, sessionId, pids.map((pid) => ({ pid, traced: true, exitNs: end, exitCode: 0 })));
  finishSession(db, sessionId, { status: 'complete', endedNs: end + 1000 });
  return {
    id: sessionId,
    pids,
    tids,
    hogPid,
    byOp,
    events: sink.count,
    firstEventId: sink.firstId,
    lastEventId: sink.lastId,
    endNs: end + 1000,
    incidents,
    stackIds,
  };
}
