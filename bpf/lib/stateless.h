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
 *   0. (mid-flow segments) the node named by the TCP timestamp cookie the
 *      client echoes in TSecr (tsopt.h), when that node is a candidate of
 *      the flow's plans: exact, it is the node that sent the segment the
 *      client answers (idn_ts_check());
 *   1. the affinity node of the flow's token and capability class: the
 *      node this client's latest new flow of that class went to (a client
 *      without an option token has its token from its address, so its
 *      connections live there unless the node was overloaded);
 *   2. else the plan's stateless ring: bucket (flow hash mod IDN_SL_RING)
 *      goes to the candidate with the highest rendezvous weight for the
 *      bucket among all the plan's candidates (a function of the plan
 *      alone, so the dataplane keeps it in the plan entry: one byte read
 *      instead of 16 weights), when that node is usable;
 *   3. else highest-random-weight (rendezvous) hashing of the flow over the
 *      usable candidates of the active plan: a candidate's removal moves
 *      only the flows it had.
 * Nothing here writes a table but the ring's cache in the plan entry.
 *
 * Context-free; map access goes through IDN_NODE_GET / IDN_PLAN_GET (see
 * select.h), so the differential test runs this very code.
 */
#ifndef __IDN_LIB_STATELESS_H
#define __IDN_LIB_STATELESS_H

#include "lib/compat.h"
#include "lib/tsopt.h"
#include "lib/select.h"		/* idn_plan_lookup() */

/* What a stateless choice depends on (a struct: BPF passes 5 arguments). */
struct idn_sl_in {
	__u64 hash;		/* idn_flow_hash() */
	__u32 cap;
	__u32 aff_node;		/* IDN_NODE_NONE: no affinity entry */
	__u8 tier;
	__u8 policy;
	__u8 slot;
	__u8 family;
	__u16 plans;		/* the slot's plan hint (select.h idn_plan_hint()), 0 none */
	__u16 pad;
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

/* Rendezvous weight of node @id for hash @h. */
IDN_INLINE __u64 idn_hrw(__u64 h, __u32 id)
{
	return idn_mix64(h ^ ((__u64)id * 0x9e3779b97f4a7c15ULL));
}

/*
 * idn_sl_bucket - the ring's entry for bucket @b of plan @pl: 1 + the
 * index of the candidate with the highest rendezvous weight for the
 * bucket, usable or not (so the ring depends on the plan alone); 0 for
 * a plan without candidates.
 */
IDN_INLINE __u8 idn_sl_bucket(const struct idn_plan *pl, __u32 b)
{
	__u64 hb = idn_mix64((__u64)b + 0x5bd1e9955bd1e995ULL), best_w = 0, w;
	__u8 best = 0;

	IDN_UNROLL
	for (__u32 i = 0; i < IDN_MAX_CAND; i++) {
		if (i < pl->n_cand) {
			w = idn_hrw(hb, pl->cand[i].node);
			if (!best || w > best_w) {
				best = (__u8)(i + 1);
				best_w = w;
			}
		}
	}
	return best;
}

/*
 * idn_stateless_pick - the node for a packet the router keeps no state
 * for. Return: a node id, or IDN_NODE_NONE when neither the affinity node
 * nor any candidate of the plan (cap, tier, policy), else (cap, any, any),
 * is usable.
 */
IDN_SUBPROG __u32 idn_stateless_pick(IDN_ENV_PARAM const struct idn_sl_in *in)
{
	const struct idn_plan *pl;
	const struct idn_node *n;
	__u32 best = IDN_NODE_NONE, id, b;
	__u64 best_w = 0, w;
	__u8 c;

	if (!in)
		return IDN_NODE_NONE;
	if (in->aff_node != IDN_NODE_NONE) {
		n = IDN_NODE_GET(env, in->aff_node);
		if (idn_node_usable(n, in->family))
			return in->aff_node;
	}
	pl = idn_plan_lookup(IDN_ENV_ARG in->cap, in->tier, in->policy, in->slot, in->plans);
	if (!pl)
		return IDN_NODE_NONE;
	/* the ring: its bucket's candidate, computed at the bucket's first use */
	b = (__u32)in->hash & (IDN_SL_RING - 1);
	c = pl->sl_ring[b];
	if (!c) {
		c = idn_sl_bucket(pl, b);
#ifdef __bpf__
		/* the plan entry's own cache: a new plan entry starts empty */
		if (c)
			((struct idn_plan *)pl)->sl_ring[b] = c;
#endif
	}
	if (c && c <= pl->n_cand) {
		id = pl->cand[(c - 1) & (IDN_MAX_CAND - 1)].node;
		if (idn_node_usable(IDN_NODE_GET(env, id), in->family))
			return id;
	}
	/* its node is not usable: rendezvous over the usable candidates */
	/* unrolled, no early exit: no back-edge for older verifiers */
	IDN_UNROLL
	for (__u32 i = 0; i < IDN_MAX_CAND; i++) {
		if (i < pl->n_cand) {
			id = pl->cand[i].node;
			n = IDN_NODE_GET(env, id);
			w = idn_hrw(in->hash, id);
			if (idn_node_usable(n, in->family) && (best == IDN_NODE_NONE || w > best_w)) {
				best = id;
				best_w = w;
			}
		}
	}
	return best;
}

/* Is @id a candidate of plan @pl? (unrolled, no early exit: see above) */
IDN_INLINE int idn_plan_has(const struct idn_plan *pl, __u32 id)
{
	int has = 0;

	if (!pl)
		return 0;
	IDN_UNROLL
	for (__u32 i = 0; i < IDN_MAX_CAND; i++)
		if (i < pl->n_cand && pl->cand[i].node == id)
			has = 1;
	return has;
}

/*
 * The plan (cap, tier, policy) of @slot, else (cap, any, any); the hint
 * describes the active slot only.
 */
IDN_INLINE const struct idn_plan *idn_sl_plan(IDN_ENV_PARAM const struct idn_sl_in *in,
					      __u32 cap, __u8 slot)
{
	return idn_plan_lookup(IDN_ENV_ARG cap, in->tier, in->policy, slot,
			       (slot & 1) == (in->slot & 1) ? in->plans : 0);
}

/*
 * idn_ts_check - may the connection of a segment whose TSecr carries
 * cookie @id live on node @id? Only a node the router could have sent
 * the flow to counts: a candidate of the flow's plan in the active slot,
 * of its cheaper variant's plan, or of the plan in the other slot (the
 * generation before the last swap). A cookie naming anything else is an
 * echo of a TSval no IDN node stamped (a syncookie SYN+ACK, a node
 * without idn_stamp) or made up, and the caller falls back to
 * idn_stateless_pick().
 * Return: 1 the node is usable (send the segment there), -1 it is a
 * candidate but down, gone or without a locator of the family (the
 * connection lives there and cannot move: the node-down rule resets it),
 * 0 not a candidate.
 */
IDN_SUBPROG int idn_ts_check(IDN_ENV_PARAM const struct idn_sl_in *in, __u32 id)
{
	const struct idn_plan *pl;
	int has;

	if (!in || id >= IDN_MAX_NODES)
		return 0;
	pl = idn_sl_plan(IDN_ENV_ARG in, in->cap, in->slot);
	has = idn_plan_has(pl, id);
	if (!has && pl && pl->fallback_cap)
		has = idn_plan_has(idn_sl_plan(IDN_ENV_ARG in, pl->fallback_cap, in->slot), id);
	if (!has)
		has = idn_plan_has(idn_sl_plan(IDN_ENV_ARG in, in->cap, in->slot ^ 1), id);
	if (!has)
		return 0;
	return idn_node_usable(IDN_NODE_GET(env, id), in->family) ? 1 : -1;
}

#endif /* __IDN_LIB_STATELESS_H */
