/* SPDX-License-Identifier: GPL-2.0 */
/*
 * placement.h - the placement problem of DESIGN eq. 3 and its solvers.
 *
 * What belongs here: the instance (capabilities with memory size, policy
 * and demand per region; nodes with memory budget, region, domain, trust),
 * the cost model, the heuristic (placement.c), the exact ILP on CBC and the
 * LP bound on GLPK (placement_exact.c), and a generator of random
 * instances for tests and benchmarks (placement_gen.c).
 * What does not: storage, HTTP, maps (idnd's other files).
 *
 * Model. x[i][j] = 1 when capability i is resident on node j; each demand
 * (i, r) is served by the cheapest open node of i, or left unserved at a
 * penalty. Minimise
 *   sum_{i,r} d[i][r] * (lat(r, j) + mu * wan(r, j))      latency + network
 *   + sum_{x[i][j]=1} (lambda * deploy(i, j) + nu * risk(i, j))
 *   + sum_{unserved} d[i][r] * unserved
 * subject to sum_i mem[i] x[i][j] <= mem[j] and the hard constraints of
 * policy and compatibility: node up, trust >= cap.min_trust, privacy >=
 * confidential needs a confidential node, node domain in cap.domain_mask
 * (0 = any), node runtime in cap.runtime_mask (0 = any).
 * lat(r, j) = region_lat[r][region j] + node.extra_ms; wan = 1 across
 * regions; deploy(i, j) = mem[i] unless (i, j) was already placed (prev);
 * risk(i, j) = 7 - trust[j].
 */
#ifndef __IDN_PLACEMENT_H
#define __IDN_PLACEMENT_H

#include <stdbool.h>
#include <stdint.h>

struct pl_cap {
	uint32_t id;		/* capability label (opaque to the solver) */
	double mem;		/* GB */
	uint8_t min_trust;	/* 0..7 */
	uint8_t privacy;	/* enum idn_privacy */
	uint32_t domain_mask;	/* allowed node domains, 0 = any */
	uint32_t runtime_mask;	/* allowed node runtimes, 0 = any */
	double *demand;		/* [n_regions], requests/s */
};

struct pl_node {
	uint32_t id;		/* node id (opaque to the solver) */
	double mem;		/* GB budget */
	double extra_ms;	/* access latency added to the region latency */
	uint16_t region;
	uint16_t domain;	/* 0..31 */
	uint8_t trust;		/* 0..7 */
	uint8_t runtime;	/* 0..31 */
	bool confidential;
	bool up;
	/* draining (idnd: the operator's drain): it keeps the placements of
	 * prev it has, nothing new is placed there */
	bool drain;
};

struct pl_pair {
	int cap, node;		/* indexes into caps[] / nodes[] */
};

struct pl_inst {
	int n_caps, n_nodes, n_regions;
	struct pl_cap *caps;
	struct pl_node *nodes;
	double *region_lat;	/* [n_regions * n_regions], ms */
	double lambda, mu, nu;	/* weights of deploy, network, risk */
	double unserved;	/* cost per unit of unserved demand */
	/* previous placement: no deploy cost, and the warm start */
	const struct pl_pair *prev;
	int n_prev;
};

struct pl_sol {
	struct pl_pair *x;	/* placements, sorted by (cap, node) */
	int n;
	double cost;		/* objective */
	double lat, net, deploy, risk, unserved_demand;
	bool optimal;		/* exact solver proved optimality */
	double bound;		/* exact/LP: best lower bound */
	double seconds;
	/* heuristic: what it did (0 for the exact solver) */
	long evals;		/* gain evaluations in the lazy greedy */
	int greedy_adds;	/* placements opened by the greedy */
	int ls_passes, ls_moves; /* local search passes, improving moves */
	int ils_kicks, ils_wins; /* iterated local search kicks, improvements */
	long n_cand;		/* candidates considered, all capabilities */
};

struct pl_opts {
	int k_per_region;	/* candidate pruning: live candidates per demand region,
				 * k by unit cost and k/2 by risk (0: 8) */
	int max_passes;		/* local search passes (0: 50) */
	double time_limit;	/* seconds, 0 = none */
	bool no_warm;		/* ignore inst->prev as a start (deploy costs still apply) */
	bool no_ils;		/* no iterated local search on small instances */
	int ils_iters;		/* its kicks (0: 3000 on 1,000 (cap, node) pairs
				 * or fewer, 300 from 10,000 on, between: 3e6/pairs,
				 * those beyond 300 within 0.5 s when no time_limit) */
};

/* Is node j allowed for capability i (hard constraints, memory aside)? */
bool pl_allowed(const struct pl_inst *in, int i, int j);
/* Cost of serving one unit of (i, r) from node j. */
double pl_unit_cost(const struct pl_inst *in, int r, int j);

/*
 * pl_evaluate - objective of a placement (filling cost terms of @s).
 * Return: 0, or -EINVAL when it violates memory or a hard constraint
 * (and *why names the first violation when why is not NULL).
 */
int pl_evaluate(const struct pl_inst *in, struct pl_sol *s, const char **why);

/* pl_solve - greedy + local search. Return 0 or -errno. */
int pl_solve(const struct pl_inst *in, const struct pl_opts *o, struct pl_sol *s);

/*
 * pl_solve_exact - the ILP on CBC (time limit in seconds; s->optimal
 * says whether CBC proved it; @start: a placement to start from, e.g.
 * the heuristic's, or NULL). pl_lp_bound - LP relaxation on GLPK:
 * a lower bound on the optimum. Both -ENOTSUP when built without them.
 */
int pl_solve_exact(const struct pl_inst *in, double time_limit, const struct pl_sol *start,
		   struct pl_sol *s);
int pl_lp_bound(const struct pl_inst *in, double time_limit, double *bound);

/*
 * pl_nomem_bound - a lower bound at any size: the optimum with memory
 * budgets relaxed (each capability placed alone, exactly); @cap_lb
 * (NULL or [n_caps]) gets each capability's share. Return 0 or -ENOMEM.
 */
int pl_nomem_bound(const struct pl_inst *in, double *bound, double *cap_lb);

void pl_sol_free(struct pl_sol *s);
/* Placements in @b not in @a plus in @a not in @b. */
int pl_sol_diff(const struct pl_sol *a, const struct pl_sol *b);

/* Random instance: Zipf demand, models 2-80 GB, nodes 24-141 GB. */
struct pl_gen {
	int n_caps, n_nodes, n_regions;
	uint64_t seed;
	double policy_frac;	/* fraction of caps with a policy constraint */
};
int pl_gen_instance(const struct pl_gen *g, struct pl_inst *in);
/* Move @frac of the total demand between caps/regions (seeded). */
void pl_gen_shift(struct pl_inst *in, double frac, uint64_t seed);
void pl_inst_free(struct pl_inst *in);

#endif /* __IDN_PLACEMENT_H */
