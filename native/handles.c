// SPDX-License-Identifier: Apache-2.0
/*
 * handles.c: the handle tables and name lookups. JS holds small integers,
 * never pointers, so a stale or forged handle is an "invalid or closed"
 * Error instead of a crash. Tables grow by doubling and reuse freed slots:
 * a long session that attaches and detaches repeatedly stays small.
 */
#include "causeway.h"

struct table g_objs;

int table_add(struct table *t, void *item)
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

void *table_get(struct table *t, int64_t h)
{
	if (h < 1 || (uint64_t)h > t->cap)
		return NULL;
	return t->items[h - 1];
}

void table_del(struct table *t, int64_t h)
{
	if (h >= 1 && (uint64_t)h <= t->cap)
		t->items[h - 1] = NULL;
}

struct cw_obj *get_obj(napi_env env, napi_value v, int64_t *h_out)
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

const char *obj_label(struct cw_obj *o)
{
	const char *s = strrchr(o->path, '/');
	return s ? s + 1 : o->path;
}

struct bpf_map *find_map(napi_env env, struct cw_obj *o, napi_value name_v, char **name_out)
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

struct bpf_program *find_prog(napi_env env, struct cw_obj *o, napi_value name_v, char **name_out)
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
