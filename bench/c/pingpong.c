/*
 * pingpong SECONDS [CPU]: two threads of one process hand a token back and
 * forth through a futex, both pinned to CPU (default 0), so every handoff is a
 * context switch (two per round trip): the case where a sched_switch
 * tracepoint's cost shows. No CUDA. One JSON line:
 * {"workload":"pingpong","pid":..,"round_trips":..,"elapsed_ns":..,"round_trips_per_s":..}
 */
#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static _Atomic int turn; /* 0: ping's turn, 1: pong's turn, 2: stop */
static int cpu;

static int64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void pin(void) {
  cpu_set_t s;
  CPU_ZERO(&s);
  CPU_SET(cpu, &s);
  sched_setaffinity(0, sizeof s, &s);
}

static void fwait(int v) { syscall(SYS_futex, &turn, FUTEX_WAIT_PRIVATE, v, NULL, NULL, 0); }
static void fwake(void) { syscall(SYS_futex, &turn, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0); }

static void *pong(void *arg) {
  (void)arg;
  pin();
  for (;;) {
    int t;
    while ((t = atomic_load(&turn)) == 0) fwait(0);
    if (t == 2) return NULL;
    atomic_store(&turn, 0);
    fwake();
  }
}

int main(int argc, char **argv) {
  double seconds = argc > 1 ? atof(argv[1]) : 2;
  cpu = argc > 2 ? atoi(argv[2]) : 0;
  pin();
  pthread_t th;
  pthread_create(&th, NULL, pong, NULL);
  int64_t t0 = now_ns(), end = t0 + (int64_t)(seconds * 1e9), t1;
  long n = 0;
  for (;;) {
    atomic_store(&turn, 1);
    fwake();
    while (atomic_load(&turn) == 1) fwait(1);
    n++;
    if ((n & 255) == 0 && (t1 = now_ns()) >= end) break;
  }
  atomic_store(&turn, 2);
  fwake();
  pthread_join(th, NULL);
  int64_t el = now_ns() - t0;
  printf("{\"workload\":\"pingpong\",\"pid\":%d,\"round_trips\":%ld,\"elapsed_ns\":%lld,\"round_trips_per_s\":%.0f}\n",
         (int)getpid(), n, (long long)el, n / (el / 1e9));
  return 0;
}
