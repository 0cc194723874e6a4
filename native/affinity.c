// SPDX-License-Identifier: Apache-2.0
/*
 * threadAffinity(tid, cpus?): the CPU affinity of one thread (sched_getaffinity),
 * set first when `cpus` is given (sched_setaffinity). Node has no call for it;
 * src/run/tracer-cpus.ts keeps the tracer's own threads off the CPUs a traced
 * workload runs on. Returns the thread's CPUs, ascending.
 */
#include "causeway.h"

#include <errno.h>
#include <sched.h>
#include <string.h>

napi_value js_thread_affinity(napi_env env, napi_callback_info cbi)
{
	size_t argc = 2;
	napi_value argv[2];
	NAPI_OK(napi_get_cb_info(env, cbi, &argc, argv, NULL, NULL));
	if (argc < 1)
		return throw_fmt(env, "threadAffinity: expected (tid, cpus?)");
	int64_t tid;
	if (!get_i64(env, argv[0], &tid, "threadAffinity: tid"))
		return NULL;
	cpu_set_t set;
	napi_valuetype t = napi_undefined;
	if (argc >= 2)
		NAPI_OK(napi_typeof(env, argv[1], &t));
	if (t != napi_undefined && t != napi_null) {
		uint32_t n = 0;
		NAPI_OK(napi_get_array_length(env, argv[1], &n));
		CPU_ZERO(&set);
		for (uint32_t i = 0; i < n; i++) {
			napi_value e;
			int64_t cpu;
			NAPI_OK(napi_get_element(env, argv[1], i, &e));
			if (!get_i64(env, e, &cpu, "threadAffinity: cpu"))
				return NULL;
			if (cpu < 0 || cpu >= CPU_SETSIZE)
				return throw_fmt(env, "threadAffinity: cpu %lld out of range", (long long)cpu);
			CPU_SET((int)cpu, &set);
		}
		if (sched_setaffinity((pid_t)tid, sizeof(set), &set) != 0)
			return throw_fmt(env, "sched_setaffinity(%lld): %s", (long long)tid, strerror(errno));
	}
	if (sched_getaffinity((pid_t)tid, sizeof(set), &set) != 0)
		return throw_fmt(env, "sched_getaffinity(%lld): %s", (long long)tid, strerror(errno));
	napi_value out;
	NAPI_OK(napi_create_array(env, &out));
	uint32_t k = 0;
	for (int cpu = 0; cpu < CPU_SETSIZE; cpu++) {
		if (!CPU_ISSET(cpu, &set))
			continue;
		NAPI_OK(napi_set_element(env, out, k++, make_int(env, cpu)));
	}
	return out;
}
