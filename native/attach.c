// SPDX-License-Identifier: Apache-2.0
/*
 * attach.c: links, from creation to destruction. Three ways in:
 *  - attachUprobeMulti: one BPF_LINK_CREATE for many offsets of one binary
 *    (kernel >= 6.6), by raw syscall because libbpf 1.1 predates it;
 *  - attachUprobe: one classic uprobe; for a program loaded for
 *    uprobe_multi this goes through a "classic twin" (see classic_prog_fd),
 *    so the TypeScript fallback needs no second object;
 *  - attachAuto: libbpf's section-name attach (tracepoints, tp_btf).
 * And one way out, detach/closeObject, which destroys links on several
 * threads because each classic uprobe detach waits for an RCU grace period.
 * No thread here ever touches JS.
 */
#include "causeway.h"

#include <linux/perf_event.h>
#include <pthread.h>
#include <sys/syscall.h>
#include <unistd.h>

/* uprobe_multi: kernel >= 6.6. Debian 12's linux/bpf.h and libbpf 1.1 predate
 * it, so the link_create layout is spelled out here (the attach type is in
 * causeway.h).
 * Checked against the running kernel's BTF (union bpf_attr in
 * /sys/kernel/btf/vmlinux: BPF_TRACE_UPROBE_MULTI = 48) and the UAPI header
 * include/uapi/linux/bpf.h (link_create.uprobe_multi: path, offsets,
 * ref_ctr_offsets, cookies as aligned u64, then cnt, flags, pid as u32). */

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

struct cw_link {
	int obj;               /* owning object handle */
	struct bpf_link *link; /* classic / auto links (libbpf) */
	int fd;                /* raw BPF_LINK_CREATE fd (uprobe_multi, twin perf links), else -1 */
	int perf_fd;           /* perf event under a twin's perf link, else -1 */
};

static struct table g_links;

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
napi_value js_attach_uprobe_multi(napi_env env, napi_callback_info cbi)
{
	struct cw_args a;
	if (!parse_args(env, cbi, "attachUprobeMulti", 7, CW_WANT_PROG, &a))
		return NULL;
	int64_t oh = a.oh;
	struct cw_obj *o = a.o;
	char *pname = a.name;
	struct bpf_program *p = a.prog;
	napi_value result = NULL;
	char *path = NULL;
	uint64_t *offs = NULL, *cookies = NULL;
	uint32_t noff = 0, ncookie = 0;
	bool ret = false;
	int64_t pid = 0;

	if (!(path = get_str(env, a.argv[2], "binaryPath")))
		goto out;
	if (!(offs = get_u64_array(env, a.argv[3], &noff, "offsets")))
		goto out;
	if (!(cookies = get_u64_array(env, a.argv[4], &ncookie, "cookies")))
		goto out;
	if (!get_bool(env, a.argv[5], &ret, "retprobe") || !get_i64(env, a.argv[6], &pid, "pid"))
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
napi_value js_attach_uprobe(napi_env env, napi_callback_info cbi)
{
	struct cw_args a;
	if (!parse_args(env, cbi, "attachUprobe", 7, CW_WANT_PROG, &a))
		return NULL;
	int64_t oh = a.oh;
	struct cw_obj *o = a.o;
	char *pname = a.name;
	struct bpf_program *p = a.prog;
	napi_value result = NULL;
	char *path = get_str(env, a.argv[2], "binaryPath");
	int64_t off, cookie, pid;
	bool ret;
	if (!path || !get_i64(env, a.argv[3], &off, "offset") || !get_i64(env, a.argv[4], &cookie, "cookie") ||
	    !get_bool(env, a.argv[5], &ret, "retprobe") || !get_i64(env, a.argv[6], &pid, "pid"))
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
napi_value js_attach_auto(napi_env env, napi_callback_info cbi)
{
	struct cw_args a;
	if (!parse_args(env, cbi, "attachAuto", 2, CW_WANT_PROG, &a))
		return NULL;
	int64_t oh = a.oh;
	struct cw_obj *o = a.o;
	char *pname = a.name;
	struct bpf_program *p = a.prog;
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

/* ---- detach --------------------------------------------------------------- */
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

napi_value js_detach(napi_env env, napi_callback_info cbi)
{
	struct cw_args a;
	if (!parse_args(env, cbi, "detach", 1, CW_ARGS_ONLY, &a))
		return NULL;
	uint32_t n = 0;
	uint64_t *hs = get_u64_array(env, a.argv[0], &n, "links");
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

/* closeObject's part: every link of one object, in parallel */
void links_destroy_for_obj(int64_t obj_h)
{
	struct cw_link **ls = calloc(g_links.cap ? g_links.cap : 1, sizeof(*ls));
	size_t n = 0;
	for (size_t i = 0; i < g_links.cap; i++) {
		struct cw_link *l = g_links.items[i];
		if (l && l->obj == obj_h) {
			ls[n++] = l;
			g_links.items[i] = NULL;
		}
	}
	destroy_links(ls, n);
	free(ls);
}
