// SPDX-License-Identifier: GPL-2.0
/*
 * unit_idnd_quota.c - idnd's per-principal limits (ctl/idnd/quota.c): the
 * write-rate token bucket (a burst passes, the next is refused with the
 * seconds until a token is back, the bucket refills at the rate and never
 * above the burst, principals are independent, rate 0 is off), the bounded
 * table (the least recently seen principal is evicted, the others keep
 * their state), owner counts (an ownerless object counts for no one) and
 * the /metrics families. quota.c is included; what it calls of the rest of
 * idnd is stubbed below.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tap.h"
#include "../../ctl/idnd/quota.c"

struct idnd D;
struct idnd_limits idnd_limits;
static struct d_policy pols[IDND_MAX_POLICIES];
static int warned;

const struct d_policy *idnd_policy_get(uint32_t id)
{
	return id < IDND_MAX_POLICIES && pols[id].used ? &pols[id] : NULL;
}

void idn_log(enum idn_log_level lvl, const char *fmt, ...)
{
	warned++;
}

static void limits(double rate, int burst)
{
	idnd_limits.principal_rate = rate;
	idnd_limits.principal_burst = burst;
	idnd_rate_config();
	memset(R.b, 0, sizeof(R.b));
	R.n = 0;
	R.limited = R.evicted = 0;
}

static void test_bucket(void)
{
	unsigned int retry = 0;
	char why[256] = "";
	int ok = 0;

	limits(2, 10);
	for (int i = 0; i < 10; i++)
		ok += !idnd_rate_charge("a", 100.0, &retry, why, sizeof(why));
	ASSERT_EQ(ok, 10, "a burst of 10 passes");
	ASSERT_EQ(idnd_rate_charge("a", 100.0, &retry, why, sizeof(why)), -EAGAIN, "the 11th");
	ASSERT_EQ(retry, 1, "a token back within 1 s at 2/s");
	ASSERT_TRUE(strstr(why, "principal a is over 2 changes/s (burst 10); retry after 1 s"),
		    why);
	ASSERT_OK(idnd_rate_charge("b", 100.0, &retry, why, sizeof(why)), "b: its own bucket");
	ASSERT_EQ(idnd_rate_charge("a", 100.4, &retry, why, sizeof(why)), -EAGAIN,
		  "0.4 s later: 0.8 token");
	ASSERT_OK(idnd_rate_charge("a", 100.6, &retry, why, sizeof(why)), "0.6 s: a token");
	ASSERT_EQ(idnd_rate_charge("a", 100.6, &retry, why, sizeof(why)), -EAGAIN, "and no more");
	ok = 0;
	for (int i = 0; i < 20; i++)
		ok += !idnd_rate_charge("a", 1000.0, &retry, why, sizeof(why));
	ASSERT_EQ(ok, 10, "an idle hour refills to the burst, not above");
	ASSERT_EQ(R.limited, 13, "refusals counted");
	limits(0.1, 1);
	ASSERT_OK(idnd_rate_charge("a", 0, &retry, why, sizeof(why)), "burst 1");
	ASSERT_EQ(idnd_rate_charge("a", 0, &retry, why, sizeof(why)), -EAGAIN, "then refused");
	ASSERT_EQ(retry, 10, "retry after 10 s at 0.1/s");
	limits(0, 1);
	ok = 0;
	for (int i = 0; i < 100; i++)
		ok += !idnd_rate_charge("a", 0, &retry, why, sizeof(why));
	ASSERT_EQ(ok, 100, "rate 0: no limit");
}

static void test_table(void)
{
	unsigned int retry;
	char who[32], why[256];

	limits(1, 1);
	for (int i = 0; i < IDND_RATE_TABLE; i++) {
		snprintf(who, sizeof(who), "p%d", i);
		idnd_rate_charge(who, 10.0 + i * 1e-6, &retry, why, sizeof(why));
	}
	ASSERT_EQ(R.n, IDND_RATE_TABLE, "the table is full");
	/* p0 is seen again: p1 is now the least recent */
	ASSERT_EQ(idnd_rate_charge("p0", 10.01, &retry, why, sizeof(why)), -EAGAIN, "p0 empty");
	ASSERT_OK(idnd_rate_charge("new", 10.01, &retry, why, sizeof(why)), "a new one passes");
	ASSERT_EQ(R.n, IDND_RATE_TABLE, "still full");
	ASSERT_EQ(R.evicted, 1, "one evicted");
	ASSERT_EQ(idnd_rate_charge("p0", 10.01, &retry, why, sizeof(why)), -EAGAIN,
		  "p0 kept its (empty) bucket");
	ASSERT_OK(idnd_rate_charge("p1", 10.01, &retry, why, sizeof(why)),
		  "p1 was evicted: back with a full bucket");
	ASSERT_EQ(R.evicted, 2, "evicting the next least recent");
}

static void test_owners(void)
{
	static struct d_cap caps[4];

	strcpy(caps[0].owner, "a");
	strcpy(caps[1].owner, "b");
	strcpy(caps[2].owner, "a");
	/* caps[3]: stored before owners were recorded */
	D.caps = caps;
	D.n_caps = 4;
	ASSERT_EQ(idnd_quota_caps_of("a"), 2, "a owns two");
	ASSERT_EQ(idnd_quota_caps_of("b"), 1, "b one");
	ASSERT_EQ(idnd_quota_caps_of(""), 0, "the ownerless one counts for no one");
	pols[3].used = true;
	strcpy(pols[3].owner, "b");
	pols[5].used = true;
	ASSERT_EQ(idnd_quota_policies_of("b"), 1, "b's policy class");
	ASSERT_EQ(idnd_quota_policies_of("a"), 0, "a has none");
	ASSERT_EQ(idnd_quota_policies_of(""), 0, "ownerless");
}

static void test_metrics(void)
{
	struct idn_prom p;
	char *out = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&out, &len);

	idnd_quota_refused_count(0);
	idnd_quota_refused_count(0);
	idnd_quota_refused_count(1);
	idn_prom_init(&p, f);
	idnd_quota_metrics(&p);
	ASSERT_OK(idn_prom_end(&p), p.why);
	fclose(f);
	ASSERT_TRUE(strstr(out, "# TYPE idnd_api_rate_limited_total counter\n"), out);
	ASSERT_TRUE(strstr(out, "idnd_principal_quota_refused_total{quota=\"principal-caps\"} 2\n"),
		    out);
	ASSERT_TRUE(strstr(out, "idnd_principal_quota_refused_total{quota=\"principal-policies\"} 1\n"),
		    out);
	ASSERT_TRUE(strstr(out, "# HELP idnd_api_rate_principals "), out);
	free(out);
}

int main(void)
{
	tap_plan(0);
	TAP_RUN(test_bucket);
	TAP_RUN(test_table);
	TAP_RUN(test_owners);
	TAP_RUN(test_metrics);
	return tap_done();
}
