/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * stamp.h - for applications and the idn-stamp tool: give one socket its
 * own IDN descriptor, which the sock_ops program (bpf/idn_stamp.bpf.c)
 * writes into that socket's SYN as the IDN TCP option.
 *
 *	int map = idn_stamp_sk_open(NULL);		// pinned idn_stamp_sk
 *	int s = socket(AF_INET, SOCK_STREAM, 0);
 *	struct idn_desc d = { .token = 42, .cap = IDN_CAP(1001, 0), .tier = 1 };
 *	idn_stamp_sk_set(map, s, &d);			// before connect()
 *	connect(s, ...);
 *
 * The process must already be in a cgroup that has the program attached
 * (idn-stamp attach / idn-stamp run) when it creates the socket.
 * Functions return 0 or a negative errno; they never print or exit.
 */
#ifndef __IDN_TOOLS_STAMP_H
#define __IDN_TOOLS_STAMP_H

#include <stddef.h>
#include <linux/types.h>
#include <linux/idn.h>

#include "prefix.h"	/* IDN_STAMP_PREFIX_BYTES, idn_prefix_token() */

/* Open the per-socket map pinned under pin_dir (NULL: IDN_PIN_DEFAULT). */
int idn_stamp_sk_open(const char *pin_dir);

/* Attach descriptor d to socket sock_fd; flags IDN_DF_SIZE mark size_class given. */
int idn_stamp_sk_set(int map_fd, int sock_fd, const struct idn_desc *d);

/* Remove the socket's own descriptor (it then falls back to the cgroup's). */
int idn_stamp_sk_clear(int map_fd, int sock_fd);

/* The option bytes the program writes for descriptor d (for tests, tools). */
void idn_stamp_encode(const struct idn_desc *d, struct idn_tcpopt *opt);

/*
 * Find the cgroup2 mount (first in /proc/self/mountinfo); with mount != 0,
 * mount one at /run/idn/cgroup2 when there is none.
 */
int idn_stamp_cgroup2_root(char *buf, size_t len, int mount);

/*
 * Prefix-aware affinity: a token from the first @block bytes of a prompt
 * (the whole prompt when shorter), so requests whose prompts begin alike
 * - a shared system prompt, a document asked about by many sessions -
 * carry one token and meet on the node that holds that prefix's KV state,
 * while requests that differ early spread. 64-bit FNV-1a of the bytes,
 * then a 64-bit finalizer (splitmix64); never 0 (0 means "no token").
 * @block 0 means IDN_STAMP_PREFIX_BYTES.
 */
__u64 idn_stamp_prefix_token(const void *prompt, size_t len, size_t block);

/* Parse "CLASS/VARIANT" or "CLASS" into a capability label. */
int idn_stamp_parse_cap(const char *s, __u32 *cap);

#endif /* __IDN_TOOLS_STAMP_H */
