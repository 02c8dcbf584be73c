/* SPDX-License-Identifier: GPL-2.0 */
/*
 * pktgen.h - packet builder for userspace tests (unit, BPF_PROG_TEST_RUN,
 * differential): Ethernet (+ VLAN tags), IPv4/IPv6, TCP (flags, seq,
 * options: MSS, SACK-permitted, timestamps, window scale, the IDN
 * option), UDP, payload; lengths and checksums filled in by pg_finish().
 * Also: the IDN IPv6 descriptor address, the IDN TCP option, telemetry
 * datagrams, checksum verification of a built or received packet, and
 * helpers to truncate or corrupt a packet (with or without re-fixing the
 * checksums).
 *
 * Usage:
 *	struct pg p;
 *	pg_init(&p);
 *	pg_eth(&p, NULL, NULL);
 *	pg_ip4(&p, src, dst, IPPROTO_TCP);
 *	pg_tcp(&p, 40000, 80, IDN_TCP_SYN, 1, 0);
 *	pg_opt_mss(&p, 1460);
 *	pg_opt_idn(&p, &opt);
 *	pg_finish(&p);		// p.buf[0 .. p.len)
 *
 * Header only, no allocation; everything fits in PG_MAX bytes. Not for
 * BPF. Addresses are passed as byte arrays in network order.
 */
#ifndef __IDN_SELFTESTS_PKTGEN_H
#define __IDN_SELFTESTS_PKTGEN_H

#include <stdint.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <linux/types.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/tcp.h>
#include <linux/udp.h>
#include <linux/in.h>
#include <linux/idn.h>
#include "lib/tele.h"

#define PG_MAX		2048

#define PG_FIN		0x01
#define PG_SYN		0x02
#define PG_RST		0x04
#define PG_PSH		0x08
#define PG_ACK		0x10

struct pg {
	uint8_t buf[PG_MAX];
	size_t len;
	int l3_off;	/* -1 until an IP header was added */
	int l4_off;	/* -1 until a TCP/UDP header was added */
	int opt_len;	/* TCP option bytes written so far */
	int pay_off;	/* -1 until payload/finish */
	int family;	/* 4 or 6 */
	uint8_t proto;
	int vlans;
	int eth_proto_off; /* offset of the last ethertype field */
	int no_fix_len;	/* pg_finish leaves IP/UDP lengths alone */
};

static const uint8_t pg_mac_src[6] = { 0x02, 0, 0, 0, 0, 0x01 };
static const uint8_t pg_mac_dst[6] = { 0x02, 0, 0, 0, 0, 0x02 };

static inline void pg_init(struct pg *p)
{
	memset(p, 0, sizeof(*p));
	p->l3_off = p->l4_off = p->pay_off = -1;
	p->eth_proto_off = -1;
}

static inline void *pg_put(struct pg *p, size_t n)
{
	void *r;

	if (p->len + n > PG_MAX)
		abort();
	r = p->buf + p->len;
	memset(r, 0, n);
	p->len += n;
	return r;
}

static inline void pg_eth(struct pg *p, const uint8_t *src, const uint8_t *dst)
{
	struct ethhdr *eth = pg_put(p, sizeof(*eth));

	memcpy(eth->h_source, src ? src : pg_mac_src, 6);
	memcpy(eth->h_dest, dst ? dst : pg_mac_dst, 6);
	p->eth_proto_off = offsetof(struct ethhdr, h_proto);
}

/* Add a VLAN tag (tpid ETH_P_8021Q or ETH_P_8021AD) after the MACs. */
static inline void pg_vlan(struct pg *p, uint16_t tpid, uint16_t tci)
{
	uint8_t *v = pg_put(p, 4);
	uint16_t t = htons(tpid);

	/* the previous ethertype slot carries the tpid */
	memcpy(p->buf + p->eth_proto_off, &t, 2);
	t = htons(tci);
	memcpy(v, &t, 2);
	p->eth_proto_off = (int)(v + 2 - p->buf);
	p->vlans++;
}

static inline void pg_set_ethertype(struct pg *p, uint16_t proto)
{
	uint16_t t = htons(proto);

	memcpy(p->buf + p->eth_proto_off, &t, 2);
}

static inline struct iphdr *pg_ip4h(struct pg *p)
{
	return (struct iphdr *)(p->buf + p->l3_off);
}

static inline struct ipv6hdr *pg_ip6h(struct pg *p)
{
	return (struct ipv6hdr *)(p->buf + p->l3_off);
}

static inline struct tcphdr *pg_tcph(struct pg *p)
{
	return (struct tcphdr *)(p->buf + p->l4_off);
}

static inline struct udphdr *pg_udph(struct pg *p)
{
	return (struct udphdr *)(p->buf + p->l4_off);
}

static inline void pg_ip4(struct pg *p, const void *src, const void *dst, uint8_t proto)
{
	struct iphdr *ip;

	pg_set_ethertype(p, ETH_P_IP);
	p->l3_off = (int)p->len;
	ip = pg_put(p, sizeof(*ip));
	ip->version = 4;
	ip->ihl = 5;
	ip->ttl = 64;
	ip->protocol = proto;
	ip->id = htons(0x1234);
	memcpy(&ip->saddr, src, 4);
	memcpy(&ip->daddr, dst, 4);
	p->family = 4;
	p->proto = proto;
}

/* Grow the IPv4 header by IP options (n a multiple of 4, NOP-filled). */
static inline void pg_ip4_opts(struct pg *p, int n)
{
	uint8_t *o = pg_put(p, n);

	memset(o, 1, n);
	pg_ip4h(p)->ihl = 5 + n / 4;
}

static inline void pg_ip6(struct pg *p, const void *src, const void *dst, uint8_t proto)
{
	struct ipv6hdr *ip6;

	pg_set_ethertype(p, ETH_P_IPV6);
	p->l3_off = (int)p->len;
	ip6 = pg_put(p, sizeof(*ip6));
	ip6->version = 6;
	ip6->hop_limit = 64;
	ip6->nexthdr = proto;
	memcpy(&ip6->saddr, src, 16);
	memcpy(&ip6->daddr, dst, 16);
	p->family = 6;
	p->proto = proto;
}

static inline void pg_tcp(struct pg *p, uint16_t sport, uint16_t dport,
			  uint8_t flags, uint32_t seq, uint32_t ack)
{
	struct tcphdr *th;

	p->l4_off = (int)p->len;
	th = pg_put(p, sizeof(*th));
	th->source = htons(sport);
	th->dest = htons(dport);
	th->seq = htonl(seq);
	th->ack_seq = htonl(ack);
	th->doff = 5;
	((uint8_t *)th)[13] = flags;
	th->window = htons(64240);
	p->opt_len = 0;
}

static inline void pg_udp(struct pg *p, uint16_t sport, uint16_t dport)
{
	struct udphdr *uh;

	p->l4_off = (int)p->len;
	uh = pg_put(p, sizeof(*uh));
	uh->source = htons(sport);
	uh->dest = htons(dport);
}

/* Raw TCP option bytes (no padding); pg_finish pads with NOPs to 4. */
static inline void pg_opt_raw(struct pg *p, const void *bytes, size_t n)
{
	memcpy(pg_put(p, n), bytes, n);
	p->opt_len += (int)n;
}

static inline void pg_opt_nop(struct pg *p)
{
	uint8_t b = 1;

	pg_opt_raw(p, &b, 1);
}

static inline void pg_opt_eol(struct pg *p)
{
	uint8_t b = 0;

	pg_opt_raw(p, &b, 1);
}

static inline void pg_opt_mss(struct pg *p, uint16_t mss)
{
	uint8_t b[4] = { 2, 4, mss >> 8, mss & 0xff };

	pg_opt_raw(p, b, 4);
}

static inline void pg_opt_ws(struct pg *p, uint8_t shift)
{
	uint8_t b[3] = { 3, 3, shift };

	pg_opt_raw(p, b, 3);
}

static inline void pg_opt_sackok(struct pg *p)
{
	uint8_t b[2] = { 4, 2 };

	pg_opt_raw(p, b, 2);
}

static inline void pg_opt_ts(struct pg *p, uint32_t val, uint32_t ecr)
{
	uint8_t b[10] = { 8, 10 };
	uint32_t v = htonl(val), e = htonl(ecr);

	memcpy(b + 2, &v, 4);
	memcpy(b + 6, &e, 4);
	pg_opt_raw(p, b, 10);
}

/* The Linux default SYN options: MSS, SACK-permitted, TS, NOP, WS (20 bytes). */
static inline void pg_opt_linux_syn(struct pg *p)
{
	pg_opt_mss(p, 1460);
	pg_opt_sackok(p);
	pg_opt_ts(p, 0x01020304, 0);
	pg_opt_nop(p);
	pg_opt_ws(p, 7);
}

/* Fill an IDN TCP option (encoding 3); version 1 unless ver says else. */
static inline void pg_idnopt_fill(struct idn_tcpopt *o, uint8_t ver, uint8_t tier,
				  uint8_t policy, uint8_t size_class, uint32_t cap,
				  uint64_t token)
{
	memset(o, 0, sizeof(*o));
	o->kind = IDN_TCPOPT_KIND;
	o->len = IDN_TCPOPT_LEN;
	o->exid = htons(IDN_TCPOPT_EXID);
	o->ver_tier = (uint8_t)(ver << 4 | (tier & 0xf));
	o->policy = policy;
	o->size_class = size_class;
	o->cap = htonl(cap);
	o->token_hi = htonl((uint32_t)(token >> 32));
	o->token_lo = htonl((uint32_t)token);
}

static inline void pg_opt_idn(struct pg *p, const struct idn_tcpopt *o)
{
	pg_opt_raw(p, o, sizeof(*o));
}

/* Pad the TCP options to a multiple of 4 with NOPs (before any payload). */
static inline void pg_opt_pad(struct pg *p)
{
	while (p->opt_len & 3)
		pg_opt_nop(p);
}

static inline void pg_payload(struct pg *p, const void *data, size_t n)
{
	if (p->pay_off < 0)
		p->pay_off = (int)p->len;
	if (data)
		memcpy(pg_put(p, n), data, n);
	else
		pg_put(p, n);
}

/* Payload of n bytes of a counting pattern. */
static inline void pg_payload_pattern(struct pg *p, size_t n)
{
	uint8_t *d;

	if (p->pay_off < 0)
		p->pay_off = (int)p->len;
	d = pg_put(p, n);
	for (size_t i = 0; i < n; i++)
		d[i] = (uint8_t)(i * 7 + 3);
}

/*
 * The test key of node @node (generation PG_TELE_KEY_ID): what the test
 * bed writes to idn_tele_keys for every node, and what pg_tele_fill() MACs
 * with, so a datagram is the node's own unless a test changes it.
 */
#define PG_TELE_KEY_ID	1
static inline void pg_tele_key(uint32_t node, uint8_t key[16])
{
	for (int i = 0; i < 16; i++)
		key[i] = (uint8_t)(node * 31 + i * 7 + 1);
}

/* MAC @t with @key as generation @key_id (bpf/lib/tele.h's SipHash) */
static inline void pg_tele_mac(struct idn_telemetry *t, const uint8_t key[16], uint32_t key_id)
{
	__u64 k0, k1;

	t->key_id = htonl(key_id);
	idn_siphash_key(key, &k0, &k1);
	idn_put_le64(t->mac, idn_tele_mac(k0, k1, t));
}

/* Telemetry datagram body (host values in, big-endian out), MACed with the node's test key. */
static inline void pg_tele_fill(struct idn_telemetry *t, uint32_t node, uint32_t seq,
				uint8_t health, uint32_t queue, uint32_t pending,
				uint16_t load, uint16_t kv)
{
	uint8_t key[16];

	memset(t, 0, sizeof(*t));
	t->magic = htonl(IDN_TELE_MAGIC);
	t->version = IDN_TELE_VERSION;
	t->health = health;
	t->node = htonl(node);
	t->seq = htonl(seq);
	t->queue_depth = htonl(queue);
	t->pending_tokens = htonl(pending);
	t->load = htons(load);
	t->kv_use = htons(kv);
	pg_tele_key(node, key);
	pg_tele_mac(t, key, PG_TELE_KEY_ID);
}

/* IPv6 descriptor address (encoding 2). */
static inline void pg_addr6_desc(uint8_t out[16], const uint8_t prefix[6], uint8_t ver,
				 uint8_t tier, uint32_t cap, uint8_t policy, uint32_t token)
{
	uint32_t c = htonl(cap), t = htonl(token);

	memcpy(out, prefix, IDN_ADDR6_PREFIX_LEN);
	out[IDN_ADDR6_OFF_VT] = (uint8_t)(ver << 4 | (tier & 0xf));
	memcpy(out + IDN_ADDR6_OFF_CAP, &c, 4);
	out[IDN_ADDR6_OFF_POLICY] = policy;
	memcpy(out + IDN_ADDR6_OFF_TOKEN, &t, 4);
}

/* ---- checksums ---------------------------------------------------- */

static inline uint32_t pg_sum(uint32_t sum, const void *data, size_t n)
{
	const uint8_t *b = data;

	for (size_t i = 0; i + 1 < n; i += 2)
		sum += (uint32_t)b[i] << 8 | b[i + 1];
	if (n & 1)
		sum += (uint32_t)b[n - 1] << 8;
	return sum;
}

static inline uint16_t pg_fold(uint32_t sum)
{
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

/* Internet checksum of a buffer, in network order ready to store. */
static inline uint16_t pg_csum(const void *data, size_t n)
{
	return htons(pg_fold(pg_sum(0, data, n)));
}

/*
 * L4 checksum over the pseudo header. family 4/6; src/dst point to the
 * addresses inside the IP header; l4 points to the TCP/UDP header.
 */
static inline uint16_t pg_l4_csum(int family, const void *src, const void *dst,
				  uint8_t proto, const void *l4, size_t n)
{
	uint32_t s = 0;
	uint8_t ph[4];

	if (family == 4) {
		s = pg_sum(s, src, 4);
		s = pg_sum(s, dst, 4);
	} else {
		s = pg_sum(s, src, 16);
		s = pg_sum(s, dst, 16);
	}
	s += proto;
	ph[0] = (uint8_t)(n >> 24);
	ph[1] = (uint8_t)(n >> 16);
	ph[2] = (uint8_t)(n >> 8);
	ph[3] = (uint8_t)n;
	s = pg_sum(s, ph, 4);
	s = pg_sum(s, l4, n);
	return htons(pg_fold(s));
}

/* Recompute IP header and L4 checksums of a finished packet. */
static inline void pg_fix_csums(struct pg *p)
{
	const uint8_t *src, *dst;
	size_t l4n;

	if (p->l3_off < 0)
		return;
	if (p->family == 4) {
		struct iphdr *ip = pg_ip4h(p);

		ip->check = 0;
		ip->check = pg_csum(ip, ip->ihl * 4);
		src = (uint8_t *)&ip->saddr;
		dst = (uint8_t *)&ip->daddr;
	} else {
		struct ipv6hdr *ip6 = pg_ip6h(p);

		src = (uint8_t *)&ip6->saddr;
		dst = (uint8_t *)&ip6->daddr;
	}
	if (p->l4_off < 0)
		return;
	l4n = p->len - p->l4_off;
	if (p->proto == IPPROTO_TCP) {
		pg_tcph(p)->check = 0;
		pg_tcph(p)->check = pg_l4_csum(p->family, src, dst, IPPROTO_TCP,
					       pg_tcph(p), l4n);
	} else if (p->proto == IPPROTO_UDP) {
		uint16_t c;

		pg_udph(p)->check = 0;
		c = pg_l4_csum(p->family, src, dst, IPPROTO_UDP, pg_udph(p), l4n);
		pg_udph(p)->check = c ? c : 0xffff;
	}
}

/*
 * Close the packet: pad TCP options to 4 bytes with NOPs, set the data
 * offset, IP total/payload length, UDP length, checksums. Options must be
 * added right after pg_tcp() and before any payload.
 */
static inline void pg_finish(struct pg *p)
{
	if (p->l4_off >= 0 && p->proto == IPPROTO_TCP) {
		int hl;

		if (p->pay_off >= 0 && p->opt_len & 3)
			abort();	/* options after payload: misuse */
		while (p->opt_len & 3)
			pg_opt_nop(p);
		hl = 20 + p->opt_len;
		if (hl > 60)
			abort();
		pg_tcph(p)->doff = hl / 4;
	}
	if (p->l3_off >= 0 && !p->no_fix_len) {
		if (p->family == 4)
			pg_ip4h(p)->tot_len = htons((uint16_t)(p->len - p->l3_off));
		else
			pg_ip6h(p)->payload_len =
				htons((uint16_t)(p->len - p->l3_off - sizeof(struct ipv6hdr)));
	}
	if (p->l4_off >= 0 && p->proto == IPPROTO_UDP && !p->no_fix_len)
		pg_udph(p)->len = htons((uint16_t)(p->len - p->l4_off));
	pg_fix_csums(p);
}

/* ---- whole packets in one call ----------------------------------- */

struct pg_flow {
	int family;			/* 4 or 6 */
	uint8_t src[16], dst[16];	/* network order */
	uint16_t sport, dport;		/* host order */
	uint8_t proto;
};

static inline void pg_flow4(struct pg_flow *f, const char *src, const char *dst,
			    uint16_t sport, uint16_t dport, uint8_t proto)
{
	memset(f, 0, sizeof(*f));
	f->family = 4;
	inet_pton(AF_INET, src, f->src);
	inet_pton(AF_INET, dst, f->dst);
	f->sport = sport;
	f->dport = dport;
	f->proto = proto;
}

static inline void pg_flow6(struct pg_flow *f, const char *src, const char *dst,
			    uint16_t sport, uint16_t dport, uint8_t proto)
{
	memset(f, 0, sizeof(*f));
	f->family = 6;
	inet_pton(AF_INET6, src, f->src);
	inet_pton(AF_INET6, dst, f->dst);
	f->sport = sport;
	f->dport = dport;
	f->proto = proto;
}

/* Ethernet + IP header of a flow; transport follows. */
static inline void pg_begin(struct pg *p, const struct pg_flow *f)
{
	pg_init(p);
	pg_eth(p, NULL, NULL);
	if (f->family == 4)
		pg_ip4(p, f->src, f->dst, f->proto);
	else
		pg_ip6(p, f->src, f->dst, f->proto);
}

/* A TCP segment of the flow; opt may be NULL; payload n pattern bytes. */
static inline void pg_tcp_pkt(struct pg *p, const struct pg_flow *f, uint8_t flags,
			      const struct idn_tcpopt *opt, size_t n)
{
	pg_begin(p, f);
	pg_tcp(p, f->sport, f->dport, flags, 1000, flags & PG_ACK ? 2000 : 0);
	if (flags & PG_SYN)
		pg_opt_mss(p, 1460);
	if (opt)
		pg_opt_idn(p, opt);
	if (n)
		pg_payload_pattern(p, n);
	pg_finish(p);
}

static inline void pg_udp_pkt(struct pg *p, const struct pg_flow *f, const void *data,
			      size_t n)
{
	pg_begin(p, f);
	pg_udp(p, f->sport, f->dport);
	if (n)
		pg_payload(p, data, n);
	pg_finish(p);
}

/* ---- mutation ------------------------------------------------------ */

/* Cut the frame to n bytes (length fields keep their values). */
static inline void pg_truncate(struct pg *p, size_t n)
{
	if (n < p->len)
		p->len = n;
}

static inline void pg_poke8(struct pg *p, size_t off, uint8_t v)
{
	if (off < p->len)
		p->buf[off] = v;
}

static inline void pg_poke16(struct pg *p, size_t off, uint16_t v)
{
	pg_poke8(p, off, (uint8_t)(v >> 8));
	pg_poke8(p, off + 1, (uint8_t)v);
}

/* Flip one bit: bit index over the whole frame. */
static inline void pg_flip_bit(struct pg *p, size_t bit)
{
	if (bit / 8 < p->len)
		p->buf[bit / 8] ^= (uint8_t)(1u << (bit % 8));
}

/* ---- checks of a received packet ----------------------------------- */

/* 1 if the IPv4 header checksum at buf+off verifies. */
static inline int pg_ip4_csum_ok(const uint8_t *buf, size_t len, size_t off)
{
	const struct iphdr *ip = (const void *)(buf + off);

	if (off + sizeof(*ip) > len || off + ip->ihl * 4u > len)
		return 0;
	return pg_fold(pg_sum(0, ip, ip->ihl * 4)) == 0;
}

/*
 * 1 if the TCP/UDP checksum of the IP packet at buf+l3 verifies (over the
 * IP length, which must fit the buffer).
 */
static inline int pg_l4_csum_ok(const uint8_t *buf, size_t len, size_t l3)
{
	const uint8_t *src, *dst, *l4;
	size_t n;
	uint8_t proto;
	uint32_t s = 0;
	uint8_t ph[4];

	if (l3 + 1 > len)
		return 0;
	if ((buf[l3] >> 4) == 4) {
		const struct iphdr *ip = (const void *)(buf + l3);

		if (l3 + 20 > len || l3 + ntohs(ip->tot_len) > len)
			return 0;
		src = (const uint8_t *)&ip->saddr;
		dst = (const uint8_t *)&ip->daddr;
		l4 = buf + l3 + ip->ihl * 4;
		n = ntohs(ip->tot_len) - ip->ihl * 4;
		proto = ip->protocol;
		s = pg_sum(s, src, 4);
		s = pg_sum(s, dst, 4);
	} else {
		const struct ipv6hdr *ip6 = (const void *)(buf + l3);

		if (l3 + 40 > len || l3 + 40 + ntohs(ip6->payload_len) > len)
			return 0;
		src = (const uint8_t *)&ip6->saddr;
		dst = (const uint8_t *)&ip6->daddr;
		l4 = buf + l3 + 40;
		n = ntohs(ip6->payload_len);
		proto = ip6->nexthdr;
		s = pg_sum(s, src, 16);
		s = pg_sum(s, dst, 16);
	}
	s += proto;
	ph[0] = (uint8_t)(n >> 24);
	ph[1] = (uint8_t)(n >> 16);
	ph[2] = (uint8_t)(n >> 8);
	ph[3] = (uint8_t)n;
	s = pg_sum(s, ph, 4);
	s = pg_sum(s, l4, n);
	return pg_fold(s) == 0;
}

/* Hex dump for failure messages, as "# " comment lines. */
static inline void pg_hexdump(const char *tag, const void *data, size_t n)
{
	const uint8_t *b = data;

	printf("# %s (%zu bytes):", tag, n);
	for (size_t i = 0; i < n; i++)
		printf("%s%02x", i % 32 ? " " : "\n#   ", b[i]);
	printf("\n");
}

#endif /* __IDN_SELFTESTS_PKTGEN_H */
