// SPDX-License-Identifier: GPL-2.0
/*
 * state.c - idnctl state: the state summaries agents report to idnd with
 * their heartbeats (state descriptors S, cache policy, affinity self-check;
 * docs/agent.md "State"), read from idnd's API:
 *
 *   idnctl [-C URL] state show [ node ID ]   GET /v1/state, /v1/nodes/ID/state
 *
 * URL: -C, else $IDN_CONTROLLER, else http://127.0.0.1:8787. With -j the
 * API's JSON is printed as it came (-p pretty); errors are the API's
 * {"error": ...} text, exit 1.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <json-c/json.h>

#include "idnctl.h"

static const char *s(json_object *o, const char *k)
{
	json_object *v;

	return json_object_object_get_ex(o, k, &v) && v ? json_object_get_string(v) : "-";
}

static bool has(json_object *o, const char *k)
{
	return json_object_object_get_ex(o, k, NULL);
}

static void print_node(json_object *n)
{
	json_object *a, *d;
	char cb[32];

	printf("node %s policy %s kv-blocks %s cached %s groups %s updated %s\n", s(n, "node"),
	       s(n, "policy"), s(n, "kv_blocks"), s(n, "kv_cached"), s(n, "groups"),
	       s(n, "updated"));
	if (json_object_object_get_ex(n, "affinity", &a))
		printf("  affinity checked %s agree %s mismatch %s unknown %s\n", s(a, "checked"),
		       s(a, "agree"), s(a, "mismatch"), s(a, "unknown"));
	if (!json_object_object_get_ex(n, "descriptors", &d))
		return;
	for (size_t i = 0; i < json_object_array_length(d); i++) {
		json_object *x = json_object_array_get_idx(d, i);

		printf("  %s", s(x, "type"));
		if (has(x, "root"))
			printf(" root %s", s(x, "root"));
		if (has(x, "name"))
			printf(" name %s cap %s", s(x, "name"),
			       idn_fmt_cap((__u32)json_object_get_int64(
					   json_object_object_get(x, "cap")), cb, sizeof(cb)));
		printf(" scope %s", s(x, "scope"));
		if (has(x, "tenant") && json_object_get_int64(json_object_object_get(x, "tenant")))
			printf(" tenant %s", s(x, "tenant"));
		if (has(x, "session"))
			printf(" session %s", s(x, "session"));
		if (has(x, "blocks"))
			printf(" blocks %s", s(x, "blocks"));
		printf(" size %s", s(x, "size"));
		if (has(x, "reuse"))
			printf(" reuse %s hits %s value-us %s", s(x, "reuse"), s(x, "hits"),
			       s(x, "value_us"));
		if (json_object_get_int64(json_object_object_get(x, "migration_us")) < 0)
			printf(" migration never");
		else
			printf(" migration-us %s", s(x, "migration_us"));
		printf(" compat %s\n", s(x, "compat"));
	}
}

static int state_usage(void)
{
	fprintf(stdout,
"Usage: idnctl [ -C URL ] state show [ node ID ]\n"
"       idnctl state help\n");
	return EXIT_OK;
}

int do_state(int argc, char **argv)
{
	char path[64] = "/v1/state";
	json_object *o;
	__u32 id = 0;
	bool one = false;
	int rc;

	if (argc >= 1 && matches(*argv, "help"))
		return state_usage();
	if (argc >= 1 && !matches(*argv, "show"))
		return unknown_cmd("state", *argv);
	for (argc--, argv++; argc > 0; argc--, argv++) {
		if (matches(*argv, "node")) {
			NEXT_ARG();
			if (one)
				return duparg("node");
			PARSE(idn_parse_u32(*argv, 0, IDN_MAX_NODES - 1, &id, "node id"));
			one = true;
		} else {
			return usage_error("unknown argument \"%s\", try \"idnctl state help\".",
					   *argv);
		}
	}
	if (one)
		snprintf(path, sizeof(path), "/v1/nodes/%u/state", id);
	rc = ctl_api("GET", path, NULL, &o);
	if (rc)
		return rc;
	if (G.json) {
		puts(json_object_to_json_string_ext(o, G.pretty ? JSON_C_TO_STRING_PRETTY :
						       JSON_C_TO_STRING_PLAIN));
	} else if (one) {
		print_node(o);
	} else {
		for (size_t i = 0; i < json_object_array_length(o); i++)
			print_node(json_object_array_get_idx(o, i));
	}
	json_object_put(o);
	return EXIT_OK;
}
