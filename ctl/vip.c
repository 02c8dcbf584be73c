// SPDX-License-Identifier: GPL-2.0
/*
 * vip.c - idnctl vip: capability VIPs (encoding 1), VIP:port -> cap and
 * default descriptor in idn_vips.
 */
#include <stdio.h>
#include <errno.h>

#include "idnctl.h"

static int usage(void)
{
	fprintf(stdout,
"Usage: idnctl vip add ADDR port PORT proto { tcp | udp } cap CAP [ tier TIER ]\n"
"                      [ policy POLICY ] [ budget BUDGET ] [ tenant TENANT ]\n"
"                      [ receipt { on | off } ]\n"
"       idnctl vip del ADDR port PORT proto { tcp | udp }\n"
"       idnctl vip show [ ADDR port PORT proto { tcp | udp } ]\n"
"       idnctl vip help\n"
"where  CAP := CLASS[/VARIANT]\n"
"       POLICY := [ trust 0-7 ] [ privacy { public | tenant | confidential | hw-bound } ]\n"
"                 [ scope { any | home | plan } ]\n");
	return EXIT_OK;
}

struct vip_args {
	struct idn_vip_key key;
	struct idn_vip vip;
	bool have_addr, have_port, have_proto, have_cap, have_other;
};

static int parse_vip(int argc, char **argv, struct vip_args *a, bool full)
{
	struct idn_addr addr;
	__u32 v, port = 0;
	__u8 proto = 0;
	bool on;

	memset(a, 0, sizeof(*a));
	while (argc > 0) {
		if (matches(*argv, "port")) {
			NEXT_ARG();
			if (a->have_port)
				return duparg("port");
			PARSE(idn_parse_u32(*argv, 1, 65535, &port, "port"));
			a->have_port = true;
		} else if (matches(*argv, "proto")) {
			NEXT_ARG();
			if (a->have_proto)
				return duparg("proto");
			PARSE(idn_parse_proto(*argv, &proto));
			a->have_proto = true;
		} else if (full && matches(*argv, "cap")) {
			NEXT_ARG();
			PARSE(idn_parse_cap(*argv, &a->vip.defaults.cap));
			a->have_cap = true;
		} else if (full && matches(*argv, "tier")) {
			NEXT_ARG();
			PARSE(idn_parse_u32(*argv, 0, IDN_TIER_MAX, &v, "tier"));
			a->vip.defaults.tier = v;
		} else if (full && matches(*argv, "policy")) {
			int n;

			NEXT_ARG();
			n = idn_parse_policy(argc, argv, &a->vip.defaults.policy);
			if (n < 0)
				return invarg();
			argc -= n - 1;
			argv += n - 1;
		} else if (full && matches(*argv, "budget")) {
			NEXT_ARG();
			PARSE(idn_parse_u32(*argv, 0, 65535, &v, "budget"));
			a->vip.defaults.budget = v;
		} else if (full && matches(*argv, "tenant")) {
			NEXT_ARG();
			PARSE(idn_parse_u32(*argv, 0, 65535, &v, "tenant"));
			a->vip.defaults.tenant = v;
		} else if (full && matches(*argv, "receipt")) {
			NEXT_ARG();
			PARSE(idn_parse_onoff(*argv, &on, "receipt"));
			if (on)
				a->vip.flags |= IDN_VIP_F_RECEIPT;
		} else if (!a->have_addr && **argv != '-' && idn_parse_addr(*argv, &addr) == 0) {
			a->have_addr = true;
		} else {
			return usage_error("unknown argument \"%s\", try \"idnctl vip help\".", *argv);
		}
		argc--;
		argv++;
	}
	if (a->have_addr || a->have_port || a->have_proto) {
		if (!a->have_addr)
			return usage_error("VIP address missing");
		if (!a->have_port)
			return usage_error("\"port\" missing");
		if (!a->have_proto)
			return usage_error("\"proto\" missing");
		idn_vip_key_make(&a->key, &addr, port, proto);
	}
	return -1;	/* parsed, no exit status */
}

static int vip_add(int argc, char **argv)
{
	struct vip_args a;
	int rc = parse_vip(argc, argv, &a, true), err;

	if (rc >= 0)
		return rc;
	if (!a.have_addr)
		return usage_error("vip add needs ADDR port PORT proto PROTO cap CAP");
	if (!a.have_cap)
		return usage_error("\"cap\" missing");
	a.vip.defaults.size_class = 0;
	err = idn_vip_update(&G.maps, &a.key, &a.vip, true);
	if (err == -EEXIST)
		return runtime_error("vip add: VIP exists (delete it first)");
	if (err)
		return runtime_error("vip add: %s", idn_errmsg());
	return EXIT_OK;
}

static int vip_del(int argc, char **argv)
{
	struct vip_args a;
	int rc = parse_vip(argc, argv, &a, false), err;

	if (rc >= 0)
		return rc;
	if (!a.have_addr)
		return usage_error("vip del needs ADDR port PORT proto PROTO");
	err = idn_vip_del(&G.maps, &a.key);
	if (err)
		return runtime_error("vip del: %s", idn_errmsg());
	return EXIT_OK;
}

static int vip_show(int argc, char **argv)
{
	struct idn_vip_entry *e = NULL;
	struct vip_args a;
	int rc = parse_vip(argc, argv, &a, false), n;

	if (rc >= 0)
		return rc;
	n = idn_vip_list(&G.maps, &e);
	if (n < 0)
		return runtime_error("vip show: %s", idn_errmsg());
	idn_json_begin(true);
	for (int i = 0; i < n; i++) {
		if (a.have_addr && memcmp(&e[i].key, &a.key, sizeof(a.key)))
			continue;
		open_json_object(NULL);
		print_vip_entry(&e[i]);
		close_json_object();
		print_nl();
	}
	free(e);
	idn_json_end();
	return EXIT_OK;
}

int do_vip(int argc, char **argv)
{
	if (argc < 1)
		return vip_show(0, NULL);
	if (matches(*argv, "add"))
		return vip_add(argc - 1, argv + 1);
	if (matches(*argv, "del"))
		return vip_del(argc - 1, argv + 1);
	if (matches(*argv, "show"))
		return vip_show(argc - 1, argv + 1);
	if (matches(*argv, "help"))
		return usage();
	return unknown_cmd("vip", *argv);
}
