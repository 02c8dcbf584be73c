// SPDX-License-Identifier: GPL-2.0
/*
 * adapter.c - the real-engine adapter: the agent manages an external
 * vLLM- or SGLang-style server by URL (--engine-url) instead of, or beside,
 * the built-in emulator (libcurl + json-c).
 *
 *   scrape   a thread, every --scrape-ms: GET /health, GET /metrics
 *            (Prometheus text; vLLM names, SGLang's where they map one to
 *            one), GET /is_sleeping; the figures become the agent's load,
 *            queue, pending prefill tokens and KV use (heartbeat, telemetry,
 *            /metrics); malformed lines are counted and skipped
 *   LoRA     POST /v1/load_lora_adapter, /v1/unload_lora_adapter
 *            {"lora_name", "lora_path"}, loaded adapters tracked by name
 *   sleep    POST /sleep?level=N, POST /wake_up, GET /is_sleeping
 *   pass     completions sent to the agent go on to the engine
 *            (adapter_proxy()); their prompt tokens are the ledger of
 *            outstanding prefill, settled by the engine's prompt-token
 *            counter or the request's first byte back, and reported in
 *            every telemetry datagram
 *
 * The engine is "up" while /health answers 2xx; every failure keeps a
 * message saying what failed (connection, HTTP status, body). Library:
 * returns -errno, never prints or exits.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>
#include <json-c/json.h>

#include "agent.h"

#define AD_BODY_MAX (4U << 20)

struct body {
	char *p;
	size_t len;
	bool too_big;
};

static size_t body_cb(char *p, size_t sz, size_t n, void *u)
{
	struct body *b = u;
	size_t len = sz * n;
	char *np;

	if (b->len + len > AD_BODY_MAX) {
		b->too_big = true;
		return 0;
	}
	np = realloc(b->p, b->len + len + 1);
	if (!np)
		return 0;
	b->p = np;
	memcpy(b->p + b->len, p, len);
	b->len += len;
	b->p[b->len] = 0;
	return len;
}

/*
 * One request to the engine (a fresh easy handle: callers are the scrape
 * thread and HTTP handler threads). Returns the HTTP status (> 0), or
 * -EHOSTUNREACH with msg set when no answer came.
 */
static long request(struct adapter *ad, const char *method, const char *path,
		    const char *json, struct body *b, char *msg, size_t ml)
{
	struct curl_slist *h = NULL;
	char url[512];
	CURLcode rc;
	long code = 0;
	CURL *c = curl_easy_init();

	memset(b, 0, sizeof(*b));
	if (!c) {
		snprintf(msg, ml, "libcurl: out of memory");
		return -ENOMEM;
	}
	/* LoRA and sleep: the engine's management URL when it has one (--engine-mgmt-url) */
	snprintf(url, sizeof(url), "%s%s", ad->mgmt[0] && (!strncmp(path, "/v1/load_lora", 13) ||
		 !strncmp(path, "/v1/unload_lora", 15) || !strncmp(path, "/sleep", 6) ||
		 !strcmp(path, "/wake_up")) ? ad->mgmt : ad->base, path);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)ad->timeout_ms);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, (long)ad->timeout_ms);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, body_cb);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, b);
	if (!strcmp(method, "POST")) {
		h = curl_slist_append(NULL, "Content-Type: application/json");
		curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, json ? json : "");
	}
	rc = curl_easy_perform(c);
	if (rc == CURLE_OK)
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
	else
		snprintf(msg, ml, "%s %s%s: %s", method, ad->base, path,
			 b->too_big ? "answer too large" : curl_easy_strerror(rc));
	curl_slist_free_all(h);
	curl_easy_cleanup(c);
	return rc == CURLE_OK ? code : -EHOSTUNREACH;
}

/* the engine's words for a failed call: its error message, else the body */
static void say_failure(const char *what, long code, const struct body *b, char *msg, size_t ml)
{
	json_object *o = b->p ? json_tokener_parse(b->p) : NULL, *e, *m;
	const char *text = b->p ? b->p : "";

	if (o && json_object_object_get_ex(o, "error", &e)) {
		if (json_object_is_type(e, json_type_string))
			text = json_object_get_string(e);
		else if (json_object_object_get_ex(e, "message", &m))
			text = json_object_get_string(m);
	} else if (o && json_object_object_get_ex(o, "message", &m)) {
		text = json_object_get_string(m);
	}
	snprintf(msg, ml, "%s: HTTP %ld: %.200s", what, code, text);
	if (ml && strlen(msg) && msg[strlen(msg) - 1] == '\n')
		msg[strlen(msg) - 1] = 0;
	json_object_put(o);
}

/* ---- Prometheus text ---------------------------------------------------- */

/* metric names the adapter reads: vLLM's, SGLang's where they map, and an
 * idn-agent's own (an agent managing another agent's emulator) */
enum { M_RUN, M_WAIT, M_KV, M_PQ, M_PH, M_PROMPT, M_GEN, M_OK, M_PEND };
static const struct {
	const char *name;
	int what;
	bool sglang;
} known[] = {
	{ "vllm:num_requests_running", M_RUN, false },
	{ "vllm:num_requests_waiting", M_WAIT, false },
	{ "vllm:kv_cache_usage_perc", M_KV, false },
	{ "vllm:gpu_cache_usage_perc", M_KV, false },
	{ "vllm:prefix_cache_queries_total", M_PQ, false },
	{ "vllm:gpu_prefix_cache_queries_total", M_PQ, false },
	{ "vllm:prefix_cache_hits_total", M_PH, false },
	{ "vllm:gpu_prefix_cache_hits_total", M_PH, false },
	{ "vllm:prompt_tokens_total", M_PROMPT, false },
	{ "vllm:generation_tokens_total", M_GEN, false },
	{ "vllm:request_success_total", M_OK, false },
	{ "idn_agent_pending_prefill_tokens", M_PEND, false },
	{ "idn_agent_requests_running", M_RUN, false },
	{ "idn_agent_requests_waiting", M_WAIT, false },
	{ "idn_agent_kv_cache_usage_ratio", M_KV, false },
	{ "idn_agent_prefix_cache_query_tokens_total", M_PQ, false },
	{ "idn_agent_prefix_cache_hit_tokens_total", M_PH, false },
	{ "idn_agent_prompt_tokens_total", M_PROMPT, false },
	{ "idn_agent_generation_tokens_total", M_GEN, false },
	{ "idn_agent_requests_finished_total", M_OK, false },
	{ "sglang:num_running_reqs", M_RUN, true },
	{ "sglang:num_queue_reqs", M_WAIT, true },
	{ "sglang:token_usage", M_KV, true },
	{ "sglang:prompt_tokens_total", M_PROMPT, true },
	{ "sglang:generation_tokens_total", M_GEN, true },
	{ "sglang:num_requests_total", M_OK, true },
};

static bool name_ch(char c, bool first)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':' ||
	       (!first && c >= '0' && c <= '9');
}

/* one sample line "name{labels} value [timestamp]": 0, or -EINVAL */
static int parse_line(const char *s, const char *end, char *name, size_t nl, double *v)
{
	const char *p = s;
	size_t n = 0;
	char num[64], *e;

	if (p >= end || !name_ch(*p, true))
		return -EINVAL;
	while (p < end && name_ch(*p, false)) {
		if (n + 1 < nl)
			name[n++] = *p;
		p++;
	}
	name[n] = 0;
	if (p < end && *p == '{') {
		bool q = false;

		for (p++; p < end; p++) {
			if (q && *p == '\\' && p + 1 < end)
				p++;
			else if (*p == '"')
				q = !q;
			else if (!q && *p == '}')
				break;
		}
		if (p >= end || q)
			return -EINVAL;
		p++;
	}
	if (p >= end || (*p != ' ' && *p != '\t'))
		return -EINVAL;
	while (p < end && (*p == ' ' || *p == '\t'))
		p++;
	for (n = 0; p < end && *p != ' ' && *p != '\t'; p++) {
		if (n + 1 >= sizeof(num))
			return -EINVAL;
		num[n++] = *p;
	}
	num[n] = 0;
	if (!n)
		return -EINVAL;
	*v = strtod(num, &e);
	if (*e)
		return -EINVAL;
	while (p < end && (*p == ' ' || *p == '\t'))
		p++;
	if (p < end) {		/* optional timestamp: an integer */
		if (*p == '-')
			p++;
		if (p >= end)
			return -EINVAL;
		for (; p < end; p++)
			if (*p < '0' || *p > '9')
				return -EINVAL;
	}
	return 0;
}

int adapter_parse_metrics(const char *text, size_t len, struct adapter_metrics *m)
{
	const char *p = text, *end = text + len;
	char name[128];

	memset(m, 0, sizeof(*m));
	while (p < end) {
		const char *eol = memchr(p, '\n', end - p), *s = p, *e;
		double v;

		if (!eol)
			eol = end;
		p = eol + 1;
		e = eol;
		if (e > s && e[-1] == '\r')
			e--;
		while (s < e && (*s == ' ' || *s == '\t'))
			s++;
		if (s == e || *s == '#')
			continue;
		m->lines++;
		if (parse_line(s, e, name, sizeof(name), &v)) {
			m->malformed++;
			continue;
		}
		for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++) {
			if (strcmp(name, known[i].name))
				continue;
			/* no figure of ours is negative or near 2^53 (sums stay finite) */
			if (!isfinite(v) || v < 0 || v > 1e15) {
				m->malformed++;
				break;
			}
			m->known++;
			if (known[i].sglang)
				m->sglang = true;
			switch (known[i].what) {
			case M_RUN: m->running += v; m->have |= ADM_RUNNING; break;
			case M_WAIT: m->waiting += v; m->have |= ADM_WAITING; break;
			case M_KV:
				if (v > m->kv_use)
					m->kv_use = v;
				m->have |= ADM_KV;
				break;
			case M_PQ: m->prefix_queries += v; break;
			case M_PH: m->prefix_hits += v; break;
			case M_PROMPT: m->prompt_tokens += v; break;
			case M_GEN: m->gen_tokens += v; break;
			case M_OK: m->requests += v; break;
			case M_PEND: m->pending_tokens += v; m->have |= ADM_PENDING; break;
			}
			break;
		}
	}
	return m->malformed ? -EBADMSG : 0;
}

/* ---- scraping ---------------------------------------------------------- */

static uint64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void set_down(struct adapter *ad, const char *msg)
{
	pthread_mutex_lock(&ad->mu);
	if (ad->up)
		ad->downs++;
	ad->up = false;
	ad->scrape_failures++;
	snprintf(ad->last_err, sizeof(ad->last_err), "%s", msg);
	pthread_mutex_unlock(&ad->mu);
}

int adapter_scrape(struct adapter *ad)
{
	struct adapter_metrics m;
	struct body b;
	char msg[sizeof(ad->last_err)] = "";
	long code;
	int sleeping = -1, rc;

	code = request(ad, "GET", "/health", NULL, &b, msg, sizeof(msg));
	if (code < 200 || code > 299) {
		if (code > 0)
			say_failure("GET /health", code, &b, msg, sizeof(msg));
		free(b.p);
		set_down(ad, msg);
		return code > 0 ? -EIO : (int)code;
	}
	free(b.p);
	code = request(ad, "GET", "/metrics", NULL, &b, msg, sizeof(msg));
	if (code < 200 || code > 299) {
		if (code > 0)
			say_failure("GET /metrics", code, &b, msg, sizeof(msg));
		free(b.p);
		set_down(ad, msg);
		return code > 0 ? -EIO : (int)code;
	}
	rc = adapter_parse_metrics(b.p ? b.p : "", b.len, &m);
	free(b.p);
	/* is_sleeping is optional (vLLM serves it in dev mode only) */
	code = request(ad, "GET", "/is_sleeping", NULL, &b, msg, sizeof(msg));
	if (code >= 200 && code <= 299 && b.p) {
		json_object *o = json_tokener_parse(b.p), *x;

		if (o && json_object_object_get_ex(o, "is_sleeping", &x))
			sleeping = json_object_get_boolean(x);
		json_object_put(o);
	}
	free(b.p);
	if (m.known)
		adapter_credit(ad, m.prompt_tokens);
	pthread_mutex_lock(&ad->mu);
	ad->m = m;
	ad->up = true;
	ad->scrapes++;
	ad->malformed += m.malformed;
	if (sleeping >= 0)
		ad->sleeping = sleeping;
	ad->have_sleep = sleeping >= 0;
	ad->last_ok_ms = mono_ms();
	if (rc)
		snprintf(ad->last_err, sizeof(ad->last_err),
			 "GET /metrics: %u malformed line(s) of %u skipped", m.malformed, m.lines);
	else if (!m.known)
		snprintf(ad->last_err, sizeof(ad->last_err),
			 "GET /metrics: no vLLM or SGLang metric found");
	else
		ad->last_err[0] = 0;
	pthread_mutex_unlock(&ad->mu);
	return rc;
}

static void *scrape_run(void *arg)
{
	struct adapter *ad = arg;

	pthread_mutex_lock(&ad->mu);
	while (!ad->stop) {
		struct timespec ts;

		pthread_mutex_unlock(&ad->mu);
		adapter_scrape(ad);
		pthread_mutex_lock(&ad->mu);
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += ad->period_ms / 1000;
		ts.tv_nsec += (long)(ad->period_ms % 1000) * 1000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		if (!ad->stop)
			pthread_cond_timedwait(&ad->cv, &ad->mu, &ts);
	}
	pthread_mutex_unlock(&ad->mu);
	return NULL;
}

int adapter_init(struct adapter *ad, const char *url, uint32_t period_ms, uint32_t max_seqs)
{
	size_t n;

	memset(ad, 0, sizeof(*ad));
	if (strncmp(url, "http://", 7) && strncmp(url, "https://", 8))
		return -EINVAL;
	n = strlen(url);
	if (n >= sizeof(ad->base))
		return -ENAMETOOLONG;
	memcpy(ad->base, url, n + 1);
	while (n && ad->base[n - 1] == '/')
		ad->base[--n] = 0;
	ad->period_ms = period_ms ? period_ms : 500;
	ad->timeout_ms = 2000;
	ad->max_seqs = max_seqs ? max_seqs : 256;
	ad->led_ctr = -1;
	snprintf(ad->last_err, sizeof(ad->last_err), "not scraped yet");
	pthread_mutex_init(&ad->mu, NULL);
	pthread_cond_init(&ad->cv, NULL);
	ad->inited = true;
	return 0;
}

int adapter_start(struct adapter *ad)
{
	int err = pthread_create(&ad->thr, NULL, scrape_run, ad);

	if (err)
		return -err;
	ad->running = true;
	return 0;
}

void adapter_stop(struct adapter *ad)
{
	if (!ad->inited)
		return;
	pthread_mutex_lock(&ad->mu);
	ad->stop = true;
	pthread_cond_signal(&ad->cv);
	pthread_mutex_unlock(&ad->mu);
	if (ad->running)
		pthread_join(ad->thr, NULL);
	ad->running = false;
	pthread_mutex_destroy(&ad->mu);
	pthread_cond_destroy(&ad->cv);
	ad->inited = false;
}

bool adapter_up(struct adapter *ad)
{
	bool up;

	pthread_mutex_lock(&ad->mu);
	up = ad->up;
	pthread_mutex_unlock(&ad->mu);
	return up;
}

/*
 * The engine's figures as the agent's load: queue = running + waiting;
 * load = running / max_seqs permille, 1000 while requests wait (as the
 * emulator); kv_use from the KV usage gauge; pending prefill tokens from
 * the agent's ledger once requests pass through it (adapter_proxy(): read
 * now, at the telemetry rate, not at the scrape's), else the emulator's
 * idn_agent_pending_prefill_tokens, else estimated as waiting x mean
 * prompt tokens per finished request. An engine that is
 * down (or never answered) reads as saturated, so routers steer away.
 */
void adapter_load(struct adapter *ad, struct eng_load *l)
{
	struct adapter_metrics m;
	uint64_t passed, passed_tokens, ledger;
	bool up;

	pthread_mutex_lock(&ad->mu);
	m = ad->m;
	up = ad->up;
	passed = ad->passed;
	passed_tokens = ad->passed_tokens;
	ledger = ad->led_out - ad->led_credit;
	pthread_mutex_unlock(&ad->mu);
	memset(l, 0, sizeof(*l));
	/* what the routers sent, counted as it passes (admitted even when down) */
	l->admit_reqs = passed;
	l->admit_tokens = passed_tokens;
	if (!up) {
		l->load = 1000;
		return;
	}
	l->running = m.running > UINT32_MAX ? UINT32_MAX : (uint32_t)m.running;
	l->waiting = m.waiting > UINT32_MAX ? UINT32_MAX : (uint32_t)m.waiting;
	l->queue_depth = (uint64_t)l->running + l->waiting > UINT32_MAX ? UINT32_MAX :
			 l->running + l->waiting;
	l->load = l->running >= ad->max_seqs ? 1000 : l->running * 1000 / ad->max_seqs;
	if (l->waiting)
		l->load = 1000;
	l->kv_use = m.kv_use >= 1 ? 1000 : (uint16_t)(m.kv_use * 1000 + 0.5);
	if (passed)		/* requests pass through the agent: its ledger, live */
		l->pending_tokens = ledger > UINT32_MAX ? UINT32_MAX : (uint32_t)ledger;
	else if (m.have & ADM_PENDING)
		l->pending_tokens = m.pending_tokens > UINT32_MAX ? UINT32_MAX :
				    (uint32_t)m.pending_tokens;
	else if (m.requests > 0)
		l->pending_tokens = fmin(UINT32_MAX, l->waiting * (m.prompt_tokens / m.requests));
}

/* ---- LoRA adapters, sleep/wake ------------------------------------------ */

static int code_err(long code)
{
	return code == 404 ? -ENOENT : code == 400 || code == 422 ? -EINVAL :
	       code == 409 ? -EEXIST : -EIO;
}

static struct adapter_lora *lora_find(struct adapter *ad, const char *name)
{
	for (uint32_t i = 0; i < ad->n_lora; i++)
		if (!strcmp(ad->lora[i].name, name))
			return &ad->lora[i];
	return NULL;
}

int adapter_lora_load(struct adapter *ad, const char *name, const char *path, uint32_t cap,
		      char *msg, size_t ml)
{
	json_object *o = json_object_new_object();
	struct body b;
	long code;
	int err = 0;

	if (!*name || strlen(name) >= sizeof(ad->lora[0].name) ||
	    strlen(path) >= sizeof(ad->lora[0].path)) {
		json_object_put(o);
		snprintf(msg, ml, "adapter name or path too long");
		return -EINVAL;
	}
	pthread_mutex_lock(&ad->mu);
	if (lora_find(ad, name))
		err = -EEXIST;
	else if (ad->n_lora >= ADAPTER_MAX_LORA)
		err = -ENOSPC;
	pthread_mutex_unlock(&ad->mu);
	if (err) {
		json_object_put(o);
		if (err == -EEXIST)
			snprintf(msg, ml, "adapter \"%s\" already loaded", name);
		else
			snprintf(msg, ml, "too many adapters (%u)", ADAPTER_MAX_LORA);
		return err;
	}
	json_object_object_add(o, "lora_name", json_object_new_string(name));
	json_object_object_add(o, "lora_path", json_object_new_string(path));
	code = request(ad, "POST", "/v1/load_lora_adapter",
		       json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN), &b, msg, ml);
	json_object_put(o);
	if (code > 0 && (code < 200 || code > 299))
		say_failure("POST /v1/load_lora_adapter", code, &b, msg, ml);
	free(b.p);
	pthread_mutex_lock(&ad->mu);
	if (code >= 200 && code <= 299) {
		if (!lora_find(ad, name) && ad->n_lora < ADAPTER_MAX_LORA) {
			struct adapter_lora *l = &ad->lora[ad->n_lora++];

			snprintf(l->name, sizeof(l->name), "%s", name);
			snprintf(l->path, sizeof(l->path), "%s", path);
			l->cap = cap;
		}
		ad->lora_loads++;
		err = 0;
	} else {
		ad->lora_failures++;
		err = code > 0 ? code_err(code) : (int)code;
	}
	pthread_mutex_unlock(&ad->mu);
	return err;
}

int adapter_lora_unload(struct adapter *ad, const char *name, char *msg, size_t ml)
{
	json_object *o = json_object_new_object();
	struct adapter_lora *l;
	struct body b;
	long code;
	int err;

	json_object_object_add(o, "lora_name", json_object_new_string(name));
	code = request(ad, "POST", "/v1/unload_lora_adapter",
		       json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN), &b, msg, ml);
	json_object_put(o);
	if (code > 0 && (code < 200 || code > 299))
		say_failure("POST /v1/unload_lora_adapter", code, &b, msg, ml);
	free(b.p);
	pthread_mutex_lock(&ad->mu);
	l = lora_find(ad, name);
	/* gone on the engine (done now, or unknown there): gone here too */
	if ((code >= 200 && code <= 299) || code == 404) {
		if (l)
			*l = ad->lora[--ad->n_lora];
	}
	if (code >= 200 && code <= 299) {
		ad->lora_unloads++;
		err = 0;
	} else {
		ad->lora_failures++;
		err = code > 0 ? code_err(code) : (int)code;
	}
	pthread_mutex_unlock(&ad->mu);
	return err;
}

bool adapter_has_lora(struct adapter *ad, const char *name)
{
	bool has;

	pthread_mutex_lock(&ad->mu);
	has = lora_find(ad, name) != NULL;
	pthread_mutex_unlock(&ad->mu);
	return has;
}

int adapter_sleep(struct adapter *ad, bool sleep, uint32_t level, char *msg, size_t ml)
{
	char path[48];
	struct body b;
	long code;

	if (sleep)
		snprintf(path, sizeof(path), "/sleep?level=%u", level);
	else
		snprintf(path, sizeof(path), "/wake_up");
	code = request(ad, "POST", path, "", &b, msg, ml);
	if (code > 0 && (code < 200 || code > 299))
		say_failure(sleep ? "POST /sleep" : "POST /wake_up", code, &b, msg, ml);
	free(b.p);
	if (code < 200 || code > 299)
		return code > 0 ? code_err(code) : (int)code;
	pthread_mutex_lock(&ad->mu);
	ad->sleeping = sleep;
	ad->sleeps += sleep;
	ad->wakes += !sleep;
	pthread_mutex_unlock(&ad->mu);
	return 0;
}

/* capability labels of loaded LoRA adapters, appended to arr (heartbeat "resident") */
void adapter_resident_caps(struct adapter *ad, struct json_object *arr)
{
	pthread_mutex_lock(&ad->mu);
	for (uint32_t i = 0; i < ad->n_lora; i++) {
		bool dup = false;

		if (!ad->lora[i].cap)
			continue;
		for (size_t j = 0; j < json_object_array_length(arr); j++)
			dup |= json_object_get_int64(json_object_array_get_idx(arr, j)) ==
			       ad->lora[i].cap;
		if (!dup)
			json_object_array_add(arr, json_object_new_int64(ad->lora[i].cap));
	}
	pthread_mutex_unlock(&ad->mu);
}

struct json_object *adapter_json(struct adapter *ad)
{
	json_object *o = json_object_new_object(), *m = json_object_new_object(),
		    *arr = json_object_new_array();
	uint64_t now = mono_ms();

	pthread_mutex_lock(&ad->mu);
	json_object_object_add(o, "url", json_object_new_string(ad->base));
	json_object_object_add(o, "up", json_object_new_boolean(ad->up));
	json_object_object_add(o, "flavor", json_object_new_string(ad->m.sglang ? "sglang" : "vllm"));
	json_object_object_add(o, "sleeping", ad->have_sleep || ad->sleeps ?
			       json_object_new_boolean(ad->sleeping) : NULL);
	json_object_object_add(o, "error", ad->last_err[0] ?
			       json_object_new_string(ad->last_err) : NULL);
	json_object_object_add(o, "scrapes", json_object_new_int64(ad->scrapes));
	json_object_object_add(o, "scrape_failures", json_object_new_int64(ad->scrape_failures));
	json_object_object_add(o, "malformed_lines", json_object_new_int64(ad->malformed));
	json_object_object_add(o, "last_scrape_age_ms", ad->last_ok_ms ?
			       json_object_new_int64(now - ad->last_ok_ms) : NULL);
	json_object_object_add(m, "running", json_object_new_double(ad->m.running));
	json_object_object_add(m, "waiting", json_object_new_double(ad->m.waiting));
	json_object_object_add(m, "kv_cache_usage", json_object_new_double(ad->m.kv_use));
	json_object_object_add(m, "prefix_cache_queries", json_object_new_double(ad->m.prefix_queries));
	json_object_object_add(m, "prefix_cache_hits", json_object_new_double(ad->m.prefix_hits));
	json_object_object_add(m, "prompt_tokens", json_object_new_double(ad->m.prompt_tokens));
	json_object_object_add(m, "generation_tokens", json_object_new_double(ad->m.gen_tokens));
	json_object_object_add(m, "requests", json_object_new_double(ad->m.requests));
	json_object_object_add(o, "metrics", m);
	json_object_object_add(o, "passed", json_object_new_int64(ad->passed));
	json_object_object_add(o, "passed_tokens", json_object_new_int64(ad->passed_tokens));
	json_object_object_add(o, "pass_failures", json_object_new_int64(ad->pass_failures));
	json_object_object_add(o, "prefill_outstanding",
			       json_object_new_int64(ad->led_out - ad->led_credit));
	for (uint32_t i = 0; i < ad->n_lora; i++) {
		json_object *e = json_object_new_object();

		json_object_object_add(e, "name", json_object_new_string(ad->lora[i].name));
		json_object_object_add(e, "path", json_object_new_string(ad->lora[i].path));
		json_object_object_add(e, "cap", json_object_new_int64(ad->lora[i].cap));
		json_object_array_add(arr, e);
	}
	json_object_object_add(o, "lora_adapters", arr);
	json_object_object_add(o, "lora_loads", json_object_new_int64(ad->lora_loads));
	json_object_object_add(o, "lora_unloads", json_object_new_int64(ad->lora_unloads));
	json_object_object_add(o, "lora_failures", json_object_new_int64(ad->lora_failures));
	pthread_mutex_unlock(&ad->mu);
	return o;
}

/* ---- the prefill ledger, requests passed to the engine ------------------ */

void adapter_pass(struct adapter *ad, uint32_t tokens)
{
	pthread_mutex_lock(&ad->mu);
	ad->led_out += tokens;
	ad->passed++;
	ad->passed_tokens += tokens;
	pthread_mutex_unlock(&ad->mu);
}

/*
 * A passed request is done with its prefill: its first byte came back
 * (prefilled), or it failed (never prefilled: the counter will not show
 * it). The engines prefill in arrival order, so what the counter credited
 * belongs to the oldest requests, the ones settling first: the credit
 * covers this request first; the rest of it, if prefilled, the counter
 * has not shown yet (led_early: not to be credited to others then).
 */
void adapter_settle(struct adapter *ad, uint32_t tokens, bool prefilled)
{
	uint64_t t, c;

	pthread_mutex_lock(&ad->mu);
	t = tokens < ad->led_out ? tokens : ad->led_out;
	c = t < ad->led_credit ? t : ad->led_credit;
	ad->led_out -= t;
	ad->led_credit -= c;
	if (prefilled)
		ad->led_early += t - c;
	if (ad->led_credit > ad->led_out)
		ad->led_credit = ad->led_out;
	pthread_mutex_unlock(&ad->mu);
}

/*
 * One scrape's prompt-token counter (vLLM's vllm:prompt_tokens_total,
 * SGLang's sglang:prompt_tokens_total: counted when a request's prefill
 * is done): its growth first pays for requests already settled at their
 * first byte, the rest is credited to those still out, never beyond them
 * (requests sent to the engine around the agent grow it too). A counter
 * that went back (engine restart) only sets the base.
 */
void adapter_credit(struct adapter *ad, double counter)
{
	pthread_mutex_lock(&ad->mu);
	if (ad->led_ctr >= 0 && counter >= ad->led_ctr) {
		double d = counter - ad->led_ctr;
		uint64_t dt = d > 1e15 ? (uint64_t)1e15 : (uint64_t)d, e;

		e = dt < ad->led_early ? dt : ad->led_early;
		ad->led_early -= e;
		dt -= e;
		if (dt > ad->led_out - ad->led_credit)
			dt = ad->led_out - ad->led_credit;
		ad->led_credit += dt;
	}
	ad->led_ctr = counter;
	if (!ad->led_out)
		ad->led_early = 0;
	pthread_mutex_unlock(&ad->mu);
}

struct pass_body {
	struct body b;
	struct adapter *ad;
	uint32_t tokens;
	bool settled;
};

static size_t pass_cb(char *p, size_t sz, size_t n, void *u)
{
	struct pass_body *pb = u;

	if (!pb->settled && sz && n) {	/* the first byte: the prefill is done */
		adapter_settle(pb->ad, pb->tokens, true);
		pb->settled = true;
	}
	return body_cb(p, sz, n, &pb->b);
}

long adapter_proxy(struct adapter *ad, const char *path, const char *body, uint32_t tokens,
		   char **out, size_t *olen, char *ctype, size_t ctl, char *msg, size_t ml)
{
	struct pass_body pb = { .ad = ad, .tokens = tokens };
	struct curl_slist *h = NULL;
	char url[512];
	const char *ct = NULL;
	CURLcode rc;
	long code = 0;
	CURL *c = curl_easy_init();

	*out = NULL;
	*olen = 0;
	if (!c) {
		snprintf(msg, ml, "libcurl: out of memory");
		return -ENOMEM;
	}
	snprintf(url, sizeof(url), "%s%s", ad->base, path);
	adapter_pass(ad, tokens);
	h = curl_slist_append(NULL, "Content-Type: application/json");
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, (long)ad->timeout_ms);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 3600000L);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, pass_cb);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &pb);
	rc = curl_easy_perform(c);
	if (rc == CURLE_OK) {
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
		curl_easy_getinfo(c, CURLINFO_CONTENT_TYPE, &ct);
	}
	snprintf(ctype, ctl, "%s", ct ? ct : "application/json");
	if (!pb.settled)	/* no answer, or an empty one: nothing prefilled */
		adapter_settle(ad, tokens, rc == CURLE_OK && code >= 200 && code <= 299);
	curl_slist_free_all(h);
	curl_easy_cleanup(c);
	if (rc != CURLE_OK) {
		snprintf(msg, ml, "POST %s%s: %s", ad->base, path,
			 pb.b.too_big ? "answer too large" : curl_easy_strerror(rc));
		free(pb.b.p);
		pthread_mutex_lock(&ad->mu);
		ad->pass_failures++;
		pthread_mutex_unlock(&ad->mu);
		return -EHOSTUNREACH;
	}
	*out = pb.b.p;
	*olen = pb.b.len;
	return code;
}
