// SPDX-License-Identifier: GPL-2.0
/*
 * json_print.c - text/JSON print layer and a small JSON writer.
 *
 * The writer keeps a stack of open containers and a member count per
 * level for commas; pretty mode indents by two spaces. JSON documents are
 * built in a memory stream and written out whole by idn_json_end().
 */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "json_print.h"

#define JSON_MAX_DEPTH 32

static struct {
	bool json, pretty;
	FILE *out;		/* final destination */
	FILE *doc;		/* memory stream of the current JSON document */
	char *buf;
	size_t len;
	int depth;
	bool is_array[JSON_MAX_DEPTH];
	unsigned int count[JSON_MAX_DEPTH];
} P;

static FILE *out_stream(void)
{
	return P.out ? P.out : stdout;
}

void idn_print_init(bool json, bool pretty, FILE *out)
{
	idn_json_discard();
	P.json = json || pretty;
	P.pretty = pretty;
	P.out = out;
}

bool is_json_context(void)
{
	return P.json;
}

static void jw_indent(void)
{
	if (!P.pretty)
		return;
	fputc('\n', P.doc);
	for (int i = 0; i < P.depth; i++)
		fputs("  ", P.doc);
}

static void jw_string(const char *s)
{
	fputc('"', P.doc);
	for (; s && *s; s++) {
		unsigned char c = *s;

		switch (c) {
		case '"': fputs("\\\"", P.doc); break;
		case '\\': fputs("\\\\", P.doc); break;
		case '\n': fputs("\\n", P.doc); break;
		case '\r': fputs("\\r", P.doc); break;
		case '\t': fputs("\\t", P.doc); break;
		default:
			if (c < 0x20)
				fprintf(P.doc, "\\u%04x", c);
			else
				fputc(c, P.doc);
		}
	}
	fputc('"', P.doc);
}

/* Comma, indentation and "key": before a value at the current level. */
static void jw_member(const char *key)
{
	if (P.depth > 0) {
		if (P.count[P.depth - 1]++)
			fputc(',', P.doc);
		jw_indent();
		if (!P.is_array[P.depth - 1]) {
			jw_string(key ? key : "");
			fputs(P.pretty ? ": " : ":", P.doc);
		}
	}
}

static void jw_open(const char *key, bool array)
{
	jw_member(key);
	fputc(array ? '[' : '{', P.doc);
	if (P.depth < JSON_MAX_DEPTH) {
		P.is_array[P.depth] = array;
		P.count[P.depth] = 0;
	}
	P.depth++;
}

static void jw_close(void)
{
	bool array, empty;

	if (P.depth <= 0)
		return;
	array = P.is_array[P.depth - 1];
	empty = !P.count[P.depth - 1];
	P.depth--;
	if (!empty)
		jw_indent();
	fputc(array ? ']' : '}', P.doc);
}

static bool json_ready(void)
{
	if (!P.json)
		return false;
	if (!P.doc)
		idn_json_begin(false);
	return P.doc != NULL;
}

void idn_json_begin(bool array)
{
	if (!P.json)
		return;
	idn_json_discard();
	P.doc = open_memstream(&P.buf, &P.len);
	if (!P.doc)
		return;
	P.depth = 0;
	jw_open(NULL, array);
}

void idn_json_discard(void)
{
	if (P.doc)
		fclose(P.doc);
	free(P.buf);
	P.doc = NULL;
	P.buf = NULL;
	P.len = 0;
	P.depth = 0;
}

int idn_json_end(void)
{
	FILE *out = out_stream();

	if (!P.json || !P.doc)
		return 0;
	while (P.depth > 0)
		jw_close();
	fclose(P.doc);
	P.doc = NULL;
	fwrite(P.buf, 1, P.len, out);
	fputc('\n', out);
	free(P.buf);
	P.buf = NULL;
	P.len = 0;
	return fflush(out) ? -1 : 0;
}

void idn_print_error(const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);

	if (!P.json) {
		fflush(out_stream());
		fprintf(stderr, "idnctl: %s\n", msg);
		return;
	}
	idn_json_begin(false);
	if (!P.doc)
		return;
	jw_member("error");
	jw_string(msg);
	idn_json_end();
}

void open_json_object(const char *name)
{
	if (json_ready())
		jw_open(name, false);
}

void close_json_object(void)
{
	if (json_ready())
		jw_close();
}

void open_json_array(enum output_type t, const char *name)
{
	if (P.json) {
		if ((t & PRINT_JSON) && json_ready())
			jw_open(name, true);
	} else if ((t & PRINT_FP) && name) {
		fprintf(out_stream(), "%s", name);
	}
}

void close_json_array(enum output_type t, const char *text)
{
	if (P.json) {
		if ((t & PRINT_JSON) && json_ready())
			jw_close();
	} else if ((t & PRINT_FP) && text) {
		fprintf(out_stream(), "%s", text);
	}
}

/* Text side of every print_*: fmt applied to the value. */
#define TEXT_OUT(t, fmt, v) do {					\
	if (!P.json && ((t) & PRINT_FP) && (fmt))			\
		fprintf(out_stream(), fmt, v);				\
} while (0)

#define JSON_OK(t) (P.json && ((t) & PRINT_JSON) && json_ready())

void print_uint(enum output_type t, const char *key, const char *fmt, unsigned int v)
{
	if (JSON_OK(t)) {
		jw_member(key);
		fprintf(P.doc, "%u", v);
	}
	TEXT_OUT(t, fmt, v);
}

void print_u64(enum output_type t, const char *key, const char *fmt, uint64_t v)
{
	if (JSON_OK(t)) {
		jw_member(key);
		fprintf(P.doc, "%llu", (unsigned long long)v);
	}
	TEXT_OUT(t, fmt, (unsigned long long)v);
}

void print_int(enum output_type t, const char *key, const char *fmt, int v)
{
	if (JSON_OK(t)) {
		jw_member(key);
		fprintf(P.doc, "%d", v);
	}
	TEXT_OUT(t, fmt, v);
}

void print_string(enum output_type t, const char *key, const char *fmt, const char *v)
{
	if (JSON_OK(t)) {
		jw_member(key);
		if (v)
			jw_string(v);
		else
			fputs("null", P.doc);
	}
	TEXT_OUT(t, fmt, v ? v : "");
}

void print_bool(enum output_type t, const char *key, const char *fmt, bool v)
{
	if (JSON_OK(t)) {
		jw_member(key);
		fputs(v ? "true" : "false", P.doc);
	}
	TEXT_OUT(t, fmt, v ? "true" : "false");
}

void print_double(enum output_type t, const char *key, const char *fmt, double v)
{
	if (JSON_OK(t)) {
		jw_member(key);
		fprintf(P.doc, "%.6g", v);
	}
	TEXT_OUT(t, fmt, v);
}

void print_hex(enum output_type t, const char *key, const char *fmt, unsigned int v)
{
	if (JSON_OK(t)) {
		char b[16];

		snprintf(b, sizeof(b), "0x%x", v);
		jw_member(key);
		jw_string(b);
	}
	TEXT_OUT(t, fmt, v);
}

void print_null(enum output_type t, const char *key, const char *fmt, const char *text)
{
	if (JSON_OK(t)) {
		jw_member(key);
		fputs("null", P.doc);
	}
	TEXT_OUT(t, fmt, text ? text : "");
}

void print_nl(void)
{
	if (!P.json)
		fputc('\n', out_stream());
}

void print_text(const char *fmt, ...)
{
	va_list ap;

	if (P.json)
		return;
	va_start(ap, fmt);
	vfprintf(out_stream(), fmt, ap);
	va_end(ap);
}
