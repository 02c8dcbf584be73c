// SPDX-License-Identifier: GPL-2.0
/*
 * controller.c - idnctl objects served by the controller (idnd) over its
 * HTTP/JSON API with libcurl, not by the maps:
 *
 *   idnctl [-C URL] controller status
 *   idnctl [-C URL] placement { show | solve [ dry-run ] | explain cap CAP }
 *   idnctl [-C URL] cap list            (the registry; `cap show` is the dataplane)
 *
 * URL: -C, else $IDN_CONTROLLER, else http://127.0.0.1:8787. With -j the
 * API's JSON is printed as it came (-p pretty); errors are the API's
 * {"error": ...} text, exit 1.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <curl/curl.h>
#include <json-c/json.h>

#include "idnctl.h"

struct rbuf {
	char *p;
	size_t len;
};

static size_t on_data(char *d, size_t sz, size_t nm, void *arg)
{
	struct rbuf *b = arg;
	size_t n = sz * nm;
	char *np = b->len + n > (16u << 20) ? NULL : realloc(b->p, b->len + n + 1);

	if (!np)
		return 0;
	memcpy(np + b->len, d, n);
	b->p = np;
	b->len += n;
	b->p[b->len] = 0;
	return n;
}

static const char *ctl_url(void)
{
	const char *u = G.ctl_url ? G.ctl_url : getenv("IDN_CONTROLLER");

	return u && *u ? u : "http://127.0.0.1:8787";
}

/* One API call; *out: the parsed answer (2xx only). Prints errors. */
static int api(const char *method, const char *path, const char *body, json_object **out)
{
	struct curl_slist *h = NULL;
	struct rbuf b = {};
	char url[1024];
	long code = 0;
	CURLcode rc;
	CURL *c;

	*out = NULL;
	snprintf(url, sizeof(url), "%s%s", ctl_url(), path);
	curl_global_init(CURL_GLOBAL_DEFAULT);
	c = curl_easy_init();
	if (!c)
		return runtime_error("controller: cannot init libcurl");
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
	if (body) {
		h = curl_slist_append(h, "Content-Type: application/json");
		curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
	}
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 30000L);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	rc = curl_easy_perform(c);
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
	curl_slist_free_all(h);
	curl_easy_cleanup(c);
	if (rc != CURLE_OK) {
		free(b.p);
		return runtime_error("controller %s: %s", ctl_url(), curl_easy_strerror(rc));
	}
	*out = b.p ? json_tokener_parse(b.p) : NULL;
	if (code < 200 || code > 299 || !*out) {
		json_object *e = NULL;
		const char *msg = b.p ? b.p : "";

		if (*out && json_object_object_get_ex(*out, "error", &e))
			msg = json_object_get_string(e);
		runtime_error("controller: %s %s: HTTP %ld: %s", method, path, code, msg);
		json_object_put(*out);
		*out = NULL;
		free(b.p);
		return EXIT_FAIL;
	}
	free(b.p);
	return EXIT_OK;
}

static int print_raw(json_object *o)
{
	puts(json_object_to_json_string_ext(o, G.pretty ? JSON_C_TO_STRING_PRETTY :
					       JSON_C_TO_STRING_PLAIN));
	json_object_put(o);
	return EXIT_OK;
}

static const char *str(json_object *o, const char *k)
{
	json_object *v;

	return json_object_object_get_ex(o, k, &v) && v ? json_object_get_string(v) : "-";
}

static const char *cap_name(long long label, char *buf, size_t len)
{
	return idn_fmt_cap((__u32)label, buf, len);
}

/* ---- controller status ---- */

static int controller_usage(void)
{
	fprintf(stdout,
"Usage: idnctl [ -C URL ] controller status\n"
"       idnctl controller help\n"
"URL: -C, $IDN_CONTROLLER or http://127.0.0.1:8787 (idnd's API)\n");
	return EXIT_OK;
}

int do_controller(int argc, char **argv)
{
	json_object *o;
	int rc;

	if (argc >= 1 && matches(*argv, "help"))
		return controller_usage();
	if (argc >= 1 && !matches(*argv, "status"))
		return unknown_cmd("controller", *argv);
	if (argc > 1)
		return usage_error("controller status takes no arguments");
	rc = api("GET", "/v1/status", NULL, &o);
	if (rc)
		return rc;
	if (G.json)
		return print_raw(o);
	printf("controller %s mode %s", ctl_url(), str(o, "mode"));
	if (!strcmp(str(o, "mode"), "etcd"))
		printf(" replica %s leader %s prefix %s", str(o, "replica"), str(o, "leader"),
		       str(o, "prefix"));
	printf("\n  store %s dataplane %s generation %s\n", str(o, "store"), str(o, "dataplane"),
	       str(o, "generation"));
	printf("  caps %s nodes %s up %s placements %s hb-timeout %s ms\n", str(o, "caps"),
	       str(o, "nodes"), str(o, "nodes_up"), str(o, "placements"), str(o, "hb_timeout_ms"));
	{
		json_object *l;

		if (json_object_object_get_ex(o, "loop", &l))
			printf("  loop interval %s ms region %s solves %s changed %s\n",
			       str(l, "interval_ms"), str(l, "region"), str(l, "solves"),
			       str(l, "changed"));
	}
	json_object_put(o);
	return EXIT_OK;
}

/* ---- placement ---- */

static int placement_usage(void)
{
	fprintf(stdout,
"Usage: idnctl [ -C URL ] placement show\n"
"       idnctl [ -C URL ] placement solve [ dry-run ]\n"
"       idnctl [ -C URL ] placement explain cap CAP\n"
"       idnctl placement help\n");
	return EXIT_OK;
}

static void print_pairs(json_object *a)
{
	char cb[32];

	for (size_t i = 0; a && i < json_object_array_length(a); i++) {
		json_object *x = json_object_array_get_idx(a, i), *c, *n;

		if (json_object_object_get_ex(x, "cap", &c) && json_object_object_get_ex(x, "node", &n))
			printf("cap %s node %lld\n", cap_name(json_object_get_int64(c), cb, sizeof(cb)),
			       (long long)json_object_get_int64(n));
	}
}

static int placement_solve(int argc, char **argv)
{
	bool dry = false;
	json_object *o, *a;
	int rc;

	for (; argc > 0; argc--, argv++) {
		if (matches(*argv, "dry-run") || matches(*argv, "--dry-run"))
			dry = true;
		else
			return usage_error("unknown argument \"%s\", try \"idnctl placement help\".",
					   *argv);
	}
	rc = api("POST", "/v1/placement/solve", dry ? "{\"dry_run\":true}" : "{}", &o);
	if (rc)
		return rc;
	if (G.json)
		return print_raw(o);
	if (json_object_object_get_ex(o, "placement", &a))
		print_pairs(a);
	printf("%scost %s latency %s network %s deploy %s risk %s unserved %s rps\n"
	       "changed %s in %s s%s%s\n", dry ? "(dry run) " : "", str(o, "cost"),
	       str(o, "latency"), str(o, "network"), str(o, "deploy"), str(o, "risk"),
	       str(o, "unserved_rps"), str(o, "changed"), str(o, "seconds"),
	       dry ? "" : ", generation ", dry ? "" : str(o, "generation"));
	json_object_put(o);
	return EXIT_OK;
}

static int placement_explain(int argc, char **argv)
{
	char path[128];
	json_object *o;
	__u32 cap = 0;
	bool have = false;
	int rc;

	for (; argc > 0; argc--, argv++) {
		if (matches(*argv, "cap")) {
			NEXT_ARG();
			PARSE(idn_parse_cap(*argv, &cap));
			have = true;
		} else {
			return usage_error("unknown argument \"%s\", try \"idnctl placement help\".",
					   *argv);
		}
	}
	if (!have)
		return usage_error("placement explain needs \"cap CAP\"");
	snprintf(path, sizeof(path), "/v1/placement/explain?cap=%u", cap);
	rc = api("GET", path, NULL, &o);
	if (rc)
		return rc;
	/* the explanation is nested data: JSON is its text form too */
	if (!G.json)
		G.pretty = true;
	return print_raw(o);
}

int do_placement(int argc, char **argv)
{
	json_object *o;
	int rc;

	if (argc < 1 || matches(*argv, "show")) {
		if (argc > 1)
			return usage_error("placement show takes no arguments");
		rc = api("GET", "/v1/placement", NULL, &o);
		if (rc)
			return rc;
		if (G.json)
			return print_raw(o);
		print_pairs(o);
		json_object_put(o);
		return EXIT_OK;
	}
	if (matches(*argv, "solve"))
		return placement_solve(argc - 1, argv + 1);
	if (matches(*argv, "explain"))
		return placement_explain(argc - 1, argv + 1);
	if (matches(*argv, "help"))
		return placement_usage();
	return unknown_cmd("placement", *argv);
}

/* ---- cap list: the controller's registry ---- */

int ctl_cap_list(int argc, char **argv)
{
	json_object *o;
	char cb[32];
	int rc;

	if (argc > 0)
		return usage_error("cap list takes no arguments");
	rc = api("GET", "/v1/caps", NULL, &o);
	if (rc)
		return rc;
	if (G.json)
		return print_raw(o);
	for (size_t i = 0; i < json_object_array_length(o); i++) {
		json_object *c = json_object_array_get_idx(o, i), *l, *d;
		double total = 0;

		if (!json_object_object_get_ex(c, "label", &l))
			continue;
		if (json_object_object_get_ex(c, "demand", &d))	/* rps per region */
			for (size_t k = 0; k < json_object_array_length(d); k++)
				total += json_object_get_double(json_object_array_get_idx(d, k));
		printf("cap %s name %s tier %s version %s demand %.1f rps\n",
		       cap_name(json_object_get_int64(l), cb, sizeof(cb)), str(c, "name"),
		       str(c, "tier"), str(c, "version"), total);
	}
	json_object_put(o);
	return EXIT_OK;
}
