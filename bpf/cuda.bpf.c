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

/* The launch configuration shared in layout by cudaLaunchConfig_t and
 * CUlaunchConfig (offsets checked against the CUDA 13 headers by the fakes'
 * _Static_asserts): grid x,y,z; block x,y,z; dynamic shared memory; stream. */
struct cw_launch_cfg {
	__u32 grid[3];
	__u32 block[3];
	__u64 smem;
	__u64 stream;
};

/* cudaMemcpy3DParms / cudaMemcpy3DPeerParms: only the fields we read. */
#define CW_3D_SRC_PTR 32
#define CW_3D_DST_PTR 96
#define CW_3D_EXTENT 128
#define CW_3D_KIND 152
#define CW_3DPEER_DST_PTR 104
#define CW_3DPEER_EXTENT 144

static __always_inline void cw_capture_ex_launch(struct cw_entry *e, __u64 cfgp, __u64 func)
{
	struct cw_launch_cfg c = {};
	e->a[0] = func;
	if (bpf_probe_read_user(&c, sizeof(c), (const void *)cfgp)) {
		e->flags |= CW_F_OUT_READ_FAIL;
		return;
	}
	e->a[1] = (__u64)c.grid[0] * c.grid[1] * c.grid[2];
	e->a[2] = ((__u64)c.block[0] * c.block[1] * c.block[2] & 0xffffffff) | (c.smem << 32);
	e->a[3] = c.stream;
}

/* bytes = extent width * height * depth of a 3D copy's parameter block */
static __always_inline __u64 cw_extent_bytes(__u64 p)
{
	__u64 ext[3] = {};
	if (bpf_probe_read_user(ext, sizeof(ext), (const void *)p))
		return 0;
	return ext[0] * ext[1] * ext[2];
}

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
	case CW_OP_CUDA_LAUNCH_KERNEL:
	case CW_OP_CUDA_LAUNCH_COOPERATIVE_KERNEL: { /* the same arguments and ABI */
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
	case CW_OP_CUDA_LAUNCH_KERNEL_EX_C: /* (const cudaLaunchConfig_t *config, const void *func, void **args) */
		cw_capture_ex_launch(e, PT_REGS_PARM1(ctx), PT_REGS_PARM2(ctx));
		break;
	case CW_OP_CUDA_STREAM_BEGIN_CAPTURE: /* (stream, mode) */
		e->a[0] = PT_REGS_PARM1(ctx);
		e->a[1] = (__u32)PT_REGS_PARM2(ctx);
		break;
	case CW_OP_CUDA_STREAM_END_CAPTURE: /* (stream, cudaGraph_t *pGraph) */
		e->a[0] = PT_REGS_PARM1(ctx);
		e->outp = PT_REGS_PARM2(ctx);
		break;
	case CW_OP_CUDA_GRAPH_INSTANTIATE: /* (cudaGraphExec_t *pExec, cudaGraph_t graph, unsigned long long flags) */
	case CW_OP_CUDA_GRAPH_INSTANTIATE_WITH_FLAGS:
		e->a[0] = PT_REGS_PARM2(ctx);
		e->outp = PT_REGS_PARM1(ctx);
		e->a[2] = PT_REGS_PARM3(ctx);
		break;
	case CW_OP_CUDA_GRAPH_LAUNCH:      /* (cudaGraphExec_t, cudaStream_t) */
	case CW_OP_CUDA_GRAPH_UPLOAD:      /* (cudaGraphExec_t, cudaStream_t) */
	case CW_OP_CUDA_GRAPH_EXEC_UPDATE: /* (cudaGraphExec_t, cudaGraph_t, resultInfo *) */
	case CW_OP_CUDA_EVENT_RECORD:      /* (cudaEvent_t, cudaStream_t) */
	case CW_OP_CUDA_FREE_ASYNC:        /* (void *devPtr, cudaStream_t) */
		e->a[0] = PT_REGS_PARM1(ctx);
		e->a[1] = PT_REGS_PARM2(ctx);
		break;
	case CW_OP_CUDA_EVENT_RECORD_WITH_FLAGS: /* (event, stream, unsigned flags) */
		e->a[0] = PT_REGS_PARM1(ctx);
		e->a[1] = PT_REGS_PARM2(ctx);
		e->a[2] = (__u32)PT_REGS_PARM3(ctx);
		break;
	case CW_OP_CUDA_EVENT_QUERY:       /* (cudaEvent_t) */
	case CW_OP_CUDA_STREAM_QUERY:      /* (cudaStream_t) */
	case CW_OP_CUDA_EVENT_DESTROY:
	case CW_OP_CUDA_STREAM_DESTROY:
		e->a[0] = PT_REGS_PARM1(ctx);
		break;
	case CW_OP_CUDA_SET_DEVICE:        /* (int device) */
		e->a[0] = (__u32)PT_REGS_PARM1(ctx);
		break;
	case CW_OP_CUDA_EVENT_CREATE:      /* (cudaEvent_t *) */
	case CW_OP_CUDA_STREAM_CREATE:     /* (cudaStream_t *) */
		e->outp = PT_REGS_PARM1(ctx);
		break;
	case CW_OP_CUDA_EVENT_CREATE_WITH_FLAGS:  /* (cudaEvent_t *, unsigned flags) */
	case CW_OP_CUDA_STREAM_CREATE_WITH_FLAGS: /* (cudaStream_t *, unsigned flags) */
		e->a[0] = (__u32)PT_REGS_PARM2(ctx);
		e->outp = PT_REGS_PARM1(ctx);
		break;
	case CW_OP_CUDA_STREAM_CREATE_WITH_PRIORITY: /* (cudaStream_t *, unsigned flags, int priority) */
		e->a[0] = (__u32)PT_REGS_PARM2(ctx);
		e->outp = PT_REGS_PARM1(ctx);
		e->a[2] = (__s64)(__s32)PT_REGS_PARM3(ctx);
		break;
	case CW_OP_CUDA_MALLOC_ASYNC:      /* (void **devPtr, size_t size, cudaStream_t) */
		e->a[0] = PT_REGS_PARM2(ctx);
		e->outp = PT_REGS_PARM1(ctx);
		e->a[2] = PT_REGS_PARM3(ctx);
		break;
	case CW_OP_CUDA_MALLOC_FROM_POOL_ASYNC: /* (void **ptr, size_t size, cudaMemPool_t pool, cudaStream_t) */
		e->a[0] = PT_REGS_PARM2(ctx);
		e->outp = PT_REGS_PARM1(ctx);
		e->a[2] = PT_REGS_PARM3(ctx);
		e->a[3] = PT_REGS_PARM4(ctx);
		break;
	case CW_OP_CUDA_MEMCPY_2D:         /* (dst, dpitch, src, spitch, width, height, kind) */
	case CW_OP_CUDA_MEMCPY_2D_ASYNC: { /* (..., kind, stream): kind [sp+8], stream [sp+16] */
		__u64 sp = PT_REGS_SP(ctx);
		e->a[0] = PT_REGS_PARM5(ctx) * ctx->r9;
		e->a[1] = (__u32)cw_user_u64(sp + 8);
		if (op == CW_OP_CUDA_MEMCPY_2D) {
			e->a[2] = PT_REGS_PARM1(ctx);
			e->a[3] = PT_REGS_PARM3(ctx);
		} else {
			e->a[2] = cw_user_u64(sp + 16);
			e->a[3] = PT_REGS_PARM1(ctx);
		}
		break;
	}
	case CW_OP_CUDA_MEMCPY_3D:         /* (const cudaMemcpy3DParms *p) */
	case CW_OP_CUDA_MEMCPY_3D_ASYNC: { /* (p, stream) */
		__u64 p = PT_REGS_PARM1(ctx);
		e->a[0] = cw_extent_bytes(p + CW_3D_EXTENT);
		e->a[1] = (__u32)cw_user_u64(p + CW_3D_KIND);
		if (op == CW_OP_CUDA_MEMCPY_3D) {
			e->a[2] = cw_user_u64(p + CW_3D_DST_PTR);
			e->a[3] = cw_user_u64(p + CW_3D_SRC_PTR);
		} else {
			e->a[2] = PT_REGS_PARM2(ctx);
			e->a[3] = cw_user_u64(p + CW_3D_DST_PTR);
		}
		break;
	}
	case CW_OP_CUDA_MEMCPY_3D_PEER:         /* (const cudaMemcpy3DPeerParms *p) */
	case CW_OP_CUDA_MEMCPY_3D_PEER_ASYNC: { /* (p, stream) */
		__u64 p = PT_REGS_PARM1(ctx);
		e->a[0] = cw_extent_bytes(p + CW_3DPEER_EXTENT);
		e->a[1] = 3; /* DeviceToDevice */
		if (op == CW_OP_CUDA_MEMCPY_3D_PEER) {
			e->a[2] = cw_user_u64(p + CW_3DPEER_DST_PTR);
			e->a[3] = cw_user_u64(p + CW_3D_SRC_PTR);
		} else {
			e->a[2] = PT_REGS_PARM2(ctx);
			e->a[3] = cw_user_u64(p + CW_3DPEER_DST_PTR);
		}
		break;
	}
	case CW_OP_CUDA_MEMCPY_PEER:       /* (dst, int dstDev, src, int srcDev, size_t count) */
		e->a[0] = PT_REGS_PARM5(ctx);
		e->a[1] = 3;
		e->a[2] = PT_REGS_PARM1(ctx);
		e->a[3] = PT_REGS_PARM3(ctx);
		break;
	case CW_OP_CUDA_MEMCPY_PEER_ASYNC: /* (..., count, stream): stream in r9 */
		e->a[0] = PT_REGS_PARM5(ctx);
		e->a[1] = 3;
		e->a[2] = ctx->r9;
		e->a[3] = PT_REGS_PARM1(ctx);
		break;
	case CW_OP_CUDA_MEM_PREFETCH_ASYNC: /* CUDA 13: (devPtr, count, cudaMemLocation (8 B, one register), flags, stream) */
		e->a[0] = PT_REGS_PARM2(ctx);
		e->a[1] = PT_REGS_PARM1(ctx);
		e->a[2] = PT_REGS_PARM5(ctx);
		break;
	case CW_OP_CUDA_HOST_ALLOC:        /* (void **pHost, size_t size, unsigned flags) */
		e->a[0] = PT_REGS_PARM2(ctx);
		e->outp = PT_REGS_PARM1(ctx);
		e->a[2] = (__u32)PT_REGS_PARM3(ctx);
		break;
	case CW_OP_CUDA_HOST_REGISTER:     /* (void *ptr, size_t size, unsigned flags) */
		e->a[0] = PT_REGS_PARM2(ctx);
		e->a[1] = PT_REGS_PARM1(ctx);
		e->a[2] = (__u32)PT_REGS_PARM3(ctx);
		break;
	default: /* cudaDeviceSynchronize and unknown ops: no arguments */
		break;
	}
}

CW_DEFINE_CALL_PROGS(cw_cuda_entry, cw_cuda_return, CW_SRC_CUDA_RT)
