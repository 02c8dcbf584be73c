// SPDX-License-Identifier: GPL-2.0
/*
 * idn_bench.bpf.c - benchmark wrappers around the steering fast path, for
 * BPF_PROG_TEST_RUN in loop mode (one call, large repeat). Not attached
 * anywhere; tools/bench/idn_bench loads it with private, unpinned maps.
 *
 *   idn_bench_steer  restore the pristine frame, then run the XDP steering
 *                    logic of lib/steer.h (the same code as idn_xdp)
 *   idn_bench_floor  the same restore, then swap MACs and XDP_TX
 *   idn_floor_plain  swap MACs and XDP_TX, nothing else (the floor)
 *
 * The kernel does not reset the frame between repeats, so the steering
 * program would see its own output (an IPIP packet, an RST) from the
 * second iteration on. The restore undoes the head and tail moves of the
 * previous iteration, rewrites every byte from idn_bench_st and bumps the
 * source port or address when the case asks for a new flow. Its cost is
 * measured by idn_bench_floor and cancels out (see docs/benchmarks.md).
 * Everything here belongs to the benchmark; no steering logic lives here.
 */
#include "lib/compat.h"
#include "lib/maps.h"
#if __has_include("lib/steer.h")
#include "lib/steer.h"
#define IDN_BENCH_HAVE_STEER 1
#endif
#include "../tools/bench/idn_bench.h"

IDN_ASSERT_ABI();

/* Pristine frame and restore state, written by the runner (key 0). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct idn_bench_state);
} idn_bench_st SEC(".maps");

/* 1 when this object carries the steering logic (runner checks it). */
const volatile __u32 idn_bench_have_steer = IDN_BENCH_HAVE_STEER + 0;

/*
 * A new source address needs a new IPv4 header checksum (the steering
 * program verifies it): recompute it over the 20-byte header around
 * saddr_off.
 */
static __always_inline void bench_ip4_csum(struct idn_bench_state *st)
{
	__u32 l3 = st->saddr_off - 12;
	__u64 sum = 0;

	if (l3 > IDN_BENCH_PKT_MAX - 20 || (st->pkt[l3] >> 4) != 4)
		return;
	st->pkt[l3 + 10] = 0;
	st->pkt[l3 + 11] = 0;
	for (int i = 0; i < 20; i += 2)
		sum += (__u16)(st->pkt[l3 + i] << 8 | st->pkt[l3 + i + 1]);
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	st->pkt[l3 + 10] = (__u8)(~sum >> 8);
	st->pkt[l3 + 11] = (__u8)~sum;
}

static __always_inline void bench_bump(struct idn_bench_state *st)
{
	__u32 c = st->ctr++;
	__u32 off;

	if (st->flags & IDN_BENCH_F_SPORT) {
		off = st->sport_off;
		if (off <= IDN_BENCH_PKT_MAX - 2)
			*(__u16 *)&st->pkt[off] = bpf_htons((__u16)(st->sport0 + c));
		/* past 65536 ports, move to the next source address */
		c >>= 16;
		if (c && (off = st->saddr_off) <= IDN_BENCH_PKT_MAX - 4) {
			*(__u32 *)&st->pkt[off] = bpf_htonl(bpf_ntohl(st->saddr0) + c);
			bench_ip4_csum(st);
		}
	} else if (st->flags & IDN_BENCH_F_SADDR) {
		off = st->saddr_off;
		if (off <= IDN_BENCH_PKT_MAX - 4) {
			*(__u32 *)&st->pkt[off] = bpf_htonl(bpf_ntohl(st->saddr0) + c);
			bench_ip4_csum(st);
		}
	}
}

/*
 * bench_restore - put the pristine frame back into ctx.
 * The head and tail helpers run on every iteration, moved or not, so the
 * restore costs the same in idn_bench_steer and idn_bench_floor.
 * Return: 0, or -1 after counting the failure in st->errors.
 */
static __always_inline int bench_restore(struct xdp_md *ctx)
{
	struct idn_bench_state *st;
	volatile __u64 *vcur;
	__u32 key = 0, len;
	__s64 dhead;
	__u64 cur;
	long now;

	st = bpf_map_lookup_elem(&idn_bench_st, &key);
	if (!st)
		return -1;
	/*
	 * Where does the frame start now? Storing the packet pointer and
	 * reading it back turns it into a plain number (needs CAP_PERFMON,
	 * as BPF_PROG_TEST_RUN does anyway).
	 */
	vcur = &st->cur;
	*vcur = (__u64)(long)ctx->data;
	cur = *vcur;
	if (!st->base)
		st->base = cur;		/* first iteration: frame is pristine */
	dhead = (__s64)(st->base - cur);	/* > 0: headers were pushed */
	if (dhead < -IDN_BENCH_HEAD_MAX || dhead > IDN_BENCH_HEAD_MAX)
		goto fail;
	if (bpf_xdp_adjust_head(ctx, (int)dhead))
		goto fail;
	now = (long)ctx->data_end - (long)ctx->data;
	asm volatile("" : "+r"(now));	/* keep end - data one subtraction */
	len = st->len;
	if (len < IDN_BENCH_MIN_LEN || len > IDN_BENCH_PKT_MAX)
		goto fail;
	if (bpf_xdp_adjust_tail(ctx, (int)len - (int)now))
		goto fail;
	bench_bump(st);
	if (bpf_xdp_store_bytes(ctx, 0, st->pkt, len))
		goto fail;
	return 0;
fail:
	__sync_fetch_and_add(&st->errors, 1);
	return -1;
}

static __always_inline int mac_swap_tx(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	__u8 tmp[ETH_ALEN];

	if ((void *)(eth + 1) > data_end)
		return XDP_DROP;
	__builtin_memcpy(tmp, eth->h_dest, ETH_ALEN);
	__builtin_memcpy(eth->h_dest, eth->h_source, ETH_ALEN);
	__builtin_memcpy(eth->h_source, tmp, ETH_ALEN);
	return XDP_TX;
}

SEC("xdp")
int idn_bench_steer(struct xdp_md *ctx)
{
	if (bench_restore(ctx))
		return XDP_ABORTED;
#ifdef IDN_BENCH_HAVE_STEER
	return idn_steer(ctx, IDN_HOOK_XDP);
#else
	return XDP_ABORTED;
#endif
}

SEC("xdp")
int idn_bench_floor(struct xdp_md *ctx)
{
	if (bench_restore(ctx))
		return XDP_ABORTED;
	return mac_swap_tx(ctx);
}

SEC("xdp")
int idn_floor_plain(struct xdp_md *ctx)
{
	return mac_swap_tx(ctx);
}

char _license[] SEC("license") = "GPL";
