// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * io.bpf.c: block I/O latency of traced processes, issue -> complete.
 *
 *   tp_btf block_io_start     remember the submitter when a traced task's bio
 *                             becomes a request (blk_mq_bio_to_request, in the
 *                             submitter's context; kernels >= 6.5)
 *   tp_btf block_rq_insert    remember the issuer when a traced task queues a request
 *   tp_btf block_rq_issue     start the clock (and remember the issuer if the
 *                             traced task issues it directly, no scheduler queue)
 *   tp_btf block_rq_complete  emit struct cw_io into rb_host
 *   tp_btf sys_enter/sys_exit read-family syscalls of traced threads: emit
 *                             struct cw_read_io at return when the call
 *                             issued block I/O in its own task (the flag is
 *                             set by the three hooks above)
 *
 * Keyed by the struct request pointer. Requests whose start/insert/issue ran
 * in an untraced task are not stored (only counted at completion). A request
 * dispatched later from a kworker keeps the traced submitter. Insert alone is
 * not enough: with no I/O scheduler, a direct issue the device refuses as busy
 * goes onto the hardware queue's dispatch list with no insert event, and a
 * kworker issues it later (seen as 7 of 64 O_DIRECT reads lost on a quiet run).
 * block_io_start sees every request made from a bio, in the submitter's task.
 *
 * All tp_btf: classic tracepoint links cost 60-76 ms each to destroy here.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "maps.bpf.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

struct io_start {
	__u64 ts;      /* issue time; 0 while only inserted */
	__u64 pid_tgid;
	__u64 sector;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 8192);
	__type(key, __u64); /* struct request * */
	__type(value, struct io_start);
} cw_io_start SEC(".maps");

/* Counters shared with host.bpf.o when the loader shares the map, else local. */
#include "host_stats.bpf.h"

/* Set by user space when cw_block_io_start is loaded: every request made from
 * a bio then has its submitter recorded at creation, and insert/issue only
 * update it. They must not create entries then: a plug flush or queue run in a
 * traced task dispatches other tasks' queued requests in its context, and
 * those would be charged to it (seen with a concurrent O_DIRECT reader). */
const volatile bool cw_have_io_start = false;

/* A read-family syscall in progress in a traced thread. */
struct read_sys {
	__u64 ts;
	__s32 fd;
	__u32 nr;
	__u32 issued; /* the call made a block request in its own task */
	__u32 pad;
};

/* LRU: an entry whose thread never returns (killed in the call) ages out. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32); /* tid */
	__type(value, struct read_sys);
} cw_read_sys SEC(".maps");

/* Record the current task as submitter if it is traced and `create`; ts = 0 until issue. */
static __always_inline int remember(struct request *rq, __u64 ts, bool create)
{
	__u64 id = bpf_get_current_pid_tgid(), key = (__u64)rq;
	__u32 tid = (__u32)id;
	struct io_start st = {}, *old;
	struct read_sys *rs;

	/* a request made in a traced thread's read syscall: the syscall waited on storage */
	rs = bpf_map_lookup_elem(&cw_read_sys, &tid);
	if (rs)
		rs->issued = 1;

	old = bpf_map_lookup_elem(&cw_io_start, &key);
	if (old) {
		/* started or inserted earlier by a traced task (or requeued): keep the submitter */
		if (ts) {
			if (!old->ts)
				stat_add(CW_HS_IO_ISSUED, 1);
			old->ts = ts;
			old->sector = BPF_CORE_READ(rq, __sector);
		}
		return 0;
	}
	if (!create || !cw_is_traced(id >> 32))
		return 0;
	st.ts = ts;
	st.pid_tgid = id;
	st.sector = BPF_CORE_READ(rq, __sector);
	if (bpf_map_update_elem(&cw_io_start, &key, &st, BPF_ANY))
		cw_count_loss(CW_LOSS_HOST_MAP_FULL);
	else if (ts)
		stat_add(CW_HS_IO_ISSUED, 1);
	return 0;
}

SEC("tp_btf/block_io_start")
int BPF_PROG(cw_block_io_start, struct request *rq)
{
	return remember(rq, 0, true);
}

SEC("tp_btf/block_rq_insert")
int BPF_PROG(cw_block_rq_insert, struct request *rq)
{
	return remember(rq, 0, !cw_have_io_start);
}

SEC("tp_btf/block_rq_issue")
int BPF_PROG(cw_block_rq_issue, struct request *rq)
{
	return remember(rq, bpf_ktime_get_ns(), !cw_have_io_start);
}

/* blk_fill_rwbs(), reduced: op letter then F(UA)/A(head)/S(ync)/M(eta). */
static __always_inline void fill_rwbs(char *rwbs, __u32 opf)
{
	__u32 op = opf & 0xff; /* REQ_OP_MASK */
	int i = 0;

	if (opf & (1u << bpf_core_enum_value(enum req_flag_bits, __REQ_PREFLUSH)))
		rwbs[i++] = 'F';
	switch (op) {
	case REQ_OP_WRITE:
		rwbs[i++] = 'W';
		break;
	case REQ_OP_DISCARD:
		rwbs[i++] = 'D';
		break;
	case REQ_OP_SECURE_ERASE:
		rwbs[i++] = 'D';
		rwbs[i++] = 'E';
		break;
	case REQ_OP_FLUSH:
		rwbs[i++] = 'F';
		break;
	case REQ_OP_READ:
		rwbs[i++] = 'R';
		break;
	default:
		rwbs[i++] = 'N';
	}
	if (opf & (1u << bpf_core_enum_value(enum req_flag_bits, __REQ_FUA)))
		rwbs[i++] = 'F';
	if (opf & (1u << bpf_core_enum_value(enum req_flag_bits, __REQ_RAHEAD)))
		rwbs[i++] = 'A';
	if (opf & (1u << bpf_core_enum_value(enum req_flag_bits, __REQ_SYNC)))
		rwbs[i++] = 'S';
	if (opf & (1u << bpf_core_enum_value(enum req_flag_bits, __REQ_META)))
		rwbs[i++] = 'M';
}

SEC("tp_btf/block_rq_complete")
int BPF_PROG(cw_block_rq_complete, struct request *rq, blk_status_t error, unsigned int nr_bytes)
{
	__u64 key = (__u64)rq, now = bpf_ktime_get_ns();
	struct io_start *st;
	struct gendisk *disk;
	struct cw_io *e;

	st = bpf_map_lookup_elem(&cw_io_start, &key);
	if (!st) {
		stat_add(CW_HS_IO_UNTRACED, 1);
		return 0;
	}
	if (!st->ts) /* completed without an issue we saw (attached mid-flight) */
		goto out;
	e = bpf_ringbuf_reserve(&rb_host, sizeof(*e), 0);
	if (!e) {
		cw_count_loss(CW_LOSS_RB_HOST);
		goto out;
	}
	__builtin_memset(e, 0, sizeof(*e));
	cw_fill_hdr(&e->hdr, st->ts, st->pid_tgid, CW_OP_BLOCK_IO, CW_SRC_IO, error ? CW_F_ERROR : 0);
	e->dur_ns = now - st->ts;
	e->sector = st->sector;
	e->bytes = nr_bytes;
	disk = BPF_CORE_READ(rq, q, disk);
	/* the kernel's dev_t encoding (MKDEV: major << 20 | minor), as the block tracepoints print */
	if (disk)
		e->dev = ((__u32)BPF_CORE_READ(disk, major) << 20) | (__u32)BPF_CORE_READ(disk, first_minor);
	fill_rwbs(e->rwbs, BPF_CORE_READ(rq, cmd_flags));
	bpf_ringbuf_submit(e, BPF_RB_NO_WAKEUP);
out:
	bpf_map_delete_elem(&cw_io_start, &key);
	return 0;
}

/* The read family, by syscall number. */
static __always_inline bool is_read_nr(long nr)
{
#if defined(__TARGET_ARCH_x86)
	return nr == 0 || nr == 17 || nr == 19 || nr == 295 || nr == 327; /* read pread64 readv preadv preadv2 */
#elif defined(__TARGET_ARCH_arm64)
	return nr == 63 || nr == 67 || nr == 65 || nr == 69 || nr == 286;
#else
	return false;
#endif
}

SEC("tp_btf/sys_enter")
int BPF_PROG(cw_sys_enter_read, struct pt_regs *regs, long nr)
{
	__u64 id;
	__u32 tid;
	struct read_sys rs = {};

	if (!is_read_nr(nr))
		return 0;
	id = bpf_get_current_pid_tgid();
	if (!cw_is_traced(id >> 32))
		return 0;
	tid = (__u32)id;
	rs.ts = bpf_ktime_get_ns();
	rs.nr = (__u32)nr;
	rs.fd = (__s32)PT_REGS_PARM1_CORE_SYSCALL(regs);
	bpf_map_update_elem(&cw_read_sys, &tid, &rs, BPF_ANY);
	return 0;
}

SEC("tp_btf/sys_exit")
int BPF_PROG(cw_sys_exit_read, struct pt_regs *regs, long ret)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 tid = (__u32)id;
	struct read_sys *rs;
	struct cw_read_io *e;

	/* every syscall of the machine comes here: the number first, the map only for reads */
#if defined(__TARGET_ARCH_x86)
	if (!is_read_nr(BPF_CORE_READ(regs, orig_ax)))
		return 0;
#elif defined(__TARGET_ARCH_arm64)
	if (!is_read_nr(BPF_CORE_READ(regs, syscallno)))
		return 0;
#endif
	rs = bpf_map_lookup_elem(&cw_read_sys, &tid);
	if (!rs)
		return 0;
	if (!rs->issued)
		goto out;
	e = bpf_ringbuf_reserve(&rb_host, sizeof(*e), 0);
	if (!e) {
		cw_count_loss(CW_LOSS_RB_HOST);
		goto out;
	}
	cw_fill_hdr(&e->hdr, rs->ts, id, CW_OP_READ_IO, CW_SRC_IO, ret < 0 ? CW_F_ERROR : 0);
	e->dur_ns = bpf_ktime_get_ns() - rs->ts;
	e->ret = ret;
	e->nr = rs->nr;
	e->fd = rs->fd;
	bpf_ringbuf_submit(e, BPF_RB_NO_WAKEUP);
out:
	bpf_map_delete_elem(&cw_read_sys, &tid);
	return 0;
}
