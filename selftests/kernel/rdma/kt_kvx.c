// SPDX-License-Identifier: GPL-2.0
/*
 * kt_kvx.c - a KV transfer endpoint over the kvxfer library for the kernel
 * tier's RDMA test (selftests/kernel/test_rdma.sh) and the rdma benchmark
 * (tools/bench/rdma_guest.sh); built by selftests/kernel/run.sh with
 * agent/kvxfer.c + agent/kvx_rdma.c, run in the QEMU guest on Soft-RoCE.
 *
 *   kt_kvx recv ADDR:PORT BYTES COUNT [TIMEOUT_S]
 *	registers a BYTES destination arena (filled with 0xee), listens and
 *	prints a line per finished receive (ok or failed) until COUNT of
 *	them: "rx ok=N failed=N rdma=N hash=H err=..." and "rx rdma ...".
 *   kt_kvx send PEER BYTES BLOCK SEED [FAULT [SLICE [MS]]]
 *	registers a BYTES source arena (pseudo-random from SEED), moves it
 *	as BYTES/BLOCK descriptors, block i to block n-1-i, prints
 *	"tx state=... transport=... bytes=... secs=... mibps=...", "tx msg=...",
 *	"tx rdma ..." and "tx expect=H" (the hash the destination must have).
 *	FAULT: none|corrupt|truncate|slow. Exit 0 when the transfer is done.
 * Env: KT_POLICY rdma|tcp|auto (rdma), KT_SLICE bytes (1 MiB), KT_PAR n
 * (send: n transfers of the same blocks submitted at once, 1), KT_KEY
 * file (a KV key: peers authenticated), KT_QPS n (RDMA queue pairs per
 * transfer), KT_REPEAT n (send: n transfers one after the other on the
 * same engine, so the later ones find pooled connections; the state line
 * is the last one's, "tx first_ms=F warm_ms=W" adds the first's time and
 * the median of the others').
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "agent.h"
#include "kvxfer.h"

/* kvxfer.c's address parser lives in agent/config.c (with the whole CLI):
 * this endpoint takes "A.B.C.D:PORT" only */
int agent_parse_hostport(const char *s, struct sockaddr_storage *ss, socklen_t *len)
{
	struct sockaddr_in *a = (void *)ss;
	const char *colon = strrchr(s, ':');
	char host[INET_ADDRSTRLEN];
	unsigned long port;

	memset(ss, 0, sizeof(*ss));
	if (!colon || (size_t)(colon - s) >= sizeof(host))
		return -EINVAL;
	port = strtoul(colon + 1, NULL, 10);
	memcpy(host, s, colon - s);
	host[colon - s] = 0;
	if (!port || port > 65535 || inet_pton(AF_INET, host, &a->sin_addr) != 1)
		return -EINVAL;
	a->sin_family = AF_INET;
	a->sin_port = htons(port);
	*len = sizeof(*a);
	return 0;
}

static void fill(uint8_t *p, uint64_t n, uint64_t seed)
{
	for (uint64_t i = 0; i < n; i += 8) {
		seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
		memcpy(p + i, &seed, n - i < 8 ? n - i : 8);
	}
}

/* the engine's log hook: refused peers, one line each */
static void logline(void *arg, const char *line)
{
	printf("log: %s\n", line);
	fflush(stdout);
}

static struct kvx *mk(const char *fault, uint32_t fslice, uint32_t fms)
{
	struct kvx_opts o;
	struct kvx *x = NULL;
	const char *pol = getenv("KT_POLICY"), *sl = getenv("KT_SLICE");
	char err[256];
	int rc;

	kvx_opts_defaults(&o);
	o.timeout_ms = 20000;
	if (kvx_policy_parse(pol ? pol : "rdma", &o.policy)) {
		fprintf(stderr, "kt_kvx: bad KT_POLICY\n");
		exit(2);
	}
	if (sl)
		o.slice = strtoul(sl, NULL, 0);
	if (getenv("KT_QPS"))
		o.rdma_qps = strtoul(getenv("KT_QPS"), NULL, 0);
	if (getenv("KT_KEY")) {
		rc = kvx_key_load(getenv("KT_KEY"), o.key);
		if (rc) {
			printf("kt_kvx: key %s: %s\n", getenv("KT_KEY"), strerror(-rc));
			exit(2);
		}
		o.auth = true;
	}
	if (fault && !strcmp(fault, "corrupt"))
		o.fault = KVX_FAULT_CORRUPT;
	else if (fault && !strcmp(fault, "truncate"))
		o.fault = KVX_FAULT_TRUNCATE;
	else if (fault && !strcmp(fault, "slow"))
		o.fault = KVX_FAULT_SLOW;
	o.log = logline;
	o.fault_slice = fslice;
	o.fault_ms = fms;
	rc = kvx_create(&x, &o, err, sizeof(err));
	if (rc) {
		printf("kt_kvx: %s\n", err);
		exit(1);
	}
	printf("choice: %s\n", kvx_choice(x));
	return x;
}

static int recv_main(char **av, int ac)
{
	uint64_t bytes = strtoull(av[3], NULL, 0), seen = 0, nact = 0, active = 0;
	unsigned long count = strtoul(av[4], NULL, 0), tmo = ac > 5 ? strtoul(av[5], NULL, 0) : 120;
	struct kvx *x = mk(NULL, 0, 0);
	struct timespec t0, t;
	uint8_t *dst = malloc(bytes);
	uint32_t id;
	int rc;

	if (!dst)
		return 1;
	memset(dst, 0xee, bytes);
	rc = kvx_register(x, dst, bytes, &id);
	if (!rc)
		rc = kvx_listen(x, av[2], NULL, NULL);
	if (rc) {
		printf("kt_kvx: register/listen %s: %s\n", av[2], strerror(-rc));
		return 1;
	}
	printf("rx listening %s arena=%u hash=%016llx\n", av[2], id,
	       (unsigned long long)kvx_hash64(dst, bytes, 0));
	fflush(stdout);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	while (seen < count) {
		struct kvx_stats s;
		char info[256];

		kvx_get_stats(x, &s);
		if (s.rx_active && !active) {	/* a receive is under way */
			printf("rx active %llu\n", (unsigned long long)++nact);
			fflush(stdout);
		}
		active = s.rx_active;
		if (s.rx_ok + s.rx_failed > seen && !s.rx_active) {
			seen = s.rx_ok + s.rx_failed;
			kvx_rdma_info_str(&s.rx_last_rdma, info, sizeof(info));
			printf("rx ok=%llu failed=%llu rdma=%llu hash=%016llx err=%s\n",
			       (unsigned long long)s.rx_ok, (unsigned long long)s.rx_failed,
			       (unsigned long long)s.rx_rdma,
			       (unsigned long long)kvx_hash64(dst, bytes, 0), s.rx_last_err);
			printf("rx rdma %s\n", info);
			fflush(stdout);
			continue;
		}
		clock_gettime(CLOCK_MONOTONIC, &t);
		if ((unsigned long)(t.tv_sec - t0.tv_sec) > tmo) {
			printf("rx timeout after %lus (%llu of %lu)\n", tmo,
			       (unsigned long long)seen, count);
			kvx_destroy(x);
			return 1;
		}
		usleep(10000);
	}
	kvx_destroy(x);
	return 0;
}

static int send_main(char **av, int ac)
{
	uint64_t bytes = strtoull(av[3], NULL, 0), block = strtoull(av[4], NULL, 0);
	uint64_t seed = strtoull(av[5], NULL, 0), n = block ? bytes / block : 0;
	struct kvx *x = mk(ac > 6 ? av[6] : NULL, ac > 7 ? strtoul(av[7], NULL, 0) : 0,
			   ac > 8 ? strtoul(av[8], NULL, 0) : 0);
	uint8_t *src = malloc(bytes), *exp = malloc(bytes);
	struct kvx_desc *d = calloc(n ? n : 1, sizeof(*d));
	const char *par = getenv("KT_PAR");
	uint32_t np = par ? strtoul(par, NULL, 0) : 1, ndone = 0;
	uint32_t nrep = getenv("KT_REPEAT") ? strtoul(getenv("KT_REPEAT"), NULL, 0) : 1;
	double reps[64];
	struct kvx_result r, ri;
	uint64_t xid[16];
	char info[256];
	uint32_t id;
	int rc;

	if (!np || np > 16 || !nrep || nrep > 64)
		return 2;

	if (!src || !exp || !d || !n || n * block != bytes)
		return 2;
	fill(src, bytes, seed);
	for (uint64_t i = 0; i < n; i++) {
		d[i] = (struct kvx_desc){ .src_off = i * block, .dst_off = (n - 1 - i) * block,
					  .len = block, .tag = i };
		memcpy(exp + (n - 1 - i) * block, src + i * block, block);
	}
	printf("tx expect=%016llx\n", (unsigned long long)kvx_hash64(exp, bytes, 0));
	rc = kvx_register(x, src, bytes, &id);
	for (uint32_t k = 0; !rc && k < nrep; k++) {
		ndone = 0;
		for (uint32_t i = 0; !rc && i < np; i++)	/* KT_PAR transfers at once */
			rc = kvx_submit(x, av[2], id, 0, d, n, &xid[i]);
		for (uint32_t i = 0; !rc && i < np; i++) {
			rc = kvx_wait(x, xid[i], 0, &ri);
			if (!i || ri.state != KVX_DONE)
				r = ri;
			ndone += ri.state == KVX_DONE;
			if (ri.secs > r.secs)
				r.secs = ri.secs;
		}
		if (rc)
			break;
		reps[k] = r.secs * 1e3;
		if (nrep > 1)
			printf("tx round %u state=%s ms=%.3f msg=%s\n", k + 1,
			       r.state == KVX_DONE ? "done" : "failed", reps[k], r.msg);
		if (r.state != KVX_DONE)
			break;
	}
	if (!rc && nrep > 1 && r.state == KVX_DONE) {
		for (uint32_t a = 1; a < nrep; a++)	/* sort the warm ones */
			for (uint32_t b = a + 1; b < nrep; b++)
				if (reps[b] < reps[a]) {
					double tmp = reps[a];

					reps[a] = reps[b];
					reps[b] = tmp;
				}
		printf("tx first_ms=%.3f warm_ms=%.3f\n", reps[0], reps[1 + (nrep - 2) / 2]);
	}
	if (rc) {
		printf("kt_kvx: submit: %s\n", strerror(-rc));
		return 1;
	}
	r.bytes = r.state == KVX_DONE ? r.bytes * np : r.bytes;
	if (np > 1)
		printf("tx parallel=%u done=%u\n", np, ndone);
	kvx_rdma_info_str(&r.rdma, info, sizeof(info));
	printf("tx state=%s transport=%s bytes=%llu secs=%.4f mibps=%.1f\n",
	       r.state == KVX_DONE ? "done" : "failed", r.transport,
	       (unsigned long long)r.bytes, r.secs,
	       r.secs > 0 ? r.bytes / r.secs / 1048576.0 : 0.0);
	printf("tx msg=%s\n", r.msg);
	printf("tx rdma %s\n", info);
	kvx_destroy(x);
	return r.state == KVX_DONE ? 0 : 1;
}

int main(int ac, char **av)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (ac >= 5 && !strcmp(av[1], "recv"))
		return recv_main(av, ac);
	if (ac >= 6 && !strcmp(av[1], "send"))
		return send_main(av, ac);
	fprintf(stderr, "usage: kt_kvx recv ADDR:PORT BYTES COUNT [TIMEOUT_S]\n"
		"       kt_kvx send PEER BYTES BLOCK SEED [none|corrupt|truncate|slow "
		"[SLICE [MS]]]\n");
	return 2;
}
