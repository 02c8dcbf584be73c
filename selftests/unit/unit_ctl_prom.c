// SPDX-License-Identifier: GPL-2.0
/*
 * unit_ctl_prom.c - the Prometheus text writer (ctl/lib/prom.c): label
 * values escaped so that they parse back to themselves, HELP escaped,
 * names checked, misuses refused and not written, and (where promtool
 * is installed) a whole exposition with hostile values lint-clean.
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <unistd.h>

#include "tap.h"
#include "prom.h"

static char *buf;
static size_t len;
static FILE *f;
static struct idn_prom P;

static void start(void)
{
	free(buf);
	buf = NULL;
	f = open_memstream(&buf, &len);
	idn_prom_init(&P, f);
}

static const char *finish(void)
{
	fclose(f);
	f = NULL;
	return buf;
}

/* The text format's own unescaping, written from its grammar. */
static void unescape(char *out, const char *in, size_t n)
{
	size_t o = 0;

	for (size_t i = 0; i < n; i++) {
		if (in[i] == '\\' && i + 1 < n) {
			i++;
			out[o++] = in[i] == 'n' ? '\n' : in[i];
		} else {
			out[o++] = in[i];
		}
	}
	out[o] = 0;
}

static void test_escape(void)
{
	static const char *const vals[] = {
		"plain", "a\"b", "back\\slash", "new\nline", "\\\"\n", "end\\", "",
		"meta-llama/Llama-3.1-8B \"instruct\"",
	};
	char out[128], back[128];

	ASSERT_EQ(idn_prom_escape(out, sizeof(out), "a\"b\\c\nd"), 10, "escaped length");
	ASSERT_TRUE(!strcmp(out, "a\\\"b\\\\c\\nd"), "escaped text");
	for (size_t i = 0; i < sizeof(vals) / sizeof(vals[0]); i++) {
		size_t n = idn_prom_escape(out, sizeof(out), vals[i]);

		ASSERT_TRUE(!strchr(out, '\n'), "no raw newline");
		for (size_t j = 0; j < n; j++)	/* every quote is escaped */
			if (out[j] == '"') {
				size_t bs = 0;

				while (bs < j && out[j - 1 - bs] == '\\')
					bs++;
				ASSERT_TRUE(bs % 2 == 1, "quote escaped");
			}
		unescape(back, out, n);
		ASSERT_TRUE(!strcmp(back, vals[i]), vals[i]);
	}
	/* cut: terminated, and the length needed is returned */
	ASSERT_EQ(idn_prom_escape(out, 4, "\"\"\"\""), 8, "needed length");
	ASSERT_EQ(strlen(out), 3, "cut and terminated");
}

static void test_family(void)
{
	const char *t;

	start();
	idn_prom_family(&P, "idn_x_total", IDN_PROM_COUNTER, "Things, with a \\ and\na newline.");
	idn_prom_u64(&P, NULL, 7, "model_name", "m\"1", "node", "3", NULL);
	idn_prom_u64(&P, NULL, 18446744073709551615ULL, NULL);
	idn_prom_one_f64(&P, "idn_y_seconds", IDN_PROM_GAUGE, "Y.", 0.25);
	idn_prom_one_f64(&P, "idn_z_ratio", IDN_PROM_GAUGE, "Z.", INFINITY);
	ASSERT_OK(idn_prom_end(&P), "no misuse");
	t = finish();
	ASSERT_TRUE(!strcmp(t,
		"# HELP idn_x_total Things, with a \\\\ and\\na newline.\n"
		"# TYPE idn_x_total counter\n"
		"idn_x_total{model_name=\"m\\\"1\",node=\"3\"} 7\n"
		"idn_x_total 18446744073709551615\n"
		"# HELP idn_y_seconds Y.\n# TYPE idn_y_seconds gauge\nidn_y_seconds 0.25\n"
		"# HELP idn_z_ratio Z.\n# TYPE idn_z_ratio gauge\nidn_z_ratio +Inf\n"), t);
}

static void test_histogram(void)
{
	const char *t;

	start();
	idn_prom_family(&P, "idn_h_seconds", IDN_PROM_HISTOGRAM, "H.");
	idn_prom_u64(&P, "_bucket", 1, "le", "0.5", NULL);
	idn_prom_u64(&P, "_bucket", 2, "le", "+Inf", NULL);
	idn_prom_f64(&P, "_sum", 0.75, NULL);
	idn_prom_u64(&P, "_count", 2, NULL);
	ASSERT_OK(idn_prom_end(&P), "no misuse");
	t = finish();
	ASSERT_TRUE(strstr(t, "idn_h_seconds_bucket{le=\"+Inf\"} 2\nidn_h_seconds_sum 0.75\n"
			      "idn_h_seconds_count 2\n") != NULL, t);
}

/* Each misuse is refused, named, and leaves no line behind. */
static void test_misuse(void)
{
	static const struct {
		const char *name, *help, *suffix, *lname;
		enum idn_prom_type type;
		const char *why;
	} bad[] = {
		{ "idn_x", "X.", NULL, NULL, IDN_PROM_COUNTER, "_total" },
		{ "idn_x_total", "X.", NULL, NULL, IDN_PROM_GAUGE, "only counters" },
		{ "9idn", "X.", NULL, NULL, IDN_PROM_GAUGE, "invalid metric name" },
		{ "idn-x", "X.", NULL, NULL, IDN_PROM_GAUGE, "invalid metric name" },
		{ "idn_x", "", NULL, NULL, IDN_PROM_GAUGE, "no help" },
		{ "idn_x", "X.", NULL, "bad-label", IDN_PROM_GAUGE, "invalid label name" },
		{ "idn_x", "X.", NULL, "__reserved", IDN_PROM_GAUGE, "invalid label name" },
		{ "idn_x", "X.", "_sum", NULL, IDN_PROM_GAUGE, "suffix" },
		{ "idn_x", "X.", NULL, NULL, IDN_PROM_HISTOGRAM, "needs _bucket" },
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		const char *t;

		start();
		idn_prom_family(&P, bad[i].name, bad[i].type, bad[i].help);
		idn_prom_u64(&P, bad[i].suffix, 1, bad[i].lname, "v", NULL);
		ASSERT_EQ(idn_prom_end(&P), -EINVAL, bad[i].why);
		ASSERT_TRUE(strstr(P.why, bad[i].why) != NULL, P.why);
		t = finish();
		ASSERT_TRUE(!strstr(t, "idn_x 1") && !strstr(t, "idn_x_total 1") &&
			    !strstr(t, "idn_x_sum"), t);
	}
	start();
	idn_prom_one_u64(&P, "idn_d_total", IDN_PROM_COUNTER, "D.", 1);
	idn_prom_one_u64(&P, "idn_d_total", IDN_PROM_COUNTER, "D.", 2);
	ASSERT_EQ(idn_prom_end(&P), -EINVAL, "family twice");
	ASSERT_TRUE(!strstr(finish(), "idn_d_total 2"), "second family not written");
}

/* A whole exposition with hostile label values passes promtool's lint. */
static void test_promtool(void)
{
	char path[] = "/tmp/unit_prom_XXXXXX", cmd[256];
	const char *t;
	FILE *o;
	int fd, rc;

	if (system("command -v promtool >/dev/null 2>&1")) {
		tap_skip("promtool not installed (Debian's prometheus package)");
		return;
	}
	start();
	idn_prom_family(&P, "idn_test_requests_total", IDN_PROM_COUNTER, "Requests\nby model.");
	idn_prom_u64(&P, NULL, 1, "model_name", "a\"b", NULL);
	idn_prom_u64(&P, NULL, 2, "model_name", "c\\d\ne", NULL);
	idn_prom_one_f64(&P, "idn_test_kv_usage_ratio", IDN_PROM_GAUGE, "Use.", 0.5);
	idn_prom_family(&P, "idn_test_ttft_seconds", IDN_PROM_HISTOGRAM, "TTFT.");
	idn_prom_u64(&P, "_bucket", 0, "le", "0.1", NULL);
	idn_prom_u64(&P, "_bucket", 3, "le", "+Inf", NULL);
	idn_prom_f64(&P, "_sum", 1.5, NULL);
	idn_prom_u64(&P, "_count", 3, NULL);
	ASSERT_OK(idn_prom_end(&P), "no misuse");
	t = finish();
	fd = mkstemp(path);
	if (!ASSERT_TRUE(fd >= 0, "mkstemp"))
		return;
	o = fdopen(fd, "w");
	fputs(t, o);
	fclose(o);
	snprintf(cmd, sizeof(cmd), "promtool check metrics < %s", path);
	rc = system(cmd);
	unlink(path);
	ASSERT_EQ(rc, 0, "promtool check metrics");
	/* and the lint does catch what the writer refuses to write */
	snprintf(cmd, sizeof(cmd), "printf 'idn_bad 1\\n' | promtool check metrics >/dev/null 2>&1");
	ASSERT_NEQ(system(cmd), 0, "promtool flags a family without HELP");
}

int main(void)
{
	tap_plan(0);
	TAP_RUN(test_escape);
	TAP_RUN(test_family);
	TAP_RUN(test_histogram);
	TAP_RUN(test_misuse);
	TAP_RUN(test_promtool);
	free(buf);
	return tap_done();
}
