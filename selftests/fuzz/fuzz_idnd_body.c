// SPDX-License-Identifier: GPL-2.0
/*
 * fuzz_idnd_body.c - libFuzzer harness for idnd's request-body path:
 * parse_body() (json-c tokener, nesting limit, trailing data) and then
 * the POST handler of one object type, chosen by IDN_FUZZ_BODY:
 *   cap        POST /v1/caps              idnd_cap_from_json() + registry, a
 *                                         "manifest" through signed.c's checks
 *   node       POST /v1/nodes             idnd_node_from_json() + registry
 *   heartbeat  POST /v1/nodes/1/heartbeat heartbeat()
 *   demand     POST /v1/demand            post_demand()
 *   policy     POST /v1/policies          idnd_policy_from_json() + registry
 * api.c is included so that its static handlers are reachable; the
 * libmicrohttpd calls it makes are replaced by the stubs below (no
 * daemon, no sockets). The store is an in-memory SQLite database, there
 * are no maps and no etcd, and the registry is reset between inputs.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../ctl/idnd/api.c"

/* ---- libmicrohttpd stubs: just enough for send_json()/send_err() ---- */
struct MHD_Response {
	size_t len;
	char *body;
};

static unsigned int last_code;

struct MHD_Response *MHD_create_response_from_buffer(size_t size, void *buffer,
						     enum MHD_ResponseMemoryMode mode)
{
	struct MHD_Response *r = calloc(1, sizeof(*r));

	if (!r)
		abort();
	r->body = malloc(size + 1);
	if (!r->body)
		abort();
	memcpy(r->body, buffer, size);
	r->body[size] = 0;
	r->len = size;
	return r;
}

enum MHD_Result MHD_add_response_header(struct MHD_Response *r, const char *h, const char *v)
{
	return MHD_YES;
}

enum MHD_Result MHD_queue_response(struct MHD_Connection *c, unsigned int code,
				   struct MHD_Response *r)
{
	last_code = code;
	/* every answer is a JSON object: a reply that is not is a bug */
	if (!r->len || r->body[0] != '{')
		abort();
	return MHD_YES;
}

void MHD_destroy_response(struct MHD_Response *r)
{
	free(r->body);
	free(r);
}

const char *MHD_lookup_connection_value(struct MHD_Connection *c, enum MHD_ValueKind k,
					const char *key)
{
	return NULL;
}

/* no client address: a loopback "mgmt" is refused as from a remote client */
const union MHD_ConnectionInfo *MHD_get_connection_info(struct MHD_Connection *c,
							enum MHD_ConnectionInfoType t, ...)
{
	return NULL;
}

struct MHD_Daemon *MHD_start_daemon(unsigned int flags, uint16_t port,
				    MHD_AcceptPolicyCallback apc, void *apc_cls,
				    MHD_AccessHandlerCallback dh, void *dh_cls, ...)
{
	return NULL;
}

void MHD_stop_daemon(struct MHD_Daemon *d)
{
}

/* ---- harness ---- */
enum { K_CAP, K_NODE, K_HB, K_DEMAND, K_POLICY };
static int kind;

static void reset_registry(void)
{
	while (D.n_caps)
		idnd_cap_del(D.caps[0].label);
	memset(D.nodes, 0, sizeof(D.nodes));
	for (uint32_t p = 0; p < IDND_MAX_POLICIES; p++)
		idnd_policy_del(p);
	/* node 1 exists for heartbeats, capability 7 for demand */
	D.nodes[1].used = true;
	D.nodes[1].id = 1;
	strcpy(D.nodes[1].addr4, "10.0.0.1");
	if (kind == K_DEMAND) {
		struct d_cap c = { .label = IDN_CAP(7, 0), .mem_gb = 1, .version = 1 };

		strcpy(c.name, "seed");
		strcpy(c.method, "base");
		idnd_cap_put(&c);
	}
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	const char *k = getenv("IDN_FUZZ_BODY");
	char err[320];

	if (!k || !strcmp(k, "cap"))
		kind = K_CAP;
	else if (!strcmp(k, "node"))
		kind = K_NODE;
	else if (!strcmp(k, "heartbeat"))
		kind = K_HB;
	else if (!strcmp(k, "demand"))
		kind = K_DEMAND;
	else if (!strcmp(k, "policy"))
		kind = K_POLICY;
	else
		abort();
	D.hb_timeout = 3;
	/* unsigned bodies reach the node parser: enrolment open (ident.c) */
	if (idnd_ident_config("open", NULL, NULL, err, sizeof(err)))
		abort();
	/* signed.c's tables: cap bodies with a "manifest" reach the checks */
	if (idnd_store_open(":memory:") || idnd_sig_load() || idnd_ident_open())
		abort();
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct MHD_Connection *c = NULL;
	char err[256] = "";
	struct req rq;
	json_object *o;

	if (size > IDND_BODY_MAX)
		return 0;
	/* exact-size copy so that ASan sees reads past the body */
	rq.buf = malloc(size ? size : 1);
	if (!rq.buf)
		abort();
	memcpy(rq.buf, data, size);
	rq.len = size;
	rq.too_big = false;
	reset_registry();
	o = parse_body(&rq, false, err, sizeof(err));
	if (!o) {
		if (!err[0] || !memchr(err, 0, sizeof(err)))
			abort();	/* a rejection always says why */
	} else {
		switch (kind) {
		case K_CAP:
			post_cap(c, o, "fuzz");
			break;
		case K_NODE:
			post_node(c, o, &rq);
			break;
		case K_HB:
			heartbeat(c, 1, o, &rq, "/v1/nodes/1/heartbeat");
			break;
		case K_DEMAND:
			post_demand(c, o);
			break;
		case K_POLICY:
			post_policy(c, o, "fuzz");
			break;
		}
		json_object_put(o);
	}
	free(rq.buf);
	return 0;
}
