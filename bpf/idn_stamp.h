/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * idn_stamp.h - what the client-side stamping program (idn_stamp.bpf.c)
 * shares with its loader (tools/stamp/): the per-cgroup configuration
 * value and the index of each statistics counter.
 *
 * Maps of idn_stamp.bpf.c:
 *   idn_stamp_conf   ARRAY[1] of struct idn_stamp_conf: the default
 *                    descriptor of the cgroup the program instance is
 *                    attached to (one instance per cgroup).
 *   idn_stamp_sk     SK_STORAGE of struct idn_desc: per-socket descriptor,
 *                    written by an application with its socket fd as the
 *                    key after socket() and before connect(); pinned by
 *                    name so applications find it.
 *   idn_stamp_stats  ARRAY[IDN_STAMP_MAX] of __u64 counters, pinned by name.
 */
#ifndef __IDN_STAMP_H
#define __IDN_STAMP_H

#include <linux/types.h>
#include <linux/idn.h>

#define IDN_STAMP_F_ON		0x01	/* stamp every SYN of the cgroup */

struct idn_stamp_conf {
	struct idn_desc desc;	/* descriptor to stamp (cap 0 = the VIP's) */
	__u32 flags;		/* IDN_STAMP_F_* */
	__be16 dport;		/* only connections to this port; 0 = any */
	__u16 pad;
};

enum idn_stamp_stat {
	IDN_STAMP_CONNECT = 0,	/* connects that will carry the option */
	IDN_STAMP_SOCK,		/* ... with a per-socket descriptor */
	IDN_STAMP_DEFAULT,	/* ... with the cgroup's default descriptor */
	IDN_STAMP_RESERVED,	/* SYN option space reserved */
	IDN_STAMP_NOSPC,	/* bpf_reserve_hdr_opt(): -ENOSPC, SYN left bare */
	IDN_STAMP_RESERVE_ERR,	/* bpf_reserve_hdr_opt(): other error */
	IDN_STAMP_WRITTEN,	/* option written into a SYN */
	IDN_STAMP_WRITE_ERR,	/* bpf_store_hdr_opt() failed */
	IDN_STAMP_NODESC,	/* write callback found no descriptor */
	IDN_STAMP_MAX,
};

#define IDN_STAMP_SK_MAP	"idn_stamp_sk"
#define IDN_STAMP_STATS_MAP	"idn_stamp_stats"

#endif /* __IDN_STAMP_H */
