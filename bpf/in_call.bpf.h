/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * in_call.bpf.h: whether a thread is inside a probed call right now, kept by
 * the call probes (calls.bpf.h) and read by sched_switch (host.bpf.c) when the
 * thread goes off-CPU, so every off-CPU record says whether it was time lost
 * inside a CUDA (NCCL, cuBLAS, NVTX) call and inside which one (cw_offcpu.call_op).
 *
 * Task-local storage, not a hash keyed by tid: the call probes' own entry map
 * is keyed by (tid, op), which sched_switch cannot look up without knowing
 * the op, and a second tid hash would add two hash operations to every call.
 * Task storage hangs off the task_struct (no hashing; freed with the thread,
 * so a reused tid never inherits a stale state). Shared between the call
 * objects and host.bpf.o like the rings (src/probe/cuda.ts SHARED_MAPS,
 * src/probe/host.ts).
 *
 * Why here and not in the writer (a summary like thread_gaps, issue #12): an
 * off-CPU interval reaches user space in rb_host when the thread runs again,
 * the call enclosing it in rb_calls when that call returns, possibly seconds
 * later (a long sync) and after the driver calls nested in it; matching them in
 * the writer needs per-thread history of unbounded length or a cut-off that
 * misfiles long calls. At switch-out the kernel knows the answer exactly, for
 * one task-storage get per call entry and return, and the question becomes a
 * plain pass over the off-CPU rows (~0.1 s of CPU on 1M events, against
 * 1.5-1.8 s for the window over every call that SQL needed before).
 *
 * Missed returns (longjmp out of a call, a thread unwinding) would leave the
 * depth stuck above zero, so the stack pointer decides as well: a call whose
 * entry sp is above the outermost open call's (stack grows down: it cannot
 * be nested in it) starts afresh, and the return of the outermost call (its
 * uretprobe sees sp = entry sp + 8, past the return address) ends every
 * call nested in it. A tail call into another probed function (same entry
 * sp) nests; a call made on a signal alternate stack may reset the state.
 */
#ifndef CAUSEWAY_IN_CALL_BPF_H
#define CAUSEWAY_IN_CALL_BPF_H

struct cw_in_call {
	__u64 sp;     /* stack pointer at the outermost open call's entry */
	__u32 depth;  /* probed calls open on this thread */
	__u32 op;     /* op of the outermost one (enum cw_op) */
};

struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct cw_in_call);
} cw_in_call SEC(".maps");

/* entry of a call whose entry state was stored (calls.bpf.h) */
static __always_inline void cw_in_call_enter(__u32 op, __u64 sp)
{
	struct cw_in_call *c = bpf_task_storage_get(&cw_in_call, bpf_get_current_task_btf(), 0,
						    BPF_LOCAL_STORAGE_GET_F_CREATE);

	if (!c)
		return; /* out of memory: this thread's off-CPU intervals read as outside calls until its next call */
	if (c->depth && sp > c->sp)
		c->depth = 0; /* the open calls' returns were missed */
	if (c->depth++ == 0) {
		c->op = op;
		c->sp = sp;
	}
}

/* return of a call whose entry was counted by cw_in_call_enter */
static __always_inline void cw_in_call_leave(__u64 sp)
{
	struct cw_in_call *c = bpf_task_storage_get(&cw_in_call, bpf_get_current_task_btf(), 0, 0);

	if (!c || !c->depth)
		return;
	if (sp > c->sp)
		c->depth = 0; /* the outermost call returned */
	else
		c->depth--;
}

/* The op of the outermost probed call `t` is inside, 0 when none (sched_switch: t = prev). */
static __always_inline __u32 cw_in_call_op(struct task_struct *t)
{
	struct cw_in_call *c = bpf_task_storage_get(&cw_in_call, t, 0, 0);

	return c && c->depth ? c->op : 0;
}

#endif /* CAUSEWAY_IN_CALL_BPF_H */
