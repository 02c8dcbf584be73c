/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * stateless.h - where a packet goes when the router keeps no state for
 * it (docs/architecture.md, "State only for real connections"):
 *   - a TCP segment that is not a SYN and has no connection entry (the
 *     table was flushed, or evicted the entry);
 *   - a new flow above the flood guard's rate.
 * The choice is a function of the flow and of the tables the control plane
 * and past new flows wrote - never of load - so every segment of one
 * connection lands on the same node, packet after packet:
 *   1. the affinity node of the flow's token and capability class: the
 *      node this client's latest new flow of that class went to (a client
 *      without an option token has its token from its address, so its
 *      connections live there unless the node was overloaded);
 *   2. else highest-random-weight (rendezvous) hashing of the flow over the
 *      usable candidates of the active plan: a candidate's removal moves
 *      only the flows it had.
 * Nothing here writes a table.
 *
 * Context-free; map access goes through IDN_NODE_GET / IDN_PLAN_GET (see
 * select.h), so the differential test runs this very code.
 */
#ifndef __IDN_LIB_STATELESS_H
#define __IDN_LIB_STATELESS_H

#include "lib/compat.h"

/* What a stateless choice depends on (a struct: BPF passes 5 arguments). */
struct idn_sl_in {
	__u64 hash;		/* idn_flow_hash() */
	__u32 cap;
	__u32 aff_node;		/* IDN_NODE_NONE: no affinity entry */
	__u8 tier;
	__u8 policy;
	__u8 slot;
	__u8 family;
	__u32 pad;
};

/* A hash of the 5-tuple (both directions differ; only one is seen). */
IDN_INLINE __u64 idn_flow_hash(const struct idn_flow_key *f)
{
	__u64 h = ((__u64)f->saddr[0] << 32 | f->saddr[1]) ^ idn_mix64((__u64)f->saddr[2] << 32 |
								   f->saddr[3]);

	h = idn_mix64(h ^ ((__u64)f->daddr[0] << 32 | f->daddr[1]));
	h = idn_mix64(h ^ ((__u64)f->daddr[2] << 32 | f->daddr[3]));
	return idn_mix64(h ^ ((__u64)f->sport << 32 | (__u64)f->dport << 16 | f->proto));
}

/* May an existing connection's segments go to @n (family @family)? */
IDN_INLINE int idn_node_usable(const struct idn_node *n, __u8 family)
{
	return n && (n->flags & IDN_NODE_F_VALID) &&
	       (n->flags & (family == IDN_AF_INET6 ? IDN_NODE_F_LOC6 : IDN_NODE_F_LOC4)) &&
	       (n->health == IDN_HEALTH_UP || n->health == IDN_HEALTH_DRAIN);
}

/*
 * idn_stateless_pick - the node for a packet the router keeps no state
 * for. Return: a node id, or IDN_NODE_NONE when neither the affinity node
 * nor any candidate of the plan (cap, tier, policy), else (cap, any, any),
 * is usable.
 */
IDN_SUBPROG __u32 idn_stateless_pick(IDN_ENV_PARAM const struct idn_sl_in *in)
{
	struct idn_plan_key k = {};
	const struct idn_plan *pl;
	const struct idn_node *n;
	__u32 best = IDN_NODE_NONE, id;
	__u64 best_w = 0, w;

	if (!in)
		return IDN_NODE_NONE;
	if (in->aff_node != IDN_NODE_NONE) {
		n = IDN_NODE_GET(env, in->aff_node);
		if (idn_node_usable(n, in->family))
			return in->aff_node;
	}
	k.cap = in->cap;
	k.tier = in->tier;
	k.policy = in->policy;
	k.slot = in->slot;
	pl = IDN_PLAN_GET(env, &k);
	if (!pl) {
		k.tier = IDN_ANY;
		k.policy = IDN_ANY;
		pl = IDN_PLAN_GET(env, &k);
	}
	if (!pl)
		return IDN_NODE_NONE;
	/* unrolled, no early exit: no back-edge for older verifiers */
	IDN_UNROLL
	for (__u32 i = 0; i < IDN_MAX_CAND; i++) {
		if (i < pl->n_cand) {
			id = pl->cand[i].node;
			n = IDN_NODE_GET(env, id);
			w = idn_mix64(in->hash ^ ((__u64)id * 0x9e3779b97f4a7c15ULL));
			if (idn_node_usable(n, in->family) && (best == IDN_NODE_NONE || w > best_w)) {
				best = id;
				best_w = w;
			}
		}
	}
	return best;
}

#endif /* __IDN_LIB_STATELESS_H */
