// SPDX-License-Identifier: GPL-2.0
/*
 * bpf_node - the node's programs (bpf/idn_node.bpf.c) under
 * BPF_PROG_TEST_RUN: idn_decap learns the inner destinations it
 * decapsulates (idn_ts_addrs), idn_stamp writes the TS cookie into the
 * TSval of segments sent from them (rounded up, low 12 bits = the node
 * id, TCP checksum still right) and leaves everything else alone: other
 * sources, SYN+ACKs, segments without a timestamp, stamping off.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

/* the skeleton's struct is named like the uapi node entry: rename the latter */
#define idn_node idn_node_uapi
#include "lib/pktgen.h"
#include "lib/tap.h"
#include "lib/tsopt.h"
#undef idn_node
#include "bpf/idn_node.skel.h"

static struct idn_node *skel;

static int run(const struct bpf_program *prog, struct pg *p)
{
	LIBBPF_OPTS(bpf_test_run_opts, o, .data_in = p->buf, .data_size_in = (__u32)p->len,
		    .data_out = p->buf, .data_size_out = sizeof(p->buf), .repeat = 1);
	int err = bpf_prog_test_run_opts(bpf_program__fd(prog), &o);

	if (err)
		return -errno;
	p->len = o.data_size_out;
	return (int)o.retval;
}

static void set_cookie(__u32 v)
{
	__u32 k = 0;

	bpf_map_update_elem(bpf_map__fd(skel->maps.idn_ts_cfg), &k, &v, BPF_ANY);
}

/* A reply segment of @f: flags, a timestamp option (Linux's layout, or behind SACK). */
static void reply(struct pg *p, const struct pg_flow *f, uint8_t flags, uint32_t tsval, int sack)
{
	static const uint8_t sackblk[10] = { 5, 10, 0, 0, 0, 1, 0, 0, 0, 2 };

	pg_begin(p, f);
	pg_tcp(p, f->sport, f->dport, flags, 1000, 2000);
	if (sack) {
		pg_opt_nop(p);
		pg_opt_nop(p);
		pg_opt_raw(p, sackblk, sizeof(sackblk));
	}
	pg_opt_nop(p);
	pg_opt_nop(p);
	pg_opt_ts(p, tsval, 0x0badcafe);
	pg_payload_pattern(p, 200);
	pg_finish(p);
}

/* TSval of the segment at p (the only timestamp option), or 0. */
static uint32_t tsval_of(const struct pg *p)
{
	struct idn_tsbuf w;
	int o;

	memset(&w, 0, sizeof(w));
	w.len = (p->buf[p->l4_off + 12] >> 4) * 4 - 20;
	memcpy(w.b, p->buf + p->l4_off + 20, w.len);
	o = idn_tsopt_find(&w);
	return o < 0 ? 0 : idn_tsbuf_word(&w, (__u32)o + 2);
}

/* An IPIP / IP6IP6 request to the node whose inner packet is @inner. */
static void encap(struct pg *out, const struct pg *inner, int v6)
{
	size_t in_l3 = (size_t)inner->l3_off, n = inner->len - in_l3;

	pg_init(out);
	pg_eth(out, NULL, NULL);
	if (!v6) {
		uint8_t src[4] = { 10, 30, 0, 1 }, dst[4] = { 10, 20, 1, 2 };

		pg_ip4(out, src, dst, IPPROTO_IPIP);
	} else {
		uint8_t src[16] = { 0xfd, 0, 0, 0x30, [15] = 1 }, dst[16] = { 0xfd, 0, 0, 0x20, 0, 1,
									    [15] = 2 };

		pg_ip6(out, src, dst, IPPROTO_IPV6);
	}
	memcpy(pg_put(out, n), inner->buf + in_l3, n);
	out->l4_off = -1;
	out->proto = 0;
	pg_finish(out);
}

static void test_stamp4(void)
{
	struct pg_flow req, rep;
	struct pg p, e;
	uint32_t t = 0x12345678, s;

	set_cookie(IDN_TS_CFG_ON | 7);
	pg_flow4(&rep, "10.99.0.1", "10.10.0.2", 80, 40000, IPPROTO_TCP);
	/* not learned yet: untouched */
	reply(&p, &rep, PG_ACK, t, 0);
	ASSERT_EQ(run(skel->progs.idn_stamp, &p), TC_ACT_OK, "stamp: verdict");
	ASSERT_EQ(tsval_of(&p), t, "an address idn_decap never saw: not stamped");

	/* a request to the VIP through IDN: decapsulated and learned */
	pg_flow4(&req, "10.10.0.2", "10.99.0.1", 40000, 80, IPPROTO_TCP);
	pg_tcp_pkt(&p, &req, PG_SYN, NULL, 0);
	encap(&e, &p, 0);
	ASSERT_EQ(run(skel->progs.idn_decap, &e), TC_ACT_OK, "decap: verdict");
	ASSERT_EQ(e.len, p.len, "decap: outer header gone");

	for (int sack = 0; sack <= 1; sack++) {
		reply(&p, &rep, PG_ACK | PG_PSH, t, sack);
		ASSERT_EQ(run(skel->progs.idn_stamp, &p), TC_ACT_OK, "stamp: verdict");
		s = tsval_of(&p);
		ASSERT_EQ(s, idn_ts_stamp(t, 7), "stamped");
		ASSERT_EQ(s & IDN_TS_COOKIE_MASK, 7, "low 12 bits: the node id");
		ASSERT_TRUE(s >= t && s - t <= IDN_TS_COOKIE_MASK, "rounded up, at most 4095 ahead");
		ASSERT_TRUE(pg_l4_csum_ok(p.buf, p.len, (size_t)p.l3_off), "TCP checksum right");
	}
	/* already carrying the cookie: unchanged */
	reply(&p, &rep, PG_ACK, 0x12345007, 0);
	run(skel->progs.idn_stamp, &p);
	ASSERT_EQ(tsval_of(&p), 0x12345007, "a TSval with the cookie stays");
	/* monotonic across a carry */
	reply(&p, &rep, PG_ACK, 0x12345fff, 0);
	run(skel->progs.idn_stamp, &p);
	ASSERT_EQ(tsval_of(&p), 0x12346007, "rounded up past the carry");

	/* SYN+ACK: left alone (handshake TSecr check, syncookies) */
	reply(&p, &rep, PG_SYN | PG_ACK, t, 0);
	run(skel->progs.idn_stamp, &p);
	ASSERT_EQ(tsval_of(&p), t, "SYN+ACK not stamped");
	/* another source of the node (its locator): left alone */
	pg_flow4(&rep, "10.20.1.2", "10.20.1.1", 9000, 40001, IPPROTO_TCP);
	reply(&p, &rep, PG_ACK, t, 0);
	run(skel->progs.idn_stamp, &p);
	ASSERT_EQ(tsval_of(&p), t, "the node's own address not stamped");
	/* stamping off */
	set_cookie(0);
	pg_flow4(&rep, "10.99.0.1", "10.10.0.2", 80, 40000, IPPROTO_TCP);
	reply(&p, &rep, PG_ACK, t, 0);
	run(skel->progs.idn_stamp, &p);
	ASSERT_EQ(tsval_of(&p), t, "cookie off: not stamped");
	/* no timestamp option: untouched, bytes and all */
	set_cookie(IDN_TS_CFG_ON | 7);
	pg_tcp_pkt(&e, &rep, PG_ACK, NULL, 50);
	p = e;
	run(skel->progs.idn_stamp, &p);
	ASSERT_TRUE(p.len == e.len && !memcmp(p.buf, e.buf, e.len), "no timestamp: untouched");
}

static void test_stamp6(void)
{
	struct pg_flow req, rep;
	struct pg p, e;
	uint32_t t = 0xfffff800;

	set_cookie(IDN_TS_CFG_ON | 4095);
	/* a descriptor address: its /64 is learned */
	pg_flow6(&req, "fd00:10::2", "fd1d:4e00:0:1100:3e9:200:0:2a", 40000, 80, IPPROTO_TCP);
	pg_tcp_pkt(&p, &req, PG_SYN, NULL, 0);
	encap(&e, &p, 1);
	ASSERT_EQ(run(skel->progs.idn_decap, &e), TC_ACT_OK, "decap v6: verdict");
	ASSERT_EQ(e.len, p.len, "decap v6: outer header gone");
	pg_flow6(&rep, "fd1d:4e00:0:1100:3e9:200:0:99", "fd00:10::2", 80, 40000, IPPROTO_TCP);
	reply(&p, &rep, PG_ACK, t, 0);
	run(skel->progs.idn_stamp, &p);
	ASSERT_EQ(tsval_of(&p), 0xffffffff, "v6: stamped (cookie 4095)");
	ASSERT_TRUE(pg_l4_csum_ok(p.buf, p.len, (size_t)p.l3_off), "v6: TCP checksum right");
	/* wraps: rounding up past 2^32 is the next value on the TS clock */
	reply(&p, &rep, PG_ACK, 0xfffffffe, 0);
	set_cookie(IDN_TS_CFG_ON | 5);
	run(skel->progs.idn_stamp, &p);
	ASSERT_EQ(tsval_of(&p), 5, "v6: wraps to the next cookie value");
}

static __u64 decap_stat(__u32 what)
{
	int ncpu = libbpf_num_possible_cpus();
	__u64 v[ncpu > 0 ? ncpu : 1], sum = 0;

	if (ncpu <= 0 ||
	    bpf_map_lookup_elem(bpf_map__fd(skel->maps.idn_decap_stats), &what, v))
		return 0;
	for (int i = 0; i < ncpu; i++)
		sum += v[i];
	return sum;
}

/*
 * A handed-off connection (idn_handoff, the P/D hand-off): its segments
 * are re-addressed to the node holding it now and sent on, never
 * decapsulated here (this node would answer them with a reset); other
 * tuples are decapsulated; a SYN of the tuple is a new connection: its
 * entry goes and the SYN is this node's.
 */
static void test_handoff4(void)
{
	struct idn_handoff_key k = { .sport = htons(40000), .dport = htons(80) };
	struct idn_handoff_val v = { .node4 = htonl(0x0a140202) }, got;	/* 10.20.2.2 */
	int fd = bpf_map__fd(skel->maps.idn_handoff), act;
	struct pg_flow req, other;
	struct pg p, e;
	__u64 ok0, err0;
	size_t ol3;

	inet_pton(AF_INET, "10.10.0.2", &k.saddr);
	inet_pton(AF_INET, "10.99.0.1", &k.daddr);
	ASSERT_EQ(bpf_map_update_elem(fd, &k, &v, BPF_ANY), 0, "entry");
	pg_flow4(&req, "10.10.0.2", "10.99.0.1", 40000, 80, IPPROTO_TCP);
	pg_flow4(&other, "10.10.0.2", "10.99.0.1", 40001, 80, IPPROTO_TCP);

	/* another connection of the same client: decapsulated as usual */
	pg_tcp_pkt(&p, &other, PG_ACK, NULL, 0);
	encap(&e, &p, 0);
	ASSERT_EQ(run(skel->progs.idn_decap, &e), TC_ACT_OK, "other tuple: decapsulated");
	ASSERT_EQ(e.len, p.len, "other tuple: outer header gone");

	/* the handed-off one: re-addressed, outer header kept */
	ok0 = decap_stat(IDN_DECAP_HANDOFF);
	err0 = decap_stat(IDN_DECAP_HANDOFF_ERR);
	pg_tcp_pkt(&p, &req, PG_ACK, NULL, 0);
	encap(&e, &p, 0);
	ol3 = (size_t)e.l3_off;
	act = run(skel->progs.idn_decap, &e);
	/* redirected where the test's namespace has a route to 10.20.2.2,
	 * dropped (counted) where it has none: never passed up */
	ASSERT_TRUE(act == TC_ACT_REDIRECT || act == TC_ACT_SHOT, "handed off: sent on, not decapsulated");
	ASSERT_EQ(decap_stat(act == TC_ACT_REDIRECT ? IDN_DECAP_HANDOFF : IDN_DECAP_HANDOFF_ERR),
		  (act == TC_ACT_REDIRECT ? ok0 : err0) + 1, "counted as such");
	ASSERT_EQ(e.len, p.len + 20, "outer header kept");
	ASSERT_EQ(e.buf[ol3 + 9], IPPROTO_IPIP, "still IPIP");
	ASSERT_TRUE(!memcmp(e.buf + ol3 + 12, (uint8_t[]){ 10, 20, 1, 2 }, 4), "from this node");
	ASSERT_TRUE(!memcmp(e.buf + ol3 + 16, (uint8_t[]){ 10, 20, 2, 2 }, 4), "to the decode node");
	ASSERT_EQ(e.buf[ol3 + 8], 63, "TTL - 1");
	ASSERT_TRUE(pg_ip4_csum_ok(e.buf, e.len, ol3), "outer IPv4 checksum right");
	ASSERT_TRUE(!memcmp(e.buf + ol3 + 20, p.buf + p.l3_off, p.len - (size_t)p.l3_off),
		    "inner packet untouched");
	ASSERT_EQ(bpf_map_lookup_elem(fd, &k, &got), 0, "entry kept");
	ASSERT_EQ(got.packets, 1, "its packets counted");

	/* a SYN of the tuple: a new connection, this node's */
	pg_tcp_pkt(&p, &req, PG_SYN, NULL, 0);
	encap(&e, &p, 0);
	ASSERT_EQ(run(skel->progs.idn_decap, &e), TC_ACT_OK, "SYN: decapsulated");
	ASSERT_EQ(e.len, p.len, "SYN: outer header gone");
	ASSERT_TRUE(bpf_map_lookup_elem(fd, &k, &got) && errno == ENOENT, "SYN: entry deleted");
}

int main(void)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	tap_plan(0);
	/*
	 * The maps are pinned by name where idnctl loads them; here all of
	 * them (whatever the object adds) are the test's own (a pin under the default /sys/fs/bpf would outlive
	 * the run and hand the next one its learned addresses).
	 */
	skel = idn_node__open();
	if (skel) {
		struct bpf_map *m;
		int err = 0;

		bpf_object__for_each_map(m, skel->obj)
			err = err ?: bpf_map__set_pin_path(m, NULL);
		if (err || idn_node__load(skel)) {
			idn_node__destroy(skel);
			skel = NULL;
		}
	}
	if (!skel) {
		tap_skip("cannot load bpf/idn_node.bpf.c (needs root and BPF)");
		tap_result("bpf_node setup");
		tap_done();
		return 4;
	}
	TAP_RUN(test_stamp4);
	TAP_RUN(test_stamp6);
	TAP_RUN(test_handoff4);
	idn_node__destroy(skel);
	return tap_done();
}
