// SPDX-License-Identifier: GPL-2.0
/*
 * pd.c - the network side of two-stage (P/D) requests on real nodes
 * (docs/agent.md "Two-stage (P/D) requests"): the prefill node's agent
 * asks idnd for the request's second stage and the decode node it picks
 * by J (GET /v1/placement/stage2, idnd_pd_pick()), and, once the
 * prompt's KV is on that node, hands it the request and relays its
 * answer (struct pd_fwd, a libcurl multi handle driven from the HTTP
 * server's content callback, so a stream is relayed chunk by chunk).
 * The orchestration (prefill, push, fallback, receipts) is in http.c.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>
#include <json-c/json.h>

#include "agent.h"
#include "http.h"
#include "json_get.h"

int pd_stage2(struct agent *a, uint32_t label, uint64_t token, uint8_t size_class,
	      struct pd_target *t, char *msg, size_t ml)
{
	static const struct idn_tls plain = { .insecure = true };
	struct idn_http_buf out = { .max = 256 << 10 };
	json_object *o = NULL, *cands, *c = NULL;
	char base[256], url[512], sc[16] = "";
	const char *kv, *a4, *a6;
	int64_t pick, port;
	long code = 0;
	CURL *h;
	int e;

	memset(t, 0, sizeof(*t));
	/* registered (atomic): the controller client is set up, curl initialised */
	if (!a->ctl.registered || ctl_base_url(&a->ctl, base, sizeof(base)))
		return snprintf(msg, ml, "no controller to ask for stage 2"), -ENOTCONN;
	if (size_class <= 15)
		snprintf(sc, sizeof(sc), "&size_class=%u", size_class);
	snprintf(url, sizeof(url), "%s/v1/placement/stage2?cap=%u&token=%016llx%s", base, label,
		 (unsigned long long)token, sc);
	h = curl_easy_init();
	if (!h)
		return snprintf(msg, ml, "out of memory"), -ENOMEM;
	e = idn_http_request(h, a->tls ? a->tls : &plain, "GET", url, NULL, 1000, &out, &code,
			     msg, ml);
	curl_easy_cleanup(h);
	if (e) {
		free(out.p);
		return -EHOSTUNREACH;
	}
	if (code == 404) {
		free(out.p);
		return -ENOENT;	/* not a two-stage capability */
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
	pick = idn_jint(o, "pick", -1);
	t->generation = idn_jint(o, "generation", 0);
	t->j_us = idn_jint(o, "pick_j_us", 0);
	for (size_t i = 0; pick >= 0 && i < json_object_array_length(cands); i++)
		if (idn_jint(json_object_array_get_idx(cands, i), "id", -1) == pick)
			c = json_object_array_get_idx(cands, i);
	if (!c) {
		snprintf(msg, ml, "stage 2: no decode node picked (verdict %s)",
			 idn_jstr(o, "verdict") ? idn_jstr(o, "verdict") : "?");
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
		snprintf(t->api, sizeof(t->api), "http://%s:%lld", a4, (long long)port);
	else
		snprintf(t->api, sizeof(t->api), "http://[%s]:%lld", a6, (long long)port);
	json_object_put(o);
	return 0;
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
