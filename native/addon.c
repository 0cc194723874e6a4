// SPDX-License-Identifier: Apache-2.0
/*
 * causeway.node: the N-API addon. Open/load BPF objects, attach, drain ring
 * buffers in batches, read maps; and a thread's CPU affinity, which Node
 * cannot set. Nothing else: every policy decision (what to
 * attach where, fallbacks, decoding) lives in TypeScript. The JS surface is
 * src/probe/addon-types.ts.
 *
 * Plain C against node_api.h, linked with the system libbpf (1.1 on Debian 12).
 * Handles are small integers indexing tables (1-based; 0 is never a handle).
 * Errors are thrown as JS Errors naming the libbpf call, the
 * object/program/path and errno text.
 *
 * No threads touch JS: drain is a synchronous, non-blocking copy called from a
 * JS timer (the guide measured worker threads + threadsafe functions slower and
 * risky). The only threads are the short-lived ones of detach(), which destroy
 * uprobe links in parallel because each classic uprobe detach blocks for an
 * RCU grace period (~150 ms on this kernel).
 *
 * Files (one job each; all share the internal header causeway.h):
 *   addon.c    module init and the export table; libbpfVersion, monotonicNs
 *   log.c      libbpf print callback: keeps the log tail for load errors
 *   handles.c  handle tables; object handle -> cw_obj; map/program by name
 *   args.c     JS value -> C conversions and parse_args(), the shared prologue
 *   object.c   openObject (rodata, mapSizes, shareMaps, ...), programs, closeObject
 *   attach.c   links: uprobe_multi, classic uprobe (+ twin), auto; detach
 *   drain.c    ring buffers: ringOpen, drain, ringWatch
 *   maps.c     per-CPU counters, lookup/update/delete/keys, map fds, stack frames
 *   calibrate.c  probe-cost calibration targets and the timed call loop (calibrateCalls)
 *   affinity.c   threadAffinity: a thread's CPU affinity (Node has no call for it)
 *
 * Beside the addon, the same build makes guardian.c into causeway-guardian, a
 * standalone program (no N-API, no libbpf) that resumes parked processes when
 * the tracer dies (src/run/guardian.ts).
 */
#include "causeway.h"

#include <time.h>

/* libbpfVersion(): "1.1.0", without libbpf's leading v */
static napi_value js_libbpf_version(napi_env env, napi_callback_info cbi)
{
	(void)cbi;
	const char *v = libbpf_version_string();
	if (v[0] == 'v')
		v++;
	napi_value r;
	napi_create_string_utf8(env, v, NAPI_AUTO_LENGTH, &r);
	return r;
}

/* monotonicNs(): CLOCK_MONOTONIC, the clock bpf_ktime_get_ns() reads, as a bigint */
static napi_value js_monotonic_ns(napi_env env, napi_callback_info cbi)
{
	(void)cbi;
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	napi_value v;
	napi_create_bigint_uint64(env, (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec, &v);
	return v;
}

NAPI_MODULE_INIT(/* napi_env env, napi_value exports */)
{
	log_init();

	static const struct {
		const char *name;
		napi_callback fn;
	} fns[] = {
		{ "libbpfVersion", js_libbpf_version },
		{ "openObject", js_open_object },
		{ "programs", js_programs },
		{ "attachUprobeMulti", js_attach_uprobe_multi },
		{ "attachUprobe", js_attach_uprobe },
		{ "attachAuto", js_attach_auto },
		{ "detach", js_detach },
		{ "ringOpen", js_ring_open },
		{ "drain", js_drain },
		{ "ringWatch", js_ring_watch },
		{ "readPercpuCounters", js_read_percpu_counters },
		{ "mapLookup", js_map_lookup },
		{ "mapUpdate", js_map_update },
		{ "mapDelete", js_map_delete },
		{ "mapKeys", js_map_keys },
		{ "mapFd", js_map_fd },
		{ "stackFrames", js_stack_frames },
		{ "monotonicNs", js_monotonic_ns },
		{ "calibrateCalls", js_calibrate_calls },
		{ "calibrateStampWindow", js_calibrate_stamp_window },
		{ "threadAffinity", js_thread_affinity },
		{ "closeObject", js_close_object },
	};
	for (size_t i = 0; i < sizeof(fns) / sizeof(fns[0]); i++) {
		napi_value f;
		if (napi_create_function(env, fns[i].name, NAPI_AUTO_LENGTH, fns[i].fn, NULL, &f) != napi_ok ||
		    napi_set_named_property(env, exports, fns[i].name, f) != napi_ok)
			return NULL;
	}
	return exports;
}
