// SPDX-License-Identifier: GPL-2.0
/*
 * idn_pass.bpf.c - XDP_PASS, nothing else. Test beds attach it to the veth
 * peers of the router (client side and node side): frames sent there with
 * XDP_TX or bpf_redirect() are only taken by a veth whose peer runs an XDP
 * program (see docs and PITFALLS); without one they vanish uncounted.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

SEC("xdp")
int idn_pass(struct xdp_md *ctx)
{
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
