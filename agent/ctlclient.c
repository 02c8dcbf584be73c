// SPDX-License-Identifier: GPL-2.0
/*
 * ctlclient.c - the agent's side of idnd's resource broker (see
 * docs/controller.md): POST /v1/nodes with the resource profile R, then
 * POST /v1/nodes/ID/heartbeat with load, queue, outstanding prefill
 * tokens, KV use, resident capabilities and the state summary (state
 * descriptors S and the affinity self-check, state.c). A heartbeat answered 404
 * (the controller forgot the node) clears "registered", so the daemon
 * registers again.
 *
 * --controller may list several idnd replicas (URL,URL): a request that
 * cannot connect or is answered 503 (a follower) goes to the next one, and
 * that one is kept, so heartbeats reach whichever replica leads.
 *
 * With --etcd the agent also holds its node's own lease (struct ctl_lease,
 * below), through idnd's etcd client (ctl/idnd/etcd.c, built into the
 * agent): it grants a lease, writes nodes/ID (the profile R plus
 * "lease_owner": "agent") bound to it, keeps it alive every heartbeat
 * period, grants and writes again when etcd says the lease is gone (etcd
 * restarted, partition longer than the TTL, revoked), and revokes it on a
 * clean exit (the key goes at once). etcd unreachable: retried with
 * exponential backoff (250 ms doubling to 5 s; etcd.c tries every
 * endpoint of the list each time); the agent keeps running and
 * heartbeating idnd meanwhile.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <json-c/json.h>
#include <sodium.h>
#include <time.h>

#include "agent.h"
#include "../ctl/idnd/etcd.h"
#include "http.h"
#include "receipt.h"
#include "../ctl/idnd/ident.h"

/* the i-th URL of "URL,URL,...", without trailing '/'; 0 or -EINVAL */
static int nth_url(const char *list, int i, char *out, size_t len)
{
	const char *p = list, *end;
	size_t n;

	for (; i > 0 && p; i--) {
		p = strchr(p, ',');
		if (p)
			p++;
	}
	if (!p)
		return -EINVAL;
	end = strchr(p, ',');
	n = end ? (size_t)(end - p) : strlen(p);
	while (n && p[n - 1] == '/')
		n--;
	if (!n || n >= len)
		return -EINVAL;
	memcpy(out, p, n);
	out[n] = 0;
	return 0;
}

int ctl_base_url(const struct ctlclient *cc, char *out, size_t len)
{
	/* the heartbeat thread moves cur on when a replica fails */
	if (!nth_url(cc->base, __atomic_load_n(&cc->cur, __ATOMIC_RELAXED), out, len))
		return 0;
	return nth_url(cc->base, 0, out, len);
}

static int count_urls(const char *list)
{
	int n = 1;

	for (const char *p = list; *p; p++)
		n += *p == ',';
	return n;
}

int ctl_init(struct ctlclient *cc, const char *base)
{
	memset(cc, 0, sizeof(*cc));
	snprintf(cc->base, sizeof(cc->base), "%s", base);
	cc->n_urls = count_urls(cc->base);
	cc->curl = curl_easy_init();
	return cc->curl ? 0 : -ENOMEM;
}

void ctl_fini(struct ctlclient *cc)
{
	free(cc->resp);
	cc->resp = NULL;
	json_object_put(cc->enrol);
	json_object_put(cc->attest);
	cc->enrol = cc->attest = NULL;
	if (cc->curl)
		curl_easy_cleanup(cc->curl);
	cc->curl = NULL;
}

/* one POST over ctl/lib/http.c: our node certificate, idnd's checked against the CA */
static int post1(struct ctlclient *cc, const char *path, json_object *body)
{
	static const struct idn_tls plain = { .insecure = true };
	struct idn_http_buf out = { .max = 64 << 10 };
	char url[512], base[256];
	long code = 0;
	int e;

	if (nth_url(cc->base, cc->cur, base, sizeof(base)))
		base[0] = 0;
	snprintf(url, sizeof(url), "%s%s", base, path);
	e = idn_http_request(cc->curl, cc->tls ? cc->tls : &plain, "POST", url,
			     json_object_to_json_string_ext(body, JSON_C_TO_STRING_PLAIN), 1000,
			     &out, &code, cc->err, sizeof(cc->err));
	free(cc->resp);	/* kept for ctl_register(): the sealed telemetry key */
	cc->resp = out.p;
	if (e) {
		cc->failures++;
		cc->last_code = 0;
		return -EHOSTUNREACH;
	}
	cc->last_code = code;
	if (code >= 200 && code < 300)
		return 0;
	cc->failures++;
	return code == 404 ? -ENOENT : code >= 500 ? -EIO : -EINVAL;
}

/*
 * PATH?idn_key=..&idn_time=..&idn_nonce=..&idn_sig=..: Ed25519 over
 * ident.h's text (method, path, node, time, nonce, body), a fresh nonce
 * each time. Unsigned (path as is) without a key.
 */
static int sign_path(struct ctlclient *cc, const char *path, json_object *body, char *out,
		     size_t len)
{
	const char *b = json_object_to_json_string_ext(body, JSON_C_TO_STRING_PLAIN);
	char t[24], nonce[33], pk[65], sig[129], *text;
	uint8_t n[16], s[64];
	struct timespec ts;
	size_t tl;

	if (!cc->key) {
		snprintf(out, len, "%s", path);
		return 0;
	}
	clock_gettime(CLOCK_REALTIME, &ts);
	snprintf(t, sizeof(t), "%lld", (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000);
	randombytes_buf(n, sizeof(n));
	sodium_bin2hex(nonce, sizeof(nonce), n, sizeof(n));
	text = idn_sig_text("POST", path, cc->node, t, nonce, b, strlen(b), &tl);
	if (!text)
		return -ENOMEM;
	crypto_sign_detached(s, NULL, (uint8_t *)text, tl, cc->key->sk);
	free(text);
	sodium_bin2hex(sig, sizeof(sig), s, sizeof(s));
	sodium_bin2hex(pk, sizeof(pk), cc->key->pk, 32);
	if (snprintf(out, len, "%s?%s=%s&%s=%s&%s=%s&%s=%s", path, IDN_HDR_KEY, pk, IDN_HDR_TIME,
		     t, IDN_HDR_NONCE, nonce, IDN_HDR_SIG, sig) >= (int)len)
		return -ENAMETOOLONG;
	return 0;
}

/* to the replica in use; unreachable or a follower (503): the next one */
static int post(struct ctlclient *cc, const char *path, json_object *body)
{
	int err = -EHOSTUNREACH;
	char spath[512];

	for (int i = 0; i < (cc->n_urls > 0 ? cc->n_urls : 1); i++) {
		err = sign_path(cc, path, body, spath, sizeof(spath));
		if (err)
			break;
		err = post1(cc, spath, body);
		if (!(err == -EHOSTUNREACH || (err == -EIO && cc->last_code == 503)) ||
		    cc->n_urls < 2)
			break;
		/* atomic: the P/D path reads it from HTTP threads (pd.c) */
		__atomic_store_n(&cc->cur, (cc->cur + 1) % cc->n_urls, __ATOMIC_RELAXED);
	}
	return err;
}

int ctl_pull(struct ctlclient *cc, uint32_t node, uint64_t token, uint32_t lack,
	     json_object **answer)
{
	static const struct idn_tls plain = { .insecure = true };
	struct idn_http_buf out = { .max = 16 << 10 };
	json_object *body = json_object_new_object();
	char path[64], spath[512], url[768], base[256], tok[17], err[256];
	CURL *c;
	long code = 0;
	int e;

	*answer = NULL;
	if (!body)
		return -ENOMEM;
	snprintf(tok, sizeof(tok), "%016llx", (unsigned long long)token);
	json_object_object_add(body, "token", json_object_new_string(tok));
	json_object_object_add(body, "lack", json_object_new_int64(lack));
	snprintf(path, sizeof(path), "/v1/nodes/%u/pull", node);
	e = sign_path(cc, path, body, spath, sizeof(spath));
	if (!e)
		e = ctl_base_url(cc, base, sizeof(base));
	c = e ? NULL : curl_easy_init();
	if (!e && !c)
		e = -ENOMEM;
	if (!e) {
		snprintf(url, sizeof(url), "%s%s", base, spath);
		e = idn_http_request(c, cc->tls ? cc->tls : &plain, "POST", url,
				     json_object_to_json_string_ext(body, JSON_C_TO_STRING_PLAIN),
				     1000, &out, &code, err, sizeof(err)) ? -EHOSTUNREACH :
		    code == 200 ? 0 : code == 409 ? -EPERM : -EIO;
		curl_easy_cleanup(c);
	}
	if (!e && !(*answer = out.p ? json_tokener_parse(out.p) : NULL))
		e = -EPROTO;
	free(out.p);
	json_object_put(body);
	return e;
}

static json_object *read_json_file(const char *path, int *err)
{
	json_object *o = json_object_from_file(path);

	*err = o && json_object_is_type(o, json_type_object) ? 0 : -EINVAL;
	if (*err) {
		json_object_put(o);
		o = NULL;
	}
	return o;
}

int ctl_identity(struct ctlclient *cc, const struct rcpt_key *key, uint32_t node,
		 const char *enrol_file, const char *attest_file)
{
	int err = 0;

	cc->key = key;
	cc->node = node;
	if (enrol_file && *enrol_file)
		cc->enrol = read_json_file(enrol_file, &err);
	if (!err && attest_file && *attest_file)
		cc->attest = read_json_file(attest_file, &err);
	return err;
}

/* "telemetry_key": {"key_id", "sealed"} of idnd's answer, opened with the node key */
static void take_tele_key(struct ctlclient *cc)
{
	json_object *o = cc->resp ? json_tokener_parse(cc->resp) : NULL, *k, *v;
	uint8_t sealed[crypto_box_SEALBYTES + 16], xpk[32], xsk[32];
	const char *hex;
	size_t bl;

	if (!o || !cc->key || !json_object_object_get_ex(o, "telemetry_key", &k) ||
	    !json_object_object_get_ex(k, "sealed", &v) || !(hex = json_object_get_string(v)) ||
	    sodium_hex2bin(sealed, sizeof(sealed), hex, strlen(hex), NULL, &bl, NULL) ||
	    bl != sizeof(sealed) || !json_object_object_get_ex(k, "key_id", &v))
		goto out;
	if (crypto_sign_ed25519_pk_to_curve25519(xpk, cc->key->pk) ||
	    crypto_sign_ed25519_sk_to_curve25519(xsk, cc->key->sk))
		goto out;
	if (!crypto_box_seal_open(cc->tkey, sealed, sizeof(sealed), xpk, xsk)) {
		cc->tkey_id = json_object_get_int64(v);
		cc->tkey_new = true;
	}
	sodium_memzero(xsk, sizeof(xsk));
out:
	json_object_put(o);
}

int ctl_register(struct ctlclient *cc, json_object *r)
{
	int err;

	/* trust is the operator's or attestation's to give, never the node's to claim */
	json_object_object_del(r, "trust");
	json_object_object_del(r, "confidential");
	if (cc->enrol)
		json_object_object_add(r, "enrolment", json_object_get(cc->enrol));
	if (cc->attest)
		json_object_object_add(r, "attestation", json_object_get(cc->attest));
	err = post(cc, "/v1/nodes", r);
	if (!err)
		take_tele_key(cc);
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

/* ---- the node's own etcd lease ----------------------------------------- */

int ctl_lease_init(struct ctl_lease *cl, const char *urls, uint32_t domain, uint32_t node,
		   uint32_t ttl)
{
	char url[256];

	memset(cl, 0, sizeof(*cl));
	snprintf(cl->urls, sizeof(cl->urls), "%s", urls);
	cl->n_urls = count_urls(cl->urls);
	for (int i = 0; i < cl->n_urls; i++)
		if (nth_url(cl->urls, i, url, sizeof(url)) ||
		    (strncmp(url, "http://", 7) && strncmp(url, "https://", 8)) ||
		    !url[strncmp(url, "http://", 7) ? 8 : 7]) {
			snprintf(cl->err, sizeof(cl->err), "bad etcd URL in \"%.200s\"", urls);
			return -EINVAL;
		}
	snprintf(cl->key, sizeof(cl->key), "/idn/%u/nodes/%u", domain, node);
	cl->ttl = ttl;
	cl->etcd = calloc(1, sizeof(struct etcd));
	if (!cl->etcd)
		return -ENOMEM;
	/* several endpoints: etcd.c moves to the next one that answers */
	if (etcd_open(cl->etcd, cl->urls)) {
		snprintf(cl->err, sizeof(cl->err), "%s", etcd_err(cl->etcd));
		return -EINVAL;
	}
	return 0;
}

/* etcd unreachable (every endpoint) or failing: again after a longer pause */
static void lease_backoff(struct ctl_lease *cl, uint64_t now_ms)
{
	snprintf(cl->err, sizeof(cl->err), "%s", etcd_err(cl->etcd));
	cl->failures++;
	cl->backoff_ms = cl->backoff_ms ? cl->backoff_ms * 2 : 250;
	if (cl->backoff_ms > 5000)
		cl->backoff_ms = 5000;
	cl->next_try_ms = now_ms + cl->backoff_ms;
}

int ctl_lease_tick(struct ctl_lease *cl, json_object *profile, uint64_t now_ms)
{
	struct etcd *e = cl->etcd;
	json_object *o;
	const char *s;
	int err;

	if (!e || now_ms < cl->next_try_ms)
		return cl->lease && cl->key_put ? 0 : -EAGAIN;
	if (cl->lease && cl->key_put) {
		err = etcd_lease_keepalive(e, cl->lease);
		if (!err) {
			cl->keepalives++;
			cl->backoff_ms = 0;
			return 0;
		}
		if (err != -ENOENT) {	/* etcd away: the lease may still live */
			lease_backoff(cl, now_ms);
			return err;
		}
		snprintf(cl->err, sizeof(cl->err), "lease %llx expired", (long long)cl->lease);
		cl->lease = 0;	/* expired: a new one, and the key again */
	}
	if (!cl->lease) {
		cl->key_put = false;
		err = etcd_lease_grant(e, (int)cl->ttl, &cl->lease);
		if (err) {
			cl->lease = 0;
			lease_backoff(cl, now_ms);
			return err;
		}
		cl->grants++;
	}
	o = json_object_get(profile);
	json_object_object_add(o, "lease_owner", json_object_new_string("agent"));
	s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
	err = etcd_put(e, cl->key, s, strlen(s), cl->lease);
	json_object_object_del(o, "lease_owner");
	json_object_put(o);
	if (err) {
		/* the lease may have gone in between: granted again next time */
		if (etcd_lease_keepalive(e, cl->lease) == -ENOENT)
			cl->lease = 0;
		lease_backoff(cl, now_ms);
		return err;
	}
	cl->key_put = true;
	cl->backoff_ms = 0;
	return 0;
}

void ctl_lease_fini(struct ctl_lease *cl)
{
	if (!cl->etcd)
		return;
	/* revoking deletes the key: watchers and the leader see the node go */
	if (cl->lease)
		etcd_lease_revoke(cl->etcd, cl->lease);
	cl->lease = 0;
	etcd_close(cl->etcd);
	free(cl->etcd);
	cl->etcd = NULL;
}
