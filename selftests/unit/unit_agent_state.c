// SPDX-License-Identifier: GPL-2.0
/*
 * unit_agent_state.c - the agent's state (agent/kvcache.c, agent/state.c):
 * eq. 8 admission/eviction against LRU on a slice of the Mooncake trace
 * committed under selftests/data (capacity below the working set: eq8
 * saves at least as much prefill); a hand-made case where eq8 keeps a
 * popular prefix through a scan that LRU lets evict it; sharing scopes
 * enforced (another tenant or session never hits private blocks, not even
 * through the engine; hardware-bound state is never exported); request
 * headers -> identity; state descriptors grouped by prefix and scope,
 * bounded; the affinity self-check agrees, and a deliberately evicted
 * prefix shows up as a mismatch.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <json-c/json.h>

#include "agent.h"
#include "prom.h"
#include "trace.h"
#include "tap.h"

/*
 * What /metrics and /v1/agent read while the main loop writes it (and the
 * stop flag a signal handler sets) is atomic: a plain field here was a data
 * race under ThreadSanitizer. Checked where it is declared, at build time.
 */
#define IS_ATOMIC(lv, t) _Generic(&(lv), _Atomic t *: 1, default: 0)
_Static_assert(IS_ATOMIC(((struct ctlclient *)0)->heartbeats, uint64_t) &&
	       IS_ATOMIC(((struct ctlclient *)0)->registrations, uint64_t) &&
	       IS_ATOMIC(((struct ctlclient *)0)->registered, bool) &&
	       IS_ATOMIC(((struct telemetry *)0)->sent, uint64_t) &&
	       IS_ATOMIC(((struct agent *)0)->stop, int),
	       "counters and flags read across threads are C11 atomics");

static struct treq *T;
static uint32_t NT;

static int load_slice(const char *argv0)
{
	char path[600], cmd[700], dir[512];
	const char *d = getenv("IDN_SELFTEST_DATA");
	size_t alloc = 0;
	FILE *f;
	int err;

	if (!d) {	/* selftests/data next to the source tree: build/tests/X -> ../../ */
		const char *s = strrchr(argv0, '/');

		snprintf(dir, sizeof(dir), "%.*s/../../selftests/data",
			 s ? (int)(s - argv0) : 1, s ? argv0 : ".");
		d = dir;
	}
	snprintf(path, sizeof(path), "%s/mooncake_conversation_2000.jsonl.gz", d);
	if (access(path, R_OK))
		snprintf(path, sizeof(path), "selftests/data/mooncake_conversation_2000.jsonl.gz");
	if (access(path, R_OK))
		return -ENOENT;
	snprintf(cmd, sizeof(cmd), "gzip -dc '%s'", path);
	f = popen(cmd, "r");
	if (!f)
		return -errno;
	err = trace_read(f, &T, &NT, &alloc);
	if (pclose(f) != 0 && !err)
		err = -EIO;
	return err ? err : NT ? 0 : -EIO;
}

/* replay through the cache alone; saved = prompt tokens served from cache */
static void replay(struct kv_cache *kc, uint64_t *hits, uint64_t *saved)
{
	int32_t *idx = malloc(sizeof(*idx) * 512);

	*hits = *saved = 0;
	for (uint32_t i = 0; i < NT; i++) {
		uint64_t *keys, c;
		uint32_t h = 0;

		if (T[i].n > kc->nblocks)
			continue;
		eng_keys_from_ids(T[i].ids, T[i].n, &keys);
		if (!kv_acquire(kc, keys, T[i].n, T[i].n, idx, &h)) {
			kv_commit(kc, keys, idx, 0, T[i].n);
			kv_release(kc, idx, T[i].n);
		}
		c = (uint64_t)h * kc->block_tokens;
		if (c >= T[i].in)	/* as the engine: the last token is computed */
			c = T[i].in - 1;
		*hits += h;
		*saved += c;
		free(keys);
	}
	free(idx);
}

static void test_eq8_vs_lru_trace(void)
{
	static const uint32_t caps[] = { 1000, 2000 };

	if (!T) {
		tap_skip("trace slice selftests/data/mooncake_conversation_2000.jsonl.gz not found");
		return;
	}
	ASSERT_EQ(NT, 2000, "slice: 2000 requests");
	for (unsigned int c = 0; c < 2; c++) {
		struct kv_cache lru, eq8;
		uint64_t hl, sl, he, se, uniq = 0;

		ASSERT_OK(kv_init(&lru, caps[c], 512, 0), "lru cache");
		ASSERT_OK(kv_init(&eq8, caps[c], 512, 0), "eq8 cache");
		ASSERT_OK(kv_set_policy(&eq8, KV_POLICY_EQ8, 1.0, 17.25 * 512), "policy eq8");
		replay(&lru, &hl, &sl);
		replay(&eq8, &he, &se);
		for (uint32_t i = 0; i < NT; i++)
			uniq += T[i].n;
		printf("# %u blocks (working set > %llu blocks): LRU %llu hits, %llu tokens saved; "
		       "eq8 %llu hits, %llu tokens saved (%.3fx)\n", caps[c],
		       (unsigned long long)(uniq - 15771), (unsigned long long)hl,
		       (unsigned long long)sl, (unsigned long long)he, (unsigned long long)se,
		       (double)se / sl);
		ASSERT_TRUE(eq8.evictions > 0 && lru.evictions > 0, "capacity below the working set");
		ASSERT_TRUE(he >= hl, "eq8 hit blocks >= LRU");
		ASSERT_TRUE(se >= sl, "eq8 saved prefill tokens >= LRU");
		ASSERT_TRUE(se > sl * 105 / 100, "eq8 saves > 5% more prefill here");
		ASSERT_EQ(eq8.nfree + eq8.nlru + eq8.nused, eq8.nblocks, "eq8 block accounting");
		ASSERT_EQ(eq8.nused, 0, "nothing referenced after the replay");
		kv_free(&lru);
		kv_free(&eq8);
	}
}

static void keys_of(int64_t base, uint32_t n, uint64_t *out)
{
	int64_t ids[64];
	uint64_t *k;

	for (uint32_t i = 0; i < n; i++)
		ids[i] = base + i;
	eng_keys_from_ids(ids, n, &k);
	memcpy(out, k, sizeof(*out) * n);
	free(k);
}

static void use(struct kv_cache *kc, const struct kv_who *w, const uint64_t *keys, uint32_t n,
		uint32_t *hits)
{
	int32_t idx[64];
	uint32_t h = 0;

	if (kv_acquire_as(kc, w, keys, n, n, idx, &h) == 0) {
		kv_commit(kc, keys, idx, 0, n);
		kv_release(kc, idx, n);
	}
	if (hits)
		*hits = h;
}

/* a popular 4-block prefix, reused 6 times, then a scan of one-shot prompts */
static void test_eq8_keeps_popular(void)
{
	uint64_t pop[4], scan[8];
	uint32_t h;

	for (int pol = 0; pol < 2; pol++) {
		struct kv_cache kc;

		kv_init(&kc, 16, 16, 8);
		if (pol)
			kv_set_policy(&kc, KV_POLICY_EQ8, 1.0, 100);
		keys_of(1000, 4, pop);
		for (int i = 0; i < 6; i++)
			use(&kc, NULL, pop, 4, NULL);
		/* one-shot prompts of 4 blocks: 12 blocks fill the rest, then more */
		for (int s = 0; s < 4; s++) {
			keys_of(2000 + 100 * s, 4, scan);
			use(&kc, NULL, scan, 4, NULL);
		}
		use(&kc, NULL, pop, 4, &h);
		if (pol)
			ASSERT_EQ(h, 4, "eq8: the popular prefix survives the scan");
		else
			ASSERT_EQ(h, 0, "lru: the scan evicted the popular prefix");
		ASSERT_TRUE(kc.evictions > 0, "evictions happened");
		kv_free(&kc);
	}
}

/*
 * eq. 8's P_reuse is a probability: at most 1, even when the decayed
 * counts hold more hits than accesses in a class (16 public blocks
 * inserted, their access counts halved away by 320 accesses of a tenant
 * block, then all 16 hit: 16 hits against ~1 access). idnd refused a
 * heartbeat whose descriptors carried reuse > 1.
 */
static void test_reuse_at_most_1(void)
{
	struct kv_who ten = { .scope = KV_SCOPE_TENANT, .tenant = 9 };
	uint64_t pub[16], tk[1];
	double worst = 0;
	struct kv_cache kc;

	ASSERT_OK(kv_init(&kc, 64, 16, 8), "cache");
	kv_set_policy(&kc, KV_POLICY_EQ8, 1.0, 100);
	keys_of(5000, 16, pub);
	keys_of(9000, 1, tk);
	for (int i = 0; i < 16; i++)
		use(&kc, NULL, &pub[i], 1, NULL);
	for (int i = 0; i < 320; i++)
		use(&kc, &ten, tk, 1, NULL);
	for (int i = 0; i < 16; i++)
		use(&kc, NULL, &pub[i], 1, NULL);
	for (uint32_t i = 0; i < kc.nblocks; i++)
		if (kc.b[i].cached && kv_reuse_p(&kc, &kc.b[i]) > worst)
			worst = kv_reuse_p(&kc, &kc.b[i]);
	ASSERT_TRUE(kc.suc[0][0] > kc.acc[0][0], "the case: more hits than accesses counted");
	ASSERT_TRUE(worst > 0.5 && worst <= 1.0, "P_reuse of every block in (0.5, 1]");
	printf("# suc %.2f acc %.2f: highest P_reuse %.4f\n", kc.suc[0][0], kc.acc[0][0], worst);
	kv_free(&kc);
}

static void test_scopes(void)
{
	struct kv_who pub = { 0 }, ta = { .scope = KV_SCOPE_TENANT, .tenant = 7 },
		      ta2 = { .scope = KV_SCOPE_PUBLIC, .tenant = 7, .session = 99 },
		      tb = { .scope = KV_SCOPE_PUBLIC, .tenant = 8 },
		      sa = { .scope = KV_SCOPE_SESSION, .tenant = 7, .session = 42 },
		      sa_same = { .scope = KV_SCOPE_PUBLIC, .tenant = 7, .session = 42 },
		      sb = { .scope = KV_SCOPE_PUBLIC, .tenant = 8, .session = 42 },
		      hw = { .scope = KV_SCOPE_HW }, exp = { .leaving = 1 };
	uint64_t kt[3], ks[3], kp[3], kh[3];
	struct kv_cache kc;
	uint32_t h;

	kv_init(&kc, 64, 16, 8);
	kv_set_policy(&kc, KV_POLICY_EQ8, 1.0, 100);
	ASSERT_EQ(kv_who_check(&(struct kv_who){ .scope = KV_SCOPE_TENANT }), -EINVAL,
		  "tenant scope needs a tenant");
	ASSERT_EQ(kv_who_check(&(struct kv_who){ .scope = KV_SCOPE_SESSION, .tenant = 1 }),
		  -EINVAL, "session scope needs a session");
	keys_of(1, 3, kt);
	keys_of(100, 3, ks);
	keys_of(200, 3, kp);
	keys_of(300, 3, kh);
	use(&kc, &ta, kt, 3, NULL);		/* tenant 7's private prefix */
	use(&kc, &sa, ks, 3, NULL);		/* tenant 7, session 42 */
	use(&kc, &pub, kp, 3, NULL);		/* public */
	use(&kc, &hw, kh, 3, NULL);		/* hardware-bound */
	/* tenant scope */
	ASSERT_EQ(kv_match_as(&kc, &tb, kt, 3), 0, "other tenant: no hit on tenant state");
	ASSERT_EQ(kv_match_as(&kc, &pub, kt, 3), 0, "anonymous: no hit on tenant state");
	ASSERT_EQ(kv_match(&kc, kt, 3), 0, "kv_match is the public view");
	ASSERT_EQ(kv_match_as(&kc, &ta2, kt, 3), 3, "same tenant, any session: hits");
	/* session scope */
	ASSERT_EQ(kv_match_as(&kc, &ta2, ks, 3), 0, "same tenant, other session: no hit");
	ASSERT_EQ(kv_match_as(&kc, &sb, ks, 3), 0, "same session token, other tenant: no hit");
	ASSERT_EQ(kv_match_as(&kc, &sa_same, ks, 3), 3, "same tenant and session: hits");
	/* public and hardware-bound */
	ASSERT_EQ(kv_match_as(&kc, &tb, kp, 3), 3, "public: everyone hits");
	ASSERT_EQ(kv_match_as(&kc, &sb, kh, 3), 3, "hardware-bound: usable on the node");
	ASSERT_EQ(kv_match_as(&kc, &exp, kh, 3), 0, "hardware-bound: never exported");
	ASSERT_EQ(kv_match_as(&kc, &exp, kp, 3), 3, "public: exportable");
	ASSERT_EQ(kv_match_as(&kc, &exp, kt, 3), 0, "tenant state: not exported");
	/* the other tenant computes the same prefix: its own copy, no hit, no leak */
	use(&kc, &(struct kv_who){ .scope = KV_SCOPE_TENANT, .tenant = 8 }, kt, 3, &h);
	ASSERT_EQ(h, 0, "acquire by another tenant: a miss");
	ASSERT_EQ(kv_match_as(&kc, &tb, kt, 3), 3, "now tenant 8 has its own copy");
	ASSERT_EQ(kv_match_as(&kc, &ta2, kt, 3), 3, "and tenant 7 still its own");
	use(&kc, &tb, kt, 3, &h);
	ASSERT_EQ(h, 3, "tenant 8 hits its copy");
	{
		uint32_t copies = 0;

		for (uint32_t i = 0; i < kc.nblocks; i++)
			copies += kc.b[i].cached && kc.b[i].key == kt[0];
		ASSERT_EQ(copies, 2, "one copy per tenant of the same key");
	}
	kv_free(&kc);
}

static void test_engine_scopes(void)
{
	struct eng_params p;
	struct engine e;
	struct kv_who a = { .scope = KV_SCOPE_SESSION, .tenant = 3, .session = 77 },
		      b = { .scope = KV_SCOPE_SESSION, .tenant = 4, .session = 77 };
	uint64_t *k;
	int64_t ids[8] = { 1, 2, 3, 4, 5, 6, 7, 8 };
	struct eng_req *r;
	int err;

	eng_params_defaults(&p);
	p.block_tokens = 16;
	p.capacity_tokens = 64 * 16;
	ASSERT_EQ(p.cache_policy, KV_POLICY_EQ8, "eq8 is the default policy");
	if (!ASSERT_OK(engine_init(&e, &p), "engine"))
		return;
	for (int round = 0; round < 3; round++) {
		const struct kv_who *w = round == 1 ? &b : &a;

		eng_keys_from_ids(ids, 8, &k);
		r = engine_submit_as(&e, w, 8 * 16 + 5, 4, k, 8, &err);
		if (!ASSERT_TRUE(r, "submit"))
			break;
		while (r->state != ENG_DONE && r->state != ENG_FAILED)
			engine_step(&e);
		if (round == 0)
			ASSERT_EQ(r->cached_tokens, 0, "first: nothing cached");
		else if (round == 1)
			ASSERT_EQ(r->cached_tokens, 0, "other tenant, same session token: no hit");
		else
			ASSERT_EQ(r->cached_tokens, 8 * 16, "same session: the whole prefix");
		engine_put(&e, r);
	}
	eng_keys_from_ids(ids, 8, &k);
	ASSERT_TRUE(engine_submit_as(&e, &(struct kv_who){ .scope = KV_SCOPE_TENANT }, 200, 4,
				     k, 8, &err) == NULL && err == -EINVAL,
		    "tenant scope without a tenant: refused");
	engine_free(&e);
}

static void test_who_parse(void)
{
	struct kv_who w;
	uint64_t tok;
	char msg[128];

	ASSERT_OK(state_who_parse(NULL, NULL, NULL, NULL, &w, &tok, msg, sizeof(msg)), "none");
	ASSERT_TRUE(w.scope == KV_SCOPE_PUBLIC && !w.tenant && !tok, "none: public");
	ASSERT_OK(state_who_parse("12", NULL, NULL, "0x1d4e", &w, &tok, msg, sizeof(msg)),
		  "tenant");
	ASSERT_TRUE(w.scope == KV_SCOPE_TENANT && w.tenant == 12 && tok == 0x1d4e,
		    "tenant: tenant scope by default, token");
	ASSERT_OK(state_who_parse("12", "0xabc", NULL, NULL, &w, &tok, msg, sizeof(msg)),
		  "session");
	ASSERT_TRUE(w.scope == KV_SCOPE_SESSION && w.session == 0xabc, "session scope");
	ASSERT_OK(state_who_parse("12", "5", "public", NULL, &w, &tok, msg, sizeof(msg)),
		  "explicit public");
	ASSERT_EQ(w.scope, KV_SCOPE_PUBLIC, "explicit public");
	ASSERT_OK(state_who_parse(NULL, NULL, "hardware", NULL, &w, &tok, msg, sizeof(msg)),
		  "hardware");
	ASSERT_EQ(w.scope, KV_SCOPE_HW, "hardware-bound");
	ASSERT_EQ(state_who_parse("70000", NULL, NULL, NULL, &w, &tok, msg, sizeof(msg)),
		  -EINVAL, "tenant out of range");
	ASSERT_EQ(state_who_parse("-1", NULL, NULL, NULL, &w, &tok, msg, sizeof(msg)),
		  -EINVAL, "negative tenant");
	ASSERT_EQ(state_who_parse(NULL, NULL, "tenant", NULL, &w, &tok, msg, sizeof(msg)),
		  -EINVAL, "tenant scope without tenant");
	ASSERT_EQ(state_who_parse("1", "0", NULL, NULL, &w, &tok, msg, sizeof(msg)),
		  -EINVAL, "session 0");
	ASSERT_EQ(state_who_parse(NULL, NULL, "secret", NULL, &w, &tok, msg, sizeof(msg)),
		  -EINVAL, "unknown scope");
	ASSERT_EQ(state_who_parse(NULL, NULL, NULL, "12x", &w, &tok, msg, sizeof(msg)),
		  -EINVAL, "bad token");
}

static json_object *get(json_object *o, const char *k)
{
	json_object *v = NULL;

	json_object_object_get_ex(o, k, &v);
	return v;
}

static void test_descriptors(void)
{
	struct eng_params p;
	struct engine e;
	struct kv_who t = { .scope = KV_SCOPE_TENANT, .tenant = 5 }, hw = { .scope = KV_SCOPE_HW };
	uint64_t k[8];
	json_object *s, *d;
	uint32_t kv = 0, found_t = 0, found_hw = 0;

	eng_params_defaults(&p);
	p.block_tokens = 16;
	p.capacity_tokens = 256 * 16;
	p.kv_bytes_per_token = 4;
	engine_init(&e, &p);
	pthread_mutex_lock(&e.mu);
	for (int i = 0; i < 100; i++) {		/* 100 public prefixes of 2 blocks */
		keys_of(10000 + i * 10, 2, k);
		use(&e.kv, NULL, k, 2, NULL);
	}
	keys_of(1, 8, k);
	use(&e.kv, &t, k, 8, NULL);
	use(&e.kv, &t, k, 8, NULL);		/* hit: reuse 1 per block */
	keys_of(500, 3, k);
	use(&e.kv, &hw, k, 3, NULL);
	pthread_mutex_unlock(&e.mu);
	s = state_summary(&e, NULL, "m", 64);
	ASSERT_EQ(json_object_get_int64(get(s, "groups")), 102, "groups: one per prefix root and owner");
	ASSERT_EQ(json_object_get_int64(get(s, "kv_cached")), 200 + 8 + 3, "cached blocks");
	ASSERT_TRUE(!strcmp(json_object_get_string(get(s, "policy")), "eq8"), "policy reported");
	d = get(s, "descriptors");
	ASSERT_EQ(json_object_array_length(d), 64, "bounded to 64 descriptors");
	for (size_t i = 0; i < json_object_array_length(d); i++) {
		json_object *x = json_object_array_get_idx(d, i);

		kv += !strcmp(json_object_get_string(get(x, "type")), "kv_prefix");
		if (!strcmp(json_object_get_string(get(x, "scope")), "tenant")) {
			found_t++;
			ASSERT_EQ(json_object_get_int64(get(x, "blocks")), 8, "tenant group: 8 blocks");
			ASSERT_EQ(json_object_get_int64(get(x, "size")), 8 * 16 * 4, "size in bytes");
			ASSERT_EQ(json_object_get_int64(get(x, "hits")), 8, "observed reuse");
			ASSERT_EQ(json_object_get_int64(get(x, "tenant")), 5, "owner");
			ASSERT_TRUE(json_object_get_int64(get(x, "migration_us")) >=
				    STATE_XFER_SETUP_US, "migration cost");
			ASSERT_EQ(i, 0, "the reused prefix is the most valuable");
		}
		if (!strcmp(json_object_get_string(get(x, "scope")), "hardware")) {
			found_hw++;
			ASSERT_EQ(json_object_get_int64(get(x, "migration_us")), -1,
				  "hardware-bound: never migrated");
		}
		ASSERT_EQ(strlen(json_object_get_string(get(x, "compat"))), 16, "compat hash");
	}
	ASSERT_EQ(kv, 64, "all kv_prefix");
	ASSERT_EQ(found_t, 1, "tenant group reported");
	ASSERT_EQ(found_hw, 1, "hardware-bound group reported");
	json_object_put(s);
	engine_free(&e);
}

/*
 * Blocks are described under the affinity token of the request that wrote
 * them: two sessions whose prompts share a first block (a system prompt)
 * are two descriptors, each naming its token, not one group under one
 * arbitrary token; blocks written without a token stay grouped by root.
 * A block in use counts the chance of an access after this one (its
 * class's), not certainty; the migration cost follows --kv-link-gbps.
 */
static void test_token_groups(void)
{
	struct eng_params p;
	struct engine e;
	struct kv_who a = { .token = 0xa1 }, b = { .token = 0xb2 };
	uint64_t ka[6], kb[6], kc[3];
	int32_t idx[6];
	uint32_t h = 0, na = 0, nb = 0, nroot = 0, other = 0;
	json_object *s, *d;
	int64_t mig10 = 0, mig100 = 0;

	eng_params_defaults(&p);
	p.block_tokens = 16;
	p.capacity_tokens = 64 * 16;
	p.kv_bytes_per_token = 4096;
	engine_init(&e, &p);
	keys_of(1, 6, ka);
	{	/* the shared first block, then session b's own (chained on it) */
		int64_t ids[6] = { 1, 100, 101, 102, 103, 104 };
		uint64_t *k;

		eng_keys_from_ids(ids, 6, &k);
		memcpy(kb, k, sizeof(kb));
		free(k);
	}
	keys_of(7, 3, kc);
	pthread_mutex_lock(&e.mu);
	use(&e.kv, &a, ka, 6, NULL);
	use(&e.kv, &b, kb, 6, &h);
	ASSERT_EQ(h, 1, "b hits the shared first block");
	use(&e.kv, NULL, kc, 3, NULL);	/* no token */
	/* session a's prefix in use now (a running request) */
	ASSERT_EQ(kv_acquire_as(&e.kv, &a, ka, 6, 6, idx, &h), 0, "a again");
	pthread_mutex_unlock(&e.mu);
	s = state_summary(&e, NULL, "m", 64);
	ASSERT_EQ(json_object_get_int64(get(s, "groups")), 3, "groups: a's, b's, the untokened root");
	d = get(s, "descriptors");
	for (size_t i = 0; i < json_object_array_length(d); i++) {
		json_object *x = json_object_array_get_idx(d, i), *t = get(x, "token");
		uint64_t tok = t ? strtoull(json_object_get_string(t), NULL, 16) : 0;
		int64_t blocks = json_object_get_int64(get(x, "blocks"));

		if (tok == 0xa1) {
			na++;
			ASSERT_EQ(blocks, 6, "a wrote 6 blocks (the shared one first)");
			ASSERT_TRUE(json_object_get_double(get(x, "reuse")) < 1.0,
				    "in use: the next access's chance, not certainty");
			ASSERT_TRUE(json_object_get_double(get(x, "reuse")) > 0,
				    "in use: a positive chance");
			mig10 = json_object_get_int64(get(x, "migration_us"));
		} else if (tok == 0xb2) {
			nb++;
			ASSERT_EQ(blocks, 5, "b wrote its own 5 blocks");
		} else if (!t) {
			nroot++;
			ASSERT_EQ(blocks, 3, "untokened blocks grouped by root");
		} else {
			other++;
		}
	}
	ASSERT_TRUE(na == 1 && nb == 1 && nroot == 1 && !other, "one descriptor per writer");
	json_object_put(s);
	/* the link: 6 blocks x 16 tokens x 4096 bytes over 10 and 100 Gbit/s */
	e.p.kv_link_gbps = 100;
	s = state_summary(&e, NULL, "m", 64);
	d = get(s, "descriptors");
	for (size_t i = 0; i < json_object_array_length(d); i++) {
		json_object *x = json_object_array_get_idx(d, i), *t = get(x, "token");

		if (t && strtoull(json_object_get_string(t), NULL, 16) == 0xa1)
			mig100 = json_object_get_int64(get(x, "migration_us"));
	}
	ASSERT_EQ(mig10, STATE_XFER_SETUP_US + 6 * 16 * 4096 * 8 / 10000, "10 Gbit/s (default)");
	ASSERT_EQ(mig100, STATE_XFER_SETUP_US + 6 * 16 * 4096 * 8 / 100000, "--kv-link-gbps 100");
	json_object_put(s);
	pthread_mutex_lock(&e.mu);
	kv_release(&e.kv, idx, 6);
	pthread_mutex_unlock(&e.mu);
	engine_free(&e);
}

/* the descriptor of prefix root @root with this scope, or NULL */
static json_object *desc_of(json_object *s, uint64_t root, const char *scope)
{
	json_object *d = get(s, "descriptors");
	char hx[17];

	snprintf(hx, sizeof(hx), "%016llx", (unsigned long long)root);
	for (size_t i = 0; i < json_object_array_length(d); i++) {
		json_object *x = json_object_array_get_idx(d, i);

		if (!strcmp(json_object_get_string(get(x, "root")), hx) &&
		    !strcmp(json_object_get_string(get(x, "scope")), scope))
			return x;
	}
	return NULL;
}

/*
 * state_tokens(): each prefix descriptor names the token of the last
 * request that brought its root with that owner; no token, no field; a
 * token noted for another owner of the same root is not taken.
 */
static void test_tokens(void)
{
	struct eng_params p;
	struct engine e;
	struct agent_state st;
	struct kv_who t = { .scope = KV_SCOPE_TENANT, .tenant = 9 };
	struct kv_who t2 = { .scope = KV_SCOPE_TENANT, .tenant = 7 };
	uint64_t ka[4], kb[4], kc[2];
	json_object *s, *x, *v;

	eng_params_defaults(&p);
	p.block_tokens = 16;
	p.capacity_tokens = 64 * 16;
	engine_init(&e, &p);
	ASSERT_OK(state_init(&st), "state");
	keys_of(1, 4, ka);
	keys_of(50, 4, kb);
	keys_of(90, 2, kc);
	state_note_token(&st, 0xa1, NULL, ka, 4);	/* public prefix a */
	state_note_token(&st, 0xb9, &t, kb, 4);	/* b under tenant 9 */
	pthread_mutex_lock(&e.mu);
	use(&e.kv, NULL, ka, 4, NULL);
	use(&e.kv, &t, kb, 4, NULL);
	use(&e.kv, &t2, kb, 4, NULL);		/* b again, tenant 7: no token seen */
	use(&e.kv, NULL, kc, 2, NULL);		/* c: no request with a token */
	pthread_mutex_unlock(&e.mu);
	s = state_summary(&e, NULL, "m", 64);
	state_tokens(&st, s);
	x = desc_of(s, ka[0], "public");
	ASSERT_TRUE(x && json_object_object_get_ex(x, "token", &v) &&
		    !strcmp(json_object_get_string(v), "00000000000000a1"), "a: its token");
	x = desc_of(s, kb[0], "tenant");
	ASSERT_TRUE(x != NULL, "b reported");
	{	/* both tenant groups of b: only tenant 9's carries 0xb9 */
		json_object *d = get(s, "descriptors");
		int with = 0, without = 0;

		for (size_t i = 0; i < json_object_array_length(d); i++) {
			json_object *y = json_object_array_get_idx(d, i);
			char hx[17];

			snprintf(hx, sizeof(hx), "%016llx", (unsigned long long)kb[0]);
			if (strcmp(json_object_get_string(get(y, "root")), hx))
				continue;
			if (json_object_object_get_ex(y, "token", &v)) {
				with++;
				ASSERT_EQ(json_object_get_int(get(y, "tenant")), 9, "token on tenant 9's");
				ASSERT_TRUE(!strcmp(json_object_get_string(v), "00000000000000b9"),
					    "b: its token");
			} else {
				without++;
				ASSERT_EQ(json_object_get_int(get(y, "tenant")), 7, "tenant 7: none");
			}
		}
		ASSERT_TRUE(with == 1 && without == 1, "one group with, one without");
	}
	x = desc_of(s, kc[0], "public");
	ASSERT_TRUE(x && !json_object_object_get_ex(x, "token", &v), "c: no token, no field");
	json_object_put(s);
	state_fini(&st);
	engine_free(&e);
}

static uint64_t hexv(json_object *o, const char *k)
{
	json_object *v = get(o, k);

	return v ? strtoull(json_object_get_string(v), NULL, 16) : 0;
}

/*
 * state_descs() + state_desc_tokens() (make eval's heartbeat, no JSON)
 * carry the values of state_summary() + state_tokens(), descriptor by
 * descriptor in the same order, also when @max cuts the list short.
 */
static void test_descs_as_json(void)
{
	struct eng_params p;
	struct engine e;
	struct agent_state st;
	struct kv_who t = { .scope = KV_SCOPE_TENANT, .tenant = 9 };
	struct kv_who ss = { .scope = KV_SCOPE_SESSION, .session = 0x5e55 };
	struct kv_who w = { .token = 0x77 };	/* a writer token */
	struct kv_who hw = { .scope = KV_SCOPE_HW };
	uint64_t ka[4], kb[4], kc[2], kd[3], ke[2];
	struct state_desc d[64];

	eng_params_defaults(&p);
	p.block_tokens = 16;
	p.capacity_tokens = 64 * 16;
	engine_init(&e, &p);
	ASSERT_OK(state_init(&st), "state");
	keys_of(1, 4, ka);
	keys_of(50, 4, kb);
	keys_of(90, 2, kc);
	keys_of(120, 3, kd);
	keys_of(150, 2, ke);
	state_note_token(&st, 0xa1, NULL, ka, 4);
	state_note_token(&st, 0xb9, &t, kb, 4);
	state_note_token(&st, 0x5e, &ss, kc, 2);
	pthread_mutex_lock(&e.mu);
	for (int i = 0; i < 3; i++)
		use(&e.kv, NULL, ka, 4, NULL);	/* hits: reuse and value */
	use(&e.kv, &t, kb, 4, NULL);
	use(&e.kv, &ss, kc, 2, NULL);
	use(&e.kv, &w, kd, 3, NULL);
	use(&e.kv, &w, kd, 3, NULL);
	use(&e.kv, &hw, ke, 2, NULL);
	pthread_mutex_unlock(&e.mu);
	for (int m = 0; m < 2; m++) {
		uint32_t max = m ? 2 : 64;
		json_object *s = state_summary(&e, NULL, "m", max), *a;
		uint32_t n, groups = 0, with = 0;
		uint64_t cached = 0;

		state_tokens(&st, s);
		n = state_descs(&e, "m", max, d, &groups, &cached);
		state_desc_tokens(&st, d, n);
		a = get(s, "descriptors");
		ASSERT_EQ(n, json_object_array_length(a), "as many descriptors");
		ASSERT_EQ(groups, json_object_get_int(get(s, "groups")), "groups");
		ASSERT_EQ(cached, json_object_get_int(get(s, "kv_cached")), "cached blocks");
		ASSERT_TRUE(max == 64 ? n == 5 : n == 2, "5 groups, 2 with max 2");
		for (uint32_t i = 0; i < n; i++) {
			json_object *x = json_object_array_get_idx(a, i);

			ASSERT_EQ(d[i].compat, hexv(x, "compat"), "compat");
			ASSERT_TRUE(!strcmp(kv_scope_name(d[i].scope),
					    json_object_get_string(get(x, "scope"))), "scope");
			ASSERT_EQ(d[i].tenant, json_object_get_int(get(x, "tenant")), "tenant");
			ASSERT_EQ(d[i].session, hexv(x, "session"), "session");
			ASSERT_EQ(d[i].root, hexv(x, "root"), "root");
			ASSERT_EQ(d[i].token, hexv(x, "token"), "token");
			ASSERT_EQ(d[i].blocks, json_object_get_int64(get(x, "blocks")), "blocks");
			ASSERT_EQ(d[i].tokens, json_object_get_int64(get(x, "tokens")), "tokens");
			ASSERT_EQ(d[i].size, json_object_get_int64(get(x, "size")), "size");
			ASSERT_TRUE(d[i].reuse == json_object_get_double(get(x, "reuse")), "reuse");
			ASSERT_EQ(d[i].hits, json_object_get_int64(get(x, "hits")), "hits");
			ASSERT_EQ(d[i].value_us, json_object_get_int64(get(x, "value_us")), "value");
			ASSERT_EQ(d[i].migration_us, json_object_get_int64(get(x, "migration_us")),
				  "migration_us");
			with += d[i].token != 0;
		}
		/* a1, b9, 5e noted; 77 written; the hardware group none */
		if (max == 64)
			ASSERT_EQ(with, 4, "four descriptors name a token");
		json_object_put(s);
	}
	state_fini(&st);
	engine_free(&e);
}

static void test_affinity(void)
{
	struct eng_params p;
	struct engine e;
	struct agent_state st;
	struct kv_who t = { .scope = KV_SCOPE_TENANT, .tenant = 9 };
	uint64_t ka[4], kb[4], toks[3] = { 0xa, 0xb, 0xc };

	eng_params_defaults(&p);
	p.block_tokens = 16;
	p.capacity_tokens = 64 * 16;
	engine_init(&e, &p);
	ASSERT_OK(state_init(&st), "state");
	keys_of(1, 4, ka);
	keys_of(50, 4, kb);
	/* requests with tokens a (public) and b (tenant 9) were served here */
	state_note_token(&st, 0xa, NULL, ka, 4);
	state_note_token(&st, 0xb, &t, kb, 4);
	pthread_mutex_lock(&e.mu);
	use(&e.kv, NULL, ka, 4, NULL);
	use(&e.kv, &t, kb, 4, NULL);
	pthread_mutex_unlock(&e.mu);
	state_affinity_check(&st, &e, toks, 3);
	ASSERT_EQ(st.agree, 2, "both prefixes held: agree");
	ASSERT_EQ(st.mismatch, 0, "no mismatch");
	ASSERT_EQ(st.unknown, 1, "token c never served here: unknown");
	ASSERT_TRUE(st.last_ratio == 1.0, "ratio 1");
	/* deliberately evict token b's prefix: the router still sends b here */
	pthread_mutex_lock(&e.mu);
	ASSERT_EQ(kv_drop(&e.kv, &t, kb + 2, 2), 2, "evicted the last two blocks of b");
	pthread_mutex_unlock(&e.mu);
	state_affinity_check(&st, &e, toks, 2);
	ASSERT_EQ(st.agree, 3, "a still agrees");
	ASSERT_EQ(st.mismatch, 1, "b: mismatch counted");
	ASSERT_TRUE(st.last_ratio == 0.5, "ratio 0.5 in the last round");
	{
		char *out = NULL;
		size_t len = 0;
		FILE *f = open_memstream(&out, &len);
		struct idn_prom p;

		idn_prom_init(&p, f);
		state_metrics(&st, &p, "m");
		ASSERT_OK(idn_prom_end(&p), p.why);
		fclose(f);
		ASSERT_TRUE(strstr(out, "idn_affinity_mismatch_total{model_name=\"m\"} 1\n") != NULL,
			    "metric idn_affinity_mismatch_total");
		ASSERT_TRUE(strstr(out, "idn_affinity_agree_total{model_name=\"m\"} 3\n") != NULL,
			    "metric idn_affinity_agree_total");
		ASSERT_TRUE(strstr(out, "idn_affinity_agree_ratio{model_name=\"m\"} 0.5") != NULL,
			    "metric idn_affinity_agree_ratio");
		free(out);
	}
	ASSERT_EQ(state_affinity_open(&st, "/nonexistent-idn-pin"), -ENOENT, "no pinned map");
	state_fini(&st);
	engine_free(&e);
}

int main(int argc, char **argv)
{
	if (load_slice(argv[0]))
		T = NULL;
	tap_plan(0);
	TAP_RUN(test_eq8_vs_lru_trace);
	TAP_RUN(test_eq8_keeps_popular);
	TAP_RUN(test_reuse_at_most_1);
	TAP_RUN(test_scopes);
	TAP_RUN(test_engine_scopes);
	TAP_RUN(test_who_parse);
	TAP_RUN(test_descriptors);
	TAP_RUN(test_token_groups);
	TAP_RUN(test_tokens);
	TAP_RUN(test_descs_as_json);
	TAP_RUN(test_affinity);
	for (uint32_t i = 0; i < NT; i++)
		free(T[i].ids);
	free(T);
	return tap_done();
}
