// SPDX-License-Identifier: GPL-2.0
/*
 * pd.c - the network side of two-stage (P/D) requests on real nodes
 * (docs/agent.md "Two-stage (P/D) requests"): the prefill node's agent
 * asks idnd for the request's second stage and the decode node it picks
 * by J (GET /v1/placement/stage2, idnd_pd_pick(); its answers cached a
 * short while, struct pd_cache), and, once the
 * prompt's KV is on that node, hands it the request and relays its
 * answer (struct pd_fwd, a libcurl multi handle driven from the HTTP
 * server's content callback, so a stream is relayed chunk by chunk).
 * The orchestration (prefill, push, fallback, receipts) is in http.c.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <curl/curl.h>
#include <json-c/json.h>

#include "agent.h"
#include "http.h"
#include "json_get.h"

/*
 * Stage 2's answers, kept --pd-cache-ms (1 s by default) per question:
 * the capability (or the VIP, port and model it was found by) and the
 * prompt's size class, so a burst costs idnd one round trip, not one per
 * request. The pick depends on the decode nodes' load (J) and this node
 * does not see it change, so the time is short; a failed hand-over drops
 * the node's picks at once (pd_cache_drop()). "Not two-stage" and
 * "ambiguous" are kept too, so requests of other capabilities cost idnd
 * nothing either, and so is idnd unreachable or in error (a burst then
 * waits out one timeout, not one each); not registered yet is not kept.
 */
#define PD_CACHE_N 32

struct pd_cache_ent {
	char key[200];			/* "" = free */
	uint8_t size_class;
	double until;			/* monotonic ms */
	int rc;
	struct pd_target t;
	char msg[200];
};

struct pd_cache {
	pthread_mutex_t mu;
	struct pd_cache_ent e[PD_CACHE_N];
	uint64_t hits, misses, dropped;	/* misses: idnd asked (cache on or off) */
};

static double mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

int pd_cache_init(struct agent *a)
{
	a->pdc = calloc(1, sizeof(*a->pdc));
	if (!a->pdc)
		return -ENOMEM;
	pthread_mutex_init(&a->pdc->mu, NULL);
	return 0;
}

void pd_cache_free(struct agent *a)
{
	if (!a->pdc)
		return;
	pthread_mutex_destroy(&a->pdc->mu);
	free(a->pdc);
	a->pdc = NULL;
}

void pd_cache_counts(struct agent *a, uint64_t *hits, uint64_t *misses, uint64_t *dropped)
{
	*hits = *misses = *dropped = 0;
	if (!a->pdc)
		return;
	pthread_mutex_lock(&a->pdc->mu);
	*hits = a->pdc->hits;
	*misses = a->pdc->misses;
	*dropped = a->pdc->dropped;
	pthread_mutex_unlock(&a->pdc->mu);
}

void pd_cache_drop(struct agent *a, uint32_t node)
{
	if (!a->pdc)
		return;
	pthread_mutex_lock(&a->pdc->mu);
	for (int i = 0; i < PD_CACHE_N; i++) {
		struct pd_cache_ent *e = &a->pdc->e[i];

		if (e->key[0] && !e->rc && e->t.node == node) {
			e->key[0] = 0;
			a->pdc->dropped++;
		}
	}
	pthread_mutex_unlock(&a->pdc->mu);
}

/* q's key: its question without the token; false: not to be cached */
static bool pd_key(const struct pd_query *q, char *k, size_t kl)
{
	int n;

	if (q->label)
		n = snprintf(k, kl, "cap=%u", q->label);
	else
		n = snprintf(k, kl, "vip=%s&port=%u&model=%s", q->vip, q->port,
			     q->model ? q->model : "");
	return n > 0 && (size_t)n < kl;
}

/* the cached answer to q: true with rc, t and msg set (stateless: not a pick) */
static bool pd_cache_get(struct agent *a, const char *key, uint8_t sc, bool stateless, int *rc,
			 struct pd_target *t, char *msg, size_t ml)
{
	struct pd_cache *c = a->pdc;
	double now = mono_ms();
	bool hit = false;

	pthread_mutex_lock(&c->mu);
	for (int i = 0; i < PD_CACHE_N && !hit; i++) {
		struct pd_cache_ent *e = &c->e[i];

		if (!e->key[0] || e->size_class != sc || strcmp(e->key, key))
			continue;
		if (e->until <= now) {
			e->key[0] = 0;	/* stale */
			break;
		}
		if (stateless && e->rc != -ENOENT && e->rc != -ENOTUNIQ)
			break;
		*rc = e->rc;
		*t = e->t;
		snprintf(msg, ml, "%s", e->msg);
		hit = true;
	}
	c->hits += hit;
	pthread_mutex_unlock(&c->mu);
	return hit;
}

static void pd_cache_put(struct agent *a, const char *key, uint8_t sc, int rc,
			 const struct pd_target *t, const char *msg)
{
	struct pd_cache *c = a->pdc;
	struct pd_cache_ent *v = NULL;
	double now = mono_ms();

	pthread_mutex_lock(&c->mu);
	for (int i = 0; i < PD_CACHE_N; i++) {	/* the same question, else a free or the oldest */
		struct pd_cache_ent *e = &c->e[i];

		if (e->key[0] && e->size_class == sc && !strcmp(e->key, key)) {
			v = e;
			break;
		}
		if (!v || !e->key[0] || (v->key[0] && e->until < v->until))
			v = e;
	}
	snprintf(v->key, sizeof(v->key), "%s", key);
	v->size_class = sc;
	v->until = now + a->cfg.pd_cache_ms;
	v->rc = rc;
	v->t = *t;
	snprintf(v->msg, sizeof(v->msg), "%s", msg);
	pthread_mutex_unlock(&c->mu);
}

/* idnd's answer, asked (one round trip) */
static int pd_ask(struct agent *a, const struct pd_query *q, struct pd_target *t, char *msg,
		  size_t ml)
{
	static const struct idn_tls plain = { .insecure = true };
	struct idn_http_buf out = { .max = 256 << 10 };
	json_object *o = NULL, *cands, *c = NULL;
	char base[256], url[1024], sc[16] = "", what[400];
	const char *kv, *a4, *a6;
	int64_t pick, port, lab;
	long code = 0;
	CURL *h;
	int e;

	/* registered (atomic): the controller client is set up, curl initialised */
	if (!a->ctl.registered || ctl_base_url(&a->ctl, base, sizeof(base)))
		return snprintf(msg, ml, "no controller to ask for stage 2"), -ENOTCONN;
	if (q->size_class <= 15)
		snprintf(sc, sizeof(sc), "&size_class=%u", q->size_class);
	h = curl_easy_init();
	if (!h)
		return snprintf(msg, ml, "out of memory"), -ENOMEM;
	if (q->label) {
		snprintf(what, sizeof(what), "cap=%u", q->label);
	} else {
		char *vip = curl_easy_escape(h, q->vip, 0);
		char *mod = q->model ? curl_easy_escape(h, q->model, 0) : NULL;

		e = vip && (!q->model || mod) &&
		    snprintf(what, sizeof(what), "vip=%s&port=%u%s%s", vip, q->port,
			     mod ? "&model=" : "", mod ? mod : "") < (int)sizeof(what);
		curl_free(vip);
		curl_free(mod);
		if (!e) {
			curl_easy_cleanup(h);
			return snprintf(msg, ml, "stage 2: model name too long"), -EINVAL;
		}
	}
	if (q->scope == KV_SCOPE_TENANT || q->scope == KV_SCOPE_SESSION) {
		size_t wl = strlen(what);

		snprintf(what + wl, sizeof(what) - wl, "&scope=%s&tenant=%u&session=%016llx"
			 "&root=%016llx&from=%u", kv_scope_name(q->scope), q->tenant,
			 (unsigned long long)q->session, (unsigned long long)q->root,
			 a->cfg.node_id);
	}
	snprintf(url, sizeof(url), "%s/v1/placement/stage2?%s&token=%016llx%s", base, what,
		 (unsigned long long)q->token, sc);
	e = idn_http_request(h, a->tls ? a->tls : &plain, "GET", url, NULL, 1000, &out, &code,
			     msg, ml);
	curl_easy_cleanup(h);
	if (e) {
		free(out.p);
		return -EHOSTUNREACH;
	}
	if (code == 404 || code == 409) {	/* not two-stage; the VIP's capability unclear */
		o = out.p ? json_tokener_parse(out.p) : NULL;
		snprintf(msg, ml, "stage 2: %s", o && idn_jstr(o, "error") ? idn_jstr(o, "error") :
			 code == 404 ? "not a two-stage capability" : "ambiguous");
		json_object_put(o);
		free(out.p);
		return code == 404 ? -ENOENT : -ENOTUNIQ;
	}
	if (code != 200 || !out.p || !(o = json_tokener_parse(out.p)) ||
	    !json_object_object_get_ex(o, "candidates", &cands) ||
	    !json_object_is_type(cands, json_type_array)) {
		snprintf(msg, ml, "stage 2 from idnd: HTTP %ld %.80s", code, out.p ? out.p : "");
		free(out.p);
		json_object_put(o);
		return -EPROTO;
	}
	free(out.p);
	lab = idn_jint(o, "cap", 0);
	t->label = lab > 0 && lab <= UINT32_MAX ? lab : q->label;
	pick = idn_jint(o, "pick", -1);
	t->generation = idn_jint(o, "generation", 0);
	t->j_us = idn_jint(o, "pick_j_us", 0);
	for (size_t i = 0; pick >= 0 && i < json_object_array_length(cands); i++)
		if (idn_jint(json_object_array_get_idx(cands, i), "id", -1) == pick)
			c = json_object_array_get_idx(cands, i);
	if (!c && idn_jstr(o, "verdict") && !strcmp(idn_jstr(o, "verdict"), "scope")) {
		json_object *r;

		snprintf(msg, ml, "stage 2: no decode node may hold %s-scoped state (scope: "
			 "%zu refused)", kv_scope_name(q->scope),
			 json_object_object_get_ex(o, "scope_refused", &r) &&
			 json_object_is_type(r, json_type_array) ? json_object_array_length(r) : 0);
		json_object_put(o);
		return -EAGAIN;
	}
	if (!c) {
		snprintf(msg, ml, "stage 2: no decode node picked (verdict %s%s%.100s)",
			 idn_jstr(o, "verdict") ? idn_jstr(o, "verdict") : "?",
			 idn_jstr(o, "announce_error") ? ": " : "",
			 idn_jstr(o, "announce_error") ? idn_jstr(o, "announce_error") : "");
		json_object_put(o);
		return -EAGAIN;
	}
	t->node = pick;
	kv = idn_jstr(c, "kv");
	a4 = idn_jstr(c, "addr4");
	a6 = idn_jstr(c, "addr6");
	port = idn_jint(c, "api_port", 0);
	if (!kv || !*kv || (!(a4 && *a4) && !(a6 && *a6)) || port <= 0 || port > 65535) {
		snprintf(msg, ml, "stage 2: node %u has no KV listener or API address", t->node);
		json_object_put(o);
		return -EPROTO;
	}
	snprintf(t->kv, sizeof(t->kv), "%s", kv);
	if (a4 && *a4)
		snprintf(t->addr4, sizeof(t->addr4), "%s", a4);
	if (a4 && *a4)
		snprintf(t->api, sizeof(t->api), "http://%s:%lld", a4, (long long)port);
	else
		snprintf(t->api, sizeof(t->api), "http://[%s]:%lld", a6, (long long)port);
	json_object_put(o);
	return 0;
}

int pd_stage2(struct agent *a, const struct pd_query *q, struct pd_target *t, char *msg,
	      size_t ml)
{
	char key[200];
	bool cache = a->cfg.pd_cache_ms && a->pdc && pd_key(q, key, sizeof(key)), scoped;
	int rc;

	memset(t, 0, sizeof(*t));
	msg[0] = 0;
	/*
	 * Tenant or session state: idnd picks among the nodes that may hold
	 * it and announces each transfer at its pick, so that answer is not
	 * reused; what does not depend on the state is (not two-stage,
	 * ambiguous: the same question's cached answer)
	 */
	scoped = q->scope == KV_SCOPE_TENANT || q->scope == KV_SCOPE_SESSION;
	if (cache && pd_cache_get(a, key, q->size_class, scoped, &rc, t, msg, ml))
		return rc;
	if (a->pdc) {	/* a round trip to idnd */
		pthread_mutex_lock(&a->pdc->mu);
		a->pdc->misses++;
		pthread_mutex_unlock(&a->pdc->mu);
	}
	rc = pd_ask(a, q, t, msg, ml);
	if (cache && rc != -ENOMEM && rc != -ENOTCONN && rc != -EINVAL &&
	    (!scoped || rc == -ENOENT || rc == -ENOTUNIQ))
		pd_cache_put(a, key, q->size_class, rc, t, msg);
	return rc;
}

/* ---- the request to the decode node, relayed --------------------------- */

static size_t fwd_hdr(char *p, size_t sz, size_t n, void *cls)
{
	struct pd_fwd *f = cls;
	size_t len = sz * n;
	static const char rh[] = "X-IDN-Receipt:";
	static const char ct[] = "Content-Type:";

	if (len >= 5 && !strncmp(p, "HTTP/", 5)) {	/* a status line: a new answer */
		f->peer_req = 0;
		f->ctype[0] = 0;
	} else if (len > sizeof(rh) && !strncasecmp(p, rh, sizeof(rh) - 1)) {
		const char *s = strstr(p, "/v1/receipts/");

		if (s)
			f->peer_req = strtoull(s + 13, NULL, 10);
	} else if (len > sizeof(ct) && !strncasecmp(p, ct, sizeof(ct) - 1)) {
		size_t k = len - (sizeof(ct) - 1);
		const char *v = p + sizeof(ct) - 1;

		while (k && (*v == ' ' || *v == '\t'))
			v++, k--;
		while (k && (v[k - 1] == '\r' || v[k - 1] == '\n'))
			k--;
		if (k >= sizeof(f->ctype))
			k = sizeof(f->ctype) - 1;
		memcpy(f->ctype, v, k);
		f->ctype[k] = 0;
	}
	return len;
}

static size_t fwd_data(char *p, size_t sz, size_t n, void *cls)
{
	struct pd_fwd *f = cls;
	size_t len = sz * n;

	if (!f->code)
		curl_easy_getinfo(f->e, CURLINFO_RESPONSE_CODE, &f->code);
	if (f->len + len + 1 > f->cap) {
		size_t cap = (f->len + len + 1) * 2;
		char *b;

		if (cap > PD_FWD_MAX || !(b = realloc(f->buf, cap)))
			return 0;	/* too big or no memory: the transfer fails */
		f->buf = b;
		f->cap = cap;
	}
	memcpy(f->buf + f->len, p, len);
	f->len += len;
	f->buf[f->len] = 0;
	return len;
}

int pd_fwd_start(struct pd_fwd *f, const char *url, const char *body,
		 const char *const *hdrs, long timeout_ms)
{
	memset(f, 0, sizeof(*f));
	f->m = curl_multi_init();
	f->e = curl_easy_init();
	if (!f->m || !f->e)
		return -ENOMEM;
	f->h = curl_slist_append(NULL, "Content-Type: application/json");
	for (int i = 0; hdrs && hdrs[i]; i++)
		f->h = curl_slist_append(f->h, hdrs[i]);
	/* no "Expect: 100-continue" round trip before the body */
	f->h = curl_slist_append(f->h, "Expect:");
	f->body = strdup(body);
	if (!f->h || !f->body)
		return -ENOMEM;
	curl_easy_setopt(f->e, CURLOPT_URL, url);
	curl_easy_setopt(f->e, CURLOPT_PROTOCOLS_STR, "http");
	curl_easy_setopt(f->e, CURLOPT_HTTPHEADER, f->h);
	curl_easy_setopt(f->e, CURLOPT_POSTFIELDS, f->body);
	curl_easy_setopt(f->e, CURLOPT_HEADERFUNCTION, fwd_hdr);
	curl_easy_setopt(f->e, CURLOPT_HEADERDATA, f);
	curl_easy_setopt(f->e, CURLOPT_WRITEFUNCTION, fwd_data);
	curl_easy_setopt(f->e, CURLOPT_WRITEDATA, f);
	curl_easy_setopt(f->e, CURLOPT_TIMEOUT_MS, timeout_ms);
	curl_easy_setopt(f->e, CURLOPT_CONNECTTIMEOUT_MS, 1000L);
	curl_easy_setopt(f->e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(f->e, CURLOPT_ERRORBUFFER, f->err);
	if (curl_multi_add_handle(f->m, f->e) != CURLM_OK)
		return -ENOMEM;
	f->added = true;
	return 0;
}

int pd_fwd_step(struct pd_fwd *f, int wait_ms)
{
	CURLMsg *msg;
	int running = 0, left;

	if (f->done)
		return 0;
	if (curl_multi_perform(f->m, &running) != CURLM_OK) {
		f->done = true;
		f->rc = CURLE_FAILED_INIT;
		return -EIO;
	}
	while ((msg = curl_multi_info_read(f->m, &left)))
		if (msg->msg == CURLMSG_DONE) {
			f->done = true;
			f->rc = msg->data.result;
			curl_easy_getinfo(f->e, CURLINFO_RESPONSE_CODE, &f->code);
		}
	if (!f->done && running && f->off >= f->len)
		curl_multi_poll(f->m, NULL, 0, wait_ms, NULL);
	return 0;
}

bool pd_fwd_failed(const struct pd_fwd *f)
{
	return (f->code && f->code != 200) || (f->done && (f->rc != CURLE_OK || !f->code));
}

const char *pd_fwd_why(const struct pd_fwd *f, char *buf, size_t len)
{
	if (f->done && f->rc != CURLE_OK)
		snprintf(buf, len, "%s", f->err[0] ? f->err : curl_easy_strerror(f->rc));
	else if (f->code != 200)
		snprintf(buf, len, "HTTP %ld: %.100s", f->code, f->buf ? f->buf : "");
	else
		snprintf(buf, len, "no answer");
	return buf;
}

void pd_fwd_free(struct pd_fwd *f)
{
	if (f->m && f->e && f->added)
		curl_multi_remove_handle(f->m, f->e);
	if (f->e)
		curl_easy_cleanup(f->e);
	if (f->m)
		curl_multi_cleanup(f->m);
	curl_slist_free_all(f->h);
	free(f->body);
	free(f->buf);
	memset(f, 0, sizeof(*f));
}
