/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * csum.h - Internet checksums over small fixed-size headers (RFC 1071).
 * Context-free; used to build outer IPv4 headers and TCP resets.
 */
#ifndef __IDN_LIB_CSUM_H
#define __IDN_LIB_CSUM_H

#include "lib/compat.h"

IDN_INLINE __u16 idn_csum_fold(__u64 sum)
{
	sum = (sum & 0xffffffff) + (sum >> 32);
	sum = (sum & 0xffffffff) + (sum >> 32);
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return (__u16)~sum;
}

/* Sum of n 16-bit words (n constant after inlining). */
IDN_INLINE __u64 idn_csum_words(const void *p, int n)
{
	const __u16 *w = p;
	__u64 sum = 0;

	IDN_UNROLL
	for (int i = 0; i < n; i++)
		sum += w[i];
	return sum;
}

/* Sum of the 16-bit halves of @n 32-bit address words (network order). */
IDN_INLINE __u64 idn_addr_sum(const __u32 *a, int n)
{
	__u64 sum = 0;

	IDN_UNROLL
	for (int i = 0; i < n; i++)
		sum += (a[i] & 0xffff) + (a[i] >> 16);
	return sum;
}

/*
 * Unfolded sum of a 20-byte IPv4 header (id 0, ttl 64) from its fields,
 * all in network order except @proto: no need to read the header back.
 */
IDN_INLINE __u64 idn_ip4_csum_sum(__u16 ver_ihl_tos, __u16 tot_len, __u16 frag_off,
				  __u8 proto, __u32 saddr, __u32 daddr)
{
	return (__u64)ver_ihl_tos + tot_len + frag_off + idn_htons((64 << 8) | proto) +
	       (saddr & 0xffff) + (saddr >> 16) + (daddr & 0xffff) + (daddr >> 16);
}

#endif /* __IDN_LIB_CSUM_H */
