// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * cublas.bpf.c: cuBLAS (libcublas.so.N) and cuBLASLt (libcublasLt.so.N)
 * calls. Same entry/return pair as cuda.bpf.c (calls.bpf.h), records tagged
 * CW_SRC_CUBLAS. Every GEMM fills the slots events.h describes (CW_GEMM_*):
 * m|n, k|batch (26 bits each), the packed types/transposes, and the stream.
 *
 * A cuBLAS GEMM names no stream: the handle is bound to one by
 * cublasSetStream. Its return stores (tgid, handle) -> stream in cw_blas_state
 * and a GEMM's entry looks the handle up (CW_GEMM_STREAM_UNKNOWN when it was
 * bound before tracing started: a3 = 0, the handle's default stream).
 *
 * cublasLtMatmul takes its shapes from descriptors that are opaque (their
 * layout is not public), so they are not read. Their creation calls are
 * public and carry the numbers: cublasLtMatrixLayoutCreate(type, rows, cols)
 * and cublasLtMatmulDescCreate(computeType) store (tgid, descriptor) -> what
 * they were created with, and the matmul's entry joins its A, B, C and
 * compute descriptors against that (PyTorch creates them per call). m, n come
 * from C's rows and cols, k from A's other dimension; transa/transb are
 * inferred from the shapes (unknown when they cannot tell, e.g. m == k).
 * Descriptors created before tracing started give CW_GEMM_SHAPE_UNKNOWN.
 * Batch counts and transposes set as descriptor attributes are not probed.
 *
 * x86-64 SysV ABI: six integer arguments in registers (r9 is the 6th), the
 * 7th at [sp+8], the Nth at [sp+8*(N-6)] at entry; an int in a stack slot
 * has garbage in its upper 4 bytes. The `_64` exports (cookie variant
 * CW_VARIANT_ILP64) pass the same arguments as int64_t in the same places.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

char LICENSE[] SEC("license") = "Dual BSD/GPL";

#define CW_AFTER_CALL(ctx, op, e, ret, pid_tgid) cw_blas_after(op, e, ret, pid_tgid)

struct cw_entry;
static __always_inline void cw_blas_after(__u32 op, struct cw_entry *e, __s32 ret, __u64 pid_tgid);

#include "calls.bpf.h"

/* libbpf 1.1's bpf_tracing.h stops at PT_REGS_PARM5: the 6th argument is r9 */
#define CW_PARM6(ctx) ((ctx)->r9)
/* the Nth integer argument (N >= 7) at entry */
#define CW_STACK_ARG(sp, n) cw_user_u64((sp) + 8 * ((n) - 6))

/* cw_blas_state kinds: what a pointer of a process was bound to or created as */
enum cw_blas_kind {
	CW_BLAS_HANDLE = 1, /* cublasHandle_t -> stream (cublasSetStream) */
	CW_BLAS_LAYOUT = 2, /* cublasLtMatrixLayout_t -> type, rows, cols */
	CW_BLAS_DESC = 3,   /* cublasLtMatmulDesc_t -> compute type */
};

struct cw_blas_key {
	__u64 ptr;
	__u32 tgid;
	__u32 kind;
};

struct cw_blas_val {
	__u64 a; /* stream | rows | compute type */
	__u64 b; /* cols */
	__u32 type;
	__u32 pad;
};

/* LRU: descriptors are created and destroyed per call (destruction is not
 * probed), so stale entries age out; a pointer reused by a new creation is
 * overwritten before any matmul can use it. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, struct cw_blas_key);
	__type(value, struct cw_blas_val);
} cw_blas_state SEC(".maps");

static __always_inline struct cw_blas_val *cw_blas_get(__u64 ptr, __u32 kind)
{
	struct cw_blas_key k = { .ptr = ptr, .tgid = bpf_get_current_pid_tgid() >> 32, .kind = kind };
	if (!ptr)
		return 0;
	return bpf_map_lookup_elem(&cw_blas_state, &k);
}

/* a dimension for the 26-bit fields: ints of the plain exports, int64 of the _64 ones; negative -> 0, too big -> clamped */
static __always_inline __u64 cw_dim(__u64 v, bool ilp64, __u64 *flags)
{
	__s64 x = ilp64 ? (__s64)v : (__s64)(__s32)v;
	if (x < 0)
		return 0;
	if (x > CW_GEMM_DIM_MAX) {
		*flags |= CW_GEMM_CLAMPED;
		return CW_GEMM_DIM_MAX;
	}
	return x;
}

static __always_inline __u64 cw_types(__u32 at, __u32 bt, __u32 ct, __u32 comp, __u32 ta, __u32 tb)
{
	return (__u64)(at & 0xff) | ((__u64)(bt & 0xff) << 8) | ((__u64)(ct & 0xff) << 16) | ((__u64)(comp & 0xff) << 24) |
	       ((__u64)(ta & 0xf) << 32) | ((__u64)(tb & 0xf) << 36);
}

/* a0..a3 of a cuBLAS (handle-based) GEMM: the stream comes from the handle's binding */
static __always_inline void cw_gemm(struct cw_entry *e, __u64 handle, __u64 ta, __u64 tb, __u64 m, __u64 n, __u64 k, __u64 batch,
				    __u32 at, __u32 bt, __u32 ct, __u32 comp, bool ilp64)
{
	__u64 flags = 0;
	e->a[0] = cw_dim(m, ilp64, &flags) | (cw_dim(n, ilp64, &flags) << CW_GEMM_DIM_BITS);
	e->a[1] = cw_dim(k, ilp64, &flags) | (cw_dim(batch, ilp64, &flags) << CW_GEMM_DIM_BITS);
	struct cw_blas_val *h = cw_blas_get(handle, CW_BLAS_HANDLE);
	if (h)
		e->a[3] = h->a;
	else
		flags |= CW_GEMM_STREAM_UNKNOWN;
	e->a[2] = cw_types(at, bt, ct, comp, (__u32)ta, (__u32)tb) | flags;
}

/*
 * cublasLtMatmul: shapes from the layouts' creation. Column-major: C is m x n;
 * A is m x k (N) or k x m (T); B is k x n (N) or n x k (T).
 */
static __always_inline void cw_lt_matmul(struct cw_entry *e, __u64 desc, __u64 adesc, __u64 bdesc, __u64 cdesc)
{
	__u32 at = CW_GEMM_UNKNOWN_TYPE, bt = CW_GEMM_UNKNOWN_TYPE, ct = CW_GEMM_UNKNOWN_TYPE, comp = CW_GEMM_UNKNOWN_TYPE;
	__u32 ta = CW_GEMM_UNKNOWN_OP, tb = CW_GEMM_UNKNOWN_OP;
	__u64 flags = 0, m = 0, n = 0, k = 0;
	struct cw_blas_val *d = cw_blas_get(desc, CW_BLAS_DESC);
	if (d)
		comp = (__u32)d->a;
	struct cw_blas_val *c = cw_blas_get(cdesc, CW_BLAS_LAYOUT);
	struct cw_blas_val *a = cw_blas_get(adesc, CW_BLAS_LAYOUT);
	struct cw_blas_val *b = cw_blas_get(bdesc, CW_BLAS_LAYOUT);
	if (c) {
		ct = c->type;
		m = c->a;
		n = c->b;
	}
	if (a)
		at = a->type;
	if (b)
		bt = b->type;
	if (c && a) {
		if (a->a == m) {
			k = a->b;
			if (a->b != m)
				ta = 0; /* CUBLAS_OP_N */
		} else if (a->b == m) {
			k = a->a;
			ta = 1; /* CUBLAS_OP_T */
		}
	}
	if (c && b && k) {
		bool nn = b->a == k && b->b == n, tt = b->a == n && b->b == k;
		if (nn && !tt)
			tb = 0;
		else if (tt && !nn)
			tb = 1;
	}
	if (!m || !n || !k)
		flags |= CW_GEMM_SHAPE_UNKNOWN;
	e->a[0] = cw_dim(m, true, &flags) | (cw_dim(n, true, &flags) << CW_GEMM_DIM_BITS);
	e->a[1] = cw_dim(k, true, &flags); /* batch 0: unknown (a layout attribute) */
	e->a[2] = cw_types(at, bt, ct, comp, ta, tb) | flags;
}

static __always_inline void cw_capture(struct pt_regs *ctx, __u32 op, struct cw_entry *e)
{
	__u64 sp = PT_REGS_SP(ctx);
	bool ilp64 = ((__u32)bpf_get_attach_cookie(ctx) >> CW_COOKIE_VARIANT_SHIFT) == CW_VARIANT_ILP64;

	switch (op) {
	case CW_OP_CUBLAS_GEMM_EX:
		/* (handle, transa, transb, m, n, k, alpha, A, Atype, lda, B, Btype, ldb, beta, C, Ctype, ldc, computeType, algo) */
		cw_gemm(e, PT_REGS_PARM1(ctx), PT_REGS_PARM2(ctx), PT_REGS_PARM3(ctx), PT_REGS_PARM4(ctx), PT_REGS_PARM5(ctx), CW_PARM6(ctx), 1,
			(__u32)CW_STACK_ARG(sp, 9), (__u32)CW_STACK_ARG(sp, 12), (__u32)CW_STACK_ARG(sp, 16), (__u32)CW_STACK_ARG(sp, 18), ilp64);
		break;
	case CW_OP_CUBLAS_GEMM_STRIDED_BATCHED_EX:
		/* (handle, transa, transb, m, n, k, alpha, A, Atype, lda, strideA, B, Btype, ldb, strideB, beta,
		 *  C, Ctype, ldc, strideC, batchCount, computeType, algo) */
		cw_gemm(e, PT_REGS_PARM1(ctx), PT_REGS_PARM2(ctx), PT_REGS_PARM3(ctx), PT_REGS_PARM4(ctx), PT_REGS_PARM5(ctx), CW_PARM6(ctx),
			CW_STACK_ARG(sp, 21), (__u32)CW_STACK_ARG(sp, 9), (__u32)CW_STACK_ARG(sp, 13), (__u32)CW_STACK_ARG(sp, 18),
			(__u32)CW_STACK_ARG(sp, 22), ilp64);
		break;
	case CW_OP_CUBLAS_SGEMM: /* (handle, transa, transb, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc): float, CUBLAS_COMPUTE_32F */
		cw_gemm(e, PT_REGS_PARM1(ctx), PT_REGS_PARM2(ctx), PT_REGS_PARM3(ctx), PT_REGS_PARM4(ctx), PT_REGS_PARM5(ctx), CW_PARM6(ctx), 1,
			0 /* CUDA_R_32F */, 0, 0, 68 /* CUBLAS_COMPUTE_32F */, ilp64);
		break;
	case CW_OP_CUBLAS_HGEMM: /* same arguments, __half: CUDA_R_16F, CUBLAS_COMPUTE_16F */
		cw_gemm(e, PT_REGS_PARM1(ctx), PT_REGS_PARM2(ctx), PT_REGS_PARM3(ctx), PT_REGS_PARM4(ctx), PT_REGS_PARM5(ctx), CW_PARM6(ctx), 1,
			2 /* CUDA_R_16F */, 2, 2, 64 /* CUBLAS_COMPUTE_16F */, ilp64);
		break;
	case CW_OP_CUBLAS_LT_MATMUL:
		/* (lightHandle, computeDesc, alpha, A, Adesc, B, Bdesc, beta, C, Cdesc, D, Ddesc, algo, workspace, workspaceSize, stream) */
		cw_lt_matmul(e, PT_REGS_PARM2(ctx), PT_REGS_PARM5(ctx), CW_STACK_ARG(sp, 7), CW_STACK_ARG(sp, 10));
		e->a[3] = CW_STACK_ARG(sp, 16);
		break;
	case CW_OP_CUBLAS_SET_STREAM: /* (handle, cudaStream_t) */
		e->a[0] = PT_REGS_PARM1(ctx);
		e->a[3] = PT_REGS_PARM2(ctx);
		break;
	case CW_OP_CUBLAS_LT_MATRIX_LAYOUT_CREATE: /* (cublasLtMatrixLayout_t *out, cudaDataType type, uint64_t rows, uint64_t cols, int64_t ld) */
		e->outp = PT_REGS_PARM1(ctx);
		e->a[0] = PT_REGS_PARM3(ctx);
		e->a[2] = PT_REGS_PARM4(ctx);
		e->a[3] = (__u32)PT_REGS_PARM2(ctx);
		break;
	case CW_OP_CUBLAS_LT_MATMUL_DESC_CREATE: /* (cublasLtMatmulDesc_t *out, cublasComputeType_t, cudaDataType_t scaleType) */
		e->outp = PT_REGS_PARM1(ctx);
		e->a[0] = (__u32)PT_REGS_PARM2(ctx);
		e->a[2] = (__u32)PT_REGS_PARM3(ctx);
		break;
	default:
		break;
	}
}

/* At a successful return: remember what a handle was bound to, or what a descriptor was created with. */
static __always_inline void cw_blas_after(__u32 op, struct cw_entry *e, __s32 ret, __u64 pid_tgid)
{
	struct cw_blas_key k = { .tgid = pid_tgid >> 32 };
	struct cw_blas_val v = {};

	if (ret != 0)
		return;
	if (op == CW_OP_CUBLAS_SET_STREAM) {
		k.ptr = e->a[0];
		k.kind = CW_BLAS_HANDLE;
		v.a = e->a[3];
	} else if (op == CW_OP_CUBLAS_LT_MATRIX_LAYOUT_CREATE || op == CW_OP_CUBLAS_LT_MATMUL_DESC_CREATE) {
		k.ptr = cw_user_u64(e->outp);
		k.kind = op == CW_OP_CUBLAS_LT_MATMUL_DESC_CREATE ? CW_BLAS_DESC : CW_BLAS_LAYOUT;
		v.a = e->a[0];
		v.b = e->a[2];
		v.type = (__u32)e->a[3];
	} else {
		return;
	}
	if (k.ptr)
		bpf_map_update_elem(&cw_blas_state, &k, &v, BPF_ANY);
}

CW_DEFINE_CALL_PROGS(cw_cublas_entry, cw_cublas_return, CW_SRC_CUBLAS)
