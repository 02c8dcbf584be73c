// SPDX-License-Identifier: GPL-2.0
/*
 * solver.c - placement solves off the request lock, with a time limit,
 * and the registry quotas that bound what a solve has to chew on.
 *
 * Why: a solve used to run under D.lock, so while it ran nothing else
 * did: no API request, no heartbeat, no node-down detection. A registry
 * an anonymous client filled made one solve last minutes, and every node
 * was marked down afterwards (issue 11). Now:
 *   1. the instance is copied from the registry under D.lock (O(caps +
 *      nodes), microseconds);
 *   2. D.lock is released and pl_solve() runs with a time limit (-S);
 *   3. D.lock is taken again and the result is applied by the caller;
 *      pairs whose capability or node was deleted meanwhile are dropped
 *      (ids, not indexes, cross the gap; a node that went down stays in
 *      the placement and out of the plans, as always).
 * One solve at a time (solve_mu). ORDER: solve_mu before D.lock; D.lock
 * is never held while waiting for solve_mu (only a trylock under it).
 * The API answers a second concurrent solve 503; the closed loop and
 * demand activation wait (they run in their own thread, idnd.c).
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "idnd.h"
#include "solver.h"

struct idnd_limits idnd_limits = {
	.max_caps = 2048,
	.max_nodes = IDN_MAX_NODES,
	.max_policies = IDND_MAX_POLICIES,
	.solve_s = 5.0,
	.per_ip = 64,
	.principal_caps = 1024,
	.principal_policies = 64,
	.principal_rate = 100,
	.principal_burst = 1000,
};

void idnd_limits_defaults(void)
{
	idnd_limits.solve_s = 5.0;
	idnd_limits.max_caps = 2048;
	idnd_limits.max_nodes = IDN_MAX_NODES;
	idnd_limits.max_policies = IDND_MAX_POLICIES;
	idnd_limits.principal_caps = 1024;
	idnd_limits.principal_policies = 64;
	idnd_limits.principal_rate = 100;
	idnd_limits.principal_burst = 1000;
}

static pthread_mutex_t solve_mu = PTHREAD_MUTEX_INITIALIZER;
static double solve_t0;		/* when the running solve started (under solve_mu) */

int idnd_limits_parse(const char *spec)
{
	struct idnd_limits l = idnd_limits;
	char buf[256], *save = NULL, *tok;

	if (strlen(spec) >= sizeof(buf))
		return -EINVAL;
	strcpy(buf, spec);
	for (tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		char *eq = strchr(tok, '='), *end;
		double r;
		long v;

		if (!eq)
			return -EINVAL;
		*eq++ = 0;
		if (!strcmp(tok, "principal-rate")) {	/* requests/s, "/s" optional */
			errno = 0;
			r = strtod(eq, &end);
			if (!strcmp(end, "/s"))
				end += 2;
			if (errno || *end || end == eq || !(r >= 0 && r <= 1e6))
				return -EINVAL;
			l.principal_rate = r;
			continue;
		}
		errno = 0;
		v = strtol(eq, &end, 10);
		if (errno || *end || end == eq || v < 0)
			return -EINVAL;
		if (!strcmp(tok, "caps") && v <= IDND_MAX_CAPS)
			l.max_caps = v;
		else if (!strcmp(tok, "nodes") && v <= IDN_MAX_NODES)
			l.max_nodes = v;
		else if (!strcmp(tok, "policies") && v <= IDND_MAX_POLICIES)
			l.max_policies = v;
		else if (!strcmp(tok, "principal-caps") && v <= IDND_MAX_CAPS)
			l.principal_caps = v;
		else if (!strcmp(tok, "principal-policies") && v <= IDND_MAX_POLICIES)
			l.principal_policies = v;
		else if (!strcmp(tok, "principal-burst") && v >= 1 && v <= 1000000)
			l.principal_burst = v;
		else
			return -EINVAL;
	}
	idnd_limits = l;
	return 0;
}

/* Drop pairs whose capability or node left the registry while D.lock was free. */
static int drop_vanished(const struct pl_inst *in, struct pl_sol *sol)
{
	int k = 0;

	for (int t = 0; t < sol->n; t++) {
		uint32_t cap = in->caps[sol->x[t].cap].id, node = in->nodes[sol->x[t].node].id;

		if (idnd_cap_find(cap) && node < IDN_MAX_NODES && D.nodes[node].used)
			sol->x[k++] = sol->x[t];
	}
	k = sol->n - k;
	sol->n -= k;
	return k;
}

int idnd_solve_unlocked(struct pl_sol *sol, struct pl_inst *in, const struct pl_gen *gen,
			bool wait, char *err, size_t errlen)
{
	struct pl_opts o = { .time_limit = idnd_limits.solve_s };
	int e, gone;

	memset(in, 0, sizeof(*in));
	memset(sol, 0, sizeof(*sol));
	if (pthread_mutex_trylock(&solve_mu)) {
		if (!wait) {
			snprintf(err, errlen, "a placement solve is already running (%.1f s so far): "
				 "retry later", idnd_now() - solve_t0);
			return -EBUSY;
		}
		pthread_mutex_unlock(&D.lock);
		pthread_mutex_lock(&solve_mu);
		pthread_mutex_lock(&D.lock);
	}
	solve_t0 = idnd_now();
	if (!gen) {
		e = idnd_solve(NULL, in, err, errlen);	/* the instance, under D.lock */
		if (e)
			goto out;
	}
	pthread_mutex_unlock(&D.lock);
	if (gen) {
		e = pl_gen_instance(gen, in);
		if (e)
			snprintf(err, errlen, "generate: %s", strerror(-e));
	} else {
		e = 0;
	}
	if (!e) {
		e = pl_solve(in, &o, sol);
		if (e)
			snprintf(err, errlen, "solver failed: %s", strerror(-e));
	}
	pthread_mutex_lock(&D.lock);
	if (!e && D.etcd && !D.leader) {
		snprintf(err, errlen, "replica %s lost the lead during the solve", D.replica);
		pl_sol_free(sol);
		e = -EAGAIN;
	}
	if (e) {
		free((void *)in->prev);
		in->prev = NULL;
		pl_inst_free(in);
		goto out;
	}
	if (o.time_limit > 0 && sol->seconds > o.time_limit)
		pr_warn("SOLVE: %d x %d stopped at the %.1f s limit (idnd -S): local search cut short\n",
			in->n_caps, in->n_nodes, o.time_limit);
	gone = gen ? 0 : drop_vanished(in, sol);
	if (gone)
		pr_info("SOLVE: %d placement(s) dropped: capability or node deleted during "
			"the solve\n", gone);
out:
	pthread_mutex_unlock(&solve_mu);
	return e;
}
