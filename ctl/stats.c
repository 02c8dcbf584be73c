// SPDX-License-Identifier: GPL-2.0
/*
 * stats.c - idnctl stats: per-CPU counters summed over CPUs: packets and
 * bytes per verdict, malformed packets per drop reason, traffic per node,
 * new-flow decisions per capability; shown, reset, or exported in the
 * Prometheus text format (printed once, or served on /metrics).
 */
#include <stdio.h>
#include <errno.h>
#include <signal.h>
#include <stddef.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <microhttpd.h>

#include "idnctl.h"

static int usage(void)
{
	fprintf(stdout,
"Usage: idnctl stats [ show ]\n"
"       idnctl stats reset\n"
"       idnctl stats prometheus\n"
"       idnctl stats serve [ listen ADDR:PORT ]\n"
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

/* The per-node counter families: one field of struct idn_nstat each. */
static const struct node_family {
	const char *name, *help;
	size_t off;
} node_families[] = {
	{ "idn_dp_node_packets_total", "Packets steered to a node.",
	  offsetof(struct idn_nstat, packets) },
	{ "idn_dp_node_bytes_total", "Bytes steered to a node.", offsetof(struct idn_nstat, bytes) },
	{ "idn_dp_node_flows_total", "New flows steered to a node.",
	  offsetof(struct idn_nstat, flows) },
};

/*
 * The dataplane's counters in the Prometheus text format (version 0.0.4):
 * HELP and TYPE before each family, counters end in _total, labels by
 * name. Return: a malloc()ed text, or NULL with idn_errmsg() set.
 */
static char *prom_text(void)
{
	struct idn_vstat vs[IDN_V_MAX];
	__u64 drops[IDN_DROP_MAX];
	struct idn_nstat *ns;
	char *buf = NULL, cb[32];
	size_t len = 0;
	FILE *f;
	int fd;
	__u32 key, next, *pkey = NULL;

	ns = calloc(IDN_MAX_NODES, sizeof(*ns));
	if (!ns) {
		idn_err(-ENOMEM, "out of memory");
		return NULL;
	}
	if (idn_vstats_read(&G.maps, vs) || idn_drops_read(&G.maps, drops) ||
	    idn_nstats_read(&G.maps, ns)) {
		free(ns);
		return NULL;
	}
	f = open_memstream(&buf, &len);
	if (!f) {
		free(ns);
		idn_err(-errno, "open_memstream: %s", strerror(errno));
		return NULL;
	}
	fputs("# HELP idn_dp_packets_total Packets the steering dataplane handled, by verdict.\n"
	      "# TYPE idn_dp_packets_total counter\n", f);
	for (int v = 0; v < IDN_V_MAX; v++)
		fprintf(f, "idn_dp_packets_total{verdict=\"%s\"} %llu\n",
			idn_name(&idn_verdict_names, v), (unsigned long long)vs[v].packets);
	fputs("# HELP idn_dp_bytes_total Bytes the steering dataplane handled, by verdict.\n"
	      "# TYPE idn_dp_bytes_total counter\n", f);
	for (int v = 0; v < IDN_V_MAX; v++)
		fprintf(f, "idn_dp_bytes_total{verdict=\"%s\"} %llu\n",
			idn_name(&idn_verdict_names, v), (unsigned long long)vs[v].bytes);
	fputs("# HELP idn_dp_drops_total Packets refused (dropped, or passed as configured), "
	      "by reason.\n# TYPE idn_dp_drops_total counter\n", f);
	for (int r = 1; r < IDN_DROP_MAX; r++)
		fprintf(f, "idn_dp_drops_total{reason=\"%s\"} %llu\n",
			idn_name(&idn_drop_names, r), (unsigned long long)drops[r]);
	for (size_t k = 0; k < ARRAY_SIZE(node_families); k++) {
		const struct node_family *nf = &node_families[k];

		fprintf(f, "# HELP %s %s\n# TYPE %s counter\n", nf->name, nf->help, nf->name);
		for (__u32 id = 0; id < IDN_MAX_NODES; id++)
			if (ns[id].packets || ns[id].flows)
				fprintf(f, "%s{node=\"%u\"} %llu\n", nf->name, id,
					(unsigned long long)*(const __u64 *)((const char *)&ns[id] +
									  nf->off));
	}
	fputs("# HELP idn_dp_cap_flows_total New-flow decisions per capability and verdict.\n"
	      "# TYPE idn_dp_cap_flows_total counter\n", f);
	fd = idn_map_fd(&G.maps, IDN_MAP_CAP_STATS);
	while (fd >= 0 && !bpf_map_get_next_key(fd, pkey, &next)) {
		struct idn_cstat cs;

		key = next;
		pkey = &key;
		if (idn_cstat_read(&G.maps, key, &cs))
			continue;	/* deleted meanwhile */
		idn_fmt_cap(key, cb, sizeof(cb));
		for (int v = 0; v < IDN_V_MAX; v++)
			if (cs.flows[v])
				fprintf(f, "idn_dp_cap_flows_total{cap=\"%s\",verdict=\"%s\"} %llu\n",
					cb, idn_name(&idn_verdict_names, v),
					(unsigned long long)cs.flows[v]);
	}
	free(ns);
	if (fclose(f)) {
		free(buf);
		idn_err(-ENOMEM, "out of memory");
		return NULL;
	}
	return buf;
}

static int stats_prometheus(void)
{
	char *t = prom_text();

	if (!t)
		return runtime_error("stats: %s", idn_errmsg());
	fputs(t, stdout);
	free(t);
	return EXIT_OK;
}

static enum MHD_Result serve_one(void *cls, struct MHD_Connection *c, const char *url,
				 const char *method, const char *version,
				 const char *upload, size_t *upload_len, void **state)
{
	struct MHD_Response *r;
	enum MHD_Result ret;
	unsigned int code = MHD_HTTP_OK;
	char *t = NULL;
	const char *body;

	if (strcmp(method, "GET")) {
		body = "only GET\n";
		code = MHD_HTTP_METHOD_NOT_ALLOWED;
	} else if (strcmp(url, "/metrics")) {
		body = "not found: the counters are at /metrics\n";
		code = MHD_HTTP_NOT_FOUND;
	} else if (!(t = prom_text())) {
		body = idn_errmsg();
		code = MHD_HTTP_SERVICE_UNAVAILABLE;
	} else {
		body = t;
	}
	r = MHD_create_response_from_buffer(strlen(body), (void *)body, MHD_RESPMEM_MUST_COPY);
	free(t);
	if (!r)
		return MHD_NO;
	MHD_add_response_header(r, "Content-Type", "text/plain; version=0.0.4");
	ret = MHD_queue_response(c, code, r);
	MHD_destroy_response(r);
	return ret;
}

static volatile sig_atomic_t serve_stop;

static void on_signal(int sig)
{
	serve_stop = 1;
}

/* stats serve: a Prometheus exporter of this pin directory's counters. */
static int stats_serve(int argc, char **argv)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(9477) };
	struct sigaction act = { .sa_handler = on_signal };
	struct MHD_Daemon *d;
	char *t;

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	while (argc > 0) {
		if (matches(*argv, "listen")) {
			char host[64], *colon;
			long port;

			NEXT_ARG();
			colon = strrchr(*argv, ':');
			if (!colon || colon == *argv || (size_t)(colon - *argv) >= sizeof(host))
				return usage_error("invalid listen \"%s\" (expected ADDR:PORT)", *argv);
			snprintf(host, sizeof(host), "%.*s", (int)(colon - *argv), *argv);
			port = strtol(colon + 1, &t, 10);
			if (*t || port < 1 || port > 65535 || inet_pton(AF_INET, host, &sa.sin_addr) != 1)
				return usage_error("invalid listen \"%s\" (expected IPv4ADDR:PORT)",
						   *argv);
			sa.sin_port = htons((uint16_t)port);
		} else {
			return usage_error("unknown argument \"%s\", try \"idnctl stats help\".",
					   *argv);
		}
		argc--;
		argv++;
	}
	/* the maps must be there before we say we serve them */
	t = prom_text();
	if (!t)
		return runtime_error("stats serve: %s", idn_errmsg());
	free(t);
	d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG, 0, NULL, NULL,
			     serve_one, NULL, MHD_OPTION_SOCK_ADDR, &sa,
			     MHD_OPTION_CONNECTION_LIMIT, 64u, MHD_OPTION_CONNECTION_TIMEOUT, 10u,
			     MHD_OPTION_END);
	if (!d) {
		char a[INET_ADDRSTRLEN];

		inet_ntop(AF_INET, &sa.sin_addr, a, sizeof(a));
		return runtime_error("stats serve: cannot listen on %s:%u", a, ntohs(sa.sin_port));
	}
	sigaction(SIGINT, &act, NULL);
	sigaction(SIGTERM, &act, NULL);
	pr_info("serving the dataplane counters of %s on /metrics\n", G.maps.dir);
	while (!serve_stop)
		pause();
	MHD_stop_daemon(d);
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
	if (matches(*argv, "prometheus")) {
		if (argc > 1)
			return usage_error("unknown argument \"%s\", try \"idnctl stats help\".", argv[1]);
		return stats_prometheus();
	}
	if (matches(*argv, "serve"))
		return stats_serve(argc - 1, argv + 1);
	if (matches(*argv, "help"))
		return usage();
	return unknown_cmd("stats", *argv);
}
