/* SPDX-License-Identifier: GPL-2.0 */
/*
 * steer_env.h - test bed for running build/bpf/idn_steer.bpf.o with
 * BPF_PROG_TEST_RUN: a private network and mount namespace (two veth
 * pairs with addresses, forwarding on, permanent neighbours for the node
 * locators, so bpf_fib_lookup succeeds), a private bpffs for the pinned
 * maps, map helpers (reset, node/plan/VIP/config writers, per-CPU sums)
 * and one call that runs a packet through idn_xdp or idn_tc and records
 * retval, output bytes, XDP metadata, skb mark and priority and the change
 * of every verdict and drop counter.
 *
 * Shared by bpf_steer.c (fixture tables) and bpf_diff.c (differential).
 * Everything the bed creates lives in namespaces of this process (the
 * bpffs is a fresh instance mounted over /sys/fs/bpf in the private mount
 * namespace): it all goes away with the process.
 */
#ifndef __IDN_SELFTESTS_STEER_ENV_H
#define __IDN_SELFTESTS_STEER_ENV_H

#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <net/if.h>
#include <linux/if_link.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include "bpf/idn_steer.skel.h"
#include "dp_features.h"
#include "tables.h"
#include "../lib/tap.h"
#include "../lib/pktgen.h"

#define HOOK_XDP 1
#define HOOK_TC 0

/* Addresses of the bed. */
/*
 * Hosts 10.99.0.H and fd00:99::H, H = 11..29 (one MAC per host number,
 * both families) behind BED_IF0; 10.98.0.21-22 and fd00:98::21-22 behind
 * BED_IF1. Dual-stack nodes use both addresses of one host.
 */
#define BED_IF0 "idnt0"			/* ingress device */
#define BED_IF1 "idnt1"			/* second device */
static const uint8_t bed_mac0[6] = { 0x02, 0, 0, 0, 0x99, 0x01 };
static const uint8_t bed_mac1[6] = { 0x02, 0, 0, 0, 0x98, 0x01 };

struct tenv {
	struct idn_steer *skel;
	int xdp_fd, tc_fd;
	int config, vips, conns, aff, plans, nodes, nh, stats, drops, nstats, cstats;
	int receipts, tkeys;
	char pin_dir[64];
	int mounted;
	int if0, if1;
	int ncpu;
	__u32 features, forced_off;	/* IDN_FEAT_* loaded with (dp_features.h) */
	char features_why[512];
};

static struct tenv E;

static inline int bed_sh(const char *cmd)
{
	int r = system(cmd);

	return r == 0 ? 0 : -1;
}

static inline int bed_write(const char *path, const char *v)
{
	FILE *f = fopen(path, "w");
	int r;

	if (!f)
		return -errno;
	r = fputs(v, f) < 0 ? -EIO : 0;
	if (fclose(f))
		r = -errno;
	return r;
}

/* MAC of a node locator: 02:00:00:00:<net>:<host>. */
static inline void bed_node_mac(uint8_t mac[6], int net, int host)
{
	mac[0] = 2;
	mac[1] = mac[2] = mac[3] = 0;
	mac[4] = (uint8_t)net;
	mac[5] = (uint8_t)host;
}

static inline int bed_net(char *why, size_t n)
{
	char cmd[512];

	if (bed_sh("ip link set lo up") ||
	    bed_sh("ip link add " BED_IF0 " address 02:00:00:00:99:01 type veth peer name idnt0p") ||
	    bed_sh("ip link add " BED_IF1 " address 02:00:00:00:98:01 type veth peer name idnt1p") ||
	    bed_sh("ip link set idnt0p up && ip link set idnt1p up") ||
	    bed_sh("ip link set " BED_IF0 " up && ip link set " BED_IF1 " up") ||
	    bed_sh("ip addr add 10.99.0.1/24 dev " BED_IF0) ||
	    bed_sh("ip addr add 10.98.0.1/24 dev " BED_IF1) ||
	    bed_sh("ip -6 addr add fd00:99::1/64 dev " BED_IF0 " nodad") ||
	    bed_sh("ip -6 addr add fd00:98::1/64 dev " BED_IF1 " nodad")) {
		snprintf(why, n, "cannot create veth devices in the test netns");
		return -1;
	}
	bed_write("/proc/sys/net/ipv4/conf/all/forwarding", "1");
	bed_write("/proc/sys/net/ipv4/conf/lo/forwarding", "1");
	bed_write("/proc/sys/net/ipv6/conf/all/forwarding", "1");
	for (int h = 11; h <= 29; h++) {
		snprintf(cmd, sizeof(cmd),
			 "ip neigh add 10.99.0.%d lladdr 02:00:00:00:99:%02x dev %s nud permanent && "
			 "ip -6 neigh add fd00:99::%d lladdr 02:00:00:00:99:%02x dev %s nud permanent",
			 h, h, BED_IF0, h, h, BED_IF0);
		if (bed_sh(cmd)) {
			snprintf(why, n, "cannot add neighbours");
			return -1;
		}
	}
	for (int h = 21; h <= 22; h++) {
		snprintf(cmd, sizeof(cmd),
			 "ip neigh add 10.98.0.%d lladdr 02:00:00:00:98:%d dev %s nud permanent && "
			 "ip -6 neigh add fd00:98::%d lladdr 02:00:00:00:98:%d dev %s nud permanent",
			 h, h, BED_IF1, h, h, BED_IF1);
		if (bed_sh(cmd)) {
			snprintf(why, n, "cannot add neighbours");
			return -1;
		}
	}
	E.if0 = (int)if_nametoindex(BED_IF0);
	E.if1 = (int)if_nametoindex(BED_IF1);
	return E.if0 && E.if1 ? 0 : -1;
}

/*
 * tenv_setup - namespaces, bpffs, load. Return: 0, 1 to skip (why says
 * why), -1 on a failure the test must report.
 */
static inline int tenv_setup(char *why, size_t n)
{
	LIBBPF_OPTS(bpf_object_open_opts, oo);
	int err;

	if (geteuid() != 0) {
		snprintf(why, n, "needs root");
		return 1;
	}
	if (unshare(CLONE_NEWNET | CLONE_NEWNS)) {
		snprintf(why, n, "unshare: %s", strerror(errno));
		return 1;
	}
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL)) {
		snprintf(why, n, "make / private: %s", strerror(errno));
		return 1;
	}
	if (bed_net(why, n))
		return 1;
	/*
	 * A fresh bpffs instance over /sys/fs/bpf, seen only in this mount
	 * namespace: nothing to clean up outside even if the test dies.
	 * Where that directory is missing, a temporary one.
	 */
	snprintf(E.pin_dir, sizeof(E.pin_dir), "/sys/fs/bpf");
	if (mount("bpf", E.pin_dir, "bpf", 0, NULL) == 0) {
		E.mounted = 1;
	} else {
		snprintf(E.pin_dir, sizeof(E.pin_dir), "/tmp/idn-bpftest.XXXXXX");
		if (!mkdtemp(E.pin_dir)) {
			snprintf(why, n, "mkdtemp: %s", strerror(errno));
			return 1;
		}
		if (mount("bpf", E.pin_dir, "bpf", 0, NULL)) {
			snprintf(why, n, "mount bpffs: %s", strerror(errno));
			rmdir(E.pin_dir);
			return 1;
		}
		E.mounted = 2;
	}
	oo.pin_root_path = E.pin_dir;
	E.skel = idn_steer__open_opts(&oo);
	if (!E.skel) {
		snprintf(why, n, "open skeleton: %s", strerror(errno));
		return -1;
	}
	/* the features this kernel allows, less IDN_DP_DISABLE (each variant is run) */
	if (idn_dp_features(&E.features, &E.forced_off, E.features_why,
			    sizeof(E.features_why))) {
		snprintf(why, n, "%.200s", E.features_why);
		return -1;
	}
	E.skel->rodata->idn_features = E.features;
	E.skel->rodata->idn_features_forced_off = E.forced_off;
	err = idn_steer__load(E.skel);
	if (err) {
		snprintf(why, n, "load idn_steer: %d (%s)", err, strerror(-err));
		return -1;
	}
	{
		char *line = E.features_why, *nl;

		do {	/* one TAP comment per feature: which variant ran */
			nl = strchr(line, '\n');
			printf("# dataplane feature %.*s\n", nl ? (int)(nl - line) : (int)strlen(line),
			       line);
			line = nl + 1;
		} while (nl);
	}
	E.xdp_fd = bpf_program__fd(E.skel->progs.idn_xdp);
	E.tc_fd = bpf_program__fd(E.skel->progs.idn_tc);
	E.config = bpf_map__fd(E.skel->maps.idn_config);
	E.vips = bpf_map__fd(E.skel->maps.idn_vips);
	E.conns = bpf_map__fd(E.skel->maps.idn_conns);
	E.aff = bpf_map__fd(E.skel->maps.idn_affinity);
	E.plans = bpf_map__fd(E.skel->maps.idn_plans);
	E.nodes = bpf_map__fd(E.skel->maps.idn_nodes);
	E.nh = bpf_map__fd(E.skel->maps.idn_nexthops);
	E.stats = bpf_map__fd(E.skel->maps.idn_stats);
	E.drops = bpf_map__fd(E.skel->maps.idn_drops);
	E.nstats = bpf_map__fd(E.skel->maps.idn_node_stats);
	E.cstats = bpf_map__fd(E.skel->maps.idn_cap_stats);
	E.receipts = bpf_map__fd(E.skel->maps.idn_receipts);
	E.tkeys = bpf_map__fd(E.skel->maps.idn_tele_keys);
	E.ncpu = libbpf_num_possible_cpus();
	if (E.ncpu <= 0 || E.ncpu > 1024) {
		snprintf(why, n, "possible cpus: %d", E.ncpu);
		return -1;
	}
	return 0;
}

static inline void tenv_teardown(void)
{
	if (E.skel)
		idn_steer__destroy(E.skel);
	E.skel = NULL;
	if (E.mounted) {
		umount2(E.pin_dir, MNT_DETACH);
		if (E.mounted == 2)
			rmdir(E.pin_dir);
		E.mounted = 0;
	}
}

/* ---- maps ---------------------------------------------------------- */

static inline void map_clear_hash(int fd, size_t key_size)
{
	uint8_t key[64], next[64];

	while (bpf_map_get_next_key(fd, NULL, next) == 0) {
		memcpy(key, next, key_size);
		if (bpf_map_delete_elem(fd, key))
			break;
	}
}

#define BED_MAX_NODE 64

/*
 * Node @id's telemetry key as idnd writes it (ctl/lib/maps.c): @key NULL
 * is the node's test key (pg_tele_key()); a new entry, a fresh window.
 */
static inline int put_tele_key(__u32 id, const uint8_t *key, __u32 key_id)
{
	struct idn_tele_key k = { .key_id = key_id, .flags = IDN_TKEY_F_VALID };
	uint8_t def[16];

	if (!key) {
		pg_tele_key(id, def);
		key = def;
	}
	idn_siphash_key(key, &k.k0, &k.k1);
	return bpf_map_update_elem(E.tkeys, &id, &k, BPF_ANY);
}

static inline int del_tele_key(__u32 id)
{
	struct idn_tele_key k = { 0 };

	return bpf_map_update_elem(E.tkeys, &id, &k, BPF_ANY);
}

static inline struct idn_tele_key get_tele_key(__u32 id)
{
	struct idn_tele_key k = { 0 };

	bpf_map_lookup_elem(E.tkeys, &id, &k);
	return k;
}

/* Empty every table the program reads; counters are compared by delta. */
static inline void tenv_reset(void)
{
	struct idn_config cfg = { 0 };
	struct idn_node zn = { 0 };
	struct idn_nexthop znh = { 0 };
	__u32 k = 0;

	bpf_map_update_elem(E.config, &k, &cfg, BPF_ANY);
	map_clear_hash(E.vips, sizeof(struct idn_vip_key));
	idn_ct_clear_all(E.conns);
	idn_afft_clear_all(E.aff);
	map_clear_hash(E.plans, sizeof(struct idn_plan_key));
	map_clear_hash(E.cstats, sizeof(__u32));
	for (k = 0; k < BED_MAX_NODE; k++)
		bpf_map_update_elem(E.nodes, &k, &zn, BPF_ANY);
	/* next hops: one per (node, family), IDN_NH_KEY */
	for (k = 0; k < 2 * BED_MAX_NODE; k++)
		bpf_map_update_elem(E.nh, &k, &znh, BPF_ANY);
	/* every node's test key (pktgen.h), a fresh replay window */
	for (k = 0; k < BED_MAX_NODE; k++)
		put_tele_key(k, NULL, PG_TELE_KEY_ID);
}

static inline int put_config(const struct idn_config *c)
{
	__u32 k = 0;

	return bpf_map_update_elem(E.config, &k, c, BPF_ANY);
}

static inline struct idn_config get_config(void)
{
	struct idn_config c = { 0 };
	__u32 k = 0;

	bpf_map_lookup_elem(E.config, &k, &c);
	return c;
}

static inline int put_node(__u32 id, const struct idn_node *n)
{
	return bpf_map_update_elem(E.nodes, &id, n, BPF_ANY);
}

static inline struct idn_node get_node(__u32 id)
{
	struct idn_node n = { 0 };

	bpf_map_lookup_elem(E.nodes, &id, &n);
	return n;
}

static inline int put_plan(__u32 cap, __u8 tier, __u8 policy, __u8 slot, const struct idn_plan *pl)
{
	struct idn_plan_key k = { .cap = cap, .tier = tier, .policy = policy, .slot = slot };

	return bpf_map_update_elem(E.plans, &k, pl, BPF_ANY);
}

/* Sum of a per-CPU u64 at offset @off of values of @vsize bytes. */
static inline __u64 percpu_sum(int fd, __u32 key, size_t vsize, size_t off)
{
	size_t stride = (vsize + 7) & ~(size_t)7;
	uint8_t *buf = calloc(E.ncpu, stride);
	__u64 s = 0, v;

	if (!buf)
		return 0;
	if (bpf_map_lookup_elem(fd, &key, buf) == 0)
		for (int c = 0; c < E.ncpu; c++) {
			memcpy(&v, buf + c * stride + off, 8);
			s += v;
		}
	free(buf);
	return s;
}

struct snap {
	__u64 v[IDN_V_MAX];
	__u64 d[IDN_DROP_MAX];
};

/*
 * Sum the first u64 of every entry of a per-CPU array into out[0..n):
 * one batch lookup, falling back to one lookup per key.
 */
static inline void percpu_sums(int fd, __u32 n, size_t vsize, __u64 *out)
{
	static uint8_t buf[64 * 1024];
	size_t stride = (vsize + 7) & ~(size_t)7;
	__u32 keys[64], count = n, out_batch;
	LIBBPF_OPTS(bpf_map_batch_opts, bo);
	int err;

	if (n > 64 || (size_t)n * E.ncpu * stride > sizeof(buf)) {
		for (__u32 i = 0; i < n; i++)
			out[i] = percpu_sum(fd, i, vsize, 0);
		return;
	}
	err = bpf_map_lookup_batch(fd, NULL, &out_batch, keys, buf, &count, &bo);
	if ((err && errno != ENOENT) || count != n) {
		for (__u32 i = 0; i < n; i++)
			out[i] = percpu_sum(fd, i, vsize, 0);
		return;
	}
	for (__u32 i = 0; i < n; i++) {
		__u64 sum = 0, v;

		for (int c = 0; c < E.ncpu; c++) {
			memcpy(&v, buf + ((size_t)i * E.ncpu + c) * stride, 8);
			sum += v;
		}
		out[keys[i]] = sum;
	}
}

static inline void snap_take(struct snap *s)
{
	percpu_sums(E.stats, IDN_V_MAX, sizeof(struct idn_vstat), s->v);
	percpu_sums(E.drops, IDN_DROP_MAX, sizeof(__u64), s->d);
}

/* ---- one run --------------------------------------------------------- */

struct run {
	int err;		/* bpf_prog_test_run_opts() */
	int ret;		/* program's return value */
	uint8_t out[PG_MAX + 512];
	__u32 out_len;		/* bytes of out (after the metadata) */
	uint8_t meta[64];
	__u32 meta_len;		/* XDP metadata in front of the packet */
	__u32 mark;		/* TC: skb->mark after the run */
	__u32 priority;		/* TC: skb->priority after the run */
	struct snap before, after;
	int verdict;		/* the one verdict counted, -1 none, -2 several */
	int drop;		/* the one drop reason counted, 0 none, -2 several */
};

static const char *hook_name(int hook)
{
	return hook == HOOK_XDP ? "xdp" : "tc";
}

/*
 * run_pkt - run @len bytes through the hook's program once, arriving on
 * @ifindex (0: no ctx, the loopback for XDP).
 */
static inline void run_pkt(int hook, const void *pkt, size_t len, int ifindex, struct run *r)
{
	LIBBPF_OPTS(bpf_test_run_opts, o);
	struct xdp_md xin = { 0 }, xout = { 0 };
	struct __sk_buff sin = { 0 }, sout = { 0 };
	uint8_t raw[sizeof(r->out) + 64];

	memset(r, 0, offsetof(struct run, before));
	snap_take(&r->before);
	o.data_in = pkt;
	o.data_size_in = (__u32)len;
	o.data_out = raw;
	o.data_size_out = sizeof(raw);
	o.repeat = 1;
	if (hook == HOOK_XDP) {
		if (ifindex) {
			xin.data_end = (__u32)len;
			xin.ingress_ifindex = (__u32)ifindex;
			o.ctx_in = &xin;
			o.ctx_size_in = sizeof(xin);
			/* ctx_out alone makes the kernel use a zeroed ctx_in */
			o.ctx_out = &xout;
			o.ctx_size_out = sizeof(xout);
		}
		r->err = bpf_prog_test_run_opts(E.xdp_fd, &o);
		r->meta_len = xout.data;
		if (r->meta_len > sizeof(r->meta) || r->meta_len > o.data_size_out)
			r->meta_len = 0;
		memcpy(r->meta, raw, r->meta_len);
		r->out_len = o.data_size_out - r->meta_len;
		memcpy(r->out, raw + r->meta_len, r->out_len);
	} else {
		sin.ifindex = (__u32)ifindex;
		o.ctx_in = &sin;
		o.ctx_size_in = sizeof(sin);
		o.ctx_out = &sout;
		o.ctx_size_out = sizeof(sout);
		r->err = bpf_prog_test_run_opts(E.tc_fd, &o);
		r->mark = sout.mark;
		r->priority = sout.priority;
		r->out_len = o.data_size_out;
		memcpy(r->out, raw, r->out_len);
	}
	r->ret = (int)o.retval;
	snap_take(&r->after);
	r->verdict = -1;
	for (int i = 0; i < IDN_V_MAX; i++)
		if (r->after.v[i] != r->before.v[i])
			r->verdict = r->verdict == -1 &&
				     r->after.v[i] - r->before.v[i] == 1 ? i : -2;
	r->drop = 0;
	for (int i = 1; i < IDN_DROP_MAX; i++)
		if (r->after.d[i] != r->before.d[i])
			r->drop = r->drop == 0 && r->after.d[i] - r->before.d[i] == 1 ? i : -2;
}

/* Actions as the fixtures state them; the number depends on the hook. */
enum act {
	A_PASS,
	A_DROP,
	A_TX,		/* back out of the ingress device: XDP_TX / redirect */
	A_REDIRECT,	/* out of another device */
};

static inline int act_code(int hook, enum act a)
{
	switch (a) {
	case A_PASS:
		return hook == HOOK_XDP ? XDP_PASS : TC_ACT_OK;
	case A_DROP:
		return hook == HOOK_XDP ? XDP_DROP : TC_ACT_SHOT;
	case A_TX:
		return hook == HOOK_XDP ? XDP_TX : TC_ACT_REDIRECT;
	case A_REDIRECT:
		return hook == HOOK_XDP ? XDP_REDIRECT : TC_ACT_REDIRECT;
	}
	return -1;
}

#endif /* __IDN_SELFTESTS_STEER_ENV_H */
