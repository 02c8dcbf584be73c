// SPDX-License-Identifier: GPL-2.0
/*
 * activate.c - demand-driven activation (-M): the paper's cold start.
 *
 * idnd joins the DEMAND_MISS events of idn.ko (ctl/lib/hold.c). The
 * dataplane holds a request whose capability has no feasible node; the
 * module emits a miss for that capability. On a miss for capability C:
 *   C registered   placed already: RELEASE at once (a race, or a plan
 *                  that was just installed); otherwise give C a demand in
 *                  this router's region (-R) if it has none, re-solve
 *                  (the same solver and plan compiler as the API and the
 *                  closed loop), install the plans (idn_plan_commit), then
 *                  RELEASE C: the module re-injects the held packets, the
 *                  steering program finds the plan and sends them to the
 *                  new node. No feasible node: logged, left held (the
 *                  module's timeout answers the client with a RST).
 *   unregistered   counted and left to the hold timeout (RST).
 * Lost events (socket overrun) are made up for by listing the module's
 * queues: every held capability is treated as a miss.
 *
 * Everything runs from the broker loop's 10 ms tick with D.lock held;
 * the event socket is non-blocking. Without the module (family "idn"
 * absent) the feature is a no-op that says so once and retries every
 * 2 s; the watch itself follows the module's unload and reload.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "idnd.h"
#include "hold.h"

#define ACT_RETRY_S	2.0
#define ACT_PENDING	64

static struct idn_hold_watch *watch;
static struct idn_hold *req;
static double last_try;
static bool lost;
static uint32_t pending[ACT_PENDING];
static double pending_t[ACT_PENDING];
static int n_pending;

static const char *cap_str(uint32_t cap, char *buf, size_t len)
{
	snprintf(buf, len, "%u/%u", IDN_CAP_CLASS(cap), IDN_CAP_VARIANT(cap));
	return buf;
}

static void queue_miss(uint32_t cap, double t)
{
	for (int i = 0; i < n_pending; i++)
		if (pending[i] == cap)
			return;
	if (n_pending == ACT_PENDING) {
		lost = true;	/* made up for by the queue listing */
		return;
	}
	pending_t[n_pending] = t;
	pending[n_pending++] = cap;
}

static int on_event(const struct idn_hold_event *ev, void *ctx)
{
	char cs[32], dst[INET6_ADDRSTRLEN] = "?";

	switch (ev->type) {
	case IDN_HEV_MISS:
		if (ev->q.family == 4)
			inet_ntop(AF_INET, ev->q.daddr, dst, sizeof(dst));
		else if (ev->q.family == 6)
			inet_ntop(AF_INET6, ev->q.daddr, dst, sizeof(dst));
		pr_info("HOLD: miss cap %s: %u packet(s) held, first to %s port %u proto %u\n",
			cap_str(ev->q.cap, cs, sizeof(cs)), ev->q.pkts, dst, ev->q.dport,
			ev->q.proto);
		D.act_misses++;
		queue_miss(ev->q.cap, idnd_now());
		break;
	case IDN_HEV_RELEASE:
		pr_debug("HOLD: module released %u packet(s) of cap %s\n", ev->count,
			 cap_str(ev->cap, cs, sizeof(cs)));
		break;
	case IDN_HEV_REJECT:
		pr_info("HOLD: module rejected %u packet(s) of cap %s (reason %u)\n", ev->count,
			cap_str(ev->cap, cs, sizeof(cs)), ev->reason);
		D.act_rejected += ev->count;
		break;
	case IDN_HEV_UNLOAD:
		pr_warn("HOLD: idn.ko unloaded: activation waits for it to come back\n");
		idn_hold_close(req);
		req = NULL;
		n_pending = 0;
		break;
	case IDN_HEV_LOAD:
		pr_warn("HOLD: idn.ko loaded again: demand-driven activation resumed\n");
		lost = true;	/* misses of the new module before we rejoined */
		break;
	}
	return 0;
}

static bool placed(uint32_t cap, uint32_t *node)
{
	for (int p = 0; p < D.n_place; p++) {
		const struct d_node *dn;

		if (D.place[p].cap != cap || D.place[p].node >= IDN_MAX_NODES)
			continue;
		dn = &D.nodes[D.place[p].node];
		if (dn->used && dn->up) {
			*node = dn->id;
			return true;
		}
	}
	return false;
}

static int release(uint32_t cap, double t_miss)
{
	char cs[32];
	__u32 count = 0;
	int e;

	if (!req) {
		e = idn_hold_open(&req);
		if (e) {
			pr_warn("HOLD: cap %s: cannot RELEASE: %s\n", cap_str(cap, cs, sizeof(cs)),
				idn_errmsg());
			return e;
		}
	}
	e = idn_hold_release(req, false, cap, &count);
	if (e == -ENOENT) {
		pr_info("HOLD: cap %s: nothing held any more (timed out or released)\n",
			cap_str(cap, cs, sizeof(cs)));
		return 0;
	}
	if (e) {
		pr_warn("HOLD: cap %s: RELEASE: %s\n", cap_str(cap, cs, sizeof(cs)), idn_errmsg());
		idn_hold_close(req);
		req = NULL;
		return e;
	}
	D.act_released += count;
	D.act_last_ms = (idnd_now() - t_miss) * 1000;
	pr_info("HOLD: cap %s: RELEASE sent, %u packet(s) re-injected (%.1f ms after the miss)\n",
		cap_str(cap, cs, sizeof(cs)), count, D.act_last_ms);
	return 0;
}

static void activate(uint32_t cap, double t_miss)
{
	struct d_cap *c = idnd_cap_find(cap);
	char cs[32];
	uint32_t node;
	int changed = 0, r = D.loop_region;
	bool any = false;

	cap_str(cap, cs, sizeof(cs));
	if (!c) {
		D.act_unknown++;
		pr_info("HOLD: cap %s is not registered: left to the hold timeout (RST)\n", cs);
		return;
	}
	if (placed(cap, &node)) {
		pr_info("HOLD: cap %s already placed on node %u: releasing\n", cs, node);
		release(cap, t_miss);
		return;
	}
	for (int k = 0; k < IDND_REGIONS; k++)
		any |= c->demand[k] > 0;
	if (!any) {
		if (idnd_store_demand(cap, r, 1.0)) {
			pr_warn("HOLD: cap %s: store: %s\n", cs, idnd_store_err());
			D.act_failed++;
			return;
		}
		c->demand[r] = 1.0;
		idnd_dist_cap(c);
		pr_info("HOLD: cap %s: demand 1 req/s in region %d (was none)\n", cs, r);
	}
	if (idnd_apply_solve(&changed, "HOLD")) {
		D.act_failed++;
		pr_warn("HOLD: cap %s: placement or plan commit failed: left to the hold timeout\n",
			cs);
		return;
	}
	if (!placed(cap, &node)) {
		D.act_failed++;
		pr_warn("HOLD: cap %s: no feasible node: left to the hold timeout (RST)\n", cs);
		return;
	}
	D.act_placed++;
	pr_info("HOLD: cap %s: placed on node %u (%d placement(s) changed, solve %.1f ms)\n", cs,
		node, changed, D.last_solve_s * 1000);
	pr_info("HOLD: cap %s: plan installed, generation %u (commit %.2f ms)\n", cs,
		D.generation, D.last_commit_ms);
	release(cap, t_miss);
}

/* Every held capability, as if its miss had just been heard. */
static void catch_up(void)
{
	struct idn_hold_queue *q = NULL;
	int n;

	if (!req && idn_hold_open(&req))
		return;
	n = idn_hold_queues(req, &q);
	if (n < 0) {
		pr_warn("HOLD: listing the held queues: %s\n", idn_errmsg());
		return;
	}
	for (int i = 0; i < n; i++)
		queue_miss(q[i].cap, idnd_now());
	if (n)
		pr_info("HOLD: %d capability queue(s) held while events were missed\n", n);
	free(q);
}

int idnd_act_start(void)
{
	int e;

	last_try = idnd_now();
	e = idn_hold_watch_open(&watch, on_event, NULL);
	if (e) {
		pr_warn("HOLD: %s: demand-driven activation off until the module is loaded\n",
			e == -ENOENT ? "idn.ko is not loaded (no generic netlink family \"idn\")" :
			idn_errmsg());
		watch = NULL;
		return e;
	}
	pr_info("HOLD: listening to idn.ko's demand misses: demand-driven activation on\n");
	lost = true;	/* what was held before we joined */
	return 0;
}

void idnd_act_tick(double now)
{
	int e;

	if (!D.hold || (D.etcd && !D.leader))
		return;
	if (!watch) {
		if (now - last_try < ACT_RETRY_S)
			return;
		last_try = now;
		if (idn_hold_watch_open(&watch, on_event, NULL)) {
			watch = NULL;
			return;
		}
		pr_warn("HOLD: idn.ko found: demand-driven activation on\n");
		lost = true;
	}
	e = idn_hold_watch_read(watch);
	if (e == -ENOBUFS) {
		pr_warn("HOLD: %s: listing the held queues\n", idn_errmsg());
		lost = true;
	} else if (e < 0) {
		pr_warn("HOLD: %s: rejoining\n", idn_errmsg());
		idn_hold_watch_close(watch);
		watch = NULL;
		return;
	}
	if (lost) {
		lost = false;
		catch_up();
	}
	while (n_pending) {
		uint32_t cap = pending[0];
		double t = pending_t[0];

		n_pending--;
		memmove(pending, pending + 1, n_pending * sizeof(*pending));
		memmove(pending_t, pending_t + 1, n_pending * sizeof(*pending_t));
		activate(cap, t);
	}
}

void idnd_act_stop(void)
{
	idn_hold_watch_close(watch);
	idn_hold_close(req);
	watch = NULL;
	req = NULL;
}
