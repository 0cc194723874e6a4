/**
 * The attribution as a stream: events go in in ARRIVAL order (events.id, the order the writer stored them), per
 * thread reorder buffers release them in (ts, id) order into the per-thread sweep (attribution.ts ThreadSweep and
 * its Timeline), and finish() returns the SessionProfile the chain detectors read.
 *
 * One engine, two feeds: the writer thread feeds it while the trace runs (stream-live.ts), and a database
 * without a stored analysis is replayed through it in id order (replaySession: rowid order, no sort). Every
 * rule below depends only on the events in id order, never on wall clock or on how they were batched, so the
 * live feed and a replay of the same database give the same profile, hence the same chains.
 *
 * Release rule (per thread). A call is stored when it returns but carries its entry time, an off-CPU interval
 * when the thread runs again (ts = switch-out), and calls and host events come through different rings, so a
 * thread's events arrive out of ts order. An event is released once no later arrival of its thread can sort
 * before it:
 *  - the thread's progress is the furthest end (ts + dur; a block request: its issue) seen; the hold window H is
 *    the largest lateness (progress at arrival minus ts) any of its arrivals had so far, at least HOLD_MIN_NS:
 *    it covers the ring interleaving and nested calls. Events with ts <= progress - H are released.
 *  - an off-CPU interval recorded inside a probed call (schema v9 in-call mark in events.a3 above the CPU) says
 *    a call is open whose entry is not known yet: the thread's release is frozen until a call covering the
 *    interval arrives (in-process traces carry no mark: the window alone holds).
 *  - a kernel's first launch is held until SETTLE_LATER later launches of that kernel arrived, so its excess
 *    over the fastest of them (lazy module loading, timeline.ts) is known when it is swept.
 *  - bounded: a thread holds at most HOLD_CAP events; past that the oldest go out anyway (counted as forced).
 *    An event that arrives after a later one of its thread was released is swept at once (counted as late).
 * The pre-pass quantities become online: copy rates and fastest drains are the fastest seen so far (at arrival),
 * so a thread's first calls are judged against less than the whole trace (warm-up differs slightly from a
 * two-pass analysis).
 *
 * The second sweep of threads whose early segments closed before any kernel time was learned is bounded: a
 * thread's released events are kept (at most EARLY_CAP) until its timeline learned LEARN_SAMPLES kernel times;
 * if segments were closed without one, those events are swept again with the median learned by then as prior and
 * that timeline replaces the first one (ThreadSweep.adoptTimeline).
 *
 * Memory: O(threads x (HOLD_CAP + EARLY_CAP)) events at worst, plus the sweep's per-thread state; never O(events).
 */
import type { Db } from '../store/db.js';
import { InlineScan, scanEvents } from '../store/event-scan.js';
import { doubleFields } from './shape.js';
import { ThreadSweep, settleProfile, type AttributionOptions, type HostTotals, type SessionProfile } from './attribution.js';
import { probeCostOf } from './probe-cost.js';
import { q } from './stats.js';
import { FASTEST, LAUNCH, MIN_COPY_GBPS, PLAN, RATE, type OpPlan } from './prescan.js';
import { rateKey } from './optables.js';

const OFF_CPU = 128;
const BLOCK_IO = 134;
const RECLAIM = 136;
const READ_IO = 138;
const PAGE_ALLOC = 133;
/**
 * The hold window's floor: off-CPU records were measured arriving up to ~0.3 s after the calls that follow them
 * on a loaded machine (a zoo trace swept with a window learned from zero put 16 of them out of order and turned
 * a cpu_preemption verdict into host_compute); with the floor a thread's events wait up to 1 s of trace time or
 * HOLD_CAP events, whichever comes first.
 */
export const HOLD_MIN_NS = 1_000_000_000;
/** events a thread may hold back at most */
export const HOLD_CAP = 1 << 16;
/** released events kept per thread until its timeline learned a kernel time */
export const EARLY_CAP = 1 << 16;
/** waiting drains (kernel-time samples) a thread's timeline learns before its early segments are swept again */
export const LEARN_SAMPLES = 16;
/** later launches of a kernel seen before its first launch's excess is settled */
export const SETTLE_LATER = 2;
/** 2^32: the in-call state sits above the CPU in an off-CPU row's a3 */
const CPU_BITS = 4294967296;

/**
 * Held events live in one Float64Array per engine, F numbers per event (a slot), not as objects: a thread holds
 * up to HOLD_CAP of them and reads each one again HOLD_CAP arrivals later, so every object (and the boxed
 * numbers in it) outlived the young generation, was copied and promoted, and was read back from scattered
 * memory; a slot is 96 contiguous bytes, reused through a free list.
 */
const F = 12;
const ID = 0;
const TS = 1;
const DUR = 2;
const PID = 3;
const OP = 4;
const RET = 5;
const A0 = 6;
/** 1: a kernel's first launch whose excess is not settled yet */
const UNSETTLED = 10;
/** a first launch's excess over the kernel's later launches (ns) */
const EXCESS = 11;

interface Kernel {
  /** the first launch's slot, -1 once settled */
  first: number;
  later: number;
  min: number;
}

interface Mark {
  ts: number;
  end: number;
  /** the op of the call it was recorded inside */
  op: number;
}
/** arrived calls a thread remembers, to tell whether a late off-CPU interval's call is already in */
const CALL_RING = 4096;

class ThreadState {
  sweep: ThreadSweep | null = null;
  /** held events that arrived in (ts, id) order, from head on; the others in a binary heap */
  readonly buf: number[] = [];
  head = 0;
  /**
   * A second sorted run, from head2 on, for arrivals that sort before buf's tail but after this one's: two sources
   * each in order (an in-process shim's calls behind the kernel's off-CPU records, which come sooner) put most
   * calls behind an off-CPU record, and a heap of up to HOLD_CAP of them cost two slab reads per level per event.
   */
  readonly buf2: number[] = [];
  head2 = 0;
  readonly heap: number[] = [];
  /** furthest end seen (the thread's progress), the hold window, the release bound */
  progress = -Infinity;
  hold = HOLD_MIN_NS;
  bound = -Infinity;
  /** last released (ts, id) */
  lastTs = -Infinity;
  lastId = -1;
  /** off-CPU intervals marked inside a call whose call has not arrived */
  marks: Mark[] = [];
  /** the last CALL_RING calls that arrived (in arrival = return order, so their ends do not decrease) */
  private cTs: Float64Array | null = null;
  private cEnd: Float64Array | null = null;
  private cOp: Int32Array | null = null;
  private calls = 0;
  readonly rates = new Map<string, number>();
  readonly fastest = new Map<number, number>();
  readonly kernels = new Map<number, Map<number, Kernel>>();
  /** the last launch op looked up in kernels, and its map */
  kOp = -1;
  kMap: Map<number, Kernel> | undefined = undefined;
  /** released events kept until the timeline learns a kernel time (null: learned, or gave up) */
  early: number[] | null = [];
  constructor(readonly tid: number) {
    doubleFields(this, ['lastId', 'kOp']);
  }

  called(ts: number, end: number, op: number): void {
    if (this.cTs === null) {
      this.cTs = new Float64Array(CALL_RING);
      this.cEnd = new Float64Array(CALL_RING);
      this.cOp = new Int32Array(CALL_RING);
    }
    const i = this.calls++ % CALL_RING;
    this.cTs[i] = ts;
    this.cEnd![i] = end;
    this.cOp![i] = op;
  }

  /** whether a call of `op` covering [ts, end] already arrived (true too when the ring no longer reaches back that far) */
  arrived(ts: number, end: number, op: number): boolean {
    const n = Math.min(this.calls, CALL_RING);
    if (n === 0) return false;
    const at = (k: number) => (this.calls - n + k) % CALL_RING;
    const cEnd = this.cEnd!;
    // first call (oldest first) that returned at or after the interval's end
    let lo = 0;
    let hi = n;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (cEnd[at(mid)] < end) lo = mid + 1;
      else hi = mid;
    }
    if (lo === n) return false;
    if (lo === 0 && this.calls > CALL_RING) return true;
    // calls nested in the covering one returned before it: look a few further
    for (let k = lo; k < n && k < lo + 8; k++) if (this.cOp![at(k)] === op && this.cTs![at(k)] <= ts) return true;
    return false;
  }
}

/** A sorted run with its first `head` entries released, compacted when that pays; returns the new head. */
function compactRun(buf: number[], head: number): number {
  if (head === buf.length && head >= 1024) {
    // emptied keeping its storage (length = 0 gave it back, and the next pushes regrew it)
    while (buf.length) buf.pop();
    return 0;
  }
  if (head > 4096 && head * 2 > buf.length) {
    // moved down in place (splice built an array of the removed entries)
    const n = buf.length - head;
    for (let k = 0; k < n; k++) buf[k] = buf[k + head];
    while (buf.length > n) buf.pop();
    return 0;
  }
  return head;
}

export interface StreamStats {
  /** events fed (every op) */
  events: number;
  /** events swept after a later event of their thread had been released (out of order by more than the window) */
  late: number;
  /** events released before their bound because their thread held HOLD_CAP events (any thread above ~65k events a second) */
  forced: number;
  /** threads whose timeline was swept again with a learned kernel-time prior */
  resweeps: number;
  /** threads that closed segments with no kernel time known and held more than EARLY_CAP events before learning one */
  unlearnedGaveUp: number;
  /** the largest lateness of an arrival (ns: how far its ts lay behind its thread's progress) */
  maxLateNs: number;
}

export class StreamEngine {
  private readonly threads = new Map<number, ThreadState>();
  private readonly counts: number[] = [];
  private readonly odd = new Map<number, number>();
  /** first-launch excess by event id, read by ThreadSweep while the launch is swept (set just around it) */
  private readonly first = new Map<number, number>();
  private readonly a = [0, 0, 0, 0];
  private firstTs = Infinity;
  private lastEnd = 0;
  private cudaCalls = 0;
  private offCpuEvents = 0;
  private last: ThreadState | null = null;
  /** the slots (F numbers each) of the events held or kept for a resweep; free slots' indices in freeSlots */
  // Sized for one thread's bound at once (HOLD_CAP held + EARLY_CAP kept): the pages are only touched as slots are
  // used, where doubling from a small slab copied it into fresh memory at every step (page faults were a large
  // part of a launch-only trace's analysis, CPU user and system).
  private slab = new Float64Array(F * (HOLD_CAP + EARLY_CAP));
  private used = 0;
  private readonly freeSlots: number[] = [];
  /** the last id fed (replays continue after it) */
  lastId = 0;
  readonly stats: StreamStats = { events: 0, late: 0, forced: 0, resweeps: 0, unlearnedGaveUp: 0, maxLateNs: 0 };
  private finished = false;
  private readonly host = {
    io: new Map<number, { n: number; bytes: number; ns: number }>(),
    windows: new Map<number, { ts: number; win: number | null; pages: number | null }>(),
    pagesByPid: new Map<number, number | null>(),
  };

  constructor(
    readonly sessionId: number,
    private readonly opts: AttributionOptions = {},
  ) {
    doubleFields(this, ['lastEnd', 'lastId']);
    doubleFields(this.stats, ['maxLateNs']);
  }

  /** One event, in arrival (id) order; columns as stored (NULL as null). */
  feed(id: number, ts: number, rawDur: number | null, pid: number, tid: number, op: number, ret: number | null, a0: number | null, a1: number | null, a2: number | null, a3: number | null): void {
    if (id > this.lastId) this.lastId = id;
    this.stats.events++;
    if (Number.isInteger(op) && op >= 0 && op < 4096) this.counts[op] = (this.counts[op] ?? 0) + 1;
    else this.odd.set(op, (this.odd.get(op) ?? 0) + 1);
    if (op === BLOCK_IO || op === PAGE_ALLOC) this.hostEvent(op, ts, rawDur, pid, a0, a1);
    if (!(op <= OFF_CPU || op === BLOCK_IO || op === RECLAIM || op === READ_IO)) return;
    const dur = Math.max(0, rawDur ?? 0);
    const end = ts + dur;
    if (ts < this.firstTs) this.firstTs = ts;
    if (end > this.lastEnd) this.lastEnd = end;
    if (op === OFF_CPU) this.offCpuEvents++;
    else if (op < OFF_CPU) this.cudaCalls++;
    let t = this.last;
    if (t === null || t.tid !== tid) {
      t = this.threads.get(tid) ?? null;
      if (t === null) this.threads.set(tid, (t = new ThreadState(tid)));
      this.last = t;
    }
    const e = this.alloc();
    const S = this.slab;
    const o = e * F;
    S[o + ID] = id;
    S[o + TS] = ts;
    S[o + DUR] = dur;
    S[o + PID] = pid;
    S[o + OP] = op;
    S[o + RET] = ret ?? 0;
    S[o + A0] = a0 ?? 0;
    S[o + A0 + 1] = a1 ?? 0;
    S[o + A0 + 2] = a2 ?? 0;
    S[o + A0 + 3] = a3 ?? 0;
    S[o + UNSETTLED] = 0;
    S[o + EXCESS] = 0;
    const plan = PLAN[op];
    if (plan !== undefined) this.learn(t, e, plan, op, dur, a0 ?? 0, a1 ?? 0, a2 ?? 0, a3 ?? 0);
    // lateness: how far behind the thread's progress this event starts
    const lateness = t.progress - ts;
    if (lateness > this.stats.maxLateNs) this.stats.maxLateNs = lateness;
    if (lateness > t.hold) t.hold = lateness;
    const prog = op === BLOCK_IO ? ts : end;
    if (prog > t.progress) t.progress = prog;
    if (op === OFF_CPU) {
      // marked inside a call: hold unless that call already arrived (calls and off-CPU intervals come through
      // different rings: the interval often arrives after its call)
      const state = Math.floor((a3 ?? 0) / CPU_BITS);
      if (state >= 3 && !t.arrived(ts, end, (state - 1) / 2)) t.marks.push({ ts, end, op: (state - 1) / 2 });
    } else if (op < OFF_CPU) {
      t.called(ts, end, op);
      // a call returned: the marked intervals it covers are accounted for
      if (t.marks.length) t.marks = t.marks.filter((m) => !(m.op === op && m.ts >= ts && m.end <= end));
    }
    if (ts < t.lastTs || (ts === t.lastTs && id < t.lastId)) {
      // a later event of this thread is already swept: sweep this one now (counted)
      this.stats.late++;
      this.deliver(t, e);
      return;
    }
    const buf = t.buf;
    const n = buf.length;
    const buf2 = t.buf2;
    const n2 = buf2.length;
    if (n === t.head || this.before(buf[n - 1], e)) buf.push(e);
    // out of order (an off-CPU interval from the other ring, a call that contains earlier arrivals): to the
    // second run if it follows its tail, else to the heap
    else if (n2 === t.head2 || this.before(buf2[n2 - 1], e)) buf2.push(e);
    else this.heapPush(t.heap, e);
    this.advance(t, false);
  }

  /**
   * The host aggregates the detectors read (chains/common.ts hostAggregates: block I/O per pid, page-alloc
   * windows and pages per pid), summed here as SQLite's GROUP BY does (sum over non-NULL values, NULL when there
   * is none; max likewise), so that the end of a trace does not scan every stored row again for them (2.4 s of
   * CPU on a 10.5M-event trace).
   */
  private hostEvent(op: number, ts: number, dur: number | null, pid: number, a0: number | null, a1: number | null): void {
    const h = this.host;
    if (op === BLOCK_IO) {
      let x = h.io.get(pid);
      if (!x) h.io.set(pid, (x = { n: 0, bytes: 0, ns: 0 }));
      x.n++;
      if (a0 !== null) x.bytes += a0;
      if (dur !== null) x.ns += dur;
      return;
    }
    let w = h.windows.get(ts);
    if (!w) h.windows.set(ts, (w = { ts, win: null, pages: null }));
    if (a1 !== null && (w.win === null || a1 > w.win)) w.win = a1;
    if (a0 !== null) {
      w.pages = (w.pages ?? 0) + a0;
      h.pagesByPid.set(pid, (h.pagesByPid.get(pid) ?? 0) + a0);
    } else if (!h.pagesByPid.has(pid)) h.pagesByPid.set(pid, null);
  }

  /** The online pre-pass: fastest copy rate and drain so far, kernels' first launches. */
  private learn(t: ThreadState, e: number, p: OpPlan, op: number, dur: number, a0: number, a1: number, a2: number, a3: number): void {
    const a = this.a;
    a[0] = a0;
    a[1] = a1;
    a[2] = a2;
    a[3] = a3;
    if (p.what & RATE) {
      const bytes = p.bytes >= 0 ? a[p.bytes] : 0;
      if (dur > 0 && bytes > 0) {
        const d = p.dir >= 0 ? a[p.dir] : null;
        // `op:d` (d 0..4), else `op:` (interned)
        const key = rateKey(op, d !== null && d >= 0 && d <= 4 ? d : null);
        const rate = dur / bytes;
        const was = t.rates.get(key);
        // slower than MIN_COPY_GBPS: not an own-transfer rate (the call waited for queued work)
        if (rate <= 1 / MIN_COPY_GBPS && (was === undefined || rate < was)) t.rates.set(key, rate);
      }
    }
    if (p.what & FASTEST) {
      const was = t.fastest.get(op);
      if (was === undefined || dur < was) t.fastest.set(op, dur);
    }
    if (p.what & LAUNCH) {
      const f = a[p.func];
      // the launch op of the thread's previous launch is usually this one's
      let byOp = t.kOp === op ? t.kMap : t.kernels.get(op);
      if (!byOp) t.kernels.set(op, (byOp = new Map()));
      t.kOp = op;
      t.kMap = byOp;
      const k = byOp.get(f);
      if (!k) {
        this.slab[e * F + UNSETTLED] = 1;
        byOp.set(f, { first: e, later: 0, min: Infinity });
      } else {
        k.later++;
        if (dur < k.min) k.min = dur;
        if (k.first >= 0 && k.later >= SETTLE_LATER) this.settle(k);
      }
    }
  }

  /** Release what the thread's bound allows (all of it at the end). */
  private advance(t: ThreadState, all: boolean): void {
    if (t.marks.length === 0) {
      const b = t.progress - t.hold;
      if (b > t.bound) t.bound = b;
    }
    const buf = t.buf;
    const buf2 = t.buf2;
    const heap = t.heap;
    for (;;) {
      // the next event in (ts, id) order: the smallest of the sorted runs' heads and the heap's top
      let e = -1;
      let from = 0;
      if (t.head < buf.length) {
        e = buf[t.head];
        from = 1;
      }
      if (t.head2 < buf2.length && (e < 0 || this.before(buf2[t.head2], e))) {
        e = buf2[t.head2];
        from = 2;
      }
      if (heap.length > 0 && (e < 0 || this.before(heap[0], e))) {
        e = heap[0];
        from = 3;
      }
      if (e < 0) break;
      const over = buf.length - t.head + (buf2.length - t.head2) + heap.length > HOLD_CAP;
      const eTs = this.slab[e * F + TS];
      const unsettled = this.slab[e * F + UNSETTLED] !== 0;
      if (!all && !over && (eTs > t.bound || unsettled)) break;
      if (over && !all && (eTs > t.bound || unsettled)) this.stats.forced++;
      if (unsettled) this.settleEv(t, e);
      if (from === 3) this.heapPop(heap);
      else if (from === 1) buf[t.head++] = -1;
      else buf2[t.head2++] = -1;
      this.deliver(t, e);
    }
    t.head = compactRun(buf, t.head);
    t.head2 = compactRun(buf2, t.head2);
    // a marked interval older than what was swept can no longer hold anything back (its call will be late)
    if (t.marks.length && t.marks[0].ts < t.lastTs) t.marks = t.marks.filter((m) => m.ts >= t.lastTs);
  }

  private deliver(t: ThreadState, e: number): void {
    const S = this.slab;
    const o = e * F;
    if (t.sweep === null) t.sweep = new ThreadSweep(S[o + PID], t.tid, S[o + TS], this.opts, t.rates, t.fastest, null, this.first);
    this.sweepOne(t.sweep, e);
    const ts = S[o + TS];
    const id = S[o + ID];
    if (ts > t.lastTs || (ts === t.lastTs && id > t.lastId)) {
      t.lastTs = ts;
      t.lastId = id;
    }
    const early = t.early;
    if (early !== null) {
      early.push(e);
      const idle = t.sweep.p.idle;
      if (idle.kernelNs.count >= LEARN_SAMPLES || early.length >= EARLY_CAP) this.settleEarly(t);
    } else this.release(e);
  }

  /** a free slot (the slab doubles when none is left) */
  private alloc(): number {
    const f = this.freeSlots.pop();
    if (f !== undefined) return f;
    if ((this.used + 1) * F > this.slab.length) {
      const bigger = new Float64Array(this.slab.length * 2);
      bigger.set(this.slab);
      this.slab = bigger;
    }
    return this.used++;
  }

  /** a swept event's slot, free again (a first launch swept late keeps it: its kernel's settle still writes there) */
  private release(e: number): void {
    if (this.slab[e * F + UNSETTLED] === 0) this.freeSlots.push(e);
  }

  /**
   * The thread's kernel time is known well enough (LEARN_SAMPLES waiting drains), or it held EARLY_CAP events, or
   * it ended: if segments were closed by estimate before then (with no kernel time known, or one learned from
   * fewer samples), the early events are swept again with the median learned so far as the prior (the two-pass
   * analysis took the whole thread's median; a median of the first several is less exposed to a disturbed first
   * step, such as a completion measured late after a long preemption, than the first value or two alone).
   */
  private settleEarly(t: ThreadState): void {
    const early = t.early!;
    t.early = null;
    this.resweep(t, early);
    for (const x of early) this.release(x);
  }

  private resweep(t: ThreadState, early: number[]): void {
    const idle = t.sweep!.p.idle;
    if ((idle.unlearnedSegments === 0 && idle.estimatedSegments === 0) || early.length === 0) return;
    if (idle.kernelNs.count === 0) {
      if (early.length >= EARLY_CAP) this.stats.unlearnedGaveUp++;
      return;
    }
    const again = new ThreadSweep(this.slab[early[0] * F + PID], t.tid, this.slab[early[0] * F + TS], { probeCost: this.opts.probeCost }, t.rates, t.fastest, q(idle.kernelNs, 0.5), this.first, idle.kernelNs.count);
    for (const x of early) this.sweepOne(again, x);
    t.sweep!.adoptTimeline(again);
    this.stats.resweeps++;
  }

  private sweepOne(s: ThreadSweep, e: number): void {
    const S = this.slab;
    const o = e * F;
    const a = this.a;
    a[0] = S[o + A0];
    a[1] = S[o + A0 + 1];
    a[2] = S[o + A0 + 2];
    a[3] = S[o + A0 + 3];
    const id = S[o + ID];
    const excess = S[o + EXCESS];
    if (excess > 0) {
      this.first.set(id, excess);
      s.event(id, S[o + TS], S[o + DUR], S[o + PID], S[o + OP], S[o + RET], a);
      this.first.delete(id);
    } else s.event(id, S[o + TS], S[o + DUR], S[o + PID], S[o + OP], S[o + RET], a);
  }

  /** (ts, id) order of two slots */
  private before(x: number, y: number): boolean {
    const S = this.slab;
    const xt = S[x * F + TS];
    const yt = S[y * F + TS];
    return xt < yt || (xt === yt && S[x * F + ID] < S[y * F + ID]);
  }

  private heapPush(h: number[], e: number): void {
    let i = h.length;
    h.push(e);
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!this.before(e, h[p])) break;
      h[i] = h[p];
      i = p;
    }
    h[i] = e;
  }

  private heapPop(h: number[]): void {
    const last = h.pop()!;
    const n = h.length;
    if (n === 0) return;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= n) break;
      const c = l + 1 < n && this.before(h[l + 1], h[l]) ? l + 1 : l;
      if (!this.before(h[c], last)) break;
      h[i] = h[c];
      i = c;
    }
    h[i] = last;
  }

  private settle(k: Kernel): void {
    const o = k.first * F;
    k.first = -1;
    const S = this.slab;
    S[o + UNSETTLED] = 0;
    if (k.later > 0 && S[o + DUR] > k.min) S[o + EXCESS] = S[o + DUR] - k.min;
  }

  private settleEv(t: ThreadState, e: number): void {
    const k = t.kernels.get(this.slab[e * F + OP]);
    if (k) for (const x of k.values()) if (x.first === e) return this.settle(x);
    this.slab[e * F + UNSETTLED] = 0;
  }

  /** Everything fed so far, settled: the session profile (the engine takes no more events after this). */
  finish(): SessionProfile {
    if (this.finished) throw new Error('StreamEngine.finish called twice');
    this.finished = true;
    const prof: SessionProfile = {
      sessionId: this.sessionId, threads: new Map(), firstTs: this.firstTs, lastEnd: this.lastEnd, cudaCalls: this.cudaCalls, offCpuEvents: this.offCpuEvents, notes: [], opCounts: new Map(),
    };
    // threads in tid order, as the sorted sweep produced them (detectors iterate in this order)
    for (const t of [...this.threads.values()].sort((x, y) => x.tid - y.tid)) {
      t.marks = [];
      this.advance(t, true);
      if (!t.sweep) continue;
      if (t.early !== null) this.settleEarly(t);
      const p = t.sweep.flush();
      if (p.cudaCalls > 0 || p.offCount > 0) prof.threads.set(p.tid, p);
    }
    for (let op = 0; op < this.counts.length; op++) if (this.counts[op]) prof.opCounts.set(op, this.counts[op]);
    for (const [op, n] of this.odd) prof.opCounts.set(op, n);
    const s = this.stats;
    if (s.late > 0) prof.notes.push(`${s.late} events reached the analysis after a later event of their thread had been swept (out of order by more than the hold window): swept out of order`);
    // forced releases are the cap working (a busy thread's window is HOLD_CAP events, not HOLD_MIN_NS): only late ones are worth a note
    if (s.unlearnedGaveUp > 0) prof.notes.push(`${s.unlearnedGaveUp} threads learned no kernel time within their first ${EARLY_CAP} events: their first segments' idle time is an upper bound`);
    // in GROUP BY order (ascending key), as the SQL aggregates came
    const h = this.host;
    const byKey = <V>(m: Map<number, V>) => new Map([...m].sort((x, y) => x[0] - y[0]));
    prof.hostTotals = {
      io: byKey(h.io),
      pageWindows: [...h.windows.values()].sort((x, y) => x.ts - y.ts) as HostTotals['pageWindows'],
      pagesByPid: byKey(h.pagesByPid) as HostTotals['pagesByPid'],
    };
    settleProfile(prof);
    return prof;
  }
}

/**
 * Feeds an engine the session's rows of one database in id order (store/event-scan.ts: no row objects, no sort).
 * One InlineScan per Replayer (the live tap calls it after every write).
 */
export class Replayer {
  private readonly scan: InlineScan;

  constructor(
    db: Db,
    private readonly engine: StreamEngine,
  ) {
    this.scan = new InlineScan(db, engine.feed.bind(engine));
  }

  /** Feed the rows with id in (engine.lastId, toId] (toId: all); returns the rows fed. */
  feed(toId?: number, onProgress?: (read: number) => void): number {
    const n = this.scan.scan(this.engine.sessionId, this.engine.lastId, toId, onProgress);
    // ids of the session can skip (another session's rows in between): the bound was read
    if (toId !== undefined && this.engine.lastId < toId) this.engine.lastId = toId;
    return n;
  }
}

/** Feed `engine` the session's rows after engine.lastId (up to toId), in id order. */
export function replaySession(db: Db, engine: StreamEngine, toId?: number, onProgress?: (read: number) => void): number {
  return new Replayer(db, engine).feed(toId, onProgress);
}

/** The cold path: the whole session replayed through the engine (what the writer thread computes live). */
export function attributeSession(db: Db, sessionId: number, opts: AttributionOptions = {}): SessionProfile {
  // the session's probe-cost calibration unless the caller chose (probe-cost.ts)
  const engine = new StreamEngine(sessionId, opts.probeCost === undefined ? { ...opts, probeCost: probeCostOf(db, sessionId) } : opts);
  // a large session is read on a second thread while this one analyses (store/event-scan.ts)
  scanEvents(db, sessionId, engine.lastId, undefined, engine.feed.bind(engine), { onProgress: opts.onProgress });
  return engine.finish();
}
