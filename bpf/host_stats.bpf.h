/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * host_stats.bpf.h: the host-side counters host.bpf.c and io.bpf.c both keep
 * (per-CPU array cw_host_stats, index enum cw_host_stat in events.h). The
 * loader shares host.bpf.o's map with io.bpf.o, so both add to one array;
 * loaded alone, io.bpf.o keeps a local one. User space sums it with
 * readPercpuCounters(obj, "cw_host_stats") (names: src/common/wire.ts).
 */
#ifndef CAUSEWAY_HOST_STATS_BPF_H
#define CAUSEWAY_HOST_STATS_BPF_H

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, CW_HS_COUNT);
	__type(key, __u32);
	__type(value, __u64);
} cw_host_stats SEC(".maps");

static __always_inline void stat_add(__u32 idx, __u64 n)
{
	__u64 *v = bpf_map_lookup_elem(&cw_host_stats, &idx);
	if (v)
		*v += n;
}

#endif /* CAUSEWAY_HOST_STATS_BPF_H */
