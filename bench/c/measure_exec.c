/*
 * measure_exec OUT.json -- CMD ARGS...: run CMD, and when it exits (before
 * reaping it: waitid WNOWAIT) read its own CPU time (utime+stime from
 * /proc/PID/stat, children excluded) and its /proc/PID/io counters, then reap
 * it and write them to OUT.json. Exits with CMD's status. Used to charge the
 * tracer, and only the tracer, for CPU and disk writes (the traced workload
 * is its child and is not included).
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

static char *slurp(const char *path) {
  static char buf[8192];
  FILE *f = fopen(path, "r");
  if (!f) return NULL;
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  buf[n] = 0;
  return buf;
}

int main(int argc, char **argv) {
  if (argc < 4 || strcmp(argv[2], "--")) {
    fprintf(stderr, "usage: measure_exec OUT.json -- CMD ARGS...\n");
    return 1;
  }
  signal(SIGINT, SIG_IGN);
  pid_t pid = fork();
  if (pid == 0) {
    signal(SIGINT, SIG_DFL);
    execvp(argv[3], argv + 3);
    perror("exec");
    _exit(127);
  }
  siginfo_t si;
  memset(&si, 0, sizeof si);
  if (waitid(P_PID, (id_t)pid, &si, WEXITED | WNOWAIT) != 0) {
    perror("waitid");
    return 2;
  }
  char path[64];
  long long utime = -1, stime = -1, wbytes = -1, rbytes = -1, cwbytes = -1;
  snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
  char *s = slurp(path);
  if (s) {
    char *p = strrchr(s, ')');
    /* fields after ")": 3 state ... 14 utime 15 stime */
    int field = 2;
    for (char *tok = strtok(p + 1, " "); tok; tok = strtok(NULL, " ")) {
      field++;
      if (field == 14) utime = atoll(tok);
      if (field == 15) {
        stime = atoll(tok);
        break;
      }
    }
  }
  snprintf(path, sizeof path, "/proc/%d/io", (int)pid);
  s = slurp(path);
  if (s) {
    char *p;
    if ((p = strstr(s, "\nwrite_bytes:"))) wbytes = atoll(p + 13);
    if ((p = strstr(s, "\nread_bytes:"))) rbytes = atoll(p + 12);
    if ((p = strstr(s, "cancelled_write_bytes:"))) cwbytes = atoll(p + 22);
  }
  int status;
  struct rusage ru;
  wait4(pid, &status, 0, &ru);
  long hz = sysconf(_SC_CLK_TCK);
  FILE *o = fopen(argv[1], "w");
  if (o) {
    fprintf(o,
            "{\"pid\":%d,\"cpu_s\":%.3f,\"utime_s\":%.3f,\"stime_s\":%.3f,\"write_bytes\":%lld,"
            "\"read_bytes\":%lld,\"cancelled_write_bytes\":%lld,\"maxrss_kb\":%ld}\n",
            (int)pid, utime < 0 ? -1.0 : (double)(utime + stime) / (double)hz,
            (double)utime / (double)hz, (double)stime / (double)hz, wbytes, rbytes, cwbytes,
            ru.ru_maxrss);
    fclose(o);
  }
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  return 128 + WTERMSIG(status);
}
