// SPDX-License-Identifier: GPL-2.0
/*
 * telemetry.c - the agent's telemetry datagrams (struct idn_telemetry,
 * big-endian) to a router's telemetry port: the dataplane's fast loop.
 *
 * The router accepts a datagram only from the node's own locator of the
 * datagram's family, only with a valid MAC under the node's telemetry key
 * (SipHash-2-4 of the first 32 bytes, libsodium's crypto_shorthash here,
 * bpf/lib/tele.h's own in the router) and only with a sequence newer than
 * the last one accepted under that key (serial-number order). So the
 * socket is bound to the locator, and the sequence starts from the wall
 * clock in milliseconds: an agent that restarts with the same key (--tele-key)
 * continues above what it sent before instead of being taken for a replay;
 * a key from idnd is new at every registration, a fresh window
 * (docs/security.md, "Telemetry authentication"). Without a key the
 * datagrams go out unauthenticated (key_id 0, MAC zero): a router drops
 * them as tele-nokey or tele-mac.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <linux/idn.h>
#include <sodium.h>

#include "agent.h"

IDN_ASSERT_ABI();

uint32_t tele_seq_start(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint32_t)((uint64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000);
}

/* one destination "ADDR:PORT": a socket bound to the node's locator */
static int open_one(struct tele_dst *d, const char *dst, const char *src4, const char *src6)
{
	struct sockaddr_storage src = { 0 };
	socklen_t slen = 0;
	int err;

	d->fd = -1;
	err = agent_parse_hostport(dst, &d->dst, &d->dlen);
	if (err)
		return err;
	d->fd = socket(d->dst.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (d->fd < 0)
		return -errno;
	if (d->dst.ss_family == AF_INET && src4 && *src4) {
		struct sockaddr_in *s = (void *)&src;

		s->sin_family = AF_INET;
		if (inet_pton(AF_INET, src4, &s->sin_addr) != 1)
			goto inval;
		slen = sizeof(*s);
	} else if (d->dst.ss_family == AF_INET6 && src6 && *src6) {
		struct sockaddr_in6 *s = (void *)&src;

		s->sin6_family = AF_INET6;
		if (inet_pton(AF_INET6, src6, &s->sin6_addr) != 1)
			goto inval;
		slen = sizeof(*s);
	}
	if (slen && bind(d->fd, (struct sockaddr *)&src, slen)) {
		err = -errno;
		close(d->fd);
		d->fd = -1;
		return err;
	}
	return 0;
inval:
	close(d->fd);
	d->fd = -1;
	return -EINVAL;
}

/*
 * dst: "ADDR:PORT", or a comma-separated list of up to TELE_MAX_ROUTERS
 * (a router per region: each gets every datagram, the same sequence)
 */
int tele_open(struct telemetry *t, const char *dst, uint32_t node, const char *src4,
	      const char *src6)
{
	struct tele_dst d[TELE_MAX_ROUTERS];
	char buf[256], *p, *save = NULL;
	int n = 0, err = 0;

	memset(t, 0, sizeof(*t));
	t->fd = -1;
	if (strlen(dst) >= sizeof(buf))
		return -ENAMETOOLONG;
	snprintf(buf, sizeof(buf), "%s", dst);
	for (p = strtok_r(buf, ",", &save); p && !err; p = strtok_r(NULL, ",", &save)) {
		if (n == TELE_MAX_ROUTERS) {
			err = -E2BIG;
			break;
		}
		err = open_one(&d[n], p, src4, src6);
		if (!err)
			n++;
	}
	if (!err && !n)
		err = -EINVAL;
	if (err) {
		while (n--)
			close(d[n].fd);
		return err;
	}
	t->fd = d[0].fd;
	t->dst = d[0].dst;
	t->dlen = d[0].dlen;
	t->n_more = n - 1;
	for (int i = 1; i < n; i++)
		t->more[i - 1] = d[i];
	t->node = node;
	t->seq = tele_seq_start();
	return 0;
}

/*
 * The requests admitted since the previous datagram and their tokens, over
 * the milliseconds since it (version 3; none is news too: a router learns
 * its requests are still on their way): each router subtracts its own
 * share and counts the rest as the other routers' rate. The first
 * datagram, a clock that went back, or a gap over 65.5 s say nothing
 * (span 0); the counts saturate at their fields.
 */
static void tele_admitted(struct telemetry *t, const struct eng_load *l, uint64_t now_ms,
			  struct idn_telemetry *m)
{
	uint64_t reqs = l->admit_reqs - t->last_reqs, tok = l->admit_tokens - t->last_tokens;
	uint64_t span = now_ms - t->last_ms;

	if (t->have_last && now_ms > t->last_ms && span <= UINT16_MAX &&
	    l->admit_reqs >= t->last_reqs && l->admit_tokens >= t->last_tokens) {
		m->admit_reqs = htons(reqs > UINT16_MAX ? UINT16_MAX : reqs);
		m->admit_tokens = htonl(tok > UINT32_MAX ? UINT32_MAX : tok);
		m->span_ms = htons(span);
	}
	if (!t->have_last || now_ms > t->last_ms) {
		t->last_reqs = l->admit_reqs;
		t->last_tokens = l->admit_tokens;
		t->last_ms = now_ms;
		t->have_last = true;
	}
}

void tele_build(struct telemetry *t, const struct eng_load *l, uint8_t health, uint64_t now_ms,
		void *buf)
{
	struct idn_telemetry *m = buf;

	memset(m, 0, sizeof(*m));
	m->magic = htonl(IDN_TELE_MAGIC);
	m->version = IDN_TELE_VERSION;
	m->health = health;
	m->node = htonl(t->node);
	m->seq = htonl(++t->seq);
	m->queue_depth = htonl(l->queue_depth);
	/* the engine's expected time to clear its prefill, where it knows it */
	m->pending_tokens = htonl(l->work_tokens ? l->work_tokens : l->pending_tokens);
	m->load = htons(l->load > 1000 ? 1000 : l->load);
	m->kv_use = htons(l->kv_use > 1000 ? 1000 : l->kv_use);
	tele_admitted(t, l, now_ms, m);
	if (t->keyed) {
		m->key_id = htonl(t->key_id);
		/* 8 bytes, little-endian: the router compares them as such */
		crypto_shorthash_siphash24(m->mac, buf, IDN_TELE_MAC_OFF, t->key);
	}
}

void tele_set_key(struct telemetry *t, const uint8_t key[16], uint32_t key_id)
{
	memcpy(t->key, key, sizeof(t->key));
	t->key_id = key_id;
	t->keyed = true;
}

int tele_key_load(const char *path, uint8_t key[16], uint32_t *key_id)
{
	char buf[128], hex[64];
	unsigned long id;
	struct stat st;
	ssize_t n;
	size_t bl;
	int fd, rc = 0;

	fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) || !S_ISREG(st.st_mode))
		rc = -EINVAL;
	else if (st.st_mode & 077)
		rc = -EPERM;
	n = rc ? 0 : read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (rc)
		return rc;
	if (n <= 0)
		return -EINVAL;
	buf[n] = 0;
	if (sscanf(buf, "%lu %63s", &id, hex) != 2 || id > UINT32_MAX ||
	    sodium_hex2bin(key, 16, hex, strlen(hex), NULL, &bl, NULL) || bl != 16 ||
	    strlen(hex) != 32)
		return -EINVAL;
	*key_id = id;
	return 0;
}

int tele_send(struct telemetry *t, const struct eng_load *l, uint8_t health, uint64_t now_ms)
{
	struct idn_telemetry m;

	if (t->fd < 0)
		return -EBADF;
	tele_build(t, l, health, now_ms, &m);
	for (int i = 0; i < t->n_more; i++) {
		if (sendto(t->more[i].fd, &m, sizeof(m), 0, (struct sockaddr *)&t->more[i].dst,
			   t->more[i].dlen) != (ssize_t)sizeof(m))
			t->errors++;
	}
	if (sendto(t->fd, &m, sizeof(m), 0, (struct sockaddr *)&t->dst, t->dlen) !=
	    (ssize_t)sizeof(m)) {
		t->errors++;
		return -errno;
	}
	t->sent++;
	return 0;
}

void tele_close(struct telemetry *t)
{
	if (t->fd >= 0)
		close(t->fd);
	t->fd = -1;
	for (int i = 0; i < t->n_more; i++)
		close(t->more[i].fd);
	t->n_more = 0;
}
