/* SPDX-License-Identifier: GPL-2.0 */
/*
 * agent.h - idn-agent (agent/): the node agent's parts and their
 * interfaces. One header for the whole daemon:
 *
 *   config.c     options and config file -> struct agent_cfg
 *   profile.c    resource profile R detected from the machine
 *   kvcache.c    block-hashed prefix/KV cache with real byte buffers
 *   engine.c     engine emulator: continuous batching, timing model
 *   residency.c  artifact residency manager, host-memory backend
 *   res_cuda.cu  CUDA VMM backend, plugin idn_res_cuda.so (nvcc, where present)
 *   telemetry.c  struct idn_telemetry datagrams to routers
 *   state.c      state descriptors S, request scopes, affinity self-check
 *   ctlclient.c  registration and heartbeats to idnd (libcurl, json-c)
 *   http.c       the agent's HTTP server (OpenAI API, /metrics, residency)
 *   main.c       the daemon
 *
 * Library parts return -errno and never print or exit.
 */
#ifndef IDN_AGENT_H
#define IDN_AGENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdint.h>
#include <pthread.h>
#include <netinet/in.h>

/*
 * Counters and flags one thread writes and another reads without a lock
 * (the HTTP threads render /metrics and /v1/agent while the main loop
 * heartbeats and sends telemetry; a signal handler sets stop): C11 atomics,
 * so every ++ and every read is whole. The CUDA plugin (C++, nvcc) includes
 * this header too and touches none of them: there they are plain.
 */
#ifdef __cplusplus
#define IDN_ATOMIC(t) t
#else
#define IDN_ATOMIC(t) _Atomic t
#endif

/* ------------------------------------------------------------------ */
/* configuration                                                       */
/* ------------------------------------------------------------------ */

struct eng_params {
	double iter_base_us;		/* per iteration (5750) */
	double prefill_tok_us;		/* per uncached prefill token (17.25) */
	double decode_seq_us;		/* per decoding sequence (6.0) */
	double attn_ctx_ns;		/* per decoding sequence per context token (0) */
	double prefill_attn_ns;		/* per prefill token per token it attends to (0) */
	uint32_t block_tokens;		/* tokens per KV block (512, as the traces) */
	uint64_t capacity_tokens;	/* KV capacity (467k tokens on one H100) */
	uint32_t kv_bytes_per_token;	/* 131072 for Llama-3.1-8B; small default */
	double kv_link_gbps;		/* KV transfer link: descriptors' migration cost (10) */
	uint32_t max_batch_tokens;	/* token budget of one iteration (8192) */
	uint32_t max_seqs;		/* running sequences (256) */
	double speed;			/* emulated time runs this much faster */
	uint8_t cache_policy;		/* enum kv_policy (eq8) */
	double cache_half_life;		/* eq8: in cache turnovers (1.0) */
};

struct idn_tls;			/* ctl/lib/http.h */

struct agent_cfg {
	uint32_t node_id;
	char addr4[INET_ADDRSTRLEN];
	char addr6[INET6_ADDRSTRLEN];
	uint32_t domain, region, trust, runtime, net_us, max_queue;
	uint32_t region_net_us[16];	/* RTT from each region's router (us), 0 = not known */
	bool confidential;
	char controller[256];		/* idnd base URL[,URL...], "" = none */
	uint32_t hb_ms;
	char etcd[256];			/* etcd URL[,URL...]: own node lease, "" = none */
	uint32_t etcd_domain;		/* key prefix /idn/DOMAIN/ (idnd -D) */
	uint32_t etcd_ttl;		/* node lease TTL, s (0: from --hb-ms) */
	char tele[128];			/* router "ADDR:PORT" / "[ADDR6]:PORT", "" = none */
	uint32_t tele_ms;
	char listen[128];		/* "ADDR:PORT" of the HTTP server (inference) */
	char mgmt_listen[128];		/* management listener, "none"; "" = loopback, port + 1000 */
	char artifact_dir[256];		/* artifacts are loaded from under it only */
	char kv_peers[512];		/* ADDR:PORT,...: /v1/kv/push targets besides idnd's nodes */
	char engine_mgmt_url[256];	/* the engine's management URL (LoRA, sleep), "" = engine_url */
	char model[64];
	bool engine;			/* run the emulator */
	struct eng_params eng;
	uint64_t mem_budget;		/* residency budget, bytes */
	char backend[16];		/* host | cuda */
	char kv_listen[128];		/* KV transfer listener "ADDR:PORT", "" = none */
	char kv_transport[8];		/* rdma | tcp | auto */
	uint8_t role;			/* P/D stages it serves: 0 both, 1 prefill, 2 decode
					   (idnd's enum idnd_role; registered as "role") */
	uint32_t kv_streams;
	char kv_key[256];		/* shared key authenticating KV peers, "" = none */
	bool kv_insecure;		/* --kv-insecure: a KV listener without a key */
	bool kv_pull;			/* --kv-pull: ask idnd to pull a token's blocks from
					   their holder on a miss (http.c, pull_on_miss()) */
	uint32_t pd_cache_ms;		/* --pd-cache-ms: stage 2's answers kept this long
					   (pd.c), 0 = ask idnd every request */
	bool pd_handoff;		/* --pd-handoff auto|off: two-stage requests' client
					   connections handed to the decode node (handoff.c) */
	char handoff_map[256];		/* --handoff-map: the node's pinned idn_handoff */
	char key_path[256];		/* Ed25519 node key, "" = default path */
	char tele_key[256];		/* --tele-key FILE: telemetry key without idnd, "" = none */
	char enrol_stmt[256];		/* --enrol-statement FILE (idnctl node sign enrol) */
	char attestation[256];		/* --attestation FILE (idnctl node sign attest) */
	char tls_ca[256], tls_cert[256], tls_key[256];	/* mutual TLS (PEM), "" = none */
	bool insecure;			/* --insecure: plain HTTP management and idnd client */
	char etcd_ca[256], etcd_cert[256], etcd_key[256];	/* TLS to https:// etcd, "" = none */
	char etcd_user[128], etcd_pass[256];	/* etcd auth: user, password file; "" = none */
	char affinity_pin[200];		/* router's pin dir for the affinity self-check */
	char engine_url[256];		/* managed vLLM/SGLang server (adapter.c), "" = none */
	uint32_t scrape_ms;		/* its /metrics scrape period */
	int verbose;
};

void agent_cfg_defaults(struct agent_cfg *c);
void eng_params_defaults(struct eng_params *p);
/* parse argv (and a "-c FILE" of "key = value" lines); err gets a message;
 * 1: --help asked, 2: --version asked */
int agent_cfg_parse(struct agent_cfg *c, int argc, char **argv, char *err, size_t errlen);
/* SIGHUP: re-read verbose, hb-ms, tele-ms from the --config file */
int agent_cfg_reload(struct agent_cfg *c, int argc, char **argv, char *err, size_t errlen);
int agent_parse_hostport(const char *s, struct sockaddr_storage *ss, socklen_t *len);

/* ------------------------------------------------------------------ */
/* resource profile R                                                  */
/* ------------------------------------------------------------------ */

#define AGENT_MAX_GPUS 16
struct agent_gpu {
	char name[96];
	uint64_t mem_total, mem_free;
};

struct agent_profile {
	uint32_t cpus;
	char cpu_model[96];
	uint64_t mem_total, mem_avail;	/* bytes */
	uint32_t n_gpus;
	char gpu_source[16];		/* "nvml", "cuda" or "none" */
	struct agent_gpu gpu[AGENT_MAX_GPUS];
};

int agent_profile_detect(struct agent_profile *p);
/* the R body idnd's POST /v1/nodes takes (json_object *), see docs/agent.md */
struct json_object *agent_profile_json(const struct agent_profile *p,
				       const struct agent_cfg *c);

/* ------------------------------------------------------------------ */
/* KV cache                                                            */
/* ------------------------------------------------------------------ */

/* sharing scopes of cached state (DESIGN 3.5): who may hit a block */
enum kv_scope {
	KV_SCOPE_PUBLIC,		/* every request */
	KV_SCOPE_TENANT,		/* requests of the same tenant */
	KV_SCOPE_SESSION,		/* requests of the same tenant and session token */
	KV_SCOPE_HW,			/* hardware-bound: as public (or its tenant), never exported */
};
#define KV_SCOPES	4
#define KV_CLASSES	4		/* access-count classes 1, 2, 3, 4+ (eq. 8) */
#define KV_LISTS	(1 + KV_SCOPES * KV_CLASSES)

enum kv_policy { KV_POLICY_LRU, KV_POLICY_EQ8 };

/* who asks: a request's identity and the scope of the state it creates */
struct kv_who {
	uint8_t scope;			/* enum kv_scope */
	uint8_t leaving;		/* a transfer off the node: hardware-bound is invisible */
	uint16_t tenant;		/* 0 = none */
	uint64_t session;		/* session token, 0 = none */
	/*
	 * the request's affinity token (X-IDN-Token, else its prefix token):
	 * the blocks it writes are described under it (state_summary()), so a
	 * shared first block (a system prompt) does not merge every session's
	 * state into one descriptor. No access rule reads it.
	 */
	uint64_t token;
};

struct kv_block {
	uint64_t key;
	uint64_t root;			/* key of its prefix's first block (state descriptors) */
	uint64_t session;		/* owner (session scope) */
	uint64_t token;			/* affinity token of the request that wrote it, 0: none */
	uint64_t t_last;		/* cache clock at its last release */
	uint32_t ref;
	int32_t prev, next;		/* evictable list or free list */
	int32_t hnext;			/* hash chain */
	uint16_t tenant;		/* owner (tenant, session, hardware scopes) */
	uint8_t cached;			/* key in the hash table */
	uint8_t scope;			/* enum kv_scope */
	uint8_t nacc;			/* accesses (insert + hits), saturating */
	uint8_t list;			/* evictable list it is on */
	uint8_t pad[2];
};

struct kv_cache {
	struct kv_block *b;
	uint32_t nblocks, block_tokens;
	size_t block_bytes;
	uint8_t *arena;			/* nblocks * block_bytes, one registration */
	int32_t *htab;
	uint32_t hmask;
	int32_t lh[KV_LISTS], lt[KV_LISTS];	/* evictable lists, head = newest */
	int32_t free_head;
	uint32_t nfree, nlru, nused;	/* nlru: cached, unreferenced (evictable) */
	/* replacement policy (kv_set_policy) */
	uint8_t policy;			/* enum kv_policy */
	double half_life;		/* eq8: reuse decays by half per half_life * nblocks */
	double saved_us;		/* eq8: prefill time a hit on one block saves */
	uint64_t clock;			/* block releases */
	double acc[KV_SCOPES][KV_CLASSES];	/* blocks that entered class c */
	double suc[KV_SCOPES][KV_CLASSES];	/* ... and were hit again in it */
	uint32_t stat_ticks;
	/* counters */
	uint64_t q_blocks, hit_blocks;	/* acquire lookups */
	uint64_t evictions, inserts;
};

int kv_init(struct kv_cache *kc, uint32_t nblocks, uint32_t block_tokens,
	    uint32_t bytes_per_token);
void kv_free(struct kv_cache *kc);
uint64_t kv_chain(uint64_t prev, uint64_t id);
/* policy and its parameters, on an empty cache (-EBUSY otherwise); LRU by default */
int kv_set_policy(struct kv_cache *kc, unsigned int policy, double half_life,
		  double saved_us_per_block);
int kv_policy_parse(const char *s);		/* "lru" | "eq8" -> enum, -EINVAL */
const char *kv_policy_name(unsigned int p);
int kv_scope_parse(const char *s);		/* "public" ... -> enum, -EINVAL */
const char *kv_scope_name(unsigned int s);
int kv_who_check(const struct kv_who *w);	/* tenant/session present for its scope */
bool kv_block_usable(const struct kv_block *b, const struct kv_who *w);
/* eq. 8: estimated P_reuse of a cached block now, and its value in prefill us */
double kv_reuse_p(const struct kv_cache *kc, const struct kv_block *b);
double kv_value_us(const struct kv_cache *kc, const struct kv_block *b);
/* P(another access after the current one) of a block in use: no age yet */
double kv_reuse_next(const struct kv_cache *kc, const struct kv_block *b);
/* leading blocks of keys[] present now and usable by w (NULL: public) (no change) */
uint32_t kv_match(const struct kv_cache *kc, const uint64_t *keys, uint32_t nkeys);
uint32_t kv_match_as(const struct kv_cache *kc, const struct kv_who *w, const uint64_t *keys,
		     uint32_t nkeys);
/* evict the unreferenced cached blocks of keys[] usable by w; returns how many */
int kv_drop(struct kv_cache *kc, const struct kv_who *w, const uint64_t *keys, uint32_t nkeys);
/*
 * Take total blocks for a sequence whose first nkeys blocks have keys:
 * cached leading blocks are shared (hits), the rest are fresh. All or
 * nothing: -ENOSPC leaves the cache unchanged.
 */
int kv_acquire(struct kv_cache *kc, const uint64_t *keys, uint32_t nkeys, uint32_t total,
	       int32_t *idx, uint32_t *hits);
/* the same for requester w: hits only blocks w may use, fresh blocks get w's scope */
int kv_acquire_as(struct kv_cache *kc, const struct kv_who *w, const uint64_t *keys,
		  uint32_t nkeys, uint32_t total, int32_t *idx, uint32_t *hits);
/* computed: fill blocks [from, n) with their KV bytes and publish keys */
void kv_commit(struct kv_cache *kc, const uint64_t *keys, const int32_t *idx,
	       uint32_t from, uint32_t n);
/*
 * Received blocks (a KV transfer writes them in place): kv_reserve takes n
 * fresh blocks, referenced and not indexed, so no lookup, request or
 * eviction sees them (all or nothing, -ENOSPC as kv_acquire); kv_release
 * gives them back. kv_publish enters them under keys[] for w once their
 * bytes are in, as kv_acquire_as + kv_commit would have without computing
 * the bytes: leading keys w finds already are hits (idx[j] becomes that
 * block, referenced; the received copy is freed), the rest get w's scope
 * (a key another sequence published meanwhile stays unindexed). The caller
 * then kv_release()s idx[].
 */
int kv_reserve(struct kv_cache *kc, uint32_t n, int32_t *idx);
void kv_publish(struct kv_cache *kc, const struct kv_who *w, const uint64_t *keys,
		int32_t *idx, uint32_t n, uint32_t *hits);
void kv_release(struct kv_cache *kc, const int32_t *idx, uint32_t n);
/* the bytes a block with this key holds (deterministic, checkable) */
void kv_fill(uint8_t *buf, size_t len, uint64_t key);
int kv_check(const struct kv_cache *kc, int32_t idx);
static inline uint8_t *kv_block_data(const struct kv_cache *kc, int32_t i)
{
	return kc->arena + (size_t)i * kc->block_bytes;
}

/* ------------------------------------------------------------------ */
/* engine emulator                                                     */
/* ------------------------------------------------------------------ */

enum eng_state { ENG_WAITING, ENG_PREFILL, ENG_DECODE, ENG_DONE, ENG_FAILED };

struct eng_req {
	uint64_t id;
	uint32_t in_tokens, out_tokens;
	uint32_t nkeys;
	uint64_t *keys;			/* chained block keys of the prompt */
	struct kv_who who;		/* scope and owner (tenant, session) */
	uint32_t nblocks;
	int32_t *blk;
	uint32_t cached_tokens, est_cached;
	uint32_t prefill_left, chunk;	/* chunk: scheduled this iteration */
	uint32_t generated;
	enum eng_state state;
	int err;
	bool cancelled;
	bool held;			/* waits for pulled blocks: keeps its place, not
					   admitted until engine_release() */
	int refs;
	double t_arrival, t_first, t_done;	/* emulated us */
	struct eng_req *next;		/* waiting / running list */
};

struct eng_stats {
	uint64_t requests_ok, requests_failed, prompt_tokens, gen_tokens;
	uint64_t prefix_query_tokens, prefix_hit_tokens;
	uint64_t iterations;
	double busy_us;
	uint64_t ttft_bucket[12];	/* see ENG_TTFT_BUCKETS */
	double ttft_sum_s;
	uint64_t ttft_count;
};

struct engine {
	struct eng_params p;
	struct kv_cache kv;
	pthread_mutex_t mu;
	pthread_cond_t work, progress;
	struct eng_req *wait_head, *wait_tail;
	struct eng_req *run_head, *run_tail;
	uint32_t n_wait, n_run;
	uint64_t next_id;
	double now_us;			/* emulated clock */
	uint64_t pending_wait;		/* est. uncached prefill tokens of waiting */
	uint64_t admit_reqs, admit_tokens;	/* requests submitted, their prompt tokens */
	struct eng_stats st;
	bool stop, threaded;
	pthread_t thr;
	void *sum_tab;			/* state_descs()' group table (state.c), kept */
	uint32_t sum_cap;		/* its entries */
};

extern const double eng_ttft_buckets[12];

int engine_init(struct engine *e, const struct eng_params *p);
void engine_free(struct engine *e);
/* keys from trace hash ids (one per block of block_tokens) */
int eng_keys_from_ids(const int64_t *ids, uint32_t n, uint64_t **keys);
/* keys from a text prompt: one per full block of whitespace-separated words */
uint32_t eng_keys_from_text(const char *text, uint32_t block_tokens, uint64_t **keys,
			    uint32_t *tokens);
/* a request: takes ownership of keys; NULL on -ENOMEM/-E2BIG in *err */
struct eng_req *engine_submit(struct engine *e, uint32_t in_tokens, uint32_t out_tokens,
			      uint64_t *keys, uint32_t nkeys, int *err);
/* the same with a scope and owner for the request's state (NULL: public) */
struct eng_req *engine_submit_as(struct engine *e, const struct kv_who *who,
				 uint32_t in_tokens, uint32_t out_tokens, uint64_t *keys,
				 uint32_t nkeys, int *err);
/*
 * The same, held: it keeps its place in the waiting list (later requests
 * may pass it) but is not admitted until engine_release(): pull on miss,
 * the prompt's blocks on their way from another node (http.c).
 */
struct eng_req *engine_submit_held(struct engine *e, const struct kv_who *who,
				   uint32_t in_tokens, uint32_t out_tokens, uint64_t *keys,
				   uint32_t nkeys, int *err);
void engine_release(struct engine *e, struct eng_req *r);
void engine_put(struct engine *e, struct eng_req *r);	/* drop a reference */
void engine_cancel(struct engine *e, struct eng_req *r);
/* one iteration in emulated time: plan, then apply; returns its us (0 idle) */
double engine_step(struct engine *e);
double engine_plan(struct engine *e);	/* locked by caller */
void engine_apply(struct engine *e, double dur_us);	/* locked by caller */
/* iteration cost of a batch (the timing model) */
double eng_iter_us(const struct eng_params *p, uint64_t prefill_tokens, uint32_t ndecode,
		   uint64_t decode_ctx_tokens);
/*
 * the same with prefill attention: prefill_attn = sum over the batch's
 * prefill chunks of chunk * (tokens before it + chunk / 2)
 */
double eng_iter_attn_us(const struct eng_params *p, uint64_t prefill_tokens, uint32_t ndecode,
			uint64_t decode_ctx_tokens, double prefill_attn);
int engine_start(struct engine *e);	/* real-time thread */
void engine_stop(struct engine *e);

struct eng_load {
	uint32_t queue_depth, pending_tokens;
	uint16_t load, kv_use;		/* permille */
	uint32_t running, waiting;
	/*
	 * The outstanding prefill as the router counts it (T_queue = this x
	 * tok_ns): the time the engine expects to clear it, in prefill tokens
	 * (engine_load(); 0: not known, the datagram carries pending_tokens).
	 */
	uint32_t work_tokens;
	/*
	 * Requests admitted since the start and their prompt tokens, from
	 * every router (the datagram carries what came since the last one:
	 * the routers count the others' share, docs/architecture.md)
	 */
	uint64_t admit_reqs, admit_tokens;
};
void engine_load(struct engine *e, struct eng_load *l);

/* ------------------------------------------------------------------ */
/* residency                                                           */
/* ------------------------------------------------------------------ */

struct res_backend {
	const char *name;
	int (*init)(void **ctx);
	void (*fini)(void *ctx);
	/* memory for size bytes; *h is the backend's handle */
	int (*alloc)(void *ctx, uint64_t size, void **h);
	int (*write)(void *ctx, void *h, uint64_t off, const void *buf, size_t len);
	void (*release)(void *ctx, void *h, uint64_t size);
	/* free memory the device reports now (bytes), -errno if unknown */
	int64_t (*free_bytes)(void *ctx);
	/* optional: a CPU pointer to the memory of h, so a load reads the file
	 * straight into it (no bounce buffer, no write); NULL: use write */
	void *(*host_ptr)(void *ctx, void *h);
};

extern const struct res_backend res_backend_host;
const struct res_backend *res_backend_cuda(void);	/* NULL: plugin not built/loadable */

enum res_state { RES_LOADING = 1, RES_READY, RES_EVICTING };

#define RES_NAME_MAX 64
struct res_artifact {
	char name[RES_NAME_MAX];
	char path[256];
	uint32_t cap;			/* capability label it realizes, 0 = none */
	uint64_t size, loaded;
	enum res_state state;
	uint64_t last_use;
	void *h;
	uint8_t sha256[32];		/* when verified */
	bool verified;			/* digest expected and matched */
	struct res_artifact *next;
};

struct residency {
	const struct res_backend *be;
	void *ctx;
	pthread_mutex_t mu;
	uint64_t budget, used;		/* used: ready + loading reservations */
	uint64_t tick;
	struct res_artifact *head;
	uint64_t loads, load_failures, evictions;
};

struct res_order {
	const char *name, *path;
	const char *sha256_hex;		/* NULL: "<path>.sha256" if present */
	const char *dir;		/* confine path under it (--artifact-dir); NULL: any path */
	uint32_t cap;
	bool evict_lru;			/* make room by evicting LRU ready artifacts */
};

int res_init(struct residency *r, const struct res_backend *be, uint64_t budget);
/*
 * res_open_beneath - open @path (absolute under @dir, or relative to it)
 * read-only, component by component with O_NOFOLLOW: no "..", no ".", no
 * symlink anywhere below @dir, a regular file at the end. Return: the fd,
 * or -EPERM for every failure alike (missing, outside, a link, not a
 * file), so an order cannot probe which files exist.
 */
int res_open_beneath(const char *dir, const char *path);
void res_fini(struct residency *r);
/*
 * Transactional load: -ENOENT missing file, -EEXIST name taken, -ENOSPC
 * over budget, -EBADMSG digest mismatch, -EIO short read. On any error
 * nothing changed (victims chosen for eviction stay resident).
 */
int res_load(struct residency *r, const struct res_order *o);
int res_evict(struct residency *r, const char *name);
struct json_object *res_json(struct residency *r);
/* labels of ready artifacts (heartbeat "resident") */
struct json_object *res_resident_caps(struct residency *r);
/* the verified SHA-256 of a ready artifact realizing cap (the digest idnd's
 * load order carried: a signed version's, docs/security.md); false: none */
bool res_cap_digest(struct residency *r, uint32_t cap, uint8_t out[32]);

/* ------------------------------------------------------------------ */
/* real-engine adapter (adapter.c): a vLLM/SGLang server by URL         */
/* ------------------------------------------------------------------ */

#define ADM_RUNNING	1
#define ADM_WAITING	2
#define ADM_KV		4
#define ADM_PENDING	8

/* one scrape of the engine's /metrics (sums over label sets; KV: max) */
struct adapter_metrics {
	double running, waiting, kv_use;	/* kv_use 0..1 */
	double prefix_queries, prefix_hits, prompt_tokens, gen_tokens, requests;
	double pending_tokens;			/* the emulator's, when present */
	uint32_t have;				/* ADM_* seen */
	uint32_t lines, known, malformed;
	bool sglang;				/* SGLang names seen */
};

#define ADAPTER_MAX_LORA 64
struct adapter_lora {
	char name[64], path[256];
	uint32_t cap;
};

struct adapter {
	char base[256];			/* engine URL, no trailing '/' */
	char mgmt[256];			/* its management URL (LoRA, sleep), "" = base */
	uint32_t period_ms, timeout_ms, max_seqs;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	pthread_t thr;
	bool inited, running, stop;
	/* under mu */
	bool up, sleeping, have_sleep;
	struct adapter_metrics m;
	char last_err[256];
	uint64_t scrapes, scrape_failures, downs, malformed, last_ok_ms;
	struct adapter_lora lora[ADAPTER_MAX_LORA];
	uint32_t n_lora;
	uint64_t lora_loads, lora_unloads, lora_failures, sleeps, wakes;
	/*
	 * The prefill ledger (under mu): prompt tokens of the requests the
	 * agent passed to the engine (adapter_proxy()) that the engine has not
	 * prefilled yet = led_out - led_credit. led_credit: of led_out, what
	 * the engine's prompt-token counter says it prefilled (FIFO, as the
	 * engines schedule); led_early: settled at their first byte before
	 * the counter showed them. Read live at every telemetry datagram.
	 */
	uint64_t led_out, led_credit, led_early;
	double led_ctr;			/* prompt-token counter at the last scrape, < 0: none */
	uint64_t passed, passed_tokens, pass_failures;
};

int adapter_init(struct adapter *ad, const char *url, uint32_t period_ms, uint32_t max_seqs);
int adapter_start(struct adapter *ad);		/* scrape thread (after curl_global_init) */
void adapter_stop(struct adapter *ad);
/* parse Prometheus text; -EBADMSG when lines were malformed (counted, skipped) */
int adapter_parse_metrics(const char *text, size_t len, struct adapter_metrics *m);
int adapter_scrape(struct adapter *ad);		/* one scrape now */
bool adapter_up(struct adapter *ad);
void adapter_load(struct adapter *ad, struct eng_load *l);
int adapter_lora_load(struct adapter *ad, const char *name, const char *path, uint32_t cap,
		      char *msg, size_t ml);
int adapter_lora_unload(struct adapter *ad, const char *name, char *msg, size_t ml);
bool adapter_has_lora(struct adapter *ad, const char *name);
int adapter_sleep(struct adapter *ad, bool sleep, uint32_t level, char *msg, size_t ml);
void adapter_resident_caps(struct adapter *ad, struct json_object *arr);
struct json_object *adapter_json(struct adapter *ad);
/* the prefill ledger: a request of tokens passed to the engine, settled at
 * its first byte back (prefilled) or when it failed (never prefilled) */
void adapter_pass(struct adapter *ad, uint32_t tokens);
void adapter_settle(struct adapter *ad, uint32_t tokens, bool prefilled);
void adapter_credit(struct adapter *ad, double prompt_counter);	/* one scrape's counter */
/* POST body to the engine's path (an inference request of tokens prompt
 * tokens, counted in the ledger): the HTTP status (> 0) with the answer in
 * *out (malloc'd, *olen bytes, *ctype its type), or -errno with msg set */
long adapter_proxy(struct adapter *ad, const char *path, const char *body, uint32_t tokens,
		   char **out, size_t *olen, char *ctype, size_t ctl, char *msg, size_t ml);

/* the emulator's vLLM control endpoints: LoRA adapters, sleep (http.c) */
struct emu_ctl {
	pthread_mutex_t mu;
	struct adapter_lora lora[ADAPTER_MAX_LORA];
	uint32_t n_lora;
	uint32_t sleep_level;		/* 0 awake */
	uint64_t refused_asleep;	/* completions refused while asleep */
};

/* ------------------------------------------------------------------ */
/* telemetry, controller client, HTTP                                  */
/* ------------------------------------------------------------------ */

#define TELE_MAX_ROUTERS 4
struct tele_dst {
	int fd;
	struct sockaddr_storage dst;
	socklen_t dlen;
};

/* datagrams to one router, or to each of a list (a router per region) */
struct telemetry {
	int fd;				/* the first router */
	struct sockaddr_storage dst;
	socklen_t dlen;
	int n_more;			/* the others: --telemetry A:P,B:P,... */
	struct tele_dst more[TELE_MAX_ROUTERS - 1];
	uint32_t node, seq;
	/* the admitted counts and time (ms) of the last datagram built */
	uint64_t last_reqs, last_tokens, last_ms;
	bool have_last;
	IDN_ATOMIC(uint64_t) sent, errors;
	/* the node's telemetry key (idnd at registration, or --tele-key) */
	bool keyed;
	uint8_t key[16];
	uint32_t key_id;
};

int tele_open(struct telemetry *t, const char *dst, uint32_t node, const char *src4,
	      const char *src6);
/* @now_ms: a monotonic clock, for the interval the admitted counts cover */
void tele_build(struct telemetry *t, const struct eng_load *l, uint8_t health, uint64_t now_ms,
		void *buf /* struct idn_telemetry */);
int tele_send(struct telemetry *t, const struct eng_load *l, uint8_t health, uint64_t now_ms);
void tele_close(struct telemetry *t);
uint32_t tele_seq_start(void);
/* the key datagrams are MACed with from now on (a new generation: a fresh window) */
void tele_set_key(struct telemetry *t, const uint8_t key[16], uint32_t key_id);
/* --tele-key FILE: one line "KEY_ID HEX32", mode 0600; -EPERM when readable by others */
int tele_key_load(const char *path, uint8_t key[16], uint32_t *key_id);

struct ctlclient {
	char base[256];			/* URL[,URL...]: replicas of idnd */
	int n_urls, cur;		/* the one heartbeats go to now */
	void *curl;
	const struct idn_tls *tls;	/* our certificate (ctl/lib/http.h); NULL: plain only */
	char err[256];			/* the last transport error */
	IDN_ATOMIC(bool) registered;
	IDN_ATOMIC(uint64_t) registrations, heartbeats, failures;
	long last_code;
	/* identity (docs/security.md): requests signed with the node key */
	const struct rcpt_key *key;	/* NULL: unsigned */
	uint32_t node;
	struct json_object *enrol, *attest;	/* --enrol-statement, --attestation */
	char *resp;			/* the last answer's body (register) */
	/* the telemetry key of the last registration, opened with the node key */
	bool tkey_new;
	uint8_t tkey[16];
	uint32_t tkey_id;
};

int ctl_init(struct ctlclient *cc, const char *base);
void ctl_fini(struct ctlclient *cc);
/* the base URL of the idnd replica in use (the first when cur is past the list), no trailing '/': 0 or -EINVAL */
int ctl_base_url(const struct ctlclient *cc, char *out, size_t len);
struct rcpt_key;
/*
 * Sign every request with @key as node @node; @enrol_file, @attest_file
 * (NULL: none) are added to registrations. 0 or -errno (a file unreadable).
 */
int ctl_identity(struct ctlclient *cc, const struct rcpt_key *key, uint32_t node,
		 const char *enrol_file, const char *attest_file);
int ctl_register(struct ctlclient *cc, struct json_object *r);
/*
 * Pull on miss: POST /v1/nodes/NODE/pull {"token", "lack"} to idnd, on a
 * curl handle of its own (any thread). 0 and *answer (the caller puts
 * it), or -errno.
 */
int ctl_pull(struct ctlclient *cc, uint32_t node, uint64_t token, uint32_t lack,
	     struct json_object **answer);
int ctl_heartbeat(struct ctlclient *cc, uint32_t node, const struct eng_load *l,
		  struct json_object *resident, struct json_object *state);

/*
 * The node's own etcd lease (distributed idnd): nodes/ID = profile R with
 * "lease_owner": "agent", bound to a lease this agent grants and keeps
 * alive; re-granted and re-put when it expired, revoked on shutdown.
 */
struct ctl_lease {
	void *etcd;			/* struct etcd (ctl/idnd/etcd.h) */
	char urls[256];
	int n_urls;			/* endpoints (etcd.c picks one) */
	char key[96];
	uint32_t ttl;
	int64_t lease;			/* 0: none held */
	bool key_put;			/* the key is written under lease */
	uint64_t grants, keepalives, failures, next_try_ms;
	uint32_t backoff_ms;
	char err[256];
};

int ctl_lease_init(struct ctl_lease *cl, const char *urls, uint32_t domain, uint32_t node,
		   uint32_t ttl);
/* one keepalive (or grant + put); profile: the key's value. 0 = held */
int ctl_lease_tick(struct ctl_lease *cl, struct json_object *profile, uint64_t now_ms);
void ctl_lease_fini(struct ctl_lease *cl);	/* revokes the lease */

/* state.c: state descriptors S, request identity, affinity self-check */
#define STATE_MAX_DESC	64		/* descriptors per heartbeat */
#define STATE_LINK_GBPS	10.0		/* migration cost: bytes over this link (default of
					   --kv-link-gbps) ... */
#define STATE_XFER_SETUP_US 1000	/* ... plus connection and commit */
#define AFF_TOKENS	4096		/* tokens remembered (direct-mapped) */
#define AFF_KEYS	64		/* leading prefix blocks remembered per token
					 * (what a migration by token moves) */
#define AFF_SAMPLE_MAX	256		/* tokens checked per round */
#define AFF_WALK_MAX	65536		/* affinity entries read per round */

struct aff_rec {
	uint64_t token;
	struct kv_who who;
	uint32_t nkeys;
	uint64_t keys[AFF_KEYS];
};

struct agent_state {
	pthread_mutex_t mu;
	struct aff_rec *rec;		/* AFF_TOKENS */
	uint64_t *root;			/* AFF_TOKENS: rec[i].keys[0] of a token, else 0 */
	int aff_fd;			/* the router's pinned idn_affinity, -1 */
	uint64_t noted, rounds, checked, agree, mismatch, unknown;
	double last_ratio;
};

/* headers X-IDN-Tenant, -Session, -Scope, -Token (NULL if absent) -> w, *token */
int state_who_parse(const char *tenant, const char *session, const char *scope,
		    const char *token, struct kv_who *w, uint64_t *token_out, char *msg,
		    size_t len);
/* moving bytes over a link of gbps (<= 0: STATE_LINK_GBPS), setup included */
int64_t state_migration_us(uint64_t bytes, double gbps);
/* a kv_prefix descriptor of state_summary(): the values its fields carry */
struct state_desc {
	uint64_t compat, root;
	uint64_t session;		/* scope session only, else 0 */
	uint64_t token;			/* its writer's (or state_desc_tokens()'), 0: none */
	uint16_t tenant;
	uint8_t scope;			/* enum kv_scope */
	uint32_t blocks;
	uint64_t tokens, size, hits;
	double reuse;			/* 0..1, 4 decimals */
	int64_t value_us, migration_us;	/* -1: hardware-bound */
};
/*
 * state_descs - the engine's cached KV blocks grouped as state_summary()
 * reports them, the most valuable first: at most @max into @d; *groups (if
 * given) how many groups there were, *cached the cached blocks. Returns the
 * descriptors written. state_summary() is these in JSON (after any
 * artifacts); a caller without JSON (make eval) takes them as they are.
 */
uint32_t state_descs(struct engine *e, const char *model, uint32_t max, struct state_desc *d,
		     uint32_t *groups, uint64_t *cached);
/* {"policy", "kv_blocks", "kv_cached", "groups", "descriptors": [S...]} */
struct json_object *state_summary(struct engine *e, struct residency *res, const char *model,
				  uint32_t max);
/*
 * state_tokens - on each kv_prefix descriptor of a state_summary(), the
 * affinity token ("token", 16 hex digits) of the last request that brought
 * its prefix root here with that owner (X-IDN-Token): which token's state
 * this node holds, what idnd seeds routers' affinity from. None: no field.
 */
void state_tokens(struct agent_state *s, struct json_object *summary);
/* state_tokens() over state_descs()' descriptors: sets token where it is 0 */
void state_desc_tokens(struct agent_state *s, struct state_desc *d, uint32_t n);
int state_init(struct agent_state *s);
void state_fini(struct agent_state *s);
void state_note_token(struct agent_state *s, uint64_t token, const struct kv_who *w,
		      const uint64_t *keys, uint32_t nkeys);
/* the prefix and owner last seen with token: 0, or -ENOENT (keys: AFF_KEYS) */
int state_token_lookup(struct agent_state *s, uint64_t token, struct kv_who *w,
		       uint64_t *keys, uint32_t *nkeys);
/* the router sends these tokens here: does the cache hold their prefixes? */
void state_affinity_check(struct agent_state *s, struct engine *e, const uint64_t *tokens,
			  uint32_t n);
int state_affinity_open(struct agent_state *s, const char *pin_dir);
/* sample up to max tokens the pinned map sends to node, check them; -errno or n */
int state_affinity_poll(struct agent_state *s, struct engine *e, uint32_t node, uint32_t max);
struct json_object *state_affinity_json(struct agent_state *s);
struct idn_prom;
void state_metrics(struct agent_state *s, struct idn_prom *p, const char *model);

#define AGENT_RECEIPTS 256		/* kept in memory, served by id */
struct agent_receipts {
	pthread_mutex_t mu;
	uint64_t id[AGENT_RECEIPTS];
	char *text[AGENT_RECEIPTS];
	uint64_t n;
};

struct kvx;
struct rcpt_key;

struct agent {
	struct agent_cfg cfg;
	struct kvx *kvx;		/* KV transfer engine (kvxfer.h) */
	uint32_t kv_arena;		/* the KV cache arena, registered once */
	struct rcpt_key *key;		/* node key (receipt.h) */
	struct agent_receipts rc;
	uint64_t kv_rx_blocks;		/* blocks received into the cache */
	uint64_t kv_rx_unannounced;	/* owned transfers refused: no /v1/kv/expect */
	double kv_rx_last_commit;	/* wall clock of the last (under eng.mu) */
	struct agent_profile prof;
	struct engine eng;
	struct residency res;
	struct ctlclient ctl;
	struct ctl_lease lease;		/* --etcd */
	struct telemetry tele;
	struct agent_state st;		/* state.c */
	struct adapter *ad;		/* managed engine (--engine-url), NULL = none */
	struct emu_ctl emu;		/* the emulator's LoRA/sleep state */
	bool have_tele, have_ctl, have_lease;
	void *httpd;
	void *httpd_mgmt;		/* management listener (http.c) */
	const struct idn_tls *tls;	/* its TLS material, idnd's client too (main.c) */
	uint64_t mgmt_refused;		/* management requests refused on the inference port */
	uint64_t kv_push_done, kv_push_failed, kv_push_bytes;	/* /v1/kv/push (atomic) */
	/* two-stage requests: prefill stages moved on, served colocated; decode stages */
	IDN_ATOMIC(uint64_t) pd_moved, pd_colocated, pd_decoded;
	/* requests served as one stage by stage 2's answer: the capability not
	 * "pd" or the VIP serving none; the VIP serving several (the model no
	 * help); found by VIP but idnd not answering (unreachable, an error) */
	uint64_t pd_not_two_stage, pd_ambiguous, pd_unknown;	/* atomic */
	struct pd_cache *pdc;		/* stage 2's answers, recent (pd.c) */
	/* ... their client connections handed to the decode node, hand-offs that
	 * fell back to the relay; decode side: connections taken over */
	IDN_ATOMIC(uint64_t) pd_handed_off, pd_handoff_fallback, pd_handoff_taken;
	int handoff_map_fd;		/* --handoff-map, opened on first use; -1: not yet */
	uint8_t pd_key[32];		/* the KV key (--kv-key): authenticates hand-offs */
	bool pd_key_set;
	uint64_t kv_pull_asked, kv_pull_got, kv_pull_late;	/* pull on miss (atomic) */
	IDN_ATOMIC(int) stop;		/* set by the signal handler: lock-free */
};

/* ------------------------------------------------------------------ */
/* two-stage (P/D) requests (pd.c; the orchestration is in http.c)     */
/* ------------------------------------------------------------------ */

struct curl_slist;

struct pd_target {
	uint32_t label;			/* the capability (found by VIP, or as asked) */
	uint32_t node;			/* the decode node idnd's stage 2 picked by J */
	int64_t j_us;			/* its J */
	uint64_t generation;		/* idnd's plan generation */
	char kv[128];			/* its KV listener ADDR:PORT */
	char api[160];			/* http://ADDR:PORT, its inference listener */
	char addr4[16];			/* its IPv4 locator, "" = none (no hand-off) */
};

/* what stage 2 is asked for: a capability, or the request's VIP and model */
struct pd_query {
	uint32_t label;			/* X-IDN-Capability; 0: by vip, port, model */
	char vip[48];			/* the address the client reached (numeric) */
	uint16_t port;
	const char *model;		/* the request's "model", NULL: none */
	uint64_t token;
	uint8_t size_class;
	/*
	 * the prompt's state: public (0), or tenant or session (enum
	 * kv_scope) with its owner and root (the first block's key): stage
	 * 2 then picks among the decode nodes that may hold that scope and
	 * announces the transfer at its pick; asked every time, not cached
	 */
	uint8_t scope;
	uint16_t tenant;
	uint64_t session, root;
};

/*
 * GET /v1/placement/stage2?cap=LABEL (or ?vip=ADDR&port=P&model=NAME)
 * &token=..&size_class=.. from idnd, or its answer to the same question
 * (capability or VIP and model, size class) in the last --pd-cache-ms: 0
 * with the decode node idnd picks (t->label the capability), -ENOENT (not
 * a two-stage capability, the VIP serves none), -ENOTUNIQ (the VIP serves
 * several and the model names none of them), or -errno with msg (idnd
 * unreachable, no decode node).
 */
int pd_stage2(struct agent *a, const struct pd_query *q, struct pd_target *t, char *msg,
	      size_t ml);
/* a hand-over to node failed: its cached picks go (the next request asks) */
void pd_cache_drop(struct agent *a, uint32_t node);
int pd_cache_init(struct agent *a);
void pd_cache_free(struct agent *a);
/* stage 2's answers cached: hits, misses (asked idnd), picks dropped */
void pd_cache_counts(struct agent *a, uint64_t *hits, uint64_t *misses, uint64_t *dropped);

/*
 * Connection hand-off (handoff.c): a client's TCP connection moved to the
 * decode node, which answers the client directly.
 */
#include <netinet/tcp.h>
struct ho_state {
	struct sockaddr_in local, peer;	/* VIP:port, client:port */
	uint32_t snd_seq, rcv_seq;	/* snd_nxt (all acknowledged), rcv_nxt */
	uint32_t mss, ts;		/* MSS clamp, TSval clock now */
	struct tcp_repair_window win;
	uint8_t opts;			/* TCPI_OPT_* */
	uint8_t snd_wscale, rcv_wscale;
};
struct json_object;
/* freeze fd (TCP_REPAIR) after checking nothing is in flight; its state */
int ho_freeze(int fd, struct ho_state *s, char *why, size_t wl);
void ho_thaw(int fd);			/* out of repair, nothing sent */
void ho_drop(int fd);			/* a bare socket under fd: the frozen one goes silently */
struct json_object *ho_state_json(const struct ho_state *s);
int ho_state_parse(struct json_object *o, struct ho_state *s);
/* the connection rebuilt here (repair mode still), req in its receive queue */
int ho_restore(const struct ho_state *s, const char *req, size_t len, int *fd, char *why,
	       size_t wl);
int ho_commit(int fd);			/* out of repair mode: it is this node's */
int ho_map_open(const char *path);
int ho_map_set(int mfd, const struct ho_state *s, uint32_t node4);
void ho_map_del(int mfd, const struct ho_state *s);
int ho_pend_add(uint64_t id, int fd, const struct sockaddr_in *peer);
int ho_pend_take(uint64_t id, int *fd, struct sockaddr_in *peer);

#define PD_FWD_MAX (64u << 20)		/* an answer relayed: at most this much buffered */
/* the request handed to the decode node; its answer, relayed */
struct pd_fwd {
	void *m, *e;			/* CURLM, CURL */
	struct curl_slist *h;
	char *body;
	char *buf;			/* answer bytes, buf[off..len) not relayed yet */
	size_t len, off, cap;
	long code;			/* its HTTP status, 0 until known */
	int rc;				/* CURLcode once done */
	bool added, done;
	uint64_t peer_req;		/* its X-IDN-Receipt: the decode stage's request */
	char ctype[128];
	char err[256];			/* CURL_ERROR_SIZE */
};

int pd_fwd_start(struct pd_fwd *f, const char *url, const char *body,
		 const char *const *hdrs, long timeout_ms);
/* move the transfer on, waiting up to wait_ms when nothing is buffered */
int pd_fwd_step(struct pd_fwd *f, int wait_ms);
bool pd_fwd_failed(const struct pd_fwd *f);	/* transport error or a status not 200 */
const char *pd_fwd_why(const struct pd_fwd *f, char *buf, size_t len);
void pd_fwd_free(struct pd_fwd *f);

int http_start(struct agent *a);
/*
 * Received KV blocks enter the cache (http.c; arg: the agent). The sink
 * (kvx_set_sink) places TCP transfers straight into cache blocks reserved
 * when they start and indexes them at commit; the commit callback copies
 * staged ones (RDMA) into blocks taken at commit.
 */
struct kvx_slice;
struct kvx_sink;
int agent_kv_commit(void *arg, uint32_t dst_arena, const uint8_t *stage,
		    const struct kvx_slice *s, uint32_t n);
extern const struct kvx_sink agent_kv_sink;
void http_stop(struct agent *a);

#endif /* IDN_AGENT_H */
