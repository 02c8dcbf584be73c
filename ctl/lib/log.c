// SPDX-License-Identifier: GPL-2.0
/*
 * log.c - the one log sink (stderr) and the library's last-error message.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <bpf/libbpf.h>

#include "log.h"

static int verbosity;
static bool libbpf_quiet;
static __thread char errbuf[512];

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
	if (libbpf_quiet || lvl > verbosity)
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
	verbosity = v;
	libbpf_set_print(libbpf_print_fn);
}

int idn_log_verbosity(void)
{
	return verbosity;
}

bool idn_log_libbpf_quiet(bool quiet)
{
	bool old = libbpf_quiet;

	libbpf_quiet = quiet;
	return old;
}

void idn_log(enum idn_log_level lvl, const char *fmt, ...)
{
	va_list ap;

	if ((int)lvl > verbosity)
		return;
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
}

const char *idn_errmsg(void)
{
	return errbuf;
}

void idn_errclear(void)
{
	errbuf[0] = 0;
}

int idn_err(int err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(errbuf, sizeof(errbuf), fmt, ap);
	va_end(ap);
	return err;
}
