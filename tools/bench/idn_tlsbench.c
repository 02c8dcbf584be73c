// SPDX-License-Identifier: GPL-2.0
/*
 * idn_tlsbench.c - the cost of mutual TLS on idnd's API
 * (tools/bench/run.sh placement; docs/security.md, docs/benchmarks.md):
 *
 *   idn_tlsbench -u PLAIN_URL -U TLS_URL --ca F --cert F --key F
 *                [-c CLIENTS] [-d SECONDS] [-r ROUNDS] [-p PATH]
 *
 * Two idnds started alike, one --insecure (PLAIN_URL, http://) and one
 * with --ca/--cert/--key (TLS_URL, https://). CLIENTS threads (4) each
 * keep one connection (libcurl through ctl/lib/http.c, as idnctl and the
 * agents) and send GET PATH (/v1/status) back to back for SECONDS (2);
 * the rounds alternate plain and TLS so both see the same machine. A
 * connection is made (TLS handshake included) once per thread and round,
 * as a keep-alive client does. Prints, median over ROUNDS (3):
 *
 *   idnd_api_rps_plain N req/s
 *   idnd_api_rps_mtls N req/s
 *   tls_api_rps_vs_plain R ratio      (mTLS / plain; target >= 0.5)
 *
 * A request that is not answered 200 fails the run (exit 1).
 */
#include <getopt.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "http.h"

struct job {
	const char *url;
	const struct idn_tls *tls;
	double secs;
	long n, bad;
	char err[256];
};

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void *client(void *arg)
{
	struct job *j = arg;
	CURL *c = curl_easy_init();
	double end = now() + j->secs;

	if (!c) {
		j->bad++;
		return NULL;
	}
	while (now() < end) {
		struct idn_http_buf b = {};
		long code = 0;

		if (idn_http_request(c, j->tls, "GET", j->url, NULL, 5000, &b, &code, j->err,
				     sizeof(j->err)) || code != 200) {
			if (!j->err[0])
				snprintf(j->err, sizeof(j->err), "HTTP %ld", code);
			j->bad++;
		} else {
			j->n++;
		}
		free(b.p);
		if (j->bad)
			break;
	}
	curl_easy_cleanup(c);
	return NULL;
}

/* requests/s of one round; < 0 when a request failed */
static double round_rps(const char *url, const struct idn_tls *tls, int clients, double secs)
{
	pthread_t th[64];
	struct job jobs[64];
	double t0 = now(), dt;
	long n = 0;

	for (int i = 0; i < clients; i++) {
		jobs[i] = (struct job){ .url = url, .tls = tls, .secs = secs };
		pthread_create(&th[i], NULL, client, &jobs[i]);
	}
	for (int i = 0; i < clients; i++) {
		pthread_join(th[i], NULL);
		if (jobs[i].bad) {
			fprintf(stderr, "idn_tlsbench: %s: %s\n", url, jobs[i].err);
			return -1;
		}
		n += jobs[i].n;
	}
	dt = now() - t0;
	return n / dt;
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "ca", required_argument, NULL, 1 },
		{ "cert", required_argument, NULL, 2 },
		{ "key", required_argument, NULL, 3 },
		{}
	};
	struct idn_tls plain = { .insecure = true }, tls = {};
	const char *pu = NULL, *tu = NULL, *path = "/v1/status";
	int clients = 4, rounds = 3, o;
	double secs = 2, rp[16], rt[16], mp, mt;
	char up[512], ut[512];

	while ((o = getopt_long(argc, argv, "u:U:c:d:r:p:", lo, NULL)) != -1) {
		switch (o) {
		case 'u': pu = optarg; break;
		case 'U': tu = optarg; break;
		case 'c': clients = atoi(optarg); break;
		case 'd': secs = atof(optarg); break;
		case 'r': rounds = atoi(optarg); break;
		case 'p': path = optarg; break;
		case 1: tls.ca = optarg; break;
		case 2: tls.cert = optarg; break;
		case 3: tls.key = optarg; break;
		default: goto usage;
		}
	}
	if (!pu || !tu || !tls.ca || !tls.cert || !tls.key || clients < 1 || clients > 64 ||
	    rounds < 1 || rounds > 16 || !(secs > 0 && secs <= 60))
		goto usage;
	snprintf(up, sizeof(up), "%s%s", pu, path);
	snprintf(ut, sizeof(ut), "%s%s", tu, path);
	curl_global_init(CURL_GLOBAL_DEFAULT);
	for (int r = 0; r < rounds; r++) {
		rp[r] = round_rps(up, &plain, clients, secs);
		rt[r] = round_rps(ut, &tls, clients, secs);
		if (rp[r] < 0 || rt[r] < 0)
			return 1;
		fprintf(stderr, "# round %d: plain %.0f req/s, mTLS %.0f req/s\n", r + 1, rp[r],
			rt[r]);
	}
	qsort(rp, rounds, sizeof(rp[0]), cmp);
	qsort(rt, rounds, sizeof(rt[0]), cmp);
	mp = rp[rounds / 2];
	mt = rt[rounds / 2];
	printf("idnd_api_rps_plain %.0f req/s\n", mp);
	printf("idnd_api_rps_mtls %.0f req/s\n", mt);
	printf("tls_api_rps_vs_plain %.3f ratio\n", mp > 0 ? mt / mp : 0);
	curl_global_cleanup();
	return 0;
usage:
	fprintf(stderr, "usage: idn_tlsbench -u PLAIN_URL -U TLS_URL --ca F --cert F --key F "
		"[-c CLIENTS] [-d SECONDS] [-r ROUNDS] [-p PATH]\n");
	return 2;
}
