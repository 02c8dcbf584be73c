// SPDX-License-Identifier: GPL-2.0
/*
 * unit_lib_migrate.c - eq. 8's migration decision (ctl/lib/migrate.h, the
 * code idnd and the simulator share): every term worked by hand; move
 * against recompute at the boundary; tenant/session state pays the privacy
 * term and moves only where its scope may go; hardware-bound state never
 * moves whatever it is worth; value from reuse x tokens when the
 * descriptor has none, reuse clamped to a probability; pull on miss
 * (mig_pull_state()): the holder's descriptor cut to what the request
 * lacks, P_hit 1, weighed by the same eq. 8.
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

static void test_pull(void)
{
	/* the holder's descriptor: 20 blocks of 512 tokens, 640 MiB, 13.4 ms to move */
	struct mig_state h = { .scope = MIG_PUBLIC, .reuse = 0.3, .value_us = 100,
			       .tokens = 10240, .size = 640ULL << 20, .migration_us = 13420 };
	struct mig_dest d = { .net_us = 100, .kv_use = 0.5, .scope_ok = true };
	struct mig_state s;
	struct mig_eval e;

	/* j lacks 10 of the prompt's blocks: half the descriptor moves, P_hit 1 */
	ASSERT_EQ(mig_pull_state(&s, &h, 20, 10, 20.0), 10, "min(lack, blocks) counted");
	ASSERT_EQ(s.tokens, 5120, "half the tokens");
	ASSERT_EQ(s.size, 320ULL << 20, "half the bytes");
	ASSERT_EQ(s.migration_us, 6710, "half the transfer");
	ASSERT_TRUE(NEAR(s.reuse, 1), "the request is here: P_hit 1");
	ASSERT_EQ(mig_decide(&s, &d, &W, 17.25, &e), MIG_MOVE, "pulling beats recomputing");
	ASSERT_TRUE(NEAR(e.gain_us, 5120 * 20.0), "gain = tokens x j's prefill rate");
	ASSERT_TRUE(NEAR(e.storage_us, 50.0 * 320 * 0.5), "storage of what moves");
	ASSERT_TRUE(NEAR(e.net_us, 102400 - 6810 - 8000), "net");
	/* j lacks more than the holder has: the holder's blocks only */
	ASSERT_EQ(mig_pull_state(&s, &h, 20, 50, 0), 20, "capped at the descriptor");
	ASSERT_TRUE(NEAR(s.value_us, 10240 * MIG_PREFILL_US), "default prefill rate");
	/* a slow link: recompute */
	h.migration_us = 2000000;
	mig_pull_state(&s, &h, 20, 20, 20.0);
	ASSERT_EQ(mig_decide(&s, &d, &W, 17.25, NULL), MIG_RECOMPUTE, "slow link: recompute");
	/* ... unless the request waits there longer anyway: the transfer overlaps it */
	d.wait_us = 1950000;
	ASSERT_EQ(mig_decide(&s, &d, &W, 17.25, &e), MIG_MOVE, "queued at j: the wait hides it");
	ASSERT_TRUE(NEAR(e.transfer_us, 2000000 + 100 - 1950000), "transfer beyond the wait");
	d.wait_us = 3e6;
	mig_decide(&s, &d, &W, 17.25, &e);
	ASSERT_TRUE(NEAR(e.transfer_us, 0), "all hidden: no transfer cost, never negative");
	d.wait_us = 0;
	/* nothing lacking, or hardware-bound: never */
	h.migration_us = 13420;
	ASSERT_EQ(mig_pull_state(&s, &h, 20, 0, 20.0), 0, "nothing lacking");
	ASSERT_EQ(mig_decide(&s, &d, &W, 17.25, NULL), MIG_NEVER, "nothing to pull: never");
	h.scope = MIG_HARDWARE;
	h.migration_us = -1;
	mig_pull_state(&s, &h, 20, 20, 20.0);
	ASSERT_EQ(mig_decide(&s, &d, &W, 17.25, NULL), MIG_NEVER, "hardware-bound: never");
	/* tenant state pays the privacy term and needs its scope at j */
	h.scope = MIG_TENANT;
	h.migration_us = 13420;
	mig_pull_state(&s, &h, 20, 20, 20.0);
	d.scope_ok = false;
	ASSERT_EQ(mig_decide(&s, &d, &W, 17.25, NULL), MIG_NEVER, "tenant state out of scope");
}

int main(void)
{
	mig_weights_default(&W);
	tap_plan(0);
	TAP_RUN(test_terms);
	TAP_RUN(test_scopes);
	TAP_RUN(test_value_from_reuse);
	TAP_RUN(test_pull);
	return tap_done();
}
