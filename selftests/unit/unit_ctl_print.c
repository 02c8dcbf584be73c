// SPDX-License-Identifier: GPL-2.0
/*
 * unit_ctl_print.c - the text/JSON print layer: the same calls give the
 * text fragment or valid JSON; errors replace a half-built document with
 * {"error": ...}; strings are escaped.
 */
#include <stdlib.h>

#include "tap.h"
#include "json_print.h"

static char *buf;
static size_t len;
static FILE *f;

static void start(bool json, bool pretty)
{
	free(buf);
	buf = NULL;
	f = open_memstream(&buf, &len);
	idn_print_init(json, pretty, f);
}

static const char *finish(void)
{
	fclose(f);
	return buf;
}

/* One record through every print_* kind. */
static void record(void)
{
	idn_json_begin(true);
	for (int i = 1; i <= 2; i++) {
		open_json_object(NULL);
		print_uint(PRINT_ANY, "id", "node %u ", i);
		print_string(PRINT_ANY, "health", "health %s ", i == 1 ? "up" : "down");
		print_bool(PRINT_JSON, "valid", NULL, true);
		print_string(PRINT_FP, NULL, "%s", "text-only ");
		print_u64(PRINT_ANY, "bytes", "bytes %llu", 1ULL << 40);
		open_json_array(PRINT_JSON, "cands");
		print_int(PRINT_ANY, NULL, " %d", -i);
		close_json_array(PRINT_JSON, NULL);
		close_json_object();
		print_nl();
	}
	idn_json_end();
}

static void test_text(void)
{
	start(false, false);
	record();
	ASSERT_TRUE(!strcmp(finish(),
		"node 1 health up text-only bytes 1099511627776 -1\n"
		"node 2 health down text-only bytes 1099511627776 -2\n"), "text");
	if (tap_cur_fail)
		printf("# got: %s", buf);
}

static void test_json(void)
{
	start(true, false);
	record();
	ASSERT_TRUE(!strcmp(finish(),
		"[{\"id\":1,\"health\":\"up\",\"valid\":true,\"bytes\":1099511627776,\"cands\":[-1]},"
		"{\"id\":2,\"health\":\"down\",\"valid\":true,\"bytes\":1099511627776,\"cands\":[-2]}]\n"),
		"json");
	if (tap_cur_fail)
		printf("# got: %s", buf);
}

static void test_pretty(void)
{
	start(false, true);	/* -p implies -j */
	ASSERT_TRUE(is_json_context(), "pretty implies json");
	idn_json_begin(false);
	print_uint(PRINT_ANY, "a", "a %u", 1);
	open_json_array(PRINT_JSON, "e");
	close_json_array(PRINT_JSON, NULL);
	idn_json_end();
	ASSERT_TRUE(!strcmp(finish(), "{\n  \"a\": 1,\n  \"e\": []\n}\n"), "pretty");
	if (tap_cur_fail)
		printf("# got: %s", buf);
}

static void test_error_json(void)
{
	start(true, false);
	idn_json_begin(false);
	print_uint(PRINT_ANY, "half", "half %u", 1);
	open_json_object("built");
	idn_print_error("bad \"thing\"\n\x01");
	ASSERT_TRUE(!strcmp(finish(), "{\"error\":\"bad \\\"thing\\\"\\n\\u0001\"}\n"),
		    "error replaces document, escaped");
	if (tap_cur_fail)
		printf("# got: %s", buf);
}

static void test_error_text(void)
{
	start(false, false);
	print_uint(PRINT_ANY, "x", "x %u\n", 5);
	idn_print_error("goes to stderr");
	ASSERT_TRUE(!strcmp(finish(), "x 5\n"), "text error not on stdout");
}

static void test_hex_null_double(void)
{
	start(true, false);
	idn_json_begin(false);
	print_hex(PRINT_ANY, "h", "h 0x%x", 0x1d4e);
	print_null(PRINT_ANY, "n", "n %s", "none");
	print_double(PRINT_ANY, "d", "d %.2f", 1.5);
	print_string(PRINT_ANY, "s", "s %s", NULL);
	idn_json_end();
	ASSERT_TRUE(!strcmp(finish(), "{\"h\":\"0x1d4e\",\"n\":null,\"d\":1.5,\"s\":null}\n"), "json");
	start(false, false);
	print_hex(PRINT_ANY, "h", "h 0x%x ", 0x1d4e);
	print_null(PRINT_ANY, "n", "n %s ", "none");
	print_double(PRINT_ANY, "d", "d %.2f", 1.5);
	ASSERT_TRUE(!strcmp(finish(), "h 0x1d4e n none d 1.50"), "text");
}

int main(void)
{
	tap_plan(0);
	TAP_RUN(test_text);
	TAP_RUN(test_json);
	TAP_RUN(test_pretty);
	TAP_RUN(test_error_json);
	TAP_RUN(test_error_text);
	TAP_RUN(test_hex_null_double);
	idn_print_init(false, false, NULL);
	free(buf);
	return tap_done();
}
