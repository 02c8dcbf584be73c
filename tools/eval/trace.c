// SPDX-License-Identifier: GPL-2.0
/*
 * trace.c - request traces for the simulator: Mooncake JSON lines
 * ({"timestamp": ms, "input_length", "output_length", "hash_ids": [...]})
 * and Azure LLM inference CSV (TIMESTAMP,ContextTokens,GeneratedTokens,
 * TIMESTAMP a wall-clock "YYYY-MM-DD HH:MM:SS.fffffff" or seconds), plain
 * or gzip'd (zlib reads both). Any malformed line is an error naming the
 * file and line; nothing is skipped silently.
 *
 * Hash ids become the agent's chained block keys (kv_chain), so a key
 * names a whole prefix as in the engine's cache. Mooncake has no session
 * id: the session key is the first two blocks (docs/benchmarks.md).
 */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include <json-c/json.h>

#include "agent.h"
#include "eval.h"

struct rd {
	struct ev_trace *t;
	const char *name;
	size_t line;
	size_t r_cap, k_cap;
	int fmt;		/* 0 unknown, 1 mooncake, 2 azure */
	int col_ts, col_in, col_out, ncol;
	double t0;
	char *err;
	size_t errlen;
};

static int fail(struct rd *d, const char *fmt, ...)
{
	char msg[200];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	snprintf(d->err, d->errlen, "%s:%zu: %s", d->name, d->line, msg);
	return -EINVAL;
}

static uint64_t mix(uint64_t x)
{
	x ^= x >> 31;
	x *= 0x7fb5d329728ea185ULL;
	x ^= x >> 27;
	x *= 0x81dadef4bc2dd44dULL;
	x ^= x >> 33;
	return x ? x : 1;
}

static struct ev_req *req_new(struct rd *d)
{
	struct ev_trace *t = d->t;

	if (t->n == d->r_cap) {
		size_t n = d->r_cap ? d->r_cap * 2 : 4096;
		struct ev_req *p = realloc(t->r, n * sizeof(*p));

		if (!p)
			return NULL;
		t->r = p;
		d->r_cap = n;
	}
	memset(&t->r[t->n], 0, sizeof(t->r[0]));
	return &t->r[t->n];
}

static int keys_room(struct rd *d, size_t more)
{
	struct ev_trace *t = d->t;

	if (t->nkeys + more > d->k_cap) {
		size_t n = d->k_cap ? d->k_cap : 65536;
		uint64_t *p;

		while (n < t->nkeys + more)
			n *= 2;
		p = realloc(t->keys, n * sizeof(*p));
		if (!p)
			return -ENOMEM;
		t->keys = p;
		d->k_cap = n;
	}
	return 0;
}

/* a JSON number field that is an integer in [lo, hi] */
static int get_int(struct rd *d, json_object *o, const char *key, int64_t lo, int64_t hi,
		   int64_t *v)
{
	json_object *x;

	if (!json_object_object_get_ex(o, key, &x))
		return fail(d, "missing \"%s\"", key);
	if (!json_object_is_type(x, json_type_int) &&
	    !(json_object_is_type(x, json_type_double) &&
	      json_object_get_double(x) == floor(json_object_get_double(x))))
		return fail(d, "\"%s\" is not an integer", key);
	if (!json_object_is_type(x, json_type_int)) {
		double dv = json_object_get_double(x);

		/* range first: a cast of a double past int64 is undefined */
		if (!(dv >= (double)lo && dv <= (double)hi))
			return fail(d, "\"%s\" %g out of range [%lld, %lld]", key, dv,
				    (long long)lo, (long long)hi);
		*v = (int64_t)dv;
	} else {
		*v = json_object_get_int64(x);
	}
	if (*v < lo || *v > hi)
		return fail(d, "\"%s\" %lld out of range [%lld, %lld]", key, (long long)*v,
			    (long long)lo, (long long)hi);
	return 0;
}

static int mooncake_line(struct rd *d, const char *s)
{
	json_object *o = json_tokener_parse(s), *x, *ids;
	struct ev_req *r;
	int64_t in, out, v;
	double ts;
	uint64_t prev = 0;
	size_t nh;
	int err;

	if (!o || !json_object_is_type(o, json_type_object)) {
		json_object_put(o);
		return fail(d, "not a JSON object");
	}
	r = req_new(d);
	if (!r) {
		json_object_put(o);
		return -ENOMEM;
	}
	if (!json_object_object_get_ex(o, "timestamp", &x) ||
	    !(json_object_is_type(x, json_type_int) || json_object_is_type(x, json_type_double))) {
		json_object_put(o);
		return fail(d, "missing or non-numeric \"timestamp\"");
	}
	ts = json_object_get_double(x);
	if (!(ts >= 0) || ts > 1e13) {
		json_object_put(o);
		return fail(d, "\"timestamp\" out of range");
	}
	err = get_int(d, o, "input_length", 1, 1 << 24, &in);
	if (!err)
		err = get_int(d, o, "output_length", 0, 1 << 24, &out);
	if (err) {
		json_object_put(o);
		return err;
	}
	nh = 0;
	if (json_object_object_get_ex(o, "hash_ids", &ids)) {
		if (!json_object_is_type(ids, json_type_array)) {
			json_object_put(o);
			return fail(d, "\"hash_ids\" is not an array");
		}
		nh = json_object_array_length(ids);
	}
	if (nh > ((size_t)in + EV_TRACE_BLOCK - 1) / EV_TRACE_BLOCK) {
		json_object_put(o);
		return fail(d, "%zu hash_ids for %lld tokens (more than one per %d)", nh,
			    (long long)in, EV_TRACE_BLOCK);
	}
	if (keys_room(d, nh)) {
		json_object_put(o);
		return -ENOMEM;
	}
	r->k_off = d->t->nkeys;
	for (size_t i = 0; i < nh; i++) {
		x = json_object_array_get_idx(ids, i);
		if (!x || !json_object_is_type(x, json_type_int)) {
			json_object_put(o);
			return fail(d, "hash_ids[%zu] is not an integer", i);
		}
		v = json_object_get_int64(x);
		d->t->keys[d->t->nkeys++] = prev = kv_chain(prev, (uint64_t)v);
		if (i == 1 || (i == 0 && nh == 1))
			r->sess = mix(prev);
	}
	json_object_put(o);
	r->t_us = ts * 1000.0;
	r->in = in;
	r->out = out ? out : 1;	/* the engine emits at least the first token */
	r->nk = nh;
	if (!nh)
		r->sess = mix(0x5e55 + d->t->n);
	if (nh)
		d->t->has_prefix = true;
	d->t->n++;
	return 0;
}

/* days since 1970-01-01 of a civil date (proleptic Gregorian) */
static int64_t days_civil(int64_t y, unsigned int m, unsigned int dd)
{
	int64_t era;
	unsigned int yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = (unsigned int)(y - era * 400);
	doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + dd - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + (int64_t)doe - 719468;
}

static int parse_ts(const char *s, double *out)
{
	int y, mo, da, h, mi, n = 0;
	double sec;
	char *end;

	if (sscanf(s, "%d-%d-%d %d:%d:%lf%n", &y, &mo, &da, &h, &mi, &sec, &n) == 6 &&
	    !s[n] && mo >= 1 && mo <= 12 && da >= 1 && da <= 31 && h >= 0 && h < 24 &&
	    mi >= 0 && mi < 60 && sec >= 0 && sec < 61) {
		*out = days_civil(y, mo, da) * 86400.0 + h * 3600.0 + mi * 60.0 + sec;
		return 0;
	}
	*out = strtod(s, &end);
	if (end == s || *end || !(*out >= 0))
		return -EINVAL;
	return 0;
}

static char *trim(char *s)
{
	char *e;

	while (*s == ' ' || *s == '\t' || *s == '"')
		s++;
	e = s + strlen(s);
	while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '"' || e[-1] == '\r' ||
			 e[-1] == '\n'))
		*--e = 0;
	return s;
}

static int azure_header(struct rd *d, char *s)
{
	char *tok, *save = NULL;
	int i = 0;

	d->col_ts = d->col_in = d->col_out = -1;
	for (tok = strtok_r(s, ",", &save); tok; tok = strtok_r(NULL, ",", &save), i++) {
		tok = trim(tok);
		if (!strcmp(tok, "TIMESTAMP"))
			d->col_ts = i;
		else if (!strcmp(tok, "ContextTokens"))
			d->col_in = i;
		else if (!strcmp(tok, "GeneratedTokens"))
			d->col_out = i;
	}
	d->ncol = i;
	if (i > 16)
		return fail(d, "CSV header has %d columns, at most 16", i);
	if (d->col_ts < 0 || d->col_in < 0 || d->col_out < 0)
		return fail(d, "CSV header lacks TIMESTAMP, ContextTokens or GeneratedTokens");
	return 0;
}

static int csv_int(struct rd *d, const char *s, const char *what, long lo, long hi, long *v)
{
	char *end;

	*v = strtol(s, &end, 10);
	if (end == s || *end)
		return fail(d, "%s \"%.40s\" is not an integer", what, s);
	if (*v < lo || *v > hi)
		return fail(d, "%s %ld out of range [%ld, %ld]", what, *v, lo, hi);
	return 0;
}

static int azure_line(struct rd *d, char *s)
{
	char *f[16], *save = NULL, *tok;
	struct ev_req *r;
	long in, out;
	int n = 0, err;
	double ts;

	for (tok = strtok_r(s, ",", &save); tok && n < 16; tok = strtok_r(NULL, ",", &save))
		f[n++] = trim(tok);
	if (n != d->ncol)
		return fail(d, "%d fields, the header has %d", n, d->ncol);
	if (parse_ts(f[d->col_ts], &ts))
		return fail(d, "TIMESTAMP \"%.40s\" is neither YYYY-MM-DD HH:MM:SS[.f] nor seconds",
			    f[d->col_ts]);
	err = csv_int(d, f[d->col_in], "ContextTokens", 1, 1 << 24, &in);
	if (!err)
		err = csv_int(d, f[d->col_out], "GeneratedTokens", 0, 1 << 24, &out);
	if (err)
		return err;
	r = req_new(d);
	if (!r)
		return -ENOMEM;
	if (!d->t->n)
		d->t0 = ts;
	r->t_us = (ts - d->t0) * 1e6;
	r->in = in;
	r->out = out ? out : 1;
	r->sess = mix(0xa2 + d->t->n);
	d->t->n++;
	return 0;
}

static int one_line(struct rd *d, char *s)
{
	char *p = s;

	while (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n')
		p++;
	if (!*p)
		return 0;	/* blank lines are allowed */
	if (!d->fmt) {
		if (*p == '{')
			d->fmt = 1;
		else if (!strncmp(p, "TIMESTAMP", 9) || strstr(p, "ContextTokens")) {
			d->fmt = 2;
			return azure_header(d, p);
		} else {
			return fail(d, "neither a Mooncake JSON line nor an Azure CSV header");
		}
	}
	return d->fmt == 1 ? mooncake_line(d, p) : azure_line(d, p);
}

static int cmp_t(const void *a, const void *b)
{
	const struct ev_req *x = a, *y = b;

	if (x->t_us != y->t_us)
		return x->t_us < y->t_us ? -1 : 1;
	return x->k_off < y->k_off ? -1 : x->k_off > y->k_off;
}

static int finish(struct rd *d)
{
	struct ev_trace *t = d->t;
	bool sorted = true;
	double t0;

	if (!t->n) {
		snprintf(d->err, d->errlen, "%s: no requests", d->name);
		return -EINVAL;
	}
	for (size_t i = 1; i < t->n; i++)
		if (t->r[i].t_us < t->r[i - 1].t_us)
			sorted = false;
	if (!sorted)	/* stable: ties keep file order (k_off, then index) */
		qsort(t->r, t->n, sizeof(*t->r), cmp_t);
	t0 = t->r[0].t_us;
	for (size_t i = 0; i < t->n; i++)
		t->r[i].t_us -= t0;
	t->span_us = t->r[t->n - 1].t_us;
	return 0;
}

int ev_trace_load(const char *path, struct ev_trace *t, char *err, size_t errlen)
{
	struct rd d = { .t = t, .name = path, .err = err, .errlen = errlen };
	size_t cap = 4096, len;
	char *buf;
	gzFile f;
	int e = 0;

	memset(t, 0, sizeof(*t));
	f = gzopen(path, "rb");
	if (!f) {
		e = errno ? -errno : -ENOMEM;
		snprintf(err, errlen, "%s: %s", path, strerror(-e));
		return e;
	}
	buf = malloc(cap);
	while (!e && buf) {
		len = 0;
		buf[0] = 0;
		/* one whole line, however long */
		while (gzgets(f, buf + len, cap - len)) {
			len += strlen(buf + len);
			if (len && buf[len - 1] == '\n')
				break;
			if (len + 1 >= cap) {
				char *nb = realloc(buf, cap * 2);

				if (!nb) {
					e = -ENOMEM;
					break;
				}
				buf = nb;
				cap *= 2;
			}
		}
		if (e || !len)
			break;
		if (memchr(buf, 0, len) != NULL && strlen(buf) != len) {
			d.line++;
			e = fail(&d, "binary data");
			break;
		}
		d.line++;
		e = one_line(&d, buf);
	}
	if (!buf)
		e = -ENOMEM;
	if (!e) {
		int ge;
		const char *gm = gzerror(f, &ge);

		if (ge != Z_OK && ge != Z_STREAM_END)
			e = fail(&d, "read error: %s", gm);
	}
	free(buf);
	gzclose(f);
	if (e == -ENOMEM)
		snprintf(err, errlen, "%s: out of memory", path);
	if (!e)
		e = finish(&d);
	if (e)
		ev_trace_free(t);
	return e;
}

int ev_trace_parse(const char *text, const char *name, struct ev_trace *t, char *err,
		   size_t errlen)
{
	struct rd d = { .t = t, .name = name, .err = err, .errlen = errlen };
	const char *p = text;
	int e = 0;

	memset(t, 0, sizeof(*t));
	while (!e && *p) {
		const char *nl = strchr(p, '\n');
		size_t n = nl ? (size_t)(nl - p) : strlen(p);
		char *line = strndup(p, n);

		if (!line)
			return -ENOMEM;
		d.line++;
		e = one_line(&d, line);
		free(line);
		p += n + (nl ? 1 : 0);
	}
	if (!e)
		e = finish(&d);
	if (e)
		ev_trace_free(t);
	return e;
}

void ev_trace_free(struct ev_trace *t)
{
	free(t->r);
	free(t->keys);
	memset(t, 0, sizeof(*t));
}

/*
 * Stamps spread: the requests that share a timestamp (the Mooncake
 * conversation trace releases ~3 s batches) are spaced evenly over the gap
 * to the next timestamp, in trace order (the last batch over the gap
 * before it), so the order requests reach the engines is the trace's in
 * any replay: a simulator and a testbed, where a batch's long prompts
 * would otherwise finish uploading after its short ones.
 */
void ev_trace_spread(struct ev_trace *t)
{
	double gap = 0;
	size_t i = 0;

	while (i < t->n) {
		size_t j = i;

		while (j < t->n && t->r[j].t_us == t->r[i].t_us)
			j++;
		if (j < t->n)
			gap = t->r[j].t_us - t->r[i].t_us;
		for (size_t k = i + 1; k < j; k++)
			t->r[k].t_us = t->r[i].t_us + gap * (double)(k - i) / (double)(j - i);
		i = j;
	}
	t->span_us = t->n ? t->r[t->n - 1].t_us : 0;
}
