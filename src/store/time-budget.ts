/**
 * Where each thread's wall time went: one pass over a session's events.
 *
 * Per thread of the traced processes, wall time (its lifetime inside the
 * session) is split into
 *   - in CUDA, per op (outermost calls only: a driver call nested in a runtime
 *     call is not counted twice), with the part of it spent off-CPU;
 *   - off-CPU outside CUDA calls, per reason, with who ran instead (culprits)
 *     and who woke the thread (wakers);
 *   - on-CPU outside CUDA calls (host time) = the rest, with the op each host
 *     gap followed (the code that ran between two calls);
 * plus block I/O issued and direct reclaim, which overlap the above. Time
 * inside NCCL collectives is a part of the CUDA time of its own (a rank
 * waiting for the others there is not waiting for its GPU). NVTX calls are
 * annotations, not time spent: they are left out; the ranges they mark are
 * totalled per name instead (top few, by time).
 * Phases: exec/exit/thread forks per process, and a step-time shift per thread
 * (steps = intervals between the thread's most frequent synchronizing call).
 *
 * Speed: the events table has no index but its rowid (GUIDE §3), so a GROUP BY
 * sorts every row (measured 0.6-0.9 s on 1M events on the 2-core dev box). A
 * scalar SQL function called once per row in rowid order costs about a third
 * of that, so the pass is `SELECT count(cw_tb_acc(...)) FROM events WHERE id
 * BETWEEN <session span>`, and the per-thread arrays are merged in memory.
 */
import type { Db } from './db.js';
import { OPS, isNvtxOp, opName } from '../common/ops.js';
import { nvtxNames, nvtxRangeTotals, type NvtxTotal } from './nvtx.js';

export interface OpTime {
  op: string;
  calls: number;
  /** wall time inside outermost calls of this op, ns */
  ns: number;
  /** part of ns spent off-CPU */
  offCpuNs: number;
}
export interface Culprit {
  pid: number;
  comm: string | null;
  ns: number;
  count: number;
}
export interface OffCpuReason {
  reason: string;
  count: number;
  /** total off-CPU time for this reason, ns */
  ns: number;
  /** of which inside CUDA calls */
  inCudaNs: number;
  /** who ran instead, by time (pid 0 = idle CPU left out) */
  culprits: Culprit[];
  /** who woke the thread, by count */
  wakers: Culprit[];
}
export interface ThreadBudget {
  pid: number;
  tid: number;
  comm: string | null;
  startNs: number;
  endNs: number;
  wallNs: number;
  cudaNs: number;
  cudaOffCpuNs: number;
  cudaCalls: number;
  /** of cudaNs: time inside outermost NCCL collective calls (collectives, send/recv, group end) */
  collectiveNs: number;
  collectiveCalls: number;
  /** nested calls (e.g. the driver call inside a runtime call), not counted in cudaNs */
  nestedCalls: number;
  ops: OpTime[];
  /** off-CPU outside CUDA calls, ns */
  offCpuNs: number;
  offCpu: OffCpuReason[];
  /** on-CPU outside CUDA calls = wall - CUDA - off-CPU outside CUDA (never below 0) */
  hostNs: number;
  /** host time by the CUDA op that preceded it ('start' before the first call) */
  hostAfter: { op: string; ns: number; gaps: number }[];
  io: { requests: number; bytes: number; ns: number };
  reclaim: { count: number; ns: number; pages: number };
  step: StepInfo | null;
}
export interface StepInfo {
  /**
   * what marks a step: an NVTX range repeated at the thread's outermost level
   * ('NVTX "decode step #"': steps run from one such push to the next, digits
   * in the names taken as a counter), else the thread's most frequent
   * synchronizing call (steps between its returns)
   */
  op: string;
  steps: number;
  medianNs: number;
  /** set when the step time shifts once by >= 1.5x: before/after medians and where */
  shift: { atNs: number; beforeNs: number; afterNs: number; stepsBefore: number; stepsAfter: number; grew: { part: string; beforeNs: number; afterNs: number }[] } | null;
}
export interface Phase {
  tsNs: number;
  pid: number;
  tid: number;
  kind: 'exec' | 'exit' | 'fork' | 'oom_kill' | 'step_shift';
  detail: string;
}
export interface TimeBudget {
  sessionId: number;
  durationNs: number;
  threads: ThreadBudget[];
  phases: Phase[];
  /** traced pids the budget covers */
  pids: number[];
  /** closed NVTX ranges per name, by total time (top NVTX_TOP), of the pid filter when given; empty without NVTX */
  nvtxRanges: NvtxTotal[];
}

/** NVTX range names listed in a budget */
export const NVTX_TOP = 5;

const OFF_CPU = 128;
const EXEC = 129;
const EXIT = 130;
const FORK = 131;
const OOM = 132;
const BLOCK_IO = 134;
const RECLAIM = 136;
const REASONS = ['preempted', 'voluntary', 'io_wait', 'other'];
/** step markers: calls that block the host until the device is done (syncs first, then blocking copies) */
const SYNC_KIND = new Set(OPS.filter((o) => o.code < 128 && o.kind === 'sync').map((o) => o.code));
const BLOCKING = new Set(OPS.filter((o) => o.code < 128 && o.blocking).map((o) => o.code));
/** calls whose time is NCCL's (a rank may be waiting for the other ranks there) */
const COLLECTIVE = new Set(OPS.filter((o) => o.code < 128 && o.kind === 'collective').map((o) => o.code));
/** default-domain pushes and pop (v_nvtx_ranges' thread stack; domain ranges are not step markers) */
const NVTX_PUSH_OPS = new Set([116, 117, 118]);
const NVTX_POP_OP = 119;
/** an NVTX name pattern marks steps when it opens this many outermost ranges on a thread */
const MIN_RANGE_STEPS = 4;
/** a step-time shift is reported when the medians either side of the best split differ by this factor */
const SHIFT_RATIO = 1.5;
const MIN_STEPS_PER_SIDE = 5;

/** Growable Float64Array: JS array pushes of 1M doubles cost more than the SQL scan. */
class Col {
  buf = new Float64Array(1024);
  n = 0;
  push(v: number): void {
    if (this.n === this.buf.length) {
      const b = new Float64Array(this.buf.length * 2);
      b.set(this.buf);
      this.buf = b;
    }
    this.buf[this.n++] = v;
  }
  view(): Float64Array {
    return this.buf.subarray(0, this.n);
  }
}

interface Acc {
  tid: number;
  pid: number;
  // CUDA calls: start, end, op (in arrival order)
  cs: Col;
  ce: Col;
  co: Col;
  // off-CPU: start, end, reason, by_pid, waker
  os: Col;
  oe: Col;
  or: Col;
  ob: Col;
  ow: Col;
  io: { requests: number; bytes: number; ns: number };
  reclaim: { count: number; ns: number; pages: number };
  // NVTX pushes (default domain) at the outermost level: start, name id; the open depth
  rs: number[];
  rn: number[];
  depth: number;
}

interface PassState {
  threads: Map<number, Acc>;
  traced: Set<number>;
  phases: Phase[];
  forkTs: Map<number, number>;
  execTs: Map<number, number>;
  exitTs: Map<number, number>;
  /** any NVTX call seen (only then is v_nvtx_ranges read) */
  nvtx: boolean;
}

const FN = 'cw_tb_acc';
const registered = new WeakMap<Db, { state: PassState | null }>();

function accFor(st: PassState, pid: number, tid: number): Acc {
  let a = st.threads.get(tid);
  if (!a) {
    a = { tid, pid, cs: new Col(), ce: new Col(), co: new Col(), os: new Col(), oe: new Col(), or: new Col(), ob: new Col(), ow: new Col(), io: { requests: 0, bytes: 0, ns: 0 }, reclaim: { count: 0, ns: 0, pages: 0 }, rs: [], rn: [], depth: 0 };
    st.threads.set(tid, a);
  }
  return a;
}

function ensureFunction(db: Db): { state: PassState | null } {
  let holder = registered.get(db);
  if (holder) return holder;
  const h: { state: PassState | null } = { state: null };
  db.function(FN, { deterministic: false, directOnly: true }, (p: number, t: number, o: number, s: number, dur: number, a0: number | null, a1: number | null, a2: number | null) => {
    const st = h.state;
    if (!st) return null;
    if (!st.traced.has(p)) return null;
    if (o < 128) {
      if (isNvtxOp(o)) {
        // annotations, not time: their ranges are totalled apart, and outermost pushes may mark steps
        st.nvtx = true;
        if (o === NVTX_POP_OP || NVTX_PUSH_OPS.has(o)) {
          const a = accFor(st, p, t);
          if (o === NVTX_POP_OP) a.depth = Math.max(0, a.depth - 1);
          else if (a.depth++ === 0) {
            a.rs.push(s);
            a.rn.push(Number(a2 ?? 0));
          }
        }
        return null;
      }
      const a = accFor(st, p, t);
      a.cs.push(s);
      a.ce.push(s + dur);
      a.co.push(o);
    } else if (o === OFF_CPU) {
      const a = accFor(st, p, t);
      a.os.push(s);
      a.oe.push(s + dur);
      a.or.push(Number(a0 ?? 3));
      a.ob.push(Number(a1 ?? 0));
      a.ow.push(Number(a2 ?? 0));
    } else if (o === BLOCK_IO) {
      const a = accFor(st, p, t);
      a.io.requests++;
      a.io.bytes += Number(a0 ?? 0);
      a.io.ns += dur;
    } else if (o === RECLAIM) {
      const a = accFor(st, p, t);
      a.reclaim.count++;
      a.reclaim.ns += dur;
      a.reclaim.pages += Number(a0 ?? 0);
    } else if (o === FORK) {
      const child = Number(a0);
      if (Number(a1) === 1) st.forkTs.set(child, s);
      st.phases.push({ tsNs: s, pid: p, tid: t, kind: 'fork', detail: `${Number(a1) === 1 ? 'thread' : 'process'} ${child}` });
    } else if (o === EXEC) {
      if (!st.execTs.has(p)) st.execTs.set(p, s);
      st.phases.push({ tsNs: s, pid: p, tid: t, kind: 'exec', detail: '' });
    } else if (o === EXIT) {
      st.exitTs.set(p, Math.min(s, st.exitTs.get(p) ?? Infinity));
      st.phases.push({ tsNs: s, pid: p, tid: t, kind: 'exit', detail: `code ${Number(a0 ?? 0)}` });
    } else if (o === OOM) {
      st.phases.push({ tsNs: s, pid: p, tid: t, kind: 'oom_kill', detail: `victim ${Number(a0)}` });
    }
    return null;
  });
  registered.set(db, h);
  return h;
}

/** Order of indices by start, or null when arrival order already is time order (the common case: sort only when needed). */
function orderBy(starts: Float64Array): Uint32Array | null {
  for (let i = 1; i < starts.length; i++) {
    if (starts[i] < starts[i - 1]) return Uint32Array.from(starts, (_, k) => k).sort((x, y) => starts[x] - starts[y] || x - y);
  }
  return null;
}

function median(xs: ArrayLike<number>): number {
  if (xs.length === 0) return 0;
  const s = Float64Array.from(xs).sort();
  return s[(s.length - 1) >> 1];
}

export interface TimeBudgetOptions {
  pid?: number;
  tid?: number;
  /** culprits and wakers kept per reason (default 2) */
  topCulprits?: number;
}

export function timeBudget(db: Db, sessionId: number, opts: TimeBudgetOptions = {}): TimeBudget {
  const sess = db.prepare('SELECT ended_ns FROM sessions WHERE id = ?').get(sessionId) as { ended_ns: number | bigint | null } | undefined;
  const span = db.prepare('SELECT min(first_id) AS lo, max(last_id) AS hi, max(ts_max) AS tmax FROM event_spans WHERE session_id = ?').get(sessionId) as { lo: number | null; hi: number | null; tmax: number | null };
  const durationNs = sess?.ended_ns != null ? Number(sess.ended_ns) : Number(span.tmax ?? 0);
  const procs = db.prepare('SELECT pid, comm, traced, start_ns, exit_ns FROM processes WHERE session_id = ?').all(sessionId) as { pid: number; comm: string | null; traced: number; start_ns: number | null; exit_ns: number | null }[];
  const comm = new Map(procs.map((p) => [Number(p.pid), p.comm]));
  let tracedPids = procs.filter((p) => p.traced).map((p) => Number(p.pid));
  if (opts.pid !== undefined) tracedPids = tracedPids.filter((p) => p === opts.pid);
  const st: PassState = { threads: new Map(), traced: new Set(tracedPids), phases: [], forkTs: new Map(), execTs: new Map(), exitTs: new Map(), nvtx: false };
  if (span.lo !== null && span.hi !== null && tracedPids.length > 0) {
    const h = ensureFunction(db);
    h.state = st;
    try {
      const tidFilter = opts.tid !== undefined ? 'AND tid = ?' : '';
      const params: number[] = [span.lo, span.hi, sessionId];
      if (opts.tid !== undefined) params.push(opts.tid);
      // a0..a2 only matter for host events: NULL for CUDA calls saves converting three values per call
      db.prepare(`SELECT count(${FN}(pid, tid, op, ts, dur, CASE WHEN op >= 128 THEN a0 END, CASE WHEN op >= 128 THEN a1 END, CASE WHEN op >= 128 THEN a2 WHEN op BETWEEN 116 AND 127 THEN a3 END)) FROM events WHERE id BETWEEN ? AND ? AND session_id = ? AND op <= ${RECLAIM} ${tidFilter}`).pluck().get(...params);
    } finally {
      h.state = null;
    }
  }
  for (const p of procs) if (p.exit_ns != null && !st.exitTs.has(Number(p.pid))) st.exitTs.set(Number(p.pid), Number(p.exit_ns));

  const top = opts.topCulprits ?? 2;
  const threads: ThreadBudget[] = [];
  const names = st.nvtx ? nvtxNames(db, [...st.threads.values()].flatMap((a) => a.rn)) : new Map<number, string>();
  for (const a of st.threads.values()) threads.push(finishThread(a, st, durationNs, comm, top, names));
  threads.sort((x, y) => x.pid - y.pid || x.tid - y.tid);

  const phases = st.phases.filter((p) => opts.tid === undefined || p.tid === opts.tid || p.kind !== 'fork');
  for (const t of threads) {
    if (t.step?.shift) {
      const s = t.step.shift;
      phases.push({ tsNs: s.atNs, pid: t.pid, tid: t.tid, kind: 'step_shift', detail: `${t.step.op} step ${fmtMs(s.beforeNs)} -> ${fmtMs(s.afterNs)} ms` });
    }
  }
  phases.sort((x, y) => x.tsNs - y.tsNs || x.pid - y.pid);
  const nvtxRanges = st.nvtx ? nvtxRangeTotals(db, sessionId, NVTX_TOP, opts.pid, opts.tid) : [];
  return { sessionId, durationNs, threads, phases, pids: tracedPids, nvtxRanges };
}

function fmtMs(ns: number): string {
  return (ns / 1e6).toFixed(ns >= 1e8 ? 0 : ns >= 1e6 ? 1 : 3);
}

/** The outermost NVTX ranges that repeat (one name pattern, digits as a counter): their starts cut steps. */
function rangeSteps(a: Acc, names: Map<number, string>): { label: string; starts: number[] } | null {
  if (a.rs.length < MIN_RANGE_STEPS) return null;
  const byPattern = new Map<string, number[]>();
  a.rs.forEach((s, i) => {
    const name = names.get(a.rn[i]!);
    if (!name) return;
    const key = name.replace(/\d+/g, '#');
    const l = byPattern.get(key) ?? [];
    if (l.push(s) === 1) byPattern.set(key, l);
  });
  let best: [string, number[]] | null = null;
  for (const e of byPattern) if (!best || e[1].length > best[1].length) best = e;
  return best && best[1].length >= MIN_RANGE_STEPS ? { label: `NVTX ${JSON.stringify(best[0])}`, starts: best[1] } : null;
}

function finishThread(a: Acc, st: PassState, durationNs: number, comm: Map<number, string | null>, top: number, names: Map<number, string>): ThreadBudget {
  // a thread exists from its fork, else from its process's exec (a traced command starts there), else the session start
  const startNs = Math.max(0, st.forkTs.get(a.tid) ?? (a.tid === a.pid ? (st.execTs.get(a.pid) ?? 0) : 0));
  const endNs = Math.max(startNs, Math.min(durationNs, st.exitTs.get(a.pid) ?? durationNs));
  // outermost CUDA calls, in time order; nested ones only counted
  const cs = a.cs.view();
  const ce = a.ce.view();
  const co = a.co.view();
  const order = orderBy(cs);
  const osB = new Float64Array(cs.length);
  const oeB = new Float64Array(cs.length);
  const ooB = new Float64Array(cs.length);
  let m = 0;
  let nested = 0;
  for (let n = 0; n < cs.length; n++) {
    const i = order ? order[n] : n;
    if (m > 0 && cs[i] < oeB[m - 1]) {
      nested++;
      if (ce[i] > oeB[m - 1]) oeB[m - 1] = ce[i];
      continue;
    }
    osB[m] = cs[i];
    oeB[m] = ce[i];
    ooB[m] = co[i];
    m++;
  }
  const os = osB.subarray(0, m);
  const oe = oeB.subarray(0, m);
  const oo = ooB.subarray(0, m);
  const offS = a.os.view();
  const offE = a.oe.view();
  const offR = a.or.view();
  const offB = a.ob.view();
  const offW = a.ow.view();
  // per op code (CUDA ops are < 128; index 128 stands for "before the first call")
  const calls = new Float64Array(129);
  const opNs = new Float64Array(129);
  const opOff = new Float64Array(129);
  const gapNs = new Float64Array(129);
  const gapN = new Float64Array(129);
  const START = 128;
  let prevEnd = startNs;
  let prevOp = START;
  let cudaNs = 0;
  let collectiveNs = 0;
  let collectiveCalls = 0;
  for (let k = 0; k < os.length; k++) {
    const o = oo[k];
    const d = oe[k] - os[k];
    cudaNs += d;
    if (COLLECTIVE.has(o)) {
      collectiveNs += d;
      collectiveCalls++;
    }
    calls[o]++;
    opNs[o] += d;
    const gap = os[k] - prevEnd;
    if (gap > 0) {
      gapNs[prevOp] += gap;
      gapN[prevOp]++;
    }
    if (oe[k] > prevEnd) prevEnd = oe[k];
    prevOp = o;
  }
  // off-CPU intervals: the part inside the outermost call that contains (or precedes) them
  const reasons = new Map<number, { r: OffCpuReason; by: Map<number, Culprit>; wk: Map<number, Culprit> }>();
  const offOrder = orderBy(offS);
  let offOutside = 0;
  let cudaOff = 0;
  // off-CPU time outside calls, bucketed by the preceding op (subtracted from hostAfter below)
  let j = 0;
  for (let n = 0; n < offS.length; n++) {
    const i = offOrder ? offOrder[n] : n;
    const s = offS[i];
    const e = offE[i];
    while (j + 1 < os.length && os[j + 1] <= s) j++;
    let inside = 0;
    let inOp = -1;
    for (let k = j; k < os.length && os[k] < e; k++) {
      const ov = Math.min(e, oe[k]) - Math.max(s, os[k]);
      if (ov > 0) {
        inside += ov;
        inOp = oo[k];
        opOff[oo[k]] += ov;
      }
    }
    const dur = e - s;
    cudaOff += inside;
    offOutside += dur - inside;
    if (dur - inside > 0) {
      // the host gap this interval sits in follows the last call that started before it
      const after = inOp >= 0 ? inOp : os.length > 0 && os[j] <= s ? oo[j] : START;
      gapNs[after] = Math.max(0, gapNs[after] - (dur - inside));
    }
    const rc = Math.min(offR[i], 3);
    let g = reasons.get(rc);
    if (!g) reasons.set(rc, (g = { r: { reason: REASONS[rc], count: 0, ns: 0, inCudaNs: 0, culprits: [], wakers: [] }, by: new Map(), wk: new Map() }));
    g.r.count++;
    g.r.ns += dur;
    g.r.inCudaNs += inside;
    const by = offB[i];
    if (by > 0 && by !== a.tid) {
      let c = g.by.get(by);
      if (!c) g.by.set(by, (c = { pid: by, comm: comm.get(by) ?? null, ns: 0, count: 0 }));
      c.ns += dur;
      c.count++;
    }
    const w = offW[i];
    if (w > 0) {
      let c = g.wk.get(w);
      if (!c) g.wk.set(w, (c = { pid: w, comm: comm.get(w) ?? null, ns: 0, count: 0 }));
      c.ns += dur;
      c.count++;
    }
  }
  const ops: OpTime[] = [];
  const hostAfter: { op: string; ns: number; gaps: number }[] = [];
  for (let o = 0; o <= START; o++) {
    if (calls[o] > 0) ops.push({ op: opName(o), calls: calls[o], ns: opNs[o], offCpuNs: opOff[o] });
    if (gapNs[o] > 0) hostAfter.push({ op: o === START ? 'start' : opName(o), ns: gapNs[o], gaps: gapN[o] });
  }
  ops.sort((x, y) => y.ns - x.ns || x.op.localeCompare(y.op));
  hostAfter.sort((x, y) => y.ns - x.ns);
  const offCpu = [...reasons.values()].map((g) => ({
    ...g.r,
    culprits: [...g.by.values()].sort((x, y) => y.ns - x.ns || x.pid - y.pid).slice(0, top),
    wakers: [...g.wk.values()].sort((x, y) => y.count - x.count || x.pid - y.pid).slice(0, top),
  }));
  offCpu.sort((x, y) => y.ns - x.ns);
  const wallNs = endNs - startNs;
  return {
    pid: a.pid,
    tid: a.tid,
    comm: comm.get(a.tid) ?? comm.get(a.pid) ?? null,
    startNs,
    endNs,
    wallNs,
    cudaNs,
    cudaOffCpuNs: cudaOff,
    cudaCalls: os.length,
    collectiveNs,
    collectiveCalls,
    nestedCalls: nested,
    ops,
    offCpuNs: offOutside,
    offCpu,
    hostNs: Math.max(0, wallNs - cudaNs - offOutside),
    hostAfter: hostAfter.slice(0, 3),
    io: a.io,
    reclaim: a.reclaim,
    step: stepInfo(os, oe, oo, offS, offE, offR, rangeSteps(a, names)),
  };
}

/**
 * Steps: consecutive starts of the thread's repeated outermost NVTX range when it has one, else consecutive ends
 * of its most frequent synchronizing op; one best split on log step time.
 */
function stepInfo(os: Float64Array, oe: Float64Array, oo: Float64Array, offS: Float64Array, offE: Float64Array, offR: Float64Array, ranges: { label: string; starts: number[] } | null = null): StepInfo | null {
  if (ranges) return splitSteps(ranges.label, ranges.starts, os, oe, oo, offS, offE, offR);
  const counts = new Map<number, number>();
  for (const o of oo) if (SYNC_KIND.has(o)) counts.set(o, (counts.get(o) ?? 0) + 1);
  if (counts.size === 0) for (const o of oo) if (BLOCKING.has(o)) counts.set(o, (counts.get(o) ?? 0) + 1);
  let marker = -1;
  let best = 0;
  for (const [o, n] of counts) if (n > best || (n === best && o < marker)) [marker, best] = [o, n];
  if (marker < 0 || best < 3) return null;
  const ends: number[] = [];
  for (let k = 0; k < oo.length; k++) if (oo[k] === marker) ends.push(oe[k]);
  return splitSteps(opName(marker), ends, os, oe, oo, offS, offE, offR);
}

/** Step times between consecutive boundaries `ends`, and the best single split when the step time shifts. */
function splitSteps(label: string, ends: number[], os: Float64Array, oe: Float64Array, oo: Float64Array, offS: Float64Array, offE: Float64Array, offR: Float64Array): StepInfo {
  const steps = new Float64Array(ends.length - 1);
  for (let i = 1; i < ends.length; i++) steps[i - 1] = ends[i] - ends[i - 1];
  const info: StepInfo = { op: label, steps: steps.length, medianNs: median(steps), shift: null };
  const n = steps.length;
  if (n < 2 * MIN_STEPS_PER_SIDE) return info;
  // best single split minimizing the squared error of log step times (prefix sums: O(n))
  const lg = Array.from(steps, (x) => Math.log(Math.max(1, x)));
  const pre = [0];
  const pre2 = [0];
  for (const x of lg) {
    pre.push(pre[pre.length - 1] + x);
    pre2.push(pre2[pre2.length - 1] + x * x);
  }
  const sse = (i: number, j: number) => pre2[j] - pre2[i] - (pre[j] - pre[i]) ** 2 / (j - i);
  let split = -1;
  let bestCost = sse(0, n);
  for (let k = MIN_STEPS_PER_SIDE; k <= n - MIN_STEPS_PER_SIDE; k++) {
    const c = sse(0, k) + sse(k, n);
    if (c < bestCost) [bestCost, split] = [c, k];
  }
  if (split < 0) return info;
  const before = median(steps.slice(0, split));
  const after = median(steps.slice(split));
  if (Math.max(before, after) < SHIFT_RATIO * Math.max(1, Math.min(before, after))) return info;
  const atNs = ends[split];
  // what grew: per step, time in each op / off-CPU / host, before vs after the split
  const t0 = ends[0];
  const t2 = ends[ends.length - 1];
  const part = new Map<string, [number, number]>();
  const add = (key: string, s: number, e: number) => {
    const lo = Math.max(s, t0);
    const hi = Math.min(e, t2);
    if (hi <= lo) return;
    let v = part.get(key);
    if (!v) part.set(key, (v = [0, 0]));
    if (hi <= atNs) v[0] += hi - lo;
    else if (lo >= atNs) v[1] += hi - lo;
    else {
      v[0] += atNs - lo;
      v[1] += hi - atNs;
    }
  };
  for (let k = 0; k < os.length; k++) add(opName(oo[k]), os[k], oe[k]);
  for (let i = 0; i < offS.length; i++) add(`off-CPU ${REASONS[Math.min(offR[i], 3)]}`, offS[i], offE[i]);
  const grew = [...part.entries()]
    .map(([k, [b, f]]) => ({ part: k, beforeNs: Math.round(b / split), afterNs: Math.round(f / (n - split)) }))
    .filter((g) => g.afterNs !== g.beforeNs)
    .sort((x, y) => Math.abs(y.afterNs - y.beforeNs) - Math.abs(x.afterNs - x.beforeNs))
    .slice(0, 3);
  info.shift = { atNs, beforeNs: before, afterNs: after, stepsBefore: split, stepsAfter: n - split, grew };
  return info;
}
