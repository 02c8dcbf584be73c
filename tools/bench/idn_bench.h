/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * idn_bench.h - what the benchmark runner (tools/bench/idn_bench.c) and
 * its BPF wrappers (bpf/idn_bench.bpf.c) share: the restore state.
 *
 * BPF_PROG_TEST_RUN with a large repeat runs the program again and again
 * on the same buffer without resetting it. The wrappers therefore first
 * put the pristine frame back (undo any head/tail move, rewrite every
 * byte from pkt[]), optionally bump the source port or address so that
 * every iteration is a new flow, and only then run the code under test.
 */
#ifndef __IDN_BENCH_H
#define __IDN_BENCH_H

#include <linux/types.h>

#define IDN_BENCH_PKT_MAX	256	/* largest pristine frame, bytes */
#define IDN_BENCH_MIN_LEN	14	/* an Ethernet header at least */
#define IDN_BENCH_HEAD_MAX	256	/* |head move| the restore accepts */

/* idn_bench_state.flags */
#define IDN_BENCH_F_SPORT	0x1	/* new source port every iteration */
#define IDN_BENCH_F_SADDR	0x2	/* new IPv4 source address every iteration */

/*
 * One entry (ARRAY idn_bench_st, key 0). The runner writes it before
 * every BPF_PROG_TEST_RUN call with base = 0; the first iteration of the
 * call records where the pristine frame starts (base), later iterations
 * move the head back there. base and cur hold kernel addresses (written
 * by BPF, only compared with each other).
 */
struct idn_bench_state {
	__u64 base;		/* ctx->data of the pristine frame, 0 = unseen */
	__u64 cur;		/* scratch: this iteration's ctx->data */
	__u64 errors;		/* restores that failed (must stay 0) */
	__u32 len;		/* pristine frame length */
	__u32 flags;		/* IDN_BENCH_F_* */
	__u32 ctr;		/* iteration counter for the bumps */
	__u16 sport_off;	/* offset of the TCP/UDP source port in pkt */
	__u16 saddr_off;	/* offset of the IPv4 source address in pkt */
	__u32 saddr0;		/* base source address (network order) */
	__u16 sport0;		/* base source port (host order) */
	__u16 pad;
	__u8 pkt[IDN_BENCH_PKT_MAX];
};

#endif /* __IDN_BENCH_H */
