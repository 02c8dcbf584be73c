// SPDX-License-Identifier: GPL-2.0
/*
 * fuzz_fedsum.c - a peer's federation summary (ctl/fedsum.c), the bytes
 * idnd takes from another domain:
 *   IDN_FUZZ_FED=envelope  the input is the envelope as received
 *                          (fedsum_open() with a fixed key: the strict
 *                          envelope, the signature check);
 *   IDN_FUZZ_FED=payload   the input is a payload, sealed with the fixed
 *                          key first, so every input reaches the strict
 *                          payload parse and the field checks; an opened
 *                          summary must encode again and open to the same.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sodium.h>

#include "fedsum.h"

static uint8_t pk[32], sk[64];
static int mode = -1;

static void init(void)
{
	const char *m = getenv("IDN_FUZZ_FED");
	uint8_t seed[32] = { 7 };

	if (sodium_init() < 0)
		abort();
	crypto_sign_seed_keypair(pk, sk, seed);
	mode = m && !strcmp(m, "envelope") ? 0 : 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fedsum *s, *t;
	char err[256], *text, *again;
	json_object *env;

	if (mode < 0)
		init();
	if (size > FEDSUM_MAX_BYTES)
		return 0;
	s = calloc(1, sizeof(*s));
	t = calloc(1, sizeof(*t));
	if (!s || !t)
		abort();
	if (mode == 0) {
		fedsum_open((const char *)data, size, pk, s, err, sizeof(err));
		goto out;
	}
	text = malloc(size + 1);
	memcpy(text, data, size);
	text[size] = 0;
	env = fedsum_seal(text, sk);
	free(text);
	if (!env)
		goto out;
	text = strdup(json_object_to_json_string_ext(env, JSON_C_TO_STRING_PLAIN));
	json_object_put(env);
	if (!fedsum_open(text, strlen(text), pk, s, err, sizeof(err))) {
		/* what was accepted is encodable, and opens to the same summary */
		again = fedsum_encode(s, err, sizeof(err));
		if (!again)
			abort();
		env = fedsum_seal(again, sk);
		free(again);
		free(text);
		text = strdup(json_object_to_json_string_ext(env, JSON_C_TO_STRING_PLAIN));
		json_object_put(env);
		if (fedsum_open(text, strlen(text), pk, t, err, sizeof(err)) ||
		    memcmp(s, t, sizeof(*s)))
			abort();
	}
	free(text);
out:
	free(s);
	free(t);
	return 0;
}
