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

/** struct cw_pyframes (hdr.op = PY_FRAMES_OP): Python frames of the next call record of (tid, callOp) */
export const PYFRAMES = { size: 416, callOp: 24, n: 26, code: 32, lasti: 288 } as const;
export const PY_FRAMES_OP = 240;
export const PY_MAX_FRAMES = 32;
/** cw_pyframes.lasti bit 31: the outermost Python frame of one C-level evaluation */
export const PY_ENTRY = 0x80000000;
/** cw_pyframes.lasti bit 30: a shim frame of the C stack (3.12+), dropped by the decoder */
export const PY_SHIM = 0x40000000;
/** cw_pyframes hdr.flags */
export const PY_TRUNCATED = 1 << 8;

/** struct cw_py_proc, written by user space into cw_py_procs (key: tgid) */
export const PY_PROC = {
  size: 40, runtime: 0, kind: 8, version: 10, runtimeInterpHead: 12, interpNext: 14, interpTstateHead: 16, tstateNext: 18, tstateThreadId: 20,
  tstateFrame: 22, cframeCurrent: 24, frameBack: 26, frameCode: 28, frameInstr: 30, frameOwner: 32, frameIsEntry: 34, codeAdaptive: 36,
} as const;
export const PY_NONE = 0xffff;

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
  'py_frames_unavailable',
] as const;
/** Losses that are not lost events (a stack missing is still a stored event). */
export const NON_EVENT_LOSSES = new Set(['stack_unavailable', 'py_frames_unavailable', 'py_frames_orphaned']);

/** hdr.flags */
export const Flag = { STACK_SAMPLED: 1, ERROR: 2, OUT_READ_FAIL: 4, PY_FRAMES: 32 } as const;

/** enum cw_offcpu_reason */
export const OffCpuReason = { PREEMPTED: 0, VOLUNTARY: 1, IO_WAIT: 2, OTHER: 3 } as const;

/** Record framing produced by the addon's drain(): [u32 len][record][pad to 8]. */
export const FRAME_HDR = 4;
export function frameSize(len: number): number {
  return (FRAME_HDR + len + 7) & ~7;
}
