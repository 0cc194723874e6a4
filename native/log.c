// SPDX-License-Identifier: Apache-2.0
/*
 * log.c: the libbpf print callback. libbpf explains a failed open or load
 * (verifier output, CO-RE relocation misses) only through this callback, so
 * the last bytes are kept and object.c appends them to the thrown Error.
 * Copied to stderr only when CAUSEWAY_LIBBPF_DEBUG is set (1: warnings and
 * info, 2: also libbpf debug), so a normal run stays quiet.
 */
#include "causeway.h"

#define LOG_CAP 8192
static char g_log[LOG_CAP];
static size_t g_log_len;
static int g_log_stderr; /* 0 off, 1 warnings/info, 2 also libbpf debug */

static int libbpf_log(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	char line[1024];
	va_list ap2;

	va_copy(ap2, ap);
	int n = vsnprintf(line, sizeof(line), fmt, ap2);
	va_end(ap2);
	if (g_log_stderr > (level == LIBBPF_DEBUG ? 1 : 0))
		fputs(line, stderr);
	if (level == LIBBPF_DEBUG || n <= 0)
		return 0;
	size_t len = strnlen(line, sizeof(line));
	if (len >= LOG_CAP)
		len = LOG_CAP - 1;
	if (g_log_len + len >= LOG_CAP) {
		/* keep the most recent half */
		size_t keep = LOG_CAP / 2;
		if (keep > g_log_len)
			keep = g_log_len;
		memmove(g_log, g_log + g_log_len - keep, keep);
		g_log_len = keep;
		if (g_log_len + len >= LOG_CAP)
			g_log_len = 0;
	}
	memcpy(g_log + g_log_len, line, len);
	g_log_len += len;
	g_log[g_log_len] = 0;
	return 0;
}

void log_reset(void)
{
	g_log_len = 0;
	g_log[0] = 0;
}

/* the last `max` bytes of the libbpf log, for error messages */
const char *log_tail(size_t max)
{
	if (g_log_len <= max)
		return g_log;
	return g_log + g_log_len - max;
}

size_t log_len(void)
{
	return g_log_len;
}

/* reads CAUSEWAY_LIBBPF_DEBUG and installs the callback; once, at module init */
void log_init(void)
{
	const char *dbg = getenv("CAUSEWAY_LIBBPF_DEBUG");
	g_log_stderr = !dbg || !dbg[0] ? 0 : dbg[0] == '2' ? 2 : 1;
	libbpf_set_print(libbpf_log);
}
