// SPDX-License-Identifier: GPL-2.0
/*
 * capsig.c - signed capability metadata: the canonical encoding, Ed25519
 * sign/verify (libsodium) and the strict JSON form (see capsig.h).
 *
 * The canonical form (docs/security.md) is ASCII, one "key value" line
 * per field in this fixed order, each ended by LF, no other bytes:
 *
 *   idn-cap-manifest 1
 *   publisher NAME
 *   name NAME
 *   cap LABEL                      decimal, no leading zeros
 *   version N                      decimal
 *   origin TEXT                    may be empty ("origin " then LF)
 *   artifact-sha256 HEX            64 lowercase hex digits
 *   lineage CAP@VER,CAP@VER        parent first; "-" when none
 *   privacy public,tenant          names in enum order; "-" when none
 *   locality any,home,plan         likewise
 *   trust 0,1,2                    ascending; "-" when none
 *
 * Text values are printable ASCII (0x20..0x7e) only, so no value can end
 * a line or start another: the encoding of two different manifests never
 * collides.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sodium.h>

#include "capsig.h"

static const char *const priv_names[] = { "public", "tenant", "confidential", "hw-bound", NULL };
static const char *const loc_names[] = { "any", "home", "plan", NULL };

void capsig_hex(char *out, const uint8_t *b, size_t n)
{
	static const char d[] = "0123456789abcdef";

	for (size_t i = 0; i < n; i++) {
		out[2 * i] = d[b[i] >> 4];
		out[2 * i + 1] = d[b[i] & 15];
	}
	out[2 * n] = 0;
}

int capsig_unhex(uint8_t *b, size_t n, const char *s)
{
	if (!s || strlen(s) != 2 * n)
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

bool capsig_name_ok(const char *s)
{
	size_t n = strlen(s);

	if (!n || n > 63)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
		      (s[i] >= '0' && s[i] <= '9') || s[i] == '.' || s[i] == '_' || s[i] == '-'))
			return false;
	return true;
}

static bool text_ok(const char *s, size_t max)
{
	size_t n = strnlen(s, max);

	if (n >= max)
		return false;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] > 0x7e)
			return false;
	return true;
}

struct out {
	char *p;
	size_t len, at;
	bool full;
};

static void put(struct out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(struct out *o, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (o->full)
		return;
	va_start(ap, fmt);
	n = vsnprintf(o->p + o->at, o->len - o->at, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= o->len - o->at)
		o->full = true;
	else
		o->at += n;
}

static void put_mask(struct out *o, const char *key, unsigned int m, const char *const *names,
		     int n)
{
	bool first = true;

	put(o, "%s ", key);
	for (int i = 0; i < n; i++) {
		if (!(m & (1u << i)))
			continue;
		if (names)
			put(o, "%s%s", first ? "" : ",", names[i]);
		else
			put(o, "%s%d", first ? "" : ",", i);
		first = false;
	}
	put(o, "%s\n", first ? "-" : "");
}

int capsig_canon(const struct capsig_manifest *m, char *buf, size_t len)
{
	struct out o = { .p = buf, .len = len };
	char h[65];

	if (!len)
		return -ENOSPC;
	buf[0] = 0;
	if (!capsig_name_ok(m->publisher) || !m->name[0] || !text_ok(m->name, sizeof(m->name)) ||
	    !text_ok(m->origin, sizeof(m->origin)) || !m->cap ||
	    m->n_lineage < 0 || m->n_lineage > CAPSIG_MAX_LINEAGE ||
	    (m->privacy & ~0xfu) || (m->locality & ~0x7u))
		return -EINVAL;
	capsig_hex(h, m->sha256, 32);
	put(&o, "idn-cap-manifest 1\n");
	put(&o, "publisher %s\n", m->publisher);
	put(&o, "name %s\n", m->name);
	put(&o, "cap %u\n", m->cap);
	put(&o, "version %u\n", m->version);
	put(&o, "origin %s\n", m->origin);
	put(&o, "artifact-sha256 %s\n", h);
	put(&o, "lineage ");
	for (int i = 0; i < m->n_lineage; i++)
		put(&o, "%s%u@%u", i ? "," : "", m->lineage[i].cap, m->lineage[i].version);
	put(&o, "%s\n", m->n_lineage ? "" : "-");
	put_mask(&o, "privacy", m->privacy, priv_names, 4);
	put_mask(&o, "locality", m->locality, loc_names, 3);
	put_mask(&o, "trust", m->trust, NULL, 8);
	if (o.full)
		return -ENOSPC;
	return (int)o.at;
}

int capsig_sign(const struct capsig_manifest *m, const uint8_t sk[64], uint8_t sig[64])
{
	char c[CAPSIG_CANON_MAX];
	int n = capsig_canon(m, c, sizeof(c));

	if (n < 0)
		return n;
	if (sodium_init() < 0)
		return -EIO;
	crypto_sign_detached(sig, NULL, (const uint8_t *)c, n, sk);
	return 0;
}

int capsig_verify(const struct capsig_manifest *m, const uint8_t sig[64], const uint8_t pk[32])
{
	char c[CAPSIG_CANON_MAX];
	int n = capsig_canon(m, c, sizeof(c));

	if (n < 0)
		return n;
	if (sodium_init() < 0)
		return -EIO;
	return crypto_sign_verify_detached(sig, (const uint8_t *)c, n, pk) ? -EBADMSG : 0;
}

static json_object *mask_names(unsigned int m, const char *const *names, int n)
{
	json_object *a = json_object_new_array();

	for (int i = 0; i < n; i++)
		if (m & (1u << i))
			json_object_array_add(a, names ? json_object_new_string(names[i]) :
						       json_object_new_int(i));
	return a;
}

json_object *capsig_to_json(const struct capsig_manifest *m, const uint8_t sig[64])
{
	json_object *o = json_object_new_object(), *a, *s;
	char h[129];

	json_object_object_add(o, "idn_manifest", json_object_new_int(1));
	json_object_object_add(o, "alg", json_object_new_string("ed25519"));
	json_object_object_add(o, "publisher", json_object_new_string(m->publisher));
	json_object_object_add(o, "name", json_object_new_string(m->name));
	json_object_object_add(o, "cap", json_object_new_int64(m->cap));
	json_object_object_add(o, "version", json_object_new_int64(m->version));
	json_object_object_add(o, "origin", json_object_new_string(m->origin));
	capsig_hex(h, m->sha256, 32);
	json_object_object_add(o, "artifact_sha256", json_object_new_string(h));
	a = json_object_new_array();
	for (int i = 0; i < m->n_lineage; i++) {
		json_object *e = json_object_new_object();

		json_object_object_add(e, "cap", json_object_new_int64(m->lineage[i].cap));
		json_object_object_add(e, "version", json_object_new_int64(m->lineage[i].version));
		json_object_array_add(a, e);
	}
	json_object_object_add(o, "lineage", a);
	s = json_object_new_object();
	json_object_object_add(s, "privacy", mask_names(m->privacy, priv_names, 4));
	json_object_object_add(s, "locality", mask_names(m->locality, loc_names, 3));
	json_object_object_add(s, "trust", mask_names(m->trust, NULL, 8));
	json_object_object_add(o, "scope", s);
	if (sig) {
		capsig_hex(h, sig, 64);
		json_object_object_add(o, "sig", json_object_new_string(h));
	}
	return o;
}

#define FAIL(...) (snprintf(err, errlen, __VA_ARGS__), -EINVAL)

static int only(json_object *o, const char *what, const char *const *ok, char *err, size_t errlen)
{
	json_object_object_foreach(o, key, val) {
		bool found = false;

		(void)val;
		for (int i = 0; ok[i]; i++)
			found |= !strcmp(key, ok[i]);
		if (!found)
			return FAIL("manifest: unknown field \"%.64s\" in %s", key, what);
	}
	return 0;
}

static int get_u32(json_object *o, const char *k, uint32_t *v, char *err, size_t errlen)
{
	json_object *x;
	int64_t n;

	if (!json_object_object_get_ex(o, k, &x) || !json_object_is_type(x, json_type_int))
		return FAIL("manifest: field \"%s\": integer required", k);
	n = json_object_get_int64(x);
	if (n < 0 || n > UINT32_MAX)
		return FAIL("manifest: field \"%s\": out of range 0..4294967295", k);
	*v = n;
	return 0;
}

static int get_text(json_object *o, const char *k, char *buf, size_t len, bool req, char *err,
		    size_t errlen)
{
	json_object *x;
	const char *s;

	if (!json_object_object_get_ex(o, k, &x)) {
		if (req)
			return FAIL("manifest: field \"%s\" required", k);
		buf[0] = 0;
		return 0;
	}
	if (!json_object_is_type(x, json_type_string))
		return FAIL("manifest: field \"%s\": string expected", k);
	s = json_object_get_string(x);
	if ((size_t)json_object_get_string_len(x) != strlen(s) || strlen(s) >= len ||
	    !text_ok(s, len))
		return FAIL("manifest: field \"%s\": printable ASCII of at most %zu characters "
			    "expected", k, len - 1);
	strcpy(buf, s);
	return 0;
}

static int get_names(json_object *o, const char *k, const char *const *names, int n,
		     uint8_t *mask, char *err, size_t errlen)
{
	json_object *a;

	*mask = 0;
	if (!json_object_object_get_ex(o, k, &a) || !json_object_is_type(a, json_type_array))
		return FAIL("manifest: field \"scope.%s\": array required", k);
	for (size_t i = 0; i < json_object_array_length(a); i++) {
		json_object *e = json_object_array_get_idx(a, i);
		int v = -1;

		if (names && json_object_is_type(e, json_type_string)) {
			for (int j = 0; j < n; j++)
				if (!strcmp(json_object_get_string(e), names[j]))
					v = j;
		} else if (!names && json_object_is_type(e, json_type_int)) {
			int64_t x = json_object_get_int64(e);

			v = x >= 0 && x < n ? (int)x : -1;
		}
		if (v < 0)
			return FAIL("manifest: field \"scope.%s\": element %zu not allowed", k, i);
		if (*mask & (1u << v))
			return FAIL("manifest: field \"scope.%s\": element %zu repeated", k, i);
		*mask |= 1u << v;
	}
	return 0;
}

int capsig_from_json(json_object *o, struct capsig_manifest *m, uint8_t sig[64], char *err,
		     size_t errlen)
{
	static const char *const top[] = { "idn_manifest", "alg", "publisher", "name", "cap",
		"version", "origin", "artifact_sha256", "lineage", "scope", "sig", NULL };
	static const char *const scope[] = { "privacy", "locality", "trust", NULL };
	static const char *const ref[] = { "cap", "version", NULL };
	json_object *x, *a;
	char buf[130];
	uint32_t v;

	memset(m, 0, sizeof(*m));
	if (!o || !json_object_is_type(o, json_type_object))
		return FAIL("manifest: a JSON object expected");
	if (only(o, "the manifest", top, err, errlen))
		return -EINVAL;
	if (get_u32(o, "idn_manifest", &v, err, errlen) || v != 1)
		return FAIL("manifest: field \"idn_manifest\": 1 expected");
	if (get_text(o, "alg", buf, sizeof(buf), true, err, errlen) || strcmp(buf, "ed25519"))
		return FAIL("manifest: field \"alg\": \"ed25519\" expected");
	if (get_text(o, "publisher", m->publisher, sizeof(m->publisher), true, err, errlen))
		return -EINVAL;
	if (!capsig_name_ok(m->publisher))
		return FAIL("manifest: field \"publisher\": 1..63 of [A-Za-z0-9._-] expected");
	if (get_text(o, "name", m->name, sizeof(m->name), true, err, errlen))
		return -EINVAL;
	if (!m->name[0])
		return FAIL("manifest: field \"name\": must not be empty");
	if (get_u32(o, "cap", &m->cap, err, errlen) || get_u32(o, "version", &m->version, err, errlen))
		return -EINVAL;
	if (!m->cap)
		return FAIL("manifest: field \"cap\": a capability label (not 0) expected");
	if (get_text(o, "origin", m->origin, sizeof(m->origin), false, err, errlen))
		return -EINVAL;
	if (get_text(o, "artifact_sha256", buf, sizeof(buf), true, err, errlen) ||
	    capsig_unhex(m->sha256, 32, buf))
		return FAIL("manifest: field \"artifact_sha256\": 64 lowercase hex digits expected");
	if (json_object_object_get_ex(o, "lineage", &a)) {
		if (!json_object_is_type(a, json_type_array) ||
		    json_object_array_length(a) > CAPSIG_MAX_LINEAGE)
			return FAIL("manifest: field \"lineage\": array of at most %d "
				    "{\"cap\", \"version\"} expected", CAPSIG_MAX_LINEAGE);
		for (size_t i = 0; i < json_object_array_length(a); i++) {
			json_object *e = json_object_array_get_idx(a, i);

			if (!json_object_is_type(e, json_type_object))
				return FAIL("manifest: field \"lineage\": element %zu: object "
					    "expected", i);
			if (only(e, "lineage", ref, err, errlen) ||
			    get_u32(e, "cap", &m->lineage[i].cap, err, errlen) ||
			    get_u32(e, "version", &m->lineage[i].version, err, errlen))
				return -EINVAL;
			if (!m->lineage[i].cap || m->lineage[i].cap == m->cap)
				return FAIL("manifest: field \"lineage\": element %zu: another "
					    "capability's label expected", i);
		}
		m->n_lineage = json_object_array_length(a);
	}
	if (!json_object_object_get_ex(o, "scope", &x) || !json_object_is_type(x, json_type_object))
		return FAIL("manifest: field \"scope\": object required");
	if (only(x, "scope", scope, err, errlen) ||
	    get_names(x, "privacy", priv_names, 4, &m->privacy, err, errlen) ||
	    get_names(x, "locality", loc_names, 3, &m->locality, err, errlen) ||
	    get_names(x, "trust", NULL, 8, &m->trust, err, errlen))
		return -EINVAL;
	if (sig && (get_text(o, "sig", buf, sizeof(buf), true, err, errlen) ||
		    capsig_unhex(sig, 64, buf)))
		return FAIL("manifest: field \"sig\": 128 lowercase hex digits (an Ed25519 "
			    "signature) expected");
	return 0;
}
