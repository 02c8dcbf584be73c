// SPDX-License-Identifier: GPL-2.0
/*
 * model.c - the controller's objects: strict JSON validation of
 * capability descriptors (C) and node resource profiles (R), the
 * registry in memory, placement from the registry (placement.h), and the
 * plan compiler that turns placement + live node state into the
 * dataplane's node table and plan generations (idn_plan_commit()).
 *
 * Callers hold D.lock. Validation rejects unknown fields, wrong types
 * and out-of-range values with a message naming the field; nothing is
 * changed on a rejected request.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>

#include "idnd.h"
#include "orders.h"
#include "fed.h"
#include "audit.h"

#define ERR(...) ({ snprintf(err, errlen, __VA_ARGS__); -EINVAL; })

static int only_fields(json_object *o, const char *what, const char *const *ok,
		       char *err, size_t errlen)
{
	if (!json_object_is_type(o, json_type_object))
		return ERR("%s: expected a JSON object", what);
	json_object_object_foreach(o, key, val) {
		bool found = false;

		(void)val;
		for (int i = 0; ok[i]; i++)
			if (!strcmp(key, ok[i]))
				found = true;
		if (!found)
			return ERR("%s: unknown field \"%.64s\"", what, key);
	}
	return 0;
}

static int get_uint(json_object *o, const char *key, uint64_t max, bool req, uint32_t *out,
		    char *err, size_t errlen)
{
	json_object *v;
	int64_t x;

	if (!json_object_object_get_ex(o, key, &v)) {
		if (req)
			return ERR("missing field \"%s\"", key);
		return 0;
	}
	if (!json_object_is_type(v, json_type_int))
		return ERR("field \"%s\": expected an integer", key);
	errno = 0;
	x = json_object_get_int64(v);
	if (errno || x < 0 || (uint64_t)x > max)
		return ERR("field \"%s\": out of range 0..%llu", key, (unsigned long long)max);
	*out = (uint32_t)x;
	return 0;
}

static int get_num(json_object *o, const char *key, double min, double max, bool req,
		   double *out, char *err, size_t errlen)
{
	json_object *v;
	double x;

	if (!json_object_object_get_ex(o, key, &v)) {
		if (req)
			return ERR("missing field \"%s\"", key);
		return 0;
	}
	if (!json_object_is_type(v, json_type_int) && !json_object_is_type(v, json_type_double))
		return ERR("field \"%s\": expected a number", key);
	x = json_object_get_double(v);
	if (!isfinite(x) || x < min || x > max)
		return ERR("field \"%s\": out of range %g..%g", key, min, max);
	*out = x;
	return 0;
}

/* Well-formed UTF-8 (RFC 3629: shortest form, no surrogates, at most U+10FFFF)? */
static bool utf8_valid(const unsigned char *s, size_t n)
{
	for (size_t i = 0; i < n;) {
		unsigned char c = s[i];
		uint32_t cp;
		int k;

		if (c < 0x80) {
			i++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf)
			k = 1, cp = c & 0x1f;
		else if (c >= 0xe0 && c <= 0xef)
			k = 2, cp = c & 0x0f;
		else if (c >= 0xf0 && c <= 0xf4)
			k = 3, cp = c & 0x07;
		else
			return false;
		for (int j = 1; j <= k; j++) {
			if (i + j >= n || (s[i + j] & 0xc0) != 0x80)
				return false;
			cp = cp << 6 | (s[i + j] & 0x3f);
		}
		if ((k == 2 && cp < 0x800) || (k == 3 && cp < 0x10000) || cp > 0x10ffff ||
		    (cp >= 0xd800 && cp <= 0xdfff))
			return false;
		i += k + 1;
	}
	return true;
}

static int get_str(json_object *o, const char *key, char *buf, size_t len, bool req,
		   char *err, size_t errlen)
{
	json_object *v;
	const char *s;

	if (!json_object_object_get_ex(o, key, &v)) {
		if (req)
			return ERR("missing field \"%s\"", key);
		return 0;
	}
	if (!json_object_is_type(v, json_type_string))
		return ERR("field \"%s\": expected a string", key);
	s = json_object_get_string(v);
	/* "\u0000" decodes to a NUL inside the string: refused, never cut short */
	if ((size_t)json_object_get_string_len(v) != strlen(s))
		return ERR("field \"%s\": NUL character", key);
	if (!utf8_valid((const unsigned char *)s, strlen(s)))
		return ERR("field \"%s\": not valid UTF-8", key);
	if (strlen(s) >= len)
		return ERR("field \"%s\": longer than %zu bytes", key, len - 1);
	for (const char *p = s; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			return ERR("field \"%s\": control characters", key);
	strcpy(buf, s);
	return 0;
}

static int get_bool(json_object *o, const char *key, bool *out, char *err, size_t errlen)
{
	json_object *v;

	if (!json_object_object_get_ex(o, key, &v))
		return 0;
	if (!json_object_is_type(v, json_type_boolean))
		return ERR("field \"%s\": expected true or false", key);
	*out = json_object_get_boolean(v);
	return 0;
}

/* [0, 3, 5] -> bit mask, values 0..max */
static int get_mask(json_object *o, const char *key, unsigned int max, uint32_t *out,
		    char *err, size_t errlen)
{
	json_object *v;

	if (!json_object_object_get_ex(o, key, &v))
		return 0;
	if (!json_object_is_type(v, json_type_array))
		return ERR("field \"%s\": expected an array of integers", key);
	*out = 0;
	for (size_t i = 0; i < json_object_array_length(v); i++) {
		json_object *e = json_object_array_get_idx(v, i);
		int64_t x;

		if (!json_object_is_type(e, json_type_int))
			return ERR("field \"%s\": expected an array of integers", key);
		x = json_object_get_int64(e);
		if (x < 0 || x > max)
			return ERR("field \"%s\": %lld out of range 0..%u", key, (long long)x, max);
		*out |= 1u << x;
	}
	return 0;
}

static int get_enum(json_object *o, const char *key, const char *const *names, uint8_t *out,
		    char *err, size_t errlen)
{
	char buf[32] = "";
	int e = get_str(o, key, buf, sizeof(buf), false, err, errlen);

	if (e || !buf[0])
		return e;
	for (int i = 0; names[i]; i++)
		if (!strcmp(buf, names[i])) {
			*out = i;
			return 0;
		}
	return ERR("field \"%s\": unknown value \"%s\"", key, buf);
}

static const char *const privacy_names[] = { "public", "tenant", "confidential", "hw-bound", NULL };
static const char *const scope_names[] = { "any", "home", "plan", NULL };
static const char *const method_names[] = { "base", "distillation", "quantization", "adapter", NULL };
static const char *const role_names[] = { "both", "prefill", "decode", NULL };

/*
 * A JSON number that prints as people write it: 10 significant digits
 * (0.1 + 0.2 prints 0.3, not json-c's 0.30000000000000004).
 */
json_object *idnd_jnum(double x)
{
	char b[32];

	if (!isfinite(x))
		return json_object_new_double(0);
	snprintf(b, sizeof(b), "%.10g", x);
	return json_object_new_double_s(strtod(b, NULL), b);
}

#define TRY(x) do { int __e = (x); if (__e) return __e; } while (0)
#define OWNER_SET "field \"owner\": set by idnd (the principal that creates it), not by a request"

/* a stored object's "owner" (quota.c): taken out of @o, checked like a name */
static int take_owner(json_object *o, char *owner, char *err, size_t errlen)
{
	owner[0] = 0;
	if (!json_object_is_type(o, json_type_object))
		return ERR("expected a JSON object");
	TRY(get_str(o, "owner", owner, IDND_OWNER_MAX, false, err, errlen));
	json_object_object_del(o, "owner");
	return 0;
}

/* "ADDR:PORT" (IPv4) or "[ADDR]:PORT" (IPv6) -> v; -EINVAL */
static int vip_parse(const char *s, struct d_vip *v)
{
	char buf[INET6_ADDRSTRLEN + 8], *colon, *end;
	const char *a = buf;
	unsigned long port;

	memset(v, 0, sizeof(*v));
	if (strlen(s) >= sizeof(buf))
		return -EINVAL;
	strcpy(buf, s);
	colon = strrchr(buf, ':');
	if (!colon)
		return -EINVAL;
	*colon = 0;
	errno = 0;
	port = strtoul(colon + 1, &end, 10);
	if (errno || *end || !colon[1] || !port || port > 65535)
		return -EINVAL;
	v->port = port;
	if (buf[0] == '[') {
		if (colon[-1] != ']')
			return -EINVAL;
		colon[-1] = 0;
		if (inet_pton(AF_INET6, buf + 1, v->addr.addr) != 1)
			return -EINVAL;
		v->addr.family = IDN_AF_INET6;
		return 0;
	}
	if (inet_pton(AF_INET, a, &v->addr.addr[0]) != 1)
		return -EINVAL;
	v->addr.family = IDN_AF_INET;
	return 0;
}

char *idnd_vip_fmt(const struct d_vip *v, char *buf, size_t len)
{
	char a[INET6_ADDRSTRLEN];

	inet_ntop(v->addr.family == IDN_AF_INET6 ? AF_INET6 : AF_INET, v->addr.addr, a, sizeof(a));
	snprintf(buf, len, v->addr.family == IDN_AF_INET6 ? "[%s]:%u" : "%s:%u", a, v->port);
	return buf;
}

bool idnd_vip_eq(const struct d_vip *v, const struct idn_addr *a, uint16_t port)
{
	return v->addr.family && v->addr.family == a->family && v->port == port &&
	       !memcmp(v->addr.addr, a->addr, a->family == IDN_AF_INET6 ? 16 : 4);
}

int idnd_cap_from_json(json_object *o, struct d_cap *c, char *err, size_t errlen)
{
	static const char *const top[] = { "class", "variant", "name", "tier", "latency_us",
		"context", "version", "security", "resources", "lineage", "realization",
		"prompt_tokens", "slo_ttft_ms", "shed_tier", "wan_ns_per_byte", "pd", "vips", NULL };
	static const char *const sec[] = { "min_trust", "privacy", "scope", "domains", NULL };
	static const char *const res[] = { "mem_gb", "runtimes", NULL };
	static const char *const lin[] = { "parent", "method", NULL };
	static const char *const rea[] = { "artifact", "runtime", "accelerator", NULL };
	uint32_t cls = 0, var = 0, v = 0;
	json_object *sub;
	uint8_t m = 0;

	memset(c, 0, sizeof(*c));
	if (json_object_is_type(o, json_type_object) && json_object_object_get_ex(o, "owner", NULL))
		return ERR(OWNER_SET);
	TRY(only_fields(o, "capability", top, err, errlen));
	TRY(get_uint(o, "class", 0xffffff, true, &cls, err, errlen));
	if (!cls)
		return ERR("field \"class\": must be 1..16777215");
	TRY(get_uint(o, "variant", 255, false, &var, err, errlen));
	c->label = IDN_CAP(cls, var);
	TRY(get_str(o, "name", c->name, sizeof(c->name), true, err, errlen));
	TRY(get_uint(o, "tier", IDN_TIER_MAX, false, &v, err, errlen));
	c->tier = v;
	c->latency_us = 10000;
	TRY(get_uint(o, "latency_us", 60000000, false, &c->latency_us, err, errlen));
	TRY(get_uint(o, "context", 1u << 24, false, &c->context, err, errlen));
	/* routing defaults: docs/architecture.md, "Defaults" */
	c->prompt_tokens = IDND_PROMPT_TOKENS;
	TRY(get_uint(o, "prompt_tokens", 65535, false, &c->prompt_tokens, err, errlen));
	c->slo_ttft_ms = IDND_SLO_TTFT_MS;
	TRY(get_uint(o, "slo_ttft_ms", 3600000, false, &c->slo_ttft_ms, err, errlen));
	v = IDND_SHED_TIER;
	TRY(get_uint(o, "shed_tier", IDN_TIER_MAX + 1, false, &v, err, errlen));
	c->shed_tier = v;
	c->wan_ns_per_byte = IDND_WAN_NS_PER_BYTE;
	TRY(get_uint(o, "wan_ns_per_byte", 100000000, false, &c->wan_ns_per_byte, err, errlen));
	c->version = 1;
	TRY(get_uint(o, "version", UINT32_MAX, false, &c->version, err, errlen));
	TRY(get_bool(o, "pd", &c->pd, err, errlen));
	if (json_object_object_get_ex(o, "vips", &sub)) {
		size_t n;

		if (!json_object_is_type(sub, json_type_array))
			return ERR("field \"vips\": expected an array of \"ADDR:PORT\"");
		n = json_object_array_length(sub);
		if (n > IDND_CAP_VIPS)
			return ERR("field \"vips\": at most %d", IDND_CAP_VIPS);
		for (size_t k = 0; k < n; k++) {
			json_object *e = json_object_array_get_idx(sub, k);

			if (!json_object_is_type(e, json_type_string) ||
			    vip_parse(json_object_get_string(e), &c->vips[k]))
				return ERR("field \"vips\": entry %zu: \"ADDR:PORT\" or "
					   "\"[ADDR6]:PORT\" expected", k);
			for (size_t j = 0; j < k; j++)
				if (idnd_vip_eq(&c->vips[j], &c->vips[k].addr, c->vips[k].port))
					return ERR("field \"vips\": entry %zu repeats entry %zu", k, j);
		}
	}
	if (json_object_object_get_ex(o, "security", &sub)) {
		TRY(only_fields(sub, "security", sec, err, errlen));
		v = 0;
		TRY(get_uint(sub, "min_trust", 7, false, &v, err, errlen));
		c->min_trust = v;
		TRY(get_enum(sub, "privacy", privacy_names, &c->privacy, err, errlen));
		TRY(get_enum(sub, "scope", scope_names, &c->scope, err, errlen));
		TRY(get_mask(sub, "domains", 31, &c->domain_mask, err, errlen));
	}
	if (!json_object_object_get_ex(o, "resources", &sub))
		return ERR("missing field \"resources\"");
	TRY(only_fields(sub, "resources", res, err, errlen));
	TRY(get_num(sub, "mem_gb", 0.001, 1e6, true, &c->mem_gb, err, errlen));
	TRY(get_mask(sub, "runtimes", 31, &c->runtime_mask, err, errlen));
	strcpy(c->method, "base");
	if (json_object_object_get_ex(o, "lineage", &sub)) {
		TRY(only_fields(sub, "lineage", lin, err, errlen));
		TRY(get_uint(sub, "parent", UINT32_MAX, false, &c->parent, err, errlen));
		TRY(get_enum(sub, "method", method_names, &m, err, errlen));
		strcpy(c->method, method_names[m]);
		if (c->parent == c->label)
			return ERR("lineage: a capability cannot derive from itself");
		if (m && !c->parent)
			return ERR("lineage: method \"%s\" needs a parent", c->method);
	}
	if (json_object_object_get_ex(o, "realization", &sub)) {
		TRY(only_fields(sub, "realization", rea, err, errlen));
		TRY(get_str(sub, "artifact", c->artifact, sizeof(c->artifact), false, err, errlen));
		TRY(get_str(sub, "runtime", c->runtime, sizeof(c->runtime), false, err, errlen));
		TRY(get_str(sub, "accelerator", c->accelerator, sizeof(c->accelerator), false,
			    err, errlen));
	}
	return 0;
}

json_object *idnd_cap_stored_json(const struct d_cap *c)
{
	json_object *o = idnd_cap_to_json(c, false);

	if (c->owner[0])
		json_object_object_add(o, "owner", json_object_new_string(c->owner));
	return o;
}

int idnd_cap_from_stored(json_object *o, struct d_cap *c, char *err, size_t errlen)
{
	char owner[IDND_OWNER_MAX];

	TRY(take_owner(o, owner, err, errlen));
	TRY(idnd_cap_from_json(o, c, err, errlen));
	strcpy(c->owner, owner);
	return 0;
}

static json_object *mask_json(uint32_t m)
{
	json_object *a = json_object_new_array();

	for (int i = 0; i < 32; i++)
		if (m & (1u << i))
			json_object_array_add(a, json_object_new_int(i));
	return a;
}

static json_object *names_json(uint32_t m, const char *const *names)
{
	json_object *a = json_object_new_array();

	for (int i = 0; names[i]; i++)
		if (m & (1u << i))
			json_object_array_add(a, json_object_new_string(names[i]));
	return a;
}

json_object *idnd_cap_to_json(const struct d_cap *c, bool with_demand)
{
	json_object *o = json_object_new_object(), *s;

	json_object_object_add(o, "class", json_object_new_int64(IDN_CAP_CLASS(c->label)));
	json_object_object_add(o, "variant", json_object_new_int(IDN_CAP_VARIANT(c->label)));
	json_object_object_add(o, "name", json_object_new_string(c->name));
	json_object_object_add(o, "tier", json_object_new_int(c->tier));
	json_object_object_add(o, "latency_us", json_object_new_int64(c->latency_us));
	json_object_object_add(o, "context", json_object_new_int64(c->context));
	json_object_object_add(o, "prompt_tokens", json_object_new_int64(c->prompt_tokens));
	json_object_object_add(o, "slo_ttft_ms", json_object_new_int64(c->slo_ttft_ms));
	json_object_object_add(o, "shed_tier", json_object_new_int(c->shed_tier));
	json_object_object_add(o, "wan_ns_per_byte", json_object_new_int64(c->wan_ns_per_byte));
	json_object_object_add(o, "version", json_object_new_int64(c->version));
	if (c->pd)
		json_object_object_add(o, "pd", json_object_new_boolean(true));
	if (c->vips[0].addr.family) {
		char b[INET6_ADDRSTRLEN + 8];

		s = json_object_new_array();
		for (int k = 0; k < IDND_CAP_VIPS && c->vips[k].addr.family; k++) {
			idnd_vip_fmt(&c->vips[k], b, sizeof(b));
			json_object_array_add(s, json_object_new_string(b));
		}
		json_object_object_add(o, "vips", s);
	}
	s = json_object_new_object();
	json_object_object_add(s, "min_trust", json_object_new_int(c->min_trust));
	json_object_object_add(s, "privacy", json_object_new_string(privacy_names[c->privacy & 3]));
	json_object_object_add(s, "scope", json_object_new_string(scope_names[c->scope % 3]));
	json_object_object_add(s, "domains", mask_json(c->domain_mask));
	json_object_object_add(o, "security", s);
	s = json_object_new_object();
	json_object_object_add(s, "mem_gb", idnd_jnum(c->mem_gb));
	json_object_object_add(s, "runtimes", mask_json(c->runtime_mask));
	json_object_object_add(o, "resources", s);
	s = json_object_new_object();
	json_object_object_add(s, "parent", json_object_new_int64(c->parent));
	json_object_object_add(s, "method", json_object_new_string(c->method));
	json_object_object_add(o, "lineage", s);
	s = json_object_new_object();
	json_object_object_add(s, "artifact", json_object_new_string(c->artifact));
	json_object_object_add(s, "runtime", json_object_new_string(c->runtime));
	json_object_object_add(s, "accelerator", json_object_new_string(c->accelerator));
	json_object_object_add(o, "realization", s);
	if (with_demand && c->owner[0])	/* the API's view: who created it */
		json_object_object_add(o, "owner", json_object_new_string(c->owner));
	if (with_demand) {	/* the API's view: what signed this version (signed.c) */
		json_object *d = json_object_new_array();

		if (c->sig) {
			static const char hx[] = "0123456789abcdef";
			char h[65];

			for (int i = 0; i < 32; i++) {
				h[2 * i] = hx[c->sha256[i] >> 4];
				h[2 * i + 1] = hx[c->sha256[i] & 15];
			}
			h[64] = 0;
			s = json_object_new_object();
			json_object_object_add(s, "publisher", json_object_new_string(c->publisher));
			json_object_object_add(s, "artifact_sha256", json_object_new_string(h));
			json_object_object_add(s, "privacy", names_json(c->sig_privacy, privacy_names));
			json_object_object_add(s, "locality", names_json(c->sig_locality, scope_names));
			json_object_object_add(s, "trust", mask_json(c->sig_trust));
			json_object_object_add(o, "signed", s);
		} else {
			json_object_object_add(o, "signed", NULL);
		}

		json_object_object_add(o, "label", json_object_new_int64(c->label));
		for (int r = 0; r < IDND_REGIONS; r++)
			json_object_array_add(d, idnd_jnum(c->demand[r]));
		json_object_object_add(o, "demand", d);
	}
	return o;
}

/* "A.B.C.D:PORT" or "[V6]:PORT", port 1..65535 */
static bool addr_port_ok(const char *s)
{
	char host[48];
	const char *colon = strrchr(s, ':');
	size_t hl = colon ? (size_t)(colon - s) : 0;
	struct in6_addr a6;
	struct in_addr a4;
	char *end;
	long port = colon ? strtol(colon + 1, &end, 10) : 0;

	if (!colon || *end || port <= 0 || port >= 65536 || hl >= sizeof(host))
		return false;
	memcpy(host, s, hl);
	host[hl] = 0;
	if (host[0] == '[' && hl > 2 && host[hl - 1] == ']') {
		host[hl - 1] = 0;
		return inet_pton(AF_INET6, host + 1, &a6) == 1;
	}
	return inet_pton(AF_INET, host, &a4) == 1;
}

int idnd_node_from_json(json_object *o, struct d_node *n, char *err, size_t errlen)
{
	static const char *const top[] = { "id", "addr4", "addr6", "mem_gb", "region", "domain",
		"net_us", "trust", "confidential", "runtime", "accelerator", "tok_ns",
		"max_queue", "api_port", "mgmt", "kv", "region_net_us", "role", "drain", NULL };
	json_object *rn;
	struct in_addr a4;
	struct in6_addr a6;
	uint32_t v = 0;

	memset(n, 0, sizeof(*n));
	TRY(only_fields(o, "node", top, err, errlen));
	TRY(get_uint(o, "id", IDN_MAX_NODES - 1, true, &n->id, err, errlen));
	TRY(get_str(o, "addr4", n->addr4, sizeof(n->addr4), false, err, errlen));
	TRY(get_str(o, "addr6", n->addr6, sizeof(n->addr6), false, err, errlen));
	if (!n->addr4[0] && !n->addr6[0])
		return ERR("node needs \"addr4\" or \"addr6\" (a locator)");
	if (n->addr4[0] && inet_pton(AF_INET, n->addr4, &a4) != 1)
		return ERR("field \"addr4\": not an IPv4 address");
	if (n->addr6[0] && inet_pton(AF_INET6, n->addr6, &a6) != 1)
		return ERR("field \"addr6\": not an IPv6 address");
	TRY(get_num(o, "mem_gb", 0, 1e6, true, &n->mem_gb, err, errlen));
	TRY(get_uint(o, "region", IDND_REGIONS - 1, false, &v, err, errlen));
	n->region = v;
	v = 0;
	TRY(get_uint(o, "domain", 31, false, &v, err, errlen));
	n->domain = v;
	v = 0;
	TRY(get_uint(o, "trust", 7, false, &v, err, errlen));
	n->trust = v;
	v = 0;
	TRY(get_uint(o, "runtime", 31, false, &v, err, errlen));
	n->runtime = v;
	TRY(get_bool(o, "confidential", &n->confidential, err, errlen));
	TRY(get_str(o, "accelerator", n->accelerator, sizeof(n->accelerator), false, err, errlen));
	TRY(get_uint(o, "net_us", 10000000, false, &n->net_us, err, errlen));
	TRY(get_uint(o, "tok_ns", 10000000, false, &n->tok_ns, err, errlen));
	TRY(get_uint(o, "max_queue", 1000000, false, &n->max_queue, err, errlen));
	/* "region_net_us": [us from region 0's router, region 1's, ...], 0 = derived */
	if (json_object_object_get_ex(o, "region_net_us", &rn)) {
		if (!json_object_is_type(rn, json_type_array) ||
		    json_object_array_length(rn) > IDND_REGIONS)
			return ERR("field \"region_net_us\": an array of at most %d integers "
				   "(us from each region's router)", IDND_REGIONS);
		for (size_t i = 0; i < json_object_array_length(rn); i++) {
			json_object *e = json_object_array_get_idx(rn, i);
			int64_t us = json_object_get_int64(e);

			if (!json_object_is_type(e, json_type_int) || us < 0 || us > 10000000)
				return ERR("field \"region_net_us\": integers 0..10000000 expected");
			n->region_net_us[i] = us;
		}
	}
	v = 0;
	TRY(get_uint(o, "api_port", 65535, false, &v, err, errlen));
	n->api_port = v;
	TRY(get_str(o, "mgmt", n->mgmt, sizeof(n->mgmt), false, err, errlen));
	if (n->mgmt[0] && !addr_port_ok(n->mgmt))	/* "A.B.C.D:PORT" or "[V6]:PORT" */
		return ERR("field \"mgmt\": ADDR:PORT or [ADDR6]:PORT expected");
	/* its KV transfer listener: where migrations send this node state */
	TRY(get_str(o, "kv", n->kv, sizeof(n->kv), false, err, errlen));
	if (n->kv[0] && !addr_port_ok(n->kv))
		return ERR("field \"kv\": ADDR:PORT or [ADDR6]:PORT expected");
	TRY(get_enum(o, "role", role_names, &n->role, err, errlen));
	/* the stored form only: a registration's body may not carry it (api.c) */
	TRY(get_bool(o, "drain", &n->drain, err, errlen));
	n->used = true;
	return 0;
}

json_object *idnd_node_to_json(const struct d_node *n, bool live)
{
	json_object *o = json_object_new_object();

	json_object_object_add(o, "id", json_object_new_int64(n->id));
	if (n->addr4[0])
		json_object_object_add(o, "addr4", json_object_new_string(n->addr4));
	if (n->addr6[0])
		json_object_object_add(o, "addr6", json_object_new_string(n->addr6));
	json_object_object_add(o, "mem_gb", idnd_jnum(n->mem_gb));
	json_object_object_add(o, "region", json_object_new_int(n->region));
	json_object_object_add(o, "domain", json_object_new_int(n->domain));
	json_object_object_add(o, "net_us", json_object_new_int64(n->net_us));
	json_object_object_add(o, "trust", json_object_new_int(n->trust));
	json_object_object_add(o, "confidential", json_object_new_boolean(n->confidential));
	json_object_object_add(o, "runtime", json_object_new_int(n->runtime));
	json_object_object_add(o, "accelerator", json_object_new_string(n->accelerator));
	json_object_object_add(o, "tok_ns", json_object_new_int64(n->tok_ns));
	json_object_object_add(o, "max_queue", json_object_new_int64(n->max_queue));
	for (int last = IDND_REGIONS - 1; last >= 0; last--) {	/* up to the last one set */
		json_object *a;

		if (!n->region_net_us[last])
			continue;
		a = json_object_new_array();
		for (int i = 0; i <= last; i++)
			json_object_array_add(a, json_object_new_int64(n->region_net_us[i]));
		json_object_object_add(o, "region_net_us", a);
		break;
	}
	if (n->api_port)
		json_object_object_add(o, "api_port", json_object_new_int(n->api_port));
	if (n->mgmt[0])
		json_object_object_add(o, "mgmt", json_object_new_string(n->mgmt));
	if (n->kv[0])
		json_object_object_add(o, "kv", json_object_new_string(n->kv));
	if (n->role)
		json_object_object_add(o, "role", json_object_new_string(role_names[n->role % 3]));
	if (n->drain || live)
		json_object_object_add(o, "drain", json_object_new_boolean(n->drain));
	if (live) {
		json_object_object_add(o, "state", json_object_new_string(n->up ? "up" : "down"));
		json_object_object_add(o, "heartbeats", json_object_new_int64(n->heartbeats));
		json_object_object_add(o, "hb_age_ms", json_object_new_int64(
			(int64_t)((idnd_now() - n->last_hb) * 1000)));
		json_object_object_add(o, "load", json_object_new_int64(n->load));
		json_object_object_add(o, "queue", json_object_new_int64(n->queue));
		json_object_object_add(o, "pending_tokens", json_object_new_int64(n->pending));
		json_object_object_add(o, "kv_use", json_object_new_int64(n->kv_use));
	}
	return o;
}

/* ---- policy classes ---- */

/*
 * A policy class is identified by its byte p (uapi: trust, privacy and
 * scope bits, what requests carry); the class adds a name and the allowed
 * domains. The compiler turns each registered class into per-(tier,
 * policy) plans whose candidates satisfy it (hard constraints).
 */
static struct d_policy policies[IDND_MAX_POLICIES];

int idnd_policy_from_json(json_object *o, struct d_policy *p, char *err, size_t errlen)
{
	static const char *const top[] = { "id", "name", "min_trust", "privacy", "scope",
		"domains", "tiers", "require_signed", NULL };
	uint32_t v = 0, id = 0;
	bool have_id;

	memset(p, 0, sizeof(*p));
	if (json_object_is_type(o, json_type_object) && json_object_object_get_ex(o, "owner", NULL))
		return ERR(OWNER_SET);
	TRY(only_fields(o, "policy", top, err, errlen));
	TRY(get_str(o, "name", p->name, sizeof(p->name), true, err, errlen));
	TRY(get_uint(o, "min_trust", 7, false, &v, err, errlen));
	p->min_trust = v;
	TRY(get_enum(o, "privacy", privacy_names, &p->privacy, err, errlen));
	TRY(get_enum(o, "scope", scope_names, &p->scope, err, errlen));
	TRY(get_mask(o, "domains", 31, &p->domain_mask, err, errlen));
	TRY(get_mask(o, "tiers", IDN_TIER_MAX, &p->tier_mask, err, errlen));
	if (p->tier_mask == (1u << (IDN_TIER_MAX + 1)) - 1)
		p->tier_mask = 0;	/* all: one canonical form */
	TRY(get_bool(o, "require_signed", &p->require_signed, err, errlen));
	p->id = IDN_POLICY(p->min_trust, p->privacy, p->scope);
	have_id = json_object_object_get_ex(o, "id", NULL);
	TRY(get_uint(o, "id", IDND_MAX_POLICIES - 1, false, &id, err, errlen));
	if (have_id && id != p->id)
		return ERR("field \"id\": %u does not match min_trust/privacy/scope (policy class %u)",
			   id, p->id);
	p->used = true;
	return 0;
}

int idnd_policy_from_stored(json_object *o, struct d_policy *p, char *err, size_t errlen)
{
	char owner[IDND_OWNER_MAX];

	TRY(take_owner(o, owner, err, errlen));
	TRY(idnd_policy_from_json(o, p, err, errlen));
	strcpy(p->owner, owner);
	return 0;
}

json_object *idnd_policy_to_json(const struct d_policy *p)
{
	json_object *o = json_object_new_object();

	json_object_object_add(o, "id", json_object_new_int(p->id));
	json_object_object_add(o, "name", json_object_new_string(p->name));
	json_object_object_add(o, "min_trust", json_object_new_int(p->min_trust));
	json_object_object_add(o, "privacy", json_object_new_string(privacy_names[p->privacy & 3]));
	json_object_object_add(o, "scope", json_object_new_string(scope_names[p->scope % 3]));
	json_object_object_add(o, "domains", mask_json(p->domain_mask));
	json_object_object_add(o, "tiers", mask_json(p->tier_mask ? p->tier_mask :
						     (1u << (IDN_TIER_MAX + 1)) - 1));
	json_object_object_add(o, "require_signed", json_object_new_boolean(p->require_signed));
	if (p->owner[0])
		json_object_object_add(o, "owner", json_object_new_string(p->owner));
	return o;
}

const struct d_policy *idnd_policy_get(uint32_t id)
{
	return id < IDND_MAX_POLICIES && policies[id].used ? &policies[id] : NULL;
}

void idnd_policy_put(const struct d_policy *p)
{
	policies[p->id] = *p;
	policies[p->id].used = true;
}

int idnd_policy_del(uint32_t id)
{
	if (!idnd_policy_get(id))
		return -ENOENT;
	memset(&policies[id], 0, sizeof(policies[id]));
	return 0;
}

int idnd_policy_count(void)
{
	int n = 0;

	for (int i = 0; i < IDND_MAX_POLICIES; i++)
		n += policies[i].used;
	return n;
}

/*
 * Why version c may not serve policy class pol; NULL: it may. A signed
 * version serves the classes its signed scope admits (privacy level,
 * locality scope and minimum trust of the class each in the scope); an
 * unsigned one any class that does not require a signed capability.
 */
const char *idnd_cap_refused(const struct d_cap *c, const struct d_policy *pol)
{
	if (!pol)
		return NULL;
	if (!c->sig)
		return pol->require_signed ? "capability version is unsigned (the policy "
					     "requires a signed capability)" : NULL;
	if (!(c->sig_privacy & (1u << (pol->privacy & 3))))
		return "the policy's privacy level is outside the signed scope";
	if (!(c->sig_locality & (1u << (pol->scope % 3))))
		return "the policy's locality scope is outside the signed scope";
	if (!(c->sig_trust & (1u << (pol->min_trust & 7))))
		return "the policy's trust level is outside the signed scope";
	return NULL;
}

/* Why node dn may not serve under policy class pol; NULL: it may. */
const char *idnd_policy_why(const struct d_policy *pol, const struct d_node *dn)
{
	if (!pol)
		return NULL;
	if (dn->trust < pol->min_trust)
		return "trust below the policy's minimum";
	if (pol->privacy >= IDN_PRIV_CONFIDENTIAL && !dn->confidential)
		return "policy privacy needs a confidential node";
	if (pol->domain_mask && (dn->domain >= 32 || !(pol->domain_mask & (1u << dn->domain))))
		return "domain not allowed by the policy";
	return NULL;
}

/* ---- registry ---- */

static int cap_cmp(const void *a, const void *b)
{
	uint32_t x = ((const struct d_cap *)a)->label, y = ((const struct d_cap *)b)->label;

	return (x > y) - (x < y);
}

struct d_cap *idnd_cap_find(uint32_t label)
{
	struct d_cap k = { .label = label };

	return D.n_caps ? bsearch(&k, D.caps, D.n_caps, sizeof(k), cap_cmp) : NULL;
}

int idnd_cap_put(const struct d_cap *c)
{
	struct d_cap *old = idnd_cap_find(c->label), *p;

	if (old) {
		double dem[IDND_REGIONS];

		struct d_loop lp = old->loop;

		char owner[IDND_OWNER_MAX];

		memcpy(dem, old->demand, sizeof(dem));
		memcpy(owner, old->owner, sizeof(owner));
		*old = *c;
		if (!old->owner[0])	/* an update keeps who created it */
			memcpy(old->owner, owner, sizeof(owner));
		memcpy(old->demand, dem, sizeof(dem));
		old->loop = lp;
		return 0;
	}
	if (D.n_caps >= IDND_MAX_CAPS)
		return -ENOSPC;
	p = realloc(D.caps, (D.n_caps + 1) * sizeof(*p));
	if (!p)
		return -ENOMEM;
	D.caps = p;
	D.caps[D.n_caps++] = *c;
	qsort(D.caps, D.n_caps, sizeof(*D.caps), cap_cmp);
	return 0;
}

int idnd_cap_del(uint32_t label)
{
	struct d_cap *c = idnd_cap_find(label);
	int k = 0;

	if (!c)
		return -ENOENT;
	memmove(c, c + 1, (D.n_caps - (c - D.caps) - 1) * sizeof(*c));
	D.n_caps--;
	for (int i = 0; i < D.n_place; i++)
		if (D.place[i].cap != label)
			D.place[k++] = D.place[i];
	D.n_place = k;
	return 0;
}

/* ---- placement from the registry ---- */

int idnd_solve(struct pl_sol *sol, struct pl_inst *in, char *err, size_t errlen)
{
	struct pl_pair *prev = NULL;
	int *nidx = NULL, n = 0, e = -ENOMEM;

	memset(in, 0, sizeof(*in));
	in->n_regions = IDND_REGIONS;
	in->n_caps = D.n_caps;
	in->caps = calloc(D.n_caps + 1, sizeof(*in->caps));
	in->nodes = calloc(IDN_MAX_NODES, sizeof(*in->nodes));
	in->region_lat = malloc(sizeof(D.region_lat));
	nidx = malloc(IDN_MAX_NODES * sizeof(int));
	prev = calloc(D.n_place + 1, sizeof(*prev));
	if (!in->caps || !in->nodes || !in->region_lat || !nidx || !prev)
		goto fail;
	memcpy(in->region_lat, D.region_lat, sizeof(D.region_lat));
	in->lambda = D.lambda;
	in->mu = D.mu;
	in->nu = D.nu;
	in->unserved = 1000;
	for (int j = 0; j < IDN_MAX_NODES; j++) {
		const struct d_node *dn = &D.nodes[j];

		nidx[j] = -1;
		if (!dn->used)
			continue;
		nidx[j] = n;
		in->nodes[n] = (struct pl_node){
			.id = dn->id, .mem = dn->mem_gb, .extra_ms = dn->net_us / 1000.0,
			.region = dn->region, .domain = dn->domain, .trust = dn->trust,
			.runtime = dn->runtime, .confidential = dn->confidential, .up = dn->up,
			.drain = dn->drain,
		};
		n++;
	}
	in->n_nodes = n;
	for (int i = 0; i < D.n_caps; i++) {
		const struct d_cap *c = &D.caps[i];
		struct pl_cap *pc = &in->caps[i];

		pc->id = c->label;
		pc->mem = c->mem_gb;
		pc->min_trust = c->min_trust;
		pc->privacy = c->privacy;
		pc->domain_mask = c->domain_mask;
		pc->runtime_mask = c->runtime_mask;
		pc->demand = calloc(IDND_REGIONS, sizeof(double));
		if (!pc->demand)
			goto fail;
		memcpy(pc->demand, c->demand, sizeof(c->demand));
	}
	for (int p = 0; p < D.n_place; p++) {
		struct d_cap *c = idnd_cap_find(D.place[p].cap);

		if (!c || D.place[p].node >= IDN_MAX_NODES || nidx[D.place[p].node] < 0)
			continue;
		prev[in->n_prev++] = (struct pl_pair){ (int)(c - D.caps), nidx[D.place[p].node] };
	}
	in->prev = prev;
	free(nidx);
	if (!sol)	/* solver.c: the instance only, solved off D.lock */
		return 0;
	e = pl_solve(in, NULL, sol);
	if (e)
		snprintf(err, errlen, "solver failed: %s", strerror(-e));
	return e;
fail:
	free(nidx);
	free(prev);
	in->prev = NULL;
	pl_inst_free(in);
	snprintf(err, errlen, "out of memory");
	return e;
}

int idnd_place_set(const struct pl_inst *in, const struct pl_sol *sol)
{
	struct d_place *p = malloc((sol->n + 1) * sizeof(*p));

	if (!p)
		return -ENOMEM;
	for (int t = 0; t < sol->n; t++)
		p[t] = (struct d_place){ in->caps[sol->x[t].cap].id, in->nodes[sol->x[t].node].id };
	idnd_orders_diff(D.place, D.n_place, p, sol->n);
	free(D.place);
	D.place = p;
	D.n_place = sol->n;
	return 0;
}

/* ---- plan compiler ---- */

/*
 * Per-region network cost: the router of this idnd is in region -R
 * (D.loop_region); its node entries carry T_net from that region: the
 * node's measured figure for it (region_net_us[r]: the agent's
 * --region-net-us or the operator), else net_us (one figure for every
 * router, as before: the region matrix is placement's model, not a
 * measurement, and is not charged to routing).
 */
uint32_t idnd_node_net_us(const struct d_node *n, int r)
{
	if (r >= 0 && r < IDND_REGIONS && n->region_net_us[r])
		return n->region_net_us[r];
	return n->net_us;
}

/* the node entry idnd writes for dn (the registry's view: heartbeat load) */
void idnd_node_entry(const struct d_node *dn, struct idn_node *e)
{
	struct idn_node n = {};
	struct in_addr a4;
	struct in6_addr a6;

	if (dn->used) {
		n.flags = IDN_NODE_F_VALID;
		if (dn->addr4[0] && inet_pton(AF_INET, dn->addr4, &a4) == 1) {
			n.addr4 = a4.s_addr;
			n.flags |= IDN_NODE_F_LOC4;
		}
		if (dn->addr6[0] && inet_pton(AF_INET6, dn->addr6, &a6) == 1) {
			memcpy(n.addr6, &a6, 16);
			n.flags |= IDN_NODE_F_LOC6;
		}
		if (dn->confidential)
			n.flags |= IDN_NODE_F_CONFIDENTIAL;
		n.trust = dn->trust;
		n.domain = dn->domain;
		/* draining: the router keeps its flows and sends it no new ones */
		n.health = !dn->up ? IDN_HEALTH_DOWN : dn->drain ? IDN_HEALTH_DRAIN : IDN_HEALTH_UP;
		n.net_us = idnd_node_net_us(dn, D.loop_region);
		/* a node of another region than this router's: its bytes cross the WAN */
		if (dn->region != D.loop_region)
			n.flags |= IDN_NODE_F_WAN;
		n.tok_ns = dn->tok_ns;
		n.max_queue = dn->max_queue;
		n.queue_depth = dn->queue;
		n.pending_tokens = dn->pending;
		n.load = dn->load > 1000 ? 1000 : dn->load;
		n.kv_use = dn->kv_use > 1000 ? 1000 : dn->kv_use;
	}
	*e = n;
}

int idnd_node_push(const struct d_node *dn)
{
	struct idn_node n, old;

	if (!D.have_maps)
		return 0;
	idnd_node_entry(dn, &n);
	if (dn->used) {
		/*
		 * The router's telemetry (the fast loop) owns the load fields
		 * and its replay guard once it has accepted a datagram from
		 * this node: keep them rather than resetting tele_seq to 0
		 * (which would accept replays) or overwriting fresher load
		 * with the heartbeat's older view.
		 */
		if (!idn_node_get(&D.maps, dn->id, &old) && (old.flags & IDN_NODE_F_VALID)) {
			/* the router's own charge (select.h) is the router's too */
			n.charged_tokens = old.charged_tokens;
			n.charged_reqs = old.charged_reqs;
			n.others_rate = old.others_rate;
			n.tele_tick = old.tele_tick;
			n.others_span = old.others_span;
			n.others_carry = old.others_carry;
			if (old.tele_seq) {
				n.tele_seq = old.tele_seq;
				n.queue_depth = old.queue_depth;
				n.pending_tokens = old.pending_tokens;
				n.load = old.load;
				n.kv_use = old.kv_use;
			}
		}
	}
	return idn_node_put(&D.maps, dn->id, &n);
}

/*
 * The compiler's view of one capability: its placed nodes that are up
 * (candidates of every plan of it, before policy filtering).
 */
struct cplan {
	uint32_t node[IDN_MAX_CAND];
	int n;
};

static bool policy_allows(const struct d_policy *pol, const struct d_node *dn)
{
	return !idnd_policy_why(pol, dn);
}

/* Plan of capability i for (tier, policy); tier IDN_ANY, pol NULL: the default. */
static void plan_build(int i, const struct cplan *cp, int tier, const struct d_policy *pol,
		       struct idn_plan *pl);

/* Does capability k have a candidate under pol? */
static bool cap_servable(int k, const struct cplan *cp, const struct d_policy *pol)
{
	if (idnd_cap_refused(&D.caps[k], pol))
		return false;	/* that version may not serve the class */
	for (int j = 0; j < cp[k].n; j++)
		if (policy_allows(pol, &D.nodes[cp[k].node[j]]))
			return true;
	return false;
}

/*
 * Ladder step 2 of capability i for a request of this tier: another
 * variant of the same class that is cheaper (smaller model), serves the
 * tier (its quality tier >= the request's; any for the default plan) and
 * has a node under the policy. The best quality of those, then the larger.
 */
static uint32_t plan_fallback(int i, const struct cplan *cp, int tier, const struct d_policy *pol)
{
	const struct d_cap *c = &D.caps[i], *best = NULL;
	uint32_t cls = IDN_CAP_CLASS(c->label);
	int lo = i, hi = i;

	while (lo > 0 && IDN_CAP_CLASS(D.caps[lo - 1].label) == cls)
		lo--;
	while (hi + 1 < D.n_caps && IDN_CAP_CLASS(D.caps[hi + 1].label) == cls)
		hi++;
	for (int k = lo; k <= hi; k++) {
		const struct d_cap *f = &D.caps[k];

		if (k == i || f->mem_gb >= c->mem_gb)
			continue;
		if (tier != IDN_ANY && f->tier < tier)
			continue;
		if (!cap_servable(k, cp, pol))
			continue;
		if (!best || f->tier > best->tier ||
		    (f->tier == best->tier && f->mem_gb > best->mem_gb))
			best = f;
	}
	return best ? best->label : 0;
}

/* which stage plan_build() compiles for a P/D capability: 1 (routers) or 2 */
static int pd_stage = 1;

static void plan_build(int i, const struct cplan *cp, int tier, const struct d_policy *pol,
		       struct idn_plan *pl)
{
	const struct d_cap *c = &D.caps[i];

	memset(pl, 0, sizeof(*pl));
	for (int w = 0; w < IDN_W_MAX; w++)
		pl->weight[w] = 256;
	pl->domain_mask = c->domain_mask ? c->domain_mask : 0xffffffff;
	if (pol && pol->domain_mask)
		pl->domain_mask &= pol->domain_mask;
	if (idnd_cap_refused(c, pol))
		return;	/* signature or signed scope: an empty plan, fail closed */
	for (int j = 0; j < cp[i].n; j++) {
		const struct d_node *dn = &D.nodes[cp[i].node[j]];
		struct idn_cand *cd;

		if (!policy_allows(pol, dn))
			continue;	/* the policy class is a hard constraint */
		if (c->pd && dn->role == (pd_stage == 1 ? IDND_ROLE_DECODE : IDND_ROLE_PREFILL))
			continue;	/* P/D: the other stage's node */
		cd = &pl->cand[pl->n_cand++];
		cd->node = dn->id;
		cd->exec_us = c->latency_us;
		cd->variant = IDN_CAP_VARIANT(c->label);
	}
	/* fed.c: peers offering it, as remote candidates (their ingress, WAN) */
	idnd_fed_cands(c, pol, pl);
	pl->fallback_cap = plan_fallback(i, cp, tier, pol);
	/* the capability's objective and expected request (select.h) */
	pl->slo_us = c->slo_ttft_ms * 1000;
	pl->shed_tier = c->shed_tier;
	pl->prompt_tokens = c->prompt_tokens > 65535 ? 65535 : c->prompt_tokens;
	pl->wan_ns_per_byte = c->wan_ns_per_byte;
}

/* Grow-on-demand op array. */
static struct idn_plan_op *op_next(struct idn_plan_op **ops, int *n, int *cap)
{
	if (*n == *cap) {
		int nc = *cap ? 2 * *cap : 256;
		struct idn_plan_op *p = realloc(*ops, nc * sizeof(*p));

		if (!p)
			return NULL;
		*ops = p;
		*cap = nc;
	}
	memset(&(*ops)[*n], 0, sizeof(**ops));
	return &(*ops)[(*n)++];
}

static int key_cmp(const void *a, const void *b)
{
	const struct idn_plan_key *x = a, *y = b;

	if (x->cap != y->cap)
		return x->cap < y->cap ? -1 : 1;
	if (x->tier != y->tier)
		return x->tier - y->tier;
	return x->policy - y->policy;
}

static int op_cmp(const void *a, const void *b)
{
	return key_cmp(&((const struct idn_plan_op *)a)->key,
		       &((const struct idn_plan_op *)b)->key);
}

#define PLAN_BAD(...) do { snprintf(why, wl, __VA_ARGS__); return -EINVAL; } while (0)

int idnd_plan_check(const struct idn_plan_key *k, const struct idn_plan *p, char *why,
		    size_t wl)
{
	if (!IDN_CAP_CLASS(k->cap))
		PLAN_BAD("capability " IDN_CAP_FMT ": class 0 is no capability",
			 IDN_CAP_ARG(k->cap));
	if (k->tier > IDN_TIER_MAX && k->tier != IDN_ANY)
		PLAN_BAD("tier %u out of range (0..%d or any)", k->tier, IDN_TIER_MAX);
	if (k->pad || k->slot > 1)
		PLAN_BAD("key padding %u / slot %u not zero", k->pad, k->slot);
	if (p->n_cand > IDN_MAX_CAND)
		PLAN_BAD("%u candidates (at most %d)", p->n_cand, IDN_MAX_CAND);
	for (int i = 0; i < p->n_cand; i++) {
		const struct idn_cand *c = &p->cand[i];

		if (c->node >= IDN_MAX_NODES)
			PLAN_BAD("candidate %d: node %u out of range (0..%d)", i, c->node,
				 IDN_MAX_NODES - 1);
		for (int j = 0; j < i; j++)
			if (p->cand[j].node == c->node)
				PLAN_BAD("candidate %d: node %u repeated", i, c->node);
		if (c->variant != IDN_CAP_VARIANT(k->cap))
			PLAN_BAD("candidate %d: variant %u, the capability's is %u", i,
				 c->variant, IDN_CAP_VARIANT(k->cap));
		if (c->exec_us > IDND_PLAN_MAX_US || c->state_us > IDND_PLAN_MAX_US)
			PLAN_BAD("candidate %d: cost %u/%u us over %u us", i, c->exec_us,
				 c->state_us, IDND_PLAN_MAX_US);
		if (c->pad)
			PLAN_BAD("candidate %d: padding not zero", i);
	}
	for (int i = p->n_cand; i < IDN_MAX_CAND; i++)
		if (p->cand[i].node || p->cand[i].exec_us || p->cand[i].state_us ||
		    p->cand[i].policy_us || p->cand[i].variant || p->cand[i].pad)
			PLAN_BAD("unused candidate slot %d not zero", i);
	for (int w = 0; w < IDN_W_MAX; w++)
		if (p->weight[w] > IDND_PLAN_MAX_WEIGHT)
			PLAN_BAD("weight %d is %u (Q8.8, at most %u)", w, p->weight[w],
				 IDND_PLAN_MAX_WEIGHT);
	if (p->slo_us > IDND_PLAN_MAX_US)
		PLAN_BAD("slo %u us over %u us", p->slo_us, IDND_PLAN_MAX_US);
	if (p->shed_tier > IDN_TIER_MAX + 1)
		PLAN_BAD("shed tier %u out of range (0..%d)", p->shed_tier, IDN_TIER_MAX + 1);
	if (p->wan_ns_per_byte > IDND_PLAN_MAX_WAN_NS)
		PLAN_BAD("wan price %u ns/byte over %u", p->wan_ns_per_byte, IDND_PLAN_MAX_WAN_NS);
	for (int b = 0; b < IDN_SL_RING; b++)
		if (p->sl_ring[b])
			PLAN_BAD("stateless ring bucket %d set (the dataplane fills it)", b);
	if (p->fallback_cap && (IDN_CAP_CLASS(p->fallback_cap) != IDN_CAP_CLASS(k->cap) ||
				p->fallback_cap == k->cap))
		PLAN_BAD("fallback %u/%u is not another variant of %u/%u",
			 IDN_CAP_CLASS(p->fallback_cap), IDN_CAP_VARIANT(p->fallback_cap),
			 IDN_CAP_CLASS(k->cap), IDN_CAP_VARIANT(k->cap));
	return 0;
}

/*
 * The next generation's plans (puts only, sorted by key): per capability
 * with an up, placed node, the default (cap, ANY, ANY) and, per policy
 * class (registered ones and the implicit class 0) and tier, a
 * (cap, tier, policy) plan wherever it differs from the default: its
 * candidates satisfy the class (trust, privacy, allowed domains), its
 * fallback serves the tier. A class that excludes every node gets an
 * empty plan (requests fail closed) rather than none (which would fall
 * back to the default). Return the count or -errno.
 */
int idnd_plans_build(struct idn_plan_op **out)
{
	struct idn_plan_op *ops = NULL;
	struct cplan *cp;
	int n = 0, cap = 0;
	int pols[IDND_MAX_POLICIES], n_pol = 0;

	*out = NULL;
	cp = calloc(D.n_caps + 1, sizeof(*cp));
	if (!cp)
		return -ENOMEM;
	for (int p = 0; p < D.n_place; p++) {
		const struct d_cap *c = idnd_cap_find(D.place[p].cap);
		const struct d_node *dn;
		struct cplan *e;

		if (!c || D.place[p].node >= IDN_MAX_NODES)
			continue;
		dn = &D.nodes[D.place[p].node];
		e = &cp[c - D.caps];
		if (!dn->used || !dn->up || e->n >= IDN_MAX_CAND)
			continue;	/* a down node leaves every plan */
		e->node[e->n++] = dn->id;
	}
	for (int p = 0; p < IDND_MAX_POLICIES; p++)
		if (!p || idnd_policy_get(p))
			pols[n_pol++] = p;
	for (int i = 0; i < D.n_caps; i++) {
		struct idn_plan def;
		bool tiers = false;
		uint32_t cls = IDN_CAP_CLASS(D.caps[i].label);
		struct idn_plan_op *op;

		if (!cp[i].n && !idnd_fed_any(D.caps[i].label))
			continue;	/* no plan: requests are demand misses */
		plan_build(i, cp, IDN_ANY, NULL, &def);
		op = op_next(&ops, &n, &cap);
		if (!op)
			goto nomem;
		op->key = (struct idn_plan_key){ .cap = D.caps[i].label, .tier = IDN_ANY,
						 .policy = IDN_ANY };
		op->plan = def;
		/* the tier matters only where the class has other variants */
		tiers = (i > 0 && IDN_CAP_CLASS(D.caps[i - 1].label) == cls) ||
			(i + 1 < D.n_caps && IDN_CAP_CLASS(D.caps[i + 1].label) == cls);
		for (int k = 0; k < n_pol; k++) {
			const struct d_policy *pol = idnd_policy_get(pols[k]);
			struct idn_plan pl;
			bool built = false;

			/* a refused version: empty plans for every tier, so no
			 * request of the class falls back to the default plan */
			bool refused = idnd_cap_refused(&D.caps[i], pol);

			for (int t = 0; t <= IDN_TIER_MAX; t++) {
				if (pol && pol->tier_mask && !(pol->tier_mask & (1u << t)) &&
				    !refused)
					continue;	/* the class's requests use other tiers */
				if (!built || tiers)
					plan_build(i, cp, tiers ? t : IDN_ANY, pol, &pl);
				built = true;
				if (!memcmp(&pl, &def, sizeof(pl)))
					continue;	/* the default answers the same */
				op = op_next(&ops, &n, &cap);
				if (!op)
					goto nomem;
				op->key = (struct idn_plan_key){ .cap = D.caps[i].label,
								 .tier = t, .policy = pols[k] };
				op->plan = pl;
			}
		}
	}
	free(cp);
	if (n > IDN_MAX_PLANS) {
		free(ops);
		return idn_err(-ENOSPC, "%d plan entries exceed the %d of a slot: fewer policy "
			       "classes, or fewer tiers per class (\"tiers\")", n, IDN_MAX_PLANS);
	}
	qsort(ops, n, sizeof(*ops), op_cmp);
	*out = ops;
	return n;
nomem:
	free(cp);
	free(ops);
	return -ENOMEM;
}

/*
 * The second stage of P/D capability label (policy class @pol, NULL: the
 * default): the placed, up nodes of role decode or both, costed as the
 * first stage's plan is; the prefill node's agent picks one by J
 * (idn_select()). 0, -ENOENT (no such P/D capability) or -ENOMEM.
 */
int idnd_pd_stage2(uint32_t label, const struct d_policy *pol, struct idn_plan *pl)
{
	const struct d_cap *c = idnd_cap_find(label);
	struct cplan *cp;
	int i;

	memset(pl, 0, sizeof(*pl));
	if (!c || !c->pd)
		return -ENOENT;
	i = c - D.caps;
	cp = calloc(D.n_caps, sizeof(*cp));
	if (!cp)
		return -ENOMEM;
	for (int p = 0; p < D.n_place; p++) {
		const struct d_node *dn;

		if (D.place[p].cap != label || D.place[p].node >= IDN_MAX_NODES)
			continue;
		dn = &D.nodes[D.place[p].node];
		if (dn->used && dn->up && cp[i].n < IDN_MAX_CAND)
			cp[i].node[cp[i].n++] = dn->id;
	}
	pd_stage = 2;
	plan_build(i, cp, IDN_ANY, pol, pl);
	pd_stage = 1;
	pl->fallback_cap = 0;	/* the first stage falls back; the second follows it */
	pl->slo_us = 0;		/* the first token came from the prefill node */
	pl->shed_tier = 0;	/* admitted at the first stage: never shed here */
	free(cp);
	return 0;
}

/* ---- stage 2's pick: the dataplane's selection over the decode nodes ---- */

struct pd_env {
	const struct idn_node *nodes;	/* IDN_MAX_NODES */
	const struct idn_plan *pl;
};

static const struct idn_node *pd_env_node(void *priv, __u32 id)
{
	const struct pd_env *p = priv;

	return id < IDN_MAX_NODES ? &p->nodes[id] : NULL;
}

static const struct idn_plan *pd_env_plan(void *priv, const struct idn_plan_key *k)
{
	(void)k;
	return ((const struct pd_env *)priv)->pl;	/* stage 2, whatever the key */
}

/*
 * idnd_pd_pick - the decode node for one request of capability label, by J:
 * idn_select() (bpf/lib/select.h, the dataplane's code) over stage 2 @pl
 * and the candidates' node entries: the router's (telemetry-fresh) where
 * idnd drives maps, else the registry's (heartbeats). @token, @size_class
 * (IDN_SIZE_NONE: not given) as the request's descriptor. No affinity: the
 * state goes with the request. Return: the verdict; out->node the pick.
 */
int idnd_pd_pick(uint32_t label, const struct idn_plan *pl, uint64_t token, uint8_t size_class,
		 struct idn_sel *out)
{
	struct idn_node *nodes = calloc(IDN_MAX_NODES, sizeof(*nodes));
	struct pd_env pv = { nodes, pl };
	struct idn_env env = { pd_env_node, pd_env_plan, &pv };
	struct idn_desc d = { .token = token, .cap = label, .size_class = size_class };
	struct idn_config cfg;
	struct idn_sel_in in;
	__u16 home = 0;
	int v;

	out->node = IDN_NODE_NONE;
	if (!nodes)
		return -ENOMEM;
	if (size_class != IDN_SIZE_NONE)
		d.flags |= IDN_DF_SIZE;
	for (int k = 0; k < pl->n_cand; k++) {
		uint32_t id = pl->cand[k].node;

		if (id >= IDN_MAX_NODES)
			continue;
		if (!D.have_maps || idn_node_get(&D.maps, id, &nodes[id]) ||
		    !(nodes[id].flags & IDN_NODE_F_VALID))
			idnd_node_entry(&D.nodes[id], &nodes[id]);
	}
	if (D.have_maps && !idn_config_get(&D.maps, &cfg))
		home = cfg.home_domain;
	idn_sel_in_init(&in, &d, IDN_NODE_NONE, 0, home, IDN_AF_INET, idn_tick_now());
	v = idn_select(&env, &in, out, NULL);
	free(nodes);
	return v;
}

int idnd_compile(void)
{
	struct idn_plan_entry *cur = NULL;
	struct idn_plan_op *ops = NULL, *all;
	struct idn_config cfg;
	int n_cur, n_ops, n_all, err;
	double t0 = idnd_now();
	__u32 gen = 0;

	bool publish = D.etcd && D.leader;

	if (!D.have_maps && !publish)
		return 0;
	n_ops = idnd_plans_build(&ops);
	if (n_ops < 0) {
		pr_warn("idnd: plan compile: %s\n", idn_errmsg());
		return n_ops;
	}
	n_cur = 0;
	if (D.have_maps) {
		err = idn_config_get(&D.maps, &cfg);
		if (!err)
			n_cur = idn_plan_list(&D.maps, cfg.active_slot & 1, &cur);
		if (err || n_cur < 0) {
			free(ops);
			return err ? err : n_cur;
		}
	}
	all = realloc(ops, (n_ops + n_cur + 1) * sizeof(*ops));
	if (!all) {
		free(ops);
		free(cur);
		return -ENOMEM;
	}
	ops = all;
	n_all = n_ops;
	/* plans of the active generation that are no longer wanted (both sorted) */
	for (int k = 0, i = 0; k < n_cur; k++) {
		while (i < n_ops && key_cmp(&ops[i].key, &cur[k].key) < 0)
			i++;
		if (i < n_ops && !key_cmp(&ops[i].key, &cur[k].key))
			continue;
		memset(&ops[n_all], 0, sizeof(ops[n_all]));
		ops[n_all].del = true;
		ops[n_all].key = cur[k].key;
		ops[n_all].key.slot = 0;
		if (D.takeover) {	/* made by hand (or an earlier idnd): said, not silent */
			char kb[160];

			pr_warn("idnd: router %s: plan %s is not in the registry: removed "
				"(idnd owns the plans of the routers it manages)\n", D.pin,
				idn_fmt_plan_key(&ops[n_all].key, kb, sizeof(kb)));
		}
		n_all++;
	}
	/* distributed mode: the leader publishes the generation */
	if (publish) {
		gen = D.generation + 1;
		err = idnd_dist_publish(ops, n_all, gen);
		if (err)
			pr_warn("idnd: etcd publish: %s\n", idn_errmsg());
	}
	err = D.have_maps ? idn_plan_commit(&D.maps, ops, n_all, &gen) : 0;
	if (!err && D.takeover) {
		if (n_all > n_ops) {
			char body[64];
			int len = snprintf(body, sizeof(body), "{\"plans_removed\":%d}",
					   n_all - n_ops);

			idnd_audit("idnd", "TAKEOVER", D.pin, 200, body, (size_t)len);
		}
		D.takeover = false;
	}
	if (!err) {
		D.generation = gen;
		D.commits++;
		D.last_commit_ms = (idnd_now() - t0) * 1000;
		idnd_store_gen(gen);
	}
	free(ops);
	free(cur);
	return err;
}

/* ---- explain ---- */

json_object *idnd_explain(uint32_t label, char *err, size_t errlen)
{
	const struct d_cap *c = idnd_cap_find(label);
	json_object *o, *nodes, *regions, *excl;

	if (!c) {
		snprintf(err, errlen, "no capability " IDN_CAP_FMT, IDN_CAP_ARG(label));
		return NULL;
	}
	o = json_object_new_object();
	json_object_object_add(o, "cap", idnd_cap_to_json(c, true));
	nodes = json_object_new_array();
	for (int p = 0; p < D.n_place; p++)
		if (D.place[p].cap == label)
			json_object_array_add(nodes, json_object_new_int64(D.place[p].node));
	json_object_object_add(o, "placed_on", nodes);
	regions = json_object_new_array();
	for (int r = 0; r < IDND_REGIONS; r++) {
		json_object *e;
		double best = -1;
		int bn = -1;

		if (c->demand[r] <= 0)
			continue;
		for (int p = 0; p < D.n_place; p++) {
			const struct d_node *dn = &D.nodes[D.place[p].node];
			double u;

			if (D.place[p].cap != label || !dn->up)
				continue;
			u = D.region_lat[r * IDND_REGIONS + dn->region] + dn->net_us / 1000.0 +
			    (dn->region != r ? D.mu : 0);
			if (bn < 0 || u < best) {
				best = u;
				bn = dn->id;
			}
		}
		e = json_object_new_object();
		json_object_object_add(e, "region", json_object_new_int(r));
		json_object_object_add(e, "rps", idnd_jnum(c->demand[r]));
		if (bn >= 0) {
			json_object_object_add(e, "served_by", json_object_new_int(bn));
			json_object_object_add(e, "unit_cost", idnd_jnum(best));
		} else {
			json_object_object_add(e, "served_by", NULL);
		}
		json_object_array_add(regions, e);
	}
	json_object_object_add(o, "regions", regions);
	excl = json_object_new_array();
	for (int j = 0; j < IDN_MAX_NODES; j++) {
		const struct d_node *dn = &D.nodes[j];
		const char *why = NULL;
		json_object *e;

		if (!dn->used)
			continue;
		if (!dn->up)
			why = "node down";
		else if (dn->drain)
			why = "node draining (keeps what it holds, gets nothing new)";
		else if (dn->trust < c->min_trust)
			why = "trust below the capability's minimum";
		else if (c->privacy >= IDN_PRIV_CONFIDENTIAL && !dn->confidential)
			why = "privacy needs a confidential node";
		else if (c->domain_mask && !(c->domain_mask & (1u << dn->domain)))
			why = "domain not allowed";
		else if (c->runtime_mask && !(c->runtime_mask & (1u << dn->runtime)))
			why = "runtime not compatible";
		else if (dn->mem_gb < c->mem_gb)
			why = "memory budget smaller than the model";
		if (!why)
			continue;
		e = json_object_new_object();
		json_object_object_add(e, "node", json_object_new_int64(dn->id));
		json_object_object_add(e, "reason", json_object_new_string(why));
		json_object_array_add(excl, e);
	}
	json_object_object_add(o, "excluded", excl);
	/* what each policy class's plans hold of the placement (Plan compiler) */
	excl = json_object_new_array();
	for (uint32_t id = 0; id < IDND_MAX_POLICIES; id++) {
		const struct d_policy *pol = idnd_policy_get(id);
		json_object *e, *ok, *out;

		if (!pol)
			continue;
		e = idnd_policy_to_json(pol);
		ok = json_object_new_array();
		out = json_object_new_array();
		json_object_object_add(e, "refused", idnd_cap_refused(c, pol) ?
				       json_object_new_string(idnd_cap_refused(c, pol)) : NULL);
		for (int p = 0; p < D.n_place && !idnd_cap_refused(c, pol); p++) {
			const struct d_node *dn = &D.nodes[D.place[p].node];
			const char *why = idnd_policy_why(pol, dn);

			if (D.place[p].cap != label)
				continue;
			if (!why) {
				json_object_array_add(ok, json_object_new_int64(dn->id));
				continue;
			}
			nodes = json_object_new_object();
			json_object_object_add(nodes, "node", json_object_new_int64(dn->id));
			json_object_object_add(nodes, "reason", json_object_new_string(why));
			json_object_array_add(out, nodes);
		}
		json_object_object_add(e, "nodes", ok);
		json_object_object_add(e, "excluded", out);
		json_object_array_add(excl, e);
	}
	json_object_object_add(o, "policies", excl);
	return o;
}

/* ---- affinity seeds for popular prefix roots -------------------------- */

struct seed {
	uint64_t token;
	uint32_t node;
	uint64_t hits, blocks, value;	/* the holder's */
	uint64_t total;			/* hits over every node holding it */
};

static int seed_by_token(const void *a, const void *b)
{
	const struct seed *x = a, *y = b;

	if (x->token != y->token)
		return x->token < y->token ? -1 : 1;
	/* the best holder first: most blocks, then most value, then lowest id */
	if (x->blocks != y->blocks)
		return x->blocks > y->blocks ? -1 : 1;
	if (x->value != y->value)
		return x->value > y->value ? -1 : 1;
	return x->node < y->node ? -1 : x->node > y->node;
}

static int seed_by_total(const void *a, const void *b)
{
	const struct seed *x = a, *y = b;

	if (x->total != y->total)
		return x->total > y->total ? -1 : 1;
	return x->token < y->token ? -1 : x->token > y->token;
}

static uint64_t jget_u64(json_object *o, const char *k)
{
	json_object *v;

	return json_object_object_get_ex(o, k, &v) ? (uint64_t)json_object_get_int64(v) : 0;
}

static uint64_t idnd_aff_seeded, idnd_aff_kept;

void idnd_aff_seed_counts(uint64_t *seeded, uint64_t *kept)
{
	*seeded = idnd_aff_seeded;
	*kept = idnd_aff_kept;
}

int idnd_aff_seeds(json_object *const *st)
{
	struct idnd_aff_desc *c = NULL, *ns;
	size_t n = 0, cap = 0;
	int ret;

	for (uint32_t j = 0; j < IDN_MAX_NODES; j++) {
		json_object *a, *d, *v;

		if (!st[j] || !json_object_object_get_ex(st[j], "descriptors", &a))
			continue;
		for (size_t i = 0; i < json_object_array_length(a); i++) {
			d = json_object_array_get_idx(a, i);
			if (!json_object_object_get_ex(d, "type", &v) ||
			    strcmp(json_object_get_string(v), "kv_prefix") ||
			    !json_object_object_get_ex(d, "token", &v))
				continue;
			if (n == cap) {
				cap = cap ? 2 * cap : 256;
				ns = realloc(c, cap * sizeof(*c));
				if (!ns) {
					free(c);
					return -ENOMEM;
				}
				c = ns;
			}
			c[n++] = (struct idnd_aff_desc){
				.token = strtoull(json_object_get_string(v), NULL, 16),
				.node = j, .hits = jget_u64(d, "hits"),
				.blocks = jget_u64(d, "blocks"), .value = jget_u64(d, "value_us") };
		}
	}
	ret = idnd_aff_seeds_from(c, n);
	free(c);
	return ret;
}

int idnd_aff_seeds_from(const struct idnd_aff_desc *in, size_t n_in)
{
	struct idnd_aff_seed *out;
	struct seed *c = NULL, *ns;
	size_t n = 0, cap = 0, m = 0, n_out = 0;
	int written = 0;

	for (size_t i = 0; i < n_in; i++) {
		const struct idnd_aff_desc *d = &in[i];

		if (d->node >= IDN_MAX_NODES || !D.nodes[d->node].used || !D.nodes[d->node].up)
			continue;
		/* popular: its blocks were hit at least once each on average */
		if (!d->token || !d->blocks || d->hits < d->blocks)
			continue;
		if (n == cap) {
			cap = cap ? 2 * cap : 256;
			ns = realloc(c, cap * sizeof(*c));
			if (!ns) {
				free(c);
				return -ENOMEM;
			}
			c = ns;
		}
		c[n++] = (struct seed){ .token = d->token, .node = d->node, .hits = d->hits,
					.blocks = d->blocks, .value = d->value };
	}
	/* one per token: its best holder, with every holder's hits */
	if (n)
		qsort(c, n, sizeof(*c), seed_by_token);
	for (size_t i = 0; i < n;) {
		size_t k = i;
		uint64_t total = 0;

		while (k < n && c[k].token == c[i].token)
			total += c[k++].hits;
		c[m] = c[i];
		c[m++].total = total;
		i = k;
	}
	if (m)
		qsort(c, m, sizeof(*c), seed_by_total);
	if (m > IDND_AFF_SEEDS)
		m = IDND_AFF_SEEDS;
	out = calloc(m ? m : 1, sizeof(*out));
	if (!out) {
		free(c);
		return -ENOMEM;
	}
	for (size_t i = 0; i < m; i++) {
		struct idnd_aff_seed *s = &out[n_out];

		/* every capability class placed on the holder (its KV serves them) */
		for (int p = 0; p < D.n_place && s->n_cls < 8; p++) {
			uint32_t k = IDN_CAP_CLASS(D.place[p].cap);
			int dup = 0;

			if (D.place[p].node != c[i].node)
				continue;
			for (int q = 0; q < s->n_cls; q++)
				dup |= s->cls[q] == k;
			if (!dup)
				s->cls[s->n_cls++] = k;
		}
		if (!s->n_cls)
			continue;
		s->token = c[i].token;
		s->node = c[i].node;
		n_out++;
		for (int q = 0; D.have_maps && q < s->n_cls; q++) {
			/* only where the router has no entry: its own choice is newer */
			int e = idn_aff_seed(&D.maps, s->token, s->cls[q], s->node);

			if (!e) {
				written++;
				idnd_aff_seeded++;
			} else if (e == -EEXIST) {
				idnd_aff_kept++;
			} else {
				free(out);
				free(c);
				return e;
			}
		}
	}
	/* the same seeds for the routers etcd feeds (distributed mode's leader) */
	idnd_dist_aff_seeds(out, n_out);
	free(out);
	free(c);
	return written;
}
