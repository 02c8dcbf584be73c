// SPDX-License-Identifier: GPL-2.0
/*
 * conf.c - the daemons' configuration files, read with libinih (Debian's
 * libinih1): INI "key = value" lines, '#' or ';' comments. Chosen over
 * libconfig and json-c because the files are flat lists of the daemons'
 * long options, which INI says with nothing added, and operators edit them
 * by hand (comments, no quoting). libinih reports the line of a syntax
 * error; our reader counts lines too, so a bad key or value is reported
 * as FILE:LINE as well. See docs/operator.md.
 */
#include <errno.h>
#include <ini.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf.h"

struct rd {
	FILE *f;
	int line;		/* lines read so far: the handler's line */
	int bad_line;		/* first line our handler refused */
	char msg[256];
	const struct idn_conf *c;
	const char *section;	/* idn_conf_section(): the one wanted */
	int (*fn)(void *, const char *, const char *, const char **);
	void *ctx;
	int found;
};

/* the values handed to apply functions, kept for the process's life (they
 * may be kept as pointers, like argv's strings); idn_conf_release() frees */
struct kept {
	struct kept *next;
	char s[];
};
static struct kept *kept;

static const char *keep(const char *v)
{
	size_t n = strlen(v) + 1;
	struct kept *k = malloc(sizeof(*k) + n);

	if (!k)
		return NULL;
	memcpy(k->s, v, n);
	k->next = kept;
	kept = k;
	return k->s;
}

void idn_conf_release(void)
{
	while (kept) {
		struct kept *k = kept;

		kept = k->next;
		free(k);
	}
}

static char *rd_line(char *buf, int n, void *stream)
{
	struct rd *r = stream;
	char *s = fgets(buf, n, r->f);

	if (s)
		r->line++;
	return s;
}

static bool listed(const char *const *l, const char *k)
{
	for (; l && *l; l++)
		if (!strcmp(*l, k))
			return true;
	return false;
}

static int refuse(struct rd *r, const char *fmt, const char *a, const char *b)
{
	if (!r->bad_line) {
		r->bad_line = r->line;
		snprintf(r->msg, sizeof(r->msg), fmt, a, b);
	}
	return 0;	/* libinih: an error on this line */
}

/* a flag's value: yes/no, true/false, on/off, or a count 0..16 */
static int flag_count(const char *v)
{
	static const char *const yes[] = { "yes", "true", "on", NULL };
	static const char *const no[] = { "no", "false", "off", NULL };
	char *end;
	long n;

	if (listed(yes, v))
		return 1;
	if (listed(no, v))
		return 0;
	n = strtol(v, &end, 10);
	if (end == v || *end || n < 0 || n > 16)
		return -1;
	return n;
}

static int on_key(void *user, const char *section, const char *key, const char *value)
{
	struct rd *r = user;
	const struct idn_conf *c = r->c;
	const struct option *o;
	const char *why = NULL;

	if (section[0])
		return refuse(r, "section [%s]: this file has none%s", section, "");
	for (o = c->opts; o->name; o++)
		if (!strcmp(o->name, key))
			break;
	if (!o->name || listed(c->skip, key))
		return refuse(r, "unknown key \"%s\"%s", key, "");
	if (c->only && !listed(c->only, key))
		return 1;
	if (o->has_arg == no_argument) {
		int n = flag_count(value);

		if (n < 0)
			return refuse(r, "\"%s\" takes yes or no, not \"%s\"", key, value);
		while (n--)
			if (c->apply(c->ctx, o->val, NULL, &why))
				return refuse(r, "\"%s\": %s", key, why ? why : "refused");
		return 1;
	}
	if (!value[0])
		return refuse(r, "\"%s\" needs a value%s", key, "");
	/* libinih reuses its line buffer: a copy that lives as long as the
	 * process, as argv's strings do (apply functions may keep pointers) */
	value = keep(value);
	if (!value)
		return refuse(r, "\"%s\": %s", key, "out of memory");
	if (c->apply(c->ctx, o->val, value, &why)) {
		if (why)
			return refuse(r, "\"%s\": %s", key, why);
		return refuse(r, "bad value for \"%s\": \"%s\"", key, value);
	}
	return 1;
}

static int parse(struct rd *r, const char *path, ini_handler h, char *err, size_t errlen)
{
	int rc;

	r->f = fopen(path, "re");
	if (!r->f) {
		rc = -errno;
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return rc;
	}
	/* libinih's run-time settings (Debian builds it with them) */
	ini_stop_on_first_error = true;
	ini_allow_multiline = false;	/* an indented line is a line of its own, not a continuation */
	ini_use_stack = false;		/* lines up to 4 KiB (URL lists, paths) */
	ini_max_line = 4096;
	ini_initial_alloc = 4096;
	rc = ini_parse_stream(rd_line, r, h, r);
	fclose(r->f);
	if (rc == 0)
		return 0;
	if (rc < 0) {
		snprintf(err, errlen, "%s: cannot read", path);
		return -EIO;
	}
	if (r->bad_line == rc)
		snprintf(err, errlen, "%s:%d: %s", path, rc, r->msg);
	else
		snprintf(err, errlen, "%s:%d: expected \"key = value\", a [section], or a comment",
			 path, rc);
	return -EINVAL;
}

int idn_conf_load(const struct idn_conf *c, char *err, size_t errlen)
{
	struct rd r = { .c = c };

	return parse(&r, c->path, on_key, err, errlen);
}

static int on_section_key(void *user, const char *section, const char *key, const char *value)
{
	struct rd *r = user;
	const char *why = NULL;

	if (strcmp(section, r->section))
		return 1;
	r->found++;
	if (r->fn(r->ctx, key, value, &why)) {
		if (why)
			return refuse(r, "[%s] %s", r->section, why);
		return refuse(r, "[%s] bad key or value \"%s\"", r->section, key);
	}
	return 1;
}

int idn_conf_section(const char *path, const char *section,
		     int (*fn)(void *ctx, const char *key, const char *value, const char **why),
		     void *ctx, char *err, size_t errlen)
{
	struct rd r = { .section = section, .fn = fn, .ctx = ctx };
	int rc = parse(&r, path, on_section_key, err, errlen);

	return rc ? rc : r.found;
}
