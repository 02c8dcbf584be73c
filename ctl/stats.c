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
#include "hold.h"
#include "prom.h"

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

/* The node table's live load per node, as the router steers by it. */
static const struct node_gauge {
	const char *name, *help;
	size_t off, size;
	double scale;
} node_gauges[] = {
	{ "idn_dp_node_queue_requests", "Requests waiting or running at a node (node table).",
	  offsetof(struct idn_node, queue_depth), 4, 1 },
	{ "idn_dp_node_pending_tokens", "Prefill tokens outstanding at a node (node table).",
	  offsetof(struct idn_node, pending_tokens), 4, 1 },
	{ "idn_dp_node_charged_tokens", "Prefill tokens sent since the node's last telemetry.",
	  offsetof(struct idn_node, charged_tokens), 4, 1 },
	{ "idn_dp_node_charged_requests", "New flows sent since the node's last telemetry.",
	  offsetof(struct idn_node, charged_reqs), 4, 1 },
	{ "idn_dp_node_load_ratio", "Node load, 0..1 (node table).",
	  offsetof(struct idn_node, load), 2, 1000 },
	{ "idn_dp_node_kv_usage_ratio", "KV cache use of a node, 0..1 (node table).",
	  offsetof(struct idn_node, kv_use), 2, 1000 },
};

/*
 * idn.ko's hold queues (demand misses parked until their capability is
 * placed), when the module is loaded: packets per outcome and what waits
 * now. Without the module the families are left out.
 */
static void prom_hold(struct idn_prom *p)
{
	struct idn_hold_queue *q = NULL;
	struct idn_hold *h;
	__u64 st[__IDN_HS_MAX] = { 0 };
	__u64 pkts = 0, bytes = 0;
	int n;

	if (idn_hold_open(&h))
		return;
	if (idn_hold_stats(h, st)) {
		idn_hold_close(h);
		return;
	}
	n = idn_hold_queues(h, &q);
	idn_hold_close(h);
	for (int i = 0; i < n; i++) {
		pkts += q[i].pkts;
		bytes += q[i].bytes;
	}
	free(q);
	idn_prom_family(p, "idn_hold_packets_total", IDN_PROM_COUNTER,
			"Packets of demand misses through idn.ko's hold queues, by outcome.");
	for (int i = IDN_HS_HELD; i < __IDN_HS_MAX; i++)	/* idnctl hold's names */
		idn_prom_u64(p, NULL, st[i], "outcome", idn_name(&idn_hold_stat_names, i), NULL);
	idn_prom_one_u64(p, "idn_hold_queues", IDN_PROM_GAUGE,
			 "Hold queues (one per capability waiting).", n < 0 ? 0 : n);
	idn_prom_one_u64(p, "idn_hold_queued_packets", IDN_PROM_GAUGE,
			 "Packets waiting in the hold queues.", pkts);
	idn_prom_one_u64(p, "idn_hold_queued_bytes", IDN_PROM_GAUGE,
			 "Bytes waiting in the hold queues.", bytes);
}

/*
 * The dataplane's counters in the Prometheus text format (version 0.0.4)
 * through the shared writer (ctl/lib/prom.c): per verdict, drops per
 * reason, per node (traffic and the node table's load), new flows per
 * capability (label class/variant as idnctl prints it) and verdict, and
 * idn.ko's hold queues. Return: a malloc()ed text, or NULL with
 * idn_errmsg() set.
 */
static char *prom_text(void)
{
	struct idn_vstat vs[IDN_V_MAX];
	__u64 drops[IDN_DROP_MAX];
	struct idn_nstat *ns;
	struct idn_node *nt;
	struct idn_prom p;
	char *buf = NULL, cb[32], id[16];
	size_t len = 0;
	FILE *f;
	int fd;
	__u32 key, next, *pkey = NULL;

	ns = calloc(IDN_MAX_NODES, sizeof(*ns));
	nt = calloc(IDN_MAX_NODES, sizeof(*nt));
	if (!ns || !nt) {
		free(ns);
		free(nt);
		idn_err(-ENOMEM, "out of memory");
		return NULL;
	}
	if (idn_vstats_read(&G.maps, vs) || idn_drops_read(&G.maps, drops) ||
	    idn_nstats_read(&G.maps, ns) || idn_node_read_all(&G.maps, nt)) {
		free(ns);
		free(nt);
		return NULL;
	}
	f = open_memstream(&buf, &len);
	if (!f) {
		free(ns);
		free(nt);
		idn_err(-errno, "open_memstream: %s", strerror(errno));
		return NULL;
	}
	idn_prom_init(&p, f);
	idn_prom_family(&p, "idn_dp_packets_total", IDN_PROM_COUNTER,
			"Packets the steering dataplane handled, by verdict.");
	for (int v = 0; v < IDN_V_MAX; v++)
		idn_prom_u64(&p, NULL, vs[v].packets, "verdict", idn_name(&idn_verdict_names, v),
			     NULL);
	idn_prom_family(&p, "idn_dp_bytes_total", IDN_PROM_COUNTER,
			"Bytes the steering dataplane handled, by verdict.");
	for (int v = 0; v < IDN_V_MAX; v++)
		idn_prom_u64(&p, NULL, vs[v].bytes, "verdict", idn_name(&idn_verdict_names, v),
			     NULL);
	idn_prom_family(&p, "idn_dp_drops_total", IDN_PROM_COUNTER,
			"Packets refused (dropped, or passed as configured), by reason.");
	for (int r = 1; r < IDN_DROP_MAX; r++)
		idn_prom_u64(&p, NULL, drops[r], "reason", idn_name(&idn_drop_names, r), NULL);
	for (size_t k = 0; k < ARRAY_SIZE(node_families); k++) {
		const struct node_family *nf = &node_families[k];

		idn_prom_family(&p, nf->name, IDN_PROM_COUNTER, nf->help);
		for (__u32 n = 0; n < IDN_MAX_NODES; n++) {
			if (!ns[n].packets && !ns[n].flows)
				continue;
			snprintf(id, sizeof(id), "%u", n);
			idn_prom_u64(&p, NULL, *(const __u64 *)((const char *)&ns[n] + nf->off),
				     "node", id, NULL);
		}
	}
	idn_prom_family(&p, "idn_dp_node_health", IDN_PROM_GAUGE,
			"Nodes in the node table, 1 per node in its health state.");
	for (__u32 n = 0; n < IDN_MAX_NODES; n++) {
		if (!nt[n].health)
			continue;
		snprintf(id, sizeof(id), "%u", n);
		idn_prom_u64(&p, NULL, 1, "node", id, "health",
			     idn_name(&idn_health_names, nt[n].health), NULL);
	}
	for (size_t k = 0; k < ARRAY_SIZE(node_gauges); k++) {
		const struct node_gauge *g = &node_gauges[k];

		idn_prom_family(&p, g->name, IDN_PROM_GAUGE, g->help);
		for (__u32 n = 0; n < IDN_MAX_NODES; n++) {
			const char *fp = (const char *)&nt[n] + g->off;
			double v = g->size == 2 ? *(const __u16 *)fp : *(const __u32 *)fp;

			if (!nt[n].health)
				continue;
			snprintf(id, sizeof(id), "%u", n);
			idn_prom_f64(&p, NULL, v / g->scale, "node", id, NULL);
		}
	}
	idn_prom_family(&p, "idn_dp_cap_flows_total", IDN_PROM_COUNTER,
			"New-flow decisions per capability and verdict.");
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
				idn_prom_u64(&p, NULL, cs.flows[v], "cap", cb, "verdict",
					     idn_name(&idn_verdict_names, v), NULL);
	}
	prom_hold(&p);
	free(ns);
	free(nt);
	if (idn_prom_end(&p))
		pr_warn("stats: exposition: %s\n", p.why);
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
