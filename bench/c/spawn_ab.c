/*
 * spawn_ab N EXE_A EXE_B: posix_spawn EXE_A and EXE_B alternately (N each,
 * the order flipping every pair) and wait for each; the CPU time of each
 * child from wait4's rusage (user + system, what the child ran from the
 * spawn to its exit: exec, loader, uprobe hits, exit teardown). Prints JSON:
 * median and trimmed mean (middle 80%) of A, of B and of the per-pair
 * differences A - B, in ns; and of each spawn's total CPU (the child's plus
 * this process's for that spawn: posix_spawn, wait4, reaping), for comparing
 * batches when what is measured touches both sides alike (tracepoints). Spawns next to each other in time see the same
 * load, so the difference of a pair cancels most of what other processes on
 * the machine do to the speed of both; with an uprobe on a file only A maps
 * (e.g. B a copy of A whose PT_INTERP names a copy of ld.so), A - B is what
 * that uprobe costs each process.
 */
#include <spawn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>

extern char **environ;

static int cmp(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static int64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static int64_t thread_cpu_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* one spawn + wait: the child's CPU ns; *wall: spawn to reaped; *total: the child's and this process's CPU for it */
static double run1(const char *exe, double *wall, double *total) {
  char *argv[] = {(char *)exe, NULL};
  pid_t pid;
  int64_t c0 = thread_cpu_ns();
  int64_t t0 = now_ns();
  if (posix_spawn(&pid, exe, NULL, NULL, argv, environ) != 0) {
    perror("posix_spawn");
    exit(2);
  }
  int st;
  struct rusage ru;
  if (wait4(pid, &st, 0, &ru) < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0) exit(3);
  *wall = (double)(now_ns() - t0);
  double child = ((double)ru.ru_utime.tv_sec + (double)ru.ru_stime.tv_sec) * 1e9 + ((double)ru.ru_utime.tv_usec + (double)ru.ru_stime.tv_usec) * 1e3;
  *total = child + (double)(thread_cpu_ns() - c0);
  return child;
}

static void summary(const char *name, double *v, long n, int last) {
  qsort(v, (size_t)n, sizeof v[0], cmp);
  long lo = n / 10, hi = n - n / 10;
  double s = 0;
  for (long i = lo; i < hi; i++) s += v[i];
  printf("\"%s_median\":%.0f,\"%s_tmean\":%.0f%s", name, v[n / 2], name, s / (double)(hi - lo), last ? "" : ",");
}

int main(int argc, char **argv) {
  if (argc < 4) {
    fprintf(stderr, "usage: spawn_ab N EXE_A EXE_B\n");
    return 1;
  }
  long n = strtol(argv[1], NULL, 0);
  if (n < 10) n = 10;
  double *a = calloc((size_t)n, sizeof(double)), *b = calloc((size_t)n, sizeof(double)), *d = calloc((size_t)n, sizeof(double));
  double *wa = calloc((size_t)n, sizeof(double)), *wb = calloc((size_t)n, sizeof(double)), *wd = calloc((size_t)n, sizeof(double));
  double *ta = calloc((size_t)n, sizeof(double)), *tb = calloc((size_t)n, sizeof(double));
  for (long i = 0; i < n; i++) {
    if (i & 1) {
      b[i] = run1(argv[3], &wb[i], &tb[i]);
      a[i] = run1(argv[2], &wa[i], &ta[i]);
    } else {
      a[i] = run1(argv[2], &wa[i], &ta[i]);
      b[i] = run1(argv[3], &wb[i], &tb[i]);
    }
    d[i] = a[i] - b[i];
    wd[i] = wa[i] - wb[i];
  }
  /* SPAWN_AB_RAW=1: first a line of every pair's child CPU (raw_a, raw_b) and total CPU (raw_ta, raw_tb), in pair order (for estimators that need the pairs) */
  const char *raw = getenv("SPAWN_AB_RAW");
  if (raw && raw[0] == '1') {
    printf("{\"raw_a\":[");
    for (long i = 0; i < n; i++) printf("%s%.0f", i ? "," : "", a[i]);
    printf("],\"raw_b\":[");
    for (long i = 0; i < n; i++) printf("%s%.0f", i ? "," : "", b[i]);
    printf("],\"raw_ta\":[");
    for (long i = 0; i < n; i++) printf("%s%.0f", i ? "," : "", ta[i]);
    printf("],\"raw_tb\":[");
    for (long i = 0; i < n; i++) printf("%s%.0f", i ? "," : "", tb[i]);
    printf("]}\n");
  }
  printf("{\"pairs\":%ld,", n);
  summary("a", a, n, 0);
  summary("b", b, n, 0);
  summary("diff", d, n, 0);
  summary("total_a", ta, n, 0);
  summary("total_b", tb, n, 0);
  summary("wall_a", wa, n, 0);
  summary("wall_diff", wd, n, 1);
  printf("}\n");
  return 0;
}
