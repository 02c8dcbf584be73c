// SPDX-License-Identifier: GPL-2.0
/*
 * prom.c - the Prometheus text-format writer (prom.h): escaping, name
 * checks and the HELP/TYPE/sample layout, shared by every /metrics of
 * the project.
 */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <string.h>

#include "prom.h"

static const char *const type_names[] = {
	[IDN_PROM_COUNTER] = "counter",
	[IDN_PROM_GAUGE] = "gauge",
	[IDN_PROM_HISTOGRAM] = "histogram",
};

/* Keep the first misuse: fmt takes two strings (a name, a detail). */
static void misuse(struct idn_prom *p, const char *fmt, const char *a, const char *b)
{
	char n[96];

	if (p->err)
		return;
	p->err = -EINVAL;
	snprintf(n, sizeof(n), "%.95s", a ? a : "");
	snprintf(p->why, sizeof(p->why), fmt, n, b ? b : "");
}

void idn_prom_init(struct idn_prom *p, FILE *f)
{
	memset(p, 0, sizeof(*p));
	p->f = f;
}

bool idn_prom_name_ok(const char *s, bool label)
{
	if (!s || !*s || (*s >= '0' && *s <= '9'))
		return false;
	if (label && s[0] == '_' && s[1] == '_')	/* reserved for Prometheus */
		return false;
	for (; *s; s++) {
		char c = *s;

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '_' || (!label && c == ':')))
			return false;
	}
	return true;
}

size_t idn_prom_escape(char *out, size_t n, const char *in)
{
	size_t need = 0;

	for (; *in; in++) {
		const char *e = NULL;
		char one[2] = { *in, 0 };

		if (*in == '\\')
			e = "\\\\";
		else if (*in == '"')
			e = "\\\"";
		else if (*in == '\n')
			e = "\\n";
		else
			e = one;
		for (; *e; e++, need++)
			if (need + 1 < n)
				out[need] = *e;
	}
	if (n)
		out[need < n ? need : n - 1] = 0;
	return need;
}

/* HELP text escapes only backslash and newline. */
static void put_help(FILE *f, const char *s)
{
	for (; *s; s++) {
		if (*s == '\\')
			fputs("\\\\", f);
		else if (*s == '\n')
			fputs("\\n", f);
		else
			fputc(*s, f);
	}
}

static uint32_t hash(const char *s)
{
	uint32_t h = 2166136261u;	/* FNV-1a */

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 16777619u;
	return h;
}

static bool ends_with(const char *s, const char *suf)
{
	size_t a = strlen(s), b = strlen(suf);

	return a >= b && !strcmp(s + a - b, suf);
}

void idn_prom_family(struct idn_prom *p, const char *name, enum idn_prom_type type,
		     const char *help)
{
	uint32_t h;

	p->fam[0] = 0;
	if (!idn_prom_name_ok(name, false) || strlen(name) >= sizeof(p->fam)) {
		misuse(p, "invalid metric name \"%s\"%s", name ? name : "(null)", NULL);
		return;
	}
	if ((unsigned int)type >= sizeof(type_names) / sizeof(type_names[0])) {
		misuse(p, "%s: unknown type%s", name, NULL);
		return;
	}
	if (type == IDN_PROM_COUNTER && !ends_with(name, "_total")) {
		misuse(p, "counter %s: the name must end in _total%s", name, NULL);
		return;
	}
	if (type != IDN_PROM_COUNTER && ends_with(name, "_total")) {
		misuse(p, "%s: only counters end in _total%s", name, NULL);
		return;
	}
	if (!help || !*help) {
		misuse(p, "%s: no help text%s", name, NULL);
		return;
	}
	h = hash(name);
	for (unsigned int i = 0; i < p->n_fam; i++)
		if (p->seen[i] == h) {
			misuse(p, "%s: family written twice%s", name, NULL);
			return;
		}
	if (p->n_fam >= IDN_PROM_MAX_FAMILIES) {
		misuse(p, "%s: more than %s families", name, "256");
		return;
	}
	p->seen[p->n_fam++] = h;
	snprintf(p->fam, sizeof(p->fam), "%s", name);
	p->type = type;
	fprintf(p->f, "# HELP %s ", name);
	put_help(p->f, help);
	fprintf(p->f, "\n# TYPE %s %s\n", name, type_names[type]);
}

/* name{labels} of a sample, or false (nothing written) on a misuse. */
static bool sample_head(struct idn_prom *p, const char *suffix, va_list ap)
{
	char lbuf[1024], esc[512];
	size_t off = 0;
	const char *k, *v;
	bool first = true;

	if (!p->fam[0]) {
		misuse(p, "a sample outside a family%s%s", "", "");
		return false;
	}
	if (suffix && (p->type != IDN_PROM_HISTOGRAM ||
		       (strcmp(suffix, "_bucket") && strcmp(suffix, "_sum") &&
			strcmp(suffix, "_count")))) {
		misuse(p, "%s: suffix %s not allowed", p->fam, suffix);
		return false;
	}
	if (!suffix && p->type == IDN_PROM_HISTOGRAM) {
		misuse(p, "%s: a histogram sample needs _bucket, _sum or _count%s", p->fam, NULL);
		return false;
	}
	lbuf[0] = 0;
	while ((k = va_arg(ap, const char *))) {
		v = va_arg(ap, const char *);
		if (!idn_prom_name_ok(k, true)) {
			misuse(p, "%s: invalid label name \"%s\"", p->fam, k);
			return false;
		}
		if (!v)
			v = "";
		if (idn_prom_escape(esc, sizeof(esc), v) >= sizeof(esc) ||
		    off + strlen(k) + strlen(esc) + 5 >= sizeof(lbuf)) {
			misuse(p, "%s: label %s too long", p->fam, k);
			return false;
		}
		off += snprintf(lbuf + off, sizeof(lbuf) - off, "%s%s=\"%s\"", first ? "{" : ",",
				k, esc);
		first = false;
	}
	fprintf(p->f, "%s%s%s%s", p->fam, suffix ? suffix : "", lbuf, first ? "" : "}");
	return true;
}

void idn_prom_u64(struct idn_prom *p, const char *suffix, uint64_t v, ...)
{
	va_list ap;
	bool ok;

	va_start(ap, v);
	ok = sample_head(p, suffix, ap);
	va_end(ap);
	if (ok)
		fprintf(p->f, " %llu\n", (unsigned long long)v);
}

void idn_prom_f64(struct idn_prom *p, const char *suffix, double v, ...)
{
	va_list ap;
	bool ok;

	va_start(ap, v);
	ok = sample_head(p, suffix, ap);
	va_end(ap);
	if (!ok)
		return;
	if (isnan(v))
		fputs(" NaN\n", p->f);
	else if (isinf(v))
		fputs(v > 0 ? " +Inf\n" : " -Inf\n", p->f);
	else
		fprintf(p->f, " %.15g\n", v);
}

void idn_prom_one_u64(struct idn_prom *p, const char *name, enum idn_prom_type type,
		      const char *help, uint64_t v)
{
	idn_prom_family(p, name, type, help);
	if (p->fam[0])
		idn_prom_u64(p, NULL, v, NULL);
}

void idn_prom_one_f64(struct idn_prom *p, const char *name, enum idn_prom_type type,
		      const char *help, double v)
{
	idn_prom_family(p, name, type, help);
	if (p->fam[0])
		idn_prom_f64(p, NULL, v, NULL);
}

int idn_prom_end(struct idn_prom *p)
{
	return p->err;
}
