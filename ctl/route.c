// SPDX-License-Identifier: GPL-2.0
/*
 * route.c - idnctl route get: explain where a request would go and why,
 * by running the dataplane's own descriptor and selection code
 * (bpf/lib/desc.h, select.h) over the live maps (idn_route_get()).
 */
#include <stdio.h>
#include <errno.h>

#include "idnctl.h"

static int usage(void)
{
	fprintf(stdout,
"Usage: idnctl route get { vip ADDR port PORT proto { tcp | udp } | addr6 ADDR6 }\n"
"                        [ from ADDR ] [ cap CAP ] [ tier TIER ] [ policy POLICY ]\n"
"                        [ token TOKEN ] [ size-class 0-15 ]\n"
"       idnctl route help\n"
"The request's own fields (cap, tier, policy, token, size-class) are applied\n"
"as the TCP option on a SYN would carry them.\n");
	return EXIT_OK;
}

static int route_get(int argc, char **argv)
{
	struct idn_route_req rq = {};
	struct idn_route_res res;
	struct idn_addr vip = {};
	__u32 port = 0, v;
	__u8 proto = 0;
	bool have_port = false, have_proto = false;
	int err;

	while (argc > 0) {
		if (matches(*argv, "vip")) {
			NEXT_ARG();
			PARSE(idn_parse_addr(*argv, &vip));
			rq.flags |= IDN_RQ_VIP;
		} else if (matches(*argv, "port")) {
			NEXT_ARG();
			PARSE(idn_parse_u32(*argv, 1, 65535, &port, "port"));
			have_port = true;
		} else if (matches(*argv, "proto")) {
			NEXT_ARG();
			PARSE(idn_parse_proto(*argv, &proto));
			have_proto = true;
		} else if (matches(*argv, "addr6")) {
			NEXT_ARG();
			PARSE(idn_parse_addr(*argv, &rq.addr6));
			if (rq.addr6.family != IDN_AF_INET6)
				return usage_error("addr6 needs an IPv6 address");
			rq.flags |= IDN_RQ_ADDR6;
		} else if (matches(*argv, "from")) {
			NEXT_ARG();
			PARSE(idn_parse_addr(*argv, &rq.from));
			rq.flags |= IDN_RQ_FROM;
		} else if (matches(*argv, "cap")) {
			NEXT_ARG();
			PARSE(idn_parse_cap(*argv, &rq.cap));
			rq.flags |= IDN_RQ_CAP;
		} else if (matches(*argv, "tier")) {
			NEXT_ARG();
			PARSE(idn_parse_u32(*argv, 0, IDN_TIER_MAX, &v, "tier"));
			rq.tier = v;
			rq.flags |= IDN_RQ_TIER;
		} else if (matches(*argv, "policy")) {
			int n;

			NEXT_ARG();
			n = idn_parse_policy(argc, argv, &rq.policy);
			if (n < 0)
				return invarg();
			argc -= n - 1;
			argv += n - 1;
			rq.flags |= IDN_RQ_POLICY;
		} else if (matches(*argv, "token")) {
			NEXT_ARG();
			PARSE(idn_parse_u64(*argv, &rq.token, "token"));
			if (!rq.token)
				return usage_error("token 0 means \"no token\"; give 1 or more");
			rq.flags |= IDN_RQ_TOKEN;
		} else if (matches(*argv, "size-class")) {
			NEXT_ARG();
			PARSE(idn_parse_u32(*argv, 0, 15, &v, "size-class"));
			rq.size_class = v;
			rq.flags |= IDN_RQ_SIZE;
		} else {
			return usage_error("unknown argument \"%s\", try \"idnctl route help\".", *argv);
		}
		argc--;
		argv++;
	}
	if (!!(rq.flags & IDN_RQ_VIP) == !!(rq.flags & IDN_RQ_ADDR6))
		return usage_error("route get needs either vip ADDR port PORT proto PROTO or addr6 ADDR6");
	if (rq.flags & IDN_RQ_VIP) {
		if (!have_port || !have_proto)
			return usage_error("vip needs port PORT and proto { tcp | udp }");
		idn_vip_key_make(&rq.vip, &vip, port, proto);
	} else if (have_port || have_proto) {
		return usage_error("port and proto go with vip, not addr6");
	}
	if ((rq.flags & IDN_RQ_FROM) &&
	    rq.from.family != ((rq.flags & IDN_RQ_VIP) ? vip.family : IDN_AF_INET6))
		return usage_error("from address family differs from the destination's");

	err = idn_route_get(&G.maps, &rq, &res);
	if (err)
		return runtime_error("route get: %s", idn_errmsg());

	idn_json_begin(false);
	print_receipt(&res.rc);
	print_text("\n    ");
	print_uint(PRINT_ANY, "cost", "cost %u ", res.sel.cost);
	print_cap("served_cap", "served-cap %s ", res.sel.cap);
	print_uint(PRINT_ANY, "charge", "charge %u ", res.sel.charge);
	if (res.sel.node < IDN_MAX_NODES) {
		print_uint(PRINT_ANY, "node_charged_tokens", "node-charged %u ", res.charged_tokens);
		print_uint(PRINT_ANY, "node_others_tokens", "node-others %u ", res.others_tokens);
	}
	print_uint(PRINT_ANY, "slot", "slot %u", res.slot);
	if (res.has_locator)
		print_addr("locator", " locator %s", res.locator.family, res.locator.addr);
	if (res.rc.verdict == IDN_V_MALFORMED)
		print_string(PRINT_ANY, "drop", " drop %s", idn_name(&idn_drop_names, res.drop));
	if (res.rc.verdict == IDN_V_PASS)
		print_string(PRINT_ANY, "note", " (%s)", (rq.flags & IDN_RQ_VIP) ?
			     "no such VIP: not IDN traffic" : "outside prefix6: not IDN traffic");
	if (res.aff_stale)
		print_bool(PRINT_ANY, "affinity_stale", " affinity-stale %s", true);
	print_nl();
	idn_json_end();
	return EXIT_OK;
}

int do_route(int argc, char **argv)
{
	if (argc < 1)
		return usage_error("route needs a command, try \"idnctl route help\".");
	if (matches(*argv, "get"))
		return route_get(argc - 1, argv + 1);
	if (matches(*argv, "help"))
		return usage();
	return unknown_cmd("route", *argv);
}
