// SPDX-License-Identifier: GPL-2.0
/*
 * ident.c - node identity and enrolment (ident.h; docs/security.md,
 * "Node identity and enrolment").
 *
 * One record per node id, kept in the store's identities(id, body) table
 * (canonical JSON, like the other tables) and in memory under D.lock:
 * the enrolled (or pending) Ed25519 key, how it was enrolled, the trust
 * level and confidential flag the operator set or an attestation verifier
 * granted, and the node's current telemetry key (bpf/lib/tele.h). That
 * key is new at every signed registration, written to the router's
 * idn_tele_keys and handed to the node sealed to its own key
 * (crypto_box_seal to the X25519 form of its Ed25519 key), so only the
 * holder of the node's secret key can read it, whatever the transport.
 *
 * Signed requests: ident.h's query arguments; the time must be within
 * IDN_SIG_WINDOW_MS of idnd's clock and the nonce new (a table of the
 * nonces seen in the last two windows), so a recorded request is refused
 * when sent again, and a node's clock going back a little (a restart)
 * locks nothing out.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/stat.h>
#include <microhttpd.h>
#include <sodium.h>
#include <sqlite3.h>

#include "idnd.h"
#include "ident.h"
#include "json_get.h"
#include "prom.h"

enum { ST_NONE = 0, ST_PENDING, ST_ENROLLED };
static const char *const st_names[] = { "none", "pending", "enrolled" };

struct d_ident {
	uint8_t state;		/* ST_* */
	uint8_t pk[32];		/* pending or enrolled key */
	char how[16];		/* operator | statement | open */
	int op_trust;		/* -1: not set by the operator */
	bool op_conf;
	int att_trust;		/* -1: no verified attestation */
	bool att_conf;
	char att_verifier[16];
	uint32_t tkey_id;	/* telemetry key generation, 0: none yet */
	uint8_t tkey[16];
	int64_t enrolled_at;	/* unix seconds */
	/* not stored */
	uint64_t refused;
	char refused_fp[24];	/* the last key refused for this id */
};

static struct d_ident I[IDN_MAX_NODES];
static enum idnd_enrol_mode mode;
static uint8_t enrol_pk[32];
static bool have_enrol_pk;
static uint64_t n_refused, n_sig_bad, n_replayed;

static int test_verify(const struct idnd_verifier *v, uint32_t node, const uint8_t pk[32],
		       json_object *ev, uint8_t *trust, bool *conf, char *err, size_t errlen);
static struct idnd_verifier verifiers[] = {
	{ .name = "test", .verify = test_verify },
};

/* ---- helpers ------------------------------------------------------------ */

static void to_hex(char *out, const uint8_t *b, size_t n)
{
	sodium_bin2hex(out, 2 * n + 1, b, n);
}

static int from_hex(uint8_t *b, size_t n, const char *s)
{
	size_t bl;

	if (!s || strlen(s) != 2 * n)
		return -EINVAL;
	for (const char *p = s; *p; p++)
		if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
			return -EINVAL;	/* lowercase only: one encoding per value */
	if (sodium_hex2bin(b, n, s, 2 * n, NULL, &bl, NULL) || bl != n)
		return -EINVAL;
	return 0;
}

/* "SHA256:" and the first 8 bytes of the key's SHA-256, as logs show keys */
static const char *fp(const uint8_t pk[32], char out[24])
{
	uint8_t h[crypto_hash_sha256_BYTES];

	crypto_hash_sha256(h, pk, 32);
	memcpy(out, "SHA256:", 7);
	to_hex(out + 7, h, 8);
	return out;
}

static int64_t wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* a file holding a public key as 64 hex characters (and a newline) */
static int read_pk_file(const char *path, uint8_t pk[32])
{
	char buf[80] = "";
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n < 64)
		return -EINVAL;
	buf[64] = 0;
	return from_hex(pk, 32, buf);
}

/* ---- nonces: each signed request once ------------------------------------ */

#define NONCE_SLOTS 65536
#define NONCE_PROBE 64
static struct {
	uint64_t h;
	int64_t exp_ms;
} nonces[NONCE_SLOTS];

/* 0 new (recorded), -EALREADY seen, -ENOSPC no room (refuse: try later) */
static int nonce_take(uint32_t node, const uint8_t nonce[16], int64_t now)
{
	uint64_t h;
	int free_at = -1;

	crypto_shorthash_siphash24((uint8_t *)&h, nonce, 16, (const uint8_t *)"idnd-nonce-table");
	h ^= (uint64_t)node << 32;
	for (int i = 0; i < NONCE_PROBE; i++) {
		int s = (h + i) & (NONCE_SLOTS - 1);

		if (nonces[s].exp_ms > now) {
			if (nonces[s].h == h)
				return -EALREADY;
		} else if (free_at < 0) {
			free_at = s;
		}
	}
	if (free_at < 0)
		return -ENOSPC;
	nonces[free_at].h = h;
	nonces[free_at].exp_ms = now + 2 * IDN_SIG_WINDOW_MS;
	return 0;
}

/* ---- store --------------------------------------------------------------- */

static json_object *rec_json(uint32_t id, const struct d_ident *r, bool secrets)
{
	json_object *o = json_object_new_object();
	char hex[65], f[24];

	json_object_object_add(o, "id", json_object_new_int64(id));
	json_object_object_add(o, "state", json_object_new_string(st_names[r->state]));
	if (r->state != ST_NONE) {
		to_hex(hex, r->pk, 32);
		json_object_object_add(o, "pubkey", json_object_new_string(hex));
		json_object_object_add(o, "fingerprint", json_object_new_string(fp(r->pk, f)));
	}
	if (r->how[0])
		json_object_object_add(o, "how", json_object_new_string(r->how));
	if (r->op_trust >= 0) {
		json_object_object_add(o, "operator_trust", json_object_new_int(r->op_trust));
		json_object_object_add(o, "operator_confidential",
				       json_object_new_boolean(r->op_conf));
	}
	if (r->att_trust >= 0) {
		json_object_object_add(o, "attested_trust", json_object_new_int(r->att_trust));
		json_object_object_add(o, "attested_confidential",
				       json_object_new_boolean(r->att_conf));
		json_object_object_add(o, "verifier", json_object_new_string(r->att_verifier));
	}
	json_object_object_add(o, "tele_key_id", json_object_new_int64(r->tkey_id));
	if (secrets && r->tkey_id) {
		to_hex(hex, r->tkey, 16);
		json_object_object_add(o, "tele_key", json_object_new_string(hex));
	}
	if (r->enrolled_at)
		json_object_object_add(o, "enrolled_at", json_object_new_int64(r->enrolled_at));
	return o;
}

static int rec_store(uint32_t id)
{
	sqlite3 *db = idnd_store_handle();
	json_object *o;
	sqlite3_stmt *st;
	int rc;

	if (!db)
		return 0;
	if (I[id].state == ST_NONE && I[id].op_trust < 0 && I[id].att_trust < 0) {
		if (sqlite3_prepare_v2(db, "DELETE FROM identities WHERE id = ?1", -1, &st,
				       NULL) != SQLITE_OK)
			return -EIO;
		sqlite3_bind_int64(st, 1, id);
		rc = sqlite3_step(st);
		sqlite3_finalize(st);
		return rc == SQLITE_DONE ? 0 : -EIO;
	}
	if (sqlite3_prepare_v2(db, "INSERT OR REPLACE INTO identities VALUES(?1, ?2)", -1, &st,
			       NULL) != SQLITE_OK)
		return -EIO;
	o = rec_json(id, &I[id], true);
	sqlite3_bind_int64(st, 1, id);
	sqlite3_bind_text(st, 2, json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN), -1,
			  SQLITE_TRANSIENT);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	json_object_put(o);
	if (rc != SQLITE_DONE) {
		pr_warn("IDENT: node %u: store: %s\n", id, sqlite3_errmsg(db));
		return -EIO;
	}
	return 0;
}

static bool jbool(json_object *o, const char *k)
{
	json_object *v;

	return json_object_object_get_ex(o, k, &v) && json_object_get_boolean(v);
}

static int rec_load(json_object *o)
{
	int64_t id = idn_jint(o, "id", -1);
	const char *s = idn_jstr(o, "state");
	struct d_ident r = { .op_trust = -1, .att_trust = -1 };

	if (id < 0 || id >= IDN_MAX_NODES || !s)
		return -EINVAL;
	for (int i = 0; i < 3; i++)
		if (!strcmp(s, st_names[i]))
			r.state = i;
	if (r.state != ST_NONE && from_hex(r.pk, 32, idn_jstr(o, "pubkey")))
		return -EINVAL;
	snprintf(r.how, sizeof(r.how), "%s", idn_jstr(o, "how") ? idn_jstr(o, "how") : "");
	r.op_trust = idn_jint(o, "operator_trust", -1);
	r.op_conf = jbool(o, "operator_confidential");
	r.att_trust = idn_jint(o, "attested_trust", -1);
	r.att_conf = jbool(o, "attested_confidential");
	snprintf(r.att_verifier, sizeof(r.att_verifier), "%s",
		 idn_jstr(o, "verifier") ? idn_jstr(o, "verifier") : "");
	r.tkey_id = idn_jint(o, "tele_key_id", 0);
	if (r.tkey_id && from_hex(r.tkey, 16, idn_jstr(o, "tele_key")))
		return -EINVAL;
	r.enrolled_at = idn_jint(o, "enrolled_at", 0);
	if (r.op_trust > 7 || r.att_trust > 7)
		return -EINVAL;
	I[id] = r;
	return 0;
}

/* ---- configuration and start --------------------------------------------- */

int idnd_ident_config(const char *m, const char *enrol_key_file, const char *attest_key_file,
		      char *err, size_t errlen)
{
	int rc;

	for (int i = 0; i < IDN_MAX_NODES; i++)
		I[i].op_trust = I[i].att_trust = -1;
	if (sodium_init() < 0) {
		snprintf(err, errlen, "libsodium init failed");
		return -EIO;
	}
	if (!m || !strcmp(m, "approve"))
		mode = IDND_ENROL_APPROVE;
	else if (!strcmp(m, "open"))
		mode = IDND_ENROL_OPEN;
	else {
		snprintf(err, errlen, "--enrol %s: approve or open expected", m);
		return -EINVAL;
	}
	if (enrol_key_file) {
		rc = read_pk_file(enrol_key_file, enrol_pk);
		if (rc) {
			snprintf(err, errlen, "--enrol-key %s: %s (64 hex characters expected)",
				 enrol_key_file, strerror(-rc));
			return rc;
		}
		have_enrol_pk = true;
	}
	if (attest_key_file) {
		rc = read_pk_file(attest_key_file, verifiers[0].key);
		if (rc) {
			snprintf(err, errlen, "--attest-key %s: %s (64 hex characters expected)",
				 attest_key_file, strerror(-rc));
			return rc;
		}
		verifiers[0].have_key = true;
	}
	if (mode == IDND_ENROL_OPEN)
		pr_warn("idnd: WARNING --enrol open: any key is enrolled on first use and "
			"unsigned registrations of unenrolled ids are accepted; for tests only, "
			"never in production (docs/security.md)\n");
	return 0;
}

int idnd_ident_open(void)
{
	sqlite3 *db = idnd_store_handle();
	sqlite3_stmt *st;
	int n = 0;

	if (!db)
		return 0;
	if (sqlite3_exec(db, "CREATE TABLE IF NOT EXISTS identities(id INTEGER PRIMARY KEY, "
			 "body TEXT NOT NULL);", NULL, NULL, NULL) != SQLITE_OK)
		return -EIO;
	if (sqlite3_prepare_v2(db, "SELECT body FROM identities", -1, &st, NULL) != SQLITE_OK)
		return -EIO;
	while (sqlite3_step(st) == SQLITE_ROW) {
		json_object *o = json_tokener_parse((const char *)sqlite3_column_text(st, 0));

		if (!o || rec_load(o)) {
			json_object_put(o);
			sqlite3_finalize(st);
			pr_warn("IDENT: stored identity invalid\n");
			return -EIO;
		}
		json_object_put(o);
		n++;
	}
	sqlite3_finalize(st);
	/*
	 * The registry follows the identities' grants. A stored node without
	 * an identity keeps its stored trust: idnd wrote it (an operator's
	 * record under --enrol open), no node did.
	 */
	for (int j = 0; j < IDN_MAX_NODES; j++)
		if (D.nodes[j].used && (I[j].state != ST_NONE || I[j].op_trust >= 0 ||
					I[j].att_trust >= 0))
			idnd_ident_grant(j, &D.nodes[j].trust, &D.nodes[j].confidential);
	pr_info("IDENT: %d identities loaded, enrolment %s%s%s\n", n,
		mode == IDND_ENROL_OPEN ? "open" : "by approval",
		have_enrol_pk ? ", operator enrolment key set" : "",
		verifiers[0].have_key ? ", test attestation verifier on" : "");
	return 0;
}

static void push_key(uint32_t id)
{
	struct idn_tele_key cur;

	/* routers fed by etcd (idnd -W) install it from there */
	idnd_dist_tele_key(id, I[id].tkey_id ? I[id].tkey : NULL, I[id].tkey_id);
	if (!D.have_maps)
		return;
	if (!I[id].tkey_id) {
		if (!idn_tele_key_get(&D.maps, id, &cur))
			idn_tele_key_put(&D.maps, id, NULL, 0);
		return;
	}
	/* the same key already there: keep its replay window */
	if (!idn_tele_key_get(&D.maps, id, &cur) && cur.key_id == I[id].tkey_id) {
		uint64_t k0 = 0, k1 = 0;

		for (int i = 0; i < 8; i++) {
			k0 |= (uint64_t)I[id].tkey[i] << (8 * i);
			k1 |= (uint64_t)I[id].tkey[8 + i] << (8 * i);
		}
		if (cur.k0 == k0 && cur.k1 == k1)
			return;
	}
	if (idn_tele_key_put(&D.maps, id, I[id].tkey, I[id].tkey_id))
		pr_warn("IDENT: node %u: telemetry key: %s\n", id, idn_errmsg());
}

void idnd_ident_push_keys(void)
{
	for (uint32_t j = 0; j < IDN_MAX_NODES; j++)
		if (I[j].tkey_id)
			push_key(j);
}

void idnd_ident_grant(uint32_t node, uint8_t *trust, bool *confidential)
{
	const struct d_ident *r = &I[node];

	if (r->op_trust >= 0) {
		*trust = r->op_trust;
		*confidential = r->op_conf;
	} else if (r->att_trust >= 0) {
		*trust = r->att_trust;
		*confidential = r->att_conf;
	} else {
		*trust = 0;
		*confidential = false;
	}
}

/* ---- statements signed by an operator key --------------------------------- */

#define STMT_CONTEXT "IDN-STMT-1\n"

/*
 * {"stmt": TEXT, "sig": HEX}: TEXT a JSON object with "kind" @kind, "node"
 * @node, "pubkey" the node's key and "expires" (unix seconds) in the
 * future, signed (Ed25519 over "IDN-STMT-1\n" TEXT) by @key. The parsed
 * statement in *out.
 */
static int stmt_check(const uint8_t key[32], json_object *w, const char *kind, uint32_t node,
		      const uint8_t pk[32], json_object **out, char *err, size_t errlen)
{
	const char *text = idn_jstr(w, "stmt"), *sig = idn_jstr(w, "sig"), *k;
	uint8_t s[64], spk[32];
	json_object *o;
	size_t tl, ml;
	char *msg;
	int ok;

	*out = NULL;
	if (!json_object_is_type(w, json_type_object) || !text || from_hex(s, 64, sig)) {
		snprintf(err, errlen, "%s statement: {\"stmt\": TEXT, \"sig\": HEX} expected", kind);
		return -EINVAL;
	}
	tl = strlen(text);
	ml = strlen(STMT_CONTEXT) + tl;
	msg = malloc(ml + 1);
	if (!msg)
		return -ENOMEM;
	memcpy(msg, STMT_CONTEXT, strlen(STMT_CONTEXT));
	memcpy(msg + strlen(STMT_CONTEXT), text, tl);
	ok = !crypto_sign_verify_detached(s, (uint8_t *)msg, ml, key);
	free(msg);
	if (!ok) {
		snprintf(err, errlen, "%s statement: signature does not verify with the operator's "
			 "key", kind);
		return -EPERM;
	}
	o = json_tokener_parse(text);
	k = o ? idn_jstr(o, "kind") : NULL;
	if (!o || !k || strcmp(k, kind) || idn_jint(o, "node", -1) != (int64_t)node ||
	    from_hex(spk, 32, idn_jstr(o, "pubkey")) || memcmp(spk, pk, 32)) {
		json_object_put(o);
		snprintf(err, errlen, "%s statement: not for node %u with this request's key", kind,
			 node);
		return -EPERM;
	}
	if (idn_jint(o, "expires", 0) <= (int64_t)time(NULL)) {
		json_object_put(o);
		snprintf(err, errlen, "%s statement: expired", kind);
		return -EPERM;
	}
	*out = o;
	return 0;
}

/* The test verifier: an attestation statement signed by the operator's attestation key. */
static int test_verify(const struct idnd_verifier *v, uint32_t node, const uint8_t pk[32],
		       json_object *ev, uint8_t *trust, bool *conf, char *err, size_t errlen)
{
	json_object *st;
	int64_t t;
	int rc;

	if (!v->have_key) {
		snprintf(err, errlen, "attestation verifier \"test\" has no key (idnd --attest-key)");
		return -EPERM;
	}
	rc = stmt_check(v->key, ev, "attest", node, pk, &st, err, errlen);
	if (rc)
		return rc;
	t = idn_jint(st, "trust", -1);
	if (t < 0 || t > 7) {
		json_object_put(st);
		snprintf(err, errlen, "attestation: \"trust\" 0..7 expected");
		return -EINVAL;
	}
	*trust = t;
	*conf = jbool(st, "confidential");
	json_object_put(st);
	return 0;
}

/* ---- signed requests ----------------------------------------------------- */

static const char *hdr(struct MHD_Connection *c, const char *name)
{
	return MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, name);
}

static bool has_sig(struct MHD_Connection *c)
{
	return hdr(c, IDN_HDR_SIG) || hdr(c, IDN_HDR_KEY);
}

/* verify the request's signature, time and nonce; pk gets the key it names */
static unsigned int sig_check(struct MHD_Connection *c, const char *method, const char *url,
			      uint32_t node, const char *body, size_t len, uint8_t pk[32],
			      char *err, size_t errlen)
{
	const char *k = hdr(c, IDN_HDR_KEY), *t = hdr(c, IDN_HDR_TIME),
		   *nc = hdr(c, IDN_HDR_NONCE), *sg = hdr(c, IDN_HDR_SIG);
	uint8_t sig[64], nonce[16];
	int64_t ts, now = wall_ms();
	char *end, *text, f[24];
	size_t tl;
	int ok, rc;

	if (from_hex(pk, 32, k) || from_hex(sig, 64, sg) || from_hex(nonce, 16, nc) || !t ||
	    !*t) {
		n_sig_bad++;
		snprintf(err, errlen, "signed request: query %s (64 hex), %s (ms), %s (32 hex) "
			 "and %s (128 hex) expected", IDN_HDR_KEY, IDN_HDR_TIME, IDN_HDR_NONCE,
			 IDN_HDR_SIG);
		return 401;
	}
	errno = 0;
	ts = strtoll(t, &end, 10);
	if (errno || *end) {
		n_sig_bad++;
		snprintf(err, errlen, "signed request: %s: milliseconds expected", IDN_HDR_TIME);
		return 401;
	}
	text = idn_sig_text(method, url, node, t, nc, body, len, &tl);
	if (!text)
		return 500;
	ok = !crypto_sign_verify_detached(sig, (uint8_t *)text, tl, pk);
	free(text);
	if (!ok) {
		n_sig_bad++;
		pr_warn("IDENT: node %u: %s %s refused: signature does not verify with key %s\n",
			node, method, url, fp(pk, f));
		snprintf(err, errlen, "signature does not verify with key %s", fp(pk, f));
		return 401;
	}
	if (ts < now - IDN_SIG_WINDOW_MS || ts > now + IDN_SIG_WINDOW_MS) {
		n_replayed++;
		pr_warn("IDENT: node %u: %s %s refused: time %lld ms off idnd's clock (window "
			"%d ms)\n", node, method, url, (long long)(ts - now), IDN_SIG_WINDOW_MS);
		snprintf(err, errlen, "request time %lld ms off idnd's clock (window +-%d ms): "
			 "replayed, or a clock to set", (long long)(ts - now), IDN_SIG_WINDOW_MS);
		return 403;
	}
	rc = nonce_take(node, nonce, now);
	if (rc == -EALREADY) {
		n_replayed++;
		pr_warn("IDENT: node %u: %s %s refused: replayed request (nonce %s seen)\n", node,
			method, url, nc);
		snprintf(err, errlen, "replayed request: nonce already seen");
		return 403;
	}
	if (rc) {
		snprintf(err, errlen, "too many signed requests in flight; retry");
		return 503;
	}
	return 0;
}

static unsigned int refuse_key(uint32_t node, const char *what, const uint8_t pk[32], char *err,
			       size_t errlen)
{
	char f1[24], f2[24];

	n_refused++;
	I[node].refused++;
	fp(pk, I[node].refused_fp);
	pr_warn("IDENT: node %u: %s refused: key %s is not the node's %s key %s\n", node, what,
		fp(pk, f1), st_names[I[node].state], fp(I[node].pk, f2));
	snprintf(err, errlen, "node %u is %s with another key (%s); this request's key is %s",
		 node, st_names[I[node].state], f2, f1);
	return 403;
}

unsigned int idnd_ident_register(struct MHD_Connection *c, const char *body, size_t len,
				 json_object *o, struct ident_grant *g, char *err, size_t errlen)
{
	json_object *v, *enrol = NULL, *att = NULL;
	struct d_ident *r;
	uint8_t pk[32];
	unsigned int code = 0;
	char f[24];
	int64_t id;

	memset(g, 0, sizeof(*g));
	if (!json_object_object_get_ex(o, "id", &v) || !json_object_is_type(v, json_type_int) ||
	    (id = json_object_get_int64(v)) < 0 || id >= IDN_MAX_NODES)
		return 0;	/* the strict parser names the field */
	r = &I[id];
	if (!has_sig(c) && mode == IDND_ENROL_OPEN && r->state != ST_ENROLLED) {
		/*
		 * --enrol open (tests only, warned at start): an unsigned
		 * registration is an operator's record of a node without an
		 * identity, as before enrolment existed; its trust is taken as
		 * written, and said so. A signed one (a node) never is.
		 */
		if (json_object_object_get_ex(o, "enrolment", NULL) ||
		    json_object_object_get_ex(o, "attestation", NULL)) {
			snprintf(err, errlen, "enrolment statements and attestation need a signed "
				 "request");
			return 400;
		}
		idnd_ident_grant(id, &g->trust, &g->confidential);
		if (json_object_object_get_ex(o, "trust", &v) &&
		    json_object_is_type(v, json_type_int) && json_object_get_int64(v) >= 0 &&
		    json_object_get_int64(v) <= 7 && r->op_trust < 0) {
			g->trust = json_object_get_int64(v);
			g->confidential = json_object_object_get_ex(o, "confidential", &v) &&
					  json_object_get_boolean(v);
			pr_warn("IDENT: node %u: trust %u%s from an unsigned registration body "
				"(--enrol open: tests only)\n", (unsigned int)id, g->trust,
				g->confidential ? ", confidential" : "");
		}
		g->body_trust = true;
		return 0;
	}
	if (json_object_object_get_ex(o, "trust", NULL) ||
	    json_object_object_get_ex(o, "confidential", NULL)) {
		n_refused++;
		pr_warn("IDENT: node %u: registration refused: it claims trust/confidential in its "
			"body (they come from the operator or attestation: idnctl node trust)\n",
			(unsigned int)id);
		snprintf(err, errlen, "fields \"trust\"/\"confidential\" are not the node's to "
			 "claim: the operator sets them (idnctl node trust %u LEVEL) or verified "
			 "attestation evidence does", (unsigned int)id);
		return 403;
	}
	if (json_object_object_get_ex(o, "enrolment", &enrol))
		json_object_get(enrol);
	if (json_object_object_get_ex(o, "attestation", &att))
		json_object_get(att);
	json_object_object_del(o, "enrolment");
	json_object_object_del(o, "attestation");

	if (!has_sig(c)) {
		if (r->state == ST_ENROLLED) {
			n_refused++;
			pr_warn("IDENT: node %u: unsigned registration refused: the node is enrolled "
				"with key %s\n", (unsigned int)id, fp(r->pk, f));
			snprintf(err, errlen, "node %u is enrolled: its requests must be signed with "
				 "its key (%s)", (unsigned int)id, f);
			code = 403;
		} else if (mode != IDND_ENROL_OPEN) {
			n_refused++;
			pr_warn("IDENT: node %u: unsigned registration refused\n", (unsigned int)id);
			snprintf(err, errlen, "unsigned registration refused: a node registers with "
				 "requests signed by its key (idn-agent), and is enrolled by an "
				 "operator (idnctl node approve) or an enrolment statement");
			code = 403;
		} else if (enrol || att) {
			snprintf(err, errlen, "enrolment statements and attestation need a signed "
				 "request");
			code = 400;
		}
		goto out;
	}
	code = sig_check(c, "POST", "/v1/nodes", id, body, len, pk, err, errlen);
	if (code)
		goto out;
	if (r->state == ST_ENROLLED) {
		if (memcmp(pk, r->pk, 32)) {
			code = refuse_key(id, "registration", pk, err, errlen);
			goto out;
		}
	} else if (enrol) {
		json_object *st;
		int rc = have_enrol_pk ? stmt_check(enrol_pk, enrol, "enrol", id, pk, &st, err,
						    errlen) : -EPERM;

		if (!have_enrol_pk)
			snprintf(err, errlen, "enrolment statement: idnd has no operator enrolment "
				 "key (--enrol-key)");
		if (rc) {
			n_refused++;
			pr_warn("IDENT: node %u: enrolment of key %s refused: %s\n",
				(unsigned int)id, fp(pk, f), err);
			code = 403;
			goto out;
		}
		json_object_put(st);
		r->state = ST_ENROLLED;
		memcpy(r->pk, pk, 32);
		snprintf(r->how, sizeof(r->how), "statement");
		r->enrolled_at = time(NULL);
		pr_info("IDENT: node %u enrolled with key %s by the operator's statement\n",
			(unsigned int)id, fp(pk, f));
	} else if (mode == IDND_ENROL_OPEN) {
		r->state = ST_ENROLLED;
		memcpy(r->pk, pk, 32);
		snprintf(r->how, sizeof(r->how), "open");
		r->enrolled_at = time(NULL);
		pr_warn("IDENT: node %u enrolled on first use with key %s (--enrol open)\n",
			(unsigned int)id, fp(pk, f));
	} else {
		if (r->state == ST_PENDING && memcmp(pk, r->pk, 32)) {
			code = refuse_key(id, "registration", pk, err, errlen);
			goto out;
		}
		if (r->state != ST_PENDING) {
			r->state = ST_PENDING;
			memcpy(r->pk, pk, 32);
			rec_store(id);
			pr_warn("IDENT: node %u: key %s waits for approval: idnctl node approve %u\n",
				(unsigned int)id, fp(pk, f), (unsigned int)id);
		}
		snprintf(err, errlen, "node %u is not enrolled: key %s waits for an operator "
			 "(idnctl node approve %u)", (unsigned int)id, fp(pk, f), (unsigned int)id);
		code = 403;
		goto out;
	}
	if (att) {
		const char *vn = idn_jstr(att, "verifier");
		struct idnd_verifier *ver = NULL;
		uint8_t t;
		bool cf;

		for (size_t i = 0; vn && i < sizeof(verifiers) / sizeof(verifiers[0]); i++)
			if (!strcmp(vn, verifiers[i].name))
				ver = &verifiers[i];
		if (!ver) {
			snprintf(err, errlen, "attestation: unknown verifier \"%.32s\"",
				 vn ? vn : "");
			code = 403;
		} else if (ver->verify(ver, id, pk, att, &t, &cf, err, errlen)) {
			code = 403;
		}
		if (code) {
			n_refused++;
			pr_warn("IDENT: node %u: attestation refused: %s\n", (unsigned int)id, err);
			rec_store(id);
			goto out;
		}
		r->att_trust = t;
		r->att_conf = cf;
		snprintf(r->att_verifier, sizeof(r->att_verifier), "%s", ver->name);
		pr_info("IDENT: node %u attested by verifier %s: trust %u%s\n", (unsigned int)id,
			ver->name, t, cf ? ", confidential" : "");
	}
	g->signed_req = true;
out:
	json_object_put(enrol);
	json_object_put(att);
	if (!code)
		idnd_ident_grant(id, &g->trust, &g->confidential);
	return code;
}

void idnd_ident_registered(uint32_t node, const struct ident_grant *g, json_object *reply)
{
	struct d_ident *r = &I[node];
	uint8_t xpk[32], sealed[crypto_box_SEALBYTES + 16];
	char hex[2 * sizeof(sealed) + 1], f[24];
	json_object *k;

	if (r->state == ST_ENROLLED) {
		json_object *id = json_object_new_object();

		json_object_object_add(id, "fingerprint", json_object_new_string(fp(r->pk, f)));
		json_object_object_add(id, "how", json_object_new_string(r->how));
		json_object_object_add(reply, "identity", id);
	}
	if (!g->signed_req || r->state != ST_ENROLLED)
		return;
	/* ORDER: the map first, then the reply: the node never holds a key the router lacks */
	r->tkey_id++;
	randombytes_buf(r->tkey, sizeof(r->tkey));
	rec_store(node);
	push_key(node);
	if (crypto_sign_ed25519_pk_to_curve25519(xpk, r->pk) ||
	    crypto_box_seal(sealed, r->tkey, 16, xpk))
		return;
	to_hex(hex, sealed, sizeof(sealed));
	k = json_object_new_object();
	json_object_object_add(k, "key_id", json_object_new_int64(r->tkey_id));
	json_object_object_add(k, "sealed", json_object_new_string(hex));
	json_object_object_add(reply, "telemetry_key", k);
}

unsigned int idnd_ident_heartbeat(struct MHD_Connection *c, const char *url, uint32_t node,
				  const char *body, size_t len, char *err, size_t errlen)
{
	struct d_ident *r = &I[node];
	uint8_t pk[32];
	unsigned int code;
	char f[24];

	if (!has_sig(c)) {
		if (r->state == ST_ENROLLED) {
			n_refused++;
			pr_warn("IDENT: node %u: unsigned heartbeat refused: the node is enrolled "
				"with key %s\n", node, fp(r->pk, f));
			snprintf(err, errlen, "node %u is enrolled: its heartbeats must be signed "
				 "with its key (%s)", node, f);
			return 403;
		}
		if (mode != IDND_ENROL_OPEN) {
			snprintf(err, errlen, "unsigned heartbeat refused");
			return 403;
		}
		return 0;
	}
	code = sig_check(c, "POST", url, node, body, len, pk, err, errlen);
	if (code)
		return code;
	if (r->state == ST_NONE) {
		/*
		 * This replica has never seen the node's key (identities live
		 * in each replica's store, not in etcd: a node whose leader
		 * died heartbeats to one that never enrolled it). 404 is the
		 * agent's cue to register again, signed: enrolled at once by
		 * a statement or --enrol open, else pending approval here.
		 */
		snprintf(err, errlen, "node %u has no identity at this controller: register "
			 "(signed) first", node);
		return 404;
	}
	if (r->state != ST_ENROLLED) {
		snprintf(err, errlen, "node %u is not enrolled", node);
		return 403;
	}
	if (memcmp(pk, r->pk, 32))
		return refuse_key(node, "heartbeat", pk, err, errlen);
	return 0;
}

/* ---- operator endpoints -------------------------------------------------- */

/* a node in the registry follows a changed grant: store, router entry, plans */
static void regrant(uint32_t id)
{
	struct d_node *n = &D.nodes[id];

	if (!n->used)
		return;
	idnd_ident_grant(id, &n->trust, &n->confidential);
	if (idnd_store_node(n))
		pr_warn("IDENT: node %u: store: %s\n", id, idnd_store_err());
	idnd_dist_node(n);
	if (D.have_maps)
		idnd_node_push(n);
	if (D.have_maps || D.etcd)
		idnd_compile();
}

static json_object *body_obj(const char *body, size_t len, char *err, size_t errlen)
{
	json_object *o;

	if (!len)
		return json_object_new_object();
	if (memchr(body, 0, len) || !(o = json_tokener_parse(body)) ||
	    !json_object_is_type(o, json_type_object)) {
		snprintf(err, errlen, "a JSON object expected");
		return NULL;
	}
	return o;
}

static bool only_keys(json_object *o, const char *const *ok, char *err, size_t errlen)
{
	json_object_object_foreach(o, key, val) {
		bool found = false;

		(void)val;
		for (int i = 0; ok[i]; i++)
			found |= !strcmp(key, ok[i]);
		if (!found) {
			snprintf(err, errlen, "unknown field \"%.64s\"", key);
			return false;
		}
	}
	return true;
}

unsigned int idnd_ident_api(const char *method, const char *url, const char *body, size_t len,
			    json_object **out, char *err, size_t errlen)
{
	static const char *const ok_approve[] = { "pubkey", NULL };
	static const char *const ok_trust[] = { "trust", "confidential", NULL };
	bool get = !strcmp(method, "GET"), post = !strcmp(method, "POST"),
	     del = !strcmp(method, "DELETE");
	const char *p = url + strlen("/v1/identities"), *rest;
	unsigned long id;
	json_object *o, *v;
	struct d_ident *r;
	char f[24], *end;

	*out = NULL;
	if (!*p || !strcmp(p, "/")) {
		if (!get) {
			snprintf(err, errlen, "method %s not allowed on %s", method, url);
			return 405;
		}
		*out = json_object_new_array();
		for (uint32_t j = 0; j < IDN_MAX_NODES; j++)
			if (I[j].state != ST_NONE || I[j].op_trust >= 0 || I[j].att_trust >= 0)
				json_object_array_add(*out, rec_json(j, &I[j], false));
		return 200;
	}
	errno = 0;
	id = *p == '/' && p[1] >= '0' && p[1] <= '9' ? strtoul(p + 1, &end, 10) : ULONG_MAX;
	if (errno || id >= IDN_MAX_NODES) {
		snprintf(err, errlen, "no such endpoint: %s", url);
		return 404;
	}
	rest = end;
	r = &I[id];
	if (!*rest && get) {
		*out = rec_json(id, r, false);
		return 200;
	}
	if (!*rest && del) {
		if (r->state == ST_NONE && r->op_trust < 0 && r->att_trust < 0) {
			snprintf(err, errlen, "node %lu has no identity", id);
			return 404;
		}
		pr_warn("IDENT: node %lu: identity %s (key %s) forgotten by the operator\n", id,
			st_names[r->state], fp(r->pk, f));
		memset(r, 0, sizeof(*r));
		r->op_trust = r->att_trust = -1;
		rec_store(id);
		push_key(id);
		regrant(id);
		*out = json_object_new_object();
		return 200;
	}
	if (!post || (strcmp(rest, "/approve") && strcmp(rest, "/trust"))) {
		snprintf(err, errlen, "%s %s: no such endpoint", method, url);
		return !strcmp(rest, "/approve") || !strcmp(rest, "/trust") ? 405 : 404;
	}
	o = body_obj(body, len, err, errlen);
	if (!o)
		return 400;
	if (!strcmp(rest, "/approve")) {
		uint8_t pk[32];

		if (!only_keys(o, ok_approve, err, errlen))
			goto bad;
		if (json_object_object_get_ex(o, "pubkey", &v)) {
			if (from_hex(pk, 32, json_object_get_string(v))) {
				snprintf(err, errlen, "field \"pubkey\": 64 lowercase hex characters "
					 "(the node's Ed25519 key) expected");
				goto bad;
			}
		} else if (r->state == ST_PENDING) {
			memcpy(pk, r->pk, 32);
		} else {
			json_object_put(o);
			snprintf(err, errlen, "node %lu has no pending key: give the key "
				 "(idnctl node approve %lu KEY)", id, id);
			return 404;
		}
		if (r->state == ST_ENROLLED && memcmp(pk, r->pk, 32))
			pr_warn("IDENT: node %lu: the operator replaces enrolled key %s\n", id,
				fp(r->pk, f));
		if (r->state == ST_ENROLLED && memcmp(pk, r->pk, 32) && r->tkey_id) {
			/* the old holder's telemetry key goes: a new one nobody holds */
			r->tkey_id++;
			randombytes_buf(r->tkey, sizeof(r->tkey));
			push_key(id);
		}
		r->state = ST_ENROLLED;
		memcpy(r->pk, pk, 32);
		snprintf(r->how, sizeof(r->how), "operator");
		r->enrolled_at = time(NULL);
		pr_warn("IDENT: node %lu enrolled with key %s by the operator\n", id, fp(pk, f));
	} else {
		int64_t t;

		if (!only_keys(o, ok_trust, err, errlen))
			goto bad;
		if (!json_object_object_get_ex(o, "trust", &v) ||
		    !json_object_is_type(v, json_type_int) || (t = json_object_get_int64(v)) < 0 ||
		    t > 7) {
			snprintf(err, errlen, "field \"trust\": integer 0..7 expected");
			goto bad;
		}
		if (json_object_object_get_ex(o, "confidential", &v) &&
		    !json_object_is_type(v, json_type_boolean)) {
			snprintf(err, errlen, "field \"confidential\": boolean expected");
			goto bad;
		}
		r->op_trust = t;
		r->op_conf = jbool(o, "confidential");
		pr_info("IDENT: node %lu: operator trust %lld%s\n", id, (long long)t,
			r->op_conf ? ", confidential" : "");
	}
	json_object_put(o);
	if (rec_store(id)) {
		snprintf(err, errlen, "store failed");
		return 500;
	}
	regrant(id);
	*out = rec_json(id, r, false);
	return 200;
bad:
	json_object_put(o);
	return 400;
}

void idnd_ident_metrics(struct idn_prom *p)
{
	int pend = 0, enr = 0;

	for (int j = 0; j < IDN_MAX_NODES; j++) {
		pend += I[j].state == ST_PENDING;
		enr += I[j].state == ST_ENROLLED;
	}
	idn_prom_one_u64(p, "idnd_identities_enrolled", IDN_PROM_GAUGE,
			 "Node identities enrolled.", enr);
	idn_prom_one_u64(p, "idnd_identities_pending", IDN_PROM_GAUGE,
			 "Node identities waiting for approval.", pend);
	idn_prom_one_u64(p, "idnd_identity_refused_total", IDN_PROM_COUNTER,
			 "Node requests refused for their identity.", n_refused);
	idn_prom_one_u64(p, "idnd_identity_bad_signature_total", IDN_PROM_COUNTER,
			 "Node requests with a bad signature.", n_sig_bad);
	idn_prom_one_u64(p, "idnd_identity_replayed_total", IDN_PROM_COUNTER,
			 "Node requests refused as replays.", n_replayed);
}
