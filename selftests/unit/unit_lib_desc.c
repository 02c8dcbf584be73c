// SPDX-License-Identifier: GPL-2.0
/*
 * unit_lib_desc.c - bpf/lib/desc.h compiled for userspace: the address
 * token, the descriptor prefix match, the IPv6 descriptor address and
 * TCP option decoders (every field, every rejection, no change to the
 * descriptor when a decode fails) and idn_desc_validate() at each bound.
 */
#include "lib/desc.h"
#include "../lib/tap.h"
#include "../lib/pktgen.h"

IDN_ASSERT_ABI();

static const uint8_t prefix[6] = { 0x20, 0x01, 0x0d, 0xb8, 0x1d, 0x4e };

static void flow6_to(struct idn_flow_key *f, const uint8_t daddr[16])
{
	memset(f, 0, sizeof(*f));
	f->family = IDN_AF_INET6;
	memcpy(f->daddr, daddr, 16);
}

static void test_addr_token(void)
{
	struct idn_flow_key a = { .family = IDN_AF_INET }, b;
	__u64 t;

	a.saddr[0] = htonl(0xc000020a);
	a.daddr[0] = htonl(0xc6336401);
	t = idn_addr_token(&a);
	/* by hand: mix(hi<<32 ^ lo ^ mix(s2<<32 ^ s3)) */
	ASSERT_EQ(t, idn_mix64(((__u64)a.saddr[0] << 32) ^ idn_mix64(0)), "formula");
	ASSERT_NEQ(t, 0, "nonzero");
	b = a;
	b.daddr[0] = htonl(0x01020304);
	b.sport = 1;
	b.dport = 2;
	ASSERT_EQ(idn_addr_token(&b), t, "depends on the source address only");
	b.saddr[0] ^= htonl(1);
	ASSERT_NEQ(idn_addr_token(&b), t, "another client, another token");
	b = a;
	b.saddr[3] = 1;
	ASSERT_NEQ(idn_addr_token(&b), t, "all 128 bits count");
	/* splitmix finaliser maps 0 to 0: the all-zero address must not
	 * give token 0 (which means "no token") */
	memset(&b, 0, sizeof(b));
	ASSERT_EQ(idn_addr_token(&b), 1, "zero address gives token 1");
}

static void test_mix64_known(void)
{
	/* splitmix64 finaliser of 1, computed by hand from its definition */
	__u64 x = 1;

	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ULL;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebULL;
	x ^= x >> 31;
	ASSERT_EQ(idn_mix64(1), x, "mix64(1)");
	ASSERT_EQ(idn_mix64(0), 0, "mix64(0)");
	ASSERT_NEQ(idn_mix64(1), idn_mix64(2), "injective on small inputs");
}

static void test_prefix_match(void)
{
	struct idn_config cfg = { 0 };
	struct idn_flow_key f;
	uint8_t a[16];

	memcpy(cfg.prefix6, prefix, 6);
	pg_addr6_desc(a, prefix, 1, 2, IDN_CAP(5, 0), 0, 9);
	flow6_to(&f, a);
	ASSERT_EQ(idn_addr6_in_prefix(&cfg, &f), 0, "prefix off");
	cfg.prefix6_on = 1;
	ASSERT_EQ(idn_addr6_in_prefix(&cfg, &f), 1, "in prefix");
	for (int i = 0; i < 6; i++) {
		struct idn_flow_key g = f;

		((uint8_t *)g.daddr)[i] ^= 0x80;
		ASSERT_EQ(idn_addr6_in_prefix(&cfg, &g), 0, "byte of the /48 differs");
	}
	for (int i = 6; i < 16; i++) {
		struct idn_flow_key g = f;

		((uint8_t *)g.daddr)[i] ^= 0xff;
		ASSERT_EQ(idn_addr6_in_prefix(&cfg, &g), 1, "descriptor bytes free");
	}
	f.family = IDN_AF_INET;
	ASSERT_EQ(idn_addr6_in_prefix(&cfg, &f), 0, "IPv4 never matches");
	/* bytes 6,7 of the config prefix are not part of the /48 */
	flow6_to(&f, a);
	cfg.prefix6[6] = 0xaa;
	cfg.prefix6[7] = 0x55;
	ASSERT_EQ(idn_addr6_in_prefix(&cfg, &f), 1, "prefix6[6..7] ignored");
}

static void test_addr6_decode(void)
{
	struct idn_flow_key f;
	struct idn_desc d;
	uint8_t a[16];

	pg_addr6_desc(a, prefix, 1, 11, IDN_CAP(0xabcdef, 0x42), IDN_POLICY(3, 1, 2),
		      0xdeadbeef);
	flow6_to(&f, a);
	memset(&d, 0x5a, sizeof(d));
	if (!ASSERT_EQ(idn_desc_from_addr6(&f, &d), 0, "decode"))
		return;
	ASSERT_EQ(d.cap, IDN_CAP(0xabcdef, 0x42), "cap");
	ASSERT_EQ(IDN_CAP_CLASS(d.cap), 0xabcdef, "class");
	ASSERT_EQ(IDN_CAP_VARIANT(d.cap), 0x42, "variant");
	ASSERT_EQ(d.tier, 11, "tier");
	ASSERT_EQ(d.policy, IDN_POLICY(3, 1, 2), "policy");
	ASSERT_EQ(d.token, 0xdeadbeef, "token 32 bits");
	ASSERT_EQ(d.size_class, 0, "size class");
	ASSERT_EQ(d.budget, 0, "budget cleared");
	ASSERT_EQ(d.tenant, 0, "tenant cleared");
	ASSERT_EQ(d.pad, 0, "pad cleared");
	ASSERT_EQ(d.flags, IDN_DF_ADDR6 | IDN_DF_TOKEN, "flags");
	ASSERT_EQ(idn_desc_validate(&d), 0, "valid");

	/* token 0: no token flag (a hash is used instead) */
	pg_addr6_desc(a, prefix, 1, 0, IDN_CAP(1, 0), 0, 0);
	flow6_to(&f, a);
	ASSERT_EQ(idn_desc_from_addr6(&f, &d), 0, "decode token 0");
	ASSERT_EQ(d.token, 0, "token 0");
	ASSERT_EQ(d.flags, IDN_DF_ADDR6, "no DF_TOKEN");

	/* every other version is rejected and leaves d alone */
	for (int v = 0; v < 16; v++) {
		struct idn_desc keep;

		if (v == IDN_ADDR6_VERSION)
			continue;
		pg_addr6_desc(a, prefix, v, 3, IDN_CAP(1, 0), 0, 5);
		flow6_to(&f, a);
		memset(&d, 0x77, sizeof(d));
		keep = d;
		ASSERT_EQ(idn_desc_from_addr6(&f, &d), IDN_DROP_BAD_ADDR6, "version");
		ASSERT_MEM(&d, &keep, sizeof(d), "unchanged on failure");
	}

	/* policy with reserved bit / scope 3 decodes but fails validation */
	pg_addr6_desc(a, prefix, 1, 3, IDN_CAP(1, 0), 0x80, 5);
	flow6_to(&f, a);
	ASSERT_EQ(idn_desc_from_addr6(&f, &d), 0, "decode reserved policy");
	ASSERT_EQ(idn_desc_validate(&d), IDN_DROP_BAD_DESC, "reserved policy bit");
	pg_addr6_desc(a, prefix, 1, 3, IDN_CAP(1, 0), 0x60, 5);
	flow6_to(&f, a);
	ASSERT_EQ(idn_desc_from_addr6(&f, &d), 0, "decode scope 3");
	ASSERT_EQ(idn_desc_validate(&d), IDN_DROP_BAD_DESC, "scope 3");
	/* class 0 */
	pg_addr6_desc(a, prefix, 1, 3, IDN_CAP(0, 7), 0, 5);
	flow6_to(&f, a);
	ASSERT_EQ(idn_desc_from_addr6(&f, &d), 0, "decode class 0");
	ASSERT_EQ(idn_desc_validate(&d), IDN_DROP_BAD_DESC, "class 0");
}

static struct idn_desc vip_defaults(void)
{
	struct idn_desc d = {
		.token = 0x1111, .cap = IDN_CAP(9, 1), .budget = 300, .tenant = 7,
		.tier = 4, .policy = IDN_POLICY(1, 0, 0), .size_class = 2,
		.flags = 0,
	};
	return d;
}

static void test_opt_apply(void)
{
	struct idn_tcpopt o;
	struct idn_desc d;

	/* all fields given */
	d = vip_defaults();
	pg_idnopt_fill(&o, 1, 13, IDN_POLICY(5, 2, 1), 6, IDN_CAP(0x123456, 3),
		       0x0102030405060708ULL);
	if (!ASSERT_EQ(idn_desc_apply_opt(&o, &d), 0, "apply"))
		return;
	ASSERT_EQ(d.cap, IDN_CAP(0x123456, 3), "cap from option");
	ASSERT_EQ(d.tier, 13, "tier");
	ASSERT_EQ(d.policy, IDN_POLICY(5, 2, 1), "policy");
	ASSERT_EQ(d.size_class, 6, "size class");
	ASSERT_EQ(d.token, 0x0102030405060708ULL, "token 64 bits, hi then lo");
	ASSERT_EQ(d.budget, 300, "budget stays the VIP's");
	ASSERT_EQ(d.tenant, 7, "tenant stays the VIP's");
	ASSERT_EQ(d.flags, IDN_DF_OPT | IDN_DF_SIZE | IDN_DF_TOKEN, "flags");
	ASSERT_EQ(idn_desc_validate(&d), 0, "valid");

	/* cap 0, size none, token 0: the VIP's values stay */
	d = vip_defaults();
	pg_idnopt_fill(&o, 1, 2, 0, IDN_SIZE_NONE, 0, 0);
	ASSERT_EQ(idn_desc_apply_opt(&o, &d), 0, "apply minimal");
	ASSERT_EQ(d.cap, IDN_CAP(9, 1), "VIP cap");
	ASSERT_EQ(d.size_class, 2, "VIP size class");
	ASSERT_EQ(d.token, 0x1111, "VIP token");
	ASSERT_EQ(d.tier, 2, "tier always from the option");
	ASSERT_EQ(d.policy, 0, "policy always from the option");
	ASSERT_EQ(d.flags, IDN_DF_OPT, "only DF_OPT");

	/* token with only the low half */
	d = vip_defaults();
	pg_idnopt_fill(&o, 1, 2, 0, IDN_SIZE_NONE, 0, 5);
	ASSERT_EQ(idn_desc_apply_opt(&o, &d), 0, "apply lo token");
	ASSERT_EQ(d.token, 5, "lo token");
	pg_idnopt_fill(&o, 1, 2, 0, IDN_SIZE_NONE, 0, 1ULL << 32);
	ASSERT_EQ(idn_desc_apply_opt(&o, &d), 0, "apply hi token");
	ASSERT_EQ(d.token, 1ULL << 32, "hi token");

	/* size class bounds */
	for (int s = 0; s < 256; s++) {
		struct idn_desc keep;
		int r;

		d = vip_defaults();
		keep = d;
		pg_idnopt_fill(&o, 1, 2, 0, (uint8_t)s, 0, 0);
		r = idn_desc_apply_opt(&o, &d);
		if (s <= 15 || s == IDN_SIZE_NONE) {
			ASSERT_EQ(r, 0, "size in range");
		} else {
			if (!ASSERT_EQ(r, IDN_DROP_BAD_DESC, "size out of range"))
				printf("# size %d\n", s);
			ASSERT_MEM(&d, &keep, sizeof(d), "unchanged on failure");
		}
	}
}

static void test_opt_reject(void)
{
	struct idn_tcpopt o;
	struct idn_desc d, keep;

	for (int v = 0; v < 16; v++) {
		if (v == IDN_TCPOPT_VERSION)
			continue;
		d = vip_defaults();
		keep = d;
		pg_idnopt_fill(&o, v, 1, 0, IDN_SIZE_NONE, IDN_CAP(2, 0), 3);
		ASSERT_EQ(idn_desc_apply_opt(&o, &d), IDN_DROP_BAD_OPT_VER, "version");
		ASSERT_MEM(&d, &keep, sizeof(d), "unchanged");
	}
	for (int r = 1; r < 256; r <<= 1) {
		d = vip_defaults();
		keep = d;
		pg_idnopt_fill(&o, 1, 1, 0, IDN_SIZE_NONE, IDN_CAP(2, 0), 3);
		o.rsvd = (uint8_t)r;
		ASSERT_EQ(idn_desc_apply_opt(&o, &d), IDN_DROP_BAD_OPT, "reserved byte");
		ASSERT_MEM(&d, &keep, sizeof(d), "unchanged");
	}
	/*
	 * reserved policy bit, scope 3: refused by the option's own check
	 * (strict admission, before any table), the descriptor unchanged
	 */
	d = vip_defaults();
	keep = d;
	pg_idnopt_fill(&o, 1, 1, 0x80, IDN_SIZE_NONE, 0, 0);
	ASSERT_EQ(idn_tcpopt_check(&o), IDN_DROP_BAD_DESC, "policy bit 7: option check");
	ASSERT_EQ(idn_desc_apply_opt(&o, &d), IDN_DROP_BAD_DESC, "policy bit 7");
	ASSERT_MEM(&d, &keep, sizeof(d), "unchanged");
	pg_idnopt_fill(&o, 1, 1, IDN_POLICY(0, 0, 3), IDN_SIZE_NONE, 0, 0);
	ASSERT_EQ(idn_tcpopt_check(&o), IDN_DROP_BAD_DESC, "scope 3: option check");
	ASSERT_EQ(idn_desc_apply_opt(&o, &d), IDN_DROP_BAD_DESC, "scope 3");
	ASSERT_MEM(&d, &keep, sizeof(d), "unchanged");
	/* option giving a class-0 capability */
	d = vip_defaults();
	pg_idnopt_fill(&o, 1, 1, 0, IDN_SIZE_NONE, IDN_CAP(0, 9), 0);
	ASSERT_EQ(idn_desc_apply_opt(&o, &d), 0, "decodes");
	ASSERT_EQ(idn_desc_validate(&d), IDN_DROP_BAD_DESC, "class 0 from option");
}

static void test_validate_bounds(void)
{
	struct idn_desc d = vip_defaults();

	ASSERT_EQ(idn_desc_validate(&d), 0, "defaults valid");
	d.tier = 15;
	ASSERT_EQ(idn_desc_validate(&d), 0, "tier 15");
	d.tier = 16;
	ASSERT_EQ(idn_desc_validate(&d), IDN_DROP_BAD_DESC, "tier 16");
	d = vip_defaults();
	d.size_class = 15;
	ASSERT_EQ(idn_desc_validate(&d), 0, "size 15");
	d.size_class = 16;
	ASSERT_EQ(idn_desc_validate(&d), IDN_DROP_BAD_DESC, "size 16");
	d = vip_defaults();
	/* every policy byte: valid iff bit 7 clear and scope != 3 */
	for (int p = 0; p < 256; p++) {
		int want = (p & 0x80) || ((p >> 5) & 3) == 3 ? IDN_DROP_BAD_DESC : 0;

		d.policy = (uint8_t)p;
		if (!ASSERT_EQ(idn_desc_validate(&d), want, "policy"))
			printf("# policy 0x%02x\n", p);
	}
	d = vip_defaults();
	d.cap = IDN_CAP(0, 0);
	ASSERT_EQ(idn_desc_validate(&d), IDN_DROP_BAD_DESC, "cap 0");
	d.cap = IDN_CAP(1, 0);
	ASSERT_EQ(idn_desc_validate(&d), 0, "class 1");
	d.cap = IDN_CAP(0xffffff, 0xff);
	ASSERT_EQ(idn_desc_validate(&d), 0, "class max");
}

int main(void)
{
	tap_plan(0);
	TAP_RUN(test_mix64_known);
	TAP_RUN(test_addr_token);
	TAP_RUN(test_prefix_match);
	TAP_RUN(test_addr6_decode);
	TAP_RUN(test_opt_apply);
	TAP_RUN(test_opt_reject);
	TAP_RUN(test_validate_bounds);
	return tap_done();
}
