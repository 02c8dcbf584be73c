/* SPDX-License-Identifier: GPL-2.0 */
/*
 * json_print.h - one print path for text and JSON (iproute2 style).
 *
 * Every field is printed by one call that yields the text fragment in
 * text mode and the JSON member in JSON mode, so the two cannot drift:
 *
 *	print_uint(PRINT_ANY, "port", "port %u ", port);
 *
 * PRINT_FP prints only in text mode, PRINT_JSON only in JSON mode. In JSON
 * mode a document is collected in memory and written to the output stream
 * by idn_json_end(), so that an error found half-way can replace it with
 * {"error": "..."} (idn_print_error()) and stdout stays valid JSON.
 *
 * What does not belong here: knowledge of IDN objects (see print_idn.c).
 */
#ifndef __IDN_CTL_JSON_PRINT_H
#define __IDN_CTL_JSON_PRINT_H

#include <stdio.h>
#include <stdbool.h>
#include <stdint.h>

enum output_type {
	PRINT_FP = 1,		/* text only */
	PRINT_JSON = 2,		/* JSON only */
	PRINT_ANY = 3,		/* both */
};

/* Mode and destination; json/pretty from -j/-p. out NULL = stdout. */
void idn_print_init(bool json, bool pretty, FILE *out);
bool is_json_context(void);

/* Start / finish one JSON document (top level object or array). */
void idn_json_begin(bool array);
int idn_json_end(void);
/* Drop what was collected (no output). */
void idn_json_discard(void);

/*
 * idn_print_error - report a failure once: {"error": msg} on the output
 * stream in JSON mode (discarding a half-built document), else
 * "idnctl: msg" on stderr.
 */
void idn_print_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

void open_json_object(const char *name);
void close_json_object(void);
void open_json_array(enum output_type t, const char *name);
void close_json_array(enum output_type t, const char *text);

void print_uint(enum output_type t, const char *key, const char *fmt, unsigned int v);
void print_u64(enum output_type t, const char *key, const char *fmt, uint64_t v);
void print_int(enum output_type t, const char *key, const char *fmt, int v);
void print_string(enum output_type t, const char *key, const char *fmt, const char *v);
void print_bool(enum output_type t, const char *key, const char *fmt, bool v);
/* JSON: number; text: fmt applied to the double (e.g. "%.2f"). */
void print_double(enum output_type t, const char *key, const char *fmt, double v);
/* JSON: "0x..." string; text: fmt applied to the value. */
void print_hex(enum output_type t, const char *key, const char *fmt, unsigned int v);
void print_null(enum output_type t, const char *key, const char *fmt, const char *text);
/* Text only: a newline (iproute2 print_nl). */
void print_nl(void);
/* Text only: raw text. */
void print_text(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif /* __IDN_CTL_JSON_PRINT_H */
