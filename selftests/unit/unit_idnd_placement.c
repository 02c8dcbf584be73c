// SPDX-License-Identifier: GPL-2.0
/*
 * unit_idnd_placement.c - the placement solver (ctl/idnd/placement.c):
 * optimal on a hand-made instance and on tiny instances checked by
 * exhaustive enumeration; within a small gap of CBC's proven optimum on
 * generated 20x8 instances; memory, policy and compatibility constraints
 * never violated; bounded churn after a small demand shift. The exact
 * ILP (with its extra rows) and the memory-free bound agree with
 * exhaustive enumeration; a reduced scale-tier instance (400x1000, 20
 * regions) is solved in full: every capability worth placing placed,
 * within 2 % of the memory-free lower bound, local search run. A
 * draining node keeps its placements and gets no new one.
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "tap.h"
#include "placement.h"

static void test_hand_made(void)
{
	/* 2 regions 50 ms apart; node 0 in region 0 (40 GB), node 1 in
	 * region 1 (40 GB), node 2 in region 1 (trust 1, 200 GB).
	 * cap A 30 GB demand 100 in r0, 1 in r1: A on node 0 only (a second
	 * replica on node 2 would save 54 but cost 60 deploy + 6 risk).
	 * cap B 30 GB demand 100 in r1, min trust 5: B on node 1 only
	 * (node 2 is cheaper to fill but fails the trust constraint). */
	double lat[4] = { 1, 50, 50, 1 }, dA[2] = { 100, 1 }, dB[2] = { 0, 100 };
	struct pl_cap caps[2] = {
		{ .id = 1, .mem = 30, .demand = dA },
		{ .id = 2, .mem = 30, .min_trust = 5, .demand = dB },
	};
	struct pl_node nodes[3] = {
		{ .id = 0, .mem = 40, .region = 0, .trust = 7, .up = true },
		{ .id = 1, .mem = 40, .region = 1, .trust = 7, .up = true },
		{ .id = 2, .mem = 200, .region = 1, .trust = 1, .up = true },
	};
	struct pl_inst in = { 2, 3, 2, caps, nodes, lat, 2, 5, 1, 1000, NULL, 0 };
	struct pl_sol s;

	if (!ASSERT_EQ(pl_solve(&in, NULL, &s), 0, "solve"))
		return;
	for (int t = 0; t < s.n; t++)
		printf("# cap %d on node %d\n", s.x[t].cap, s.x[t].node);
	ASSERT_EQ(s.n, 2, "two placements");
	if (s.n == 2) {
		ASSERT_EQ(s.x[0].cap * 10 + s.x[0].node, 0, "A on node 0");
		ASSERT_EQ(s.x[1].cap * 10 + s.x[1].node, 11, "B on node 1");
	}
	/* lat 100*1 + 1*(50+5) + 100*1; deploy 2*30*2; risk 0 */
	ASSERT_TRUE(fabs(s.cost - (100 + 55 + 100 + 120)) < 1e-6, "objective 375");
	pl_sol_free(&s);
}

/* Exhaustive optimum over all subsets of (cap, node) pairs. */
static double brute(const struct pl_inst *in)
{
	int np = in->n_caps * in->n_nodes;
	double best = INFINITY;
	struct pl_pair x[16];
	struct pl_sol s = { .x = x };

	for (unsigned int m = 0; m < (1u << np); m++) {
		s.n = 0;
		for (int b = 0; b < np; b++)
			if (m & (1u << b))
				x[s.n++] = (struct pl_pair){ b / in->n_nodes, b % in->n_nodes };
		if (pl_evaluate(in, &s, NULL) == 0 && s.cost < best)
			best = s.cost;
	}
	return best;
}

static void test_exhaustive(void)
{
	int worse = 0, cbc_off = 0, cbc_n = 0, lb_bad = 0;

	for (int k = 0; k < 30; k++) {
		struct pl_gen g = { 3, 4, 3, 77 + k, 0.5 };
		struct pl_inst in;
		struct pl_sol s;
		double opt;

		if (!ASSERT_EQ(pl_gen_instance(&g, &in), 0, "gen"))
			return;
		opt = brute(&in);
		if (!ASSERT_EQ(pl_solve(&in, NULL, &s), 0, "solve"))
			return;
		if (s.cost > opt + 1e-6 * (1 + opt)) {
			worse++;
			printf("# instance %d: heuristic %.4f optimum %.4f\n", k, s.cost, opt);
		}
		{
			/*
			 * the ILP (with its one-replica-per-region rows) keeps the
			 * optimum; every other instance with the heuristic's
			 * placement as MIP start
			 */
			struct pl_sol e;
			double lb;

			if (pl_solve_exact(&in, 30, k & 1 ? &s : NULL, &e) == 0) {
				cbc_n++;
				if (!e.optimal || fabs(e.cost - opt) > 1e-6 * (1 + opt)) {
					cbc_off++;
					printf("# instance %d: cbc %.4f optimum %.4f\n", k, e.cost, opt);
				}
				pl_sol_free(&e);
			}
			/* the memory-free bound is a lower bound */
			if (pl_nomem_bound(&in, &lb, NULL) || lb > opt + 1e-6 * (1 + opt))
				lb_bad++;
		}
		pl_sol_free(&s);
		pl_inst_free(&in);
	}
	ASSERT_EQ(worse, 0, "heuristic optimal on all 30 tiny instances");
	ASSERT_EQ(lb_bad, 0, "memory-free bound below the optimum on all 30");
	if (cbc_n)
		ASSERT_EQ(cbc_off, 0, "CBC's ILP proves the enumerated optimum on all 30");
	else
		tap_skip("built without CBC");
}

/* With memory to spare, the memory-free bound is the optimum itself. */
static void test_nomem_bound_exact(void)
{
	int off = 0;

	for (int k = 0; k < 20; k++) {
		struct pl_gen g = { 3, 4, 3, 500 + k, 0.5 };
		struct pl_inst in;
		double opt, lb;

		if (!ASSERT_EQ(pl_gen_instance(&g, &in), 0, "gen"))
			return;
		for (int j = 0; j < in.n_nodes; j++)
			in.nodes[j].mem = 1000;
		opt = brute(&in);
		if (pl_nomem_bound(&in, &lb, NULL) || fabs(lb - opt) > 1e-6 * (1 + opt)) {
			off++;
			printf("# instance %d: bound %.4f optimum %.4f\n", k, lb, opt);
		}
		pl_inst_free(&in);
	}
	ASSERT_EQ(off, 0, "memory-free bound = optimum when memory never binds");
}

/*
 * The scale tier at a fifth of its size: the heuristic does its whole job
 * (candidates refilled as nodes fill, local search), serves what is worth
 * serving and never breaks a constraint.
 */
static void test_scale_reduced(void)
{
	struct pl_gen g = { 400, 1000, 20, 42, 0.3 };
	struct pl_inst in;
	struct pl_sol s;
	double nm, *cap_lb;
	const char *why = NULL;
	int worth = 0;
	char *placed;

	if (!ASSERT_EQ(pl_gen_instance(&g, &in), 0, "gen"))
		return;
	cap_lb = calloc(in.n_caps, sizeof(double));
	placed = calloc(in.n_caps, 1);
	if (!ASSERT_TRUE(cap_lb && placed, "alloc") ||
	    !ASSERT_EQ(pl_solve(&in, NULL, &s), 0, "solve 400x1000"))
		goto out;
	ASSERT_EQ(pl_evaluate(&in, &s, &why), 0, "400x1000: no constraint violated");
	if (why)
		printf("# %s\n", why);
	ASSERT_EQ(pl_nomem_bound(&in, &nm, cap_lb), 0, "memory-free bound");
	for (int t = 0; t < s.n; t++)
		placed[s.x[t].cap] = 1;
	for (int i = 0; i < in.n_caps; i++) {
		double d = 0;

		for (int r = 0; r < in.n_regions; r++)
			d += in.caps[i].demand[r];
		if (!placed[i] && d > 0 && cap_lb[i] < 0.99 * d * in.unserved)
			worth++;
	}
	printf("# 400x1000: cost %.1f bound %.1f (%.3f %%), %d placements, unserved %.2f, "
	       "%d ls passes, %d moves, %.3f s\n", s.cost, nm, 100 * (s.cost - nm) / nm, s.n,
	       s.unserved_demand, s.ls_passes, s.ls_moves, s.seconds);
	ASSERT_EQ(worth, 0, "every capability worth placing is placed");
	ASSERT_TRUE(s.cost <= nm * 1.02, "within 2 % of the memory-free lower bound");
	ASSERT_TRUE(s.ls_passes > 0 && s.evals > 0, "lazy greedy and local search ran");
	pl_sol_free(&s);
out:
	free(cap_lb);
	free(placed);
	pl_inst_free(&in);
}

static void test_vs_cbc(void)
{
	double gap_sum = 0, gap_max = 0;
	int n = 0;

	for (int k = 0; k < 3; k++) {
		struct pl_gen g = { 20, 8, 4, 1000 + 17 * (k + 1), 0.3 };
		struct pl_inst in;
		struct pl_sol h, e;
		int err;

		if (!ASSERT_EQ(pl_gen_instance(&g, &in), 0, "gen"))
			return;
		err = pl_solve_exact(&in, 60, NULL, &e);
		if (err == -ENOTSUP) {
			pl_inst_free(&in);
			tap_skip("built without CBC");
			return;
		}
		if (!ASSERT_EQ(err, 0, "cbc") || !ASSERT_EQ(pl_solve(&in, NULL, &h), 0, "solve"))
			return;
		ASSERT_EQ(pl_evaluate(&in, &e, NULL), 0, "cbc solution feasible");
		if (e.optimal) {
			double gap = 100 * (h.cost - e.cost) / e.cost;

			printf("# 20x8 #%d heuristic %.2f cbc optimum %.2f gap %.3f%%\n", k, h.cost,
			       e.cost, gap);
			ASSERT_TRUE(gap > -1e-6, "heuristic not below the proven optimum");
			gap_sum += gap;
			if (gap > gap_max)
				gap_max = gap;
			n++;
		}
		pl_sol_free(&h);
		pl_sol_free(&e);
		pl_inst_free(&in);
	}
	ASSERT_TRUE(n > 0, "CBC proved at least one optimum");
	ASSERT_TRUE(gap_max <= 3.0, "gap to CBC <= 3 % on every instance");
	ASSERT_TRUE(n && gap_sum / n <= 1.0, "mean gap to CBC <= 1 %");
}

static void test_lp_bound(void)
{
	struct pl_gen g = { 20, 8, 4, 1017, 0.3 };
	struct pl_inst in;
	struct pl_sol h;
	double lb;
	int err;

	if (!ASSERT_EQ(pl_gen_instance(&g, &in), 0, "gen"))
		return;
	err = pl_lp_bound(&in, 30, &lb);
	if (err == -ENOTSUP) {
		tap_skip("built without GLPK");
	} else if (ASSERT_EQ(err, 0, "glpk") && ASSERT_EQ(pl_solve(&in, NULL, &h), 0, "solve")) {
		ASSERT_TRUE(lb <= h.cost + 1e-6, "LP bound below the heuristic");
		ASSERT_TRUE(lb > 0.5 * h.cost, "LP bound not trivial");
		pl_sol_free(&h);
	}
	pl_inst_free(&in);
}

static void test_constraints(void)
{
	int bad = 0;

	for (int k = 0; k < 20; k++) {
		struct pl_gen g = { 60, 30, 6, 300 + k, 1.0 };
		struct pl_inst in;
		struct pl_sol s;
		const char *why = NULL;

		if (!ASSERT_EQ(pl_gen_instance(&g, &in), 0, "gen"))
			return;
		for (int j = 0; j < in.n_nodes; j += 7)
			in.nodes[j].up = false;	/* down nodes are never used */
		if (!ASSERT_EQ(pl_solve(&in, NULL, &s), 0, "solve"))
			return;
		if (pl_evaluate(&in, &s, &why)) {
			bad++;
			printf("# instance %d: %s\n", k, why);
		}
		for (int t = 0; t < s.n; t++)
			if (!in.nodes[s.x[t].node].up)
				bad++;
		pl_sol_free(&s);
		pl_inst_free(&in);
	}
	ASSERT_EQ(bad, 0, "no constraint violated in 20 instances");
}

static void test_evaluate_rejects(void)
{
	struct pl_gen g = { 4, 2, 2, 5, 0 };
	struct pl_inst in;
	struct pl_pair x[4] = { { 0, 0 }, { 1, 0 }, { 2, 0 }, { 3, 0 } };
	struct pl_sol s = { .x = x, .n = 4 };
	const char *why = NULL;

	if (!ASSERT_EQ(pl_gen_instance(&g, &in), 0, "gen"))
		return;
	in.nodes[0].mem = 1;
	ASSERT_EQ(pl_evaluate(&in, &s, &why), -EINVAL, "over budget rejected");
	ASSERT_TRUE(why && strstr(why, "memory"), "names the memory budget");
	pl_inst_free(&in);
}

static void test_churn(void)
{
	struct pl_gen g = { 200, 100, 8, 4242, 0.3 };
	struct pl_inst in;
	struct pl_sol a, b;
	int d;

	if (!ASSERT_EQ(pl_gen_instance(&g, &in), 0, "gen") ||
	    !ASSERT_EQ(pl_solve(&in, NULL, &a), 0, "solve"))
		return;
	in.prev = a.x;
	in.n_prev = a.n;
	pl_gen_shift(&in, 0.10, 5);
	if (!ASSERT_EQ(pl_solve(&in, NULL, &b), 0, "re-solve"))
		return;
	d = pl_sol_diff(&a, &b);
	printf("# 10%% demand shift: %d of %d placements changed\n", d, a.n);
	ASSERT_TRUE(d * 100 <= 15 * a.n, "<= 15 % of placements change");
	pl_sol_free(&a);
	pl_sol_free(&b);
	pl_inst_free(&in);
}

/* a draining node keeps what it holds (prev) and gets nothing new, however the demand grows */
static void test_drain(void)
{
	struct pl_gen g = { 60, 30, 6, 77, 1.0 };
	struct pl_inst in;
	struct pl_sol a, b;
	int added = 0, kept = 0, held = 0;

	if (!ASSERT_EQ(pl_gen_instance(&g, &in), 0, "gen") ||
	    !ASSERT_EQ(pl_solve(&in, NULL, &a), 0, "solve"))
		return;
	for (int j = 0; j < in.n_nodes; j += 3)
		in.nodes[j].drain = true;
	for (int t = 0; t < a.n; t++)
		held += in.nodes[a.x[t].node].drain;
	in.prev = a.x;
	in.n_prev = a.n;
	pl_gen_shift(&in, 0.50, 9);
	for (int i = 0; i < in.n_caps; i++)	/* three times the demand: more replicas wanted */
		for (int r = 0; r < in.n_regions; r++)
			in.caps[i].demand[r] *= 3;
	if (!ASSERT_EQ(pl_solve(&in, NULL, &b), 0, "re-solve"))
		return;
	for (int t = 0; t < b.n; t++) {
		bool was = false;

		if (!in.nodes[b.x[t].node].drain)
			continue;
		for (int k = 0; k < a.n; k++)
			was |= a.x[k].cap == b.x[t].cap && a.x[k].node == b.x[t].node;
		added += !was;
		kept += was;
	}
	printf("# draining nodes held %d placements; after 3x demand: %d kept, %d new there; "
	       "%d -> %d placements in all\n", held, kept, added, a.n, b.n);
	ASSERT_TRUE(held > 0, "the draining nodes held placements");
	ASSERT_EQ(added, 0, "nothing new placed on a draining node");
	ASSERT_TRUE(b.n > a.n, "the demand got more placements elsewhere");
	pl_sol_free(&a);
	pl_sol_free(&b);
	pl_inst_free(&in);
}

int main(void)
{
	tap_plan(0);
	TAP_RUN(test_hand_made);
	TAP_RUN(test_exhaustive);
	TAP_RUN(test_nomem_bound_exact);
	TAP_RUN(test_scale_reduced);
	TAP_RUN(test_constraints);
	TAP_RUN(test_evaluate_rejects);
	TAP_RUN(test_churn);
	TAP_RUN(test_drain);
	TAP_RUN(test_lp_bound);
	TAP_RUN(test_vs_cbc);
	return tap_done();
}
