// SPDX-License-Identifier: GPL-2.0
/*
 * unit_ctl_anycast.c - ctl/lib/anycast.c, what idnctl bgp announces: a
 * VIP while its capability's default plan has an UP node (drain, down,
 * invalid or absent nodes do not count), through the fallback ladder, one
 * route per address whatever its ports, the descriptor prefix while any
 * capability is servable; the BIRD file's text and its refusals.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <arpa/inet.h>

#include "tap.h"
#include "anycast.h"

static struct idn_node nodes[IDN_MAX_NODES];
static struct idn_plan_entry plans[8];
static struct idn_vip_entry vips[8];
static int n_plans, n_vips;

static void node(__u32 id, __u8 health)
{
	nodes[id].flags = IDN_NODE_F_VALID;
	nodes[id].health = health;
}

static void plan(__u32 cap, __u32 fallback, int n, const __u32 *ids)
{
	struct idn_plan_entry *e = &plans[n_plans++];

	memset(e, 0, sizeof(*e));
	e->key.cap = cap;
	e->key.tier = IDN_ANY;
	e->key.policy = IDN_ANY;
	e->plan.fallback_cap = fallback;
	e->plan.n_cand = n;
	for (int i = 0; i < n; i++)
		e->plan.cand[i].node = ids[i];
}

static void vip(const char *addr, __u16 port, __u32 cap)
{
	struct idn_vip_entry *v = &vips[n_vips++];

	memset(v, 0, sizeof(*v));
	if (strchr(addr, ':')) {
		v->key.family = IDN_AF_INET6;
		inet_pton(AF_INET6, addr, v->key.addr);
	} else {
		v->key.family = IDN_AF_INET;
		inet_pton(AF_INET, addr, v->key.addr);
	}
	v->key.port = htons(port);
	v->key.proto = 6;
	v->vip.defaults.cap = cap;
}

static void reset(void)
{
	memset(nodes, 0, sizeof(nodes));
	n_plans = n_vips = 0;
}

static void test_servable(void)
{
	__u32 one[] = { 1 }, two[] = { 2, 3 };

	reset();
	node(1, IDN_HEALTH_UP);
	node(2, IDN_HEALTH_DRAIN);
	node(3, IDN_HEALTH_DOWN);
	plan(0x700, 0, 1, one);
	plan(0x701, 0, 2, two);
	ASSERT_TRUE(idn_anycast_servable(plans, n_plans, nodes, 0x700), "up node: servable");
	ASSERT_TRUE(!idn_anycast_servable(plans, n_plans, nodes, 0x701),
		    "drained and down nodes: not servable");
	ASSERT_TRUE(!idn_anycast_servable(plans, n_plans, nodes, 0x702), "no plan: not servable");
	node(1, IDN_HEALTH_DRAIN);
	ASSERT_TRUE(!idn_anycast_servable(plans, n_plans, nodes, 0x700), "drained: not servable");
	nodes[1].health = IDN_HEALTH_UP;
	nodes[1].flags = 0;
	ASSERT_TRUE(!idn_anycast_servable(plans, n_plans, nodes, 0x700),
		    "UP but not a valid entry: not servable");
	node(1, IDN_HEALTH_UP);
	/* the ladder: 0x701 falls back to 0x700 */
	plans[1].plan.fallback_cap = 0x700;
	ASSERT_TRUE(idn_anycast_servable(plans, n_plans, nodes, 0x701), "served by its fallback");
	/* a fallback loop ends */
	plans[0].plan.fallback_cap = 0x701;
	node(1, IDN_HEALTH_DOWN);
	ASSERT_TRUE(!idn_anycast_servable(plans, n_plans, nodes, 0x701), "fallback loop: no");
	/* a node id out of range counts as nothing */
	plans[0].plan.cand[0].node = IDN_MAX_NODES + 5;
	ASSERT_TRUE(!idn_anycast_servable(plans, n_plans, nodes, 0x700), "bad node id: no");
}

static void test_compute(void)
{
	struct idn_anycast_pfx out[9];
	struct idn_config cfg = {};
	__u32 one[] = { 1 }, two[] = { 2 };
	char b[64];
	int n;

	reset();
	node(1, IDN_HEALTH_UP);
	node(2, IDN_HEALTH_UP);
	plan(0x700, 0, 1, one);
	plan(0x800, 0, 1, two);
	vip("10.9.0.2", 80, 0x800);
	vip("10.9.0.1", 80, 0x700);
	vip("10.9.0.1", 8000, 0x800);	/* same address, another port */
	vip("2001:db8::7", 80, 0x700);
	n = idn_anycast_compute(plans, n_plans, nodes, vips, n_vips, &cfg, out);
	if (!ASSERT_EQ(n, 3, "three addresses"))
		return;
	ASSERT_TRUE(!strcmp(idn_anycast_fmt(&out[0], b, sizeof(b)), "10.9.0.1/32"), b);
	ASSERT_TRUE(!strcmp(idn_anycast_fmt(&out[1], b, sizeof(b)), "10.9.0.2/32"), b);
	ASSERT_TRUE(!strcmp(idn_anycast_fmt(&out[2], b, sizeof(b)), "2001:db8::7/128"), b);

	/* cap 7 drained: 10.9.0.1 stays (its port 8000 serves cap 8), the v6 VIP goes */
	node(1, IDN_HEALTH_DRAIN);
	n = idn_anycast_compute(plans, n_plans, nodes, vips, n_vips, &cfg, out);
	ASSERT_EQ(n, 2, "a v6 VIP withdrawn");
	ASSERT_TRUE(n == 2 && out[0].cap == 0x800 && out[1].cap == 0x800, "both serve cap 8");

	/* the descriptor prefix while any capability is servable */
	{
		__u8 a6[16];

		inet_pton(AF_INET6, "2001:db8:1::", a6);
		memcpy(cfg.prefix6, a6, sizeof(cfg.prefix6));
		cfg.prefix6_on = 1;
	}
	n = idn_anycast_compute(plans, n_plans, nodes, vips, n_vips, &cfg, out);
	ASSERT_EQ(n, 3, "descriptor prefix added");
	ASSERT_TRUE(n == 3 && out[2].desc &&
		    !strcmp(idn_anycast_fmt(&out[2], b, sizeof(b)), "2001:db8:1::/48"), b);
	node(2, IDN_HEALTH_DOWN);
	n = idn_anycast_compute(plans, n_plans, nodes, vips, n_vips, &cfg, out);
	ASSERT_EQ(n, 0, "nothing servable: nothing announced");
}

static void test_render(void)
{
	struct idn_anycast_pfx p[2] = {};
	char buf[1024], small[40];
	int n;

	p[0].family = IDN_AF_INET;
	p[0].len = 32;
	inet_pton(AF_INET, "10.9.0.1", p[0].addr);
	p[0].cap = 0x700;
	p[1].family = IDN_AF_INET6;
	p[1].len = 48;
	p[1].desc = 1;
	inet_pton(AF_INET6, "2001:db8:1::", p[1].addr);
	n = idn_anycast_render(p, 2, "idn_anycast", buf, sizeof(buf));
	ASSERT_TRUE(n > 0 && n < (int)sizeof(buf), "rendered");
	ASSERT_TRUE(strstr(buf, "protocol static idn_anycast4 {\n\tipv4;\n"
			   "\troute 10.9.0.1/32 blackhole;\t# cap 7/0\n}\n") != NULL, buf);
	ASSERT_TRUE(strstr(buf, "protocol static idn_anycast6 {\n\tipv6;\n"
			   "\troute 2001:db8:1::/48 blackhole;\t# descriptor prefix\n}\n") != NULL,
		    buf);
	/* empty set: both protocols, no routes */
	n = idn_anycast_render(p, 0, "x", buf, sizeof(buf));
	ASSERT_TRUE(n > 0 && strstr(buf, "protocol static x4 {\n\tipv4;\n}\n"), buf);
	/* the length without a buffer, and a cut buffer says so */
	n = idn_anycast_render(p, 2, "idn_anycast", NULL, 0);
	ASSERT_EQ(n, idn_anycast_render(p, 2, "idn_anycast", buf, sizeof(buf)), "same length");
	ASSERT_TRUE(idn_anycast_render(p, 2, "idn_anycast", small, sizeof(small)) >=
		    (int)sizeof(small), "cut short is reported");
	ASSERT_EQ(idn_anycast_render(p, 2, "bad-name", buf, sizeof(buf)), -EINVAL, "name");
	ASSERT_EQ(idn_anycast_render(p, 2, "", buf, sizeof(buf)), -EINVAL, "empty name");
	ASSERT_EQ(idn_anycast_render(p, 2, "9x", buf, sizeof(buf)), -EINVAL, "digit first");
}

int main(void)
{
	tap_plan(0);
	TAP_RUN(test_servable);
	TAP_RUN(test_compute);
	TAP_RUN(test_render);
	return tap_done();
}
