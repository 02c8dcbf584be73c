// SPDX-License-Identifier: GPL-2.0
/*
 * receipt.c - the node's Ed25519 key and signed execution receipts (see
 * receipt.h). The key file holds the 32-byte seed; it is created with
 * O_EXCL at mode 0600 and refused later if group or others can read it.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <json-c/json.h>
#include <sodium.h>

#include "receipt.h"

static void hex(char *out, const uint8_t *b, size_t n)
{
	static const char d[] = "0123456789abcdef";

	for (size_t i = 0; i < n; i++) {
		out[2 * i] = d[b[i] >> 4];
		out[2 * i + 1] = d[b[i] & 15];
	}
	out[2 * n] = 0;
}

/* strict lowercase: one encoding per value */
static int unhex(uint8_t *b, size_t n, const char *s)
{
	if (strlen(s) != 2 * n)
		return -EINVAL;
	for (size_t i = 0; i < 2 * n; i++) {
		char c = s[i];
		int v = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;

		if (v < 0)
			return -EINVAL;
		if (i & 1)
			b[i / 2] |= v;
		else
			b[i / 2] = v << 4;
	}
	return 0;
}

static int mkparent(const char *path)
{
	char d[512], *p;

	if (snprintf(d, sizeof(d), "%s", path) >= (int)sizeof(d))
		return -ENAMETOOLONG;
	for (p = d + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = 0;
		if (mkdir(d, 0700) && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	return 0;
}

int rcpt_key_load(const char *path, struct rcpt_key *k, bool *created)
{
	uint8_t seed[32];
	struct stat st;
	int fd, rc = 0;

	if (sodium_init() < 0)
		return -EIO;
	*created = false;
	fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0 && errno == ENOENT) {
		rc = mkparent(path);
		if (rc)
			return rc;
		fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
		if (fd < 0)
			return -errno;
		randombytes_buf(seed, sizeof(seed));
		if (fchmod(fd, 0600) || write(fd, seed, sizeof(seed)) != sizeof(seed) ||
		    fsync(fd)) {
			rc = errno ? -errno : -EIO;
			close(fd);
			unlink(path);
			return rc;
		}
		close(fd);
		*created = true;
	} else if (fd < 0) {
		return -errno;
	} else {
		if (fstat(fd, &st) || !S_ISREG(st.st_mode)) {
			close(fd);
			return -EINVAL;
		}
		if (st.st_mode & 077) {
			close(fd);
			return -EPERM;
		}
		if (read(fd, seed, sizeof(seed)) != sizeof(seed))
			rc = -EINVAL;
		close(fd);
		if (rc)
			return rc;
	}
	crypto_sign_seed_keypair(k->pk, k->sk, seed);
	sodium_memzero(seed, sizeof(seed));
	hex(k->pk_hex, k->pk, 32);
	return 0;
}

#define JFLAGS (JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE)

char *rcpt_sign(const struct rcpt_key *k, struct json_object *body)
{
	json_object *o;
	const char *b;
	uint8_t sig[64];
	char sh[129];
	char *out;

	json_object_object_add(body, "pubkey", json_object_new_string(k->pk_hex));
	b = json_object_to_json_string_ext(body, JFLAGS);
	crypto_sign_detached(sig, NULL, (const uint8_t *)b, strlen(b), k->sk);
	hex(sh, sig, 64);
	o = json_object_new_object();
	json_object_object_add(o, "idn_receipt", json_object_new_int(1));
	json_object_object_add(o, "alg", json_object_new_string("ed25519"));
	json_object_object_add(o, "pubkey", json_object_new_string(k->pk_hex));
	json_object_object_add(o, "body", json_object_new_string(b));
	json_object_object_add(o, "sig", json_object_new_string(sh));
	out = strdup(json_object_to_json_string_ext(o, JFLAGS));
	json_object_put(o);
	return out;
}

static const char *str_of(json_object *o, const char *k)
{
	json_object *v;

	if (!json_object_object_get_ex(o, k, &v) || !json_object_is_type(v, json_type_string))
		return NULL;
	return json_object_get_string(v);
}

int rcpt_verify(const char *text, size_t len, const char *pin_hex,
		struct json_object **bodyp, char *err, size_t errlen)
{
	struct json_tokener *tok;
	json_object *o = NULL, *body = NULL, *v;
	const char *pk_s, *b, *sig_s, *bpk, *canon;
	uint8_t pk[32], sig[64];
	size_t used;
	int rc = -EINVAL;

	if (bodyp)
		*bodyp = NULL;
	if (sodium_init() < 0)
		return -EIO;
	if (len && text[len - 1] == '\n')
		len--;
	tok = json_tokener_new();
	if (tok)
		o = json_tokener_parse_ex(tok, text, len);
	used = tok ? (size_t)json_tokener_get_parse_end(tok) : 0;
	if (tok)
		json_tokener_free(tok);
	if (!o || used != len || !json_object_is_type(o, json_type_object)) {
		snprintf(err, errlen, "malformed receipt: not one JSON object");
		goto out;
	}
	if (!json_object_object_get_ex(o, "idn_receipt", &v) ||
	    json_object_get_int(v) != 1 || !str_of(o, "alg") || strcmp(str_of(o, "alg"), "ed25519")) {
		snprintf(err, errlen, "malformed receipt: not an idn_receipt 1 (ed25519)");
		goto out;
	}
	pk_s = str_of(o, "pubkey");
	b = str_of(o, "body");
	sig_s = str_of(o, "sig");
	if (!pk_s || !b || !sig_s || unhex(pk, 32, pk_s) || unhex(sig, 64, sig_s)) {
		snprintf(err, errlen, "malformed receipt: pubkey, body or sig missing or not hex");
		goto out;
	}
	if (crypto_sign_verify_detached(sig, (const uint8_t *)b, strlen(b), pk)) {
		snprintf(err, errlen, "signature check FAILED: the receipt was altered or not "
			 "signed by key %.16s...", pk_s);
		rc = -EBADMSG;
		goto out;
	}
	canon = json_object_to_json_string_ext(o, JFLAGS);
	if (strlen(canon) != len || memcmp(canon, text, len)) {
		snprintf(err, errlen, "receipt encoding altered (signature valid, bytes differ "
			 "from the canonical form)");
		rc = -EBADMSG;
		goto out;
	}
	body = json_tokener_parse(b);
	bpk = body ? str_of(body, "pubkey") : NULL;
	if (!bpk || strcmp(bpk, pk_s)) {
		snprintf(err, errlen, "signed body does not name the signing key");
		rc = -EBADMSG;
		goto out;
	}
	if (pin_hex && strcmp(pin_hex, pk_s)) {
		snprintf(err, errlen, "signed by key %.16s..., expected %.16s...", pk_s, pin_hex);
		rc = -EKEYREJECTED;
		goto out;
	}
	rc = 0;
	snprintf(err, errlen, "ok");
	if (bodyp) {
		*bodyp = body;
		body = NULL;
	}
out:
	json_object_put(body);
	json_object_put(o);
	return rc;
}
