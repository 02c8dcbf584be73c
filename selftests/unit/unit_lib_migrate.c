// SPDX-License-Identifier: GPL-2.0
/*
 * unit_lib_migrate.c - eq. 8's migration decision (ctl/lib/migrate.h, the
 * code idnd and the simulator share): every term worked by hand; move
 * against recompute at the boundary; tenant/session state pays the privacy
 * term and moves only where its scope may go; hardware-bound state never
 * moves whatever it is worth; value from reuse x tokens when the
 * descriptor has none, reuse clamped to a probability.
 */
#include <math.h>
#include <stdio.h>

#include "../../ctl/lib/migrate.h"
#include "../lib/tap.h"

#define NEAR(a, b) (fabs((a) - (b)) < 1e-6)

static struct mig_weights W;

static void test_terms(void)
{
	/* 4 MiB of public state worth 20 ms of prefill, 5 ms to move */
	struct mig_state s = { .scope = MIG_PUBLIC, .reuse = 0.8, .value_us = 20000,
			       .tokens = 1024, .size = 4 << 20, .migration_us = 5000 };
	struct mig_dest d = { .net_us = 200, .kv_use = 0.5, .scope_ok = true };
	struct mig_eval e;

	ASSERT_EQ(mig_decide(&s, &d, &W, 17.25, &e), MIG_MOVE, "worth moving");
	ASSERT_TRUE(NEAR(e.gain_us, 20000), "gain = value_us");
	ASSERT_TRUE(NEAR(e.transfer_us, 5200), "transfer = migration_us + path");
	ASSERT_TRUE(NEAR(e.storage_us, 50.0 * 4 * 0.5), "storage = 50 us/MiB x 4 MiB x kv use");
	ASSERT_TRUE(NEAR(e.privacy_us, 0), "public: no privacy cost");
	ASSERT_TRUE(NEAR(e.net_us, 20000 - 5200 - 100), "net benefit");
	/* the boundary: worth exactly what it costs -> recompute */
	s.value_us = 5300;
	ASSERT_EQ(mig_decide(&s, &d, &W, 17.25, &e), MIG_RECOMPUTE, "break-even: recompute");
	s.value_us = 5301;
	ASSERT_EQ(mig_decide(&s, &d, &W, 17.25, &e), MIG_MOVE, "1 us above: move");
}

static void test_scopes(void)
{
	struct mig_state s = { .scope = MIG_TENANT, .value_us = 2000, .size = 1 << 20,
			       .migration_us = 500 };
	struct mig_dest d = { .net_us = 0, .kv_use = 0, .scope_ok = true };
	struct mig_eval e;

	ASSERT_EQ(mig_decide(&s, &d, &W, 17.25, &e), MIG_MOVE, "tenant state moves in scope");
	ASSERT_TRUE(NEAR(e.privacy_us, 1000), "and pays the privacy term");
	s.value_us = 1400;
	ASSERT_EQ(mig_decide(&s, &d, &W, 17.25, NULL), MIG_RECOMPUTE,
		  "the privacy term tips it: recompute");
	s.scope = MIG_PUBLIC;
	ASSERT_EQ(mig_decide(&s, &d, &W, 17.25, NULL), MIG_MOVE, "the same as public: moves");
	s.scope = MIG_SESSION;
	s.value_us = 1e9;
	d.scope_ok = false;
	ASSERT_EQ(mig_decide(&s, &d, &W, 17.25, &e), MIG_NEVER,
		  "session state never leaves its scope, whatever its worth");
	s.scope = MIG_HARDWARE;
	s.migration_us = -1;
	d.scope_ok = true;
	ASSERT_EQ(mig_decide(&s, &d, &W, 17.25, &e), MIG_NEVER, "hardware-bound never moves");
	ASSERT_TRUE(NEAR(e.gain_us, 0) && NEAR(e.net_us, 0), "and no terms are computed");
}

static void test_value_from_reuse(void)
{
	/* no value_us: reuse x tokens x prefill per token; reuse > 1 is 1 */
	struct mig_state s = { .scope = MIG_PUBLIC, .reuse = 1.02, .tokens = 1000,
			       .size = 0, .migration_us = 0 };
	struct mig_dest d = { .scope_ok = true };
	struct mig_eval e;

	mig_decide(&s, &d, &W, 17.25, &e);
	ASSERT_TRUE(NEAR(e.gain_us, 17250), "gain = 1 x 1000 x 17.25");
	s.reuse = 0.5;
	mig_decide(&s, &d, &W, 17.25, &e);
	ASSERT_TRUE(NEAR(e.gain_us, 8625), "gain = 0.5 x 1000 x 17.25");
	ASSERT_EQ(mig_verdict_name(MIG_MOVE)[0], 'm', "names");
}

int main(void)
{
	mig_weights_default(&W);
	tap_plan(0);
	TAP_RUN(test_terms);
	TAP_RUN(test_scopes);
	TAP_RUN(test_value_from_reuse);
	return tap_done();
}
