/* SPDX-License-Identifier: GPL-2.0 */
/*
 * solver.h - placement solves off the request lock, and the limits that
 * keep one anonymous client from making idnd slow (solver.c).
 */
#ifndef __IDN_IDND_SOLVER_H
#define __IDN_IDND_SOLVER_H

#include <stdbool.h>

#include "placement.h"

/* idnd's guard rails: registry quotas, solve time, connections (idnd -Q -S -C -G). */
struct idnd_limits {
	int max_caps;		/* registered capabilities (default 2048) */
	int max_nodes;		/* registered nodes (default IDN_MAX_NODES) */
	int max_policies;	/* policy classes (default IDND_MAX_POLICIES) */
	double solve_s;		/* placement solve time limit, seconds (default 5) */
	unsigned int per_ip;	/* HTTP connections per client address (default 64) */
	bool bench_gen;		/* -G: dry-run solves of generated instances */
};
extern struct idnd_limits idnd_limits;

/* Parse "caps=N,nodes=N,policies=N" into idnd_limits. Return 0 or -EINVAL. */
int idnd_limits_parse(const char *spec);

/*
 * idnd_solve_unlocked - solve the registry (or, @gen not NULL, a generated
 * instance) with the time limit, D.lock released while the solver runs.
 * Called with D.lock held; returns with it held. One solve at a time:
 * @wait false answers -EBUSY when another runs, true waits for it.
 * Pairs whose capability or node left the registry during the solve are
 * dropped from @sol. On success the caller frees in->prev, @in and @sol.
 * Return: 0, or -errno with @err set (nothing to free).
 */
int idnd_solve_unlocked(struct pl_sol *sol, struct pl_inst *in, const struct pl_gen *gen,
			bool wait, char *err, size_t errlen);

#endif /* __IDN_IDND_SOLVER_H */
