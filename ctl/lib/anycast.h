/* SPDX-License-Identifier: GPL-2.0 */
/*
 * anycast.h - capability anycast (idnctl bgp, docs/federation.md): which
 * prefixes this router can serve now, computed from a snapshot of its maps,
 * and the BIRD include file that announces them.
 *
 * A capability is servable when its default plan (cap, any, any) of the
 * active slot has a candidate whose node is UP, or, that failing, the plan
 * of its fallback variant has (the dataplane's ladder step 2; followed
 * up to IDN_ANYCAST_FALLBACKS plans deep). A VIP address is announced
 * (/32, /128) while one of its VIP entries (ports) has a servable
 * capability; the descriptor prefix (config.prefix6, /48) while any plan's
 * capability is servable. Pure functions over the snapshot: no map access.
 */
#ifndef __IDN_CTL_ANYCAST_H
#define __IDN_CTL_ANYCAST_H

#include <stdbool.h>
#include <stddef.h>
#include <linux/types.h>

#include "libidn.h"

#define IDN_ANYCAST_FALLBACKS	4

struct idn_anycast_pfx {
	__u8 family;		/* IDN_AF_INET / IDN_AF_INET6 */
	__u8 len;		/* prefix length */
	__u8 desc;		/* 1: the descriptor prefix, else a VIP */
	__u32 addr[4];		/* network order */
	__u32 cap;		/* a servable capability behind it (0: several, desc) */
};

/*
 * Is cap servable on the snapshot? plans: the active slot's entries (any
 * order), nodes: IDN_MAX_NODES entries.
 */
bool idn_anycast_servable(const struct idn_plan_entry *plans, int n_plans,
			  const struct idn_node *nodes, __u32 cap);

/*
 * The announceable prefixes, sorted (family, address), one per address;
 * out: room for n_vips + 1. Returns the count.
 */
int idn_anycast_compute(const struct idn_plan_entry *plans, int n_plans,
			const struct idn_node *nodes, const struct idn_vip_entry *vips,
			int n_vips, const struct idn_config *cfg, struct idn_anycast_pfx *out);

/*
 * The BIRD 2 include file: static protocols NAME4 (ipv4) and NAME6 (ipv6)
 * holding one blackhole route per prefix. Returns the length written (as
 * snprintf: >= len means cut short) or -EINVAL for a bad name.
 */
int idn_anycast_render(const struct idn_anycast_pfx *p, int n, const char *name,
		       char *buf, size_t len);

/* "10.0.0.1/32", "2001:db8::/48" */
const char *idn_anycast_fmt(const struct idn_anycast_pfx *p, char *buf, size_t len);

#endif /* __IDN_CTL_ANYCAST_H */
