// SPDX-License-Identifier: GPL-2.0
/*
 * fuzz_agent_kvx.c - libFuzzer harness for the receiving end of the KV
 * transfer protocol (agent/kvxfer.c rx_stream(): challenge, hello, auth,
 * slice frames, END, result). kvxfer.c is included so that the static
 * receive path is reachable; each input is one TCP-like stream over a
 * socketpair, served by rx_stream() in its own thread as the listener
 * would, with the harness playing the peer:
 *
 *   byte 0      bit 0: sign the hello (a valid MAC over the receiver's
 *               fresh nonce, as a peer with the key would send)
 *   then        bit 0 set: a 40-byte hello, then the rest of the stream
 *               (slice headers, payloads, END) as given;
 *               bit 0 clear: the whole stream after the challenge as given
 *
 * IDN_FUZZ_KV=auth: the receiver has a key (unsigned hellos are refused,
 * signed ones reach staging); otherwise (open) it takes any peer, like an
 * agent started with --kv-insecure. The receiver has one 64 KiB arena
 * (id 0) and a commit callback that reads every committed slice (ASan
 * sees a slice outside its stage); transfers are bounded to 1 MiB.
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "../../agent/kvxfer.c"

#define FZ_ARENA	(64U << 10)

/* config.c's parser: only kvx_listen()/kvx_submit() resolve addresses */
int agent_parse_hostport(const char *s, struct sockaddr_storage *ss, socklen_t *len)
{
	return -EINVAL;
}

static struct kvx *X;
static uint8_t *arena;
static const uint8_t fz_key[32] = "idn fuzz kv key, 32 bytes long!";
static volatile uint64_t sink;

/* every committed slice is read whole: out-of-stage bounds trip ASan */
static int fz_commit(void *arg, uint32_t dst_arena, const uint8_t *stage,
		     const struct kvx_slice *s, uint32_t n)
{
	uint64_t h = 0;

	for (uint32_t i = 0; i < n; i++)
		h ^= kvx_hash64(stage + s[i].stage_off, s[i].len, s[i].tag);
	sink = h;
	return 0;
}

static void fz_setup(void)
{
	struct kvx_opts o;
	const char *mode = getenv("IDN_FUZZ_KV");
	char err[256];
	uint32_t id;

	kvx_opts_defaults(&o);
	o.policy = KVX_POLICY_TCP;
	o.max_rx = 1U << 20;
	o.timeout_ms = 20;		/* the data is all there: waits are for orphans */
	o.hello_ms = 2000;
	if (mode && !strcmp(mode, "auth")) {
		o.auth = true;
		memcpy(o.key, fz_key, sizeof(o.key));
	}
	if (kvx_create(&X, &o, err, sizeof(err)))
		abort();
	arena = calloc(1, FZ_ARENA);
	if (!arena || kvx_register(X, arena, FZ_ARENA, &id) || id != 0)
		abort();
	X->commit = fz_commit;
}

static void *fz_rx(void *arg)
{
	return rx_stream(arg);
}

static int fz_read(int fd, void *buf, size_t len)
{
	size_t got = 0;

	while (got < len) {
		ssize_t n = read(fd, (uint8_t *)buf + got, len - got);

		if (n <= 0)
			return -1;
		got += n;
	}
	return 0;
}

static void fz_write(int fd, const void *buf, size_t len)
{
	while (len) {
		ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);

		if (n <= 0)
			return;		/* the receiver closed: the rest is not read */
		buf = (const uint8_t *)buf + n;
		len -= n;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct rx_conn *c;
	struct w_chal ch;
	pthread_t th;
	uint8_t drain[256];
	int sv[2];

	if (!X)
		fz_setup();
	if (!size)
		return 0;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv))
		abort();
	c = malloc(sizeof(*c));
	if (!c)
		abort();
	c->x = X;
	c->fd = sv[0];
	pthread_mutex_lock(&X->mu);	/* as kvx_spawn_rx() counts it */
	X->rx_threads++;
	pthread_mutex_unlock(&X->mu);
	if (pthread_create(&th, NULL, fz_rx, c))
		abort();
	if (!fz_read(sv[1], &ch, sizeof(ch))) {
		if ((data[0] & 1) && size >= 1 + sizeof(struct w_hello)) {
			struct w_hello hw;
			struct w_auth au = { .magic = htole32(KVX_MAGIC_AUTH) };

			memcpy(&hw, data + 1, sizeof(hw));
			memcpy(au.nonce, "fuzz peer nonce!", sizeof(au.nonce));
			auth_mac(au.mac, fz_key, 's', ch.nonce, au.nonce, &hw);
			fz_write(sv[1], &hw, sizeof(hw));
			fz_write(sv[1], &au, sizeof(au));
			fz_write(sv[1], data + 1 + sizeof(hw), size - 1 - sizeof(hw));
		} else {
			fz_write(sv[1], data + 1, size - 1);
		}
	}
	shutdown(sv[1], SHUT_WR);
	while (read(sv[1], drain, sizeof(drain)) > 0)
		;
	pthread_join(th, NULL);
	close(sv[1]);
	return 0;
}
