// SPDX-License-Identifier: GPL-2.0
/*
 * fuzz_args.c - libFuzzer harness for libidn's command-line value
 * parsers (ctl/lib/args.c). The first input byte picks the parser, the
 * rest is the argument (NUL-terminated copy of exactly that size; for
 * policy it is split on spaces into an argv). Every accepted value is
 * formatted back and must parse to the same value again.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "libidn.h"

#define CHECK(x) do { if (!(x)) abort(); } while (0)

static void one(unsigned int which, char *s)
{
	char buf[128];
	__u32 u32, u32b;
	__u64 u64;
	bool on;
	struct idn_addr a, b;
	__u8 pfx[IDN_ADDR6_PREFIX_LEN], u8, u8b;
	__u16 w[IDN_W_MAX];

	switch (which % 9) {
	case 0:
		if (!idn_parse_u32(s, 0, UINT32_MAX, &u32, "number"))
			CHECK(!idn_parse_u32(s, u32, u32, &u32b, "number") && u32 == u32b);
		break;
	case 1:
		idn_parse_u64(s, &u64, "number");
		idn_parse_onoff(s, &on, "flag");
		break;
	case 2:
		if (!idn_parse_addr(s, &a)) {
			idn_fmt_addr(a.family, a.addr, buf, sizeof(buf));
			CHECK(!idn_parse_addr(buf, &b));
			CHECK(a.family == b.family && !memcmp(a.addr, b.addr, sizeof(a.addr)));
		}
		break;
	case 3:
		idn_parse_prefix6(s, pfx);
		break;
	case 4:
		if (!idn_parse_cap(s, &u32)) {
			idn_fmt_cap(u32, buf, sizeof(buf));
			CHECK(!idn_parse_cap(buf, &u32b) && u32 == u32b);
		}
		break;
	case 5:
		if (!idn_parse_proto(s, &u8))
			CHECK(!idn_parse_proto(idn_proto_name(u8), &u8b) && u8 == u8b);
		break;
	case 6: {
		char *argv[16];
		int argc = 0, n;

		for (char *t = strtok(s, " "); t && argc < 16; t = strtok(NULL, " "))
			argv[argc++] = t;
		n = idn_parse_policy(argc, argv, &u8);
		CHECK(n < 0 || (n >= 1 && n <= argc));
		if (n > 0) {
			char *av[6], *t;
			int ac = 0;

			CHECK(!(u8 & 0x80));
			idn_fmt_policy(u8, buf, sizeof(buf));
			for (t = strtok(buf, " "); t && ac < 6; t = strtok(NULL, " "))
				av[ac++] = t;
			CHECK(idn_parse_policy(ac, av, &u8b) == 6 && u8 == u8b);
		}
		break;
	}
	case 7:
		idn_parse_weights(s, w);
		break;
	case 8:
		if (!idn_parse_domains(s, &u32)) {
			idn_fmt_domains(u32, buf, sizeof(buf));
			CHECK(!idn_parse_domains(buf, &u32b) && u32 == u32b);
		}
		break;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s;

	if (size < 1 || size > 4096)
		return 0;
	s = malloc(size);
	if (!s)
		abort();
	memcpy(s, data + 1, size - 1);
	s[size - 1] = 0;
	one(data[0], s);
	free(s);
	return 0;
}
