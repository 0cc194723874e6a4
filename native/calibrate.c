// SPDX-License-Identifier: Apache-2.0
/*
 * calibrate.c: targets for measuring, at trace start, what a call probe costs
 * the probed thread (src/probe/calibrate.ts). Three empty functions, one per
 * first-instruction class the kernel handles differently on x86-64
 * (src/discover/elf.ts uprobeCostClass): `push %rbp` (emulated), endbr64
 * (single-stepped out of line) and a 5-byte nop (trampoline). They are
 * exported (default visibility, unlike the rest of the addon) so the tracer
 * can resolve their file offsets in causeway.node and attach the very probe
 * programs it uses on CUDA libraries to them.
 *
 * calibrateCalls(target, n, threads): n calls of one target from each of
 * `threads` threads released together, timed around the whole loop
 * by each thread; returns each thread's elapsed ns. Run once unprobed and once
 * probed, the difference is the probe's whole cost per call to the caller; the
 * probe's own records (their dur_ns) say how much of it falls inside the
 * recorded duration.
 */
#include "causeway.h"

#include <pthread.h>
#include <time.h>

#if defined(__x86_64__)
__asm__(".text\n"
	".globl cw_calib_push\n.type cw_calib_push,@function\n.p2align 4\n"
	"cw_calib_push:\n\tpush %rbp\n\tpop %rbp\n\tret\n.size cw_calib_push, .-cw_calib_push\n"
	".globl cw_calib_endbr\n.type cw_calib_endbr,@function\n.p2align 4\n"
	"cw_calib_endbr:\n\t.byte 0xf3,0x0f,0x1e,0xfa\n\tret\n.size cw_calib_endbr, .-cw_calib_endbr\n"
	".globl cw_calib_nop5\n.type cw_calib_nop5,@function\n.p2align 4\n"
	"cw_calib_nop5:\n\t.byte 0x0f,0x1f,0x44,0x00,0x00\n\tret\n.size cw_calib_nop5, .-cw_calib_nop5\n");
void cw_calib_push(void);
void cw_calib_endbr(void);
void cw_calib_nop5(void);
#define CW_HAVE_CALIB 1
#endif

#define CW_CALIB_MAX_THREADS 16

struct calib_run {
	void (*fn)(void);
	int64_t n;
	int *go; /* 0: wait, 1: run, -1: give up (a helper thread could not be started) */
	int64_t elapsed_ns;
};

static int64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void *calib_thread(void *arg)
{
	struct calib_run *r = arg;
	/* through a volatile pointer: the compiler may neither inline nor drop the calls */
	void (*volatile fn)(void) = r->fn;
	int go;
	while ((go = __atomic_load_n(r->go, __ATOMIC_ACQUIRE)) == 0)
		__builtin_ia32_pause();
	if (go < 0)
		return NULL;
	int64_t t0 = now_ns();
	for (int64_t i = 0; i < r->n; i++)
		fn();
	r->elapsed_ns = now_ns() - t0;
	return NULL;
}

napi_value js_calibrate_calls(napi_env env, napi_callback_info cbi)
{
	size_t argc = 3;
	napi_value argv[3];
	if (napi_get_cb_info(env, cbi, &argc, argv, NULL, NULL) != napi_ok || argc < 3)
		return throw_fmt(env, "calibrateCalls(target, n, threads): 3 arguments expected");
	char *target = get_str(env, argv[0], "target");
	if (!target)
		return NULL;
	int64_t n, threads;
	if (!get_i64(env, argv[1], &n, "n") || !get_i64(env, argv[2], &threads, "threads")) {
		free(target);
		return NULL;
	}
	void (*fn)(void) = NULL;
#ifdef CW_HAVE_CALIB
	if (!strcmp(target, "cw_calib_push"))
		fn = cw_calib_push;
	else if (!strcmp(target, "cw_calib_endbr"))
		fn = cw_calib_endbr;
	else if (!strcmp(target, "cw_calib_nop5"))
		fn = cw_calib_nop5;
#endif
	if (!fn) {
		napi_value r = throw_fmt(env, "calibrateCalls: no calibration target %s on this architecture", target);
		free(target);
		return r;
	}
	free(target);
	if (n < 1 || threads < 1 || threads > CW_CALIB_MAX_THREADS)
		return throw_fmt(env, "calibrateCalls: n >= 1 and 1 <= threads <= %d expected", CW_CALIB_MAX_THREADS);
	int go = 0;
	struct calib_run runs[CW_CALIB_MAX_THREADS];
	pthread_t tids[CW_CALIB_MAX_THREADS];
	int64_t started = 0;
	for (int64_t i = 0; i < threads; i++) {
		runs[i] = (struct calib_run){ .fn = fn, .n = n, .go = &go, .elapsed_ns = -1 };
		/* thread 0 is this one; the others are short-lived helpers */
		if (i > 0 && pthread_create(&tids[i], NULL, calib_thread, &runs[i]) != 0)
			break;
		started = i + 1;
	}
	if (started < threads) {
		__atomic_store_n(&go, -1, __ATOMIC_RELEASE);
		for (int64_t i = 1; i < started; i++)
			pthread_join(tids[i], NULL);
		return throw_fmt(env, "calibrateCalls: pthread_create failed after %lld threads", (long long)started);
	}
	__atomic_store_n(&go, 1, __ATOMIC_RELEASE);
	calib_thread(&runs[0]);
	for (int64_t i = 1; i < threads; i++)
		pthread_join(tids[i], NULL);
	napi_value arr;
	napi_create_array_with_length(env, (size_t)threads, &arr);
	for (int64_t i = 0; i < threads; i++)
		napi_set_element(env, arr, (uint32_t)i, make_int(env, runs[i].elapsed_ns));
	return arr;
}

/*
 * calibrateStampWindow(n): what the in-process shim's record holds beyond the real call (shim/shim.c CW_ROW: a TSC
 * read, an indirect call, a TSC read), timed the same way around an empty target: n windows, returned as
 * [median ticks, ns per 1e6 ticks] (the TSC rate from CLOCK_MONOTONIC over the whole loop). Empty array where
 * there is no TSC (not x86-64).
 */
#if defined(__x86_64__)
#include <x86intrin.h>
static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}
#endif

napi_value js_calibrate_stamp_window(napi_env env, napi_callback_info cbi)
{
	size_t argc = 1;
	napi_value argv[1];
	napi_value arr;
	if (napi_get_cb_info(env, cbi, &argc, argv, NULL, NULL) != napi_ok || argc < 1)
		return throw_fmt(env, "calibrateStampWindow(n): 1 argument expected");
	int64_t n;
	if (!get_i64(env, argv[0], &n, "n"))
		return NULL;
	if (n < 1 || n > 1000000)
		return throw_fmt(env, "calibrateStampWindow: 1 <= n <= 1000000 expected");
	napi_create_array_with_length(env, 0, &arr);
#ifdef CW_HAVE_CALIB
	uint64_t *w = malloc(sizeof(*w) * (size_t)n);
	if (!w)
		return throw_fmt(env, "calibrateStampWindow: out of memory");
	void (*volatile fn)(void) = cw_calib_push;
	int64_t c0 = now_ns();
	uint64_t k0 = __rdtsc();
	for (int64_t i = 0; i < n; i++) {
		uint64_t t0 = __rdtsc();
		fn();
		uint64_t t1 = __rdtsc();
		w[i] = t1 - t0;
	}
	uint64_t k1 = __rdtsc();
	int64_t c1 = now_ns();
	qsort(w, (size_t)n, sizeof(*w), cmp_u64);
	double ns_per_mtick = k1 > k0 ? (double)(c1 - c0) * 1e6 / (double)(k1 - k0) : 0;
	napi_value v;
	napi_create_double(env, (double)w[n / 2], &v);
	napi_set_element(env, arr, 0, v);
	napi_create_double(env, ns_per_mtick, &v);
	napi_set_element(env, arr, 1, v);
	free(w);
#endif
	return arr;
}
