/* SPDX-License-Identifier: GPL-2.0 */
/*
 * ident.h - node identity and enrolment in idnd (ident.c); see
 * docs/security.md, "Node identity and enrolment".
 *
 * A node's identity is its Ed25519 public key (the key the agent signs
 * receipts with). Enrolment binds node id <-> key once: by an operator
 * (POST /v1/identities/ID/approve, idnctl node approve) or by a statement
 * signed with the operator's enrolment key (idnd -o). Every registration
 * and heartbeat of an enrolled node is signed (query below) over
 * method, path, node, time, nonce and body; idnd checks time (+-30 s) and
 * nonce (each once) so a recorded request cannot be replayed. Trust and
 * the confidential flag come from the operator (POST
 * /v1/identities/ID/trust) or from attestation evidence a verifier
 * accepts (struct idnd_verifier), never from the register body.
 */
#ifndef __IDN_IDND_IDENT_H
#define __IDN_IDND_IDENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <json-c/json.h>

/*
 * A signed request carries its signature in the query string (the
 * transport, ctl/lib/http.c, stays the same for every request):
 *   PATH?idn_key=HEX64&idn_time=MS&idn_nonce=HEX32&idn_sig=HEX128
 */
#define IDN_HDR_KEY	"idn_key"	/* the node's Ed25519 key */
#define IDN_HDR_TIME	"idn_time"	/* ms since the epoch */
#define IDN_HDR_NONCE	"idn_nonce"	/* random per request */
#define IDN_HDR_SIG	"idn_sig"	/* Ed25519 of the text below */
#define IDN_SIG_CONTEXT	"IDN-REQ-1"
#define IDN_SIG_WINDOW_MS 30000			/* accepted clock difference */

/*
 * The signed text: "IDN-REQ-1\n" METHOD "\n" PATH "\n" NODE "\n" TIME "\n"
 * NONCE "\n" BODY. malloc()ed, *len set; NULL on ENOMEM. Inline: the
 * agent (signing) and idnd (verifying) build the same bytes.
 */
static inline char *idn_sig_text(const char *method, const char *path, uint32_t node,
				 const char *time_ms, const char *nonce, const char *body,
				 size_t body_len, size_t *len)
{
	char head[512];
	int hl = snprintf(head, sizeof(head), "%s\n%s\n%s\n%u\n%s\n%s\n", IDN_SIG_CONTEXT,
			  method, path, node, time_ms, nonce);
	char *t;

	if (hl < 0 || hl >= (int)sizeof(head))
		return NULL;
	t = malloc(hl + body_len + 1);
	if (!t)
		return NULL;
	memcpy(t, head, hl);
	if (body_len)
		memcpy(t + hl, body, body_len);
	t[hl + body_len] = 0;
	*len = hl + body_len;
	return t;
}

/* Enrolment mode (idnd --enrol). */
enum idnd_enrol_mode {
	IDND_ENROL_APPROVE = 0,	/* unknown keys wait for an operator; unsigned refused */
	IDND_ENROL_OPEN,	/* tests only: unknown keys enrolled on first use,
				 * unsigned registrations of unenrolled ids accepted */
};

/*
 * An attestation verifier: evidence (the register body's "attestation"
 * object) about node @node holding key @pk -> trust and confidential.
 * 0, or -EPERM/-EINVAL with err. The test verifier ("test") accepts a
 * statement signed by the operator's attestation key (idnd -a).
 */
struct idnd_verifier {
	const char *name;
	int (*verify)(const struct idnd_verifier *v, uint32_t node, const uint8_t pk[32],
		      json_object *evidence, uint8_t *trust, bool *confidential, char *err,
		      size_t errlen);
	uint8_t key[32];	/* test verifier: the attestation public key */
	bool have_key;
};

/* What a verified request may do (filled by idnd_ident_register/_heartbeat). */
struct ident_grant {
	bool signed_req;	/* signed with the node's enrolled key */
	bool body_trust;	/* --enrol open, unsigned: trust as the body wrote it */
	uint8_t trust;
	bool confidential;
};

/* -e, -o, -a: before idnd_ident_open(). 0 or -errno with err. */
int idnd_ident_config(const char *mode, const char *enrol_key_file, const char *attest_key_file,
		      char *err, size_t errlen);
/* After the store opened (and after the node table loaded): table, load, keys. */
int idnd_ident_open(void);
/* The maps opened: every enrolled node's telemetry key into idn_tele_keys. */
void idnd_ident_push_keys(void);

struct MHD_Connection;
/*
 * POST /v1/nodes: verify the request and the node's identity, take
 * "enrolment"/"attestation" out of @o. 0, or an HTTP status with err
 * (403 refused, logged with both key fingerprints where two keys meet).
 */
unsigned int idnd_ident_register(struct MHD_Connection *c, const char *body, size_t len,
				 json_object *o, struct ident_grant *g, char *err, size_t errlen);
/* After the registration is stored: a new telemetry key, sealed to the node in @reply. */
void idnd_ident_registered(uint32_t node, const struct ident_grant *g, json_object *reply);
/* POST /v1/nodes/ID/heartbeat: 0 or an HTTP status with err. */
unsigned int idnd_ident_heartbeat(struct MHD_Connection *c, const char *url, uint32_t node,
				  const char *body, size_t len, char *err, size_t errlen);
/* Trust and confidential flag granted to @node (registry lookups). */
void idnd_ident_grant(uint32_t node, uint8_t *trust, bool *confidential);
/*
 * /v1/identities[...]: operator endpoints. Returns the HTTP status; *out
 * the answer (2xx) or err.
 */
unsigned int idnd_ident_api(const char *method, const char *url, const char *body, size_t len,
			    json_object **out, char *err, size_t errlen);
/* Prometheus lines; bytes written */
struct idn_prom;
void idnd_ident_metrics(struct idn_prom *p);

#endif /* __IDN_IDND_IDENT_H */
