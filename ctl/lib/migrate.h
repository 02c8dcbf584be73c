/* SPDX-License-Identifier: GPL-2.0 */
/*
 * migrate.h - eq. 8's migration decision: move a session's cached state to
 * the node its next turn will be served from, or let that node recompute
 * it (and the old copy age out). Header-only and free of I/O, so idnd
 * (ctl/idnd/migrate.c) and the simulator (tools/eval) decide with the same
 * code. Written out in docs/controller.md, "Migration decisions (eq. 8)".
 *
 * For one state descriptor S on a node that is now the wrong place (busy,
 * draining, about to be declared down, far from the client's region) and a
 * candidate destination j, in microseconds of one client's latency:
 *
 *   gain      = P_hit * dL          the expected prefill time the moved
 *                                   blocks save on the next turn at j:
 *                                   S.value_us (sum over its blocks of
 *                                   P_reuse(b) * C_saved), or S.reuse *
 *                                   S.tokens * prefill_us_per_token
 *   transfer  = w_net * max(0, S.migration_us + T_net(i, j) - W(j))
 *                                   the agent's own estimate of moving S
 *                                   (setup + bytes / link) plus the path
 *                                   between the two nodes, less what the
 *                                   request waits at j anyway (pull on
 *                                   miss: the transfer overlaps its
 *                                   queueing; 0 for a migration)
 *   storage   = w_store * S.size / 2^20 * P_evict(j)
 *                                   what the blocks displace at j (its KV
 *                                   use as the chance they push out
 *                                   something else), per MiB
 *   privacy   = 0 for public state; w_priv for tenant or session state
 *                                   (it moves, within its scope only);
 *                                   never for hardware-bound state
 *
 *   move      when gain - transfer - storage - privacy > 0 (recompute's
 *             benefit is 0: the next turn pays dL at j either way) and the
 *             destination may hold the state's scope;
 *   recompute otherwise (the old copy is left to the source's eviction:
 *             "drop" is what its cache does with it).
 */
#ifndef __IDN_CTL_MIGRATE_H
#define __IDN_CTL_MIGRATE_H

#include <stdbool.h>
#include <stdint.h>

enum mig_scope { MIG_PUBLIC, MIG_TENANT, MIG_SESSION, MIG_HARDWARE };

enum mig_verdict {
	MIG_MOVE,
	MIG_RECOMPUTE,		/* not worth it */
	MIG_NEVER,		/* hardware-bound, or no destination may hold it */
};

/* the weights (idnd: --mig-* options; defaults below) */
struct mig_weights {
	double w_net;		/* per us of transfer and path */
	double w_store;		/* us per MiB displaced at the destination */
	double w_priv;		/* us for moving tenant/session state at all */
};

#define MIG_W_NET_DEFAULT	1.0
#define MIG_W_STORE_DEFAULT	50.0
#define MIG_W_PRIV_DEFAULT	1000.0

/*
 * When and how often (idnd's scan, ctl/idnd/migrate.c, and the simulator,
 * tools/eval/sim.c): a node is busy at this heartbeat load (permille;
 * idnd --migrate-busy); a token is not looked at again for MIG_COOL_S
 * seconds after a decision, MIG_RETRY_S after a failed move and
 * MIG_MOVED_HOLD_S after a move (its old copy stays on the source);
 * MIG_PREFILL_US converts a descriptor's tokens to time when it carries
 * no value_us.
 */
#define MIG_BUSY_DEFAULT	900
#define MIG_COOL_S		10.0
#define MIG_RETRY_S		1.0
#define MIG_MOVED_HOLD_S	300.0
#define MIG_PREFILL_US		17.25

static inline void mig_weights_default(struct mig_weights *w)
{
	w->w_net = MIG_W_NET_DEFAULT;
	w->w_store = MIG_W_STORE_DEFAULT;
	w->w_priv = MIG_W_PRIV_DEFAULT;
}

/* one descriptor S, as the agent reported it */
struct mig_state {
	enum mig_scope scope;
	double reuse;		/* mean P_reuse of its blocks, 0..1 */
	double value_us;	/* sum of P_reuse(b) * C_saved; 0: use reuse * tokens */
	uint64_t tokens, size;	/* prefix tokens, bytes */
	int64_t migration_us;	/* the agent's estimate; -1: never (hardware-bound) */
};

/* the candidate destination, seen from the source */
struct mig_dest {
	double net_us;		/* T_net between source and destination */
	double kv_use;		/* its KV cache use, 0..1: P_evict of what is there */
	bool scope_ok;		/* it may hold S's scope (tenant's own node, trust) */
	/*
	 * the time the request waits there anyway (pull on miss: its queue,
	 * the outstanding prefill at its rate), which the transfer overlaps:
	 * only what the transfer takes beyond it delays the turn. 0: none
	 * (a migration ahead of the next turn)
	 */
	double wait_us;
};

struct mig_eval {
	enum mig_verdict verdict;
	double gain_us, transfer_us, storage_us, privacy_us, net_us;	/* net = the sum */
};

/*
 * eq. 8 for one (S, destination). prefill_us_per_token converts tokens to
 * time when the descriptor carries no value_us. Returns the verdict; *ev
 * (optional) gets the terms, for the decision record and the docs.
 */
static inline enum mig_verdict mig_decide(const struct mig_state *s, const struct mig_dest *d,
					  const struct mig_weights *w,
					  double prefill_us_per_token, struct mig_eval *ev)
{
	struct mig_eval e = { .verdict = MIG_NEVER };
	double p = s->reuse < 0 ? 0 : s->reuse > 1 ? 1 : s->reuse;
	double kv = d->kv_use < 0 ? 0 : d->kv_use > 1 ? 1 : d->kv_use;

	/* hardware-bound never moves; nor anything the destination may not hold */
	if (s->scope == MIG_HARDWARE || s->migration_us < 0 || !d->scope_ok)
		goto out;
	e.gain_us = s->value_us > 0 ? s->value_us : p * (double)s->tokens * prefill_us_per_token;
	e.transfer_us = (double)s->migration_us + d->net_us - (d->wait_us > 0 ? d->wait_us : 0);
	e.transfer_us = w->w_net * (e.transfer_us > 0 ? e.transfer_us : 0);
	e.storage_us = w->w_store * (double)s->size / 1048576.0 * kv;
	e.privacy_us = s->scope == MIG_PUBLIC ? 0 : w->w_priv;
	e.net_us = e.gain_us - e.transfer_us - e.storage_us - e.privacy_us;
	e.verdict = e.net_us > 0 ? MIG_MOVE : MIG_RECOMPUTE;
out:
	if (ev)
		*ev = e;
	return e.verdict;
}

/*
 * Pull on miss: a request whose token another node holds state for was
 * steered to node j (the router judged the holder too loaded); j's agent
 * asks idnd, which decides with eq. 8 whether the holder pushes the
 * blocks to j before j prefills (docs/controller.md "Pull on miss").
 * The request is already at j, so P_hit is 1: the gain is the prefill
 * time at j of the blocks j lacks that the holder's descriptor d has,
 * min(lack, d.blocks) blocks; size and migration cost are d's in that
 * proportion (the agent's link model is linear in bytes). s gets the
 * state eq. 8 then weighs (mig_decide()), with the destination's wait_us
 * its expected queueing (the request is held in its place while the
 * blocks come: only the transfer beyond that wait delays it); the return
 * is the blocks counted, 0: nothing to pull (s then never moves).
 *
 *   d              the holder's descriptor (scope, tokens, size, blocks,
 *                  migration_us as reported)
 *   d_blocks       its blocks
 *   lack           blocks of the request's prompt j does not hold
 *   us_per_token   j's prefill rate (0: MIG_PREFILL_US)
 */
static inline uint64_t mig_pull_state(struct mig_state *s, const struct mig_state *d,
				      uint64_t d_blocks, uint64_t lack, double us_per_token)
{
	uint64_t n = lack < d_blocks ? lack : d_blocks;
	double f = d_blocks ? (double)n / (double)d_blocks : 0;

	*s = *d;
	s->reuse = 1;
	s->tokens = (uint64_t)((double)d->tokens * f + 0.5);
	s->size = (uint64_t)((double)d->size * f + 0.5);
	s->value_us = (double)s->tokens * (us_per_token > 0 ? us_per_token : MIG_PREFILL_US);
	if (d->migration_us >= 0)
		s->migration_us = (int64_t)((double)d->migration_us * f + 0.5);
	if (!n) {
		s->migration_us = -1;	/* nothing to pull: mig_decide() says never */
		s->value_us = 0;
	}
	return n;
}

/*
 * How long the asking agent waits for pulled blocks before it prefills
 * without them: twice the whole transfer (migration_us + T_net, not the
 * part beyond the wait eq. 8 counts) plus MIG_PULL_SLACK_US (idnd's order
 * to the holder, a queued move before it).
 */
#define MIG_PULL_SLACK_US	50000.0

static inline double mig_pull_wait_us(double transfer_us)
{
	return 2 * transfer_us + MIG_PULL_SLACK_US;
}

static inline const char *mig_verdict_name(enum mig_verdict v)
{
	return v == MIG_MOVE ? "move" : v == MIG_RECOMPUTE ? "recompute" : "never";
}

#endif /* __IDN_CTL_MIGRATE_H */
