/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * rss.h - the outer source address of an encapsulated packet, per flow.
 *
 * A node's NIC spreads received packets over its queues by a hash of the
 * outer header (RSS). With one outer source for every packet the router
 * sends, all IDN traffic to a node lands on one queue and one CPU. With a
 * pool (dp set src4 ADDR/LEN, src6 ADDR6/LEN), the low host bits of the
 * outer source come from the inner flow: one flow keeps one source (its
 * packets stay in order on one queue), different flows spread. Node-side
 * decapsulation does not look at the outer source.
 *
 * Header-only; the dataplane and its tests compute the same address.
 */
#ifndef __IDN_LIB_RSS_H
#define __IDN_LIB_RSS_H

#include "lib/compat.h"

/* A hash of the client's side of the flow (address, port) and the port it asked for. */
IDN_INLINE __u32 idn_rss_hash(const struct idn_flow_key *f)
{
	__u64 h = ((__u64)(f->saddr[0] ^ f->saddr[1] ^ f->saddr[2] ^ f->saddr[3]) << 32) |
		  ((__u32)f->sport << 16 | f->dport);

	return (__u32)(idn_mix64(h) >> 32);
}

/*
 * base with its low @bits (0..32) replaced by the hash's: network order in
 * and out; bits 0 leaves base as it is.
 */
IDN_INLINE __u32 idn_rss_addr(__u32 base, __u8 bits, __u32 hash)
{
	__u32 mask;

	if (!bits)
		return base;
	mask = bits >= 32 ? 0xffffffffU : (1U << bits) - 1;
	return (base & ~idn_htonl(mask)) | idn_htonl(hash & mask);
}

#endif /* __IDN_LIB_RSS_H */
