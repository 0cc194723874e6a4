/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * python.bpf.h: the Python frames of a sampled CUDA call, read from the
 * CPython interpreter's own structures (no restart, no external profiler).
 *
 * Called from the generic entry program (calls.bpf.h) after the native user
 * stack was taken, so it follows the same sampling. For a process user space
 * registered in cw_py_procs:
 *   1. find the calling thread's PyThreadState: ctypes (and every extension
 *      that releases the GIL around a foreign call) means the GIL holder is not
 *      the caller, so the thread list of each interpreter is walked from
 *      _PyRuntime and matched on thread_id (pthread_self(), which is the
 *      thread's fs base on x86-64); the result is cached per tid in an LRU and
 *      re-validated on every use (a dead thread's state can be reused);
 *   2. walk the frame chain, innermost first, up to CW_PY_MAX_FRAMES, and
 *      emit (code object, instruction byte offset) pairs in a struct
 *      cw_pyframes into rb_calls, before the call record it belongs to.
 * User space turns code objects into file, function and line (it reads the
 * process's memory while it lives) and merges them with the native frames.
 *
 * Versions (layouts in the cw_py_proc offsets):
 *   3.10     PyFrameObject: f_back, f_code, f_lasti (code units); every frame
 *            has its own _PyEval_EvalFrameDefault C frame.
 *   3.11     _PyInterpreterFrame via tstate->cframe->current_frame: f_code,
 *            previous, prev_instr; is_entry marks the first frame of a C-level
 *            evaluation.
 *   3.12     same chain; the C-level evaluation pushes a shim frame owned by
 *            the C stack (owner == FRAME_OWNED_BY_CSTACK): recorded with
 *            CW_PY_SHIM; user space drops it and marks the frame before it
 *            as an entry.
 *   3.13+    tstate->current_frame, f_executable, instr_ptr; shims as 3.12.
 * Not covered: free-threaded builds (different object layouts),
 * subinterpreters (only the newest interpreter's threads are searched: the
 * main one in a process without subinterpreters), a thread found beyond the
 * first CW_PY_MAX_THREADS thread states, more than CW_PY_MAX_FRAMES frames
 * (shims included; the record says truncated), architectures other than
 * x86-64 (the thread_id match needs the fs base).
 */
#ifndef CAUSEWAY_PYTHON_BPF_H
#define CAUSEWAY_PYTHON_BPF_H

#include <bpf/bpf_core_read.h>
#include "maps.bpf.h"

#define CW_PY_MAX_THREADS 64
#define CW_PY_OWNED_BY_CSTACK 3

/* LRU: entries of exited processes are not deleted, they age out (1024 most recent Python processes) */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 1024);
	__type(key, __u32);                /* tgid */
	__type(value, struct cw_py_proc);
} cw_py_procs SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u32);                /* tid */
	__type(value, __u64);              /* PyThreadState * */
} cw_py_tstates SEC(".maps");

static __always_inline __u64 cw_py_u64(__u64 p)
{
	__u64 v = 0;
	bpf_probe_read_user(&v, sizeof(v), (const void *)p);
	return v;
}

static __always_inline __u8 cw_py_u8(__u64 p)
{
	__u8 v = 0;
	bpf_probe_read_user(&v, sizeof(v), (const void *)p);
	return v;
}

static __always_inline __u64 cw_py_thread_ident(void)
{
#if defined(__TARGET_ARCH_x86)
	struct task_struct *t = (struct task_struct *)bpf_get_current_task();
	return BPF_CORE_READ(t, thread.fsbase);
#else
	return 0;
#endif
}

/* The record is assembled here, then copied into rb_calls in one bpf_ringbuf_output. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct cw_pyframes);
} cw_py_scratch SEC(".maps");

/* Walk state, on the entry program's stack. */
struct cw_py_walk {
	struct cw_py_proc p;
	__u64 ident;   /* the thread's pthread_self() */
	__u64 f;       /* innermost frame */
	__u32 flags;   /* CW_PYF_* */
	__u32 pad;
};

/*
 * Verifier budget: plain bounded loops in static __noinline subprograms (no
 * bpf_loop: its callbacks need BTF func_info, which the classic-uprobe twin
 * loaded from raw instructions does not have). The subprograms return unknown
 * scalars, so the caller is verified once whatever path they took, and the
 * frame loop keeps no per-path state: slot i holds the i-th frame looked at,
 * shims included (flagged CW_PY_SHIM), so both branches of every test inside
 * an iteration end in equivalent states.
 */

/* The PyThreadState of the thread whose pthread_self() is w->ident in list `ts`, or 0. */
static __noinline __u64 cw_py_find_thread(struct cw_py_walk *w, __u64 ts)
{
	for (int j = 0; j < CW_PY_MAX_THREADS; j++) {
		if (!ts)
			return 0;
		if (cw_py_u64(ts + w->p.tstate_thread_id) == w->ident)
			return ts;
		ts = cw_py_u64(ts + w->p.tstate_next);
	}
	return 0;
}

/* The calling thread's PyThreadState, 0 when it has none (a thread that never ran Python). */
static __always_inline __u64 cw_py_tstate(struct cw_py_walk *w, __u32 tid)
{
	w->ident = cw_py_thread_ident();
	if (!w->ident)
		return 0;
	__u64 *cached = bpf_map_lookup_elem(&cw_py_tstates, &tid);
	if (cached && *cached && cw_py_u64(*cached + w->p.tstate_thread_id) == w->ident)
		return *cached;
	/* interpreters.head: the newest interpreter, the main one in a process without subinterpreters */
	__u64 interp = cw_py_u64(w->p.runtime + w->p.runtime_interp_head);
	if (!interp)
		return 0;
	__u64 ts = cw_py_find_thread(w, cw_py_u64(interp + w->p.interp_tstate_head));
	if (ts)
		bpf_map_update_elem(&cw_py_tstates, &tid, &ts, BPF_ANY);
	return ts;
}

/* Fills r->code/lasti from w->f outwards; returns the slots used. */
static __noinline __u32 cw_py_walk_frames(struct cw_py_walk *w, struct cw_pyframes *r)
{
	__u64 f = w->f;
	bool interp = w->p.kind == CW_PY_KIND_INTERP_FRAME;
	int i;
	for (i = 0; i < CW_PY_MAX_FRAMES; i++) {
		if (!f)
			break;
		__u64 code = cw_py_u64(f + w->p.frame_code);
		__u32 lasti = 0;
		if (interp) {
			__u64 instr = cw_py_u64(f + w->p.frame_instr);
			__u64 start = code + w->p.code_adaptive;
			if (instr >= start && instr - start < CW_PY_SHIM)
				lasti = (__u32)(instr - start);
			if (w->p.frame_owner != CW_PY_NONE && cw_py_u8(f + w->p.frame_owner) == CW_PY_OWNED_BY_CSTACK)
				lasti |= CW_PY_SHIM; /* 3.12+: marks the frame before it as an entry */
			if (w->p.frame_is_entry != CW_PY_NONE && cw_py_u8(f + w->p.frame_is_entry))
				lasti |= CW_PY_ENTRY; /* 3.11 */
		} else {
			__s32 li = 0;
			bpf_probe_read_user(&li, sizeof(li), (const void *)(f + w->p.frame_instr));
			lasti = (li > 0 && li < 0x10000000 ? (__u32)li * 2 : 0) | CW_PY_ENTRY; /* 3.10: one C evaluation per frame */
		}
		r->code[i & (CW_PY_MAX_FRAMES - 1)] = code;
		r->lasti[i & (CW_PY_MAX_FRAMES - 1)] = lasti;
		f = cw_py_u64(f + w->p.frame_back);
	}
	if (f)
		w->flags |= CW_PYF_TRUNCATED;
	return i;
}

static __always_inline void cw_py_sample(__u64 pid_tgid, __u32 op, struct cw_entry *e)
{
	if (!(e->flags & CW_F_STACK_SAMPLED))
		return;
	__u32 tgid = pid_tgid >> 32, zero = 0;
	const struct cw_py_proc *p = bpf_map_lookup_elem(&cw_py_procs, &tgid);
	if (!p)
		return;
	struct cw_py_walk w = { .p = *p };
	__u64 ts = cw_py_tstate(&w, (__u32)pid_tgid);
	if (!ts)
		return;
	__u64 f = cw_py_u64(ts + w.p.tstate_frame);
	if (f && w.p.cframe_current != CW_PY_NONE)
		f = cw_py_u64(f + w.p.cframe_current);
	if (!f)
		return;
	struct cw_pyframes *r = bpf_map_lookup_elem(&cw_py_scratch, &zero);
	if (!r)
		return;
	w.f = f;
	w.flags = 0;
	__u32 n = cw_py_walk_frames(&w, r);
	if (n == 0)
		return;
	cw_fill_hdr(&r->hdr, bpf_ktime_get_ns(), pid_tgid, CW_OP_PY_FRAMES, CW_SRC_PYTHON, w.flags);
	r->call_op = op;
	r->n = n;
	r->pad = 0;
	if (bpf_ringbuf_output(&rb_calls, r, sizeof(*r), BPF_RB_NO_WAKEUP)) {
		cw_count_loss(CW_LOSS_PY_FRAMES);
		return;
	}
	e->flags |= CW_F_PY_FRAMES;
}

#endif /* CAUSEWAY_PYTHON_BPF_H */
