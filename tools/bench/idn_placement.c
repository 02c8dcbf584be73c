// SPDX-License-Identifier: GPL-2.0
/*
 * idn_placement.c - placement solver benchmark (make bench, part
 * "placement"): one "name value unit" line per figure.
 *
 *   exact tier  20x8 and 50x20 generated instances: heuristic (3000 ILS
 *               kicks) vs CBC's proven optimum (limit in CPU seconds);
 *               the median gap counts only instances CBC proved optimal,
 *               and how many it proved is printed beside it
 *   bound tier  200x100: heuristic vs GLPK's LP bound (and the memory-free
 *               bound, pl_nomem_bound)
 *   scale tier  2000x5000 (20 regions): heuristic alone, wall seconds of
 *               the whole call; served demand, capabilities left unplaced
 *               although placing them would pay, memory use, gap to the
 *               memory-free lower bound, what the heuristic did (greedy
 *               evaluations, local search passes and moves, candidates)
 *   churn       the 2000x5000 placement re-solved after moving 10 % of the
 *               demand, warm (as idnd's closed loop does): changed
 *               placements / placements; the same from scratch beside it
 *
 * Every solution is checked here, independently of the solver (memory per
 * node, node up, trust, privacy, domain, runtime): a violation fails the
 * run (exit 1). Options: -n N instances per exact/bound tier (5), -t S
 * CBC/GLPK time limit (30), -s skip the scale tier, -v per-instance lines
 * on stderr.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "placement.h"

static int verbose;

static double clock_s(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static double now_s(void)
{
	return clock_s(CLOCK_MONOTONIC);
}

static int dcmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static double median(double *v, int n)
{
	if (!n)
		return -1;
	qsort(v, n, sizeof(*v), dcmp);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/*
 * Independent check of the hard constraints (not pl_evaluate()'s code).
 * Return the number of violations; *util: the fullest node's use.
 */
static int check(const struct pl_inst *in, const struct pl_sol *s, const char *what,
		 double *util)
{
	double *used = calloc(in->n_nodes, sizeof(double)), worst = 0;
	int bad = 0;

	if (!used)
		return 1;
	for (int t = 0; t < s->n; t++) {
		const struct pl_pair *x = &s->x[t];
		const struct pl_cap *c;
		const struct pl_node *n;
		const char *why = NULL;

		if (x->cap < 0 || x->cap >= in->n_caps || x->node < 0 || x->node >= in->n_nodes) {
			fprintf(stderr, "idn_placement: %s: placement out of range\n", what);
			bad++;
			continue;
		}
		c = &in->caps[x->cap];
		n = &in->nodes[x->node];
		if (t && s->x[t - 1].cap == x->cap && s->x[t - 1].node == x->node)
			why = "duplicate";
		else if (!n->up)
			why = "node down";
		else if (n->trust < c->min_trust)
			why = "trust below the minimum";
		else if (c->privacy >= 2 && !n->confidential)
			why = "confidential capability on a plain node";
		else if (c->domain_mask && !(c->domain_mask >> n->domain & 1))
			why = "domain not allowed";
		else if (c->runtime_mask && !(c->runtime_mask >> n->runtime & 1))
			why = "runtime not allowed";
		if (why) {
			fprintf(stderr, "idn_placement: %s: cap %d node %d: %s\n", what, x->cap,
				x->node, why);
			bad++;
		}
		used[x->node] += c->mem;
	}
	for (int j = 0; j < in->n_nodes; j++) {
		if (used[j] > in->nodes[j].mem + 1e-6) {
			fprintf(stderr, "idn_placement: %s: node %d uses %.1f of %.1f GB\n", what, j,
				used[j], in->nodes[j].mem);
			bad++;
		}
		if (used[j] / in->nodes[j].mem > worst)
			worst = used[j] / in->nodes[j].mem;
	}
	free(used);
	if (util)
		*util = worst;
	return bad;
}

/* Placements of @b not in @a (both sorted by cap, node). */
static int added(const struct pl_sol *a, const struct pl_sol *b)
{
	int i = 0, n = 0;

	for (int j = 0; j < b->n; j++) {
		while (i < a->n && (a->x[i].cap < b->x[j].cap ||
				    (a->x[i].cap == b->x[j].cap && a->x[i].node < b->x[j].node)))
			i++;
		if (i >= a->n || a->x[i].cap != b->x[j].cap || a->x[i].node != b->x[j].node)
			n++;
	}
	return n;
}

static double total_demand(const struct pl_inst *in)
{
	double t = 0;

	for (int i = 0; i < in->n_caps; i++)
		for (int r = 0; r < in->n_regions; r++)
			t += in->caps[i].demand[r];
	return t;
}

static int exact_tier(int n_inst, double tl)
{
	static const int tiers[][2] = { { 20, 8 }, { 50, 20 } };
	double gaps[64], tg[2][32], worst = 0;
	int ng = 0, nt[2] = { 0, 0 }, total = 0, bad = 0, nu = 0;
	double ugap = 0;	/* unproven: heuristic vs CBC's best placement */

	for (int t = 0; t < 2; t++)
		for (int k = 0; k < n_inst; k++) {
			struct pl_gen g = { tiers[t][0], tiers[t][1], 4, 1000 + 17 * k + t, 0.3 };
			struct pl_inst in;
			struct pl_sol h, e;
			/* 3000 kicks whatever the load (idnd: at most 0.5 s beyond 300) */
			struct pl_opts o = { .ils_iters = 3000 };
			int err;

			if (pl_gen_instance(&g, &in) || pl_solve(&in, &o, &h))
				return -1;
			/* no MIP start: it slowed CBC's proofs (placement_exact.c) */
			err = pl_solve_exact(&in, tl, NULL, &e);
			if (err) {
				fprintf(stderr, "idn_placement: CBC failed (%d)\n", err);
				return -1;
			}
			bad += check(&in, &h, "exact tier heuristic", NULL);
			bad += check(&in, &e, "exact tier CBC", NULL);
			total++;
			if (e.optimal) {
				double gap = 100.0 * (h.cost - e.cost) / e.cost;

				if (gap < -1e-6) {
					fprintf(stderr, "idn_placement: heuristic %.4f below CBC's proven optimum %.4f\n",
						h.cost, e.cost);
					bad++;
				}
				gaps[ng++] = gap;
				tg[t][nt[t]++] = gap;
				if (gap > worst)
					worst = gap;
			} else {
				double gap = 100.0 * (h.cost - e.cost) / e.cost;

				if (!nu++ || gap > ugap)
					ugap = gap;
			}
			if (verbose)
				fprintf(stderr, "exact %dx%d #%d seed %llu heur %.2f (%.3fs) cbc %.2f bound %.2f %s (%.1fs)\n",
					g.n_caps, g.n_nodes, k, (unsigned long long)g.seed, h.cost,
					h.seconds, e.cost, e.bound,
					e.optimal ? "proven" : "NOT proven", e.seconds);
			pl_sol_free(&h);
			pl_sol_free(&e);
			pl_inst_free(&in);
		}
	printf("placement_gap_exact_median %.3f %%\n", median(gaps, ng));
	printf("placement_gap_exact_max %.3f %%\n", ng ? worst : -1);
	printf("placement_gap_exact_20x8_median %.3f %%\n", median(tg[0], nt[0]));
	printf("placement_gap_exact_50x20_median %.3f %%\n", median(tg[1], nt[1]));
	printf("placement_exact_proven %d instances\n", ng);
	printf("placement_exact_instances %d instances\n", total);
	printf("placement_exact_50x20_proven %d instances\n", nt[1]);
	if (nu)
		printf("placement_gap_exact_unproven_to_cbc_incumbent_max %.3f %%\n", ugap);
	/* (negative: the heuristic beat CBC's best placement within its limit) */
	return bad;
}

static int bound_tier(int n_inst, double tl)
{
	double bgaps[32], ngaps[32], bestg[32];
	int nb = 0, bad = 0;

	for (int k = 0; k < n_inst; k++) {
		struct pl_gen g = { 200, 100, 8, 5000 + k, 0.3 };
		struct pl_inst in;
		struct pl_sol h;
		double lb = 0, nm = 0;
		int err;

		if (pl_gen_instance(&g, &in) || pl_solve(&in, NULL, &h) ||
		    pl_nomem_bound(&in, &nm, NULL))
			return -1;
		bad += check(&in, &h, "bound tier", NULL);
		err = pl_lp_bound(&in, tl, &lb);
		if (!err && lb > 0) {
			double best = lb > nm ? lb : nm;

			bgaps[nb] = 100.0 * (h.cost - lb) / lb;
			ngaps[nb] = 100.0 * (h.cost - nm) / nm;
			bestg[nb++] = 100.0 * (h.cost - best) / best;
		}
		if (verbose)
			fprintf(stderr, "bound 200x100 #%d heur %.2f (%.3fs, ils %d/%d) lp %.2f nomem %.2f err %d\n",
				k, h.cost, h.seconds, h.ils_wins, h.ils_kicks, err ? 0 : lb, nm, err);
		pl_sol_free(&h);
		pl_inst_free(&in);
	}
	printf("placement_gap_bound_median %.3f %%\n", median(bgaps, nb));
	printf("placement_gap_nomem_bound_200x100_median %.3f %%\n", median(ngaps, nb));
	printf("placement_gap_best_bound_200x100_median %.3f %%\n", median(bestg, nb));
	return bad;
}

static int scale_tier(void)
{
	struct pl_gen g = { 2000, 5000, 20, 42, 0.3 };
	struct pl_inst in;
	struct pl_sol h, h2, c2;
	double t0, c0, secs, cpu, nm, dem, util, used = 0, budget = 0, *cap_lb;
	int bad, unplaced = 0, worth = 0;
	char *placed;

	if (pl_gen_instance(&g, &in))
		return -1;
	t0 = now_s();
	c0 = clock_s(CLOCK_PROCESS_CPUTIME_ID);
	if (pl_solve(&in, NULL, &h))
		return -1;
	secs = now_s() - t0;
	cpu = clock_s(CLOCK_PROCESS_CPUTIME_ID) - c0;
	printf("placement_2000x5000_seconds %.3f s\n", secs);
	/* the same in CPU time: on a shared, loaded machine wall time stretches */
	printf("placement_2000x5000_cpu_seconds %.3f s\n", cpu);
	bad = check(&in, &h, "scale tier", &util);
	cap_lb = calloc(in.n_caps, sizeof(double));
	placed = calloc(in.n_caps, 1);
	if (!cap_lb || !placed || pl_nomem_bound(&in, &nm, cap_lb))
		return -1;
	for (int t = 0; t < h.n; t++) {
		placed[h.x[t].cap] = 1;
		used += in.caps[h.x[t].cap].mem;
	}
	for (int j = 0; j < in.n_nodes; j++)
		budget += in.nodes[j].mem;
	for (int i = 0; i < in.n_caps; i++) {
		double d = 0;

		if (placed[i])
			continue;
		for (int r = 0; r < in.n_regions; r++)
			d += in.caps[i].demand[r];
		if (d <= 0)
			continue;
		unplaced++;
		/* placing it would save over 1 % of its unserved cost, even alone? */
		if (cap_lb[i] < 0.99 * d * in.unserved)
			worth++;
	}
	dem = total_demand(&in);
	printf("placement_2000x5000_served %.3f %%\n", 100.0 * (dem - h.unserved_demand) / dem);
	printf("placement_2000x5000_unplaced_caps %d caps\n", unplaced);
	printf("placement_2000x5000_unplaced_worth_placing %d caps\n", worth);
	printf("placement_2000x5000_placements %d placements\n", h.n);
	printf("placement_2000x5000_gap_nomem_bound %.3f %%\n", 100.0 * (h.cost - nm) / nm);
	printf("placement_2000x5000_mem_used %.1f %%\n", 100.0 * used / budget);
	printf("placement_2000x5000_fullest_node %.1f %%\n", 100.0 * util);
	printf("placement_2000x5000_violations %d violations\n", bad);
	printf("placement_2000x5000_greedy_evals %ld evals\n", h.evals);
	printf("placement_2000x5000_ls_passes %d passes\n", h.ls_passes);
	printf("placement_2000x5000_ls_moves %d moves\n", h.ls_moves);
	printf("placement_2000x5000_candidates_per_cap %.1f nodes\n", (double)h.n_cand / in.n_caps);
	if (verbose)
		fprintf(stderr, "scale: cost %.1f (lat %.1f net %.1f deploy %.1f risk %.1f) nomem bound %.1f\n",
			h.cost, h.lat, h.net, h.deploy, h.risk, nm);

	/* churn: shift 10 % of the demand, warm re-solve as idnd's loop does */
	in.prev = h.x;
	in.n_prev = h.n;
	pl_gen_shift(&in, 0.10, 99);
	t0 = now_s();
	if (pl_solve(&in, NULL, &h2))
		return -1;
	secs = now_s() - t0;
	bad += check(&in, &h2, "churn re-solve", NULL);
	printf("placement_churn_10pct_shift %.3f %%\n",
	       100.0 * pl_sol_diff(&h, &h2) / (h.n ? h.n : 1));
	/* split: new replicas (scale out to where demand went) vs removed ones */
	printf("placement_churn_10pct_added %d placements\n", added(&h, &h2));
	printf("placement_churn_10pct_removed %d placements\n", added(&h2, &h));
	printf("placement_churn_resolve_seconds %.3f s\n", secs);
	/* the same shifted instance solved from scratch: what churn would be unbounded */
	in.prev = NULL;
	in.n_prev = 0;
	if (pl_solve(&in, NULL, &c2))
		return -1;
	printf("placement_churn_10pct_shift_cold %.3f %%\n",
	       100.0 * pl_sol_diff(&h, &c2) / (h.n ? h.n : 1));
	if (verbose)
		fprintf(stderr, "churn: %d of %d changed warm, %d cold\n", pl_sol_diff(&h, &h2), h.n,
			pl_sol_diff(&h, &c2));
	free(cap_lb);
	free(placed);
	pl_sol_free(&c2);
	pl_sol_free(&h2);
	pl_sol_free(&h);
	pl_inst_free(&in);
	return bad;
}

int main(int argc, char **argv)
{
	int n_inst = 5, opt, skip_scale = 0, bad = 0, r;
	double tl = 30;

	while ((opt = getopt(argc, argv, "n:t:sv")) != -1) {
		switch (opt) {
		case 'n': n_inst = atoi(optarg); break;
		case 't': tl = atof(optarg); break;
		case 's': skip_scale = 1; break;
		case 'v': verbose = 1; break;
		default:
			fprintf(stderr, "usage: idn_placement [-n N] [-t S] [-s] [-v]\n");
			return 2;
		}
	}
	if (n_inst < 1 || n_inst > 32)
		n_inst = 5;
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (!skip_scale) {
		r = scale_tier();
		if (r < 0)
			goto fail;
		bad += r;
	}
	r = exact_tier(n_inst, tl);
	if (r < 0)
		goto fail;
	bad += r;
	r = bound_tier(n_inst, tl);
	if (r < 0)
		goto fail;
	bad += r;
	if (bad) {
		fprintf(stderr, "idn_placement: %d constraint violations\n", bad);
		return 1;
	}
	return 0;
fail:
	fprintf(stderr, "idn_placement: solve failed\n");
	return 1;
}
