/* SPDX-License-Identifier: GPL-2.0 */
/*
 * kvxfer.h - KV transfer engine between agents (agent/kvxfer.c): arenas
 * registered once, descriptor lists (src offset, dst offset, length),
 * batch submit, asynchronous status and completion. Transport by explicit
 * policy rdma|tcp|auto: TCP (several streams, many slices in flight,
 * non-blocking sends) and RDMA verbs (agent/kvx_rdma.c: rdma_cm with peer
 * authentication, pooled connections per peer, one memory region per
 * arena, slices as RDMA WRITEs over several queue pairs, completions in
 * event mode; built only with libibverbs + librdmacm). Every slice carries a 64-bit
 * hash (XXH3-64, libxxhash, seeded with the slice's header) checked by the
 * receiver; the receiver stages a transfer and applies
 * it (copy into the destination arena, or the commit callback) only when
 * every slice arrived intact, so a failed transfer is never half-applied;
 * or, with a sink (kvx_set_sink), reads it straight into memory the
 * caller reserved and the caller publishes it at commit (no copy).
 * Library: returns -errno, never prints or exits.
 */
#ifndef IDN_AGENT_KVXFER_H
#define IDN_AGENT_KVXFER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum kvx_policy { KVX_POLICY_AUTO, KVX_POLICY_TCP, KVX_POLICY_RDMA };

enum kvx_fault {			/* test injection, sender side */
	KVX_FAULT_NONE,
	KVX_FAULT_CORRUPT,		/* flip a payload byte of slice fault_slice */
	KVX_FAULT_TRUNCATE,		/* close a stream inside slice fault_slice */
	KVX_FAULT_SLOW,			/* sleep fault_ms before each slice */
};

struct kvx_opts {
	enum kvx_policy policy;
	uint32_t streams;		/* TCP connections per transfer (4) */
	uint32_t slice;			/* bytes per slice (1 MiB) */
	uint32_t timeout_ms;		/* connect / idle I/O limit (10000) */
	uint64_t max_rx;		/* largest incoming transfer, and all stages
					 * in flight together (1 GiB) */
	uint32_t max_rx_conns;		/* concurrent receive streams (64): more are
					 * closed at once, counted (rx_busy) */
	uint32_t hello_ms;		/* a peer has this long for its whole hello (3000) */
	enum kvx_fault fault;
	uint32_t fault_slice, fault_ms;
	/*
	 * Shared-key authentication of KV peers (kvx_key_load): each TCP
	 * stream's handshake is an HMAC (crypto_auth) over both ends' random
	 * nonces and the transfer parameters, both ways. A receiver with a key
	 * refuses a peer without it before any byte reaches staging; a sender
	 * with a key refuses a receiver that cannot prove it. Over RDMA the
	 * same key is proved in the rdma_cm handshake (a MAC over the
	 * receiver's nonce, before any remote access or rkey; kvx_rdma.c).
	 */
	bool auth;
	uint8_t key[32];
	/* optional: one line per refused peer (the library does not print) */
	void (*log)(void *arg, const char *line);
	void *log_arg;
	uint32_t rdma_qps;		/* RDMA queue pairs per transfer (0: 4, at most 8) */
};

struct kvx_desc {
	uint64_t src_off, dst_off, len;
	uint64_t tag;			/* opaque, handed to the commit callback */
};

/* a received slice, as the commit callback sees it */
struct kvx_slice {
	uint64_t stage_off, dst_off, len, tag;
};

enum kvx_state { KVX_PENDING, KVX_DONE, KVX_FAILED };

/* what the RDMA handshake said (both ends send MTU, GID, QPN) */
struct kvx_rdma_info {
	uint32_t mtu;			/* path MTU: min of both ends' active MTU */
	uint32_t local_mtu, peer_mtu;
	uint32_t local_qpn, peer_qpn;
	uint8_t local_gid[16], peer_gid[16];
};

struct kvx_result {
	enum kvx_state state;
	int err;			/* -errno when FAILED */
	char msg[352];
	uint64_t bytes, slices;
	double secs;
	char transport[8];		/* "tcp" or "rdma": what carried it */
	struct kvx_rdma_info rdma;	/* transport rdma: the handshake */
};

struct kvx_stats {
	uint64_t tx_ok, tx_failed, tx_bytes;
	uint64_t rx_ok, rx_failed, rx_bytes, rx_active;
	char rx_last_err[192];
	uint64_t rx_auth_refused;	/* peers refused by the key handshake */
	uint64_t rx_busy;		/* streams refused: max_rx_conns reached */
	uint64_t rx_refused;		/* hellos refused: too large, over the staging
					 * budget, malformed, or too slow */
	uint64_t rx_rdma;		/* transfers received over RDMA */
	struct kvx_rdma_info rx_last_rdma;	/* receiver's view of the last one */
};

/* "no destination arena": the commit callback applies the staged bytes */
#define KVX_ARENA_NONE 0xffffffffU
/* the same for cache blocks of a tenant or session: the callback is told so
 * (dst_arena KVX_ARENA_OWNED) and applies them only for an announced owner */
#define KVX_ARENA_OWNED 0xfffffffeU

/*
 * Called by the receiver once every slice of a transfer arrived and
 * verified, before the sender is told; stage holds the bytes, s[] sorted
 * by sequence. Nonzero (-errno) rejects the transfer (nothing applied).
 */
typedef int (*kvx_commit_fn)(void *arg, uint32_t dst_arena, const uint8_t *stage,
			     const struct kvx_slice *s, uint32_t n);

/*
 * Direct placement (optional; TCP receives): instead of staging a transfer
 * and copying it at commit, the receiver asks the caller where its bytes
 * go. The caller reserves destination memory that nothing else sees
 * (the agent: cache blocks, referenced and not yet indexed) and publishes
 * it at commit, so a failed, short or tampered transfer is still never
 * half-applied: nothing of it is visible before every slice verified.
 *   open    a transfer's first hello (before any payload is read; bounded
 *           by max_rx with the stages): reserve room for total bytes for
 *           dst_arena (KVX_ARENA_NONE or KVX_ARENA_OWNED; registered arenas
 *           are always staged). *xfer: the transfer's placement, or NULL to
 *           stage this transfer as usual. -errno refuses the transfer
 *           (e.g. -ENOSPC), answered to the sender.
 *   place   where the bytes [stage_off, stage_off + len) of a slice go (the
 *           slice's range in the transfer is checked first); NULL refuses
 *           the slice (-ERANGE, the transfer fails). No lock held.
 *   commit  every slice arrived and verified, s[] sorted by sequence:
 *           publish (the same checks as the commit callback). Nonzero
 *           (-errno) rejects the transfer (nothing may become visible).
 *   close   always, once, after commit or failure, when no stream writes
 *           into the placement any more: err 0 after a commit that
 *           succeeded, else -errno; release what was reserved.
 * The commit callback of kvx_listen still applies staged transfers (a
 * placement declined, a registered arena, RDMA: kvx_rdma.c writes into a
 * registered stage).
 */
struct kvx_sink {
	int (*open)(void *arg, uint32_t dst_arena, uint64_t total, uint32_t nslices,
		    void **xfer);
	uint8_t *(*place)(void *xfer, uint64_t stage_off, uint64_t len);
	int (*commit)(void *xfer, const struct kvx_slice *s, uint32_t n);
	void (*close)(void *xfer, int err);
};

struct kvx;

void kvx_opts_defaults(struct kvx_opts *o);
int kvx_policy_parse(const char *s, enum kvx_policy *p);
const char *kvx_policy_name(enum kvx_policy p);
/*
 * Policy rdma without a usable RDMA device: -ENODEV ("no RDMA device ...");
 * built without libibverbs/librdmacm: -EPROTONOSUPPORT (message in err).
 * Policy auto uses RDMA when a device is usable (active port), else TCP.
 */
int kvx_create(struct kvx **out, const struct kvx_opts *o, char *err, size_t errlen);
void kvx_destroy(struct kvx *x);
/* "rdma" or "tcp"; under auto a peer without an RDMA path still gets TCP */
const char *kvx_transport(const struct kvx *x);
const char *kvx_choice(const struct kvx *x);	/* why, in words */
/* usable RDMA devices (>0), 0 none, -errno; why says which or why not */
int kvx_rdma_probe(char *why, size_t whylen);
/* "rdma: path mtu 4096 (local 4096, peer 4096), qpn 0x11 -> 0x12, gid ..." */
void kvx_rdma_info_str(const struct kvx_rdma_info *r, char *buf, size_t len);
int kvx_register(struct kvx *x, void *base, uint64_t len, uint32_t *id);
int kvx_unregister(struct kvx *x, uint32_t id);
/* receiver: "ADDR:PORT" (port 0: any, see kvx_port) */
int kvx_listen(struct kvx *x, const char *hostport, kvx_commit_fn fn, void *arg);
int kvx_port(const struct kvx *x);
/* before kvx_listen: TCP receives placed by sink (arg its first argument) */
int kvx_set_sink(struct kvx *x, const struct kvx_sink *sink, void *arg);
/* asynchronous: *id names the transfer for status/wait */
int kvx_submit(struct kvx *x, const char *peer, uint32_t src_arena, uint32_t dst_arena,
	       const struct kvx_desc *d, uint32_t n, uint64_t *id);
int kvx_status(struct kvx *x, uint64_t id, struct kvx_result *r);
/* waits for completion (timeout_ms 0: forever); forgets the transfer */
int kvx_wait(struct kvx *x, uint64_t id, uint32_t timeout_ms, struct kvx_result *r);
void kvx_get_stats(struct kvx *x, struct kvx_stats *s);
/*
 * A KV key file: regular, not readable by group or others (-EPERM), 16 to
 * 4096 bytes (-EINVAL); key = BLAKE2b-256 of its contents.
 */
int kvx_key_load(const char *path, uint8_t key[32]);
/* XXH3-64 with seed (libxxhash) */
uint64_t kvx_hash64(const void *p, size_t len, uint64_t seed);

#endif /* IDN_AGENT_KVXFER_H */
