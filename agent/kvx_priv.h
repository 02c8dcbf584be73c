/* SPDX-License-Identifier: GPL-2.0 */
/*
 * kvx_priv.h - internals shared by the KV transfer engine's files: the
 * TCP transport and bookkeeping (kvxfer.c) and the RDMA transport
 * (kvx_rdma.c). Not an API: agent code uses kvxfer.h.
 */
#ifndef IDN_AGENT_KVX_PRIV_H
#define IDN_AGENT_KVX_PRIV_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <time.h>

#include "kvxfer.h"

#define KVX_MAGIC_HELLO 0x4b4e4449U	/* "IDNK" */
#define KVX_MAGIC_SLICE 0x45434c53U	/* "SLCE" */
#define KVX_MAGIC_END	0x53444e45U	/* "ENDS" */
#define KVX_MAGIC_RES	0x544c5352U	/* "RSLT" */
#define KVX_MAGIC_CHAL	0x4c414843U	/* "CHAL" */
#define KVX_MAGIC_AUTH	0x48545541U	/* "AUTH" */
#define KVX_MAGIC_AUOK	0x4b4f5541U	/* "AUOK" */
#define KVX_VERSION	2		/* 2: XXH3 slice hashes */
#define KVX_MAX_STREAMS 32
#define KVX_MAX_ARENAS	64

struct w_hello {
	uint32_t magic;
	uint16_t ver, stream, nstreams, pad;
	uint32_t dst_arena;
	uint64_t xfer, total;
	uint32_t nslices, pad2;
};

/* receiver -> sender, first on every stream */
struct w_chal {
	uint32_t magic, flags;		/* KVX_CHAL_F_AUTH: a key is required */
	uint8_t nonce[16];
};
#define KVX_CHAL_F_AUTH 1U

/*
 * sender -> receiver after the hello (AUTH; mac zero without a key), and
 * receiver -> sender when it verified one (AUOK): crypto_auth over a label,
 * both nonces and the hello as sent (kvx_auth_mac)
 */
struct w_auth {
	uint32_t magic, pad;
	uint8_t nonce[16];
	uint8_t mac[32];
};

struct w_slice {
	uint32_t magic, seq;
	uint64_t stage_off, dst_off, len, tag, hash;
};

struct w_end {
	uint32_t magic, count;
};

struct w_res {
	uint32_t magic;
	int32_t status;
};

struct arena {
	void *base;
	uint64_t len;
	bool used;
};

struct tx {
	struct kvx *x;
	uint64_t id;
	char peer[128];
	uint32_t src_arena, dst_arena;
	struct kvx_desc *d;
	uint32_t n;
	struct kvx_result res;
	pthread_t thr;
	bool joined;
	struct tx *next;
};

struct rx {
	uint64_t id;
	uint32_t dst_arena, nstreams, nslices;
	uint64_t total, stage_len;
	uint8_t *stage;
	bool owned;			/* dst KVX_ARENA_OWNED: owned cache blocks */
	bool ext_stage;			/* owned by the transport (RDMA: registered) */
	bool prep;			/* its first stream is opening it (sink, stage) */
	void *xfer;			/* placed by the sink (no stage), or NULL */
	uint64_t budget;		/* bytes counted in kvx.staged for it */
	struct kvx_slice *sl;
	uint8_t *have;
	uint32_t got, ended, refs;
	int err;			/* first failure */
	bool done;			/* decided: committed (err 0) or failed */
	struct timespec t0;
	struct rx *next;
};

struct kvx {
	struct kvx_opts o;
	char choice[320];
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct arena ar[KVX_MAX_ARENAS];
	struct tx *txs;
	struct rx *rxs;
	uint64_t next_id;
	struct kvx_stats st;
	/* receiver */
	int lfd, port;
	pthread_t lthr;
	bool listening;
	_Atomic bool stop;		/* read by receive threads without mu */
	uint32_t rx_threads;
	uint64_t staged;		/* stage bytes of live transfers (budget: max_rx) */
	/*
	 * Transfers that failed and were freed: a stream of theirs that
	 * connects late is refused, instead of opening a second receive for
	 * the same id that would fail (and be counted) again.
	 */
	struct {
		uint64_t id;
		int err;		/* its failure: what a late stream is answered */
	} dead[16];
	unsigned int dead_next;
	uint8_t *spare;			/* last stage, reused: no page faults */
	uint64_t spare_len;
	kvx_commit_fn commit;
	void *commit_arg;
	struct kvx_sink sink;		/* kvx_set_sink: TCP receives placed, or zero */
	void *sink_arg;
	/* RDMA transport (kvx_rdma.c), NULL when not in use */
	struct kvr *rdma;
	bool rdma_listening;
};

/* a descriptor cut to slice size; stage_off: its place in the receiver's stage */
struct tslice {
	uint32_t seq;
	uint64_t src_off, stage_off, dst_off, len, tag;
};

#define KVX_P1 0x9e3779b185ebca87ULL

/* kvxfer.c */
/* seed of a slice's payload hash: its header (kvx_hash64 is XXH3-64) */
uint64_t kvx_slice_seed(uint64_t xfer, uint32_t seq, uint64_t stage_off, uint64_t dst_off,
			uint64_t len, uint64_t tag);
int kvx_resolve(const char *hostport, struct sockaddr_storage *ss, socklen_t *len);
double kvx_since(const struct timespec *t0);
/* a receive for hello h (stage allocated unless the transport brings one) */
struct rx *kvx_rx_get_locked(struct kvx *x, const struct w_hello *h, bool alloc_stage,
			     int *err);
/*
 * Drop a reference; the last one frees t. A placed transfer's sink close
 * is not called under the lock: the last reference hands it back (xfer
 * non-NULL) for kvx_rx_end() once the lock is dropped.
 */
struct rx_end {
	void *xfer;
	int err;
};
struct rx_end kvx_rx_put_locked(struct kvx *x, struct rx *t);
void kvx_rx_end(struct kvx *x, struct rx_end e);	/* lock not held */
void kvx_rx_fail_locked(struct kvx *x, struct rx *t, int err, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
/* every slice in and verified: apply, count, wake waiters (takes the lock) */
int kvx_rx_finish(struct kvx *x, struct rx *t);
int kvx_spawn_rx(struct kvx *x, void *(*fn)(void *), void *arg);	/* 0 or -errno */

/* kvx_rdma.c (stubs when built without libibverbs/librdmacm) */
int kvr_open(struct kvx *x, char *why, size_t whylen);	/* >0 usable devices */
void kvr_close(struct kvx *x);
int kvr_reg(struct kvx *x, uint32_t arena);
void kvr_unreg(struct kvx *x, uint32_t arena);
int kvr_listen(struct kvx *x, const struct sockaddr_storage *ss, char *why, size_t whylen);
void kvr_stop(struct kvx *x);
/*
 * Send t's slices over RDMA. 0: done, verified and committed by the peer.
 * -errno with why: *setup is true when nothing was sent (no RDMA path to
 * the peer: policy auto may use TCP instead).
 */
int kvr_send(struct tx *t, const struct tslice *sl, uint32_t nsl, uint64_t total,
	     const uint8_t *src, bool *setup, char *why, size_t whylen);

#endif /* IDN_AGENT_KVX_PRIV_H */
