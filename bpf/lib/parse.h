/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * parse.h - header parsing over [data, data_end): Ethernet (+ up to two
 * VLAN tags), IPv4, IPv6, TCP, UDP and the TCP option list of a SYN.
 *
 * Context-free: it only sees two pointers, so the same code runs in the
 * XDP and TC programs and in userspace (idnctl route get, tests). Every
 * read is bounds-checked against data_end before it happens. Nothing here
 * decides what to do with a packet; callers get a filled struct idn_pkt or
 * an enum idn_drop_reason.
 */
#ifndef __IDN_LIB_PARSE_H
#define __IDN_LIB_PARSE_H

#include "lib/compat.h"
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/tcp.h>
#include <linux/udp.h>
#include <linux/in.h>

#ifndef ETH_P_8021AD
#define ETH_P_8021AD 0x88A8
#endif

#define IDN_TCP_FIN 0x01
#define IDN_TCP_SYN 0x02
#define IDN_TCP_RST 0x04
#define IDN_TCP_ACK 0x10

/* Parsed headers of one packet; offsets are from data. */
struct idn_pkt {
	struct idn_flow_key flow;	/* family 0: not IPv4/IPv6 */
	__u16 l3_off;			/* = L2 header length */
	__u16 l4_off;
	__u16 l3_len;			/* IPv4 tot_len, IPv6 40 + payload_len */
	__u16 l4_len;			/* l3_len - IP header length */
	__u8 tcp_flags;
	__u8 tcp_hlen;			/* doff * 4 */
	__u8 frag;			/* IPv4 fragment (MF or offset) */
	__u8 has_ports;			/* TCP or UDP header present */
	__u32 seq;			/* TCP, host order */
	__u32 ack_seq;
};

/*
 * idn_parse - parse L2..L4.
 * Return: IDN_DROP_NONE with p->flow.family set to IDN_AF_INET/6, or with
 * family 0 for frames that are not IP; otherwise the drop reason.
 * Transport headers are parsed for TCP and UDP of unfragmented packets;
 * has_ports tells whether ports were filled.
 */
IDN_INLINE int idn_parse(void *data, void *data_end, struct idn_pkt *p)
{
	struct ethhdr *eth = data;
	__u16 proto;
	__u32 off;

	__builtin_memset(p, 0, sizeof(*p));
	if ((void *)(eth + 1) > data_end)
		return IDN_DROP_TRUNC_L2;
	proto = eth->h_proto;
	off = sizeof(*eth);

#pragma unroll
	for (int i = 0; i < 2; i++) {
		if (proto != idn_htons(ETH_P_8021Q) && proto != idn_htons(ETH_P_8021AD))
			break;
		if (data + off + 4 > data_end)
			return IDN_DROP_TRUNC_L2;
		proto = *(__u16 *)(data + off + 2);
		off += 4;
	}
	p->l3_off = off;

	if (proto == idn_htons(ETH_P_IP)) {
		struct iphdr *ip = data + off;
		__u32 ihl, tot;

		if ((void *)(ip + 1) > data_end)
			return IDN_DROP_TRUNC_L3;
		ihl = ip->ihl * 4;
		tot = idn_ntohs(ip->tot_len);
		if (ip->version != 4 || ihl < sizeof(*ip) || tot < ihl)
			return IDN_DROP_BAD_IP4;
		if (data + off + tot > data_end)
			return IDN_DROP_TRUNC_L3;
		p->flow.family = IDN_AF_INET;
		p->flow.proto = ip->protocol;
		p->flow.saddr[0] = ip->saddr;
		p->flow.daddr[0] = ip->daddr;
		p->l3_len = tot;
		p->l4_len = tot - ihl;
		p->frag = (ip->frag_off & idn_htons(0x3fff)) != 0;
		off += ihl;
	} else if (proto == idn_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6 = data + off;
		__u32 plen;

		if ((void *)(ip6 + 1) > data_end)
			return IDN_DROP_TRUNC_L3;
		plen = idn_ntohs(ip6->payload_len);
		if (ip6->version != 6)
			return IDN_DROP_BAD_IP6;
		if (data + off + sizeof(*ip6) + plen > data_end)
			return IDN_DROP_TRUNC_L3;
		p->flow.family = IDN_AF_INET6;
		p->flow.proto = ip6->nexthdr;
		__builtin_memcpy(p->flow.saddr, &ip6->saddr, 16);
		__builtin_memcpy(p->flow.daddr, &ip6->daddr, 16);
		p->l3_len = sizeof(*ip6) + plen;
		p->l4_len = plen;
		off += sizeof(*ip6);
	} else {
		return IDN_DROP_NONE;	/* not IP: family 0 */
	}
	p->l4_off = off;
	if (p->frag)
		return IDN_DROP_NONE;

	if (p->flow.proto == IPPROTO_TCP) {
		struct tcphdr *th = data + off;
		__u32 hlen;

		if ((void *)(th + 1) > data_end || p->l4_len < sizeof(*th))
			return IDN_DROP_TRUNC_L4;
		hlen = th->doff * 4;
		if (hlen < sizeof(*th) || hlen > p->l4_len)
			return IDN_DROP_BAD_TCP;
		if (data + off + hlen > data_end)
			return IDN_DROP_TRUNC_L4;
		p->flow.sport = th->source;
		p->flow.dport = th->dest;
		p->tcp_flags = ((__u8 *)th)[13];
		p->tcp_hlen = hlen;
		p->seq = idn_ntohl(th->seq);
		p->ack_seq = idn_ntohl(th->ack_seq);
		p->has_ports = 1;
	} else if (p->flow.proto == IPPROTO_UDP) {
		struct udphdr *uh = data + off;

		if ((void *)(uh + 1) > data_end || p->l4_len < sizeof(*uh))
			return IDN_DROP_TRUNC_L4;
		p->flow.sport = uh->source;
		p->flow.dport = uh->dest;
		p->has_ports = 1;
	}
	return IDN_DROP_NONE;
}

#define IDN_TCPOPT_WALK_MAX 40	/* max option bytes, so max steps */

/*
 * idn_tcpopt_find - walk the option list of a parsed TCP header and find
 * the IDN experimental option (kind 253, ExID IDN_TCPOPT_EXID).
 * @off_out: offset of the option from data when found.
 * Return: 1 found, 0 absent, or -reason for a malformed option list
 * (length byte missing, zero or running past the header) or an IDN option
 * of the wrong length.
 */
IDN_INLINE int idn_tcpopt_find(void *data, void *data_end,
			       const struct idn_pkt *p, __u32 *off_out)
{
	__u32 start = p->l4_off + sizeof(struct tcphdr);
	__u32 end = p->l4_off + p->tcp_hlen;
	__u32 off = start;

	for (int i = 0; i < IDN_TCPOPT_WALK_MAX; i++) {
		__u8 *o;
		__u8 kind, len;

		if (off >= end)
			return 0;
		o = data + (off & 0xffff);
		if ((void *)(o + 1) > data_end)
			return -IDN_DROP_BAD_OPT;
		kind = o[0];
		if (kind == 0)		/* end of option list */
			return 0;
		if (kind == 1) {	/* NOP */
			off++;
			continue;
		}
		if ((void *)(o + 2) > data_end || off + 2 > end)
			return -IDN_DROP_BAD_OPT;
		len = o[1];
		if (len < 2 || off + len > end)
			return -IDN_DROP_BAD_OPT;
		if (kind == IDN_TCPOPT_KIND && len >= 4 &&
		    (void *)(o + 4) <= data_end &&
		    *(__u16 *)(o + 2) == idn_htons(IDN_TCPOPT_EXID)) {
			if (len != IDN_TCPOPT_LEN)
				return -IDN_DROP_BAD_OPT;
			*off_out = off;
			return 1;
		}
		off += len;
	}
	return 0;
}

#endif /* __IDN_LIB_PARSE_H */
