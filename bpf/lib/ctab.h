/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * ctab.h - the connection table (idn_conns) and the affinity table
 * (idn_affinity): set-associative arrays, written without locks by every
 * CPU (docs/architecture.md, "Connection and affinity tables"; layout in
 * uapi idn.h).
 *
 *   hash     NH (pairs of 32-bit words plus key words, multiplied to 64
 *            bits and summed: Black et al., UMAC) under the table's seed,
 *            then one xorshift-multiply round (idn_tab_fin()): the top bits
 *            pick the set, the bits below them give the check in the
 *            entry's tag and the check byte in the set's metadata. Short:
 *            the hash is on the established path's critical path
 *   find     the ways whose check byte matches (usually none for a key
 *            that is not there: one read of the small metadata array),
 *            then the way whose tag carries the check and whose key is
 *            the key. The tag is read once (one 64-bit load), so a reader
 *            racing a writer gets an old entry whole, a new one whole, or
 *            a miss: a torn key fails the compare, a tag of another key
 *            fails the check
 *   insert   the key's own way, else an empty one, else (connections)
 *            CLOCK over the set's use bytes from a hashed start: the
 *            first way not used since the clock last passed it, clearing
 *            use bytes on the way (second chance; a new entry starts
 *            unused, so a flow that never sends a second packet goes
 *            first), or (affinity) the way used longest ago
 *
 * Context-free: the BPF program, ctl/lib/tables.h (libidn, the tests, the
 * benchmark) run this very code on a set and its metadata.
 */
#ifndef __IDN_LIB_CTAB_H
#define __IDN_LIB_CTAB_H

#include "lib/compat.h"

/* 32- and 16-bit views of any object (no strict-aliasing assumption). */
typedef __u32 __attribute__((__may_alias__)) idn_u32a;
typedef __u16 __attribute__((__may_alias__)) idn_u16a;

#ifdef __bpf__
#define IDN_READ_ONCE(x) (*(volatile typeof(x) *)&(x))
#define IDN_WRITE_ONCE(x, v) (*(volatile typeof(x) *)&(x) = (v))
#else	/* userspace works on the mapped tables beside the dataplane */
#define IDN_READ_ONCE(x) __atomic_load_n(&(x), __ATOMIC_ACQUIRE)
#define IDN_WRITE_ONCE(x, v) __atomic_store_n(&(x), (v), __ATOMIC_RELEASE)
#endif

/* One NH term: (a + ka) * (b + kb), each sum mod 2^32, product to 64 bits. */
#define IDN_NH(a, b, ka, kb) ((__u64)(__u32)((a) + (ka)) * (__u32)((b) + (kb)))

/*
 * The key words: the seed's, xored with fixed constants (digits of pi),
 * so that a zero seed (tables nobody seeded: tests, benchmarks) still
 * hashes well.
 */
#define IDN_TK(s, i, c) ((s)->k[i] ^ (__u32)(c))

/*
 * One round of mixing after NH: NH is affine in each word, so keys that
 * differ by a constant step (sequential addresses or ports) would give
 * sets in arithmetic progression - a pattern the CPU's stride prefetcher
 * follows, which would flatter a benchmark and which real traffic does not
 * have. A xorshift and a multiply break it (sets of sequential keys then
 * spread like random ones); idn_mix64()'s second round buys nothing here.
 */
IDN_INLINE __u64 idn_tab_fin(__u64 h)
{
	h ^= h >> 29;
	return h * 0xbf58476d1ce4e5b9ULL;
}

/* Hash of a 5-tuple under @s. Word i is bytes 4i..4i+3 of the key. */
IDN_INLINE __u64 idn_conn_hash(const struct idn_tab_seed *s, const struct idn_flow_key *f)
{
	const idn_u32a *w = (const idn_u32a *)f;
	__u64 h;

	h = IDN_NH(w[0], w[1], IDN_TK(s, 0, 0x243f6a89), IDN_TK(s, 1, 0x85a308d3)) +
	    IDN_NH(w[2], w[3], IDN_TK(s, 2, 0x13198a2f), IDN_TK(s, 3, 0x03707345)) +
	    IDN_NH(w[4], w[5], IDN_TK(s, 4, 0xa4093823), IDN_TK(s, 5, 0x299f31d1)) +
	    IDN_NH(w[6], w[7], IDN_TK(s, 6, 0x082efa99), IDN_TK(s, 7, 0xec4e6c89)) +
	    IDN_NH(w[8], w[9], IDN_TK(s, 8, 0x452821e7), IDN_TK(s, 9, 0x38d01377));
	return idn_tab_fin(h + ((__u64)IDN_TK(s, 10, 0xbe5466cf) << 32 | IDN_TK(s, 11, 0x34e90c6d)));
}

/* Hash of an affinity key (token, class) under @s. */
IDN_INLINE __u64 idn_aff_hash(const struct idn_tab_seed *s, __u64 token, __u32 cls)
{
	__u64 h;

	h = IDN_NH((__u32)token, (__u32)(token >> 32), IDN_TK(s, 0, 0xc0ac29b7),
		   IDN_TK(s, 1, 0xc97c50dd)) +
	    IDN_NH(cls, 0, IDN_TK(s, 2, 0x3f84d5b5), IDN_TK(s, 3, 0xb5470917));
	return idn_tab_fin(h + ((__u64)IDN_TK(s, 10, 0x9216d5d9) << 32 | IDN_TK(s, 11, 0x8979fb1b)));
}

/*
 * Where a hash puts its key: the set (top bits), the check of the tag
 * (the bits below, odd so never an empty tag), the check byte (the
 * check's top byte, never 0) and where the clock starts.
 */
#define IDN_CONN_SET_BITS	15
#define IDN_AFF_SET_BITS	14
_Static_assert((1U << IDN_CONN_SET_BITS) == IDN_CONN_SETS &&
	       (1U << IDN_AFF_SET_BITS) == IDN_AFF_SETS, "set bits");

struct idn_tab_pos {
	__u32 set;
	__u32 check;
	__u8 c8;
	__u8 start;
	__u16 pad;
};

IDN_INLINE void idn_conn_pos(__u64 h, struct idn_tab_pos *p)
{
	p->set = (__u32)(h >> (64 - IDN_CONN_SET_BITS));
	p->check = (__u32)(h >> 16) | 1;
	p->c8 = (__u8)(p->check >> 24) ? (__u8)(p->check >> 24) : 1;
	p->start = (__u8)(h >> 13) & (IDN_CONN_WAYS - 1);
	p->pad = 0;
}

IDN_INLINE void idn_aff_pos(__u64 h, struct idn_tab_pos *p)
{
	p->set = (__u32)(h >> (64 - IDN_AFF_SET_BITS));
	p->check = (__u32)(h >> 32) & 0xffff;
	p->check |= 1;
	p->c8 = (__u8)(p->check >> 8) ? (__u8)(p->check >> 8) : 1;
	p->start = 0;
	p->pad = 0;
}

/* Element of a set's metadata, and the set's index in it. */
IDN_INLINE __u32 idn_conn_meta_elem(__u32 set)
{
	return IDN_CONN_SETS + 1 + set / IDN_CONN_META_PER;
}

IDN_INLINE __u32 idn_aff_meta_elem(__u32 set)
{
	return IDN_AFF_SETS + 1 + set / IDN_AFF_META_PER;
}

/* ---- connections ------------------------------------------------------ */

IDN_INLINE int idn_flow_eq(const struct idn_flow_key *a, const struct idn_flow_key *b)
{
	const idn_u32a *x = (const idn_u32a *)a, *y = (const idn_u32a *)b;

	return !((x[0] ^ y[0]) | (x[1] ^ y[1]) | (x[2] ^ y[2]) | (x[3] ^ y[3]) |
		 (x[4] ^ y[4]) | (x[5] ^ y[5]) | (x[6] ^ y[6]) | (x[7] ^ y[7]) |
		 (x[8] ^ y[8]) | (x[9] ^ y[9]));
}

/* Is way @w of @s the entry of @k (check @check)? Its tag in *tag. */
IDN_INLINE int idn_ct_is(const struct idn_conn_set *s, int w, const struct idn_flow_key *k,
			 __u32 check, __u64 *tag)
{
	const struct idn_conn_slot *e = &s->way[w & (IDN_CONN_WAYS - 1)];
	__u64 t = IDN_READ_ONCE(e->tag);

	*tag = t;
	return (__u32)(t >> 32) == check && idn_flow_eq(&e->key, k);
}

/*
 * idn_ct_lookup - the way of @k in set @s with metadata @m, or -1; its tag
 * (check << 32 | node) in *tag. With @use, a way found is marked used
 * (a write only when it was not: the set's clock passes it once more).
 * The dataplane marks here, where the way is a constant of the unrolled
 * loop: an index carried out of the loop would be a different verifier
 * state for each way, through everything that follows.
 */
IDN_INLINE int idn_ct_lookup(const struct idn_conn_set *s, struct idn_tab_meta *m,
			     const struct idn_flow_key *k, const struct idn_tab_pos *p, __u64 *tag,
			     const int use)
{
	IDN_UNROLL
	for (int w = 0; w < IDN_CONN_WAYS; w++)
		if (m->check[w] == p->c8 && idn_ct_is(s, w, k, p->check, tag)) {
			if (use && !m->use[w])
				m->use[w] = 1;
			return w;
		}
	return -1;
}

/* idn_ct_find - idn_ct_lookup() without marking. */
IDN_INLINE int idn_ct_find(const struct idn_conn_set *s, const struct idn_tab_meta *m,
			   const struct idn_flow_key *k, const struct idn_tab_pos *p, __u64 *tag)
{
	return idn_ct_lookup(s, (struct idn_tab_meta *)m, k, p, tag, 0);
}

/*
 * idn_ct_victim - the way an entry for @k takes: its own (a re-insert
 * replaces it), else an empty one, else the clock's choice (which clears
 * the use bytes it passes). @noexist: -1 when @k has a way already.
 */
IDN_INLINE int idn_ct_victim(const struct idn_conn_set *s, struct idn_tab_meta *m,
			     const struct idn_flow_key *k, const struct idn_tab_pos *p,
			     int noexist)
{
	int empty = -1, w = 0, i;
	__u64 tag;

	IDN_UNROLL
	for (i = 0; i < IDN_CONN_WAYS; i++) {
		__u8 c = m->check[i];

		if (c == p->c8 && idn_ct_is(s, i, k, p->check, &tag))
			return noexist ? -1 : i;
		if (!c && empty < 0)
			empty = i;
	}
	if (empty >= 0)
		return empty;
	IDN_UNROLL
	for (i = 0; i < IDN_CONN_WAYS; i++) {
		w = (p->start + i) & (IDN_CONN_WAYS - 1);
		if (!m->use[w])
			break;
		m->use[w] = 0;
	}
	/* every way was used since the clock last passed: its start goes */
	if (i == IDN_CONN_WAYS)
		w = p->start;
	return w & (IDN_CONN_WAYS - 1);
}

/* Write an entry into way @w: the slot, its tag last, then the metadata. */
IDN_INLINE void idn_ct_write(struct idn_conn_set *s, struct idn_tab_meta *m, int w,
			     const struct idn_flow_key *k, const struct idn_tab_pos *p,
			     __u32 node, __u32 generation, __u32 cap)
{
	struct idn_conn_slot *e = &s->way[w & (IDN_CONN_WAYS - 1)];

	e->key = *k;
	e->generation = generation;
	e->cap = cap;
	IDN_WRITE_ONCE(e->tag, (__u64)p->check << 32 | node);
	m->use[w & (IDN_CONN_WAYS - 1)] = 0;
	m->check[w & (IDN_CONN_WAYS - 1)] = p->c8;
}

/* Empty way @w (metadata first: readers stop looking there). */
IDN_INLINE void idn_ct_clear(struct idn_conn_set *s, struct idn_tab_meta *m, int w)
{
	m->check[w & (IDN_CONN_WAYS - 1)] = 0;
	IDN_WRITE_ONCE(s->way[w & (IDN_CONN_WAYS - 1)].tag, 0);
}

/* ---- affinity --------------------------------------------------------- */

/* idn_aff_find - the way of (@token, @p) in set @s, or -1; its tag in *tag. */
IDN_INLINE int idn_aff_find(const struct idn_aff_set *s, const struct idn_tab_meta *m,
			    __u64 token, const struct idn_tab_pos *p, __u64 *tag)
{
	IDN_UNROLL
	for (int w = 0; w < IDN_AFF_WAYS; w++) {
		if (m->check[w] == p->c8) {
			__u64 t = IDN_READ_ONCE(s->way[w].tag);

			if (IDN_AFF_TAG_CHECK(t) == p->check &&
			    IDN_READ_ONCE(s->way[w].token) == token) {
				*tag = t;
				return w;
			}
		}
	}
	return -1;
}

/*
 * idn_aff_put - (@token, @p) -> @node, used @now, into way @way when the
 * caller found the token there (idn_aff_find()), else its own way, an
 * empty one or the one used longest ago (by the metadata's low byte of
 * the last use).
 */
IDN_INLINE void idn_aff_put(struct idn_aff_set *s, struct idn_tab_meta *m, int way,
			    __u64 token, const struct idn_tab_pos *p, __u32 node, __u32 now)
{
	__u32 oldest = 0, age;
	__u64 tag;
	int w = way;

	if (w < 0) {
		way = 0;
		w = idn_aff_find(s, m, token, p, &tag);
		IDN_UNROLL
		for (int i = 0; i < IDN_AFF_WAYS; i++) {
			/* an empty way is older than any */
			age = m->check[i] ? (__u8)((__u8)now - m->use[i]) : 0x100;
			if (w < 0 && age > oldest) {
				oldest = age;
				way = i;
			}
		}
		if (w >= 0)
			way = w;
	}
	w = way & (IDN_AFF_WAYS - 1);
	IDN_WRITE_ONCE(s->way[w].token, token);
	IDN_WRITE_ONCE(s->way[w].tag, IDN_AFF_TAG(p->check, node, now));
	m->use[w] = (__u8)now;
	m->check[w] = p->c8;
}

#endif /* __IDN_LIB_CTAB_H */
