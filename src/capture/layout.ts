/**
 * Byte layouts of the kernel records, mirrored from bpf/events.h. A test
 * (test/capture/layout.test.ts) compiles a C program against events.h and
 * checks every size and offset here, and parses the enums, so the two cannot
 * drift.
 */

export const EVENT_VERSION = 1;
export const COMM_LEN = 16;
export const PATH_LEN = 64;

export const HDR = { size: 24, ts: 0, tgid: 8, tid: 12, op: 16, source: 18, version: 19, flags: 20 } as const;

export const CALL = { size: 72, dur: 24, a0: 32, a1: 40, a2: 48, a3: 56, ret: 64, stackId: 68 } as const;

export const OFFCPU = {
  size: 88, dur: 24, reason: 32, cpu: 36, byTgid: 40, byTid: 44, wakerTgid: 48, wakerTid: 52, byComm: 56, wakerComm: 72,
} as const;

export const PROC = { size: 120, ppid: 24, childTgid: 28, exitCode: 32, isThread: 36, comm: 40, filename: 56 } as const;

export const MEM = { size: 40, windowNs: 24, pages: 32 } as const;

export const IO = { size: 56, dur: 24, sector: 32, bytes: 40, dev: 44, rwbs: 48 } as const;

export const LOADER = { size: 32, stopped: 24 } as const;

export const RECLAIM = { size: 40, dur: 24, reclaimed: 32 } as const;

export const FUNC_NAME_LEN = 128;
export const FUNC_NAME = { size: 160, handle: 24, name: 32 } as const;

/** enum cw_ring */
export const Ring = { CALLS: 0, HOST: 1, LIFE: 2 } as const;
export const RING_MAPS = ['rb_calls', 'rb_host', 'rb_life'] as const;

/** enum cw_loss, index into the cw_drops per-CPU array */
export const LOSS_REASONS = [
  'rb_calls_full',
  'rb_host_full',
  'rb_life_full',
  'entry_map_full',
  'missed_return',
  'orphan_return',
  'stack_unavailable',
  'sched_map_full',
  'host_map_full',
] as const;
/** Losses that are not lost events (a stack missing is still a stored event). */
export const NON_EVENT_LOSSES = new Set(['stack_unavailable']);

/** hdr.flags */
export const Flag = { STACK_SAMPLED: 1, ERROR: 2, OUT_READ_FAIL: 4, PTDS: 32, PTSZ: 64 } as const;

/** enum cw_offcpu_reason */
export const OffCpuReason = { PREEMPTED: 0, VOLUNTARY: 1, IO_WAIT: 2, OTHER: 3 } as const;

/** Record framing produced by the addon's drain(): [u32 len][record][pad to 8]. */
export const FRAME_HDR = 4;
export function frameSize(len: number): number {
  return (FRAME_HDR + len + 7) & ~7;
}
