// SPDX-License-Identifier: GPL-2.0
/*
 * idn_agentbench.c - the agent's benchmarks (make bench, part "agent"):
 * one "name value unit" line per figure on stdout, per-round values on
 * stderr. Both figures are ratios measured in the same run, rounds
 * alternating which side goes first; the figure is the median of the
 * per-round ratios, the rates are medians over rounds.
 *
 *   kv   kv_tcp_vs_socket: the agent's KV transfer engine (agent/kvxfer.c,
 *        its default streams and slices, every slice hashed and verified)
 *        moving N bytes of KV blocks over loopback into the KV cache of a
 *        receiving agent's engine the way idn-agent receives a push (the
 *        agent's sink: cache blocks reserved at the start, slices read
 *        straight into them, indexed at commit), against a plain
 *        single-stream TCP copy of the same N bytes from the same source
 *        into a buffer (send() / recv() loops). Also one stream.
 *   kvauth  kv_tcp_tls_vs_socket: the same transfer with a KV key on both
 *        ends (authenticated handshake, every slice under a per-stream
 *        Poly1305 instead of the XXH3 hash) against the same plain socket
 *        copy, same rounds; the unkeyed transfer runs beside it
 *        (kv_tcp_auth_vs_unkeyed: the price of the MAC alone).
 *   res  residency_load_vs_read: res_load() of a real file into the host
 *        backend (agent/residency.c: budget, transaction, fresh backend
 *        memory, no expected digest) against a raw read() of the same file
 *        into fresh memory of the same kind (anonymous mapping advised
 *        MADV_HUGEPAGE, as the backend's); the file is written and fsync'd
 *        first and read once, so both read it from the page cache. Also:
 *        the load with its SHA-256 checked (_digest_), and the raw read into
 *        a plain fresh buffer (_4k: malloc-like, 4 KiB pages) and into a
 *        buffer already faulted in (_prefaulted).
 *
 * Usage: idn_agentbench [kv] [kvauth] [res] [-k KV_BYTES] [-s FILE_BYTES]
 *                       [-r ROUNDS] [-d DIR] [-v]
 * Exit 0, 1 when a run failed (or the bytes moved were wrong), 2 on usage.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>

#include <json-c/json.h>
#include <sodium.h>

#include "agent.h"
#include "kvxfer.h"

#define MAXR 64
#define KV_BLOCK (1U << 20)

static int verbose, rounds = 5;

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int dcmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static double median(const double *in, int n)
{
	double v[MAXR];

	memcpy(v, in, n * sizeof(*v));
	qsort(v, n, sizeof(*v), dcmp);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static void *map(size_t n, bool touch)
{
	void *p = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED)
		return NULL;
	if (touch)
		memset(p, 0, n);
	return p;
}

static void fill(uint8_t *p, size_t n, uint64_t seed)
{
	for (size_t i = 0; i + 8 <= n; i += 8) {
		seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
		memcpy(p + i, &seed, 8);
	}
}

/* ---- kv: kvxfer vs a plain socket copy ------------------------------- */

struct plain_rx {
	int lfd;
	uint8_t *buf;
	size_t n;
	int err;
};

static void *plain_recv(void *arg)
{
	struct plain_rx *p = arg;
	size_t got = 0;
	int fd = accept(p->lfd, NULL, NULL);

	if (fd < 0) {
		p->err = -errno;
		return NULL;
	}
	while (got < p->n) {
		ssize_t r = recv(fd, p->buf + got, p->n - got, 0);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			p->err = r ? -errno : -EPIPE;
			break;
		}
		got += r;
	}
	close(fd);
	return NULL;
}

/* one plain single-stream copy of src[0..n) into dst; seconds, < 0 on error */
static double plain_copy(int lfd, int port, const uint8_t *src, uint8_t *dst, size_t n)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port),
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	struct plain_rx p = { .lfd = lfd, .buf = dst, .n = n };
	pthread_t th;
	size_t sent = 0;
	double t0;
	int fd;

	if (pthread_create(&th, NULL, plain_recv, &p))
		return -1;
	t0 = now_s();
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (void *)&a, sizeof(a))) {
		if (fd >= 0)
			close(fd);
		pthread_cancel(th);
		pthread_join(th, NULL);
		return -1;
	}
	while (sent < n) {
		ssize_t w = send(fd, src + sent, n - sent, MSG_NOSIGNAL);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			break;
		sent += w;
	}
	pthread_join(th, NULL);
	t0 = now_s() - t0;
	close(fd);
	return sent == n && !p.err ? t0 : -1;
}

static struct kvx *kv_mk_key(uint32_t streams, uint64_t max_rx, const uint8_t *key)
{
	struct kvx_opts o;
	struct kvx *x = NULL;
	char err[256];

	kvx_opts_defaults(&o);
	if (key) {
		o.auth = true;
		memcpy(o.key, key, sizeof(o.key));
	}
	o.policy = KVX_POLICY_TCP;
	if (streams)
		o.streams = streams;
	o.max_rx = max_rx;
	o.timeout_ms = 30000;
	if (kvx_create(&x, &o, err, sizeof(err))) {
		fprintf(stderr, "idn_agentbench: kvx: %s\n", err);
		return NULL;
	}
	return x;
}

static struct kvx *kv_mk(uint32_t streams, uint64_t max_rx)
{
	return kv_mk_key(streams, max_rx, NULL);
}

/* one kvx transfer: seconds, < 0 on error */
static double kv_xfer(struct kvx *tx, uint32_t sid, const char *peer, uint32_t did,
		      const struct kvx_desc *d, uint32_t nd)
{
	struct kvx_result res;
	uint64_t id;
	double t0 = now_s();

	if (kvx_submit(tx, peer, sid, did, d, nd, &id) || kvx_wait(tx, id, 120000, &res))
		return -1;
	t0 = now_s() - t0;
	if (res.state != KVX_DONE) {
		fprintf(stderr, "idn_agentbench: kv transfer failed: %s\n", res.msg);
		return -1;
	}
	return t0;
}

/*
 * The receiving side is the agent's own: an emulated engine whose KV cache
 * (1 MiB blocks, a few more than a transfer needs) takes the blocks through
 * the agent's sink (http.c agent_kv_sink: blocks reserved at the start,
 * slices read into them, indexed at commit) and commit callback, as
 * idn-agent's --kv-listen receives a /v1/kv/push. The sender's descriptors
 * are what kv_push() makes: one per block, tag = its key, dst_off = its
 * place in the prefix, KVX_ARENA_NONE; the source blocks scattered.
 */
static struct agent RXA;
static uint64_t *rx_keys;

static int rxa_init(uint32_t nd)
{
	agent_cfg_defaults(&RXA.cfg);
	RXA.cfg.engine = true;
	RXA.cfg.eng.speed = 1e6;
	RXA.cfg.eng.block_tokens = 16;
	RXA.cfg.eng.kv_bytes_per_token = KV_BLOCK / 16;
	RXA.cfg.eng.capacity_tokens = (nd + 8) * 16;
	rx_keys = calloc(nd, sizeof(*rx_keys));
	if (!rx_keys || engine_init(&RXA.eng, &RXA.cfg.eng))
		return -1;
	for (uint32_t i = 0; i < nd; i++)
		rx_keys[i] = kv_chain(i ? rx_keys[i - 1] : 0, 7000 + i);
	return 0;
}

static void rxa_free(void)
{
	if (rx_keys)
		engine_free(&RXA.eng);
	free(rx_keys);
	rx_keys = NULL;
}

static struct kvx *rxa_listen(uint64_t max_rx, const uint8_t *key)
{
	struct kvx *x = kv_mk_key(0, max_rx, key);

	if (x && (kvx_set_sink(x, &agent_kv_sink, &RXA) ||
		  kvx_listen(x, "127.0.0.1:0", agent_kv_commit, &RXA))) {
		kvx_destroy(x);
		return NULL;
	}
	return x;
}

static void kv_descs(struct kvx_desc *d, uint32_t nd)
{
	for (uint32_t i = 0; i < nd; i++)
		d[i] = (struct kvx_desc){ .src_off = (uint64_t)(nd - 1 - i) * KV_BLOCK,
					  .dst_off = (uint64_t)i * KV_BLOCK,
					  .len = KV_BLOCK, .tag = rx_keys[i] };
}

/*
 * Every block of the prefix is in the receiver's cache with the sender's
 * bytes (full: all of them, else the first and last 64 bytes of each);
 * then they are dropped (not timed), so the next transfer enters all of
 * them again instead of finding them cached.
 */
static bool rxa_moved_ok(const uint8_t *src, const struct kvx_desc *d, uint32_t nd, bool full)
{
	struct kv_cache *kc = &RXA.eng.kv;
	int32_t *idx = calloc(nd, sizeof(*idx));
	uint32_t hits = 0;
	bool ok = false;

	if (!idx)
		return false;
	pthread_mutex_lock(&RXA.eng.mu);
	if (kv_match(kc, rx_keys, nd) == nd && !kv_acquire(kc, rx_keys, nd, nd, idx, &hits)) {
		ok = hits == nd;
		for (uint32_t i = 0; i < nd && ok; i++) {
			const uint8_t *b = kv_block_data(kc, idx[i]), *w = src + d[i].src_off;

			ok = full ? !memcmp(b, w, KV_BLOCK) :
			     !memcmp(b, w, 64) && !memcmp(b + KV_BLOCK - 64, w + KV_BLOCK - 64, 64);
		}
		kv_release(kc, idx, nd);
	}
	kv_drop(kc, NULL, rx_keys, nd);
	pthread_mutex_unlock(&RXA.eng.mu);
	free(idx);
	return ok;
}

static int bench_kv(size_t n)
{
	uint32_t nd = n / KV_BLOCK, sid, sid1, def_streams;
	double t_plain[MAXR], t_kv[MAXR], t_kv1[MAXR], r4[MAXR], r1[MAXR];
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t al = sizeof(a);
	struct kvx *rx = NULL, *tx = NULL, *tx1 = NULL;
	struct kvx_desc *d = NULL;
	uint8_t *src, *pdst;
	struct kvx_opts defo;
	char peer[64];
	int lfd = -1, port, rc = 1;
	const uint32_t did = KVX_ARENA_NONE;

	n = (size_t)nd * KV_BLOCK;
	kvx_opts_defaults(&defo);
	def_streams = defo.streams;
	src = map(n, false);
	pdst = map(n, true);
	d = calloc(nd, sizeof(*d));
	if (!src || !pdst || !d || !nd || rxa_init(nd))
		goto out;
	fill(src, n, 42);
	kv_descs(d, nd);
	rx = rxa_listen(n + (1ULL << 20), NULL);
	tx = kv_mk(0, 0);
	tx1 = kv_mk(1, 0);
	if (!rx || !tx || !tx1 || kvx_register(tx, src, n, &sid) ||
	    kvx_register(tx1, src, n, &sid1))
		goto out;
	snprintf(peer, sizeof(peer), "127.0.0.1:%d", kvx_port(rx));
	lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (lfd < 0 || bind(lfd, (void *)&a, sizeof(a)) || listen(lfd, 4) ||
	    getsockname(lfd, (void *)&a, &al))
		goto out;
	port = ntohs(a.sin_port);
	fprintf(stderr, "# kv: %zu MiB as %u KV blocks of 1 MiB into the agent's cache, kvx %u "
		"streams (default) and 1 stream vs one plain stream, %d rounds\n",
		n >> 20, nd, def_streams, rounds);
	/* warm-up (connections, cache blocks, page tables), checked */
	if (plain_copy(lfd, port, src, pdst, n) < 0 || memcmp(src, pdst, n)) {
		fprintf(stderr, "idn_agentbench: plain copy failed or wrong\n");
		goto out;
	}
	if (kv_xfer(tx, sid, peer, did, d, nd) < 0 || !rxa_moved_ok(src, d, nd, true)) {
		fprintf(stderr, "idn_agentbench: kv transfer failed or wrong\n");
		goto out;
	}
	if (kv_xfer(tx1, sid1, peer, did, d, nd) < 0 || !rxa_moved_ok(src, d, nd, true))
		goto out;
	for (int r = 0; r < rounds; r++) {
		bool ok = true;

		if (r % 2) {
			t_kv[r] = kv_xfer(tx, sid, peer, did, d, nd);
			ok &= rxa_moved_ok(src, d, nd, false);
			t_kv1[r] = kv_xfer(tx1, sid1, peer, did, d, nd);
			ok &= rxa_moved_ok(src, d, nd, false);
			t_plain[r] = plain_copy(lfd, port, src, pdst, n);
		} else {
			t_plain[r] = plain_copy(lfd, port, src, pdst, n);
			t_kv1[r] = kv_xfer(tx1, sid1, peer, did, d, nd);
			ok &= rxa_moved_ok(src, d, nd, false);
			t_kv[r] = kv_xfer(tx, sid, peer, did, d, nd);
			ok &= rxa_moved_ok(src, d, nd, false);
		}
		if (t_plain[r] < 0 || t_kv[r] < 0 || t_kv1[r] < 0 || !ok) {
			fprintf(stderr, "idn_agentbench: round %d failed\n", r);
			goto out;
		}
		r4[r] = t_plain[r] / t_kv[r];
		r1[r] = t_plain[r] / t_kv1[r];
		fprintf(stderr, "# kv round %d: plain %.2f GB/s, kvx %u streams %.2f GB/s (%.2fx), "
			"1 stream %.2f GB/s (%.2fx)\n", r, n / t_plain[r] / 1e9, def_streams,
			n / t_kv[r] / 1e9, r4[r], n / t_kv1[r] / 1e9, r1[r]);
	}
	printf("kv_socket_rate %.3f GB/s\n", n / median(t_plain, rounds) / 1e9);
	printf("kv_tcp_rate %.3f GB/s\n", n / median(t_kv, rounds) / 1e9);
	printf("kv_tcp_1stream_rate %.3f GB/s\n", n / median(t_kv1, rounds) / 1e9);
	printf("kv_tcp_1stream_vs_socket %.2f x\n", median(r1, rounds));
	printf("kv_tcp_vs_socket %.2f x\n", median(r4, rounds));
	fflush(stdout);
	rc = 0;
out:
	if (lfd >= 0)
		close(lfd);
	kvx_destroy(tx1);
	kvx_destroy(tx);
	kvx_destroy(rx);
	rxa_free();
	free(d);
	if (src)
		munmap(src, n);
	if (pdst)
		munmap(pdst, n);
	return rc;
}

/* ---- kvauth: the keyed transfer vs the same plain socket copy ----------- */

static int bench_kv_auth(size_t n)
{
	uint32_t nd = n / KV_BLOCK, sid, sidk;
	double t_plain[MAXR], t_kv[MAXR], t_key[MAXR], rk[MAXR], ru[MAXR];
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t al = sizeof(a);
	struct kvx *rx = NULL, *tx = NULL, *rxk = NULL, *txk = NULL;
	struct kvx_desc *d = NULL;
	uint8_t *src, *pdst, key[32];
	char peer[64], peerk[64];
	int lfd = -1, port, rc = 1;
	const uint32_t did = KVX_ARENA_NONE;

	n = (size_t)nd * KV_BLOCK;
	randombytes_buf(key, sizeof(key));
	src = map(n, false);
	pdst = map(n, true);
	d = calloc(nd, sizeof(*d));
	if (!src || !pdst || !d || !nd || rxa_init(nd))
		goto out;
	fill(src, n, 43);
	kv_descs(d, nd);
	/* two listeners of the one receiving agent: without and with a KV key */
	rx = rxa_listen(n + (1ULL << 20), NULL);
	rxk = rxa_listen(n + (1ULL << 20), key);
	tx = kv_mk(0, 0);
	txk = kv_mk_key(0, 0, key);
	if (!rx || !tx || !rxk || !txk || kvx_register(tx, src, n, &sid) ||
	    kvx_register(txk, src, n, &sidk))
		goto out;
	snprintf(peer, sizeof(peer), "127.0.0.1:%d", kvx_port(rx));
	snprintf(peerk, sizeof(peerk), "127.0.0.1:%d", kvx_port(rxk));
	lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (lfd < 0 || bind(lfd, (void *)&a, sizeof(a)) || listen(lfd, 4) ||
	    getsockname(lfd, (void *)&a, &al))
		goto out;
	port = ntohs(a.sin_port);
	fprintf(stderr, "# kvauth: %zu MiB as %u KV blocks of 1 MiB into the agent's cache, kvx "
		"with a KV key (Poly1305 per slice) and without vs one plain stream, %d rounds\n",
		n >> 20, nd, rounds);
	if (plain_copy(lfd, port, src, pdst, n) < 0 || memcmp(src, pdst, n) ||
	    kv_xfer(tx, sid, peer, did, d, nd) < 0 || !rxa_moved_ok(src, d, nd, true)) {
		fprintf(stderr, "idn_agentbench: plain copy or kv transfer failed\n");
		goto out;
	}
	if (kv_xfer(txk, sidk, peerk, did, d, nd) < 0 || !rxa_moved_ok(src, d, nd, true)) {
		fprintf(stderr, "idn_agentbench: keyed kv transfer failed or wrong\n");
		goto out;
	}
	for (int r = 0; r < rounds; r++) {
		bool ok = true;

		if (r % 2) {
			t_key[r] = kv_xfer(txk, sidk, peerk, did, d, nd);
			ok &= rxa_moved_ok(src, d, nd, false);
			t_kv[r] = kv_xfer(tx, sid, peer, did, d, nd);
			ok &= rxa_moved_ok(src, d, nd, false);
			t_plain[r] = plain_copy(lfd, port, src, pdst, n);
		} else {
			t_plain[r] = plain_copy(lfd, port, src, pdst, n);
			t_kv[r] = kv_xfer(tx, sid, peer, did, d, nd);
			ok &= rxa_moved_ok(src, d, nd, false);
			t_key[r] = kv_xfer(txk, sidk, peerk, did, d, nd);
			ok &= rxa_moved_ok(src, d, nd, false);
		}
		if (t_plain[r] < 0 || t_kv[r] < 0 || t_key[r] < 0 || !ok) {
			fprintf(stderr, "idn_agentbench: kvauth round %d failed\n", r);
			goto out;
		}
		rk[r] = t_plain[r] / t_key[r];
		ru[r] = t_kv[r] / t_key[r];
		fprintf(stderr, "# kvauth round %d: plain %.2f GB/s, kvx keyed %.2f GB/s (%.2fx), "
			"unkeyed %.2f GB/s (%.2fx)\n", r, n / t_plain[r] / 1e9, n / t_key[r] / 1e9,
			rk[r], n / t_kv[r] / 1e9, t_plain[r] / t_kv[r]);
	}
	printf("kv_tcp_auth_rate %.3f GB/s\n", n / median(t_key, rounds) / 1e9);
	printf("kv_tcp_auth_vs_unkeyed %.2f x\n", median(ru, rounds));
	printf("kv_tcp_tls_vs_socket %.2f x\n", median(rk, rounds));
	fflush(stdout);
	rc = 0;
out:
	if (lfd >= 0)
		close(lfd);
	kvx_destroy(txk);
	kvx_destroy(rxk);
	kvx_destroy(tx);
	kvx_destroy(rx);
	rxa_free();
	free(d);
	if (src)
		munmap(src, n);
	if (pdst)
		munmap(pdst, n);
	return rc;
}

/* ---- res: residency load vs raw read ----------------------------------- */

/*
 * raw read of the whole file into buf, or into a fresh mapping (huge: with
 * MADV_HUGEPAGE, as the host backend's memory): seconds
 */
static double raw_read(const char *path, size_t n, uint8_t *buf, bool huge, uint64_t *sum)
{
	double t0 = now_s();
	uint8_t *p = buf ? buf : map(n, false);
	size_t off = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0 || !p)
		return -1;
	if (huge && !buf)
		madvise(p, n, MADV_HUGEPAGE);
	while (off < n) {
		ssize_t r = read(fd, p + off, n - off);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		off += r;
	}
	close(fd);
	t0 = now_s() - t0;
	*sum = 0;
	for (size_t i = 0; i < n; i += 4096)	/* the bytes are really there */
		*sum += p[i];
	if (!buf)
		munmap(p, n);
	return off == n ? t0 : -1;
}

static double res_once(struct residency *r, const char *path, const char *sha)
{
	struct res_order o = { .name = "bench", .path = path, .sha256_hex = sha };
	double t0 = now_s();
	int err = res_load(r, &o);

	t0 = now_s() - t0;
	if (err) {
		fprintf(stderr, "idn_agentbench: res_load: %s\n", strerror(-err));
		return -1;
	}
	return res_evict(r, "bench") ? -1 : t0;
}

static int bench_res(size_t n, const char *dir)
{
	char d[256], path[300], hex[65];
	double t_read[MAXR], t_pre[MAXR], t_huge[MAXR], t_load[MAXR], t_dig[MAXR];
	double rr[MAXR], rd[MAXR], rh[MAXR], rp[MAXR];
	uint8_t *buf = NULL, *pre = NULL, dg[32];
	crypto_hash_sha256_state hs;
	struct residency r = { 0 };
	uint64_t sum;
	bool have_r = false;
	int fd = -1, rc = 1;

	snprintf(d, sizeof(d), "%s/idn-agentbench.XXXXXX", dir);
	if (!mkdtemp(d)) {
		fprintf(stderr, "idn_agentbench: mkdtemp %s: %s\n", d, strerror(errno));
		return 1;
	}
	snprintf(path, sizeof(path), "%s/artifact.bin", d);
	buf = malloc(8U << 20);
	pre = map(n, true);
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (!buf || !pre || fd < 0)
		goto out;
	crypto_hash_sha256_init(&hs);
	for (size_t off = 0; off < n; off += 8U << 20) {
		size_t c = n - off < (8U << 20) ? n - off : (8U << 20);

		fill(buf, c, off + 1);
		crypto_hash_sha256_update(&hs, buf, c);
		if (write(fd, buf, c) != (ssize_t)c)
			goto out;
	}
	crypto_hash_sha256_final(&hs, dg);
	sodium_bin2hex(hex, sizeof(hex), dg, 32);
	if (fsync(fd))
		goto out;
	close(fd);
	fd = -1;
	if (res_init(&r, &res_backend_host, 4 * (uint64_t)n))
		goto out;
	have_r = true;
	fprintf(stderr, "# res: %zu MiB artifact in %s (fsync'd, page cache warm), %d rounds\n",
		n >> 20, d, rounds);
	/* warm-up: both paths once, the digest checked */
	if (raw_read(path, n, NULL, false, &sum) < 0 || res_once(&r, path, hex) < 0)
		goto out;
	/*
	 * What ran before a side matters: after 256 MiB of 4 KiB pages were
	 * freed there is no free 2 MiB block, and the next huge-page fault
	 * compacts memory (or falls back to 4 KiB pages): 10-20x slower here.
	 * Phase 1 compares huge-page read, load and digest-checked load, each
	 * after a step that freed huge-page memory (the warm-up ends with a
	 * load), the pair's order alternating. Phase 2, after it, the raw
	 * reads into 4 KiB memory and into prefaulted memory.
	 */
	/* the load without a digest, checked byte for byte once */
	{
		struct res_order o = { .name = "check", .path = path };

		if (raw_read(path, n, pre, false, &sum) < 0 || res_load(&r, &o) || !r.head ||
		    memcmp(r.head->h, pre, n) || res_evict(&r, "check")) {
			fprintf(stderr, "idn_agentbench: loaded bytes differ from the file\n");
			goto out;
		}
	}
	if (raw_read(path, n, NULL, true, &sum) < 0 || res_once(&r, path, NULL) < 0)
		goto out;
	for (int i = 0; i < rounds; i++) {
		if (i % 2) {
			t_load[i] = res_once(&r, path, NULL);
			t_huge[i] = raw_read(path, n, NULL, true, &sum);
		} else {
			t_huge[i] = raw_read(path, n, NULL, true, &sum);
			t_load[i] = res_once(&r, path, NULL);
		}
		t_dig[i] = res_once(&r, path, hex);
		if (t_load[i] < 0 || t_dig[i] < 0 || t_huge[i] < 0) {
			fprintf(stderr, "idn_agentbench: res round %d failed\n", i);
			goto out;
		}
		rd[i] = t_huge[i] / t_dig[i];
		rh[i] = t_huge[i] / t_load[i];
		fprintf(stderr, "# res round %d: read %.2f GB/s, load %.2f GB/s (%.2fx), "
			"load+digest check %.2f GB/s (%.2fx)\n", i, n / t_huge[i] / 1e9,
			n / t_load[i] / 1e9, rh[i], n / t_dig[i] / 1e9, rd[i]);
	}
	for (int i = 0; i < rounds; i++) {
		t_read[i] = raw_read(path, n, NULL, false, &sum);
		t_pre[i] = raw_read(path, n, pre, false, &sum);
		if (t_read[i] < 0 || t_pre[i] < 0)
			goto out;
		fprintf(stderr, "# res round %d: read into 4 KiB pages %.2f GB/s, prefaulted "
			"%.2f GB/s\n", i, n / t_read[i] / 1e9, n / t_pre[i] / 1e9);
	}
	/* the extra ratios: medians of different phases, not paired */
	for (int i = 0; i < rounds; i++) {
		rr[i] = median(t_read, rounds) / median(t_load, rounds);
		rp[i] = median(t_pre, rounds) / median(t_load, rounds);
	}
	printf("res_read_rate %.3f GB/s\n", n / median(t_read, rounds) / 1e9);
	printf("res_read_hugepage_rate %.3f GB/s\n", n / median(t_huge, rounds) / 1e9);
	printf("res_read_prefaulted_rate %.3f GB/s\n", n / median(t_pre, rounds) / 1e9);
	printf("res_load_rate %.3f GB/s\n", n / median(t_load, rounds) / 1e9);
	printf("res_load_digest_rate %.3f GB/s\n", n / median(t_dig, rounds) / 1e9);
	printf("residency_load_vs_read_4k %.2f x\n", median(rr, rounds));
	printf("residency_load_vs_read_prefaulted %.2f x\n", median(rp, rounds));
	printf("residency_load_digest_vs_read %.2f x\n", median(rd, rounds));
	printf("residency_load_vs_read %.2f x\n", median(rh, rounds));
	fflush(stdout);
	rc = 0;
out:
	if (fd >= 0)
		close(fd);
	if (have_r)
		res_fini(&r);
	free(buf);
	if (pre)
		munmap(pre, n);
	unlink(path);
	rmdir(d);
	return rc;
}

static uint64_t size_arg(const char *s)
{
	char *e;
	uint64_t v = strtoull(s, &e, 0);

	if (*e == 'M' || *e == 'm')
		v <<= 20, e++;
	else if (*e == 'G' || *e == 'g')
		v <<= 30, e++;
	return *e ? 0 : v;
}

int main(int argc, char **argv)
{
	uint64_t kvn = 256ULL << 20, resn = 256ULL << 20;
	const char *dir = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
	bool do_kv = false, do_kvauth = false, do_res = false;
	int o, rc = 0;

	while ((o = getopt(argc, argv, "k:s:r:d:vh")) != -1) {
		switch (o) {
		case 'k': kvn = size_arg(optarg); break;
		case 's': resn = size_arg(optarg); break;
		case 'r': rounds = atoi(optarg); break;
		case 'd': dir = optarg; break;
		case 'v': verbose++; break;
		default:
			fprintf(stderr, "usage: idn_agentbench [kv] [kvauth] [res] [-k KV_BYTES] "
				"[-s FILE_BYTES] [-r ROUNDS] [-d DIR] [-v]\n");
			return o == 'h' ? 0 : 2;
		}
	}
	for (int i = optind; i < argc; i++) {
		if (!strcmp(argv[i], "kv"))
			do_kv = true;
		else if (!strcmp(argv[i], "kvauth"))
			do_kvauth = true;
		else if (!strcmp(argv[i], "res"))
			do_res = true;
		else
			return fprintf(stderr, "idn_agentbench: unknown part %s\n", argv[i]), 2;
	}
	if (!do_kv && !do_kvauth && !do_res)
		do_kv = do_kvauth = do_res = true;
	if (rounds < 1 || rounds > MAXR || kvn < KV_BLOCK || kvn > (4ULL << 30) ||
	    resn < 4096 || resn > (8ULL << 30))
		return fprintf(stderr, "idn_agentbench: bad -r, -k or -s\n"), 2;
	if (sodium_init() < 0)
		return 1;
	if (do_kv)
		rc |= bench_kv(kvn);
	if (do_kvauth)
		rc |= bench_kv_auth(kvn);
	if (do_res)
		rc |= bench_res(resn, dir);
	return rc;
}
