// SPDX-License-Identifier: GPL-2.0
/*
 * orders.c - idnd's deploy and evict orders to node agents. When the
 * placement changes (idnd_place_set), every (capability, node) pair that
 * appears becomes a load order and every pair that disappears an evict
 * order, sent to the agent's residency API (POST /v1/residency/load and
 * /v1/residency/evict on http://LOCATOR:api_port, docs/agent.md). Only
 * capabilities with a realization artifact (a file path readable on the
 * node) and nodes that registered an api_port get orders.
 *
 * The placement is changed under D.lock; the orders are copied into a
 * FIFO there and posted by one worker thread (libcurl, 5 s timeout),
 * started on the first order, so a slow or dead agent never holds the
 * lock. The result of each order is logged; no retry (the next placement
 * change or a restart re-sends what differs).
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <json-c/json.h>

#include "idnd.h"
#include "orders.h"
#include "log.h"

struct order {
	struct order *next;
	uint32_t node, cap;
	bool load;
	char url[96];
	char *body;
};

static pthread_mutex_t o_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t o_cv = PTHREAD_COND_INITIALIZER;
static struct order *o_head, **o_tail = &o_head;
static pthread_once_t o_once = PTHREAD_ONCE_INIT;
static bool o_running;
static uint64_t o_sent, o_failed;

static size_t sink(char *p, size_t sz, size_t n, void *ud)
{
	size_t *have = ud, len = sz * n;

	(void)p;
	*have += len;
	return len;
}

static void post(struct order *o)
{
	CURL *c = curl_easy_init();
	struct curl_slist *h = NULL;
	size_t have = 0;
	long code = 0;
	CURLcode rc = CURLE_FAILED_INIT;

	if (c) {
		h = curl_slist_append(h, "Content-Type: application/json");
		curl_easy_setopt(c, CURLOPT_URL, o->url);
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, o->body);
		curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
		curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 5000L);
		curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
		curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, sink);
		curl_easy_setopt(c, CURLOPT_WRITEDATA, &have);
		rc = curl_easy_perform(c);
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
		curl_slist_free_all(h);
		curl_easy_cleanup(c);
	}
	pthread_mutex_lock(&o_mu);
	if (rc == CURLE_OK && code >= 200 && code < 300)
		o_sent++;
	else
		o_failed++;
	pthread_mutex_unlock(&o_mu);
	if (rc != CURLE_OK)
		pr_warn("ORDER: %s cap %u/%u to node %u: %s\n", o->load ? "load" : "evict",
			o->cap >> 8, o->cap & 0xff, o->node, curl_easy_strerror(rc));
	else
		pr_info("ORDER: %s cap %u/%u to node %u: HTTP %ld\n", o->load ? "load" : "evict",
			o->cap >> 8, o->cap & 0xff, o->node, code);
}

static void *worker(void *arg)
{
	(void)arg;
	for (;;) {
		struct order *o;

		pthread_mutex_lock(&o_mu);
		while (!o_head)
			pthread_cond_wait(&o_cv, &o_mu);
		o = o_head;
		o_head = o->next;
		if (!o_head)
			o_tail = &o_head;
		pthread_mutex_unlock(&o_mu);
		post(o);
		free(o->body);
		free(o);
	}
	return NULL;
}

static void start(void)
{
	pthread_t t;

	curl_global_init(CURL_GLOBAL_DEFAULT);
	if (!pthread_create(&t, NULL, worker, NULL)) {
		pthread_detach(t);
		o_running = true;
	}
}

static void queue(uint32_t cap, uint32_t node, bool load)
{
	struct d_cap *c = idnd_cap_find(cap);
	struct d_node *n = node < IDN_MAX_NODES ? &D.nodes[node] : NULL;
	json_object *b;
	struct order *o;
	char name[80];

	if (!c || !c->artifact[0] || !n || !n->used || !n->api_port)
		return;
	pthread_once(&o_once, start);
	if (!o_running)
		return;
	o = calloc(1, sizeof(*o));
	if (!o)
		return;
	o->node = node;
	o->cap = cap;
	o->load = load;
	if (n->addr4[0])
		snprintf(o->url, sizeof(o->url), "http://%s:%u/v1/residency/%s", n->addr4,
			 n->api_port, load ? "load" : "evict");
	else
		snprintf(o->url, sizeof(o->url), "http://[%s]:%u/v1/residency/%s", n->addr6,
			 n->api_port, load ? "load" : "evict");
	/* one artifact per capability and node: named after the label */
	snprintf(name, sizeof(name), "cap-%u-%u", cap >> 8, cap & 0xff);
	b = json_object_new_object();
	json_object_object_add(b, "name", json_object_new_string(name));
	if (load) {
		json_object_object_add(b, "path", json_object_new_string(c->artifact));
		json_object_object_add(b, "cap", json_object_new_int64(cap));
	}
	o->body = strdup(json_object_to_json_string_ext(b, JSON_C_TO_STRING_PLAIN));
	json_object_put(b);
	if (!o->body) {
		free(o);
		return;
	}
	pthread_mutex_lock(&o_mu);
	*o_tail = o;
	o_tail = &o->next;
	pthread_cond_signal(&o_cv);
	pthread_mutex_unlock(&o_mu);
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

void idnd_orders_counts(uint64_t *sent, uint64_t *failed)
{
	pthread_mutex_lock(&o_mu);
	*sent = o_sent;
	*failed = o_failed;
	pthread_mutex_unlock(&o_mu);
}
