// SPDX-License-Identifier: Apache-2.0
/*
 * args.c: JS value -> C conversions, each throwing an Error that names the
 * argument, plus parse_args(), the one prologue the entry points share
 * (argument count, object handle, map or program name). Keeping validation
 * here means every entry point rejects bad input the same way and the
 * libbpf-facing files only see checked C values.
 */
#include "causeway.h"

napi_value throw_fmt(napi_env env, const char *fmt, ...)
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

void throw_napi(napi_env env, const char *what)
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

bool get_i64(napi_env env, napi_value v, int64_t *out, const char *what)
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

bool get_bool(napi_env env, napi_value v, bool *out, const char *what)
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
char *get_str(napi_env env, napi_value v, const char *what)
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
uint64_t *get_u64_array(napi_env env, napi_value v, uint32_t *n, const char *what)
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

bool get_buffer(napi_env env, napi_value v, void **data, size_t *len, const char *what)
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

napi_value make_int(napi_env env, int64_t x)
{
	napi_value v;
	napi_create_int64(env, x, &v);
	return v;
}

bool has_prop(napi_env env, napi_value obj, const char *name, napi_value *out)
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

bool parse_args(napi_env env, napi_callback_info cbi, const char *fn, size_t want, enum cw_want what, struct cw_args *a)
{
	memset(a, 0, sizeof(*a));
	if (want > CW_MAX_ARGS)
		return throw_fmt(env, "%s: parse_args supports at most %d arguments", fn, CW_MAX_ARGS), false;
	if (!get_args(env, cbi, want, a->argv, fn))
		return false;
	if (!(what & CW_WANT_OBJ))
		return true;
	a->o = get_obj(env, a->argv[0], &a->oh);
	if (!a->o)
		return false;
	if ((what & CW_WANT_MAP) == CW_WANT_MAP)
		return (a->map = find_map(env, a->o, a->argv[1], &a->name)) != NULL;
	if ((what & CW_WANT_PROG) == CW_WANT_PROG)
		return (a->prog = find_prog(env, a->o, a->argv[1], &a->name)) != NULL;
	return true;
}
