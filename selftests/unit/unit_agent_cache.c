// SPDX-License-Identifier: GPL-2.0
/*
 * unit_agent_cache.c - the engine emulator's prefix/KV cache against the
 * Mooncake FAST'25 conversation trace (../shared/traces; without it, the
 * first 2,000 requests committed in selftests/data): with room for
 * everything the block hit rate is exactly the trace's reuse (36.64% over
 * the whole trace, as SOURCES.md and Dynamo's page say; recomputed here
 * for a slice by an independent prefix set); with a small capacity there
 * are evictions, fewer hits, never more blocks than the capacity, and
 * every cached block still holds its own KV bytes; LRU order; and the
 * engine serves a trace slice in emulated time with the hits it predicts.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <json-c/json.h>

#include "agent.h"
#include "trace.h"
#include "tap.h"

static struct treq *T;
static uint32_t NT;

static const char *trace_path(void)
{
	static char p[512];
	const char *dirs[] = { getenv("IDN_TRACE_DIR"), "../shared/traces", "/work/shared/traces" };

	for (unsigned i = 0; i < 3; i++) {
		FILE *f;

		if (!dirs[i])
			continue;
		snprintf(p, sizeof(p), "%s/mooncake_fast25_conversation_trace.jsonl", dirs[i]);
		f = fopen(p, "r");
		if (f) {
			fclose(f);
			return p;
		}
	}
	return NULL;
}

/* the whole trace from ../shared, else the 2,000-request slice committed in selftests/data */
static int load_trace(const char *argv0)
{
	const char *p = trace_path();
	char cmd[700];
	size_t alloc = 0;
	bool piped = false;
	FILE *f;
	int err;

	if (!p) {
		const char *s = strrchr(argv0, '/');
		static char gz[600];

		snprintf(gz, sizeof(gz), "%.*s/../../selftests/data/mooncake_conversation_2000.jsonl.gz",
			 s ? (int)(s - argv0) : 1, s ? argv0 : ".");
		if (access(gz, R_OK))
			snprintf(gz, sizeof(gz), "selftests/data/mooncake_conversation_2000.jsonl.gz");
		if (access(gz, R_OK))
			return -ENOENT;
		snprintf(cmd, sizeof(cmd), "gzip -dc '%s'", gz);
		piped = true;
	}
	f = piped ? popen(cmd, "r") : fopen(p, "r");
	if (!f)
		return -errno;
	err = trace_read(f, &T, &NT, &alloc);
	if (piped)
		pclose(f);
	else
		fclose(f);
	return err ? err : NT ? 0 : -EIO;
}

/* replay requests [0, n) through the cache alone: acquire, compute, release */
static void replay(struct kv_cache *kc, uint32_t n, uint64_t *hits, uint64_t *blocks)
{
	int32_t idx[512];

	*hits = *blocks = 0;
	for (uint32_t i = 0; i < n; i++) {
		uint64_t *keys;
		uint32_t h = 0;

		eng_keys_from_ids(T[i].ids, T[i].n, &keys);
		if (!kv_acquire(kc, keys, T[i].n, T[i].n, idx, &h)) {
			kv_commit(kc, keys, idx, 0, T[i].n);
			kv_release(kc, idx, T[i].n);
		}
		*hits += h;
		*blocks += T[i].n;
		free(keys);
	}
}

/* independent reference: an open-addressing set of prefixes (hash chains) */
static uint64_t reference_hits(uint32_t n)
{
	uint64_t hits = 0, mask = (1ULL << 18) - 1, *set = calloc(mask + 1, sizeof(*set));

	for (uint32_t i = 0; i < n; i++) {
		uint64_t prev = 0;
		int miss = 0;

		for (uint32_t j = 0; j < T[i].n; j++) {
			uint64_t k = prev = kv_chain(prev, T[i].ids[j]), s = k & mask;

			while (set[s] && set[s] != k)
				s = (s + 1) & mask;
			if (set[s] && !miss)
				hits++;
			else
				miss = 1;
			set[s] = k;
		}
	}
	free(set);
	return hits;
}

static void test_trace_infinite_full(void)
{
	struct kv_cache kc;
	uint64_t h, b;

	if (!T || NT < 12031) {
		tap_skip("the whole trace (../shared/traces) not found: the slice has 2000 requests");
		return;
	}
	if (!ASSERT_OK(kv_init(&kc, 300000, 512, 0), "init"))
		return;
	replay(&kc, NT, &h, &b);
	printf("# whole trace, infinite cache: %llu of %llu blocks hit (%.4f)\n",
	       (unsigned long long)h, (unsigned long long)b, (double)h / b);
	ASSERT_EQ(NT, 12031, "requests");
	ASSERT_EQ(b, 288500, "blocks");
	ASSERT_EQ(h, 105710, "hits: 36.64% as SOURCES.md");
	ASSERT_EQ(kc.evictions, 0, "no eviction");
	kv_free(&kc);
}

static void test_trace_slice_reference(void)
{
	struct kv_cache kc;
	uint64_t h, b, ref;

	if (!T) {
		tap_skip("trace not found");
		return;
	}
	kv_init(&kc, 60000, 512, 0);
	replay(&kc, 2000, &h, &b);
	ref = reference_hits(2000);
	printf("# 2000 requests: %llu of %llu blocks hit, reference %llu\n",
	       (unsigned long long)h, (unsigned long long)b, (unsigned long long)ref);
	ASSERT_EQ(h, ref, "hits equal the reference");
	ASSERT_EQ(h, 15771, "hits of the slice");
	kv_free(&kc);
}

static void test_trace_capacity(void)
{
	struct kv_cache kc;
	uint64_t h_inf, h, h5, b;
	uint32_t cached = 0, bad = 0;

	if (!T) {
		tap_skip("trace not found");
		return;
	}
	kv_init(&kc, 60000, 512, 0);
	replay(&kc, 2000, &h_inf, &b);
	kv_free(&kc);
	kv_init(&kc, 10000, 512, 0);
	replay(&kc, 2000, &h5, &b);
	kv_free(&kc);
	/* 1000 blocks (512k tokens) of 16 bytes per token: real buffers */
	kv_init(&kc, 1000, 512, 16);
	replay(&kc, 2000, &h, &b);
	printf("# 2000 requests (%llu blocks): hits with 1000 blocks %llu, 10000 blocks %llu, "
	       "infinite %llu; %llu evictions with 1000\n", (unsigned long long)b,
	       (unsigned long long)h, (unsigned long long)h5, (unsigned long long)h_inf,
	       (unsigned long long)kc.evictions);
	ASSERT_TRUE(h < h5 && h5 < h_inf, "hits grow with capacity");
	ASSERT_TRUE(kc.evictions > 0, "evictions happened");
	ASSERT_EQ(kc.nfree + kc.nlru + kc.nused, kc.nblocks, "block accounting");
	ASSERT_EQ(kc.nused, 0, "nothing referenced after the replay");
	for (uint32_t i = 0; i < kc.nblocks; i++) {
		if (!kc.b[i].cached)
			continue;
		cached++;
		bad += kv_check(&kc, i) != 0;
	}
	ASSERT_TRUE(cached <= 1000 && cached > 900, "cache full, never over");
	ASSERT_EQ(bad, 0, "every cached block holds its KV bytes");
	kv_free(&kc);
}

static void test_lru_order(void)
{
	struct kv_cache kc;
	uint64_t ka[2], kb[2], kcn[2], *k;
	int64_t a[2] = { 1, 2 }, b[2] = { 3, 4 }, c[2] = { 5, 6 };
	int32_t idx[4];
	uint32_t h;

	kv_init(&kc, 4, 16, 8);
	eng_keys_from_ids(a, 2, &k); memcpy(ka, k, sizeof(ka)); free(k);
	eng_keys_from_ids(b, 2, &k); memcpy(kb, k, sizeof(kb)); free(k);
	eng_keys_from_ids(c, 2, &k); memcpy(kcn, k, sizeof(kcn)); free(k);
	ASSERT_OK(kv_acquire(&kc, ka, 2, 2, idx, &h), "a");
	kv_commit(&kc, ka, idx, 0, 2);
	kv_release(&kc, idx, 2);
	ASSERT_OK(kv_acquire(&kc, kb, 2, 2, idx, &h), "b");
	kv_commit(&kc, kb, idx, 0, 2);
	kv_release(&kc, idx, 2);
	/* touch a: b becomes least recently used */
	ASSERT_OK(kv_acquire(&kc, ka, 2, 2, idx, &h), "a again");
	ASSERT_EQ(h, 2, "a hits");
	kv_release(&kc, idx, 2);
	ASSERT_OK(kv_acquire(&kc, kcn, 2, 2, idx, &h), "c evicts");
	kv_commit(&kc, kcn, idx, 0, 2);
	kv_release(&kc, idx, 2);
	ASSERT_EQ(kv_match(&kc, ka, 2), 2, "a kept");
	ASSERT_EQ(kv_match(&kc, kb, 2), 0, "b evicted");
	ASSERT_EQ(kc.evictions, 2, "two blocks evicted");
	/* all referenced: a sequence that needs more is refused, nothing changes */
	ASSERT_OK(kv_acquire(&kc, ka, 2, 2, idx, &h), "pin a");
	ASSERT_OK(kv_acquire(&kc, kcn, 2, 2, idx + 2, &h), "pin c");
	ASSERT_EQ(kv_acquire(&kc, kb, 2, 2, idx, &h), -ENOSPC, "no room while pinned");
	ASSERT_EQ(kv_acquire(&kc, kb, 2, 5, idx, &h), -E2BIG, "larger than the cache");
	kv_release(&kc, idx, 4);
	ASSERT_EQ(kc.nused, 0, "released");
	kv_free(&kc);
}

static void test_engine_trace_slice(void)
{
	struct eng_params p;
	struct engine e;
	struct eng_req *r[300];
	uint64_t want_hit = 0, steps = 0;
	uint32_t n = 300, done = 0;
	int err;

	if (!T) {
		tap_skip("trace not found");
		return;
	}
	eng_params_defaults(&p);
	p.capacity_tokens = 2000 * 512;
	p.kv_bytes_per_token = 4;
	if (!ASSERT_OK(engine_init(&e, &p), "engine"))
		return;
	/* one at a time, so each sees all earlier prefixes: hits as the cache predicts */
	for (uint32_t i = 0; i < n; i++) {
		uint64_t *keys;

		eng_keys_from_ids(T[i].ids, T[i].n, &keys);
		want_hit += (uint64_t)kv_match(&e.kv, keys, T[i].n);
		r[i] = engine_submit(&e, T[i].in, T[i].out > 64 ? 64 : T[i].out, keys, T[i].n, &err);
		if (!ASSERT_TRUE(r[i], "submit"))
			break;
		while (r[i]->state != ENG_DONE && steps < 10000000) {
			engine_step(&e);
			steps++;
		}
		done += r[i]->state == ENG_DONE;
		engine_put(&e, r[i]);
	}
	ASSERT_EQ(done, n, "all served");
	ASSERT_EQ(e.kv.hit_blocks, want_hit, "engine hits = cache prediction");
	ASSERT_TRUE(e.st.prefix_hit_tokens > 0, "prefix hits counted in tokens");
	printf("# engine, 300 requests: %llu of %llu prompt tokens from cache, %.1f s emulated\n",
	       (unsigned long long)e.st.prefix_hit_tokens,
	       (unsigned long long)e.st.prefix_query_tokens, e.now_us / 1e6);
	engine_free(&e);
}

int main(int argc, char **argv)
{
	if (load_trace(argv[0]))
		T = NULL;
	tap_plan(0);
	TAP_RUN(test_lru_order);
	TAP_RUN(test_trace_infinite_full);
	TAP_RUN(test_trace_slice_reference);
	TAP_RUN(test_trace_capacity);
	TAP_RUN(test_engine_trace_slice);
	for (uint32_t i = 0; i < NT; i++)
		free(T[i].ids);
	free(T);
	return tap_done();
}
