// SPDX-License-Identifier: GPL-2.0
/*
 * placement.c - the fast placement heuristic of DESIGN eq. 3 and the
 * objective every solver is measured with.
 *
 * Steps: (1) candidate pruning: per capability, only the k cheapest
 * allowed nodes of each region with demand (plus where it runs now) are
 * considered; (2) warm start from the previous placement, so a small
 * demand shift starts from where things are (bounded churn, together with
 * the deploy cost that only new placements pay); (3) lazy greedy: a heap
 * of upper bounds on the gain of opening (cap, node) - gains only shrink
 * as more nodes of a capability open (the objective is submodular per
 * capability), so a popped entry whose refreshed gain still tops the heap
 * is the true best; (4) local search per capability: drop, add and move
 * one placement, best improvement first, until a pass changes nothing.
 *
 * Memory budgets and hard constraints are never violated: every move is
 * checked against free memory and pl_allowed().
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "placement.h"

#define EPS 1e-9

bool pl_allowed(const struct pl_inst *in, int i, int j)
{
	const struct pl_cap *c = &in->caps[i];
	const struct pl_node *n = &in->nodes[j];

	if (!n->up || n->trust < c->min_trust)
		return false;
	if (c->privacy >= 2 && !n->confidential)
		return false;
	if (c->domain_mask && !(c->domain_mask & (1u << (n->domain & 31))))
		return false;
	if (c->runtime_mask && !(c->runtime_mask & (1u << (n->runtime & 31))))
		return false;
	return true;
}

double pl_unit_cost(const struct pl_inst *in, int r, int j)
{
	const struct pl_node *n = &in->nodes[j];
	double c = in->region_lat[r * in->n_regions + n->region] + n->extra_ms;

	if (n->region != r)
		c += in->mu;
	return c;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int pair_cmp(const void *a, const void *b)
{
	const struct pl_pair *x = a, *y = b;

	if (x->cap != y->cap)
		return x->cap < y->cap ? -1 : 1;
	return (x->node > y->node) - (x->node < y->node);
}

/* ---- solver state ---- */

struct cap_st {
	int *open, n_open, cap_open;
	int *cand, n_cand;
	int *reg, n_reg;	/* regions with demand */
	int *prev, n_prev;	/* nodes of the previous placement */
};

struct st {
	const struct pl_inst *in;
	double *unit;		/* [n_regions * n_nodes] */
	double *free_mem;	/* [n_nodes] */
	struct cap_st *cs;
	double t0, limit;
};

static bool was_placed(const struct cap_st *c, int j)
{
	for (int k = 0; k < c->n_prev; k++)
		if (c->prev[k] == j)
			return true;
	return false;
}

static double fixed_cost(const struct st *s, int i, int j)
{
	const struct pl_inst *in = s->in;
	double f = in->nu * (7 - in->nodes[j].trust);

	if (!was_placed(&s->cs[i], j))
		f += in->lambda * in->caps[i].mem;
	return f;
}

/*
 * Cost of capability i with its open set, minus node @drop (-1: none),
 * plus node @add (-1: none).
 */
static double cap_cost(const struct st *s, int i, int drop, int add)
{
	const struct pl_inst *in = s->in;
	const struct cap_st *c = &s->cs[i];
	double tot = 0;

	for (int k = 0; k < c->n_reg; k++) {
		int r = c->reg[k];
		const double *u = &s->unit[(size_t)r * in->n_nodes];
		double best = in->unserved;

		for (int o = 0; o < c->n_open; o++)
			if (c->open[o] != drop && u[c->open[o]] < best)
				best = u[c->open[o]];
		if (add >= 0 && u[add] < best)
			best = u[add];
		tot += in->caps[i].demand[r] * best;
	}
	for (int o = 0; o < c->n_open; o++)
		if (c->open[o] != drop)
			tot += fixed_cost(s, i, c->open[o]);
	if (add >= 0)
		tot += fixed_cost(s, i, add);
	return tot;
}

static int cap_open(struct st *s, int i, int j)
{
	struct cap_st *c = &s->cs[i];

	if (c->n_open == c->cap_open) {
		int n = c->cap_open ? 2 * c->cap_open : 4;
		int *p = realloc(c->open, n * sizeof(*p));

		if (!p)
			return -ENOMEM;
		c->open = p;
		c->cap_open = n;
	}
	c->open[c->n_open++] = j;
	s->free_mem[j] -= s->in->caps[i].mem;
	return 0;
}

static void cap_close(struct st *s, int i, int j)
{
	struct cap_st *c = &s->cs[i];

	for (int o = 0; o < c->n_open; o++)
		if (c->open[o] == j) {
			c->open[o] = c->open[--c->n_open];
			s->free_mem[j] += s->in->caps[i].mem;
			return;
		}
}

static bool fits(const struct st *s, int i, int j)
{
	return s->free_mem[j] + EPS >= s->in->caps[i].mem;
}

/* ---- candidate pruning ---- */

static struct st *sort_ctx;
static int sort_r;

static int node_by_cost(const void *a, const void *b)
{
	int x = *(const int *)a, y = *(const int *)b;
	const double *u = &sort_ctx->unit[(size_t)sort_r * sort_ctx->in->n_nodes];
	const struct pl_node *n = sort_ctx->in->nodes;

	if (u[x] != u[y])
		return u[x] < u[y] ? -1 : 1;
	if (n[x].trust != n[y].trust)	/* less risk first */
		return n[x].trust > n[y].trust ? -1 : 1;
	if (n[x].mem != n[y].mem)
		return n[x].mem > n[y].mem ? -1 : 1;
	return x - y;
}

static int build_candidates(struct st *s, int k)
{
	const struct pl_inst *in = s->in;
	int nn = in->n_nodes, nr = in->n_regions, err = -ENOMEM;
	int *order = malloc((size_t)nr * nn * sizeof(int));
	int *mark = calloc(nn, sizeof(int));

	if (!order || !mark)
		goto out;
	for (int r = 0; r < nr; r++) {
		int *o = &order[(size_t)r * nn];

		for (int j = 0; j < nn; j++)
			o[j] = j;
		sort_ctx = s;
		sort_r = r;
		qsort(o, nn, sizeof(int), node_by_cost);
	}
	for (int i = 0; i < in->n_caps; i++) {
		struct cap_st *c = &s->cs[i];
		int cap = 0;

		cap = c->n_reg * k + c->n_prev + 1;
		c->cand = malloc(cap * sizeof(int));
		if (!c->cand)
			goto out;
		for (int p = 0; p < c->n_prev; p++) {
			int j = c->prev[p];

			if (mark[j] != i + 1 && pl_allowed(in, i, j) &&
			    in->nodes[j].mem + EPS >= in->caps[i].mem) {
				mark[j] = i + 1;
				c->cand[c->n_cand++] = j;
			}
		}
		for (int g = 0; g < c->n_reg; g++) {
			const int *o = &order[(size_t)c->reg[g] * nn];
			int got = 0;

			for (int t = 0; t < nn && got < k; t++) {
				int j = o[t];

				if (!pl_allowed(in, i, j) || in->nodes[j].mem + EPS < in->caps[i].mem)
					continue;
				got++;
				if (mark[j] == i + 1)
					continue;
				mark[j] = i + 1;
				c->cand[c->n_cand++] = j;
			}
		}
	}
	err = 0;
out:
	free(order);
	free(mark);
	return err;
}

/* ---- lazy greedy ---- */

struct hent {
	double gain;
	int i, j;
};

struct heap {
	struct hent *a;
	int n, cap;
};

static int heap_push(struct heap *h, struct hent e)
{
	int k;

	if (h->n == h->cap) {
		int nc = h->cap ? 2 * h->cap : 1024;
		struct hent *p = realloc(h->a, nc * sizeof(*p));

		if (!p)
			return -ENOMEM;
		h->a = p;
		h->cap = nc;
	}
	k = h->n++;
	while (k > 0) {
		int up = (k - 1) / 2;

		if (h->a[up].gain >= e.gain)
			break;
		h->a[k] = h->a[up];
		k = up;
	}
	h->a[k] = e;
	return 0;
}

static struct hent heap_pop(struct heap *h)
{
	struct hent top = h->a[0], last = h->a[--h->n];
	int k = 0;

	for (;;) {
		int c = 2 * k + 1;

		if (c >= h->n)
			break;
		if (c + 1 < h->n && h->a[c + 1].gain > h->a[c].gain)
			c++;
		if (h->a[c].gain <= last.gain)
			break;
		h->a[k] = h->a[c];
		k = c;
	}
	if (h->n)
		h->a[k] = last;
	return top;
}

static double gain_of(const struct st *s, int i, int j)
{
	return cap_cost(s, i, -1, -1) - cap_cost(s, i, -1, j);
}

static bool is_open(const struct cap_st *c, int j)
{
	for (int o = 0; o < c->n_open; o++)
		if (c->open[o] == j)
			return true;
	return false;
}

static int greedy(struct st *s)
{
	struct heap h = {};
	int err = 0;

	for (int i = 0; i < s->in->n_caps; i++) {
		struct cap_st *c = &s->cs[i];

		for (int t = 0; t < c->n_cand; t++) {
			int j = c->cand[t];
			double g;

			if (is_open(c, j) || !fits(s, i, j))
				continue;
			g = gain_of(s, i, j);
			if (g <= EPS)
				continue;	/* gains only shrink: never useful */
			err = heap_push(&h, (struct hent){ g, i, j });
			if (err)
				goto out;
		}
	}
	while (h.n) {
		struct hent e = heap_pop(&h);

		if (!fits(s, e.i, e.j))
			continue;	/* free memory only shrinks in this phase */
		e.gain = gain_of(s, e.i, e.j);
		if (e.gain <= EPS)
			continue;
		if (h.n && e.gain < h.a[0].gain) {
			err = heap_push(&h, e);	/* stale bound: refreshed, back in */
			if (err)
				goto out;
			continue;
		}
		err = cap_open(s, e.i, e.j);
		if (err)
			goto out;
	}
out:
	free(h.a);
	return err;
}

/* ---- local search ---- */

static bool timed_out(const struct st *s)
{
	return s->limit > 0 && now_s() - s->t0 > s->limit;
}

/* Best single move for capability i; applies it. Return 1 if improved. */
static int improve_cap(struct st *s, int i)
{
	struct cap_st *c = &s->cs[i];
	double cur = cap_cost(s, i, -1, -1), best = cur - 1e-7 * (1 + cur);
	int bd = -1, ba = -1, err;

	for (int o = 0; o < c->n_open; o++) {
		int j = c->open[o];
		double v = cap_cost(s, i, j, -1);

		if (v < best) {
			best = v;
			bd = j;
			ba = -1;
		}
	}
	for (int t = 0; t < c->n_cand; t++) {
		int a = c->cand[t];
		double v;

		if (is_open(c, a) || !fits(s, i, a))
			continue;
		v = cap_cost(s, i, -1, a);
		if (v < best) {
			best = v;
			bd = -1;
			ba = a;
		}
		for (int o = 0; o < c->n_open; o++) {
			v = cap_cost(s, i, c->open[o], a);
			if (v < best) {
				best = v;
				bd = c->open[o];
				ba = a;
			}
		}
	}
	if (bd < 0 && ba < 0)
		return 0;
	if (bd >= 0)
		cap_close(s, i, bd);
	if (ba >= 0) {
		err = cap_open(s, i, ba);
		if (err)
			return err;
	}
	return 1;
}

/*
 * Memory-tight move: capability i wants node a (a cheaper node) but a is
 * full; evict one placement (k, a) whose removal costs k less than i
 * gains, if k then still fits elsewhere or simply loses that replica.
 */
static int improve_evict(struct st *s, int i)
{
	const struct pl_inst *in = s->in;
	struct cap_st *c = &s->cs[i];
	double cur = cap_cost(s, i, -1, -1);

	for (int t = 0; t < c->n_cand; t++) {
		int a = c->cand[t];
		double gi;

		if (is_open(c, a) || fits(s, i, a))
			continue;
		gi = cur - cap_cost(s, i, -1, a);
		if (gi <= EPS)
			continue;
		for (int k = 0; k < in->n_caps; k++) {
			struct cap_st *ck = &s->cs[k];
			double lk;

			if (k == i || !is_open(ck, a))
				continue;
			if (s->free_mem[a] + in->caps[k].mem + EPS < in->caps[i].mem)
				continue;
			lk = cap_cost(s, k, a, -1) - cap_cost(s, k, -1, -1);
			if (lk + 1e-7 * (1 + cur) < gi) {
				cap_close(s, k, a);
				return cap_open(s, i, a) ?: 1;
			}
		}
	}
	return 0;
}

/*
 * Exchange: capability i on a and k on b trade nodes when memory allows
 * and the sum of both costs drops (packing moves a single-capability
 * search cannot make).
 */
static int improve_exchange(struct st *s, int i)
{
	const struct pl_inst *in = s->in;
	struct cap_st *c = &s->cs[i];
	double ci = cap_cost(s, i, -1, -1);

	for (int o = 0; o < c->n_open; o++) {
		int a = c->open[o];

		for (int k = 0; k < in->n_caps; k++) {
			struct cap_st *ck = &s->cs[k];
			double ck0, mi = in->caps[i].mem, mk = in->caps[k].mem;

			if (k == i || is_open(ck, a) || !pl_allowed(in, k, a) ||
			    s->free_mem[a] + mi + EPS < mk)
				continue;
			ck0 = cap_cost(s, k, -1, -1);
			for (int q = 0; q < ck->n_open; q++) {
				int b = ck->open[q];
				double v;

				if (b == a || is_open(c, b) || !pl_allowed(in, i, b) ||
				    s->free_mem[b] + mk + EPS < mi)
					continue;
				v = cap_cost(s, i, a, b) + cap_cost(s, k, b, a);
				if (v + 1e-7 * (1 + ci + ck0) < ci + ck0) {
					cap_close(s, i, a);
					cap_close(s, k, b);
					if (cap_open(s, i, b) || cap_open(s, k, a))
						return -ENOMEM;
					return 1;
				}
			}
		}
	}
	return 0;
}

static int local_search(struct st *s, int max_passes, bool evict)
{
	for (int pass = 0; pass < max_passes; pass++) {
		int changed = 0;

		for (int i = 0; i < s->in->n_caps; i++) {
			int r;

			while ((r = improve_cap(s, i)) > 0)
				changed++;
			if (r < 0)
				return r;
			if (evict) {
				r = improve_evict(s, i);
				if (r < 0)
					return r;
				changed += r;
				r = improve_exchange(s, i);
				if (r < 0)
					return r;
				changed += r;
			}
			if ((i & 63) == 0 && timed_out(s))
				return 0;
		}
		if (!changed)
			break;
	}
	return 0;
}

/* ---- iterated local search (small instances) ---- */

static uint64_t ils_rnd(uint64_t *x)
{
	uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static double total_cost(const struct st *s)
{
	double t = 0;

	for (int i = 0; i < s->in->n_caps; i++)
		t += cap_cost(s, i, -1, -1);
	return t;
}

static int snapshot(const struct st *s, struct pl_pair **out, int *n)
{
	int cnt = 0;
	struct pl_pair *p;

	for (int i = 0; i < s->in->n_caps; i++)
		cnt += s->cs[i].n_open;
	p = realloc(*out, (cnt + 1) * sizeof(*p));
	if (!p)
		return -ENOMEM;
	*out = p;
	*n = 0;
	for (int i = 0; i < s->in->n_caps; i++)
		for (int o = 0; o < s->cs[i].n_open; o++)
			p[(*n)++] = (struct pl_pair){ i, s->cs[i].open[o] };
	return 0;
}

static int restore(struct st *s, const struct pl_pair *p, int n)
{
	for (int i = 0; i < s->in->n_caps; i++)
		while (s->cs[i].n_open)
			cap_close(s, i, s->cs[i].open[0]);
	for (int t = 0; t < n; t++)
		if (cap_open(s, p[t].cap, p[t].node))
			return -ENOMEM;
	return 0;
}

/*
 * Kick the incumbent (close a few random placements), repair with greedy
 * and local search, keep the result when it is cheaper. Deterministic.
 */
static int ils(struct st *s, int iters, int max_passes)
{
	struct pl_pair *best = NULL;
	int n_best = 0, err;
	double best_cost = total_cost(s);
	uint64_t seed = 12345;

	err = snapshot(s, &best, &n_best);
	for (int it = 0; !err && it < iters && !timed_out(s) && n_best; it++) {
		int kick = 1 + ils_rnd(&seed) % 3;
		double c;

		for (int k = 0; k < kick; k++) {
			int i = ils_rnd(&seed) % s->in->n_caps;
			struct cap_st *c = &s->cs[i];
			int a;

			if (it & 1) {
				if (c->n_open)
					cap_close(s, i, c->open[ils_rnd(&seed) % c->n_open]);
				continue;
			}
			/* force i onto a candidate, evicting random residents */
			if (!c->n_cand)
				continue;
			a = c->cand[ils_rnd(&seed) % c->n_cand];
			if (is_open(c, a))
				continue;
			for (int g = 0; !fits(s, i, a) && g < s->in->n_caps; g++) {
				int v = ils_rnd(&seed) % s->in->n_caps;

				if (v != i && is_open(&s->cs[v], a))
					cap_close(s, v, a);
			}
			if (fits(s, i, a) && cap_open(s, i, a))
				return -ENOMEM;
		}
		err = greedy(s);
		if (!err)
			err = local_search(s, max_passes, true);
		if (err)
			break;
		c = total_cost(s);
		if (c < best_cost - 1e-9 * (1 + best_cost)) {
			best_cost = c;
			err = snapshot(s, &best, &n_best);
		} else {
			err = restore(s, best, n_best);
		}
	}
	if (!err)
		err = restore(s, best, n_best);
	free(best);
	return err;
}

/* ---- entry points ---- */

static void st_free(struct st *s)
{
	if (s->cs)
		for (int i = 0; i < s->in->n_caps; i++) {
			free(s->cs[i].open);
			free(s->cs[i].cand);
			free(s->cs[i].reg);
			free(s->cs[i].prev);
		}
	free(s->cs);
	free(s->unit);
	free(s->free_mem);
}

static int st_init(struct st *s, const struct pl_inst *in)
{
	int nn = in->n_nodes, nr = in->n_regions;

	memset(s, 0, sizeof(*s));
	s->in = in;
	s->unit = malloc((size_t)nr * nn * sizeof(double));
	s->free_mem = malloc(nn * sizeof(double));
	s->cs = calloc(in->n_caps ? in->n_caps : 1, sizeof(*s->cs));
	if (!s->unit || !s->free_mem || !s->cs)
		return -ENOMEM;
	for (int r = 0; r < nr; r++)
		for (int j = 0; j < nn; j++)
			s->unit[(size_t)r * nn + j] = pl_unit_cost(in, r, j);
	for (int j = 0; j < nn; j++)
		s->free_mem[j] = in->nodes[j].mem;
	for (int i = 0; i < in->n_caps; i++) {
		struct cap_st *c = &s->cs[i];

		c->reg = malloc((nr ? nr : 1) * sizeof(int));
		if (!c->reg)
			return -ENOMEM;
		for (int r = 0; r < nr; r++)
			if (in->caps[i].demand[r] > 0)
				c->reg[c->n_reg++] = r;
	}
	for (int p = 0; p < in->n_prev; p++) {
		const struct pl_pair *x = &in->prev[p];
		struct cap_st *c;
		int *q;

		if (x->cap < 0 || x->cap >= in->n_caps || x->node < 0 || x->node >= nn)
			continue;
		c = &s->cs[x->cap];
		q = realloc(c->prev, (c->n_prev + 1) * sizeof(int));
		if (!q)
			return -ENOMEM;
		c->prev = q;
		c->prev[c->n_prev++] = x->node;
	}
	return 0;
}

int pl_solve(const struct pl_inst *in, const struct pl_opts *o, struct pl_sol *sol)
{
	struct pl_opts def = {};
	struct st s;
	int err, n = 0;
	bool small;

	if (!o)
		o = &def;
	memset(sol, 0, sizeof(*sol));
	err = st_init(&s, in);
	if (err)
		goto out;
	s.t0 = now_s();
	s.limit = o->time_limit;
	err = build_candidates(&s, o->k_per_region > 0 ? o->k_per_region : 8);
	if (err)
		goto out;
	/* Warm start: what runs now stays unless the search finds better. */
	if (!o->no_warm)
		for (int i = 0; i < in->n_caps; i++) {
			struct cap_st *c = &s.cs[i];

			for (int p = 0; p < c->n_prev; p++) {
				int j = c->prev[p];

				if (pl_allowed(in, i, j) && fits(&s, i, j) && !is_open(c, j)) {
					err = cap_open(&s, i, j);
					if (err)
						goto out;
				}
			}
		}
	err = greedy(&s);
	if (err)
		goto out;
	/* Eviction moves scan every capability: only on small instances. */
	small = (long)in->n_caps * in->n_nodes <= 200000;
	err = local_search(&s, o->max_passes > 0 ? o->max_passes : 50, small);
	if (!err && small && !o->no_ils)
		err = ils(&s, o->ils_iters > 0 ? o->ils_iters : 300,
			  o->max_passes > 0 ? o->max_passes : 50);
	if (err)
		goto out;

	for (int i = 0; i < in->n_caps; i++)
		n += s.cs[i].n_open;
	sol->x = malloc((n ? n : 1) * sizeof(*sol->x));
	if (!sol->x) {
		err = -ENOMEM;
		goto out;
	}
	for (int i = 0; i < in->n_caps; i++)
		for (int k = 0; k < s.cs[i].n_open; k++)
			sol->x[sol->n++] = (struct pl_pair){ i, s.cs[i].open[k] };
	qsort(sol->x, sol->n, sizeof(*sol->x), pair_cmp);
	err = pl_evaluate(in, sol, NULL);
	sol->seconds = now_s() - s.t0;
out:
	st_free(&s);
	if (err)
		pl_sol_free(sol);
	return err;
}

int pl_evaluate(const struct pl_inst *in, struct pl_sol *s, const char **why)
{
	double *used = calloc(in->n_nodes ? in->n_nodes : 1, sizeof(double));
	const char *bad = NULL;
	int a = 0;

	if (!used)
		return -ENOMEM;
	qsort(s->x, s->n, sizeof(*s->x), pair_cmp);
	s->cost = s->lat = s->net = s->deploy = s->risk = s->unserved_demand = 0;
	for (int t = 0; t < s->n; t++) {
		const struct pl_pair *x = &s->x[t];

		if (x->cap < 0 || x->cap >= in->n_caps || x->node < 0 || x->node >= in->n_nodes) {
			bad = "placement out of range";
			goto out;
		}
		if (t && !pair_cmp(&s->x[t - 1], x)) {
			bad = "duplicate placement";
			goto out;
		}
		if (!pl_allowed(in, x->cap, x->node)) {
			bad = "placement violates a policy or compatibility constraint";
			goto out;
		}
		used[x->node] += in->caps[x->cap].mem;
	}
	for (int j = 0; j < in->n_nodes; j++)
		if (used[j] > in->nodes[j].mem + 1e-6) {
			bad = "node memory budget exceeded";
			goto out;
		}
	for (int i = 0; i < in->n_caps; i++) {
		int b = a;

		while (a < s->n && s->x[a].cap == i) {
			int j = s->x[a].node;
			bool old = false;

			for (int p = 0; p < in->n_prev; p++)
				if (in->prev[p].cap == i && in->prev[p].node == j)
					old = true;
			if (!old)
				s->deploy += in->lambda * in->caps[i].mem;
			s->risk += in->nu * (7 - in->nodes[j].trust);
			a++;
		}
		for (int r = 0; r < in->n_regions; r++) {
			double d = in->caps[i].demand[r], best = in->unserved;
			int bj = -1;

			if (d <= 0)
				continue;
			for (int t = b; t < a; t++) {
				double u = pl_unit_cost(in, r, s->x[t].node);

				if (u < best) {
					best = u;
					bj = s->x[t].node;
				}
			}
			if (bj < 0) {
				s->unserved_demand += d;
				s->lat += d * best;
			} else {
				double wan = in->nodes[bj].region != r ? in->mu : 0;

				s->lat += d * (best - wan);
				s->net += d * wan;
			}
		}
	}
	s->cost = s->lat + s->net + s->deploy + s->risk;
out:
	free(used);
	if (bad) {
		if (why)
			*why = bad;
		return -EINVAL;
	}
	return 0;
}

void pl_sol_free(struct pl_sol *s)
{
	free(s->x);
	s->x = NULL;
	s->n = 0;
}

int pl_sol_diff(const struct pl_sol *a, const struct pl_sol *b)
{
	int i = 0, j = 0, d = 0;

	/* both sorted by (cap, node) */
	while (i < a->n || j < b->n) {
		int c = i >= a->n ? 1 : j >= b->n ? -1 : pair_cmp(&a->x[i], &b->x[j]);

		if (c == 0) {
			i++;
			j++;
		} else if (c < 0) {
			i++;
			d++;
		} else {
			j++;
			d++;
		}
	}
	return d;
}
