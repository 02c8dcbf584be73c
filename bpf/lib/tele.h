/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * tele.h - a node's telemetry datagram (struct idn_telemetry) onto its
 * node entry: the part of steer.h's telemetry() that does not depend on
 * the packet, so that userspace (tools/eval's simulator, unit tests)
 * checks and applies the agent's datagrams exactly as the router does.
 *
 *   idn_siphash24()   SipHash-2-4 (Aumasson, Bernstein: "SipHash: a fast
 *                     short-input PRF", 2012), written here from the paper
 *                     for BPF; any length in userspace, 32 bytes in BPF
 *   idn_tele_check()  the datagram's own fields (magic, version, ranges)
 *   idn_tele_auth()   the node's key (struct idn_tele_key): generation,
 *                     MAC, then the replay window under that key
 *   idn_tele_load()   the load fields, health when given, seq and stamp;
 *                     the router's own charge (idn_node_charge(),
 *                     select.h) is superseded: the node now counts those;
 *                     version 3: the other routers' admission rate
 *                     (idn_others_rate()) for T_queue until the next one
 *   idn_tele_apply()  replay guard on the node entry alone (serial-number
 *                     order of seq), then idn_tele_load(): the simulator's
 *                     path, which has no keys
 *   idn_tele_rx()     BPF: the key looked up in idn_tele_keys, auth, load
 *
 * Replay and restarts (docs/security.md, "Telemetry authentication"): the
 * window lives with the key. A new key generation (the controller hands
 * the node a fresh key at every registration) starts a fresh window, so
 * a node that restarts with a lower sequence gets in as soon as it holds
 * its new key, while datagrams recorded under the old key fail the MAC.
 *
 * The caller has looked the node up and checked that the datagram came
 * from the node's own locator (steer.h does both in BPF).
 */
#ifndef __IDN_LIB_TELE_H
#define __IDN_LIB_TELE_H

#include "lib/compat.h"

#define IDN_ROTL64(x, b) (((x) << (b)) | ((x) >> (64 - (b))))
#define IDN_SIPROUND(v0, v1, v2, v3) do {					\
	v0 += v1; v1 = IDN_ROTL64(v1, 13); v1 ^= v0; v0 = IDN_ROTL64(v0, 32);	\
	v2 += v3; v3 = IDN_ROTL64(v3, 16); v3 ^= v2;				\
	v0 += v3; v3 = IDN_ROTL64(v3, 21); v3 ^= v0;				\
	v2 += v1; v1 = IDN_ROTL64(v1, 17); v1 ^= v2; v2 = IDN_ROTL64(v2, 32);	\
} while (0)

/* 8 bytes as a little-endian word, whatever the host's order */
IDN_INLINE __u64 idn_le64(const __u8 *b)
{
	return (__u64)b[0] | (__u64)b[1] << 8 | (__u64)b[2] << 16 | (__u64)b[3] << 24 |
	       (__u64)b[4] << 32 | (__u64)b[5] << 40 | (__u64)b[6] << 48 | (__u64)b[7] << 56;
}

IDN_INLINE void idn_put_le64(__u8 *b, __u64 v)
{
	for (int i = 0; i < 8; i++)
		b[i] = v >> (8 * i);
}

/* the 16 key bytes as SipHash's k0, k1 */
IDN_INLINE void idn_siphash_key(const __u8 key[16], __u64 *k0, __u64 *k1)
{
	*k0 = idn_le64(key);
	*k1 = idn_le64(key + 8);
}

/*
 * SipHash-2-4 of m[0..len) under (k0, k1). In BPF len must be a constant
 * (the loops unroll): the dataplane hashes the datagram's 32 bytes.
 */
IDN_INLINE __u64 idn_siphash24(__u64 k0, __u64 k1, const __u8 *m, __u32 len)
{
	__u64 v0 = k0 ^ 0x736f6d6570736575ULL, v1 = k1 ^ 0x646f72616e646f6dULL;
	__u64 v2 = k0 ^ 0x6c7967656e657261ULL, v3 = k1 ^ 0x7465646279746573ULL;
	__u64 b = (__u64)len << 56, mi;
	__u32 i, end = len & ~7U;

	IDN_UNROLL
	for (i = 0; i < end; i += 8) {
		mi = idn_le64(m + i);
		v3 ^= mi;
		IDN_SIPROUND(v0, v1, v2, v3);
		IDN_SIPROUND(v0, v1, v2, v3);
		v0 ^= mi;
	}
	/* the last 0..7 bytes, below the length byte */
	IDN_UNROLL
	for (i = 0; i < (len & 7); i++)
		b |= (__u64)m[end + i] << (8 * i);
	v3 ^= b;
	IDN_SIPROUND(v0, v1, v2, v3);
	IDN_SIPROUND(v0, v1, v2, v3);
	v0 ^= b;
	v2 ^= 0xff;
	IDN_SIPROUND(v0, v1, v2, v3);
	IDN_SIPROUND(v0, v1, v2, v3);
	IDN_SIPROUND(v0, v1, v2, v3);
	IDN_SIPROUND(v0, v1, v2, v3);
	return v0 ^ v1 ^ v2 ^ v3;
}

/*
 * The MAC a datagram must carry under (k0, k1): version 3 over bytes
 * 0..39, version 2 over bytes 0..31 (the caller checked the version).
 */
IDN_INLINE __u64 idn_tele_mac(__u64 k0, __u64 k1, const struct idn_telemetry *t)
{
	if (t->version == IDN_TELE_V2)
		return idn_siphash24(k0, k1, (const __u8 *)t, IDN_TELE_V2_MAC_OFF);
	return idn_siphash24(k0, k1, (const __u8 *)t, IDN_TELE_MAC_OFF);
}

/* the MAC the datagram carries: at byte 32 in version 2, 40 in version 3 */
IDN_INLINE __u64 idn_tele_mac_got(const struct idn_telemetry *t)
{
	if (t->version == IDN_TELE_V2)
		return idn_le64((const __u8 *)t + IDN_TELE_V2_MAC_OFF);
	return idn_le64(t->mac);
}

/* bytes a datagram of its version needs (the caller read byte 4) */
IDN_INLINE __u32 idn_tele_len(const struct idn_telemetry *t)
{
	return t->version == IDN_TELE_V2 ? IDN_TELE_V2_LEN : sizeof(struct idn_telemetry);
}

IDN_INLINE int idn_tele_check(const struct idn_telemetry *t)
{
	if (t->magic != idn_htonl(IDN_TELE_MAGIC) ||
	    (t->version != IDN_TELE_VERSION && t->version != IDN_TELE_V2) ||
	    idn_ntohl(t->node) >= IDN_MAX_NODES || idn_ntohs(t->load) > 1000 ||
	    idn_ntohs(t->kv_use) > 1000 || t->health > IDN_HEALTH_DOWN)
		return IDN_DROP_BAD_TELEMETRY;
	/* version 3: admitted requests without a span, or tokens without requests */
	if (t->version == IDN_TELE_VERSION &&
	    ((t->admit_reqs && !t->span_ms) || (t->admit_tokens && !t->admit_reqs)))
		return IDN_DROP_BAD_TELEMETRY;
	return 0;
}

/*
 * The key entry of the datagram's node: its generation, the MAC, then the
 * window (serial-number order of seq, only once a datagram was accepted
 * under this key). Writes the window on success. A MAC compared in
 * variable time leaks nothing useful here: the forger learns only
 * whether a whole 64-bit guess was right.
 */
IDN_INLINE int idn_tele_auth(struct idn_tele_key *k, const struct idn_telemetry *t)
{
	__u32 seq = idn_ntohl(t->seq);

	if (!(k->flags & IDN_TKEY_F_VALID))
		return IDN_DROP_TELE_NOKEY;
	if (idn_ntohl(t->key_id) != k->key_id ||
	    idn_tele_mac(k->k0, k->k1, t) != idn_tele_mac_got(t))
		return IDN_DROP_TELE_MAC;
	if ((k->flags & IDN_TKEY_F_SEEN) && (__s32)(seq - k->seq) <= 0)
		return IDN_DROP_TELE_REPLAY;
	/*
	 * Two CPUs may take two datagrams at once and both pass: each is
	 * the node's own, MAC-checked, at most one interval apart.
	 */
	k->seq = seq;
	k->flags |= IDN_TKEY_F_SEEN;
	return 0;
}

/*
 * idn_others_rate - the other routers' admission rate to a node, from a
 * version 3 datagram: the requests it admitted over its last interval less
 * this router's own, the @charged flows of about the same interval and the
 * *carry of the one before that the node had not counted yet, at the
 * interval's mean tokens per request; in tokens per tick << 16 over *span
 * ticks, the interval. 0 without a span, or when this router sent them
 * all; *carry is updated.
 */
IDN_INLINE __u32 idn_others_rate(const struct idn_telemetry *t, __u32 charged, __u16 *carry,
				  __u16 *span)
{
	__u32 reqs = idn_ntohs(t->admit_reqs), ms = idn_ntohs(t->span_ms), ticks;
	__u64 own = (__u64)charged + *carry, tok, rate;

	*span = 0;
	if (t->version != IDN_TELE_VERSION || !ms) {
		*carry = 0;
		return 0;
	}
	if (reqs <= own) {
		/*
		 * ours still on their way (a request charged just before the
		 * datagram left reaches the node after it): the node counts
		 * them in its next interval, so they are ours there too. At
		 * most this interval's own flows carry over: a request the
		 * node never admits is forgotten after one interval
		 */
		own -= reqs;
		if (own > charged)
			own = charged;
		*carry = own > 0xffff ? 0xffff : (__u16)own;
		return 0;
	}
	*carry = 0;
	ticks = IDN_MS_TICKS(ms);
	if (!ticks)
		ticks = 1;
	*span = ticks;
	/* tok < 2^32, so tok << 16 < 2^48: no wrap; the rate saturates */
	tok = (__u64)idn_ntohl(t->admit_tokens) * (reqs - own) / reqs;
	rate = (tok << 16) / ticks;
	return rate > 0xffffffffULL ? 0xffffffffU : (__u32)rate;
}

IDN_INLINE void idn_tele_load(struct idn_node *n, const struct idn_telemetry *t, __u32 now_s,
			      __u32 now_tick)
{
	__u16 span, carry = n->others_carry;

	n->others_rate = idn_others_rate(t, n->charged_reqs, &carry, &span);
	n->others_carry = carry;
	n->others_span = span;
	n->tele_tick = now_tick;
	n->queue_depth = idn_ntohl(t->queue_depth);
	n->pending_tokens = idn_ntohl(t->pending_tokens);
	n->load = idn_ntohs(t->load);
	n->kv_use = idn_ntohs(t->kv_use);
	if (t->health)
		n->health = t->health;
	n->tele_seq = idn_ntohl(t->seq);
	n->tele_s = now_s;
	/*
	 * A charge added on another CPU between the datagram's sending and
	 * this store is lost: at most the requests of one network delay.
	 */
	n->charged_tokens = 0;
	n->charged_reqs = 0;
}

IDN_INLINE int idn_tele_apply(struct idn_node *n, const struct idn_telemetry *t, __u32 now_s,
			      __u32 now_tick)
{
	__u32 seq = idn_ntohl(t->seq);

	if (n->tele_s && (__s32)(seq - n->tele_seq) <= 0)
		return IDN_DROP_TELE_REPLAY;
	idn_tele_load(n, t, now_s, now_tick);
	return 0;
}

#ifdef __bpf__
/* A datagram from node @id's locator onto its entry @n (steer.h: telemetry()). */
IDN_INLINE int idn_tele_rx(struct idn_node *n, __u32 id, const struct idn_telemetry *t,
			   __u32 now_s, __u32 now_tick)
{
	struct idn_tele_key *k = bpf_map_lookup_elem(&idn_tele_keys, &id);
	int r;

	if (!k)
		return IDN_DROP_TELE_NOKEY;
	r = idn_tele_auth(k, t);
	if (r)
		return r;
	idn_tele_load(n, t, now_s, now_tick);
	return 0;
}
#endif

#endif /* __IDN_LIB_TELE_H */
