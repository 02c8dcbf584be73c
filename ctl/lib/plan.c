// SPDX-License-Identifier: GPL-2.0
/*
 * plan.c - the plan generation swap: the one way plans change.
 *
 * Readers (the dataplane) read config.active_slot once per packet and only
 * look up plans of that slot, so everything written to the other slot is
 * invisible until the single config update that flips it. The controller
 * (idnd) and idnctl both publish through idn_plan_commit().
 *
 * Cost: one batched read of the plan map, a hash index of the next
 * generation (open addressing on (cap, tier, policy)), batched deletes of
 * stale entries and one batched write of the inactive slot; per-element
 * syscalls only as a fallback for kernels without batch operations.
 * The buffers (up to ~20 MiB for a full map) are kept between commits:
 * on this project's VMs a first touch of a page costs ~10 us, which
 * would otherwise dominate (tools/bench: plan_push_10k_ms).
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <bpf/bpf.h>

#include "libidn.h"

/* The next generation: entries plus an index by (cap, tier, policy). */
struct pset {
	struct idn_plan_key *key;
	struct idn_plan *plan;
	bool *dead;		/* deleted by an op (kept in the index) */
	int n, cap;
	int *tab;		/* index + 1; 0 = empty */
	unsigned int mask;
};

/*
 * Scratch memory reused by every commit of the process (one at a time):
 * grown, never shrunk, contents not kept. Only the index is zeroed.
 */
static pthread_mutex_t scratch_lock = PTHREAD_MUTEX_INITIALIZER;
static char *scratch;
static size_t scratch_size, scratch_used;

static void *scratch_get(size_t size)
{
	void *p;

	size = (size + 63) & ~(size_t)63;
	if (scratch_used + size > scratch_size)
		return NULL;
	p = scratch + scratch_used;
	scratch_used += size;
	return p;
}

static int scratch_reserve(size_t size)
{
	scratch_used = 0;
	if (size <= scratch_size)
		return 0;
	free(scratch);
	scratch_size = 0;
	scratch = malloc(size);
	if (!scratch)
		return idn_err(-ENOMEM, "out of memory");
	scratch_size = size;
	return 0;
}

static unsigned int key_hash(const struct idn_plan_key *k)
{
	__u64 h = ((__u64)k->cap << 16 | (__u64)k->tier << 8 | k->policy) *
		  0x9e3779b97f4a7c15ULL;

	return (unsigned int)(h >> 32);
}

static bool key_eq(const struct idn_plan_key *a, const struct idn_plan_key *b)
{
	return a->cap == b->cap && a->tier == b->tier && a->policy == b->policy;
}

static int pset_init(struct pset *s, int cap)
{
	unsigned int size = 16;

	while (size < 2u * (unsigned int)cap)
		size <<= 1;
	memset(s, 0, sizeof(*s));
	s->cap = cap;
	s->mask = size - 1;
	s->key = scratch_get((size_t)cap * sizeof(*s->key));
	s->plan = scratch_get((size_t)cap * sizeof(*s->plan));
	s->dead = scratch_get((size_t)cap * sizeof(*s->dead));
	s->tab = scratch_get(size * sizeof(*s->tab));
	if (!s->key || !s->plan || !s->dead || !s->tab)
		return idn_err(-ENOMEM, "plan scratch too small");
	memset(s->tab, 0, size * sizeof(*s->tab));
	return 0;
}

static size_t pset_bytes(int cap)
{
	size_t size = 16;

	while (size < 2u * (unsigned int)cap)
		size <<= 1;
	return (size_t)cap * (sizeof(struct idn_plan_key) + sizeof(struct idn_plan) + 1) +
	       size * sizeof(int) + 4 * 64;
}

/* Index of k (slot ignored), or -1; *slotp: where it is or would go. */
static int pset_find(const struct pset *s, const struct idn_plan_key *k, unsigned int *slotp)
{
	unsigned int h = key_hash(k) & s->mask;

	for (; s->tab[h]; h = (h + 1) & s->mask)
		if (key_eq(&s->key[s->tab[h] - 1], k)) {
			*slotp = h;
			return s->tab[h] - 1;
		}
	*slotp = h;
	return -1;
}

static bool pset_has(const struct pset *s, const struct idn_plan_key *k)
{
	unsigned int h;
	int at = pset_find(s, k, &h);

	return at >= 0 && !s->dead[at];
}

/* Add or replace; s->cap bounds the number of distinct keys. */
static void pset_put(struct pset *s, const struct idn_plan_key *k, const struct idn_plan *p)
{
	unsigned int h;
	int at = pset_find(s, k, &h);

	if (at < 0) {
		at = s->n++;
		s->tab[h] = at + 1;
	}
	s->key[at] = *k;
	s->plan[at] = *p;
	s->dead[at] = false;
}

static int validate_plan(const struct idn_plan *p)
{
	if (p->n_cand > IDN_MAX_CAND)
		return idn_err(-EINVAL, "plan has %u candidates (max %d)", p->n_cand, IDN_MAX_CAND);
	for (int i = 0; i < p->n_cand; i++)
		if (p->cand[i].node >= IDN_MAX_NODES)
			return idn_err(-EINVAL, "candidate node %u out of range", p->cand[i].node);
	if (p->shed_tier > IDN_TIER_MAX + 1)
		return idn_err(-EINVAL, "shed tier %u out of range", p->shed_tier);
	return 0;
}

/*
 * Every entry of the plan map (both slots) into keys[]/vals[] (malloc()ed,
 * room for the map's max_entries): batched, else key by key.
 */
static int read_all(struct idn_maps *m, int fd, __u32 cap, struct idn_plan_key **keysp,
		    struct idn_plan **valsp)
{
	struct idn_plan_key *keys;
	struct idn_plan *vals;
	__u64 tok = 0;
	void *in = NULL;
	int n = 0;

	keys = scratch_get(((size_t)cap + 1) * sizeof(*keys));
	vals = scratch_get(((size_t)cap + 1) * sizeof(*vals));
	if (!keys || !vals)
		return idn_err(-ENOMEM, "plan scratch too small");
	*keysp = keys;
	*valsp = vals;
	while ((__u32)n < cap) {
		__u32 cnt = cap - n;
		int e = bpf_map_lookup_batch(fd, in, &tok, keys + n, vals + n, &cnt, NULL);

		if (e && errno != ENOENT) {
			if (n == 0 && (errno == EINVAL || errno == ENOTSUP || errno == EOPNOTSUPP))
				break;	/* no batch ops: fall back below */
			return idn_err(-errno, "read plans: %s", strerror(errno));
		}
		n += cnt;
		if (e)
			return n;	/* ENOENT: end of map */
		in = &tok;
	}
	if (n)
		return n;
	{
		struct idn_plan_entry *all = NULL;
		int k = idn_plan_list(m, -1, &all);

		for (int i = 0; i < k && (__u32)i < cap; i++) {
			keys[i] = all[i].key;
			vals[i] = all[i].plan;
		}
		free(all);
		return k < 0 ? k : (k > (int)cap ? (int)cap : k);
	}
}

static int delete_keys(int fd, struct idn_plan_key *keys, __u32 n)
{
	__u32 cnt = n;

	if (!n || !bpf_map_delete_batch(fd, keys, &cnt, NULL))
		return 0;
	/* partial or unsupported: finish one by one (ENOENT is fine) */
	for (__u32 i = 0; i < n; i++)
		if (bpf_map_delete_elem(fd, &keys[i]) && errno != ENOENT)
			return idn_err(-errno, "delete stale plan: %s", strerror(errno));
	return 0;
}

static int write_all(int fd, struct idn_plan_key *keys, struct idn_plan *vals, __u32 n)
{
	LIBBPF_OPTS(bpf_map_batch_opts, o, .elem_flags = BPF_ANY);
	__u32 cnt = n;

	if (!n || !bpf_map_update_batch(fd, keys, vals, &cnt, &o))
		return 0;
	if (errno != EINVAL && errno != ENOTSUP && errno != EOPNOTSUPP)
		return idn_err(-errno, "write plans: %s", strerror(errno));
	for (__u32 i = 0; i < n; i++)
		if (bpf_map_update_elem(fd, &keys[i], &vals[i], BPF_ANY))
			return idn_err(-errno, "write plan: %s", strerror(errno));
	return 0;
}

int idn_plan_commit(struct idn_maps *m, const struct idn_plan_op *ops, int n_ops, __u32 *gen)
{
	struct idn_plan_key *keys = NULL, *stale = NULL;
	struct bpf_map_info info = {};
	__u32 len = sizeof(info), active, inactive, new_gen, bloom = 0;
	struct idn_plan *vals = NULL;
	struct pset next = {};
	int n_all, n_stale = 0, n_live = 0, fd, err, locked;
	struct idn_config cfg;

	if (n_ops < 0)
		return idn_err(-EINVAL, "negative op count");
	fd = idn_map_fd(m, IDN_MAP_PLANS);
	if (fd < 0)
		return fd;
	/* Writers serialise on the pin dir; maps given by fd have none. */
	if (bpf_obj_get_info_by_fd(fd, &info, &len))
		return idn_err(-errno, "plan map info: %s", strerror(errno));
	locked = idn_maps_lock(m) == 0;
	pthread_mutex_lock(&scratch_lock);
	idn_errclear();

	err = scratch_reserve(((size_t)info.max_entries + 1) *
			      (sizeof(*keys) + sizeof(*vals)) + 2 * 64 +
			      pset_bytes((int)info.max_entries + n_ops + 1));
	if (err)
		goto out;
	err = idn_config_get(m, &cfg);
	if (err)
		goto out;
	active = cfg.active_slot & 1;
	inactive = active ^ 1;
	new_gen = cfg.generation + 1;

	n_all = read_all(m, fd, info.max_entries, &keys, &vals);
	if (n_all < 0) {
		err = n_all;
		goto out;
	}
	err = pset_init(&next, n_all + n_ops + 1);
	if (err)
		goto out;

	/* 1. The next generation starts as a copy of the active one. */
	for (int i = 0; i < n_all; i++)
		if (keys[i].slot == active)
			pset_put(&next, &keys[i], &vals[i]);

	/* 2. Apply the changes in order; fail before writing anything. */
	for (int i = 0; i < n_ops; i++) {
		char cb[160];

		unsigned int h;
		int at = pset_find(&next, &ops[i].key, &h);
		bool have = at >= 0 && !next.dead[at];

		if (!have && (ops[i].del || ops[i].mode == IDN_PLAN_CHANGE)) {
			err = idn_err(-ENOENT, "no plan %s",
				      idn_fmt_plan_key(&ops[i].key, cb, sizeof(cb)));
			goto out;
		}
		if (ops[i].del) {
			next.dead[at] = true;
			continue;
		}
		if (have && ops[i].mode == IDN_PLAN_CREATE) {
			err = idn_err(-EEXIST, "plan %s exists",
				      idn_fmt_plan_key(&ops[i].key, cb, sizeof(cb)));
			goto out;
		}
		err = validate_plan(&ops[i].plan);
		if (err)
			goto out;
		pset_put(&next, &ops[i].key, &ops[i].plan);
	}

	/* 3. Stale entries of the inactive slot go first (frees room). */
	stale = keys;	/* reuse: entries already consumed, compact in place */
	for (int i = 0; i < n_all; i++)
		if (keys[i].slot == inactive && !pset_has(&next, &keys[i]))
			stale[n_stale++] = keys[i];
	err = delete_keys(fd, stale, n_stale);
	if (err)
		goto out;

	/* 4. Write the whole next generation into the inactive slot. */
	for (int i = 0; i < next.n; i++) {
		if (next.dead[i])
			continue;
		if (next.key[i].tier != IDN_ANY || next.key[i].policy != IDN_ANY)
			bloom |= IDN_PLAN_BLOOM_BIT(next.key[i].cap);
		next.key[n_live] = next.key[i];
		next.key[n_live].slot = inactive;
		next.key[n_live].pad = 0;
		next.plan[n_live] = next.plan[i];
		next.plan[n_live].generation = new_gen;
		/* the dataplane fills the stateless ring from the candidates */
		memset(next.plan[n_live].sl_ring, 0, sizeof(next.plan[n_live].sl_ring));
		n_live++;
	}
	err = write_all(fd, next.key, next.plan, n_live);
	if (err)
		goto out;

	/*
	 * 5. The inactive slot's plan hint (struct idn_config plan_bloom:
	 * which capabilities have plans of a specific tier or policy), in a
	 * config update of its own before the flip: readers use the hint of
	 * the active slot only, and an update of the config entry is not
	 * atomic for them, so the hint must not change in the update that
	 * makes its slot active.
	 */
	err = idn_config_get(m, &cfg);
	if (err)
		goto out;
	cfg.plan_bloom[inactive] = (__u8)bloom;
	cfg.flags |= IDN_CFG_F_PLANS0 << inactive;
	err = idn_config_set(m, &cfg);
	if (err)
		goto out;

	/*
	 * 6. ORDER: flip last, in one update of the one config entry. Re-read
	 * config so a concurrent `dp set` of other fields is not undone.
	 */
	err = idn_config_get(m, &cfg);
	if (err)
		goto out;
	cfg.active_slot = inactive;
	cfg.generation = new_gen;
	err = idn_config_set(m, &cfg);
	if (!err && gen)
		*gen = new_gen;
out:
	pthread_mutex_unlock(&scratch_lock);
	if (locked)
		idn_maps_unlock(m);
	return err;
}
