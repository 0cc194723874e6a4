/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Maps shared by every Causeway BPF object. Each object declares them with the
 * same name and layout; the loader creates them once (first object) and makes
 * the others reuse the same map (bpf_map__reuse_fd), so one tgid filter, one
 * set of rings and one set of drop counters serve all programs.
 */
#ifndef CAUSEWAY_MAPS_BPF_H
#define CAUSEWAY_MAPS_BPF_H

#include "events.h"

/* tgids being traced. value: CW_TRACE_* flags. */
#define CW_TRACE_ON 1
#define CW_TRACE_CHILDREN 2 /* follow fork: children inherit the entry */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, __u32);
} cw_traced SEC(".maps");

/* Loss counters, index = enum cw_loss. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, CW_LOSS_COUNT);
	__type(key, __u32);
	__type(value, __u64);
} cw_drops SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	/* 32 MiB: ~400k call records, ~0.9 s of a 450k calls/s workload if user space stalls (GC, a slow disk) */
	__uint(max_entries, 32 << 20);
} rb_calls SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4 << 20);
} rb_host SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 << 10);
} rb_life SEC(".maps");

/*
 * trace_all: when true, CUDA probes record every process and add its tgid to
 * cw_traced on first call (so host context follows). When false only tgids in
 * cw_traced are recorded. self_tgid: Causeway itself, never traced.
 * Records are submitted with BPF_RB_NO_WAKEUP: user space drains the rings
 * on an interval (there is no per-record wakeup setting).
 */
const volatile bool cw_trace_all = false;
const volatile __u32 cw_self_tgid = 0;

static __always_inline void cw_count_loss(__u32 idx)
{
	__u64 *v = bpf_map_lookup_elem(&cw_drops, &idx);
	if (v)
		*v += 1;
}

static __always_inline bool cw_is_traced(__u32 tgid)
{
	if (tgid == cw_self_tgid)
		return false;
	return bpf_map_lookup_elem(&cw_traced, &tgid) != NULL;
}

static __always_inline void cw_fill_hdr(struct cw_hdr *h, __u64 ts, __u64 pid_tgid, __u16 op, __u8 source, __u32 flags)
{
	h->ts_ns = ts;
	h->tgid = pid_tgid >> 32;
	h->tid = (__u32)pid_tgid;
	h->op = op;
	h->source = source;
	h->version = CW_EVENT_VERSION;
	h->flags = flags;
}

#endif /* CAUSEWAY_MAPS_BPF_H */
