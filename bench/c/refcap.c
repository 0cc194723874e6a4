/*
 * refcap: tiny libbpf loader for the per-call overhead benchmark.
 *
 *   refcap --obj FILE.bpf.o --mode empty|pair|refcap --lib LIB --func NAME
 *          [--pid TGID] [--stats]
 *
 * empty : empty_entry on LIB:NAME (uprobe only)
 * pair  : empty_entry + empty_return (uprobe + uretprobe)
 * refcap: refcap_entry + refcap_return from refcap.bpf.o, target_tgid = TGID,
 *         ring buffer drained with ring_buffer__consume() every 10 ms (the
 *         programs submit with BPF_RB_NO_WAKEUP, so nobody is woken per record)
 *
 * Prints "ready" on stdout once every probe is attached, runs until SIGINT or
 * SIGTERM, then prints one JSON line: records drained, ring-buffer drops and,
 * with --stats (BPF_ENABLE_STATS held for the run), each program's run_cnt,
 * so a check run can prove the empty programs fired.
 */
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../bpf/refcap.h"

static volatile sig_atomic_t stop;
static void on_sig(int s) { (void)s; stop = 1; }

static unsigned long long records;
static int on_rec(void *ctx, void *data, size_t len) {
  (void)ctx;
  (void)data;
  if (len >= sizeof(struct refcap_rec)) records++;
  return 0;
}

static struct bpf_link *attach(struct bpf_object *obj, const char *prog, const char *lib,
                               const char *func, int ret) {
  struct bpf_program *p = bpf_object__find_program_by_name(obj, prog);
  if (!p) {
    fprintf(stderr, "refcap: no program %s\n", prog);
    exit(2);
  }
  LIBBPF_OPTS(bpf_uprobe_opts, o, .func_name = func, .retprobe = ret);
  struct bpf_link *l = bpf_program__attach_uprobe_opts(p, -1, lib, 0, &o);
  if (!l) {
    fprintf(stderr, "refcap: attach %s to %s:%s failed: %s\n", prog, lib, func, strerror(errno));
    exit(2);
  }
  return l;
}

static unsigned long long run_cnt(struct bpf_object *obj, const char *prog) {
  struct bpf_program *p = bpf_object__find_program_by_name(obj, prog);
  struct bpf_prog_info info;
  __u32 len = sizeof(info);
  memset(&info, 0, sizeof(info));
  if (!p || bpf_obj_get_info_by_fd(bpf_program__fd(p), &info, &len)) return 0;
  return info.run_cnt;
}

int main(int argc, char **argv) {
  const char *objp = NULL, *mode = "refcap", *lib = NULL, *func = NULL;
  int pid = 0, stats = 0;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--obj") && i + 1 < argc) objp = argv[++i];
    else if (!strcmp(argv[i], "--mode") && i + 1 < argc) mode = argv[++i];
    else if (!strcmp(argv[i], "--lib") && i + 1 < argc) lib = argv[++i];
    else if (!strcmp(argv[i], "--func") && i + 1 < argc) func = argv[++i];
    else if (!strcmp(argv[i], "--pid") && i + 1 < argc) pid = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--stats")) stats = 1;
    else {
      fprintf(stderr, "usage: refcap --obj F --mode empty|pair|refcap --lib L --func F [--pid P] [--stats]\n");
      return 1;
    }
  }
  if (!objp || !lib || !func) {
    fprintf(stderr, "refcap: --obj, --lib and --func are required\n");
    return 1;
  }
  int is_ref = !strcmp(mode, "refcap");
  signal(SIGINT, on_sig);
  signal(SIGTERM, on_sig);

  int stats_fd = -1;
  if (stats) {
    stats_fd = bpf_enable_stats(BPF_STATS_RUN_TIME);
    if (stats_fd < 0) {
      fprintf(stderr, "refcap: bpf_enable_stats: %s\n", strerror(errno));
      return 2;
    }
  }
  struct bpf_object *obj = bpf_object__open_file(objp, NULL);
  if (!obj) {
    fprintf(stderr, "refcap: open %s: %s\n", objp, strerror(errno));
    return 2;
  }
  if (is_ref) {
    struct bpf_map *ro = bpf_object__find_map_by_name(obj, ".rodata");
    if (!ro) {
      fprintf(stderr, "refcap: no .rodata in %s\n", objp);
      return 2;
    }
    size_t sz;
    void *data = (void *)bpf_map__initial_value(ro, &sz);
    if (!data || sz < 4) return 2;
    *(__u32 *)data = (__u32)pid; /* target_tgid is the only rodata variable */
  }
  if (bpf_object__load(obj)) {
    fprintf(stderr, "refcap: load %s: %s\n", objp, strerror(errno));
    return 2;
  }
  const char *entry = is_ref ? "refcap_entry" : "empty_entry";
  const char *ret = is_ref ? "refcap_return" : "empty_return";
  struct bpf_link *l1 = attach(obj, entry, lib, func, 0), *l2 = NULL;
  if (strcmp(mode, "empty")) l2 = attach(obj, ret, lib, func, 1);

  struct ring_buffer *rb = NULL;
  int drops_fd = -1;
  if (is_ref) {
    rb = ring_buffer__new(bpf_object__find_map_fd_by_name(obj, "rb"), on_rec, NULL, NULL);
    drops_fd = bpf_object__find_map_fd_by_name(obj, "drops");
    if (!rb) return 2;
  }
  printf("ready\n");
  fflush(stdout);
  struct timespec ten_ms = {0, 10 * 1000 * 1000};
  while (!stop) {
    nanosleep(&ten_ms, NULL);
    if (rb) ring_buffer__consume(rb);
  }
  if (rb) ring_buffer__consume(rb);
  unsigned long long drops = 0;
  if (drops_fd >= 0) {
    int ncpu = libbpf_num_possible_cpus();
    unsigned long long *v = calloc((size_t)ncpu, sizeof(*v));
    __u32 k = 0;
    if (v && !bpf_map_lookup_elem(drops_fd, &k, v))
      for (int i = 0; i < ncpu; i++) drops += v[i];
    free(v);
  }
  printf("{\"mode\":\"%s\",\"records\":%llu,\"rb_drops\":%llu", mode, records, drops);
  if (stats) printf(",\"entry_runs\":%llu,\"return_runs\":%llu", run_cnt(obj, entry), l2 ? run_cnt(obj, ret) : 0ULL);
  printf("}\n");
  fflush(stdout);
  ring_buffer__free(rb);
  bpf_link__destroy(l1);
  bpf_link__destroy(l2);
  bpf_object__close(obj);
  if (stats_fd >= 0) close(stats_fd);
  return 0;
}
