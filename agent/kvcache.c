// SPDX-License-Identifier: GPL-2.0
/*
 * kvcache.c - the engine emulator's prefix/KV cache: fixed number of
 * blocks, each a real byte buffer of block_tokens * kv_bytes_per_token in
 * one arena (registered once for KV transfer). Blocks are keyed by a
 * chained hash of the prompt's block ids, so a key names a whole prefix.
 *
 * A block is free (free list), in use (ref > 0, maybe published), or
 * cached and unreferenced (on an evictable list). Nothing here locks: the
 * engine does.
 *
 * Sharing scopes: every cached block belongs to a scope (public, tenant,
 * session, hardware-bound) with its owner (tenant, session token); a
 * lookup finds only blocks its requester (struct kv_who) may use, so one
 * tenant never hits another's private prefix. The hash table may hold the
 * same key several times, once per owner.
 *
 * Two replacement policies (docs/agent.md, "Cache admission: eq. 8"):
 *   KV_POLICY_LRU  one list, the least recently released block goes first;
 *   KV_POLICY_EQ8  value per byte V(b) = P_reuse(b) * C_saved / bytes,
 *                  P_reuse(b) = p[scope][class] * 2^-(age / half-life),
 *                  p estimated online from observed reuse per scope and
 *                  access-count class (1, 2, 3, 4+), decayed. The block of
 *                  least value goes first; one list per (scope, class) is
 *                  ordered by age, so the victim is the least of 16 tails.
 */
#include <errno.h>
#include <math.h>
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

static const char *const scope_names[KV_SCOPES] = { "public", "tenant", "session", "hardware" };

const char *kv_scope_name(unsigned int s)
{
	return s < KV_SCOPES ? scope_names[s] : "?";
}

int kv_scope_parse(const char *s)
{
	for (int i = 0; i < KV_SCOPES; i++)
		if (!strcmp(s, scope_names[i]))
			return i;
	if (!strcmp(s, "hardware-bound"))
		return KV_SCOPE_HW;
	return -EINVAL;
}

int kv_policy_parse(const char *s)
{
	if (!strcmp(s, "lru"))
		return KV_POLICY_LRU;
	if (!strcmp(s, "eq8"))
		return KV_POLICY_EQ8;
	return -EINVAL;
}

const char *kv_policy_name(unsigned int p)
{
	return p == KV_POLICY_EQ8 ? "eq8" : "lru";
}

int kv_who_check(const struct kv_who *w)
{
	if (w->scope >= KV_SCOPES)
		return -EINVAL;
	if (w->scope == KV_SCOPE_TENANT && !w->tenant)
		return -EINVAL;		/* tenant scope needs a tenant */
	if (w->scope == KV_SCOPE_SESSION && !w->session)
		return -EINVAL;		/* session scope needs a session token */
	return 0;
}

/* may requester w use block b? (w NULL: an anonymous, public request) */
static bool may_use(const struct kv_block *b, const struct kv_who *w)
{
	uint16_t t = w ? w->tenant : 0;

	switch (b->scope) {
	case KV_SCOPE_PUBLIC:
		return true;
	case KV_SCOPE_TENANT:
		return t == b->tenant;
	case KV_SCOPE_SESSION:
		return t == b->tenant && w && w->session == b->session;
	case KV_SCOPE_HW:
		return !(w && w->leaving) && (!b->tenant || t == b->tenant);
	}
	return false;
}

bool kv_block_usable(const struct kv_block *b, const struct kv_who *w)
{
	return b->cached && may_use(b, w);
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

static unsigned int acc_class(const struct kv_block *b)
{
	return b->nacc >= KV_CLASSES ? KV_CLASSES - 1 : b->nacc ? b->nacc - 1 : 0;
}

/* the evictable list a released block goes to */
static unsigned int list_of(const struct kv_cache *kc, const struct kv_block *b)
{
	if (kc->policy != KV_POLICY_EQ8)
		return 0;
	return 1 + b->scope * KV_CLASSES + acc_class(b);
}

static void ev_unlink(struct kv_cache *kc, int32_t i)
{
	unsigned int l = kc->b[i].list;

	list_unlink(kc, i, &kc->lh[l], &kc->lt[l]);
	kc->nlru--;
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
	kc->policy = KV_POLICY_LRU;
	kc->half_life = 1.0;
	kc->saved_us = 17.25 * block_tokens;
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
	for (int l = 0; l < KV_LISTS; l++)
		kc->lh[l] = kc->lt[l] = -1;
	kc->free_head = -1;
	for (int32_t i = nblocks - 1; i >= 0; i--) {
		kc->b[i].hnext = -1;
		list_push(kc, i, &kc->free_head, NULL);
	}
	kc->nfree = nblocks;
	return 0;
}

int kv_set_policy(struct kv_cache *kc, unsigned int policy, double half_life,
		  double saved_us_per_block)
{
	if (policy > KV_POLICY_EQ8 || !(half_life > 0) || saved_us_per_block < 0)
		return -EINVAL;
	if (kc->nlru || kc->nused)
		return -EBUSY;		/* only on an empty cache */
	kc->policy = policy;
	kc->half_life = half_life;
	kc->saved_us = saved_us_per_block;
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

static int32_t h_find(const struct kv_cache *kc, uint64_t key, const struct kv_who *w)
{
	for (int32_t i = kc->htab[mix64(key) & kc->hmask]; i >= 0; i = kc->b[i].hnext)
		if (kc->b[i].key == key && may_use(&kc->b[i], w))
			return i;
	return -1;
}

/* the same key with the same owner (kv_commit: published by another sequence) */
static int32_t h_find_same(const struct kv_cache *kc, const struct kv_block *nb, uint64_t key)
{
	for (int32_t i = kc->htab[mix64(key) & kc->hmask]; i >= 0; i = kc->b[i].hnext) {
		const struct kv_block *b = &kc->b[i];

		if (b->key == key && b->scope == nb->scope && b->tenant == nb->tenant &&
		    b->session == nb->session)
			return i;
	}
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

uint32_t kv_match_as(const struct kv_cache *kc, const struct kv_who *w, const uint64_t *keys,
		     uint32_t nkeys)
{
	uint32_t n = 0;

	while (n < nkeys && h_find(kc, keys[n], w) >= 0)
		n++;
	return n;
}

uint32_t kv_match(const struct kv_cache *kc, const uint64_t *keys, uint32_t nkeys)
{
	return kv_match_as(kc, NULL, keys, nkeys);
}

/* ---- eq. 8: the estimated reuse of a block and its value ------------------ */

/*
 * p[scope][class]: P(another hit | this scope and access count), observed.
 * A probability, so at most 1: the halving of the counts (stats_tick) can
 * find a hit counted after it against an access counted before it, and
 * then suc > acc in a class; a block's estimate never exceeds certainty.
 */
static double p_class(const struct kv_cache *kc, unsigned int s, unsigned int c)
{
	double best = 0;

	/* a block hit more often is not less likely to be hit again: cumulative max */
	for (unsigned int k = 0; k <= c; k++) {
		double p = (kc->suc[s][k] + 1.0) / (kc->acc[s][k] + 2.0);

		if (p > best)
			best = p;
	}
	return best < 1 ? best : 1;
}

double kv_reuse_p(const struct kv_cache *kc, const struct kv_block *b)
{
	double age = (double)(kc->clock - b->t_last);

	return p_class(kc, b->scope, acc_class(b)) *
	       exp2(-age / (kc->half_life * kc->nblocks));
}

double kv_reuse_next(const struct kv_cache *kc, const struct kv_block *b)
{
	return p_class(kc, b->scope, acc_class(b));
}

double kv_value_us(const struct kv_cache *kc, const struct kv_block *b)
{
	return kv_reuse_p(kc, b) * kc->saved_us;
}

/* halve the observations every nblocks accesses: recent reuse counts more */
static void stats_tick(struct kv_cache *kc)
{
	if (++kc->stat_ticks < kc->nblocks)
		return;
	kc->stat_ticks = 0;
	for (int s = 0; s < KV_SCOPES; s++)
		for (int c = 0; c < KV_CLASSES; c++) {
			kc->acc[s][c] *= 0.5;
			kc->suc[s][c] *= 0.5;
		}
}

static void note_access(struct kv_cache *kc, struct kv_block *b, bool hit)
{
	if (hit)
		kc->suc[b->scope][acc_class(b)] += 1;
	if (b->nacc < 255)
		b->nacc++;
	kc->acc[b->scope][acc_class(b)] += 1;
	stats_tick(kc);
}

/*
 * The victim. LRU: the tail of the one list. EQ8: each (scope, class) list
 * is ordered by release time, so its tail is its least valuable block;
 * log V = log p[s][c] - age / half-life * ln 2 (+ log C_saved, the same for
 * every block) is compared across the tails.
 */
static int32_t pick_victim(struct kv_cache *kc)
{
	double best = INFINITY, tau;
	int32_t v = -1;

	if (kc->policy != KV_POLICY_EQ8)
		return kc->lt[0];
	tau = kc->half_life * kc->nblocks / M_LN2;
	for (unsigned int s = 0; s < KV_SCOPES; s++)
		for (unsigned int c = 0; c < KV_CLASSES; c++) {
			int32_t i = kc->lt[1 + s * KV_CLASSES + c];
			double lv;

			if (i < 0)
				continue;
			lv = log(p_class(kc, s, c)) -
			     (double)(kc->clock - kc->b[i].t_last) / tau;
			if (lv < best) {
				best = lv;
				v = i;
			}
		}
	return v;
}

/* a free block: the free list first, else evict the policy's victim */
static int32_t take_block(struct kv_cache *kc)
{
	int32_t i = kc->free_head;

	if (i >= 0) {
		list_unlink(kc, i, &kc->free_head, NULL);
		kc->nfree--;
		return i;
	}
	i = pick_victim(kc);
	if (i < 0)
		return -1;
	ev_unlink(kc, i);
	h_del(kc, i);
	kc->evictions++;
	return i;
}

int kv_acquire_as(struct kv_cache *kc, const struct kv_who *w, const uint64_t *keys,
		  uint32_t nkeys, uint32_t total, int32_t *idx, uint32_t *hits)
{
	uint32_t h = 0, in_lru = 0;

	if (nkeys > total)
		return -EINVAL;
	if (total > kc->nblocks)
		return -E2BIG;
	if (w && kv_who_check(w))
		return -EINVAL;
	while (h < nkeys) {
		int32_t i = h_find(kc, keys[h], w);

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
			ev_unlink(kc, idx[j]);
			kc->nused++;
		}
		note_access(kc, b, true);
	}
	for (uint32_t j = h; j < total; j++) {
		struct kv_block *b;

		idx[j] = take_block(kc);
		b = &kc->b[idx[j]];
		b->ref = 1;
		b->nacc = 0;
		b->scope = w ? w->scope : KV_SCOPE_PUBLIC;
		b->tenant = w && b->scope != KV_SCOPE_PUBLIC ? w->tenant : 0;
		b->session = w && b->scope == KV_SCOPE_SESSION ? w->session : 0;
		b->token = w ? w->token : 0;
		kc->nused++;
	}
	kc->q_blocks += nkeys;
	kc->hit_blocks += h;
	*hits = h;
	return 0;
}

int kv_acquire(struct kv_cache *kc, const uint64_t *keys, uint32_t nkeys, uint32_t total,
	       int32_t *idx, uint32_t *hits)
{
	return kv_acquire_as(kc, NULL, keys, nkeys, total, idx, hits);
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

/* enter blocks [from, n) under keys[]; fill: compute their bytes (kv_fill) */
static void publish(struct kv_cache *kc, const uint64_t *keys, const int32_t *idx,
		    uint32_t from, uint32_t n, bool fill)
{
	for (uint32_t j = from; j < n; j++) {
		struct kv_block *b = &kc->b[idx[j]];
		uint32_t hb;

		if (b->cached || h_find_same(kc, b, keys[j]) >= 0)
			continue;	/* hit, or another sequence published it */
		b->key = keys[j];
		b->root = keys[0];
		if (fill && kc->block_bytes)
			kv_fill(kv_block_data(kc, idx[j]), kc->block_bytes, keys[j]);
		hb = mix64(keys[j]) & kc->hmask;
		b->hnext = kc->htab[hb];
		kc->htab[hb] = idx[j];
		b->cached = 1;
		note_access(kc, b, false);
		kc->inserts++;
	}
}

void kv_commit(struct kv_cache *kc, const uint64_t *keys, const int32_t *idx,
	       uint32_t from, uint32_t n)
{
	publish(kc, keys, idx, from, n, true);
}

int kv_reserve(struct kv_cache *kc, uint32_t n, int32_t *idx)
{
	uint32_t hits;

	return kv_acquire_as(kc, NULL, NULL, 0, n, idx, &hits);
}

void kv_publish(struct kv_cache *kc, const struct kv_who *w, const uint64_t *keys,
		int32_t *idx, uint32_t n, uint32_t *hits)
{
	uint32_t h = 0;

	/* leading blocks w finds already: shared, as kv_acquire_as's hits */
	while (h < n) {
		int32_t i = h_find(kc, keys[h], w);
		struct kv_block *b, *r;

		if (i < 0)
			break;
		b = &kc->b[i];
		if (!b->ref++) {
			ev_unlink(kc, i);
			kc->nused++;
		}
		note_access(kc, b, true);
		r = &kc->b[idx[h]];	/* the received copy goes back, unseen */
		r->ref = 0;
		kc->nused--;
		list_push(kc, idx[h], &kc->free_head, NULL);
		kc->nfree++;
		idx[h++] = i;
	}
	for (uint32_t j = h; j < n; j++) {	/* the rest: w's, as fresh blocks */
		struct kv_block *b = &kc->b[idx[j]];

		b->scope = w ? w->scope : KV_SCOPE_PUBLIC;
		b->tenant = w && b->scope != KV_SCOPE_PUBLIC ? w->tenant : 0;
		b->session = w && b->scope == KV_SCOPE_SESSION ? w->session : 0;
		b->token = w ? w->token : 0;
	}
	publish(kc, keys, idx, h, n, false);
	*hits = h;
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
			b->t_last = kc->clock++;
			b->list = list_of(kc, b);
			list_push(kc, idx[j], &kc->lh[b->list], &kc->lt[b->list]);
			kc->nlru++;
		} else {
			list_push(kc, idx[j], &kc->free_head, NULL);
			kc->nfree++;
		}
	}
}

int kv_drop(struct kv_cache *kc, const struct kv_who *w, const uint64_t *keys, uint32_t nkeys)
{
	int dropped = 0;

	/* from the deepest block up: nothing stays cached behind a hole */
	for (uint32_t j = nkeys; j-- > 0;) {
		int32_t i = h_find(kc, keys[j], w);

		if (i < 0 || kc->b[i].ref)
			continue;
		ev_unlink(kc, i);
		h_del(kc, i);
		list_push(kc, i, &kc->free_head, NULL);
		kc->nfree++;
		dropped++;
	}
	return dropped;
}
