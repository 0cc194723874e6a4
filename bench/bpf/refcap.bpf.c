// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The hand-written reference capture of GUIDE.md §8: entry stores the
 * timestamp keyed by tid in a hash; return reserves a 64-byte record in a
 * ring buffer and submits it with BPF_RB_NO_WAKEUP; user space (refcap.c)
 * drains in batches every ~10 ms. Filtered by tgid (a const set before load).
 * This is the yardstick Causeway's per-call cost is compared with.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include "refcap.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

const volatile __u32 target_tgid = 0;

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, __u32);
	__type(value, __u64);
} starts SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 8 << 20);
} rb SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} drops SEC(".maps");

SEC("uprobe")
int refcap_entry(struct pt_regs *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	if ((__u32)(id >> 32) != target_tgid)
		return 0;
	__u32 tid = (__u32)id;
	__u64 ts = bpf_ktime_get_ns();
	bpf_map_update_elem(&starts, &tid, &ts, BPF_ANY);
	return 0;
}

SEC("uretprobe")
int refcap_return(struct pt_regs *ctx)
{
	__u64 now = bpf_ktime_get_ns();
	__u64 id = bpf_get_current_pid_tgid();
	__u32 tid = (__u32)id;
	__u64 *ts = bpf_map_lookup_elem(&starts, &tid);
	if (!ts)
		return 0;
	struct refcap_rec *r = bpf_ringbuf_reserve(&rb, sizeof(*r), 0);
	if (!r) {
		__u32 k = 0;
		__u64 *d = bpf_map_lookup_elem(&drops, &k);
		if (d)
			(*d)++;
		bpf_map_delete_elem(&starts, &tid);
		return 0;
	}
	r->ts_ns = *ts;
	r->dur_ns = now - *ts;
	r->tgid = id >> 32;
	r->tid = tid;
	r->ret = PT_REGS_RC(ctx);
	r->a[0] = r->a[1] = r->a[2] = r->a[3] = 0;
	bpf_ringbuf_submit(r, BPF_RB_NO_WAKEUP);
	bpf_map_delete_elem(&starts, &tid);
	return 0;
}
