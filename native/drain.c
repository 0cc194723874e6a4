// SPDX-License-Identifier: Apache-2.0
/*
 * drain.c: ring buffers. drain() is a synchronous, non-blocking copy of
 * every available record into a caller-owned Buffer, called from a JS timer:
 * no thread touches JS (worker threads + threadsafe functions measured slower
 * and are riskier), and one call moves a whole batch, so the per-record cost
 * is a memcpy, not a JS call.
 *
 * ringWatch() is the one exception to draining on a timer: a ring whose
 * records may mean "a process is parked, waiting for us" (rb_life) is watched
 * on the event loop itself (a uv_poll on the ring's map fd, readable when a
 * record was submitted with BPF_RB_FORCE_WAKEUP and is still there), so the
 * JS callback runs on the loop thread as soon as one arrives, and nothing
 * wakes the process when none does (a 2 ms poll timer woke it 500 times a
 * second, BENCHMARKS.md §7b).
 */
#include "causeway.h"
#include <uv.h>

struct cw_watch;

/*
 * drain(): every record in bpf/events.h is at most CW_MAX_RECORD bytes (the
 * largest, struct cw_exec, is 5168 at most and usually ~100 bytes: it is emitted
 * with its used length; test/probe/bpf-objects.test.ts asserts the bound). The output buffer is filled with [u32 len][record][pad to 8] and the
 * consumer stops while a max-size slot still fits.
 */
#define CW_MAX_RECORD 8192
#define CW_SLOT(len) (((size_t)(len) + 4 + 7) & ~(size_t)7)
#define CW_MAX_SLOT CW_SLOT(CW_MAX_RECORD)
#define CW_DRAIN_STOP (-ENOBUFS)

struct cw_ring {
	int obj;
	struct ring_buffer *rb;
	uint8_t *out;
	size_t cap;
	size_t pos;
	uint64_t oversize; /* records larger than CW_MAX_RECORD that could not be copied */
	int map_fd;
	struct cw_watch *watch; /* ringWatch(), or NULL */
};

static struct table g_rings;

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

/* ringOpen(obj, map) */
napi_value js_ring_open(napi_env env, napi_callback_info cbi)
{
	struct cw_args a;
	if (!parse_args(env, cbi, "ringOpen", 2, CW_WANT_MAP, &a))
		return NULL;
	int64_t oh = a.oh;
	struct cw_obj *o = a.o;
	char *name = a.name;
	struct bpf_map *m = a.map;
	if (bpf_map__type(m) != BPF_MAP_TYPE_RINGBUF) {
		throw_fmt(env, "ringOpen(%s, %s): not a BPF_MAP_TYPE_RINGBUF map", obj_label(o), name);
		free(name);
		return NULL;
	}
	struct cw_ring *r = calloc(1, sizeof(*r));
	r->obj = (int)oh;
	r->map_fd = bpf_map__fd(m);
	r->rb = ring_buffer__new(r->map_fd, drain_cb, r, NULL);
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

/* The ring a JS handle names; NULL with a JS exception pending (the message names `fn`) when there is none. */
static struct cw_ring *get_ring(napi_env env, napi_value handle, const char *fn)
{
	int64_t h;
	if (!get_i64(env, handle, &h, "ring handle"))
		return NULL;
	struct cw_ring *r = table_get(&g_rings, h);
	if (!r)
		throw_fmt(env, "%s: invalid or closed ring handle %lld", fn, (long long)h);
	return r;
}

/* drain(ring, out): how many bytes of out were filled (layout above) */
napi_value js_drain(napi_env env, napi_callback_info cbi)
{
	struct cw_args a;
	if (!parse_args(env, cbi, "drain", 2, CW_ARGS_ONLY, &a))
		return NULL;
	struct cw_ring *r = get_ring(env, a.argv[0], "drain");
	if (!r)
		return NULL;
	void *data;
	size_t len;
	if (!get_buffer(env, a.argv[1], &data, &len, "drain out"))
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

/*
 * One watch: its own allocation, so that stopping it (or closing the ring's
 * object) from inside its own callback is safe: the JS references and the
 * handle are released once the callback has returned.
 */
struct cw_watch {
	uv_poll_t poll; /* first: the close callback frees the whole struct */
	napi_env env;
	napi_ref cb;
	napi_async_context actx;
	bool busy;
	bool dead;
};

static void watch_closed(uv_handle_t *h)
{
	free(h);
}

static void watch_release(struct cw_watch *w)
{
	napi_delete_reference(w->env, w->cb);
	napi_async_destroy(w->env, w->actx);
	uv_close((uv_handle_t *)&w->poll, watch_closed);
}

/* stop watching: released now, or after its running callback returns */
static void ring_unwatch(struct cw_ring *r)
{
	struct cw_watch *w = r->watch;
	if (!w)
		return;
	r->watch = NULL;
	uv_poll_stop(&w->poll);
	w->dead = true;
	if (!w->busy)
		watch_release(w);
}

static void ring_readable(uv_poll_t *h, int status, int events)
{
	struct cw_watch *w = (struct cw_watch *)h;
	napi_env env = w->env;
	napi_handle_scope scope;
	napi_value cb, recv, ret;
	if (w->dead || napi_open_handle_scope(env, &scope) != napi_ok)
		return;
	w->busy = true;
	bool pending = false;
	/* the receiver must be an object (napi_make_callback converts it): the global, like a timer's */
	if (napi_get_reference_value(env, w->cb, &cb) == napi_ok && cb && napi_get_global(env, &recv) == napi_ok)
		napi_make_callback(env, w->actx, recv, cb, 0, NULL, &ret);
	/* the callback catches its own errors; never leave one pending on the loop */
	if (napi_is_exception_pending(env, &pending) == napi_ok && pending) {
		napi_value e;
		napi_get_and_clear_last_exception(env, &e);
	}
	w->busy = false;
	napi_close_handle_scope(env, scope);
	if (w->dead)
		watch_release(w);
}

/* ringWatch(ring, fn): call fn() on the event loop whenever the ring is woken with records in it; fn null: stop */
napi_value js_ring_watch(napi_env env, napi_callback_info cbi)
{
	struct cw_args a;
	if (!parse_args(env, cbi, "ringWatch", 2, CW_ARGS_ONLY, &a))
		return NULL;
	struct cw_ring *r = get_ring(env, a.argv[0], "ringWatch");
	if (!r)
		return NULL;
	napi_valuetype t;
	napi_typeof(env, a.argv[1], &t);
	ring_unwatch(r);
	if (t == napi_null || t == napi_undefined)
		return NULL;
	if (t != napi_function)
		return throw_fmt(env, "ringWatch: the callback must be a function or null");
	uv_loop_t *loop;
	if (napi_get_uv_event_loop(env, &loop) != napi_ok)
		return throw_fmt(env, "ringWatch: no event loop");
	struct cw_watch *w = calloc(1, sizeof(*w));
	if (!w)
		return throw_fmt(env, "ringWatch: out of memory");
	int err = uv_poll_init(loop, &w->poll, r->map_fd);
	if (err) {
		free(w);
		return throw_fmt(env, "ringWatch: uv_poll_init: %s", uv_strerror(err));
	}
	napi_value name;
	napi_create_string_utf8(env, "causeway.ringWatch", NAPI_AUTO_LENGTH, &name);
	if (napi_create_reference(env, a.argv[1], 1, &w->cb) != napi_ok) {
		uv_close((uv_handle_t *)&w->poll, watch_closed);
		return throw_fmt(env, "ringWatch: cannot keep the callback");
	}
	if (napi_async_init(env, NULL, name, &w->actx) != napi_ok) {
		napi_delete_reference(env, w->cb);
		uv_close((uv_handle_t *)&w->poll, watch_closed);
		return throw_fmt(env, "ringWatch: cannot keep the callback");
	}
	w->env = env;
	r->watch = w;
	err = uv_poll_start(&w->poll, UV_READABLE, ring_readable);
	if (err) {
		ring_unwatch(r);
		return throw_fmt(env, "ringWatch: uv_poll_start: %s", uv_strerror(err));
	}
	/* a watched ring alone does not keep the process alive (the capture timers decide) */
	uv_unref((uv_handle_t *)&w->poll);
	return NULL;
}

/* closeObject's part: every ring of one object (before its maps go) */
void rings_free_for_obj(int64_t obj_h)
{
	for (size_t i = 0; i < g_rings.cap; i++) {
		struct cw_ring *r = g_rings.items[i];
		if (r && r->obj == obj_h) {
			ring_unwatch(r);
			ring_buffer__free(r->rb);
			free(r);
			g_rings.items[i] = NULL;
		}
	}
}
