// SPDX-License-Identifier: GPL-2.0
/*
 * signed.c - signed capability metadata in idnd: trusted publisher keys,
 * the check of a registration's manifest (ctl/capsig.c), each label's
 * version history, revocation and rollback (docs/security.md, "Signed
 * capability metadata and revocation").
 *
 * Tables (SQLite, the store's connection, created here like state.c's):
 *   publishers(name, pubkey)                 trusted Ed25519 keys
 *   cap_versions(cap, version, body, manifest) every accepted version:
 *                                            descriptor and signed manifest
 *                                            (NULL: unsigned), the newest 32
 *                                            per label
 *   revocations(cap, version, at)            never deleted
 *
 * Revocation: the revocation row is written (synchronous=FULL) before
 * anything else, then the registry rolls back: when the revoked version
 * is the registered one, the newest older version in the history that is
 * not revoked takes its place (its signature checked again against the
 * publishers trusted now: a version whose publisher is gone is unsigned),
 * or, with none, the capability leaves the registry (placement, plans).
 * Then the plans are recompiled and committed before the API answers:
 * when `POST /v1/caps/L/revoke` returns, no plan of the maps holds the
 * revoked version. A restart re-applies any revocation of a registered
 * version (a crash between the two writes). A revoked version is refused
 * at registration, as the parent of a lineage, and in rollbacks.
 *
 * Distributed mode: the leader mirrors each table under PREFIX sig/ in
 * etcd (pub/NAME, ver/CAP-VERSION, rev/CAP-VERSION), so a replica that
 * takes over imports them (idnd_sig_import) and checks every registered
 * version's signature again: publishers as the domain has them,
 * revocations the union of both (never undone), versions added.
 *
 * All functions run under D.lock (the API's, idnd.c's start-up).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sqlite3.h>

#include "idnd.h"
#include "orders.h"
#include "capsig.h"
#include "log.h"

#define SIG_MAX_PUBLISHERS	64
#define SIG_MAX_REVOCATIONS	65536
#define SIG_HISTORY		32	/* versions kept per label */

struct pub {
	char name[64];
	uint8_t pk[32];
};

static struct pub pubs[SIG_MAX_PUBLISHERS];
static int n_pubs;
static struct capsig_ref *revs;
static int n_revs;
static uint64_t refused;	/* registrations refused for their signature */

static sqlite3 *db(void)
{
	return idnd_store_handle();
}

static const struct pub *pub_find(const char *name)
{
	for (int i = 0; i < n_pubs; i++)
		if (!strcmp(pubs[i].name, name))
			return &pubs[i];
	return NULL;
}

bool idnd_sig_revoked(uint32_t label, uint32_t version)
{
	for (int i = 0; i < n_revs; i++)
		if (revs[i].cap == label && revs[i].version == version)
			return true;
	return false;
}

/* Check manifest m + sig for descriptor c; fill c's sig fields. 0 or HTTP status. */
static int check(struct d_cap *c, const struct capsig_manifest *m, const uint8_t sig[64],
		 char *err, size_t errlen)
{
	const struct pub *p = pub_find(m->publisher);
	char cb[32];

	snprintf(cb, sizeof(cb), "%u/%u", c->label >> 8, c->label & 0xff);
	if (!p) {
		snprintf(err, errlen, "manifest of capability %s version %u: publisher \"%s\" is "
			 "not trusted (idnctl publisher add)", cb, c->version, m->publisher);
		return 403;
	}
	if (capsig_verify(m, sig, p->pk)) {
		snprintf(err, errlen, "manifest of capability %s version %u: signature check "
			 "FAILED: altered, or not signed by publisher \"%s\"'s key", cb,
			 c->version, m->publisher);
		return 403;
	}
	if (m->cap != c->label || m->version != c->version || strcmp(m->name, c->name)) {
		snprintf(err, errlen, "manifest does not match the descriptor: it signs "
			 "capability " IDN_CAP_FMT " version %u \"%s\", the descriptor is "
			 IDN_CAP_FMT " version %u \"%s\"",
			 IDN_CAP_ARG(m->cap), m->version, m->name, IDN_CAP_ARG(c->label), c->version,
			 c->name);
		return 403;
	}
	if (c->parent ? !m->n_lineage || m->lineage[0].cap != c->parent : m->n_lineage) {
		snprintf(err, errlen, "manifest lineage does not match the descriptor's parent "
			 IDN_CAP_FMT, IDN_CAP_ARG(c->parent));
		return 403;
	}
	for (int i = 0; i < m->n_lineage; i++)
		if (idnd_sig_revoked(m->lineage[i].cap, m->lineage[i].version)) {
			snprintf(err, errlen, "lineage: capability " IDN_CAP_FMT " version %u is revoked",
				 IDN_CAP_ARG(m->lineage[i].cap), m->lineage[i].version);
			return 409;
		}
	c->sig = true;
	snprintf(c->publisher, sizeof(c->publisher), "%s", m->publisher);
	memcpy(c->sha256, m->sha256, 32);
	c->sig_privacy = m->privacy;
	c->sig_locality = m->locality;
	c->sig_trust = m->trust;
	return 0;
}

/* A stored manifest (text) checked again for c; false: c is unsigned. */
static bool recheck(struct d_cap *c, const char *text)
{
	struct capsig_manifest m;
	uint8_t sig[64];
	char err[256];
	json_object *o;
	int e;

	c->sig = false;
	if (!text)
		return false;
	o = json_tokener_parse(text);
	e = capsig_from_json(o, &m, sig, err, sizeof(err)) ? 400 : check(c, &m, sig, err,
									 sizeof(err));
	json_object_put(o);
	if (e) {
		c->sig = false;
		pr_warn("SIG: capability %u/%u version %u is unsigned now: %s\n", c->label >> 8,
			c->label & 0xff, c->version, err);
	}
	return !e;
}

static char *stored_manifest(uint32_t label, uint32_t version)
{
	sqlite3_stmt *st;
	char *m = NULL;

	if (sqlite3_prepare_v2(db(), "SELECT manifest FROM cap_versions WHERE cap = ?1 AND "
			       "version = ?2", -1, &st, NULL) != SQLITE_OK)
		return NULL;
	sqlite3_bind_int64(st, 1, label);
	sqlite3_bind_int64(st, 2, version);
	if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_text(st, 0))
		m = strdup((const char *)sqlite3_column_text(st, 0));
	sqlite3_finalize(st);
	return m;
}

int idnd_sig_admit(struct d_cap *cap, json_object *manifest, char *err, size_t errlen)
{
	const struct d_cap *old = idnd_cap_find(cap->label);
	struct capsig_manifest m;
	uint8_t sig[64];
	int e = 0;

	cap->sig = false;
	if (idnd_sig_revoked(cap->label, cap->version)) {
		snprintf(err, errlen, "capability %u/%u version %u is revoked: it cannot be "
			 "registered again", cap->label >> 8, cap->label & 0xff, cap->version);
		e = 409;
	} else if (manifest && capsig_from_json(manifest, &m, sig, err, errlen)) {
		e = 400;
	} else if (manifest) {
		e = check(cap, &m, sig, err, errlen);
	}
	/* the same version again must be the same signed artifact */
	if (!e && old && old->version == cap->version && old->sig &&
	    (!cap->sig || memcmp(old->sha256, cap->sha256, 32))) {
		snprintf(err, errlen, "capability %u/%u version %u is registered signed: it can "
			 "only be registered again with a manifest for the same artifact",
			 cap->label >> 8, cap->label & 0xff, cap->version);
		e = 409;
	}
	if (e) {
		refused++;
		pr_warn("SIG: registration refused: %s\n", err);
	}
	return e;
}

/* publishers(name, pubkey): a row written or deleted (hex NULL). 0 or -EIO */
static int pub_row(const char *name, const char *hex)
{
	sqlite3_stmt *st;
	int rc;

	if (sqlite3_prepare_v2(db(), hex ? "INSERT OR REPLACE INTO publishers VALUES(?1, ?2)"
				     : "DELETE FROM publishers WHERE name = ?1", -1, &st,
			       NULL) != SQLITE_OK)
		return -EIO;
	sqlite3_bind_text(st, 1, name, -1, SQLITE_TRANSIENT);
	if (hex)
		sqlite3_bind_text(st, 2, hex, -1, SQLITE_TRANSIENT);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : -EIO;
}

/* ---- the etcd mirror (distributed mode, leader only: dist.c) ---------------- */

/* a trusted publisher (hex NULL: no longer trusted) */
static void mirror_pub(const char *name, const char *hex)
{
	char sub[96];
	json_object *o;

	snprintf(sub, sizeof(sub), "pub/%s", name);
	if (!hex) {
		idnd_dist_sig(sub, NULL);
		return;
	}
	o = json_object_new_object();
	json_object_object_add(o, "name", json_object_new_string(name));
	json_object_object_add(o, "pubkey", json_object_new_string(hex));
	idnd_dist_sig(sub, json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
	json_object_put(o);
}

static void mirror_rev(uint32_t cap, uint32_t version, int64_t at)
{
	char sub[64];
	json_object *o = json_object_new_object();

	snprintf(sub, sizeof(sub), "rev/%u-%u", cap, version);
	json_object_object_add(o, "cap", json_object_new_int64(cap));
	json_object_object_add(o, "version", json_object_new_int64(version));
	json_object_object_add(o, "at", json_object_new_int64(at));
	idnd_dist_sig(sub, json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
	json_object_put(o);
}

static void mirror_ver(uint32_t cap, uint32_t version, const char *body, const char *manifest)
{
	char sub[64];
	json_object *o = json_object_new_object();

	snprintf(sub, sizeof(sub), "ver/%u-%u", cap, version);
	json_object_object_add(o, "cap", json_object_new_int64(cap));
	json_object_object_add(o, "version", json_object_new_int64(version));
	json_object_object_add(o, "body", json_object_new_string(body));
	json_object_object_add(o, "manifest", manifest ? json_object_new_string(manifest) : NULL);
	idnd_dist_sig(sub, json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
	json_object_put(o);
}

int idnd_sig_record(const struct d_cap *cap, json_object *manifest)
{
	sqlite3_stmt *st;
	json_object *body = idnd_cap_to_json(cap, false);
	int rc;

	if (sqlite3_prepare_v2(db(), "INSERT OR REPLACE INTO cap_versions VALUES(?1, ?2, ?3, ?4)",
			       -1, &st, NULL) != SQLITE_OK) {
		json_object_put(body);
		return -EIO;
	}
	sqlite3_bind_int64(st, 1, cap->label);
	sqlite3_bind_int64(st, 2, cap->version);
	sqlite3_bind_text(st, 3, json_object_to_json_string_ext(body, JSON_C_TO_STRING_PLAIN), -1,
			  SQLITE_TRANSIENT);
	if (manifest)
		sqlite3_bind_text(st, 4, json_object_to_json_string_ext(manifest,
				  JSON_C_TO_STRING_PLAIN), -1, SQLITE_TRANSIENT);
	else
		sqlite3_bind_null(st, 4);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc == SQLITE_DONE)
		mirror_ver(cap->label, cap->version,
			   json_object_to_json_string_ext(body, JSON_C_TO_STRING_PLAIN),
			   manifest ? json_object_to_json_string_ext(manifest,
								     JSON_C_TO_STRING_PLAIN) : NULL);
	json_object_put(body);
	if (rc != SQLITE_DONE)
		return -EIO;
	/* the newest SIG_HISTORY versions of the label are what rollbacks need */
	if (sqlite3_prepare_v2(db(), "DELETE FROM cap_versions WHERE cap = ?1 AND version NOT IN "
			       "(SELECT version FROM cap_versions WHERE cap = ?1 ORDER BY version "
			       "DESC LIMIT ?2)", -1, &st, NULL) != SQLITE_OK)
		return -EIO;
	sqlite3_bind_int64(st, 1, cap->label);
	sqlite3_bind_int(st, 2, SIG_HISTORY);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : -EIO;
}

/*
 * The version to serve after a revocation of label's version `gone`: the
 * newest older one in the history, not revoked, whose descriptor parses.
 * 0 with *out filled, -ENOENT: none.
 */
static int previous(uint32_t label, uint32_t gone, struct d_cap *out)
{
	sqlite3_stmt *st;
	int rc = -ENOENT;

	if (sqlite3_prepare_v2(db(), "SELECT version, body, manifest FROM cap_versions WHERE "
			       "cap = ?1 AND version < ?2 ORDER BY version DESC", -1, &st, NULL) !=
	    SQLITE_OK)
		return -EIO;
	sqlite3_bind_int64(st, 1, label);
	sqlite3_bind_int64(st, 2, gone);
	while (sqlite3_step(st) == SQLITE_ROW) {
		json_object *o;
		char err[256];
		int bad;

		if (idnd_sig_revoked(label, sqlite3_column_int64(st, 0)))
			continue;
		o = json_tokener_parse((const char *)sqlite3_column_text(st, 1));
		bad = !o || idnd_cap_from_json(o, out, err, sizeof(err)) || out->label != label;
		json_object_put(o);
		if (bad)
			continue;
		recheck(out, (const char *)sqlite3_column_text(st, 2));
		rc = 0;
		break;
	}
	sqlite3_finalize(st);
	return rc;
}

/*
 * The registered version of label is revoked: roll back to the previous
 * one, or withdraw the capability. *now: the version serving after, 0 for
 * none. Store, registry, etcd mirror; the caller compiles.
 */
static int roll_back(uint32_t label, uint32_t *now)
{
	struct d_cap *c = idnd_cap_find(label), prev;
	uint32_t gone = c->version;

	*now = 0;
	if (!previous(label, gone, &prev)) {
		strcpy(prev.owner, c->owner);	/* the label keeps its owner */
		if (idnd_store_cap(&prev))
			return -EIO;
		idnd_cap_put(&prev);
		idnd_dist_cap(idnd_cap_find(label));
		/* the nodes that hold it load the previous artifact */
		idnd_orders_reload(label);
		*now = prev.version;
		pr_warn("SIG: capability %u/%u version %u revoked: version %u (%s) serves "
			"instead\n", label >> 8, label & 0xff, gone, prev.version,
			prev.sig ? "signed" : "unsigned");
		return 0;
	}
	if (idnd_store_cap_del(label))
		return -EIO;
	idnd_orders_evict_all(label);
	idnd_cap_del(label);
	idnd_dist_cap_del(label);
	idnd_dist_place();
	pr_warn("SIG: capability %u/%u version %u revoked: no earlier version that is not "
		"revoked, the capability leaves the registry\n", label >> 8, label & 0xff, gone);
	return 0;
}

static int exec_sql(const char *sql)
{
	return sqlite3_exec(db(), sql, NULL, NULL, NULL) == SQLITE_OK ? 0 : -EIO;
}

int idnd_sig_load(void)
{
	sqlite3_stmt *st;

	if (!db())
		return 0;
	if (exec_sql("CREATE TABLE IF NOT EXISTS publishers(name TEXT PRIMARY KEY,"
		     " pubkey TEXT NOT NULL);"
		     "CREATE TABLE IF NOT EXISTS cap_versions(cap INTEGER, version INTEGER,"
		     " body TEXT NOT NULL, manifest TEXT, PRIMARY KEY(cap, version));"
		     "CREATE TABLE IF NOT EXISTS revocations(cap INTEGER, version INTEGER,"
		     " at INTEGER, PRIMARY KEY(cap, version));"))
		goto bad;
	if (sqlite3_prepare_v2(db(), "SELECT name, pubkey FROM publishers", -1, &st, NULL) !=
	    SQLITE_OK)
		goto bad;
	while (sqlite3_step(st) == SQLITE_ROW && n_pubs < SIG_MAX_PUBLISHERS) {
		struct pub *p = &pubs[n_pubs];
		const char *name = (const char *)sqlite3_column_text(st, 0);

		if (!name || !capsig_name_ok(name) ||
		    capsig_unhex(p->pk, 32, (const char *)sqlite3_column_text(st, 1)))
			continue;	/* not written by this code: skipped */
		strcpy(p->name, name);
		n_pubs++;
	}
	sqlite3_finalize(st);
	if (sqlite3_prepare_v2(db(), "SELECT cap, version FROM revocations", -1, &st, NULL) !=
	    SQLITE_OK)
		goto bad;
	while (sqlite3_step(st) == SQLITE_ROW) {
		struct capsig_ref *r = realloc(revs, (n_revs + 1) * sizeof(*r));

		if (!r) {
			sqlite3_finalize(st);
			return -ENOMEM;
		}
		revs = r;
		revs[n_revs++] = (struct capsig_ref){ sqlite3_column_int64(st, 0),
						       sqlite3_column_int64(st, 1) };
	}
	sqlite3_finalize(st);
	/* signatures of the registered versions, checked again; revocations applied */
	for (int i = 0; i < D.n_caps; i++) {
		struct d_cap *c = &D.caps[i];
		char *m;
		uint32_t now;

		if (idnd_sig_revoked(c->label, c->version)) {
			uint32_t label = c->label;

			if (roll_back(label, &now))
				goto bad;
			i = -1;	/* the registry changed: again from the start */
			continue;
		}
		m = stored_manifest(c->label, c->version);
		recheck(c, m);
		free(m);
	}
	pr_info("SIG: %d trusted publisher%s, %d revocation%s\n", n_pubs, n_pubs == 1 ? "" : "s",
		n_revs, n_revs == 1 ? "" : "s");
	return 0;
bad:
	pr_warn("SIG: store: %s\n", sqlite3_errmsg(db()));
	return -EIO;
}

/* ---- takeover in distributed mode (dist.c) -------------------------------- */

/* names of the publishers the domain has (pub/ keys seen by idnd_sig_import) */
static char (*imp_pubs)[64];
static int n_imp_pubs;
static int n_imp_revs;	/* rev/ keys imported */

static int64_t jint64(json_object *o, const char *k)
{
	json_object *v;

	return json_object_object_get_ex(o, k, &v) && json_object_is_type(v, json_type_int) ?
	       json_object_get_int64(v) : -1;
}

static const char *jstring(json_object *o, const char *k)
{
	json_object *v;

	return json_object_object_get_ex(o, k, &v) && json_object_is_type(v, json_type_string) ?
	       json_object_get_string(v) : NULL;
}

void idnd_sig_import(const char *rest, const char *val)
{
	json_object *o = json_tokener_parse(val);
	int64_t cap = jint64(o, "cap"), ver = jint64(o, "version");
	const char *name = jstring(o, "name"), *hex = jstring(o, "pubkey");
	uint8_t pk[32];
	bool bad = !o;

	if (!bad && !strncmp(rest, "pub/", 4)) {
		void *p;

		bad = !name || strcmp(name, rest + 4) || !capsig_name_ok(name) || !hex ||
		      capsig_unhex(pk, 32, hex) || n_imp_pubs >= SIG_MAX_PUBLISHERS;
		if (!bad && (p = realloc(imp_pubs, (n_imp_pubs + 1) * sizeof(*imp_pubs)))) {
			imp_pubs = p;
			snprintf(imp_pubs[n_imp_pubs++], 64, "%s", name);
			bad = pub_row(name, hex) != 0;
		}
	} else if (!bad && !strncmp(rest, "rev/", 4)) {
		sqlite3_stmt *st;

		bad = cap < 0 || cap > UINT32_MAX || ver < 0 || ver > UINT32_MAX;
		if (!bad && sqlite3_prepare_v2(db(), "INSERT OR IGNORE INTO revocations "
					       "VALUES(?1, ?2, ?3)", -1, &st, NULL) == SQLITE_OK) {
			sqlite3_bind_int64(st, 1, cap);
			sqlite3_bind_int64(st, 2, ver);
			sqlite3_bind_int64(st, 3, jint64(o, "at"));
			bad = sqlite3_step(st) != SQLITE_DONE;
			sqlite3_finalize(st);
			n_imp_revs += !bad;
		}
	} else if (!bad && !strncmp(rest, "ver/", 4)) {
		const char *body = jstring(o, "body"), *man = jstring(o, "manifest");
		sqlite3_stmt *st;

		bad = cap < 0 || cap > UINT32_MAX || ver < 0 || ver > UINT32_MAX || !body;
		if (!bad && sqlite3_prepare_v2(db(), "INSERT OR REPLACE INTO cap_versions "
					       "VALUES(?1, ?2, ?3, ?4)", -1, &st, NULL) == SQLITE_OK) {
			sqlite3_bind_int64(st, 1, cap);
			sqlite3_bind_int64(st, 2, ver);
			sqlite3_bind_text(st, 3, body, -1, SQLITE_TRANSIENT);
			if (man)
				sqlite3_bind_text(st, 4, man, -1, SQLITE_TRANSIENT);
			else
				sqlite3_bind_null(st, 4);
			bad = sqlite3_step(st) != SQLITE_DONE;
			sqlite3_finalize(st);
		}
	} else {
		bad = true;
	}
	if (bad)
		pr_warn("SIG: etcd sig/%s: not a publisher, version or revocation this code "
			"writes: skipped\n", rest);
	json_object_put(o);
}

int idnd_sig_import_done(bool seeded)
{
	sqlite3_stmt *st;
	int e = 0;

	if (!db())
		return 0;
	if (seeded) {
		/* the domain's publishers: ours that it no longer has go */
		for (int i = 0; i < n_pubs; i++) {
			bool have = false;

			for (int j = 0; j < n_imp_pubs && !have; j++)
				have = !strcmp(imp_pubs[j], pubs[i].name);
			if (!have && pub_row(pubs[i].name, NULL))
				e = -EIO;
		}
	}
	free(imp_pubs);
	imp_pubs = NULL;
	n_imp_pubs = 0;
	/* in memory again from the tables: publishers, revocations, signatures */
	n_pubs = 0;
	free(revs);
	revs = NULL;
	n_revs = 0;
	if (idnd_sig_load())
		e = -EIO;
	/*
	 * the domain gets what it lacks: everything at its first leader, else
	 * our revocations it did not have (a union: a revocation is never
	 * undone; after the import ours hold the domain's, so the same count
	 * means the same set)
	 */
	if (!seeded) {
		for (int i = 0; i < n_pubs; i++) {
			char h[65];

			capsig_hex(h, pubs[i].pk, 32);
			mirror_pub(pubs[i].name, h);
		}
		if (sqlite3_prepare_v2(db(), "SELECT cap, version, body, manifest FROM "
				       "cap_versions", -1, &st, NULL) == SQLITE_OK) {
			while (sqlite3_step(st) == SQLITE_ROW)
				mirror_ver(sqlite3_column_int64(st, 0), sqlite3_column_int64(st, 1),
					   (const char *)sqlite3_column_text(st, 2),
					   (const char *)sqlite3_column_text(st, 3));
			sqlite3_finalize(st);
		}
	}
	if ((!seeded || n_revs != n_imp_revs) &&
	    sqlite3_prepare_v2(db(), "SELECT cap, version, at FROM revocations", -1, &st,
			       NULL) == SQLITE_OK) {
		while (sqlite3_step(st) == SQLITE_ROW)
			mirror_rev(sqlite3_column_int64(st, 0), sqlite3_column_int64(st, 1),
				   sqlite3_column_int64(st, 2));
		sqlite3_finalize(st);
	}
	n_imp_revs = 0;
	idnd_dist_sig("seeded", "1");
	return e ? idn_err(e, "the store's signed-metadata tables") : 0;
}

/* ---- API ------------------------------------------------------------------ */

static json_object *jerr(unsigned int *code, unsigned int c, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static json_object *jerr(unsigned int *code, unsigned int c, const char *fmt, ...)
{
	json_object *o = json_object_new_object();
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	json_object_object_add(o, "error", json_object_new_string(msg));
	*code = c;
	return o;
}

/* every registered version's signature again (the trusted keys changed) */
static void reverify_all(void)
{
	bool changed = false;

	for (int i = 0; i < D.n_caps; i++) {
		struct d_cap *c = &D.caps[i];
		bool was = c->sig;
		char *m = stored_manifest(c->label, c->version);

		recheck(c, m);
		free(m);
		changed |= was != c->sig;
	}
	if (changed && (D.have_maps || (D.etcd && D.leader)))
		idnd_compile();
}

static json_object *pub_json(const struct pub *p)
{
	json_object *o = json_object_new_object();
	char h[65];

	capsig_hex(h, p->pk, 32);
	json_object_object_add(o, "name", json_object_new_string(p->name));
	json_object_object_add(o, "pubkey", json_object_new_string(h));
	return o;
}

static json_object *pub_post(json_object *b, unsigned int *code)
{
	json_object *v;
	const char *name, *hex;
	struct pub p = {}, *old;

	json_object_object_foreach(b, key, val) {
		(void)val;
		if (strcmp(key, "name") && strcmp(key, "pubkey"))
			return jerr(code, 400, "publisher: unknown field \"%.64s\"", key);
	}
	if (!json_object_object_get_ex(b, "name", &v) || !json_object_is_type(v, json_type_string) ||
	    !capsig_name_ok(name = json_object_get_string(v)))
		return jerr(code, 400, "field \"name\": 1..63 of [A-Za-z0-9._-] required");
	if (!json_object_object_get_ex(b, "pubkey", &v) || !json_object_is_type(v, json_type_string) ||
	    capsig_unhex(p.pk, 32, hex = json_object_get_string(v)))
		return jerr(code, 400, "field \"pubkey\": an Ed25519 public key, 64 lowercase "
			     "hex digits, required");
	strcpy(p.name, name);
	old = (struct pub *)pub_find(name);
	if (!old && n_pubs >= SIG_MAX_PUBLISHERS)
		return jerr(code, 507, "at most %d trusted publishers", SIG_MAX_PUBLISHERS);
	if (pub_row(name, hex))
		return jerr(code, 500, "store: %s", sqlite3_errmsg(db()));
	*code = old ? 200 : 201;
	if (old) {
		*old = p;
	} else {
		old = &pubs[n_pubs++];
		*old = p;
	}
	pr_warn("SIG: publisher \"%s\" trusted with key %.16s...\n", name, hex);
	mirror_pub(name, hex);
	reverify_all();
	return pub_json(old);
}

static json_object *pub_del(const char *name, unsigned int *code)
{
	struct pub *p = (struct pub *)pub_find(name);

	if (!p)
		return jerr(code, 404, "no trusted publisher \"%.64s\"", name);
	if (pub_row(name, NULL))
		return jerr(code, 500, "store: %s", sqlite3_errmsg(db()));
	pr_warn("SIG: publisher \"%s\" no longer trusted\n", name);
	mirror_pub(name, NULL);
	*p = pubs[--n_pubs];
	reverify_all();	/* its versions are unsigned now */
	*code = 200;
	return json_object_new_object();
}

/* label known: registered or in the history */
static bool known(uint32_t label)
{
	sqlite3_stmt *st;
	bool k = idnd_cap_find(label);

	if (!k && sqlite3_prepare_v2(db(), "SELECT 1 FROM cap_versions WHERE cap = ?1", -1, &st,
				     NULL) == SQLITE_OK) {
		sqlite3_bind_int64(st, 1, label);
		k = sqlite3_step(st) == SQLITE_ROW;
		sqlite3_finalize(st);
	}
	return k;
}

static json_object *revoke(uint32_t label, json_object *b, unsigned int *code)
{
	struct d_cap *c = idnd_cap_find(label);
	struct capsig_ref *r;
	json_object *v, *o;
	sqlite3_stmt *st;
	uint32_t now = 0;
	int64_t ver;
	int rc;
	double t0 = idnd_now();

	json_object_object_foreach(b, key, val) {
		(void)val;
		if (strcmp(key, "version"))
			return jerr(code, 400, "revoke: unknown field \"%.64s\"", key);
	}
	if (!json_object_object_get_ex(b, "version", &v) || !json_object_is_type(v, json_type_int) ||
	    (ver = json_object_get_int64(v)) < 0 || ver > UINT32_MAX)
		return jerr(code, 400, "field \"version\": integer 0..4294967295 required");
	if (!known(label))
		return jerr(code, 404, "no capability " IDN_CAP_FMT, IDN_CAP_ARG(label));
	o = json_object_new_object();
	json_object_object_add(o, "cap", json_object_new_int64(label));
	json_object_object_add(o, "version", json_object_new_int64(ver));
	if (idnd_sig_revoked(label, ver)) {
		json_object_object_add(o, "already", json_object_new_boolean(true));
		json_object_object_add(o, "active", c ? json_object_new_int64(c->version) : NULL);
		*code = 200;
		return o;
	}
	if (n_revs >= SIG_MAX_REVOCATIONS) {
		json_object_put(o);
		return jerr(code, 507, "at most %d revocations", SIG_MAX_REVOCATIONS);
	}
	r = realloc(revs, (n_revs + 1) * sizeof(*r));
	if (!r) {
		json_object_put(o);
		return jerr(code, 500, "out of memory");
	}
	revs = r;
	/* durable first: a crash after this is completed by the next start */
	if (sqlite3_prepare_v2(db(), "INSERT OR REPLACE INTO revocations VALUES(?1, ?2, ?3)", -1,
			       &st, NULL) != SQLITE_OK) {
		json_object_put(o);
		return jerr(code, 500, "store: %s", sqlite3_errmsg(db()));
	}
	sqlite3_bind_int64(st, 1, label);
	sqlite3_bind_int64(st, 2, ver);
	sqlite3_bind_int64(st, 3, (int64_t)time(NULL));
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE) {
		json_object_put(o);
		return jerr(code, 500, "store: %s", sqlite3_errmsg(db()));
	}
	revs[n_revs++] = (struct capsig_ref){ label, ver };
	mirror_rev(label, ver, (int64_t)time(NULL));
	if (c && c->version == ver) {
		if (roll_back(label, &now)) {
			json_object_put(o);
			return jerr(code, 500, "revoked, but the rollback failed: store: %s",
				     sqlite3_errmsg(db()));
		}
		if ((D.have_maps || (D.etcd && D.leader)) && idnd_compile()) {
			json_object_put(o);
			return jerr(code, 500, "revoked, but the plan commit failed: %s",
				     idn_errmsg());
		}
	} else {
		pr_warn("SIG: capability %u/%u version %u revoked (not the registered version)\n",
			label >> 8, label & 0xff, (uint32_t)ver);
		now = c ? c->version : 0;
	}
	json_object_object_add(o, "active", now ? json_object_new_int64(now) : NULL);
	json_object_object_add(o, "generation", json_object_new_int64(D.generation));
	json_object_object_add(o, "ms", idnd_jnum((idnd_now() - t0) * 1000));
	*code = 200;
	return o;
}

static json_object *versions(uint32_t label, unsigned int *code)
{
	const struct d_cap *c = idnd_cap_find(label);
	json_object *a = json_object_new_array();
	sqlite3_stmt *st;

	if (!known(label)) {
		json_object_put(a);
		return jerr(code, 404, "no capability " IDN_CAP_FMT, IDN_CAP_ARG(label));
	}
	if (sqlite3_prepare_v2(db(), "SELECT version, manifest FROM cap_versions WHERE cap = ?1 "
			       "ORDER BY version", -1, &st, NULL) != SQLITE_OK) {
		json_object_put(a);
		return jerr(code, 500, "store: %s", sqlite3_errmsg(db()));
	}
	sqlite3_bind_int64(st, 1, label);
	while (sqlite3_step(st) == SQLITE_ROW) {
		uint32_t ver = sqlite3_column_int64(st, 0);
		json_object *e = json_object_new_object(), *m = NULL, *p = NULL;

		if (sqlite3_column_text(st, 1))
			m = json_tokener_parse((const char *)sqlite3_column_text(st, 1));
		json_object_object_add(e, "version", json_object_new_int64(ver));
		if (m && json_object_object_get_ex(m, "publisher", &p))
			json_object_get(p);
		json_object_object_add(e, "publisher", p);
		json_object_object_add(e, "active", json_object_new_boolean(c && c->version == ver));
		json_object_object_add(e, "signed", json_object_new_boolean(
			c && c->version == ver ? c->sig : m != NULL));
		json_object_object_add(e, "revoked",
				       json_object_new_boolean(idnd_sig_revoked(label, ver)));
		json_object_put(m);
		json_object_array_add(a, e);
	}
	sqlite3_finalize(st);
	*code = 200;
	return a;
}

bool idnd_sig_path(const char *url)
{
	const char *p;

	if (!strcmp(url, "/v1/publishers") || !strncmp(url, "/v1/publishers/", 15) ||
	    !strcmp(url, "/v1/revocations"))
		return true;
	if (strncmp(url, "/v1/caps/", 9))
		return false;
	p = strchr(url + 9, '/');
	return p && (!strcmp(p, "/revoke") || !strcmp(p, "/versions"));
}

static bool label_of(const char *url, uint32_t *label, const char **rest)
{
	unsigned long v;
	char *end;

	if (url[9] < '0' || url[9] > '9')
		return false;
	errno = 0;
	v = strtoul(url + 9, &end, 10);
	if (errno || v > UINT32_MAX || *end != '/')
		return false;
	*label = v;
	*rest = end;
	return true;
}

json_object *idnd_sig_api(const char *method, const char *url, json_object *body,
			  unsigned int *code)
{
	bool get = !strcmp(method, "GET"), post = !strcmp(method, "POST"),
	     del = !strcmp(method, "DELETE");
	const char *rest;
	uint32_t label;

	if (!strcmp(url, "/v1/publishers")) {
		if (post)
			return pub_post(body, code);
		if (get) {
			json_object *a = json_object_new_array();

			for (int i = 0; i < n_pubs; i++)
				json_object_array_add(a, pub_json(&pubs[i]));
			*code = 200;
			return a;
		}
	} else if (!strncmp(url, "/v1/publishers/", 15)) {
		if (del)
			return pub_del(url + 15, code);
		if (get) {
			const struct pub *p = pub_find(url + 15);

			if (!p)
				return jerr(code, 404, "no trusted publisher \"%.64s\"", url + 15);
			*code = 200;
			return pub_json(p);
		}
	} else if (!strcmp(url, "/v1/revocations")) {
		if (get) {
			json_object *a = json_object_new_array();

			for (int i = 0; i < n_revs; i++) {
				json_object *e = json_object_new_object();

				json_object_object_add(e, "cap", json_object_new_int64(revs[i].cap));
				json_object_object_add(e, "version",
						       json_object_new_int64(revs[i].version));
				json_object_array_add(a, e);
			}
			*code = 200;
			return a;
		}
	} else if (label_of(url, &label, &rest)) {
		if (!strcmp(rest, "/revoke") && post)
			return revoke(label, body, code);
		if (!strcmp(rest, "/versions") && get)
			return versions(label, code);
	} else {
		return jerr(code, 404, "no such endpoint: %s", url);
	}
	return jerr(code, 405, "method %s not allowed on %s", method, url);
}

json_object *idnd_sig_status(void)
{
	json_object *o = json_object_new_object();
	int n = 0;

	for (int i = 0; i < D.n_caps; i++)
		n += D.caps[i].sig;
	json_object_object_add(o, "publishers", json_object_new_int(n_pubs));
	json_object_object_add(o, "signed_caps", json_object_new_int(n));
	json_object_object_add(o, "revocations", json_object_new_int(n_revs));
	json_object_object_add(o, "refused", json_object_new_int64(refused));
	return o;
}
