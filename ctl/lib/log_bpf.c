// SPDX-License-Identifier: GPL-2.0
/*
 * log_bpf.c - libbpf's output through the log sink (log.c), one level
 * lower, and the verifier's refusal kept for the caller's message.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <bpf/libbpf.h>

#include "log.h"

static bool libbpf_quiet;
static __thread char refused[256];

/*
 * Keep the verifier's line that names a refused helper or function, so a
 * failed load can say what the kernel refused without -v.
 */
static void note_refusal(const char *fmt, va_list ap)
{
	static const char *const marks[] = {
		"cannot use helper", "unknown func", "invalid func", "helper call is not allowed",
		"couldn't reuse pinned map",
	};
	char buf[4096];
	char *p;

	vsnprintf(buf, sizeof(buf), fmt, ap);
	for (size_t i = 0; i < sizeof(marks) / sizeof(marks[0]); i++) {
		p = strstr(buf, marks[i]);
		if (!p)
			continue;
		while (p > buf && p[-1] != '\n')
			p--;
		snprintf(refused, sizeof(refused), "%.*s", (int)strcspn(p, "\n"), p);
		return;
	}
}

static int libbpf_print_fn(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	/* Demoted one level: libbpf warnings are -v, info -vv, debug -vvv. */
	int lvl = level == LIBBPF_WARN ? IDN_LOG_INFO :
		  level == LIBBPF_INFO ? IDN_LOG_DEBUG : IDN_LOG_LIBBPF_DEBUG;
	va_list aq;

	if (level == LIBBPF_WARN) {
		va_copy(aq, ap);
		note_refusal(fmt, aq);
		va_end(aq);
	}
	if (libbpf_quiet || lvl > idn_log_verbosity())
		return 0;
	fputs("libbpf: ", stderr);
	return vfprintf(stderr, fmt, ap);
}

const char *idn_log_libbpf_refused(bool clear)
{
	static __thread char out[256];

	snprintf(out, sizeof(out), "%s", refused);
	if (clear)
		refused[0] = 0;
	return out;
}

void idn_log_init(int v)
{
	idn_log_set(v, false);
	libbpf_set_print(libbpf_print_fn);
}

void idn_log_daemon(int v)
{
	idn_log_set(v + 1, true);	/* info by default */
	libbpf_set_print(libbpf_print_fn);
}

bool idn_log_libbpf_quiet(bool quiet)
{
	bool old = libbpf_quiet;

	libbpf_quiet = quiet;
	return old;
}
