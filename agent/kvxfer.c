// SPDX-License-Identifier: GPL-2.0
/*
 * kvxfer.c - the KV transfer engine (see kvxfer.h): arenas, transfers,
 * the receive bookkeeping shared by both transports, the TCP transport;
 * the RDMA transport is kvx_rdma.c (internals shared in kvx_priv.h).
 *
 * Wire (little endian), per TCP stream of a transfer:
 *   receiver -> chal {magic CHAL, flags (key required), nonce}
 *   sender -> hello {magic IDNK, ver, stream, nstreams, dst_arena, xfer,
 *                   total, nslices}
 *             auth  {magic AUTH, nonce, mac (zero without a key)}
 *   receiver -> auth {magic AUOK, mac}   (with a key: it verified ours)
 *                or result -EACCES       (refused before staging)
 *   sender -> slice {magic SLCE, seq, stage_off, dst_off, len, tag, hash}
 *             [+ mac, 16 bytes: with a key]
 *             + len payload bytes           (any number, any stream)
 *   sender -> end   {magic ENDS, count}
 *   receiver -> result {magic RSLT, status (0 or -errno)}, after commit
 * The receiver keeps one staging buffer per transfer (total bytes), read
 * straight into by every stream, or, with a sink (kvx_set_sink; the
 * agent's cache), reads each slice straight into the memory the sink
 * reserved for it when the transfer started (no stage, no commit copy);
 * each slice carries an XXH3-64 hash of
 * its payload seeded with its header (xfer, seq, stage_off, dst_off, len,
 * tag), so a misplaced or replayed slice fails too. Only when all
 * streams ended and all slices verified does it apply the transfer (copy
 * the stage, or the sink publishes) and answer 0; any error (hash, EOF
 * mid-transfer, timeout, bounds) discards the stage or the sink's
 * reservation, nothing applied, and answers -errno.
 * With a key, a slice carries a MAC instead of the hash (hash 0): Poly1305
 * over the slice header as sent and the payload, under a one-time key of
 * its own (BLAKE2b of the slice's sequence number keyed by the stream's
 * key, itself derived from the KV key, both nonces and the hello). So after
 * the handshake nobody without the key can alter, move, replay or inject a
 * slice either. Poly1305 runs through libcrypto where it can be dlopen()ed
 * (its vector code: several GB/s a core), else libsodium's (the same tags);
 * the price of the MAC is measured by `make bench` (kv_tcp_tls_vs_socket).
 *
 * The sender runs one thread per transfer: non-blocking sockets, poll(),
 * each stream takes the next slice when its previous one is in the
 * socket, so all streams stay busy and many slices are in flight.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <endian.h>
#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>
#include <dlfcn.h>
#include <sodium.h>
#include <xxhash.h>
#if defined(__x86_64__) && __has_include(<xxh_x86dispatch.h>)
/* XXH3 calls go to libxxhash's run-time pick: AVX2/AVX-512 where present */
#include <xxh_x86dispatch.h>
#endif

#include "agent.h"
#include "kvxfer.h"
#include "kvx_priv.h"

/* ---- hash: XXH3 64-bit (libxxhash), seeded per slice ------------------- */

uint64_t kvx_hash64(const void *buf, size_t len, uint64_t seed)
{
	return XXH3_64bits_withSeed(buf, len, seed);
}

/*
 * The seed covers the whole slice header but the hash itself: a slice
 * replayed from another transfer, moved to another place in the stage or
 * the destination, cut to another length or given another tag fails.
 */
uint64_t kvx_slice_seed(uint64_t xfer, uint32_t seq, uint64_t stage_off, uint64_t dst_off,
			uint64_t len, uint64_t tag)
{
	uint64_t v[6] = { htole64(xfer), htole64(seq), htole64(stage_off), htole64(dst_off),
			  htole64(len), htole64(tag) };

	return XXH3_64bits(v, sizeof(v));
}

/* ---- authentication of KV peers (crypto_auth: HMAC-SHA-512-256) ------- */

int kvx_key_load(const char *path, uint8_t key[32])
{
	uint8_t buf[4096];
	struct stat st;
	ssize_t n;
	int fd, rc = 0;

	if (sodium_init() < 0)
		return -EIO;
	fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) || !S_ISREG(st.st_mode))
		rc = -EINVAL;
	else if (st.st_mode & 077)
		rc = -EPERM;
	else if ((n = read(fd, buf, sizeof(buf))) < 16 || st.st_size > (off_t)sizeof(buf))
		rc = -EINVAL;
	else
		crypto_generichash(key, 32, buf, n, NULL, 0);
	close(fd);
	sodium_memzero(buf, sizeof(buf));
	return rc;
}

/*
 * MAC of one direction ('s' sender, 'r' receiver: a reflected answer does
 * not verify) over both nonces and the hello as it went on the wire.
 */
static void auth_mac(uint8_t mac[32], const uint8_t key[32], char dir,
		     const uint8_t nr[16], const uint8_t ns[16], const struct w_hello *hw)
{
	uint8_t m[8 + 32 + sizeof(*hw)];

	memcpy(m, dir == 's' ? "idnkvx-s" : "idnkvx-r", 8);
	memcpy(m + 8, nr, 16);
	memcpy(m + 24, ns, 16);
	memcpy(m + 40, hw, sizeof(*hw));
	crypto_auth(mac, m, sizeof(m), key);
}

static int auth_check(const uint8_t mac[32], const uint8_t key[32], char dir,
		      const uint8_t nr[16], const uint8_t ns[16], const struct w_hello *hw)
{
	uint8_t want[32];

	auth_mac(want, key, dir, nr, ns, hw);
	return sodium_memcmp(want, mac, 32) ? -EACCES : 0;
}

/*
 * The slice MAC (with a key): Poly1305, a one-time key per slice. The
 * stream's key is 32 bytes of BLAKE2b keyed by the KV key over a label,
 * both nonces and the hello (every stream of every transfer has its own);
 * a slice's one-time key is BLAKE2b keyed by the stream's key over another
 * label and the slice's sequence number (unique within the transfer).
 * Poly1305 through libcrypto's EVP_MAC when it can be dlopen()ed, else
 * libsodium's crypto_onetimeauth_poly1305: the same algorithm, the same
 * tags, so the two ends need not agree on which.
 */
#define KVX_MAC_LEN 16

static struct {
	void *mac;			/* EVP_MAC "POLY1305", or NULL: libsodium */
	void *(*ctx_new)(void *);
	void (*ctx_free)(void *);
	int (*init)(void *, const unsigned char *, size_t, const void *);
	int (*update)(void *, const unsigned char *, size_t);
	int (*final)(void *, unsigned char *, size_t *, size_t);
} ossl;
static pthread_once_t ossl_once = PTHREAD_ONCE_INIT;

static void ossl_load(void)
{
	void *lib = dlopen("libcrypto.so.3", RTLD_NOW | RTLD_LOCAL);
	void *(*fetch)(void *, const char *, const char *);

	if (!lib)
		return;
	*(void **)&fetch = dlsym(lib, "EVP_MAC_fetch");
	*(void **)&ossl.ctx_new = dlsym(lib, "EVP_MAC_CTX_new");
	*(void **)&ossl.ctx_free = dlsym(lib, "EVP_MAC_CTX_free");
	*(void **)&ossl.init = dlsym(lib, "EVP_MAC_init");
	*(void **)&ossl.update = dlsym(lib, "EVP_MAC_update");
	*(void **)&ossl.final = dlsym(lib, "EVP_MAC_final");
	if (fetch && ossl.ctx_new && ossl.ctx_free && ossl.init && ossl.update && ossl.final)
		ossl.mac = fetch(NULL, "POLY1305", NULL);	/* kept for the process */
}

struct kvx_mac {
	uint8_t key[32];		/* the stream's key */
	void *evp;			/* libcrypto context, or NULL: libsodium */
	crypto_onetimeauth_poly1305_state st;
};

static void kvx_mac_close(struct kvx_mac *m)
{
	if (!m)
		return;
	if (m->evp)
		ossl.ctx_free(m->evp);
	sodium_memzero(m, sizeof(*m));
	free(m);
}

static int kvx_mac_open(struct kvx_mac **out, const uint8_t key[32], const uint8_t nr[16],
			const uint8_t ns[16], const struct w_hello *hw)
{
	uint8_t m[8 + 32 + sizeof(*hw)];
	struct kvx_mac *x = calloc(1, sizeof(*x));

	if (!x)
		return -ENOMEM;
	pthread_once(&ossl_once, ossl_load);
	memcpy(m, "idnkvx-m", 8);
	memcpy(m + 8, nr, 16);
	memcpy(m + 24, ns, 16);
	memcpy(m + 40, hw, sizeof(*hw));
	crypto_generichash(x->key, sizeof(x->key), m, sizeof(m), key, 32);
	if (ossl.mac)
		x->evp = ossl.ctx_new(ossl.mac);	/* NULL: libsodium then */
	*out = x;
	return 0;
}

static void kvx_mac_update(struct kvx_mac *m, const void *p, size_t n)
{
	if (m->evp)
		ossl.update(m->evp, p, n);
	else
		crypto_onetimeauth_poly1305_update(&m->st, p, n);
}

/* start the MAC of slice seq: its one-time key, then its header as on the wire */
static int kvx_mac_start(struct kvx_mac *m, const struct w_slice *wire, uint32_t seq)
{
	uint8_t in[16], otk[32];
	uint64_t n = htole64(seq);
	int rc = 0;

	memcpy(in, "idnkvx-o", 8);
	memcpy(in + 8, &n, 8);
	crypto_generichash(otk, sizeof(otk), in, sizeof(in), m->key, sizeof(m->key));
	if (m->evp)
		rc = ossl.init(m->evp, otk, sizeof(otk), NULL) == 1 ? 0 : -EIO;
	else
		crypto_onetimeauth_poly1305_init(&m->st, otk);
	sodium_memzero(otk, sizeof(otk));
	if (!rc)
		kvx_mac_update(m, wire, sizeof(*wire));
	return rc;
}

static int kvx_mac_final(struct kvx_mac *m, uint8_t tag[KVX_MAC_LEN])
{
	size_t l = 0;

	if (!m->evp)
		return crypto_onetimeauth_poly1305_final(&m->st, tag) ? -EIO : 0;
	return ossl.final(m->evp, tag, &l, KVX_MAC_LEN) == 1 && l == KVX_MAC_LEN ? 0 : -EIO;
}

/* ---- RDMA: reporting; stubs when built without verbs --------------------- */

void kvx_rdma_info_str(const struct kvx_rdma_info *r, char *buf, size_t len)
{
	char lg[INET6_ADDRSTRLEN], pg[INET6_ADDRSTRLEN];

	if (!inet_ntop(AF_INET6, r->local_gid, lg, sizeof(lg)))
		snprintf(lg, sizeof(lg), "?");
	if (!inet_ntop(AF_INET6, r->peer_gid, pg, sizeof(pg)))
		snprintf(pg, sizeof(pg), "?");
	snprintf(buf, len, "path mtu %u (local %u, peer %u), qpn 0x%x -> 0x%x, gid %s -> %s",
		 r->mtu, r->local_mtu, r->peer_mtu, r->local_qpn, r->peer_qpn, lg, pg);
}

#ifndef KVX_HAVE_RDMA
#define KVX_NO_RDMA "built without RDMA support (libibverbs/librdmacm not found at " \
	"build time; tools/deps.sh installs them)"

int kvx_rdma_probe(char *why, size_t whylen)
{
	snprintf(why, whylen, KVX_NO_RDMA);
	return -EPROTONOSUPPORT;
}

int kvr_open(struct kvx *x, char *why, size_t whylen)
{
	return kvx_rdma_probe(why, whylen);
}

void kvr_close(struct kvx *x) {}
int kvr_reg(struct kvx *x, uint32_t arena) { return -EPROTONOSUPPORT; }
void kvr_unreg(struct kvx *x, uint32_t arena) {}
void kvr_stop(struct kvx *x) {}

int kvr_listen(struct kvx *x, const struct sockaddr_storage *ss, char *why, size_t whylen)
{
	return kvx_rdma_probe(why, whylen);
}

int kvr_send(struct tx *t, const struct tslice *sl, uint32_t nsl, uint64_t total,
	     const uint8_t *src, bool *setup, char *why, size_t whylen)
{
	*setup = true;
	return kvx_rdma_probe(why, whylen);
}
#endif

/* ---- options, policy ---------------------------------------------------- */

void kvx_opts_defaults(struct kvx_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->policy = KVX_POLICY_AUTO;
	o->streams = 4;
	o->slice = 1U << 20;
	o->timeout_ms = 10000;
	o->max_rx = 1ULL << 30;
	o->max_rx_conns = 64;
	o->hello_ms = 3000;
}

int kvx_policy_parse(const char *s, enum kvx_policy *p)
{
	if (!strcmp(s, "auto"))
		*p = KVX_POLICY_AUTO;
	else if (!strcmp(s, "tcp"))
		*p = KVX_POLICY_TCP;
	else if (!strcmp(s, "rdma"))
		*p = KVX_POLICY_RDMA;
	else
		return -EINVAL;
	return 0;
}

const char *kvx_policy_name(enum kvx_policy p)
{
	return p == KVX_POLICY_TCP ? "tcp" : p == KVX_POLICY_RDMA ? "rdma" : "auto";
}

int kvx_create(struct kvx **out, const struct kvx_opts *o, char *err, size_t errlen)
{
	struct kvx *x;
	char why[192] = "";
	int nd = 0;

	if (!o->streams || o->streams > KVX_MAX_STREAMS || o->slice < 4096 ||
	    o->slice > (64U << 20)) {
		snprintf(err, errlen, "streams 1..%d, slice 4 KiB..64 MiB", KVX_MAX_STREAMS);
		return -EINVAL;
	}
	if (sodium_init() < 0) {
		snprintf(err, errlen, "libsodium: init failed");
		return -EIO;
	}
	x = calloc(1, sizeof(*x));
	if (!x)
		return -ENOMEM;
	x->o = *o;
	if (!x->o.timeout_ms)
		x->o.timeout_ms = 10000;
	if (!x->o.max_rx_conns)
		x->o.max_rx_conns = 64;
	if (!x->o.hello_ms)
		x->o.hello_ms = 3000;
	if (o->policy != KVX_POLICY_TCP) {
		nd = kvr_open(x, why, sizeof(why));
		if (nd <= 0 && o->policy == KVX_POLICY_RDMA) {
			snprintf(err, errlen, "transport policy rdma: %s", why);
			free(x);
			return nd == -EPROTONOSUPPORT ? nd : -ENODEV;
		}
	}
	if (o->policy == KVX_POLICY_TCP)
		snprintf(x->choice, sizeof(x->choice), "policy tcp: tcp");
	else if (o->policy == KVX_POLICY_RDMA)
		snprintf(x->choice, sizeof(x->choice), "policy rdma: rdma (%s)", why);
	else if (nd > 0)
		snprintf(x->choice, sizeof(x->choice), "policy auto: rdma (%s; tcp to a "
			 "peer without an RDMA path)", why);
	else
		snprintf(x->choice, sizeof(x->choice), "policy auto: tcp (%s)", why);
	pthread_mutex_init(&x->mu, NULL);
	pthread_cond_init(&x->cv, NULL);
	x->lfd = -1;
	x->next_id = 1;
	*out = x;
	return 0;
}

const char *kvx_transport(const struct kvx *x)
{
	return x->rdma ? "rdma" : "tcp";
}

const char *kvx_choice(const struct kvx *x)
{
	return x->choice;
}

int kvx_register(struct kvx *x, void *base, uint64_t len, uint32_t *id)
{
	int rc = -ENOSPC;

	if (!base || !len)
		return -EINVAL;
	pthread_mutex_lock(&x->mu);
	for (uint32_t i = 0; i < KVX_MAX_ARENAS; i++) {
		if (x->ar[i].used)
			continue;
		x->ar[i] = (struct arena){ .base = base, .len = len, .used = true };
		*id = i;
		rc = 0;
		break;
	}
	pthread_mutex_unlock(&x->mu);
	if (!rc && x->rdma) {		/* one memory region per arena, now */
		rc = kvr_reg(x, *id);
		pthread_mutex_lock(&x->mu);
		if (rc && x->o.policy == KVX_POLICY_AUTO && !x->rdma_listening && !x->txs) {
			/* auto: no RDMA without its memory region, but TCP works */
			kvr_close(x);
			snprintf(x->choice, sizeof(x->choice), "policy auto: tcp (RDMA "
				 "registration of %llu bytes failed: %s)",
				 (unsigned long long)len, strerror(-rc));
			rc = 0;
		} else if (rc) {
			x->ar[*id].used = false;
		}
		pthread_mutex_unlock(&x->mu);
	}
	return rc;
}

int kvx_unregister(struct kvx *x, uint32_t id)
{
	if (id >= KVX_MAX_ARENAS)
		return -ENOENT;
	pthread_mutex_lock(&x->mu);
	x->ar[id].used = false;
	pthread_mutex_unlock(&x->mu);
	if (x->rdma)
		kvr_unreg(x, id);
	return 0;
}

/* ---- I/O helpers -------------------------------------------------------- */

double kvx_since(const struct timespec *t0)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (t.tv_sec - t0->tv_sec) + (t.tv_nsec - t0->tv_nsec) / 1e9;
}

/*
 * Read len bytes before the deadline (CLOCK_MONOTONIC ms), however the
 * peer trickles them: the handshake of an idle or slow peer ends there.
 */
static int read_by(int fd, void *buf, size_t len, double deadline_ms)
{
	uint8_t *p = buf;

	while (len) {
		struct timespec ts;
		struct pollfd pf = { .fd = fd, .events = POLLIN };
		double now;
		ssize_t r;
		int n;

		clock_gettime(CLOCK_MONOTONIC, &ts);
		now = ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
		if (now >= deadline_ms)
			return -ETIMEDOUT;
		n = poll(&pf, 1, (int)(deadline_ms - now) + 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n ? -errno : -ETIMEDOUT;
		r = recv(fd, p, len, MSG_DONTWAIT);
		if (r == 0)
			return -EPIPE;
		if (r < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			return -errno;
		}
		p += r;
		len -= r;
	}
	return 0;
}

/* blocking socket with SO_RCVTIMEO: 0 ok, -errno (-EPIPE on EOF) */
static int read_full(int fd, void *buf, size_t len)
{
	uint8_t *p = buf;

	while (len) {
		ssize_t r = recv(fd, p, len, 0);

		if (r == 0)
			return -EPIPE;
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return errno == EAGAIN ? -ETIMEDOUT : -errno;
		}
		p += r;
		len -= r;
	}
	return 0;
}

/*
 * read_full into the stage, hashing (XXH3 streaming, same value as
 * kvx_hash64) each piece right after it landed, while it is still in
 * cache: no second pass over the slice. -EBADMSG when the hash differs.
 */
#define KVX_HASH_CHUNK (128U << 10)

static int read_hashed(int fd, XXH3_state_t *hs, uint8_t *dst, uint64_t len, uint64_t seed,
		       uint64_t want)
{
	uint8_t *p = dst, *h = dst, *end = dst + len;

	if (XXH3_64bits_reset_withSeed(hs, seed) == XXH_ERROR)
		return -EINVAL;
	while (p < end) {
		ssize_t r = recv(fd, p, end - p, 0);

		if (r == 0)
			return -EPIPE;
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return errno == EAGAIN ? -ETIMEDOUT : -errno;
		}
		p += r;
		if (p - h >= KVX_HASH_CHUNK || p == end) {
			XXH3_64bits_update(hs, h, p - h);
			h = p;
		}
	}
	return XXH3_64bits_digest(hs) == want ? 0 : -EBADMSG;
}

/*
 * read_hashed's keyed twin: the payload into the stage, each piece into
 * the slice's MAC (started by kvx_mac_start) while still in cache; then
 * the tag compared in constant time. -EBADMSG when it differs.
 */
static int read_mac(int fd, struct kvx_mac *mh, uint8_t *dst, uint64_t len,
		    const uint8_t want[KVX_MAC_LEN])
{
	uint8_t *p = dst, *h = dst, *end = dst + len, tag[KVX_MAC_LEN];

	while (p < end) {
		ssize_t r = recv(fd, p, end - p, 0);

		if (r == 0)
			return -EPIPE;
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return errno == EAGAIN ? -ETIMEDOUT : -errno;
		}
		p += r;
		if (p - h >= KVX_HASH_CHUNK || p == end) {
			kvx_mac_update(mh, h, p - h);
			h = p;
		}
	}
	if (kvx_mac_final(mh, tag))
		return -EIO;
	return sodium_memcmp(tag, want, KVX_MAC_LEN) ? -EBADMSG : 0;
}

static int write_full(int fd, const void *buf, size_t len)
{
	const uint8_t *p = buf;

	while (len) {
		ssize_t r = send(fd, p, len, MSG_NOSIGNAL);

		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += r;
		len -= r;
	}
	return 0;
}

static void set_timeouts(int fd, uint32_t ms)
{
	struct timeval tv = { .tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000 };

	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

/* ---- receiver ----------------------------------------------------------- */

/*
 * After an error answer: a close() with the sender's slices still unread
 * would reset the connection, and a reset may reach the sender before it
 * read the answer (it then saw "peer gone mid-transfer" instead of, say,
 * the checksum mismatch). So the answer is followed by our FIN, and what
 * the sender still had in flight is read and dropped until it closes its
 * end (it does once it read the answer), for at most ms milliseconds and
 * 64 MiB (and not past kvx_destroy); only then the socket is closed.
 */
static void rx_linger(struct kvx *x, int fd)
{
	long ms = x->o.timeout_ms;
	uint8_t sink[16384];
	uint64_t left = 64ULL << 20;
	struct timespec t0, t;

	if (shutdown(fd, SHUT_WR))
		return;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	while (left) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		long spent;
		ssize_t r;

		clock_gettime(CLOCK_MONOTONIC, &t);
		spent = (t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000;
		if (spent >= ms || x->stop)
			return;
		if (poll(&p, 1, ms - spent < 100 ? ms - spent : 100) <= 0)
			continue;
		r = recv(fd, sink, sizeof(sink), MSG_DONTWAIT);
		if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR))
			return;
		if (r > 0)
			left = (uint64_t)r >= left ? 0 : left - r;
	}
}

void kvx_rx_fail_locked(struct kvx *x, struct rx *t, int err, const char *fmt, ...)
{
	va_list ap;

	if (t->done)
		return;
	t->err = err;
	t->done = true;
	x->st.rx_failed++;
	va_start(ap, fmt);
	vsnprintf(x->st.rx_last_err, sizeof(x->st.rx_last_err), fmt, ap);
	va_end(ap);
	pthread_cond_broadcast(&x->cv);
}

struct rx *kvx_rx_get_locked(struct kvx *x, const struct w_hello *h, bool alloc_stage,
			     int *err)
{
	struct rx *t;

	for (unsigned int i = 0; i < sizeof(x->dead) / sizeof(x->dead[0]); i++)
		if (x->dead[i].id == h->xfer && h->xfer) {
			*err = x->dead[i].err;
			return NULL;
		}
	/*
	 * KVX_ARENA_OWNED: cache blocks of a tenant or session (a migration):
	 * applied like KVX_ARENA_NONE, but the commit callback is told, so it
	 * takes them only against the owner idnd announced (agent: /v1/kv/expect)
	 */
	bool owned = h->dst_arena == KVX_ARENA_OWNED;
	uint32_t da = owned ? KVX_ARENA_NONE : h->dst_arena;

	for (t = x->rxs; t; t = t->next)
		if (t->id == h->xfer) {
			if (t->nstreams != h->nstreams || t->total != h->total ||
			    t->nslices != h->nslices || t->dst_arena != da || t->owned != owned) {
				*err = -EPROTO;
				return NULL;
			}
			t->refs++;
			return t;
		}
	/* every length from the wire checked before anything is allocated */
	if (h->total > x->o.max_rx || !h->nslices || h->nslices > h->total ||
	    !h->nstreams || h->nstreams > KVX_MAX_STREAMS) {
		*err = -EMSGSIZE;
		return NULL;
	}
	if (alloc_stage && x->staged + h->total > x->o.max_rx) {
		*err = -ENOBUFS;	/* all stages in flight together: bounded too */
		return NULL;
	}
	if (da != KVX_ARENA_NONE && (da >= KVX_MAX_ARENAS || !x->ar[da].used)) {
		*err = -ENOENT;
		return NULL;
	}
	t = calloc(1, sizeof(*t));
	if (!t) {
		*err = -ENOMEM;
		return NULL;
	}
	if (!alloc_stage) {
		t->ext_stage = true;
	} else if (x->sink.open && da == KVX_ARENA_NONE) {
		t->prep = true;		/* its first stream asks the sink (rx_prepare) */
	} else if (x->spare && x->spare_len >= h->total) {
		t->stage = x->spare;
		t->stage_len = x->spare_len;
		x->spare = NULL;
	} else {
		t->stage = malloc(h->total);
		t->stage_len = h->total;
	}
	t->sl = calloc(h->nslices, sizeof(*t->sl));
	t->have = calloc(h->nslices, 1);
	if ((alloc_stage && !t->prep && !t->stage) || !t->sl || !t->have) {
		free(t->stage);
		free(t->sl);
		free(t->have);
		free(t);
		*err = -ENOMEM;
		return NULL;
	}
	if (!t->ext_stage) {
		t->budget = t->prep ? h->total : t->stage_len;
		x->staged += t->budget;
	}
	t->id = h->xfer;
	t->nstreams = h->nstreams;
	t->nslices = h->nslices;
	t->total = h->total;
	t->dst_arena = da;
	t->owned = owned;
	t->refs = 1;
	clock_gettime(CLOCK_MONOTONIC, &t->t0);
	t->next = x->rxs;
	x->rxs = t;
	x->st.rx_active++;
	return t;
}

struct rx_end kvx_rx_put_locked(struct kvx *x, struct rx *t)
{
	struct rx_end e = { 0 };
	struct rx **pp;

	if (--t->refs)
		return e;
	for (pp = &x->rxs; *pp; pp = &(*pp)->next)
		if (*pp == t) {
			*pp = t->next;
			break;
		}
	x->st.rx_active--;
	if (t->done && t->err) {
		x->dead[x->dead_next].id = t->id;
		x->dead[x->dead_next].err = t->err;
		x->dead_next = (x->dead_next + 1) % (sizeof(x->dead) / sizeof(x->dead[0]));
	}
	if (!t->ext_stage)
		x->staged -= t->budget;
	if (t->xfer) {			/* the sink releases it, unlocked */
		e.xfer = t->xfer;
		e.err = t->done ? t->err : -ECANCELED;
	}
	if (t->ext_stage) {
		t->stage = NULL;
	} else if (!x->spare || x->spare_len < t->stage_len) {
		free(x->spare);
		x->spare = t->stage;
		x->spare_len = t->stage_len;
		t->stage = NULL;
	}
	free(t->stage);
	free(t->sl);
	free(t->have);
	free(t);
	return e;
}

void kvx_rx_end(struct kvx *x, struct rx_end e)
{
	if (e.xfer)
		x->sink.close(e.xfer, e.err);
}

/*
 * The first stream of a transfer opens it (lock not held): the sink
 * reserves its destination, or declines, and then it gets a stage. The
 * other streams of the transfer wait for this (rx_stream). 0 or -errno
 * (the transfer failed: nothing reserved, nothing staged).
 */
static int rx_prepare(struct kvx *x, struct rx *t)
{
	void *xfer = NULL;
	int rc = x->sink.open(x->sink_arg, t->owned ? KVX_ARENA_OWNED : t->dst_arena,
			      t->total, t->nslices, &xfer);

	pthread_mutex_lock(&x->mu);
	if (!rc && xfer) {
		t->xfer = xfer;
	} else if (!rc) {		/* declined: staged as without a sink */
		if (x->spare && x->spare_len >= t->total) {
			t->stage = x->spare;
			t->stage_len = x->spare_len;
			x->spare = NULL;
		} else {
			t->stage = malloc(t->total);
			t->stage_len = t->total;
		}
		if (t->stage) {
			x->staged += t->stage_len - t->budget;
			t->budget = t->stage_len;
		} else {
			rc = -ENOMEM;
		}
	}
	t->prep = false;
	if (rc)
		kvx_rx_fail_locked(x, t, rc, "transfer %016llx: refused at its start: %s",
				   (unsigned long long)t->id, strerror(-rc));
	pthread_cond_broadcast(&x->cv);
	pthread_mutex_unlock(&x->mu);
	return rc;
}

int kvx_set_sink(struct kvx *x, const struct kvx_sink *sink, void *arg)
{
	if (x->listening)
		return -EBUSY;
	if (sink && (!sink->open || !sink->place || !sink->commit || !sink->close))
		return -EINVAL;
	if (sink)
		x->sink = *sink;
	else
		memset(&x->sink, 0, sizeof(x->sink));
	x->sink_arg = arg;
	return 0;
}

/* all slices in, all streams ended: apply (locked; copies run unlocked) */
static int rx_commit(struct kvx *x, struct rx *t)
{
	int rc = 0;

	if (t->xfer)			/* already in place: the sink publishes it */
		return x->sink.commit(t->xfer, t->sl, t->nslices);
	if (t->dst_arena != KVX_ARENA_NONE) {
		struct arena *a = &x->ar[t->dst_arena];

		if (!a->used)
			return -ENOENT;
		for (uint32_t i = 0; i < t->nslices; i++)	/* bounds checked on receipt */
			memcpy((uint8_t *)a->base + t->sl[i].dst_off,
			       t->stage + t->sl[i].stage_off, t->sl[i].len);
	}
	if (x->commit)
		rc = x->commit(x->commit_arg, t->owned ? KVX_ARENA_OWNED : t->dst_arena, t->stage,
			       t->sl, t->nslices);
	return rc;
}

/* all slices verified: apply, then count ok or failed (lock not held) */
int kvx_rx_finish(struct kvx *x, struct rx *t)
{
	int cerr = rx_commit(x, t);

	pthread_mutex_lock(&x->mu);
	if (cerr) {
		kvx_rx_fail_locked(x, t, cerr, "transfer %016llx: commit rejected: %s",
				   (unsigned long long)t->id, strerror(-cerr));
	} else if (!t->done) {
		t->done = true;
		x->st.rx_ok++;
		x->st.rx_bytes += t->total;
		pthread_cond_broadcast(&x->cv);
	}
	pthread_mutex_unlock(&x->mu);
	return cerr;
}

struct rx_conn {
	struct kvx *x;
	int fd;
};

/* a peer that failed the key handshake: counted, said (log hook), refused */
static void rx_refuse(struct kvx *x, int fd)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	char a[INET6_ADDRSTRLEN] = "?", line[192];
	int port = 0;

	if (!getpeername(fd, (struct sockaddr *)&ss, &sl)) {
		if (ss.ss_family == AF_INET6) {
			inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ss)->sin6_addr, a,
				  sizeof(a));
			port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
		} else {
			inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, a, sizeof(a));
			port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
		}
	}
	snprintf(line, sizeof(line), "kv peer %s port %d refused: authentication failed "
		 "(no or wrong KV key, or a tampered handshake); nothing staged", a, port);
	pthread_mutex_lock(&x->mu);
	x->st.rx_auth_refused++;
	snprintf(x->st.rx_last_err, sizeof(x->st.rx_last_err), "%s", line);
	pthread_mutex_unlock(&x->mu);
	if (x->o.log)
		x->o.log(x->o.log_arg, line);
}

/*
 * A refused or dropped peer (too large, over budget, too slow, too many):
 * counted, kept as the last error, said through the log hook at most once
 * a second (a flood of them stays one line a second).
 */
static void rx_note(struct kvx *x, uint64_t *counter, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void rx_note(struct kvx *x, uint64_t *counter, const char *fmt, ...)
{
	/*
	 * at most one line a second per kind of refusal (its format): a flood
	 * of one kind is counted, not logged line by line, and never hides
	 * the first line of another kind in the same second
	 */
	static struct {
		const char *fmt;
		time_t last;
		unsigned long quiet;
	} kinds[8];
	char line[192];
	bool say = true;
	va_list ap;
	int k;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	pthread_mutex_lock(&x->mu);
	(*counter)++;
	snprintf(x->st.rx_last_err, sizeof(x->st.rx_last_err), "%s", line);
	for (k = 0; k < 8 && kinds[k].fmt && kinds[k].fmt != fmt; k++)
		;
	if (k < 8) {
		kinds[k].fmt = fmt;
		say = time(NULL) != kinds[k].last;
		if (say) {
			kinds[k].last = time(NULL);
			if (kinds[k].quiet) {
				size_t n = strlen(line);

				snprintf(line + n, sizeof(line) - n, " (and %lu more)",
					 kinds[k].quiet);
			}
			kinds[k].quiet = 0;
		} else {
			kinds[k].quiet++;
		}
	}
	pthread_mutex_unlock(&x->mu);
	if (say && x->o.log)
		x->o.log(x->o.log_arg, line);
}

static void *rx_stream(void *arg)
{
	struct rx_conn *rc = arg;
	struct kvx *x = rc->x;
	int fd = rc->fd, err = 0;
	struct w_hello h, hw;
	struct w_chal ch;
	struct w_auth au;
	struct w_res res = { .magic = htole32(KVX_MAGIC_RES) };
	struct rx *t = NULL;
	struct rx_end end = { 0 };
	uint32_t count = 0;
	bool answered = false, opener = false;
	XXH3_state_t *hs = XXH3_createState();
	struct kvx_mac *mh = NULL;	/* with a key: this stream's slice MAC */
	struct timespec now;
	double deadline;

	free(rc);
	if (!hs)
		goto out;
	set_timeouts(fd, x->o.timeout_ms);
	ch = (struct w_chal){ .magic = htole32(KVX_MAGIC_CHAL),
			      .flags = htole32(x->o.auth ? KVX_CHAL_F_AUTH : 0) };
	randombytes_buf(ch.nonce, sizeof(ch.nonce));
	/* the whole hello within hello_ms: an idle or trickling peer is dropped */
	clock_gettime(CLOCK_MONOTONIC, &now);
	deadline = now.tv_sec * 1e3 + now.tv_nsec / 1e6 + x->o.hello_ms;
	err = write_full(fd, &ch, sizeof(ch));
	if (!err)
		err = read_by(fd, &h, sizeof(h), deadline);
	if (!err)
		err = read_by(fd, &au, sizeof(au), deadline);
	if (err == -ETIMEDOUT)
		rx_note(x, &x->st.rx_refused, "kv peer dropped: no hello within %u ms",
			x->o.hello_ms);
	if (err)
		goto out;
	hw = h;
	if (le32toh(au.magic) != KVX_MAGIC_AUTH) {
		err = -EPROTO;
		goto out;
	}
	if (x->o.auth) {		/* before anything reaches staging */
		uint8_t ns[16];

		memcpy(ns, au.nonce, sizeof(ns));
		if (auth_check(au.mac, x->o.key, 's', ch.nonce, ns, &hw)) {
			rx_refuse(x, fd);
			err = -EACCES;
			goto reply;
		}
		au = (struct w_auth){ .magic = htole32(KVX_MAGIC_AUOK) };
		auth_mac(au.mac, x->o.key, 'r', ch.nonce, ns, &hw);
		err = kvx_mac_open(&mh, x->o.key, ch.nonce, ns, &hw);
		if (!err)
			err = write_full(fd, &au, sizeof(au));
		if (err)
			goto out;
	}
	h.magic = le32toh(h.magic);
	h.ver = le16toh(h.ver);
	h.stream = le16toh(h.stream);
	h.nstreams = le16toh(h.nstreams);
	h.dst_arena = le32toh(h.dst_arena);
	h.xfer = le64toh(h.xfer);
	h.total = le64toh(h.total);
	h.nslices = le32toh(h.nslices);
	if (h.magic != KVX_MAGIC_HELLO || h.ver != KVX_VERSION) {
		err = -EPROTO;
		goto out;
	}
	pthread_mutex_lock(&x->mu);
	t = kvx_rx_get_locked(x, &h, true, &err);
	opener = t && t->prep && t->refs == 1;	/* it just created the transfer */
	while (t && !opener && t->prep && !x->stop)	/* another stream opens it */
		pthread_cond_wait(&x->cv, &x->mu);
	if (t && !opener && (t->prep || (t->done && t->err)))
		err = t->prep ? -ECANCELED : t->err;	/* refused at its start, or failed */
	pthread_mutex_unlock(&x->mu);
	if (opener)
		err = rx_prepare(x, t);
	if (t && err)
		goto reply;
	if (!t && (err == -EMSGSIZE || err == -ENOBUFS))
		rx_note(x, &x->st.rx_refused, "kv hello refused: transfer of %llu bytes, %u slices, "
			"%u streams %s (limit %llu bytes)", (unsigned long long)h.total,
			h.nslices, h.nstreams, err == -ENOBUFS ? "over the staging budget" :
			"out of bounds", (unsigned long long)x->o.max_rx);
	if (!t)
		goto reply;

	for (;;) {
		struct w_slice s, sw;
		uint8_t *dst, mac[KVX_MAC_LEN];
		bool dup;

		err = read_full(fd, &s, sizeof(uint32_t) * 2);
		if (err) {
			pthread_mutex_lock(&x->mu);
			kvx_rx_fail_locked(x, t, err, "transfer %016llx: stream %u %s after %u slices",
				       (unsigned long long)t->id, h.stream,
				       err == -EPIPE ? "closed mid-transfer" : strerror(-err),
				       count);
			pthread_mutex_unlock(&x->mu);
			break;
		}
		if (le32toh(s.magic) == KVX_MAGIC_END) {
			bool last;

			pthread_mutex_lock(&x->mu);
			t->ended++;
			last = t->ended == t->nstreams;
			if (last && !t->done) {
				if (t->got != t->nslices) {
					kvx_rx_fail_locked(x, t, -EPROTO,
						       "transfer %016llx: %u of %u slices",
						       (unsigned long long)t->id, t->got,
						       t->nslices);
				} else {
					pthread_mutex_unlock(&x->mu);
					kvx_rx_finish(x, t);
					pthread_mutex_lock(&x->mu);
				}
			}
			/*
			 * The other streams of the transfer: while they make
			 * progress (a slice in, a stream ended) wait on; none
			 * for timeout_ms fails the transfer. A peer that ends
			 * one stream of a "two-stream" transfer and never opens
			 * the other must not hold this thread and the stage.
			 */
			struct timespec ts = { 0 };

			for (uint64_t seen = ~0ULL; !t->done && !x->stop;) {
				uint64_t now = t->got + ((uint64_t)t->ended << 32);

				if (now != seen) {
					seen = now;
					clock_gettime(CLOCK_REALTIME, &ts);
					ts.tv_sec += x->o.timeout_ms / 1000;
					ts.tv_nsec += (long)(x->o.timeout_ms % 1000) * 1000000;
					if (ts.tv_nsec >= 1000000000) {
						ts.tv_sec++;
						ts.tv_nsec -= 1000000000;
					}
				}
				if (pthread_cond_timedwait(&x->cv, &x->mu, &ts) == ETIMEDOUT &&
				    !t->done && t->got + ((uint64_t)t->ended << 32) == seen)
					kvx_rx_fail_locked(x, t, -ETIMEDOUT, "transfer %016llx: %u of %u "
						       "streams ended, none progressing for %u ms",
						       (unsigned long long)t->id, t->ended,
						       t->nstreams, x->o.timeout_ms);
			}
			err = t->done ? t->err : -ECANCELED;
			pthread_mutex_unlock(&x->mu);
			break;
		}
		err = read_full(fd, (uint8_t *)&s + 8, sizeof(s) - 8);
		if (!err && le32toh(s.magic) != KVX_MAGIC_SLICE)
			err = -EPROTO;
		if (!err && mh)
			err = read_full(fd, mac, sizeof(mac));
		sw = s;		/* as on the wire: what the MAC covers */
		if (err) {
			pthread_mutex_lock(&x->mu);
			kvx_rx_fail_locked(x, t, err, "transfer %016llx: stream %u truncated "
				       "slice header", (unsigned long long)t->id, h.stream);
			pthread_mutex_unlock(&x->mu);
			break;
		}
		s.seq = le32toh(s.seq);
		s.stage_off = le64toh(s.stage_off);
		s.dst_off = le64toh(s.dst_off);
		s.len = le64toh(s.len);
		s.tag = le64toh(s.tag);
		s.hash = le64toh(s.hash);
		pthread_mutex_lock(&x->mu);
		dup = s.seq >= t->nslices || t->have[s.seq];
		if (!dup && (s.len > t->total || s.stage_off > t->total - s.len))
			dup = true;
		if (!dup && t->dst_arena != KVX_ARENA_NONE &&
		    (s.len > x->ar[t->dst_arena].len ||
		     s.dst_off > x->ar[t->dst_arena].len - s.len))
			dup = true;
		if (dup) {
			kvx_rx_fail_locked(x, t, -ERANGE, "transfer %016llx: slice %u out of "
				       "range or repeated", (unsigned long long)t->id, s.seq);
			pthread_mutex_unlock(&x->mu);
			err = -ERANGE;
			break;
		}
		t->have[s.seq] = 1;	/* claimed: this stream owns the range */
		pthread_mutex_unlock(&x->mu);
		/* placed: straight into the sink's reserved memory, else the stage */
		dst = t->xfer ? x->sink.place(t->xfer, s.stage_off, s.len) : t->stage + s.stage_off;
		if (!dst) {
			pthread_mutex_lock(&x->mu);
			kvx_rx_fail_locked(x, t, -ERANGE, "transfer %016llx: slice %u has no "
				       "place at the receiver", (unsigned long long)t->id, s.seq);
			pthread_mutex_unlock(&x->mu);
			err = -ERANGE;
			break;
		}
		if (mh) {
			err = kvx_mac_start(mh, &sw, s.seq);
			if (!err)
				err = read_mac(fd, mh, dst, s.len, mac);
		} else
			err = read_hashed(fd, hs, dst, s.len,
					  kvx_slice_seed(t->id, s.seq, s.stage_off, s.dst_off,
							 s.len, s.tag), s.hash);
		pthread_mutex_lock(&x->mu);
		if (err) {
			kvx_rx_fail_locked(x, t, err, "transfer %016llx: slice %u %s",
				       (unsigned long long)t->id, s.seq,
				       err == -EBADMSG ? (mh ? "MAC mismatch (altered or forged)" :
							  "checksum mismatch") :
				       err == -EPIPE ? "truncated (stream closed)" :
				       strerror(-err));
			pthread_mutex_unlock(&x->mu);
			break;
		}
		t->sl[s.seq] = (struct kvx_slice){ s.stage_off, s.dst_off, s.len, s.tag };
		t->got++;
		count++;
		pthread_mutex_unlock(&x->mu);
	}
reply:
	/*
	 * The stage (or a placement's reservation) goes before the answer:
	 * a sender that has every stream's answer finds the receiver's budget
	 * free again, so a transfer right after it is not refused for the
	 * stage of this one (-ENOBUFS).
	 */
	pthread_mutex_lock(&x->mu);
	if (t)
		end = kvx_rx_put_locked(x, t);
	t = NULL;
	pthread_mutex_unlock(&x->mu);
	kvx_rx_end(x, end);
	end = (struct rx_end){ 0 };
	res.status = htole32(err);
	answered = write_full(fd, &res, sizeof(res)) == 0;	/* best effort */
out:
	pthread_mutex_lock(&x->mu);
	if (t)
		end = kvx_rx_put_locked(x, t);	/* not answered: the stage goes */
	pthread_mutex_unlock(&x->mu);
	kvx_rx_end(x, end);			/* and a placement's reservation */
	if (answered && err)
		rx_linger(x, fd);
	pthread_mutex_lock(&x->mu);
	x->rx_threads--;
	pthread_cond_broadcast(&x->cv);
	pthread_mutex_unlock(&x->mu);
	XXH3_freeState(hs);
	kvx_mac_close(mh);
	close(fd);
	return NULL;
}

/* A detached receive thread, counted in rx_threads (kvx_destroy waits for
 * them); shared by the TCP and RDMA listeners. 0 or -errno. */
int kvx_spawn_rx(struct kvx *x, void *(*fn)(void *), void *arg)
{
	pthread_attr_t at;
	pthread_t th;
	int rc;

	pthread_mutex_lock(&x->mu);
	if (x->rx_threads >= x->o.max_rx_conns) {	/* bounded threads and sockets */
		pthread_mutex_unlock(&x->mu);
		rx_note(x, &x->st.rx_busy, "kv peer refused: %u receive streams already open "
			"(limit)", x->o.max_rx_conns);
		return -EBUSY;
	}
	x->rx_threads++;
	pthread_mutex_unlock(&x->mu);
	pthread_attr_init(&at);
	pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
	rc = pthread_create(&th, &at, fn, arg);
	if (rc) {
		pthread_mutex_lock(&x->mu);
		x->rx_threads--;
		pthread_mutex_unlock(&x->mu);
	}
	pthread_attr_destroy(&at);
	return -rc;
}

static void *rx_accept(void *arg)
{
	struct kvx *x = arg;

	for (;;) {
		struct pollfd p = { .fd = x->lfd, .events = POLLIN };
		struct rx_conn *c;
		int fd, one = 1;

		if (x->stop)
			break;
		if (poll(&p, 1, 100) <= 0)
			continue;
		fd = accept4(x->lfd, NULL, NULL, SOCK_CLOEXEC);
		if (fd < 0)
			continue;
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		c = malloc(sizeof(*c));
		if (!c) {
			close(fd);
			continue;
		}
		c->x = x;
		c->fd = fd;
		if (kvx_spawn_rx(x, rx_stream, c)) {
			close(fd);
			free(c);
		}
	}
	return NULL;
}

/* agent_parse_hostport, plus port 0 (any) for the listener */
int kvx_resolve(const char *hostport, struct sockaddr_storage *ss, socklen_t *len)
{
	size_t n = strlen(hostport);
	char tmp[160];
	int rc;

	if (n < 2 || n >= sizeof(tmp) || strcmp(hostport + n - 2, ":0"))
		return agent_parse_hostport(hostport, ss, len);
	memcpy(tmp, hostport, n + 1);
	tmp[n - 1] = '1';
	rc = agent_parse_hostport(tmp, ss, len);
	if (!rc && ss->ss_family == AF_INET6)
		((struct sockaddr_in6 *)ss)->sin6_port = 0;
	else if (!rc)
		((struct sockaddr_in *)ss)->sin_port = 0;
	return rc;
}

int kvx_listen(struct kvx *x, const char *hostport, kvx_commit_fn fn, void *arg)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int fd, one = 1, rc;

	if (x->listening)
		return -EALREADY;
	rc = kvx_resolve(hostport, &ss, &len);
	if (rc)
		return rc;
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&ss, len) || listen(fd, 128)) {
		rc = -errno;
		close(fd);
		return rc;
	}
	len = sizeof(ss);
	getsockname(fd, (struct sockaddr *)&ss, &len);
	x->port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port :
			((struct sockaddr_in *)&ss)->sin_port);
	x->lfd = fd;
	x->commit = fn;
	x->commit_arg = arg;
	if (pthread_create(&x->lthr, NULL, rx_accept, x)) {
		close(fd);
		x->lfd = -1;
		return -EAGAIN;
	}
	x->listening = true;
	if (x->rdma) {			/* rdma_cm listens on the same address and port */
		char why[160];

		if (ss.ss_family == AF_INET6)
			((struct sockaddr_in6 *)&ss)->sin6_port = htons(x->port);
		else
			((struct sockaddr_in *)&ss)->sin_port = htons(x->port);
		rc = kvr_listen(x, &ss, why, sizeof(why));
		if (rc && x->o.policy == KVX_POLICY_RDMA)
			return rc;
		if (rc) {
			size_t n = strlen(x->choice);

			snprintf(x->choice + n, sizeof(x->choice) - n,
				 "; no rdma listener (%s): receives over tcp", why);
		}
	}
	return 0;
}

int kvx_port(const struct kvx *x)
{
	return x->listening ? x->port : -ENOTCONN;
}

/* ---- sender ------------------------------------------------------------- */

/* what goes before a slice's payload: the header, with a key its MAC */
struct w_slice_mac {
	struct w_slice h;
	uint8_t mac[KVX_MAC_LEN];
};
_Static_assert(offsetof(struct w_slice_mac, mac) == sizeof(struct w_slice) &&
	       sizeof(struct w_slice_mac) == sizeof(struct w_slice) + KVX_MAC_LEN,
	       "slice header and MAC go out as one block");

struct tstream {
	int fd;
	struct w_slice_mac hdr;
	uint32_t hlen;			/* bytes of hdr sent: h, or h and mac */
	struct kvx_mac *mh;		/* with a key: this stream's slice MAC */
	const uint8_t *payload;
	uint8_t *corrupt;		/* private copy when injecting a fault */
	uint64_t len, sent;		/* of header + payload */
	uint32_t count;
	bool ended, end_sent, have_res;
	struct w_end end;
	struct w_res res;
	size_t res_got;
};

/*
 * The receiver's answer on a stream whose send just failed, if it is
 * queued: its (negative) status, or 0 when there is none or it is not a
 * refusal. Never blocks.
 */
static int tx_peer_answer(struct tstream *s)
{
	int32_t status;

	while (s->res_got < sizeof(s->res)) {
		ssize_t r = recv(s->fd, (uint8_t *)&s->res + s->res_got,
				 sizeof(s->res) - s->res_got, MSG_DONTWAIT);

		if (r <= 0)
			return 0;
		s->res_got += r;
	}
	if (le32toh(s->res.magic) != KVX_MAGIC_RES)
		return 0;
	status = (int32_t)le32toh(s->res.status);
	return status < 0 ? status : 0;
}

/*
 * A failed stream may not be the one that carries the answer: the
 * receiver answers on the stream whose slice failed. Each stream's queued
 * answer is read (never blocking) and the first refusal returned.
 */
static int tx_any_answer(struct tstream *st, uint32_t ns)
{
	for (uint32_t i = 0; i < ns; i++) {
		int status = st[i].fd >= 0 ? tx_peer_answer(&st[i]) : 0;

		if (status)
			return status;
	}
	return 0;
}

/* the receiver's refusal in words: a checksum mismatch says so */
static void peer_why(char *why, size_t len, const char *peer, int err)
{
	if (err == -EBADMSG)
		snprintf(why, len, "peer %s: checksum mismatch (a slice arrived corrupted; "
			 "nothing applied)", peer);
	else
		snprintf(why, len, "peer %s rejected the transfer: %s", peer, strerror(-err));
}

static int connect_to(const struct sockaddr_storage *ss, socklen_t len, uint32_t ms)
{
	int fd = socket(ss->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0), one = 1;
	struct pollfd p;
	int err = 0;
	socklen_t el = sizeof(err);

	if (fd < 0)
		return -errno;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(fd, (const struct sockaddr *)ss, len) && errno != EINPROGRESS) {
		err = -errno;
		close(fd);
		return err;
	}
	p = (struct pollfd){ .fd = fd, .events = POLLOUT };
	if (poll(&p, 1, ms) != 1) {
		close(fd);
		return -ETIMEDOUT;
	}
	getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el);
	if (err) {
		close(fd);
		return -err;
	}
	return fd;
}

/* non-blocking fd: exactly len bytes within ms; -EPIPE on EOF */
static int recv_wait(int fd, void *buf, size_t len, uint32_t ms)
{
	uint8_t *p = buf;

	while (len) {
		struct pollfd pf = { .fd = fd, .events = POLLIN };
		ssize_t r = recv(fd, p, len, MSG_DONTWAIT);

		if (r == 0)
			return -EPIPE;
		if (r > 0) {
			p += r;
			len -= r;
			continue;
		}
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN)
			return -errno;
		r = poll(&pf, 1, ms);
		if (r == 0)
			return -ETIMEDOUT;
		if (r < 0 && errno != EINTR)
			return -errno;
	}
	return 0;
}

/*
 * One stream's handshake: the receiver's challenge, the hello with our
 * nonce and MAC (zero without a key), and with a key the receiver's proof.
 */
static int tx_hello(struct tx *t, struct tstream *st, const struct w_hello *h, char *why,
		    size_t wl)
{
	int fd = st->fd;
	struct kvx *x = t->x;
	struct {
		struct w_hello h;
		struct w_auth a;
	} __attribute__((packed)) m = { .h = *h, .a = { .magic = htole32(KVX_MAGIC_AUTH) } };
	struct w_chal ch;
	struct w_auth ok;
	bool need;
	int err;

	err = recv_wait(fd, &ch, sizeof(ch), x->o.timeout_ms);
	if (!err && le32toh(ch.magic) != KVX_MAGIC_CHAL)
		err = -EPROTO;
	if (err) {
		snprintf(why, wl, "handshake with %s: %s", t->peer,
			 err == -EPROTO ? "not a KV receiver of this version" : strerror(-err));
		return err;
	}
	need = le32toh(ch.flags) & KVX_CHAL_F_AUTH;
	if (x->o.auth && !need) {
		snprintf(why, wl, "peer %s does not authenticate KV peers (no KV key there): "
			 "refusing to send with a key set", t->peer);
		return -EACCES;
	}
	randombytes_buf(m.a.nonce, sizeof(m.a.nonce));
	if (x->o.auth)
		auth_mac(m.a.mac, x->o.key, 's', ch.nonce, m.a.nonce, h);
	/* a fresh socket's buffer takes the hello at once */
	if (send(fd, &m, sizeof(m), MSG_NOSIGNAL) != sizeof(m)) {
		snprintf(why, wl, "hello to %s failed", t->peer);
		return -EIO;
	}
	if (need && !x->o.auth) {	/* it counts the refusal; we say why */
		snprintf(why, wl, "peer %s requires KV peer authentication and no KV key is "
			 "set here", t->peer);
		return -EACCES;
	}
	if (!x->o.auth)
		return 0;
	err = recv_wait(fd, &ok, 8, x->o.timeout_ms);
	if (!err && le32toh(ok.magic) == KVX_MAGIC_RES) {
		snprintf(why, wl, "peer %s refused our KV key (authentication failed: a "
			 "different key there?)", t->peer);
		return -EACCES;
	}
	if (!err)
		err = recv_wait(fd, (uint8_t *)&ok + 8, sizeof(ok) - 8, x->o.timeout_ms);
	if (!err && (le32toh(ok.magic) != KVX_MAGIC_AUOK ||
		     auth_check(ok.mac, x->o.key, 'r', ch.nonce, m.a.nonce, h)))
		err = -EACCES;
	if (err) {
		snprintf(why, wl, "peer %s did not prove the KV key (%s)", t->peer,
			 err == -EACCES ? "authentication failed" : strerror(-err));
		return err;
	}
	err = kvx_mac_open(&st->mh, x->o.key, ch.nonce, m.a.nonce, h);
	if (err)
		snprintf(why, wl, "slice MAC: %s", strerror(-err));
	return err;
}

static void tx_finish(struct tx *t, int err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void tx_finish(struct tx *t, int err, const char *fmt, ...)
{
	struct kvx *x = t->x;
	va_list ap;

	pthread_mutex_lock(&x->mu);
	t->res.err = err;
	t->res.state = err ? KVX_FAILED : KVX_DONE;
	if (fmt) {
		va_start(ap, fmt);
		vsnprintf(t->res.msg, sizeof(t->res.msg), fmt, ap);
		va_end(ap);
	}
	if (err) {
		x->st.tx_failed++;
	} else {
		x->st.tx_ok++;
		x->st.tx_bytes += t->res.bytes;
	}
	pthread_cond_broadcast(&x->cv);
	pthread_mutex_unlock(&x->mu);
}

/* next pending slice into stream s; false when none left */
static bool take_slice(struct tx *t, struct tstream *s, const uint8_t *src,
		       struct tslice *sl, uint32_t nsl, uint32_t *next)
{
	struct kvx *x = t->x;
	struct tslice *c;

	if (*next >= nsl)
		return false;
	c = &sl[(*next)++];
	if (x->o.fault == KVX_FAULT_SLOW && x->o.fault_ms)
		usleep(x->o.fault_ms * 1000);
	s->payload = src + c->src_off;
	s->hdr.h = (struct w_slice){
		.magic = htole32(KVX_MAGIC_SLICE), .seq = htole32(c->seq),
		.stage_off = htole64(c->stage_off), .dst_off = htole64(c->dst_off),
		.len = htole64(c->len), .tag = htole64(c->tag),
	};
	if (s->mh) {		/* keyed: the MAC over header and payload */
		s->hlen = sizeof(s->hdr);
		if (kvx_mac_start(s->mh, &s->hdr.h, c->seq))
			return false;	/* never unsigned: the transfer fails */
		kvx_mac_update(s->mh, s->payload, c->len);
		if (kvx_mac_final(s->mh, s->hdr.mac))
			return false;
	} else {
		s->hlen = sizeof(s->hdr.h);
		s->hdr.h.hash = htole64(kvx_hash64(s->payload, c->len,
						   kvx_slice_seed(t->id, c->seq, c->stage_off,
								  c->dst_off, c->len, c->tag)));
	}
	if (x->o.fault == KVX_FAULT_CORRUPT && c->seq == x->o.fault_slice) {
		s->corrupt = malloc(c->len);
		if (s->corrupt) {
			memcpy(s->corrupt, s->payload, c->len);
			s->corrupt[c->len / 2] ^= 0x40;
			s->payload = s->corrupt;
		}
	}
	s->len = s->hlen + c->len;
	if (x->o.fault == KVX_FAULT_TRUNCATE && c->seq == x->o.fault_slice)
		s->len = s->hlen + c->len / 2;	/* then the stream closes */
	s->sent = 0;
	s->count++;
	return true;
}

static void *tx_run(void *arg)
{
	struct tx *t = arg;
	struct kvx *x = t->x;
	uint32_t ns = x->o.streams, nsl = 0, next = 0, i, done_streams = 0;
	struct tstream st[KVX_MAX_STREAMS];
	struct pollfd pf[KVX_MAX_STREAMS];
	struct sockaddr_storage ss;
	struct tslice *sl = NULL;
	const uint8_t *src;
	uint64_t total = 0, srclen;
	struct timespec t0;
	socklen_t slen;
	int err = 0;
	char why[320] = "", fallback[420] = "";

	clock_gettime(CLOCK_MONOTONIC, &t0);
	memset(st, 0, sizeof(st));
	for (i = 0; i < KVX_MAX_STREAMS; i++)
		st[i].fd = -1;
	pthread_mutex_lock(&x->mu);
	if (t->src_arena >= KVX_MAX_ARENAS || !x->ar[t->src_arena].used) {
		pthread_mutex_unlock(&x->mu);
		tx_finish(t, -ENOENT, "source arena %u not registered", t->src_arena);
		return NULL;
	}
	src = x->ar[t->src_arena].base;
	srclen = x->ar[t->src_arena].len;
	pthread_mutex_unlock(&x->mu);

	/* descriptors -> slices */
	for (i = 0; i < t->n; i++) {
		const struct kvx_desc *d = &t->d[i];

		if (!d->len || d->len > srclen || d->src_off > srclen - d->len) {
			tx_finish(t, -ERANGE, "descriptor %u outside the source arena", i);
			return NULL;
		}
		nsl += (d->len + x->o.slice - 1) / x->o.slice;
	}
	sl = calloc(nsl ? nsl : 1, sizeof(*sl));
	if (!sl) {
		tx_finish(t, -ENOMEM, "out of memory");
		return NULL;
	}
	nsl = 0;
	for (i = 0; i < t->n; i++) {
		const struct kvx_desc *d = &t->d[i];

		for (uint64_t o = 0; o < d->len; o += x->o.slice) {
			uint64_t l = d->len - o < x->o.slice ? d->len - o : x->o.slice;

			sl[nsl] = (struct tslice){ nsl, d->src_off + o, total, d->dst_off + o, l,
						   d->tag };
			total += l;
			nsl++;
		}
	}
	t->res.slices = nsl;
	if (!nsl) {
		free(sl);
		tx_finish(t, -EINVAL, "empty descriptor list");
		return NULL;
	}
	if (ns > nsl)
		ns = nsl;

	if (x->rdma) {
		bool setup = false;

		err = kvr_send(t, sl, nsl, total, src, &setup, why, sizeof(why));
		if (!err) {
			t->res.bytes = total;
			t->res.secs = kvx_since(&t0);
			free(sl);
			tx_finish(t, 0, "%s", why);
			return NULL;
		}
		if (!setup || x->o.policy == KVX_POLICY_RDMA)
			goto fail;
		/* auto, and nothing was sent: no RDMA path to this peer */
		memset(&t->res.rdma, 0, sizeof(t->res.rdma));
		snprintf(fallback, sizeof(fallback), "policy auto: tcp, no rdma path to "
			 "%s (%.160s); ", t->peer, why);
		why[0] = 0;
		err = 0;
	}
	snprintf(t->res.transport, sizeof(t->res.transport), "tcp");
	err = kvx_resolve(t->peer, &ss, &slen);
	if (err) {
		snprintf(why, sizeof(why), "bad peer address %s", t->peer);
		goto fail;
	}
	for (i = 0; i < ns; i++) {
		struct w_hello h = {
			.magic = htole32(KVX_MAGIC_HELLO), .ver = htole16(KVX_VERSION),
			.stream = htole16(i), .nstreams = htole16(ns),
			.dst_arena = htole32(t->dst_arena), .xfer = htole64(t->id),
			.total = htole64(total), .nslices = htole32(nsl),
		};
		int fd = connect_to(&ss, slen, x->o.timeout_ms);

		if (fd < 0) {
			err = fd;
			snprintf(why, sizeof(why), "connect %s: %s", t->peer, strerror(-err));
			goto fail;
		}
		st[i].fd = fd;
		err = tx_hello(t, &st[i], &h, why, sizeof(why));
		if (err)
			goto fail;
	}

	while (done_streams < ns) {
		int pr;

		for (i = 0; i < ns; i++) {
			struct tstream *s = &st[i];

			pf[i] = (struct pollfd){ .fd = s->fd, .events = POLLIN };
			if (!s->end_sent)
				pf[i].events |= POLLOUT;
			if (s->have_res)
				pf[i].fd = -1;
		}
		pr = poll(pf, ns, x->o.timeout_ms);
		if (pr == 0) {
			err = -ETIMEDOUT;
			snprintf(why, sizeof(why), "peer %s stalled", t->peer);
			goto fail;
		}
		if (pr < 0) {
			if (errno == EINTR)
				continue;
			err = -errno;
			goto fail;
		}
		for (i = 0; i < ns; i++) {
			struct tstream *s = &st[i];

			if (pf[i].revents & (POLLIN | POLLHUP | POLLERR)) {
				ssize_t r = recv(s->fd, (uint8_t *)&s->res + s->res_got,
						 sizeof(s->res) - s->res_got, MSG_DONTWAIT);

				if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR)) {
					int status = tx_any_answer(st, ns);

					err = r == 0 ? -EPIPE : -errno;
					if (status) {
						err = status;
						peer_why(why, sizeof(why), t->peer, err);
						goto fail;
					}
					snprintf(why, sizeof(why), "peer %s closed stream %u "
						 "mid-transfer (%s)", t->peer, i,
						 strerror(-err));
					goto fail;
				}
				if (r > 0)
					s->res_got += r;
				if (s->res_got == sizeof(s->res)) {
					int32_t status = (int32_t)le32toh(s->res.status);

					if (le32toh(s->res.magic) != KVX_MAGIC_RES) {
						err = -EPROTO;
						snprintf(why, sizeof(why), "bad answer from %s",
							 t->peer);
						goto fail;
					}
					if (status) {
						err = status < 0 ? status : -EPROTO;
						peer_why(why, sizeof(why), t->peer, err);
						goto fail;
					}
					if (!s->end_sent) {
						err = -EPROTO;
						snprintf(why, sizeof(why), "early answer from %s",
							 t->peer);
						goto fail;
					}
					s->have_res = true;
					done_streams++;
					continue;
				}
			}
			if (!(pf[i].revents & POLLOUT) || s->end_sent)
				continue;
			/* keep the socket full: slice after slice until EAGAIN */
			for (;;) {
				if (s->ended) {
					ssize_t r = send(s->fd, (uint8_t *)&s->end + s->sent,
							 sizeof(s->end) - s->sent,
							 MSG_NOSIGNAL | MSG_DONTWAIT);

					if (r < 0)
						break;
					s->sent += r;
					if (s->sent == sizeof(s->end))
						s->end_sent = true;
					break;
				}
				if (s->len == 0 || s->sent == s->len) {
					free(s->corrupt);
					s->corrupt = NULL;
					if (s->len && x->o.fault == KVX_FAULT_TRUNCATE &&
					    s->len < s->hlen + le64toh(s->hdr.h.len)) {
						err = -ECONNABORTED;
						snprintf(why, sizeof(why), "injected fault: stream "
							 "%u truncated", i);
						goto fail;
					}
					if (!take_slice(t, s, src, sl, nsl, &next)) {
						s->ended = true;
						s->end = (struct w_end){ htole32(KVX_MAGIC_END),
									 htole32(s->count) };
						s->sent = 0;
						continue;
					}
				}
				{
					struct iovec iov[2];
					int nio = 0;
					struct msghdr mh = { 0 };
					ssize_t r;

					if (s->sent < s->hlen) {
						iov[nio].iov_base = (uint8_t *)&s->hdr + s->sent;
						iov[nio++].iov_len = s->hlen - s->sent;
						iov[nio].iov_base = (void *)s->payload;
						iov[nio++].iov_len = s->len - s->hlen;
					} else {
						uint64_t po = s->sent - s->hlen;

						iov[nio].iov_base = (void *)(s->payload + po);
						iov[nio++].iov_len = s->len - s->sent;
					}
					mh.msg_iov = iov;
					mh.msg_iovlen = nio;
					r = sendmsg(s->fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
					if (r < 0) {
						int status;

						if (errno == EAGAIN || errno == EINTR)
							break;
						err = -errno;
						/*
						 * A receiver that refused the transfer answers
						 * and closes with our slices unread, which
						 * resets the connection: its answer is still
						 * queued here, and says why.
						 */
						status = tx_any_answer(st, ns);
						if (status) {
							err = status;
							peer_why(why, sizeof(why), t->peer, err);
							goto fail;
						}
						snprintf(why, sizeof(why), "send to %s: %s "
							 "(peer gone mid-transfer)", t->peer,
							 strerror(-err));
						goto fail;
					}
					s->sent += r;
					if (s->sent < s->len)
						break;
				}
			}
		}
	}
	t->res.bytes = total;
	t->res.secs = kvx_since(&t0);
	for (i = 0; i < ns; i++) {
		close(st[i].fd);
		kvx_mac_close(st[i].mh);
	}
	free(sl);
	tx_finish(t, 0, "%s%llu bytes in %u slices over %u tcp streams to %s, verified",
		  fallback, (unsigned long long)total, nsl, ns, t->peer);
	return NULL;
fail:
	for (i = 0; i < KVX_MAX_STREAMS; i++) {
		if (st[i].fd >= 0)
			close(st[i].fd);
		kvx_mac_close(st[i].mh);
		free(st[i].corrupt);
	}
	free(sl);
	t->res.secs = kvx_since(&t0);
	tx_finish(t, err ? err : -EIO, "transfer failed: %s", why[0] ? why : strerror(-err));
	return NULL;
}

int kvx_submit(struct kvx *x, const char *peer, uint32_t src_arena, uint32_t dst_arena,
	       const struct kvx_desc *d, uint32_t n, uint64_t *id)
{
	struct tx *t;
	uint64_t r;

	if (!n || !d || strlen(peer) >= sizeof(t->peer))
		return -EINVAL;
	t = calloc(1, sizeof(*t));
	if (!t)
		return -ENOMEM;
	t->d = malloc(n * sizeof(*d));
	if (!t->d) {
		free(t);
		return -ENOMEM;
	}
	memcpy(t->d, d, n * sizeof(*d));
	t->n = n;
	t->x = x;
	snprintf(t->peer, sizeof(t->peer), "%s", peer);
	t->src_arena = src_arena;
	t->dst_arena = dst_arena;
	t->res.state = KVX_PENDING;
	pthread_mutex_lock(&x->mu);
	/* transfer ids are unique across agents: random high bits + counter */
	if (getentropy(&r, sizeof(r)))
		r = (uint64_t)time(NULL) * KVX_P1;
	t->id = (r & ~0xffffffULL) | (x->next_id++ & 0xffffff);
	t->next = x->txs;
	x->txs = t;
	if (pthread_create(&t->thr, NULL, tx_run, t)) {
		x->txs = t->next;
		pthread_mutex_unlock(&x->mu);
		free(t->d);
		free(t);
		return -EAGAIN;
	}
	*id = t->id;
	pthread_mutex_unlock(&x->mu);
	return 0;
}

static struct tx *tx_find_locked(struct kvx *x, uint64_t id)
{
	for (struct tx *t = x->txs; t; t = t->next)
		if (t->id == id)
			return t;
	return NULL;
}

int kvx_status(struct kvx *x, uint64_t id, struct kvx_result *r)
{
	struct tx *t;

	pthread_mutex_lock(&x->mu);
	t = tx_find_locked(x, id);
	if (t)
		*r = t->res;
	pthread_mutex_unlock(&x->mu);
	return t ? 0 : -ENOENT;
}

static void tx_reap_locked(struct kvx *x, struct tx *t)
{
	struct tx **pp;

	for (pp = &x->txs; *pp; pp = &(*pp)->next)
		if (*pp == t) {
			*pp = t->next;
			break;
		}
}

int kvx_wait(struct kvx *x, uint64_t id, uint32_t timeout_ms, struct kvx_result *r)
{
	struct timespec dl;
	struct tx *t;

	clock_gettime(CLOCK_REALTIME, &dl);
	dl.tv_sec += timeout_ms / 1000;
	dl.tv_nsec += (long)(timeout_ms % 1000) * 1000000;
	if (dl.tv_nsec >= 1000000000) {
		dl.tv_sec++;
		dl.tv_nsec -= 1000000000;
	}
	pthread_mutex_lock(&x->mu);
	t = tx_find_locked(x, id);
	if (!t) {
		pthread_mutex_unlock(&x->mu);
		return -ENOENT;
	}
	while (t->res.state == KVX_PENDING) {
		if (!timeout_ms) {
			pthread_cond_wait(&x->cv, &x->mu);
		} else if (pthread_cond_timedwait(&x->cv, &x->mu, &dl) == ETIMEDOUT) {
			*r = t->res;
			pthread_mutex_unlock(&x->mu);
			return -ETIMEDOUT;
		}
	}
	*r = t->res;
	tx_reap_locked(x, t);
	pthread_mutex_unlock(&x->mu);
	pthread_join(t->thr, NULL);
	free(t->d);
	free(t);
	return 0;
}

void kvx_get_stats(struct kvx *x, struct kvx_stats *s)
{
	pthread_mutex_lock(&x->mu);
	*s = x->st;
	pthread_mutex_unlock(&x->mu);
}

void kvx_destroy(struct kvx *x)
{
	if (!x)
		return;
	pthread_mutex_lock(&x->mu);
	x->stop = true;
	pthread_cond_broadcast(&x->cv);
	pthread_mutex_unlock(&x->mu);
	if (x->listening) {
		pthread_join(x->lthr, NULL);
		close(x->lfd);
	}
	if (x->rdma)
		kvr_stop(x);		/* its listener; connections see x->stop */
	/* transfers still running finish on their own (timeouts) */
	for (;;) {
		struct tx *t;

		pthread_mutex_lock(&x->mu);
		t = x->txs;
		if (t)
			x->txs = t->next;
		pthread_mutex_unlock(&x->mu);
		if (!t)
			break;
		pthread_join(t->thr, NULL);
		free(t->d);
		free(t);
	}
	pthread_mutex_lock(&x->mu);
	while (x->rx_threads) {
		pthread_cond_broadcast(&x->cv);
		pthread_mutex_unlock(&x->mu);
		usleep(10000);
		pthread_mutex_lock(&x->mu);
	}
	pthread_mutex_unlock(&x->mu);
	if (x->rdma)
		kvr_close(x);
	free(x->spare);
	pthread_mutex_destroy(&x->mu);
	pthread_cond_destroy(&x->cv);
	free(x);
}
