// SPDX-License-Identifier: GPL-2.0
/*
 * log.c - the one log sink (stderr) and the library's last-error message.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/stat.h>
#include <bpf/libbpf.h>

#include "log.h"

static int verbosity;
static enum { PLAIN, STAMPED, JOURNAL } style;
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

/* stderr is the journal: JOURNAL_STREAM="DEV:INODE" names its stream */
static bool stderr_is_journal(void)
{
	const char *js = getenv("JOURNAL_STREAM");
	unsigned long long dev, ino;
	struct stat st;

	return js && sscanf(js, "%llu:%llu", &dev, &ino) == 2 && !fstat(2, &st) &&
	       (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
}

void idn_log_daemon(int v)
{
	idn_log_init(v + 1);	/* info by default */
	style = stderr_is_journal() ? JOURNAL : STAMPED;
}

void idn_log(enum idn_log_level lvl, const char *fmt, ...)
{
	/* sd-daemon(3) priorities and level words, from IDN_LOG_ERR (-1) on */
	static const char *const prio[] = { "<3>", "<4>", "<6>", "<7>", "<7>" };
	static const char *const word[] = { "error", "warn", "info", "debug", "debug" };
	char line[2048], *p = line;
	size_t n = sizeof(line);
	va_list ap;
	int k;

	if ((int)lvl > verbosity)
		return;
	if (style == PLAIN) {
		va_start(ap, fmt);
		vfprintf(stderr, fmt, ap);
		va_end(ap);
		return;
	}
	if (style == JOURNAL) {
		k = snprintf(p, n, "%s", prio[lvl + 1]);
	} else {
		struct timespec ts;
		struct tm tm;

		clock_gettime(CLOCK_REALTIME, &ts);
		gmtime_r(&ts.tv_sec, &tm);
		k = (int)strftime(p, n, "%Y-%m-%dT%H:%M:%S", &tm);
		k += snprintf(p + k, n - k, ".%03ldZ %-5s ", ts.tv_nsec / 1000000, word[lvl + 1]);
	}
	p += k;
	n -= k;
	va_start(ap, fmt);
	k = vsnprintf(p, n, fmt, ap);
	va_end(ap);
	if (k < 0)
		return;
	if ((size_t)k >= n)	/* cut: still one whole line */
		k = (int)n - 2;
	if (!k || p[k - 1] != '\n') {
		p[k++] = '\n';
		p[k] = 0;
	}
	fputs(line, stderr);	/* one write per line: threads do not interleave */
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
