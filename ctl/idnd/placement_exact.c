// SPDX-License-Identifier: GPL-2.0
/*
 * placement_exact.c - the placement ILP, solved exactly by CBC (the
 * quality reference on small instances) and relaxed to an LP by GLPK
 * (a lower bound on instances too large for CBC).
 *
 * Columns: x[i][j] (binary, only allowed pairs whose memory fits the
 * node), y[i][r][j] (fraction of demand (i, r) served by j, only where
 * d[i][r] > 0), u[i][r] (unserved fraction). Rows: sum_j y + u = 1 per
 * demand; y[i][r][j] <= x[i][j] (the strong, disaggregated linking);
 * sum_i mem[i] x[i][j] <= mem[j] per node; and (CBC only) sum_{j in
 * region R} x[i][j] <= 1 per capability and node region R. Some optimum
 * always satisfies that row: two nodes of one region differ in unit cost
 * by their access latency alone, the same for every demand region, so a
 * second replica of a capability in one region serves nothing and only
 * adds its fixed cost (>= 0). It cuts the many equivalent ways of
 * spreading a capability over a region out of CBC's search (one 50x20
 * instance went from not proven in 60 s to proven in 100 s); it leaves
 * the LP optimum where it is, so the GLPK bound goes without it.
 * Costs exactly as pl_evaluate() counts them. A caller may hand CBC a
 * MIP start (e.g. the heuristic's placement); measured on a 50x20
 * instance it slowed the proof (not proven in 104 CPU s with it, proven
 * in 98 without), so the benchmark does without. The limit is in CPU
 * seconds (CBC's default).
 *
 * What stays hard: where memory is tight (the best known placement fills
 * ~99 % of all node memory) the LP spreads fractional replicas over
 * nodes (knapsack rows), its bound sits ~10 % under the best known
 * placement and CBC does not close that within minutes; the benchmark
 * reports those instances as not proven and leaves them out of the
 * median gap.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#ifdef IDN_HAVE_CBC
#include <coin/Cbc_C_Interface.h>
#endif
#ifdef IDN_HAVE_GLPK
#include <glpk.h>
#endif

#include "placement.h"

struct ilp {
	int n_cols, n_rows, n_nz, cap_nz;
	int *ri, *ci;		/* triplets, 0-based */
	double *v;
	double *obj, *clb, *cub, *rlb, *rub;
	int *xcol;		/* [i * n_nodes + j] column of x, -1 */
	bool *is_int;
};

static void ilp_free(struct ilp *m)
{
	free(m->ri);
	free(m->ci);
	free(m->v);
	free(m->obj);
	free(m->clb);
	free(m->cub);
	free(m->rlb);
	free(m->rub);
	free(m->xcol);
	free(m->is_int);
}

static int nz(struct ilp *m, int r, int c, double v)
{
	if (m->n_nz == m->cap_nz) {
		int n = m->cap_nz ? 2 * m->cap_nz : 4096;
		int *a = realloc(m->ri, n * sizeof(int)), *b;
		double *w;

		if (!a)
			return -ENOMEM;
		m->ri = a;
		b = realloc(m->ci, n * sizeof(int));
		if (!b)
			return -ENOMEM;
		m->ci = b;
		w = realloc(m->v, n * sizeof(double));
		if (!w)
			return -ENOMEM;
		m->v = w;
		m->cap_nz = n;
	}
	m->ri[m->n_nz] = r;
	m->ci[m->n_nz] = c;
	m->v[m->n_nz++] = v;
	return 0;
}

/* @region_rows: add the one-replica-per-region rows (CBC only, see top) */
static int ilp_build(const struct pl_inst *in, struct ilp *m, bool region_rows)
{
	int nc = in->n_caps, nn = in->n_nodes, nr = in->n_regions;
	long max_cols = 0, max_rows;
	bool *prev = calloc((size_t)nc * nn + 1, sizeof(bool));
	int col = 0, row = 0, err = -ENOMEM;

	memset(m, 0, sizeof(*m));
	if (!prev)
		return -ENOMEM;
	for (int p = 0; p < in->n_prev; p++)
		if (in->prev[p].cap >= 0 && in->prev[p].cap < nc &&
		    in->prev[p].node >= 0 && in->prev[p].node < nn)
			prev[(size_t)in->prev[p].cap * nn + in->prev[p].node] = true;
	max_cols = (long)nc * nn * (nr + 1) + (long)nc * nr;
	max_rows = (long)nc * nr * (nn + 1) + nn + (long)nc * nr;
	m->obj = malloc(max_cols * sizeof(double));
	m->clb = calloc(max_cols, sizeof(double));
	m->cub = malloc(max_cols * sizeof(double));
	m->is_int = calloc(max_cols, sizeof(bool));
	m->rlb = malloc(max_rows * sizeof(double));
	m->rub = malloc(max_rows * sizeof(double));
	m->xcol = malloc((size_t)nc * nn * sizeof(int));
	if (!m->obj || !m->clb || !m->cub || !m->is_int || !m->rlb || !m->rub || !m->xcol)
		goto out;

	for (int i = 0; i < nc; i++)
		for (int j = 0; j < nn; j++) {
			m->xcol[(size_t)i * nn + j] = -1;
			if (!pl_allowed(in, i, j) || in->caps[i].mem > in->nodes[j].mem + 1e-9)
				continue;
			m->xcol[(size_t)i * nn + j] = col;
			m->obj[col] = in->nu * (7 - in->nodes[j].trust) +
				(prev[(size_t)i * nn + j] ? 0 : in->lambda * in->caps[i].mem);
			m->cub[col] = 1;
			m->is_int[col] = true;
			col++;
		}
	/* memory rows first: row j */
	for (int j = 0; j < nn; j++) {
		m->rlb[row] = -1e30;
		m->rub[row] = in->nodes[j].mem;
		for (int i = 0; i < nc; i++) {
			int x = m->xcol[(size_t)i * nn + j];

			if (x >= 0 && nz(m, row, x, in->caps[i].mem))
				goto out;
		}
		row++;
	}
	/* at most one replica per (capability, node region) */
	for (int i = 0; i < nc && region_rows; i++)
		for (int R = 0; R < nr; R++) {
			int k = 0;

			for (int j = 0; j < nn; j++)
				if (in->nodes[j].region == R && m->xcol[(size_t)i * nn + j] >= 0)
					k++;
			if (k < 2)
				continue;
			m->rlb[row] = -1e30;
			m->rub[row] = 1;
			for (int j = 0; j < nn; j++) {
				int x = m->xcol[(size_t)i * nn + j];

				if (in->nodes[j].region == R && x >= 0 && nz(m, row, x, 1))
					goto out;
			}
			row++;
		}
	for (int i = 0; i < nc; i++)
		for (int r = 0; r < nr; r++) {
			double d = in->caps[i].demand[r];
			int arow;

			if (d <= 0)
				continue;
			arow = row++;
			m->rlb[arow] = m->rub[arow] = 1;
			/* u */
			m->obj[col] = d * in->unserved;
			m->cub[col] = 1;
			if (nz(m, arow, col, 1))
				goto out;
			col++;
			for (int j = 0; j < nn; j++) {
				int x = m->xcol[(size_t)i * nn + j];

				if (x < 0)
					continue;
				m->obj[col] = d * pl_unit_cost(in, r, j);
				m->cub[col] = 1;
				if (nz(m, arow, col, 1))
					goto out;
				/* y - x <= 0 */
				m->rlb[row] = -1e30;
				m->rub[row] = 0;
				if (nz(m, row, col, 1) || nz(m, row, x, -1))
					goto out;
				row++;
				col++;
			}
		}
	m->n_cols = col;
	m->n_rows = row;
	err = 0;
out:
	free(prev);
	if (err)
		ilp_free(m);
	return err;
}

static double mono(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec * 1e-9;
}

#ifdef IDN_HAVE_CBC
int pl_solve_exact(const struct pl_inst *in, double time_limit, const struct pl_sol *init,
		   struct pl_sol *s)
{
	int nn = in->n_nodes, err, n = 0;
	double t0 = mono();
	struct ilp m;
	int *start = NULL, *idx = NULL, *cnt = NULL;
	double *val = NULL;
	const double *xs;
	Cbc_Model *cbc = NULL;

	memset(s, 0, sizeof(*s));
	err = ilp_build(in, &m, true);
	if (err)
		return err;
	err = -ENOMEM;
	start = calloc(m.n_cols + 1, sizeof(int));
	cnt = calloc(m.n_cols + 1, sizeof(int));
	idx = malloc((m.n_nz + 1) * sizeof(int));
	val = malloc((m.n_nz + 1) * sizeof(double));
	if (!start || !cnt || !idx || !val)
		goto out;
	/* triplets -> column-major */
	for (int k = 0; k < m.n_nz; k++)
		start[m.ci[k] + 1]++;
	for (int c = 0; c < m.n_cols; c++)
		start[c + 1] += start[c];
	for (int k = 0; k < m.n_nz; k++) {
		int c = m.ci[k], at = start[c] + cnt[c]++;

		idx[at] = m.ri[k];
		val[at] = m.v[k];
	}
	cbc = Cbc_newModel();
	Cbc_loadProblem(cbc, m.n_cols, m.n_rows, start, idx, val, m.clb, m.cub, m.obj,
			m.rlb, m.rub);
	for (int c = 0; c < m.n_cols; c++)
		if (m.is_int[c])
			Cbc_setInteger(cbc, c);
	if (init) {
		/* every x column: 1 where the start places, else 0 */
		int nx = 0, *ci = malloc((in->n_caps * nn + 1) * sizeof(int));
		double *cv = malloc((in->n_caps * nn + 1) * sizeof(double));

		if (!ci || !cv) {
			free(ci);
			free(cv);
			goto out;
		}
		for (int c = 0; c < in->n_caps * nn; c++)
			if (m.xcol[c] >= 0) {
				ci[nx] = m.xcol[c];
				cv[nx++] = 0;
			}
		for (int t = 0; t < init->n; t++) {
			const struct pl_pair *p = &init->x[t];
			int x;

			if (p->cap < 0 || p->cap >= in->n_caps || p->node < 0 || p->node >= nn)
				continue;
			x = m.xcol[(size_t)p->cap * nn + p->node];
			for (int k = 0; x >= 0 && k < nx; k++)
				if (ci[k] == x)
					cv[k] = 1;
		}
		Cbc_setMIPStartI(cbc, nx, ci, cv);
		free(ci);
		free(cv);
	}
	Cbc_setLogLevel(cbc, 0);
	/*
	 * CBC counts CPU seconds (its default): what it proves then does not
	 * depend on how loaded the machine is; callers bound wall time from
	 * outside (on a loaded machine the limit stretches several times).
	 */
	if (time_limit > 0)
		Cbc_setMaximumSeconds(cbc, time_limit);
	Cbc_setAllowableGap(cbc, 1e-7);
	Cbc_setParameter(cbc, "ratioGap", "0");
	Cbc_solve(cbc);
	xs = Cbc_getColSolution(cbc);
	if (!xs) {
		err = -EIO;
		goto out;
	}
	for (int c = 0; c < in->n_caps * nn; c++)
		if (m.xcol[c] >= 0 && xs[m.xcol[c]] > 0.5)
			n++;
	s->x = malloc((n ? n : 1) * sizeof(*s->x));
	if (!s->x)
		goto out;
	for (int c = 0; c < in->n_caps * nn; c++)
		if (m.xcol[c] >= 0 && xs[m.xcol[c]] > 0.5)
			s->x[s->n++] = (struct pl_pair){ c / nn, c % nn };
	s->optimal = Cbc_isProvenOptimal(cbc);
	s->bound = Cbc_getBestPossibleObjValue(cbc);
	err = pl_evaluate(in, s, NULL);
	s->seconds = mono() - t0;
out:
	if (cbc)
		Cbc_deleteModel(cbc);
	free(start);
	free(cnt);
	free(idx);
	free(val);
	ilp_free(&m);
	if (err)
		pl_sol_free(s);
	return err;
}
#else
int pl_solve_exact(const struct pl_inst *in, double time_limit, const struct pl_sol *start,
		   struct pl_sol *s)
{
	return -ENOTSUP;
}
#endif

#ifdef IDN_HAVE_GLPK
int pl_lp_bound(const struct pl_inst *in, double time_limit, double *bound)
{
	struct ilp m;
	glp_prob *lp;
	glp_iptcp parm;
	int *ia, *ja, err, st;
	double *ar;

	/*
	 * Without the region rows: they leave the LP optimum where it is
	 * (measured on the bound tier) and slow GLPK's barrier tenfold.
	 */
	err = ilp_build(in, &m, false);
	if (err)
		return err;
	ia = malloc((m.n_nz + 1) * sizeof(int));
	ja = malloc((m.n_nz + 1) * sizeof(int));
	ar = malloc((m.n_nz + 1) * sizeof(double));
	if (!ia || !ja || !ar) {
		err = -ENOMEM;
		goto out;
	}
	glp_term_out(GLP_OFF);
	lp = glp_create_prob();
	glp_set_obj_dir(lp, GLP_MIN);
	glp_add_rows(lp, m.n_rows);
	glp_add_cols(lp, m.n_cols);
	for (int r = 0; r < m.n_rows; r++) {
		if (m.rlb[r] == m.rub[r])
			glp_set_row_bnds(lp, r + 1, GLP_FX, m.rlb[r], m.rub[r]);
		else
			glp_set_row_bnds(lp, r + 1, GLP_UP, 0, m.rub[r]);
	}
	for (int c = 0; c < m.n_cols; c++) {
		glp_set_col_bnds(lp, c + 1, GLP_DB, 0, m.cub[c]);
		glp_set_obj_coef(lp, c + 1, m.obj[c]);
	}
	for (int k = 0; k < m.n_nz; k++) {
		ia[k + 1] = m.ri[k] + 1;
		ja[k + 1] = m.ci[k] + 1;
		ar[k + 1] = m.v[k];
	}
	glp_load_matrix(lp, m.n_nz, ia, ja, ar);
	/*
	 * Interior point: on these LPs (many y <= x rows, highly degenerate)
	 * GLPK's simplex needs minutes where the barrier needs seconds. Its
	 * optimum matches the LP optimum to ~1e-8 relative. It has no time
	 * limit of its own: callers bound it from outside (PITFALLS).
	 */
	glp_init_iptcp(&parm);
	parm.msg_lev = GLP_MSG_OFF;
	(void)time_limit;
	st = glp_interior(lp, &parm);
	if (st == 0 && glp_ipt_status(lp) == GLP_OPT) {
		*bound = glp_ipt_obj_val(lp);
	} else {
		/* small or degenerate models the barrier refuses: simplex */
		glp_smcp sp;

		glp_init_smcp(&sp);
		sp.msg_lev = GLP_MSG_OFF;
		sp.presolve = GLP_ON;
		if (time_limit > 0)
			sp.tm_lim = (int)(time_limit * 1000);
		st = glp_simplex(lp, &sp);
		if (st == 0 && glp_get_status(lp) == GLP_OPT)
			*bound = glp_get_obj_val(lp);
		else
			err = st == GLP_ETMLIM ? -ETIMEDOUT : -EIO;
	}
	glp_delete_prob(lp);
out:
	free(ia);
	free(ja);
	free(ar);
	ilp_free(&m);
	return err;
}
#else
int pl_lp_bound(const struct pl_inst *in, double time_limit, double *bound)
{
	return -ENOTSUP;
}
#endif
