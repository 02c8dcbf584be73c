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
 */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/in.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include <linux/idn.h>

enum idn_decap_stat {
	IDN_DECAP_OK = 0,	/* decapsulated */
	IDN_DECAP_PASS,		/* not encapsulated: passed */
	IDN_DECAP_BAD,		/* encapsulated but malformed: dropped */
	IDN_DECAP_MAX,
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, IDN_DECAP_MAX);
	__type(key, __u32);
	__type(value, __u64);
} idn_decap_stats SEC(".maps");

static __always_inline int count(__u32 what, int act)
{
	__u64 *c = bpf_map_lookup_elem(&idn_decap_stats, &what);

	if (c)
		(*c)++;
	return act;
}

SEC("tc")
int idn_decap(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	int room;

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
	} else if (eth->h_proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6 = (void *)(eth + 1);

		if ((void *)(ip6 + 1) > end || ip6->nexthdr != IPPROTO_IPV6)
			return count(IDN_DECAP_PASS, TC_ACT_OK);
		if ((void *)(ip6 + 1) + sizeof(struct ipv6hdr) > end)
			return count(IDN_DECAP_BAD, TC_ACT_SHOT);
		room = sizeof(struct ipv6hdr);
	} else {
		return count(IDN_DECAP_PASS, TC_ACT_OK);
	}
	if (bpf_skb_adjust_room(skb, -room, BPF_ADJ_ROOM_MAC, 0))
		return count(IDN_DECAP_BAD, TC_ACT_SHOT);
	return count(IDN_DECAP_OK, TC_ACT_OK);
}

char _license[] SEC("license") = "Dual BSD/GPL";
