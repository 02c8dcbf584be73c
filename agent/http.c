// SPDX-License-Identifier: GPL-2.0
/*
 * http.c - idn-agent's HTTP server (libmicrohttpd, a thread per
 * connection, so handlers may block on the engine):
 *
 *   POST /v1/completions, /v1/chat/completions   OpenAI-compatible, SSE
 *        with "stream": true; trace shapes via "input_length",
 *        "output_length" and "hash_ids" (see docs/agent.md)
 *   GET  /v1/models, /health, /healthz, /readyz, /metrics (?names=vllm:
 *        vLLM's metric names), /v1/agent
 *   GET  /v1/residency; POST /v1/residency/load, /v1/residency/evict
 *   GET  /v1/receipts, /v1/receipts/ID, /v1/agent/key   signed receipts
 *   POST /v1/kv/push     move the KV blocks of a cached prefix to a peer
 *   emulator, as vLLM:   POST /v1/load_lora_adapter, /v1/unload_lora_adapter,
 *        POST /sleep?level=N, /wake_up, GET /is_sleeping
 *   managed engine (--engine-url, adapter.c): GET /v1/engine, POST
 *        /v1/engine/sleep, /v1/engine/wake; LoRA orders via /v1/residency;
 *        without the emulator (--no-engine) completions pass on to it,
 *        counted in the prefill ledger (adapter_proxy())
 *
 * Two listeners (issue 11): --listen serves inference and reads; the
 * management POSTs (residency orders, /v1/kv/push, sleep/wake, LoRA) are
 * answered only on --mgmt-listen (default loopback) and refused with 403
 * on the inference port before their body is read. Bodies are bounded per
 * endpoint (8 MiB inference, 64 KiB management; a larger Content-Length
 * is refused at once) and in total (AGENT_BODY_BUDGET buffered across all
 * connections: 503 beyond), so held uploads cannot take the memory.
 *
 * The management listener speaks mutual TLS (ctl/lib/http.c, --tls-ca,
 * --tls-cert, --tls-key; plain only with --insecure) and answers only a
 * certificate of role controller (idnd) or admin: anyone else gets 403
 * before the body is read, with a log line naming the principal.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <unistd.h>

#include <curl/curl.h>
#include <sodium.h>

#include <json-c/json.h>
#include <microhttpd.h>

#include "agent.h"
#include "kvxfer.h"
#include "receipt.h"
#include "http.h"
#include "log.h"
#include "prom.h"
#include "json_get.h"
#include "../tools/stamp/prefix.h"

#define BODY_MAX (8U << 20)
#define MGMT_BODY_MAX (64U << 10)
#define AGENT_BODY_BUDGET (64UL << 20)	/* request bodies buffered, all connections */

struct conn {
	char *buf;
	size_t len, cap;	/* cap: bytes allocated, what the budget counts */
	bool too_big;
	bool busy;		/* over AGENT_BODY_BUDGET: 503 */
};

static size_t body_bytes;	/* allocated for bodies now, all connections (atomic) */
static uint64_t body_refused;	/* bodies refused over the budget (atomic) */

static void refused_log(const char *kind, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static enum MHD_Result send_text(struct MHD_Connection *c, unsigned int code,
				 const char *type, const char *s)
{
	struct MHD_Response *r = MHD_create_response_from_buffer(strlen(s), (void *)s,
								 MHD_RESPMEM_MUST_COPY);
	enum MHD_Result ret;

	MHD_add_response_header(r, "Content-Type", type);
	ret = MHD_queue_response(c, code, r);
	MHD_destroy_response(r);
	return ret;
}

static enum MHD_Result send_json(struct MHD_Connection *c, unsigned int code, json_object *o)
{
	enum MHD_Result ret = send_text(c, code, "application/json",
		json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));

	json_object_put(o);
	return ret;
}

static enum MHD_Result send_err(struct MHD_Connection *c, unsigned int code,
				const char *fmt, ...)
{
	json_object *o = json_object_new_object(), *e = json_object_new_object();
	char msg[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	json_object_object_add(e, "message", json_object_new_string(msg));
	json_object_object_add(e, "type", json_object_new_string(
		code >= 500 ? "server_error" : "invalid_request_error"));
	json_object_object_add(e, "code", json_object_new_int(code));
	json_object_object_add(o, "error", e);
	return send_json(c, code, o);
}

/* ---- engine control -------------------------------------------------- */

/*
 * The emulator answers vLLM's control endpoints as vLLM does (dev mode,
 * runtime LoRA updating on): LoRA adapters are tracked by name (the path
 * must exist; a loaded name is listed by /v1/models with its base model
 * as parent); POST /sleep?level=1|2 and /wake_up answer 200 with an empty
 * body, GET /is_sleeping {"is_sleeping": bool}. While asleep the emulator
 * refuses completions with 503 (a sleeping vLLM has released its weights
 * and KV memory and cannot serve), so routers and retries go elsewhere.
 */
static bool emu_asleep(struct agent *a, bool count)
{
	bool asleep;

	pthread_mutex_lock(&a->emu.mu);
	asleep = a->emu.sleep_level != 0;
	if (asleep && count)
		a->emu.refused_asleep++;
	pthread_mutex_unlock(&a->emu.mu);
	return asleep;
}

static json_object *emu_json(struct agent *a)
{
	json_object *o = json_object_new_object(), *arr = json_object_new_array();

	pthread_mutex_lock(&a->emu.mu);
	json_object_object_add(o, "is_sleeping", json_object_new_boolean(a->emu.sleep_level));
	json_object_object_add(o, "sleep_level", json_object_new_int(a->emu.sleep_level));
	for (uint32_t i = 0; i < a->emu.n_lora; i++)
		json_object_array_add(arr, json_object_new_string(a->emu.lora[i].name));
	json_object_object_add(o, "lora_adapters", arr);
	pthread_mutex_unlock(&a->emu.mu);
	return o;
}

static void emu_models(struct agent *a, json_object *d)
{
	if (!a->cfg.engine)
		return;
	pthread_mutex_lock(&a->emu.mu);
	for (uint32_t i = 0; i < a->emu.n_lora; i++) {
		json_object *m = json_object_new_object();

		json_object_object_add(m, "id", json_object_new_string(a->emu.lora[i].name));
		json_object_object_add(m, "object", json_object_new_string("model"));
		json_object_object_add(m, "owned_by", json_object_new_string("idn"));
		json_object_object_add(m, "root", json_object_new_string(a->emu.lora[i].path));
		json_object_object_add(m, "parent", json_object_new_string(a->cfg.model));
		json_object_array_add(d, m);
	}
	pthread_mutex_unlock(&a->emu.mu);
}

static enum MHD_Result emu_is_sleeping(struct agent *a, struct MHD_Connection *c)
{
	json_object *o;

	if (!a->cfg.engine)
		return send_err(c, 404, "no engine on this agent");
	o = json_object_new_object();
	json_object_object_add(o, "is_sleeping", json_object_new_boolean(emu_asleep(a, false)));
	return send_json(c, 200, o);
}

static enum MHD_Result emu_sleep(struct agent *a, struct MHD_Connection *c, bool sleep)
{
	const char *lv = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "level");
	unsigned long level = 1;
	char *end;

	if (!a->cfg.engine)
		return send_err(c, 404, "no engine on this agent");
	if (sleep && lv) {
		level = strtoul(lv, &end, 10);
		if (*end || level < 1 || level > 2)
			return send_err(c, 400, "level: 1 or 2 expected");
	}
	pthread_mutex_lock(&a->emu.mu);
	a->emu.sleep_level = sleep ? level : 0;
	pthread_mutex_unlock(&a->emu.mu);
	return send_text(c, 200, "text/plain", "");
}

static enum MHD_Result emu_lora(struct agent *a, struct MHD_Connection *c, bool load,
				json_object *o)
{
	struct emu_ctl *em = &a->emu;
	const char *name, *path = "";
	json_object *x;
	struct stat st;
	char msg[400];
	int code = 200;

	if (!a->cfg.engine)
		return send_err(c, 404, "no engine on this agent");
	if (!json_object_object_get_ex(o, "lora_name", &x) ||
	    !json_object_is_type(x, json_type_string) || !*json_object_get_string(x))
		return send_err(c, 400, "lora_name: a string expected");
	name = json_object_get_string(x);
	if (load) {
		if (!json_object_object_get_ex(o, "lora_path", &x) ||
		    !json_object_is_type(x, json_type_string))
			return send_err(c, 400, "lora_path: a string expected");
		path = json_object_get_string(x);
		if (strlen(name) >= sizeof(em->lora[0].name) ||
		    strlen(path) >= sizeof(em->lora[0].path))
			return send_err(c, 400, "lora_name or lora_path too long");
		if (stat(path, &st))
			return send_err(c, 400, "Loading lora %s failed: No adapter found for %s",
					name, path);
	}
	pthread_mutex_lock(&em->mu);
	{
		uint32_t i;

		for (i = 0; i < em->n_lora && strcmp(em->lora[i].name, name); i++)
			;
		if (load && i < em->n_lora) {
			code = 400;
			snprintf(msg, sizeof(msg), "The lora adapter '%s' has already been loaded.",
				 name);
		} else if (load && em->n_lora >= ADAPTER_MAX_LORA) {
			code = 400;
			snprintf(msg, sizeof(msg), "Loading lora %s failed: too many adapters (%u)",
				 name, ADAPTER_MAX_LORA);
		} else if (load) {
			snprintf(em->lora[em->n_lora].name, sizeof(em->lora[0].name), "%s", name);
			snprintf(em->lora[em->n_lora].path, sizeof(em->lora[0].path), "%s", path);
			em->n_lora++;
			snprintf(msg, sizeof(msg),
				 "Success: LoRA adapter '%s' added successfully.", name);
		} else if (i == em->n_lora) {
			code = 404;
			snprintf(msg, sizeof(msg), "The lora adapter '%s' cannot be found.", name);
		} else {
			em->lora[i] = em->lora[--em->n_lora];
			snprintf(msg, sizeof(msg),
				 "Success: LoRA adapter '%s' removed successfully.", name);
		}
	}
	pthread_mutex_unlock(&em->mu);
	if (code != 200)
		return send_err(c, code, "%s", msg);
	return send_text(c, 200, "text/plain", msg);
}

/* ---- the managed engine (adapter.c) ------------------------------------- */

/* Registered with idnd; true where no idnd is configured (nothing to wait for). */
static bool agent_registered(const struct agent *a)
{
	return !a->cfg.controller[0] || a->ctl.registered;	/* C11 atomic */
}

/*
 * GET /readyz: 200 when the agent can take work: registered with idnd
 * (where --controller is given) and its engine up (the emulator, or a
 * managed engine answering /health); else 503 with a JSON body naming
 * what is missing. /healthz (and vLLM's /health): the process answers.
 */
static enum MHD_Result readyz(struct agent *a, struct MHD_Connection *c)
{
	json_object *o = json_object_new_object(), *why = json_object_new_array();
	bool reg = agent_registered(a);
	bool eng = a->cfg.engine || (a->ad && adapter_up(a->ad));

	if (!reg)
		json_object_array_add(why, json_object_new_string("not registered with idnd"));
	if (!eng)
		json_object_array_add(why, json_object_new_string(
			a->ad ? "managed engine down" : "no engine"));
	json_object_object_add(o, "ready", json_object_new_boolean(reg && eng));
	json_object_object_add(o, "registered", json_object_new_boolean(reg));
	json_object_object_add(o, "engine_up", json_object_new_boolean(eng));
	json_object_object_add(o, "missing", why);
	return send_json(c, reg && eng ? 200 : 503, o);
}

static enum MHD_Result health(struct agent *a, struct MHD_Connection *c)
{
	char msg[600];

	if (a->ad && !adapter_up(a->ad)) {
		pthread_mutex_lock(&a->ad->mu);
		snprintf(msg, sizeof(msg), "engine %s down: %s\n", a->ad->base, a->ad->last_err);
		pthread_mutex_unlock(&a->ad->mu);
		return send_text(c, 503, "text/plain", msg);
	}
	return send_text(c, 200, "text/plain", "ok\n");
}

static json_object *residency_view(struct agent *a)
{
	json_object *o = res_json(&a->res), *e, *l;

	if (a->ad) {
		e = adapter_json(a->ad);
		if (json_object_object_get_ex(e, "lora_adapters", &l))
			json_object_object_add(o, "lora_adapters", json_object_get(l));
		json_object_put(e);
	}
	return o;
}

/* an order for a LoRA adapter: "kind": "adapter", a directory, or (evict) a loaded name */
static bool lora_order(struct agent *a, const char *what, json_object *o, const char *name)
{
	json_object *x;
	struct stat st;

	if (json_object_object_get_ex(o, "kind", &x) && json_object_is_type(x, json_type_string))
		return !strcmp(json_object_get_string(x), "adapter");
	if (!strcmp(what, "evict"))
		return adapter_has_lora(a->ad, name);
	return json_object_object_get_ex(o, "path", &x) &&
	       json_object_is_type(x, json_type_string) &&
	       !stat(json_object_get_string(x), &st) && S_ISDIR(st.st_mode);
}

static unsigned int engine_code(int err)
{
	return err == -EEXIST ? 409 : err == -ENOENT ? 404 : err == -EINVAL ? 400 : 502;
}

static enum MHD_Result lora_post(struct agent *a, struct MHD_Connection *c, const char *what,
				 json_object *o, const char *name)
{
	json_object *x;
	uint32_t cap = 0;
	char msg[400] = "";
	int err;

	if (!strcmp(what, "evict")) {
		err = adapter_lora_unload(a->ad, name, msg, sizeof(msg));
	} else {
		if (!json_object_object_get_ex(o, "path", &x) ||
		    !json_object_is_type(x, json_type_string))
			return send_err(c, 400, "field \"path\": string expected");
		if (json_object_object_get_ex(o, "cap", &x)) {
			if (!json_object_is_type(x, json_type_int) || json_object_get_int64(x) < 0 ||
			    json_object_get_int64(x) > UINT32_MAX)
				return send_err(c, 400, "field \"cap\": capability label expected");
			cap = json_object_get_int64(x);
		}
		err = adapter_lora_load(a->ad, name, json_object_get_string(
			json_object_object_get(o, "path")), cap, msg, sizeof(msg));
	}
	if (err)
		return send_err(c, engine_code(err), "LoRA adapter %s: %s", name, msg);
	return send_json(c, 200, residency_view(a));
}

static enum MHD_Result engine_sleep(struct agent *a, struct MHD_Connection *c, bool sleep,
				    const char *body)
{
	json_object *o = body ? json_tokener_parse(body) : NULL, *x;
	uint32_t level = 1;
	char msg[400] = "";
	int err;

	if (!a->ad) {
		json_object_put(o);
		return send_err(c, 404, "no managed engine (--engine-url)");
	}
	if (o && json_object_object_get_ex(o, "level", &x))
		level = json_object_get_int(x);
	json_object_put(o);
	if (sleep && (level < 1 || level > 2))
		return send_err(c, 400, "level: 1 or 2 expected");
	err = adapter_sleep(a->ad, sleep, level, msg, sizeof(msg));
	if (err)
		return send_err(c, engine_code(err), "%s", msg);
	return send_json(c, 200, adapter_json(a->ad));
}

/* ---- completions ------------------------------------------------------- */

struct creq {
	bool stream, chat;
	uint32_t in, out, nkeys;
	uint64_t *keys;
	uint64_t ptoken;	/* a completion prompt's prefix token (stamp/prefix.h), 0: none */
};

/* exactly 16 lowercase or uppercase hex digits -> *v; -EINVAL otherwise */
static int parse_hex64(const char *s, uint64_t *v)
{
	uint64_t x = 0;
	int i;

	for (i = 0; s[i]; i++) {
		int d = s[i] >= '0' && s[i] <= '9' ? s[i] - '0' :
			s[i] >= 'a' && s[i] <= 'f' ? s[i] - 'a' + 10 :
			s[i] >= 'A' && s[i] <= 'F' ? s[i] - 'A' + 10 : -1;

		if (d < 0 || i >= 16)
			return -EINVAL;
		x = x << 4 | d;
	}
	if (i != 16)
		return -EINVAL;
	*v = x;
	return 0;
}

static int get_u32(json_object *o, const char *k, uint32_t max, uint32_t *v, bool *have)
{
	json_object *x;
	int64_t n;

	*have = false;
	if (!json_object_object_get_ex(o, k, &x) || json_object_is_type(x, json_type_null))
		return 0;
	if (!json_object_is_type(x, json_type_int))
		return -EINVAL;
	n = json_object_get_int64(x);
	if (n < 0 || (uint64_t)n > max)
		return -ERANGE;
	*v = n;
	*have = true;
	return 0;
}

/* the prompt's text (completions: string or first string of an array;
 * chat: the messages' contents joined); token ids count as tokens */
static int prompt_of(json_object *o, bool chat, char **text, uint32_t *ids_tokens)
{
	json_object *p, *m;
	size_t len = 0;
	char *s = NULL;

	*text = NULL;
	*ids_tokens = 0;
	if (chat) {
		if (!json_object_object_get_ex(o, "messages", &p) ||
		    !json_object_is_type(p, json_type_array))
			return -EINVAL;
		for (size_t i = 0; i < json_object_array_length(p); i++) {
			json_object *msg = json_object_array_get_idx(p, i);
			const char *t;
			size_t tl;
			char *ns;

			if (!json_object_object_get_ex(msg, "content", &m) ||
			    !json_object_is_type(m, json_type_string))
				continue;
			t = json_object_get_string(m);
			tl = strlen(t);
			ns = realloc(s, len + tl + 2);
			if (!ns) {
				free(s);
				return -ENOMEM;
			}
			s = ns;
			memcpy(s + len, t, tl);
			len += tl;
			s[len++] = ' ';
			s[len] = 0;
		}
		*text = s ? s : strdup("");
		return *text ? 0 : -ENOMEM;
	}
	if (!json_object_object_get_ex(o, "prompt", &p)) {
		*text = strdup("");
		return *text ? 0 : -ENOMEM;
	}
	if (json_object_is_type(p, json_type_array)) {
		json_object *f = json_object_array_get_idx(p, 0);

		if (f && json_object_is_type(f, json_type_int)) {
			*ids_tokens = json_object_array_length(p);
			*text = strdup("");
			return *text ? 0 : -ENOMEM;
		}
		p = f;
	}
	if (!p || !json_object_is_type(p, json_type_string))
		return -EINVAL;
	*text = strdup(json_object_get_string(p));
	return *text ? 0 : -ENOMEM;
}

/* 0, or an HTTP status with msg */
static int parse_creq(struct agent *a, json_object *o, bool chat, struct creq *q,
		      char *msg, size_t ml)
{
	uint32_t v, bt = a->cfg.eng.block_tokens, tok = 0, idt;
	json_object *x, *ids;
	bool have;
	char *text;

	memset(q, 0, sizeof(*q));
	q->chat = chat;
	q->out = 16;
	if (json_object_object_get_ex(o, "stream", &x))
		q->stream = json_object_get_boolean(x);
	if (get_u32(o, chat ? "max_completion_tokens" : "max_tokens", 1 << 20, &v, &have) ||
	    (chat && !have && get_u32(o, "max_tokens", 1 << 20, &v, &have)))
		return snprintf(msg, ml, "max_tokens: expected an integer 0..1048576"), 400;
	if (have)
		q->out = v;
	if (get_u32(o, "output_length", 1 << 20, &v, &have))
		return snprintf(msg, ml, "output_length: expected an integer"), 400;
	if (have)
		q->out = v;
	if (!q->out)
		q->out = 1;
	if (json_object_object_get_ex(o, "hash_ids", &ids)) {
		size_t n;
		int64_t *raw;

		if (!json_object_is_type(ids, json_type_array))
			return snprintf(msg, ml, "hash_ids: expected an array of integers"), 400;
		n = json_object_array_length(ids);
		if (n > (1U << 20))
			return snprintf(msg, ml, "hash_ids: too many"), 400;
		raw = malloc(sizeof(*raw) * (n ? n : 1));
		if (!raw)
			return snprintf(msg, ml, "out of memory"), 500;
		for (size_t i = 0; i < n; i++) {
			json_object *e = json_object_array_get_idx(ids, i);

			if (!json_object_is_type(e, json_type_int)) {
				free(raw);
				return snprintf(msg, ml, "hash_ids: expected an array of integers"), 400;
			}
			raw[i] = json_object_get_int64(e);
		}
		if (eng_keys_from_ids(raw, n, &q->keys)) {
			free(raw);
			return snprintf(msg, ml, "out of memory"), 500;
		}
		free(raw);
		q->nkeys = n;
		tok = n * bt;
	} else {
		if (prompt_of(o, chat, &text, &idt))
			return snprintf(msg, ml, chat ? "messages: expected an array of messages" :
					"prompt: expected a string or array"), 400;
		q->nkeys = eng_keys_from_text(text, bt, &q->keys, &tok);
		/* the token idn-stamp prefix-file derives from this prompt */
		if (!chat && text[0])
			q->ptoken = idn_prefix_token(text, strlen(text), 0);
		free(text);
		if (idt)
			tok = idt;
	}
	if (get_u32(o, "input_length", 1 << 30, &v, &have))
		return snprintf(msg, ml, "input_length: expected an integer"), 400;
	if (have)
		tok = v;
	if (!tok)
		tok = 1;
	if ((uint64_t)q->nkeys > ((uint64_t)tok + bt - 1) / bt)
		return snprintf(msg, ml, "hash_ids: %u blocks for %u tokens", q->nkeys, tok), 400;
	q->in = tok;
	return 0;
}

static void usage_json(json_object *o, const struct eng_req *r)
{
	json_object *u = json_object_new_object(), *d = json_object_new_object();

	json_object_object_add(u, "prompt_tokens", json_object_new_int64(r->in_tokens));
	json_object_object_add(u, "completion_tokens", json_object_new_int64(r->generated));
	json_object_object_add(u, "total_tokens", json_object_new_int64(r->in_tokens + r->generated));
	json_object_object_add(d, "cached_tokens", json_object_new_int64(r->cached_tokens));
	json_object_object_add(u, "prompt_tokens_details", d);
	json_object_object_add(o, "usage", u);
}

static json_object *timing_json(const struct eng_req *r)
{
	json_object *t = json_object_new_object();

	json_object_object_add(t, "ttft_ms", json_object_new_double(
		(r->t_first - r->t_arrival) / 1000.0));
	json_object_object_add(t, "e2e_ms", json_object_new_double(
		(r->t_done - r->t_arrival) / 1000.0));
	json_object_object_add(t, "request", json_object_new_int64(r->id));
	return t;
}

static char *gen_text(uint32_t from, uint32_t to)
{
	size_t cap = (size_t)(to - from) * 12 + 1, o = 0;
	char *s = malloc(cap);

	if (!s)
		return NULL;
	s[0] = 0;
	for (uint32_t i = from; i < to; i++)
		o += snprintf(s + o, cap - o, " t%u", i);
	return s;
}

static json_object *choice_obj(bool chat, bool delta, bool role, const char *text,
			       const char *finish)
{
	json_object *ch = json_object_new_object();

	json_object_object_add(ch, "index", json_object_new_int(0));
	if (chat) {
		json_object *m = json_object_new_object();

		if (role)
			json_object_object_add(m, "role", json_object_new_string("assistant"));
		json_object_object_add(m, "content", json_object_new_string(text));
		json_object_object_add(ch, delta ? "delta" : "message", m);
	} else {
		json_object_object_add(ch, "text", json_object_new_string(text));
	}
	json_object_object_add(ch, "finish_reason",
			       finish ? json_object_new_string(finish) : NULL);
	return ch;
}

static json_object *head_obj(struct agent *a, const struct eng_req *r, bool chat, bool chunk)
{
	json_object *o = json_object_new_object();
	char id[48];

	snprintf(id, sizeof(id), "%s-idn-%u-%llu", chat ? "chatcmpl" : "cmpl",
		 a->cfg.node_id, (unsigned long long)r->id);
	json_object_object_add(o, "id", json_object_new_string(id));
	json_object_object_add(o, "object", json_object_new_string(
		chat ? (chunk ? "chat.completion.chunk" : "chat.completion") : "text_completion"));
	json_object_object_add(o, "created", json_object_new_int64(time(NULL)));
	json_object_object_add(o, "model", json_object_new_string(a->cfg.model));
	return o;
}

/* wait (locked) for engine progress, at most 200 ms: shutdown must not hang */
static void wait_progress(struct engine *e)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_nsec += 200 * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	pthread_cond_timedwait(&e->progress, &e->mu, &ts);
}

/* what the router said about a request (headers), for its receipt */
struct route_info {
	uint64_t plan_gen;
	char cap[64], cap_ver[64], verdict[32];
};

static void route_info_get(struct MHD_Connection *c, struct agent *a, struct route_info *ri)
{
	const char *v;

	memset(ri, 0, sizeof(*ri));
	v = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-IDN-Plan-Generation");
	if (v)
		ri->plan_gen = strtoull(v, NULL, 10);
	v = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-IDN-Capability");
	snprintf(ri->cap, sizeof(ri->cap), "%s", v ? v : a->cfg.model);
	v = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-IDN-Capability-Version");
	snprintf(ri->cap_ver, sizeof(ri->cap_ver), "%s", v ? v : "0");
	v = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-IDN-Verdict");
	snprintf(ri->verdict, sizeof(ri->verdict), "%s", v ? v : "direct");
}

/* the capability stage 2 found by the request's VIP, where it had no header */
static void route_info_cap(struct MHD_Connection *c, struct route_info *ri, uint32_t label)
{
	if (label && !MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-IDN-Capability"))
		snprintf(ri->cap, sizeof(ri->cap), "%u/%u", label >> 8, label & 0xff);
}

/* sign and keep the receipt E of a finished request (engine unlocked) */
static void make_receipt(struct agent *a, const struct eng_req *r, const struct route_info *ri,
			 json_object *pd)
{
	struct agent_receipts *rc = &a->rc;
	json_object *b, *cu;
	uint32_t slot;
	char *t;

	if (!a->key)
		return;
	b = json_object_new_object();
	cu = json_object_new_object();
	json_object_object_add(b, "v", json_object_new_int(1));
	json_object_object_add(b, "node", json_object_new_int64(a->cfg.node_id));
	json_object_object_add(b, "request", json_object_new_int64(r->id));
	json_object_object_add(b, "ts", json_object_new_int64(time(NULL)));
	json_object_object_add(b, "plan_generation", json_object_new_int64(ri->plan_gen));
	json_object_object_add(b, "capability", json_object_new_string(ri->cap));
	json_object_object_add(b, "capability_version", json_object_new_string(ri->cap_ver));
	json_object_object_add(b, "model", json_object_new_string(a->cfg.model));
	{
		/* the capability as CLASS/VARIANT: the verified digest of the
		 * artifact that realizes it here names the exact (signed) version */
		unsigned int cls, var;
		uint8_t d[32];
		char end, hex[65];

		if (sscanf(ri->cap, "%u/%u%c", &cls, &var, &end) == 2 && cls && cls <= 0xffffff &&
		    var <= 0xff && res_cap_digest(&a->res, cls << 8 | var, d)) {
			for (int i = 0; i < 32; i++)
				snprintf(hex + 2 * i, 3, "%02x", d[i]);
			json_object_object_add(b, "artifact_sha256", json_object_new_string(hex));
		}
	}
	json_object_object_add(b, "verdict", json_object_new_string(ri->verdict));
	json_object_object_add(cu, "prompt_tokens", json_object_new_int64(r->in_tokens));
	json_object_object_add(cu, "cached_tokens", json_object_new_int64(r->cached_tokens));
	json_object_object_add(cu, "prefix_blocks", json_object_new_int64(r->nkeys));
	json_object_object_add(b, "cache", cu);
	json_object_object_add(b, "output_tokens", json_object_new_int64(r->generated));
	json_object_object_add(b, "status", json_object_new_string(
		r->state == ENG_DONE ? "ok" : "failed"));
	/* a stage of a two-stage (P/D) request: which, and the other's node and request */
	if (pd)
		json_object_object_add(b, "pd", json_object_get(pd));
	t = rcpt_sign(a->key, b);
	json_object_put(b);
	if (!t)
		return;
	pthread_mutex_lock(&rc->mu);
	slot = rc->n++ % AGENT_RECEIPTS;
	free(rc->text[slot]);
	rc->text[slot] = t;
	rc->id[slot] = r->id;
	pthread_mutex_unlock(&rc->mu);
}

static void receipt_header(struct MHD_Response *resp, struct agent *a, const struct eng_req *r)
{
	char v[64];

	if (!a->key)
		return;
	snprintf(v, sizeof(v), "/v1/receipts/%llu", (unsigned long long)r->id);
	MHD_add_response_header(resp, "X-IDN-Receipt", v);
}

static enum MHD_Result receipts_get(struct agent *a, struct MHD_Connection *c, const char *url)
{
	struct agent_receipts *rc = &a->rc;
	enum MHD_Result ret;
	size_t cap = 1, len = 0;
	char *out, *end;
	uint64_t id = 0, n;
	bool one = url[0] == '/';

	if (!a->key)
		return send_err(c, 503, "receipts are off (no node key)");
	if (one) {
		id = strtoull(url + 1, &end, 10);
		if (*end || end == url + 1)
			return send_err(c, 404, "no such receipt");
	}
	pthread_mutex_lock(&rc->mu);
	n = rc->n < AGENT_RECEIPTS ? rc->n : AGENT_RECEIPTS;
	for (uint64_t i = 0; i < n; i++)
		cap += strlen(rc->text[i]) + 1;
	out = malloc(cap);
	if (!out) {
		pthread_mutex_unlock(&rc->mu);
		return send_err(c, 500, "out of memory");
	}
	out[0] = 0;
	/* oldest first */
	for (uint64_t k = rc->n - n; k < rc->n; k++) {
		uint32_t slot = k % AGENT_RECEIPTS;

		if (one && rc->id[slot] != id)
			continue;
		len += snprintf(out + len, cap - len, "%s\n", rc->text[slot]);
	}
	pthread_mutex_unlock(&rc->mu);
	if (one && !len) {
		free(out);
		return send_err(c, 404, "no receipt for request %llu (kept: the last %u)",
				(unsigned long long)id, AGENT_RECEIPTS);
	}
	ret = send_text(c, 200, one ? "application/json" : "application/x-ndjson", out);
	free(out);
	return ret;
}

struct stream {
	struct agent *a;
	struct eng_req *r;
	struct route_info ri;
	json_object *pd;	/* its receipt's "pd" (P/D stage), NULL: none */
	bool chat;
	uint32_t sent;
	int phase;		/* 0 tokens, 1 done marker, 2 end */
};

static size_t emit(char *buf, size_t max, json_object *o)
{
	const char *s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
	size_t n = strlen(s) + 8;

	if (n > max) {
		json_object_put(o);
		return 0;
	}
	n = snprintf(buf, max, "data: %s\n\n", s);
	json_object_put(o);
	return n;
}

static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max)
{
	struct stream *st = cls;
	struct engine *e = &st->a->eng;
	struct eng_req *r = st->r;
	size_t off = 0;

	if (st->phase == 2)
		return MHD_CONTENT_READER_END_OF_STREAM;
	if (st->phase == 1) {
		if (max < 14)
			return 0;
		st->phase = 2;
		memcpy(buf, "data: [DONE]\n\n", 14);
		return 14;
	}
	pthread_mutex_lock(&e->mu);
	if (r->generated <= st->sent && r->state != ENG_DONE && r->state != ENG_FAILED) {
		wait_progress(e);
		if (st->a->stop) {
			pthread_mutex_unlock(&e->mu);
			return MHD_CONTENT_READER_END_WITH_ERROR;
		}
	}
	while (st->sent < r->generated) {
		json_object *o = head_obj(st->a, r, st->chat, true), *arr = json_object_new_array();
		char *t = gen_text(st->sent, st->sent + 1);
		bool last = st->sent + 1 == r->out_tokens;
		size_t n;

		json_object_array_add(arr, choice_obj(st->chat, true, st->sent == 0, t ? t : "",
						      last ? "length" : NULL));
		free(t);
		json_object_object_add(o, "choices", arr);
		if (last) {
			uint32_t g = r->generated;

			usage_json(o, r);
			json_object_object_add(o, "idn", timing_json(r));
			(void)g;
		}
		n = emit(buf + off, max - off, o);
		if (!n)
			break;
		off += n;
		st->sent++;
	}
	if (r->state == ENG_FAILED && st->sent < r->out_tokens && off + 64 < max) {
		off += snprintf(buf + off, max - off,
				"data: {\"error\":{\"message\":\"request failed\"}}\n\n");
		st->sent = r->out_tokens;
	}
	if (st->sent >= r->out_tokens)
		st->phase = 1;
	pthread_mutex_unlock(&e->mu);
	return off;
}

static void stream_free(void *cls)
{
	struct stream *st = cls;

	if (st->r->state == ENG_DONE || st->r->state == ENG_FAILED)
		make_receipt(st->a, st->r, &st->ri, st->pd);
	engine_cancel(&st->a->eng, st->r);
	engine_put(&st->a->eng, st->r);
	json_object_put(st->pd);
	free(st);
}

static const char *hdr(struct MHD_Connection *c, const char *name)
{
	return MHD_lookup_connection_value(c, MHD_HEADER_KIND, name);
}

/*
 * A managed engine and no emulator: the request goes on to the engine
 * (adapter_proxy()), its prompt tokens counted in the prefill ledger the
 * telemetry reports; the answer comes back whole (SSE included).
 */
static enum MHD_Result pass_completion(struct agent *a, struct MHD_Connection *c,
				       json_object *o, bool chat)
{
	struct MHD_Response *resp;
	enum MHD_Result ret;
	char msg[256], ctype[128], *out;
	struct creq q;
	size_t olen;
	long code;

	code = parse_creq(a, o, chat, &q, msg, sizeof(msg));
	free(q.keys);
	if (code)
		return send_err(c, code, "%s", msg);
	code = adapter_proxy(a->ad, chat ? "/v1/chat/completions" : "/v1/completions",
			     json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN), q.in,
			     &out, &olen, ctype, sizeof(ctype), msg, sizeof(msg));
	if (code < 0)
		return send_err(c, 502, "%s", msg);
	resp = MHD_create_response_from_buffer(olen, out, MHD_RESPMEM_MUST_FREE);
	if (!resp) {
		free(out);
		return MHD_NO;
	}
	MHD_add_response_header(resp, "Content-Type", ctype);
	ret = MHD_queue_response(c, (unsigned int)code, resp);
	MHD_destroy_response(resp);
	return ret;
}

/* ---- two-stage (P/D) requests (docs/agent.md "Two-stage (P/D) requests") -- */

static int push_prefix(struct agent *a, const char *peer, const struct kv_who *who,
		       const uint64_t *keys, uint32_t nkeys, uint32_t retries,
		       struct kvx_result *res, uint32_t *nb, uint32_t *attempts);

/* "CLASS/VARIANT" -> label; -EINVAL */
static int cap_label(const char *s, uint32_t *label)
{
	unsigned int cls, var;
	char end;

	if (!s || sscanf(s, "%u/%u%c", &cls, &var, &end) != 2 || !cls || cls > 0xffffff ||
	    var > 0xff)
		return -EINVAL;
	*label = cls << 8 | var;
	return 0;
}

/* the prompt-size hint of a descriptor: ~256 << class tokens, the nearest */
static uint8_t size_class_of(uint32_t in)
{
	uint8_t c = 0;

	while (c < 15 && (256u << c) * 3 / 2 < in)
		c++;
	return c;
}

/*
 * What to ask stage 2 about request o on c: its X-IDN-Capability where it
 * has one (the client's or a router's statement, used as is), else the
 * address and port the client reached (the VIP: the router's
 * encapsulation keeps it as the inner destination) and the request's
 * "model", for idnd to find the capability the VIP serves. false: nothing
 * to ask (a malformed header, no address, no controller to ask).
 */
static bool pd_query_of(struct agent *a, struct MHD_Connection *c, json_object *o,
			struct pd_query *pq)
{
	const union MHD_ConnectionInfo *ci;
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	const char *h = hdr(c, "X-IDN-Capability");
	json_object *m;

	memset(pq, 0, sizeof(*pq));
	if (h)
		return !cap_label(h, &pq->label);
	if (!a->have_ctl)
		return false;
	ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
	if (!ci || getsockname(ci->connect_fd, (struct sockaddr *)&ss, &sl))
		return false;
	if (ss.ss_family == AF_INET) {
		const struct sockaddr_in *s4 = (const struct sockaddr_in *)&ss;

		inet_ntop(AF_INET, &s4->sin_addr, pq->vip, sizeof(pq->vip));
		pq->port = ntohs(s4->sin_port);
	} else if (ss.ss_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)&ss;

		if (IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr))	/* a dual-stack listener */
			inet_ntop(AF_INET, &s6->sin6_addr.s6_addr[12], pq->vip, sizeof(pq->vip));
		else
			inet_ntop(AF_INET6, &s6->sin6_addr, pq->vip, sizeof(pq->vip));
		pq->port = ntohs(s6->sin6_port);
	} else {
		return false;
	}
	if (json_object_object_get_ex(o, "model", &m) && json_object_is_type(m, json_type_string))
		pq->model = json_object_get_string(m);
	return true;
}

static json_object *pd_info(const char *stage)
{
	json_object *o = json_object_new_object();

	json_object_object_add(o, "stage", json_object_new_string(stage));
	return o;
}

/* served here although two-stage: why, with the prefill request when there was one */
/* a stage's receipt: the scope of the request's state (and its tenant) */
static void pd_scope(json_object *pd, const struct kv_who *who)
{
	if (!pd)
		return;
	json_object_object_add(pd, "scope", json_object_new_string(kv_scope_name(who->scope)));
	if (who->tenant)
		json_object_object_add(pd, "tenant", json_object_new_int64(who->tenant));
}

static json_object *pd_colocated(uint32_t decode_node, uint64_t prefill_req, const char *why)
{
	json_object *o = pd_info("colocated");

	if (decode_node)
		json_object_object_add(o, "decode_node", json_object_new_int64(decode_node));
	if (prefill_req)
		json_object_object_add(o, "prefill_request", json_object_new_int64(prefill_req));
	json_object_object_add(o, "reason", json_object_new_string(why));
	return o;
}

/*
 * The stream of a two-stage request: the decode node's answer relayed as
 * it comes. Until its first byte reached the client, a failed hand-over
 * (decode node gone, refused, an error status) is served here instead,
 * from the prompt's blocks the prefill stage left in the cache.
 */
struct relay {
	struct agent *a;
	struct pd_fwd f;
	struct route_info ri;
	bool chat, relayed;
	struct eng_req *pre;	/* the prefill stage (its receipt when done) */
	json_object *pd;	/* that receipt's "pd" */
	uint32_t decode_node;
	struct kv_who who;	/* the request again, for the colocated fallback */
	uint32_t in, out, nkeys;
	uint64_t *keys;
	struct stream *local;
	char why[240];
};

static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max);
static void stream_free(void *cls);

static int relay_fallback(struct relay *rl)
{
	struct stream *st = calloc(1, sizeof(*st));
	struct eng_req *r;
	char why[200];
	int err;

	if (!st)
		return -ENOMEM;
	snprintf(rl->why, sizeof(rl->why), "decode node %u: %s", rl->decode_node,
		 pd_fwd_why(&rl->f, why, sizeof(why)));
	r = engine_submit_as(&rl->a->eng, &rl->who, rl->in, rl->out, rl->keys, rl->nkeys, &err);
	rl->keys = NULL;	/* the engine's now, or freed */
	if (!r) {
		free(st);
		return err;
	}
	st->a = rl->a;
	st->r = r;
	st->chat = rl->chat;
	st->ri = rl->ri;
	st->pd = pd_colocated(rl->decode_node, rl->pre->id, rl->why);
	pd_scope(st->pd, &rl->who);
	pd_cache_drop(rl->a, rl->decode_node);	/* the next request asks idnd again */
	rl->local = st;
	rl->a->pd_colocated++;
	return 0;
}

static ssize_t relay_read(void *cls, uint64_t pos, char *buf, size_t max)
{
	struct relay *rl = cls;
	struct pd_fwd *f = &rl->f;

	for (;;) {
		if (rl->local)
			return stream_read(rl->local, pos, buf, max);
		if (rl->a->stop)
			return MHD_CONTENT_READER_END_WITH_ERROR;
		if (f->off < f->len && f->code == 200) {
			size_t n = f->len - f->off < max ? f->len - f->off : max;

			memcpy(buf, f->buf + f->off, n);
			f->off += n;
			if (f->off == f->len)
				f->off = f->len = 0;
			if (!rl->relayed)
				rl->a->pd_moved++;
			rl->relayed = true;
			return n;
		}
		if (pd_fwd_failed(f)) {
			/* after its first byte, the client's stream is the decode node's */
			if (rl->relayed || relay_fallback(rl))
				return MHD_CONTENT_READER_END_WITH_ERROR;
			continue;
		}
		if (f->done)
			return MHD_CONTENT_READER_END_OF_STREAM;
		pd_fwd_step(f, 200);
	}
}

static void relay_free(void *cls)
{
	struct relay *rl = cls;

	if (rl->local) {
		json_object_object_add(rl->pd, "outcome", json_object_new_string("colocated"));
		json_object_object_add(rl->pd, "reason", json_object_new_string(rl->why));
	} else {
		json_object_object_add(rl->pd, "outcome", json_object_new_string(
			rl->relayed ? "moved" : "failed"));
		if (rl->f.peer_req)
			json_object_object_add(rl->pd, "decode_request",
					       json_object_new_int64(rl->f.peer_req));
	}
	make_receipt(rl->a, rl->pre, &rl->ri, rl->pd);
	engine_put(&rl->a->eng, rl->pre);
	if (rl->local)
		stream_free(rl->local);
	pd_fwd_free(&rl->f);
	json_object_put(rl->pd);
	free(rl->keys);
	free(rl);
}

static double wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* ---- connection hand-off: direct server return (handoff.c) ------------- */

static __thread const char *req_version;	/* the request's HTTP version (handler()) */
static __thread bool handed_off;	/* this thread's connection was handed off */

struct compose {
	FILE *f;
	const char *const *hv;	/* "Name: value" the prefill node sets itself */
};

static enum MHD_Result compose_hdr(void *cls, enum MHD_ValueKind kind, const char *k,
				   const char *v)
{
	struct compose *cp = cls;
	size_t kl = strlen(k);

	if (!strcasecmp(k, "Content-Length") || !strcasecmp(k, "Transfer-Encoding") ||
	    !strcasecmp(k, "Expect") || !strncasecmp(k, "X-IDN-PD-", 9) ||
	    strpbrk(k, "\r\n") || strpbrk(v ? v : "", "\r\n"))
		return MHD_YES;
	for (int i = 0; cp->hv[i]; i++)	/* set below, as the relay sets it */
		if (!strncasecmp(cp->hv[i], k, kl) && cp->hv[i][kl] == ':')
			return MHD_YES;
	fprintf(cp->f, "%s: %s\r\n", k, v ? v : "");
	return MHD_YES;
}

/* {"payload": P, "mac": HMAC(P) with the KV key} (hex; "" without a key) */
static char *ho_sealed(struct agent *a, json_object *payload)
{
	const char *p = json_object_to_json_string_ext(payload, JSON_C_TO_STRING_PLAIN);
	unsigned char mac[crypto_auth_BYTES];
	char hex[2 * crypto_auth_BYTES + 1] = "";
	json_object *o = json_object_new_object();
	char *out;

	if (a->pd_key_set) {
		crypto_auth(mac, (const unsigned char *)p, strlen(p), a->pd_key);
		sodium_bin2hex(hex, sizeof(hex), mac, sizeof(mac));
	}
	json_object_object_add(o, "payload", json_object_new_string(p));
	json_object_object_add(o, "mac", json_object_new_string(hex));
	out = strdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
	json_object_put(o);
	return out;
}

static double unix_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* POST {op, id, ...} to the decode node's /v1/pd/handoff: its HTTP status, 0: no answer */
static long ho_call(struct agent *a, const struct pd_target *t, const char *op, uint64_t id,
		    json_object *extra, char *msg, size_t ml)
{
	static const struct idn_tls plain = { .insecure = true };
	struct idn_http_buf out = { .max = 16 << 10 };
	json_object *p = extra ? extra : json_object_new_object();
	char url[200], *body;
	long code = 0;
	CURL *h;

	json_object_object_add(p, "op", json_object_new_string(op));
	json_object_object_add(p, "id", json_object_new_int64((int64_t)id));
	json_object_object_add(p, "node", json_object_new_int64(a->cfg.node_id));
	json_object_object_add(p, "t", json_object_new_int64((int64_t)unix_ms()));
	body = ho_sealed(a, p);
	json_object_put(p);
	snprintf(url, sizeof(url), "%s/v1/pd/handoff", t->api);
	h = curl_easy_init();
	if (!h || !body) {
		snprintf(msg, ml, "out of memory");
	} else if (idn_http_request(h, &plain, "POST", url, body, 2000, &out, &code, msg, ml)) {
		code = 0;
	} else if (code != 200) {
		json_object *e = out.p ? json_tokener_parse(out.p) : NULL;

		snprintf(msg, ml, "HTTP %ld: %.120s", code, idn_jstr(e, "error") ?
			 idn_jstr(e, "error") : out.p ? out.p : "");
		json_object_put(e);
	}
	if (h)
		curl_easy_cleanup(h);
	free(body);
	free(out.p);
	return code;
}

/*
 * The prefill node hands the client's connection to the decode node t,
 * which then answers the client directly: freeze it (TCP_REPAIR), the
 * decode node rebuilds it with the request (prepare), this node's
 * dataplane forwards the client's packets there (idn_handoff), the
 * decode node takes it (commit) and this node's socket goes silently.
 * 0: handed off (the caller returns MHD_NO: MHD closes a bare socket).
 * Otherwise why is set and the connection is as it was: relay it.
 */
static int pd_handoff(struct agent *a, struct MHD_Connection *c, json_object *o,
		      const struct creq *q, const char *const *hv, const struct pd_target *t,
		      uint64_t *hid, char *why, size_t wl)
{
	const union MHD_ConnectionInfo *ci;
	struct ho_state st;
	struct compose cp;
	struct in_addr node4;
	json_object *p;
	const char *body;
	char *req = NULL, m[200];
	size_t rlen = 0;
	long code;
	int fd, mfd, err;

	if (!req_version || strcmp(req_version, MHD_HTTP_VERSION_1_1))
		return snprintf(why, wl, "not HTTP/1.1"), -EPROTO;
	if (inet_pton(AF_INET, t->addr4, &node4) != 1)
		return snprintf(why, wl, "decode node %u has no IPv4 locator", t->node), -EAFNOSUPPORT;
	ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
	if (!ci)
		return snprintf(why, wl, "no connection descriptor"), -EBADF;
	fd = ci->connect_fd;
	mfd = a->handoff_map_fd;
	if (mfd <= 0) {
		mfd = ho_map_open(a->cfg.handoff_map);
		if (mfd < 0)
			return snprintf(why, wl, "hand-off map %.100s: %s", a->cfg.handoff_map,
					strerror(-mfd)), mfd;
		if (!__sync_bool_compare_and_swap(&a->handoff_map_fd, 0, mfd)) {
			close(mfd);
			mfd = a->handoff_map_fd;
		}
	}
	randombytes_buf(hid, sizeof(*hid));
	*hid = (*hid & INT64_MAX) | 1;
	/* the request the decode node serves, as this node received it */
	cp.f = open_memstream(&req, &rlen);
	if (!cp.f)
		return snprintf(why, wl, "out of memory"), -ENOMEM;
	body = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
	cp.hv = hv;
	fprintf(cp.f, "POST %s HTTP/1.1\r\n", q->chat ? "/v1/chat/completions" : "/v1/completions");
	/* the client's headers, then the relay's own (X-IDN-PD-Prefill, the
	 * capability found by the VIP, a scoped request's owner) */
	MHD_get_connection_values(c, MHD_HEADER_KIND, compose_hdr, &cp);
	for (int i = 0; hv[i]; i++)
		fprintf(cp.f, "%s\r\n", hv[i]);
	fprintf(cp.f, "X-IDN-PD-Handoff: %016llx\r\nContent-Length: %zu\r\n\r\n%s",
		(unsigned long long)*hid, strlen(body), body);
	if (fclose(cp.f) || !req) {
		free(req);
		return snprintf(why, wl, "out of memory"), -ENOMEM;
	}
	err = ho_freeze(fd, &st, why, wl);
	if (err) {
		free(req);
		return err;
	}
	p = json_object_new_object();
	json_object_object_add(p, "state", ho_state_json(&st));
	json_object_object_add(p, "request", json_object_new_string_len(req, rlen));
	free(req);
	code = ho_call(a, t, "prepare", *hid, p, m, sizeof(m));
	if (code != 200) {
		snprintf(why, wl, "decode node %u refused the connection: %.160s", t->node, m);
		goto thaw;
	}
	err = ho_map_set(mfd, &st, node4.s_addr);
	if (err) {
		snprintf(why, wl, "hand-off map %.100s: %s", a->cfg.handoff_map, strerror(-err));
		ho_call(a, t, "abort", *hid, NULL, m, sizeof(m));
		goto thaw;
	}
	code = ho_call(a, t, "commit", *hid, NULL, m, sizeof(m));
	if (code != 200) {
		char m2[200];
		/* no answer: did it take the connection? an abort says (404: taken) */
		long ab = ho_call(a, t, "abort", *hid, NULL, m2, sizeof(m2));

		if (!(code == 0 && ab == 404)) {
			snprintf(why, wl, "decode node %u did not take the connection: %.150s",
				 t->node, m);
			ho_map_del(mfd, &st);
			goto thaw;
		}
	}
	ho_drop(fd);
	return 0;
thaw:
	ho_thaw(fd);
	return -EAGAIN;
}

/*
 * POST /v1/pd/handoff on the decode node (inference listener): a prefill
 * node's connection hand-off, {"payload": P, "mac": M}, P the JSON of
 * {op: prepare|commit|abort, id, node, t, ...}, M its HMAC with the KV key
 * (--kv-key; without one only with --kv-insecure). prepare: {state,
 * request}: the connection rebuilt here in repair mode, the request in
 * its receive queue; commit: out of repair mode, the HTTP server takes
 * it and serves the request; abort: dropped silently.
 */
static enum MHD_Result handoff_post(struct agent *a, struct MHD_Connection *c, const char *buf,
				    size_t len)
{
	json_object *o = NULL, *p = NULL, *st;
	const char *ps, *mac, *op, *req;
	struct sockaddr_in peer;
	struct ho_state s;
	char why[200];
	uint64_t id;
	int64_t t;
	int fd, err;
	long port;
	enum MHD_Result ret;

	if (!a->cfg.pd_handoff)
		return send_err(c, 403, "connection hand-off is off on this node (--pd-handoff off)");
	if (a->cfg.role == 1)
		return send_err(c, 403, "a prefill node does not take connections");
	if (!a->pd_key_set && !a->cfg.kv_insecure)
		return send_err(c, 403, "connection hand-off needs --kv-key (or --kv-insecure)");
	if (!buf || !(o = json_tokener_parse(buf)) || !(ps = idn_jstr(o, "payload")) ||
	    !(mac = idn_jstr(o, "mac"))) {
		json_object_put(o);
		return send_err(c, 400, "{\"payload\": ..., \"mac\": ...} expected");
	}
	if (a->pd_key_set) {
		unsigned char m[crypto_auth_BYTES];
		size_t ml = 0;

		if (sodium_hex2bin(m, sizeof(m), mac, strlen(mac), NULL, &ml, NULL) ||
		    ml != sizeof(m) || crypto_auth_verify(m, (const unsigned char *)ps,
							  strlen(ps), a->pd_key)) {
			json_object_put(o);
			refused_log("handoff", "a connection hand-off with a bad MAC refused");
			return send_err(c, 403, "hand-off not authenticated (the KV key)");
		}
	}
	p = json_tokener_parse(ps);
	json_object_put(o);
	op = idn_jstr(p, "op");
	id = (uint64_t)idn_jint(p, "id", 0);
	t = idn_jint(p, "t", 0);
	if (!op || !id || t < unix_ms() - 30000 || t > unix_ms() + 30000) {
		json_object_put(p);
		return send_err(c, 400, "op, id and a current t expected");
	}
	if (!strcmp(op, "commit")) {
		json_object_put(p);
		if (ho_pend_take(id, &fd, &peer))
			return send_err(c, 404, "no such hand-off (aborted or expired)");
		err = ho_commit(fd);
		if (err) {
			close(fd);
			return send_err(c, 500, "leaving repair mode: %s", strerror(-err));
		}
		if (MHD_add_connection(a->httpd, fd, (struct sockaddr *)&peer, sizeof(peer)) != MHD_YES)
			return send_err(c, 500, "the HTTP server did not take the connection");
		a->pd_handoff_taken++;
		return send_text(c, 200, "application/json", "{\"committed\":true}\n");
	}
	if (!strcmp(op, "abort")) {
		json_object_put(p);
		if (ho_pend_take(id, &fd, NULL))
			return send_err(c, 404, "no such hand-off (committed or expired)");
		close(fd);	/* repair mode: nothing sent */
		return send_text(c, 200, "application/json", "{\"aborted\":true}\n");
	}
	if (strcmp(op, "prepare")) {
		json_object_put(p);
		return send_err(c, 400, "op: prepare, commit or abort");
	}
	req = idn_jstr(p, "request");
	if (!json_object_object_get_ex(p, "state", &st) || ho_state_parse(st, &s) || !req) {
		json_object_put(p);
		return send_err(c, 400, "prepare: state and request expected");
	}
	/* only connections to this node's own inference port, and only requests
	 * that port serves */
	port = strrchr(a->cfg.listen, ':') ? strtol(strrchr(a->cfg.listen, ':') + 1, NULL, 10) : 0;
	if (ntohs(s.local.sin_port) != port ||
	    (strncmp(req, "POST /v1/completions ", 21) &&
	     strncmp(req, "POST /v1/chat/completions ", 26))) {
		json_object_put(p);
		return send_err(c, 403, "prepare: a connection to port %ld with a completion "
				"request only", port);
	}
	err = ho_restore(&s, req, json_object_get_string_len(json_object_object_get(p, "request")),
			 &fd, why, sizeof(why));
	json_object_put(p);
	if (err)
		return send_err(c, err == -EPERM ? 403 : 500, "cannot take the connection: %s", why);
	err = ho_pend_add(id, fd, &s.peer);
	if (err) {
		close(fd);
		return send_err(c, 503, "too many hand-offs in flight");
	}
	ret = send_text(c, 200, "application/json", "{\"prepared\":true}\n");
	return ret;
}

/*
 * The prefill stage of a two-stage request (public state, more than one
 * output token, a decode node t other than this one): the prompt runs
 * here with one output token, which computes and caches its KV; the
 * prompt's blocks go to t's KV listener (kvxfer: TCP, RDMA where
 * present); then t gets the request (X-IDN-PD-Prefill: NODE/REQUEST) and
 * its answer is relayed to the client as it comes. *handled: answered.
 * Otherwise *colo says why it is served here, colocated: the caller
 * queues the request again and the prompt's blocks, still cached here,
 * are hits (nothing recomputed but the tail shorter than a block).
 */
static enum MHD_Result pd_serve(struct agent *a, struct MHD_Connection *c, json_object *o,
				struct creq *q, const struct kv_who *who,
				const struct pd_target *t, json_object **colo, bool *handled)
{
	static const char *const pass[] = { "X-IDN-Token", "X-IDN-Capability",
		"X-IDN-Capability-Version", "X-IDN-Plan-Generation", "X-IDN-Verdict", NULL };
	struct engine *e = &a->eng;
	struct kvx_result res;
	struct kv_who pw;
	struct eng_req *pre;
	struct relay *rl = NULL;
	struct route_info ri;
	const char *hv[11];
	char hbuf[10][160], why[240], m[200], url[200];
	uint32_t nb = 0, att = 0, nh = 0;
	uint64_t *k1;
	double t0;
	json_object *pd;
	enum MHD_Result ret;
	bool ok;
	int err;

	*handled = false;
	*colo = NULL;
	k1 = malloc(sizeof(*k1) * q->nkeys);
	if (!k1) {
		*colo = pd_colocated(t->node, 0, "out of memory");
		return MHD_NO;
	}
	memcpy(k1, q->keys, sizeof(*k1) * q->nkeys);
	pre = engine_submit_as(e, who, q->in, 1, k1, q->nkeys, &err);
	if (!pre) {
		snprintf(why, sizeof(why), "prefill stage not queued: %s", strerror(-err));
		*colo = pd_colocated(t->node, 0, why);
		return MHD_NO;
	}
	pthread_mutex_lock(&e->mu);
	while (pre->state != ENG_DONE && pre->state != ENG_FAILED && !a->stop)
		wait_progress(e);
	ok = pre->state == ENG_DONE;
	if (!ok)
		pre->cancelled = true;
	pthread_mutex_unlock(&e->mu);
	route_info_get(c, a, &ri);
	route_info_cap(c, &ri, t->label);
	pd = pd_info("prefill");
	pd_scope(pd, who);
	json_object_object_add(pd, "decode_node", json_object_new_int64(t->node));
	json_object_object_add(pd, "decode_j_us", json_object_new_int64(t->j_us));
	json_object_object_add(pd, "stage2_generation", json_object_new_int64(t->generation));
	if (!ok) {
		snprintf(why, sizeof(why), "prefill stage failed");
		goto colocated;
	}
	/* the prompt's KV to the decode node; no retry: a lost node falls back at once */
	t0 = wall_ms();
	/* public state, or the tenant's or session's as announced at the decode node by
	 * stage 2 (its blocks taken there in that scope only: kv_rx_keys()) */
	pw = *who;
	pw.leaving = 1;
	if (pw.scope != KV_SCOPE_TENANT && pw.scope != KV_SCOPE_SESSION)
		pw = (struct kv_who){ .leaving = 1 };
	err = push_prefix(a, t->kv, &pw, q->keys, q->nkeys, 0, &res, &nb, &att);
	if (err || res.state != KVX_DONE) {
		snprintf(why, sizeof(why), "KV push to node %u (%.64s): %.120s", t->node, t->kv,
			 err ? strerror(-err) : res.msg[0] ? res.msg : "failed");
		goto colocated;
	}
	json_object_object_add(pd, "kv_blocks", json_object_new_int64(nb));
	json_object_object_add(pd, "kv_bytes", json_object_new_int64(res.bytes));
	json_object_object_add(pd, "kv_transport", json_object_new_string(
		res.transport[0] ? res.transport : kvx_transport(a->kvx)));
	json_object_object_add(pd, "kv_push_ms", json_object_new_double(
		(double)(int64_t)((wall_ms() - t0) * 100) / 100));
	/* the request to the decode node, with what the router said */
	snprintf(hbuf[nh], sizeof(hbuf[nh]), "X-IDN-PD-Prefill: %u/%llu", a->cfg.node_id,
		 (unsigned long long)pre->id);
	hv[nh] = hbuf[nh];
	nh++;
	for (int i = 0; pass[i] && nh < 6; i++) {
		const char *v = hdr(c, pass[i]);

		if (!v || strlen(v) > 100)
			continue;
		snprintf(hbuf[nh], sizeof(hbuf[nh]), "%s: %s", pass[i], v);
		hv[nh] = hbuf[nh];
		nh++;
	}
	if (t->label && !hdr(c, "X-IDN-Capability")) {	/* found by its VIP */
		snprintf(hbuf[nh], sizeof(hbuf[nh]), "X-IDN-Capability: %u/%u", t->label >> 8,
			 t->label & 0xff);
		hv[nh] = hbuf[nh];
		nh++;
	}
	if (pw.scope == KV_SCOPE_TENANT || pw.scope == KV_SCOPE_SESSION) {
		/* served there as here: its blocks in the same scope, the same owner's */
		snprintf(hbuf[nh], sizeof(hbuf[nh]), "X-IDN-Scope: %s", kv_scope_name(pw.scope));
		hv[nh] = hbuf[nh];
		nh++;
		snprintf(hbuf[nh], sizeof(hbuf[nh]), "X-IDN-Tenant: %u", pw.tenant);
		hv[nh] = hbuf[nh];
		nh++;
		if (pw.session) {
			snprintf(hbuf[nh], sizeof(hbuf[nh]), "X-IDN-Session: 0x%016llx",
				 (unsigned long long)pw.session);
			hv[nh] = hbuf[nh];
			nh++;
		}
	}
	hv[nh] = NULL;
	/* direct server return: the client's connection to the decode node */
	if (a->cfg.pd_handoff && t->addr4[0]) {
		uint64_t hid = 0;

		if (!pd_handoff(a, c, o, q, hv, t, &hid, why, sizeof(why))) {
			char hx[20];

			snprintf(hx, sizeof(hx), "%016llx", (unsigned long long)hid);
			json_object_object_add(pd, "outcome", json_object_new_string("handed-off"));
			json_object_object_add(pd, "handoff", json_object_new_string(hx));
			make_receipt(a, pre, &ri, pd);
			json_object_put(pd);
			engine_put(e, pre);
			a->pd_handed_off++;
			handed_off = true;	/* MHD's "internal error" line is not one */
			*handled = true;
			return MHD_NO;	/* MHD closes the bare socket left under the descriptor */
		}
		a->pd_handoff_fallback++;
		refused_log("handoff", "P/D: connection hand-off to node %u not done, relaying: %s",
			    t->node, why);
		json_object_object_add(pd, "handoff_fallback", json_object_new_string(why));
	}
	snprintf(url, sizeof(url), "%s%s", t->api, q->chat ? "/v1/chat/completions" :
		 "/v1/completions");
	rl = calloc(1, sizeof(*rl));
	if (!rl || pd_fwd_start(&rl->f, url, json_object_to_json_string_ext(o,
				JSON_C_TO_STRING_PLAIN), hv, 600000)) {
		snprintf(why, sizeof(why), "decode node %u: cannot start the request", t->node);
		goto colocated;
	}
	if (q->stream) {
		struct MHD_Response *resp;
		char v[64];

		rl->a = a;
		rl->ri = ri;
		rl->chat = q->chat;
		rl->pre = pre;
		rl->pd = pd;
		rl->decode_node = t->node;
		rl->who = *who;
		rl->in = q->in;
		rl->out = q->out;
		rl->nkeys = q->nkeys;
		rl->keys = q->keys;
		q->keys = NULL;
		resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16384, relay_read, rl,
							 relay_free);
		if (!resp) {
			relay_free(rl);
			*handled = true;
			return MHD_NO;
		}
		if (a->key) {
			snprintf(v, sizeof(v), "/v1/receipts/%llu", (unsigned long long)pre->id);
			MHD_add_response_header(resp, "X-IDN-Receipt", v);
		}
		MHD_add_response_header(resp, "Content-Type", "text/event-stream");
		MHD_add_response_header(resp, "Cache-Control", "no-cache");
		ret = MHD_queue_response(c, 200, resp);
		MHD_destroy_response(resp);
		*handled = true;
		return ret;
	}
	while (!rl->f.done && !a->stop)
		pd_fwd_step(&rl->f, 200);
	if (!rl->f.done || pd_fwd_failed(&rl->f)) {
		snprintf(why, sizeof(why), "decode node %u: %s", t->node,
			 pd_fwd_why(&rl->f, m, sizeof(m)));
		goto colocated;
	}
	{	/* the decode node's answer, as it gave it */
		struct MHD_Response *resp;
		char v[240];

		json_object_object_add(pd, "outcome", json_object_new_string("moved"));
		if (rl->f.peer_req)
			json_object_object_add(pd, "decode_request",
					       json_object_new_int64(rl->f.peer_req));
		make_receipt(a, pre, &ri, pd);
		resp = MHD_create_response_from_buffer(rl->f.len, rl->f.buf, MHD_RESPMEM_MUST_COPY);
		if (resp) {
			MHD_add_response_header(resp, "Content-Type", rl->f.ctype[0] ? rl->f.ctype :
						"application/json");
			if (a->key) {
				snprintf(v, sizeof(v), "/v1/receipts/%llu",
					 (unsigned long long)pre->id);
				MHD_add_response_header(resp, "X-IDN-Receipt", v);
			}
			if (rl->f.peer_req) {
				snprintf(v, sizeof(v), "%s/v1/receipts/%llu", t->api,
					 (unsigned long long)rl->f.peer_req);
				MHD_add_response_header(resp, "X-IDN-Receipt-Decode", v);
			}
			ret = MHD_queue_response(c, 200, resp);
			MHD_destroy_response(resp);
		} else {
			ret = MHD_NO;
		}
		a->pd_moved++;
		pd_fwd_free(&rl->f);
		free(rl);
		json_object_put(pd);
		engine_put(e, pre);
		free(q->keys);
		q->keys = NULL;
		*handled = true;
		return ret;
	}
colocated:
	if (rl) {
		pd_fwd_free(&rl->f);
		free(rl);
	}
	json_object_object_add(pd, "outcome", json_object_new_string("colocated"));
	json_object_object_add(pd, "reason", json_object_new_string(why));
	make_receipt(a, pre, &ri, pd);
	json_object_put(pd);
	*colo = pd_colocated(t->node, pre->id, why);
	engine_put(e, pre);
	return MHD_NO;
}

/*
 * Pull on miss (--kv-pull; docs/agent.md "Pull on miss"): a request whose
 * token this node has not served, so its state is elsewhere (the router
 * judged the holder too loaded), and whose prompt's blocks this cache
 * lacks: idnd finds the holder and decides by eq. 8 (POST
 * /v1/nodes/ID/pull). On "move" the holder pushes the blocks here; the
 * request goes to the engine held (engine_submit_held(): it keeps its
 * place in the queue, so the transfer overlaps the wait) and is released
 * when they are committed or the answer's wait_ms is up. Any failure: it
 * is prefilled as it would have been.
 */
struct pull {
	int64_t wait_ms;	/* 0: no pull */
	uint32_t have;		/* the prompt's blocks here when asked */
	double commit0;		/* the last KV commit then */
	struct timespec t0;
};

static void pull_ask(struct agent *a, uint64_t token, const uint64_t *keys, uint32_t nkeys,
		     struct pull *p)
{
	struct engine *e = &a->eng;
	json_object *ans = NULL, *v;
	uint64_t known[AFF_KEYS];
	struct kv_who w;
	uint32_t nk;

	p->wait_ms = 0;
	if (!a->cfg.kv_pull || !a->cfg.kv_listen[0] || !a->have_ctl || !token || !nkeys ||
	    !a->st.rec || !a->ctl.registered ||
	    state_token_lookup(&a->st, token, &w, known, &nk) != -ENOENT)
		return;
	pthread_mutex_lock(&e->mu);
	p->have = kv_match(&e->kv, keys, nkeys);
	p->commit0 = a->kv_rx_last_commit;
	pthread_mutex_unlock(&e->mu);
	if (p->have >= nkeys)
		return;
	__atomic_add_fetch(&a->kv_pull_asked, 1, __ATOMIC_RELAXED);
	if (!ctl_pull(&a->ctl, a->cfg.node_id, token, nkeys - p->have, &ans) &&
	    json_object_object_get_ex(ans, "verdict", &v) &&
	    !strcmp(json_object_get_string(v), "move") &&
	    json_object_object_get_ex(ans, "wait_ms", &v))
		p->wait_ms = json_object_get_int64(v) < 1 ? 1 : json_object_get_int64(v) > 10000 ?
			     10000 : json_object_get_int64(v);
	json_object_put(ans);
	clock_gettime(CLOCK_MONOTONIC, &p->t0);
}

/* r (held) waits for the pulled blocks, then goes on */
static void pull_wait(struct agent *a, struct eng_req *r, const struct pull *p)
{
	struct engine *e = &a->eng;
	struct timespec t;
	bool got;

	for (;;) {
		/* the transfer commits whole (kvxfer.c): more of the prompt, or a
		 * commit since the question (the holder had nothing more) */
		pthread_mutex_lock(&e->mu);
		got = kv_match(&e->kv, r->keys, r->nkeys) > p->have ||
		      a->kv_rx_last_commit != p->commit0;
		pthread_mutex_unlock(&e->mu);
		clock_gettime(CLOCK_MONOTONIC, &t);
		if (got || (t.tv_sec - p->t0.tv_sec) * 1000 +
			   (t.tv_nsec - p->t0.tv_nsec) / 1000000 >= p->wait_ms ||
		    a->stop)
			break;
		nanosleep(&(struct timespec){ .tv_nsec = 1000000 }, NULL);
	}
	__atomic_add_fetch(got ? &a->kv_pull_got : &a->kv_pull_late, 1, __ATOMIC_RELAXED);
	engine_release(e, r);
}

/* a decode stage's answer names its prefill stage (NODE/REQUEST): the
 * client of a handed-off connection gets the decode node's headers only */
static void pd_echo(struct MHD_Response *resp, struct MHD_Connection *c, json_object *pd)
{
	const char *h = hdr(c, "X-IDN-PD-Prefill");
	json_object *st;

	if (h && pd && json_object_object_get_ex(pd, "stage", &st) &&
	    !strcmp(json_object_get_string(st), "decode") && strlen(h) < 48)
		MHD_add_response_header(resp, "X-IDN-PD-Prefill", h);
}

static enum MHD_Result completions(struct agent *a, struct MHD_Connection *c,
				   json_object *o, bool chat)
{
	struct engine *e = &a->eng;
	struct eng_req *r;
	json_object *pd = NULL;	/* its receipt's "pd": a stage of a two-stage request */
	uint32_t cap_found = 0;	/* the capability stage 2 found by the VIP */
	struct pull pl;
	struct creq q;
	char msg[160];
	int code, err;
	bool done;

	if (!a->cfg.engine && a->ad)
		return pass_completion(a, c, o, chat);
	if (!a->cfg.engine)
		return send_err(c, 503, "no engine on this agent");
	if (emu_asleep(a, true))
		return send_err(c, 503, "the engine is sleeping (POST /wake_up first)");
	code = parse_creq(a, o, chat, &q, msg, sizeof(msg));
	if (code) {
		free(q.keys);
		return send_err(c, code, "%s", msg);
	}
	{	/* state scope and owner, affinity token (state.c) */
		struct kv_who who;
		struct pd_query pq;
		uint64_t token;
		const char *pdh = hdr(c, "X-IDN-PD-Prefill");

		if (state_who_parse(hdr(c, "X-IDN-Tenant"), hdr(c, "X-IDN-Session"),
				    hdr(c, "X-IDN-Scope"), hdr(c, "X-IDN-Token"), &who, &token,
				    msg, sizeof(msg))) {
			free(q.keys);
			return send_err(c, 400, "%s", msg);
		}
		/* a token served elsewhere before: its blocks from there (--kv-pull);
		 * a decode stage's come from its prefill node */
		pull_ask(a, pdh ? 0 : token, q.keys, q.nkeys, &pl);
		/* its X-IDN-Token, else the prompt's prefix token (state_tokens()) */
		state_note_token(&a->st, token ? token : q.ptoken, &who, q.keys, q.nkeys);
		who.token = token ? token : q.ptoken;	/* its blocks' descriptor */
		if (pdh) {	/* the decode stage, handed over by a prefill node */
			unsigned long long pn, pr;
			char end;

			if (sscanf(pdh, "%llu/%llu%c", &pn, &pr, &end) != 2 || !pn ||
			    pn > UINT32_MAX) {
				free(q.keys);
				return send_err(c, 400, "X-IDN-PD-Prefill: NODE/REQUEST expected");
			}
			pd = pd_info("decode");
			json_object_object_add(pd, "prefill_node", json_object_new_int64(pn));
			json_object_object_add(pd, "prefill_request", json_object_new_int64(pr));
			{	/* the connection was handed over (handoff.c): its id */
				const char *h = hdr(c, "X-IDN-PD-Handoff");

				if (h && strlen(h) == 16 && strspn(h, "0123456789abcdef") == 16)
					json_object_object_add(pd, "handoff",
							       json_object_new_string(h));
			}
			a->pd_decoded++;
		} else if (a->cfg.role != 2 && a->kvx && pd_query_of(a, c, o, &pq)) {
			/* a two-stage capability? idnd's stage 2 and its decode node */
			struct pd_target t;
			char m[200];
			int pe;

			pq.token = who.token;
			pq.size_class = size_class_of(q.in);
			if ((who.scope == KV_SCOPE_TENANT || who.scope == KV_SCOPE_SESSION) &&
			    q.nkeys && q.out > 1) {
				/* its decode node must be one that may hold the scope */
				pq.scope = who.scope;
				pq.tenant = who.tenant;
				pq.session = who.session;
				pq.root = q.keys[0];
			}
			pe = pd_stage2(a, &pq, &t, m, sizeof(m));
			cap_found = t.label;
			if (pe == -ENOENT || pe == -ENOTUNIQ || (pe && pe != -EAGAIN && !pq.label)) {
				/* not two-stage: as any request, counted why */
				cap_found = 0;
				__atomic_add_fetch(pe == -ENOENT ? &a->pd_not_two_stage :
						   pe == -ENOTUNIQ ? &a->pd_ambiguous : &a->pd_unknown,
						   1, __ATOMIC_RELAXED);
				if (pe != -ENOENT)
					pr_debug("P/D: served as one stage: %s", m);
			} else if (pe)
				pd = pd_colocated(0, 0, m);
			else if (t.node == a->cfg.node_id)
				pd = pd_colocated(t.node, 0, "stage 2 picked this node");
			else if (who.scope == KV_SCOPE_HW)
				pd = pd_colocated(t.node, 0, "scope: hardware-bound state never "
						  "leaves the node");
			else if (q.out <= 1)
				pd = pd_colocated(t.node, 0, "one output token: nothing to decode");
			else if (!q.nkeys)
				pd = pd_colocated(t.node, 0, "prompt shorter than a KV block");
			else {
				bool handled;
				enum MHD_Result ret = pd_serve(a, c, o, &q, &who, &t, &pd, &handled);

				if (handled) {
					free(q.keys);
					json_object_put(pd);
					return ret;
				}
				pd_cache_drop(a, t.node);	/* that pick failed: ask again */
			}
			if (pd)	/* two-stage, served here */
				a->pd_colocated++;
		}
		pd_scope(pd, &who);
		r = pl.wait_ms ? engine_submit_held(e, &who, q.in, q.out, q.keys, q.nkeys, &err) :
				 engine_submit_as(e, &who, q.in, q.out, q.keys, q.nkeys, &err);
		if (r && pl.wait_ms)
			pull_wait(a, r, &pl);
	}
	if (!r) {
		json_object_put(pd);
		return err == -E2BIG ?
			send_err(c, 400, "request needs more KV than the cache holds (%u + %u tokens)",
				 q.in, q.out) :
			send_err(c, 500, "cannot queue the request: %s", strerror(-err));
	}
	if (q.stream) {
		struct stream *st = calloc(1, sizeof(*st));
		struct MHD_Response *resp;
		enum MHD_Result ret;

		if (!st) {
			stream_free(&(struct stream){ .a = a, .r = r, .pd = pd });
			return send_err(c, 500, "out of memory");
		}
		st->a = a;
		st->r = r;
		st->pd = pd;
		st->chat = chat;
		route_info_get(c, a, &st->ri);
		route_info_cap(c, &st->ri, cap_found);
		resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16384, stream_read,
							 st, stream_free);
		receipt_header(resp, a, r);
		pd_echo(resp, c, pd);
		MHD_add_response_header(resp, "Content-Type", "text/event-stream");
		MHD_add_response_header(resp, "Cache-Control", "no-cache");
		ret = MHD_queue_response(c, 200, resp);
		MHD_destroy_response(resp);
		return ret;
	}
	pthread_mutex_lock(&e->mu);
	while (r->state != ENG_DONE && r->state != ENG_FAILED && !a->stop)
		wait_progress(e);
	done = r->state == ENG_DONE;
	if (!done)
		r->cancelled = true;
	pthread_mutex_unlock(&e->mu);
	if (!done) {
		engine_put(e, r);
		json_object_put(pd);
		return send_err(c, 500, "request failed");
	}
	{
		json_object *resp = head_obj(a, r, chat, false), *arr = json_object_new_array();
		char *t = gen_text(0, r->generated);
		struct route_info ri;
		struct MHD_Response *mr;
		enum MHD_Result ret;
		const char *body;

		json_object_array_add(arr, choice_obj(chat, false, true, t ? t : "", "length"));
		free(t);
		json_object_object_add(resp, "choices", arr);
		usage_json(resp, r);
		json_object_object_add(resp, "idn", timing_json(r));
		route_info_get(c, a, &ri);
		route_info_cap(c, &ri, cap_found);
		make_receipt(a, r, &ri, pd);
		body = json_object_to_json_string_ext(resp, JSON_C_TO_STRING_PLAIN);
		mr = MHD_create_response_from_buffer(strlen(body), (void *)body,
						     MHD_RESPMEM_MUST_COPY);
		MHD_add_response_header(mr, "Content-Type", "application/json");
		receipt_header(mr, a, r);
		pd_echo(mr, c, pd);
		ret = MHD_queue_response(c, 200, mr);
		MHD_destroy_response(mr);
		json_object_put(resp);
		json_object_put(pd);
		engine_put(e, r);
		return ret;
	}
}

/* ---- metrics and status ------------------------------------------------ */

/*
 * GET /metrics: the agent's families (idn_agent_*, idn_affinity_*; label
 * model_name) through the shared writer (ctl/lib/prom.c), lint-clean.
 * GET /metrics?names=vllm: what a vLLM server exports (vllm:* names, for
 * tools that read vLLM's; the ':' in them is vLLM's, which promtool's
 * lint flags), the emulator standing in for vLLM.
 */
static enum MHD_Result metrics(struct agent *a, struct MHD_Connection *c)
{
	struct engine *e = &a->eng;
	struct eng_stats s;
	struct eng_load l = { 0 };
	struct idn_prom p;
	char *out = NULL, le[32];
	size_t len = 0;
	FILE *f = open_memstream(&out, &len);
	const char *m = a->cfg.model;
	const char *names = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "names");
	bool vllm = names && !strcmp(names, "vllm");
	uint64_t evict = 0, used = 0, budget = a->res.budget, rx = 0;
	enum MHD_Result ret;

	if (!f)
		return send_err(c, 500, "out of memory");
	if (names && !vllm) {
		fclose(f);
		free(out);
		return send_err(c, 400, "names: \"vllm\" or none");
	}
	if (a->cfg.engine) {
		engine_load(e, &l);
		pthread_mutex_lock(&e->mu);
		s = e->st;
		evict = e->kv.evictions;
		rx = a->kv_rx_blocks;
		pthread_mutex_unlock(&e->mu);
	} else {
		memset(&s, 0, sizeof(s));
	}
	if (a->ad && !a->cfg.engine) {	/* the managed engine's figures */
		adapter_load(a->ad, &l);
		pthread_mutex_lock(&a->ad->mu);
		s.prefix_query_tokens = a->ad->m.prefix_queries;
		s.prefix_hit_tokens = a->ad->m.prefix_hits;
		s.prompt_tokens = a->ad->m.prompt_tokens;
		s.gen_tokens = a->ad->m.gen_tokens;
		s.requests_ok = a->ad->m.requests;
		pthread_mutex_unlock(&a->ad->mu);
	}
	pthread_mutex_lock(&a->res.mu);
	used = a->res.used;
	pthread_mutex_unlock(&a->res.mu);
	idn_prom_init(&p, f);
#define G(name, help, type, v) do { \
	idn_prom_family(&p, name, IDN_PROM_##type, help); \
	idn_prom_f64(&p, NULL, (double)(v), "model_name", m, NULL); \
} while (0)
	if (vllm) {
		G("vllm:num_requests_running", "Running requests.", GAUGE, l.running);
		G("vllm:num_requests_waiting", "Waiting requests.", GAUGE, l.waiting);
		G("vllm:gpu_cache_usage_perc", "KV cache usage (1 = full).", GAUGE, l.kv_use / 1000.0);
		G("vllm:kv_cache_usage_perc", "KV cache usage (1 = full).", GAUGE, l.kv_use / 1000.0);
		G("vllm:prefix_cache_queries_total", "Prompt tokens looked up in the prefix cache.",
		  COUNTER, s.prefix_query_tokens);
		G("vllm:prefix_cache_hits_total", "Prompt tokens found in the prefix cache.",
		  COUNTER, s.prefix_hit_tokens);
		G("vllm:prompt_tokens_total", "Prefilled prompt tokens.", COUNTER, s.prompt_tokens);
		G("vllm:generation_tokens_total", "Generated tokens.", COUNTER, s.gen_tokens);
		G("vllm:request_success_total", "Finished requests.", COUNTER, s.requests_ok);
	} else {
		G("idn_agent_requests_running", "Requests running in the engine.", GAUGE, l.running);
		G("idn_agent_requests_waiting", "Requests waiting for the engine.", GAUGE, l.waiting);
		G("idn_agent_kv_cache_usage_ratio", "KV cache use, 0..1.", GAUGE, l.kv_use / 1000.0);
		G("idn_agent_prefix_cache_query_tokens_total",
		  "Prompt tokens looked up in the prefix cache.", COUNTER, s.prefix_query_tokens);
		G("idn_agent_prefix_cache_hit_tokens_total", "Prompt tokens found in the prefix cache.",
		  COUNTER, s.prefix_hit_tokens);
		G("idn_agent_prompt_tokens_total", "Prefilled prompt tokens.", COUNTER, s.prompt_tokens);
		G("idn_agent_generation_tokens_total", "Generated tokens.", COUNTER, s.gen_tokens);
		G("idn_agent_requests_finished_total", "Finished requests.", COUNTER, s.requests_ok);
	}
	idn_prom_family(&p, vllm ? "vllm:time_to_first_token_seconds" :
			"idn_agent_time_to_first_token_seconds", IDN_PROM_HISTOGRAM,
			"Time to first token.");
	for (int i = 0; i < 12; i++) {
		snprintf(le, sizeof(le), "%g", eng_ttft_buckets[i]);
		idn_prom_u64(&p, "_bucket", s.ttft_bucket[i], "model_name", m, "le", le, NULL);
	}
	idn_prom_u64(&p, "_bucket", s.ttft_count, "model_name", m, "le", "+Inf", NULL);
	idn_prom_f64(&p, "_sum", s.ttft_sum_s, "model_name", m, NULL);
	idn_prom_u64(&p, "_count", s.ttft_count, "model_name", m, NULL);
	if (vllm)
		goto done;
	G("idn_agent_pending_prefill_tokens", "Outstanding prefill tokens (T_queue).", GAUGE,
	  l.pending_tokens);
	G("idn_agent_kv_evictions_total", "KV blocks evicted.", COUNTER, evict);
	G("idn_agent_kv_received_blocks_total", "KV blocks received from peers into the cache.",
	  COUNTER, rx);
	G("idn_agent_kv_pushes_total", "KV pushes to a peer that completed.", COUNTER,
	  __atomic_load_n(&a->kv_push_done, __ATOMIC_RELAXED));
	G("idn_agent_kv_push_failures_total", "KV pushes to a peer that failed.", COUNTER,
	  __atomic_load_n(&a->kv_push_failed, __ATOMIC_RELAXED));
	G("idn_agent_kv_pushed_bytes_total", "Bytes of KV blocks pushed to peers.", COUNTER,
	  __atomic_load_n(&a->kv_push_bytes, __ATOMIC_RELAXED));
	G("idn_agent_kv_pulls_total", "Requests that asked idnd to pull their state here "
	  "(--kv-pull).", COUNTER, __atomic_load_n(&a->kv_pull_asked, __ATOMIC_RELAXED));
	G("idn_agent_kv_pulled_total", "Pulls whose blocks arrived before the prefill.", COUNTER,
	  __atomic_load_n(&a->kv_pull_got, __ATOMIC_RELAXED));
	G("idn_agent_kv_pull_late_total", "Pulls ordered whose blocks did not arrive in time "
	  "(prefilled without them).", COUNTER,
	  __atomic_load_n(&a->kv_pull_late, __ATOMIC_RELAXED));
	{	/* two-stage requests: stage 2's round trips to idnd and its cache */
		uint64_t hit, miss, drop;

		pd_cache_counts(a, &hit, &miss, &drop);
		G("idn_agent_pd_stage2_asked_total", "Two-stage requests: round trips to idnd's "
		  "stage 2.", COUNTER, miss);
		G("idn_agent_pd_stage2_cache_hits_total", "Two-stage requests: stage 2 answered "
		  "from the cache (--pd-cache-ms).", COUNTER, hit);
		G("idn_agent_pd_stage2_cache_dropped_total", "Cached stage 2 picks dropped by a "
		  "failed hand-over.", COUNTER, drop);
	}
	G("idn_agent_engine_iterations_total", "Engine iterations.", COUNTER, s.iterations);
	G("idn_agent_telemetry_sent_total", "Telemetry datagrams sent.", COUNTER, a->tele.sent);
	G("idn_agent_heartbeats_total", "Heartbeats acknowledged by idnd.", COUNTER,
	  a->ctl.heartbeats);
	G("idn_agent_registrations_total", "Registrations acknowledged by idnd.", COUNTER,
	  a->ctl.registrations);
	G("idn_agent_registered", "Registered with idnd (1), or not (0; none configured: 1).",
	  GAUGE, agent_registered(a));
	G("idn_agent_mgmt_refused_total", "Management requests refused on the inference port.",
	  COUNTER, __atomic_load_n(&a->mgmt_refused, __ATOMIC_RELAXED));
	G("idn_agent_residency_used_bytes", "Bytes of resident artifacts.", GAUGE, used);
	G("idn_agent_residency_budget_bytes", "Residency budget.", GAUGE, budget);
	if (a->cfg.engine) {
		pthread_mutex_lock(&a->emu.mu);
		G("idn_agent_emulator_sleep_level", "Emulator sleep level (0 awake).", GAUGE,
		  a->emu.sleep_level);
		G("idn_agent_emulator_lora_adapters", "LoRA adapters loaded in the emulator.", GAUGE,
		  a->emu.n_lora);
		G("idn_agent_emulator_refused_asleep_total", "Completions refused while asleep.",
		  COUNTER, a->emu.refused_asleep);
		pthread_mutex_unlock(&a->emu.mu);
	}
	if (a->ad) {
		struct adapter *ad = a->ad;

		pthread_mutex_lock(&ad->mu);
		G("idn_agent_engine_up", "Managed engine answers /health.", GAUGE, ad->up);
		G("idn_agent_engine_sleeping", "Managed engine is asleep.", GAUGE, ad->sleeping);
		G("idn_agent_engine_scrapes_total", "Successful scrapes of the engine.", COUNTER,
		  ad->scrapes);
		G("idn_agent_engine_scrape_failures_total", "Failed scrapes (engine down).", COUNTER,
		  ad->scrape_failures);
		G("idn_agent_engine_metrics_malformed_total", "Malformed /metrics lines skipped.",
		  COUNTER, ad->malformed);
		G("idn_agent_engine_lora_adapters", "LoRA adapters loaded through the agent.", GAUGE,
		  ad->n_lora);
		pthread_mutex_unlock(&ad->mu);
	}
	state_metrics(&a->st, &p, m);
done:
#undef G
	if (idn_prom_end(&p))
		pr_warn("idn-agent: /metrics: %s\n", p.why);
	fclose(f);
	ret = send_text(c, 200, "text/plain; version=0.0.4", out ? out : "");
	free(out);
	return ret;
}

static enum MHD_Result status(struct agent *a, struct MHD_Connection *c)
{
	json_object *o = json_object_new_object(), *l = json_object_new_object();
	struct eng_load el = { 0 };

	if (a->ad)
		adapter_load(a->ad, &el);
	else if (a->cfg.engine)
		engine_load(&a->eng, &el);
	json_object_object_add(o, "node", json_object_new_int64(a->cfg.node_id));
	json_object_object_add(o, "profile", agent_profile_json(&a->prof, &a->cfg));
	json_object_object_add(o, "cpus", json_object_new_int64(a->prof.cpus));
	json_object_object_add(o, "mem_total", json_object_new_int64(a->prof.mem_total));
	json_object_object_add(o, "gpus", json_object_new_int64(a->prof.n_gpus));
	json_object_object_add(o, "gpu_source", json_object_new_string(a->prof.gpu_source));
	json_object_object_add(l, "queue", json_object_new_int64(el.queue_depth));
	json_object_object_add(l, "pending_tokens", json_object_new_int64(el.pending_tokens));
	json_object_object_add(l, "load", json_object_new_int(el.load));
	json_object_object_add(l, "kv_use", json_object_new_int(el.kv_use));
	json_object_object_add(o, "load", l);
	json_object_object_add(o, "registered", json_object_new_boolean(a->ctl.registered));
	json_object_object_add(o, "heartbeats", json_object_new_int64(a->ctl.heartbeats));
	if (a->have_lease) {	/* --etcd: the node's own lease (ctlclient.c) */
		json_object *e = json_object_new_object();
		char id[24];

		snprintf(id, sizeof(id), "%llx", (long long)a->lease.lease);
		json_object_object_add(e, "key", json_object_new_string(a->lease.key));
		json_object_object_add(e, "held", json_object_new_boolean(
			a->lease.lease && a->lease.key_put));
		json_object_object_add(e, "lease", json_object_new_string(id));
		json_object_object_add(e, "ttl", json_object_new_int64(a->lease.ttl));
		json_object_object_add(e, "grants", json_object_new_int64(a->lease.grants));
		json_object_object_add(e, "keepalives",
				       json_object_new_int64(a->lease.keepalives));
		json_object_object_add(e, "failures", json_object_new_int64(a->lease.failures));
		json_object_object_add(o, "etcd", e);
	}
	json_object_object_add(o, "telemetry_sent", json_object_new_int64(a->tele.sent));
	json_object_object_add(o, "kv_rx_blocks", json_object_new_int64(a->kv_rx_blocks));
	json_object_object_add(o, "kv_rx_unannounced", json_object_new_int64(a->kv_rx_unannounced));
	{	/* two-stage requests (P/D) */
		json_object *p = json_object_new_object();

		json_object_object_add(p, "moved", json_object_new_int64(a->pd_moved));
		json_object_object_add(p, "colocated", json_object_new_int64(a->pd_colocated));
		json_object_object_add(p, "decoded", json_object_new_int64(a->pd_decoded));
		{	/* one stage by stage 2's answer, and the answers' cache */
			json_object *s = json_object_new_object();
			uint64_t hit, miss, drop;

			pd_cache_counts(a, &hit, &miss, &drop);
			json_object_object_add(p, "not_two_stage", json_object_new_int64(
				__atomic_load_n(&a->pd_not_two_stage, __ATOMIC_RELAXED)));
			json_object_object_add(p, "ambiguous", json_object_new_int64(
				__atomic_load_n(&a->pd_ambiguous, __ATOMIC_RELAXED)));
			json_object_object_add(p, "unknown", json_object_new_int64(
				__atomic_load_n(&a->pd_unknown, __ATOMIC_RELAXED)));
			json_object_object_add(s, "asked", json_object_new_int64(miss));
			json_object_object_add(s, "cache_hits", json_object_new_int64(hit));
			json_object_object_add(s, "cache_dropped", json_object_new_int64(drop));
			json_object_object_add(s, "cache_ms", json_object_new_int64(
				a->cfg.pd_cache_ms));
			json_object_object_add(p, "stage2", s);
		}
		json_object_object_add(p, "handed_off", json_object_new_int64(a->pd_handed_off));
		json_object_object_add(p, "handoff_fallback",
				       json_object_new_int64(a->pd_handoff_fallback));
		json_object_object_add(p, "handoff_taken",
				       json_object_new_int64(a->pd_handoff_taken));
		json_object_object_add(o, "pd", p);
	}
	pthread_mutex_lock(&a->eng.mu);
	if (a->kv_rx_last_commit > 0)
		json_object_object_add(o, "kv_rx_last_commit", json_object_new_double(
			a->kv_rx_last_commit));
	pthread_mutex_unlock(&a->eng.mu);
	if (a->ad)
		json_object_object_add(o, "engine", adapter_json(a->ad));
	if (a->cfg.engine)
		json_object_object_add(o, "emulator", emu_json(a));
	return send_json(c, 200, o);
}

/* ---- residency ---------------------------------------------------------- */

static enum MHD_Result residency_post(struct agent *a, struct MHD_Connection *c,
				      const char *what, json_object *o)
{
	json_object *x;
	struct res_order ord = { 0 };
	int err;

	if (!json_object_object_get_ex(o, "name", &x) || !json_object_is_type(x, json_type_string))
		return send_err(c, 400, "field \"name\": string expected");
	ord.name = json_object_get_string(x);
	if (a->ad && lora_order(a, what, o, ord.name))
		return lora_post(a, c, what, o, ord.name);
	if (!strcmp(what, "evict")) {
		err = res_evict(&a->res, ord.name);
		if (err == -ENOENT)
			return send_err(c, 404, "no artifact \"%s\"", ord.name);
		if (err)
			return send_err(c, 409, "artifact \"%s\" is busy", ord.name);
		return send_json(c, 200, residency_view(a));
	}
	if (!json_object_object_get_ex(o, "path", &x) || !json_object_is_type(x, json_type_string))
		return send_err(c, 400, "field \"path\": string expected");
	ord.path = json_object_get_string(x);
	ord.dir = a->cfg.artifact_dir;
	if (json_object_object_get_ex(o, "sha256", &x)) {
		if (!json_object_is_type(x, json_type_string) ||
		    strlen(json_object_get_string(x)) != 64)
			return send_err(c, 400, "field \"sha256\": 64 hex digits expected");
		ord.sha256_hex = json_object_get_string(x);
	}
	if (json_object_object_get_ex(o, "cap", &x)) {
		if (!json_object_is_type(x, json_type_int) || json_object_get_int64(x) < 0 ||
		    json_object_get_int64(x) > UINT32_MAX)
			return send_err(c, 400, "field \"cap\": capability label expected");
		ord.cap = json_object_get_int64(x);
	}
	if (json_object_object_get_ex(o, "evict_lru", &x))
		ord.evict_lru = json_object_get_boolean(x);
	err = res_load(&a->res, &ord);
	switch (err) {
	case 0: return send_json(c, 200, residency_view(a));
	case -EPERM:
		refused_log("path", "artifact order for %.128s refused: not a regular file under "
			    "--artifact-dir %s", ord.path, a->cfg.artifact_dir);
		return send_err(c, 403, "artifact path refused: not a regular file under the "
				"artifact directory");
	case -ENOENT: return send_err(c, 404, "artifact file %s: not found", ord.path);
	case -EEXIST: return send_err(c, 409, "artifact \"%s\" already resident", ord.name);
	case -ENOSPC: return send_err(c, 507, "artifact %s does not fit the budget", ord.name);
	case -EBADMSG: return send_err(c, 422, "artifact %s: SHA-256 mismatch (corrupt), rolled back",
				       ord.path);
	case -EINVAL: return send_err(c, 400, "bad artifact order (name or path)");
	default: return send_err(c, 500, "load of %s failed: %s, rolled back", ord.path,
				 strerror(-err));
	}
}

/* ---- KV transfer --------------------------------------------------------- */

/*
 * Receiver side (kvx commit callback): the staged blocks of a verified
 * transfer enter the cache as one step under the engine lock, all or
 * nothing (kv_acquire is all-or-nothing; -ENOSPC rejects the transfer).
 * Block i of the transfer is at stage offset i * block_bytes; slice tags
 * carry the block keys.
 */
/*
 * Owned state announced by idnd before a migration (POST /v1/kv/expect on
 * the management listener): the prefix root (the first block's key) and
 * its owner. A transfer to KVX_ARENA_OWNED is taken only when its first
 * block's key was announced, and its blocks enter the cache in that
 * owner's scope; each announcement serves one transfer, and lapses.
 */
#define KV_EXPECT_MAX 32
static struct kv_expect {
	uint64_t root;
	struct kv_who who;
	uint32_t n;		/* transfers announced (the same root, the same owner) */
	double until;		/* monotonic seconds */
} kv_exp[KV_EXPECT_MAX];
static pthread_mutex_t kv_exp_mu = PTHREAD_MUTEX_INITIALIZER;

static double mono_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static bool who_same(const struct kv_who *x, const struct kv_who *y)
{
	return x->scope == y->scope && x->tenant == y->tenant && x->session == y->session;
}

static int kv_expect_take(uint64_t root, struct kv_who *w)
{
	double now = mono_s();
	int rc = -EACCES;

	int k = -1;

	/*
	 * The same root announced for two owners (two tenants' identical
	 * prompts on their way here at once): the transfer does not say
	 * whose it is, so it is taken for neither
	 */
	pthread_mutex_lock(&kv_exp_mu);
	for (int i = 0; i < KV_EXPECT_MAX; i++) {
		if (kv_exp[i].root != root || !root || kv_exp[i].until <= now)
			continue;
		if (k >= 0 && !who_same(&kv_exp[i].who, &kv_exp[k].who)) {
			k = -1;
			break;
		}
		k = i;
	}
	if (k >= 0) {
		*w = kv_exp[k].who;
		if (!--kv_exp[k].n)
			kv_exp[k].root = 0;
		rc = 0;
	}
	pthread_mutex_unlock(&kv_exp_mu);
	return rc;
}

/*
 * The received slices s[] of a transfer to dst_arena as cache blocks: the
 * checks both commit paths make, then the blocks' keys (*keys, nb of them)
 * and, for owned state, the announced owner (*who). 0 or -errno.
 */
static int kv_rx_keys(struct agent *a, uint32_t dst_arena, const struct kvx_slice *s,
		      uint32_t n, uint64_t **keysp, uint32_t *nbp, struct kv_who *who)
{
	size_t bb = a->eng.kv.block_bytes;
	uint64_t total = 0, *keys = NULL;
	uint8_t *set = NULL;
	uint32_t nb, j;
	int rc = 0;

	*who = (struct kv_who){ 0 };	/* public, unless announced */
	for (j = 0; j < n; j++) {
		if (s[j].stage_off != s[j].dst_off || s[j].dst_off != total)
			return -EPROTO;
		total += s[j].len;
	}
	if (total % bb)
		return -EPROTO;
	nb = total / bb;
	keys = calloc(nb ? nb : 1, sizeof(*keys));
	set = calloc(nb ? nb : 1, 1);
	if (!keys || !set) {
		rc = -ENOMEM;
		goto out;
	}
	/*
	 * A slice lies within one block (a sender cuts one descriptor per
	 * block into slices): a zero-length one at the end named block nb,
	 * past keys[] (a heap write any KV peer could aim; fuzz_agent_kvx
	 * found it), and one across a boundary left the next block keyless.
	 * set[] marks the blocks whose key was set.
	 */
	for (j = 0; j < n && !rc; j++) {
		uint64_t b = s[j].dst_off / bb, in = s[j].dst_off % bb;

		if (!s[j].len || s[j].len > bb - in) {
			rc = -EPROTO;
		} else if (!in) {
			keys[b] = s[j].tag;
			set[b] = 1;
		} else if (!set[b] || keys[b] != s[j].tag) {
			rc = -EPROTO;
		}
	}
	for (j = 0; j < nb && !rc; j++)
		if (!set[j])
			rc = -EPROTO;
	/* owned blocks: only as announced, in the announced owner's scope */
	if (!rc && !nb)
		rc = -EPROTO;
	if (!rc && dst_arena == KVX_ARENA_OWNED && (rc = kv_expect_take(keys[0], who)))
		a->kv_rx_unannounced++;
out:
	free(set);
	if (rc) {
		free(keys);
		return rc;
	}
	*keysp = keys;
	*nbp = nb;
	return 0;
}

/* a commit entered nb blocks, hits of them present already (e->mu held) */
static void kv_rx_note(struct agent *a, uint32_t nb, uint32_t hits)
{
	struct timespec ts;

	a->kv_rx_blocks += nb - hits;
	clock_gettime(CLOCK_REALTIME, &ts);	/* when the last transfer entered the cache */
	a->kv_rx_last_commit = ts.tv_sec + ts.tv_nsec / 1e9;
}

/*
 * The staged path (RDMA: its registered stage; a transfer the sink
 * declined): blocks taken at commit, the stage copied into them.
 */
int agent_kv_commit(void *arg, uint32_t dst_arena, const uint8_t *stage,
		    const struct kvx_slice *s, uint32_t n)
{
	struct agent *a = arg;
	struct engine *e = &a->eng;
	size_t bb = e->kv.block_bytes;
	uint64_t *keys = NULL;
	struct kv_who who;
	uint32_t nb, hits, j;
	int32_t *idx = NULL;
	int rc;

	if (!a->cfg.engine || !bb ||
	    (dst_arena != KVX_ARENA_NONE && dst_arena != KVX_ARENA_OWNED))
		return -EOPNOTSUPP;
	rc = kv_rx_keys(a, dst_arena, s, n, &keys, &nb, &who);
	if (rc)
		return rc;
	idx = calloc(nb, sizeof(*idx));
	if (!idx) {
		free(keys);
		return -ENOMEM;
	}
	pthread_mutex_lock(&e->mu);
	{
		uint64_t q = e->kv.q_blocks, h = e->kv.hit_blocks;

		rc = kv_acquire_as(&e->kv, &who, keys, nb, nb, idx, &hits);
		e->kv.q_blocks = q;
		e->kv.hit_blocks = h;
	}
	if (!rc) {
		kv_commit(&e->kv, keys, idx, hits, nb);
		for (j = hits; j < nb; j++)
			memcpy(kv_block_data(&e->kv, idx[j]), stage + (size_t)j * bb, bb);
		kv_release(&e->kv, idx, nb);
		kv_rx_note(a, nb, hits);
	}
	pthread_mutex_unlock(&e->mu);
	free(keys);
	free(idx);
	return rc;
}

/*
 * The placed path (TCP; kvx_set_sink): a transfer's blocks are reserved
 * when it starts (kv_reserve: referenced, not indexed: no lookup, request
 * or eviction sees them; bounded by the receiver's max_rx, the KV cache),
 * every slice is read straight into its block, and the commit only
 * indexes them (kv_publish); a transfer that fails gives them back,
 * nothing indexed. No copy, and the engine's lock is held for the
 * bookkeeping only.
 */
struct kv_place {
	struct agent *a;
	uint32_t dst_arena, nb;
	bool held;			/* the reservation is ours (until published) */
	int32_t idx[];			/* block j of the transfer: idx[j] */
};

static int kv_sink_open(void *arg, uint32_t dst_arena, uint64_t total, uint32_t nslices,
			void **xfer)
{
	struct agent *a = arg;
	struct engine *e = &a->eng;
	size_t bb = e->kv.block_bytes;
	struct kv_place *p;
	uint64_t nb;
	int rc;

	if (!a->cfg.engine || !bb ||
	    (dst_arena != KVX_ARENA_NONE && dst_arena != KVX_ARENA_OWNED))
		return -EOPNOTSUPP;
	if (!total || total % bb)
		return -EPROTO;
	nb = total / bb;
	if (nb > e->kv.nblocks)
		return -E2BIG;
	p = calloc(1, sizeof(*p) + nb * sizeof(p->idx[0]));
	if (!p)
		return -ENOMEM;
	p->a = a;
	p->dst_arena = dst_arena;
	p->nb = nb;
	pthread_mutex_lock(&e->mu);
	rc = kv_reserve(&e->kv, p->nb, p->idx);
	pthread_mutex_unlock(&e->mu);
	if (rc) {
		free(p);
		return rc;
	}
	p->held = true;
	*xfer = p;
	return 0;
}

static uint8_t *kv_sink_place(void *xfer, uint64_t stage_off, uint64_t len)
{
	struct kv_place *p = xfer;
	const struct kv_cache *kc = &p->a->eng.kv;
	uint64_t b = stage_off / kc->block_bytes, in = stage_off % kc->block_bytes;

	if (b >= p->nb || len > kc->block_bytes - in)
		return NULL;		/* a slice lies within one block */
	return kv_block_data(kc, p->idx[b]) + in;
}

static int kv_sink_commit(void *xfer, const struct kvx_slice *s, uint32_t n)
{
	struct kv_place *p = xfer;
	struct agent *a = p->a;
	struct engine *e = &a->eng;
	uint64_t *keys = NULL;
	struct kv_who who;
	uint32_t nb, hits;
	int rc = kv_rx_keys(a, p->dst_arena, s, n, &keys, &nb, &who);

	if (!rc && nb != p->nb)
		rc = -EPROTO;
	if (rc) {
		free(keys);
		return rc;
	}
	pthread_mutex_lock(&e->mu);
	kv_publish(&e->kv, &who, keys, p->idx, nb, &hits);
	kv_release(&e->kv, p->idx, nb);
	p->held = false;
	kv_rx_note(a, nb, hits);
	pthread_cond_signal(&e->work);	/* a request may wait for blocks */
	pthread_mutex_unlock(&e->mu);
	free(keys);
	return 0;
}

static void kv_sink_close(void *xfer, int err)
{
	struct kv_place *p = xfer;
	struct engine *e = &p->a->eng;

	if (p->held) {			/* failed: back to the free list, never indexed */
		pthread_mutex_lock(&e->mu);
		kv_release(&e->kv, p->idx, p->nb);
		pthread_cond_signal(&e->work);
		pthread_mutex_unlock(&e->mu);
	}
	free(p);
}

const struct kvx_sink agent_kv_sink = {
	.open = kv_sink_open,
	.place = kv_sink_place,
	.commit = kv_sink_commit,
	.close = kv_sink_close,
};

/* Is @peer one of --kv-peers (exact ADDR:PORT)? Nothing else is dialled. */
static bool kv_peer_allowed(const struct agent *a, const char *peer)
{
	size_t n = strlen(peer);
	const char *p = a->cfg.kv_peers;

	while (n && *p) {
		const char *e = strchr(p, ',');
		size_t l = e ? (size_t)(e - p) : strlen(p);

		if (l == n && !strncmp(p, peer, n))
			return true;
		p += l + (e ? 1 : 0);
	}
	return false;
}

/*
 * Push the leading cached blocks of keys[] that @who may take off the node
 * to @peer's KV listener, pinned for the transfer; a failed transfer left
 * nothing on the peer and is retried whole up to @retries times. 0 when a
 * transfer ran (res->state says how it ended; *nb blocks, *attempts),
 * -ENOENT: no cached block, -EBUSY: could not pin, -errno: not started.
 */
static int push_prefix(struct agent *a, const char *peer, const struct kv_who *who,
		       const uint64_t *keys, uint32_t nkeys, uint32_t retries,
		       struct kvx_result *res, uint32_t *nb, uint32_t *attempts)
{
	struct engine *e = &a->eng;
	size_t bb = e->kv.block_bytes;
	struct kvx_desc *d = NULL;
	uint32_t n, hits = 0;
	int32_t *idx = NULL;
	uint64_t id;
	int err = 0;

	*nb = *attempts = 0;
	memset(res, 0, sizeof(*res));
	pthread_mutex_lock(&e->mu);
	/* public state, or the owner's (state.c: scopes; hardware-bound never) */
	n = kv_match_as(&e->kv, who, keys, nkeys);
	if (n) {
		uint64_t qb = e->kv.q_blocks, hb = e->kv.hit_blocks;

		idx = calloc(n, sizeof(*idx));
		/* pin the blocks for the transfer: all hits, nothing evicted */
		err = idx ? kv_acquire_as(&e->kv, who, keys, n, n, idx, &hits) : -ENOMEM;
		e->kv.q_blocks = qb;
		e->kv.hit_blocks = hb;
	}
	pthread_mutex_unlock(&e->mu);
	if (!n || err) {
		free(idx);
		return n ? -EBUSY : -ENOENT;
	}
	d = calloc(n, sizeof(*d));
	err = d ? 0 : -ENOMEM;
	for (uint32_t i = 0; d && i < n; i++)
		d[i] = (struct kvx_desc){ .src_off = (uint64_t)idx[i] * bb,
					  .dst_off = (uint64_t)i * bb, .len = bb,
					  .tag = keys[i] };
	/* a failed transfer left nothing on the peer: retry it whole; not
	 * one the peer has no room for, no listener for, or refused our KV
	 * key for (the same key is refused again) */
	while (!err && *attempts <= retries) {
		(*attempts)++;
		err = kvx_submit(a->kvx, peer, a->kv_arena, who->scope == KV_SCOPE_TENANT ||
				 who->scope == KV_SCOPE_SESSION ? KVX_ARENA_OWNED : KVX_ARENA_NONE,
				 d, n, &id);
		if (!err)
			err = kvx_wait(a->kvx, id, 0, res);
		if (err || res->state == KVX_DONE || res->err == -ENOSPC ||
		    res->err == -ECONNREFUSED || res->err == -EACCES)
			break;
	}
	pthread_mutex_lock(&e->mu);
	kv_release(&e->kv, idx, n);
	pthread_mutex_unlock(&e->mu);
	free(d);
	free(idx);
	if (err || res->state != KVX_DONE)
		__atomic_add_fetch(&a->kv_push_failed, 1, __ATOMIC_RELAXED);
	else
		__atomic_add_fetch(&a->kv_push_done, 1, __ATOMIC_RELAXED);
	if (!err)
		__atomic_add_fetch(&a->kv_push_bytes, res->bytes, __ATOMIC_RELAXED);
	*nb = n;
	return err;
}

static enum MHD_Result kv_push(struct agent *a, struct MHD_Connection *c, json_object *o)
{
	struct engine *e = &a->eng;
	size_t bb = e->kv.block_bytes;
	struct kvx_result res = { 0 };
	json_object *x, *r;
	const char *peer;
	struct creq q;
	struct kv_who who;
	bool owned = false;
	uint32_t n = 0, retries = 1, attempts = 0;
	char msg[160];
	int code, err;

	if (!a->kvx || !a->cfg.engine || !bb)
		return send_err(c, 503, "no KV transfer on this agent");
	if (!json_object_object_get_ex(o, "peer", &x) || !json_object_is_type(x, json_type_string))
		return send_err(c, 400, "field \"peer\": the peer agent's KV address ADDR:PORT");
	peer = json_object_get_string(x);
	if (!kv_peer_allowed(a, peer)) {
		refused_log("peer", "/v1/kv/push to %.64s refused: not in --kv-peers", peer);
		return send_err(c, 403, "peer %.64s is not an allowed KV peer (--kv-peers)", peer);
	}
	if (get_u32(o, "retries", 5, &retries, &(bool){ 0 }))
		return send_err(c, 400, "field \"retries\": 0..5");
	if (json_object_object_get_ex(o, "token", &x)) {
		/*
		 * A migration (idnd): the prefix last served with this affinity
		 * token, in its owner's scope. Tenant and session state moves
		 * only with "owned": true, which idnd sends after announcing
		 * the owner at the destination (/v1/kv/expect there); the
		 * destination takes it in that scope only. Hardware-bound
		 * state never leaves.
		 */
		uint64_t tok;
		json_object *ow;

		if (!json_object_is_type(x, json_type_string) ||
		    parse_hex64(json_object_get_string(x), &tok) || !tok)
			return send_err(c, 400, "field \"token\": 16 hex digits, not 0");
		owned = json_object_object_get_ex(o, "owned", &ow) &&
			json_object_get_boolean(ow);
		memset(&q, 0, sizeof(q));
		q.keys = calloc(AFF_KEYS, sizeof(*q.keys));
		if (!q.keys)
			return send_err(c, 500, "out of memory");
		if (state_token_lookup(&a->st, tok, &who, q.keys, &q.nkeys)) {
			free(q.keys);
			return send_err(c, 404, "no prefix known for token %016llx",
					(unsigned long long)tok);
		}
		if (who.scope == KV_SCOPE_HW ||
		    (who.scope != KV_SCOPE_PUBLIC && !owned)) {
			free(q.keys);
			return send_err(c, 403, "token %016llx: %s state %s", (unsigned long long)tok,
					kv_scope_name(who.scope), who.scope == KV_SCOPE_HW ?
					"never leaves the node" :
					"moves only as announced (\"owned\": true)");
		}
		if (who.scope == KV_SCOPE_PUBLIC)
			who = (struct kv_who){ .leaving = 1 };
	} else {
		code = parse_creq(a, o, false, &q, msg, sizeof(msg));
		if (code) {
			free(q.keys);
			return send_err(c, code, "%s", msg);
		}
		who = (struct kv_who){ .leaving = 1 };
	}
	err = push_prefix(a, peer, &who, q.keys, q.nkeys, retries, &res, &n, &attempts);
	free(q.keys);
	if (err == -ENOENT)
		return send_err(c, 404, "no cached KV blocks for this prefix");
	if (err == -EBUSY)
		return send_err(c, 500, "cannot pin blocks");
	if (err)
		return send_err(c, 500, "transfer not started: %s", strerror(-err));
	r = json_object_new_object();
	json_object_object_add(r, "state", json_object_new_string(
		res.state == KVX_DONE ? "done" : "failed"));
	json_object_object_add(r, "transport", json_object_new_string(	/* what carried it */
		res.transport[0] ? res.transport : kvx_transport(a->kvx)));
	json_object_object_add(r, "policy", json_object_new_string(a->cfg.kv_transport));
	json_object_object_add(r, "choice", json_object_new_string(kvx_choice(a->kvx)));
	json_object_object_add(r, "peer", json_object_new_string(peer));
	json_object_object_add(r, "blocks", json_object_new_int64(n));
	json_object_object_add(r, "scope", json_object_new_string(
		kv_scope_name(who.leaving ? KV_SCOPE_PUBLIC : who.scope)));
	json_object_object_add(r, "bytes", json_object_new_int64(res.bytes));
	json_object_object_add(r, "slices", json_object_new_int64(res.slices));
	json_object_object_add(r, "streams", json_object_new_int64(a->cfg.kv_streams));
	json_object_object_add(r, "attempts", json_object_new_int64(attempts));
	json_object_object_add(r, "secs", json_object_new_double(res.secs));
	json_object_object_add(r, "gbps", json_object_new_double(
		res.secs > 0 ? res.bytes * 8 / res.secs / 1e9 : 0));
	json_object_object_add(r, "message", json_object_new_string(res.msg));
	return send_json(c, res.state == KVX_DONE ? 200 : 502, r);
}

/* POST /v1/kv/expect {"root", "scope", "tenant", "session", "ttl_ms"}: see kv_exp */
static enum MHD_Result kv_expect(struct agent *a, struct MHD_Connection *c, json_object *o)
{
	struct kv_who w = { 0 };
	uint64_t root = 0;
	uint32_t ttl = 10000, tenant = 0;
	json_object *x;
	double now = mono_s();
	int sc, slot = -1;

	if (!a->kvx || !a->cfg.engine)
		return send_err(c, 503, "no KV transfer on this agent");
	if (!json_object_object_get_ex(o, "root", &x) || !json_object_is_type(x, json_type_string) ||
	    parse_hex64(json_object_get_string(x), &root) || !root)
		return send_err(c, 400, "field \"root\": the prefix root, 16 hex digits");
	if (!json_object_object_get_ex(o, "scope", &x) || !json_object_is_type(x, json_type_string) ||
	    (sc = kv_scope_parse(json_object_get_string(x))) < 0 ||
	    (sc != KV_SCOPE_TENANT && sc != KV_SCOPE_SESSION))
		return send_err(c, 400, "field \"scope\": tenant or session");
	if (get_u32(o, "tenant", 65535, &tenant, &(bool){ 0 }) ||
	    (!tenant && sc == KV_SCOPE_TENANT))
		return send_err(c, 400, "field \"tenant\": 1..65535 (0..65535 for session scope)");
	if (get_u32(o, "ttl_ms", 60000, &ttl, &(bool){ 0 }) || !ttl)
		return send_err(c, 400, "field \"ttl_ms\": 1..60000");
	w.scope = sc;
	w.tenant = tenant;
	if (sc == KV_SCOPE_SESSION &&
	    (!json_object_object_get_ex(o, "session", &x) ||
	     !json_object_is_type(x, json_type_string) ||
	     parse_hex64(json_object_get_string(x), &w.session) || !w.session))
		return send_err(c, 400, "field \"session\": 16 hex digits for session scope");
	pthread_mutex_lock(&kv_exp_mu);
	for (int i = 0; i < KV_EXPECT_MAX; i++) {
		/* the same root and owner again: one more transfer; else a free slot */
		if (kv_exp[i].root == root && kv_exp[i].until > now &&
		    who_same(&kv_exp[i].who, &w)) {
			slot = i;
			break;
		}
		if (slot < 0 && (!kv_exp[i].root || kv_exp[i].until <= now))
			slot = i;
	}
	if (slot >= 0) {
		uint32_t n = kv_exp[slot].root == root && kv_exp[slot].until > now ?
			     kv_exp[slot].n : 0;

		kv_exp[slot] = (struct kv_expect){ root, w, n < 1000 ? n + 1 : n,
						   now + ttl / 1000.0 };
	}
	pthread_mutex_unlock(&kv_exp_mu);
	if (slot < 0)
		return send_err(c, 429, "%d announcements pending", KV_EXPECT_MAX);
	return send_json(c, 200, json_object_new_object());
}

static enum MHD_Result agent_key(struct agent *a, struct MHD_Connection *c)
{
	json_object *o = json_object_new_object();

	if (!a->key) {
		json_object_put(o);
		return send_err(c, 503, "no node key");
	}
	json_object_object_add(o, "node", json_object_new_int64(a->cfg.node_id));
	json_object_object_add(o, "alg", json_object_new_string("ed25519"));
	json_object_object_add(o, "pubkey", json_object_new_string(a->key->pk_hex));
	return send_json(c, 200, o);
}

/* ---- dispatch ----------------------------------------------------------- */

/* POSTs that change the node or reach out from it: management listener only. */
static bool mgmt_endpoint(const char *url)
{
	static const char *const m[] = { "/v1/residency/load", "/v1/residency/evict",
		"/v1/kv/push", "/v1/kv/expect", "/sleep", "/wake_up", "/v1/engine/sleep", "/v1/engine/wake",
		"/v1/load_lora_adapter", "/v1/unload_lora_adapter", NULL };

	for (int i = 0; m[i]; i++)
		if (!strcmp(url, m[i]))
			return true;
	return false;
}

/* A refusal worth a log line, at most one a second per kind (a flood stays a line). */
static void refused_log(const char *kind, const char *fmt, ...)
{
	static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
	static struct { const char *kind; time_t last; unsigned long n; } k[8];
	time_t now = time(NULL);
	char line[256];
	va_list ap;
	int i;

	pthread_mutex_lock(&mu);
	for (i = 0; i < 7 && k[i].kind && k[i].kind != kind; i++)
		;
	k[i].kind = kind;
	k[i].n++;
	if (now != k[i].last) {
		va_start(ap, fmt);
		vsnprintf(line, sizeof(line), fmt, ap);
		va_end(ap);
		pr_warn("idn-agent: HTTP: %s (%lu refused in the last second)\n", line,
			k[i].n);
		k[i].last = now;
		k[i].n = 0;
	}
	pthread_mutex_unlock(&mu);
}

static enum MHD_Result serve(struct agent *a, bool mgmt, struct MHD_Connection *c,
			     const char *url, const char *method, const char *data,
			     size_t *size, void **con_cls)
{
	struct conn *cn = *con_cls;
	bool post = !strcmp(method, "POST");
	json_object *o;
	enum MHD_Result ret;
	struct json_tokener *tok;

	if (mgmt) {	/* mutual TLS: idnd's certificate (or an admin's) only */
		static const struct idn_tls plain = { .insecure = true };
		const struct idn_peer *p = idn_http_peer(c, a->tls ? a->tls : &plain);

		if (!idn_peer_has(p, IDN_ROLE_BIT(IDN_ROLE_CONTROLLER) |
				     IDN_ROLE_BIT(IDN_ROLE_ADMIN))) {
			idn_http_deny_log("idn-agent: management", p, method, url,
					  "controller (idnd) or admin");
			return send_err(c, 403, "management listener: %s%s%s", p->role ?
					"role " : "", p->role ? idn_role_name(p->role) : p->why,
					p->role ? " may not call it (controller or admin only)" : "");
		}
	}
	if (!post) {
		if (strcmp(method, "GET"))
			return send_err(c, 405, "method not allowed");
		if (!strcmp(url, "/metrics"))
			return metrics(a, c);
		if (!strcmp(url, "/health"))
			return health(a, c);
		if (!strcmp(url, "/healthz"))
			return send_text(c, 200, "text/plain", "ok\n");
		if (!strcmp(url, "/readyz"))
			return readyz(a, c);
		if (!strcmp(url, "/v1/agent"))
			return status(a, c);
		if (!strcmp(url, "/v1/residency"))
			return send_json(c, 200, residency_view(a));
		if (!strcmp(url, "/is_sleeping"))
			return emu_is_sleeping(a, c);
		if (!strcmp(url, "/v1/engine"))
			return a->ad ? send_json(c, 200, adapter_json(a->ad)) :
			       send_err(c, 404, "no managed engine (--engine-url)");
		if (!strcmp(url, "/v1/agent/key"))
			return agent_key(a, c);
		if (!strncmp(url, "/v1/receipts", 12) && (!url[12] || url[12] == '/'))
			return receipts_get(a, c, url + 12);
		if (!strcmp(url, "/v1/models")) {
			json_object *l = json_object_new_object(), *d = json_object_new_array(),
				    *m = json_object_new_object();

			json_object_object_add(m, "id", json_object_new_string(a->cfg.model));
			json_object_object_add(m, "object", json_object_new_string("model"));
			json_object_object_add(m, "owned_by", json_object_new_string("idn"));
			json_object_array_add(d, m);
			emu_models(a, d);
			json_object_object_add(l, "object", json_object_new_string("list"));
			json_object_object_add(l, "data", d);
			return send_json(c, 200, l);
		}
		return send_err(c, 404, "no such endpoint");
	}
	if (!cn) {
		const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
							     MHD_HTTP_HEADER_CONTENT_LENGTH);
		unsigned long long want = cl ? strtoull(cl, NULL, 10) : 0;
		unsigned int max = mgmt ? MGMT_BODY_MAX : BODY_MAX;

		/* refused before a byte of the body is read */
		if (!mgmt && mgmt_endpoint(url)) {
			__atomic_add_fetch(&a->mgmt_refused, 1, __ATOMIC_RELAXED);
			refused_log("mgmt", "management request POST %.64s on the inference port "
				    "refused (it is served on %s only)", url, a->cfg.mgmt_listen);
			return send_err(c, 403, "management endpoint %.64s: not on the inference port "
					"(served on the management listener)", url);
		}
		if (mgmt && !mgmt_endpoint(url))
			return send_err(c, 404, "%.64s: not a management endpoint (inference is on %s)",
					url, a->cfg.listen);
		if (want > max) {
			refused_log("size", "POST %.64s with a %llu-byte body refused (limit %u)",
				    url, want, max);
			return send_err(c, 413, "body larger than %u bytes", max);
		}
		cn = calloc(1, sizeof(*cn));
		if (!cn)
			return MHD_NO;
		*con_cls = cn;
		return MHD_YES;
	}
	if (*size) {
		size_t max = mgmt ? MGMT_BODY_MAX : BODY_MAX, need = cn->len + *size + 1;

		if (cn->too_big || cn->busy || cn->len + *size > max) {
			cn->too_big = !cn->busy;
			goto taken;
		}
		if (need > cn->cap) {	/* grow by doubling: no quadratic copying */
			size_t ncap = cn->cap ? cn->cap : 4096;
			char *nb;

			while (ncap < need)
				ncap *= 2;
			if (ncap > max + 1)
				ncap = max + 1;
			if (__atomic_add_fetch(&body_bytes, ncap - cn->cap, __ATOMIC_RELAXED) >
			    AGENT_BODY_BUDGET) {
				/* this connection's memory leaves the budget; the rest is dropped */
				__atomic_sub_fetch(&body_bytes, ncap, __ATOMIC_RELAXED);
				free(cn->buf);
				cn->buf = NULL;
				cn->len = cn->cap = 0;
				cn->busy = true;
				__atomic_add_fetch(&body_refused, 1, __ATOMIC_RELAXED);
				refused_log("budget", "request bodies in flight over %lu MiB: POST "
					    "%.64s refused", AGENT_BODY_BUDGET >> 20, url);
				goto taken;
			}
			nb = realloc(cn->buf, ncap);
			if (!nb) {
				__atomic_sub_fetch(&body_bytes, ncap - cn->cap, __ATOMIC_RELAXED);
				return MHD_NO;
			}
			cn->buf = nb;
			cn->cap = ncap;
		}
		memcpy(cn->buf + cn->len, data, *size);
		cn->len += *size;
		cn->buf[cn->len] = 0;
taken:
		*size = 0;
		return MHD_YES;
	}
	if (cn->too_big)
		return send_err(c, 413, "body larger than %u bytes", mgmt ? MGMT_BODY_MAX : BODY_MAX);
	if (cn->busy)
		return send_err(c, 503, "too many request bodies in flight: retry");
	/* vLLM's sleep endpoints take no body */
	if (!strcmp(url, "/sleep") || !strcmp(url, "/wake_up"))
		return emu_sleep(a, c, url[1] == 's');
	if (!strcmp(url, "/v1/engine/sleep") || !strcmp(url, "/v1/engine/wake"))
		return engine_sleep(a, c, url[11] == 's', cn->buf);
	if (!mgmt && !strcmp(url, "/v1/pd/handoff"))
		return handoff_post(a, c, cn->buf, cn->len);
	tok = json_tokener_new_ex(32);
	o = cn->buf ? json_tokener_parse_ex(tok, cn->buf, cn->len) : NULL;
	if (!o || json_tokener_get_error(tok) != json_tokener_success ||
	    !json_object_is_type(o, json_type_object)) {
		json_tokener_free(tok);
		json_object_put(o);
		return send_err(c, 400, "invalid JSON: an object expected");
	}
	json_tokener_free(tok);
	if (!strcmp(url, "/v1/completions"))
		ret = completions(a, c, o, false);
	else if (!strcmp(url, "/v1/chat/completions"))
		ret = completions(a, c, o, true);
	else if (!strcmp(url, "/v1/residency/load"))
		ret = residency_post(a, c, "load", o);
	else if (!strcmp(url, "/v1/residency/evict"))
		ret = residency_post(a, c, "evict", o);
	else if (!strcmp(url, "/v1/kv/push"))
		ret = kv_push(a, c, o);
	else if (!strcmp(url, "/v1/kv/expect"))
		ret = kv_expect(a, c, o);
	else if (!strcmp(url, "/v1/load_lora_adapter"))
		ret = emu_lora(a, c, true, o);
	else if (!strcmp(url, "/v1/unload_lora_adapter"))
		ret = emu_lora(a, c, false, o);
	else
		ret = send_err(c, 404, "no such endpoint");
	json_object_put(o);
	return ret;
}

static enum MHD_Result handler(void *cls, struct MHD_Connection *c, const char *url,
			       const char *method, const char *version, const char *data,
			       size_t *size, void **con_cls)
{
	req_version = version;
	return serve(cls, false, c, url, method, data, size, con_cls);
}

static enum MHD_Result handler_mgmt(void *cls, struct MHD_Connection *c, const char *url,
				    const char *method, const char *version, const char *data,
				    size_t *size, void **con_cls)
{
	return serve(cls, true, c, url, method, data, size, con_cls);
}

static void completed(void *cls, struct MHD_Connection *c, void **con_cls,
		      enum MHD_RequestTerminationCode toe)
{
	struct conn *cn = *con_cls;

	if (cn) {
		__atomic_sub_fetch(&body_bytes, cn->cap, __ATOMIC_RELAXED);
		free(cn->buf);
		free(cn);
		*con_cls = NULL;
	}
}

/* MHD's error lines, less the one for a connection handed off (MHD_NO) */
static void mhd_log(void *cls, const char *fmt, va_list ap)
{
	if (handed_off && strstr(fmt, "Application reported internal error")) {
		handed_off = false;
		return;
	}
	vfprintf(stderr, fmt, ap);
}

int http_start(struct agent *a)
{
	struct sockaddr_storage ss;
	socklen_t len;
	struct MHD_Daemon *d;
	int err = agent_parse_hostport(a->cfg.listen, &ss, &len);

	if (err)
		return err;
	pthread_mutex_init(&a->emu.mu, NULL);
	if (!a->pdc && pd_cache_init(a))
		return -ENOMEM;
	/* MHD_USE_ITC: a connection handed over (MHD_add_connection()) is served at once */
	d = MHD_start_daemon(MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD |
			     MHD_USE_ERROR_LOG | MHD_USE_ITC | (ss.ss_family == AF_INET6 ? MHD_USE_DUAL_STACK : 0),
			     0, NULL, NULL, handler, a,
			     MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
			     MHD_OPTION_NOTIFY_COMPLETED, completed, a,
			     MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,
			     MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)120,
			     MHD_OPTION_CONNECTION_LIMIT, (unsigned int)1024,
			     MHD_OPTION_END);
	if (!d)
		return -EADDRINUSE;
	a->httpd = d;
	if (!strcmp(a->cfg.mgmt_listen, "none"))
		return 0;
	err = agent_parse_hostport(a->cfg.mgmt_listen, &ss, &len);
	if (err)
		return err;
	{
		static const struct idn_tls plain = { .insecure = true };
		struct idn_http_srv srv = {
			.sa = (struct sockaddr *)&ss,
			.flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD |
				 (ss.ss_family == AF_INET6 ? MHD_USE_DUAL_STACK : 0),
			.handler = handler_mgmt,
			.cls = a,
			.completed = completed,
			.completed_cls = a,
			.timeout_s = 120,
			.conn_limit = 64,
			.tls = a->tls ? a->tls : &plain,
			.what = "idn-agent: management",
		};
		char e[256];

		d = idn_http_start(&srv, e, sizeof(e));
		if (!d) {
			pr_err("idn-agent: %s\n", e);
			return -EADDRINUSE;
		}
	}
	a->httpd_mgmt = d;
	return 0;
}

void http_stop(struct agent *a)
{
	if (a->httpd_mgmt)
		MHD_stop_daemon(a->httpd_mgmt);
	a->httpd_mgmt = NULL;
	if (a->httpd)
		MHD_stop_daemon(a->httpd);
	a->httpd = NULL;
	pd_cache_free(a);
}
