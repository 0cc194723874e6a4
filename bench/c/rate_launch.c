/*
 * rate_launch --rate R --seconds S: cudaLaunchKernel on the fake libcudart at
 * R calls/s for S seconds (R = 0: as fast as possible). Paced in 1 ms slots:
 * each slot issues the calls that are due by then, so the average rate is R
 * when the host can keep up; the achieved rate is reported either way.
 * Run with FAKE_CUDA_LATENCY_US=0. Honors BENCH_GATE. Prints one JSON line.
 */
#include <cuda_runtime_api.h>

#include "bench_common.h"

__attribute__((noinline)) void rate_kernel(void) { __asm__ volatile("" ::: "memory"); }

int main(int argc, char **argv) {
  double rate = 100000, secs = 2;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!strcmp(argv[i], "--rate")) rate = atof(argv[i + 1]);
    else if (!strcmp(argv[i], "--seconds")) secs = atof(argv[i + 1]);
    else {
      fprintf(stderr, "usage: rate_launch --rate R --seconds S\n");
      return 1;
    }
  }
  wait_gate();
  dim3 grid = {64, 1, 1}, block = {256, 1, 1};
  uint64_t calls = 0, failed = 0;
  int64_t t0 = now_ns(), end = t0 + (int64_t)(secs * 1e9), t = t0;
  struct timespec slot = {0, 200 * 1000};
  while (t < end) {
    uint64_t due = rate > 0 ? (uint64_t)((double)(t - t0) * rate / 1e9) + 1 : calls + 256;
    while (calls < due) {
      if (cudaLaunchKernel((const void *)rate_kernel, grid, block, NULL, 0, 0) != cudaSuccess) failed++;
      calls++;
    }
    t = now_ns();
    if (rate > 0 && calls >= (uint64_t)((double)(t - t0) * rate / 1e9) + 1) {
      nanosleep(&slot, NULL);
      t = now_ns();
    }
  }
  printf("{\"rate\":%.0f,\"seconds\":%.3f,\"calls\":%llu,\"failed\":%llu,\"elapsed_ns\":%lld,\"achieved_rate\":%.1f}\n", rate,
         secs, (unsigned long long)calls, (unsigned long long)failed, (long long)(t - t0),
         (double)calls * 1e9 / (double)(t - t0));
  return 0;
}
