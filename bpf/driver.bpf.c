// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * driver.bpf.c: CUDA driver (libcuda) calls. Same pair as cuda.bpf.c; copies
 * carry their direction in a1 (1 = HostToDevice, 2 = DeviceToHost, the
 * cudaMemcpyKind numbering) since the driver encodes it in the symbol.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

/*
 * Kernel names: cuModuleGetFunction / cuLibraryGetKernel
 * (CUfunction *out, CUmodule/CUlibrary, const char *name) keep the name
 * pointer in e->aux at entry; on success a cw_func_name record with the
 * handle written to *out and the name goes out right before the call record.
 */
#define CW_AFTER_CALL(ctx, op, e, ret, pid_tgid) cw_emit_func_name(op, e, ret, pid_tgid)
struct cw_entry;
static __always_inline void cw_emit_func_name(__u32 op, struct cw_entry *e, __s32 ret, __u64 pid_tgid);

#include "calls.bpf.h"

static __always_inline void cw_emit_func_name(__u32 op, struct cw_entry *e, __s32 ret, __u64 pid_tgid)
{
	if (ret != 0 || !e->aux || (op != CW_OP_CU_MODULE_GET_FUNCTION && op != CW_OP_CU_LIBRARY_GET_KERNEL))
		return;
	struct cw_func_name *n = bpf_ringbuf_reserve(&rb_calls, sizeof(*n), 0);
	if (!n) {
		cw_count_loss(CW_LOSS_RB_CALLS);
		return;
	}
	cw_fill_hdr(&n->hdr, e->ts, pid_tgid, CW_OP_FUNC_NAME, CW_SRC_CUDA_DRV, 0);
	n->handle = cw_user_u64(e->outp);
	if (bpf_probe_read_user_str(n->name, sizeof(n->name), (const void *)e->aux) < 0)
		n->name[0] = 0;
	bpf_ringbuf_submit(n, BPF_RB_NO_WAKEUP);
}

/* CUlaunchConfig: grid x,y,z; block x,y,z; sharedMemBytes; hStream. */
struct cw_launch_cfg {
	__u32 grid[3];
	__u32 block[3];
	__u32 smem;
	__u32 pad;
	__u64 stream;
};

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
	case CW_OP_CU_LAUNCH_KERNEL_EX: { /* (const CUlaunchConfig *config, CUfunction f, void **params, void **extra) */
		struct cw_launch_cfg c = {};
		e->a[0] = PT_REGS_PARM2(ctx);
		if (bpf_probe_read_user(&c, sizeof(c), (const void *)PT_REGS_PARM1(ctx))) {
			e->flags |= CW_F_OUT_READ_FAIL;
			break;
		}
		e->a[1] = (__u64)c.grid[0] * c.grid[1] * c.grid[2];
		e->a[2] = ((__u64)c.block[0] * c.block[1] * c.block[2] & 0xffffffff) | ((__u64)c.smem << 32);
		e->a[3] = c.stream;
		break;
	}
	case CW_OP_CU_GRAPH_LAUNCH:    /* (CUgraphExec, CUstream) */
	case CW_OP_CU_EVENT_RECORD:    /* (CUevent, CUstream) */
	case CW_OP_CU_MEM_FREE_ASYNC:  /* (CUdeviceptr, CUstream) */
		e->a[0] = PT_REGS_PARM1(ctx);
		e->a[1] = PT_REGS_PARM2(ctx);
		break;
	case CW_OP_CU_MEMCPY:          /* (CUdeviceptr dst, CUdeviceptr src, size_t n) */
	case CW_OP_CU_MEMCPY_DTOD:
		e->a[0] = PT_REGS_PARM3(ctx);
		e->a[1] = op == CW_OP_CU_MEMCPY ? 4 : 3; /* Default (unified addressing) / DeviceToDevice */
		e->a[2] = PT_REGS_PARM1(ctx);
		e->a[3] = PT_REGS_PARM2(ctx);
		break;
	case CW_OP_CU_MEMCPY_ASYNC:    /* (dst, src, size_t n, CUstream) */
	case CW_OP_CU_MEMCPY_DTOD_ASYNC:
		e->a[0] = PT_REGS_PARM3(ctx);
		e->a[1] = op == CW_OP_CU_MEMCPY_ASYNC ? 4 : 3;
		e->a[2] = PT_REGS_PARM4(ctx);
		e->a[3] = PT_REGS_PARM1(ctx);
		break;
	case CW_OP_CU_MEM_ALLOC_ASYNC: /* (CUdeviceptr *dptr, size_t bytes, CUstream) */
	case CW_OP_CU_MEM_ALLOC_MANAGED: /* (CUdeviceptr *dptr, size_t bytes, unsigned flags) */
	case CW_OP_CU_MEM_HOST_ALLOC:  /* (void **pp, size_t bytes, unsigned flags) */
		e->a[0] = PT_REGS_PARM2(ctx);
		e->outp = PT_REGS_PARM1(ctx);
		e->a[2] = op == CW_OP_CU_MEM_ALLOC_ASYNC ? PT_REGS_PARM3(ctx) : (__u32)PT_REGS_PARM3(ctx);
		break;
	case CW_OP_CU_EVENT_SYNCHRONIZE: /* (CUevent) */
	case CW_OP_CU_EVENT_QUERY:
	case CW_OP_CU_STREAM_QUERY:    /* (CUstream) */
		e->a[0] = PT_REGS_PARM1(ctx);
		break;
	case CW_OP_CU_STREAM_WAIT_EVENT: /* (CUstream, CUevent, unsigned flags) */
		e->a[0] = PT_REGS_PARM1(ctx);
		e->a[1] = PT_REGS_PARM2(ctx);
		e->a[2] = (__u32)PT_REGS_PARM3(ctx);
		break;
	case CW_OP_CU_MODULE_LOAD:     /* (CUmodule *out, ...) */
	case CW_OP_CU_MODULE_LOAD_DATA:
	case CW_OP_CU_MODULE_LOAD_DATA_EX:
	case CW_OP_CU_MODULE_LOAD_FAT_BINARY:
	case CW_OP_CU_LIBRARY_LOAD_DATA: /* (CUlibrary *out, ...) */
	case CW_OP_CU_LIBRARY_LOAD_FROM_FILE:
		e->outp = PT_REGS_PARM1(ctx);
		break;
	case CW_OP_CU_MODULE_GET_FUNCTION: /* (CUfunction *out, CUmodule, const char *name) */
	case CW_OP_CU_LIBRARY_GET_KERNEL:  /* (CUkernel *out, CUlibrary, const char *name) */
		e->a[0] = PT_REGS_PARM2(ctx);
		e->outp = PT_REGS_PARM1(ctx);
		e->aux = PT_REGS_PARM3(ctx);
		break;
	default: /* cuCtxSynchronize and unknown ops: no arguments */
		break;
	}
}

CW_DEFINE_CALL_PROGS(cw_drv_entry, cw_drv_return, CW_SRC_CUDA_DRV)
