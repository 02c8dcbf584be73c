/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * tsopt.h - the TCP timestamp cookie (docs/wire-format.md, "TCP timestamp
 * cookie"): find the timestamp option in a copied TCP option list, stamp
 * a node's cookie into a TSval, read it back from a TSecr.
 *
 * Shared by the node's egress program (idn_node.bpf.c, which stamps), the
 * router (steer.h / stateless.h, which reads) and userspace tests. Only
 * the option list is seen here, copied into a struct idn_tsbuf; nothing
 * here touches a packet or a map.
 */
#ifndef __IDN_LIB_TSOPT_H
#define __IDN_LIB_TSOPT_H

#include "lib/compat.h"

#define IDN_TCPOPT_TS		8	/* RFC 7323 timestamp option */
#define IDN_TCPOPT_TS_LEN	10
#define IDN_TSBUF_MASK		63
#define IDN_TSOPT_SPACE		40	/* max TCP option bytes */

/* A copied option list and the state of one walk over it. */
struct idn_tsbuf {
	__u8 b[IDN_TSBUF_MASK + 1];
	__u32 len;		/* option bytes in b (<= IDN_TSOPT_SPACE) */
	__u32 off;		/* next option */
	__s32 found;		/* offset of the timestamp option, or -1 */
	__u32 pad;
};

/* One option per call; return 1 to stop (bpf_loop callback contract). */
static long idn_tswalk_step(__u32 i, void *ctx)
{
	struct idn_tsbuf *w = ctx;
	__u32 off = w->off;
	__u8 kind, olen;

	if (off >= w->len || off >= IDN_TSOPT_SPACE)
		return 1;
	kind = w->b[off & IDN_TSBUF_MASK];
	if (kind == 0)			/* end of option list */
		return 1;
	if (kind == 1) {		/* NOP */
		w->off = off + 1;
		return 0;
	}
	if (off + 2 > w->len)
		return 1;		/* malformed: no timestamp */
	olen = w->b[(off + 1) & IDN_TSBUF_MASK];
	if (olen < 2 || off + olen > w->len)
		return 1;
	if (kind == IDN_TCPOPT_TS) {
		if (olen == IDN_TCPOPT_TS_LEN)
			w->found = (__s32)off;
		return 1;
	}
	w->off = off + olen;
	return 0;
}

/*
 * idn_tsopt_find - the offset in w->b of the timestamp option (kind 8,
 * length 10), or -1 when the list has none or is malformed before it.
 * Linux puts it first (NOP NOP TS): that layout is recognised without a
 * walk. In BPF the walk runs under bpf_loop (see parse.h).
 */
IDN_INLINE int idn_tsopt_find(struct idn_tsbuf *w)
{
	if (w->len < IDN_TCPOPT_TS_LEN || w->len > IDN_TSOPT_SPACE)
		return -1;
	if (w->b[0] == 1 && w->b[1] == 1 && w->b[2] == IDN_TCPOPT_TS &&
	    w->b[3] == IDN_TCPOPT_TS_LEN && w->len >= 12)
		return 2;
	w->off = 0;
	w->found = -1;
#ifdef __bpf__
	bpf_loop(IDN_TSOPT_SPACE, idn_tswalk_step, w, 0);
#else
	for (__u32 i = 0; i < IDN_TSOPT_SPACE; i++)
		if (idn_tswalk_step(i, w))
			break;
#endif
	return w->found;
}

/* Big-endian 32-bit word at @off of the option buffer (off < 30). */
IDN_INLINE __u32 idn_tsbuf_word(const struct idn_tsbuf *w, __u32 off)
{
	return (__u32)w->b[off & IDN_TSBUF_MASK] << 24 |
	       (__u32)w->b[(off + 1) & IDN_TSBUF_MASK] << 16 |
	       (__u32)w->b[(off + 2) & IDN_TSBUF_MASK] << 8 |
	       (__u32)w->b[(off + 3) & IDN_TSBUF_MASK];
}

/*
 * idn_ts_stamp - TSval carrying @cookie: the next value at or above
 * @tsval whose low IDN_TS_COOKIE_BITS bits are the cookie. Monotonic in
 * @tsval (a later TSval never stamps lower) and never below it, so the
 * client's PAWS check holds also against a segment that was not stamped
 * (a syncookie SYN+ACK); the node's clock as the client sees it runs at
 * most IDN_TS_COOKIE_MASK ticks ahead.
 */
IDN_INLINE __u32 idn_ts_stamp(__u32 tsval, __u32 cookie)
{
	return tsval + ((cookie - tsval) & IDN_TS_COOKIE_MASK);
}

/* The cookie a stamped TSval echoed as @tsecr carries. */
IDN_INLINE __u32 idn_ts_cookie(__u32 tsecr)
{
	return tsecr & IDN_TS_COOKIE_MASK;
}

#endif /* __IDN_LIB_TSOPT_H */
