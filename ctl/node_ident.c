// SPDX-License-Identifier: GPL-2.0
/*
 * node_ident.c - idnctl's node identity commands (docs/security.md, "Node
 * identity and enrolment" and "Telemetry authentication"):
 *
 *   idnctl [-C URL] node approve ID [ KEY ]       enrol the pending key, or KEY
 *   idnctl [-C URL] node trust ID LEVEL [ confidential { on | off } ]
 *   idnctl [-C URL] node identity [ ID ]           enrolled and pending keys
 *   idnctl [-C URL] node forget ID                 drop the node's identity
 *   idnctl node sign { enrol | attest } id ID pubkey HEX key FILE
 *                    [ trust 0-7 ] [ confidential ] [ expires SECONDS ]
 *   idnctl node sign request id ID key FILE path PATH [ body TEXT ] [ time MS ]
 *                    the query string of a request signed as node ID
 *   idnctl node operator-key FILE                  create (or read) an operator key
 *   idnctl node tele-key id ID [ key HEX key-id N | del ]   the router's map
 *
 * The first four go to idnd (/v1/identities); sign and operator-key work
 * on local files; tele-key on the pinned idn_tele_keys map (a router
 * without idnd).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/stat.h>
#include <json-c/json.h>
#include <sodium.h>

#include "idnctl.h"
#include "idnd/ident.h"

static int sign_request(int argc, char **argv);

/* an Ed25519 seed file (32 bytes, 0600), created when missing */
static int seed_key(const char *path, uint8_t pk[32], uint8_t sk[64], bool create)
{
	uint8_t seed[32];
	struct stat st;
	int fd;

	if (sodium_init() < 0)
		return runtime_error("libsodium init failed");
	fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0 && errno == ENOENT && create) {
		fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
		if (fd < 0)
			return runtime_error("%s: %s", path, strerror(errno));
		randombytes_buf(seed, sizeof(seed));
		if (write(fd, seed, sizeof(seed)) != sizeof(seed) || fsync(fd)) {
			close(fd);
			unlink(path);
			return runtime_error("%s: write failed", path);
		}
		close(fd);
	} else if (fd < 0) {
		return runtime_error("%s: %s", path, strerror(errno));
	} else {
		if (fstat(fd, &st) || !S_ISREG(st.st_mode) || (st.st_mode & 077) ||
		    read(fd, seed, sizeof(seed)) != sizeof(seed)) {
			close(fd);
			return runtime_error("%s: a 32-byte key file of mode 0600 expected", path);
		}
		close(fd);
	}
	crypto_sign_seed_keypair(pk, sk, seed);
	sodium_memzero(seed, sizeof(seed));
	return EXIT_OK;
}

static bool hex_ok(const char *s, size_t bytes)
{
	if (strlen(s) != 2 * bytes)
		return false;
	for (; *s; s++)
		if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'f')))
			return false;
	return true;
}

static int operator_key(int argc, char **argv)
{
	uint8_t pk[32], sk[64];
	char hex[65];
	int rc;

	if (argc != 1)
		return usage_error("idnctl node operator-key FILE");
	rc = seed_key(argv[0], pk, sk, true);
	if (rc)
		return rc;
	sodium_memzero(sk, sizeof(sk));
	sodium_bin2hex(hex, sizeof(hex), pk, 32);
	printf("%s\n", hex);
	return EXIT_OK;
}

static int sign_stmt(int argc, char **argv)
{
	const char *kind, *keyf = NULL, *pub = NULL;
	__u32 id = 0, trust = 0, expires = 3600;
	bool have_id = false, conf = false, have_trust = false;
	uint8_t pk[32], sk[64], sig[64];
	char sighex[129], *msg;
	json_object *st, *out;
	const char *text;
	size_t ml;
	int rc;

	if (argc >= 1 && !strcmp(argv[0], "request"))
		return sign_request(argc - 1, argv + 1);
	if (argc < 1 || (strcmp(argv[0], "enrol") && strcmp(argv[0], "attest")))
		return usage_error("idnctl node sign { enrol | attest } id ID pubkey HEX key FILE "
				   "[ trust 0-7 ] [ confidential ] [ expires SECONDS ]");
	kind = argv[0];
	for (argc--, argv++; argc > 0; argc--, argv++) {
		if (matches(*argv, "id")) {
			NEXT_ARG();
			PARSE(idn_parse_u32(*argv, 0, IDN_MAX_NODES - 1, &id, "node id"));
			have_id = true;
		} else if (matches(*argv, "pubkey")) {
			NEXT_ARG();
			pub = *argv;
		} else if (matches(*argv, "key")) {
			NEXT_ARG();
			keyf = *argv;
		} else if (matches(*argv, "trust")) {
			NEXT_ARG();
			PARSE(idn_parse_u32(*argv, 0, 7, &trust, "trust"));
			have_trust = true;
		} else if (matches(*argv, "confidential")) {
			conf = true;
		} else if (matches(*argv, "expires")) {
			NEXT_ARG();
			PARSE(idn_parse_u32(*argv, 1, 10 * 365 * 86400, &expires, "expires"));
		} else {
			return usage_error("unknown argument \"%s\", try \"idnctl node help\".", *argv);
		}
	}
	if (!have_id || !pub || !keyf)
		return usage_error("\"id\", \"pubkey\" and \"key\" needed");
	if (!hex_ok(pub, 32))
		return usage_error("pubkey: 64 lowercase hex characters (the node's key) expected");
	if (!strcmp(kind, "attest") && !have_trust)
		return usage_error("an attestation statement needs \"trust\"");
	rc = seed_key(keyf, pk, sk, false);
	if (rc)
		return rc;
	st = json_object_new_object();
	json_object_object_add(st, "kind", json_object_new_string(kind));
	json_object_object_add(st, "node", json_object_new_int64(id));
	json_object_object_add(st, "pubkey", json_object_new_string(pub));
	if (!strcmp(kind, "attest")) {
		json_object_object_add(st, "trust", json_object_new_int(trust));
		json_object_object_add(st, "confidential", json_object_new_boolean(conf));
	}
	json_object_object_add(st, "expires", json_object_new_int64(time(NULL) + expires));
	text = json_object_to_json_string_ext(st, JSON_C_TO_STRING_PLAIN);
	ml = strlen("IDN-STMT-1\n") + strlen(text);
	msg = malloc(ml + 1);
	if (!msg) {
		json_object_put(st);
		return runtime_error("out of memory");
	}
	snprintf(msg, ml + 1, "IDN-STMT-1\n%s", text);
	crypto_sign_detached(sig, NULL, (uint8_t *)msg, ml, sk);
	sodium_memzero(sk, sizeof(sk));
	free(msg);
	sodium_bin2hex(sighex, sizeof(sighex), sig, sizeof(sig));
	out = json_object_new_object();
	if (!strcmp(kind, "attest"))
		json_object_object_add(out, "verifier", json_object_new_string("test"));
	json_object_object_add(out, "stmt", json_object_new_string(text));
	json_object_object_add(out, "sig", json_object_new_string(sighex));
	printf("%s\n", json_object_to_json_string_ext(out, JSON_C_TO_STRING_PLAIN |
						      JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(out);
	json_object_put(st);
	return EXIT_OK;
}

/*
 * node sign request id ID key FILE path PATH body TEXT [ time MS ]: the
 * query string a node's signed request carries (ctl/idnd/ident.h), for
 * scripts and tests that speak for a node without its agent.
 */
static int sign_request(int argc, char **argv)
{
	const char *keyf = NULL, *path = NULL, *body = "";
	char t[24] = "", nonce[33], pkh[65], sig[129], *text;
	uint8_t pk[32], sk[64], n[16], s[64];
	struct timespec ts;
	__u32 id = 0;
	bool have_id = false;
	size_t tl;
	int rc;

	for (; argc > 0; argc--, argv++) {
		if (matches(*argv, "id")) {
			NEXT_ARG();
			PARSE(idn_parse_u32(*argv, 0, IDN_MAX_NODES - 1, &id, "node id"));
			have_id = true;
		} else if (matches(*argv, "key")) {
			NEXT_ARG();
			keyf = *argv;
		} else if (matches(*argv, "path")) {
			NEXT_ARG();
			path = *argv;
		} else if (matches(*argv, "body")) {
			NEXT_ARG();
			body = *argv;
		} else if (matches(*argv, "time")) {
			NEXT_ARG();
			snprintf(t, sizeof(t), "%s", *argv);
		} else {
			return usage_error("unknown argument \"%s\", try \"idnctl node help\".", *argv);
		}
	}
	if (!have_id || !keyf || !path)
		return usage_error("\"id\", \"key\" and \"path\" needed");
	rc = seed_key(keyf, pk, sk, false);
	if (rc)
		return rc;
	if (!t[0]) {
		clock_gettime(CLOCK_REALTIME, &ts);
		snprintf(t, sizeof(t), "%lld", (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000);
	}
	randombytes_buf(n, sizeof(n));
	sodium_bin2hex(nonce, sizeof(nonce), n, sizeof(n));
	text = idn_sig_text("POST", path, id, t, nonce, body, strlen(body), &tl);
	if (!text)
		return runtime_error("out of memory");
	crypto_sign_detached(s, NULL, (uint8_t *)text, tl, sk);
	sodium_memzero(sk, sizeof(sk));
	free(text);
	sodium_bin2hex(sig, sizeof(sig), s, sizeof(s));
	sodium_bin2hex(pkh, sizeof(pkh), pk, 32);
	printf("%s?%s=%s&%s=%s&%s=%s&%s=%s\n", path, IDN_HDR_KEY, pkh, IDN_HDR_TIME, t,
	       IDN_HDR_NONCE, nonce, IDN_HDR_SIG, sig);
	return EXIT_OK;
}

static const char *jget(json_object *o, const char *k)
{
	json_object *v;

	return json_object_object_get_ex(o, k, &v) ? json_object_get_string(v) : "-";
}

static void print_ident(json_object *r)
{
	json_object *v;

	printf("node %s identity %s", jget(r, "id"), jget(r, "state"));
	if (json_object_object_get_ex(r, "fingerprint", &v))
		printf(" key %s", json_object_get_string(v));
	if (json_object_object_get_ex(r, "how", &v))
		printf(" by %s", json_object_get_string(v));
	if (json_object_object_get_ex(r, "operator_trust", NULL))
		printf(" trust %s (operator)%s", jget(r, "operator_trust"),
		       !strcmp(jget(r, "operator_confidential"), "true") ? " confidential" : "");
	else if (json_object_object_get_ex(r, "attested_trust", NULL))
		printf(" trust %s (attested by %s)%s", jget(r, "attested_trust"),
		       jget(r, "verifier"),
		       !strcmp(jget(r, "attested_confidential"), "true") ? " confidential" : "");
	else
		printf(" trust 0 (none granted)");
	printf(" tele-key-id %s\n", jget(r, "tele_key_id"));
	if (!strcmp(jget(r, "state"), "pending"))
		printf("    waits for approval: idnctl node approve %s\n", jget(r, "id"));
}

/* node list's text mode: keys waiting for approval after the registry */
void ctl_node_pending_print(void)
{
	json_object *o = NULL;

	if (ctl_api("GET", "/v1/identities", NULL, &o) || !o)
		return;
	for (size_t i = 0; i < json_object_array_length(o); i++) {
		json_object *r = json_object_array_get_idx(o, i);

		if (!strcmp(jget(r, "state"), "pending"))
			print_ident(r);
	}
	json_object_put(o);
}

/* ID as "ID" or "id ID" */
static int take_id(int *argc, char ***argv, __u32 *id)
{
	if (*argc > 0 && matches(**argv, "id")) {
		(*argc)--, (*argv)++;
	}
	if (*argc < 1)
		return usage_error("node id missing");
	if (idn_parse_u32(**argv, 0, IDN_MAX_NODES - 1, id, "node id") < 0)
		return invarg();
	(*argc)--, (*argv)++;
	return 0;
}

static int print_raw(json_object *o)
{
	puts(json_object_to_json_string_ext(o, G.pretty ? JSON_C_TO_STRING_PRETTY :
					       JSON_C_TO_STRING_PLAIN));
	json_object_put(o);
	return EXIT_OK;
}

static int print_answer(json_object *o)
{
	if (G.json)
		return print_raw(o);
	if (json_object_is_type(o, json_type_array)) {
		for (size_t i = 0; i < json_object_array_length(o); i++)
			print_ident(json_object_array_get_idx(o, i));
	} else if (json_object_object_get_ex(o, "state", NULL)) {
		print_ident(o);
	}
	json_object_put(o);
	return EXIT_OK;
}

static int approve(int argc, char **argv)
{
	json_object *b = json_object_new_object(), *o;
	char path[64];
	__u32 id;
	int rc = take_id(&argc, &argv, &id);

	if (rc) {
		json_object_put(b);
		return rc;
	}
	if (argc > 0 && matches(*argv, "key"))
		argc--, argv++;
	if (argc > 1 || (argc == 1 && !hex_ok(*argv, 32))) {
		json_object_put(b);
		return usage_error("idnctl node approve ID [ KEY ]: KEY 64 lowercase hex characters");
	}
	if (argc == 1)
		json_object_object_add(b, "pubkey", json_object_new_string(*argv));
	snprintf(path, sizeof(path), "/v1/identities/%u/approve", id);
	rc = ctl_api("POST", path, json_object_to_json_string(b), &o);
	json_object_put(b);
	return rc ? rc : print_answer(o);
}

static int trust(int argc, char **argv)
{
	json_object *b, *o;
	char path[64];
	__u32 id, level;
	bool conf = false;
	int rc = take_id(&argc, &argv, &id);

	if (rc)
		return rc;
	if (argc > 0 && matches(*argv, "level"))
		argc--, argv++;
	if (argc < 1)
		return usage_error("idnctl node trust ID LEVEL [ confidential { on | off } ]");
	PARSE(idn_parse_u32(*argv, 0, 7, &level, "trust level"));
	argc--, argv++;
	if (argc == 2 && matches(argv[0], "confidential") &&
	    (matches(argv[1], "on") || matches(argv[1], "off")))
		conf = matches(argv[1], "on");
	else if (argc)
		return usage_error("idnctl node trust ID LEVEL [ confidential { on | off } ]");
	b = json_object_new_object();
	json_object_object_add(b, "trust", json_object_new_int(level));
	json_object_object_add(b, "confidential", json_object_new_boolean(conf));
	snprintf(path, sizeof(path), "/v1/identities/%u/trust", id);
	rc = ctl_api("POST", path, json_object_to_json_string(b), &o);
	json_object_put(b);
	return rc ? rc : print_answer(o);
}

static int identity(int argc, char **argv, bool forget)
{
	char path[64] = "/v1/identities";
	json_object *o;
	__u32 id;
	int rc;

	if (argc || forget) {
		rc = take_id(&argc, &argv, &id);
		if (rc)
			return rc;
		if (argc)
			return usage_error("unknown argument \"%s\"", *argv);
		snprintf(path, sizeof(path), "/v1/identities/%u", id);
	}
	rc = ctl_api(forget ? "DELETE" : "GET", path, NULL, &o);
	return rc ? rc : print_answer(o);
}

static int tele_key(int argc, char **argv)
{
	__u32 id = 0, kid = 1;
	bool have_id = false, del = false;
	const char *hex = NULL;
	struct idn_tele_key k;
	uint8_t key[16];
	size_t bl;

	for (; argc > 0; argc--, argv++) {
		if (matches(*argv, "id")) {
			NEXT_ARG();
			PARSE(idn_parse_u32(*argv, 0, IDN_MAX_NODES - 1, &id, "node id"));
			have_id = true;
		} else if (matches(*argv, "key")) {
			NEXT_ARG();
			hex = *argv;
		} else if (matches(*argv, "key-id")) {
			NEXT_ARG();
			PARSE(idn_parse_u32(*argv, 1, UINT32_MAX, &kid, "key-id"));
		} else if (matches(*argv, "del")) {
			del = true;
		} else {
			return usage_error("unknown argument \"%s\", try \"idnctl node help\".", *argv);
		}
	}
	if (!have_id)
		return usage_error("\"id\" missing");
	if (del) {
		if (idn_tele_key_put(&G.maps, id, NULL, 0))
			return runtime_error("%s", idn_errmsg());
		return EXIT_OK;
	}
	if (hex) {
		if (!hex_ok(hex, 16) ||
		    sodium_hex2bin(key, 16, hex, 32, NULL, &bl, NULL) || bl != 16)
			return usage_error("key: 32 lowercase hex characters (128 bits) expected");
		if (idn_tele_key_put(&G.maps, id, key, kid))
			return runtime_error("%s", idn_errmsg());
		return EXIT_OK;
	}
	if (idn_tele_key_get(&G.maps, id, &k))
		return runtime_error("node %u: no telemetry key%s%s", id,
				     idn_errmsg()[0] ? ": " : "", idn_errmsg());
	if (G.json)
		printf("{\"id\":%u,\"key_id\":%u,\"seen\":%s,\"seq\":%u}\n", id, k.key_id,
		       k.flags & IDN_TKEY_F_SEEN ? "true" : "false", k.seq);
	else
		printf("node %u tele-key-id %u seen %s seq %u\n", id, k.key_id,
		       k.flags & IDN_TKEY_F_SEEN ? "yes" : "no", k.seq);
	return EXIT_OK;
}

int ctl_node_ident(int argc, char **argv)
{
	if (matches(*argv, "approve"))
		return approve(argc - 1, argv + 1);
	if (matches(*argv, "trust"))
		return trust(argc - 1, argv + 1);
	if (matches(*argv, "identity"))
		return identity(argc - 1, argv + 1, false);
	if (matches(*argv, "forget"))
		return identity(argc - 1, argv + 1, true);
	if (matches(*argv, "sign"))
		return sign_stmt(argc - 1, argv + 1);
	if (matches(*argv, "operator-key"))
		return operator_key(argc - 1, argv + 1);
	if (matches(*argv, "tele-key"))
		return tele_key(argc - 1, argv + 1);
	return -1;
}
