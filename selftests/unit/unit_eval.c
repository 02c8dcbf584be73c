// SPDX-License-Identifier: GPL-2.0
/*
 * unit_eval.c - make eval's simulator (tools/eval/): the engine model's
 * iteration times against hand-computed ones (A + B*prefill + C*decode +
 * D*context + E*attention, chunked at 8192 tokens), the load scaling of
 * docs/benchmarks.md, baseline rules on tiny hand-made traces (round
 * robin, consistent hash, SGLang cache_aware's prefix rule), IDN's
 * selection through idnd's plans and the agents' telemetry, the bounds on
 * state mobility (never a block of the request's own), the trace
 * parser's errors (file:line: why), and what the testbed mode relies on
 * (stamps spread, engines sped up, the prompt's size class).
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent.h"
#include "eval.h"
#include "tap.h"

#define NEAR(a, b, tol, tag) ASSERT_TRUE(fabs((a) - (b)) <= (tol), tag)

static const double A = 5752.7, B = 17.251, C = 5.999, D = 0.0391, E = 0.000874;

static void test_engine_model(void)
{
	struct eng_params p;
	struct engine e;
	struct eng_req *r;
	double d;
	int err;

	ev_eng_params(&p);
	if (!ASSERT_EQ(engine_init(&e, &p), 0, "engine"))
		return;
	/* 1000-token prompt, 3 output tokens, nothing cached */
	r = engine_submit(&e, 1000, 3, NULL, 0, &err);
	if (!ASSERT_TRUE(r != NULL, "submit"))
		return;
	d = engine_plan(&e);
	NEAR(d, A + B * 1000 + E * 1000 * 500, 1e-6, "prefill iteration");
	engine_apply(&e, d);
	ASSERT_EQ(r->generated, 1, "first token with the prefill");
	d = engine_plan(&e);
	NEAR(d, A + C + D * 1001, 1e-6, "decode iteration, context 1001");
	engine_apply(&e, d);
	d = engine_plan(&e);
	NEAR(d, A + C + D * 1002, 1e-6, "decode iteration, context 1002");
	engine_apply(&e, d);
	ASSERT_EQ(r->state, ENG_DONE, "done after 3 tokens");
	engine_put(&e, r);

	/* 10000 tokens: chunks of 8192 (attends to 0 before) and 1808 (8192 before) */
	r = engine_submit(&e, 10000, 2, NULL, 0, &err);
	d = engine_plan(&e);
	NEAR(d, A + B * 8192 + E * 8192 * 4096.0, 1e-6, "first chunk");
	engine_apply(&e, d);
	d = engine_plan(&e);
	NEAR(d, A + B * 1808 + E * 1808 * (8192 + 904.0), 1e-6, "second chunk");
	engine_apply(&e, d);
	d = engine_plan(&e);
	NEAR(d, A + C + D * 10001, 1e-6, "its decode");
	engine_apply(&e, d);
	engine_put(&e, r);
	engine_free(&e);

	/* the agent's own defaults keep D and E off */
	eng_params_defaults(&p);
	NEAR(eng_iter_us(&p, 100, 0, 0), 5750 + 17.25 * 100, 1e-9, "agent default unchanged");
}

static int parse(const char *text, struct ev_trace *t, char *err, size_t len)
{
	return ev_trace_parse(text, "t", t, err, len);
}

static void test_load_scaling(void)
{
	/* two requests 100 s apart: 1000 in / 11 out and 3000 in / 1 out */
	const char *txt = "{\"timestamp\":0,\"input_length\":1000,\"output_length\":11,"
			  "\"hash_ids\":[1,2]}\n"
			  "{\"timestamp\":100000,\"input_length\":3000,\"output_length\":1,"
			  "\"hash_ids\":[1,2,3,4,5,6]}\n";
	struct ev_trace t;
	char err[256];
	double batch, w;

	if (!ASSERT_EQ(parse(txt, &t, err, sizeof(err)), 0, "parse"))
		return;
	/* KV 29205 blocks of 16 / mean blocks per request (1011 -> 64, 3001 -> 188) */
	batch = 29205.0 / ((64 + 188) / 2.0);
	w = B * 1000 + E * 1000 * 1000 / 2 + A + 11 * (C + D * (1000 + 5.5) + A / batch) +
	    B * 3000 + E * 3000 * 3000 / 2 + A + 1 * (C + D * (3000 + 0.5) + A / batch);
	NEAR(ev_offered_us(&t), w, 1e-6 * w, "offered work by hand");
	NEAR(ev_scale_for(&t, 8, 0.7), 0.7 * 8 * 100e6 / w, 1e-6, "scale = rho n span / work");
	ev_trace_free(&t);
}

static void one_run(const char *txt, enum ev_policy p, int n, struct ev_res *res)
{
	struct ev_trace t;
	struct ev_cfg c = { .policy = p, .nodes = n, .scale = 1, .tele_ms = 100, .seed = 1,
			    .keep_ttft = true };
	char err[256] = "";

	memset(res, 0, sizeof(*res));
	if (!ASSERT_EQ(parse(txt, &t, err, sizeof(err)), 0, "parse"))
		return;
	if (!ASSERT_EQ(ev_run(&t, &c, res, err, sizeof(err)), 0, err))
		memset(res, 0, sizeof(*res));
	ev_trace_free(&t);
}

static void test_round_robin_and_hash(void)
{
	char txt[4096];
	size_t o = 0;
	struct ev_res r;
	int cnt[4] = { 0 };

	/* 8 requests, 4 sessions (first two blocks), one second apart */
	for (int i = 0; i < 8; i++)
		o += snprintf(txt + o, sizeof(txt) - o,
			      "{\"timestamp\":%d,\"input_length\":1024,\"output_length\":4,"
			      "\"hash_ids\":[%d,%d]}\n", i * 1000, i % 4 * 10, i % 4 * 10 + 1);
	one_run(txt, EV_RR, 4, &r);
	if (!ASSERT_TRUE(r.node != NULL, "nodes kept"))
		return;
	for (int i = 0; i < 8; i++)
		ASSERT_EQ(r.node[i], i % 4, "round robin is cyclic");
	ev_res_free(&r);
	one_run(txt, EV_CHASH, 4, &r);
	if (!ASSERT_TRUE(r.node != NULL, "nodes kept"))
		return;
	for (int i = 0; i < 4; i++) {
		ASSERT_EQ(r.node[i], r.node[i + 4], "a session stays on its ring point");
		cnt[r.node[i]]++;
	}
	ASSERT_EQ(r.served, 8, "all served");
	ev_res_free(&r);
}

static void test_sglang_prefix(void)
{
	char txt[4096];
	size_t o = 0;
	struct ev_res r;

	/*
	 * Request 0 (4 blocks) goes to the smallest tree (node 0 of equal
	 * ones); request 1 shares 3 of its 4 blocks (75 % > 0.3): same node;
	 * request 2 shares nothing: the smallest tree, another node.
	 */
	o += snprintf(txt + o, sizeof(txt) - o,
		      "{\"timestamp\":0,\"input_length\":2048,\"output_length\":2,"
		      "\"hash_ids\":[1,2,3,4]}\n");
	o += snprintf(txt + o, sizeof(txt) - o,
		      "{\"timestamp\":1000,\"input_length\":2048,\"output_length\":2,"
		      "\"hash_ids\":[1,2,3,9]}\n");
	o += snprintf(txt + o, sizeof(txt) - o,
		      "{\"timestamp\":2000,\"input_length\":2048,\"output_length\":2,"
		      "\"hash_ids\":[7,8,5,6]}\n");
	one_run(txt, EV_SGLANG, 4, &r);
	if (!ASSERT_TRUE(r.node != NULL, "nodes kept"))
		return;
	ASSERT_EQ(r.node[1], r.node[0], "prefix match above the threshold");
	ASSERT_TRUE(r.node[2] != r.node[0], "no match: the smallest tree");
	ASSERT_TRUE(r.hit_pct > 10, "the shared prefix hit in the engine");
	ev_res_free(&r);
}

static void test_idn_runs(void)
{
	char txt[8192];
	size_t o = 0;
	struct ev_res r;

	for (int i = 0; i < 40; i++)
		o += snprintf(txt + o, sizeof(txt) - o,
			      "{\"timestamp\":%d,\"input_length\":%d,\"output_length\":8,"
			      "\"hash_ids\":[%d,%d]}\n", i * 50, 600 + 10 * i, i % 5, 100 + i);
	one_run(txt, EV_IDN, 4, &r);
	ASSERT_EQ(r.served + r.shed, 40, "every request decided");
	ASSERT_TRUE(r.served > 0 && r.p90 > 0, "served with a TTFT");
	ev_res_free(&r);
}

void idnd_aff_seed_counts(uint64_t *seeded, uint64_t *kept);	/* ctl/idnd/model.c */

/*
 * idnd's affinity seeds in the simulator: the agents' state summaries name
 * the token whose prefix they hold and reuse (state_tokens()), idnd seeds
 * the router's table from them (idnd_aff_seeds()) each heartbeat round;
 * the router already has that token from its own decisions: kept.
 */
static void test_idn_seeds(void)
{
	char txt[8192];
	size_t o = 0;
	struct ev_res r;
	uint64_t w0, k0, w1, k1;

	for (int i = 0; i < 30; i++)	/* one session, its prefix reused: 100 ms apart */
		o += snprintf(txt + o, sizeof(txt) - o,
			      "{\"timestamp\":%d,\"input_length\":1600,\"output_length\":4,"
			      "\"hash_ids\":[1,2,3,%d]}\n", i * 100, 10 + i);
	idnd_aff_seed_counts(&w0, &k0);
	one_run(txt, EV_IDN, 4, &r);
	idnd_aff_seed_counts(&w1, &k1);
	ASSERT_EQ(r.served, 30, "all served");
	ASSERT_TRUE(r.hit_pct > 50, "the prefix is reused");
	ASSERT_TRUE(k1 - k0 >= 2, "heartbeat rounds found the popular root's token");
	ASSERT_EQ(w1 - w0, 0, "and kept the router's own entry");
	ev_res_free(&r);
}

/*
 * idnd --migrate in the simulator (ev_cfg.migrate): on the conversation
 * slice at rho 1.3 nodes get busy; idnd's scan takes decisions by eq. 8
 * (mig_decide()). Over a fast link some moves pay: blocks are committed at
 * destinations; over a 1 Mbit/s link none does (recompute); without
 * --migrate nothing is decided. Every request is still decided once.
 * Pull on miss (agents --kv-pull): turns steered away from their state's
 * node ask idnd; over the fast link pulls are ordered and the prefix hit
 * rate rises above the run without; over the slow link nothing is pulled.
 */
static void test_idn_migrate(void)
{
	static const char *const paths[] = {
		"selftests/data/mooncake_conversation_2000.jsonl.gz",
		"../../selftests/data/mooncake_conversation_2000.jsonl.gz",
	};
	struct ev_trace t = { 0 };
	struct ev_res r[3];
	char err[256] = "";
	int ok = -1;

	for (size_t i = 0; i < 2 && ok; i++)
		ok = ev_trace_load(paths[i], &t, err, sizeof(err));
	if (!ASSERT_EQ(ok, 0, "the conversation slice"))
		return;
	for (int k = 0; k < 3; k++) {
		struct ev_cfg c = { .policy = EV_IDN, .nodes = 4, .seed = 1,
				    .scale = ev_scale_for(&t, 4, 1.3), .migrate = k < 2,
				    .kv_link_gbps = k == 0 ? 100000 : k == 1 ? 0.001 : 0 };

		memset(&r[k], 0, sizeof(r[k]));
		if (!ASSERT_EQ(ev_run(&t, &c, &r[k], err, sizeof(err)), 0, err))
			goto out;
		ASSERT_EQ(r[k].served + r[k].shed, t.n, "every request decided");
	}
	printf("# fast link: %zu decided, %zu moved (%llu blocks), %zu recompute, %zu failed\n",
	       r[0].mig.decided, r[0].mig.moved, (unsigned long long)r[0].mig.blocks,
	       r[0].mig.recompute, r[0].mig.failed);
	ASSERT_TRUE(r[0].mig.decided > 0, "busy nodes: decisions taken");
	ASSERT_TRUE(r[0].mig.moved > 0 && r[0].mig.blocks > 0, "fast link: moves committed");
	ASSERT_TRUE(r[0].mig.moved + r[0].mig.recompute + r[0].mig.failed <= r[0].mig.decided,
		    "no outcome without a decision");
	ASSERT_TRUE(r[1].mig.decided > 0, "slow link: decisions taken");
	ASSERT_EQ(r[1].mig.moved, 0, "slow link: moving never pays");
	ASSERT_EQ(r[1].mig.recompute, r[1].mig.decided, "slow link: all recompute");
	ASSERT_EQ(r[2].mig.decided, 0, "without --migrate: no decisions");
	printf("# pull on miss: fast link %zu asked, %zu pulled, %zu late; hit %.2f %% "
	       "(without: %.2f %%); slow link %zu asked, %zu pulled\n", r[0].mig.pull_asked,
	       r[0].mig.pulls, r[0].mig.pull_late, r[0].hit_pct, r[2].hit_pct,
	       r[1].mig.pull_asked, r[1].mig.pulls);
	ASSERT_TRUE(r[0].mig.pulls > 0 && r[0].mig.pulls <= r[0].mig.pull_asked,
		    "fast link: pulls ordered, each asked for");
	ASSERT_TRUE(r[0].hit_pct > r[2].hit_pct, "pulled blocks hit: prefix hit rate up");
	ASSERT_TRUE(r[1].mig.pull_asked > 0 && r[1].mig.pulls == 0,
		    "slow link: asked, never pulled");
	ASSERT_TRUE(r[2].mig.pull_asked == 0, "without --migrate: nobody asks");
out:
	for (int k = 0; k < 3; k++)
		ev_res_free(&r[k]);
	ev_trace_free(&t);
}

/*
 * The bounds on state mobility (ev_cfg.oracle, make eval's *_oracle_*
 * figures). Every request carrying blocks no earlier request carried: no
 * oracle gives a hit (a request never takes its own blocks). On the
 * conversation slice at rho 1.3 on 4 nodes: every node's cache open to
 * every request hits at least as much as the product's run, every prefix
 * ever seen at least as much as that, and both at least as much with the
 * router's J knowing it; every request is decided. An oracle with
 * --migrate, or for another policy, is refused.
 */
static void test_idn_oracles(void)
{
	static const char *const paths[] = {
		"selftests/data/mooncake_conversation_2000.jsonl.gz",
		"../../selftests/data/mooncake_conversation_2000.jsonl.gz",
	};
	struct ev_trace t = { 0 }, u = { 0 };
	struct ev_res r[5], x;
	char err[256] = "", txt[4096];
	size_t o = 0;
	int ok = -1;

	memset(r, 0, sizeof(r));
	memset(&x, 0, sizeof(x));
	for (int i = 0; i < 30; i++)	/* unique blocks, the nodes busy enough to queue */
		o += snprintf(txt + o, sizeof(txt) - o,
			      "{\"timestamp\":%d,\"input_length\":4000,\"output_length\":4,"
			      "\"hash_ids\":[%d,%d,%d]}\n", i * 20, 3 * i + 1, 3 * i + 2,
			      3 * i + 3);
	if (!ASSERT_EQ(parse(txt, &u, err, sizeof(err)), 0, "parse"))
		return;
	for (int k = 0; k < 2; k++) {
		struct ev_cfg c = { .policy = EV_IDN, .nodes = 2, .scale = 1, .seed = 1,
				    .oracle = k ? EV_ORACLE_REUSE : EV_ORACLE_CLUSTER };

		if (!ASSERT_EQ(ev_run(&u, &c, &x, err, sizeof(err)), 0, err))
			goto out;
		ASSERT_EQ(x.served, 30, "unique blocks: all served");
		ASSERT_TRUE(x.hit_pct == 0, "unique blocks: no oracle hit (never its own)");
		ev_res_free(&x);
	}
	for (size_t i = 0; i < 2 && ok; i++)
		ok = ev_trace_load(paths[i], &t, err, sizeof(err));
	if (!ASSERT_EQ(ok, 0, "the conversation slice"))
		goto out;
	for (int k = 0; k < 5; k++) {
		struct ev_cfg c = { .policy = EV_IDN, .nodes = 4, .seed = 1,
				    .scale = ev_scale_for(&t, 4, 1.3),
				    .oracle = k == 0 ? EV_ORACLE_NONE : k < 3 ? EV_ORACLE_CLUSTER :
					      EV_ORACLE_REUSE,
				    .oracle_blind = k == 2 || k == 4 };

		if (!ASSERT_EQ(ev_run(&t, &c, &r[k], err, sizeof(err)), 0, err))
			goto out;
		ASSERT_EQ(r[k].served + r[k].shed, t.n, "every request decided");
	}
	printf("# hit %%: product %.2f; every node's cache %.2f (J knowing it %.2f); "
	       "every prefix seen %.2f (%.2f); p90 s %.3f / %.3f (%.3f) / %.3f (%.3f)\n",
	       r[0].hit_pct, r[1].hit_pct, r[2].hit_pct, r[3].hit_pct, r[4].hit_pct, r[0].p90,
	       r[1].p90, r[2].p90, r[3].p90, r[4].p90);
	ASSERT_TRUE(r[1].hit_pct >= r[0].hit_pct, "every node's cache: at least the product's hits");
	ASSERT_TRUE(r[3].hit_pct >= r[1].hit_pct - 0.5,
		    "every prefix seen: at least every node's cache's hits");
	ASSERT_TRUE(r[4].hit_pct >= r[2].hit_pct - 0.5, "... with J knowing it too");
	ASSERT_TRUE(r[3].hit_pct > r[0].hit_pct, "every prefix seen: more hits than the product");
	{
		struct ev_cfg c = { .policy = EV_IDN, .nodes = 4, .seed = 1, .scale = 1,
				    .oracle = EV_ORACLE_CLUSTER, .migrate = true };

		ASSERT_EQ(ev_run(&t, &c, &x, err, sizeof(err)), -EINVAL, "oracle + migrate refused");
		c.migrate = false;
		c.policy = EV_RR;
		ASSERT_EQ(ev_run(&t, &c, &x, err, sizeof(err)), -EINVAL, "oracle: IDN only");
	}
out:
	for (int k = 0; k < 5; k++)
		ev_res_free(&r[k]);
	ev_res_free(&x);
	ev_trace_free(&t);
	ev_trace_free(&u);
}

/*
 * P/D in the simulator: the conversation slice on 2 prefill + 2 decode
 * nodes. Every request is decided; requests are served through both
 * stages (the decode nodes work, TPOT is measured); the prefill nodes'
 * and the decode nodes' shares are both real; a split without a decode
 * node is refused.
 */
static void test_idn_pd(void)
{
	static const char *const paths[] = {
		"selftests/data/mooncake_conversation_2000.jsonl.gz",
		"../../selftests/data/mooncake_conversation_2000.jsonl.gz",
	};
	struct ev_trace t = { 0 };
	struct ev_res r;
	char err[256] = "";
	int ok = -1;
	struct ev_cfg c = { .policy = EV_IDN, .nodes = 4, .seed = 1, .pd = true,
			    .n_prefill = 2 };

	for (size_t i = 0; i < 2 && ok; i++)
		ok = ev_trace_load(paths[i], &t, err, sizeof(err));
	if (!ASSERT_EQ(ok, 0, "the conversation slice"))
		return;
	c.scale = ev_scale_for(&t, 4, 0.5);
	memset(&r, 0, sizeof(r));
	if (ASSERT_EQ(ev_run(&t, &c, &r, err, sizeof(err)), 0, err)) {
		printf("# P/D: served %zu shed %zu p90 %.3f s tpot %.1f ms busy %.0f %.0f / %.0f %.0f\n",
		       r.served, r.shed, r.p90, r.tpot_mean * 1000, r.busy_pct[0], r.busy_pct[1],
		       r.busy_pct[2], r.busy_pct[3]);
		ASSERT_EQ(r.served + r.shed, t.n, "every request decided");
		ASSERT_TRUE(r.served > t.n * 9 / 10, "served through both stages");
		ASSERT_TRUE(r.tpot_mean > 0 && r.p90 > 0, "TTFT and TPOT measured");
		ASSERT_TRUE(r.busy_pct[0] + r.busy_pct[1] > 0 && r.busy_pct[2] + r.busy_pct[3] > 0,
			    "prefill and decode nodes both worked");
	}
	ev_res_free(&r);
	c.n_prefill = 4;
	ASSERT_EQ(ev_run(&t, &c, &r, err, sizeof(err)), -EINVAL, "no decode node: refused");
	ev_res_free(&r);
	ev_trace_free(&t);
}

/* the testbed mode's support: stamps spread, engines sped up, size class */
static void test_testbed_support(void)
{
	const char *txt = "{\"timestamp\":0,\"input_length\":900,\"output_length\":5,\"hash_ids\":[1,2]}\n"
			  "{\"timestamp\":0,\"input_length\":3000,\"output_length\":9,\"hash_ids\":[3,4,5,6,7,8]}\n"
			  "{\"timestamp\":0,\"input_length\":700,\"output_length\":3,\"hash_ids\":[1,9]}\n"
			  "{\"timestamp\":300,\"input_length\":5000,\"output_length\":7,\"hash_ids\":[1,2,3,4,5,6,7,8,9,10]}\n"
			  "{\"timestamp\":300,\"input_length\":600,\"output_length\":2,\"hash_ids\":[11,12]}\n";
	struct ev_cfg c = { .policy = EV_RR, .nodes = 2, .scale = 1, .tele_ms = 100, .seed = 1,
			    .keep_ttft = true };
	struct ev_res r1, r2;
	struct ev_trace t;
	char err[256] = "";

	if (!ASSERT_EQ(parse(txt, &t, err, sizeof(err)), 0, "parse"))
		return;
	ev_trace_spread(&t);
	/* 3 at 0 ms over the 300 ms gap; the last 2 over the gap before them */
	NEAR(t.r[0].t_us, 0, 1e-9, "spread: first of a batch keeps its stamp");
	NEAR(t.r[1].t_us, 100e3, 1e-6, "spread: 1/3 of the gap");
	NEAR(t.r[2].t_us, 200e3, 1e-6, "spread: 2/3 of the gap");
	NEAR(t.r[3].t_us, 300e3, 1e-6, "spread: next batch at its stamp");
	NEAR(t.r[4].t_us, 450e3, 1e-6, "spread: last batch over the gap before");
	NEAR(t.span_us, 450e3, 1e-6, "spread: span follows");
	/* engines X times faster, arrivals / X: every TTFT / X */
	memset(&r1, 0, sizeof(r1));
	memset(&r2, 0, sizeof(r2));
	ASSERT_EQ(ev_run(&t, &c, &r1, err, sizeof(err)), 0, "speed 1");
	c.speed = 2.5;
	ASSERT_EQ(ev_run(&t, &c, &r2, err, sizeof(err)), 0, "speed 2.5");
	if (ASSERT_TRUE(r1.ttft_us && r2.ttft_us && r1.served == 5 && r2.served == 5, "served"))
		for (int i = 0; i < 5; i++)
			NEAR(r2.ttft_us[i], r1.ttft_us[i] / 2.5, 1e-6 * r1.ttft_us[i],
			     "speed 2.5: TTFT / 2.5");
	ASSERT_TRUE(r1.ttft_us && r1.ttft_us[1] > A + B * 3000, "a 3000-token prefill's TTFT");
	ev_res_free(&r1);
	ev_res_free(&r2);
	ev_trace_free(&t);
	/* the prompt size class: the nearest 256 << c */
	ASSERT_EQ(ev_size_class(100), 0, "size class 100");
	ASSERT_EQ(ev_size_class(1024), 2, "size class 1024");
	ASSERT_EQ(ev_size_class(1600), 3, "size class 1600");
	ASSERT_EQ(ev_size_class(14000), 6, "size class 14000");
}

static void expect_err(const char *txt, const char *want, const char *tag)
{
	struct ev_trace t;
	char err[256] = "";
	int ret = parse(txt, &t, err, sizeof(err));

	if (!ASSERT_EQ(ret, -EINVAL, tag))
		return;
	if (!ASSERT_TRUE(strstr(err, want) != NULL, tag))
		printf("# got \"%s\", want \"%s\"\n", err, want);
}

static void test_parser_errors(void)
{
	struct ev_trace t;
	char err[256];

	expect_err("{\"timestamp\":0,\"input_length\":5,\"output_length\":1}\nnot json\n",
		   "t:2: not a JSON object", "garbage line");
	expect_err("{\"timestamp\":0,\"input_length\":5,\"output_length\":1}\n\n"
		   "{\"timestamp\":1,\"output_length\":1}\n",
		   "t:3: missing \"input_length\"", "missing field, blank line counted");
	expect_err("{\"timestamp\":0,\"input_length\":-4,\"output_length\":1}\n",
		   "t:1: \"input_length\" -4 out of range", "negative length");
	expect_err("{\"timestamp\":0,\"input_length\":600,\"output_length\":1,"
		   "\"hash_ids\":[1,2,3]}\n", "t:1: 3 hash_ids for 600 tokens", "too many ids");
	expect_err("{\"timestamp\":0,\"input_length\":600,\"output_length\":1,"
		   "\"hash_ids\":[1,\"x\"]}\n", "t:1: hash_ids[1] is not an integer", "bad id");
	expect_err("TIMESTAMP,ContextTokens,GeneratedTokens\n"
		   "2023-11-16 18:17:03.97,100,5\n2023-11-16 18:17:04.1,abc,5\n",
		   "t:3: ContextTokens \"abc\" is not an integer", "csv field");
	expect_err("TIMESTAMP,ContextTokens,GeneratedTokens\n2023-11-16 18:17:03.97,100\n",
		   "t:2: 2 fields, the header has 3", "csv short row");
	expect_err("TIMESTAMP,ContextTokens,GeneratedTokens\nyesterday,100,5\n",
		   "t:2: TIMESTAMP \"yesterday\"", "csv time");
	expect_err("hello\n", "t:1: neither a Mooncake JSON line nor an Azure CSV header",
		   "unknown format");
	expect_err("", "t: no requests", "empty");
	/* Azure: wall clock to seconds from the first request; unsorted input is sorted */
	if (ASSERT_EQ(parse("TIMESTAMP,ContextTokens,GeneratedTokens\n"
			    "2023-11-16 23:59:59.5,100,5\n2023-11-17 00:00:01.0,200,0\n"
			    "2023-11-16 23:59:59.0,300,1\n", &t, err, sizeof(err)), 0, "csv")) {
		ASSERT_EQ(t.n, 3, "three rows");
		NEAR(t.r[0].t_us, 0, 1e-3, "earliest first");
		ASSERT_EQ(t.r[0].in, 300, "sorted by time");
		NEAR(t.span_us, 2e6, 1e-3, "span across midnight");
		ASSERT_EQ(t.r[2].out, 1, "0 generated tokens reads as 1");
		ASSERT_TRUE(!t.has_prefix, "no prefix in Azure");
		ev_trace_free(&t);
	}
}

int main(void)
{
	tap_plan(11);
	TAP_RUN(test_engine_model);
	TAP_RUN(test_load_scaling);
	TAP_RUN(test_round_robin_and_hash);
	TAP_RUN(test_sglang_prefix);
	TAP_RUN(test_idn_runs);
	TAP_RUN(test_idn_seeds);
	TAP_RUN(test_idn_migrate);
	TAP_RUN(test_idn_oracles);
	TAP_RUN(test_idn_pd);
	TAP_RUN(test_parser_errors);
	TAP_RUN(test_testbed_support);
	return tap_done();
}
