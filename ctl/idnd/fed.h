/* SPDX-License-Identifier: GPL-2.0 */
/*
 * fed.h - federation between domains (fed.c, docs/federation.md): peers
 * configured by the operator, signed summaries exported to them and
 * imported from them, remote candidates in the plans, usage per peer.
 * Everything here is called with D.lock held unless it says otherwise.
 */
#ifndef __IDN_IDND_FED_H
#define __IDN_IDND_FED_H

#include <stdbool.h>
#include <stdint.h>
#include <json-c/json.h>

#include "libidn.h"

#define IDND_MAX_PEERS		16
/* node-table slots of the peers' ingresses: the top IDND_MAX_PEERS ids */
#define IDND_PEER_NODE0		(IDN_MAX_NODES - IDND_MAX_PEERS)
#define IDND_PEER_NODE(i)	(IDN_MAX_NODES - 1 - (i))

struct d_node;
struct d_policy;
struct d_cap;
struct idn_plan;
struct idn_prom;

struct idnd_fed_opts {
	const char *name;	/* this domain's name in summaries (--fed-name) */
	const char *key;	/* its Ed25519 seed (--fed-key, idnctl cap keygen) */
	const char *ingress4;	/* where peers send its requests (--fed-ingress) */
	const char *cert, *tls_key;	/* client certificate to peers (OU peer) */
	long ms;		/* poll / export interval (--fed-ms) */
	long stale_ms;		/* a peer's summary older than this: gone (--fed-stale-ms) */
};

/* before the store is read: keys, options; 0 or -1 with err */
int idnd_fed_config(const struct idnd_fed_opts *o, char *err, size_t errlen);
/* after idnd_store_open(): tables, peers, exports, usage (D.lock not needed) */
int idnd_fed_load(void);
/*
 * Distributed mode (dist.c, on takeover): the peers and exports etcd holds
 * (JSON texts of fedconf/peers/ and fedconf/exports/) replace this
 * replica's; or, where etcd has none yet, this replica's are written there.
 */
void idnd_fed_conf_load(const char *const *peers, int n_peers, const char *const *exports,
			int n_exports);
void idnd_fed_conf_seed(void);
/* the import thread (not under D.lock): start / stop */
int idnd_fed_start(void);
void idnd_fed_stop(void);
/* node ids reserved for peers: a node may not register as one */
static inline bool idnd_fed_reserved(uint32_t id)
{
	return id >= IDND_PEER_NODE0 && id < IDN_MAX_NODES;
}
/*
 * The compiler (model.c plan_build): append the remote candidates of
 * capability c eligible under pol (NULL: the default plan) to pl; the
 * count appended. idnd_fed_any(): does any fresh peer offer label?
 */
int idnd_fed_cands(const struct d_cap *c, const struct d_policy *pol, struct idn_plan *pl);
bool idnd_fed_any(uint32_t label);
/*
 * API (api.c): /v1/peers, /v1/peers/NAME, /v1/fed/...; NULL: not one of
 * its paths. who: the caller's certificate CN (role peer), or NULL.
 */
bool idnd_fed_path(const char *url);
json_object *idnd_fed_api(const char *method, const char *url, const char *query_peer,
			  const char *who, bool peer_role, const char *body, size_t len,
			  unsigned int *code);
json_object *idnd_fed_status(void);
void idnd_fed_metrics(struct idn_prom *p);

#endif /* __IDN_IDND_FED_H */
