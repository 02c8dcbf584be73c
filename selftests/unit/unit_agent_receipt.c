// SPDX-License-Identifier: GPL-2.0
/*
 * unit_agent_receipt.c - the node key (created 0600, reloaded, refused
 * when readable by others) and signed execution receipts: a receipt
 * verifies, pins to its key, and every single-bit flip anywhere in it is
 * detected.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <json-c/json.h>

#include "receipt.h"
#include "tap.h"

static char dir[] = "/tmp/idn-rcpt-XXXXXX", path[128];
static struct rcpt_key K;

static void test_key(void)
{
	struct rcpt_key k2;
	struct stat st;
	bool created;

	snprintf(path, sizeof(path), "%s/sub/node.key", dir);
	if (!ASSERT_EQ(rcpt_key_load(path, &K, &created), 0, "create"))
		return;
	ASSERT_TRUE(created, "created on first start");
	ASSERT_EQ(stat(path, &st), 0, "stat");
	ASSERT_EQ(st.st_mode & 0777, 0600, "mode 0600");
	ASSERT_EQ(rcpt_key_load(path, &k2, &created), 0, "reload");
	ASSERT_TRUE(!created && !memcmp(k2.pk, K.pk, 32), "same key");
	chmod(path, 0644);
	ASSERT_EQ(rcpt_key_load(path, &k2, &created), -EPERM, "0644 refused");
	chmod(path, 0600);
}

static char *mk(void)
{
	json_object *b = json_object_new_object(), *c = json_object_new_object();
	char *s;

	json_object_object_add(b, "node", json_object_new_int(7));
	json_object_object_add(b, "request", json_object_new_int64(42));
	json_object_object_add(b, "plan_generation", json_object_new_int64(3));
	json_object_object_add(b, "capability", json_object_new_string("llama-8b/v2"));
	json_object_object_add(c, "prompt_tokens", json_object_new_int(2048));
	json_object_object_add(c, "cached_tokens", json_object_new_int(1536));
	json_object_object_add(b, "cache", c);
	json_object_object_add(b, "verdict", json_object_new_string("forward"));
	json_object_object_add(b, "note", json_object_new_string("a/b \"q\" \\ é"));
	s = rcpt_sign(&K, b);
	json_object_put(b);
	return s;
}

static void test_sign_verify(void)
{
	char *s = mk(), err[256];
	json_object *body = NULL, *v;

	if (!ASSERT_TRUE(s != NULL, "sign"))
		return;
	printf("# %s\n", s);
	ASSERT_EQ(rcpt_verify(s, strlen(s), NULL, &body, err, sizeof(err)), 0, err);
	ASSERT_TRUE(body && json_object_object_get_ex(body, "request", &v) &&
		    json_object_get_int(v) == 42, "body parsed");
	json_object_put(body);
	ASSERT_EQ(rcpt_verify(s, strlen(s), K.pk_hex, NULL, err, sizeof(err)), 0, "pinned");
	ASSERT_EQ(rcpt_verify(s, strlen(s),
			      "0000000000000000000000000000000000000000000000000000000000000000",
			      NULL, err, sizeof(err)), -EKEYREJECTED, "other pin");
	free(s);
}

static void test_every_bit_flip(void)
{
	char *s = mk(), err[256];
	size_t n = strlen(s), missed = 0;

	for (size_t i = 0; i < n; i++)
		for (int b = 0; b < 8; b++) {
			s[i] ^= 1 << b;
			if (rcpt_verify(s, n, NULL, NULL, err, sizeof(err)) == 0) {
				if (!missed)
					printf("# undetected: byte %zu bit %d\n", i, b);
				missed++;
			}
			s[i] ^= 1 << b;
		}
	ASSERT_EQ(missed, 0, "every flipped bit detected");
	printf("# %zu bytes x 8 bits flipped, all rejected\n", n);
	free(s);
}

int main(void)
{
	char cmd[160];

	if (!mkdtemp(dir))
		return 1;
	tap_plan(0);
	TAP_RUN(test_key);
	TAP_RUN(test_sign_verify);
	TAP_RUN(test_every_bit_flip);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	if (system(cmd))
		return 1;
	return tap_done();
}
