/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * tables.h - the connection and affinity tables (idn_conns, idn_affinity)
 * from userspace, by map fd: read, write, remove, count, empty, walk, and
 * seed. Header-only (libidn, idnd, the tests, the benchmark).
 *
 * Both maps are BPF_F_MMAPABLE: these functions map the table and work on
 * it in place with the dataplane's own code (bpf/lib/ctab.h) and its
 * ordering (a way's fields, then its tag with a release store, then the
 * set's metadata), so a write from here is as safe against the dataplane
 * writing at the same moment as one CPU's write is against another's.
 */
#ifndef __IDN_CTL_TABLES_H
#define __IDN_CTL_TABLES_H

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <bpf/bpf.h>
#include <linux/idn.h>
#include "lib/ctab.h"

/* A table mapped into this process. */
struct idn_tab_map {
	unsigned char *mem;
	size_t len;
	int conn;		/* idn_conns, else idn_affinity */
};

/*
 * idn_tab_map_open - map the table behind @fd (writable when @rw). The
 * table is told by its value size. Return: 0 or -errno.
 */
static inline int idn_tab_map_open(int fd, int rw, struct idn_tab_map *t)
{
	struct bpf_map_info info;
	__u32 ilen = sizeof(info);
	long pg = sysconf(_SC_PAGESIZE);
	void *mem;

	memset(&info, 0, sizeof(info));
	memset(t, 0, sizeof(*t));
	if (bpf_obj_get_info_by_fd(fd, &info, &ilen))
		return -errno;
	if (info.type != BPF_MAP_TYPE_ARRAY || !(info.map_flags & BPF_F_MMAPABLE))
		return -EINVAL;
	if (info.value_size == sizeof(struct idn_conn_set) && info.max_entries == IDN_CONN_ELEMS)
		t->conn = 1;
	else if (info.value_size != sizeof(struct idn_aff_set) ||
		 info.max_entries != IDN_AFF_ELEMS)
		return -EINVAL;
	t->len = ((size_t)info.value_size * info.max_entries + pg - 1) / pg * pg;
	mem = mmap(NULL, t->len, PROT_READ | (rw ? PROT_WRITE : 0), MAP_SHARED, fd, 0);
	if (mem == MAP_FAILED)
		return -errno;
	t->mem = mem;
	return 0;
}

static inline void idn_tab_map_close(struct idn_tab_map *t)
{
	if (t->mem)
		munmap(t->mem, t->len);
	t->mem = NULL;
}

static inline struct idn_conn_set *idn_tab_cset(struct idn_tab_map *t, __u32 i)
{
	return (struct idn_conn_set *)(t->mem + (size_t)i * sizeof(struct idn_conn_set));
}

static inline struct idn_aff_set *idn_tab_aset(struct idn_tab_map *t, __u32 i)
{
	return (struct idn_aff_set *)(t->mem + (size_t)i * sizeof(struct idn_aff_set));
}

/* ---- connections ------------------------------------------------------- */

/* Where @k lives: its set (returned), metadata in *m, position in *p. */
static inline struct idn_conn_set *idn_ct_at(struct idn_tab_map *t,
					     const struct idn_flow_key *k,
					     struct idn_tab_pos *p, struct idn_tab_meta **m)
{
	idn_conn_pos(idn_conn_hash(&idn_tab_cset(t, IDN_CONN_SETS)->seed, k), p);
	*m = &idn_tab_cset(t, idn_conn_meta_elem(p->set))->meta[p->set % IDN_CONN_META_PER];
	return idn_tab_cset(t, p->set);
}

/* idn_ct_get - the entry of @k. Return: 0, -ENOENT or -errno. */
static inline int idn_ct_get(int fd, const struct idn_flow_key *k, struct idn_conn *c)
{
	struct idn_tab_map t;
	struct idn_tab_meta *m;
	struct idn_tab_pos p;
	struct idn_conn_set *s;
	__u64 tag;
	int w, err = idn_tab_map_open(fd, 0, &t);

	if (err)
		return err;
	s = idn_ct_at(&t, k, &p, &m);
	w = idn_ct_find(s, m, k, &p, &tag);
	if (w >= 0) {
		memset(c, 0, sizeof(*c));
		c->node = (__u32)tag;
		c->generation = s->way[w].generation;
		c->cap = s->way[w].cap;
	}
	idn_tab_map_close(&t);
	return w >= 0 ? 0 : -ENOENT;
}

/* idn_ct_put - enter @k -> @c as the dataplane does (its way, empty, clock). */
static inline int idn_ct_put(int fd, const struct idn_flow_key *k, const struct idn_conn *c)
{
	struct idn_tab_map t;
	struct idn_tab_meta *m;
	struct idn_tab_pos p;
	struct idn_conn_set *s;
	int err = idn_tab_map_open(fd, 1, &t);

	if (err)
		return err;
	s = idn_ct_at(&t, k, &p, &m);
	idn_ct_write(s, m, idn_ct_victim(s, m, k, &p, 0), k, &p, c->node, c->generation,
		     c->cap);
	idn_tab_map_close(&t);
	return 0;
}

/* idn_ct_del - remove the entry of @k. Return: 0 or -ENOENT. */
static inline int idn_ct_del(int fd, const struct idn_flow_key *k)
{
	struct idn_tab_map t;
	struct idn_tab_meta *m;
	struct idn_tab_pos p;
	struct idn_conn_set *s;
	__u64 tag;
	int w, err = idn_tab_map_open(fd, 1, &t);

	if (err)
		return err;
	s = idn_ct_at(&t, k, &p, &m);
	w = idn_ct_find(s, m, k, &p, &tag);
	if (w >= 0)
		idn_ct_clear(s, m, w);
	idn_tab_map_close(&t);
	return w >= 0 ? 0 : -ENOENT;
}

/*
 * idn_ct_walk - call @fn for every entry (until it returns non-zero, which
 * is returned). Return: 0, that value, or -errno.
 */
static inline int idn_ct_walk(int fd, int (*fn)(const struct idn_flow_key *k,
						const struct idn_conn *c, void *arg),
			      void *arg)
{
	struct idn_tab_map t;
	int r = idn_tab_map_open(fd, 0, &t);

	for (__u32 i = 0; !r && i < IDN_CONN_SETS; i++) {
		const struct idn_conn_set *s = idn_tab_cset(&t, i);

		for (int w = 0; !r && w < IDN_CONN_WAYS; w++) {
			struct idn_flow_key k = s->way[w].key;
			struct idn_conn c = { 0 };
			__u64 tag = IDN_READ_ONCE(s->way[w].tag);

			if (!tag)
				continue;
			c.node = (__u32)tag;
			c.generation = s->way[w].generation;
			c.cap = s->way[w].cap;
			r = fn(&k, &c, arg);
		}
	}
	idn_tab_map_close(&t);
	return r;
}

/*
 * idn_tab_scan - the entries of a table (ways whose tag is set); with
 * @clear, empty it too (ways and metadata; the seed stays). Return: the
 * count, or -errno.
 */
static inline int idn_tab_scan(int fd, int clear)
{
	struct idn_tab_map t;
	int n = 0, err = idn_tab_map_open(fd, clear, &t);

	if (err)
		return err;
	if (t.conn) {
		for (__u32 i = 0; i < IDN_CONN_SETS; i++) {
			struct idn_conn_set *s = idn_tab_cset(&t, i);

			for (int w = 0; w < IDN_CONN_WAYS; w++) {
				if (!IDN_READ_ONCE(s->way[w].tag))
					continue;
				n++;
				if (clear)
					IDN_WRITE_ONCE(s->way[w].tag, 0);
			}
		}
		if (clear)
			memset(idn_tab_cset(&t, IDN_CONN_SETS + 1), 0,
			       (size_t)(IDN_CONN_ELEMS - IDN_CONN_SETS - 1) *
			       sizeof(struct idn_conn_set));
	} else {
		for (__u32 i = 0; i < IDN_AFF_SETS; i++) {
			struct idn_aff_set *s = idn_tab_aset(&t, i);

			for (int w = 0; w < IDN_AFF_WAYS; w++) {
				if (!IDN_READ_ONCE(s->way[w].tag))
					continue;
				n++;
				if (clear)
					IDN_WRITE_ONCE(s->way[w].tag, 0);
			}
		}
		if (clear)
			memset(idn_tab_aset(&t, IDN_AFF_SETS + 1), 0,
			       (size_t)(IDN_AFF_ELEMS - IDN_AFF_SETS - 1) *
			       sizeof(struct idn_aff_set));
	}
	idn_tab_map_close(&t);
	return n;
}

static inline int idn_ct_count(int fd)
{
	return idn_tab_scan(fd, 0);
}

static inline int idn_ct_clear_all(int fd)
{
	return idn_tab_scan(fd, 1);
}

/* ---- affinity ---------------------------------------------------------- */

static inline struct idn_aff_set *idn_afft_at(struct idn_tab_map *t, __u64 token, __u32 cls,
					      struct idn_tab_pos *p, struct idn_tab_meta **m)
{
	idn_aff_pos(idn_aff_hash(&idn_tab_aset(t, IDN_AFF_SETS)->seed, token, cls), p);
	*m = &idn_tab_aset(t, idn_aff_meta_elem(p->set))->meta[p->set % IDN_AFF_META_PER];
	return idn_tab_aset(t, p->set);
}

/* idn_afft_get - the affinity entry of (@token, @cls). Return: 0, -ENOENT, -errno. */
static inline int idn_afft_get(int fd, __u64 token, __u32 cls, struct idn_aff *a)
{
	struct idn_tab_map t;
	struct idn_tab_meta *m;
	struct idn_tab_pos p;
	struct idn_aff_set *s;
	__u64 tag;
	int w, err = idn_tab_map_open(fd, 0, &t);

	if (err)
		return err;
	s = idn_afft_at(&t, token, cls, &p, &m);
	w = idn_aff_find(s, m, token, &p, &tag);
	if (w >= 0) {
		a->node = IDN_AFF_TAG_NODE(tag);
		a->last_s = IDN_AFF_TAG_LAST(tag);
	}
	idn_tab_map_close(&t);
	return w >= 0 ? 0 : -ENOENT;
}

/*
 * idn_afft_put - (@token, @cls) -> @a as the dataplane writes it; with
 * @noexist, -EEXIST when (@token, @cls) has an entry (kept).
 */
static inline int idn_afft_put(int fd, __u64 token, __u32 cls, const struct idn_aff *a,
			       int noexist)
{
	struct idn_tab_map t;
	struct idn_tab_meta *m;
	struct idn_tab_pos p;
	struct idn_aff_set *s;
	__u64 tag;
	int w, err;

	if (a->node >= IDN_MAX_NODES)
		return -EINVAL;
	err = idn_tab_map_open(fd, 1, &t);
	if (err)
		return err;
	s = idn_afft_at(&t, token, cls, &p, &m);
	w = idn_aff_find(s, m, token, &p, &tag);
	if (w < 0 || !noexist)
		idn_aff_put(s, m, w, token, &p, a->node, a->last_s);
	idn_tab_map_close(&t);
	return w >= 0 && noexist ? -EEXIST : 0;
}

/* idn_afft_del - remove the entry of (@token, @cls). Return: 0 or -ENOENT. */
static inline int idn_afft_del(int fd, __u64 token, __u32 cls)
{
	struct idn_tab_map t;
	struct idn_tab_meta *m;
	struct idn_tab_pos p;
	struct idn_aff_set *s;
	__u64 tag;
	int w, err = idn_tab_map_open(fd, 1, &t);

	if (err)
		return err;
	s = idn_afft_at(&t, token, cls, &p, &m);
	w = idn_aff_find(s, m, token, &p, &tag);
	if (w >= 0) {
		m->check[w] = 0;
		IDN_WRITE_ONCE(s->way[w].tag, 0);
	}
	idn_tab_map_close(&t);
	return w >= 0 ? 0 : -ENOENT;
}

/*
 * idn_afft_walk - call @fn for every affinity entry: token, node, last
 * use (the class is not stored: it is in the hash). As idn_ct_walk().
 */
static inline int idn_afft_walk(int fd, int (*fn)(__u64 token, const struct idn_aff *a,
						  void *arg),
				void *arg)
{
	struct idn_tab_map t;
	int r = idn_tab_map_open(fd, 0, &t);

	for (__u32 i = 0; !r && i < IDN_AFF_SETS; i++) {
		const struct idn_aff_set *s = idn_tab_aset(&t, i);

		for (int w = 0; !r && w < IDN_AFF_WAYS; w++) {
			__u64 tag = IDN_READ_ONCE(s->way[w].tag);
			struct idn_aff a;

			if (!tag)
				continue;
			a.node = IDN_AFF_TAG_NODE(tag);
			a.last_s = IDN_AFF_TAG_LAST(tag);
			r = fn(IDN_READ_ONCE(s->way[w].token), &a, arg);
		}
	}
	idn_tab_map_close(&t);
	return r;
}

static inline int idn_afft_count(int fd)
{
	return idn_tab_scan(fd, 0);
}

static inline int idn_afft_clear_all(int fd)
{
	return idn_tab_scan(fd, 1);
}

/*
 * idn_tab_seed_new - give an unseeded table a random seed. Only for a
 * table just created, before any packet used it: a new seed makes every
 * entry unreachable. Return: 1 seeded, 0 it had one, -errno.
 */
static inline int idn_tab_seed_new(int fd)
{
	static const struct idn_tab_seed none;
	struct idn_tab_seed seed, *at;
	struct idn_tab_map t;
	int err = idn_tab_map_open(fd, 1, &t);

	if (err)
		return err;
	at = t.conn ? &idn_tab_cset(&t, IDN_CONN_SETS)->seed : &idn_tab_aset(&t, IDN_AFF_SETS)->seed;
	if (memcmp(at, &none, sizeof(none))) {
		idn_tab_map_close(&t);
		return 0;
	}
	if (getrandom(&seed, sizeof(seed), 0) != (ssize_t)sizeof(seed))
		err = -EIO;
	else
		memcpy(at, &seed, sizeof(seed));
	idn_tab_map_close(&t);
	return err ? err : 1;
}

#endif /* __IDN_CTL_TABLES_H */
