// SPDX-License-Identifier: GPL-2.0
/*
 * controller.c - idnctl objects served by the controller (idnd) over its
 * HTTP/JSON API with libcurl, not by the maps:
 *
 *   idnctl [-C URL] controller status
 *   idnctl [-C URL] placement { show | solve [ dry-run ] | explain cap CAP }
 *   idnctl [-C URL] cap list            (the registry; `cap show` is the dataplane)
 *   idnctl [-C URL] node list [ id ID ]  (the registry; `node show` is the dataplane)
 *   idnctl [-C URL] node { drain | undrain } ID   (the operator's drain)
 *   idnctl [-C URL] policy { list | show id ID | add name NAME ... | del id ID }
 *
 * URL: -C, else $IDN_CONTROLLER, else https://127.0.0.1:8787 (mutual TLS:
 * --ca/--cert/--key or $IDN_CA/$IDN_CERT/$IDN_KEY; http://127.0.0.1:8787
 * with --insecure, the only way to plain HTTP). With -j the
 * API's JSON is printed as it came (-p pretty); errors are the API's
 * {"error": ...} text, exit 1.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <curl/curl.h>
#include <json-c/json.h>

#include "idnctl.h"

static const char *ctl_url(void)
{
	const char *u = G.ctl_url ? G.ctl_url : getenv("IDN_CONTROLLER");

	return u && *u ? u : G.tls.insecure ? "http://127.0.0.1:8787" : "https://127.0.0.1:8787";
}

/*
 * One API call over ctl/lib/http.c (mutual TLS with --ca/--cert/--key,
 * plain http:// only with --insecure); *out: the parsed answer (2xx
 * only). Prints errors.
 */
int ctl_api(const char *method, const char *path, const char *body, json_object **out)
{
	static bool warned;
	struct idn_http_buf b = {};
	char url[1024], err[768];
	long code = 0;
	int e;
	CURL *c;

	*out = NULL;
	snprintf(url, sizeof(url), "%s%s", ctl_url(), path);
	if (G.tls.insecure && !strncmp(url, "http://", 7) && !warned) {
		fprintf(stderr, "idnctl: warning: --insecure: plain HTTP to %s, no "
			"authentication of either side\n", ctl_url());
		warned = true;
	}
	curl_global_init(CURL_GLOBAL_DEFAULT);
	c = curl_easy_init();
	if (!c)
		return runtime_error("controller: cannot init libcurl");
	e = idn_http_request(c, &G.tls, method, url, body, 30000, &b, &code, err, sizeof(err));
	curl_easy_cleanup(c);
	if (e) {
		free(b.p);
		return runtime_error("controller %s: %s", ctl_url(), err);
	}
	*out = b.p ? json_tokener_parse(b.p) : NULL;
	if (code < 200 || code > 299 || !*out) {
		json_object *je = NULL;
		const char *msg = b.p ? b.p : "";

		if (*out && json_object_object_get_ex(*out, "error", &je))
			msg = json_object_get_string(je);
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

/*
 * A number of the answer as people write it: integers as they are,
 * fractions with 6 significant digits (0.30000000000000004 -> 0.3),
 * large values without an exponent.
 */
static const char *num(json_object *o, const char *k)
{
	static char b[8][40];
	static int slot;
	char *out = b[slot++ & 7];
	json_object *v;
	double x;

	if (!json_object_object_get_ex(o, k, &v) || !v)
		return "-";
	if (!json_object_is_type(v, json_type_double))
		return json_object_get_string(v);
	x = json_object_get_double(v);
	if (fabs(x) >= 1e6) {
		snprintf(out, sizeof(b[0]), "%.0f", x);
	} else if (x != 0 && fabs(x) < 1e-3) {
		int n = snprintf(out, sizeof(b[0]), "%.6f", x);

		while (n > 1 && out[n - 1] == '0' && out[n - 2] != '.')
			out[--n] = 0;
	} else {
		snprintf(out, sizeof(b[0]), "%.6g", x);
	}
	return out;
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
	rc = ctl_api("GET", "/v1/status", NULL, &o);
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
	char took[32] = "-";
	int rc;

	for (; argc > 0; argc--, argv++) {
		if (matches(*argv, "dry-run") || matches(*argv, "--dry-run"))
			dry = true;
		else
			return usage_error("unknown argument \"%s\", try \"idnctl placement help\".",
					   *argv);
	}
	rc = ctl_api("POST", "/v1/placement/solve", dry ? "{\"dry_run\":true}" : "{}", &o);
	if (rc)
		return rc;
	if (G.json)
		return print_raw(o);
	if (json_object_object_get_ex(o, "placement", &a))
		print_pairs(a);
	/* a solve time is read in ms: 0.00101067 s helps no one */
	if (json_object_object_get_ex(o, "seconds", &a) && a)
		snprintf(took, sizeof(took), "%.1f ms", json_object_get_double(a) * 1e3);
	printf("%scost %s latency %s network %s deploy %s risk %s unserved %s rps\n"
	       "changed %s in %s%s%s\n", dry ? "(dry run) " : "", num(o, "cost"),
	       num(o, "latency"), num(o, "network"), num(o, "deploy"), num(o, "risk"),
	       num(o, "unserved_rps"), num(o, "changed"), took,
	       dry ? "" : ", generation ", dry ? "" : str(o, "generation"));
	json_object_put(o);
	return EXIT_OK;
}

static void print_ids(const char *what, json_object *a)
{
	printf("%s", what);
	if (!a || !json_object_array_length(a))
		printf(" none");
	for (size_t i = 0; a && i < json_object_array_length(a); i++)
		printf(" %s", json_object_get_string(json_object_array_get_idx(a, i)));
	printf("\n");
}

static void print_excluded(const char *indent, json_object *a)
{
	for (size_t i = 0; a && i < json_object_array_length(a); i++) {
		json_object *x = json_object_array_get_idx(a, i);

		printf("%sexcluded node %s: %s\n", indent, str(x, "node"), str(x, "reason"));
	}
}

/*
 * cap 7/0 name chat tier 0 mem-gb 30
 *   placed on nodes 1 2
 *   region 1 demand 100 rps served by node 1 unit cost 3.1
 *   excluded node 3: trust below the capability's minimum
 *   policy 5 secure: nodes 1
 *     excluded node 2: trust below the policy's minimum
 */
static void print_explain(json_object *o)
{
	json_object *c, *a, *r;
	char cb[32];

	if (json_object_object_get_ex(o, "cap", &c)) {
		json_object *l, *res = NULL, *sg = NULL;

		json_object_object_get_ex(c, "resources", &res);
		printf("cap %s name %s tier %s mem-gb %s\n",
		       json_object_object_get_ex(c, "label", &l) ?
		       cap_name(json_object_get_int64(l), cb, sizeof(cb)) : "-",
		       str(c, "name"), str(c, "tier"), res ? num(res, "mem_gb") : "-");
		/* the version in force and who signed it (docs/security.md) */
		if (json_object_object_get_ex(c, "signed", &sg) && sg)
			printf("  version %s signed by %s artifact-sha256 %s\n", str(c, "version"),
			       str(sg, "publisher"), str(sg, "artifact_sha256"));
		else
			printf("  version %s unsigned\n", str(c, "version"));
	}
	json_object_object_get_ex(o, "placed_on", &a);
	print_ids("  placed on nodes", a);
	if (json_object_object_get_ex(o, "regions", &a))
		for (size_t i = 0; i < json_object_array_length(a); i++) {
			r = json_object_array_get_idx(a, i);
			printf("  region %s demand %s rps ", str(r, "region"), num(r, "rps"));
			if (json_object_object_get_ex(r, "served_by", &c) && c)
				printf("served by node %s unit cost %s\n", str(r, "served_by"),
				       num(r, "unit_cost"));
			else
				printf("unserved\n");
		}
	if (json_object_object_get_ex(o, "excluded", &a))
		print_excluded("  ", a);
	if (json_object_object_get_ex(o, "policies", &a))
		for (size_t i = 0; i < json_object_array_length(a); i++) {
			json_object *n = NULL, *x = NULL;
			char what[128];

			r = json_object_array_get_idx(a, i);
			snprintf(what, sizeof(what), "  policy %s %s: nodes", str(r, "id"),
				 str(r, "name"));
			if (json_object_object_get_ex(r, "refused", &n) && n) {
				printf("  policy %s %s: refused: %s\n", str(r, "id"), str(r, "name"),
				       json_object_get_string(n));
				continue;
			}
			json_object_object_get_ex(r, "nodes", &n);
			print_ids(what, n);
			json_object_object_get_ex(r, "excluded", &x);
			print_excluded("    ", x);
		}
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
	rc = ctl_api("GET", path, NULL, &o);
	if (rc)
		return rc;
	if (G.json)
		return print_raw(o);
	print_explain(o);
	json_object_put(o);
	return EXIT_OK;
}

int do_placement(int argc, char **argv)
{
	json_object *o;
	int rc;

	if (argc < 1 || matches(*argv, "show")) {
		if (argc > 1)
			return usage_error("placement show takes no arguments");
		rc = ctl_api("GET", "/v1/placement", NULL, &o);
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
	rc = ctl_api("GET", "/v1/caps", NULL, &o);
	if (rc)
		return rc;
	if (G.json)
		return print_raw(o);
	for (size_t i = 0; i < json_object_array_length(o); i++) {
		json_object *c = json_object_array_get_idx(o, i), *l, *d, *w = NULL;
		double total = 0;

		if (!json_object_object_get_ex(c, "label", &l))
			continue;
		if (json_object_object_get_ex(c, "demand", &d))	/* rps per region */
			for (size_t k = 0; k < json_object_array_length(d); k++)
				total += json_object_get_double(json_object_array_get_idx(d, k));
		/* owner: the principal that created it (absent: created before
		 * idnd recorded owners) */
		json_object_object_get_ex(c, "owner", &w);
		printf("cap %s name %s tier %s version %s demand %.1f rps%s%s\n",
		       cap_name(json_object_get_int64(l), cb, sizeof(cb)), str(c, "name"),
		       str(c, "tier"), str(c, "version"), total, w ? " owner " : "",
		       w ? json_object_get_string(w) : "");
	}
	json_object_put(o);
	return EXIT_OK;
}

/* ---- node list: the controller's registry ---- */

static void print_node(json_object *n)
{
	json_object *v;

	printf("node %s state %s hb-age %s ms heartbeats %s", str(n, "id"), str(n, "state"),
	       str(n, "hb_age_ms"), str(n, "heartbeats"));
	if (json_object_object_get_ex(n, "addr4", &v))
		printf(" addr %s", json_object_get_string(v));
	if (json_object_object_get_ex(n, "addr6", &v))
		printf(" addr %s", json_object_get_string(v));
	printf("\n    region %s domain %s trust %s confidential %s mem-gb %s runtime %s",
	       str(n, "region"), str(n, "domain"), str(n, "trust"),
	       json_object_object_get_ex(n, "confidential", &v) && json_object_get_boolean(v) ?
	       "on" : "off", num(n, "mem_gb"), str(n, "runtime"));
	if (json_object_object_get_ex(n, "accelerator", &v) && *json_object_get_string(v))
		printf(" accelerator %s", json_object_get_string(v));
	printf(" net-us %s tok-ns %s max-queue %s", str(n, "net_us"), str(n, "tok_ns"),
	       str(n, "max_queue"));
	if (json_object_object_get_ex(n, "api_port", &v))
		printf(" api-port %s", json_object_get_string(v));
	printf("\n    load %s queue %s pending-tokens %s kv-use %s%s\n", str(n, "load"),
	       str(n, "queue"), str(n, "pending_tokens"), str(n, "kv_use"),
	       json_object_object_get_ex(n, "drain", &v) && json_object_get_boolean(v) ?
	       " draining" : "");
}

/* node drain ID / node undrain ID: the operator's drain, through idnd */
int ctl_node_drain(int argc, char **argv, bool on)
{
	char path[64];
	json_object *o;
	__u32 id;
	int rc;

	if (argc < 1)
		return usage_error("node %s: node id expected, try \"idnctl node help\".",
				   on ? "drain" : "undrain");
	if (argc > 1)
		return usage_error("unknown argument \"%s\", try \"idnctl node help\".", argv[1]);
	PARSE(idn_parse_u32(*argv, 0, IDN_MAX_NODES - 1, &id, "node id"));
	snprintf(path, sizeof(path), "/v1/nodes/%u/%s", id, on ? "drain" : "undrain");
	rc = ctl_api("POST", path, "{}", &o);
	if (rc)
		return rc;
	if (G.json)
		return print_raw(o);
	print_node(o);
	json_object_put(o);
	return EXIT_OK;
}

int ctl_node_list(int argc, char **argv)
{
	json_object *o, *one = NULL;
	__u32 id = 0;
	bool have = false;
	int rc;

	for (; argc > 0; argc--, argv++) {
		if (matches(*argv, "id")) {
			NEXT_ARG();
			if (have)
				return duparg("id");
			PARSE(idn_parse_u32(*argv, 0, IDN_MAX_NODES - 1, &id, "node id"));
			have = true;
		} else {
			return usage_error("unknown argument \"%s\", try \"idnctl node help\".",
					   *argv);
		}
	}
	rc = ctl_api("GET", "/v1/nodes", NULL, &o);
	if (rc)
		return rc;
	if (have) {
		for (size_t i = 0; i < json_object_array_length(o) && !one; i++) {
			json_object *n = json_object_array_get_idx(o, i), *v;

			if (json_object_object_get_ex(n, "id", &v) &&
			    json_object_get_int64(v) == (int64_t)id)
				one = json_object_get(n);
		}
		json_object_put(o);
		if (!one)
			return runtime_error("node %u is not registered with the controller", id);
		if (G.json)
			return print_raw(one);
		print_node(one);
		json_object_put(one);
		return EXIT_OK;
	}
	if (G.json)
		return print_raw(o);
	for (size_t i = 0; i < json_object_array_length(o); i++)
		print_node(json_object_array_get_idx(o, i));
	json_object_put(o);
	ctl_node_pending_print();	/* node_ident.c: keys waiting for approval */
	return EXIT_OK;
}

/* ---- policy: the controller's policy classes ---- */

static int policy_usage(void)
{
	fprintf(stdout,
"Usage: idnctl [ -C URL ] policy list\n"
"       idnctl [ -C URL ] policy show id ID\n"
"       idnctl [ -C URL ] policy add name NAME [ trust 0-7 ]\n"
"                         [ privacy { public | tenant | confidential | hw-bound } ]\n"
"                         [ scope { any | home | plan } ] [ domains LIST ] [ tiers TIERS ]\n"
"                         [ require-signed ]\n"
"       idnctl [ -C URL ] policy del id ID\n"
"       idnctl policy help\n"
"where  ID := policy class 0-127 = trust + 8 * privacy + 32 * scope (a request's policy)\n"
"       LIST := domains 0-31 as in 0,2,5-7\n"
"       TIERS := tiers 0-15 its plans are compiled for (default all), as in 0-3,7\n"
"       require-signed: only signed capability versions whose signed scope admits\n"
"                       the class serve it (docs/security.md)\n");
	return EXIT_OK;
}

static __u32 json_mask(json_object *o, const char *k)
{
	json_object *d;
	__u32 mask = 0;

	if (json_object_object_get_ex(o, k, &d) && json_object_is_type(d, json_type_array))
		for (size_t i = 0; i < json_object_array_length(d); i++)
			mask |= 1u << (json_object_get_int(json_object_array_get_idx(d, i)) & 31);
	return mask;
}

static void print_policy_class(json_object *p)
{
	__u32 dom = json_mask(p, "domains"), tiers = json_mask(p, "tiers");
	char b[128], t[64];

	json_object *rs = NULL, *w = NULL;

	json_object_object_get_ex(p, "require_signed", &rs);
	json_object_object_get_ex(p, "owner", &w);	/* who created it */
	printf("policy %s name %s trust %s privacy %s scope %s domains %s tiers %s%s%s%s\n",
	       str(p, "id"), str(p, "name"), str(p, "min_trust"), str(p, "privacy"),
	       str(p, "scope"), dom ? idn_fmt_domains(dom, b, sizeof(b)) : "any",
	       tiers && tiers != 0xffff ? idn_fmt_domains(tiers, t, sizeof(t)) : "all",
	       rs && json_object_get_boolean(rs) ? " require-signed" : "",
	       w ? " owner " : "", w ? json_object_get_string(w) : "");
}

static int policy_id(int argc, char **argv, const char *cmd, __u32 *id)
{
	bool have = false;

	for (; argc > 0; argc--, argv++) {
		if (matches(*argv, "id")) {
			NEXT_ARG();
			if (have)
				return duparg("id");
			PARSE(idn_parse_u32(*argv, 0, 127, id, "policy id"));
			have = true;
		} else {
			return usage_error("unknown argument \"%s\", try \"idnctl policy help\".",
					   *argv);
		}
	}
	if (!have)
		return usage_error("policy %s needs \"id ID\"", cmd);
	return 0;
}

static int policy_add(int argc, char **argv)
{
	static const char *const priv[] = { "public", "tenant", "confidential", "hw-bound", NULL };
	static const char *const scope[] = { "any", "home", "plan", NULL };
	json_object *b = json_object_new_object(), *o;
	bool have_name = false;
	__u32 v;
	int rc;

	for (; argc > 0; argc--, argv++) {
		const char *const *names = NULL;
		const char *key = NULL;

		if (matches(*argv, "name")) {
			NEXT_ARG();
			if (have_name)
				return json_object_put(b), duparg("name");
			json_object_object_add(b, "name", json_object_new_string(*argv));
			have_name = true;
			continue;
		}
		if (matches(*argv, "trust")) {
			NEXT_ARG();
			if (json_object_object_get_ex(b, "min_trust", NULL))
				return json_object_put(b), duparg("trust");
			if (idn_parse_u32(*argv, 0, 7, &v, "trust"))
				return json_object_put(b), invarg();
			json_object_object_add(b, "min_trust", json_object_new_int(v));
			continue;
		}
		if (matches(*argv, "require-signed")) {	/* docs/security.md */
			json_object_object_add(b, "require_signed", json_object_new_boolean(true));
			continue;
		}
		if (matches(*argv, "domains") || matches(*argv, "tiers")) {
			bool tiers = matches(*argv, "tiers");
			json_object *a;
			__u32 mask;

			NEXT_ARG();
			if (idn_parse_domains(*argv, &mask) < 0) {
				json_object_put(b);
				return invarg();
			}
			if (tiers && mask >> (IDN_TIER_MAX + 1)) {
				json_object_put(b);
				return usage_error("invalid tiers \"%s\" (0-%d)", *argv, IDN_TIER_MAX);
			}
			a = json_object_new_array();
			for (int d = 0; d < 32; d++)
				if (mask & (1u << d))
					json_object_array_add(a, json_object_new_int(d));
			json_object_object_add(b, tiers ? "tiers" : "domains", a);
			continue;
		}
		if (matches(*argv, "privacy")) {
			names = priv;
			key = "privacy";
		} else if (matches(*argv, "scope")) {
			names = scope;
			key = "scope";
		} else {
			json_object_put(b);
			return usage_error("unknown argument \"%s\", try \"idnctl policy help\".",
					   *argv);
		}
		NEXT_ARG();
		for (v = 0; names[v] && strcmp(names[v], *argv); v++)
			;
		if (!names[v]) {
			json_object_put(b);
			return usage_error("invalid %s \"%s\"", key, *argv);
		}
		json_object_object_add(b, key, json_object_new_string(*argv));
	}
	if (!have_name) {
		json_object_put(b);
		return usage_error("policy add needs \"name NAME\"");
	}
	rc = ctl_api("POST", "/v1/policies", json_object_to_json_string(b), &o);
	json_object_put(b);
	if (rc)
		return rc;
	if (G.json)
		return print_raw(o);
	print_policy_class(o);
	json_object_put(o);
	return EXIT_OK;
}

int do_policy(int argc, char **argv)
{
	char path[64];
	json_object *o;
	__u32 id = 0;
	int rc;

	if (argc < 1 || matches(*argv, "list")) {
		if (argc > 1)
			return usage_error("policy list takes no arguments");
		rc = ctl_api("GET", "/v1/policies", NULL, &o);
		if (rc)
			return rc;
		if (G.json)
			return print_raw(o);
		for (size_t i = 0; i < json_object_array_length(o); i++)
			print_policy_class(json_object_array_get_idx(o, i));
		json_object_put(o);
		return EXIT_OK;
	}
	if (matches(*argv, "help"))
		return policy_usage();
	if (matches(*argv, "add"))
		return policy_add(argc - 1, argv + 1);
	if (matches(*argv, "show") || matches(*argv, "del")) {
		bool del = matches(*argv, "del");

		rc = policy_id(argc - 1, argv + 1, *argv, &id);
		if (rc)
			return rc;
		snprintf(path, sizeof(path), "/v1/policies/%u", id);
		rc = ctl_api(del ? "DELETE" : "GET", path, NULL, &o);
		if (rc)
			return rc;
		if (G.json)
			return print_raw(o);
		if (!del)
			print_policy_class(o);
		json_object_put(o);
		return EXIT_OK;
	}
	return unknown_cmd("policy", *argv);
}
