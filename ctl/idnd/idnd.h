/* SPDX-License-Identifier: GPL-2.0 */
/*
 * idnd.h - what the parts of the controller daemon share: the in-memory
 * registry (capabilities, nodes, demand, placement), one lock around it,
 * and the entry points of each part:
 *   idnd.c     main, options, the broker loop (heartbeat deadlines)
 *   model.c    JSON <-> objects with strict validation, plan compiler,
 *              placement from the registry
 *   store.c    SQLite persistence (the embedded default)
 *   api.c      HTTP/JSON API (libmicrohttpd), /metrics
 *   loop.c     closed loop (demand from the router's counters)
 *   activate.c demand-driven activation from idn.ko's DEMAND_MISS (-M)
 * The placement solver itself is placement.[ch] (no daemon state).
 */
#ifndef __IDN_IDND_H
#define __IDN_IDND_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <json-c/json.h>

#include "libidn.h"
#include "placement.h"
#include "migrate.h"

#define IDND_REGIONS	16
#define IDND_MAX_CAPS	4096
#define IDND_BODY_MAX	(64 * 1024)	/* request body limit, bytes */
/* A capability's routing defaults (docs/architecture.md, "Defaults"). */
#define IDND_PROMPT_TOKENS	1024	/* mean prompt, tokens */
#define IDND_SLO_TTFT_MS	2000	/* TTFT objective */
#define IDND_SHED_TIER		1	/* tier 0 (best effort) is shed at overload */
#define IDND_WAN_NS_PER_BYTE	25000	/* T_wan: a WAN byte costs 25 us of J (select.h) */

/* Closed-loop state of one capability (loop.c; not persisted). */
struct d_loop {
	bool primed, owned;	/* baseline read; the loop set the demand */
	struct idn_cstat last;	/* per-CPU sums at the last read */
	double ewma, served_rps, unmet_rps;
	int idle, cool;		/* intervals without flows; until next trigger */
};

/* A VIP:port (TCP) a capability is served on: "vips" (docs/controller.md
 * "Two-stage capabilities": how a prefill node's agent finds a request's
 * capability from the address the client reached). family 0: unused. */
#define IDND_CAP_VIPS	4
struct d_vip {
	struct idn_addr addr;
	uint16_t port;
};

bool idnd_vip_eq(const struct d_vip *v, const struct idn_addr *a, uint16_t port);
char *idnd_vip_fmt(const struct d_vip *v, char *buf, size_t len);	/* "ADDR:PORT" */

/* a principal's name: a certificate's CN, or a client address (quota.c) */
#define IDND_OWNER_MAX	96

struct d_cap {
	uint32_t label;		/* IDN_CAP(class, variant) */
	char name[64];
	/* the principal that created it (per-principal quota, kept across
	 * updates, restarts and takeovers); "": created before owners were
	 * recorded, counted for no one */
	char owner[IDND_OWNER_MAX];
	uint8_t tier;
	uint32_t latency_us;	/* exec estimate for the plan */
	uint32_t prompt_tokens;	/* mean prompt: a request's charge without a size hint */
	uint32_t slo_ttft_ms;	/* TTFT objective, the plans' slo_us (0 = none) */
	uint8_t shed_tier;	/* plans' shed_tier: lower tiers are shed at overload */
	uint32_t wan_ns_per_byte;	/* plans' T_wan price of a byte over the WAN */
	uint32_t context;	/* context limit, tokens */
	uint8_t min_trust, privacy, scope;
	uint32_t domain_mask;	/* 0 = any */
	double mem_gb;
	uint32_t runtime_mask;	/* 0 = any */
	uint32_t parent;	/* lineage: derived from (0 = base) */
	char method[16];	/* base|distillation|quantization|adapter */
	uint32_t version;
	char artifact[128], runtime[32], accelerator[32];
	/* signed metadata of this version (signed.c, docs/security.md); sig
	 * false: unsigned (or its publisher is no longer trusted) */
	bool sig;
	char publisher[64];
	uint8_t sha256[32];	/* the signed artifact digest (load orders carry it) */
	uint8_t sig_privacy, sig_locality, sig_trust;	/* admissible scope, bit masks */
	/*
	 * Two stages (P/D): prefill and decode on different nodes. The plan
	 * in the routers' maps is the first stage (nodes of role prefill or
	 * both); idnd_pd_stage2() the second (role decode or both), from
	 * which the prefill node's agent picks the decode node by J.
	 */
	bool pd;
	struct d_vip vips[IDND_CAP_VIPS];	/* where clients reach it ("vips") */
	double demand[IDND_REGIONS];	/* requests/s per region */
	struct d_loop loop;
};

struct d_node {
	bool used;
	uint32_t id;
	char addr4[16], addr6[48];
	double mem_gb;
	uint16_t region, domain;
	uint8_t trust, runtime;
	bool confidential;
	char accelerator[32];
	uint32_t net_us, tok_ns, max_queue;
	/* T_net from a router in region r (us), 0: net_us plus the region
	 * matrix's extra from r to the node's region (idnd_node_net_us()) */
	uint32_t region_net_us[IDND_REGIONS];
	uint16_t api_port;	/* the agent's HTTP API on its locator (0: none) */
	char mgmt[64];		/* its management listener "ADDR:PORT" / "[ADDR6]:PORT":
				 * where orders go (a wildcard address: the locator) */
	char kv[64];		/* its KV transfer listener "ADDR:PORT" (migrations) */
	uint8_t role;		/* enum idnd_role: the stages of a P/D capability it serves */
	/*
	 * the operator's drain (POST /v1/nodes/ID/drain, persisted): its
	 * router entry says health drain (established flows kept, no new
	 * ones), the solver places nothing new on it, and with --migrate its
	 * state moves off it (migrate.c, reason "draining")
	 */
	bool drain;
	/* live, from heartbeats (not persisted) */
	bool up;
	double last_hb;		/* monotonic seconds */
	double down_at;
	uint32_t queue, pending, load, kv_use;
	uint64_t heartbeats;
	int64_t lease;		/* etcd lease of its key (distributed mode) */
};

/* a node's part in two-stage (P/D) capabilities; both for the others */
enum idnd_role { IDND_ROLE_BOTH, IDND_ROLE_PREFILL, IDND_ROLE_DECODE };

/* Policy class (model.c): id = its byte p (uapi IDN_POLICY(trust, privacy, scope)). */
#define IDND_MAX_POLICIES	128	/* bit 7 of p is reserved */
struct d_policy {
	bool used;
	uint8_t id;
	char name[64];
	uint8_t min_trust, privacy, scope;
	uint32_t domain_mask;	/* allowed domains, 0 = any */
	uint32_t tier_mask;	/* tiers its plans are compiled for, 0 = all 16 */
	bool require_signed;	/* only signed versions whose scope admits it */
	char owner[IDND_OWNER_MAX];	/* who created it, as d_cap's */
};

struct d_place {
	uint32_t cap;		/* label */
	uint32_t node;
};

struct idnd {
	pthread_mutex_t lock;
	struct d_cap *caps;	/* sorted by label */
	int n_caps;
	struct d_node nodes[IDN_MAX_NODES];
	struct d_place *place;
	int n_place;
	/* config */
	double hb_timeout;	/* seconds */
	const char *db_path;
	const char *pin;	/* NULL: no dataplane */
	double lambda, mu, nu;
	double region_lat[IDND_REGIONS * IDND_REGIONS];
	/* dataplane */
	struct idn_maps maps;
	bool have_maps;
	bool takeover;		/* the first compile after the claim: log what it replaces */
	uint32_t generation;
	/* counters for /metrics */
	/* distributed mode on etcd (dist.c) */
	bool etcd, leader;
	bool etcd_ok;		/* etcd answered the last election step (/readyz) */
	const char *etcd_url;
	char replica[64];	/* this replica's name in the leader key */
	char prefix[64];	/* /idn/DOMAIN/ */
	int64_t leader_lease;
	uint64_t takeovers;
	/* migration decisions (migrate.c, --migrate) */
	bool migrate;
	uint32_t mig_busy;	/* heartbeat load (0..1000) that makes a node busy */
	struct mig_weights mig_w;
	int txn_ops;		/* -T: most ops per etcd txn (default 128) */
	/* closed loop (loop.c) */
	long loop_ms;		/* interval, 0 = off */
	int loop_region;	/* region of the local router's demand */
	uint64_t loop_solves, loop_changed, loop_out, loop_move, loop_back;
	/* demand-driven activation (activate.c) */
	bool hold;		/* -M: listen to idn.ko's demand misses */
	uint64_t act_misses, act_unknown, act_placed, act_released, act_failed,
		 act_rejected;
	double act_last_ms;	/* last miss -> RELEASE */
	uint64_t http_req, http_4xx, http_5xx, solves, commits, nodes_down;
	uint64_t place_changes;	/* placements added or removed by solves */
	double last_solve_s, last_commit_ms, last_drain_ms, started;
	void *db;		/* sqlite3 * */
};

extern struct idnd D;

double idnd_now(void);

/* model.c: a double as a JSON number of 10 significant digits */
json_object *idnd_jnum(double x);
/* model.c: strict JSON; on error return -EINVAL with *err set (static text or buffer). */
int idnd_cap_from_json(json_object *o, struct d_cap *c, char *err, size_t errlen);
json_object *idnd_cap_to_json(const struct d_cap *c, bool with_demand);
int idnd_node_from_json(json_object *o, struct d_node *n, char *err, size_t errlen);
json_object *idnd_node_to_json(const struct d_node *n, bool live);
/*
 * The stored form (SQLite body, etcd value) of a capability: its canonical
 * JSON plus "owner" when it has one; idnd_cap_from_stored() reads it back
 * (the owner detached from @o, checked, then the strict parse). A client's
 * POST body may not carry "owner" (idnd sets it).
 */
json_object *idnd_cap_stored_json(const struct d_cap *c);
int idnd_cap_from_stored(json_object *o, struct d_cap *c, char *err, size_t errlen);
struct d_cap *idnd_cap_find(uint32_t label);
int idnd_cap_put(const struct d_cap *c);	/* insert or replace, keeps demand */
int idnd_cap_del(uint32_t label);
/* Solve from the registry; prev = current placement. */
int idnd_solve(struct pl_sol *sol, struct pl_inst *in, char *err, size_t errlen);
/* Replace the placement with sol (indexes of in). */
int idnd_place_set(const struct pl_inst *in, const struct pl_sol *sol);
/* Compile placement + node state into the maps (no-op without maps). */
int idnd_compile(void);
/* Write one node to the dataplane node table. */
int idnd_node_push(const struct d_node *n);
/*
 * Affinity seeds (model.c): from the nodes' state summaries @st (indexed by
 * node id, IDN_MAX_NODES, NULL = none), the kv_prefix descriptors naming a
 * token whose blocks were hit at least once each on average; per token its
 * best holder (most blocks, then value); the IDND_AFF_SEEDS tokens with the
 * most hits over all holders get an affinity entry (token, class of each
 * capability placed there) -> holder, where the router has none (with
 * maps: -P); the same seeds go to idnd_dist_aff_seeds() (the distributed
 * mode's leader writes them to etcd for the watchers' routers). Returns
 * the entries written, or -errno.
 */
#define IDND_AFF_SEEDS	256
int idnd_aff_seeds(json_object *const *st);
/* a kv_prefix descriptor naming a token, as idnd_aff_seeds() reads it */
struct idnd_aff_desc {
	uint64_t token, hits, blocks, value;	/* value: "value_us" */
	uint32_t node;				/* whose summary */
};
/* idnd_aff_seeds() over descriptors already read (a caller without JSON:
 * make eval); nodes not registered and up are left out */
int idnd_aff_seeds_from(const struct idnd_aff_desc *d, size_t n);
void idnd_aff_seed_counts(uint64_t *seeded, uint64_t *kept);
/* one seed as idnd_aff_seeds_from() chose it: token, class of each
 * capability placed on the holder -> holder */
struct idnd_aff_seed {
	uint64_t token;
	uint32_t node;
	int n_cls;
	uint32_t cls[8];
};
/* state.c: idnd_aff_seeds() over the summaries held, at most once a second */
int idnd_state_seed(void);
/* the node's T_net for a router in region r: what the router of this idnd
 * (region -R) gets in its node entry */
uint32_t idnd_node_net_us(const struct d_node *n, int r);
json_object *idnd_explain(uint32_t label, char *err, size_t errlen);
/* Policy classes: strict JSON, registry (D.lock held). */
int idnd_policy_from_json(json_object *o, struct d_policy *p, char *err, size_t errlen);
json_object *idnd_policy_to_json(const struct d_policy *p);	/* with "owner" */
int idnd_policy_from_stored(json_object *o, struct d_policy *p, char *err, size_t errlen);
const struct d_policy *idnd_policy_get(uint32_t id);
void idnd_policy_put(const struct d_policy *p);
int idnd_policy_del(uint32_t id);
int idnd_policy_count(void);
/* Why capability version c may not serve policy class pol (its signature
 * or signed scope); NULL: it may, or pol NULL. */
const char *idnd_cap_refused(const struct d_cap *c, const struct d_policy *pol);
/* Why node dn may not serve under pol (NULL: it may, or pol NULL). */
const char *idnd_policy_why(const struct d_policy *pol, const struct d_node *dn);
/* The next generation's plan entries (puts, sorted by key); count or -errno. */
int idnd_plans_build(struct idn_plan_op **out);
/* the second stage of a P/D capability (model.c): 0, -ENOENT, -ENOMEM */
int idnd_pd_stage2(uint32_t label, const struct d_policy *pol, struct idn_plan *pl);
/*
 * the capability a request to VIP a:port is of (api.c): the ones
 * registered with it in "vips" and, where idnd drives a dataplane, the
 * router's VIP table (idn_vips); @model (NULL or "": none) picks among
 * several by name or artifact. 0 (*label), -ENOENT (the VIP serves none),
 * -ENOTUNIQ (several, the model names none or several of them); why: a
 * sentence either way
 */
int idnd_vip_cap(const struct idn_addr *a, uint16_t port, const char *model, uint32_t *label,
		 char *why, size_t wl);
/* its decode node for one request, by J (idn_select() over stage 2): the verdict */
int idnd_pd_pick(uint32_t label, const struct idn_plan *pl, uint64_t token, uint8_t size_class,
		 struct idn_sel *out);
/* the node entry idnd writes to the routers for dn (registry view) */
void idnd_node_entry(const struct d_node *dn, struct idn_node *e);
/*
 * A plan as idnd compiles it (idnd_plans_build), checked field by field
 * before a router writes it from etcd: capability ids, tier, candidate
 * nodes (in range, no repeats, the key's variant), costs and SLO within
 * what the API accepts (IDND_PLAN_MAX_US), weights (Q8.8, at most
 * IDND_PLAN_MAX_WEIGHT), shed tier, fallback (another variant of the same
 * class), padding zero. 0, or -EINVAL with why.
 */
#define IDND_PLAN_MAX_US	3600000000U	/* slo_ttft_ms <= 3,600,000 */
#define IDND_PLAN_MAX_WEIGHT	(64 * 256)
#define IDND_PLAN_MAX_WAN_NS	100000000	/* the capability field's bound (ns per byte) */
int idnd_plan_check(const struct idn_plan_key *k, const struct idn_plan *p, char *why,
		    size_t wl);

/* store.c */
int idnd_store_open(const char *path);
void idnd_store_close(void);
int idnd_store_load(void);
int idnd_store_cap(const struct d_cap *c);
int idnd_store_cap_del(uint32_t label);
int idnd_store_node(const struct d_node *n);
int idnd_store_node_del(uint32_t id);
int idnd_store_demand(uint32_t cap, int region, double rps);
int idnd_store_place(void);
int idnd_store_gen(uint32_t gen);
int idnd_store_policy(const struct d_policy *p);
int idnd_store_policy_del(uint32_t id);
const char *idnd_store_err(void);
bool idnd_store_is_open(void);	/* /readyz */

/* signed.c: trusted publishers, signed versions, revocations (D.lock held) */
int idnd_sig_load(void);	/* after idnd_store_load(): tables, publishers, revocations */
/* A POST /v1/caps body's "manifest" (detached before the strict parse; NULL:
 * unsigned) checked for cap; fills cap's sig fields. 0, or the HTTP status
 * to answer with *err (logged). */
int idnd_sig_admit(struct d_cap *cap, json_object *manifest, char *err, size_t errlen);
int idnd_sig_record(const struct d_cap *cap, json_object *manifest);	/* history */
bool idnd_sig_revoked(uint32_t label, uint32_t version);
/* Signed-metadata API (/v1/publishers, /v1/revocations, /v1/caps/L/revoke,
 * /v1/caps/L/versions); NULL: not one of its paths. *code: the status. */
json_object *idnd_sig_api(const char *method, const char *url, json_object *body,
			  unsigned int *code);
bool idnd_sig_path(const char *url);	/* one of those paths (a POST takes a body) */
json_object *idnd_sig_status(void);	/* /v1/status "signatures" */
/*
 * Distributed mode: the three tables mirrored under PREFIX sig/ by the
 * leader (pub/NAME, rev/CAP-VERSION, ver/CAP-VERSION; sig/seeded once the
 * domain has them). At a takeover dist.c hands every sig/ key to
 * idnd_sig_import() and then calls idnd_sig_import_done(seeded).
 */
void idnd_sig_import(const char *rest, const char *val);
int idnd_sig_import_done(bool seeded);

/* loop.c: called by the broker loop with D.lock held */
void idnd_loop_tick(double now);
/* Solve, store, publish, compile; *changed = placements moved. D.lock held. */
int idnd_apply_solve(int *changed, const char *who);

/* activate.c: -M; tick called by the broker loop with D.lock held */
int idnd_act_start(void);	/* -ENOENT: no idn.ko (logged; retried by the tick) */
void idnd_act_tick(double now);
void idnd_act_stop(void);

/* dist.c: distributed mode on etcd; hooks no-op unless leader */
int idnd_dist_start(const char *url, int domain, const char *name);
void idnd_dist_tick(double now);		/* election, leader lease */
int idnd_dist_publish(const struct idn_plan_op *ops, int n_ops, uint32_t gen);
void idnd_dist_cap(const struct d_cap *c);
void idnd_dist_cap_del(uint32_t label);
void idnd_dist_node(struct d_node *n);
void idnd_dist_node_del(struct d_node *n);
/* drains/ID: the operator's drain in etcd (put on drain, deleted on undrain) */
int idnd_dist_drain(const struct d_node *n);
bool idnd_dist_drained(uint32_t id);	/* the leader: drains/ID held for the node */
void idnd_dist_heartbeat(struct d_node *n);
void idnd_dist_place(void);
void idnd_dist_policy(const struct d_policy *p);
void idnd_dist_policy_del(uint32_t id);
/* a node's telemetry key for the routers (key NULL: none any more) */
void idnd_dist_tele_key(uint32_t id, const uint8_t key[16], uint32_t key_id);
/* a federation peer's node entry for the routers (n NULL: none); leader only */
void idnd_dist_fednode(uint32_t id, const char *peer, const struct idn_node *n);
/* PREFIX fedconf/SUB = val (NULL: deleted): federation peers, exports; leader only */
void idnd_dist_fed_conf(const char *sub, const char *val);
/* the etcd-fed routers' usage records per federation peer (/idn/usage/DOMAIN/) */
typedef void (*idnd_fed_usage_cb)(void *arg, const char *router, const char *peer,
				  uint64_t requests, uint64_t tokens, uint64_t bytes);
int idnd_dist_fed_usage(idnd_fed_usage_cb cb, void *arg);
/* the affinity seeds of this refresh for the routers (affseeds/TOKEN):
 * written when changed, the ones gone deleted; leader only */
void idnd_dist_aff_seeds(const struct idnd_aff_seed *s, size_t n);
/*
 * A migration's re-point for the routers the watchers feed (migrate.c,
 * after the destination committed the blocks): affmoves/TOKEN = {"src",
 * "dst", "classes", "at": wall clock ms}, bound to the leader's lease,
 * deleted IDND_AFF_MOVE_KEEP_S seconds later; leader only
 */
#define IDND_AFF_MOVE_KEEP_S	10
void idnd_dist_aff_move(uint64_t token, uint32_t src, uint32_t dst, const uint32_t *cls,
			int n_cls);
/* PREFIX sig/SUB = val (NULL: deleted); leader only */
void idnd_dist_sig(const char *sub, const char *val);
/* Router-side daemon: apply the plan prefix to the local maps until *stop. */
int idnd_dist_watch(volatile int *stop);

/* migrate.c: eq. 8 migration decisions (broker loop, D.lock held) */
void idnd_mig_tick(double now);
json_object *idnd_mig_json(void);		/* GET /v1/migrations */
/* POST /v1/nodes/ID/pull: pull on miss (D.lock held); the HTTP code */
unsigned int idnd_mig_pull(uint32_t id, json_object *in, json_object **out, char *err,
			   size_t errlen);
struct idn_prom;
void idnd_mig_metrics(struct idn_prom *p);	/* its /metrics families */
/* may node dst hold the state of scope that node src holds (migrations, stage 2) */
bool idnd_scope_ok(const struct d_node *src, const struct d_node *dst, enum mig_scope scope);
/* tenant/session state announced at a node (POST /v1/kv/expect there) */
struct idnd_announce {
	char url[160];
	char body[256];
};
/* made under D.lock; posted outside it: 0, or -errno with err */
void idnd_announce_prep(const struct d_node *dst, uint64_t root, enum mig_scope scope,
			uint32_t tenant, uint64_t session, struct idnd_announce *an);
int idnd_announce(const struct idnd_announce *an, long timeout_ms, char *err, size_t errlen);

/* state.c: state summaries (descriptors S, affinity check) from heartbeats */
#define IDND_STATE_MAX_DESC 64
/* validate a heartbeat's "state"; a canonical copy, or NULL with *err */
json_object *idnd_state_parse(json_object *in, char *err, size_t errlen);
int idnd_state_set(uint32_t node, json_object *canon);	/* takes canon; stores */
void idnd_state_drop(uint32_t node);
void idnd_state_tick(double now);	/* broker loop: write changed summaries (1/s) */
json_object *idnd_state_json(uint32_t node);		/* NULL: none */
json_object *idnd_state_all(void);
/* Prometheus lines (reports, rejected, nodes, descriptors, affinity sums); bytes written */
struct idn_prom;
void idnd_state_metrics(struct idn_prom *p);
void *idnd_store_handle(void);				/* store.c: the sqlite3 * */

/* api.c; idnd_tls: the API's and the orders' TLS material (idnd.c, ctl/lib/http.h) */
struct idn_tls;
extern struct idn_tls idnd_tls;
int idnd_api_start(const char *listen, int port);
void idnd_api_stop(void);

#endif /* __IDN_IDND_H */
