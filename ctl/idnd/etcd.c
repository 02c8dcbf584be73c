// SPDX-License-Identifier: GPL-2.0
/*
 * etcd.c - etcd v3 JSON gateway client (see etcd.h): base64 of keys and
 * values, POST /v3/lease/{grant,keepalive,revoke}, /v3/kv/{put,range,
 * deleterange,txn}, and the streaming /v3/watch (one JSON object per
 * line on one long-lived HTTP response). int64 fields come as strings and
 * false/zero fields are omitted by the gateway: absent means 0/false.
 * With etcd auth (etcd_auth()): POST /v3/auth/authenticate for a token,
 * sent as the Authorization header of every request.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <curl/curl.h>

#include "etcd.h"

#define ETCD_RESP_MAX	(64 << 20)

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static char *b64_enc(const void *data, size_t len)
{
	const unsigned char *p = data;
	char *out = malloc(4 * ((len + 2) / 3) + 1), *o = out;

	if (!out)
		return NULL;
	for (size_t i = 0; i < len; i += 3) {
		unsigned int v = p[i] << 16 | (i + 1 < len ? p[i + 1] << 8 : 0) |
				 (i + 2 < len ? p[i + 2] : 0);

		*o++ = b64[v >> 18 & 63];
		*o++ = b64[v >> 12 & 63];
		*o++ = i + 1 < len ? b64[v >> 6 & 63] : '=';
		*o++ = i + 2 < len ? b64[v & 63] : '=';
	}
	*o = 0;
	return out;
}

/* Decoded bytes, NUL-terminated (for text keys); NULL on bad input. */
static char *b64_dec(const char *s, size_t *len)
{
	size_t n = strlen(s), k = 0;
	char *out = malloc(n / 4 * 3 + 4);
	unsigned int v = 0;
	int bits = 0;

	if (!out)
		return NULL;
	for (size_t i = 0; i < n && s[i] != '='; i++) {
		const char *c = strchr(b64, s[i]);

		if (!c || !s[i]) {
			free(out);
			return NULL;
		}
		v = v << 6 | (unsigned int)(c - b64);
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			out[k++] = (char)(v >> bits & 0xff);
		}
	}
	out[k] = 0;
	if (len)
		*len = k;
	return out;
}

static int fail(struct etcd *e, int err, const char *fmt, const char *arg)
{
	snprintf(e->err, sizeof(e->err), fmt, arg);
	return err;
}

const char *etcd_err(const struct etcd *e)
{
	return e->err;
}

/* e->url = endpoint i of e->urls, without trailing '/' */
static int pick_url(struct etcd *e, int i)
{
	const char *p = e->urls;
	size_t n;

	for (; i > 0 && p; i--)
		if ((p = strchr(p, ',')))
			p++;
	if (!p)
		return -EINVAL;
	n = strcspn(p, ",");
	while (n && p[n - 1] == '/')
		n--;
	if (n >= sizeof(e->url) ||
	    !((n > 7 && !strncmp(p, "http://", 7)) || (n > 8 && !strncmp(p, "https://", 8))))
		return -EINVAL;
	memcpy(e->url, p, n);
	e->url[n] = 0;
	return 0;
}

/* the next endpoint: after a failed request */
static void next_url(struct etcd *e)
{
	if (e->n_urls < 2)
		return;
	e->cur = (e->cur + 1) % e->n_urls;
	pick_url(e, e->cur);
}

/* TLS material of every etcd client of the process (etcd_tls()), NULL: none */
static const char *tls_ca, *tls_cert, *tls_key;

void etcd_tls(const char *ca, const char *cert, const char *key)
{
	tls_ca = ca;
	tls_cert = cert;
	tls_key = key;
}

/* etcd auth of every etcd client of the process (etcd_auth()), user "" = none */
static char auth_user[128], auth_pass[256];

int etcd_auth(const char *user, const char *password_file, const char **why)
{
	char line[sizeof(auth_pass) + 2];
	size_t n;
	FILE *f;

	auth_user[0] = auth_pass[0] = 0;
	if (!user)
		return 0;
	if (!*user || strlen(user) >= sizeof(auth_user) || strpbrk(user, " \t\r\n:")) {
		*why = "bad etcd user name (1-127 characters, no blanks or ':')";
		return -EINVAL;
	}
	if (!password_file) {
		*why = "an etcd user needs a password file (--etcd-password-file)";
		return -EINVAL;
	}
	f = fopen(password_file, "re");
	if (!f) {
		*why = "cannot read the etcd password file";
		return -errno;
	}
	if (!fgets(line, sizeof(line), f))
		line[0] = 0;
	fclose(f);
	n = strcspn(line, "\r\n");
	if (!n || n >= sizeof(auth_pass)) {
		*why = n ? "the etcd password file's first line is over 255 bytes"
			 : "the etcd password file's first line is empty";
		return -EINVAL;
	}
	memcpy(auth_pass, line, n);
	auth_pass[n] = 0;
	strcpy(auth_user, user);
	return 0;
}

/* https endpoints: the CA etcd's certificate must chain to, ours for its client-cert-auth */
static void set_tls(CURL *c)
{
	if (tls_ca)
		curl_easy_setopt(c, CURLOPT_CAINFO, tls_ca);
	if (tls_cert)
		curl_easy_setopt(c, CURLOPT_SSLCERT, tls_cert);
	if (tls_key)
		curl_easy_setopt(c, CURLOPT_SSLKEY, tls_key);
}

int etcd_open(struct etcd *e, const char *url)
{
	memset(e, 0, sizeof(*e));
	if (strlen(url) >= sizeof(e->urls))
		return fail(e, -EINVAL, "etcd url too long: %.200s", url);
	strcpy(e->urls, url);
	e->n_urls = 1;
	for (const char *p = url; *p; p++)
		e->n_urls += *p == ',';
	for (int i = e->n_urls - 1; i >= 0; i--)
		if (pick_url(e, i))
			return fail(e, -EINVAL, "bad etcd url in \"%.200s\"", url);
	curl_global_init(CURL_GLOBAL_DEFAULT);
	e->curl = curl_easy_init();
	return e->curl ? 0 : fail(e, -ENOMEM, "%s", "curl_easy_init failed");
}

void etcd_close(struct etcd *e)
{
	if (e->curl)
		curl_easy_cleanup(e->curl);
	e->curl = NULL;
}

struct buf {
	char *p;
	size_t len;
};

static size_t on_data(char *d, size_t sz, size_t nm, void *arg)
{
	struct buf *b = arg;
	size_t n = sz * nm;
	char *np;

	if (b->len + n > ETCD_RESP_MAX)
		return 0;
	np = realloc(b->p, b->len + n + 1);
	if (!np)
		return 0;
	memcpy(np + b->len, d, n);
	b->p = np;
	b->len += n;
	b->p[b->len] = 0;
	return n;
}

/* what the last transfer sent (request line, headers, body) and received */
static void count_bytes(struct etcd *e)
{
	curl_off_t up = 0, down = 0;
	long req = 0, hdr = 0;

	curl_easy_getinfo(e->curl, CURLINFO_REQUEST_SIZE, &req);
	curl_easy_getinfo(e->curl, CURLINFO_SIZE_UPLOAD_T, &up);
	curl_easy_getinfo(e->curl, CURLINFO_HEADER_SIZE, &hdr);
	curl_easy_getinfo(e->curl, CURLINFO_SIZE_DOWNLOAD_T, &down);
	e->tx_bytes += (uint64_t)req + (uint64_t)up;
	e->rx_bytes += (uint64_t)hdr + (uint64_t)down;
}

static int call(struct etcd *e, const char *path, json_object *body, json_object **out);

/* the request headers: JSON, and our token when we have one */
static struct curl_slist *headers(const struct etcd *e)
{
	struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
	char a[sizeof(e->token) + 32];

	if (e->token[0]) {
		snprintf(a, sizeof(a), "Authorization: %s", e->token);
		h = curl_slist_append(h, a);
	}
	return h;
}

/* a token for auth_user; -EACCES when etcd refuses the name or password */
static int authenticate(struct etcd *e)
{
	json_object *b = json_object_new_object(), *o = NULL, *t;
	int rc;

	e->token[0] = 0;
	json_object_object_add(b, "name", json_object_new_string(auth_user));
	json_object_object_add(b, "password", json_object_new_string(auth_pass));
	rc = call(e, "/v3/auth/authenticate", b, &o);
	if (rc) {
		char why[128];

		snprintf(why, sizeof(why), "%.127s", e->err);
		if (rc == -EIO && strstr(why, "HTTP "))
			rc = -EACCES;	/* etcd answered: name or password refused */
		snprintf(e->err, sizeof(e->err), "etcd: authentication as user %.64s refused: %s",
			 auth_user, why);
		return rc;
	}
	if (!json_object_object_get_ex(o, "token", &t) ||
	    strlen(json_object_get_string(t)) >= sizeof(e->token) ||
	    !*json_object_get_string(t)) {
		/*
		 * etcd without auth answers an error ("authentication is not
		 * enabled", above); an answer with no usable token is refused
		 * too, rather than authenticating again before every request
		 */
		json_object_put(o);
		snprintf(e->err, sizeof(e->err), "etcd: authentication as user %.64s: the answer "
			 "carries no usable token", auth_user);
		return -EPROTO;
	}
	strcpy(e->token, json_object_get_string(t));
	e->auths++;
	json_object_put(o);
	return 0;
}

/* before a request or a watch: authenticate when configured and not yet done */
static int need_token(struct etcd *e)
{
	return auth_user[0] && !e->token[0] ? authenticate(e) : 0;
}

/*
 * An answer saying our token is not (or no longer) valid: etcd's gateway
 * maps Unauthenticated to HTTP 401 ("invalid auth token" once a simple
 * token expired, "user name is empty" without one).
 */
static bool token_refused(long code, const char *body)
{
	return code == 401 || (body && (strstr(body, "invalid auth token") ||
					strstr(body, "user name is empty")));
}

/*
 * One POST of body to path, *b: the answer's bytes, *code: its HTTP status.
 * An endpoint that cannot be reached: the next one, each at most once. A
 * request that timed out may have been applied: repeating it is harmless
 * here (puts and deletes are idempotent, txns compare, a second grant
 * leaves a lease nobody keeps alive, which expires).
 */
static int post(struct etcd *e, const char *path, const char *body, bool with_token,
		struct buf *b, long *code)
{
	struct curl_slist *h = with_token ? headers(e)
					  : curl_slist_append(NULL, "Content-Type: application/json");
	CURLcode rc = CURLE_OK;
	char url[512];

	*code = 0;
	for (int i = 0; i < (e->n_urls > 1 ? e->n_urls : 1); i++) {
		free(b->p);
		*b = (struct buf){};
		snprintf(url, sizeof(url), "%s%s", e->url, path);
		curl_easy_reset(e->curl);
		curl_easy_setopt(e->curl, CURLOPT_URL, url);
		curl_easy_setopt(e->curl, CURLOPT_HTTPHEADER, h);
		curl_easy_setopt(e->curl, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(e->curl, CURLOPT_WRITEFUNCTION, on_data);
		curl_easy_setopt(e->curl, CURLOPT_WRITEDATA, b);
		curl_easy_setopt(e->curl, CURLOPT_TIMEOUT_MS, 5000L);
		curl_easy_setopt(e->curl, CURLOPT_CONNECTTIMEOUT_MS, 2000L);
		curl_easy_setopt(e->curl, CURLOPT_NOSIGNAL, 1L);
		set_tls(e->curl);
		rc = curl_easy_perform(e->curl);
		count_bytes(e);
		if (rc == CURLE_OK)
			break;
		next_url(e);
	}
	curl_slist_free_all(h);
	if (rc != CURLE_OK)
		return fail(e, -EIO, "etcd: %s", curl_easy_strerror(rc));
	curl_easy_getinfo(e->curl, CURLINFO_RESPONSE_CODE, code);
	return 0;
}

/* POST body (consumed) to path; *out: parsed answer. */
static int call(struct etcd *e, const char *path, json_object *body, json_object **out)
{
	bool authing = !strcmp(path, "/v3/auth/authenticate");
	const char *js = json_object_to_json_string(body);
	struct buf b = {};
	long code;
	int err;

	*out = NULL;
	err = authing ? 0 : need_token(e);
	if (!err)
		err = post(e, path, js, !authing, &b, &code);
	if (!err && !authing && auth_user[0] && code != 200 && token_refused(code, b.p)) {
		/* our token expired (simple tokens do): a new one, then once more */
		err = authenticate(e);
		if (!err)
			err = post(e, path, js, true, &b, &code);
	}
	json_object_put(body);
	if (err) {
		free(b.p);
		return err;
	}
	*out = b.p ? json_tokener_parse(b.p) : NULL;
	if (code != 200 || !*out) {
		err = code == 403 || token_refused(code, b.p) ? -EACCES : -EIO;
		snprintf(e->err, sizeof(e->err), "etcd %s: HTTP %ld %.160s", path, code,
			 b.p ? b.p : "");
		free(b.p);
		json_object_put(*out);
		*out = NULL;
		return err;
	}
	free(b.p);
	return 0;
}

static void add_b64(json_object *o, const char *field, const void *data, size_t len)
{
	char *s = b64_enc(data, len);

	json_object_object_add(o, field, json_object_new_string(s ? s : ""));
	free(s);
}

static int64_t get_i64(json_object *o, const char *field)
{
	json_object *v;

	return json_object_object_get_ex(o, field, &v) ? json_object_get_int64(v) : 0;
}

int etcd_lease_grant(struct etcd *e, int ttl_s, int64_t *id)
{
	json_object *b = json_object_new_object(), *r;
	int err;

	json_object_object_add(b, "TTL", json_object_new_int(ttl_s));
	err = call(e, "/v3/lease/grant", b, &r);
	if (err)
		return err;
	*id = get_i64(r, "ID");
	json_object_put(r);
	return *id ? 0 : fail(e, -EIO, "%s", "etcd: lease grant without ID");
}

int etcd_lease_keepalive(struct etcd *e, int64_t id)
{
	json_object *b = json_object_new_object(), *r, *res;
	int err;
	int64_t ttl = 0;

	json_object_object_add(b, "ID", json_object_new_int64(id));
	err = call(e, "/v3/lease/keepalive", b, &r);
	if (err)
		return err;
	if (json_object_object_get_ex(r, "result", &res))
		ttl = get_i64(res, "TTL");
	json_object_put(r);
	return ttl > 0 ? 0 : fail(e, -ENOENT, "%s", "etcd: lease expired");
}

int etcd_lease_revoke(struct etcd *e, int64_t id)
{
	json_object *b = json_object_new_object(), *r;
	int err;

	json_object_object_add(b, "ID", json_object_new_int64(id));
	err = call(e, "/v3/lease/revoke", b, &r);
	json_object_put(r);
	return err;
}

static json_object *put_req(const char *key, const void *val, size_t len, int64_t lease)
{
	json_object *o = json_object_new_object();

	add_b64(o, "key", key, strlen(key));
	add_b64(o, "value", val, len);
	if (lease)
		json_object_object_add(o, "lease", json_object_new_int64(lease));
	return o;
}

int etcd_put(struct etcd *e, const char *key, const void *val, size_t len, int64_t lease)
{
	json_object *r;
	int err = call(e, "/v3/kv/put", put_req(key, val, len, lease), &r);

	json_object_put(r);
	return err;
}

int etcd_delete(struct etcd *e, const char *key)
{
	json_object *b = json_object_new_object(), *r;
	int err;

	add_b64(b, "key", key, strlen(key));
	err = call(e, "/v3/kv/deleterange", b, &r);
	json_object_put(r);
	return err;
}

/* range_end of a prefix: the prefix with its last byte + 1 */
static void add_prefix(json_object *o, const char *prefix)
{
	size_t n = strlen(prefix);
	char *end = strdup(prefix);

	add_b64(o, "key", prefix, n);
	if (end && n) {
		end[n - 1]++;
		add_b64(o, "range_end", end, n);
	}
	free(end);
}

static int parse_kv(json_object *kv, struct etcd_kv *out)
{
	json_object *k, *v;

	memset(out, 0, sizeof(*out));
	if (!json_object_object_get_ex(kv, "key", &k))
		return -EIO;
	out->key = b64_dec(json_object_get_string(k), NULL);
	out->val = json_object_object_get_ex(kv, "value", &v) ?
		   b64_dec(json_object_get_string(v), &out->val_len) : strdup("");
	out->mod_rev = get_i64(kv, "mod_revision");
	out->lease = get_i64(kv, "lease");
	return out->key && out->val ? 0 : -EIO;
}

void etcd_kvs_free(struct etcd_kv *kvs, int n)
{
	for (int i = 0; i < n; i++) {
		free(kvs[i].key);
		free(kvs[i].val);
	}
	free(kvs);
}

int etcd_range(struct etcd *e, const char *prefix, bool keys_only, struct etcd_kv **kvs,
	       int *n, int64_t *rev)
{
	return etcd_range_at(e, prefix, keys_only, 0, kvs, n, rev);
}

int etcd_range_at(struct etcd *e, const char *prefix, bool keys_only, int64_t at,
		  struct etcd_kv **kvs, int *n, int64_t *rev)
{
	json_object *b = json_object_new_object(), *r, *a, *hd;
	int err, cnt;

	add_prefix(b, prefix);
	if (keys_only)
		json_object_object_add(b, "keys_only", json_object_new_boolean(1));
	if (at > 0)
		json_object_object_add(b, "revision", json_object_new_int64(at));
	err = call(e, "/v3/kv/range", b, &r);
	if (err)
		return err;
	if (rev && json_object_object_get_ex(r, "header", &hd))
		*rev = get_i64(hd, "revision");
	cnt = json_object_object_get_ex(r, "kvs", &a) ? (int)json_object_array_length(a) : 0;
	*kvs = calloc(cnt + 1, sizeof(**kvs));
	if (!*kvs) {
		json_object_put(r);
		return -ENOMEM;
	}
	for (int i = 0; i < cnt; i++)
		if (parse_kv(json_object_array_get_idx(a, i), &(*kvs)[i])) {
			etcd_kvs_free(*kvs, i + 1);
			json_object_put(r);
			return fail(e, -EIO, "%s", "etcd: bad kv in range answer");
		}
	*n = cnt;
	json_object_put(r);
	return 0;
}

int etcd_txn(struct etcd *e, const char *cmp_key, const char *cmp_val,
	     const struct etcd_op *ops, int n_ops)
{
	json_object *b = json_object_new_object(), *cmp = json_object_new_array(), *c, *r, *v;
	json_object *succ = json_object_new_array();
	int err, ok;

	c = json_object_new_object();
	add_b64(c, "key", cmp_key, strlen(cmp_key));
	if (cmp_val) {
		json_object_object_add(c, "target", json_object_new_string("VALUE"));
		json_object_object_add(c, "result", json_object_new_string("EQUAL"));
		add_b64(c, "value", cmp_val, strlen(cmp_val));
	} else {
		json_object_object_add(c, "target", json_object_new_string("CREATE"));
		json_object_object_add(c, "result", json_object_new_string("EQUAL"));
		json_object_object_add(c, "create_revision", json_object_new_int64(0));
	}
	json_object_array_add(cmp, c);
	for (int i = 0; i < n_ops; i++) {
		json_object *op = json_object_new_object();

		if (ops[i].val) {
			json_object_object_add(op, "request_put",
					       put_req(ops[i].key, ops[i].val, ops[i].val_len,
						       ops[i].lease));
		} else {
			json_object *d = json_object_new_object();

			add_b64(d, "key", ops[i].key, strlen(ops[i].key));
			json_object_object_add(op, "request_delete_range", d);
		}
		json_object_array_add(succ, op);
	}
	json_object_object_add(b, "compare", cmp);
	json_object_object_add(b, "success", succ);
	err = call(e, "/v3/kv/txn", b, &r);
	if (err)
		return err;
	ok = json_object_object_get_ex(r, "succeeded", &v) && json_object_get_boolean(v);
	json_object_put(r);
	return ok ? 0 : fail(e, -ECANCELED, "%s", "etcd: txn compare failed");
}

struct watch {
	struct buf b;
	etcd_watch_cb cb;
	void *arg;
	int64_t last_rev;
	int ret;
	volatile int *stop;
	struct etcd *e;
};

/* One line of the watch stream: {"result": {"events": [...]}} */
static int watch_line(struct watch *w, const char *line)
{
	json_object *o = json_tokener_parse(line), *res, *evs, *err;
	int ret = 0;

	if (!o)
		return 0;
	if (json_object_object_get_ex(o, "error", &err)) {
		snprintf(w->e->err, sizeof(w->e->err), "etcd watch: %.200s",
			 json_object_to_json_string(err));
		if (token_refused(0, w->e->err))
			w->e->token[0] = 0;	/* the caller watches again: a new token */
		json_object_put(o);
		return -EIO;
	}
	if (json_object_object_get_ex(o, "result", &res)) {
		json_object *v;

		if (json_object_object_get_ex(res, "canceled", &v) && json_object_get_boolean(v)) {
			snprintf(w->e->err, sizeof(w->e->err), "etcd watch canceled (compacted %lld)",
				 (long long)get_i64(res, "compact_revision"));
			json_object_put(o);
			return -ESTALE;
		}
		if (json_object_object_get_ex(res, "events", &evs)) {
			for (size_t i = 0; i < json_object_array_length(evs) && !ret; i++) {
				json_object *ev = json_object_array_get_idx(evs, i), *kv, *t;
				struct etcd_kv x;
				bool del = json_object_object_get_ex(ev, "type", &t) &&
					   !strcmp(json_object_get_string(t), "DELETE");

				if (!json_object_object_get_ex(ev, "kv", &kv) || parse_kv(kv, &x))
					continue;
				ret = w->cb(w->arg, x.key, del ? NULL : x.val, x.val_len, x.mod_rev);
				w->last_rev = x.mod_rev;
				free(x.key);
				free(x.val);
			}
			if (!ret)
				ret = w->cb(w->arg, NULL, NULL, 0, w->last_rev);
		}
	}
	json_object_put(o);
	return ret;
}

static size_t on_watch(char *d, size_t sz, size_t nm, void *arg)
{
	struct watch *w = arg;
	size_t n = sz * nm;
	char *nl;

	if (!on_data(d, sz, nm, &w->b))
		return 0;
	while ((nl = memchr(w->b.p, '\n', w->b.len))) {
		*nl = 0;
		w->ret = watch_line(w, w->b.p);
		memmove(w->b.p, nl + 1, w->b.len - (nl + 1 - w->b.p) + 1);
		w->b.len -= nl + 1 - w->b.p;
		if (w->ret)
			return 0;
	}
	return n;
}

static int on_progress(void *arg, curl_off_t a, curl_off_t b, curl_off_t c, curl_off_t d)
{
	struct watch *w = arg;

	return w->stop && *w->stop;
}

int etcd_watch(struct etcd *e, const char *prefix, int64_t start_rev, etcd_watch_cb cb,
	       void *arg, volatile int *stop, int64_t *last_rev)
{
	json_object *b = json_object_new_object(), *cr = json_object_new_object();
	struct curl_slist *h;
	struct watch w = { .cb = cb, .arg = arg, .stop = stop, .e = e,
			   .last_rev = start_rev - 1 };
	char url[512];
	CURLcode rc;
	int err = need_token(e);

	if (err) {
		json_object_put(b);
		json_object_put(cr);
		*last_rev = w.last_rev;
		return err;
	}
	h = headers(e);
	add_prefix(cr, prefix);
	json_object_object_add(cr, "start_revision", json_object_new_int64(start_rev));
	json_object_object_add(b, "create_request", cr);
	snprintf(url, sizeof(url), "%s/v3/watch", e->url);
	curl_easy_reset(e->curl);
	curl_easy_setopt(e->curl, CURLOPT_URL, url);
	curl_easy_setopt(e->curl, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(e->curl, CURLOPT_POSTFIELDS, json_object_to_json_string(b));
	curl_easy_setopt(e->curl, CURLOPT_WRITEFUNCTION, on_watch);
	curl_easy_setopt(e->curl, CURLOPT_WRITEDATA, &w);
	curl_easy_setopt(e->curl, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(e->curl, CURLOPT_XFERINFOFUNCTION, on_progress);
	curl_easy_setopt(e->curl, CURLOPT_XFERINFODATA, &w);
	curl_easy_setopt(e->curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e->curl, CURLOPT_CONNECTTIMEOUT_MS, 2000L);
	set_tls(e->curl);
	rc = curl_easy_perform(e->curl);
	count_bytes(e);
	curl_slist_free_all(h);
	json_object_put(b);
	free(w.b.p);
	*last_rev = w.last_rev;
	if (w.ret)
		return w.ret;
	if (stop && *stop)
		return 0;
	next_url(e);	/* the caller watches again: from the next endpoint */
	snprintf(e->err, sizeof(e->err), "etcd watch ended: %s", curl_easy_strerror(rc));
	return -EIO;
}
