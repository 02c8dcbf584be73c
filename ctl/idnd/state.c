// SPDX-License-Identifier: GPL-2.0
/*
 * state.c - the State manager's record of where state lives (DESIGN 3.5):
 * the state summary each agent sends in its heartbeat ("state": policy,
 * cache size, state descriptors S, affinity self-check counters), validated
 * strictly, kept per node, stored in SQLite (table node_state, created and
 * read here on first use) and served by GET /v1/state and
 * GET /v1/nodes/ID/state (docs/controller.md, docs/agent.md "State").
 *
 * A summary is rebuilt from the validated values (canonical JSON), so what
 * is stored and served is exactly what passed validation. It is written to
 * the store when it changed: the first report at once, then at most once a
 * second per node (idnd_state_tick, from the broker loop, writes what is
 * left), so a kill -9 loses at most the last second of reports, which the
 * next heartbeat brings back; a clean stop writes everything.
 * Called with D.lock held, like the rest of the API.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sqlite3.h>

#include "idnd.h"
#include "prom.h"

struct nstate {
	json_object *o;		/* canonical summary, NULL = none */
	char *text;		/* what was last written to the store */
	double updated;		/* wall clock of the last report, seconds */
	double written;		/* monotonic time of the last store write */
	bool dirty;		/* o differs from text: the tick writes it */
};

static struct nstate S[IDN_MAX_NODES];
static bool loaded;
static uint64_t idnd_state_reports, idnd_state_rejected, idnd_state_clamped;

static double wall(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* ---- validation --------------------------------------------------------- */

#define FAIL(...) do { snprintf(err, errlen, __VA_ARGS__); goto bad; } while (0)

static bool is_hex16(const char *s)
{
	if (strlen(s) != 16)
		return false;
	for (; *s; s++)
		if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'f')))
			return false;
	return true;
}

static bool is_name(const char *s)
{
	size_t n = strlen(s);

	if (!n || n > 63)
		return false;
	for (; *s; s++)
		if ((unsigned char)*s < 0x21 || (unsigned char)*s > 0x7e)
			return false;
	return true;
}

static int get_int(json_object *v, const char *k, int64_t lo, int64_t hi, int64_t *out,
		   char *err, size_t errlen)
{
	int64_t x;

	if (!json_object_is_type(v, json_type_int))
		return snprintf(err, errlen, "field \"%s\": integer %lld..%lld expected", k,
				(long long)lo, (long long)hi), -EINVAL;
	x = json_object_get_int64(v);
	if (x < lo || x > hi)
		return snprintf(err, errlen, "field \"%s\": integer %lld..%lld expected", k,
				(long long)lo, (long long)hi), -EINVAL;
	*out = x;
	return 0;
}

static const char *const scopes[] = { "public", "tenant", "session", "hardware", NULL };

static int in_list(const char *s, const char *const *l)
{
	for (int i = 0; l[i]; i++)
		if (!strcmp(s, l[i]))
			return i;
	return -1;
}

/* one descriptor S -> canonical copy */
static json_object *desc_parse(json_object *in, int idx, char *err, size_t errlen)
{
	static const char *const ints[] = { "tenant", "cap", "blocks", "tokens", "size", "hits",
					    "value_us", "migration_us", NULL };
	static const int64_t lo[] = { 0, 0, 0, 0, 0, 0, 0, -1 };
	static const int64_t hi[] = { 65535, UINT32_MAX, 1LL << 40, 1LL << 50, 1LL << 56,
				      1LL << 50, 1LL << 56, 1LL << 50 };
	static const char *const strs[] = { "type", "compat", "scope", "session", "root", "name",
					    "token", NULL };
	json_object *o = json_object_new_object(), *v;
	const char *type, *scope;
	char pre[32];
	int kv, sc;

	snprintf(pre, sizeof(pre), "state.descriptors[%d]", idx);
	if (!json_object_is_type(in, json_type_object))
		FAIL("%s: object expected", pre);
	json_object_object_foreach(in, key, val) {
		int si = in_list(key, strs), ii = in_list(key, ints);

		if (si >= 0) {
			if (!json_object_is_type(val, json_type_string))
				FAIL("%s.%s: string expected", pre, key);
			continue;
		}
		if (ii >= 0) {
			int64_t x;

			if (get_int(val, key, lo[ii], hi[ii], &x, err, errlen))
				goto bad_pre;
			continue;
		}
		if (!strcmp(key, "reuse")) {
			double r;

			if (!json_object_is_type(val, json_type_double) &&
			    !json_object_is_type(val, json_type_int))
				FAIL("%s.reuse: number 0..1 expected", pre);
			r = json_object_get_double(val);
			if (!(r >= 0 && r <= 1e6))
				FAIL("%s.reuse: number 0..1 expected", pre);
			continue;
		}
		FAIL("%s: unknown field \"%.64s\"", pre, key);
	}
	if (!json_object_object_get_ex(in, "type", &v))
		FAIL("%s: field \"type\" required", pre);
	type = json_object_get_string(v);
	kv = !strcmp(type, "kv_prefix");
	if (!kv && strcmp(type, "model"))
		FAIL("%s.type: \"kv_prefix\" or \"model\" expected", pre);
	if (!json_object_object_get_ex(in, "compat", &v) || !is_hex16(json_object_get_string(v)))
		FAIL("%s.compat: 16 lowercase hex digits required", pre);
	if (!json_object_object_get_ex(in, "scope", &v) ||
	    (sc = in_list(scope = json_object_get_string(v), scopes)) < 0)
		FAIL("%s.scope: public, tenant, session or hardware required", pre);
	if (!json_object_object_get_ex(in, "size", &v))
		FAIL("%s: field \"size\" required", pre);
	if (!json_object_object_get_ex(in, "migration_us", &v))
		FAIL("%s: field \"migration_us\" required", pre);
	if ((sc == 3) != (json_object_get_int64(v) == -1))
		FAIL("%s.migration_us: -1 (never) exactly for hardware-bound state", pre);
	if (json_object_object_get_ex(in, "session", &v) != (sc == 2))
		FAIL("%s.session: required for session scope, only there", pre);
	if (sc == 2 && !is_hex16(json_object_get_string(v)))
		FAIL("%s.session: 16 lowercase hex digits required", pre);
	if ((sc == 1 || sc == 2) && (!json_object_object_get_ex(in, "tenant", &v) ||
				     !json_object_get_int64(v)))
		FAIL("%s.tenant: a tenant (1..65535) required for %s scope", pre, scope);
	if (kv) {
		if (!json_object_object_get_ex(in, "root", &v) ||
		    !is_hex16(json_object_get_string(v)))
			FAIL("%s.root: 16 lowercase hex digits required for kv_prefix", pre);
		if (!json_object_object_get_ex(in, "blocks", &v))
			FAIL("%s: field \"blocks\" required for kv_prefix", pre);
		if (json_object_object_get_ex(in, "name", &v) ||
		    json_object_object_get_ex(in, "cap", &v))
			FAIL("%s: \"name\" and \"cap\" belong to model descriptors", pre);
		if (json_object_object_get_ex(in, "token", &v) &&
		    (!is_hex16(json_object_get_string(v)) ||
		     !strcmp(json_object_get_string(v), "0000000000000000")))
			FAIL("%s.token: 16 lowercase hex digits, not 0, expected", pre);
	} else {
		if (!json_object_object_get_ex(in, "name", &v) || !is_name(json_object_get_string(v)))
			FAIL("%s.name: 1..63 printable characters required for model", pre);
		if (json_object_object_get_ex(in, "root", &v) ||
		    json_object_object_get_ex(in, "blocks", &v) ||
		    json_object_object_get_ex(in, "token", &v))
			FAIL("%s: \"root\", \"blocks\" and \"token\" belong to kv_prefix descriptors",
			     pre);
	}
	/* canonical: the validated fields, in a fixed order */
	for (int i = 0; strs[i]; i++)
		if (json_object_object_get_ex(in, strs[i], &v))
			json_object_object_add(o, strs[i], json_object_new_string(
						       json_object_get_string(v)));
	for (int i = 0; ints[i]; i++)
		if (json_object_object_get_ex(in, ints[i], &v))
			json_object_object_add(o, ints[i],
					       json_object_new_int64(json_object_get_int64(v)));
	/*
	 * A probability above 1 is an agent's rounding or estimation slip, not
	 * hostile input: it is clamped to 1 and counted (idnd_state_clamped_total),
	 * and the rest of the heartbeat (load, queue, caps) still counts. A
	 * negative, non-finite or absurd (> 1e6) value is still refused.
	 */
	if (json_object_object_get_ex(in, "reuse", &v)) {
		double r = json_object_get_double(v);

		if (r > 1) {
			r = 1;
			idnd_state_clamped++;
		}
		json_object_object_add(o, "reuse", json_object_new_double(round(r * 10000) / 10000));
	}
	return o;
bad_pre:
	{
		char tmp[256];

		snprintf(tmp, sizeof(tmp), "%s", err);
		snprintf(err, errlen, "%s.%s", pre, tmp + (strncmp(tmp, "field ", 6) ? 0 : 6));
	}
bad:
	json_object_put(o);
	return NULL;
}

json_object *idnd_state_parse(json_object *in, char *err, size_t errlen)
{
	static const char *const cnt[] = { "kv_blocks", "kv_cached", "groups", NULL };
	static const char *const aff[] = { "checked", "agree", "mismatch", "unknown", NULL };
	json_object *o = json_object_new_object(), *v, *a;
	int64_t x;

	if (!json_object_is_type(in, json_type_object))
		FAIL("field \"state\": object expected");
	json_object_object_foreach(in, key, val) {
		if (in_list(key, cnt) >= 0) {
			if (get_int(val, key, 0, 1LL << 40, &x, err, errlen))
				goto bad;
			json_object_object_add(o, key, json_object_new_int64(x));
		} else if (!strcmp(key, "policy")) {
			if (!json_object_is_type(val, json_type_string) ||
			    (strcmp(json_object_get_string(val), "eq8") &&
			     strcmp(json_object_get_string(val), "lru")))
				FAIL("state.policy: \"eq8\" or \"lru\" expected");
			json_object_object_add(o, key, json_object_new_string(
						       json_object_get_string(val)));
		} else if (!strcmp(key, "affinity")) {
			if (!json_object_is_type(val, json_type_object))
				FAIL("state.affinity: object expected");
			a = json_object_new_object();
			json_object_object_add(o, key, a);
			json_object_object_foreach(val, k2, v2) {
				if (in_list(k2, aff) < 0)
					FAIL("state.affinity: unknown field \"%.64s\"", k2);
				if (get_int(v2, k2, 0, INT64_MAX, &x, err, errlen))
					goto bad;
				json_object_object_add(a, k2, json_object_new_int64(x));
			}
		} else if (!strcmp(key, "descriptors")) {
			size_t n;

			if (!json_object_is_type(val, json_type_array))
				FAIL("state.descriptors: array expected");
			n = json_object_array_length(val);
			if (n > IDND_STATE_MAX_DESC)
				FAIL("state.descriptors: at most %d descriptors", IDND_STATE_MAX_DESC);
			a = json_object_new_array();
			json_object_object_add(o, key, a);
			for (size_t i = 0; i < n; i++) {
				json_object *d = desc_parse(json_object_array_get_idx(val, i), i,
							    err, errlen);

				if (!d)
					goto bad;
				json_object_array_add(a, d);
			}
		} else {
			FAIL("state: unknown field \"%.64s\"", key);
		}
	}
	if (!json_object_object_get_ex(o, "descriptors", &v))
		json_object_object_add(o, "descriptors", json_object_new_array());
	return o;
bad:
	idnd_state_rejected++;
	json_object_put(o);
	return NULL;
}

/* ---- store ---------------------------------------------------------------- */

static int load(void)
{
	sqlite3 *db = idnd_store_handle();
	sqlite3_stmt *st;

	if (loaded)
		return 0;
	loaded = true;
	if (!db)
		return 0;
	if (sqlite3_exec(db, "CREATE TABLE IF NOT EXISTS node_state(node INTEGER PRIMARY KEY,"
			 " body TEXT NOT NULL, updated REAL)", NULL, NULL, NULL) != SQLITE_OK)
		return -EIO;
	if (sqlite3_prepare_v2(db, "SELECT node, body, updated FROM node_state", -1, &st, NULL) !=
	    SQLITE_OK)
		return -EIO;
	while (sqlite3_step(st) == SQLITE_ROW) {
		int64_t id = sqlite3_column_int64(st, 0);
		json_object *in = json_tokener_parse((const char *)sqlite3_column_text(st, 1)), *o;
		char err[256];

		/* read back through the same validation; a bad row is skipped */
		o = in ? idnd_state_parse(in, err, sizeof(err)) : NULL;
		json_object_put(in);
		if (!o || id < 0 || id >= IDN_MAX_NODES) {
			json_object_put(o);
			continue;
		}
		S[id].o = o;
		S[id].text = strdup((const char *)sqlite3_column_text(st, 1));
		S[id].updated = sqlite3_column_double(st, 2);
	}
	sqlite3_finalize(st);
	return 0;
}

static int write_row(uint32_t node, const char *text, double updated)
{
	sqlite3 *db = idnd_store_handle();
	sqlite3_stmt *st;
	int rc;

	if (!db)
		return 0;
	if (sqlite3_prepare_v2(db, "INSERT OR REPLACE INTO node_state VALUES(?1, ?2, ?3)", -1,
			       &st, NULL) != SQLITE_OK)
		return -EIO;
	sqlite3_bind_int64(st, 1, node);
	sqlite3_bind_text(st, 2, text, -1, SQLITE_TRANSIENT);
	sqlite3_bind_double(st, 3, updated);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : -EIO;
}

static int flush(uint32_t node, double now)
{
	struct nstate *s = &S[node];
	const char *t = json_object_to_json_string_ext(s->o, JSON_C_TO_STRING_PLAIN);
	int rc = write_row(node, t, s->updated);

	if (!rc) {
		free(s->text);
		s->text = strdup(t);
		s->written = now;
		s->dirty = false;
	}
	return rc;
}

int idnd_state_set(uint32_t node, json_object *canon)
{
	struct nstate *s = &S[node];
	const char *t = json_object_to_json_string_ext(canon, JSON_C_TO_STRING_PLAIN);
	double now = idnd_now();

	load();
	idnd_state_reports++;
	s->updated = wall();
	s->dirty |= !s->text || strcmp(s->text, t);
	json_object_put(s->o);
	s->o = canon;
	/* the first report at once, then at most one write per second (the tick) */
	return s->dirty && (!s->text || now - s->written >= 1.0) ? flush(node, now) : 0;
}

void idnd_state_tick(double now)
{
	for (uint32_t j = 0; j < IDN_MAX_NODES; j++)
		if (S[j].dirty && S[j].o && now - S[j].written >= 1.0)
			flush(j, now);
}

void idnd_state_drop(uint32_t node)
{
	sqlite3 *db = idnd_store_handle();
	char sql[80];

	load();
	if (node >= IDN_MAX_NODES)
		return;
	json_object_put(S[node].o);
	free(S[node].text);
	memset(&S[node], 0, sizeof(S[node]));
	snprintf(sql, sizeof(sql), "DELETE FROM node_state WHERE node = %u", node);
	if (db)
		sqlite3_exec(db, sql, NULL, NULL, NULL);
}

int idnd_state_seed(void)
{
	static json_object *st[IDN_MAX_NODES];
	static double last = -1;
	double now = idnd_now();

	load();
	/* the router's maps (-P), or the watchers' routers through etcd (leader) */
	if ((!D.have_maps && !(D.etcd && D.leader)) || (last >= 0 && now - last < 1.0))
		return 0;
	last = now;
	for (uint32_t j = 0; j < IDN_MAX_NODES; j++)
		st[j] = S[j].o;
	return idnd_aff_seeds(st);
}

json_object *idnd_state_json(uint32_t node)
{
	json_object *o;

	load();
	if (node >= IDN_MAX_NODES || !S[node].o)
		return NULL;
	o = json_object_new_object();
	json_object_object_add(o, "node", json_object_new_int64(node));
	json_object_object_add(o, "updated", json_object_new_int64((int64_t)S[node].updated));
	json_object_object_foreach(S[node].o, k, v)
		json_object_object_add(o, k, json_object_get(v));
	return o;
}

void idnd_state_metrics(struct idn_prom *p)
{
	uint64_t nodes = 0, desc = 0, agree = 0, mismatch = 0, unknown = 0, seeded, kept;
	json_object *a, *v;

	load();
	for (uint32_t j = 0; j < IDN_MAX_NODES; j++) {
		if (!S[j].o)
			continue;
		nodes++;
		if (json_object_object_get_ex(S[j].o, "descriptors", &v))
			desc += json_object_array_length(v);
		if (!json_object_object_get_ex(S[j].o, "affinity", &a))
			continue;
		if (json_object_object_get_ex(a, "agree", &v))
			agree += json_object_get_int64(v);
		if (json_object_object_get_ex(a, "mismatch", &v))
			mismatch += json_object_get_int64(v);
		if (json_object_object_get_ex(a, "unknown", &v))
			unknown += json_object_get_int64(v);
	}
	idnd_aff_seed_counts(&seeded, &kept);
	idn_prom_one_u64(p, "idnd_affinity_seeded_total", IDN_PROM_COUNTER,
			 "Affinity entries seeded from the nodes' state summaries.", seeded);
	idn_prom_one_u64(p, "idnd_affinity_seed_kept_total", IDN_PROM_COUNTER,
			 "Seeds not written: the router already had an entry.", kept);
	idn_prom_one_u64(p, "idnd_state_reports_total", IDN_PROM_COUNTER,
			 "State summaries received with heartbeats.", idnd_state_reports);
	idn_prom_one_u64(p, "idnd_state_rejected_total", IDN_PROM_COUNTER,
			 "State summaries refused as invalid.", idnd_state_rejected);
	idn_prom_one_u64(p, "idnd_state_clamped_total", IDN_PROM_COUNTER,
			 "State summary values clamped to their range.", idnd_state_clamped);
	idn_prom_one_u64(p, "idnd_state_nodes", IDN_PROM_GAUGE,
			 "Nodes with a state summary held.", nodes);
	idn_prom_one_u64(p, "idnd_state_descriptors", IDN_PROM_GAUGE,
			 "Descriptors in the state summaries held.", desc);
	idn_prom_one_u64(p, "idnd_affinity_agree", IDN_PROM_GAUGE,
			 "Checked tokens whose remembered prefix the node's cache holds (summed).", agree);
	idn_prom_one_u64(p, "idnd_affinity_mismatch", IDN_PROM_GAUGE,
			 "Checked tokens whose remembered prefix the node's cache lost (summed).",
			 mismatch);
	idn_prom_one_u64(p, "idnd_affinity_unknown", IDN_PROM_GAUGE,
			 "Checked tokens the node had not served (summed).", unknown);
}

json_object *idnd_state_all(void)
{
	json_object *a = json_object_new_array();

	load();
	for (uint32_t j = 0; j < IDN_MAX_NODES; j++)
		if (S[j].o)
			json_object_array_add(a, idnd_state_json(j));
	return a;
}
