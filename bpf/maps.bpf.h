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

/*
 * Generation of cw_traced's contents: bumped after every insertion, element 0
 * by BPF programs (the fork tracepoint, the CUDA probes' trace_all), element 1
 * by user space (cw_traced_mark in src/probe/traced.ts; its only writer, so a
 * read-modify-write there races with nothing). Deletions need no bump: the
 * memo below only caches "not traced". Shared like cw_traced.
 */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, __u32);
} cw_traced_gen SEC(".maps");

/*
 * Per CPU, the last tgid found not traced, tagged with the generation it was
 * found at: (tgid << 32) | (gen0 + gen1), one 8-byte word, so a writer
 * preempted on the same CPU cannot leave a torn tag. Private to each object
 * (a cache; only the generation must be shared).
 */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} cw_untraced_memo SEC(".maps");

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

/* after an insertion into cw_traced from BPF */
static __always_inline void cw_traced_bump(void)
{
	__u32 k = 0, *g = bpf_map_lookup_elem(&cw_traced_gen, &k);

	if (g)
		__sync_fetch_and_add(g, 1);
}

/*
 * cw_is_traced for the programs every process on the machine runs many times
 * per exec (page allocations: ~46 per exec of /bin/true; the scheduler
 * switches): a run of the same untraced tgid on a CPU costs two inlined
 * array reads and a compare instead of a hash lookup. Correct because the
 * generation is read before the lookup and bumped after every insertion: an
 * insertion the lookup missed changes the generation the tag was made with.
 */
static __always_inline bool cw_is_traced_memo(__u32 tgid)
{
	__u32 k0 = 0, k1 = 1, *g0, *g1;
	__u64 *m, tag;

	if (tgid == cw_self_tgid)
		return false;
	m = bpf_map_lookup_elem(&cw_untraced_memo, &k0);
	g0 = bpf_map_lookup_elem(&cw_traced_gen, &k0);
	g1 = bpf_map_lookup_elem(&cw_traced_gen, &k1);
	if (!m || !g0 || !g1)
		return cw_is_traced(tgid);
	tag = ((__u64)tgid << 32) | (__u32)(*(volatile __u32 *)g0 + *(volatile __u32 *)g1);
	if (*m == tag)
		return false;
	if (bpf_map_lookup_elem(&cw_traced, &tgid))
		return true;
	*(volatile __u64 *)m = tag;
	return false;
}

/* the memo alone: true only when it already says this tgid is not traced (no lookup on a miss) */
static __always_inline bool cw_memo_untraced(__u32 tgid)
{
	__u32 k0 = 0, k1 = 1, *g0, *g1;
	__u64 *m;

	m = bpf_map_lookup_elem(&cw_untraced_memo, &k0);
	g0 = bpf_map_lookup_elem(&cw_traced_gen, &k0);
	g1 = bpf_map_lookup_elem(&cw_traced_gen, &k1);
	if (!m || !g0 || !g1)
		return false;
	return *m == (((__u64)tgid << 32) | (__u32)(*(volatile __u32 *)g0 + *(volatile __u32 *)g1));
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
