/**
 * The GPU timeline of one host thread, reconstructed from what the host sees,
 * and the attribution of every GPU idle interval to what that thread did in it.
 *
 * Model (per GPU-feeding thread; its submissions form one queue):
 *  - A submission (launch, async copy/memset, graph launch, cuBLAS GEMM: op
 *    kind 'launch', or a non-blocking 'copy'/'memset', or an NCCL collective)
 *    enqueues work when its call returns. GEMMs count as kernels of the
 *    segment (uniform duration class): their time is learned from the drains
 *    like any kernel's.
 *  - Work runs in order, back to back, as soon as it is enqueued: the queue's
 *    completion is F = max_k (s_k + sum_{j>=k} dur_j).
 *  - A "segment" is the work enqueued since the queue was last known empty. It
 *    ends at a drain (stream/event/device sync, blocking copy/memset, a free
 *    that synchronizes) called while work was pending:
 *      * the drain waited (beyond its own transfer, longer than the op's fastest
 *        call in the thread + NOISE_NS): the queue completed when it returned
 *        (a synchronous copy's own transfer is queued work of the stream; if
 *        the thread waited for the CPU after the wakeup, the completion is the
 *        wakeup; if it was preempted while spinning, the later of the
 *        preemption's start and the duration model's estimate, not measured
 *        while the model has no kernel time);
 *      * the drain returned at once: the queue was already empty, completion is
 *        at or before the drain's entry (estimated with the kernel duration
 *        learned from waiting drains, capped by the entry).
 *    A wait on an event covers the queue only up to the event's record: the
 *    work queued after the record stays pending behind that completion (a
 *    pipelined loop is never idle after such a wait), and host work after a
 *    partial wait that waited is serialized behind it (the wait owns the idle
 *    time where the rest of the queue runs dry before the next submission).
 *  - The thread's idle intervals are kept (bounded) so that a process's GPU
 *    threads can be merged into one GPU (queues.ts).
 *  - Kernel duration: inferred per segment from its completion (an upper bound: the host learns of it late).
 *    A drain that found the queue empty bounds it too (the segment's kernels were done by its return): that
 *    bound caps its own segment, and a low quantile of such bounds caps the learned estimate, so one late
 *    return cannot stretch every estimated segment's kernels over the host gaps. With uniform
 *    kernels F(d) = r gives d = min_k (r - s_k - D_k) / M_k (M_k kernels and D_k
 *    fixed-time async copies from k on); async copies take bytes x the fastest
 *    rate seen for synchronous copies of that direction (else they count as a
 *    kernel). Segments without a waiting drain use the median d of the waiting
 *    ones (no estimate: d = 0, which makes idle an upper bound). A completion
 *    that only kernels running at exactly the host's submission rate explain
 *    (a launch-bound loop whose sync returned a few µs late) teaches nothing.
 *  - After a drain, the drain's return path past the completion is time in
 *    that call, not host work the drain serialized. (The thread's call-to-call
 *    transition was also taken out for a session; it then read as host
 *    computation in a poll loop that computes nothing, so it stays the drain's.)
 *  - Idle intervals: before each segment's first submission (from the previous
 *    completion) and where the simulated queue ran dry inside a segment. A
 *    blocking copy's own transfer counts as idle compute time owned by that
 *    copy: an asynchronous copy would overlap it with the next step.
 *
 * Each idle nanosecond is given to exactly one cause, from the thread's
 * activity in the interval: preempted (by whom) > reclaim > I/O wait >
 * voluntary wait inside a CUDA call (that call's cause) or outside (by waker)
 * > on-CPU inside a CUDA call (by the call's kind) > on-CPU outside calls: host
 * computation, owned by the blocking drain that opened the interval (it
 * serialized that work) or, when the queue ran dry by itself, by the host.
 * The probes' own cost around each call (inside the record and the traps
 * outside it, calibrated at trace start) is the tracer's, taken out first.
 * A runnable span right after a wakeup, while the waker holds the CPU, is
 * still the wait for the waker (a loader handing over data), not preemption.
 *
 * State is bounded by one segment's submissions and activity (a few per step).
 */
import { OP_BY_CODE, type OpInfo, type OpKind } from '../common/ops.js';
import { TopK, addTo, newSketch, q, type Sketch } from './stats.js';
import { OP_INFO, rateKey } from './optables.js';
import { doubleFields, primeDoubles } from './shape.js';
import type { ProbeCost } from './probe-cost.js';

/** An empty-queue drain returns within this (uprobe and driver cost): a faster fastest call is the empty-queue cost. */
export const DRAIN_BLOCK_NS = 50_000;
/**
 * A drain waited for the GPU when it took longer than the fastest call of its op in the same thread (an
 * empty-queue return) by more than this: timer and uprobe jitter on a loaded host are a few µs.
 */
export const NOISE_NS = 10_000;
/**
 * A synchronous copy's own transfer is estimated from the fastest rate seen for it (a lower bound): the same
 * transfer on an empty queue takes longer at times (pageable staging, page faults, the driver's wait slack).
 * Waiting beyond its own transfer counts only past this fraction of it more; below that, the excess says
 * nothing about queued work, and taking it as a completion stretches the queued kernels over the host gap
 * before the copy (I/O waits, page touching) and hides that gap's idle time.
 */
export const OWN_TRANSFER_SLACK = 0.5;
/**
 * A runnable interval that starts within this of the end of a sleep is the same sleep's wakeup-to-run span
 * (the BPF side closes the sleep at the wakeup and opens the runnable interval at the same instant; 1 µs
 * covers clock reads on two CPUs), as in drain()'s wakeup rule.
 */
export const WAKE_SPLIT_NS = 1000;
/** IdleModel.afterWake's key for the runnable spans that follow an I/O wait (its waker is an interrupt context, not a pid) */
export const WAKE_IO = -1;
/**
 * Every empty-queue bound is at or above the true (uniform) kernel time, so the tightest ones are the best
 * estimate; the 10th percentile rather than the minimum, so that one segment of unusually short kernels (the
 * uniform model's exception) does not set the time for all.
 */
const EMPTY_BOUND_Q = 0.1;
/**
 * cap on the event records remembered (distinct event handles; a loop reuses a few). Beyond it they are forgotten
 * and a wait on one drains the whole queue, as before events were tracked.
 */
const MAX_EVENTS = 4096;
/**
 * idle intervals kept per queue for merging a process's queues (IV_STRIDE numbers each: 14 MB at the cap). A launch-bound
 * loop opens one per launch; beyond the cap the merge falls back to each thread's own view.
 */
const MAX_IVS = 1 << 18;
/** numbers per kept idle interval (IdleModel.ivs) */
export const IV_STRIDE = 7;
/** numbers per kept runnable span (IdleModel.ready) */
export const READY_STRIDE = 3;
/** numbers per chunk of kept idle intervals (4,096 intervals, 224 KiB) */
const IV_CHUNK = IV_STRIDE * 4096;
/** cap on one segment's buffered submissions/activity; beyond it the segment is closed by estimate */
const MAX_SEGMENT = 1 << 16;
/** acts longer than this (1 ms) are indexed apart so that windows need not reach back over them (see longActs) */
const LONG_ACT_NS = 1_000_000;
/** acts per blockEnd entry */
const ACT_SHIFT = 5;
const ACT_BLOCK = 1 << ACT_SHIFT;
/** cudaErrorNotReady / CUDA_ERROR_NOT_READY: a completion query found work still pending */
export const NOT_READY = 600;
const DEBUG = process.env.CAUSEWAY_DEBUG_TIMELINE === '1';

export type Role = 'submit' | 'drain' | 'submit_drain' | 'other';

/** Queue role of an op, from the op table's kind and blocking flag (not from op names). */
export function roleOf(info: OpInfo | undefined): Role {
  if (!info) return 'other';
  const k: OpKind | string = info.kind;
  if (k === 'sync') return 'drain';
  if (k === 'free') return info.blocking ? 'drain' : 'other';
  if (k === 'copy' || k === 'memset') return info.blocking ? 'submit_drain' : 'submit';
  if (k === 'launch') return 'submit';
  // an NCCL collective enqueues its kernel on a stream like a launch (its host-side wait for other ranks is not launch cost)
  if (k === 'collective') return 'submit';
  return 'other';
}

/** roleOf by op code, for the codes of the op table (a few string compares per call otherwise) */
const ROLES: Role[] = [];
for (let op = 0; op < OP_INFO.length; op++) ROLES[op] = roleOf(OP_INFO[op]);

/** roleOf(OP_INFO[op]) */
export function roleAt(op: number): Role {
  return (Number.isInteger(op) && op >= 0 && op < ROLES.length ? ROLES[op] : undefined) ?? roleOf(OP_INFO[op]);
}

/** Where idle time went, for one thread. All values ns on the critical path (GPU idle). */
export interface DrainIdle {
  key: string;
  op: number;
  name: string;
  direction: number | null;
  /** idle intervals opened by this drain's return */
  gaps: number;
  /** of those, intervals where the rest of the queue behind a partial wait (an event recorded mid-queue) ran dry in the host work after it */
  partialGaps: number;
  /** host computation after it, before the next submission (as far as the GPU's work could have overlapped it) */
  hostNs: number;
  /** host computation after it beyond what the GPU's work could have overlapped (capSerialization: host_compute's) */
  cappedNs: number;
  /** time inside calls of this op while the GPU was idle (own transfer of a blocking copy, syncs on an empty queue) */
  ownNs: number;
  samples: TopK<number>;
}

export interface IdleModel {
  /** idle intervals counted, and their total */
  intervals: number;
  idleNs: number;
  /** lower bound of idle: only gaps after a measured completion */
  idleLowerNs: number;
  busyNs: number;
  /** time the queue was certainly busy: last submission of a segment to its measured completion */
  busyLowerNs: number;
  spanNs: number;
  segments: number;
  waitedSegments: number;
  estimatedSegments: number;
  /** estimated segments closed with no kernel time known (d = 0: their idle is an upper bound) */
  unlearnedSegments: number;
  kernelNs: Sketch;
  byDrain: Map<string, DrainIdle>;
  /** host computation in idle intervals the queue ran dry by itself (host-bound) */
  hostNs: number;
  hostSamples: TopK<number>;
  preempted: Map<number, number>;
  preemptSamples: TopK<number>;
  /** preemption while the queue still had work: no cost */
  preemptedBusy: Map<number, number>;
  io: number;
  ioSamples: TopK<number>;
  reclaim: number;
  /** voluntary waits outside CUDA calls, by waker pid (markers for interrupts) */
  waitBy: Map<number, number>;
  waitSamples: Map<number, number[]>;
  /** the part of waitBy spent runnable right after the wakeup while the waker held the CPU, by waker pid */
  runnableBehindWaker: Map<number, number>;
  /**
   * The part of `preempted` spent runnable right after a sleep while a task other than the waker held the CPU (the
   * wakeup-to-run span of that sleep): by the sleep's waker pid (WAKE_IO for an I/O wait), then by the pid on the
   * CPU. cpu_preemption never counts an idle CPU (pid 0) or Causeway's tracer, so the chain whose wait put the
   * thread to sleep claims those spans (chains/io_starvation.ts); spans an unrelated task held stay preemption.
   */
  afterWake: Map<number, Map<number, number>>;
  /**
   * lazy module loading on the critical path: the excess of a kernel's first launch over its fastest later
   * launch, and time in module-load calls (kind 'module'), while the GPU was idle; by op key
   */
  moduleLoad: Map<string, { op: number; ns: number; calls: number }>;
  moduleSamples: TopK<number>;
  /** on-CPU or sleeping inside non-drain CUDA calls while the GPU was idle, by op key */
  inCalls: Map<string, { op: number; kind: string; ns: number }>;
  /**
   * The tracer's own probe cost inside the submission calls on the path (Timeline.probeCost: measured at trace
   * start), taken out of the interval before `inCalls`, and the calls it was taken from; 0 without a calibration.
   */
  tracerInCallNs: number;
  tracerInCalls: number;
  /**
   * The probes' cost outside the records of the calls on the path (the calibration's per-call cost less its part
   * inside: the entry trap before each call's timestamp, the return trap after its end), taken out of what would
   * read as host computation; 0 without a calibration or with the in-process shim.
   */
  tracerOutsideNs: number;
  /**
   * This queue's idle intervals, flat (IV_STRIDE numbers each: a, b, ns in submission calls, ns preempted by the
   * thread's own process, ns of host computation the host owns (no drain opened the interval), ns preempted by
   * any task, entry of the submission call that closed it (b if not seen)), in
   * time order, for merging the queues of a process's GPU-feeding threads (queues.ts): the GPU is idle only where
   * every one of them is empty. null: more than MAX_IVS intervals, not kept (each thread's own view is used).
   * Set when the timeline finishes (empty until then).
   */
  ivs: ArrayLike<number> | null;
  /**
   * Where the thread was runnable but held off its CPU by another task after its first submission, flat
   * (READY_STRIDE numbers each: from, to, pid of the task on the CPU), in the order seen; for the merge of a
   * process's queues (queues.ts): a thread ready to submit, denied a CPU, would have submitted alongside the one that
   * did. Runnable on an idle CPU (wakeup latency, pid 0) is not kept. null: more than MAX_IVS spans, not kept.
   */
  ready: ArrayLike<number> | null;
  /** first submission and last completion of this queue (null: none): outside them the queue is empty */
  queueFrom: number | null;
  queueTo: number | null;
}

function newDrainIdle(key: string, op: number, name: string, direction: number | null): DrainIdle {
  return { key, op, name, direction, gaps: 0, partialGaps: 0, hostNs: 0, cappedNs: 0, ownNs: 0, samples: new TopK(10) };
}
primeDoubles(newDrainIdle('', 0, '', null), ['hostNs', 'cappedNs', 'ownNs']);

export function newIdleModel(): IdleModel {
  return {
    intervals: 0, idleNs: 0, idleLowerNs: 0, busyNs: 0, busyLowerNs: 0, spanNs: 0, segments: 0, waitedSegments: 0, estimatedSegments: 0, unlearnedSegments: 0, kernelNs: newSketch(),
    byDrain: new Map(), hostNs: 0, hostSamples: new TopK(10), preempted: new Map(), preemptSamples: new TopK(10), preemptedBusy: new Map(),
    io: 0, ioSamples: new TopK(10), reclaim: 0, waitBy: new Map(), waitSamples: new Map(), runnableBehindWaker: new Map(), afterWake: new Map(), inCalls: new Map(), tracerInCallNs: 0, tracerInCalls: 0, tracerOutsideNs: 0,
    moduleLoad: new Map(), moduleSamples: new TopK(10), ivs: [], ready: [], queueFrom: null, queueTo: null,
  };
}
primeDoubles(newIdleModel(), ['idleNs', 'idleLowerNs', 'busyNs', 'busyLowerNs', 'spanNs', 'hostNs', 'io', 'reclaim']);

const enum A {
  CALL = 0,
  OFF = 1,
  RECLAIM = 2,
  /** a block request this thread issued (issue -> complete) */
  BIO = 3,
}

/** One piece of the thread's activity (bounded list, the current segment's). */
interface Act {
  type: A;
  id: number;
  ts: number;
  end: number;
  /** CALL: op code; OFF: reason */
  code: number;
  /** CALL: op key; else '' */
  key: string;
  /** OFF: by pid; CALL: role index */
  by: number;
  waker: number;
}

function newAct(type: A, id: number, ts: number, end: number, code: number, key: string, by: number, waker: number): Act {
  return { type, id, ts, end, code, key, by, waker };
}
primeDoubles(newAct(A.CALL, 0, 0, 0, 0, '', 0, 0), ['id', 'ts', 'end', 'code', 'by', 'waker']);

/**
 * The first act at or after index s that starts at or after x, in acts sorted by ts where every act before s
 * starts before x: galloping from s, then a binary search (the same index a binary search over all of acts finds).
 */
function lowerFrom(acts: Act[], s: number, x: number): number {
  const n = acts.length;
  let l = s;
  let h = n;
  let step = 1;
  for (;;) {
    const p = l + step - 1;
    if (p >= n) break;
    if (acts[p].ts < x) {
      l = p + 1;
      step *= 2;
    } else {
      h = p;
      break;
    }
  }
  while (l < h) {
    const mid = (l + h) >> 1;
    if (acts[mid].ts < x) l = mid + 1;
    else h = mid;
  }
  return l;
}

/** overlap of an act with [lo, b] */
function ov(x: Act, lo: number, b: number): number {
  return Math.max(0, Math.min(b, x.end) - Math.max(lo, x.ts));
}

/** on-CPU time in [max(lo, cs), min(b, ce)] (a merged run of block requests): its span less the off-CPU acts in it */
function onCpuIn(acts: Act[], cs: number, ce: number, lo: number, b: number): number {
  if (ce <= cs) return 0;
  const s0 = Math.max(lo, cs);
  const e0 = Math.min(b, ce);
  if (e0 <= s0) return 0;
  let off = 0;
  for (const x of acts) if (x.type === A.OFF) off += Math.max(0, Math.min(e0, x.end) - Math.max(s0, x.ts));
  return Math.max(0, e0 - s0 - off);
}

/**
 * Shorten an array to n elements keeping its storage: `length = n` gives back the storage past n when that is more
 * than half of it, so the next pushes allocate and copy it again (the acts of a launch-bound segment, 32k entries
 * regrown after every trim, and the window scratch, reallocated per idle interval).
 */
function truncate(x: unknown[], n: number): void {
  while (x.length > n) x.pop();
}

function sumOf(x: Map<unknown, number> | null): number {
  let t = 0;
  if (x !== null) for (const v of x.values()) t += v;
  return t;
}

const INTO_CALL = 0;
const INTO_DRAIN = 1;
const INTO_MODULE = 2;

/** a placeholder that clears a scratch slot (the scratch keeps no act alive) */
const NO_ACT: Act = { type: A.CALL, id: 0, ts: 0, end: 0, code: 0, key: '', by: 0, waker: 0 };

/**
 * Sums by op key in first-insertion order, reused across idle intervals (a Map per class per interval was
 * garbage on every launch). Keys are op keys (op and copy direction): a few per interval, so a linear search.
 */
class KeyAcc {
  keys: string[] = [];
  vals: number[] = [];
  acts: Act[] = [];
  n = 0;
  reset(): this {
    this.n = 0;
    return this;
  }
  private find(k: string): number {
    for (let i = 0; i < this.n; i++) if (this.keys[i] === k) return i;
    const i = this.n++;
    this.keys[i] = k;
    this.vals[i] = 0;
    this.acts[i] = NO_ACT;
    return i;
  }
  /** as addTo: (previous ?? 0) + v */
  add(k: string, v: number): void {
    const i = this.find(k);
    this.vals[i] = this.vals[i] + v;
  }
  setAct(k: string, a: Act): void {
    this.acts[this.find(k)] = a;
  }
  act(k: string): Act {
    for (let i = 0; i < this.n; i++) if (this.keys[i] === k) return this.acts[i];
    throw new Error(`no call of ${k} on the path`);
  }
  clearActs(): void {
    for (let i = 0; i < this.n; i++) this.acts[i] = NO_ACT;
  }
}

export class Timeline {
  readonly m = newIdleModel();
  // pending segment
  // The pending submissions are columns of subN entries (typed arrays grown by doubling, kept across segments): a
  // segment holds up to MAX_SEGMENT of them, and five Array pushes per launch, with the arrays freed and grown
  // again at every segment, were most of Timeline.call's time on a launch-bound trace. Float64Array holds any
  // number exactly (ids, handles, NaN, -0), so every value read back is the one written.
  private subN = 0;
  private subTs = new Float64Array(16);
  private subFixed = new Float64Array(16);
  private subId = new Float64Array(16);
  /** stream handle of each pending submission (0: the legacy default stream) */
  private subStream = new Float64Array(16);
  /**
   * duration class of each pending submission: '' for a kernel launch (uniform kernel time), 'g<exec>' for
   * a graph launch (one submission of the whole graph: its GPU time is the graph's, learned per exec)
   */
  private subCls: string[] = [];
  /** closeSegment's per-submission durations (-1: inferred) */
  private durScr = new Float64Array(16);
  // scratch columns for closePrefix's suffix
  private scrTs = new Float64Array(16);
  private scrFixed = new Float64Array(16);
  private scrId = new Float64Array(16);
  private scrStream = new Float64Array(16);
  private scrCls: string[] = [];
  /** GPU time per submission learned for each graph exec (from waiting drains) */
  private readonly clsNs = new Map<string, Sketch>();
  private acts: Act[] = [];
  /**
   * The acts longer than LONG_ACT_NS, also kept here (in acts' order). A window reaches back only as far as
   * the longest of the other acts and takes these from this short list: one 170 ms stall (a call held up
   * while another tracer attached its probes) used to make every later window of a launch-bound loop reach
   * back 170 ms, thousands of acts per idle interval, and the analysis ran for minutes.
   */
  private longActs: Act[] = [];
  /**
   * Acts trimmed off, reused by log(): a segment keeps up to MAX_SEGMENT acts, long enough for new objects to be
   * promoted out of V8's young generation and collected by full mark-compact passes (GC was ~9% of a launch-only
   * trace's analysis, allocating the acts most of Timeline.call's own time). Nothing outside acts, longActs and
   * the last window refers to an act.
   */
  private readonly spare: Act[] = [];
  /** the longest act ever logged that is not in longActs (bounds how far back such an act can start and still overlap a window) */
  private longestShort = 0;
  /**
   * The latest end of each block of ACT_BLOCK acts (acts[i] is in block i >> ACT_SHIFT): a window skips a block
   * that ends before it whole. A launch-bound loop's window reaches back longestShort (up to 1 ms, hundreds of
   * launches) for one or two acts that overlap it; visiting every one of them per idle interval (one per launch)
   * was most of its analysis time.
   */
  private blockEnd: number[] = [];
  /** acts are in ts order (a late event, swept out of order, breaks it until the next trim) */
  private actsSorted = true;
  /** the last window: the acts overlapping it, in its order; where each sits (acts index, or -1 - longActs' part index) */
  private readonly win: Act[] = [];
  private readonly winAt: number[] = [];
  private winL = 0;
  private winEarly: Act[] | null = null;
  /** compactions of acts (trimActs): a window's search hint is valid only within one */
  private actsVer = 0;
  /** the last window's search (see window()): acts version, its from and first act, its b and end */
  private hintVer = -1;
  private hintFrom = 0;
  private hintL = 0;
  private hintB = 0;
  private hintE = 0;
  /**
   * Where each event was recorded: the id of the last pending submission of the queue when its record returned
   * (-1: nothing pending, the event was complete at once), and the record's stream. A wait on the event covers
   * that submission and those before it; a loop pipelined N steps deep (waits for the event of N steps before)
   * still has the later steps queued when the wait returns, and the GPU is not idle after it.
   */
  private readonly evAt = new Map<number, { sub: number; stream: number }>();
  /**
   * The kept idle intervals (IdleModel.ivs, handed over by finish()) in typed chunks of IV_CHUNK numbers, ivLen
   * numbers in all (-1: over MAX_IVS, not kept). A launch-bound loop closes one interval per launch: pushed onto
   * a number[] of up to 1.5M elements, the array's regrowth (fresh pages, copies, V8's large-object space) was
   * the top line of idle() and much of the analysis's GC and system time; a chunk is written once.
   */
  private ivChunks: Float64Array[] = [];
  private ivLen = 0;
  /** IdleModel.ready as it grows (null: over MAX_IVS spans, not kept) */
  private ready: number[] | null = [];
  /** the end of the thread's last sleep and who woke it (off()) */
  private lastSleepEnd = -Infinity;
  private lastSleepWaker = -1;
  /** drain ops this thread has called (the first call of each runs cold: drainQueue) */
  private readonly drainOps = new Set<number>();
  /** entry of the first not-ready completion query since the last submission (null: none) */
  private pollSince: number | null = null;
  private lastNotReady = 0;
  /** completion of the last segment, and the drain that measured it (key) when it waited */
  private lastDone: number | null = null;
  private lastDoneMeasured = false;
  private openedBy: string | null = null;
  private firstSubmit: number | null = null;
  private lastEnd = 0;
  /** return of the last submission of the closed segment (the host path to the next one starts after it) */
  private prevSubmit = -Infinity;

  /** the tracer's cost in and around one recorded call, ns, by op code (a probe-cost calibration; null: none, nothing taken out) */
  probeCost: ProbeCost | null = null;

  constructor(
    private readonly copyRate: Map<string, number> = new Map(),
    /** fastest duration per drain op in this thread (an empty-queue call) */
    private readonly fastest: Map<number, number> = new Map(),
    /** kernel time learned by a first pass over the thread, for segments closed before this pass learns one */
    private readonly priorKernelNs: number | null = null,
    /** the thread's process (preemption by another of its threads is kept per interval for the merge) */
    private readonly pid: number | null = null,
    /**
     * how many kernel-time samples the prior is the median of: it stands until this pass has learned as many (a
     * second sweep of a thread's early events, stream.ts), so that one early completion measured late (a drain
     * right after a long preemption) does not set the kernel time of the segments after it, which the prior,
     * learned from more of them, already knows better. 0: the prior holds only until the first sample.
     */
    private readonly priorSamples = 0,
  ) {
    doubleFields(this, ['kmValue', 'fsValue', 'lastEnd', 'longestShort', 'submitNs', 'left', 'hintFrom', 'hintB']);
  }

  /**
   * Upper bounds on the kernel time from drains that found the queue empty (one per such segment). A measured
   * completion is itself only an upper bound (the host learns of it after a wakeup, a late timer, a preemption):
   * one late return stretches its segment's kernels over the whole host gap before it. A drain that returned at
   * once proves the opposite side: its segment's kernels were done by its return. Where the two disagree the
   * empty-queue evidence wins: the learned kernel time never exceeds a low quantile of these bounds.
   */
  private readonly emptyBound = newSketch();
  /** the bound set by the segment being closed at once (null: none, or not a kernel-only segment) */
  private segBound: number | null = null;

  /** the kernel time for a segment no waiting drain measured: learned so far, else the prior, else null */
  private kernelEstimate(): number | null {
    const own = this.m.kernelNs.count;
    const usePrior = this.priorKernelNs !== null && own < Math.max(1, this.priorSamples);
    const e = usePrior ? this.priorKernelNs : own > 0 ? this.kernelMedian() : null;
    if (e === null || !this.emptyBound.count) return e;
    return Math.min(e, this.emptyBoundQ(), this.fewSamplesBound(usePrior ? this.priorSamples : own));
  }

  /**
   * A kernel time that rests on n measured completions stands against at most n empty-queue segments that
   * contradict it (bounds below it): the n-th smallest bound (past EMPTY_BOUND_Q of them the quantile above
   * rules). A completion is an upper bound like an empty-queue one (late wakeups only lengthen it): where a
   * host-bound loop measured a handful of completions, each late by a timer or wakeup, and most of its
   * segments' bounds are loose (a drain long after its kernels bounds nothing), the few tight bounds outnumber
   * the samples and win; a GPU-bound loop, with a completion measured in most segments, is unchanged.
   */
  private fewSamplesBound(n: number): number {
    const b = this.emptyBound;
    const f = Math.max(1, n) / b.count;
    if (f >= EMPTY_BOUND_Q) return Infinity;
    if (b.count !== this.fsCount || n !== this.fsN) {
      this.fsValue = q(b, f);
      this.fsCount = b.count;
      this.fsN = n;
    }
    return this.fsValue;
  }
  private fsCount = -1;
  private fsN = -1;
  private fsValue = 0;

  // The two quantiles above, kept until their sketch takes a value (a sketch changes only by accept, which counts):
  // a quantile walks the sketch's bins, and a step asked for them five to seven times (~9% of a decode loop's analysis).
  private kmCount = -1;
  private kmValue = 0;
  private ebCount = -1;
  private ebValue = 0;
  private kernelMedian(): number {
    const s = this.m.kernelNs;
    if (s.count !== this.kmCount) {
      this.kmValue = q(s, 0.5);
      this.kmCount = s.count;
    }
    return this.kmValue;
  }
  private emptyBoundQ(): number {
    const s = this.emptyBound;
    if (s.count !== this.ebCount) {
      this.ebValue = q(s, EMPTY_BOUND_Q);
      this.ebCount = s.count;
    }
    return this.ebValue;
  }

  /**
   * The pending kernels were all done by `t` (a drain found the queue empty): with uniform kernel time d,
   * F(d) <= t gives d <= min_k (t - s_k - D_k) / M_k over the submissions before t. Only kernel-only segments
   * (graph launches have their own time) and only submissions before t (a synchronous copy queued at the
   * drain's own entry is the drain).
   */
  private noteEmptyAt(t: number, excludeId: number): void {
    this.segBound = null;
    let D = 0;
    let M = 0;
    let b = Infinity;
    for (let k = this.subN - 1; k >= 0; k--) {
      if (this.subId[k] === excludeId) continue;
      if (this.subCls[k] !== '') return;
      if (this.subFixed[k] >= 0) D += this.subFixed[k];
      else M++;
      if (M > 0) b = Math.min(b, (t - this.subTs[k] - D) / M);
    }
    if (!Number.isFinite(b)) return;
    b = Math.max(0, b);
    this.segBound = b;
    this.emptyBound.accept(b);
  }

  private pushSub(ts: number, fixed: number, id: number, stream: number, cls: string): void {
    const n = this.subN;
    if (n === this.subTs.length) {
      const grow = (x: Float64Array) => {
        const y = new Float64Array(n * 2);
        y.set(x);
        return y;
      };
      this.subTs = grow(this.subTs);
      this.subFixed = grow(this.subFixed);
      this.subId = grow(this.subId);
      this.subStream = grow(this.subStream);
    }
    this.subTs[n] = ts;
    this.subFixed[n] = fixed;
    this.subId[n] = id;
    this.subStream[n] = stream;
    this.subCls[n] = cls;
    this.subN = n + 1;
  }

  /** every non-nested CUDA call, at its entry */
  call(id: number, ts: number, end: number, op: number, key: string, role: Role, bytes: number, direction: number | null, stream = 0, cls = '', lazyExcess = 0): void {
    if (end > this.lastEnd) this.lastEnd = end;
    // waker (unused for calls): a first launch's excess over the kernel's later launches (lazy module load)
    this.log(A.CALL, id, ts, end, op, key, 0, lazyExcess);
    if (role === 'submit') {
      // new work: an earlier not-ready query says nothing about when this completes
      this.pollSince = null;
      if (this.firstSubmit === null) this.firstSubmit = ts;
      const info = OP_INFO[op];
      // a launch's time is learned, never a copy rate's: no rate look-up for one (one call per launch)
      const rate = info && info.kind !== 'launch' && bytes > 0 ? this.copyRate.get(rateKey(op, direction)) : undefined;
      const fixed = rate !== undefined ? rate * bytes : -1;
      this.pushSub(end, fixed, id, stream, cls);
      if (this.subN >= MAX_SEGMENT) this.closeSegment(end, false, null, id);
    }
  }

  off(id: number, ts: number, end: number, reason: number, by: number, waker: number): void {
    if (end > this.lastEnd) this.lastEnd = end;
    this.log(A.OFF, id, ts, end, reason, '', by, waker);
    // runnable right after a sleep that the task now holding the CPU ended: still the wait for that task (a lock
    // it released and took again, a hand-off), as idle() reads it, not a thread ready to submit
    const behindWaker = reason === 0 && this.lastSleepWaker === by && Math.abs(ts - this.lastSleepEnd) < WAKE_SPLIT_NS;
    const r = this.ready;
    if (reason === 0 && by !== 0 && !behindWaker && r !== null && this.firstSubmit !== null) {
      if (r.length >= READY_STRIDE * MAX_IVS) this.ready = null;
      else r.push(ts, end, by);
    }
    if (reason !== 0) {
      this.lastSleepEnd = end;
      this.lastSleepWaker = waker;
    }
  }

  reclaimStall(id: number, ts: number, end: number): void {
    this.log(A.RECLAIM, id, ts, end, 0, '', 0, 0);
  }

  /** a block request the thread issued, or a read syscall that issued some (read_io); `write`: code 1 (a write in flight is writeback the thread need not wait for) */
  blockIo(id: number, ts: number, end: number, write = false): void {
    this.log(A.BIO, id, ts, end, write ? 1 : 0, '', 0, 0);
  }

  private log(type: A, id: number, ts: number, end: number, code: number, key: string, by: number, waker: number): void {
    // before the first submission there is no GPU work to starve (start-up, library loading)
    if (this.firstSubmit === null && this.lastDone === null && !(type === A.CALL)) return;
    let a = this.spare.pop();
    if (a === undefined) a = newAct(type, id, ts, end, code, key, by, waker);
    else {
      a.type = type;
      a.id = id;
      a.ts = ts;
      a.end = end;
      a.code = code;
      a.key = key;
      a.by = by;
      a.waker = waker;
    }
    const i = this.acts.length;
    this.acts.push(a);
    const j = i >> ACT_SHIFT;
    if ((i & (ACT_BLOCK - 1)) === 0) this.blockEnd[j] = a.end;
    else if (a.end > this.blockEnd[j]) this.blockEnd[j] = a.end;
    if (i > 0 && a.ts < this.acts[i - 1].ts) this.actsSorted = false;
    const d = a.end - a.ts;
    if (d > LONG_ACT_NS) this.longActs.push(a);
    else if (d > this.longestShort) this.longestShort = d;
    if (this.acts.length > MAX_SEGMENT) this.trimActs(this.acts[this.acts.length >> 1].ts);
  }

  /** an event was recorded on `stream` (cudaEventRecord and the driver's): remember how far into the queue it reaches */
  eventRecord(event: number, stream: number): void {
    if (this.evAt.size >= MAX_EVENTS && !this.evAt.has(event)) this.evAt.clear();
    this.evAt.set(event, { sub: this.subN ? this.subId[this.subN - 1] : -1, stream });
  }

  /**
   * How much of the pending queue a wait on `event` covers: the index of the last pending submission it covers
   * (its record's), null for the whole queue (not an event wait, an event never recorded in this thread, or
   * work of other streams queued before the record, which the one-FIFO model cannot split), -1 for none of it
   * (recorded while nothing was pending, or its work was already completed by an earlier drain).
   */
  private eventPrefix(op: number, event: number | null): number | null {
    if (event === null || OP_INFO[op]?.args[0] !== 'event') return null;
    const r = this.evAt.get(event);
    if (r === undefined) return null;
    if (r.sub === -1) return -1;
    let p = this.subN - 1;
    while (p >= 0 && this.subId[p] !== r.sub) p--;
    if (p < 0) return -1;
    if (p === this.subN - 1) return null;
    for (let k = 0; k <= p; k++) if (this.subStream[k] !== r.stream) return null;
    return p;
  }

  /**
   * Run `fn` (a drain's closing) on the first p + 1 pending submissions alone; the rest stay pending, queued
   * behind them: they cannot start before the closed part's completion (in-order queue), so their start is
   * that completion at the earliest, and no idle interval opens between the two parts.
   */
  /**
   * A wait on an event that covered part of the queue and waited (closePrefix): the host work after its return
   * was serialized behind it like after any blocking drain, so where the rest of the queue runs dry before the
   * host's next submission, that idle time is the wait's (its key), not the host's alone. Cleared when the
   * segment closes.
   */
  private heldBy: { key: string; done: number } | null = null;
  /** openedBy is a partial wait's (heldBy's) whose queued rest ran dry before the segment closed */
  private openedByPartial = false;

  private closePrefix(p: number, fn: () => void): void {
    // The suffix after the event's record waits in scratch columns (reused, grown by doubling) while the prefix
    // drains: a slice of five columns per event wait was most of this function's cost on a pipelined decode loop.
    const n = this.subN;
    const m = n - (p + 1);
    if (this.scrTs.length < m) {
      let len = this.scrTs.length;
      while (len < m) len *= 2;
      this.scrTs = new Float64Array(len);
      this.scrFixed = new Float64Array(len);
      this.scrId = new Float64Array(len);
      this.scrStream = new Float64Array(len);
    }
    // fn (drainQueue) never closes a prefix itself, so nothing overwrites these columns before they are read back
    const ts = this.scrTs, fixed = this.scrFixed, ids = this.scrId, streams = this.scrStream, cls = this.scrCls;
    for (let k = 0; k < m; k++) {
      ts[k] = this.subTs[p + 1 + k];
      fixed[k] = this.subFixed[p + 1 + k];
      ids[k] = this.subId[p + 1 + k];
      streams[k] = this.subStream[p + 1 + k];
      cls[k] = this.subCls[p + 1 + k];
    }
    this.subN = p + 1;
    fn();
    const from = this.lastDone ?? -Infinity;
    this.heldBy = this.lastDoneMeasured && this.openedBy !== null && m ? { key: this.openedBy, done: from } : null;
    for (let k = 0; k < m; k++) this.pushSub(Math.max(ts[k], from), fixed[k], ids[k], streams[k], cls[k]);
  }

  /**
   * A drain returned (called when the call finishes, so its off-CPU intervals are known). A synchronous
   * copy/memset was queued at its entry (its own transfer is stream work: later kernels of the stream
   * could not have overlapped it) and is drained here. It waited when it took longer than the fastest
   * call of the op in this thread (an empty-queue return: uprobe and driver cost) plus NOISE_NS.
   */
  drain(id: number, ts: number, end: number, key: string, ownNs: number, stream: number | null = null, op = 0, submitDrain = false, event: number | null = null): void {
    // the thread's first call of the op runs cold (drainQueue); any call warms it
    const cold = !this.drainOps.has(op);
    if (cold) this.drainOps.add(op);
    if (submitDrain) {
      if (this.firstSubmit === null) this.firstSubmit = ts;
      this.pushSub(ts, ownNs, id, 0, '');
    }
    if (this.subN === 0) return; // nothing pending: the call is activity inside an idle interval
    if (stream !== null && stream !== 0) {
      // a sync of one (non-default) stream while other streams still have work: the GPU is not idle after
      // it; that stream's work is done and leaves the queue
      let others = false;
      for (let k = 0; k < this.subN; k++) if (this.subStream[k] !== stream) others = true;
      if (others) {
        let w = 0;
        for (let k = 0; k < this.subN; k++) {
          if (this.subStream[k] === stream) continue;
          this.subTs[w] = this.subTs[k];
          this.subFixed[w] = this.subFixed[k];
          this.subId[w] = this.subId[k];
          this.subStream[w] = this.subStream[k];
          this.subCls[w] = this.subCls[k];
          w++;
        }
        this.subN = w;
        return;
      }
    }
    const p = this.eventPrefix(op, event);
    if (p === -1) return; // the event's work was done: the wait says nothing about the pending work
    if (p !== null) this.closePrefix(p, () => this.drainQueue(id, ts, end, key, ownNs, op, submitDrain, cold));
    else this.drainQueue(id, ts, end, key, ownNs, op, submitDrain, cold);
  }

  /** a drain that covers the whole pending queue (see drain()) */
  private drainQueue(id: number, ts: number, end: number, key: string, ownNs: number, op: number, submitDrain: boolean, cold: boolean): void {
    // the fastest call counts as an empty-queue return only if it is that fast (every call may have waited)
    const fast = Math.min(this.fastest.get(op) ?? 0, DRAIN_BLOCK_NS);
    // the drain waited for the GPU if, up to `upTo`, it took longer than an empty-queue call
    const waitedUntil = (upTo: number, emptyCost = fast) => upTo - ts - ownNs >= emptyCost + NOISE_NS + OWN_TRANSFER_SLACK * ownNs;
    if (DEBUG) console.error(`drain ${key} ts ${ts} dur ${end - ts} own ${Math.round(ownNs)} fast ${fast} pending ${this.subN}`);
    if (waitedUntil(end)) {
      let done = end;
      let unplaced = false;
      const woke = this.lastWakeBeforePreemption(ts, end, ownNs + fast + NOISE_NS);
      // preempted at the end of the drain: the GPU may have finished before the thread got its CPU back
      if (woke !== null) done = woke;
      else for (let i = this.acts.length - 1; i >= 0; i--) {
        const a = this.acts[i];
        if (a.ts < ts) break;
        if (a.type !== A.OFF || a.ts >= end) continue;
        const prev = i > 0 ? this.acts[i - 1] : undefined;
        if (a.code === 0 && prev && prev.type === A.OFF && prev.code !== 0 && prev.ts >= ts && Math.abs(prev.end - a.ts) < WAKE_SPLIT_NS) {
          // the drain's last sleep ended in a wakeup followed by a runnable wait for the CPU (bpf splits it
          // off): the GPU completed at the wakeup
          done = a.ts;
          break;
        }
        if (a.code === 0 && a.end >= end - NOISE_NS && a.ts < done) {
          // preempted while spinning: the completion lies in [a.ts, done]; the duration model places it. With no
          // kernel time learned yet nothing does, and it is not measured: taken at the return, a thread's first sync
          // preempted for 232 µs right after its entry (its queue long done) taught 34 µs kernels (true 1.5 µs)
          const est = this.estimateDone();
          if (est === null) unplaced = true;
          else done = Math.max(a.ts, Math.min(done, est));
        }
        break; // only the drain's last off-CPU interval says when the GPU finished
      }
      // The completion moved back to where the thread lost the CPU: if what is left of the drain is no longer than
      // an empty-queue call (its own transfer plus the op's fastest return), the drain waited for the CPU, not
      // for the GPU, and the completion of the queued work is not measured (it lies before the drain's entry):
      // close by estimate. Taking `done` as measured here would stretch the queued kernels over the whole host
      // gap before the drain (I/O waits, page touching) and hide that gap's idle time.
      // A drain that neither slept nor was preempted took longer than an empty-queue call on the CPU alone (cache
      // and TLB misses right after a long preemption, a page fault): weak evidence of a wait. If the completion it
      // implies needs kernels longer than every empty-queue bound allows, the GPU was not what it waited for: the
      // queue was empty at entry (below). Taken as measured, a 16 µs return after a 20 ms preemption by a hog had
      // the queue busy through the preemption, which then "cost nothing". The thread's first call of the op runs
      // cold (lazy symbol binding, code and data not yet cached): on the CPU alone it waited only past the most an
      // empty-queue call may take (DRAIN_BLOCK_NS). The first sync of a launch-bound loop, 11 µs over its fastest
      // return with no bound learned yet, taught 31 µs kernels (true 1.5 µs) to every later segment.
      const onCpu = done === end && !this.offWithin(ts, end);
      if (!unplaced && waitedUntil(done) && !(onCpu && ((cold && !waitedUntil(done, DRAIN_BLOCK_NS)) || this.needsLongerKernels(done)))) {
        this.closeSegment(done, true, key, id);
        return;
      }
    }
    // the queue was empty when the drain returned (a synchronous copy: before its own transfer, whose estimate
    // is a lower bound, so end - ownNs is still no earlier than the queue's completion). Not for an event wait:
    // it covers only the work before the event's record, and a pipelined loop queues the next step after it.
    if (OP_INFO[op]?.args[0] !== 'event') this.noteEmptyAt(end - ownNs, submitDrain ? id : -1);
    // the queue was (about) empty at entry: completion at or before it (a synchronous copy: its own end)
    // (no kernel time known: d = 0, the earliest completion: idle is then an upper bound, as stated in the method)
    const est = this.estimateDone(true)!;
    this.closeSegment(submitDrain ? Math.min(end, est) : Math.min(ts, est), false, key, id);
  }

  /**
   * A completion query returned (cudaEventQuery/cudaStreamQuery and the driver's: op kind 'poll'). Not ready
   * (600) while work is pending: the queue was still busy when it looked. Ready after not-ready ones since the
   * last submission: the work completed between the last not-ready check and this one, a measured completion
   * like a drain that waited (taken at this call's entry, where it checks); the spin was a wait for the GPU,
   * and the idle time after it is owned by the poll op like a drain's. Ready at once: the queue was already
   * empty (like a drain that returned at once). An event query covers only the work before its record; the
   * loops that spin on one record it after their submissions, so it is taken as the thread's queue.
   */
  poll(id: number, ts: number, end: number, key: string, ret: number): void {
    if (this.subN === 0) {
      this.pollSince = null;
      return;
    }
    if (ret === NOT_READY) {
      if (this.pollSince === null) this.pollSince = ts;
      this.lastNotReady = ts;
      return;
    }
    if (ret !== 0) return;
    if (this.pollSince !== null) {
      this.pollSince = null;
      // the work completed in [last not-ready check, this check]: a few µs apart in a spin, wide when the
      // thread was preempted between them; the duration model places it inside that bracket
      const est = this.estimateDone() ?? ts;
      this.closeSegment(Math.max(this.lastNotReady, Math.min(ts, est)), true, key, id);
    } else this.closeSegment(Math.min(ts, this.estimateDone(true)!), false, key, id);
    void end;
  }

  /** the thread was off-CPU at some point in [ts, end) */
  private offWithin(ts: number, end: number): boolean {
    for (let i = this.acts.length - 1; i >= 0; i--) {
      const a = this.acts[i];
      if (a.ts < ts && a.end <= ts) break;
      if (a.type === A.OFF && a.ts < end && a.end > ts) return true;
    }
    return false;
  }

  /**
   * A completion at `done` needs the pending kernels to take longer than the empty-queue bound (emptyBoundQ):
   * the smallest uniform time that runs them back to back up to `done` from any submission on (fixed-time
   * submissions taking theirs) is above it. False with no bound learned.
   */
  private needsLongerKernels(done: number): boolean {
    if (!this.emptyBound.count) return false;
    const bound = this.emptyBoundQ();
    let D = 0;
    let M = 0;
    let d = Infinity;
    for (let k = this.subN - 1; k >= 0; k--) {
      if (this.subFixed[k] >= 0) D += this.subFixed[k];
      else M++;
      if (M > 0) d = Math.min(d, (done - this.subTs[k] - D) / M);
    }
    return M > 0 && d > bound;
  }

  /**
   * A drain that slept and, after its last wakeup, was preempted and ran no longer than an empty-queue call plus its
   * own transfer (`budget`): a GPU wait ends in a wakeup, and what followed was the thread waiting for a CPU and
   * finishing the call, so the queue completed by that wakeup (null: no such shape). The rule beside it in drain()
   * covers one runnable span right after the wakeup; this one also covers a preemption after a few µs back on the
   * CPU, and several (a pageable copy preempted twice after its transfer taught a 10 ms kernel that hid the page
   * touching before it).
   */
  private lastWakeBeforePreemption(ts: number, end: number, budget: number): number | null {
    let preempted = 0;
    for (let i = this.acts.length - 1; i >= 0; i--) {
      const a = this.acts[i];
      if (a.ts < ts) break;
      if (a.type !== A.OFF || a.ts >= end) continue;
      if (a.code === 0) {
        preempted += Math.min(end, a.end) - a.ts;
        continue;
      }
      const woke = a.end;
      if (preempted <= 0 || woke >= end) return null;
      return end - woke - preempted <= budget ? woke : null;
    }
    return null;
  }

  /** completion of the pending work with the median learned kernel time (null: nothing learned) */
  private estimateDone(orZero = false): number | null {
    const d = this.kernelEstimate() ?? (orZero ? 0 : null);
    if (d === null) return null;
    let f = -Infinity;
    for (let k = 0; k < this.subN; k++) f = Math.max(f, this.subTs[k]) + (this.subFixed[k] >= 0 ? this.subFixed[k] : this.clsEstimate(this.subCls[k]) ?? d);
    return f;
  }

  /** learned GPU time of one submission of a class ('' = a kernel: null, use the kernel estimate) */
  private clsEstimate(cls: string): number | null {
    if (cls === '') return null;
    const sk = this.clsNs.get(cls);
    return sk && sk.count ? q(sk, 0.5) : null;
  }

  /** Close the pending segment at its completion `done` (measured: a drain's observed completion). */
  private closeSegment(done: number, measured: boolean, key: string | null, drainId: number): void {
    const n = this.subN;
    const m = this.m;
    m.segments++;
    if (measured) m.waitedSegments++;
    else m.estimatedSegments++;
    // kernel duration: d = min_k (r - s_k - D_k) / M_k over k with M_k > 0
    // One unknown per segment: the submissions of one class (kernels, or one graph exec) are inferred from the
    // completion; the others take their learned time. The class inferred is one with nothing learned yet (a
    // graph's first measured launches), else kernels if present, else the segment's graph exec. Classes
    // with nothing learned besides it count like it (uniform, as without graphs).
    // scratch kept across segments (idle() below never closes a segment, so nothing overwrites it meanwhile)
    if (this.durScr.length < n) this.durScr = new Float64Array(Math.max(n, this.durScr.length * 2));
    const dur = this.durScr;
    let target = '';
    {
      let unknown: string | null = null;
      let hasKernel = false;
      for (let k = 0; k < n; k++) {
        if (this.subFixed[k] >= 0) continue;
        const c = this.subCls[k];
        if (c === '') hasKernel = true;
        if (unknown === null && c !== '' && this.clsEstimate(c) === null) unknown = c;
      }
      if (unknown !== null) target = unknown;
      else if (!hasKernel) for (let k = 0; k < n; k++) if (this.subFixed[k] < 0) target = this.subCls[k];
    }
    const kernelKnown = this.kernelEstimate();
    for (let k = 0; k < n; k++) {
      const c = this.subCls[k];
      if (this.subFixed[k] >= 0) dur[k] = this.subFixed[k];
      else if (c === target) dur[k] = -1;
      else {
        const e = c === '' ? kernelKnown : this.clsEstimate(c);
        dur[k] = e ?? -1;
      }
    }
    let d: number;
    if (measured) {
      let D = 0;
      let M = 0;
      /** kernels from the submission that sets d on (the back-to-back run that ends at the completion) */
      let mAt = 0;
      d = Infinity;
      for (let k = n - 1; k >= 0; k--) {
        if (dur[k] >= 0) D += dur[k];
        else M++;
        if (M > 0) {
          const x = (done - this.subTs[k] - D) / M;
          if (x < d) {
            d = x;
            mAt = M;
          }
        }
      }
      if (!Number.isFinite(d)) d = 0;
      d = Math.max(0, d);
      // Completions that do not pin the kernel time:
      //  - reported late (a sleep's wakeup, an interrupt in the return): the completion needs several kernels back
      //    to back up to it (mAt > 1), yet under that reading less than one kernel was still queued when the last
      //    one was submitted: the GPU ran exactly at the host's submission rate, which is what a launch-bound loop
      //    whose sync returns a few µs late looks like (kernels far shorter than a launch would fit it as well);
      //    taken at face value it learns a kernel as long as a launch and hides every launch gap. A queue backed up
      //    by a burst of submissions keeps a backlog of many kernels and teaches. The completion stands (the work
      //    was done by then); the kernel time is the one learned elsewhere, capped by d.
      //  - every empty-queue bound is at or above the true (uniform) kernel time: a completion that needs longer
      //    kernels than the bounds allow came late for another reason (a late timer or wakeup, a slow own transfer,
      //    preemption at its end). Its kernels take the bound's time (the queue may run dry before the drain's
      //    entry: that gap is idle) and it teaches nothing: taught, one such return stretches every estimated
      //    segment's kernels over the host gaps before their drains (a loader's I/O waits) and hides that idle time.
      const rateMatched = mAt > 1 && done - this.subTs[n - 1] - d < d;
      const cap = target === '' && M > 0 && this.emptyBound.count ? this.emptyBoundQ() : null;
      if (M > 0 && target === '' && rateMatched) {
        const est = this.kernelEstimate();
        if (est === null) m.unlearnedSegments++;
        d = Math.min(d, est ?? 0);
      } else if (cap !== null && d > cap) d = cap;
      else if (M > 0) {
        if (target === '') m.kernelNs.accept(d);
        else {
          let sk = this.clsNs.get(target);
          if (!sk) this.clsNs.set(target, (sk = newSketch()));
          sk.accept(d);
        }
      }
    } else {
      const est = (target === '' ? null : this.clsEstimate(target)) ?? this.kernelEstimate();
      if (est === null) m.unlearnedSegments++;
      d = est ?? 0;
      // this segment's own empty-queue evidence caps its kernels
      if (target === '' && this.segBound !== null) d = Math.min(d, this.segBound);
    }
    if (DEBUG) console.error(`segment n ${n} done ${Math.round(done)} measured ${measured} key ${key} d ${Math.round(d)} bound ${this.segBound} s0 ${this.subTs[0]} last ${this.subTs[n - 1]}`);
    this.segBound = null;
    // idle before the segment's first submission
    const s0 = this.subTs[0];
    if (this.lastDone !== null && s0 > this.lastDone) this.idle(this.lastDone, s0, this.lastDoneMeasured ? this.lastDone : Math.min(this.lastDone, this.prevSubmit), this.openedBy, this.lastDoneMeasured, this.subId[0], this.openedByPartial);
    // simulate: idle where the queue ran dry inside the segment
    let f = s0;
    let busy = 0;
    for (let k = 0; k < n; k++) {
      const s = this.subTs[k];
      if (s > f) {
        // the queue ran dry by estimate; capped so the simulation never passes the completion
        const a = Math.min(f, done);
        const b = Math.min(s, done);
        // the path to submission k began before a partial wait's return (its submissions were queued then): the
        // host work after that wait was serialized behind it
        const prev = k > 0 ? this.subTs[k - 1] : s0;
        const held = this.heldBy !== null && prev <= this.heldBy.done ? this.heldBy.key : null;
        if (b > a) this.idle(a, b, prev, held, false, this.subId[k], held !== null);
        f = s;
      }
      const dk = dur[k] >= 0 ? dur[k] : d;
      f += dk;
      busy += dk;
    }
    m.busyNs += Math.min(busy, Math.max(0, done - s0));
    if (measured) m.busyLowerNs += Math.max(0, done - this.subTs[n - 1]);
    if (this.firstSubmit !== null) m.spanNs = Math.max(0, Math.max(done, this.lastEnd) - this.firstSubmit);
    this.lastDone = Math.max(done, this.lastDone ?? done);
    this.lastDoneMeasured = measured;
    // A segment that closed by estimate with nothing submitted since a partial wait returned: the rest of the
    // queue ran dry in the host work that wait serialized, and the idle time up to the next submission (next
    // segment) is the wait's, as it is where that happens before a submission of this segment (heldBy).
    const held = this.heldBy;
    this.openedByPartial = !measured && held !== null && this.subTs[n - 1] <= held.done;
    this.openedBy = measured ? key : this.openedByPartial ? held!.key : null;
    this.heldBy = null;
    this.prevSubmit = this.subTs[n - 1];
    this.subN = 0;
    this.trimActs(measured ? this.lastDone : Math.min(this.lastDone, this.prevSubmit));
    void drainId;
  }

  /** drop activity that ended before t (keeps the one still open) */
  private trimActs(t: number): void {
    let w = 0;
    const spare = this.spare;
    for (let i = 0; i < this.acts.length; i++) {
      const x = this.acts[i];
      if (x.end > t) this.acts[w++] = x;
      // dropped from longActs below too (same test); the last window's stale references are never read again
      // (window() rebuilds it before idle() reads it)
      else if (spare.length < MAX_SEGMENT) spare.push(x);
    }
    truncate(this.acts, w);
    this.actsVer++;
    this.indexActs();
    w = 0;
    for (let i = 0; i < this.longActs.length; i++) if (this.longActs[i].end > t) this.longActs[w++] = this.longActs[i];
    truncate(this.longActs, w);
  }

  /** rebuild blockEnd and actsSorted after acts were compacted */
  private indexActs(): void {
    const acts = this.acts;
    const be = this.blockEnd;
    const blocks = (acts.length + ACT_BLOCK - 1) >> ACT_SHIFT;
    if (be.length > blocks) truncate(be, blocks);
    else be.length = blocks;
    let sorted = true;
    for (let i = 0; i < acts.length; i++) {
      const x = acts[i];
      const j = i >> ACT_SHIFT;
      if ((i & (ACT_BLOCK - 1)) === 0 || x.end > be[j]) be[j] = x.end;
      if (i > 0 && x.ts < acts[i - 1].ts) sorted = false;
    }
    this.actsSorted = sorted;
  }

  /**
   * Attribute the idle interval [a, b]. The GPU waited for the submission at b; the host's path to it
   * began at `from` (the previous submission's return, or the opening drain's completion). Any delay on
   * that path pushed b later, so the idle time is handed out in priority order over what the host did on
   * the path (each class capped by what is left): preemption, reclaim, I/O wait, voluntary waits outside
   * CUDA calls, time in allocator calls, in synchronizing calls, in submissions, and last host
   * computation. The anomalies come first: removing them is what would have shortened the idle time.
   */
  /**
   * The logged activities that can overlap [lo, b]: acts are logged in timestamp order, so a binary search finds
   * the first one starting at or after lo - (the longest act not in longActs), the scan stops at the first one
   * starting at b, and the long acts that start earlier but reach past lo are taken from longActs.
   * Scanning every act per idle interval was quadratic on launch-bound loops (one gap per launch).
   */
  private window(lo: number, b: number): Act[] {
    const acts = this.acts;
    const from = lo - this.longestShort;
    // While acts are in ts order and not compacted since the last window, a window at or after it searches on
    // from the last one's bounds (a segment's intervals come in time order): the result is the same lower bound,
    // found in a step or two instead of a binary search over up to MAX_SEGMENT acts scattered on the heap.
    const hint = this.actsSorted && this.hintVer === this.actsVer;
    let l: number;
    if (hint && from >= this.hintFrom) l = lowerFrom(acts, this.hintL, from);
    else {
      l = 0;
      let h = acts.length;
      while (l < h) {
        const mid = (l + h) >> 1;
        if (acts[mid].ts < from) l = mid + 1;
        else h = mid;
      }
    }
    // the first act from l on that starts at or after b (a binary search while acts are in ts order)
    let e = l;
    if (this.actsSorted) {
      if (hint && b >= this.hintB && from >= this.hintFrom) e = lowerFrom(acts, Math.max(l, this.hintE), b);
      else {
        let h = acts.length;
        while (e < h) {
          const mid = (e + h) >> 1;
          if (acts[mid].ts < b) e = mid + 1;
          else h = mid;
        }
      }
      this.hintVer = this.actsVer;
      this.hintFrom = from;
      this.hintL = l;
      this.hintB = b;
      this.hintE = e;
    } else while (e < acts.length && acts[e].ts < b) e++;
    // the long acts that start before `from` and still reach into the window come first (acts' order)
    let early: Act[] | null = null;
    for (const x of this.longActs) {
      if (x.ts >= from) break;
      if (x.end > lo) (early ??= []).push(x);
    }
    // Only the acts that overlap [lo, b] are handed on (the others add nothing to any sum below); the window's
    // full order is kept for offBefore. Blocks of acts that all end by lo are skipped whole.
    const win = this.win;
    const at = this.winAt;
    truncate(win, 0);
    truncate(at, 0);
    this.winL = l;
    this.winEarly = early;
    if (early) {
      for (let k = 0; k < early.length; k++) {
        const x = early[k];
        if (x.end > lo && x.ts < b) {
          win.push(x);
          at.push(-1 - k);
        }
      }
    }
    const be = this.blockEnd;
    let i = l;
    while (i < e) {
      if ((i & (ACT_BLOCK - 1)) === 0 && i + ACT_BLOCK <= e && be[i >> ACT_SHIFT] <= lo) {
        i += ACT_BLOCK;
        continue;
      }
      const x = acts[i];
      if (x.end > lo && x.ts < b) {
        win.push(x);
        at.push(i);
      }
      i++;
    }
    return win;
  }

  /** the off-CPU act before the k-th act of the last window, in the window's full order (null: none) */
  private offBefore(k: number): Act | null {
    const i = this.winAt[k];
    const early = this.winEarly;
    let j: number;
    if (i >= 0) {
      for (let p = i - 1; p >= this.winL; p--) if (this.acts[p].type === A.OFF) return this.acts[p];
      j = early ? early.length : 0;
    } else j = -1 - i;
    for (let p = j - 1; p >= 0; p--) if (early![p].type === A.OFF) return early![p];
    return null;
  }

  private idle(a: number, b: number, from: number, openedBy: string | null, measured: boolean, closingId: number, partial = false): void {
    const m = this.m;
    const len = b - a;
    if (len <= 0) return;
    if (DEBUG) console.error(`idle ${Math.round(a)}..${Math.round(b)} len ${Math.round(len)} from ${Math.round(from)} opened ${openedBy} measured ${measured}`);
    m.intervals++;
    m.idleNs += len;
    if (measured) m.idleLowerNs += len;
    const lo = Math.min(from, a);
    const acts = this.window(lo, b);
    // Nothing below allocates on the common path (a launch-bound loop closes one idle interval per launch, with
    // one or two calls and no off-CPU act on it): the call list and the per-key sums are scratch kept on the
    // timeline, the helpers are methods and module functions rather than closures. Every sum is taken in the
    // same order as before (keys in first-insertion order), so the results are the same to the bit.
    const calls = this.idleCalls;
    let nCalls = 0;
    let reclaims: Act[] | null = null;
    for (let k = 0; k < acts.length; k++) {
      const x = acts[k];
      if (x.end <= lo || x.ts >= b) continue;
      if (x.type === A.CALL) calls[nCalls++] = x;
      else if (x.type === A.RECLAIM) (reclaims ??= []).push(x);
    }
    // The maps and lists below are made on first use (null: empty): off-CPU acts on the path are the rare case.
    let pre: Map<number, number> | null = null;
    let reclaim = 0;
    let io = 0;
    let wait: Map<number, number> | null = null;
    let callOff: Map<Act, number> | null = null;
    let callSleep: Map<Act, number> | null = null;
    let offAll = 0;
    let preIds: [number, number][] | null = null;
    let ioIds: [number, number][] | null = null;
    let behind: Map<number, number> | null = null;
    let afterWake: Map<number, Map<number, number>> | null = null;
    for (let k = 0; k < acts.length; k++) {
      const x0 = acts[k];
      if (x0.type !== A.OFF) continue;
      // the window's previous off-CPU act (overlapping or not), only where the rule below reads it
      const before = x0.code === 0 ? this.offBefore(k) : null;
      let x = x0;
      const v = ov(x, lo, b);
      if (v <= 0) continue;
      offAll += v;
      const mid = (Math.max(lo, x.ts) + Math.min(b, x.end)) / 2;
      let inCall: Act | undefined;
      for (let j = 0; j < nCalls; j++) {
        const c = calls[j];
        if (c.ts <= mid && c.end >= mid) {
          inCall = c;
          break;
        }
      }
      if (inCall) addTo((callOff ??= new Map()), inCall, v);
      const woke = before !== null && before.code !== 0 && Math.abs(before.end - x.ts) < WAKE_SPLIT_NS;
      if (woke && before.waker > 0 && before.waker === x.by) {
        // Woken, then runnable while the task that woke it kept the CPU (bpf splits the wakeup-to-run span off
        // a sleep as a runnable interval): the thread could not go on until its waker let it run, so the span
        // is still the wait for the waker (a loader thread handing over data and going on reading, a process
        // releasing a lock and re-taking it), not preemption by an unrelated task.
        x = { ...x0, code: before.code, waker: before.waker };
        addTo((behind ??= new Map()), x.waker, v);
      } else if (woke && (before.code === 1 || before.code === 2)) {
        // another task held the CPU at the wakeup: preemption here, kept apart by sleep and holder (afterWake)
        const sleep = before.code === 2 ? WAKE_IO : before.waker;
        let w = (afterWake ??= new Map()).get(sleep);
        if (!w) afterWake.set(sleep, (w = new Map()));
        addTo(w, x.by, v);
      }
      if (x.code === 0) {
        addTo((pre ??= new Map()), x.by, v);
        (preIds ??= []).push([v, x.id]);
        continue;
      }
      let inRec = 0;
      if (reclaims) for (const r of reclaims) inRec += Math.max(0, Math.min(b, x.end, r.end) - Math.max(lo, x.ts, r.ts));
      inRec = Math.min(v, inRec);
      reclaim += inRec;
      const rest = v - inRec;
      if (rest <= 0) continue;
      if (x.code === 2) {
        io += rest;
        (ioIds ??= []).push([rest, x.id]);
      } else if (inCall) addTo((callSleep ??= new Map()), inCall, rest);
      else {
        addTo((wait ??= new Map()), x.waker, rest);
        let l = m.waitSamples.get(x.waker);
        if (!l) m.waitSamples.set(x.waker, (l = []));
        if (l.length < 10 && !l.includes(x.id)) l.push(x.id);
      }
    }
    // the thread's own block reads: on-CPU time while a read it issued is in flight (short sleeps under the
    // 10 us off-CPU floor, submission and completion work), and inside a read syscall that issued block I/O
    // (read_io, logged as a block read: the setup before the requests, the completion work after), is I/O too, not host computation. Not its writes:
    // a write in flight while it runs on is writeback (reclaim's swap-out, dirty pages) it does not wait for;
    // where it does wait (fsync, O_DIRECT), it waits off-CPU, counted above
    let bios: Act[] | null = null;
    for (let k = 0; k < acts.length; k++) {
      const x = acts[k];
      if (x.type === A.BIO && x.code === 0 && x.end > lo && x.ts < b) (bios ??= []).push(x);
    }
    let bioOn = 0;
    if (bios !== null) {
      bios.sort((p, q2) => p.ts - q2.ts);
      let cs = -Infinity;
      let ce = -Infinity;
      for (const x of bios) {
        if (x.ts > ce) {
          bioOn += onCpuIn(acts, cs, ce, lo, b);
          cs = x.ts;
          ce = x.end;
        } else ce = Math.max(ce, x.end);
      }
      bioOn += onCpuIn(acts, cs, ce, lo, b);
      io += bioOn;
    }
    let reclaimOn = 0;
    if (reclaims) {
      for (const r of reclaims) {
        let off = 0;
        for (const x of acts) if (x.type === A.OFF) off += Math.max(0, Math.min(b, x.end, r.end) - Math.max(lo, x.ts, r.ts));
        reclaimOn += Math.max(0, ov(r, lo, b) - off);
      }
    }
    reclaim += reclaimOn;
    // CUDA calls on the path: on-CPU time plus voluntary sleeps inside them, by class
    const allocBy = this.accAlloc.reset();
    const drainBy = this.accDrain.reset();
    const subBy = this.accSub.reset();
    const otherBy = this.accOther.reset();
    const retBy = this.accRet.reset();
    const moduleBy = this.accModule.reset();
    // the last call of each key on the path (its op code and kind)
    const codeOf = this.codeOf.reset();
    let alloc = 0;
    let drains = 0;
    let ret = 0;
    let submits = 0;
    let tracerIn = 0;
    // the probes' cost outside the records of the calls entered on the path (their entry traps come before their
    // timestamps, the return traps after their ends): time between calls that is the tracer's, not host computation
    let tracerOut = 0;
    const outside = this.probeCost?.outside ?? null;
    let other = 0;
    let callOn = 0;
    let modules = 0;
    let moduleIds: [number, number][] | null = null;
    let closeStart = b;
    for (let j = 0; j < nCalls; j++) {
      const c = calls[j];
      calls[j] = NO_ACT; // the scratch list holds no act past this interval
      if (c.id === closingId) closeStart = Math.min(closeStart, c.ts);
      if (outside !== null && c.ts > lo && c.ts <= b) tracerOut += outside.get(c.code) ?? 0;
      const on = Math.max(0, ov(c, lo, b) - (callOff?.get(c) ?? 0));
      callOn += on;
      const t = on + (callSleep?.get(c) ?? 0);
      if (t <= 0) continue;
      const info = OP_INFO[c.code];
      const role = roleAt(c.code);
      const kind = info?.kind ?? 'host';
      codeOf.setAct(c.key, c);
      // lazy module loading: a module-load call, or the share of a kernel's first launch beyond its later ones
      const lazy = kind === 'module' ? t : c.waker > 0 ? (t * Math.min(1, c.waker / Math.max(1, c.end - c.ts))) : 0;
      if (lazy > 0) {
        modules += lazy;
        moduleBy.add(c.key, lazy);
        (moduleIds ??= []).push([lazy, c.id]);
        if (lazy >= t) continue;
      }
      const rest = t - lazy;
      if (kind === 'alloc' || kind === 'free') {
        alloc += rest;
        allocBy.add(c.key, rest);
      } else if (role === 'drain' || role === 'submit_drain') {
        if (measured && c.ts < a && c.end > a) {
          // the drain whose return measured the completion (placed inside it: at its wakeup, or where it lost the
          // CPU): the rest of it is the wait's way back to the caller, which every waiting drain pays, a healthy
          // end-of-step sync too; not host work it serialized. Time in CUDA calls, owned by no chain.
          ret += rest;
          retBy.add(c.key, rest);
        } else {
          drains += rest;
          drainBy.add(c.key, rest);
        }
      } else if (role === 'submit') {
        // the probe's own cost inside the recorded call is not the workload's launch time: its share of the call's
        // time on this path (all of it for a call wholly inside) goes to the tracer, not to the submission
        const pc = this.probeCost?.inCall.get(c.code) ?? 0;
        const tr = pc > 0 ? Math.min(rest, (pc * ov(c, lo, b)) / Math.max(1, c.end - c.ts)) : 0;
        if (tr > 0) {
          tracerIn += tr;
          m.tracerInCalls += ov(c, lo, b) / Math.max(1, c.end - c.ts);
        }
        submits += rest - tr;
        subBy.add(c.key, rest - tr);
      } else {
        other += rest;
        otherBy.add(c.key, rest);
      }
    }
    this.left = len;
    let ownPre = 0;
    let allPre = 0;
    const preTotal = sumOf(pre);
    if (afterWake !== null && preTotal > 0) {
      const scale = Math.min(this.left, preTotal) / preTotal;
      for (const [k, w] of afterWake) {
        let into = m.afterWake.get(k);
        if (!into) m.afterWake.set(k, (into = new Map()));
        for (const [by, v] of w) addTo(into, by, v * scale);
      }
    }
    {
      const got = this.take(preTotal);
      if (got > 0 && preTotal > 0 && pre !== null) {
        for (const [k, v0] of pre) {
          const v = (got * v0) / preTotal;
          addTo(m.preempted, k, v);
          allPre += v;
          if (k === this.pid) ownPre += v;
        }
      }
    }
    if (preIds) for (const [v, id] of preIds) m.preemptSamples.add(v, id);
    m.reclaim += this.take(reclaim);
    const ioGot = this.take(io);
    m.io += ioGot;
    if (ioGot > 0 && ioIds) for (const [v, id] of ioIds) m.ioSamples.add(v, id);
    const waitTotal = sumOf(wait);
    const waitGot = Math.min(this.left, waitTotal);
    {
      const got = this.take(waitTotal);
      if (got > 0 && waitTotal > 0 && wait !== null) for (const [k, v] of wait) addTo(m.waitBy, k, (got * v) / waitTotal);
    }
    if (waitTotal > 0 && behind) for (const [k, v] of behind) addTo(m.runnableBehindWaker, k, (v * waitGot) / waitTotal);
    this.submitNs = 0;
    // module loading first among the calls: the first launch stalled in the loader, not in launching
    this.spreadAcc(modules, moduleBy, INTO_MODULE);
    if (modules > 0 && moduleIds) for (const [v, id] of moduleIds) m.moduleSamples.add(v, id);
    this.spreadAcc(alloc, allocBy, INTO_CALL);
    this.spreadAcc(drains, drainBy, INTO_DRAIN);
    this.spreadAcc(ret, retBy, INTO_CALL);
    m.tracerInCallNs += this.take(tracerIn);
    this.spreadAcc(submits, subBy, INTO_CALL);
    this.spreadAcc(other, otherBy, INTO_CALL);
    const submitNs = this.submitNs;
    // the probes' traps between the calls: the tracer's (from what would otherwise read as host computation only)
    const trapNs = Math.min(this.left, tracerOut);
    m.tracerOutsideNs += trapNs;
    // host computation: the rest of the path; whatever idle is left is host time by construction
    void callOn;
    const host = this.left - trapNs;
    this.left = 0;
    // after a drain: host work the drain serialized; otherwise the loop's own host time
    const hostOwn = openedBy === null ? host : 0;
    if (host > 0) {
      if (openedBy !== null) this.drainRec(openedBy).hostNs += host;
      else {
        m.hostNs += host;
        m.hostSamples.add(host, closingId);
      }
    }
    if (openedBy !== null) {
      const dd = this.drainRec(openedBy);
      dd.gaps++;
      if (partial) dd.partialGaps++;
      dd.samples.add(len, closingId);
    }
    const n = this.ivLen;
    if (n >= 0) {
      if (n >= IV_STRIDE * MAX_IVS) this.ivLen = -1;
      else {
        const o = n % IV_CHUNK;
        if (o === 0) this.ivChunks.push(new Float64Array(IV_CHUNK));
        const v = this.ivChunks[this.ivChunks.length - 1];
        v[o] = a;
        v[o + 1] = b;
        v[o + 2] = submitNs;
        v[o + 3] = ownPre;
        v[o + 4] = hostOwn;
        v[o + 5] = allPre;
        v[o + 6] = closeStart;
        this.ivLen = n + IV_STRIDE;
      }
    }
    codeOf.clearActs();
  }

  // idle()'s scratch: what is left of the interval being handed out, and its time in submissions
  private left = 0;
  private submitNs = 0;
  private readonly idleCalls: Act[] = [];
  private readonly accAlloc = new KeyAcc();
  private readonly accDrain = new KeyAcc();
  private readonly accSub = new KeyAcc();
  private readonly accOther = new KeyAcc();
  private readonly accRet = new KeyAcc();
  private readonly accModule = new KeyAcc();
  private readonly codeOf = new KeyAcc();

  /** the share of what is left that a class of the path takes (capped by what is left) */
  private take(v: number): number {
    const t = Math.min(this.left, Math.max(0, v));
    this.left -= t;
    return t;
  }

  /** hand a class's share out over its keys in proportion (keys in first-insertion order) */
  private spreadAcc(total: number, parts: KeyAcc, into: number): void {
    const got = this.take(total);
    if (got <= 0 || total <= 0) return;
    const m = this.m;
    for (let i = 0; i < parts.n; i++) {
      const k = parts.keys[i];
      const v = (got * parts.vals[i]) / total;
      if (into === INTO_MODULE) {
        let x = m.moduleLoad.get(k);
        if (!x) m.moduleLoad.set(k, (x = { op: this.codeOf.act(k).code, ns: 0, calls: 0 }));
        x.ns += v;
      } else if (into === INTO_DRAIN) this.drainRec(k).ownNs += v;
      else {
        let x = m.inCalls.get(k);
        if (!x) {
          const code = this.codeOf.act(k).code;
          m.inCalls.set(k, (x = { op: code, kind: OP_INFO[code]?.kind ?? 'host', ns: 0 }));
        }
        // the submission time launch_overhead counts (an NCCL collective's host time is mostly its wait for peers)
        if (x.kind !== 'collective' && (x.kind === 'launch' || roleAt(x.op) === 'submit')) this.submitNs += v;
        x.ns += v;
      }
    }
  }


  private drainRec(key: string): DrainIdle {
    let d = this.m.byDrain.get(key);
    if (!d) {
      const code = Number(/^op_(\d+)/.exec(key)?.[1] ?? NaN);
      const name = key.replace(/\(.*$/, '');
      let op = code;
      if (!Number.isFinite(op)) for (const o of OP_BY_CODE.values()) if (o.name === name) op = o.code;
      const dm = /\((\w+)\)$/.exec(key);
      const DIRS: Record<string, number> = { HostToHost: 0, HostToDevice: 1, DeviceToHost: 2, DeviceToDevice: 3, Default: 4 };
      d = newDrainIdle(key, op, name, dm ? DIRS[dm[1]] ?? null : null);
      this.m.byDrain.set(key, d);
    }
    return d;
  }

  /**
   * Host work after a drain is "serialized" only as far as GPU work could have filled the gap: letting the
   * host run on while the queue works (async copy, event, sync later) recovers at most the GPU's busy time.
   * In a host-bound loop (2 ms of host work per step around 0.1 ms of kernels) the GPU would idle anyway:
   * the excess is host computation that starved the GPU (host_compute), not the drain's cost.
   */
  private capSerialization(): void {
    const m = this.m;
    let serialized = 0;
    for (const d of m.byDrain.values()) serialized += d.hostNs;
    if (serialized <= m.busyNs || serialized <= 0) return;
    const keep = m.busyNs / serialized;
    for (const d of m.byDrain.values()) {
      const moved = d.hostNs * (1 - keep);
      d.hostNs -= moved;
      d.cappedNs += moved;
      m.hostNs += moved;
    }
  }

  /** End of the thread's events: close pending work by estimate; account preemption while busy. */
  finish(preemptedTotal: Map<number, number>): IdleModel {
    if (this.subN) this.closeSegment(Math.min(this.lastEnd, this.estimateDone() ?? this.subTs[this.subN - 1]), false, null, -1);
    for (const [pid, ns] of preemptedTotal) {
      const busy = ns - (this.m.preempted.get(pid) ?? 0);
      if (busy > 0) this.m.preemptedBusy.set(pid, busy);
    }
    if (this.firstSubmit !== null) this.m.spanNs = Math.max(0, this.lastEnd - this.firstSubmit);
    if (this.ivLen < 0) this.m.ivs = null;
    else {
      // Flattened on first read: only a merge of a process's queues (queues.ts) reads them, and a single-thread
      // process never does; the copy was up to 12 MB of fresh pages per launch-bound thread.
      const chunks = this.ivChunks;
      const len = this.ivLen;
      let flat: ArrayLike<number> | null | undefined;
      Object.defineProperty(this.m, 'ivs', {
        configurable: true,
        enumerable: true,
        get: () => {
          if (flat === undefined) {
            const ivs = new Float64Array(len);
            chunks.forEach((c, i) => ivs.set(i * IV_CHUNK + IV_CHUNK <= len ? c : c.subarray(0, len - i * IV_CHUNK), i * IV_CHUNK));
            flat = ivs;
          }
          return flat;
        },
        set: (v: ArrayLike<number> | null) => {
          flat = v;
        },
      });
    }
    this.ivChunks = [];
    this.m.ready = this.ready;
    this.ready = [];
    this.m.queueFrom = this.firstSubmit;
    this.m.queueTo = this.lastDone;
    this.capSerialization();
    if (DEBUG) {
      const m = this.m;
      const f = (x: Map<unknown, number>) => JSON.stringify([...x].map(([k, v]) => [k, Math.round(v / 1e3)]));
      console.error(`finish idle ${Math.round(m.idleNs / 1e3)}us pre ${f(m.preempted)} io ${Math.round(m.io / 1e3)} wait ${f(m.waitBy)} host ${Math.round(m.hostNs / 1e3)} inCalls ${JSON.stringify([...m.inCalls].map(([k, v]) => [k, Math.round(v.ns / 1e3)]))} drains ${JSON.stringify([...m.byDrain].map(([k, v]) => [k, Math.round(v.hostNs / 1e3), Math.round(v.ownNs / 1e3)]))}`);
    }
    return this.m;
  }
}
