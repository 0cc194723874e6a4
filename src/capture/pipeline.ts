/**
 * The capture loop: drain every ring buffer on a timer (BPF programs submit
 * with BPF_RB_NO_WAKEUP, so nothing wakes us per record), decode into one
 * columnar batch, resolve sampled stacks, and hand the batch to a sink (the
 * store) once per tick. Losses are counted at every stage: kernel reserve
 * failures and map-full cases (cw_drops), malformed records, and whatever
 * the sink refuses.
 */
import type { EventBatch, LossCount, ProcessInfo, StackFrame } from '../common/events.js';
import { allocBatch } from '../common/events.js';
import type { Addon, ObjHandle, RingHandle } from '../probe/addon-types.js';
import { RecordDecoder, TimeBase, type DecodeSink, type RawPyFrames } from './decode.js';
import { LOSS_REASONS, NON_EVENT_LOSSES } from '../common/wire.js';
import type { RecordSource } from './inproc-source.js';
import { SHIM_STACK_ID_BASE } from './inproc-layout.js';


/** Where batches go (the store's writer, or a fake in tests). */
export interface BatchSink {
  /**
   * With acquire(), write() takes the batch over (the sink owns it until it gave it
   * back through acquire()); without, the loop reuses one batch of its own.
   */
  write(batch: EventBatch): void;
  /** A batch to decode into, or null when the sink is behind (the loop then leaves the rest in the rings). */
  acquire?(): EventBatch | null;
  /** Block (at most `ms`) until acquire() can succeed; false on timeout. Only the final drain waits. */
  waitForSpace?(ms: number): boolean;
  processes(p: ProcessInfo[]): void;
  internStack(frames: StackFrame[], text: string): number;
  /** id of an NVTX message in nvtx_names (interned), written into the call's a3 */
  internNvtxName?(text: string): number;
}

export interface StackSource {
  obj: ObjHandle;
  map: string;
  /** py: the Python frames the kernel read for this call (bpf/python.bpf.h), to merge in */
  symbolize(pid: number, addrs: bigint[], py?: RawPyFrames): { frames: StackFrame[]; text: string };
}

export interface CaptureHooks {
  fork?(parent: number, child: number, isThread: boolean): void;
  libLoad?(pid: number, stopped: boolean): void;
  /** first event seen from a pid (read /proc, capture its mappings while it lives) */
  newPid?(pid: number): void;
  /** a runtime launch of function address `addr` seen from `pid` (first sight): name it */
  kernelFunc?(pid: number, addr: number): void;
  /** a driver function handle and the kernel name it was looked up by */
  funcName?(pid: number, handle: number, name: string): void;
  /** the loop left its idle back-off (records arrived, or wake()): periodic work that backed off too can resume */
  active?(): void;
  /**
   * The drain fell behind (true: a source's ring was found at least BEHIND_FILL unread, so it overflows if the
   * next drains come as late) or caught up (false: below CAUGHT_UP_FILL at a tick).
   */
  behind?(on: boolean): void;
  /** the first CUDA call record was decoded (at the end of that tick) */
  firstCall?(): void;
}

export interface CaptureOptions {
  intervalMs?: number;
  /**
   * Back off while nothing arrives: after IDLE_TICKS ticks that drained nothing (and hold nothing
   * undelivered), each further empty tick doubles the drain period, up to this many ms; the first
   * tick that drains a record, or a wake() (a lifecycle record: a traced process forked, exec'd or
   * was parked, so its calls follow), goes back to intervalMs. Default: no back-off. The rings must
   * hold this long at the highest rate (rb_calls 32 MiB: over a second at the ~200k events/s this
   * VM traces, BENCHMARKS.md section 2), so leave it off with sources of a small ring (the shim's).
   */
  idleIntervalMs?: number;
  /** bytes per drain() call */
  drainBytes?: number;
  /** rings drained as soon as the kernel wakes us for them as well (rb_life: parked processes wait on it) */
  fastRings?: string[];
  /** poll the fast rings on a timer of this period instead of being woken (the fallback without addon.ringWatch: 2 ms) */
  fastIntervalMs?: number;
  /** events per batch handed to the sink */
  batchEvents?: number;
  /** record sources drained beside the BPF rings (the in-process shim's rings), same frames */
  sources?: RecordSource[];
  /**
   * With a sink that owns batches (acquire()): hand a partly filled batch over at the end of a
   * tick only when it is a quarter full or this many ms passed since the last hand-over (default
   * 0: every tick). Its rows are resolved (first sight of a pid, stacks, NVTX names) every tick
   * either way; a bounded number of batches in flight then covers more time at low rates.
   */
  handOverMs?: number;
}

export interface CaptureStats {
  events: number;
  ticks: number;
  lastTickMs: number;
  /** longest tick: how long the rings went undrained at worst (ring size must cover it) */
  maxTickMs: number;
  /** longest gap between two tick starts (timer delay + tick) */
  maxGapMs: number;
  kernelLosses: Record<string, number>;
  malformed: number;
  sinkFailures: number;
  /** ticks cut short because the sink had no free batch (its queue was full) */
  stalls: number;
}

export class Capture {
  private readonly buf: Buffer;
  /** the batch being filled; null after one was handed over and none was free yet */
  private batch: EventBatch | null;
  private readonly batchEvents: number;
  /** drained bytes not decoded yet (no free batch): decoded first on the next tick */
  private pendOff = 0;
  private pendLen = 0;
  private moved = 0;
  private stalled = false;
  /** rows of this.batch already resolved (pids noted, stacks and NVTX names interned) */
  private resolved = 0;
  private lastHandOver = 0;
  /** stopping: every tick hands its batch over */
  private final = false;
  private readonly decoder: RecordDecoder;
  private readonly pendingProcs = new Map<number, ProcessInfo>();
  /** pids whose comm came from their own records (exec, fork, exit, /proc), not only from off-CPU records */
  private readonly namedPids = new Set<number>();
  private readonly seenPids = new Set<number>();
  private readonly stackCache = new Map<string, number>();
  private timer: NodeJS.Timeout | null = null;
  /** the drain period now (intervalMs, or longer while idle) and the consecutive ticks that found nothing */
  private period = 0;
  private idleTicks = 0;
  /** when the pending timer fires (performance.now()) */
  private dueAt = 0;
  /** a drain in this tick returned bytes */
  private drained = false;
  /** stopTimer() ran: no tick re-arms the timer */
  private stopping = false;
  private fastTimer: NodeJS.Timeout | null = null;
  /** rings drained when the kernel wakes us (addon.ringWatch) */
  private watched: { name: string; handle: RingHandle }[] = [];
  private lastTickStart = 0;
  private sinkError: Error | null = null;
  readonly stats: CaptureStats = { events: 0, ticks: 0, lastTickMs: 0, maxTickMs: 0, maxGapMs: 0, kernelLosses: {}, malformed: 0, sinkFailures: 0, stalls: 0 };

  constructor(
    private readonly addon: Addon,
    private readonly rings: { name: string; handle: RingHandle }[],
    private readonly dropsObj: ObjHandle,
    time: TimeBase,
    private readonly sink: BatchSink,
    private readonly hooks: CaptureHooks = {},
    private readonly stacks: StackSource | null = null,
    private readonly opts: CaptureOptions = {},
  ) {
    this.buf = Buffer.allocUnsafeSlow(opts.drainBytes ?? 1 << 20);
    this.batchEvents = opts.batchEvents ?? 16384;
    this.batch = sink.acquire ? sink.acquire() : allocBatch(this.batchEvents);
    const decodeSink: DecodeSink = {
      process: (p) => this.mergeProcess(p),
      libLoad: (pid, stopped) => this.hooks.libLoad?.(pid, stopped),
      fork: (parent, child, isThread) => this.hooks.fork?.(parent, child, isThread),
      ...(this.hooks.kernelFunc ? { kernelFunc: (pid: number, addr: number) => this.hooks.kernelFunc!(pid, addr) } : {}),
      funcName: (pid, handle, name) => this.hooks.funcName?.(pid, handle, name),
    };
    this.decoder = new RecordDecoder(time, decodeSink);
  }

  start(): void {
    if (this.timer) return;
    this.stopping = false;
    this.period = this.opts.intervalMs ?? 20;
    this.arm(this.period);
    // Lifecycle records can mean a process parked by the loader probe, waiting
    // for us to attach and SIGCONT it. The BPF side wakes us for those (and for
    // a traced process's fork and exec, whose /proc is read while it lives:
    // BPF_RB_FORCE_WAKEUP), so the ring is watched on the event loop and drained
    // the moment one arrives; nothing wakes us otherwise. A system-wide trace
    // used to poll it every 2 ms instead: 500 wakeups a second of its own,
    // competing for the CPUs with every process it does not trace (BENCHMARKS.md
    // §7b). An addon without ringWatch keeps the poll.
    const fast = this.rings.filter((r) => this.opts.fastRings?.includes(r.name));
    if (fast.length) {
      const drainFast = (): void => {
        if (this.sinkError) return;
        try {
          // a traced process forked, exec'd or was parked: its calls follow, drain at the full rate again
          if (this.tickRings(fast) > 0 || this.drained) this.wake();
        } catch (e) {
          this.sinkError = e as Error;
          this.stopTimer();
        }
      };
      if (this.addon.ringWatch && !this.opts.fastIntervalMs) {
        for (const r of fast) this.addon.ringWatch(r.handle, drainFast);
        this.watched = fast;
      } else this.fastTimer = setInterval(drainFast, this.opts.fastIntervalMs ?? 2);
    }
  }

  /** The timer, one tick at a time (its period changes while idle). */
  private arm(ms: number): void {
    this.dueAt = performance.now() + ms;
    this.timer = setTimeout(() => {
      this.timer = null;
      const t0 = performance.now();
      try {
        this.tick();
      } catch (e) {
        this.sinkError = e as Error;
        this.stopTimer();
        return;
      }
      // ticks start a period apart, as setInterval's would (a long tick is followed at once)
      if (!this.stopping) this.arm(Math.max(0, this.nextPeriod() - (performance.now() - t0)));
    }, ms);
  }

  /** ticks that found nothing before the period starts to double */
  static readonly IDLE_TICKS = 5;
  /** a ring found this full was read half a ring late: as late again, it overflows */
  static readonly BEHIND_FILL = 0.5;
  /** below this at a tick the drain keeps up again (a tick's worth of calls at the highest rate is ~15%) */
  static readonly CAUGHT_UP_FILL = 0.125;
  private behindNow = false;
  private sawCall = false;

  private nextPeriod(): number {
    const base = this.opts.intervalMs ?? 20;
    const max = this.opts.idleIntervalMs ?? base;
    const idle = !this.drained && this.pendOff >= this.pendLen && !this.stalled && !this.batch?.n;
    if (!idle) {
      this.idleTicks = 0;
      if (this.period > base) this.hooks.active?.();
      this.period = base;
    } else if (++this.idleTicks >= Capture.IDLE_TICKS && max > base) this.period = Math.min(max, this.period * 2);
    return this.period;
  }

  /** The loop has backed off: nothing arrived for IDLE_TICKS ticks or more. */
  get idle(): boolean {
    return this.idleTicks >= Capture.IDLE_TICKS;
  }

  /** CUDA call records decoded so far (host context excluded) */
  get calls(): number {
    return this.decoder.stats.calls;
  }

  /** Back to the full drain rate now (something is about to flow): the next tick comes within intervalMs. */
  wake(): void {
    const base = this.opts.intervalMs ?? 20;
    this.idleTicks = 0;
    if (this.period <= base) return;
    this.period = base;
    this.hooks.active?.();
    if (this.timer && this.dueAt - performance.now() > base) {
      clearTimeout(this.timer);
      this.arm(base);
    }
  }

  /** Drain only these rings (the fast path for lifecycle records). */
  private tickRings(rings: { name: string; handle: RingHandle }[]): number {
    this.moved = 0;
    this.stalled = false;
    this.drained = false;
    if (this.decodePending()) {
      for (const ring of rings) {
        const n = this.addon.drain(ring.handle, this.buf);
        if (n === 0) continue;
        this.drained = true;
        this.pendOff = 0;
        this.pendLen = n;
        if (!this.decodePending()) break;
      }
    }
    if (this.batch?.n) this.handOver(performance.now());
    return this.moved;
  }

  /** End of a tick: hand the batch over, or (handOverMs) keep filling it, its rows resolved. */
  private handOver(now: number): void {
    const b = this.batch;
    const wait = this.opts.handOverMs ?? 0;
    if (b !== null && b.n > 0 && wait > 0 && !this.final && this.sink.acquire && b.n < b.ts.length / 4 && now - this.lastHandOver < wait) this.resolve();
    else this.moved += this.flushBatch();
  }

  /**
   * Decode what was drained into this.buf and not decoded yet, handing over full batches.
   * False when the sink has no free batch: the rest stays in this.buf for the next tick,
   * and nothing more is drained until then (the kernel's rings hold it meanwhile).
   */
  private decodePending(): boolean {
    while (this.pendOff < this.pendLen) {
      if (!this.batch) {
        this.batch = this.sink.acquire ? this.sink.acquire() : allocBatch(this.batchEvents);
        if (!this.batch) {
          this.stalled = true;
          this.stats.stalls++;
          return false;
        }
      }
      const b = this.batch;
      this.pendOff = this.decoder.decode(this.buf, this.pendLen, b, this.pendOff);
      if (b.n === b.ts.length) this.moved += this.flushBatch();
    }
    return true;
  }

  /** Drain one source until empty (at most maxRounds drains) and decode; false when stalled. */
  private drainAll(drain: () => number, maxRounds: number): boolean {
    for (let round = 0; round < maxRounds; round++) {
      const n = drain();
      if (n === 0) return true;
      this.drained = true;
      this.pendOff = 0;
      this.pendLen = n;
      if (!this.decodePending()) return false;
    }
    return true;
  }

  /** The error that stopped the loop (disk full, ...), or null. */
  get error(): Error | null {
    return this.sinkError;
  }

  /** Drain every ring until empty (bounded per tick), decode and hand over. Returns events moved. */
  tick(maxRounds = 64): number {
    const t0 = performance.now();
    this.moved = 0;
    this.stalled = false;
    this.drained = false;
    let ok = this.decodePending();
    for (const ring of this.rings) {
      if (!ok) break;
      ok = this.drainAll(() => this.addon.drain(ring.handle, this.buf), maxRounds);
    }
    for (const src of this.opts.sources ?? []) {
      if (!ok) break;
      ok = this.drainAll(() => src.drain(this.buf), maxRounds);
    }
    this.handOver(t0);
    this.lag();
    const moved = this.moved;
    this.stats.ticks++;
    this.stats.lastTickMs = performance.now() - t0;
    if (this.stats.lastTickMs > this.stats.maxTickMs) this.stats.maxTickMs = this.stats.lastTickMs;
    if (this.lastTickStart && t0 - this.lastTickStart > this.stats.maxGapMs) this.stats.maxGapMs = t0 - this.lastTickStart;
    this.lastTickStart = t0;
    return moved;
  }

  /** Tell the hooks of the first call, and when the sources' rings run half full and when they are near empty again (hysteresis). */
  private lag(): void {
    if (!this.sawCall && this.decoder.stats.calls > 0) {
      this.sawCall = true;
      this.hooks.firstCall?.();
    }
    let fill = 0;
    for (const src of this.opts.sources ?? []) fill = Math.max(fill, src.takeFill?.() ?? 0);
    if (!this.behindNow && fill >= Capture.BEHIND_FILL) {
      this.behindNow = true;
      this.hooks.behind?.(true);
    } else if (this.behindNow && fill < Capture.CAUGHT_UP_FILL) {
      this.behindNow = false;
      this.hooks.behind?.(false);
    }
  }

  /**
   * Resolve the rows decoded since the last call: first sight of a pid (its hook reads /proc while
   * the process lives), stacks and NVTX names; and send the process facts learned so far.
   */
  private resolve(): void {
    const b = this.batch;
    const n = b ? b.n : 0;
    let lastPid = -1;
    for (let i = this.resolved; i < n; i++) {
      const pid = b!.pid[i]!;
      if (pid !== lastPid && !this.seenPids.has(pid)) {
        this.seenPids.add(pid);
        this.hooks.newPid?.(pid);
      }
      lastPid = pid;
      if (b!.stack[i]! <= -2) b!.stack[i] = this.resolveStack(pid, -2 - b!.stack[i]!, this.decoder.pyByIndex.get(i));
    }
    this.resolved = n;
    this.decoder.pyByIndex.clear();
    if (this.decoder.nvtxByIndex.size) {
      for (const [i, text] of this.decoder.nvtxByIndex) if (i < n) b!.a3[i] = this.sink.internNvtxName?.(text) ?? 0;
      this.decoder.nvtxByIndex.clear();
    }
    if (this.pendingProcs.size) {
      this.sink.processes([...this.pendingProcs.values()]);
      this.pendingProcs.clear();
    }
  }

  private flushBatch(): number {
    const b = this.batch;
    const n = b ? b.n : 0;
    if (n === 0 && this.pendingProcs.size === 0) return 0;
    this.resolve();
    this.resolved = 0;
    if (n) {
      this.lastHandOver = performance.now();
      try {
        this.sink.write(b!);
      } catch (e) {
        this.stats.sinkFailures += n;
        b!.n = 0;
        throw e;
      }
      // a sink with acquire() owns the batch now; the next one comes from acquire()
      if (this.sink.acquire) this.batch = null;
      else b!.n = 0;
    }
    this.stats.events += n;
    return n;
  }

  private resolveStack(pid: number, kernelId: number, py?: RawPyFrames): number {
    if (!this.stacks) return -1;
    const key = py ? `${pid}:${kernelId}:${py.codes.join(',')}:${py.lasti.join(',')}` : `${pid}:${kernelId}`;
    const hit = this.stackCache.get(key);
    if (hit !== undefined) return hit;
    let addrs: bigint[] | null = null;
    if (kernelId >= SHIM_STACK_ID_BASE) for (const src of this.opts.sources ?? []) addrs ??= src.stackFrames?.(kernelId) ?? null;
    else addrs = this.addon.stackFrames(this.stacks.obj, this.stacks.map, kernelId);
    if (!addrs) return -1;
    if (addrs.length === 0) return -1;
    const { frames, text } = this.stacks.symbolize(pid, addrs, py);
    const id = this.sink.internStack(frames, text);
    this.stackCache.set(key, id);
    return id;
  }

  private mergeProcess(p: ProcessInfo): void {
    // a name seen beside a traced thread is dropped once the process's own records named it (see commSeen)
    if (p.comm !== undefined) {
      if (!p.commSeen) this.namedPids.add(p.pid);
      else if (this.namedPids.has(p.pid)) p = { ...p, comm: undefined };
    }
    const prev = this.pendingProcs.get(p.pid);
    if (!prev) {
      this.pendingProcs.set(p.pid, { ...p });
      return;
    }
    // a traced fact never downgrades to untraced; later fields win
    const merged: ProcessInfo = { ...prev, ...definedOnly(p), traced: prev.traced || p.traced };
    this.pendingProcs.set(p.pid, merged);
  }

  /** Queue a process fact learned outside the rings (e.g. from /proc). */
  noteProcess(p: ProcessInfo): void {
    this.mergeProcess(p);
  }

  /** Kernel-side losses so far, summed over CPUs. */
  kernelLosses(): LossCount[] {
    const counts = this.addon.readPercpuCounters(this.dropsObj, 'cw_drops');
    const out: LossCount[] = [];
    counts.forEach((v, i) => {
      const reason = LOSS_REASONS[i] ?? `loss_${i}`;
      const n = Number(v);
      this.stats.kernelLosses[reason] = n;
      if (n > 0) out.push({ stage: 'kernel', reason, count: n });
    });
    return out;
  }

  /** All losses that are lost events (stack misses are reported separately). */
  losses(): LossCount[] {
    const out = this.kernelLosses();
    for (const src of this.opts.sources ?? []) out.push(...src.losses());
    if (this.decoder.stats.malformed) out.push({ stage: 'queue', reason: 'malformed_record', count: this.decoder.stats.malformed });
    // Python frames whose call record never came (the call never returned): not a lost event
    if (this.decoder.stats.nvtxOrphans) out.push({ stage: 'queue', reason: 'nvtx_msg_orphaned', count: this.decoder.stats.nvtxOrphans });
    if (this.decoder.stats.pyOrphans) out.push({ stage: 'queue', reason: 'py_frames_orphaned', count: this.decoder.stats.pyOrphans });
    if (this.stats.sinkFailures) out.push({ stage: 'writer', reason: 'write_failed', count: this.stats.sinkFailures });
    return out;
  }

  static lostEvents(losses: LossCount[]): number {
    return losses.filter((l) => !NON_EVENT_LOSSES.has(l.reason)).reduce((s, l) => s + l.count, 0);
  }

  private stopTimer(): void {
    this.stopping = true;
    if (this.timer) clearTimeout(this.timer);
    if (this.fastTimer) clearInterval(this.fastTimer);
    for (const r of this.watched) this.addon.ringWatch?.(r.handle, null);
    this.timer = null;
    this.fastTimer = null;
    this.watched = [];
  }

  /** Events drained after the sink failed and thrown away (counted, never silent). */
  get discarded(): number {
    return this.discardedCount;
  }
  private discardedCount = 0;

  /**
   * Stop the timer and drain until the rings are empty. Safe to call twice.
   * After a sink failure (disk full) the rings are still drained, so the kernel
   * side does not count them as ring-full drops, and what they held is counted
   * in `discarded`.
   */
  stop(): void {
    this.stopTimer();
    if (this.sinkError) {
      this.discardPending();
      return;
    }
    for (const src of this.opts.sources ?? []) src.beforeFinalDrain?.();
    this.final = true;
    // until a tick finds the rings empty; a tick cut short by a full sink waits for room first
    for (let i = 0, idle = 0; i < 4096 && idle < 1; i++) {
      let moved: number;
      try {
        moved = this.tick(1024);
      } catch (e) {
        // the sink failed during the final drain (disk full): count the rest as discarded
        this.sinkError = e as Error;
        this.discardPending();
        return;
      }
      if (this.stalled) {
        if (!this.sink.waitForSpace?.(30_000)) {
          this.sinkError = new Error('the event sink accepted nothing for 30 s during the final drain');
          this.discardPending();
          return;
        }
        continue;
      }
      if (moved === 0) idle++;
    }
  }

  private discardPending(): void {
    const batch = (this.batch ??= allocBatch(this.batchEvents));
    this.resolved = 0;
    while (this.pendOff < this.pendLen) {
      this.pendOff = this.decoder.decode(this.buf, this.pendLen, batch, this.pendOff);
      this.discardedCount += batch.n;
      batch.n = 0;
    }
    for (const ring of this.rings) {
      for (let round = 0; round < 1024; round++) {
        const n = this.addon.drain(ring.handle, this.buf);
        if (n === 0) break;
        let off = 0;
        while (off < n) {
          off = this.decoder.decode(this.buf, n, batch, off);
          this.discardedCount += batch.n;
          batch.n = 0;
          this.decoder.pyByIndex.clear();
          this.decoder.nvtxByIndex.clear();
        }
      }
    }
    for (const src of this.opts.sources ?? []) {
      for (let round = 0; round < 1024; round++) {
        const n = src.drain(this.buf);
        if (n === 0) break;
        let off = 0;
        while (off < n) {
          off = this.decoder.decode(this.buf, n, batch, off);
          this.discardedCount += batch.n;
          batch.n = 0;
        }
      }
    }
    this.discardedCount += batch.n;
    batch.n = 0;
    this.decoder.pyByIndex.clear();
    this.decoder.nvtxByIndex.clear();
  }
}

function definedOnly<T extends object>(o: T): Partial<T> {
  const out: Partial<T> = {};
  for (const [k, v] of Object.entries(o)) if (v !== undefined) (out as Record<string, unknown>)[k] = v;
  return out;
}
