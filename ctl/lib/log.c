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

static int libbpf_print_fn(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	/* Demoted one level: libbpf warnings are -v, info -vv, debug -vvv. */
	int lvl = level == LIBBPF_WARN ? IDN_LOG_INFO :
		  level == LIBBPF_INFO ? IDN_LOG_DEBUG : IDN_LOG_LIBBPF_DEBUG;

	if (libbpf_quiet || lvl > verbosity)
		return 0;
	fputs("libbpf: ", stderr);
	return vfprintf(stderr, fmt, ap);
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
