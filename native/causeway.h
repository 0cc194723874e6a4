// SPDX-License-Identifier: Apache-2.0
/*
 * causeway.h: internal header of the causeway.node addon, shared by its .c
 * files (never included from anywhere else; the JS surface is
 * src/probe/addon-types.ts). See addon.c for the list of files and what each
 * one owns.
 *
 * Conventions every file follows:
 *  - Handles are small integers indexing the tables (1-based; 0 is never a
 *    handle). Objects live in g_objs (handles.c); links and rings are private
 *    to attach.c and drain.c.
 *  - Errors are thrown as JS Errors naming the libbpf call, the
 *    object/program/path and errno text; a function that threw returns NULL
 *    (napi_value) or false (bool).
 *  - Everything is built with -fvisibility=hidden (binding.gyp): the only
 *    exported symbol is the module init, so these plain names cannot clash
 *    with symbols of node itself or of other addons.
 */
#ifndef CAUSEWAY_H
#define CAUSEWAY_H

#define _GNU_SOURCE
#define NAPI_VERSION 8
#include <node_api.h>

#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* uprobe_multi attach type (kernel >= 6.6), newer than Debian 12's
 * linux/bpf.h and libbpf 1.1: object.c marks programs with it, attach.c
 * creates the links (its layout is spelled out there). */
#define CW_BPF_TRACE_UPROBE_MULTI 48
#define CW_BPF_F_UPROBE_MULTI_RETURN (1U << 0)

/* ---- handle tables (handles.c) ------------------------------------------ */

/* A classic-attach twin of a program loaded for uprobe_multi (see
 * classic_prog_fd in attach.c): the kernel refuses to attach a program whose
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

struct table {
	void **items;
	size_t cap;
};

extern struct table g_objs;

int table_add(struct table *t, void *item);
void *table_get(struct table *t, int64_t h);
void table_del(struct table *t, int64_t h);

/* ---- libbpf log (log.c) ------------------------------------------------- */

void log_init(void);
void log_reset(void);
size_t log_len(void);
const char *log_tail(size_t max);

/* ---- N-API argument helpers (args.c) ------------------------------------ */

#define NAPI_OK(call)                                                              \
	do {                                                                       \
		if ((call) != napi_ok) {                                           \
			throw_napi(env, #call);                                    \
			return NULL;                                               \
		}                                                                  \
	} while (0)

napi_value throw_fmt(napi_env env, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void throw_napi(napi_env env, const char *what);
bool get_i64(napi_env env, napi_value v, int64_t *out, const char *what);
bool get_bool(napi_env env, napi_value v, bool *out, const char *what);
char *get_str(napi_env env, napi_value v, const char *what);
uint64_t *get_u64_array(napi_env env, napi_value v, uint32_t *n, const char *what);
bool get_buffer(napi_env env, napi_value v, void **data, size_t *len, const char *what);
bool has_prop(napi_env env, napi_value obj, const char *name, napi_value *out);
napi_value make_int(napi_env env, int64_t x);

struct cw_obj *get_obj(napi_env env, napi_value v, int64_t *h_out);
const char *obj_label(struct cw_obj *o);
struct bpf_map *find_map(napi_env env, struct cw_obj *o, napi_value name_v, char **name_out);
struct bpf_program *find_prog(napi_env env, struct cw_obj *o, napi_value name_v, char **name_out);

/*
 * parse_args(): the prologue shared by the JS entry points. Fetches exactly
 * `want` arguments (fewer is an error naming `fn`), then, as `what` asks,
 * resolves argv[0] to an open object and argv[1] to one of its maps or
 * programs. On success a.name holds the malloc'ed map/program name (the
 * caller frees it); on failure an exception is pending and nothing is held.
 */
#define CW_MAX_ARGS 7
enum cw_want {
	CW_ARGS_ONLY = 0,
	CW_WANT_OBJ = 1,               /* argv[0]: object handle */
	CW_WANT_MAP = 2 | CW_WANT_OBJ,  /* argv[1]: map name in that object */
	CW_WANT_PROG = 4 | CW_WANT_OBJ, /* argv[1]: program name in that object */
};

struct cw_args {
	napi_value argv[CW_MAX_ARGS];
	int64_t oh;               /* object handle (CW_WANT_OBJ) */
	struct cw_obj *o;         /* the object (CW_WANT_OBJ) */
	char *name;               /* map/program name, malloc'ed (CW_WANT_MAP/PROG) */
	struct bpf_map *map;      /* CW_WANT_MAP */
	struct bpf_program *prog; /* CW_WANT_PROG */
};

bool parse_args(napi_env env, napi_callback_info cbi, const char *fn, size_t want, enum cw_want what, struct cw_args *a);

/* ---- cross-file teardown, used by closeObject (object.c) ---------------- */

void links_destroy_for_obj(int64_t obj_h); /* attach.c: in parallel */
void rings_free_for_obj(int64_t obj_h);    /* drain.c */

/* ---- JS entry points, one line each in addon.c's export table ----------- */

napi_value js_open_object(napi_env env, napi_callback_info cbi);   /* object.c */
napi_value js_programs(napi_env env, napi_callback_info cbi);      /* object.c */
napi_value js_close_object(napi_env env, napi_callback_info cbi);  /* object.c */
napi_value js_attach_uprobe_multi(napi_env env, napi_callback_info cbi); /* attach.c */
napi_value js_attach_uprobe(napi_env env, napi_callback_info cbi);       /* attach.c */
napi_value js_attach_auto(napi_env env, napi_callback_info cbi);         /* attach.c */
napi_value js_detach(napi_env env, napi_callback_info cbi);         /* attach.c */
napi_value js_ring_open(napi_env env, napi_callback_info cbi);      /* drain.c */
napi_value js_drain(napi_env env, napi_callback_info cbi);          /* drain.c */
napi_value js_ring_watch(napi_env env, napi_callback_info cbi);     /* drain.c */
napi_value js_read_percpu_counters(napi_env env, napi_callback_info cbi); /* maps.c */
napi_value js_map_lookup(napi_env env, napi_callback_info cbi);     /* maps.c */
napi_value js_map_update(napi_env env, napi_callback_info cbi);     /* maps.c */
napi_value js_map_delete(napi_env env, napi_callback_info cbi);     /* maps.c */
napi_value js_map_keys(napi_env env, napi_callback_info cbi);       /* maps.c */
napi_value js_map_fd(napi_env env, napi_callback_info cbi);         /* maps.c */
napi_value js_stack_frames(napi_env env, napi_callback_info cbi);   /* maps.c */
napi_value js_calibrate_calls(napi_env env, napi_callback_info cbi); /* calibrate.c */
napi_value js_calibrate_stamp_window(napi_env env, napi_callback_info cbi); /* calibrate.c */
napi_value js_thread_affinity(napi_env env, napi_callback_info cbi); /* affinity.c */

#endif /* CAUSEWAY_H */
