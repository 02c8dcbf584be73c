// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * idn_node.bpf.c - node side of the dataplane: TC ingress on the device
 * facing the routers. It strips the IPIP / IP6IP6 header a router put in
 * front of a steered request, so the inner packet (addressed to a VIP or
 * a descriptor address the node accepts locally) goes up the node's stack
 * and the engine answers the client directly (direct server return).
 *
 * Everything else passes untouched. Inner and outer family are the same
 * by construction (the router only picks nodes of the request's family),
 * so decapsulation never changes skb->protocol.
 *
 * idn_stamp, TC egress on the same device, writes the node's TCP
 * timestamp cookie (bpf/lib/tsopt.h) into the TSval of the segments the
 * node sends from an address that arrived through IDN (the inner
 * destinations idn_decap saw: idn_ts_addrs), so a router that lost a
 * connection's entry finds its node in the TSecr the client echoes
 * (docs/architecture.md, "State only for real connections").
 */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/in.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include <linux/tcp.h>
#include "lib/tsopt.h"

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, IDN_DECAP_MAX);
	__type(key, __u32);
	__type(value, __u64);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} idn_decap_stats SEC(".maps");

/*
 * Connections this node's agent handed to another node (docs/agent.md
 * "Direct server return of a two-stage request"): the client's 4-tuple ->
 * where its packets go now. Written by the agent, pinned.
 */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, IDN_HANDOFF_MAX);
	__type(key, struct idn_handoff_key);
	__type(value, struct idn_handoff_val);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} idn_handoff SEC(".maps");

/* IDN_TS_CFG_ON | this node's TS cookie (its node id); 0: no stamping. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} idn_ts_cfg SEC(".maps");

/*
 * Local addresses that arrived through IDN (VIPs, IPv6 descriptor /64s).
 * Not LRU, and pinned: an address once seen stays, so a connection's
 * segments are stamped all or none from its first - a TSval that went
 * back below a stamped one would fail the client's PAWS check.
 */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, IDN_TS_ADDRS);
	__type(key, struct idn_ts_addr);
	__type(value, __u8);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} idn_ts_addrs SEC(".maps");

static __always_inline int count(__u32 what, int act)
{
	__u64 *c = bpf_map_lookup_elem(&idn_decap_stats, &what);

	if (c)
		(*c)++;
	return act;
}

/* Remember an inner destination (first 4 or 8 bytes at @a) once. */
static __always_inline void learn(__u8 family, const void *a)
{
	struct idn_ts_addr k = { .family = family };

	__builtin_memcpy(k.addr, a, family == IDN_AF_INET ? 4 : 8);
	if (!bpf_map_lookup_elem(&idn_ts_addrs, &k))
		bpf_map_update_elem(&idn_ts_addrs, &k, &(__u8){ 1 }, BPF_NOEXIST);
}

/*
 * A handed-off connection (idn_handoff): the outer IPv4 header @ip (its
 * inner IPv4 header follows, checked by the caller) is rewritten to go
 * from this node (the outer destination) to the node the connection is
 * at now, TTL - 1, and the packet is redirected there (the FIB's egress
 * device, neighbour resolved by the kernel). Returns the TC action, or
 * -1: not handed off, decapsulate as usual. A packet that cannot be
 * forwarded is dropped, never decapsulated: this node has no socket for
 * the connection any more and would answer it with a reset. A SYN of a
 * handed-off tuple deletes its entry: a new connection, this node's.
 */
static __always_inline int handoff(struct __sk_buff *skb, struct iphdr *ip, void *end)
{
	struct iphdr *in = (void *)(ip + 1);
	struct bpf_fib_lookup fib = {};
	struct idn_handoff_key k;
	struct idn_handoff_val *v;
	__u8 *th;
	__u32 self;
	__u64 sum;
	long rc;

	if (in->protocol != IPPROTO_TCP || in->ihl != 5 ||
	    (in->frag_off & bpf_htons(0x3fff)))
		return -1;
	th = (void *)(in + 1);
	if ((void *)(th + 14) > end)
		return -1;
	k.saddr = in->saddr;
	k.daddr = in->daddr;
	__builtin_memcpy(&k.sport, th, 2);
	__builtin_memcpy(&k.dport, th + 2, 2);
	v = bpf_map_lookup_elem(&idn_handoff, &k);
	if (!v)
		return -1;
	if (th[13] & 0x02) {	/* SYN: a new connection, this node's */
		bpf_map_delete_elem(&idn_handoff, &k);
		return -1;
	}
	if (ip->ttl <= 1)
		return count(IDN_DECAP_HANDOFF_ERR, TC_ACT_SHOT);
	self = ip->daddr;
	ip->saddr = self;
	ip->daddr = v->node4;
	ip->ttl--;
	ip->check = 0;
	sum = bpf_csum_diff(0, 0, (__be32 *)ip, sizeof(*ip), 0);
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	ip->check = ~sum & 0xffff;
	fib.family = 2;	/* AF_INET */
	fib.l4_protocol = IPPROTO_IPIP;
	fib.tot_len = bpf_ntohs(ip->tot_len);
	fib.ipv4_src = self;
	fib.ipv4_dst = v->node4;
	fib.ifindex = skb->ifindex;
	__sync_fetch_and_add(&v->packets, 1);
	/* the device towards it: the FIB's, else (forwarding is off on a
	 * node: BPF_FIB_LKUP_RET_FWD_DISABLED) the one it came in on, which
	 * faces the routers; bpf_redirect_neigh() routes and resolves the
	 * next hop itself */
	rc = bpf_fib_lookup(skb, &fib, sizeof(fib), BPF_FIB_LOOKUP_OUTPUT);
	if (rc == BPF_FIB_LKUP_RET_FWD_DISABLED)
		fib.ifindex = skb->ifindex;
	else if (rc != BPF_FIB_LKUP_RET_SUCCESS && rc != BPF_FIB_LKUP_RET_NO_NEIGH)
		return count(IDN_DECAP_HANDOFF_ERR, TC_ACT_SHOT);
	rc = bpf_redirect_neigh(fib.ifindex, NULL, 0, 0);
	return count(rc == TC_ACT_REDIRECT ? IDN_DECAP_HANDOFF : IDN_DECAP_HANDOFF_ERR, rc);
}

SEC("tc")
int idn_decap(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	int room, act;

	if ((void *)(eth + 1) > end)
		return count(IDN_DECAP_PASS, TC_ACT_OK);
	if (eth->h_proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip = (void *)(eth + 1);

		if ((void *)(ip + 1) > end || ip->protocol != IPPROTO_IPIP)
			return count(IDN_DECAP_PASS, TC_ACT_OK);
		if (ip->ihl != 5 || (ip->frag_off & bpf_htons(0x3fff)) ||
		    (void *)(ip + 1) + sizeof(struct iphdr) > end)
			return count(IDN_DECAP_BAD, TC_ACT_SHOT);
		room = sizeof(struct iphdr);
		act = handoff(skb, ip, end);
		if (act >= 0)
			return act;
		learn(IDN_AF_INET, &((struct iphdr *)(ip + 1))->daddr);
	} else if (eth->h_proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6 = (void *)(eth + 1);

		if ((void *)(ip6 + 1) > end || ip6->nexthdr != IPPROTO_IPV6)
			return count(IDN_DECAP_PASS, TC_ACT_OK);
		if ((void *)(ip6 + 1) + sizeof(struct ipv6hdr) > end)
			return count(IDN_DECAP_BAD, TC_ACT_SHOT);
		room = sizeof(struct ipv6hdr);
		learn(IDN_AF_INET6, &((struct ipv6hdr *)(ip6 + 1))->daddr);
	} else {
		return count(IDN_DECAP_PASS, TC_ACT_OK);
	}
	if (bpf_skb_adjust_room(skb, -room, BPF_ADJ_ROOM_MAC, 0))
		return count(IDN_DECAP_BAD, TC_ACT_SHOT);
	return count(IDN_DECAP_OK, TC_ACT_OK);
}

/*
 * TC egress: stamp the cookie into the TSval of a TCP segment sent from
 * an address in idn_ts_addrs. Left alone: segments without a timestamp,
 * SYNs and SYN+ACKs. A SYN+ACK's TSval must come back unchanged: Linux
 * (6.x) accepts the handshake's ACK only with a TSecr between the first
 * and the last TSval its SYN+ACKs carried (TSEcrRejected otherwise), and
 * a syncookie SYN+ACK encodes the SYN's options in the TSval's low bits.
 * Rounding up keeps every later stamped TSval at or above it (PAWS). The
 * TCP checksum is updated (bpf_l4_csum_replace leaves a CHECKSUM_PARTIAL
 * packet's to the device).
 */
SEC("tc")
int idn_stamp(struct __sk_buff *skb)
{
	__u32 zero = 0, *cookie = bpf_map_lookup_elem(&idn_ts_cfg, &zero);
	struct idn_ts_addr k = {};
	struct idn_tsbuf w;
	__u32 l4, olen, tsval, stamped, old_be, new_be;
	__u16 proto;
	__u8 th[20];
	int off;

	if (!cookie || !(*cookie & IDN_TS_CFG_ON))
		return TC_ACT_OK;
	if (bpf_skb_load_bytes(skb, 12, &proto, 2))
		return TC_ACT_OK;
	if (proto == bpf_htons(ETH_P_IP)) {
		struct iphdr ip;

		if (bpf_skb_load_bytes(skb, ETH_HLEN, &ip, sizeof(ip)) ||
		    ip.protocol != IPPROTO_TCP || (ip.frag_off & bpf_htons(0x3fff)))
			return TC_ACT_OK;
		if (ip.ihl < 5)
			return TC_ACT_OK;
		k.family = IDN_AF_INET;
		k.addr[0] = ip.saddr;
		l4 = ETH_HLEN + ip.ihl * 4;
	} else if (proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr ip6;

		if (bpf_skb_load_bytes(skb, ETH_HLEN, &ip6, sizeof(ip6)) ||
		    ip6.nexthdr != IPPROTO_TCP)
			return TC_ACT_OK;
		k.family = IDN_AF_INET6;
		__builtin_memcpy(k.addr, &ip6.saddr, 8);
		l4 = ETH_HLEN + sizeof(ip6);
	} else {
		return TC_ACT_OK;
	}
	if (!bpf_map_lookup_elem(&idn_ts_addrs, &k))
		return TC_ACT_OK;
	l4 &= 0xff;
	if (bpf_skb_load_bytes(skb, l4, th, sizeof(th)))
		return TC_ACT_OK;
	if (th[13] & 0x02)			/* SYN, SYN+ACK: see above */
		return TC_ACT_OK;
	olen = (th[12] >> 4) * 4;
	if (olen <= 20)
		return TC_ACT_OK;
	olen -= 20;
	if (olen < IDN_TCPOPT_TS_LEN || olen > IDN_TSOPT_SPACE)
		return TC_ACT_OK;
	w.len = olen;
	olen = ((olen - 1) & 0x3f) + 1;	/* 1..64 where the verifier sees it */
	if (bpf_skb_load_bytes(skb, l4 + 20, w.b, olen))
		return TC_ACT_OK;
	off = idn_tsopt_find(&w);
	if (off < 0 || off > IDN_TSOPT_SPACE - IDN_TCPOPT_TS_LEN)
		return TC_ACT_OK;
	tsval = idn_tsbuf_word(&w, off + 2);
	stamped = idn_ts_stamp(tsval, *cookie & IDN_TS_COOKIE_MASK);
	if (stamped == tsval)
		return count(IDN_DECAP_STAMP, TC_ACT_OK);
	old_be = bpf_htonl(tsval);
	new_be = bpf_htonl(stamped);
	if (bpf_skb_store_bytes(skb, l4 + 20 + off + 2, &new_be, 4, 0) ||
	    bpf_l4_csum_replace(skb, l4 + 16, old_be, new_be, 4))
		return TC_ACT_OK;
	return count(IDN_DECAP_STAMP, TC_ACT_OK);
}

char _license[] SEC("license") = "Dual BSD/GPL";
