// SPDX-License-Identifier: GPL-2.0
/*
 * orders.c - idnd's deploy and evict orders to node agents. When the
 * placement changes (idnd_place_set), every (capability, node) pair that
 * appears becomes a load order and every pair that disappears an evict
 * order, sent to the agent's residency API (POST /v1/residency/load and
 * /v1/residency/evict on its management listener, the "mgmt" address it
 * registered (a wildcard address: on the locator); http://LOCATOR:api_port
 * for an agent that registered none, docs/agent.md). Only capabilities
 * with a realization artifact (a file path under the node's artifact
 * directory) and nodes that registered one of them get orders.
 *
 * The placement is changed under D.lock; the orders are copied into a
 * queue there and posted by one worker thread (libcurl, 5 s timeout),
 * started on the first order, so a slow or dead agent never holds the
 * lock. The result of each order is logged.
 *
 * Retry: an order that got no answer (agent down, connection refused,
 * timeout) or a 408/429/5xx answer is posted again after a backoff of
 * ORDER_BACKOFF_MS doubling up to ORDER_BACKOFF_MAX_MS, ORDER_TRIES
 * attempts in all; then it is dropped (counted, logged). Any other answer
 * is final: 2xx done, 409 to a load ("already resident") and 404 to an
 * evict ("not resident") mean the agent is already where the order
 * wanted it; 422 (corrupt artifact) and other 4xx are failures. A newer
 * order for the same (capability, node) replaces a queued one and stops
 * the retries of one in flight: the last intent wins.
 *
 * Re-send: when an agent registers (again), e.g. after a restart that
 * lost its memory, idnd_orders_node() queues a load order for every
 * capability its node holds in the placement (already resident ones are
 * answered 409, which is fine).
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <time.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <json-c/json.h>

#include "idnd.h"
#include "orders.h"
#include "log.h"
#include "http.h"
#include "prom.h"

#define ORDER_TRIES		6	/* attempts per order */
#define ORDER_BACKOFF_MS	200	/* before the 2nd attempt; doubles */
#define ORDER_BACKOFF_MAX_MS	3200

struct order {
	struct order *next;
	uint32_t node, cap;
	bool load;
	bool superseded;	/* a newer order for (cap, node) came: no retry */
	struct order *then;	/* queued once this one is done (a reload's load) */
	int tries;		/* attempts made */
	double due;		/* monotonic seconds: not posted before */
	char url[128];
	char *body;
};

static pthread_mutex_t o_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t o_cv;
static struct order *o_head, *o_inflight;
static pthread_once_t o_once = PTHREAD_ONCE_INIT;
static bool o_running;
static uint64_t o_sent, o_failed, o_retries, o_gaveup;

enum { O_DONE, O_FAIL, O_RETRY };

/* Post one order (idnd's certificate presented, ctl/lib/http.c); what to do with it next. */
static int post(struct order *o)
{
	CURL *c = curl_easy_init();
	struct idn_http_buf out = { .max = 64 << 10 };
	char err[512] = "out of memory";
	long code = 0;
	int rc = -ENOMEM;
	const char *what = o->load ? "load" : "evict";
	int res;

	if (c) {
		rc = idn_http_request(c, &idnd_tls, "POST", o->url, o->body, 5000, &out, &code,
				      err, sizeof(err));
		curl_easy_cleanup(c);
	}
	free(out.p);
	o->tries++;
	if (rc || !code || code == 408 || code == 429 || code >= 500)
		res = O_RETRY;
	else if ((code >= 200 && code < 300) || (o->load && code == 409) ||
		 (!o->load && code == 404))
		res = O_DONE;
	else
		res = O_FAIL;
	if (rc)
		pr_warn("ORDER: %s cap %u/%u to node %u: %s (attempt %d)\n", what, o->cap >> 8,
			o->cap & 0xff, o->node, err, o->tries);
	else
		pr_info("ORDER: %s cap %u/%u to node %u: HTTP %ld%s (attempt %d)\n", what,
			o->cap >> 8, o->cap & 0xff, o->node, code,
			code == 409 && o->load ? " already resident" :
			code == 404 && !o->load ? " not resident" : "", o->tries);
	return res;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* The queued order due first (the oldest of equals: FIFO); o_mu held. */
static struct order **first_due(void)
{
	struct order **best = NULL;

	for (struct order **pp = &o_head; *pp; pp = &(*pp)->next)
		if (!best || (*pp)->due < (*best)->due)
			best = pp;
	return best;
}

static void append(struct order *o)
{
	struct order **pp = &o_head;

	while (*pp)
		pp = &(*pp)->next;
	o->next = NULL;
	*pp = o;
}

static void *worker(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&o_mu);
	for (;;) {
		struct order **pp = first_due(), *o;
		double now = now_s();
		int res;

		if (!pp) {
			pthread_cond_wait(&o_cv, &o_mu);
			continue;
		}
		if ((*pp)->due > now) {
			struct timespec ts;
			double until = (*pp)->due;

			ts.tv_sec = (time_t)until;
			ts.tv_nsec = (long)((until - ts.tv_sec) * 1e9);
			pthread_cond_timedwait(&o_cv, &o_mu, &ts);	/* CLOCK_MONOTONIC */
			continue;
		}
		o = *pp;
		*pp = o->next;
		o_inflight = o;
		pthread_mutex_unlock(&o_mu);
		res = post(o);
		pthread_mutex_lock(&o_mu);
		o_inflight = NULL;
		if (res == O_DONE)
			o_sent++;
		else if (res == O_FAIL)
			o_failed++;
		if (res == O_RETRY && !o->superseded && o->tries < ORDER_TRIES) {
			int ms = ORDER_BACKOFF_MS << (o->tries - 1);

			if (ms > ORDER_BACKOFF_MAX_MS)
				ms = ORDER_BACKOFF_MAX_MS;
			o->due = now_s() + ms / 1000.0;
			o_retries++;
			pr_info("ORDER: %s cap %u/%u to node %u: retry in %d ms\n",
				o->load ? "load" : "evict", o->cap >> 8, o->cap & 0xff, o->node, ms);
			append(o);
			continue;
		}
		if (o->then && res == O_DONE && !o->superseded) {
			o->then->due = now_s();	/* the evict of a reload is done: load */
			append(o->then);
			o->then = NULL;
		} else if (o->then) {
			pr_warn("ORDER: reload cap %u/%u on node %u: the evict %s, no load\n",
				o->cap >> 8, o->cap & 0xff, o->node,
				o->superseded ? "was superseded" : "failed");
		}
		if (o->then) {
			free(o->then->body);
			free(o->then);
		}
		if (res == O_RETRY) {
			o_failed++;
			if (!o->superseded) {
				o_gaveup++;
				pr_warn("ORDER: %s cap %u/%u to node %u: gave up after %d attempts\n",
					o->load ? "load" : "evict", o->cap >> 8, o->cap & 0xff,
					o->node, o->tries);
			}
		}
		free(o->body);
		free(o);
	}
	return NULL;
}

static void start(void)
{
	pthread_condattr_t ca;
	pthread_t t;

	curl_global_init(CURL_GLOBAL_DEFAULT);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&o_cv, &ca);
	pthread_condattr_destroy(&ca);
	if (!pthread_create(&t, NULL, worker, NULL)) {
		pthread_detach(t);
		o_running = true;
	}
}

/* An order (not queued yet); NULL when none is due (no artifact, no agent API). */
static struct order *build(uint32_t cap, uint32_t node, bool load)
{
	struct d_cap *c = idnd_cap_find(cap);
	struct d_node *n = node < IDN_MAX_NODES ? &D.nodes[node] : NULL;
	json_object *b;
	struct order *o;
	const char *sch;
	char name[80];

	if (!c || !c->artifact[0] || !n || !n->used || (!n->api_port && !n->mgmt[0]))
		return false;
	pthread_once(&o_once, start);
	if (!o_running)
		return false;
	o = calloc(1, sizeof(*o));
	if (!o)
		return false;
	o->node = node;
	o->cap = cap;
	o->load = load;
	/* https with mutual TLS unless idnd runs --insecure */
	sch = idn_tls_on(&idnd_tls) ? "https" : "http";
	if (n->mgmt[0] && (!strncmp(n->mgmt, "0.0.0.0:", 8) || !strncmp(n->mgmt, "[::]:", 5)))
		/* a wildcard management listener: reached on the locator */
		snprintf(o->url, sizeof(o->url), n->addr4[0] ? "%s://%s:%s/v1/residency/%s" :
			 "%s://[%s]:%s/v1/residency/%s", sch, n->addr4[0] ? n->addr4 : n->addr6,
			 strrchr(n->mgmt, ':') + 1, load ? "load" : "evict");
	else if (n->mgmt[0])	/* the agent's management listener (its inference port refuses) */
		snprintf(o->url, sizeof(o->url), "%s://%s/v1/residency/%s", sch, n->mgmt,
			 load ? "load" : "evict");
	else if (n->addr4[0])
		snprintf(o->url, sizeof(o->url), "%s://%s:%u/v1/residency/%s", sch, n->addr4,
			 n->api_port, load ? "load" : "evict");
	else
		snprintf(o->url, sizeof(o->url), "%s://[%s]:%u/v1/residency/%s", sch, n->addr6,
			 n->api_port, load ? "load" : "evict");
	/* one artifact per capability and node: named after the label */
	snprintf(name, sizeof(name), "cap-%u-%u", cap >> 8, cap & 0xff);
	b = json_object_new_object();
	json_object_object_add(b, "name", json_object_new_string(name));
	if (load) {
		json_object_object_add(b, "path", json_object_new_string(c->artifact));
		json_object_object_add(b, "cap", json_object_new_int64(cap));
		if (c->sig) {	/* the agent checks the artifact against the signed digest */
			static const char hx[] = "0123456789abcdef";
			char h[65];

			for (int i = 0; i < 32; i++) {
				h[2 * i] = hx[c->sha256[i] >> 4];
				h[2 * i + 1] = hx[c->sha256[i] & 15];
			}
			h[64] = 0;
			json_object_object_add(b, "sha256", json_object_new_string(h));
		}
	}
	o->body = strdup(json_object_to_json_string_ext(b, JSON_C_TO_STRING_PLAIN));
	json_object_put(b);
	if (!o->body) {
		free(o);
		return false;
	}
	return o;
}

static void order_free(struct order *o)
{
	if (o->then)
		order_free(o->then);
	free(o->body);
	free(o);
}

/* Queue o, the last intent for its (cap, node). */
static bool enqueue(struct order *o)
{
	uint32_t cap = o->cap, node = o->node;

	pthread_mutex_lock(&o_mu);
	/* the last intent for (cap, node) wins */
	for (struct order **pp = &o_head; *pp;) {
		struct order *x = *pp;

		if (x->cap == cap && x->node == node) {
			*pp = x->next;
			order_free(x);
			continue;
		}
		pp = &x->next;
	}
	if (o_inflight && o_inflight->cap == cap && o_inflight->node == node)
		o_inflight->superseded = true;
	o->due = now_s();
	append(o);
	pthread_cond_signal(&o_cv);
	pthread_mutex_unlock(&o_mu);
	return true;
}

static bool queue(uint32_t cap, uint32_t node, bool load)
{
	struct order *o = build(cap, node, load);

	return o && enqueue(o);
}

static bool has(const struct d_place *p, int n, const struct d_place *x)
{
	for (int i = 0; i < n; i++)
		if (p[i].cap == x->cap && p[i].node == x->node)
			return true;
	return false;
}

void idnd_orders_diff(const struct d_place *old, int n_old, const struct d_place *new_p,
		      int n_new)
{
	/* evictions first: they free the memory the loads may need */
	for (int i = 0; i < n_old; i++)
		if (!has(new_p, n_new, &old[i]))
			queue(old[i].cap, old[i].node, false);
	for (int i = 0; i < n_new; i++)
		if (!has(old, n_old, &new_p[i]))
			queue(new_p[i].cap, new_p[i].node, true);
}

void idnd_orders_node(uint32_t node)
{
	int n = 0;

	for (int i = 0; i < D.n_place; i++)
		if (D.place[i].node == node && queue(D.place[i].cap, node, true))
			n++;
	if (n)
		pr_info("ORDER: node %u registered: %d load order%s of its placement re-sent\n",
			node, n, n > 1 ? "s" : "");
}

json_object *idnd_orders_json(void)
{
	json_object *o = json_object_new_object();
	int queued = 0;

	pthread_mutex_lock(&o_mu);
	for (struct order *x = o_head; x; x = x->next)
		queued++;
	json_object_object_add(o, "sent", json_object_new_int64(o_sent));
	json_object_object_add(o, "failed", json_object_new_int64(o_failed));
	json_object_object_add(o, "retries", json_object_new_int64(o_retries));
	json_object_object_add(o, "gave_up", json_object_new_int64(o_gaveup));
	json_object_object_add(o, "queued", json_object_new_int(queued + !!o_inflight));
	pthread_mutex_unlock(&o_mu);
	return o;
}

void idnd_orders_metrics(struct idn_prom *p)
{
	uint64_t sent, failed, retries, gaveup;
	int queued = 0;

	pthread_mutex_lock(&o_mu);
	for (struct order *x = o_head; x; x = x->next)
		queued++;
	queued += !!o_inflight;
	sent = o_sent;
	failed = o_failed;
	retries = o_retries;
	gaveup = o_gaveup;
	pthread_mutex_unlock(&o_mu);
	idn_prom_one_u64(p, "idnd_orders_sent_total", IDN_PROM_COUNTER,
			 "Load/evict orders an agent accepted.", sent);
	idn_prom_one_u64(p, "idnd_orders_failed_total", IDN_PROM_COUNTER,
			 "Order attempts that failed.", failed);
	idn_prom_one_u64(p, "idnd_orders_retries_total", IDN_PROM_COUNTER,
			 "Order attempts retried.", retries);
	idn_prom_one_u64(p, "idnd_orders_gave_up_total", IDN_PROM_COUNTER,
			 "Orders abandoned after their retries.", gaveup);
	idn_prom_one_u64(p, "idnd_orders_queued", IDN_PROM_GAUGE,
			 "Orders queued or in flight.", queued);
}

void idnd_orders_reload(uint32_t cap)
{
	int n = 0;

	for (int i = 0; i < D.n_place; i++) {
		struct order *ev, *ld;

		if (D.place[i].cap != cap)
			continue;
		ev = build(cap, D.place[i].node, false);
		ld = ev ? build(cap, D.place[i].node, true) : NULL;
		if (!ld) {
			if (ev)
				order_free(ev);
			continue;
		}
		ev->then = ld;
		n += enqueue(ev);
	}
	if (n)
		pr_info("ORDER: cap %u/%u changed version: %d node%s evict and load it again\n",
			cap >> 8, cap & 0xff, n, n > 1 ? "s" : "");
}

void idnd_orders_evict_all(uint32_t cap)
{
	for (int i = 0; i < D.n_place; i++)
		if (D.place[i].cap == cap)
			queue(cap, D.place[i].node, false);
}
