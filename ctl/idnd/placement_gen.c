// SPDX-License-Identifier: GPL-2.0
/*
 * placement_gen.c - random placement instances for tests and benchmarks:
 * regions on a ring (latency 2 ms + 8 ms per hop), Zipf(1) demand over
 * capabilities spread over a few regions each, model sizes 2-80 GB
 * (log-uniform), node memory 24-141 GB (GPU sizes), trust 2-7, a fifth
 * of the nodes confidential, three runtimes. Deterministic per seed.
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "placement.h"

static uint64_t rnd(uint64_t *s)
{
	/* splitmix64 */
	uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static double unif(uint64_t *s)
{
	return (rnd(s) >> 11) * (1.0 / 9007199254740992.0);
}

int pl_gen_instance(const struct pl_gen *g, struct pl_inst *in)
{
	static const double gpu_gb[] = { 24, 40, 48, 80, 94, 141 };
	int nr = g->n_regions > 0 ? g->n_regions : 1;
	uint64_t s = g->seed ? g->seed : 1;

	memset(in, 0, sizeof(*in));
	in->n_caps = g->n_caps;
	in->n_nodes = g->n_nodes;
	in->n_regions = nr;
	in->caps = calloc(g->n_caps ? g->n_caps : 1, sizeof(*in->caps));
	in->nodes = calloc(g->n_nodes ? g->n_nodes : 1, sizeof(*in->nodes));
	in->region_lat = malloc((size_t)nr * nr * sizeof(double));
	if (!in->caps || !in->nodes || !in->region_lat)
		goto nomem;
	for (int a = 0; a < nr; a++)
		for (int b = 0; b < nr; b++) {
			int h = abs(a - b);

			if (nr - h < h)
				h = nr - h;
			in->region_lat[a * nr + b] = 2 + 8.0 * h;
		}
	in->lambda = 2.0;	/* per GB loaded */
	in->mu = 5.0;		/* per request crossing regions */
	in->nu = 1.0;		/* per trust level below 7 */
	in->unserved = 500;
	for (int j = 0; j < g->n_nodes; j++) {
		struct pl_node *n = &in->nodes[j];

		n->id = j;
		n->mem = gpu_gb[rnd(&s) % 6];
		n->region = rnd(&s) % nr;
		n->domain = n->region % 8;
		n->trust = 2 + rnd(&s) % 6;
		n->runtime = rnd(&s) % 3;
		n->confidential = rnd(&s) % 5 == 0;
		n->extra_ms = unif(&s) * 2;
		n->up = true;
	}
	for (int i = 0; i < g->n_caps; i++) {
		struct pl_cap *c = &in->caps[i];
		double total = 400.0 / (i + 1);	/* Zipf(1) by rank */
		int spread = 1 + rnd(&s) % (nr < 4 ? nr : 4);

		c->id = i + 1;
		c->mem = 2 * exp(unif(&s) * log(40.0));
		c->demand = calloc(nr, sizeof(double));
		if (!c->demand)
			goto nomem;
		for (int k = 0; k < spread; k++)
			c->demand[rnd(&s) % nr] += total / spread;
		if (unif(&s) < g->policy_frac) {
			switch (rnd(&s) % 4) {
			case 0: c->min_trust = 5; break;
			case 1: c->privacy = 2; break;
			case 2: c->domain_mask = 0x0f; break;
			default: c->runtime_mask = 0x3; break;
			}
		}
	}
	return 0;
nomem:
	pl_inst_free(in);
	return -ENOMEM;
}

void pl_gen_shift(struct pl_inst *in, double frac, uint64_t seed)
{
	double total = 0, moved = 0;
	uint64_t s = seed ? seed : 7;

	for (int i = 0; i < in->n_caps; i++)
		for (int r = 0; r < in->n_regions; r++)
			total += in->caps[i].demand[r];
	/* take demand from random (cap, region) cells and add it elsewhere */
	for (int guard = 0; moved < frac * total && guard < 1000000; guard++) {
		int i = rnd(&s) % in->n_caps, r = rnd(&s) % in->n_regions;
		int i2 = rnd(&s) % in->n_caps, r2 = rnd(&s) % in->n_regions;
		double d = in->caps[i].demand[r] * 0.5;

		if (d <= 0 || (i == i2 && r == r2))
			continue;
		if (d > frac * total - moved)
			d = frac * total - moved;
		in->caps[i].demand[r] -= d;
		in->caps[i2].demand[r2] += d;
		moved += d;
	}
}

void pl_inst_free(struct pl_inst *in)
{
	if (in->caps)
		for (int i = 0; i < in->n_caps; i++)
			free(in->caps[i].demand);
	free(in->caps);
	free(in->nodes);
	free(in->region_lat);
	memset(in, 0, sizeof(*in));
}
