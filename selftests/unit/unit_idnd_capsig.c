// SPDX-License-Identifier: GPL-2.0
/*
 * unit_idnd_capsig.c - signed capability metadata (ctl/capsig.c): the
 * canonical encoding byte for byte, sign/verify, and refusal of a
 * tampered field, a wrong key, a truncated or altered signature and
 * malformed manifests; the JSON form round-trips.
 */
#include <errno.h>
#include <sodium.h>

#include "tap.h"
#include "capsig.h"

static void sample(struct capsig_manifest *m)
{
	memset(m, 0, sizeof(*m));
	strcpy(m->publisher, "acme-models");
	strcpy(m->name, "llama-8b-instruct");
	m->cap = (7u << 8) | 1;
	m->version = 3;
	strcpy(m->origin, "https://models.example/llama-8b@3");
	for (int i = 0; i < 32; i++)
		m->sha256[i] = i * 7;
	m->lineage[0] = (struct capsig_ref){ 7u << 8, 2 };
	m->lineage[1] = (struct capsig_ref){ 5u << 8, 9 };
	m->n_lineage = 2;
	m->privacy = 0x3;		/* public, tenant */
	m->locality = 0x5;		/* any, plan */
	m->trust = 0xf0;		/* classes of minimum trust 4..7 */
}

static void test_canon_exact(void)
{
	struct capsig_manifest m;
	char buf[CAPSIG_CANON_MAX];
	const char *want =
		"idn-cap-manifest 1\n"
		"publisher acme-models\n"
		"name llama-8b-instruct\n"
		"cap 1793\n"
		"version 3\n"
		"origin https://models.example/llama-8b@3\n"
		"artifact-sha256 00070e151c232a31383f464d545b626970777e858c939aa1a8afb6bdc4cbd2d9\n"
		"lineage 1792@2,1280@9\n"
		"privacy public,tenant\n"
		"locality any,plan\n"
		"trust 4,5,6,7\n";
	int n;

	sample(&m);
	n = capsig_canon(&m, buf, sizeof(buf));
	if (!ASSERT_EQ(n, (long long)strlen(want), "canonical length"))
		printf("# got:\n%s", buf);
	ASSERT_TRUE(!strcmp(buf, want), "canonical bytes");
	/* empty sets and no lineage: "-" */
	m.n_lineage = 0;
	m.privacy = m.locality = m.trust = 0;
	m.origin[0] = 0;
	n = capsig_canon(&m, buf, sizeof(buf));
	ASSERT_TRUE(n > 0 && strstr(buf, "\norigin \nartifact") && strstr(buf, "\nlineage -\n") &&
		    strstr(buf, "\nprivacy -\nlocality -\ntrust -\n"), "empty values");
	/* too small a buffer: -ENOSPC, not a cut encoding */
	ASSERT_EQ(capsig_canon(&m, buf, 40), -ENOSPC, "short buffer");
	/* a line break in a text value cannot be encoded */
	strcpy(m.origin, "a\nversion 9");
	ASSERT_EQ(capsig_canon(&m, buf, sizeof(buf)), -EINVAL, "newline in origin");
	sample(&m);
	strcpy(m.publisher, "bad name");
	ASSERT_EQ(capsig_canon(&m, buf, sizeof(buf)), -EINVAL, "publisher charset");
}

static void test_sign_verify(void)
{
	uint8_t pk[32], sk[64], pk2[32], sk2[64], sig[64], bad[64];
	struct capsig_manifest m, t;

	if (!ASSERT_TRUE(sodium_init() >= 0, "sodium"))
		return;
	crypto_sign_keypair(pk, sk);
	crypto_sign_keypair(pk2, sk2);
	sample(&m);
	if (!ASSERT_EQ(capsig_sign(&m, sk, sig), 0, "sign"))
		return;
	ASSERT_EQ(capsig_verify(&m, sig, pk), 0, "verifies with the publisher's key");
	ASSERT_EQ(capsig_verify(&m, sig, pk2), -EBADMSG, "wrong key refused");
	/* every signed field, tampered alone, breaks the signature */
	t = m; t.version = 4;
	ASSERT_EQ(capsig_verify(&t, sig, pk), -EBADMSG, "tampered version");
	t = m; t.cap ^= 1;
	ASSERT_EQ(capsig_verify(&t, sig, pk), -EBADMSG, "tampered cap");
	t = m; t.sha256[31] ^= 1;
	ASSERT_EQ(capsig_verify(&t, sig, pk), -EBADMSG, "tampered digest");
	t = m; t.privacy |= 1u << 2;
	ASSERT_EQ(capsig_verify(&t, sig, pk), -EBADMSG, "widened privacy scope");
	t = m; t.trust |= 1;
	ASSERT_EQ(capsig_verify(&t, sig, pk), -EBADMSG, "widened trust scope");
	t = m; t.lineage[1].version = 10;
	ASSERT_EQ(capsig_verify(&t, sig, pk), -EBADMSG, "tampered lineage");
	t = m; t.n_lineage = 1;
	ASSERT_EQ(capsig_verify(&t, sig, pk), -EBADMSG, "lineage cut short");
	t = m; strcpy(t.origin, "https://evil.example/");
	ASSERT_EQ(capsig_verify(&t, sig, pk), -EBADMSG, "tampered origin");
	t = m; strcpy(t.publisher, "acme-model");
	ASSERT_EQ(capsig_verify(&t, sig, pk), -EBADMSG, "tampered publisher");
	memcpy(bad, sig, 64);
	bad[10] ^= 0x40;
	ASSERT_EQ(capsig_verify(&m, bad, pk), -EBADMSG, "altered signature");
	/* a signature by another key over the same manifest */
	capsig_sign(&m, sk2, bad);
	ASSERT_EQ(capsig_verify(&m, bad, pk), -EBADMSG, "signed by an untrusted key");
	ASSERT_EQ(capsig_verify(&m, bad, pk2), 0, "that key's own check passes");
}

static void test_json(void)
{
	uint8_t pk[32], sk[64], sig[64], sig2[64];
	struct capsig_manifest m, back;
	json_object *o, *x;
	char err[256], h[129];
	const char *s;

	crypto_sign_keypair(pk, sk);
	sample(&m);
	capsig_sign(&m, sk, sig);
	o = capsig_to_json(&m, sig);
	s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY);
	x = json_tokener_parse(s);	/* whitespace and layout are not signed */
	if (!ASSERT_EQ(capsig_from_json(x, &back, sig2, err, sizeof(err)), 0, "parse")) {
		printf("# %s\n", err);
		goto out;
	}
	ASSERT_TRUE(!memcmp(sig, sig2, 64), "signature round-trips");
	ASSERT_EQ(capsig_verify(&back, sig2, pk), 0, "parsed manifest verifies");
	json_object_put(x);
	/* a truncated signature */
	capsig_hex(h, sig, 64);
	h[126] = 0;
	x = json_tokener_parse(s);
	json_object_object_add(x, "sig", json_object_new_string(h));
	ASSERT_EQ(capsig_from_json(x, &back, sig2, err, sizeof(err)), -EINVAL, "truncated sig");
	ASSERT_TRUE(strstr(err, "\"sig\"") != NULL, "names the field");
	/* uppercase hex is another encoding of the same value: refused */
	capsig_hex(h, sig, 64);
	h[0] = h[0] >= 'a' ? h[0] - 32 : h[0];
	h[1] = 'A';
	json_object_object_add(x, "sig", json_object_new_string(h));
	ASSERT_EQ(capsig_from_json(x, &back, sig2, err, sizeof(err)), -EINVAL, "uppercase sig");
	json_object_put(x);
	/* an unsigned extra field cannot ride along */
	x = json_tokener_parse(s);
	json_object_object_add(x, "artifact", json_object_new_string("/evil"));
	ASSERT_EQ(capsig_from_json(x, &back, sig2, err, sizeof(err)), -EINVAL, "unknown field");
	ASSERT_TRUE(strstr(err, "artifact") != NULL, "names it");
	json_object_put(x);
	/* a line break smuggled into a text field */
	x = json_tokener_parse(s);
	json_object_object_add(x, "origin", json_object_new_string("x\nversion 9"));
	ASSERT_EQ(capsig_from_json(x, &back, sig2, err, sizeof(err)), -EINVAL, "newline");
	json_object_put(x);
	/* a repeated scope element, an unknown privacy level */
	x = json_tokener_parse("{\"idn_manifest\":1,\"alg\":\"ed25519\",\"publisher\":\"p\","
			       "\"name\":\"n\",\"cap\":256,\"version\":1,\"artifact_sha256\":"
			       "\"0000000000000000000000000000000000000000000000000000000000000000\","
			       "\"scope\":{\"privacy\":[\"public\",\"public\"],\"locality\":[],"
			       "\"trust\":[]},\"sig\":\"00\"}");
	ASSERT_EQ(capsig_from_json(x, &back, NULL, err, sizeof(err)), -EINVAL, "repeated");
	json_object_put(x);
	x = json_tokener_parse("{\"idn_manifest\":1,\"alg\":\"ed25519\",\"publisher\":\"p\","
			       "\"name\":\"n\",\"cap\":256,\"version\":1,\"artifact_sha256\":"
			       "\"0000000000000000000000000000000000000000000000000000000000000000\","
			       "\"scope\":{\"privacy\":[\"secret\"],\"locality\":[],"
			       "\"trust\":[8]}}");
	ASSERT_EQ(capsig_from_json(x, &back, NULL, err, sizeof(err)), -EINVAL, "unknown level");
	json_object_put(x);
	/* another algorithm */
	x = json_tokener_parse(s);
	json_object_object_add(x, "alg", json_object_new_string("none"));
	ASSERT_EQ(capsig_from_json(x, &back, sig2, err, sizeof(err)), -EINVAL, "alg none");
	json_object_put(x);
	ASSERT_EQ(capsig_from_json(NULL, &back, sig2, err, sizeof(err)), -EINVAL, "NULL");
out:
	json_object_put(o);
}

int main(void)
{
	tap_plan(0);
	TAP_RUN(test_canon_exact);
	TAP_RUN(test_sign_verify);
	TAP_RUN(test_json);
	return tap_done();
}
