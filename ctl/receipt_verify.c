// SPDX-License-Identifier: GPL-2.0
/*
 * receipt_verify.c - idnctl receipt verify: check execution receipts E
 * signed by node agents (Ed25519, libsodium). Input: a file or "-" with
 * one receipt per line (GET /v1/receipts/ID or GET /v1/receipts of an
 * agent). A receipt is
 *   {"idn_receipt":1,"alg":"ed25519","pubkey":HEX,"body":TEXT,"sig":HEX}
 * (agent/receipt.h); it is valid when the signature over body checks with
 * pubkey, body names the same pubkey, and the line is in its canonical
 * encoding (so any changed byte fails). "key HEX" also pins the signer.
 * Exit 0 all valid, 1 any invalid, 2 usage.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>
#include <sodium.h>

#include "idnctl.h"
#include "json_get.h"

#define RFLAGS (JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE)

static int unhex_lc(uint8_t *b, size_t n, const char *s)
{
	if (strlen(s) != 2 * n)
		return -EINVAL;
	for (size_t i = 0; i < 2 * n; i++) {
		char c = s[i];
		int v = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;

		if (v < 0)
			return -EINVAL;
		b[i / 2] = i & 1 ? b[i / 2] | v : v << 4;
	}
	return 0;
}

/* 0 valid (*body set), else a message in err */
static int verify_line(const char *text, size_t len, const char *pin, json_object **body,
		       char *err, size_t el)
{
	struct json_tokener *tok = json_tokener_new();
	json_object *o = NULL, *v, *b = NULL;
	const char *pk_s, *bs, *sig_s, *bpk;
	uint8_t pk[32], sig[64];
	size_t used = 0;
	int rc = -EBADMSG;

	*body = NULL;
	if (tok) {
		o = json_tokener_parse_ex(tok, text, len);
		used = json_tokener_get_parse_end(tok);
		json_tokener_free(tok);
	}
	if (!o || used != len || !json_object_is_type(o, json_type_object) ||
	    !json_object_object_get_ex(o, "idn_receipt", &v) || json_object_get_int(v) != 1 ||
	    !idn_jstr(o, "alg") || strcmp(idn_jstr(o, "alg"), "ed25519")) {
		snprintf(err, el, "malformed receipt (not an idn_receipt 1 JSON line): tampered "
			 "or truncated");
		goto out;
	}
	pk_s = idn_jstr(o, "pubkey");
	bs = idn_jstr(o, "body");
	sig_s = idn_jstr(o, "sig");
	if (!pk_s || !bs || !sig_s || unhex_lc(pk, 32, pk_s) || unhex_lc(sig, 64, sig_s)) {
		snprintf(err, el, "malformed receipt: pubkey, body or sig missing or not "
			 "lowercase hex");
		goto out;
	}
	if (crypto_sign_verify_detached(sig, (const uint8_t *)bs, strlen(bs), pk)) {
		snprintf(err, el, "signature check FAILED: receipt altered or not signed by "
			 "key %.16s...", pk_s);
		goto out;
	}
	{
		const char *canon = json_object_to_json_string_ext(o, RFLAGS);

		if (strlen(canon) != len || memcmp(canon, text, len)) {
			snprintf(err, el, "receipt bytes altered (not the canonical encoding)");
			goto out;
		}
	}
	b = json_tokener_parse(bs);
	bpk = b ? idn_jstr(b, "pubkey") : NULL;
	if (!bpk || strcmp(bpk, pk_s)) {
		snprintf(err, el, "signed body does not name the signing key");
		goto out;
	}
	if (pin && strcmp(pin, pk_s)) {
		snprintf(err, el, "signed by key %.16s..., not the expected %.16s...", pk_s, pin);
		goto out;
	}
	*body = b;
	b = NULL;
	rc = 0;
out:
	json_object_put(b);
	json_object_put(o);
	return rc;
}

static char *slurp(const char *path, size_t *len)
{
	FILE *f = strcmp(path, "-") ? fopen(path, "rb") : stdin;
	size_t cap = 4096, n = 0;
	char *buf;

	if (!f)
		return NULL;
	buf = malloc(cap);
	while (buf) {
		size_t r = fread(buf + n, 1, cap - n - 1, f);

		n += r;
		if (n + 1 < cap)
			break;
		if (cap >= (64U << 20)) {
			free(buf);
			buf = NULL;
			errno = EFBIG;
			break;
		}
		cap *= 2;
		char *nb = realloc(buf, cap);

		if (!nb) {
			free(buf);
			buf = NULL;
		}
		buf = nb;
	}
	if (f != stdin)
		fclose(f);
	if (buf) {
		buf[n] = 0;
		*len = n;
	}
	return buf;
}

int do_receipt_verify(int argc, char **argv)
{
	const char *path = NULL, *pin = NULL;
	json_object *all = NULL;
	unsigned int nok = 0, nbad = 0, lineno = 0;
	size_t len;
	char *buf, *p, *nl, err[256], first_err[320] = "";
	uint8_t tmp[32];

	while (argc > 0) {
		if (matches(*argv, "key")) {
			NEXT_ARG();
			if (pin)
				return duparg("key");
			if (unhex_lc(tmp, 32, *argv))
				return usage_error("key: 64 lowercase hex digits expected "
						   "(GET /v1/agent/key of the agent)");
			pin = *argv;
		} else if (!path) {
			path = *argv;
		} else {
			return usage_error("unknown argument \"%s\", try \"idnctl receipt help\".",
					   *argv);
		}
		argc--;
		argv++;
	}
	if (!path)
		return usage_error("receipt verify: FILE or - expected");
	if (sodium_init() < 0)
		return runtime_error("libsodium initialisation failed");
	buf = slurp(path, &len);
	if (!buf)
		return runtime_error("%s: %s", path, strerror(errno));
	if (G.json)
		all = json_object_new_array();
	for (p = buf; p < buf + len; p = nl + 1) {
		json_object *body = NULL, *v;
		size_t l;

		nl = memchr(p, '\n', buf + len - p);
		if (!nl)
			nl = buf + len;
		l = nl - p;
		lineno++;
		if (!l)
			continue;
		if (verify_line(p, l, pin, &body, err, sizeof(err))) {
			nbad++;
			if (!first_err[0])
				snprintf(first_err, sizeof(first_err), "line %u: %s", lineno, err);
			if (all) {
				v = json_object_new_object();
				json_object_object_add(v, "valid", json_object_new_boolean(0));
				json_object_object_add(v, "error", json_object_new_string(err));
				json_object_array_add(all, v);
			}
			continue;
		}
		nok++;
		if (all) {
			v = json_object_new_object();
			json_object_object_add(v, "valid", json_object_new_boolean(1));
			json_object_object_add(v, "receipt", json_object_get(body));
			json_object_array_add(all, v);
		} else {
			json_object *n = NULL, *r = NULL, *vd = NULL, *pd = NULL, *x;
			char stage[160] = "";

			json_object_object_get_ex(body, "node", &n);
			json_object_object_get_ex(body, "request", &r);
			json_object_object_get_ex(body, "verdict", &vd);
			/* a stage of a two-stage (P/D) request: which, and the other one */
			if (json_object_object_get_ex(body, "pd", &pd) &&
			    json_object_is_type(pd, json_type_object) && idn_jstr(pd, "stage")) {
				const char *st = idn_jstr(pd, "stage");
				bool dec = !strcmp(st, "decode");
				long long on = -1, orq = -1;

				if (json_object_object_get_ex(pd, dec ? "prefill_node" : "decode_node",
							      &x))
					on = json_object_get_int64(x);
				if (json_object_object_get_ex(pd, dec ? "prefill_request" :
							      !strcmp(st, "colocated") ?
							      "prefill_request" : "decode_request", &x))
					orq = json_object_get_int64(x);
				snprintf(stage, sizeof(stage), ", P/D stage %s%s%.40s", st,
					 idn_jstr(pd, "outcome") ? " -> " : "",
					 idn_jstr(pd, "outcome") ? idn_jstr(pd, "outcome") : "");
				if (on >= 0 && orq >= 0 && !strcmp(st, "colocated"))
					snprintf(stage + strlen(stage), sizeof(stage) - strlen(stage),
						 " (prefill request %lld; decode node %lld)", orq, on);
				else if (on >= 0 && orq >= 0)
					snprintf(stage + strlen(stage), sizeof(stage) - strlen(stage),
						 " (%s: node %lld request %lld)",
						 dec ? "prefill" : "decode", on, orq);
				else if (on >= 0)
					snprintf(stage + strlen(stage), sizeof(stage) - strlen(stage),
						 " (%s node %lld)", dec ? "prefill" : "decode", on);
			}
			printf("receipt OK: node %s request %s verdict %s%s, signed by ed25519 %s\n",
			       n ? json_object_to_json_string(n) : "?",
			       r ? json_object_to_json_string(r) : "?",
			       vd ? json_object_get_string(vd) : "?", stage, idn_jstr(body, "pubkey"));
		}
		json_object_put(body);
	}
	free(buf);
	if (!nok && !nbad) {
		json_object_put(all);
		return runtime_error("%s: no receipt in the input", path);
	}
	if (nbad) {
		if (all) {
			/* the errors are in the array; stdout stays one JSON document */
			puts(json_object_to_json_string_ext(all, G.pretty ?
				JSON_C_TO_STRING_PRETTY : JSON_C_TO_STRING_PLAIN));
			json_object_put(all);
			fprintf(stderr, "idnctl: receipt verify: %u of %u INVALID (%s)\n", nbad,
				nok + nbad, first_err);
			return EXIT_FAIL;
		}
		json_object_put(all);
		return runtime_error("receipt verify: %u of %u INVALID: %s", nbad, nok + nbad,
				     first_err);
	}
	if (all) {
		puts(json_object_to_json_string_ext(all, G.pretty ? JSON_C_TO_STRING_PRETTY :
						    JSON_C_TO_STRING_PLAIN));
		json_object_put(all);
	}
	return EXIT_OK;
}
