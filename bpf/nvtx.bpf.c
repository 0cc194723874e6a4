// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * nvtx.bpf.c: NVTX ranges and marks. Two kinds of library carry the probed
 * functions: libnvToolsExt.so.1 (NVTX v2, real exports) and Causeway's NVTX3
 * injection library (shim/nvtx_inject.c), whose handlers take the same
 * arguments as the v2 exports, so one capture serves both. Same entry/return
 * pair as cuda.bpf.c (calls.bpf.h), records tagged CW_SRC_NVTX. Slots (see
 * src/common/ops.ts): a0 the level a push/pop returned or a range id (the
 * nvtxRangeId_t a start returned, the one an end was given), a1 the domain
 * handle (0 = default domain), a2 a registered string handle, a3 left 0 for
 * user space (the interned name). The message string goes in a struct
 * cw_nvtx_msg emitted right before the call record (CW_AFTER_CALL).
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

struct cw_entry;
static __always_inline void cw_nvtx_after(struct pt_regs *ctx, __u32 op, struct cw_entry *e, __s32 *ret, __u64 pid_tgid);
#define CW_AFTER_CALL(ctx, op, e, ret, pid_tgid) cw_nvtx_after(ctx, op, e, &(ret), pid_tgid)
/* NVTX's exports call themselves once, through their lazy-init stub (calls.bpf.h) */
#define CW_ALLOW_REENTRY

#include "calls.bpf.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* e->a[3] holds the message kind between entry and return (user space fills a3 itself). */
static __always_inline void cw_nvtx_text(struct cw_entry *e, __u64 p, __u32 kind)
{
	e->aux = p;
	e->a[3] = kind;
}

/* An nvtxEventAttributes_t: its ASCII/wide message, or the registered string handle in a2. */
static __always_inline void cw_nvtx_attr(struct cw_entry *e, __u64 attr)
{
	__s32 type = 0;
	__u64 msg = 0;

	if (!attr)
		return;
	bpf_probe_read_user(&type, sizeof(type), (const void *)(attr + CW_NVTX_ATTR_MESSAGE_TYPE));
	bpf_probe_read_user(&msg, sizeof(msg), (const void *)(attr + CW_NVTX_ATTR_MESSAGE));
	if (type == CW_NVTX_ASCII || type == CW_NVTX_UNICODE)
		cw_nvtx_text(e, msg, type);
	else if (type == CW_NVTX_REGISTERED)
		e->a[2] = msg;
}

static __always_inline void cw_capture(struct pt_regs *ctx, __u32 op, struct cw_entry *e)
{
	switch (op) {
	case CW_OP_NVTX_RANGE_PUSH_A:   /* int (const char *message) */
	case CW_OP_NVTX_RANGE_START_A:  /* nvtxRangeId_t (const char *message) */
	case CW_OP_NVTX_MARK_A:         /* void (const char *message) */
		cw_nvtx_text(e, PT_REGS_PARM1(ctx), CW_NVTX_ASCII);
		break;
	case CW_OP_NVTX_RANGE_PUSH_W:   /* int (const wchar_t *message) */
		cw_nvtx_text(e, PT_REGS_PARM1(ctx), CW_NVTX_UNICODE);
		break;
	case CW_OP_NVTX_RANGE_PUSH_EX:  /* int (const nvtxEventAttributes_t *) */
	case CW_OP_NVTX_RANGE_START_EX: /* nvtxRangeId_t (const nvtxEventAttributes_t *) */
	case CW_OP_NVTX_MARK_EX:        /* void (const nvtxEventAttributes_t *) */
		cw_nvtx_attr(e, PT_REGS_PARM1(ctx));
		break;
	case CW_OP_NVTX_RANGE_END:      /* void (nvtxRangeId_t id) */
		e->a[0] = PT_REGS_PARM1(ctx);
		break;
	case CW_OP_NVTX_DOMAIN_RANGE_PUSH_EX: /* int (nvtxDomainHandle_t, const nvtxEventAttributes_t *) */
	case CW_OP_NVTX_DOMAIN_MARK_EX:       /* void (nvtxDomainHandle_t, const nvtxEventAttributes_t *) */
		e->a[1] = PT_REGS_PARM1(ctx);
		cw_nvtx_attr(e, PT_REGS_PARM2(ctx));
		break;
	case CW_OP_NVTX_DOMAIN_RANGE_POP:     /* int (nvtxDomainHandle_t) */
		e->a[1] = PT_REGS_PARM1(ctx);
		break;
	default: /* nvtxRangePop: no arguments */
		break;
	}
}

/*
 * At return: the level a push/pop returned goes to a0 (as a u32: a library
 * with no tool attached returns NVTX_NO_PUSH_POP_TRACKING, -2) and ret is 0
 * (a level is not an error); a start's 64-bit range id goes to a0. Then the
 * message record, before the call record, so the decoder has it first.
 */
static __always_inline void cw_nvtx_after(struct pt_regs *ctx, __u32 op, struct cw_entry *e, __s32 *ret, __u64 pid_tgid)
{
	__u32 kind = (__u32)e->a[3];

	if (op == CW_OP_NVTX_RANGE_START_A || op == CW_OP_NVTX_RANGE_START_EX)
		e->a[0] = PT_REGS_RC(ctx);
	else if (op == CW_OP_NVTX_RANGE_PUSH_A || op == CW_OP_NVTX_RANGE_PUSH_W || op == CW_OP_NVTX_RANGE_PUSH_EX ||
		 op == CW_OP_NVTX_RANGE_POP || op == CW_OP_NVTX_DOMAIN_RANGE_PUSH_EX || op == CW_OP_NVTX_DOMAIN_RANGE_POP)
		e->a[0] = (__u32)*ret;
	*ret = 0;
	e->a[3] = 0;
	if (!e->aux || (kind != CW_NVTX_ASCII && kind != CW_NVTX_UNICODE))
		return;
	struct cw_nvtx_msg *m = bpf_ringbuf_reserve(&rb_calls, sizeof(*m), 0);
	if (!m) {
		/* the call is still recorded, without its name */
		cw_count_loss(CW_LOSS_RB_CALLS);
		return;
	}
	cw_fill_hdr(&m->hdr, e->ts, pid_tgid, CW_OP_NVTX_MSG, CW_SRC_NVTX, 0);
	m->call_op = op;
	m->kind = kind;
	if (kind == CW_NVTX_ASCII) {
		m->len = bpf_probe_read_user_str(m->msg, sizeof(m->msg), (const void *)e->aux);
	} else {
		/* wide: as many whole bytes as are readable, NUL-cut by user space */
		m->len = bpf_probe_read_user(m->msg, sizeof(m->msg), (const void *)e->aux) ? -1 : (__s32)sizeof(m->msg);
	}
	if (m->len < 0)
		m->msg[0] = 0;
	bpf_ringbuf_submit(m, BPF_RB_NO_WAKEUP);
}

CW_DEFINE_CALL_PROGS(cw_nvtx_entry, cw_nvtx_return, CW_SRC_NVTX)
