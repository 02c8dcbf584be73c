// SPDX-License-Identifier: GPL-2.0
/*
 * bpf_diff.c - differential test: random and mutated packets over random
 * map states go through the loaded idn_xdp (every packet) and idn_tc
 * (every fourth), and through a userspace model built from bpf/lib
 * (parse.h, desc.h, select.h with a struct idn_env that reads the same
 * maps). Verdict (from the change of idn_stats), drop reason, action and
 * chosen node (the outer destination of the output) must agree.
 *
 * The model restates the glue of bpf/lib/steer.h (classification,
 * established flows, telemetry, what each verdict does, and the locator a
 * request leaves toward: the chosen node's locator of the request's own
 * family); the decisions themselves come from the very headers the
 * program is built from. Nodes are dual-stack, single-family or without
 * a locator at random, and an output's outer destination (either family)
 * maps back to its node.
 *
 *   bpf_diff [N]     N packets (default 100000); IDN_DIFF_SEED=s picks the seed
 */
#include "steer_env.h"
#include "lib/parse.h"
#include "lib/desc.h"
#include "lib/select.h"
#include "lib/stateless.h"

IDN_ASSERT_ABI();

#define CAP_A	IDN_CAP(0x100, 0)
#define CAP_B1	IDN_CAP(0x200, 1)
#define CAP_B2	IDN_CAP(0x200, 2)
#define CAP_C	IDN_CAP(0x300, 0)
#define CAP_M	IDN_CAP(0x900, 0)	/* never has a plan */
static const __u32 caps[] = { CAP_A, CAP_B1, CAP_B2, CAP_C, CAP_M };
#define N_CAPS (sizeof(caps) / sizeof(caps[0]))
#define TELE_PORT 7946

static const uint8_t prefix6[6] = { 0x20, 0x01, 0x0d, 0xb8, 0x1d, 0x4e };

/* ---- random ---------------------------------------------------------- */

static __u64 rs;

static __u64 rnd(void)
{
	rs ^= rs << 13;
	rs ^= rs >> 7;
	rs ^= rs << 17;
	return rs;
}

static __u32 rn(__u32 n)
{
	return n ? (__u32)(rnd() % n) : 0;
}

static int chance(int pct)
{
	return (int)rn(100) < pct;
}

/* ---- the world ------------------------------------------------------ */

/*
 * Node ids; each has a fixed IPv4 and IPv6 address (hosts 11..29 behind
 * the first device for 1..9 and 11..19, 21/22 behind the second device,
 * 30 unroutable in both families), and rand_node() makes each of them a
 * locator or not (dual-stack, IPv4-only, IPv6-only, neither).
 */
static const __u32 node_ids[] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 11, 12, 13, 14, 15, 16,
				  17, 18, 19, 21, 22, 30 };
#define N_NODES (sizeof(node_ids) / sizeof(node_ids[0]))

/* The node's two addresses (whether they are locators is in n->flags). */
static void node_addrs(__u32 id, struct idn_node *n)
{
	char s4[32], s6[64];

	if (id < 20) {
		snprintf(s4, sizeof(s4), "10.99.0.%u", 10 + id);
		snprintf(s6, sizeof(s6), "fd00:99::%u", 10 + id);
	} else if (id < 30) {
		snprintf(s4, sizeof(s4), "10.98.0.%u", id);
		snprintf(s6, sizeof(s6), "fd00:98::%u", id);
	} else {
		snprintf(s4, sizeof(s4), "192.0.2.99");
		snprintf(s6, sizeof(s6), "2001:db8:dead::99");
	}
	inet_pton(AF_INET, s4, &n->addr4);
	inet_pton(AF_INET6, s6, n->addr6);
}

/* An outer destination back to its node, whichever family. */
static __u32 node_by_locator(int family, const void *addr)
{
	struct idn_node n;

	for (size_t i = 0; i < N_NODES; i++) {
		node_addrs(node_ids[i], &n);
		if (family == IDN_AF_INET ? !memcmp(&n.addr4, addr, 4) : !memcmp(n.addr6, addr, 16))
			return node_ids[i];
	}
	return IDN_NODE_NONE;
}

/* The model's copy of steer.h's locator test: @n has one of @family. */
static int has_loc(const struct idn_node *n, int family)
{
	return !!(n->flags & (family == IDN_AF_INET6 ? IDN_NODE_F_LOC6 : IDN_NODE_F_LOC4));
}

static void rand_node(__u32 id)
{
	struct idn_node n = { 0 };
	static const __u8 hs[] = { IDN_HEALTH_UP, IDN_HEALTH_UP, IDN_HEALTH_UP, IDN_HEALTH_UP,
				   IDN_HEALTH_DOWN, IDN_HEALTH_DRAIN, IDN_HEALTH_UNKNOWN };

	node_addrs(id, &n);
	n.trust = (__u8)rn(8);
	n.health = hs[rn(sizeof(hs))];
	n.domain = (__u16)rn(4);
	n.flags = chance(95) ? IDN_NODE_F_VALID : 0;
	/* mostly dual-stack; single-family and (rarely) no locator too */
	if (chance(80))
		n.flags |= IDN_NODE_F_LOC4;
	if (chance(80))
		n.flags |= IDN_NODE_F_LOC6;
	if (chance(40))
		n.flags |= IDN_NODE_F_CONFIDENTIAL;
	if (chance(40))
		n.flags |= IDN_NODE_F_WAN;
	n.net_us = rn(500);
	n.tok_ns = rn(3) ? rn(2000) : 0;
	n.max_queue = chance(60) ? 1 + rn(20) : 0;
	n.queue_depth = rn(40);
	n.pending_tokens = rn(100000);
	n.load = (__u16)rn(1001);
	n.kv_use = (__u16)rn(1001);
	n.tele_seq = rn(100);
	n.tele_s = chance(50) ? 1 + rn(1000) : 0;
	/* the router's own charge, now and then at its bound */
	n.charged_tokens = chance(50) ? rn(200000) : chance(10) ? IDN_CHARGE_MAX - rn(4) : 0;
	n.charged_reqs = rn(50);
	/*
	 * Other routers' rate, its datagram at tick 0: every decision comes
	 * more than an interval later (the program's ticks are the host's
	 * uptime, the model's TICK_FAR), so both count the full interval
	 */
	n.others_rate = chance(40) ? (chance(5) ? 0xffffffffU : rn(1U << 24)) : 0;
	n.others_span = (__u16)rn(200);
	n.others_carry = (__u16)rn(5);
	n.tele_tick = 0;
	put_node(id, &n);
	/* its telemetry key: mostly the test key, its window somewhere; now and then none */
	if (chance(8)) {
		del_tele_key(id);
	} else {
		struct idn_tele_key k;

		put_tele_key(id, NULL, PG_TELE_KEY_ID);
		k = get_tele_key(id);
		if (chance(50)) {
			k.flags |= IDN_TKEY_F_SEEN;
			k.seq = rn(100);
		}
		bpf_map_update_elem(E.tkeys, &id, &k, BPF_ANY);
	}
}

static void rand_plan(__u32 cap, __u8 tier, __u8 pol, __u8 slot, __u32 gen)
{
	struct idn_plan pl;

	memset(&pl, 0, sizeof(pl));
	pl.generation = gen;
	pl.n_cand = (__u8)(1 + rn(IDN_MAX_CAND));
	for (int w = 0; w < IDN_W_MAX; w++)
		pl.weight[w] = (__u16)(chance(80) ? rn(1024) : rn(65536));
	pl.slo_us = chance(30) ? rn(3000) : 0;
	pl.domain_mask = (__u32)rnd();
	pl.shed_tier = (__u8)rn(16);
	pl.prompt_tokens = (__u16)(chance(70) ? rn(65536) : 0);
	pl.wan_ns_per_byte = chance(50) ? rn(100000) : 0;
	if (IDN_CAP_CLASS(cap) == 0x200 && IDN_CAP_VARIANT(cap) == 1 && chance(70))
		pl.fallback_cap = CAP_B2;
	else if (chance(20))
		pl.fallback_cap = caps[rn(N_CAPS)];
	for (int i = 0; i < pl.n_cand; i++) {
		struct idn_cand *c = &pl.cand[i];

		c->node = chance(95) ? node_ids[rn(N_NODES)] : (chance(50) ? 40 + rn(10) : 5000);
		c->exec_us = rn(2000);
		c->state_us = rn(2000);
		c->policy_us = (__u16)rn(300);
		c->variant = (__u8)(chance(70) ? IDN_CAP_VARIANT(cap) : rn(3));
	}
	put_plan(cap, tier, pol, slot, &pl);
}

static void put_vip_addr(const char *addr, int port, int proto, __u32 cap)
{
	struct idn_vip_key k = { 0 };
	struct idn_vip v = { 0 };

	if (strchr(addr, ':')) {
		inet_pton(AF_INET6, addr, k.addr);
		k.family = IDN_AF_INET6;
	} else {
		inet_pton(AF_INET, addr, k.addr);
		k.family = IDN_AF_INET;
	}
	k.port = htons((uint16_t)port);
	k.proto = (__u8)proto;
	v.defaults.cap = cap;
	v.defaults.tier = (__u8)rn(16);
	v.defaults.policy = chance(70) ? IDN_POLICY(rn(4), rn(3), rn(3)) : (__u8)rn(256);
	v.defaults.budget = chance(20) ? (__u16)rn(40) : 0;
	v.defaults.size_class = (__u8)rn(16);
	v.defaults.flags = (__u8)rn(16);
	v.defaults.token = rnd();
	bpf_map_update_elem(E.vips, &k, &v, BPF_ANY);
}

static const char *vip4[] = { "203.0.113.10", "203.0.113.11", "203.0.113.12" };
static const char *vip6[] = { "2001:db8:feed::10", "2001:db8:feed::11" };

static __u32 generation;

static void rand_world(void)
{
	struct idn_config c = { 0 };

	tenv_reset();
	c.flags = IDN_CFG_F_TELEMETRY;
	if (chance(30))
		c.flags |= IDN_CFG_F_HOLD;
	if (chance(30))
		c.flags |= IDN_CFG_F_DROP_MALFORMED;
	if (chance(20))
		c.flags |= IDN_CFG_F_NO_RST;
	if (chance(10))
		c.flags &= ~IDN_CFG_F_TELEMETRY;
	if (chance(30))
		c.flags |= IDN_CFG_F_FRAG_DROP;
	c.flags |= chance(30) ? IDN_CFG_F_EXT6_STEER : chance(30) ? IDN_CFG_F_EXT6_DROP : 0;
	c.active_slot = rn(2);
	c.generation = ++generation;
	c.home_domain = (__u16)rn(4);
	c.tele_port = htons(TELE_PORT);
	inet_pton(AF_INET, "10.99.0.1", &c.src4);
	inet_pton(AF_INET6, "fd00:99::1", c.src6);
	memcpy(c.prefix6, prefix6, 6);
	c.prefix6_on = chance(85);
	c.aff_ttl_s = 0;
	c.flood_rate = IDN_FLOOD_OFF;	/* time-dependent: bpf_steer tests the guard */
	put_config(&c);
	for (size_t i = 0; i < N_NODES; i++)
		rand_node(node_ids[i]);
	for (__u8 slot = 0; slot < 2; slot++)
		for (size_t i = 0; i + 1 < N_CAPS; i++) {
			if (chance(90))
				rand_plan(caps[i], IDN_ANY, IDN_ANY, slot, generation);
			if (chance(40))
				rand_plan(caps[i], (__u8)rn(16), IDN_POLICY(rn(4), rn(3), rn(3)),
					  slot, generation);
		}
	for (size_t i = 0; i < 3; i++) {
		put_vip_addr(vip4[i], 80, IPPROTO_TCP, caps[rn(N_CAPS)]);
		put_vip_addr(vip4[i], 53, IPPROTO_UDP, caps[rn(N_CAPS)]);
	}
	for (size_t i = 0; i < 2; i++) {
		put_vip_addr(vip6[i], 80, IPPROTO_TCP, caps[rn(N_CAPS)]);
		put_vip_addr(vip6[i], 53, IPPROTO_UDP, caps[rn(N_CAPS)]);
	}
	/* affinity for the tokens the generator uses */
	for (int i = 0; i < 40; i++) {
		struct idn_aff_key k = { .token = 1 + rn(16),
					 .cls = IDN_CAP_CLASS(caps[rn(N_CAPS)]) };
		struct idn_aff a = { .node = chance(90) ? node_ids[rn(N_NODES)] : 4000,
				     .last_s = rn(1000) };

		idn_afft_put(E.aff, k.token, k.cls, &a, 0);
	}
}

/* A plan swap: a new generation in the inactive slot, then the flip. */
static void plan_swap(void)
{
	struct idn_config c = get_config();
	__u8 slot = (__u8)(c.active_slot ^ 1);

	generation++;
	for (size_t i = 0; i + 1 < N_CAPS; i++) {
		struct idn_plan_key k = { .cap = caps[i], .tier = IDN_ANY,
					  .policy = IDN_ANY, .slot = slot };

		bpf_map_delete_elem(E.plans, &k);
		if (chance(90))
			rand_plan(caps[i], IDN_ANY, IDN_ANY, slot, generation);
	}
	c.active_slot = slot;
	c.generation = generation;
	put_config(&c);
}

/* ---- packets ---------------------------------------------------------- */

static const char *clients4[] = { "192.0.2.10", "192.0.2.11", "198.51.100.77" };
static const char *clients6[] = { "2001:db8:c1::10", "2001:db8:c1::11" };

static void rand_idnopt(struct pg *p)
{
	struct idn_tcpopt o;

	pg_idnopt_fill(&o, chance(90) ? 1 : (uint8_t)rn(16), (uint8_t)rn(16),
		       chance(70) ? IDN_POLICY(rn(4), rn(4), rn(3)) : (uint8_t)rn(256),
		       chance(50) ? IDN_SIZE_NONE : (uint8_t)rn(chance(90) ? 16 : 256),
		       chance(40) ? 0 : (chance(90) ? caps[rn(N_CAPS)] : (__u32)rnd()),
		       chance(30) ? 0 : 1 + rn(16));
	if (chance(5))
		o.rsvd = (uint8_t)rnd();
	pg_opt_idn(p, &o);
}

static void rand_options(struct pg *p, int idn)
{
	int room = 40;

	if (idn && chance(50)) {
		rand_idnopt(p);
		room -= 20;
	}
	while (room > 0 && chance(60)) {
		int k = (int)rn(7);

		if (k == 0 && room >= 4) {
			pg_opt_mss(p, 1460);
			room -= 4;
		} else if (k == 1 && room >= 2) {
			pg_opt_sackok(p);
			room -= 2;
		} else if (k == 2 && room >= 10) {
			/* now and then a TS cookie naming a node (tsopt.h) */
			pg_opt_ts(p, (uint32_t)rnd(),
				  chance(40) ? idn_ts_stamp((uint32_t)rnd(),
							   node_ids[rn(N_NODES)]) :
				  chance(20) ? (uint32_t)rnd() : 0);
			room -= 10;
		} else if (k == 3 && room >= 3) {
			pg_opt_ws(p, 7);
			room -= 3;
		} else if (k == 4) {
			pg_opt_nop(p);
			room -= 1;
		} else if (k == 5 && room >= 20 && idn) {
			rand_idnopt(p);
			room -= 20;
		} else if (k == 6) {
			uint8_t b[8];
			int n = 1 + (int)rn((uint32_t)(room < 8 ? room : 8));

			for (int i = 0; i < n; i++)
				b[i] = (uint8_t)rnd();
			pg_opt_raw(p, b, (size_t)n);
			room -= n;
		}
	}
	if (idn && chance(30) && room >= 20)
		rand_idnopt(p);
}

static void gen_packet(struct pg *p, int allow_vlan)
{
	int v6 = chance(40), kind = (int)rn(100);
	uint8_t src[16], dst[16];
	uint8_t proto;
	uint16_t sport = (uint16_t)(40000 + rn(64)), dport;

	pg_init(p);
	pg_eth(p, NULL, NULL);
	if (allow_vlan && chance(10)) {
		pg_vlan(p, chance(50) ? ETH_P_8021Q : ETH_P_8021AD, (uint16_t)rn(4096));
		if (chance(30))
			pg_vlan(p, ETH_P_8021Q, (uint16_t)rn(4096));
	}
	memset(src, 0, sizeof(src));
	memset(dst, 0, sizeof(dst));
	proto = chance(75) ? IPPROTO_TCP : (chance(90) ? IPPROTO_UDP : IPPROTO_ICMP);
	dport = proto == IPPROTO_UDP ? 53 : 80;
	if (chance(3))
		dport = (uint16_t)rn(65536);

	if (kind < 6) {
		/* telemetry from a node locator (or not) */
		struct idn_telemetry t;
		__u32 id = node_ids[rn(N_NODES)];
		int t6 = chance(50);
		size_t tele_len;
		struct idn_node n;

		/* from an address of the node (a locator or not) or of another */
		node_addrs(chance(85) ? id : node_ids[rn(N_NODES)], &n);
		pg_tele_fill(&t, chance(95) ? id : rn(5000), rn(200),
			     (uint8_t)(chance(80) ? 0 : rn(5)), rn(40), rn(100000),
			     (uint16_t)rn(chance(90) ? 1001 : 65536), (uint16_t)rn(1001));
		if (chance(60)) {	/* version 3's admitted work, now and then inconsistent */
			uint8_t key[16];
			__u32 reqs = rn(60);

			t.admit_reqs = htons(reqs);
			t.admit_tokens = htonl(reqs || chance(3) ? rn(200000) : 0);
			t.span_ms = htons(reqs && chance(97) ? 1 + rn(500) : 0);
			pg_tele_key(ntohl(t.node), key);
			pg_tele_mac(&t, key, PG_TELE_KEY_ID);
		}
		tele_len = sizeof(t);
		if (chance(10)) {	/* version 2: 40 bytes, the MAC at byte 32 over 0..31 */
			uint8_t key[16];
			__u64 k0, k1;

			t.version = IDN_TELE_V2;
			pg_tele_key(ntohl(t.node), key);
			idn_siphash_key(key, &k0, &k1);
			memset((uint8_t *)&t + IDN_TELE_V2_MAC_OFF, 0, sizeof(t) - IDN_TELE_V2_MAC_OFF);
			idn_put_le64((uint8_t *)&t + IDN_TELE_V2_MAC_OFF, idn_tele_mac(k0, k1, &t));
			tele_len = IDN_TELE_V2_LEN;
		}
		if (chance(5))
			t.mac[rn(IDN_TELE_MAC_LEN)] ^= (uint8_t)(1 + rn(255));	/* forged */
		if (chance(3))
			t.key_id = htonl(PG_TELE_KEY_ID + 1);
		if (chance(5))
			t.magic = (__be32)rnd();
		if (chance(5))
			t.version = (uint8_t)rn(4);
		if (!t6) {
			inet_pton(AF_INET, "10.99.0.1", dst);
			pg_ip4(p, &n.addr4, dst, IPPROTO_UDP);
		} else {
			inet_pton(AF_INET6, "fd00:99::1", dst);
			pg_ip6(p, n.addr6, dst, IPPROTO_UDP);
		}
		pg_udp(p, 7000, TELE_PORT);
		pg_payload(p, &t, chance(90) ? tele_len : rn(sizeof(t)));
		pg_finish(p);
		return;
	}
	if (!v6) {
		inet_pton(AF_INET, clients4[rn(3)], src);
		if (kind < 80)
			inet_pton(AF_INET, vip4[rn(3)], dst);
		else
			inet_pton(AF_INET, "198.51.100.200", dst);
		pg_ip4(p, src, dst, proto);
		if (chance(3))
			pg_ip4_opts(p, 4);
		if (chance(3))
			pg_ip4h(p)->frag_off = htons(chance(50) ? 0x2000 : 0x0010);
	} else {
		inet_pton(AF_INET6, clients6[rn(2)], src);
		if (kind < 50)
			inet_pton(AF_INET6, vip6[rn(2)], dst);
		else if (kind < 90)
			pg_addr6_desc(dst, prefix6, chance(90) ? 1 : (uint8_t)rn(16),
				      (uint8_t)rn(16), chance(90) ? caps[rn(N_CAPS)] : (__u32)rnd(),
				      chance(80) ? IDN_POLICY(rn(4), rn(4), rn(3)) : (uint8_t)rnd(),
				      chance(30) ? 0 : 1 + rn(16));
		else
			inet_pton(AF_INET6, "2001:db8:99::1", dst);
		pg_ip6(p, src, dst, proto);
		if (chance(6)) {
			/* one or two extension headers (8 bytes each) */
			static const uint8_t ext[] = { 0, 60, 43, 44, 51, 50 };
			int n = 1 + (int)rn(2);
			uint8_t nh = ext[rn(sizeof(ext))];

			pg_ip6h(p)->nexthdr = nh;
			for (int i = 0; i < n; i++) {
				uint8_t *h = pg_put(p, 8);

				nh = i + 1 < n ? ext[rn(sizeof(ext))] : proto;
				h[0] = nh;
				h[3] = chance(80) ? 0 : 1;	/* routing: segments left */
			}
		}
	}
	if (proto == IPPROTO_TCP) {
		static const uint8_t fl[] = { PG_SYN, PG_SYN, PG_SYN, PG_ACK, PG_ACK | PG_PSH,
					      PG_SYN | PG_ACK, PG_FIN | PG_ACK, PG_RST, PG_FIN, 0 };
		uint8_t f = fl[rn(sizeof(fl))];

		pg_tcp(p, sport, dport, f, (uint32_t)rnd(), (uint32_t)rnd());
		rand_options(p, 1);
		pg_opt_pad(p);
	} else if (proto == IPPROTO_UDP) {
		pg_udp(p, sport, dport);
	}
	if (chance(40))
		pg_payload_pattern(p, rn(300));
	pg_finish(p);

	/* mutations */
	if (chance(8)) {
		int n = 1 + (int)rn(4);

		for (int i = 0; i < n; i++)
			pg_flip_bit(p, rn((__u32)(p->len * 8)));
	}
	if (chance(4) && p->l3_off >= 0 && p->family == 4)
		pg_ip4h(p)->ihl = rn(16);
	if (chance(4) && p->l4_off >= 0 && p->proto == IPPROTO_TCP)
		pg_tcph(p)->doff = rn(16);
	if (chance(2) && p->l3_off >= 0)
		p->buf[p->l3_off] = (uint8_t)((p->buf[p->l3_off] & 0x0f) | (rn(16) << 4));
	if (chance(8))
		pg_truncate(p, 14 + rn((__u32)(p->len - 14)));
}

/* ---- the model ------------------------------------------------------- */

struct mapenv {
	struct idn_node nodes[4];
	struct idn_plan plans[4];
	int ni, pi;
};

static const struct idn_node *env_node(void *priv, __u32 id)
{
	struct mapenv *m = priv;
	struct idn_node *n = &m->nodes[m->ni++ & 3];

	if (bpf_map_lookup_elem(E.nodes, &id, n))
		return NULL;
	return n;
}

static const struct idn_plan *env_plan(void *priv, const struct idn_plan_key *k)
{
	struct mapenv *m = priv;
	struct idn_plan *pl = &m->plans[m->pi++ & 3];

	if (bpf_map_lookup_elem(E.plans, k, pl))
		return NULL;
	return pl;
}

struct pred {
	int verdict;
	int drop;
	__u32 node;
	enum act act;
	__u32 cap;		/* MISS_HOLD: the capability handed to idn.ko */
	/* the node entry a decision or a datagram changes: its charge after */
	__u32 ch_node;		/* IDN_NODE_NONE: none */
	__u32 ch_after;
	__u32 reqs_after;	/* its charged_reqs after */
	int tele;		/* a datagram: the others' rate and span it leaves */
	__u32 rate_after;
	__u16 span_after, carry_after;
};

/* the model's decision time: past every datagram's interval (rand_node()) */
#define TICK_FAR	0x80000000U

static int is_fwd(int v)
{
	return v == IDN_V_CONN || v == IDN_V_NEW || v == IDN_V_AFFINITY ||
	       v == IDN_V_FALLBACK || v == IDN_V_OVERFLOW;
}

static void fwd_pred(struct pred *pr, __u32 node)
{
	pr->node = node;
	pr->act = node == 21 || node == 22 ? A_REDIRECT : node == 30 ? A_PASS : A_TX;
	if (node == 30)
		pr->drop = IDN_DROP_FIB;
}

static int model_telemetry(const uint8_t *data, size_t len, const struct idn_pkt *p,
			   struct pred *pr)
{
	const struct idn_telemetry *t = (const void *)(data + p->l4_off + 8);
	struct idn_tele_key k;
	struct idn_node n;
	__u32 id, seq;

	/* 40 bytes for version 2, 48 for the others (checked next) */
	if (p->l4_off + 8 + (size_t)IDN_TELE_V2_LEN > len || p->l4_len < 8 + IDN_TELE_V2_LEN)
		return IDN_DROP_BAD_TELEMETRY;
	if (t->version != IDN_TELE_V2 &&
	    (p->l4_off + 8 + sizeof(*t) > len || p->l4_len < 8 + sizeof(*t)))
		return IDN_DROP_BAD_TELEMETRY;
	id = ntohl(t->node);
	if (t->magic != htonl(IDN_TELE_MAGIC) ||
	    (t->version != IDN_TELE_VERSION && t->version != IDN_TELE_V2) ||
	    id >= IDN_MAX_NODES || ntohs(t->load) > 1000 || ntohs(t->kv_use) > 1000 ||
	    t->health > IDN_HEALTH_DOWN)
		return IDN_DROP_BAD_TELEMETRY;
	if (t->version == IDN_TELE_VERSION &&
	    ((t->admit_reqs && !t->span_ms) || (t->admit_tokens && !t->admit_reqs)))
		return IDN_DROP_BAD_TELEMETRY;
	if (bpf_map_lookup_elem(E.nodes, &id, &n) || !(n.flags & IDN_NODE_F_VALID))
		return IDN_DROP_BAD_TELEMETRY;
	/* only from the node's own locator of the datagram's family */
	if (!has_loc(&n, p->flow.family) ||
	    (p->flow.family == IDN_AF_INET ? n.addr4 != p->flow.saddr[0]
					   : memcmp(n.addr6, p->flow.saddr, 16)))
		return IDN_DROP_TELE_SPOOF;
	/* the node's key: generation, MAC, then the window under that key */
	if (bpf_map_lookup_elem(E.tkeys, &id, &k) || !(k.flags & IDN_TKEY_F_VALID))
		return IDN_DROP_TELE_NOKEY;
	if (ntohl(t->key_id) != k.key_id || idn_tele_mac(k.k0, k.k1, t) != idn_tele_mac_got(t))
		return IDN_DROP_TELE_MAC;
	seq = ntohl(t->seq);
	if ((k.flags & IDN_TKEY_F_SEEN) && (__s32)(seq - k.seq) <= 0)
		return IDN_DROP_TELE_REPLAY;
	/* accepted: the datagram supersedes the charge, sets the others' rate */
	pr->ch_node = id;
	pr->ch_after = 0;
	pr->reqs_after = 0;
	pr->tele = 1;
	pr->carry_after = n.others_carry;
	pr->rate_after = idn_others_rate(t, n.charged_reqs, &pr->carry_after, &pr->span_after);
	return 0;
}

/* The TS cookie of a mid-flow segment as steer.h reads it, or -1. */
static int model_ts_cookie(const uint8_t *data, size_t len, const struct idn_pkt *p)
{
	struct idn_tsbuf w;
	__u32 olen = p->tcp_hlen - 20, ecr;
	int o;

	if (!(p->tcp_flags & IDN_TCP_ACK) || p->tcp_hlen < 20 + IDN_TCPOPT_TS_LEN ||
	    p->l4_off + p->tcp_hlen > len)
		return -1;
	memset(&w, 0, sizeof(w));
	memcpy(w.b, data + p->l4_off + 20, olen);
	w.len = olen;
	o = idn_tsopt_find(&w);
	if (o < 0 || o > IDN_TSOPT_SPACE - IDN_TCPOPT_TS_LEN)
		return -1;
	ecr = idn_tsbuf_word(&w, (__u32)o + 6);
	return ecr ? (int)idn_ts_cookie(ecr) : -1;
}

static void model(const uint8_t *data, size_t len, struct pred *pr)
{
	struct idn_config cfg = get_config();
	struct mapenv me = { 0 };
	struct idn_env env = { env_node, env_plan, &me };
	struct idn_vip_key vk;
	struct idn_sel_in in;
	struct idn_sel sel;
	struct idn_conn ct;
	struct idn_desc d;
	struct idn_vip vip;
	struct idn_pkt p;
	struct idn_node n;
	struct idn_tcpopt o;
	int r, has_opt = 0, have_ct;

	memset(pr, 0, sizeof(*pr));
	pr->node = IDN_NODE_NONE;
	pr->ch_node = IDN_NODE_NONE;
	r = idn_parse((void *)data, (void *)(data + len), &p);
	if (r)
		goto malformed;
	/* fragments and extension headers: counted, passed or dropped */
	if (p.frag || (p.ext6 && (p.ext6 == IDN_EXT6_OPAQUE ||
				  !(cfg.flags & IDN_CFG_F_EXT6_STEER)))) {
		int drop = p.frag ? cfg.flags & IDN_CFG_F_FRAG_DROP
				  : cfg.flags & IDN_CFG_F_EXT6_DROP;

		pr->drop = !p.frag ? IDN_DROP_IP6_EXT :
			   p.flow.family == IDN_AF_INET ? IDN_DROP_IP4_FRAG : IDN_DROP_IP6_FRAG;
		pr->verdict = drop ? IDN_V_MALFORMED : IDN_V_PASS;
		pr->act = drop ? A_DROP : A_PASS;
		return;
	}
	if (!p.flow.family || !p.has_ports)
		goto pass;
	if (p.flow.proto == IPPROTO_UDP && (cfg.flags & IDN_CFG_F_TELEMETRY) &&
	    p.flow.dport == cfg.tele_port) {
		r = model_telemetry(data, len, &p, pr);
		pr->verdict = r ? IDN_V_MALFORMED : IDN_V_TELEMETRY;
		pr->drop = r;
		pr->act = A_DROP;
		return;
	}
	/* a SYN's option list, before the connection table */
	if (p.flow.proto == IPPROTO_TCP &&
	    (p.tcp_flags & (IDN_TCP_SYN | IDN_TCP_ACK)) == IDN_TCP_SYN &&
	    p.tcp_hlen > sizeof(struct tcphdr)) {
		r = idn_tcpopt_find((void *)data, (void *)(data + len), &p, &o);
		if (r > 0 && idn_tcpopt_check(&o))
			r = -idn_tcpopt_check(&o);
		if (r < 0) {
			r = -r;
			goto malformed;
		}
		has_opt = r;
	}
	have_ct = idn_ct_get(E.conns, &p.flow, &ct) == 0;
	if (have_ct && bpf_map_lookup_elem(E.nodes, &ct.node, &n) == 0 &&
	    (n.flags & IDN_NODE_F_VALID) && has_loc(&n, p.flow.family) &&
	    (n.health == IDN_HEALTH_UP || n.health == IDN_HEALTH_DRAIN)) {
		pr->verdict = IDN_V_CONN;
		fwd_pred(pr, ct.node);
		return;
	}
	/* a TCP connection whose node is down: reset at once (steer.h) */
	if (have_ct && p.flow.proto == IPPROTO_TCP && !(p.tcp_flags & IDN_TCP_SYN)) {
		pr->verdict = IDN_V_ERROR;
		pr->drop = IDN_DROP_NODE_DOWN;
		if (!(p.tcp_flags & IDN_TCP_RST) && !(cfg.flags & IDN_CFG_F_NO_RST) &&
		    p.l4_off - p.l3_off == (p.flow.family == IDN_AF_INET6 ? 40 : 20))
			pr->act = A_TX;
		else
			pr->act = A_DROP;
		return;
	}
	memset(&vk, 0, sizeof(vk));
	memcpy(vk.addr, p.flow.daddr, 16);
	vk.port = p.flow.dport;
	vk.proto = p.flow.proto;
	vk.family = p.flow.family;
	r = idn_desc_begin(&cfg, bpf_map_lookup_elem(E.vips, &vk, &vip) == 0 ? &vip : NULL,
			   &p.flow, &d);
	if (r == IDN_DESC_NOT_IDN)
		goto pass;
	if (r)
		goto malformed;
	if (has_opt) {
		r = idn_desc_apply_opt(&o, &d);
		if (r)
			goto malformed;
	}
	r = idn_desc_finish(&p.flow, &d);
	if (r)
		goto malformed;
	/* a mid-flow TCP segment without an entry: stateless.h, no state */
	if (!have_ct && p.flow.proto == IPPROTO_TCP &&
	    (p.tcp_flags & (IDN_TCP_SYN | IDN_TCP_ACK)) != IDN_TCP_SYN) {
		struct idn_aff_key ak = { .token = d.token, .cls = IDN_CAP_CLASS(d.cap) };
		struct idn_sl_in sl = {
			.hash = idn_flow_hash(&p.flow), .cap = d.cap, .aff_node = IDN_NODE_NONE,
			.tier = d.tier, .policy = d.policy, .slot = cfg.active_slot & 1,
			.family = p.flow.family,
		};
		struct idn_aff a;
		__u32 id;

		/* the node the TSecr's cookie names, when a candidate (steer.h) */
		r = model_ts_cookie(data, len, &p);
		if (r >= 0) {
			int c = idn_ts_check(&env, &sl, (__u32)r);

			if (c > 0) {
				pr->verdict = IDN_V_CONN;
				fwd_pred(pr, (__u32)r);
				pr->drop = pr->drop ? -2 : IDN_DROP_TS_COOKIE;
				return;
			}
			if (c < 0) {
				pr->verdict = IDN_V_ERROR;
				pr->drop = IDN_DROP_NODE_DOWN;
				pr->act = !(p.tcp_flags & IDN_TCP_RST) &&
					  !(cfg.flags & IDN_CFG_F_NO_RST) &&
					  p.l4_off - p.l3_off ==
					  (p.flow.family == IDN_AF_INET6 ? 40 : 20) ? A_TX : A_DROP;
				return;
			}
		}
		if (idn_afft_get(E.aff, ak.token, ak.cls, &a) == 0)
			sl.aff_node = a.node;
		id = idn_stateless_pick(&env, &sl);
		if (id == IDN_NODE_NONE) {
			pr->verdict = IDN_V_NOCAP;
			pr->drop = IDN_DROP_NO_STATE;
			pr->act = A_DROP;
			return;
		}
		pr->verdict = IDN_V_CONN;
		fwd_pred(pr, id);
		pr->drop = pr->drop ? -2 : IDN_DROP_NO_STATE;	/* with fib: two reasons */
		return;
	}
	{
		struct idn_aff_key ak = { .token = d.token, .cls = IDN_CAP_CLASS(d.cap) };
		struct idn_aff a;
		__u32 aff = IDN_NODE_NONE;

		if (idn_afft_get(E.aff, ak.token, ak.cls, &a) == 0)
			aff = a.node;	/* aff_ttl_s is 0: never stale */
		idn_sel_in_init(&in, &d, aff, cfg.active_slot, cfg.home_domain, p.flow.family,
				TICK_FAR);
	}
	idn_select(&env, &in, &sel, NULL);
	pr->verdict = sel.verdict;
	if (sel.verdict == IDN_V_MISS_REJECT && (cfg.flags & IDN_CFG_F_HOLD))
		pr->verdict = IDN_V_MISS_HOLD;
	if (is_fwd(pr->verdict)) {
		fwd_pred(pr, sel.node);
		/* the decision is charged to its node (select.h idn_node_charge) */
		if (bpf_map_lookup_elem(E.nodes, &sel.node, &n) == 0) {
			idn_node_charge(&n, sel.charge);
			pr->ch_node = sel.node;
			pr->ch_after = n.charged_tokens;
			pr->reqs_after = n.charged_reqs;
		}
		return;
	}
	if (pr->verdict == IDN_V_MISS_HOLD) {
		pr->act = A_PASS;
		pr->cap = d.cap;
		return;
	}
	/* rejected */
	if (p.flow.proto == IPPROTO_TCP && !(p.tcp_flags & IDN_TCP_RST) &&
	    !(cfg.flags & IDN_CFG_F_NO_RST) &&
	    p.l4_off - p.l3_off == (p.flow.family == IDN_AF_INET6 ? 40 : 20))
		pr->act = A_TX;
	else
		pr->act = A_DROP;
	return;
malformed:
	pr->verdict = IDN_V_MALFORMED;
	pr->drop = r;
	pr->act = cfg.flags & IDN_CFG_F_DROP_MALFORMED ? A_DROP : A_PASS;
	return;
pass:
	pr->verdict = IDN_V_PASS;
	pr->act = A_PASS;
}

/* The node an output packet was sent to: its outer destination. */
static __u32 out_node(const struct run *r, size_t l2)
{
	const uint8_t *o = r->out + l2;

	if (r->out_len < l2 + 20)
		return IDN_NODE_NONE;
	if ((o[0] >> 4) == 4 && o[9] == IPPROTO_IPIP)
		return node_by_locator(IDN_AF_INET, o + 16);
	if ((o[0] >> 4) == 6 && r->out_len >= l2 + 40 && o[6] == IPPROTO_IPV6)
		return node_by_locator(IDN_AF_INET6, o + 24);
	return IDN_NODE_NONE;
}

static const char *vname(int v)
{
	static const char *n[] = { "PASS", "CONN", "NEW", "AFFINITY", "FALLBACK", "OVERFLOW",
				   "SHED", "NOCAP", "MISS_HOLD", "MISS_REJECT", "MALFORMED",
				   "TELEMETRY", "ERROR" };

	return v >= 0 && v < IDN_V_MAX ? n[v] : "?";
}

static long compared[2], mismatched[2], by_verdict[IDN_V_MAX], refused;

/*
 * A held miss carries its capability to idn.ko: XDP in struct idn_meta,
 * TC as skb->mark = IDN_MARK_MISS and skb->priority = the capability.
 */
static int hold_ok(int hook, const struct run *r, __u32 cap)
{
	struct idn_meta m;

	if (hook == HOOK_TC)
		return r->mark == IDN_MARK_MISS && r->priority == cap;
	/* without XDP metadata, XDP leaves the miss to TC: passed as it came */
	if (!(E.features & IDN_FEAT_XDP_META))
		return r->meta_len == 0;
	if (r->meta_len != sizeof(m))
		return 0;
	memcpy(&m, r->meta, sizeof(m));
	return m.magic == IDN_META_MAGIC && m.verdict == IDN_V_MISS_HOLD && m.cap == cap;
}
static struct run R_;

/* Run one packet through one hook and compare with the model. */
static int diff_one(int hook, const struct pg *p)
{
	struct pred pr;
	int ok = 1, exp_verdict;
	__u32 got_node;

	model(p->buf, p->len, &pr);
	run_pkt(hook, p->buf, p->len, E.if0, &R_);
	if (hook == HOOK_TC && R_.err == -EINVAL) {
		refused++;	/* the skb test run refuses cut L3 headers */
		return 1;
	}
	compared[hook]++;
	got_node = is_fwd(R_.verdict) ? out_node(&R_, 14)
				      : IDN_NODE_NONE;
	/* without XDP metadata a held miss is TC's to count: XDP counts nothing */
	exp_verdict = hook == HOOK_XDP && !(E.features & IDN_FEAT_XDP_META) &&
		      pr.verdict == IDN_V_MISS_HOLD ? -1 : pr.verdict;
	if (R_.err || R_.verdict != exp_verdict || R_.drop != pr.drop ||
	    R_.ret != act_code(hook, pr.act) || got_node != pr.node)
		ok = 0;
	if (ok && pr.verdict == IDN_V_MISS_HOLD && !hold_ok(hook, &R_, pr.cap))
		ok = 0;
	if (ok && pr.ch_node != IDN_NODE_NONE) {
		struct idn_node n;

		if (bpf_map_lookup_elem(E.nodes, &pr.ch_node, &n) ||
		    n.charged_tokens != pr.ch_after || n.charged_reqs != pr.reqs_after) {
			printf("# charge of node %u: program %u (%u flows), model %u (%u)\n",
			       pr.ch_node, n.charged_tokens, n.charged_reqs, pr.ch_after,
			       pr.reqs_after);
			ok = 0;
		} else if (pr.tele && (n.others_rate != pr.rate_after ||
				       n.others_span != pr.span_after ||
				       n.others_carry != pr.carry_after)) {
			printf("# others' rate of node %u: program %u over %u carry %u, "
			       "model %u over %u carry %u\n", pr.ch_node, n.others_rate,
			       n.others_span, n.others_carry, pr.rate_after, pr.span_after,
			       pr.carry_after);
			ok = 0;
		} else if (pr.tele) {
			/* back an interval: later decisions count it in full, as the model */
			n.tele_tick = 0;
			put_node(pr.ch_node, &n);
		}
	}
	if (R_.verdict >= 0 && R_.verdict < IDN_V_MAX)
		by_verdict[R_.verdict]++;
	if (!ok) {
		mismatched[hook]++;
		if (mismatched[0] + mismatched[1] <= 10) {
			printf("# MISMATCH %s: err %d; program %s drop %d ret %d node %d; "
			       "model %s drop %d ret %d node %d\n", hook_name(hook), R_.err,
			       vname(R_.verdict), R_.drop, R_.ret, (int)got_node,
			       vname(pr.verdict), pr.drop, act_code(hook, pr.act), (int)pr.node);
			if (pr.verdict == IDN_V_MISS_HOLD)
				printf("# hold: mark 0x%x priority 0x%x meta %u bytes, model cap 0x%x\n",
				       R_.mark, R_.priority, R_.meta_len, pr.cap);
			pg_hexdump("packet", p->buf, p->len);
		}
	}
	return ok;
}

int main(int argc, char **argv)
{
	long n = argc > 1 ? atol(argv[1]) : 100000;
	const char *seed_env = getenv("IDN_DIFF_SEED");
	char why[256] = "";
	__u64 seed;
	int r;

	setvbuf(stdout, NULL, _IOLBF, 0);
	seed = seed_env ? strtoull(seed_env, NULL, 0) : 0x1d4e2026ULL;
	rs = seed ? seed : 1;
	tap_plan(0);
	r = tenv_setup(why, sizeof(why));
	if (r) {
		if (r > 0)
			tap_skip(why);
		else
			TAP_FAIL("%s", why);
		tap_result("bpf_diff setup");
		tenv_teardown();
		tap_done();
		return r > 0 ? 4 : 1;
	}
	printf("# seed 0x%llx, %ld packets\n", (unsigned long long)seed, n);
	for (long i = 0; i < n; i++) {
		struct pg p;

		if (i % 1000 == 0)
			rand_world();
		else if (i % 97 == 0)
			plan_swap();
		if (i % 211 == 0)
			rand_node(node_ids[rn(N_NODES)]);
		gen_packet(&p, 1);	/* VLAN tags on both hooks */
		diff_one(HOOK_XDP, &p);
		if (i % 4 == 0)
			diff_one(HOOK_TC, &p);
	}
	printf("# compared: xdp %ld, tc %ld (tc refused %ld cut frames); "
	       "mismatches: xdp %ld, tc %ld\n", compared[1], compared[0], refused,
	       mismatched[1], mismatched[0]);
	printf("# verdicts seen:");
	for (int v = 0; v < IDN_V_MAX; v++)
		printf(" %s=%ld", vname(v), by_verdict[v]);
	printf("\n");
	ASSERT_TRUE(compared[1] >= n, "every packet compared");
	ASSERT_EQ(mismatched[1], 0, "xdp agrees with bpf/lib");
	tap_result("xdp: program and userspace bpf/lib agree");
	ASSERT_TRUE(compared[0] > 0, "tc compared");
	ASSERT_EQ(mismatched[0], 0, "tc agrees with bpf/lib");
	tap_result("tc: program and userspace bpf/lib agree");
	/* a comparison that never reached a verdict proves nothing about it */
	for (int v = 0; v < IDN_V_ERROR; v++)
		if (!ASSERT_TRUE(by_verdict[v] > 0, "verdict reached"))
			printf("# verdict %s never reached\n", vname(v));
	tap_result("every verdict reached");
	tenv_teardown();
	return tap_done();
}
