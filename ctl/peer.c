// SPDX-License-Identifier: GPL-2.0
/*
 * peer.c - idnctl peer: federation between domains, served by idnd
 * (ctl/idnd/fed.c, docs/federation.md):
 *
 *   idnctl peer show [ name NAME ]        peers: state, summary age, counts, usage
 *   idnctl peer add name NAME url URL key HEX domain N [ trust T ] [ net-us US ]
 *   idnctl peer del name NAME
 *   idnctl peer imported                  the summaries accepted from peers
 *   idnctl peer exported                  what leaves this domain, per peer
 *   idnctl peer export cap CAP peers { all | NAME[,NAME...] }
 *   idnctl peer unexport cap CAP
 *   idnctl peer usage                     requests, tokens, bytes sent to each peer
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <json-c/json.h>

#include "idnctl.h"

static int peer_usage(void)
{
	fprintf(stdout,
"Usage: idnctl [ -C URL ] peer show [ name NAME ]\n"
"       idnctl [ -C URL ] peer add name NAME url URL key PUBKEY domain N\n"
"                              [ trust 0-7 ] [ net-us US ]\n"
"       idnctl [ -C URL ] peer del name NAME\n"
"       idnctl [ -C URL ] peer imported\n"
"       idnctl [ -C URL ] peer exported\n"
"       idnctl [ -C URL ] peer export cap CAP peers { all | NAME[,NAME...] }\n"
"       idnctl [ -C URL ] peer unexport cap CAP\n"
"       idnctl [ -C URL ] peer usage\n"
"       idnctl peer help\n"
"where  URL := the peer idnd's API, https://ADDR:PORT\n"
"       PUBKEY := the peer domain's Ed25519 public key (idnctl cap pubkey FILE)\n"
"       N := the number its domain has here (0-31, not this router's home domain)\n"
"       trust: the highest trust level its attestations are believed up to (3)\n"
"       net-us: T_net to its ingress in us (20000)\n");
	return EXIT_OK;
}

static int raw(json_object *o)
{
	puts(json_object_to_json_string_ext(o, G.pretty ? JSON_C_TO_STRING_PRETTY :
					       JSON_C_TO_STRING_PLAIN));
	json_object_put(o);
	return EXIT_OK;
}

static const char *s_of(json_object *o, const char *k)
{
	json_object *v;

	return json_object_object_get_ex(o, k, &v) && v ? json_object_get_string(v) : "-";
}

static long long i_of(json_object *o, const char *k)
{
	json_object *v;

	return json_object_object_get_ex(o, k, &v) && v ? json_object_get_int64(v) : 0;
}

static void print_peer(json_object *p)
{
	json_object *u = NULL, *e = NULL;

	json_object_object_get_ex(p, "usage", &u);
	printf("peer %s domain %s node %s url %s state %s", s_of(p, "name"), s_of(p, "domain"),
	       s_of(p, "node"), s_of(p, "url"), s_of(p, "state"));
	if (strcmp(s_of(p, "age_ms"), "-"))
		printf(" age %s ms", s_of(p, "age_ms"));
	printf(" caps %s ingress %s trust %s net-us %s\n", s_of(p, "caps"), s_of(p, "ingress4"),
	       s_of(p, "trust"), s_of(p, "net_us"));
	printf("    key %s\n", s_of(p, "key"));
	printf("    summaries fetched %s accepted %s unchanged %s refused %s fetch-errors %s "
	       "withdrawals %s exported %s\n", s_of(p, "fetched"), s_of(p, "accepted"),
	       s_of(p, "unchanged"), s_of(p, "refused"), s_of(p, "fetch_errors"),
	       s_of(p, "withdrawals"), s_of(p, "exported"));
	if (u)
		printf("    usage requests %lld tokens %lld bytes %lld\n", i_of(u, "requests"),
		       i_of(u, "tokens"), i_of(u, "bytes"));
	if (json_object_object_get_ex(p, "last_error", &e) && e)
		printf("    last error: %s\n", json_object_get_string(e));
}

static void print_names(json_object *sc, const char *k)
{
	json_object *a;

	printf(" %s ", k);
	if (!json_object_object_get_ex(sc, k, &a) || !json_object_array_length(a)) {
		printf("-");
		return;
	}
	for (size_t i = 0; i < json_object_array_length(a); i++)
		printf("%s%s", i ? "," : "", json_object_get_string(json_object_array_get_idx(a, i)));
}

/* one summary: its header, then a line per capability */
static void print_summary(const char *indent, json_object *s)
{
	json_object *caps, *regs, *sc;
	char b[32];

	printf("%sdomain %s seq %s issued-ms %s valid-ms %s ingress %s\n", indent,
	       s_of(s, "domain"), s_of(s, "seq"), s_of(s, "issued_ms"), s_of(s, "valid_ms"),
	       s_of(s, "ingress4"));
	if (!json_object_object_get_ex(s, "caps", &caps))
		return;
	for (size_t i = 0; i < json_object_array_length(caps); i++) {
		json_object *c = json_object_array_get_idx(caps, i);

		printf("%s  cap %s name %s tier %s latency %s (%s us) trust %s", indent,
		       idn_fmt_cap((__u32)i_of(c, "cap"), b, sizeof(b)), s_of(c, "name"),
		       s_of(c, "tier"), s_of(c, "latency"), s_of(c, "latency_us"),
		       s_of(c, "trust"));
		if (strcmp(s_of(c, "publisher"), "") && strcmp(s_of(c, "publisher"), "-"))
			printf(" publisher %s", s_of(c, "publisher"));
		printf("\n%s    regions", indent);
		if (json_object_object_get_ex(c, "regions", &regs))
			for (size_t r = 0; r < json_object_array_length(regs); r++) {
				json_object *g = json_object_array_get_idx(regs, r);

				printf(" %s(nodes %s load %s)", s_of(g, "region"), s_of(g, "nodes"),
				       s_of(g, "load"));
			}
		printf("\n%s    scope", indent);
		if (json_object_object_get_ex(c, "scope", &sc)) {
			print_names(sc, "privacy");
			print_names(sc, "locality");
			print_names(sc, "trust");
		}
		printf("\n");
	}
}

static int name_arg(int argc, char **argv, const char **name, bool need)
{
	*name = NULL;
	for (; argc > 0; argc--, argv++) {
		if (matches(*argv, "name")) {
			NEXT_ARG();
			if (*name)
				return duparg("name");
			*name = *argv;
		} else {
			return usage_error("unknown argument \"%s\", try \"idnctl peer help\".", *argv);
		}
	}
	if (need && !*name)
		return usage_error("peer needs \"name NAME\"");
	return 0;
}

static int cap_arg(int argc, char **argv, __u32 *cap, const char **peers, bool want_peers)
{
	bool have = false;

	*peers = NULL;
	for (; argc > 0; argc--, argv++) {
		if (matches(*argv, "cap")) {
			NEXT_ARG();
			if (have)
				return duparg("cap");
			PARSE(idn_parse_cap(*argv, cap));
			have = true;
		} else if (want_peers && matches(*argv, "peers")) {
			NEXT_ARG();
			if (*peers)
				return duparg("peers");
			*peers = *argv;
		} else {
			return usage_error("unknown argument \"%s\", try \"idnctl peer help\".", *argv);
		}
	}
	if (!have)
		return usage_error("needs \"cap CAP\"");
	if (want_peers && !*peers)
		return usage_error("export needs \"peers all\" or \"peers NAME[,NAME...]\"");
	return 0;
}

static int peer_add(int argc, char **argv)
{
	static const char *const keys[] = { "name", "url", "key", "domain", "trust", "net-us",
					    NULL };
	json_object *b = json_object_new_object(), *o;
	int rc;

	for (; argc > 0; argc--, argv++) {
		int k;

		for (k = 0; keys[k] && !matches(*argv, keys[k]); k++)
			;
		if (!keys[k]) {
			json_object_put(b);
			return usage_error("unknown argument \"%s\", try \"idnctl peer help\".", *argv);
		}
		if (argc < 2) {
			json_object_put(b);
			return missarg(*argv);
		}
		argv++, argc--;
		if (k >= 3) {
			__u32 v, hi = k == 3 ? 31 : k == 4 ? 7 : 10000000;

			if (idn_parse_u32(*argv, 0, hi, &v, keys[k])) {
				json_object_put(b);
				return invarg();
			}
			json_object_object_add(b, k == 5 ? "net_us" : keys[k], json_object_new_int64(v));
		} else {
			json_object_object_add(b, keys[k], json_object_new_string(*argv));
		}
	}
	if (!json_object_object_get_ex(b, "name", NULL) || !json_object_object_get_ex(b, "url", NULL) ||
	    !json_object_object_get_ex(b, "key", NULL) || !json_object_object_get_ex(b, "domain", NULL)) {
		json_object_put(b);
		return usage_error("peer add needs name, url, key and domain");
	}
	rc = ctl_api("POST", "/v1/peers", json_object_to_json_string(b), &o);
	json_object_put(b);
	if (rc)
		return rc;
	if (G.json)
		return raw(o);
	print_peer(o);
	json_object_put(o);
	return EXIT_OK;
}

int do_peer(int argc, char **argv)
{
	const char *name, *peers;
	char path[160];
	json_object *o, *a;
	__u32 cap;
	int rc;

	if (argc < 1 || matches(*argv, "show") || matches(*argv, "list")) {
		rc = argc > 0 ? name_arg(argc - 1, argv + 1, &name, false) : 0;
		if (rc)
			return rc;
		name = argc > 0 ? name : NULL;
		if (name)
			snprintf(path, sizeof(path), "/v1/peers/%s", name);
		rc = ctl_api("GET", name ? path : "/v1/peers", NULL, &o);
		if (rc)
			return rc;
		if (G.json)
			return raw(o);
		if (name)
			print_peer(o);
		else
			for (size_t i = 0; i < json_object_array_length(o); i++)
				print_peer(json_object_array_get_idx(o, i));
		json_object_put(o);
		return EXIT_OK;
	}
	if (matches(*argv, "help"))
		return peer_usage();
	if (matches(*argv, "add"))
		return peer_add(argc - 1, argv + 1);
	if (matches(*argv, "del")) {
		rc = name_arg(argc - 1, argv + 1, &name, true);
		if (rc)
			return rc;
		snprintf(path, sizeof(path), "/v1/peers/%s", name);
		rc = ctl_api("DELETE", path, NULL, &o);
		if (!rc)
			json_object_put(o);
		return rc;
	}
	if (matches(*argv, "imported") || matches(*argv, "usage")) {
		bool imp = matches(*argv, "imported");

		if (argc > 1)
			return usage_error("peer %s takes no arguments", *argv);
		rc = ctl_api("GET", imp ? "/v1/fed/imported" : "/v1/fed/usage", NULL, &o);
		if (rc)
			return rc;
		if (G.json)
			return raw(o);
		for (size_t i = 0; i < json_object_array_length(o); i++) {
			json_object *x = json_object_array_get_idx(o, i), *s;

			if (!imp) {
				printf("peer %s requests %lld tokens %lld bytes %lld\n",
				       s_of(x, "peer"), i_of(x, "requests"), i_of(x, "tokens"),
				       i_of(x, "bytes"));
				/* of which each etcd-fed router's record (distributed mode) */
				if (json_object_object_get_ex(x, "routers", &s) &&
				    json_object_is_type(s, json_type_array))
					for (size_t k = 0; k < json_object_array_length(s); k++) {
						json_object *r = json_object_array_get_idx(s, k);

						printf("  router %s requests %lld tokens %lld bytes "
						       "%lld\n", s_of(r, "router"),
						       i_of(r, "requests"), i_of(r, "tokens"),
						       i_of(r, "bytes"));
					}
				continue;
			}
			printf("peer %s domain %s node %s %s age %s ms\n", s_of(x, "peer"),
			       s_of(x, "domain"), s_of(x, "node"),
			       i_of(x, "fresh") ? "fresh" : "stale", s_of(x, "age_ms"));
			if (json_object_object_get_ex(x, "summary", &s))
				print_summary("  ", s);
		}
		json_object_put(o);
		return EXIT_OK;
	}
	if (matches(*argv, "exported")) {
		if (argc > 1)
			return usage_error("peer exported takes no arguments");
		rc = ctl_api("GET", "/v1/fed/exported", NULL, &o);
		if (rc)
			return rc;
		if (G.json)
			return raw(o);
		printf("domain %s ingress %s interval %s ms valid %s ms key %s\n", s_of(o, "domain"),
		       s_of(o, "ingress4"), s_of(o, "interval_ms"), s_of(o, "valid_ms"),
		       s_of(o, "key"));
		if (json_object_object_get_ex(o, "exports", &a))
			for (size_t i = 0; i < json_object_array_length(a); i++) {
				json_object *x = json_object_array_get_idx(a, i), *p;
				char b[32];

				printf("export cap %s peers",
				       idn_fmt_cap((__u32)i_of(x, "cap"), b, sizeof(b)));
				json_object_object_get_ex(x, "peers", &p);
				for (size_t k = 0; p && k < json_object_array_length(p); k++)
					printf("%s%s", k ? "," : " ",
					       json_object_get_string(json_object_array_get_idx(p, k)));
				printf("\n");
			}
		if (json_object_object_get_ex(o, "summaries", &a))
			for (size_t i = 0; i < json_object_array_length(a); i++) {
				json_object *x = json_object_array_get_idx(a, i), *s;

				printf("to peer %s (signed %s times):\n", s_of(x, "peer"),
				       s_of(x, "signed"));
				if (json_object_object_get_ex(x, "summary", &s))
					print_summary("  ", s);
			}
		json_object_put(o);
		return EXIT_OK;
	}
	if (matches(*argv, "export")) {
		json_object *b, *l;
		char *dup, *tok, *save = NULL;

		rc = cap_arg(argc - 1, argv + 1, &cap, &peers, true);
		if (rc)
			return rc;
		b = json_object_new_object();
		l = json_object_new_array();
		json_object_object_add(b, "cap", json_object_new_int64(cap));
		if (matches(peers, "all")) {
			json_object_array_add(l, json_object_new_string("*"));
		} else {
			dup = strdup(peers);
			for (tok = strtok_r(dup, ",", &save); tok; tok = strtok_r(NULL, ",", &save))
				json_object_array_add(l, json_object_new_string(tok));
			free(dup);
		}
		json_object_object_add(b, "peers", l);
		rc = ctl_api("POST", "/v1/fed/exports", json_object_to_json_string(b), &o);
		json_object_put(b);
		if (rc)
			return rc;
		return G.json ? raw(o) : (json_object_put(o), EXIT_OK);
	}
	if (matches(*argv, "unexport")) {
		rc = cap_arg(argc - 1, argv + 1, &cap, &peers, false);
		if (rc)
			return rc;
		snprintf(path, sizeof(path), "/v1/fed/exports/%u", cap);
		rc = ctl_api("DELETE", path, NULL, &o);
		if (!rc)
			json_object_put(o);
		return rc;
	}
	return unknown_cmd("peer", *argv);
}
