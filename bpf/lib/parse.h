/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * parse.h - header parsing over [data, data_end): Ethernet (+ up to two
 * VLAN tags), IPv4, IPv6 (+ extension headers), TCP, UDP and the TCP
 * option list of a SYN.
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
#include "lib/csum.h"
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
#define IDN_TCP_URG 0x20

/*
 * Strict admission (docs/architecture.md, "Strict admission"): the TCP
 * flag sets a connection can send, as a bitmap indexed by the flags
 * FIN SYN RST ACK URG (PSH, ECE, CWR and AE left out: any value is
 * legal with any of these). The same set Linux conntrack accepts
 * (tcp_valid_flags): SYN, SYN+URG, SYN+ACK, RST, RST+ACK, FIN+ACK,
 * FIN+ACK+URG, ACK, ACK+URG. Everything else - SYN+FIN, SYN+RST, FIN
 * without ACK, XMAS (FIN+PSH+URG), NULL (no flag) - is malformed.
 */
#define IDN_TCP_FLAG_MASK 0x37
#define IDN_TCP_VALID_FLAGS						\
	((1ULL << 0x02) | (1ULL << 0x22) | (1ULL << 0x12) | (1ULL << 0x04) |	\
	 (1ULL << 0x14) | (1ULL << 0x11) | (1ULL << 0x31) | (1ULL << 0x10) |	\
	 (1ULL << 0x30))

IDN_INLINE int idn_tcp_flags_ok(__u8 flags)
{
	return (IDN_TCP_VALID_FLAGS >> (flags & IDN_TCP_FLAG_MASK)) & 1;
}

/* IPv6 extension headers the parser walks (at most IDN_EXT6_MAX of them). */
#define IDN_EXT6_MAX 4
#define IDN_EXT6_SPAN 256	/* bytes of extension headers followed at most */
/* next-header values (own names: libc and uapi headers define them as enums) */
#define IDN_NH_HOPOPTS	0
#define IDN_NH_ROUTING	43
#define IDN_NH_FRAGMENT	44
#define IDN_NH_ESP	50
#define IDN_NH_AH	51
#define IDN_NH_DSTOPTS	60

#define IDN_EXT6_WALKED 1	/* extension headers before L4, all followed */
#define IDN_EXT6_OPAQUE 2	/* a chain not followed: ESP, a routing header with
				 * segments left, too many or too long */

/*
 * idn_ip4_csum_ok - does the IPv4 header checksum verify? @ihl in bytes
 * (20..60). The fixed 20 bytes are summed as five words; options, when
 * present, word by word with their own bounds check. Every router
 * verifies it (RFC 1812 5.2.2); XDP runs before anyone else could.
 */
IDN_INLINE int idn_ip4_csum_ok(const struct iphdr *ip, void *data_end, __u32 ihl)
{
	const __u32 *w = (const __u32 *)ip;
	__u64 sum = 0;

	IDN_UNROLL
	for (int i = 0; i < 5; i++)
		sum += w[i];
	if (unlikely(ihl > sizeof(*ip))) {
		int bad = 0;

		/* unrolled, no early exit: no back-edge for older verifiers */
		IDN_UNROLL
		for (__u32 o = sizeof(*ip); o < 60; o += 4) {
			const __u32 *q = (const void *)ip + o;

			if (o < ihl) {
				/* keep the check on q itself (not moved onto data_end) */
				IDN_BARRIER_VAR(q);
				if ((void *)(q + 1) > data_end)
					bad = 1;
				else
					sum += *q;
			}
		}
		if (bad)
			return 0;
	}
	return idn_csum_fold(sum) == 0;
}

/*
 * l4_off is below 512 (22 bytes of L2, 60 of IPv4 or 40 + IDN_EXT6_SPAN
 * of IPv6): a mask with this restates it for the verifier.
 */
#define IDN_L4_OFF_MASK 0x1ff

/* Parsed headers of one packet; offsets are from data. */
struct idn_pkt {
	struct idn_flow_key flow;	/* family 0: not IPv4/IPv6 */
	__u16 l3_off;			/* = L2 header length */
	__u16 l4_off;
	__u16 l3_len;			/* IPv4 tot_len, IPv6 40 + payload_len */
	__u16 l4_len;			/* l3_len - IP header length */
	__u8 tcp_flags;
	__u8 tcp_hlen;			/* doff * 4 */
	__u8 frag;			/* IPv4 fragment (MF or offset), or an
					 * IPv6 fragment header */
	__u8 has_ports;			/* TCP or UDP header present */
	__u32 seq;			/* TCP, host order */
	__u32 ack_seq;
	__u8 ext6;			/* IDN_EXT6_* or 0: no extension header */
	__u8 pad[3];
};

/*
 * idn_parse_ext6 - follow the IPv6 extension headers after the fixed
 * header at *off: hop-by-hop, destination options, routing with no
 * segments left, AH, fragment (which ends the walk: p->frag). On return
 * *off and p->flow.proto name the header after the chain, p->l4_len its
 * length. A chain not followed (ESP, a routing header still routing,
 * more than IDN_EXT6_MAX headers or IDN_EXT6_SPAN bytes) is
 * IDN_EXT6_OPAQUE. Return: 0 or a drop reason (a header past the
 * payload length or the frame).
 */
IDN_INLINE int idn_parse_ext6(void *data, void *data_end, struct idn_pkt *p, __u32 *offp)
{
	__u32 off = *offp, start = off, hlen;
	__u8 nh = p->flow.proto;
	int done = 0, ret = IDN_DROP_NONE;
	__u8 *h;

	/*
	 * Unrolled with no early exit (done instead of break): a loop whose
	 * latch falls through into its header is a back-edge the 6.1
	 * verifier refuses.
	 */
	IDN_UNROLL
	for (int i = 0; i < IDN_EXT6_MAX + 1; i++) {
		if (done)
			continue;
		if (nh != IDN_NH_HOPOPTS && nh != IDN_NH_DSTOPTS && nh != IDN_NH_ROUTING &&
		    nh != IDN_NH_FRAGMENT && nh != IDN_NH_AH && nh != IDN_NH_ESP) {
			done = 1;
			continue;
		}
		if (i == IDN_EXT6_MAX || nh == IDN_NH_ESP) {
			p->ext6 = IDN_EXT6_OPAQUE;
			done = 1;
			continue;
		}
		p->ext6 = IDN_EXT6_WALKED;
		h = data + off;
		if (off - start + 8 > p->l4_len) {
			ret = IDN_DROP_BAD_IP6;
			done = 1;
			continue;
		}
		if ((void *)(h + 8) > data_end) {
			ret = IDN_DROP_TRUNC_L3;
			done = 1;
			continue;
		}
		if (nh == IDN_NH_FRAGMENT) {
			p->frag = 1;
			nh = h[0];
			off += 8;
			done = 1;
			continue;
		}
		hlen = nh == IDN_NH_AH ? ((__u32)h[1] + 2) * 4 : ((__u32)h[1] + 1) * 8;
		if ((nh == IDN_NH_ROUTING && h[3] != 0) || off - start + hlen > IDN_EXT6_SPAN) {
			/* still source routed (the VIP is not its destination), or long */
			p->ext6 = IDN_EXT6_OPAQUE;
			done = 1;
			continue;
		}
		if (off - start + hlen > p->l4_len) {
			ret = IDN_DROP_BAD_IP6;
			done = 1;
			continue;
		}
		nh = h[0];
		off += hlen;
	}
	if (ret)
		return ret;
	p->flow.proto = nh;
	p->l4_len -= off - start;
	*offp = off;
	return IDN_DROP_NONE;
}

/*
 * idn_parse - parse L2..L4 and check what strict admission asks of every
 * header: lengths consistent with each other and with the frame, IPv4
 * header checksum, TTL / hop limit not 0, a TCP flag set a connection
 * can send, a UDP length inside the datagram.
 * Return: IDN_DROP_NONE with p->flow.family set to IDN_AF_INET/6, or with
 * family 0 for frames that are not IP; otherwise the drop reason.
 * Transport headers are parsed for TCP and UDP of unfragmented packets
 * whose IPv6 extension headers (if any) were followed; has_ports tells
 * whether ports were filled. Fragments (p->frag) and extension headers
 * (p->ext6) are reported, not judged: the caller's configuration does.
 */
IDN_INLINE int idn_parse(void *data, void *data_end, struct idn_pkt *p)
{
	struct ethhdr *eth = data;
	__u16 proto;
	__u32 off;
	int r;

	__builtin_memset(p, 0, sizeof(*p));
	if ((void *)(eth + 1) > data_end)
		return IDN_DROP_TRUNC_L2;
	proto = eth->h_proto;
	off = sizeof(*eth);

	IDN_UNROLL
	for (int i = 0; i < 2; i++) {
		if (proto != idn_htons(ETH_P_8021Q) && proto != idn_htons(ETH_P_8021AD))
			break;
		if (data + off + 4 > data_end)
			return IDN_DROP_TRUNC_L2;
		proto = *(__u16 *)(data + off + 2);
		off += 4;
	}
	if (proto == idn_htons(ETH_P_8021Q) || proto == idn_htons(ETH_P_8021AD))
		return IDN_DROP_VLAN;
	p->l3_off = off;

	if (proto == idn_htons(ETH_P_IP)) {
		struct iphdr *ip = data + off;
		__u32 ihl, tot;

		if ((void *)(ip + 1) > data_end)
			return IDN_DROP_TRUNC_L3;
		ihl = ip->ihl * 4;
		tot = idn_ntohs_bounded(ip->tot_len);
		if (ip->version != 4 || ihl < sizeof(*ip) || tot < ihl)
			return IDN_DROP_BAD_IP4;
		if (data + off + tot > data_end)
			return IDN_DROP_TRUNC_L3;
		if (!idn_ip4_csum_ok(ip, data_end, ihl))
			return IDN_DROP_IP4_CSUM;
		if (ip->ttl == 0)
			return IDN_DROP_TTL;
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
		plen = idn_ntohs_bounded(ip6->payload_len);
		if (ip6->version != 6)
			return IDN_DROP_BAD_IP6;
		if (data + off + sizeof(*ip6) + plen > data_end)
			return IDN_DROP_TRUNC_L3;
		if (ip6->hop_limit == 0)
			return IDN_DROP_TTL;
		p->flow.family = IDN_AF_INET6;
		p->flow.proto = ip6->nexthdr;
		__builtin_memcpy(p->flow.saddr, &ip6->saddr, 16);
		__builtin_memcpy(p->flow.daddr, &ip6->daddr, 16);
		p->l3_len = sizeof(*ip6) + plen;
		p->l4_len = plen;
		off += sizeof(*ip6);
		r = idn_parse_ext6(data, data_end, p, &off);
		if (r)
			return r;
	} else {
		return IDN_DROP_NONE;	/* not IP: family 0 */
	}
	p->l4_off = off;
	if (p->frag || p->ext6 == IDN_EXT6_OPAQUE)
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
		if (!idn_tcp_flags_ok(((__u8 *)th)[13]))
			return IDN_DROP_BAD_FLAGS;
		p->flow.sport = th->source;
		p->flow.dport = th->dest;
		p->tcp_flags = ((__u8 *)th)[13];
		p->tcp_hlen = hlen;
		p->seq = idn_ntohl(th->seq);
		p->ack_seq = idn_ntohl(th->ack_seq);
		p->has_ports = 1;
	} else if (p->flow.proto == IPPROTO_UDP) {
		struct udphdr *uh = data + off;

		__u32 ulen;

		if ((void *)(uh + 1) > data_end || p->l4_len < sizeof(*uh))
			return IDN_DROP_TRUNC_L4;
		ulen = idn_ntohs_bounded(uh->len);
		if (ulen < sizeof(*uh) || ulen > p->l4_len)
			return IDN_DROP_BAD_UDP;
		p->flow.sport = uh->source;
		p->flow.dport = uh->dest;
		p->has_ports = 1;
	}
	return IDN_DROP_NONE;
}

#define IDN_TCPOPT_SPACE 40	/* max TCP option bytes */

/*
 * A copied option list; a struct so a BPF global function knows its size,
 * 64 bytes so indices masked with 63 are provably inside.
 */
#define IDN_OPTBUF_MASK 63
struct idn_optbuf {
	__u8 b[IDN_OPTBUF_MASK + 1];
};

/* State of one option walk: the copied list and where the walk is. */
struct idn_optwalk {
	struct idn_optbuf buf;
	__u32 len;		/* option bytes in buf */
	__u32 off;		/* next option */
	__s32 ret;		/* 1 found, 0 absent, -reason malformed */
	__u32 found;		/* offset of the IDN option when ret == 1 */
};

/* One option per call; return 1 to stop (bpf_loop callback contract). */
static long idn_optwalk_step(__u32 i, void *ctx)
{
	struct idn_optwalk *w = ctx;
	__u32 off = w->off;
	__u8 kind, olen;

	if (off >= w->len)
		return 1;
	kind = w->buf.b[off & IDN_OPTBUF_MASK];
	if (kind == 0)			/* end of option list */
		return 1;
	if (kind == 1) {		/* NOP */
		w->off = off + 1;
		return 0;
	}
	if (off + 2 > w->len)
		goto bad;
	olen = w->buf.b[(off + 1) & IDN_OPTBUF_MASK];
	if (olen < 2 || off + olen > w->len)
		goto bad;
	if (kind == IDN_TCPOPT_KIND && olen >= 4 &&
	    w->buf.b[(off + 2) & IDN_OPTBUF_MASK] == (IDN_TCPOPT_EXID >> 8) &&
	    w->buf.b[(off + 3) & IDN_OPTBUF_MASK] == (IDN_TCPOPT_EXID & 0xff)) {
		if (olen != IDN_TCPOPT_LEN)
			goto bad;
		w->found = off;
		w->ret = 1;
		return 1;
	}
	w->off = off + olen;
	return 0;
bad:
	w->ret = -IDN_DROP_BAD_OPT;
	return 1;
}

/*
 * idn_tcpopt_plain - is the list one of the layouts common clients send
 * in a SYN, without an IDN option? Then the walk below would find the same
 * (well formed, no IDN option: 0) and is skipped. Byte positions of kinds
 * and lengths are fixed in each; values (MSS, window scale, timestamps)
 * are not looked at, as the walk does not look at them either.
 *   Linux      MSS SACK_PERM TS NOP WS                        20 bytes
 *   Linux      MSS NOP NOP SACK_PERM NOP WS (no timestamps)   12
 *   Windows    MSS NOP WS NOP NOP SACK_PERM                   12
 *   macOS      MSS NOP WS NOP NOP TS SACK_PERM EOL            24
 */
IDN_INLINE int idn_tcpopt_plain(const struct idn_optwalk *w)
{
	const __u8 *b = w->buf.b;

	if (b[0] != 2 || b[1] != 4)		/* every layout starts with MSS */
		return 0;
	switch (w->len) {
	case 20:
		return b[4] == 4 && b[5] == 2 && b[6] == 8 && b[7] == 10 && b[16] == 1 &&
		       b[17] == 3 && b[18] == 3;
	case 12:
		return (b[4] == 1 && b[5] == 1 && b[6] == 4 && b[7] == 2 && b[8] == 1 &&
			b[9] == 3 && b[10] == 3) ||
		       (b[4] == 1 && b[5] == 3 && b[6] == 3 && b[8] == 1 && b[9] == 1 &&
			b[10] == 4 && b[11] == 2);
	case 24:
		return b[4] == 1 && b[5] == 3 && b[6] == 3 && b[8] == 1 && b[9] == 1 &&
		       b[10] == 8 && b[11] == 10 && b[20] == 4 && b[21] == 2 && b[22] == 0;
	}
	return 0;
}

/*
 * idn_tcpopt_scan - walk a TCP option list copied into w->buf (w->len
 * bytes, at most IDN_TCPOPT_SPACE) and find the IDN experimental option
 * (kind 253, ExID IDN_TCPOPT_EXID).
 * @opt: receives the option when found.
 * Return: 1 found, 0 absent, or -reason for a malformed option list
 * (length byte missing, below 2 or running past the list) or an IDN
 * option of the wrong length.
 * In BPF the walk runs under bpf_loop(): an inline loop over options
 * multiplies the verifier's states past its limit (PITFALLS).
 */
IDN_INLINE int idn_tcpopt_scan(struct idn_optwalk *w, struct idn_tcpopt *opt)
{
	w->off = 0;
	w->ret = 0;
	w->found = 0;
	if (w->len > IDN_TCPOPT_SPACE)
		return -IDN_DROP_BAD_OPT;
	if (idn_tcpopt_plain(w))
		return 0;
#ifdef __bpf__
	bpf_loop(IDN_TCPOPT_SPACE, idn_optwalk_step, w, 0);
#else
	for (__u32 i = 0; i < IDN_TCPOPT_SPACE; i++)
		if (idn_optwalk_step(i, w))
			break;
#endif
	if (w->ret == 1)
		__builtin_memcpy(opt, w->buf.b + (w->found & 31), IDN_TCPOPT_LEN);
	return w->ret;
}

#if IDN_USERSPACE
/*
 * idn_tcpopt_find - userspace twin of what steer.h does: copy the option
 * list of a parsed TCP header and scan it.
 */
static inline int idn_tcpopt_find(void *data, void *data_end, const struct idn_pkt *p,
				  struct idn_tcpopt *opt)
{
	struct idn_optwalk w;
	__u32 len = p->tcp_hlen - sizeof(struct tcphdr);
	__u8 *o = (__u8 *)data + p->l4_off + sizeof(struct tcphdr);

	memset(&w, 0, sizeof(w));
	if (p->tcp_hlen <= sizeof(struct tcphdr))
		return 0;
	if (len > IDN_TCPOPT_SPACE || (void *)(o + len) > data_end)
		return -IDN_DROP_BAD_OPT;
	memcpy(w.buf.b, o, len);
	w.len = len;
	return idn_tcpopt_scan(&w, opt);
}
#endif

#endif /* __IDN_LIB_PARSE_H */
