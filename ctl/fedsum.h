/* SPDX-License-Identifier: GPL-2.0 */
/*
 * fedsum.h - a domain's federation summary (docs/federation.md): what one
 * domain's idnd tells its peers it can serve - capability classes and
 * variants, capacity and load per region, latency class, the policy
 * scopes a capability admits, trust attestations - signed with the
 * domain's Ed25519 key (libsodium). Shared by idnd (export, import) and
 * its unit test.
 *
 * Wire form: an envelope {"idn_fed": 1, "payload": TEXT, "sig": HEX128};
 * the signature covers the bytes "idn-fed-summary 1\n" followed by TEXT
 * exactly as sent, so no canonical re-encoding is needed: the verifier
 * checks the bytes it received, then parses them strictly (no unknown
 * fields, every value in range; fedsum_open()).
 */
#ifndef __IDN_CTL_FEDSUM_H
#define __IDN_CTL_FEDSUM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <json-c/json.h>

#define FEDSUM_MAX_CAPS		64	/* capabilities in one summary */
#define FEDSUM_MAX_REGIONS	16	/* regions 0..15 (idnd's) */
#define FEDSUM_MAX_BYTES	(48 * 1024)	/* payload text */
#define FEDSUM_VALID_MIN_MS	100
#define FEDSUM_VALID_MAX_MS	600000
#define FEDSUM_MAX_NODES	4096	/* nodes per region of one capability */

enum fedsum_lat {		/* latency class: the summary does not give exact costs */
	FEDSUM_LAT_INTERACTIVE = 0,	/* exec estimate <= 50 ms */
	FEDSUM_LAT_STANDARD,		/* <= 1 s */
	FEDSUM_LAT_BATCH,		/* more */
	FEDSUM_LAT__MAX,
};

struct fedsum_region {
	uint8_t region;		/* 0..15 */
	uint16_t nodes;		/* up nodes serving the capability there */
	uint16_t load;		/* their mean load, permille */
};

struct fedsum_cap {
	uint32_t label;		/* IDN_CAP(class, variant), class != 0 */
	char name[64];
	uint8_t tier;		/* quality tier 0..15 */
	uint8_t lat;		/* enum fedsum_lat */
	uint32_t latency_us;	/* its exec estimate (1..60,000,000) */
	struct fedsum_region reg[FEDSUM_MAX_REGIONS];
	int n_reg;		/* ascending regions, no repeats, at least one */
	/* admissible policy scope of the requests it takes from a peer (bit masks) */
	uint8_t privacy;	/* bit IDN_PRIV_*: public, tenant, confidential, hw-bound */
	uint8_t locality;	/* bit IDN_SCOPE_*: any, home, plan */
	uint8_t trust_mask;	/* bit t: requests whose minimum trust is t */
	/* trust attestation: the lowest trust level of the nodes serving it,
	 * as the exporting domain granted it (identities, attestation) */
	uint8_t trust;		/* 0..7 */
	char publisher[64];	/* signed version: its publisher ("" unsigned) */
};

struct fedsum {
	char domain[64];	/* exporter's name: 1..63 of [A-Za-z0-9._-] */
	uint64_t seq;		/* increases with every summary the domain signs */
	int64_t issued_ms;	/* wall clock, ms since the epoch */
	uint32_t valid_ms;	/* how long it may be used after issued_ms */
	char ingress4[16];	/* the domain's ingress: where remote requests go (IPv4) */
	struct fedsum_cap caps[FEDSUM_MAX_CAPS];
	int n_caps;		/* ascending labels, no repeats */
};

const char *fedsum_lat_name(unsigned int lat);
/* latency class of an exec estimate */
uint8_t fedsum_lat_of(uint32_t latency_us);

/* 0, or -EINVAL with *err naming the field (the checks fedsum_open() makes) */
int fedsum_check(const struct fedsum *s, char *err, size_t errlen);
/* The payload text of s (malloc'd, caller frees); NULL: s is invalid (*err). */
char *fedsum_encode(const struct fedsum *s, char *err, size_t errlen);
/* The envelope of payload signed with sk (libsodium's 64-byte secret key). */
json_object *fedsum_seal(const char *payload, const uint8_t sk[64]);
/*
 * Open an envelope (the JSON text as received, len bytes): strict envelope,
 * signature by pk over the payload's bytes, strict payload, every field
 * checked. 0 with *s filled; -EBADMSG: no or a bad signature; -EINVAL: a
 * malformed envelope or payload. *err says which.
 */
int fedsum_open(const char *text, size_t len, const uint8_t pk[32], struct fedsum *s,
		char *err, size_t errlen);
/* The payload as JSON (for views: idnctl peer imported/exported). */
json_object *fedsum_to_json(const struct fedsum *s);

#endif /* __IDN_CTL_FEDSUM_H */
