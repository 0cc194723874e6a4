/**
 * The writer thread (see writer-host.ts): its own connection to the trace's
 * database and the EventWriter, unchanged, fed in order by the drain thread's
 * messages. Batches arrive as slot indices of shared memory (writer-slots.ts);
 * stacks and NVTX names arrive as handles the drain thread chose, resolved
 * here to table ids before the batch that uses them is written (messages keep
 * their order). Results go back through Atomics cells and a dedicated port the
 * drain thread reads synchronously (receiveMessageOnPort), so it never needs
 * its event loop, or a round trip, to learn that a slot is free or that the
 * disk is full.
 */
import fs from 'node:fs';
import os from 'node:os';
import { parentPort, workerData, type MessagePort } from 'node:worker_threads';
import type { EventRow, LossCount, ProcessInfo, StackFrame } from '../common/events.js';
import { CausewayError } from '../common/errors.js';
import { openSecondWriter } from './db.js';
import { upsertProcesses } from './session.js';
import { EventWriter, type WriterOptions } from './writer.js';
import { CTL, SLOT_FREE, SLOT_QUEUED, WRITER_NICE, slotBatch, threadCpuNs } from './writer-slots.js';

export interface WriterWorkerData {
  path: string;
  sessionId: number;
  writer: WriterOptions;
  ctl: SharedArrayBuffer;
  slotCapacity: number;
  port: MessagePort;
  /** module (URL) whose createTap(db, sessionId) returns a WriterTap: the streaming analysis (src/analyze/stream-live.ts) */
  tap?: string;
}

/**
 * Called by the writer thread after each write (the streaming analysis; store does not import analyze, so the
 * recording names the module). A tap that throws is dropped: it never costs an event.
 */
export interface WriterTap {
  /** `events` were just written; `backlog`: more batches are queued behind them */
  afterWrite(events: number, backlog: boolean): void;
  /**
   * the writer closed (everything committed): what close() returns travels back in the 'closed' message;
   * `alive()` tells the recording thread that the close is making progress (its close timeout counts from it)
   */
  close(alive: () => void): unknown;
}

/** Drain thread -> writer thread. */
export type ToWriter =
  | { t: 'slot'; i: number; buf?: SharedArrayBuffer; n: number; nvtx: boolean }
  | { t: 'procs'; p: ProcessInfo[] }
  | { t: 'stack'; h: number; frames: StackFrame[]; text: string }
  | { t: 'nvtx'; h: number; text: string }
  | { t: 'rows'; rows: EventRow[] }
  | { t: 'close' };

export interface WriterError {
  code: string;
  message: string;
  fix?: string;
  data?: Record<string, unknown>;
}

/** Writer thread -> drain thread (on the dedicated port). */
export type FromWriter =
  | { t: 'failed'; error: WriterError }
  | { t: 'closed'; stored: number; losses: LossCount[]; recordedLost: number; cpuNs: number; error: WriterError | null; tap?: unknown };

function asWriterError(e: unknown): WriterError {
  if (e instanceof CausewayError) return { code: e.code, message: e.message, fix: e.fix, data: e.data };
  return { code: 'INTERNAL', message: `writer thread: ${(e as Error)?.message ?? String(e)}` };
}

/**
 * The writer thread starts at WRITER_NICE (writer-slots.ts). Linux applies setpriority to one thread
 * when given its tid; the tid goes into the control block so the drain thread can lift the priority
 * while the writer is behind (writer-host.ts).
 */
function lowerPriority(ctl: Int32Array): void {
  try {
    const tid = Number(fs.readlinkSync('/proc/thread-self').split('/').pop());
    if (tid > 0) {
      os.setPriority(tid, Math.max(os.getPriority(tid), WRITER_NICE));
      Atomics.store(ctl, CTL.tid, tid);
    }
  } catch {
    // not Linux, or not permitted: the writer keeps the process's priority
  }
}

async function main(d: WriterWorkerData): Promise<void> {
  const ctl = new Int32Array(d.ctl);
  lowerPriority(ctl);
  const port = d.port;
  const slots = new Map<number, ReturnType<typeof slotBatch>>();
  const stackIds: number[] = [];
  const nvtxIds: number[] = [];
  let writer: EventWriter | null = null;
  let db: ReturnType<typeof openSecondWriter> | null = null;
  let error: WriterError | null = null;
  /** events in flight when the writer stopped, not written (reported at close, not yet in drops) */
  let refusedAfter = 0;
  /** events of the failing call itself, which the writer recorded in drops (best effort) */
  let recordedLost = 0;

  const fail = (e: unknown): void => {
    if (error) return;
    error = asWriterError(e);
    Atomics.store(ctl, CTL.failed, 1);
    port.postMessage({ t: 'failed', error } satisfies FromWriter);
    Atomics.add(ctl, CTL.gen, 1);
    Atomics.notify(ctl, CTL.gen);
  };

  try {
    db = openSecondWriter(d.path);
    writer = new EventWriter(db, d.sessionId, d.writer);
  } catch (e) {
    fail(e);
  }
  // the tap: loaded before the first message is handled (they queue on the port until the listener is set)
  let tap: WriterTap | null = null;
  let tapResult: unknown = undefined;
  const tapFailed = (e: unknown): void => {
    tap = null;
    tapResult = { error: `streaming analysis stopped: ${(e as Error)?.message ?? String(e)}` };
  };
  if (d.tap && db && !error) {
    try {
      tap = ((await import(d.tap)) as { createTap(db: unknown, sessionId: number): WriterTap }).createTap(db, d.sessionId);
    } catch (e) {
      tapFailed(e);
    }
  }
  const afterWrite = (n: number): void => {
    if (!tap || error) return;
    let backlog = false;
    for (let i = 0; i < MAX_TAP_SLOTS && !backlog; i++) backlog = Atomics.load(ctl, CTL.slots + i) === SLOT_QUEUED;
    try {
      tap.afterWrite(n, backlog);
    } catch (e) {
      tapFailed(e);
    }
  };

  const onSlot = (m: Extract<ToWriter, { t: 'slot' }>): void => {
    let b = slots.get(m.i);
    if (!b) {
      b = slotBatch(m.buf!, d.slotCapacity);
      slots.set(m.i, b);
    }
    b.n = m.n;
    try {
      if (!writer || error) {
        // in flight when the writer stopped: not written, counted (close() reports them)
        refusedAfter += m.n;
        return;
      }
      // handles the drain thread gave out -> ids in stacks / nvtx_names
      const st = b.stack;
      for (let i = 0; i < m.n; i++) {
        const h = st[i]!;
        if (h >= 0) st[i] = stackIds[h] ?? -1;
      }
      if (m.nvtx) {
        const a3 = b.a3;
        for (let i = 0; i < m.n; i++) if (a3[i]! < 0) a3[i] = nvtxIds[-a3[i]! - 1] ?? 0;
      }
      const lostBefore = lostCount(writer);
      try {
        writer.writeBatch(b);
      } catch (e) {
        // the writer counted this call's events in its losses, and a disk-full batch in drops too (best effort)
        if ((e as CausewayError)?.code === 'DISK_FULL') recordedLost = lostCount(writer) - lostBefore;
        throw e;
      }
    } catch (e) {
      fail(e);
    } finally {
      Atomics.store(ctl, CTL.slots + m.i, SLOT_FREE);
      Atomics.add(ctl, CTL.gen, 1);
      Atomics.notify(ctl, CTL.gen);
    }
    afterWrite(m.n);
  };

  const close = (): void => {
    try {
      writer?.close();
    } catch (e) {
      fail(e);
    }
    const losses = writer?.losses() ?? [];
    if (refusedAfter > 0) {
      const reason = (error as WriterError | null)?.code === 'DISK_FULL' ? 'disk_full' : 'write_failed';
      const same = losses.find((l) => l.reason === reason);
      if (same) same.count += refusedAfter;
      else losses.push({ stage: 'writer', reason, count: refusedAfter });
    }
    const stored = writer?.stored ?? 0;
    if (tap && !error) {
      try {
        tapResult = (tap as WriterTap).close(() => {
          Atomics.add(ctl, CTL.gen, 1);
          Atomics.notify(ctl, CTL.gen);
        });
      } catch (e) {
        tapFailed(e);
      }
    }
    try {
      db?.close();
    } catch {
      /* what was committed stays */
    }
    port.postMessage({ t: 'closed', stored, losses, recordedLost, cpuNs: threadCpuNs(), error, tap: tapResult } as FromWriter);
    Atomics.store(ctl, CTL.closed, 1);
    Atomics.add(ctl, CTL.gen, 1);
    Atomics.notify(ctl, CTL.gen);
    parentPort?.close();
  };

  parentPort!.on('message', (m: ToWriter) => {
    switch (m.t) {
      case 'slot':
        return onSlot(m);
      case 'procs':
        if (!writer || error) return;
        try {
          upsertProcesses(db!, d.sessionId, m.p);
        } catch (e) {
          fail(e);
        }
        return;
      case 'stack':
        if (!writer || error) return;
        try {
          stackIds[m.h] = writer.internStack(m.frames, m.text);
        } catch (e) {
          fail(e);
        }
        return;
      case 'nvtx':
        if (!writer || error) return;
        try {
          nvtxIds[m.h] = writer.internNvtxName(m.text);
        } catch (e) {
          fail(e);
        }
        return;
      case 'rows':
        if (!writer || error) return;
        try {
          writer.writeRows(m.rows);
        } catch (e) {
          fail(e);
        }
        return afterWrite(m.rows.length);
      case 'close':
        return close();
    }
  });
}

function lostCount(w: EventWriter): number {
  return w.losses().reduce((s, l) => s + l.count, 0);
}

/** slot cells the tap's backlog check reads (writer-host's MAX_SLOTS) */
const MAX_TAP_SLOTS = 64;

if (parentPort && workerData && (workerData as { ctl?: unknown }).ctl) void main(workerData as WriterWorkerData);
