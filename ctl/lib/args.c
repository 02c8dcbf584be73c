// SPDX-License-Identifier: GPL-2.0
/*
 * args.c - parsers of command-line values and their inverse formatters.
 *
 * Parsers accept full words and whole strings only (no prefixes, no
 * trailing junk) and return -EINVAL with a message in idn_errmsg().
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <ctype.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include "libidn.h"

/* strtoull with base 10 or 0x16, whole string, no sign. */
static int parse_ull(const char *s, unsigned long long *v)
{
	char *end;
	int base = 10;

	if (!s || !*s || !isdigit((unsigned char)*s))
		return -EINVAL;
	if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
		base = 16;
		if (!isxdigit((unsigned char)s[2]))
			return -EINVAL;
	}
	errno = 0;
	*v = strtoull(s, &end, base);
	if (errno || *end)
		return -EINVAL;
	return 0;
}

int idn_parse_u32(const char *s, __u32 min, __u32 max, __u32 *out, const char *what)
{
	unsigned long long v;

	if (parse_ull(s, &v) || v < min || v > max)
		return idn_err(-EINVAL, "invalid %s \"%s\" (expected %u..%u)",
			       what, s ? s : "", min, max);
	*out = v;
	return 0;
}

int idn_parse_u64(const char *s, __u64 *out, const char *what)
{
	unsigned long long v;

	if (parse_ull(s, &v))
		return idn_err(-EINVAL, "invalid %s \"%s\" (expected a number)",
			       what, s ? s : "");
	*out = v;
	return 0;
}

int idn_parse_onoff(const char *s, bool *on, const char *what)
{
	if (!strcmp(s, "on")) {
		*on = true;
		return 0;
	}
	if (!strcmp(s, "off")) {
		*on = false;
		return 0;
	}
	return idn_err(-EINVAL, "invalid %s \"%s\" (expected on|off)", what, s);
}

int idn_parse_addr(const char *s, struct idn_addr *a)
{
	memset(a, 0, sizeof(*a));
	if (inet_pton(AF_INET, s, &a->addr[0]) == 1) {
		a->family = IDN_AF_INET;
		return 0;
	}
	if (inet_pton(AF_INET6, s, a->addr) == 1) {
		a->family = IDN_AF_INET6;
		return 0;
	}
	return idn_err(-EINVAL, "invalid address \"%s\"", s);
}

int idn_parse_prefix6(const char *s, __u8 pfx[IDN_ADDR6_PREFIX_LEN])
{
	char buf[INET6_ADDRSTRLEN + 8];
	struct in6_addr a;
	char *slash;

	if (strlen(s) >= sizeof(buf))
		goto bad;
	strcpy(buf, s);
	slash = strchr(buf, '/');
	if (!slash || strcmp(slash + 1, "48"))
		goto bad;
	*slash = 0;
	if (inet_pton(AF_INET6, buf, &a) != 1)
		goto bad;
	for (int i = IDN_ADDR6_PREFIX_LEN; i < 16; i++)
		if (a.s6_addr[i])
			goto bad;
	memcpy(pfx, a.s6_addr, IDN_ADDR6_PREFIX_LEN);
	return 0;
bad:
	return idn_err(-EINVAL, "invalid prefix6 \"%s\" (expected an IPv6 /48, host bits zero)", s);
}

int idn_parse_cap(const char *s, __u32 *cap)
{
	unsigned long long cls, var = 0;
	char buf[64], *slash;

	if (strlen(s) >= sizeof(buf))
		goto bad;
	strcpy(buf, s);
	slash = strchr(buf, '/');
	if (slash) {
		*slash = 0;
		if (parse_ull(slash + 1, &var) || var > 0xff)
			goto bad;
	}
	if (parse_ull(buf, &cls) || cls < 1 || cls > 0xffffff)
		goto bad;
	*cap = IDN_CAP(cls, var);
	return 0;
bad:
	return idn_err(-EINVAL, "invalid capability \"%s\" (expected CLASS[/VARIANT], "
		       "class 1..0xffffff, variant 0..255)", s);
}

int idn_parse_proto(const char *s, __u8 *proto)
{
	if (!strcmp(s, "tcp")) {
		*proto = IPPROTO_TCP;
		return 0;
	}
	if (!strcmp(s, "udp")) {
		*proto = IPPROTO_UDP;
		return 0;
	}
	return idn_err(-EINVAL, "invalid proto \"%s\" (expected tcp|udp)", s);
}

const char *idn_proto_name(__u8 proto)
{
	return proto == IPPROTO_TCP ? "tcp" : proto == IPPROTO_UDP ? "udp" : "unknown";
}

int idn_parse_policy(int argc, char **argv, __u8 *policy)
{
	unsigned int trust = 0, priv = 0, scope = 0, v;
	bool seen_t = false, seen_p = false, seen_s = false;
	unsigned long long raw;
	int i = 0, err;

	if (argc < 1)
		return idn_err(-EINVAL, "policy needs trust N, privacy P or scope S");
	if (!parse_ull(argv[0], &raw)) {
		if (raw & ~0x7fULL || IDN_POL_SCOPE(raw) == IDN_SCOPE_RESERVED)
			return idn_err(-EINVAL, "invalid policy \"%s\" (reserved bits set)",
				       argv[0]);
		*policy = raw;
		return 1;
	}
	while (i < argc) {
		const char *kw = argv[i];

		if (strcmp(kw, "trust") && strcmp(kw, "privacy") && strcmp(kw, "scope"))
			break;
		if (i + 1 >= argc)
			return idn_err(-EINVAL, "policy %s needs a value", kw);
		if (!strcmp(kw, "trust")) {
			if (seen_t)
				return idn_err(-EINVAL, "policy trust given twice");
			err = idn_parse_u32(argv[i + 1], 0, 7, &trust, "trust");
			seen_t = true;
		} else if (!strcmp(kw, "privacy")) {
			if (seen_p)
				return idn_err(-EINVAL, "policy privacy given twice");
			err = idn_name_parse(&idn_privacy_names, argv[i + 1], &priv);
			seen_p = true;
		} else {
			if (seen_s)
				return idn_err(-EINVAL, "policy scope given twice");
			err = idn_name_parse(&idn_scope_names, argv[i + 1], &v);
			if (!err && v == IDN_SCOPE_RESERVED)
				err = idn_err(-EINVAL, "invalid scope \"reserved\" (expected any|home|plan)");
			scope = v;
			seen_s = true;
		}
		if (err)
			return err;
		i += 2;
	}
	if (!i)
		return idn_err(-EINVAL, "invalid policy \"%s\" (expected trust N, "
			       "privacy P, scope S or a number)", argv[0]);
	*policy = IDN_POLICY(trust, priv, scope);
	return i;
}

int idn_parse_weights(const char *s, __u16 w[IDN_W_MAX])
{
	__u16 tmp[IDN_W_MAX];
	const char *p = s;
	int n = 0;

	while (n < IDN_W_MAX) {
		char *end;
		double d;

		if (!isdigit((unsigned char)*p) && *p != '.')
			goto bad;
		d = strtod(p, &end);
		if (end == p || d < 0 || d >= 256.0)
			goto bad;
		tmp[n++] = (__u16)(d * 256.0 + 0.5 > 65535 ? 65535 : d * 256.0 + 0.5);
		p = end;
		if (*p == ',' && n < IDN_W_MAX) {
			p++;
			continue;
		}
		break;
	}
	if (*p || n != IDN_W_MAX)
		goto bad;
	memcpy(w, tmp, sizeof(tmp));
	return 0;
bad:
	return idn_err(-EINVAL, "invalid weights \"%s\" (expected %d decimals "
		       "net,queue,exec,state,load,policy; 1.0 = 256)", s, IDN_W_MAX);
}

int idn_parse_domains(const char *s, __u32 *mask)
{
	const char *p = s;
	__u32 m = 0;

	for (;;) {
		unsigned long lo, hi;
		char *end;

		if (!isdigit((unsigned char)*p))
			goto bad;
		lo = strtoul(p, &end, 10);
		hi = lo;
		p = end;
		if (*p == '-') {
			p++;
			if (!isdigit((unsigned char)*p))
				goto bad;
			hi = strtoul(p, &end, 10);
			p = end;
		}
		if (lo > 31 || hi > 31 || lo > hi)
			goto bad;
		for (unsigned long d = lo; d <= hi; d++)
			m |= 1U << d;
		if (*p == ',') {
			p++;
			continue;
		}
		if (*p)
			goto bad;
		break;
	}
	*mask = m;
	return 0;
bad:
	return idn_err(-EINVAL, "invalid domains \"%s\" (expected a list like 0,2,5-7 of 0..31)", s);
}

char *idn_fmt_cap(__u32 cap, char *buf, size_t len)
{
	snprintf(buf, len, "%u/%u", IDN_CAP_CLASS(cap), IDN_CAP_VARIANT(cap));
	return buf;
}

char *idn_fmt_plan_key(const struct idn_plan_key *k, char *buf, size_t len)
{
	char t[8], pol[96];

	if (k->tier == IDN_ANY)
		snprintf(t, sizeof(t), "any");
	else
		snprintf(t, sizeof(t), "%u", k->tier);
	if (k->policy == IDN_ANY)
		snprintf(pol, sizeof(pol), "any");
	else
		idn_fmt_policy(k->policy, pol, sizeof(pol));
	snprintf(buf, len, "cap %u/%u (label %u) tier %s policy %s", IDN_CAP_CLASS(k->cap),
		 IDN_CAP_VARIANT(k->cap), k->cap, t, pol);
	return buf;
}

char *idn_fmt_policy(__u8 p, char *buf, size_t len)
{
	snprintf(buf, len, "trust %u privacy %s scope %s", IDN_POL_TRUST(p),
		 idn_name(&idn_privacy_names, IDN_POL_PRIVACY(p)),
		 idn_name(&idn_scope_names, IDN_POL_SCOPE(p)));
	return buf;
}

char *idn_fmt_addr(__u8 family, const __u32 addr[4], char *buf, size_t len)
{
	if (family == IDN_AF_INET) {
		if (!inet_ntop(AF_INET, addr, buf, len))
			snprintf(buf, len, "?");
	} else if (family == IDN_AF_INET6) {
		if (!inet_ntop(AF_INET6, addr, buf, len))
			snprintf(buf, len, "?");
	} else {
		snprintf(buf, len, "none");
	}
	return buf;
}

char *idn_fmt_domains(__u32 mask, char *buf, size_t len)
{
	size_t off = 0;

	buf[0] = 0;
	for (int d = 0; d < 32 && off < len; d++) {
		int e = d;

		if (!(mask & (1U << d)))
			continue;
		while (e < 31 && (mask & (1U << (e + 1))))
			e++;
		if (e > d)
			off += snprintf(buf + off, len - off, "%s%d-%d", off ? "," : "", d, e);
		else
			off += snprintf(buf + off, len - off, "%s%d", off ? "," : "", d);
		d = e;
	}
	if (!off)
		snprintf(buf, len, "none");
	return buf;
}
