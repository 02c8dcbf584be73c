/* SPDX-License-Identifier: GPL-2.0 */
/*
 * eval.h - make eval's routing simulator (tools/eval/): the parts and
 * their interfaces.
 *
 *   trace.c   Mooncake JSON lines / Azure CSV (plain or gzip) -> struct ev_trace
 *   plans.c   idnd's plan compiler (ctl/idnd/model.c) over a registry built
 *             from the agents' own node bodies -> plans and node entries
 *   sim.c     discrete-event replay: N agent engines (agent/engine.c,
 *             agent/kvcache.c) in emulated time, the agents' telemetry
 *             datagrams, IDN's idn_select() and the baselines' rules
 *   idn_eval.c  the command: load levels, layouts, figures, report data
 *
 * Set-up, metrics and the baselines' rules: docs/benchmarks.md,
 * "Routing evaluation (make eval)".
 */
#ifndef IDN_TOOLS_EVAL_H
#define IDN_TOOLS_EVAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- traces ---- */

#define EV_TRACE_BLOCK	512	/* tokens per Mooncake hash id */

struct ev_req {
	double t_us;		/* arrival, us from the trace's first request */
	uint32_t in, out;	/* prompt and output tokens */
	uint32_t nk, k_off;	/* prefix block keys: keys[k_off .. k_off + nk) */
	uint64_t sess;		/* session key (first 2 blocks), or per request */
};

struct ev_trace {
	struct ev_req *r;
	size_t n;
	uint64_t *keys;		/* chained block keys (kv_chain of the hash ids) */
	size_t nkeys;
	bool has_prefix;	/* Mooncake: hash ids; Azure: none */
	double span_us;		/* last arrival - first */
};

/*
 * Reads a Mooncake JSON-lines trace (timestamp ms, input_length,
 * output_length, hash_ids) or an Azure CSV (TIMESTAMP, ContextTokens,
 * GeneratedTokens), plain or gzip'd; the format is told by the first
 * line. 0, or -EINVAL/-ENOMEM/-errno with err = "FILE:LINE: why".
 */
int ev_trace_load(const char *path, struct ev_trace *t, char *err, size_t errlen);
/* the same from memory (tests) */
int ev_trace_parse(const char *text, const char *name, struct ev_trace *t, char *err,
		   size_t errlen);
void ev_trace_free(struct ev_trace *t);
/*
 * Requests sharing a timestamp spaced evenly over the gap to the next one
 * (the last batch: over the gap before it), in trace order; span updated.
 */
void ev_trace_spread(struct ev_trace *t);

/* ---- plans from idnd ---- */

#include <linux/types.h>
#include <linux/idn.h>

struct json_object;

/* one plan entry as idnd's compiler emits it */
struct ev_plan {
	struct idn_plan_key key;
	struct idn_plan plan;
};

/*
 * Registers one capability and the n nodes (bodies as the agents POST
 * them to idnd, agent_profile_json()), places the capability on every
 * node, runs idnd's plan compiler and its node push. nodes[] gets the
 * dataplane's node entries (indexed by id), *plans the plan entries;
 * *stage2 (optional) the second stage of a two-stage ("pd") capability
 * (idnd_pd_stage2(); zeroed otherwise).
 * Returns the number of plan entries or -errno (err says why).
 */
int ev_idnd_build(const char *cap_json, struct json_object **node_bodies, int n,
		  int router_region, struct idn_node *nodes, struct ev_plan **plans,
		  struct idn_plan *stage2, char *err, size_t errlen);
/*
 * idnd's affinity seeds (idnd_aff_seeds_from(), ctl/idnd/model.c: what
 * idnd_aff_seeds() does once it has read the heartbeats' JSON) over the
 * agents' kv_prefix descriptors that name a token (state_descs(),
 * state_desc_tokens(), agent/state.c), in the registry the last
 * ev_idnd_build() left; each entry goes to put() (-EEXIST: the router has
 * one). Entries written, or -errno.
 */
struct ev_aff_desc {
	uint64_t token, hits, blocks, value_us;
	uint32_t node;
};
int ev_idnd_seed(const struct ev_aff_desc *d, size_t n,
		 int (*put)(void *priv, uint64_t token, uint32_t cls, uint32_t node), void *priv);

/* ---- simulator ---- */

enum ev_policy {
	EV_IDN,
	EV_RANDOM,
	EV_RR,
	EV_LEAST,
	EV_CHASH,
	EV_SGLANG,
	EV_LLMD,
	EV_LLMD_PRECISE,
	EV_CLOUD,
	EV_POLICIES
};
extern const char *const ev_policy_names[EV_POLICIES];

enum ev_layout { EV_FLAT, EV_TIERED };

#define EV_MAX_NODES	16

struct ev_cfg {
	enum ev_policy policy;
	enum ev_layout layout;
	int nodes;
	double scale;		/* arrival times divided by this (load rho) */
	uint32_t tele_ms;	/* agent telemetry interval, 0: the agent's default */
	const char *cap_json;	/* capability body for idnd, NULL: the default one */
	uint64_t seed;
	bool keep_ttft;		/* fill res->ttft_us and res->node (plots, tests) */
	/*
	 * 0 or 1: emulated time. X: the engines X times faster (every time
	 * coefficient / X, arrivals / X: a testbed's agents at --speed X, in
	 * their real time; tools/eval/testbed.sh).
	 */
	double speed;
	/*
	 * IDN only: idnd --migrate's decisions (eq. 8, ctl/lib/migrate.h) at
	 * each heartbeat round, the KV moved over the agent's link model
	 */
	bool migrate;
	double kv_link_gbps;	/* 0: EV_KV_LINK_GBPS */
	/*
	 * IDN only, flat: the capability in two stages (P/D): nodes
	 * 0..n_prefill-1 register role prefill, the others decode; the
	 * routers' plan is the first stage, the prefill node picks the
	 * decode node from idnd's second stage by J (idn_select()), the KV
	 * moves over the link, the decode node generates the rest
	 */
	bool pd;
	int n_prefill;
	/*
	 * Bounds on state mobility, not mechanisms (IDN, flat, no migrate):
	 * each request's node is given its prompt's blocks, free and at once,
	 * when it reaches the node and again just before admission -
	 * EV_ORACLE_CLUSTER: the leading run of them cached on any node then
	 * (every node's cache open to every request); EV_ORACLE_REUSE: the
	 * leading run any earlier request carried (caches as if infinite,
	 * transfers free). oracle_blind: the router's J knows it (T_state 0
	 * on every node: no affinity price); else J as in the product.
	 */
	int oracle;
	bool oracle_blind;
};

enum { EV_ORACLE_NONE, EV_ORACLE_CLUSTER, EV_ORACLE_REUSE };

/* KV bytes per token of the model the nodes serve (Llama-3.1-8B: 32 layers
 * x 8 KV heads x 128 x K and V x 2 bytes) */
#define EV_KV_BYTES_PER_TOKEN	131072ULL
/* the KV link between nodes (agent --kv-link-gbps): an H100 node's NIC,
 * one 400 Gbit/s ConnectX-7 per GPU */
#define EV_KV_LINK_GBPS		400.0

/* what the migrations did (ev_cfg.migrate) */
struct ev_mig {
	size_t decided, moved, recompute, failed;
	uint64_t blocks;	/* blocks committed at destinations (not there before) */
	/* pull on miss: requests that asked, pulls ordered, ordered but late */
	size_t pull_asked, pulls, pull_late;
	double gain_us;		/* eq. 8's gain summed over the moves ordered */
};

struct ev_res {
	size_t n, served, shed, good;
	int nodes;
	double span_s;		/* compressed arrival span */
	double goodput;		/* requests meeting the SLO per second */
	double p50, p90, p99;	/* TTFT of served requests, s */
	double p90_all;		/* TTFT p90 with shed requests as never served */
	double tpot_mean, tpot_p90;	/* s */
	double hit_pct;		/* prefix hit, % of prompt tokens */
	double shed_pct;
	double busy_pct[EV_MAX_NODES];
	double busy_mean, busy_max;
	double wan_bytes;
	double herd_pct;	/* per 100 ms window of decisions: share of its busiest node */
	double *ttft_us;	/* per request, -1 when shed (keep_ttft) */
	int16_t *node;		/* per request, -1 when shed (keep_ttft) */
	struct ev_mig mig;
};

/* SLO (docs/benchmarks.md): TTFT <= 2 s and mean TPOT <= 200 ms */
#define EV_SLO_TTFT_US	2000000.0
#define EV_SLO_TPOT_US	200000.0

/* engine and KV set-up of one node (Llama-3.1-8B on one H100, vLLM-like) */
struct eng_params;
void ev_eng_params(struct eng_params *p);

/*
 * Offered work of the trace in node-us: prompt tokens as uncached
 * prefill, output tokens as decode at the largest batch the KV holds.
 * The scale for load rho on n nodes: rho * n * span / work.
 */
double ev_offered_us(const struct ev_trace *t);
/* ... its prefill and decode parts (their sum is ev_offered_us()) */
void ev_offered_split(const struct ev_trace *t, double *prefill_us, double *decode_us);
/* engine time coefficients / speed (agent --speed X in real time) */
void ev_eng_speed(struct eng_params *p, double speed);
/* the prompt-size class a client puts in its descriptor (nearest 256 << c) */
uint8_t ev_size_class(uint32_t in);
double ev_scale_for(const struct ev_trace *t, int nodes, double rho);

int ev_run(const struct ev_trace *t, const struct ev_cfg *c, struct ev_res *res, char *err,
	   size_t errlen);
void ev_res_free(struct ev_res *r);

/* tiered layout: node i's tier and region, one-way latency to a client region */
double ev_one_way_us(enum ev_layout l, int node, int region);
bool ev_in_region(enum ev_layout l, int node, int region);

#endif /* IDN_TOOLS_EVAL_H */
