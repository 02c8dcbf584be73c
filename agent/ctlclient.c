// SPDX-License-Identifier: GPL-2.0
/*
 * ctlclient.c - the agent's side of idnd's resource broker (see
 * docs/controller.md): POST /v1/nodes with the resource profile R, then
 * POST /v1/nodes/ID/heartbeat with load, queue, outstanding prefill
 * tokens, KV use, resident capabilities and the state summary (state
 * descriptors S and the affinity self-check, state.c). A heartbeat answered 404
 * (the controller forgot the node) clears "registered", so the daemon
 * registers again.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <curl/curl.h>
#include <json-c/json.h>

#include "agent.h"

static size_t sink(char *p, size_t sz, size_t n, void *u)
{
	return sz * n;
}

int ctl_init(struct ctlclient *cc, const char *base)
{
	memset(cc, 0, sizeof(*cc));
	snprintf(cc->base, sizeof(cc->base), "%s", base);
	/* strip one trailing '/' */
	if (cc->base[0] && cc->base[strlen(cc->base) - 1] == '/')
		cc->base[strlen(cc->base) - 1] = 0;
	cc->curl = curl_easy_init();
	return cc->curl ? 0 : -ENOMEM;
}

void ctl_fini(struct ctlclient *cc)
{
	if (cc->curl)
		curl_easy_cleanup(cc->curl);
	cc->curl = NULL;
}

static int post(struct ctlclient *cc, const char *path, json_object *body)
{
	struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
	char url[512];
	CURLcode rc;
	long code = 0;

	snprintf(url, sizeof(url), "%s%s", cc->base, path);
	curl_easy_reset(cc->curl);
	curl_easy_setopt(cc->curl, CURLOPT_URL, url);
	curl_easy_setopt(cc->curl, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(cc->curl, CURLOPT_POSTFIELDS,
			 json_object_to_json_string_ext(body, JSON_C_TO_STRING_PLAIN));
	curl_easy_setopt(cc->curl, CURLOPT_TIMEOUT_MS, 1000L);
	curl_easy_setopt(cc->curl, CURLOPT_CONNECTTIMEOUT_MS, 500L);
	curl_easy_setopt(cc->curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(cc->curl, CURLOPT_WRITEFUNCTION, sink);
	rc = curl_easy_perform(cc->curl);
	curl_slist_free_all(h);
	if (rc != CURLE_OK) {
		cc->failures++;
		cc->last_code = 0;
		return -EHOSTUNREACH;
	}
	curl_easy_getinfo(cc->curl, CURLINFO_RESPONSE_CODE, &code);
	cc->last_code = code;
	if (code >= 200 && code < 300)
		return 0;
	cc->failures++;
	return code == 404 ? -ENOENT : code >= 500 ? -EIO : -EINVAL;
}

int ctl_register(struct ctlclient *cc, json_object *r)
{
	int err = post(cc, "/v1/nodes", r);

	if (!err) {
		cc->registered = true;
		cc->registrations++;
	}
	return err;
}

int ctl_heartbeat(struct ctlclient *cc, uint32_t node, const struct eng_load *l,
		  json_object *resident, json_object *state)
{
	json_object *o = json_object_new_object();
	char path[64];
	int err;

	json_object_object_add(o, "load", json_object_new_int(l->load));
	json_object_object_add(o, "queue", json_object_new_int64(l->queue_depth));
	json_object_object_add(o, "pending_tokens", json_object_new_int64(l->pending_tokens));
	json_object_object_add(o, "kv_use", json_object_new_int(l->kv_use));
	if (resident)
		json_object_object_add(o, "resident", json_object_get(resident));
	if (state)
		json_object_object_add(o, "state", json_object_get(state));
	snprintf(path, sizeof(path), "/v1/nodes/%u/heartbeat", node);
	err = post(cc, path, o);
	json_object_put(o);
	if (!err)
		cc->heartbeats++;
	else if (err == -ENOENT)
		cc->registered = false;
	return err;
}
