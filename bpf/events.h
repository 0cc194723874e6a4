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
#define CW_PATH_LEN 64

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
};

/* Operation codes. 1..63 CUDA runtime, 64..127 driver, 128.. host, 192.. MCP. */
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

	CW_OP_CU_LAUNCH_KERNEL = 64,
	CW_OP_CU_MEM_ALLOC = 65,
	CW_OP_CU_MEM_FREE = 66,
	CW_OP_CU_MEMCPY_HTOD = 67,
	CW_OP_CU_MEMCPY_DTOH = 68,
	CW_OP_CU_MEMCPY_HTOD_ASYNC = 69,
	CW_OP_CU_MEMCPY_DTOH_ASYNC = 70,
	CW_OP_CU_CTX_SYNCHRONIZE = 71,
	CW_OP_CU_STREAM_SYNCHRONIZE = 72,

	CW_OP_OFF_CPU = 128,     /* struct cw_offcpu */
	CW_OP_EXEC = 129,        /* struct cw_proc */
	CW_OP_EXIT = 130,        /* struct cw_proc */
	CW_OP_FORK = 131,        /* struct cw_proc */
	CW_OP_OOM_KILL = 132,    /* struct cw_proc */
	CW_OP_PAGE_ALLOC = 133,  /* struct cw_mem */
	CW_OP_BLOCK_IO = 134,    /* struct cw_io */
	CW_OP_LIB_LOAD = 135,    /* struct cw_loader: loader mapped new libraries */
	CW_OP_RECLAIM = 136,     /* struct cw_reclaim: a traced thread stalled in direct or memcg reclaim */

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
	CW_LOSS_COUNT = 9,
};

/* hdr.flags */
#define CW_F_STACK_SAMPLED (1u << 0) /* stack_id is valid */
#define CW_F_ERROR (1u << 1)         /* ret != 0 */
#define CW_F_OUT_READ_FAIL (1u << 2) /* could not read the out-pointer at return */
#define CW_F_SIGNALED (1u << 3)      /* exit: killed by a signal; cw_proc.exit_code is the signal number */
#define CW_F_FLUSHED (1u << 4)       /* page window closed early (process exit), not by time */

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

/* A thread of a traced process was off-CPU for dur_ns from hdr.ts_ns. 88 bytes. */
struct cw_offcpu {
	struct cw_hdr hdr;
	__u64 dur_ns;
	__u32 reason;       /* enum cw_offcpu_reason */
	__u32 cpu;          /* CPU it was switched out on */
	__u32 by_tgid;      /* who took the CPU at switch-out (tgid of `next`) */
	__u32 by_tid;
	__u32 waker_tgid;   /* who woke it (0 if it was preempted; enum cw_waker_ctx from interrupts) */
	__u32 waker_tid;
	char by_comm[CW_COMM_LEN];
	char waker_comm[CW_COMM_LEN];
};

/* exec / exit / fork / oom. 120 bytes. */
struct cw_proc {
	struct cw_hdr hdr;
	__u32 ppid;         /* fork: parent tgid; exec/exit: parent tgid */
	__u32 child_tgid;   /* fork: new process (or thread) id; oom: victim */
	__s32 exit_code;    /* exit: exit code (status >> 8) or signal */
	__u32 is_thread;    /* fork: 1 when a thread was created */
	char comm[CW_COMM_LEN];
	char filename[CW_PATH_LEN]; /* exec: path of the new image */
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

/* The dynamic loader hit _dl_debug_state: the process mapped new objects. 32 bytes. */
struct cw_loader {
	struct cw_hdr hdr;
	__u32 stopped;       /* 1 when the task was parked with SIGSTOP for attach */
	__u32 pad;
};

#endif /* CAUSEWAY_EVENTS_H */
