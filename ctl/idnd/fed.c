// SPDX-License-Identifier: GPL-2.0
/*
 * fed.c - federation between domains (docs/federation.md).
 *
 * Each domain's idnd peers with the idnd of other domains over their APIs
 * (mutual TLS; a peer's certificate has the role "peer" and its domain's
 * name as CN). The operator configures each peer: its name, API URL,
 * Ed25519 public key, the domain number it has here (0..31, not this
 * router's home domain), the highest trust level its attestations are
 * believed up to, and the network cost to its ingress.
 *
 * Export: GET /v1/fed/summary by a peer returns this domain's summary for
 * that peer, signed with the domain key (ctl/fedsum.c): the capabilities
 * whose export scope names the peer (or every peer), that have an up,
 * placed node; per capability its regions (nodes, mean load), latency
 * class, the policy scope a remote request may have (privacy public or
 * tenant, locality any or plan, the trust levels the serving nodes meet)
 * and trust attestation (the lowest trust of its nodes, its publisher).
 * A peer's summary is signed at most once per --fed-ms; in between it gets
 * the same bytes (a bounded rate whatever it asks).
 *
 * Import: a thread fetches every peer's summary each --fed-ms, verifies
 * the signature with the peer's configured key and every field, checks
 * the domain name, a sequence number above the last one accepted and the
 * validity window; a summary that fails is refused (counted, logged, the
 * reason kept for idnctl peer show) and the last good one stays until it
 * goes stale (--fed-stale-ms after it was received, or its own validity).
 *
 * Plans: a peer is one entry of the router's node table (ids
 * IDND_PEER_NODE(i), the top 16; agents may not register those):
 * locator its ingress address, flagged WAN (J prices the request's bytes,
 * plan wan_ns_per_byte), its net cost, its domain number (a request whose
 * policy keeps it in the home domain never goes there: the dataplane's
 * scope check) and a trust level. The compiler appends it as a remote
 * candidate to the plans of every capability registered here that the
 * peer offers and whose policy class its summary admits. When a peer
 * withdraws a capability, or goes stale, the plans are recompiled at once
 * and a stale peer's entry goes DOWN (new flows avoid it at once).
 *
 * Usage per peer (for settlement): the router's per-node counters of the
 * peer's entry (new flows = requests, bytes forwarded) and the prompt
 * tokens the dataplane charged it, accumulated every tick and persisted.
 *
 * Tables: peers(name, body), fed_exports(cap, body), fed_usage(name,
 * requests, tokens, bytes).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <sodium.h>
#include <sqlite3.h>

#include "idnd.h"
#include "fed.h"
#include "fedsum.h"
#include "capsig.h"
#include "http.h"
#include "json_get.h"
#include "log.h"
#include "prom.h"

#define FED_MAX_EXPORTS	256
#define FED_SKEW_MS	5000	/* a summary issued this far in the future is refused */

struct d_peer {
	bool used;
	char name[64];
	char url[232];
	uint8_t pk[32];
	uint16_t domain;
	uint8_t trust_max;
	uint32_t net_us;
	/* live */
	bool have;		/* a summary accepted and not stale */
	struct fedsum sum;
	double got_at;		/* monotonic s */
	uint64_t last_seq;
	uint64_t fetched, accepted, refused, fetch_err, withdrawals, unchanged;
	char last_err[192];
	bool err_logged;
	char shape[2048];	/* what the plans depend on: recompile when it changes */
	/* export cache */
	char *sealed;		/* envelope text last signed for this peer */
	double sealed_at;
	uint64_t exported;
	/* usage: accumulated, and the counters at the last read */
	uint64_t u_req, u_tok, u_bytes;
	uint64_t base_flows, base_bytes;
	bool based;
	double u_saved;
};

struct d_export {
	uint32_t label;
	bool all;
	char peers[IDND_MAX_PEERS][64];
	int n;
};

static struct d_peer peers[IDND_MAX_PEERS];
static struct d_export exports[FED_MAX_EXPORTS];
static int n_exports;
static struct idnd_fed_opts F = { .ms = 200, .stale_ms = 2000 };
static uint8_t dom_sk[64], dom_pk[32];
static bool have_key;
static struct idn_tls fed_tls;
static pthread_t fed_thr;
static volatile int fed_stop;
static bool fed_running;
static uint64_t seq_last, sum_refused_total, sum_accepted_total, export_signed;
static bool full_warned;

static sqlite3 *db(void)
{
	return idnd_store_handle();
}

static double wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* ---- configuration ---- */

static int key_read(const char *path, char *err, size_t errlen)
{
	uint8_t seed[32];
	struct stat st;
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	ssize_t n;

	if (fd < 0) {
		snprintf(err, errlen, "--fed-key %s: %s", path, strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) || !S_ISREG(st.st_mode) || (st.st_mode & 077)) {
		close(fd);
		snprintf(err, errlen, "--fed-key %s: not a regular file readable by its owner "
			 "only (mode 0600)", path);
		return -1;
	}
	n = read(fd, seed, sizeof(seed));
	close(fd);
	if (n != sizeof(seed) || st.st_size != sizeof(seed)) {
		snprintf(err, errlen, "--fed-key %s: not a 32-byte Ed25519 seed (idnctl cap "
			 "keygen)", path);
		return -1;
	}
	crypto_sign_seed_keypair(dom_pk, dom_sk, seed);
	sodium_memzero(seed, sizeof(seed));
	have_key = true;
	return 0;
}

int idnd_fed_config(const struct idnd_fed_opts *o, char *err, size_t errlen)
{
	struct in_addr a;

	F = *o;
	if (!F.ms)
		F.ms = 200;
	if (!F.stale_ms)
		F.stale_ms = 2000;
	if (F.stale_ms < 2 * F.ms) {
		snprintf(err, errlen, "--fed-stale-ms %ld: at least twice --fed-ms (%ld)",
			 F.stale_ms, F.ms);
		return -1;
	}
	if (sodium_init() < 0) {
		snprintf(err, errlen, "libsodium: cannot initialise");
		return -1;
	}
	if (F.name && !capsig_name_ok(F.name)) {
		snprintf(err, errlen, "--fed-name \"%s\": 1..63 of A-Z a-z 0-9 . _ -", F.name);
		return -1;
	}
	if (F.ingress4 && (inet_pton(AF_INET, F.ingress4, &a) != 1 || !a.s_addr)) {
		snprintf(err, errlen, "--fed-ingress \"%s\": an IPv4 address", F.ingress4);
		return -1;
	}
	if (F.key && key_read(F.key, err, errlen))
		return -1;
	if ((F.name || F.ingress4 || F.key) && !(F.name && F.ingress4 && F.key)) {
		snprintf(err, errlen, "exporting a summary needs all of --fed-name, --fed-key "
			 "and --fed-ingress");
		return -1;
	}
	/* the client side to peers: our API material unless a peer certificate is given */
	fed_tls = (struct idn_tls){
		.insecure = idnd_tls.insecure, .ca = idnd_tls.ca,
		.cert = F.cert ? F.cert : idnd_tls.cert,
		.key = F.tls_key ? F.tls_key : idnd_tls.key,
	};
	if (idn_tls_load(&fed_tls, false, err, errlen))
		return -1;
	return 0;
}

/* ---- peers: JSON and store ---- */

static struct d_peer *peer_find(const char *name)
{
	for (int i = 0; i < IDND_MAX_PEERS; i++)
		if (peers[i].used && !strcmp(peers[i].name, name))
			return &peers[i];
	return NULL;
}

static int home_domain(void)
{
	struct idn_config cfg;

	if (D.have_maps && !idn_config_get(&D.maps, &cfg))
		return cfg.home_domain;
	return 0;
}

static json_object *peer_conf_json(const struct d_peer *p)
{
	json_object *o = json_object_new_object();
	char h[65];

	capsig_hex(h, p->pk, 32);
	json_object_object_add(o, "name", json_object_new_string(p->name));
	json_object_object_add(o, "url", json_object_new_string(p->url));
	json_object_object_add(o, "key", json_object_new_string(h));
	json_object_object_add(o, "domain", json_object_new_int(p->domain));
	json_object_object_add(o, "trust", json_object_new_int(p->trust_max));
	json_object_object_add(o, "net_us", json_object_new_int64(p->net_us));
	return o;
}

static bool url_ok(const char *u)
{
	size_t n = strlen(u);

	if (n < 10 || n >= sizeof(((struct d_peer *)0)->url))
		return false;
	if (strncmp(u, "https://", 8) && strncmp(u, "http://", 7))
		return false;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)u[i] <= 0x20 || (unsigned char)u[i] > 0x7e || u[i] == '?' ||
		    u[i] == '#')
			return false;
	return u[n - 1] != '/';
}

static int jint(json_object *o, const char *k, long lo, long hi, long def, long *v, char *err,
		size_t errlen)
{
	json_object *x;

	if (!json_object_object_get_ex(o, k, &x)) {
		if (def == LONG_MIN) {
			snprintf(err, errlen, "missing field \"%s\"", k);
			return -1;
		}
		*v = def;
		return 0;
	}
	if (!json_object_is_type(x, json_type_int) || json_object_get_int64(x) < lo ||
	    json_object_get_int64(x) > hi) {
		snprintf(err, errlen, "field \"%s\": an integer %ld..%ld", k, lo, hi);
		return -1;
	}
	*v = json_object_get_int64(x);
	return 0;
}

static int peer_from_json(json_object *o, struct d_peer *p, char *err, size_t errlen)
{
	static const char *const ok[] = { "name", "url", "key", "domain", "trust", "net_us",
					  NULL };
	const char *s;
	long v;

	memset(p, 0, sizeof(*p));
	if (!json_object_is_type(o, json_type_object)) {
		snprintf(err, errlen, "a JSON object expected");
		return -1;
	}
	json_object_object_foreach(o, k, x) {
		int i;

		(void)x;
		for (i = 0; ok[i] && strcmp(ok[i], k); i++)
			;
		if (!ok[i]) {
			snprintf(err, errlen, "peer: unknown field \"%.64s\"", k);
			return -1;
		}
	}
	s = idn_jstr(o, "name");
	if (!s || !capsig_name_ok(s)) {
		snprintf(err, errlen, "field \"name\": 1..63 of A-Z a-z 0-9 . _ -");
		return -1;
	}
	strcpy(p->name, s);
	s = idn_jstr(o, "url");
	if (!s || !url_ok(s)) {
		snprintf(err, errlen, "field \"url\": https://HOST:PORT of the peer's idnd API "
			 "(http:// with --insecure), no trailing /");
		return -1;
	}
	strcpy(p->url, s);
	s = idn_jstr(o, "key");
	if (!s || capsig_unhex(p->pk, 32, s)) {
		snprintf(err, errlen, "field \"key\": the peer domain's Ed25519 public key, 64 "
			 "lowercase hex characters");
		return -1;
	}
	if (jint(o, "domain", 0, 31, LONG_MIN, &v, err, errlen))
		return -1;
	p->domain = v;
	if (jint(o, "trust", 0, 7, 3, &v, err, errlen))
		return -1;
	p->trust_max = v;
	if (jint(o, "net_us", 0, 10000000, 20000, &v, err, errlen))
		return -1;
	p->net_us = v;
	p->used = true;
	return 0;
}

static int store_exec(const char *sql, const char *name, const char *body, uint32_t label)
{
	sqlite3_stmt *st;
	int rc;

	if (!db())
		return -EIO;
	if (sqlite3_prepare_v2(db(), sql, -1, &st, NULL) != SQLITE_OK)
		return -EIO;
	if (name)
		sqlite3_bind_text(st, 1, name, -1, SQLITE_TRANSIENT);
	else
		sqlite3_bind_int64(st, 1, label);
	if (body)
		sqlite3_bind_text(st, 2, body, -1, SQLITE_TRANSIENT);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : -EIO;
}

static void usage_save(struct d_peer *p)
{
	sqlite3_stmt *st;

	if (!db() || sqlite3_prepare_v2(db(), "INSERT OR REPLACE INTO fed_usage VALUES(?1, ?2, "
					"?3, ?4)", -1, &st, NULL) != SQLITE_OK)
		return;
	sqlite3_bind_text(st, 1, p->name, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int64(st, 2, p->u_req);
	sqlite3_bind_int64(st, 3, p->u_tok);
	sqlite3_bind_int64(st, 4, p->u_bytes);
	if (sqlite3_step(st) != SQLITE_DONE)
		pr_warn("FED: usage of peer %s not stored: %s\n", p->name, sqlite3_errmsg(db()));
	sqlite3_finalize(st);
}

static json_object *export_json(const struct d_export *e)
{
	json_object *o = json_object_new_object(), *a = json_object_new_array();

	json_object_object_add(o, "cap", json_object_new_int64(e->label));
	if (e->all)
		json_object_array_add(a, json_object_new_string("*"));
	for (int i = 0; i < e->n; i++)
		json_object_array_add(a, json_object_new_string(e->peers[i]));
	json_object_object_add(o, "peers", a);
	return o;
}

static int export_from_json(json_object *o, struct d_export *e, char *err, size_t errlen)
{
	json_object *a;
	long v;

	memset(e, 0, sizeof(*e));
	json_object_object_foreach(o, k, x) {
		(void)x;
		if (strcmp(k, "cap") && strcmp(k, "peers")) {
			snprintf(err, errlen, "export: unknown field \"%.64s\"", k);
			return -1;
		}
	}
	if (jint(o, "cap", 256, UINT32_MAX, LONG_MIN, &v, err, errlen))
		return -1;
	e->label = v;
	if (!json_object_object_get_ex(o, "peers", &a) || !json_object_is_type(a, json_type_array) ||
	    !json_object_array_length(a) || json_object_array_length(a) > IDND_MAX_PEERS) {
		snprintf(err, errlen, "field \"peers\": 1..%d peer names, or [\"*\"] for every "
			 "peer", IDND_MAX_PEERS);
		return -1;
	}
	for (size_t i = 0; i < json_object_array_length(a); i++) {
		json_object *x = json_object_array_get_idx(a, i);
		const char *s = json_object_is_type(x, json_type_string) ?
				json_object_get_string(x) : "";

		if (!strcmp(s, "*")) {
			e->all = true;
			continue;
		}
		if (!capsig_name_ok(s)) {
			snprintf(err, errlen, "field \"peers\": \"%.64s\" is no peer name", s);
			return -1;
		}
		strcpy(e->peers[e->n++], s);
	}
	return 0;
}

int idnd_fed_load(void)
{
	sqlite3_stmt *st;
	char err[256];
	int i = 0;

	if (sqlite3_exec(db(), "CREATE TABLE IF NOT EXISTS peers(name TEXT PRIMARY KEY, body TEXT "
			 "NOT NULL);"
			 "CREATE TABLE IF NOT EXISTS fed_exports(cap INTEGER PRIMARY KEY, body TEXT "
			 "NOT NULL);"
			 "CREATE TABLE IF NOT EXISTS fed_usage(name TEXT PRIMARY KEY, requests "
			 "INTEGER, tokens INTEGER, bytes INTEGER);", NULL, NULL, NULL) != SQLITE_OK)
		return -EIO;
	if (sqlite3_prepare_v2(db(), "SELECT body FROM peers ORDER BY name", -1, &st, NULL) !=
	    SQLITE_OK)
		return -EIO;
	while (sqlite3_step(st) == SQLITE_ROW && i < IDND_MAX_PEERS) {
		json_object *o = json_tokener_parse((const char *)sqlite3_column_text(st, 0));

		if (!o || peer_from_json(o, &peers[i], err, sizeof(err)))
			pr_warn("FED: a stored peer is invalid (%s): ignored\n", o ? err : "JSON");
		else
			i++;
		json_object_put(o);
	}
	sqlite3_finalize(st);
	if (sqlite3_prepare_v2(db(), "SELECT body FROM fed_exports ORDER BY cap", -1, &st, NULL) !=
	    SQLITE_OK)
		return -EIO;
	while (sqlite3_step(st) == SQLITE_ROW && n_exports < FED_MAX_EXPORTS) {
		json_object *o = json_tokener_parse((const char *)sqlite3_column_text(st, 0));

		if (!o || export_from_json(o, &exports[n_exports], err, sizeof(err)))
			pr_warn("FED: a stored export is invalid: ignored\n");
		else
			n_exports++;
		json_object_put(o);
	}
	sqlite3_finalize(st);
	if (sqlite3_prepare_v2(db(), "SELECT name, requests, tokens, bytes FROM fed_usage", -1,
			       &st, NULL) != SQLITE_OK)
		return -EIO;
	while (sqlite3_step(st) == SQLITE_ROW) {
		struct d_peer *p = peer_find((const char *)sqlite3_column_text(st, 0));

		if (!p)
			continue;
		p->u_req = sqlite3_column_int64(st, 1);
		p->u_tok = sqlite3_column_int64(st, 2);
		p->u_bytes = sqlite3_column_int64(st, 3);
	}
	sqlite3_finalize(st);
	return 0;
}

/*
 * ---- the distributed mode: peers and exports mirrored in etcd ----
 *
 * The leader writes each change to PREFIX fedconf/peers/NAME and
 * fedconf/exports/LABEL (dist.c); a replica that takes over replaces its
 * own with etcd's (idnd_fed_conf_load()), so federation outlives a
 * failover. A domain whose etcd has none yet (no fedconf/seeded) is
 * seeded from the leader's store (idnd_fed_conf_seed()).
 */
static void conf_put_peer(const struct d_peer *p, bool del)
{
	char sub[96];
	json_object *o = del ? NULL : peer_conf_json(p);

	snprintf(sub, sizeof(sub), "peers/%s", p->name);
	idnd_dist_fed_conf(sub, o ? json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN) :
			   NULL);
	json_object_put(o);
}

static json_object *export_json(const struct d_export *e);

static void conf_put_export(uint32_t label, const struct d_export *e)
{
	char sub[64];
	json_object *o = e ? export_json(e) : NULL;

	snprintf(sub, sizeof(sub), "exports/%u", label);
	idnd_dist_fed_conf(sub, o ? json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN) :
			   NULL);
	json_object_put(o);
}

void idnd_fed_conf_seed(void)
{
	for (int i = 0; i < IDND_MAX_PEERS; i++)
		if (peers[i].used)
			conf_put_peer(&peers[i], false);
	for (int i = 0; i < n_exports; i++)
		conf_put_export(exports[i].label, &exports[i]);
	idnd_dist_fed_conf("seeded", "1");
}

static void peer_push(int i, const struct idn_nstat *ns);
static void sealed_drop(void);
static int store_exec(const char *sql, const char *name, const char *body, uint32_t label);

void idnd_fed_conf_load(const char *const *pv, int np, const char *const *ev, int ne)
{
	struct d_peer *nw = calloc(IDND_MAX_PEERS, sizeof(*nw));
	int n = 0;
	char err[256];

	if (!nw)
		return;
	for (int k = 0; k < np; k++) {
		json_object *o = json_tokener_parse(pv[k]);

		if (n < IDND_MAX_PEERS && o && !peer_from_json(o, &nw[n], err, sizeof(err)))
			n++;
		else
			pr_warn("FED: a peer in etcd is invalid (%s): skipped\n",
				n < IDND_MAX_PEERS && o ? err : "JSON, or too many");
		json_object_put(o);
	}
	/* peers etcd does not have: gone, as by DELETE /v1/peers/NAME */
	for (int i = 0; i < IDND_MAX_PEERS; i++) {
		bool keep = false;

		for (int k = 0; k < n && peers[i].used && !keep; k++)
			keep = !strcmp(nw[k].name, peers[i].name);
		if (!peers[i].used || keep)
			continue;
		pr_info("FED: peer %s is not in etcd: removed\n", peers[i].name);
		store_exec("DELETE FROM peers WHERE name = ?1", peers[i].name, NULL, 0);
		free(peers[i].sealed);
		memset(&peers[i], 0, sizeof(peers[i]));
		peer_push(i, NULL);
	}
	for (int k = 0; k < n; k++) {
		struct d_peer *p = peer_find(nw[k].name);
		json_object *a = peer_conf_json(&nw[k]), *b = p ? peer_conf_json(p) : NULL;
		bool same = b && !strcmp(json_object_to_json_string(a), json_object_to_json_string(b));

		store_exec("INSERT OR REPLACE INTO peers VALUES(?1, ?2)", nw[k].name,
			   json_object_to_json_string(a), 0);
		json_object_put(a);
		json_object_put(b);
		if (same)
			continue;	/* its summary and state stay */
		if (!p) {
			for (int i = 0; i < IDND_MAX_PEERS && !p; i++)
				if (!peers[i].used)
					p = &peers[i];
			if (!p)
				break;
		} else {		/* changed: nothing held is trusted, usage stays */
			nw[k].u_req = p->u_req;
			nw[k].u_tok = p->u_tok;
			nw[k].u_bytes = p->u_bytes;
			free(p->sealed);
		}
		*p = nw[k];
		pr_info("FED: peer %s (domain %u, %s) from etcd\n", p->name, p->domain, p->url);
	}
	free(nw);
	n_exports = 0;
	store_exec("DELETE FROM fed_exports WHERE cap >= ?1", NULL, NULL, 0);
	for (int k = 0; k < ne && n_exports < FED_MAX_EXPORTS; k++) {
		json_object *o = json_tokener_parse(ev[k]);

		if (o && !export_from_json(o, &exports[n_exports], err, sizeof(err))) {
			store_exec("INSERT OR REPLACE INTO fed_exports VALUES(?1, ?2)", NULL, ev[k],
				   exports[n_exports].label);
			n_exports++;
		} else {
			pr_warn("FED: an export in etcd is invalid (%s): skipped\n", o ? err : "JSON");
		}
		json_object_put(o);
	}
	sealed_drop();
}

/* ---- export ---- */

/* what leaves the domain changed: every peer's next fetch gets a new summary */
static void sealed_drop(void)
{
	for (int i = 0; i < IDND_MAX_PEERS; i++)
		peers[i].sealed_at = -1e9;
}

static const struct d_export *export_find(uint32_t label)
{
	for (int i = 0; i < n_exports; i++)
		if (exports[i].label == label)
			return &exports[i];
	return NULL;
}

static bool export_to(const struct d_export *e, const char *peer)
{
	if (e->all)
		return true;
	for (int i = 0; i < e->n; i++)
		if (!strcmp(e->peers[i], peer))
			return true;
	return false;
}

/* What this domain offers peer `to` now (D.lock held); false: nothing to say */
static bool summary_build(const char *to, struct fedsum *s)
{
	double now = wall_ms();
	uint64_t seq = (uint64_t)now * 1000;

	memset(s, 0, sizeof(*s));
	snprintf(s->domain, sizeof(s->domain), "%s", F.name);
	/* increasing across restarts too: the wall clock in us, or one more */
	s->seq = seq > seq_last ? seq : seq_last + 1;
	seq_last = s->seq;
	s->issued_ms = (int64_t)now;
	s->valid_ms = F.stale_ms;
	snprintf(s->ingress4, sizeof(s->ingress4), "%s", F.ingress4);
	for (int i = 0; i < D.n_caps && s->n_caps < FEDSUM_MAX_CAPS; i++) {
		const struct d_cap *c = &D.caps[i];
		const struct d_export *e = export_find(c->label);
		struct fedsum_cap *x = &s->caps[s->n_caps];
		uint32_t nodes[FEDSUM_MAX_REGIONS] = {}, load[FEDSUM_MAX_REGIONS] = {};
		int trust = 8;

		if (!e || !export_to(e, to))
			continue;	/* its export scope keeps it in the domain */
		for (int p = 0; p < D.n_place; p++) {
			const struct d_node *dn;

			if (D.place[p].cap != c->label || D.place[p].node >= IDN_MAX_NODES)
				continue;
			dn = &D.nodes[D.place[p].node];
			if (!dn->used || !dn->up || dn->region >= FEDSUM_MAX_REGIONS)
				continue;
			nodes[dn->region]++;
			load[dn->region] += dn->load > 1000 ? 1000 : dn->load;
			if (dn->trust < trust)
				trust = dn->trust;
		}
		if (trust == 8)
			continue;	/* no up node: not offered (a withdrawal) */
		memset(x, 0, sizeof(*x));
		x->label = c->label;
		snprintf(x->name, sizeof(x->name), "%s", c->name);
		x->tier = c->tier;
		x->latency_us = c->latency_us ? c->latency_us : 1;
		x->lat = fedsum_lat_of(x->latency_us);
		for (int r = 0; r < FEDSUM_MAX_REGIONS; r++) {
			if (!nodes[r])
				continue;
			x->reg[x->n_reg].region = r;
			x->reg[x->n_reg].nodes = nodes[r] > FEDSUM_MAX_NODES ? FEDSUM_MAX_NODES :
						 nodes[r];
			x->reg[x->n_reg].load = load[r] / nodes[r];
			x->n_reg++;
		}
		/* what a remote request may ask: never confidential data (a peer's
		 * ingress is no confidential node), never "home only" */
		x->privacy = (1u << IDN_PRIV_PUBLIC) | (1u << IDN_PRIV_TENANT);
		x->locality = (1u << IDN_SCOPE_ANY) | (1u << IDN_SCOPE_PLAN);
		x->trust_mask = (uint8_t)((1u << (trust + 1)) - 1);
		if (c->sig) {
			x->privacy &= c->sig_privacy;
			x->locality &= c->sig_locality;
			x->trust_mask &= c->sig_trust;
			snprintf(x->publisher, sizeof(x->publisher), "%s", c->publisher);
		}
		if (!x->privacy || !x->locality || !x->trust_mask)
			continue;	/* its signed scope admits no remote request */
		x->trust = trust;
		s->n_caps++;
		if (s->n_caps == FEDSUM_MAX_CAPS && !full_warned) {
			bool more = false;

			for (int k = i + 1; k < D.n_caps && !more; k++)
				more = export_find(D.caps[k].label) &&
				       export_to(export_find(D.caps[k].label), to);
			if (!more)
				break;
			pr_warn("FED: a summary holds %d capabilities: exported labels after "
				"%u/%u are left out\n", FEDSUM_MAX_CAPS, IDN_CAP_CLASS(c->label),
				IDN_CAP_VARIANT(c->label));
			full_warned = true;
		}
	}
	return true;
}

/* The sealed summary for peer p (cached for --fed-ms). NULL: no key/ingress. */
static const char *summary_for(struct d_peer *p, char *err, size_t errlen)
{
	struct fedsum *s;
	json_object *env;
	char *payload;
	double now = idnd_now();

	if (!have_key || !F.name || !F.ingress4) {
		snprintf(err, errlen, "this domain exports no summary (idnd --fed-name, --fed-key, "
			 "--fed-ingress)");
		return NULL;
	}
	if (p->sealed && now - p->sealed_at < F.ms / 1000.0)
		return p->sealed;	/* the bounded rate: the same bytes again */
	s = calloc(1, sizeof(*s));
	if (!s) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	summary_build(p->name, s);
	payload = fedsum_encode(s, err, errlen);
	free(s);
	if (!payload)
		return NULL;
	env = fedsum_seal(payload, dom_sk);
	free(payload);
	if (!env) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	free(p->sealed);
	p->sealed = strdup(json_object_to_json_string_ext(env, JSON_C_TO_STRING_PLAIN));
	json_object_put(env);
	p->sealed_at = now;
	export_signed++;
	return p->sealed;
}

/* ---- import ---- */

/* what the plans and the peer's node entry depend on */
static void shape_of(const struct d_peer *p, char *buf, size_t len)
{
	size_t at = 0;

	at += snprintf(buf + at, len - at, "%d %s|", p->have, p->have ? p->sum.ingress4 : "");
	for (int i = 0; p->have && i < p->sum.n_caps && at < len; i++) {
		const struct fedsum_cap *c = &p->sum.caps[i];

		at += snprintf(buf + at, len - at, "%u:%u:%u:%u:%u:%u:%d;", c->label, c->trust,
			       c->privacy, c->locality, c->trust_mask, c->latency_us,
			       !!c->publisher[0]);
	}
}

static uint8_t peer_trust(const struct d_peer *p)
{
	uint8_t t = p->trust_max;

	for (int i = 0; p->have && i < p->sum.n_caps; i++)
		if (p->sum.caps[i].trust < t)
			t = p->sum.caps[i].trust;
	return t;
}

/*
 * The peer's node entry (its ingress, WAN, its domain; UP while fresh) in
 * *n; false: it has none (not configured, or never a summary).
 */
static bool peer_entry(const struct d_peer *p, struct idn_node *n)
{
	struct in_addr a;
	uint32_t load = 0;

	memset(n, 0, sizeof(*n));
	if (!p->used || !(p->have || p->sum.n_caps || p->last_seq))
		return false;
	n->flags = IDN_NODE_F_VALID | IDN_NODE_F_WAN;
	if (inet_pton(AF_INET, p->sum.ingress4, &a) == 1) {
		n->addr4 = a.s_addr;
		n->flags |= IDN_NODE_F_LOC4;
	}
	n->trust = peer_trust(p);
	n->domain = p->domain;
	n->health = p->have ? IDN_HEALTH_UP : IDN_HEALTH_DOWN;
	n->net_us = p->net_us;
	for (int k = 0; p->have && k < p->sum.n_caps; k++)
		for (int r = 0; r < p->sum.caps[k].n_reg; r++)
			if (p->sum.caps[k].reg[r].load > load)
				load = p->sum.caps[k].reg[r].load;
	n->load = load;
	/* tok_ns 0: the peer's queue is not this router's to price */
	return true;
}

/*
 * The peer's node entry, in this router's maps and, from the leader of
 * the distributed mode, in etcd for the watchers' routers (fednodes/ID,
 * written when it changes: dist.c). Entries before plans: the caller
 * compiles after.
 */
static void peer_push(int i, const struct idn_nstat *ns)
{
	struct d_peer *p = &peers[i];
	uint32_t id = IDND_PEER_NODE(i);
	struct idn_node n, old;
	bool has = peer_entry(p, &n);

	idnd_dist_fednode(id, p->name, has ? &n : NULL);
	if (!D.have_maps)
		return;
	if (!idn_node_get(&D.maps, id, &old) && (old.flags & IDN_NODE_F_VALID) && p->used) {
		/* the prompt tokens the dataplane charged it since the last tick */
		p->u_tok += old.charged_tokens;
	}
	/* charged_tokens starts again from 0: the peer's load comes from its summary */
	if (idn_node_put(&D.maps, id, &n))
		pr_warn("FED: node entry %u of peer %s: %s\n", id, p->name, idn_errmsg());
	/* requests and bytes: the router's counters of that entry */
	if (ns && p->used) {
		const struct idn_nstat *x = &ns[id];

		if (!p->based) {	/* counted from when the peer was configured */
			p->base_flows = x->flows;
			p->base_bytes = x->bytes;
			p->based = true;
		} else if (x->flows < p->base_flows || x->bytes < p->base_bytes) {
			p->base_flows = p->base_bytes = 0;	/* the counters were reset */
		}
		p->u_req += x->flows - p->base_flows;
		p->u_bytes += x->bytes - p->base_bytes;
		p->base_flows = x->flows;
		p->base_bytes = x->bytes;
	}
}

static void refuse(struct d_peer *p, const char *why)
{
	p->refused++;
	sum_refused_total++;
	snprintf(p->last_err, sizeof(p->last_err), "summary refused: %s", why);
	pr_warn("FED: peer %s: summary refused: %s\n", p->name, why);
}

/*
 * A summary (envelope text) from peer p: verify, check, keep. D.lock held.
 * 0 or -errno. polled: fetched by us - the peer's summary of the last
 * fetch again (it signs at most once per interval) is no news, not a
 * replay; a pushed one must be newer.
 */
static int summary_take(struct d_peer *p, const char *text, size_t len, bool polled,
			char *err, size_t errlen)
{
	struct fedsum *s = calloc(1, sizeof(*s));
	double now = wall_ms();
	int e;

	if (!s)
		return -ENOMEM;
	e = fedsum_open(text, len, p->pk, s, err, errlen);
	if (!e && polled && s->seq == p->last_seq && !strcmp(s->domain, p->name)) {
		free(s);	/* verified, the one we hold: its validity runs on */
		p->unchanged++;
		return 0;
	}
	if (!e && strcmp(s->domain, p->name)) {
		snprintf(err, errlen, "summary of domain \"%s\", the peer is \"%s\"", s->domain,
			 p->name);
		e = -EINVAL;
	}
	if (!e && s->seq <= p->last_seq) {
		snprintf(err, errlen, "sequence %llu is not above the last accepted (%llu): a "
			 "replay or an older summary", (unsigned long long)s->seq,
			 (unsigned long long)p->last_seq);
		e = -EINVAL;
	}
	if (!e && s->issued_ms > now + FED_SKEW_MS) {
		snprintf(err, errlen, "issued %.0f ms in the future", s->issued_ms - now);
		e = -EINVAL;
	}
	if (!e && s->issued_ms + s->valid_ms < now) {
		snprintf(err, errlen, "expired %.0f ms ago", now - s->issued_ms - s->valid_ms);
		e = -EINVAL;
	}
	if (e) {
		refuse(p, err);
		free(s);
		return e;
	}
	for (int i = 0; p->have && i < p->sum.n_caps; i++) {
		bool kept = false;

		for (int k = 0; k < s->n_caps && !kept; k++)
			kept = s->caps[k].label == p->sum.caps[i].label;
		if (!kept) {
			p->withdrawals++;
			pr_info("FED: peer %s withdrew capability %u/%u\n", p->name,
				IDN_CAP_CLASS(p->sum.caps[i].label),
				IDN_CAP_VARIANT(p->sum.caps[i].label));
		}
	}
	if (!p->have)
		pr_info("FED: peer %s: summary accepted (%d capabilities, ingress %s)\n", p->name,
			s->n_caps, s->ingress4);
	p->sum = *s;
	free(s);
	p->have = true;
	p->got_at = idnd_now();
	p->last_seq = p->sum.seq;
	p->accepted++;
	sum_accepted_total++;
	p->last_err[0] = 0;
	p->err_logged = false;
	return 0;
}

/* stale peers out, node entries, usage; recompile on a change (D.lock held) */
static void fed_apply(void)
{
	double now = idnd_now(), wall = wall_ms();
	struct idn_nstat *ns;
	bool changed = false, any = false;

	for (int i = 0; i < IDND_MAX_PEERS; i++)
		any |= peers[i].used;
	if (!any)
		return;	/* no peer: nothing to read or write */

	for (int i = 0; i < IDND_MAX_PEERS; i++) {
		struct d_peer *p = &peers[i];
		char shape[sizeof(p->shape)];

		if (!p->used)
			continue;
		if (p->have && (now - p->got_at > F.stale_ms / 1000.0 ||
				wall > p->sum.issued_ms + p->sum.valid_ms)) {
			p->have = false;
			pr_warn("FED: peer %s: no fresh summary for %.0f ms: its capabilities leave "
				"the plans\n", p->name, (now - p->got_at) * 1000);
		}
		shape_of(p, shape, sizeof(shape));
		if (strcmp(shape, p->shape)) {
			strcpy(p->shape, shape);
			changed = true;
		}
	}
	/* ORDER: entries first (a stale peer is DOWN at once), then the plans */
	ns = D.have_maps ? calloc(IDN_MAX_NODES, sizeof(*ns)) : NULL;
	if (ns && idn_nstats_read(&D.maps, ns)) {
		free(ns);
		ns = NULL;
	}
	for (int i = 0; i < IDND_MAX_PEERS; i++)
		if (peers[i].used)
			peer_push(i, ns);
	free(ns);
	if (changed) {
		if (idnd_compile())
			pr_warn("FED: plan commit: %s\n", idn_errmsg());
		else
			pr_info("FED: plans recompiled from the peers' summaries (generation %u)\n",
				D.generation);
	}
	for (int i = 0; i < IDND_MAX_PEERS; i++)
		if (peers[i].used && now - peers[i].u_saved > 5) {
			usage_save(&peers[i]);
			peers[i].u_saved = now;
		}
}

struct fetch {
	char name[64], url[256];
	char *text;
	size_t len;
	long code;
	char err[256];
};

static void *fed_main(void *arg)
{
	CURL *c = curl_easy_init();

	(void)arg;
	while (!fed_stop) {
		struct fetch f[IDND_MAX_PEERS];
		struct timespec ts;
		double t0 = idnd_now(), left;
		int n = 0;

		pthread_mutex_lock(&D.lock);
		for (int i = 0; i < IDND_MAX_PEERS; i++)
			if (peers[i].used) {
				memset(&f[n], 0, sizeof(f[n]));
				strcpy(f[n].name, peers[i].name);
				snprintf(f[n].url, sizeof(f[n].url), "%s/v1/fed/summary",
					 peers[i].url);
				n++;
			}
		pthread_mutex_unlock(&D.lock);
		/* not under the lock: a peer that does not answer holds only this thread */
		for (int i = 0; i < n && c; i++) {
			struct idn_http_buf b = { .max = 256 * 1024 };
			long tmo = F.stale_ms / 2 < 2000 ? F.stale_ms / 2 : 2000;

			if (idn_http_request(c, &fed_tls, "GET", f[i].url, NULL, tmo, &b, &f[i].code,
					     f[i].err, sizeof(f[i].err))) {
				free(b.p);
				continue;
			}
			f[i].text = b.p;
			f[i].len = b.len;
		}
		pthread_mutex_lock(&D.lock);
		for (int i = 0; i < n; i++) {
			struct d_peer *p = peer_find(f[i].name);
			char err[256];

			if (p) {
				p->fetched++;
				if (!f[i].text || f[i].code != 200) {
					p->fetch_err++;
					if (f[i].text && f[i].code)
						snprintf(p->last_err, sizeof(p->last_err), "HTTP %ld: "
							 "%.160s", f[i].code, f[i].text);
					else
						snprintf(p->last_err, sizeof(p->last_err), "%.180s",
							 f[i].err);
					if (!p->err_logged)
						pr_warn("FED: peer %s: %s\n", p->name, p->last_err);
					p->err_logged = true;
				} else {
					summary_take(p, f[i].text, f[i].len, true, err,
						     sizeof(err));
				}
			}
			free(f[i].text);
		}
		fed_apply();
		pthread_mutex_unlock(&D.lock);
		/* one cycle every --fed-ms, whatever the fetches took */
		left = F.ms / 1000.0 - (idnd_now() - t0);
		if (left < 0.005)
			left = 0.005;
		ts.tv_sec = (time_t)left;
		ts.tv_nsec = (long)((left - ts.tv_sec) * 1e9);
		nanosleep(&ts, NULL);
	}
	if (c)
		curl_easy_cleanup(c);
	return NULL;
}

int idnd_fed_start(void)
{
	fed_stop = 0;
	if (pthread_create(&fed_thr, NULL, fed_main, NULL))
		return -errno;
	fed_running = true;
	return 0;
}

void idnd_fed_stop(void)
{
	if (!fed_running)
		return;
	fed_stop = 1;
	pthread_join(fed_thr, NULL);
	fed_running = false;
	pthread_mutex_lock(&D.lock);
	for (int i = 0; i < IDND_MAX_PEERS; i++)
		if (peers[i].used)
			usage_save(&peers[i]);
	pthread_mutex_unlock(&D.lock);
	for (int i = 0; i < IDND_MAX_PEERS; i++)
		free(peers[i].sealed);
	idn_tls_free(&fed_tls);
	sodium_memzero(dom_sk, sizeof(dom_sk));
}

/* ---- the compiler's side ---- */

static const struct fedsum_cap *offer(const struct d_peer *p, uint32_t label)
{
	for (int i = 0; p->have && i < p->sum.n_caps; i++)
		if (p->sum.caps[i].label == label)
			return &p->sum.caps[i];
	return NULL;
}

bool idnd_fed_any(uint32_t label)
{
	for (int i = 0; i < IDND_MAX_PEERS; i++)
		if (peers[i].used && offer(&peers[i], label))
			return true;
	return false;
}

/* Why peer p may not serve capability x under pol (NULL: it may). */
static const char *remote_why(const struct d_peer *p, const struct fedsum_cap *x,
			      const struct d_policy *pol)
{
	if (!pol)
		return NULL;	/* the default plan: the dataplane checks the entry */
	if (pol->scope == IDN_SCOPE_HOME)
		return "the policy keeps requests in the home domain";
	if (!(x->privacy & (1u << (pol->privacy & 3))) || pol->privacy >= IDN_PRIV_CONFIDENTIAL)
		return "the policy's privacy level may not leave the domain";
	if (!(x->locality & (1u << (pol->scope % 3))))
		return "the policy's locality is outside the peer's scope";
	if (!(x->trust_mask & (1u << (pol->min_trust & 7))) || x->trust < pol->min_trust ||
	    p->trust_max < pol->min_trust)
		return "the peer's attested trust is below the policy's minimum";
	if (pol->domain_mask && (p->domain >= 32 || !(pol->domain_mask & (1u << p->domain))))
		return "the peer's domain is not allowed by the policy";
	if (pol->require_signed && !x->publisher[0])
		return "the policy requires a signed capability";
	return NULL;
}

int idnd_fed_cands(const struct d_cap *c, const struct d_policy *pol, struct idn_plan *pl)
{
	int n = 0;

	for (int i = 0; i < IDND_MAX_PEERS && pl->n_cand < IDN_MAX_CAND; i++) {
		const struct d_peer *p = &peers[i];
		const struct fedsum_cap *x = p->used ? offer(p, c->label) : NULL;
		struct idn_cand *cd;

		if (!x || remote_why(p, x, pol))
			continue;
		cd = &pl->cand[pl->n_cand++];
		cd->node = IDND_PEER_NODE(i);
		cd->exec_us = x->latency_us;
		cd->variant = IDN_CAP_VARIANT(c->label);
		n++;
	}
	return n;
}

/* ---- API ---- */

bool idnd_fed_path(const char *url)
{
	return !strcmp(url, "/v1/peers") || !strncmp(url, "/v1/peers/", 10) ||
	       !strcmp(url, "/v1/fed") || !strncmp(url, "/v1/fed/", 8);
}

static json_object *err_json(unsigned int *code, unsigned int c, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static json_object *err_json(unsigned int *code, unsigned int c, const char *fmt, ...)
{
	char b[384];
	va_list ap;
	json_object *o = json_object_new_object();

	va_start(ap, fmt);
	vsnprintf(b, sizeof(b), fmt, ap);
	va_end(ap);
	json_object_object_add(o, "error", json_object_new_string(b));
	*code = c;
	return o;
}

/*
 * Each peer's usage: this idnd's own count (its router's counters) plus,
 * in the distributed mode, the records the etcd-fed routers write
 * (/idn/usage/DOMAIN/ROUTER/PEER); routers[i]: those records (detail only).
 */
struct usage_sum {
	uint64_t req[IDND_MAX_PEERS], tok[IDND_MAX_PEERS], bytes[IDND_MAX_PEERS];
	json_object *routers[IDND_MAX_PEERS];
};

static void usage_add(void *arg, const char *router, const char *peer, uint64_t r, uint64_t t,
		      uint64_t b)
{
	struct usage_sum *u = arg;
	const struct d_peer *p = peer_find(peer);
	int i = p ? (int)(p - peers) : -1;
	json_object *o;

	if (i < 0)
		return;	/* a record of a peer no longer configured */
	u->req[i] += r;
	u->tok[i] += t;
	u->bytes[i] += b;
	if (!u->routers[i])
		return;
	o = json_object_new_object();
	json_object_object_add(o, "router", json_object_new_string(router));
	json_object_object_add(o, "requests", json_object_new_int64(r));
	json_object_object_add(o, "tokens", json_object_new_int64(t));
	json_object_object_add(o, "bytes", json_object_new_int64(b));
	json_object_array_add(u->routers[i], o);
}

static void usage_sum(struct usage_sum *u, bool detail)
{
	static bool warned;

	memset(u, 0, sizeof(*u));
	for (int i = 0; i < IDND_MAX_PEERS; i++) {
		if (!peers[i].used)
			continue;
		u->req[i] = peers[i].u_req;
		u->tok[i] = peers[i].u_tok;
		u->bytes[i] = peers[i].u_bytes;
		if (detail)
			u->routers[i] = json_object_new_array();
	}
	if (idnd_dist_fed_usage(usage_add, u) < 0 && !warned) {
		pr_warn("FED: the routers' usage records in etcd: %s\n", idn_errmsg());
		warned = true;
	}
}

static json_object *peer_json(int i)
{
	const struct d_peer *p = &peers[i];
	json_object *o = peer_conf_json(p), *u = json_object_new_object();
	double now = idnd_now();

	json_object_object_add(o, "node", json_object_new_int(IDND_PEER_NODE(i)));
	json_object_object_add(o, "state", json_object_new_string(
		p->have ? "fresh" : p->last_seq ? "stale" : "never"));
	json_object_object_add(o, "age_ms", p->last_seq ?
			       json_object_new_int64((int64_t)((now - p->got_at) * 1000)) : NULL);
	json_object_object_add(o, "caps", json_object_new_int(p->have ? p->sum.n_caps : 0));
	json_object_object_add(o, "ingress4", p->last_seq ?
			       json_object_new_string(p->sum.ingress4) : NULL);
	json_object_object_add(o, "seq", json_object_new_int64(p->last_seq));
	json_object_object_add(o, "fetched", json_object_new_int64(p->fetched));
	json_object_object_add(o, "accepted", json_object_new_int64(p->accepted));
	json_object_object_add(o, "unchanged", json_object_new_int64(p->unchanged));
	json_object_object_add(o, "refused", json_object_new_int64(p->refused));
	json_object_object_add(o, "fetch_errors", json_object_new_int64(p->fetch_err));
	json_object_object_add(o, "withdrawals", json_object_new_int64(p->withdrawals));
	json_object_object_add(o, "exported", json_object_new_int64(p->exported));
	json_object_object_add(o, "last_error", p->last_err[0] ?
			       json_object_new_string(p->last_err) : NULL);
	{
		struct usage_sum us;

		usage_sum(&us, false);
		json_object_object_add(u, "requests", json_object_new_int64(us.req[i]));
		json_object_object_add(u, "tokens", json_object_new_int64(us.tok[i]));
		json_object_object_add(u, "bytes", json_object_new_int64(us.bytes[i]));
	}
	json_object_object_add(o, "usage", u);
	return o;
}

static int peer_index(const char *name)
{
	const struct d_peer *p = peer_find(name);

	return p ? (int)(p - peers) : -1;
}

static json_object *imported_json(void)
{
	json_object *a = json_object_new_array();

	for (int i = 0; i < IDND_MAX_PEERS; i++) {
		json_object *o, *s;

		if (!peers[i].used || !peers[i].last_seq)
			continue;
		o = json_object_new_object();
		json_object_object_add(o, "peer", json_object_new_string(peers[i].name));
		json_object_object_add(o, "node", json_object_new_int(IDND_PEER_NODE(i)));
		json_object_object_add(o, "domain", json_object_new_int(peers[i].domain));
		json_object_object_add(o, "fresh", json_object_new_boolean(peers[i].have));
		json_object_object_add(o, "age_ms", json_object_new_int64(
			(int64_t)((idnd_now() - peers[i].got_at) * 1000)));
		s = fedsum_to_json(&peers[i].sum);
		json_object_object_add(o, "summary", s);
		json_object_array_add(a, o);
	}
	return a;
}

static json_object *exported_json(void)
{
	json_object *o = json_object_new_object(), *a = json_object_new_array(),
		    *sums = json_object_new_array();
	char h[65];

	json_object_object_add(o, "domain", F.name ? json_object_new_string(F.name) : NULL);
	json_object_object_add(o, "ingress4", F.ingress4 ? json_object_new_string(F.ingress4) :
			       NULL);
	if (have_key)
		capsig_hex(h, dom_pk, 32);
	json_object_object_add(o, "key", have_key ? json_object_new_string(h) : NULL);
	json_object_object_add(o, "interval_ms", json_object_new_int64(F.ms));
	json_object_object_add(o, "valid_ms", json_object_new_int64(F.stale_ms));
	for (int i = 0; i < n_exports; i++)
		json_object_array_add(a, export_json(&exports[i]));
	json_object_object_add(o, "exports", a);
	/* what each peer would get now (built fresh, not signed, not counted) */
	for (int i = 0; have_key && F.name && F.ingress4 && i < IDND_MAX_PEERS; i++) {
		struct fedsum *s;
		json_object *x;
		uint64_t keep = seq_last;

		if (!peers[i].used || !(s = calloc(1, sizeof(*s))))
			continue;
		summary_build(peers[i].name, s);
		seq_last = keep;
		x = json_object_new_object();
		json_object_object_add(x, "peer", json_object_new_string(peers[i].name));
		json_object_object_add(x, "signed", json_object_new_int64(peers[i].exported));
		json_object_object_add(x, "summary", fedsum_to_json(s));
		json_object_array_add(sums, x);
		free(s);
	}
	json_object_object_add(o, "summaries", sums);
	return o;
}

static json_object *parse_body(const char *body, size_t len)
{
	json_object *o = body && len ? json_tokener_parse(body) : NULL;

	if (o && !json_object_is_type(o, json_type_object)) {
		json_object_put(o);
		o = NULL;
	}
	return o;
}

json_object *idnd_fed_api(const char *method, const char *url, const char *query_peer,
			  const char *who, bool peer_role, const char *body, size_t len,
			  unsigned int *code)
{
	bool get = !strcmp(method, "GET"), post = !strcmp(method, "POST"),
	     del = !strcmp(method, "DELETE");
	char err[320];
	json_object *o, *a;

	*code = 200;
	/* a peer's own endpoint: its summary (GET), or one it pushes (POST) */
	if (!strcmp(url, "/v1/fed/summary")) {
		const char *name = peer_role ? who : query_peer;
		struct d_peer *p = name ? peer_find(name) : NULL;
		const char *text;

		if (!name)
			return err_json(code, 400, "which peer: the caller's certificate (role "
					"peer), or ?peer=NAME");
		if (!p)
			return err_json(code, 403, "\"%.64s\" is not a configured peer", name);
		if (post) {
			if (!body || !len)
				return err_json(code, 400, "a summary envelope is required");
			p->fetched++;
			if (summary_take(p, body, len, false, err, sizeof(err)))
				return err_json(code, 422, "summary refused: %s", err);
			fed_apply();
			return json_object_new_object();
		}
		if (!get)
			return err_json(code, 405, "method %s not allowed on %s", method, url);
		text = summary_for(p, err, sizeof(err));
		if (!text)
			return err_json(code, 503, "%s", err);
		if (peer_role)
			p->exported++;
		o = json_tokener_parse(text);
		return o ? o : err_json(code, 500, "summary encoding");
	}
	if (peer_role)
		return err_json(code, 403, "role peer may only fetch its summary");
	if (!strcmp(url, "/v1/peers") && get) {
		a = json_object_new_array();
		for (int i = 0; i < IDND_MAX_PEERS; i++)
			if (peers[i].used)
				json_object_array_add(a, peer_json(i));
		return a;
	}
	if (!strcmp(url, "/v1/peers") && post) {
		struct d_peer np;
		int i, slot = -1;

		o = parse_body(body, len);
		if (!o)
			return err_json(code, 400, "body: not a JSON object");
		if (peer_from_json(o, &np, err, sizeof(err))) {
			json_object_put(o);
			return err_json(code, 400, "%s", err);
		}
		json_object_put(o);
		if (F.name && !strcmp(np.name, F.name))
			return err_json(code, 400, "\"%s\" is this domain's own name", np.name);
		if (np.domain == home_domain())
			return err_json(code, 400, "domain %u is this router's home domain: a peer "
					"needs a number of its own", np.domain);
		if (!strncmp(np.url, "http://", 7) && !idnd_tls.insecure)
			return err_json(code, 400, "http:// peers only with --insecure");
		for (i = 0; i < IDND_MAX_PEERS; i++) {
			if (peers[i].used && !strcmp(peers[i].name, np.name))
				slot = i;
			else if (peers[i].used && peers[i].domain == np.domain)
				return err_json(code, 409, "domain %u is peer %s's", np.domain,
						peers[i].name);
		}
		for (i = 0; slot < 0 && i < IDND_MAX_PEERS; i++)
			if (!peers[i].used)
				slot = i;
		if (slot < 0)
			return err_json(code, 507, "%d peers at most", IDND_MAX_PEERS);
		o = peer_conf_json(&np);
		if (store_exec("INSERT OR REPLACE INTO peers VALUES(?1, ?2)", np.name,
			       json_object_to_json_string(o), 0)) {
			json_object_put(o);
			return err_json(code, 500, "store: %s", sqlite3_errmsg(db()));
		}
		json_object_put(o);
		if (peers[slot].used) {	/* a change of key or URL: trust nothing held */
			struct d_peer *p = &peers[slot];

			np.u_req = p->u_req;
			np.u_tok = p->u_tok;
			np.u_bytes = p->u_bytes;
			np.base_flows = p->base_flows;
			np.base_bytes = p->base_bytes;
			np.based = p->based;
			free(p->sealed);
		}
		peers[slot] = np;
		conf_put_peer(&peers[slot], false);	/* distributed mode: for the next leader */
		pr_info("FED: peer %s (domain %u, %s) configured\n", np.name, np.domain, np.url);
		fed_apply();
		return peer_json(slot);
	}
	if (!strncmp(url, "/v1/peers/", 10) && (get || del)) {
		int i = peer_index(url + 10);

		if (i < 0)
			return err_json(code, 404, "no peer \"%.64s\"", url + 10);
		if (get)
			return peer_json(i);
		if (store_exec("DELETE FROM peers WHERE name = ?1", peers[i].name, NULL, 0) ||
		    store_exec("DELETE FROM fed_usage WHERE name = ?1", peers[i].name, NULL, 0))
			return err_json(code, 500, "store: %s", sqlite3_errmsg(db()));
		pr_info("FED: peer %s removed\n", peers[i].name);
		conf_put_peer(&peers[i], true);
		free(peers[i].sealed);
		memset(&peers[i], 0, sizeof(peers[i]));
		peer_push(i, NULL);	/* its entry goes (invalid, etcd's too), then the plans */
		if (idnd_compile())
			pr_warn("FED: plan commit: %s\n", idn_errmsg());
		return json_object_new_object();
	}
	if (!strcmp(url, "/v1/fed/imported") && get)
		return imported_json();
	if (!strcmp(url, "/v1/fed/exported") && get)
		return exported_json();
	if (!strcmp(url, "/v1/fed/usage") && get) {
		struct usage_sum us;

		usage_sum(&us, true);
		a = json_object_new_array();
		for (int i = 0; i < IDND_MAX_PEERS; i++) {
			json_object *u;

			if (!peers[i].used)
				continue;
			u = json_object_new_object();
			json_object_object_add(u, "peer", json_object_new_string(peers[i].name));
			json_object_object_add(u, "requests", json_object_new_int64(us.req[i]));
			json_object_object_add(u, "tokens", json_object_new_int64(us.tok[i]));
			json_object_object_add(u, "bytes", json_object_new_int64(us.bytes[i]));
			/* of which the etcd-fed routers' records (distributed mode) */
			json_object_object_add(u, "routers", us.routers[i]);
			json_object_array_add(a, u);
		}
		return a;
	}
	if (!strcmp(url, "/v1/fed/exports") && post) {
		struct d_export e;
		int i;

		o = parse_body(body, len);
		if (!o)
			return err_json(code, 400, "body: not a JSON object");
		if (export_from_json(o, &e, err, sizeof(err))) {
			json_object_put(o);
			return err_json(code, 400, "%s", err);
		}
		json_object_put(o);
		if (!idnd_cap_find(e.label))
			return err_json(code, 404, "no capability " IDN_CAP_FMT " registered",
					IDN_CAP_ARG(e.label));
		for (i = 0; i < n_exports && exports[i].label != e.label; i++)
			;
		if (i == n_exports && n_exports == FED_MAX_EXPORTS)
			return err_json(code, 507, "%d exports at most", FED_MAX_EXPORTS);
		o = export_json(&e);
		if (store_exec("INSERT OR REPLACE INTO fed_exports VALUES(?1, ?2)", NULL,
			       json_object_to_json_string(o), e.label)) {
			json_object_put(o);
			return err_json(code, 500, "store: %s", sqlite3_errmsg(db()));
		}
		exports[i] = e;
		if (i == n_exports)
			n_exports++;
		conf_put_export(e.label, &e);
		sealed_drop();
		pr_info("FED: capability %u/%u exported\n", IDN_CAP_CLASS(e.label),
			IDN_CAP_VARIANT(e.label));
		return o;
	}
	if (!strncmp(url, "/v1/fed/exports/", 16) && del) {
		char *end;
		unsigned long v = strtoul(url + 16, &end, 10);
		int i;

		for (i = 0; *end == 0 && i < n_exports && exports[i].label != v; i++)
			;
		if (*end || !url[16] || i == n_exports)
			return err_json(code, 404, "no export of capability %.32s", url + 16);
		if (store_exec("DELETE FROM fed_exports WHERE cap = ?1", NULL, NULL, v))
			return err_json(code, 500, "store: %s", sqlite3_errmsg(db()));
		exports[i] = exports[--n_exports];
		conf_put_export(v, NULL);
		sealed_drop();
		pr_info("FED: capability %lu/%lu no longer exported\n", v >> 8, v & 255);
		return json_object_new_object();
	}
	return err_json(code, get || post || del ? 404 : 405, "no such endpoint: %s %s", method,
			url);
}

json_object *idnd_fed_status(void)
{
	json_object *o = json_object_new_object();
	int n = 0, fresh = 0;

	for (int i = 0; i < IDND_MAX_PEERS; i++)
		if (peers[i].used) {
			n++;
			fresh += peers[i].have;
		}
	json_object_object_add(o, "domain", F.name ? json_object_new_string(F.name) : NULL);
	json_object_object_add(o, "peers", json_object_new_int(n));
	json_object_object_add(o, "fresh", json_object_new_int(fresh));
	json_object_object_add(o, "exports", json_object_new_int(n_exports));
	return o;
}

void idnd_fed_metrics(struct idn_prom *p)
{
	struct usage_sum us;

	usage_sum(&us, false);
	idn_prom_one_u64(p, "idnd_fed_summaries_accepted_total", IDN_PROM_COUNTER,
			 "Peers' summaries accepted (signature and fields checked).",
			 sum_accepted_total);
	idn_prom_one_u64(p, "idnd_fed_summaries_refused_total", IDN_PROM_COUNTER,
			 "Peers' summaries refused (signature, a field, replay, expiry).",
			 sum_refused_total);
	idn_prom_one_u64(p, "idnd_fed_summaries_signed_total", IDN_PROM_COUNTER,
			 "Summaries this domain signed for its peers.", export_signed);
	idn_prom_family(p, "idnd_fed_peer_fresh", IDN_PROM_GAUGE,
			"1 while the peer's summary is fresh (its capabilities in the plans).");
	for (int i = 0; i < IDND_MAX_PEERS; i++)
		if (peers[i].used)
			idn_prom_u64(p, NULL, peers[i].have, "peer", peers[i].name, NULL);
	idn_prom_family(p, "idnd_fed_usage_requests_total", IDN_PROM_COUNTER,
			"Requests this domain's routers sent to the peer.");
	for (int i = 0; i < IDND_MAX_PEERS; i++)
		if (peers[i].used)
			idn_prom_u64(p, NULL, us.req[i], "peer", peers[i].name, NULL);
	idn_prom_family(p, "idnd_fed_usage_bytes_total", IDN_PROM_COUNTER,
			"Request bytes this domain's routers forwarded to the peer.");
	for (int i = 0; i < IDND_MAX_PEERS; i++)
		if (peers[i].used)
			idn_prom_u64(p, NULL, us.bytes[i], "peer", peers[i].name, NULL);
	idn_prom_family(p, "idnd_fed_usage_tokens_total", IDN_PROM_COUNTER,
			"Prompt tokens of the requests this domain's routers sent to the peer.");
	for (int i = 0; i < IDND_MAX_PEERS; i++)
		if (peers[i].used)
			idn_prom_u64(p, NULL, us.tok[i], "peer", peers[i].name, NULL);
}
