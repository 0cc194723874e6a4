// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * driver.bpf.c: CUDA driver (libcuda) calls. Same pair as cuda.bpf.c; copies
 * carry their direction in a1 (1 = HostToDevice, 2 = DeviceToHost, the
 * cudaMemcpyKind numbering) since the driver encodes it in the symbol.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include "calls.bpf.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

static __always_inline void cw_capture(struct pt_regs *ctx, __u32 op, struct cw_entry *e)
{
	switch (op) {
	case CW_OP_CU_LAUNCH_KERNEL: {
		/*
		 * (CUfunction f, unsigned gx, gy, gz, bx, by, bz,
		 *  unsigned sharedMemBytes, CUstream hStream, void **params,
		 *  void **extra): gx..by in rsi, rdx, rcx, r8, r9; bz at
		 * [sp+8], sharedMemBytes [sp+16], hStream [sp+24].
		 */
		__u64 sp = PT_REGS_SP(ctx);
		e->a[0] = PT_REGS_PARM1(ctx);
		e->a[1] = (__u64)(__u32)PT_REGS_PARM2(ctx) * (__u32)PT_REGS_PARM3(ctx) *
			  (__u32)PT_REGS_PARM4(ctx);
		e->a[2] = (__u64)(__u32)PT_REGS_PARM5(ctx) * (__u32)ctx->r9 *
			  (__u32)cw_user_u64(sp + 8);
		e->a[3] = cw_user_u64(sp + 24);
		break;
	}
	case CW_OP_CU_MEM_ALLOC:       /* (CUdeviceptr *dptr, size_t bytesize) */
		e->a[0] = PT_REGS_PARM2(ctx);
		e->outp = PT_REGS_PARM1(ctx);
		break;
	case CW_OP_CU_MEM_FREE:        /* (CUdeviceptr) */
	case CW_OP_CU_STREAM_SYNCHRONIZE: /* (CUstream) */
		e->a[0] = PT_REGS_PARM1(ctx);
		break;
	case CW_OP_CU_MEMCPY_HTOD:     /* (CUdeviceptr dst, const void *src, size_t n) */
	case CW_OP_CU_MEMCPY_DTOH:     /* (void *dst, CUdeviceptr src, size_t n) */
		e->a[0] = PT_REGS_PARM3(ctx);
		e->a[1] = op == CW_OP_CU_MEMCPY_HTOD ? 1 : 2;
		e->a[2] = PT_REGS_PARM1(ctx);
		e->a[3] = PT_REGS_PARM2(ctx);
		break;
	case CW_OP_CU_MEMCPY_HTOD_ASYNC: /* (dst, src, size_t n, CUstream) */
	case CW_OP_CU_MEMCPY_DTOH_ASYNC:
		e->a[0] = PT_REGS_PARM3(ctx);
		e->a[1] = op == CW_OP_CU_MEMCPY_HTOD_ASYNC ? 1 : 2;
		e->a[2] = PT_REGS_PARM4(ctx);
		e->a[3] = PT_REGS_PARM1(ctx);
		break;
	default: /* cuCtxSynchronize and unknown ops: no arguments */
		break;
	}
}

CW_DEFINE_CALL_PROGS(cw_drv_entry, cw_drv_return, CW_SRC_CUDA_DRV)
