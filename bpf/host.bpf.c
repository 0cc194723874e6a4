// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * host.bpf.c: host context for traced processes.
 *
 *   off-CPU intervals   tp_btf sched_switch + sched_waking + sched_wakeup_new -> struct cw_offcpu (rb_host),
 *                       each saying which probed call it fell in (cw_in_call, shared with the call probes)
 *   lifecycle           tp_btf sched_process_fork / exit                  -> struct cw_proc   (rb_life)
 *                       tp_btf sched_process_exec: path + new argv        -> struct cw_exec   (rb_life, variable length)
 *   OOM kills           tp_btf mark_victim (every victim, traced or not)  -> struct cw_proc   (rb_life)
 *   page allocations    tp_btf mm_page_alloc, windows per tgid            -> struct cw_mem    (rb_host)
 *
 * Everything is tp_btf: a classic tracepoint link costs 60-76 ms to destroy
 * on this kernel, a tp_btf link 0.1 ms (GUIDE §8).
 *
 * Noise about untraced tasks (their switches, their page allocations) is only
 * counted in the per-CPU array cw_host_stats (enum cw_host_stat). Causeway's
 * own tgid (cw_self_tgid) is never traced: its switches are counted apart.
 *
 * Records are submitted with BPF_RB_NO_WAKEUP: user space drains on a timer.
 * A consumer woken per record would itself generate switches (GUIDE §8).
 * The exceptions are a traced process's fork and exec (BPF_RB_FORCE_WAKEUP on
 * rb_life, which user space watches on its event loop): it reads the new
 * process's /proc while the process lives (short-lived children included).
 * Untraced processes never reach a submit, so they wake nothing.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "maps.bpf.h"
#include "in_call.bpf.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* include/linux/sched.h; macros, so not in vmlinux.h */
#define TASK_RUNNING 0x0000
#define TASK_INTERRUPTIBLE 0x0001
#define TASK_UNINTERRUPTIBLE 0x0002
#define TASK_DEAD 0x0080

/*
 * Intervals shorter than this are counted (CW_HS_OFFCPU_SHORT/_SHORT_NS and
 * the histogram) but not emitted. 10 us: a switch-out/switch-in pair plus the
 * wakeup path already costs a few microseconds here, so a shorter interval
 * cannot explain a visible part of any call's latency, while a thread in a
 * futex ping-pong can produce 100k of them per second. The aggregate keeps
 * their total, so nothing disappears from the accounting.
 */
const volatile __u64 cw_min_offcpu_ns = 10000;
/* Page-allocation window per tgid (100 ms). */
const volatile __u64 cw_page_window_ns = 100000000;
/*
 * The traced processes' calls are recorded by the in-process shim (--in-process),
 * not by the call probes: cw_in_call says nothing about them, so off-CPU records
 * carry CW_OFFCPU_CALL_UNKNOWN instead of a wrong "outside any call".
 */
const volatile bool cw_calls_in_process = false;

/*
 * Off-CPU state of one traced thread, keyed by tid: open (ts != 0) from its switch-out to its switch-in, then
 * closed (ts == 0) until the next switch-out; deleted when the thread exits or its tid is reused.
 */
struct offcpu_start {
	__u64 ts;
	__u64 wake_ts;      /* when it was woken (0: not yet, or preempted) */
	__u32 reason;
	__u16 cpu;
	__u16 call_op;      /* cw_offcpu.call_op, read at switch-out */
	__u32 by_tgid;
	__u32 by_tid;
	__u32 waker_tgid;
	__u32 waker_tid;
	char by_comm[CW_COMM_LEN];
	char waker_comm[CW_COMM_LEN];
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, __u32);
	__type(value, struct offcpu_start);
} cw_offcpu_start SEC(".maps");

#include "host_stats.bpf.h"

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, CW_OFFCPU_HIST_SLOTS);
	__type(key, __u32);
	__type(value, __u64);
} cw_offcpu_hist SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, struct cw_page_win);
} cw_page_win SEC(".maps");

static __always_inline __u32 log2_u64(__u64 v)
{
	__u32 r = 0;
	/* bounded loop, unrolled: 6 steps of binary search */
	if (v >> 32) { v >>= 32; r += 32; }
	if (v >> 16) { v >>= 16; r += 16; }
	if (v >> 8) { v >>= 8; r += 8; }
	if (v >> 4) { v >>= 4; r += 4; }
	if (v >> 2) { v >>= 2; r += 2; }
	if (v >> 1) { r += 1; }
	return r;
}

static __always_inline __u64 task_pid_tgid(struct task_struct *t)
{
	return ((__u64)BPF_CORE_READ(t, tgid) << 32) | (__u32)BPF_CORE_READ(t, pid);
}

/* ---------------------------------------------------------------- off-CPU */

static __always_inline __u32 offcpu_reason(bool preempt, unsigned int state)
{
	/*
	 * prev_state is the raw __state read in __schedule (>= 5.18 passes it to
	 * the tracepoint). A preempted task keeps its state but stays runnable.
	 */
	if (preempt || state == TASK_RUNNING)
		return CW_OFFCPU_PREEMPTED;
	if (state & TASK_INTERRUPTIBLE)
		return CW_OFFCPU_VOLUNTARY;
	if (state & TASK_UNINTERRUPTIBLE) /* includes TASK_IDLE */
		return CW_OFFCPU_IO_WAIT;
	return CW_OFFCPU_OTHER;
}

static __always_inline void switch_out(bool preempt, struct task_struct *prev, struct task_struct *next,
				       unsigned int prev_state, __u64 now)
{
	struct offcpu_start st = {}, *old;
	__u32 tid = prev->pid;

	if (prev_state & TASK_DEAD)
		return; /* final switch of an exiting thread: it never comes back */
	st.ts = now;
	st.reason = offcpu_reason(preempt, prev_state);
	st.cpu = bpf_get_smp_processor_id();
	/* a thread cannot leave a call while it is off-CPU: the state at switch-out holds for the whole interval */
	st.call_op = cw_calls_in_process ? CW_OFFCPU_CALL_UNKNOWN : cw_in_call_op(prev);
	st.by_tgid = next->tgid; /* sched_switch names tids: the tgid comes from the task */
	st.by_tid = next->pid;
	bpf_probe_read_kernel_str(st.by_comm, sizeof(st.by_comm), next->comm);
	/* still open: the switch-in that should have closed it was never seen, and that interval is lost */
	old = bpf_map_lookup_elem(&cw_offcpu_start, &tid);
	if (old && old->ts)
		cw_count_loss(CW_LOSS_OFFCPU_UNPAIRED);
	if (bpf_map_update_elem(&cw_offcpu_start, &tid, &st, BPF_ANY))
		cw_count_loss(CW_LOSS_SCHED_MAP_FULL);
}

static __always_inline void emit_offcpu(struct task_struct *next, struct offcpu_start *st, __u64 from, __u64 dur,
					__u32 reason, __u32 by_tgid, __u32 by_tid, const char *by_comm, bool waker)
{
	struct cw_offcpu *e = bpf_ringbuf_reserve(&rb_host, sizeof(*e), 0);

	if (!e) {
		cw_count_loss(CW_LOSS_RB_HOST);
		return;
	}
	cw_fill_hdr(&e->hdr, from, task_pid_tgid(next), CW_OP_OFF_CPU, CW_SRC_SCHED, 0);
	e->dur_ns = dur;
	e->reason = reason;
	e->cpu = st->cpu;
	e->call_op = st->call_op;
	e->by_tgid = by_tgid;
	e->by_tid = by_tid;
	e->waker_tgid = waker ? st->waker_tgid : 0;
	e->waker_tid = waker ? st->waker_tid : 0;
	bpf_probe_read_kernel(e->by_comm, CW_COMM_LEN, by_comm);
	if (waker)
		__builtin_memcpy(e->waker_comm, st->waker_comm, CW_COMM_LEN);
	else
		__builtin_memset(e->waker_comm, 0, CW_COMM_LEN);
	bpf_ringbuf_submit(e, BPF_RB_NO_WAKEUP);
	stat_add(CW_HS_OFFCPU_EMITTED, 1);
}

/*
 * A sleep ends in two parts: asleep until the wakeup, then runnable but
 * waiting for the CPU until switch-in. The second part is CPU contention (the
 * task that held the CPU, `prev` here, is who kept it waiting), so when it is
 * long enough to matter it is emitted as its own interval with reason
 * PREEMPTED; the sleep keeps its reason and waker.
 */
static __always_inline void switch_in(struct task_struct *prev, struct task_struct *next, __u64 now)
{
	__u32 tid = next->pid;
	struct offcpu_start *st;
	__u64 dur, *slot, runq = 0;
	__u32 b;

	st = bpf_map_lookup_elem(&cw_offcpu_start, &tid);
	if (!st)
		return; /* first switch-in since it became traced */
	if (!st->ts) {
		/* closed: this thread's switch-out was never seen (the interval it began is lost) */
		cw_count_loss(CW_LOSS_OFFCPU_UNPAIRED);
		return;
	}
	dur = now - st->ts;
	b = log2_u64(dur);
	slot = bpf_map_lookup_elem(&cw_offcpu_hist, &b);
	if (slot)
		*slot += 1;
	if (dur < cw_min_offcpu_ns) {
		stat_add(CW_HS_OFFCPU_SHORT, 1);
		stat_add(CW_HS_OFFCPU_SHORT_NS, dur);
		goto out;
	}
	if (st->reason != CW_OFFCPU_PREEMPTED && st->wake_ts > st->ts && st->wake_ts < now && now - st->wake_ts >= cw_min_offcpu_ns)
		runq = now - st->wake_ts;
	if (runq) {
		emit_offcpu(next, st, st->ts, dur - runq, st->reason, st->by_tgid, st->by_tid, st->by_comm, true);
		emit_offcpu(next, st, st->wake_ts, runq, CW_OFFCPU_PREEMPTED, prev->tgid, prev->pid, prev->comm, false);
	} else
		emit_offcpu(next, st, st->ts, dur, st->reason, st->by_tgid, st->by_tid, st->by_comm, true);
out:
	/*
	 * Closed, not deleted: the entry stays with the thread (sched_process_exit deletes it), so a missed switch on
	 * either side is seen and counted (CW_LOSS_OFFCPU_UNPAIRED) instead of silently dropping an interval.
	 */
	st->ts = 0;
	st->wake_ts = 0;
}

SEC("tp_btf/sched_switch")
int BPF_PROG(cw_sched_switch, bool preempt, struct task_struct *prev, struct task_struct *next,
	     unsigned int prev_state)
{
	__u32 prev_tgid = prev->tgid, next_tgid = next->tgid;
	bool prev_traced, next_traced;
	__u64 now;

	stat_add(CW_HS_SWITCHES, 1);
	if (cw_self_tgid && (prev_tgid == cw_self_tgid || next_tgid == cw_self_tgid))
		stat_add(CW_HS_SWITCHES_SELF, 1);
	/* not the memo: prev and next are two tgids, which would evict each other's entry (measured dearer) */
	prev_traced = cw_is_traced(prev_tgid);
	next_traced = cw_is_traced(next_tgid);
	if (!prev_traced && !next_traced) {
		stat_add(CW_HS_SWITCHES_UNTRACED, 1);
		return 0;
	}
	now = bpf_ktime_get_ns();
	if (prev_traced)
		switch_out(preempt, prev, next, prev_state, now);
	if (next_traced)
		switch_in(prev, next, now);
	return 0;
}

/*
 * Interrupt context of each CPU, kept by the irq/softirq/hrtimer entry and
 * exit tracepoints (a bit per context, so a hardirq inside a softirq restores
 * it on exit). The per-CPU preempt count would say the same, but its symbol
 * (`__preempt_count`, or `pcpu_hot` on 6.2-6.14) is not in kallsyms here, so
 * a ksym cannot be resolved; these tracepoints are cheap (per-CPU array).
 */
#define CW_CTX_HARDIRQ 1u
#define CW_CTX_SOFTIRQ 2u
#define CW_CTX_TIMER 4u

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} cw_irq_ctx SEC(".maps");

static __always_inline void irq_ctx_set(__u32 bit, bool on)
{
	__u32 k = 0, *v = bpf_map_lookup_elem(&cw_irq_ctx, &k);

	if (!v)
		return;
	if (on)
		*v |= bit;
	else
		*v &= ~bit;
}

SEC("tp_btf/irq_handler_entry")
int BPF_PROG(cw_irq_entry) { irq_ctx_set(CW_CTX_HARDIRQ, true); return 0; }
SEC("tp_btf/irq_handler_exit")
int BPF_PROG(cw_irq_exit) { irq_ctx_set(CW_CTX_HARDIRQ, false); return 0; }
SEC("tp_btf/softirq_entry")
int BPF_PROG(cw_softirq_entry) { irq_ctx_set(CW_CTX_SOFTIRQ, true); return 0; }
SEC("tp_btf/softirq_exit")
int BPF_PROG(cw_softirq_exit) { irq_ctx_set(CW_CTX_SOFTIRQ, false); return 0; }
SEC("tp_btf/hrtimer_expire_entry")
int BPF_PROG(cw_hrtimer_entry) { irq_ctx_set(CW_CTX_TIMER, true); return 0; }
SEC("tp_btf/hrtimer_expire_exit")
int BPF_PROG(cw_hrtimer_exit) { irq_ctx_set(CW_CTX_TIMER, false); return 0; }

static __always_inline __u32 waker_context(void)
{
	__u32 k = 0, *v = bpf_map_lookup_elem(&cw_irq_ctx, &k);

	if (!v || !*v)
		return 0;
	if (*v & CW_CTX_TIMER) /* innermost first: a timer callback runs inside the hardirq */
		return CW_WAKER_TIMER;
	if (*v & CW_CTX_HARDIRQ)
		return CW_WAKER_HARDIRQ;
	return CW_WAKER_SOFTIRQ;
}

/*
 * sched_waking runs in the waker's context (try_to_wake_up, before any
 * cross-CPU queueing); sched_wakeup can run on the wakee's CPU from an IPI,
 * where `current` is not the waker. So the waker is taken here.
 */
SEC("tp_btf/sched_waking")
int BPF_PROG(cw_sched_waking, struct task_struct *p)
{
	__u32 tid = p->pid;
	struct offcpu_start *st;
	__u32 ctx_marker;
	__u64 id;

	st = bpf_map_lookup_elem(&cw_offcpu_start, &tid);
	if (!st || !st->ts || st->wake_ts)
		return 0;
	st->wake_ts = bpf_ktime_get_ns();
	ctx_marker = waker_context();
	if (ctx_marker) {
		/* an interrupt woke it: `current` is a bystander */
		st->waker_tgid = ctx_marker;
		st->waker_tid = 0;
		__builtin_memset(st->waker_comm, 0, sizeof(st->waker_comm));
	} else {
		id = bpf_get_current_pid_tgid();
		st->waker_tgid = id >> 32;
		st->waker_tid = (__u32)id;
		bpf_get_current_comm(st->waker_comm, sizeof(st->waker_comm));
	}
	stat_add(CW_HS_WAKEUPS_TRACED, 1);
	return 0;
}

/* A new thread of a traced process: drop any stale interval of a reused tid. */
SEC("tp_btf/sched_wakeup_new")
int BPF_PROG(cw_sched_wakeup_new, struct task_struct *p)
{
	__u32 tid = p->pid;

	if (cw_is_traced_memo(p->tgid))
		bpf_map_delete_elem(&cw_offcpu_start, &tid);
	return 0;
}

/* -------------------------------------------------------------- lifecycle */

static __always_inline struct cw_proc *proc_reserve(void)
{
	struct cw_proc *e = bpf_ringbuf_reserve(&rb_life, sizeof(struct cw_proc), 0);
	if (!e)
		cw_count_loss(CW_LOSS_RB_LIFE);
	return e;
}

SEC("tp_btf/sched_process_fork")
int BPF_PROG(cw_sched_process_fork, struct task_struct *parent, struct task_struct *child)
{
	__u32 ptgid = parent->tgid, ctgid = child->tgid, ctid = child->pid;
	__u32 *flags, inherit;
	bool is_thread = ptgid == ctgid;
	struct cw_proc *e;

	if (ptgid == cw_self_tgid || cw_memo_untraced(ptgid))
		return 0;
	flags = bpf_map_lookup_elem(&cw_traced, &ptgid);
	if (!flags)
		return 0;
	inherit = *flags;
	if (!is_thread && (inherit & CW_TRACE_CHILDREN)) {
		if (!bpf_map_update_elem(&cw_traced, &ctgid, &inherit, BPF_NOEXIST))
			cw_traced_bump();
		else if (!bpf_map_lookup_elem(&cw_traced, &ctgid))
			cw_count_loss(CW_LOSS_HOST_MAP_FULL);
	}
	e = proc_reserve();
	if (!e)
		return 0;
	__builtin_memset(e, 0, sizeof(*e));
	cw_fill_hdr(&e->hdr, bpf_ktime_get_ns(), task_pid_tgid(parent), CW_OP_FORK, CW_SRC_PROC, 0);
	e->ppid = ptgid;
	e->child_tgid = is_thread ? ctid : ctgid;
	e->is_thread = is_thread;
	bpf_probe_read_kernel_str(e->comm, sizeof(e->comm), child->comm);
	/* a new process: user space reads its /proc while it lives; a new thread can wait for the drain timer */
	bpf_ringbuf_submit(e, is_thread ? BPF_RB_NO_WAKEUP : BPF_RB_FORCE_WAKEUP);
	return 0;
}

/*
 * One struct cw_exec per CPU to build the record in: it is 5 KiB, too big
 * for the 512-byte BPF stack, and reserving that much in rb_life for every
 * exec would cut the ring to ~50 execs; bpf_ringbuf_output copies only the
 * bytes used (the execsnoop pattern).
 */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct cw_exec);
} cw_exec_buf SEC(".maps");

SEC("tp_btf/sched_process_exec")
int BPF_PROG(cw_sched_process_exec, struct task_struct *p, pid_t old_pid, struct linux_binprm *bprm)
{
	__u32 zero = 0, flags = 0;
	const char *fname;
	unsigned long astart, aend;
	struct cw_exec *e;
	__u64 plen, alen;
	long n;
	char last = 0;

	if (!cw_is_traced_memo(p->tgid))
		return 0;
	e = bpf_map_lookup_elem(&cw_exec_buf, &zero);
	if (!e)
		return 0;
	cw_fill_hdr(&e->hdr, bpf_ktime_get_ns(), task_pid_tgid(p), CW_OP_EXEC, CW_SRC_PROC, 0);
	e->ppid = BPF_CORE_READ(p, real_parent, tgid);
	__builtin_memset(e->comm, 0, sizeof(e->comm));
	bpf_probe_read_kernel_str(e->comm, sizeof(e->comm), p->comm);

	/* the path, NUL included; a full buffer is a cut when the byte at the cap is not the NUL */
	fname = BPF_CORE_READ(bprm, filename);
	n = bpf_probe_read_kernel_str(e->data, CW_EXEC_PATH_LEN, fname);
	if (n <= 0) {
		e->data[0] = 0;
		n = 1;
	} else if (n == CW_EXEC_PATH_LEN) {
		bpf_probe_read_kernel(&last, 1, fname + CW_EXEC_PATH_LEN - 1);
		if (last)
			flags |= CW_EXECF_PATH_TRUNCATED;
	}
	plen = n;
	if (plen > CW_EXEC_PATH_LEN) /* cannot happen; bounds the offset for the verifier */
		plen = CW_EXEC_PATH_LEN;

	/* argv of the new image: this runs in the exec'ing task after the new mm is installed */
	astart = BPF_CORE_READ(p, mm, arg_start);
	aend = BPF_CORE_READ(p, mm, arg_end);
	alen = aend > astart ? aend - astart : 0;
	if (alen > CW_EXEC_ARGS_LEN) {
		alen = CW_EXEC_ARGS_LEN;
		flags |= CW_EXECF_ARGS_TRUNCATED;
	}
	if (alen && bpf_probe_read_user(e->data + plen, alen, (const void *)astart)) {
		alen = 0; /* unreadable: user space keeps the command line it read from /proc */
		flags &= ~CW_EXECF_ARGS_TRUNCATED;
	}
	e->path_len = plen;
	e->args_len = alen;
	e->hdr.flags = flags;
	if (bpf_ringbuf_output(&rb_life, e, offsetof(struct cw_exec, data) + plen + alen, BPF_RB_FORCE_WAKEUP))
		cw_count_loss(CW_LOSS_RB_LIFE);
	return 0;
}

/* Close the tgid's open page window early (process exit). */
static __always_inline void page_win_flush(__u32 tgid, __u32 tid, __u64 now);

SEC("tp_btf/sched_process_exit")
int BPF_PROG(cw_sched_process_exit, struct task_struct *p, bool group_dead)
{
	__u32 tgid = p->tgid, tid = p->pid;
	struct cw_proc *e;
	int code;

	if (!cw_is_traced_memo(tgid))
		return 0;
	bpf_map_delete_elem(&cw_offcpu_start, &tid);
	if (!group_dead)
		return 0; /* a thread ended; the process lives on */
	page_win_flush(tgid, tid, bpf_ktime_get_ns());
	bpf_map_delete_elem(&cw_traced, &tgid);
	e = proc_reserve();
	if (!e)
		return 0;
	__builtin_memset(e, 0, sizeof(*e));
	code = BPF_CORE_READ(p, exit_code);
	cw_fill_hdr(&e->hdr, bpf_ktime_get_ns(), task_pid_tgid(p), CW_OP_EXIT, CW_SRC_PROC,
		    (code & 0x7f) ? CW_F_SIGNALED : 0);
	e->exit_code = (code & 0x7f) ? (code & 0x7f) : ((code >> 8) & 0xff);
	e->ppid = BPF_CORE_READ(p, real_parent, tgid);
	e->child_tgid = 0;
	bpf_probe_read_kernel_str(e->comm, sizeof(e->comm), p->comm);
	bpf_ringbuf_submit(e, BPF_RB_NO_WAKEUP);
	return 0;
}

/* Every OOM victim is reported, traced or not: hdr and child_tgid = victim. */
SEC("tp_btf/mark_victim")
int BPF_PROG(cw_mark_victim, struct task_struct *victim)
{
	struct cw_proc *e = proc_reserve();

	if (!e)
		return 0;
	__builtin_memset(e, 0, sizeof(*e));
	cw_fill_hdr(&e->hdr, bpf_ktime_get_ns(), task_pid_tgid(victim), CW_OP_OOM_KILL, CW_SRC_PROC, 0);
	e->child_tgid = victim->tgid;
	e->ppid = BPF_CORE_READ(victim, real_parent, tgid);
	bpf_probe_read_kernel_str(e->comm, sizeof(e->comm), victim->comm);
	bpf_ringbuf_submit(e, BPF_RB_NO_WAKEUP);
	return 0;
}

/* ------------------------------------------------------ page allocations */

static __always_inline void page_emit(__u32 tgid, __u32 tid, struct cw_page_win *w, __u32 flags)
{
	struct cw_mem *e = bpf_ringbuf_reserve(&rb_host, sizeof(*e), 0);

	if (!e) {
		cw_count_loss(CW_LOSS_RB_HOST);
		return;
	}
	cw_fill_hdr(&e->hdr, w->start_ns, ((__u64)tgid << 32) | tid, CW_OP_PAGE_ALLOC, CW_SRC_MEM, flags);
	e->window_ns = cw_page_window_ns;
	e->pages = w->pages;
	bpf_ringbuf_submit(e, BPF_RB_NO_WAKEUP);
}

static __always_inline void page_win_flush(__u32 tgid, __u32 tid, __u64 now)
{
	struct cw_page_win *w = bpf_map_lookup_elem(&cw_page_win, &tgid);

	if (!w)
		return;
	if (w->pages)
		page_emit(tgid, tid, w, CW_F_FLUSHED);
	bpf_map_delete_elem(&cw_page_win, &tgid);
}

SEC("tp_btf/mm_page_alloc")
int BPF_PROG(cw_mm_page_alloc, struct page *page, unsigned int order)
{
	__u64 id = bpf_get_current_pid_tgid(), now, pages = 1ULL << (order & 31);
	__u32 tgid = id >> 32;
	struct cw_page_win *w, fresh = {};

	if (!cw_is_traced_memo(tgid)) {
		stat_add(CW_HS_PAGES_UNTRACED, pages);
		return 0;
	}
	stat_add(CW_HS_PAGE_ALLOCS, 1);
	now = bpf_ktime_get_ns();
	w = bpf_map_lookup_elem(&cw_page_win, &tgid);
	if (!w) {
		fresh.start_ns = now;
		fresh.pages = pages;
		if (bpf_map_update_elem(&cw_page_win, &tgid, &fresh, BPF_NOEXIST) &&
		    !bpf_map_lookup_elem(&cw_page_win, &tgid))
			cw_count_loss(CW_LOSS_HOST_MAP_FULL);
		return 0;
	}
	if (now - w->start_ns >= cw_page_window_ns) {
		/*
		 * The window closed before this allocation: emit it and open the
		 * next one here. Two CPUs racing at the boundary may both emit;
		 * the later one carries only the pages added after the first.
		 */
		fresh = *w;
		w->start_ns = now;
		w->pages = pages;
		page_emit(tgid, (__u32)id, &fresh, 0);
		return 0;
	}
	__sync_fetch_and_add(&w->pages, pages);
	return 0;
}

/*
 * Memory reclaim run by a traced thread itself: the page allocator (direct
 * reclaim) or its memory cgroup's limit (memcg reclaim) made it free pages
 * before it could continue: swap-out, writeback waits, shrinking caches.
 * Begin/end pairs keyed by tid; the whole stall, on- and off-CPU, is one record.
 */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, __u64);
} cw_reclaim_start SEC(".maps");

static __always_inline int reclaim_begin(void)
{
	__u64 id = bpf_get_current_pid_tgid(), now;
	__u32 tid = (__u32)id;

	if (!cw_is_traced(id >> 32))
		return 0;
	now = bpf_ktime_get_ns();
	if (bpf_map_update_elem(&cw_reclaim_start, &tid, &now, BPF_ANY))
		cw_count_loss(CW_LOSS_HOST_MAP_FULL);
	return 0;
}

static __always_inline int reclaim_end(unsigned long nr_reclaimed)
{
	__u64 id = bpf_get_current_pid_tgid(), *start;
	__u32 tid = (__u32)id;
	struct cw_reclaim *e;

	start = bpf_map_lookup_elem(&cw_reclaim_start, &tid);
	if (!start)
		return 0;
	e = bpf_ringbuf_reserve(&rb_host, sizeof(*e), 0);
	if (!e) {
		cw_count_loss(CW_LOSS_RB_HOST);
		bpf_map_delete_elem(&cw_reclaim_start, &tid);
		return 0;
	}
	cw_fill_hdr(&e->hdr, *start, id, CW_OP_RECLAIM, CW_SRC_MEM, 0);
	e->dur_ns = bpf_ktime_get_ns() - *start;
	e->reclaimed = nr_reclaimed;
	bpf_ringbuf_submit(e, BPF_RB_NO_WAKEUP);
	bpf_map_delete_elem(&cw_reclaim_start, &tid);
	return 0;
}

SEC("tp_btf/mm_vmscan_direct_reclaim_begin")
int BPF_PROG(cw_direct_reclaim_begin, int order, gfp_t gfp_flags)
{
	return reclaim_begin();
}

SEC("tp_btf/mm_vmscan_direct_reclaim_end")
int BPF_PROG(cw_direct_reclaim_end, unsigned long nr_reclaimed)
{
	return reclaim_end(nr_reclaimed);
}

SEC("tp_btf/mm_vmscan_memcg_reclaim_begin")
int BPF_PROG(cw_memcg_reclaim_begin, int order, gfp_t gfp_flags)
{
	return reclaim_begin();
}

SEC("tp_btf/mm_vmscan_memcg_reclaim_end")
int BPF_PROG(cw_memcg_reclaim_end, unsigned long nr_reclaimed)
{
	return reclaim_end(nr_reclaimed);
}
