// SPDX-License-Identifier: GPL-2.0
/*
 * fuzz_eval_trace.c - make eval's trace parser (tools/eval/trace.c):
 * any bytes as a Mooncake JSON-lines or Azure CSV trace. It must load or
 * fail with a message naming the line, never crash, leak or misbehave.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "eval.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n)
{
	char *text = malloc(n + 1), err[256];
	struct ev_trace t;

	if (!text)
		return 0;
	memcpy(text, data, n);
	text[n] = 0;
	if (!ev_trace_parse(text, "fuzz", &t, err, sizeof(err))) {
		/* what the simulator relies on */
		for (size_t i = 0; i < t.n; i++)
			if (t.r[i].in < 1 || t.r[i].out < 1 || t.r[i].k_off + t.r[i].nk > t.nkeys ||
			    (i && t.r[i].t_us < t.r[i - 1].t_us))
				abort();
		ev_trace_free(&t);
	} else if (strncmp(err, "fuzz", 4)) {
		abort();
	}
	free(text);
	return 0;
}
