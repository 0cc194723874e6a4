// SPDX-License-Identifier: Apache-2.0
/*
 * causeway-guardian: resumes what a tracer left stopped when it dies.
 *
 * A trace parks processes with SIGSTOP until it has attached its probes: the
 * loader probe does it in the kernel (bpf/loader.bpf.c, at a library load),
 * and the tracer itself parks the command it starts before exec (src/run/
 * target.ts). The tracer resumes them with SIGCONT; if it is killed (kill -9,
 * the OOM killer, a crash) while one waits, that process would stay stopped
 * forever. This helper outlives it and resumes them.
 *
 *   causeway-guardian TRACER_PID TRACER_START [PARKED_MAP_FD]
 *
 * The tracer starts it in a session of its own (no terminal: ^C, SIGHUP of
 * the tracer's terminal do not reach it) with stdin a pipe from the tracer,
 * stdout/stderr /dev/null, and optionally fd PARKED_MAP_FD the loader's
 * cw_parked map (tgid -> start time in ns since boot, written by the BPF
 * program at each park). Lines on stdin:
 *   P PID START   the tracer parked PID itself (START: /proc/PID/stat field 22)
 *   R PID         the tracer resumed PID
 *   Q             the tracer detached its probes and is exiting: one last
 *                 pass (a process parked after the tracer's own last look, in
 *                 the map only), then exit
 * EOF without Q means the tracer is gone (or going: the kernel closes a dead
 * process's fds, this pipe among them). Then, until the tracer has fully exited
 * (its probe links are released with its fds, so no new park can happen after
 * that) and twice more after it, every process recorded as parked is sent
 * SIGCONT if it is stopped (state T) and is the same process (its start time
 * matches: a pid reused since is never signalled). The map is read, not
 * trusted to be current: an entry of a process the tracer already resumed is
 * left alone because that process runs (state is not T).
 *
 * Plain C, no library (the bpf(2) calls are two raw system calls), built with
 * the addon by node-gyp (native/binding.gyp). It never writes anywhere: no
 * file, no log, nothing left behind.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/bpf.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define MAX_DECLARED 1024
/* how long to wait after EOF for the tracer to finish exiting (a uprobe link detach takes ~150 ms each) */
#define EXIT_WAIT_MS 10000
#define POLL_MS 20

struct park {
	int pid;
	unsigned long long start; /* clock ticks since boot, as /proc/PID/stat shows it */
};

static struct park g_declared[MAX_DECLARED];
static int g_ndeclared;
static long g_ticks_per_s = 100;

/* State letter and start time (field 22) of /proc/PID/stat; false when the process is gone. */
static bool read_stat(int pid, char *state, unsigned long long *start)
{
	char path[64], buf[1024];
	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return false;
	buf[n] = 0;
	/* comm may hold spaces and parentheses: fields start after the last ')' */
	char *p = strrchr(buf, ')');
	if (!p || p[1] != ' ' || !p[2])
		return false;
	*state = p[2];
	p += 2;
	for (int field = 3; field < 22; field++) {
		p = strchr(p, ' ');
		if (!p)
			return false;
		p++;
	}
	*start = strtoull(p, NULL, 10);
	return true;
}

/* SIGCONT to pid if it is the process that was parked (same start time) and it is stopped. */
static void resume_if_parked(int pid, unsigned long long start)
{
	char state;
	unsigned long long now_start;
	if (pid <= 0 || !read_stat(pid, &state, &now_start))
		return;
	if (now_start == start && state == 'T')
		kill(pid, SIGCONT);
}

static long sys_bpf(int cmd, union bpf_attr *attr)
{
	return syscall(__NR_bpf, cmd, attr, sizeof(*attr));
}

/* Every tgid the loader probe recorded as parked (cw_parked: u32 tgid -> u64 start ns since boot). */
static void resume_kernel_parks(int map_fd)
{
	if (map_fd < 0)
		return;
	__u32 key = 0, next;
	__u64 start_ns;
	bool first = true;
	/* bounded: an LRU map of 4096 entries; the walk may restart if entries go away meanwhile */
	for (int i = 0; i < 65536; i++) {
		union bpf_attr a;
		memset(&a, 0, sizeof(a));
		a.map_fd = map_fd;
		a.key = first ? 0 : (__u64)(uintptr_t)&key;
		a.next_key = (__u64)(uintptr_t)&next;
		if (sys_bpf(BPF_MAP_GET_NEXT_KEY, &a))
			return;
		first = false;
		key = next;
		memset(&a, 0, sizeof(a));
		a.map_fd = map_fd;
		a.key = (__u64)(uintptr_t)&key;
		a.value = (__u64)(uintptr_t)&start_ns;
		if (sys_bpf(BPF_MAP_LOOKUP_ELEM, &a))
			continue;
		/* the kernel's nsec_to_clock_t for /proc: ns / (NSEC_PER_SEC / USER_HZ) */
		resume_if_parked((int)key, start_ns / (1000000000ull / (unsigned long long)g_ticks_per_s));
	}
}

static void resume_all(int map_fd)
{
	for (int i = 0; i < g_ndeclared; i++)
		resume_if_parked(g_declared[i].pid, g_declared[i].start);
	resume_kernel_parks(map_fd);
}

/* The tracer has exited completely: gone, another process under its pid, or a zombie with no thread left running. */
static bool tracer_gone(int pid, unsigned long long start)
{
	char state, path[64];
	unsigned long long now_start;
	if (!read_stat(pid, &state, &now_start) || now_start != start)
		return true;
	if (state != 'Z' && state != 'X')
		return false;
	/* a zombie leader while other threads still exit: their fds (the probe links) may still be open */
	snprintf(path, sizeof(path), "/proc/%d/task", pid);
	DIR *d = opendir(path);
	if (!d)
		return true;
	int tasks = 0;
	struct dirent *e;
	while ((e = readdir(d)))
		if (e->d_name[0] != '.')
			tasks++;
	closedir(d);
	return tasks <= 1;
}

static void sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

static void declare(int pid, unsigned long long start)
{
	for (int i = 0; i < g_ndeclared; i++)
		if (g_declared[i].pid == pid) {
			g_declared[i].start = start;
			return;
		}
	if (g_ndeclared < MAX_DECLARED)
		g_declared[g_ndeclared++] = (struct park){ pid, start };
}

static void forget(int pid)
{
	for (int i = 0; i < g_ndeclared; i++)
		if (g_declared[i].pid == pid) {
			g_declared[i] = g_declared[--g_ndeclared];
			return;
		}
}

/* One line from the tracer; returns true on Q. Malformed lines are ignored. */
static bool handle_line(const char *line)
{
	int pid;
	unsigned long long start;
	if (line[0] == 'Q')
		return true;
	if (sscanf(line, "P %d %llu", &pid, &start) == 2 && pid > 0)
		declare(pid, start);
	else if (sscanf(line, "R %d", &pid) == 1)
		forget(pid);
	return false;
}

int main(int argc, char **argv)
{
	if (argc < 3 || argc > 4) {
		fprintf(stderr, "usage: causeway-guardian TRACER_PID TRACER_START [PARKED_MAP_FD]\n");
		return 2;
	}
	int tracer = atoi(argv[1]);
	unsigned long long tracer_start = strtoull(argv[2], NULL, 10);
	int map_fd = argc == 4 ? atoi(argv[3]) : -1;
	if (tracer <= 0 || map_fd == 0 || map_fd == 1 || map_fd == 2) {
		fprintf(stderr, "causeway-guardian: bad arguments\n");
		return 2;
	}
	long hz = sysconf(_SC_CLK_TCK);
	if (hz > 0 && 1000000000L % hz == 0)
		g_ticks_per_s = hz;
	/* terminal and job-control signals are the tracer's business, not a reason to stop guarding */
	signal(SIGHUP, SIG_IGN);
	signal(SIGINT, SIG_IGN);
	signal(SIGQUIT, SIG_IGN);
	signal(SIGPIPE, SIG_IGN);
	signal(SIGTSTP, SIG_IGN);
	signal(SIGTTIN, SIG_IGN);
	signal(SIGTTOU, SIG_IGN);
	/* hold no directory (a mount stays unmountable) and no fd but stdio and the map */
	if (chdir("/"))
		return 1;
	for (int fd = 3; fd < 1024; fd++)
		if (fd != map_fd)
			close(fd);

	char buf[4096];
	size_t len = 0;
	for (;;) {
		ssize_t n = read(0, buf + len, sizeof(buf) - 1 - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		len += (size_t)n;
		buf[len] = 0;
		char *line = buf, *nl;
		while ((nl = strchr(line, '\n'))) {
			*nl = 0;
			if (handle_line(line)) {
				resume_all(map_fd);
				return 0;
			}
			line = nl + 1;
		}
		len -= (size_t)(line - buf);
		memmove(buf, line, len);
		if (len == sizeof(buf) - 1)
			len = 0; /* a line this long is not ours */
	}

	/* EOF without Q: the tracer died. Resume until it has fully exited (no probe can park anything after that). */
	for (int waited = 0; waited < EXIT_WAIT_MS && !tracer_gone(tracer, tracer_start); waited += POLL_MS) {
		resume_all(map_fd);
		sleep_ms(POLL_MS);
	}
	/* a park that raced the last link's teardown is in the map by now; SIGSTOP may still be pending: twice more */
	resume_all(map_fd);
	sleep_ms(50);
	resume_all(map_fd);
	return 0;
}
