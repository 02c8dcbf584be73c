// SPDX-License-Identifier: GPL-2.0
/*
 * fuzz_agent_metrics.c - libFuzzer harness for the real-engine adapter's
 * Prometheus text parser (agent/adapter.c, adapter_parse_metrics): any
 * bytes (not NUL-terminated) parse without a crash, leak or UB; the
 * counts stay consistent and no figure is negative or not finite; the
 * load mapping of what was parsed stays in range.
 */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "agent.h"

#define CHECK(x) do { if (!(x)) abort(); } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)
{
	char *p = malloc(n ? n : 1);	/* exactly n bytes: overreads are caught */
	struct adapter_metrics m;
	struct adapter ad;
	struct eng_load l;
	int rc;

	if (!p)
		return 0;
	memcpy(p, d, n);
	rc = adapter_parse_metrics(p, n, &m);
	CHECK(rc == 0 || rc == -EBADMSG);
	CHECK((rc != 0) == (m.malformed != 0));
	CHECK(m.malformed + m.known <= m.lines);
	CHECK(isfinite(m.running) && m.running >= 0 && isfinite(m.waiting) && m.waiting >= 0);
	CHECK(isfinite(m.kv_use) && m.kv_use >= 0);
	if (!adapter_init(&ad, "http://127.0.0.1:1", 100, 256)) {
		ad.m = m;
		ad.up = true;
		adapter_load(&ad, &l);
		CHECK(l.load <= 1000 && l.kv_use <= 1000);
		adapter_stop(&ad);
	}
	free(p);
	return 0;
}
