// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * idn_steer.bpf.c - the router's steering program, as XDP (fast path,
 * native on the ingress device) and as TC ingress (generic devices, and
 * packets re-injected by idn.ko). Both entries run the same body,
 * bpf/lib/steer.h; this file only names the attach points.
 */
#include "lib/steer.h"

SEC("xdp")
int idn_xdp(struct xdp_md *ctx)
{
	return idn_steer(ctx, IDN_HOOK_XDP);
}

/*
 * TC ingress. A demand miss already decided by XDP on this device arrives
 * with struct idn_meta in front of the packet: turn it into the mark
 * idn.ko looks for, and its capability into skb->priority, instead of
 * steering the packet twice.
 */
SEC("tc")
int idn_tc(struct __sk_buff *skb)
{
	void *meta = (void *)(long)skb->data_meta;
	void *data = (void *)(long)skb->data;
	struct idn_meta *m = meta;

	if ((void *)(m + 1) <= data && m->magic == IDN_META_MAGIC) {
		skb->mark = IDN_MARK_MISS;
		skb->priority = m->cap;
		return TC_ACT_OK;
	}
	if (skb->len > 0 && bpf_skb_pull_data(skb, skb->len < 128 ? skb->len : 128))
		return TC_ACT_OK;
	return idn_steer(skb, IDN_HOOK_TC);
}

char _license[] SEC("license") = "Dual BSD/GPL";
