// SPDX-License-Identifier: GPL-2.0
/*
 * idn_placement.c - placement solver benchmark (make bench, part
 * "placement"): one "name value unit" line per figure.
 *
 *   exact tier  20x8 and 50x20 instances: heuristic vs CBC's proven optimum
 *   bound tier  200x100: heuristic vs GLPK's LP bound
 *   scale tier  2000x5000: heuristic alone, seconds
 *   churn       200x100 (and 2000x5000 with -b): re-solve after moving 10 %
 *               of the demand, changed placements / placements
 *
 * Options: -n N instances per tier (5), -t S CBC/GLPK time limit (30),
 * -s skip the scale tier, -v per-instance lines on stderr.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "placement.h"

static int verbose;

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

int main(int argc, char **argv)
{
	int n_inst = 5, opt, skip_scale = 0;
	double tl = 30;
	static const int exact[][2] = { { 20, 8 }, { 50, 20 } };
	double gaps[64], bgaps[64];
	int ng = 0, nb = 0, rc = 0;

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

	for (int t = 0; t < 2; t++)
		for (int k = 0; k < n_inst; k++) {
			struct pl_gen g = { exact[t][0], exact[t][1], 4, 1000 + 17 * k + t, 0.3 };
			struct pl_inst in;
			struct pl_sol h, e;

			if (pl_gen_instance(&g, &in))
				return 1;
			if (pl_solve(&in, NULL, &h) || pl_solve_exact(&in, tl, &e)) {
				fprintf(stderr, "idn_placement: solve failed\n");
				return 1;
			}
			if (e.optimal)
				gaps[ng++] = 100.0 * (h.cost - e.cost) / e.cost;
			if (verbose)
				fprintf(stderr, "exact %dx%d #%d heur %.2f (%.3fs) cbc %.2f%s (%.2fs)\n",
					g.n_caps, g.n_nodes, k, h.cost, h.seconds, e.cost,
					e.optimal ? "" : " not proven", e.seconds);
			pl_sol_free(&h);
			pl_sol_free(&e);
			pl_inst_free(&in);
		}
	printf("placement_gap_exact_median %.3f %%\n", median(gaps, ng));

	for (int k = 0; k < n_inst; k++) {
		struct pl_gen g = { 200, 100, 8, 5000 + k, 0.3 };
		struct pl_inst in;
		struct pl_sol h;
		double lb;
		int err;

		if (pl_gen_instance(&g, &in) || pl_solve(&in, NULL, &h))
			return 1;
		err = pl_lp_bound(&in, tl, &lb);
		if (!err && lb > 0)
			bgaps[nb++] = 100.0 * (h.cost - lb) / lb;
		if (verbose)
			fprintf(stderr, "bound 200x100 #%d heur %.2f (%.3fs) lp %.2f err %d\n",
				k, h.cost, h.seconds, err ? 0 : lb, err);
		pl_sol_free(&h);
		pl_inst_free(&in);
	}
	printf("placement_gap_bound_median %.3f %%\n", median(bgaps, nb));

	if (!skip_scale) {
		struct pl_gen g = { 2000, 5000, 20, 42, 0.3 };
		struct pl_inst in;
		struct pl_sol h, h2;
		struct pl_opts o = { .time_limit = 0 };

		if (pl_gen_instance(&g, &in) || pl_solve(&in, &o, &h))
			return 1;
		printf("placement_2000x5000_seconds %.3f s\n", h.seconds);
		if (verbose)
			fprintf(stderr, "scale: %d placements cost %.1f unserved %.1f\n",
				h.n, h.cost, h.unserved_demand);
		/* churn at scale: shift 10 % of demand, warm re-solve */
		in.prev = h.x;
		in.n_prev = h.n;
		pl_gen_shift(&in, 0.10, 99);
		if (pl_solve(&in, &o, &h2))
			return 1;
		printf("placement_churn_10pct_shift %.3f %%\n",
		       100.0 * pl_sol_diff(&h, &h2) / (h.n ? h.n : 1));
		if (verbose)
			fprintf(stderr, "churn: %d of %d changed, re-solve %.3fs\n",
				pl_sol_diff(&h, &h2), h.n, h2.seconds);
		pl_sol_free(&h2);
		pl_sol_free(&h);
		pl_inst_free(&in);
	}
	return rc;
}
