// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * nccl.bpf.c: NCCL (libnccl.so.2) calls. Same entry/return pair as
 * cuda.bpf.c (calls.bpf.h), records tagged CW_SRC_NCCL. Argument slots follow
 * src/common/ops.ts: collectives and send/recv put bytes in a0, the packed
 * datatype/reduction op/peer in a1 (events.h CW_NCCL_*), the communicator in
 * a2 and the stream in a3. x86-64 SysV ABI: six integer arguments in
 * registers, the 7th at [sp+8] and the 8th at [sp+16] at entry (sp+0 holds
 * the return address). A 128-byte ncclUniqueId passed by value goes on the
 * stack and takes no register, so the argument after it is in the next one.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include "calls.bpf.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* libbpf 1.1's bpf_tracing.h stops at PT_REGS_PARM5: the 6th argument is r9 */
#define CW_PARM6(ctx) ((ctx)->r9)

/* Element size of an ncclDataType_t (nccl.h; mirrored by NCCL_DATATYPES in
 * src/common/ops.ts), 0 when unknown. */
static __always_inline __u64 cw_nccl_size(__u32 dt)
{
	switch (dt) {
	case 0: case 1: case 10: case 11: /* int8, uint8, fp8 e4m3, fp8 e5m2 */
		return 1;
	case 6: case 9:                   /* float16, bfloat16 */
		return 2;
	case 2: case 3: case 7:           /* int32, uint32, float32 */
		return 4;
	case 4: case 5: case 8:           /* int64, uint64, float64 */
		return 8;
	default:
		return 0;
	}
}

/* a0 = bytes (or count, flagged), a1 = datatype | redop << 8 | flags | peer << 32 */
static __always_inline void cw_nccl_data(struct cw_entry *e, __u64 count, __u64 dt, __u32 redop, bool has_peer, __u64 peer)
{
	__u64 size = cw_nccl_size((__u32)dt);
	__u64 packed = ((__u32)dt & 0xff) | ((__u64)(redop & 0xff) << 8);
	if (size) {
		e->a[0] = count * size;
	} else {
		e->a[0] = count;
		packed |= CW_NCCL_COUNT_ONLY;
	}
	if (has_peer)
		packed |= CW_NCCL_HAS_PEER | ((__u64)(__u32)peer << 32);
	e->a[1] = packed;
}

static __always_inline void cw_capture(struct pt_regs *ctx, __u32 op, struct cw_entry *e)
{
	__u64 sp = PT_REGS_SP(ctx);

	switch (op) {
	case CW_OP_NCCL_ALL_REDUCE:     /* (send, recv, count, datatype, op, comm, stream) */
	case CW_OP_NCCL_REDUCE_SCATTER: /* (send, recv, recvcount, datatype, op, comm, stream) */
		cw_nccl_data(e, PT_REGS_PARM3(ctx), PT_REGS_PARM4(ctx), (__u32)PT_REGS_PARM5(ctx), false, 0);
		e->a[2] = CW_PARM6(ctx);
		e->a[3] = cw_user_u64(sp + 8);
		break;
	case CW_OP_NCCL_ALL_GATHER:     /* (send, recv, sendcount, datatype, comm, stream) */
		cw_nccl_data(e, PT_REGS_PARM3(ctx), PT_REGS_PARM4(ctx), CW_NCCL_NO_REDOP, false, 0);
		e->a[2] = PT_REGS_PARM5(ctx);
		e->a[3] = CW_PARM6(ctx);
		break;
	case CW_OP_NCCL_BROADCAST:      /* (send, recv, count, datatype, int root, comm, stream) */
		cw_nccl_data(e, PT_REGS_PARM3(ctx), PT_REGS_PARM4(ctx), CW_NCCL_NO_REDOP, true, PT_REGS_PARM5(ctx));
		e->a[2] = CW_PARM6(ctx);
		e->a[3] = cw_user_u64(sp + 8);
		break;
	case CW_OP_NCCL_REDUCE:         /* (send, recv, count, datatype, op, int root, comm, stream) */
		cw_nccl_data(e, PT_REGS_PARM3(ctx), PT_REGS_PARM4(ctx), (__u32)PT_REGS_PARM5(ctx), true, CW_PARM6(ctx));
		e->a[2] = cw_user_u64(sp + 8);
		e->a[3] = cw_user_u64(sp + 16);
		break;
	case CW_OP_NCCL_SEND:           /* (send, count, datatype, int peer, comm, stream) */
	case CW_OP_NCCL_RECV:           /* (recv, count, datatype, int peer, comm, stream) */
		cw_nccl_data(e, PT_REGS_PARM2(ctx), PT_REGS_PARM3(ctx), CW_NCCL_NO_REDOP, true, PT_REGS_PARM4(ctx));
		e->a[2] = PT_REGS_PARM5(ctx);
		e->a[3] = CW_PARM6(ctx);
		break;
	case CW_OP_NCCL_COMM_INIT_RANK:        /* (ncclComm_t *out, int nranks, ncclUniqueId id, int rank) */
	case CW_OP_NCCL_COMM_INIT_RANK_CONFIG: /* (..., int rank, ncclConfig_t *config) */
		e->a[0] = (__u32)PT_REGS_PARM3(ctx); /* rank: the id went to the stack */
		e->outp = PT_REGS_PARM1(ctx);         /* the handle, read at return into a1 */
		e->a[2] = (__u32)PT_REGS_PARM2(ctx);
		e->a[3] = cw_user_u64(sp + 8);        /* first 8 bytes of the unique id */
		break;
	case CW_OP_NCCL_COMM_DESTROY:   /* (ncclComm_t) */
		e->a[0] = PT_REGS_PARM1(ctx);
		break;
	default: /* ncclGroupStart/End: no arguments */
		break;
	}
}

CW_DEFINE_CALL_PROGS(cw_nccl_entry, cw_nccl_return, CW_SRC_NCCL)
