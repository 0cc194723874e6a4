/**
 * The memory the drain thread and the writer thread share (writer-host.ts,
 * writer-worker.ts): a fixed number of batch slots, each one EventBatch laid
 * out column by column in one SharedArrayBuffer, and a small control block of
 * Int32 cells driven with Atomics. A slot is either free (the drain thread may
 * fill it) or queued (the writer thread owns it until it has written it), so
 * nothing is copied and nothing is structured-cloned per event: the drain
 * thread decodes straight into a slot and posts only its index and count.
 */
import fs from 'node:fs';
import type { EventBatch } from '../common/events.js';

/** Control block cells (Int32). */
export const CTL = {
  /** bumped (and notified) by the writer thread every time a slot is freed, a close finishes or it fails */
  gen: 0,
  /** 1 once the writer thread stopped with an error (the error itself comes as a message) */
  failed: 1,
  /** 1 once close() finished on the writer thread */
  closed: 2,
  /** the writer thread's tid (0 until it set its own priority), for the drain thread's priority boost */
  tid: 3,
  /** first slot-state cell; slot i is CTL.slots + i: 0 free, 1 queued */
  slots: 8,
} as const;
/**
 * The writer thread's nice value while it keeps up: it yields the CPU to the traced workload (on a
 * machine with few cores a writer at the workload's priority takes time from it whenever both want
 * a core, while a late write costs nothing as long as the slots hold the backlog). writer-host.ts
 * lifts it back to the process's own priority while the slots fill (see WriterHost.balance).
 */
export const WRITER_NICE = 10;
export const SLOT_FREE = 0;
export const SLOT_QUEUED = 1;

/** Bytes per event of the slot layout (8-byte columns first, so every view is aligned). */
const F64_COLS = ['ts', 'dur', 'a0', 'a1', 'a2', 'a3'] as const;
const U32_COLS = ['pid', 'tid', 'ret', 'stack', 'flags'] as const;
export const SLOT_BYTES_PER_EVENT = F64_COLS.length * 8 + U32_COLS.length * 4 + 2 + 1;

export function slotBytes(capacity: number): number {
  // round up to 8 so a slot's size is a multiple of every column's alignment
  return (capacity * SLOT_BYTES_PER_EVENT + 7) & ~7;
}

/**
 * Views of one slot as an EventBatch (n starts at 0). `init`: the creating side sets the stack
 * column to -1 (none); the other side must not (the memory already holds a batch).
 */
export function slotBatch(buf: SharedArrayBuffer | ArrayBuffer, capacity: number, init = false): EventBatch {
  let off = 0;
  const f64 = () => {
    const a = new Float64Array(buf, off, capacity);
    off += capacity * 8;
    return a;
  };
  const ts = f64();
  const dur = f64();
  const a0 = f64();
  const a1 = f64();
  const a2 = f64();
  const a3 = f64();
  const pid = new Uint32Array(buf, off, capacity);
  off += capacity * 4;
  const tid = new Uint32Array(buf, off, capacity);
  off += capacity * 4;
  const ret = new Int32Array(buf, off, capacity);
  off += capacity * 4;
  const stack = new Int32Array(buf, off, capacity);
  off += capacity * 4;
  const flags = new Uint32Array(buf, off, capacity);
  off += capacity * 4;
  const op = new Uint16Array(buf, off, capacity);
  off += capacity * 2;
  const variant = new Uint8Array(buf, off, capacity);
  if (init) stack.fill(-1);
  return { n: 0, ts, dur, pid, tid, op, ret, a0, a1, a2, a3, stack, variant, flags };
}

/** CPU time of the calling thread, ns (schedstat: exact, not in clock ticks); -1 when unreadable. */
export function threadCpuNs(): number {
  try {
    return Number(fs.readFileSync('/proc/thread-self/schedstat', 'utf8').split(' ')[0]);
  } catch {
    return -1;
  }
}
