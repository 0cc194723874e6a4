/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * events.h: every record that crosses the kernel boundary.
 *
 * Shared by the BPF programs (bpf/NAME.bpf.c), the N-API addon (native/) and
 * mirrored in TypeScript by src/common/wire.ts (layouts, sources, flags,
 * host stats) and src/common/ops.ts (the op table). test/capture/layout.test.ts
 * compiles against this file and parses it, and checks the TypeScript
 * constants and offsets, so edit here first. Layouts are fixed-size, little-endian, 8-byte aligned.
 */
#ifndef CAUSEWAY_EVENTS_H
#define CAUSEWAY_EVENTS_H

#define CW_EVENT_VERSION 1
#define CW_COMM_LEN 16

/* Where an event came from: one value per probe family. */
enum cw_source {
	CW_SRC_CUDA_RT = 1,   /* uprobes on libcudart */
	CW_SRC_CUDA_DRV = 2,  /* uprobes on libcuda */
	CW_SRC_SCHED = 3,     /* sched_switch / sched_wakeup */
	CW_SRC_PROC = 4,      /* exec / exit / fork / oom */
	CW_SRC_MEM = 5,       /* page allocation aggregates */
	CW_SRC_IO = 6,        /* block I/O */
	CW_SRC_LOADER = 7,    /* dynamic loader: new libraries mapped */
	CW_SRC_MCP = 8,       /* Causeway's own MCP server (user space only) */
	CW_SRC_SHIM_RT = 9,   /* in-process shim (shim/), CUDA runtime calls: same cw_call layout */
	CW_SRC_SHIM_DRV = 10, /* in-process shim, CUDA driver calls */
	CW_SRC_PYTHON = 11,   /* Python frames read from a CPython interpreter (bpf/python.bpf.h) */
	CW_SRC_NCCL = 12,     /* uprobes on libnccl (nccl.bpf.c): collectives, point-to-point, communicators */
	CW_SRC_CUBLAS = 13,   /* uprobes on libcublas/libcublasLt (cublas.bpf.c): GEMMs, stream binding, Lt descriptors */
	CW_SRC_NVTX = 14,     /* uprobes on libnvToolsExt / Causeway's NVTX3 injection library (nvtx.bpf.c): ranges, marks */
};

/* Operation codes. 1..63 CUDA runtime, 64..95 driver, 96..107 NCCL, 108..115 cuBLAS, 116..127 NVTX, 128.. host, 192.. MCP. */
enum cw_op {
	CW_OP_NONE = 0,
	CW_OP_CUDA_MALLOC = 1,
	CW_OP_CUDA_FREE = 2,
	CW_OP_CUDA_MALLOC_MANAGED = 3,
	CW_OP_CUDA_MALLOC_HOST = 4,
	CW_OP_CUDA_FREE_HOST = 5,
	CW_OP_CUDA_LAUNCH_KERNEL = 6,
	CW_OP_CUDA_MEMCPY = 7,
	CW_OP_CUDA_MEMCPY_ASYNC = 8,
	CW_OP_CUDA_MEMSET = 9,
	CW_OP_CUDA_MEMSET_ASYNC = 10,
	CW_OP_CUDA_STREAM_SYNCHRONIZE = 11,
	CW_OP_CUDA_DEVICE_SYNCHRONIZE = 12,
	CW_OP_CUDA_EVENT_SYNCHRONIZE = 13,
	CW_OP_CUDA_STREAM_WAIT_EVENT = 14,
	CW_OP_CUDA_LAUNCH_KERNEL_EX_C = 15,
	CW_OP_CUDA_LAUNCH_COOPERATIVE_KERNEL = 16,
	CW_OP_CUDA_STREAM_BEGIN_CAPTURE = 17,
	CW_OP_CUDA_STREAM_END_CAPTURE = 18,
	CW_OP_CUDA_GRAPH_INSTANTIATE = 19,
	CW_OP_CUDA_GRAPH_INSTANTIATE_WITH_FLAGS = 20,
	CW_OP_CUDA_GRAPH_LAUNCH = 21,
	CW_OP_CUDA_GRAPH_EXEC_UPDATE = 22,
	CW_OP_CUDA_GRAPH_UPLOAD = 23,
	CW_OP_CUDA_EVENT_RECORD = 24,
	CW_OP_CUDA_EVENT_RECORD_WITH_FLAGS = 25,
	CW_OP_CUDA_EVENT_QUERY = 26,
	CW_OP_CUDA_STREAM_QUERY = 27,
	CW_OP_CUDA_EVENT_CREATE = 28,
	CW_OP_CUDA_EVENT_CREATE_WITH_FLAGS = 29,
	CW_OP_CUDA_EVENT_DESTROY = 30,
	CW_OP_CUDA_STREAM_CREATE = 31,
	CW_OP_CUDA_STREAM_CREATE_WITH_FLAGS = 32,
	CW_OP_CUDA_STREAM_CREATE_WITH_PRIORITY = 33,
	CW_OP_CUDA_STREAM_DESTROY = 34,
	CW_OP_CUDA_MALLOC_ASYNC = 35,
	CW_OP_CUDA_FREE_ASYNC = 36,
	CW_OP_CUDA_MALLOC_FROM_POOL_ASYNC = 37,
	CW_OP_CUDA_MEMCPY_2D = 38,
	CW_OP_CUDA_MEMCPY_2D_ASYNC = 39,
	CW_OP_CUDA_MEMCPY_3D = 40,
	CW_OP_CUDA_MEMCPY_3D_ASYNC = 41,
	CW_OP_CUDA_MEMCPY_PEER = 42,
	CW_OP_CUDA_MEMCPY_PEER_ASYNC = 43,
	CW_OP_CUDA_MEMCPY_3D_PEER = 44,
	CW_OP_CUDA_MEMCPY_3D_PEER_ASYNC = 45,
	CW_OP_CUDA_MEM_PREFETCH_ASYNC = 46,
	CW_OP_CUDA_HOST_ALLOC = 47,
	CW_OP_CUDA_HOST_REGISTER = 48,
	CW_OP_CUDA_SET_DEVICE = 49,

	CW_OP_CU_LAUNCH_KERNEL = 64,
	CW_OP_CU_MEM_ALLOC = 65,
	CW_OP_CU_MEM_FREE = 66,
	CW_OP_CU_MEMCPY_HTOD = 67,
	CW_OP_CU_MEMCPY_DTOH = 68,
	CW_OP_CU_MEMCPY_HTOD_ASYNC = 69,
	CW_OP_CU_MEMCPY_DTOH_ASYNC = 70,
	CW_OP_CU_CTX_SYNCHRONIZE = 71,
	CW_OP_CU_STREAM_SYNCHRONIZE = 72,
	CW_OP_CU_LAUNCH_KERNEL_EX = 73,
	CW_OP_CU_GRAPH_LAUNCH = 74,
	CW_OP_CU_MEMCPY = 75,
	CW_OP_CU_MEMCPY_ASYNC = 76,
	CW_OP_CU_MEMCPY_DTOD = 77,
	CW_OP_CU_MEMCPY_DTOD_ASYNC = 78,
	CW_OP_CU_MEM_ALLOC_ASYNC = 79,
	CW_OP_CU_MEM_FREE_ASYNC = 80,
	CW_OP_CU_MEM_ALLOC_MANAGED = 81,
	CW_OP_CU_MEM_HOST_ALLOC = 82,
	CW_OP_CU_EVENT_RECORD = 83,
	CW_OP_CU_EVENT_SYNCHRONIZE = 84,
	CW_OP_CU_EVENT_QUERY = 85,
	CW_OP_CU_STREAM_WAIT_EVENT = 86,
	CW_OP_CU_STREAM_QUERY = 87,
	CW_OP_CU_MODULE_LOAD = 88,
	CW_OP_CU_MODULE_LOAD_DATA = 89,
	CW_OP_CU_MODULE_LOAD_DATA_EX = 90,
	CW_OP_CU_MODULE_LOAD_FAT_BINARY = 91,
	CW_OP_CU_LIBRARY_LOAD_DATA = 92,
	CW_OP_CU_LIBRARY_LOAD_FROM_FILE = 93,
	CW_OP_CU_MODULE_GET_FUNCTION = 94,
	CW_OP_CU_LIBRARY_GET_KERNEL = 95,

	/* NCCL (libnccl.so.2): struct cw_call like the CUDA calls, source CW_SRC_NCCL */
	CW_OP_NCCL_ALL_REDUCE = 96,
	CW_OP_NCCL_ALL_GATHER = 97,
	CW_OP_NCCL_REDUCE_SCATTER = 98,
	CW_OP_NCCL_BROADCAST = 99,
	CW_OP_NCCL_REDUCE = 100,
	CW_OP_NCCL_SEND = 101,
	CW_OP_NCCL_RECV = 102,
	CW_OP_NCCL_GROUP_START = 103,
	CW_OP_NCCL_GROUP_END = 104,
	CW_OP_NCCL_COMM_INIT_RANK = 105,
	CW_OP_NCCL_COMM_INIT_RANK_CONFIG = 106,
	CW_OP_NCCL_COMM_DESTROY = 107,

	/* cuBLAS (libcublas.so.N) and cuBLASLt (libcublasLt.so.N): struct cw_call, source CW_SRC_CUBLAS */
	CW_OP_CUBLAS_GEMM_EX = 108,
	CW_OP_CUBLAS_GEMM_STRIDED_BATCHED_EX = 109,
	CW_OP_CUBLAS_SGEMM = 110,
	CW_OP_CUBLAS_HGEMM = 111,
	CW_OP_CUBLAS_LT_MATMUL = 112,
	CW_OP_CUBLAS_SET_STREAM = 113,
	CW_OP_CUBLAS_LT_MATRIX_LAYOUT_CREATE = 114,
	CW_OP_CUBLAS_LT_MATMUL_DESC_CREATE = 115,

	/* NVTX (libnvToolsExt.so.1, or shim/nvtx_inject.c for NVTX3): struct cw_call, source CW_SRC_NVTX.
	 * The message travels in a struct cw_nvtx_msg emitted right before the call record. */
	CW_OP_NVTX_RANGE_PUSH_A = 116,
	CW_OP_NVTX_RANGE_PUSH_W = 117,
	CW_OP_NVTX_RANGE_PUSH_EX = 118,
	CW_OP_NVTX_RANGE_POP = 119,
	CW_OP_NVTX_RANGE_START_A = 120,
	CW_OP_NVTX_RANGE_START_EX = 121,
	CW_OP_NVTX_RANGE_END = 122,
	CW_OP_NVTX_MARK_A = 123,
	CW_OP_NVTX_MARK_EX = 124,
	CW_OP_NVTX_DOMAIN_RANGE_PUSH_EX = 125,
	CW_OP_NVTX_DOMAIN_RANGE_POP = 126,
	CW_OP_NVTX_DOMAIN_MARK_EX = 127,

	CW_OP_OFF_CPU = 128,     /* struct cw_offcpu */
	CW_OP_EXEC = 129,        /* struct cw_exec */
	CW_OP_EXIT = 130,        /* struct cw_proc */
	CW_OP_FORK = 131,        /* struct cw_proc */
	CW_OP_OOM_KILL = 132,    /* struct cw_proc */
	CW_OP_PAGE_ALLOC = 133,  /* struct cw_mem */
	CW_OP_BLOCK_IO = 134,    /* struct cw_io */
	CW_OP_LIB_LOAD = 135,    /* struct cw_loader: loader mapped new libraries */
	CW_OP_RECLAIM = 136,     /* struct cw_reclaim: a traced thread stalled in direct or memcg reclaim */
	CW_OP_FUNC_NAME = 137,   /* struct cw_func_name: a CUfunction/CUkernel handle and the kernel name it was looked up by */
	CW_OP_READ_IO = 138,     /* struct cw_read_io: a traced thread's read syscall that issued block I/O */

	CW_OP_MCP_DISCOVERY = 192, /* stored by user space only */
	CW_OP_MCP_TOOL_CALL = 193,
	CW_OP_MCP_AUTH_FAIL = 194,

	CW_OP_MAX = 256,
};

/* Ring buffers, one per event class; also the index into the drop counters. */
enum cw_ring {
	CW_RING_CALLS = 0,  /* rb_calls: CUDA runtime + driver calls */
	CW_RING_HOST = 1,   /* rb_host: off-CPU intervals, block I/O, page-alloc aggregates */
	CW_RING_LIFE = 2,   /* rb_life: exec/exit/fork/oom/loader, small, never sampled */
	CW_RING_COUNT = 3,
};

/*
 * Loss counters: per-CPU array `cw_drops`, index = enum cw_loss. Summed by
 * user space and stored per session. Nothing is ever dropped without a count.
 */
enum cw_loss {
	CW_LOSS_RB_CALLS = 0,        /* bpf_ringbuf_reserve failed on rb_calls */
	CW_LOSS_RB_HOST = 1,         /* ... on rb_host */
	CW_LOSS_RB_LIFE = 2,         /* ... on rb_life */
	CW_LOSS_ENTRY_MAP_FULL = 3,  /* entry state could not be stored: call lost */
	CW_LOSS_MISSED_RETURN = 4,   /* entry overwritten before its return fired (longjmp, thread exit) */
	CW_LOSS_ORPHAN_RETURN = 5,   /* return without a recorded entry */
	CW_LOSS_STACK = 6,           /* bpf_get_stackid failed (not a lost event; stack missing) */
	CW_LOSS_SCHED_MAP_FULL = 7,  /* off-CPU start could not be stored */
	CW_LOSS_HOST_MAP_FULL = 8,   /* host state lost: block I/O issue, page window, or a forked child not added to cw_traced */
	CW_LOSS_PY_FRAMES = 9,       /* Python frames of a sampled call not recorded (rb_calls full): the call is kept, without them */
	CW_LOSS_OFFCPU_UNPAIRED = 10, /* a traced thread switched out twice with no switch-in between (or in twice): the
				       * kernel never fired sched_switch for one switch (ftrace shows the same gap on
				       * this project's VM kernel, ~1 trace in 40), so one off-CPU interval is missing */
	CW_LOSS_COUNT = 11,
};

/* hdr.flags */
#define CW_F_STACK_SAMPLED (1u << 0) /* stack_id is valid */
#define CW_F_ERROR (1u << 1)         /* ret != 0 */
#define CW_F_OUT_READ_FAIL (1u << 2) /* could not read the out-pointer at return */
#define CW_F_SIGNALED (1u << 3)      /* exit: killed by a signal; cw_proc.exit_code is the signal number */
#define CW_F_FLUSHED (1u << 4)       /* page window closed early (process exit), not by time */
#define CW_F_PTDS (1u << 5)          /* call entered through the _ptds export (per-thread default stream) */
#define CW_F_PTSZ (1u << 6)          /* call entered through the _ptsz export (per-thread default stream) */
#define CW_F_PY_FRAMES (1u << 7)     /* call: a struct cw_pyframes for (tid, op) precedes it in rb_calls */
#define CW_F_ILP64 (1u << 10)        /* call entered through the _64 export (cuBLAS 64-bit integer interface) */

/*
 * NCCL calls: a1 ("dtype_op" in src/common/ops.ts) packs what the collective
 * says about its data. Bits 0..7 ncclDataType_t, bits 8..15 ncclRedOp_t
 * (CW_NCCL_NO_REDOP when the call has none), bit 16 set when bits 32..63 hold
 * a rank (root of ncclBroadcast/ncclReduce, peer of ncclSend/ncclRecv), bit 17
 * set when a0 is the element count because the datatype's size is unknown
 * (a0 is bytes = count x size otherwise).
 */
#define CW_NCCL_NO_REDOP 255
#define CW_NCCL_HAS_PEER (1u << 16)
#define CW_NCCL_COUNT_ONLY (1u << 17)

/*
 * cuBLAS GEMMs (cublasGemmEx, cublasGemmStridedBatchedEx, cublasSgemm,
 * cublasHgemm, cublasLtMatmul) fill the four slots the same way ("mn",
 * "k_batch", "gemm" and "stream" in src/common/ops.ts; wire.ts GemmPack):
 *   a0 = m (bits 0..25) | n (bits 26..51)
 *   a1 = k (bits 0..25) | batch count (bits 26..51; 1 for a single GEMM,
 *        0 = unknown: cublasLtMatmul's batch is a layout attribute, not probed)
 *   a2 = A type (bits 0..7) | B type (8..15) | C type (16..23): cudaDataType_t,
 *        CW_GEMM_UNKNOWN_TYPE when unknown; compute type (24..31):
 *        cublasComputeType_t (>= 64), or a cudaDataType_t (< 64) as legacy
 *        callers of cublasGemmEx pass; transa (32..35), transb (36..39):
 *        cublasOperation_t, CW_GEMM_UNKNOWN_OP when unknown; flags from bit 40
 *   a3 = the stream the work goes to (cublasSetStream of the handle, or the
 *        stream argument of cublasLtMatmul)
 * 26-bit fields keep every slot below 2^53, where user space (doubles) and
 * SQLite read it exactly; a dimension or batch count above CW_GEMM_DIM_MAX
 * (67,108,863) is clamped and flagged CW_GEMM_CLAMPED.
 */
#define CW_GEMM_DIM_BITS 26
#define CW_GEMM_DIM_MAX ((1u << CW_GEMM_DIM_BITS) - 1)
#define CW_GEMM_UNKNOWN_TYPE 255
#define CW_GEMM_UNKNOWN_OP 15
#define CW_GEMM_STREAM_UNKNOWN (1ull << 40) /* no cublasSetStream seen for the handle: a3 = 0 assumes its default stream */
#define CW_GEMM_SHAPE_UNKNOWN (1ull << 41)  /* cublasLtMatmul with layouts created before tracing: m, n, k are 0 */
#define CW_GEMM_CLAMPED (1ull << 42)        /* a dimension or batch count above CW_GEMM_DIM_MAX was clamped */

/*
 * Attach cookie of a call probe: the op in the low 16 bits, the export
 * variant above it (CW_VARIANT_*), so cudaMemcpy and cudaMemcpy_ptds are one
 * op and the record keeps which entry point was called (CW_F_PTDS/PTSZ).
 */
#define CW_COOKIE_VARIANT_SHIFT 16
#define CW_VARIANT_PTDS 1
#define CW_VARIANT_PTSZ 2
#define CW_VARIANT_ILP64 3

/* Common header: every record starts with it. 24 bytes. */
struct cw_hdr {
	__u64 ts_ns;   /* bpf_ktime_get_ns() at entry / interval start */
	__u32 tgid;    /* process id */
	__u32 tid;     /* thread id */
	__u16 op;      /* enum cw_op */
	__u8 source;   /* enum cw_source */
	__u8 version;  /* CW_EVENT_VERSION */
	__u32 flags;   /* CW_F_* */
};

/*
 * A CUDA runtime or driver call, emitted at return. 72 bytes.
 * Argument slots per op (a0..a3) are documented in src/common/ops.ts and the
 * `ops` table: memory ops put bytes in a0, copies their direction in a1,
 * stream-ordered ops their stream in a2/a3, allocations the returned pointer.
 */
struct cw_call {
	struct cw_hdr hdr;
	__u64 dur_ns;
	__u64 a[4];
	__s32 ret;       /* cudaError_t / CUresult */
	__s32 stack_id;  /* id in the cw_stacks map, or -1 */
};

/* Off-CPU reasons (from prev_state at switch-out). */
enum cw_offcpu_reason {
	CW_OFFCPU_PREEMPTED = 0,  /* still runnable: another task took the CPU */
	CW_OFFCPU_VOLUNTARY = 1,  /* interruptible sleep: futex, poll, flock ... */
	CW_OFFCPU_IO_WAIT = 2,    /* uninterruptible sleep: block I/O, page-in */
	CW_OFFCPU_OTHER = 3,
};

/*
 * waker_tgid markers: the wakeup ran in interrupt context, where `current` is
 * whatever task the interrupt landed on (a bystander), not the waker. Device
 * interrupt handlers (a GPU completion) show as CW_WAKER_HARDIRQ, expiring
 * hrtimers (sleeps, timed waits) as CW_WAKER_TIMER, softirqs (timer lists,
 * network and block completions) as CW_WAKER_SOFTIRQ. Above any pid
 * (PID_MAX_LIMIT is 2^22).
 */
enum cw_waker_ctx {
	CW_WAKER_HARDIRQ = 0xfffffff0,
	CW_WAKER_SOFTIRQ = 0xfffffff1,
	CW_WAKER_NMI = 0xfffffff2,    /* reserved: not detected yet */
	CW_WAKER_TIMER = 0xfffffff3,  /* an expiring hrtimer (sleeps, timeouts) */
};

/*
 * cw_offcpu.call_op when the probes cannot know whether the thread was inside
 * a call: its calls are recorded by the in-process shim (shim/), which keeps
 * no state the kernel can read.
 */
#define CW_OFFCPU_CALL_UNKNOWN 65535 /* 0xffff: above every op */

/* A thread of a traced process was off-CPU for dur_ns from hdr.ts_ns. 88 bytes. */
struct cw_offcpu {
	struct cw_hdr hdr;
	__u64 dur_ns;
	__u32 reason;       /* enum cw_offcpu_reason */
	__u16 cpu;          /* CPU it was switched out on */
	__u16 call_op;      /* outermost probed call (enum cw_op) open on the thread when it went off-CPU:
			     * 0 = none, CW_OFFCPU_CALL_UNKNOWN = not tracked (bpf/in_call.bpf.h) */
	__u32 by_tgid;      /* who took the CPU at switch-out (tgid of `next`) */
	__u32 by_tid;
	__u32 waker_tgid;   /* who woke it (0 if it was preempted; enum cw_waker_ctx from interrupts) */
	__u32 waker_tid;
	char by_comm[CW_COMM_LEN];
	char waker_comm[CW_COMM_LEN];
};

/* exit / fork / oom. 56 bytes. */
struct cw_proc {
	struct cw_hdr hdr;
	__u32 ppid;         /* fork: parent tgid; exit: parent tgid */
	__u32 child_tgid;   /* fork: new process (or thread) id; oom: victim */
	__s32 exit_code;    /* exit: exit code (status >> 8) or signal */
	__u32 is_thread;    /* fork: 1 when a thread was created */
	char comm[CW_COMM_LEN];
};

/*
 * exec: caps on what one record carries. The path is the filename the exec
 * was asked for (bprm->filename, what the sched_process_exec tracepoint
 * reports), NUL included; argv is the new image's (mm->arg_start..arg_end
 * read after the exec, so `exec -a NAME` shows NAME). The store keeps at
 * most 1024 / 4096 characters of exe / cmdline, so nothing longer is read.
 */
#define CW_EXEC_PATH_LEN 1024
#define CW_EXEC_ARGS_LEN 4096
/* hdr.flags of a cw_exec record */
#define CW_EXECF_PATH_TRUNCATED (1u << 8)  /* the path was longer than CW_EXEC_PATH_LEN - 1 bytes */
#define CW_EXECF_ARGS_TRUNCATED (1u << 9)  /* argv was longer than CW_EXEC_ARGS_LEN bytes */

/*
 * A traced process exec'd a new image. Variable length: only the first
 * offsetof(data) + path_len + args_len bytes are emitted (a short command
 * costs ~100 bytes of rb_life, not sizeof). 5168 bytes at most.
 */
struct cw_exec {
	struct cw_hdr hdr;
	__u32 ppid;          /* parent tgid */
	__u16 path_len;      /* bytes of data[] holding the path, its NUL included (>= 1) */
	__u16 args_len;      /* bytes of data[] after the path: argv, each argument NUL-terminated */
	char comm[CW_COMM_LEN];
	char data[CW_EXEC_PATH_LEN + CW_EXEC_ARGS_LEN];
};

/* Page allocations of one process aggregated over a window. 40 bytes. */
struct cw_mem {
	struct cw_hdr hdr;   /* ts_ns = window start */
	__u64 window_ns;
	__u64 pages;         /* pages allocated in the window (sum of 2^order) */
};

/* One block request, issue -> complete. 56 bytes. */
struct cw_io {
	struct cw_hdr hdr;   /* ts_ns = issue; tgid/tid = issuer */
	__u64 dur_ns;
	__u64 sector;
	__u32 bytes;
	__u32 dev;
	char rwbs[8];
};

/*
 * Host-side aggregates kept in the kernel (host.bpf.c), never streamed:
 * per-CPU array `cw_host_stats` of __u64, index = enum cw_host_stat.
 * User space sums it with readPercpuCounters(obj, "cw_host_stats").
 */
enum cw_host_stat {
	CW_HS_SWITCHES = 0,          /* every sched_switch seen */
	CW_HS_SWITCHES_UNTRACED = 1, /* neither prev nor next traced (noise, counted only) */
	CW_HS_SWITCHES_SELF = 2,     /* prev or next is Causeway itself */
	CW_HS_OFFCPU_EMITTED = 3,    /* cw_offcpu records emitted */
	CW_HS_OFFCPU_SHORT = 4,      /* intervals shorter than cw_min_offcpu_ns: counted, not emitted */
	CW_HS_OFFCPU_SHORT_NS = 5,   /* their summed duration */
	CW_HS_WAKEUPS_TRACED = 6,    /* wakeups of traced threads that had an open interval */
	CW_HS_PAGE_ALLOCS = 7,       /* mm_page_alloc calls by traced tasks */
	CW_HS_PAGES_UNTRACED = 8,    /* pages (sum of 2^order) allocated by untraced tasks */
	CW_HS_IO_ISSUED = 9,         /* block requests of traced tasks stored at issue */
	CW_HS_IO_UNTRACED = 10,      /* block requests completed that had no traced issuer */
	CW_HS_COUNT = 11,
};

/*
 * Off-CPU durations of traced threads (emitted or short), log2 histogram:
 * per-CPU array `cw_offcpu_hist` of __u64, slot i counts durations in
 * [2^i, 2^(i+1)) ns, slot 0 also 0-1 ns, slot 63 everything above.
 */
#define CW_OFFCPU_HIST_SLOTS 64

/*
 * Open page-allocation windows: hash `cw_page_win`, key __u32 tgid,
 * value struct cw_page_win. User space flushes what is left at the end.
 */
struct cw_page_win {
	__u64 start_ns;      /* window start (bpf_ktime_get_ns) */
	__u64 pages;         /* pages allocated since start_ns */
};

/* A traced thread ran memory reclaim itself (direct or memory-cgroup limit) for dur_ns. 40 bytes. */
struct cw_reclaim {
	struct cw_hdr hdr;   /* ts_ns = reclaim begin */
	__u64 dur_ns;
	__u64 reclaimed;     /* pages reclaimed */
};

/*
 * A read-family syscall (read, pread64, readv, preadv, preadv2) of a traced
 * thread that issued block I/O itself (a page-cache hit issues none and is not
 * recorded): the whole call, entry to return, on- and off-CPU. The block
 * requests' own records (struct cw_io) cover issue to completion only; the
 * syscall also pins pages, builds the requests and copies or unpins after
 * completion on the caller's CPU (~50-100 us per O_DIRECT read measured here).
 * 48 bytes.
 */
struct cw_read_io {
	struct cw_hdr hdr;   /* ts_ns = syscall entry */
	__u64 dur_ns;
	__s64 ret;           /* bytes read, or -errno */
	__u32 nr;            /* syscall number */
	__s32 fd;
};

/* The dynamic loader hit _dl_debug_state: the process mapped new objects. 32 bytes. */
struct cw_loader {
	struct cw_hdr hdr;
	__u32 stopped;       /* 1 when the task was parked with SIGSTOP for attach */
	__u32 pad;
};

#define CW_FUNC_NAME_LEN 128

/*
 * cuModuleGetFunction / cuLibraryGetKernel returned `handle` for the kernel
 * named `name` (NUL-terminated, truncated to CW_FUNC_NAME_LEN - 1). Emitted on
 * rb_calls right before the call record. 160 bytes.
 */
struct cw_func_name {
	struct cw_hdr hdr;   /* op = CW_OP_FUNC_NAME, ts_ns = call entry */
	__u64 handle;        /* CUfunction / CUkernel */
	char name[CW_FUNC_NAME_LEN];
};

/*
 * NVTX message of the next call record of (tid, call_op) in rb_calls
 * (nvtx.bpf.c). hdr.op = CW_OP_NVTX_MSG: a record type, not an event op (the
 * store interns the text in nvtx_names and the call's a3 points at it).
 * ASCII messages are read with bpf_probe_read_user_str (len counts the NUL);
 * wide ones (nvtxRangePushW, NVTX_MESSAGE_TYPE_UNICODE) are copied raw,
 * CW_NVTX_MSG_LEN bytes of UTF-32LE, and cut at the first NUL by user space.
 * 160 bytes.
 */
#define CW_OP_NVTX_MSG 241
#define CW_NVTX_MSG_LEN 128
#define CW_NVTX_ASCII 1      /* nvtxMessageType_t NVTX_MESSAGE_TYPE_ASCII */
#define CW_NVTX_UNICODE 2    /* NVTX_MESSAGE_TYPE_UNICODE (wchar_t: 4 bytes on Linux) */
#define CW_NVTX_REGISTERED 3 /* NVTX_MESSAGE_TYPE_REGISTERED: a string handle, no text */
/* nvtxEventAttributes_t (v2, nvToolsExt.h): the fields read, byte offsets */
#define CW_NVTX_ATTR_MESSAGE_TYPE 32
#define CW_NVTX_ATTR_MESSAGE 40

struct cw_nvtx_msg {
	struct cw_hdr hdr;   /* ts_ns = call entry, op = CW_OP_NVTX_MSG, source = CW_SRC_NVTX */
	__u16 call_op;       /* op of the call this message belongs to */
	__u16 kind;          /* CW_NVTX_ASCII or CW_NVTX_UNICODE */
	__s32 len;           /* bpf_probe_read_user_str's result (ASCII), bytes copied (wide), < 0: unreadable */
	char msg[CW_NVTX_MSG_LEN];
};

/*
 * Python frames (bpf/python.bpf.h). User space writes one struct cw_py_proc
 * per CPython process into the hash `cw_py_procs` (key __u32 tgid): where
 * _PyRuntime is and the offsets of the fields the walker follows, for that
 * interpreter's version (src/discover/python-offsets.ts; 3.13+ from the
 * _Py_DebugOffsets the runtime publishes). Offsets are bytes; CW_PY_NONE =
 * the field does not exist in this version.
 */
#define CW_PY_NONE 0xffff
#define CW_PY_MAX_FRAMES 32
#define CW_PY_KIND_FRAME_OBJECT 1  /* 3.10: PyFrameObject chain, f_lasti in code units */
#define CW_PY_KIND_INTERP_FRAME 2  /* 3.11+: _PyInterpreterFrame chain, instruction pointer */

struct cw_py_proc {
	__u64 runtime;           /* address of _PyRuntime in the process */
	__u16 kind;              /* CW_PY_KIND_* */
	__u16 version;           /* 0x030a, 0x030b, ... */
	__u16 runtime_interp_head; /* _PyRuntimeState.interpreters.head */
	__u16 interp_next;       /* PyInterpreterState.next */
	__u16 interp_tstate_head;  /* PyInterpreterState.tstate_head (3.10) / threads.head */
	__u16 tstate_next;       /* PyThreadState.next */
	__u16 tstate_thread_id;  /* PyThreadState.thread_id (pthread_self(): the thread's fs base on x86-64) */
	__u16 tstate_frame;      /* PyThreadState.frame (3.10) / cframe (3.11, 3.12) / current_frame (3.13+) */
	__u16 cframe_current;    /* _PyCFrame.current_frame (3.11, 3.12), else CW_PY_NONE */
	__u16 frame_back;        /* f_back / previous */
	__u16 frame_code;        /* f_code / f_executable */
	__u16 frame_instr;       /* f_lasti (int, 3.10) / prev_instr (3.11, 3.12) / instr_ptr (3.13+) */
	__u16 frame_owner;       /* owner (char), 3.11+ */
	__u16 frame_is_entry;    /* is_entry (bool), 3.11 only */
	__u16 code_adaptive;     /* PyCodeObject.co_code_adaptive (3.11+): the bytecode */
	__u16 pad;
};

/* hdr.op of a struct cw_pyframes: a record type, not an event op (outside enum cw_op
 * on purpose: it never becomes a row of `events`), above every op range in use. */
#define CW_OP_PY_FRAMES 240

/* cw_pyframes.lasti[i] bit 31: frame i is the outermost Python frame of one C-level
 * evaluation (_PyEval_EvalFrameDefault call); user space maps groups to those frames. */
#define CW_PY_ENTRY (1u << 31)
/* cw_pyframes.lasti[i] bit 30: slot i is a shim frame of the C stack (3.12+), not a Python
 * frame: user space drops it and marks the frame before it CW_PY_ENTRY. */
#define CW_PY_SHIM (1u << 30)
/* hdr.flags of a cw_pyframes record */
#define CW_PYF_TRUNCATED (1u << 8)   /* more frames than CW_PY_MAX_FRAMES */

/*
 * The Python frames of one sampled call, innermost first, emitted at the
 * call's entry into rb_calls (so it is consumed before the call record,
 * which carries CW_F_PY_FRAMES). hdr: ts_ns = when the walk ran, tgid/tid of
 * the caller, op = CW_OP_PY_FRAMES, source = CW_SRC_PYTHON. 416 bytes.
 */
struct cw_pyframes {
	struct cw_hdr hdr;
	__u16 call_op;       /* op of the call these frames belong to */
	__u16 n;             /* frames recorded */
	__u32 pad;
	__u64 code[CW_PY_MAX_FRAMES];   /* PyCodeObject address */
	__u32 lasti[CW_PY_MAX_FRAMES];  /* byte offset of the current instruction in the bytecode | CW_PY_ENTRY | CW_PY_SHIM */
};

#endif /* CAUSEWAY_EVENTS_H */
