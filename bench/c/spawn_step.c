/*
 * spawn_step CMD_FIFO RES_FIFO EXE...: one spawn per command, for estimators
 * that change the machine between spawns (attach or detach tracepoints).
 * Reads one byte per spawn from CMD_FIFO ('0' runs the first EXE, '1' the
 * second, ...), spawns it, waits, and writes "CHILD TOTAL\n" to RES_FIFO:
 * the child's CPU ns from wait4's rusage (user + system: exec, loader, exit
 * teardown) and that plus this thread's CPU for the spawn (posix_spawn,
 * wait4, reaping; the fork tracepoint runs here), as spawn_ab measures them.
 * Exits at the end of CMD_FIFO. FIFOs, not pipes to a Node child, so the
 * driver can use synchronous reads and writes between its attach calls.
 */
#include <fcntl.h>
#include <spawn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

static int64_t thread_cpu_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

int main(int argc, char **argv) {
  if (argc < 4) {
    fprintf(stderr, "usage: spawn_step CMD_FIFO RES_FIFO EXE...\n");
    return 1;
  }
  int cmd = open(argv[1], O_RDONLY);
  int res = open(argv[2], O_WRONLY);
  if (cmd < 0 || res < 0) {
    perror("open");
    return 2;
  }
  char c;
  while (read(cmd, &c, 1) == 1) {
    int k = c - '0';
    if (k < 0 || k >= argc - 3) return 3;
    char *args[] = {argv[3 + k], NULL};
    pid_t pid;
    int64_t c0 = thread_cpu_ns();
    if (posix_spawn(&pid, argv[3 + k], NULL, NULL, args, environ) != 0) return 4;
    int st;
    struct rusage ru;
    if (wait4(pid, &st, 0, &ru) < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0) return 5;
    double child = ((double)ru.ru_utime.tv_sec + (double)ru.ru_stime.tv_sec) * 1e9 + ((double)ru.ru_utime.tv_usec + (double)ru.ru_stime.tv_usec) * 1e3;
    double total = child + (double)(thread_cpu_ns() - c0);
    char line[64];
    int n = snprintf(line, sizeof line, "%.0f %.0f\n", child, total);
    if (write(res, line, (size_t)n) != n) return 6;
  }
  return 0;
}
