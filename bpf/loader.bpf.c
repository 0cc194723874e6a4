// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * loader.bpf.c: the dynamic loader mapped new objects.
 *
 * A uprobe on `_dl_debug_state` of /lib64/ld-linux-x86-64.so.2: glibc's
 * loader calls it twice at start-up (before and after the initial libraries
 * are mapped) and twice per dlopen (GUIDE §8). For traced tgids (or every
 * process when cw_trace_all) it emits struct cw_loader into rb_life and, when
 * cw_stop_on_load is set, parks the process with SIGSTOP (bpf_send_signal
 * signals the whole thread group of `current`): the new library is mapped but
 * none of its code has run. User space reads /proc/PID/maps, attaches, and
 * sends SIGCONT.
 *
 * Attached by src/probe/host.ts through a uprobe_multi link with one offset
 * (resolved from the ELF), falling back to a classic uprobe: SEC("uprobe")
 * carries no target so the same program serves both.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include "maps.bpf.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

#define CW_SIGSTOP 19

const volatile bool cw_stop_on_load = false;

SEC("uprobe")
int BPF_KPROBE(cw_dl_debug_state) /* BPF_UPROBE is libbpf >= 1.2; same thing */
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 tgid = id >> 32;
	struct cw_loader *e;
	bool stop;

	if (tgid == cw_self_tgid)
		return 0;
	if (!cw_trace_all && !cw_is_traced(tgid))
		return 0;
	/* park even when the ring is full: attaching matters more than the record */
	stop = cw_stop_on_load && bpf_send_signal(CW_SIGSTOP) == 0;
	e = bpf_ringbuf_reserve(&rb_life, sizeof(*e), 0);
	if (!e) {
		cw_count_loss(CW_LOSS_RB_LIFE);
		return 0;
	}
	cw_fill_hdr(&e->hdr, bpf_ktime_get_ns(), id, CW_OP_LIB_LOAD, CW_SRC_LOADER, 0);
	e->stopped = stop;
	e->pad = 0;
	bpf_ringbuf_submit(e, BPF_RB_NO_WAKEUP);
	return 0;
}
