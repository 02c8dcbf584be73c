// SPDX-License-Identifier: GPL-2.0
/*
 * fedsum.c - federation summaries: encode, sign, open (verify + strict
 * parse + field checks). See fedsum.h and docs/federation.md.
 *
 * Payload (JSON text, the signed bytes):
 *
 *   {"idn_fed_summary": 1, "domain": NAME, "seq": N, "issued_ms": MS,
 *    "valid_ms": MS, "ingress4": "A.B.C.D",
 *    "caps": [{"cap": LABEL, "name": TEXT, "tier": T,
 *              "latency": "interactive"|"standard"|"batch", "latency_us": US,
 *              "regions": [{"region": R, "nodes": N, "load": PERMILLE}...],
 *              "scope": {"privacy": [...], "locality": [...], "trust": [...]},
 *              "trust": T, "publisher": NAME|""}...]}
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sodium.h>

#include "fedsum.h"
#include "capsig.h"

#define FEDSUM_CTX	"idn-fed-summary 1\n"

static const char *const lat_names[] = { "interactive", "standard", "batch", NULL };
static const char *const priv_names[] = { "public", "tenant", "confidential", "hw-bound", NULL };
static const char *const loc_names[] = { "any", "home", "plan", NULL };

const char *fedsum_lat_name(unsigned int lat)
{
	return lat < FEDSUM_LAT__MAX ? lat_names[lat] : "?";
}

uint8_t fedsum_lat_of(uint32_t latency_us)
{
	return latency_us <= 50000 ? FEDSUM_LAT_INTERACTIVE :
	       latency_us <= 1000000 ? FEDSUM_LAT_STANDARD : FEDSUM_LAT_BATCH;
}

static int bad(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static int bad(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

/* printable ASCII without quotes' troubles: 1..max-1 bytes of 0x20..0x7e */
static bool text_ok(const char *s, size_t max, bool empty)
{
	size_t n = strnlen(s, max);

	if (n >= max || (!n && !empty))
		return false;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] > 0x7e)
			return false;
	return true;
}

int fedsum_check(const struct fedsum *s, char *err, size_t errlen)
{
	struct in_addr a;

	if (!capsig_name_ok(s->domain))
		return bad(err, errlen, "domain: 1..63 of A-Z a-z 0-9 . _ - expected");
	if (!s->seq || s->seq > (1ULL << 53))
		return bad(err, errlen, "seq: 1..2^53 expected");
	if (s->issued_ms <= 0 || s->issued_ms > (1LL << 53))
		return bad(err, errlen, "issued_ms: a time in ms since the epoch expected");
	if (s->valid_ms < FEDSUM_VALID_MIN_MS || s->valid_ms > FEDSUM_VALID_MAX_MS)
		return bad(err, errlen, "valid_ms: %d..%d expected", FEDSUM_VALID_MIN_MS,
			   FEDSUM_VALID_MAX_MS);
	if (inet_pton(AF_INET, s->ingress4, &a) != 1 || !a.s_addr || a.s_addr == 0xffffffff ||
	    (ntohl(a.s_addr) >> 24) == 127 || (ntohl(a.s_addr) >> 28) == 0xe)
		return bad(err, errlen, "ingress4: a unicast IPv4 address expected");
	if (s->n_caps < 0 || s->n_caps > FEDSUM_MAX_CAPS)
		return bad(err, errlen, "caps: at most %d", FEDSUM_MAX_CAPS);
	for (int i = 0; i < s->n_caps; i++) {
		const struct fedsum_cap *c = &s->caps[i];

		if (!(c->label >> 8))
			return bad(err, errlen, "caps[%d].cap: class 0 is no capability", i);
		if (i && c->label <= s->caps[i - 1].label)
			return bad(err, errlen, "caps[%d].cap: labels must ascend without repeats", i);
		if (!text_ok(c->name, sizeof(c->name), false))
			return bad(err, errlen, "caps[%d].name: 1..63 printable ASCII characters", i);
		if (c->tier > 15)
			return bad(err, errlen, "caps[%d].tier: 0..15", i);
		if (c->lat >= FEDSUM_LAT__MAX)
			return bad(err, errlen, "caps[%d].latency: unknown class", i);
		if (!c->latency_us || c->latency_us > 60000000)
			return bad(err, errlen, "caps[%d].latency_us: 1..60000000", i);
		if (c->lat != fedsum_lat_of(c->latency_us))
			return bad(err, errlen, "caps[%d].latency: class %s does not match %u us", i,
				   fedsum_lat_name(c->lat), c->latency_us);
		if (c->n_reg < 1 || c->n_reg > FEDSUM_MAX_REGIONS)
			return bad(err, errlen, "caps[%d].regions: 1..%d entries", i,
				   FEDSUM_MAX_REGIONS);
		for (int r = 0; r < c->n_reg; r++) {
			const struct fedsum_region *g = &c->reg[r];

			if (g->region >= FEDSUM_MAX_REGIONS)
				return bad(err, errlen, "caps[%d].regions[%d].region: 0..%d", i, r,
					   FEDSUM_MAX_REGIONS - 1);
			if (r && g->region <= c->reg[r - 1].region)
				return bad(err, errlen, "caps[%d].regions[%d]: regions must ascend "
					   "without repeats", i, r);
			if (!g->nodes || g->nodes > FEDSUM_MAX_NODES)
				return bad(err, errlen, "caps[%d].regions[%d].nodes: 1..%d", i, r,
					   FEDSUM_MAX_NODES);
			if (g->load > 1000)
				return bad(err, errlen, "caps[%d].regions[%d].load: 0..1000 permille",
					   i, r);
		}
		if (!c->privacy || c->privacy > 0xf)
			return bad(err, errlen, "caps[%d].scope.privacy: 1..4 of %s", i,
				   "public, tenant, confidential, hw-bound");
		if (!c->locality || c->locality > 0x7)
			return bad(err, errlen, "caps[%d].scope.locality: 1..3 of any, home, plan", i);
		if (c->locality & 0x2)
			return bad(err, errlen, "caps[%d].scope.locality: \"home\" cannot be "
				   "served by another domain", i);
		if (!c->trust_mask)
			return bad(err, errlen, "caps[%d].scope.trust: at least one level", i);
		if (c->trust > 7)
			return bad(err, errlen, "caps[%d].trust: 0..7", i);
		if (c->publisher[0] && !capsig_name_ok(c->publisher))
			return bad(err, errlen, "caps[%d].publisher: a publisher name or \"\"", i);
	}
	return 0;
}

static json_object *mask_names(unsigned int m, const char *const *names)
{
	json_object *a = json_object_new_array();

	for (int i = 0; names[i]; i++)
		if (m & (1u << i))
			json_object_array_add(a, json_object_new_string(names[i]));
	return a;
}

static json_object *mask_nums(unsigned int m, int n)
{
	json_object *a = json_object_new_array();

	for (int i = 0; i < n; i++)
		if (m & (1u << i))
			json_object_array_add(a, json_object_new_int(i));
	return a;
}

json_object *fedsum_to_json(const struct fedsum *s)
{
	json_object *o = json_object_new_object(), *caps = json_object_new_array();

	json_object_object_add(o, "idn_fed_summary", json_object_new_int(1));
	json_object_object_add(o, "domain", json_object_new_string(s->domain));
	json_object_object_add(o, "seq", json_object_new_int64(s->seq));
	json_object_object_add(o, "issued_ms", json_object_new_int64(s->issued_ms));
	json_object_object_add(o, "valid_ms", json_object_new_int64(s->valid_ms));
	json_object_object_add(o, "ingress4", json_object_new_string(s->ingress4));
	for (int i = 0; i < s->n_caps; i++) {
		const struct fedsum_cap *c = &s->caps[i];
		json_object *x = json_object_new_object(), *regs = json_object_new_array(), *sc;

		json_object_object_add(x, "cap", json_object_new_int64(c->label));
		json_object_object_add(x, "name", json_object_new_string(c->name));
		json_object_object_add(x, "tier", json_object_new_int(c->tier));
		json_object_object_add(x, "latency", json_object_new_string(fedsum_lat_name(c->lat)));
		json_object_object_add(x, "latency_us", json_object_new_int64(c->latency_us));
		for (int r = 0; r < c->n_reg; r++) {
			json_object *g = json_object_new_object();

			json_object_object_add(g, "region", json_object_new_int(c->reg[r].region));
			json_object_object_add(g, "nodes", json_object_new_int(c->reg[r].nodes));
			json_object_object_add(g, "load", json_object_new_int(c->reg[r].load));
			json_object_array_add(regs, g);
		}
		json_object_object_add(x, "regions", regs);
		sc = json_object_new_object();
		json_object_object_add(sc, "privacy", mask_names(c->privacy, priv_names));
		json_object_object_add(sc, "locality", mask_names(c->locality, loc_names));
		json_object_object_add(sc, "trust", mask_nums(c->trust_mask, 8));
		json_object_object_add(x, "scope", sc);
		json_object_object_add(x, "trust", json_object_new_int(c->trust));
		json_object_object_add(x, "publisher", json_object_new_string(c->publisher));
		json_object_array_add(caps, x);
	}
	json_object_object_add(o, "caps", caps);
	return o;
}

char *fedsum_encode(const struct fedsum *s, char *err, size_t errlen)
{
	json_object *o;
	char *out;

	if (fedsum_check(s, err, errlen))
		return NULL;
	o = fedsum_to_json(s);
	out = strdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
	json_object_put(o);
	if (out && strlen(out) > FEDSUM_MAX_BYTES) {
		free(out);
		snprintf(err, errlen, "summary over %d bytes", FEDSUM_MAX_BYTES);
		return NULL;
	}
	if (!out)
		snprintf(err, errlen, "out of memory");
	return out;
}

static void signed_bytes(const char *payload, unsigned char **m, size_t *mlen)
{
	size_t n = strlen(payload), c = strlen(FEDSUM_CTX);

	*m = malloc(c + n);
	if (!*m)
		return;
	memcpy(*m, FEDSUM_CTX, c);
	memcpy(*m + c, payload, n);
	*mlen = c + n;
}

json_object *fedsum_seal(const char *payload, const uint8_t sk[64])
{
	unsigned char *m = NULL, sig[64];
	size_t mlen = 0;
	char h[129];
	json_object *o;

	signed_bytes(payload, &m, &mlen);
	if (!m)
		return NULL;
	crypto_sign_detached(sig, NULL, m, mlen, sk);
	free(m);
	capsig_hex(h, sig, 64);
	o = json_object_new_object();
	json_object_object_add(o, "idn_fed", json_object_new_int(1));
	json_object_object_add(o, "payload", json_object_new_string(payload));
	json_object_object_add(o, "sig", json_object_new_string(h));
	return o;
}

/* ---- strict parse ---- */

static json_object *parse_all(const char *text, size_t len)
{
	struct json_tokener *t = json_tokener_new();
	json_object *o;

	if (!t)
		return NULL;
	o = json_tokener_parse_ex(t, text, (int)len);
	if (o && (json_tokener_get_error(t) != json_tokener_success ||
		  (size_t)json_tokener_get_parse_end(t) != len)) {
		/* trailing bytes: one document only */
		size_t e = json_tokener_get_parse_end(t);

		while (e < len && (text[e] == ' ' || text[e] == '\n' || text[e] == '\r' ||
				   text[e] == '\t'))
			e++;
		if (e != len) {
			json_object_put(o);
			o = NULL;
		}
	}
	json_tokener_free(t);
	return json_object_is_type(o, json_type_object) ? o : (json_object_put(o), NULL);
}

static int only(json_object *o, const char *what, const char *const *ok, char *err,
		size_t errlen)
{
	json_object_object_foreach(o, k, v) {
		int i;

		(void)v;
		for (i = 0; ok[i] && strcmp(ok[i], k); i++)
			;
		if (!ok[i])
			return bad(err, errlen, "%s: unknown field \"%.64s\"", what, k);
	}
	return 0;
}

static int get_u64(json_object *o, const char *what, const char *k, uint64_t max, uint64_t *v,
		   char *err, size_t errlen)
{
	json_object *x;
	int64_t n;

	if (!json_object_object_get_ex(o, k, &x))
		return bad(err, errlen, "%s: missing field \"%s\"", what, k);
	if (!json_object_is_type(x, json_type_int))
		return bad(err, errlen, "%s.%s: an integer expected", what, k);
	errno = 0;
	n = json_object_get_int64(x);
	if (errno || n < 0 || (uint64_t)n > max)
		return bad(err, errlen, "%s.%s: 0..%llu expected", what, k,
			   (unsigned long long)max);
	*v = n;
	return 0;
}

static int get_text(json_object *o, const char *what, const char *k, char *buf, size_t len,
		    char *err, size_t errlen)
{
	json_object *x;
	const char *s;

	if (!json_object_object_get_ex(o, k, &x))
		return bad(err, errlen, "%s: missing field \"%s\"", what, k);
	if (!json_object_is_type(x, json_type_string))
		return bad(err, errlen, "%s.%s: a string expected", what, k);
	s = json_object_get_string(x);
	if ((size_t)json_object_get_string_len(x) >= len || strlen(s) !=
	    (size_t)json_object_get_string_len(x))
		return bad(err, errlen, "%s.%s: at most %zu characters", what, k, len - 1);
	if (!text_ok(s, len, true))
		return bad(err, errlen, "%s.%s: printable ASCII only", what, k);
	strcpy(buf, s);
	return 0;
}

static int get_names(json_object *o, const char *what, const char *k, const char *const *names,
		     uint8_t *mask, char *err, size_t errlen)
{
	json_object *a;

	*mask = 0;
	if (!json_object_object_get_ex(o, k, &a) || !json_object_is_type(a, json_type_array))
		return bad(err, errlen, "%s.%s: an array expected", what, k);
	for (size_t i = 0; i < json_object_array_length(a); i++) {
		json_object *x = json_object_array_get_idx(a, i);
		int n;

		if (names) {
			if (!json_object_is_type(x, json_type_string))
				return bad(err, errlen, "%s.%s: names expected", what, k);
			for (n = 0; names[n] && strcmp(names[n], json_object_get_string(x)); n++)
				;
			if (!names[n])
				return bad(err, errlen, "%s.%s: unknown name \"%.32s\"", what, k,
					   json_object_get_string(x));
		} else {
			if (!json_object_is_type(x, json_type_int))
				return bad(err, errlen, "%s.%s: levels 0..7 expected", what, k);
			n = json_object_get_int(x);
			if (n < 0 || n > 7)
				return bad(err, errlen, "%s.%s: levels 0..7 expected", what, k);
		}
		if (*mask & (1u << n))
			return bad(err, errlen, "%s.%s: repeated entry", what, k);
		*mask |= 1u << n;
	}
	return 0;
}

#define TRY(x) do { int __e = (x); if (__e) return __e; } while (0)

static int cap_parse(json_object *o, int i, struct fedsum_cap *c, char *err, size_t errlen)
{
	static const char *const ok[] = { "cap", "name", "tier", "latency", "latency_us",
		"regions", "scope", "trust", "publisher", NULL };
	static const char *const sok[] = { "privacy", "locality", "trust", NULL };
	static const char *const rok[] = { "region", "nodes", "load", NULL };
	char what[64], lat[16];
	json_object *a, *sc;
	uint64_t v;
	int n;

	snprintf(what, sizeof(what), "caps[%d]", i);
	if (!json_object_is_type(o, json_type_object))
		return bad(err, errlen, "%s: an object expected", what);
	TRY(only(o, what, ok, err, errlen));
	TRY(get_u64(o, what, "cap", UINT32_MAX, &v, err, errlen));
	c->label = v;
	TRY(get_text(o, what, "name", c->name, sizeof(c->name), err, errlen));
	TRY(get_u64(o, what, "tier", 15, &v, err, errlen));
	c->tier = v;
	TRY(get_text(o, what, "latency", lat, sizeof(lat), err, errlen));
	for (n = 0; lat_names[n] && strcmp(lat_names[n], lat); n++)
		;
	if (!lat_names[n])
		return bad(err, errlen, "%s.latency: interactive, standard or batch", what);
	c->lat = n;
	TRY(get_u64(o, what, "latency_us", 60000000, &v, err, errlen));
	c->latency_us = v;
	if (!json_object_object_get_ex(o, "regions", &a) || !json_object_is_type(a, json_type_array))
		return bad(err, errlen, "%s.regions: an array expected", what);
	if (json_object_array_length(a) > FEDSUM_MAX_REGIONS)
		return bad(err, errlen, "%s.regions: at most %d", what, FEDSUM_MAX_REGIONS);
	c->n_reg = json_object_array_length(a);
	for (int r = 0; r < c->n_reg; r++) {
		json_object *g = json_object_array_get_idx(a, r);
		char w2[96];

		snprintf(w2, sizeof(w2), "%s.regions[%d]", what, r);
		if (!json_object_is_type(g, json_type_object))
			return bad(err, errlen, "%s: an object expected", w2);
		TRY(only(g, w2, rok, err, errlen));
		TRY(get_u64(g, w2, "region", 255, &v, err, errlen));
		c->reg[r].region = v;
		TRY(get_u64(g, w2, "nodes", 65535, &v, err, errlen));
		c->reg[r].nodes = v;
		TRY(get_u64(g, w2, "load", 65535, &v, err, errlen));
		c->reg[r].load = v;
	}
	if (!json_object_object_get_ex(o, "scope", &sc) || !json_object_is_type(sc, json_type_object))
		return bad(err, errlen, "%s.scope: an object expected", what);
	snprintf(what, sizeof(what), "caps[%d].scope", i);
	TRY(only(sc, what, sok, err, errlen));
	TRY(get_names(sc, what, "privacy", priv_names, &c->privacy, err, errlen));
	TRY(get_names(sc, what, "locality", loc_names, &c->locality, err, errlen));
	TRY(get_names(sc, what, "trust", NULL, &c->trust_mask, err, errlen));
	snprintf(what, sizeof(what), "caps[%d]", i);
	TRY(get_u64(o, what, "trust", 7, &v, err, errlen));
	c->trust = v;
	TRY(get_text(o, what, "publisher", c->publisher, sizeof(c->publisher), err, errlen));
	return 0;
}

static int payload_parse(json_object *o, struct fedsum *s, char *err, size_t errlen)
{
	static const char *const ok[] = { "idn_fed_summary", "domain", "seq", "issued_ms",
		"valid_ms", "ingress4", "caps", NULL };
	json_object *a;
	uint64_t v;

	memset(s, 0, sizeof(*s));
	TRY(only(o, "summary", ok, err, errlen));
	TRY(get_u64(o, "summary", "idn_fed_summary", 255, &v, err, errlen));
	if (v != 1)
		return bad(err, errlen, "summary.idn_fed_summary: version 1 expected");
	TRY(get_text(o, "summary", "domain", s->domain, sizeof(s->domain), err, errlen));
	TRY(get_u64(o, "summary", "seq", 1ULL << 53, &s->seq, err, errlen));
	TRY(get_u64(o, "summary", "issued_ms", 1ULL << 53, &v, err, errlen));
	s->issued_ms = v;
	TRY(get_u64(o, "summary", "valid_ms", FEDSUM_VALID_MAX_MS, &v, err, errlen));
	s->valid_ms = v;
	TRY(get_text(o, "summary", "ingress4", s->ingress4, sizeof(s->ingress4), err, errlen));
	if (!json_object_object_get_ex(o, "caps", &a) || !json_object_is_type(a, json_type_array))
		return bad(err, errlen, "summary.caps: an array expected");
	if (json_object_array_length(a) > FEDSUM_MAX_CAPS)
		return bad(err, errlen, "summary.caps: at most %d", FEDSUM_MAX_CAPS);
	s->n_caps = json_object_array_length(a);
	for (int i = 0; i < s->n_caps; i++)
		TRY(cap_parse(json_object_array_get_idx(a, i), i, &s->caps[i], err, errlen));
	return fedsum_check(s, err, errlen);
}

int fedsum_open(const char *text, size_t len, const uint8_t pk[32], struct fedsum *s,
		char *err, size_t errlen)
{
	static const char *const ok[] = { "idn_fed", "payload", "sig", NULL };
	json_object *env, *x, *p;
	unsigned char *m = NULL;
	uint8_t sig[64];
	size_t mlen = 0;
	const char *payload;
	int e;

	if (len > FEDSUM_MAX_BYTES * 2 + 1024)
		return bad(err, errlen, "envelope over %d bytes", FEDSUM_MAX_BYTES * 2 + 1024);
	env = parse_all(text, len);
	if (!env)
		return bad(err, errlen, "envelope: not one JSON object");
	e = only(env, "envelope", ok, err, errlen);
	if (e)
		goto out;
	if (!json_object_object_get_ex(env, "idn_fed", &x) || !json_object_is_type(x, json_type_int) ||
	    json_object_get_int64(x) != 1) {
		e = bad(err, errlen, "envelope.idn_fed: version 1 expected");
		goto out;
	}
	if (!json_object_object_get_ex(env, "payload", &x) ||
	    !json_object_is_type(x, json_type_string) ||
	    strlen(json_object_get_string(x)) != (size_t)json_object_get_string_len(x) ||
	    json_object_get_string_len(x) > FEDSUM_MAX_BYTES) {
		e = bad(err, errlen, "envelope.payload: a string of at most %d bytes expected",
			FEDSUM_MAX_BYTES);
		goto out;
	}
	payload = json_object_get_string(x);
	if (!json_object_object_get_ex(env, "sig", &x) || !json_object_is_type(x, json_type_string) ||
	    capsig_unhex(sig, 64, json_object_get_string(x))) {
		snprintf(err, errlen, "unsigned: envelope.sig (128 lowercase hex) missing or "
			 "malformed");
		e = -EBADMSG;
		goto out;
	}
	signed_bytes(payload, &m, &mlen);
	if (!m) {
		e = bad(err, errlen, "out of memory");
		goto out;
	}
	if (crypto_sign_verify_detached(sig, m, mlen, pk)) {
		snprintf(err, errlen, "signature does not verify with the peer's key");
		e = -EBADMSG;
		goto out;
	}
	p = parse_all(payload, strlen(payload));
	if (!p) {
		e = bad(err, errlen, "payload: not one JSON object");
		goto out;
	}
	e = payload_parse(p, s, err, errlen);
	json_object_put(p);
out:
	free(m);
	json_object_put(env);
	return e;
}
