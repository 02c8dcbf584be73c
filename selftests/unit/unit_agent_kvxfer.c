// SPDX-License-Identifier: GPL-2.0
/*
 * unit_agent_kvxfer.c - the KV transfer engine (agent/kvxfer.c) on
 * loopback: transport policy, integrity, scattered descriptors over
 * several streams, batch submit, and the failures that must leave the
 * destination untouched: corrupted slice, truncated stream, sender killed
 * mid-transfer, receiver killed mid-transfer, commit rejected; the
 * shared-key authentication of KV peers (right key passes; wrong key, no
 * key, a tampered or replayed handshake are refused before staging);
 * direct placement (kvx_set_sink): bytes read straight into the sink's
 * memory, nothing published by a failed transfer, registered arenas and
 * declined transfers staged; the agent's sink: blocks reserved at the
 * start, indexed at commit, released on failure, hits kept.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sodium.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include "agent.h"
#include "kvxfer.h"
#include "kvx_priv.h"
#include "tap.h"

#define ARENA (16U << 20)
#define BLK (256U << 10)

static uint8_t *src, *dst, *snap;

static void fill_rand(uint8_t *p, size_t n, uint64_t seed)
{
	for (size_t i = 0; i < n; i += 8) {
		seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
		memcpy(p + i, &seed, n - i < 8 ? n - i : 8);
	}
}

static struct kvx *mk(enum kvx_fault f, uint32_t fslice, uint32_t fms)
{
	struct kvx_opts o;
	struct kvx *x = NULL;
	char err[128];

	kvx_opts_defaults(&o);
	o.streams = 4;
	o.slice = 64U << 10;
	o.timeout_ms = 3000;
	o.fault = f;
	o.fault_slice = fslice;
	o.fault_ms = fms;
	if (kvx_create(&x, &o, err, sizeof(err)))
		return NULL;
	return x;
}

/* NBLK blocks, destination order reversed: every slice lands elsewhere */
#define NBLK (ARENA / BLK)
static void descs(struct kvx_desc *d)
{
	for (uint32_t i = 0; i < NBLK; i++)
		d[i] = (struct kvx_desc){ .src_off = (uint64_t)i * BLK,
					  .dst_off = (uint64_t)(NBLK - 1 - i) * BLK,
					  .len = BLK, .tag = i };
}

static bool moved_ok(void)
{
	for (uint32_t i = 0; i < NBLK; i++)
		if (memcmp(src + (size_t)i * BLK, dst + (size_t)(NBLK - 1 - i) * BLK, BLK))
			return false;
	return true;
}

static int commits;
static int commit_cb(void *arg, uint32_t dst_arena, const uint8_t *stage,
		     const struct kvx_slice *s, uint32_t n)
{
	int *want = arg;

	commits++;
	return want ? *want : 0;
}

static void test_policy(void)
{
	struct kvx_opts o;
	struct kvx *x = NULL;
	enum kvx_policy p;
	char err[160] = "";

	kvx_opts_defaults(&o);
	ASSERT_EQ(kvx_policy_parse("rdma", &p), 0, "parse rdma");
	ASSERT_EQ(kvx_policy_parse("ib", &p), -EINVAL, "parse junk");
	char why[160] = "";
	int nd = kvx_rdma_probe(why, sizeof(why));

	/* the host of the tests has no RDMA device (the QEMU tier has rxe) */
	printf("# rdma probe: %d (%s)\n", nd, why);
	o.policy = KVX_POLICY_RDMA;
	if (nd > 0) {
		ASSERT_EQ(kvx_create(&x, &o, err, sizeof(err)), 0, "rdma with a device");
		ASSERT_TRUE(x && !strcmp(kvx_transport(x), "rdma"), "rdma transport");
		kvx_destroy(x);
	} else {
		int rc = kvx_create(&x, &o, err, sizeof(err));

		ASSERT_EQ(rc, nd ? -EPROTONOSUPPORT : -ENODEV, "rdma refused");
		ASSERT_TRUE(strstr(err, "policy rdma") &&
			    (strstr(err, "no RDMA device") || strstr(err, "without RDMA")),
			    "rdma message says why");
		printf("# %s\n", err);
	}
	o.policy = KVX_POLICY_AUTO;
	if (!ASSERT_EQ(kvx_create(&x, &o, err, sizeof(err)), 0, "auto"))
		return;
	ASSERT_TRUE(!strcmp(kvx_transport(x), nd > 0 ? "rdma" : "tcp"), "auto picks");
	ASSERT_TRUE(strstr(kvx_choice(x), "auto") &&
		    strstr(kvx_choice(x), nd > 0 ? "rdma" : "tcp (") &&
		    (nd > 0 || strstr(kvx_choice(x), why)), "auto says which and why");
	printf("# choice: %s\n", kvx_choice(x));
	kvx_destroy(x);
}

static void test_hash(void)
{
	uint8_t b[1000];

	fill_rand(b, sizeof(b), 7);
	uint64_t h = kvx_hash64(b, sizeof(b), 1);

	ASSERT_EQ(kvx_hash64(b, sizeof(b), 1), h, "deterministic");
	ASSERT_NEQ(kvx_hash64(b, sizeof(b), 2), h, "seeded");
	b[999] ^= 1;
	ASSERT_NEQ(kvx_hash64(b, sizeof(b), 1), h, "last bit");
	b[999] ^= 1;
	b[0] ^= 0x80;
	ASSERT_NEQ(kvx_hash64(b, sizeof(b), 1), h, "first bit");
}

/* a receiver with dst registered; returns its port */
static struct kvx *receiver(uint32_t *dst_id, int *want)
{
	struct kvx *r = mk(KVX_FAULT_NONE, 0, 0);

	if (!r)
		return NULL;
	if (kvx_register(r, dst, ARENA, dst_id) ||
	    kvx_listen(r, "127.0.0.1:0", commit_cb, want)) {
		kvx_destroy(r);
		return NULL;
	}
	return r;
}

static int xfer(struct kvx *s, int port, uint32_t dst_id, struct kvx_result *res)
{
	static struct kvx_desc d[NBLK];
	uint32_t sid;
	uint64_t id;
	char peer[64];
	int rc;

	descs(d);
	snprintf(peer, sizeof(peer), "127.0.0.1:%d", port);
	rc = kvx_register(s, src, ARENA, &sid);
	if (!rc)
		rc = kvx_submit(s, peer, sid, dst_id, d, NBLK, &id);
	if (!rc)
		rc = kvx_wait(s, id, 20000, res);
	return rc;
}

static void test_loopback(void)
{
	struct kvx *r, *s;
	struct kvx_result res;
	struct kvx_stats st;
	uint32_t did;

	memset(dst, 0, ARENA);
	commits = 0;
	r = receiver(&did, NULL);
	s = mk(KVX_FAULT_NONE, 0, 0);
	if (!ASSERT_TRUE(r && s, "setup"))
		goto out;
	if (!ASSERT_EQ(xfer(s, kvx_port(r), did, &res), 0, "submit/wait"))
		goto out;
	ASSERT_EQ(res.state, KVX_DONE, res.msg);
	ASSERT_EQ(res.bytes, ARENA, "bytes");
	ASSERT_EQ(res.slices, ARENA / (64U << 10), "slices");
	ASSERT_TRUE(moved_ok(), "scattered blocks landed at their dst offsets");
	ASSERT_EQ(commits, 1, "one commit notification");
	kvx_get_stats(r, &st);
	ASSERT_EQ(st.rx_ok, 1, "rx ok");
	ASSERT_EQ(st.rx_failed, 0, "rx failed");
	/* policy auto: tcp without an RDMA device, said per transfer */
	ASSERT_TRUE(!strcmp(res.transport, "tcp") ||
		    (!strcmp(res.transport, "rdma") && !strcmp(kvx_transport(s), "rdma")),
		    "result names its transport");
	printf("# %s: %s; %.1f MiB/s\n", res.transport, res.msg,
	       res.bytes / res.secs / (1 << 20));
out:
	kvx_destroy(s);
	kvx_destroy(r);
}

static void test_batch_async(void)
{
	struct kvx *r, *s;
	struct kvx_desc d[8];
	uint64_t id[8];
	uint32_t did, sid;
	char peer[64];
	int ok = 0;

	memset(dst, 0, ARENA);
	r = receiver(&did, NULL);
	s = mk(KVX_FAULT_NONE, 0, 0);
	if (!ASSERT_TRUE(r && s, "setup") || !ASSERT_EQ(kvx_register(s, src, ARENA, &sid), 0,
							"register"))
		goto out;
	snprintf(peer, sizeof(peer), "127.0.0.1:%d", kvx_port(r));
	for (int i = 0; i < 8; i++) {
		d[i] = (struct kvx_desc){ (uint64_t)i * 4096 * 3, (uint64_t)i << 20, 12345 + i, i };
		if (!ASSERT_EQ(kvx_submit(s, peer, sid, did, &d[i], 1, &id[i]), 0, "submit"))
			goto out;
	}
	for (int i = 0; i < 8; i++) {
		struct kvx_result res;

		ASSERT_EQ(kvx_status(s, id[i], &res), 0, "status known");
		if (kvx_wait(s, id[i], 10000, &res) == 0 && res.state == KVX_DONE)
			ok++;
		ASSERT_EQ(kvx_status(s, id[i], &res), -ENOENT, "forgotten after wait");
	}
	ASSERT_EQ(ok, 8, "8 concurrent transfers done");
	for (int i = 0; i < 8; i++)
		ASSERT_TRUE(!memcmp(dst + d[i].dst_off, src + d[i].src_off, d[i].len), "bytes");
out:
	kvx_destroy(s);
	kvx_destroy(r);
}

/* a failing transfer: sender reports, receiver reports, dst unchanged */
static void fault_case(enum kvx_fault f, int want_err, const char *rx_words,
		       const char *rx_words2)
{
	struct kvx *r, *s;
	struct kvx_result res;
	struct kvx_stats st;
	uint32_t did;

	fill_rand(dst, ARENA, 99);
	memcpy(snap, dst, ARENA);
	commits = 0;
	r = receiver(&did, NULL);
	s = mk(f, 37, 0);
	if (!ASSERT_TRUE(r && s, "setup"))
		goto out;
	if (!ASSERT_EQ(xfer(s, kvx_port(r), did, &res), 0, "submit/wait"))
		goto out;
	ASSERT_EQ(res.state, KVX_FAILED, "reported failed");
	if (want_err)
		ASSERT_EQ(res.err, want_err, res.msg);
	/* the receiver's reason reaches the sender, not "peer gone mid-transfer" */
	if (want_err == -EBADMSG)
		ASSERT_TRUE(strstr(res.msg, "checksum mismatch") != NULL, res.msg);
	printf("# sender: %s\n", res.msg);
	for (int i = 0; i < 300; i++) {
		kvx_get_stats(r, &st);
		if (st.rx_failed)
			break;
		usleep(10000);
	}
	ASSERT_EQ(st.rx_failed, 1, "receiver saw the failure");
	ASSERT_EQ(st.rx_ok, 0, "nothing committed");
	ASSERT_TRUE(strstr(st.rx_last_err, rx_words) || strstr(st.rx_last_err, rx_words2),
		    st.rx_last_err);
	printf("# receiver: %s\n", st.rx_last_err);
	ASSERT_EQ(commits, 0, "no commit");
	ASSERT_TRUE(!memcmp(dst, snap, ARENA), "destination unchanged");
out:
	kvx_destroy(s);
	kvx_destroy(r);
}

static void test_corrupt_slice(void)
{
	fault_case(KVX_FAULT_CORRUPT, -EBADMSG, "checksum mismatch", "checksum mismatch");
}

static void test_truncated_stream(void)
{
	/* whichever stream sees the close first reports it */
	fault_case(KVX_FAULT_TRUNCATE, 0, "truncated", "closed mid-transfer");
}

static void test_commit_rejected(void)
{
	struct kvx *r, *s;
	struct kvx_result res;
	int want = -ENOSPC;
	uint32_t did;

	commits = 0;
	r = mk(KVX_FAULT_NONE, 0, 0);
	s = mk(KVX_FAULT_NONE, 0, 0);
	if (!ASSERT_TRUE(r && s, "setup") ||
	    !ASSERT_EQ(kvx_listen(r, "127.0.0.1:0", commit_cb, &want), 0, "listen"))
		goto out;
	did = KVX_ARENA_NONE;
	if (!ASSERT_EQ(xfer(s, kvx_port(r), did, &res), 0, "submit/wait"))
		goto out;
	ASSERT_EQ(res.state, KVX_FAILED, "failed");
	ASSERT_EQ(res.err, -ENOSPC, res.msg);
	ASSERT_TRUE(strstr(res.msg, "rejected") != NULL, res.msg);
	ASSERT_EQ(commits, 1, "callback ran once");
out:
	kvx_destroy(s);
	kvx_destroy(r);
}

static void test_sender_killed(void)
{
	struct kvx *r = NULL;
	struct kvx_stats st = { 0 };
	int pp[2], port, status;
	uint32_t did;
	pid_t pid;

	fill_rand(dst, ARENA, 5);
	memcpy(snap, dst, ARENA);
	commits = 0;
	if (!ASSERT_EQ(pipe(pp), 0, "pipe"))
		return;
	pid = fork();
	if (pid == 0) {
		struct kvx *s = mk(KVX_FAULT_SLOW, 0, 5);
		struct kvx_result res;

		close(pp[1]);
		if (s && read(pp[0], &port, sizeof(port)) == sizeof(port))
			xfer(s, port, 0, &res);
		_exit(0);
	}
	close(pp[0]);
	r = receiver(&did, NULL);
	if (!ASSERT_TRUE(r && did == 0, "receiver"))
		goto out;
	port = kvx_port(r);
	if (write(pp[1], &port, sizeof(port)) != sizeof(port))
		goto out;
	for (int i = 0; i < 500; i++) {		/* transfer under way */
		kvx_get_stats(r, &st);
		if (st.rx_active)
			break;
		usleep(2000);
	}
	usleep(100000);
	kill(pid, SIGKILL);
	waitpid(pid, &status, 0);
	pid = 0;
	ASSERT_EQ(st.rx_active, 1, "transfer was in flight");
	for (int i = 0; i < 300; i++) {
		kvx_get_stats(r, &st);
		if (st.rx_failed)
			break;
		usleep(10000);
	}
	ASSERT_EQ(st.rx_failed, 1, "receiver reports the failure");
	ASSERT_TRUE(strstr(st.rx_last_err, "closed") || strstr(st.rx_last_err, "truncated"),
		    st.rx_last_err);
	printf("# receiver: %s\n", st.rx_last_err);
	ASSERT_EQ(st.rx_ok, 0, "not committed");
	ASSERT_EQ(commits, 0, "no commit");
	ASSERT_TRUE(!memcmp(dst, snap, ARENA), "destination unchanged");
out:
	if (pid > 0) {
		kill(pid, SIGKILL);
		waitpid(pid, &status, 0);
	}
	close(pp[1]);
	kvx_destroy(r);
}

static void test_receiver_killed(void)
{
	static struct kvx_desc d[NBLK];
	struct kvx *s = NULL;
	struct kvx_result res;
	int pp[2], port = 0, status;
	uint32_t sid;
	uint64_t id;
	char peer[64];
	pid_t pid;

	if (!ASSERT_EQ(pipe(pp), 0, "pipe"))
		return;
	pid = fork();
	if (pid == 0) {
		uint32_t did;
		struct kvx *r = receiver(&did, NULL);

		close(pp[0]);
		port = r ? kvx_port(r) : -1;
		if (write(pp[1], &port, sizeof(port)) != sizeof(port))
			_exit(1);
		pause();
		_exit(0);
	}
	close(pp[1]);
	if (!ASSERT_EQ(read(pp[0], &port, sizeof(port)), sizeof(port), "child port") ||
	    !ASSERT_TRUE(port > 0, "child listens"))
		goto out;
	s = mk(KVX_FAULT_SLOW, 0, 5);
	descs(d);
	snprintf(peer, sizeof(peer), "127.0.0.1:%d", port);
	if (!ASSERT_TRUE(s && !kvx_register(s, src, ARENA, &sid) &&
			 !kvx_submit(s, peer, sid, 0, d, NBLK, &id), "submit"))
		goto out;
	/* past the four handshakes even on a loaded machine; 256 slices of 5 ms: in flight */
	usleep(500000);
	ASSERT_EQ(kvx_status(s, id, &res), 0, "status");
	ASSERT_EQ(res.state, KVX_PENDING, "in flight");
	kill(pid, SIGKILL);
	waitpid(pid, &status, 0);
	pid = 0;
	if (!ASSERT_EQ(kvx_wait(s, id, 10000, &res), 0, "wait"))
		goto out;
	ASSERT_EQ(res.state, KVX_FAILED, "sender reports failure");
	ASSERT_TRUE(strstr(res.msg, "mid-transfer") != NULL, res.msg);
	printf("# sender: %s\n", res.msg);
out:
	if (pid > 0) {
		kill(pid, SIGKILL);
		waitpid(pid, &status, 0);
	}
	close(pp[0]);
	kvx_destroy(s);
}

/* ---- authentication of KV peers ------------------------------------- */

static char kdir[] = "/tmp/unit_kvx_keyXXXXXX";
static char *logged;

static void log_cb(void *arg, const char *line)
{
	char *old = __atomic_exchange_n(&logged, strdup(line), __ATOMIC_ACQ_REL);

	free(old);
}

static int key_file(const char *name, mode_t mode, size_t n, uint8_t *out)
{
	char path[128];
	uint8_t b[64];
	int fd;

	snprintf(path, sizeof(path), "%s/%s", kdir, name);
	randombytes_buf(b, sizeof(b));
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);
	if (fd < 0 || write(fd, b, n) != (ssize_t)n || fchmod(fd, mode)) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	close(fd);
	return kvx_key_load(path, out);
}

static struct kvx *mk_auth(const uint8_t *key, enum kvx_policy pol, char *err, size_t el,
			   int *rc)
{
	struct kvx_opts o;
	struct kvx *x = NULL;

	kvx_opts_defaults(&o);
	o.policy = pol;
	o.streams = 4;
	o.slice = 64U << 10;
	o.timeout_ms = 3000;
	o.log = log_cb;
	if (key) {
		o.auth = true;
		memcpy(o.key, key, 32);
	}
	*rc = kvx_create(&x, &o, err, el);
	return *rc ? NULL : x;
}

static struct kvx *auth_receiver(const uint8_t *key, uint32_t *did)
{
	char err[200];
	int rc;
	struct kvx *r = mk_auth(key, KVX_POLICY_TCP, err, sizeof(err), &rc);

	if (r && (kvx_register(r, dst, ARENA, did) ||
		  kvx_listen(r, "127.0.0.1:0", commit_cb, NULL))) {
		kvx_destroy(r);
		return NULL;
	}
	return r;
}

/* one push from a sender with key sk (NULL: none) to receiver r */
static int auth_push(struct kvx *r, uint32_t did, const uint8_t *sk, struct kvx_result *res)
{
	char err[200];
	int rc;
	struct kvx *s = mk_auth(sk, KVX_POLICY_AUTO, err, sizeof(err), &rc);

	if (!s)
		return rc;
	rc = xfer(s, kvx_port(r), did, res);
	kvx_destroy(s);
	return rc;
}

static void test_auth_keys(void)
{
	uint8_t k1[32], k2[32], k3[32];
	char err[200];
	int rc;
	struct kvx *x;

	ASSERT_EQ(key_file("k1", 0600, 32, k1), 0, "0600 key file loads");
	ASSERT_EQ(key_file("k2", 0600, 32, k2), 0, "second key loads");
	ASSERT_NEQ(memcmp(k1, k2, 32), 0, "different files, different keys");
	ASSERT_EQ(key_file("k3", 0644, 32, k3), -EPERM, "key readable by others refused");
	ASSERT_EQ(key_file("k4", 0600, 8, k3), -EINVAL, "8-byte key file refused");
	/* the key is proved in the rdma_cm handshake too (kvx_rdma.c): a key
	 * no longer rules RDMA out; only a missing device or build does */
	err[0] = 0;
	x = mk_auth(k1, KVX_POLICY_RDMA, err, sizeof(err), &rc);
	ASSERT_TRUE(x ? rc == 0 : (rc == -ENODEV || rc == -EPROTONOSUPPORT) &&
		    !strstr(err, "KV key"), "policy rdma with a key: not refused for the key");
	printf("# policy rdma with a key: %s\n", x ? kvx_choice(x) : err);
	kvx_destroy(x);
	x = mk_auth(k1, KVX_POLICY_AUTO, err, sizeof(err), &rc);
	if (ASSERT_TRUE(x, "policy auto with a key: created")) {
		ASSERT_TRUE(!strstr(kvx_choice(x), "KV key"),
			    "auto with a key: the key does not force tcp");
		printf("# %s\n", kvx_choice(x));
	}
	kvx_destroy(x);
}

static void test_auth_push(void)
{
	uint8_t k1[32], k2[32];
	struct kvx_result res;
	struct kvx_stats st;
	struct kvx *r, *open_r;
	uint32_t did, did2;

	if (!ASSERT_EQ(key_file("a1", 0600, 32, k1) | key_file("a2", 0600, 48, k2), 0, "keys"))
		return;
	memset(dst, 0, ARENA);
	commits = 0;
	r = auth_receiver(k1, &did);
	if (!ASSERT_TRUE(r, "receiver with a key"))
		return;
	ASSERT_EQ(auth_push(r, did, k1, &res), 0, "right key: submit/wait");
	ASSERT_EQ(res.state, KVX_DONE, res.msg);
	ASSERT_TRUE(moved_ok(), "right key: blocks landed");
	ASSERT_EQ(commits, 1, "right key: one commit");

	memset(dst, 0, ARENA);
	memcpy(snap, dst, ARENA);
	ASSERT_EQ(auth_push(r, did, k2, &res), 0, "wrong key: submit/wait");
	ASSERT_EQ(res.state, KVX_FAILED, "wrong key: failed");
	ASSERT_EQ(res.err, -EACCES, "wrong key: EACCES");
	printf("# sender: %s\n", res.msg);
	ASSERT_TRUE(strstr(res.msg, "refused our KV key") != NULL, "wrong key: said");
	ASSERT_EQ(auth_push(r, did, NULL, &res), 0, "no key: submit/wait");
	ASSERT_EQ(res.err, -EACCES, "no key: refused");
	printf("# sender: %s\n", res.msg);
	ASSERT_TRUE(strstr(res.msg, "requires KV peer authentication") != NULL, "no key: said");
	/* the keyless sender gives up at once: the receiver refuses on its own time */
	for (int i = 0; i < 1500; i++) {
		kvx_get_stats(r, &st);
		if (st.rx_auth_refused >= 2 && __atomic_load_n(&logged, __ATOMIC_ACQUIRE))
			break;
		usleep(10000);
	}
	if (!ASSERT_EQ(st.rx_auth_refused, 2, "receiver counted two refused peers"))
		printf("# receiver: ok %llu failed %llu last: %s\n", (unsigned long long)st.rx_ok,
		       (unsigned long long)st.rx_failed, st.rx_last_err);
	ASSERT_EQ(st.rx_ok, 1, "receiver: one transfer only");
	ASSERT_EQ(st.rx_failed, 0, "refusals are not failed transfers (nothing staged)");
	ASSERT_EQ(commits, 1, "no commit after a refusal");
	ASSERT_MEM(dst, snap, ARENA, "destination untouched by refused peers");
	ASSERT_TRUE(logged && strstr(logged, "refused: authentication failed"),
		    "refusal logged through the hook");
	printf("# receiver: %s\n", logged ? logged : "(no log line)");

	/* a sender with a key never sends to a receiver that cannot prove it */
	open_r = auth_receiver(NULL, &did2);
	if (ASSERT_TRUE(open_r, "receiver without a key")) {
		ASSERT_EQ(auth_push(open_r, did2, k1, &res), 0, "key -> keyless: submit/wait");
		ASSERT_EQ(res.err, -EACCES, "key -> keyless: refused by the sender");
		printf("# sender: %s\n", res.msg);
		kvx_get_stats(open_r, &st);
		ASSERT_EQ(st.rx_ok + st.rx_failed, 0, "keyless receiver got no transfer");
	}
	kvx_destroy(open_r);
	kvx_destroy(r);
}

/* raw handshake: chal in, hello + AUTH out (MAC built like the sender's) */
/*
 * With a key every slice carries a UMAC-128 over header and payload: a
 * byte flipped in flight (the sender's corrupt fault, after the MAC was
 * computed) fails the transfer as a MAC mismatch, nothing applied; the
 * same keyed push without the fault lands every block.
 */
static void test_auth_slice_mac(void)
{
	struct kvx_opts o;
	struct kvx_result res;
	struct kvx_stats st = { 0 };
	struct kvx *r, *s = NULL;
	uint8_t k[32];
	uint32_t did;
	char err[200];

	if (!ASSERT_EQ(key_file("m1", 0600, 32, k), 0, "key"))
		return;
	fill_rand(dst, ARENA, 98);
	memcpy(snap, dst, ARENA);
	commits = 0;
	r = auth_receiver(k, &did);
	kvx_opts_defaults(&o);
	o.policy = KVX_POLICY_TCP;
	o.slice = 64U << 10;
	o.timeout_ms = 3000;
	o.auth = true;
	memcpy(o.key, k, 32);
	o.fault = KVX_FAULT_CORRUPT;
	o.fault_slice = 37;
	if (!ASSERT_TRUE(r && !kvx_create(&s, &o, err, sizeof(err)), "setup"))
		goto out;
	if (!ASSERT_EQ(xfer(s, kvx_port(r), did, &res), 0, "submit/wait"))
		goto out;
	ASSERT_EQ(res.state, KVX_FAILED, "a flipped byte: failed");
	ASSERT_EQ(res.err, -EBADMSG, res.msg);
	for (int i = 0; i < 300 && !st.rx_failed; i++) {
		kvx_get_stats(r, &st);
		usleep(10000);
	}
	ASSERT_TRUE(strstr(st.rx_last_err, "MAC mismatch") != NULL, st.rx_last_err);
	printf("# receiver: %s\n", st.rx_last_err);
	ASSERT_EQ(commits, 0, "no commit");
	ASSERT_MEM(dst, snap, ARENA, "destination unchanged");
	kvx_destroy(s);
	s = NULL;
	memset(dst, 0, ARENA);
	ASSERT_EQ(auth_push(r, did, k, &res), 0, "keyed push: submit/wait");
	ASSERT_EQ(res.state, KVX_DONE, res.msg);
	ASSERT_TRUE(moved_ok(), "keyed push: every block landed");
out:
	kvx_destroy(s);
	kvx_destroy(r);
}

static int raw_hello(int port, const uint8_t *key, uint32_t did, int tamper,
		     struct w_auth *ans)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port) };
	struct timeval tv = { .tv_sec = 5 };
	static struct w_chal old;
	struct w_chal ch;
	struct w_hello h = {
		.magic = htole32(KVX_MAGIC_HELLO), .ver = htole16(KVX_VERSION),
		.nstreams = htole16(1), .dst_arena = htole32(did),
		.total = htole64(BLK), .nslices = htole32(1),
	};
	struct {
		struct w_hello h;
		struct w_auth a;
	} __attribute__((packed)) m;
	uint8_t msg[8 + 32 + sizeof(h)];
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	ssize_t n = 0;

	inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) ||
	    recv(fd, &ch, sizeof(ch), MSG_WAITALL) != sizeof(ch)) {
		close(fd);
		return -1;
	}
	randombytes_buf(&h.xfer, sizeof(h.xfer));
	m.h = h;
	m.a = (struct w_auth){ .magic = htole32(KVX_MAGIC_AUTH) };
	randombytes_buf(m.a.nonce, sizeof(m.a.nonce));
	memcpy(msg, "idnkvx-s", 8);
	memcpy(msg + 8, tamper == 2 ? old.nonce : ch.nonce, 16);	/* 2: replay */
	memcpy(msg + 24, m.a.nonce, 16);
	memcpy(msg + 40, &h, sizeof(h));
	crypto_auth(m.a.mac, msg, sizeof(msg), key);
	old = ch;
	if (tamper == 1)
		m.h.total = htole64(2 * BLK);	/* after the MAC */
	if (send(fd, &m, sizeof(m), MSG_NOSIGNAL) == sizeof(m))
		n = recv(fd, ans, sizeof(*ans), MSG_WAITALL);
	close(fd);
	return n >= 8 ? 0 : -1;
}

static void test_auth_tamper(void)
{
	uint8_t k1[32];
	struct w_auth ans;
	struct kvx_stats st;
	struct kvx *r;
	uint32_t did;

	if (!ASSERT_EQ(key_file("t1", 0600, 32, k1), 0, "key"))
		return;
	r = auth_receiver(k1, &did);
	if (!ASSERT_TRUE(r, "receiver with a key"))
		return;
	ASSERT_EQ(raw_hello(kvx_port(r), k1, did, 0, &ans), 0, "raw handshake, untampered");
	ASSERT_EQ(le32toh(ans.magic), KVX_MAGIC_AUOK, "untampered: receiver proves the key");
	ASSERT_EQ(raw_hello(kvx_port(r), k1, did, 1, &ans), 0, "raw handshake, tampered");
	ASSERT_EQ(le32toh(ans.magic), KVX_MAGIC_RES, "tampered total: refused");
	ASSERT_EQ((int32_t)le32toh(((struct w_res *)&ans)->status), -EACCES, "with EACCES");
	ASSERT_EQ(raw_hello(kvx_port(r), k1, did, 2, &ans), 0, "raw handshake, replayed");
	ASSERT_EQ(le32toh(ans.magic), KVX_MAGIC_RES, "MAC over an old challenge: refused");
	kvx_get_stats(r, &st);
	ASSERT_EQ(st.rx_auth_refused, 2, "two refusals counted");
	kvx_destroy(r);
}

/* ---- bounds on what a peer can make the receiver do (issue 11) ------ */

/* connect and read the challenge; the fd, or -1 (-2: closed without one) */
static int raw_open(int port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port) };
	struct timeval tv = { .tv_sec = 5 };
	struct w_chal ch;
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	ssize_t n;

	inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa))) {
		close(fd);
		return -1;
	}
	n = recv(fd, &ch, sizeof(ch), MSG_WAITALL);
	if (n != sizeof(ch)) {
		close(fd);
		return n == 0 ? -2 : -1;
	}
	return fd;
}

/* send a hello announcing @total bytes (no key); 0 */
static int raw_send(int fd, uint64_t total)
{
	struct {
		struct w_hello h;
		struct w_auth a;
	} __attribute__((packed)) m = {
		.h = { .magic = htole32(KVX_MAGIC_HELLO), .ver = htole16(KVX_VERSION),
		       .nstreams = htole16(1), .dst_arena = htole32(KVX_ARENA_NONE),
		       .total = htole64(total), .nslices = htole32(1) },
		.a = { .magic = htole32(KVX_MAGIC_AUTH) },
	};

	randombytes_buf(&m.h.xfer, sizeof(m.h.xfer));
	return send(fd, &m, sizeof(m), MSG_NOSIGNAL) == sizeof(m) ? 0 : -1;
}

/* the whole exchange: the receiver's status for a hello of @total bytes */
static int raw_total(int port, uint64_t total)
{
	struct w_res res;
	int fd = raw_open(port), st = 1;

	if (fd >= 0 && !raw_send(fd, total) &&
	    recv(fd, &res, sizeof(res), MSG_WAITALL) == sizeof(res))
		st = (int32_t)le32toh(res.status);
	if (fd >= 0)
		close(fd);
	return st;
}

static void test_bounds(void)
{
	struct kvx_opts o;
	struct kvx_stats st;
	struct kvx *r = NULL;
	char err[200];
	int port, held[3], extra, big, n_closed = 0;

	kvx_opts_defaults(&o);
	o.max_rx = 1U << 20;
	o.max_rx_conns = 3;
	o.hello_ms = 300;
	o.log = log_cb;
	if (!ASSERT_OK(kvx_create(&r, &o, err, sizeof(err)), "receiver") ||
	    !ASSERT_OK(kvx_listen(r, "127.0.0.1:0", commit_cb, NULL), "listen"))
		goto out;
	port = kvx_port(r);
	/* every length checked before allocation */
	ASSERT_EQ(raw_total(port, 32ULL << 30), -EMSGSIZE, "32 GiB hello: EMSGSIZE");
	ASSERT_EQ(raw_total(port, (1U << 20) + 1), -EMSGSIZE, "max_rx + 1: EMSGSIZE");
	ASSERT_TRUE(logged && strstr(logged, "kv hello refused: transfer of"), "refusal logged");
	/* all stages in flight together within max_rx */
	big = raw_open(port);
	ASSERT_TRUE(big >= 0 && !raw_send(big, 600U << 10), "600 KiB transfer staged");
	usleep(100000);
	ASSERT_EQ(raw_total(port, 600U << 10), -ENOBUFS, "a second one over the budget: ENOBUFS");
	if (big >= 0)
		close(big);
	usleep(100000);
	/* bounded streams: the 4th idle peer is closed at once */
	for (int i = 0; i < 3; i++)
		held[i] = raw_open(port);
	extra = raw_open(port);
	ASSERT_TRUE(held[0] >= 0 && held[1] >= 0 && held[2] >= 0, "3 idle peers get a challenge");
	ASSERT_EQ(extra, -2, "the 4th is closed without one");
	kvx_get_stats(r, &st);
	ASSERT_TRUE(st.rx_busy >= 1, "counted as busy");
	/* the hello deadline: idle peers dropped after hello_ms */
	usleep(700000);
	for (int i = 0; i < 3; i++) {
		char c;

		if (held[i] >= 0 && recv(held[i], &c, 1, 0) == 0)
			n_closed++;
		if (held[i] >= 0)
			close(held[i]);
	}
	ASSERT_EQ(n_closed, 3, "idle peers dropped at the hello deadline");
	ASSERT_EQ(raw_total(port, 32ULL << 30), -EMSGSIZE, "streams free again: answered");
	kvx_get_stats(r, &st);
	ASSERT_TRUE(st.rx_refused >= 6, "refusals counted (3 sizes/budget, 3 deadlines)");
out:
	if (r)
		kvx_destroy(r);
}

/*
 * A stream that ends its part of a two-stream transfer whose other stream
 * never comes: the transfer fails after timeout_ms without progress (the
 * receive thread and the stage do not wait forever), the peer is told.
 */
static void test_orphan_stream(void)
{
	struct kvx_opts o;
	struct kvx_stats st;
	struct kvx *r = NULL;
	struct w_res res;
	char err[200];
	struct timespec t0;
	int fd = -1;
	struct {
		struct w_hello h;
		struct w_auth a;
		struct w_end e;
	} __attribute__((packed)) m = {
		.h = { .magic = htole32(KVX_MAGIC_HELLO), .ver = htole16(KVX_VERSION),
		       .nstreams = htole16(2), .dst_arena = htole32(KVX_ARENA_NONE),
		       .total = htole64(4096), .nslices = htole32(1) },
		.a = { .magic = htole32(KVX_MAGIC_AUTH) },
		.e = { .magic = htole32(KVX_MAGIC_END) },
	};

	kvx_opts_defaults(&o);
	o.timeout_ms = 300;
	o.log = log_cb;
	if (!ASSERT_OK(kvx_create(&r, &o, err, sizeof(err)), "receiver") ||
	    !ASSERT_OK(kvx_listen(r, "127.0.0.1:0", commit_cb, NULL), "listen"))
		goto out;
	randombytes_buf(&m.h.xfer, sizeof(m.h.xfer));
	fd = raw_open(kvx_port(r));
	clock_gettime(CLOCK_MONOTONIC, &t0);
	ASSERT_TRUE(fd >= 0 && send(fd, &m, sizeof(m), MSG_NOSIGNAL) == sizeof(m),
		    "hello of 2 streams, then END on the only one");
	ASSERT_TRUE(fd >= 0 && recv(fd, &res, sizeof(res), MSG_WAITALL) == sizeof(res) &&
		    (int32_t)le32toh(res.status) == -ETIMEDOUT, "answered ETIMEDOUT");
	ASSERT_TRUE(kvx_since(&t0) < 3, "answered within a few timeouts");
	usleep(50000);
	kvx_get_stats(r, &st);
	ASSERT_TRUE(st.rx_failed == 1 && st.rx_active == 0 &&
		    strstr(st.rx_last_err, "1 of 2 streams ended"), "failed, nothing left");
out:
	if (fd >= 0)
		close(fd);
	if (r)
		kvx_destroy(r);
}


/* ---- direct placement (kvx_set_sink) --------------------------------- */

/*
 * A test sink: each transfer gets a fresh buffer of its size ("reserved");
 * commit marks it published. open_err refuses transfers, place_limit
 * refuses slices that start at or past it, decline stages the transfer.
 */
static struct {
	int opens, places, commits, closes, close_err, open_err;
	uint64_t place_limit;
	bool decline;
	uint8_t *published;		/* the committed buffer, kept */
	uint64_t published_len;
} sk;

struct sk_xfer {
	uint8_t *buf;
	uint64_t len;
};

static int sk_open(void *arg, uint32_t dst_arena, uint64_t total, uint32_t nslices,
		   void **xfer)
{
	struct sk_xfer *p;

	sk.opens++;
	if (sk.open_err)
		return sk.open_err;
	if (sk.decline)
		return 0;
	p = calloc(1, sizeof(*p));
	p->buf = malloc(total);
	p->len = total;
	*xfer = p;
	return 0;
}

static uint8_t *sk_place(void *xfer, uint64_t off, uint64_t len)
{
	struct sk_xfer *p = xfer;

	__atomic_add_fetch(&sk.places, 1, __ATOMIC_RELAXED);
	if (sk.place_limit && off >= sk.place_limit)
		return NULL;
	return p->buf + off;
}

static int sk_commit(void *xfer, const struct kvx_slice *s, uint32_t n)
{
	struct sk_xfer *p = xfer;

	sk.commits++;
	free(sk.published);
	sk.published = p->buf;		/* published: it stays */
	sk.published_len = p->len;
	p->buf = NULL;
	return 0;
}

static void sk_close(void *xfer, int err)
{
	struct sk_xfer *p = xfer;

	sk.closes++;
	sk.close_err = err;
	free(p->buf);
	free(p);
}

static const struct kvx_sink test_sink = { sk_open, sk_place, sk_commit, sk_close };

/* a receiver with a sink and dst registered (id in *did) */
static struct kvx *sink_receiver(enum kvx_fault f, uint32_t *did)
{
	struct kvx *r = mk(KVX_FAULT_NONE, 0, 0);

	(void)f;
	if (!r)
		return NULL;
	if (kvx_register(r, dst, ARENA, did) || kvx_set_sink(r, &test_sink, NULL) ||
	    kvx_listen(r, "127.0.0.1:0", commit_cb, NULL)) {
		kvx_destroy(r);
		return NULL;
	}
	return r;
}

static void sink_reset(void)
{
	free(sk.published);
	memset(&sk, 0, sizeof(sk));
	commits = 0;
}

/* the receiver forgot the transfer (its last stream let go of it) */
static void wait_idle(struct kvx *r)
{
	struct kvx_stats st;

	for (int i = 0; i < 300; i++) {
		kvx_get_stats(r, &st);
		if (!st.rx_active)
			return;
		usleep(10000);
	}
}

static void test_sink_placed(void)
{
	struct kvx *r, *s;
	struct kvx_result res;
	uint32_t did;

	sink_reset();
	r = sink_receiver(KVX_FAULT_NONE, &did);
	s = mk(KVX_FAULT_NONE, 0, 0);
	ASSERT_EQ(kvx_set_sink(r, &test_sink, NULL), -EBUSY, "sink: before listen only");
	if (!ASSERT_TRUE(r && s, "setup") ||
	    !ASSERT_EQ(xfer(s, kvx_port(r), KVX_ARENA_NONE, &res), 0, "submit/wait"))
		goto out;
	ASSERT_EQ(res.state, KVX_DONE, res.msg);
	wait_idle(r);
	ASSERT_EQ(sk.opens, 1, "one open");
	ASSERT_EQ(sk.places, ARENA / (64U << 10), "every slice placed");
	ASSERT_TRUE(sk.commits == 1 && sk.closes == 1 && sk.close_err == 0,
		    "committed, then closed with 0");
	ASSERT_EQ(commits, 0, "the staged commit callback not used");
	/* the stage is the descriptors' bytes in order: here the source itself */
	ASSERT_TRUE(sk.published && sk.published_len == ARENA &&
		    !memcmp(sk.published, src, ARENA), "bytes read straight into place");
	ASSERT_TRUE(!r->spare && !r->staged, "no stage allocated, budget returned");
	/* a registered arena is staged and copied, as without a sink */
	memset(dst, 0, ARENA);
	if (!ASSERT_EQ(xfer(s, kvx_port(r), did, &res), 0, "submit/wait (arena)"))
		goto out;
	ASSERT_EQ(res.state, KVX_DONE, res.msg);
	ASSERT_TRUE(moved_ok() && sk.opens == 1 && commits == 1,
		    "registered arena: staged, copied, sink not asked");
	/* a sink that declines: staged, the commit callback applies it */
	sk.decline = true;
	if (!ASSERT_EQ(xfer(s, kvx_port(r), KVX_ARENA_NONE, &res), 0, "submit/wait (declined)"))
		goto out;
	ASSERT_EQ(res.state, KVX_DONE, res.msg);
	wait_idle(r);
	ASSERT_TRUE(sk.opens == 2 && sk.closes == 1 && commits == 2,
		    "declined: staged and committed by the callback");
out:
	kvx_destroy(s);
	kvx_destroy(r);
	sink_reset();
}

/* failures of a placed transfer: nothing published, the placement closed */
static void test_sink_failures(void)
{
	struct kvx *r = NULL, *s = NULL;
	struct kvx_result res;
	struct kvx_stats st;
	uint32_t did;

	sink_reset();
	r = sink_receiver(KVX_FAULT_NONE, &did);
	s = mk(KVX_FAULT_CORRUPT, 37, 0);
	if (!ASSERT_TRUE(r && s, "setup") ||
	    !ASSERT_EQ(xfer(s, kvx_port(r), KVX_ARENA_NONE, &res), 0, "submit/wait"))
		goto out;
	ASSERT_TRUE(res.state == KVX_FAILED && res.err == -EBADMSG, res.msg);
	wait_idle(r);
	ASSERT_TRUE(sk.opens == 1 && sk.commits == 0 && !sk.published,
		    "corrupted slice: nothing published");
	ASSERT_TRUE(sk.closes == 1 && sk.close_err == -EBADMSG, "closed once with the error");
	ASSERT_TRUE(!r->staged, "budget returned");
	kvx_destroy(s);
	/* a sink without room: refused at the start, the reason to the sender */
	sk.open_err = -ENOSPC;
	sk.places = 0;
	s = mk(KVX_FAULT_NONE, 0, 0);
	if (!ASSERT_TRUE(s != NULL, "sender") ||
	    !ASSERT_EQ(xfer(s, kvx_port(r), KVX_ARENA_NONE, &res), 0, "submit/wait"))
		goto out;
	ASSERT_TRUE(res.state == KVX_FAILED && res.err == -ENOSPC, res.msg);
	printf("# sender: %s\n", res.msg);
	wait_idle(r);
	kvx_get_stats(r, &st);
	if (!ASSERT_TRUE(sk.opens == 2 && sk.places == 0 && sk.closes == 1 && sk.commits == 0,
			 "refused: nothing placed, nothing to close"))
		printf("# opens %d places %d closes %d commits %d\n", sk.opens, sk.places,
		       sk.closes, sk.commits);
	ASSERT_TRUE(strstr(st.rx_last_err, "refused at its start") != NULL, st.rx_last_err);
	/* a slice the sink has no place for fails the transfer */
	sk.open_err = 0;
	sk.place_limit = ARENA / 2;
	if (!ASSERT_EQ(xfer(s, kvx_port(r), KVX_ARENA_NONE, &res), 0, "submit/wait"))
		goto out;
	ASSERT_TRUE(res.state == KVX_FAILED && res.err == -ERANGE, res.msg);
	wait_idle(r);
	kvx_get_stats(r, &st);
	ASSERT_TRUE(sk.commits == 0 && sk.closes == 2 && sk.close_err == -ERANGE &&
		    !sk.published, "no place: failed, closed, nothing published");
	ASSERT_TRUE(strstr(st.rx_last_err, "no place") != NULL, st.rx_last_err);
	ASSERT_TRUE(!r->staged, "budget returned");
out:
	kvx_destroy(s);
	kvx_destroy(r);
	sink_reset();
}

/* ---- the agent's sink: received blocks enter its engine's cache -------- */

#define AG_BB (256U << 10)		/* 4 slices of 64 KiB per block */
#define AG_NB 16

static struct agent AG;

static int ag_setup(void)
{
	agent_cfg_defaults(&AG.cfg);
	AG.cfg.engine = true;
	AG.cfg.eng.speed = 1e6;
	AG.cfg.eng.block_tokens = 16;
	AG.cfg.eng.capacity_tokens = 16 * 2 * AG_NB;	/* 32 blocks */
	AG.cfg.eng.kv_bytes_per_token = AG_BB / 16;
	return engine_init(&AG.eng, &AG.cfg.eng);
}

/* blocks of src as the agent's push cuts them: one descriptor per block, tag its key */
static void ag_descs(struct kvx_desc *d, uint64_t *keys, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++) {
		keys[i] = kv_chain(i ? keys[i - 1] : 0, 1000 + i);
		d[i] = (struct kvx_desc){ .src_off = (uint64_t)(n - 1 - i) * AG_BB,
					  .dst_off = (uint64_t)i * AG_BB, .len = AG_BB,
					  .tag = keys[i] };
	}
}

static int ag_push(struct kvx *s, int port, uint32_t dst, uint32_t n,
		   struct kvx_result *res)
{
	struct kvx_desc d[AG_NB];
	uint64_t keys[AG_NB], id;
	uint32_t sid;
	char peer[64];
	int rc;

	ag_descs(d, keys, n);
	snprintf(peer, sizeof(peer), "127.0.0.1:%d", port);
	rc = kvx_register(s, src, ARENA, &sid);
	if (!rc)
		rc = kvx_submit(s, peer, sid, dst, d, n, &id);
	if (!rc)
		rc = kvx_wait(s, id, 20000, res);
	kvx_unregister(s, sid);
	return rc;
}

/* cache consistent: every block free, evictable or referenced, none referenced now */
static bool ag_quiet(void)
{
	struct kv_cache *kc = &AG.eng.kv;

	return kc->nused == 0 && kc->nfree + kc->nlru == kc->nblocks;
}

static void test_agent_sink(void)
{
	struct kv_cache *kc = &AG.eng.kv;
	struct kvx_desc d[AG_NB];
	uint64_t keys[AG_NB];
	struct kvx *r = NULL, *s = NULL;
	struct kvx_result res;
	int32_t pre[2];
	uint32_t hits, ok = 0;

	if (!ASSERT_OK(ag_setup(), "engine"))
		return;
	ag_descs(d, keys, AG_NB);
	r = mk(KVX_FAULT_NONE, 0, 0);
	s = mk(KVX_FAULT_CORRUPT, 37, 0);
	if (!ASSERT_TRUE(r && s, "setup") ||
	    !ASSERT_OK(kvx_set_sink(r, &agent_kv_sink, &AG), "sink") ||
	    !ASSERT_OK(kvx_listen(r, "127.0.0.1:0", agent_kv_commit, &AG), "listen"))
		goto out;
	/* a tampered transfer: nothing indexed, every reserved block back */
	if (!ASSERT_OK(ag_push(s, kvx_port(r), KVX_ARENA_NONE, AG_NB, &res), "push"))
		goto out;
	ASSERT_TRUE(res.state == KVX_FAILED && res.err == -EBADMSG, res.msg);
	wait_idle(r);
	pthread_mutex_lock(&AG.eng.mu);
	ASSERT_EQ(kv_match(kc, keys, AG_NB), 0, "corrupted: no block indexed");
	ASSERT_TRUE(ag_quiet() && kc->nfree == kc->nblocks, "corrupted: reservation released");
	/* two of the blocks are cached already (computed here) */
	ASSERT_OK(kv_acquire(kc, keys, 2, 2, pre, &hits), "two blocks computed");
	kv_commit(kc, keys, pre, 0, 2);
	kv_release(kc, pre, 2);
	pthread_mutex_unlock(&AG.eng.mu);
	/* owned state nobody announced: refused at commit, nothing indexed */
	kvx_destroy(s);
	s = mk(KVX_FAULT_NONE, 0, 0);
	if (!ASSERT_TRUE(s != NULL, "sender") ||
	    !ASSERT_OK(ag_push(s, kvx_port(r), KVX_ARENA_OWNED, AG_NB, &res), "push owned"))
		goto out;
	ASSERT_TRUE(res.state == KVX_FAILED && res.err == -EACCES, res.msg);
	wait_idle(r);
	pthread_mutex_lock(&AG.eng.mu);
	ASSERT_EQ(kv_match(kc, keys, AG_NB), 2, "unannounced: only the two computed");
	ASSERT_TRUE(ag_quiet() && kc->nlru == 2, "unannounced: reservation released");
	pthread_mutex_unlock(&AG.eng.mu);
	/* the push: placed in reserved blocks, indexed at commit */
	if (!ASSERT_OK(ag_push(s, kvx_port(r), KVX_ARENA_NONE, AG_NB, &res), "push"))
		goto out;
	ASSERT_EQ(res.state, KVX_DONE, res.msg);
	wait_idle(r);
	pthread_mutex_lock(&AG.eng.mu);
	ASSERT_EQ(kv_match(kc, keys, AG_NB), AG_NB, "every block indexed");
	for (uint32_t i = 2; i < AG_NB; i++) {
		int32_t b[AG_NB];

		if (kv_acquire(kc, keys, i + 1, i + 1, b, &hits) || hits != i + 1)
			break;
		if (!memcmp(kv_block_data(kc, b[i]), src + d[i].src_off, AG_BB))
			ok++;
		kv_release(kc, b, i + 1);
	}
	ASSERT_EQ(ok, AG_NB - 2, "received blocks hold the sender's bytes");
	ASSERT_OK(kv_acquire(kc, keys, 2, 2, pre, &hits), "the two computed blocks");
	ASSERT_TRUE(hits == 2 && !kv_check(kc, pre[0]) && !kv_check(kc, pre[1]),
		    "hits kept their own bytes");
	kv_release(kc, pre, 2);
	ASSERT_TRUE(ag_quiet() && kc->nlru == AG_NB && kc->nfree == kc->nblocks - AG_NB,
		    "hits' received copies freed, no block leaked");
	ASSERT_EQ(AG.kv_rx_blocks, AG_NB - 2, "kv_rx_blocks: the new ones");
	pthread_mutex_unlock(&AG.eng.mu);
	/* larger than the free and evictable blocks: -ENOSPC at the start */
	pthread_mutex_lock(&AG.eng.mu);
	{
		int32_t all[AG_NB + 1];

		/* 17 of 32 held: 15 left, free or evictable */
		ASSERT_OK(kv_reserve(kc, AG_NB + 1, all), "most of the cache held");
		pthread_mutex_unlock(&AG.eng.mu);
		ASSERT_OK(ag_push(s, kvx_port(r), KVX_ARENA_NONE, AG_NB, &res), "push");
		ASSERT_TRUE(res.state == KVX_FAILED && res.err == -ENOSPC, res.msg);
		printf("# sender: %s\n", res.msg);
		wait_idle(r);
		pthread_mutex_lock(&AG.eng.mu);
		ASSERT_EQ(kc->nused, AG_NB + 1, "refused: no block taken");
		kv_release(kc, all, AG_NB + 1);
	}
	pthread_mutex_unlock(&AG.eng.mu);
out:
	kvx_destroy(s);
	kvx_destroy(r);
	engine_free(&AG.eng);
}

int main(void)
{
	signal(SIGPIPE, SIG_IGN);
	src = malloc(ARENA);
	dst = malloc(ARENA);
	snap = malloc(ARENA);
	if (!src || !dst || !snap)
		return 1;
	fill_rand(src, ARENA, 1);
	tap_plan(0);
	TAP_RUN(test_policy);
	TAP_RUN(test_hash);
	TAP_RUN(test_loopback);
	TAP_RUN(test_batch_async);
	TAP_RUN(test_corrupt_slice);
	TAP_RUN(test_truncated_stream);
	TAP_RUN(test_commit_rejected);
	TAP_RUN(test_sender_killed);
	TAP_RUN(test_receiver_killed);
	TAP_RUN(test_bounds);
	TAP_RUN(test_orphan_stream);
	TAP_RUN(test_sink_placed);
	TAP_RUN(test_sink_failures);
	TAP_RUN(test_agent_sink);
	if (sodium_init() >= 0 && mkdtemp(kdir)) {
		TAP_RUN(test_auth_keys);
		TAP_RUN(test_auth_push);
		TAP_RUN(test_auth_tamper);
		TAP_RUN(test_auth_slice_mac);
		for (const char *const *f = (const char *const[]){ "k1", "k2", "k3", "k4",
				"a1", "a2", "t1", "m1", NULL }; *f; f++) {
			char p[128];

			snprintf(p, sizeof(p), "%s/%s", kdir, *f);
			unlink(p);
		}
		rmdir(kdir);
	}
	free(logged);
	free(src);
	free(dst);
	free(snap);
	return tap_done();
}
