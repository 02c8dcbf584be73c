// SPDX-License-Identifier: GPL-2.0
/*
 * stats.c - idnctl stats: per-CPU counters summed over CPUs: packets and
 * bytes per verdict, malformed packets per drop reason, traffic per node.
 */
#include <stdio.h>
#include <errno.h>

#include "idnctl.h"

static int usage(void)
{
	fprintf(stdout,
"Usage: idnctl stats [ show ]\n"
"       idnctl stats reset\n"
"       idnctl stats help\n");
	return EXIT_OK;
}

static int stats_show(void)
{
	struct idn_vstat vs[IDN_V_MAX];
	__u64 drops[IDN_DROP_MAX];
	struct idn_nstat *ns;

	ns = calloc(IDN_MAX_NODES, sizeof(*ns));
	if (!ns)
		return runtime_error("out of memory");
	if (idn_vstats_read(&G.maps, vs) || idn_drops_read(&G.maps, drops) ||
	    idn_nstats_read(&G.maps, ns)) {
		free(ns);
		return runtime_error("stats: %s", idn_errmsg());
	}
	idn_json_begin(false);
	print_text("verdicts:\n");
	open_json_array(PRINT_JSON, "verdicts");
	for (int v = 0; v < IDN_V_MAX; v++) {
		open_json_object(NULL);
		print_string(PRINT_ANY, "verdict", "  %-12s", idn_name(&idn_verdict_names, v));
		print_u64(PRINT_ANY, "packets", " packets %llu", vs[v].packets);
		print_u64(PRINT_ANY, "bytes", " bytes %llu", vs[v].bytes);
		close_json_object();
		print_nl();
	}
	close_json_array(PRINT_JSON, NULL);
	print_text("drops:\n");
	open_json_array(PRINT_JSON, "drops");
	for (int r = 1; r < IDN_DROP_MAX; r++) {
		if (!drops[r])
			continue;
		open_json_object(NULL);
		print_string(PRINT_ANY, "reason", "  %-14s", idn_name(&idn_drop_names, r));
		print_u64(PRINT_ANY, "packets", " packets %llu", drops[r]);
		close_json_object();
		print_nl();
	}
	close_json_array(PRINT_JSON, NULL);
	print_text("nodes:\n");
	open_json_array(PRINT_JSON, "nodes");
	for (__u32 id = 0; id < IDN_MAX_NODES; id++) {
		if (!ns[id].packets && !ns[id].flows)
			continue;
		open_json_object(NULL);
		print_uint(PRINT_ANY, "node", "  node %u", id);
		print_u64(PRINT_ANY, "packets", " packets %llu", ns[id].packets);
		print_u64(PRINT_ANY, "bytes", " bytes %llu", ns[id].bytes);
		print_u64(PRINT_ANY, "flows", " flows %llu", ns[id].flows);
		close_json_object();
		print_nl();
	}
	close_json_array(PRINT_JSON, NULL);
	idn_json_end();
	free(ns);
	return EXIT_OK;
}

int do_stats(int argc, char **argv)
{
	if (argc < 1 || matches(*argv, "show")) {
		if (argc > 1)
			return usage_error("unknown argument \"%s\", try \"idnctl stats help\".", argv[1]);
		return stats_show();
	}
	if (matches(*argv, "reset")) {
		if (argc > 1)
			return usage_error("unknown argument \"%s\", try \"idnctl stats help\".", argv[1]);
		if (idn_stats_reset(&G.maps))
			return runtime_error("stats reset: %s", idn_errmsg());
		return EXIT_OK;
	}
	if (matches(*argv, "help"))
		return usage();
	return unknown_cmd("stats", *argv);
}
