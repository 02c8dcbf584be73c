/* SPDX-License-Identifier: GPL-2.0 */
/*
 * capsig.h - signed capability metadata (a "manifest"): what a publisher
 * states about one version of a capability, signed with Ed25519
 * (libsodium), and its one canonical byte string (docs/security.md,
 * "Signed capability metadata and revocation"). Shared by idnctl (cap
 * keygen, cap sign) and idnd (verification against trusted publishers).
 *
 * The signature covers capsig_canon()'s bytes, never the JSON text: the
 * JSON envelope may be re-indented or re-ordered, but every field that
 * is signed is parsed strictly (no unknown fields, printable ASCII text
 * without line breaks, lowercase hex) and any change to one changes the
 * canonical bytes.
 */
#ifndef __IDN_CTL_CAPSIG_H
#define __IDN_CTL_CAPSIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <json-c/json.h>

#define CAPSIG_MAX_LINEAGE	8	/* ancestors named in one manifest */
#define CAPSIG_CANON_MAX	1024	/* bytes of the canonical form, at most */

struct capsig_ref {
	uint32_t cap, version;
};

struct capsig_manifest {
	char publisher[64];	/* the trusted key it is checked against */
	char name[64];		/* the capability's name */
	uint32_t cap, version;	/* label (CLASS << 8 | VARIANT), version */
	char origin[128];	/* where it comes from (free text, may be empty) */
	uint8_t sha256[32];	/* of the model artifact */
	struct capsig_ref lineage[CAPSIG_MAX_LINEAGE];	/* parent first, to the base */
	int n_lineage;
	/* admissible policy scope: the policy classes it may serve */
	uint8_t privacy;	/* bit IDN_PRIV_*: privacy levels */
	uint8_t locality;	/* bit IDN_SCOPE_*: locality scopes */
	uint8_t trust;		/* bit t: classes of minimum trust t (0..7) */
};

/* The canonical bytes into buf (NUL-terminated); length, or -EINVAL /
 * -ENOSPC. */
int capsig_canon(const struct capsig_manifest *m, char *buf, size_t len);
/* Sign m with the Ed25519 secret key sk (64 bytes, libsodium form). */
int capsig_sign(const struct capsig_manifest *m, const uint8_t sk[64], uint8_t sig[64]);
/* 0: sig is m's signature by pk; -EBADMSG: it is not; -EINVAL: m is not
 * encodable. */
int capsig_verify(const struct capsig_manifest *m, const uint8_t sig[64], const uint8_t pk[32]);
/*
 * The signed manifest as JSON: {"idn_manifest": 1, "alg": "ed25519",
 * "publisher", "name", "cap", "version", "origin", "artifact_sha256",
 * "lineage": [{"cap", "version"}...], "scope": {"privacy": [...],
 * "locality": [...], "trust": [...]}, "sig": 128 hex}.
 */
json_object *capsig_to_json(const struct capsig_manifest *m, const uint8_t sig[64]);
/* Strict parse of that object; -EINVAL with *err naming the field. */
int capsig_from_json(json_object *o, struct capsig_manifest *m, uint8_t sig[64], char *err,
		     size_t errlen);

/* lowercase hex, one encoding per value */
void capsig_hex(char *out, const uint8_t *b, size_t n);
int capsig_unhex(uint8_t *b, size_t n, const char *s);
/* a publisher name: 1..63 of [A-Za-z0-9._-] */
bool capsig_name_ok(const char *s);

#endif /* __IDN_CTL_CAPSIG_H */
