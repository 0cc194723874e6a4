// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * libcauseway-shim.so: in-process capture of CUDA runtime and driver calls.
 *
 * Preloaded (LD_PRELOAD) by `causeway trace --in-process`. Every function in
 * ops.def gets a wrapper with the real prototype that calls the real function
 * and writes one struct cw_call (bpf/events.h, the same record the uretprobe
 * emits, source CW_SRC_SHIM_*) into this thread's ring (ring.h), a file in
 * the tracer's directory mapped MAP_SHARED.
 *
 * Hot path (a traced call): two TSC reads (see "Clock" below), one TLS load, one relaxed
 * load of `tail`, ~80 bytes stored, one release store of `head`. No lock, no
 * allocation, no system call. A full ring drops the record and counts it
 * (per thread, per reason); the target never waits for the tracer.
 *
 * Cold paths: the first call of a thread creates its ring (open, ftruncate,
 * fallocate, mmap, one store per page: see cw_map_new); the first call of a
 * function resolves the real one (dlsym RTLD_NEXT, then the CUDA libraries
 * loaded RTLD_LOCAL, found with dl_iterate_phdr); fork gives the child new rings (pthread_atfork); a
 * thread's exit marks its ring closed (pthread key destructor); exec
 * re-preloads through the inherited environment.
 *
 * Why dlsym is interposed and dlopen is not: a library opened RTLD_LOCAL
 * (Python ctypes, framework plugins) is reached through dlsym(handle, name),
 * which bypasses the preloaded definition, so dlsym hands back the wrapper
 * (and remembers the real function). dlopen needs nothing: the wrappers
 * resolve lazily and retry while the real function is not loaded yet, and
 * wrapping dlopen would make the shim the caller whose RUNPATH and $ORIGIN
 * glibc uses to search, changing what the target loads.
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <link.h>
#include <linux/types.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "../bpf/events.h"
#include "ring.h"

#define CW_EXPORT __attribute__((visibility("default")))
#define CW_COLD __attribute__((cold, noinline))
#define likely(x) __builtin_expect(!!(x), 1)
#define unlikely(x) __builtin_expect(!!(x), 0)

/* Same ABI as CUDA's dim3 (three unsigned, passed by value in two registers). */
typedef struct { unsigned x, y, z; } cw_dim3;

/* The launch configurations bpf/cuda.bpf.c and bpf/driver.bpf.c read at entry
 * (cudaLaunchConfig_t, CUlaunchConfig: offsets checked against the CUDA headers
 * by the fake libraries' _Static_asserts). */
struct cw_rt_launch_cfg {
	uint32_t grid[3];
	uint32_t block[3];
	uint64_t smem;
	uint64_t stream;
};
struct cw_drv_launch_cfg {
	uint32_t grid[3];
	uint32_t block[3];
	uint32_t smem;
	uint32_t pad;
	uint64_t stream;
};

/* ---- the op table ------------------------------------------------------- */

/*
 * Every ops.def macro is one row CW_ROW(op, src, sym, variant flag, P, A,
 * a0..a3, name): CW_OP a plain export, CW_OP_PTDS/PTSZ a per-thread default
 * stream export, CW_OP_NAME a kernel lookup whose name argument is `name`.
 * Each use below defines CW_ROW for what it generates.
 */
#define CW_OP(op, src, sym, P, A, a0, a1, a2, a3) CW_ROW(op, src, sym, 0, P, A, a0, a1, a2, a3, NULL)
#define CW_OP_PTDS(op, src, sym, P, A, a0, a1, a2, a3) CW_ROW(op, src, sym, CW_F_PTDS, P, A, a0, a1, a2, a3, NULL)
#define CW_OP_PTSZ(op, src, sym, P, A, a0, a1, a2, a3) CW_ROW(op, src, sym, CW_F_PTSZ, P, A, a0, a1, a2, a3, NULL)
#define CW_OP_NAME(op, src, sym, P, A, a0, a1, a2, a3, nm) CW_ROW(op, src, sym, 0, P, A, a0, a1, a2, a3, nm)

enum {
#define CW_ROW(op, src, sym, v, P, A, a0, a1, a2, a3, nm) CW_IDX_##sym,
#include "ops.def"
#undef CW_ROW
	CW_NSYM
};

static const char *const cw_names[CW_NSYM] = {
#define CW_ROW(op, src, sym, v, P, A, a0, a1, a2, a3, nm) #sym,
#include "ops.def"
#undef CW_ROW
};

static const uint8_t cw_srcs[CW_NSYM] = {
#define CW_ROW(op, src, sym, v, P, A, a0, a1, a2, a3, nm) src,
#include "ops.def"
#undef CW_ROW
};

/* kernel launches (ops.ts kind 'launch'): sampled every Lth call (CAUSEWAY_SHIM_STACKS=N,L), as the BPF side does */
#define CW_IS_LAUNCH(op)                                                                              \
	((op) == CW_OP_CUDA_LAUNCH_KERNEL || (op) == CW_OP_CU_LAUNCH_KERNEL || (op) == CW_OP_CUDA_LAUNCH_KERNEL_EX_C || \
	 (op) == CW_OP_CUDA_LAUNCH_COOPERATIVE_KERNEL || (op) == CW_OP_CUDA_GRAPH_LAUNCH ||                \
	 (op) == CW_OP_CU_LAUNCH_KERNEL_EX || (op) == CW_OP_CU_GRAPH_LAUNCH)

/* Real functions, resolved on first use (NULL until then). */
static void *cw_real[CW_NSYM];

/* ---- shared state ------------------------------------------------------- */

static char cw_dir[512];                  /* CAUSEWAY_SHIM_DIR, "" when tracing is off */
static uint32_t cw_slots = 1u << 16;      /* CAUSEWAY_SHIM_RING_SLOTS */
static uint32_t cw_stack_every = 0;       /* CAUSEWAY_SHIM_STACKS=N,L: every Nth call of most ops (0 = never) */
static uint32_t cw_stack_every_launch = 0;/*   ... and every Lth kernel launch */
static uint32_t cw_gen;                   /* bumped in a forked child: every thread-local ring is stale */
static struct cw_shim_proc_hdr *cw_proc;  /* this process's P<pid>.proc, or NULL */
static uint32_t cw_proc_pid;
static uint64_t cw_image;                 /* this image's start time: file names stay unique across exec (same pid) */
static uint64_t cw_lost_no_proc;          /* drops with nowhere to count them (reported as unknown) */
static pthread_key_t cw_key;
static uintptr_t cw_text_lo, cw_text_hi;  /* the shim's own code: frames there are not the target's */
static void *(*cw_real_dlsym)(void *, const char *);

struct cw_tls {
	struct cw_shim_ring_hdr *r;
	uint8_t *data;
	uint32_t mask;
	uint32_t gen;
	uint32_t busy;     /* inside cw_emit: a signal handler's call is dropped, not interleaved */
	uint32_t dead;     /* the thread's key destructor ran: no ring any more */
	uint32_t tid;
	uint32_t nstack;   /* calls since the last sampled stack (launches / other ops) */
	uint32_t nstack_launch;
	uint32_t stack_seq;
	uint32_t stack_mask;
	uintptr_t stack_lo, stack_hi; /* this thread's stack: the frame walk never leaves it */
	struct cw_shim_stack *stacks;
	/* Clock: this thread's TSC -> CLOCK_MONOTONIC anchor and rate (cw_clock_fix) */
	uint64_t clk_tsc, clk_mono;
	double clk_rate;   /* ns per TSC tick; 0: not calibrated yet (calls use clock_gettime) */
};
static __thread struct cw_tls cw_t __attribute__((tls_model("initial-exec")));

struct cw_slot {
	uint32_t len;
	struct cw_call c;
	uint32_t seq;      /* low 32 bits of (index + 1): the reader checks it */
} __attribute__((packed));
_Static_assert(sizeof(struct cw_slot) == CW_SHIM_SLOT_BYTES, "slot is one drain() frame");
_Static_assert(sizeof(struct cw_shim_ring_hdr) <= CW_SHIM_HDR_BYTES, "ring header fits its page");
_Static_assert(sizeof(struct cw_shim_stack) == CW_SHIM_STACK_BYTES, "stack entry size");

static inline uint32_t cw_stack_slots(void)
{
	return cw_slots >= 16 ? cw_slots / 8 : 2;
}

static inline size_t cw_ring_bytes(uint32_t slots, uint32_t stack_slots)
{
	return CW_SHIM_HDR_BYTES + (size_t)slots * CW_SHIM_SLOT_BYTES + (size_t)stack_slots * CW_SHIM_STACK_BYTES;
}

static inline uint64_t cw_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts); /* = bpf_ktime_get_ns(): one clock for both sources */
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/*
 * Clock. Records carry CLOCK_MONOTONIC ns (= bpf_ktime_get_ns(): one clock for
 * both sources). Through the kvm-clock vDSO that read costs ~60 ns here, twice
 * per call: most of the shim's cost. With an invariant TSC (CPUID 0x80000007
 * EDX bit 8; constant rate, synchronized across CPUs) a call is stamped with
 * two rdtsc (~20 ns each) and converted: each thread keeps an anchor (a TSC
 * read paired with a clock_gettime) renewed after CW_ANCHOR_TICKS of TSC, and
 * a rate measured from the process's first anchor, so the baseline (and the
 * rate's precision) grows with the process while NTP slewing (<= 500 ppm) can
 * move a stamp by at most 500 ppm of one anchor interval (~0.5 us). Until the
 * baseline reaches CW_CAL_TICKS (~3 ms) calls use clock_gettime directly.
 * CAUSEWAY_SHIM_CLOCK=gettime forces clock_gettime (benchmarks compare both).
 */
#include <cpuid.h>
#include <x86intrin.h>
#define CW_ANCHOR_TICKS (1ull << 21) /* ~0.7 ms at 3 GHz */
#define CW_CAL_TICKS (1ull << 23)    /* ~3 ms at 3 GHz: anchor jitter (~0.1 us) / 3 ms = 3e-5 of rate error, ~20 ns over an anchor interval */
static int cw_use_tsc;
static uint64_t cw_g_tsc0, cw_g_mono0;   /* the process's first anchor */

static int cw_tsc_invariant(void)
{
	unsigned a, b, c, d;
	if (!__get_cpuid(0x80000000, &a, &b, &c, &d) || a < 0x80000007)
		return 0;
	__get_cpuid(0x80000007, &a, &b, &c, &d);
	return (d >> 8) & 1;
}

/* an anchor: the TSC at the middle of a clock_gettime; of three tries the tightest (an interrupt or a
 * preemption between the reads would put the pair microseconds apart) */
static void cw_anchor(uint64_t *tsc, uint64_t *mono)
{
	uint64_t best = UINT64_MAX;
	for (int i = 0; i < 3; i++) {
		uint64_t a = __rdtsc();
		uint64_t m = cw_now();
		uint64_t b = __rdtsc();
		if (b - a < best) {
			best = b - a;
			*tsc = a + (b - a) / 2;
			*mono = m;
		}
	}
}

/* a stamp: the TSC once this thread is calibrated (rate > 0), else CLOCK_MONOTONIC ns */
static inline uint64_t cw_stamp(double rate)
{
	return likely(rate > 0) ? __rdtsc() : cw_now();
}

/* Stamps -> CLOCK_MONOTONIC start and duration; renews the anchor (or calibrates) when due. */
static CW_COLD void cw_clock_renew(struct cw_tls *t)
{
	uint64_t tsc, mono;
	cw_anchor(&tsc, &mono);
	if (tsc - cw_g_tsc0 < CW_CAL_TICKS)
		return;
	/* anchor first, rate last: a signal handler's call in between converts with a consistent pair or not at all */
	t->clk_tsc = tsc;
	t->clk_mono = mono;
	__atomic_signal_fence(__ATOMIC_SEQ_CST);
	t->clk_rate = (double)(int64_t)(mono - cw_g_mono0) / (double)(tsc - cw_g_tsc0);
}

/* rate: the one the stamps were taken under (a nested call from a signal handler may calibrate meanwhile) */
static inline uint64_t cw_clock_fix(struct cw_tls *t, double rate, uint64_t s0, uint64_t s1, uint64_t *dur)
{
	if (unlikely(!(rate > 0))) {
		*dur = s1 - s0;
		if (cw_use_tsc)
			cw_clock_renew(t); /* calibrated from the next call on, once the baseline is long enough */
		return s0;
	}
	*dur = (uint64_t)((double)(s1 - s0) * rate);
	uint64_t ts = t->clk_mono + (uint64_t)(int64_t)((double)(int64_t)(s0 - t->clk_tsc) * rate);
	if (unlikely(s1 - t->clk_tsc > CW_ANCHOR_TICKS))
		cw_clock_renew(t); /* for the next call: this one is converted with the anchor it started under */
	return ts;
}

static void cw_proc_drop(int reason)
{
	if (cw_proc && cw_proc_pid == (uint32_t)getpid())
		__atomic_fetch_add(&cw_proc->drops[reason], 1, __ATOMIC_RELAXED);
	else
		__atomic_fetch_add(&cw_lost_no_proc, 1, __ATOMIC_RELAXED);
}

/* ---- files -------------------------------------------------------------- */

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23 /* Linux 5.14 */
#endif

/*
 * touch: the first `touch` bytes (a ring's header, slots and, with stacks on,
 * its stack area) are backed now, on the cold path, so the hot path never
 * waits for memory to be found:
 *  - fallocate reserves the tmpfs pages: a full /dev/shm fails the ring here
 *    (counted as no_ring) instead of a SIGBUS in the target on a later store;
 *  - MADV_POPULATE_WRITE maps them writable (no guest page fault later);
 *  - one store per page makes the hypervisor back it. On a VM whose host
 *    reclaims free guest pages (free page reporting; this machine), the first
 *    write to each fresh page traps to the host (~7 us) even after the guest
 *    has populated it: unprimed, that cost ~140 ns per call (80 B records,
 *    51 per page) for the ring's first lap. Measured: bench/overhead.ts, and
 *    the commit that added this. The stores write the zeros already there,
 *    before the ring's magic is published (nobody reads it yet).
 */
static void *cw_map_new(const char *name, size_t bytes, size_t touch)
{
	char path[640];
	if (!cw_dir[0] || snprintf(path, sizeof(path), "%s/%s", cw_dir, name) >= (int)sizeof(path))
		return NULL;
	int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return NULL;
	void *p = MAP_FAILED;
	if (ftruncate(fd, (off_t)bytes) == 0) {
		int err = touch ? fallocate(fd, 0, 0, (off_t)touch) : 0;
		if (err == 0 || errno == EOPNOTSUPP || errno == ENOSYS)
			p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	}
	close(fd);
	if (p == MAP_FAILED) {
		unlink(path);
		return NULL;
	}
	if (touch) {
		madvise(p, touch, MADV_POPULATE_WRITE); /* EINVAL before 5.14: the stores below fault them in */
		for (size_t o = 0; o < touch; o += 4096)
			*(volatile uint64_t *)((uint8_t *)p + o) = 0;
	}
	return p;
}

static CW_COLD void cw_proc_open(void)
{
	uint32_t pid = (uint32_t)getpid();
	char name[64];
	cw_image = cw_now();
	snprintf(name, sizeof(name), "P%u-%llx.proc", pid, (unsigned long long)cw_image);
	struct cw_shim_proc_hdr *p = cw_map_new(name, sizeof(*p), sizeof(*p));
	uint32_t parent = cw_proc_pid;
	cw_proc_pid = pid;
	cw_proc = p;
	if (!p)
		return;
	p->layout = CW_SHIM_LAYOUT;
	p->pid = pid;
	p->ppid = (uint32_t)getppid();
	p->ops = CW_NSYM;
	p->forked_from = parent;
	ssize_t n = readlink("/proc/self/exe", p->exe, sizeof(p->exe) - 1);
	if (n < 0)
		p->exe[0] = 0;
	__atomic_store_n(&p->magic, CW_SHIM_PROC_MAGIC, __ATOMIC_RELEASE);
}

/*
 * A copy of /proc/self/maps for the tracer's symbolizer: a short-lived target
 * may be gone before its first stack is symbolized. Rewritten when a thread
 * opens its ring and when dlsym hands out a wrapper (a library loaded later).
 */
static CW_COLD void cw_maps_snapshot(void)
{
	char path[640];
	if (!cw_dir[0] || !(cw_stack_every | cw_stack_every_launch))
		return;
	if (snprintf(path, sizeof(path), "%s/M%u-%llx.maps", cw_dir, cw_proc_pid, (unsigned long long)cw_image) >= (int)sizeof(path))
		return;
	int in = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
	if (in < 0)
		return;
	int out = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (out >= 0) {
		char buf[8192];
		ssize_t n;
		while ((n = read(in, buf, sizeof(buf))) > 0)
			if (write(out, buf, (size_t)n) != n)
				break;
		close(out);
	}
	close(in);
}

static CW_COLD struct cw_shim_ring_hdr *cw_ring_open(struct cw_tls *t)
{
	if (t->gen != cw_gen) { /* forked: the inherited ring is the parent's */
		t->r = NULL;
		t->dead = 0;
		t->gen = cw_gen;
	}
	if (t->dead || !cw_dir[0])
		return NULL;
	if (!cw_proc || cw_proc_pid != (uint32_t)getpid())
		cw_proc_open();
	uint32_t tid = (uint32_t)syscall(SYS_gettid);
	char name[64];
	snprintf(name, sizeof(name), "T%u-%u-%llx.ring", cw_proc_pid, tid, (unsigned long long)cw_image);
	/* the stack area is written only when stacks are sampled: backed only then */
	size_t bytes = cw_ring_bytes(cw_slots, cw_stack_slots());
	struct cw_shim_ring_hdr *r = cw_map_new(name, bytes, (cw_stack_every | cw_stack_every_launch) ? bytes : cw_ring_bytes(cw_slots, 0));
	if (!r) {
		t->dead = 1; /* do not retry on every call: each later call counts as no_ring */
		return NULL;
	}
	r->layout = CW_SHIM_LAYOUT;
	r->slots = cw_slots;
	r->slot_bytes = CW_SHIM_SLOT_BYTES;
	r->pid = cw_proc_pid;
	r->tid = tid;
	r->stack_slots = cw_stack_slots();
	__atomic_store_n(&r->magic, CW_SHIM_MAGIC, __ATOMIC_RELEASE);
	t->r = r;
	t->data = (uint8_t *)r + CW_SHIM_HDR_BYTES;
	t->mask = cw_slots - 1;
	t->tid = tid;
	t->stacks = (struct cw_shim_stack *)(t->data + (size_t)cw_slots * CW_SHIM_SLOT_BYTES);
	t->stack_mask = r->stack_slots - 1;
	t->stack_lo = t->stack_hi = 0;
	pthread_attr_t attr;
	if ((cw_stack_every | cw_stack_every_launch) && pthread_getattr_np(pthread_self(), &attr) == 0) {
		void *lo;
		size_t size;
		if (pthread_attr_getstack(&attr, &lo, &size) == 0) {
			t->stack_lo = (uintptr_t)lo;
			t->stack_hi = (uintptr_t)lo + size;
		}
		pthread_attr_destroy(&attr);
	}
	cw_maps_snapshot();
	pthread_setspecific(cw_key, t); /* non-NULL: the destructor runs at thread exit */
	return r;
}

/* Thread exit: the ring is complete; the tracer drains it and removes the file. */
static void cw_thread_exit(void *arg)
{
	struct cw_tls *t = &cw_t;
	(void)arg;
	if (t->r && t->gen == cw_gen) {
		__atomic_store_n(&t->r->state, CW_SHIM_CLOSED, __ATOMIC_RELEASE);
		munmap(t->r, cw_ring_bytes(t->mask + 1, t->stack_mask + 1));
	}
	t->r = NULL;
	t->dead = 1; /* calls from later destructors are counted, not recorded */
}

static void cw_after_fork_child(void)
{
	struct cw_tls *t = &cw_t;
	/* this thread's mapping of the parent's ring: drop it, the child writes its own */
	if (t->r)
		munmap(t->r, cw_ring_bytes(t->mask + 1, t->stack_mask + 1));
	t->r = NULL;
	__atomic_add_fetch(&cw_gen, 1, __ATOMIC_RELAXED);
	if (cw_proc)
		munmap(cw_proc, sizeof(*cw_proc));
	cw_proc = NULL;
	cw_proc_open();
}

/* ---- the hot path ------------------------------------------------------- */

/*
 * Frame-pointer walk of the calling thread, bounded by its stack: ips[0] is the
 * CUDA function, then the return addresses from the target's caller up. Called
 * 1 in N (cw_stack_every*); without frame pointers in the target the walk stops
 * at the first frame that leaves the stack or does not grow upwards.
 */
static __attribute__((noinline)) int32_t cw_take_stack(struct cw_tls *t, void *fn)
{
	uint32_t seq = ++t->stack_seq & 0x7fffffff;
	struct cw_shim_stack *st = &t->stacks[seq & t->stack_mask];
	uintptr_t fp = (uintptr_t)__builtin_frame_address(0), lo = t->stack_lo, hi = t->stack_hi;
	uint32_t n = 0;
	st->ips[n++] = (uint64_t)(uintptr_t)fn;
	while (n < CW_SHIM_STACK_DEPTH && fp >= lo && fp + 16 <= hi && (fp & 7) == 0) {
		uintptr_t next = ((uintptr_t *)fp)[0], ret = ((uintptr_t *)fp)[1];
		if (ret < 4096)
			break;
		if (ret < cw_text_lo || ret >= cw_text_hi) /* our own frames (wrapper, emit) are skipped */
			st->ips[n++] = ret;
		if (next <= fp)
			break;
		fp = next;
	}
	st->n = n;
	st->seq = seq;
	return (int32_t)seq;
}

#define CW_SHIM_PAYLOAD (CW_SHIM_SLOT_BYTES - 8)
#define CW_SHIM_NAME_SLOTS ((sizeof(struct cw_func_name) + CW_SHIM_PAYLOAD - 1) / CW_SHIM_PAYLOAD)

/*
 * The cw_func_name record of a successful cuModuleGetFunction/cuLibraryGetKernel
 * (bpf/driver.bpf.c cw_emit_func_name): slots h .. h + CW_SHIM_NAME_SLOTS - 1,
 * published with the call record that follows it (ring.h: multi-slot records).
 */
static __attribute__((noinline)) void cw_put_name(struct cw_tls *t, uint64_t h, uint32_t pid, uint64_t ts,
						   uint64_t handle, const char *name)
{
	struct cw_func_name n;
	memset(&n, 0, sizeof(n));
	n.hdr.ts_ns = ts;
	n.hdr.tgid = pid;
	n.hdr.tid = t->tid;
	n.hdr.op = CW_OP_FUNC_NAME;
	n.hdr.source = CW_SRC_SHIM_DRV;
	n.hdr.version = CW_EVENT_VERSION;
	n.handle = handle;
	memcpy(n.name, name, strnlen(name, CW_FUNC_NAME_LEN - 1));
	const uint8_t *b = (const uint8_t *)&n;
	for (uint32_t j = 0; j < CW_SHIM_NAME_SLOTS; j++) {
		uint8_t *s = t->data + (size_t)((h + j) & t->mask) * CW_SHIM_SLOT_BYTES;
		uint32_t len = j == 0 ? (uint32_t)sizeof(n) : CW_SHIM_CONT, seq = (uint32_t)(h + j + 1);
		size_t off = (size_t)j * CW_SHIM_PAYLOAD, k = sizeof(n) - off < CW_SHIM_PAYLOAD ? sizeof(n) - off : CW_SHIM_PAYLOAD;
		memcpy(s, &len, 4);
		memcpy(s + 4, b + off, k);
		memset(s + 4 + k, 0, CW_SHIM_PAYLOAD - k);
		memcpy(s + CW_SHIM_SLOT_BYTES - 4, &seq, 4);
	}
}

/* name: a kernel lookup's name (CW_OP_NAME rows, call succeeded): a cw_func_name record for handle a1 goes first */
static inline void cw_emit(uint16_t op, uint8_t source, uint64_t ts, uint64_t dur, uint64_t a0,
			   uint64_t a1, uint64_t a2, uint64_t a3, int32_t ret, uint32_t flags, void *fn,
			   const char *name)
{
	struct cw_tls *t = &cw_t;
	if (unlikely(t->busy)) {
		/* a signal handler interrupted this thread inside cw_emit */
		if (t->r && t->gen == cw_gen)
			__atomic_fetch_add(&t->r->drops[CW_SHIM_LOSS_REENTRANT], 1, __ATOMIC_RELAXED);
		else
			cw_proc_drop(CW_SHIM_PLOSS_NO_RING);
		return;
	}
	t->busy = 1;
	__atomic_signal_fence(__ATOMIC_SEQ_CST);
	struct cw_shim_ring_hdr *r = t->r;
	if (unlikely(!r || t->gen != __atomic_load_n(&cw_gen, __ATOMIC_RELAXED)))
		r = cw_ring_open(t);
	if (unlikely(!r)) {
		cw_proc_drop(CW_SHIM_PLOSS_NO_RING);
		goto out;
	}
	r->calls++; /* one writer: this thread */
	uint64_t h = r->head;
	uint64_t need = unlikely(name != NULL) ? 1 + CW_SHIM_NAME_SLOTS : 1;
	/* no room: the call is dropped and counted (a name goes only with its call) */
	if (unlikely(need > (uint64_t)t->mask + 1 || h - __atomic_load_n(&r->tail, __ATOMIC_ACQUIRE) > (uint64_t)t->mask + 1 - need)) {
		r->drops[CW_SHIM_LOSS_RING_FULL]++;
		goto out;
	}
	if (unlikely(name != NULL)) {
		cw_put_name(t, h, r->pid, ts, a1, name);
		h += CW_SHIM_NAME_SLOTS;
	}
	int32_t stack_id = -1;
	int launch = CW_IS_LAUNCH(op);
	uint32_t every = launch ? cw_stack_every_launch : cw_stack_every;
	if (unlikely(every) && t->stack_hi && ++*(launch ? &t->nstack_launch : &t->nstack) >= every) {
		*(launch ? &t->nstack_launch : &t->nstack) = 0;
		stack_id = cw_take_stack(t, fn);
		flags |= CW_F_STACK_SAMPLED;
	}
	struct cw_slot *s = (struct cw_slot *)(t->data + (size_t)(h & t->mask) * CW_SHIM_SLOT_BYTES);
	s->len = sizeof(struct cw_call);
	s->c.hdr.ts_ns = ts;
	s->c.hdr.tgid = r->pid;
	s->c.hdr.tid = t->tid;
	s->c.hdr.op = op;
	s->c.hdr.source = source;
	s->c.hdr.version = CW_EVENT_VERSION;
	s->c.hdr.flags = flags | (ret != 0 ? CW_F_ERROR : 0);
	s->c.dur_ns = dur;
	s->c.a[0] = a0;
	s->c.a[1] = a1;
	s->c.a[2] = a2;
	s->c.a[3] = a3;
	s->c.ret = ret;
	s->c.stack_id = stack_id;
	s->seq = (uint32_t)(h + 1);
	/*
	 * Publish. x86-64 is TSO: stores become visible in program order, so a
	 * reader that sees head = h + 1 sees the whole slot; the release store
	 * also stops the compiler from sinking the slot stores below it. The
	 * reader (src/capture/inproc-source.ts) reads head, then the slots, then
	 * stores tail; the acquire load of tail above pairs with that store, so
	 * a slot is never rewritten while it is being read.
	 */
	__atomic_store_n(&r->head, h + 1, __ATOMIC_RELEASE); /* the name slots (if any) and the call at once */
out:
	__atomic_signal_fence(__ATOMIC_SEQ_CST);
	t->busy = 0;
}

/* ---- resolving the real functions -------------------------------------- */

struct cw_found {
	const char *want; /* "libcudart" or "libcuda." */
	char paths[8][512];
	int n;
};

static int cw_collect(struct dl_phdr_info *info, size_t size, void *arg)
{
	struct cw_found *f = arg;
	(void)size;
	const char *name = info->dlpi_name;
	if (!name || !name[0] || f->n >= 8)
		return 0;
	const char *base = strrchr(name, '/');
	base = base ? base + 1 : name;
	if (strncmp(base, f->want, strlen(f->want)) == 0 && strlen(name) < sizeof(f->paths[0]))
		strcpy(f->paths[f->n++], name);
	return 0;
}

static void *cw_real_sym(void *h, const char *name)
{
	if (!cw_real_dlsym) {
		cw_real_dlsym = (void *(*)(void *, const char *))dlvsym(RTLD_NEXT, "dlsym", "GLIBC_2.34");
		if (!cw_real_dlsym)
			cw_real_dlsym = (void *(*)(void *, const char *))dlvsym(RTLD_NEXT, "dlsym", "GLIBC_2.2.5");
		if (!cw_real_dlsym)
			return NULL;
	}
	return cw_real_dlsym(h, name);
}

static void cw_set_real(int i, void *p)
{
	void *expected = NULL;
	if (__atomic_compare_exchange_n(&cw_real[i], &expected, p, 0, __ATOMIC_RELEASE, __ATOMIC_RELAXED) && cw_proc)
		__atomic_fetch_add(&cw_proc->resolved, 1, __ATOMIC_RELAXED);
}

/* First call of a function (or every call while its library is not loaded). */
static CW_COLD void *cw_resolve(int i)
{
	void *p = cw_real_sym(RTLD_NEXT, cw_names[i]);
	if (!p) {
		/* loaded RTLD_LOCAL (ctypes, plugins): not in the global scope */
		struct cw_found f = { .want = cw_srcs[i] == CW_SRC_CUDA_RT ? "libcudart" : "libcuda.", .n = 0 };
		dl_iterate_phdr(cw_collect, &f);
		for (int k = 0; k < f.n && !p; k++) {
			void *h = dlopen(f.paths[k], RTLD_LAZY | RTLD_NOLOAD);
			if (!h)
				continue;
			p = cw_real_sym(h, cw_names[i]);
			dlclose(h);
		}
	}
	if (p)
		cw_set_real(i, p);
	return __atomic_load_n(&cw_real[i], __ATOMIC_ACQUIRE);
}

static CW_COLD int cw_unresolved(void)
{
	cw_proc_drop(CW_SHIM_PLOSS_UNRESOLVED);
	return 3; /* cudaErrorInitializationError / CUDA_ERROR_NOT_INITIALIZED */
}

/* ---- the wrappers (one per ops.def line) ------------------------------- */

#define CW_U(x) ((uint64_t)(uintptr_t)(x))
#define OUT(p) (r == 0 && (p) ? CW_U(*(p)) : 0)
#define DIM(d) ((uint64_t)(d).x * (d).y * (d).z)
#define CW_SHIM_SRC(s) ((s) == CW_SRC_CUDA_RT ? CW_SRC_SHIM_RT : CW_SRC_SHIM_DRV)

/*
 * Launch configs: a0..a3 as the BPF side writes them. A NULL config is what a
 * failed bpf_probe_read_user is there: slots 0, CW_F_OUT_READ_FAIL (fl_ is the
 * wrapper's flags word). The real function has read the config already, so a
 * non-NULL one is readable.
 */
#define CW_CFG_MISS (fl_ |= CW_F_OUT_READ_FAIL, (uint64_t)0)
#define CW_CFG_GRID(c) ((c) ? (uint64_t)(c)->grid[0] * (c)->grid[1] * (c)->grid[2] : CW_CFG_MISS)
#define CW_CFG_BLOCK_SMEM(c) ((c) ? (((uint64_t)(c)->block[0] * (c)->block[1] * (c)->block[2]) & 0xffffffffull) | ((uint64_t)(c)->smem << 32) : 0)
#define CW_CFG_STREAM(c) ((c) ? (c)->stream : 0)
#define RT_CFG_GRID CW_CFG_GRID
#define RT_CFG_BLOCK_SMEM CW_CFG_BLOCK_SMEM
#define RT_CFG_STREAM CW_CFG_STREAM
#define DRV_CFG_GRID CW_CFG_GRID
#define DRV_CFG_BLOCK_SMEM CW_CFG_BLOCK_SMEM
#define DRV_CFG_STREAM CW_CFG_STREAM

/* cudaMemcpy3DParms / cudaMemcpy3DPeerParms fields at byte offsets (bpf/cuda.bpf.c CW_3D_*); NULL reads as 0 like the BPF read */
static inline uint64_t cw_rd64(const void *p, size_t off)
{
	uint64_t v;
	memcpy(&v, (const char *)p + off, sizeof(v));
	return v;
}
#define P3D_BYTES(p, off) ((p) ? cw_rd64(p, off) * cw_rd64(p, (off) + 8) * cw_rd64(p, (off) + 16) : 0)
#define P3D_KIND(p) ((p) ? (uint32_t)cw_rd64(p, 152) : 0)
#define P3D_PTR(p, off) ((p) ? cw_rd64(p, off) : 0)

#define CW_ROW(op, src, sym, vflag, P, A, a0, a1, a2, a3, nm)                                 \
	typedef int(*cw_fn_##sym) P;                                                          \
	CW_EXPORT int sym P                                                                   \
	{                                                                                     \
		cw_fn_##sym f_ = (cw_fn_##sym)__atomic_load_n(&cw_real[CW_IDX_##sym], __ATOMIC_ACQUIRE); \
		if (unlikely(!f_)) {                                                          \
			f_ = (cw_fn_##sym)cw_resolve(CW_IDX_##sym);                           \
			if (!f_)                                                              \
				return cw_unresolved();                                       \
		}                                                                             \
		struct cw_tls *ct_ = &cw_t;                                                   \
		double rt_ = ct_->clk_rate;                                                   \
		uint64_t t0_ = cw_stamp(rt_);                                                 \
		int r = f_ A;                                                                 \
		uint64_t t1_ = cw_stamp(rt_), d_;                                             \
		t0_ = cw_clock_fix(ct_, rt_, t0_, t1_, &d_);                                  \
		uint32_t fl_ = (vflag);                                                       \
		uint64_t x0_ = CW_U(a0);                                                      \
		uint64_t x1_ = CW_U(a1);                                                      \
		uint64_t x2_ = CW_U(a2);                                                      \
		uint64_t x3_ = CW_U(a3);                                                      \
		const char *nm_ = (nm);                                                       \
		cw_emit(op, CW_SHIM_SRC(src), t0_, d_, x0_, x1_, x2_, x3_, r, fl_,            \
			(void *)f_, r == 0 ? nm_ : NULL);                                     \
		return r;                                                                     \
	}
#include "ops.def"
#undef CW_ROW

static void *const cw_wrappers[CW_NSYM] = {
#define CW_ROW(op, src, sym, v, P, A, a0, a1, a2, a3, nm) (void *)sym,
#include "ops.def"
#undef CW_ROW
};

static int cw_index(const char *name)
{
	if (!name || name[0] != 'c' || name[1] != 'u')
		return -1;
	for (int i = 0; i < CW_NSYM; i++)
		if (strcmp(cw_names[i], name) == 0)
			return i;
	return -1;
}

/*
 * dlsym(handle, probed name) returns the wrapper and remembers the real
 * function. RTLD_NEXT is passed straight through as a sibling call, so glibc
 * still sees the target's return address and searches after the caller.
 */
CW_EXPORT void *dlsym(void *h, const char *name)
{
	if (h == RTLD_NEXT)
		return cw_real_sym(h, name);
	void *p = cw_real_sym(h, name);
	int i = p ? cw_index(name) : -1;
	if (i < 0 || p == cw_wrappers[i])
		return p;
	if (!__atomic_load_n(&cw_real[i], __ATOMIC_ACQUIRE) && cw_proc)
		cw_maps_snapshot();
	cw_set_real(i, p);
	/* a second library with the same name (two runtimes loaded) keeps its own, unwrapped */
	return __atomic_load_n(&cw_real[i], __ATOMIC_ACQUIRE) == p ? cw_wrappers[i] : p;
}

/*
 * Driver entry points handed out as function pointers: replace a probed one
 * by its wrapper. `name` is the base name ("cuMemAlloc"); the pointer is
 * whichever version the driver chose, matched by address.
 */
static void cw_wrap_entry(const char *name, void **pfn)
{
	if (!name || !pfn || !*pfn || name[0] != 'c' || name[1] != 'u')
		return;
	/* the driver may hand out the per-thread default stream export (flags, or a per-thread build): try those too */
	static const char *const sfx[6] = { "_v2", "", "_v2_ptds", "_ptds", "_v2_ptsz", "_ptsz" };
	int cands[6], named = 0;
	for (int k = 0; k < 6; k++) {
		char nm[128];
		snprintf(nm, sizeof(nm), "%s%s", name, sfx[k]);
		cands[k] = cw_index(nm);
		named |= cands[k] >= 0;
	}
	for (int k = 0; k < 6; k++) {
		int i = cands[k];
		if (i < 0)
			continue;
		if (*pfn == cw_wrappers[i])
			return;
		void *real = __atomic_load_n(&cw_real[i], __ATOMIC_ACQUIRE);
		if (!real)
			real = cw_resolve(i);
		if (real == *pfn) {
			*pfn = cw_wrappers[i];
			if (cw_proc)
				__atomic_fetch_add(&cw_proc->gpa_wrapped, 1, __ATOMIC_RELAXED);
			return;
		}
	}
	/* no address matched: a plain name whose library cannot be searched (dlopen'ed privately) takes the pointer as its real function */
	for (int k = 0; k < 2; k++) {
		int i = cands[k];
		if (i < 0 || __atomic_load_n(&cw_real[i], __ATOMIC_ACQUIRE))
			continue;
		cw_set_real(i, *pfn);
		if (__atomic_load_n(&cw_real[i], __ATOMIC_ACQUIRE) == *pfn) {
			*pfn = cw_wrappers[i];
			if (cw_proc)
				__atomic_fetch_add(&cw_proc->gpa_wrapped, 1, __ATOMIC_RELAXED);
			return;
		}
	}
	if (named && cw_proc)
		__atomic_fetch_add(&cw_proc->gpa_unwrapped, 1, __ATOMIC_RELAXED);
}

#define CW_ENTRY_POINT(sym, P, A, name, pfn)                                           \
	typedef int(*cw_ep_##sym) P;                                                   \
	static cw_ep_##sym cw_ep_real_##sym;                                           \
	CW_EXPORT int sym P                                                            \
	{                                                                              \
		if (!cw_ep_real_##sym)                                                 \
			cw_ep_real_##sym = (cw_ep_##sym)cw_resolve_any(#sym);          \
		if (!cw_ep_real_##sym)                                                 \
			return cw_unresolved();                                        \
		int r = cw_ep_real_##sym A;                                            \
		if (r == 0)                                                            \
			cw_wrap_entry(name, pfn);                                      \
		return r;                                                              \
	}

static void *cw_resolve_any(const char *sym)
{
	void *p = cw_real_sym(RTLD_NEXT, sym);
	if (p)
		return p;
	struct cw_found f = { .want = sym[2] == 'd' ? "libcudart" : "libcuda.", .n = 0 };
	dl_iterate_phdr(cw_collect, &f);
	for (int k = 0; k < f.n && !p; k++) {
		void *h = dlopen(f.paths[k], RTLD_LAZY | RTLD_NOLOAD);
		if (h) {
			p = cw_real_sym(h, sym);
			dlclose(h);
		}
	}
	return p;
}

CW_ENTRY_POINT(cuGetProcAddress, (const char *s, void **pfn, int v, uint64_t fl), (s, pfn, v, fl), s, pfn)
CW_ENTRY_POINT(cuGetProcAddress_v2, (const char *s, void **pfn, int v, uint64_t fl, int *st), (s, pfn, v, fl, st), s, pfn)
CW_ENTRY_POINT(cudaGetDriverEntryPoint, (const char *s, void **pfn, unsigned long long fl, int *st), (s, pfn, fl, st), s, pfn)
CW_ENTRY_POINT(cudaGetDriverEntryPointByVersion, (const char *s, void **pfn, unsigned v, unsigned long long fl, int *st), (s, pfn, v, fl, st), s, pfn)
/* what code built with --default-stream per-thread calls instead */
CW_ENTRY_POINT(cudaGetDriverEntryPoint_ptsz, (const char *s, void **pfn, unsigned long long fl, int *st), (s, pfn, fl, st), s, pfn)
CW_ENTRY_POINT(cudaGetDriverEntryPointByVersion_ptsz, (const char *s, void **pfn, unsigned v, unsigned long long fl, int *st), (s, pfn, v, fl, st), s, pfn)

/* ---- start-up ----------------------------------------------------------- */

static int cw_find_text(struct dl_phdr_info *info, size_t size, void *arg)
{
	uintptr_t me = (uintptr_t)arg;
	(void)size;
	for (int i = 0; i < info->dlpi_phnum; i++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
		uintptr_t lo = info->dlpi_addr + ph->p_vaddr, hi = lo + ph->p_memsz;
		if (ph->p_type == PT_LOAD && (ph->p_flags & PF_X) && me >= lo && me < hi) {
			cw_text_lo = lo;
			cw_text_hi = hi;
			return 1;
		}
	}
	return 0;
}

__attribute__((constructor)) static void cw_init(void)
{
	dl_iterate_phdr(cw_find_text, (void *)(uintptr_t)cw_init);
	/* resolve the real dlsym now, so dlsym(RTLD_NEXT) is a sibling call from the first use */
	cw_real_sym(RTLD_DEFAULT, "dlsym");
	const char *d = getenv("CAUSEWAY_SHIM_DIR");
	if (d && strlen(d) < sizeof(cw_dir))
		strcpy(cw_dir, d);
	const char *s = getenv("CAUSEWAY_SHIM_RING_SLOTS");
	if (s) {
		unsigned long v = strtoul(s, NULL, 10);
		if (v >= 2 && v <= (1ul << 24) && (v & (v - 1)) == 0)
			cw_slots = (uint32_t)v;
	}
	const char *st = getenv("CAUSEWAY_SHIM_STACKS"); /* "N,L" */
	if (st) {
		char *end;
		cw_stack_every = (uint32_t)strtoul(st, &end, 10);
		cw_stack_every_launch = *end == ',' ? (uint32_t)strtoul(end + 1, NULL, 10) : cw_stack_every;
	}
	const char *ck = getenv("CAUSEWAY_SHIM_CLOCK");
	cw_use_tsc = cw_tsc_invariant() && !(ck && !strcmp(ck, "gettime"));
	if (cw_use_tsc)
		cw_anchor(&cw_g_tsc0, &cw_g_mono0);
	pthread_key_create(&cw_key, cw_thread_exit);
	pthread_atfork(NULL, NULL, cw_after_fork_child);
	if (cw_dir[0])
		cw_proc_open();
}
