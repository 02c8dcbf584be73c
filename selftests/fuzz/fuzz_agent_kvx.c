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
 *               fresh nonce, as a peer with the key would send);
 *               bit 1: give every whole slice frame its right payload hash
 *               (else the 64-bit hash stops nearly every mutation at the
 *               integrity check, before what the receiver does with it)
 *   then        bit 0 set: a 40-byte hello, then the rest of the stream
 *               (slice headers, payloads, END) as given;
 *               bit 0 clear: the whole stream after the challenge as given
 *               (a hello and an auth frame first, when well formed)
 *
 * IDN_FUZZ_KV=auth: the receiver has a key (unsigned hellos are refused,
 * signed ones reach staging); otherwise (open) it takes any peer, like an
 * agent started with --kv-insecure. The receiver has one 64 KiB arena
 * (id 0) and a commit callback that reads every committed slice (ASan
 * sees a slice outside its stage); transfers are bounded to 1 MiB.
 * IDN_FUZZ_KV=agent: no key, and the agent's own sink and commit callback
 * (http.c agent_kv_sink: blocks of an emulated engine's cache, 64-byte
 * blocks, reserved at the hello, written in place, indexed at commit
 * under its lock) as idn-agent runs it.
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "../../agent/kvxfer.c"

#define FZ_ARENA	(64U << 10)

static struct kvx *X;
static struct agent A;		/* IDN_FUZZ_KV=agent: its engine takes the blocks */
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
	if (mode && !strcmp(mode, "agent")) {
		agent_cfg_defaults(&A.cfg);
		A.cfg.engine = true;
		A.cfg.eng.speed = 1e6;
		A.cfg.eng.block_tokens = 16;
		A.cfg.eng.capacity_tokens = 4096;	/* 256 blocks */
		A.cfg.eng.kv_bytes_per_token = 4;	/* 64-byte blocks */
		if (engine_init(&A.eng, &A.cfg.eng))
			abort();
		X->commit = agent_kv_commit;
		X->commit_arg = &A;
		X->sink = agent_kv_sink;	/* as idn-agent: placed into cache blocks */
		X->sink_arg = &A;
	}
}

/*
 * Walk the frames after hello + auth (at @off of @buf) and set each whole
 * slice's hash as a sender would (kvx_slice_seed() of its header).
 */
static void fz_fix_hashes(uint8_t *buf, size_t n, size_t off)
{
	struct w_hello h;

	if (n < sizeof(h))
		return;
	memcpy(&h, buf, sizeof(h));
	while (off + sizeof(struct w_slice) <= n) {
		struct w_slice s;
		uint64_t len, seed;

		memcpy(&s, buf + off, sizeof(s));
		if (le32toh(s.magic) != KVX_MAGIC_SLICE)
			return;
		len = le64toh(s.len);
		if (len > n - off - sizeof(s))
			return;
		seed = kvx_slice_seed(le64toh(h.xfer), le32toh(s.seq), le64toh(s.stage_off),
				      le64toh(s.dst_off), len, le64toh(s.tag));
		s.hash = htole64(kvx_hash64(buf + off + sizeof(s), len, seed));
		memcpy(buf + off, &s, sizeof(s));
		off += sizeof(s) + len;
	}
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
		/* the stream as sent: hello, auth, frames */
		size_t hl = sizeof(struct w_hello), al = sizeof(struct w_auth), n = size - 1;
		bool sign = (data[0] & 1) && n >= hl;
		uint8_t *buf = malloc(n + al);

		if (!buf)
			abort();
		if (sign) {
			struct w_hello hw;
			struct w_auth au = { .magic = htole32(KVX_MAGIC_AUTH) };

			memcpy(&hw, data + 1, hl);
			memcpy(au.nonce, "fuzz peer nonce!", sizeof(au.nonce));
			auth_mac(au.mac, fz_key, 's', ch.nonce, au.nonce, &hw);
			memcpy(buf, &hw, hl);
			memcpy(buf + hl, &au, al);
			memcpy(buf + hl + al, data + 1 + hl, n - hl);
			n += al;
		} else {
			memcpy(buf, data + 1, n);
		}
		if (data[0] & 2)
			fz_fix_hashes(buf, n, hl + al);
		fz_write(sv[1], buf, n);
		free(buf);
	}
	shutdown(sv[1], SHUT_WR);
	while (read(sv[1], drain, sizeof(drain)) > 0)
		;
	pthread_join(th, NULL);
	close(sv[1]);
	return 0;
}
