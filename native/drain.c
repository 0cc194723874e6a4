// SPDX-License-Identifier: Apache-2.0
/*
 * drain.c: ring buffers. drain() is a synchronous, non-blocking copy of
 * every available record into a caller-owned Buffer, called from a JS timer:
 * no thread touches JS (worker threads + threadsafe functions measured slower
 * and are riskier), and one call moves a whole batch, so the per-record cost
 * is a memcpy, not a JS call.
 */
#include "causeway.h"

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

/* drain(ring, out): how many bytes of out were filled (layout above) */
napi_value js_drain(napi_env env, napi_callback_info cbi)
{
	struct cw_args a;
	if (!parse_args(env, cbi, "drain", 2, CW_ARGS_ONLY, &a))
		return NULL;
	int64_t h;
	if (!get_i64(env, a.argv[0], &h, "ring handle"))
		return NULL;
	struct cw_ring *r = table_get(&g_rings, h);
	if (!r)
		return throw_fmt(env, "drain: invalid or closed ring handle %lld", (long long)h);
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

/* closeObject's part: every ring of one object (before its maps go) */
void rings_free_for_obj(int64_t obj_h)
{
	for (size_t i = 0; i < g_rings.cap; i++) {
		struct cw_ring *r = g_rings.items[i];
		if (r && r->obj == obj_h) {
			ring_buffer__free(r->rb);
			free(r);
			g_rings.items[i] = NULL;
		}
	}
}
