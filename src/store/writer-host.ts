/**
 * The event writer on its own thread, so the drain loop never waits for the
 * disk. The drain thread decodes each batch straight into a slot of shared
 * memory (writer-slots.ts) and posts its index; the writer thread
 * (writer-worker.ts) runs the unchanged EventWriter on its own connection and
 * frees the slot when the batch is committed. Nothing is copied or cloned per
 * event.
 *
 * Where decoding happens was measured (bench/throughput.ts, 2-core dev box):
 * drain + decode + stack/process bookkeeping cost the drain thread well under
 * 1 us per event, while the writer's SQLite work is most of what an event
 * costs; decoding on the drain thread also keeps the hooks that must act at
 * once (a process parked by the loader probe, first sight of a pid) where
 * they are, and the writer thread receives typed columns it can insert as is.
 *
 * Backpressure: at most `slots` batches are in flight (8 x 16384 events,
 * ~9 MiB). When every slot is queued, acquire() returns null and the capture
 * loop leaves the rest in the kernel's ring buffers (bounded by their size;
 * what they cannot hold is counted there as a reserve failure, per ring):
 * memory stays bounded and a loss, if any, is counted, never silent.
 *
 * Errors: a failure on the writer thread (disk full, SQLITE_FULL, any write
 * error) arrives as the same CausewayError the writer raised (code, message,
 * fix, data); every later write() throws it, as EventWriter.writeBatch does,
 * so the capture loop stops exactly as it did with the writer on its thread.
 * The batches in flight when it failed are counted in the writer's losses.
 *
 * Stacks and NVTX names are interned by handle: the drain thread gives out a
 * handle at once (no round trip), and the writer thread resolves it to the
 * table id before the batch that uses it (messages keep their order).
 */
import os from 'node:os';
import { MessageChannel, receiveMessageOnPort, Worker, type MessagePort } from 'node:worker_threads';
import { allocBatch, type EventBatch, type EventRow, type LossCount, type ProcessInfo, type StackFrame } from '../common/events.js';
import { CausewayError, type ErrorCode } from '../common/errors.js';
import type { WriterOptions } from './writer.js';
import { CTL, SLOT_FREE, SLOT_QUEUED, WRITER_NICE, slotBatch, slotBytes } from './writer-slots.js';
import type { FromWriter, ToWriter, WriterError, WriterWorkerData } from './writer-worker.js';

export interface WriterHostOptions {
  writer?: WriterOptions;
  /**
   * batches in flight at most (default 32: 0.5M events, ~37 MiB, allocated as the backlog grows). The backlog a
   * writer at nice 10 on the tracer's one CPU (run/tracer-cpus.ts) builds in a burst: with 8, an in-process launch
   * loop at ~460k calls/s filled them within a second, and the writer's boost gave the tracer every CPU back,
   * beside the workload (1-2% slower with 32, 7-9% with 8)
   */
  slots?: number;
  /** events per batch (default 16384, the capture loop's batch) */
  slotEvents?: number;
  /** how long close() waits for the writer thread to finish what it holds, without progress (default 120 s) */
  closeTimeoutMs?: number;
  /** module URL of a tap the writer thread calls after each write (writer-worker.ts WriterTap) */
  tap?: string;
  /** called when the writer's priority is lifted (true: it fell behind) or lowered again (false) */
  onBoost?: (boosted: boolean) => void;
}

/** What the writer thread reports when it closes. */
export interface WriterClose {
  stored: number;
  /** the writer's losses (stage 'writer'): the failing batch and those in flight after it */
  losses: LossCount[];
  /** of those, events the writer already recorded in drops */
  recordedLost: number;
  /** CPU time of the writer thread, ns (-1 when unknown) */
  cpuNs: number;
  /** what the writer thread's tap returned at close (WriterHostOptions.tap) */
  tap?: unknown;
}

const MAX_SLOTS = 64;

export class WriterHost {
  private readonly worker: Worker;
  private readonly port: MessagePort;
  private readonly ctl: Int32Array;
  private readonly capacity: number;
  private readonly maxSlots: number;
  private readonly bufs: SharedArrayBuffer[] = [];
  private readonly batches: EventBatch[] = [];
  private readonly sent: boolean[] = [];
  /** slots the drain thread holds (acquired, not written yet) */
  private readonly held: boolean[] = [];
  private readonly index = new Map<EventBatch, number>();
  private readonly nvtxHandles = new Map<string, number>();
  private nextStack = 0;
  private nvtxInBatch = false;
  private failure: CausewayError | null = null;
  private result: WriterClose | null = null;
  private scratch: EventBatch | null = null;
  private closing: Promise<WriterClose> | null = null;
  private exited = false;
  private readonly closeTimeoutMs: number;
  /** acquire() calls that found every slot queued (the writer thread behind) */
  stalls = 0;
  /** times the writer thread's priority was lifted because the slots filled (see balance()) */
  boosts = 0;
  private boosted = false;
  private readonly onBoost: ((boosted: boolean) => void) | undefined;

  constructor(
    readonly path: string,
    readonly sessionId: number,
    opts: WriterHostOptions = {},
  ) {
    this.capacity = opts.slotEvents ?? 16384;
    this.maxSlots = Math.max(2, Math.min(opts.slots ?? 32, MAX_SLOTS));
    this.closeTimeoutMs = opts.closeTimeoutMs ?? 120_000;
    this.onBoost = opts.onBoost;
    const ctl = new SharedArrayBuffer(4 * (CTL.slots + MAX_SLOTS));
    this.ctl = new Int32Array(ctl);
    const { port1, port2 } = new MessageChannel();
    this.port = port1;
    const data: WriterWorkerData = { path, sessionId, writer: { ...opts.writer, path: opts.writer?.path ?? path }, ctl, slotCapacity: this.capacity, port: port2, ...(opts.tap ? { tap: opts.tap } : {}) };
    this.worker = new Worker(new URL('./writer-worker.js', import.meta.url), { workerData: data, transferList: [port2] });
    // close() is what waits for it; an exit without close() must not hang on the thread
    this.worker.unref();
    // a crash of the thread itself (not a write error: those come as messages) stops the recording too
    this.worker.on('error', (e) => this.setFailure({ code: 'INTERNAL', message: `the writer thread crashed: ${e.message}` }));
    this.worker.on('exit', () => (this.exited = true));
  }

  /**
   * The writer thread runs at WRITER_NICE so that it yields to the workload: its work waits (in the
   * slots, then in the rings) while the workload wants the cores, and catches up when they are free.
   * On a machine whose cores are all busy (two calling threads at full rate on 2 cores, or other
   * load) that can starve it until every slot is queued and then the kernel's and the shim's rings
   * overflow (seen: half of an in-process launch loop's events lost at load 9 on 2 cores). A lost
   * event is worse than a slower workload, so once every slot is queued (the capture loop stalls and
   * records start to wait in the rings) the writer gets the process's own priority back, and returns
   * to WRITER_NICE once it has caught up (one slot queued at most). Lifting it earlier (at half the
   * slots) cost a loaded in-process launch loop throughput without saving an event: the rings held
   * the backlog. Two setpriority calls per episode; none while the writer keeps up.
   */
  private balance(): void {
    const queued = this.queuedSlots();
    const want = this.boosted ? queued > 1 : queued >= this.maxSlots;
    if (want === this.boosted) return;
    const tid = Atomics.load(this.ctl, CTL.tid);
    if (tid <= 0) return;
    try {
      const base = os.getPriority(0);
      os.setPriority(tid, want ? base : Math.max(base, WRITER_NICE));
      this.boosted = want;
      if (want) this.boosts++;
    } catch {
      // not permitted (no CAP_SYS_NICE) or the thread is gone: it keeps the priority it has
      return;
    }
    this.onBoost?.(want);
  }

  /** Batches handed to the writer thread and not written yet. */
  queuedSlots(): number {
    let queued = 0;
    for (let i = 0; i < this.batches.length; i++) if (Atomics.load(this.ctl, CTL.slots + i) === SLOT_QUEUED) queued++;
    return queued;
  }

  /** A free batch to decode into, or null when every slot is queued (the writer is behind: leave the rest in the rings). */
  acquire(): EventBatch | null {
    this.balance();
    if (this.failed) {
      // the next write() throws the failure; the capture loop then drains and discards
      this.scratch ??= allocBatch(this.capacity);
      this.scratch.n = 0;
      return this.scratch;
    }
    for (let i = 0; i < this.batches.length; i++) {
      if (!this.held[i] && Atomics.load(this.ctl, CTL.slots + i) === SLOT_FREE) return this.hold(i);
    }
    if (this.batches.length < this.maxSlots) {
      const i = this.batches.length;
      const buf = new SharedArrayBuffer(slotBytes(this.capacity));
      this.bufs.push(buf);
      const b = slotBatch(buf, this.capacity, true);
      this.batches.push(b);
      this.sent.push(false);
      this.held.push(false);
      this.index.set(b, i);
      return this.hold(i);
    }
    this.stalls++;
    return null;
  }

  private hold(i: number): EventBatch {
    this.held[i] = true;
    const b = this.batches[i]!;
    b.n = 0;
    return b;
  }

  /** Wait (blocking this thread, at most `ms`) until the writer frees a slot or fails; false on timeout. */
  waitForSpace(ms: number): boolean {
    const deadline = performance.now() + ms;
    for (;;) {
      if (this.failed) return true;
      for (let i = 0; i < this.batches.length; i++) if (!this.held[i] && Atomics.load(this.ctl, CTL.slots + i) === SLOT_FREE) return true;
      if (this.batches.length < this.maxSlots) return true;
      const left = deadline - performance.now();
      if (left <= 0) return false;
      const gen = Atomics.load(this.ctl, CTL.gen);
      // re-check after reading gen: a slot freed in between bumped it, so the wait returns at once
      Atomics.wait(this.ctl, CTL.gen, gen, Math.min(left, 50));
    }
  }

  /** Hand a batch from acquire() to the writer thread (it owns the slot until it is committed). */
  write(b: EventBatch): void {
    if (this.failed) throw this.failure!;
    if (b.n <= 0) return;
    const i = this.index.get(b);
    if (i === undefined || !this.held[i]) throw new CausewayError('INTERNAL', 'WriterHost.write: not a batch from acquire()');
    this.held[i] = false;
    Atomics.store(this.ctl, CTL.slots + i, SLOT_QUEUED);
    const first = !this.sent[i];
    this.sent[i] = true;
    this.post({ t: 'slot', i, n: b.n, nvtx: this.nvtxInBatch, ...(first ? { buf: this.bufs[i] } : {}) });
    this.nvtxInBatch = false;
    this.balance();
  }

  /** Process rows (upserted on the writer's connection, in order with the batches). */
  processes(p: ProcessInfo[]): void {
    if (p.length && !this.failed) this.post({ t: 'procs', p });
  }

  /** A handle for this stack: what the batch's stack column carries; the writer thread stores the stacks.id. */
  internStack(frames: StackFrame[], text: string): number {
    if (this.failed) throw this.failure!;
    const h = this.nextStack++;
    this.post({ t: 'stack', h, frames, text });
    return h;
  }

  /** A handle for this NVTX message, as a3 < 0 (decoded arguments never are); the writer stores the nvtx_names.id. */
  internNvtxName(text: string): number {
    if (this.failed) throw this.failure!;
    let h = this.nvtxHandles.get(text);
    if (h === undefined) {
      h = this.nvtxHandles.size;
      this.nvtxHandles.set(text, h);
      this.post({ t: 'nvtx', h, text });
    }
    this.nvtxInBatch = true;
    return -h - 1;
  }

  /** Plain rows (end-of-trace aggregates), written in order with the batches. */
  writeRows(rows: EventRow[]): void {
    if (this.failed) throw this.failure!;
    if (rows.length) this.post({ t: 'rows', rows });
  }

  /** The error that stopped the writer thread (disk full, ...), or null. */
  get failed(): CausewayError | null {
    if (!this.failure && Atomics.load(this.ctl, CTL.failed)) this.poll();
    return this.failure;
  }

  /** Events stored (known once closed). */
  get stored(): number {
    return this.result?.stored ?? 0;
  }

  /**
   * Let the writer thread write everything it holds, flush aggregates and close its connection;
   * resolves when it has. Waits on the event loop (not Atomics.wait), so a writer thread that
   * died is noticed ('exit') instead of waited for. Safe to call twice.
   */
  async close(): Promise<WriterClose> {
    this.closing ??= this.closeOnce();
    return this.closing;
  }

  private async closeOnce(): Promise<WriterClose> {
    this.post({ t: 'close' });
    let lastGen = -1;
    let since = performance.now();
    while (!Atomics.load(this.ctl, CTL.closed)) {
      if (this.exited) {
        this.setFailure({ code: 'INTERNAL', message: 'the writer thread exited before it closed: events it held are lost' });
        break;
      }
      const gen = Atomics.load(this.ctl, CTL.gen);
      if (gen !== lastGen) {
        lastGen = gen;
        since = performance.now();
      } else if (performance.now() - since > this.closeTimeoutMs) {
        this.setFailure({ code: 'INTERNAL', message: `the writer thread made no progress for ${this.closeTimeoutMs / 1000} s while closing: events it held are lost` });
        break;
      }
      await new Promise((r) => setTimeout(r, 5));
    }
    this.poll();
    if (!this.result) {
      // the thread died or hung before it closed: the batches still queued to it were never written; count them
      // (before, they vanished: stored + lost fell short of what the capture loop handed over)
      let lost = 0;
      for (let i = 0; i < this.batches.length; i++) if (!this.held[i] && Atomics.load(this.ctl, CTL.slots + i) === SLOT_QUEUED) lost += this.batches[i]!.n;
      this.result = { stored: 0, losses: lost > 0 ? [{ stage: 'writer', reason: 'write_failed', count: lost }] : [], recordedLost: 0, cpuNs: -1 };
    }
    await this.worker.terminate();
    return this.result;
  }

  private post(m: ToWriter): void {
    this.worker.postMessage(m);
  }

  private poll(): void {
    for (;;) {
      const r = receiveMessageOnPort(this.port);
      if (!r) return;
      const m = r.message as FromWriter;
      if (m.t === 'failed') this.setFailure(m.error);
      else if (m.t === 'closed') {
        if (m.error) this.setFailure(m.error);
        this.result = { stored: m.stored, losses: m.losses, recordedLost: m.recordedLost, cpuNs: m.cpuNs, tap: m.tap };
      }
    }
  }

  private setFailure(e: WriterError): void {
    this.failure ??= new CausewayError(e.code as ErrorCode, e.message, e.fix, e.data);
  }
}
