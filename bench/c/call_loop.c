/*
 * call_loop N: N back-to-back calls of one CUDA runtime function, timed by the
 * program itself (tracer start-up and shutdown are outside the timed loop).
 * Built twice (see Makefile):
 *   call_loop_launch  cudaLaunchKernel on the fake libcudart.so.12 (test/fixtures;
 *                     push %rbp prologue; run with FAKE_CUDA_LATENCY_US=0)
 *   call_loop_malloc  cudaMalloc(&p, 256) on the REAL /usr/local/cuda libcudart.so.13
 *                     (no driver here: every call fails fast, which is fine:
 *                     the probe cost is what is measured)
 * No other CUDA call is made, so the traced count must equal N exactly.
 * Reports wall ns/call and the thread's CPU ns/call (user + system, which
 * includes the in-kernel uprobe work but not time spent preempted by other
 * load on this shared machine).
 * Honors BENCH_GATE (bench_common.h). Prints one JSON line.
 */
#include <cuda_runtime_api.h>

#include "bench_common.h"

__attribute__((noinline)) void fake_kernel(void) { __asm__ volatile("" ::: "memory"); }

int main(int argc, char **argv) {
  long n = argc > 1 ? atol(argv[1]) : 1000000;
  long failed = 0;
  wait_gate();
#ifdef OP_MALLOC
  const char *op = "cudaMalloc";
  void *p = NULL;
  /* one untimed call first: lazy binding, and the in-process shim's per-thread ring creation, are one-time costs */
  if (cudaMalloc(&p, 256) != cudaSuccess) failed++;
  int64_t c0 = thread_cpu_ns(), t0 = now_ns();
  for (long i = 0; i < n; i++)
    if (cudaMalloc(&p, 256) != cudaSuccess) failed++;
#else
  const char *op = "cudaLaunchKernel";
  dim3 grid = {64, 1, 1}, block = {256, 1, 1};
  /* one untimed call first: lazy binding, and the in-process shim's per-thread ring creation, are one-time costs */
  if (cudaLaunchKernel((const void *)fake_kernel, grid, block, NULL, 0, 0) != cudaSuccess) failed++;
  int64_t c0 = thread_cpu_ns(), t0 = now_ns();
  for (long i = 0; i < n; i++)
    if (cudaLaunchKernel((const void *)fake_kernel, grid, block, NULL, 0, 0) != cudaSuccess) failed++;
#endif
  int64_t t1 = now_ns(), c1 = thread_cpu_ns();
  printf("{\"op\":\"%s\",\"pid\":%d,\"calls\":%ld,\"failed\":%ld,\"elapsed_ns\":%lld,\"ns_per_call\":%.3f,\"cpu_ns\":%lld,\"cpu_ns_per_call\":%.3f}\n",
         op, (int)getpid(), n + 1, failed, (long long)(t1 - t0), (double)(t1 - t0) / (double)n,
         (long long)(c1 - c0), (double)(c1 - c0) / (double)n);
  return 0;
}
