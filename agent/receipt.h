/* SPDX-License-Identifier: GPL-2.0 */
/*
 * receipt.h - execution receipts E (agent/receipt.c): the node's Ed25519
 * key (libsodium; generated on first start, stored 0600) and signed
 * receipts. A receipt is one JSON line
 *   {"idn_receipt":1,"alg":"ed25519","pubkey":HEX,"body":TEXT,"sig":HEX}
 * where body is the JSON text that was signed (node, pubkey, request,
 * plan generation, capability version, cache usage, policy verdict, ...).
 * Verification also requires the line to be in its canonical encoding, so
 * any changed byte is detected. Library: -errno, never prints.
 */
#ifndef IDN_AGENT_RECEIPT_H
#define IDN_AGENT_RECEIPT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct json_object;

struct rcpt_key {
	uint8_t pk[32], sk[64];
	char pk_hex[65];
};

/* load, or create (0600, parent 0700) when missing; -EPERM: mode too open */
int rcpt_key_load(const char *path, struct rcpt_key *k, bool *created);
/* body gets "pubkey"; returns the receipt line (malloc, no newline) */
char *rcpt_sign(const struct rcpt_key *k, struct json_object *body);
/*
 * 0 valid; -EBADMSG signature/encoding mismatch, -EINVAL malformed,
 * -EKEYREJECTED signed by another key than pin_hex. *body (may be NULL)
 * gets the parsed body. err gets a message.
 */
int rcpt_verify(const char *text, size_t len, const char *pin_hex,
		struct json_object **body, char *err, size_t errlen);

#endif /* IDN_AGENT_RECEIPT_H */
