// SPDX-License-Identifier: GPL-2.0
/*
 * unit_ctl_parse.c - libidn argument parsers and name tables: good input
 * gives the right value, bad input gives -EINVAL and a message, never an
 * exit. Table driven.
 */
#include <errno.h>
#include <stdint.h>
#include <arpa/inet.h>

#include "tap.h"
#include "libidn.h"

IDN_ASSERT_ABI();

static void test_cap(void)
{
	static const struct { const char *s; int err; __u32 cap; } t[] = {
		{ "7", 0, IDN_CAP(7, 0) },
		{ "7/3", 0, IDN_CAP(7, 3) },
		{ "0x10/0xff", 0, IDN_CAP(16, 255) },
		{ "0xffffff", 0, IDN_CAP(0xffffff, 0) },
		{ "1001/0", 0, IDN_CAP(1001, 0) },
		{ "0", -EINVAL, 0 },
		{ "0x1000000", -EINVAL, 0 },
		{ "7/256", -EINVAL, 0 },
		{ "7/", -EINVAL, 0 },
		{ "/3", -EINVAL, 0 },
		{ "abc", -EINVAL, 0 },
		{ "7x", -EINVAL, 0 },
		{ "-7", -EINVAL, 0 },
		{ "", -EINVAL, 0 },
	};

	for (size_t i = 0; i < ARRAY_SIZE(t); i++) {
		__u32 cap = 0xdeadbeef;
		int err;

		idn_errclear();
		err = idn_parse_cap(t[i].s, &cap);
		if (!ASSERT_EQ(err, t[i].err, t[i].s))
			continue;
		if (err)
			ASSERT_TRUE(strstr(idn_errmsg(), "invalid capability"), t[i].s);
		else
			ASSERT_EQ(cap, t[i].cap, t[i].s);
	}
}

static void test_u32(void)
{
	__u32 v;

	ASSERT_OK(idn_parse_u32("0", 0, 10, &v, "x"), "zero");
	ASSERT_EQ(v, 0, "zero value");
	ASSERT_OK(idn_parse_u32("0x1f", 0, 31, &v, "x"), "hex");
	ASSERT_EQ(v, 31, "hex value");
	ASSERT_OK(idn_parse_u32("4294967295", 0, UINT32_MAX, &v, "x"), "max");
	ASSERT_EQ(v, UINT32_MAX, "max value");
	ASSERT_EQ(idn_parse_u32("4294967296", 0, UINT32_MAX, &v, "x"), -EINVAL, "overflow");
	ASSERT_EQ(idn_parse_u32("11", 0, 10, &v, "tier"), -EINVAL, "range");
	ASSERT_TRUE(strstr(idn_errmsg(), "invalid tier \"11\" (expected 0..10)"), "range message");
	ASSERT_EQ(idn_parse_u32("1", 2, 10, &v, "x"), -EINVAL, "below min");
	ASSERT_EQ(idn_parse_u32("1 ", 0, 10, &v, "x"), -EINVAL, "trailing space");
	ASSERT_EQ(idn_parse_u32("+1", 0, 10, &v, "x"), -EINVAL, "sign");
	ASSERT_EQ(idn_parse_u32("0x", 0, 10, &v, "x"), -EINVAL, "bare 0x");
}

static void test_addr(void)
{
	struct idn_addr a;

	ASSERT_OK(idn_parse_addr("10.1.2.3", &a), "v4");
	ASSERT_EQ(a.family, IDN_AF_INET, "v4 family");
	ASSERT_EQ(a.addr[0], inet_addr("10.1.2.3"), "v4 network order");
	ASSERT_EQ(a.addr[1] | a.addr[2] | a.addr[3], 0, "v4 rest zero");
	ASSERT_OK(idn_parse_addr("fd00::1", &a), "v6");
	ASSERT_EQ(a.family, IDN_AF_INET6, "v6 family");
	ASSERT_EQ(((__u8 *)a.addr)[0], 0xfd, "v6 first byte");
	ASSERT_EQ(((__u8 *)a.addr)[15], 1, "v6 last byte");
	ASSERT_EQ(idn_parse_addr("10.1.2", &a), -EINVAL, "short v4");
	ASSERT_EQ(idn_parse_addr("10.1.2.3/24", &a), -EINVAL, "prefix is not an address");
	ASSERT_EQ(idn_parse_addr("host", &a), -EINVAL, "name");
}

static void test_prefix6(void)
{
	__u8 p[IDN_ADDR6_PREFIX_LEN];
	static const __u8 want[] = { 0x20, 0x01, 0x0d, 0xb8, 0x00, 0x01 };

	ASSERT_OK(idn_parse_prefix6("2001:db8:1::/48", p), "good");
	ASSERT_MEM(p, want, sizeof(want), "bytes");
	ASSERT_EQ(idn_parse_prefix6("2001:db8:1::/64", p), -EINVAL, "not /48");
	ASSERT_EQ(idn_parse_prefix6("2001:db8:1::1/48", p), -EINVAL, "host bits");
	ASSERT_EQ(idn_parse_prefix6("2001:db8:1::", p), -EINVAL, "no length");
	ASSERT_EQ(idn_parse_prefix6("10.0.0.0/48", p), -EINVAL, "v4");
}

static int pol(const char *line, __u8 *p)
{
	char buf[256], *argv[16];
	int argc = 0;

	snprintf(buf, sizeof(buf), "%s", line);
	for (char *t = strtok(buf, " "); t && argc < 16; t = strtok(NULL, " "))
		argv[argc++] = t;
	return idn_parse_policy(argc, argv, p);
}

static void test_policy(void)
{
	__u8 p = 0;

	ASSERT_EQ(pol("trust 3", &p), 2, "trust consumed");
	ASSERT_EQ(p, IDN_POLICY(3, 0, 0), "trust value");
	ASSERT_EQ(pol("privacy confidential scope home trust 7 budget 5", &p), 6, "stops at budget");
	ASSERT_EQ(p, IDN_POLICY(7, IDN_PRIV_CONFIDENTIAL, IDN_SCOPE_HOME), "all three");
	ASSERT_EQ(pol("privacy hw-bound", &p), 2, "hw-bound");
	ASSERT_EQ(IDN_POL_PRIVACY(p), IDN_PRIV_HW_BOUND, "hw-bound value");
	ASSERT_EQ(pol("scope plan", &p), 2, "plan scope");
	ASSERT_EQ(pol("0x2b", &p), 1, "raw number");
	ASSERT_EQ(p, 0x2b, "raw value");
	ASSERT_EQ(pol("0x80", &p), -EINVAL, "reserved bit");
	ASSERT_EQ(pol("0x60", &p), -EINVAL, "reserved scope");
	ASSERT_EQ(pol("scope reserved", &p), -EINVAL, "reserved scope keyword");
	ASSERT_EQ(pol("trust 8", &p), -EINVAL, "trust range");
	ASSERT_EQ(pol("trust", &p), -EINVAL, "trust no value");
	ASSERT_EQ(pol("trust 1 trust 2", &p), -EINVAL, "trust twice");
	ASSERT_EQ(pol("privacy secret", &p), -EINVAL, "bad privacy");
	ASSERT_TRUE(strstr(idn_errmsg(), "public|tenant|confidential|hw-bound"), "choices listed");
	ASSERT_EQ(pol("tru 3", &p), -EINVAL, "no prefix matching");
	ASSERT_EQ(pol("scope hom", &p), -EINVAL, "no prefix matching of values");
}

static void test_weights_domains(void)
{
	__u16 w[IDN_W_MAX];
	__u32 m;

	ASSERT_OK(idn_parse_weights("1,0.5,2,0,1.25,255", w), "weights");
	ASSERT_EQ(w[0], 256, "1.0");
	ASSERT_EQ(w[1], 128, "0.5");
	ASSERT_EQ(w[2], 512, "2");
	ASSERT_EQ(w[3], 0, "0");
	ASSERT_EQ(w[4], 320, "1.25");
	ASSERT_EQ(w[5], 65280, "255");
	ASSERT_EQ(idn_parse_weights("1,1,1,1,1", w), -EINVAL, "five");
	ASSERT_EQ(idn_parse_weights("1,1,1,1,1,1,1", w), -EINVAL, "seven");
	ASSERT_EQ(idn_parse_weights("1,1,1,1,1,256", w), -EINVAL, "too big");
	ASSERT_EQ(idn_parse_weights("1,1,1,1,1,-1", w), -EINVAL, "negative");
	ASSERT_EQ(idn_parse_weights("1,1,1,1,1,x", w), -EINVAL, "junk");

	ASSERT_OK(idn_parse_domains("0,2,5-7,31", &m), "domains");
	ASSERT_EQ(m, 0x800000e5U, "mask");
	ASSERT_EQ(idn_parse_domains("32", &m), -EINVAL, "32");
	ASSERT_EQ(idn_parse_domains("3-1", &m), -EINVAL, "reversed");
	ASSERT_EQ(idn_parse_domains("1,", &m), -EINVAL, "trailing comma");
	ASSERT_EQ(idn_parse_domains("", &m), -EINVAL, "empty");
}

static void test_names(void)
{
	unsigned int v;
	char b[64];

	/* every enum value has a name and parses back to itself */
	for (unsigned int i = 0; i < IDN_V_MAX; i++) {
		ASSERT_OK(idn_name_parse(&idn_verdict_names, idn_name(&idn_verdict_names, i), &v),
			  "verdict round trip");
		ASSERT_EQ(v, i, "verdict value");
	}
	for (unsigned int i = 0; i < IDN_DROP_MAX; i++) {
		ASSERT_OK(idn_name_parse(&idn_drop_names, idn_name(&idn_drop_names, i), &v),
			  "drop round trip");
		ASSERT_EQ(v, i, "drop value");
	}
	for (unsigned int i = 0; i < IDN_REJ_MAX; i++) {
		ASSERT_OK(idn_name_parse(&idn_reject_names, idn_name(&idn_reject_names, i), &v),
			  "reject round trip");
		ASSERT_EQ(v, i, "reject value");
	}
	ASSERT_TRUE(!strcmp(idn_name(&idn_verdict_names, IDN_V_MISS_REJECT), "miss-reject"), "name");
	ASSERT_TRUE(!strcmp(idn_name(&idn_verdict_names, 200), "unknown-200"), "unknown value");
	ASSERT_EQ(idn_name_parse(&idn_health_names, "dow", &v), -EINVAL, "no prefix");
	ASSERT_EQ(idn_parse_onoff("yes", &(bool){0}, "x"), -EINVAL, "on/off only");
	ASSERT_TRUE(!strcmp(idn_fmt_cap(IDN_CAP(1001, 2), b, sizeof(b)), "1001/2"), "fmt cap");
	ASSERT_TRUE(!strcmp(idn_fmt_domains(0x800000e5U, b, sizeof(b)), "0,2,5-7,31"), "fmt domains");
	ASSERT_TRUE(!strcmp(idn_fmt_policy(IDN_POLICY(2, 1, 2), b, sizeof(b)),
			    "trust 2 privacy tenant scope plan"), "fmt policy");
}

int main(void)
{
	tap_plan(0);
	TAP_RUN(test_cap);
	TAP_RUN(test_u32);
	TAP_RUN(test_addr);
	TAP_RUN(test_prefix6);
	TAP_RUN(test_policy);
	TAP_RUN(test_weights_domains);
	TAP_RUN(test_names);
	return tap_done();
}
