// SPDX-License-Identifier: GPL-2.0
/*
 * maps.c - access to the dataplane's maps pinned by name under a pin
 * directory: open, read, write, per-CPU sums, reset.
 *
 * Nothing here knows about packets or selection (env.c, route.c) or plan
 * generations (plan.c).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "libidn.h"
#include "tables.h"

static const char *const map_names[IDN_MAP__MAX] = {
	[IDN_MAP_CONFIG] = "idn_config",
	[IDN_MAP_VIPS] = "idn_vips",
	[IDN_MAP_CONNS] = "idn_conns",
	[IDN_MAP_AFFINITY] = "idn_affinity",
	[IDN_MAP_PLANS] = "idn_plans",
	[IDN_MAP_NODES] = "idn_nodes",
	[IDN_MAP_NEXTHOPS] = "idn_nexthops",
	[IDN_MAP_STATS] = "idn_stats",
	[IDN_MAP_DROPS] = "idn_drops",
	[IDN_MAP_NODE_STATS] = "idn_node_stats",
	[IDN_MAP_CAP_STATS] = "idn_cap_stats",
	[IDN_MAP_RECEIPTS] = "idn_receipts",
	[IDN_MAP_TELE_KEYS] = "idn_tele_keys",
};

const char *idn_map_name(enum idn_map_id id)
{
	return id < IDN_MAP__MAX ? map_names[id] : "?";
}

const char *idn_pin_dir_default(void)
{
	const char *e = getenv("IDN_PIN");

	return e && *e ? e : IDN_PIN_DEFAULT;
}

void idn_maps_init(struct idn_maps *m, const char *dir)
{
	snprintf(m->dir, sizeof(m->dir), "%s", dir ? dir : idn_pin_dir_default());
	for (int i = 0; i < IDN_MAP__MAX; i++)
		m->fd[i] = -1;
	m->lock_fd = -1;
	m->claim_fd = 0;
}

void idn_maps_close(struct idn_maps *m)
{
	for (int i = 0; i < IDN_MAP__MAX; i++) {
		if (m->fd[i] >= 0)
			close(m->fd[i]);
		m->fd[i] = -1;
	}
	idn_maps_unlock(m);
	if (m->claim_fd > 0)
		close(m->claim_fd - 1);	/* drops the claim */
	m->claim_fd = 0;
}

static int owner_open(struct idn_maps *m, bool make)
{
	char path[PATH_MAX + sizeof(IDN_OWNER_LEASE) + 1];
	int fd;

	snprintf(path, sizeof(path), "%s/%s", m->dir, IDN_OWNER_LEASE);
	if (make && mkdir(path, 0700) && errno != EEXIST)
		return idn_err(-errno, "%s: %s", path, strerror(errno));
	fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT && !make ? -ENOENT :
			idn_err(-errno, "%s: %s", path, strerror(errno));
	return fd;
}

int idn_maps_claim(struct idn_maps *m)
{
	int fd;

	if (m->claim_fd > 0)
		return 0;
	fd = owner_open(m, true);
	if (fd < 0)
		return fd;
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		int err = errno == EWOULDBLOCK ? -EBUSY : -errno;

		close(fd);
		return idn_err(err, "%s: %s", m->dir, err == -EBUSY ?
			       "another idnd manages this router (its pin dir is claimed)" :
			       strerror(-err));
	}
	m->claim_fd = fd + 1;
	return 0;
}

int idn_maps_managed(struct idn_maps *m)
{
	int fd, busy;

	if (m->claim_fd > 0)
		return 0;	/* our own claim */
	fd = owner_open(m, false);
	if (fd == -ENOENT)
		return 0;
	if (fd < 0)
		return fd;
	busy = flock(fd, LOCK_SH | LOCK_NB) < 0 && errno == EWOULDBLOCK;
	close(fd);
	return busy;
}

void idn_maps_set_fd(struct idn_maps *m, enum idn_map_id id, int fd)
{
	if (m->fd[id] >= 0)
		close(m->fd[id]);
	m->fd[id] = fd;
}

int idn_map_fd(struct idn_maps *m, enum idn_map_id id)
{
	char path[PATH_MAX + 32];
	int fd, err;

	if (id >= IDN_MAP__MAX)
		return idn_err(-EINVAL, "bad map id %d", id);
	if (m->fd[id] >= 0)
		return m->fd[id];
	snprintf(path, sizeof(path), "%s/%s", m->dir, map_names[id]);
	fd = bpf_obj_get(path);
	if (fd < 0) {
		err = -errno;
		if (err == -ENOENT)
			return idn_err(err, "%s: not found (dataplane not loaded? "
				       "try \"idnctl dp attach\" or -P DIR)", path);
		return idn_err(err, "%s: %s", path, strerror(-err));
	}
	m->fd[id] = fd;
	return fd;
}

int idn_maps_lock(struct idn_maps *m)
{
	int fd;

	if (m->lock_fd >= 0)
		return 0;
	fd = open(m->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return idn_err(-errno, "%s: %s", m->dir, strerror(errno));
	if (flock(fd, LOCK_EX) < 0) {
		int err = -errno;

		close(fd);
		return idn_err(err, "lock %s: %s", m->dir, strerror(-err));
	}
	m->lock_fd = fd;
	return 0;
}

void idn_maps_unlock(struct idn_maps *m)
{
	if (m->lock_fd >= 0)
		close(m->lock_fd);	/* drops the flock */
	m->lock_fd = -1;
}

/* Map op helpers that turn errno into -errno plus a message. */
static int map_err(struct idn_maps *m, enum idn_map_id id, const char *op)
{
	int err = -errno;

	return idn_err(err, "%s %s: %s", op, map_names[id], strerror(-err));
}

int idn_config_get(struct idn_maps *m, struct idn_config *cfg)
{
	int fd = idn_map_fd(m, IDN_MAP_CONFIG);
	__u32 k = 0;

	if (fd < 0)
		return fd;
	if (bpf_map_lookup_elem(fd, &k, cfg))
		return map_err(m, IDN_MAP_CONFIG, "read");
	return 0;
}

int idn_config_set(struct idn_maps *m, const struct idn_config *cfg)
{
	int fd = idn_map_fd(m, IDN_MAP_CONFIG);
	__u32 k = 0;

	if (fd < 0)
		return fd;
	if (bpf_map_update_elem(fd, &k, cfg, BPF_ANY))
		return map_err(m, IDN_MAP_CONFIG, "write");
	return 0;
}

void idn_vip_key_make(struct idn_vip_key *k, const struct idn_addr *a, __u16 port, __u8 proto)
{
	memset(k, 0, sizeof(*k));
	memcpy(k->addr, a->addr, sizeof(k->addr));
	k->family = a->family;
	k->port = htons(port);
	k->proto = proto;
}

int idn_vip_update(struct idn_maps *m, const struct idn_vip_key *k,
		   const struct idn_vip *v, bool excl)
{
	int fd = idn_map_fd(m, IDN_MAP_VIPS);

	if (fd < 0)
		return fd;
	if (bpf_map_update_elem(fd, k, v, excl ? BPF_NOEXIST : BPF_ANY)) {
		if (errno == EEXIST)
			return idn_err(-EEXIST, "VIP exists");
		return map_err(m, IDN_MAP_VIPS, "write");
	}
	return 0;
}

int idn_vip_get(struct idn_maps *m, const struct idn_vip_key *k, struct idn_vip *v)
{
	int fd = idn_map_fd(m, IDN_MAP_VIPS);

	if (fd < 0)
		return fd;
	if (bpf_map_lookup_elem(fd, k, v)) {
		if (errno == ENOENT)
			return idn_err(-ENOENT, "no such VIP");
		return map_err(m, IDN_MAP_VIPS, "read");
	}
	return 0;
}

int idn_vip_del(struct idn_maps *m, const struct idn_vip_key *k)
{
	int fd = idn_map_fd(m, IDN_MAP_VIPS);

	if (fd < 0)
		return fd;
	if (bpf_map_delete_elem(fd, k)) {
		if (errno == ENOENT)
			return idn_err(-ENOENT, "no such VIP");
		return map_err(m, IDN_MAP_VIPS, "delete");
	}
	return 0;
}

static int vip_cmp(const void *a, const void *b)
{
	const struct idn_vip_entry *x = a, *y = b;
	int c = (int)x->key.family - (int)y->key.family;

	if (c)
		return c;
	c = memcmp(x->key.addr, y->key.addr, sizeof(x->key.addr));
	if (c)
		return c;
	c = (int)ntohs(x->key.port) - (int)ntohs(y->key.port);
	return c ? c : (int)x->key.proto - (int)y->key.proto;
}

/*
 * Collect every (key, value) of a hash map. Keys may vanish between
 * get_next_key and lookup (concurrent deletes): those are skipped.
 */
static int hash_dump(struct idn_maps *m, enum idn_map_id id, size_t ksz, size_t voff,
		     size_t esz, void **out)
{
	int fd = idn_map_fd(m, id), n = 0, cap = 0;
	char key[64], next[64];
	char *arr = NULL;
	void *prev = NULL;

	if (fd < 0)
		return fd;
	while (!bpf_map_get_next_key(fd, prev, next)) {
		memcpy(key, next, ksz);
		prev = key;
		if (n == cap) {
			char *na;

			cap = cap ? cap * 2 : 64;
			na = realloc(arr, (size_t)cap * esz);
			if (!na) {
				free(arr);
				return idn_err(-ENOMEM, "out of memory");
			}
			arr = na;
		}
		memcpy(arr + (size_t)n * esz, key, ksz);
		if (bpf_map_lookup_elem(fd, key, arr + (size_t)n * esz + voff))
			continue;
		n++;
	}
	if (errno != ENOENT) {
		free(arr);
		return map_err(m, id, "iterate");
	}
	*out = arr;
	return n;
}

int idn_vip_list(struct idn_maps *m, struct idn_vip_entry **out)
{
	void *arr = NULL;
	int n;

	n = hash_dump(m, IDN_MAP_VIPS, sizeof(struct idn_vip_key),
		      offsetof(struct idn_vip_entry, vip),
		      sizeof(struct idn_vip_entry), &arr);
	if (n < 0)
		return n;
	if (n)
		qsort(arr, n, sizeof(struct idn_vip_entry), vip_cmp);
	*out = arr;
	return n;
}

int idn_node_get(struct idn_maps *m, __u32 id, struct idn_node *n)
{
	int fd = idn_map_fd(m, IDN_MAP_NODES);

	if (fd < 0)
		return fd;
	if (id >= IDN_MAX_NODES)
		return idn_err(-EINVAL, "node id %u out of range (0..%u)", id, IDN_MAX_NODES - 1);
	if (bpf_map_lookup_elem(fd, &id, n))
		return map_err(m, IDN_MAP_NODES, "read");
	return 0;
}

int idn_node_put(struct idn_maps *m, __u32 id, const struct idn_node *n)
{
	int fd = idn_map_fd(m, IDN_MAP_NODES);

	if (fd < 0)
		return fd;
	if (id >= IDN_MAX_NODES)
		return idn_err(-EINVAL, "node id %u out of range (0..%u)", id, IDN_MAX_NODES - 1);
	if (bpf_map_update_elem(fd, &id, n, BPF_ANY))
		return map_err(m, IDN_MAP_NODES, "write");
	return 0;
}

int idn_tele_key_put(struct idn_maps *m, __u32 id, const __u8 key[16], __u32 key_id)
{
	struct idn_tele_key k = {};
	int fd = idn_map_fd(m, IDN_MAP_TELE_KEYS);

	if (fd < 0)
		return fd;
	if (id >= IDN_MAX_NODES)
		return idn_err(-EINVAL, "node id %u out of range (0..%u)", id, IDN_MAX_NODES - 1);
	if (key) {
		/* little-endian words, as SipHash reads its key (bpf/lib/tele.h) */
		for (int i = 0; i < 8; i++) {
			k.k0 |= (__u64)key[i] << (8 * i);
			k.k1 |= (__u64)key[8 + i] << (8 * i);
		}
		k.key_id = key_id;
		k.flags = IDN_TKEY_F_VALID;
	}
	if (bpf_map_update_elem(fd, &id, &k, BPF_ANY))
		return map_err(m, IDN_MAP_TELE_KEYS, "write");
	return 0;
}

int idn_tele_key_get(struct idn_maps *m, __u32 id, struct idn_tele_key *k)
{
	int fd = idn_map_fd(m, IDN_MAP_TELE_KEYS);

	if (fd < 0)
		return fd;
	if (id >= IDN_MAX_NODES)
		return idn_err(-EINVAL, "node id %u out of range (0..%u)", id, IDN_MAX_NODES - 1);
	if (bpf_map_lookup_elem(fd, &id, k))
		return map_err(m, IDN_MAP_TELE_KEYS, "read");
	return k->flags & IDN_TKEY_F_VALID ? 0 : -ENOENT;
}

int idn_node_locator(const struct idn_node *n, __u8 family, struct idn_addr *a)
{
	memset(a, 0, sizeof(*a));
	if (family == IDN_AF_INET && (n->flags & IDN_NODE_F_LOC4)) {
		a->family = IDN_AF_INET;
		a->addr[0] = n->addr4;
		return 0;
	}
	if (family == IDN_AF_INET6 && (n->flags & IDN_NODE_F_LOC6)) {
		a->family = IDN_AF_INET6;
		memcpy(a->addr, n->addr6, sizeof(a->addr));
		return 0;
	}
	return -ENOENT;
}

void idn_node_set_locator(struct idn_node *n, const struct idn_addr *a)
{
	if (a->family == IDN_AF_INET) {
		n->addr4 = a->addr[0];
		n->flags |= IDN_NODE_F_LOC4;
	} else if (a->family == IDN_AF_INET6) {
		memcpy(n->addr6, a->addr, sizeof(n->addr6));
		n->flags |= IDN_NODE_F_LOC6;
	}
}

static int nh_key(__u32 id, __u8 family, __u32 *key)
{
	if (id >= IDN_MAX_NODES)
		return idn_err(-EINVAL, "node id %u out of range (0..%u)", id, IDN_MAX_NODES - 1);
	if (family != IDN_AF_INET && family != IDN_AF_INET6)
		return idn_err(-EINVAL, "invalid address family %u", family);
	*key = IDN_NH_KEY(id, family == IDN_AF_INET6);
	return 0;
}

int idn_nexthop_clear(struct idn_maps *m, __u32 id, __u8 family)
{
	static const __u8 both[] = { IDN_AF_INET, IDN_AF_INET6 };
	int fd = idn_map_fd(m, IDN_MAP_NEXTHOPS);
	struct idn_nexthop z = {};

	if (fd < 0)
		return fd;
	for (size_t i = 0; i < ARRAY_SIZE(both); i++) {
		__u32 key;
		int err;

		if (family && family != both[i])
			continue;
		err = nh_key(id, both[i], &key);
		if (err)
			return err;
		if (bpf_map_update_elem(fd, &key, &z, BPF_ANY))
			return map_err(m, IDN_MAP_NEXTHOPS, "write");
	}
	return 0;
}

int idn_nexthop_get(struct idn_maps *m, __u32 id, __u8 family, struct idn_nexthop *nh)
{
	int fd = idn_map_fd(m, IDN_MAP_NEXTHOPS);
	__u32 key;
	int err;

	if (fd < 0)
		return fd;
	err = nh_key(id, family, &key);
	if (err)
		return err;
	if (bpf_map_lookup_elem(fd, &key, nh))
		return map_err(m, IDN_MAP_NEXTHOPS, "read");
	return 0;
}

int idn_node_read_all(struct idn_maps *m, struct idn_node *out)
{
	int fd = idn_map_fd(m, IDN_MAP_NODES);

	if (fd < 0)
		return fd;
	for (__u32 i = 0; i < IDN_MAX_NODES; i++)
		if (bpf_map_lookup_elem(fd, &i, &out[i]))
			return map_err(m, IDN_MAP_NODES, "read");
	return 0;
}

static int plan_cmp(const void *a, const void *b)
{
	const struct idn_plan_entry *x = a, *y = b;

	if (x->key.slot != y->key.slot)
		return x->key.slot < y->key.slot ? -1 : 1;
	if (x->key.cap != y->key.cap)
		return x->key.cap < y->key.cap ? -1 : 1;
	if (x->key.tier != y->key.tier)
		return x->key.tier < y->key.tier ? -1 : 1;
	return (int)x->key.policy - (int)y->key.policy;
}

/*
 * The plan map with batched lookups (a few syscalls for the whole map
 * instead of two per entry: ~10,000 entries took ~200 ms key by key on a
 * loaded 2-core VM, and idnd reads the active slot before every commit).
 * 0 entries and *out NULL: no batch operations here (the caller falls
 * back to hash_dump()).
 */
static int plan_dump_batch(int fd, struct idn_plan_entry **out)
{
	struct bpf_map_info info = {};
	__u32 ilen = sizeof(info), n = 0;
	struct idn_plan_key *keys;
	struct idn_plan *vals;
	struct idn_plan_entry *arr;
	void *in = NULL;
	__u64 tok = 0;

	*out = NULL;
	if (bpf_obj_get_info_by_fd(fd, &info, &ilen) || !info.max_entries)
		return 0;
	keys = calloc(info.max_entries + 1, sizeof(*keys));
	vals = calloc(info.max_entries + 1, sizeof(*vals));
	if (!keys || !vals)
		goto nomem;
	while (n < info.max_entries) {
		__u32 cnt = info.max_entries - n;
		int e = bpf_map_lookup_batch(fd, in, &tok, keys + n, vals + n, &cnt, NULL);

		if (e && errno != ENOENT) {
			int err = errno;

			free(keys);
			free(vals);
			if (n == 0 && (err == EINVAL || err == ENOTSUP || err == EOPNOTSUPP))
				return 0;	/* no batch ops: key by key */
			return idn_err(-err, "read plans: %s", strerror(err));
		}
		n += cnt;
		if (e)
			break;	/* ENOENT: end of the map */
		in = &tok;
	}
	arr = calloc(n + 1, sizeof(*arr));
	if (!arr)
		goto nomem;
	for (__u32 i = 0; i < n; i++) {
		arr[i].key = keys[i];
		arr[i].plan = vals[i];
	}
	free(keys);
	free(vals);
	*out = arr;
	return n;
nomem:
	free(keys);
	free(vals);
	return idn_err(-ENOMEM, "out of memory");
}

int idn_plan_list(struct idn_maps *m, int slot, struct idn_plan_entry **out)
{
	struct idn_plan_entry *arr = NULL;
	int n, k = 0, fd = idn_map_fd(m, IDN_MAP_PLANS);

	if (fd < 0)
		return fd;
	n = plan_dump_batch(fd, &arr);
	if (n < 0)
		return n;
	if (!arr)
		n = hash_dump(m, IDN_MAP_PLANS, sizeof(struct idn_plan_key),
			      offsetof(struct idn_plan_entry, plan),
			      sizeof(struct idn_plan_entry), (void **)&arr);
	if (n < 0)
		return n;
	for (int i = 0; i < n; i++)
		if (slot < 0 || arr[i].key.slot == slot)
			arr[k++] = arr[i];
	if (k)
		qsort(arr, k, sizeof(*arr), plan_cmp);
	*out = arr;
	return k;
}

/* Sum a per-CPU array/hash value of nwords u64 over all possible CPUs. */
static int percpu_sum(int fd, const void *key, __u64 *sum, size_t nwords)
{
	int ncpu = libbpf_num_possible_cpus();
	__u64 *vals;

	if (ncpu <= 0)
		return idn_err(-EINVAL, "cannot count possible CPUs");
	vals = calloc((size_t)ncpu * nwords, sizeof(__u64));
	if (!vals)
		return idn_err(-ENOMEM, "out of memory");
	if (bpf_map_lookup_elem(fd, key, vals)) {
		int err = -errno;

		free(vals);
		return err;
	}
	memset(sum, 0, nwords * sizeof(__u64));
	for (int c = 0; c < ncpu; c++)
		for (size_t w = 0; w < nwords; w++)
			sum[w] += vals[(size_t)c * nwords + w];
	free(vals);
	return 0;
}

int idn_vstats_read(struct idn_maps *m, struct idn_vstat out[IDN_V_MAX])
{
	int fd = idn_map_fd(m, IDN_MAP_STATS), err;

	if (fd < 0)
		return fd;
	for (__u32 i = 0; i < IDN_V_MAX; i++) {
		err = percpu_sum(fd, &i, (__u64 *)&out[i], sizeof(out[i]) / 8);
		if (err)
			return idn_err(err, "read idn_stats: %s", strerror(-err));
	}
	return 0;
}

int idn_drops_read(struct idn_maps *m, __u64 out[IDN_DROP_MAX])
{
	int fd = idn_map_fd(m, IDN_MAP_DROPS), err;

	if (fd < 0)
		return fd;
	for (__u32 i = 0; i < IDN_DROP_MAX; i++) {
		err = percpu_sum(fd, &i, &out[i], 1);
		if (err)
			return idn_err(err, "read idn_drops: %s", strerror(-err));
	}
	return 0;
}

int idn_nstats_read(struct idn_maps *m, struct idn_nstat *out)
{
	int fd = idn_map_fd(m, IDN_MAP_NODE_STATS), err;

	if (fd < 0)
		return fd;
	for (__u32 i = 0; i < IDN_MAX_NODES; i++) {
		err = percpu_sum(fd, &i, (__u64 *)&out[i], sizeof(out[i]) / 8);
		if (err)
			return idn_err(err, "read idn_node_stats: %s", strerror(-err));
	}
	return 0;
}

int idn_cstat_read(struct idn_maps *m, __u32 cap, struct idn_cstat *out)
{
	int fd = idn_map_fd(m, IDN_MAP_CAP_STATS), err;

	if (fd < 0)
		return fd;
	err = percpu_sum(fd, &cap, (__u64 *)out, sizeof(*out) / 8);
	if (err == -ENOENT)
		memset(out, 0, sizeof(*out));
	else if (err)
		return idn_err(err, "read idn_cap_stats: %s", strerror(-err));
	return err;
}

static int percpu_zero(int fd, __u32 n, size_t vsz)
{
	int ncpu = libbpf_num_possible_cpus();
	void *z = calloc((size_t)ncpu, vsz);

	if (!z)
		return -ENOMEM;
	for (__u32 i = 0; i < n; i++) {
		if (bpf_map_update_elem(fd, &i, z, BPF_ANY)) {
			int err = -errno;

			free(z);
			return err;
		}
	}
	free(z);
	return 0;
}

int idn_stats_reset(struct idn_maps *m)
{
	int fd, err;
	__u32 key, next;

	fd = idn_map_fd(m, IDN_MAP_STATS);
	if (fd < 0)
		return fd;
	err = percpu_zero(fd, IDN_V_MAX, sizeof(struct idn_vstat));
	if (err)
		return idn_err(err, "reset idn_stats: %s", strerror(-err));
	fd = idn_map_fd(m, IDN_MAP_DROPS);
	if (fd < 0)
		return fd;
	err = percpu_zero(fd, IDN_DROP_MAX, sizeof(__u64));
	if (err)
		return idn_err(err, "reset idn_drops: %s", strerror(-err));
	fd = idn_map_fd(m, IDN_MAP_NODE_STATS);
	if (fd < 0)
		return fd;
	err = percpu_zero(fd, IDN_MAX_NODES, sizeof(struct idn_nstat));
	if (err)
		return idn_err(err, "reset idn_node_stats: %s", strerror(-err));
	fd = idn_map_fd(m, IDN_MAP_CAP_STATS);
	if (fd < 0)
		return fd;
	/* Deleting while iterating: always restart from the first key. */
	while (!bpf_map_get_next_key(fd, NULL, &next)) {
		key = next;
		if (bpf_map_delete_elem(fd, &key) && errno != ENOENT)
			return map_err(m, IDN_MAP_CAP_STATS, "delete");
	}
	return 0;
}

int idn_aff_get(struct idn_maps *m, __u64 token, __u32 cls, struct idn_aff *a)
{
	int fd = idn_map_fd(m, IDN_MAP_AFFINITY), err;

	if (fd < 0)
		return fd;
	err = idn_afft_get(fd, token, cls, a);
	if (err && err != -ENOENT) {
		errno = -err;
		return map_err(m, IDN_MAP_AFFINITY, "read");
	}
	return err;
}

/* (token, cls) -> node in place beside the dataplane, as it writes
 * (tables.h); @only_new: keep an entry that exists (-EEXIST, no error) */
static int aff_put(struct idn_maps *m, __u64 token, __u32 cls, __u32 node, int only_new)
{
	int fd = idn_map_fd(m, IDN_MAP_AFFINITY), err;
	struct idn_aff v = { .node = node, .last_s = idn_coarse_now() };

	if (fd < 0)
		return fd;
	if (node >= IDN_MAX_NODES)
		return -EINVAL;
	err = idn_afft_put(fd, token, cls, &v, only_new);
	if (err && !(only_new && err == -EEXIST)) {
		errno = -err;
		return map_err(m, IDN_MAP_AFFINITY, "write");
	}
	return err;
}

int idn_aff_seed(struct idn_maps *m, __u64 token, __u32 cls, __u32 node)
{
	return aff_put(m, token, cls, node, 1);
}

int idn_aff_point(struct idn_maps *m, __u64 token, __u32 cls, __u32 node)
{
	return aff_put(m, token, cls, node, 0);
}

__u32 idn_coarse_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	return (__u32)((((__u64)ts.tv_sec * 1000000000ULL) + ts.tv_nsec) >> IDN_COARSE_SHIFT);
}

__u32 idn_tick_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	return (__u32)((((__u64)ts.tv_sec * 1000000000ULL) + ts.tv_nsec) >> IDN_TICK_SHIFT);
}

int idn_map_count(struct idn_maps *m, enum idn_map_id id)
{
	char key[64], next[64];
	void *prev = NULL;
	int fd = idn_map_fd(m, id), n = 0;

	if (fd < 0)
		return fd;
	if (id == IDN_MAP_NODES) {
		struct idn_node nd;

		for (__u32 i = 0; i < IDN_MAX_NODES; i++)
			if (!bpf_map_lookup_elem(fd, &i, &nd) && (nd.flags & IDN_NODE_F_VALID))
				n++;
		return n;
	}
	/* the set-associative tables (bpf/lib/ctab.h): ways in use */
	if (id == IDN_MAP_CONNS || id == IDN_MAP_AFFINITY) {
		n = id == IDN_MAP_CONNS ? idn_ct_count(fd) : idn_afft_count(fd);
		if (n < 0) {
			errno = -n;
			return map_err(m, id, "read");
		}
		return n;
	}
	while (!bpf_map_get_next_key(fd, prev, next)) {
		memcpy(key, next, sizeof(key));
		prev = key;
		n++;
	}
	return n;
}

int idn_map_flush(struct idn_maps *m, enum idn_map_id id)
{
	enum { BATCH = 4096 };
	int fd = idn_map_fd(m, id), n = 0, k;
	struct bpf_map_info info = {};
	__u32 ilen = sizeof(info);
	char *keys;

	if (fd < 0)
		return fd;
	/* the set-associative tables: every way emptied, the seed kept */
	if (id == IDN_MAP_CONNS || id == IDN_MAP_AFFINITY) {
		n = id == IDN_MAP_CONNS ? idn_ct_clear_all(fd) : idn_afft_clear_all(fd);
		if (n < 0) {
			errno = -n;
			return map_err(m, id, "flush");
		}
		return n;
	}
	if (bpf_obj_get_info_by_fd(fd, &info, &ilen))
		return map_err(m, id, "info");
	if (info.type != BPF_MAP_TYPE_HASH && info.type != BPF_MAP_TYPE_LRU_HASH &&
	    info.type != BPF_MAP_TYPE_PERCPU_HASH && info.type != BPF_MAP_TYPE_LRU_PERCPU_HASH)
		return idn_err(-EINVAL, "%s is not a hash map", idn_map_name(id));
	keys = malloc((size_t)info.key_size * BATCH);
	if (!keys)
		return idn_err(-ENOMEM, "flush %s: out of memory", idn_map_name(id));
	/*
	 * Keys a batch at a time, then deleted: deleting the key the walk
	 * stands on would restart it from the first bucket for every entry.
	 * Entries the dataplane adds meanwhile may or may not go.
	 */
	for (;;) {
		void *prev = NULL;

		for (k = 0; k < BATCH; k++) {
			char *next = keys + (size_t)k * info.key_size;

			if (bpf_map_get_next_key(fd, prev, next))
				break;
			prev = next;
		}
		if (!k)
			break;
		for (int i = 0; i < k; i++)
			if (!bpf_map_delete_elem(fd, keys + (size_t)i * info.key_size))
				n++;
		if (k < BATCH)
			break;
	}
	free(keys);
	return n;
}
