/* SPDX-License-Identifier: GPL-2.0 */
/*
 * etcd.h - a small client of etcd's v3 JSON gateway (libcurl + json-c):
 * the calls idnd's distributed mode needs (dist.c) and idn-agent's own node
 * lease (agent/ctlclient.c, which builds this file in). Keys and values are
 * bytes (base64 on the wire, done here). Functions return 0 or -errno;
 * etcd_err() says why. Not thread-safe: one struct etcd per thread.
 */
#ifndef __IDN_ETCD_H
#define __IDN_ETCD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <json-c/json.h>

struct etcd {
	char url[256];		/* http://HOST:PORT, no trailing slash: the one in use */
	void *curl;		/* CURL * */
	char err[256];
	char urls[512];		/* the endpoints, "URL[,URL...]" */
	int n_urls, cur;
	/* HTTP bytes (headers and bodies) this client sent and received */
	uint64_t tx_bytes, rx_bytes;
	/* etcd auth: the token of our last authenticate (etcd_auth()), "" = none yet */
	char token[512];
	uint64_t auths;		/* authenticate calls made (the first, and after expiry) */
};

struct etcd_kv {
	char *key;		/* NUL-terminated copies */
	char *val;
	size_t val_len;
	int64_t mod_rev, lease;
};

/* One op of a txn: put (val != NULL) or delete (val == NULL). */
struct etcd_op {
	const char *key;
	const void *val;
	size_t val_len;
	int64_t lease;
};

/*
 * url: "http[s]://HOST:PORT[,...]": several endpoints of one cluster; a
 * request that fails to reach one (connect, timeout) is tried on the
 * next, which is then kept. -EINVAL for a malformed list.
 */
int etcd_open(struct etcd *e, const char *url);
/*
 * Client TLS of every etcd client in the process (https:// endpoints): the
 * CA of etcd's certificate, our certificate and key for etcd's
 * --client-cert-auth (PEM file paths, kept by the caller; NULL: none).
 */
void etcd_tls(const char *ca, const char *cert, const char *key);
/*
 * etcd's own authentication (`etcdctl auth enable`) for every etcd client in
 * the process: user name and a file holding the password (its first line;
 * keep it 0600). Read here, once: -errno and *why on a missing, unreadable,
 * empty or over-long file or a bad name. Each client then authenticates
 * before its first request and again when etcd says its token is no longer
 * valid (simple tokens expire: --auth-token-ttl), and sends the token with
 * every request and watch. user NULL: none (the default).
 */
int etcd_auth(const char *user, const char *password_file, const char **why);
void etcd_close(struct etcd *e);
const char *etcd_err(const struct etcd *e);

int etcd_lease_grant(struct etcd *e, int ttl_s, int64_t *id);
/* -ENOENT when the lease is gone (expired or revoked). */
int etcd_lease_keepalive(struct etcd *e, int64_t id);
int etcd_lease_revoke(struct etcd *e, int64_t id);
int etcd_put(struct etcd *e, const char *key, const void *val, size_t len, int64_t lease);
int etcd_delete(struct etcd *e, const char *key);
/* All keys under prefix (with values unless keys_only); *rev: store revision. */
int etcd_range(struct etcd *e, const char *prefix, bool keys_only, struct etcd_kv **kvs,
	       int *n, int64_t *rev);
/* The same as it was at revision at (> 0); an error once compacted. */
int etcd_range_at(struct etcd *e, const char *prefix, bool keys_only, int64_t at,
		  struct etcd_kv **kvs, int *n, int64_t *rev);
void etcd_kvs_free(struct etcd_kv *kvs, int n);
/*
 * Txn: if cmp_key's value equals cmp_val (cmp_val NULL: the key does not
 * exist), apply ops; -ECANCELED when the compare failed.
 */
int etcd_txn(struct etcd *e, const char *cmp_key, const char *cmp_val,
	     const struct etcd_op *ops, int n_ops);

/*
 * Watch prefix from start_rev; cb gets every event (val NULL for a delete)
 * and, after the events of one response, a call with key NULL. Returns
 * when cb returns non-zero (that value), when *stop is set, or on error;
 * *last_rev: revision of the last event delivered.
 */
typedef int (*etcd_watch_cb)(void *arg, const char *key, const void *val, size_t len,
			     int64_t rev);
int etcd_watch(struct etcd *e, const char *prefix, int64_t start_rev, etcd_watch_cb cb,
	       void *arg, volatile int *stop, int64_t *last_rev);

#endif /* __IDN_ETCD_H */
