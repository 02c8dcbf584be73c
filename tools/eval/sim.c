// SPDX-License-Identifier: GPL-2.0
/*
 * sim.c - discrete-event replay of a trace through N engines.
 *
 * Each node is the agent's own engine emulator (agent/engine.c over
 * agent/kvcache.c) stepped in emulated time: an iteration planned at t
 * ends at t + its modelled duration; requests that arrive meanwhile are
 * admitted at the next plan, as in the agent's thread. Every tele_ms each
 * node's agent state (engine_load) becomes a telemetry datagram
 * (tele_build, agent/telemetry.c) that the router applies to its node
 * entry (bpf/lib/tele.h, the dataplane's code). IDN decides with
 * idn_select() (bpf/lib/select.h) over those entries and the plans idnd
 * compiled (plans.c), and charges each decision to its node as steer.h
 * does (idn_node_charge()); the baselines decide with their published rules
 * (docs/benchmarks.md). Nothing here knows a request's future.
 *
 * Events: arrivals (trace order), deliveries (arrival + one-way latency in
 * the tiered layout), iteration ends, telemetry and metric scrapes. Ties:
 * iteration ends, then telemetry, then deliveries, then arrivals.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "agent.h"
#include "eval.h"
#include "lib/select.h"
#include "lib/tele.h"
#include "../../ctl/lib/migrate.h"

IDN_ASSERT_ABI();

const char *const ev_policy_names[EV_POLICIES] = {
	[EV_IDN] = "idn",
	[EV_RANDOM] = "random",
	[EV_RR] = "round_robin",
	[EV_LEAST] = "least_loaded",
	[EV_CHASH] = "consistent_hash",
	[EV_SGLANG] = "sglang_cache_aware",
	[EV_LLMD] = "llmd_prefix_load",
	[EV_LLMD_PRECISE] = "llmd_precise",
	[EV_CLOUD] = "cloud_centric",
};

/* ---- engine set-up (docs/benchmarks.md, "Engine model") ---- */

#define KV_TOKENS	467280		/* 29,205 blocks x 16 (BLIS total_kv_blocks) */
#define KV_BLOCK16	16

void ev_eng_params(struct eng_params *p)
{
	eng_params_defaults(p);
	p->iter_base_us = 5752.7;	/* BLIS beta0 */
	p->prefill_tok_us = 17.251;	/* beta1 */
	p->decode_seq_us = 5.999;	/* beta2 */
	p->attn_ctx_ns = 39.1;		/* 128 KiB KV/token / 3.35 TB/s */
	p->prefill_attn_ns = 0.874;	/* 4*32*4096 FLOP / 600 TFLOP/s */
	p->block_tokens = EV_TRACE_BLOCK;	/* the traces' prefix granularity */
	p->capacity_tokens = KV_TOKENS;
	p->kv_bytes_per_token = 0;	/* no byte buffers: timing and keys only */
	p->kv_link_gbps = EV_KV_LINK_GBPS;	/* descriptors' migration cost */
	p->max_batch_tokens = 8192;
	p->max_seqs = 1024;
	p->cache_policy = KV_POLICY_LRU;
	p->speed = 1.0;
}

void ev_eng_speed(struct eng_params *p, double speed)
{
	if (!(speed > 0) || speed == 1.0)
		return;
	p->iter_base_us /= speed;
	p->prefill_tok_us /= speed;
	p->decode_seq_us /= speed;
	p->attn_ctx_ns /= speed;
	p->prefill_attn_ns /= speed;
}

double ev_offered_us(const struct ev_trace *t)
{
	double wp, wd;

	ev_offered_split(t, &wp, &wd);
	return wp + wd;
}

void ev_offered_split(const struct ev_trace *t, double *prefill_us, double *decode_us)
{
	struct eng_params p;
	double blocks = 0, w = 0, wd = 0, batch;

	ev_eng_params(&p);
	for (size_t i = 0; i < t->n; i++)
		blocks += (t->r[i].in + t->r[i].out + KV_BLOCK16 - 1) / KV_BLOCK16;
	batch = (KV_TOKENS / KV_BLOCK16) / (blocks / t->n);
	if (batch > p.max_seqs)
		batch = p.max_seqs;
	if (batch < 1)
		batch = 1;
	for (size_t i = 0; i < t->n; i++) {
		double in = t->r[i].in, out = t->r[i].out;
		uint32_t chunks = (t->r[i].in + p.max_batch_tokens - 1) / p.max_batch_tokens;

		w += p.prefill_tok_us * in + p.prefill_attn_ns / 1000.0 * in * in / 2 +
		     p.iter_base_us * chunks;
		wd += out * (p.decode_seq_us + p.attn_ctx_ns / 1000.0 * (in + out / 2) +
			     p.iter_base_us / batch);
	}
	*prefill_us = w;
	*decode_us = wd;
}

double ev_scale_for(const struct ev_trace *t, int nodes, double rho)
{
	double w = ev_offered_us(t);

	return w > 0 && t->span_us > 0 ? rho * nodes * t->span_us / w : 1.0;
}

/* ---- layouts ---- */

/* tiered: edge@0,edge@0,regional@0,edge@1,edge@1,regional@1,cloud,cloud */
static int tier_region(int node)
{
	return node < 3 ? 0 : node < 6 ? 1 : -1;
}

bool ev_in_region(enum ev_layout l, int node, int region)
{
	return l == EV_FLAT || tier_region(node) == region;
}

double ev_one_way_us(enum ev_layout l, int node, int region)
{
	if (l == EV_FLAT)
		return 0;
	if (tier_region(node) != region)
		return 40000;		/* cloud, or the other region */
	return node % 3 == 2 ? 10000 : 2000;	/* regional : edge */
}

/* ---- small hash structures ---- */

static uint64_t mix64(uint64_t x)
{
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ULL;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebULL;
	x ^= x >> 31;
	return x;
}

/* a capacity-bounded set of block keys in LRU order, each with a stamp */
struct lru {
	uint64_t *key;
	double *stamp;
	int32_t *prev, *next, *hnext, *htab;
	uint32_t hmask, n, cap;
	int32_t head, tail;
};

static int lru_init(struct lru *l, uint32_t cap)
{
	uint32_t hs = 1;

	memset(l, 0, sizeof(*l));
	while (hs < cap * 2)
		hs <<= 1;
	l->cap = cap;
	l->hmask = hs - 1;
	l->key = malloc(sizeof(*l->key) * cap);
	l->stamp = malloc(sizeof(*l->stamp) * cap);
	l->prev = malloc(sizeof(int32_t) * cap);
	l->next = malloc(sizeof(int32_t) * cap);
	l->hnext = malloc(sizeof(int32_t) * cap);
	l->htab = malloc(sizeof(int32_t) * hs);
	if (!l->key || !l->stamp || !l->prev || !l->next || !l->hnext || !l->htab)
		return -ENOMEM;
	memset(l->htab, 0xff, sizeof(int32_t) * hs);
	l->head = l->tail = -1;
	return 0;
}

static void lru_free(struct lru *l)
{
	free(l->key);
	free(l->stamp);
	free(l->prev);
	free(l->next);
	free(l->hnext);
	free(l->htab);
	memset(l, 0, sizeof(*l));
}

static int32_t lru_find(const struct lru *l, uint64_t key)
{
	if (!l->cap)
		return -1;
	for (int32_t i = l->htab[mix64(key) & l->hmask]; i >= 0; i = l->hnext[i])
		if (l->key[i] == key)
			return i;
	return -1;
}

static void lru_unlink(struct lru *l, int32_t i)
{
	if (l->prev[i] >= 0)
		l->next[l->prev[i]] = l->next[i];
	else
		l->head = l->next[i];
	if (l->next[i] >= 0)
		l->prev[l->next[i]] = l->prev[i];
	else
		l->tail = l->prev[i];
}

static void lru_front(struct lru *l, int32_t i)
{
	l->prev[i] = -1;
	l->next[i] = l->head;
	if (l->head >= 0)
		l->prev[l->head] = i;
	l->head = i;
	if (l->tail < 0)
		l->tail = i;
}

/* insert or refresh; returns true when the key is new */
static bool lru_touch(struct lru *l, uint64_t key, double stamp)
{
	int32_t i = lru_find(l, key);
	uint32_t hb;

	if (i >= 0) {
		l->stamp[i] = stamp;
		lru_unlink(l, i);
		lru_front(l, i);
		return false;
	}
	if (l->n < l->cap) {
		i = l->n++;
	} else {	/* evict the least recent */
		int32_t *pp;

		i = l->tail;
		lru_unlink(l, i);
		pp = &l->htab[mix64(l->key[i]) & l->hmask];
		while (*pp != i)
			pp = &l->hnext[*pp];
		*pp = l->hnext[i];
	}
	l->key[i] = key;
	l->stamp[i] = stamp;
	hb = mix64(key) & l->hmask;
	l->hnext[i] = l->htab[hb];
	l->htab[hb] = i;
	lru_front(l, i);
	return true;
}

/* ---- the simulation ---- */

#define NONE	UINT32_MAX
#define SGL_CHARS_PER_TOKEN	4	/* the router's tree counts characters */

struct node {
	struct engine e;
	bool busy;
	double t_end, dur;		/* iteration in progress */
	uint32_t *id2req;		/* engine request id -> trace index */
	size_t id_cap;
	/* router-side counters (least loaded, SGLang, cloud) */
	uint32_t inflight;
	uint64_t inflight_tok;
	/* scraped engine metrics (llm-d) */
	uint32_t m_wait;
	uint32_t m_kv;			/* permille */
	/* per-policy state */
	struct lru blocks;		/* SGLang tree, llm-d approximate LRU */
	struct lru spec;		/* llm-d precise: speculative entries */
	uint64_t sgl_tokens;		/* SGLang tree size in tokens */
	/* telemetry */
	struct telemetry tele;
	double tele_next;
	/* the agent's state: tokens its requests carried (state descriptors) */
	struct agent_state st;
	bool st_init;
};

struct out {
	double ttft_us, tpot_us;
	uint32_t cached;
	int16_t node;
	uint8_t shed, done;
};

/* a delivery in flight to a node: min-heap on time */
struct dlv {
	double t;
	uint32_t req;
	uint32_t node;
};

struct aff {
	uint64_t token;
	uint32_t node;
	uint32_t last_s;
	double mig_until;	/* idnd's cool-down for the token (us) */
};

/* a KV move in flight (ev_cfg.migrate): committed at dst at t_done */
struct mig_mv {
	double t_done;
	uint64_t token;
	uint32_t src, dst, n;
	uint64_t keys[AFF_KEYS];
};

struct sim {
	const struct ev_trace *t;
	const struct ev_cfg *c;
	int n;
	struct node nd[EV_MAX_NODES];
	struct out *o;
	double *t_send;
	uint8_t *region;
	/* IDN router(s): one node table per client region, plans from idnd */
	int n_rt;
	struct idn_node *tbl[2];
	struct ev_plan *ops[2];
	int n_ops[2];
	struct aff *aff;
	uint32_t aff_mask;
	uint32_t cap;
	/* agents' state descriptors (their summaries' kv_prefix list), by node id */
	struct state_desc (*desc)[STATE_MAX_DESC];
	uint32_t n_desc[EV_MAX_NODES];
	struct ev_aff_desc *seeds;	/* those naming a token, for idnd's seeding */
	double seed_next, seed_t;	/* heartbeat rounds: idnd seeds affinity */
	/* baselines */
	uint64_t rng;
	uint32_t rr;
	uint64_t *ring;			/* consistent hash: (hash, node) points */
	uint32_t *ring_node;
	uint32_t n_ring;
	double scrape_next;
	/* deliveries */
	struct dlv *dq;
	size_t n_dq, dq_cap;
	/* P/D (ev_cfg.pd): the second stage, each request's stage, first token */
	struct idn_plan stage2;
	uint8_t *pd_stage;		/* 0 colocated, 1 at its prefill node, 2 decode */
	double *pd_first;		/* engine time of the first token (prefill node) */
	/* migrations (ev_cfg.migrate) */
	struct mig_mv *mv;
	size_t n_mv, mv_cap;
	struct ev_mig mig;
	double mig_free;		/* idnd's move worker busy until */
	double *hold_rel;		/* per request: held for a pull until (0: not) */
	struct mig_rel {		/* a held request's release: blocks in, or late */
		double t;
		uint32_t node;
		struct eng_req *r;
	} *rel;
	size_t n_rel, rel_cap;
	uint32_t hb_kv[EV_MAX_NODES];	/* KV use of the last heartbeat (idnd's view) */
	uint32_t hb_pend[EV_MAX_NODES];	/* its pending_tokens */
	/* bounds (ev_cfg.oracle): block keys any request carried (REUSE) */
	uint64_t *seen;
	uint32_t *seen_by;
	uint32_t seen_mask;
	int32_t *oidx;			/* oracle_fill()'s block indices */
	uint32_t oidx_cap;
};

#define SCRAPE_US	50000.0		/* GIE metrics refresh (llm-d) */
#define SPEC_TTL_US	2000000.0	/* llm-d precise: speculative entries */
#define SGL_ABS		64		/* balance_abs_threshold */
#define SGL_REL		1.5		/* balance_rel_threshold */
#define SGL_CACHE_THR	0.3		/* cache_threshold */
#define SGL_MAX_TREE	(1u << 26)	/* max_tree_size, characters */
#define KETAMA_POINTS	160

static uint64_t rnd(struct sim *s)
{
	s->rng += 0x9e3779b97f4a7c15ULL;
	return mix64(s->rng);
}

/* ---- IDN's router: maps as the dataplane has them ---- */

struct env_priv {
	struct sim *s;
	int rt;
};

static const struct idn_node *env_node(void *priv, __u32 id)
{
	struct env_priv *p = priv;

	return id < IDN_MAX_NODES ? &p->s->tbl[p->rt][id] : NULL;
}

static const struct idn_plan *env_plan(void *priv, const struct idn_plan_key *k)
{
	struct env_priv *p = priv;

	for (int i = 0; i < p->s->n_ops[p->rt]; i++) {
		const struct ev_plan *op = &p->s->ops[p->rt][i];

		if (op->key.cap == k->cap && op->key.tier == k->tier &&
		    op->key.policy == k->policy)
			return &op->plan;
	}
	return NULL;
}

/* the second stage of a P/D capability, whatever the key */
static const struct idn_plan *env_stage2(void *priv, const struct idn_plan_key *k)
{
	struct env_priv *p = priv;

	return k->cap == p->s->cap && p->s->stage2.n_cand ? &p->s->stage2 : NULL;
}

/* the prompt-size hint a client puts in the descriptor: ~256 << class tokens */
uint8_t ev_size_class(uint32_t in)
{
	uint8_t c = 0;

	while (c < 15 && (256u << c) * 3 / 2 < in)	/* nearest power of two */
		c++;
	return c;
}

static struct aff *aff_slot(struct sim *s, uint64_t token)
{
	uint32_t i = mix64(token) & s->aff_mask;

	while (s->aff[i].token && s->aff[i].token != token)
		i = (i + 1) & s->aff_mask;
	return &s->aff[i];
}

static uint32_t now_s(double t_us)
{
	return 1 + (uint32_t)(t_us / 1e6);	/* coarse seconds, never 0 */
}

/* the dataplane's ticks (IDN_TICK_SHIFT) of emulated time */
static uint32_t now_tick(double t_us)
{
	return (uint32_t)((uint64_t)(t_us * 1000.0) >> IDN_TICK_SHIFT);
}

static uint32_t pick_idn(struct sim *s, uint32_t i, double t)
{
	const struct ev_req *r = &s->t->r[i];
	struct env_priv pv = { s, s->n_rt > 1 ? s->region[i] : 0 };
	struct idn_env env = { env_node, env_plan, &pv };
	struct idn_desc d = {
		.token = r->sess, .cap = s->cap, .size_class = ev_size_class(r->in),
		.flags = IDN_DF_SIZE,
	};
	struct idn_sel_in in;
	struct idn_sel out;
	struct aff *a = aff_slot(s, r->sess);
	uint32_t aff_node = a->token ? a->node : IDN_NODE_NONE;	/* dp default: no TTL */

	/* a bound's router that knows every node has the state (no T_state) */
	if (s->c->oracle && s->c->oracle_blind)
		aff_node = IDN_NODE_NONE;

	idn_sel_in_init(&in, &d, aff_node, 0, 0, IDN_AF_INET, now_tick(t));
	switch (idn_select(&env, &in, &out, NULL)) {
	case IDN_V_NEW:
	case IDN_V_AFFINITY:
	case IDN_V_FALLBACK:
	case IDN_V_OVERFLOW:
		break;
	default:
		return NONE;	/* shed, no capacity, miss */
	}
	a->token = r->sess;
	a->node = out.node;
	a->last_s = now_s(t);
	/* the node's load counts this request until its next datagram (steer.h) */
	if (out.node < IDN_MAX_NODES)
		idn_node_charge(&s->tbl[pv.rt][out.node], out.charge);
	return out.node;
}

/* ---- baselines ---- */

static uint32_t least_inflight(struct sim *s, int lo, int hi)
{
	uint32_t best = lo;

	for (int j = lo + 1; j < hi; j++) {
		const struct node *a = &s->nd[j], *b = &s->nd[best];

		if (a->inflight < b->inflight ||
		    (a->inflight == b->inflight && a->inflight_tok < b->inflight_tok))
			best = j;
	}
	return best;
}

static uint32_t pick_chash(struct sim *s, uint64_t key)
{
	uint64_t h = mix64(key ^ 0xc0ffee);
	uint32_t lo = 0, hi = s->n_ring;

	while (lo < hi) {
		uint32_t m = (lo + hi) / 2;

		if (s->ring[m] < h)
			lo = m + 1;
		else
			hi = m;
	}
	return s->ring_node[lo == s->n_ring ? 0 : lo];
}

static int ring_cmp(const void *a, const void *b)
{
	const uint64_t *x = a, *y = b;

	return *x < *y ? -1 : *x > *y;
}

static int ring_build(struct sim *s)
{
	uint64_t *pts;

	s->n_ring = s->n * KETAMA_POINTS;
	pts = malloc(sizeof(*pts) * s->n_ring * 2);
	s->ring = malloc(sizeof(*s->ring) * s->n_ring);
	s->ring_node = malloc(sizeof(*s->ring_node) * s->n_ring);
	if (!pts || !s->ring || !s->ring_node) {
		free(pts);
		return -ENOMEM;
	}
	for (int j = 0; j < s->n; j++)
		for (int k = 0; k < KETAMA_POINTS; k++) {
			uint32_t x = j * KETAMA_POINTS + k;

			pts[2 * x] = mix64(((uint64_t)(j + 1) << 32) | k);
			pts[2 * x + 1] = j;
		}
	qsort(pts, s->n_ring, 2 * sizeof(*pts), ring_cmp);
	for (uint32_t x = 0; x < s->n_ring; x++) {
		s->ring[x] = pts[2 * x];
		s->ring_node[x] = pts[2 * x + 1];
	}
	free(pts);
	return 0;
}

static uint32_t match_blocks(const struct lru *l, const uint64_t *k, uint32_t nk)
{
	uint32_t m = 0;

	while (m < nk && lru_find(l, k[m]) >= 0)
		m++;
	return m;
}

static uint32_t pick_sglang(struct sim *s, uint32_t i, double t)
{
	const struct ev_req *r = &s->t->r[i];
	const uint64_t *k = s->t->keys + r->k_off;
	uint32_t mx = 0, mn = UINT32_MAX, best = 0, bm = 0, j;

	for (j = 0; j < (uint32_t)s->n; j++) {
		if (s->nd[j].inflight > mx)
			mx = s->nd[j].inflight;
		if (s->nd[j].inflight < mn)
			mn = s->nd[j].inflight;
	}
	if (mx - mn > SGL_ABS && mx > SGL_REL * mn) {
		best = least_inflight(s, 0, s->n);
	} else {
		for (j = 0; j < (uint32_t)s->n; j++) {
			uint32_t m = match_blocks(&s->nd[j].blocks, k, r->nk);

			if (m > bm) {
				bm = m;
				best = j;
			}
		}
		if (!bm || (double)bm * EV_TRACE_BLOCK / r->in <= SGL_CACHE_THR) {
			best = 0;	/* the smallest tree */
			for (j = 1; j < (uint32_t)s->n; j++)
				if (s->nd[j].sgl_tokens < s->nd[best].sgl_tokens)
					best = j;
		}
	}
	/* insert the request's text into the chosen tree */
	if (r->nk) {
		for (j = 0; j < r->nk; j++) {
			uint32_t before = s->nd[best].blocks.n;

			if (lru_touch(&s->nd[best].blocks, k[j], t) &&
			    s->nd[best].blocks.n > before)
				s->nd[best].sgl_tokens += EV_TRACE_BLOCK;
		}
		if (r->in > r->nk * EV_TRACE_BLOCK)
			s->nd[best].sgl_tokens += r->in - r->nk * EV_TRACE_BLOCK;
	} else {
		s->nd[best].sgl_tokens += r->in;	/* unique text, never matched */
	}
	return best;
}

static uint32_t pick_llmd(struct sim *s, uint32_t i, double t, bool precise)
{
	const struct ev_req *r = &s->t->r[i];
	const uint64_t *k = s->t->keys + r->k_off;
	uint32_t qmax = 0, qmin = UINT32_MAX, best = 0, nbest = 0;
	double bs = -1;

	for (int j = 0; j < s->n; j++) {
		if (s->nd[j].m_wait > qmax)
			qmax = s->nd[j].m_wait;
		if (s->nd[j].m_wait < qmin)
			qmin = s->nd[j].m_wait;
	}
	for (int j = 0; j < s->n; j++) {
		struct node *nd = &s->nd[j];
		double prefix = 0, queue, kv, sc;
		uint32_t m = 0;

		if (r->nk) {
			if (precise) {
				while (m < r->nk) {
					int32_t x;

					if (kv_match(&nd->e.kv, &k[m], 1)) {
						m++;
						continue;
					}
					x = lru_find(&nd->spec, k[m]);
					if (x < 0 || nd->spec.stamp[x] < t)
						break;
					m++;
				}
			} else {
				m = match_blocks(&nd->blocks, k, r->nk);
			}
			prefix = (double)m / r->nk;
		}
		queue = qmax == qmin ? 1.0 : (double)(qmax - nd->m_wait) / (qmax - qmin);
		kv = 1.0 - nd->m_kv / 1000.0;
		sc = 3 * prefix + 2 * queue + 2 * kv;
		if (sc > bs + 1e-12) {
			bs = sc;
			best = j;
			nbest = 1;
		} else if (fabs(sc - bs) <= 1e-12 && rnd(s) % ++nbest == 0) {
			best = j;	/* random tie-break (reservoir) */
		}
	}
	for (uint32_t j = 0; j < r->nk; j++)
		lru_touch(precise ? &s->nd[best].spec : &s->nd[best].blocks, k[j],
			  t + SPEC_TTL_US);
	return best;
}

static uint32_t pick(struct sim *s, uint32_t i, double t)
{
	switch (s->c->policy) {
	case EV_IDN:
		return pick_idn(s, i, t);
	case EV_RANDOM:
		return rnd(s) % s->n;
	case EV_RR:
		return s->rr++ % s->n;
	case EV_LEAST:
		return least_inflight(s, 0, s->n);
	case EV_CHASH:
		return pick_chash(s, s->t->r[i].sess);
	case EV_SGLANG:
		return pick_sglang(s, i, t);
	case EV_LLMD:
		return pick_llmd(s, i, t, false);
	case EV_LLMD_PRECISE:
		return pick_llmd(s, i, t, true);
	case EV_CLOUD:
		return s->n >= 8 ? least_inflight(s, 6, 8) : least_inflight(s, 0, s->n);
	default:
		return NONE;
	}
}

/* ---- deliveries ---- */

static int dq_push(struct sim *s, double t, uint32_t req, uint32_t node)
{
	size_t i;

	if (s->n_dq == s->dq_cap) {
		size_t n = s->dq_cap ? s->dq_cap * 2 : 1024;
		struct dlv *p = realloc(s->dq, n * sizeof(*p));

		if (!p)
			return -ENOMEM;
		s->dq = p;
		s->dq_cap = n;
	}
	i = s->n_dq++;
	while (i && s->dq[(i - 1) / 2].t > t) {
		s->dq[i] = s->dq[(i - 1) / 2];
		i = (i - 1) / 2;
	}
	s->dq[i] = (struct dlv){ t, req, node };
	return 0;
}

static struct dlv dq_pop(struct sim *s)
{
	struct dlv top = s->dq[0], last = s->dq[--s->n_dq];
	size_t i = 0;

	for (;;) {
		size_t c = 2 * i + 1;

		if (c >= s->n_dq)
			break;
		if (c + 1 < s->n_dq && s->dq[c + 1].t < s->dq[c].t)
			c++;
		if (s->dq[c].t >= last.t)
			break;
		s->dq[i] = s->dq[c];
		i = c;
	}
	if (s->n_dq)
		s->dq[i] = last;
	return top;
}

/* ---- engines ---- */

/* a held request's release (agent/http.c pull_wait()): admitted from its place */
static int rel_push(struct sim *s, double t, uint32_t node, struct eng_req *r)
{
	if (s->n_rel == s->rel_cap) {
		size_t c = s->rel_cap ? s->rel_cap * 2 : 64;
		struct mig_rel *p = realloc(s->rel, c * sizeof(*p));

		if (!p)
			return -ENOMEM;
		s->rel = p;
		s->rel_cap = c;
	}
	s->rel[s->n_rel++] = (struct mig_rel){ t, node, r };
	return 0;
}

/* ---- bounds on state mobility (ev_cfg.oracle): not mechanisms ---- */

/*
 * The earliest request that carried a block key: seen[] holds the keys,
 * seen_by[] that request's index + 1. A request may take a block an
 * earlier request (by index) carried, never its own.
 */
static bool seen_before(const struct sim *s, uint64_t key, uint32_t i)
{
	uint32_t x = mix64(key) & s->seen_mask;

	while (s->seen[x]) {
		if (s->seen[x] == key)
			return s->seen_by[x] <= i;
		x = (x + 1) & s->seen_mask;
	}
	return false;
}

static void seen_add(struct sim *s, uint64_t key, uint32_t i)
{
	uint32_t x = mix64(key) & s->seen_mask;

	if (!key)
		return;
	while (s->seen[x] && s->seen[x] != key)
		x = (x + 1) & s->seen_mask;
	if (!s->seen[x] || s->seen_by[x] > i + 1) {
		s->seen[x] = key;
		s->seen_by[x] = i + 1;
	}
}

/*
 * The oracle's gift to node j for a prompt: the leading run of its blocks
 * cached on any node (EV_ORACLE_CLUSTER: each block on some node, as if
 * every node's cache were open to every request at no cost) or carried
 * by any earlier request (EV_ORACLE_REUSE: infinite caches), committed
 * at j at once. Nothing when the run is no longer than what j holds, or
 * when j's cache has no room besides blocks in use.
 */
static void oracle_fill(struct sim *s, uint32_t i, uint32_t j, const uint64_t *k, uint32_t nk)
{
	struct kv_cache *kv = &s->nd[j].e.kv;
	uint32_t run = 0, have, hits;

	if (!nk)
		return;
	if (s->c->oracle == EV_ORACLE_REUSE) {
		while (run < nk && seen_before(s, k[run], i))
			run++;
	} else {
		for (; run < nk; run++) {
			int q;

			for (q = 0; q < s->n; q++)
				if (kv_match(&s->nd[q].e.kv, &k[run], 1))
					break;
			if (q == s->n)
				break;
		}
	}
	have = kv_match(kv, k, nk);
	if (run <= have || run > s->oidx_cap)	/* oidx: the trace's longest prompt */
		return;
	if (kv_acquire(kv, k, run, run, s->oidx, &hits))
		return;	/* no room: the request gets what j has */
	kv_commit(kv, k, s->oidx, hits, run);
	kv_release(kv, s->oidx, run);
}

/* again just before admission: the first waiting requests of node j */
#define ORACLE_REFILL	4

static void oracle_refill(struct sim *s, uint32_t j)
{
	struct eng_req *r = s->nd[j].e.wait_head;

	for (int n = 0; r && n < ORACLE_REFILL; r = r->next, n++)
		if (!r->held)
			oracle_fill(s, s->nd[j].id2req[r->id], j, r->keys, r->nkeys);
}

static void start_iter(struct node *nd)
{
	nd->dur = engine_plan(&nd->e);
	nd->busy = nd->dur > 0;
	nd->t_end = nd->e.now_us + nd->dur;
}

static int deliver(struct sim *s, uint32_t i, uint32_t j, double t)
{
	const struct ev_req *r = &s->t->r[i];
	struct node *nd = &s->nd[j];
	struct eng_req *er;
	uint64_t *keys = NULL;
	uint32_t out;
	int err;

	if (r->nk) {
		keys = malloc(sizeof(*keys) * r->nk);
		if (!keys)
			return -ENOMEM;
		memcpy(keys, s->t->keys + r->k_off, sizeof(*keys) * r->nk);
	}
	if (!nd->busy)
		nd->e.now_us = t;	/* the idle engine's clock catches up */
	if (s->c->oracle == EV_ORACLE_REUSE)
		for (uint32_t m = 0; m < r->nk; m++)
			seen_add(s, keys[m], i);
	if (s->c->oracle)
		oracle_fill(s, i, j, keys, r->nk);
	if (nd->st_init)	/* the request's X-IDN-Token: its affinity token */
		state_note_token(&nd->st, r->sess, NULL, keys, r->nk);
	out = r->out;
	if (s->pd_stage && s->pd_stage[i] == 1) {
		out = 1;	/* the prefill node: prompt and first token */
	} else if (s->pd_stage && s->pd_stage[i] == 2) {
		/* the decode node: the pushed blocks committed, then the rest */
		int32_t *idx = r->nk ? malloc(sizeof(*idx) * r->nk) : NULL;
		uint32_t hits;

		if (r->nk && !idx) {
			free(keys);
			return -ENOMEM;
		}
		if (r->nk && !kv_acquire(&nd->e.kv, keys, r->nk, r->nk, idx, &hits)) {
			kv_commit(&nd->e.kv, keys, idx, hits, r->nk);
			kv_release(&nd->e.kv, idx, r->nk);
		}
		free(idx);
		out = r->out - 1;
	}
	/* the agent describes the blocks under the request's token (state.c);
	 * held while pulled blocks come (mig_pull()) */
	if (s->hold_rel && s->hold_rel[i] > 0)
		er = engine_submit_held(&nd->e, &(struct kv_who){ .token = r->sess }, r->in, out,
					keys, r->nk, &err);
	else
		er = engine_submit_as(&nd->e, &(struct kv_who){ .token = r->sess }, r->in, out,
				      keys, r->nk, &err);
	if (!er && err == -E2BIG) {	/* larger than a node's KV: never served */
		nd->inflight--;
		nd->inflight_tok -= r->in;
		return 0;
	}
	if (!er)
		return err;
	if (er->id >= nd->id_cap) {
		size_t n = nd->id_cap ? nd->id_cap * 2 : 1024;
		uint32_t *p;

		while (n <= er->id)
			n *= 2;
		p = realloc(nd->id2req, n * sizeof(*p));
		if (!p)
			return -ENOMEM;
		nd->id2req = p;
		nd->id_cap = n;
	}
	nd->id2req[er->id] = i;
	if (s->hold_rel && s->hold_rel[i] > 0 && (err = rel_push(s, s->hold_rel[i], j, er)))
		return err;
	if (!nd->busy) {
		if (s->c->oracle)
			oracle_refill(s, j);
		start_iter(nd);
	}
	return 0;
}

/*
 * P/D: the prefill node's agent picks the decode node from idnd's second
 * stage by J (idn_select() over the node entries it is told; here the
 * router's, from the same datagrams). No affinity: the state goes with
 * the request. NONE: no decode node can take it.
 */
static uint32_t pd_pick(struct sim *s, uint32_t i, double t)
{
	const struct ev_req *r = &s->t->r[i];
	struct env_priv pv = { s, 0 };
	struct idn_env env = { env_node, env_stage2, &pv };
	struct idn_desc d = {
		.token = r->sess, .cap = s->cap, .size_class = ev_size_class(r->in),
		.flags = IDN_DF_SIZE,
	};
	struct idn_sel_in in;
	struct idn_sel out;

	idn_sel_in_init(&in, &d, IDN_NODE_NONE, 0, 0, IDN_AF_INET, now_tick(t));
	switch (idn_select(&env, &in, &out, NULL)) {
	case IDN_V_NEW:
	case IDN_V_AFFINITY:
	case IDN_V_FALLBACK:
	case IDN_V_OVERFLOW:
		return out.node < (uint32_t)s->n ? out.node : NONE;
	default:
		return NONE;
	}
}

/* the prompt's KV from prefill node p to decode node d: the agent's link model */
static double pd_xfer_us(struct sim *s, uint32_t i, uint32_t p, uint32_t d)
{
	uint64_t bytes = (uint64_t)s->t->r[i].in * EV_KV_BYTES_PER_TOKEN;

	return state_migration_us(bytes, s->c->kv_link_gbps > 0 ? s->c->kv_link_gbps :
				  s->nd[p].e.p.kv_link_gbps) +
	       (double)s->tbl[0][p].net_us + s->tbl[0][d].net_us;
}

static int iter_end(struct sim *s, int j)
{
	struct node *nd = &s->nd[j];
	struct eng_req *fin[1024], *r;
	uint32_t nf = 0;
	int ret = 0;

	/* the requests this iteration completes (the engine frees none: ours hold a ref) */
	for (r = nd->e.run_head; r; r = r->next)
		if ((r->state == ENG_DECODE && r->generated + 1 >= r->out_tokens) ||
		    (r->state == ENG_PREFILL && r->chunk && r->chunk == r->prefill_left &&
		     r->out_tokens <= 1))
			if (nf < 1024)
				fin[nf++] = r;
	engine_apply(&nd->e, nd->dur);
	for (uint32_t k = 0; k < nf; k++) {
		uint32_t i;
		struct out *o;

		r = fin[k];
		i = nd->id2req[r->id];
		o = &s->o[i];
		if (r->state == ENG_DONE && s->pd_stage && s->pd_stage[i] == 1) {
			/* prefilled: first token to the client, the KV to a decode node */
			double back = ev_one_way_us(s->c->layout, j, s->region[i]);
			uint32_t d = pd_pick(s, i, r->t_first);

			o->ttft_us = r->t_first + back - s->t_send[i];
			o->cached = r->cached_tokens;
			s->pd_first[i] = r->t_first;
			if (d != NONE) {
				s->pd_stage[i] = 2;
				s->nd[d].inflight++;
				s->nd[d].inflight_tok += s->t->r[i].in;
				ret = dq_push(s, r->t_done + pd_xfer_us(s, i, j, d), i, d);
			}
		} else if (r->state == ENG_DONE && s->pd_stage && s->pd_stage[i] == 2) {
			o->tpot_us = (r->t_done - s->pd_first[i]) / r->out_tokens;
			o->done = 1;
		} else if (r->state == ENG_DONE) {
			double back = ev_one_way_us(s->c->layout, j, s->region[i]);

			o->ttft_us = r->t_first + back - s->t_send[i];
			o->tpot_us = r->out_tokens > 1 ?
				(r->t_done - r->t_first) / (r->out_tokens - 1) : 0;
			o->cached = r->cached_tokens;
			o->done = 1;
		}
		nd->inflight--;
		nd->inflight_tok -= s->t->r[i].in;
		engine_put(&nd->e, r);
	}
	if (s->c->oracle)
		oracle_refill(s, j);
	start_iter(nd);
	return ret;
}

static void tele_tick(struct sim *s, int j, double t)
{
	struct node *nd = &s->nd[j];
	struct idn_telemetry m;
	struct eng_load l;

	engine_load(&nd->e, &l);
	/* the agent's datagram, health unchanged, at its clock in ms */
	tele_build(&nd->tele, &l, 0, (uint64_t)(t / 1000.0), &m);
	if (!idn_tele_check(&m))
		for (int k = 0; k < s->n_rt; k++)
			idn_tele_apply(&s->tbl[k][j], &m, now_s(t), now_tick(t));
}

/* idnd_aff_seeds() writing the router's affinity table: new entries only */
static int seed_put(void *priv, uint64_t token, uint32_t cls, uint32_t node)
{
	struct sim *s = priv;
	struct aff *a = aff_slot(s, token);

	if (a->token)
		return -EEXIST;
	a->token = token;
	a->node = node;
	a->last_s = now_s(s->seed_t);
	return 0;
}

/*
 * A heartbeat round: each agent's state descriptors with their tokens
 * (state_descs(), state_desc_tokens(), agent/state.c: what its summary's
 * JSON carries, state_summary(), state_tokens()) and idnd's seeding of the
 * router's affinity from them (idnd_aff_seeds_from(): idnd_aff_seeds()
 * once it has read the JSON), as idnd does at a heartbeat (at most once a
 * second). The JSON itself is left out: building and parsing 64
 * descriptors per node every emulated second was most of the simulator's
 * time, and it carries the same values.
 */
static void seed_tick(struct sim *s)
{
	size_t k = 0;

	for (int j = 0; j < s->n; j++) {
		struct state_desc *d = s->desc[j];
		struct eng_load l;
		uint32_t n;

		engine_load(&s->nd[j].e, &l);
		s->hb_kv[j] = l.kv_use;	/* idnd's view of its KV use, outstanding work */
		s->hb_pend[j] = l.pending_tokens;
		n = state_descs(&s->nd[j].e, "eval", STATE_MAX_DESC, d, NULL, NULL);

		state_desc_tokens(&s->nd[j].st, d, n);
		s->n_desc[j] = n;
		for (uint32_t i = 0; i < n; i++)
			if (d[i].token)
				s->seeds[k++] = (struct ev_aff_desc){
					.token = d[i].token, .hits = d[i].hits,
					.blocks = d[i].blocks, .value_us = d[i].value_us,
					.node = j };
	}
	ev_idnd_seed(s->seeds, k, seed_put, s);
}

/* ---- migrations: idnd's decisions (ctl/idnd/migrate.c) in emulated time ---- */

/*
 * A heartbeat round with --migrate: as idnd's scan does with the loads and
 * descriptors the heartbeats brought, every node at or above the busy load
 * is the wrong place for its state; each kv_prefix descriptor naming a
 * token (not cooling down) gets the least loaded node that is not busy as
 * destination, and eq. 8 (mig_decide(), the product's code) decides. The
 * descriptor's size is its tokens at the model's KV bytes per token, its
 * migration cost the agent's link model (state_migration_us()); the path
 * between the nodes is their registered T_net. A move reads the token's
 * leading blocks still resident at the source (the agent's push:
 * state_token_lookup(), kv_match()) and commits them at the destination
 * after the transfer time; only then the router's affinity for the token
 * names the destination (commit -> affinity -> next request).
 */
/*
 * idnd's move worker (one thread, ctl/idnd/migrate.c run_job()): a move
 * ordered at t starts when the previous one answered, takes the order to
 * the source's management listener (its T_net) and the transfer; the
 * worker is free again when the push answered. Returns the commit time.
 */
static double mig_order(struct sim *s, double t, uint32_t src, double xfer_us)
{
	double t0 = t > s->mig_free ? t : s->mig_free;

	s->mig_free = t0 + s->tbl[0][src].net_us + xfer_us;
	return s->mig_free;
}

static void mig_tick(struct sim *s, double t)
{
	struct eng_load l[EV_MAX_NODES];
	struct mig_weights w;

	mig_weights_default(&w);
	for (int j = 0; j < s->n; j++)
		engine_load(&s->nd[j].e, &l[j]);
	for (int src = 0; src < s->n; src++) {
		if (l[src].load < MIG_BUSY_DEFAULT)
			continue;
		for (uint32_t k = 0; k < s->n_desc[src]; k++) {
			const struct state_desc *d = &s->desc[src][k];
			struct mig_state st = { .scope = MIG_PUBLIC };
			struct mig_dest dst = { .scope_ok = true };
			struct mig_eval ev;
			struct kv_who who;
			struct mig_mv *mv;
			struct aff *af;
			uint64_t token;
			uint32_t to = NONE, best = UINT32_MAX;

			token = d->token;
			if (!token)
				continue;
			af = aff_slot(s, token);
			if (!token || af->token != token || t < af->mig_until)
				continue;
			for (int j = 0; j < s->n; j++)
				if (j != src && l[j].load < MIG_BUSY_DEFAULT && l[j].load < best) {
					to = j;
					best = l[j].load;
				}
			if (to == NONE)
				continue;	/* nowhere to go: it stays */
			af->mig_until = t + MIG_COOL_S * 1e6;
			s->mig.decided++;
			st.reuse = d->reuse;
			st.value_us = d->value_us;
			st.tokens = d->tokens;
			st.size = st.tokens * EV_KV_BYTES_PER_TOKEN;
			st.migration_us = state_migration_us(st.size, s->c->kv_link_gbps > 0 ?
							     s->c->kv_link_gbps :
							     s->nd[src].e.p.kv_link_gbps);
			dst.net_us = (double)s->tbl[0][src].net_us + s->tbl[0][to].net_us;
			dst.kv_use = s->hb_kv[to] / 1000.0;
			if (mig_decide(&st, &dst, &w, MIG_PREFILL_US, &ev) != MIG_MOVE) {
				s->mig.recompute++;
				continue;
			}
			if (s->n_mv == s->mv_cap) {
				size_t n = s->mv_cap ? s->mv_cap * 2 : 64;
				struct mig_mv *p = realloc(s->mv, n * sizeof(*p));

				if (!p) {
					s->mig.failed++;
					continue;
				}
				s->mv = p;
				s->mv_cap = n;
			}
			mv = &s->mv[s->n_mv];
			if (state_token_lookup(&s->nd[src].st, token, &who, mv->keys, &mv->n) ||
			    !(mv->n = kv_match(&s->nd[src].e.kv, mv->keys, mv->n))) {
				s->mig.failed++;	/* nothing left to push: try again soon */
				af->mig_until = t + MIG_RETRY_S * 1e6;
				continue;
			}
			mv->token = token;
			mv->src = src;
			mv->dst = to;
			/* idnd's one worker orders the moves in turn: the push answers
			 * once committed (order to the source, transfer, path) */
			mv->t_done = mig_order(s, t, src, st.migration_us + dst.net_us);
			s->n_mv++;
			s->mig.gain_us += ev.gain_us;
		}
	}
}

/* the destination committed: blocks cached there, then the affinity */
static void mig_done(struct sim *s, size_t i, double t)
{
	struct mig_mv mv = s->mv[i];
	struct kv_cache *kv = &s->nd[mv.dst].e.kv;
	int32_t idx[AFF_KEYS];
	uint32_t hits;
	struct aff *af;

	s->mv[i] = s->mv[--s->n_mv];
	if (kv_acquire(kv, mv.keys, mv.n, mv.n, idx, &hits)) {
		s->mig.failed++;	/* no room at the destination: nothing applied */
		return;
	}
	kv_commit(kv, mv.keys, idx, hits, mv.n);
	kv_release(kv, idx, mv.n);
	state_note_token(&s->nd[mv.dst].st, mv.token, NULL, mv.keys, mv.n);
	s->mig.moved++;
	s->mig.blocks += mv.n - hits;
	af = aff_slot(s, mv.token);
	if (af->token == mv.token) {
		af->node = mv.dst;
		af->last_s = now_s(t);
		af->mig_until = t + MIG_MOVED_HOLD_S * 1e6;
	}
}

/*
 * Pull on miss (agent --kv-pull, idnd --migrate; agent/http.c
 * pull_on_miss(), ctl/idnd/migrate.c idnd_mig_pull()): request i reaches
 * node j at t. When j's agent has not served its token and its cache
 * lacks some of the prompt's blocks, it asks idnd (a round trip, j's
 * T_net); idnd takes the node whose last heartbeat's descriptors name the
 * token with the most blocks (the same descriptors, in C) and
 * decides by eq. 8 with P_hit 1 (mig_pull_state(), mig_decide()); a move
 * goes to idnd's worker like any (mig_order()) and commits the holder's
 * blocks for the token at j, then the affinity. The agent hands the
 * request to its engine held at the answer (engine_submit_held(): it
 * keeps its place in the queue while the blocks come) and releases it
 * when they are committed or at the answer's wait_ms (mig_pull_wait_us()),
 * in s->hold_rel[i]. Returns when the request reaches j's engine.
 */
static double mig_pull(struct sim *s, uint32_t i, uint32_t j, double t)
{
	const struct ev_req *r = &s->t->r[i];
	const uint64_t *k = s->t->keys + r->k_off;
	uint64_t known[AFF_KEYS], best = 0, n;
	struct mig_state hs = { 0 }, st;
	struct mig_dest dst = { .scope_ok = true };
	struct mig_weights w;
	struct mig_eval ev;
	struct kv_who who;
	struct mig_mv *mv;
	struct aff *af;
	uint32_t nk, have, h = NONE;
	double t_ans, link;

	if (!r->nk || !s->nd[j].st_init ||
	    state_token_lookup(&s->nd[j].st, r->sess, &who, known, &nk) != -ENOENT)
		return t;
	have = kv_match(&s->nd[j].e.kv, k, r->nk);
	if (have >= r->nk)
		return t;
	s->mig.pull_asked++;
	t_ans = t + s->tbl[0][j].net_us;	/* the agent's round trip to idnd */
	/* idnd: the node whose last report names the token with the most blocks */
	for (int q = 0; q < s->n; q++)
		for (uint32_t k = 0; (uint32_t)q != j && k < s->n_desc[q]; k++) {
			const struct state_desc *d = &s->desc[q][k];

			if (d->token != r->sess || d->blocks <= best)
				continue;
			hs = (struct mig_state){
				.scope = d->scope == KV_SCOPE_TENANT ? MIG_TENANT :
					 d->scope == KV_SCOPE_SESSION ? MIG_SESSION :
					 d->scope == KV_SCOPE_HW ? MIG_HARDWARE : MIG_PUBLIC,
				.reuse = d->reuse, .value_us = d->value_us, .tokens = d->tokens,
				.size = d->size, .migration_us = d->migration_us };
			best = d->blocks;
			h = q;
		}
	if (h == NONE)
		return t_ans;	/* nobody reports it: recompute */
	/* the descriptor's bytes and link model at the model's KV per token (mig_tick()) */
	link = s->c->kv_link_gbps > 0 ? s->c->kv_link_gbps : s->nd[h].e.p.kv_link_gbps;
	hs.size = hs.tokens * EV_KV_BYTES_PER_TOKEN;
	hs.migration_us = state_migration_us(hs.size, link);
	n = mig_pull_state(&st, &hs, best, r->nk - have, s->tbl[0][j].tok_ns / 1000.0);
	dst.net_us = (double)s->tbl[0][h].net_us + s->tbl[0][j].net_us;
	dst.kv_use = s->hb_kv[j] / 1000.0;
	dst.wait_us = (double)s->hb_pend[j] * s->tbl[0][j].tok_ns / 1000.0;
	mig_weights_default(&w);
	s->mig.decided++;
	if (mig_decide(&st, &dst, &w, MIG_PREFILL_US, &ev) != MIG_MOVE || !n) {
		s->mig.recompute++;
		return t_ans;
	}
	if (s->n_mv == s->mv_cap) {
		size_t c = s->mv_cap ? s->mv_cap * 2 : 64;
		struct mig_mv *p = realloc(s->mv, c * sizeof(*p));

		if (!p) {
			s->mig.failed++;
			return t_ans;
		}
		s->mv = p;
		s->mv_cap = c;
	}
	mv = &s->mv[s->n_mv];
	/* the holder's push: its record of the token, what of it is still cached */
	if (state_token_lookup(&s->nd[h].st, r->sess, &who, mv->keys, &mv->n) ||
	    !(mv->n = kv_match(&s->nd[h].e.kv, mv->keys, mv->n))) {
		s->mig.failed++;
		return t_ans;
	}
	mv->token = r->sess;
	mv->src = h;
	mv->dst = j;
	mv->t_done = mig_order(s, t_ans, h, state_migration_us((uint64_t)mv->n *
				EV_TRACE_BLOCK * EV_KV_BYTES_PER_TOKEN, link) + dst.net_us);
	s->n_mv++;
	s->mig.pulls++;
	af = aff_slot(s, r->sess);
	if (af->token == r->sess)	/* idnd: no scan move of the old copy now */
		af->mig_until = t + MIG_COOL_S * 1e6;
	s->hold_rel[i] = mv->t_done;
	if (mv->t_done > t_ans + mig_pull_wait_us((double)st.migration_us + dst.net_us)) {
		s->mig.pull_late++;
		s->hold_rel[i] = t_ans + mig_pull_wait_us((double)st.migration_us + dst.net_us);
	}
	return t_ans;
}

static void rel_done(struct sim *s, size_t k, double t)
{
	struct mig_rel x = s->rel[k];
	struct node *nd = &s->nd[x.node];

	s->rel[k] = s->rel[--s->n_rel];
	engine_release(&nd->e, x.r);
	if (!nd->busy) {
		nd->e.now_us = t;	/* the idle engine's clock catches up */
		if (s->c->oracle)
			oracle_refill(s, x.node);
		start_iter(nd);
	}
}

/* ---- set-up ---- */

static const char default_cap_json[] =
	"{\"class\":1,\"name\":\"llama-3.1-8b-instruct\",\"resources\":{\"mem_gb\":16}}";
static const char default_pd_cap_json[] =
	"{\"class\":1,\"name\":\"llama-3.1-8b-instruct\",\"resources\":{\"mem_gb\":16},"
	"\"pd\":true}";
#define CAP_LABEL	IDN_CAP(1, 0)

/* the body each agent POSTs to idnd, with this router's net cost to it */
static int idn_setup(struct sim *s, char *err, size_t errlen)
{
	struct json_object *body[EV_MAX_NODES] = { 0 };
	struct agent_profile prof = { .cpus = 16, .n_gpus = 1 };
	int ret = 0;

	snprintf(prof.gpu[0].name, sizeof(prof.gpu[0].name), "NVIDIA H100 80GB HBM3");
	prof.gpu[0].mem_total = 80ULL << 30;
	/*
	 * Tiered: a router per client region (one table each, the same
	 * datagrams), each from its own idnd (-R its region) whose node
	 * entries carry T_net from that region: the agents report their
	 * round trip from each region's router (--region-net-us), idnd
	 * pushes region_net_us[R] (idnd_node_net_us()). Flat: one router.
	 */
	s->n_rt = s->c->layout == EV_TIERED ? 2 : 1;
	s->cap = CAP_LABEL;
	for (int rt = 0; rt < s->n_rt && !ret; rt++) {
		s->tbl[rt] = calloc(IDN_MAX_NODES, sizeof(struct idn_node));
		if (!s->tbl[rt])
			return -ENOMEM;
		for (int j = 0; j < s->n; j++) {
			struct agent_cfg ac;

			agent_cfg_defaults(&ac);
			ev_eng_params(&ac.eng);
			ev_eng_speed(&ac.eng, s->c->speed);
			ac.node_id = j;
			if (s->c->pd)	/* P/D: its stage */
				ac.role = j < s->c->n_prefill ? 1 : 2;
			snprintf(ac.addr4, sizeof(ac.addr4), "10.0.0.%u", (unsigned char)(j + 1));
			/* tiered: the cloud nodes are a region of their own (2) */
			ac.region = s->c->layout != EV_TIERED ? 0 :
				tier_region(j) >= 0 ? tier_region(j) : 2;
			/*
			 * The agent's --net-us: the round trip from the node's
			 * own region's clients (cloud: from anywhere); tiered,
			 * --region-net-us: from each region's router.
			 */
			ac.net_us = 2 * ev_one_way_us(s->c->layout, j,
						      tier_region(j) >= 0 ? tier_region(j) : 0);
			for (int r = 0; s->n_rt > 1 && r < 2; r++)
				ac.region_net_us[r] = 2 * ev_one_way_us(s->c->layout, j, r);
			body[j] = agent_profile_json(&prof, &ac);
			if (!body[j])
				ret = -ENOMEM;
		}
		if (!ret)
			ret = ev_idnd_build(s->c->cap_json ? s->c->cap_json : s->c->pd ?
					    default_pd_cap_json : default_cap_json, body, s->n, rt,
					    s->tbl[rt], &s->ops[rt], rt ? NULL : &s->stage2, err,
					    errlen);
		for (int j = 0; j < s->n; j++) {
			json_object_put(body[j]);
			body[j] = NULL;
		}
		if (ret < 0)
			return ret;
		s->n_ops[rt] = ret;
		ret = 0;
	}
	{
		uint32_t sz = 1;

		while (sz < s->t->n * 2 + 16)
			sz <<= 1;
		s->aff = calloc(sz, sizeof(*s->aff));
		s->aff_mask = sz - 1;
		if (!s->aff)
			return -ENOMEM;
	}
	s->desc = calloc(s->n, sizeof(*s->desc));
	s->seeds = calloc((size_t)s->n * STATE_MAX_DESC, sizeof(*s->seeds));
	if (!s->desc || !s->seeds)
		return -ENOMEM;
	for (int j = 0; j < s->n; j++) {
		if (state_init(&s->nd[j].st))
			return -ENOMEM;
		s->nd[j].st_init = true;
	}
	return 0;
}

static void sim_free(struct sim *s)
{
	for (int j = 0; j < s->n; j++) {
		engine_free(&s->nd[j].e);
		free(s->nd[j].id2req);
		lru_free(&s->nd[j].blocks);
		lru_free(&s->nd[j].spec);
		if (s->nd[j].st_init)
			state_fini(&s->nd[j].st);
	}
	free(s->desc);
	free(s->seeds);
	for (int k = 0; k < 2; k++) {
		free(s->tbl[k]);
		free(s->ops[k]);
	}
	free(s->o);
	free(s->t_send);
	free(s->region);
	free(s->aff);
	free(s->ring);
	free(s->ring_node);
	free(s->dq);
	free(s->mv);
	free(s->rel);
	free(s->hold_rel);
	free(s->pd_stage);
	free(s->pd_first);
	free(s->seen);
	free(s->seen_by);
	free(s->oidx);
}

static int dbl_cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* nearest rank */
static double pct(const double *v, size_t n, double p)
{
	size_t k;

	if (!n)
		return 0;
	k = (size_t)ceil(p * n);
	return v[k ? k - 1 : 0];
}

static int results(struct sim *s, struct ev_res *res, double t_last)
{
	const struct ev_trace *t = s->t;
	double *v = malloc(sizeof(*v) * (t->n + 1)), *all = malloc(sizeof(*all) * (t->n + 1));
	double tp = 0, hit = 0, q = 0;
	size_t ntp = 0, ns = 0;

	if (!v || !all) {
		free(v);
		free(all);
		return -ENOMEM;
	}
	res->n = t->n;
	res->nodes = s->n;
	res->span_s = t->span_us / s->c->scale / 1e6;
	for (size_t i = 0; i < t->n; i++) {
		const struct out *o = &s->o[i];

		if (!o->done) {
			all[i] = INFINITY;
			res->shed++;
			continue;
		}
		all[i] = o->ttft_us;
		v[ns++] = o->ttft_us;
		if (t->r[i].out > 1) {
			tp += o->tpot_us;
			ntp++;
		}
		hit += o->cached;
		q += t->r[i].in;
		if (o->ttft_us <= EV_SLO_TTFT_US && o->tpot_us <= EV_SLO_TPOT_US)
			res->good++;
		if (!ev_in_region(s->c->layout, o->node, s->region[i]))
			res->wan_bytes += 4.0 * (t->r[i].in + t->r[i].out);
	}
	res->served = ns;
	{	/* herding: decisions per 100 ms window, share of the most chosen node */
		uint32_t cnt[EV_MAX_NODES] = { 0 }, tot = 0;
		double sum = 0, w = 0, win = -1;

		for (size_t i = 0; i <= t->n; i++) {
			double wi = i < t->n ? floor(s->t_send[i] / 100000.0) : -2;

			if (wi != win) {
				uint32_t mx = 0;

				for (int j = 0; j < s->n; j++)
					mx = cnt[j] > mx ? cnt[j] : mx;
				if (tot >= 2) {
					sum += (double)mx / tot * tot;	/* weighted by requests */
					w += tot;
				}
				memset(cnt, 0, sizeof(cnt));
				tot = 0;
				win = wi;
			}
			if (i < t->n && !s->o[i].shed) {
				cnt[s->o[i].node]++;
				tot++;
			}
		}
		res->herd_pct = w > 0 ? 100.0 * sum / w : 0;
	}
	if (s->c->keep_ttft) {
		res->ttft_us = malloc(sizeof(double) * t->n);
		res->node = malloc(sizeof(int16_t) * t->n);
		for (size_t i = 0; res->ttft_us && res->node && i < t->n; i++) {
			res->ttft_us[i] = s->o[i].done ? s->o[i].ttft_us : -1;
			res->node[i] = s->o[i].done ? s->o[i].node : -1;
		}
	}
	qsort(v, ns, sizeof(*v), dbl_cmp);
	qsort(all, t->n, sizeof(*all), dbl_cmp);
	res->p50 = pct(v, ns, 0.5) / 1e6;
	res->p90 = pct(v, ns, 0.9) / 1e6;
	res->p99 = pct(v, ns, 0.99) / 1e6;
	res->p90_all = pct(all, t->n, 0.9) / 1e6;
	res->tpot_mean = ntp ? tp / ntp / 1e6 : 0;
	for (size_t i = 0, k = 0; i < t->n; i++)
		if (s->o[i].done && t->r[i].out > 1)
			v[k++] = s->o[i].tpot_us;
	qsort(v, ntp, sizeof(*v), dbl_cmp);
	res->tpot_p90 = pct(v, ntp, 0.9) / 1e6;
	res->hit_pct = q > 0 ? 100.0 * hit / q : 0;
	res->shed_pct = 100.0 * res->shed / t->n;
	res->goodput = res->span_s > 0 ? res->good / res->span_s : 0;
	res->busy_max = 0;
	res->busy_mean = 0;
	for (int j = 0; j < s->n; j++) {
		res->busy_pct[j] = t_last > 0 ? 100.0 * s->nd[j].e.st.busy_us / t_last : 0;
		res->busy_mean += res->busy_pct[j] / s->n;
		if (res->busy_pct[j] > res->busy_max)
			res->busy_max = res->busy_pct[j];
	}
	free(v);
	free(all);
	return 0;
}

int ev_run(const struct ev_trace *t, const struct ev_cfg *c, struct ev_res *res, char *err,
	   size_t errlen)
{
	struct sim *s = calloc(1, sizeof(*s));
	struct eng_params ep;
	struct agent_cfg ac;
	uint32_t tele_ms;
	size_t next = 0;
	double t_last = 0;
	int ret = 0;

	memset(res, 0, sizeof(*res));
	if (!s)
		return -ENOMEM;
	if (c->nodes < 1 || c->nodes > EV_MAX_NODES || !(c->scale > 0) ||
	    (c->layout == EV_TIERED && c->nodes != 8)) {
		snprintf(err, errlen, "nodes 1..%d (tiered: 8) and a positive scale", EV_MAX_NODES);
		free(s);
		return -EINVAL;
	}
	if (c->pd && (c->policy != EV_IDN || c->layout != EV_FLAT || c->n_prefill < 1 ||
		      c->n_prefill >= c->nodes)) {
		snprintf(err, errlen, "P/D: IDN, flat layout, 1..nodes-1 prefill nodes");
		free(s);
		return -EINVAL;
	}
	if (c->oracle && (c->policy != EV_IDN || c->migrate || c->pd ||
			  c->oracle < 0 || c->oracle > EV_ORACLE_REUSE)) {
		snprintf(err, errlen, "oracle: IDN, without migrate or P/D");
		free(s);
		return -EINVAL;
	}
	s->t = t;
	s->c = c;
	s->n = c->nodes;
	s->rng = c->seed;
	agent_cfg_defaults(&ac);
	tele_ms = c->tele_ms ? c->tele_ms : ac.tele_ms;
	ev_eng_params(&ep);
	ev_eng_speed(&ep, c->speed);
	s->o = calloc(t->n, sizeof(*s->o));
	s->t_send = malloc(sizeof(double) * t->n);
	s->region = calloc(t->n, 1);
	if (!s->o || !s->t_send || !s->region)
		ret = -ENOMEM;
	if (!ret && c->migrate && !(s->hold_rel = calloc(t->n, sizeof(double))))
		ret = -ENOMEM;
	if (!ret && c->oracle == EV_ORACLE_REUSE) {
		size_t sz = 1024;

		while (sz < 2 * t->nkeys)
			sz *= 2;
		s->seen_mask = sz - 1;
		s->seen = calloc(sz, sizeof(*s->seen));
		s->seen_by = calloc(sz, sizeof(*s->seen_by));
		if (!s->seen || !s->seen_by)
			ret = -ENOMEM;
	}
	for (size_t i = 0; !ret && c->oracle && i < t->n; i++)
		if (t->r[i].nk > s->oidx_cap)
			s->oidx_cap = t->r[i].nk;
	if (!ret && c->oracle && !(s->oidx = calloc(s->oidx_cap + 1, sizeof(*s->oidx))))
		ret = -ENOMEM;
	if (!ret && c->pd) {
		s->pd_stage = calloc(t->n, 1);
		s->pd_first = calloc(t->n, sizeof(double));
		if (!s->pd_stage || !s->pd_first)
			ret = -ENOMEM;
	}
	for (size_t i = 0; !ret && i < t->n; i++) {
		s->t_send[i] = t->r[i].t_us / c->scale / (c->speed > 0 ? c->speed : 1.0);
		/* clients' regions: Mooncake by session, Azure round robin */
		s->region[i] = t->has_prefix ? (mix64(t->r[i].sess) & 1) : (i & 1);
	}
	for (int j = 0; !ret && j < s->n; j++) {
		struct node *nd = &s->nd[j];
		uint32_t kvb = ep.capacity_tokens / ep.block_tokens;

		ret = engine_init(&nd->e, &ep);
		if (!ret && c->policy == EV_SGLANG)
			ret = lru_init(&nd->blocks,
				       SGL_MAX_TREE / SGL_CHARS_PER_TOKEN / EV_TRACE_BLOCK);
		if (!ret && c->policy == EV_LLMD)
			ret = lru_init(&nd->blocks, kvb);
		if (!ret && c->policy == EV_LLMD_PRECISE)
			ret = lru_init(&nd->spec, 4 * kvb);
		nd->tele.fd = -1;
		nd->tele.node = j;
		nd->tele.seq = 1000;
		/* agents start at different moments: spread their phases */
		nd->tele_next = (double)tele_ms * 1000.0 * (j + 1) / s->n;
	}
	if (!ret && c->policy == EV_IDN)
		ret = idn_setup(s, err, errlen);
	if (!ret && c->pd && !s->stage2.n_cand) {
		snprintf(err, errlen, "P/D: idnd compiled no second stage (decode nodes)");
		ret = -EINVAL;
	}
	else if (!ret && c->policy == EV_CHASH)
		ret = ring_build(s);
	if (ret) {
		if (!err[0])
			snprintf(err, errlen, "set-up: %s", strerror(-ret));
		sim_free(s);
		free(s);
		return ret;
	}
	for (;;) {
		double te = INFINITY, tt = INFINITY, td = INFINITY, ta = INFINITY, ts = INFINITY;
		double tm = INFINITY, tr = INFINITY;
		int je = -1, jt = -1;
		size_t im = 0, ir = 0;

		for (size_t k = 0; k < s->n_mv; k++)
			if (s->mv[k].t_done < tm) {
				tm = s->mv[k].t_done;
				im = k;
			}
		for (size_t k = 0; k < s->n_rel; k++)
			if (s->rel[k].t < tr) {
				tr = s->rel[k].t;
				ir = k;
			}

		for (int j = 0; j < s->n; j++) {
			if (s->nd[j].busy && s->nd[j].t_end < te) {
				te = s->nd[j].t_end;
				je = j;
			}
			if (c->policy == EV_IDN && s->nd[j].tele_next < tt) {
				tt = s->nd[j].tele_next;
				jt = j;
			}
		}
		if (s->n_dq)
			td = s->dq[0].t;
		if (next < t->n)
			ta = s->t_send[next];
		if (c->policy == EV_LLMD || c->policy == EV_LLMD_PRECISE)
			ts = s->scrape_next;
		if (je < 0 && !s->n_dq && next >= t->n && !s->n_rel && !s->n_mv)
			break;
		if (tm <= tr && tm <= te && tm <= tt && tm <= td && tm <= ta && tm <= ts) {
			mig_done(s, im, tm);
		} else if (tr <= te && tr <= tt && tr <= td && tr <= ta && tr <= ts) {
			rel_done(s, ir, tr);
		} else if (te <= tt && te <= td && te <= ta && te <= ts) {
			t_last = te;
			ret = iter_end(s, je);
		} else if (tt <= td && tt <= ta && tt <= ts) {
			tele_tick(s, jt, tt);
			s->nd[jt].tele_next += tele_ms * 1000.0;
			if (tt >= s->seed_next) {	/* the agents' heartbeats (--hb-ms) */
				s->seed_next += ac.hb_ms * 1000.0;
				s->seed_t = tt;
				seed_tick(s);
				if (c->migrate)
					mig_tick(s, tt);
			}
		} else if (ts <= td && ts <= ta) {
			for (int j = 0; j < s->n; j++) {
				struct eng_load l;

				engine_load(&s->nd[j].e, &l);
				s->nd[j].m_wait = l.waiting;
				s->nd[j].m_kv = l.kv_use;
			}
			s->scrape_next += SCRAPE_US;
		} else if (td <= ta) {
			struct dlv d = dq_pop(s);

			ret = deliver(s, d.req, d.node, d.t);
		} else {
			uint32_t i = next++, j = pick(s, i, ta);
			double lat;

			if (j == NONE || j >= (uint32_t)s->n) {
				s->o[i].shed = 1;
				continue;
			}
			s->o[i].node = j;
			if (s->pd_stage && t->r[i].out > 1)
				s->pd_stage[i] = 1;	/* one token: the prefill node's alone */
			s->nd[j].inflight++;
			s->nd[j].inflight_tok += t->r[i].in;
			lat = ev_one_way_us(c->layout, j, s->region[i]);
			if (c->migrate && c->policy == EV_IDN)	/* agents --kv-pull */
				lat = mig_pull(s, i, j, ta + lat) - ta;
			ret = lat > 0 ? dq_push(s, ta + lat, i, j) : deliver(s, i, j, ta);
		}
		if (ret) {
			snprintf(err, errlen, "simulation: %s", strerror(-ret));
			break;
		}
	}
	if (!ret)
		ret = results(s, res, t_last);
	if (!ret)
		res->mig = s->mig;
	sim_free(s);
	free(s);
	return ret;
}

void ev_res_free(struct ev_res *r)
{
	free(r->ttft_us);
	free(r->node);
	r->ttft_us = NULL;
	r->node = NULL;
}
