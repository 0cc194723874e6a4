/*
 * rate_launch --rate R --seconds S [--threads T]: cudaLaunchKernel on the fake
 * libcudart at R calls/s in total for S seconds (R = 0: as fast as possible),
 * from T calling threads (default 1), each paced at R/T in 1 ms slots: each
 * slot issues the calls that are due by then, so the average rate is R when
 * the host can keep up; the achieved rate is reported either way (calls of all
 * threads over the longest thread's elapsed time).
 * Run with FAKE_CUDA_LATENCY_US=0. Honors BENCH_GATE. Prints one JSON line.
 */
#include <cuda_runtime_api.h>
#include <pthread.h>

#include "bench_common.h"

__attribute__((noinline)) void rate_kernel(void) { __asm__ volatile("" ::: "memory"); }

struct worker {
  pthread_t th;
  double rate, secs;
  uint64_t calls, failed;
  int64_t elapsed;
};

static void *run(void *arg) {
  struct worker *w = arg;
  dim3 grid = {64, 1, 1}, block = {256, 1, 1};
  int64_t t0 = now_ns(), end = t0 + (int64_t)(w->secs * 1e9), t = t0;
  struct timespec slot = {0, 200 * 1000};
  while (t < end) {
    uint64_t due = w->rate > 0 ? (uint64_t)((double)(t - t0) * w->rate / 1e9) + 1 : w->calls + 256;
    while (w->calls < due) {
      if (cudaLaunchKernel((const void *)rate_kernel, grid, block, NULL, 0, 0) != cudaSuccess) w->failed++;
      w->calls++;
    }
    t = now_ns();
    if (w->rate > 0 && w->calls >= (uint64_t)((double)(t - t0) * w->rate / 1e9) + 1) {
      nanosleep(&slot, NULL);
      t = now_ns();
    }
  }
  w->elapsed = t - t0;
  return NULL;
}

int main(int argc, char **argv) {
  double rate = 100000, secs = 2;
  int threads = 1;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!strcmp(argv[i], "--rate")) rate = atof(argv[i + 1]);
    else if (!strcmp(argv[i], "--seconds")) secs = atof(argv[i + 1]);
    else if (!strcmp(argv[i], "--threads")) threads = atoi(argv[i + 1]);
    else {
      fprintf(stderr, "usage: rate_launch --rate R --seconds S [--threads T]\n");
      return 1;
    }
  }
  if (threads < 1 || threads > 64) {
    fprintf(stderr, "--threads must be 1..64\n");
    return 1;
  }
  wait_gate();
  struct worker w[64];
  memset(w, 0, sizeof w);
  for (int i = 0; i < threads; i++) {
    w[i].rate = rate / threads;
    w[i].secs = secs;
    if (threads == 1) run(&w[0]);
    else if (pthread_create(&w[i].th, NULL, run, &w[i]) != 0) {
      fprintf(stderr, "pthread_create failed\n");
      return 1;
    }
  }
  uint64_t calls = 0, failed = 0;
  int64_t elapsed = 0;
  for (int i = 0; i < threads; i++) {
    if (threads > 1) pthread_join(w[i].th, NULL);
    calls += w[i].calls;
    failed += w[i].failed;
    if (w[i].elapsed > elapsed) elapsed = w[i].elapsed;
  }
  printf("{\"rate\":%.0f,\"seconds\":%.3f,\"threads\":%d,\"calls\":%llu,\"failed\":%llu,\"elapsed_ns\":%lld,\"achieved_rate\":%.1f}\n", rate,
         secs, threads, (unsigned long long)calls, (unsigned long long)failed, (long long)elapsed,
         (double)calls * 1e9 / (double)elapsed);
  return 0;
}
