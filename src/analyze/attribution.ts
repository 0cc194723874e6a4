/**
 * Per-call attribution and the GPU-driving thread timeline, in one streaming pass.
 *
 * The driver is now stream.ts (issue #14): events in id order, per-thread reorder buffers, the pre-pass
 * quantities online; it feeds the ThreadSweep below, both live (the writer thread) and cold (a replay of the
 * database in rowid order, no sort). attributeSessionSorted, the two-pass driver described next, is kept as the
 * reference the stream is compared with (bench, A/B of verdicts); nothing in src calls it.
 *
 * Events of a session are read ordered by (tid, ts) as the arguments of a
 * user-defined aggregate (scanOrdered: one call into JS per row, no row
 * objects), after one unordered pre-pass (prescan.ts); SQLite's sorter spills
 * to temporary files, so memory stays bounded by the number of threads x ops
 * (aggregates, sketches, bounded reservoirs and top-K samples), never by the
 * number of events.
 *
 * Cold-path choices, by measurement (1M-event bench fixture, CPU time, shared 2-core machine): per row,
 * better-sqlite3's iterate() cost ~1.3 µs (11 columns, unsorted) and the SQLite sort of the session by
 * (tid, ts, id) ~0.85 µs more; a user-defined function or aggregate receiving the columns as arguments ~0.37 µs
 * unsorted (0.16 µs for 2 columns), 1.3 µs sorted. So: one unordered pre-pass through a function (prescan.ts,
 * replacing four scans) and the sorted sweep through an aggregate. Not taken (yet): worker threads per tid
 * (the analysis state is class instances that do not cross threads cheaply, and a single-thread trace, the
 * common decode loop, has nothing to split; SQLite's sorter gets its second thread from PRAGMA threads
 * instead); a columnar side-table written during the trace (a writer and schema change, and older or imported
 * traces would not have it); reading in id order with per-thread reorder buffers instead of the sort (exact
 * only with a per-thread release bound: a pre-pass of per-(id block, tid) minimum ts would give one; it would
 * save the ~0.85 µs/row sort).
 *
 * Attribution: each CUDA call's [ts, ts+dur] is overlapped with the off-CPU
 * intervals (sched_switch out -> in) of the same tid; the overlap is split by
 * reason (preempted / voluntary / io_wait) and by who (by_pid for preemption,
 * waker_pid for waits). The rest of the call is on-CPU.
 *
 * GPU timeline (per thread that submits work), estimated from the host side:
 *  - submissions (launches, async copies/memsets) make the queue non-empty;
 *  - a drain (stream/device/event sync, synchronous copy or memset) empties it.
 *    A drain that lasted >= DRAIN_BLOCK_NS blocked: the GPU was busy until it
 *    returned, and we assume busy from the step's first submission to that
 *    point (an upper bound: kernels may have had gaps). A drain that returned
 *    immediately means the queue was already empty: the GPU finished before the
 *    host got there (host-bound step); its busy time is estimated as launches x
 *    the median GPU time per launch learned from blocked steps.
 *  - a step runs from one drain's return to the next drain's return. Between a
 *    drain's return and the next submission the GPU is idle and waiting for the
 *    host: that "idle gap" is split into host CPU work, other CUDA calls, and
 *    off-CPU time by reason ("GPU idle because the host was busy elsewhere").
 *  - off-CPU time of the host is on the critical path when the GPU was idle
 *    (idle gaps, host-bound steps); in a step whose drain blocked, host time
 *    before the drain overlapped GPU work and is not critical, except the tail
 *    of a drain that was preempted after the GPU had (by estimate) finished.
 */
import type { ProbeCost } from './probe-cost.js';
import type { Db } from '../store/db.js';
import { OP_BY_CODE, type OpKind } from '../common/ops.js';
import { offCpuCpu } from '../common/wire.js';
import { OP_INFO, SLOT_BYTES, SLOT_DIRECTION, SLOT_EVENT, SLOT_GRAPH_EXEC, SLOT_STREAM, keyIndex, keyOf, opKey, rateKey, slot } from './optables.js';
import { Reservoir, TopK, addTo, newSketch, q, type Sketch } from './stats.js';
import { Timeline, roleAt, type IdleModel } from './timeline.js';
import { prescan } from './prescan.js';
import { doubleFields, primeDoubles } from './shape.js';

export { DRAIN_BLOCK_NS } from './timeline.js';
import { DRAIN_BLOCK_NS, OWN_TRANSFER_SLACK, WAKE_SPLIT_NS } from './timeline.js';
const OFF_CPU = 128;
const RECLAIM = 136;
const BLOCK_IO = 134;
const READ_IO = 138;
const D2H = 2;

export interface OffSplit {
  preempted: number;
  voluntary: number;
  io: number;
  other: number;
}
const zeroSplit = (): OffSplit => ({ preempted: 0, voluntary: 0, io: 0, other: 0 });
primeDoubles(zeroSplit(), ['preempted', 'voluntary', 'io', 'other']);

/** One CUDA call after attribution (handed to onCall, not kept). */
export interface CallAttribution {
  id: number;
  ts: number;
  dur: number;
  pid: number;
  tid: number;
  op: number;
  direction: number | null;
  onCpu: number;
  off: OffSplit;
  preemptedBy: Map<number, number>;
  wokenBy: Map<number, number>;
}

export interface CallSample {
  id: number;
  ts: number;
  dur: number;
  preempted: number;
  voluntary: number;
  io: number;
}

export interface OpAgg {
  key: string;
  op: number;
  name: string;
  kind: OpKind;
  direction: number | null;
  count: number;
  errors: number;
  totalNs: number;
  onCpuNs: number;
  off: OffSplit;
  preemptedBy: Map<number, number>;
  /** voluntary + io waits inside the op, by waker pid */
  wokenBy: Map<number, number>;
  /** off-CPU event ids inside this op, per waker pid (bounded) */
  wakeSamples: Map<number, number[]>;
  bytes: number;
  sketch: Sketch;
  reservoir: Reservoir;
  slowest: TopK<CallSample>;
  mostPreempted: TopK<CallSample>;
  firstTs: number;
  lastEnd: number;
}

export interface DrainStat {
  key: string;
  op: number;
  name: string;
  direction: number | null;
  steps: number;
  blockedSteps: number;
  sumStepNs: number;
  /** time the host spent in these drains */
  sumDrainNs: number;
  /** serialization: sum over blocked steps of T - max(H, G) */
  sumSerialNs: number;
  sumHostNs: number;
  sumGpuNs: number;
  samples: TopK<number>;
}

export interface CritOff {
  preempted: number;
  voluntary: number;
  io: number;
  other: number;
  preemptedBy: Map<number, number>;
  wokenBy: Map<number, number>;
  preemptSamples: TopK<number>;
  ioSamples: TopK<number>;
  waitSamples: TopK<number>;
}
const zeroCrit = (): CritOff => ({
  preempted: 0, voluntary: 0, io: 0, other: 0, preemptedBy: new Map(), wokenBy: new Map(),
  preemptSamples: new TopK(10), ioSamples: new TopK(10), waitSamples: new TopK(10),
});
primeDoubles(zeroCrit(), ['preempted', 'voluntary', 'io', 'other']);
/** zeroCrit in place (the step's pending split is emptied at every drain: two maps and three lists were garbage per step) */
function clearCrit(k: CritOff): void {
  k.preempted = 0;
  k.voluntary = 0;
  k.io = 0;
  k.other = 0;
  if (k.preemptedBy.size) k.preemptedBy.clear();
  if (k.wokenBy.size) k.wokenBy.clear();
  k.preemptSamples.clear();
  k.ioSamples.clear();
  k.waitSamples.clear();
}
function clearSplit(s: OffSplit): void {
  s.preempted = 0;
  s.voluntary = 0;
  s.io = 0;
  s.other = 0;
}

export interface GpuModel {
  submissions: number;
  submissionNs: number;
  steps: number;
  stepSketch: Sketch;
  stepReservoir: Reservoir;
  stepSumNs: number;
  blockedSteps: number;
  starvedSteps: number;
  starvedLaunches: number;
  starvedLaunchNs: number;
  starvedStepNs: number;
  /** sum of upper-bound busy estimates of blocked steps */
  busyBlockedNs: number;
  busyBlockedLaunches: number;
  /** estimated GPU busy time in host-bound steps (launches x median per-launch time) */
  busyStarvedNs: number;
  perLaunch: Sketch;
  byDrain: Map<string, DrainStat>;
  idleGap: { count: number; total: number; onCpu: number; inCalls: number; off: OffSplit; samples: TopK<number> };
  /** host off-CPU time on the critical path (GPU idle or host-bound step) */
  crit: CritOff;
  /** preemption inside blocked drains after the estimated GPU completion */
  drainPreemptDelayNs: number;
  drainPreemptUpperBound: number;
  drainPreemptSamples: TopK<number>;
  firstSubmitTs: number | null;
  /** first launch -> return of the first drain that made a device-to-host result available */
  ttftNs: number | null;
}

export interface ThreadProfile {
  pid: number;
  tid: number;
  firstTs: number;
  lastEnd: number;
  cudaCalls: number;
  ops: Map<string, OpAgg>;
  offCount: number;
  offTotal: OffSplit;
  offInCalls: OffSplit;
  /** preempted time by who took the CPU (whole thread) */
  preemptedBy: Map<number, number>;
  /** the part of preemptedBy spent runnable right after an I/O wait (its wakeup-to-run span), by who held the CPU */
  afterIoWake: Map<number, number>;
  /** the CPUs it was switched out on (its off-CPU records) */
  cpus: Set<number>;
  /** time in read syscalls that issued block I/O (read_io: whole calls, on- and off-CPU) */
  readIoNs: number;
  gpu: GpuModel;
  /** the reconstructed GPU timeline: idle intervals and who owns each idle nanosecond (timeline.ts) */
  idle: IdleModel;
}

export interface SessionProfile {
  sessionId: number;
  threads: Map<number, ThreadProfile>;
  firstTs: number;
  lastEnd: number;
  cudaCalls: number;
  offCpuEvents: number;
  notes: string[];
  /** events of the session per op code, every op (prescan.ts): a detector skips the scan of an op that never occurs */
  opCounts: Map<number, number>;
  /** block I/O and page-alloc aggregates summed while streaming (stream.ts); absent: the detectors query them */
  hostTotals?: HostTotals;
}

/** chains/common.ts HostAgg's parts that stream.ts sums as it reads (values as SQLite's GROUP BY gives them) */
export interface HostTotals {
  io: Map<number, { n: number; bytes: number; ns: number }>;
  pageWindows: { ts: number; win: number; pages: number }[];
  pagesByPid: Map<number, number>;
}

export interface AttributionOptions {
  /** called for every CUDA call once attributed (streaming; do not retain) */
  onCall?: (c: CallAttribution) => void;
  /** called with the number of events read so far, every 65,536 events */
  onProgress?: (eventsRead: number) => void;
  /** the tracer's cost inside one recorded call by op code (probe-cost.ts: the session's calibration); absent: none taken out */
  probeCost?: ProbeCost | null;
}

interface OpenCall {
  id: number;
  ts: number;
  end: number;
  dur: number;
  pid: number;
  op: number;
  kind: OpKind;
  blocking: boolean;
  direction: number | null;
  bytes: number;
  ret: number;
  off: OffSplit;
  preemptedBy: Map<number, number>;
  wokenBy: Map<number, number>;
  wakeIds: [number, number][];
  nested: boolean;
  role: 'submit' | 'drain' | 'submit_drain' | 'other';
  idleAtStart: boolean;
  /** stream argument of a stream-targeted call (null: the op has none) */
  stream: number | null;  /** event argument of an event wait (null: the op has none) */
  event: number | null;
}

interface OffIv {
  id: number;
  ts: number;
  end: number;
  reason: number;
  by: number;
  waker: number;
}

function newGpu(): GpuModel {
  return {
    submissions: 0, submissionNs: 0, steps: 0, stepSketch: newSketch(), stepReservoir: new Reservoir(2000), stepSumNs: 0,
    blockedSteps: 0, starvedSteps: 0, starvedLaunches: 0, starvedLaunchNs: 0, starvedStepNs: 0,
    busyBlockedNs: 0, busyBlockedLaunches: 0, busyStarvedNs: 0, perLaunch: newSketch(), byDrain: new Map(),
    idleGap: { count: 0, total: 0, onCpu: 0, inCalls: 0, off: zeroSplit(), samples: new TopK(10) },
    crit: zeroCrit(), drainPreemptDelayNs: 0, drainPreemptUpperBound: 0, drainPreemptSamples: new TopK(10),
    firstSubmitTs: null, ttftNs: null,
  };
}
primeDoubles(newGpu(), ['submissionNs', 'stepSumNs', 'starvedLaunchNs', 'starvedStepNs', 'busyBlockedNs', 'busyStarvedNs', 'drainPreemptDelayNs', 'drainPreemptUpperBound']);

function newAgg(key: string, op: number, name: string, kind: OpKind, direction: number | null, firstTs: number, lastEnd: number): OpAgg {
  return {
    key, op, name, kind, direction, count: 0, errors: 0, totalNs: 0,
    onCpuNs: 0, off: zeroSplit(), preemptedBy: new Map(), wokenBy: new Map(), wakeSamples: new Map(), bytes: 0,
    sketch: newSketch(), reservoir: new Reservoir(2000), slowest: new TopK(10), mostPreempted: new TopK(10), firstTs, lastEnd,
  };
}
primeDoubles(newAgg('', 0, '', 'host', null, 0, 0), ['op', 'totalNs', 'onCpuNs', 'bytes', 'firstTs', 'lastEnd']);

function newDrainStat(key: string, op: number, name: string, direction: number | null): DrainStat {
  return { key, op, name, direction, steps: 0, blockedSteps: 0, sumStepNs: 0, sumDrainNs: 0, sumSerialNs: 0, sumHostNs: 0, sumGpuNs: 0, samples: new TopK(10) };
}
primeDoubles(newDrainStat('', 0, '', null), ['op', 'sumStepNs', 'sumDrainNs', 'sumSerialNs', 'sumHostNs', 'sumGpuNs']);

function newSample(id: number, ts: number, dur: number, preempted: number, voluntary: number, io: number): CallSample {
  return { id, ts, dur, preempted, voluntary, io };
}
primeDoubles(newSample(0, 0, 0, 0, 0, 0), ['id', 'ts', 'dur', 'preempted', 'voluntary', 'io']);

export { opKey };

/** shared empty map of a call that was never off-CPU (replaced on first write): one allocation less per call */
const NONE: Map<number, number> = new Map();
/** shared empty wake list of a call that was never woken (replaced on first write) */
const NO_WAKES: [number, number][] = [];

function newCall(id: number, ts: number, end: number, dur: number, pid: number, op: number, kind: OpKind, blocking: boolean, direction: number | null, bytes: number, ret: number, nested: boolean, role: OpenCall['role'], stream: number | null, event: number | null, idleAtStart: boolean): OpenCall {
  return {
    id, ts, end, dur, pid, op, kind, blocking, direction, bytes, ret,
    off: zeroSplit(), preemptedBy: NONE, wokenBy: NONE, wakeIds: NO_WAKES, nested, role, stream, event, idleAtStart,
  };
}
{
  // numbers as doubles; direction, stream and event hold null or a number
  const c = primeDoubles(newCall(0, 0, 0, 0, 0, 0, 'host', false, null, 0, 0, false, 'other', null, null, false), ['id', 'ts', 'end', 'dur', 'pid', 'op', 'bytes', 'ret']);
  c.direction = c.stream = c.event = 0.5;
}

function addSplit(s: OffSplit, reason: number, v: number): void {
  if (reason === 0) s.preempted += v;
  else if (reason === 1) s.voluntary += v;
  else if (reason === 2) s.io += v;
  else s.other += v;
}

function overlap(a0: number, a1: number, b0: number, b1: number): number {
  return Math.max(0, Math.min(a1, b1) - Math.max(a0, b0));
}

/** Per-thread sweep state: fed one thread's events in (ts, id) order (stream.ts releases them so). */
export class ThreadSweep {
  readonly p: ThreadProfile;
  private open: OpenCall[] = [];
  /**
   * Finished calls, reused by call(): an OpenCall, its off-CPU split and the boxes of its numeric fields were about
   * half of the bytes the analysis allocated (~470 B per CUDA call on a 1M-event decode trace). Nothing keeps a
   * finished call (finish() copies what it keeps); with an onCall listener (told not to retain) none is reused.
   */
  private readonly spareCalls: OpenCall[] = [];
  /** p.ops' entries by optables keyIndex */
  private readonly aggAt: (OpAgg | undefined)[] = [];
  private offs: OffIv[] = [];
  /** end of the thread's last off-CPU interval if it was an I/O wait (-1: it was not) */
  private lastIoEnd = -1;
  // queue model
  private pendingSince: number | null = null;
  private stepStart: number | null = null;
  private lastDrainEnd: number | null = null;
  private launchesInStep = 0;
  private launchNsInStep = 0;
  private gapInCalls = 0;
  private gapOff = 0;
  private gapIdle = zeroSplit();
  private pendingCrit = zeroCrit();
  private sawD2H = false;
  private lastD2HBytes = 0;
  /** the first drains that made a device-to-host result available: [return ts, bytes of that result] */
  readonly results: [number, number][] = [];
  /** host time in the current step that other chains own: off-CPU outside calls, other CUDA calls */
  private stepExcl = 0;
  private tl: Timeline;

  constructor(pid: number, tid: number, ts: number, private readonly opts: AttributionOptions, private readonly copyRate: Map<string, number> = new Map(), fastest: Map<number, number> = new Map(), priorKernelNs: number | null = null, private readonly firstLaunch: Map<number, number> = new Map(), priorSamples = 0) {
    this.tl = new Timeline(copyRate, fastest, priorKernelNs, pid, priorSamples);
    this.tl.probeCost = opts.probeCost ?? null;
    this.p = {
      pid, tid, firstTs: ts, lastEnd: ts, cudaCalls: 0, ops: new Map(), offCount: 0,
      offTotal: zeroSplit(), offInCalls: zeroSplit(), preemptedBy: new Map(), afterIoWake: new Map(), cpus: new Set(), readIoNs: 0, gpu: newGpu(), idle: this.tl.m,
    };
    doubleFields(this, ['lastIoEnd', 'launchNsInStep', 'gapInCalls', 'gapOff', 'stepExcl', 'lastD2HBytes']);
  }

  event(id: number, ts: number, dur: number, pid: number, op: number, ret: number, a: number[]): void {
    this.prune(ts);
    const end = ts + dur;
    if (end > this.p.lastEnd) this.p.lastEnd = end;
    if (op === OFF_CPU) {
      this.p.cpus.add(offCpuCpu(a[3]));
      this.offCpu({ id, ts, end, reason: a[0], by: a[1], waker: a[2] }, dur);
    }
    else if (op === RECLAIM) this.tl.reclaimStall(id, ts, end);
    else if (op === BLOCK_IO) this.tl.blockIo(id, ts, end, a[3] === 1);
    else if (op === READ_IO) {
      // a read syscall that issued block I/O: its on-CPU work around the requests (pinning pages, building them,
      // completion work) is I/O as much as the requests' own time, so the whole call joins them on the timeline
      this.p.readIoNs += dur;
      this.tl.blockIo(id, ts, end);
    }
    else this.call(id, ts, dur, pid, op, ret, a);
  }

  private offCpu(iv: OffIv, dur: number): void {
    const p = this.p;
    p.offCount++;
    addSplit(p.offTotal, iv.reason, dur);
    if (iv.reason === 0) {
      addTo(p.preemptedBy, iv.by, dur);
      if (this.lastIoEnd >= 0 && Math.abs(iv.ts - this.lastIoEnd) < WAKE_SPLIT_NS) addTo(p.afterIoWake, iv.by, dur);
    }
    this.lastIoEnd = iv.reason === 2 ? iv.end : -1;
    this.tl.off(iv.id, iv.ts, iv.end, iv.reason, iv.by, iv.waker);
    let covered = 0;
    for (const c of this.open) {
      const ov = overlap(c.ts, c.end, iv.ts, iv.end);
      if (ov <= 0) continue;
      this.attribute(c, iv, ov);
      // submissions are host work: their off-CPU time counts like time outside calls
      if (c.role !== 'submit' && !c.nested) covered = Math.max(covered, ov);
    }
    const outside = dur - covered;
    if (outside > 0) this.outsideOff(iv, outside);
    this.offs.push(iv);
  }

  private attribute(c: OpenCall, iv: OffIv, ov: number): void {
    addSplit(c.off, iv.reason, ov);
    if (!c.nested) addSplit(this.p.offInCalls, iv.reason, ov);
    if (iv.reason === 0) {
      if (c.preemptedBy === NONE) c.preemptedBy = new Map();
      addTo(c.preemptedBy, iv.by, ov);
    } else if (iv.waker > 0) {
      if (c.wokenBy === NONE) c.wokenBy = new Map();
      addTo(c.wokenBy, iv.waker, ov);
      if (c.wakeIds === NO_WAKES) c.wakeIds = [];
      if (c.wakeIds.length < 64) c.wakeIds.push([iv.waker, iv.id]);
    }
  }

  /** Off-CPU time outside (non-submission) CUDA calls: critical when the GPU is idle. */
  private outsideOff(iv: OffIv, v: number): void {
    this.stepExcl += v;
    // before the thread's first submission there is no GPU work to starve (process start-up, library loading)
    if (this.p.gpu.firstSubmitTs === null) return;
    if (this.pendingSince === null) {
      if (this.lastDrainEnd !== null) {
        this.gapOff += v;
        addSplit(this.gapIdle, iv.reason, v);
      }
      addCrit(this.p.gpu.crit, iv, v);
    } else {
      addCrit(this.pendingCrit, iv, v);
    }
  }

  private call(id: number, ts: number, dur: number, pid: number, op: number, ret: number, a: number[]): void {
    const info = OP_INFO[op];
    const kind: OpKind = info?.kind ?? 'host';
    const blocking = info?.blocking ?? false;
    // cudaMemcpyKind is 0..4; anything else (a corrupt or hostile trace) is no direction, so it cannot mint a
    // new per-op key (and its state) per call
    const directionRaw = slot(SLOT_DIRECTION, op, a);
    const direction = directionRaw !== null && directionRaw >= 0 && directionRaw <= 4 ? directionRaw : null;
    const end = ts + dur;
    let nested = false;
    for (let i = 0; i < this.open.length; i++) if (this.open[i].ts <= ts && this.open[i].end >= end) nested = true;
    let role: OpenCall['role'] = 'other';
    if (kind === 'sync') role = 'drain';
    else if ((kind === 'copy' || kind === 'memset') && blocking) role = 'submit_drain';
    else if (kind === 'launch' || kind === 'copy' || kind === 'memset' || kind === 'collective') role = 'submit';
    const bytes = slot(SLOT_BYTES, op, a) ?? 0;
    const stream = slot(SLOT_STREAM, op, a);
    const event = kind === 'sync' ? slot(SLOT_EVENT, op, a) : null;
    const idleAtStart = this.pendingSince === null && this.lastDrainEnd !== null;
    let c = this.spareCalls.pop();
    if (c === undefined) {
      c = newCall(id, ts, end, dur, pid, op, kind, blocking, direction, bytes, ret, nested, role, stream, event, idleAtStart);
    } else {
      c.id = id;
      c.ts = ts;
      c.end = end;
      c.dur = dur;
      c.pid = pid;
      c.op = op;
      c.kind = kind;
      c.blocking = blocking;
      c.direction = direction;
      c.bytes = bytes;
      c.ret = ret;
      const o = c.off;
      o.preempted = 0;
      o.voluntary = 0;
      o.io = 0;
      o.other = 0;
      c.preemptedBy = NONE;
      c.wokenBy = NONE;
      c.wakeIds = NO_WAKES;
      c.nested = nested;
      c.role = role;
      c.stream = stream;
      c.event = event;
      c.idleAtStart = idleAtStart;
    }
    // off-CPU intervals that started before the call (clock noise at the boundary)
    for (const iv of this.offs) {
      const ov = overlap(ts, end, iv.ts, iv.end);
      if (ov > 0) this.attribute(c, iv, ov);
    }
    if (!nested && (role === 'submit' || role === 'submit_drain')) this.submit(c);
    // a graph launch is one submission of the whole graph: its GPU time is learned per graph exec
    const exec = kind === 'launch' ? slot(SLOT_GRAPH_EXEC, op, a) : null;
    if (!nested) this.tl.call(id, ts, end, op, keyOf(op, kind === 'copy' ? direction : null), roleAt(op), c.bytes, direction, c.stream ?? 0, exec !== null ? `g${exec}` : '', this.firstLaunch.size ? this.firstLaunch.get(id) ?? 0 : 0);
    // an event record marks how far into the thread's queue a later wait on that event reaches (timeline.ts)
    if (!nested && kind === 'record') {
      const ev = slot(SLOT_EVENT, op, a);
      if (ev !== null && ev !== 0) this.tl.eventRecord(ev, c.stream ?? 0);
    }
    this.open.push(c);
    this.p.cudaCalls++;
  }

  private submit(c: OpenCall): void {
    const g = this.p.gpu;
    if (g.firstSubmitTs === null) g.firstSubmitTs = c.ts;
    g.submissions++;
    if (c.role === 'submit') g.submissionNs += c.dur;
    if (this.pendingSince === null) {
      this.pendingSince = c.ts;
      if (this.stepStart === null) this.stepStart = c.ts;
      if (this.lastDrainEnd !== null) {
        const gap = Math.max(0, c.ts - this.lastDrainEnd);
        const gi = g.idleGap;
        gi.count++;
        gi.total += gap;
        gi.inCalls += Math.min(gap, this.gapInCalls);
        gi.off.preempted += this.gapIdle.preempted;
        gi.off.voluntary += this.gapIdle.voluntary;
        gi.off.io += this.gapIdle.io;
        gi.off.other += this.gapIdle.other;
        gi.onCpu += Math.max(0, gap - this.gapInCalls - this.gapOff);
        gi.samples.add(gap, c.id);
      }
      this.gapInCalls = 0;
      this.gapOff = 0;
      clearSplit(this.gapIdle);
    }
    if (c.role === 'submit') {
      this.launchesInStep++;
      this.launchNsInStep += c.dur;
    } else this.launchesInStep++;
  }

  private prune(now: number): void {
    const open = this.open;
    if (open.length) {
      let due = false;
      for (let i = 0; i < open.length; i++) if (open[i].end <= now) due = true;
      if (due && open.length === 1) {
        // the usual case (one call at a time per thread): no filtering, no new arrays (pop, not length = 0, which
        // frees the array's storage, so that the next call's push allocated it again)
        const c = open.pop()!;
        this.finish(c);
        this.recycle(c);
      } else if (due) {
        const done = open.filter((c) => c.end <= now).sort((x, y) => x.end - y.end);
        this.open = open.filter((c) => c.end > now);
        for (const c of done) {
          this.finish(c);
          this.recycle(c);
        }
      }
    }
    const offs = this.offs;
    if (offs.length) {
      let w = 0;
      for (let i = 0; i < offs.length; i++) if (offs[i].end > now) offs[w++] = offs[i];
      while (offs.length > w) offs.pop();
    }
  }

  /**
   * Take over the GPU timeline of `other`, a sweep of the same events so far that started with a kernel-time
   * prior (stream.ts: the bounded replacement of the second sweep over threads whose first segments closed
   * before any kernel time was learned). Sound because nothing in this sweep reads the timeline's state: from
   * here on both would receive the same calls.
   */
  adoptTimeline(other: ThreadSweep): void {
    this.tl = other.tl;
    this.p.idle = other.tl.m;
  }

  flush(): ThreadProfile {
    this.prune(Number.POSITIVE_INFINITY);
    this.tl.finish(this.p.preemptedBy);
    this.p.gpu.ttftNs = firstToken(this.results, this.p.gpu.firstSubmitTs);
    return this.p;
  }

  private recycle(c: OpenCall): void {
    if (this.opts.onCall === undefined && this.spareCalls.length < 64) this.spareCalls.push(c);
  }

  private finish(c: OpenCall): void {
    const p = this.p;
    const direction = c.kind === 'copy' ? c.direction : null;
    const key = keyOf(c.op, direction);
    // p.ops by interned key index (a string-keyed Map look-up per call otherwise)
    const ki = keyIndex(c.op, direction);
    let agg = ki >= 0 ? this.aggAt[ki] : p.ops.get(key);
    if (!agg) {
      const info = OP_INFO[c.op];
      agg = newAgg(key, c.op, info?.name ?? `op_${c.op}`, info?.kind ?? 'host', direction, c.ts, c.end);
      p.ops.set(key, agg);
      if (ki >= 0) this.aggAt[ki] = agg;
    }
    const offSum = c.off.preempted + c.off.voluntary + c.off.io + c.off.other;
    const onCpu = Math.max(0, c.dur - offSum);
    agg.count++;
    if (c.ret !== 0) agg.errors++;
    agg.totalNs += c.dur;
    agg.onCpuNs += onCpu;
    agg.off.preempted += c.off.preempted;
    agg.off.voluntary += c.off.voluntary;
    agg.off.io += c.off.io;
    agg.off.other += c.off.other;
    // most calls were never off-CPU: no iterators over the shared empty map and list
    if (c.preemptedBy !== NONE) for (const [k, v] of c.preemptedBy) addTo(agg.preemptedBy, k, v);
    if (c.wokenBy !== NONE) for (const [k, v] of c.wokenBy) addTo(agg.wokenBy, k, v);
    if (c.wakeIds !== NO_WAKES)
      for (const [w, id] of c.wakeIds) {
        let l = agg.wakeSamples.get(w);
        if (!l) agg.wakeSamples.set(w, (l = []));
        if (l.length < 10) l.push(id);
      }
    agg.bytes += c.bytes;
    agg.sketch.accept(c.dur);
    agg.reservoir.add(c.dur);
    const keepSlow = agg.slowest.wants(c.dur);
    const keepPre = c.off.preempted > 0 && agg.mostPreempted.wants(c.off.preempted);
    if (keepSlow || keepPre) {
      const sample = newSample(c.id, c.ts, c.dur, c.off.preempted, c.off.voluntary, c.off.io);
      if (keepSlow) agg.slowest.add(c.dur, sample);
      if (keepPre) agg.mostPreempted.add(c.off.preempted, sample);
    }
    if (c.ts < agg.firstTs) agg.firstTs = c.ts;
    if (c.end > agg.lastEnd) agg.lastEnd = c.end;
    if (!c.nested) {
      const tr = roleAt(c.op);
      if (tr === 'drain' || tr === 'submit_drain') {
        const rate = tr === 'submit_drain' ? this.copyRate.get(rateKey(c.op, c.direction)) : undefined;
        this.tl.drain(c.id, c.ts, c.end, key, rate !== undefined && c.bytes > 0 ? Math.min(c.dur, rate * c.bytes) : 0, c.stream, c.op, tr === 'submit_drain', c.event);
      }
      if (c.kind === 'poll') this.tl.poll(c.id, c.ts, c.end, key, c.ret);
      if (c.role === 'drain' || c.role === 'submit_drain') this.drain(c, key);
      else if (c.role === 'other') {
        if (c.idleAtStart) this.gapInCalls += c.dur;
        this.stepExcl += c.dur;
      }
      if (direction === D2H) {
        this.sawD2H = true;
        this.lastD2HBytes = c.bytes;
      }
    }
    if (this.opts.onCall) this.opts.onCall({
      id: c.id, ts: c.ts, dur: c.dur, pid: c.pid, tid: p.tid, op: c.op, direction, onCpu, off: c.off, preemptedBy: c.preemptedBy, wokenBy: c.wokenBy,
    });
  }

  /** A drain returned: close the step if work was pending. */
  private drain(c: OpenCall, key: string): void {
    const g = this.p.gpu;
    if (this.pendingSince === null) {
      if (c.idleAtStart) this.gapInCalls += c.dur;
      return;
    }
    const stepStart = this.stepStart ?? this.pendingSince;
    const T = Math.max(0, c.end - stepStart);
    // a synchronous copy spends its own transfer time even on an empty queue: it blocked on queued
    // work only if it took DRAIN_BLOCK_NS longer than its fastest rate for these bytes (copyRates), beyond that own time's slack
    const rate = c.role === 'submit_drain' ? this.copyRate.get(rateKey(c.op, c.direction)) : undefined;
    const ownNs = rate !== undefined && c.bytes > 0 ? Math.min(c.dur, rate * c.bytes) : 0;
    const blocked = c.dur - ownNs * (1 + OWN_TRANSFER_SLACK) >= DRAIN_BLOCK_NS;
    const launches = this.launchesInStep;
    let gpuNs: number;
    let hostNs = T - c.dur;
    const drainPre = c.off.preempted;
    if (blocked) {
      gpuNs = c.end - this.pendingSince;
      if (drainPre > 0) {
        // preempted while draining: only the part after the GPU finished delayed the return
        let delay = drainPre;
        if (g.perLaunch.count >= 3 && launches > 0) {
          const expectedDone = this.pendingSince + launches * q(g.perLaunch, 0.5);
          delay = Math.min(drainPre, Math.max(0, c.end - Math.max(expectedDone, c.ts)));
        } else g.drainPreemptUpperBound++;
        if (delay > 0) {
          g.drainPreemptDelayNs += delay;
          g.drainPreemptSamples.add(delay, c.id);
          for (const [pid, v] of c.preemptedBy) addTo(g.crit.preemptedBy, pid, (v * delay) / drainPre);
        }
        gpuNs -= delay;
      } else if (launches > 0) g.perLaunch.accept(Math.max(0, gpuNs - ownNs) / launches);
      g.blockedSteps++;
      g.busyBlockedNs += gpuNs;
      g.busyBlockedLaunches += launches;
      // host work before the drain overlapped GPU work: its off-CPU time was not critical
    } else {
      gpuNs = -1; // estimated after the pass
      g.starvedSteps++;
      g.starvedLaunches += launches;
      g.starvedLaunchNs += this.launchNsInStep;
      g.starvedStepNs += T;
      hostNs = T;
      mergeCrit(g.crit, this.pendingCrit);
    }
    let d = g.byDrain.get(key);
    if (!d) {
      d = newDrainStat(key, c.op, OP_INFO[c.op]?.name ?? `op_${c.op}`, c.kind === 'copy' ? c.direction : null);
      g.byDrain.set(key, d);
    }
    d.steps++;
    d.sumStepNs += T;
    d.sumDrainNs += c.dur;
    if (blocked) {
      // serialization: what overlapping host and GPU work would have saved in this step. Only host
      // computation counts: host time off-CPU or in other CUDA calls is owned by other chains.
      // A synchronous copy's own transfer (ownNs) is what an asynchronous copy overlaps with the next
      // step's host and compute work: it is serialization too.
      const hostCpu = Math.max(0, hostNs - this.stepExcl);
      const serial = Math.max(0, Math.min(hostCpu + ownNs, T - Math.max(hostNs, gpuNs - ownNs)));
      d.blockedSteps++;
      d.sumSerialNs += serial;
      d.sumHostNs += hostNs;
      d.sumGpuNs += gpuNs;
      d.samples.add(c.dur, c.id);
    }
    g.steps++;
    g.stepSumNs += T;
    g.stepSketch.accept(T);
    g.stepReservoir.add(T);
    if (g.firstSubmitTs !== null && (this.sawD2H || c.direction === D2H) && this.results.length < RESULT_SAMPLES)
      this.results.push([c.end, c.direction === D2H ? c.bytes : this.lastD2HBytes]);
    this.pendingSince = null;
    // merged into g.crit above or dropped: nothing else holds it
    clearCrit(this.pendingCrit);
    this.stepExcl = 0;
    this.stepStart = c.end;
    this.lastDrainEnd = c.end;
    this.launchesInStep = 0;
    this.launchNsInStep = 0;
    this.gapInCalls = 0;
    this.gapOff = 0;
    clearSplit(this.gapIdle);
  }
}

const RESULT_SAMPLES = 64;

/**
 * Time to first token: first submission -> the first device-to-host result of the steady state. A
 * prefill can copy results back per chunk (larger: a row per prompt token) before the first token;
 * the decode steps then copy same-sized results, so the first result whose size is the most common
 * one among the first RESULT_SAMPLES results marks the first token (ties: the smaller size).
 */
function firstToken(results: [number, number][], firstSubmit: number | null): number | null {
  if (firstSubmit === null || results.length === 0) return null;
  const n = new Map<number, number>();
  for (const [, b] of results) n.set(b, (n.get(b) ?? 0) + 1);
  let mode = results[0][1];
  for (const [b, k] of n) if (k > n.get(mode)! || (k === n.get(mode)! && b < mode)) mode = b;
  const r = results.length >= 3 ? results.find(([, b]) => b === mode)! : results[0];
  return r[0] - firstSubmit;
}

function addCrit(k: CritOff, iv: OffIv, v: number): void {
  addSplit(k, iv.reason, v);
  if (iv.reason === 0) {
    addTo(k.preemptedBy, iv.by, v);
    k.preemptSamples.add(v, iv.id);
  } else {
    if (iv.waker > 0) addTo(k.wokenBy, iv.waker, v);
    if (iv.reason === 2) k.ioSamples.add(v, iv.id);
    else k.waitSamples.add(v, iv.id);
  }
}

function mergeCrit(into: CritOff, from: CritOff): void {
  into.preempted += from.preempted;
  into.voluntary += from.voluntary;
  into.io += from.io;
  into.other += from.other;
  for (const [k, v] of from.preemptedBy) addTo(into.preemptedBy, k, v);
  for (const [k, v] of from.wokenBy) addTo(into.wokenBy, k, v);
  for (const x of from.preemptSamples.items) into.preemptSamples.add(x.score, x.item);
  for (const x of from.ioSamples.items) into.ioSamples.add(x.score, x.item);
  for (const x of from.waitSamples.items) into.waitSamples.add(x.score, x.item);
}

/** What the sweep reads of an event: one row, columns as SQLite gives them (NULL arguments as null). */
type RowFn = (id: number, ts: number, dur: number, pid: number, tid: number, op: number, ret: number | null, a0: number | null, a1: number | null, a2: number | null, a3: number | null) => void;

const SWEEP_COLS = 'id, ts, dur, pid, tid, op, ret, a0, a1, a2, a3';
/** the events the sweep reads: CUDA calls (op < 128), off-CPU intervals, block I/O, reclaim stalls */
const SWEEP_OPS = '(op <= 128 OR op = 134 OR op = 136)';

/**
 * Call `fn` for every row of `SELECT SWEEP_COLS FROM events WHERE <where> ORDER BY <order>`, in that order.
 *
 * The rows reach JS as the arguments of a user-defined aggregate whose ORDER BY (SQLite >= 3.44: the order in
 * which an aggregate is fed) is the sweep's order: one call from SQLite into JS per row. better-sqlite3's
 * iterate() builds a row array per row and crosses the iterator protocol: on the 1M-event bench fixture the
 * sorted read took 2.15 s of CPU through iterate() and 1.32 s through the aggregate, and the JS sweep itself
 * allocates less (no row arrays to collect). An SQLite without aggregate ORDER BY falls back to iterate().
 */
function scanOrdered(db: Db, where: string, order: string, params: unknown[], fn: RowFn): void {
  // one name, registered again for each scan (SQLite replaces the function; scans do not nest)
  const name = 'cw_sweep_rows';
  let stmt;
  try {
    db.aggregate(name, {
      start: 0,
      step: ((_acc: number, id: number, ts: number, dur: number, pid: number, tid: number, op: number, ret: number | null, a0: number | null, a1: number | null, a2: number | null, a3: number | null) => {
        fn(id, ts, dur, pid, tid, op, ret, a0, a1, a2, a3);
      }) as unknown as (acc: number, next: number) => void,
    });
    stmt = db.prepare(`SELECT ${name}(${SWEEP_COLS} ORDER BY ${order}) FROM events WHERE ${where}`);
  } catch {
    stmt = undefined; // SQLite before 3.44 (no ORDER BY in aggregates): the row iterator below
  }
  if (stmt) {
    // SQLite's sorter may merge its sorted runs on auxiliary threads (PRAGMA threads: 0 by default), so a
    // sort too large for its memory (a few million events) uses the second core; the order is the same
    const threads = db.pragma('threads', { simple: true }) as number;
    if (threads < 2) db.pragma('threads = 2');
    try {
      stmt.get(...params);
    } finally {
      if (threads < 2) db.pragma(`threads = ${Number(threads) | 0}`);
    }
    return;
  }
  for (const r of db.prepare(`SELECT ${SWEEP_COLS} FROM events WHERE ${where} ORDER BY ${order}`).raw(true).iterate(...params) as Iterable<number[]>)
    fn(r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8], r[9], r[10]);
}

/**
 * Stream every CUDA call and off-CPU interval of a session, ordered by (tid, ts),
 * and build the per-thread profile. Memory: O(threads x ops), not O(events).
 */
export function attributeSessionSorted(db: Db, sessionId: number, opts: AttributionOptions = {}): SessionProfile {
  const { rates, fastest, first, opCounts } = prescan(db, sessionId);
  const prof: SessionProfile = { sessionId, threads: new Map(), firstTs: Infinity, lastEnd: 0, cudaCalls: 0, offCpuEvents: 0, notes: [], opCounts };
  let cur: ThreadSweep | null = null;
  let curTid = -1;
  const a = [0, 0, 0, 0];
  const finishThread = () => {
    if (!cur) return;
    const t = cur.flush();
    if (t.cudaCalls > 0 || t.offCount > 0) prof.threads.set(t.tid, t);
  };
  let read = 0;
  const onProgress = opts.onProgress;
  scanOrdered(db, `session_id = ? AND ${SWEEP_OPS}`, 'tid, ts, id', [sessionId], (id, ts, rawDur, pid, tid, op, ret, a0, a1, a2, a3) => {
    if ((++read & 0xffff) === 0) onProgress?.(read);
    if (tid !== curTid) {
      finishThread();
      cur = new ThreadSweep(pid, tid, ts, opts, rates.get(tid), fastest.get(tid), null, first);
      curTid = tid;
    }
    a[0] = a0 ?? 0;
    a[1] = a1 ?? 0;
    a[2] = a2 ?? 0;
    a[3] = a3 ?? 0;
    const dur = Math.max(0, rawDur ?? 0);
    if (ts < prof.firstTs) prof.firstTs = ts;
    if (ts + dur > prof.lastEnd) prof.lastEnd = ts + dur;
    if (op === OFF_CPU) prof.offCpuEvents++;
    else if (op !== RECLAIM && op !== BLOCK_IO) prof.cudaCalls++;
    cur!.event(id, ts, dur, pid, op, ret ?? 0, a);
  });
  finishThread();
  // Segments closed before the thread's first waiting drain had no kernel time yet (idle counted as an upper
  // bound): such threads are swept once more with the kernel time the whole thread taught (one query per
  // thread; calls are not reported twice).
  for (const t of [...prof.threads.values()]) {
    if (t.idle.unlearnedSegments === 0 || t.idle.kernelNs.count === 0) continue;
    const prior = q(t.idle.kernelNs, 0.5);
    const again = new ThreadSweep(t.pid, t.tid, t.firstTs, { probeCost: opts.probeCost }, rates.get(t.tid), fastest.get(t.tid), prior, first);
    scanOrdered(db, `session_id = ? AND tid = ? AND ${SWEEP_OPS}`, 'ts, id', [sessionId, t.tid], (id, ts, rawDur, pid, _tid, op, ret, a0, a1, a2, a3) => {
      a[0] = a0 ?? 0;
      a[1] = a1 ?? 0;
      a[2] = a2 ?? 0;
      a[3] = a3 ?? 0;
      again.event(id, ts, Math.max(0, rawDur ?? 0), pid, op, ret ?? 0, a);
    });
    t.idle = again.flush().idle;
  }
  settleProfile(prof);
  return prof;
}

/** What is settled once every thread is swept: the session's bounds, GPU busy time in host-bound steps. */
export function settleProfile(prof: SessionProfile): void {
  if (!Number.isFinite(prof.firstTs)) prof.firstTs = 0;
  // GPU busy in host-bound steps: launches x median per-launch GPU time from blocked steps
  for (const t of prof.threads.values()) {
    const g = t.gpu;
    if (g.starvedSteps > 0 && g.perLaunch.count > 0) g.busyStarvedNs = Math.min(g.starvedStepNs, g.starvedLaunches * q(g.perLaunch, 0.5));
  }
}

/** Threads that submit GPU work, most submissions first. */
export function gpuThreads(prof: SessionProfile): ThreadProfile[] {
  return [...prof.threads.values()].filter((t) => t.gpu.submissions > 0 || t.cudaCalls > 0).sort((x, y) => y.gpu.submissions - x.gpu.submissions || y.cudaCalls - x.cudaCalls);
}

/** GPU busy/idle estimate of one thread's queue, with how it was estimated. */
export function gpuEstimate(t: ThreadProfile): { busyNs: number; idleNs: number; spanNs: number; method: string } {
  const g = t.gpu;
  const spanNs = g.firstSubmitTs === null ? 0 : Math.max(0, t.lastEnd - g.firstSubmitTs);
  const busyNs = Math.min(spanNs, g.busyBlockedNs + g.busyStarvedNs);
  return {
    busyNs,
    idleNs: Math.max(0, spanNs - busyNs),
    spanNs,
    method:
      `from the host timeline: ${g.blockedSteps} steps ended in a drain that blocked (GPU assumed busy from the step's first submission to the drain's return, an upper bound), ` +
      `${g.starvedSteps} ended in a drain that returned within ${DRAIN_BLOCK_NS / 1000} µs (queue already empty; busy = launches x median per-launch GPU time of blocked steps${g.perLaunch.count ? '' : ', unknown here: counted as 0'})`,
  };
}
