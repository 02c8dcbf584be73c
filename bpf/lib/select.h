/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * select.h - choose the node for a new flow: filter, score, pick, with
 * the degradation ladder. This is DESIGN eq. 7 in integer microseconds:
 *
 *   J = ((a*T_net + b*T_queue + c*T_exec + d*T_state(a) + e*C_load
 *         + z*P_policy) >> 8) + T_wan       (weights Q8.8, struct idn_plan)
 *
 *   T_net    node.net_us
 *   T_queue  (node.pending_tokens + node.charged_tokens + others) *
 *            node.tok_ns / 1000: outstanding work, not queue length,
 *            counting what this router sent since the node's last
 *            telemetry and what the other routers are expected to have
 *            sent (idn_others_tokens(); see docs/architecture.md)
 *   T_exec   cand.exec_us + tokens * node.tok_ns / 1000 (the prompt's
 *            prefill at this node's rate)
 *   T_state  0 on the token's affinity node and without affinity, else
 *            re-creating the state there: recompute, tokens * node.tok_ns
 *            / 1000, or cand.state_us (migration) when cheaper or when
 *            the tokens are unknown
 *   C_load   node.load (permille, read as us)
 *   P_policy cand.policy_us
 *   T_wan    the price of a request crossing the WAN: on a node outside
 *            this router's region (IDN_NODE_F_WAN, set by idnd -R from the
 *            node's region), the bytes of the capability's mean prompt
 *            (plan.prompt_tokens * IDN_WAN_BYTES_PER_TOKEN; without a mean,
 *            the request's tokens) * plan.wan_ns_per_byte / 1000; else 0.
 *            One price per crossing, whatever the request's size (see
 *            idn_wan_cost()). A price, not a time: it
 *            ranks candidates but is left out of the SLO and budget tests,
 *            so it never sheds a request a remote node could serve in time
 *
 * tokens = 256 << size_class when the request gave a size class, else the
 * plan's prompt_tokens (the capability's mean): idn_req_tokens().
 *
 * Hard filters fail closed (enum idn_reject). Ties go to the candidate
 * with the highest hash of (token, node): rendezvous hashing, so a choice
 * stays put when other candidates come or go.
 *
 * A candidate is over its limits when its queue reached node.max_queue,
 * or J without T_wan exceeds the plan's SLO (IDN_REJ_SLO) or the budget.
 * A request none of whose candidates (of the plan or its fallback) would
 * meet the SLO even idle - J without queue, load and T_wan - is no overload: it
 * is served by the lowest J among those over the SLO only, not shed.
 *
 * Ladder when no feasible candidate is below its limits: the same
 * variant on another node is what the normal pick already does; then the
 * plan's fallback (cheaper variant) plan; then requests with a tier below
 * plan.shed_tier are shed (IDN_V_SHED), the others may overflow to a
 * node under twice its soft queue limit (IDN_V_OVERFLOW) or get
 * IDN_V_NOCAP. No feasible candidate at all (not deployed where allowed,
 * no plan) is a demand miss.
 *
 * Context-free; map access goes through IDN_NODE_GET / IDN_PLAN_GET, which
 * the BPF program maps to map lookups and userspace to its own tables.
 */
#ifndef __IDN_LIB_SELECT_H
#define __IDN_LIB_SELECT_H

#include "lib/compat.h"

#if IDN_USERSPACE
struct idn_env {
	const struct idn_node *(*node)(void *priv, __u32 id);
	const struct idn_plan *(*plan)(void *priv, const struct idn_plan_key *k);
	void *priv;
};
#define IDN_ENV_T struct idn_env
#define IDN_NODE_GET(env, id) ((env)->node((env)->priv, (id)))
#define IDN_PLAN_GET(env, k) ((env)->plan((env)->priv, (k)))
#define IDN_ENV_PARAM IDN_ENV_T *env,
#define IDN_ENV_ARG env,
#endif

/* The BPF side passes no environment to its global pass function. */
#ifndef IDN_ENV_PARAM
#define IDN_ENV_PARAM
#define IDN_ENV_ARG
#endif

#ifndef IDN_ENV_T
#error "define IDN_ENV_T, IDN_NODE_GET and IDN_PLAN_GET before select.h"
#endif

/*
 * Plan hint of a slot (struct idn_config plan_bloom, IDN_CFG_F_PLANS0):
 * IDN_PLAN_HINT_VALID | the slot's bloom byte, or 0 where the config does
 * not describe the slot (plans written by other means than
 * idn_plan_commit(): every lookup then tries the specific plan first).
 */
#define IDN_PLAN_HINT_VALID	0x100

IDN_INLINE __u16 idn_plan_hint(const struct idn_config *cfg, __u32 slot)
{
	slot &= 1;
	if (!(cfg->flags & (IDN_CFG_F_PLANS0 << slot)))
		return 0;
	return IDN_PLAN_HINT_VALID | cfg->plan_bloom[slot];
}

/* Has @cap no plan but its (any, any) one, as far as hint @plans knows? */
IDN_INLINE int idn_plan_only_any(__u32 plans, __u32 cap)
{
	return (plans & IDN_PLAN_HINT_VALID) && !(plans & IDN_PLAN_BLOOM_BIT(cap));
}

/* Result of a selection. */
struct idn_sel {
	__u32 node;		/* IDN_NODE_NONE unless forwarded */
	__u32 cost;		/* J of the chosen node */
	__u32 cap;		/* capability actually served (fallback differs) */
	__u32 generation;
	__u8 verdict;		/* enum idn_verdict */
	__u8 n_rc;		/* receipt candidates written */
	__u16 pad;
	__u32 charge;		/* tokens to charge the chosen node (idn_node_charge) */
};

/*
 * Inputs that stay fixed over one selection: the descriptor's fields by
 * value (no pointers, so the BPF pass function can be verified once as a
 * global function). Fill with idn_sel_in_init().
 */
struct idn_sel_in {
	__u64 token;
	__u32 cap;
	__u32 aff_node;		/* IDN_NODE_NONE: no affinity */
	__u16 slot;
	__u16 plans;		/* the slot's plan hint (idn_plan_hint()), 0 none */
	__u16 home_domain;
	__u16 budget;
	__u8 tier;
	__u8 policy;
	__u8 size_class;	/* IDN_SIZE_NONE: not given */
	__u8 family;		/* request's address family, IDN_AF_* */
	__u32 now_tick;		/* the decision's time, IDN_TICK_SHIFT */
};

IDN_INLINE void idn_sel_in_init(struct idn_sel_in *in, const struct idn_desc *d,
				__u32 aff_node, __u32 slot, __u16 home_domain,
				__u8 family, __u32 now_tick)
{
	in->now_tick = now_tick;
	in->token = d->token;
	in->cap = d->cap;
	in->aff_node = aff_node;
	in->slot = slot & 1;
	in->plans = 0;
	in->home_domain = home_domain;
	in->budget = d->budget;
	in->tier = d->tier;
	in->policy = d->policy;
	in->size_class = (d->flags & IDN_DF_SIZE) ? (d->size_class & 15) : IDN_SIZE_NONE;
	in->family = family;
}

/* Best candidates of one pass over one plan. */
struct idn_pass {
	__u32 ok_node, ok_cost;		/* below limits */
	__u64 ok_hash;
	__u32 over_node, over_cost;	/* feasible, under the hard limit */
	__u64 over_hash;
	__u32 slow_node, slow_cost;	/* over the SLO even idle, else below limits */
	__u64 slow_hash;
	__u32 n_feasible;
	__u32 n_idle_ok;		/* feasible ones that would meet the SLO idle */
	__u32 want_variant;		/* in: 0 = any */
	__u8 from_fallback;		/* in: pass over the fallback plan */
	__u8 n_rc;			/* in/out: receipt entries used */
	__u16 pad;
};

IDN_INLINE __u8 idn_cand_reject(const struct idn_node *n, const struct idn_cand *c,
				const struct idn_plan *pl, const struct idn_sel_in *in,
				__u32 want_variant)
{
	__u8 pol = in->policy;

	if (!n || !(n->flags & IDN_NODE_F_VALID))
		return IDN_REJ_NO_NODE;
	if (n->health != IDN_HEALTH_UP)
		return IDN_REJ_HEALTH;
	if (n->trust < IDN_POL_TRUST(pol))
		return IDN_REJ_TRUST;
	if (IDN_POL_PRIVACY(pol) >= IDN_PRIV_CONFIDENTIAL &&
	    !(n->flags & IDN_NODE_F_CONFIDENTIAL))
		return IDN_REJ_PRIVACY;
	if (IDN_POL_SCOPE(pol) == IDN_SCOPE_HOME && n->domain != in->home_domain)
		return IDN_REJ_SCOPE;
	if (IDN_POL_SCOPE(pol) == IDN_SCOPE_PLAN &&
	    (n->domain >= 32 || !(pl->domain_mask & (1U << (n->domain & 31)))))
		return IDN_REJ_SCOPE;
	if (want_variant && c->variant != want_variant)
		return IDN_REJ_VARIANT;
	if (!(n->flags & (in->family == IDN_AF_INET6 ? IDN_NODE_F_LOC6 : IDN_NODE_F_LOC4)))
		return IDN_REJ_FAMILY;
	return IDN_REJ_NONE;
}

/* idn_cost - J of one feasible candidate, saturated to 32 bits. */
/*
 * x / 1000 without a divide instruction in the common case: BPF has no
 * multiply-high, so the compiler emits a real 64-bit division (tens of
 * cycles, twice per candidate). For x < 2^32, (x * ceil(2^38 / 1000)) >> 38
 * is exact; larger values (absurd loads) take the slow, exact path.
 */
IDN_INLINE __u64 idn_div1000(__u64 x)
{
	if (likely(x <= 0xffffffffULL))
		return (x * 274877907ULL) >> 38;
	return x / 1000;
}

/*
 * idn_req_tokens - the prefill tokens a request is expected to bring: its
 * size class (256 << s), else the plan's mean prompt (0: unknown).
 */
IDN_INLINE __u32 idn_req_tokens(const struct idn_plan *pl, const struct idn_sel_in *in)
{
	if (in->size_class != IDN_SIZE_NONE)
		return 256U << (in->size_class & 15);
	return pl->prompt_tokens;
}

/*
 * T_state: nothing to re-create without affinity or on the node that
 * holds the state; elsewhere the cheaper of recomputing the prompt at
 * this node's prefill rate and the candidate's migration cost (0: none).
 * Unknown tokens leave the migration cost, the plan's only estimate.
 */
IDN_INLINE __u64 idn_state_cost(const struct idn_node *n, const struct idn_cand *c,
				 const struct idn_sel_in *in, __u32 tokens)
{
	__u64 recompute;

	if (in->aff_node == IDN_NODE_NONE || c->node == in->aff_node)
		return 0;
	if (!tokens)
		return c->state_us;
	recompute = idn_div1000((__u64)tokens * n->tok_ns);
	if (c->state_us && c->state_us < recompute)
		return c->state_us;
	return recompute > 0xffffffffULL ? 0xffffffffULL : recompute;
}

/*
 * T_wan: the price of crossing the WAN when the node is outside this
 * router's region; 0 in the region, without a price or without tokens.
 * The bytes priced are a mean prompt's (plan.prompt_tokens), the same for
 * every request: the request's own size enters every candidate's T_exec
 * alike, and a price that grew with it would hold a long prompt (the kind
 * that sets the TTFT tail) in a queue seconds longer than a mean one
 * before it crosses, while a short one would cross for a few ms of
 * expected wait - less than the error of a router's view of a far node
 * that other regions' routers fill unseen. A fixed price per crossing
 * crosses when the wait saved is worth a mean request's bytes.
 * @tokens (the request's) only without a mean prompt.
 * At most 2^23 tokens * 4 * 2^32 ns: no wrap in 64 bits.
 */
IDN_INLINE __u64 idn_wan_cost(const struct idn_node *n, const struct idn_plan *pl,
			      __u32 tokens)
{
	__u64 t;

	if (!(n->flags & IDN_NODE_F_WAN) || !pl->wan_ns_per_byte)
		return 0;
	if (pl->prompt_tokens)
		tokens = pl->prompt_tokens;
	t = idn_div1000((__u64)tokens * IDN_WAN_BYTES_PER_TOKEN * pl->wan_ns_per_byte);
	return t > 0xffffffffULL ? 0xffffffffULL : t;
}

/*
 * idn_cost_idle - J of one feasible candidate, saturated to 32 bits (the
 * rank); in *time J without T_wan (what the SLO and budget tests compare)
 * and in *idle that time with no queue and no load (T_queue and C_load
 * 0): the part no wait can remove, for the SLO test.
 */
/*
 * idn_others_tokens - the prefill tokens other routers are expected to
 * have sent @n since its last datagram: their rate then (idn_tele_load())
 * times the ticks since, at most the node's interval (a late datagram
 * does not make the estimate grow without bound). < 2^32 * 2^16 >> 16.
 */
IDN_INLINE __u32 idn_others_tokens(const struct idn_node *n, __u32 now_tick)
{
	__u32 dt = now_tick - n->tele_tick;

	if (dt > n->others_span)
		dt = n->others_span;
	return ((__u64)n->others_rate * dt) >> 16;
}

IDN_INLINE __u32 idn_cost_idle(const struct idn_node *n, const struct idn_cand *c,
			       const struct idn_plan *pl, const struct idn_sel_in *in,
			       __u32 *time, __u32 *idle)
{
	__u64 t_queue = idn_div1000(((__u64)n->pending_tokens + n->charged_tokens +
				     idn_others_tokens(n, in->now_tick)) * n->tok_ns);
	__u32 tokens = idn_req_tokens(pl, in);
	__u64 t_exec = c->exec_us + idn_div1000((__u64)tokens * n->tok_ns);
	__u64 t_state = idn_state_cost(n, c, in, tokens);
	__u64 j, j0;

	/* each term <= 2^32 * 2^16, so the sum of six cannot wrap */
	if (t_queue > 0xffffffffULL)
		t_queue = 0xffffffffULL;
	if (t_exec > 0xffffffffULL)
		t_exec = 0xffffffffULL;
	j0 = (__u64)pl->weight[IDN_W_NET] * n->net_us +
	     (__u64)pl->weight[IDN_W_EXEC] * t_exec +
	     (__u64)pl->weight[IDN_W_STATE] * t_state +
	     (__u64)pl->weight[IDN_W_POLICY] * c->policy_us;
	j = j0 + (__u64)pl->weight[IDN_W_QUEUE] * t_queue +
	    (__u64)pl->weight[IDN_W_LOAD] * n->load;
	j0 >>= 8;
	j >>= 8;
	*idle = j0 > 0xffffffffULL ? 0xffffffffU : (__u32)j0;
	*time = j > 0xffffffffULL ? 0xffffffffU : (__u32)j;
	/* T_wan last: fewer values live across the sum (the 6.1 verifier's
	 * 512-byte limit on the stacks of the whole call chain) */
	j += idn_wan_cost(n, pl, tokens);
	return j > 0xffffffffULL ? 0xffffffffU : (__u32)j;
}

IDN_INLINE __u32 idn_cost(const struct idn_node *n, const struct idn_cand *c,
			  const struct idn_plan *pl, const struct idn_sel_in *in)
{
	__u32 time, idle;

	return idn_cost_idle(n, c, pl, in, &time, &idle);
}

/* Above this a node's charge stops growing (no wrap, whatever the burst). */
#define IDN_CHARGE_MAX		0x80000000U

/*
 * idn_node_charge - count a new flow's expected prefill (struct idn_sel
 * charge) on the node it was sent to, until the node's next telemetry
 * datagram, which counts it itself, resets the charge (idn_tele_apply()).
 * An atomic add: CPUs deciding at the same time all count. Not called by
 * explanations (route get); the caller owns @n's memory (map value in BPF).
 */
IDN_INLINE void idn_node_charge(struct idn_node *n, __u32 tokens)
{
	if (tokens && n->charged_tokens < IDN_CHARGE_MAX)
		__sync_fetch_and_add(&n->charged_tokens, tokens);
	/* this router's share of what the node's next datagram admits */
	__sync_fetch_and_add(&n->charged_reqs, 1);
}

IDN_INLINE __u64 idn_tie_hash(__u64 token, __u32 node)
{
	return idn_mix64(token ^ ((__u64)node * 0x9e3779b97f4a7c15ULL));
}

/*
 * Keep (node, cost) if it beats the best so far; ties by rendezvous hash.
 * The hashes are computed for ties only (*best_hash 0: not yet computed;
 * a hash that happens to be 0 is just computed again).
 */
IDN_INLINE void idn_better(__u32 *best, __u32 *best_cost, __u64 *best_hash,
			   __u32 node, __u32 cost, __u64 token)
{
	__u64 h = 0;

	if (cost > *best_cost)
		return;
	if (cost == *best_cost && *best != IDN_NODE_NONE) {
		h = idn_tie_hash(token, node);
		if (!*best_hash)
			*best_hash = idn_tie_hash(token, *best);
		if (h <= *best_hash)
			return;
	}
	*best = node;
	*best_cost = cost;
	*best_hash = h;
}

/*
 * idn_plan_pass - one pass over a plan's candidates.
 * @rc: receipt to fill from index ps->n_rc on, or NULL.
 * In BPF this is a global function, verified once on its own: its
 * arguments are plain memory, which keeps the verifier's state count low.
 */
IDN_SUBPROG int idn_plan_pass(IDN_ENV_PARAM const struct idn_plan *pl,
			      const struct idn_sel_in *in, struct idn_pass *ps,
			      struct idn_receipt *rc)
{
	__u32 want_variant, n_cand;

	if (!pl || !in || !ps)
		return 0;
	want_variant = ps->want_variant;
	n_cand = pl->n_cand;

	IDN_NO_UNROLL
	for (__u32 i = 0; i < IDN_MAX_CAND; i++) {
		const struct idn_cand *c;
		const struct idn_node *n;
		__u32 cost = 0, time, idle, hard_ok;
		__u8 rej;

		if (i >= n_cand)
			break;
		c = &pl->cand[i];
		n = c->node < IDN_MAX_NODES ? IDN_NODE_GET(env, c->node) : NULL;
		rej = idn_cand_reject(n, c, pl, in, want_variant);
		if (rej == IDN_REJ_NONE && n) {
			ps->n_feasible++;
			cost = idn_cost_idle(n, c, pl, in, &time, &idle);
			hard_ok = !n->max_queue || n->queue_depth < 2 * n->max_queue;
			if (n->max_queue && n->queue_depth >= n->max_queue)
				rej = IDN_REJ_OVERLOAD;
			else if (pl->slo_us && time > pl->slo_us)
				rej = IDN_REJ_SLO;
			else if (in->budget && time > (__u32)in->budget * 100)
				rej = IDN_REJ_BUDGET;
			if (pl->slo_us && idle <= pl->slo_us)
				ps->n_idle_ok++;
			else if (rej == IDN_REJ_SLO &&
				 !(in->budget && time > (__u32)in->budget * 100))
				idn_better(&ps->slow_node, &ps->slow_cost, &ps->slow_hash,
					   c->node, cost, in->token);
			if (rej == IDN_REJ_NONE)
				idn_better(&ps->ok_node, &ps->ok_cost, &ps->ok_hash,
					   c->node, cost, in->token);
			else if (hard_ok)
				idn_better(&ps->over_node, &ps->over_cost, &ps->over_hash,
					   c->node, cost, in->token);
		}
		if (rc) {
			__u32 k = ps->n_rc;

			if (k < IDN_MAX_CAND) {
				rc->cand[k].node = c->node;
				rc->cand[k].cost = cost;
				rc->cand[k].reject = rej;
				rc->cand[k].variant = c->variant;
				rc->cand[k].from_fallback = ps->from_fallback;
				rc->cand[k].pad = 0;
				ps->n_rc = k + 1;
			}
		}
	}
	return 0;
}

IDN_INLINE void idn_pass_init(struct idn_pass *ps, __u32 want_variant,
				__u8 from_fallback, __u8 n_rc)
{
	ps->want_variant = want_variant;
	ps->from_fallback = from_fallback;
	ps->n_rc = n_rc;
	ps->pad = 0;
	ps->ok_node = ps->over_node = ps->slow_node = IDN_NODE_NONE;
	ps->ok_cost = ps->over_cost = ps->slow_cost = 0xffffffffU;
	ps->ok_hash = ps->over_hash = ps->slow_hash = 0;
	ps->n_feasible = 0;
	ps->n_idle_ok = 0;
}

/*
 * The plan (cap, tier, policy) of the slot, else (cap, any, any); only the
 * second where the slot's hint says @cap has no plan of a specific tier or
 * policy (one hash lookup, not a miss and then a hit).
 */
IDN_INLINE const struct idn_plan *idn_plan_lookup(IDN_ENV_PARAM __u32 cap, __u8 tier,
						   __u8 policy, __u32 slot, __u32 plans)
{
	struct idn_plan_key k = { .cap = cap, .tier = tier, .policy = policy, .slot = slot & 1 };
	const struct idn_plan *pl;

	if (!idn_plan_only_any(plans, cap)) {
		pl = IDN_PLAN_GET(env, &k);
		if (pl)
			return pl;
	}
	k.tier = IDN_ANY;
	k.policy = IDN_ANY;
	return IDN_PLAN_GET(env, &k);
}

IDN_INLINE const struct idn_plan *idn_plan_find(IDN_ENV_PARAM __u32 cap,
						 const struct idn_sel_in *in)
{
	return idn_plan_lookup(IDN_ENV_ARG cap, in->tier, in->policy, in->slot, in->plans);
}

/*
 * idn_select - decide where a new flow goes.
 * @rc: receipt to fill (candidates), or NULL on the unsampled fast path.
 * Return: the verdict, also in out->verdict.
 * A global function in BPF, like idn_plan_pass(): verified once, and its
 * working set stays off the main program's stack.
 */
IDN_SUBPROG int idn_select(IDN_ENV_PARAM const struct idn_sel_in *in,
			   struct idn_sel *out, struct idn_receipt *rc)
{
	const struct idn_plan *pl, *fpl = NULL;
	struct idn_pass ps, fps;

	if (!in || !out)
		return IDN_V_ERROR;

	out->node = IDN_NODE_NONE;
	out->cost = 0;
	out->cap = in->cap;
	out->generation = 0;
	out->n_rc = 0;
	out->pad = 0;
	out->charge = 0;

	pl = idn_plan_find(IDN_ENV_ARG in->cap, in);
	if (!pl) {
		out->verdict = IDN_V_MISS_REJECT;
		return out->verdict;
	}
	out->generation = pl->generation;
	idn_pass_init(&ps, IDN_CAP_VARIANT(in->cap), 0, 0);
	idn_plan_pass(IDN_ENV_ARG pl, in, &ps, rc);
	fps.n_rc = ps.n_rc;
	if (ps.ok_node != IDN_NODE_NONE) {
		out->node = ps.ok_node;
		out->cost = ps.ok_cost;
		out->verdict = ps.ok_node == in->aff_node ? IDN_V_AFFINITY : IDN_V_NEW;
		out->charge = idn_req_tokens(pl, in);
		goto done;
	}

	/* Ladder step 2: the plan's cheaper variant. */
	idn_pass_init(&fps, IDN_CAP_VARIANT(pl->fallback_cap), 1, ps.n_rc);
	if (pl->fallback_cap && pl->fallback_cap != in->cap)
		fpl = idn_plan_find(IDN_ENV_ARG pl->fallback_cap, in);
	if (fpl) {
		idn_plan_pass(IDN_ENV_ARG fpl, in, &fps, rc);
		if (fps.ok_node != IDN_NODE_NONE) {
			out->node = fps.ok_node;
			out->cost = fps.ok_cost;
			out->cap = pl->fallback_cap;
			out->verdict = IDN_V_FALLBACK;
			out->charge = idn_req_tokens(fpl, in);
			goto done;
		}
	}

	/* Step 3: nothing below its limits. */
	if (ps.n_feasible + fps.n_feasible == 0) {
		out->verdict = IDN_V_MISS_REJECT;
		goto done;
	}
	/* no node would meet the SLO even idle: no overload, serve by J */
	if (ps.slow_node != IDN_NODE_NONE && !ps.n_idle_ok && !fps.n_idle_ok) {
		out->node = ps.slow_node;
		out->cost = ps.slow_cost;
		out->verdict = ps.slow_node == in->aff_node ? IDN_V_AFFINITY : IDN_V_NEW;
		out->charge = idn_req_tokens(pl, in);
		goto done;
	}
	if (in->tier < pl->shed_tier) {
		out->verdict = IDN_V_SHED;
		goto done;
	}
	if (ps.over_node != IDN_NODE_NONE) {
		out->node = ps.over_node;
		out->cost = ps.over_cost;
		out->verdict = IDN_V_OVERFLOW;
		out->charge = idn_req_tokens(pl, in);
	} else {
		out->verdict = IDN_V_NOCAP;
	}
done:
	out->n_rc = fps.n_rc;
	return out->verdict;
}

#endif /* __IDN_LIB_SELECT_H */
