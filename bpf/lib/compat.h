/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * compat.h - what lets bpf/lib compile both as BPF and as userspace C.
 *
 * Only ctx-free logic (parsing over data/data_end pointers, descriptor
 * decoding, selection) may rely on this; anything touching an xdp_md or a
 * __sk_buff lives in steer.h, which is BPF-only.
 */
#ifndef __IDN_LIB_COMPAT_H
#define __IDN_LIB_COMPAT_H

#ifdef __bpf__
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#define idn_htons(x)	bpf_htons(x)
#define idn_ntohs(x)	bpf_ntohs(x)
#define idn_htonl(x)	bpf_htonl(x)
#define idn_ntohl(x)	bpf_ntohl(x)
#define IDN_USERSPACE	0
#else
#include <stddef.h>
#include <string.h>
#include <arpa/inet.h>
#include <linux/types.h>
#ifndef __always_inline
#define __always_inline inline __attribute__((always_inline))
#endif
#define idn_htons(x)	htons(x)
#define idn_ntohs(x)	ntohs(x)
#define idn_htonl(x)	htonl(x)
#define idn_ntohl(x)	ntohl(x)
#define IDN_USERSPACE	1
#endif

#define IDN_INLINE static __always_inline

/* Hide a value from the compiler so a mask after it is kept for the verifier. */
#ifdef __bpf__
#define IDN_BARRIER_VAR(v) asm volatile("" : "+r"(v))
#else
#define IDN_BARRIER_VAR(v) do { } while (0)
#endif

/*
 * A 16-bit big-endian field in host order, with its range visible to the
 * verifier: the 6.1 verifier forgets the range of a byte swap, and a
 * length used in packet pointer arithmetic must be bounded.
 */
static __always_inline __u32 idn_ntohs_bounded(__u16 v)
{
	__u32 x = idn_ntohs(v);

	IDN_BARRIER_VAR(x);
	return x & 0xffff;
}

/*
 * A global BPF function in BPF (its own stack frame, verified once, apart
 * from its callers), plain static inline elsewhere.
 */
#ifdef __bpf__
#define IDN_SUBPROG __attribute__((noinline))
#else
#define IDN_SUBPROG static inline
#endif

/* Keep a loop rolled (BPF stack and verifier cost); no-op elsewhere. */
#ifdef __clang__
#define IDN_NO_UNROLL _Pragma("clang loop unroll(disable)")
#define IDN_UNROLL _Pragma("unroll")
#else
#define IDN_NO_UNROLL
#define IDN_UNROLL
#endif

#ifndef likely
#define likely(x)	__builtin_expect(!!(x), 1)
#define unlikely(x)	__builtin_expect(!!(x), 0)
#endif

#include <linux/idn.h>


/* 64-bit mixer (splitmix64 finaliser): tie-breaks and address hashes. */
IDN_INLINE __u64 idn_mix64(__u64 x)
{
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ULL;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebULL;
	x ^= x >> 31;
	return x;
}

#endif /* __IDN_LIB_COMPAT_H */
