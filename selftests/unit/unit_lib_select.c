// SPDX-License-Identifier: GPL-2.0
/*
 * unit_lib_select.c - bpf/lib/select.h compiled for userspace over an
 * in-memory struct idn_env: cost J worked by hand, every hard filter
 * (and its receipt reason), plan lookup order and slots, the rendezvous
 * tie-break (stable when other candidates come and go), affinity, and
 * every rung of the degradation ladder; the router's own load accounting
 * (idn_node_charge(), reset by bpf/lib/tele.h), T_state as the cost of
 * re-creating the state, and SLO shedding.
 */
#include <pthread.h>

#include "lib/select.h"
#include "lib/tele.h"
#include "../lib/tap.h"

IDN_ASSERT_ABI();

#define MEM_NODES 64
#define MEM_PLANS 16

struct memenv {
	struct idn_node nodes[MEM_NODES];
	struct idn_plan_key keys[MEM_PLANS];
	struct idn_plan plans[MEM_PLANS];
	int n_plans;
	int plan_lookups;
};

static const struct idn_node *mem_node(void *priv, __u32 id)
{
	struct memenv *m = priv;

	return id < MEM_NODES ? &m->nodes[id] : NULL;
}

static const struct idn_plan *mem_plan(void *priv, const struct idn_plan_key *k)
{
	struct memenv *m = priv;

	m->plan_lookups++;
	for (int i = 0; i < m->n_plans; i++)
		if (!memcmp(&m->keys[i], k, sizeof(*k)))
			return &m->plans[i];
	return NULL;
}

static struct memenv M;
static struct idn_env ENV = { mem_node, mem_plan, &M };

static void env_reset(void)
{
	memset(&M, 0, sizeof(M));
}

/* A healthy, valid dual-stack node (both locators) with trust 7 in domain 0. */
static struct idn_node *node_up(__u32 id)
{
	struct idn_node *n = &M.nodes[id];

	memset(n, 0, sizeof(*n));
	n->addr4 = htonl(0x0a630000 | id);
	n->addr6[0] = htonl(0xfd000063);
	n->addr6[3] = htonl(id);
	n->trust = 7;
	n->health = IDN_HEALTH_UP;
	n->flags = IDN_NODE_F_VALID | IDN_NODE_F_LOC4 | IDN_NODE_F_LOC6;
	n->net_us = 100;
	n->tok_ns = 1000;
	return n;
}

static struct idn_plan *plan_add(__u32 cap, __u8 tier, __u8 policy, __u8 slot)
{
	struct idn_plan *pl;
	int i = M.n_plans++;

	if (i >= MEM_PLANS)
		abort();
	memset(&M.keys[i], 0, sizeof(M.keys[i]));
	M.keys[i].cap = cap;
	M.keys[i].tier = tier;
	M.keys[i].policy = policy;
	M.keys[i].slot = slot;
	pl = &M.plans[i];
	memset(pl, 0, sizeof(*pl));
	pl->generation = 1;
	for (int w = 0; w < IDN_W_MAX; w++)
		pl->weight[w] = 256;
	return pl;
}

static struct idn_cand *cand_add(struct idn_plan *pl, __u32 node, __u32 exec_us)
{
	struct idn_cand *c = &pl->cand[pl->n_cand++];

	memset(c, 0, sizeof(*c));
	c->node = node;
	c->exec_us = exec_us;
	return c;
}

#define CAP_A IDN_CAP(0x100, 0)
#define CAP_A1 IDN_CAP(0x100, 1)
#define CAP_A2 IDN_CAP(0x100, 2)
#define CAP_B IDN_CAP(0x200, 0)

struct req {
	struct idn_desc d;
	__u32 aff;
	__u32 slot;
	__u16 home;
	__u8 family;
	__u32 now;		/* the decision's tick */
};

static struct req req_default(__u32 cap)
{
	struct req r;

	memset(&r, 0, sizeof(r));
	r.d.cap = cap;
	r.d.token = 0x1234567890abcdefULL;
	r.d.tier = 5;
	r.aff = IDN_NODE_NONE;
	r.family = IDN_AF_INET;
	return r;
}

static int sel(const struct req *r, struct idn_sel *out, struct idn_receipt *rc)
{
	struct idn_sel_in in;

	idn_sel_in_init(&in, &r->d, r->aff, r->slot, r->home, r->family, r->now);
	if (rc)
		memset(rc, 0, sizeof(*rc));
	return idn_select(&ENV, &in, out, rc);
}

/* ---- cost J ------------------------------------------------------- */

static void test_cost_by_hand(void)
{
	struct idn_sel out;
	struct idn_plan *pl;
	struct idn_node *n;
	struct idn_cand *c;
	struct req r;

	env_reset();
	n = node_up(3);
	n->net_us = 100;
	n->tok_ns = 2000;
	n->pending_tokens = 500;	/* T_queue = 500 * 2000 / 1000 = 1000 */
	n->load = 250;
	pl = plan_add(CAP_A, IDN_ANY, IDN_ANY, 0);
	pl->weight[IDN_W_NET] = 256;	/* 1.0 */
	pl->weight[IDN_W_QUEUE] = 128;	/* 0.5 */
	pl->weight[IDN_W_EXEC] = 512;	/* 2.0 */
	pl->weight[IDN_W_STATE] = 64;	/* 0.25 */
	pl->weight[IDN_W_LOAD] = 256;	/* 1.0 */
	pl->weight[IDN_W_POLICY] = 384;	/* 1.5 */
	c = cand_add(pl, 3, 300);
	c->state_us = 700;
	c->policy_us = 40;

	/* the state is on node 9: 100 + 500 + 600 + 175 + 250 + 60 */
	r = req_default(CAP_A);
	r.aff = 9;
	ASSERT_EQ(sel(&r, &out, NULL), IDN_V_NEW, "verdict");
	ASSERT_EQ(out.node, 3, "node");
	ASSERT_EQ(out.cost, 1685, "J");
	ASSERT_EQ(out.cap, CAP_A, "cap");
	ASSERT_EQ(out.generation, 1, "generation");

	/* on the affinity node T_state is 0: J = 1685 - 175 */
	r.aff = 3;
	ASSERT_EQ(sel(&r, &out, NULL), IDN_V_AFFINITY, "affinity verdict");
	ASSERT_EQ(out.cost, 1510, "J on affinity node");
	/* and without affinity there is no state to re-create */
	r.aff = IDN_NODE_NONE;
	ASSERT_EQ(sel(&r, &out, NULL), IDN_V_NEW, "no affinity");
	ASSERT_EQ(out.cost, 1510, "J without affinity");

	/*
	 * size class 2: T_exec += 2000 ns * (256 << 2) / 1000 = 2048 us, x2;
	 * recomputing 1024 tokens here (2048 us) costs more than migrating
	 * (700 us), so T_state stays 700
	 */
	r.aff = 9;
	r.d.size_class = 2;
	ASSERT_EQ(sel(&r, &out, NULL), IDN_V_NEW, "sized");
	ASSERT_EQ(out.cost, 1685, "size class ignored without IDN_DF_SIZE");
	r.d.flags |= IDN_DF_SIZE;
	ASSERT_EQ(sel(&r, &out, NULL), IDN_V_NEW, "sized");
	ASSERT_EQ(out.cost, 1685 + 4096, "J with size class 2");

	/* Q8.8 rounding: truncation of the sum, not of each term */
	env_reset();
	n = node_up(1);
	n->net_us = 3;
	n->tok_ns = 0;
	pl = plan_add(CAP_A, IDN_ANY, IDN_ANY, 0);
	memset(pl->weight, 0, sizeof(pl->weight));
	pl->weight[IDN_W_NET] = 85;	/* 3 * 85 = 255 -> 0 */
	pl->weight[IDN_W_EXEC] = 1;	/* 1 * 1 = 1 -> 256 total -> 1 */
	cand_add(pl, 1, 1);
	r = req_default(CAP_A);
	sel(&r, &out, NULL);
	ASSERT_EQ(out.cost, 1, "(255 + 1) >> 8");
	pl->weight[IDN_W_EXEC] = 0;
	sel(&r, &out, NULL);
	ASSERT_EQ(out.cost, 0, "255 >> 8");
}

/* The divide-free x / 1000 must be exact: edges, and a wide sample. */
static void test_div1000_exact(void)
{
	static const __u64 edge[] = {
		0, 1, 999, 1000, 1001, 1999, 2000, 999999, 1000000,
		0xffffffffULL - 1, 0xffffffffULL, 0x100000000ULL, 0x100000000ULL + 999,
		4294967295000ULL, 0xffffffffffffffffULL,
	};
	__u64 x = 0x9e3779b97f4a7c15ULL;
	int bad = 0;

	for (unsigned int i = 0; i < sizeof(edge) / sizeof(edge[0]); i++)
		bad += idn_div1000(edge[i]) != edge[i] / 1000;
	for (__u64 v = 0; v < 5000000; v++)	/* every value near 0 */
		bad += idn_div1000(v) != v / 1000;
	for (int i = 0; i < 5000000; i++) {	/* and spread over 32 bits */
		__u64 v;

		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		v = x & 0xffffffffULL;
		bad += idn_div1000(v) != v / 1000;
		bad += idn_div1000(x >> (i & 31)) != (x >> (i & 31)) / 1000;
	}
	ASSERT_EQ(bad, 0, "idn_div1000 == x / 1000");
}

static void test_cost_saturates(void)
{
	struct idn_sel_in in;
	struct idn_plan pl;
	struct idn_node n;
	struct idn_cand c;
	struct idn_desc d = { .cap = CAP_A, .token = 1 };
	__u32 cost;

	idn_sel_in_init(&in, &d, IDN_NODE_NONE, 0, 0, IDN_AF_INET, 0);
	memset(&pl, 0, sizeof(pl));
	memset(&n, 0, sizeof(n));
	memset(&c, 0, sizeof(c));
	for (int w = 0; w < IDN_W_MAX; w++)
		pl.weight[w] = 256;
	n.net_us = 0xffffffffU;
	n.load = 1;
	ASSERT_EQ(idn_cost(&n, &c, &pl, &in), 0xffffffffU, "net alone at max");
	n.net_us = 0x7fffffffU;
	c.exec_us = 0x7fffffffU;
	ASSERT_EQ(idn_cost(&n, &c, &pl, &in), 0xffffffffU, "sum over 32 bits");

	/*
	 * The worst queue the node table can hold, weighted at the largest
	 * Q8.8 weight: J must saturate, never wrap to a small cost that
	 * would make the most loaded node the cheapest.
	 */
	memset(&n, 0, sizeof(n));
	memset(&c, 0, sizeof(c));
	memset(pl.weight, 0, sizeof(pl.weight));
	pl.weight[IDN_W_QUEUE] = 0xffff;
	n.pending_tokens = 0xffffffffU;
	n.tok_ns = 0xffffffffU;
	cost = idn_cost(&n, &c, &pl, &in);
	ASSERT_EQ(cost, 0xffffffffU, "huge queue saturates");
	/*
	 * T_queue = 2097259603 * 4294812470 / 1000 = 9007336695791649 us:
	 * times 65535 that is 2^69 + 65503, which wraps a 64-bit sum to
	 * 65503 (J 255) unless the terms are clamped first.
	 */
	n.pending_tokens = 2097259603U;
	n.tok_ns = 4294812470U;
	cost = idn_cost(&n, &c, &pl, &in);
	ASSERT_EQ(cost, 0xffffffffU, "queue term must not wrap");
	/* and all terms at their maximum together */
	for (int w = 0; w < IDN_W_MAX; w++)
		pl.weight[w] = 0xffff;
	n.net_us = 0xffffffffU;
	n.load = 0xffff;
	c.exec_us = c.state_us = 0xffffffffU;
	c.policy_us = 0xffff;
	in.size_class = 15;
	ASSERT_EQ(idn_cost(&n, &c, &pl, &in), 0xffffffffU, "all terms max");
}

/*
 * T_wan: a node outside this router's region (IDN_NODE_F_WAN) pays the
 * plan's price for a mean prompt's bytes (4 per prompt token), whatever
 * the request's size (its own bytes only without a mean), in its rank
 * only: the SLO and budget tests see J without it.
 */
static void test_wan_cost(void)
{
	struct idn_receipt rc;
	struct idn_sel out;
	struct idn_plan *pl;
	struct idn_node *far;
	struct req r;

	env_reset();
	node_up(1)->pending_tokens = 3000;	/* in region, 3 ms of queue */
	far = node_up(2);			/* idle, across the WAN */
	far->net_us = 1100;
	far->flags |= IDN_NODE_F_WAN;
	pl = plan_add(CAP_A, IDN_ANY, IDN_ANY, 0);
	cand_add(pl, 1, 300);
	cand_add(pl, 2, 300);
	r = req_default(CAP_A);
	r.d.flags |= IDN_DF_SIZE;
	r.d.size_class = 2;			/* 1024 tokens, 4096 bytes */

	/* no price: the idle far node wins, 1100 + 300 + 1024 < 100 + 3000 + 300 + 1024 */
	ASSERT_EQ(sel(&r, &out, &rc), IDN_V_NEW, "free WAN");
	ASSERT_EQ(out.node, 2, "free WAN: the idle far node");
	ASSERT_EQ(rc.cand[1].cost, 1100 + 300 + 1024, "free WAN: J without T_wan");

	/* 500 ns per byte, mean prompt 1024 tokens: 4096 * 500 / 1000 = 2048 us
	 * on the far node only */
	pl->wan_ns_per_byte = 500;
	pl->prompt_tokens = 1024;
	ASSERT_EQ(sel(&r, &out, &rc), IDN_V_NEW, "priced WAN");
	ASSERT_EQ(rc.cand[0].cost, 100 + 3000 + 300 + 1024, "in region: no T_wan");
	ASSERT_EQ(rc.cand[1].cost, 1100 + 300 + 1024 + 2048, "far: T_wan added");
	ASSERT_EQ(out.node, 1, "priced WAN keeps the request in region");
	ASSERT_EQ(out.cost, 4424, "J of the chosen node");

	/*
	 * a smaller request pays the same price per crossing: 256 tokens,
	 * T_wan still 2048, and 1100 + 300 + 256 + 2048 > 100 + 3000 + 300 +
	 * 256: it stays in region
	 */
	r.d.size_class = 0;
	ASSERT_EQ(sel(&r, &out, &rc), IDN_V_NEW, "small request");
	ASSERT_EQ(rc.cand[1].cost, 1100 + 300 + 256 + 2048, "T_wan per crossing, not per size");
	ASSERT_EQ(out.node, 1, "a small request stays in region for a small gain");
	/* a larger one the same: 4096 tokens, T_wan 2048, not 8192 */
	r.d.size_class = 4;
	ASSERT_EQ(sel(&r, &out, &rc), IDN_V_NEW, "large request");
	ASSERT_EQ(rc.cand[1].cost, 1100 + 300 + 4096 + 2048, "a large request: the same T_wan");
	ASSERT_EQ(out.node, 1, "3000 us of queue less does not pay 2048 + 1000 of net");
	M.nodes[1].pending_tokens = 6000;
	ASSERT_EQ(sel(&r, &out, &rc), IDN_V_NEW, "large request, longer queue");
	ASSERT_EQ(out.node, 2, "6000 us of queue: the large request crosses");
	M.nodes[1].pending_tokens = 3000;
	/* without a mean prompt the request's own bytes: 1024 tokens, 2048 us */
	pl->prompt_tokens = 0;
	r.d.size_class = 2;
	ASSERT_EQ(sel(&r, &out, &rc), IDN_V_NEW, "no mean prompt");
	ASSERT_EQ(rc.cand[1].cost, 1100 + 300 + 1024 + 2048, "T_wan from the size class");
	r.d.size_class = 0;
	ASSERT_EQ(sel(&r, &out, &rc), IDN_V_NEW, "no mean prompt, small request");
	ASSERT_EQ(rc.cand[1].cost, 1100 + 300 + 256 + 512, "its own 1024 bytes: 512 us");

	/* without a size class the plan's mean prompt gives the bytes */
	r.d.flags &= ~IDN_DF_SIZE;
	pl->prompt_tokens = 2000;		/* 8000 bytes: 4000 us */
	ASSERT_EQ(sel(&r, &out, &rc), IDN_V_NEW, "mean prompt");
	ASSERT_EQ(rc.cand[1].cost, 1100 + 300 + 2000 + 4000, "T_wan from prompt_tokens");
	pl->prompt_tokens = 0;			/* unknown size: nothing to price */
	ASSERT_EQ(sel(&r, &out, &rc), IDN_V_NEW, "unknown size");
	ASSERT_EQ(rc.cand[1].cost, 1100 + 300, "no tokens, no T_wan");

	/*
	 * The price is not a time: the in-region node over the SLO, the far
	 * one's time (2424 us) under it although J with T_wan (4472) is not:
	 * served there, not shed and not rejected as slo.
	 */
	r.d.flags |= IDN_DF_SIZE;
	r.d.size_class = 2;
	r.d.tier = 0;
	pl->shed_tier = 1;
	pl->slo_us = 3000;
	M.nodes[1].pending_tokens = 5000;
	ASSERT_EQ(sel(&r, &out, &rc), IDN_V_NEW, "served across the WAN");
	ASSERT_EQ(out.node, 2, "the far node meets the SLO");
	ASSERT_EQ(rc.cand[0].reject, IDN_REJ_SLO, "in region over the SLO");
	ASSERT_EQ(rc.cand[1].reject, IDN_REJ_NONE, "the price is no SLO miss");
	ASSERT_EQ(out.cost, 2424 + 2048, "J with T_wan");
	/* and the budget (100 us units) is a time too: 2424 fits 25 */
	r.d.budget = 25;
	ASSERT_EQ(sel(&r, &out, NULL), IDN_V_NEW, "budget");
	ASSERT_EQ(out.node, 2, "the price is no budget overrun");
	r.d.budget = 24;
	ASSERT_EQ(sel(&r, &out, &rc), IDN_V_SHED, "over the budget in time");
	ASSERT_EQ(rc.cand[1].reject, IDN_REJ_BUDGET, "budget compares time");

	/* the flag is what prices: the same node in region pays nothing */
	r.d.budget = 0;
	far->flags &= ~IDN_NODE_F_WAN;
	ASSERT_EQ(sel(&r, &out, &rc), IDN_V_NEW, "in region");
	ASSERT_EQ(out.cost, 2424, "no flag, no T_wan");

	/* the largest request at the largest price saturates, never wraps */
	far->flags |= IDN_NODE_F_WAN;
	pl->slo_us = 0;
	pl->wan_ns_per_byte = 0xffffffffU;
	r.d.size_class = 15;
	ASSERT_EQ(sel(&r, &out, &rc), IDN_V_NEW, "huge price");
	ASSERT_EQ(rc.cand[1].cost, 0xffffffffU, "T_wan saturates J");
	ASSERT_EQ(out.node, 1, "the in-region node, however loaded");
}

/* ---- hard filters ------------------------------------------------- */

struct filt_case {
	const char *name;
	void (*setup)(struct idn_node *n, struct idn_plan *pl, struct req *r);
	__u8 reject;
};

static void f_none(struct idn_node *n, struct idn_plan *pl, struct req *r) {}
static void f_invalid(struct idn_node *n, struct idn_plan *pl, struct req *r)
{ n->flags &= ~IDN_NODE_F_VALID; }
static void f_missing(struct idn_node *n, struct idn_plan *pl, struct req *r)
{ pl->cand[0].node = MEM_NODES + 5; /* env returns NULL */ }
static void f_beyond(struct idn_node *n, struct idn_plan *pl, struct req *r)
{ pl->cand[0].node = IDN_MAX_NODES; }
static void f_none_id(struct idn_node *n, struct idn_plan *pl, struct req *r)
{ pl->cand[0].node = IDN_NODE_NONE; }
static void f_unknown(struct idn_node *n, struct idn_plan *pl, struct req *r)
{ n->health = IDN_HEALTH_UNKNOWN; }
static void f_drain(struct idn_node *n, struct idn_plan *pl, struct req *r)
{ n->health = IDN_HEALTH_DRAIN; }
static void f_down(struct idn_node *n, struct idn_plan *pl, struct req *r)
{ n->health = IDN_HEALTH_DOWN; }
static void f_bad_health(struct idn_node *n, struct idn_plan *pl, struct req *r)
{ n->health = 77; }
static void f_trust_low(struct idn_node *n, struct idn_plan *pl, struct req *r)
{ n->trust = 3; r->d.policy = IDN_POLICY(4, 0, 0); }
static void f_trust_eq(struct idn_node *n, struct idn_plan *pl, struct req *r)
{ n->trust = 4; r->d.policy = IDN_POLICY(4, 0, 0); }
static void f_trust0(struct idn_node *n, struct idn_plan *pl, struct req *r)
{ n->trust = 0; r->d.policy = IDN_POLICY(0, 0, 0); }
static void f_priv_tenant(struct idn_node *n, struct idn_plan *pl, struct req *r)
{ r->d.policy = IDN_POLICY(0, IDN_PRIV_TENANT, 0); }
static void f_priv_conf(struct idn_node *n, struct idn_plan *pl, struct req *r)
{ r->d.policy = IDN_POLICY(0, IDN_PRIV_CONFIDENTIAL, 0); }
static void f_priv_hw(struct idn_node *n, struct idn_plan *pl, struct req *r)
{ r->d.policy = IDN_POLICY(0, IDN_PRIV_HW_BOUND, 0); }
static void f_priv_conf_ok(struct idn_node *n, struct idn_plan *pl, struct req *r)
{ n->flags |= IDN_NODE_F_CONFIDENTIAL; r->d.policy = IDN_POLICY(0, IDN_PRIV_HW_BOUND, 0); }
static void f_home_other(struct idn_node *n, struct idn_plan *pl, struct req *r)
{ n->domain = 2; r->home = 3; r->d.policy = IDN_POLICY(0, 0, IDN_SCOPE_HOME); }
static void f_home_same(struct idn_node *n, struct idn_plan *pl, struct req *r)
{ n->domain = 3; r->home = 3; r->d.policy = IDN_POLICY(0, 0, IDN_SCOPE_HOME); }
static void f_any_other(struct idn_node *n, struct idn_plan *pl, struct req *r)
{ n->domain = 2; r->home = 3; r->d.policy = IDN_POLICY(0, 0, IDN_SCOPE_ANY); }
static void f_plan_in(struct idn_node *n, struct idn_plan *pl, struct req *r)
{ n->domain = 31; pl->domain_mask = 1U << 31; r->d.policy = IDN_POLICY(0, 0, IDN_SCOPE_PLAN); }
static void f_plan_out(struct idn_node *n, struct idn_plan *pl, struct req *r)
{ n->domain = 5; pl->domain_mask = ~(1U << 5); r->d.policy = IDN_POLICY(0, 0, IDN_SCOPE_PLAN); }
static void f_plan_big(struct idn_node *n, struct idn_plan *pl, struct req *r)
{ n->domain = 37; pl->domain_mask = ~0U; r->d.policy = IDN_POLICY(0, 0, IDN_SCOPE_PLAN); }
static void f_plan_home_ignored(struct idn_node *n, struct idn_plan *pl, struct req *r)
{ n->domain = 1; r->home = 0; pl->domain_mask = 2; r->d.policy = IDN_POLICY(0, 0, IDN_SCOPE_PLAN); }
static void f_variant_diff(struct idn_node *n, struct idn_plan *pl, struct req *r)
{ r->d.cap = CAP_A2; pl->cand[0].variant = 1; }
static void f_variant_same(struct idn_node *n, struct idn_plan *pl, struct req *r)
{ r->d.cap = CAP_A2; pl->cand[0].variant = 2; }
static void f_variant_any(struct idn_node *n, struct idn_plan *pl, struct req *r)
{ r->d.cap = CAP_A; pl->cand[0].variant = 9; }
static void f_v4_on_v6only(struct idn_node *n, struct idn_plan *pl, struct req *r)
{ n->flags &= ~IDN_NODE_F_LOC4; }
static void f_v6_on_v4only(struct idn_node *n, struct idn_plan *pl, struct req *r)
{ n->flags &= ~IDN_NODE_F_LOC6; r->family = IDN_AF_INET6; }
static void f_v6_on_v6only(struct idn_node *n, struct idn_plan *pl, struct req *r)
{ n->flags &= ~IDN_NODE_F_LOC4; r->family = IDN_AF_INET6; }
static void f_v4_on_v4only(struct idn_node *n, struct idn_plan *pl, struct req *r)
{ n->flags &= ~IDN_NODE_F_LOC6; }
static void f_v4_on_dual(struct idn_node *n, struct idn_plan *pl, struct req *r)
{ }
static void f_v6_on_dual(struct idn_node *n, struct idn_plan *pl, struct req *r)
{ r->family = IDN_AF_INET6; }
static void f_no_locator(struct idn_node *n, struct idn_plan *pl, struct req *r)
{ n->flags &= ~(IDN_NODE_F_LOC4 | IDN_NODE_F_LOC6); }
/* an address without its flag is not a locator */
static void f_v6_addr_no_flag(struct idn_node *n, struct idn_plan *pl, struct req *r)
{ n->flags &= ~IDN_NODE_F_LOC6; r->family = IDN_AF_INET6; n->addr6[0] = 0xffffffff; }
static void f_health_first(struct idn_node *n, struct idn_plan *pl, struct req *r)
{ n->health = IDN_HEALTH_DOWN; n->trust = 0; r->d.policy = IDN_POLICY(7, 0, 0); }

static const struct filt_case filt_cases[] = {
	{ "feasible", f_none, IDN_REJ_NONE },
	{ "node not valid", f_invalid, IDN_REJ_NO_NODE },
	{ "node missing in env", f_missing, IDN_REJ_NO_NODE },
	{ "node id = IDN_MAX_NODES", f_beyond, IDN_REJ_NO_NODE },
	{ "node id NONE", f_none_id, IDN_REJ_NO_NODE },
	{ "health unknown", f_unknown, IDN_REJ_HEALTH },
	{ "health drain", f_drain, IDN_REJ_HEALTH },
	{ "health down", f_down, IDN_REJ_HEALTH },
	{ "health garbage", f_bad_health, IDN_REJ_HEALTH },
	{ "trust below", f_trust_low, IDN_REJ_TRUST },
	{ "trust equal", f_trust_eq, IDN_REJ_NONE },
	{ "trust 0 needs 0", f_trust0, IDN_REJ_NONE },
	{ "privacy tenant any node", f_priv_tenant, IDN_REJ_NONE },
	{ "privacy confidential", f_priv_conf, IDN_REJ_PRIVACY },
	{ "privacy hw-bound", f_priv_hw, IDN_REJ_PRIVACY },
	{ "privacy on confidential node", f_priv_conf_ok, IDN_REJ_NONE },
	{ "scope home, other domain", f_home_other, IDN_REJ_SCOPE },
	{ "scope home, home domain", f_home_same, IDN_REJ_NONE },
	{ "scope any, other domain", f_any_other, IDN_REJ_NONE },
	{ "scope plan, in mask (31)", f_plan_in, IDN_REJ_NONE },
	{ "scope plan, out of mask", f_plan_out, IDN_REJ_SCOPE },
	{ "scope plan, domain >= 32", f_plan_big, IDN_REJ_SCOPE },
	{ "scope plan ignores home", f_plan_home_ignored, IDN_REJ_NONE },
	{ "variant differs", f_variant_diff, IDN_REJ_VARIANT },
	{ "variant same", f_variant_same, IDN_REJ_NONE },
	{ "variant 0 takes any", f_variant_any, IDN_REJ_NONE },
	{ "IPv4 request, IPv6-only node", f_v4_on_v6only, IDN_REJ_FAMILY },
	{ "IPv6 request, IPv4-only node", f_v6_on_v4only, IDN_REJ_FAMILY },
	{ "IPv6 request, IPv6-only node", f_v6_on_v6only, IDN_REJ_NONE },
	{ "IPv4 request, IPv4-only node", f_v4_on_v4only, IDN_REJ_NONE },
	{ "IPv4 request, dual-stack node", f_v4_on_dual, IDN_REJ_NONE },
	{ "IPv6 request, dual-stack node", f_v6_on_dual, IDN_REJ_NONE },
	{ "node without any locator", f_no_locator, IDN_REJ_FAMILY },
	{ "IPv6 address without LOC6", f_v6_addr_no_flag, IDN_REJ_FAMILY },
	{ "health checked before trust", f_health_first, IDN_REJ_HEALTH },
};

/*
 * One candidate; a filtered one makes the request a demand miss (no
 * feasible node), fails closed, and its receipt entry names the reason.
 */
static void test_hard_filters(void)
{
	for (size_t i = 0; i < sizeof(filt_cases) / sizeof(filt_cases[0]); i++) {
		const struct filt_case *fc = &filt_cases[i];
		struct idn_receipt rc;
		struct idn_sel out;
		struct idn_plan *pl;
		struct req r;
		int ok = 1;

		env_reset();
		r = req_default(CAP_A);
		pl = plan_add(IDN_CAP(0x100, 0), IDN_ANY, IDN_ANY, 0);
		cand_add(pl, 7, 10);
		fc->setup(node_up(7), pl, &r);
		/* the plan key follows the request's cap */
		M.keys[0].cap = r.d.cap;
		sel(&r, &out, &rc);
		ok &= ASSERT_EQ(out.n_rc, 1, fc->name);
		ok &= ASSERT_EQ(rc.cand[0].reject, fc->reject, fc->name);
		if (fc->reject == IDN_REJ_NONE) {
			ok &= ASSERT_EQ(out.verdict, IDN_V_NEW, fc->name);
			ok &= ASSERT_EQ(out.node, 7, fc->name);
			ok &= ASSERT_EQ(rc.cand[0].cost, out.cost, fc->name);
		} else {
			ok &= ASSERT_EQ(out.verdict, IDN_V_MISS_REJECT, fc->name);
			ok &= ASSERT_EQ(out.node, IDN_NODE_NONE, fc->name);
			ok &= ASSERT_EQ(rc.cand[0].cost, 0, fc->name);
		}
		if (!ok)
			printf("# case: %s\n", fc->name);
	}
}

/* A filtered cheaper candidate never wins over a feasible dearer one. */
static void test_filters_fail_closed(void)
{
	struct idn_sel out;
	struct idn_plan *pl;
	struct req r;

	env_reset();
	pl = plan_add(CAP_A, IDN_ANY, IDN_ANY, 0);
	cand_add(pl, 1, 1);
	cand_add(pl, 2, 1);
	cand_add(pl, 3, 1);
	cand_add(pl, 4, 1);
	cand_add(pl, 5, 5000);
	node_up(1)->health = IDN_HEALTH_DOWN;
	node_up(2)->trust = 1;
	node_up(3)->domain = 9;
	node_up(4);
	M.nodes[4].flags = 0;
	node_up(5)->flags |= IDN_NODE_F_CONFIDENTIAL;
	r = req_default(CAP_A);
	r.d.policy = IDN_POLICY(2, IDN_PRIV_CONFIDENTIAL, IDN_SCOPE_HOME);
	ASSERT_EQ(sel(&r, &out, NULL), IDN_V_NEW, "verdict");
	ASSERT_EQ(out.node, 5, "only the feasible node");
}

/* ---- plan lookup ------------------------------------------------- */

static void test_plan_lookup(void)
{
	struct idn_sel out;
	struct idn_plan *pl;
	struct req r;

	env_reset();
	node_up(1);
	node_up(2);
	node_up(3);
	pl = plan_add(CAP_A, IDN_ANY, IDN_ANY, 0);
	pl->generation = 10;
	cand_add(pl, 1, 10);
	pl = plan_add(CAP_A, 5, IDN_POLICY(1, 0, 0), 0);
	pl->generation = 11;
	cand_add(pl, 2, 10);
	pl = plan_add(CAP_A, IDN_ANY, IDN_ANY, 1);
	pl->generation = 12;
	cand_add(pl, 3, 10);

	r = req_default(CAP_A);
	r.d.policy = IDN_POLICY(1, 0, 0);
	sel(&r, &out, NULL);
	ASSERT_EQ(out.node, 2, "exact (tier, policy) first");
	ASSERT_EQ(out.generation, 11, "its generation");
	r.d.tier = 6;
	sel(&r, &out, NULL);
	ASSERT_EQ(out.node, 1, "wildcard when tier differs");
	ASSERT_EQ(out.generation, 10, "wildcard generation");
	r.d.tier = 5;
	r.d.policy = 0;
	sel(&r, &out, NULL);
	ASSERT_EQ(out.node, 1, "wildcard when policy differs");
	r.slot = 1;
	sel(&r, &out, NULL);
	ASSERT_EQ(out.node, 3, "slot 1 reads slot 1 only");
	ASSERT_EQ(out.generation, 12, "slot 1 generation");
	r.slot = 3;	/* only the low bit is a slot */
	sel(&r, &out, NULL);
	ASSERT_EQ(out.node, 3, "slot & 1");

	r = req_default(CAP_B);
	ASSERT_EQ(sel(&r, &out, NULL), IDN_V_MISS_REJECT, "no plan: miss");
	ASSERT_EQ(out.node, IDN_NODE_NONE, "no node");
	ASSERT_EQ(out.generation, 0, "no generation");
	/* variant is part of the plan key */
	r = req_default(CAP_A1);
	ASSERT_EQ(sel(&r, &out, NULL), IDN_V_MISS_REJECT, "variant has its own plans");
}

/* ---- tie-break ------------------------------------------------------ */

static __u32 pick(__u64 token, const __u32 *nodes, int n)
{
	struct idn_sel out;
	struct idn_plan *pl;
	struct req r;

	M.n_plans = 0;
	pl = plan_add(CAP_A, IDN_ANY, IDN_ANY, 0);
	for (int i = 0; i < n; i++)
		cand_add(pl, nodes[i], 500);
	r = req_default(CAP_A);
	r.d.token = token;
	sel(&r, &out, NULL);
	return out.node;
}

static void test_tie_break(void)
{
	__u32 all[8] = { 1, 2, 3, 4, 5, 6, 7, 8 }, hits[9] = { 0 };
	int moved = 0, bad = 0, order_bad = 0;

	env_reset();
	for (int i = 1; i <= 8; i++)
		node_up(i);
	for (__u64 t = 1; t <= 2000; t++) {
		__u64 token = idn_mix64(t * 7919);
		__u32 c = pick(token, all, 8), sub[8], rev[8];
		int k = 0;

		if (c < 1 || c > 8) {
			bad++;
			continue;
		}
		hits[c]++;
		/* same choice from the same token, any candidate order */
		for (int i = 0; i < 8; i++)
			rev[i] = all[7 - i];
		if (pick(token, rev, 8) != c)
			order_bad++;
		/* drop one other candidate: choice stays */
		for (int drop = 1; drop <= 8; drop++) {
			if (drop == (int)c)
				continue;
			k = 0;
			for (int i = 0; i < 8; i++)
				if (all[i] != (__u32)drop)
					sub[k++] = all[i];
			if (pick(token, sub, k) != c)
				moved++;
		}
		/* drop the chosen one: it moves, to a node still present */
		k = 0;
		for (int i = 0; i < 8; i++)
			if (all[i] != c)
				sub[k++] = all[i];
		if (pick(token, sub, k) == c)
			bad++;
	}
	ASSERT_EQ(bad, 0, "choice among candidates");
	ASSERT_EQ(order_bad, 0, "order independent");
	ASSERT_EQ(moved, 0, "removing another candidate never moves the choice");
	/* the token decides: every node gets a fair share of 2000 tokens */
	for (int i = 1; i <= 8; i++)
		if (!ASSERT_TRUE(hits[i] > 150 && hits[i] < 350, "spread over nodes"))
			printf("# node %d: %u of 2000\n", i, hits[i]);
}

/* A cheaper node beats the tie-break, and affinity beats state cost. */
static void test_min_cost_and_affinity(void)
{
	struct idn_receipt rc;
	struct idn_sel out;
	struct idn_plan *pl;
	struct req r;

	env_reset();
	node_up(1);
	node_up(2);
	node_up(3);
	pl = plan_add(CAP_A, IDN_ANY, IDN_ANY, 0);
	cand_add(pl, 1, 300)->state_us = 1000;
	cand_add(pl, 2, 200)->state_us = 1000;
	cand_add(pl, 3, 250)->state_us = 1000;
	r = req_default(CAP_A);
	ASSERT_EQ(sel(&r, &out, &rc), IDN_V_NEW, "new");
	ASSERT_EQ(out.node, 2, "min J");
	ASSERT_EQ(out.cost, 100 + 200, "J of node 2 (no affinity: no T_state)");
	ASSERT_EQ(out.n_rc, 3, "three receipt entries");
	ASSERT_EQ(rc.cand[0].cost, 100 + 300, "receipt J 1");
	ASSERT_EQ(rc.cand[2].cost, 100 + 250, "receipt J 3");
	ASSERT_EQ(rc.cand[1].from_fallback, 0, "not fallback");
	/* the token lives on node 1: no T_state there, 400 < 1200 */
	r.aff = 1;
	ASSERT_EQ(sel(&r, &out, NULL), IDN_V_AFFINITY, "affinity");
	ASSERT_EQ(out.node, 1, "affinity node");
	ASSERT_EQ(out.cost, 400, "J without T_state");
	/* until its queue makes it dearer: divert (verdict NEW) */
	M.nodes[1].pending_tokens = 1000;	/* +1000 us: J 1400 */
	ASSERT_EQ(sel(&r, &out, NULL), IDN_V_NEW, "diverted");
	ASSERT_EQ(out.node, 2, "cheapest after divert");
	/* affinity node not a candidate of the plan: plain NEW */
	r.aff = 33;
	node_up(33);
	ASSERT_EQ(sel(&r, &out, NULL), IDN_V_NEW, "affinity elsewhere");
}

/*
 * Dual-stack: affinity is per node id, so a token keeps its node when the
 * client switches family; a node lacking the new family's locator is
 * filtered (family) and the request goes elsewhere as a plain new flow.
 */
static void test_affinity_family_switch(void)
{
	struct idn_receipt rc;
	struct idn_sel out;
	struct idn_plan *pl;
	struct req r;

	env_reset();
	node_up(1);
	node_up(2);
	node_up(3);
	pl = plan_add(CAP_A, IDN_ANY, IDN_ANY, 0);
	cand_add(pl, 1, 300)->state_us = 1000;
	cand_add(pl, 2, 200)->state_us = 1000;
	cand_add(pl, 3, 250)->state_us = 1000;
	r = req_default(CAP_A);
	r.aff = 1;
	ASSERT_EQ(sel(&r, &out, NULL), IDN_V_AFFINITY, "IPv4: affinity");
	ASSERT_EQ(out.node, 1, "IPv4: affinity node");
	r.family = IDN_AF_INET6;
	ASSERT_EQ(sel(&r, &out, &rc), IDN_V_AFFINITY, "IPv6: still affinity");
	ASSERT_EQ(out.node, 1, "IPv6: same node");
	ASSERT_EQ(out.cost, 400, "IPv6: J without T_state");
	/* node 1 loses its IPv6 locator: IPv6 requests leave it, IPv4 stay */
	M.nodes[1].flags &= ~IDN_NODE_F_LOC6;
	ASSERT_EQ(sel(&r, &out, &rc), IDN_V_NEW, "IPv6 to IPv4-only affinity node: new");
	ASSERT_EQ(out.node, 2, "IPv6: cheapest dual-stack node");
	ASSERT_EQ(rc.cand[0].reject, IDN_REJ_FAMILY, "node 1 filtered for family");
	r.family = IDN_AF_INET;
	ASSERT_EQ(sel(&r, &out, NULL), IDN_V_AFFINITY, "IPv4 again: affinity");
	ASSERT_EQ(out.node, 1, "IPv4 again: node 1");
}

/* ---- ladder -------------------------------------------------------- */

static void ladder_env(void)
{
	struct idn_plan *pl;

	env_reset();
	for (int i = 1; i <= 6; i++) {
		node_up(i)->max_queue = 10;
		M.nodes[i].queue_depth = 0;
	}
	pl = plan_add(CAP_A1, IDN_ANY, IDN_ANY, 0);
	pl->fallback_cap = CAP_A2;
	pl->shed_tier = 4;
	cand_add(pl, 1, 100)->variant = 1;
	cand_add(pl, 2, 200)->variant = 1;
	pl = plan_add(CAP_A2, IDN_ANY, IDN_ANY, 0);
	pl->shed_tier = 9;	/* only the primary plan's shed tier counts */
	cand_add(pl, 3, 50)->variant = 2;
	cand_add(pl, 4, 60)->variant = 2;
}

static void test_ladder(void)
{
	struct idn_receipt rc;
	struct idn_sel out;
	struct req r;

	ladder_env();
	r = req_default(CAP_A1);
	r.d.tier = 5;
	ASSERT_EQ(sel(&r, &out, NULL), IDN_V_NEW, "step 0");
	ASSERT_EQ(out.node, 1, "cheapest primary");

	/* step 1: the same variant elsewhere */
	M.nodes[1].queue_depth = 10;
	ASSERT_EQ(sel(&r, &out, &rc), IDN_V_NEW, "step 1");
	ASSERT_EQ(out.node, 2, "same variant on another node");
	ASSERT_EQ(rc.cand[0].reject, IDN_REJ_OVERLOAD, "queue at soft limit");

	/* step 2: cheaper variant from the fallback plan */
	M.nodes[2].queue_depth = 12;
	ASSERT_EQ(sel(&r, &out, &rc), IDN_V_FALLBACK, "step 2");
	ASSERT_EQ(out.node, 3, "fallback node");
	ASSERT_EQ(out.cap, CAP_A2, "served cap is the fallback's");
	ASSERT_EQ(out.n_rc, 4, "receipt has both plans");
	ASSERT_EQ(rc.cand[2].from_fallback, 1, "fallback entries marked");
	ASSERT_EQ(rc.cand[2].node, 3, "fallback entry node");

	/* step 3: all over their soft limits; tier < shed_tier is shed */
	M.nodes[3].queue_depth = 10;
	M.nodes[4].queue_depth = 10;
	r.d.tier = 3;
	ASSERT_EQ(sel(&r, &out, NULL), IDN_V_SHED, "shed");
	ASSERT_EQ(out.node, IDN_NODE_NONE, "shed: no node");
	r.d.tier = 4;
	ASSERT_EQ(sel(&r, &out, NULL), IDN_V_OVERFLOW, "tier at shed_tier overflows");
	ASSERT_EQ(out.node, 1, "overflow: cheapest under 2x soft limit");
	ASSERT_EQ(out.cap, CAP_A1, "overflow serves the primary cap");
	M.nodes[1].queue_depth = 20;	/* at 2x: hard limit */
	ASSERT_EQ(sel(&r, &out, NULL), IDN_V_OVERFLOW, "overflow");
	ASSERT_EQ(out.node, 2, "node 1 past its hard limit");
	M.nodes[2].queue_depth = 20;
	ASSERT_EQ(sel(&r, &out, NULL), IDN_V_NOCAP, "no capacity");
	ASSERT_EQ(out.node, IDN_NODE_NONE, "nocap: no node");
	/* the fallback plan's nodes under 2x do not overflow the primary */
	ASSERT_EQ(M.nodes[3].queue_depth, 10, "fallback node under 2x");
	/* shed wins over nocap for low tiers */
	r.d.tier = 0;
	ASSERT_EQ(sel(&r, &out, NULL), IDN_V_SHED, "low tier shed");

	/* all down: a demand miss, not nocap */
	for (int i = 1; i <= 4; i++)
		M.nodes[i].health = IDN_HEALTH_DOWN;
	r.d.tier = 9;
	ASSERT_EQ(sel(&r, &out, NULL), IDN_V_MISS_REJECT, "nothing feasible: miss");
	ASSERT_EQ(out.generation, 1, "miss from a plan keeps its generation");
	/* only the fallback's nodes feasible and overloaded: not a miss */
	M.nodes[3].health = IDN_HEALTH_UP;
	ASSERT_EQ(sel(&r, &out, NULL), IDN_V_NOCAP, "fallback feasible but full");
	r.d.tier = 0;
	ASSERT_EQ(sel(&r, &out, NULL), IDN_V_SHED, "fallback full, low tier");
}

static void test_ladder_slo_budget(void)
{
	struct idn_receipt rc;
	struct idn_sel out;
	struct idn_plan *pl;
	struct req r;

	env_reset();
	node_up(1);	/* no max_queue: never past a hard limit */
	node_up(2);
	pl = plan_add(CAP_A, IDN_ANY, IDN_ANY, 0);
	pl->slo_us = 500;
	cand_add(pl, 1, 150);	/* J = 550 with 300 us of queue, 250 idle */
	cand_add(pl, 2, 250);	/* J = 450 with 100 us of queue, 350 idle */
	M.nodes[1].pending_tokens = 300;
	M.nodes[2].pending_tokens = 100;
	r = req_default(CAP_A);
	ASSERT_EQ(sel(&r, &out, &rc), IDN_V_NEW, "under slo");
	ASSERT_EQ(out.node, 2, "node under the SLO");
	ASSERT_EQ(rc.cand[0].reject, IDN_REJ_SLO, "J over SLO");
	ASSERT_EQ(rc.cand[0].cost, 550, "its J in the receipt");
	pl->slo_us = 449;
	ASSERT_EQ(sel(&r, &out, &rc), IDN_V_OVERFLOW, "both over SLO");
	ASSERT_EQ(out.node, 2, "cheapest overflow");
	ASSERT_EQ(rc.cand[1].reject, IDN_REJ_SLO, "node 2 over SLO too");
	pl->slo_us = 450;
	ASSERT_EQ(sel(&r, &out, NULL), IDN_V_NEW, "J == SLO is fine");

	/* budget in units of 100 us */
	pl->slo_us = 0;
	r.d.budget = 5;		/* 500 us */
	ASSERT_EQ(sel(&r, &out, NULL), IDN_V_NEW, "within budget");
	ASSERT_EQ(out.node, 2, "budget node");
	r.d.budget = 4;		/* 400 us */
	ASSERT_EQ(sel(&r, &out, &rc), IDN_V_OVERFLOW, "over budget");
	ASSERT_EQ(rc.cand[1].reject, IDN_REJ_BUDGET, "budget reason");
	r.d.budget = 0;
	ASSERT_EQ(sel(&r, &out, NULL), IDN_V_NEW, "budget 0 = none");
}

/*
 * SLO shedding: a request is shed when every candidate's expected TTFT
 * (J) is over the SLO because of its queue; a prompt that misses the SLO
 * even on an idle node is served (lowest J), not shed; receipts say slo.
 */
static void test_slo_shed(void)
{
	struct idn_receipt rc;
	struct idn_sel out;
	struct idn_plan *pl;
	struct req r;

	env_reset();
	node_up(1);
	node_up(2);
	pl = plan_add(CAP_A, IDN_ANY, IDN_ANY, 0);
	pl->slo_us = 2000;
	pl->shed_tier = 1;
	pl->prompt_tokens = 1000;
	cand_add(pl, 1, 500);
	cand_add(pl, 2, 500);
	r = req_default(CAP_A);
	r.d.tier = 0;
	ASSERT_EQ(sel(&r, &out, NULL), IDN_V_NEW, "idle: served");

	/* both queues 3 ms deep: J 4600 > 2000, idle J 1600 (1000 tokens at 1000 ns) */
	M.nodes[1].pending_tokens = 3000;
	M.nodes[2].pending_tokens = 3000;
	ASSERT_EQ(sel(&r, &out, &rc), IDN_V_SHED, "every wait over the SLO: shed");
	ASSERT_EQ(out.node, IDN_NODE_NONE, "shed: no node");
	ASSERT_EQ(out.charge, 0, "shed: nothing charged");
	ASSERT_EQ(rc.cand[0].reject, IDN_REJ_SLO, "receipt: slo (1)");
	ASSERT_EQ(rc.cand[1].reject, IDN_REJ_SLO, "receipt: slo (2)");
	ASSERT_EQ(rc.cand[0].cost, 4600, "receipt: expected TTFT");
	/* the router's own charge counts toward the wait like telemetry */
	M.nodes[2].pending_tokens = 0;
	M.nodes[2].charged_tokens = 3000;
	ASSERT_EQ(sel(&r, &out, NULL), IDN_V_SHED, "charged queue: shed");
	M.nodes[2].charged_tokens = 300;	/* J 1900 */
	ASSERT_EQ(sel(&r, &out, NULL), IDN_V_NEW, "one node under the SLO");
	ASSERT_EQ(out.node, 2, "the one under the SLO");
	M.nodes[2].charged_tokens = 3000;
	/* a tier at or above shed_tier overflows to the lowest J instead */
	r.d.tier = 1;
	ASSERT_EQ(sel(&r, &out, NULL), IDN_V_OVERFLOW, "kept tier overflows");
	ASSERT_EQ(out.charge, 1000, "overflow is charged");

	/*
	 * A 64k-token prompt: exec alone is 500 + 65536 us, over the SLO on
	 * any node, so it is not shed: the least loaded node serves it.
	 */
	r.d.tier = 0;
	r.d.flags |= IDN_DF_SIZE;
	r.d.size_class = 8;
	M.nodes[2].charged_tokens = 1000;
	ASSERT_EQ(sel(&r, &out, &rc), IDN_V_NEW, "too big for any node: served");
	ASSERT_EQ(out.node, 2, "on the least loaded node");
	ASSERT_EQ(rc.cand[0].reject, IDN_REJ_SLO, "receipt: over the SLO (1)");
	ASSERT_EQ(rc.cand[1].reject, IDN_REJ_SLO, "receipt: over the SLO (2)");
	ASSERT_EQ(out.charge, 65536, "charged its size");
	/* a tier that overflows is served the same way */
	r.d.tier = 1;
	ASSERT_EQ(sel(&r, &out, NULL), IDN_V_NEW, "kept tier: served too");
	r.d.tier = 0;

	/*
	 * One node could meet the SLO idle but is loaded, the other cannot
	 * even idle (4x slower): that is overload, not a hopeless prompt, so
	 * tier 0 is shed rather than sent to the node that can never do it.
	 */
	r.d.flags &= ~IDN_DF_SIZE;
	M.nodes[1].tok_ns = 4000;	/* idle J 100 + 500 + 4000 */
	M.nodes[1].pending_tokens = 0;
	M.nodes[2].pending_tokens = 3000;	/* J 4600, idle 1600 */
	M.nodes[2].charged_tokens = 0;
	ASSERT_EQ(sel(&r, &out, &rc), IDN_V_SHED, "mixed: shed");
	ASSERT_EQ(rc.cand[0].reject, IDN_REJ_SLO, "slow node over the SLO");
	ASSERT_EQ(rc.cand[0].cost, 4600, "slow node's J (idle)");
	r.d.tier = 1;
	ASSERT_EQ(sel(&r, &out, NULL), IDN_V_OVERFLOW, "mixed, kept tier: overflow");
	r.d.tier = 0;
	/* the loaded node drains: it meets the SLO again and serves */
	M.nodes[2].pending_tokens = 0;
	ASSERT_EQ(sel(&r, &out, NULL), IDN_V_NEW, "drained: served");
	ASSERT_EQ(out.node, 2, "by the node that meets the SLO");
	/* ... while the slow node alone cannot meet it: served anyway */
	M.nodes[2].health = IDN_HEALTH_DOWN;
	ASSERT_EQ(sel(&r, &out, NULL), IDN_V_NEW, "only the slow node: served");
	ASSERT_EQ(out.node, 1, "the slow node");
	M.nodes[2].health = IDN_HEALTH_UP;
	M.nodes[1].tok_ns = 1000;
	r.d.flags |= IDN_DF_SIZE;

	/* slo_us 0: no SLO, no shedding */
	r.d.flags &= ~IDN_DF_SIZE;
	pl->slo_us = 0;
	M.nodes[2].charged_tokens = 3000;
	ASSERT_EQ(sel(&r, &out, NULL), IDN_V_NEW, "no SLO: served");
}

/* ---- self-accounting ----------------------------------------------- */

static void tele_make(struct idn_telemetry *t, __u32 node, __u32 seq, __u32 pending)
{
	memset(t, 0, sizeof(*t));
	t->magic = htonl(IDN_TELE_MAGIC);
	t->version = IDN_TELE_VERSION;
	t->node = htonl(node);
	t->seq = htonl(seq);
	t->pending_tokens = htonl(pending);
}

/*
 * Each decision's expected prefill (size class, else the plan's mean) is
 * charged to its node and counted in T_queue until the node's next
 * telemetry datagram: a burst between two datagrams spreads over equal
 * nodes instead of piling on the one that looked idle.
 */
static void test_charge_spreads_burst(void)
{
	struct idn_telemetry t;
	unsigned int hits[5] = { 0 };
	struct idn_sel out;
	struct idn_plan *pl;
	struct req r;

	env_reset();
	pl = plan_add(CAP_A, IDN_ANY, IDN_ANY, 0);
	pl->prompt_tokens = 2000;
	for (int i = 1; i <= 4; i++) {
		node_up(i);
		cand_add(pl, i, 300);
	}
	r = req_default(CAP_A);
	ASSERT_EQ(sel(&r, &out, NULL), IDN_V_NEW, "first");
	ASSERT_EQ(out.charge, 2000, "charge: the plan's mean prompt");
	ASSERT_EQ(M.nodes[out.node].charged_tokens, 0, "select itself charges nothing");

	/* 40 requests with distinct tokens, no telemetry in between */
	for (int i = 0; i < 40; i++) {
		r.d.token = 0x1000 + i * 7919ULL;
		if (!ASSERT_EQ(sel(&r, &out, NULL), IDN_V_NEW, "burst"))
			return;
		idn_node_charge(&M.nodes[out.node], out.charge);
		hits[out.node]++;
	}
	for (int i = 1; i <= 4; i++) {
		if (!ASSERT_EQ(hits[i], 10, "burst spread evenly"))
			printf("# node %d: %u of 40\n", i, hits[i]);
		ASSERT_EQ(M.nodes[i].charged_tokens, 20000, "charged tokens");
	}
	/* the charge is T_queue: 20000 tokens at 1000 ns = 20 ms (+ 2 ms prefill) */
	ASSERT_EQ(sel(&r, &out, NULL), IDN_V_NEW, "after burst");
	ASSERT_EQ(out.cost, 100 + 20000 + 300 + 2000, "J counts the charge");

	/* node 3's datagram supersedes its charge: it is the cheapest again */
	tele_make(&t, 3, 1, 500);
	ASSERT_EQ(M.nodes[3].charged_reqs, 10, "and counted as 10 requests");
	ASSERT_EQ(idn_tele_apply(&M.nodes[3], &t, 7, 0), 0, "telemetry applied");
	ASSERT_EQ(M.nodes[3].charged_tokens, 0, "telemetry resets the charge");
	ASSERT_EQ(M.nodes[3].charged_reqs, 0, "and the count");
	ASSERT_EQ(M.nodes[3].pending_tokens, 500, "and sets the node's own count");
	ASSERT_EQ(sel(&r, &out, NULL), IDN_V_NEW, "after telemetry");
	ASSERT_EQ(out.node, 3, "the node that reported");
	ASSERT_EQ(out.cost, 100 + 500 + 300 + 2000, "J from the datagram");
	/* a replayed datagram changes nothing, the charge included */
	idn_node_charge(&M.nodes[3], 100);
	ASSERT_EQ(idn_tele_apply(&M.nodes[3], &t, 8, 0), IDN_DROP_TELE_REPLAY, "replay");
	ASSERT_EQ(M.nodes[3].charged_tokens, 100, "replay keeps the charge");

	/* a size class is charged as its tokens, not the mean */
	r.d.flags |= IDN_DF_SIZE;
	r.d.size_class = 3;
	ASSERT_EQ(sel(&r, &out, NULL), IDN_V_NEW, "sized");
	ASSERT_EQ(out.charge, 2048, "charge: 256 << 3");
	/* no mean and no size: nothing to charge */
	r.d.flags &= ~IDN_DF_SIZE;
	pl->prompt_tokens = 0;
	ASSERT_EQ(sel(&r, &out, NULL), IDN_V_NEW, "unknown size");
	ASSERT_EQ(out.charge, 0, "charge 0");
	idn_node_charge(&M.nodes[out.node], 0);
}

/* The charge stops growing near 2^31 tokens instead of wrapping. */
static void test_charge_bounded(void)
{
	struct idn_node n;

	memset(&n, 0, sizeof(n));
	n.charged_tokens = IDN_CHARGE_MAX - 1;
	idn_node_charge(&n, 1u << 23);
	ASSERT_EQ(n.charged_tokens, IDN_CHARGE_MAX - 1 + (1u << 23), "last add");
	idn_node_charge(&n, 1u << 23);
	ASSERT_EQ(n.charged_tokens, IDN_CHARGE_MAX - 1 + (1u << 23), "no more");
	/* and a saturated charge saturates J, never wraps it */
	{
		struct idn_desc d = { .cap = CAP_A, .token = 1 };
		struct idn_sel_in in;
		struct idn_plan pl;
		struct idn_cand c;

		memset(&pl, 0, sizeof(pl));
		memset(&c, 0, sizeof(c));
		pl.weight[IDN_W_QUEUE] = 0xffff;
		n.pending_tokens = 0xffffffffU;
		n.tok_ns = 0xffffffffU;
		idn_sel_in_init(&in, &d, IDN_NODE_NONE, 0, 0, IDN_AF_INET, 0);
		ASSERT_EQ(idn_cost(&n, &c, &pl, &in), 0xffffffffU, "J saturates");
	}
}

/* CPUs charging one node at the same time all count (atomic add). */
#define CHARGE_THREADS 4
#define CHARGE_EACH 200000

static void *charge_thread(void *arg)
{
	for (int i = 0; i < CHARGE_EACH; i++)
		idn_node_charge(arg, 3);
	return NULL;
}

static void test_charge_atomic(void)
{
	pthread_t th[CHARGE_THREADS];
	struct idn_node n;
	int started = 0;

	memset(&n, 0, sizeof(n));
	for (int i = 0; i < CHARGE_THREADS; i++)
		started += !pthread_create(&th[i], NULL, charge_thread, &n);
	for (int i = 0; i < started; i++)
		pthread_join(th[i], NULL);
	ASSERT_EQ(started, CHARGE_THREADS, "threads");
	ASSERT_EQ(n.charged_tokens, 3U * CHARGE_EACH * CHARGE_THREADS, "no lost add");
	ASSERT_EQ(n.charged_reqs, CHARGE_EACH * CHARGE_THREADS, "no lost count");
}

/*
 * Other routers' work: a version 3 datagram says the node admitted 10
 * requests (10000 tokens) over its last 100 ms; this router charged 2 of
 * them, so the others sent 8 (8000 tokens at the interval's mean). Until
 * the next datagram T_queue counts that rate times the time since, at
 * most one interval's worth.
 */
static void tele_admit(struct idn_telemetry *t, __u32 node, __u32 seq, __u16 reqs,
		       __u32 tokens, __u16 ms)
{
	tele_make(t, node, seq, 0);
	t->admit_reqs = htons(reqs);
	t->admit_tokens = htonl(tokens);
	t->span_ms = htons(ms);
}

static void test_others_estimate(void)
{
	const __u32 t0 = 1000, span = IDN_MS_TICKS(100);
	struct idn_telemetry t;
	struct idn_receipt rc;
	struct idn_sel out;
	struct idn_plan *pl;
	struct idn_node *n1;
	struct req r;
	__u32 half;

	env_reset();
	pl = plan_add(CAP_A, IDN_ANY, IDN_ANY, 0);
	pl->prompt_tokens = 2000;
	n1 = node_up(1);
	node_up(2);
	cand_add(pl, 1, 300);
	cand_add(pl, 2, 300);
	idn_node_charge(n1, 1000);
	idn_node_charge(n1, 1000);
	ASSERT_EQ(n1->charged_reqs, 2, "this router sent 2");
	tele_admit(&t, 1, 1, 10, 10000, 100);
	ASSERT_EQ(idn_tele_check(&t), 0, "datagram well formed");
	ASSERT_EQ(idn_tele_apply(n1, &t, 1, t0), 0, "applied");
	ASSERT_EQ(span, 95, "100 ms: 95 ticks of 2^20 ns");
	ASSERT_EQ(n1->others_span, span, "estimate runs one interval");
	ASSERT_TRUE(n1->others_rate > 0, "others' rate set");
	ASSERT_EQ(n1->charged_reqs, 0, "own count reset");

	ASSERT_EQ(idn_others_tokens(n1, t0), 0, "nothing yet at the datagram");
	half = idn_others_tokens(n1, t0 + 47);
	ASSERT_TRUE(half >= 3950 && half <= 3958, "half-way: 8000 x 47 / 95");
	ASSERT_TRUE(idn_others_tokens(n1, t0 + span) >= 7995 &&
		    idn_others_tokens(n1, t0 + span) <= 8000, "one interval: 8000");
	ASSERT_EQ(idn_others_tokens(n1, t0 + 10 * span), idn_others_tokens(n1, t0 + span),
		  "bounded by one interval");

	/* J: equal nodes at the datagram; a full interval later node 1 costs 8 ms more */
	r = req_default(CAP_A);
	r.now = t0;
	ASSERT_EQ(sel(&r, &out, &rc), IDN_V_NEW, "at the datagram");
	ASSERT_EQ(rc.cand[0].cost, rc.cand[1].cost, "equal");
	r.now = t0 + span;
	ASSERT_EQ(sel(&r, &out, &rc), IDN_V_NEW, "an interval later");
	ASSERT_EQ(out.node, 2, "the node others did not load");
	ASSERT_EQ(rc.cand[0].cost, 100 + idn_others_tokens(n1, t0 + span) + 300 + 2000,
		  "J counts the others' tokens at tok_ns");
	/* and the SLO test counts them: node 2 busy, node 1 over the SLO by the estimate */
	pl->slo_us = 6000;
	pl->shed_tier = 1;
	r.d.tier = 0;
	M.nodes[2].pending_tokens = 10000;
	ASSERT_EQ(sel(&r, &out, &rc), IDN_V_SHED, "others' work counts toward the SLO");
	r.now = t0 + 10;
	ASSERT_EQ(sel(&r, &out, &rc), IDN_V_NEW, "early in the interval: served");
	ASSERT_EQ(out.node, 1, "by node 1");
	pl->slo_us = 0;
	M.nodes[2].pending_tokens = 0;

	/* ticks wrap: a datagram just before 2^32, a decision after */
	n1->tele_tick = 0xfffffff0U;
	ASSERT_EQ(idn_others_tokens(n1, 0x10), idn_others_tokens(n1, 0xfffffff0U + 32),
		  "difference across the wrap");
	ASSERT_TRUE(idn_others_tokens(n1, 0x10) > 2600 && idn_others_tokens(n1, 0x10) < 2700,
		    "32 ticks of 95");

	/* this router sent all the node admitted: no others */
	for (int i = 0; i < 10; i++)
		idn_node_charge(n1, 1000);
	tele_admit(&t, 1, 2, 10, 10000, 100);
	ASSERT_EQ(idn_tele_apply(n1, &t, 1, t0 + 100), 0, "applied");
	ASSERT_EQ(n1->others_rate, 0, "all ours: rate 0");
	ASSERT_EQ(n1->others_carry, 0, "none of ours outstanding");
	ASSERT_EQ(idn_others_tokens(n1, t0 + 200), 0, "nothing estimated");
	/*
	 * 5 of ours, the node counted 3: 2 are on their way, ours in its next
	 * interval too (there 3 more of ours and 1 of another router's)
	 */
	for (int i = 0; i < 5; i++)
		idn_node_charge(n1, 1000);
	tele_admit(&t, 1, 10, 3, 3000, 100);
	ASSERT_EQ(idn_tele_apply(n1, &t, 1, t0), 0, "applied");
	ASSERT_TRUE(n1->others_rate == 0 && n1->others_carry == 2, "2 of ours carried");
	for (int i = 0; i < 3; i++)
		idn_node_charge(n1, 1000);
	tele_admit(&t, 1, 11, 6, 6000, 100);
	ASSERT_EQ(idn_tele_apply(n1, &t, 1, t0), 0, "applied");
	ASSERT_EQ(n1->others_carry, 0, "carried ones counted");
	ASSERT_TRUE(idn_others_tokens(n1, t0 + span) >= 995 &&
		    idn_others_tokens(n1, t0 + span) <= 1000, "one other request: 1000 tokens");
	/* a request the node never admits is carried one interval, not for ever */
	for (int i = 0; i < 2; i++)
		idn_node_charge(n1, 1000);
	tele_admit(&t, 1, 12, 0, 0, 100);
	ASSERT_EQ(idn_tele_apply(n1, &t, 1, t0), 0, "applied");
	ASSERT_EQ(n1->others_carry, 2, "2 outstanding");
	tele_admit(&t, 1, 13, 0, 0, 100);
	ASSERT_EQ(idn_tele_apply(n1, &t, 1, t0), 0, "applied");
	ASSERT_EQ(n1->others_carry, 0, "forgotten after an interval");
	/* nothing admitted, or a first datagram without a span: no estimate either */
	tele_admit(&t, 1, 14, 0, 0, 0);
	ASSERT_EQ(idn_tele_apply(n1, &t, 1, t0 + 200), 0, "applied");
	ASSERT_TRUE(n1->others_rate == 0 && n1->others_span == 0, "no span: no rate");
	/* a huge rate saturates instead of wrapping */
	tele_admit(&t, 1, 15, 65535, 0xffffffffU, 1);
	ASSERT_EQ(idn_tele_apply(n1, &t, 1, t0), 0, "applied");
	ASSERT_EQ(n1->others_span, 1, "1 ms: at least one tick");
	ASSERT_EQ(n1->others_rate, 0xffffffffU, "rate saturated");
	ASSERT_EQ(idn_others_tokens(n1, t0 + 5), 0xffff, "2^32 << 16 >> 16 over one tick");
}

/* A fallback decision is charged the fallback plan's mean. */
static void test_charge_fallback(void)
{
	struct idn_sel out;
	struct idn_plan *pl;
	struct req r;

	env_reset();
	node_up(1)->max_queue = 1;
	M.nodes[1].queue_depth = 1;
	node_up(2);
	pl = plan_add(CAP_A1, IDN_ANY, IDN_ANY, 0);
	pl->fallback_cap = CAP_A2;
	pl->prompt_tokens = 4000;
	cand_add(pl, 1, 10)->variant = 1;
	pl = plan_add(CAP_A2, IDN_ANY, IDN_ANY, 0);
	pl->prompt_tokens = 3000;
	cand_add(pl, 2, 10)->variant = 2;
	r = req_default(CAP_A1);
	ASSERT_EQ(sel(&r, &out, NULL), IDN_V_FALLBACK, "fallback");
	ASSERT_EQ(out.charge, 3000, "fallback plan's mean");
	M.nodes[2].health = IDN_HEALTH_DOWN;
	ASSERT_EQ(sel(&r, &out, NULL), IDN_V_OVERFLOW, "overflow");
	ASSERT_EQ(out.charge, 4000, "primary plan's mean");
	M.nodes[1].queue_depth = 2;
	ASSERT_EQ(sel(&r, &out, NULL), IDN_V_NOCAP, "nocap");
	ASSERT_EQ(out.charge, 0, "nocap: nothing charged");
}

/* ---- T_state ------------------------------------------------------- */

/*
 * Away from the state, T_state is what re-creating it costs on that node:
 * recompute of the prompt at the node's prefill rate, or the migration
 * cost when cheaper; affinity then trades against load through J.
 */
static void test_state_cost(void)
{
	struct idn_receipt rc;
	struct idn_sel out;
	struct idn_plan *pl;
	struct req r;

	env_reset();
	node_up(1)->tok_ns = 1000;
	node_up(2)->tok_ns = 250;	/* a faster node: recompute is cheaper */
	node_up(3)->tok_ns = 1000;
	pl = plan_add(CAP_A, IDN_ANY, IDN_ANY, 0);
	pl->prompt_tokens = 8000;
	pl->weight[IDN_W_EXEC] = 0;	/* T_state against T_queue alone */
	cand_add(pl, 1, 300);
	cand_add(pl, 2, 300);
	cand_add(pl, 3, 300)->state_us = 1500;	/* migration to 3: 1.5 ms */
	r = req_default(CAP_A);
	r.aff = 1;
	ASSERT_EQ(sel(&r, &out, &rc), IDN_V_AFFINITY, "state node");
	ASSERT_EQ(out.cost, 100, "no T_state on the state node");
	ASSERT_EQ(rc.cand[1].cost, 100 + 2000, "recompute 8000 tok at 250 ns");
	ASSERT_EQ(rc.cand[2].cost, 100 + 1500, "migration cheaper than 8 ms");

	/* the state node's queue outweighs re-creating the state: divert */
	M.nodes[1].pending_tokens = 1400;	/* +1.4 ms: J 1500 */
	ASSERT_EQ(sel(&r, &out, NULL), IDN_V_AFFINITY, "1.4 ms queue < 1.5 ms migration");
	M.nodes[1].pending_tokens = 1600;	/* J 1700 > 1600 on node 3 */
	ASSERT_EQ(sel(&r, &out, NULL), IDN_V_NEW, "diverted");
	ASSERT_EQ(out.node, 3, "to the cheapest re-creation");
	/* a size class overrides the mean: 256 tokens recompute in 256 us */
	r.d.flags |= IDN_DF_SIZE;
	r.d.size_class = 0;
	ASSERT_EQ(sel(&r, &out, &rc), IDN_V_NEW, "small prompt");
	ASSERT_EQ(rc.cand[2].cost, 100 + 256, "recompute cheaper than migration");
	ASSERT_EQ(rc.cand[1].cost, 100 + 64, "faster node: 64 us");
	ASSERT_EQ(out.node, 2, "the fast node");
	/* no affinity: no T_state anywhere */
	r.d.flags &= ~IDN_DF_SIZE;
	r.aff = IDN_NODE_NONE;
	M.nodes[1].pending_tokens = 0;
	ASSERT_EQ(sel(&r, &out, &rc), IDN_V_NEW, "no affinity");
	ASSERT_EQ(rc.cand[1].cost, 100, "no state term (2)");
	ASSERT_EQ(rc.cand[2].cost, 100, "no state term (3)");
	/* the state node outside the plan: every candidate re-creates it */
	r.aff = 33;
	node_up(33);
	ASSERT_EQ(sel(&r, &out, &rc), IDN_V_NEW, "state elsewhere");
	ASSERT_EQ(rc.cand[0].cost, 100 + 8000, "recompute at 1000 ns");
	ASSERT_EQ(out.node, 3, "migration is cheapest");
	/* state weight 0 turns the term off */
	pl->weight[IDN_W_STATE] = 0;
	ASSERT_EQ(sel(&r, &out, &rc), IDN_V_NEW, "delta 0");
	ASSERT_EQ(rc.cand[0].cost, 100, "no state cost at delta 0");
}

/*
 * T_exec: the expected prompt's prefill at each node's own rate, with a
 * size class or the plan's mean: a faster node wins unless its queue
 * costs more.
 */
static void test_exec_prefill(void)
{
	struct idn_receipt rc;
	struct idn_sel out;
	struct idn_plan *pl;
	struct req r;

	env_reset();
	node_up(1)->tok_ns = 2000;
	node_up(2)->tok_ns = 500;	/* four times faster at prefill */
	pl = plan_add(CAP_A, IDN_ANY, IDN_ANY, 0);
	cand_add(pl, 1, 300);
	cand_add(pl, 2, 300);
	r = req_default(CAP_A);
	ASSERT_EQ(sel(&r, &out, &rc), IDN_V_NEW, "unknown size");
	ASSERT_EQ(rc.cand[0].cost, rc.cand[1].cost, "no tokens: same J");
	pl->prompt_tokens = 4000;
	ASSERT_EQ(sel(&r, &out, &rc), IDN_V_NEW, "mean prompt");
	ASSERT_EQ(rc.cand[0].cost, 100 + 300 + 8000, "4000 tokens at 2000 ns");
	ASSERT_EQ(rc.cand[1].cost, 100 + 300 + 2000, "4000 tokens at 500 ns");
	ASSERT_EQ(out.node, 2, "the faster node");
	/* its queue (7 ms at 500 ns) outweighs the speed: 9400 > 8400 */
	M.nodes[2].pending_tokens = 14000;
	ASSERT_EQ(sel(&r, &out, NULL), IDN_V_NEW, "loaded fast node");
	ASSERT_EQ(out.node, 1, "the slow idle node");
	/* a size class replaces the mean: 256 tokens, 512 vs 128 us */
	r.d.flags |= IDN_DF_SIZE;
	r.d.size_class = 0;
	ASSERT_EQ(sel(&r, &out, &rc), IDN_V_NEW, "sized");
	ASSERT_EQ(rc.cand[0].cost, 100 + 300 + 512, "256 tokens at 2000 ns");
}

static void test_fallback_edges(void)
{
	struct idn_sel out;
	struct idn_plan *pl;
	struct req r;

	/* fallback to itself is not looked up twice */
	env_reset();
	node_up(1)->max_queue = 1;
	M.nodes[1].queue_depth = 1;
	pl = plan_add(CAP_A, IDN_ANY, IDN_ANY, 0);
	pl->fallback_cap = CAP_A;
	cand_add(pl, 1, 10);
	r = req_default(CAP_A);
	M.plan_lookups = 0;
	ASSERT_EQ(sel(&r, &out, NULL), IDN_V_OVERFLOW, "self fallback");
	ASSERT_EQ(M.plan_lookups, 2, "exact + wildcard, no fallback lookup");

	/* fallback cap without a plan: straight to step 3 */
	pl->fallback_cap = CAP_B;
	ASSERT_EQ(sel(&r, &out, NULL), IDN_V_OVERFLOW, "missing fallback plan");

	/* fallback plan uses the request's tier/policy, then wildcard */
	pl = plan_add(CAP_B, 5, 0, 0);
	cand_add(pl, 2, 10);
	node_up(2);
	ASSERT_EQ(sel(&r, &out, NULL), IDN_V_FALLBACK, "fallback exact key");
	ASSERT_EQ(out.node, 2, "fallback node");
	ASSERT_EQ(out.cap, CAP_B, "fallback cap");

	/* the fallback plan filters by its own variant */
	env_reset();
	node_up(1)->max_queue = 1;
	M.nodes[1].queue_depth = 1;
	node_up(2);
	pl = plan_add(CAP_A1, IDN_ANY, IDN_ANY, 0);
	pl->fallback_cap = CAP_A2;
	cand_add(pl, 1, 10)->variant = 1;
	pl = plan_add(CAP_A2, IDN_ANY, IDN_ANY, 0);
	cand_add(pl, 2, 10)->variant = 1;	/* wrong variant for A2 */
	r = req_default(CAP_A1);
	ASSERT_EQ(sel(&r, &out, NULL), IDN_V_OVERFLOW, "fallback variant filtered");
	M.plans[1].cand[0].variant = 2;
	ASSERT_EQ(sel(&r, &out, NULL), IDN_V_FALLBACK, "fallback variant ok");
}

/* 16 candidates, the last one cheapest; n_cand bounds the walk. */
static void test_sixteen(void)
{
	struct idn_receipt rc;
	struct idn_sel out;
	struct idn_plan *pl;
	struct req r;

	env_reset();
	pl = plan_add(CAP_A, IDN_ANY, IDN_ANY, 0);
	for (int i = 0; i < IDN_MAX_CAND; i++) {
		node_up(i + 1);
		cand_add(pl, i + 1, 1000 - i * 10);
	}
	r = req_default(CAP_A);
	sel(&r, &out, &rc);
	ASSERT_EQ(out.node, 16, "last of 16");
	ASSERT_EQ(out.n_rc, 16, "16 receipt entries");
	pl->n_cand = 15;
	sel(&r, &out, NULL);
	ASSERT_EQ(out.node, 15, "n_cand 15 ignores the 16th");
	pl->n_cand = 200;	/* corrupt: clamped to IDN_MAX_CAND */
	sel(&r, &out, &rc);
	ASSERT_EQ(out.node, 16, "n_cand clamped");
	ASSERT_EQ(out.n_rc, 16, "receipt clamped");
	pl->n_cand = 0;
	ASSERT_EQ(sel(&r, &out, NULL), IDN_V_MISS_REJECT, "empty plan: miss");
}

int main(void)
{
	tap_plan(0);
	TAP_RUN(test_cost_by_hand);
	TAP_RUN(test_div1000_exact);
	TAP_RUN(test_cost_saturates);
	TAP_RUN(test_wan_cost);
	TAP_RUN(test_hard_filters);
	TAP_RUN(test_filters_fail_closed);
	TAP_RUN(test_plan_lookup);
	TAP_RUN(test_tie_break);
	TAP_RUN(test_min_cost_and_affinity);
	TAP_RUN(test_affinity_family_switch);
	TAP_RUN(test_ladder);
	TAP_RUN(test_ladder_slo_budget);
	TAP_RUN(test_slo_shed);
	TAP_RUN(test_charge_spreads_burst);
	TAP_RUN(test_charge_bounded);
	TAP_RUN(test_charge_atomic);
	TAP_RUN(test_charge_fallback);
	TAP_RUN(test_others_estimate);
	TAP_RUN(test_state_cost);
	TAP_RUN(test_exec_prefill);
	TAP_RUN(test_fallback_edges);
	TAP_RUN(test_sixteen);
	return tap_done();
}
