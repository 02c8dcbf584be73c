// SPDX-License-Identifier: GPL-2.0
/*
 * plan.c - the plan generation swap: the one way plans change.
 *
 * Readers (the dataplane) read config.active_slot once per packet and only
 * look up plans of that slot, so everything written to the other slot is
 * invisible until the single config update that flips it. The controller
 * (idnd) and idnctl both publish through idn_plan_commit().
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <bpf/bpf.h>

#include "libidn.h"

static bool key_eq(const struct idn_plan_key *a, const struct idn_plan_key *b)
{
	return a->cap == b->cap && a->tier == b->tier && a->policy == b->policy;
}

/* Index of key (slot ignored) in arr[0..n), or -1. */
static int find_key(const struct idn_plan_entry *arr, int n, const struct idn_plan_key *k)
{
	for (int i = 0; i < n; i++)
		if (key_eq(&arr[i].key, k))
			return i;
	return -1;
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

int idn_plan_commit(struct idn_maps *m, const struct idn_plan_op *ops, int n_ops, __u32 *gen)
{
	struct idn_plan_entry *all = NULL, *next = NULL;
	int n_all, n_next = 0, fd, err, locked;
	struct idn_config cfg;
	__u32 active, inactive, new_gen;

	fd = idn_map_fd(m, IDN_MAP_PLANS);
	if (fd < 0)
		return fd;
	/* Writers serialise on the pin dir; maps given by fd have none. */
	locked = idn_maps_lock(m) == 0;
	idn_errclear();

	err = idn_config_get(m, &cfg);
	if (err)
		goto out;
	active = cfg.active_slot & 1;
	inactive = active ^ 1;
	new_gen = cfg.generation + 1;

	n_all = idn_plan_list(m, -1, &all);
	if (n_all < 0) {
		err = n_all;
		goto out;
	}
	next = calloc((size_t)n_all + n_ops + 1, sizeof(*next));
	if (!next) {
		err = idn_err(-ENOMEM, "out of memory");
		goto out;
	}

	/* 1. The next generation starts as a copy of the active one. */
	for (int i = 0; i < n_all; i++)
		if (all[i].key.slot == active)
			next[n_next++] = all[i];

	/* 2. Apply the changes; fail before writing anything. */
	for (int i = 0; i < n_ops; i++) {
		int at = find_key(next, n_next, &ops[i].key);
		char cb[32];

		if (ops[i].del) {
			if (at < 0) {
				err = idn_err(-ENOENT, "no plan for cap %s tier %u policy %u",
					      idn_fmt_cap(ops[i].key.cap, cb, sizeof(cb)),
					      ops[i].key.tier, ops[i].key.policy);
				goto out;
			}
			next[at] = next[--n_next];
			continue;
		}
		err = validate_plan(&ops[i].plan);
		if (err)
			goto out;
		if (at < 0)
			at = n_next++;
		next[at].key = ops[i].key;
		next[at].plan = ops[i].plan;
	}

	/* 3. Stale entries of the inactive slot go first (frees room). */
	for (int i = 0; i < n_all; i++) {
		struct idn_plan_key k = all[i].key;

		if (k.slot != inactive || find_key(next, n_next, &k) >= 0)
			continue;
		if (bpf_map_delete_elem(fd, &k) && errno != ENOENT) {
			err = idn_err(-errno, "delete stale plan: %s", strerror(errno));
			goto out;
		}
	}

	/* 4. Write the whole next generation into the inactive slot. */
	for (int i = 0; i < n_next; i++) {
		next[i].key.slot = inactive;
		next[i].key.pad = 0;
		next[i].plan.generation = new_gen;
		if (bpf_map_update_elem(fd, &next[i].key, &next[i].plan, BPF_ANY)) {
			err = idn_err(-errno, "write plan: %s", strerror(errno));
			goto out;
		}
	}

	/*
	 * 5. ORDER: flip last, in one update of the one config entry. Re-read
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
	if (locked)
		idn_maps_unlock(m);
	free(all);
	free(next);
	return err;
}
