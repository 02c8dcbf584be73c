// SPDX-License-Identifier: GPL-2.0
/*
 * names.c - the one name table per uapi enum. Parsing and printing both
 * use these, so a name shown by `idnctl stats` is what `idnctl` accepts.
 * Append only, like the enums; the asserts catch a forgotten entry.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "libidn.h"

IDN_ASSERT_ABI();

static const char *const verdicts[] = {
	[IDN_V_PASS] = "pass",
	[IDN_V_CONN] = "conn",
	[IDN_V_NEW] = "new",
	[IDN_V_AFFINITY] = "affinity",
	[IDN_V_FALLBACK] = "fallback",
	[IDN_V_OVERFLOW] = "overflow",
	[IDN_V_SHED] = "shed",
	[IDN_V_NOCAP] = "nocap",
	[IDN_V_MISS_HOLD] = "miss-hold",
	[IDN_V_MISS_REJECT] = "miss-reject",
	[IDN_V_MALFORMED] = "malformed",
	[IDN_V_TELEMETRY] = "telemetry",
	[IDN_V_ERROR] = "error",
};
_Static_assert(ARRAY_SIZE(verdicts) == IDN_V_MAX, "verdict names");

static const char *const drops[] = {
	[IDN_DROP_NONE] = "none",
	[IDN_DROP_TRUNC_L2] = "trunc-l2",
	[IDN_DROP_TRUNC_L3] = "trunc-l3",
	[IDN_DROP_BAD_IP4] = "bad-ip4",
	[IDN_DROP_IP4_FRAG] = "ip4-frag",
	[IDN_DROP_BAD_IP6] = "bad-ip6",
	[IDN_DROP_TRUNC_L4] = "trunc-l4",
	[IDN_DROP_BAD_TCP] = "bad-tcp",
	[IDN_DROP_BAD_OPT] = "bad-opt",
	[IDN_DROP_BAD_OPT_VER] = "bad-opt-ver",
	[IDN_DROP_BAD_ADDR6] = "bad-addr6",
	[IDN_DROP_BAD_DESC] = "bad-desc",
	[IDN_DROP_BAD_TELEMETRY] = "bad-telemetry",
	[IDN_DROP_TELE_SPOOF] = "tele-spoof",
	[IDN_DROP_TELE_REPLAY] = "tele-replay",
	[IDN_DROP_NO_NODE] = "no-node",
	[IDN_DROP_ENCAP] = "encap",
	[IDN_DROP_FIB] = "fib",
	[IDN_DROP_MTU] = "mtu",
	[IDN_DROP_BAD_FLAGS] = "bad-tcp-flags",
	[IDN_DROP_BAD_UDP] = "bad-udp",
	[IDN_DROP_TTL] = "ttl-zero",
	[IDN_DROP_IP4_CSUM] = "ip4-csum",
	[IDN_DROP_IP6_FRAG] = "ip6-frag",
	[IDN_DROP_IP6_EXT] = "ip6-ext",
	[IDN_DROP_VLAN] = "vlan-depth",
	[IDN_DROP_NO_STATE] = "no-state",
	[IDN_DROP_FLOOD] = "flood-guard",
	[IDN_DROP_NODE_DOWN] = "node-down",
	[IDN_DROP_TELE_NOKEY] = "tele-nokey",
	[IDN_DROP_TELE_MAC] = "tele-mac",
	[IDN_DROP_TS_COOKIE] = "ts-cookie",
};
_Static_assert(ARRAY_SIZE(drops) == IDN_DROP_MAX, "drop reason names");

static const char *const rejects[] = {
	[IDN_REJ_NONE] = "ok",
	[IDN_REJ_NO_NODE] = "no-node",
	[IDN_REJ_HEALTH] = "health",
	[IDN_REJ_TRUST] = "trust",
	[IDN_REJ_PRIVACY] = "privacy",
	[IDN_REJ_SCOPE] = "scope",
	[IDN_REJ_VARIANT] = "variant",
	[IDN_REJ_FAMILY] = "family",
	[IDN_REJ_OVERLOAD] = "overload",
	[IDN_REJ_BUDGET] = "budget",
	[IDN_REJ_SLO] = "slo",
	[IDN_REJ_NODE_DOWN] = "node-down",
};
_Static_assert(ARRAY_SIZE(rejects) == IDN_REJ_MAX, "reject names");

static const char *const healths[] = {
	[IDN_HEALTH_UNKNOWN] = "unknown",
	[IDN_HEALTH_UP] = "up",
	[IDN_HEALTH_DRAIN] = "drain",
	[IDN_HEALTH_DOWN] = "down",
};

static const char *const privacies[] = {
	[IDN_PRIV_PUBLIC] = "public",
	[IDN_PRIV_TENANT] = "tenant",
	[IDN_PRIV_CONFIDENTIAL] = "confidential",
	[IDN_PRIV_HW_BOUND] = "hw-bound",
};

static const char *const scopes[] = {
	[IDN_SCOPE_ANY] = "any",
	[IDN_SCOPE_HOME] = "home",
	[IDN_SCOPE_PLAN] = "plan",
	[IDN_SCOPE_RESERVED] = "reserved",
};

static const char *const weights[] = {
	[IDN_W_NET] = "net",
	[IDN_W_QUEUE] = "queue",
	[IDN_W_EXEC] = "exec",
	[IDN_W_STATE] = "state",
	[IDN_W_LOAD] = "load",
	[IDN_W_POLICY] = "policy",
};
_Static_assert(ARRAY_SIZE(weights) == IDN_W_MAX, "weight names");

/* idn.ko (generic netlink family "idn") */
static const char *const hold_reasons[] = {
	[IDN_HOLD_R_NONE] = "none",
	[IDN_HOLD_R_TIMEOUT] = "timeout",
	[IDN_HOLD_R_OVERFLOW] = "overflow",
	[IDN_HOLD_R_FLUSH] = "flush",
	[IDN_HOLD_R_UNLOAD] = "unload",
	[IDN_HOLD_R_DEVICE] = "device",
};
_Static_assert(ARRAY_SIZE(hold_reasons) == __IDN_HOLD_R_MAX, "hold reason names");

/* as in /proc/net/idn and docs/kernel.md; PAD has no name */
static const char *const hold_stats[] = {
	[IDN_HS_HELD] = "held",
	[IDN_HS_RELEASED] = "released",
	[IDN_HS_REJ_TIMEOUT] = "rej_timeout",
	[IDN_HS_REJ_OVERFLOW] = "rej_overflow",
	[IDN_HS_REJ_FLUSH] = "rej_flush",
	[IDN_HS_DROPPED] = "dropped",
	[IDN_HS_EVENTS] = "events",
	[IDN_HS_EVENTS_LIMITED] = "events_limited",
};
_Static_assert(ARRAY_SIZE(hold_stats) == __IDN_HS_MAX, "hold stat names");

#define NAMES(var, tbl, w) \
	const struct idn_names var = { .name = tbl, .n = ARRAY_SIZE(tbl), .what = w }

NAMES(idn_verdict_names, verdicts, "verdict");
NAMES(idn_drop_names, drops, "drop reason");
NAMES(idn_reject_names, rejects, "reject reason");
NAMES(idn_health_names, healths, "health");
NAMES(idn_privacy_names, privacies, "privacy");
NAMES(idn_scope_names, scopes, "scope");
NAMES(idn_weight_names, weights, "weight");
NAMES(idn_hold_reason_names, hold_reasons, "hold reason");
NAMES(idn_hold_stat_names, hold_stats, "hold counter");

const char *idn_name(const struct idn_names *t, unsigned int v)
{
	static __thread char buf[4][24];
	static __thread int i;

	if (v < t->n && t->name[v])
		return t->name[v];
	i = (i + 1) % 4;
	snprintf(buf[i], sizeof(buf[i]), "unknown-%u", v);
	return buf[i];
}

int idn_name_parse(const struct idn_names *t, const char *s, unsigned int *v)
{
	char list[256] = "";
	size_t off = 0;

	for (unsigned int i = 0; i < t->n; i++) {
		if (t->name[i] && !strcmp(t->name[i], s)) {
			*v = i;
			return 0;
		}
	}
	for (unsigned int i = 0; i < t->n && off < sizeof(list); i++) {
		if (!t->name[i])
			continue;
		off += snprintf(list + off, sizeof(list) - off, "%s%s",
				off ? "|" : "", t->name[i]);
	}
	return idn_err(-EINVAL, "invalid %s \"%s\" (expected %s)", t->what, s, list);
}
