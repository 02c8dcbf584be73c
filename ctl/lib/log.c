// SPDX-License-Identifier: GPL-2.0
/*
 * log.c - the one log sink (stderr) and the library's last-error message.
 * No libbpf here (idn-agent links this file alone); libbpf's output is
 * routed into the sink by log_bpf.c.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/stat.h>

#include "log.h"

static int verbosity;
static enum { PLAIN, STAMPED, JOURNAL } style;
static __thread char errbuf[512];

/* stderr is the journal: JOURNAL_STREAM="DEV:INODE" names its stream */
static bool stderr_is_journal(void)
{
	const char *js = getenv("JOURNAL_STREAM");
	unsigned long long dev, ino;
	struct stat st;

	return js && sscanf(js, "%llu:%llu", &dev, &ino) == 2 && !fstat(2, &st) &&
	       (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
}

int idn_log_verbosity(void)
{
	return verbosity;
}

void idn_log_set(int v, bool daemon)
{
	verbosity = v;
	style = !daemon ? PLAIN : stderr_is_journal() ? JOURNAL : STAMPED;
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
