// SPDX-License-Identifier: GPL-2.0
/*
 * bpf_steer.c - fixture tables for the steering program: every fixture
 * runs through BPF_PROG_TEST_RUN for both idn_xdp and idn_tc, with the
 * maps set up by the fixture, and checks the return value, the output
 * bytes (outer IPIP / IP6IP6 header to the node's locator with the inner
 * packet intact, or a RST with valid checksums), and the map effects
 * (verdict and drop counters, conn and affinity entries, node load after
 * telemetry).
 *
 * Runs in private network and mount namespaces (steer_env.h); skips when
 * not root.
 */
#include "steer_env.h"
#include "lib/parse.h"
#include "lib/desc.h"
#include "lib/rss.h"
#include "lib/tsopt.h"

IDN_ASSERT_ABI();

/* ---- the world every fixture starts from --------------------------- */

#define CAP_A	IDN_CAP(0x100, 0)	/* nodes 1,2,3 (v4), 11,12 (v6) */
#define CAP_B	IDN_CAP(0x200, 0)	/* no plan: demand miss */
#define CAP_C1	IDN_CAP(0x300, 1)	/* ladder: variant 1 on nodes 1,2 */
#define CAP_C2	IDN_CAP(0x300, 2)	/* ladder fallback: variant 2 on node 3 */
#define CAP_D	IDN_CAP(0x400, 0)	/* node 21 behind the other device */
#define CAP_E	IDN_CAP(0x500, 0)	/* node 30: no route (either family) */
#define TELE_PORT 7946

static const uint8_t prefix6[6] = { 0x20, 0x01, 0x0d, 0xb8, 0x1d, 0x4e };

static void addr4(__u32 *a, const char *s)
{
	memset(a, 0, 16);
	inet_pton(AF_INET, s, a);
}

/*
 * The world's nodes: 1 and 2 dual-stack, 3 IPv4-only, 11 and 12
 * IPv6-only (behind BED_IF0, host numbers below), 21 dual-stack behind
 * BED_IF1, 30 dual-stack without a route in either family.
 */
static int node_host(__u32 id)
{
	switch (id) {
	case 1: return 11;
	case 2: return 12;
	case 3: return 13;
	case 11: return 14;
	case 12: return 15;
	default: return 0;
	}
}

static void addr6(__u32 *a, const char *s)
{
	inet_pton(AF_INET6, s, a);
}

/* A node with an IPv4 and/or an IPv6 locator (NULL: none of that family). */
static struct idn_node mk_node(const char *loc4, const char *loc6, int trust, int domain,
			       int flags)
{
	struct idn_node n = { 0 };

	if (loc4) {
		inet_pton(AF_INET, loc4, &n.addr4);
		flags |= IDN_NODE_F_LOC4;
	}
	if (loc6) {
		addr6(n.addr6, loc6);
		flags |= IDN_NODE_F_LOC6;
	}
	n.trust = (__u8)trust;
	n.domain = (__u16)domain;
	n.health = IDN_HEALTH_UP;
	n.flags = (__u16)(IDN_NODE_F_VALID | flags);
	n.net_us = 10;
	n.tok_ns = 0;
	return n;
}

static struct idn_plan mk_plan(__u32 gen)
{
	struct idn_plan pl;

	memset(&pl, 0, sizeof(pl));
	pl.generation = gen;
	for (int i = 0; i < IDN_W_MAX; i++)
		pl.weight[i] = 256;
	return pl;
}

static void plan_cand(struct idn_plan *pl, __u32 node, __u32 exec, __u8 variant)
{
	struct idn_cand *c = &pl->cand[pl->n_cand++];

	c->node = node;
	c->exec_us = exec;
	c->variant = variant;
}

static void put_vip(const char *addr, int port, int proto, __u32 cap, __u8 tier, __u8 policy)
{
	struct idn_vip_key k = { 0 };
	struct idn_vip v = { 0 };

	if (strchr(addr, ':')) {
		addr6(k.addr, addr);
		k.family = IDN_AF_INET6;
	} else {
		addr4(k.addr, addr);
		k.family = IDN_AF_INET;
	}
	k.port = htons((uint16_t)port);
	k.proto = (__u8)proto;
	v.defaults.cap = cap;
	v.defaults.tier = tier;
	v.defaults.policy = policy;
	v.defaults.token = 0x5555;	/* ignored: the VIP's token is no token */
	bpf_map_update_elem(E.vips, &k, &v, BPF_ANY);
}

static struct idn_config world_cfg(void)
{
	struct idn_config c = { 0 };

	c.flags = IDN_CFG_F_TELEMETRY;
	c.active_slot = 0;
	c.generation = 1;
	c.home_domain = 0;
	c.tele_port = htons(TELE_PORT);
	inet_pton(AF_INET, "10.99.0.1", &c.src4);
	inet_pton(AF_INET6, "fd00:99::1", c.src6);
	memcpy(c.prefix6, prefix6, 6);
	c.prefix6_on = 1;
	return c;
}

static void world(void)
{
	struct idn_config c = world_cfg();
	struct idn_plan pl;
	struct idn_node n;

	tenv_reset();
	put_config(&c);
	n = mk_node("10.99.0.11", "fd00:99::11", 3, 0, 0);
	put_node(1, &n);
	n = mk_node("10.99.0.12", "fd00:99::12", 7, 0, IDN_NODE_F_CONFIDENTIAL);
	put_node(2, &n);
	n = mk_node("10.99.0.13", NULL, 7, 1, 0);
	put_node(3, &n);
	n = mk_node(NULL, "fd00:99::14", 7, 0, 0);
	put_node(11, &n);
	n = mk_node(NULL, "fd00:99::15", 7, 0, 0);
	put_node(12, &n);
	n = mk_node("10.98.0.21", "fd00:98::21", 7, 0, 0);
	put_node(21, &n);
	n = mk_node("192.0.2.99", "2001:db8:dead::99", 7, 0, 0);
	put_node(30, &n);

	pl = mk_plan(1);
	pl.domain_mask = 1U << 1;
	plan_cand(&pl, 1, 100, 0);
	plan_cand(&pl, 2, 300, 0);
	plan_cand(&pl, 3, 200, 0);
	plan_cand(&pl, 11, 150, 0);
	plan_cand(&pl, 12, 200, 0);
	put_plan(CAP_A, IDN_ANY, IDN_ANY, 0, &pl);

	pl = mk_plan(1);
	pl.fallback_cap = CAP_C2;
	pl.shed_tier = 4;
	plan_cand(&pl, 1, 100, 1);
	plan_cand(&pl, 2, 200, 1);
	put_plan(CAP_C1, IDN_ANY, IDN_ANY, 0, &pl);
	pl = mk_plan(1);
	plan_cand(&pl, 3, 50, 2);
	put_plan(CAP_C2, IDN_ANY, IDN_ANY, 0, &pl);

	pl = mk_plan(1);
	plan_cand(&pl, 21, 100, 0);
	put_plan(CAP_D, IDN_ANY, IDN_ANY, 0, &pl);
	pl = mk_plan(1);
	plan_cand(&pl, 30, 100, 0);
	put_plan(CAP_E, IDN_ANY, IDN_ANY, 0, &pl);

	put_vip("203.0.113.10", 80, IPPROTO_TCP, CAP_A, 5, 0);
	put_vip("203.0.113.10", 53, IPPROTO_UDP, CAP_A, 5, 0);
	put_vip("2001:db8:feed::10", 80, IPPROTO_TCP, CAP_A, 5, 0);
	put_vip("203.0.113.20", 80, IPPROTO_TCP, CAP_B, 5, 0);
	put_vip("203.0.113.20", 53, IPPROTO_UDP, CAP_B, 5, 0);
	put_vip("2001:db8:feed::20", 80, IPPROTO_TCP, CAP_B, 5, 0);
	put_vip("203.0.113.30", 80, IPPROTO_TCP, CAP_C1, 5, 0);
	put_vip("203.0.113.30", 53, IPPROTO_UDP, CAP_C1, 5, 0);
	put_vip("203.0.113.40", 80, IPPROTO_TCP, CAP_D, 5, 0);
	put_vip("2001:db8:feed::40", 80, IPPROTO_TCP, CAP_D, 5, 0);
	put_vip("203.0.113.50", 80, IPPROTO_TCP, CAP_E, 5, 0);
	put_vip("2001:db8:feed::50", 80, IPPROTO_TCP, CAP_E, 5, 0);
}

static void set_cfg_flags(__u32 set, __u32 clear)
{
	struct idn_config c = get_config();

	c.flags = (c.flags | set) & ~clear;
	put_config(&c);
}

/* ---- packets --------------------------------------------------------- */

static int sport_seq = 40000;

/* SYN (or other flags) from a v4 client to ip:port; opt may be NULL. */
static void tcp4(struct pg *p, const char *dst, int dport, uint8_t flags,
		 const struct idn_tcpopt *opt)
{
	struct pg_flow f;

	pg_flow4(&f, "192.0.2.10", dst, (uint16_t)sport_seq++, (uint16_t)dport, IPPROTO_TCP);
	pg_tcp_pkt(p, &f, flags, opt, flags & PG_ACK ? 100 : 0);
}

static void tcp6(struct pg *p, const char *dst, int dport, uint8_t flags,
		 const struct idn_tcpopt *opt)
{
	struct pg_flow f;

	pg_flow6(&f, "2001:db8:c1::10", dst, (uint16_t)sport_seq++, (uint16_t)dport,
		 IPPROTO_TCP);
	pg_tcp_pkt(p, &f, flags, opt, flags & PG_ACK ? 100 : 0);
}

static void udp4(struct pg *p, const char *src, const char *dst, int sport, int dport,
		 const void *data, size_t n)
{
	struct pg_flow f;

	pg_flow4(&f, src, dst, (uint16_t)sport, (uint16_t)dport, IPPROTO_UDP);
	pg_udp_pkt(p, &f, data, n);
}

static struct idn_flow_key flow_of(const struct pg *p)
{
	struct idn_pkt pk;

	idn_parse((void *)p->buf, (void *)(p->buf + p->len), &pk);
	return pk.flow;
}

/* ---- checks ------------------------------------------------------- */

static int expect(const struct run *r, int hook, enum act a, int verdict, int drop)
{
	int ok = 1;

	ok &= ASSERT_EQ(r->err, 0, "test run");
	ok &= ASSERT_EQ(r->ret, act_code(hook, a), "action");
	ok &= ASSERT_EQ(r->verdict, verdict, "verdict counted once");
	ok &= ASSERT_EQ(r->drop, drop, "drop reason");
	return ok;
}

/*
 * The output must be: a plain Ethernet header (the next hop's MACs, the
 * outer family's type; ingress VLAN tags dropped), then the outer header
 * to @node's locator of the input's own family, then the input's L3
 * packet byte for byte.
 */
static int check_encap(const struct run *r, const struct pg *in, __u32 node_id,
		       const uint8_t smac[6], int mac_net, int mac_host)
{
	struct idn_node n = get_node(node_id);
	struct idn_config c = get_config();
	size_t l2 = 14, inner = in->len - (size_t)in->l3_off;
	uint8_t exp[PG_MAX + 64], dmac[6];
	int v4 = in->family == 4, ok = 1;
	size_t olen;

	if (!ASSERT_TRUE(n.flags & (v4 ? IDN_NODE_F_LOC4 : IDN_NODE_F_LOC6),
			 "node has a locator of the request's family"))
		return 0;
	bed_node_mac(dmac, mac_net, mac_host);
	memcpy(exp, dmac, 6);
	memcpy(exp + 6, smac, 6);
	exp[12] = v4 ? 0x08 : 0x86;
	exp[13] = v4 ? 0x00 : 0xdd;
	if (v4) {
		struct iphdr ip = { 0 };

		ip.version = 4;
		ip.ihl = 5;
		ip.tot_len = htons((uint16_t)(20 + inner));
		ip.ttl = 64;
		ip.protocol = IPPROTO_IPIP;
		ip.saddr = c.src4;
		ip.daddr = n.addr4;
		ip.check = pg_csum(&ip, 20);
		memcpy(exp + l2, &ip, 20);
		olen = 20;
	} else {
		struct ipv6hdr ip6 = { 0 };

		ip6.version = 6;
		ip6.payload_len = htons((uint16_t)inner);
		ip6.nexthdr = IPPROTO_IPV6;
		ip6.hop_limit = 64;
		memcpy(&ip6.saddr, c.src6, 16);
		memcpy(&ip6.daddr, n.addr6, 16);
		memcpy(exp + l2, &ip6, 40);
		olen = 40;
	}
	memcpy(exp + l2 + olen, in->buf + in->l3_off, inner);
	ok &= ASSERT_EQ(r->out_len, l2 + olen + inner, "encapsulated length");
	if (ok && memcmp(r->out, exp, r->out_len)) {
		TAP_FAIL("encapsulated bytes differ");
		pg_hexdump("got", r->out, r->out_len);
		pg_hexdump("want", exp, l2 + olen + inner);
		ok = 0;
	}
	if (v4)
		ok &= ASSERT_TRUE(pg_ip4_csum_ok(r->out, r->out_len, l2), "outer csum");
	return ok;
}

static int check_encap0(const struct run *r, const struct pg *in, __u32 node)
{
	return check_encap(r, in, node, bed_mac0, 0x99, node_host(node));
}

/* A RST answering @in: addresses and ports swapped, checksums valid. */
static int check_rst(const struct run *r, const struct pg *in)
{
	const uint8_t *o = r->out;
	struct idn_pkt ip;
	int v6 = in->family == 6, ok = 1;
	size_t l3 = 14, l4 = l3 + (v6 ? 40 : 20);
	const struct tcphdr *th = (const void *)(o + l4);

	idn_parse((void *)in->buf, (void *)(in->buf + in->len), &ip);
	if (!ASSERT_EQ(r->out_len, l4 + 20, "RST length"))
		return 0;
	ok &= ASSERT_MEM(o, in->buf + 6, 6, "dst mac = client's");
	ok &= ASSERT_MEM(o + 6, in->buf, 6, "src mac = ours");
	if (!v6) {
		const struct iphdr *h = (const void *)(o + l3);

		ok &= ASSERT_EQ(h->version, 4, "v4");
		ok &= ASSERT_EQ(h->ihl, 5, "ihl");
		ok &= ASSERT_EQ(ntohs(h->tot_len), 40, "tot_len");
		ok &= ASSERT_EQ(h->protocol, IPPROTO_TCP, "proto");
		ok &= ASSERT_EQ(h->saddr, ip.flow.daddr[0], "src = VIP");
		ok &= ASSERT_EQ(h->daddr, ip.flow.saddr[0], "dst = client");
		ok &= ASSERT_TRUE(h->ttl > 0, "ttl");
		ok &= ASSERT_TRUE(pg_ip4_csum_ok(o, r->out_len, l3), "ip csum");
	} else {
		const struct ipv6hdr *h = (const void *)(o + l3);

		ok &= ASSERT_EQ(h->version, 6, "v6");
		ok &= ASSERT_EQ(ntohs(h->payload_len), 20, "payload_len");
		ok &= ASSERT_EQ(h->nexthdr, IPPROTO_TCP, "nexthdr");
		ok &= ASSERT_MEM(&h->saddr, ip.flow.daddr, 16, "src = VIP");
		ok &= ASSERT_MEM(&h->daddr, ip.flow.saddr, 16, "dst = client");
		ok &= ASSERT_TRUE(h->hop_limit > 0, "hop limit");
	}
	ok &= ASSERT_TRUE(pg_l4_csum_ok(o, r->out_len, l3), "tcp csum");
	ok &= ASSERT_EQ(th->source, ip.flow.dport, "sport = VIP port");
	ok &= ASSERT_EQ(th->dest, ip.flow.sport, "dport = client port");
	ok &= ASSERT_EQ(th->doff, 5, "doff");
	if (ip.tcp_flags & PG_ACK) {
		ok &= ASSERT_EQ(o[l4 + 13], PG_RST, "flags RST");
		ok &= ASSERT_EQ(ntohl(th->seq), ip.ack_seq, "seq = their ack");
	} else {
		__u32 seglen = ip.l4_len - ip.tcp_hlen + !!(ip.tcp_flags & PG_SYN) +
			       !!(ip.tcp_flags & PG_FIN);

		ok &= ASSERT_EQ(o[l4 + 13], PG_RST | PG_ACK, "flags RST|ACK");
		ok &= ASSERT_EQ(ntohl(th->seq), 0, "seq 0");
		ok &= ASSERT_EQ(ntohl(th->ack_seq), ip.seq + seglen, "ack = seq + len");
	}
	if (!ok)
		pg_hexdump("rst", o, r->out_len);
	return ok;
}

static int unchanged(const struct run *r, const struct pg *in)
{
	int ok = ASSERT_EQ(r->out_len, in->len, "length unchanged");

	if (ok)
		ok = ASSERT_MEM(r->out, in->buf, in->len, "bytes unchanged");
	return ok;
}

static int get_conn(const struct pg *p, struct idn_conn *c)
{
	struct idn_flow_key k = flow_of(p);

	memset(c, 0, sizeof(*c));
	return idn_ct_get(E.conns, &k, c);
}

static int get_aff(__u64 token, __u32 cap, struct idn_aff *a)
{
	struct idn_aff_key k = { .token = token, .cls = IDN_CAP_CLASS(cap) };

	memset(a, 0, sizeof(*a));
	return idn_afft_get(E.aff, k.token, k.cls, a);
}

static __u64 cap_flows(__u32 cap, int verdict)
{
	return percpu_sum(E.cstats, cap, sizeof(struct idn_cstat),
			  offsetof(struct idn_cstat, flows) + 8 * verdict);
}

static __u64 node_flows(__u32 node)
{
	return percpu_sum(E.nstats, node, sizeof(struct idn_nstat),
			  offsetof(struct idn_nstat, flows));
}

static struct run R;

static void run_in(int hook, const struct pg *p)
{
	run_pkt(hook, p->buf, p->len, E.if0, &R);
}

/* ---- fixtures -------------------------------------------------------- */

static void fx_not_idn(int hook)
{
	struct pg p;

	tcp4(&p, "198.51.100.7", 80, PG_SYN, NULL);
	run_in(hook, &p);
	expect(&R, hook, A_PASS, IDN_V_PASS, 0);
	unchanged(&R, &p);
	/* a VIP address on another port is not IDN traffic either */
	tcp4(&p, "203.0.113.10", 81, PG_SYN, NULL);
	run_in(hook, &p);
	expect(&R, hook, A_PASS, IDN_V_PASS, 0);
	/* not IP at all */
	pg_init(&p);
	pg_eth(&p, NULL, NULL);
	pg_set_ethertype(&p, ETH_P_ARP);
	pg_payload_pattern(&p, 46);
	run_in(hook, &p);
	expect(&R, hook, A_PASS, IDN_V_PASS, 0);
	unchanged(&R, &p);
}

static void fx_vip4_new(int hook)
{
	struct idn_conn c;
	struct idn_aff a;
	struct pg p;
	__u64 tok, f0 = node_flows(1);

	tcp4(&p, "203.0.113.10", 80, PG_SYN, NULL);
	run_in(hook, &p);
	if (!expect(&R, hook, A_TX, IDN_V_NEW, 0))
		return;
	check_encap0(&R, &p, 1);
	if (ASSERT_OK(get_conn(&p, &c), "conn entry")) {
		ASSERT_EQ(c.node, 1, "conn node");
		ASSERT_EQ(c.generation, 1, "conn generation");
		ASSERT_EQ(c.cap, CAP_A, "conn cap");
	}
	{
		struct idn_flow_key fk = flow_of(&p);

		tok = idn_addr_token(&fk);
	}
	if (ASSERT_OK(get_aff(tok, CAP_A, &a), "affinity by address token"))
		ASSERT_EQ(a.node, 1, "affinity node");
	ASSERT_EQ(node_flows(1) - f0, 1, "node 1 new flows");
	ASSERT_EQ(cap_flows(CAP_A, IDN_V_NEW), 1, "cap stats NEW");
}

/* Same, arriving on the loopback (no ctx): out of another device. */
static void fx_vip4_redirect(int hook)
{
	struct pg p;

	tcp4(&p, "203.0.113.10", 80, PG_SYN, NULL);
	run_pkt(hook, p.buf, p.len, hook == HOOK_XDP ? 0 : 1, &R);
	if (!expect(&R, hook, A_REDIRECT, IDN_V_NEW, 0))
		return;
	check_encap0(&R, &p, 1);
	/* a node behind the second device */
	tcp4(&p, "203.0.113.40", 80, PG_SYN, NULL);
	run_in(hook, &p);
	if (expect(&R, hook, A_REDIRECT, IDN_V_NEW, 0))
		check_encap(&R, &p, 21, bed_mac1, 0x98, 0x21);
	/* the same dual-stack node over IPv6: its IPv6 locator */
	tcp6(&p, "2001:db8:feed::40", 80, PG_SYN, NULL);
	run_in(hook, &p);
	if (expect(&R, hook, A_REDIRECT, IDN_V_NEW, 0))
		check_encap(&R, &p, 21, bed_mac1, 0x98, 0x21);
}

/*
 * Outer source pool (dp set src4 ADDR/LEN): each flow keeps one outer
 * source inside the pool, different flows spread over it, the header
 * checksum covers the address written; IPv6 the same in the last word.
 */
static void fx_rss_src(int hook)
{
	struct idn_config c = get_config();
	__u32 seen[32], n_seen = 0, base4 = c.src4, a;
	struct pg p;
	int ok = 1;

	c.src4_bits = 8;
	c.src6_bits = 16;
	put_config(&c);
	for (int i = 0; i < 32; i++) {
		struct idn_flow_key fk;
		int known = 0;

		tcp4(&p, "203.0.113.10", 80, PG_SYN, NULL);
		run_in(hook, &p);
		/* one client address: after the first flow its token has affinity */
		if (!ASSERT_EQ(R.ret, act_code(hook, A_TX), "action") ||
		    !ASSERT_TRUE(R.verdict == IDN_V_NEW || R.verdict == IDN_V_AFFINITY,
				 "new flow forwarded") || R.out_len < 34)
			return;
		memcpy(&a, R.out + 14 + 12, 4);
		fk = flow_of(&p);
		ok &= ASSERT_EQ(a, idn_rss_addr(base4, 8, idn_rss_hash(&fk)),
				"outer source = the pool address of this flow");
		ok &= ASSERT_EQ(a & htonl(0xffffff00), base4 & htonl(0xffffff00),
				"outer source inside src4/24");
		ok &= ASSERT_TRUE(pg_ip4_csum_ok(R.out, R.out_len, 14), "outer csum");
		for (__u32 k = 0; k < n_seen; k++)
			known |= seen[k] == a;
		if (!known)
			seen[n_seen++] = a;
		/* the next segment of this flow leaves from the same source */
		p.buf[p.l3_off + 20 + 13] = 0x10;	/* ACK */
		pg_fix_csums(&p);
		run_in(hook, &p);
		if (expect(&R, hook, A_TX, IDN_V_CONN, 0)) {
			__u32 a2;

			memcpy(&a2, R.out + 14 + 12, 4);
			ok &= ASSERT_EQ(a2, a, "same flow, same outer source");
		}
		if (!ok)
			return;
	}
	ASSERT_TRUE(n_seen >= 16, "32 flows over at least 16 of the pool's 256 sources");
	printf("# 32 flows: %u distinct outer sources\n", n_seen);
	tcp6(&p, "2001:db8:feed::10", 80, PG_SYN, NULL);
	run_in(hook, &p);
	if (expect(&R, hook, A_TX, IDN_V_NEW, 0) && R.out_len >= 54) {
		struct idn_flow_key fk = flow_of(&p);
		__u32 w[4];

		memcpy(w, R.out + 14 + 8, 16);
		ASSERT_TRUE(!memcmp(w, c.src6, 12), "IPv6 outer source: the first 96 bits kept");
		ASSERT_EQ(w[3], idn_rss_addr(c.src6[3], 16, idn_rss_hash(&fk)),
			  "IPv6 outer source: the last word from the flow");
	}
}

/*
 * A node goes down under established flows: a TCP connection cannot move,
 * so its next segment is answered with a RST at once (counted node-down,
 * entry removed, the client's next SYN chosen anew); a UDP flow moves.
 */
static void fx_node_down_reset(int hook)
{
	struct idn_conn c;
	struct idn_node n;
	struct pg p, u;
	__u32 id;

	tcp4(&p, "203.0.113.10", 80, PG_SYN, NULL);
	run_in(hook, &p);
	if (!ASSERT_EQ(R.ret, act_code(hook, A_TX), "SYN forwarded") ||
	    !ASSERT_OK(get_conn(&p, &c), "conn entry"))
		return;
	id = c.node;
	udp4(&u, "192.0.2.10", "203.0.113.10", 5301, 53, "q", 1);
	run_in(hook, &u);
	expect(&R, hook, A_TX, IDN_V_AFFINITY, 0);
	n = get_node(id);
	n.health = IDN_HEALTH_DOWN;
	put_node(id, &n);

	p.buf[p.l3_off + 20 + 13] = 0x10;	/* ACK: mid-flow */
	pg_fix_csums(&p);
	run_in(hook, &p);
	if (expect(&R, hook, A_TX, IDN_V_ERROR, IDN_DROP_NODE_DOWN))
		check_rst(&R, &p);
	ASSERT_NEQ(get_conn(&p, &c), 0, "entry removed");
	/* its peer's RST is not answered, only counted */
	p.buf[p.l3_off + 20 + 13] = 0x14;	/* RST+ACK */
	pg_fix_csums(&p);
	{
		struct idn_flow_key fk = flow_of(&p);
		struct idn_conn old = { .node = id, .generation = 1, .cap = CAP_A };

		idn_ct_put(E.conns, &fk, &old);
	}
	run_in(hook, &p);
	expect(&R, hook, A_DROP, IDN_V_ERROR, IDN_DROP_NODE_DOWN);
	/* the UDP flow moves to a node that is up */
	run_in(hook, &u);
	if (expect(&R, hook, A_TX, IDN_V_NEW, 0) && ASSERT_OK(get_conn(&u, &c), "UDP entry"))
		ASSERT_NEQ(c.node, id, "UDP flow moved off the down node");
}

static struct idn_receipt got;
static int n_got;

static int receipt_cb(void *ctx, void *data, size_t sz)
{
	if (sz >= sizeof(got))
		memcpy(&got, data, sizeof(got));
	n_got++;
	return 0;
}

/*
 * A connection reset by the node-down rule leaves a routing receipt:
 * verdict error, the down node, one candidate (that node, node-down), the
 * flow; sampled like a new flow's (none with sampling off).
 */
static void fx_node_down_receipt(int hook)
{
	struct idn_config c = get_config();
	struct idn_flow_key fk;
	struct ring_buffer *rb;
	struct idn_conn cn;
	struct idn_node n;
	struct pg p;
	__u32 id;

	rb = ring_buffer__new(E.receipts, receipt_cb, NULL, NULL);
	if (!ASSERT_TRUE(rb != NULL, "ring buffer"))
		return;
	tcp4(&p, "203.0.113.10", 80, PG_SYN, NULL);
	run_in(hook, &p);
	if (!ASSERT_EQ(R.ret, act_code(hook, A_TX), "SYN forwarded") ||
	    !ASSERT_OK(get_conn(&p, &cn), "conn entry"))
		goto out;
	id = cn.node;
	fk = flow_of(&p);
	n = get_node(id);
	n.health = IDN_HEALTH_DOWN;
	put_node(id, &n);
	ring_buffer__consume(rb);	/* drain earlier receipts */
	c.receipt_sample = 1;
	put_config(&c);
	n_got = 0;
	memset(&got, 0, sizeof(got));
	p.buf[p.l3_off + 20 + 13] = 0x10;	/* ACK: mid-flow */
	pg_fix_csums(&p);
	run_in(hook, &p);
	if (expect(&R, hook, A_TX, IDN_V_ERROR, IDN_DROP_NODE_DOWN)) {
		ring_buffer__consume(rb);
		if (ASSERT_EQ(n_got, 1, "one receipt for the reset")) {
			ASSERT_EQ(got.version, IDN_RECEIPT_VERSION, "version");
			ASSERT_EQ(got.verdict, IDN_V_ERROR, "verdict error");
			ASSERT_EQ(got.node, id, "the down node");
			ASSERT_EQ(got.aff_node, IDN_NODE_NONE, "no affinity node");
			ASSERT_EQ(got.n_cand, 1, "one candidate");
			ASSERT_EQ(got.cand[0].node, id, "cand: the down node");
			ASSERT_EQ(got.cand[0].reject, IDN_REJ_NODE_DOWN, "reason node-down");
			ASSERT_TRUE(!memcmp(&got.flow, &fk, sizeof(fk)), "the flow");
			ASSERT_NEQ(got.ktime_ns, 0, "time");
		}
	}
	/* sampling off: the reset leaves no receipt */
	c.receipt_sample = 0;
	put_config(&c);
	cn = (struct idn_conn){ .node = id, .generation = 1, .cap = CAP_A };
	idn_ct_put(E.conns, &fk, &cn);
	n_got = 0;
	run_in(hook, &p);
	if (expect(&R, hook, A_TX, IDN_V_ERROR, IDN_DROP_NODE_DOWN)) {
		ring_buffer__consume(rb);
		ASSERT_EQ(n_got, 0, "no receipt when off");
	}
out:
	ring_buffer__free(rb);
}

static void fx_vip6_new(int hook)
{
	struct idn_conn c;
	struct pg p;

	tcp6(&p, "2001:db8:feed::10", 80, PG_SYN, NULL);
	run_in(hook, &p);
	if (!expect(&R, hook, A_TX, IDN_V_NEW, 0))
		return;
	/* node 1 is dual-stack: cheapest for IPv6 too (IPv4-only node 3 filtered) */
	check_encap0(&R, &p, 1);
	if (ASSERT_OK(get_conn(&p, &c), "conn entry"))
		ASSERT_EQ(c.node, 1, "conn node v6");
}

static void fx_vlan(int hook)
{
	struct pg p;

	pg_init(&p);
	pg_eth(&p, NULL, NULL);
	pg_vlan(&p, ETH_P_8021Q, 42);
	{
		uint8_t s[4], d[4];

		inet_pton(AF_INET, "192.0.2.10", s);
		inet_pton(AF_INET, "203.0.113.10", d);
		pg_ip4(&p, s, d, IPPROTO_TCP);
	}
	pg_tcp(&p, 41000, 80, PG_SYN, 77, 0);
	pg_opt_mss(&p, 1460);
	pg_finish(&p);
	run_in(hook, &p);
	if (expect(&R, hook, A_TX, IDN_V_NEW, 0))
		check_encap0(&R, &p, 1);
}

static void fx_addr6(int hook)
{
	struct idn_conn c;
	struct idn_aff a;
	struct pg_flow f;
	uint8_t dst[16];
	char ds[64];
	struct pg p;

	pg_addr6_desc(dst, prefix6, 1, 5, CAP_A, 0, 0xabc);
	inet_ntop(AF_INET6, dst, ds, sizeof(ds));
	pg_flow6(&f, "2001:db8:c1::10", ds, 40001, 443, IPPROTO_TCP);
	pg_tcp_pkt(&p, &f, PG_SYN, NULL, 0);
	run_in(hook, &p);
	if (!expect(&R, hook, A_TX, IDN_V_NEW, 0))
		return;
	check_encap0(&R, &p, 1);
	if (ASSERT_OK(get_conn(&p, &c), "conn"))
		ASSERT_EQ(c.node, 1, "conn node");
	if (ASSERT_OK(get_aff(0xabc, CAP_A, &a), "affinity by address token"))
		ASSERT_EQ(a.node, 1, "affinity node");

	/* bad version: malformed, passed; dropped when configured */
	pg_addr6_desc(dst, prefix6, 2, 5, CAP_A, 0, 0xabc);
	inet_ntop(AF_INET6, dst, ds, sizeof(ds));
	pg_flow6(&f, "2001:db8:c1::10", ds, 40002, 443, IPPROTO_TCP);
	pg_tcp_pkt(&p, &f, PG_SYN, NULL, 0);
	run_in(hook, &p);
	expect(&R, hook, A_PASS, IDN_V_MALFORMED, IDN_DROP_BAD_ADDR6);
	unchanged(&R, &p);
	set_cfg_flags(IDN_CFG_F_DROP_MALFORMED, 0);
	run_in(hook, &p);
	expect(&R, hook, A_DROP, IDN_V_MALFORMED, IDN_DROP_BAD_ADDR6);
	set_cfg_flags(0, IDN_CFG_F_DROP_MALFORMED);

	/* scope 3 in the address: decodes, fails validation */
	pg_addr6_desc(dst, prefix6, 1, 5, CAP_A, IDN_POLICY(0, 0, 3), 1);
	inet_ntop(AF_INET6, dst, ds, sizeof(ds));
	pg_flow6(&f, "2001:db8:c1::10", ds, 40003, 443, IPPROTO_TCP);
	pg_tcp_pkt(&p, &f, PG_SYN, NULL, 0);
	run_in(hook, &p);
	expect(&R, hook, A_PASS, IDN_V_MALFORMED, IDN_DROP_BAD_DESC);

	/* prefix off: the same address is not IDN traffic */
	{
		struct idn_config cfg = get_config();

		cfg.prefix6_on = 0;
		put_config(&cfg);
		run_in(hook, &p);
		expect(&R, hook, A_PASS, IDN_V_PASS, 0);
	}
}

/* The option overrides the VIP's policy and gives the token. */
static void fx_opt_valid(int hook)
{
	struct idn_tcpopt o;
	struct idn_conn c;
	struct idn_aff a;
	struct pg p;

	/* trust >= 5: node 1 (trust 3) is out, node 3 (J 210) wins */
	pg_idnopt_fill(&o, 1, 5, IDN_POLICY(5, 0, 0), IDN_SIZE_NONE, 0, 0x0102030405060708ULL);
	tcp4(&p, "203.0.113.10", 80, PG_SYN, &o);
	run_in(hook, &p);
	if (!expect(&R, hook, A_TX, IDN_V_NEW, 0))
		return;
	check_encap0(&R, &p, 3);
	if (ASSERT_OK(get_aff(0x0102030405060708ULL, CAP_A, &a), "affinity by option token"))
		ASSERT_EQ(a.node, 3, "affinity node");
	if (ASSERT_OK(get_conn(&p, &c), "conn"))
		ASSERT_EQ(c.node, 3, "conn node");

	/* the option's capability replaces the VIP's: CAP_D lives on node 21 */
	pg_idnopt_fill(&o, 1, 5, 0, IDN_SIZE_NONE, CAP_D, 9);
	tcp4(&p, "203.0.113.10", 80, PG_SYN, &o);
	run_in(hook, &p);
	if (expect(&R, hook, A_REDIRECT, IDN_V_NEW, 0))
		check_encap(&R, &p, 21, bed_mac1, 0x98, 0x21);

	/* behind the Linux default options */
	pg_init(&p);
	pg_eth(&p, NULL, NULL);
	{
		uint8_t s[4], d[4];

		inet_pton(AF_INET, "192.0.2.10", s);
		inet_pton(AF_INET, "203.0.113.10", d);
		pg_ip4(&p, s, d, IPPROTO_TCP);
	}
	pg_tcp(&p, 41234, 80, PG_SYN, 5, 0);
	pg_opt_mss(&p, 1460);
	pg_opt_sackok(&p);
	pg_opt_nop(&p);
	pg_opt_ws(&p, 7);
	pg_idnopt_fill(&o, 1, 5, IDN_POLICY(0, IDN_PRIV_CONFIDENTIAL, 0), IDN_SIZE_NONE, 0, 77);
	pg_opt_idn(&p, &o);
	pg_finish(&p);
	run_in(hook, &p);
	if (expect(&R, hook, A_TX, IDN_V_NEW, 0))
		check_encap0(&R, &p, 2);	/* the confidential node */
}

static void fx_opt_bad(int hook)
{
	struct idn_tcpopt o;
	struct pg p;
	uint8_t b[24];

	pg_idnopt_fill(&o, 2, 5, 0, IDN_SIZE_NONE, 0, 1);
	tcp4(&p, "203.0.113.10", 80, PG_SYN, &o);
	run_in(hook, &p);
	expect(&R, hook, A_PASS, IDN_V_MALFORMED, IDN_DROP_BAD_OPT_VER);
	unchanged(&R, &p);

	pg_idnopt_fill(&o, 1, 5, 0, IDN_SIZE_NONE, 0, 1);
	o.rsvd = 1;
	tcp4(&p, "203.0.113.10", 80, PG_SYN, &o);
	run_in(hook, &p);
	expect(&R, hook, A_PASS, IDN_V_MALFORMED, IDN_DROP_BAD_OPT);

	pg_idnopt_fill(&o, 1, 5, 0, 16, 0, 1);	/* size class out of range */
	tcp4(&p, "203.0.113.10", 80, PG_SYN, &o);
	run_in(hook, &p);
	expect(&R, hook, A_PASS, IDN_V_MALFORMED, IDN_DROP_BAD_DESC);

	pg_idnopt_fill(&o, 1, 5, 0x80, IDN_SIZE_NONE, 0, 1);	/* policy bit 7 */
	tcp4(&p, "203.0.113.10", 80, PG_SYN, &o);
	run_in(hook, &p);
	expect(&R, hook, A_PASS, IDN_V_MALFORMED, IDN_DROP_BAD_DESC);

	/* IDN ExID with length 16 */
	pg_idnopt_fill(&o, 1, 5, 0, IDN_SIZE_NONE, 0, 1);
	memcpy(b, &o, 20);
	b[1] = 16;
	b[16] = b[17] = b[18] = b[19] = 1;
	pg_init(&p);
	pg_eth(&p, NULL, NULL);
	{
		uint8_t s[4], d[4];

		inet_pton(AF_INET, "192.0.2.10", s);
		inet_pton(AF_INET, "203.0.113.10", d);
		pg_ip4(&p, s, d, IPPROTO_TCP);
	}
	pg_tcp(&p, 42000, 80, PG_SYN, 5, 0);
	pg_opt_raw(&p, b, 20);
	pg_finish(&p);
	run_in(hook, &p);
	expect(&R, hook, A_PASS, IDN_V_MALFORMED, IDN_DROP_BAD_OPT);

	/* an option running past the header */
	{
		struct pg q;
		uint8_t t[4] = { 2, 8, 5, 0xb4 };
		uint8_t s4[4], d4[4];

		inet_pton(AF_INET, "192.0.2.10", s4);
		inet_pton(AF_INET, "203.0.113.10", d4);
		pg_init(&q);
		pg_eth(&q, NULL, NULL);
		pg_ip4(&q, s4, d4, IPPROTO_TCP);
		pg_tcp(&q, 42001, 80, PG_SYN, 5, 0);
		pg_opt_raw(&q, t, 4);
		pg_finish(&q);
		run_in(hook, &q);
		expect(&R, hook, A_PASS, IDN_V_MALFORMED, IDN_DROP_BAD_OPT);
		set_cfg_flags(IDN_CFG_F_DROP_MALFORMED, 0);
		run_in(hook, &q);
		expect(&R, hook, A_DROP, IDN_V_MALFORMED, IDN_DROP_BAD_OPT);
		set_cfg_flags(0, IDN_CFG_F_DROP_MALFORMED);
	}

	/*
	 * options are read on SYNs only: a bad one on an ACK is ignored (the
	 * ACK has no entry: forwarded without state)
	 */
	pg_idnopt_fill(&o, 2, 5, 0, IDN_SIZE_NONE, 0, 1);
	tcp4(&p, "203.0.113.10", 80, PG_ACK, &o);
	run_in(hook, &p);
	expect(&R, hook, A_TX, IDN_V_CONN, IDN_DROP_NO_STATE);
}

/* Cut a VIP SYN at every byte: each cut is counted, never steered. */
static void fx_truncated(int hook)
{
	struct idn_tcpopt o;
	struct pg base[3];
	int fails = 0, tc_refused = 0;

	pg_idnopt_fill(&o, 1, 5, 0, IDN_SIZE_NONE, 0, 3);
	tcp4(&base[0], "203.0.113.10", 80, PG_SYN, &o);
	tcp6(&base[1], "2001:db8:feed::10", 80, PG_SYN, &o);
	/* VLAN-tagged: cuts inside the tag */
	pg_init(&base[2]);
	pg_eth(&base[2], NULL, NULL);
	pg_vlan(&base[2], ETH_P_8021Q, 7);
	{
		uint8_t s[4], d[4];

		inet_pton(AF_INET, "192.0.2.10", s);
		inet_pton(AF_INET, "203.0.113.10", d);
		pg_ip4(&base[2], s, d, IPPROTO_TCP);
	}
	pg_tcp(&base[2], 43000, 80, PG_SYN, 1, 0);
	pg_finish(&base[2]);

	for (int b = 0; b < 3 && fails < 3; b++) {
		for (size_t n = 14; n < base[b].len && fails < 3; n++) {
			struct pg q = base[b];
			int want = n < (size_t)q.l3_off ? IDN_DROP_TRUNC_L2 : IDN_DROP_TRUNC_L3;

			pg_truncate(&q, n);
			run_in(hook, &q);
			/*
			 * The kernel's skb test run refuses a frame whose fixed
			 * L3 header is cut (EINVAL): such a frame never reaches
			 * TC as an skb of that protocol either.
			 */
			if (hook == HOOK_TC && R.err == -EINVAL &&
			    n < (size_t)q.l3_off + (q.family == 6 ? 40 : 20)) {
				tc_refused++;
				continue;
			}
			if (!expect(&R, hook, A_PASS, IDN_V_MALFORMED, want) ||
			    !unchanged(&R, &q)) {
				printf("# packet %d cut at %zu\n", b, n);
				fails++;
			}
		}
	}
	if (tc_refused)
		printf("# tc: %d cuts inside the fixed L3 header refused by the kernel\n",
		       tc_refused);
	/* IP consistent, TCP header short: truncated L4 */
	for (size_t cut = 0; cut < 20 && fails < 3; cut += 3) {
		struct pg q = base[0];

		q.len = (size_t)q.l4_off + cut;
		q.opt_len = 0;
		pg_finish(&q);
		run_in(hook, &q);
		if (!expect(&R, hook, A_PASS, IDN_V_MALFORMED, IDN_DROP_TRUNC_L4)) {
			printf("# l4 cut %zu\n", cut);
			fails++;
		}
	}
	{
		struct pg q;

		udp4(&q, "192.0.2.10", "203.0.113.10", 5000, 53, "x", 1);
		q.len = (size_t)q.l4_off + 5;
		pg_finish(&q);
		run_in(hook, &q);
		expect(&R, hook, A_PASS, IDN_V_MALFORMED, IDN_DROP_TRUNC_L4);
	}
}

static void fx_malformed(int hook)
{
	struct pg p, q;

	tcp4(&p, "203.0.113.10", 80, PG_SYN, NULL);
	q = p;
	pg_ip4h(&q)->ihl = 4;
	pg_fix_csums(&q);
	run_in(hook, &q);
	expect(&R, hook, A_PASS, IDN_V_MALFORMED, IDN_DROP_BAD_IP4);
	unchanged(&R, &q);
	set_cfg_flags(IDN_CFG_F_DROP_MALFORMED, 0);
	run_in(hook, &q);
	expect(&R, hook, A_DROP, IDN_V_MALFORMED, IDN_DROP_BAD_IP4);
	set_cfg_flags(0, IDN_CFG_F_DROP_MALFORMED);

	q = p;
	pg_tcph(&q)->doff = 4;
	pg_fix_csums(&q);
	run_in(hook, &q);
	expect(&R, hook, A_PASS, IDN_V_MALFORMED, IDN_DROP_BAD_TCP);
	q = p;
	pg_tcph(&q)->doff = 15;
	pg_fix_csums(&q);
	run_in(hook, &q);
	expect(&R, hook, A_PASS, IDN_V_MALFORMED, IDN_DROP_BAD_TCP);

	tcp6(&p, "2001:db8:feed::10", 80, PG_SYN, NULL);
	q = p;
	pg_ip6h(&q)->version = 4;
	run_in(hook, &q);
	expect(&R, hook, A_PASS, IDN_V_MALFORMED, IDN_DROP_BAD_IP6);
	set_cfg_flags(IDN_CFG_F_DROP_MALFORMED, 0);
	run_in(hook, &q);
	expect(&R, hook, A_DROP, IDN_V_MALFORMED, IDN_DROP_BAD_IP6);
}

/* Each hard filter, through the policy a SYN's option asks for. */
static void fx_policy_filters(int hook)
{
	static const struct {
		const char *name;
		__u8 policy;
		__u32 node;
	} cases[] = {
		{ "no constraint: cheapest", IDN_POLICY(0, 0, 0), 1 },
		{ "trust >= 5", IDN_POLICY(5, 0, 0), 3 },
		{ "confidential", IDN_POLICY(0, IDN_PRIV_CONFIDENTIAL, 0), 2 },
		{ "hw-bound", IDN_POLICY(0, IDN_PRIV_HW_BOUND, 0), 2 },
		{ "trust 5 + home scope", IDN_POLICY(5, 0, IDN_SCOPE_HOME), 2 },
		{ "plan scope (domain 1)", IDN_POLICY(0, 0, IDN_SCOPE_PLAN), 3 },
		{ "trust 4 + tenant + plan scope", IDN_POLICY(4, IDN_PRIV_TENANT, IDN_SCOPE_PLAN), 3 },
		{ "confidential + plan scope: miss", IDN_POLICY(0, 2, IDN_SCOPE_PLAN), 0 },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct idn_tcpopt o;
		struct pg p;

		pg_idnopt_fill(&o, 1, 5, cases[i].policy, IDN_SIZE_NONE, 0, 100 + i);
		tcp4(&p, "203.0.113.10", 80, PG_SYN, &o);
		run_in(hook, &p);
		if (cases[i].node) {
			if (!expect(&R, hook, A_TX, IDN_V_NEW, 0) ||
			    !check_encap0(&R, &p, cases[i].node))
				printf("# case %s\n", cases[i].name);
		} else {
			if (!expect(&R, hook, A_TX, IDN_V_MISS_REJECT, 0) || !check_rst(&R, &p))
				printf("# case %s\n", cases[i].name);
		}
	}

	/* health: node 1 down, then draining: new flows go to node 3 */
	for (int h = 0; h < 3; h++) {
		static const __u8 hs[3] = { IDN_HEALTH_DOWN, IDN_HEALTH_DRAIN, IDN_HEALTH_UNKNOWN };
		struct idn_node n = get_node(1);
		struct pg p;

		struct idn_tcpopt o;

		n.health = hs[h];
		put_node(1, &n);
		/* a fresh token each time: no affinity from the last run */
		pg_idnopt_fill(&o, 1, 5, 0, IDN_SIZE_NONE, 0, 200 + h);
		tcp4(&p, "203.0.113.10", 80, PG_SYN, &o);
		run_in(hook, &p);
		if (!expect(&R, hook, A_TX, IDN_V_NEW, 0) || !check_encap0(&R, &p, 3))
			printf("# health %u\n", hs[h]);
	}
	/* invalid node entry */
	{
		struct idn_node n = get_node(1);
		struct pg p;

		struct idn_tcpopt o;

		n.health = IDN_HEALTH_UP;
		n.flags = 0;
		put_node(1, &n);
		pg_idnopt_fill(&o, 1, 5, 0, IDN_SIZE_NONE, 0, 300);
		tcp4(&p, "203.0.113.10", 80, PG_SYN, &o);
		run_in(hook, &p);
		if (expect(&R, hook, A_TX, IDN_V_NEW, 0))
			check_encap0(&R, &p, 3);
	}
}

static void fx_variant(int hook)
{
	struct idn_plan pl = mk_plan(1);
	struct idn_tcpopt o;
	struct pg p;

	/* CAP A variant 2: only node 2 runs it, though node 1 is cheaper */
	plan_cand(&pl, 1, 100, 1);
	plan_cand(&pl, 2, 300, 2);
	put_plan(IDN_CAP(0x100, 2), IDN_ANY, IDN_ANY, 0, &pl);
	put_plan(IDN_CAP(0x100, 1), IDN_ANY, IDN_ANY, 0, &pl);
	pg_idnopt_fill(&o, 1, 5, 0, IDN_SIZE_NONE, IDN_CAP(0x100, 2), 1);
	tcp4(&p, "203.0.113.10", 80, PG_SYN, &o);
	run_in(hook, &p);
	if (expect(&R, hook, A_TX, IDN_V_NEW, 0))
		check_encap0(&R, &p, 2);
	pg_idnopt_fill(&o, 1, 5, 0, IDN_SIZE_NONE, IDN_CAP(0x100, 1), 1);
	tcp4(&p, "203.0.113.10", 80, PG_SYN, &o);
	run_in(hook, &p);
	if (expect(&R, hook, A_TX, IDN_V_NEW, 0))
		check_encap0(&R, &p, 1);
}

/*
 * The plan hint (config.plan_bloom, written by idn_plan_commit()): a
 * capability whose bit is clear in a described slot is looked up by its
 * (any, any) plan alone. CAP_D's VIP asks tier 5 policy 0: with a plan of
 * its own for that (node 1) beside the default one (node 21), the hint
 * that names CAP_D, or no hint, finds it; a hint that says CAP_D has only
 * its default plan makes the dataplane skip that lookup.
 */
static void fx_plan_hint(int hook)
{
	struct idn_config c = get_config(), h;
	struct idn_plan pl = mk_plan(1);
	struct pg_flow f;
	struct pg p;
	/* a new client each time: no affinity entry between the steps */
#define HINT_SYN(src) do {							\
		pg_flow4(&f, src, "203.0.113.40", (uint16_t)sport_seq++, 80, IPPROTO_TCP); \
		pg_tcp_pkt(&p, &f, PG_SYN, NULL, 0);				\
	} while (0)

	plan_cand(&pl, 1, 100, 0);
	put_plan(CAP_D, 5, 0, 0, &pl);
	HINT_SYN("192.0.2.61");
	run_in(hook, &p);
	if (expect(&R, hook, A_TX, IDN_V_NEW, 0))
		check_encap0(&R, &p, 1);

	h = c;
	h.flags |= IDN_CFG_F_PLANS0;
	h.plan_bloom[0] = (__u8)IDN_PLAN_BLOOM_BIT(CAP_D);
	put_config(&h);
	HINT_SYN("192.0.2.62");
	run_in(hook, &p);
	if (expect(&R, hook, A_TX, IDN_V_NEW, 0))
		check_encap0(&R, &p, 1);

	h.plan_bloom[0] = (__u8)~IDN_PLAN_BLOOM_BIT(CAP_D);
	put_config(&h);
	HINT_SYN("192.0.2.63");
	run_in(hook, &p);
	if (expect(&R, hook, A_REDIRECT, IDN_V_NEW, 0))	/* node 21: the second device */
		check_encap(&R, &p, 21, bed_mac1, 0x98, 0x21);

	/* a hint of the other slot is not this slot's */
	h.flags = (c.flags & ~IDN_CFG_F_PLANS0) | IDN_CFG_F_PLANS1;
	h.plan_bloom[1] = h.plan_bloom[0];
	h.plan_bloom[0] = 0;
	put_config(&h);
	HINT_SYN("192.0.2.64");
	run_in(hook, &p);
	if (expect(&R, hook, A_TX, IDN_V_NEW, 0))
		check_encap0(&R, &p, 1);
	put_config(&c);
#undef HINT_SYN
}

static void fx_affinity(int hook)
{
	struct idn_aff_key k = { .token = 0xfeed, .cls = IDN_CAP_CLASS(CAP_A) };
	struct idn_aff a = { .node = 3, .last_s = 0 };
	struct idn_plan pl = mk_plan(1);
	struct idn_tcpopt o;
	struct pg p;

	/* state lives on the affinity node: others pay 1000 us */
	plan_cand(&pl, 1, 100, 0);
	plan_cand(&pl, 2, 300, 0);
	plan_cand(&pl, 3, 200, 0);
	for (int i = 0; i < 3; i++)
		pl.cand[i].state_us = 1000;
	put_plan(CAP_A, IDN_ANY, IDN_ANY, 0, &pl);
	{
		struct idn_config c = get_config();

		c.aff_ttl_s = 0;	/* never expires */
		put_config(&c);
	}
	idn_afft_put(E.aff, k.token, k.cls, &a, 0);
	pg_idnopt_fill(&o, 1, 5, 0, IDN_SIZE_NONE, 0, 0xfeed);
	tcp4(&p, "203.0.113.10", 80, PG_SYN, &o);
	run_in(hook, &p);
	if (expect(&R, hook, A_TX, IDN_V_AFFINITY, 0))
		check_encap0(&R, &p, 3);
	ASSERT_EQ(cap_flows(CAP_A, IDN_V_AFFINITY), 1, "cap stats AFFINITY");
	if (ASSERT_OK(get_aff(0xfeed, CAP_A, &a), "affinity kept"))
		ASSERT_EQ(a.node, 3, "same node");

	/* affinity node down: the cheapest other node, affinity moves */
	{
		struct idn_node n = get_node(3);

		n.health = IDN_HEALTH_DOWN;
		put_node(3, &n);
	}
	tcp4(&p, "203.0.113.10", 80, PG_SYN, &o);
	run_in(hook, &p);
	if (expect(&R, hook, A_TX, IDN_V_NEW, 0))
		check_encap0(&R, &p, 1);
	if (ASSERT_OK(get_aff(0xfeed, CAP_A, &a), "affinity updated"))
		ASSERT_EQ(a.node, 1, "moved to node 1");

	/* another capability class has its own affinity */
	ASSERT_NEQ(get_aff(0xfeed, CAP_D, &a), 0, "no entry for another class");

	/* a stale entry (older than aff_ttl_s) is ignored, then refreshed */
	{
		struct idn_config c = get_config();
		struct idn_aff_key k2 = { .token = 0xbeef, .cls = IDN_CAP_CLASS(CAP_A) };
		struct idn_aff old = { .node = 2, .last_s = 1 };
		struct idn_node n = get_node(3);

		n.health = IDN_HEALTH_UP;
		put_node(3, &n);
		c.aff_ttl_s = 5;
		put_config(&c);
		idn_afft_put(E.aff, k2.token, k2.cls, &old, 0);
		pg_idnopt_fill(&o, 1, 5, 0, IDN_SIZE_NONE, 0, 0xbeef);
		tcp4(&p, "203.0.113.10", 80, PG_SYN, &o);
		run_in(hook, &p);
		if (expect(&R, hook, A_TX, IDN_V_NEW, 0))
			check_encap0(&R, &p, 1);
		if (ASSERT_OK(get_aff(0xbeef, CAP_A, &a), "refreshed")) {
			ASSERT_EQ(a.node, 1, "points at the new node");
			ASSERT_TRUE(a.last_s > 1, "fresh stamp");
		}
		/* fresh: used */
		tcp4(&p, "203.0.113.10", 80, PG_SYN, &o);
		run_in(hook, &p);
		if (expect(&R, hook, A_TX, IDN_V_AFFINITY, 0))
			check_encap0(&R, &p, 1);
	}
}

static void fx_conn_sticky(int hook)
{
	struct idn_config c;
	struct idn_plan pl;
	struct idn_conn ce;
	struct pg syn, ack, syn2;
	uint16_t sp;

	tcp4(&syn, "203.0.113.10", 80, PG_SYN, NULL);
	sp = ntohs(pg_tcph(&syn)->source);
	run_in(hook, &syn);
	if (!expect(&R, hook, A_TX, IDN_V_NEW, 0) || !check_encap0(&R, &syn, 1))
		return;

	/* next generation in slot 1: only node 2; then flip */
	pl = mk_plan(2);
	plan_cand(&pl, 2, 100, 0);
	put_plan(CAP_A, IDN_ANY, IDN_ANY, 1, &pl);
	c = get_config();
	c.active_slot = 1;
	c.generation = 2;
	put_config(&c);

	/* the established flow stays on node 1 */
	{
		struct pg_flow f;

		pg_flow4(&f, "192.0.2.10", "203.0.113.10", sp, 80, IPPROTO_TCP);
		pg_tcp_pkt(&ack, &f, PG_ACK, NULL, 200);
	}
	run_in(hook, &ack);
	if (expect(&R, hook, A_TX, IDN_V_CONN, 0))
		check_encap0(&R, &ack, 1);
	/* a new flow follows the new plan */
	tcp4(&syn2, "203.0.113.10", 80, PG_SYN, NULL);
	run_in(hook, &syn2);
	if (expect(&R, hook, A_TX, IDN_V_NEW, 0))
		check_encap0(&R, &syn2, 2);
	if (ASSERT_OK(get_conn(&syn2, &ce), "conn of the new flow"))
		ASSERT_EQ(ce.generation, 2, "chosen by generation 2");
	/* old slot rewritten under the flow: still node 1 */
	pl = mk_plan(3);
	plan_cand(&pl, 3, 100, 0);
	put_plan(CAP_A, IDN_ANY, IDN_ANY, 0, &pl);
	c.active_slot = 0;
	c.generation = 3;
	put_config(&c);
	run_in(hook, &ack);
	if (expect(&R, hook, A_TX, IDN_V_CONN, 0))
		check_encap0(&R, &ack, 1);

	/*
	 * its node goes down: a TCP connection cannot move, it is reset at
	 * once and forgotten (fx_node_down_reset); a new SYN on the same
	 * 5-tuple is chosen again (slot 0: node 3)
	 */
	{
		struct idn_node n = get_node(1);

		n.health = IDN_HEALTH_DOWN;
		put_node(1, &n);
	}
	run_in(hook, &ack);
	if (expect(&R, hook, A_TX, IDN_V_ERROR, IDN_DROP_NODE_DOWN))
		check_rst(&R, &ack);
	{
		struct pg syn1;
		struct pg_flow f;

		pg_flow4(&f, "192.0.2.10", "203.0.113.10", ntohs(pg_tcph(&ack)->source), 80,
			 IPPROTO_TCP);
		pg_tcp_pkt(&syn1, &f, PG_SYN, NULL, 0);
		run_in(hook, &syn1);
		if (expect(&R, hook, A_TX, IDN_V_NEW, 0))
			check_encap0(&R, &syn1, 3);
	}
	/* draining keeps its flows */
	{
		struct idn_node n = get_node(2);

		n.health = IDN_HEALTH_DRAIN;
		put_node(2, &n);
	}
	c.active_slot = 1;
	put_config(&c);
	{
		struct pg a2;
		struct pg_flow f;

		pg_flow4(&f, "192.0.2.10", "203.0.113.10", ntohs(pg_tcph(&syn2)->source), 80,
			 IPPROTO_TCP);
		pg_tcp_pkt(&a2, &f, PG_ACK, NULL, 10);
		run_in(hook, &a2);
		if (expect(&R, hook, A_TX, IDN_V_CONN, 0))
			check_encap0(&R, &a2, 2);
	}
}

static void fx_ladder(int hook)
{
	struct idn_node n1 = get_node(1), n2 = get_node(2), n3 = get_node(3);
	struct idn_tcpopt o;
	struct idn_conn c;
	struct pg p;

	n1.max_queue = n2.max_queue = n3.max_queue = 10;
	put_node(1, &n1);
	put_node(2, &n2);
	put_node(3, &n3);
	tcp4(&p, "203.0.113.30", 80, PG_SYN, NULL);
	run_in(hook, &p);
	if (expect(&R, hook, A_TX, IDN_V_NEW, 0))
		check_encap0(&R, &p, 1);

	/* node 1 full: same variant elsewhere */
	n1.queue_depth = 10;
	put_node(1, &n1);
	tcp4(&p, "203.0.113.30", 80, PG_SYN, NULL);
	run_in(hook, &p);
	if (expect(&R, hook, A_TX, IDN_V_NEW, 0))
		check_encap0(&R, &p, 2);

	/* both full: the cheaper variant */
	n2.queue_depth = 15;
	put_node(2, &n2);
	tcp4(&p, "203.0.113.30", 80, PG_SYN, NULL);
	run_in(hook, &p);
	if (expect(&R, hook, A_TX, IDN_V_FALLBACK, 0))
		check_encap0(&R, &p, 3);
	if (ASSERT_OK(get_conn(&p, &c), "conn"))
		ASSERT_EQ(c.cap, CAP_C2, "conn records the fallback cap");

	/* all full: tier 5 >= shed tier 4 overflows to the cheapest < 2x */
	n3.queue_depth = 10;
	put_node(3, &n3);
	tcp4(&p, "203.0.113.30", 80, PG_SYN, NULL);
	run_in(hook, &p);
	if (expect(&R, hook, A_TX, IDN_V_OVERFLOW, 0))
		check_encap0(&R, &p, 1);
	n1.queue_depth = 20;	/* node 1 at its hard limit */
	put_node(1, &n1);
	tcp4(&p, "203.0.113.30", 80, PG_SYN, NULL);
	run_in(hook, &p);
	if (expect(&R, hook, A_TX, IDN_V_OVERFLOW, 0))
		check_encap0(&R, &p, 2);

	/* tier 3 is shed: RST */
	pg_idnopt_fill(&o, 1, 3, 0, IDN_SIZE_NONE, 0, 1);
	tcp4(&p, "203.0.113.30", 80, PG_SYN, &o);
	run_in(hook, &p);
	if (expect(&R, hook, A_TX, IDN_V_SHED, 0))
		check_rst(&R, &p);
	ASSERT_EQ(cap_flows(CAP_C1, IDN_V_SHED), 1, "cap stats SHED");

	/* past 2x everywhere: no capacity */
	n1.queue_depth = 20;
	n2.queue_depth = 20;
	put_node(1, &n1);
	put_node(2, &n2);
	tcp4(&p, "203.0.113.30", 80, PG_SYN, NULL);
	run_in(hook, &p);
	if (expect(&R, hook, A_TX, IDN_V_NOCAP, 0))
		check_rst(&R, &p);
	ASSERT_EQ(get_conn(&p, &c) != 0, 1, "no conn entry for a rejected flow");
	/* UDP: dropped, still counted */
	udp4(&p, "192.0.2.10", "203.0.113.30", 5353, 53, "q", 1);
	run_in(hook, &p);
	expect(&R, hook, A_DROP, IDN_V_NOCAP, 0);
	/* RST off: dropped */
	set_cfg_flags(IDN_CFG_F_NO_RST, 0);
	tcp4(&p, "203.0.113.30", 80, PG_SYN, NULL);
	run_in(hook, &p);
	expect(&R, hook, A_DROP, IDN_V_NOCAP, 0);
}

static void fx_reject_rst(int hook)
{
	struct pg p;

	/* SYN with payload, v4 */
	{
		struct pg_flow f;

		pg_flow4(&f, "192.0.2.10", "203.0.113.20", 44444, 80, IPPROTO_TCP);
		pg_tcp_pkt(&p, &f, PG_SYN, NULL, 30);
	}
	run_in(hook, &p);
	if (expect(&R, hook, A_TX, IDN_V_MISS_REJECT, 0))
		check_rst(&R, &p);
	/*
	 * ACK or FIN without a flow, no node to send it to: dropped and
	 * counted, never answered (a spoofed segment must not be reflected)
	 */
	tcp4(&p, "203.0.113.20", 80, PG_ACK, NULL);
	run_in(hook, &p);
	expect(&R, hook, A_DROP, IDN_V_NOCAP, IDN_DROP_NO_STATE);
	tcp4(&p, "203.0.113.20", 80, PG_FIN | PG_ACK, NULL);
	run_in(hook, &p);
	expect(&R, hook, A_DROP, IDN_V_NOCAP, IDN_DROP_NO_STATE);
	/* v6 */
	tcp6(&p, "2001:db8:feed::20", 80, PG_SYN, NULL);
	run_in(hook, &p);
	if (expect(&R, hook, A_TX, IDN_V_MISS_REJECT, 0))
		check_rst(&R, &p);
	/* a RST is never answered with a RST */
	tcp4(&p, "203.0.113.20", 80, PG_RST, NULL);
	run_in(hook, &p);
	expect(&R, hook, A_DROP, IDN_V_NOCAP, IDN_DROP_NO_STATE);
	/* a SYN with the RST flag of a rejection is not answered either */
	set_cfg_flags(IDN_CFG_F_NO_RST, 0);
	tcp4(&p, "203.0.113.20", 80, PG_SYN, NULL);
	run_in(hook, &p);
	expect(&R, hook, A_DROP, IDN_V_MISS_REJECT, 0);
	set_cfg_flags(0, IDN_CFG_F_NO_RST);
	/* UDP miss: dropped */
	udp4(&p, "192.0.2.10", "203.0.113.20", 5353, 53, "q", 1);
	run_in(hook, &p);
	expect(&R, hook, A_DROP, IDN_V_MISS_REJECT, 0);
	ASSERT_EQ(cap_flows(CAP_B, IDN_V_MISS_REJECT), 4, "cap stats MISS_REJECT");
}

static void fx_miss_hold(int hook)
{
	struct idn_meta m;
	struct pg p;

	set_cfg_flags(IDN_CFG_F_HOLD, 0);
	tcp4(&p, "203.0.113.20", 80, PG_SYN, NULL);
	run_in(hook, &p);
	if (hook == HOOK_XDP && !(E.features & IDN_FEAT_XDP_META)) {
		/*
		 * Without XDP metadata: XDP passes the miss untouched and
		 * uncounted; TC on the same device decides, marks and counts it.
		 */
		if (!expect(&R, hook, A_PASS, -1, 0))
			return;
		unchanged(&R, &p);
		ASSERT_EQ(R.meta_len, 0, "no metadata without IDN_FEAT_XDP_META");
		run_in(HOOK_TC, &p);
		if (!expect(&R, HOOK_TC, A_PASS, IDN_V_MISS_HOLD, 0))
			return;
		ASSERT_EQ(R.mark & IDN_MARK_MASK, IDN_MARK_MISS, "TC marks the miss XDP passed");
		ASSERT_EQ(R.priority, CAP_B, "skb priority = the full capability");
		udp4(&p, "192.0.2.10", "203.0.113.20", 5353, 53, "q", 1);
		run_in(hook, &p);
		expect(&R, hook, A_PASS, -1, 0);
		run_in(HOOK_TC, &p);
		expect(&R, HOOK_TC, A_PASS, IDN_V_MISS_HOLD, 0);
		ASSERT_EQ(cap_flows(CAP_B, IDN_V_MISS_HOLD), 2, "cap stats MISS_HOLD (TC)");
		return;
	}
	if (!expect(&R, hook, A_PASS, IDN_V_MISS_HOLD, 0))
		return;
	unchanged(&R, &p);
	if (hook == HOOK_XDP) {
		if (ASSERT_EQ(R.meta_len, sizeof(m), "metadata size")) {
			memcpy(&m, R.meta, sizeof(m));
			ASSERT_EQ(m.magic, IDN_META_MAGIC, "meta magic");
			ASSERT_EQ(m.verdict, IDN_V_MISS_HOLD, "meta verdict");
			ASSERT_EQ(m.cap, CAP_B, "meta cap");
		}
	} else {
		ASSERT_EQ(R.mark & IDN_MARK_MASK, IDN_MARK_MISS, "skb mark");
		ASSERT_EQ(R.priority, CAP_B, "skb priority = the full capability");
	}
	/* UDP is held as well */
	udp4(&p, "192.0.2.10", "203.0.113.20", 5353, 53, "q", 1);
	run_in(hook, &p);
	expect(&R, hook, A_PASS, IDN_V_MISS_HOLD, 0);
	ASSERT_EQ(cap_flows(CAP_B, IDN_V_MISS_HOLD), 2, "cap stats MISS_HOLD");
	/* shed/nocap are not misses: never held */
	{
		struct idn_node n;

		for (__u32 id = 1; id <= 3; id++) {
			n = get_node(id);
			n.max_queue = 1;
			n.queue_depth = 5;
			put_node(id, &n);
		}
		tcp4(&p, "203.0.113.30", 80, PG_SYN, NULL);
		run_in(hook, &p);
		if (expect(&R, hook, A_TX, IDN_V_NOCAP, 0))
			check_rst(&R, &p);
	}
}

static void tele_pkt(struct pg *p, const char *src, __u32 node, __u32 seq, __u32 magic)
{
	struct idn_telemetry t;

	pg_tele_fill(&t, node, seq, 0, 42, 5000, 700, 300);
	t.magic = htonl(magic);
	udp4(p, src, "10.99.0.1", 7000, TELE_PORT, &t, sizeof(t));
}

/* A report over IPv6 (queue 7) from @src to the router's fd00:99::1. */
static void tele6_pkt(struct pg *p, const char *src, __u32 node, __u32 seq)
{
	struct idn_telemetry t;
	struct pg_flow f;

	pg_tele_fill(&t, node, seq, 0, 7, 0, 10, 10);
	pg_flow6(&f, src, "fd00:99::1", 7000, TELE_PORT, IPPROTO_UDP);
	pg_udp_pkt(p, &f, &t, sizeof(t));
}

static void fx_telemetry(int hook)
{
	struct idn_node n;
	struct pg p;

	tele_pkt(&p, "10.99.0.11", 1, 10, IDN_TELE_MAGIC);
	run_in(hook, &p);
	expect(&R, hook, A_DROP, IDN_V_TELEMETRY, 0);
	n = get_node(1);
	ASSERT_EQ(n.queue_depth, 42, "queue depth");
	ASSERT_EQ(n.pending_tokens, 5000, "pending tokens");
	ASSERT_EQ(n.load, 700, "load");
	ASSERT_EQ(n.kv_use, 300, "kv");
	ASSERT_EQ(n.tele_seq, 10, "seq");
	ASSERT_NEQ(n.tele_s, 0, "stamped");
	ASSERT_EQ(n.health, IDN_HEALTH_UP, "health 0 leaves it");

	/* replayed and older sequence numbers */
	run_in(hook, &p);
	expect(&R, hook, A_DROP, IDN_V_MALFORMED, IDN_DROP_TELE_REPLAY);
	tele_pkt(&p, "10.99.0.11", 1, 9, IDN_TELE_MAGIC);
	run_in(hook, &p);
	expect(&R, hook, A_DROP, IDN_V_MALFORMED, IDN_DROP_TELE_REPLAY);
	/* spoofed: node 1's report from node 2's address */
	tele_pkt(&p, "10.99.0.12", 1, 11, IDN_TELE_MAGIC);
	run_in(hook, &p);
	expect(&R, hook, A_DROP, IDN_V_MALFORMED, IDN_DROP_TELE_SPOOF);
	/* per family: node 1's report from node 2's IPv6 locator */
	tele6_pkt(&p, "fd00:99::12", 1, 11);
	run_in(hook, &p);
	expect(&R, hook, A_DROP, IDN_V_MALFORMED, IDN_DROP_TELE_SPOOF);
	/* IPv4-only node 3: any IPv6 source is a spoof, even its host's */
	tele6_pkt(&p, "fd00:99::13", 3, 1);
	run_in(hook, &p);
	expect(&R, hook, A_DROP, IDN_V_MALFORMED, IDN_DROP_TELE_SPOOF);
	/* IPv6-only node 11: no IPv4 source is its own */
	tele_pkt(&p, "10.99.0.14", 11, 1, IDN_TELE_MAGIC);
	run_in(hook, &p);
	expect(&R, hook, A_DROP, IDN_V_MALFORMED, IDN_DROP_TELE_SPOOF);
	ASSERT_EQ(get_node(3).tele_seq, 0, "node 3 untouched");
	ASSERT_EQ(get_node(11).tele_seq, 0, "node 11 untouched");
	/* bad magic */
	tele_pkt(&p, "10.99.0.11", 1, 12, 0x12345678);
	run_in(hook, &p);
	expect(&R, hook, A_DROP, IDN_V_MALFORMED, IDN_DROP_BAD_TELEMETRY);
	/* short datagram */
	udp4(&p, "10.99.0.11", "10.99.0.1", 7000, TELE_PORT, "IDNT", 4);
	run_in(hook, &p);
	expect(&R, hook, A_DROP, IDN_V_MALFORMED, IDN_DROP_BAD_TELEMETRY);
	/* node id out of range / unknown */
	tele_pkt(&p, "10.99.0.11", IDN_MAX_NODES, 13, IDN_TELE_MAGIC);
	run_in(hook, &p);
	expect(&R, hook, A_DROP, IDN_V_MALFORMED, IDN_DROP_BAD_TELEMETRY);
	n = get_node(1);
	ASSERT_EQ(n.tele_seq, 10, "bad reports changed nothing");
	ASSERT_EQ(n.queue_depth, 42, "bad reports changed nothing");

	/* serial arithmetic: 0xfffffff0 is older than 10, 11 is newer */
	{
		struct idn_telemetry t;

		pg_tele_fill(&t, 1, 0xfffffff0U, 0, 1, 1, 1, 1);
		udp4(&p, "10.99.0.11", "10.99.0.1", 7000, TELE_PORT, &t, sizeof(t));
		run_in(hook, &p);
		expect(&R, hook, A_DROP, IDN_V_MALFORMED, IDN_DROP_TELE_REPLAY);
		pg_tele_fill(&t, 1, 11, IDN_HEALTH_DOWN, 1, 1, 1, 1);
		udp4(&p, "10.99.0.11", "10.99.0.1", 7000, TELE_PORT, &t, sizeof(t));
		run_in(hook, &p);
		expect(&R, hook, A_DROP, IDN_V_TELEMETRY, 0);
		ASSERT_EQ(get_node(1).health, IDN_HEALTH_DOWN, "health from telemetry");
	}

	/* IPv6-only node */
	tele6_pkt(&p, "fd00:99::14", 11, 1);
	run_in(hook, &p);
	expect(&R, hook, A_DROP, IDN_V_TELEMETRY, 0);
	ASSERT_EQ(get_node(11).queue_depth, 7, "v6 node updated");
	/* dual-stack node 1 from its IPv6 locator: the same entry, next seq */
	tele6_pkt(&p, "fd00:99::11", 1, 12);
	run_in(hook, &p);
	expect(&R, hook, A_DROP, IDN_V_TELEMETRY, 0);
	ASSERT_EQ(get_node(1).tele_seq, 12, "node 1 updated over IPv6");
	ASSERT_EQ(get_node(1).queue_depth, 7, "node 1 queue from the IPv6 report");
	/* ... and the sequence is shared between its two locators */
	tele_pkt(&p, "10.99.0.11", 1, 12, IDN_TELE_MAGIC);
	run_in(hook, &p);
	expect(&R, hook, A_DROP, IDN_V_MALFORMED, IDN_DROP_TELE_REPLAY);

	/* telemetry off: an ordinary datagram */
	set_cfg_flags(0, IDN_CFG_F_TELEMETRY);
	tele_pkt(&p, "10.99.0.12", 2, 1, IDN_TELE_MAGIC);
	run_in(hook, &p);
	expect(&R, hook, A_PASS, IDN_V_PASS, 0);
	ASSERT_EQ(get_node(2).tele_seq, 0, "not consumed");
}

/* Telemetry moves new flows: node 1's queue over its limit. */
static void fx_telemetry_steers(int hook)
{
	struct idn_node n = get_node(1);
	struct idn_telemetry t;
	struct pg p;

	n.max_queue = 8;
	put_node(1, &n);
	tcp4(&p, "203.0.113.10", 80, PG_SYN, NULL);
	run_in(hook, &p);
	if (expect(&R, hook, A_TX, IDN_V_NEW, 0))
		check_encap0(&R, &p, 1);
	pg_tele_fill(&t, 1, 1, 0, 9, 0, 0, 0);
	udp4(&p, "10.99.0.11", "10.99.0.1", 7000, TELE_PORT, &t, sizeof(t));
	run_in(hook, &p);
	expect(&R, hook, A_DROP, IDN_V_TELEMETRY, 0);
	tcp4(&p, "203.0.113.10", 80, PG_SYN, NULL);
	run_in(hook, &p);
	if (expect(&R, hook, A_TX, IDN_V_NEW, 0))
		check_encap0(&R, &p, 3);
}

/*
 * Authenticated telemetry (docs/security.md): node 1 reports itself busy;
 * a forged "idle" datagram from its own locator (bad MAC), one of another
 * key generation and one for a node without a key are dropped and
 * counted, and do not steer; a new key generation (a re-registration)
 * lets a lower sequence in and keeps the old key's datagrams out.
 */
static void fx_telemetry_auth(int hook)
{
	struct idn_node n = get_node(1);
	struct idn_telemetry t;
	uint8_t key1[16], key2[16];
	struct pg p;

	pg_tele_key(1, key1);
	n.max_queue = 8;
	put_node(1, &n);
	pg_tele_fill(&t, 1, 100, 0, 9, 0, 0, 0);
	udp4(&p, "10.99.0.11", "10.99.0.1", 7000, TELE_PORT, &t, sizeof(t));
	run_in(hook, &p);
	expect(&R, hook, A_DROP, IDN_V_TELEMETRY, 0);

	pg_tele_fill(&t, 1, 101, 0, 0, 0, 0, 0);
	t.mac[3] ^= 0x20;
	udp4(&p, "10.99.0.11", "10.99.0.1", 7000, TELE_PORT, &t, sizeof(t));
	run_in(hook, &p);
	expect(&R, hook, A_DROP, IDN_V_MALFORMED, IDN_DROP_TELE_MAC);
	ASSERT_EQ(get_node(1).queue_depth, 9, "forged: node 1 still busy");
	ASSERT_EQ(get_tele_key(1).seq, 100, "forged: window unmoved");
	tcp4(&p, "203.0.113.10", 80, PG_SYN, NULL);
	run_in(hook, &p);
	if (expect(&R, hook, A_TX, IDN_V_NEW, 0))
		check_encap0(&R, &p, 3);	/* not to the "idle" node 1 */

	pg_tele_fill(&t, 1, 102, 0, 0, 0, 0, 0);
	pg_tele_mac(&t, key1, PG_TELE_KEY_ID + 1);
	udp4(&p, "10.99.0.11", "10.99.0.1", 7000, TELE_PORT, &t, sizeof(t));
	run_in(hook, &p);
	expect(&R, hook, A_DROP, IDN_V_MALFORMED, IDN_DROP_TELE_MAC);

	del_tele_key(1);
	pg_tele_fill(&t, 1, 103, 0, 0, 0, 0, 0);
	udp4(&p, "10.99.0.11", "10.99.0.1", 7000, TELE_PORT, &t, sizeof(t));
	run_in(hook, &p);
	expect(&R, hook, A_DROP, IDN_V_MALFORMED, IDN_DROP_TELE_NOKEY);
	ASSERT_EQ(get_node(1).queue_depth, 9, "no key: nothing applied");

	/* the next registration: generation 2, and the agent restarted at seq 5 */
	memcpy(key2, key1, sizeof(key2));
	key2[0] ^= 0xff;
	put_tele_key(1, key2, PG_TELE_KEY_ID + 1);
	pg_tele_fill(&t, 1, 104, 0, 0, 0, 0, 0);	/* the old key */
	udp4(&p, "10.99.0.11", "10.99.0.1", 7000, TELE_PORT, &t, sizeof(t));
	run_in(hook, &p);
	expect(&R, hook, A_DROP, IDN_V_MALFORMED, IDN_DROP_TELE_MAC);
	pg_tele_fill(&t, 1, 5, 0, 2, 0, 0, 0);
	pg_tele_mac(&t, key2, PG_TELE_KEY_ID + 1);
	udp4(&p, "10.99.0.11", "10.99.0.1", 7000, TELE_PORT, &t, sizeof(t));
	run_in(hook, &p);
	expect(&R, hook, A_DROP, IDN_V_TELEMETRY, 0);
	ASSERT_EQ(get_node(1).queue_depth, 2, "new generation, lower sequence: applied");
	ASSERT_TRUE(get_tele_key(1).seq == 5 && (get_tele_key(1).flags & IDN_TKEY_F_SEEN),
		    "window from 5");
	run_in(hook, &p);
	expect(&R, hook, A_DROP, IDN_V_MALFORMED, IDN_DROP_TELE_REPLAY);
}

/* Which of nodes 1 and 2 an IPv4 packet was encapsulated to (0: neither). */
static __u32 out_node12(const struct run *r)
{
	for (__u32 id = 1; id <= 2; id++) {
		struct idn_node n = get_node(id);

		if (r->out_len >= 14 + 20 && !memcmp(r->out + 14 + 16, &n.addr4, 4))
			return id;
	}
	return 0;
}

/* CAP_A served by nodes 1 and 2 alike: 1000 ns per token, no queue. */
static struct idn_plan charge_world(void)
{
	struct idn_plan pl = mk_plan(1);

	for (__u32 id = 1; id <= 2; id++) {
		struct idn_node n = get_node(id);

		n.tok_ns = 1000;
		put_node(id, &n);
	}
	pl.prompt_tokens = 500;
	plan_cand(&pl, 1, 100, 0);
	plan_cand(&pl, 2, 100, 0);
	return pl;
}

/*
 * Self-accounting: each new flow charges its expected prefill (the plan's
 * mean, or the size class) to its node, so a burst between two datagrams
 * alternates between equal nodes; the node's datagram resets its charge;
 * an established flow's packets charge nothing.
 */
static void fx_charge(int hook)
{
	struct idn_plan pl = charge_world();
	unsigned int hits[3] = { 0 };
	struct idn_tcpopt o;
	struct pg p, syn = { 0 };

	put_plan(CAP_A, IDN_ANY, IDN_ANY, 0, &pl);
	for (int i = 0; i < 6; i++) {
		pg_idnopt_fill(&o, 1, 5, 0, IDN_SIZE_NONE, 0, 0x100 + i);
		tcp4(&p, "203.0.113.10", 80, PG_SYN, &o);
		run_in(hook, &p);
		if (!expect(&R, hook, A_TX, IDN_V_NEW, 0))
			return;
		hits[out_node12(&R)]++;
		if (!i)
			syn = p;
	}
	ASSERT_EQ(hits[1], 3, "half the burst on node 1");
	ASSERT_EQ(hits[2], 3, "half on node 2");
	ASSERT_EQ(get_node(1).charged_tokens, 1500, "node 1 charged 3 x 500");
	ASSERT_EQ(get_node(2).charged_tokens, 1500, "node 2 charged 3 x 500");

	/* the same SYN again is the established flow's: no charge */
	run_in(hook, &syn);
	expect(&R, hook, A_TX, IDN_V_CONN, 0);
	ASSERT_EQ(get_node(1).charged_tokens + get_node(2).charged_tokens, 3000,
		  "retransmission not charged");

	/* size class 2: 1024 tokens */
	pg_idnopt_fill(&o, 1, 5, 0, 2, 0, 0x200);
	tcp4(&p, "203.0.113.10", 80, PG_SYN, &o);
	run_in(hook, &p);
	if (expect(&R, hook, A_TX, IDN_V_NEW, 0))
		ASSERT_EQ(get_node(out_node12(&R)).charged_tokens, 1500 + 1024,
			  "sized request charged 256 << 2");

	/* node 1 reports: its charge is superseded, node 2's stays */
	{
		__u32 c2 = get_node(2).charged_tokens;

		tele_pkt(&p, "10.99.0.11", 1, 10, IDN_TELE_MAGIC);
		run_in(hook, &p);
		expect(&R, hook, A_DROP, IDN_V_TELEMETRY, 0);
		ASSERT_EQ(get_node(1).charged_tokens, 0, "telemetry resets the charge");
		ASSERT_EQ(get_node(1).pending_tokens, 5000, "to the node's own count");
		ASSERT_EQ(get_node(2).charged_tokens, c2, "other node keeps its charge");
	}
}

/*
 * SLO shedding: tier 5 under shed_tier 6 is shed (RST) when both queues
 * put the expected TTFT over the SLO; a prompt over the SLO even on an
 * idle node is served; a node back under the SLO serves again.
 */
static void fx_slo_shed(int hook)
{
	struct idn_plan pl = charge_world();
	struct idn_tcpopt o;
	struct pg p;

	pl.slo_us = 2000;
	pl.shed_tier = 6;
	put_plan(CAP_A, IDN_ANY, IDN_ANY, 0, &pl);
	for (__u32 id = 1; id <= 2; id++) {
		struct idn_node n = get_node(id);

		n.pending_tokens = 5000;	/* 5 ms of prefill queued */
		put_node(id, &n);
	}
	tcp4(&p, "203.0.113.10", 80, PG_SYN, NULL);
	run_in(hook, &p);
	if (expect(&R, hook, A_TX, IDN_V_SHED, 0))
		check_rst(&R, &p);
	ASSERT_EQ(get_node(1).charged_tokens + get_node(2).charged_tokens, 0,
		  "a shed request charges nothing");

	/* 64k tokens take 65 ms on an idle node: served, not shed */
	pg_idnopt_fill(&o, 1, 5, 0, 8, 0, 0x300);
	tcp4(&p, "203.0.113.10", 80, PG_SYN, &o);
	run_in(hook, &p);
	expect(&R, hook, A_TX, IDN_V_NEW, 0);

	/* node 2 drains its queue: it takes new flows again */
	{
		struct idn_node n = get_node(2);

		n.pending_tokens = 0;
		n.charged_tokens = 0;
		put_node(2, &n);
	}
	tcp4(&p, "203.0.113.10", 80, PG_SYN, NULL);
	run_in(hook, &p);
	if (expect(&R, hook, A_TX, IDN_V_NEW, 0))
		check_encap0(&R, &p, 2);
}

static void fx_fib_and_mtu(int hook)
{
	struct pg p;

	/* no route to node 30: encapsulated and handed to the kernel */
	tcp4(&p, "203.0.113.50", 80, PG_SYN, NULL);
	run_in(hook, &p);
	if (expect(&R, hook, A_PASS, IDN_V_NEW, IDN_DROP_FIB)) {
		struct idn_node n = get_node(30);

		ASSERT_EQ(R.out_len, p.len + 20, "encapsulated");
		ASSERT_MEM(R.out + 14 + 16, &n.addr4, 4, "outer dst = locator");
		ASSERT_MEM(R.out + 14 + 20, p.buf + 14, p.len - 14, "inner intact");
	}
	/* the same over IPv6: its IPv6 locator, no route either */
	tcp6(&p, "2001:db8:feed::50", 80, PG_SYN, NULL);
	run_in(hook, &p);
	if (expect(&R, hook, A_PASS, IDN_V_NEW, IDN_DROP_FIB)) {
		struct idn_node n = get_node(30);

		ASSERT_EQ(R.out_len, p.len + 40, "encapsulated v6");
		ASSERT_MEM(R.out + 14 + 24, n.addr6, 16, "outer dst = IPv6 locator");
		ASSERT_MEM(R.out + 14 + 40, p.buf + 14, p.len - 14, "inner intact v6");
	}
	/* 1490-byte IP packet + 20 > 1500 MTU */
	{
		struct pg_flow f;

		pg_flow4(&f, "192.0.2.10", "203.0.113.10", 45000, 80, IPPROTO_TCP);
		pg_tcp_pkt(&p, &f, PG_SYN, NULL, 0);	/* the connection's entry */
		run_in(hook, &p);
		expect(&R, hook, A_TX, IDN_V_NEW, 0);
		pg_tcp_pkt(&p, &f, PG_ACK, NULL, 1490 - 40);
		run_in(hook, &p);
		expect(&R, hook, A_DROP, IDN_V_ERROR, IDN_DROP_MTU);
		pg_tcp_pkt(&p, &f, PG_ACK, NULL, 1480 - 40);
		run_in(hook, &p);
		if (expect(&R, hook, A_TX, IDN_V_CONN, 0))
			check_encap0(&R, &p, 1);
	}
}

static void set_health(__u32 id, __u8 health)
{
	struct idn_node n = get_node(id);

	n.health = health;
	put_node(id, &n);
}

static struct idn_nexthop get_nh(__u32 id, int v6)
{
	struct idn_nexthop nh = { 0 };
	__u32 k = IDN_NH_KEY(id, v6);

	bpf_map_lookup_elem(E.nh, &k, &nh);
	return nh;
}

/*
 * Dual-stack nodes: a token's affinity (per node id) survives a client
 * switching family, each request leaves toward the locator of its own
 * family, next hops are cached per (node, family), and a node lacking the
 * request family's locator is filtered even when it holds the affinity.
 */
static void fx_dual_stack(int hook)
{
	struct idn_aff_key k3 = { .token = 0xd6, .cls = IDN_CAP_CLASS(CAP_A) };
	struct idn_aff a;
	struct idn_plan pl = mk_plan(1);
	struct idn_nexthop nh4, nh6;
	struct idn_tcpopt o;
	struct pg p6, p4, ack;

	/* state lives on the affinity node: others pay 1000 us */
	plan_cand(&pl, 1, 100, 0);
	plan_cand(&pl, 2, 300, 0);
	plan_cand(&pl, 3, 200, 0);
	plan_cand(&pl, 11, 150, 0);
	for (int i = 0; i < pl.n_cand; i++)
		pl.cand[i].state_us = 1000;
	put_plan(CAP_A, IDN_ANY, IDN_ANY, 0, &pl);

	/* over IPv6 first, with nodes 1 and 11 draining: node 2 */
	set_health(1, IDN_HEALTH_DRAIN);
	set_health(11, IDN_HEALTH_DRAIN);
	pg_idnopt_fill(&o, 1, 5, 0, IDN_SIZE_NONE, 0, 0xd5);
	tcp6(&p6, "2001:db8:feed::10", 80, PG_SYN, &o);
	run_in(hook, &p6);
	if (expect(&R, hook, A_TX, IDN_V_NEW, 0))
		check_encap0(&R, &p6, 2);
	if (ASSERT_OK(get_aff(0xd5, CAP_A, &a), "affinity learnt over IPv6"))
		ASSERT_EQ(a.node, 2, "token on node 2");
	set_health(1, IDN_HEALTH_UP);
	set_health(11, IDN_HEALTH_UP);

	/* the same token over IPv4: still node 2, by affinity (1 is cheaper) */
	tcp4(&p4, "203.0.113.10", 80, PG_SYN, &o);
	run_in(hook, &p4);
	if (expect(&R, hook, A_TX, IDN_V_AFFINITY, 0))
		check_encap0(&R, &p4, 2);
	/* and back over IPv6 (11 is cheaper there) */
	tcp6(&p6, "2001:db8:feed::10", 80, PG_SYN, &o);
	run_in(hook, &p6);
	if (expect(&R, hook, A_TX, IDN_V_AFFINITY, 0))
		check_encap0(&R, &p6, 2);
	ASSERT_EQ(cap_flows(CAP_A, IDN_V_AFFINITY), 2, "two affinity hits");

	/* one next hop per (node, family) */
	nh4 = get_nh(2, 0);
	nh6 = get_nh(2, 1);
	ASSERT_EQ(nh4.ifindex, E.if0, "IPv4 next hop of node 2 cached");
	ASSERT_EQ(nh6.ifindex, E.if0, "IPv6 next hop of node 2 cached");
	ASSERT_EQ(get_nh(1, 0).ifindex | get_nh(1, 1).ifindex, 0, "node 1 never resolved");

	/*
	 * Poison the IPv6 entry only: the established IPv6 flow uses it
	 * (no FIB lookup for established flows), the IPv4 one does not.
	 */
	{
		__u32 key = IDN_NH_KEY(2, 1);

		nh6.dmac[5] = 0xee;
		bpf_map_update_elem(E.nh, &key, &nh6, BPF_ANY);
	}
	ack = p6;
	pg_tcph(&ack)->syn = 0;
	pg_tcph(&ack)->ack = 1;
	pg_fix_csums(&ack);
	run_in(hook, &ack);
	if (expect(&R, hook, A_TX, IDN_V_CONN, 0))
		ASSERT_EQ(R.out[5], 0xee, "IPv6 flow: IPv6 next hop entry");
	ack = p4;
	pg_tcph(&ack)->syn = 0;
	pg_tcph(&ack)->ack = 1;
	pg_fix_csums(&ack);
	run_in(hook, &ack);
	if (expect(&R, hook, A_TX, IDN_V_CONN, 0))
		check_encap0(&R, &ack, 2);

	/* affinity on the IPv4-only node 3: an IPv6 request is filtered there */
	a.node = 3;
	a.last_s = 0;
	idn_afft_put(E.aff, k3.token, k3.cls, &a, 0);
	pg_idnopt_fill(&o, 1, 5, 0, IDN_SIZE_NONE, 0, 0xd6);
	tcp4(&p4, "203.0.113.10", 80, PG_SYN, &o);
	run_in(hook, &p4);
	if (expect(&R, hook, A_TX, IDN_V_AFFINITY, 0))
		check_encap0(&R, &p4, 3);
	tcp6(&p6, "2001:db8:feed::10", 80, PG_SYN, &o);
	run_in(hook, &p6);
	if (expect(&R, hook, A_TX, IDN_V_NEW, 0))
		check_encap0(&R, &p6, 1);
	if (ASSERT_OK(get_aff(0xd6, CAP_A, &a), "affinity moved"))
		ASSERT_EQ(a.node, 1, "to the dual-stack node 1");
}


static void fx_receipt(int hook)
{
	struct idn_config c = get_config();
	struct ring_buffer *rb;
	struct idn_tcpopt o;
	struct pg p;

	rb = ring_buffer__new(E.receipts, receipt_cb, NULL, NULL);
	if (!ASSERT_TRUE(rb != NULL, "ring buffer"))
		return;
	ring_buffer__consume(rb);	/* drain earlier fixtures' receipts */
	n_got = 0;
	c.receipt_sample = 1;
	put_config(&c);
	pg_idnopt_fill(&o, 1, 5, IDN_POLICY(5, 0, 0), IDN_SIZE_NONE, 0, 0x77);
	tcp4(&p, "203.0.113.10", 80, PG_SYN, &o);
	run_in(hook, &p);
	if (expect(&R, hook, A_TX, IDN_V_NEW, 0)) {
		ring_buffer__consume(rb);
		if (ASSERT_EQ(n_got, 1, "one receipt")) {
			ASSERT_EQ(got.version, IDN_RECEIPT_VERSION, "version");
			ASSERT_EQ(got.verdict, IDN_V_NEW, "verdict");
			ASSERT_EQ(got.node, 3, "node");
			ASSERT_EQ(got.generation, 1, "generation");
			ASSERT_EQ(got.n_cand, 5, "5 candidates");
			ASSERT_EQ(got.cand[0].node, 1, "cand 0");
			ASSERT_EQ(got.cand[0].reject, IDN_REJ_TRUST, "node 1 by trust");
			ASSERT_EQ(got.cand[2].reject, IDN_REJ_NONE, "node 3 feasible");
			ASSERT_EQ(got.cand[2].cost, 210, "node 3 J");
			ASSERT_EQ(got.cand[3].reject, IDN_REJ_FAMILY, "v6 node by family");
			ASSERT_EQ(got.desc.token, 0x77, "token");
			ASSERT_TRUE(got.desc.flags & IDN_DF_OPT, "source: option");
		}
	}
	/* sampling off: no receipt */
	c.receipt_sample = 0;
	put_config(&c);
	n_got = 0;
	tcp4(&p, "203.0.113.10", 80, PG_SYN, NULL);
	run_in(hook, &p);
	ring_buffer__consume(rb);
	ASSERT_EQ(n_got, 0, "no receipt when off");
	ring_buffer__free(rb);
}

static int conn_count(void)
{
	return idn_ct_count(E.conns);
}

/* The node an encapsulated output went to (IPv4 outer), or -1. */
static int out_node4(const struct run *r)
{
	__u32 dst;

	if (r->out_len < 14 + 20 || r->out[14 + 9] != IPPROTO_IPIP)
		return -1;
	memcpy(&dst, r->out + 14 + 16, 4);
	for (__u32 id = 1; id < BED_MAX_NODE; id++) {
		struct idn_node n = get_node(id);

		if ((n.flags & IDN_NODE_F_LOC4) && n.addr4 == dst)
			return (int)id;
	}
	return -1;
}

/*
 * State only for real connections: a segment that is not a SYN and has
 * no connection entry is never chosen by load and writes no table; it
 * goes to its token's affinity node (where the client's connection was
 * put), else to the rendezvous choice over the plan.
 */
static void fx_no_state(int hook)
{
	static const uint8_t mid[] = { PG_ACK, PG_ACK | PG_PSH, PG_FIN | PG_ACK, PG_RST,
				       PG_RST | PG_ACK, PG_SYN | PG_ACK };
	struct idn_flow_key k;
	struct pg_flow f;
	struct pg syn, p;
	int first;

	/* a live connection on node 1; then the connection table is flushed */
	pg_flow4(&f, "192.0.2.10", "203.0.113.10", 46000, 80, IPPROTO_TCP);
	pg_tcp_pkt(&syn, &f, PG_SYN, NULL, 0);
	run_in(hook, &syn);
	if (!expect(&R, hook, A_TX, IDN_V_NEW, 0) || !check_encap0(&R, &syn, 1))
		return;
	idn_ct_clear_all(E.conns);
	/* node 1 now looks worse than node 3: load must not move the connection */
	{
		struct idn_node n = get_node(1);

		n.queue_depth = 500;
		n.load = 900;
		put_node(1, &n);
	}
	for (size_t i = 0; i < sizeof(mid); i++) {
		pg_tcp_pkt(&p, &f, mid[i], NULL, mid[i] & PG_PSH ? 100 : 0);
		run_in(hook, &p);
		if (!expect(&R, hook, A_TX, IDN_V_CONN, IDN_DROP_NO_STATE) ||
		    !check_encap0(&R, &p, 1))
			printf("# flags 0x%02x\n", mid[i]);
	}
	ASSERT_EQ(conn_count(), 0, "mid-flow segments insert nothing");
	k = flow_of(&p);
	ASSERT_TRUE(idn_ct_get(E.conns, &k, &(struct idn_conn){ 0 }) != 0,
		    "no entry for the flow");

	/* without affinity either: the rendezvous choice, the same every time */
	idn_afft_clear_all(E.aff);
	pg_flow4(&f, "192.0.2.77", "203.0.113.10", 47000, 80, IPPROTO_TCP);
	pg_tcp_pkt(&p, &f, PG_ACK, NULL, 10);
	run_in(hook, &p);
	first = out_node4(&R);
	expect(&R, hook, A_TX, IDN_V_CONN, IDN_DROP_NO_STATE);
	ASSERT_TRUE(first == 1 || first == 2 || first == 3, "a v4 candidate of the plan");
	for (int i = 0; i < 3; i++) {
		run_in(hook, &p);
		ASSERT_EQ(out_node4(&R), first, "same node every time");
	}
	/* spreads: many flows land on more than one candidate */
	{
		int seen[4] = { 0 }, kinds = 0;

		for (int i = 0; i < 64; i++) {
			int nd;

			pg_flow4(&f, "192.0.2.78", "203.0.113.10", (uint16_t)(48000 + i), 80,
				 IPPROTO_TCP);
			pg_tcp_pkt(&p, &f, PG_ACK, NULL, 0);
			run_in(hook, &p);
			nd = out_node4(&R);
			if (nd >= 1 && nd <= 3 && !seen[nd]++)
				kinds++;
		}
		ASSERT_TRUE(kinds >= 2, "rendezvous spreads flows over candidates");
	}

	/* a flood of 2000 spoofed ACKs: not one entry */
	for (int i = 0; i < 2000; i++) {
		char src[32];

		snprintf(src, sizeof(src), "198.18.%d.%d", i / 250, 1 + i % 250);
		pg_flow4(&f, src, "203.0.113.10", (uint16_t)(1024 + i), 80, IPPROTO_TCP);
		pg_tcp_pkt(&p, &f, i & 1 ? PG_ACK : PG_RST, NULL, 0);
		run_pkt(hook, p.buf, p.len, E.if0, &R);
		if (R.drop != IDN_DROP_NO_STATE) {
			ASSERT_EQ(R.drop, IDN_DROP_NO_STATE, "counted no-state");
			break;
		}
	}
	ASSERT_EQ(conn_count(), 0, "2000 spoofed mid-flow segments: no entry");

	/* nowhere to go (every candidate down): dropped, counted */
	for (__u32 id = 1; id <= 3; id++) {
		struct idn_node n = get_node(id);

		n.health = IDN_HEALTH_DOWN;
		put_node(id, &n);
	}
	run_in(hook, &p);
	expect(&R, hook, A_DROP, IDN_V_NOCAP, IDN_DROP_NO_STATE);

	/* a UDP flow's first packet still creates its state */
	udp4(&p, "192.0.2.10", "203.0.113.10", 5300, 53, "q", 1);
	{
		struct idn_node n = get_node(1);

		n.health = IDN_HEALTH_UP;
		put_node(1, &n);
	}
	run_in(hook, &p);
	expect(&R, hook, A_TX, IDN_V_NEW, 0);
	ASSERT_EQ(conn_count(), 1, "UDP first packet: one entry");
}

static int aff_count(void)
{
	return idn_afft_count(E.aff);
}

/*
 * Flood guard: above config.flood_rate new flows per CPU per coarse
 * second, new flows are chosen statelessly and write no table, so a SYN
 * flood cannot evict live flows; their later segments follow them.
 */
static void fx_flood_guard(int hook)
{
	struct idn_config c = get_config();
	int inserted = 0, guarded = 0, conns0, aff0;
	cpu_set_t set, old;
	struct pg_flow f;
	struct pg live, p, ack;

	/* per-CPU counters: every run on one CPU */
	sched_getaffinity(0, sizeof(old), &old);
	CPU_ZERO(&set);
	for (int i = 0; i < CPU_SETSIZE; i++)
		if (CPU_ISSET(i, &old)) {
			CPU_SET(i, &set);
			break;
		}
	sched_setaffinity(0, sizeof(set), &set);

	/* this second's count starts at 0 (the other hook's run may have counted) */
	{
		__u64 *zero = calloc(E.ncpu, sizeof(*zero));
		__u32 k = 0;

		if (zero)
			bpf_map_update_elem(bpf_map__fd(E.skel->maps.idn_flood), &k, zero, BPF_ANY);
		free(zero);
	}
	c.flood_rate = 3;
	put_config(&c);
	pg_flow4(&f, "192.0.2.10", "203.0.113.10", 49000, 80, IPPROTO_TCP);
	pg_tcp_pkt(&live, &f, PG_SYN, NULL, 0);
	run_in(hook, &live);
	expect(&R, hook, A_TX, IDN_V_NEW, 0);
	conns0 = conn_count();
	aff0 = aff_count();
	for (int i = 0; i < 40; i++) {
		char src[32];

		snprintf(src, sizeof(src), "198.18.1.%d", 1 + i);
		pg_flow4(&f, src, "203.0.113.10", (uint16_t)(2000 + i), 80, IPPROTO_TCP);
		pg_tcp_pkt(&p, &f, PG_SYN, NULL, 0);
		run_in(hook, &p);
		if (R.verdict != IDN_V_NEW && R.verdict != IDN_V_AFFINITY) {
			ASSERT_EQ(R.verdict, IDN_V_NEW, "flood SYN forwarded");
			break;
		}
		guarded += R.drop == IDN_DROP_FLOOD;
		inserted += R.drop == 0;
		if (R.drop == IDN_DROP_FLOOD) {
			int nd = out_node4(&R);

			/* its next segment, without an entry, goes the same way */
			pg_tcp_pkt(&ack, &f, PG_ACK, NULL, 10);
			run_in(hook, &ack);
			if (!ASSERT_EQ(out_node4(&R), nd, "the flow's ACK follows its SYN"))
				break;
		}
	}
	/*
	 * Over the rate a SYN looks nothing up: the live flow's SYN again is
	 * chosen without state, its entry left alone (unless a new coarse
	 * second began: then it is the established flow's)
	 */
	run_in(hook, &live);
	ASSERT_TRUE((R.drop == IDN_DROP_FLOOD && R.verdict == IDN_V_NEW) ||
		    (R.drop == 0 && R.verdict == IDN_V_CONN),
		    "SYN over the rate: no connection lookup");
	/* at most the rate per coarse second (a boundary may fall inside) */
	ASSERT_TRUE(inserted <= 2 * 3, "no more than the rate inserted");
	ASSERT_TRUE(guarded >= 40 - 2 * 3, "the rest chosen by the guard");
	ASSERT_EQ(conn_count() - conns0, inserted, "guarded SYNs insert nothing");
	ASSERT_TRUE(aff_count() - aff0 <= inserted, "guarded SYNs write no affinity");
	/* the live flow was not touched */
	pg_flow4(&f, "192.0.2.10", "203.0.113.10", 49000, 80, IPPROTO_TCP);
	pg_tcp_pkt(&p, &f, PG_ACK, NULL, 100);
	run_in(hook, &p);
	if (expect(&R, hook, A_TX, IDN_V_CONN, 0))
		check_encap0(&R, &p, 1);
	/* guard off: every SYN inserts */
	c.flood_rate = IDN_FLOOD_OFF;
	put_config(&c);
	for (int i = 0; i < 10; i++) {
		pg_flow4(&f, "198.18.2.1", "203.0.113.10", (uint16_t)(3000 + i), 80, IPPROTO_TCP);
		pg_tcp_pkt(&p, &f, PG_SYN, NULL, 0);
		run_in(hook, &p);
		if (!ASSERT_EQ(R.drop, 0, "guard off: no flood-guard"))
			break;
	}
	sched_setaffinity(0, sizeof(old), &old);
}

/*
 * A mid-flow segment of @f echoing @ecr in a timestamp option: Linux's
 * layout (NOP NOP TS) or, @walk, behind another option (the walk).
 */
static void ts_pkt(struct pg *p, const struct pg_flow *f, uint8_t flags, uint32_t ecr, int walk)
{
	static const uint8_t unknown[4] = { 30, 4, 0, 0 };

	pg_begin(p, f);
	pg_tcp(p, f->sport, f->dport, flags, 1000, 2000);
	if (walk) {
		pg_opt_raw(p, unknown, sizeof(unknown));
		pg_opt_ts(p, 12345, ecr);
	} else {
		pg_opt_nop(p);
		pg_opt_nop(p);
		pg_opt_ts(p, 12345, ecr);
	}
	pg_opt_pad(p);
	pg_payload_pattern(p, 100);
	pg_finish(p);
}

/*
 * The TS cookie (tsopt.h): a mid-flow segment without an entry goes to
 * the node its TSecr names when that node is a candidate of the flow's
 * plans, writing the entry again; anything else falls back to the
 * stateless choice; a named node that is down: reset (node-down rule).
 */
static void fx_ts_cookie(int hook)
{
	struct idn_conn c;
	struct pg_flow f;
	struct pg p;
	int sl, want = -1;

	/* the stateless choice of this flow, without a cookie */
	pg_flow4(&f, "192.0.2.44", "203.0.113.10", 46100, 80, IPPROTO_TCP);
	pg_tcp_pkt(&p, &f, PG_ACK, NULL, 100);
	run_in(hook, &p);
	sl = out_node4(&R);
	if (!expect(&R, hook, A_TX, IDN_V_CONN, IDN_DROP_NO_STATE) ||
	    !ASSERT_TRUE(sl >= 1 && sl <= 3, "stateless choice: a v4 candidate"))
		return;
	ASSERT_EQ(conn_count(), 0, "no cookie: no entry");
	for (int id = 1; id <= 3 && want < 0; id++)
		if (id != sl)
			want = id;

	/* the cookie names another candidate: that one, and the entry is back */
	for (int walk = 0; walk <= 1; walk++) {
		idn_ct_clear_all(E.conns);
		ts_pkt(&p, &f, PG_ACK | PG_PSH, idn_ts_stamp(0x5a5a0123, (__u32)want), walk);
		run_in(hook, &p);
		if (!expect(&R, hook, A_TX, IDN_V_CONN, IDN_DROP_TS_COOKIE) ||
		    !ASSERT_EQ(out_node4(&R), want, "to the cookie's node"))
			printf("# walk %d\n", walk);
		if (ASSERT_OK(get_conn(&p, &c), "entry written again"))
			ASSERT_EQ(c.node, (__u32)want, "entry names the cookie's node");
	}
	/* the next segment takes the entry */
	ts_pkt(&p, &f, PG_ACK, idn_ts_stamp(0x5a5a0fff, (__u32)want), 0);
	run_in(hook, &p);
	expect(&R, hook, A_TX, IDN_V_CONN, 0);
	ASSERT_EQ(out_node4(&R), want, "entry: same node");

	/* not a candidate (node 21 is valid but in another plan), no node, TSecr 0 */
	{
		static const __u32 bad[] = { 21, 4000, 7 };

		for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
			idn_ct_clear_all(E.conns);
			ts_pkt(&p, &f, PG_ACK, idn_ts_stamp(0x77770000, bad[i]), (int)i & 1);
			run_in(hook, &p);
			if (!expect(&R, hook, A_TX, IDN_V_CONN, IDN_DROP_NO_STATE) ||
			    !ASSERT_EQ(out_node4(&R), sl, "garbage cookie: stateless choice"))
				printf("# cookie %u\n", bad[i]);
		}
		idn_ct_clear_all(E.conns);
		ts_pkt(&p, &f, PG_ACK, 0, 0);
		run_in(hook, &p);
		expect(&R, hook, A_TX, IDN_V_CONN, IDN_DROP_NO_STATE);
		ASSERT_EQ(out_node4(&R), sl, "TSecr 0: stateless choice");
		ASSERT_EQ(conn_count(), 0, "garbage cookies write nothing");
	}
	/* a malformed option list before the timestamp: no cookie */
	{
		static const uint8_t broken[2] = { 30, 1 };

		pg_begin(&p, &f);
		pg_tcp(&p, f.sport, f.dport, PG_ACK, 1000, 2000);
		pg_opt_raw(&p, broken, sizeof(broken));
		pg_opt_ts(&p, 1, idn_ts_stamp(9, (__u32)want));
		pg_finish(&p);
		run_in(hook, &p);
		expect(&R, hook, A_TX, IDN_V_CONN, IDN_DROP_NO_STATE);
	}

	/* the cookie's node is down: the connection cannot move, reset at once */
	set_health((__u32)want, IDN_HEALTH_DOWN);
	ts_pkt(&p, &f, PG_ACK, idn_ts_stamp(0x5a5a1000, (__u32)want), 0);
	run_in(hook, &p);
	if (expect(&R, hook, A_TX, IDN_V_ERROR, IDN_DROP_NODE_DOWN))
		check_rst(&R, &p);
	ASSERT_NEQ(get_conn(&p, &c), 0, "no entry for a down node");
	/* draining: still where the connection lives */
	set_health((__u32)want, IDN_HEALTH_DRAIN);
	run_in(hook, &p);
	expect(&R, hook, A_TX, IDN_V_CONN, IDN_DROP_TS_COOKIE);
	ASSERT_EQ(out_node4(&R), want, "draining node keeps its connection");

	/* a spoofed flood of cookie segments: entries only within the flood rate */
	{
		struct idn_config cf = get_config();
		cpu_set_t set, old;
		__u64 *zero = calloc(E.ncpu, sizeof(*zero));
		__u32 k = 0;
		int n0;

		sched_getaffinity(0, sizeof(old), &old);
		CPU_ZERO(&set);
		for (int i = 0; i < CPU_SETSIZE; i++)
			if (CPU_ISSET(i, &old)) {
				CPU_SET(i, &set);
				break;
			}
		sched_setaffinity(0, sizeof(set), &set);
		if (zero)
			bpf_map_update_elem(bpf_map__fd(E.skel->maps.idn_flood), &k, zero, BPF_ANY);
		free(zero);
		cf.flood_rate = 3;
		put_config(&cf);
		idn_ct_clear_all(E.conns);
		n0 = conn_count();
		for (int i = 0; i < 200; i++) {
			char src[32];

			snprintf(src, sizeof(src), "198.18.3.%d", 1 + i);
			pg_flow4(&f, src, "203.0.113.10", (uint16_t)(5000 + i), 80, IPPROTO_TCP);
			ts_pkt(&p, &f, PG_ACK, idn_ts_stamp((__u32)i << 12, (__u32)want), 0);
			run_in(hook, &p);
			if (!ASSERT_EQ(out_node4(&R), want, "flood: still to the cookie's node"))
				break;
		}
		ASSERT_TRUE(conn_count() - n0 <= 2 * 3, "flood: entries within the rate");
		sched_setaffinity(0, sizeof(old), &old);
	}
}

/* A v6 SYN to the VIP behind one 8-byte extension header @nh (@seg_left for routing). */
static void ext6_syn(struct pg *p, uint8_t nh, uint8_t seg_left)
{
	uint8_t s[16], d[16], *h;

	pg_init(p);
	pg_eth(p, NULL, NULL);
	inet_pton(AF_INET6, "2001:db8:c1::10", s);
	inet_pton(AF_INET6, "2001:db8:feed::10", d);
	pg_ip6(p, s, d, IPPROTO_TCP);
	pg_ip6h(p)->nexthdr = nh;
	h = pg_put(p, 8);
	h[0] = IPPROTO_TCP;
	h[3] = seg_left;
	pg_tcp(p, (uint16_t)sport_seq++, 80, PG_SYN, 1, 0);
	pg_opt_mss(p, 1460);
	pg_finish(p);
}

/* Fragments and IPv6 extension headers: counted, then as configured. */
static void fx_frag_ext6(int hook)
{
	static const uint8_t walked[] = { IDN_NH_HOPOPTS, IDN_NH_DSTOPTS, IDN_NH_ROUTING,
					  IDN_NH_AH };
	struct idn_conn c;
	struct pg p;

	/* an IPv4 fragment to a VIP: passed, or dropped with frag drop */
	tcp4(&p, "203.0.113.10", 80, PG_SYN, NULL);
	pg_poke16(&p, (size_t)p.l3_off + 6, 0x2000);	/* MF */
	pg_fix_csums(&p);
	run_in(hook, &p);
	expect(&R, hook, A_PASS, IDN_V_PASS, IDN_DROP_IP4_FRAG);
	unchanged(&R, &p);
	set_cfg_flags(IDN_CFG_F_FRAG_DROP, 0);
	run_in(hook, &p);
	expect(&R, hook, A_DROP, IDN_V_MALFORMED, IDN_DROP_IP4_FRAG);
	set_cfg_flags(0, IDN_CFG_F_FRAG_DROP);

	/* extension headers: passed (default), dropped, or steered past */
	for (size_t i = 0; i < sizeof(walked); i++) {
		ext6_syn(&p, walked[i], 0);
		run_in(hook, &p);
		if (!expect(&R, hook, A_PASS, IDN_V_PASS, IDN_DROP_IP6_EXT))
			printf("# next header %u\n", walked[i]);
		unchanged(&R, &p);
		set_cfg_flags(IDN_CFG_F_EXT6_DROP, 0);
		run_in(hook, &p);
		expect(&R, hook, A_DROP, IDN_V_MALFORMED, IDN_DROP_IP6_EXT);
		set_cfg_flags(IDN_CFG_F_EXT6_STEER, IDN_CFG_F_EXT6_DROP);
		run_in(hook, &p);
		/* the client's later flows find the first one's affinity */
		if (expect(&R, hook, A_TX, i ? IDN_V_AFFINITY : IDN_V_NEW, 0))
			check_encap0(&R, &p, 1);	/* the chain travels intact */
		if (ASSERT_OK(get_conn(&p, &c), "conn entry of the steered flow"))
			ASSERT_EQ(c.node, 1, "conn node");
		set_cfg_flags(0, IDN_CFG_F_EXT6_STEER);
	}
	/* never steered, whatever ext6 says: still routing, ESP */
	set_cfg_flags(IDN_CFG_F_EXT6_STEER, 0);
	ext6_syn(&p, IDN_NH_ROUTING, 1);
	run_in(hook, &p);
	expect(&R, hook, A_PASS, IDN_V_PASS, IDN_DROP_IP6_EXT);
	unchanged(&R, &p);
	ext6_syn(&p, IDN_NH_ESP, 0);
	run_in(hook, &p);
	expect(&R, hook, A_PASS, IDN_V_PASS, IDN_DROP_IP6_EXT);
	/* a fragment header is a fragment */
	ext6_syn(&p, IDN_NH_FRAGMENT, 1);
	run_in(hook, &p);
	expect(&R, hook, A_PASS, IDN_V_PASS, IDN_DROP_IP6_FRAG);
}

struct fixture {
	const char *name;
	void (*fn)(int hook);
};

static const struct fixture fixtures[] = {
	{ "not IDN traffic passes untouched", fx_not_idn },
	{ "VIP v4 SYN: new flow, IPIP to min-J node, conn+affinity", fx_vip4_new },
	{ "egress on another device: redirect", fx_vip4_redirect },
	{ "VIP v6 SYN: IP6IP6", fx_vip6_new },
	{ "outer source pool: per flow, spread, checksummed (RSS)", fx_rss_src },
	{ "node down: TCP reset at once, UDP moves", fx_node_down_reset },
	{ "node down: the reset leaves a receipt", fx_node_down_receipt },
	{ "VLAN tag in the frame (TC: QinQ inner tag) dropped on encap", fx_vlan },
	{ "IPv6 descriptor address", fx_addr6 },
	{ "TCP option: policy, cap, token", fx_opt_valid },
	{ "TCP option malformed", fx_opt_bad },
	{ "truncated at every layer", fx_truncated },
	{ "malformed headers, drop-malformed on/off", fx_malformed },
	{ "policy filters: trust privacy scope health", fx_policy_filters },
	{ "variant filter", fx_variant },
	{ "plan hint: one lookup where the slot has no tier plan", fx_plan_hint },
	{ "affinity hit and move", fx_affinity },
	{ "conn table sticky across plan swap", fx_conn_sticky },
	{ "ladder: fallback overflow shed nocap", fx_ladder },
	{ "reject: TCP RST, UDP drop", fx_reject_rst },
	{ "demand miss with IDN_CFG_F_HOLD", fx_miss_hold },
	{ "telemetry: update, replay, spoof, bad", fx_telemetry },
	{ "telemetry moves new flows", fx_telemetry_steers },
	{ "telemetry: MAC, key generation, no key", fx_telemetry_auth },
	{ "self-accounting: burst spreads, telemetry resets", fx_charge },
	{ "SLO: shed at overload, big prompt served", fx_slo_shed },
	{ "fib miss and MTU", fx_fib_and_mtu },
	{ "receipts", fx_receipt },
	{ "dual-stack: affinity across families, next hop per family", fx_dual_stack },
	{ "fragments and IPv6 extension headers: pass, drop, steer", fx_frag_ext6 },
	{ "state only for real connections: mid-flow segment without entry", fx_no_state },
	{ "flood guard: above the rate, no state; live flows kept", fx_flood_guard },
	{ "TS cookie: mid-flow segment to the node its TSecr names", fx_ts_cookie },
};

int main(int argc, char **argv)
{
	char why[256] = "", name[160];
	int r;

	setvbuf(stdout, NULL, _IOLBF, 0);
	tap_plan(0);
	r = tenv_setup(why, sizeof(why));
	if (r) {
		if (r > 0) {
			tap_skip(why);
			tap_result("bpf_steer setup");
			tenv_teardown();
			tap_done();
			return 4;
		}
		TAP_FAIL("%s", why);
		tap_result("bpf_steer setup");
		tenv_teardown();
		return tap_done();
	}
	for (size_t i = 0; i < sizeof(fixtures) / sizeof(fixtures[0]); i++) {
		for (int hook = HOOK_XDP; hook >= HOOK_TC; hook--) {
			if (argc > 1 && !strstr(fixtures[i].name, argv[1]))
				continue;
			world();
			fixtures[i].fn(hook);
			snprintf(name, sizeof(name), "%s: %s", hook_name(hook), fixtures[i].name);
			tap_result(name);
		}
	}
	tenv_teardown();
	return tap_done();
}
