// SPDX-License-Identifier: GPL-2.0
/*
 * http.c - the control plane's HTTP transport (see http.h): TLS material,
 * libmicrohttpd servers with client certificates (GnuTLS, Debian's
 * libmicrohttpd's TLS library), the role of a connection's certificate,
 * and libcurl clients presenting ours.
 */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>

#include "http.h"
#include "log.h"

static const char *const role_names[IDN_ROLE__MAX] = {
	[IDN_ROLE_NONE] = "none",
	[IDN_ROLE_READONLY] = "read-only",
	[IDN_ROLE_ROUTER] = "router",
	[IDN_ROLE_NODE] = "node",
	[IDN_ROLE_CONTROLLER] = "controller",
	[IDN_ROLE_ADMIN] = "admin",
	[IDN_ROLE_PEER] = "peer",
	[IDN_ROLE_PLAIN] = "plain",
};

const char *idn_role_name(enum idn_role r)
{
	return r < IDN_ROLE__MAX ? role_names[r] : "?";
}

enum idn_role idn_role_parse(const char *s)
{
	for (int r = IDN_ROLE_READONLY; r <= IDN_ROLE_PEER; r++)
		if (!strcmp(s, role_names[r]))
			return r;
	return IDN_ROLE_NONE;
}

/* ---- TLS material ------------------------------------------------------- */

static int read_pem(const char *what, const char *path, char **out, char *err, size_t errlen)
{
	FILE *f = fopen(path, "r");
	char *b;
	size_t n;

	if (!f) {
		snprintf(err, errlen, "%s %s: %s", what, path, strerror(errno));
		return -errno;
	}
	b = malloc(1 << 20);
	n = b ? fread(b, 1, (1 << 20) - 1, f) : 0;
	fclose(f);
	if (!b || !n || n >= (1 << 20) - 1) {
		free(b);
		snprintf(err, errlen, "%s %s: %s", what, path, b ? "empty or over 1 MiB" :
			 "out of memory");
		return b ? -EINVAL : -ENOMEM;
	}
	b[n] = 0;
	*out = b;
	return 0;
}

void idn_tls_env(struct idn_tls *t)
{
	const char *v;

	if (!t->ca && (v = getenv("IDN_CA")) && *v)
		t->ca = v;
	if (!t->cert && (v = getenv("IDN_CERT")) && *v)
		t->cert = v;
	if (!t->key && (v = getenv("IDN_KEY")) && *v)
		t->key = v;
	if ((v = getenv("IDN_INSECURE")) && !strcmp(v, "1"))
		t->insecure = true;
}

int idn_tls_load(struct idn_tls *t, bool server, char *err, size_t errlen)
{
	int e;

	if (t->insecure) {
		if (t->cert || t->key || t->token_file) {
			snprintf(err, errlen, "--insecure (plain HTTP) with TLS material "
				 "(--cert/--key/--read-token): choose one");
			return -EINVAL;
		}
		return 0;
	}
	if (!t->ca || !t->cert || !t->key) {
		snprintf(err, errlen, "TLS needs --ca, --cert and --key (a CA, this program's "
			 "certificate and key; docs/security.md), or --insecure for plain HTTP");
		return -EINVAL;
	}
	e = read_pem("--ca", t->ca, &t->ca_pem, err, errlen);
	if (!e)
		e = read_pem("--cert", t->cert, &t->cert_pem, err, errlen);
	if (!e)
		e = read_pem("--key", t->key, &t->key_pem, err, errlen);
	if (!e && server && t->token_file) {
		size_t n;

		e = read_pem("--read-token", t->token_file, &t->token, err, errlen);
		for (n = e ? 0 : strlen(t->token); n && strchr(" \t\r\n", t->token[n - 1]); n--)
			t->token[n - 1] = 0;
		if (!e && n < 16) {
			snprintf(err, errlen, "--read-token %s: at least 16 characters expected",
				 t->token_file);
			e = -EINVAL;
		}
	}
	if (e)
		idn_tls_free(t);
	return e;
}

void idn_tls_free(struct idn_tls *t)
{
	free(t->ca_pem);
	free(t->cert_pem);
	free(t->key_pem);
	if (t->token)
		memset(t->token, 0, strlen(t->token));
	free(t->token);
	t->ca_pem = t->cert_pem = t->key_pem = t->token = NULL;
}

/* ---- server ------------------------------------------------------------- */

struct sock_ctx {
	bool checked;
	struct idn_peer peer;	/* what the certificate says (role NONE: why) */
	struct idn_peer token;	/* a request's bearer token (not cached) */
};

static void on_conn(void *cls, struct MHD_Connection *c, void **sock,
		    enum MHD_ConnectionNotificationCode toe)
{
	if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
		*sock = calloc(1, sizeof(struct sock_ctx));
	} else {
		free(*sock);
		*sock = NULL;
	}
}

/* libmicrohttpd's messages (failed TLS handshakes among them), prefixed */
static void mhd_log(void *cls, const char *fmt, va_list ap)
{
	char line[512];
	size_t n;

	vsnprintf(line, sizeof(line), fmt, ap);
	n = strlen(line);
	while (n && line[n - 1] == '\n')
		line[--n] = 0;
	pr_warn("%s: %s%s\n", (const char *)cls, line,
		strstr(line, "andshake") ? " (TLS handshake failed: a plain HTTP client on the "
		"TLS port, or one that does not trust our certificate)" : "");
}

struct MHD_Daemon *idn_http_start(const struct idn_http_srv *s, char *err, size_t errlen)
{
	struct MHD_OptionItem o[16];
	struct MHD_Daemon *d;
	bool tls = idn_tls_on(s->tls);
	int n = 0;

	if (!tls && !s->tls->insecure) {
		snprintf(err, errlen, "%s: no TLS material and not --insecure", s->what);
		return NULL;
	}
	o[n++] = (struct MHD_OptionItem){ MHD_OPTION_SOCK_ADDR, 0, (void *)s->sa };
	if (s->completed)
		o[n++] = (struct MHD_OptionItem){ MHD_OPTION_NOTIFY_COMPLETED,
						  (intptr_t)s->completed, s->completed_cls };
	if (s->conn_limit)
		o[n++] = (struct MHD_OptionItem){ MHD_OPTION_CONNECTION_LIMIT, s->conn_limit, NULL };
	if (s->per_ip)
		o[n++] = (struct MHD_OptionItem){ MHD_OPTION_PER_IP_CONNECTION_LIMIT, s->per_ip, NULL };
	if (s->timeout_s)
		o[n++] = (struct MHD_OptionItem){ MHD_OPTION_CONNECTION_TIMEOUT, s->timeout_s, NULL };
	if (s->mem_limit)
		o[n++] = (struct MHD_OptionItem){ MHD_OPTION_CONNECTION_MEMORY_LIMIT,
						  (intptr_t)s->mem_limit, NULL };
	if (tls) {
		o[n++] = (struct MHD_OptionItem){ MHD_OPTION_NOTIFY_CONNECTION,
						  (intptr_t)on_conn, NULL };
		o[n++] = (struct MHD_OptionItem){ MHD_OPTION_HTTPS_MEM_CERT, 0, s->tls->cert_pem };
		o[n++] = (struct MHD_OptionItem){ MHD_OPTION_HTTPS_MEM_KEY, 0, s->tls->key_pem };
		/* a trust list makes libmicrohttpd ask each client for its certificate */
		o[n++] = (struct MHD_OptionItem){ MHD_OPTION_HTTPS_MEM_TRUST, 0, s->tls->ca_pem };
	}
	o[n] = (struct MHD_OptionItem){ MHD_OPTION_END, 0, NULL };
	d = MHD_start_daemon(s->flags | MHD_USE_ERROR_LOG | (tls ? MHD_USE_TLS : 0), 0, NULL,
			     NULL, s->handler, s->cls,
			     /* first, or libmicrohttpd prints some with its own logger */
			     MHD_OPTION_EXTERNAL_LOGGER, mhd_log, (void *)s->what,
			     MHD_OPTION_ARRAY, o, MHD_OPTION_END);
	if (!d)
		snprintf(err, errlen, "%s: cannot start (address in use, or the certificate "
			 "or key not accepted)", s->what);
	return d;
}

/* An attribute of the subject ("" when absent). */
static void dn_get(gnutls_x509_crt_t crt, const char *oid, char *out, size_t n)
{
	size_t len = n;

	if (gnutls_x509_crt_get_dn_by_oid(crt, oid, 0, 0, out, &len) < 0)
		out[0] = 0;
}

/* Verify the connection's client certificate once: chain, dates, purpose. */
static void peer_check(struct MHD_Connection *c, struct idn_peer *p)
{
	const union MHD_ConnectionInfo *ci =
		MHD_get_connection_info(c, MHD_CONNECTION_INFO_GNUTLS_SESSION);
	gnutls_session_t s = ci ? ci->tls_session : NULL;
	gnutls_typed_vdata_st purpose = {
		.type = GNUTLS_DT_KEY_PURPOSE_OID,
		.data = (unsigned char *)GNUTLS_KP_TLS_WWW_CLIENT,
	};
	const gnutls_datum_t *chain;
	gnutls_x509_crt_t crt;
	unsigned int status = 0, n = 0;
	char ou[64], *end;
	int e;

	p->role = IDN_ROLE_NONE;
	snprintf(p->name, sizeof(p->name), "anonymous");
	if (!s) {
		snprintf(p->why, sizeof(p->why), "no TLS session");
		return;
	}
	chain = gnutls_certificate_get_peers(s, &n);
	if (!chain || !n) {
		snprintf(p->why, sizeof(p->why), "no client certificate");
		return;
	}
	if (gnutls_x509_crt_init(&crt) < 0)
		return (void)snprintf(p->why, sizeof(p->why), "out of memory");
	if (gnutls_x509_crt_import(crt, &chain[0], GNUTLS_X509_FMT_DER) < 0) {
		gnutls_x509_crt_deinit(crt);
		snprintf(p->why, sizeof(p->why), "client certificate unreadable");
		return;
	}
	dn_get(crt, GNUTLS_OID_X520_COMMON_NAME, p->name, sizeof(p->name));
	if (!p->name[0])
		snprintf(p->name, sizeof(p->name), "(no CN)");
	dn_get(crt, GNUTLS_OID_X520_ORGANIZATIONAL_UNIT_NAME, ou, sizeof(ou));
	gnutls_x509_crt_deinit(crt);
	e = gnutls_certificate_verify_peers(s, &purpose, 1, &status);
	if (e < 0 || status) {
		gnutls_datum_t txt = {};
		size_t l;

		/* the subject is what the client claims, not who it is */
		l = strlen(p->name);
		snprintf(p->name + l, sizeof(p->name) - l, " (unverified)");
		if (e >= 0 && gnutls_certificate_verification_status_print(
				status, GNUTLS_CRT_X509, &txt, 0) >= 0) {
			snprintf(p->why, sizeof(p->why), "client certificate refused: %s",
				 (char *)txt.data);
			gnutls_free(txt.data);
			for (l = strlen(p->why); l && p->why[l - 1] == ' '; l--)
				p->why[l - 1] = 0;
		} else {
			snprintf(p->why, sizeof(p->why), "client certificate refused: %s",
				 gnutls_strerror(e));
		}
		return;
	}
	p->role = idn_role_parse(ou);
	if (p->role == IDN_ROLE_NONE) {
		snprintf(p->why, sizeof(p->why), "certificate subject OU \"%s\" is no role "
			 "(admin, controller, node, router, read-only, peer)", ou);
		return;
	}
	if (p->role == IDN_ROLE_NODE) {
		unsigned long id = strncmp(p->name, "node-", 5) ? ~0UL :
				   strtoul(p->name + 5, &end, 10);

		if (id > UINT32_MAX || !p->name[5] || *end) {
			p->role = IDN_ROLE_NONE;
			snprintf(p->why, sizeof(p->why), "node certificate: CN \"node-ID\" "
				 "expected");
			return;
		}
		p->node = id;
	}
}

/* constant time: the token's length is not secret, its bytes are */
static bool token_eq(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	unsigned char d = la != lb;

	for (size_t i = 0; i < la && i < lb; i++)
		d |= a[i] ^ b[i];
	return !d;
}

const struct idn_peer *idn_http_peer(struct MHD_Connection *c, const struct idn_tls *t)
{
	static const struct idn_peer plain = { .role = IDN_ROLE_PLAIN, .name = "plain" };
	static const struct idn_peer lost = { .name = "anonymous", .why = "no connection state" };
	const union MHD_ConnectionInfo *ci;
	struct sock_ctx *sc;
	const char *auth;

	if (!idn_tls_on(t))
		return &plain;
	ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
	sc = ci ? ci->socket_context : NULL;
	if (!sc)
		return &lost;
	if (!sc->checked) {
		peer_check(c, &sc->peer);
		sc->checked = true;
	}
	if (sc->peer.role != IDN_ROLE_NONE || !t->token)
		return &sc->peer;
	auth = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization");
	if (auth && !strncmp(auth, "Bearer ", 7) && token_eq(auth + 7, t->token)) {
		sc->token = (struct idn_peer){ .role = IDN_ROLE_READONLY, .name = "token" };
		return &sc->token;
	}
	return &sc->peer;
}

void idn_http_deny_log(const char *prefix, const struct idn_peer *p, const char *method,
		       const char *url, const char *need)
{
	static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
	static time_t sec;
	static unsigned long n, quiet;
	time_t now = time(NULL);

	pthread_mutex_lock(&mu);
	if (now != sec) {
		if (quiet)
			pr_warn("%s: %lu more refusal(s) not logged in the last second\n",
				prefix, quiet);
		sec = now;
		n = quiet = 0;
	}
	if (++n <= 20) {
		if (p->role == IDN_ROLE_NONE)
			pr_warn("%s: 403 %s %.128s refused for %s: %s\n", prefix, method,
				url, p->name, p->why);
		else
			pr_warn("%s: 403 %s %.128s refused for %s (role %s): needs %s\n",
				prefix, method, url, p->name, idn_role_name(p->role), need);
	} else {
		quiet++;
	}
	pthread_mutex_unlock(&mu);
}

/* ---- client ------------------------------------------------------------- */

int idn_http_client(CURL *c, const char *url, const struct idn_tls *t, char *err,
		    size_t errlen)
{
	bool https = !strncmp(url, "https://", 8);

	if (!https && strncmp(url, "http://", 7)) {
		snprintf(err, errlen, "%s: http:// or https:// URL expected", url);
		return -EINVAL;
	}
	if (!https && !t->insecure) {
		snprintf(err, errlen, "%s: plain HTTP refused without --insecure "
			 "(use https:// with --ca, --cert and --key)", url);
		return -EPERM;
	}
	if (https && (!t->ca || !t->cert || !t->key)) {
		snprintf(err, errlen, "%s: no client certificate: --ca, --cert and --key "
			 "(or $IDN_CA, $IDN_CERT, $IDN_KEY) needed for https", url);
		return -EPERM;
	}
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, https ? "https" : "http");
	if (https) {
		curl_easy_setopt(c, CURLOPT_CAINFO, t->ca);
		curl_easy_setopt(c, CURLOPT_CAPATH, NULL);
		curl_easy_setopt(c, CURLOPT_SSLCERT, t->cert);
		curl_easy_setopt(c, CURLOPT_SSLKEY, t->key);
		curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L);
		curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L);
	}
	return 0;
}

static size_t on_data(char *d, size_t sz, size_t nm, void *arg)
{
	struct idn_http_buf *b = arg;
	size_t n = sz * nm, max = b->max ? b->max : 16u << 20;
	char *np = b->len + n > max ? NULL : realloc(b->p, b->len + n + 1);

	if (!np)
		return 0;
	memcpy(np + b->len, d, n);
	b->p = np;
	b->len += n;
	b->p[b->len] = 0;
	return n;
}

int idn_http_request(CURL *c, const struct idn_tls *t, const char *method, const char *url,
		     const char *body, long timeout_ms, struct idn_http_buf *out, long *code,
		     char *err, size_t errlen)
{
	char cerr[CURL_ERROR_SIZE] = "";
	struct curl_slist *h = NULL;
	CURLcode rc;
	int e;

	*code = 0;
	curl_easy_reset(c);	/* options only: the connection stays for the next call */
	e = idn_http_client(c, url, t, err, errlen);
	if (e)
		return e;
	if (body) {
		h = curl_slist_append(h, "Content-Type: application/json");
		curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
		if (strcmp(method, "POST"))
			curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
	} else if (strcmp(method, "GET")) {
		curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
	}
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, out);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, timeout_ms);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, timeout_ms >= 4000 ? 2000L : timeout_ms / 2);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, cerr);
	rc = curl_easy_perform(c);
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, code);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, NULL);
	curl_slist_free_all(h);
	if (rc == CURLE_OK)
		return 0;
	switch (rc) {
	case CURLE_PEER_FAILED_VERIFICATION:
		snprintf(err, errlen, "server certificate does not verify against --ca %s: %s",
			 t->ca, cerr[0] ? cerr : curl_easy_strerror(rc));
		break;
	case CURLE_SSL_CERTPROBLEM:
	case CURLE_SSL_CIPHER:
		snprintf(err, errlen, "our certificate or key (%s, %s) not usable: %s", t->cert,
			 t->key, cerr[0] ? cerr : curl_easy_strerror(rc));
		break;
	case CURLE_SSL_CACERT_BADFILE:
		snprintf(err, errlen, "--ca %s not usable: %s", t->ca,
			 cerr[0] ? cerr : curl_easy_strerror(rc));
		break;
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_RECV_ERROR:
	case CURLE_SEND_ERROR:
		snprintf(err, errlen, "%s%s", cerr[0] ? cerr : curl_easy_strerror(rc),
			 !strncmp(url, "https://", 8) ? " (TLS: is the server's certificate from "
			 "our CA, and ours accepted by it?)" : "");
		break;
	default:
		snprintf(err, errlen, "%s", cerr[0] ? cerr : curl_easy_strerror(rc));
	}
	return -EIO;
}
