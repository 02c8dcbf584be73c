/* SPDX-License-Identifier: GPL-2.0 */
/*
 * trace.h - reads the request traces (JSON lines with input_length,
 * output_length and hash_ids, as in the Mooncake traces) into an array,
 * for the agent's cache tests and tools/bench/idn_cachebench. Lines that
 * are not JSON are skipped; a missing field reads as 0 / no blocks.
 */
#ifndef IDN_SELFTESTS_TRACE_H
#define IDN_SELFTESTS_TRACE_H

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <json-c/json.h>

struct treq {
	uint32_t in, out, n;	/* prompt tokens, output tokens, prefix blocks */
	int64_t *ids;		/* the n block hash ids */
};

/* appends every request of f to *t (*nt of them, *alloc allocated): 0 or -ENOMEM */
static inline int trace_read(FILE *f, struct treq **t, uint32_t *nt, size_t *alloc)
{
	size_t cap = 0;
	char *line = NULL;
	int err = 0;

	while (!err && getline(&line, &cap, f) > 0) {
		json_object *o = json_tokener_parse(line), *x, *ids = NULL;
		struct treq *r;

		if (!o)
			continue;
		if (*nt == *alloc) {
			size_t n = *alloc ? *alloc * 2 : 4096;
			struct treq *p = realloc(*t, sizeof(*p) * n);

			if (!p) {
				json_object_put(o);
				err = -ENOMEM;
				break;
			}
			*t = p;
			*alloc = n;
		}
		r = &(*t)[*nt];
		r->in = json_object_object_get_ex(o, "input_length", &x) ? json_object_get_int(x) : 0;
		r->out = json_object_object_get_ex(o, "output_length", &x) ? json_object_get_int(x) : 0;
		if (json_object_object_get_ex(o, "hash_ids", &ids) &&
		    json_object_is_type(ids, json_type_array))
			r->n = json_object_array_length(ids);
		else
			r->n = 0;
		r->ids = malloc(sizeof(*r->ids) * (r->n ? r->n : 1));
		if (!r->ids)
			err = -ENOMEM;
		for (uint32_t i = 0; !err && i < r->n; i++)
			r->ids[i] = json_object_get_int64(json_object_array_get_idx(ids, i));
		json_object_put(o);
		if (!err)
			(*nt)++;
	}
	free(line);
	return err;
}

#endif /* IDN_SELFTESTS_TRACE_H */
