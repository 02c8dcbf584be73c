/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * prefix.h - the prefix-aware affinity token (header-only): what a client
 * stamps with idn_stamp_prefix_token() (stamp.h, idn-stamp prefix-file)
 * and what an agent computes from the prompt it serves, so that both name
 * the same prefix root with the same token (agent/http.c, state.c).
 */
#ifndef __IDN_TOOLS_STAMP_PREFIX_H
#define __IDN_TOOLS_STAMP_PREFIX_H

#include <stddef.h>
#include <linux/types.h>

#define IDN_STAMP_PREFIX_BYTES	2048

/*
 * The first @block bytes of @prompt (all of it when shorter; @block 0:
 * IDN_STAMP_PREFIX_BYTES): 64-bit FNV-1a, then the splitmix64 finalizer;
 * never 0 (0 means "no token").
 */
static inline __u64 idn_prefix_token(const void *prompt, size_t len, size_t block)
{
	const unsigned char *p = prompt;
	__u64 h = 0xcbf29ce484222325ULL;

	if (!block)
		block = IDN_STAMP_PREFIX_BYTES;
	if (len > block)
		len = block;
	for (size_t i = 0; i < len; i++)
		h = (h ^ p[i]) * 0x100000001b3ULL;
	h ^= h >> 30;
	h *= 0xbf58476d1ce4e5b9ULL;
	h ^= h >> 27;
	h *= 0x94d049bb133111ebULL;
	h ^= h >> 31;
	return h ? h : 1;
}

#endif /* __IDN_TOOLS_STAMP_PREFIX_H */
