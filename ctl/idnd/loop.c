// SPDX-License-Identifier: GPL-2.0
/*
 * loop.c - the closed loop: demand sensed from the local router's
 * idn_cap_stats drives re-placement, with bounded churn.
 *
 * Every interval (-L MS; 0 = off) the loop reads, for every registered
 * capability, the per-CPU sums of new-flow decisions per verdict and takes
 * the delta since the last read:
 *   served = NEW + AFFINITY + FALLBACK + OVERFLOW
 *   unmet  = SHED + NOCAP + MISS_HOLD + MISS_REJECT
 * rate = (served + unmet) / interval, smoothed (EWMA, 1/2). The router's
 * demand is attributed to its region (-R). Decisions, per capability:
 *   scale out  unmet > 0 and the rate exceeds the registered demand by
 *              more than 25 %: demand := rate, re-solve;
 *   move       no unmet, smoothed rate off the demand by more than 50 %:
 *              demand := smoothed rate, re-solve;
 *   scale back the loop set the demand and saw no flow for IDLE
 *              intervals: demand := 0, re-solve;
 *   otherwise  nothing (hysteresis: a small shift changes nothing).
 * A capability re-triggers at most once per COOL intervals, so a demand
 * the nodes cannot serve does not re-solve every tick. The solver itself
 * warm-starts from the current placement and pays lambda * size for every
 * new deployment, which bounds how much one re-solve moves.
 * Demand an operator posted is only scaled back if the loop set it.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "idnd.h"
#include "solver.h"
#include "audit.h"

#define LOOP_OUT_FRAC	0.25
#define LOOP_MOVE_FRAC	0.50
#define LOOP_IDLE	5
#define LOOP_COOL	3

static double last_tick;

static uint64_t sum(const struct idn_cstat *s, const int *v, int n)
{
	uint64_t t = 0;

	for (int i = 0; i < n; i++)
		t += s->flows[v[i]];
	return t;
}

/*
 * Solve and apply (placement, store, plans). Caller holds D.lock; it is
 * released while the solver runs (solver.c), so the caller must not keep
 * pointers into D.caps across this call.
 */
int idnd_apply_solve(int *changed, const char *who)
{
	struct pl_inst in;
	struct pl_sol sol;
	char err[256];
	int e;

	e = idnd_solve_unlocked(&sol, &in, NULL, true, err, sizeof(err));
	if (e) {
		pr_warn("%s: %s\n", who, err);
		return e;
	}
	D.solves++;
	D.last_solve_s = sol.seconds;
	{
		struct pl_sol prev = { .x = (struct pl_pair *)in.prev, .n = in.n_prev };

		*changed = pl_sol_diff(&prev, &sol);
		D.place_changes += *changed;
	}
	e = idnd_place_set(&in, &sol);
	if (!e)
		e = idnd_store_place() ? -EIO : 0;
	if (!e) {
		idnd_dist_place();
		e = idnd_compile();
	}
	{
		char what[64];

		snprintf(what, sizeof(what), "placement: %d changed, generation %u", *changed,
			 D.generation);
		idnd_audit(who, "SOLVE", what, e ? 500 : 200, NULL, 0);
	}
	free((void *)in.prev);
	pl_inst_free(&in);
	pl_sol_free(&sol);
	return e;
}

static int set_demand(struct d_cap *c, double rps)
{
	int r = D.loop_region;

	rps = round(rps * 10) / 10;
	if (idnd_store_demand(c->label, r, rps))
		return -EIO;
	c->demand[r] = rps;
	idnd_dist_cap(c);
	return 0;
}

void idnd_loop_tick(double now)
{
	static const int served_v[] = { IDN_V_NEW, IDN_V_AFFINITY, IDN_V_FALLBACK,
					 IDN_V_OVERFLOW };
	static const int unmet_v[] = { IDN_V_SHED, IDN_V_NOCAP, IDN_V_MISS_HOLD,
				       IDN_V_MISS_REJECT };
	double dt = now - last_tick;
	bool solve = false;
	int changed = 0, r = D.loop_region;

	if (!D.loop_ms || !D.have_maps || dt * 1000 < D.loop_ms || (D.etcd && !D.leader))
		return;
	last_tick = now;
	for (int i = 0; i < D.n_caps; i++) {
		struct d_cap *c = &D.caps[i];
		struct d_loop *l = &c->loop;
		struct idn_cstat s, d;
		uint64_t served, unmet;
		double rate, cur = c->demand[r];
		int e = idn_cstat_read(&D.maps, c->label, &s);

		if (e && e != -ENOENT)
			continue;
		if (!l->primed) {
			l->last = s;
			l->primed = true;
			continue;
		}
		for (int v = 0; v < IDN_V_MAX; v++)
			d.flows[v] = s.flows[v] >= l->last.flows[v] ?
				     s.flows[v] - l->last.flows[v] : s.flows[v];
		l->last = s;
		served = sum(&d, served_v, 4);
		unmet = sum(&d, unmet_v, 4);
		rate = (served + unmet) / dt;
		l->ewma = l->ewma > 0 ? (l->ewma + rate) / 2 : rate;
		l->served_rps = served / dt;
		l->unmet_rps = unmet / dt;
		if (l->cool)
			l->cool--;
		l->idle = served + unmet ? 0 : l->idle + 1;
		if (l->cool)
			continue;
		if (unmet && rate > cur * (1 + LOOP_OUT_FRAC)) {
			pr_info("LOOP: cap " IDN_CAP_FMT ": %llu unmet, %.1f req/s > demand %.1f: "
				"scale out\n", IDN_CAP_ARG(c->label), (unsigned long long)unmet, rate, cur);
			l->owned = true;
			D.loop_out++;
		} else if (!unmet && served && fabs(l->ewma - cur) > LOOP_MOVE_FRAC * fmax(cur, 1)) {
			pr_info("LOOP: cap " IDN_CAP_FMT ": %.1f req/s vs demand %.1f: re-place\n",
				IDN_CAP_ARG(c->label), l->ewma, cur);
			rate = l->ewma;
			l->owned = true;
			D.loop_move++;
		} else if (l->owned && cur > 0 && l->idle >= LOOP_IDLE) {
			pr_info("LOOP: cap " IDN_CAP_FMT " idle for %d intervals: scale back\n",
				IDN_CAP_ARG(c->label), l->idle);
			rate = 0;
			D.loop_back++;
		} else {
			continue;
		}
		if (set_demand(c, rate))
			continue;
		l->cool = LOOP_COOL;
		solve = true;
	}
	if (!solve)
		return;
	if (idnd_apply_solve(&changed, "LOOP"))
		pr_warn("LOOP: apply: %s\n", idn_errmsg());
	D.loop_solves++;
	D.loop_changed += changed;
	pr_info("LOOP: re-solved, %d placements changed, generation %u\n", changed, D.generation);
}
