// SPDX-License-Identifier: Apache-2.0
/*
 * maps.c: reading and writing BPF maps by name: per-CPU counters (summed
 * here, so JS gets one bigint per slot), raw lookup/update/delete/keys on
 * Buffers (TypeScript owns the layouts), and stack-trace maps. Key and value
 * sizes are checked against the map before any syscall, so a layout drift
 * between events.h and TypeScript is an Error naming both sizes.
 */
#include "causeway.h"

static size_t map_value_bytes(struct bpf_map *m)
{
	enum bpf_map_type t = bpf_map__type(m);
	size_t vs = bpf_map__value_size(m);
	if (t == BPF_MAP_TYPE_PERCPU_ARRAY || t == BPF_MAP_TYPE_PERCPU_HASH || t == BPF_MAP_TYPE_LRU_PERCPU_HASH ||
	    t == BPF_MAP_TYPE_PERCPU_CGROUP_STORAGE) {
		int ncpu = libbpf_num_possible_cpus();
		return ((vs + 7) & ~(size_t)7) * (size_t)(ncpu > 0 ? ncpu : 1);
	}
	return vs;
}

/* no value buffer: check_key_value() checks the key only */
#define CW_NO_VALUE SIZE_MAX

/*
 * The caller's key (and value, unless vlen is CW_NO_VALUE) must have the map's
 * sizes before any syscall: a layout drift between events.h and TypeScript
 * throws an Error naming both sizes. Returns false when it threw.
 */
static bool check_key_value(napi_env env, const char *fn, struct cw_obj *o, const char *name, struct bpf_map *m, size_t klen, size_t vlen)
{
	if (vlen == CW_NO_VALUE) {
		if (klen == bpf_map__key_size(m))
			return true;
		throw_fmt(env, "%s(%s, %s): key is %zu bytes, map key size is %u", fn, obj_label(o), name, klen, bpf_map__key_size(m));
		return false;
	}
	if (klen == bpf_map__key_size(m) && vlen == map_value_bytes(m))
		return true;
	throw_fmt(env, "%s(%s, %s): key/value are %zu/%zu bytes, map wants %u/%zu", fn, obj_label(o), name, klen, vlen, bpf_map__key_size(m),
		  map_value_bytes(m));
	return false;
}

napi_value js_read_percpu_counters(napi_env env, napi_callback_info cbi)
{
	struct cw_args a;
	if (!parse_args(env, cbi, "readPercpuCounters", 2, CW_WANT_MAP, &a))
		return NULL;
	struct cw_obj *o = a.o;
	char *name = a.name;
	struct bpf_map *m = a.map;
	size_t vs = bpf_map__value_size(m);
	if (bpf_map__type(m) != BPF_MAP_TYPE_PERCPU_ARRAY || (vs != 8 && vs != 4)) {
		throw_fmt(env, "readPercpuCounters(%s, %s): not a per-CPU array of u64/u32", obj_label(o), name);
		free(name);
		return NULL;
	}
	int ncpu = libbpf_num_possible_cpus();
	if (ncpu <= 0) {
		throw_fmt(env, "libbpf_num_possible_cpus: %s", strerror(-ncpu));
		free(name);
		return NULL;
	}
	size_t stride = (vs + 7) & ~(size_t)7;
	uint8_t *buf = calloc((size_t)ncpu, stride);
	uint32_t n = bpf_map__max_entries(m);
	int fd = bpf_map__fd(m);
	napi_value arr;
	napi_create_array_with_length(env, n, &arr);
	for (uint32_t i = 0; i < n; i++) {
		if (bpf_map_lookup_elem(fd, &i, buf)) {
			int e = errno;
			throw_fmt(env, "bpf_map_lookup_elem(%s, %s, %u): %s", obj_label(o), name, i, strerror(e));
			free(buf);
			free(name);
			return NULL;
		}
		uint64_t sum = 0;
		for (int c = 0; c < ncpu; c++) {
			if (vs == 8) {
				uint64_t x;
				memcpy(&x, buf + (size_t)c * stride, 8);
				sum += x;
			} else {
				uint32_t x;
				memcpy(&x, buf + (size_t)c * stride, 4);
				sum += x;
			}
		}
		napi_value v;
		napi_create_bigint_uint64(env, sum, &v);
		napi_set_element(env, arr, i, v);
	}
	free(buf);
	free(name);
	return arr;
}

napi_value js_map_lookup(napi_env env, napi_callback_info cbi)
{
	struct cw_args a;
	if (!parse_args(env, cbi, "mapLookup", 3, CW_WANT_MAP, &a))
		return NULL;
	struct cw_obj *o = a.o;
	char *name = a.name;
	struct bpf_map *m = a.map;
	void *key;
	size_t klen;
	napi_value result = NULL;
	if (!get_buffer(env, a.argv[2], &key, &klen, "mapLookup key"))
		goto out;
	if (!check_key_value(env, "mapLookup", o, name, m, klen, CW_NO_VALUE))
		goto out;
	size_t vb = map_value_bytes(m);
	void *val = malloc(vb);
	if (bpf_map_lookup_elem(bpf_map__fd(m), key, val)) {
		int e = errno;
		free(val);
		if (e == ENOENT) {
			napi_get_null(env, &result);
			goto out;
		}
		throw_fmt(env, "bpf_map_lookup_elem(%s, %s): %s", obj_label(o), name, strerror(e));
		goto out;
	}
	napi_create_buffer_copy(env, vb, val, NULL, &result);
	free(val);
out:
	free(name);
	return result;
}

napi_value js_map_update(napi_env env, napi_callback_info cbi)
{
	struct cw_args a;
	if (!parse_args(env, cbi, "mapUpdate", 4, CW_WANT_MAP, &a))
		return NULL;
	struct cw_obj *o = a.o;
	char *name = a.name;
	struct bpf_map *m = a.map;
	void *key, *val;
	size_t klen, vlen;
	if (!get_buffer(env, a.argv[2], &key, &klen, "mapUpdate key") || !get_buffer(env, a.argv[3], &val, &vlen, "mapUpdate value"))
		goto out;
	if (!check_key_value(env, "mapUpdate", o, name, m, klen, vlen))
		goto out;
	if (bpf_map_update_elem(bpf_map__fd(m), key, val, BPF_ANY)) {
		int e = errno;
		throw_fmt(env, "bpf_map_update_elem(%s, %s): %s", obj_label(o), name, strerror(e));
	}
out:
	free(name);
	return NULL;
}

napi_value js_map_delete(napi_env env, napi_callback_info cbi)
{
	struct cw_args a;
	if (!parse_args(env, cbi, "mapDelete", 3, CW_WANT_MAP, &a))
		return NULL;
	struct cw_obj *o = a.o;
	char *name = a.name;
	struct bpf_map *m = a.map;
	void *key;
	size_t klen;
	napi_value result = NULL;
	if (!get_buffer(env, a.argv[2], &key, &klen, "mapDelete key"))
		goto out;
	if (!check_key_value(env, "mapDelete", o, name, m, klen, CW_NO_VALUE))
		goto out;
	bool deleted = true;
	if (bpf_map_delete_elem(bpf_map__fd(m), key)) {
		int e = errno;
		if (e != ENOENT) {
			throw_fmt(env, "bpf_map_delete_elem(%s, %s): %s", obj_label(o), name, strerror(e));
			goto out;
		}
		deleted = false;
	}
	napi_get_boolean(env, deleted, &result);
out:
	free(name);
	return result;
}

napi_value js_map_keys(napi_env env, napi_callback_info cbi)
{
	struct cw_args a;
	if (!parse_args(env, cbi, "mapKeys", 2, CW_WANT_MAP, &a))
		return NULL;
	struct cw_obj *o = a.o;
	char *name = a.name;
	struct bpf_map *m = a.map;
	size_t ks = bpf_map__key_size(m);
	uint8_t *prev = calloc(1, ks), *next = calloc(1, ks);
	int fd = bpf_map__fd(m);
	napi_value arr;
	napi_create_array(env, &arr);
	/* bounded: a hash iterated while it changes can restart from the top */
	uint64_t limit = 2ull * bpf_map__max_entries(m) + 16;
	uint32_t n = 0;
	bool first = true;
	while (n < limit) {
		if (bpf_map_get_next_key(fd, first ? NULL : prev, next)) {
			int e = errno;
			if (e != ENOENT)
				throw_fmt(env, "bpf_map_get_next_key(%s, %s): %s", obj_label(o), name, strerror(e));
			break;
		}
		napi_value b;
		napi_create_buffer_copy(env, ks, next, NULL, &b);
		napi_set_element(env, arr, n++, b);
		memcpy(prev, next, ks);
		first = false;
	}
	free(prev);
	free(next);
	free(name);
	bool pending = false;
	napi_is_exception_pending(env, &pending);
	return pending ? NULL : arr;
}

/*
 * mapFd(obj, name): the map's file descriptor, for handing the map to a helper
 * process (the guardian) as an inherited fd. Owned by the object: valid until
 * closeObject, never to be closed by the caller. Close-on-exec like every bpf
 * fd, so only a child given it explicitly gets it.
 */
napi_value js_map_fd(napi_env env, napi_callback_info cbi)
{
	struct cw_args a;
	if (!parse_args(env, cbi, "mapFd", 2, CW_WANT_MAP, &a))
		return NULL;
	napi_value r;
	napi_create_int32(env, bpf_map__fd(a.map), &r);
	free(a.name);
	return r;
}

napi_value js_stack_frames(napi_env env, napi_callback_info cbi)
{
	struct cw_args a;
	if (!parse_args(env, cbi, "stackFrames", 3, CW_WANT_MAP, &a))
		return NULL;
	struct cw_obj *o = a.o;
	char *name = a.name;
	struct bpf_map *m = a.map;
	int64_t id;
	napi_value arr = NULL;
	if (!get_i64(env, a.argv[2], &id, "stackId"))
		goto out;
	if (bpf_map__type(m) != BPF_MAP_TYPE_STACK_TRACE) {
		throw_fmt(env, "stackFrames(%s, %s): not a BPF_MAP_TYPE_STACK_TRACE map", obj_label(o), name);
		goto out;
	}
	napi_create_array(env, &arr);
	if (id < 0 || id > UINT32_MAX)
		goto out;
	uint32_t key = (uint32_t)id;
	size_t vs = bpf_map__value_size(m);
	uint64_t *frames = calloc(1, vs);
	if (bpf_map_lookup_elem(bpf_map__fd(m), &key, frames)) {
		int e = errno;
		if (e != ENOENT) {
			throw_fmt(env, "bpf_map_lookup_elem(%s, %s, %u): %s", obj_label(o), name, key, strerror(e));
			arr = NULL;
		}
		free(frames);
		goto out;
	}
	for (size_t i = 0; i < vs / 8 && frames[i]; i++) {
		napi_value v;
		napi_create_bigint_uint64(env, frames[i], &v);
		napi_set_element(env, arr, (uint32_t)i, v);
	}
	free(frames);
out:
	free(name);
	return arr;
}
