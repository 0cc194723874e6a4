// SPDX-License-Identifier: Apache-2.0
/*
 * object.c: the life of a BPF object: openObject (open, apply the options
 * that must precede load, load), programs(), closeObject. Every option is a
 * pre-load knob that libbpf only honours between open and load, which is why
 * they are all taken here in one call rather than as separate entry points:
 *  - rodata: `const volatile` globals (pids, flags, cookies' meaning);
 *  - mapSizes: max_entries, e.g. ring buffer sizes chosen in TypeScript;
 *  - shareMaps: reuse the fds of maps already loaded by another object, so
 *    several objects write one set of rings and counters;
 *  - uprobeMultiPrograms: load programs with the uprobe_multi attach type
 *    (attach.c falls back to a classic twin when the kernel says no);
 *  - disablePrograms: skip programs this kernel cannot load.
 */
#include "causeway.h"

#include <pthread.h>
#include <signal.h>
#include <unistd.h>

static bool write_le(uint8_t *dst, size_t size, uint64_t v)
{
	if (size != 1 && size != 2 && size != 4 && size != 8)
		return false;
	for (size_t i = 0; i < size; i++)
		dst[i] = (uint8_t)(v >> (8 * i));
	return true;
}

static struct bpf_map *find_rodata_map(struct bpf_object *obj)
{
	struct bpf_map *m;
	bpf_object__for_each_map(m, obj) {
		const char *n = bpf_map__name(m);
		size_t l = strlen(n);
		if (bpf_map__is_internal(m) && l >= 7 && strcmp(n + l - 7, ".rodata") == 0)
			return m;
	}
	return NULL;
}

/* skip const/volatile/typedef modifiers */
static const struct btf_type *btf_strip(const struct btf *btf, __u32 id, __u32 *id_out)
{
	const struct btf_type *t = btf__type_by_id(btf, id);
	while (t && (btf_is_mod(t) || btf_is_typedef(t))) {
		id = t->type;
		t = btf__type_by_id(btf, id);
	}
	if (id_out)
		*id_out = id;
	return t;
}

/*
 * Sets `const volatile` globals by name through the object's .rodata map,
 * before load. Keys are variable names, or "name[i]" for one array element;
 * values are numbers, bigints, booleans, or arrays of them for array variables.
 */
static bool apply_rodata(napi_env env, struct cw_obj *o, napi_value rodata)
{
	napi_value keys;
	uint32_t nkeys = 0;
	if (napi_get_property_names(env, rodata, &keys) != napi_ok) {
		throw_fmt(env, "openObject(%s): opts.rodata must be an object", obj_label(o));
		return false;
	}
	napi_get_array_length(env, keys, &nkeys);
	if (nkeys == 0)
		return true;

	struct bpf_map *map = find_rodata_map(o->obj);
	const struct btf *btf = bpf_object__btf(o->obj);
	if (!map || !btf) {
		throw_fmt(env, "openObject(%s): object has no .rodata map (or no BTF) to set rodata in", obj_label(o));
		return false;
	}
	int sec_id = btf__find_by_name_kind(btf, ".rodata", BTF_KIND_DATASEC);
	if (sec_id < 0) {
		throw_fmt(env, "btf__find_by_name_kind(%s, .rodata, DATASEC): not found", obj_label(o));
		return false;
	}
	size_t size = 0;
	const void *init = bpf_map__initial_value(map, &size);
	if (!init) {
		throw_fmt(env, "bpf_map__initial_value(%s, %s): no initial value", obj_label(o), bpf_map__name(map));
		return false;
	}
	uint8_t *data = malloc(size);
	if (!data) {
		throw_fmt(env, "openObject(%s): out of memory", obj_label(o));
		return false;
	}
	memcpy(data, init, size);

	const struct btf_type *sec = btf__type_by_id(btf, sec_id);
	const struct btf_var_secinfo *vsi = btf_var_secinfos(sec);
	int nvars = btf_vlen(sec);
	bool ok = false;

	for (uint32_t k = 0; k < nkeys; k++) {
		napi_value key_v, val_v;
		napi_get_element(env, keys, k, &key_v);
		char *key = get_str(env, key_v, "rodata key");
		if (!key)
			goto out;
		napi_get_property(env, rodata, key_v, &val_v);

		/* "name[i]" selects one element */
		long index = -1;
		char *br = strchr(key, '[');
		if (br) {
			char *end = NULL;
			index = strtol(br + 1, &end, 10);
			if (!end || *end != ']' || end[1] != 0 || index < 0) {
				throw_fmt(env, "openObject(%s): rodata key '%s': expected name or name[index]", obj_label(o), key);
				free(key);
				goto out;
			}
			*br = 0;
		}
		const struct btf_var_secinfo *found = NULL;
		for (int i = 0; i < nvars; i++) {
			const struct btf_type *var = btf__type_by_id(btf, vsi[i].type);
			if (strcmp(btf__name_by_offset(btf, var->name_off), key) == 0) {
				found = &vsi[i];
				break;
			}
		}
		if (!found) {
			throw_fmt(env, "openObject(%s): no const volatile global named '%s' in .rodata", obj_label(o), key);
			free(key);
			goto out;
		}
		const struct btf_type *var = btf__type_by_id(btf, found->type);
		const struct btf_type *vt = btf_strip(btf, var->type, NULL);
		size_t elem_size = found->size;
		uint32_t nelems = 1;
		if (vt && btf_is_array(vt)) {
			const struct btf_array *arr = btf_array(vt);
			long es = btf__resolve_size(btf, arr->type);
			if (es <= 0) {
				throw_fmt(env, "openObject(%s): cannot size elements of '%s'", obj_label(o), key);
				free(key);
				goto out;
			}
			elem_size = (size_t)es;
			nelems = arr->nelems;
		}
		if (found->offset + found->size > size) {
			throw_fmt(env, "openObject(%s): '%s' lies outside .rodata", obj_label(o), key);
			free(key);
			goto out;
		}
		uint8_t *base = data + found->offset;

		bool is_arr = false;
		napi_is_array(env, val_v, &is_arr);
		if (is_arr) {
			uint32_t n = 0;
			uint64_t *vals = get_u64_array(env, val_v, &n, key);
			if (!vals) {
				free(key);
				goto out;
			}
			if (index >= 0 || nelems == 1 || n > nelems) {
				throw_fmt(env, "openObject(%s): rodata '%s' takes %s (%u elements), got an array of %u",
					  obj_label(o), key, nelems > 1 && index < 0 ? "an array" : "one value", nelems, n);
				free(vals);
				free(key);
				goto out;
			}
			for (uint32_t i = 0; i < n; i++)
				write_le(base + i * elem_size, elem_size, vals[i]);
			free(vals);
		} else {
			int64_t x;
			if (!get_i64(env, val_v, &x, key)) {
				free(key);
				goto out;
			}
			if (nelems > 1 && index < 0) {
				throw_fmt(env, "openObject(%s): rodata '%s' is an array of %u: pass an array or '%s[i]'",
					  obj_label(o), key, nelems, key);
				free(key);
				goto out;
			}
			if (index >= (long)nelems) {
				throw_fmt(env, "openObject(%s): rodata '%s[%ld]' out of range (%u elements)", obj_label(o), key, index, nelems);
				free(key);
				goto out;
			}
			uint8_t *dst = base + (index > 0 ? (size_t)index * elem_size : 0);
			if (!write_le(dst, elem_size, (uint64_t)x)) {
				throw_fmt(env, "openObject(%s): rodata '%s' has size %zu, only 1/2/4/8-byte scalars are supported",
					  obj_label(o), key, elem_size);
				free(key);
				goto out;
			}
		}
		free(key);
	}
	int err = bpf_map__set_initial_value(map, data, size);
	if (err) {
		throw_fmt(env, "bpf_map__set_initial_value(%s, %s): %s", obj_label(o), bpf_map__name(map), strerror(-err));
		goto out;
	}
	ok = true;
out:
	free(data);
	return ok;
}

static bool apply_map_sizes(napi_env env, struct cw_obj *o, napi_value sizes)
{
	napi_value keys;
	uint32_t n = 0;
	if (napi_get_property_names(env, sizes, &keys) != napi_ok)
		return throw_fmt(env, "openObject(%s): opts.mapSizes must be an object", obj_label(o)), false;
	napi_get_array_length(env, keys, &n);
	for (uint32_t i = 0; i < n; i++) {
		napi_value kv, vv;
		napi_get_element(env, keys, i, &kv);
		napi_get_property(env, sizes, kv, &vv);
		struct bpf_map *m = find_map(env, o, kv, NULL);
		if (!m)
			return false;
		int64_t x;
		if (!get_i64(env, vv, &x, "mapSizes value"))
			return false;
		if (x <= 0 || x > UINT32_MAX)
			return throw_fmt(env, "openObject(%s): mapSizes.%s = %lld out of range", obj_label(o), bpf_map__name(m), (long long)x), false;
		if (bpf_map__type(m) == BPF_MAP_TYPE_RINGBUF) {
			long page = sysconf(_SC_PAGESIZE);
			if ((x & (x - 1)) != 0 || x < page)
				return throw_fmt(env, "openObject(%s): ring buffer %s size %lld must be a power of two >= page size (%ld)",
						 obj_label(o), bpf_map__name(m), (long long)x, page), false;
		}
		int err = bpf_map__set_max_entries(m, (uint32_t)x);
		if (err)
			return throw_fmt(env, "bpf_map__set_max_entries(%s, %s, %lld): %s", obj_label(o), bpf_map__name(m),
					 (long long)x, strerror(-err)), false;
	}
	return true;
}

static bool apply_share(napi_env env, struct cw_obj *o, napi_value share)
{
	napi_value from_v, names_v;
	if (napi_get_named_property(env, share, "from", &from_v) != napi_ok ||
	    napi_get_named_property(env, share, "names", &names_v) != napi_ok)
		return throw_fmt(env, "openObject(%s): opts.shareMaps needs { from, names }", obj_label(o)), false;
	struct cw_obj *from = get_obj(env, from_v, NULL);
	if (!from)
		return false;
	uint32_t n = 0;
	bool is_arr = false;
	napi_is_array(env, names_v, &is_arr);
	if (!is_arr)
		return throw_fmt(env, "openObject(%s): opts.shareMaps.names must be an array", obj_label(o)), false;
	napi_get_array_length(env, names_v, &n);
	for (uint32_t i = 0; i < n; i++) {
		napi_value nv;
		napi_get_element(env, names_v, i, &nv);
		char *name = NULL;
		struct bpf_map *dst = find_map(env, o, nv, &name);
		if (!dst)
			return false;
		struct bpf_map *src = bpf_object__find_map_by_name(from->obj, name);
		if (!src) {
			throw_fmt(env, "openObject(%s): shareMaps: %s has no map %s", obj_label(o), obj_label(from), name);
			free(name);
			return false;
		}
		int fd = bpf_map__fd(src);
		if (fd < 0) {
			throw_fmt(env, "openObject(%s): shareMaps: map %s of %s is not loaded", obj_label(o), name, obj_label(from));
			free(name);
			return false;
		}
		int err = bpf_map__reuse_fd(dst, fd);
		if (err) {
			throw_fmt(env, "bpf_map__reuse_fd(%s, %s from %s): %s", obj_label(o), name, obj_label(from), strerror(-err));
			free(name);
			return false;
		}
		free(name);
	}
	return true;
}

static bool for_each_prog_name(napi_env env, struct cw_obj *o, napi_value arr, const char *what, int (*fn)(struct bpf_program *))
{
	bool is_arr = false;
	napi_is_array(env, arr, &is_arr);
	if (!is_arr)
		return throw_fmt(env, "openObject(%s): opts.%s must be an array", obj_label(o), what), false;
	uint32_t n = 0;
	napi_get_array_length(env, arr, &n);
	for (uint32_t i = 0; i < n; i++) {
		napi_value nv;
		napi_get_element(env, arr, i, &nv);
		char *name = NULL;
		struct bpf_program *p = find_prog(env, o, nv, &name);
		if (!p)
			return false;
		int err = fn(p);
		if (err) {
			throw_fmt(env, "openObject(%s): %s(%s): %s", obj_label(o), what, name, strerror(-err));
			free(name);
			return false;
		}
		free(name);
	}
	return true;
}

static int set_uprobe_multi(struct bpf_program *p)
{
	return bpf_program__set_expected_attach_type(p, (enum bpf_attach_type)CW_BPF_TRACE_UPROBE_MULTI);
}

static int set_no_autoload(struct bpf_program *p)
{
	return bpf_program__set_autoload(p, false);
}


napi_value js_open_object(napi_env env, napi_callback_info cbi)
{
	napi_value argv[2];
	size_t argc = 2;
	NAPI_OK(napi_get_cb_info(env, cbi, &argc, argv, NULL, NULL));
	if (argc < 1)
		return throw_fmt(env, "openObject(path, opts?): path missing");
	char *path = get_str(env, argv[0], "openObject path");
	if (!path)
		return NULL;

	log_reset();
	struct cw_obj *o = calloc(1, sizeof(*o));
	o->path = path;
	o->obj = bpf_object__open_file(path, NULL);
	long oerr = libbpf_get_error(o->obj);
	if (!o->obj || oerr) {
		int e = oerr ? (int)-oerr : errno;
		throw_fmt(env, "bpf_object__open_file(%s): %s%s%s", path, strerror(e), log_len() ? "\nlibbpf: " : "", log_tail(1500));
		free(path);
		free(o);
		return NULL;
	}

	napi_valuetype t = napi_undefined;
	if (argc >= 2)
		napi_typeof(env, argv[1], &t);
	if (t == napi_object) {
		napi_value v;
		if (has_prop(env, argv[1], "rodata", &v) && !apply_rodata(env, o, v))
			goto fail;
		if (has_prop(env, argv[1], "mapSizes", &v) && !apply_map_sizes(env, o, v))
			goto fail;
		if (has_prop(env, argv[1], "shareMaps", &v) && !apply_share(env, o, v))
			goto fail;
		if (has_prop(env, argv[1], "uprobeMultiPrograms", &v) &&
		    !for_each_prog_name(env, o, v, "uprobeMultiPrograms", set_uprobe_multi))
			goto fail;
		if (has_prop(env, argv[1], "disablePrograms", &v) &&
		    !for_each_prog_name(env, o, v, "disablePrograms", set_no_autoload))
			goto fail;
	} else if (t != napi_undefined && t != napi_null) {
		throw_fmt(env, "openObject(%s): opts must be an object", obj_label(o));
		goto fail;
	}

	/* The verifier gives up with EAGAIN when a signal is pending for the loading thread (a profiler's
	 * SIGPROF, a child's SIGCHLD); the object cannot be loaded twice, so keep signals off this thread for
	 * the load. Process-directed signals go to another thread meanwhile; thread-directed ones wait. */
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	int err = bpf_object__load(o->obj);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (err) {
		throw_fmt(env, "bpf_object__load(%s): %s%s%s", path, strerror(-err), log_len() ? "\nlibbpf: " : "", log_tail(2500));
		goto fail;
	}
	int h = table_add(&g_objs, o);
	if (h < 0) {
		throw_fmt(env, "openObject(%s): out of memory", path);
		goto fail;
	}
	return make_int(env, h);
fail:
	bpf_object__close(o->obj);
	free(o->path);
	free(o);
	return NULL;
}

/* programs(obj) */
napi_value js_programs(napi_env env, napi_callback_info cbi)
{
	struct cw_args a;
	if (!parse_args(env, cbi, "programs", 1, CW_WANT_OBJ, &a))
		return NULL;
	struct cw_obj *o = a.o;
	napi_value arr;
	napi_create_array(env, &arr);
	struct bpf_program *p;
	uint32_t i = 0;
	bpf_object__for_each_program(p, o->obj) {
		napi_value s;
		napi_create_string_utf8(env, bpf_program__name(p), NAPI_AUTO_LENGTH, &s);
		napi_set_element(env, arr, i++, s);
	}
	return arr;
}

/* closeObject(obj): rings, then links (in parallel), then the object */
napi_value js_close_object(napi_env env, napi_callback_info cbi)
{
	struct cw_args a;
	if (!parse_args(env, cbi, "closeObject", 1, CW_ARGS_ONLY, &a))
		return NULL;
	int64_t h;
	if (!get_i64(env, a.argv[0], &h, "object handle"))
		return NULL;
	struct cw_obj *o = table_get(&g_objs, h);
	if (!o)
		return NULL; /* closing twice is harmless */
	rings_free_for_obj(h);
	links_destroy_for_obj(h);
	for (size_t i = 0; i < o->ntwins; i++)
		close(o->twins[i].fd);
	free(o->twins);
	bpf_object__close(o->obj);
	free(o->path);
	free(o);
	table_del(&g_objs, h);
	return NULL;
}
