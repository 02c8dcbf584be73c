// SPDX-License-Identifier: GPL-2.0
/*
 * store.c - SQLite persistence of the controller (embedded default).
 *
 * Tables: caps(label, body), nodes(id, body), demand(cap, region, rps),
 * placement(cap, node), meta(key, value), policies(id, body). Bodies
 * are the canonical JSON of the validated object and are read back through the same strict
 * parser; a capability's and a policy class's body also carry "owner", the
 * principal that created it (per-principal quotas; none in bodies written
 * before owners were recorded). WAL with synchronous=FULL: a write acknowledged to a client
 * survives kill -9 and power loss; a placement is replaced in one
 * transaction. Live node state (heartbeats) is not stored: after a
 * restart every node gets one heartbeat timeout to report again.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sqlite3.h>

#include "idnd.h"

static sqlite3 *db;
static char store_err[256];

void *idnd_store_handle(void)
{
	return db;
}

bool idnd_store_is_open(void)
{
	return db != NULL;
}

const char *idnd_store_err(void)
{
	return store_err;
}

static int fail(const char *what)
{
	snprintf(store_err, sizeof(store_err), "%s: %s", what, db ? sqlite3_errmsg(db) : "no db");
	return -EIO;
}

static int exec(const char *sql)
{
	char *msg = NULL;

	if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) {
		snprintf(store_err, sizeof(store_err), "%s", msg ? msg : "sqlite error");
		sqlite3_free(msg);
		return -EIO;
	}
	return 0;
}

int idnd_store_open(const char *path)
{
	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
			    SQLITE_OPEN_FULLMUTEX, NULL) != SQLITE_OK)
		return fail("open");
	sqlite3_busy_timeout(db, 2000);
	return exec("PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;"
		    "CREATE TABLE IF NOT EXISTS caps(label INTEGER PRIMARY KEY, body TEXT NOT NULL);"
		    "CREATE TABLE IF NOT EXISTS nodes(id INTEGER PRIMARY KEY, body TEXT NOT NULL);"
		    "CREATE TABLE IF NOT EXISTS demand(cap INTEGER, region INTEGER, rps REAL,"
		    " PRIMARY KEY(cap, region));"
		    "CREATE TABLE IF NOT EXISTS placement(cap INTEGER, node INTEGER,"
		    " PRIMARY KEY(cap, node));"
		    "CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value INTEGER);"
		    "CREATE TABLE IF NOT EXISTS policies(id INTEGER PRIMARY KEY, body TEXT NOT NULL);");
}

void idnd_store_close(void)
{
	if (db)
		sqlite3_close(db);
	db = NULL;
}

static int put_body(const char *sql, int64_t key, json_object *o)
{
	sqlite3_stmt *st;
	int rc;

	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
		return json_object_put(o), fail("prepare");
	sqlite3_bind_int64(st, 1, key);
	sqlite3_bind_text(st, 2, json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN), -1,
			  SQLITE_TRANSIENT);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	json_object_put(o);
	return rc == SQLITE_DONE ? 0 : fail("write");
}

static int del_key(const char *sql, int64_t key)
{
	sqlite3_stmt *st;
	int rc;

	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
		return fail("prepare");
	sqlite3_bind_int64(st, 1, key);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : fail("delete");
}

int idnd_store_cap(const struct d_cap *c)
{
	return put_body("INSERT OR REPLACE INTO caps VALUES(?1, ?2)", c->label,
			idnd_cap_stored_json(c));
}

int idnd_store_cap_del(uint32_t label)
{
	int e = exec("BEGIN IMMEDIATE");

	if (e)
		return e;
	if (del_key("DELETE FROM caps WHERE label = ?1", label) ||
	    del_key("DELETE FROM demand WHERE cap = ?1", label) ||
	    del_key("DELETE FROM placement WHERE cap = ?1", label)) {
		exec("ROLLBACK");
		return -EIO;
	}
	return exec("COMMIT");
}

int idnd_store_node(const struct d_node *n)
{
	return put_body("INSERT OR REPLACE INTO nodes VALUES(?1, ?2)", n->id,
			idnd_node_to_json(n, false));
}

int idnd_store_node_del(uint32_t id)
{
	int e = exec("BEGIN IMMEDIATE");

	if (e)
		return e;
	if (del_key("DELETE FROM nodes WHERE id = ?1", id) ||
	    del_key("DELETE FROM placement WHERE node = ?1", id)) {
		exec("ROLLBACK");
		return -EIO;
	}
	return exec("COMMIT");
}

int idnd_store_demand(uint32_t cap, int region, double rps)
{
	sqlite3_stmt *st;
	int rc;

	if (sqlite3_prepare_v2(db, "INSERT OR REPLACE INTO demand VALUES(?1, ?2, ?3)", -1, &st,
			       NULL) != SQLITE_OK)
		return fail("prepare");
	sqlite3_bind_int64(st, 1, cap);
	sqlite3_bind_int(st, 2, region);
	sqlite3_bind_double(st, 3, rps);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : fail("write demand");
}

int idnd_store_place(void)
{
	sqlite3_stmt *st;
	int e = exec("BEGIN IMMEDIATE");

	if (e)
		return e;
	if (exec("DELETE FROM placement"))
		goto bad;
	if (sqlite3_prepare_v2(db, "INSERT INTO placement VALUES(?1, ?2)", -1, &st, NULL) !=
	    SQLITE_OK)
		goto bad;
	for (int i = 0; i < D.n_place; i++) {
		sqlite3_bind_int64(st, 1, D.place[i].cap);
		sqlite3_bind_int64(st, 2, D.place[i].node);
		if (sqlite3_step(st) != SQLITE_DONE) {
			sqlite3_finalize(st);
			goto bad;
		}
		sqlite3_reset(st);
	}
	sqlite3_finalize(st);
	return exec("COMMIT");
bad:
	fail("write placement");
	exec("ROLLBACK");
	return -EIO;
}

int idnd_store_policy(const struct d_policy *p)
{
	return put_body("INSERT OR REPLACE INTO policies VALUES(?1, ?2)", p->id,
			idnd_policy_to_json(p));
}

int idnd_store_policy_del(uint32_t id)
{
	return del_key("DELETE FROM policies WHERE id = ?1", id);
}

int idnd_store_gen(uint32_t gen)
{
	char sql[96];

	snprintf(sql, sizeof(sql), "INSERT OR REPLACE INTO meta VALUES('generation', %u)", gen);
	return exec(sql);
}

int idnd_store_load(void)
{
	sqlite3_stmt *st;
	char err[256];
	int rc;

	if (sqlite3_prepare_v2(db, "SELECT body FROM caps", -1, &st, NULL) != SQLITE_OK)
		return fail("read caps");
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		json_object *o = json_tokener_parse((const char *)sqlite3_column_text(st, 0));
		struct d_cap c;

		if (!o || idnd_cap_from_stored(o, &c, err, sizeof(err)) || idnd_cap_put(&c)) {
			json_object_put(o);
			sqlite3_finalize(st);
			snprintf(store_err, sizeof(store_err), "stored capability invalid");
			return -EIO;
		}
		json_object_put(o);
	}
	sqlite3_finalize(st);
	if (sqlite3_prepare_v2(db, "SELECT body FROM nodes", -1, &st, NULL) != SQLITE_OK)
		return fail("read nodes");
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		json_object *o = json_tokener_parse((const char *)sqlite3_column_text(st, 0));
		struct d_node n;

		if (!o || idnd_node_from_json(o, &n, err, sizeof(err))) {
			json_object_put(o);
			sqlite3_finalize(st);
			snprintf(store_err, sizeof(store_err), "stored node invalid");
			return -EIO;
		}
		json_object_put(o);
		n.up = true;
		n.last_hb = idnd_now();	/* one timeout of grace to report again */
		D.nodes[n.id] = n;
	}
	sqlite3_finalize(st);
	if (sqlite3_prepare_v2(db, "SELECT cap, region, rps FROM demand", -1, &st, NULL) !=
	    SQLITE_OK)
		return fail("read demand");
	while (sqlite3_step(st) == SQLITE_ROW) {
		struct d_cap *c = idnd_cap_find(sqlite3_column_int64(st, 0));
		int r = sqlite3_column_int(st, 1);

		if (c && r >= 0 && r < IDND_REGIONS)
			c->demand[r] = sqlite3_column_double(st, 2);
	}
	sqlite3_finalize(st);
	if (sqlite3_prepare_v2(db, "SELECT body FROM policies", -1, &st, NULL) != SQLITE_OK)
		return fail("read policies");
	while (sqlite3_step(st) == SQLITE_ROW) {
		json_object *o = json_tokener_parse((const char *)sqlite3_column_text(st, 0));
		struct d_policy pol;

		if (!o || idnd_policy_from_stored(o, &pol, err, sizeof(err))) {
			json_object_put(o);
			sqlite3_finalize(st);
			snprintf(store_err, sizeof(store_err), "stored policy invalid");
			return -EIO;
		}
		json_object_put(o);
		idnd_policy_put(&pol);
	}
	sqlite3_finalize(st);
	if (sqlite3_prepare_v2(db, "SELECT cap, node FROM placement", -1, &st, NULL) != SQLITE_OK)
		return fail("read placement");
	while (sqlite3_step(st) == SQLITE_ROW) {
		struct d_place *p = realloc(D.place, (D.n_place + 1) * sizeof(*p));

		if (!p) {
			sqlite3_finalize(st);
			return -ENOMEM;
		}
		D.place = p;
		D.place[D.n_place++] = (struct d_place){ sqlite3_column_int64(st, 0),
							 sqlite3_column_int64(st, 1) };
	}
	sqlite3_finalize(st);
	return 0;
}
