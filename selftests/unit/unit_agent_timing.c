// SPDX-License-Identifier: GPL-2.0
/*
 * unit_agent_timing.c - the engine emulator's timing model (docs/agent.md)
 * in emulated time: iteration = 5.75 ms + 17.25 us per uncached prefill
 * token + 6.0 us per decoding sequence; chunked prefill under the token
 * budget; a cached prefix is not prefilled again; decode and prefill share
 * an iteration (continuous batching); outstanding prefill tokens as the
 * telemetry reports them; a held request (pull on miss) keeps its place
 * and is admitted after its release. Also the agent's option parser.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <linux/idn.h>

#include "agent.h"
#include "tap.h"

#define NEAR(a, b, tag) ASSERT_TRUE(fabs((a) - (b)) < 1e-6, tag)

static struct eng_req *submit(struct engine *e, uint32_t in, uint32_t out, int64_t id0,
			      uint32_t nkeys)
{
	int64_t ids[64];
	uint64_t *keys = NULL;
	int err;

	for (uint32_t i = 0; i < nkeys; i++)
		ids[i] = id0 + i;
	eng_keys_from_ids(ids, nkeys, &keys);
	return engine_submit(e, in, out, keys, nkeys, &err);
}

static void test_formula(void)
{
	struct eng_params p;

	eng_params_defaults(&p);
	NEAR(eng_iter_us(&p, 0, 0, 0), 0, "idle");
	NEAR(eng_iter_us(&p, 1000, 0, 0), 5750 + 17250, "prefill 1000");
	NEAR(eng_iter_us(&p, 0, 10, 0), 5750 + 60, "decode 10");
	NEAR(eng_iter_us(&p, 512, 3, 0), 5750 + 17.25 * 512 + 18, "mixed");
	p.attn_ctx_ns = 39;
	NEAR(eng_iter_us(&p, 0, 2, 10000), 5750 + 12 + 390, "attention term");
}

static void test_single_request(void)
{
	struct eng_params p;
	struct engine e;
	struct eng_req *r;
	struct eng_load l;
	double d;

	eng_params_defaults(&p);
	engine_init(&e, &p);
	r = submit(&e, 6758, 4, 0, 14);
	engine_load(&e, &l);
	ASSERT_EQ(l.pending_tokens, 6758, "waiting prefill counted");
	ASSERT_EQ(l.queue_depth, 1, "queue");
	d = engine_step(&e);
	NEAR(d, 5750 + 17.25 * 6758, "prefill iteration");
	NEAR(r->t_first - r->t_arrival, d, "TTFT = one prefill iteration");
	ASSERT_EQ(r->generated, 1, "first token with the prefill");
	for (int i = 0; i < 3; i++)
		NEAR(engine_step(&e), 5756, "decode iteration");
	ASSERT_EQ(r->state, ENG_DONE, "done after 4 tokens");
	NEAR(r->t_done - r->t_arrival, 5750 + 17.25 * 6758 + 3 * 5756, "e2e");
	NEAR(engine_step(&e), 0, "idle");
	engine_put(&e, r);

	/* the same prefix again: only the last token is computed */
	r = submit(&e, 6758, 2, 0, 14);
	engine_load(&e, &l);
	ASSERT_EQ(l.pending_tokens, 1, "estimate sees the cached prefix");
	d = engine_step(&e);
	NEAR(d, 5750 + 17.25, "fully cached prompt: one token");
	ASSERT_EQ(r->cached_tokens, 6757, "cached tokens");
	engine_step(&e);
	engine_put(&e, r);
	engine_free(&e);
}

static void test_chunked_and_batched(void)
{
	struct eng_params p;
	struct engine e;
	struct eng_req *a, *b;
	struct eng_load l;

	eng_params_defaults(&p);
	engine_init(&e, &p);
	a = submit(&e, 10000, 3, 100, 20);
	NEAR(engine_step(&e), 5750 + 17.25 * 8192, "first chunk fills the budget");
	engine_load(&e, &l);
	ASSERT_EQ(l.pending_tokens, 10000 - 8192, "outstanding prefill");
	ASSERT_EQ(a->generated, 0, "no token before the prefill ends");
	b = submit(&e, 600, 2, 200, 2);
	/* a finishes its prefill (1808) and b starts in the same iteration */
	NEAR(engine_step(&e), 5750 + 17.25 * (1808 + 600), "two prefills share an iteration");
	ASSERT_EQ(a->generated, 1, "a: first token");
	ASSERT_EQ(b->generated, 1, "b: first token");
	NEAR(engine_step(&e), 5750 + 2 * 6.0, "two decoding sequences");
	ASSERT_EQ(b->state, ENG_DONE, "b done (2 tokens)");
	NEAR(engine_step(&e), 5756, "a alone");
	ASSERT_EQ(a->state, ENG_DONE, "a done (3 tokens)");
	engine_put(&e, a);
	engine_put(&e, b);
	engine_free(&e);
}

/*
 * work_tokens: the time to clear the outstanding prefill, in prefill
 * tokens (what the datagram carries and T_queue multiplies by tok_ns),
 * against the time the engine then takes: iterations (A), each request's
 * attention over what precedes it (E), a running decode's step (C, D)
 * that also takes a token of each iteration's budget.
 */
static void test_work_tokens(void)
{
	struct eng_params p;
	struct engine e;
	struct eng_req *a, *b, *c;
	struct telemetry t = { .fd = -1 };
	struct idn_telemetry m;
	struct eng_load l;
	double t0, want;

	eng_params_defaults(&p);
	p.prefill_attn_ns = 0.874;
	p.attn_ctx_ns = 39.1;
	engine_init(&e, &p);
	engine_load(&e, &l);
	ASSERT_EQ(l.work_tokens, 0, "idle: no work");
	a = submit(&e, 10000, 5, 300, 0);
	b = submit(&e, 3000, 5, 400, 0);
	engine_load(&e, &l);
	ASSERT_EQ(l.pending_tokens, 13000, "pending: the tokens");
	want = 2 * 5750 + 17.25 * 13000 + 0.874e-3 * (10000.0 * 5000 + 3000.0 * 1500);
	ASSERT_EQ(l.work_tokens, (uint32_t)(want / 17.25 + 0.5),
		  "work: two iterations, prefill and its attention");
	ASSERT_TRUE(l.work_tokens > l.pending_tokens, "more than the tokens alone");
	t0 = e.now_us;
	while (b->generated < 1)
		engine_step(&e);
	NEAR(e.now_us - t0, want, "the engine takes what it said");
	while (a->state != ENG_DONE || b->state != ENG_DONE)
		engine_step(&e);
	engine_put(&e, a);
	engine_put(&e, b);

	/* a decoding sequence shares the budget: 8191 per iteration */
	c = submit(&e, 1000, 50, 500, 0);
	engine_step(&e);
	ASSERT_EQ(c->state, ENG_DECODE, "c decodes");
	/* one output token each: none joins the decodes meanwhile */
	a = submit(&e, 8191, 1, 600, 0);
	b = submit(&e, 8191, 1, 700, 0);
	engine_load(&e, &l);
	t0 = e.now_us;
	while (b->state != ENG_DONE)
		engine_step(&e);
	/* the prediction holds c's context as it was: one token short in the 2nd */
	ASSERT_TRUE(fabs(l.work_tokens * 17.25 - (e.now_us - t0)) <= 17.25,
		    "with a decode: within a token's time");
	ASSERT_TRUE(l.work_tokens * 17.25 > 2 * (5750 + 6.0 + 17.25 * 8191),
		    "the decode's steps counted");

	/* the datagram carries the work where the engine knows it */
	tele_build(&t, &l, 0, 1000, &m);
	ASSERT_EQ(ntohl(m.pending_tokens), l.work_tokens, "datagram: work tokens");
	l.work_tokens = 0;
	tele_build(&t, &l, 0, 1100, &m);
	ASSERT_EQ(ntohl(m.pending_tokens), l.pending_tokens, "unknown work: the tokens");
	while (a->state != ENG_DONE || b->state != ENG_DONE || c->state != ENG_DONE)
		engine_step(&e);
	engine_put(&e, a);
	engine_put(&e, b);
	engine_put(&e, c);
	engine_free(&e);
}

static void test_admission_waits_for_kv(void)
{
	struct eng_params p;
	struct engine e;
	struct eng_req *a, *b;
	int err;

	eng_params_defaults(&p);
	p.capacity_tokens = 4 * 512;
	engine_init(&e, &p);
	a = submit(&e, 1500, 10, 0, 3);	/* 3 blocks of 4 */
	b = submit(&e, 1500, 10, 10, 3);	/* must wait for a's blocks */
	engine_step(&e);
	ASSERT_EQ(a->state, ENG_DECODE, "a admitted");
	ASSERT_EQ(b->state, ENG_WAITING, "b waits: KV full");
	while (a->state != ENG_DONE)
		engine_step(&e);
	engine_step(&e);
	ASSERT_TRUE(b->state == ENG_DECODE || b->state == ENG_PREFILL, "b admitted after a");
	ASSERT_TRUE(engine_submit(&e, 3000, 10, NULL, 0, &err) == NULL && err == -E2BIG,
		    "larger than the cache: refused");
	engine_put(&e, a);
	engine_put(&e, b);
	engine_free(&e);
}

/*
 * Pull on miss: a held request keeps its place while its blocks come;
 * later ones pass it; released, it is admitted and prefills only what the
 * pulled blocks do not cover; its outstanding prefill drops at release.
 */
static void test_held(void)
{
	struct eng_params p;
	struct engine e;
	struct eng_req *a, *h, *c, *d, *x;
	struct eng_load l0, l1;
	int64_t ids[4] = { 100, 101, 102, 103 };
	uint64_t *hk = NULL;
	int32_t idx[4];
	uint32_t hits;
	int err;

	eng_params_defaults(&p);
	engine_init(&e, &p);
	a = submit(&e, 600, 2, 0, 1);
	eng_keys_from_ids(ids, 4, &hk);
	h = engine_submit_held(&e, NULL, 2100, 2, hk, 4, &err);
	c = submit(&e, 600, 2, 10, 1);
	ASSERT_TRUE(h && h->held && h->est_cached == 0, "held, nothing cached yet");
	engine_step(&e);
	ASSERT_TRUE(a->state != ENG_WAITING && c->state != ENG_WAITING, "a and c pass it");
	ASSERT_EQ(h->state, ENG_WAITING, "the held one waits in its place");
	d = submit(&e, 600, 2, 20, 1);	/* the list's tail after the unlinks */
	engine_step(&e);
	ASSERT_TRUE(d->state != ENG_WAITING, "a later one is admitted too");
	ASSERT_EQ(h->state, ENG_WAITING, "still held");
	/* the pulled blocks commit (agent_kv_commit()), then the release */
	ASSERT_EQ(kv_acquire(&e.kv, h->keys, 4, 4, idx, &hits), 0, "room for the pulled blocks");
	kv_commit(&e.kv, h->keys, idx, hits, 4);
	kv_release(&e.kv, idx, 4);
	engine_load(&e, &l0);
	engine_release(&e, h);
	engine_load(&e, &l1);
	ASSERT_TRUE(!h->held && h->est_cached == 2048, "released: the blocks are counted");
	ASSERT_TRUE(l1.pending_tokens + 2048 == l0.pending_tokens,
		    "its outstanding prefill drops by the pulled tokens");
	engine_step(&e);
	ASSERT_TRUE(h->state != ENG_WAITING, "admitted after the release");
	ASSERT_EQ(h->cached_tokens, 2048, "prefills only what the pulled blocks lack");
	/* cancelled while held: leaves the list */
	x = engine_submit_held(&e, NULL, 600, 2, NULL, 0, &err);
	engine_cancel(&e, x);
	engine_step(&e);
	ASSERT_EQ(x->state, ENG_FAILED, "a cancelled held request leaves");
	while (a->state != ENG_DONE || c->state != ENG_DONE || d->state != ENG_DONE ||
	       h->state != ENG_DONE)
		engine_step(&e);
	engine_put(&e, a);
	engine_put(&e, h);
	engine_put(&e, c);
	engine_put(&e, d);
	engine_put(&e, x);
	engine_free(&e);
}

static void test_text_keys(void)
{
	uint64_t *k1, *k2;
	uint32_t t1, t2, n1, n2;

	n1 = eng_keys_from_text("a b c d e f g", 2, &k1, &t1);
	n2 = eng_keys_from_text("a  b\nc d x y", 2, &k2, &t2);
	ASSERT_EQ(t1, 7, "tokens are words");
	ASSERT_EQ(n1, 3, "full blocks only");
	ASSERT_EQ(n2, 3, "blocks");
	ASSERT_TRUE(k1[0] == k2[0] && k1[1] == k2[1], "same prefix, same keys");
	ASSERT_TRUE(k1[2] != k2[2], "different block, different key");
	free(k1);
	free(k2);
}

static void test_config(void)
{
	struct agent_cfg c;
	char err[256];
	char *ok[] = { "idn-agent", "--node-id", "7", "--addr4", "10.0.0.7", "--telemetry",
		       "10.0.0.1:7777", "--mem-budget", "64M", "--speed", "10", NULL };
	char *bad[] = { "idn-agent", "--node-id", "5000", NULL };
	char *bad2[] = { "idn-agent", "--telemetry", "10.0.0.1:7777", NULL };
	struct sockaddr_storage ss;
	socklen_t len;

	agent_cfg_defaults(&c);
	ASSERT_OK(agent_cfg_parse(&c, 11, ok, err, sizeof(err)), "parse");
	ASSERT_EQ(c.node_id, 7, "node id");
	ASSERT_EQ(c.mem_budget, 64 << 20, "budget with suffix");
	agent_cfg_defaults(&c);
	ASSERT_TRUE(agent_cfg_parse(&c, 3, bad, err, sizeof(err)) < 0, "node id range");
	agent_cfg_defaults(&c);
	ASSERT_TRUE(agent_cfg_parse(&c, 3, bad2, err, sizeof(err)) < 0, "telemetry needs a locator");
	ASSERT_OK(agent_parse_hostport("[fd00::1]:80", &ss, &len), "v6 host:port");
	ASSERT_EQ(ss.ss_family, AF_INET6, "v6");
	ASSERT_TRUE(agent_parse_hostport("1.2.3.4", &ss, &len) < 0, "port needed");
}

/*
 * The datagram's admitted work (version 3): the requests the engine took
 * since the previous datagram, their prompt tokens and the milliseconds
 * between the two; the first datagram says nothing (no interval yet).
 */
static void test_admitted(void)
{
	struct telemetry t = { .fd = -1 };
	struct idn_telemetry m;
	struct eng_params p;
	struct eng_load l;
	struct engine e;
	struct eng_req *r[3];

	eng_params_defaults(&p);
	engine_init(&e, &p);
	r[0] = submit(&e, 1000, 1, 100, 0);
	engine_load(&e, &l);
	ASSERT_TRUE(l.admit_reqs == 1 && l.admit_tokens == 1000, "engine counts its admissions");
	tele_build(&t, &l, 0, 5000, &m);
	ASSERT_EQ(m.version, IDN_TELE_VERSION, "version 3");
	ASSERT_TRUE(!m.admit_reqs && !m.admit_tokens && !m.span_ms, "first: nothing to say");
	r[1] = submit(&e, 3000, 1, 200, 0);
	r[2] = submit(&e, 500, 1, 300, 0);
	engine_load(&e, &l);
	tele_build(&t, &l, 0, 5100, &m);
	ASSERT_EQ(ntohs(m.admit_reqs), 2, "two since the last one");
	ASSERT_EQ(ntohl(m.admit_tokens), 3500, "their tokens");
	ASSERT_EQ(ntohs(m.span_ms), 100, "over 100 ms");
	tele_build(&t, &l, 0, 5200, &m);
	ASSERT_TRUE(!m.admit_reqs && !m.admit_tokens && ntohs(m.span_ms) == 100,
		    "none since, over 100 ms");
	/* a clock that goes back, or a gap over 65.5 s, says nothing */
	l.admit_reqs++;
	l.admit_tokens += 10;
	tele_build(&t, &l, 0, 5100, &m);
	ASSERT_TRUE(!m.admit_reqs && !m.span_ms, "clock back: nothing");
	tele_build(&t, &l, 0, 5200 + 70000, &m);
	ASSERT_TRUE(!m.admit_reqs && !m.span_ms, "70 s gap: nothing");
	l.admit_reqs++;
	tele_build(&t, &l, 0, 5300 + 70000, &m);
	ASSERT_TRUE(ntohs(m.admit_reqs) == 1 && !m.admit_tokens && ntohs(m.span_ms) == 100,
		    "and counts again from there");
	for (int i = 0; i < 3; i++) {
		while (r[i]->state != ENG_DONE)
			engine_step(&e);
		engine_put(&e, r[i]);
	}
	engine_free(&e);
}

int main(void)
{
	tap_plan(0);
	TAP_RUN(test_formula);
	TAP_RUN(test_single_request);
	TAP_RUN(test_chunked_and_batched);
	TAP_RUN(test_work_tokens);
	TAP_RUN(test_admitted);
	TAP_RUN(test_admission_waits_for_kv);
	TAP_RUN(test_held);
	TAP_RUN(test_text_keys);
	TAP_RUN(test_config);
	return tap_done();
}
