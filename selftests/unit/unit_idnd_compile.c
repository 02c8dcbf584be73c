// SPDX-License-Identifier: GPL-2.0
/*
 * unit_idnd_compile.c - idnd's plan compiler (ctl/idnd/model.c,
 * idnd_plans_build()) with the dataplane's own selection (bpf/lib/select.h)
 * run over the plans it emits: policy classes are hard constraints of
 * their (cap, tier, policy) plans and not of the (cap, any, any) default;
 * a request with a class's policy never selects an excluded node, also for
 * a constraint the dataplane cannot see itself (allowed domains with scope
 * any); a class no node satisfies fails closed; the fallback of a tier is
 * a cheaper variant that serves it; plans equal to the default are not
 * emitted; a class's "tiers" bounds its entries; over IDN_MAX_PLANS the
 * compile fails with -ENOSPC; plans carry the capability's SLO, shed tier
 * and mean prompt (defaults when not given), so SLO shedding and the
 * router's self-accounting are on by default; the node entries a router
 * gets carry T_net from its own region (-R). model.c is included; what it calls of the
 * rest of idnd and libidn is stubbed below (no maps, no store, no etcd).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "tap.h"
#include "../../ctl/idnd/model.c"

IDN_ASSERT_ABI();

struct idnd D;

/* ---- stubs of what model.c calls elsewhere ---- */
double idnd_now(void) { return 0; }
void idnd_orders_diff(const struct d_place *o, int no, const struct d_place *n, int nn) {}
int idnd_store_gen(uint32_t gen) { return 0; }
int idnd_dist_publish(const struct idn_plan_op *ops, int n_ops, uint32_t gen) { return 0; }
/* dist.c: what the leader would write to etcd for the watchers' routers */
static struct idnd_aff_seed pub_seeds[IDND_AFF_SEEDS];
static size_t n_pub_seeds;
void idnd_dist_aff_seeds(const struct idnd_aff_seed *s, size_t n)
{
	n_pub_seeds = n;
	memcpy(pub_seeds, s, n * sizeof(*s));
}
/* fed.c: no peer offers anything here (test_fed.sh covers remote candidates) */
int idnd_fed_cands(const struct d_cap *c, const struct d_policy *pol, struct idn_plan *pl)
{
	return 0;
}
bool idnd_fed_any(uint32_t label) { return false; }
void idnd_audit(const char *who, const char *method, const char *what, unsigned int status,
		const char *body, size_t len) {}
char *idn_fmt_plan_key(const struct idn_plan_key *k, char *buf, size_t len)
{
	snprintf(buf, len, "cap %u/%u", IDN_CAP_CLASS(k->cap), IDN_CAP_VARIANT(k->cap));
	return buf;
}
int idn_config_get(struct idn_maps *m, struct idn_config *cfg) { return -ENOSYS; }
int idn_plan_list(struct idn_maps *m, int slot, struct idn_plan_entry **out) { return -ENOSYS; }
int idn_plan_commit(struct idn_maps *m, const struct idn_plan_op *ops, int n, __u32 *gen)
{
	return -ENOSYS;
}
int idn_node_get(struct idn_maps *m, __u32 id, struct idn_node *n) { return -ENOSYS; }
__u32 idn_tick_now(void) { return 1000; }
static struct idn_node nodes[IDN_MAX_NODES];
/* idnd_node_push() writes the test's userspace dataplane */
int idn_node_put(struct idn_maps *m, __u32 id, const struct idn_node *n)
{
	if (id >= IDN_MAX_NODES)
		return -EINVAL;
	nodes[id] = *n;
	return 0;
}
/* idnd_aff_seeds() writes the test's affinity table: new entries only */
static struct { __u64 token; __u32 cls, node; } aff[64];
static int n_aff;
int idn_aff_seed(struct idn_maps *m, __u64 token, __u32 cls, __u32 node)
{
	for (int i = 0; i < n_aff; i++)
		if (aff[i].token == token && aff[i].cls == cls)
			return -EEXIST;
	if (n_aff == 64)
		return -ENOSPC;
	aff[n_aff].token = token;
	aff[n_aff].cls = cls;
	aff[n_aff++].node = node;
	return 0;
}

static int aff_node(__u64 token, __u32 cls)
{
	for (int i = 0; i < n_aff; i++)
		if (aff[i].token == token && aff[i].cls == cls)
			return aff[i].node;
	return -1;
}
static char errbuf[256];
const char *idn_errmsg(void) { return errbuf; }
int idn_err(int err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(errbuf, sizeof(errbuf), fmt, ap);
	va_end(ap);
	return err;
}
void idn_log(enum idn_log_level lvl, const char *fmt, ...) {}

/* ---- a userspace dataplane over the compiled plans ---- */
static struct idn_plan_op *ops;
static int n_ops;

static const struct idn_node *env_node(void *priv, __u32 id)
{
	return id < IDN_MAX_NODES ? &nodes[id] : NULL;
}

static const struct idn_plan *env_plan(void *priv, const struct idn_plan_key *k)
{
	for (int i = 0; i < n_ops; i++)
		if (ops[i].key.cap == k->cap && ops[i].key.tier == k->tier &&
		    ops[i].key.policy == k->policy)
			return &ops[i].plan;
	return NULL;
}

static struct idn_env env = { env_node, env_plan, NULL };

static struct idn_sel sel(__u32 cap, __u8 tier, __u8 policy, __u64 token)
{
	struct idn_sel_in in = {
		.token = token, .cap = cap, .aff_node = IDN_NODE_NONE, .tier = tier,
		.policy = policy, .size_class = IDN_SIZE_NONE, .family = IDN_AF_INET,
	};
	struct idn_sel out;

	idn_select(&env, &in, &out, NULL);
	return out;
}

static const struct idn_plan *plan_of(__u32 cap, __u8 tier, __u8 policy)
{
	struct idn_plan_key k = { .cap = cap, .tier = tier, .policy = policy };

	return env_plan(NULL, &k);
}

static bool has_node(const struct idn_plan *p, __u32 node)
{
	for (int i = 0; p && i < p->n_cand; i++)
		if (p->cand[i].node == node)
			return true;
	return false;
}

/* ---- registry set-up ---- */
static void reset(void)
{
	free(D.caps);
	free(D.place);
	free(ops);
	ops = NULL;
	n_ops = 0;
	memset(&D, 0, sizeof(D));
	memset(nodes, 0, sizeof(nodes));
	for (uint32_t p = 0; p < IDND_MAX_POLICIES; p++)
		idnd_policy_del(p);
}

/* node id: registry entry and dataplane entry (locator, health up) */
static void node(uint32_t id, uint8_t trust, bool conf, uint16_t domain, uint32_t net_us)
{
	D.nodes[id] = (struct d_node){ .used = true, .id = id, .mem_gb = 80, .trust = trust,
				       .confidential = conf, .domain = domain, .up = true,
				       .net_us = net_us };
	snprintf(D.nodes[id].addr4, sizeof(D.nodes[id].addr4), "10.0.0.%u", id);
	nodes[id] = (struct idn_node){ .addr4 = htonl(0x0a000000 | id), .trust = trust,
				       .health = IDN_HEALTH_UP, .domain = domain, .net_us = net_us,
				       .flags = IDN_NODE_F_VALID | IDN_NODE_F_LOC4 |
						(conf ? IDN_NODE_F_CONFIDENTIAL : 0) };
}

static void cap(uint32_t label, double mem, uint8_t tier)
{
	struct d_cap c = { .label = label, .mem_gb = mem, .tier = tier, .latency_us = 1000,
			   .version = 1 };

	snprintf(c.name, sizeof(c.name), "c%u", label);
	idnd_cap_put(&c);
}

static void place(uint32_t label, uint32_t node_id)
{
	D.place = realloc(D.place, (D.n_place + 1) * sizeof(*D.place));
	D.place[D.n_place++] = (struct d_place){ label, node_id };
}

static int policy(const char *json)
{
	json_object *o = json_tokener_parse(json);
	struct d_policy p;
	char err[256];
	int e = o ? idnd_policy_from_json(o, &p, err, sizeof(err)) : -EINVAL;

	json_object_put(o);
	if (!e)
		idnd_policy_put(&p);
	return e ? e : p.id;
}

static int build(void)
{
	free(ops);
	ops = NULL;
	n_ops = idnd_plans_build(&ops);
	return n_ops;
}

/* node 1: trusted, confidential, domain 1, slow; node 2: trust 3, domain 2, fast */
static void two_nodes_cap7(void)
{
	reset();
	node(1, 6, true, 1, 3000);
	node(2, 3, false, 2, 100);
	cap(IDN_CAP(7, 0), 30, 0);
	place(IDN_CAP(7, 0), 1);
	place(IDN_CAP(7, 0), 2);
}

static void test_policy_plans(void)
{
	int id;

	two_nodes_cap7();
	id = policy("{\"name\":\"secure\",\"min_trust\":5}");
	if (!ASSERT_EQ(id, IDN_POLICY(5, 0, 0), "policy id is its byte"))
		return;
	if (!ASSERT_EQ(build(), 17, "default + 16 tiers of policy 5"))
		return;
	ASSERT_TRUE(has_node(plan_of(IDN_CAP(7, 0), IDN_ANY, IDN_ANY), 1) &&
		    has_node(plan_of(IDN_CAP(7, 0), IDN_ANY, IDN_ANY), 2), "default keeps both");
	for (int t = 0; t <= IDN_TIER_MAX; t++) {
		const struct idn_plan *p = plan_of(IDN_CAP(7, 0), t, id);

		if (!ASSERT_TRUE(p && p->n_cand == 1 && p->cand[0].node == 1, "policy plan"))
			return;
	}
	/* policy 0 (no constraint) is the default: no entries of its own */
	ASSERT_TRUE(!plan_of(IDN_CAP(7, 0), 1, 0), "no (7/0, 1, 0) entry");
	/* sorted by key, as idnd_compile's merge with the maps needs */
	for (int i = 1; i < n_ops; i++)
		if (!ASSERT_TRUE(key_cmp(&ops[i - 1].key, &ops[i].key) < 0, "sorted"))
			return;
}

static void test_requests_never_reach_excluded(void)
{
	int secure, dom1, conf, n2 = 0;

	two_nodes_cap7();
	secure = policy("{\"name\":\"secure\",\"min_trust\":5}");
	conf = policy("{\"name\":\"conf\",\"privacy\":\"confidential\"}");
	/* tenant privacy, scope any: the dataplane checks no domain for it */
	dom1 = policy("{\"name\":\"dom1\",\"privacy\":\"tenant\",\"domains\":[1]}");
	if (!ASSERT_TRUE(build() > 0, "build"))
		return;
	for (__u64 tok = 1; tok <= 500; tok++) {
		int pols[3] = { secure, conf, dom1 };

		for (int k = 0; k < 3; k++) {
			struct idn_sel s = sel(IDN_CAP(7, 0), tok % 16, pols[k], tok * 7919);

			if (!ASSERT_EQ(s.node, 1, "policy request on node 1"))
				return;
		}
		n2 += sel(IDN_CAP(7, 0), tok % 16, 0, tok * 7919).node == 2;
	}
	ASSERT_EQ(n2, 500, "default requests take the cheaper node 2");
	/* without its compiled plans, dom1's requests would reach node 2 */
	idnd_policy_del(dom1);
	build();
	ASSERT_EQ(sel(IDN_CAP(7, 0), 3, dom1, 42).node, 2, "domains are the compiler's");
}

static void test_fail_closed(void)
{
	int id;
	struct idn_sel s;

	two_nodes_cap7();
	id = policy("{\"name\":\"nobody\",\"min_trust\":7}");
	build();
	ASSERT_TRUE(plan_of(IDN_CAP(7, 0), 9, id) && !plan_of(IDN_CAP(7, 0), 9, id)->n_cand,
		    "empty plan, not none");
	s = sel(IDN_CAP(7, 0), 9, id, 1);
	ASSERT_EQ(s.node, IDN_NODE_NONE, "no node");
	ASSERT_EQ(s.verdict, IDN_V_MISS_REJECT, "rejected");
}

static void test_tier_fallback(void)
{
	struct idn_sel s;

	reset();
	node(1, 6, false, 0, 100);
	node(2, 6, false, 0, 100);
	node(3, 6, false, 0, 100);
	cap(IDN_CAP(5, 1), 30, 4);	/* big, quality tier 4 */
	cap(IDN_CAP(5, 2), 10, 2);	/* small, tier 2 */
	cap(IDN_CAP(5, 3), 5, 0);	/* tiny, tier 0 */
	place(IDN_CAP(5, 1), 1);
	place(IDN_CAP(5, 2), 2);
	place(IDN_CAP(5, 3), 3);
	build();
	ASSERT_EQ(plan_of(IDN_CAP(5, 1), IDN_ANY, IDN_ANY)->fallback_cap, IDN_CAP(5, 2),
		  "default: best cheaper variant");
	ASSERT_EQ(plan_of(IDN_CAP(5, 2), IDN_ANY, IDN_ANY)->fallback_cap, IDN_CAP(5, 3),
		  "5/2 falls back to 5/3");
	ASSERT_TRUE(!plan_of(IDN_CAP(5, 1), 2, 0), "tier 2: same as the default, no entry");
	ASSERT_TRUE(plan_of(IDN_CAP(5, 1), 3, 0) &&
		    !plan_of(IDN_CAP(5, 1), 3, 0)->fallback_cap, "tier 3: no fallback");
	ASSERT_EQ(n_ops, 3 + 13 + 15, "defaults + 5/1 tiers 3-15 + 5/2 tiers 1-15");
	/* 5/1's node stops taking flows: tier 1 falls back, tier 3 is not served */
	nodes[1].health = IDN_HEALTH_DOWN;
	s = sel(IDN_CAP(5, 1), 1, 0, 5);
	ASSERT_TRUE(s.verdict == IDN_V_FALLBACK && s.node == 2 && s.cap == IDN_CAP(5, 2),
		    "tier 1 served by the tier-2 variant");
	s = sel(IDN_CAP(5, 1), 3, 0, 5);
	ASSERT_EQ(s.node, IDN_NODE_NONE, "tier 3 not served by a lower quality");
}

static void test_tiers_and_budget(void)
{
	int n1, n2;

	reset();
	node(1, 6, false, 0, 100);
	node(2, 2, false, 0, 100);
	for (uint32_t c = 1; c <= 1100; c++) {
		cap(IDN_CAP(c, 0), 1, 0);
		place(IDN_CAP(c, 0), 1);
		place(IDN_CAP(c, 0), 2);
	}
	policy("{\"name\":\"t5\",\"min_trust\":5}");
	n1 = build();
	ASSERT_EQ(n1, -ENOSPC, "1100 caps x 17 entries > IDN_MAX_PLANS");
	ASSERT_TRUE(strstr(idn_errmsg(), "tiers") != NULL, "the message names the remedy");
	policy("{\"name\":\"t5\",\"min_trust\":5,\"tiers\":[1,2]}");
	n2 = build();
	ASSERT_EQ(n2, 1100 * 3, "tiers [1, 2]: 3 entries per capability");
	ASSERT_TRUE(plan_of(IDN_CAP(9, 0), 2, 5) && !plan_of(IDN_CAP(9, 0), 3, 5), "tier 2 only");
}

static void test_policy_json(void)
{
	reset();
	ASSERT_EQ(policy("{\"name\":\"a\",\"min_trust\":5,\"id\":5}"), 5, "id that matches");
	ASSERT_EQ(policy("{\"name\":\"a\",\"min_trust\":5,\"id\":6}"), -EINVAL, "id mismatch");
	ASSERT_EQ(policy("{\"name\":\"a\",\"colour\":1}"), -EINVAL, "unknown field");
	ASSERT_EQ(policy("{\"min_trust\":1}"), -EINVAL, "name required");
	ASSERT_EQ(policy("{\"name\":\"a\",\"tiers\":[16]}"), -EINVAL, "tier out of range");
	ASSERT_EQ(policy("{\"name\":\"a\",\"scope\":\"plan\",\"privacy\":\"hw-bound\"}"),
		  IDN_POLICY(0, 3, 2), "scope and privacy bits");
	ASSERT_EQ(idnd_policy_count(), 2, "two classes");
}

/* cap_json JSON: register a capability from its API body; 0 or -errno */
static int cap_json(const char *json, struct d_cap *c)
{
	json_object *o = json_tokener_parse(json);
	char err[256];
	int e = o ? idnd_cap_from_json(o, c, err, sizeof(err)) : -EINVAL;

	json_object_put(o);
	if (!e)
		idnd_cap_put(c);
	return e;
}

/*
 * A capability's TTFT objective, shed tier and mean prompt reach its plans,
 * with defaults (IDND_SLO_TTFT_MS, IDND_SHED_TIER, IDND_PROMPT_TOKENS) when
 * not given: at overload the dataplane sheds best-effort requests and
 * overflows higher tiers; every decision is charged the mean prompt.
 */
static void test_cap_routing_defaults(void)
{
	const struct idn_plan *p;
	struct idn_sel s;
	struct d_cap c;
	json_object *o;

	reset();
	node(1, 3, false, 0, 100);
	node(2, 3, false, 0, 100);
	ASSERT_OK(cap_json("{\"class\":11,\"name\":\"m\",\"resources\":{\"mem_gb\":10}}", &c),
		  "minimal capability");
	ASSERT_EQ(c.slo_ttft_ms, 2000, "default TTFT objective 2 s");
	ASSERT_EQ(c.shed_tier, 1, "default shed tier");
	ASSERT_EQ(c.prompt_tokens, 1024, "default mean prompt");
	ASSERT_EQ(c.wan_ns_per_byte, IDND_WAN_NS_PER_BYTE, "default WAN price");
	place(IDN_CAP(11, 0), 1);
	place(IDN_CAP(11, 0), 2);
	ASSERT_TRUE(build() > 0, "compiled");
	p = plan_of(IDN_CAP(11, 0), IDN_ANY, IDN_ANY);
	if (!ASSERT_TRUE(p != NULL, "default plan"))
		return;
	ASSERT_EQ(p->slo_us, 2000000, "plan SLO in us");
	ASSERT_EQ(p->shed_tier, 1, "plan shed tier");
	ASSERT_EQ(p->prompt_tokens, 1024, "plan mean prompt");

	/* the dataplane over these plans: charged, then shed at overload */
	for (int i = 1; i <= 2; i++)
		nodes[i].tok_ns = 1000;
	s = sel(IDN_CAP(11, 0), 0, 0, 1);
	ASSERT_EQ(s.verdict, IDN_V_NEW, "served");
	ASSERT_EQ(s.charge, 1024, "charged the mean prompt");
	nodes[1].pending_tokens = nodes[2].pending_tokens = 3000000;	/* 3 s of work */
	s = sel(IDN_CAP(11, 0), 0, 0, 1);
	ASSERT_EQ(s.verdict, IDN_V_SHED, "tier 0 shed at overload");
	s = sel(IDN_CAP(11, 0), 1, 0, 1);
	ASSERT_EQ(s.verdict, IDN_V_OVERFLOW, "tier 1 overflows");

	/* given values, and their JSON round trip */
	ASSERT_OK(cap_json("{\"class\":12,\"name\":\"n\",\"resources\":{\"mem_gb\":10},"
			   "\"prompt_tokens\":9000,\"slo_ttft_ms\":0,\"shed_tier\":16,"
			   "\"wan_ns_per_byte\":777}", &c),
		  "capability with routing fields");
	o = idnd_cap_to_json(&c, false);
	ASSERT_OK(idnd_cap_from_json(o, &c, errbuf, sizeof(errbuf)), "round trip");
	json_object_put(o);
	ASSERT_EQ(c.prompt_tokens, 9000, "prompt_tokens kept");
	ASSERT_EQ(c.slo_ttft_ms, 0, "no SLO kept");
	ASSERT_EQ(c.shed_tier, 16, "shed every tier kept");
	ASSERT_EQ(c.wan_ns_per_byte, 777, "WAN price kept");
	place(IDN_CAP(12, 0), 1);
	build();
	p = plan_of(IDN_CAP(12, 0), IDN_ANY, IDN_ANY);
	if (ASSERT_TRUE(p != NULL, "plan of 12"))
		ASSERT_TRUE(p->slo_us == 0 && p->shed_tier == 16 && p->prompt_tokens == 9000 &&
			    p->wan_ns_per_byte == 777, "plan fields from the capability");
	ASSERT_EQ(cap_json("{\"class\":13,\"name\":\"o\",\"resources\":{\"mem_gb\":1},"
			   "\"prompt_tokens\":70000}", &c), -EINVAL, "prompt_tokens over 65535");
	ASSERT_EQ(cap_json("{\"class\":13,\"name\":\"o\",\"resources\":{\"mem_gb\":1},"
			   "\"shed_tier\":17}", &c), -EINVAL, "shed_tier over 16");
	ASSERT_EQ(cap_json("{\"class\":13,\"name\":\"o\",\"resources\":{\"mem_gb\":1},"
			   "\"wan_ns_per_byte\":100000001}", &c), -EINVAL, "WAN price over 0.1 s");
}

/*
 * Per-region net cost: the router of idnd -R r gets T_net from region r in
 * its node entries (a node's region_net_us[r], else net_us + the region
 * matrix's extra), so each router prefers the nodes of its own region.
 */
static void test_region_net(void)
{
	const struct idn_plan *p;
	json_object *o;
	struct d_node n;
	struct idn_sel s;

	reset();
	node(1, 3, false, 0, 100);
	node(2, 3, false, 0, 100);
	D.nodes[2].region = 1;
	/* the agents' round trips from region 0's and region 1's routers */
	D.nodes[1].region_net_us[0] = 200;
	D.nodes[1].region_net_us[1] = 16000;
	D.nodes[2].region_net_us[0] = 16000;
	D.nodes[2].region_net_us[1] = 200;
	cap(IDN_CAP(14, 0), 10, 0);
	idnd_cap_find(IDN_CAP(14, 0))->wan_ns_per_byte = IDND_WAN_NS_PER_BYTE;
	idnd_cap_find(IDN_CAP(14, 0))->prompt_tokens = 1024;
	place(IDN_CAP(14, 0), 1);
	place(IDN_CAP(14, 0), 2);
	ASSERT_TRUE(build() > 0, "compiled");
	ASSERT_EQ(idnd_node_net_us(&D.nodes[1], 0), 200, "measured from region 0");
	ASSERT_EQ(idnd_node_net_us(&D.nodes[2], 0), 16000, "across the WAN");
	ASSERT_EQ(idnd_node_net_us(&D.nodes[2], 1), 200, "from its own region");
	ASSERT_EQ(idnd_node_net_us(&D.nodes[1], 3), 100, "not measured: net_us");

	/* the router in region 0: node 1 near, node 2 across the WAN */
	D.have_maps = true;
	D.loop_region = 0;
	ASSERT_OK(idnd_node_push(&D.nodes[1]), "push 1");
	ASSERT_OK(idnd_node_push(&D.nodes[2]), "push 2");
	ASSERT_TRUE(nodes[1].net_us == 200 && nodes[2].net_us == 16000, "region 0's entries");
	ASSERT_TRUE(!(nodes[1].flags & IDN_NODE_F_WAN) && (nodes[2].flags & IDN_NODE_F_WAN),
		    "region 0: node 2's region is across the WAN");
	for (uint64_t t = 1; t <= 8; t++)
		ASSERT_EQ(sel(IDN_CAP(14, 0), 0, 0, t).node, 1, "region 0 routes to node 1");
	/* the router in region 1 */
	D.loop_region = 1;
	idnd_node_push(&D.nodes[1]);
	idnd_node_push(&D.nodes[2]);
	ASSERT_TRUE(nodes[1].net_us == 16000 && nodes[2].net_us == 200, "region 1's entries");
	for (uint64_t t = 1; t <= 8; t++)
		ASSERT_EQ(sel(IDN_CAP(14, 0), 0, 0, t).node, 2, "region 1 routes to node 2");
	ASSERT_TRUE((nodes[1].flags & IDN_NODE_F_WAN) && !(nodes[2].flags & IDN_NODE_F_WAN),
		    "region 1: node 1 across the WAN");
	/*
	 * T_wan at idnd's default price: 50 ms of queue on node 2 is cheaper
	 * than sending the mean prompt's 4096 bytes to node 1 (102.4 ms);
	 * with the price at 0 the 16 ms round trip wins.
	 */
	p = plan_of(IDN_CAP(14, 0), IDN_ANY, IDN_ANY);
	if (ASSERT_TRUE(p != NULL, "plan of 14"))
		ASSERT_EQ(p->wan_ns_per_byte, IDND_WAN_NS_PER_BYTE, "the capability's WAN price");
	nodes[1].tok_ns = nodes[2].tok_ns = 1000;
	nodes[2].pending_tokens = 50000;
	ASSERT_EQ(sel(IDN_CAP(14, 0), 0, 0, 1).node, 2, "priced WAN bytes stay in region");
	idnd_cap_find(IDN_CAP(14, 0))->wan_ns_per_byte = 0;
	ASSERT_TRUE(build() > 0, "compiled, free WAN");
	p = plan_of(IDN_CAP(14, 0), IDN_ANY, IDN_ANY);
	if (ASSERT_TRUE(p != NULL, "plan of 14, free WAN"))
		ASSERT_EQ(p->wan_ns_per_byte, 0, "price from the capability");
	ASSERT_EQ(sel(IDN_CAP(14, 0), 0, 0, 1).node, 1, "free WAN bytes: the shorter wait");
	/* load still trades against distance: node 2 with 2 s of queued work */
	nodes[2].pending_tokens = 2000000;
	nodes[1].tok_ns = nodes[2].tok_ns = 1000;
	s = sel(IDN_CAP(14, 0), 0, 0, 1);
	ASSERT_EQ(s.node, 1, "a queue over the WAN's cost goes remote");
	/* nothing measured: every router gets net_us, as before */
	memset(D.nodes[2].region_net_us, 0, sizeof(D.nodes[2].region_net_us));
	idnd_node_push(&D.nodes[2]);
	ASSERT_EQ(nodes[2].net_us, 100, "unmeasured: net_us");

	/* a measured figure per region wins, and round-trips through JSON */
	o = json_tokener_parse("{\"id\":5,\"addr4\":\"10.0.0.5\",\"mem_gb\":80,\"region\":1,"
			       "\"net_us\":100,\"region_net_us\":[30000,0,45000]}");
	ASSERT_OK(idnd_node_from_json(o, &n, errbuf, sizeof(errbuf)), "region_net_us parsed");
	json_object_put(o);
	ASSERT_EQ(idnd_node_net_us(&n, 0), 30000, "region 0: measured");
	ASSERT_EQ(idnd_node_net_us(&n, 1), 100, "region 1: not given, net_us");
	ASSERT_EQ(idnd_node_net_us(&n, 2), 45000, "region 2: measured");
	ASSERT_EQ(idnd_node_net_us(&n, 4), 100, "region 4: net_us");
	o = idnd_node_to_json(&n, false);
	memset(&n, 0, sizeof(n));
	ASSERT_OK(idnd_node_from_json(o, &n, errbuf, sizeof(errbuf)), "round trip");
	json_object_put(o);
	ASSERT_TRUE(n.region_net_us[0] == 30000 && n.region_net_us[2] == 45000 &&
		    !n.region_net_us[3], "kept");
	o = json_tokener_parse("{\"id\":5,\"addr4\":\"10.0.0.5\",\"mem_gb\":80,"
			       "\"region_net_us\":[1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17]}");
	ASSERT_EQ(idnd_node_from_json(o, &n, errbuf, sizeof(errbuf)), -EINVAL, "17 regions");
	json_object_put(o);
	o = json_tokener_parse("{\"id\":5,\"addr4\":\"10.0.0.5\",\"mem_gb\":80,"
			       "\"region_net_us\":[-1]}");
	ASSERT_EQ(idnd_node_from_json(o, &n, errbuf, sizeof(errbuf)), -EINVAL, "negative");
	json_object_put(o);
	o = json_tokener_parse("{\"id\":5,\"addr4\":\"10.0.0.5\",\"mem_gb\":80,"
			       "\"region_net_us\":[\"5\"]}");
	ASSERT_EQ(idnd_node_from_json(o, &n, errbuf, sizeof(errbuf)), -EINVAL, "a string");
	json_object_put(o);
	D.have_maps = false;
}

/* a state summary with kv_prefix descriptors "TOKEN:BLOCKS:HITS" (TOKEN "-": none) */
static json_object *summary(const char *const *d)
{
	json_object *o = json_object_new_object(), *a = json_object_new_array();

	for (int i = 0; d[i]; i++) {
		json_object *x = json_object_new_object();
		char tok[17];
		unsigned b, h;

		sscanf(d[i], "%16[^:]:%u:%u", tok, &b, &h);
		json_object_object_add(x, "type", json_object_new_string("kv_prefix"));
		if (strcmp(tok, "-"))
			json_object_object_add(x, "token", json_object_new_string(tok));
		json_object_object_add(x, "root", json_object_new_string("00000000000000ff"));
		json_object_object_add(x, "blocks", json_object_new_int64(b));
		json_object_object_add(x, "hits", json_object_new_int64(h));
		json_object_object_add(x, "value_us", json_object_new_int64(h * 100));
		json_object_array_add(a, x);
	}
	json_object_object_add(o, "descriptors", a);
	return o;
}

/*
 * Affinity seeds: the popular prefix roots the agents hold (descriptors
 * naming a token whose blocks were each hit once or more on average) go
 * to the node holding most of it, for each capability class placed
 * there; a node that is down, an unpopular prefix or one without a token
 * seeds nothing; an entry the router has is kept. A seeded token's request
 * then goes to its holder: the others pay T_state.
 */
static void test_aff_seeds(void)
{
	static json_object *st[IDN_MAX_NODES];
	static const char *const s1[] = { "00000000000000a1:4:8", "00000000000000a4:4:1",
					   "-:9:90", NULL };
	static const char *const s2[] = { "00000000000000a1:2:2", "00000000000000a2:3:3",
					   "00000000000000a5:1:5", NULL };
	static const char *const s3[] = { "00000000000000a3:5:50", NULL };
	uint64_t seeded, kept;

	reset();
	n_aff = 0;
	node(1, 3, false, 0, 100);
	node(2, 3, false, 0, 100);
	node(3, 3, false, 0, 100);
	D.nodes[3].up = false;
	cap(IDN_CAP(15, 0), 10, 0);
	cap(IDN_CAP(16, 0), 10, 0);
	place(IDN_CAP(15, 0), 1);
	place(IDN_CAP(15, 0), 2);
	place(IDN_CAP(16, 0), 2);
	place(IDN_CAP(15, 0), 3);
	ASSERT_TRUE(build() > 0, "compiled");
	D.have_maps = true;
	st[1] = summary(s1);
	st[2] = summary(s2);
	st[3] = summary(s3);
	idn_aff_seed(NULL, 0xa5, 15, 1);	/* the router's own entry for a5 */
	ASSERT_EQ(idnd_aff_seeds(st), 4, "a1 (class 15), a2 and a5 (class 16), a2 (class 15)");
	ASSERT_EQ(aff_node(0xa1, 15), 1, "a1: the node holding most of it");
	ASSERT_EQ(aff_node(0xa2, 15), 2, "a2 on node 2, class 15");
	ASSERT_EQ(aff_node(0xa2, 16), 2, "and class 16");
	ASSERT_EQ(aff_node(0xa1, 16), -1, "class 16 is not on node 1");
	ASSERT_EQ(aff_node(0xa3, 15), -1, "a node that is down seeds nothing");
	ASSERT_EQ(aff_node(0xa4, 15), -1, "1 hit over 4 blocks: not popular");
	ASSERT_EQ(aff_node(0xa5, 15), 1, "the router's entry is kept");
	ASSERT_EQ(aff_node(0xa5, 16), 2, "a class it had none for: seeded");
	idnd_aff_seed_counts(&seeded, &kept);
	ASSERT_TRUE(seeded >= 3 && kept >= 1, "counted");
	/* the seeds for the etcd-fed routers: per token, holder and classes */
	ASSERT_EQ(n_pub_seeds, 3, "a1, a5, a2 published (most hits first)");
	ASSERT_TRUE(pub_seeds[0].token == 0xa1 && pub_seeds[0].node == 1 &&
		    pub_seeds[0].n_cls == 1 && pub_seeds[0].cls[0] == 15, "a1 -> 1, class 15");
	ASSERT_TRUE(pub_seeds[1].token == 0xa5 && pub_seeds[1].node == 2 &&
		    pub_seeds[1].n_cls == 2, "a5 -> 2, both classes: each router keeps its own");
	ASSERT_TRUE(pub_seeds[2].token == 0xa2 && pub_seeds[2].node == 2, "a2 -> 2");
	ASSERT_EQ(idnd_aff_seeds(st), 0, "again: nothing new");
	{	/* the same descriptors without JSON (make eval): the same entries */
		const struct idnd_aff_desc c[] = {
			{ 0xa1, 8, 4, 800, 1 }, { 0xa4, 1, 4, 100, 1 }, { 0, 90, 9, 9000, 1 },
			{ 0xa1, 2, 2, 200, 2 }, { 0xa2, 3, 3, 300, 2 }, { 0xa5, 5, 1, 500, 2 },
			{ 0xa3, 50, 5, 5000, 3 },
		};
		int before = n_aff;

		n_aff = 0;
		idn_aff_seed(NULL, 0xa5, 15, 1);
		ASSERT_EQ(idnd_aff_seeds_from(c, sizeof(c) / sizeof(c[0])), 4, "four again");
		ASSERT_EQ(n_aff, before, "as many entries");
		ASSERT_EQ(aff_node(0xa1, 15), 1, "a1 on node 1");
		ASSERT_EQ(aff_node(0xa2, 15), 2, "a2 on node 2, class 15");
		ASSERT_EQ(aff_node(0xa2, 16), 2, "and class 16");
		ASSERT_EQ(aff_node(0xa3, 15), -1, "node 3 is down");
		ASSERT_EQ(aff_node(0xa5, 16), 2, "a5, class 16");
	}
	/* the holder wins a new session's request through T_state */
	{
		struct idn_sel_in in = {
			.token = 0xa1, .cap = IDN_CAP(15, 0), .aff_node = aff_node(0xa1, 15),
			.size_class = 4, .family = IDN_AF_INET,
		};
		struct idn_sel out;

		nodes[1].tok_ns = nodes[2].tok_ns = 17000;
		nodes[2].pending_tokens = 0;
		nodes[1].pending_tokens = 2000;	/* 34 ms of queue, less than the recompute */
		idn_select(&env, &in, &out, NULL);
		ASSERT_EQ(out.node, 1, "seeded holder chosen over an idle node");
		in.aff_node = IDN_NODE_NONE;
		idn_select(&env, &in, &out, NULL);
		ASSERT_EQ(out.node, 2, "without the seed: the idle node");
	}
	{	/* a leader without maps of its own (-E, -P none) still publishes */
		int before = n_aff;

		D.have_maps = false;
		n_pub_seeds = 0;
		ASSERT_EQ(idnd_aff_seeds(st), 0, "no maps: nothing written");
		ASSERT_EQ(n_aff, before, "the table untouched");
		ASSERT_EQ(n_pub_seeds, 3, "the same three seeds published");
		D.nodes[1].up = D.nodes[2].up = false;
		ASSERT_EQ(idnd_aff_seeds(st), 0, "holders down");
		ASSERT_EQ(n_pub_seeds, 0, "none published: the routers' keys go");
	}
	for (int j = 1; j <= 3; j++)
		json_object_put(st[j]);
}

/*
 * idnd_plan_check(): every plan idnd compiles passes it (the watcher
 * writes what idnd publishes); each field out of range, as a forged etcd
 * value would carry it, is refused with why.
 */
/*
 * Two-stage (P/D) capabilities: the routers' plan (stage 1) leaves out
 * decode-only nodes, idnd_pd_stage2() takes the decode and both nodes (no
 * SLO, shed tier or fallback); other capabilities ignore roles; "pd" and
 * "role" parse, print and are refused when malformed.
 */
static void test_pd(void)
{
	struct idn_plan st2;
	struct d_node n;
	struct d_cap c;
	json_object *o;
	const struct idn_plan *p1;

	reset();
	node(1, 3, false, 0, 100);
	node(2, 3, false, 0, 100);
	node(3, 3, false, 0, 100);
	D.nodes[1].role = IDND_ROLE_PREFILL;
	D.nodes[2].role = IDND_ROLE_DECODE;	/* node 3: both */
	cap(IDN_CAP(9, 0), 10, 0);
	D.caps[0].pd = true;
	D.caps[0].slo_ttft_ms = 2000;
	cap(IDN_CAP(10, 0), 10, 0);		/* not P/D: every node */
	for (uint32_t i = 1; i <= 3; i++) {
		place(IDN_CAP(9, 0), i);
		place(IDN_CAP(10, 0), i);
	}
	ASSERT_TRUE(build() > 0, "plans built");
	p1 = plan_of(IDN_CAP(9, 0), IDN_ANY, IDN_ANY);
	ASSERT_TRUE(p1 && p1->n_cand == 2 && has_node(p1, 1) && has_node(p1, 3) &&
		    !has_node(p1, 2), "stage 1 (routers): prefill and both nodes");
	ASSERT_EQ(p1 ? p1->slo_us : 0, 2000000, "stage 1 keeps the TTFT objective");
	ASSERT_OK(idnd_pd_stage2(IDN_CAP(9, 0), NULL, &st2), "stage 2 compiled");
	ASSERT_TRUE(st2.n_cand == 2 && has_node(&st2, 2) && has_node(&st2, 3) &&
		    !has_node(&st2, 1), "stage 2: decode and both nodes");
	ASSERT_TRUE(!st2.slo_us && !st2.shed_tier && !st2.fallback_cap,
		    "stage 2: no SLO, no shedding, no fallback");
	ASSERT_EQ(st2.cand[0].exec_us, 1000, "costed as stage 1");
	{	/* idnd's pick for one request: idn_select() over stage 2, by J */
		struct idn_sel sel;

		D.nodes[2].tok_ns = D.nodes[3].tok_ns = 1000;
		D.nodes[2].pending = 200000;	/* node 2: 200 ms of prefill queued */
		ASSERT_EQ(idnd_pd_pick(IDN_CAP(9, 0), &st2, 42, IDN_SIZE_NONE, &sel), IDN_V_NEW,
			  "a pick");
		ASSERT_EQ(sel.node, 3, "the idle decode node (lower J)");
		D.nodes[2].pending = 0;
		D.nodes[3].pending = 200000;
		ASSERT_EQ(idnd_pd_pick(IDN_CAP(9, 0), &st2, 42, 2, &sel), IDN_V_NEW, "a pick");
		ASSERT_EQ(sel.node, 2, "... and the other way round");
		ASSERT_TRUE(!has_node(&st2, 1), "never a prefill-only node");
		D.nodes[3].pending = 0;
	}
	p1 = plan_of(IDN_CAP(10, 0), IDN_ANY, IDN_ANY);
	ASSERT_TRUE(p1 && p1->n_cand == 3, "a colocated capability: every node, roles aside");
	ASSERT_EQ(idnd_pd_stage2(IDN_CAP(10, 0), NULL, &st2), -ENOENT, "not P/D: no stage 2");
	ASSERT_EQ(idnd_pd_stage2(IDN_CAP(11, 0), NULL, &st2), -ENOENT, "unknown capability");
	D.nodes[2].up = false;			/* a down decode node leaves stage 2 */
	ASSERT_OK(idnd_pd_stage2(IDN_CAP(9, 0), NULL, &st2), "stage 2 again");
	ASSERT_TRUE(st2.n_cand == 1 && has_node(&st2, 3), "down decode node left out");

	/* JSON: "pd" on a capability, "role" on a node */
	o = json_tokener_parse("{\"class\":9,\"name\":\"x\",\"resources\":{\"mem_gb\":1},"
			       "\"pd\":true}");
	ASSERT_OK(idnd_cap_from_json(o, &c, errbuf, sizeof(errbuf)), "pd capability parsed");
	json_object_put(o);
	ASSERT_TRUE(c.pd, "pd set");
	o = idnd_cap_to_json(&c, false);
	ASSERT_TRUE(json_object_object_get_ex(o, "pd", NULL), "pd printed");
	json_object_put(o);
	o = json_tokener_parse("{\"class\":9,\"name\":\"x\",\"resources\":{\"mem_gb\":1},"
			       "\"pd\":1}");
	ASSERT_EQ(idnd_cap_from_json(o, &c, errbuf, sizeof(errbuf)), -EINVAL, "pd: a boolean");
	json_object_put(o);
	o = json_tokener_parse("{\"id\":4,\"addr4\":\"10.0.0.4\",\"mem_gb\":80,"
			       "\"role\":\"decode\"}");
	ASSERT_OK(idnd_node_from_json(o, &n, errbuf, sizeof(errbuf)), "role parsed");
	json_object_put(o);
	ASSERT_EQ(n.role, IDND_ROLE_DECODE, "decode");
	o = idnd_node_to_json(&n, false);
	memset(&n, 0, sizeof(n));
	ASSERT_OK(idnd_node_from_json(o, &n, errbuf, sizeof(errbuf)), "role round trip");
	json_object_put(o);
	ASSERT_EQ(n.role, IDND_ROLE_DECODE, "kept");
	o = json_tokener_parse("{\"id\":4,\"addr4\":\"10.0.0.4\",\"mem_gb\":80,"
			       "\"role\":\"oracle\"}");
	ASSERT_EQ(idnd_node_from_json(o, &n, errbuf, sizeof(errbuf)), -EINVAL, "unknown role");
	json_object_put(o);
}

static void test_plan_check(void)
{
	struct idn_plan_op good;
	char why[256];
	int id, bad = 0;

	two_nodes_cap7();
	cap(IDN_CAP(7, 1), 10, 0);
	place(IDN_CAP(7, 1), 2);
	id = policy("{\"name\":\"secure\",\"min_trust\":5}");
	if (!ASSERT_TRUE(id > 0 && build() > 0, "plans built"))
		return;
	for (int i = 0; i < n_ops; i++)
		if (!ASSERT_OK(idnd_plan_check(&ops[i].key, &ops[i].plan, why, sizeof(why)),
			       why))
			return;
	good = ops[0];
	for (int m = 0; m < 14; m++) {
		struct idn_plan_key k = good.key;
		struct idn_plan p = good.plan;

		switch (m) {
		case 0: k.cap = IDN_CAP(0, 0); break;
		case 1: k.tier = IDN_TIER_MAX + 1; break;
		case 2: k.pad = 1; break;
		case 3: p.n_cand = IDN_MAX_CAND + 1; break;
		case 4: p.cand[0].node = IDN_MAX_NODES; break;
		case 5: p.cand[1] = p.cand[0]; p.n_cand = 2; break;
		case 6: p.cand[0].variant ^= 1; break;
		case 7: p.cand[0].exec_us = IDND_PLAN_MAX_US + 1; break;
		case 8: p.cand[0].state_us = ~0U; break;
		case 9: p.cand[IDN_MAX_CAND - 1].node = 3; break;
		case 10: p.weight[IDN_W_LOAD] = IDND_PLAN_MAX_WEIGHT + 1; break;
		case 11: p.shed_tier = IDN_TIER_MAX + 2; break;
		case 12: p.fallback_cap = IDN_CAP(8, 0); break;
		case 13: p.slo_us = ~0U; break;
		}
		why[0] = 0;
		if (idnd_plan_check(&k, &p, why, sizeof(why)) == -EINVAL && why[0])
			bad++;
		else
			TAP_FAIL("mutation %d passed the check", m);
	}
	ASSERT_EQ(bad, 14, "every mutation refused with why");
}

/* a capability's "vips": parsed strictly, printed back, compared by idnd_vip_eq() */
static void test_cap_vips(void)
{
	static const char *const bad[] = {
		"[\"10.0.0.1\"]", "[\"10.0.0.1:0\"]", "[\"10.0.0.1:65536\"]",
		"[\"10.0.0.x:80\"]", "[\"2001:db8::1:80\"]", "[\"[2001:db8::1]\"]",
		"[\"10.0.0.1:80\",\"10.0.0.1:80\"]", "[1]", "\"10.0.0.1:80\"",
		"[\"a:1\",\"b:2\",\"c:3\",\"d:4\",\"e:5\"]", "[\"10.0.0.1:8x\"]",
	};
	struct idn_addr a4 = { .family = IDN_AF_INET }, a6 = { .family = IDN_AF_INET6 };
	char buf[512], vb[64];
	struct d_cap c;
	json_object *o, *v;

	snprintf(buf, sizeof(buf), "{\"class\":9,\"name\":\"x\",\"resources\":{\"mem_gb\":1},"
		 "\"vips\":[\"10.99.0.1:8000\",\"[2001:db8::7]:443\"]}");
	o = json_tokener_parse(buf);
	ASSERT_OK(idnd_cap_from_json(o, &c, errbuf, sizeof(errbuf)), "vips parsed");
	json_object_put(o);
	inet_pton(AF_INET, "10.99.0.1", &a4.addr[0]);
	inet_pton(AF_INET6, "2001:db8::7", a6.addr);
	ASSERT_TRUE(idnd_vip_eq(&c.vips[0], &a4, 8000), "IPv4 VIP and port");
	ASSERT_TRUE(!idnd_vip_eq(&c.vips[0], &a4, 8001), "another port");
	ASSERT_TRUE(idnd_vip_eq(&c.vips[1], &a6, 443), "IPv6 VIP and port");
	ASSERT_TRUE(!idnd_vip_eq(&c.vips[1], &a4, 443), "another family");
	ASSERT_TRUE(!idnd_vip_eq(&c.vips[2], &a4, 8000), "unused entry");
	ASSERT_TRUE(!strcmp(idnd_vip_fmt(&c.vips[1], vb, sizeof(vb)), "[2001:db8::7]:443"),
		    "IPv6 printed bracketed");
	o = idnd_cap_to_json(&c, false);
	ASSERT_TRUE(json_object_object_get_ex(o, "vips", &v) &&
		    !strcmp(json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN |
							   JSON_C_TO_STRING_NOSLASHESCAPE),
			    "[\"10.99.0.1:8000\",\"[2001:db8::7]:443\"]"), "vips printed");
	memset(&c, 0, sizeof(c));
	ASSERT_OK(idnd_cap_from_json(o, &c, errbuf, sizeof(errbuf)), "vips round trip");
	json_object_put(o);
	ASSERT_TRUE(idnd_vip_eq(&c.vips[1], &a6, 443), "kept");
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(buf, sizeof(buf), "{\"class\":9,\"name\":\"x\","
			 "\"resources\":{\"mem_gb\":1},\"vips\":%s}", bad[i]);
		o = json_tokener_parse(buf);
		ASSERT_EQ(o ? idnd_cap_from_json(o, &c, errbuf, sizeof(errbuf)) : 0, -EINVAL,
			  bad[i]);
		json_object_put(o);
	}
}

int main(void)
{
	tap_plan(0);
	TAP_RUN(test_policy_plans);
	TAP_RUN(test_requests_never_reach_excluded);
	TAP_RUN(test_fail_closed);
	TAP_RUN(test_tier_fallback);
	TAP_RUN(test_tiers_and_budget);
	TAP_RUN(test_policy_json);
	TAP_RUN(test_cap_routing_defaults);
	TAP_RUN(test_region_net);
	TAP_RUN(test_aff_seeds);
	TAP_RUN(test_plan_check);
	TAP_RUN(test_pd);
	TAP_RUN(test_cap_vips);
	reset();
	return tap_done();
}
