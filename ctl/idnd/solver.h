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
	/* per principal (quota.c): 0 = no per-principal quota / rate limit */
	int principal_caps;	/* capabilities one principal created (default 1024) */
	int principal_policies;	/* policy classes one principal created (default 64) */
	double principal_rate;	/* mutating requests/s of one principal (default 100) */
	int principal_burst;	/* its bucket: requests in a burst (default 1000) */
	bool bench_gen;		/* -G: dry-run solves of generated instances */
};
extern struct idnd_limits idnd_limits;

/*
 * Parse "caps=N,nodes=N,policies=N,principal-caps=N,principal-policies=N,
 * principal-rate=R[/s],principal-burst=N" (any subset) into idnd_limits.
 * Return 0 or -EINVAL (idnd_limits unchanged).
 */
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

/* the defaults of the -Q keys (idnd.c resets them on SIGHUP) */
void idnd_limits_defaults(void);

/*
 * Per-principal quotas and write rate (quota.c; docs/security.md,
 * "Quotas and rate limits"). A principal is the client certificate's CN,
 * or under --insecure the client's address; every capability and policy
 * class records the one that created it (its owner).
 */
struct idn_prom;
/* capabilities / policy classes owned by @who (D.lock held) */
int idnd_quota_caps_of(const char *who);
int idnd_quota_policies_of(const char *who);
/* a registration refused by a principal quota (counted for /metrics) */
void idnd_quota_refused_count(int policies);
/*
 * Charge one mutating request to @who's token bucket (principal-rate,
 * principal-burst; a table of the IDND_RATE_TABLE principals seen last,
 * least recently seen evicted). 0: pass; -EAGAIN: over the rate, with
 * *retry_s the seconds until a token is back (>= 1) and @why the answer. Its own lock (D.lock
 * need not be held).
 */
#define IDND_RATE_TABLE	1024
/* take principal-rate and principal-burst from idnd_limits (at start and
 * after a SIGHUP reload; the API threads read this copy, under its lock) */
void idnd_rate_config(void);
int idnd_rate_charge(const char *who, double now, unsigned int *retry_s, char *why,
		     size_t len);
void idnd_quota_metrics(struct idn_prom *p);	/* its /metrics families */

#endif /* __IDN_IDND_SOLVER_H */
