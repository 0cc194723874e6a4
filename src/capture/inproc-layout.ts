/**
 * Byte layout of the in-process shim's shared-memory files (shim/ring.h).
 * test/capture/inproc-layout.test.ts compiles ring.h and checks every offset
 * here, so the shim and the reader cannot drift.
 */

export const SHIM = {
  MAGIC: 0x52535743,
  PROC_MAGIC: 0x50535743,
  LAYOUT: 1,
  HDR_BYTES: 4096,
  SLOT_BYTES: 80,
  STACK_BYTES: 128,
  STACK_DEPTH: 15,
  /** enum cw_shim_loss: per-thread drop reasons, index into ring.drops */
  LOSS: ['ring_full', 'reentrant_signal'] as const,
  /** enum cw_shim_proc_loss: per-process drop reasons, index into proc.drops */
  PROC_LOSS: ['no_ring', 'unresolved'] as const,
  LOSS_SLOTS: 4,
  CLOSED: 1,
} as const;

/** struct cw_shim_ring_hdr */
export const RING_HDR = {
  magic: 0, layout: 4, slots: 8, slotBytes: 12, pid: 16, tid: 20, state: 24, stackSlots: 28, calls: 32, head: 64, tail: 128, drops: 192, size: 224,
} as const;

/** struct cw_shim_stack */
export const STACK = { seq: 0, n: 4, ips: 8, size: 128 } as const;

/** Stack ids handed to Capture for shim stacks start here (BPF stack-map ids are far below). */
export const SHIM_STACK_ID_BASE = 1 << 24;

/** struct cw_shim_proc_hdr */
export const PROC_HDR = {
  magic: 0, layout: 4, pid: 8, ppid: 12, ops: 16, resolved: 20, gpaWrapped: 24, gpaUnwrapped: 28, drops: 32, forkedFrom: 64, exe: 72, size: 328,
} as const;
