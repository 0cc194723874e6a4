// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * cuda.bpf.c: CUDA runtime (libcudart) calls. One entry + one return program;
 * the op comes from the attach cookie. Argument slots follow src/common/ops.ts.
 * x86-64 SysV ABI; the register of each argument is noted where it is not
 * the obvious one.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include "calls.bpf.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

static __always_inline void cw_capture(struct pt_regs *ctx, __u32 op, struct cw_entry *e)
{
	switch (op) {
	case CW_OP_CUDA_MALLOC:        /* (void **devPtr, size_t size) */
	case CW_OP_CUDA_MALLOC_HOST:   /* (void **ptr, size_t size) */
		e->a[0] = PT_REGS_PARM2(ctx);
		e->outp = PT_REGS_PARM1(ctx);
		break;
	case CW_OP_CUDA_MALLOC_MANAGED: /* (void **devPtr, size_t size, unsigned flags) */
		e->a[0] = PT_REGS_PARM2(ctx);
		e->outp = PT_REGS_PARM1(ctx);
		e->a[2] = (__u32)PT_REGS_PARM3(ctx);
		break;
	case CW_OP_CUDA_FREE:          /* (void *devPtr) */
	case CW_OP_CUDA_FREE_HOST:     /* (void *ptr) */
	case CW_OP_CUDA_STREAM_SYNCHRONIZE: /* (cudaStream_t) */
	case CW_OP_CUDA_EVENT_SYNCHRONIZE:  /* (cudaEvent_t) */
		e->a[0] = PT_REGS_PARM1(ctx);
		break;
	case CW_OP_CUDA_LAUNCH_KERNEL: {
		/*
		 * (const void *func, dim3 grid, dim3 block, void **args,
		 *  size_t sharedMem, cudaStream_t stream): each 12-byte dim3 is
		 * passed in two registers: grid rsi = x | y << 32, rdx = z;
		 * block rcx = x | y << 32, r8 = z; args r9; sharedMem at
		 * [sp+8] and stream at [sp+16] (sp+0 is the return address).
		 */
		__u64 g = PT_REGS_PARM2(ctx), b = PT_REGS_PARM4(ctx);
		e->a[0] = PT_REGS_PARM1(ctx);
		e->a[1] = (__u64)(__u32)g * (__u32)(g >> 32) * (__u32)PT_REGS_PARM3(ctx);
		e->a[2] = (__u64)(__u32)b * (__u32)(b >> 32) * (__u32)PT_REGS_PARM5(ctx);
		e->a[3] = cw_user_u64(PT_REGS_SP(ctx) + 16);
		break;
	}
	case CW_OP_CUDA_MEMCPY:        /* (void *dst, const void *src, size_t count, kind) */
		e->a[0] = PT_REGS_PARM3(ctx);
		e->a[1] = (__u32)PT_REGS_PARM4(ctx);
		e->a[2] = PT_REGS_PARM1(ctx);
		e->a[3] = PT_REGS_PARM2(ctx);
		break;
	case CW_OP_CUDA_MEMCPY_ASYNC:  /* (dst, src, count, kind, cudaStream_t stream) */
		e->a[0] = PT_REGS_PARM3(ctx);
		e->a[1] = (__u32)PT_REGS_PARM4(ctx);
		e->a[2] = PT_REGS_PARM5(ctx);
		e->a[3] = PT_REGS_PARM1(ctx);
		break;
	case CW_OP_CUDA_MEMSET:        /* (void *devPtr, int value, size_t count) */
	case CW_OP_CUDA_MEMSET_ASYNC:  /* (..., cudaStream_t stream) */
		e->a[0] = PT_REGS_PARM3(ctx);
		e->a[1] = (__u32)PT_REGS_PARM2(ctx);
		e->a[2] = PT_REGS_PARM1(ctx);
		if (op == CW_OP_CUDA_MEMSET_ASYNC)
			e->a[3] = PT_REGS_PARM4(ctx);
		break;
	case CW_OP_CUDA_STREAM_WAIT_EVENT: /* (stream, event, unsigned flags) */
		e->a[0] = PT_REGS_PARM1(ctx);
		e->a[1] = PT_REGS_PARM2(ctx);
		e->a[2] = (__u32)PT_REGS_PARM3(ctx);
		break;
	default: /* cudaDeviceSynchronize and unknown ops: no arguments */
		break;
	}
}

CW_DEFINE_CALL_PROGS(cw_cuda_entry, cw_cuda_return, CW_SRC_CUDA_RT)
