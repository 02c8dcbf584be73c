// SPDX-License-Identifier: GPL-2.0
/*
 * migrate.c - the State manager's migration decisions (DESIGN 3.5, eq. 8;
 * docs/controller.md "Migration decisions (eq. 8)"). Off unless idnd runs
 * with --migrate.
 *
 * Every MIG_PERIOD the broker loop (D.lock held) looks for nodes that are
 * now the wrong place for the state they hold: draining (the operator's
 * POST /v1/nodes/ID/drain), busy (heartbeat load at or above
 * --migrate-busy, 900 of 1000 by default) or about to be declared down
 * (no heartbeat for half the timeout, the agent still reachable perhaps).
 * For each kv_prefix descriptor S of such a node that names an affinity
 * token (every one of a draining node's, busy or not), the destination is
 * the least loaded other node that is up, neither draining nor busy, has
 * a KV listener ("kv" in its registration) and
 * holds a placement of a capability class the source holds; tenant and
 * session state only to a node of at least the source's trust in its
 * domain, hardware-bound state nowhere. eq. 8 (ctl/lib/migrate.h, the
 * simulator's code too) decides move or recompute.
 *
 * A move is posted by one worker thread, outside the lock, in this order:
 *   1. tenant/session state: POST /v1/kv/expect to the destination's
 *      management listener (the owner, for one transfer, 10 s);
 *   2. POST /v1/kv/push {"peer": destination's kv, "token", "owned"} to the
 *      source's: it answers once the destination verified and committed
 *      the blocks (or failed: nothing applied there);
 *   3. only then, under D.lock, the router's affinity for (token, class)
 *      is pointed at the destination for every class the destination
 *      holds: commit -> affinity -> next request, so the next turn is
 *      served from the moved blocks. In distributed mode the leader also
 *      writes the re-point to etcd (affmoves/TOKEN, idnd_dist_aff_move())
 *      for the routers its watchers feed, which apply it by the rule in
 *      dist.c (waffmove()): a router that has since sent the token to
 *      another node keeps its choice.
 * Any failure (either agent gone, refused, timed out) stops before step 3:
 * the affinity still names the source, whose blocks still serve. A token
 * is not considered again for MIG_COOL seconds after a decision.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>
#include <json-c/json.h>

#include "idnd.h"
#include "prom.h"
#include "log.h"
#include "http.h"
#include "migrate.h"

#define MIG_PERIOD	0.25	/* seconds between scans */
#define MIG_COOL	MIG_COOL_S	/* seconds before a token is looked at again */
#define MIG_RETRY	MIG_RETRY_S	/* ... after a failed move */
#define MIG_MOVED_HOLD	MIG_MOVED_HOLD_S	/* ... after a move (its copy stays on the source) */
#define MIG_TOKENS	256	/* tokens remembered (cool-down) */
#define MIG_LOG		64	/* decisions kept for GET /v1/migrations */

struct mig_job {
	uint64_t token, root, session;
	uint32_t src, dst, tenant;
	enum mig_scope scope;
	struct idnd_announce expect;	/* tenant/session state: its owner, at dst */
	char push_url[160], peer[64];
	struct mig_eval ev;
	double decided;		/* wall clock, seconds */
	bool pull;		/* pull on miss: dst asked (POST /v1/nodes/ID/pull) */
};

struct mig_rec {
	struct mig_job j;
	const char *result;	/* "queued", "moved", "failed", "recompute", "never" */
	char why[160];
	double push_ms;		/* order -> answer */
	double affinity_at;	/* wall clock when the map was written, 0: not */
	uint64_t blocks;
};

static struct mig_rec mlog[MIG_LOG];
static unsigned int mlog_n;	/* records ever; the last MIG_LOG are kept */
static struct mig_cool {
	uint64_t token;
	double at;
} cool[MIG_TOKENS];
static uint64_t m_decided, m_moved, m_failed, m_recompute, m_never;

static pthread_mutex_t q_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t q_cv = PTHREAD_COND_INITIALIZER;
static struct mig_job queue[16];
static unsigned int q_head, q_len;
static bool q_started;

static double wall_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static struct mig_rec *rec_new(const struct mig_job *j, const char *result)
{
	struct mig_rec *r = &mlog[mlog_n++ % MIG_LOG];

	memset(r, 0, sizeof(*r));
	r->j = *j;
	r->result = result;
	return r;
}

static struct mig_rec *rec_find(uint64_t token, double decided)
{
	for (unsigned int i = 0; i < MIG_LOG; i++)
		if (mlog[i].j.token == token && mlog[i].j.decided == decided)
			return &mlog[i];
	return NULL;
}

static bool cooling(uint64_t token, double now)
{
	const struct mig_cool *c = &cool[token % MIG_TOKENS];

	return c->token == token && now - c->at < MIG_COOL;
}

static void cool_set(uint64_t token, double now)
{
	cool[token % MIG_TOKENS].token = token;
	cool[token % MIG_TOKENS].at = now;
}

/* ---- where: base URL of a node's management listener --------------------- */

static void mgmt_url(const struct d_node *n, const char *path, char *buf, size_t len)
{
	const char *sch = idn_tls_on(&idnd_tls) ? "https" : "http";

	if (n->mgmt[0] && (!strncmp(n->mgmt, "0.0.0.0:", 8) || !strncmp(n->mgmt, "[::]:", 5)))
		snprintf(buf, len, n->addr4[0] ? "%s://%s:%s%s" : "%s://[%s]:%s%s", sch,
			 n->addr4[0] ? n->addr4 : n->addr6, strrchr(n->mgmt, ':') + 1, path);
	else if (n->mgmt[0])
		snprintf(buf, len, "%s://%s%s", sch, n->mgmt, path);
	else
		snprintf(buf, len, n->addr4[0] ? "%s://%s:%u%s" : "%s://[%s]:%u%s", sch,
			 n->addr4[0] ? n->addr4 : n->addr6, n->api_port, path);
}

/* the KV address other agents reach: a wildcard listener on the locator */
static void kv_peer(const struct d_node *n, char *buf, size_t len)
{
	if (!strncmp(n->kv, "0.0.0.0:", 8) || !strncmp(n->kv, "[::]:", 5))
		snprintf(buf, len, n->addr4[0] ? "%s:%s" : "[%s]:%s",
			 n->addr4[0] ? n->addr4 : n->addr6, strrchr(n->kv, ':') + 1);
	else
		snprintf(buf, len, "%s", n->kv);
}

/*
 * May node dst hold the state of this scope that node src holds? Public:
 * anywhere; tenant and session state: a node of src's domain and at least
 * its trust; hardware-bound: nowhere. Migrations' rule, and stage 2's for
 * the decode node of a scoped two-stage request (api.c).
 */
bool idnd_scope_ok(const struct d_node *src, const struct d_node *dst, enum mig_scope scope)
{
	return scope == MIG_PUBLIC ||
	       ((scope == MIG_TENANT || scope == MIG_SESSION) &&
		dst->trust >= src->trust && dst->domain == src->domain);
}

/* ---- the worker: expect, push, then affinity ----------------------------- */

static int post(const char *url, const char *body, long timeout_ms, long *code,
		json_object **answer, char *err, size_t errlen)
{
	CURL *c = curl_easy_init();
	struct idn_http_buf out = { .max = 64 << 10 };
	int rc = -ENOMEM;

	*answer = NULL;
	if (c) {
		rc = idn_http_request(c, &idnd_tls, "POST", url, body, timeout_ms, &out, code, err,
				      errlen);
		curl_easy_cleanup(c);
	}
	if (!rc && out.p)
		*answer = json_tokener_parse(out.p);
	free(out.p);
	return rc;
}

static bool holds_class(uint32_t node, uint32_t cls)
{
	for (int p = 0; p < D.n_place; p++)
		if (D.place[p].node == node && IDN_CAP_CLASS(D.place[p].cap) == cls)
			return true;
	return false;
}

/*
 * Owned state announced at node dst's management listener (POST
 * /v1/kv/expect: the owner of the transfer whose first block is root, for
 * one transfer, 10 s): *an holds what to post, made under D.lock;
 * idnd_announce() posts it, outside the lock.
 */
void idnd_announce_prep(const struct d_node *dst, uint64_t root, enum mig_scope scope,
			uint32_t tenant, uint64_t session, struct idnd_announce *an)
{
	int bl = snprintf(an->body, sizeof(an->body), "{\"root\":\"%016" PRIx64 "\","
			  "\"scope\":\"%s\",\"tenant\":%u,\"ttl_ms\":10000", root,
			  scope == MIG_TENANT ? "tenant" : "session", tenant);

	if (scope == MIG_SESSION)
		bl += snprintf(an->body + bl, sizeof(an->body) - bl,
			       ",\"session\":\"%016" PRIx64 "\"", session);
	snprintf(an->body + bl, sizeof(an->body) - bl, "}");
	mgmt_url(dst, "/v1/kv/expect", an->url, sizeof(an->url));
}

int idnd_announce(const struct idnd_announce *an, long timeout_ms, char *err, size_t errlen)
{
	json_object *ans = NULL;
	long code = 0;
	int rc = post(an->url, an->body, timeout_ms, &code, &ans, err, errlen);

	json_object_put(ans);
	if (!rc && code != 200) {
		snprintf(err, errlen, "destination's /v1/kv/expect: HTTP %ld", code);
		rc = -EPROTO;
	}
	return rc;
}

static void run_job(struct mig_job *j)
{
	char body[320], err[512] = "";
	json_object *ans = NULL, *v;
	double t0 = wall_s(), t1;
	long code = 0;
	int rc, n = 0, n_cls = 0;
	uint32_t cls_v[8];
	struct mig_rec *r;
	uint64_t blocks = 0;

	if (j->scope == MIG_TENANT || j->scope == MIG_SESSION) {
		if (idnd_announce(&j->expect, 5000, err, sizeof(err)))
			goto fail;
	}
	snprintf(body, sizeof(body), "{\"peer\":\"%s\",\"token\":\"%016" PRIx64 "\",\"owned\":%s,"
		 "\"retries\":1}", j->peer, j->token,
		 j->scope == MIG_PUBLIC ? "false" : "true");
	rc = post(j->push_url, body, 30000, &code, &ans, err, sizeof(err));
	t1 = wall_s();
	if (rc)
		goto fail;
	if (code != 200 || !ans || !json_object_object_get_ex(ans, "state", &v) ||
	    strcmp(json_object_get_string(v), "done")) {
		snprintf(err, sizeof(err), "source's /v1/kv/push: HTTP %ld: %.300s", code,
			 ans && json_object_object_get_ex(ans, code == 200 || code == 502 ?
							  "message" : "error", &v) ?
			 json_object_get_string(v) : "no answer");
		goto fail;
	}
	if (json_object_object_get_ex(ans, "blocks", &v))
		blocks = json_object_get_int64(v);
	json_object_put(ans);

	/* committed at the destination: now, and only now, the affinity */
	pthread_mutex_lock(&D.lock);
	for (int p = 0; p < D.n_place; p++) {
		uint32_t cls = IDN_CAP_CLASS(D.place[p].cap);
		bool dup = false;

		if (D.place[p].node != j->dst)
			continue;
		for (int q = 0; q < p; q++)
			dup |= D.place[q].node == j->dst && IDN_CAP_CLASS(D.place[q].cap) == cls;
		if (dup || !holds_class(j->src, cls))
			continue;
		if (n_cls < 8)		/* for etcd: a re-point names at most 8 */
			cls_v[n_cls++] = cls;
		if (D.have_maps && !idn_aff_point(&D.maps, j->token, cls, j->dst))
			n++;
	}
	/* the routers the watchers feed (distributed mode's leader): the same
	 * re-point through etcd, written after the commit as the map is */
	idnd_dist_aff_move(j->token, j->src, j->dst, cls_v, n_cls);
	r = rec_find(j->token, j->decided);
	if (r) {
		r->result = n || !D.have_maps ? "moved" : "failed";
		r->push_ms = (t1 - t0) * 1000;
		r->affinity_at = n ? wall_s() : 0;
		r->blocks = blocks;
		snprintf(r->why, sizeof(r->why), n ? "%s%" PRIu64 " blocks moved; affinity of %d "
			 "class(es) now node %u" : D.have_maps ? "%smoved, but no affinity entry "
			 "written" : "%s%" PRIu64 " blocks moved (no dataplane here)",
			 j->pull ? "pull on miss: " : "", blocks, n, j->dst);
	}
	if (n || !D.have_maps) {
		m_moved++;
		/* the sessions are served at j now: the source's copy is not moved again */
		if (cool[j->token % MIG_TOKENS].token == j->token)
			cool[j->token % MIG_TOKENS].at = idnd_now() + MIG_MOVED_HOLD - MIG_COOL;
	} else {
		m_failed++;
	}
	pthread_mutex_unlock(&D.lock);
	pr_info("MIGRATE: token %016" PRIx64 " node %u -> %u: %" PRIu64 " blocks in %.1f ms, "
		"affinity %d class(es)\n", j->token, j->src, j->dst, blocks, (t1 - t0) * 1000, n);
	return;
fail:
	json_object_put(ans);
	pthread_mutex_lock(&D.lock);
	m_failed++;
	if (cool[j->token % MIG_TOKENS].token == j->token)	/* try again soon */
		cool[j->token % MIG_TOKENS].at = idnd_now() - MIG_COOL + MIG_RETRY;
	r = rec_find(j->token, j->decided);
	if (r) {
		r->result = "failed";
		snprintf(r->why, sizeof(r->why), "%s; the source keeps serving", err);
	}
	pthread_mutex_unlock(&D.lock);
	pr_warn("MIGRATE: token %016" PRIx64 " node %u -> %u failed: %s (affinity unchanged)\n",
		j->token, j->src, j->dst, err);
}

static void *worker(void *arg)
{
	(void)arg;
	for (;;) {
		struct mig_job j;

		pthread_mutex_lock(&q_mu);
		while (!q_len)
			pthread_cond_wait(&q_cv, &q_mu);
		j = queue[q_head];
		q_head = (q_head + 1) % 16;
		q_len--;
		pthread_mutex_unlock(&q_mu);
		run_job(&j);
	}
	return NULL;
}

static bool enqueue(const struct mig_job *j)
{
	bool ok = false;

	pthread_mutex_lock(&q_mu);
	if (!q_started) {
		pthread_t th;

		q_started = !pthread_create(&th, NULL, worker, NULL);
		if (q_started)
			pthread_detach(th);
	}
	if (q_started && q_len < 16) {
		queue[(q_head + q_len++) % 16] = *j;
		pthread_cond_signal(&q_cv);
		ok = true;
	}
	pthread_mutex_unlock(&q_mu);
	return ok;
}

/* ---- the decision --------------------------------------------------------- */

static bool busy(const struct d_node *n)
{
	return n->load >= D.mig_busy;
}

static const char *wrong_place(const struct d_node *n, double now)
{
	if (!n->used || !n->up)
		return NULL;	/* down: its agent cannot push any more */
	if (n->drain)
		return "draining";	/* the operator's: everything it holds goes */
	if (busy(n))
		return "busy";
	if (now - n->last_hb > D.hb_timeout / 2)
		return "down soon";
	return NULL;
}

static const char *jstr(json_object *o, const char *k)
{
	json_object *v;

	return json_object_object_get_ex(o, k, &v) ? json_object_get_string(v) : NULL;
}

static int64_t jint(json_object *o, const char *k, int64_t dflt)
{
	json_object *v;

	return json_object_object_get_ex(o, k, &v) ? json_object_get_int64(v) : dflt;
}

static bool shares_class(uint32_t a, uint32_t b)
{
	for (int p = 0; p < D.n_place; p++)
		if (D.place[p].node == a && holds_class(b, IDN_CAP_CLASS(D.place[p].cap)))
			return true;
	return false;
}

/* one descriptor of node src: decide, record, queue */
static void consider(uint32_t src, json_object *d, const char *why, double now)
{
	const struct d_node *s = &D.nodes[src];
	struct mig_state st = { 0 };
	struct mig_job j = { .src = src, .dst = UINT32_MAX };
	const char *sc = jstr(d, "scope"), *tok = jstr(d, "token");
	struct mig_weights w = D.mig_w;
	struct mig_dest best = { 0 };
	struct mig_rec *r;
	uint32_t best_load = UINT32_MAX;

	if (!tok || !jstr(d, "type") || strcmp(jstr(d, "type"), "kv_prefix"))
		return;
	j.token = strtoull(tok, NULL, 16);
	if (!j.token || cooling(j.token, now))
		return;
	j.root = strtoull(jstr(d, "root") ? jstr(d, "root") : "0", NULL, 16);
	j.tenant = jint(d, "tenant", 0);
	j.session = strtoull(jstr(d, "session") ? jstr(d, "session") : "0", NULL, 16);
	st.scope = !sc ? MIG_PUBLIC : !strcmp(sc, "tenant") ? MIG_TENANT :
		   !strcmp(sc, "session") ? MIG_SESSION : !strcmp(sc, "hardware") ? MIG_HARDWARE :
		   MIG_PUBLIC;
	j.scope = st.scope;
	{
		json_object *v;

		st.reuse = json_object_object_get_ex(d, "reuse", &v) ? json_object_get_double(v) : 0;
	}
	st.value_us = jint(d, "value_us", 0);
	st.tokens = jint(d, "tokens", 0);
	st.size = jint(d, "size", 0);
	st.migration_us = jint(d, "migration_us", -1);
	/*
	 * The destination: the least loaded node that may hold S's scope
	 * (tenant and session state: the source's domain, at least its
	 * trust; hardware-bound: none). With none, any candidate is named
	 * so the record says why it stays ("never").
	 */
	for (int pass = 0; pass < 2 && j.dst == UINT32_MAX; pass++)
		for (uint32_t k = 0; k < IDN_MAX_NODES; k++) {
			const struct d_node *n = &D.nodes[k];
			bool scope_ok = idnd_scope_ok(s, n, st.scope);

			if (k == src || !n->used || !n->up || n->drain || busy(n) || !n->kv[0] ||
			    !shares_class(src, k) || n->load >= best_load || (!pass && !scope_ok))
				continue;
			j.dst = k;
			best_load = n->load;
			best.kv_use = n->kv_use / 1000.0;
			best.net_us = (double)(s->net_us + n->net_us);
			best.scope_ok = scope_ok;
		}
	if (j.dst == UINT32_MAX)
		return;		/* nowhere to go: it stays (and ages out) */
	cool_set(j.token, now);
	m_decided++;
	j.decided = wall_s();
	mig_decide(&st, &best, &w, MIG_PREFILL_US, &j.ev);
	if (j.ev.verdict != MIG_MOVE) {
		r = rec_new(&j, mig_verdict_name(j.ev.verdict));
		snprintf(r->why, sizeof(r->why), "node %u %s; %s", src, why,
			 j.ev.verdict == MIG_NEVER ? "hardware-bound or no node may hold its scope" :
			 "moving costs more than recomputing");
		if (j.ev.verdict == MIG_NEVER)
			m_never++;
		else
			m_recompute++;
		return;
	}
	kv_peer(&D.nodes[j.dst], j.peer, sizeof(j.peer));
	if (j.scope == MIG_TENANT || j.scope == MIG_SESSION)
		idnd_announce_prep(&D.nodes[j.dst], j.root, j.scope, j.tenant, j.session, &j.expect);
	mgmt_url(s, "/v1/kv/push", j.push_url, sizeof(j.push_url));
	r = rec_new(&j, "queued");
	snprintf(r->why, sizeof(r->why), "node %u %s", src, why);
	if (!enqueue(&j)) {
		r->result = "failed";
		snprintf(r->why, sizeof(r->why), "node %u %s; queue full", src, why);
		m_failed++;
		return;
	}
	pr_info("MIGRATE: token %016" PRIx64 " on node %u (%s): move to node %u "
		"(gain %.0f us, transfer %.0f, storage %.0f, privacy %.0f)\n", j.token, src, why,
		j.dst, j.ev.gain_us, j.ev.transfer_us, j.ev.storage_us, j.ev.privacy_us);
}

/* d's kv_prefix fields into *st; its token (0: none) and blocks. -1: not kv_prefix */
static int mig_desc_state(json_object *d, struct mig_state *st, uint64_t *token,
				 uint64_t *blocks)
{
	json_object *v;
	const char *sc;

	memset(st, 0, sizeof(*st));
	*token = 0;
	*blocks = 0;
	if (!json_object_object_get_ex(d, "type", &v) ||
	    strcmp(json_object_get_string(v), "kv_prefix"))
		return -1;
	if (json_object_object_get_ex(d, "token", &v))
		*token = strtoull(json_object_get_string(v), NULL, 16);
	sc = json_object_object_get_ex(d, "scope", &v) ? json_object_get_string(v) : NULL;
	st->scope = !sc ? MIG_PUBLIC : !strcmp(sc, "tenant") ? MIG_TENANT :
		    !strcmp(sc, "session") ? MIG_SESSION : !strcmp(sc, "hardware") ? MIG_HARDWARE :
		    MIG_PUBLIC;
	if (json_object_object_get_ex(d, "reuse", &v))
		st->reuse = json_object_get_double(v);
	if (json_object_object_get_ex(d, "value_us", &v))
		st->value_us = (double)json_object_get_int64(v);
	if (json_object_object_get_ex(d, "tokens", &v))
		st->tokens = json_object_get_int64(v);
	if (json_object_object_get_ex(d, "size", &v))
		st->size = json_object_get_int64(v);
	st->migration_us = json_object_object_get_ex(d, "migration_us", &v) ?
			   json_object_get_int64(v) : -1;
	if (json_object_object_get_ex(d, "blocks", &v))
		*blocks = json_object_get_int64(v);
	return 0;
}

/* the kv_prefix descriptor of a node's report ({"descriptors": [...]}) naming token */
static json_object *mig_desc_find(json_object *report, uint64_t token)
{
	json_object *a, *d, *v;

	if (!token || !report || !json_object_object_get_ex(report, "descriptors", &a))
		return NULL;
	for (size_t k = 0; k < json_object_array_length(a); k++) {
		d = json_object_array_get_idx(a, k);
		if (json_object_object_get_ex(d, "token", &v) &&
		    strtoull(json_object_get_string(v), NULL, 16) == token &&
		    json_object_object_get_ex(d, "type", &v) &&
		    !strcmp(json_object_get_string(v), "kv_prefix"))
			return d;
	}
	return NULL;
}

/*
 * Pull on miss (docs/controller.md "Pull on miss"): node id was given a
 * request for a token whose state another node holds; it lacks `lack` of
 * the prompt's blocks. The holder is the up node with a KV listener whose
 * last report names the token with the most blocks (busy or not: the push
 * takes its link, not its engine); eq. 8 with P_hit 1 (mig_pull_state())
 * decides; a move is ordered like a migration (expect, push, affinity) and
 * answered at once: the agent waits for the blocks (wait_ms) and prefills
 * after them, or without them when they do not come in time. D.lock held.
 * Returns the HTTP code; *out the answer or *err.
 */
unsigned int idnd_mig_pull(uint32_t id, json_object *in, json_object **out, char *err,
			   size_t errlen)
{
	const struct d_node *me = &D.nodes[id];
	struct mig_job j = { .dst = id, .src = UINT32_MAX, .pull = true };
	struct mig_state hs = { 0 }, st;
	struct mig_dest dst = { 0 };
	uint64_t best = 0, lack = 0, n;
	json_object *v, *hd = NULL, *hrep = NULL;
	const char *tok;
	struct mig_rec *r;
	const char *verdict;

	*out = NULL;
	if (!D.migrate) {
		snprintf(err, errlen, "pull on miss needs idnd --migrate");
		return 409;
	}
	if (!me->used || !me->up || !me->kv[0]) {
		snprintf(err, errlen, "node %u is not up with a KV listener", id);
		return 409;
	}
	tok = json_object_object_get_ex(in, "token", &v) ? json_object_get_string(v) : NULL;
	if (!tok || strlen(tok) != 16 || strspn(tok, "0123456789abcdef") != 16 ||
	    !(j.token = strtoull(tok, NULL, 16))) {
		snprintf(err, errlen, "\"token\": 16 lowercase hex digits, not 0, expected");
		return 400;
	}
	if (!json_object_object_get_ex(in, "lack", &v) || !json_object_is_type(v, json_type_int) ||
	    json_object_get_int64(v) < 1 || json_object_get_int64(v) > 1 << 20) {
		snprintf(err, errlen, "\"lack\": the prompt's blocks the node lacks, 1..%d, expected",
			 1 << 20);
		return 400;
	}
	lack = json_object_get_int64(v);
	for (uint32_t k = 0; k < IDN_MAX_NODES; k++) {
		const struct d_node *h = &D.nodes[k];
		json_object *rep, *d;
		struct mig_state x;
		uint64_t tk, b;

		if (k == id || !h->used || !h->up || !h->kv[0] || !shares_class(k, id) ||
		    !(rep = idnd_state_json(k)))
			continue;
		d = mig_desc_find(rep, j.token);
		if (d && !mig_desc_state(d, &x, &tk, &b) && b > best) {
			json_object_put(hrep);
			hrep = rep;
			hd = d;
			hs = x;
			best = b;
			j.src = k;
			continue;
		}
		json_object_put(rep);
	}
	*out = json_object_new_object();
	if (j.src == UINT32_MAX) {
		json_object_object_add(*out, "verdict", json_object_new_string("none"));
		return 200;	/* no node reports the token: recompute */
	}
	j.scope = hs.scope;
	j.root = strtoull(json_object_object_get_ex(hd, "root", &v) ?
			  json_object_get_string(v) : "0", NULL, 16);
	j.tenant = json_object_object_get_ex(hd, "tenant", &v) ? json_object_get_int(v) : 0;
	j.session = strtoull(json_object_object_get_ex(hd, "session", &v) ?
			     json_object_get_string(v) : "0", NULL, 16);
	json_object_put(hrep);
	dst.net_us = (double)D.nodes[j.src].net_us + me->net_us;
	dst.kv_use = me->kv_use / 1000.0;
	/* the request waits there anyway: its heartbeat's outstanding prefill */
	dst.wait_us = (double)me->pending * me->tok_ns / 1000.0;
	dst.scope_ok = idnd_scope_ok(&D.nodes[j.src], me, hs.scope);
	n = mig_pull_state(&st, &hs, best, lack, me->tok_ns / 1000.0);
	m_decided++;
	j.decided = wall_s();
	mig_decide(&st, &dst, &D.mig_w, MIG_PREFILL_US, &j.ev);
	verdict = mig_verdict_name(j.ev.verdict);
	if (j.ev.verdict == MIG_MOVE) {
		kv_peer(me, j.peer, sizeof(j.peer));
		if (j.scope == MIG_TENANT || j.scope == MIG_SESSION)
			idnd_announce_prep(me, j.root, j.scope, j.tenant, j.session, &j.expect);
		mgmt_url(&D.nodes[j.src], "/v1/kv/push", j.push_url, sizeof(j.push_url));
		r = rec_new(&j, "queued");
		snprintf(r->why, sizeof(r->why), "pull on miss: node %u lacks %" PRIu64 " blocks",
			 id, lack);
		if (!enqueue(&j)) {
			r->result = "failed";
			snprintf(r->why, sizeof(r->why), "pull on miss: queue full");
			m_failed++;
			verdict = "busy";
		} else {
			cool_set(j.token, idnd_now());	/* no scan move of the old copy now */
		}
	} else {
		r = rec_new(&j, verdict);
		snprintf(r->why, sizeof(r->why), "pull on miss from node %u: %s", j.src,
			 j.ev.verdict == MIG_NEVER ? "hardware-bound, out of scope or nothing to "
			 "pull" : "moving costs more than recomputing");
		if (j.ev.verdict == MIG_NEVER)
			m_never++;
		else
			m_recompute++;
	}
	json_object_object_add(*out, "verdict", json_object_new_string(verdict));
	json_object_object_add(*out, "from", json_object_new_int64(j.src));
	json_object_object_add(*out, "blocks", json_object_new_int64(n));
	json_object_object_add(*out, "gain_us", json_object_new_int64((int64_t)j.ev.gain_us));
	json_object_object_add(*out, "transfer_us",
			       json_object_new_int64((int64_t)j.ev.transfer_us));
	json_object_object_add(*out, "wait_ms", json_object_new_int64(
		j.ev.verdict == MIG_MOVE ?
		(int64_t)(mig_pull_wait_us((double)st.migration_us + dst.net_us) / 1000) : 0));
	return 200;
}

void idnd_mig_tick(double now)
{
	static double last;

	if (!D.migrate || now - last < MIG_PERIOD)
		return;
	last = now;
	for (uint32_t i = 0; i < IDN_MAX_NODES; i++) {
		const char *why = wrong_place(&D.nodes[i], now);
		json_object *st, *a;

		if (!why || !(st = idnd_state_json(i)))
			continue;
		if (json_object_object_get_ex(st, "descriptors", &a))
			for (size_t k = 0; k < json_object_array_length(a); k++)
				consider(i, json_object_array_get_idx(a, k), why, now);
		json_object_put(st);
	}
}

json_object *idnd_mig_json(void)
{
	json_object *arr = json_object_new_array();
	unsigned int n = mlog_n < MIG_LOG ? mlog_n : MIG_LOG;

	for (unsigned int i = 0; i < n; i++) {
		const struct mig_rec *r = &mlog[(mlog_n - n + i) % MIG_LOG];
		json_object *o = json_object_new_object();
		char hx[17];

		snprintf(hx, sizeof(hx), "%016" PRIx64, r->j.token);
		json_object_object_add(o, "token", json_object_new_string(hx));
		json_object_object_add(o, "from", json_object_new_int64(r->j.src));
		json_object_object_add(o, "to", json_object_new_int64(r->j.dst));
		json_object_object_add(o, "scope", json_object_new_string(
			(const char *[]){ "public", "tenant", "session", "hardware" }[r->j.scope]));
		json_object_object_add(o, "result", json_object_new_string(r->result));
		json_object_object_add(o, "why", json_object_new_string(r->why));
		json_object_object_add(o, "gain_us", json_object_new_double(r->j.ev.gain_us));
		json_object_object_add(o, "transfer_us", json_object_new_double(r->j.ev.transfer_us));
		json_object_object_add(o, "storage_us", json_object_new_double(r->j.ev.storage_us));
		json_object_object_add(o, "privacy_us", json_object_new_double(r->j.ev.privacy_us));
		json_object_object_add(o, "net_us", json_object_new_double(r->j.ev.net_us));
		json_object_object_add(o, "decided", json_object_new_double(r->j.decided));
		if (r->push_ms > 0)
			json_object_object_add(o, "push_ms", json_object_new_double(r->push_ms));
		if (r->affinity_at > 0)
			json_object_object_add(o, "affinity_at", json_object_new_double(r->affinity_at));
		if (r->blocks)
			json_object_object_add(o, "blocks", json_object_new_int64(r->blocks));
		json_object_array_add(arr, o);
	}
	return arr;
}

void idnd_mig_metrics(struct idn_prom *p)
{
	idn_prom_one_u64(p, "idnd_migrations_decided_total", IDN_PROM_COUNTER,
			 "Migration decisions taken (eq. 8).", m_decided);
	idn_prom_one_u64(p, "idnd_migrations_moved_total", IDN_PROM_COUNTER,
			 "State moves committed at the destination.", m_moved);
	idn_prom_one_u64(p, "idnd_migrations_failed_total", IDN_PROM_COUNTER,
			 "State moves that failed (the source keeps serving).", m_failed);
	idn_prom_one_u64(p, "idnd_migrations_recompute_total", IDN_PROM_COUNTER,
			 "Decisions to leave state to be recomputed.", m_recompute);
	idn_prom_one_u64(p, "idnd_migrations_never_total", IDN_PROM_COUNTER,
			 "State that never moves (hardware-bound).", m_never);
}
