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
 *   idn_ctlbench revoke -P PIN -u HOST:PORT [-n CAPS] [-r ROUNDS]
 *	revoke_to_plans_ms: with idnd running on PIN and two nodes up, a
 *	publisher key trusted (nodes 1 and 2 kept up by heartbeats every
 *	100 ms from a thread; idnd's -t well above it), CAPS (300) unsigned background capabilities
 *	placed and a require_signed policy class (their 16 empty plans each:
 *	~5,000 plan entries a generation); per round a capability is
 *	registered as signed version 1 (latency 1111 us) and signed version
 *	2 (2222 us) and placed. Time from the call of POST
 *	/v1/caps/LABEL/revoke {"version": 2} to the moment the pinned maps'
 *	active slot, polled from outside as idnctl plan show reads them,
 *	holds no plan of the label compiled from version 2 (exec_us 2222)
 *	and the default plan is version 1's. Median over rounds.
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

#include <sodium.h>

#include "libidn.h"
#include "capsig.h"

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

/* One HTTP request of any size; status code or -1. The answer's first
 * bytes (headers and body) into ans when given. */
static int http_ans(const char *host, int port, const char *m, const char *path,
		    const char *body, char *ans, size_t anslen)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port) };
	char head[512], buf[4096];
	int fd, n, code = -1, got = 0;
	size_t have = 0;
	size_t len = strlen(body), off = 0;

	if (inet_pton(AF_INET, host, &sa.sin_addr) != 1)
		return -1;
	fd = socket(AF_INET, SOCK_STREAM, 0);
	if (fd < 0)
		return -1;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)))
		goto out;
	n = snprintf(head, sizeof(head),
		     "%s %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\n"
		     "Content-Length: %zu\r\nConnection: close\r\n\r\n", m, path, host, len);
	if (write(fd, head, n) != n)
		goto out;
	while (off < len) {
		ssize_t w = write(fd, body + off, len - off);

		if (w <= 0)
			goto out;
		off += w;
	}
	while ((n = read(fd, buf, sizeof(buf) - 1)) > 0) {
		if (!got && n > 12) {
			buf[n] = 0;
			code = atoi(buf + 9);
		}
		got = 1;
		if (ans && have + 1 < anslen) {
			size_t k = (size_t)n < anslen - 1 - have ? (size_t)n : anslen - 1 - have;

			memcpy(ans + have, buf, k);
			have += k;
			ans[have] = 0;
		}
	}
out:
	close(fd);
	return code;
}

static int http_big(const char *host, int port, const char *m, const char *path,
		    const char *body)
{
	return http_ans(host, port, m, path, body, NULL, 0);
}

/*
 * The active slot's plans of cap: 1 when none holds a candidate of
 * exec_us `gone` and the default plan's candidates have exec_us `now`;
 * 0 otherwise, -1 on a map error.
 */
static int version_state(struct idn_maps *m, __u32 cap, __u32 gone, __u32 now)
{
	struct idn_plan_entry *e = NULL;
	struct idn_config cfg;
	int n, stale = 0, def = 0;

	if (idn_config_get(m, &cfg))
		return -1;
	n = idn_plan_list(m, cfg.active_slot & 1, &e);
	if (n < 0)
		return -1;
	for (int i = 0; i < n; i++) {
		if (e[i].key.cap != cap)
			continue;
		for (int c = 0; c < e[i].plan.n_cand; c++) {
			stale |= e[i].plan.cand[c].exec_us == gone;
			if (e[i].key.tier == IDN_ANY && e[i].key.policy == IDN_ANY)
				def |= e[i].plan.cand[c].exec_us == now;
		}
	}
	free(e);
	return !stale && def;
}

static int post_signed(const char *host, int port, const uint8_t sk[64], const char *pub,
		       uint32_t cls, uint32_t ver)
{
	struct capsig_manifest man = { .cap = IDN_CAP(cls, 0), .version = ver, .privacy = 0xf,
				       .locality = 0x7, .trust = 0xff };
	json_object *d;
	uint8_t sig[64];
	char body[512];
	int code;

	snprintf(man.publisher, sizeof(man.publisher), "%s", pub);
	snprintf(man.name, sizeof(man.name), "revoke-%u", cls);
	snprintf(man.origin, sizeof(man.origin), "idn_ctlbench");
	randombytes_buf(man.sha256, sizeof(man.sha256));
	if (capsig_sign(&man, sk, sig))
		return -1;
	snprintf(body, sizeof(body), "{\"class\":%u,\"name\":\"%s\",\"version\":%u,"
		 "\"latency_us\":%u,\"resources\":{\"mem_gb\":1}}", cls, man.name, ver,
		 1111 * ver);
	d = json_tokener_parse(body);
	if (!d)
		return -1;
	json_object_object_add(d, "manifest", capsig_to_json(&man, sig));
	code = http_big(host, port, "POST", "/v1/caps",
			json_object_to_json_string_ext(d, JSON_C_TO_STRING_PLAIN));
	json_object_put(d);
	return code;
}

static int revoke_rounds(struct idn_maps *m, const char *url, int n_bg, int rounds);

struct beat {
	const char *host;
	int port;
	volatile int stop;
};

/* nodes 1 and 2 heartbeat every 100 ms: they stay up */
static void *beat_thread(void *arg)
{
	struct beat *b = arg;

	while (!b->stop) {
		http_big(b->host, b->port, "POST", "/v1/nodes/1/heartbeat", "{\"load\":100}");
		http_big(b->host, b->port, "POST", "/v1/nodes/2/heartbeat", "{\"load\":100}");
		usleep(100000);
	}
	return NULL;
}

static int bench_revoke(struct idn_maps *m, const char *url, int n_bg, int rounds)
{
	struct beat beat = {};
	pthread_t bt;
	int rc;

	beat.host = url;
	beat.port = 0;
	{
		const char *colon = strrchr(url, ':');
		static char h[64];

		if (!colon || colon - url >= (int)sizeof(h))
			return 2;
		memcpy(h, url, colon - url);
		h[colon - url] = 0;
		beat.host = h;
		beat.port = atoi(colon + 1);
	}
	if (pthread_create(&bt, NULL, beat_thread, &beat))
		return 1;
	usleep(100000);	/* the nodes are up before the first solve */
	rc = revoke_rounds(m, url, n_bg, rounds);
	beat.stop = 1;
	pthread_join(bt, NULL);
	return rc;
}

static int revoke_rounds(struct idn_maps *m, const char *url, int n_bg, int rounds)
{
	uint8_t pk[32], sk[64];
	char host[64], body[256], hex[65], path[64];
	const char *colon = strrchr(url, ':');
	double *t = calloc(rounds, sizeof(*t));
	int port, code;

	if (!t || !colon || colon - url >= (int)sizeof(host) || sodium_init() < 0)
		return 2;
	memcpy(host, url, colon - url);
	host[colon - url] = 0;
	port = atoi(colon + 1);
	crypto_sign_keypair(pk, sk);
	capsig_hex(hex, pk, 32);
	snprintf(body, sizeof(body), "{\"name\":\"bench\",\"pubkey\":\"%s\"}", hex);
	code = http_big(host, port, "POST", "/v1/publishers", body);
	if (code != 200 && code != 201)
		goto fail;
	code = http_big(host, port, "POST", "/v1/policies",
			"{\"name\":\"signed\",\"privacy\":\"tenant\",\"require_signed\":true}");
	if (code != 200 && code != 201)
		goto fail;
	for (int i = 0; i < n_bg; i++) {
		snprintf(body, sizeof(body), "{\"class\":%d,\"name\":\"bg%d\",\"resources\":"
			 "{\"mem_gb\":0.01}}", 1000 + i, i);
		code = http_big(host, port, "POST", "/v1/caps", body);
		if (code != 200 && code != 201)
			goto fail;
		snprintf(body, sizeof(body), "{\"cap\":%u,\"region\":%d,\"rps\":1}",
			 IDN_CAP(1000 + i, 0), i & 1);
		if (http_big(host, port, "POST", "/v1/demand", body) != 200)
			goto fail;
	}
	for (int r = 0; r < rounds; r++) {
		uint32_t cls = 200 + r, label = IDN_CAP(cls, 0);
		double t0, deadline, t_api;
		char ans[2048] = "";
		const char *in_idnd;
		int st = 0;

		for (uint32_t v = 1; v <= 2; v++)
			if ((code = post_signed(host, port, sk, "bench", cls, v)) != 200 &&
			    code != 201)
				goto fail;
		snprintf(body, sizeof(body), "{\"cap\":%u,\"region\":0,\"rps\":10}", label);
		if ((code = http_big(host, port, "POST", "/v1/demand", body)) != 200 ||
		    (code = http_big(host, port, "POST", "/v1/placement/solve", "{}")) != 200)
			goto fail;
		deadline = now_ms() + 5000;
		while ((st = version_state(m, label, 1111, 2222)) == 0 && now_ms() < deadline)
			usleep(1000);
		if (st != 1) {
			fprintf(stderr, "idn_ctlbench: version 2 of cap %u never in the plans\n",
				cls);
			return 1;
		}
		snprintf(path, sizeof(path), "/v1/caps/%u/revoke", label);
		t0 = now_ms();
		code = http_ans(host, port, "POST", path, "{\"version\":2}", ans, sizeof(ans));
		t_api = now_ms() - t0;
		if (code != 200)
			goto fail;
		while ((st = version_state(m, label, 2222, 1111)) == 0 && now_ms() < t0 + 10000)
			usleep(100);
		if (st != 1) {
			fprintf(stderr, "idn_ctlbench: revoked version 2 of cap %u still planned: "
				"%s\n", cls, st < 0 ? idn_errmsg() : "timeout");
			return 1;
		}
		t[r] = now_ms() - t0;
		in_idnd = strstr(ans, "\"ms\":");
		fprintf(stderr, "# revoke round %d: version 2 gone from the plans %.2f ms after "
			"the call (answer after %.2f ms, idnd's own %.2f ms)\n", r, t[r], t_api,
			in_idnd ? atof(in_idnd + 5) : -1.0);
	}
	printf("revoke_to_plans_ms %.2f ms\n", median(t, rounds));
	free(t);
	return 0;
fail:
	fprintf(stderr, "idn_ctlbench: revoke setup: HTTP %d from idnd at %s\n", code, url);
	free(t);
	return 1;
}

static const char usage_text[] =
"Usage: idn_ctlbench push -P PIN [-n N] [-r ROUNDS]\n"
"       idn_ctlbench drain -P PIN -u HOST:PORT -i NODE -t TIMEOUT_MS [-r ROUNDS]\n"
"       idn_ctlbench solvelat -u HOST:PORT [-g CAPSxNODES] [-r ROUNDS]\n"
"       idn_ctlbench revoke -P PIN -u HOST:PORT [-n CAPS] [-r ROUNDS]\n";

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
	} else if (!strcmp(mode, "revoke")) {
		if (!url) {
			fputs(usage_text, stderr);
			return 2;
		}
		rc = bench_revoke(&m, url, n == 10000 ? 300 : n, rounds);
	} else {
		fputs(usage_text, stderr);
		rc = 2;
	}
	idn_maps_close(&m);
	return rc;
}
