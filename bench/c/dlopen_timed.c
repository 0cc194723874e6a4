/*
 * dlopen_timed DELAY_MS N LIB: like test/fixtures dlopen_late (no CUDA library
 * linked; sleep, dlopen LIB, N cudaMalloc via dlsym) but it times what a
 * loader stop delays: dlopen() itself (the loader probe parks the process in
 * it while Causeway attaches) and the first call. One JSON line:
 * {"workload":"dlopen_timed","pid":..,"dlopen_ns":..,"first_call_ns":..,"calls":N,"ok":..,"total_ns":..}
 */
#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

typedef int (*malloc_fn)(void **, size_t);

static int64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

int main(int argc, char **argv) {
  if (argc < 4) {
    fprintf(stderr, "usage: dlopen_timed DELAY_MS N LIB\n");
    return 1;
  }
  long delay_ms = atol(argv[1]), n = atol(argv[2]);
  struct timespec ts = {delay_ms / 1000, (delay_ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
  int64_t t0 = now_ns();
  void *h = dlopen(argv[3], RTLD_NOW | RTLD_LOCAL);
  int64_t t1 = now_ns();
  if (!h) {
    fprintf(stderr, "dlopen_timed: %s\n", dlerror());
    return 2;
  }
  malloc_fn cm = (malloc_fn)dlsym(h, "cudaMalloc");
  if (!cm) {
    fprintf(stderr, "dlopen_timed: %s\n", dlerror());
    return 2;
  }
  long ok = 0;
  int64_t t2 = now_ns(), t3 = 0;
  for (long i = 0; i < n; i++) {
    void *d = NULL;
    if (cm(&d, (size_t)(1u << 20) + (size_t)i * 4096) == 0) ok++;
    if (i == 0) t3 = now_ns();
  }
  int64_t t4 = now_ns();
  printf("{\"workload\":\"dlopen_timed\",\"pid\":%d,\"dlopen_ns\":%lld,\"first_call_ns\":%lld,\"calls\":%ld,\"ok\":%ld,\"total_ns\":%lld}\n",
         (int)getpid(), (long long)(t1 - t0), (long long)(t3 - t2), n, ok, (long long)(t4 - t0));
  return 0;
}
