// SPDX-License-Identifier: GPL-2.0
/*
 * placement.c - the fast placement heuristic of DESIGN eq. 3 and the
 * objective every solver is measured with.
 *
 * Steps: (1) candidate pruning: per capability and region with demand,
 * only k allowed nodes that still have room for it are live candidates
 * (plus where it runs now), drawn from two orders of the region's nodes:
 * by unit cost and by risk then unit cost; a cursor hands out the next
 * node of an order when a candidate fills up, so capabilities never
 * starve on the few cheapest nodes of a region (static top-k lists left
 * a third of the capabilities of a 2000x5000 instance unplaced); (2) warm
 * start from the previous placement, so a small demand shift starts from
 * where things are (bounded churn, together with the deploy cost that
 * only new placements pay); (3) lazy greedy: a heap of upper bounds on
 * the gain of opening (cap, node) - gains only shrink as more nodes of a
 * capability open (the objective is submodular per capability), so a
 * popped entry whose refreshed gain still tops the heap is the true best;
 * (4) local search per capability: drop, add and move one placement, best
 * improvement first, until a pass changes nothing; then moves between
 * capabilities: evict a resident of a full node, exchange two placements,
 * relocate a resident elsewhere to make room, make room for a capability
 * with no replica by moving out several residents (on small instances over
 * every capability, on large ones over the residents of the capability's
 * candidate nodes); (5) on small instances, a second start with a
 * coverage pass (one replica of every capability, biggest first) and
 * iterated local search.
 *
 * pl_nomem_bound() is a lower bound for any size: memory budgets relaxed,
 * each capability solved exactly on its own.
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
	if (n->drain) {		/* only what it already holds */
		bool held = false;

		for (int k = 0; k < in->n_prev && !held; k++)
			held = in->prev[k].cap == i && in->prev[k].node == j;
		if (!held)
			return false;
	}
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
	int *cand, n_cand, cap_cand;
	int *cand_g;		/* [n_cand] index into reg[] it came from, -1 */
	int *reg, n_reg;	/* regions with demand */
	int *cur;		/* [2 * n_reg] cursors: g < n_reg into order[reg[g]],
				 * else into order_risk[reg[g - n_reg]] */
	int *prev, n_prev;	/* nodes of the previous placement */
};

struct vec {
	int *a, n, cap;
};

struct st {
	const struct pl_inst *in;
	double *unit;		/* [n_regions * n_nodes] */
	double *free_mem;	/* [n_nodes] */
	int *order;		/* [n_regions * n_nodes] nodes by unit cost */
	int *order_risk;	/* the same by risk first (trust down), unit cost */
	struct vec *res;	/* [n_nodes] capabilities resident there */
	struct cap_st *cs;
	int k;			/* candidates per (capability, region) */
	double t0, limit;
	struct pl_sol *stats;
	bool first_only;	/* greedy: first replicas only, by gain per GB */
	double ils_until;	/* iterated local search stops then (0: no limit) */
};

static int vec_add(struct vec *v, int x)
{
	if (v->n == v->cap) {
		int n = v->cap ? 2 * v->cap : 4;
		int *p = realloc(v->a, n * sizeof(*p));

		if (!p)
			return -ENOMEM;
		v->a = p;
		v->cap = n;
	}
	v->a[v->n++] = x;
	return 0;
}

static void vec_del(struct vec *v, int x)
{
	for (int k = 0; k < v->n; k++)
		if (v->a[k] == x) {
			v->a[k] = v->a[--v->n];
			return;
		}
}

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
	return vec_add(&s->res[j], i);
}

static void cap_close(struct st *s, int i, int j)
{
	struct cap_st *c = &s->cs[i];

	for (int o = 0; o < c->n_open; o++)
		if (c->open[o] == j) {
			c->open[o] = c->open[--c->n_open];
			s->free_mem[j] += s->in->caps[i].mem;
			vec_del(&s->res[j], i);
			return;
		}
}

static bool fits(const struct st *s, int i, int j)
{
	return s->free_mem[j] + EPS >= s->in->caps[i].mem;
}

static bool is_open(const struct cap_st *c, int j)
{
	for (int o = 0; o < c->n_open; o++)
		if (c->open[o] == j)
			return true;
	return false;
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

static int node_by_risk(const void *a, const void *b)
{
	int x = *(const int *)a, y = *(const int *)b;
	const struct pl_node *n = sort_ctx->in->nodes;

	if (n[x].trust != n[y].trust)
		return n[x].trust > n[y].trust ? -1 : 1;
	return node_by_cost(a, b);
}

static bool in_cand(const struct cap_st *c, int j)
{
	for (int t = 0; t < c->n_cand; t++)
		if (c->cand[t] == j)
			return true;
	return false;
}

static int add_cand(struct cap_st *c, int j, int g)
{
	if (c->n_cand == c->cap_cand) {
		int n = c->cap_cand ? 2 * c->cap_cand : 16;
		int *p = realloc(c->cand, n * sizeof(*p)), *q;

		if (!p)
			return -ENOMEM;
		c->cand = p;
		q = realloc(c->cand_g, n * sizeof(*q));
		if (!q)
			return -ENOMEM;
		c->cand_g = q;
		c->cap_cand = n;
	}
	c->cand_g[c->n_cand] = g;
	c->cand[c->n_cand++] = j;
	return 0;
}

/*
 * Each demand region of a capability has two candidate streams (index g
 * in 0 .. 2 * n_reg - 1): its nodes by unit cost (what a heavy demand
 * wants) and by risk, then unit cost (what a light one wants: there the
 * risk term outweighs a millisecond).
 */
static int n_streams(const struct cap_st *c)
{
	return 2 * c->n_reg;
}

static int stream_k(const struct st *s, const struct cap_st *c, int g)
{
	return g < c->n_reg ? s->k : (s->k + 1) / 2;
}

/*
 * The next node of stream g that capability i may use and that has room
 * for it now; it becomes a candidate. Cursors only advance: over a whole
 * solve each stream is scanned at most once. Return the node, -1 when
 * none is left, -ENOMEM.
 */
static int next_cand(struct st *s, int i, int g)
{
	const struct pl_inst *in = s->in;
	struct cap_st *c = &s->cs[i];
	const int *o = g < c->n_reg ? &s->order[(size_t)c->reg[g] * in->n_nodes] :
		&s->order_risk[(size_t)c->reg[g - c->n_reg] * in->n_nodes];

	while (c->cur[g] < in->n_nodes) {
		int j = o[c->cur[g]++];

		if (!fits(s, i, j) || !pl_allowed(in, i, j) || in_cand(c, j))
			continue;
		return add_cand(c, j, g) ?: j;
	}
	return -1;
}

static int build_order(struct st *s)
{
	const struct pl_inst *in = s->in;
	int nn = in->n_nodes;

	s->order = malloc((size_t)in->n_regions * nn * sizeof(int) + 1);
	s->order_risk = malloc((size_t)in->n_regions * nn * sizeof(int) + 1);
	if (!s->order || !s->order_risk)
		return -ENOMEM;
	for (int r = 0; r < in->n_regions; r++) {
		int *o = &s->order[(size_t)r * nn], *q = &s->order_risk[(size_t)r * nn];

		for (int j = 0; j < nn; j++)
			o[j] = j;
		sort_ctx = s;
		sort_r = r;
		qsort(o, nn, sizeof(int), node_by_cost);
		memcpy(q, o, nn * sizeof(int));
		qsort(q, nn, sizeof(int), node_by_risk);
	}
	/* where it runs now is always a candidate */
	for (int i = 0; i < in->n_caps; i++) {
		struct cap_st *c = &s->cs[i];

		for (int p = 0; p < c->n_prev; p++) {
			int j = c->prev[p];

			if (!in_cand(c, j) && pl_allowed(in, i, j) &&
			    in->nodes[j].mem + EPS >= in->caps[i].mem && add_cand(c, j, -1))
				return -ENOMEM;
		}
	}
	return 0;
}

/*
 * Keep at least @want candidates per demand region that are not open and
 * have room now (local search: adds need somewhere to go).
 */
static int top_up(struct st *s, int i, int want)
{
	struct cap_st *c = &s->cs[i];

	for (int g = 0; g < n_streams(c); g++) {
		int have = 0, j = 0;

		for (int t = 0; t < c->n_cand; t++)
			if (c->cand_g[t] == g && fits(s, i, c->cand[t]) && !is_open(c, c->cand[t]))
				have++;
		while (have < want && (j = next_cand(s, i, g)) >= 0)
			have++;
		if (j == -ENOMEM)
			return j;
	}
	return 0;
}

/* ---- lazy greedy ---- */

struct hent {
	double gain;
	int i, j, g;	/* g: the candidate's region index, -1 */
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

/* Heap key: the gain, or in the coverage pass the gain per GB. */
static double key_of(struct st *s, int i, int j)
{
	double gain = gain_of(s, i, j);

	s->stats->evals++;
	if (gain <= EPS)
		return 0;
	/* coverage: biggest models first (first-fit decreasing), each where it gains most */
	return s->first_only ? s->in->caps[i].mem * 1e7 + gain : gain;
}

static int push_gain(struct st *s, struct heap *h, int i, int j, int g)
{
	double key;

	if (s->first_only && s->cs[i].n_open)
		return 0;
	key = key_of(s, i, j);
	if (key <= 0)
		return 0;	/* gains only shrink: never useful */
	return heap_push(h, (struct hent){ key, i, j, g });
}

/*
 * A candidate of (i, region g) filled up or opened: hand out the region's
 * next node with room, so each (capability, region) keeps k live
 * candidates in the heap.
 */
static int refill(struct st *s, struct heap *h, int i, int g)
{
	int j;

	if (g < 0)
		return 0;
	j = next_cand(s, i, g);
	if (j < 0)
		return j == -1 ? 0 : j;
	return push_gain(s, h, i, j, g);
}

static int greedy(struct st *s)
{
	struct heap h = {};
	int err = 0;

	for (int i = 0; i < s->in->n_caps && !err; i++) {
		struct cap_st *c = &s->cs[i];

		/* first the candidates it has (previous nodes, earlier rounds) */
		for (int t = 0; t < c->n_cand && !err; t++) {
			int j = c->cand[t];

			if (!is_open(c, j) && fits(s, i, j))
				err = push_gain(s, &h, i, j, c->cand_g[t]);
		}
		/* then k fresh ones per region (fewer when it has some already) */
		for (int g = 0; g < n_streams(c) && !err; g++) {
			int have = 0, j;

			for (int t = 0; t < c->n_cand; t++)
				if (c->cand_g[t] == g && fits(s, i, c->cand[t]))
					have++;
			for (; have < stream_k(s, c, g); have++) {
				j = next_cand(s, i, g);
				if (j < 0) {
					err = j == -1 ? 0 : j;
					break;
				}
				err = push_gain(s, &h, i, j, g);
				if (err)
					break;
			}
		}
	}
	while (!err && h.n) {
		struct hent e = heap_pop(&h);

		if (s->first_only && s->cs[e.i].n_open)
			continue;
		if (!fits(s, e.i, e.j) || is_open(&s->cs[e.i], e.j)) {
			/* free memory only shrinks in this phase */
			err = refill(s, &h, e.i, e.g);
			continue;
		}
		e.gain = key_of(s, e.i, e.j);
		if (e.gain <= 0)
			continue;
		if (h.n && e.gain < h.a[0].gain) {
			err = heap_push(&h, e);	/* stale bound: refreshed, back in */
			continue;
		}
		err = cap_open(s, e.i, e.j);
		s->stats->greedy_adds++;
		/* keep a live candidate in that region for a second replica */
		if (!err)
			err = refill(s, &h, e.i, e.g);
	}
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

/*
 * The same two moves on large instances, restricted to the residents of
 * the capability's candidate nodes (s->res) instead of every capability.
 */
static int improve_evict_res(struct st *s, int i)
{
	const struct pl_inst *in = s->in;
	struct cap_st *c = &s->cs[i];
	double cur = cap_cost(s, i, -1, -1);

	for (int t = 0; t < c->n_cand; t++) {
		int a = c->cand[t];
		const struct vec *rv = &s->res[a];
		double gi;

		if (is_open(c, a) || fits(s, i, a))
			continue;
		gi = cur - cap_cost(s, i, -1, a);
		if (gi <= EPS)
			continue;
		for (int q = 0; q < rv->n; q++) {
			int k = rv->a[q];
			double lk;

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

static int improve_exchange_res(struct st *s, int i)
{
	const struct pl_inst *in = s->in;
	struct cap_st *c = &s->cs[i];
	double ci = cap_cost(s, i, -1, -1), mi = in->caps[i].mem;

	for (int t = 0; t < c->n_cand; t++) {
		int b = c->cand[t];
		const struct vec *rv = &s->res[b];

		if (is_open(c, b))
			continue;
		for (int q = 0; q < rv->n; q++) {
			int k = rv->a[q];
			struct cap_st *ck = &s->cs[k];
			double ck0 = -1, mk = in->caps[k].mem;

			if (s->free_mem[b] + mk + EPS < mi)
				continue;
			for (int o = 0; o < c->n_open; o++) {
				int a = c->open[o];
				double v;

				if (is_open(ck, a) || s->free_mem[a] + mi + EPS < mk ||
				    !pl_allowed(in, k, a))
					continue;
				if (ck0 < 0)
					ck0 = cap_cost(s, k, -1, -1);
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

/*
 * Ejection move for memory-tight instances: capability i wants node a,
 * which is full; one resident k of a leaves it for another node b of its
 * candidates that has room (or k simply loses that replica), when i's
 * gain beats k's loss. Tries the best b for each k.
 */
static int improve_relocate(struct st *s, int i)
{
	const struct pl_inst *in = s->in;
	struct cap_st *c = &s->cs[i];
	double cur = cap_cost(s, i, -1, -1), mi = in->caps[i].mem;

	for (int t = 0; t < c->n_cand; t++) {
		int a = c->cand[t];
		const struct vec *rv = &s->res[a];
		double gi;

		if (is_open(c, a) || fits(s, i, a))
			continue;
		gi = cur - cap_cost(s, i, -1, a);
		if (gi <= EPS)
			continue;
		for (int q = 0; q < rv->n; q++) {
			int k = rv->a[q], bb = -1;
			struct cap_st *ck = &s->cs[k];
			double mk = in->caps[k].mem, ck0, lk;

			if (s->free_mem[a] + mk + EPS < mi)
				continue;
			ck0 = cap_cost(s, k, -1, -1);
			lk = cap_cost(s, k, a, -1) - ck0;
			for (int u = 0; u < ck->n_cand; u++) {
				int b = ck->cand[u];
				double v;

				if (b == a || is_open(ck, b) || !fits(s, k, b))
					continue;
				v = cap_cost(s, k, a, b) - ck0;
				if (v < lk) {
					lk = v;
					bb = b;
				}
			}
			if (lk + 1e-7 * (1 + cur + ck0) < gi) {
				cap_close(s, k, a);
				if (cap_open(s, i, a) || (bb >= 0 && cap_open(s, k, bb)))
					return -ENOMEM;
				return 1;
			}
		}
	}
	return 0;
}

/*
 * Best way for resident k to leave node a: drop that replica or move it
 * to a candidate b with room. Return the cost change, *to: b or -1.
 */
static double leave_cost(struct st *s, int k, int a, int *to)
{
	struct cap_st *ck = &s->cs[k];
	double ck0 = cap_cost(s, k, -1, -1), best = cap_cost(s, k, a, -1) - ck0;

	*to = -1;
	for (int u = 0; u < ck->n_cand; u++) {
		int b = ck->cand[u];
		double v;

		if (b == a || is_open(ck, b) || !fits(s, k, b))
			continue;
		v = cap_cost(s, k, a, b) - ck0;
		if (v < best) {
			best = v;
			*to = b;
		}
	}
	return best;
}

/*
 * Multi-ejection for a capability with no replica at all (its whole
 * demand unserved): pick a candidate node, let its residents leave one by
 * one, cheapest loss per GB first (each dropped or moved to where it
 * fits), until the capability fits; keep it when the sum of the losses is
 * below its gain, else undo. What single evictions miss on memory-tight
 * instances: a big model needs room that no one resident frees.
 */
static int improve_insert(struct st *s, int i)
{
	const struct pl_inst *in = s->in;
	struct cap_st *c = &s->cs[i];
	double cur, mi = in->caps[i].mem;
	struct { int k, to; } log[64];

	if (c->n_open || !c->n_reg)
		return 0;
	cur = cap_cost(s, i, -1, -1);
	for (int t = 0; t < c->n_cand; t++) {
		int a = c->cand[t], n = 0;
		double gi, loss = 0;

		if (fits(s, i, a) || in->nodes[a].mem + EPS < mi)
			continue;
		gi = cur - cap_cost(s, i, -1, a);
		if (gi <= EPS)
			continue;
		while (!fits(s, i, a) && n < 64 && s->res[a].n) {
			const struct vec *rv = &s->res[a];
			int bk = -1, bto = -1;
			double bper = 0, bl = 0;

			for (int q = 0; q < rv->n; q++) {
				int k = rv->a[q], to;
				double l = leave_cost(s, k, a, &to), per = l / in->caps[k].mem;

				if (bk < 0 || per < bper) {
					bk = k;
					bto = to;
					bper = per;
					bl = l;
				}
			}
			loss += bl;
			if (loss >= gi)
				break;
			cap_close(s, bk, a);
			if (bto >= 0 && cap_open(s, bk, bto))
				return -ENOMEM;
			log[n].k = bk;
			log[n++].to = bto;
		}
		if (fits(s, i, a) && loss + 1e-7 * (1 + cur) < gi)
			return cap_open(s, i, a) ?: 1;
		/* undo, last first */
		while (n--) {
			if (log[n].to >= 0)
				cap_close(s, log[n].k, log[n].to);
			if (cap_open(s, log[n].k, a))
				return -ENOMEM;
		}
	}
	return 0;
}

/*
 * Passes over every capability until one changes nothing. @cross: moves
 * between capabilities too (0 none, 1 over every capability - small
 * instances, 2 over the residents of candidate nodes - large ones).
 */
static int local_search(struct st *s, int max_passes, int cross)
{
	for (int pass = 0; pass < max_passes; pass++) {
		int changed = 0;

		s->stats->ls_passes++;
		for (int i = 0; i < s->in->n_caps; i++) {
			int r;

			r = top_up(s, i, 2);
			if (r < 0)
				return r;
			while ((r = improve_cap(s, i)) > 0)
				changed++;
			if (r < 0)
				return r;
			if (cross) {
				r = cross == 1 ? improve_evict(s, i) : improve_evict_res(s, i);
				if (r < 0)
					return r;
				changed += r;
				r = cross == 1 ? improve_exchange(s, i) : improve_exchange_res(s, i);
				if (r < 0)
					return r;
				changed += r;
				r = improve_relocate(s, i);
				if (r < 0)
					return r;
				changed += r;
				r = improve_insert(s, i);
				if (r < 0)
					return r;
				changed += r;
			}
			if ((i & 63) == 0 && timed_out(s))
				return 0;
		}
		s->stats->ls_moves += changed;
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
	for (int it = 0; !err && it < iters && !timed_out(s) && n_best &&
	     !(it >= 300 && s->ils_until > 0 && now_s() > s->ils_until); it++) {
		int kick = 1 + ils_rnd(&seed) % 3;
		double c;

		s->stats->ils_kicks++;
		for (int k = 0; k < kick; k++) {
			int i = ils_rnd(&seed) % s->in->n_caps;
			struct cap_st *c = &s->cs[i];
			int a;

			if (it % 3 == 1) {
				if (c->n_open)
					cap_close(s, i, c->open[ils_rnd(&seed) % c->n_open]);
				continue;
			}
			if (it % 3 == 2) {
				/* ruin a node: every resident leaves, greedy refills */
				int j = ils_rnd(&seed) % s->in->n_nodes;

				while (s->res[j].n)
					cap_close(s, s->res[j].a[0], j);
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
			err = local_search(s, max_passes, 1);
		if (err)
			break;
		c = total_cost(s);
		if (c < best_cost - 1e-9 * (1 + best_cost)) {
			best_cost = c;
			s->stats->ils_wins++;
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

/*
 * Kicks of the iterated local search: each costs a greedy and a local
 * search pass over every capability, so the count shrinks with the size
 * (3000 up to 1,000 (cap, node) pairs, 300 from 10,000). Deterministic.
 */
#define ILS_DEFAULT_S	0.5

static int ils_default(const struct pl_inst *in)
{
	long pairs = (long)in->n_caps * in->n_nodes;
	long k = pairs > 0 ? 3000000L / pairs : 3000;

	return k > 3000 ? 3000 : k < 300 ? 300 : (int)k;
}

/* Warm start: what runs now stays unless the search finds better. */
static int warm(struct st *s)
{
	const struct pl_inst *in = s->in;

	for (int i = 0; i < in->n_caps; i++) {
		struct cap_st *c = &s->cs[i];

		for (int p = 0; p < c->n_prev; p++) {
			int j = c->prev[p];

			if (pl_allowed(in, i, j) && fits(s, i, j) && !is_open(c, j)) {
				int err = cap_open(s, i, j);

				if (err)
					return err;
			}
		}
	}
	return 0;
}

static void st_free(struct st *s)
{
	if (s->cs)
		for (int i = 0; i < s->in->n_caps; i++) {
			free(s->cs[i].open);
			free(s->cs[i].cand);
			free(s->cs[i].cand_g);
			free(s->cs[i].cur);
			free(s->cs[i].reg);
			free(s->cs[i].prev);
		}
	if (s->res)
		for (int j = 0; j < s->in->n_nodes; j++)
			free(s->res[j].a);
	free(s->res);
	free(s->order);
	free(s->order_risk);
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
	s->res = calloc(nn ? nn : 1, sizeof(*s->res));
	if (!s->unit || !s->free_mem || !s->cs || !s->res)
		return -ENOMEM;
	for (int r = 0; r < nr; r++)
		for (int j = 0; j < nn; j++)
			s->unit[(size_t)r * nn + j] = pl_unit_cost(in, r, j);
	for (int j = 0; j < nn; j++)
		s->free_mem[j] = in->nodes[j].mem;
	for (int i = 0; i < in->n_caps; i++) {
		struct cap_st *c = &s->cs[i];

		c->reg = malloc((nr ? nr : 1) * sizeof(int));
		c->cur = calloc(nr ? 2 * nr : 1, sizeof(int));
		if (!c->reg || !c->cur)
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
	double t0 = now_s();
	bool small;

	if (!o)
		o = &def;
	memset(sol, 0, sizeof(*sol));
	err = st_init(&s, in);
	s.t0 = t0;
	s.limit = o->time_limit;
	s.stats = sol;
	s.k = o->k_per_region > 0 ? o->k_per_region : 8;
	if (!err)
		err = build_order(&s);
	if (err)
		goto out;
	small = (long)in->n_caps * in->n_nodes <= 200000;
	/*
	 * Two starts: the plain lazy greedy (largest gain first), and a
	 * coverage pass first (one replica of every capability, by gain per
	 * GB: on memory-tight instances the plain greedy spends the memory on
	 * second replicas of popular capabilities and leaves big, less popular
	 * ones nowhere to go). Each is followed by local search; the cheaper
	 * one wins. Large instances (memory rarely binds) take the plain one.
	 */
	for (int run = 0; run < (small ? 2 : 1); run++) {
		struct pl_pair *keep = NULL;
		int n_keep = 0;
		double c0 = 0;

		if (run) {
			c0 = total_cost(&s);
			err = snapshot(&s, &keep, &n_keep);
			if (!err)
				err = restore(&s, NULL, 0);
		}
		if (!err && !o->no_warm)
			err = warm(&s);
		if (!err && run) {
			s.first_only = true;
			err = greedy(&s);
			s.first_only = false;
		}
		if (!err)
			err = greedy(&s);
		/*
		 * Moves between capabilities: over every capability on small
		 * instances, over the residents of candidate nodes on large ones.
		 */
		if (!err)
			err = local_search(&s, o->max_passes > 0 ? o->max_passes : 50,
					   small ? 1 : 2);
		if (!err && run && total_cost(&s) > c0)
			err = restore(&s, keep, n_keep);
		free(keep);
		if (err)
			goto out;
	}
	/*
	 * Default kicks beyond the first 300 stop after ILS_DEFAULT_S: idnd
	 * solves on the activation path, before a held SYN times out. A
	 * time limit (idnd -S) bounds the first 300 as well.
	 */
	if (!o->ils_iters)
		s.ils_until = now_s() + ILS_DEFAULT_S;
	if (!err && small && !o->no_ils)
		err = ils(&s, o->ils_iters > 0 ? o->ils_iters : ils_default(in),
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
	for (int i = 0; i < in->n_caps; i++)
		sol->n_cand += s.cs[i].n_cand;
	err = pl_evaluate(in, sol, NULL);
	sol->seconds = now_s() - t0;
out:
	st_free(&s);
	if (err)
		pl_sol_free(sol);
	return err;
}

/*
 * Lower bound without memory budgets: every capability alone on the
 * whole cluster, solved exactly. An optimal solution assigns each demand
 * region to one open node (or to unserved): enumerate the region subsets
 * a node serves (best[S] = min over nodes of fixed + sum d u), then the
 * cheapest partition of the regions into such subsets. Exact for the
 * relaxed problem, so a valid lower bound of eq. 3; 2^regions per node.
 */
int pl_nomem_bound(const struct pl_inst *in, double *bound, double *cap_lb)
{
	int nn = in->n_nodes, nr = in->n_regions, err = 0;
	double *best = NULL, *val = NULL, *f = NULL, tot = 0;
	int *reg = malloc((nr ? nr : 1) * sizeof(int));
	bool *prev = NULL;

	if (!reg)
		return -ENOMEM;
	if (in->n_prev) {
		prev = calloc((size_t)in->n_caps * nn, sizeof(bool));
		if (!prev) {
			err = -ENOMEM;
			goto out;
		}
		for (int p = 0; p < in->n_prev; p++)
			if (in->prev[p].cap >= 0 && in->prev[p].cap < in->n_caps &&
			    in->prev[p].node >= 0 && in->prev[p].node < nn)
				prev[(size_t)in->prev[p].cap * nn + in->prev[p].node] = true;
	}
	for (int i = 0; i < in->n_caps && !err; i++) {
		const struct pl_cap *c = &in->caps[i];
		int n = 0, full;

		double before = tot;

		for (int r = 0; r < nr; r++)
			if (c->demand[r] > 0)
				reg[n++] = r;
		if (cap_lb)
			cap_lb[i] = 0;
		if (!n)
			continue;
		if (n > 16) {
			/* too many subsets: each unit at its cheapest, no fixed cost */
			for (int g = 0; g < n; g++) {
				double m = in->unserved;

				for (int j = 0; j < nn; j++)
					if (pl_allowed(in, i, j) && in->nodes[j].mem + EPS >= c->mem &&
					    pl_unit_cost(in, reg[g], j) < m)
						m = pl_unit_cost(in, reg[g], j);
				tot += c->demand[reg[g]] * m;
			}
			if (cap_lb)
				cap_lb[i] = tot - before;
			continue;
		}
		full = (1 << n) - 1;
		free(best);
		free(val);
		free(f);
		best = malloc((full + 1) * sizeof(double));
		val = malloc((full + 1) * sizeof(double));
		f = malloc((full + 1) * sizeof(double));
		if (!best || !val || !f) {
			err = -ENOMEM;
			break;
		}
		for (int S = 1; S <= full; S++) {
			int b = __builtin_ctz(S);

			best[S] = (S & (S - 1) ? best[S & (S - 1)] : 0) +
				c->demand[reg[b]] * in->unserved;
		}
		for (int j = 0; j < nn; j++) {
			if (!pl_allowed(in, i, j) || in->nodes[j].mem + EPS < c->mem)
				continue;
			val[0] = in->nu * (7 - in->nodes[j].trust) +
				(prev && prev[(size_t)i * nn + j] ? 0 : in->lambda * c->mem);
			for (int S = 1; S <= full; S++) {
				int b = __builtin_ctz(S);

				val[S] = val[S & (S - 1)] + c->demand[reg[b]] * pl_unit_cost(in, reg[b], j);
				if (val[S] < best[S])
					best[S] = val[S];
			}
		}
		f[0] = 0;
		for (int S = 1; S <= full; S++) {
			int low = S & -S, rest = S ^ low;

			f[S] = best[S];
			/* T = low | sub, sub over the subsets of the rest */
			for (int sub = rest; sub; sub = (sub - 1) & rest) {
				int T = low | (rest ^ sub);
				double v = best[T] + f[sub];

				if (v < f[S])
					f[S] = v;
			}
		}
		tot += f[full];
		if (cap_lb)
			cap_lb[i] = f[full];
	}
	if (!err)
		*bound = tot;
out:
	free(best);
	free(val);
	free(f);
	free(reg);
	free(prev);
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
