// SPDX-License-Identifier: GPL-2.0
/*
 * api.c - the HTTP/JSON API of idnd (libmicrohttpd) and /metrics.
 *
 * Every request body is limited to IDND_BODY_MAX bytes (413 beyond),
 * parsed with a nesting limit, and validated strictly (model.c) before
 * anything changes: a rejected request leaves registry, store and maps
 * as they were. Errors are {"error": "..."} with a 4xx status (5xx only
 * for the daemon's own failures). Endpoints: see docs/controller.md.
 */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <microhttpd.h>

#include "idnd.h"
#include "orders.h"
#include "solver.h"
#include "audit.h"
#include "http.h"
#include "ident.h"
#include "fed.h"
#include "prom.h"

struct req {
	char *buf;
	size_t len;
	bool too_big;
};

static struct MHD_Daemon *mhd;
struct idn_tls idnd_tls;
static unsigned int last_code;	/* the status route() answered (D.lock held) */

/* with one more header (hdr NULL: none) */
static enum MHD_Result send_json_hdr(struct MHD_Connection *c, unsigned int code, json_object *o,
				     const char *hdr, const char *val)
{
	const char *s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
	struct MHD_Response *r = MHD_create_response_from_buffer(strlen(s), (void *)s,
								 MHD_RESPMEM_MUST_COPY);
	enum MHD_Result ret;

	json_object_put(o);
	MHD_add_response_header(r, "Content-Type", "application/json");
	if (hdr)
		MHD_add_response_header(r, hdr, val);
	ret = MHD_queue_response(c, code, r);
	MHD_destroy_response(r);
	last_code = code;
	if (code >= 500)
		D.http_5xx++;
	else if (code >= 400)
		D.http_4xx++;
	return ret;
}

static enum MHD_Result send_json(struct MHD_Connection *c, unsigned int code, json_object *o)
{
	return send_json_hdr(c, code, o, NULL, NULL);
}

static enum MHD_Result send_text(struct MHD_Connection *c, unsigned int code, const char *type,
				 const char *s)
{
	struct MHD_Response *r = MHD_create_response_from_buffer(strlen(s), (void *)s,
								 MHD_RESPMEM_MUST_COPY);
	enum MHD_Result ret;

	MHD_add_response_header(r, "Content-Type", type);
	ret = MHD_queue_response(c, code, r);
	MHD_destroy_response(r);
	last_code = code;
	return ret;
}

static enum MHD_Result send_err(struct MHD_Connection *c, unsigned int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static enum MHD_Result send_err(struct MHD_Connection *c, unsigned int code, const char *fmt, ...)
{
	char msg[512];
	json_object *o = json_object_new_object();
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	json_object_object_add(o, "error", json_object_new_string(msg));
	return send_json(c, code, o);
}

/* ---- a request's capability by the VIP it reached (P/D stage 2) ---- */

static char *cap_fmt(uint32_t label, char *b, size_t l)
{
	snprintf(b, l, "%u/%u", IDN_CAP_CLASS(label), IDN_CAP_VARIANT(label));
	return b;
}

static bool cap_is_model(const struct d_cap *c, const char *model)
{
	return model && *model && (!strcmp(c->name, model) ||
				   (c->artifact[0] && !strcmp(c->artifact, model)));
}

int idnd_vip_cap(const struct idn_addr *a, uint16_t port, const char *model, uint32_t *label,
		 char *why, size_t wl)
{
	uint32_t set[IDND_MAX_CAPS < 64 ? IDND_MAX_CAPS : 64];
	const struct d_cap *c;
	int n = 0, m = 0;
	char vb[INET6_ADDRSTRLEN + 8], cb[32];
	struct d_vip v = { .addr = *a, .port = port };

	idnd_vip_fmt(&v, vb, sizeof(vb));
	for (int i = 0; i < D.n_caps && n < (int)(sizeof(set) / sizeof(set[0])); i++)
		for (int k = 0; k < IDND_CAP_VIPS; k++)
			if (idnd_vip_eq(&D.caps[i].vips[k], a, port)) {
				set[n++] = D.caps[i].label;
				break;
			}
	if (D.have_maps && n < (int)(sizeof(set) / sizeof(set[0]))) {
		/* the router's VIP table: its capability, where it is registered */
		struct idn_vip_key k;
		struct idn_vip e;
		bool dup = false;

		idn_vip_key_make(&k, a, port, IPPROTO_TCP);
		if (!idn_vip_get(&D.maps, &k, &e) && idnd_cap_find(e.defaults.cap)) {
			for (int i = 0; i < n; i++)
				dup |= set[i] == e.defaults.cap;
			if (!dup)
				set[n++] = e.defaults.cap;
		}
	}
	if (!n) {
		snprintf(why, wl, "VIP %s serves no registered capability", vb);
		return -ENOENT;
	}
	for (int i = 0; i < n; i++)
		if ((c = idnd_cap_find(set[i])) && cap_is_model(c, model)) {
			*label = set[i];
			m++;
		}
	if (m == 1) {
		snprintf(why, wl, "VIP %s, model \"%s\": %s", vb, model,
			 cap_fmt(*label, cb, sizeof(cb)));
		return 0;
	}
	if (!m && n == 1) {
		*label = set[0];
		snprintf(why, wl, "VIP %s: %s, the one it serves", vb,
			 cap_fmt(*label, cb, sizeof(cb)));
		return 0;
	}
	snprintf(why, wl, "VIP %s serves %d capabilities and model \"%.64s\" names %s of them",
		 vb, n, model ? model : "", m ? "several" : "none");
	return -ENOTUNIQ;
}


static json_object *parse_body(struct req *rq, bool allow_empty, char *err, size_t errlen)
{
	struct json_tokener *tok;
	json_object *o;

	if (!rq->len) {
		if (allow_empty)
			return json_object_new_object();
		snprintf(err, errlen, "request body required (a JSON object)");
		return NULL;
	}
	if (memchr(rq->buf, 0, rq->len)) {
		snprintf(err, errlen, "NUL byte in request body");
		return NULL;
	}
	tok = json_tokener_new_ex(16);
	if (!tok) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	o = json_tokener_parse_ex(tok, rq->buf, (int)rq->len);
	if (!o || json_tokener_get_error(tok) != json_tokener_success) {
		snprintf(err, errlen, "invalid JSON: %s",
			 json_tokener_error_desc(json_tokener_get_error(tok)));
		json_object_put(o);
		o = NULL;
	} else {
		size_t off = json_tokener_get_parse_end(tok);

		while (off < rq->len && strchr(" \t\r\n", rq->buf[off]))
			off++;
		if (off != rq->len) {
			snprintf(err, errlen, "invalid JSON: trailing data after the object");
			json_object_put(o);
			o = NULL;
		} else if (!json_object_is_type(o, json_type_object)) {
			snprintf(err, errlen, "expected a JSON object");
			json_object_put(o);
			o = NULL;
		}
	}
	json_tokener_free(tok);
	return o;
}

/* "/v1/nodes/12/heartbeat" with prefix "/v1/nodes/" -> 12, rest "/heartbeat" */
static bool path_id(const char *url, const char *prefix, uint32_t max, uint32_t *id,
		    const char **rest)
{
	size_t n = strlen(prefix);
	char *end;
	unsigned long v;

	if (strncmp(url, prefix, n) || url[n] < '0' || url[n] > '9')
		return false;
	errno = 0;
	v = strtoul(url + n, &end, 10);
	if (errno || v > max)
		return false;
	*id = v;
	*rest = end;
	return true;
}

static json_object *status_json(void)
{
	json_object *o = json_object_new_object();
	int up = 0, n = 0;

	for (int j = 0; j < IDN_MAX_NODES; j++)
		if (D.nodes[j].used) {
			n++;
			up += D.nodes[j].up;
		}
	json_object_object_add(o, "mode", json_object_new_string(D.etcd ? "etcd" : "embedded"));
	if (D.etcd) {
		json_object_object_add(o, "etcd", json_object_new_string(D.etcd_url));
		json_object_object_add(o, "prefix", json_object_new_string(D.prefix));
		json_object_object_add(o, "replica", json_object_new_string(D.replica));
		json_object_object_add(o, "leader", json_object_new_boolean(D.leader));
		json_object_object_add(o, "takeovers", json_object_new_int64(D.takeovers));
	}
	json_object_object_add(o, "store", json_object_new_string(D.db_path));
	json_object_object_add(o, "dataplane", D.have_maps ?
			       json_object_new_string(D.pin) : NULL);
	json_object_object_add(o, "generation", json_object_new_int64(D.generation));
	json_object_object_add(o, "caps", json_object_new_int(D.n_caps));
	json_object_object_add(o, "nodes", json_object_new_int(n));
	json_object_object_add(o, "nodes_up", json_object_new_int(up));
	json_object_object_add(o, "placements", json_object_new_int(D.n_place));
	json_object_object_add(o, "hb_timeout_ms", json_object_new_int64(D.hb_timeout * 1000));
	{
		json_object *l = json_object_new_object();

		json_object_object_add(l, "interval_ms", json_object_new_int64(D.loop_ms));
		json_object_object_add(l, "region", json_object_new_int(D.loop_region));
		json_object_object_add(l, "solves", json_object_new_int64(D.loop_solves));
		json_object_object_add(l, "changed", json_object_new_int64(D.loop_changed));
		json_object_object_add(l, "scale_out", json_object_new_int64(D.loop_out));
		json_object_object_add(l, "moves", json_object_new_int64(D.loop_move));
		json_object_object_add(l, "scale_back", json_object_new_int64(D.loop_back));
		json_object_object_add(o, "loop", l);
	}
	{
		json_object *a = json_object_new_object();

		json_object_object_add(a, "on", json_object_new_boolean(D.hold));
		json_object_object_add(a, "misses", json_object_new_int64(D.act_misses));
		json_object_object_add(a, "unregistered", json_object_new_int64(D.act_unknown));
		json_object_object_add(a, "placed", json_object_new_int64(D.act_placed));
		json_object_object_add(a, "failed", json_object_new_int64(D.act_failed));
		json_object_object_add(a, "released", json_object_new_int64(D.act_released));
		json_object_object_add(a, "rejected", json_object_new_int64(D.act_rejected));
		json_object_object_add(a, "last_ms", idnd_jnum(D.act_last_ms));
		json_object_object_add(o, "activation", a);
	}
	json_object_object_add(o, "orders", idnd_orders_json());
	json_object_object_add(o, "signatures", idnd_sig_status());
	json_object_object_add(o, "federation", idnd_fed_status());
	json_object_object_add(o, "uptime_s", idnd_jnum(idnd_now() - D.started));
	json_object_object_add(o, "last_commit_ms", idnd_jnum(D.last_commit_ms));
	json_object_object_add(o, "last_drain_ms", idnd_jnum(D.last_drain_ms));
	return o;
}

/*
 * /metrics: the registry, the API, the solver and the live node state in
 * the Prometheus text format, through the shared writer (ctl/lib/prom.c).
 */
static enum MHD_Result metrics(struct MHD_Connection *c)
{
	static const struct { const char *name, *help; size_t off; } node_g[] = {
		{ "idnd_node_up", "Node is up (heartbeats arrive in time).",
		  offsetof(struct d_node, up) },
		{ "idnd_node_queue_requests", "Requests queued at the node (last heartbeat).",
		  offsetof(struct d_node, queue) },
		{ "idnd_node_pending_tokens", "Prefill tokens outstanding at the node (last heartbeat).",
		  offsetof(struct d_node, pending) },
		{ "idnd_node_load_ratio", "Node load, 0..1 of its capacity (last heartbeat).",
		  offsetof(struct d_node, load) },
		{ "idnd_node_kv_usage_ratio", "KV cache use of the node, 0..1 (last heartbeat).",
		  offsetof(struct d_node, kv_use) },
	};
	struct idn_prom p;
	char *out = NULL, id[16];
	size_t len = 0;
	int up = 0, n = 0;
	FILE *f = open_memstream(&out, &len);
	enum MHD_Result ret;

	if (!f)
		return send_err(c, 500, "out of memory");
	for (int j = 0; j < IDN_MAX_NODES; j++)
		if (D.nodes[j].used) {
			n++;
			up += D.nodes[j].up;
		}
	idn_prom_init(&p, f);
	idn_prom_one_u64(&p, "idnd_http_requests_total", IDN_PROM_COUNTER,
			 "API requests answered.", D.http_req);
	idn_prom_one_u64(&p, "idnd_http_client_errors_total", IDN_PROM_COUNTER,
			 "API requests answered with a 4xx status.", D.http_4xx);
	idn_prom_one_u64(&p, "idnd_http_server_errors_total", IDN_PROM_COUNTER,
			 "API requests answered with a 5xx status.", D.http_5xx);
	idn_prom_one_u64(&p, "idnd_caps", IDN_PROM_GAUGE, "Capabilities registered.", D.n_caps);
	idn_prom_one_u64(&p, "idnd_nodes", IDN_PROM_GAUGE, "Nodes registered.", n);
	idn_prom_one_u64(&p, "idnd_nodes_up", IDN_PROM_GAUGE, "Nodes up.", up);
	idn_prom_one_u64(&p, "idnd_placements", IDN_PROM_GAUGE,
			 "Capability-node placements in force.", D.n_place);
	idn_prom_one_u64(&p, "idnd_placement_changes_total", IDN_PROM_COUNTER,
			 "Placements added or removed by solves (churn).", D.place_changes);
	idn_prom_one_u64(&p, "idnd_plan_generation", IDN_PROM_GAUGE,
			 "Generation of the plans compiled last.", D.generation);
	idn_prom_one_u64(&p, "idnd_plan_commits_total", IDN_PROM_COUNTER,
			 "Plan generations committed to the dataplane.", D.commits);
	idn_prom_one_u64(&p, "idnd_solves_total", IDN_PROM_COUNTER, "Placement solves.", D.solves);
	idn_prom_one_u64(&p, "idnd_nodes_down_total", IDN_PROM_COUNTER,
			 "Nodes declared down (missed heartbeats).", D.nodes_down);
	idn_prom_one_f64(&p, "idnd_last_solve_seconds", IDN_PROM_GAUGE,
			 "Duration of the last solve.", D.last_solve_s);
	idn_prom_one_f64(&p, "idnd_last_commit_seconds", IDN_PROM_GAUGE,
			 "Duration of the last plan commit.", D.last_commit_ms / 1000);
	idn_prom_one_u64(&p, "idnd_loop_solves_total", IDN_PROM_COUNTER,
			 "Solves started by the closed loop.", D.loop_solves);
	idn_prom_one_u64(&p, "idnd_loop_scale_out_total", IDN_PROM_COUNTER,
			 "Closed-loop demand raises (unmet demand).", D.loop_out);
	idn_prom_one_u64(&p, "idnd_loop_moves_total", IDN_PROM_COUNTER,
			 "Closed-loop demand changes (served demand moved).", D.loop_move);
	idn_prom_one_u64(&p, "idnd_loop_scale_back_total", IDN_PROM_COUNTER,
			 "Closed-loop demand releases (idle capabilities).", D.loop_back);
	idn_prom_one_u64(&p, "idnd_activation_misses_total", IDN_PROM_COUNTER,
			 "Demand misses heard from idn.ko (held requests).", D.act_misses);
	idn_prom_one_u64(&p, "idnd_activation_released_total", IDN_PROM_COUNTER,
			 "Held requests released after activation.", D.act_released);
	idn_prom_one_u64(&p, "idnd_activation_rejected_total", IDN_PROM_COUNTER,
			 "Held requests rejected.", D.act_rejected);
	idn_prom_one_u64(&p, "idnd_leader", IDN_PROM_GAUGE,
			 "This replica leads (1), or follows in distributed mode (0).",
			 !D.etcd || D.leader);
	idn_prom_one_u64(&p, "idnd_leader_takeovers_total", IDN_PROM_COUNTER,
			 "Times this replica took the leadership.", D.takeovers);
	for (size_t k = 0; k < sizeof(node_g) / sizeof(node_g[0]); k++) {
		idn_prom_family(&p, node_g[k].name, IDN_PROM_GAUGE, node_g[k].help);
		for (int j = 0; j < IDN_MAX_NODES; j++) {
			const struct d_node *dn = &D.nodes[j];
			const char *fp = (const char *)dn + node_g[k].off;
			double v = k == 0 ? *(const bool *)fp : *(const uint32_t *)fp;

			if (!dn->used)
				continue;
			snprintf(id, sizeof(id), "%u", dn->id);
			idn_prom_f64(&p, NULL, k >= 3 ? v / 1000 : v, "node", id, NULL);
		}
	}
	idnd_orders_metrics(&p);	/* orders.c: load/evict orders to agents */
	idnd_state_metrics(&p);		/* state.c: state summaries, self-check */
	idnd_mig_metrics(&p);		/* migrate.c: decisions */
	idnd_fed_metrics(&p);		/* fed.c: summaries, peers, usage */
	idnd_ident_metrics(&p);		/* ident.c: enrolment, refusals */
	idnd_quota_metrics(&p);		/* quota.c: per-principal quotas, write rate */
	if (idn_prom_end(&p))
		pr_warn("idnd: /metrics: %s\n", p.why);
	fclose(f);
	ret = send_text(c, 200, "text/plain; version=0.0.4", out ? out : "");
	free(out);
	return ret;
}

/*
 * Who a request authenticates as, for the per-principal quotas and write
 * rate (quota.c): the client certificate's CN, the client's address under
 * --insecure.
 */
static const char *principal_of(struct MHD_Connection *c, const struct idn_peer *peer,
				char *who, size_t len)
{
	const union MHD_ConnectionInfo *ci =
		MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	const struct sockaddr *sa = ci ? ci->client_addr : NULL;

	if (peer->role != IDN_ROLE_PLAIN) {
		/* printable ASCII only: it is stored as the owner and read back
		 * by the strict parser (a CN's other bytes become '?') */
		snprintf(who, len, "%s", peer->name);
		for (char *p = who; *p; p++)
			if (*p < 0x20 || *p > 0x7e)
				*p = '?';
		return who;
	}
	snprintf(who, len, "?");
	if (sa && sa->sa_family == AF_INET)
		inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, who, len);
	else if (sa && sa->sa_family == AF_INET6)
		inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, who, len);
	return who;
}

/*
 * A principal quota was hit (idnd -Q principal-caps, principal-policies):
 * 507 naming the principal and the quota, counted, and a log line at most
 * once a second. The handler's audit line records it (status 507, who).
 */
static enum MHD_Result principal_refused(struct MHD_Connection *c, const char *who,
					 const char *what, int held, int max, const char *knob)
{
	static double last[2];		/* per quota: caps, policies */
	static unsigned long n[2];
	int k = !strcmp(knob, "principal-policies");
	double now = idnd_now();

	idnd_quota_refused_count(k);
	n[k]++;
	if (now - last[k] >= 1) {
		pr_warn("API: principal quota: %s holds %d %s, %lu request(s) refused "
			"(idnd -Q %s=N)\n", who, held, what, n[k], knob);
		last[k] = now;
		n[k] = 0;
	}
	return send_err(c, 507, "principal quota: %s holds %d %s, at most %d per principal "
			"(idnd -Q %s=N)", who, held, what, max, knob);
}

/*
 * A registry quota was hit (idnd -Q): 507 naming the quota, and a log line
 * at most once a second (a flood must not flood the log as well).
 */
static enum MHD_Result quota_refused(struct MHD_Connection *c, const char *what, int max,
				     const char *knob)
{
	static double last[3];		/* per quota: caps, nodes, policies */
	static unsigned long n[3];
	int k = knob[0] == 'c' ? 0 : knob[0] == 'n' ? 1 : 2;
	double now = idnd_now();

	n[k]++;
	if (now - last[k] >= 1) {
		pr_warn("API: registry quota: %d %s reached, %lu request(s) refused "
			"(idnd -Q %s=N)\n", max, what, n[k], knob);
		last[k] = now;
		n[k] = 0;
	}
	return send_err(c, 507, "registry quota: at most %d %s (idnd -Q %s=N)", max, what, knob);
}

/*
 * A capability version: the descriptor, with an optional signed manifest
 * ("manifest", checked by signed.c against the trusted publishers; taken
 * out before the descriptor's strict parse). A revoked version, a bad or
 * untrusted signature are refused; an accepted version joins the label's
 * history (what a revocation rolls back to).
 */
static enum MHD_Result post_cap(struct MHD_Connection *c, json_object *o, const char *who)
{
	char err[512];
	struct d_cap cap, *old;
	json_object *man = NULL;
	enum MHD_Result ret;
	bool was, reload;
	int e;

	if (json_object_object_get_ex(o, "manifest", &man)) {
		json_object_get(man);
		json_object_object_del(o, "manifest");
	}
	if (idnd_cap_from_json(o, &cap, err, sizeof(err))) {
		ret = send_err(c, 400, "%s", err);
		goto out;
	}
	if (cap.parent && !idnd_cap_find(cap.parent)) {
		ret = send_err(c, 422, "lineage: parent capability " IDN_CAP_FMT
			       " is not registered", IDN_CAP_ARG(cap.parent));
		goto out;
	}
	old = idnd_cap_find(cap.label);
	e = idnd_sig_admit(&cap, man, err, sizeof(err));
	if (e) {
		ret = send_err(c, e, "%s", err);
		goto out;
	}
	if (old && cap.version < old->version) {
		pr_warn("API: capability %u/%u version %u refused: older than the registered %u "
			"(a rollback is a revocation: idnctl cap revoke)\n", cap.label >> 8,
			cap.label & 0xff, cap.version, old->version);
		ret = send_err(c, 409, "version %u is older than the registered %u",
			       cap.version, old->version);
		goto out;
	}
	if (!old && D.n_caps >= idnd_limits.max_caps) {
		ret = quota_refused(c, "capabilities", idnd_limits.max_caps, "caps");
		goto out;
	}
	if (!old && idnd_limits.principal_caps &&
	    (e = idnd_quota_caps_of(who)) >= idnd_limits.principal_caps) {
		ret = principal_refused(c, who, "capabilities", e, idnd_limits.principal_caps,
					"principal-caps");
		goto out;
	}
	/* its owner: who created it (an update keeps the creator) */
	snprintf(cap.owner, sizeof(cap.owner), "%s", old ? old->owner : who);
	e = idnd_store_cap(&cap);
	if (!e)
		e = idnd_sig_record(&cap, man);
	if (e) {
		ret = send_err(c, 500, "store: %s", idnd_store_err());
		goto out;
	}
	was = old && (old->sig != cap.sig || old->version != cap.version);
	/* another artifact for a placed capability: its nodes load it */
	reload = old && (strcmp(old->artifact, cap.artifact) || old->sig != cap.sig ||
			 memcmp(old->sha256, cap.sha256, 32));
	e = idnd_cap_put(&cap);
	if (e) {
		ret = send_err(c, 500, "registry: %s", strerror(-e));
		goto out;
	}
	idnd_dist_cap(idnd_cap_find(cap.label));
	if (reload)
		idnd_orders_reload(cap.label);
	if (was && (D.have_maps || D.etcd))
		idnd_compile();	/* the version's signature decides policy plans */
	ret = send_json(c, old ? 200 : 201, idnd_cap_to_json(idnd_cap_find(cap.label), true));
out:
	json_object_put(man);
	return ret;
}

/*
 * Where idnd will send this node's orders: its locator, a wildcard (the
 * locator then), or loopback when the registration itself came from
 * loopback (a co-located agent). Never another host: a registration
 * must not aim idnd's requests at an arbitrary address.
 */
static const char *mgmt_why(struct MHD_Connection *c, const struct d_node *n)
{
	const union MHD_ConnectionInfo *ci =
		MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	const struct sockaddr *sa = ci ? ci->client_addr : NULL;
	char host[48];
	size_t hl;
	bool local;

	if (!n->mgmt[0])
		return NULL;
	hl = strrchr(n->mgmt, ':') - n->mgmt;
	memcpy(host, n->mgmt, hl);
	host[hl] = 0;
	if (!strcmp(host, "0.0.0.0") || !strcmp(host, "[::]"))
		return NULL;
	if ((n->addr4[0] && !strcmp(host, n->addr4)) ||
	    (n->addr6[0] && host[0] == '[' && hl == strlen(n->addr6) + 2 &&
	     !strncmp(host + 1, n->addr6, hl - 2)))
		return NULL;
	local = sa && ((sa->sa_family == AF_INET &&
			(ntohl(((const struct sockaddr_in *)sa)->sin_addr.s_addr) >> 24) == 127) ||
		       (sa->sa_family == AF_INET6 &&
			IN6_IS_ADDR_LOOPBACK(&((const struct sockaddr_in6 *)sa)->sin6_addr)));
	if ((!strncmp(host, "127.", 4) || !strcmp(host, "[::1]")) && local)
		return NULL;
	return "field \"mgmt\": the node's locator, a wildcard, or loopback (from a "
	       "co-located agent) expected";
}

static enum MHD_Result post_node(struct MHD_Connection *c, json_object *o, const struct req *rq)
{
	struct ident_grant g;
	unsigned int code;
	json_object *reply;
	char err[256];
	struct d_node n;
	bool existed;

	/* ident.c: who is asking, and what trust it has (never the body's) */
	code = idnd_ident_register(c, rq->buf, rq->len, o, &g, err, sizeof(err));
	if (code)
		return send_err(c, code, "%s", err);
	if (json_object_object_get_ex(o, "drain", NULL))	/* the operator's, not the node's */
		return send_err(c, 400, "field \"drain\": set by POST /v1/nodes/ID/drain "
				"(admin), not by a registration");
	if (idnd_node_from_json(o, &n, err, sizeof(err)))
		return send_err(c, 400, "%s", err);
	if (idnd_fed_reserved(n.id))	/* fed.c: the peers' ingress entries */
		return send_err(c, 400, "node ids %d..%d are reserved for federation peers",
				IDND_PEER_NODE0, IDN_MAX_NODES - 1);
	n.trust = g.trust;
	n.confidential = g.confidential;
	if (mgmt_why(c, &n)) {
		pr_warn("API: node %u registration refused: management address %s is not its "
			"own\n", n.id, n.mgmt);
		return send_err(c, 400, "%s", mgmt_why(c, &n));
	}
	if (!D.nodes[n.id].used) {
		int used = 0;

		for (int j = 0; j < IDN_MAX_NODES; j++)
			used += D.nodes[j].used;
		if (used >= idnd_limits.max_nodes)
			return quota_refused(c, "nodes", idnd_limits.max_nodes, "nodes");
	}
	/* a drained node that registers again stays drained (drains/ID: etcd) */
	n.drain = (D.nodes[n.id].used && D.nodes[n.id].drain) || idnd_dist_drained(n.id);
	if (idnd_store_node(&n))
		return send_err(c, 500, "store: %s", idnd_store_err());
	existed = D.nodes[n.id].used;
	if (existed) {	/* keep live state */
		struct d_node *old = &D.nodes[n.id];

		n.heartbeats = old->heartbeats;
		n.queue = old->queue;
		n.pending = old->pending;
		n.load = old->load;
		n.kv_use = old->kv_use;
		n.lease = old->lease;
	}
	n.up = true;
	n.last_hb = idnd_now();
	D.nodes[n.id] = n;
	idnd_orders_node(n.id);	/* a restarted agent gets its placement again */
	idnd_dist_node(&D.nodes[n.id]);
	if (D.have_maps) {
		idn_nexthop_clear(&D.maps, n.id, 0);
		if (idnd_node_push(&n))
			return send_err(c, 500, "dataplane: %s", idn_errmsg());
	}
	if (D.have_maps || D.etcd)
		idnd_compile();
	reply = idnd_node_to_json(&n, true);
	idnd_ident_registered(n.id, &g, reply);	/* a new telemetry key, sealed to the node */
	return send_json(c, existed ? 200 : 201, reply);
}

/*
 * POST /v1/nodes/ID/drain and /undrain (admin): the operator's drain,
 * stored with the node (SQLite; in etcd drains/ID, and nodes/ID where idnd
 * writes it: an agent with --etcd owns its nodes/ID key),
 * pushed to the router's node entry as health drain (its established
 * flows are kept, new ones go elsewhere); the solver places nothing new
 * there and, with --migrate, its sessions' state moves off it
 * (migrate.c). The body: none or {}.
 */
static enum MHD_Result post_drain(struct MHD_Connection *c, uint32_t id, bool on, json_object *o)
{
	struct d_node *n = &D.nodes[id];
	bool was = n->drain;

	if (json_object_object_length(o)) {
		json_object_object_foreach(o, key, val) {
			(void)val;
			return send_err(c, 400, "%s: unknown field \"%.64s\" (no body, or {}, "
					"expected)", on ? "drain" : "undrain", key);
		}
	}
	if (!n->used)
		return send_err(c, 404, "node %u is not registered", id);
	n->drain = on;
	/* etcd first (drains/ID, the leader's): a drain watchers cannot see is none */
	if (idnd_dist_drain(n)) {
		n->drain = was;
		return send_err(c, 503, "etcd: %s", idn_errmsg());
	}
	if (idnd_store_node(n)) {
		n->drain = was;
		idnd_dist_drain(n);	/* etcd as it was */
		return send_err(c, 500, "store: %s", idnd_store_err());
	}
	idnd_dist_node(n);
	if (D.have_maps && idnd_node_push(n))
		return send_err(c, 500, "dataplane: %s", idn_errmsg());
	if (was != on)
		pr_info("API: node %u %s\n", id, on ? "draining: no new flows; its established "
			"ones are kept; its state moves off it (with --migrate)" :
			"undrained: it takes new flows again");
	return send_json(c, 200, idnd_node_to_json(n, true));
}

static enum MHD_Result heartbeat(struct MHD_Connection *c, uint32_t id, json_object *o,
				 const struct req *rq, const char *url)
{
	static const char *const ok[] = { "load", "queue", "pending_tokens", "kv_use", "resident",
					   "state", NULL };
	struct d_node *n = &D.nodes[id];
	uint32_t load = n->load, q = n->queue, pend = n->pending, kv = n->kv_use;
	json_object *v, *res, *st = NULL;
	bool was_up = n->up;

	char ierr[256];
	unsigned int icode;

	if (!n->used)
		return send_err(c, 404, "node %u is not registered", id);
	icode = idnd_ident_heartbeat(c, url, id, rq->buf, rq->len, ierr, sizeof(ierr));
	if (icode)
		return send_err(c, icode, "%s", ierr);
	json_object_object_foreach(o, key, val) {
		bool found = false;

		(void)val;
		for (int i = 0; ok[i]; i++)
			found |= !strcmp(key, ok[i]);
		if (!found)
			return send_err(c, 400, "heartbeat: unknown field \"%.64s\"", key);
	}
#define HBU(k, var, max) do {							\
	if (json_object_object_get_ex(o, k, &v)) {				\
		int64_t x = json_object_get_int64(v);				\
		if (!json_object_is_type(v, json_type_int) || x < 0 || x > (max))\
			return send_err(c, 400, "field \"%s\": integer 0..%lld expected", k, \
					(long long)(max));			\
		var = x;							\
	}									\
} while (0)
	HBU("load", load, 1000);
	HBU("queue", q, 100000000);
	HBU("pending_tokens", pend, 4000000000LL);
	HBU("kv_use", kv, 1000);
	if (json_object_object_get_ex(o, "resident", &res)) {
		if (!json_object_is_type(res, json_type_array))
			return send_err(c, 400, "field \"resident\": array of capability labels expected");
		for (size_t i = 0; i < json_object_array_length(res); i++) {
			json_object *e = json_object_array_get_idx(res, i);

			if (!json_object_is_type(e, json_type_int) ||
			    json_object_get_int64(e) < 0 || json_object_get_int64(e) > UINT32_MAX)
				return send_err(c, 400, "field \"resident\": array of capability labels expected");
		}
	}
	if (json_object_object_get_ex(o, "state", &v)) {	/* state.c */
		char serr[256];

		st = idnd_state_parse(v, serr, sizeof(serr));
		if (!st)
			return send_err(c, 400, "%s", serr);
	}
	n->load = load;
	n->queue = q;
	n->pending = pend;
	n->kv_use = kv;
	n->last_hb = idnd_now();
	n->heartbeats++;
	n->up = true;
	if (st) {
		idnd_state_set(id, st);
		idnd_state_seed();	/* popular prefix roots -> router affinity */
	}
	idnd_dist_heartbeat(n);
	if (D.have_maps)
		idnd_node_push(n);
	if ((D.have_maps || D.etcd) && !was_up)
		idnd_compile();	/* back in the plans */
	return send_json(c, 200, json_object_new_object());
}

static enum MHD_Result post_demand(struct MHD_Connection *c, json_object *o)
{
	static const char *const ok[] = { "cap", "region", "rps", NULL };
	json_object *v;
	struct d_cap *cap;
	int64_t label, region;
	double rps;

	json_object_object_foreach(o, key, val) {
		bool found = false;

		(void)val;
		for (int i = 0; ok[i]; i++)
			found |= !strcmp(key, ok[i]);
		if (!found)
			return send_err(c, 400, "demand: unknown field \"%.64s\"", key);
	}
	if (!json_object_object_get_ex(o, "cap", &v) || !json_object_is_type(v, json_type_int))
		return send_err(c, 400, "field \"cap\": capability label (integer) required");
	label = json_object_get_int64(v);
	if (!json_object_object_get_ex(o, "region", &v) || !json_object_is_type(v, json_type_int))
		return send_err(c, 400, "field \"region\": integer 0..%d required", IDND_REGIONS - 1);
	region = json_object_get_int64(v);
	if (region < 0 || region >= IDND_REGIONS)
		return send_err(c, 400, "field \"region\": out of range 0..%d", IDND_REGIONS - 1);
	if (!json_object_object_get_ex(o, "rps", &v) ||
	    !(json_object_is_type(v, json_type_int) || json_object_is_type(v, json_type_double)))
		return send_err(c, 400, "field \"rps\": number required");
	rps = json_object_get_double(v);
	if (!(rps >= 0 && rps <= 1e9))
		return send_err(c, 400, "field \"rps\": out of range 0..1e9");
	cap = label > 0 && label <= UINT32_MAX ? idnd_cap_find(label) : NULL;
	if (!cap)
		return send_err(c, 404, "no capability %lld", (long long)label);
	if (idnd_store_demand(cap->label, region, rps))
		return send_err(c, 500, "store: %s", idnd_store_err());
	cap->demand[region] = rps;
	idnd_dist_cap(cap);
	return send_json(c, 200, idnd_cap_to_json(cap, true));
}

static enum MHD_Result post_policy(struct MHD_Connection *c, json_object *o, const char *who)
{
	const struct d_policy *old;
	struct d_policy pol;
	char err[256];
	bool existed;
	int held;

	if (idnd_policy_from_json(o, &pol, err, sizeof(err)))
		return send_err(c, 400, "%s", err);
	old = idnd_policy_get(pol.id);
	if (!old && idnd_policy_count() >= idnd_limits.max_policies)
		return quota_refused(c, "policy classes", idnd_limits.max_policies, "policies");
	if (!old && idnd_limits.principal_policies &&
	    (held = idnd_quota_policies_of(who)) >= idnd_limits.principal_policies)
		return principal_refused(c, who, "policy classes", held,
					 idnd_limits.principal_policies, "principal-policies");
	snprintf(pol.owner, sizeof(pol.owner), "%s", old ? old->owner : who);
	if (idnd_store_policy(&pol))
		return send_err(c, 500, "store: %s", idnd_store_err());
	existed = idnd_policy_get(pol.id);
	idnd_policy_put(&pol);
	idnd_dist_policy(&pol);
	if (D.have_maps || D.etcd)
		idnd_compile();
	return send_json(c, existed ? 200 : 201, idnd_policy_to_json(&pol));
}

static json_object *placement_json(void)
{
	json_object *a = json_object_new_array();

	for (int i = 0; i < D.n_place; i++) {
		json_object *e = json_object_new_object();

		json_object_object_add(e, "cap", json_object_new_int64(D.place[i].cap));
		json_object_object_add(e, "node", json_object_new_int64(D.place[i].node));
		json_object_array_add(a, e);
	}
	return a;
}

static enum MHD_Result solve(struct MHD_Connection *c, json_object *o)
{
	json_object *v, *res, *a;
	bool dry = false;
	struct pl_inst in;
	struct pl_sol sol;
	struct pl_gen gen = { .seed = 42, .policy_frac = 0.3 }, *g = NULL;
	char err[256];
	int e, changed;

	json_object_object_foreach(o, key, val) {
		(void)val;
		if (strcmp(key, "dry_run") && (strcmp(key, "generate") || !idnd_limits.bench_gen))
			return send_err(c, 400, "solve: unknown field \"%.64s\"", key);
	}
	if (json_object_object_get_ex(o, "dry_run", &v)) {
		if (!json_object_is_type(v, json_type_boolean))
			return send_err(c, 400, "field \"dry_run\": expected true or false");
		dry = json_object_get_boolean(v);
	}
	if (json_object_object_get_ex(o, "generate", &v)) {	/* idnd -G: benchmarks */
		json_object *x;
		int64_t caps, nodes, regions;

		if (!dry || !json_object_is_type(v, json_type_object) ||
		    !json_object_object_get_ex(v, "caps", &x) ||
		    (caps = json_object_get_int64(x)) < 1 || caps > 10000 ||
		    !json_object_object_get_ex(v, "nodes", &x) ||
		    (nodes = json_object_get_int64(x)) < 1 || nodes > 10000 ||
		    !json_object_object_get_ex(v, "regions", &x) ||
		    (regions = json_object_get_int64(x)) < 1 || regions > 64)
			return send_err(c, 400, "field \"generate\": {\"caps\": 1..10000, "
					"\"nodes\": 1..10000, \"regions\": 1..64} with dry_run");
		gen.n_caps = caps;
		gen.n_nodes = nodes;
		gen.n_regions = regions;
		g = &gen;
	}
	e = idnd_solve_unlocked(&sol, &in, g, false, err, sizeof(err));
	if (e == -EBUSY)
		return send_err(c, 503, "%s", err);
	if (e)
		return send_err(c, 500, "%s", err);
	D.solves++;
	D.last_solve_s = sol.seconds;
	res = json_object_new_object();
	a = json_object_new_array();
	for (int t = 0; t < sol.n; t++) {
		json_object *x = json_object_new_object();

		json_object_object_add(x, "cap", json_object_new_int64(in.caps[sol.x[t].cap].id));
		json_object_object_add(x, "node", json_object_new_int64(in.nodes[sol.x[t].node].id));
		json_object_array_add(a, x);
	}
	{
		struct pl_sol prev = { .x = (struct pl_pair *)in.prev, .n = in.n_prev };

		changed = pl_sol_diff(&prev, &sol);
		if (!dry)
			D.place_changes += changed;
	}
	json_object_object_add(res, "dry_run", json_object_new_boolean(dry));
	json_object_object_add(res, "placement", a);
	json_object_object_add(res, "cost", idnd_jnum(sol.cost));
	json_object_object_add(res, "latency", idnd_jnum(sol.lat));
	json_object_object_add(res, "network", idnd_jnum(sol.net));
	json_object_object_add(res, "deploy", idnd_jnum(sol.deploy));
	json_object_object_add(res, "risk", idnd_jnum(sol.risk));
	json_object_object_add(res, "unserved_rps", idnd_jnum(sol.unserved_demand));
	json_object_object_add(res, "changed", json_object_new_int(changed));
	json_object_object_add(res, "seconds", idnd_jnum(sol.seconds));
	e = 0;
	if (!dry) {
		e = idnd_place_set(&in, &sol);
		if (!e)
			e = idnd_store_place() ? -EIO : 0;
		if (!e) {
			idnd_dist_place();
			e = idnd_compile();
		}
		json_object_object_add(res, "generation", json_object_new_int64(D.generation));
	}
	free((void *)in.prev);
	pl_inst_free(&in);
	pl_sol_free(&sol);
	if (e) {
		json_object_put(res);
		return send_err(c, 500, "apply failed: %s", idn_errmsg()[0] ? idn_errmsg() :
				idnd_store_err());
	}
	return send_json(c, 200, res);
}

/*
 * The state a stage 2 question is about (GET /v1/placement/stage2):
 * ?scope=public (the default), or tenant or session with &tenant=N
 * (1..65535 for tenant scope), &session=HEX (session scope), &root=HEX
 * (its prompt's first block, the transfer the pick is told to expect) and
 * &from=NODE (the prefill node that holds it: the scope rule is
 * relative to it; a node certificate speaks for its own ID only).
 * Hardware-bound state never goes two-stage. 0, or the HTTP code with err.
 */
struct stage2_scope {
	enum mig_scope scope;
	uint32_t tenant, from;
	uint64_t session, root;
};

static unsigned int stage2_scope_of(struct MHD_Connection *c, struct stage2_scope *sq,
				    char *err, size_t errlen)
{
	const char *sc = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "scope");
	const char *f[4] = { "tenant", "session", "root", "from" };
	unsigned long long v[4] = { 0 };
	const struct idn_peer *peer = idn_http_peer(c, &idnd_tls);

	memset(sq, 0, sizeof(*sq));
	if (!sc || !*sc || !strcmp(sc, "public"))
		return 0;
	if (!strcmp(sc, "hardware"))
		return snprintf(err, errlen, "hardware-bound state never goes two-stage"), 400;
	if (strcmp(sc, "tenant") && strcmp(sc, "session"))
		return snprintf(err, errlen, "query parameter \"scope\": public, tenant or "
				"session"), 400;
	sq->scope = !strcmp(sc, "tenant") ? MIG_TENANT : MIG_SESSION;
	for (int i = 0; i < 4; i++) {
		const char *x = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, f[i]);
		char *end;

		if (!x || !*x)
			continue;
		errno = 0;
		v[i] = strtoull(x, &end, i == 1 || i == 2 ? 16 : 10);
		if (errno || *end || *x == '-' || *x == '+')
			return snprintf(err, errlen, "query parameter \"%s\": %s", f[i],
					i == 1 || i == 2 ? "hex" : "a number"), 400;
	}
	if (v[0] > 65535 || (sq->scope == MIG_TENANT && !v[0]))
		return snprintf(err, errlen, "query parameter \"tenant\": 1..65535 for %s scope",
				sc), 400;
	if (sq->scope == MIG_SESSION && !v[1])
		return snprintf(err, errlen, "query parameter \"session\": 16 hex digits, "
				"not 0, for session scope"), 400;
	if (!v[2])
		return snprintf(err, errlen, "query parameter \"root\": the prompt's first "
				"block, 16 hex digits, for %s scope", sc), 400;
	if (v[3] >= IDN_MAX_NODES || !D.nodes[v[3]].used)
		return snprintf(err, errlen, "query parameter \"from\": the registered node "
				"that holds the state, for %s scope", sc), 400;
	if (peer->role == IDN_ROLE_NODE && peer->node != v[3])
		return snprintf(err, errlen, "node certificate %s speaks for node %u only",
				peer->name, peer->node), 403;
	sq->tenant = v[0];
	sq->session = v[1];
	sq->root = v[2];
	sq->from = v[3];
	return 0;
}

static enum MHD_Result route(struct MHD_Connection *c, const char *url, const char *m,
			     struct req *rq)
{
	bool get = !strcmp(m, "GET"), post = !strcmp(m, "POST"), del = !strcmp(m, "DELETE");
	char err[256], who[IDND_OWNER_MAX];
	const char *rest;
	json_object *o = NULL;
	uint32_t id;
	enum MHD_Result ret;

	if (rq->too_big)
		return send_err(c, 413, "request body larger than %d bytes", IDND_BODY_MAX);
	if (D.etcd && !D.leader && (post || del))
		return send_err(c, 503, "replica %s is not the leader: write to the leader",
				D.replica);
	if (!strcmp(url, "/metrics") && get)
		return metrics(c);
	if (!strcmp(url, "/v1/status") && get)
		return send_json(c, 200, status_json());
	if (idnd_sig_path(url)) {	/* signed.c: publishers, revocations, versions */
		unsigned int code = 500;
		json_object *r;

		if (post) {
			o = parse_body(rq, false, err, sizeof(err));
			if (!o)
				return send_err(c, 400, "%s", err);
		}
		r = idnd_sig_api(m, url, o, &code);
		json_object_put(o);
		return send_json(c, code, r);
	}
	if (idnd_fed_path(url)) {	/* fed.c: peers, summaries, exports, usage */
		const struct idn_peer *who = idn_http_peer(c, &idnd_tls);
		unsigned int code = 500;
		json_object *r;

		r = idnd_fed_api(m, url, MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND,
								     "peer"),
				 who->name, who->role == IDN_ROLE_PEER, rq->buf, rq->len, &code);
		return send_json(c, code, r);
	}
	if (!strcmp(url, "/v1/caps") && get) {
		json_object *a = json_object_new_array();

		for (int i = 0; i < D.n_caps; i++)
			json_object_array_add(a, idnd_cap_to_json(&D.caps[i], true));
		return send_json(c, 200, a);
	}
	if (!strcmp(url, "/v1/nodes") && get) {
		json_object *a = json_object_new_array();

		for (int j = 0; j < IDN_MAX_NODES; j++)
			if (D.nodes[j].used)
				json_object_array_add(a, idnd_node_to_json(&D.nodes[j], true));
		return send_json(c, 200, a);
	}
	if (!strcmp(url, "/v1/placement") && get)
		return send_json(c, 200, placement_json());
	if (!strcmp(url, "/v1/policies") && get) {
		json_object *a = json_object_new_array();

		for (uint32_t p = 0; p < IDND_MAX_POLICIES; p++)
			if (idnd_policy_get(p))
				json_object_array_add(a, idnd_policy_to_json(idnd_policy_get(p)));
		return send_json(c, 200, a);
	}
	if ((get || del) && path_id(url, "/v1/policies/", UINT32_MAX, &id, &rest) && !*rest) {
		if (!idnd_policy_get(id))
			return send_err(c, 404, "no policy class %u", id);
		if (get)
			return send_json(c, 200, idnd_policy_to_json(idnd_policy_get(id)));
		if (idnd_store_policy_del(id))
			return send_err(c, 500, "store: %s", idnd_store_err());
		idnd_policy_del(id);
		idnd_dist_policy_del(id);
		if (D.have_maps || D.etcd)
			idnd_compile();
		return send_json(c, 200, json_object_new_object());
	}
	if (!strcmp(url, "/v1/placement/explain") && get) {
		const char *cap = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "cap");
		char *end;
		unsigned long v;

		if (!cap || !*cap)
			return send_err(c, 400, "query parameter \"cap\" (label) required");
		errno = 0;
		v = strtoul(cap, &end, 0);
		if (errno || *end || v > UINT32_MAX)
			return send_err(c, 400, "query parameter \"cap\": not a capability label");
		o = idnd_explain(v, err, sizeof(err));
		return o ? send_json(c, 200, o) : send_err(c, 404, "%s", err);
	}
	if (!strcmp(url, "/v1/placement/stage2") && get) {
		/*
		 * The second stage of a P/D capability (idnd_pd_stage2()): the
		 * decode candidates and what J needs of each, for the prefill
		 * node's agent; with where to push the KV and send the request.
		 * The capability is ?cap=LABEL, or the one the request's VIP
		 * serves (?vip=ADDR&port=P[&model=NAME], idnd_vip_cap()).
		 */
		const char *cap = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "cap");
		const char *vs = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "vip");
		const char *ps = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "port");
		const char *ms = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "model");
		char vwhy[200] = "", serr[200];
		struct stage2_scope sq;
		struct idn_plan pl;
		json_object *a;
		char *end;
		unsigned long v;
		int e, nref = 0;

		if (cap && *cap) {
			if (vs)
				return send_err(c, 400, "query parameters \"cap\" and \"vip\": "
						"one or the other");
			errno = 0;
			v = strtoul(cap, &end, 0);
			if (errno || *end || v > UINT32_MAX)
				return send_err(c, 400, "query parameter \"cap\": not a capability "
						"label");
		} else if (vs && *vs) {
			struct idn_addr va = { 0 };
			unsigned long port;
			uint32_t lab;

			if (inet_pton(AF_INET, vs, &va.addr[0]) == 1)
				va.family = IDN_AF_INET;
			else if (inet_pton(AF_INET6, vs, va.addr) == 1)
				va.family = IDN_AF_INET6;
			else
				return send_err(c, 400, "query parameter \"vip\": not an address");
			errno = 0;
			port = ps ? strtoul(ps, &end, 10) : 0;
			if (!ps || !*ps || errno || *end || !port || port > 65535)
				return send_err(c, 400, "query parameter \"port\": 1..65535 "
						"required with \"vip\"");
			if (ms && strlen(ms) > 256)
				return send_err(c, 400, "query parameter \"model\": longer than 256");
			e = idnd_vip_cap(&va, port, ms, &lab, vwhy, sizeof(vwhy));
			if (e == -ENOENT)
				return send_err(c, 404, "%s", vwhy);
			if (e)
				return send_err(c, 409, "%s", vwhy);
			v = lab;
		} else {
			return send_err(c, 400, "query parameter \"cap\" (label), or \"vip\" and "
					"\"port\", required");
		}
		e = stage2_scope_of(c, &sq, serr, sizeof(serr));
		if (e)
			return send_err(c, e, "%s", serr);
		e = idnd_pd_stage2(v, NULL, &pl);
		if (e == -ENOENT)
			return send_err(c, 404, "capability %lu is not a two-stage (\"pd\") one%s%s",
					v, vwhy[0] ? ": " : "", vwhy);
		if (e)
			return send_err(c, 500, "stage 2: %s", strerror(-e));
		o = json_object_new_object();
		a = json_object_new_array();
		json_object_object_add(o, "cap", json_object_new_int64(v));
		if (vwhy[0])
			json_object_object_add(o, "resolved", json_object_new_string(vwhy));
		json_object_object_add(o, "generation", json_object_new_int64(D.generation));
		if (sq.scope != MIG_PUBLIC) {
			/* tenant or session state: only decode nodes that may hold it */
			json_object *ref = json_object_new_array();
			int k2 = 0;

			for (int k = 0; k < pl.n_cand; k++) {
				if (idnd_scope_ok(&D.nodes[sq.from], &D.nodes[pl.cand[k].node],
						  sq.scope))
					pl.cand[k2++] = pl.cand[k];
				else
					json_object_array_add(ref, json_object_new_int64(
						pl.cand[k].node));
			}
			nref = pl.n_cand - k2;
			pl.n_cand = k2;
			json_object_object_add(o, "scope", json_object_new_string(
				sq.scope == MIG_TENANT ? "tenant" : "session"));
			json_object_object_add(o, "scope_refused", ref);
		}
		for (int k = 0; k < pl.n_cand; k++) {
			const struct d_node *dn = &D.nodes[pl.cand[k].node];
			json_object *x = idnd_node_to_json(dn, true);

			json_object_object_add(x, "exec_us", json_object_new_int64(pl.cand[k].exec_us));
			json_object_array_add(a, x);
		}
		json_object_object_add(o, "candidates", a);
		{	/* the pick for this request (?token=HEX&size_class=N), by J */
			const char *ts = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND,
								    "token");
			const char *sc = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND,
								    "size_class");
			unsigned long long tok = 0;
			unsigned long scv = IDN_SIZE_NONE;
			struct idn_sel sel;

			if (ts && *ts) {
				errno = 0;
				tok = strtoull(ts, &end, 16);
				if (errno || *end) {
					json_object_put(o);
					return send_err(c, 400, "query parameter \"token\": hex");
				}
			}
			if (sc && *sc) {
				errno = 0;
				scv = strtoul(sc, &end, 10);
				if (errno || *end || scv > 15) {
					json_object_put(o);
					return send_err(c, 400, "query parameter \"size_class\": 0..15");
				}
			}
			if (!pl.n_cand && nref) {	/* none may hold the request's scope */
				json_object_object_add(o, "verdict", json_object_new_string("scope"));
				return send_json(c, 200, o);
			}
			e = idnd_pd_pick(v, &pl, tok, scv, &sel);
			if (e >= 0 && sel.node < IDN_MAX_NODES && sq.scope != MIG_PUBLIC) {
				/*
				 * The pick takes the blocks in the request's scope only
				 * as announced (its /v1/kv/expect, as a migration's
				 * destination): one round trip to it, outside D.lock.
				 */
				struct idnd_announce an;
				char aerr[256];
				int ae;

				idnd_announce_prep(&D.nodes[sel.node], sq.root, sq.scope, sq.tenant,
						   sq.session, &an);
				pthread_mutex_unlock(&D.lock);
				ae = idnd_announce(&an, 2000, aerr, sizeof(aerr));
				pthread_mutex_lock(&D.lock);
				if (ae) {
					char m[320];

					snprintf(m, sizeof(m), "node %u: %s", sel.node, aerr);
					json_object_object_add(o, "announce_error",
							       json_object_new_string(m));
					json_object_object_add(o, "verdict",
							       json_object_new_string("announce"));
					return send_json(c, 200, o);
				}
				json_object_object_add(o, "announced", json_object_new_boolean(1));
			}
			if (e >= 0 && sel.node < IDN_MAX_NODES) {
				json_object_object_add(o, "pick", json_object_new_int64(sel.node));
				json_object_object_add(o, "pick_j_us", json_object_new_int64(sel.cost));
			}
			json_object_object_add(o, "verdict", json_object_new_string(
				e >= 0 ? idn_name(&idn_verdict_names, e) : "error"));
		}
		return send_json(c, 200, o);
	}
	if (del && path_id(url, "/v1/caps/", UINT32_MAX, &id, &rest) && !*rest) {
		if (!idnd_cap_find(id))
			return send_err(c, 404, "no capability " IDN_CAP_FMT, IDN_CAP_ARG(id));
		if (idnd_store_cap_del(id))
			return send_err(c, 500, "store: %s", idnd_store_err());
		idnd_cap_del(id);
		idnd_dist_cap_del(id);
		idnd_dist_place();
		idnd_compile();
		return send_json(c, 200, json_object_new_object());
	}
	if (del && path_id(url, "/v1/nodes/", IDN_MAX_NODES - 1, &id, &rest) && !*rest) {
		struct d_node gone = { .id = id };
		int k = 0;

		if (!D.nodes[id].used)
			return send_err(c, 404, "node %u is not registered", id);
		if (idnd_store_node_del(id))
			return send_err(c, 500, "store: %s", idnd_store_err());
		idnd_dist_node_del(&D.nodes[id]);
		D.nodes[id] = gone;
		idnd_state_drop(id);
		for (int i = 0; i < D.n_place; i++)
			if (D.place[i].node != id)
				D.place[k++] = D.place[i];
		D.n_place = k;
		idnd_dist_place();
		if (D.have_maps || D.etcd)
			idnd_compile();
		if (D.have_maps)
			idnd_node_push(&gone);
		return send_json(c, 200, json_object_new_object());
	}
	if (!strncmp(url, "/v1/identities", 14) && (!url[14] || url[14] == '/')) {	/* ident.c */
		unsigned int code = idnd_ident_api(m, url, rq->buf, rq->len, &o, err, sizeof(err));

		return code < 300 ? send_json(c, code, o) : send_err(c, code, "%s", err);
	}
	if (get && !strcmp(url, "/v1/state"))	/* state.c */
		return send_json(c, 200, idnd_state_all());
	if (get && !strcmp(url, "/v1/migrations"))	/* migrate.c: the last decisions */
		return send_json(c, 200, idnd_mig_json());
	if (get && path_id(url, "/v1/nodes/", IDN_MAX_NODES - 1, &id, &rest) &&
	    !strcmp(rest, "/state")) {
		if (!D.nodes[id].used)
			return send_err(c, 404, "node %u is not registered", id);
		o = idnd_state_json(id);
		return o ? send_json(c, 200, o) :
			   send_err(c, 404, "node %u has reported no state", id);
	}
	if (!post) {
		bool known = !strcmp(url, "/v1/state") || !strcmp(url, "/v1/migrations") ||
			     !strcmp(url, "/v1/caps") || !strcmp(url, "/v1/nodes") ||
			     !strcmp(url, "/v1/demand") || !strcmp(url, "/v1/placement/solve") ||
			     !strncmp(url, "/v1/nodes/", 10) || !strncmp(url, "/v1/caps/", 9) ||
			     !strcmp(url, "/v1/status") || !strcmp(url, "/metrics") ||
			     !strncmp(url, "/v1/policies", 12) ||
			     !strncmp(url, "/v1/placement", 13);

		return known ? send_err(c, 405, "method %s not allowed on %s", m, url) :
			       send_err(c, 404, "no such endpoint: %s", url);
	}
	if (strcmp(url, "/v1/caps") && strcmp(url, "/v1/nodes") && strcmp(url, "/v1/demand") &&
	    strcmp(url, "/v1/placement/solve") && strcmp(url, "/v1/policies") &&
	    !(path_id(url, "/v1/nodes/", IDN_MAX_NODES - 1, &id, &rest) &&
	      (!strcmp(rest, "/heartbeat") || !strcmp(rest, "/pull") ||
	       !strcmp(rest, "/drain") || !strcmp(rest, "/undrain"))))
		return send_err(c, 404, "no such endpoint: %s", url);
	/* solve, drain, undrain: no body is {} */
	o = parse_body(rq, !strcmp(url, "/v1/placement/solve") ||
		       (path_id(url, "/v1/nodes/", IDN_MAX_NODES - 1, &id, &rest) &&
			(!strcmp(rest, "/drain") || !strcmp(rest, "/undrain"))),
		       err, sizeof(err));
	if (!o)
		return send_err(c, 400, "%s", err);
	principal_of(c, idn_http_peer(c, &idnd_tls), who, sizeof(who));
	if (!strcmp(url, "/v1/caps"))
		ret = post_cap(c, o, who);
	else if (!strcmp(url, "/v1/nodes"))
		ret = post_node(c, o, rq);
	else if (!strcmp(url, "/v1/demand"))
		ret = post_demand(c, o);
	else if (!strcmp(url, "/v1/placement/solve"))
		ret = solve(c, o);
	else if (!strcmp(url, "/v1/policies"))
		ret = post_policy(c, o, who);
	else if (!strcmp(rest, "/drain") || !strcmp(rest, "/undrain"))
		ret = post_drain(c, id, !strcmp(rest, "/drain"), o);
	else if (!strcmp(rest, "/pull")) {	/* migrate.c: pull on miss */
		json_object *a = NULL;
		unsigned int code = idnd_mig_pull(id, o, &a, err, sizeof(err));

		ret = code == 200 ? send_json(c, 200, a) : send_err(c, code, "%s", err);
	} else
		ret = heartbeat(c, id, o, rq, url);
	json_object_put(o);
	return ret;
}

/*
 * Who may call what (docs/security.md, "Transport and roles"): the first
 * entry that matches the method and path decides. In a path '#' stands
 * for a number, a trailing '*' for any rest. Status and metrics: any
 * role or the read-only token; other reads: routers, the controller and
 * admins; a node registers and heartbeats as itself only (its
 * certificate's CN node-ID, checked in handler()); every other change:
 * admin.
 */
#define R_ANY	(IDN_ROLE_BIT(IDN_ROLE_READONLY) | IDN_ROLE_BIT(IDN_ROLE_ROUTER) | \
		 IDN_ROLE_BIT(IDN_ROLE_NODE) | IDN_ROLE_BIT(IDN_ROLE_CONTROLLER) | \
		 IDN_ROLE_BIT(IDN_ROLE_ADMIN))
#define R_READ	(IDN_ROLE_BIT(IDN_ROLE_ROUTER) | IDN_ROLE_BIT(IDN_ROLE_CONTROLLER) | \
		 IDN_ROLE_BIT(IDN_ROLE_ADMIN))
#define R_NODE	(IDN_ROLE_BIT(IDN_ROLE_NODE) | IDN_ROLE_BIT(IDN_ROLE_ADMIN))
#define R_ADMIN	IDN_ROLE_BIT(IDN_ROLE_ADMIN)
#define R_PEER	(IDN_ROLE_BIT(IDN_ROLE_PEER) | IDN_ROLE_BIT(IDN_ROLE_ADMIN))

static const struct acl {
	const char *method, *path;
	unsigned int roles;
	const char *need;
} acl[] = {
	{ "GET", "/metrics", R_ANY, "any role" },
	{ "GET", "/v1/status", R_ANY, "any role" },
	{ "POST", "/v1/nodes", R_NODE, "node (itself) or admin" },
	{ "POST", "/v1/nodes/#/heartbeat", R_NODE, "node (itself) or admin" },
	{ "POST", "/v1/nodes/#/pull", R_NODE, "node (itself) or admin" },
	{ "GET", "/v1/fed/summary", R_PEER, "peer or admin" },
	{ "GET", "/v1/placement/stage2", R_READ | R_NODE, "node, router, controller or admin" },
	{ "POST", "/v1/fed/summary", R_PEER, "peer or admin" },
	{ "GET", "*", R_READ, "router, controller or admin" },
	{ "HEAD", "*", R_READ, "router, controller or admin" },
	{ "*", "*", R_ADMIN, "admin" },
};

static bool acl_match(const char *pat, const char *s)
{
	while (*pat) {
		if (*pat == '*' && !pat[1])
			return true;
		if (*pat == '#') {
			if (*s < '0' || *s > '9')
				return false;
			while (*s >= '0' && *s <= '9')
				s++;
			pat++;
			continue;
		}
		if (*pat++ != *s++)
			return false;
	}
	return !*s;
}

static const struct acl *acl_find(const char *method, const char *url)
{
	for (size_t i = 0; i < sizeof(acl) / sizeof(acl[0]); i++)
		if (acl_match(acl[i].method, method) && acl_match(acl[i].path, url))
			return &acl[i];
	return &acl[sizeof(acl) / sizeof(acl[0]) - 1];
}

/* Who is calling: the certificate's principal at the client's address,
 * "admin@127.0.0.1" (the address alone with --insecure). */
static const char *who_of(struct MHD_Connection *c, const struct idn_peer *peer, char *who,
			  size_t len)
{
	const union MHD_ConnectionInfo *ci =
		MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	char ip[INET6_ADDRSTRLEN] = "?";

	if (ci && ci->client_addr && ci->client_addr->sa_family == AF_INET)
		inet_ntop(AF_INET, &((struct sockaddr_in *)ci->client_addr)->sin_addr, ip,
			  sizeof(ip));
	else if (ci && ci->client_addr && ci->client_addr->sa_family == AF_INET6)
		inet_ntop(AF_INET6, &((struct sockaddr_in6 *)ci->client_addr)->sin6_addr, ip,
			  sizeof(ip));
	if (peer->role == IDN_ROLE_PLAIN)
		snprintf(who, len, "%s", ip);
	else
		snprintf(who, len, "%s@%s", peer->name, ip);
	return who;
}

/* One audit line (D.lock held), who as who_of(). */
static void audit(struct MHD_Connection *c, const struct idn_peer *peer, const char *method,
		  const char *url, unsigned int code, const char *body, size_t len)
{
	char who[INET6_ADDRSTRLEN + 100];

	idnd_audit(who_of(c, peer, who, sizeof(who)), method, url, code, body, len);
}

/* A node certificate speaks for its own ID only: the URL's, or the body's "id". */
static bool node_is_self(const struct idn_peer *p, const char *url, const struct req *rq)
{
	uint32_t id;
	const char *rest;
	json_object *o, *v;
	bool ok;

	if (p->role != IDN_ROLE_NODE)
		return true;
	if (path_id(url, "/v1/nodes/", IDN_MAX_NODES - 1, &id, &rest))
		return id == p->node;
	if (!rq->buf || rq->too_big)
		return true;	/* answered 400/413 by route() */
	o = json_tokener_parse(rq->buf);
	ok = !o || !json_object_object_get_ex(o, "id", &v) ||
	     (json_object_is_type(v, json_type_int) && json_object_get_int64(v) == p->node);
	json_object_put(o);
	return ok;
}

/*
 * GET /readyz (D.lock held): ready to serve when the store is open and,
 * in distributed mode, this replica knows its role (etcd answered its
 * last election step: leader or follower). 200 or 503, with what is
 * missing.
 */
static enum MHD_Result readyz(struct MHD_Connection *c)
{
	json_object *o = json_object_new_object(), *why = json_object_new_array();
	bool store = idnd_store_is_open(), role = !D.etcd || D.leader || D.etcd_ok;

	if (!store)
		json_object_array_add(why, json_object_new_string("store not open"));
	if (!role)
		json_object_array_add(why, json_object_new_string("etcd unreachable: role unknown"));
	json_object_object_add(o, "ready", json_object_new_boolean(store && role));
	json_object_object_add(o, "store", json_object_new_boolean(store));
	json_object_object_add(o, "role", json_object_new_string(
		!D.etcd ? "standalone" : D.leader ? "leader" : role ? "follower" : "unknown"));
	json_object_object_add(o, "missing", why);
	return send_json(c, store && role ? 200 : 503, o);
}

static enum MHD_Result handler(void *cls, struct MHD_Connection *c, const char *url,
			       const char *method, const char *version, const char *data,
			       size_t *data_size, void **con_cls)
{
	struct req *rq = *con_cls;
	const struct idn_peer *peer = idn_http_peer(c, &idnd_tls);
	const struct acl *need;
	enum MHD_Result ret;

	/* probes: no credentials needed, nothing told but up/ready */
	if (!rq && !strcmp(method, "GET") && !strcmp(url, "/healthz"))
		return send_text(c, 200, "text/plain", "ok\n");
	if (!rq && !strcmp(method, "GET") && !strcmp(url, "/readyz")) {
		pthread_mutex_lock(&D.lock);
		ret = readyz(c);
		pthread_mutex_unlock(&D.lock);
		return ret;
	}
	if (!rq) {
		/* refused before a byte of the body is read */
		need = acl_find(method, url);
		if (!idn_peer_has(peer, need->roles)) {
			idn_http_deny_log("idnd: API", peer, method, url, need->need);
			pthread_mutex_lock(&D.lock);
			D.http_req++;
			ret = send_err(c, 403, "%s %.128s: %s%s%s", method, url,
				       peer->role ? "role " : "",
				       peer->role ? idn_role_name(peer->role) : peer->why,
				       peer->role ? " may not call it" : "");
			if (strcmp(method, "GET") && strcmp(method, "HEAD"))
				audit(c, peer, method, url, 403, NULL, 0);
			pthread_mutex_unlock(&D.lock);
			return ret;
		}
		/* a change charges its principal's write rate (quota.c); reads and
		 * a node's heartbeats never do, so no flood starves them */
		if (strcmp(method, "GET") && strcmp(method, "HEAD") &&
		    !(!strcmp(method, "POST") && acl_match("/v1/nodes/#/heartbeat", url))) {
			char who[IDND_OWNER_MAX], ra[16], msg[256];
			unsigned int retry = 1;
			json_object *o;

			principal_of(c, peer, who, sizeof(who));
			if (idnd_rate_charge(who, idnd_now(), &retry, msg, sizeof(msg))) {
				snprintf(ra, sizeof(ra), "%u", retry);
				o = json_object_new_object();
				json_object_object_add(o, "error", json_object_new_string(msg));
				pthread_mutex_lock(&D.lock);
				D.http_req++;
				ret = send_json_hdr(c, 429, o, "Retry-After", ra);
				pthread_mutex_unlock(&D.lock);
				return ret;
			}
		}
		rq = calloc(1, sizeof(*rq));
		if (!rq)
			return MHD_NO;
		*con_cls = rq;
		return MHD_YES;
	}
	if (*data_size) {
		if (!rq->too_big && rq->len + *data_size <= IDND_BODY_MAX) {
			char *b = realloc(rq->buf, rq->len + *data_size + 1);

			if (!b)
				return MHD_NO;
			rq->buf = b;
			memcpy(rq->buf + rq->len, data, *data_size);
			rq->len += *data_size;
			rq->buf[rq->len] = 0;
		} else {
			rq->too_big = true;	/* keep reading, answer 413 at the end */
		}
		*data_size = 0;
		return MHD_YES;
	}
	if (!node_is_self(peer, url, rq)) {
		idn_http_deny_log("idnd: API", peer, method, url, "the node's own ID");
		pthread_mutex_lock(&D.lock);
		D.http_req++;
		ret = send_err(c, 403, "%s %.128s: node certificate %s speaks for node %u only",
			       method, url, peer->name, peer->node);
		audit(c, peer, method, url, 403, rq->buf, rq->len);
		pthread_mutex_unlock(&D.lock);
		return ret;
	}
	pthread_mutex_lock(&D.lock);
	D.http_req++;
	last_code = 0;
	ret = route(c, url, method, rq);
	if (strcmp(method, "GET") && strcmp(method, "HEAD")) {	/* audit.c: every change */
		audit(c, peer, method, url, last_code, rq->too_big ? NULL : rq->buf,
		      rq->too_big ? 0 : rq->len);
		/* heartbeats are the steady state: debug; every other change: info */
		char who[INET6_ADDRSTRLEN + 100];

		idn_log(strstr(url, "/heartbeat") && last_code < 300 ? IDN_LOG_DEBUG : IDN_LOG_INFO,
			"API: %s %.128s by %s: %u\n", method, url,
			who_of(c, peer, who, sizeof(who)), last_code);
	}
	pthread_mutex_unlock(&D.lock);
	return ret;
}

static void completed(void *cls, struct MHD_Connection *c, void **con_cls,
		      enum MHD_RequestTerminationCode toe)
{
	struct req *rq = *con_cls;

	if (rq) {
		free(rq->buf);
		free(rq);
	}
	*con_cls = NULL;
}

int idnd_api_start(const char *listen, int port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port) };
	/*
	 * A thread per connection: a request that waits (a placement solve,
	 * solver.c) holds its own thread, not the API's. Per-client cap
	 * (-C) so one address cannot take every connection slot. TLS with
	 * client certificates unless --insecure (ctl/lib/http.c).
	 */
	struct idn_http_srv srv = {
		.sa = (struct sockaddr *)&sa,
		.flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD,
		.handler = handler,
		.completed = completed,
		.conn_limit = 256,
		.per_ip = idnd_limits.per_ip,
		.timeout_s = 10,
		.mem_limit = 128 * 1024,
		.tls = &idnd_tls,
		.what = "idnd: API",
	};
	char err[256];

	if (inet_pton(AF_INET, listen, &sa.sin_addr) != 1)
		return -EINVAL;
	mhd = idn_http_start(&srv, err, sizeof(err));
	if (!mhd)
		pr_warn("%s\n", err);
	return mhd ? 0 : -EADDRINUSE;
}

void idnd_api_stop(void)
{
	if (mhd)
		MHD_stop_daemon(mhd);
	mhd = NULL;
}
