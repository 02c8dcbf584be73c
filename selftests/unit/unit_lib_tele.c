// SPDX-License-Identifier: GPL-2.0
/*
 * unit_lib_tele.c - bpf/lib/tele.h in userspace: the dataplane's own
 * SipHash-2-4 against libsodium's (the agent's) and the paper's vectors,
 * and the telemetry MAC check: accept, forged, replayed, a restarted node,
 * a new key generation, an old key's datagram.
 */
#include <stdio.h>
#include <string.h>
#include <arpa/inet.h>
#include <sodium.h>

#include <linux/idn.h>
#include "lib/tele.h"
#include "lib/tap.h"

IDN_ASSERT_ABI();

static const __u8 KEY[16] = { 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15 };

/* every length 0..64 of 00 01 02 ..., under key 00..0f, as the paper's appendix */
static void test_siphash_vs_libsodium(void)
{
	__u8 m[64], ref[8];
	__u64 k0, k1;
	int bad = 0;

	for (int i = 0; i < 64; i++)
		m[i] = i;
	idn_siphash_key(KEY, &k0, &k1);
	for (unsigned int len = 0; len <= 64; len++) {
		crypto_shorthash_siphash24(ref, m, len, KEY);
		if (idn_siphash24(k0, k1, m, len) != idn_le64(ref)) {
			printf("# length %u: %016llx, libsodium %016llx\n", len,
			       (unsigned long long)idn_siphash24(k0, k1, m, len),
			       (unsigned long long)idn_le64(ref));
			bad++;
		}
	}
	ASSERT_EQ(bad, 0, "65 lengths agree with libsodium");
	/* fixed values, independent of either implementation */
	ASSERT_EQ(idn_siphash24(k0, k1, m, 0), 0x726fdb47dd0e0e31ULL, "empty message");
	ASSERT_EQ(idn_siphash24(k0, k1, m, 15), 0xa129ca6149be45e5ULL, "the paper's example");
	ASSERT_EQ(idn_siphash24(k0, k1, m, 8), 0x93f5f5799a932462ULL, "one block");
}

static void tele_mk(struct idn_telemetry *t, __u32 node, __u32 seq, __u32 pending,
		    const __u8 *key, __u32 key_id)
{
	memset(t, 0, sizeof(*t));
	t->magic = htonl(IDN_TELE_MAGIC);
	t->version = IDN_TELE_VERSION;
	t->node = htonl(node);
	t->seq = htonl(seq);
	t->pending_tokens = htonl(pending);
	t->key_id = htonl(key_id);
	/* the agent's way (agent/telemetry.c): libsodium over bytes 0..39 */
	crypto_shorthash_siphash24(t->mac, (const __u8 *)t, IDN_TELE_MAC_OFF, key);
}

/* a version 2 datagram (40 bytes): the MAC at byte 32 over bytes 0..31 */
static void tele_mk_v2(struct idn_telemetry *t, __u32 node, __u32 seq, __u32 pending,
		       const __u8 *key, __u32 key_id)
{
	tele_mk(t, node, seq, pending, key, key_id);
	t->version = IDN_TELE_V2;
	memset((__u8 *)t + IDN_TELE_V2_MAC_OFF, 0, sizeof(*t) - IDN_TELE_V2_MAC_OFF);
	crypto_shorthash_siphash24((__u8 *)t + IDN_TELE_V2_MAC_OFF, (const __u8 *)t,
				   IDN_TELE_V2_MAC_OFF, key);
}

/* what idn_tele_key_put() (ctl/lib/maps.c) writes: a fresh window */
static void key_put(struct idn_tele_key *k, const __u8 *key, __u32 key_id)
{
	memset(k, 0, sizeof(*k));
	idn_siphash_key(key, &k->k0, &k->k1);
	k->key_id = key_id;
	k->flags = IDN_TKEY_F_VALID;
}

static void test_mac_accept_reject(void)
{
	struct idn_telemetry t, f;
	struct idn_tele_key k = {};
	__u8 other[16];

	ASSERT_EQ(sizeof(t), 48, "datagram: 48 bytes");
	tele_mk(&t, 7, 100, 500, KEY, 1);
	ASSERT_EQ(idn_tele_check(&t), 0, "well formed");
	ASSERT_EQ(idn_tele_auth(&k, &t), IDN_DROP_TELE_NOKEY, "no key: tele-nokey");
	key_put(&k, KEY, 1);
	ASSERT_EQ(idn_tele_auth(&k, &t), 0, "the node's datagram accepted");
	ASSERT_TRUE((k.flags & IDN_TKEY_F_SEEN) && k.seq == 100, "window at 100");

	/* forged: claims low load; each changed field breaks the MAC */
	f = t;
	f.seq = htonl(101);
	f.pending_tokens = 0;
	ASSERT_EQ(idn_tele_auth(&k, &f), IDN_DROP_TELE_MAC, "changed load: tele-mac");
	f = t;
	f.seq = htonl(101);
	f.mac[7] ^= 1;
	ASSERT_EQ(idn_tele_auth(&k, &f), IDN_DROP_TELE_MAC, "one MAC bit: tele-mac");
	memcpy(other, KEY, 16);
	other[0] ^= 0x80;
	tele_mk(&f, 7, 101, 0, other, 1);
	ASSERT_EQ(idn_tele_auth(&k, &f), IDN_DROP_TELE_MAC, "another key: tele-mac");
	tele_mk(&f, 7, 101, 0, KEY, 2);
	ASSERT_EQ(idn_tele_auth(&k, &f), IDN_DROP_TELE_MAC, "another generation: tele-mac");
	ASSERT_EQ(k.seq, 100, "nothing rejected moved the window");

	/* replays */
	ASSERT_EQ(idn_tele_auth(&k, &t), IDN_DROP_TELE_REPLAY, "the same datagram: tele-replay");
	tele_mk(&f, 7, 99, 0, KEY, 1);
	ASSERT_EQ(idn_tele_auth(&k, &f), IDN_DROP_TELE_REPLAY, "an older one: tele-replay");
	tele_mk(&f, 7, 101, 0, KEY, 1);
	ASSERT_EQ(idn_tele_auth(&k, &f), 0, "the next one");
	/* serial-number order: the sequence wraps */
	k.seq = 0xfffffff0;
	tele_mk(&f, 7, 5, 0, KEY, 1);
	ASSERT_EQ(idn_tele_auth(&k, &f), 0, "wrapped past 2^32");

	/* the admitted work is under the MAC too */
	tele_mk(&f, 7, 6, 0, KEY, 1);
	f.admit_reqs = htons(1);
	ASSERT_EQ(idn_tele_auth(&k, &f), IDN_DROP_TELE_MAC, "changed admitted work: tele-mac");
}

/*
 * Version 2 (40 bytes, no admitted work) is still accepted: its MAC sits
 * at byte 32 and covers bytes 0..31; read as version 3 it fails.
 */
static void test_v2(void)
{
	struct idn_telemetry t, f;
	struct idn_tele_key k;
	struct idn_node n = {};

	key_put(&k, KEY, 1);
	tele_mk_v2(&t, 7, 50, 400, KEY, 1);
	ASSERT_EQ(idn_tele_check(&t), 0, "version 2 well formed");
	ASSERT_EQ(idn_tele_len(&t), IDN_TELE_V2_LEN, "40 bytes");
	ASSERT_EQ(idn_tele_auth(&k, &t), 0, "version 2 accepted");
	n.charged_reqs = 3;
	n.others_rate = 99;
	idn_tele_load(&n, &t, 9, 1000);
	ASSERT_TRUE(n.pending_tokens == 400 && n.others_rate == 0 && n.others_span == 0 &&
		    n.charged_reqs == 0 && n.tele_tick == 1000, "applied, no others' rate");
	f = t;
	f.seq = htonl(51);
	f.version = IDN_TELE_VERSION;
	ASSERT_EQ(idn_tele_auth(&k, &f), IDN_DROP_TELE_MAC, "its MAC is no version 3 MAC");
	f.version = 1;
	ASSERT_EQ(idn_tele_check(&f), IDN_DROP_BAD_TELEMETRY, "version 1: bad-telemetry");
	f.version = 4;
	ASSERT_EQ(idn_tele_check(&f), IDN_DROP_BAD_TELEMETRY, "version 4: bad-telemetry");
}

/* version 3's admitted work: inconsistent fields are bad-telemetry */
static void test_admitted_check(void)
{
	struct idn_telemetry t;

	tele_mk(&t, 7, 1, 0, KEY, 1);
	ASSERT_EQ(idn_tele_check(&t), 0, "nothing admitted: fine");
	t.admit_reqs = htons(3);
	ASSERT_EQ(idn_tele_check(&t), IDN_DROP_BAD_TELEMETRY, "requests without a span");
	t.span_ms = htons(100);
	ASSERT_EQ(idn_tele_check(&t), 0, "requests over a span");
	t.admit_tokens = htonl(3000);
	ASSERT_EQ(idn_tele_check(&t), 0, "with their tokens");
	t.admit_reqs = 0;
	ASSERT_EQ(idn_tele_check(&t), IDN_DROP_BAD_TELEMETRY, "tokens without requests");
}

/*
 * A node restarts and starts its sequence lower than before: under the
 * same key that is a replay; with the new key idnd hands it at its
 * registration (a new generation, a fresh window) it gets in at once,
 * and what was recorded under the old key stays out.
 */
static void test_restart(void)
{
	struct idn_telemetry t, old;
	struct idn_tele_key k;
	struct idn_node n = {};
	__u8 key2[16];

	key_put(&k, KEY, 1);
	tele_mk(&old, 7, 5000, 100, KEY, 1);
	ASSERT_EQ(idn_tele_auth(&k, &old), 0, "before the restart");
	tele_mk(&t, 7, 10, 100, KEY, 1);
	ASSERT_EQ(idn_tele_auth(&k, &t), IDN_DROP_TELE_REPLAY, "lower sequence, same key: out");

	randombytes_buf(key2, sizeof(key2));
	key_put(&k, key2, 2);	/* the registration after the restart */
	ASSERT_EQ(idn_tele_auth(&k, &old), IDN_DROP_TELE_MAC, "recorded datagram: old key, out");
	tele_mk(&t, 7, 10, 300, key2, 2);
	ASSERT_EQ(idn_tele_auth(&k, &t), 0, "lower sequence, new key: in");
	idn_tele_load(&n, &t, 9, 0);
	ASSERT_TRUE(n.pending_tokens == 300 && n.tele_seq == 10 && n.tele_s == 9, "applied");
	ASSERT_EQ(idn_tele_auth(&k, &t), IDN_DROP_TELE_REPLAY, "and its window runs from there");
}

int main(void)
{
	if (sodium_init() < 0)
		return 1;
	tap_plan(5);
	TAP_RUN(test_siphash_vs_libsodium);
	TAP_RUN(test_mac_accept_reject);
	TAP_RUN(test_v2);
	TAP_RUN(test_admitted_check);
	TAP_RUN(test_restart);
	return tap_done();
}
