/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * ring.h: the shared-memory files between the in-process shim (writer) and
 * the tracer (reader). Mirrored by src/capture/inproc-layout.ts (a test
 * compiles this header and checks every offset there).
 *
 * One directory per trace, created 0700 by the tracer (CAUSEWAY_SHIM_DIR):
 *   P<pid>-<image>.proc        one per process image: what the shim covers, process-level losses
 *   T<pid>-<tid>-<image>.ring  one per thread that made a probed call: an SPSC ring
 * (<image>: the image's start time in hex, so an exec keeping the pid gets new files)
 * Files are created O_EXCL, mode 0600, and never written by anyone but the
 * shim in that process, except `tail`, written by the tracer only.
 *
 * A ring slot is exactly one frame of the addon's drain() output:
 * [u32 len = sizeof(struct cw_call)][struct cw_call][u32 seq], 80 bytes, so
 * the tracer hands a contiguous run of slots to the same decoder as the BPF
 * rings (one contract, two sources).
 */
#ifndef CAUSEWAY_SHIM_RING_H
#define CAUSEWAY_SHIM_RING_H

#include <stdint.h>

#define CW_SHIM_MAGIC 0x52535743u      /* "CWSR" */
#define CW_SHIM_PROC_MAGIC 0x50535743u /* "CWSP" */
#define CW_SHIM_LAYOUT 1
#define CW_SHIM_HDR_BYTES 4096         /* data starts one page in */
#define CW_SHIM_SLOT_BYTES 80
#define CW_SHIM_STACK_BYTES 128        /* one sampled stack: struct cw_shim_stack */
#define CW_SHIM_STACK_DEPTH 15

/* Per-thread drop reasons: ring_hdr.drops[] index. */
enum cw_shim_loss {
	CW_SHIM_LOSS_RING_FULL = 0, /* the tracer did not drain in time (or is gone) */
	CW_SHIM_LOSS_REENTRANT = 1, /* a signal handler called CUDA while this thread was recording */
	CW_SHIM_LOSS_COUNT = 4,
};

/* Per-process drop reasons: proc_hdr.drops[] index. */
enum cw_shim_proc_loss {
	CW_SHIM_PLOSS_NO_RING = 0,     /* the thread's ring could not be created (no dir, ENOSPC, EMFILE) */
	CW_SHIM_PLOSS_UNRESOLVED = 1,  /* a probed function was called but the real one was not found */
	CW_SHIM_PLOSS_COUNT = 4,
};

/* hdr.state */
#define CW_SHIM_LIVE 0
#define CW_SHIM_CLOSED 1   /* the thread exited: nothing more will be written */

struct cw_shim_ring_hdr {
	uint32_t magic;        /* CW_SHIM_MAGIC */
	uint32_t layout;       /* CW_SHIM_LAYOUT */
	uint32_t slots;        /* power of two */
	uint32_t slot_bytes;   /* CW_SHIM_SLOT_BYTES */
	uint32_t pid;
	uint32_t tid;
	uint32_t state;        /* CW_SHIM_LIVE | CW_SHIM_CLOSED */
	uint32_t stack_slots;  /* entries in the stack area after the data slots (power of two) */
	uint64_t calls;        /* probed calls this thread made (recorded + dropped) */
	uint8_t pad1[64 - 40];
	/* producer's cache line: records [0, head) have been written */
	uint64_t head;
	uint8_t pad2[56];
	/* consumer's cache line: records [0, tail) have been read; written by the tracer */
	uint64_t tail;
	uint8_t pad3[56];
	uint64_t drops[CW_SHIM_LOSS_COUNT];
};

/*
 * A sampled user stack (frame-pointer walk in the shim): entry `stack_id %
 * stack_slots` of the stack area, which starts right after the data slots.
 * A record with CW_F_STACK_SAMPLED carries its stack's sequence number in
 * cw_call.stack_id; the reader checks `seq` (a later sample may have reused
 * the entry: the stack is then missing, the event is not).
 * ips[0] is the called CUDA function itself, then the return addresses.
 */
struct cw_shim_stack {
	uint32_t seq;
	uint32_t n;
	uint64_t ips[CW_SHIM_STACK_DEPTH];
};

struct cw_shim_proc_hdr {
	uint32_t magic;        /* CW_SHIM_PROC_MAGIC */
	uint32_t layout;
	uint32_t pid;
	uint32_t ppid;
	uint32_t ops;          /* entries in the shim's op table */
	uint32_t resolved;     /* how many of them resolved to a real function so far */
	uint32_t gpa_wrapped;  /* pointers handed out through cuGetProcAddress / cudaGetDriverEntryPoint wrapped */
	uint32_t gpa_unwrapped;/* probed names asked for there whose pointer we could not wrap */
	uint64_t drops[CW_SHIM_PLOSS_COUNT];
	uint64_t forked_from;  /* parent pid when this process was created by fork() under the shim */
	char exe[256];         /* /proc/self/exe at start (truncated) */
};

#endif /* CAUSEWAY_SHIM_RING_H */
