// SPDX-License-Identifier: GPL-2.0
/*
 * bpf_hostile.c - a corpus of hostile frames through idn_xdp and idn_tc:
 * truncations at every header boundary, TCP flag sets no connection
 * sends, UDP and IP lengths, TTL / hop limit 0, IPv4 header checksums,
 * fragments (first, middle, last; IPv4 and IPv6), IPv6 extension headers,
 * broken TCP option lists and IDN options, VLAN stacks (single, double,
 * too many). Every frame is addressed to a VIP that has a plan and a
 * healthy node, and runs without and with a connection entry for its flow
 * (taken from the frame before it was broken), under the permissive
 * configuration (malformed, fragments, extension headers: pass) and the
 * strict one (all: drop).
 *
 * Each run must: take the configured action (pass with the frame
 * untouched, or drop), count the frame's own drop reason once and never
 * a forwarding verdict, and never put an outer header toward a node in
 * front of it. The count of frames encapsulated to a node is printed as
 * the figure "hostile_frames_forwarded N frames" (a TAP comment); it must
 * be 0.
 *
 * Runs in private network and mount namespaces (steer_env.h); skips when
 * not root.
 */
#include "steer_env.h"
#include "lib/parse.h"
#include "lib/desc.h"

IDN_ASSERT_ABI();

#define CAP_A	IDN_CAP(0x100, 0)
#define VIP4	"203.0.113.10"
#define VIP6	"2001:db8:feed::10"
#define CLI4	"192.0.2.10"
#define CLI6	"2001:db8:c1::10"

enum kind {
	K_MALFORMED,	/* pass or drop by drop-malformed */
	K_FRAG,		/* pass or drop by frag */
	K_EXT6,		/* pass or drop by ext6 */
};

struct frame {
	char name[64];
	struct pg pkt;
	int reason;		/* the drop reason counted */
	enum kind kind;
	int has_key;		/* key: the flow of the frame before it was broken */
	struct idn_flow_key key;
};

#define MAX_FRAMES 256
static struct frame corpus[MAX_FRAMES];
static int n_frames;

/* ---- the world -------------------------------------------------------- */

static void put_vip(const char *addr, int port, int proto)
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
	v.defaults.cap = CAP_A;
	v.defaults.tier = 5;
	bpf_map_update_elem(E.vips, &k, &v, BPF_ANY);
}

/* One dual-stack node (1) behind the ingress device, a plan, four VIPs. */
static void world(__u32 flags)
{
	struct idn_config c = { 0 };
	struct idn_node n = { 0 };
	struct idn_plan pl;

	tenv_reset();
	c.flags = flags;
	c.generation = 1;
	inet_pton(AF_INET, "10.99.0.1", &c.src4);
	inet_pton(AF_INET6, "fd00:99::1", c.src6);
	put_config(&c);
	inet_pton(AF_INET, "10.99.0.11", &n.addr4);
	inet_pton(AF_INET6, "fd00:99::11", n.addr6);
	n.trust = 7;
	n.health = IDN_HEALTH_UP;
	n.flags = IDN_NODE_F_VALID | IDN_NODE_F_LOC4 | IDN_NODE_F_LOC6;
	put_node(1, &n);
	memset(&pl, 0, sizeof(pl));
	pl.generation = 1;
	for (int i = 0; i < IDN_W_MAX; i++)
		pl.weight[i] = 256;
	pl.n_cand = 1;
	pl.cand[0].node = 1;
	pl.cand[0].exec_us = 100;
	put_plan(CAP_A, IDN_ANY, IDN_ANY, 0, &pl);
	put_vip(VIP4, 80, IPPROTO_TCP);
	put_vip(VIP4, 53, IPPROTO_UDP);
	put_vip(VIP6, 80, IPPROTO_TCP);
	put_vip(VIP6, 53, IPPROTO_UDP);
}

/* ---- well-formed bases ------------------------------------------------- */

static uint16_t sport = 30000;

/* A VIP SYN (v4 or v6), @vlans tags, with the Linux options and an IDN option. */
static void base_syn(struct pg *p, int v6, int vlans, uint8_t flags)
{
	struct idn_tcpopt o;
	uint8_t s[16], d[16];

	pg_init(p);
	pg_eth(p, NULL, NULL);
	for (int i = 0; i < vlans; i++)
		pg_vlan(p, i == 0 && vlans > 1 ? ETH_P_8021AD : ETH_P_8021Q, (uint16_t)(10 + i));
	if (v6) {
		inet_pton(AF_INET6, CLI6, s);
		inet_pton(AF_INET6, VIP6, d);
		pg_ip6(p, s, d, IPPROTO_TCP);
	} else {
		inet_pton(AF_INET, CLI4, s);
		inet_pton(AF_INET, VIP4, d);
		pg_ip4(p, s, d, IPPROTO_TCP);
	}
	pg_tcp(p, sport++, 80, flags, 1000, flags & PG_ACK ? 2000 : 0);
	if (flags & PG_SYN) {
		pg_opt_mss(p, 1460);
		pg_opt_nop(p);
		pg_opt_ws(p, 7);
		pg_idnopt_fill(&o, 1, 5, 0, IDN_SIZE_NONE, 0, 42);
		pg_opt_idn(p, &o);
	}
	pg_finish(p);
}

static void base_udp(struct pg *p, int v6)
{
	struct pg_flow f;

	if (v6)
		pg_flow6(&f, CLI6, VIP6, sport++, 53, IPPROTO_UDP);
	else
		pg_flow4(&f, CLI4, VIP4, sport++, 53, IPPROTO_UDP);
	pg_udp_pkt(p, &f, "query", 5);
}

/* A SYN to the v4 VIP with these raw option bytes (padded to 4). */
static void syn_opts(struct pg *p, const void *opt, size_t n)
{
	uint8_t s[4], d[4];

	pg_init(p);
	pg_eth(p, NULL, NULL);
	inet_pton(AF_INET, CLI4, s);
	inet_pton(AF_INET, VIP4, d);
	pg_ip4(p, s, d, IPPROTO_TCP);
	pg_tcp(p, sport++, 80, PG_SYN, 1000, 0);
	pg_opt_raw(p, opt, n);
	pg_finish(p);
}

/* ---- the corpus --------------------------------------------------------- */

static struct frame *add(const struct pg *base, const char *name, int reason, enum kind k)
{
	struct frame *f = &corpus[n_frames++];
	struct idn_pkt pk;

	if (n_frames > MAX_FRAMES)
		abort();
	memset(f, 0, sizeof(*f));
	snprintf(f->name, sizeof(f->name), "%s", name);
	f->pkt = *base;
	f->reason = reason;
	f->kind = k;
	if (idn_parse((void *)base->buf, (void *)(base->buf + base->len), &pk) == 0 &&
	    pk.has_ports) {
		f->key = pk.flow;
		f->has_key = 1;
	}
	return f;
}

/*
 * The broken frame into the corpus. pktgen writes headers through struct
 * pointers into a byte array; the barrier makes the compiler treat @p as
 * read here, so no such write is dropped or reordered past the copy.
 */
static void frame_set(struct frame *f, struct pg *p)
{
	__asm__ __volatile__("" : : "r"(p) : "memory");
	f->pkt = *p;
}

static void truncations(void)
{
	static const struct { int v6, vlans, udp; const char *name; } bases[] = {
		{ 0, 0, 0, "v4 syn" }, { 1, 0, 0, "v6 syn" }, { 0, 1, 0, "vlan v4 syn" },
		{ 1, 2, 0, "qinq v6 syn" }, { 0, 0, 1, "v4 udp" }, { 1, 0, 1, "v6 udp" },
	};

	for (size_t b = 0; b < sizeof(bases) / sizeof(bases[0]); b++) {
		struct pg base;
		size_t l3, l4, cuts[12];
		int nc = 0;

		if (bases[b].udp)
			base_udp(&base, bases[b].v6);
		else
			base_syn(&base, bases[b].v6, bases[b].vlans, PG_SYN);
		l3 = (size_t)base.l3_off;
		l4 = (size_t)base.l4_off;
		/* every header boundary, one byte either side where it exists */
		cuts[nc++] = 14;			/* Ethernet only */
		if (l3 > 14)
			cuts[nc++] = 16;		/* inside a tag */
		cuts[nc++] = l3;			/* L2 complete, no L3 */
		cuts[nc++] = l3 + 1;
		cuts[nc++] = l4 - 1;			/* fixed L3 header less a byte */
		cuts[nc++] = l4;			/* L3 header, no L4 */
		cuts[nc++] = l4 + 1;
		cuts[nc++] = l4 + (bases[b].udp ? 7 : 19);	/* L4 header less a byte */
		cuts[nc++] = l4 + (bases[b].udp ? 8 : 20);	/* L4 header, no more */
		if (!bases[b].udp)
			cuts[nc++] = l4 + 23;		/* inside the options */
		cuts[nc++] = base.len - 1;		/* last byte missing */
		for (int i = 0; i < nc; i++) {
			struct pg q = base;
			char name[64];
			struct frame *f;

			if (cuts[i] >= base.len || (i > 0 && cuts[i] == cuts[i - 1]))
				continue;
			pg_truncate(&q, cuts[i]);
			snprintf(name, sizeof(name), "%s cut at %zu", bases[b].name, cuts[i]);
			f = add(&base, name, cuts[i] < l3 ? IDN_DROP_TRUNC_L2 : IDN_DROP_TRUNC_L3,
				K_MALFORMED);
			frame_set(f, &q);
		}
	}
}

static void flag_sets(void)
{
	static const struct { uint8_t fl; const char *name; } sets[] = {
		{ PG_SYN | PG_FIN, "SYN+FIN" }, { PG_SYN | PG_RST, "SYN+RST" },
		{ PG_FIN | PG_PSH | 0x20, "XMAS" }, { 0, "NULL" }, { PG_FIN, "FIN alone" },
		{ PG_SYN | PG_FIN | PG_PSH | 0x20, "SYN+XMAS" }, { PG_RST | PG_FIN, "RST+FIN" },
		{ 0x3f, "all six" }, { 0x20, "URG alone" }, { PG_PSH, "PSH alone" },
		{ PG_SYN | PG_RST | PG_ACK, "SYN+RST+ACK" }, { PG_FIN | PG_SYN | PG_ACK, "SYN+FIN+ACK" },
	};

	for (int v6 = 0; v6 <= 1; v6++)
		for (size_t i = 0; i < sizeof(sets) / sizeof(sets[0]); i++) {
			struct pg p, ok;
			char name[64];
			struct frame *f;

			base_syn(&ok, v6, 0, PG_ACK);
			p = ok;
			pg_tcph(&p)->doff = 5;
			p.buf[p.l4_off + 13] = sets[i].fl;
			pg_fix_csums(&p);
			snprintf(name, sizeof(name), "v%d flags %s", v6 ? 6 : 4, sets[i].name);
			f = add(&ok, name, IDN_DROP_BAD_FLAGS, K_MALFORMED);
			frame_set(f, &p);
		}
}

static void udp_lengths(void)
{
	static const int lens[] = { 0, 7, 14, 0xffff };

	for (int v6 = 0; v6 <= 1; v6++)
		for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
			struct pg p, ok;
			char name[64];
			struct frame *f;

			base_udp(&ok, v6);	/* a 13-byte datagram */
			p = ok;
			pg_udph(&p)->len = htons((uint16_t)lens[i]);
			pg_fix_csums(&p);
			snprintf(name, sizeof(name), "v%d udp length %d", v6 ? 6 : 4, lens[i]);
			f = add(&ok, name, IDN_DROP_BAD_UDP, K_MALFORMED);
			frame_set(f, &p);
		}
}

static void ttls(void)
{
	for (int v6 = 0; v6 <= 1; v6++)
		for (int udp = 0; udp <= 1; udp++) {
			struct pg p, ok;
			char name[64];
			struct frame *f;

			if (udp)
				base_udp(&ok, v6);
			else
				base_syn(&ok, v6, 0, PG_ACK);
			p = ok;
			if (v6)
				pg_ip6h(&p)->hop_limit = 0;
			else
				pg_ip4h(&p)->ttl = 0;
			pg_fix_csums(&p);
			snprintf(name, sizeof(name), "v%d %s ttl 0", v6 ? 6 : 4, udp ? "udp" : "tcp");
			f = add(&ok, name, IDN_DROP_TTL, K_MALFORMED);
			frame_set(f, &p);
		}
}

static void checksums(void)
{
	/* header bytes whose change leaves every other check passing */
	static const struct { int off; uint8_t x; const char *name; } bad[] = {
		{ 1, 0x04, "tos" }, { 4, 0x01, "id" }, { 5, 0x80, "id high" },
		{ 8, 0x01, "ttl" }, { 12, 0x01, "saddr" }, { 15, 0x80, "saddr low" },
		{ 19, 0x01, "daddr" }, { 10, 0xff, "check byte" }, { 11, 0x01, "check bit" },
	};
	struct pg ok, p;
	struct frame *f;
	char name[64];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		base_syn(&ok, 0, 0, PG_ACK);
		p = ok;
		p.buf[p.l3_off + bad[i].off] ^= bad[i].x;
		snprintf(name, sizeof(name), "v4 csum: %s changed", bad[i].name);
		f = add(&ok, name, IDN_DROP_IP4_CSUM, K_MALFORMED);
		frame_set(f, &p);
	}
	base_syn(&ok, 0, 0, PG_ACK);
	p = ok;
	pg_ip4h(&p)->check = 0;
	f = add(&ok, "v4 csum zero", IDN_DROP_IP4_CSUM, K_MALFORMED);
	frame_set(f, &p);
	/* with IP options: the options are covered */
	{
		uint8_t s[4], d[4];

		pg_init(&ok);
		pg_eth(&ok, NULL, NULL);
		inet_pton(AF_INET, CLI4, s);
		inet_pton(AF_INET, VIP4, d);
		pg_ip4(&ok, s, d, IPPROTO_TCP);
		pg_ip4_opts(&ok, 8);
		pg_tcp(&ok, sport++, 80, PG_ACK, 1, 2);
		pg_finish(&ok);
		p = ok;
		p.buf[p.l3_off + 22] ^= 0x10;
		f = add(&ok, "v4 csum: IP option changed", IDN_DROP_IP4_CSUM, K_MALFORMED);
		frame_set(f, &p);
		/* single and double tagged, bad checksum */
		for (int vl = 1; vl <= 2; vl++) {
			base_syn(&ok, 0, vl, PG_SYN);
			p = ok;
			p.buf[p.l3_off + 4] ^= 0x22;
			snprintf(name, sizeof(name), "%d tag(s), v4 csum", vl);
			f = add(&ok, name, IDN_DROP_IP4_CSUM, K_MALFORMED);
			frame_set(f, &p);
		}
	}
}

static void lengths(void)
{
	struct pg ok, p;
	struct frame *f;

	base_syn(&ok, 0, 0, PG_ACK);
	p = ok;
	pg_ip4h(&p)->tot_len = htons(19);
	pg_fix_csums(&p);
	f = add(&ok, "v4 tot_len 19", IDN_DROP_BAD_IP4, K_MALFORMED);
	frame_set(f, &p);
	p = ok;
	pg_ip4h(&p)->tot_len = htons((uint16_t)(p.len - p.l3_off + 1));
	pg_fix_csums(&p);
	f = add(&ok, "v4 tot_len past the frame", IDN_DROP_TRUNC_L3, K_MALFORMED);
	frame_set(f, &p);
	p = ok;
	pg_ip4h(&p)->tot_len = htons(30);	/* inside the TCP header */
	pg_fix_csums(&p);
	f = add(&ok, "v4 tot_len cuts tcp", IDN_DROP_TRUNC_L4, K_MALFORMED);
	frame_set(f, &p);
	p = ok;
	pg_ip4h(&p)->ihl = 4;
	pg_fix_csums(&p);
	f = add(&ok, "v4 ihl 4", IDN_DROP_BAD_IP4, K_MALFORMED);
	frame_set(f, &p);
	p = ok;
	pg_ip4h(&p)->ihl = 15;
	f = add(&ok, "v4 ihl 15 past tot_len", IDN_DROP_BAD_IP4, K_MALFORMED);
	frame_set(f, &p);
	p = ok;
	pg_tcph(&p)->doff = 4;
	pg_fix_csums(&p);
	f = add(&ok, "tcp doff 4", IDN_DROP_BAD_TCP, K_MALFORMED);
	frame_set(f, &p);
	p = ok;
	pg_tcph(&p)->doff = 15;
	pg_fix_csums(&p);
	f = add(&ok, "tcp doff past the segment", IDN_DROP_BAD_TCP, K_MALFORMED);
	frame_set(f, &p);
	base_syn(&ok, 1, 0, PG_ACK);
	p = ok;
	pg_poke16(&p, (size_t)p.l3_off + 4, (uint16_t)(p.len - p.l3_off - 40 + 1));
	f = add(&ok, "v6 payload past the frame", IDN_DROP_TRUNC_L3, K_MALFORMED);
	frame_set(f, &p);
	p = ok;
	pg_poke16(&p, (size_t)p.l3_off + 4, 12);
	f = add(&ok, "v6 payload cuts tcp", IDN_DROP_TRUNC_L4, K_MALFORMED);
	frame_set(f, &p);
	p = ok;
	pg_poke8(&p, (size_t)p.l3_off, 0x50);
	f = add(&ok, "v6 version 5", IDN_DROP_BAD_IP6, K_MALFORMED);
	frame_set(f, &p);
}

/* IPv4 fragment of a VIP datagram: @mf, offset in 8-byte units. */
static void frag4(int udp, int mf, int off8, const char *name)
{
	struct pg ok, p;
	struct frame *f;

	if (udp)
		base_udp(&ok, 0);
	else
		base_syn(&ok, 0, 0, PG_ACK);
	p = ok;
	pg_ip4h(&p)->frag_off = htons((uint16_t)((mf ? 0x2000 : 0) | off8));
	pg_fix_csums(&p);
	f = add(&ok, name, IDN_DROP_IP4_FRAG, K_FRAG);
	frame_set(f, &p);
}

/* An IPv6 VIP packet with a chain of 8-byte extension headers before L4. */
static void v6_chain(struct pg *p, int udp, const uint8_t *nh, int n, const uint8_t *b2,
		     const uint8_t *b3, uint16_t sp)
{
	uint8_t s[16], d[16];
	uint8_t proto = udp ? IPPROTO_UDP : IPPROTO_TCP;

	pg_init(p);
	pg_eth(p, NULL, NULL);
	inet_pton(AF_INET6, CLI6, s);
	inet_pton(AF_INET6, VIP6, d);
	pg_ip6(p, s, d, proto);
	if (n)
		pg_ip6h(p)->nexthdr = nh[0];
	for (int i = 0; i < n; i++) {
		uint8_t *h = pg_put(p, 8);

		h[0] = i + 1 < n ? nh[i + 1] : proto;
		h[2] = b2 ? b2[i] : 0;
		h[3] = b3 ? b3[i] : 0;
	}
	if (udp) {
		pg_udp(p, sp, 53);
		pg_payload(p, "query", 5);
	} else {
		pg_tcp(p, sp, 80, PG_ACK, 1, 2);
	}
	pg_finish(p);
}

/* The chain and the same flow without it (what a conn entry knows). */
static void v6_chain_pair(struct pg *p, struct pg *ok, int udp, const uint8_t *nh, int n,
			  const uint8_t *b2, const uint8_t *b3)
{
	uint16_t sp = sport++;

	v6_chain(p, udp, nh, n, b2, b3, sp);
	v6_chain(ok, udp, nh, 0, NULL, NULL, sp);
}

static void fragments(void)
{
	static const uint8_t fh[] = { IDN_NH_FRAGMENT };
	struct pg ok, p;
	struct frame *f;
	/* fragment header bytes 2-3: offset << 3 | M */
	static const uint8_t first[2] = { 0x00, 0x01 }, mid[2] = { 0x05, 0xc9 },
			     last[2] = { 0x0b, 0x90 };
	const uint8_t *fo[] = { first, mid, last };
	const char *nm[] = { "v6 first fragment", "v6 middle fragment", "v6 last fragment" };

	frag4(0, 1, 0, "v4 tcp first fragment");
	frag4(0, 1, 185, "v4 tcp middle fragment");
	frag4(0, 0, 370, "v4 tcp last fragment");
	frag4(1, 1, 0, "v4 udp first fragment");
	frag4(1, 1, 185, "v4 udp middle fragment");
	frag4(1, 0, 370, "v4 udp last fragment");
	for (int i = 0; i < 3; i++) {
		for (int udp = 0; udp <= 1; udp++) {
			char name[64];

			v6_chain_pair(&p, &ok, udp, fh, 1, &fo[i][0], &fo[i][1]);
			snprintf(name, sizeof(name), "%s %s", nm[i], udp ? "udp" : "tcp");
			f = add(&ok, name, IDN_DROP_IP6_FRAG, K_FRAG);
			frame_set(f, &p);
		}
	}
	/* a fragment behind a hop-by-hop header */
	{
		static const uint8_t hf[] = { IDN_NH_HOPOPTS, IDN_NH_FRAGMENT };
		static const uint8_t b3[] = { 0, 1 };

		v6_chain_pair(&p, &ok, 0, hf, 2, NULL, b3);
		f = add(&ok, "v6 hop-by-hop + fragment", IDN_DROP_IP6_FRAG, K_FRAG);
		frame_set(f, &p);
	}
}

static void ext_headers(void)
{
	static const struct {
		uint8_t nh[5];
		int n;
		uint8_t seg_left;
		const char *name;
	} ch[] = {
		{ { IDN_NH_HOPOPTS }, 1, 0, "hop-by-hop" },
		{ { IDN_NH_DSTOPTS }, 1, 0, "destination options" },
		{ { IDN_NH_ROUTING }, 1, 0, "routing, 0 segments left" },
		{ { IDN_NH_ROUTING }, 1, 2, "routing, 2 segments left" },
		{ { IDN_NH_AH }, 1, 0, "AH" },
		{ { IDN_NH_ESP }, 1, 0, "ESP" },
		{ { IDN_NH_HOPOPTS, IDN_NH_DSTOPTS, IDN_NH_ROUTING }, 3, 0, "three headers" },
		{ { IDN_NH_DSTOPTS, IDN_NH_DSTOPTS, IDN_NH_DSTOPTS, IDN_NH_DSTOPTS,
		    IDN_NH_DSTOPTS }, 5, 0, "five headers" },
	};

	for (size_t i = 0; i < sizeof(ch) / sizeof(ch[0]); i++)
		for (int udp = 0; udp <= 1; udp++) {
			uint8_t b3[5] = { 0 };
			struct pg ok, p;
			struct frame *f;
			char name[64];

			b3[ch[i].n - 1] = ch[i].seg_left;
			v6_chain_pair(&p, &ok, udp, ch[i].nh, ch[i].n, NULL, b3);
			snprintf(name, sizeof(name), "v6 %s %s", ch[i].name, udp ? "udp" : "tcp");
			f = add(&ok, name, IDN_DROP_IP6_EXT, K_EXT6);
			frame_set(f, &p);
		}
	/* a header longer than the payload: malformed, whatever ext6 says */
	{
		static const uint8_t hbh[] = { IDN_NH_HOPOPTS };
		struct pg ok, p;
		struct frame *f;

		v6_chain_pair(&p, &ok, 0, hbh, 1, NULL, NULL);
		p.buf[p.l3_off + 41] = 20;
		f = add(&ok, "v6 hop-by-hop past the payload", IDN_DROP_BAD_IP6, K_MALFORMED);
		frame_set(f, &p);
	}
}

static void option_lists(void)
{
	static const struct { uint8_t b[24]; int n; int reason; const char *name; } o[] = {
		{ { 2, 0, 5, 0xb4 }, 4, IDN_DROP_BAD_OPT, "MSS length 0" },
		{ { 2, 1, 5, 0xb4 }, 4, IDN_DROP_BAD_OPT, "MSS length 1" },
		{ { 1, 1, 1, 2 }, 4, IDN_DROP_BAD_OPT, "length byte missing" },
		{ { 2, 8, 5, 0xb4 }, 4, IDN_DROP_BAD_OPT, "option past the header" },
		{ { 8, 10, 0, 0, 0, 0, 0, 0 }, 8, IDN_DROP_BAD_OPT, "timestamp cut" },
		{ { 253, 16, 0x1d, 0x4e, 0x15, 0, 0xff, 0, 0, 0, 0, 0, 0, 0, 0, 1 }, 16,
		  IDN_DROP_BAD_OPT, "IDN option length 16" },
		{ { 253, 20, 0x1d, 0x4e, 0x25, 0, 0xff, 0 }, 20, IDN_DROP_BAD_OPT_VER,
		  "IDN option version 2" },
		{ { 253, 20, 0x1d, 0x4e, 0x15, 0, 0xff, 1 }, 20, IDN_DROP_BAD_OPT,
		  "IDN option reserved byte" },
		{ { 253, 20, 0x1d, 0x4e, 0x15, 0, 16, 0 }, 20, IDN_DROP_BAD_DESC,
		  "IDN option size class 16" },
		{ { 253, 20, 0x1d, 0x4e, 0x15, 0x80, 0xff, 0 }, 20, IDN_DROP_BAD_DESC,
		  "IDN option policy bit 7" },
		{ { 253, 20, 0x1d, 0x4e, 0x15, 0x60, 0xff, 0 }, 20, IDN_DROP_BAD_DESC,
		  "IDN option scope 3" },
		{ { 3, 3, 7, 1, 1, 1, 1, 2 }, 8, IDN_DROP_BAD_OPT, "last option's length missing" },
	};

	for (size_t i = 0; i < sizeof(o) / sizeof(o[0]); i++) {
		struct pg p, ok;
		struct frame *f;
		char name[64];
		int bytes = o[i].n;

		syn_opts(&p, o[i].b, (size_t)bytes);
		/* the same flow with a well-formed SYN: what a conn entry knows */
		ok = p;
		memset(ok.buf + ok.l4_off + 20, 1, (size_t)(pg_tcph(&ok)->doff * 4 - 20));
		pg_fix_csums(&ok);
		snprintf(name, sizeof(name), "SYN options: %s", o[i].name);
		f = add(&ok, name, o[i].reason, K_MALFORMED);
		frame_set(f, &p);
	}
}

static void vlan_stacks(void)
{
	struct pg ok, p;
	struct frame *f;

	for (int tags = 3; tags <= 4; tags++) {
		char name[64];

		base_syn(&ok, 0, 2, PG_SYN);
		pg_init(&p);
		pg_eth(&p, NULL, NULL);
		for (int i = 0; i < tags; i++)
			pg_vlan(&p, ETH_P_8021Q, (uint16_t)(20 + i));
		pg_set_ethertype(&p, ETH_P_IP);
		memcpy(pg_put(&p, ok.len - ok.l3_off), ok.buf + ok.l3_off, ok.len - ok.l3_off);
		snprintf(name, sizeof(name), "%d VLAN tags", tags);
		f = add(&ok, name, IDN_DROP_VLAN, K_MALFORMED);
		frame_set(f, &p);
	}
	/* single and double tagged, bad flags */
	for (int tags = 1; tags <= 2; tags++) {
		char name[64];

		base_syn(&ok, tags == 2, tags, PG_ACK);
		p = ok;
		p.buf[p.l4_off + 13] = PG_FIN | PG_PSH | 0x20;
		pg_fix_csums(&p);
		snprintf(name, sizeof(name), "%d tag(s), XMAS", tags);
		f = add(&ok, name, IDN_DROP_BAD_FLAGS, K_MALFORMED);
		frame_set(f, &p);
	}
}

/* ---- running ----------------------------------------------------------- */

static struct run R;
static long runs, forwarded, refused;

static int is_fwd_verdict(int v)
{
	return v == IDN_V_CONN || v == IDN_V_NEW || v == IDN_V_AFFINITY ||
	       v == IDN_V_FALLBACK || v == IDN_V_OVERFLOW;
}

/* Does the output carry an outer header toward a node (IPIP / IP6IP6)? */
static int encapsulated(const struct run *r)
{
	const uint8_t *o = r->out;

	if (r->out_len < 14 + 40)
		return 0;
	if (o[12] == 0x08 && o[13] == 0x00 && (o[14] >> 4) == 4 && o[14 + 9] == IPPROTO_IPIP)
		return 1;
	return o[12] == 0x86 && o[13] == 0xdd && o[14 + 6] == IPPROTO_IPV6;
}

/* One frame through one hook in one setting; 1 when all checks held. */
static int run_frame(const struct frame *f, int hook, int strict, int with_conn)
{
	int drop = strict, want_v, ok = 1;

	if (with_conn && f->has_key) {
		struct idn_conn c = { .node = 1, .generation = 1, .cap = CAP_A };

		idn_ct_put(E.conns, &f->key, &c);
	}
	run_pkt(hook, f->pkt.buf, f->pkt.len, E.if0, &R);
	runs++;
	if (with_conn && f->has_key)
		idn_ct_del(E.conns, &f->key);
	/* the skb test run refuses a frame whose fixed L3 header is cut */
	if (hook == HOOK_TC && R.err == -EINVAL && f->reason == IDN_DROP_TRUNC_L3) {
		refused++;
		return 1;
	}
	if (R.err == 0 && (is_fwd_verdict(R.verdict) || encapsulated(&R) ||
			   R.ret == act_code(hook, A_TX) || R.ret == act_code(hook, A_REDIRECT)))
		forwarded++;
	want_v = f->kind == K_MALFORMED || drop ? IDN_V_MALFORMED : IDN_V_PASS;
	ok &= ASSERT_EQ(R.err, 0, "test run");
	ok &= ASSERT_EQ(R.ret, act_code(hook, drop ? A_DROP : A_PASS), "action as configured");
	ok &= ASSERT_EQ(R.verdict, want_v, "verdict");
	ok &= ASSERT_EQ(R.drop, f->reason, "its own drop reason");
	ok &= ASSERT_TRUE(!encapsulated(&R), "not encapsulated");
	if (!drop)
		ok &= ASSERT_TRUE(R.out_len == f->pkt.len &&
				  !memcmp(R.out, f->pkt.buf, f->pkt.len), "passed untouched");
	if (!ok) {
		printf("# frame \"%s\" (%s, %s, conn entry %s)\n", f->name, hook_name(hook),
		       strict ? "strict" : "permissive", with_conn && f->has_key ? "yes" : "no");
		pg_hexdump("frame", f->pkt.buf, f->pkt.len);
	}
	return ok;
}

int main(int argc, char **argv)
{
	char why[256] = "", name[160];
	int r;

	(void)argc;
	(void)argv;
	setvbuf(stdout, NULL, _IOLBF, 0);
	tap_plan(0);
	r = tenv_setup(why, sizeof(why));
	if (r) {
		if (r > 0)
			tap_skip(why);
		else
			TAP_FAIL("%s", why);
		tap_result("bpf_hostile setup");
		tenv_teardown();
		tap_done();
		return r > 0 ? 4 : 1;
	}
	truncations();
	flag_sets();
	udp_lengths();
	ttls();
	checksums();
	lengths();
	fragments();
	ext_headers();
	option_lists();
	vlan_stacks();
	printf("# hostile corpus: %d frames\n", n_frames);
	ASSERT_TRUE(n_frames >= 100, "at least 100 frames");
	tap_result("corpus of at least 100 hostile frames");

	for (int hook = HOOK_XDP; hook >= HOOK_TC; hook--)
		for (int strict = 0; strict <= 1; strict++)
			for (int with_conn = 0; with_conn <= 1; with_conn++) {
				int bad = 0;

				world(strict ? IDN_CFG_F_DROP_MALFORMED | IDN_CFG_F_FRAG_DROP |
					       IDN_CFG_F_EXT6_DROP : 0);
				for (int i = 0; i < n_frames && bad < 5; i++)
					bad += !run_frame(&corpus[i], hook, strict, with_conn);
				snprintf(name, sizeof(name), "%s: every frame %s, %s conn entry",
					 hook_name(hook), strict ? "dropped" : "passed untouched",
					 with_conn ? "with a" : "without a");
				tap_result(name);
			}
	printf("# %ld runs (tc refused %ld cut frames)\n", runs, refused);
	printf("# hostile_frames_forwarded %ld frames\n", forwarded);
	ASSERT_EQ(forwarded, 0, "no hostile frame encapsulated to a node");
	tap_result("hostile_frames_forwarded 0");
	tenv_teardown();
	return tap_done();
}
