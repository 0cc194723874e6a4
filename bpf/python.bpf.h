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
 * Both loops run under bpf_loop (kernel >= 5.17).
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
 *            the C stack (owner == FRAME_OWNED_BY_CSTACK): skipped, and it
 *            marks the frame before it as an entry.
 *   3.13+    tstate->current_frame, f_executable, instr_ptr; shims as 3.12.
 * Not covered: free-threaded builds (different object layouts), threads of
 * more than CW_PY_MAX_INTERPS interpreters or CW_PY_MAX_THREADS threads
 * each, architectures other than x86-64 (thread_id match needs the fs base).
 */
#ifndef CAUSEWAY_PYTHON_BPF_H
#define CAUSEWAY_PYTHON_BPF_H

#include <bpf/bpf_core_read.h>
#include "maps.bpf.h"

#define CW_PY_MAX_INTERPS 4
#define CW_PY_MAX_THREADS 64
#define CW_PY_WALK_MAX 48   /* frames looked at (shims included) */
#define CW_PY_OWNED_BY_CSTACK 3

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
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

/*
 * Walk state, on the stack, handed to bpf_loop callbacks: the loops are
 * verified once as callbacks instead of unrolled into the entry program
 * (unrolled, the nested thread search and the frame walk exceed the
 * verifier's budget).
 */
struct cw_py_walk {
	struct cw_py_proc p;
	__u64 ident;   /* the thread's pthread_self() */
	__u64 interp;  /* interpreter being searched */
	__u64 ts;      /* thread state being looked at / found */
	__u64 found;
	__u64 f;       /* frame being walked */
	__u32 n;       /* frames recorded */
	__u32 flags;   /* CW_PYF_* */
};

/* One step of the search: next thread state of this interpreter, or the next interpreter. */
static long cw_py_find_step(__u32 i, void *arg)
{
	struct cw_py_walk *w = arg;
	if (!w->ts) {
		w->interp = w->interp ? cw_py_u64(w->interp + w->p.interp_next) : 0;
		if (!w->interp)
			return 1;
		w->ts = cw_py_u64(w->interp + w->p.interp_tstate_head);
		return 0;
	}
	if (cw_py_u64(w->ts + w->p.tstate_thread_id) == w->ident) {
		w->found = w->ts;
		return 1;
	}
	w->ts = cw_py_u64(w->ts + w->p.tstate_next);
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
	w->interp = cw_py_u64(w->p.runtime + w->p.runtime_interp_head);
	w->ts = w->interp ? cw_py_u64(w->interp + w->p.interp_tstate_head) : 0;
	w->found = 0;
	if (!w->interp)
		return 0;
	bpf_loop(CW_PY_MAX_INTERPS * (CW_PY_MAX_THREADS + 1), cw_py_find_step, w, 0);
	if (w->found)
		bpf_map_update_elem(&cw_py_tstates, &tid, &w->found, BPF_ANY);
	return w->found;
}

/* One frame of the chain, innermost first. */
static long cw_py_frame_step(__u32 i, void *arg)
{
	struct cw_py_walk *w = arg;
	__u32 zero = 0;
	if (!w->f)
		return 1;
	if (w->n >= CW_PY_MAX_FRAMES) {
		w->flags |= CW_PYF_TRUNCATED;
		return 1;
	}
	struct cw_pyframes *r = bpf_map_lookup_elem(&cw_py_scratch, &zero);
	if (!r)
		return 1;
	__u64 f = w->f;
	w->f = cw_py_u64(f + w->p.frame_back);
	__u64 code = cw_py_u64(f + w->p.frame_code);
	__u32 lasti = 0;
	bool entry = w->p.kind != CW_PY_KIND_INTERP_FRAME;
	if (!entry) {
		if (w->p.frame_owner != CW_PY_NONE && cw_py_u8(f + w->p.frame_owner) == CW_PY_OWNED_BY_CSTACK) {
			/* 3.12+ shim: the frame recorded before it began a C-level evaluation */
			if (w->n > 0)
				r->lasti[(w->n - 1) & (CW_PY_MAX_FRAMES - 1)] |= CW_PY_ENTRY;
			return 0;
		}
		__u64 instr = cw_py_u64(f + w->p.frame_instr);
		__u64 start = code + w->p.code_adaptive;
		lasti = instr >= start && instr - start < 0x7fffffff ? (__u32)(instr - start) : 0;
		if (w->p.frame_is_entry != CW_PY_NONE && cw_py_u8(f + w->p.frame_is_entry))
			entry = true;
	} else {
		__s32 li = 0;
		bpf_probe_read_user(&li, sizeof(li), (const void *)(f + w->p.frame_instr));
		lasti = li > 0 ? (__u32)li * 2 : 0;
	}
	__u32 k = w->n & (CW_PY_MAX_FRAMES - 1);
	r->code[k] = code;
	r->lasti[k] = lasti | (entry ? CW_PY_ENTRY : 0);
	w->n++;
	return 0;
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
	w.f = f;
	w.n = 0;
	w.flags = 0;
	bpf_loop(CW_PY_WALK_MAX, cw_py_frame_step, &w, 0);
	if (w.n == 0)
		return;
	struct cw_pyframes *r = bpf_map_lookup_elem(&cw_py_scratch, &zero);
	if (!r)
		return;
	cw_fill_hdr(&r->hdr, bpf_ktime_get_ns(), pid_tgid, CW_OP_PY_FRAMES, CW_SRC_PYTHON, w.flags);
	r->call_op = op;
	r->n = w.n;
	r->pad = 0;
	if (bpf_ringbuf_output(&rb_calls, r, sizeof(*r), BPF_RB_NO_WAKEUP)) {
		cw_count_loss(CW_LOSS_PY_FRAMES);
		return;
	}
	e->flags |= CW_F_PY_FRAMES;
}

#endif /* CAUSEWAY_PYTHON_BPF_H */
