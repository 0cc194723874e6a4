/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * calls.bpf.h: the uprobe/uretprobe pair shared by cuda.bpf.c (libcudart) and
 * driver.bpf.c (libcuda). One generic entry program and one generic return
 * program per object; the op code is the attach cookie (one uprobe_multi link
 * carries every symbol of a library, each with its op as cookie).
 *
 * An object defines, before using CW_DEFINE_CALL_PROGS:
 *   static __always_inline void cw_capture(struct pt_regs *ctx, __u32 op,
 *                                          struct cw_entry *e);
 * which fills e->a[] (and e->outp for ops whose result comes back through a
 * pointer) from the registers/stack at entry, as src/common/ops.ts documents
 * the a0..a3 slots. It may also define CW_AFTER_CALL(ctx, op, e, ret,
 * pid_tgid) to emit a side record (a kernel name) right before the call's own.
 *
 * The cookie is op | variant << CW_COOKIE_VARIANT_SHIFT: the `_ptds`/`_ptsz`
 * exports (and cuBLAS's `_64` ones) are the same op and come back flagged
 * CW_F_PTDS/CW_F_PTSZ (CW_F_ILP64). The
 * entry key keeps the whole cookie, so a plain export calling its variant (or
 * the reverse) would nest instead of clobbering one entry.
 *
 * Hot path (traced call): entry = 1 hash lookup (filter) + 1 hash update +
 * 1 task-storage get (in_call.bpf.h); return = 1 hash lookup + 1 task-storage
 * get + ringbuf reserve/submit (no wakeup) + 1 delete.
 * Untraced processes pay 1 lookup at entry and 2 at return.
 */
#ifndef CAUSEWAY_CALLS_BPF_H
#define CAUSEWAY_CALLS_BPF_H

#include "maps.bpf.h"
#include "in_call.bpf.h"

/* Entry state: keyed by (tid, op) so nested calls of different ops work
 * (cudaMemcpy calling into cudaMalloc internals, runtime over driver). */
struct cw_entry_key {
	__u32 tid;
	__u32 op;
};

struct cw_entry {
	__u64 ts;
	__u64 a[4];
	__u64 outp;      /* user pointer read at return into a[1] (allocations), 0 = none */
	__u64 aux;       /* per-op extra state for CW_AFTER_CALL (kernel name pointer) */
	__s32 stack_id;  /* -1 when no stack was taken */
	__u32 flags;     /* CW_F_STACK_SAMPLED */
	__u64 sp;        /* stack pointer at entry (CW_ALLOW_REENTRY) */
	__u32 nest;      /* re-entries of the same op on this thread still open (CW_ALLOW_REENTRY) */
	__u32 pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, struct cw_entry_key);
	__type(value, struct cw_entry);
} cw_entries SEC(".maps");

/* User stacks, sampled per op (cw_stack_every). Share it between objects
 * (shareMaps) so user space reads one map. No BPF_F_REUSE_STACKID: an id
 * already referenced by an emitted record is never rewritten; a hash
 * collision is counted as CW_LOSS_STACK instead. */
#define CW_STACK_DEPTH 127
struct {
	__uint(type, BPF_MAP_TYPE_STACK_TRACE);
	__uint(max_entries, 4096);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, CW_STACK_DEPTH * sizeof(__u64));
} cw_stacks SEC(".maps");

/* Per-CPU call counter per op, for "every Nth call" stack sampling. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, CW_OP_MAX);
	__type(key, __u32);
	__type(value, __u32);
} cw_stack_ctr SEC(".maps");

/* Per op: 0 = never take a stack, 1 = every call, N = every Nth call per CPU. */
const volatile __u32 cw_stack_every[CW_OP_MAX] = {};

#include "python.bpf.h"

/*
 * Filter. trace_all: record every process except Causeway itself and add it
 * to cw_traced on its first call (children followed), so host probes follow.
 */
static __always_inline bool cw_calls_want(__u32 tgid)
{
	if (tgid == cw_self_tgid)
		return false;
	if (bpf_map_lookup_elem(&cw_traced, &tgid))
		return true;
	if (!cw_trace_all)
		return false;
	__u32 v = CW_TRACE_ON | CW_TRACE_CHILDREN;
	if (!bpf_map_update_elem(&cw_traced, &tgid, &v, BPF_NOEXIST))
		cw_traced_bump();
	return true;
}

static __always_inline void cw_take_stack(struct pt_regs *ctx, __u32 op, struct cw_entry *e)
{
	__u32 every, idx = op & (CW_OP_MAX - 1);

	every = cw_stack_every[idx];
	if (every == 0)
		return;
	if (every > 1) {
		__u32 *n = bpf_map_lookup_elem(&cw_stack_ctr, &idx);
		if (!n)
			return;
		if (++*n < every)
			return;
		*n = 0;
	}
	long id = bpf_get_stackid(ctx, &cw_stacks, BPF_F_USER_STACK);
	if (id < 0) {
		cw_count_loss(CW_LOSS_STACK);
		return;
	}
	e->stack_id = id;
	e->flags |= CW_F_STACK_SAMPLED;
}

/* Reads the u64 at user address p, 0 when unreadable. */
static __always_inline __u64 cw_user_u64(__u64 p)
{
	__u64 v = 0;
	bpf_probe_read_user(&v, sizeof(v), (const void *)p);
	return v;
}

#ifndef CW_AFTER_CALL
#define CW_AFTER_CALL(ctx, op, e, ret, pid_tgid) do { } while (0)
#endif

#ifdef CW_ALLOW_REENTRY
static __always_inline bool cw_reentry(struct cw_entry_key *key, struct cw_entry *e)
{
	struct cw_entry *old = bpf_map_lookup_elem(&cw_entries, key);
	if (!old || old->sp <= e->sp || e->ts - old->ts > 1000000000ull)
		return false;
	old->nest++;
	return true;
}
/* an inner return of a re-entered op: uncount it, the outer return records the call */
#define CW_REENTRY_RETURN(e) ((e)->nest ? ((e)->nest--, true) : false)
#else
static __always_inline bool cw_reentry(struct cw_entry_key *key, struct cw_entry *e)
{
	return false;
}
#define CW_REENTRY_RETURN(e) false
#endif

#define CW_DEFINE_CALL_PROGS(entry_name, return_name, src)                         \
SEC("uprobe")                                                                      \
int entry_name(struct pt_regs *ctx)                                                \
{                                                                                  \
	__u64 pid_tgid = bpf_get_current_pid_tgid();                               \
	if (!cw_calls_want(pid_tgid >> 32))                                        \
		return 0;                                                          \
	__u32 cookie = (__u32)bpf_get_attach_cookie(ctx);                          \
	__u32 op = cookie & 0xffff;                                                \
	struct cw_entry_key key = { .tid = (__u32)pid_tgid, .op = cookie };        \
	struct cw_entry e = { .stack_id = -1 };                                    \
	cw_capture(ctx, op, &e);                                                   \
	cw_take_stack(ctx, op, &e);                                                \
	cw_py_sample(pid_tgid, op, &e); /* Python frames: python.bpf.h */          \
	e.ts = bpf_ktime_get_ns();                                                 \
	e.sp = PT_REGS_SP(ctx);                                                    \
	long err = bpf_map_update_elem(&cw_entries, &key, &e, BPF_NOEXIST);        \
	if (err == -17 /* EEXIST: previous call never returned */) {               \
		if (cw_reentry(&key, &e))                                          \
			return 0;                                                  \
		cw_count_loss(CW_LOSS_MISSED_RETURN);                              \
		err = bpf_map_update_elem(&cw_entries, &key, &e, BPF_EXIST);       \
	}                                                                          \
	if (err)                                                                   \
		cw_count_loss(CW_LOSS_ENTRY_MAP_FULL);                             \
	else                                                                       \
		cw_in_call_enter(op, e.sp); /* sched_switch reads it: in_call.bpf.h */ \
	return 0;                                                                  \
}                                                                                  \
                                                                                   \
SEC("uretprobe")                                                                   \
int return_name(struct pt_regs *ctx)                                               \
{                                                                                  \
	__u64 now = bpf_ktime_get_ns();                                            \
	__u64 pid_tgid = bpf_get_current_pid_tgid();                               \
	__u32 cookie = (__u32)bpf_get_attach_cookie(ctx);                          \
	__u32 op = cookie & 0xffff;                                                \
	struct cw_entry_key key = { .tid = (__u32)pid_tgid, .op = cookie };        \
	struct cw_entry *e = bpf_map_lookup_elem(&cw_entries, &key);               \
	if (!e) {                                                                  \
		/* untraced processes return here too: only count ours */          \
		if (cw_is_traced(pid_tgid >> 32))                                  \
			cw_count_loss(CW_LOSS_ORPHAN_RETURN);                      \
		return 0;                                                          \
	}                                                                          \
	if (CW_REENTRY_RETURN(e))                                                  \
		return 0;                                                          \
	cw_in_call_leave(PT_REGS_SP(ctx));                                         \
	__s32 ret = (__s32)PT_REGS_RC(ctx);                                        \
	CW_AFTER_CALL(ctx, op, e, ret, pid_tgid);                                  \
	struct cw_call *r = bpf_ringbuf_reserve(&rb_calls, sizeof(*r), 0);         \
	if (!r) {                                                                  \
		cw_count_loss(CW_LOSS_RB_CALLS);                                   \
		bpf_map_delete_elem(&cw_entries, &key);                            \
		return 0;                                                          \
	}                                                                          \
	__u32 flags = e->flags;                                                    \
	__u32 variant = cookie >> CW_COOKIE_VARIANT_SHIFT;                         \
	if (variant == CW_VARIANT_PTDS)                                            \
		flags |= CW_F_PTDS;                                                \
	else if (variant == CW_VARIANT_PTSZ)                                       \
		flags |= CW_F_PTSZ;                                                \
	else if (variant == CW_VARIANT_ILP64)                                      \
		flags |= CW_F_ILP64;                                               \
	if (ret != 0)                                                              \
		flags |= CW_F_ERROR;                                               \
	r->a[0] = e->a[0];                                                         \
	r->a[1] = e->a[1];                                                         \
	r->a[2] = e->a[2];                                                         \
	r->a[3] = e->a[3];                                                         \
	if (e->outp && ret == 0) {                                                 \
		__u64 v = 0;                                                       \
		if (bpf_probe_read_user(&v, sizeof(v), (const void *)e->outp))    \
			flags |= CW_F_OUT_READ_FAIL;                               \
		r->a[1] = v;                                                       \
	}                                                                          \
	cw_fill_hdr(&r->hdr, e->ts, pid_tgid, op, src, flags);                     \
	r->dur_ns = now - e->ts;                                                   \
	r->ret = ret;                                                              \
	r->stack_id = e->stack_id;                                                 \
	bpf_ringbuf_submit(r, BPF_RB_NO_WAKEUP);                                   \
	bpf_map_delete_elem(&cw_entries, &key);                                    \
	return 0;                                                                  \
}

#endif /* CAUSEWAY_CALLS_BPF_H */
