// SPDX-License-Identifier: GPL-2.0
/*
 * unit_ctl_conf.c - the daemons' configuration files (ctl/lib/conf.c,
 * libinih): keys are the long options, flags take yes/no or a count, a
 * bad line is reported as FILE:LINE with the reason, a reload applies only
 * its keys, dataplane.conf's sections are read one at a time.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tap.h"
#include "conf.h"

static const struct option opts[] = {
	{ "port", required_argument, NULL, 'p' },
	{ "name", required_argument, NULL, 'n' },
	{ "verbose", no_argument, NULL, 'v' },
	{ "insecure", no_argument, NULL, 'i' },
	{ "config", required_argument, NULL, 'c' },
	{ 0 }
};
static const char *const skip[] = { "config", NULL };

struct cfg { long port; char name[32]; int verbose; int insecure; };

static int apply(void *ctx, int val, const char *arg, const char **why)
{
	struct cfg *c = ctx;
	char *end;

	switch (val) {
	case 'p':
		c->port = strtol(arg, &end, 10);
		if (*end || c->port < 1 || c->port > 65535) {
			*why = "a port, 1..65535";
			return -1;
		}
		return 0;
	case 'n': snprintf(c->name, sizeof(c->name), "%s", arg); return 0;
	case 'v': c->verbose++; return 0;
	case 'i': c->insecure = 1; return 0;
	}
	return -1;
}

static char path[64];

static void put(const char *text)
{
	FILE *f = fopen(path, "w");

	fputs(text, f);
	fclose(f);
}

static int load(const char *text, struct cfg *c, const char *const *only, char *err)
{
	struct idn_conf conf = {
		.path = path, .opts = opts, .apply = apply, .ctx = c, .skip = skip, .only = only,
	};

	put(text);
	err[0] = 0;
	return idn_conf_load(&conf, err, 512);
}

static void test_good(void)
{
	struct cfg c = {};
	char err[512];

	if (!ASSERT_OK(load("# comment\n; other\n\nport = 8787\n  name =  idnd-a  \n"
			    "verbose = 2\ninsecure = yes\n", &c, NULL, err), err))
		return;
	ASSERT_EQ(c.port, 8787, "port");
	ASSERT_TRUE(!strcmp(c.name, "idnd-a"), "name trimmed");
	ASSERT_EQ(c.verbose, 2, "verbose = 2 applies the flag twice");
	ASSERT_EQ(c.insecure, 1, "insecure = yes");
	c = (struct cfg){};
	ASSERT_OK(load("insecure = no\nverbose = off\n", &c, NULL, err), "no/off");
	ASSERT_EQ(c.insecure + c.verbose, 0, "no and off leave flags unset");
}

static void test_errors(void)
{
	static const struct { const char *text; const char *want; } t[] = {
		{ "port = 1\nbogus = 2\n", ":2: unknown key \"bogus\"" },
		{ "config = /x\n", ":1: unknown key \"config\"" },
		{ "\n\nport = 99999\n", ":3: \"port\": a port, 1..65535" },
		{ "insecure = maybe\n", ":1: \"insecure\" takes yes or no, not \"maybe\"" },
		{ "port =\n", ":1: \"port\" needs a value" },
		{ "port 8787\n", ":1: expected \"key = value\"" },
		{ "[idnd]\nport = 1\n", ":2: section [idnd]" },
		{ "port = 1\n  name = x\n", NULL },	/* indented: a key like any other */
	};

	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		struct cfg c = {};
		char err[512];
		int rc = load(t[i].text, &c, NULL, err);

		if (!t[i].want) {
			ASSERT_OK(rc, t[i].text);
			continue;
		}
		if (!ASSERT_EQ(rc, -EINVAL, t[i].text))
			continue;
		ASSERT_TRUE(!strncmp(err, path, strlen(path)), "message starts with the file");
		if (!ASSERT_TRUE(strstr(err, t[i].want) != NULL, t[i].want))
			printf("# got: %s\n", err);
	}
}

static void test_missing(void)
{
	struct idn_conf conf = { .path = "/nonexistent/idn.conf", .opts = opts, .apply = apply };
	char err[512];

	ASSERT_EQ(idn_conf_load(&conf, err, sizeof(err)), -ENOENT, "missing file");
	ASSERT_TRUE(strstr(err, "/nonexistent/idn.conf") != NULL, "names the file");
}

static void test_only(void)
{
	static const char *const only[] = { "verbose", NULL };
	struct cfg c = { .port = 1 };
	char err[512];

	ASSERT_OK(load("port = 2\nverbose = 1\n", &c, only, err), "reload");
	ASSERT_EQ(c.port, 1, "a key outside the reload set is not applied");
	ASSERT_EQ(c.verbose, 1, "a reload key is");
	ASSERT_EQ(load("verbose = 1\nbogus = 1\n", &c, only, err), -EINVAL,
		  "an unknown key still fails a reload");
}

static int seen(void *ctx, const char *key, const char *value, const char **why)
{
	char *out = ctx;

	if (!strcmp(key, "bad")) {
		*why = "bad key";
		return -1;
	}
	strcat(out, key);
	strcat(out, "=");
	strcat(out, value);
	strcat(out, ";");
	return 0;
}

static void test_section(void)
{
	char out[256] = "", err[512];

	put("[default]\nmode = xdp\n[eth0]\nmode = tc\nxdpmode = native\n[router]\nrst = off\n");
	ASSERT_EQ(idn_conf_section(path, "eth0", seen, out, err, sizeof(err)), 2, "two keys");
	ASSERT_TRUE(!strcmp(out, "mode=tc;xdpmode=native;"), out);
	out[0] = 0;
	ASSERT_EQ(idn_conf_section(path, "eth9", seen, out, err, sizeof(err)), 0, "absent section");
	put("[router]\nrst = off\nbad = 1\n");
	ASSERT_EQ(idn_conf_section(path, "router", seen, out, err, sizeof(err)), -EINVAL, "bad");
	ASSERT_TRUE(strstr(err, ":3: [router] bad key") != NULL, err);
}

int main(void)
{
	int fd;

	snprintf(path, sizeof(path), "/tmp/unit_ctl_conf.XXXXXX");
	fd = mkstemp(path);
	if (fd < 0)
		return 1;
	close(fd);
	tap_plan(5);
	TAP_RUN(test_good);
	TAP_RUN(test_errors);
	TAP_RUN(test_missing);
	TAP_RUN(test_only);
	TAP_RUN(test_section);
	unlink(path);
	idn_conf_release();
	return tap_done();
}
