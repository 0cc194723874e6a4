// SPDX-License-Identifier: Apache-2.0
/*
 * causeway.node: the N-API addon. Open/load BPF objects, attach, drain ring
 * buffers in batches, read maps. Nothing else: every policy decision (what to
 * attach where, fallbacks, decoding) lives in TypeScript. The JS surface is
 * src/probe/addon-types.ts.
 *
 * Plain C against node_api.h, linked with the system libbpf (1.1 on Debian 12).
 * Handles are small integers indexing the tables below (1-based; 0 is never a
 * handle). Errors are thrown as JS Errors naming the libbpf call, the
 * object/program/path and errno text.
 *
 * No threads touch JS: drain is a synchronous, non-blocking copy called from a
 * JS timer (the guide measured worker threads + threadsafe functions slower and
 * risky). The only threads are the short-lived ones of detach(), which destroy
 * uprobe links in parallel because each classic uprobe detach blocks for an
 * RCU grace period (~150 ms on this kernel).
 */
#define _GNU_SOURCE
#define NAPI_VERSION 8
#include <node_api.h>

#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/perf_event.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

/* ------------------------------------------------------------------------ */
/* uprobe_multi: kernel >= 6.6. Debian 12's linux/bpf.h and libbpf 1.1 predate
 * it, so the attach type and the link_create layout are spelled out here.
 * Checked against the running kernel's BTF (union bpf_attr in
 * /sys/kernel/btf/vmlinux: BPF_TRACE_UPROBE_MULTI = 48) and the UAPI header
 * include/uapi/linux/bpf.h (link_create.uprobe_multi: path, offsets,
 * ref_ctr_offsets, cookies as aligned u64, then cnt, flags, pid as u32). */
#define CW_BPF_TRACE_UPROBE_MULTI 48
#define CW_BPF_F_UPROBE_MULTI_RETURN (1U << 0)

struct cw_link_create_uprobe_multi {
	uint32_t prog_fd;
	uint32_t target_fd;
	uint32_t attach_type;
	uint32_t flags;
	uint64_t path;
	uint64_t offsets;
	uint64_t ref_ctr_offsets;
	uint64_t cookies;
	uint32_t cnt;
	uint32_t um_flags;
	uint32_t pid;
	uint32_t pad_;
};
_Static_assert(offsetof(struct cw_link_create_uprobe_multi, path) == 16, "uprobe_multi.path");
_Static_assert(offsetof(struct cw_link_create_uprobe_multi, cookies) == 40, "uprobe_multi.cookies");
_Static_assert(offsetof(struct cw_link_create_uprobe_multi, cnt) == 48, "uprobe_multi.cnt");
_Static_assert(offsetof(struct cw_link_create_uprobe_multi, um_flags) == 52, "uprobe_multi.flags");
_Static_assert(offsetof(struct cw_link_create_uprobe_multi, pid) == 56, "uprobe_multi.pid");

/*
 * drain(): every record in bpf/events.h is at most CW_MAX_RECORD bytes (the
 * largest, struct cw_pyframes, is 416; test/probe/bpf-objects.test.ts asserts
 * the bound). The output buffer is filled with [u32 len][record][pad to 8] and the
 * consumer stops while a max-size slot still fits.
 */
#define CW_MAX_RECORD 512
#define CW_SLOT(len) (((size_t)(len) + 4 + 7) & ~(size_t)7)
#define CW_MAX_SLOT CW_SLOT(CW_MAX_RECORD)
#define CW_DRAIN_STOP (-ENOBUFS)

/* ------------------------------------------------------------------------ */
/* libbpf log: kept (last bytes) to explain load failures in the thrown Error;
 * copied to stderr only when CAUSEWAY_LIBBPF_DEBUG is set. */

#define LOG_CAP 8192
static char g_log[LOG_CAP];
static size_t g_log_len;
static int g_log_stderr; /* 0 off, 1 warnings/info, 2 also libbpf debug */

static int libbpf_log(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	char line[1024];
	va_list ap2;

	va_copy(ap2, ap);
	int n = vsnprintf(line, sizeof(line), fmt, ap2);
	va_end(ap2);
	if (g_log_stderr > (level == LIBBPF_DEBUG ? 1 : 0))
		fputs(line, stderr);
	if (level == LIBBPF_DEBUG || n <= 0)
		return 0;
	size_t len = strnlen(line, sizeof(line));
	if (len >= LOG_CAP)
		len = LOG_CAP - 1;
	if (g_log_len + len >= LOG_CAP) {
		/* keep the most recent half */
		size_t keep = LOG_CAP / 2;
		if (keep > g_log_len)
			keep = g_log_len;
		memmove(g_log, g_log + g_log_len - keep, keep);
		g_log_len = keep;
		if (g_log_len + len >= LOG_CAP)
			g_log_len = 0;
	}
	memcpy(g_log + g_log_len, line, len);
	g_log_len += len;
	g_log[g_log_len] = 0;
	return 0;
}

static void log_reset(void)
{
	g_log_len = 0;
	g_log[0] = 0;
}

/* the last `max` bytes of the libbpf log, for error messages */
static const char *log_tail(size_t max)
{
	if (g_log_len <= max)
		return g_log;
	return g_log + g_log_len - max;
}

/* ------------------------------------------------------------------------ */
/* handle tables */

/* A classic-attach twin of a program loaded for uprobe_multi (see
 * classic_prog_fd): the kernel refuses to attach a program whose
 * expected_attach_type is BPF_TRACE_UPROBE_MULTI to a perf-event uprobe. */
struct cw_twin {
	const struct bpf_program *prog;
	int fd;
};

struct cw_obj {
	struct bpf_object *obj;
	char *path;
	struct cw_twin *twins;
	size_t ntwins;
};

struct cw_link {
	int obj;               /* owning object handle */
	struct bpf_link *link; /* classic / auto links (libbpf) */
	int fd;                /* raw BPF_LINK_CREATE fd (uprobe_multi, twin perf links), else -1 */
	int perf_fd;           /* perf event under a twin's perf link, else -1 */
};

struct cw_ring {
	int obj;
	struct ring_buffer *rb;
	uint8_t *out;
	size_t cap;
	size_t pos;
	uint64_t oversize; /* records larger than CW_MAX_RECORD that could not be copied */
};

struct table {
	void **items;
	size_t cap;
};

static struct table g_objs, g_links, g_rings;

static int table_add(struct table *t, void *item)
{
	for (size_t i = 0; i < t->cap; i++) {
		if (!t->items[i]) {
			t->items[i] = item;
			return (int)i + 1;
		}
	}
	size_t ncap = t->cap ? t->cap * 2 : 64;
	void **n = realloc(t->items, ncap * sizeof(void *));
	if (!n)
		return -1;
	memset(n + t->cap, 0, (ncap - t->cap) * sizeof(void *));
	t->items = n;
	n[t->cap] = item;
	int h = (int)t->cap + 1;
	t->cap = ncap;
	return h;
}

static void *table_get(struct table *t, int64_t h)
{
	if (h < 1 || (uint64_t)h > t->cap)
		return NULL;
	return t->items[h - 1];
}

static void table_del(struct table *t, int64_t h)
{
	if (h >= 1 && (uint64_t)h <= t->cap)
		t->items[h - 1] = NULL;
}

/* ------------------------------------------------------------------------ */
/* N-API helpers */

#define NAPI_OK(call)                                                              \
	do {                                                                       \
		if ((call) != napi_ok) {                                           \
			throw_napi(env, #call);                                    \
			return NULL;                                               \
		}                                                                  \
	} while (0)

static napi_value throw_fmt(napi_env env, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static napi_value throw_fmt(napi_env env, const char *fmt, ...)
{
	char msg[4096];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	bool pending = false;
	napi_is_exception_pending(env, &pending);
	if (!pending)
		napi_throw_error(env, NULL, msg);
	return NULL;
}

static void throw_napi(napi_env env, const char *what)
{
	const napi_extended_error_info *info = NULL;
	napi_get_last_error_info(env, &info);
	throw_fmt(env, "causeway addon: %s failed: %s", what,
		  info && info->error_message ? info->error_message : "unknown N-API error");
}

static bool get_args(napi_env env, napi_callback_info cbi, size_t want, napi_value *argv, const char *fn)
{
	size_t argc = want;
	if (napi_get_cb_info(env, cbi, &argc, argv, NULL, NULL) != napi_ok) {
		throw_napi(env, "napi_get_cb_info");
		return false;
	}
	if (argc < want) {
		throw_fmt(env, "%s: expected %zu arguments, got %zu", fn, want, argc);
		return false;
	}
	return true;
}

static bool get_i64(napi_env env, napi_value v, int64_t *out, const char *what)
{
	napi_valuetype t;
	napi_typeof(env, v, &t);
	if (t == napi_number) {
		double d;
		napi_get_value_double(env, v, &d);
		if (d != d || d < -9007199254740992.0 || d > 18446744073709551615.0) {
			throw_fmt(env, "%s: not a finite integer", what);
			return false;
		}
		if (d > 9223372036854775807.0)
			*out = (int64_t)(uint64_t)d;
		else
			*out = (int64_t)d;
		return true;
	}
	if (t == napi_bigint) {
		bool lossless;
		uint64_t u;
		napi_get_value_bigint_uint64(env, v, &u, &lossless);
		if (!lossless) {
			int64_t s;
			napi_get_value_bigint_int64(env, v, &s, &lossless);
			if (!lossless) {
				throw_fmt(env, "%s: bigint does not fit 64 bits", what);
				return false;
			}
			*out = s;
			return true;
		}
		*out = (int64_t)u;
		return true;
	}
	if (t == napi_boolean) {
		bool b;
		napi_get_value_bool(env, v, &b);
		*out = b;
		return true;
	}
	throw_fmt(env, "%s: expected a number, bigint or boolean", what);
	return false;
}

static bool get_bool(napi_env env, napi_value v, bool *out, const char *what)
{
	napi_valuetype t;
	napi_typeof(env, v, &t);
	if (t != napi_boolean) {
		throw_fmt(env, "%s: expected a boolean", what);
		return false;
	}
	napi_get_value_bool(env, v, out);
	return true;
}

/* malloc'ed UTF-8 copy; NULL (with an exception) on error */
static char *get_str(napi_env env, napi_value v, const char *what)
{
	size_t len = 0;
	if (napi_get_value_string_utf8(env, v, NULL, 0, &len) != napi_ok) {
		throw_fmt(env, "%s: expected a string", what);
		return NULL;
	}
	char *s = malloc(len + 1);
	if (!s) {
		throw_fmt(env, "%s: out of memory", what);
		return NULL;
	}
	napi_get_value_string_utf8(env, v, s, len + 1, &len);
	return s;
}

/* array of numbers/bigints as u64; *n = length; malloc'ed */
static uint64_t *get_u64_array(napi_env env, napi_value v, uint32_t *n, const char *what)
{
	bool is_arr = false;
	napi_is_array(env, v, &is_arr);
	if (!is_arr) {
		throw_fmt(env, "%s: expected an array", what);
		return NULL;
	}
	napi_get_array_length(env, v, n);
	uint64_t *a = calloc(*n ? *n : 1, sizeof(uint64_t));
	if (!a) {
		throw_fmt(env, "%s: out of memory", what);
		return NULL;
	}
	for (uint32_t i = 0; i < *n; i++) {
		napi_value e;
		int64_t x;
		napi_get_element(env, v, i, &e);
		if (!get_i64(env, e, &x, what)) {
			free(a);
			return NULL;
		}
		a[i] = (uint64_t)x;
	}
	return a;
}

static bool get_buffer(napi_env env, napi_value v, void **data, size_t *len, const char *what)
{
	bool is_buf = false;
	napi_is_buffer(env, v, &is_buf);
	if (!is_buf) {
		bool is_ta = false;
		napi_is_typedarray(env, v, &is_ta);
		if (!is_ta) {
			throw_fmt(env, "%s: expected a Buffer", what);
			return false;
		}
		napi_typedarray_type tt;
		size_t n, off;
		napi_value ab;
		napi_get_typedarray_info(env, v, &tt, &n, data, &ab, &off);
		*len = n; /* Uint8Array only is meaningful here */
		return true;
	}
	napi_get_buffer_info(env, v, data, len);
	return true;
}

static napi_value make_int(napi_env env, int64_t x)
{
	napi_value v;
	napi_create_int64(env, x, &v);
	return v;
}

static struct cw_obj *get_obj(napi_env env, napi_value v, int64_t *h_out)
{
	int64_t h;
	if (!get_i64(env, v, &h, "object handle"))
		return NULL;
	struct cw_obj *o = table_get(&g_objs, h);
	if (!o)
		throw_fmt(env, "invalid or closed object handle %lld", (long long)h);
	if (h_out)
		*h_out = h;
	return o;
}

static const char *obj_label(struct cw_obj *o)
{
	const char *s = strrchr(o->path, '/');
	return s ? s + 1 : o->path;
}

static struct bpf_map *find_map(napi_env env, struct cw_obj *o, napi_value name_v, char **name_out)
{
	char *name = get_str(env, name_v, "map name");
	if (!name)
		return NULL;
	struct bpf_map *m = bpf_object__find_map_by_name(o->obj, name);
	if (!m) {
		throw_fmt(env, "bpf_object__find_map_by_name(%s, %s): no such map", obj_label(o), name);
		free(name);
		return NULL;
	}
	if (name_out)
		*name_out = name;
	else
		free(name);
	return m;
}

static struct bpf_program *find_prog(napi_env env, struct cw_obj *o, napi_value name_v, char **name_out)
{
	char *name = get_str(env, name_v, "program name");
	if (!name)
		return NULL;
	struct bpf_program *p = bpf_object__find_program_by_name(o->obj, name);
	if (!p) {
		throw_fmt(env, "bpf_object__find_program_by_name(%s, %s): no such program", obj_label(o), name);
		free(name);
		return NULL;
	}
	if (name_out)
		*name_out = name;
	else
		free(name);
	return p;
}

/* ------------------------------------------------------------------------ */
/* libbpfVersion() */

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

/* ------------------------------------------------------------------------ */
/* openObject(path, opts) */

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

static bool has_prop(napi_env env, napi_value obj, const char *name, napi_value *out)
{
	bool has = false;
	napi_has_named_property(env, obj, name, &has);
	if (!has)
		return false;
	napi_get_named_property(env, obj, name, out);
	napi_valuetype t;
	napi_typeof(env, *out, &t);
	return t != napi_undefined && t != napi_null;
}

static napi_value js_open_object(napi_env env, napi_callback_info cbi)
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
		throw_fmt(env, "bpf_object__open_file(%s): %s%s%s", path, strerror(e), g_log_len ? "\nlibbpf: " : "", log_tail(1500));
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

	int err = bpf_object__load(o->obj);
	if (err) {
		throw_fmt(env, "bpf_object__load(%s): %s%s%s", path, strerror(-err), g_log_len ? "\nlibbpf: " : "", log_tail(2500));
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
static napi_value js_programs(napi_env env, napi_callback_info cbi)
{
	napi_value argv[1];
	if (!get_args(env, cbi, 1, argv, "programs"))
		return NULL;
	struct cw_obj *o = get_obj(env, argv[0], NULL);
	if (!o)
		return NULL;
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

/* ------------------------------------------------------------------------ */
/* attach */

static napi_value add_link(napi_env env, int64_t obj_h, struct bpf_link *link, int fd, int perf_fd)
{
	struct cw_link *l = calloc(1, sizeof(*l));
	if (!l)
		return throw_fmt(env, "attach: out of memory");
	l->obj = (int)obj_h;
	l->link = link;
	l->fd = fd;
	l->perf_fd = perf_fd;
	int h = table_add(&g_links, l);
	if (h < 0) {
		free(l);
		return throw_fmt(env, "attach: out of memory");
	}
	return make_int(env, h);
}

/* attachUprobeMulti(obj, prog, path, offsets, cookies, retprobe, pid) */
static napi_value js_attach_uprobe_multi(napi_env env, napi_callback_info cbi)
{
	napi_value argv[7];
	if (!get_args(env, cbi, 7, argv, "attachUprobeMulti"))
		return NULL;
	int64_t oh;
	struct cw_obj *o = get_obj(env, argv[0], &oh);
	if (!o)
		return NULL;
	char *pname = NULL;
	struct bpf_program *p = find_prog(env, o, argv[1], &pname);
	if (!p)
		return NULL;
	napi_value result = NULL;
	char *path = NULL;
	uint64_t *offs = NULL, *cookies = NULL;
	uint32_t noff = 0, ncookie = 0;
	bool ret = false;
	int64_t pid = 0;

	if (!(path = get_str(env, argv[2], "binaryPath")))
		goto out;
	if (!(offs = get_u64_array(env, argv[3], &noff, "offsets")))
		goto out;
	if (!(cookies = get_u64_array(env, argv[4], &ncookie, "cookies")))
		goto out;
	if (!get_bool(env, argv[5], &ret, "retprobe") || !get_i64(env, argv[6], &pid, "pid"))
		goto out;
	if (noff == 0 || noff != ncookie) {
		throw_fmt(env, "attachUprobeMulti(%s:%s, %s): need as many cookies as offsets (>0), got %u and %u",
			  obj_label(o), pname, path, noff, ncookie);
		goto out;
	}
	int prog_fd = bpf_program__fd(p);
	if (prog_fd < 0) {
		throw_fmt(env, "attachUprobeMulti(%s:%s): program not loaded", obj_label(o), pname);
		goto out;
	}
	struct cw_link_create_uprobe_multi attr;
	memset(&attr, 0, sizeof(attr));
	attr.prog_fd = (uint32_t)prog_fd;
	attr.attach_type = CW_BPF_TRACE_UPROBE_MULTI;
	attr.path = (uint64_t)(uintptr_t)path;
	attr.offsets = (uint64_t)(uintptr_t)offs;
	attr.cookies = (uint64_t)(uintptr_t)cookies;
	attr.cnt = noff;
	attr.um_flags = ret ? CW_BPF_F_UPROBE_MULTI_RETURN : 0;
	attr.pid = (uint32_t)pid;
	int fd = (int)syscall(__NR_bpf, BPF_LINK_CREATE, &attr, sizeof(attr));
	if (fd < 0) {
		int e = errno;
		throw_fmt(env, "BPF_LINK_CREATE(uprobe_multi, %s:%s, %s, %u offsets%s): %s (errno %d)%s", obj_label(o), pname, path,
			  noff, ret ? ", return" : "", strerror(e), e,
			  e == EINVAL ? " - was the program listed in uprobeMultiPrograms, and are the offsets function file offsets?" : "");
		goto out;
	}
	result = add_link(env, oh, NULL, fd, -1);
	if (!result)
		close(fd);
out:
	free(pname);
	free(path);
	free(offs);
	free(cookies);
	return result;
}

/*
 * Classic fallback for programs loaded for uprobe_multi: load (once) a twin
 * of the program from its final, relocated instructions with no expected
 * attach type, and attach that through a perf-event uprobe + BPF_PERF_EVENT
 * link carrying the cookie. Maps are shared (the instructions embed the same
 * map fds), so records land in the same rings.
 */
static int classic_prog_fd(struct cw_obj *o, const struct bpf_program *p, char *err, size_t errlen)
{
	if ((int)bpf_program__expected_attach_type(p) != CW_BPF_TRACE_UPROBE_MULTI)
		return bpf_program__fd(p);
	for (size_t i = 0; i < o->ntwins; i++)
		if (o->twins[i].prog == p)
			return o->twins[i].fd;
	char *vlog = calloc(1, 65536);
	LIBBPF_OPTS(bpf_prog_load_opts, lo, .log_buf = vlog, .log_size = vlog ? 65536 : 0, .log_level = 0);
	int fd = bpf_prog_load(BPF_PROG_TYPE_KPROBE, bpf_program__name(p), "Dual BSD/GPL", bpf_program__insns(p),
			       bpf_program__insn_cnt(p), &lo);
	if (fd < 0) {
		int e = errno;
		snprintf(err, errlen, "bpf_prog_load(classic twin of %s): %s %s", bpf_program__name(p), strerror(e), vlog ? vlog : "");
		free(vlog);
		return -1;
	}
	free(vlog);
	struct cw_twin *t = realloc(o->twins, (o->ntwins + 1) * sizeof(*t));
	if (!t) {
		close(fd);
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	o->twins = t;
	t[o->ntwins].prog = p;
	t[o->ntwins].fd = fd;
	o->ntwins++;
	return fd;
}

static int read_sysfs_int(const char *path, const char *prefix)
{
	char buf[64] = { 0 };
	FILE *f = fopen(path, "r");
	if (!f)
		return -1;
	if (!fgets(buf, sizeof(buf), f)) {
		fclose(f);
		return -1;
	}
	fclose(f);
	size_t pl = strlen(prefix);
	if (strncmp(buf, prefix, pl) != 0)
		return -1;
	return atoi(buf + pl);
}

/* perf-event uprobe + link, like libbpf's attach path, for a raw prog fd */
static int perf_uprobe_link(int prog_fd, const char *path, uint64_t off, uint64_t cookie, bool ret, int64_t pid, int *perf_fd_out)
{
	int type = read_sysfs_int("/sys/bus/event_source/devices/uprobe/type", "");
	int bit = read_sysfs_int("/sys/bus/event_source/devices/uprobe/format/retprobe", "config:");
	if (type < 0 || (ret && bit < 0)) {
		errno = ENOTSUP;
		return -1;
	}
	struct perf_event_attr attr;
	memset(&attr, 0, sizeof(attr));
	attr.size = sizeof(attr);
	attr.type = (uint32_t)type;
	attr.config = ret ? 1ull << bit : 0;
	attr.config1 = (uint64_t)(uintptr_t)path; /* uprobe_path */
	attr.config2 = off;                        /* probe_offset */
	int pfd = (int)syscall(__NR_perf_event_open, &attr, pid > 0 ? (pid_t)pid : -1, pid > 0 ? -1 : 0, -1, PERF_FLAG_FD_CLOEXEC);
	if (pfd < 0)
		return -1;
	LIBBPF_OPTS(bpf_link_create_opts, lo, .perf_event.bpf_cookie = cookie);
	int lfd = bpf_link_create(prog_fd, pfd, BPF_PERF_EVENT, &lo);
	if (lfd < 0) {
		int e = errno;
		close(pfd);
		errno = e;
		return -1;
	}
	*perf_fd_out = pfd;
	return lfd;
}

/* attachUprobe(obj, prog, path, offset, cookie, retprobe, pid) */
static napi_value js_attach_uprobe(napi_env env, napi_callback_info cbi)
{
	napi_value argv[7];
	if (!get_args(env, cbi, 7, argv, "attachUprobe"))
		return NULL;
	int64_t oh;
	struct cw_obj *o = get_obj(env, argv[0], &oh);
	if (!o)
		return NULL;
	char *pname = NULL;
	struct bpf_program *p = find_prog(env, o, argv[1], &pname);
	if (!p)
		return NULL;
	napi_value result = NULL;
	char *path = get_str(env, argv[2], "binaryPath");
	int64_t off, cookie, pid;
	bool ret;
	if (!path || !get_i64(env, argv[3], &off, "offset") || !get_i64(env, argv[4], &cookie, "cookie") ||
	    !get_bool(env, argv[5], &ret, "retprobe") || !get_i64(env, argv[6], &pid, "pid"))
		goto out;
	if ((int)bpf_program__expected_attach_type(p) == CW_BPF_TRACE_UPROBE_MULTI) {
		char err[3072] = { 0 };
		int pfd = -1, tfd = classic_prog_fd(o, p, err, sizeof(err));
		if (tfd < 0) {
			throw_fmt(env, "attachUprobe(%s:%s): %s", obj_label(o), pname, err);
			goto out;
		}
		int lfd = perf_uprobe_link(tfd, path, (uint64_t)off, (uint64_t)cookie, ret, pid, &pfd);
		if (lfd < 0) {
			int e = errno;
			throw_fmt(env, "perf_event_open(uprobe)+bpf_link_create(%s:%s, %s, offset 0x%llx%s): %s (errno %d)", obj_label(o),
				  pname, path, (unsigned long long)off, ret ? ", return" : "", strerror(e), e);
			goto out;
		}
		result = add_link(env, oh, NULL, lfd, pfd);
		if (!result) {
			close(lfd);
			close(pfd);
		}
		goto out;
	}
	LIBBPF_OPTS(bpf_uprobe_opts, uo, .bpf_cookie = (uint64_t)cookie, .retprobe = ret);
	struct bpf_link *l = bpf_program__attach_uprobe_opts(p, pid > 0 ? (pid_t)pid : -1, path, (size_t)off, &uo);
	long err = libbpf_get_error(l);
	if (!l || err) {
		int e = err ? (int)-err : errno;
		throw_fmt(env, "bpf_program__attach_uprobe_opts(%s:%s, %s, offset 0x%llx%s): %s (errno %d)", obj_label(o), pname,
			  path, (unsigned long long)off, ret ? ", return" : "", strerror(e), e);
		goto out;
	}
	result = add_link(env, oh, l, -1, -1);
	if (!result)
		bpf_link__destroy(l);
out:
	free(pname);
	free(path);
	return result;
}

/* attachAuto(obj, prog) */
static napi_value js_attach_auto(napi_env env, napi_callback_info cbi)
{
	napi_value argv[2];
	if (!get_args(env, cbi, 2, argv, "attachAuto"))
		return NULL;
	int64_t oh;
	struct cw_obj *o = get_obj(env, argv[0], &oh);
	if (!o)
		return NULL;
	char *pname = NULL;
	struct bpf_program *p = find_prog(env, o, argv[1], &pname);
	if (!p)
		return NULL;
	struct bpf_link *l = bpf_program__attach(p);
	long err = libbpf_get_error(l);
	if (!l || err) {
		int e = err ? (int)-err : errno;
		throw_fmt(env, "bpf_program__attach(%s:%s, %s): %s (errno %d)", obj_label(o), pname,
			  bpf_program__section_name(p), strerror(e), e);
		free(pname);
		return NULL;
	}
	free(pname);
	napi_value r = add_link(env, oh, l, -1, -1);
	if (!r)
		bpf_link__destroy(l);
	return r;
}

/* ------------------------------------------------------------------------ */
/* detach: destroy links in parallel. Each classic uprobe link blocks its
 * caller for an RCU grace period when destroyed; N of them serially cost N
 * grace periods, in parallel about one. */

#define DETACH_MAX_THREADS 64

struct detach_job {
	struct cw_link **links;
	size_t n;
	size_t next; /* atomic */
};

static void link_destroy(struct cw_link *l)
{
	if (l->link)
		bpf_link__destroy(l->link);
	if (l->fd >= 0)
		close(l->fd);
	if (l->perf_fd >= 0)
		close(l->perf_fd);
	free(l);
}

static void *detach_worker(void *arg)
{
	struct detach_job *j = arg;
	for (;;) {
		size_t i = __atomic_fetch_add(&j->next, 1, __ATOMIC_RELAXED);
		if (i >= j->n)
			break;
		link_destroy(j->links[i]);
	}
	return NULL;
}

static void destroy_links(struct cw_link **links, size_t n)
{
	if (n == 0)
		return;
	struct detach_job job = { .links = links, .n = n, .next = 0 };
	size_t nthreads = n < DETACH_MAX_THREADS ? n : DETACH_MAX_THREADS;
	pthread_t th[DETACH_MAX_THREADS];
	size_t started = 0;
	/* the calling thread works too; extra threads only when n > 1 */
	for (size_t i = 1; i < nthreads; i++) {
		if (pthread_create(&th[started], NULL, detach_worker, &job) != 0)
			break; /* fewer threads: the rest is done by those running */
		started++;
	}
	detach_worker(&job);
	for (size_t i = 0; i < started; i++)
		pthread_join(th[i], NULL);
}

static napi_value js_detach(napi_env env, napi_callback_info cbi)
{
	napi_value argv[1];
	if (!get_args(env, cbi, 1, argv, "detach"))
		return NULL;
	uint32_t n = 0;
	uint64_t *hs = get_u64_array(env, argv[0], &n, "links");
	if (!hs)
		return NULL;
	struct cw_link **ls = calloc(n ? n : 1, sizeof(*ls));
	size_t cnt = 0;
	for (uint32_t i = 0; i < n; i++) {
		struct cw_link *l = table_get(&g_links, (int64_t)hs[i]);
		if (!l)
			continue; /* already detached: detach is idempotent */
		table_del(&g_links, (int64_t)hs[i]);
		ls[cnt++] = l;
	}
	destroy_links(ls, cnt);
	free(ls);
	free(hs);
	return NULL;
}

/* ------------------------------------------------------------------------ */
/* ring buffers */

static int drain_cb(void *ctx, void *data, size_t size)
{
	struct cw_ring *r = ctx;
	size_t slot = CW_SLOT(size);
	if (slot > r->cap - r->pos) {
		/* only a record larger than CW_MAX_RECORD can get here: it is
		 * consumed by libbpf whatever we return, so count it */
		r->oversize++;
		return CW_DRAIN_STOP;
	}
	uint8_t *p = r->out + r->pos;
	uint32_t len = (uint32_t)size;
	memcpy(p, &len, 4);
	memcpy(p + 4, data, size);
	memset(p + 4 + size, 0, slot - 4 - size);
	r->pos += slot;
	/* libbpf advances the consumer position past this record before
	 * acting on a negative return, so stopping here loses nothing */
	if (r->cap - r->pos < CW_MAX_SLOT)
		return CW_DRAIN_STOP;
	return 0;
}

static napi_value js_ring_open(napi_env env, napi_callback_info cbi)
{
	napi_value argv[2];
	if (!get_args(env, cbi, 2, argv, "ringOpen"))
		return NULL;
	int64_t oh;
	struct cw_obj *o = get_obj(env, argv[0], &oh);
	if (!o)
		return NULL;
	char *name = NULL;
	struct bpf_map *m = find_map(env, o, argv[1], &name);
	if (!m)
		return NULL;
	if (bpf_map__type(m) != BPF_MAP_TYPE_RINGBUF) {
		throw_fmt(env, "ringOpen(%s, %s): not a BPF_MAP_TYPE_RINGBUF map", obj_label(o), name);
		free(name);
		return NULL;
	}
	struct cw_ring *r = calloc(1, sizeof(*r));
	r->obj = (int)oh;
	r->rb = ring_buffer__new(bpf_map__fd(m), drain_cb, r, NULL);
	long err = libbpf_get_error(r->rb);
	if (!r->rb || err) {
		int e = err ? (int)-err : errno;
		throw_fmt(env, "ring_buffer__new(%s, %s): %s", obj_label(o), name, strerror(e));
		free(r);
		free(name);
		return NULL;
	}
	free(name);
	int h = table_add(&g_rings, r);
	if (h < 0) {
		ring_buffer__free(r->rb);
		free(r);
		return throw_fmt(env, "ringOpen: out of memory");
	}
	return make_int(env, h);
}

static napi_value js_drain(napi_env env, napi_callback_info cbi)
{
	napi_value argv[2];
	if (!get_args(env, cbi, 2, argv, "drain"))
		return NULL;
	int64_t h;
	if (!get_i64(env, argv[0], &h, "ring handle"))
		return NULL;
	struct cw_ring *r = table_get(&g_rings, h);
	if (!r)
		return throw_fmt(env, "drain: invalid or closed ring handle %lld", (long long)h);
	void *data;
	size_t len;
	if (!get_buffer(env, argv[1], &data, &len, "drain out"))
		return NULL;
	if (len < CW_MAX_SLOT)
		return throw_fmt(env, "drain: out buffer of %zu bytes cannot hold one record (need >= %zu)", len, (size_t)CW_MAX_SLOT);
	r->out = data;
	r->cap = len;
	r->pos = 0;
	uint64_t oversize_before = r->oversize;
	int err = ring_buffer__consume(r->rb);
	r->out = NULL;
	if (err < 0 && err != CW_DRAIN_STOP)
		return throw_fmt(env, "ring_buffer__consume: %s", strerror(-err));
	if (r->oversize != oversize_before)
		return throw_fmt(env, "drain: %llu record(s) larger than %d bytes were dropped: events.h and the addon disagree",
				 (unsigned long long)(r->oversize - oversize_before), CW_MAX_RECORD);
	napi_value v;
	napi_create_double(env, (double)r->pos, &v);
	return v;
}

/* ------------------------------------------------------------------------ */
/* maps */

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

static napi_value js_read_percpu_counters(napi_env env, napi_callback_info cbi)
{
	napi_value argv[2];
	if (!get_args(env, cbi, 2, argv, "readPercpuCounters"))
		return NULL;
	struct cw_obj *o = get_obj(env, argv[0], NULL);
	if (!o)
		return NULL;
	char *name = NULL;
	struct bpf_map *m = find_map(env, o, argv[1], &name);
	if (!m)
		return NULL;
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

static napi_value js_map_lookup(napi_env env, napi_callback_info cbi)
{
	napi_value argv[3];
	if (!get_args(env, cbi, 3, argv, "mapLookup"))
		return NULL;
	struct cw_obj *o = get_obj(env, argv[0], NULL);
	if (!o)
		return NULL;
	char *name = NULL;
	struct bpf_map *m = find_map(env, o, argv[1], &name);
	if (!m)
		return NULL;
	void *key;
	size_t klen;
	napi_value result = NULL;
	if (!get_buffer(env, argv[2], &key, &klen, "mapLookup key"))
		goto out;
	if (klen != bpf_map__key_size(m)) {
		throw_fmt(env, "mapLookup(%s, %s): key is %zu bytes, map key size is %u", obj_label(o), name, klen, bpf_map__key_size(m));
		goto out;
	}
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

static napi_value js_map_update(napi_env env, napi_callback_info cbi)
{
	napi_value argv[4];
	if (!get_args(env, cbi, 4, argv, "mapUpdate"))
		return NULL;
	struct cw_obj *o = get_obj(env, argv[0], NULL);
	if (!o)
		return NULL;
	char *name = NULL;
	struct bpf_map *m = find_map(env, o, argv[1], &name);
	if (!m)
		return NULL;
	void *key, *val;
	size_t klen, vlen;
	if (!get_buffer(env, argv[2], &key, &klen, "mapUpdate key") || !get_buffer(env, argv[3], &val, &vlen, "mapUpdate value"))
		goto out;
	if (klen != bpf_map__key_size(m) || vlen != map_value_bytes(m)) {
		throw_fmt(env, "mapUpdate(%s, %s): key/value are %zu/%zu bytes, map wants %u/%zu", obj_label(o), name, klen, vlen,
			  bpf_map__key_size(m), map_value_bytes(m));
		goto out;
	}
	if (bpf_map_update_elem(bpf_map__fd(m), key, val, BPF_ANY)) {
		int e = errno;
		throw_fmt(env, "bpf_map_update_elem(%s, %s): %s", obj_label(o), name, strerror(e));
	}
out:
	free(name);
	return NULL;
}

static napi_value js_map_delete(napi_env env, napi_callback_info cbi)
{
	napi_value argv[3];
	if (!get_args(env, cbi, 3, argv, "mapDelete"))
		return NULL;
	struct cw_obj *o = get_obj(env, argv[0], NULL);
	if (!o)
		return NULL;
	char *name = NULL;
	struct bpf_map *m = find_map(env, o, argv[1], &name);
	if (!m)
		return NULL;
	void *key;
	size_t klen;
	napi_value result = NULL;
	if (!get_buffer(env, argv[2], &key, &klen, "mapDelete key"))
		goto out;
	if (klen != bpf_map__key_size(m)) {
		throw_fmt(env, "mapDelete(%s, %s): key is %zu bytes, map key size is %u", obj_label(o), name, klen, bpf_map__key_size(m));
		goto out;
	}
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

static napi_value js_map_keys(napi_env env, napi_callback_info cbi)
{
	napi_value argv[2];
	if (!get_args(env, cbi, 2, argv, "mapKeys"))
		return NULL;
	struct cw_obj *o = get_obj(env, argv[0], NULL);
	if (!o)
		return NULL;
	char *name = NULL;
	struct bpf_map *m = find_map(env, o, argv[1], &name);
	if (!m)
		return NULL;
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

static napi_value js_stack_frames(napi_env env, napi_callback_info cbi)
{
	napi_value argv[3];
	if (!get_args(env, cbi, 3, argv, "stackFrames"))
		return NULL;
	struct cw_obj *o = get_obj(env, argv[0], NULL);
	if (!o)
		return NULL;
	char *name = NULL;
	struct bpf_map *m = find_map(env, o, argv[1], &name);
	if (!m)
		return NULL;
	int64_t id;
	napi_value arr = NULL;
	if (!get_i64(env, argv[2], &id, "stackId"))
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

static napi_value js_monotonic_ns(napi_env env, napi_callback_info cbi)
{
	(void)cbi;
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	napi_value v;
	napi_create_bigint_uint64(env, (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec, &v);
	return v;
}

/* closeObject(obj): rings, then links (in parallel), then the object */
static napi_value js_close_object(napi_env env, napi_callback_info cbi)
{
	napi_value argv[1];
	if (!get_args(env, cbi, 1, argv, "closeObject"))
		return NULL;
	int64_t h;
	if (!get_i64(env, argv[0], &h, "object handle"))
		return NULL;
	struct cw_obj *o = table_get(&g_objs, h);
	if (!o)
		return NULL; /* closing twice is harmless */
	for (size_t i = 0; i < g_rings.cap; i++) {
		struct cw_ring *r = g_rings.items[i];
		if (r && r->obj == h) {
			ring_buffer__free(r->rb);
			free(r);
			g_rings.items[i] = NULL;
		}
	}
	struct cw_link **ls = calloc(g_links.cap ? g_links.cap : 1, sizeof(*ls));
	size_t n = 0;
	for (size_t i = 0; i < g_links.cap; i++) {
		struct cw_link *l = g_links.items[i];
		if (l && l->obj == h) {
			ls[n++] = l;
			g_links.items[i] = NULL;
		}
	}
	destroy_links(ls, n);
	free(ls);
	for (size_t i = 0; i < o->ntwins; i++)
		close(o->twins[i].fd);
	free(o->twins);
	bpf_object__close(o->obj);
	free(o->path);
	free(o);
	table_del(&g_objs, h);
	return NULL;
}

/* ------------------------------------------------------------------------ */

NAPI_MODULE_INIT(/* napi_env env, napi_value exports */)
{
	const char *dbg = getenv("CAUSEWAY_LIBBPF_DEBUG");
	g_log_stderr = !dbg || !dbg[0] ? 0 : dbg[0] == '2' ? 2 : 1;
	libbpf_set_print(libbpf_log);

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
		{ "readPercpuCounters", js_read_percpu_counters },
		{ "mapLookup", js_map_lookup },
		{ "mapUpdate", js_map_update },
		{ "mapDelete", js_map_delete },
		{ "mapKeys", js_map_keys },
		{ "stackFrames", js_stack_frames },
		{ "monotonicNs", js_monotonic_ns },
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
