// SPDX-License-Identifier: GPL-2.0
/*
 * unit_lib_parse.c - bpf/lib/parse.h compiled for userspace: every header
 * layer, every truncation point, every malformation it must catch, and
 * the TCP option walk. Also checks selftests/lib/pktgen.h itself (its
 * checksums against a known header), since every other test trusts it.
 */
#include "lib/parse.h"
#include "../lib/tap.h"
#include "../lib/pktgen.h"

IDN_ASSERT_ABI();

static const uint8_t c4[4] = { 192, 0, 2, 10 };
static const uint8_t v4[4] = { 198, 51, 100, 1 };
static uint8_t c6[16], v6[16];

static int parse(struct pg *p, struct idn_pkt *pk)
{
	return idn_parse(p->buf, p->buf + p->len, pk);
}

/* Known IPv4 header (RFC 1071 style worked example): checksum 0xb861. */
static void test_pktgen_csum_known(void)
{
	uint8_t h[20] = { 0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11,
			  0x00, 0x00, 0xc0, 0xa8, 0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7 };
	uint16_t c = pg_csum(h, 20);

	ASSERT_EQ(ntohs(c), 0xb861, "ip header checksum");
	memcpy(h + 10, &c, 2);
	ASSERT_TRUE(pg_ip4_csum_ok(h, 20, 0), "verifies");
	h[15] ^= 1;
	ASSERT_TRUE(!pg_ip4_csum_ok(h, 20, 0), "corruption detected");
}

static void test_pktgen_l4_csum(void)
{
	struct pg_flow f;
	struct pg p;

	pg_flow4(&f, "192.0.2.10", "198.51.100.1", 40000, 80, IPPROTO_TCP);
	pg_tcp_pkt(&p, &f, PG_SYN, NULL, 33);
	ASSERT_TRUE(pg_ip4_csum_ok(p.buf, p.len, 14), "v4 ip csum");
	ASSERT_TRUE(pg_l4_csum_ok(p.buf, p.len, 14), "v4 tcp csum");
	p.buf[p.len - 1] ^= 0x40;
	ASSERT_TRUE(!pg_l4_csum_ok(p.buf, p.len, 14), "v4 tcp corruption detected");

	pg_flow6(&f, "2001:db8::10", "2001:db8:1::1", 40000, 53, IPPROTO_UDP);
	pg_udp_pkt(&p, &f, "hello", 5);
	ASSERT_TRUE(pg_l4_csum_ok(p.buf, p.len, 14), "v6 udp csum");
	ASSERT_EQ(ntohs(pg_udph(&p)->len), 13, "udp len");
	ASSERT_EQ(ntohs(pg_ip6h(&p)->payload_len), 13, "ip6 payload len");
	p.buf[p.len - 3] ^= 1;
	ASSERT_TRUE(!pg_l4_csum_ok(p.buf, p.len, 14), "v6 udp corruption detected");
}

static void test_v4_tcp_fields(void)
{
	struct idn_pkt pk;
	struct pg p;

	pg_init(&p);
	pg_eth(&p, NULL, NULL);
	pg_ip4(&p, c4, v4, IPPROTO_TCP);
	pg_tcp(&p, 40000, 443, PG_SYN | PG_ACK, 0x11223344, 0x55667788);
	pg_opt_linux_syn(&p);
	pg_payload_pattern(&p, 10);
	pg_finish(&p);
	if (!ASSERT_EQ(parse(&p, &pk), IDN_DROP_NONE, "parse"))
		return;
	ASSERT_EQ(pk.flow.family, IDN_AF_INET, "family");
	ASSERT_EQ(pk.flow.proto, IPPROTO_TCP, "proto");
	ASSERT_MEM(pk.flow.saddr, c4, 4, "saddr");
	ASSERT_MEM(pk.flow.daddr, v4, 4, "daddr");
	ASSERT_EQ(pk.flow.saddr[1] | pk.flow.saddr[2] | pk.flow.saddr[3], 0, "saddr rest 0");
	ASSERT_EQ(pk.flow.daddr[1] | pk.flow.daddr[2] | pk.flow.daddr[3], 0, "daddr rest 0");
	ASSERT_EQ(ntohs(pk.flow.sport), 40000, "sport");
	ASSERT_EQ(ntohs(pk.flow.dport), 443, "dport");
	ASSERT_EQ(pk.l3_off, 14, "l3_off");
	ASSERT_EQ(pk.l4_off, 34, "l4_off");
	ASSERT_EQ(pk.l3_len, 20 + 40 + 10, "l3_len");
	ASSERT_EQ(pk.l4_len, 40 + 10, "l4_len");
	ASSERT_EQ(pk.tcp_flags, PG_SYN | PG_ACK, "flags");
	ASSERT_EQ(pk.tcp_hlen, 40, "tcp_hlen");
	ASSERT_EQ(pk.seq, 0x11223344, "seq");
	ASSERT_EQ(pk.ack_seq, 0x55667788, "ack");
	ASSERT_EQ(pk.has_ports, 1, "has_ports");
	ASSERT_EQ(pk.frag, 0, "frag");
}

static void test_v6_udp_fields(void)
{
	struct idn_pkt pk;
	struct pg p;

	pg_init(&p);
	pg_eth(&p, NULL, NULL);
	pg_ip6(&p, c6, v6, IPPROTO_UDP);
	pg_udp(&p, 5353, 53);
	pg_payload_pattern(&p, 7);
	pg_finish(&p);
	if (!ASSERT_EQ(parse(&p, &pk), IDN_DROP_NONE, "parse"))
		return;
	ASSERT_EQ(pk.flow.family, IDN_AF_INET6, "family");
	ASSERT_EQ(pk.flow.proto, IPPROTO_UDP, "proto");
	ASSERT_MEM(pk.flow.saddr, c6, 16, "saddr");
	ASSERT_MEM(pk.flow.daddr, v6, 16, "daddr");
	ASSERT_EQ(ntohs(pk.flow.sport), 5353, "sport");
	ASSERT_EQ(ntohs(pk.flow.dport), 53, "dport");
	ASSERT_EQ(pk.l4_off, 54, "l4_off");
	ASSERT_EQ(pk.l3_len, 40 + 8 + 7, "l3_len");
	ASSERT_EQ(pk.l4_len, 15, "l4_len");
	ASSERT_EQ(pk.has_ports, 1, "has_ports");
	ASSERT_EQ(pk.tcp_hlen, 0, "no tcp");
}

static void test_vlan(void)
{
	struct idn_pkt pk;
	struct pg p;

	/* one 802.1Q tag */
	pg_init(&p);
	pg_eth(&p, NULL, NULL);
	pg_vlan(&p, ETH_P_8021Q, 100);
	pg_ip4(&p, c4, v4, IPPROTO_TCP);
	pg_tcp(&p, 1, 2, PG_SYN, 1, 0);
	pg_finish(&p);
	ASSERT_EQ(parse(&p, &pk), IDN_DROP_NONE, "1 tag");
	ASSERT_EQ(pk.l3_off, 18, "1 tag l3_off");
	ASSERT_EQ(pk.flow.family, IDN_AF_INET, "1 tag family");
	ASSERT_EQ(pk.l4_off, 38, "1 tag l4_off");

	/* QinQ: 802.1ad outer + 802.1Q inner */
	pg_init(&p);
	pg_eth(&p, NULL, NULL);
	pg_vlan(&p, ETH_P_8021AD, 10);
	pg_vlan(&p, ETH_P_8021Q, 20);
	pg_ip6(&p, c6, v6, IPPROTO_TCP);
	pg_tcp(&p, 1, 2, PG_SYN, 1, 0);
	pg_finish(&p);
	ASSERT_EQ(parse(&p, &pk), IDN_DROP_NONE, "2 tags");
	ASSERT_EQ(pk.l3_off, 22, "2 tags l3_off");
	ASSERT_EQ(pk.flow.family, IDN_AF_INET6, "2 tags family");
	ASSERT_EQ(ntohs(pk.flow.dport), 2, "2 tags dport");

	/* three tags: more than a router of IDN traffic meets; refused, counted */
	pg_init(&p);
	pg_eth(&p, NULL, NULL);
	pg_vlan(&p, ETH_P_8021AD, 10);
	pg_vlan(&p, ETH_P_8021Q, 20);
	pg_vlan(&p, ETH_P_8021Q, 30);
	pg_ip4(&p, c4, v4, IPPROTO_TCP);
	pg_tcp(&p, 1, 2, PG_SYN, 1, 0);
	pg_finish(&p);
	ASSERT_EQ(parse(&p, &pk), IDN_DROP_VLAN, "3 tags");

	/* truncated inside the tag */
	pg_init(&p);
	pg_eth(&p, NULL, NULL);
	pg_vlan(&p, ETH_P_8021Q, 100);
	pg_ip4(&p, c4, v4, IPPROTO_TCP);
	pg_finish(&p);
	for (size_t n = 14; n < 18; n++) {
		struct pg q = p;

		pg_truncate(&q, n);
		ASSERT_EQ(parse(&q, &pk), IDN_DROP_TRUNC_L2, "tag truncated");
	}
}

static void test_not_ip(void)
{
	struct idn_pkt pk;
	struct pg p;

	pg_init(&p);
	pg_eth(&p, NULL, NULL);
	pg_set_ethertype(&p, ETH_P_ARP);
	pg_payload_pattern(&p, 28);
	ASSERT_EQ(parse(&p, &pk), IDN_DROP_NONE, "arp");
	ASSERT_EQ(pk.flow.family, 0, "arp family");
	ASSERT_EQ(pk.has_ports, 0, "arp ports");
}

/* Every cut of a valid TCP/IPv4 SYN reports the layer it falls in. */
static void test_truncation_every_byte_v4(void)
{
	struct idn_tcpopt o;
	struct idn_pkt pk;
	struct pg_flow f;
	struct pg p;

	pg_flow4(&f, "192.0.2.10", "198.51.100.1", 40000, 80, IPPROTO_TCP);
	pg_idnopt_fill(&o, 1, 3, 0, IDN_SIZE_NONE, IDN_CAP(7, 1), 42);
	pg_tcp_pkt(&p, &f, PG_SYN, &o, 0);
	for (size_t n = 0; n < p.len; n++) {
		struct pg q = p;
		int want = n < 14 ? IDN_DROP_TRUNC_L2 : IDN_DROP_TRUNC_L3;

		/* tot_len covers the whole IP packet: any cut is short L3 */
		pg_truncate(&q, n);
		if (!ASSERT_EQ(parse(&q, &pk), want, "cut")) {
			printf("# cut at %zu\n", n);
			return;
		}
	}
	ASSERT_EQ(parse(&p, &pk), IDN_DROP_NONE, "whole");
}

/*
 * Cut the frame and fix tot_len to match, so the IP layer is consistent
 * and the transport layer is what is short.
 */
static void test_truncation_l4_consistent(void)
{
	struct idn_pkt pk;
	struct pg_flow f;
	struct pg p;

	for (int fam = 4; fam <= 6; fam += 2) {
		for (int proto = 0; proto < 2; proto++) {
			uint8_t ip = proto ? IPPROTO_UDP : IPPROTO_TCP;
			size_t hl = proto ? 8 : 20, l3 = fam == 4 ? 20 : 40;

			if (fam == 4)
				pg_flow4(&f, "192.0.2.10", "198.51.100.1", 1, 2, ip);
			else
				pg_flow6(&f, "2001:db8::10", "2001:db8:1::1", 1, 2, ip);
			for (size_t cut = 0; cut < hl; cut++) {
				pg_begin(&p, &f);
				if (proto)
					pg_udp(&p, 1, 2);
				else
					pg_tcp(&p, 1, 2, PG_SYN, 1, 0);
				pg_finish(&p);
				pg_truncate(&p, 14 + l3 + cut);
				pg_finish(&p);	/* lengths now match the cut */
				if (!ASSERT_EQ(parse(&p, &pk), IDN_DROP_TRUNC_L4, "l4 cut")) {
					printf("# family %d proto %u cut %zu\n", fam, ip, cut);
					return;
				}
			}
		}
	}
}

/* Frame longer than the IP length (Ethernet padding): buffer slack ok. */
static void test_trailing_padding(void)
{
	struct idn_pkt pk;
	struct pg_flow f;
	struct pg p;

	pg_flow4(&f, "192.0.2.10", "198.51.100.1", 1, 2, IPPROTO_TCP);
	pg_tcp_pkt(&p, &f, PG_ACK, NULL, 0);
	pg_payload(&p, NULL, 6);	/* 6 pad bytes after finish */
	ASSERT_EQ(parse(&p, &pk), IDN_DROP_NONE, "padded");
	ASSERT_EQ(pk.l3_len, 40, "l3_len from tot_len");
	ASSERT_EQ(pk.l4_len, 20, "l4_len");
}

/* TCP segment whose IP length is short of the 20-byte header, though
 * the frame holds more bytes. */
static void test_l4_len_short(void)
{
	struct idn_pkt pk;
	struct pg_flow f;
	struct pg p;

	pg_flow4(&f, "192.0.2.10", "198.51.100.1", 1, 2, IPPROTO_TCP);
	pg_tcp_pkt(&p, &f, PG_SYN, NULL, 0);
	pg_ip4h(&p)->tot_len = htons(20 + 19);
	pg_fix_csums(&p);
	ASSERT_EQ(parse(&p, &pk), IDN_DROP_TRUNC_L4, "tcp l4_len 19");
	pg_flow6(&f, "2001:db8::10", "2001:db8:1::1", 1, 2, IPPROTO_UDP);
	pg_udp_pkt(&p, &f, NULL, 0);
	pg_ip6h(&p)->payload_len = htons(7);
	ASSERT_EQ(parse(&p, &pk), IDN_DROP_TRUNC_L4, "udp l4_len 7");
}

static void test_bad_ip4(void)
{
	struct idn_pkt pk;
	struct pg_flow f;
	struct pg p, q;

	pg_flow4(&f, "192.0.2.10", "198.51.100.1", 1, 2, IPPROTO_TCP);
	pg_tcp_pkt(&p, &f, PG_SYN, NULL, 0);
	for (int ihl = 0; ihl < 5; ihl++) {
		q = p;
		pg_ip4h(&q)->ihl = ihl;
		ASSERT_EQ(parse(&q, &pk), IDN_DROP_BAD_IP4, "ihl < 5");
	}
	for (int v = 0; v < 16; v++) {
		if (v == 4)
			continue;
		q = p;
		pg_ip4h(&q)->version = v;
		ASSERT_EQ(parse(&q, &pk), IDN_DROP_BAD_IP4, "version");
	}
	q = p;
	pg_ip4h(&q)->tot_len = htons(19);
	ASSERT_EQ(parse(&q, &pk), IDN_DROP_BAD_IP4, "tot_len < ihl");
	q = p;
	pg_ip4h(&q)->ihl = 7;
	pg_ip4h(&q)->tot_len = htons(24);
	ASSERT_EQ(parse(&q, &pk), IDN_DROP_BAD_IP4, "tot_len < ihl 28");
	q = p;
	pg_ip4h(&q)->tot_len = htons(q.len - 14 + 1);
	ASSERT_EQ(parse(&q, &pk), IDN_DROP_TRUNC_L3, "tot_len past frame");
	q = p;
	pg_ip4h(&q)->ihl = 15;	/* 60 > 40-byte packet */
	ASSERT_EQ(parse(&q, &pk), IDN_DROP_BAD_IP4, "ihl past tot_len");
}

static void test_ip4_options(void)
{
	struct idn_pkt pk;
	struct pg p;

	pg_init(&p);
	pg_eth(&p, NULL, NULL);
	pg_ip4(&p, c4, v4, IPPROTO_TCP);
	pg_ip4_opts(&p, 8);
	pg_tcp(&p, 7, 8, PG_SYN, 1, 0);
	pg_finish(&p);
	ASSERT_EQ(parse(&p, &pk), IDN_DROP_NONE, "ihl 7");
	ASSERT_EQ(pk.l4_off, 14 + 28, "l4_off after options");
	ASSERT_EQ(ntohs(pk.flow.dport), 8, "dport");
	ASSERT_EQ(pk.l4_len, 20, "l4_len");
}

static void test_ip4_fragments(void)
{
	struct idn_pkt pk;
	struct pg_flow f;
	static struct pg p, q;
	uint16_t fo[] = { 0x2000 /* MF */, 0x0001 /* offset 8 */, 0x1fff, 0x2010 };

	pg_flow4(&f, "192.0.2.10", "198.51.100.1", 1, 2, IPPROTO_TCP);
	pg_tcp_pkt(&p, &f, PG_SYN, NULL, 0);
	for (size_t i = 0; i < sizeof(fo) / sizeof(fo[0]); i++) {
		q = p;
		pg_ip4h(&q)->frag_off = htons(fo[i]);
		pg_fix_csums(&q);
		ASSERT_EQ(parse(&q, &pk), IDN_DROP_NONE, "fragment parses");
		ASSERT_EQ(pk.frag, 1, "frag set");
		ASSERT_EQ(pk.has_ports, 0, "no ports from a fragment");
		ASSERT_EQ(pk.flow.sport | pk.flow.dport, 0, "ports zero");
	}
	q = p;
	pg_ip4h(&q)->frag_off = htons(0x4000);	/* DF only */
	pg_fix_csums(&q);
	ASSERT_EQ(parse(&q, &pk), IDN_DROP_NONE, "DF");
	ASSERT_EQ(pk.frag, 0, "DF is not a fragment");
	ASSERT_EQ(pk.has_ports, 1, "DF has ports");
}

static void test_bad_ip6(void)
{
	struct idn_pkt pk;
	struct pg_flow f;
	struct pg p, q;

	pg_flow6(&f, "2001:db8::10", "2001:db8:1::1", 1, 2, IPPROTO_TCP);
	pg_tcp_pkt(&p, &f, PG_SYN, NULL, 0);
	for (int v = 0; v < 16; v++) {
		if (v == 6)
			continue;
		q = p;
		pg_ip6h(&q)->version = v;
		ASSERT_EQ(parse(&q, &pk), IDN_DROP_BAD_IP6, "version");
	}
	q = p;
	pg_ip6h(&q)->payload_len = htons(q.len - 54 + 1);
	ASSERT_EQ(parse(&q, &pk), IDN_DROP_TRUNC_L3, "payload past frame");
	for (size_t n = 14; n < 54; n++) {
		q = p;
		pg_truncate(&q, n);
		ASSERT_EQ(parse(&q, &pk), IDN_DROP_TRUNC_L3, "short v6 header");
	}
	/* unknown next header: parsed, no ports */
	q = p;
	pg_ip6h(&q)->nexthdr = 0;	/* hop-by-hop */
	ASSERT_EQ(parse(&q, &pk), IDN_DROP_NONE, "ext header");
	ASSERT_EQ(pk.has_ports, 0, "ext header: no ports");
}

static void test_bad_doff(void)
{
	struct idn_pkt pk;
	struct pg_flow f;
	struct pg p, q;

	pg_flow4(&f, "192.0.2.10", "198.51.100.1", 1, 2, IPPROTO_TCP);
	pg_tcp_pkt(&p, &f, PG_SYN, NULL, 0);	/* MSS option: doff 6, 24 bytes */
	for (int d = 0; d < 5; d++) {
		q = p;
		pg_tcph(&q)->doff = d;
		ASSERT_EQ(parse(&q, &pk), IDN_DROP_BAD_TCP, "doff < 5");
	}
	for (int d = 7; d < 16; d++) {
		q = p;
		pg_tcph(&q)->doff = d;
		ASSERT_EQ(parse(&q, &pk), IDN_DROP_BAD_TCP, "doff past segment");
	}
	q = p;
	pg_tcph(&q)->doff = 5;
	ASSERT_EQ(parse(&q, &pk), IDN_DROP_NONE, "doff 5 with payload");
	ASSERT_EQ(pk.tcp_hlen, 20, "hlen 20");
}

/* ---- option walk ---- */

/* Walk the options of a parsed SYN; *got receives the option found. */
static struct idn_tcpopt got;

static int find(struct pg *p, uint32_t *unused)
{
	struct idn_pkt pk;
	int r = parse(p, &pk);

	if (r != IDN_DROP_NONE)
		return 1000 + r;
	memset(&got, 0xee, sizeof(got));
	return idn_tcpopt_find(p->buf, p->buf + p->len, &pk, &got);
}

static void syn_with(struct pg *p, const void *opts, size_t n)
{
	pg_init(p);
	pg_eth(p, NULL, NULL);
	pg_ip4(p, c4, v4, IPPROTO_TCP);
	pg_tcp(p, 40000, 80, PG_SYN, 1, 0);
	if (n)
		pg_opt_raw(p, opts, n);
	pg_finish(p);
}

static void test_opt_walk(void)
{
	struct idn_tcpopt o;
	uint32_t off;
	struct pg p;

	pg_idnopt_fill(&o, 1, 9, 0x21, 4, IDN_CAP(0xa1b2c3, 7), 0x1122334455667788ULL);

	syn_with(&p, NULL, 0);
	ASSERT_EQ(find(&p, &off), 0, "no options");

	pg_init(&p);
	pg_eth(&p, NULL, NULL);
	pg_ip4(&p, c4, v4, IPPROTO_TCP);
	pg_tcp(&p, 1, 2, PG_SYN, 1, 0);
	pg_opt_linux_syn(&p);
	pg_finish(&p);
	ASSERT_EQ(find(&p, &off), 0, "linux syn options only");

	syn_with(&p, &o, sizeof(o));
	ASSERT_EQ(find(&p, &off), 1, "idn option alone");
	ASSERT_MEM(&got, &o, sizeof(o), "offset");

	/* behind MSS, SACK-ok, NOP, WS */
	pg_init(&p);
	pg_eth(&p, NULL, NULL);
	pg_ip4(&p, c4, v4, IPPROTO_TCP);
	pg_tcp(&p, 1, 2, PG_SYN, 1, 0);
	pg_opt_mss(&p, 1400);
	pg_opt_sackok(&p);
	pg_opt_nop(&p);
	pg_opt_ws(&p, 7);
	pg_opt_idn(&p, &o);
	pg_finish(&p);
	ASSERT_EQ(find(&p, &off), 1, "after other options");
	ASSERT_MEM(&got, &o, sizeof(o), "offset after 10 bytes");

	/* behind timestamps: 40 bytes total, ends at the header end */
	pg_init(&p);
	pg_eth(&p, NULL, NULL);
	pg_ip4(&p, c4, v4, IPPROTO_TCP);
	pg_tcp(&p, 1, 2, PG_SYN, 1, 0);
	pg_opt_mss(&p, 1400);
	pg_opt_sackok(&p);
	pg_opt_ts(&p, 1, 0);
	pg_opt_nop(&p);
	pg_opt_nop(&p);
	pg_opt_idn(&p, &o);
	pg_finish(&p);
	ASSERT_EQ(pg_tcph(&p)->doff, 15, "full 60-byte header");
	ASSERT_EQ(find(&p, &off), 1, "last option of a full header");
	ASSERT_MEM(&got, &o, sizeof(o), "offset after 18 bytes");

	/* the latest the option can start: byte 20 of 40 */
	{
		uint8_t b[40];

		memset(b, 1, 20);
		memcpy(b + 20, &o, sizeof(o));
		syn_with(&p, b, sizeof(b));
		ASSERT_EQ(find(&p, &off), 1, "option at byte 20");
		ASSERT_MEM(&got, &o, sizeof(o), "option at byte 20 content");
	}
	/* EOL ends the list before the option */
	{
		uint8_t b[24] = { 0 };

		memcpy(b + 4, &o, sizeof(o));
		syn_with(&p, b, sizeof(b));
		ASSERT_EQ(find(&p, &off), 0, "EOL hides later options");
	}
	/* 40 NOPs: walk ends without finding */
	{
		uint8_t b[40];

		memset(b, 1, sizeof(b));
		syn_with(&p, b, sizeof(b));
		ASSERT_EQ(find(&p, &off), 0, "40 NOPs");
	}
	/* NOPs then the option */
	{
		uint8_t b[24];

		memset(b, 1, 4);
		memcpy(b + 4, &o, sizeof(o));
		syn_with(&p, b, sizeof(b));
		ASSERT_EQ(find(&p, &off), 1, "NOPs then option");
		ASSERT_MEM(&got, &o, sizeof(o), "offset after NOPs");
	}
	/* another experiment's kind 253 option is skipped */
	{
		uint8_t b[8 + 20] = { 253, 8, 0x12, 0x34, 0, 0, 0, 0 };

		memcpy(b + 8, &o, sizeof(o));
		syn_with(&p, b, sizeof(b));
		ASSERT_EQ(find(&p, &off), 1, "foreign ExID skipped");
		ASSERT_MEM(&got, &o, sizeof(o), "found after the foreign one");
		syn_with(&p, b, 8);
		ASSERT_EQ(find(&p, &off), 0, "foreign ExID alone");
	}
	/* kind 254 (the other experimental kind) with our ExID: not ours */
	{
		struct idn_tcpopt x = o;

		x.kind = 254;
		syn_with(&p, &x, sizeof(x));
		ASSERT_EQ(find(&p, &off), 0, "kind 254 not ours");
	}
	/* kind 253 with length 2 or 3 (no room for an ExID): skipped */
	{
		uint8_t b[4] = { 253, 2, 1, 1 };

		syn_with(&p, b, 4);
		ASSERT_EQ(find(&p, &off), 0, "253 len 2");
		b[1] = 3;
		syn_with(&p, b, 4);
		ASSERT_EQ(find(&p, &off), 0, "253 len 3");
	}
}

static void test_opt_malformed(void)
{
	struct idn_tcpopt o;
	uint32_t off;
	struct pg p;

	pg_idnopt_fill(&o, 1, 0, 0, IDN_SIZE_NONE, 0, 0);
	{
		uint8_t b[4] = { 2, 0, 1, 1 };	/* length 0 */

		syn_with(&p, b, 4);
		ASSERT_EQ(find(&p, &off), -IDN_DROP_BAD_OPT, "len 0");
		b[1] = 1;
		syn_with(&p, b, 4);
		ASSERT_EQ(find(&p, &off), -IDN_DROP_BAD_OPT, "len 1");
		b[1] = 5;			/* past the 4-byte option area */
		syn_with(&p, b, 4);
		ASSERT_EQ(find(&p, &off), -IDN_DROP_BAD_OPT, "len past header");
	}
	{
		uint8_t b[4] = { 1, 1, 1, 8 };	/* kind at the last byte, no length */

		syn_with(&p, b, 4);
		ASSERT_EQ(find(&p, &off), -IDN_DROP_BAD_OPT, "length byte missing");
	}
	/* IDN option cut: its length runs past the header end */
	{
		syn_with(&p, &o, 16);
		ASSERT_EQ(find(&p, &off), -IDN_DROP_BAD_OPT, "idn option past header");
	}
	/* IDN option with a wrong length byte */
	for (int len = 4; len <= 24; len += 4) {
		uint8_t b[24] = { 0 };

		if (len == IDN_TCPOPT_LEN)
			continue;
		memcpy(b, &o, sizeof(o));
		b[1] = (uint8_t)len;
		syn_with(&p, b, sizeof(b));
		if (!ASSERT_EQ(find(&p, &off), -IDN_DROP_BAD_OPT, "idn len != 20"))
			printf("# len %d\n", len);
	}
	/* an option running past the header hides nothing after the header */
	{
		uint8_t b[8] = { 8, 10, 0, 0, 0, 0, 0, 0 };

		syn_with(&p, b, 8);
		ASSERT_EQ(find(&p, &off), -IDN_DROP_BAD_OPT, "ts past header");
	}
}

/* Strict admission: every TCP flag set, judged against the documented rule. */
static void test_tcp_flag_sets(void)
{
	static const uint8_t valid[] = { 0x02, 0x22, 0x12, 0x04, 0x14, 0x11, 0x31, 0x10, 0x30 };
	struct idn_pkt pk;
	struct pg_flow f;
	struct pg p;
	int bad = 0;

	pg_flow4(&f, "192.0.2.10", "198.51.100.1", 1, 2, IPPROTO_TCP);
	for (int fl = 0; fl < 256; fl++) {
		int want = IDN_DROP_BAD_FLAGS, got;

		for (size_t i = 0; i < sizeof(valid); i++)
			if ((fl & IDN_TCP_FLAG_MASK) == valid[i])
				want = IDN_DROP_NONE;
		pg_tcp_pkt(&p, &f, (uint8_t)fl, NULL, 0);
		got = parse(&p, &pk);
		if (got != want && bad++ < 5)
			printf("# flags 0x%02x: %d, want %d\n", fl, got, want);
	}
	ASSERT_EQ(bad, 0, "every flag set as the rule says");
	/* the named ones */
	pg_tcp_pkt(&p, &f, PG_SYN | PG_FIN, NULL, 0);
	ASSERT_EQ(parse(&p, &pk), IDN_DROP_BAD_FLAGS, "SYN+FIN");
	pg_tcp_pkt(&p, &f, PG_SYN | PG_RST, NULL, 0);
	ASSERT_EQ(parse(&p, &pk), IDN_DROP_BAD_FLAGS, "SYN+RST");
	pg_tcp_pkt(&p, &f, PG_FIN | PG_PSH | 0x20, NULL, 0);
	ASSERT_EQ(parse(&p, &pk), IDN_DROP_BAD_FLAGS, "XMAS");
	pg_tcp_pkt(&p, &f, 0, NULL, 0);
	ASSERT_EQ(parse(&p, &pk), IDN_DROP_BAD_FLAGS, "NULL");
	pg_tcp_pkt(&p, &f, PG_FIN, NULL, 0);
	ASSERT_EQ(parse(&p, &pk), IDN_DROP_BAD_FLAGS, "FIN without ACK");
	pg_tcp_pkt(&p, &f, PG_SYN | 0xc0, NULL, 0);
	ASSERT_EQ(parse(&p, &pk), IDN_DROP_NONE, "ECN-setup SYN");
	pg_tcp_pkt(&p, &f, PG_FIN | PG_ACK | PG_PSH, NULL, 10);
	ASSERT_EQ(parse(&p, &pk), IDN_DROP_NONE, "FIN+PSH+ACK");
}

static void test_udp_length(void)
{
	struct idn_pkt pk;
	struct pg_flow f;
	static struct pg p, q;
	static const struct { int len; int want; } c[] = {
		{ 0, IDN_DROP_BAD_UDP }, { 7, IDN_DROP_BAD_UDP }, { 8, IDN_DROP_NONE },
		{ 12, IDN_DROP_NONE }, { 13, IDN_DROP_BAD_UDP }, { 0xffff, IDN_DROP_BAD_UDP },
	};

	for (int fam = 4; fam <= 6; fam += 2) {
		if (fam == 4)
			pg_flow4(&f, "192.0.2.10", "198.51.100.1", 1, 53, IPPROTO_UDP);
		else
			pg_flow6(&f, "2001:db8::10", "2001:db8:1::1", 1, 53, IPPROTO_UDP);
		pg_udp_pkt(&p, &f, "abcd", 4);	/* 12-byte datagram */
		for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
			q = p;
			pg_udph(&q)->len = htons((uint16_t)c[i].len);
			pg_fix_csums(&q);
			if (!ASSERT_EQ(parse(&q, &pk), c[i].want, "udp length"))
				printf("# family %d length %d\n", fam, c[i].len);
		}
	}
}

static void test_ttl_and_csum(void)
{
	struct idn_pkt pk;
	struct pg_flow f;
	struct pg p, q;

	pg_flow4(&f, "192.0.2.10", "198.51.100.1", 1, 2, IPPROTO_TCP);
	pg_tcp_pkt(&p, &f, PG_SYN, NULL, 0);
	q = p;
	pg_ip4h(&q)->ttl = 0;
	pg_fix_csums(&q);
	ASSERT_EQ(parse(&q, &pk), IDN_DROP_TTL, "ttl 0");
	q = p;
	pg_ip4h(&q)->ttl = 1;
	pg_fix_csums(&q);
	ASSERT_EQ(parse(&q, &pk), IDN_DROP_NONE, "ttl 1");
	/* every bit of the header flipped without fixing the checksum */
	for (int bit = 0; bit < 160; bit++) {
		int r;

		q = p;
		pg_flip_bit(&q, 14 * 8 + bit);
		r = parse(&q, &pk);
		if (!ASSERT_TRUE(r != IDN_DROP_NONE, "corrupt header refused"))
			printf("# bit %d\n", bit);
	}
	q = p;
	pg_ip4h(&q)->check ^= htons(1);
	ASSERT_EQ(parse(&q, &pk), IDN_DROP_IP4_CSUM, "checksum off by one");
	/* with options: the options are covered too */
	pg_begin(&q, &f);
	pg_ip4_opts(&q, 8);
	pg_tcp(&q, 1, 2, PG_SYN, 1, 0);
	pg_finish(&q);
	ASSERT_EQ(parse(&q, &pk), IDN_DROP_NONE, "options, good checksum");
	q.buf[14 + 21] ^= 0x40;
	ASSERT_EQ(parse(&q, &pk), IDN_DROP_IP4_CSUM, "option byte changed");

	pg_flow6(&f, "2001:db8::10", "2001:db8:1::1", 1, 2, IPPROTO_TCP);
	pg_tcp_pkt(&p, &f, PG_SYN, NULL, 0);
	pg_ip6h(&p)->hop_limit = 0;
	ASSERT_EQ(parse(&p, &pk), IDN_DROP_TTL, "hop limit 0");
}

/* An IPv6 packet with extension headers (each 8 bytes) before TCP. */
static void v6_ext(struct pg *p, const uint8_t *nh, int n, uint8_t last_byte3)
{
	struct pg_flow f;

	pg_flow6(&f, "2001:db8::10", "2001:db8:1::1", 1, 80, IPPROTO_TCP);
	pg_begin(p, &f);
	pg_ip6h(p)->nexthdr = nh[0];
	for (int i = 0; i < n; i++) {
		uint8_t *h = pg_put(p, 8);

		h[0] = i + 1 < n ? nh[i + 1] : IPPROTO_TCP;
		h[1] = nh[i] == IDN_NH_AH ? 0 : 0;	/* AH: (0 + 2) * 4 = 8 bytes */
		h[3] = i + 1 == n ? last_byte3 : 0;
	}
	p->proto = IPPROTO_TCP;
	pg_tcp(p, 1, 80, PG_SYN, 1, 0);
	pg_finish(p);
}

static void test_ip6_ext(void)
{
	static const uint8_t chain[] = { IDN_NH_HOPOPTS, IDN_NH_DSTOPTS, IDN_NH_ROUTING,
					 IDN_NH_AH };
	struct idn_pkt pk;
	struct pg p;
	uint8_t nh[6];

	for (int n = 1; n <= 4; n++) {
		v6_ext(&p, chain, n, 0);
		if (!ASSERT_EQ(parse(&p, &pk), IDN_DROP_NONE, "chain parses"))
			continue;
		ASSERT_EQ(pk.ext6, IDN_EXT6_WALKED, "walked");
		ASSERT_EQ(pk.l4_off, 14 + 40 + 8 * n, "l4 after the chain");
		ASSERT_EQ(pk.flow.proto, IPPROTO_TCP, "tcp found");
		ASSERT_EQ(pk.has_ports, 1, "ports");
		ASSERT_EQ(ntohs(pk.flow.dport), 80, "dport");
		ASSERT_EQ(pk.l4_len, 20, "l4_len");
	}
	/* five headers: more than followed */
	memset(nh, IDN_NH_DSTOPTS, sizeof(nh));
	v6_ext(&p, nh, 5, 0);
	ASSERT_EQ(parse(&p, &pk), IDN_DROP_NONE, "5 headers");
	ASSERT_EQ(pk.ext6, IDN_EXT6_OPAQUE, "5 headers opaque");
	ASSERT_EQ(pk.has_ports, 0, "5 headers: no ports");
	/* a routing header with segments left */
	nh[0] = IDN_NH_ROUTING;
	v6_ext(&p, nh, 1, 2);
	ASSERT_EQ(parse(&p, &pk), IDN_DROP_NONE, "routing, segments left");
	ASSERT_EQ(pk.ext6, IDN_EXT6_OPAQUE, "still routing: opaque");
	/* a fragment header */
	nh[0] = IDN_NH_FRAGMENT;
	v6_ext(&p, nh, 1, 0);
	ASSERT_EQ(parse(&p, &pk), IDN_DROP_NONE, "fragment header");
	ASSERT_EQ(pk.frag, 1, "fragment");
	ASSERT_EQ(pk.has_ports, 0, "fragment: no ports");
	/* ESP: not followed */
	nh[0] = IDN_NH_ESP;
	v6_ext(&p, nh, 1, 0);
	ASSERT_EQ(parse(&p, &pk), IDN_DROP_NONE, "esp");
	ASSERT_EQ(pk.ext6, IDN_EXT6_OPAQUE, "esp opaque");
	/* a header longer than the payload */
	nh[0] = IDN_NH_HOPOPTS;
	v6_ext(&p, nh, 1, 0);
	p.buf[14 + 40 + 1] = 10;	/* 88 bytes */
	ASSERT_EQ(parse(&p, &pk), IDN_DROP_BAD_IP6, "header past payload");
	/* cut inside the header */
	v6_ext(&p, nh, 1, 0);
	pg_ip6h(&p)->payload_len = htons(4);
	pg_truncate(&p, 14 + 40 + 4);
	ASSERT_EQ(parse(&p, &pk), IDN_DROP_BAD_IP6, "header past short payload");
}

int main(void)
{
	inet_pton(AF_INET6, "2001:db8::10", c6);
	inet_pton(AF_INET6, "2001:db8:1::1", v6);
	tap_plan(0);
	TAP_RUN(test_pktgen_csum_known);
	TAP_RUN(test_pktgen_l4_csum);
	TAP_RUN(test_v4_tcp_fields);
	TAP_RUN(test_v6_udp_fields);
	TAP_RUN(test_vlan);
	TAP_RUN(test_not_ip);
	TAP_RUN(test_truncation_every_byte_v4);
	TAP_RUN(test_truncation_l4_consistent);
	TAP_RUN(test_trailing_padding);
	TAP_RUN(test_l4_len_short);
	TAP_RUN(test_bad_ip4);
	TAP_RUN(test_ip4_options);
	TAP_RUN(test_ip4_fragments);
	TAP_RUN(test_bad_ip6);
	TAP_RUN(test_bad_doff);
	TAP_RUN(test_opt_walk);
	TAP_RUN(test_opt_malformed);
	TAP_RUN(test_tcp_flag_sets);
	TAP_RUN(test_udp_length);
	TAP_RUN(test_ttl_and_csum);
	TAP_RUN(test_ip6_ext);
	return tap_done();
}
