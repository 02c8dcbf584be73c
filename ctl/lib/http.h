/* SPDX-License-Identifier: GPL-2.0 */
/*
 * http.h - the control plane's HTTP transport, one place for idnd,
 * idnctl and idn-agent: libmicrohttpd servers and libcurl clients, with
 * mutual TLS from an operator's CA, certificate and key, and the role a
 * client certificate carries (docs/security.md, "Transport and roles").
 *
 * A server started with TLS asks every client for a certificate; the
 * handler asks idn_http_peer() who is calling (verified once per
 * connection: chain to the CA, validity dates, TLS client purpose) and
 * checks the role an endpoint needs. Plain HTTP only where the operator
 * said --insecure (struct idn_tls.insecure): every caller is then
 * "plain" with every role, as before issue 11.
 *
 * Roles come from the certificate subject's OU (one of the names below);
 * a node's certificate has CN "node-<ID>", the only node it may speak for.
 */
#ifndef __IDN_CTL_HTTP_H
#define __IDN_CTL_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <microhttpd.h>
#include <curl/curl.h>

enum idn_role {
	IDN_ROLE_NONE = 0,
	IDN_ROLE_READONLY,	/* OU=read-only, or the bearer token: /metrics, status */
	IDN_ROLE_ROUTER,	/* OU=router: reads registry and plans */
	IDN_ROLE_NODE,		/* OU=node, CN=node-ID: registers and heartbeats as ID */
	IDN_ROLE_CONTROLLER,	/* OU=controller: idnd itself (orders to agents) */
	IDN_ROLE_ADMIN,		/* OU=admin: every change (idnctl) */
	IDN_ROLE_PEER,		/* OU=peer, CN=its domain's name: another domain's idnd
				 * fetching this domain's summary (federation) */
	IDN_ROLE_PLAIN,		/* --insecure server: anyone, everything */
	IDN_ROLE__MAX,
};

#define IDN_ROLE_BIT(r)	(1u << (r))

/* TLS material of one program, server or client side. */
struct idn_tls {
	bool insecure;		/* plain HTTP, the operator's explicit choice */
	const char *ca;		/* PEM file: the CA peers must chain to */
	const char *cert;	/* PEM file: our certificate */
	const char *key;	/* PEM file: its private key */
	const char *token_file;	/* server: file holding the read-only bearer token */
	/* filled by idn_tls_load() */
	char *ca_pem, *cert_pem, *key_pem, *token;
};

/* Who called (the connection's verified certificate, the token, or plain). */
struct idn_peer {
	enum idn_role role;
	uint32_t node;		/* IDN_ROLE_NODE: the ID of its CN */
	char name[96];		/* principal: CN of the certificate, "token", "plain" */
	char why[160];		/* IDN_ROLE_NONE: why (no certificate, other CA, expired) */
};

const char *idn_role_name(enum idn_role r);
/* "admin" -> IDN_ROLE_ADMIN; IDN_ROLE_NONE when not a role name */
enum idn_role idn_role_parse(const char *s);

/*
 * Fill unset ca/cert/key from $IDN_CA, $IDN_CERT, $IDN_KEY and insecure
 * from $IDN_INSECURE=1 (idnctl; the daemons take flags only).
 */
void idn_tls_env(struct idn_tls *t);
/*
 * Check and read the configuration: either insecure, or all of ca, cert
 * and key (a server also reads the token file). 0, or -errno with a
 * message in err ("--cert: no such file", "--insecure or --ca/--cert/--key
 * needed").
 */
int idn_tls_load(struct idn_tls *t, bool server, char *err, size_t errlen);
void idn_tls_free(struct idn_tls *t);
static inline bool idn_tls_on(const struct idn_tls *t)
{
	return t && !t->insecure && t->cert_pem;
}

/* ---- server ------------------------------------------------------------- */

struct idn_http_srv {
	const struct sockaddr *sa;
	unsigned int flags;		/* MHD_USE_* besides the TLS flag */
	MHD_AccessHandlerCallback handler;
	void *cls;
	MHD_RequestCompletedCallback completed;
	void *completed_cls;
	unsigned int conn_limit, per_ip, timeout_s;
	size_t mem_limit;
	const struct idn_tls *tls;	/* not NULL; insecure: plain HTTP */
	const char *what;		/* "idnd API": log lines of failed handshakes */
};

/* Start a daemon; NULL with a message in err. */
struct MHD_Daemon *idn_http_start(const struct idn_http_srv *s, char *err, size_t errlen);

/*
 * The caller of this request. A TLS connection's certificate is verified
 * once and remembered for the connection; without a usable certificate an
 * "Authorization: Bearer" equal to the server's token gives read-only.
 * Never NULL.
 */
const struct idn_peer *idn_http_peer(struct MHD_Connection *c, const struct idn_tls *t);

static inline bool idn_peer_has(const struct idn_peer *p, unsigned int roles)
{
	return p->role == IDN_ROLE_PLAIN || (roles & IDN_ROLE_BIT(p->role));
}

/*
 * Log a refusal on stderr as "PREFIX: 403 ..." - every one up to 20 a
 * second, then one summary line a second (a flood stays a few lines).
 */
void idn_http_deny_log(const char *prefix, const struct idn_peer *p, const char *method,
		       const char *url, const char *need);

/* ---- client ------------------------------------------------------------- */

/*
 * Set up an easy handle for a request to @url: our certificate and key,
 * the CA that must sign the server's (host name checked as usual). An
 * http:// URL without t->insecure, or https:// without TLS material, is
 * refused with a message (-EPERM).
 */
int idn_http_client(CURL *c, const char *url, const struct idn_tls *t, char *err,
		    size_t errlen);

struct idn_http_buf {
	char *p;
	size_t len, max;	/* max: 0 -> 16 MiB */
};

/*
 * One request on @c (kept for keep-alive across calls): @method, @url,
 * JSON @body (NULL: none), @timeout_ms. The answer in @out (caller frees
 * out->p), the status in *code. 0, or -EIO with a message naming the
 * cause (a server certificate that does not verify, ours refused).
 */
int idn_http_request(CURL *c, const struct idn_tls *t, const char *method, const char *url,
		     const char *body, long timeout_ms, struct idn_http_buf *out, long *code,
		     char *err, size_t errlen);

#endif /* __IDN_CTL_HTTP_H */
