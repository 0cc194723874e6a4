// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* The floor: an uprobe (and a uretprobe) that do nothing. What is left is the
 * kernel's cost of taking the breakpoint, emulating the first instruction and
 * (for the return) hijacking the return address. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "Dual BSD/GPL";

SEC("uprobe")
int empty_entry(void *ctx)
{
	return 0;
}

SEC("uretprobe")
int empty_return(void *ctx)
{
	return 0;
}

/* The floor of a BPF_PROG_TYPE_TRACING program on a busy tracepoint: the
 * dispatch plus what kernel.bpf_stats_enabled itself adds to each run's
 * recorded run time (bench/execcost.ts subtracts runs x this from the trace's
 * programs). */
SEC("tp_btf/mm_page_alloc")
int empty_tp_btf(void *ctx)
{
	return 0;
}
