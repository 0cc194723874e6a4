/**
 * The TypeScript mirror of bpf/events.h: record layouts (byte offsets),
 * sources, the host/MCP op codes the decoder and the views switch on, header
 * flags, ring buffers, loss reasons and host-stat names. One file, so a
 * change to events.h has one place to land here.
 *
 * test/capture/layout.test.ts compiles a C program against events.h and
 * checks every size and offset below, and parses the enums and #defines, so
 * the two cannot drift. The CUDA op table (codes 1..127 with their argument
 * slots) is src/common/ops.ts, checked by the same test.
 */

export const EVENT_VERSION = 1;
export const COMM_LEN = 16;

/** struct cw_hdr: every record starts with it */
export const HDR = { size: 24, ts: 0, tgid: 8, tid: 12, op: 16, source: 18, version: 19, flags: 20 } as const;

/** struct cw_call: a CUDA runtime or driver call, emitted at return */
export const CALL = { size: 72, dur: 24, a0: 32, a1: 40, a2: 48, a3: 56, ret: 64, stackId: 68 } as const;

/** struct cw_offcpu */
export const OFFCPU = {
  size: 88, dur: 24, reason: 32, cpu: 36, callOp: 38, byTgid: 40, byTid: 44, wakerTgid: 48, wakerTid: 52, byComm: 56, wakerComm: 72,
} as const;

/** struct cw_proc: exit / fork / oom */
export const PROC = { size: 56, ppid: 24, childTgid: 28, exitCode: 32, isThread: 36, comm: 40 } as const;

/**
 * struct cw_exec: variable length. `size` is the largest record; one carries
 * offsetof(data) + pathLen + argsLen bytes: the path (NUL included), then
 * the new image's argv (each argument NUL-terminated).
 */
export const EXEC = { size: 5168, ppid: 24, pathLen: 28, argsLen: 30, comm: 32, data: 48 } as const;
/** CW_EXEC_PATH_LEN / CW_EXEC_ARGS_LEN: the caps of the path (NUL included) and of argv */
export const EXEC_PATH_LEN = 1024;
export const EXEC_ARGS_LEN = 4096;
/** cw_exec hdr.flags (CW_EXECF_*): the kernel cut the path / argv at its cap */
export const ExecFlag = { PATH_TRUNCATED: 1 << 8, ARGS_TRUNCATED: 1 << 9 } as const;

/** struct cw_mem: page allocations of one process over a window */
export const MEM = { size: 40, windowNs: 24, pages: 32 } as const;

/** struct cw_io: one block request, issue -> complete */
export const IO = { size: 56, dur: 24, sector: 32, bytes: 40, dev: 44, rwbs: 48 } as const;

/** struct cw_loader */
export const LOADER = { size: 32, stopped: 24 } as const;

/** struct cw_reclaim */
export const RECLAIM = { size: 40, dur: 24, reclaimed: 32 } as const;

/** struct cw_read_io: a read syscall that issued block I/O, entry -> return */
export const READ_IO = { size: 48, dur: 24, ret: 32, nr: 40, fd: 44 } as const;

/** struct cw_func_name: a driver function handle and the kernel name it was looked up by */
export const FUNC_NAME_LEN = 128;
export const FUNC_NAME = { size: 160, handle: 24, name: 32 } as const;

/** struct cw_nvtx_msg (hdr.op = NVTX_MSG_OP): the NVTX message of the next call record of (tid, callOp) */
export const NVTX_MSG = { size: 160, callOp: 24, kind: 26, len: 28, msg: 32 } as const;
/** CW_OP_NVTX_MSG: a record type, not an event op */
export const NVTX_MSG_OP = 241;
export const NVTX_MSG_LEN = 128;
/** CW_NVTX_ASCII / CW_NVTX_UNICODE / CW_NVTX_REGISTERED: nvtxMessageType_t values */
export const NvtxMessage = { ASCII: 1, UNICODE: 2, REGISTERED: 3 } as const;
/** nvtxEventAttributes_t offsets the probe reads (CW_NVTX_ATTR_*) */
export const NVTX_ATTR = { messageType: 32, message: 40 } as const;

/** struct cw_pyframes (hdr.op = PY_FRAMES_OP): Python frames of the next call record of (tid, callOp) */
export const PYFRAMES = { size: 416, callOp: 24, n: 26, code: 32, lasti: 288 } as const;
/** CW_OP_PY_FRAMES: a record type, not an event op */
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

/** enum cw_source */
export const Source = {
  CUDA_RT: 1,
  CUDA_DRV: 2,
  SCHED: 3,
  PROC: 4,
  MEM: 5,
  IO: 6,
  LOADER: 7,
  MCP: 8,
  /** the in-process shim (shim/): same records as CUDA_RT / CUDA_DRV, captured by interposition instead of uprobes */
  SHIM_RT: 9,
  SHIM_DRV: 10,
  /** Python frames (bpf/python.bpf.h): side records of calls, never rows of events */
  PYTHON: 11,
  /** NCCL calls (uprobes on libnccl, bpf/nccl.bpf.c): same cw_call layout as the CUDA calls */
  NCCL: 12,
  /** cuBLAS / cuBLASLt calls (uprobes on libcublas and libcublasLt, bpf/cublas.bpf.c): same cw_call layout */
  CUBLAS: 13,
  /** NVTX ranges and marks (uprobes on libnvToolsExt or Causeway's NVTX3 injection library, bpf/nvtx.bpf.c) */
  NVTX: 14,
} as const;
export type SourceCode = (typeof Source)[keyof typeof Source];

/** sources.name, by code (the dictionary table the views join) */
export const SOURCE_NAMES: Record<number, string> = {
  1: 'cuda_runtime',
  2: 'cuda_driver',
  3: 'sched',
  4: 'process',
  5: 'memory',
  6: 'block_io',
  7: 'loader',
  8: 'mcp',
  9: 'cuda_runtime_inproc',
  10: 'cuda_driver_inproc',
  11: 'python',
  12: 'nccl',
  13: 'cublas',
  14: 'nvtx',
};

/**
 * enum cw_op, the codes that are not CUDA calls (the record type follows the
 * op). Call codes are 1..63 (runtime), 64..95 (driver), 96..107 (NCCL),
 * 108..115 (cuBLAS) and 116..127 (NVTX), listed in ops.ts.
 */
export const Op = {
  /** first code that is not a CUDA call: below it every record is a struct cw_call */
  HOST_MIN: 128,
  OFF_CPU: 128, // struct cw_offcpu
  EXEC: 129, // struct cw_exec
  EXIT: 130, // struct cw_proc
  FORK: 131, // struct cw_proc
  OOM_KILL: 132, // struct cw_proc
  PAGE_ALLOC: 133, // struct cw_mem
  BLOCK_IO: 134, // struct cw_io
  LIB_LOAD: 135, // struct cw_loader
  RECLAIM: 136, // struct cw_reclaim
  FUNC_NAME: 137, // struct cw_func_name (kernel_names, not an event row)
  READ_IO: 138, // struct cw_read_io
  MCP_DISCOVERY: 192, // stored by user space only
  MCP_TOOL_CALL: 193,
  MCP_AUTH_FAIL: 194,
} as const;
/** highest CUDA op code (runtime + driver) */
export const MAX_CUDA_OP = Op.HOST_MIN - 1;

/** NCCL a1 packing (#define CW_NCCL_*, events.h): datatype bits 0..7, reduction op 8..15, flags, peer/root 32..63 */
export const NcclPack = { NO_REDOP: 255, HAS_PEER: 1 << 16, COUNT_ONLY: 1 << 17 } as const;

/**
 * cuBLAS GEMM slots (#define CW_GEMM_*, events.h): a0 = m | n << 26, a1 = k | batch << 26 (batch 0: unknown;
 * 26-bit fields keep the slots below 2^53, exact as doubles and in SQLite; larger values clamped),
 * a2 = A type (bits 0..7) | B type (8..15) | C type (16..23) | compute type (24..31) | transa (32..35) |
 * transb (36..39) | flags (40..), a3 = stream. Flags are bit numbers here (a2 is wider than 32 bits).
 */
export const GemmPack = { DIM_BITS: 26, DIM_MAX: 2 ** 26 - 1, UNKNOWN_TYPE: 255, UNKNOWN_OP: 15, STREAM_UNKNOWN_BIT: 40, SHAPE_UNKNOWN_BIT: 41, CLAMPED_BIT: 42 } as const;

/** hdr.flags (#define CW_F_*) */
export const Flag = {
  /** stack_id is valid */
  STACK_SAMPLED: 1 << 0,
  /** block I/O completed with an error (cw_io); ret != 0 (cw_call) */
  ERROR: 1 << 1,
  /** a CUDA call's out-pointer could not be read at return (the returned pointer/handle is missing) */
  OUT_READ_FAIL: 1 << 2,
  /** exit: killed by a signal; cw_proc.exit_code is the signal number */
  SIGNALED: 1 << 3,
  /** page window closed early (process exit), not by time */
  FLUSHED: 1 << 4,
  /** the call entered through its _ptds export (kept in events.variant, ops.ts VARIANTS) */
  PTDS: 1 << 5,
  /** the call entered through its _ptsz export */
  PTSZ: 1 << 6,
  /** call: a struct cw_pyframes for (tid, op) precedes it in rb_calls */
  PY_FRAMES: 1 << 7,
  /** the call entered through its _64 export (cuBLAS 64-bit integer interface; events.variant) */
  ILP64: 1 << 10,
} as const;
/**
 * Flags the store keeps (table event_flags): everything but STACK_SAMPLED,
 * which events.stack_id already says. Such flags are rare, so they cost no
 * column on the 48 B/event row.
 */
export const STORED_FLAGS = Flag.ERROR | Flag.OUT_READ_FAIL | Flag.SIGNALED | Flag.FLUSHED;

/** enum cw_offcpu_reason */
export const OffCpuReason = { PREEMPTED: 0, VOLUNTARY: 1, IO_WAIT: 2, OTHER: 3 } as const;

/** CW_OFFCPU_CALL_UNKNOWN: cw_offcpu.call_op when the probes cannot know (calls recorded by the in-process shim) */
export const OFFCPU_CALL_UNKNOWN = 0xffff;

/**
 * events.a3 of an off-CPU row (schema v9): cpu | in-call state << 32, the state being 1 + 2 * op of the
 * outermost probed call the thread was inside when it went off-CPU (op 0: none), or 0 when unknown (the
 * in-process shim's calls, and every row written before v9, whose a3 is the CPU alone). So in SQL
 * `a3 >> 32 = 0` is unknown, `a3 >> 32 = 1` outside any call, `a3 >> 33` the op, `a3 & 4294967295` the CPU.
 * Below 2^41: exact as a double and in SQLite.
 */
export function offCpuA3(cpu: number, callOp: number): number {
  return callOp === OFFCPU_CALL_UNKNOWN ? cpu : cpu + (1 + 2 * callOp) * 2 ** 32;
}

/** the CPU of an off-CPU row's events.a3 (offCpuA3) */
export function offCpuCpu(a3: number): number {
  return a3 % 2 ** 32;
}

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
  'offcpu_unpaired',
] as const;
/**
 * Events the kernel never produced, rather than ones Causeway dropped: a traced thread seen switching out twice
 * with no switch-in between (or in twice), because sched_switch did not fire for one switch (ftrace's own
 * sched_switch stream shows the same gap on this project's VM kernel). Still lost events (an off-CPU interval is
 * missing), reported apart so that a reader can tell the tracer's drops from the kernel's.
 */
export const KERNEL_GAP_LOSSES = new Set(['offcpu_unpaired']);
/** how many of these losses are KERNEL_GAP_LOSSES */
export function kernelGapCount(losses: readonly { reason: string; count: number }[]): number {
  return losses.reduce((n, l) => n + (KERNEL_GAP_LOSSES.has(l.reason) ? l.count : 0), 0);
}
/** Losses that are not lost events (a stack missing is still a stored event). */
export const NON_EVENT_LOSSES = new Set(['stack_unavailable', 'py_frames_unavailable', 'py_frames_orphaned', 'nvtx_msg_orphaned']);

/** enum cw_host_stat, index into the cw_host_stats per-CPU array (same order) */
export const HOST_STAT_NAMES = [
  'switches',
  'switchesUntraced',
  'switchesSelf',
  'offCpuEmitted',
  'offCpuShort',
  'offCpuShortNs',
  'wakeupsTraced',
  'pageAllocs',
  'pagesUntraced',
  'ioIssued',
  'ioUntraced',
] as const;

/** CW_OFFCPU_HIST_SLOTS */
export const OFFCPU_HIST_SLOTS = 64;

/** Record framing produced by the addon's drain(): [u32 len][record][pad to 8]. */
export const FRAME_HDR = 4;
export function frameSize(len: number): number {
  return (FRAME_HDR + len + 7) & ~7;
}
