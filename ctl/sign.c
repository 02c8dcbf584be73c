// SPDX-License-Identifier: GPL-2.0
/*
 * sign.c - idnctl's publisher side of signed capability metadata and its
 * controller commands (docs/security.md, "Signed capability metadata and
 * revocation"; the encoding is ctl/capsig.c):
 *
 *   idnctl cap keygen FILE              a new Ed25519 key (32-byte seed, 0600)
 *   idnctl cap pubkey FILE              the public key of a key file (hex)
 *   idnctl cap sign key FILE publisher NAME desc FILE
 *               { artifact PATH | sha256 HEX } [ origin TEXT ]
 *               [ lineage CAP@VER[,CAP@VER...] ] [ privacy LIST ]
 *               [ locality LIST ] [ trust LIST ] [ out FILE ]
 *   idnctl [-C URL] cap register FILE [ manifest FILE ]
 *   idnctl [-C URL] cap revoke CAP VERSION
 *   idnctl [-C URL] cap versions CAP
 *   idnctl [-C URL] publisher { add NAME PUBKEY | list | del NAME }
 *
 * CAP is CLASS[/VARIANT] or a registered capability's name.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>
#include <json-c/json.h>
#include <sodium.h>

#include "idnctl.h"
#include "capsig.h"

int sign_usage(void)
{
	fprintf(stdout,
"Usage: idnctl cap keygen FILE\n"
"       idnctl cap pubkey FILE\n"
"       idnctl cap sign key FILE publisher NAME desc FILE { artifact PATH | sha256 HEX }\n"
"                       [ origin TEXT ] [ lineage CAP@VERSION[,CAP@VERSION...] ]\n"
"                       [ privacy LIST ] [ locality LIST ] [ trust LIST ] [ out FILE ]\n"
"       idnctl [ -C URL ] cap register FILE [ manifest FILE ]\n"
"       idnctl [ -C URL ] cap revoke CAP VERSION\n"
"       idnctl [ -C URL ] cap versions CAP\n"
"       idnctl [ -C URL ] publisher { add NAME PUBKEY | list | del NAME }\n"
"LIST: comma-separated; privacy public,tenant,confidential,hw-bound;\n"
"      locality any,home,plan; trust 0-7 (default: all of each)\n");
	return EXIT_OK;
}

/* ---- keys ---- */

static int key_load(const char *path, uint8_t pk[32], uint8_t sk[64])
{
	uint8_t seed[32];
	struct stat st;
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return runtime_error("key %s: %s", path, strerror(errno));
	if (fstat(fd, &st) || !S_ISREG(st.st_mode) || (st.st_mode & 077)) {
		close(fd);
		return runtime_error("key %s: not a regular file readable by its owner only "
				     "(mode 0600)", path);
	}
	n = read(fd, seed, sizeof(seed));
	close(fd);
	if (n != sizeof(seed) || st.st_size != sizeof(seed))
		return runtime_error("key %s: not a 32-byte Ed25519 seed (idnctl cap keygen)",
				     path);
	if (sodium_init() < 0)
		return runtime_error("libsodium: cannot initialise");
	crypto_sign_seed_keypair(pk, sk, seed);
	sodium_memzero(seed, sizeof(seed));
	return EXIT_OK;
}

static int keygen(int argc, char **argv)
{
	uint8_t seed[32], pk[32], sk[64];
	char h[65];
	int fd;

	if (argc != 1)
		return usage_error("cap keygen FILE");
	if (sodium_init() < 0)
		return runtime_error("libsodium: cannot initialise");
	fd = open(argv[0], O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return runtime_error("key %s: %s%s", argv[0], strerror(errno),
				     errno == EEXIST ? " (never overwritten)" : "");
	randombytes_buf(seed, sizeof(seed));
	if (fchmod(fd, 0600) || write(fd, seed, sizeof(seed)) != sizeof(seed) || fsync(fd)) {
		int e = errno;

		close(fd);
		unlink(argv[0]);
		return runtime_error("key %s: %s", argv[0], strerror(e));
	}
	close(fd);
	crypto_sign_seed_keypair(pk, sk, seed);
	sodium_memzero(seed, sizeof(seed));
	sodium_memzero(sk, sizeof(sk));
	capsig_hex(h, pk, 32);
	if (G.json)
		printf("{\"pubkey\":\"%s\"}\n", h);
	else
		printf("%s\n", h);
	return EXIT_OK;
}

static int pubkey(int argc, char **argv)
{
	uint8_t pk[32], sk[64];
	char h[65];
	int rc;

	if (argc != 1)
		return usage_error("cap pubkey FILE");
	rc = key_load(argv[0], pk, sk);
	sodium_memzero(sk, sizeof(sk));
	if (rc)
		return rc;
	capsig_hex(h, pk, 32);
	printf(G.json ? "{\"pubkey\":\"%s\"}\n" : "%s\n", h);
	return EXIT_OK;
}

/* ---- sign ---- */

static int file_sha256(const char *path, uint8_t out[32])
{
	crypto_hash_sha256_state st;
	uint8_t buf[1 << 16];
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return runtime_error("artifact %s: %s", path, strerror(errno));
	if (sodium_init() < 0) {
		close(fd);
		return runtime_error("libsodium: cannot initialise");
	}
	crypto_hash_sha256_init(&st);
	while ((n = read(fd, buf, sizeof(buf))) > 0)
		crypto_hash_sha256_update(&st, buf, n);
	close(fd);
	if (n < 0)
		return runtime_error("artifact %s: %s", path, strerror(errno));
	crypto_hash_sha256_final(&st, out);
	return EXIT_OK;
}

static int parse_list(const char *s, const char *const *names, int n, uint8_t *mask,
		      const char *kw)
{
	char buf[128], *save = NULL, *t;

	*mask = 0;
	if (strlen(s) >= sizeof(buf))
		return usage_error("%s: list too long", kw);
	strcpy(buf, s);
	for (t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		int v = -1;

		for (int i = 0; i < n; i++) {
			char num[4];

			snprintf(num, sizeof(num), "%d", i);
			if (!strcmp(t, names ? names[i] : num))
				v = i;
		}
		if (v < 0)
			return usage_error("%s: \"%s\" is not one of its values", kw, t);
		*mask |= 1u << v;
	}
	return EXIT_OK;
}

static int parse_lineage(const char *s, struct capsig_manifest *m)
{
	char buf[256], *save = NULL, *t;

	if (strlen(s) >= sizeof(buf))
		return usage_error("lineage: too long");
	strcpy(buf, s);
	for (t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		char *at = strchr(t, '@'), *end;
		unsigned long v;
		__u32 cap;

		if (!at || m->n_lineage >= CAPSIG_MAX_LINEAGE)
			return usage_error("lineage: CAP@VERSION[,...] (at most %d) expected",
					   CAPSIG_MAX_LINEAGE);
		*at = 0;
		if (idn_parse_cap(t, &cap) < 0)
			return invarg();
		errno = 0;
		v = strtoul(at + 1, &end, 10);
		if (errno || *end || at[1] < '0' || at[1] > '9' || v > UINT32_MAX)
			return usage_error("lineage: version \"%s\" is not a number", at + 1);
		m->lineage[m->n_lineage++] = (struct capsig_ref){ cap, v };
	}
	return EXIT_OK;
}

static json_object *read_json(const char *path)
{
	json_object *o = json_object_from_file(path);

	if (!o || !json_object_is_type(o, json_type_object)) {
		runtime_error("%s: not a JSON object (%s)", path, json_util_get_last_err() ?
			      json_util_get_last_err() : "wrong type");
		json_object_put(o);
		return NULL;
	}
	return o;
}

static int64_t jint(json_object *o, const char *k, int64_t dflt)
{
	json_object *v;

	return json_object_object_get_ex(o, k, &v) ? json_object_get_int64(v) : dflt;
}

static int sign(int argc, char **argv)
{
	static const char *const priv[] = { "public", "tenant", "confidential", "hw-bound" };
	static const char *const loc[] = { "any", "home", "plan" };
	const char *key = NULL, *desc = NULL, *art = NULL, *hex = NULL, *out = NULL;
	struct capsig_manifest m = { .privacy = 0xf, .locality = 0x7, .trust = 0xff };
	uint8_t pk[32], sk[64], sig[64];
	json_object *d, *v, *o;
	int64_t parent = 0;
	int rc;

	while (argc > 0) {
		if (matches(*argv, "key")) {
			NEXT_ARG(); key = *argv;
		} else if (matches(*argv, "publisher")) {
			NEXT_ARG();
			if (!capsig_name_ok(*argv))
				return usage_error("publisher: 1..63 of [A-Za-z0-9._-]");
			strcpy(m.publisher, *argv);
		} else if (matches(*argv, "desc")) {
			NEXT_ARG(); desc = *argv;
		} else if (matches(*argv, "artifact")) {
			NEXT_ARG(); art = *argv;
		} else if (matches(*argv, "sha256")) {
			NEXT_ARG(); hex = *argv;
		} else if (matches(*argv, "origin")) {
			NEXT_ARG();
			if (strlen(*argv) >= sizeof(m.origin))
				return usage_error("origin: at most %zu characters",
						   sizeof(m.origin) - 1);
			strcpy(m.origin, *argv);
		} else if (matches(*argv, "lineage")) {
			NEXT_ARG();
			if ((rc = parse_lineage(*argv, &m)))
				return rc;
		} else if (matches(*argv, "privacy")) {
			NEXT_ARG();
			if ((rc = parse_list(*argv, priv, 4, &m.privacy, "privacy")))
				return rc;
		} else if (matches(*argv, "locality")) {
			NEXT_ARG();
			if ((rc = parse_list(*argv, loc, 3, &m.locality, "locality")))
				return rc;
		} else if (matches(*argv, "trust")) {
			NEXT_ARG();
			if ((rc = parse_list(*argv, NULL, 8, &m.trust, "trust")))
				return rc;
		} else if (matches(*argv, "out")) {
			NEXT_ARG(); out = *argv;
		} else {
			return usage_error("unknown argument \"%s\", try \"idnctl cap help\".", *argv);
		}
		argc--;
		argv++;
	}
	if (!key || !m.publisher[0] || !desc || !art == !hex)
		return usage_error("cap sign needs key, publisher, desc and one of artifact, sha256");
	d = read_json(desc);
	if (!d)
		return EXIT_FAIL;
	m.cap = IDN_CAP(jint(d, "class", 0) & 0xffffff, jint(d, "variant", 0) & 0xff);
	m.version = jint(d, "version", 1);
	if (json_object_object_get_ex(d, "name", &v) && json_object_is_type(v, json_type_string))
		snprintf(m.name, sizeof(m.name), "%s", json_object_get_string(v));
	if (json_object_object_get_ex(d, "lineage", &v))
		parent = jint(v, "parent", 0);
	json_object_put(d);
	if (!IDN_CAP_CLASS(m.cap) || !m.name[0])
		return runtime_error("%s: a capability descriptor with class and name expected",
				     desc);
	if (parent && (!m.n_lineage || m.lineage[0].cap != parent))
		return usage_error("the descriptor's parent is %lld: lineage must start with "
				   "it (lineage CAP@VERSION)", (long long)parent);
	if (!parent && m.n_lineage)
		return usage_error("lineage given, but the descriptor names no parent");
	if (hex && capsig_unhex(m.sha256, 32, hex))
		return usage_error("sha256: 64 lowercase hex digits expected");
	if (art && (rc = file_sha256(art, m.sha256)))
		return rc;
	if ((rc = key_load(key, pk, sk)))
		return rc;
	rc = capsig_sign(&m, sk, sig);
	sodium_memzero(sk, sizeof(sk));
	if (rc)
		return runtime_error("cap sign: the manifest cannot be encoded (%s): printable "
				     "ASCII names and origin", strerror(-rc));
	o = capsig_to_json(&m, sig);
	if (out) {
		rc = json_object_to_file_ext(out, o, JSON_C_TO_STRING_PRETTY);
		json_object_put(o);
		return rc ? runtime_error("%s: %s", out, json_util_get_last_err()) : EXIT_OK;
	}
	puts(json_object_to_json_string_ext(o, G.json && !G.pretty ? JSON_C_TO_STRING_PLAIN :
					       JSON_C_TO_STRING_PRETTY));
	json_object_put(o);
	return EXIT_OK;
}

/* ---- controller commands ---- */

static const char *fmt_cap(int64_t label, char *b, size_t n)
{
	return idn_fmt_cap((__u32)label, b, n);
}

/* CAP: CLASS[/VARIANT], else a registered capability's name */
static int resolve(const char *s, __u32 *label)
{
	json_object *a, *v;
	int rc;

	if (s[0] >= '0' && s[0] <= '9') {
		PARSE(idn_parse_cap(s, label));
		return EXIT_OK;
	}
	rc = ctl_api("GET", "/v1/caps", NULL, &a);
	if (rc)
		return rc;
	rc = -1;
	for (size_t i = 0; i < json_object_array_length(a); i++) {
		json_object *c = json_object_array_get_idx(a, i);

		if (json_object_object_get_ex(c, "name", &v) && !strcmp(json_object_get_string(v), s) &&
		    json_object_object_get_ex(c, "label", &v)) {
			if (rc == 0) {
				json_object_put(a);
				return usage_error("capability name \"%s\" is not unique: give "
						   "CLASS/VARIANT", s);
			}
			*label = json_object_get_int64(v);
			rc = 0;
		}
	}
	json_object_put(a);
	return rc ? usage_error("no registered capability named \"%s\"", s) : EXIT_OK;
}

static int reg(int argc, char **argv)
{
	json_object *d, *m = NULL, *o;
	char cb[32];
	int rc;

	if (argc != 1 && !(argc == 3 && matches(argv[1], "manifest")))
		return usage_error("cap register FILE [ manifest FILE ]");
	d = read_json(argv[0]);
	if (!d)
		return EXIT_FAIL;
	if (argc == 3 && !(m = read_json(argv[2]))) {
		json_object_put(d);
		return EXIT_FAIL;
	}
	if (m)
		json_object_object_add(d, "manifest", m);
	rc = ctl_api("POST", "/v1/caps", json_object_to_json_string_ext(d, JSON_C_TO_STRING_PLAIN),
		     &o);
	json_object_put(d);
	if (rc)
		return rc;
	if (G.json) {
		puts(json_object_to_json_string_ext(o, G.pretty ? JSON_C_TO_STRING_PRETTY :
						       JSON_C_TO_STRING_PLAIN));
	} else {
		json_object *s = NULL, *p = NULL;

		json_object_object_get_ex(o, "signed", &s);
		if (s)
			json_object_object_get_ex(s, "publisher", &p);
		printf("cap %s version %lld %s%s\n", fmt_cap(jint(o, "label", 0), cb, sizeof(cb)),
		       (long long)jint(o, "version", 0), p ? "signed by " : "unsigned",
		       p ? json_object_get_string(p) : "");
	}
	json_object_put(o);
	return EXIT_OK;
}

static int cap_revoke(int argc, char **argv)
{
	json_object *o, *v;
	char path[64], body[64], cb[32], *end;
	unsigned long ver;
	__u32 label;
	int rc;

	if (argc != 2)
		return usage_error("cap revoke CAP VERSION");
	errno = 0;
	ver = strtoul(argv[1], &end, 10);
	if (errno || *end || argv[1][0] < '0' || argv[1][0] > '9' || ver > UINT32_MAX)
		return usage_error("VERSION: a number expected, not \"%s\"", argv[1]);
	if ((rc = resolve(argv[0], &label)))
		return rc;
	snprintf(path, sizeof(path), "/v1/caps/%u/revoke", label);
	snprintf(body, sizeof(body), "{\"version\":%lu}", ver);
	rc = ctl_api("POST", path, body, &o);
	if (rc)
		return rc;
	if (G.json) {
		puts(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
	} else {
		bool act = json_object_object_get_ex(o, "active", &v) && v;

		printf("cap %s version %lu revoked%s; ", fmt_cap(label, cb, sizeof(cb)), ver,
		       json_object_object_get_ex(o, "already", NULL) ? " (already)" : "");
		if (act)
			printf("version %lld serves\n", (long long)json_object_get_int64(v));
		else
			printf("no version serves\n");
	}
	json_object_put(o);
	return EXIT_OK;
}

static int versions(int argc, char **argv)
{
	json_object *a;
	char path[64];
	__u32 label;
	int rc;

	if (argc != 1)
		return usage_error("cap versions CAP");
	if ((rc = resolve(argv[0], &label)))
		return rc;
	snprintf(path, sizeof(path), "/v1/caps/%u/versions", label);
	rc = ctl_api("GET", path, NULL, &a);
	if (rc)
		return rc;
	if (G.json) {
		puts(json_object_to_json_string_ext(a, JSON_C_TO_STRING_PLAIN));
	} else {
		for (size_t i = 0; i < json_object_array_length(a); i++) {
			json_object *e = json_object_array_get_idx(a, i), *v;
			const char *pub = json_object_object_get_ex(e, "publisher", &v) && v ?
					  json_object_get_string(v) : NULL;
			bool sig = json_object_object_get_ex(e, "signed", &v) &&
				   json_object_get_boolean(v);
			bool act = json_object_object_get_ex(e, "active", &v) &&
				   json_object_get_boolean(v);
			bool rev = json_object_object_get_ex(e, "revoked", &v) &&
				   json_object_get_boolean(v);

			printf("version %lld %s%s%s%s\n", (long long)jint(e, "version", 0),
			       sig ? "signed by " : "unsigned", sig && pub ? pub : "",
			       act ? " active" : "", rev ? " REVOKED" : "");
		}
	}
	json_object_put(a);
	return EXIT_OK;
}

int ctl_cap_sign(int argc, char **argv)
{
	if (matches(*argv, "keygen"))
		return keygen(argc - 1, argv + 1);
	if (matches(*argv, "pubkey"))
		return pubkey(argc - 1, argv + 1);
	if (matches(*argv, "sign"))
		return sign(argc - 1, argv + 1);
	if (matches(*argv, "register"))
		return reg(argc - 1, argv + 1);
	if (matches(*argv, "revoke"))
		return cap_revoke(argc - 1, argv + 1);
	if (matches(*argv, "versions"))
		return versions(argc - 1, argv + 1);
	return -1;	/* not one of these */
}

/* ---- publisher ---- */

int do_publisher(int argc, char **argv)
{
	json_object *o, *e, *v;
	char path[128];
	uint8_t pk[32];
	int rc;

	if (argc < 1 || matches(*argv, "list")) {
		if (argc > 1)
			return usage_error("publisher list takes no arguments");
		rc = ctl_api("GET", "/v1/publishers", NULL, &o);
		if (rc)
			return rc;
		if (G.json) {
			puts(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
		} else {
			for (size_t i = 0; i < json_object_array_length(o); i++) {
				e = json_object_array_get_idx(o, i);
				printf("publisher %s pubkey %s\n",
				       json_object_object_get_ex(e, "name", &v) ?
				       json_object_get_string(v) : "-",
				       json_object_object_get_ex(e, "pubkey", &v) ?
				       json_object_get_string(v) : "-");
			}
		}
		json_object_put(o);
		return EXIT_OK;
	}
	if (matches(*argv, "add")) {
		char body[256];

		if (argc != 3)
			return usage_error("publisher add NAME PUBKEY");
		if (!capsig_name_ok(argv[1]))
			return usage_error("NAME: 1..63 of [A-Za-z0-9._-]");
		if (capsig_unhex(pk, 32, argv[2]))
			return usage_error("PUBKEY: 64 lowercase hex digits (idnctl cap pubkey FILE)");
		snprintf(body, sizeof(body), "{\"name\":\"%s\",\"pubkey\":\"%s\"}", argv[1], argv[2]);
		rc = ctl_api("POST", "/v1/publishers", body, &o);
		if (!rc && G.json)
			puts(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
		json_object_put(o);
		return rc;
	}
	if (matches(*argv, "del")) {
		if (argc != 2 || !capsig_name_ok(argv[1]))
			return usage_error("publisher del NAME");
		snprintf(path, sizeof(path), "/v1/publishers/%s", argv[1]);
		rc = ctl_api("DELETE", path, NULL, &o);
		json_object_put(o);
		return rc;
	}
	if (matches(*argv, "help"))
		return sign_usage();
	return unknown_cmd("publisher", *argv);
}
