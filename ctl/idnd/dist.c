// SPDX-License-Identifier: GPL-2.0
/*
 * dist.c - idnd's distributed mode on etcd (-E URL): leader election by
 * lease, the registry mirrored under a per-domain prefix, one txn per
 * plan generation, and the router-side watcher (-W) that applies the
 * plan prefix to its local maps.
 *
 * Layout under PREFIX = /idn/DOMAIN/ (see docs/controller.md):
 *   leader          replica name, bound to the leader's lease (TTL 2 s)
 *   caps/LABEL      {"cap": descriptor, "demand": [16 rps]}
 *   nodes/ID        resource profile R plus "lease_owner": "agent" (the
 *                   agent's own lease, idn-agent --etcd: it keeps it
 *                   alive) or "idnd" (the leader's: TTL = heartbeat
 *                   timeout + leader TTL + 1 s, so it survives a
 *                   failover; HTTP heartbeats keep it alive). A silent
 *                   node's key expires and watchers see it go; the leader
 *                   polls nodes/ and takes a node whose agent-owned key
 *                   is gone out of the plans at once
 *   placement       [[cap, node], ...]
 *   policies/ID     policy class (id = its byte p)
 *   plans/CAP-TIER-POLICY  struct idn_plan_key + struct idn_plan (uapi,
 *                   host order, generation 0): one key per capability plan
 *   gen             generation number, written by the last txn of a
 *                   generation (several txns when etcd's limits need them)
 *   telekeys/ID     node ID's telemetry key for the routers (ident.c)
 *   drains/ID       the operator's drain of node ID (POST /v1/nodes/ID/drain):
 *                   {"id": ID}, written by the leader on drain, deleted on
 *                   undrain and with the node; bound to no lease (the
 *                   operator's intent outlives leaders). Watchers apply it
 *                   as health drain to node ID's entry whoever wrote
 *                   nodes/ID (an agent-owned key's "drain" is ignored), a
 *                   new leader loads it at takeover
 *   fednodes/ID     a federation peer's node entry (fed.c; ID 4080..4095):
 *                   {"id", "peer", "addr4", "domain", "trust", "health",
 *                   "net_us", "load"}, bound to the leader's lease
 *   affseeds/TOKEN  an affinity seed (model.c; TOKEN 16 hex, not 0):
 *                   {"node", "classes": [class...]}, bound to the leader's
 *                   lease, written when changed, deleted when no longer
 *                   among the popular roots
 *   affmoves/TOKEN  a migration's re-point (migrate.c; TOKEN as above):
 *                   {"src", "dst", "classes": [class...], "at": ms}, written
 *                   after the destination's commit, bound to the leader's
 *                   lease, deleted IDND_AFF_MOVE_KEEP_S seconds later
 * Only the leader writes; each write of a generation is one txn guarded by
 * "leader == this replica" (a deposed leader cannot publish). A follower
 * answers writes with 503 and takes over when the leader key expires: it
 * loads caps, nodes (with their leases) and placement from etcd.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "idnd.h"
#include "ident.h"
#include "etcd.h"
#include "fed.h"
#include "capsig.h"

#define LEADER_TTL	2	/* seconds */
#define TICK_S		0.25

static struct etcd E;
static double next_tick;
/* nodes/ID's lease is the agent's own: the leader does not keep it alive */
static bool agent_lease[IDN_MAX_NODES];
/* the leader: drains/ID is in etcd (written, or loaded at takeover) */
static bool drain_key[IDN_MAX_NODES];

/* A nodes/ID value: the JSON of the node, "lease_owner" taken out (*agent). */
static json_object *node_val(const char *val, bool *agent)
{
	json_object *o = json_tokener_parse(val), *v;

	*agent = false;
	if (o && json_object_is_type(o, json_type_object) &&
	    json_object_object_get_ex(o, "lease_owner", &v)) {
		*agent = json_object_is_type(v, json_type_string) &&
			 !strcmp(json_object_get_string(v), "agent");
		json_object_object_del(o, "lease_owner");
	}
	return o;
}

static void key_of(char *buf, size_t len, const char *fmt, uint32_t a)
{
	int n = snprintf(buf, len, "%s", D.prefix);

	snprintf(buf + n, len - n, fmt, a);
}

static int dist_err(int e)
{
	return idn_err(e, "%s", etcd_err(&E));
}

int idnd_dist_start(const char *url, int domain, const char *name)
{
	int e;

	D.etcd_url = url;
	snprintf(D.prefix, sizeof(D.prefix), "/idn/%d/", domain);
	if (name)
		snprintf(D.replica, sizeof(D.replica), "%s", name);
	else
		snprintf(D.replica, sizeof(D.replica), "idnd-%d", (int)getpid());
	e = etcd_open(&E, url);
	if (e)
		return dist_err(e);
	D.etcd = true;
	return 0;
}

/* ---- mirror of the registry (leader only) ---- */

/*
 * Telemetry keys (ident.c) for the routers: telekeys/ID =
 * {"id", "key_id", "key": 32 hex}; what was published last, per node, so
 * that a push of the same key writes nothing (0: nothing published).
 */
static uint32_t tk_pub[IDN_MAX_NODES];

void idnd_dist_tele_key(uint32_t id, const uint8_t key[16], uint32_t key_id)
{
	char k[128], hex[33];
	json_object *o;
	int e;

	if (!D.etcd || !D.leader || id >= IDN_MAX_NODES || tk_pub[id] == key_id)
		return;
	key_of(k, sizeof(k), "telekeys/%u", id);
	if (!key) {
		e = etcd_delete(&E, k);
	} else {
		for (int i = 0; i < 16; i++)
			snprintf(hex + 2 * i, 3, "%02x", key[i]);
		o = json_object_new_object();
		json_object_object_add(o, "id", json_object_new_int64(id));
		json_object_object_add(o, "key_id", json_object_new_int64(key_id));
		json_object_object_add(o, "key", json_object_new_string(hex));
		e = etcd_put(&E, k, json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN),
			     strlen(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN)), 0);
		json_object_put(o);
	}
	if (e)
		pr_warn("DIST: %s %s: %s\n", key ? "put" : "delete", k, etcd_err(&E));
	else
		tk_pub[id] = key_id;
}

/*
 * Federation peers' node entries (fed.c) for the routers the watchers
 * feed: the leader writes fednodes/ID when the entry changes (its ingress,
 * health up while the peer's summary is fresh, down when stale) and
 * deletes it when the peer is removed, before it publishes the plans
 * that name it (the caller compiles after). Bound to the leader's lease:
 * the entries are this leader's imports, so a leader that goes takes them
 * with it (its TTL later) and the next one writes its own at its first
 * federation tick. What was published last, per peer slot.
 */
static char *fn_pub[IDND_MAX_PEERS];

void idnd_dist_fednode(uint32_t id, const char *peer, const struct idn_node *n)
{
	char k[128], a4[INET_ADDRSTRLEN] = "";
	json_object *o;
	const char *s;
	int slot, e;

	if (!D.etcd || !D.leader || !idnd_fed_reserved(id))
		return;
	slot = IDN_MAX_NODES - 1 - id;
	key_of(k, sizeof(k), "fednodes/%u", id);
	if (!n) {
		if (!fn_pub[slot])
			return;	/* nothing of this leader's there */
		e = etcd_delete(&E, k);
		if (e) {
			pr_warn("DIST: delete %s: %s\n", k, etcd_err(&E));
			return;
		}
		free(fn_pub[slot]);
		fn_pub[slot] = NULL;
		pr_info("DIST: peer entry %u withdrawn from the routers\n", id);
		return;
	}
	if (n->flags & IDN_NODE_F_LOC4)
		inet_ntop(AF_INET, &n->addr4, a4, sizeof(a4));
	o = json_object_new_object();
	json_object_object_add(o, "id", json_object_new_int64(id));
	json_object_object_add(o, "peer", json_object_new_string(peer));
	json_object_object_add(o, "addr4", json_object_new_string(a4));
	json_object_object_add(o, "domain", json_object_new_int(n->domain));
	json_object_object_add(o, "trust", json_object_new_int(n->trust));
	json_object_object_add(o, "health", json_object_new_string(
		n->health == IDN_HEALTH_UP ? "up" : "down"));
	json_object_object_add(o, "net_us", json_object_new_int64(n->net_us));
	json_object_object_add(o, "load", json_object_new_int(n->load));
	s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
	if (fn_pub[slot] && !strcmp(fn_pub[slot], s)) {
		json_object_put(o);
		return;		/* unchanged: nothing written */
	}
	e = etcd_put(&E, k, s, strlen(s), D.leader_lease);
	if (e) {
		pr_warn("DIST: put %s: %s\n", k, etcd_err(&E));
	} else {
		free(fn_pub[slot]);
		fn_pub[slot] = strdup(s);
		pr_info("DIST: peer entry %u (peer %s, ingress %s) %s for the routers\n", id,
			peer, a4, n->health == IDN_HEALTH_UP ? "up" : "down");
	}
	json_object_put(o);
}

/*
 * The watchers' usage records per peer (/idn/usage/DOMAIN/ROUTER/PEER,
 * written by each etcd-fed router: wu_tick() below), each one that is
 * well formed handed to cb; the number handed, or -errno. Any replica may
 * read them. Outside the domain's prefix: the watchers do not get each
 * other's records.
 */
int idnd_dist_fed_usage(idnd_fed_usage_cb cb, void *arg)
{
	struct etcd_kv *kvs = NULL;
	char pfx[96];
	int n = 0, e, got = 0;

	if (!D.etcd)
		return 0;
	snprintf(pfx, sizeof(pfx), "/idn/usage%.59s", D.prefix + 4);	/* /idn/usage/DOMAIN/ */
	e = etcd_range(&E, pfx, false, &kvs, &n, NULL);
	if (e)
		return dist_err(e);
	for (int i = 0; i < n; i++) {
		json_object *o = json_tokener_parse(kvs[i].val), *v;
		const char *router, *peer, *k = kvs[i].key + strlen(pfx), *slash = strchr(k, '/');
		int64_t x[3] = { -1, -1, -1 };
		static const char *const f[3] = { "requests", "tokens", "bytes" };

		router = o && json_object_object_get_ex(o, "router", &v) &&
			 json_object_is_type(v, json_type_string) ? json_object_get_string(v) : "";
		peer = o && json_object_object_get_ex(o, "peer", &v) &&
		       json_object_is_type(v, json_type_string) ? json_object_get_string(v) : "";
		for (int j = 0; j < 3; j++)
			if (o && json_object_object_get_ex(o, f[j], &v) &&
			    json_object_is_type(v, json_type_int))
				x[j] = json_object_get_int64(v);
		/* the key names its router and peer: the value must say the same */
		if (slash && (size_t)(slash - k) == strlen(router) && !strncmp(k, router, slash - k) &&
		    !strcmp(slash + 1, peer) && capsig_name_ok(peer) && x[0] >= 0 && x[1] >= 0 &&
		    x[2] >= 0) {
			cb(arg, router, peer, x[0], x[1], x[2]);
			got++;
		}
		json_object_put(o);
	}
	etcd_kvs_free(kvs, n);
	return got;
}

void idnd_dist_fed_conf(const char *sub, const char *val)
{
	char k[192];
	int e;

	if (!D.etcd || !D.leader)
		return;
	snprintf(k, sizeof(k), "%sfedconf/%s", D.prefix, sub);
	e = val ? etcd_put(&E, k, val, strlen(val), 0) : etcd_delete(&E, k);
	if (e)
		pr_warn("DIST: %s %s: %s\n", val ? "put" : "delete", k, etcd_err(&E));
}

/* takeover: federation peers and exports from etcd, or etcd seeded with ours */
static int load_fed_conf(void)
{
	struct etcd_kv *kvs = NULL;
	const char **pv, **ev;
	char pfx[96];
	int n = 0, np = 0, ne = 0, e;
	bool seeded = false;

	snprintf(pfx, sizeof(pfx), "%sfedconf/", D.prefix);
	e = etcd_range(&E, pfx, false, &kvs, &n, NULL);
	if (e)
		return dist_err(e);
	pv = calloc(n + 1, sizeof(*pv));
	ev = calloc(n + 1, sizeof(*ev));
	if (!pv || !ev) {
		free(pv);
		free(ev);
		etcd_kvs_free(kvs, n);
		return -ENOMEM;
	}
	for (int i = 0; i < n; i++) {
		const char *rest = kvs[i].key + strlen(pfx);

		if (!strcmp(rest, "seeded"))
			seeded = true;
		else if (!strncmp(rest, "peers/", 6))
			pv[np++] = kvs[i].val;
		else if (!strncmp(rest, "exports/", 8))
			ev[ne++] = kvs[i].val;
	}
	if (seeded) {
		idnd_fed_conf_load(pv, np, ev, ne);
	} else {
		pr_info("DIST: no federation configuration in %s: seeded from this replica's\n",
			D.prefix);
		idnd_fed_conf_seed();
	}
	free(pv);
	free(ev);
	etcd_kvs_free(kvs, n);
	return 0;
}

/*
 * Affinity seeds (model.c, idnd_aff_seeds_from()) for the routers the
 * watchers feed: at each refresh (at most once a second) the leader writes
 * affseeds/TOKEN = {"node": N, "classes": [class...]} for each seed whose
 * value changed, and deletes the keys of the tokens no longer among them
 * (at most IDND_AFF_SEEDS: the set is bounded). Bound to the leader's
 * lease, as its other derived keys: a leader that goes takes them with it,
 * the next writes its own at its first refresh. What was published last,
 * per token (val NULL: a delete that failed, tried again next refresh).
 */
#define AS_MAX	(2 * IDND_AFF_SEEDS)
struct as_pub {
	uint64_t token;
	char *val;
};
static struct as_pub as_pub[AS_MAX];
static int n_as_pub;

static void as_key(char *k, size_t len, uint64_t token)
{
	snprintf(k, len, "%saffseeds/%016llx", D.prefix, (unsigned long long)token);
}

void idnd_dist_aff_seeds(const struct idnd_aff_seed *s, size_t n)
{
	struct as_pub nw[AS_MAX];
	int n_nw = 0, puts = 0, dels = 0;
	char k[160];

	if (!D.etcd || !D.leader)
		return;
	if (n > IDND_AFF_SEEDS)
		n = IDND_AFF_SEEDS;
	/* tokens published and no longer seeds: deleted (kept to retry if it fails) */
	for (int j = 0; j < n_as_pub; j++) {
		bool still = false;

		for (size_t i = 0; i < n && !still; i++)
			still = s[i].token == as_pub[j].token;
		if (still)
			continue;
		as_key(k, sizeof(k), as_pub[j].token);
		if (etcd_delete(&E, k)) {
			pr_warn("DIST: delete %s: %s\n", k, etcd_err(&E));
			if (n_nw < AS_MAX - IDND_AFF_SEEDS)
				nw[n_nw++] = (struct as_pub){ as_pub[j].token, NULL };
		} else {
			dels++;
		}
		free(as_pub[j].val);
		as_pub[j].val = NULL;
	}
	for (size_t i = 0; i < n; i++) {
		json_object *o = json_object_new_object(), *a = json_object_new_array();
		const char *v;
		char *old = NULL;

		json_object_object_add(o, "node", json_object_new_int64(s[i].node));
		for (int q = 0; q < s[i].n_cls; q++)
			json_object_array_add(a, json_object_new_int64(s[i].cls[q]));
		json_object_object_add(o, "classes", a);
		v = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
		for (int j = 0; j < n_as_pub && !old; j++)
			if (as_pub[j].token == s[i].token && as_pub[j].val) {
				old = as_pub[j].val;
				as_pub[j].val = NULL;
			}
		if (!old || strcmp(old, v)) {
			as_key(k, sizeof(k), s[i].token);
			if (etcd_put(&E, k, v, strlen(v), D.leader_lease)) {
				pr_warn("DIST: put %s: %s\n", k, etcd_err(&E));
				free(old);	/* unknown now: written again next refresh */
				old = NULL;
			} else {
				free(old);
				old = strdup(v);
				puts++;
			}
		}
		nw[n_nw++] = (struct as_pub){ s[i].token, old };
		json_object_put(o);
	}
	for (int j = 0; j < n_as_pub; j++)
		free(as_pub[j].val);
	memcpy(as_pub, nw, n_nw * sizeof(nw[0]));
	n_as_pub = n_nw;
	if (puts || dels)
		pr_info("DIST: affinity seeds for the routers: %zu (%d written, %d deleted)\n",
			n, puts, dels);
}

/*
 * Migrations' re-points (migrate.c) for the routers the watchers feed:
 * once the destination has committed a token's blocks, the leader writes
 * affmoves/TOKEN = {"src": S, "dst": D, "classes": [class...], "at": MS}
 * (MS: this replica's wall clock in ms when it wrote it), so a re-point is
 * ordered after the commit as the local map write is. Bound to the
 * leader's lease: a leader that goes takes its re-points with it, and the
 * next one publishes none of them again. Deleted IDND_AFF_MOVE_KEEP_S
 * seconds after it was written (a watcher applies it on its event; one
 * that reads it later than that refuses it as stale, see waffmove()); at
 * most AM_MAX keys: a full table deletes its oldest first. What was
 * written: token, when (idnd_now()).
 */
#define AM_MAX	64
static struct am_pub {
	uint64_t token;
	double at;
} am_pub[AM_MAX];
static int n_am_pub;

static void am_key(char *k, size_t len, uint64_t token)
{
	snprintf(k, len, "%saffmoves/%016llx", D.prefix, (unsigned long long)token);
}

/* delete entry i's key (its place taken by the last entry); 0 or -errno */
static int am_del(int i)
{
	char k[160];
	int e;

	am_key(k, sizeof(k), am_pub[i].token);
	e = etcd_delete(&E, k);
	if (e)
		pr_warn("DIST: delete %s: %s\n", k, etcd_err(&E));
	am_pub[i] = am_pub[--n_am_pub];
	return e;
}

/* the re-points written IDND_AFF_MOVE_KEEP_S ago or more: deleted */
static void am_expire(double now)
{
	for (int i = 0; i < n_am_pub;) {
		struct am_pub a = am_pub[i];

		if (now - a.at < IDND_AFF_MOVE_KEEP_S) {
			i++;
		} else if (am_del(i)) {	/* etcd away: kept, tried at the next tick */
			am_pub[n_am_pub++] = a;
			break;
		}
	}
}

void idnd_dist_aff_move(uint64_t token, uint32_t src, uint32_t dst, const uint32_t *cls,
			int n_cls)
{
	char k[160], v[256];
	struct timespec ts;
	int l, j;

	if (!D.etcd || !D.leader || !n_cls)
		return;
	clock_gettime(CLOCK_REALTIME, &ts);
	l = snprintf(v, sizeof(v), "{\"src\":%u,\"dst\":%u,\"classes\":[", src, dst);
	for (int q = 0; q < n_cls && q < 8; q++)
		l += snprintf(v + l, sizeof(v) - l, "%s%u", q ? "," : "", cls[q]);
	snprintf(v + l, sizeof(v) - l, "],\"at\":%lld}",
		 (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000);
	for (j = 0; j < n_am_pub && am_pub[j].token != token; j++)
		;
	if (j == n_am_pub && n_am_pub == AM_MAX) {	/* full: the oldest goes first */
		int o = 0;

		for (int i = 1; i < n_am_pub; i++)
			if (am_pub[i].at < am_pub[o].at)
				o = i;
		am_del(o);	/* not kept if it fails: gone with the lease at worst */
		j = n_am_pub;
	}
	am_key(k, sizeof(k), token);
	if (etcd_put(&E, k, v, strlen(v), D.leader_lease)) {
		pr_warn("DIST: put %s: %s; the watchers' routers keep node %u for it\n", k,
			etcd_err(&E), src);
		return;
	}
	am_pub[j] = (struct am_pub){ token, idnd_now() };
	if (j == n_am_pub)
		n_am_pub++;
	pr_info("DIST: re-point for the routers: %s = %s\n", k, v);
}

void idnd_dist_sig(const char *sub, const char *val)
{
	char k[192];
	int e;

	if (!D.etcd || !D.leader)
		return;
	snprintf(k, sizeof(k), "%ssig/%s", D.prefix, sub);
	e = val ? etcd_put(&E, k, val, strlen(val), 0) : etcd_delete(&E, k);
	if (e)
		pr_warn("DIST: %s %s: %s\n", val ? "put" : "delete", k, etcd_err(&E));
}

void idnd_dist_cap(const struct d_cap *c)
{
	json_object *o, *d;
	char key[128];
	const char *s;

	if (!D.etcd || !D.leader)
		return;
	o = json_object_new_object();
	d = json_object_new_array();
	json_object_object_add(o, "cap", idnd_cap_stored_json(c));	/* with its owner */
	for (int r = 0; r < IDND_REGIONS; r++)
		json_object_array_add(d, idnd_jnum(c->demand[r]));
	json_object_object_add(o, "demand", d);
	s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
	key_of(key, sizeof(key), "caps/%u", c->label);
	if (etcd_put(&E, key, s, strlen(s), 0))
		pr_warn("DIST: put %s: %s\n", key, etcd_err(&E));
	json_object_put(o);
}

void idnd_dist_cap_del(uint32_t label)
{
	char key[128];

	if (!D.etcd || !D.leader)
		return;
	key_of(key, sizeof(key), "caps/%u", label);
	if (etcd_delete(&E, key))
		pr_warn("DIST: delete %s: %s\n", key, etcd_err(&E));
}

void idnd_dist_policy(const struct d_policy *p)
{
	json_object *o;
	const char *s;
	char key[128];

	if (!D.etcd || !D.leader)
		return;
	o = idnd_policy_to_json(p);
	s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
	key_of(key, sizeof(key), "policies/%u", p->id);
	if (etcd_put(&E, key, s, strlen(s), 0))
		pr_warn("DIST: put %s: %s\n", key, etcd_err(&E));
	json_object_put(o);
}

void idnd_dist_policy_del(uint32_t id)
{
	char key[128];

	if (!D.etcd || !D.leader)
		return;
	key_of(key, sizeof(key), "policies/%u", id);
	if (etcd_delete(&E, key))
		pr_warn("DIST: delete %s: %s\n", key, etcd_err(&E));
}

/*
 * A node's key outlives a leader failover (the new leader keeps the lease
 * alive from the next heartbeat on): TTL = heartbeat timeout + leader TTL
 * + 1 s. The broker still takes a silent node out of the plans after the
 * heartbeat timeout; the lease removes its registration from etcd.
 */
static int node_ttl(void)
{
	return (int)ceil(D.hb_timeout) + LEADER_TTL + 1;
}

/* Does the agent hold nodes/ID under its own lease? (n->lease: that one) */
static bool node_agent_owned(struct d_node *n, const char *key)
{
	struct etcd_kv *kvs = NULL;
	bool agent = false;
	int cnt = 0;

	if (etcd_range(&E, key, false, &kvs, &cnt, NULL))
		return false;
	for (int i = 0; i < cnt; i++) {
		json_object *o;

		if (strcmp(kvs[i].key, key))
			continue;	/* nodes/1 is a prefix of nodes/10 */
		o = node_val(kvs[i].val, &agent);
		json_object_put(o);
		if (agent) {
			if (n->lease && n->lease != kvs[i].lease)
				etcd_lease_revoke(&E, n->lease);	/* ours, unused */
			n->lease = kvs[i].lease;
		}
	}
	etcd_kvs_free(kvs, cnt);
	agent_lease[n->id] = agent;
	return agent;
}

/*
 * (Re)write nodes/ID bound to the leader's lease for the node, granting
 * one if needed, unless the agent holds the key under its own lease.
 */
static int node_put(struct d_node *n)
{
	json_object *o = idnd_node_to_json(n, false);
	const char *s;
	char key[128];
	int e = 0;

	key_of(key, sizeof(key), "nodes/%u", n->id);
	if (node_agent_owned(n, key)) {
		json_object_put(o);
		return 0;
	}
	json_object_object_add(o, "lease_owner", json_object_new_string("idnd"));
	s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
	if (!n->lease)
		e = etcd_lease_grant(&E, node_ttl(), &n->lease);
	if (!e)
		e = etcd_put(&E, key, s, strlen(s), n->lease);
	if (e == -EIO && n->lease) {
		/* the lease may be gone: a new one */
		e = etcd_lease_grant(&E, node_ttl(), &n->lease);
		if (!e)
			e = etcd_put(&E, key, s, strlen(s), n->lease);
	}
	if (e)
		pr_warn("DIST: put %s: %s\n", key, etcd_err(&E));
	json_object_put(o);
	return e;
}

void idnd_dist_node(struct d_node *n)
{
	if (D.etcd && D.leader)
		node_put(n);
}

void idnd_dist_node_del(struct d_node *n)
{
	char key[128];

	if (!D.etcd || !D.leader)
		return;
	key_of(key, sizeof(key), "nodes/%u", n->id);
	if (etcd_delete(&E, key))
		pr_warn("DIST: delete %s: %s\n", key, etcd_err(&E));
	if (n->lease)	/* an agent's own one too: it grants and writes again */
		etcd_lease_revoke(&E, n->lease);
	n->lease = 0;
	agent_lease[n->id] = false;
	/* the operator's drain goes with the node (its own key: no lease) */
	key_of(key, sizeof(key), "drains/%u", n->id);
	if (etcd_delete(&E, key))
		pr_warn("DIST: delete %s: %s\n", key, etcd_err(&E));
	else
		drain_key[n->id] = false;
}

/*
 * drains/ID as the node's drain says: {"id": ID} under no lease, or
 * deleted. 0 also when this replica does not write (no etcd, a follower).
 */
int idnd_dist_drain(const struct d_node *n)
{
	char key[128], val[32];
	int e;

	if (!D.etcd || !D.leader || n->id >= IDN_MAX_NODES)
		return 0;
	key_of(key, sizeof(key), "drains/%u", n->id);
	if (n->drain) {
		snprintf(val, sizeof(val), "{\"id\":%u}", n->id);
		e = etcd_put(&E, key, val, strlen(val), 0);
	} else {
		e = etcd_delete(&E, key);
	}
	if (e) {
		pr_warn("DIST: %s %s: %s\n", n->drain ? "put" : "delete", key, etcd_err(&E));
		return dist_err(e);
	}
	drain_key[n->id] = n->drain;
	return 0;
}

bool idnd_dist_drained(uint32_t id)
{
	return D.etcd && D.leader && id < IDN_MAX_NODES && drain_key[id];
}

/*
 * A drains/ID value: {"id": ID} and nothing else, ID the key's, not a
 * federation peer's entry. 0, or -1 with *why.
 */
static int drain_parse(const char *rest, const char *val, uint32_t *idp, char *why, size_t wl)
{
	json_object *o, *v;
	unsigned int id;
	char end;
	int ret = -1;

	if (sscanf(rest, "%u%c", &id, &end) != 1 || id >= IDN_MAX_NODES) {
		snprintf(why, wl, "not a node id (0..%u)", IDN_MAX_NODES - 1);
		return -1;
	}
	*idp = id;
	if (idnd_fed_reserved(id)) {
		snprintf(why, wl, "node ids %u..%u are federation peers' entries",
			 IDND_PEER_NODE0, IDN_MAX_NODES - 1);
		return -1;
	}
	o = val ? json_tokener_parse(val) : NULL;
	if (!o || !json_object_is_type(o, json_type_object)) {
		snprintf(why, wl, "not a JSON object {\"id\": %u}", id);
	} else if (!json_object_object_get_ex(o, "id", &v) ||
		   !json_object_is_type(v, json_type_int) ||
		   json_object_get_int64(v) != (int64_t)id) {
		snprintf(why, wl, "field \"id\": %u (the key's node) expected", id);
	} else if (json_object_object_length(o) != 1) {
		snprintf(why, wl, "unknown field (only \"id\")");
	} else {
		ret = 0;
	}
	json_object_put(o);
	return ret;
}

void idnd_dist_heartbeat(struct d_node *n)
{
	if (!D.etcd || !D.leader || agent_lease[n->id])
		return;		/* an agent-owned lease is the agent's to keep */
	if (n->lease && !etcd_lease_keepalive(&E, n->lease))
		return;
	/* expired (or never granted): the node registers again */
	n->lease = 0;
	node_put(n);
}

void idnd_dist_place(void)
{
	json_object *a;
	const char *s;
	char key[128];

	if (!D.etcd || !D.leader)
		return;
	a = json_object_new_array();
	for (int p = 0; p < D.n_place; p++) {
		json_object *x = json_object_new_array();

		json_object_array_add(x, json_object_new_int64(D.place[p].cap));
		json_object_array_add(x, json_object_new_int64(D.place[p].node));
		json_object_array_add(a, x);
	}
	s = json_object_to_json_string_ext(a, JSON_C_TO_STRING_PLAIN);
	snprintf(key, sizeof(key), "%splacement", D.prefix);
	if (etcd_put(&E, key, s, strlen(s), 0))
		pr_warn("DIST: put %s: %s\n", key, etcd_err(&E));
	json_object_put(a);
}

/* ---- plans: one txn per generation ---- */

struct plan_val {
	struct idn_plan_key key;
	struct idn_plan plan;
};

static void plan_key(char *buf, size_t len, const struct idn_plan_key *k)
{
	snprintf(buf, len, "%splans/%u-%u-%u", D.prefix, k->cap, k->tier, k->policy);
}

static int kv_cmp(const void *a, const void *b)
{
	return strcmp(((const struct etcd_kv *)a)->key, ((const struct etcd_kv *)b)->key);
}

static int str_cmp(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* JSON bytes of one txn op on the wire (base64 of key and value + framing) */
static size_t op_bytes(const struct etcd_op *op)
{
	return (strlen(op->key) + op->val_len + 4) / 3 * 4 + 96;
}

/*
 * One generation: puts of the changed plan keys, deletes of the plans
 * gone, then `gen`. When that is more than one txn may carry (etcd's
 * --max-txn-ops, D.txn_ops, and its 1.5 MiB request limit: 1 MiB per txn
 * here), the ops go in several txns, each guarded by "leader == this
 * replica", and `gen` is written by the last one only. Readers therefore
 * see complete generations only: the watcher applies plan events when the
 * `gen` event arrives (events of later, incomplete txns wait for their
 * own `gen`), and a full sync reads the prefix as it was at the `gen`
 * key's revision. A leader that fails between txns leaves plan keys
 * ahead of `gen`; the next publish (this replica or the next leader)
 * diffs against what etcd holds and completes a generation over them.
 */
int idnd_dist_publish(const struct idn_plan_op *ops, int n_ops, uint32_t gen)
{
	struct etcd_kv *kvs = NULL;
	struct etcd_op *tx = NULL;
	struct plan_val *vals = NULL;
	char (*keys)[96] = NULL, prefix[96], lkey[96], gkey[96], gval[16];
	const char **wanted = NULL;
	int n_kv = 0, n_tx = 0, n_want = 0, e, n_txn = 0;
	int max_ops = D.txn_ops > 1 ? D.txn_ops : 128;
	size_t max_bytes = 1024 * 1024;

	snprintf(prefix, sizeof(prefix), "%splans/", D.prefix);
	snprintf(lkey, sizeof(lkey), "%sleader", D.prefix);
	snprintf(gkey, sizeof(gkey), "%sgen", D.prefix);
	e = etcd_range(&E, prefix, false, &kvs, &n_kv, NULL);
	if (e)
		return dist_err(e);
	tx = calloc(n_ops + n_kv + 1, sizeof(*tx));
	vals = calloc(n_ops + 1, sizeof(*vals));
	keys = calloc(n_ops + 1, sizeof(*keys));
	wanted = calloc(n_ops + 1, sizeof(*wanted));
	if (!tx || !vals || !keys || !wanted) {
		e = -ENOMEM;
		goto out;
	}
	/* changed or new plans: etcd's current value looked up by key */
	qsort(kvs, n_kv, sizeof(*kvs), kv_cmp);
	for (int i = 0; i < n_ops; i++) {
		struct etcd_kv probe = { .key = keys[i] }, *have;

		if (ops[i].del)
			continue;
		vals[i].key = ops[i].key;
		vals[i].key.slot = 0;
		vals[i].key.pad = 0;
		vals[i].plan = ops[i].plan;
		vals[i].plan.generation = 0;
		plan_key(keys[i], sizeof(keys[0]), &vals[i].key);
		wanted[n_want++] = keys[i];
		have = n_kv ? bsearch(&probe, kvs, n_kv, sizeof(*kvs), kv_cmp) : NULL;
		if (have && have->val_len == sizeof(vals[i]) &&
		    !memcmp(have->val, &vals[i], sizeof(vals[i])))
			continue;	/* unchanged: its key is not rewritten */
		tx[n_tx] = (struct etcd_op){ keys[i], &vals[i], sizeof(vals[i]), 0 };
		n_tx++;
	}
	/* plans no longer wanted */
	qsort(wanted, n_want, sizeof(*wanted), str_cmp);
	for (int k = 0; k < n_kv; k++) {
		const char *kk = kvs[k].key;

		if (n_want && bsearch(&kk, wanted, n_want, sizeof(*wanted), str_cmp))
			continue;
		tx[n_tx] = (struct etcd_op){ kvs[k].key, NULL, 0, 0 };
		n_tx++;
	}
	snprintf(gval, sizeof(gval), "%u", gen);
	tx[n_tx++] = (struct etcd_op){ gkey, gval, strlen(gval), 0 };
	/* as many txns as the limits need; `gen` is the last op of the last */
	for (int first = 0; first < n_tx && !e; n_txn++) {
		int cnt = 0;
		size_t bytes = 0;

		while (first + cnt < n_tx && cnt < max_ops &&
		       (!cnt || bytes + op_bytes(&tx[first + cnt]) <= max_bytes))
			bytes += op_bytes(&tx[first + cnt++]);
		e = etcd_txn(&E, lkey, D.replica, tx + first, cnt);
		first += cnt;
	}
	if (e == -ECANCELED) {
		pr_warn("DIST: not the leader any more: generation %u not published\n", gen);
		D.leader = false;
	}
	if (e)
		e = dist_err(e);
	else
		pr_info("DIST: generation %u published (%d changes, %d txn%s)\n", gen, n_tx - 1,
			n_txn, n_txn > 1 ? "s" : "");
out:
	etcd_kvs_free(kvs, n_kv);
	free(tx);
	free(vals);
	free(keys);
	free(wanted);
	return e;
}

/* ---- takeover: the registry from etcd ---- */

static int load_registry(void)
{
	struct etcd_kv *kvs = NULL;
	char pfx[96], err[256];
	int n = 0, e;
	double now = idnd_now();

	/* a fresh domain: this replica's own store seeds it */
	e = etcd_range(&E, D.prefix, true, &kvs, &n, NULL);
	if (e)
		return dist_err(e);
	{
		bool fresh = true;

		for (int i = 0; i < n; i++)
			if (!strstr(kvs[i].key + strlen(D.prefix), "leader"))
				fresh = false;
		etcd_kvs_free(kvs, n);
		if (fresh) {
			pr_info("DIST: %s is empty: seeded from the local store\n", D.prefix);
			for (int i = 0; i < D.n_caps; i++)
				idnd_dist_cap(&D.caps[i]);
			for (uint32_t p = 0; p < IDND_MAX_POLICIES; p++)
				if (idnd_policy_get(p))
					idnd_dist_policy(idnd_policy_get(p));
			memset(drain_key, 0, sizeof(drain_key));
			for (int j = 0; j < IDN_MAX_NODES; j++)
				if (D.nodes[j].used) {
					idnd_dist_node(&D.nodes[j]);
					if (D.nodes[j].drain)
						idnd_dist_drain(&D.nodes[j]);
				}
			idnd_dist_place();
			idnd_sig_import_done(false);	/* publishers, versions, revocations */
			idnd_fed_conf_seed();		/* federation peers and exports */
			return 0;
		}
	}
	snprintf(pfx, sizeof(pfx), "%scaps/", D.prefix);
	e = etcd_range(&E, pfx, false, &kvs, &n, NULL);
	if (e)
		return dist_err(e);
	D.n_caps = 0;
	for (int i = 0; i < n; i++) {
		json_object *o = json_tokener_parse(kvs[i].val), *c, *d;
		struct d_cap cap = {};

		if (o && json_object_object_get_ex(o, "cap", &c) &&
		    !idnd_cap_from_stored(c, &cap, err, sizeof(err)) && !idnd_cap_put(&cap)) {
			struct d_cap *p = idnd_cap_find(cap.label);

			if (json_object_object_get_ex(o, "demand", &d))
				for (int r = 0; r < IDND_REGIONS &&
				     r < (int)json_object_array_length(d); r++)
					p->demand[r] = json_object_get_double(
						json_object_array_get_idx(d, r));
		} else {
			pr_warn("DIST: %s: bad value, skipped\n", kvs[i].key);
		}
		json_object_put(o);
	}
	etcd_kvs_free(kvs, n);

	snprintf(pfx, sizeof(pfx), "%spolicies/", D.prefix);
	e = etcd_range(&E, pfx, false, &kvs, &n, NULL);
	if (e)
		return dist_err(e);
	for (uint32_t p = 0; p < IDND_MAX_POLICIES; p++)
		if (idnd_policy_get(p)) {
			idnd_policy_del(p);
			idnd_store_policy_del(p);
		}
	for (int i = 0; i < n; i++) {
		json_object *o = json_tokener_parse(kvs[i].val);
		struct d_policy pol;

		if (o && !idnd_policy_from_stored(o, &pol, err, sizeof(err))) {
			idnd_policy_put(&pol);
			idnd_store_policy(&pol);
		} else {
			pr_warn("DIST: %s: bad value, skipped\n", kvs[i].key);
		}
		json_object_put(o);
	}
	etcd_kvs_free(kvs, n);

	snprintf(pfx, sizeof(pfx), "%snodes/", D.prefix);
	e = etcd_range(&E, pfx, false, &kvs, &n, NULL);
	if (e)
		return dist_err(e);
	for (int j = 0; j < IDN_MAX_NODES; j++) {
		D.nodes[j].used = false;
		agent_lease[j] = false;
	}
	for (int i = 0; i < n; i++) {
		bool agent;
		json_object *o = node_val(kvs[i].val, &agent);
		struct d_node nd = {};

		if (o && !idnd_node_from_json(o, &nd, err, sizeof(err)) && nd.id < IDN_MAX_NODES) {
			/* trust is granted (ident.c), whoever wrote the key */
			idnd_ident_grant(nd.id, &nd.trust, &nd.confidential);
			agent_lease[nd.id] = agent;
			if (agent)	/* the operator's drain is drains/ID (below) */
				nd.drain = false;
			nd.used = true;
			nd.up = true;		/* its key lives: heartbeats reached etcd */
			nd.last_hb = now;
			nd.lease = kvs[i].lease;
			D.nodes[nd.id] = nd;
			idnd_store_node(&D.nodes[nd.id]);
		}
		json_object_put(o);
	}
	etcd_kvs_free(kvs, n);

	/*
	 * the operator's drains, whoever wrote nodes/ID; one of a node not
	 * registered now is kept for its registration (idnd_dist_drained())
	 */
	snprintf(pfx, sizeof(pfx), "%sdrains/", D.prefix);
	e = etcd_range(&E, pfx, false, &kvs, &n, NULL);
	if (e)
		return dist_err(e);
	memset(drain_key, 0, sizeof(drain_key));
	for (int i = 0; i < n; i++) {
		uint32_t id;

		if (drain_parse(kvs[i].key + strlen(pfx), kvs[i].val, &id, err, sizeof(err))) {
			pr_warn("DIST: %s: bad value, skipped: %s\n", kvs[i].key, err);
			continue;
		}
		drain_key[id] = true;
		if (D.nodes[id].used && !D.nodes[id].drain) {
			D.nodes[id].drain = true;
			idnd_store_node(&D.nodes[id]);
		}
	}
	etcd_kvs_free(kvs, n);

	snprintf(pfx, sizeof(pfx), "%splacement", D.prefix);
	e = etcd_range(&E, pfx, false, &kvs, &n, NULL);
	if (e)
		return dist_err(e);
	D.n_place = 0;
	for (int i = 0; i < n; i++) {
		json_object *a;

		if (strcmp(kvs[i].key, pfx))
			continue;
		a = json_tokener_parse(kvs[i].val);
		if (a && json_object_is_type(a, json_type_array)) {
			int len = (int)json_object_array_length(a);
			struct d_place *p = realloc(D.place, (len + 1) * sizeof(*p));

			if (p) {
				D.place = p;
				for (int k = 0; k < len; k++) {
					json_object *x = json_object_array_get_idx(a, k);

					p[D.n_place].cap = json_object_get_int64(
						json_object_array_get_idx(x, 0));
					p[D.n_place].node = json_object_get_int64(
						json_object_array_get_idx(x, 1));
					if (p[D.n_place].node < IDN_MAX_NODES)
						D.n_place++;
				}
			}
		}
		json_object_put(a);
	}
	etcd_kvs_free(kvs, n);
	snprintf(pfx, sizeof(pfx), "%sgen", D.prefix);
	if (!etcd_range(&E, pfx, false, &kvs, &n, NULL)) {
		for (int i = 0; i < n; i++)
			if (!strcmp(kvs[i].key, pfx) && strtoul(kvs[i].val, NULL, 10) > D.generation)
				D.generation = strtoul(kvs[i].val, NULL, 10);
		etcd_kvs_free(kvs, n);
	}
	for (int i = 0; i < D.n_caps; i++)
		idnd_store_cap(&D.caps[i]);
	idnd_store_place();

	/*
	 * signed metadata: the domain's publishers, versions and revocations,
	 * then every registered version's signature checked again (the caps
	 * above came without it) and revocations applied
	 */
	snprintf(pfx, sizeof(pfx), "%ssig/", D.prefix);
	e = etcd_range(&E, pfx, false, &kvs, &n, NULL);
	if (e)
		return dist_err(e);
	{
		bool seeded = false;

		for (int i = 0; i < n; i++) {
			const char *rest = kvs[i].key + strlen(pfx);

			if (!strcmp(rest, "seeded"))
				seeded = true;
			else
				idnd_sig_import(rest, kvs[i].val);
		}
		etcd_kvs_free(kvs, n);
		if (idnd_sig_import_done(seeded))
			pr_warn("DIST: signed metadata: %s\n", idn_errmsg());
	}
	return load_fed_conf();
}

/* ---- nodes with their own lease (leader) ---- */

/*
 * nodes/ as etcd has it, every tick: a key the agent holds under its own
 * lease marks the node agent-owned (a node not registered yet is taken
 * from it); an agent-owned key that is gone (lease expired: agent dead or
 * cut off from etcd longer than its TTL; revoked: clean exit) takes the
 * node down and out of the plans at once. The node's next HTTP heartbeat,
 * if any, brings it back under a lease the leader keeps until its agent
 * writes the key again.
 */
static void nodes_poll(double now)
{
	static bool seen[IDN_MAX_NODES];
	struct etcd_kv *kvs = NULL;
	char pfx[96], err[256];
	bool changed = false;
	int n = 0;

	snprintf(pfx, sizeof(pfx), "%snodes/", D.prefix);
	if (etcd_range(&E, pfx, false, &kvs, &n, NULL))
		return;
	memset(seen, 0, sizeof(seen));
	for (int i = 0; i < n; i++) {
		unsigned int id;
		bool agent;
		json_object *o;
		struct d_node *dn;

		if (sscanf(kvs[i].key + strlen(pfx), "%u", &id) != 1 || id >= IDN_MAX_NODES)
			continue;
		o = node_val(kvs[i].val, &agent);
		dn = &D.nodes[id];
		if (!agent) {
			json_object_put(o);
			continue;
		}
		seen[id] = true;
		if (!dn->used) {
			struct d_node nd;

			if (o && !idnd_node_from_json(o, &nd, err, sizeof(err)) && nd.id == id) {
				/* an agent's own key: its trust is granted, not claimed */
				idnd_ident_grant(id, &nd.trust, &nd.confidential);
				nd.drain = drain_key[id];	/* the operator's, not the agent's */
				nd.up = true;
				nd.last_hb = now;	/* one timeout to heartbeat */
				nd.lease = kvs[i].lease;
				*dn = nd;
				idnd_store_node(dn);
				idnd_node_push(dn);
				changed = true;
				pr_info("DIST: node %u registered by its own key\n", id);
			}
		} else if (!agent_lease[id] || dn->lease != kvs[i].lease) {
			if (!agent_lease[id] && dn->lease && dn->lease != kvs[i].lease)
				etcd_lease_revoke(&E, dn->lease);	/* ours, unused */
			dn->lease = kvs[i].lease;
		}
		if (dn->used && !agent_lease[id])
			pr_info("DIST: node %u holds its own lease %llx\n", id,
				(long long)kvs[i].lease);
		agent_lease[id] = dn->used;
		json_object_put(o);
	}
	etcd_kvs_free(kvs, n);
	for (int j = 0; j < IDN_MAX_NODES; j++) {
		struct d_node *dn = &D.nodes[j];

		if (!agent_lease[j] || seen[j])
			continue;
		agent_lease[j] = false;
		dn->lease = 0;
		if (!dn->used || !dn->up)
			continue;
		dn->up = false;
		dn->down_at = now;
		D.nodes_down++;
		changed = true;
		idnd_node_push(dn);	/* ORDER: health first, then plans */
		pr_info("DIST: node %u: its own lease is gone (key deleted): down\n", j);
	}
	if (changed && idnd_compile())
		pr_warn("DIST: plan commit failed: %s\n", idn_errmsg());
}

/* ---- election ---- */

/*
 * An etcd call of the election failed: say why once per distinct reason
 * (the tick repeats every TICK_S), an error when etcd refused us (auth or
 * permissions: only the operator can fix it), a warning otherwise.
 */
static void elect_failed(const char *what, int err)
{
	static char last[sizeof(E.err)];

	if (!strcmp(last, etcd_err(&E)))
		return;
	snprintf(last, sizeof(last), "%s", etcd_err(&E));
	if (err == -EACCES)
		pr_err("DIST: %s refused by etcd (credentials or permissions; --etcd-user, "
		       "--etcd-cert): %s\n", what, last);
	else
		pr_warn("DIST: %s: %s\n", what, last);
}

void idnd_dist_tick(double now)
{
	char lkey[96];
	int e;

	static uint64_t auths;

	if (!D.etcd || now < next_tick)
		return;
	next_tick = now + TICK_S;
	if (E.auths != auths) {		/* etcd auth: a token, the first or after expiry */
		auths = E.auths;
		pr_info("DIST: etcd token %llu obtained (etcd auth)\n", (unsigned long long)auths);
	}
	snprintf(lkey, sizeof(lkey), "%sleader", D.prefix);
	if (D.leader) {
		if (!etcd_lease_keepalive(&E, D.leader_lease)) {
			D.etcd_ok = true;
			nodes_poll(now);
			am_expire(now);
			return;
		}
		D.etcd_ok = false;
		pr_warn("DIST: %s lost the leader lease: %s\n", D.replica, etcd_err(&E));
		D.leader = false;
		D.leader_lease = 0;
		return;
	}
	if (!D.leader_lease || etcd_lease_keepalive(&E, D.leader_lease)) {
		D.leader_lease = 0;
		e = etcd_lease_grant(&E, LEADER_TTL, &D.leader_lease);
		if (e) {
			elect_failed("leader lease", e);
			D.etcd_ok = false;
			return;
		}
	}
	D.etcd_ok = true;	/* etcd answers: leader below, or a follower */
	{
		struct etcd_op op = { lkey, D.replica, strlen(D.replica), D.leader_lease };

		e = etcd_txn(&E, lkey, NULL, &op, 1);
	}
	if (e) {
		if (e != -ECANCELED)
			elect_failed("leader key", e);
		return;		/* someone else leads (or etcd is away) */
	}
	D.leader = true;
	D.takeovers++;
	pr_info("DIST: %s is the leader of %s\n", D.replica, D.prefix);
	if (load_registry())
		pr_warn("DIST: load registry: %s\n", idn_errmsg());
	if (idnd_compile())
		pr_warn("DIST: compile after takeover: %s\n", idn_errmsg());
	memset(tk_pub, 0, sizeof(tk_pub));
	idnd_ident_push_keys();		/* the telemetry keys this replica issued */
	for (int i = 0; i < IDND_MAX_PEERS; i++) {	/* peers' entries: at the next fed tick */
		free(fn_pub[i]);
		fn_pub[i] = NULL;
	}
	for (int i = 0; i < n_as_pub; i++)	/* affinity seeds: at the next refresh */
		free(as_pub[i].val);
	n_as_pub = 0;
	/* re-points this replica wrote while it led before: gone with that lease */
	n_am_pub = 0;
}

/* ---- router side: the watcher ---- */

struct wstate {
	struct idn_plan_op *ops;
	int n_ops, cap;
	bool gen_seen;
	bool syncing;		/* full sync: one snapshot, committed at its end */
	uint32_t gen;
	int64_t gen_rev;	/* revision of the txn that wrote gen */
	/* full sync: plan keys whose value was refused (their map entry stays) */
	struct idn_plan_key *kept;
	int n_kept, cap_kept;
};

static void wkeep(struct wstate *w, const struct idn_plan_key *k)
{
	if (!w->syncing)
		return;
	if (w->n_kept == w->cap_kept) {
		int nc = w->cap_kept ? 2 * w->cap_kept : 16;
		struct idn_plan_key *p = realloc(w->kept, nc * sizeof(*p));

		if (!p)
			return;	/* then a full sync drops that plan: never a wrong one */
		w->kept = p;
		w->cap_kept = nc;
	}
	w->kept[w->n_kept++] = *k;
}

static int plans_active(struct idn_plan_entry **cur)
{
	struct idn_config cfg;
	int e = idn_config_get(&D.maps, &cfg);

	return e ? e : idn_plan_list(&D.maps, cfg.active_slot & 1, cur);
}

/* Commit the pending ops; deletes of plans not in the maps are dropped. */
static int wcommit(struct wstate *w)
{
	struct idn_plan_entry *cur = NULL;
	int n = plans_active(&cur), k = 0, e;
	__u32 gen = 0;

	if (n < 0)
		return n;
	for (int i = 0; i < w->n_ops; i++) {
		const struct idn_plan_key *ki = &w->ops[i].key;
		bool have = false;

		if (!w->ops[i].del) {
			w->ops[k++] = w->ops[i];
			continue;
		}
		/* a delete is kept if the plan exists by then: maps, then ops kept */
		for (int j = 0; j < n && !have; j++)
			have = cur[j].key.cap == ki->cap && cur[j].key.tier == ki->tier &&
			       cur[j].key.policy == ki->policy;
		for (int j = 0; j < k; j++)
			if (w->ops[j].key.cap == ki->cap && w->ops[j].key.tier == ki->tier &&
			    w->ops[j].key.policy == ki->policy)
				have = !w->ops[j].del;
		if (have)
			w->ops[k++] = w->ops[i];
	}
	free(cur);
	e = idn_plan_commit(&D.maps, w->ops, k, &gen);
	if (!e)
		pr_info("WATCH: generation %u applied as local generation %u (%d changes)\n",
			w->gen, gen, k);
	w->n_ops = 0;
	return e;
}

static int wadd(struct wstate *w, const struct idn_plan_op *op)
{
	if (w->n_ops == w->cap) {
		int nc = w->cap ? 2 * w->cap : 64;
		struct idn_plan_op *p = realloc(w->ops, nc * sizeof(*p));

		if (!p)
			return -ENOMEM;
		w->ops = p;
		w->cap = nc;
	}
	w->ops[w->n_ops++] = *op;
	return 0;
}

static int parse_plan_key(const char *rest, struct idn_plan_key *k)
{
	unsigned int cap, tier, pol;

	if (sscanf(rest, "%u-%u-%u", &cap, &tier, &pol) != 3 || tier > 255 || pol > 255)
		return -EINVAL;
	memset(k, 0, sizeof(*k));
	k->cap = cap;
	k->tier = tier;
	k->policy = pol;
	return 0;
}

/*
 * A value under the prefix the watcher will not write into the maps:
 * refused, counted and said; what the maps hold stays.
 */
static unsigned long w_refused;

static void wrefuse(const char *rest, int64_t rev, const char *why)
{
	w_refused++;
	pr_warn("WATCH: refused %s%s (revision %lld): %s; the maps keep what they had "
		"(%lu values refused since start)\n", D.prefix, rest, (long long)rev, why,
		w_refused);
}

/*
 * The watcher's drains: drains/ID (w_drain) or the "drain" of an
 * idnd-written nodes/ID (w_ndrain; an agent-owned key's is ignored): the
 * node's entry says health drain if either does, so an agent re-writing
 * its own nodes/ID does not undo the operator's drain.
 */
static bool w_drain[IDN_MAX_NODES], w_ndrain[IDN_MAX_NODES];

static void wnode(const char *rest, const char *val, int64_t rev)
{
	char err[256];
	unsigned int id;
	char end;

	if (sscanf(rest, "%u%c", &id, &end) != 1 || id >= IDN_MAX_NODES) {
		if (val)
			wrefuse(rest - 6, rev, "not a node id (0..4095)");
		return;
	}
	if (idnd_fed_reserved(id)) {	/* the peers' entries come from fednodes/ only */
		if (val)
			wrefuse(rest - 6, rev, "node ids 4080..4095 are federation peers' "
				"entries (fednodes/)");
		return;
	}
	if (val) {
		bool agent;
		json_object *o = node_val(val, &agent);
		struct d_node nd = {};

		if (!o) {
			wrefuse(rest - 6, rev, "not a JSON object");
			return;
		}
		if (idnd_node_from_json(o, &nd, err, sizeof(err))) {
			wrefuse(rest - 6, rev, err);
			json_object_put(o);
			return;
		}
		json_object_put(o);
		if (nd.id != id) {
			snprintf(err, sizeof(err), "value names node %u, the key node %u", nd.id, id);
			wrefuse(rest - 6, rev, err);
			return;
		}
		nd.used = true;
		nd.up = true;
		w_ndrain[id] = !agent && nd.drain;
		nd.drain = w_ndrain[id] || w_drain[id];
		D.nodes[id] = nd;
	} else if (D.nodes[id].used) {
		D.nodes[id].up = false;	/* its key expired or was deleted */
	} else {
		return;
	}
	if (D.nodes[id].used && idnd_node_push(&D.nodes[id]))
		pr_warn("WATCH: node %u: %s\n", id, idn_errmsg());
	pr_info("WATCH: node %u %s\n", id, !D.nodes[id].up ? "down" :
		D.nodes[id].drain ? "up, draining" : "up");
}

/*
 * drains/ID from the leader: the operator's drain of node ID, applied to
 * its entry (health drain) whatever wrote nodes/ID; deleted: undrained
 * (unless an idnd-written nodes/ID still says drain). A value that fails
 * a check is refused (counted, said) and the entry keeps what it had.
 */
static void wdrain(const char *rest, const char *val, int64_t rev)
{
	char why[128], end;
	unsigned int id;
	bool was;

	if (sscanf(rest, "%u%c", &id, &end) != 1 || id >= IDN_MAX_NODES ||
	    idnd_fed_reserved(id) || (val && drain_parse(rest, val, &id, why, sizeof(why)))) {
		if (val) {
			drain_parse(rest, val, &id, why, sizeof(why));
			wrefuse(rest - 7, rev, why);
		}
		return;		/* deleted: a key that was never applied */
	}
	w_drain[id] = val != NULL;
	if (!D.nodes[id].used)
		return;		/* applied when its nodes/ID comes */
	was = D.nodes[id].drain;
	D.nodes[id].drain = w_ndrain[id] || w_drain[id];
	if (was == D.nodes[id].drain)
		return;
	if (idnd_node_push(&D.nodes[id]))
		pr_warn("WATCH: node %u: %s\n", id, idn_errmsg());
	pr_info("WATCH: node %u %s (%sdrains/%u, revision %lld)\n", id,
		D.nodes[id].drain ? "draining" : "undrained", D.prefix, id, (long long)rev);
}

/* telekeys/ID from the leader: the router's key for node ID's datagrams */
static bool tk_seen[IDN_MAX_NODES];

static void wtelekey(const char *rest, const char *val, int64_t rev)
{
	json_object *o, *v;
	uint8_t key[16];
	unsigned int id;
	int64_t kid, vid;
	const char *hex;
	char end;

	if (sscanf(rest, "%u%c", &id, &end) != 1 || id >= IDN_MAX_NODES) {
		if (val)
			wrefuse(rest - 9, rev, "not a node id (0..4095)");
		return;
	}
	if (!val) {
		tk_seen[id] = false;
		if (D.have_maps && idn_tele_key_put(&D.maps, id, NULL, 0))
			pr_warn("WATCH: node %u: telemetry key: %s\n", id, idn_errmsg());
		pr_info("WATCH: node %u: telemetry key withdrawn\n", id);
		return;
	}
	o = json_tokener_parse(val);
	vid = o && json_object_object_get_ex(o, "id", &v) &&
	      json_object_is_type(v, json_type_int) ? json_object_get_int64(v) : -1;
	kid = o && json_object_object_get_ex(o, "key_id", &v) &&
	      json_object_is_type(v, json_type_int) ? json_object_get_int64(v) : -1;
	hex = o && json_object_object_get_ex(o, "key", &v) &&
	      json_object_is_type(v, json_type_string) ? json_object_get_string(v) : "";
	if (vid != id || kid < 1 || kid > UINT32_MAX || strlen(hex) != 32 ||
	    strspn(hex, "0123456789abcdef") != 32) {
		json_object_put(o);
		wrefuse(rest - 9, rev, vid != id ? "not a telemetry key of this node"
				       : "a telemetry key is {id, key_id 1..2^32-1, key: 32 hex}");
		return;
	}
	for (int i = 0; i < 16; i++)
		sscanf(hex + 2 * i, "%2hhx", &key[i]);
	json_object_put(o);
	tk_seen[id] = true;
	if (D.have_maps) {
		struct idn_tele_key cur;

		/* the same key already there: keep its replay window */
		if (!idn_tele_key_get(&D.maps, id, &cur) && cur.key_id == kid)
			return;
		if (idn_tele_key_put(&D.maps, id, key, (uint32_t)kid)) {
			pr_warn("WATCH: node %u: telemetry key: %s\n", id, idn_errmsg());
			return;
		}
	}
	pr_info("WATCH: node %u: telemetry key %lld\n", id, (long long)kid);
}

/* a peer's usage is counted from the router's counters when its entry is installed */
static struct {
	char peer[64];		/* whose counters base_* are */
	uint64_t base_flows, base_bytes;
} wslot[IDND_MAX_PEERS];

static void wslot_base(int slot, const char *peer)
{
	struct idn_nstat *ns = D.have_maps ? calloc(IDN_MAX_NODES, sizeof(*ns)) : NULL;
	uint32_t id = IDND_PEER_NODE(slot);

	snprintf(wslot[slot].peer, sizeof(wslot[slot].peer), "%s", peer);
	wslot[slot].base_flows = wslot[slot].base_bytes = 0;
	if (ns && !idn_nstats_read(&D.maps, ns)) {
		wslot[slot].base_flows = ns[id].flows;
		wslot[slot].base_bytes = ns[id].bytes;
	}
	free(ns);
}

/*
 * fednodes/ID from the leader: a federation peer's node entry (its
 * ingress, WAN, its domain), which the plans' remote candidates name.
 * Every field is checked; a value that fails is refused (counted, said)
 * and the maps keep what they had. fn_seen: in the current full sync.
 */
static bool fn_seen[IDND_MAX_PEERS];
/* the peer each installed entry is (usage below); under fn_lock with the entry */
static char fn_peer[IDND_MAX_PEERS][64];
static pthread_mutex_t fn_lock = PTHREAD_MUTEX_INITIALIZER;

static int fednode_parse(json_object *o, unsigned int id, struct idn_node *n, char *peer,
			 size_t peerlen, char *why, size_t wl)
{
	static const struct { const char *k; long lo, hi; } ints[] = {
		{ "id", 0, IDN_MAX_NODES - 1 }, { "domain", 0, 31 }, { "trust", 0, 7 },
		{ "net_us", 0, 10000000 }, { "load", 0, 1000 },
	};
	static const char *const strs[] = { "peer", "addr4", "health" };
	long v[5];
	const char *sv[3];
	struct in_addr a;
	json_object *x;
	int nf = 0;

	if (!o || !json_object_is_type(o, json_type_object)) {
		snprintf(why, wl, "not a JSON object");
		return -EINVAL;
	}
	json_object_object_foreach(o, key, val) {
		bool known = false;

		(void)val;
		for (size_t i = 0; i < 5; i++)
			known |= !strcmp(key, ints[i].k);
		for (size_t i = 0; i < 3; i++)
			known |= !strcmp(key, strs[i]);
		if (!known) {
			snprintf(why, wl, "unknown field \"%.32s\"", key);
			return -EINVAL;
		}
		nf++;
	}
	for (size_t i = 0; i < 5; i++) {
		if (!json_object_object_get_ex(o, ints[i].k, &x) ||
		    !json_object_is_type(x, json_type_int) ||
		    json_object_get_int64(x) < ints[i].lo || json_object_get_int64(x) > ints[i].hi) {
			snprintf(why, wl, "field \"%s\": an integer %ld..%ld", ints[i].k,
				 ints[i].lo, ints[i].hi);
			return -EINVAL;
		}
		v[i] = json_object_get_int64(x);
	}
	for (size_t i = 0; i < 3; i++) {
		if (!json_object_object_get_ex(o, strs[i], &x) ||
		    !json_object_is_type(x, json_type_string)) {
			snprintf(why, wl, "field \"%s\": a string", strs[i]);
			return -EINVAL;
		}
		sv[i] = json_object_get_string(x);
	}
	if (nf != 8) {
		snprintf(why, wl, "a peer entry has exactly id, peer, addr4, domain, trust, "
			 "health, net_us, load");
		return -EINVAL;
	}
	if (v[0] != id) {
		snprintf(why, wl, "value names node %ld, the key node %u", v[0], id);
		return -EINVAL;
	}
	if (!capsig_name_ok(sv[0])) {
		snprintf(why, wl, "field \"peer\": 1..63 of A-Z a-z 0-9 . _ -");
		return -EINVAL;
	}
	if (inet_pton(AF_INET, sv[1], &a) != 1 || !a.s_addr) {
		snprintf(why, wl, "field \"addr4\": the peer's IPv4 ingress address");
		return -EINVAL;
	}
	if (strcmp(sv[2], "up") && strcmp(sv[2], "down")) {
		snprintf(why, wl, "field \"health\": \"up\" or \"down\"");
		return -EINVAL;
	}
	memset(n, 0, sizeof(*n));
	n->flags = IDN_NODE_F_VALID | IDN_NODE_F_WAN | IDN_NODE_F_LOC4;
	n->addr4 = a.s_addr;
	n->domain = v[1];
	n->trust = v[2];
	n->net_us = v[3];
	n->load = v[4];
	n->health = strcmp(sv[2], "up") ? IDN_HEALTH_DOWN : IDN_HEALTH_UP;
	snprintf(peer, peerlen, "%s", sv[0]);
	return 0;
}

/* a peer's entry out of the maps (invalid), if it was there */
static void fednode_clear(unsigned int id)
{
	struct idn_node cur, none = {};

	pthread_mutex_lock(&fn_lock);
	fn_peer[IDN_MAX_NODES - 1 - id][0] = 0;
	if (D.have_maps && !idn_node_get(&D.maps, id, &cur) && (cur.flags & IDN_NODE_F_VALID)) {
		if (idn_node_put(&D.maps, id, &none))
			pr_warn("WATCH: peer entry %u: %s\n", id, idn_errmsg());
		else
			pr_info("WATCH: peer entry %u removed\n", id);
	}
	pthread_mutex_unlock(&fn_lock);
}

static void wfednode(const char *rest, const char *val, int64_t rev)
{
	char why[256], peer[64], a4[INET_ADDRSTRLEN];
	struct idn_node n, old;
	unsigned int id;
	json_object *o;
	char end;

	if (sscanf(rest, "%u%c", &id, &end) != 1 || !idnd_fed_reserved(id)) {
		if (val)
			wrefuse(rest - 9, rev, "not a federation peer's node id (4080..4095)");
		return;
	}
	if (!val) {
		fednode_clear(id);
		return;
	}
	fn_seen[IDN_MAX_NODES - 1 - id] = true;	/* refused or not: the maps keep it */
	o = json_tokener_parse(val);
	if (fednode_parse(o, id, &n, peer, sizeof(peer), why, sizeof(why))) {
		json_object_put(o);
		wrefuse(rest - 9, rev, why);
		return;
	}
	json_object_put(o);
	pthread_mutex_lock(&fn_lock);
	if (D.have_maps) {
		/* the dataplane's charge of the entry stays: the usage tick counts it */
		if (!idn_node_get(&D.maps, id, &old) && (old.flags & IDN_NODE_F_VALID)) {
			n.charged_tokens = old.charged_tokens;
			n.charged_reqs = old.charged_reqs;
		}
		if (idn_node_put(&D.maps, id, &n)) {
			pthread_mutex_unlock(&fn_lock);
			pr_warn("WATCH: peer entry %u: %s\n", id, idn_errmsg());
			return;
		}
	}
	if (strcmp(fn_peer[IDN_MAX_NODES - 1 - id], peer))
		wslot_base(IDN_MAX_NODES - 1 - id, peer);
	snprintf(fn_peer[IDN_MAX_NODES - 1 - id], sizeof(fn_peer[0]), "%s", peer);
	pthread_mutex_unlock(&fn_lock);
	inet_ntop(AF_INET, &n.addr4, a4, sizeof(a4));
	pr_info("WATCH: peer entry %u (peer %s, ingress %s, domain %u) %s\n", id, peer, a4,
		n.domain, n.health == IDN_HEALTH_UP ? "up" : "down");
}

/* @o is an object whose members are all among @names[0..n): their count, or -EINVAL */
static int fields_known(json_object *o, const char *const *names, int n, char *why, size_t wl)
{
	int nf = 0;

	if (!o || !json_object_is_type(o, json_type_object)) {
		snprintf(why, wl, "not a JSON object");
		return -EINVAL;
	}
	json_object_object_foreach(o, key, val) {
		bool known = false;

		(void)val;
		for (int i = 0; i < n; i++)
			known |= !strcmp(key, names[i]);
		if (!known) {
			snprintf(why, wl, "unknown field \"%.32s\"", key);
			return -EINVAL;
		}
		nf++;
	}
	return nf;
}

/* member @k of @o: this domain's node id (not a federation peer's) */
static int node_field(json_object *o, const char *k, uint32_t *id, char *why, size_t wl)
{
	json_object *x;
	int64_t v;

	if (!json_object_object_get_ex(o, k, &x) || !json_object_is_type(x, json_type_int) ||
	    (v = json_object_get_int64(x)) < 0 || v >= IDN_MAX_NODES ||
	    idnd_fed_reserved((uint32_t)v)) {
		snprintf(why, wl, "field \"%s\": a node id 0..%d (not a federation peer's)", k,
			 IDND_PEER_NODE0 - 1);
		return -EINVAL;
	}
	*id = v;
	return 0;
}

/* "classes" of a seed or a re-point: 1..8 capability classes */
static int classes_parse(json_object *o, uint32_t *cls, int *n_cls, char *why, size_t wl)
{
	json_object *a, *x;
	int64_t v;

	if (!json_object_object_get_ex(o, "classes", &a) ||
	    !json_object_is_type(a, json_type_array) || !json_object_array_length(a) ||
	    json_object_array_length(a) > 8) {
		snprintf(why, wl, "field \"classes\": an array of 1..8 capability classes");
		return -EINVAL;
	}
	*n_cls = json_object_array_length(a);
	for (int i = 0; i < *n_cls; i++) {
		x = json_object_array_get_idx(a, i);
		if (!json_object_is_type(x, json_type_int) || (v = json_object_get_int64(x)) < 0 ||
		    v > IDN_CAP_CLASS(UINT32_MAX)) {
			snprintf(why, wl, "field \"classes\": integers 0..%u",
				 IDN_CAP_CLASS(UINT32_MAX));
			return -EINVAL;
		}
		cls[i] = v;
	}
	return 0;
}

/*
 * affseeds/TOKEN from the leader: an affinity seed, installed as idnd's
 * local path does (model.c): (token, class) -> node for each class, only
 * where the router has no entry (BPF_NOEXIST): its own entry is a newer
 * decision and is kept. A value that fails a check is refused (counted,
 * said). A deleted key (no longer popular) removes nothing: the entries
 * age in the router's table as its own do.
 */
static unsigned long w_aff_seeded, w_aff_kept;

static int affseed_parse(json_object *o, uint32_t *node, uint32_t *cls, int *n_cls,
			 char *why, size_t wl)
{
	static const char *const names[] = { "node", "classes" };
	int nf = fields_known(o, names, 2, why, wl);

	if (nf < 0 || node_field(o, "node", node, why, wl) ||
	    classes_parse(o, cls, n_cls, why, wl))
		return -EINVAL;
	if (nf != 2) {
		snprintf(why, wl, "a seed has exactly node, classes");
		return -EINVAL;
	}
	return 0;
}

static void waffseed(const char *rest, const char *val, int64_t rev)
{
	uint32_t node, cls[8];
	unsigned long long token;
	int n_cls, wr = 0, kept = 0;
	json_object *o;
	char why[256];
	size_t hl = strspn(rest, "0123456789abcdef");

	if (hl != 16 || rest[16] || !(token = strtoull(rest, NULL, 16))) {
		if (val)
			wrefuse(rest - 9, rev, "not an affinity token (16 lowercase hex, not 0)");
		return;
	}
	if (!val)
		return;		/* no longer popular: the router's entries stay, aging */
	o = json_tokener_parse(val);
	if (affseed_parse(o, &node, cls, &n_cls, why, sizeof(why))) {
		json_object_put(o);
		wrefuse(rest - 9, rev, why);
		return;
	}
	json_object_put(o);
	for (int q = 0; D.have_maps && q < n_cls; q++) {
		int e = idn_aff_seed(&D.maps, token, cls[q], node);

		if (!e) {
			wr++;
			w_aff_seeded++;
		} else if (e == -EEXIST) {
			kept++;
			w_aff_kept++;
		} else {
			pr_warn("WATCH: affinity seed %016llx class %u: %s\n", token, cls[q],
				idn_errmsg());
		}
	}
	pr_info("WATCH: affinity seed %016llx -> node %u: %d written, %d kept (the router's "
		"own); %lu seeded, %lu kept since start\n", token, node, wr, kept, w_aff_seeded,
		w_aff_kept);
}

/*
 * affmoves/TOKEN from the leader: a migration's re-point, written after
 * the destination committed the token's blocks. The rule (docs/
 * controller.md "Migration decisions"), per class of the value:
 *   - the router's entry names the source, or it has none: pointed at the
 *     destination (overwritten; the state is there now);
 *   - it names the destination already: nothing to do;
 *   - it names another node: kept. This router has since sent the token
 *     elsewhere (its own choice, newer than the state the migration
 *     moved, and that node now holds the turn it served).
 * Ordering: per token the etcd revision; a revision at or below the one
 * applied last for the token (the same key read again by a full sync) is
 * not applied again. A value written more than IDND_AFF_MOVE_KEEP_S
 * seconds ago by the leader's clock ("at", wall clock ms; the hosts'
 * clocks assumed within a second or so), or that far in the future, is
 * stale: not applied, counted (a watcher that read it late, e.g. after a
 * restart, would undo a newer choice of its router). A value that fails a
 * check is refused (counted, said); a deleted key removes nothing.
 */
#define AM_SEEN	256
static struct {
	uint64_t token;
	int64_t rev;
} am_seen[AM_SEEN];
static unsigned long w_mv_pointed, w_mv_kept, w_mv_same, w_mv_stale;

static int affmove_parse(json_object *o, uint32_t *src, uint32_t *dst, uint32_t *cls,
			 int *n_cls, int64_t *at, char *why, size_t wl)
{
	static const char *const names[] = { "src", "dst", "classes", "at" };
	json_object *x;

	if (fields_known(o, names, 4, why, wl) < 0 || node_field(o, "src", src, why, wl) ||
	    node_field(o, "dst", dst, why, wl))
		return -EINVAL;
	if (*src == *dst) {
		snprintf(why, wl, "fields \"src\" and \"dst\": the same node");
		return -EINVAL;
	}
	if (classes_parse(o, cls, n_cls, why, wl))
		return -EINVAL;
	if (!json_object_object_get_ex(o, "at", &x) || !json_object_is_type(x, json_type_int) ||
	    (*at = json_object_get_int64(x)) <= 0) {
		snprintf(why, wl, "field \"at\": the leader's wall clock in ms, positive");
		return -EINVAL;
	}
	return 0;
}

static void waffmove(const char *rest, const char *val, int64_t rev)
{
	uint32_t src, dst, cls[8];
	unsigned long long token;
	int n_cls, pointed = 0, kept = 0, same = 0;
	int64_t at, now_ms, age;
	struct timespec ts;
	json_object *o;
	char why[256];
	size_t hl = strspn(rest, "0123456789abcdef");
	unsigned int h;

	if (hl != 16 || rest[16] || !(token = strtoull(rest, NULL, 16))) {
		if (val)
			wrefuse(rest - 9, rev, "not an affinity token (16 lowercase hex, not 0)");
		return;
	}
	if (!val)
		return;		/* the leader's clean-up: the router's entries stay */
	o = json_tokener_parse(val);
	if (affmove_parse(o, &src, &dst, cls, &n_cls, &at, why, sizeof(why))) {
		json_object_put(o);
		wrefuse(rest - 9, rev, why);
		return;
	}
	json_object_put(o);
	h = token % AM_SEEN;
	if (am_seen[h].token == token && rev <= am_seen[h].rev)
		return;		/* applied already (a full sync reads it again) */
	am_seen[h].token = token;
	am_seen[h].rev = rev;
	clock_gettime(CLOCK_REALTIME, &ts);
	now_ms = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
	age = now_ms - at;
	if (age > IDND_AFF_MOVE_KEEP_S * 1000 || age < -IDND_AFF_MOVE_KEEP_S * 1000) {
		w_mv_stale++;
		pr_warn("WATCH: re-point %016llx node %u -> %u (revision %lld) is stale: written "
			"%lld ms ago by the leader's clock (at most %d s); not applied (%lu stale since "
			"start)\n", token, src, dst, (long long)rev, (long long)age,
			IDND_AFF_MOVE_KEEP_S, w_mv_stale);
		return;
	}
	for (int q = 0; D.have_maps && q < n_cls; q++) {
		struct idn_aff cur;
		int e = idn_aff_get(&D.maps, token, cls[q], &cur);

		if (e == -ENOENT)	/* none: the state is at dst now */
			e = idn_aff_seed(&D.maps, token, cls[q], dst);
		else if (!e && cur.node == src)
			e = idn_aff_point(&D.maps, token, cls[q], dst);
		else if (!e && cur.node == dst)
			e = 1;
		else if (!e)
			e = 2;
		if (!e) {
			pointed++;
			w_mv_pointed++;
		} else if (e == 1) {
			same++;
			w_mv_same++;
		} else if (e == 2 || e == -EEXIST) {	/* EEXIST: the dataplane wrote one meanwhile */
			kept++;
			w_mv_kept++;
		} else {
			pr_warn("WATCH: re-point %016llx class %u: %s\n", token, cls[q], idn_errmsg());
		}
	}
	pr_info("WATCH: re-point %016llx node %u -> %u (revision %lld, %lld ms after the leader "
		"wrote it): %d re-pointed, %d already there, %d kept (the router sent it to another "
		"node); %lu re-pointed, %lu kept, %lu stale since start\n", token, src, dst,
		(long long)rev, (long long)age, pointed, same, kept, w_mv_pointed, w_mv_kept,
		w_mv_stale);
}

static int on_event(void *arg, const char *key, const void *val, size_t len, int64_t rev)
{
	struct wstate *w = arg;
	size_t pl = strlen(D.prefix);
	const char *rest;

	if (!key) {
		if (w->gen_seen) {
			w->gen_seen = false;
			if (wcommit(w))
				pr_warn("WATCH: commit: %s\n", idn_errmsg());
		}
		return 0;
	}
	/*
	 * A generation ends with the txn that writes gen: events of a later
	 * txn (another revision) in the same watch response belong to the
	 * next generation, which may still be incomplete.
	 */
	if (w->gen_seen && !w->syncing && rev != w->gen_rev) {
		w->gen_seen = false;
		if (wcommit(w))
			pr_warn("WATCH: commit: %s\n", idn_errmsg());
	}
	if (strncmp(key, D.prefix, pl))
		return 0;
	rest = key + pl;
	if (!strncmp(rest, "nodes/", 6)) {
		wnode(rest + 6, val, rev);
	} else if (!strncmp(rest, "drains/", 7)) {
		wdrain(rest + 7, val, rev);
	} else if (!strncmp(rest, "telekeys/", 9)) {
		wtelekey(rest + 9, val, rev);
	} else if (!strncmp(rest, "fednodes/", 9)) {
		wfednode(rest + 9, val, rev);
	} else if (!strncmp(rest, "affseeds/", 9)) {
		waffseed(rest + 9, val, rev);
	} else if (!strncmp(rest, "affmoves/", 9)) {
		waffmove(rest + 9, val, rev);
	} else if (!strncmp(rest, "plans/", 6)) {
		struct idn_plan_op op = {};
		char why[256];

		if (parse_plan_key(rest + 6, &op.key)) {
			if (val)
				wrefuse(rest, rev, "not a plan key CAP-TIER-POLICY");
			return 0;
		}
		if (val) {
			struct plan_val pv;

			if (len != sizeof(pv)) {
				snprintf(why, sizeof(why), "%zu bytes, a plan is %zu", len,
					 sizeof(pv));
				wrefuse(rest, rev, why);
				wkeep(w, &op.key);
				return 0;
			}
			memcpy(&pv, val, sizeof(pv));
			if (memcmp(&pv.key, &op.key, sizeof(op.key))) {
				wrefuse(rest, rev, "the value's plan key is not its etcd key's");
				wkeep(w, &op.key);
				return 0;
			}
			if (idnd_plan_check(&pv.key, &pv.plan, why, sizeof(why))) {
				wrefuse(rest, rev, why);
				wkeep(w, &op.key);
				return 0;
			}
			op.plan = pv.plan;
		} else {
			op.del = true;
		}
		return wadd(w, &op);
	} else if (!strcmp(rest, "gen") && val) {
		w->gen = strtoul(val, NULL, 10);
		w->gen_seen = true;
		w->gen_rev = rev;
	}
	return 0;
}

/* Everything under the prefix as one generation; *rev: its revision. */
static int wsync(struct wstate *w, int64_t *rev)
{
	struct etcd_kv *kvs = NULL;
	struct idn_plan_entry *cur = NULL;
	int n = 0, n_cur, e;

	/*
	 * The prefix as it was when the last complete generation was written
	 * (the revision of its `gen` key): plan keys of a generation still
	 * being written in several txns are not applied; the watch from that
	 * revision + 1 delivers them with their `gen`.
	 */
	char gkey[96];
	int64_t at = 0;

	snprintf(gkey, sizeof(gkey), "%sgen", D.prefix);
	e = etcd_range(&E, gkey, true, &kvs, &n, rev);
	if (e)
		return dist_err(e);
	for (int i = 0; i < n; i++)
		if (!strcmp(kvs[i].key, gkey))
			at = kvs[i].mod_rev;
	etcd_kvs_free(kvs, n);
	kvs = NULL;
	n = 0;
	e = at ? etcd_range_at(&E, D.prefix, false, at, &kvs, &n, NULL) : -ENOENT;
	if (!e) {
		*rev = at;
	} else {
		if (at)	/* compacted: the newest state, complete or not */
			pr_warn("WATCH: revision %lld of gen: %s; reading the newest\n",
				(long long)at, etcd_err(&E));
		e = etcd_range(&E, D.prefix, false, &kvs, &n, rev);
		if (e)
			return dist_err(e);
	}
	w->n_ops = 0;
	w->n_kept = 0;
	w->syncing = true;
	for (int j = 0; j < IDN_MAX_NODES; j++)
		if (D.nodes[j].used)
			D.nodes[j].up = false;
	memset(tk_seen, 0, sizeof(tk_seen));
	memset(fn_seen, 0, sizeof(fn_seen));
	/* drains/ sorts before nodes/: each node's entry is built with its drain */
	memset(w_drain, 0, sizeof(w_drain));
	for (int i = 0; i < n && !e; i++)
		e = on_event(w, kvs[i].key, kvs[i].val, kvs[i].val_len, kvs[i].mod_rev);
	/* nodes we knew whose key is gone; telemetry keys etcd no longer has */
	for (int j = 0; j < IDN_MAX_NODES; j++) {
		struct idn_tele_key cur;

		if (D.nodes[j].used && !D.nodes[j].up)
			idnd_node_push(&D.nodes[j]);
		if (D.have_maps && !tk_seen[j] && !idn_tele_key_get(&D.maps, j, &cur))
			idn_tele_key_put(&D.maps, j, NULL, 0);
	}
	/* peers' entries etcd no longer has (a withdrawal missed in a compaction) */
	for (int i = 0; i < IDND_MAX_PEERS; i++)
		if (!fn_seen[i])
			fednode_clear(IDND_PEER_NODE(i));
	/* plans in the maps that etcd no longer has */
	n_cur = plans_active(&cur);
	for (int j = 0; j < n_cur && !e; j++) {
		bool have = false;

		for (int i = 0; i < w->n_ops && !have; i++)
			have = !w->ops[i].del && w->ops[i].key.cap == cur[j].key.cap &&
			       w->ops[i].key.tier == cur[j].key.tier &&
			       w->ops[i].key.policy == cur[j].key.policy;
		for (int i = 0; i < w->n_kept && !have; i++)
			have = w->kept[i].cap == cur[j].key.cap &&
			       w->kept[i].tier == cur[j].key.tier &&
			       w->kept[i].policy == cur[j].key.policy;
		if (!have) {
			struct idn_plan_op op = { .del = true, .key = cur[j].key };

			e = wadd(w, &op);
		}
	}
	free(cur);
	etcd_kvs_free(kvs, n);
	w->gen_seen = false;
	w->syncing = false;
	return e ? e : wcommit(w);
}

/*
 * Usage per peer on this router, for settlement (docs/federation.md): a
 * thread with its own etcd client reads, every second, the router's
 * counters of each installed peer entry (new flows = requests, bytes
 * forwarded) and the prompt tokens the dataplane charged it (then set
 * back to 0: no telemetry resets a peer's charge), adds them to the
 * peer's record and writes the records that changed to
 * /idn/usage/DOMAIN/ROUTER/PEER = {"router", "peer", "requests",
 * "tokens", "bytes"} (ROUTER: -N, else idnd-PID), cumulative: a watcher
 * of the same name continues from what etcd has. Not under the domain's
 * prefix, which every watcher watches: one router's records would be
 * events for all of them. The leader sums them per peer
 * (idnd_dist_fed_usage(), idnctl peer usage).
 */
#define WU_MAX	(4 * IDND_MAX_PEERS)
struct wusage {
	char peer[64];
	uint64_t req, tok, bytes;
	bool dirty;
};

static struct wusage wu[WU_MAX];
static struct etcd EU;
static volatile int *wu_stop;

static struct wusage *wu_find(const char *peer)
{
	for (int i = 0; i < WU_MAX; i++)
		if (!strcmp(wu[i].peer, peer))
			return &wu[i];
	for (int i = 0; i < WU_MAX; i++)
		if (!wu[i].peer[0]) {
			snprintf(wu[i].peer, sizeof(wu[i].peer), "%s", peer);
			return &wu[i];
		}
	return NULL;
}

static void wu_load(void)
{
	struct etcd_kv *kvs = NULL;
	char pfx[192];
	int n = 0;

	snprintf(pfx, sizeof(pfx), "/idn/usage%.59s%.63s/", D.prefix + 4, D.replica);
	if (etcd_range(&EU, pfx, false, &kvs, &n, NULL)) {
		pr_warn("WATCH: usage records: %s\n", etcd_err(&EU));
		return;
	}
	for (int i = 0; i < n; i++) {
		json_object *o = json_tokener_parse(kvs[i].val), *v;
		const char *peer = kvs[i].key + strlen(pfx);
		struct wusage *u = capsig_name_ok(peer) ? wu_find(peer) : NULL;

		if (u && o) {
			if (json_object_object_get_ex(o, "requests", &v))
				u->req = json_object_get_int64(v);
			if (json_object_object_get_ex(o, "tokens", &v))
				u->tok = json_object_get_int64(v);
			if (json_object_object_get_ex(o, "bytes", &v))
				u->bytes = json_object_get_int64(v);
		}
		json_object_put(o);
	}
	etcd_kvs_free(kvs, n);
}

static void wu_tick(struct idn_nstat *ns)
{
	bool have_ns = !idn_nstats_read(&D.maps, ns);

	pthread_mutex_lock(&fn_lock);
	for (int i = 0; i < IDND_MAX_PEERS; i++) {
		uint32_t id = IDND_PEER_NODE(i);
		struct idn_node n;
		struct wusage *u;

		if (!fn_peer[i][0] || idn_node_get(&D.maps, id, &n) ||
		    !(n.flags & IDN_NODE_F_VALID) || !(u = wu_find(fn_peer[i])))
			continue;
		if (n.charged_tokens) {
			u->tok += n.charged_tokens;
			n.charged_tokens = 0;
			n.charged_reqs = 0;
			idn_node_put(&D.maps, id, &n);
			u->dirty = true;
		}
		if (!have_ns)
			continue;
		if (strcmp(wslot[i].peer, fn_peer[i]) || ns[id].flows < wslot[i].base_flows ||
		    ns[id].bytes < wslot[i].base_bytes) {
			/* counted from here: a new peer in the slot, or counters reset */
			strcpy(wslot[i].peer, fn_peer[i]);
			wslot[i].base_flows = ns[id].flows;
			wslot[i].base_bytes = ns[id].bytes;
			continue;
		}
		if (ns[id].flows > wslot[i].base_flows || ns[id].bytes > wslot[i].base_bytes) {
			u->req += ns[id].flows - wslot[i].base_flows;
			u->bytes += ns[id].bytes - wslot[i].base_bytes;
			wslot[i].base_flows = ns[id].flows;
			wslot[i].base_bytes = ns[id].bytes;
			u->dirty = true;
		}
	}
	pthread_mutex_unlock(&fn_lock);
	for (int i = 0; i < WU_MAX; i++) {
		struct wusage *u = &wu[i];
		json_object *o;
		const char *val;
		char key[256];

		if (!u->dirty)
			continue;
		snprintf(key, sizeof(key), "/idn/usage%.59s%.63s/%.63s", D.prefix + 4, D.replica,
			 u->peer);
		o = json_object_new_object();
		json_object_object_add(o, "router", json_object_new_string(D.replica));
		json_object_object_add(o, "peer", json_object_new_string(u->peer));
		json_object_object_add(o, "requests", json_object_new_int64(u->req));
		json_object_object_add(o, "tokens", json_object_new_int64(u->tok));
		json_object_object_add(o, "bytes", json_object_new_int64(u->bytes));
		val = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
		if (etcd_put(&EU, key, val, strlen(val), 0))
			pr_warn("WATCH: usage of peer %s: %s\n", u->peer, etcd_err(&EU));
		else
			u->dirty = false;
		json_object_put(o);
	}
}

static void *wu_main(void *arg)
{
	struct idn_nstat *ns = calloc(IDN_MAX_NODES, sizeof(*ns));

	(void)arg;
	if (!ns)
		return NULL;
	wu_load();
	while (!*wu_stop) {
		for (int i = 0; i < 10 && !*wu_stop; i++)
			usleep(100000);
		wu_tick(ns);	/* the last one at exit too */
	}
	free(ns);
	return NULL;
}

int idnd_dist_watch(volatile int *stop)
{
	pthread_t wu_thr;
	bool wu_run = false;

	struct wstate w = {};
	int64_t rev = 0, last;
	bool synced = false;

	wu_stop = stop;
	if (!capsig_name_ok(D.replica))
		pr_warn("WATCH: router name \"%s\" is no key name (-N: A-Z a-z 0-9 . _ -): no usage "
			"records for the federation peers\n", D.replica);
	else if (!etcd_open(&EU, D.etcd_url) && !pthread_create(&wu_thr, NULL, wu_main, NULL))
		wu_run = true;
	else
		pr_warn("WATCH: no usage records for the federation peers (etcd client, thread)\n");
	while (!*stop) {
		int e;

		if (!synced) {
			e = wsync(&w, &rev);
			if (e) {
				pr_warn("WATCH: sync: %s\n", idn_errmsg());
				usleep(200000);
				continue;
			}
			synced = true;
			pr_info("WATCH: synced %s at revision %lld\n", D.prefix, (long long)rev);
		}
		/* from the last revision seen: nothing is missed or applied twice */
		e = etcd_watch(&E, D.prefix, rev + 1, on_event, &w, stop, &last);
		if (last > rev)
			rev = last;
		if (*stop)
			break;
		pr_warn("WATCH: %s; again from revision %lld\n", etcd_err(&E), (long long)rev + 1);
		if (e == -ESTALE)
			synced = false;	/* compacted past us: full sync */
		usleep(200000);
	}
	if (wu_run) {
		pthread_join(wu_thr, NULL);
		etcd_close(&EU);
	}
	free(w.ops);
	free(w.kept);
	etcd_close(&E);
	return 0;
}
