/* Shared by the benchmark workloads: clock and the start gate. */
#ifndef BENCH_COMMON_H
#define BENCH_COMMON_H
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static inline int64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static inline int64_t thread_cpu_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* BENCH_GATE=FILE: wait (polling every 1 ms) until FILE exists, so the timed
 * loop starts only after the tracer under test reported itself attached. */
static inline void wait_gate(void) {
  const char *g = getenv("BENCH_GATE");
  if (!g || !*g) return;
  fprintf(stderr, "gate-wait %d\n", (int)getpid());
  struct timespec ms = {0, 1000 * 1000};
  int64_t t0 = now_ns();
  while (access(g, F_OK) != 0) {
    nanosleep(&ms, NULL);
    if (now_ns() - t0 > 60LL * 1000000000LL) {
      fprintf(stderr, "gate %s never opened\n", g);
      exit(3);
    }
  }
}
#endif
