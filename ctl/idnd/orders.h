/* SPDX-License-Identifier: GPL-2.0 */
/*
 * orders.h - deploy/evict orders from idnd to node agents (orders.c).
 */
#ifndef __IDN_IDND_ORDERS_H
#define __IDN_IDND_ORDERS_H

#include <stdint.h>
#include <json-c/json.h>

struct d_place;

/*
 * Placement changes from OLD to NEW: queue a load order for every new
 * (capability, node) pair and an evict order for every pair gone, to the
 * node's agent (locator + R's api_port), for capabilities with a
 * realization artifact. D.lock held; sending happens on a worker thread.
 */
void idnd_orders_diff(const struct d_place *old, int n_old, const struct d_place *new_p,
		      int n_new);
/*
 * Node registered (again, e.g. its agent restarted): queue a load order
 * for every capability the placement holds on it. D.lock held.
 */
void idnd_orders_node(uint32_t node);
/*
 * Capability cap changed version in place (a rollback after a revocation,
 * signed.c): every node the placement holds it on gets an evict order and,
 * once the agent answered it, a load order of the version registered now
 * (with its signed digest). D.lock held.
 */
void idnd_orders_reload(uint32_t cap);
/* cap leaves the registry: an evict order to every node that holds it */
void idnd_orders_evict_all(uint32_t cap);
/* {"sent", "failed", "retries", "gave_up", "queued"} for /v1/status */
json_object *idnd_orders_json(void);
struct idn_prom;
void idnd_orders_metrics(struct idn_prom *p);	/* its /metrics families */

#endif
