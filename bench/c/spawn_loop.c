/*
 * spawn_loop N CMD...: posix_spawn CMD and wait for it, N times; prints the
 * wall ns per spawn+exec+exit (median of 5 batches of N/5) as JSON. Measures
 * what a system-wide trace costs processes that never load CUDA (the loader
 * probe fires at each exec's _dl_debug_state). Also prints the CPU ns per
 * spawn (this process + its reaped children, getrusage): what the kernel and
 * BPF work at fork/exec/exit costs, less sensitive to other load on the
 * machine than the wall time (which also includes waiting for a CPU), and
 * its system part alone (sys_ns_per_spawn_median): tracepoint programs and
 * uprobe hits run in the spawner's and its children's kernel time.
 */
#include <spawn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>

extern char **environ;

static int64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static int64_t tv_ns(struct timeval t) { return ((int64_t)t.tv_sec * 1000000LL + t.tv_usec) * 1000; }

/* user + system ns of this process and its reaped children; *sys: the system part */
static int64_t cpu_ns(int64_t *sys) {
  struct rusage s, c;
  getrusage(RUSAGE_SELF, &s);
  getrusage(RUSAGE_CHILDREN, &c);
  *sys = tv_ns(s.ru_stime) + tv_ns(c.ru_stime);
  return tv_ns(s.ru_utime) + tv_ns(c.ru_utime) + *sys;
}

static int cmp(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: spawn_loop N CMD [ARGS...]\n");
    return 1;
  }
  long n = strtol(argv[1], NULL, 0);
  if (n < 5) n = 5;
  double per[5], cpu[5], sys[5];
  for (int b = 0; b < 5; b++) {
    int64_t s0, s1;
    int64_t t0 = now_ns(), c0 = cpu_ns(&s0);
    for (long i = 0; i < n / 5; i++) {
      pid_t pid;
      if (posix_spawn(&pid, argv[2], NULL, NULL, argv + 2, environ) != 0) {
        perror("posix_spawn");
        return 2;
      }
      int st;
      if (waitpid(pid, &st, 0) < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0) return 3;
    }
    per[b] = (double)(now_ns() - t0) / (double)(n / 5);
    cpu[b] = (double)(cpu_ns(&s1) - c0) / (double)(n / 5);
    sys[b] = (double)(s1 - s0) / (double)(n / 5);
  }
  qsort(per, 5, sizeof per[0], cmp);
  qsort(cpu, 5, sizeof cpu[0], cmp);
  qsort(sys, 5, sizeof sys[0], cmp);
  printf("{\"spawns\":%ld,\"ns_per_spawn_median\":%.0f,\"min\":%.0f,\"max\":%.0f,\"cpu_ns_per_spawn_median\":%.0f,\"cpu_min\":%.0f,\"cpu_max\":%.0f,\"sys_ns_per_spawn_median\":%.0f}\n",
         n, per[2], per[0], per[4], cpu[2], cpu[0], cpu[4], sys[2]);
  return 0;
}
