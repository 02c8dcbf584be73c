// SPDX-License-Identifier: GPL-2.0
/*
 * unit_idnd_fedsum.c - federation summaries (ctl/fedsum.c): a sealed
 * summary opens with the exporter's key and gives back every field; it is
 * refused with another key, unsigned, with a signature of other bytes,
 * with a payload changed by one byte, and with each field out of range or
 * of the wrong type, unknown fields, trailing bytes.
 */
#include <errno.h>
#include <sodium.h>

#include "tap.h"
#include "fedsum.h"

static uint8_t pk[32], sk[64], pk2[32], sk2[64];

static void sample(struct fedsum *s)
{
	memset(s, 0, sizeof(*s));
	strcpy(s->domain, "dom-b");
	s->seq = 1700000000000123ULL;
	s->issued_ms = 1700000000000LL;
	s->valid_ms = 2000;
	strcpy(s->ingress4, "10.79.0.1");
	s->n_caps = 2;
	s->caps[0] = (struct fedsum_cap){
		.label = (1001u << 8), .tier = 1, .latency_us = 600,
		.lat = FEDSUM_LAT_INTERACTIVE, .n_reg = 2,
		.reg = { { 1, 2, 250 }, { 3, 1, 900 } },
		.privacy = 0x3, .locality = 0x5, .trust_mask = 0xf, .trust = 3,
	};
	strcpy(s->caps[0].name, "chat-8b");
	s->caps[1] = (struct fedsum_cap){
		.label = (1002u << 8) | 2, .tier = 4, .latency_us = 2000000,
		.lat = FEDSUM_LAT_BATCH, .n_reg = 1, .reg = { { 0, 7, 0 } },
		.privacy = 0x1, .locality = 0x1, .trust_mask = 0x1, .trust = 0,
	};
	strcpy(s->caps[1].name, "summarizer");
	strcpy(s->caps[1].publisher, "acme-models");
}

/* seal s with key, return the envelope text (malloc'd) */
static char *sealed(const struct fedsum *s, const uint8_t *key)
{
	char err[256], *payload = fedsum_encode(s, err, sizeof(err)), *out;
	json_object *env;

	if (!payload) {
		printf("# encode: %s\n", err);
		return NULL;
	}
	env = fedsum_seal(payload, key);
	out = strdup(json_object_to_json_string_ext(env, JSON_C_TO_STRING_PLAIN));
	json_object_put(env);
	free(payload);
	return out;
}

static void test_round_trip(void)
{
	struct fedsum s, back;
	char err[256], *t;

	sample(&s);
	t = sealed(&s, sk);
	if (!ASSERT_TRUE(t, "sealed"))
		return;
	if (!ASSERT_OK(fedsum_open(t, strlen(t), pk, &back, err, sizeof(err)), "opens"))
		printf("# %s\n", err);
	ASSERT_TRUE(!strcmp(back.domain, "dom-b") && back.seq == s.seq &&
		    back.issued_ms == s.issued_ms && back.valid_ms == 2000 &&
		    !strcmp(back.ingress4, "10.79.0.1"), "header fields");
	ASSERT_EQ(back.n_caps, 2, "two capabilities");
	ASSERT_TRUE(!memcmp(&back.caps[0], &s.caps[0], sizeof(s.caps[0])), "cap 0 identical");
	ASSERT_TRUE(!memcmp(&back.caps[1], &s.caps[1], sizeof(s.caps[1])), "cap 1 identical");
	/* an empty summary (everything withdrawn) is a valid one */
	s.n_caps = 0;
	free(t);
	t = sealed(&s, sk);
	ASSERT_OK(fedsum_open(t, strlen(t), pk, &back, err, sizeof(err)), "empty summary");
	ASSERT_EQ(back.n_caps, 0, "no capability");
	free(t);
}

static void test_signature(void)
{
	struct fedsum s, back;
	char err[256], *t, *p;
	json_object *env;

	sample(&s);
	t = sealed(&s, sk);
	if (!ASSERT_TRUE(t, "sealed"))
		return;
	/* another domain's key */
	ASSERT_EQ(fedsum_open(t, strlen(t), pk2, &back, err, sizeof(err)), -EBADMSG,
		  "wrong key refused");
	ASSERT_TRUE(strstr(err, "does not verify") != NULL, "says the signature does not verify");
	/* one byte of the payload changed: "nodes":2 -> "nodes":3 */
	p = strstr(t, "\\\"nodes\\\":2");
	if (ASSERT_TRUE(p, "payload has nodes 2")) {
		p[strlen("\\\"nodes\\\":")] = '3';
		ASSERT_EQ(fedsum_open(t, strlen(t), pk, &back, err, sizeof(err)), -EBADMSG,
			  "tampered payload refused");
	}
	free(t);
	/* unsigned: no "sig"; an empty one; a signature by the right key over other bytes */
	t = sealed(&s, sk);
	env = json_tokener_parse(t);
	json_object_object_del(env, "sig");
	p = (char *)json_object_to_json_string(env);
	ASSERT_EQ(fedsum_open(p, strlen(p), pk, &back, err, sizeof(err)), -EBADMSG, "unsigned");
	ASSERT_TRUE(strstr(err, "unsigned") != NULL, "says unsigned");
	json_object_object_add(env, "sig", json_object_new_string(""));
	p = (char *)json_object_to_json_string(env);
	ASSERT_EQ(fedsum_open(p, strlen(p), pk, &back, err, sizeof(err)), -EBADMSG, "empty sig");
	json_object_put(env);
	{
		struct fedsum o = s;
		char *t2;
		json_object *e2;

		o.seq++;
		t2 = sealed(&o, sk);
		env = json_tokener_parse(t);
		e2 = json_tokener_parse(t2);
		json_object_object_add(env, "sig", json_object_get(
			json_object_object_get(e2, "sig")));
		p = (char *)json_object_to_json_string(env);
		ASSERT_EQ(fedsum_open(p, strlen(p), pk, &back, err, sizeof(err)), -EBADMSG,
			  "signature of another summary");
		json_object_put(env);
		json_object_put(e2);
		free(t2);
	}
	/* trailing bytes after the envelope, an unknown envelope field */
	{
		size_t n = strlen(t);
		char *x = malloc(n + 8);

		memcpy(x, t, n);
		memcpy(x + n, " {}", 4);
		ASSERT_EQ(fedsum_open(x, n + 3, pk, &back, err, sizeof(err)), -EINVAL,
			  "trailing document");
		free(x);
	}
	env = json_tokener_parse(t);
	json_object_object_add(env, "alg", json_object_new_string("none"));
	p = (char *)json_object_to_json_string(env);
	ASSERT_EQ(fedsum_open(p, strlen(p), pk, &back, err, sizeof(err)), -EINVAL,
		  "unknown envelope field");
	json_object_put(env);
	ASSERT_EQ(fedsum_open("[]", 2, pk, &back, err, sizeof(err)), -EINVAL, "not an object");
	free(t);
}

/* the payload text of s with one substitution, sealed with sk, then opened */
static int open_edited(const struct fedsum *s, const char *from, const char *to, char *err,
		       size_t errlen)
{
	char e2[256], *payload = fedsum_encode(s, e2, sizeof(e2)), *at, *np, *t;
	struct fedsum back;
	json_object *env;
	int r;

	if (!payload)
		return -999;
	at = strstr(payload, from);
	if (!at) {
		printf("# \"%s\" not in the payload\n", from);
		free(payload);
		return -998;
	}
	np = malloc(strlen(payload) + strlen(to) + 1);
	memcpy(np, payload, at - payload);
	strcpy(np + (at - payload), to);
	strcat(np, at + strlen(from));
	env = fedsum_seal(np, sk);
	t = strdup(json_object_to_json_string(env));
	r = fedsum_open(t, strlen(t), pk, &back, err, errlen);
	json_object_put(env);
	free(t);
	free(np);
	free(payload);
	return r;
}

static void test_fields(void)
{
	static const struct {
		const char *from, *to, *why;
	} bad[] = {
		{ "\"domain\":\"dom-b\"", "\"domain\":\"dom b\"", "domain" },
		{ "\"domain\":\"dom-b\"", "\"domain\":7", "domain" },
		{ "\"seq\":1700000000000123", "\"seq\":0", "seq" },
		{ "\"seq\":1700000000000123", "\"seq\":-1", "seq" },
		{ "\"seq\":1700000000000123", "\"seq\":\"1\"", "seq" },
		{ "\"valid_ms\":2000", "\"valid_ms\":5", "valid_ms" },
		{ "\"valid_ms\":2000", "\"valid_ms\":99999999", "valid_ms" },
		{ "\"ingress4\":\"10.79.0.1\"", "\"ingress4\":\"10.79.0\"", "ingress4" },
		{ "\"ingress4\":\"10.79.0.1\"", "\"ingress4\":\"127.0.0.1\"", "ingress4" },
		{ "\"ingress4\":\"10.79.0.1\"", "\"ingress4\":\"224.0.0.1\"", "ingress4" },
		{ "\"cap\":256256", "\"cap\":7", "class 0" },
		{ "\"cap\":256256", "\"cap\":256514", "ascend" },
		{ "\"cap\":256256", "\"cap\":4294967296", "cap" },
		{ "\"name\":\"chat-8b\"", "\"name\":\"\"", "name" },
		{ "\"name\":\"chat-8b\"", "\"name\":\"a\\nb\"", "name" },
		{ "\"tier\":1", "\"tier\":16", "tier" },
		{ "\"latency\":\"interactive\"", "\"latency\":\"fast\"", "latency" },
		{ "\"latency\":\"interactive\"", "\"latency\":\"batch\"", "does not match" },
		{ "\"latency_us\":600", "\"latency_us\":0", "latency_us" },
		{ "\"region\":3", "\"region\":16", "region" },
		{ "\"region\":3", "\"region\":1", "ascend" },
		{ "\"nodes\":2", "\"nodes\":0", "nodes" },
		{ "\"load\":900", "\"load\":1001", "load" },
		{ "\"load\":900", "\"load\":9.5", "integer" },
		{ "\"privacy\":[\"public\",\"tenant\"]", "\"privacy\":[]", "privacy" },
		{ "\"privacy\":[\"public\",\"tenant\"]", "\"privacy\":[\"public\",\"public\"]",
		  "repeated" },
		{ "\"privacy\":[\"public\",\"tenant\"]", "\"privacy\":[\"secret\"]", "unknown name" },
		{ "\"locality\":[\"any\",\"plan\"]", "\"locality\":[\"home\"]", "home" },
		{ "\"trust\":[0,1,2,3]", "\"trust\":[8]", "levels" },
		{ "\"trust\":[0,1,2,3]", "\"trust\":[]", "at least one" },
		{ "\"trust\":3,", "\"trust\":9,", "trust" },
		{ "\"publisher\":\"\"", "\"publisher\":\"a b\"", "publisher" },
		{ "\"regions\":[{", "\"regions\":[{\"extra\":1,", "unknown field" },
		{ "\"idn_fed_summary\":1", "\"idn_fed_summary\":2", "version" },
		{ "\"caps\":[", "\"more\":1,\"caps\":[", "unknown field" },
		{ "{\"idn_fed_summary\"", "[{\"idn_fed_summary\"", "not one JSON object" },
	};
	struct fedsum s;
	char err[256];

	sample(&s);
	if (!ASSERT_OK(open_edited(&s, "\"dom-b\"", "\"dom-b\"", err, sizeof(err)),
		       "unedited payload opens"))
		printf("# %s\n", err);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char tag[160];
		int r;

		err[0] = 0;
		r = open_edited(&s, bad[i].from, bad[i].to, err, sizeof(err));
		snprintf(tag, sizeof(tag), "%s -> %s refused", bad[i].from, bad[i].to);
		ASSERT_EQ(r, -EINVAL, tag);
		snprintf(tag, sizeof(tag), "%s: error names it (%s)", bad[i].to, err);
		ASSERT_TRUE(strstr(err, bad[i].why) != NULL, tag);
	}
	/* what the encoder refuses to sign */
	s.caps[0].reg[0].load = 2000;
	ASSERT_TRUE(!fedsum_encode(&s, err, sizeof(err)), "encoder checks too");
	sample(&s);
	s.n_caps = FEDSUM_MAX_CAPS + 1;
	ASSERT_TRUE(!fedsum_encode(&s, err, sizeof(err)), "too many caps");
}

static void test_lat(void)
{
	ASSERT_EQ(fedsum_lat_of(1), FEDSUM_LAT_INTERACTIVE, "1 us");
	ASSERT_EQ(fedsum_lat_of(50000), FEDSUM_LAT_INTERACTIVE, "50 ms");
	ASSERT_EQ(fedsum_lat_of(50001), FEDSUM_LAT_STANDARD, "50 ms + 1 us");
	ASSERT_EQ(fedsum_lat_of(1000001), FEDSUM_LAT_BATCH, "over 1 s");
}

int main(void)
{
	if (sodium_init() < 0)
		return 1;
	crypto_sign_keypair(pk, sk);
	crypto_sign_keypair(pk2, sk2);
	tap_plan(0);
	TAP_RUN(test_round_trip);
	TAP_RUN(test_signature);
	TAP_RUN(test_fields);
	TAP_RUN(test_lat);
	return tap_done();
}
