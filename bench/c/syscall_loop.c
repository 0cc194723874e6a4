/*
 * syscall_loop N: N getppid() system calls (raw, never cached by libc) in
 * batches; prints the median CPU ns per call over 9 batches as JSON. Measures
 * what an enabled syscall tracepoint adds to every system call of every
 * process (the slow syscall entry it switches all tasks to), which spawn
 * timings cannot resolve.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static int64_t cpu_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static int cmp(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
  long n = argc > 1 ? strtol(argv[1], NULL, 0) : 1000000;
  double per[9];
  for (int b = 0; b < 9; b++) {
    int64_t t0 = cpu_ns();
    for (long i = 0; i < n / 9; i++) syscall(SYS_getppid);
    per[b] = (double)(cpu_ns() - t0) / (double)(n / 9);
  }
  qsort(per, 9, sizeof per[0], cmp);
  printf("{\"calls\":%ld,\"cpu_ns_per_call_median\":%.1f,\"min\":%.1f,\"max\":%.1f}\n", n, per[4], per[0], per[8]);
  return 0;
}
