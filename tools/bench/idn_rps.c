// SPDX-License-Identifier: GPL-2.0
/*
 * idn_rps - attach the IDN XDP dataplane for the router requests/s
 * benchmark (tools/bench/router_rps.sh) and give it a minimal
 * configuration: one TCP VIP, its nodes, one plan. Run inside the
 * router's network namespace; the program stays attached (netlink XDP)
 * after exit and goes away with the device or namespace.
 *
 *   idn_rps -o OBJ -d DEV -p PINDIR -s SRC4 -V VIP4:PORT -l LOC4 [-l LOC4...]
 *
 * OBJ is build/bpf/idn_steer.bpf.o (program idn_xdp); maps are pinned
 * under PINDIR, which should be a private bpffs. Exit 0, 1 on failure, 2
 * on bad usage. A benchmark tool, not an operator's one: idnctl is that.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <linux/bpf.h>
#include <linux/if_link.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include <linux/idn.h>
#include <bpf/btf.h>
#include "dp_features.h"

IDN_ASSERT_ABI();

#define RPS_CAP		IDN_CAP(1, 0)

static void usage(void)
{
	fprintf(stderr,
		"usage: idn_rps -o OBJ -d DEV -p PINDIR -s SRC4 -V VIP4:PORT -l LOC4 [-l LOC4...]\n");
	exit(2);
}

/* Write one __u32 .rodata variable of obj before load (found through BTF). */
static int rodata_put(struct bpf_object *obj, const char *var, __u32 v)
{
	struct bpf_map *m = bpf_object__find_map_by_name(obj, ".rodata");
	const struct btf *btf = bpf_object__btf(obj);
	const struct btf_var_secinfo *vs;
	const struct btf_type *sec;
	size_t size;
	char *data;
	int id;

	if (!m || !btf || !(data = (char *)bpf_map__initial_value(m, &size)))
		return -ENOENT;
	id = btf__find_by_name_kind(btf, ".rodata", BTF_KIND_DATASEC);
	if (id < 0)
		return id;
	sec = btf__type_by_id(btf, id);
	vs = btf_var_secinfos(sec);
	for (int i = 0; i < btf_vlen(sec); i++, vs++) {
		const struct btf_type *t = btf__type_by_id(btf, vs->type);

		if (strcmp(btf__name_by_offset(btf, t->name_off), var) || vs->size != sizeof(v) ||
		    vs->offset + sizeof(v) > size)
			continue;
		memcpy(data + vs->offset, &v, sizeof(v));
		return 0;
	}
	return -ENOENT;
}

static int set_features(struct bpf_object *obj)
{
	__u32 feat, forced;
	char why[512];

	if (idn_dp_features(&feat, &forced, why, sizeof(why))) {
		fprintf(stderr, "idn_rps: %s\n", why);
		return -1;
	}
	if (rodata_put(obj, "idn_features", feat) ||
	    rodata_put(obj, "idn_features_forced_off", forced)) {
		fprintf(stderr, "idn_rps: no idn_features in the object's .rodata\n");
		return -1;
	}
	return 0;
}

static int map_put(struct bpf_object *obj, const char *name, const void *k,
		   const void *v)
{
	int fd = bpf_object__find_map_fd_by_name(obj, name);

	if (fd < 0 || bpf_map_update_elem(fd, k, v, BPF_ANY)) {
		fprintf(stderr, "idn_rps: update %s: %s\n", name, strerror(errno));
		return -1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	const char *obj_path = NULL, *dev = NULL, *pin = NULL, *src = NULL, *vip = NULL;
	struct in_addr loc[IDN_MAX_CAND], a;
	struct idn_config cfg = {};
	struct idn_plan_key pk = { .cap = RPS_CAP, .tier = IDN_ANY, .policy = IDN_ANY };
	struct idn_plan pl = {};
	struct idn_vip_key vk = {};
	struct idn_vip vv = {};
	struct bpf_program *prog;
	struct bpf_object *obj;
	int n_loc = 0, opt, ifindex, port;
	char *colon;
	__u32 zero = 0;

	while ((opt = getopt(argc, argv, "o:d:p:s:V:l:h")) != -1) {
		switch (opt) {
		case 'o': obj_path = optarg; break;
		case 'd': dev = optarg; break;
		case 'p': pin = optarg; break;
		case 's': src = optarg; break;
		case 'V': vip = optarg; break;
		case 'l':
			if (n_loc == IDN_MAX_CAND || inet_pton(AF_INET, optarg, &loc[n_loc]) != 1)
				usage();
			n_loc++;
			break;
		default: usage();
		}
	}
	if (!obj_path || !dev || !pin || !src || !vip || !n_loc || optind != argc)
		usage();
	colon = strchr(vip, ':');
	if (!colon)
		usage();
	*colon = 0;
	port = atoi(colon + 1);
	if (inet_pton(AF_INET, vip, &a) != 1 || port <= 0 || port > 65535)
		usage();
	vk.addr[0] = a.s_addr;
	vk.port = htons((__u16)port);
	vk.proto = IPPROTO_TCP;
	vk.family = IDN_AF_INET;
	if (inet_pton(AF_INET, src, &a) != 1)
		usage();
	cfg.src4 = a.s_addr;
	cfg.generation = 1;
	cfg.aff_ttl_s = 600;
	ifindex = (int)if_nametoindex(dev);
	if (!ifindex) {
		fprintf(stderr, "idn_rps: no device %s\n", dev);
		return 1;
	}

	LIBBPF_OPTS(bpf_object_open_opts, oo, .pin_root_path = pin);
	obj = bpf_object__open_file(obj_path, &oo);
	if (!obj) {
		fprintf(stderr, "idn_rps: open %s: %s\n", obj_path, strerror(errno));
		return 1;
	}
	if (set_features(obj))
		goto fail;
	if (bpf_object__load(obj)) {
		fprintf(stderr, "idn_rps: load %s: %s\n", obj_path, strerror(errno));
		goto fail;
	}
	if (map_put(obj, "idn_config", &zero, &cfg))
		goto fail;
	vv.defaults.cap = RPS_CAP;
	vv.defaults.tier = 3;
	if (map_put(obj, "idn_vips", &vk, &vv))
		goto fail;
	pl.generation = 1;
	for (int w = 0; w < IDN_W_MAX; w++)
		pl.weight[w] = 256;
	pl.n_cand = (__u8)n_loc;
	for (__u32 i = 0; i < (__u32)n_loc; i++) {
		struct idn_node n = {};

		n.addr4 = loc[i].s_addr;	/* IPv4 VIP: the IPv4 locator */
		n.trust = 7;
		n.health = IDN_HEALTH_UP;
		n.flags = IDN_NODE_F_VALID | IDN_NODE_F_LOC4;
		n.net_us = 100;
		if (map_put(obj, "idn_nodes", &i, &n))
			goto fail;
		pl.cand[i].node = i;
		pl.cand[i].exec_us = 1000;
	}
	if (map_put(obj, "idn_plans", &pk, &pl))
		goto fail;
	prog = bpf_object__find_program_by_name(obj, "idn_xdp");
	if (!prog) {
		fprintf(stderr, "idn_rps: no program idn_xdp in %s\n", obj_path);
		goto fail;
	}
	if (bpf_xdp_attach(ifindex, bpf_program__fd(prog), XDP_FLAGS_DRV_MODE, NULL)) {
		fprintf(stderr, "idn_rps: attach XDP to %s: %s\n", dev, strerror(errno));
		goto fail;
	}
	bpf_object__close(obj);
	return 0;
fail:
	bpf_object__close(obj);
	return 1;
}
