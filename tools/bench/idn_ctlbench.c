// SPDX-License-Identifier: GPL-2.0
/*
 * idn_ctlbench.c - controller figures measured against the real pinned
 * dataplane maps (tools/bench/run.sh placement):
 *
 *   idn_ctlbench push -P PIN [-n 10000] [-r ROUNDS]
 *	plan_push_10k_ms: N plan entries of IDN_MAX_CAND candidates
 *	committed as one generation with idn_plan_commit(); time from the
 *	call to its return (the config flip is its last step). Rounds
 *	rotate three disjoint plan sets: after the first, a round replaces
 *	the whole active set (N deletes + N adds) and clears N stale
 *	entries of the inactive slot (the worst case). The first 3 rounds
 *	warm the process (libidn keeps its commit buffers, as in idnd);
 *	plan_push_10k_ms is the median of the ROUNDS after them, and
 *	plan_push_10k_first_ms the first commit of a cold process into
 *	empty maps.
 *
 *   idn_ctlbench drain -P PIN -u HOST:PORT -i NODE -t TIMEOUT_MS [-r ROUNDS]
 *	node_down_to_drained_ms: with idnd running on PIN and NODE placed,
 *	heartbeat NODE for a while, stop, and poll the maps from outside
 *	until NODE is DOWN in idn_nodes and in no plan of the active slot.
 *	Prints the excess over the timeout, measured from the moment the
 *	last heartbeat was sent (an upper bound). Median over rounds.
 *
 *   idn_ctlbench solvelat -u HOST:PORT [-g CAPSxNODES] [-r ROUNDS]
 *	idnd_api_p99_ms_during_solve: with idnd running with -G, one thread
 *	asks for dry-run solves of a generated CAPSxNODES instance (20
 *	regions, default 2000x5000), ROUNDS (5) one after the other, while
 *	the main thread sends GET /v1/status back to back (a connection
 *	each); p99 of those answered while a solve ran, in ms. Also prints
 *	the p99 with no solve running (same idnd, just before) and how long
 *	the solves took. A status request that fails counts as 10 s.
 *
 * Exit 0, 1 on failure, 2 on bad usage.
 */
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "libidn.h"

IDN_ASSERT_ABI();

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec * 1e-6;
}

static int dcmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
	qsort(v, n, sizeof(*v), dcmp);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static int bench_push(struct idn_maps *m, int n, int rounds)
{
	struct idn_plan_op *ops = calloc(n, sizeof(*ops));
	double *t, first;
	__u32 gen;

	rounds += 3;
	t = calloc(rounds, sizeof(*t));
	if (!ops || !t)
		return 1;
	for (int r = 0; r < rounds; r++) {
		double t0;

		for (int i = 0; i < n; i++) {
			struct idn_plan_op *op = &ops[i];

			memset(op, 0, sizeof(*op));
			op->key.cap = IDN_CAP(1 + i + (r % 3) * n, 0);
			op->key.tier = IDN_ANY;
			op->key.policy = IDN_ANY;
			for (int w = 0; w < IDN_W_MAX; w++)
				op->plan.weight[w] = 256;
			op->plan.domain_mask = 0xffffffff;
			op->plan.n_cand = IDN_MAX_CAND;
			for (int c = 0; c < IDN_MAX_CAND; c++) {
				op->plan.cand[c].node = (i * 7 + c * 13) % IDN_MAX_NODES;
				op->plan.cand[c].exec_us = 1000 + c;
			}
		}
		/* the previous round's set leaves: delete ops for it */
		t0 = now_ms();
		if (r) {
			struct idn_plan_op *all = calloc(2 * (size_t)n, sizeof(*all));

			if (!all)
				return 1;
			for (int i = 0; i < n; i++) {
				all[i].del = true;
				all[i].key = ops[i].key;
				all[i].key.cap = IDN_CAP(1 + i + ((r - 1) % 3) * n, 0);
				all[n + i] = ops[i];
			}
			t0 = now_ms();
			if (idn_plan_commit(m, all, 2 * n, &gen)) {
				fprintf(stderr, "idn_ctlbench: commit: %s\n", idn_errmsg());
				return 1;
			}
			t[r] = now_ms() - t0;
			free(all);
		} else {
			if (idn_plan_commit(m, ops, n, &gen)) {
				fprintf(stderr, "idn_ctlbench: commit: %s\n", idn_errmsg());
				return 1;
			}
			t[r] = now_ms() - t0;
		}
		fprintf(stderr, "# push round %d: %d entries, generation %u, %.2f ms\n",
			r, n, gen, t[r]);
	}
	/* leave the maps empty of bench plans */
	for (int i = 0; i < n; i++) {
		ops[i].del = true;
		ops[i].key.cap = IDN_CAP(1 + i + ((rounds - 1) % 3) * n, 0);
	}
	idn_plan_commit(m, ops, n, &gen);
	first = t[0];
	printf("plan_push_10k_ms %.2f ms\n", median(t + 3, rounds - 3));
	printf("plan_push_10k_first_ms %.2f ms\n", first);
	free(ops);
	free(t);
	return 0;
}

/* One HTTP POST; returns the status code or -1. */
static int http_post(const char *host, int port, const char *path, const char *body)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port) };
	char req[512], resp[256];
	int fd, n, code = -1;

	if (inet_pton(AF_INET, host, &sa.sin_addr) != 1)
		return -1;
	fd = socket(AF_INET, SOCK_STREAM, 0);
	if (fd < 0)
		return -1;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)))
		goto out;
	n = snprintf(req, sizeof(req),
		     "POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\n"
		     "Content-Length: %zu\r\nConnection: close\r\n\r\n%s",
		     path, host, strlen(body), body);
	if (write(fd, req, n) != n)
		goto out;
	n = read(fd, resp, sizeof(resp) - 1);
	if (n > 12) {
		resp[n] = 0;
		code = atoi(resp + 9);
	}
out:
	close(fd);
	return code;
}

/* Node DOWN in idn_nodes and in no candidate list of the active slot. */
static int drained(struct idn_maps *m, __u32 node)
{
	struct idn_plan_entry *e = NULL;
	struct idn_config cfg;
	struct idn_node nd;
	int n, in_plan = 0;

	if (idn_node_get(m, node, &nd) || nd.health != IDN_HEALTH_DOWN)
		return 0;
	if (idn_config_get(m, &cfg))
		return -1;
	n = idn_plan_list(m, cfg.active_slot & 1, &e);
	if (n < 0)
		return -1;
	for (int i = 0; i < n && !in_plan; i++)
		for (int c = 0; c < e[i].plan.n_cand; c++)
			if (e[i].plan.cand[c].node == node)
				in_plan = 1;
	free(e);
	return !in_plan;
}

static int bench_drain(struct idn_maps *m, const char *url, __u32 node, double tmo,
		       int rounds)
{
	char host[64], path[64];
	double *t = calloc(rounds, sizeof(*t));
	int port;
	const char *colon = strrchr(url, ':');

	if (!t || !colon || colon - url >= (int)sizeof(host))
		return 2;
	memcpy(host, url, colon - url);
	host[colon - url] = 0;
	port = atoi(colon + 1);
	snprintf(path, sizeof(path), "/v1/nodes/%u/heartbeat", node);
	for (int r = 0; r < rounds; r++) {
		double last = 0, t0, deadline;
		int d = 0;

		/* up: heartbeat for a while (brings the node back after a round) */
		t0 = now_ms();
		while (now_ms() - t0 < tmo / 2 + 200 || drained(m, node)) {
			last = now_ms();
			if (http_post(host, port, path, "{\"load\":100,\"queue\":1}") != 200) {
				fprintf(stderr, "idn_ctlbench: heartbeat to %s failed\n", url);
				return 1;
			}
			usleep(20000);
			if (now_ms() - t0 > 10 * tmo + 5000) {
				fprintf(stderr, "idn_ctlbench: node %u never came back\n", node);
				return 1;
			}
		}
		deadline = last + tmo;
		/* silent: poll the maps until the node is drained */
		while ((d = drained(m, node)) == 0 && now_ms() < deadline + 10 * tmo + 5000)
			usleep(200);
		if (d != 1) {
			fprintf(stderr, "idn_ctlbench: node %u not drained: %s\n", node,
				d < 0 ? idn_errmsg() : "timeout");
			return 1;
		}
		t[r] = now_ms() - deadline;
		fprintf(stderr, "# drain round %d: drained %.2f ms after the timeout\n", r, t[r]);
	}
	printf("node_down_to_drained_ms %.2f ms\n", median(t, rounds));
	free(t);
	return 0;
}

/* One HTTP request; the whole answer read (until close). Status code or -1. */
static int http_req(const char *host, int port, const char *m, const char *path,
		    const char *body)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port) };
	char req[1024], buf[16384];
	int fd, n, code = -1, got = 0;

	if (inet_pton(AF_INET, host, &sa.sin_addr) != 1)
		return -1;
	fd = socket(AF_INET, SOCK_STREAM, 0);
	if (fd < 0)
		return -1;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)))
		goto out;
	n = snprintf(req, sizeof(req),
		     "%s %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\n"
		     "Content-Length: %zu\r\nConnection: close\r\n\r\n%s",
		     m, path, host, strlen(body), body);
	if (write(fd, req, n) != n)
		goto out;
	while ((n = read(fd, buf, sizeof(buf) - 1)) > 0) {
		if (!got && n > 12) {
			buf[n] = 0;
			code = atoi(buf + 9);
		}
		got = 1;
	}
out:
	close(fd);
	return code;
}

struct solvelat {
	const char *host;
	int port, rounds, caps, nodes, failed;
	volatile int running, done;
	double solve_ms;
};

static void *solve_thread(void *arg)
{
	struct solvelat *s = arg;
	char body[256];

	snprintf(body, sizeof(body), "{\"dry_run\":true,\"generate\":{\"caps\":%d,"
		 "\"nodes\":%d,\"regions\":20}}", s->caps, s->nodes);
	usleep(200000);		/* the baseline first */
	for (int r = 0; r < s->rounds; r++) {
		double t0 = now_ms();
		int code;

		__atomic_store_n(&s->running, 1, __ATOMIC_SEQ_CST);
		code = http_req(s->host, s->port, "POST", "/v1/placement/solve", body);
		__atomic_store_n(&s->running, 0, __ATOMIC_SEQ_CST);
		s->solve_ms += now_ms() - t0;
		fprintf(stderr, "# solve round %d: %d, %.0f ms\n", r, code, now_ms() - t0);
		if (code != 200)
			s->failed = 1;
		usleep(50000);
	}
	__atomic_store_n(&s->done, 1, __ATOMIC_SEQ_CST);
	return NULL;
}

static double p99(double *v, int n)
{
	qsort(v, n, sizeof(*v), dcmp);
	return v[(int)(0.99 * (n - 1))];
}

static int bench_solvelat(const char *url, const char *size, int rounds)
{
	struct solvelat s = { .rounds = rounds, .caps = 2000, .nodes = 5000 };
	int cap = 1 << 20, nb = 0, nd = 0, port;
	double *busy = malloc(cap * sizeof(double)), *idle = malloc(cap * sizeof(double));
	const char *colon = strrchr(url, ':');
	char host[64];
	pthread_t th;

	if (!busy || !idle || !colon || colon - url >= (int)sizeof(host) ||
	    (size && sscanf(size, "%dx%d", &s.caps, &s.nodes) != 2))
		return 2;
	memcpy(host, url, colon - url);
	host[colon - url] = 0;
	port = atoi(colon + 1);
	s.host = host;
	s.port = port;
	if (pthread_create(&th, NULL, solve_thread, &s))
		return 1;
	while (!__atomic_load_n(&s.done, __ATOMIC_SEQ_CST) && nb < cap && nd < cap) {
		int before = __atomic_load_n(&s.running, __ATOMIC_SEQ_CST);
		double t0 = now_ms(), dt;
		int code = http_req(host, port, "GET", "/v1/status", "");
		int after = __atomic_load_n(&s.running, __ATOMIC_SEQ_CST);

		dt = code == 200 ? now_ms() - t0 : 10000;
		if (before && after)
			busy[nb++] = dt;
		else if (!before && !after)
			idle[nd++] = dt;
	}
	pthread_join(th, NULL);
	if (s.failed || nb < 10 || nd < 10) {
		fprintf(stderr, "idn_ctlbench: solvelat: solves %s, %d samples during solves, "
			"%d idle (idnd -G?)\n", s.failed ? "failed" : "ok", nb, nd);
		return 1;
	}
	fprintf(stderr, "# %d status requests during %d solves of %dx%d (%.0f ms each), "
		"%d idle\n", nb, rounds, s.caps, s.nodes, s.solve_ms / rounds, nd);
	printf("idnd_api_p99_ms_during_solve %.2f ms\n", p99(busy, nb));
	printf("idnd_api_p99_ms_idle %.2f ms\n", p99(idle, nd));
	printf("idnd_solve_%dx%d_api_ms %.0f ms\n", s.caps, s.nodes, s.solve_ms / rounds);
	free(busy);
	free(idle);
	return 0;
}

static const char usage_text[] =
"Usage: idn_ctlbench push -P PIN [-n N] [-r ROUNDS]\n"
"       idn_ctlbench drain -P PIN -u HOST:PORT -i NODE -t TIMEOUT_MS [-r ROUNDS]\n"
"       idn_ctlbench solvelat -u HOST:PORT [-g CAPSxNODES] [-r ROUNDS]\n";

int main(int argc, char **argv)
{
	const char *pin = NULL, *url = NULL, *mode, *size = NULL;
	int n = 10000, rounds = 5, node = -1, c, rc;
	long tmo = 0;
	struct idn_maps m;
	struct idn_config cfg;

	if (argc < 2) {
		fputs(usage_text, stderr);
		return 2;
	}
	mode = argv[1];
	optind = 2;
	while ((c = getopt(argc, argv, "P:n:r:u:i:t:g:")) != -1) {
		switch (c) {
		case 'P': pin = optarg; break;
		case 'n': n = atoi(optarg); break;
		case 'r': rounds = atoi(optarg); break;
		case 'u': url = optarg; break;
		case 'i': node = atoi(optarg); break;
		case 't': tmo = atol(optarg); break;
		case 'g': size = optarg; break;
		default: fputs(usage_text, stderr); return 2;
		}
	}
	if (!strcmp(mode, "solvelat")) {	/* idnd's API only: no maps */
		if (!url || rounds <= 0 || rounds > 100) {
			fputs(usage_text, stderr);
			return 2;
		}
		return bench_solvelat(url, size, rounds);
	}
	if (!pin || n <= 0 || n > IDN_MAX_PLANS || rounds <= 0 || rounds > 100) {
		fputs(usage_text, stderr);
		return 2;
	}
	idn_maps_init(&m, pin);
	if (idn_config_get(&m, &cfg)) {
		fprintf(stderr, "idn_ctlbench: maps in %s: %s\n", pin, idn_errmsg());
		return 1;
	}
	if (!strcmp(mode, "push")) {
		rc = bench_push(&m, n, rounds);
	} else if (!strcmp(mode, "drain")) {
		if (!url || node < 0 || node >= IDN_MAX_NODES || tmo <= 0) {
			fputs(usage_text, stderr);
			return 2;
		}
		rc = bench_drain(&m, url, node, tmo, rounds);
	} else {
		fputs(usage_text, stderr);
		rc = 2;
	}
	idn_maps_close(&m);
	return rc;
}
