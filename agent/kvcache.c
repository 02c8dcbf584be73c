// SPDX-License-Identifier: GPL-2.0
/*
 * kvcache.c - the engine emulator's prefix/KV cache: fixed number of
 * blocks, each a real byte buffer of block_tokens * kv_bytes_per_token in
 * one arena (registered once for KV transfer). Blocks are keyed by a
 * chained hash of the prompt's block ids, so a key names a whole prefix.
 *
 * A block is free (free list), in use (ref > 0, maybe published), or
 * cached and unreferenced (LRU list, evictable). Eviction takes the least
 * recently released block. Nothing here locks: the engine does.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "agent.h"

static inline uint64_t mix64(uint64_t x)
{
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ULL;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebULL;
	x ^= x >> 31;
	return x;
}

uint64_t kv_chain(uint64_t prev, uint64_t id)
{
	uint64_t k = mix64(prev * 0x9e3779b97f4a7c15ULL + id + 1);

	return k ? k : 1;
}

static void list_unlink(struct kv_cache *kc, int32_t i, int32_t *head, int32_t *tail)
{
	struct kv_block *b = &kc->b[i];

	if (b->prev >= 0)
		kc->b[b->prev].next = b->next;
	else
		*head = b->next;
	if (b->next >= 0)
		kc->b[b->next].prev = b->prev;
	else if (tail)
		*tail = b->prev;
	b->prev = b->next = -1;
}

static void list_push(struct kv_cache *kc, int32_t i, int32_t *head, int32_t *tail)
{
	struct kv_block *b = &kc->b[i];

	b->prev = -1;
	b->next = *head;
	if (*head >= 0)
		kc->b[*head].prev = i;
	else if (tail)
		*tail = i;
	*head = i;
}

int kv_init(struct kv_cache *kc, uint32_t nblocks, uint32_t block_tokens,
	    uint32_t bytes_per_token)
{
	uint32_t hs = 1;

	memset(kc, 0, sizeof(*kc));
	if (!nblocks || !block_tokens || nblocks > (1U << 30))
		return -EINVAL;
	kc->nblocks = nblocks;
	kc->block_tokens = block_tokens;
	kc->block_bytes = (size_t)block_tokens * bytes_per_token;
	while (hs < nblocks * 2)
		hs <<= 1;
	kc->hmask = hs - 1;
	kc->b = calloc(nblocks, sizeof(*kc->b));
	kc->htab = malloc(sizeof(*kc->htab) * hs);
	if (kc->block_bytes) {
		kc->arena = mmap(NULL, kc->block_bytes * nblocks, PROT_READ | PROT_WRITE,
				 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
		if (kc->arena == MAP_FAILED)
			kc->arena = NULL;
	}
	if (!kc->b || !kc->htab || (kc->block_bytes && !kc->arena)) {
		kv_free(kc);
		return -ENOMEM;
	}
	memset(kc->htab, 0xff, sizeof(*kc->htab) * hs);
	kc->lru_head = kc->lru_tail = kc->free_head = -1;
	for (int32_t i = nblocks - 1; i >= 0; i--) {
		kc->b[i].hnext = -1;
		list_push(kc, i, &kc->free_head, NULL);
	}
	kc->nfree = nblocks;
	return 0;
}

void kv_free(struct kv_cache *kc)
{
	if (kc->arena)
		munmap(kc->arena, kc->block_bytes * kc->nblocks);
	free(kc->b);
	free(kc->htab);
	memset(kc, 0, sizeof(*kc));
}

static int32_t h_find(const struct kv_cache *kc, uint64_t key)
{
	for (int32_t i = kc->htab[mix64(key) & kc->hmask]; i >= 0; i = kc->b[i].hnext)
		if (kc->b[i].key == key)
			return i;
	return -1;
}

static void h_del(struct kv_cache *kc, int32_t i)
{
	int32_t *pp = &kc->htab[mix64(kc->b[i].key) & kc->hmask];

	while (*pp >= 0 && *pp != i)
		pp = &kc->b[*pp].hnext;
	if (*pp == i)
		*pp = kc->b[i].hnext;
	kc->b[i].hnext = -1;
	kc->b[i].cached = 0;
}

uint32_t kv_match(const struct kv_cache *kc, const uint64_t *keys, uint32_t nkeys)
{
	uint32_t n = 0;

	while (n < nkeys && h_find(kc, keys[n]) >= 0)
		n++;
	return n;
}

/* a free block: the free list first, else evict the LRU tail */
static int32_t take_block(struct kv_cache *kc)
{
	int32_t i = kc->free_head;

	if (i >= 0) {
		list_unlink(kc, i, &kc->free_head, NULL);
		kc->nfree--;
		return i;
	}
	i = kc->lru_tail;
	if (i < 0)
		return -1;
	list_unlink(kc, i, &kc->lru_head, &kc->lru_tail);
	kc->nlru--;
	h_del(kc, i);
	kc->evictions++;
	return i;
}

int kv_acquire(struct kv_cache *kc, const uint64_t *keys, uint32_t nkeys, uint32_t total,
	       int32_t *idx, uint32_t *hits)
{
	uint32_t h = 0, in_lru = 0;

	if (nkeys > total)
		return -EINVAL;
	if (total > kc->nblocks)
		return -E2BIG;
	while (h < nkeys) {
		int32_t i = h_find(kc, keys[h]);

		if (i < 0)
			break;
		idx[h] = i;
		if (!kc->b[i].ref)
			in_lru++;
		h++;
	}
	if (total - h > kc->nfree + kc->nlru - in_lru)
		return -ENOSPC;
	for (uint32_t j = 0; j < h; j++) {
		struct kv_block *b = &kc->b[idx[j]];

		if (!b->ref++) {
			list_unlink(kc, idx[j], &kc->lru_head, &kc->lru_tail);
			kc->nlru--;
			kc->nused++;
		}
	}
	for (uint32_t j = h; j < total; j++) {
		idx[j] = take_block(kc);
		kc->b[idx[j]].ref = 1;
		kc->nused++;
	}
	kc->q_blocks += nkeys;
	kc->hit_blocks += h;
	*hits = h;
	return 0;
}

void kv_fill(uint8_t *buf, size_t len, uint64_t key)
{
	uint64_t s = key, v;
	size_t o = 0;

	while (o < len) {
		s = s * 6364136223846793005ULL + 1442695040888963407ULL;
		v = mix64(s);
		size_t n = len - o < 8 ? len - o : 8;

		memcpy(buf + o, &v, n);
		o += n;
	}
}

int kv_check(const struct kv_cache *kc, int32_t idx)
{
	uint8_t tmp[256];
	const uint8_t *d = kv_block_data(kc, idx);
	size_t n = kc->block_bytes < sizeof(tmp) ? kc->block_bytes : sizeof(tmp);

	if (!kc->block_bytes)
		return 0;
	kv_fill(tmp, n, kc->b[idx].key);
	return memcmp(tmp, d, n) ? -EBADMSG : 0;
}

void kv_commit(struct kv_cache *kc, const uint64_t *keys, const int32_t *idx,
	       uint32_t from, uint32_t n)
{
	for (uint32_t j = from; j < n; j++) {
		struct kv_block *b = &kc->b[idx[j]];
		uint32_t hb;

		if (b->cached || h_find(kc, keys[j]) >= 0)
			continue;	/* hit, or another sequence published it */
		b->key = keys[j];
		if (kc->block_bytes)
			kv_fill(kv_block_data(kc, idx[j]), kc->block_bytes, keys[j]);
		hb = mix64(keys[j]) & kc->hmask;
		b->hnext = kc->htab[hb];
		kc->htab[hb] = idx[j];
		b->cached = 1;
		kc->inserts++;
	}
}

void kv_release(struct kv_cache *kc, const int32_t *idx, uint32_t n)
{
	/* release the tail first, so a prefix's first blocks stay longest */
	for (uint32_t j = n; j-- > 0;) {
		struct kv_block *b = &kc->b[idx[j]];

		if (!b->ref || --b->ref)
			continue;
		kc->nused--;
		if (b->cached) {
			list_push(kc, idx[j], &kc->lru_head, &kc->lru_tail);
			kc->nlru++;
		} else {
			list_push(kc, idx[j], &kc->free_head, NULL);
			kc->nfree++;
		}
	}
}
