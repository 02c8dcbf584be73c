// SPDX-License-Identifier: GPL-2.0
/*
 * unit_ctl_plan.c - idn_plan_commit() and idn_route_get() against real
 * (unpinned) maps shaped like bpf/lib/maps.h: generations flip the slot,
 * the inactive slot holds exactly the next generation, deletes of absent
 * plans change nothing, and route get runs select.h over the maps.
 * Needs CAP_BPF (skips otherwise).
 */
#include <errno.h>
#include <unistd.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <bpf/bpf.h>

#include "tap.h"
#include "libidn.h"
#include "tables.h"

IDN_ASSERT_ABI();

static struct idn_maps M;
static bool have_maps;

static int mk(enum bpf_map_type t, const char *name, size_t k, size_t v, int n, __u32 flags)
{
	LIBBPF_OPTS(bpf_map_create_opts, o, .map_flags = flags);

	return bpf_map_create(t, name, k, v, n, &o);
}

static void setup(void)
{
	int fds[IDN_MAP__MAX];

	idn_maps_init(&M, "/nonexistent/idn-unit");
	fds[IDN_MAP_CONFIG] = mk(BPF_MAP_TYPE_ARRAY, "idn_config", 4, sizeof(struct idn_config), 1, 0);
	fds[IDN_MAP_VIPS] = mk(BPF_MAP_TYPE_HASH, "idn_vips", sizeof(struct idn_vip_key),
			       sizeof(struct idn_vip), 64, 0);
	/* the set-associative table, mapped by libidn (ctl/lib/tables.h) */
	fds[IDN_MAP_AFFINITY] = mk(BPF_MAP_TYPE_ARRAY, "idn_affinity", 4, sizeof(struct idn_aff_set),
				   IDN_AFF_ELEMS, BPF_F_MMAPABLE);
	fds[IDN_MAP_PLANS] = mk(BPF_MAP_TYPE_HASH, "idn_plans", sizeof(struct idn_plan_key),
				sizeof(struct idn_plan), 64, BPF_F_NO_PREALLOC);
	fds[IDN_MAP_NODES] = mk(BPF_MAP_TYPE_ARRAY, "idn_nodes", 4, sizeof(struct idn_node),
				IDN_MAX_NODES, 0);
	fds[IDN_MAP_NEXTHOPS] = mk(BPF_MAP_TYPE_ARRAY, "idn_nexthops", 4,
				   sizeof(struct idn_nexthop), 2 * IDN_MAX_NODES, 0);
	for (int i = 0; i < IDN_MAP__MAX; i++) {
		if (i != IDN_MAP_CONFIG && i != IDN_MAP_VIPS && i != IDN_MAP_AFFINITY &&
		    i != IDN_MAP_PLANS && i != IDN_MAP_NODES && i != IDN_MAP_NEXTHOPS)
			continue;
		if (fds[i] < 0)
			return;
		idn_maps_set_fd(&M, i, fds[i]);
	}
	have_maps = true;
}

static struct idn_plan_op plan_op(__u32 cap, int n_nodes, const __u32 *nodes)
{
	struct idn_plan_op op = {};

	op.key.cap = cap;
	op.key.tier = IDN_ANY;
	op.key.policy = IDN_ANY;
	for (int w = 0; w < IDN_W_MAX; w++)
		op.plan.weight[w] = 256;
	op.plan.n_cand = n_nodes;
	for (int i = 0; i < n_nodes; i++) {
		op.plan.cand[i].node = nodes[i];
		op.plan.cand[i].exec_us = 100;
	}
	return op;
}

static int count_slot(int slot, __u32 gen)
{
	struct idn_plan_entry *e = NULL;
	int n = idn_plan_list(&M, slot, &e), ok = n;

	for (int i = 0; i < n; i++)
		if (e[i].plan.generation != gen)
			ok = -1;
	free(e);
	return ok;
}

static void test_commit(void)
{
	static const __u32 a[] = { 1, 2 }, b[] = { 3 };
	struct idn_plan_op ops[2];
	struct idn_config cfg;
	__u32 gen = 0;

	if (!have_maps)
		return tap_skip("cannot create BPF maps (needs CAP_BPF)");

	ops[0] = plan_op(IDN_CAP(7, 0), 2, a);
	ASSERT_OK(idn_plan_commit(&M, ops, 1, &gen), "first commit");
	ASSERT_EQ(gen, 1, "generation 1");
	ASSERT_OK(idn_config_get(&M, &cfg), "config");
	ASSERT_EQ(cfg.active_slot, 1, "slot flipped to 1");
	ASSERT_EQ(cfg.generation, 1, "config generation");
	ASSERT_EQ(count_slot(1, 1), 1, "slot 1 holds gen 1");
	ASSERT_EQ(count_slot(0, 0), 0, "slot 0 empty");

	ops[0] = plan_op(IDN_CAP(8, 0), 1, b);
	ASSERT_OK(idn_plan_commit(&M, ops, 1, &gen), "second commit");
	ASSERT_EQ(gen, 2, "generation 2");
	ASSERT_OK(idn_config_get(&M, &cfg), "config");
	ASSERT_EQ(cfg.active_slot, 0, "slot flipped back to 0");
	ASSERT_EQ(count_slot(0, 2), 2, "slot 0: both plans, gen 2");
	ASSERT_EQ(count_slot(1, 1), 1, "old slot untouched");

	/* delete + replace in one generation; stale entry leaves slot 1 */
	ops[0] = plan_op(IDN_CAP(7, 0), 0, NULL);
	ops[0].del = true;
	ops[1] = plan_op(IDN_CAP(8, 0), 2, a);
	ASSERT_OK(idn_plan_commit(&M, ops, 2, &gen), "third commit");
	ASSERT_EQ(gen, 3, "generation 3");
	ASSERT_EQ(count_slot(1, 3), 1, "slot 1: only cap 8, gen 3");
	ASSERT_EQ(count_slot(0, 2), 2, "slot 0 still gen 2 (inactive)");

	/* deleting an absent plan fails and publishes nothing */
	ops[0] = plan_op(IDN_CAP(99, 0), 0, NULL);
	ops[0].del = true;
	ASSERT_EQ(idn_plan_commit(&M, ops, 1, &gen), -ENOENT, "delete absent");
	ASSERT_TRUE(strstr(idn_errmsg(), "no plan cap 99/0 (label 25344) tier any policy any"), "message");
	ASSERT_OK(idn_config_get(&M, &cfg), "config");
	ASSERT_EQ(cfg.generation, 3, "generation unchanged");
	ASSERT_EQ(cfg.active_slot, 1, "slot unchanged");

	/* a bad plan is refused before anything is written */
	ops[0] = plan_op(IDN_CAP(9, 0), 1, b);
	ops[0].plan.cand[0].node = IDN_MAX_NODES;
	ASSERT_EQ(idn_plan_commit(&M, ops, 1, &gen), -EINVAL, "bad node id");
	ASSERT_OK(idn_config_get(&M, &cfg), "config");
	ASSERT_EQ(cfg.generation, 3, "generation unchanged after bad plan");
}

/* ops apply in order through the index: delete then re-add, last write wins */
static void test_commit_ops(void)
{
	static const __u32 a[] = { 1, 2 }, b[] = { 3 };
	struct idn_plan_op ops[40];
	struct idn_plan_entry *e = NULL;
	struct idn_config cfg;
	__u32 gen = 0, g0;
	int n;

	if (!have_maps)
		return tap_skip("cannot create BPF maps (needs CAP_BPF)");
	ASSERT_OK(idn_config_get(&M, &cfg), "config");
	g0 = cfg.generation;
	/* 20 plans, one of them written twice (the second wins) */
	for (int i = 0; i < 20; i++)
		ops[i] = plan_op(IDN_CAP(100 + i, 0), 2, a);
	ops[20] = plan_op(IDN_CAP(105, 0), 1, b);
	ASSERT_OK(idn_plan_commit(&M, ops, 21, &gen), "20 plans");
	ASSERT_EQ(gen, g0 + 1, "one generation");
	n = idn_plan_list(&M, (int)(cfg.active_slot ^ 1), &e);
	ASSERT_TRUE(n >= 20, "all 20 in the new slot");
	for (int i = 0; i < n; i++)
		if (e[i].key.cap == IDN_CAP(105, 0))
			ASSERT_EQ(e[i].plan.n_cand, 1, "last write wins");
	free(e);
	/* delete, re-add, delete twice (the second fails: nothing written) */
	ops[0] = plan_op(IDN_CAP(101, 0), 0, NULL);
	ops[0].del = true;
	ops[1] = plan_op(IDN_CAP(101, 0), 1, b);
	ASSERT_OK(idn_plan_commit(&M, ops, 2, &gen), "delete then re-add");
	ops[1] = ops[0];
	ASSERT_EQ(idn_plan_commit(&M, ops, 2, &gen), -ENOENT, "double delete");
	ASSERT_OK(idn_config_get(&M, &cfg), "config");
	ASSERT_EQ(cfg.generation, g0 + 2, "double delete published nothing");
	/* remove all 20 again; the inactive slot keeps the old generation */
	for (int i = 0; i < 20; i++) {
		ops[i] = plan_op(IDN_CAP(100 + i, 0), 0, NULL);
		ops[i].del = true;
	}
	ASSERT_OK(idn_plan_commit(&M, ops, 20, &gen), "delete 20");
	ASSERT_OK(idn_config_get(&M, &cfg), "config");
	n = idn_plan_list(&M, (int)cfg.active_slot, &e);
	for (int i = 0; i < n; i++)
		ASSERT_TRUE(IDN_CAP_CLASS(e[i].key.cap) < 100, "no deleted plan left");
	free(e);
}

/*
 * add/change/replace (idnctl plan): a create of a present key fails with
 * -EEXIST, a change of an absent one with -ENOENT, and either publishes
 * nothing; replace (IDN_PLAN_SET) takes both.
 */
static void test_commit_modes(void)
{
	static const __u32 a[] = { 1, 2 }, b[] = { 3 };
	struct idn_plan_op op[2];
	struct idn_plan_entry *e = NULL;
	struct idn_config cfg;
	__u32 gen = 0, g0;
	int n, seen = 0;

	if (!have_maps)
		return tap_skip("cannot create BPF maps (needs CAP_BPF)");
	op[0] = plan_op(IDN_CAP(300, 0), 2, a);
	op[0].mode = IDN_PLAN_CREATE;
	ASSERT_OK(idn_plan_commit(&M, op, 1, &gen), "create of an absent plan");
	ASSERT_OK(idn_config_get(&M, &cfg), "config");
	g0 = cfg.generation;
	op[0] = plan_op(IDN_CAP(300, 0), 1, b);
	op[0].mode = IDN_PLAN_CREATE;
	ASSERT_EQ(idn_plan_commit(&M, op, 1, &gen), -EEXIST, "create of a present plan");
	ASSERT_TRUE(strstr(idn_errmsg(), "cap 300/0 (label 76800) tier any policy any exists") != NULL,
		    "the message names the key: class/variant and label");
	/* a good op before it in the same commit is not written either */
	op[1] = op[0];
	op[0] = plan_op(IDN_CAP(301, 0), 1, b);
	ASSERT_EQ(idn_plan_commit(&M, op, 2, &gen), -EEXIST, "create in a batch");
	op[0] = plan_op(IDN_CAP(302, 0), 1, b);
	op[0].mode = IDN_PLAN_CHANGE;
	ASSERT_EQ(idn_plan_commit(&M, op, 1, &gen), -ENOENT, "change of an absent plan");
	ASSERT_OK(idn_config_get(&M, &cfg), "config");
	ASSERT_EQ(cfg.generation, g0, "refused ops published nothing");
	op[0] = plan_op(IDN_CAP(300, 0), 1, b);
	op[0].mode = IDN_PLAN_CHANGE;
	ASSERT_OK(idn_plan_commit(&M, op, 1, &gen), "change of a present plan");
	op[0] = plan_op(IDN_CAP(302, 0), 1, b);	/* IDN_PLAN_SET: replace */
	ASSERT_OK(idn_plan_commit(&M, op, 1, &gen), "replace of an absent plan creates it");
	ASSERT_OK(idn_plan_commit(&M, op, 1, &gen), "replace of a present plan");
	ASSERT_EQ(gen, g0 + 3, "three generations");
	ASSERT_OK(idn_config_get(&M, &cfg), "config");
	n = idn_plan_list(&M, (int)cfg.active_slot, &e);
	for (int i = 0; i < n; i++) {
		if (e[i].key.cap == IDN_CAP(301, 0))
			ASSERT_TRUE(0, "the batch refused by -EEXIST wrote its other op");
		if (e[i].key.cap == IDN_CAP(300, 0) || e[i].key.cap == IDN_CAP(302, 0)) {
			ASSERT_EQ(e[i].plan.n_cand, 1, "changed plan's candidates");
			ASSERT_EQ(e[i].plan.cand[0].node, 3, "changed plan's node");
			seen++;
		}
	}
	ASSERT_EQ(seen, 2, "both plans in the active slot");
	free(e);
	for (int i = 0; i < 2; i++) {
		op[i] = plan_op(IDN_CAP(300 + 2 * i, 0), 0, NULL);
		op[i].del = true;
	}
	ASSERT_OK(idn_plan_commit(&M, op, 2, &gen), "cleanup");
}

/*
 * The owner's claim (idnd): exclusive while its process holds it, seen
 * by another opener, gone with the holder's fd (a crash drops it too).
 */
static void test_claim(void)
{
	char dir[] = "/tmp/idn-unit-claim.XXXXXX", sub[64];
	struct idn_maps a, b;

	if (!mkdtemp(dir))
		return tap_skip("mkdtemp");
	idn_maps_init(&a, dir);
	idn_maps_init(&b, dir);
	ASSERT_EQ(idn_maps_managed(&b), 0, "no claim before idnd starts");
	ASSERT_OK(idn_maps_claim(&a), "claim");
	ASSERT_OK(idn_maps_claim(&a), "claim again by the holder");
	ASSERT_EQ(idn_maps_managed(&a), 0, "the holder does not refuse itself");
	ASSERT_EQ(idn_maps_managed(&b), 1, "another opener sees the claim");
	ASSERT_EQ(idn_maps_claim(&b), -EBUSY, "a second claimant is refused");
	ASSERT_TRUE(strstr(idn_errmsg(), "another idnd manages this router") != NULL,
		    "the refusal says why");
	idn_maps_close(&a);
	ASSERT_EQ(idn_maps_managed(&b), 0, "the claim ends with its holder");
	ASSERT_OK(idn_maps_claim(&b), "claimed by the next idnd");
	idn_maps_close(&b);
	snprintf(sub, sizeof(sub), "%s/%s", dir, IDN_OWNER_LEASE);
	rmdir(sub);
	rmdir(dir);
}

/* addr4 / addr6: the node's locators, NULL for none */
static void node_put(__u32 id, const char *addr4, const char *addr6, __u8 health,
		     __u32 net_us)
{
	struct idn_node n = { .trust = 3, .health = health,
			      .flags = IDN_NODE_F_VALID, .net_us = net_us };
	struct idn_addr a;

	if (addr4 && !idn_parse_addr(addr4, &a))
		idn_node_set_locator(&n, &a);
	if (addr6 && !idn_parse_addr(addr6, &a))
		idn_node_set_locator(&n, &a);
	idn_node_put(&M, id, &n);
}

/* one entry, two locators; next hops cached per (node, family) */
static void test_locators(void)
{
	struct idn_node n = {};
	struct idn_nexthop nh = { .ifindex = 7, .mtu = 1500 }, got;
	struct idn_addr a, b;

	ASSERT_EQ(idn_node_locator(&n, IDN_AF_INET, &b), -ENOENT, "no v4 locator yet");
	idn_parse_addr("10.1.0.1", &a);
	idn_node_set_locator(&n, &a);
	ASSERT_EQ(n.flags, IDN_NODE_F_LOC4, "LOC4 only");
	ASSERT_EQ(n.addr4, inet_addr("10.1.0.1"), "addr4");
	ASSERT_EQ(idn_node_locator(&n, IDN_AF_INET6, &b), -ENOENT, "no v6 locator yet");
	idn_parse_addr("fd00:1::1", &a);
	idn_node_set_locator(&n, &a);
	ASSERT_EQ(n.flags, IDN_NODE_F_LOC4 | IDN_NODE_F_LOC6, "dual-stack");
	ASSERT_OK(idn_node_locator(&n, IDN_AF_INET6, &b), "v6 locator");
	ASSERT_TRUE(b.family == IDN_AF_INET6 && !memcmp(b.addr, a.addr, 16), "addr6");
	ASSERT_EQ(n.addr4, inet_addr("10.1.0.1"), "addr4 kept");
	idn_parse_addr("10.1.0.11", &a);
	idn_node_set_locator(&n, &a);
	ASSERT_OK(idn_node_locator(&n, IDN_AF_INET, &b), "v4 locator");
	ASSERT_EQ(b.addr[0], inet_addr("10.1.0.11"), "v4 replaced");
	ASSERT_OK(idn_node_locator(&n, IDN_AF_INET6, &b), "v6 locator kept");

	if (!have_maps)
		return tap_skip("cannot create BPF maps (needs CAP_BPF)");
	for (int v6 = 0; v6 < 2; v6++) {
		__u32 k = IDN_NH_KEY(5, v6);

		ASSERT_OK(bpf_map_update_elem(M.fd[IDN_MAP_NEXTHOPS], &k, &nh, BPF_ANY), "nh put");
	}
	ASSERT_OK(idn_nexthop_clear(&M, 5, IDN_AF_INET6), "clear v6");
	ASSERT_OK(idn_nexthop_get(&M, 5, IDN_AF_INET6, &got), "get v6");
	ASSERT_EQ(got.ifindex, 0, "v6 next hop zeroed");
	ASSERT_OK(idn_nexthop_get(&M, 5, IDN_AF_INET, &got), "get v4");
	ASSERT_EQ(got.ifindex, 7, "v4 next hop kept");
	ASSERT_OK(idn_nexthop_get(&M, 4, IDN_AF_INET6, &got), "get neighbour key");
	ASSERT_EQ(got.ifindex, 0, "node 4 untouched");
	ASSERT_OK(idn_nexthop_clear(&M, 5, 0), "clear both");
	ASSERT_OK(idn_nexthop_get(&M, 5, IDN_AF_INET, &got), "get v4");
	ASSERT_EQ(got.ifindex, 0, "v4 next hop zeroed");
	ASSERT_EQ(idn_nexthop_clear(&M, IDN_MAX_NODES, 0), -EINVAL, "node id range");
	ASSERT_OK(idn_nexthop_clear(&M, IDN_MAX_NODES - 1, 0), "last node: key in range");
}

static void test_route(void)
{
	static const __u32 nodes[] = { 1, 2, 3 };
	struct idn_route_req rq = {};
	struct idn_route_res res;
	struct idn_plan_op op = plan_op(IDN_CAP(8, 0), 3, nodes);
	struct idn_vip vip = {};
	struct idn_addr va;
	__u32 gen;

	if (!have_maps)
		return tap_skip("cannot create BPF maps (needs CAP_BPF)");

	node_put(1, "10.1.0.1", NULL, IDN_HEALTH_UP, 50);	/* IPv4 only */
	node_put(2, "10.1.0.2", "fd00:1::2", IDN_HEALTH_UP, 10);	/* cheapest */
	node_put(3, "10.1.0.3", "fd00:1::3", IDN_HEALTH_DOWN, 1);
	ASSERT_OK(idn_plan_commit(&M, &op, 1, &gen), "commit");

	idn_parse_addr("10.0.0.1", &va);
	idn_vip_key_make(&rq.vip, &va, 80, IPPROTO_TCP);
	vip.defaults.cap = IDN_CAP(8, 0);
	vip.defaults.tier = 1;
	ASSERT_OK(idn_vip_update(&M, &rq.vip, &vip, true), "vip");
	ASSERT_EQ(idn_vip_update(&M, &rq.vip, &vip, true), -EEXIST, "vip add twice");
	rq.flags = IDN_RQ_VIP;

	ASSERT_OK(idn_route_get(&M, &rq, &res), "route get");
	ASSERT_EQ(res.rc.verdict, IDN_V_NEW, "verdict new");
	ASSERT_EQ(res.rc.node, 2, "cheapest node");
	ASSERT_EQ(res.rc.generation, gen, "generation");
	ASSERT_EQ(res.rc.n_cand, 3, "3 candidates in the receipt");
	ASSERT_EQ(res.rc.cand[2].reject, IDN_REJ_HEALTH, "node 3 rejected: health");
	ASSERT_EQ(res.sel.cost, 110, "J = net 10 + exec 100");
	ASSERT_TRUE(res.rc.desc.token != 0, "address token");
	ASSERT_TRUE(res.has_locator && res.locator.family == IDN_AF_INET &&
		    res.locator.addr[0] == inet_addr("10.1.0.2"), "outer dst: node 2's IPv4 locator");

	/* the request's own token and policy, as a TCP option carries them */
	rq.flags |= IDN_RQ_TOKEN | IDN_RQ_POLICY;
	rq.token = 42;
	rq.policy = IDN_POLICY(5, 0, 0);
	ASSERT_OK(idn_route_get(&M, &rq, &res), "route get trust 5");
	ASSERT_EQ(res.rc.desc.token, 42, "token from the request");
	ASSERT_TRUE(res.rc.source & IDN_DF_OPT, "source opt");
	ASSERT_EQ(res.rc.verdict, IDN_V_MISS_REJECT, "no node trusted enough: miss");
	ASSERT_EQ(res.rc.cand[0].reject, IDN_REJ_TRUST, "trust reject");

	/* affinity: token 42 -> node 1 lowers its T_state to 0 */
	rq.flags &= ~IDN_RQ_POLICY;
	{
		struct idn_aff_key k = { .token = 42, .cls = 8 };
		struct idn_aff a = { .node = 1, .last_s = idn_coarse_now() };

		idn_afft_put(M.fd[IDN_MAP_AFFINITY], k.token, k.cls, &a, 0);
	}
	ASSERT_OK(idn_route_get(&M, &rq, &res), "route get affinity");
	ASSERT_EQ(res.rc.aff_node, 1, "affinity node found");

	/* unknown VIP: not IDN traffic */
	idn_parse_addr("10.0.0.9", &va);
	idn_vip_key_make(&rq.vip, &va, 80, IPPROTO_TCP);
	ASSERT_OK(idn_route_get(&M, &rq, &res), "route get unknown vip");
	ASSERT_EQ(res.rc.verdict, IDN_V_PASS, "pass");

	/* bad descriptor from the request: malformed with its reason */
	idn_parse_addr("10.0.0.1", &va);
	idn_vip_key_make(&rq.vip, &va, 80, IPPROTO_TCP);
	rq.flags = IDN_RQ_VIP | IDN_RQ_POLICY;
	rq.policy = 0x60;	/* reserved scope */
	ASSERT_OK(idn_route_get(&M, &rq, &res), "route get bad policy");
	ASSERT_EQ(res.rc.verdict, IDN_V_MALFORMED, "malformed");
	ASSERT_EQ(res.drop, IDN_DROP_BAD_DESC, "bad desc");

	/*
	 * IPv6 VIP: the IPv4-only node 1 is rejected for family, the
	 * dual-stack node 2 serves it through its IPv6 locator.
	 */
	{
		struct idn_addr want;

		node_put(2, "10.1.0.2", "fd00:1::2", IDN_HEALTH_UP, 100);	/* no longer cheapest */
		idn_parse_addr("fd00::1", &va);
		idn_vip_key_make(&rq.vip, &va, 80, IPPROTO_TCP);
		ASSERT_OK(idn_vip_update(&M, &rq.vip, &vip, true), "vip6");
		rq.flags = IDN_RQ_VIP;
		ASSERT_OK(idn_route_get(&M, &rq, &res), "route get vip6");
		ASSERT_EQ(res.rc.verdict, IDN_V_NEW, "v6 verdict new");
		ASSERT_EQ(res.rc.cand[0].reject, IDN_REJ_FAMILY, "IPv4-only node 1: family");
		ASSERT_EQ(res.rc.cand[1].reject, IDN_REJ_NONE, "dual-stack node 2 ok");
		ASSERT_EQ(res.rc.node, 2, "v6 request to node 2");
		idn_parse_addr("fd00:1::2", &want);
		ASSERT_TRUE(res.has_locator && res.locator.family == IDN_AF_INET6 &&
			    !memcmp(res.locator.addr, want.addr, 16), "outer dst: node 2's IPv6 locator");
	}
}

/*
 * The plan hint (struct idn_config plan_bloom): each commit describes the
 * slot it activates - the bloom bits of the capabilities with a plan of a
 * specific tier or policy, and the slot's IDN_CFG_F_PLANS0 flag.
 */
static void test_plan_hint(void)
{
	static const __u32 a[] = { 1, 2 };
	__u32 cap_a = IDN_CAP(21, 0), cap_b = IDN_CAP(22, 0), gen = 0, slot;
	struct idn_plan_op ops[3];
	struct idn_config cfg;

	if (!have_maps)
		return tap_skip("cannot create BPF maps (needs CAP_BPF)");
	/* two capabilities whose bits differ, so one's plans do not hide the other's */
	while (IDN_PLAN_BLOOM_BIT(cap_b) == IDN_PLAN_BLOOM_BIT(cap_a))
		cap_b += IDN_CAP(1, 0);

	ops[0] = plan_op(cap_a, 2, a);
	ops[1] = plan_op(cap_b, 2, a);
	ops[2] = plan_op(cap_b, 1, a);
	ops[2].key.tier = 3;		/* cap_b: a plan of its own for tier 3 */
	ASSERT_OK(idn_plan_commit(&M, ops, 3, &gen), "commit with a tier plan");
	ASSERT_OK(idn_config_get(&M, &cfg), "config");
	slot = cfg.active_slot & 1;
	ASSERT_TRUE(cfg.flags & (IDN_CFG_F_PLANS0 << slot), "active slot described");
	ASSERT_TRUE(cfg.plan_bloom[slot] & IDN_PLAN_BLOOM_BIT(cap_b), "cap_b: specific plans");
	ASSERT_TRUE(idn_plan_only_any(idn_plan_hint(&cfg, slot), cap_a), "cap_a: any plan only");
	ASSERT_TRUE(!idn_plan_only_any(idn_plan_hint(&cfg, slot), cap_b), "cap_b: look up its tier");

	/* the tier plan goes: the next slot's hint no longer names cap_b */
	ops[0] = ops[2];
	ops[0].del = true;
	ASSERT_OK(idn_plan_commit(&M, ops, 1, &gen), "commit without it");
	ASSERT_OK(idn_config_get(&M, &cfg), "config");
	ASSERT_EQ(cfg.active_slot & 1, slot ^ 1, "other slot active");
	ASSERT_TRUE(cfg.flags & (IDN_CFG_F_PLANS0 << (slot ^ 1)), "it is described too");
	ASSERT_TRUE(idn_plan_only_any(idn_plan_hint(&cfg, slot ^ 1), cap_b), "cap_b: any plan only");
	ASSERT_TRUE(cfg.plan_bloom[slot] & IDN_PLAN_BLOOM_BIT(cap_b),
		    "the inactive slot's hint still describes its own plans");

	/* a config not written by a commit describes nothing */
	cfg.flags &= ~(IDN_CFG_F_PLANS0 | IDN_CFG_F_PLANS1);
	ASSERT_EQ(idn_plan_hint(&cfg, 0), 0, "no hint without the flag");
	ASSERT_TRUE(!idn_plan_only_any(idn_plan_hint(&cfg, 0), cap_a), "no hint: both lookups");
}

int main(void)
{
	tap_plan(0);
	setup();
	TAP_RUN(test_commit);
	TAP_RUN(test_commit_ops);
	TAP_RUN(test_commit_modes);
	TAP_RUN(test_plan_hint);
	TAP_RUN(test_claim);
	TAP_RUN(test_locators);
	TAP_RUN(test_route);
	idn_maps_close(&M);
	return tap_done();
}
