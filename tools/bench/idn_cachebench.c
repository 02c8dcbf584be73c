// SPDX-License-Identifier: GPL-2.0
/*
 * idn_cachebench.c - eq. 8 cache admission/eviction against LRU in the
 * engine emulator's real prefix cache (agent/kvcache.c), on the Mooncake
 * conversation trace: every request's blocks are acquired, computed and
 * released in trace order, once per policy, at the same capacity (default:
 * the emulator's, 467k tokens = 934 blocks of 512, below the trace's
 * working set). Prints (make bench, tools/bench/run.sh agent):
 *
 *   cache_eq8_vs_lru_saved_prefill RATIO x   prompt tokens served from cache,
 *                                            eq8 / LRU (same run)
 *
 * and, as comments on stderr, hits and saved tokens per policy and a
 * capacity sweep.
 * Trace: -t FILE, else $IDN_TRACE_DIR, ../shared/traces or
 * /work/shared/traces (the whole trace), else the 2,000-request slice in
 * selftests/data (gzip). Usage: idn_cachebench [-t FILE] [-b BLOCKS]
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <json-c/json.h>

#include "agent.h"
#include "lib/trace.h"

static struct treq *T;
static uint32_t NT;

static FILE *open_trace(const char *arg, char *name, size_t len, bool *piped)
{
	const char *dirs[] = { getenv("IDN_TRACE_DIR"), "../shared/traces", "/work/shared/traces" };
	const char *f = "mooncake_fast25_conversation_trace.jsonl";

	*piped = false;
	if (arg) {
		snprintf(name, len, "%s", arg);
		return fopen(arg, "r");
	}
	for (unsigned int i = 0; i < 3; i++) {
		if (!dirs[i])
			continue;
		snprintf(name, len, "%s/%s", dirs[i], f);
		if (!access(name, R_OK))
			return fopen(name, "r");
	}
	snprintf(name, len, "selftests/data/mooncake_conversation_2000.jsonl.gz");
	if (access(name, R_OK))
		return NULL;
	*piped = true;
	return popen("gzip -dc selftests/data/mooncake_conversation_2000.jsonl.gz", "r");
}

static int load(const char *arg, char *name, size_t len)
{
	size_t alloc = 0;
	bool piped;
	FILE *f = open_trace(arg, name, len, &piped);
	int err;

	if (!f)
		return -ENOENT;
	err = trace_read(f, &T, &NT, &alloc);
	if (piped)
		pclose(f);
	else
		fclose(f);
	return err ? err : NT ? 0 : -EIO;
}

/* one replay: saved = prompt tokens from cache (the last token always computed) */
static int replay(uint32_t blocks, unsigned int policy, uint64_t *hits, uint64_t *saved)
{
	struct eng_params p;
	struct kv_cache kc;
	int32_t *idx;
	int err;

	eng_params_defaults(&p);
	err = kv_init(&kc, blocks, p.block_tokens, 0);
	if (err)
		return err;
	err = kv_set_policy(&kc, policy, p.cache_half_life, p.prefill_tok_us * p.block_tokens);
	idx = malloc(sizeof(*idx) * blocks);
	if (err || !idx) {
		free(idx);
		kv_free(&kc);
		return err ? err : -ENOMEM;
	}
	*hits = *saved = 0;
	for (uint32_t i = 0; i < NT; i++) {
		uint64_t *keys, c;
		uint32_t h = 0;

		if (T[i].n > blocks || !T[i].in)
			continue;
		if (eng_keys_from_ids(T[i].ids, T[i].n, &keys))
			break;
		if (!kv_acquire(&kc, keys, T[i].n, T[i].n, idx, &h)) {
			kv_commit(&kc, keys, idx, 0, T[i].n);
			kv_release(&kc, idx, T[i].n);
		}
		c = (uint64_t)h * p.block_tokens;
		if (c >= T[i].in)
			c = T[i].in - 1;
		*hits += h;
		*saved += c;
		free(keys);
	}
	free(idx);
	kv_free(&kc);
	return 0;
}

int main(int argc, char **argv)
{
	static const uint32_t sweep[] = { 500, 1000, 2000, 5000, 10000, 20000, 40000 };
	struct eng_params p;
	const char *trace = NULL;
	uint64_t hl, sl, he, se, blocks_total = 0;
	uint32_t blocks;
	char name[512];
	int opt, err;

	eng_params_defaults(&p);
	blocks = p.capacity_tokens / p.block_tokens;
	while ((opt = getopt(argc, argv, "t:b:h")) != -1) {
		switch (opt) {
		case 't': trace = optarg; break;
		case 'b': blocks = strtoul(optarg, NULL, 0); break;
		default:
			fprintf(stderr, "usage: idn_cachebench [-t TRACE.jsonl] [-b BLOCKS]\n");
			return 2;
		}
	}
	err = load(trace, name, sizeof(name));
	if (err) {
		fprintf(stderr, "idn_cachebench: trace %s: %s\n", name, strerror(-err));
		return 1;
	}
	for (uint32_t i = 0; i < NT; i++)
		blocks_total += T[i].n;
	if (!blocks || replay(blocks, KV_POLICY_LRU, &hl, &sl) ||
	    replay(blocks, KV_POLICY_EQ8, &he, &se) || !sl) {
		fprintf(stderr, "idn_cachebench: replay failed\n");
		return 1;
	}
	fprintf(stderr, "# cache: %s, %u requests, %llu blocks of %u tokens; capacity %u blocks\n", name, NT,
	       (unsigned long long)blocks_total, p.block_tokens, blocks);
	fprintf(stderr, "# cache lru: %llu hit blocks, %llu prompt tokens from cache\n",
	       (unsigned long long)hl, (unsigned long long)sl);
	fprintf(stderr, "# cache eq8: %llu hit blocks, %llu prompt tokens from cache (half-life %.2f)\n",
	       (unsigned long long)he, (unsigned long long)se, p.cache_half_life);
	for (unsigned int i = 0; i < sizeof(sweep) / sizeof(sweep[0]); i++) {
		uint64_t a, b, c, d;

		if (replay(sweep[i], KV_POLICY_LRU, &a, &b) || replay(sweep[i], KV_POLICY_EQ8, &c, &d))
			return 1;
		fprintf(stderr, "# cache sweep %u blocks: lru %llu eq8 %llu tokens saved (%.3f x)\n", sweep[i],
		       (unsigned long long)b, (unsigned long long)d, b ? (double)d / b : 0);
	}
	printf("cache_eq8_vs_lru_saved_prefill %.3f x\n", (double)se / sl);
	for (uint32_t i = 0; i < NT; i++)
		free(T[i].ids);
	free(T);
	return 0;
}
