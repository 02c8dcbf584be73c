// SPDX-License-Identifier: GPL-2.0
/*
 * kvx_rdma.c - the KV transfer engine's RDMA transport (see kvxfer.h and
 * kvx_priv.h): rdma_cm connection setup with peer authentication, one
 * memory region per arena and device, a pool of authenticated connections
 * per peer, slices as RDMA WRITEs spread over several queue pairs, the
 * receiver verifying slices while later ones are still being written,
 * completions in event mode (completion channels, poll(); no busy
 * polling), commit only after every slice verified. Built only where
 * pkg-config finds libibverbs and librdmacm (agent/build.mk defines
 * KVX_HAVE_RDMA).
 *
 * Connections (RC, to the receiver's rdma_cm listener on the same address
 * and port as its TCP listener), each set up once and then reused:
 *   connect private data {magic KXDR, ver 3, active MTU, QPN, GID, flags,
 *       nonce_s}; accept private data, the same with flags = KEY (the
 *       receiver requires the KV key) and nonce_r: the challenge.
 *   The receiver creates and moves its queue pair itself with no remote
 *       access at all: until the peer proved the key, no memory region of
 *       the receiver can be written through it, and no rkey is sent.
 *   sender -> SEND AUTH {mac}: crypto_auth (HMAC-SHA-512-256) with the KV
 *       key over "idnkvr-s", nonce_r, nonce_s and both private data blocks
 *       as they went on the wire (zero without a key);
 *   receiver: a wrong or missing mac when it has a key: RESULT -EACCES, a
 *       log line, the connection closed. Else it grants the queue pair
 *       remote write and answers AUOK {mac over "idnkvr-r", the same};
 *       a sender with a key checks it (a receiver without the key cannot
 *       answer it) and refuses a receiver that does not require one.
 * A sender keeps up to KVR_POOL idle groups of KVR_QPS such connections
 * per peer for KVR_IDLE_MS; a receiver closes a connection idle for
 * KVR_RX_IDLE_MS. Per transfer, on the group's first connection:
 *   sender -> SEND REQ   {xfer, total, nslices, dst_arena}
 *   receiver -> SEND GRANT {status, addr, rkey}: a registered stage of
 *       total bytes (reused between transfers while they succeed)
 *   sender -> RDMA WRITE of slice i on queue pair i mod n (KVR_WINDOW in
 *       flight per queue pair), hashing each slice while the writes move;
 *       SEND PROG {entries}: the slice table entries (struct w_slice:
 *       seq, offsets, length, tag, hash seeded like TCP's) of slices that
 *       have landed (write completed, or written on the first queue pair,
 *       which RC orders before the SEND), KVR_PROG at a time;
 *       SEND DONE {the last entries}
 *   receiver: checks each entry as it comes (bounds, repeats, hash) while
 *       the later slices are still moving; at DONE every slice must have
 *       been checked: applies the transfer (same commit as TCP) and SENDs
 *       RESULT {status, addr, rkey, total}: after a success, a stage of at
 *       most KVR_STANDING_MAX bytes stays reserved to this connection and
 *       is granted ahead for its next transfer (addr, rkey, its length in
 *       total; rkey 0: none). A failed check answers RESULT at once and
 *       closes the connection; that stage is deregistered, never reused.
 *   standing grant: a sender whose next transfer fits the stage granted
 *       ahead puts its addr and rkey in REQ and writes at once, without
 *       waiting for GRANT (one round trip less); the receiver takes that
 *       stage when both match the one it reserved, and answers a refusal
 *       of such a REQ with RESULT (the sender waits for no GRANT) and
 *       closes the connection.
 * The receiver's destination is untouched unless everything verified; a
 * sender that vanishes (DISCONNECTED, QP error, timeout) fails the receive.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <infiniband/verbs.h>
#include <rdma/rdma_cma.h>
#include <sodium.h>

#include "kvxfer.h"
#include "kvx_priv.h"

#define KVR_MAX_DEV	8
#define KVR_MAGIC_PRIV	0x5244584bU	/* "KXDR" */
#define KVR_MAGIC_MSG	0x4d52584bU	/* "KXRM" */
#define KVR_VERSION	4		/* 3: authenticated, pooled, several QPs;
					 * 4: standing grants */
#define KVR_F_KEY	1U		/* private data flag: this end has a KV key */
#define KVR_WINDOW	16		/* RDMA WRITEs in flight per queue pair */
#define KVR_QPS		4		/* queue pairs (connections) per transfer */
#define KVR_MAXQP	8
#define KVR_PROG	16		/* slice table entries per PROG message */
#define KVR_NRECV	32		/* receive buffers per connection */
#define KVR_NSEND	8		/* send buffers per connection */
#define KVR_POOL	4		/* idle connection groups kept per peer */
#define KVR_IDLE_MS	30000		/* sender: an idle group is closed after */
#define KVR_RX_IDLE_MS	60000		/* receiver: an idle connection is closed after */
#define KVR_STANDING_MAX (4ULL << 20)	/* receiver: largest stage granted ahead */
#define KVR_WR_MSG	0x100ULL	/* wr_id of SENDs + slot; recvs are 0..NRECV-1 */
#define KVR_WR_DATA	0x1000ULL	/* + slice index */

enum { M_REQ = 1, M_GRANT, M_DONE, M_RESULT, M_AUTH, M_AUOK, M_PROG };

struct r_priv {				/* the handshake, in private data (<= 56 bytes) */
	uint32_t magic;
	uint16_t ver, mtu;		/* active MTU of the port, bytes */
	uint32_t qpn, flags;
	uint8_t gid[16];
	uint8_t nonce[16];
};

struct r_msg {
	uint32_t magic, type;
	int32_t status;
	uint32_t nslices, dst_arena, rkey;
	uint64_t xfer, total, addr;
	uint32_t first, count;		/* PROG/DONE: entries e[0..count) */
	uint8_t mac[32];		/* AUTH, AUOK */
	struct w_slice e[KVR_PROG];
};
#define MSG_HDR offsetof(struct r_msg, e)

struct stage {
	uint8_t *buf;
	uint64_t len;
	struct ibv_mr *mr;
	int dev;
};

struct grp;

struct kvr {
	int ndev;
	struct ibv_context **list;	/* rdma_get_devices() */
	struct ibv_context *ctx[KVR_MAX_DEV];
	struct ibv_pd *pd[KVR_MAX_DEV];
	struct ibv_mr *mr[KVX_MAX_ARENAS][KVR_MAX_DEV];
	struct rdma_event_channel *lch;
	struct rdma_cm_id *lid;
	pthread_t lthr;
	bool listening;
	struct stage *spare;		/* last receive stage, registered */
	struct grp *idle;		/* sender: idle connection groups (x->mu) */
	struct timespec rx_active;	/* receiver: last message on any connection */
};

struct conn {
	struct kvx *x;
	struct rdma_event_channel *ch;
	struct rdma_cm_id *id;
	struct ibv_qp *qp;
	bool manual;			/* receiver: QP created and moved here */
	struct ibv_comp_channel *cc;
	struct ibv_cq *cq;
	int dev;
	struct r_msg *msgs;		/* [0, NRECV) receives, then NSEND sends */
	struct ibv_mr *msg_mr;
	uint32_t sbusy;			/* send slots in flight */
	int gone;			/* the peer disconnected (-errno): reported once the
					 * completions that came before are taken */
	struct r_priv me, peer;		/* private data as sent / as received */
	bool have_peer;
	struct kvx_rdma_info info;
	struct stage *standing;		/* receiver: the stage granted ahead in our
					 * last RESULT on this connection */
};

/* a sender's connections to one peer, used by one transfer at a time */
struct grp {
	char peer[128];
	int n, dev;
	struct conn c[KVR_MAXQP];
	struct timespec last;
	struct grp *next;
	uint64_t sg_addr, sg_len;	/* the receiver's stage granted ahead (in */
	uint32_t sg_rkey;		/* its last RESULT), 0: none */
	bool sg_used;			/* the last transfer wrote into it at once */
};

static void grp_close(struct grp *g);

static void set_nonblock(int fd)
{
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
}

static uint32_t mtu_bytes(enum ibv_mtu m)
{
	return m >= IBV_MTU_256 && m <= IBV_MTU_4096 ? 128U << m : 0;
}

static int dev_index(const struct kvr *k, const struct ibv_context *ctx)
{
	for (int i = 0; i < k->ndev; i++)
		if (k->ctx[i] == ctx)
			return i;
	return -1;
}

/* ---- devices, memory regions -------------------------------------------- */

/* usable devices (an active port) into k (NULL: count only); why: names */
static int scan(struct kvr *k, struct ibv_context **l, int n, char *why, size_t wl)
{
	int usable = 0;
	size_t w = 0;

	why[0] = 0;
	for (int i = 0; i < n; i++) {
		struct ibv_device_attr da;
		struct ibv_port_attr pa;
		uint8_t p, active = 0;

		if (ibv_query_device(l[i], &da))
			continue;
		for (p = 1; p <= da.phys_port_cnt; p++)
			if (!ibv_query_port(l[i], p, &pa) && pa.state == IBV_PORT_ACTIVE) {
				active = p;
				break;
			}
		if (w < wl)
			w += snprintf(why + w, wl - w, "%s%s %s", w ? ", " : "",
				      ibv_get_device_name(l[i]->device),
				      active ? "active" : "no active port");
		if (w < wl && active)
			w += snprintf(why + w, wl - w, " mtu %u", mtu_bytes(pa.active_mtu));
		if (!active)
			continue;
		if (k && k->ndev < KVR_MAX_DEV) {
			struct ibv_pd *pd = ibv_alloc_pd(l[i]);

			if (!pd)
				continue;
			k->ctx[k->ndev] = l[i];
			k->pd[k->ndev++] = pd;
		}
		usable++;
	}
	return usable;
}

int kvx_rdma_probe(char *why, size_t wl)
{
	struct ibv_context **l;
	char names[128];
	int n = 0, u;

	l = rdma_get_devices(&n);
	if (!l || !n) {
		snprintf(why, wl, "no RDMA device (%s%s)", !l ? "rdma_cm: " : "",
			 !l ? strerror(errno) : "no verbs device; e.g. modprobe rdma_rxe; "
			 "rdma link add rxe0 type rxe netdev eth0");
		if (l)
			rdma_free_devices(l);
		return 0;
	}
	u = scan(NULL, l, n, names, sizeof(names));
	if (u)
		snprintf(why, wl, "%s", names);
	else
		snprintf(why, wl, "no RDMA device with an active port (%s)", names);
	rdma_free_devices(l);
	return u;
}

int kvr_open(struct kvx *x, char *why, size_t wl)
{
	struct ibv_context **l;
	struct kvr *k;
	char names[128];
	int n = 0;

	l = rdma_get_devices(&n);
	if (!l || !n) {
		snprintf(why, wl, "no RDMA device (%s%s)", !l ? "rdma_cm: " : "",
			 !l ? strerror(errno) : "no verbs device; e.g. modprobe rdma_rxe; "
			 "rdma link add rxe0 type rxe netdev eth0");
		if (l)
			rdma_free_devices(l);
		return 0;
	}
	k = calloc(1, sizeof(*k));
	if (!k) {
		rdma_free_devices(l);
		snprintf(why, wl, "out of memory");
		return -ENOMEM;
	}
	if (!scan(k, l, n, names, sizeof(names))) {
		snprintf(why, wl, "no RDMA device with an active port (%s)", names);
		free(k);
		rdma_free_devices(l);
		return 0;
	}
	snprintf(why, wl, "%s", names);
	k->list = l;
	x->rdma = k;
	return k->ndev;
}

int kvr_reg(struct kvx *x, uint32_t a)
{
	struct kvr *k = x->rdma;

	for (int d = 0; d < k->ndev; d++) {
		k->mr[a][d] = ibv_reg_mr(k->pd[d], x->ar[a].base, x->ar[a].len,
					 IBV_ACCESS_LOCAL_WRITE);
		if (!k->mr[a][d]) {
			int err = errno ? -errno : -ENOMEM;

			kvr_unreg(x, a);
			return err;
		}
	}
	return 0;
}

void kvr_unreg(struct kvx *x, uint32_t a)
{
	struct kvr *k = x->rdma;

	for (int d = 0; d < k->ndev; d++) {
		if (k->mr[a][d])
			ibv_dereg_mr(k->mr[a][d]);
		k->mr[a][d] = NULL;
	}
}

static void stage_free(struct stage *s)
{
	if (!s)
		return;
	if (s->mr)
		ibv_dereg_mr(s->mr);
	free(s->buf);
	free(s);
}

void kvr_close(struct kvx *x)
{
	struct kvr *k = x->rdma;

	while (k->idle) {		/* pooled connections first: they use the PDs */
		struct grp *g = k->idle;

		k->idle = g->next;
		grp_close(g);
	}
	for (uint32_t a = 0; a < KVX_MAX_ARENAS; a++)
		kvr_unreg(x, a);
	stage_free(k->spare);
	for (int d = 0; d < k->ndev; d++)
		ibv_dealloc_pd(k->pd[d]);
	rdma_free_devices(k->list);
	free(k);
	x->rdma = NULL;
}

/* ---- one connection: QP, CQ in event mode, message slots ---------------- */

static const char *cm_name(int ev)
{
	return rdma_event_str(ev);
}

static int cm_err(int ev)
{
	switch (ev) {
	case RDMA_CM_EVENT_REJECTED: return -ECONNREFUSED;
	case RDMA_CM_EVENT_UNREACHABLE: return -EHOSTUNREACH;
	case RDMA_CM_EVENT_ADDR_ERROR: return -EADDRNOTAVAIL;
	case RDMA_CM_EVENT_ROUTE_ERROR: return -ENETUNREACH;
	case RDMA_CM_EVENT_DISCONNECTED: return -ECONNRESET;
	case RDMA_CM_EVENT_DEVICE_REMOVAL: return -ENODEV;
	case RDMA_CM_EVENT_TIMEWAIT_EXIT: return -ECONNRESET;
	default: return -EPROTO;
	}
}

/* next cm event on c's channel within ms: 0 when it is `want` */
static int cm_wait(struct conn *c, enum rdma_cm_event_type want, int ms, int *got)
{
	struct rdma_cm_event *ev;
	struct timespec t0;
	int rc;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		struct pollfd p = { .fd = c->ch->fd, .events = POLLIN };
		int left = ms - (int)(kvx_since(&t0) * 1000);

		if (!rdma_get_cm_event(c->ch, &ev))
			break;
		if (errno != EAGAIN && errno != EINTR)
			return -errno;
		if (left <= 0 || c->x->stop)
			return c->x->stop ? -ECANCELED : -ETIMEDOUT;
		poll(&p, 1, left < 200 ? left : 200);
	}
	*got = ev->event;
	rc = ev->event == want ? 0 : cm_err(ev->event);
	if (ev->event == RDMA_CM_EVENT_REJECTED && ev->status)
		rc = -ECONNREFUSED;
	if (!rc && want == RDMA_CM_EVENT_ESTABLISHED && !c->have_peer &&
	    ev->param.conn.private_data &&
	    ev->param.conn.private_data_len >= sizeof(struct r_priv)) {
		memcpy(&c->peer, ev->param.conn.private_data, sizeof(c->peer));
		c->have_peer = true;
	}
	rdma_ack_cm_event(ev);
	return rc;
}

/* a disconnect (or any other event) on the channel while data moves */
static int cm_poll(struct conn *c)
{
	struct rdma_cm_event *ev;
	int rc = 0;

	while (!rdma_get_cm_event(c->ch, &ev)) {
		if (ev->event == RDMA_CM_EVENT_DISCONNECTED ||
		    ev->event == RDMA_CM_EVENT_DEVICE_REMOVAL)
			rc = cm_err(ev->event);
		rdma_ack_cm_event(ev);
	}
	return rc;
}

static int post_recv(struct conn *c, uint32_t i)
{
	struct ibv_sge sge = { (uintptr_t)&c->msgs[i], sizeof(c->msgs[i]), c->msg_mr->lkey };
	struct ibv_recv_wr wr = { .wr_id = i, .sg_list = &sge, .num_sge = 1 }, *bad;

	return ibv_post_recv(c->qp, &wr, &bad) ? -EIO : 0;
}

/* m's first len bytes in a free send slot: 0, -EAGAIN (all in flight), -EIO */
static int post_msg(struct conn *c, const struct r_msg *m, size_t len)
{
	for (uint32_t i = 0; i < KVR_NSEND; i++) {
		struct r_msg *s = &c->msgs[KVR_NRECV + i];
		struct ibv_sge sge = { (uintptr_t)s, len, c->msg_mr->lkey };
		struct ibv_send_wr wr = { .wr_id = KVR_WR_MSG + i, .sg_list = &sge,
					  .num_sge = 1, .opcode = IBV_WR_SEND,
					  .send_flags = IBV_SEND_SIGNALED }, *bad;

		if (c->sbusy & (1U << i))
			continue;
		memcpy(s, m, len);
		s->magic = KVR_MAGIC_MSG;
		if (ibv_post_send(c->qp, &wr, &bad))
			return -EIO;
		c->sbusy |= 1U << i;
		return 0;
	}
	return -EAGAIN;
}

/* every completion of c passes here: a finished SEND frees its slot */
static void wc_note(struct conn *c, const struct ibv_wc *wc)
{
	if (wc->wr_id >= KVR_WR_MSG && wc->wr_id < KVR_WR_MSG + KVR_NSEND)
		c->sbusy &= ~(1U << (wc->wr_id - KVR_WR_MSG));
}

/*
 * Next completion within ms, sleeping on the completion channel (and the
 * cm channel: a disconnect ends the wait). 0 with a successful wc; -EIO
 * when wc failed (wc->status says why); -ECONNRESET, -ETIMEDOUT, -ECANCELED.
 */
static int cq_next(struct conn *c, struct ibv_wc *wc, int ms)
{
	struct timespec t0;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (int armed = 0;;) {
		struct pollfd p[2] = { { .fd = c->cc->fd, .events = POLLIN },
				       { .fd = c->ch->fd, .events = POLLIN } };
		int n = ibv_poll_cq(c->cq, 1, wc), left, rc;

		if (n < 0)
			return -EIO;
		if (n == 1) {
			wc_note(c, wc);
			return wc->status == IBV_WC_SUCCESS ? 0 : -EIO;
		}
		if (c->gone)
			return c->gone;
		if (!armed) {		/* arm, then look once more: no lost wakeup */
			if (ibv_req_notify_cq(c->cq, 0))
				return -EIO;
			armed = 1;
			continue;
		}
		left = ms - (int)(kvx_since(&t0) * 1000);
		if (c->x->stop)
			return -ECANCELED;
		if (left <= 0)
			return -ETIMEDOUT;
		poll(p, 2, left < 200 ? left : 200);
		if (p[1].revents & POLLIN) {
			rc = cm_poll(c);
			if (rc)
				c->gone = rc;	/* a last answer may still be in the CQ */
		}
		if (p[0].revents & POLLIN) {
			struct ibv_cq *cq;
			void *ctx;

			if (!ibv_get_cq_event(c->cc, &cq, &ctx)) {
				ibv_ack_cq_events(cq, 1);
				armed = 0;
			}
		}
	}
}

/* a received message (buffer i, n bytes) into m, the buffer posted again */
static int take_msg(struct conn *c, uint32_t i, uint32_t n, struct r_msg *m)
{
	memset(m, 0, sizeof(*m));
	if (n >= MSG_HDR && n <= sizeof(*m))
		memcpy(m, &c->msgs[i], n);
	if (post_recv(c, i))
		return -EIO;
	if (n < MSG_HDR || n > sizeof(*m) || m->magic != KVR_MAGIC_MSG ||
	    m->count > KVR_PROG || MSG_HDR + (size_t)m->count * sizeof(struct w_slice) > n)
		return -EPROTO;
	return 0;
}

/* the next message on c within ms (SEND completions pass by) */
static int wait_msg(struct conn *c, int ms, struct r_msg *m)
{
	struct timespec t0;
	struct ibv_wc wc;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		int left = ms - (int)(kvx_since(&t0) * 1000);
		int rc = cq_next(c, &wc, left > 0 ? left : 1);

		if (rc)
			return rc;
		if (wc.wr_id < KVR_NRECV)
			return take_msg(c, wc.wr_id, wc.byte_len, m);
	}
}

/* until every SEND of c left (an answer before a close), at most ms */
static void drain_sends(struct conn *c, int ms)
{
	struct timespec t0;
	struct ibv_wc wc;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	while (c->sbusy && c->qp) {
		int left = ms - (int)(kvx_since(&t0) * 1000), rc;

		if (left <= 0)
			return;
		rc = cq_next(c, &wc, left);
		if (rc && rc != -EIO)
			return;
		if (!rc && wc.wr_id < KVR_NRECV)	/* nobody waits for it */
			post_recv(c, wc.wr_id);
	}
}

/* a receiver's QP state, with rdma_cm's attributes for the connection */
static int qp_to(struct conn *c, enum ibv_qp_state st, int access)
{
	struct ibv_qp_attr a = { .qp_state = st };
	int mask, rc;

	if (rdma_init_qp_attr(c->id, &a, &mask))
		return -errno;
	if (st == IBV_QPS_INIT)
		a.qp_access_flags = access;
	rc = ibv_modify_qp(c->qp, &a, mask);
	return rc > 0 ? -rc : rc;
}

/*
 * CQ, completion channel, QP and message buffers. manual (the receiver):
 * the QP is created and moved to INIT here with no remote access at all;
 * rdma_cm's own QP handling would grant remote write at once.
 */
static int conn_setup(struct conn *c, struct ibv_pd *pd, bool manual)
{
	struct ibv_qp_init_attr qa = {
		.qp_type = IBV_QPT_RC,
		.cap = { .max_send_wr = KVR_WINDOW + KVR_NSEND + 4, .max_recv_wr = KVR_NRECV,
			 .max_send_sge = 1, .max_recv_sge = 1 },
	};
	int rc;

	c->cc = ibv_create_comp_channel(c->id->verbs);
	if (!c->cc)
		return -errno;
	set_nonblock(c->cc->fd);
	c->cq = ibv_create_cq(c->id->verbs, KVR_WINDOW + KVR_NSEND + KVR_NRECV + 8, NULL,
			      c->cc, 0);
	if (!c->cq)
		return -errno;
	qa.send_cq = qa.recv_cq = c->cq;
	if (manual) {
		c->qp = ibv_create_qp(pd, &qa);
		if (!c->qp)
			return -errno;
		c->manual = true;
		rc = qp_to(c, IBV_QPS_INIT, 0);
		if (rc)
			return rc;
	} else {
		if (rdma_create_qp(c->id, pd, &qa))
			return -errno;
		c->qp = c->id->qp;
	}
	c->msgs = calloc(KVR_NRECV + KVR_NSEND, sizeof(*c->msgs));
	if (!c->msgs)
		return -ENOMEM;
	c->msg_mr = ibv_reg_mr(pd, c->msgs, (KVR_NRECV + KVR_NSEND) * sizeof(*c->msgs),
			       IBV_ACCESS_LOCAL_WRITE);
	if (!c->msg_mr)
		return -errno;
	for (uint32_t i = 0; i < KVR_NRECV; i++)
		if (post_recv(c, i))
			return -EIO;
	return 0;
}

static void conn_free(struct conn *c)
{
	if (c->qp && c->manual) {
		struct ibv_qp_attr a = { .qp_state = IBV_QPS_ERR };

		ibv_modify_qp(c->qp, &a, IBV_QP_STATE);
		ibv_destroy_qp(c->qp);
	} else if (c->qp) {
		rdma_destroy_qp(c->id);
	}
	c->qp = NULL;
	if (c->msg_mr)
		ibv_dereg_mr(c->msg_mr);
	free(c->msgs);
	if (c->cq)
		ibv_destroy_cq(c->cq);
	if (c->cc)
		ibv_destroy_comp_channel(c->cc);
	if (c->id)
		rdma_destroy_id(c->id);
	if (c->ch)
		rdma_destroy_event_channel(c->ch);
	memset(c, 0, sizeof(*c));
}

static void conn_close(struct conn *c)
{
	if (c->id && c->qp)
		rdma_disconnect(c->id);
	conn_free(c);
}

/* our half of the handshake: the port's active MTU, the QPN, the GID, a nonce */
static void local_info(struct conn *c, struct r_priv *p)
{
	struct ibv_port_attr pa;
	struct sockaddr *sa = rdma_get_local_addr(c->id);
	union ibv_gid g;
	bool found = false;

	memset(p, 0, sizeof(*p));
	p->magic = htole32(KVR_MAGIC_PRIV);
	p->ver = htole16(KVR_VERSION);
	p->flags = htole32(c->x->o.auth ? KVR_F_KEY : 0);
	randombytes_buf(p->nonce, sizeof(p->nonce));
	if (!ibv_query_port(c->id->verbs, c->id->port_num, &pa)) {
		p->mtu = htole16(mtu_bytes(pa.active_mtu));
		/* RoCE v2: the GID of our IPv4 address is ::ffff:a.b.c.d */
		for (int i = 0; sa && sa->sa_family == AF_INET && i < pa.gid_tbl_len && i < 64;
		     i++) {
			const struct sockaddr_in *in = (const void *)sa;

			if (ibv_query_gid(c->id->verbs, c->id->port_num, i, &g))
				break;
			if (!memcmp(g.raw + 12, &in->sin_addr, 4) && g.raw[10] == 0xff &&
			    g.raw[11] == 0xff) {
				found = true;
				break;
			}
		}
	}
	if (!found)
		memcpy(g.raw, c->id->route.addr.addr.ibaddr.sgid.raw, 16);
	memcpy(p->gid, g.raw, 16);
	p->qpn = htole32(c->qp->qp_num);
	c->info.local_mtu = le16toh(p->mtu);
	c->info.local_qpn = c->qp->qp_num;
	memcpy(c->info.local_gid, p->gid, 16);
}

static int peer_info(struct conn *c)
{
	if (!c->have_peer || le32toh(c->peer.magic) != KVR_MAGIC_PRIV ||
	    le16toh(c->peer.ver) != KVR_VERSION)
		return -EPROTO;
	c->info.peer_mtu = le16toh(c->peer.mtu);
	c->info.peer_qpn = le32toh(c->peer.qpn);
	memcpy(c->info.peer_gid, c->peer.gid, 16);
	c->info.mtu = c->info.local_mtu < c->info.peer_mtu ? c->info.local_mtu :
			c->info.peer_mtu;
	return 0;
}

/*
 * The proof of the KV key for one direction ('s' the sender's, 'r' the
 * receiver's: a reflected answer does not verify): crypto_auth over a
 * label and both private data blocks as they went on the wire, which hold
 * both nonces (the receiver's is the challenge), QPNs and GIDs.
 */
static void auth_mac(uint8_t mac[32], const uint8_t key[32], char dir,
		     const struct r_priv *active, const struct r_priv *passive)
{
	uint8_t m[8 + 2 * sizeof(struct r_priv)];

	memcpy(m, dir == 's' ? "idnkvr-s" : "idnkvr-r", 8);
	memcpy(m + 8, passive, sizeof(*passive));
	memcpy(m + 8 + sizeof(*passive), active, sizeof(*active));
	crypto_auth(mac, m, sizeof(m), key);
}

static const char *wc_why(int rc, const struct ibv_wc *wc)
{
	return rc == -EIO ? ibv_wc_status_str(wc->status) : strerror(-rc);
}

/* ---- receiver ----------------------------------------------------------- */

struct lconn {
	struct kvx *x;
	struct rdma_cm_id *id;
	struct r_priv peer;
	bool have_peer;
};

/* a registered stage of at least len bytes (the spare when it is enough) */
static struct stage *stage_get(struct kvx *x, int dev, uint64_t len)
{
	struct kvr *k = x->rdma;
	struct stage *s;

	pthread_mutex_lock(&x->mu);
	s = k->spare;
	if (s && s->dev == dev && s->len >= len)
		k->spare = NULL;
	else
		s = NULL;
	pthread_mutex_unlock(&x->mu);
	if (s)
		return s;
	s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	s->len = (len + 4095) & ~4095ULL;
	s->dev = dev;
	if (posix_memalign((void **)&s->buf, 4096, s->len)) {
		free(s);
		return NULL;
	}
	s->mr = ibv_reg_mr(k->pd[dev], s->buf, s->len,
			   IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_WRITE);
	if (!s->mr) {
		stage_free(s);
		return NULL;
	}
	return s;
}

static void stage_put(struct kvx *x, struct stage *s)
{
	struct kvr *k = x->rdma;

	if (!s)
		return;
	pthread_mutex_lock(&x->mu);
	if (!k->spare || k->spare->len < s->len) {
		struct stage *old = k->spare;

		k->spare = s;
		s = old;
	}
	pthread_mutex_unlock(&x->mu);
	stage_free(s);
}

/* n table entries checked like TCP's slices: bounds, repeats, hash */
static int rx_verify(struct kvx *x, struct rx *t, const struct w_slice *tab, uint32_t n,
		     char *why, size_t wl)
{
	uint64_t alen = t->dst_arena != KVX_ARENA_NONE ? x->ar[t->dst_arena].len : 0;

	for (uint32_t i = 0; i < n; i++) {
		struct w_slice s = tab[i];

		s.magic = le32toh(s.magic);
		s.seq = le32toh(s.seq);
		s.stage_off = le64toh(s.stage_off);
		s.dst_off = le64toh(s.dst_off);
		s.len = le64toh(s.len);
		s.tag = le64toh(s.tag);
		s.hash = le64toh(s.hash);
		if (s.magic != KVX_MAGIC_SLICE || s.seq >= t->nslices || t->have[s.seq] ||
		    s.len > t->total || s.stage_off > t->total - s.len ||
		    (t->dst_arena != KVX_ARENA_NONE && (s.len > alen ||
							 s.dst_off > alen - s.len))) {
			snprintf(why, wl, "slice %u out of range or repeated", s.seq);
			return -ERANGE;
		}
		if (kvx_hash64(t->stage + s.stage_off, s.len,
			       kvx_slice_seed(t->id, s.seq, s.stage_off, s.dst_off, s.len,
					      s.tag)) != s.hash) {
			snprintf(why, wl, "slice %u checksum mismatch", s.seq);
			return -EBADMSG;
		}
		t->have[s.seq] = 1;
		t->sl[s.seq] = (struct kvx_slice){ s.stage_off, s.dst_off, s.len, s.tag };
		t->got++;
	}
	return 0;
}

static void peer_str(struct conn *c, char *a, size_t al, int *port)
{
	struct sockaddr *sa = c->id ? rdma_get_peer_addr(c->id) : NULL;

	snprintf(a, al, "?");
	*port = 0;
	if (sa && sa->sa_family == AF_INET6) {
		inet_ntop(AF_INET6, &((struct sockaddr_in6 *)sa)->sin6_addr, a, al);
		*port = ntohs(((struct sockaddr_in6 *)sa)->sin6_port);
	} else if (sa && sa->sa_family == AF_INET) {
		inet_ntop(AF_INET, &((struct sockaddr_in *)sa)->sin_addr, a, al);
		*port = ntohs(((struct sockaddr_in *)sa)->sin_port);
	}
}

/*
 * The peer's AUTH, within hello_ms of the connection: with a key it must
 * prove it; then (only then) the QP may write into registered memory.
 * A refusal is counted, said through the log hook, answered -EACCES.
 */
static int rx_auth(struct conn *c)
{
	struct kvx *x = c->x;
	struct ibv_qp_attr qa = { .qp_access_flags = IBV_ACCESS_REMOTE_WRITE };
	struct r_msg m, ans = { .type = M_AUOK };
	uint8_t want[32];
	const char *why = NULL;
	char a[INET6_ADDRSTRLEN], line[256];
	int rc, port;

	rc = wait_msg(c, x->o.hello_ms, &m);
	if (rc == -ECANCELED)
		return rc;
	if (rc || m.type != M_AUTH) {
		why = rc == -ETIMEDOUT ? "no authentication in time" :
		      rc ? "connection lost before authenticating" : "no authentication message";
	} else if (x->o.auth) {
		auth_mac(want, x->o.key, 's', &c->peer, &c->me);
		if (sodium_memcmp(want, m.mac, 32))
			why = "authentication failed (no or wrong KV key, or a tampered handshake)";
	}
	if (!why) {
		rc = ibv_modify_qp(c->qp, &qa, IBV_QP_ACCESS_FLAGS);
		if (rc) {
			rc = rc > 0 ? -rc : rc;
			return rc;
		}
		if (x->o.auth)
			auth_mac(ans.mac, x->o.key, 'r', &c->peer, &c->me);
		return post_msg(c, &ans, MSG_HDR);
	}
	peer_str(c, a, sizeof(a), &port);
	snprintf(line, sizeof(line), "kv peer %s port %d refused over rdma: %s; no memory "
		 "region exposed, no rkey sent", a, port, why);
	pthread_mutex_lock(&x->mu);
	x->st.rx_auth_refused++;
	snprintf(x->st.rx_last_err, sizeof(x->st.rx_last_err), "%.*s",
		 (int)sizeof(x->st.rx_last_err) - 1, line);
	pthread_mutex_unlock(&x->mu);
	if (x->o.log)
		x->o.log(x->o.log_arg, line);
	ans = (struct r_msg){ .type = M_RESULT, .status = -EACCES };
	if (!post_msg(c, &ans, MSG_HDR))
		drain_sends(c, 1000);
	return -EACCES;
}

static void rx_touch(struct kvx *x)
{
	pthread_mutex_lock(&x->mu);
	clock_gettime(CLOCK_MONOTONIC, &x->rdma->rx_active);
	pthread_mutex_unlock(&x->mu);
}

/*
 * One transfer on c, its REQ in m: grant a stage, check the entries as
 * they come, commit at DONE, answer. 0: the connection may carry the next
 * one; <0: close it (the stage of a failed transfer is deregistered, so a
 * write still under way from the peer fails instead of landing anywhere).
 */
static int rx_serve(struct conn *c, const struct r_msg *m)
{
	struct kvx *x = c->x;
	struct r_msg ans = { .type = M_GRANT }, in;
	struct w_hello h = { .magic = KVX_MAGIC_HELLO, .ver = KVX_VERSION, .nstreams = 1,
			     .dst_arena = m->dst_arena, .xfer = m->xfer, .total = m->total,
			     .nslices = m->nslices };
	struct stage *st = NULL, *sg = c->standing;
	struct rx *t;
	char why[160] = "";
	bool keep = false, ahead = false;
	int rc = 0, ms;
	/* the sender writes into the stage we granted ahead (both match) */
	bool pre = sg && m->rkey && m->rkey == sg->mr->rkey &&
		   m->addr == (uintptr_t)sg->buf && m->total <= sg->len;

	c->standing = NULL;
	if (pre)
		st = sg;
	else
		stage_put(x, sg);
	pthread_mutex_lock(&x->mu);
	x->st.rx_last_rdma = c->info;
	t = kvx_rx_get_locked(x, &h, false, &rc);
	pthread_mutex_unlock(&x->mu);
	if (t) {
		if (!st)
			st = stage_get(x, c->dev, m->total);
		if (!st) {
			rc = -ENOMEM;
			pthread_mutex_lock(&x->mu);
			kvx_rx_fail_locked(x, t, rc, "transfer %016llx: no registered stage "
					   "of %llu bytes", (unsigned long long)t->id,
					   (unsigned long long)m->total);
			pthread_mutex_unlock(&x->mu);
		} else {
			t->stage = st->buf;
			t->stage_len = st->len;
			ans.addr = (uintptr_t)st->buf;
			ans.rkey = st->mr->rkey;
		}
	}
	ans.status = rc;
	ans.xfer = m->xfer;
	if (pre) {
		/* no GRANT awaited: a refusal is the answer, and the writes
		 * that may be landing end with the connection */
		if (rc) {
			ans.type = M_RESULT;
			ans.addr = ans.rkey = 0;
			if (!post_msg(c, &ans, MSG_HDR))
				drain_sends(c, 2000);
			goto out;
		}
	} else if (post_msg(c, &ans, MSG_HDR)) {
		rc = -EIO;
		goto out;
	}
	if (rc) {			/* refused before anything was written */
		keep = true;
		goto out;
	}
	/* the slices, their entries as they land; allow 1 MB/s at least */
	ms = x->o.timeout_ms + (int)(m->total / 1000 > 600000 ? 600000 : m->total / 1000);
	for (;;) {
		rc = wait_msg(c, ms, &in);
		if (!rc && ((in.type != M_PROG && in.type != M_DONE) || in.xfer != t->id))
			rc = -EPROTO;
		if (rc) {
			pthread_mutex_lock(&x->mu);
			kvx_rx_fail_locked(x, t, rc, "transfer %016llx: rdma: %s before all "
					   "slices arrived", (unsigned long long)t->id,
					   rc == -ECONNRESET ? "peer disconnected mid-transfer" :
					   strerror(-rc));
			pthread_mutex_unlock(&x->mu);
			goto out;	/* nobody to answer */
		}
		rx_touch(x);
		rc = rx_verify(x, t, in.e, in.count, why, sizeof(why));
		if (!rc && in.type == M_DONE && t->got != t->nslices) {
			snprintf(why, sizeof(why), "DONE after %u of %u slices", t->got,
				 t->nslices);
			rc = -EPROTO;
		}
		if (rc) {
			pthread_mutex_lock(&x->mu);
			kvx_rx_fail_locked(x, t, rc, "transfer %016llx: rdma: %s",
					   (unsigned long long)t->id, why);
			pthread_mutex_unlock(&x->mu);
			break;
		}
		if (in.type == M_DONE)
			break;
	}
	if (!rc) {
		rc = kvx_rx_finish(x, t);
		keep = true;		/* every write landed: the stage is clean */
		if (!rc) {
			pthread_mutex_lock(&x->mu);
			x->st.rx_rdma++;
			pthread_mutex_unlock(&x->mu);
		}
	}
	ans = (struct r_msg){ .type = M_RESULT, .status = rc, .xfer = m->xfer };
	if (!rc && keep && st->len <= KVR_STANDING_MAX) {
		/* kept for this connection's next transfer, granted now */
		ahead = true;
		ans.addr = (uintptr_t)st->buf;
		ans.rkey = st->mr->rkey;
		ans.total = st->len;
	}
	if (post_msg(c, &ans, MSG_HDR))
		keep = false;
	if (!keep)
		drain_sends(c, 2000);	/* the answer out before the close */
out:
	pthread_mutex_lock(&x->mu);
	if (t) {
		if (!t->done)
			kvx_rx_fail_locked(x, t, -ECONNRESET, "transfer %016llx: rdma "
					   "connection lost", (unsigned long long)t->id);
		kvx_rx_put_locked(x, t);
	}
	pthread_mutex_unlock(&x->mu);
	if (!keep && st)
		conn_close(c);		/* no write of this peer lands after this */
	if (keep && ahead)
		c->standing = st;
	else if (keep)
		stage_put(x, st);
	else
		stage_free(st);
	return keep ? 0 : -1;
}

static void *rx_conn(void *arg)
{
	struct lconn *lc = arg;
	struct kvx *x = lc->x;
	struct kvr *k = x->rdma;
	struct conn c = { .x = x, .id = lc->id, .peer = lc->peer, .have_peer = lc->have_peer };
	struct rdma_conn_param cp = { .responder_resources = 1, .initiator_depth = 1,
				      .rnr_retry_count = 7 };
	struct timespec last;
	struct r_msg m;
	int ms = x->o.timeout_ms, rc, ev;

	free(lc);
	c.ch = rdma_create_event_channel();
	if (!c.ch || rdma_migrate_id(c.id, c.ch)) {
		rdma_reject(c.id, NULL, 0);
		goto out;
	}
	set_nonblock(c.ch->fd);
	c.dev = dev_index(k, c.id->verbs);
	if (c.dev < 0 || conn_setup(&c, k->pd[c.dev], true)) {
		rdma_reject(c.id, NULL, 0);
		goto out;
	}
	local_info(&c, &c.me);
	if (peer_info(&c) || qp_to(&c, IBV_QPS_RTR, 0) || qp_to(&c, IBV_QPS_RTS, 0)) {
		rdma_reject(c.id, NULL, 0);
		goto out;
	}
	cp.private_data = &c.me;
	cp.private_data_len = sizeof(c.me);
	cp.qp_num = c.qp->qp_num;
	if (rdma_accept(c.id, &cp) || cm_wait(&c, RDMA_CM_EVENT_ESTABLISHED, ms, &ev))
		goto out;
	if (rx_auth(&c))
		goto out;
	/* transfers, until the peer closes or the connection idles out */
	clock_gettime(CLOCK_MONOTONIC, &last);
	for (;;) {
		rc = wait_msg(&c, 5000, &m);
		if (rc == -ETIMEDOUT) {
			struct timespec act;

			pthread_mutex_lock(&x->mu);
			act = k->rx_active;
			pthread_mutex_unlock(&x->mu);
			/* a data-only connection lives while its siblings carry work */
			if (kvx_since(&last) * 1000 < KVR_RX_IDLE_MS ||
			    kvx_since(&act) * 1000 < KVR_RX_IDLE_MS)
				continue;
			break;
		}
		if (rc || m.type != M_REQ)
			break;
		rx_touch(x);
		if (rx_serve(&c, &m))
			break;
		clock_gettime(CLOCK_MONOTONIC, &last);
	}
out:
	conn_close(&c);
	stage_free(c.standing);		/* after the close: no write lands in it */
	pthread_mutex_lock(&x->mu);
	x->rx_threads--;
	pthread_cond_broadcast(&x->cv);
	pthread_mutex_unlock(&x->mu);
	return NULL;
}

static void *rx_listen(void *arg)
{
	struct kvx *x = arg;
	struct kvr *k = x->rdma;

	while (!x->stop) {
		struct pollfd p = { .fd = k->lch->fd, .events = POLLIN };
		struct rdma_cm_event *ev;
		struct lconn *lc;

		if (rdma_get_cm_event(k->lch, &ev)) {
			poll(&p, 1, 100);
			continue;
		}
		if (ev->event != RDMA_CM_EVENT_CONNECT_REQUEST) {
			rdma_ack_cm_event(ev);
			continue;
		}
		lc = calloc(1, sizeof(*lc));
		if (!lc) {
			rdma_reject(ev->id, NULL, 0);
			rdma_ack_cm_event(ev);
			continue;
		}
		lc->x = x;
		lc->id = ev->id;
		if (ev->param.conn.private_data &&
		    ev->param.conn.private_data_len >= sizeof(lc->peer)) {
			memcpy(&lc->peer, ev->param.conn.private_data, sizeof(lc->peer));
			lc->have_peer = true;
		}
		rdma_ack_cm_event(ev);
		if (kvx_spawn_rx(x, rx_conn, lc)) {
			rdma_reject(lc->id, NULL, 0);
			rdma_destroy_id(lc->id);
			free(lc);
		}
	}
	return NULL;
}

int kvr_listen(struct kvx *x, const struct sockaddr_storage *ss, char *why, size_t wl)
{
	struct kvr *k = x->rdma;
	int rc;

	k->lch = rdma_create_event_channel();
	if (!k->lch) {
		rc = -errno;
		snprintf(why, wl, "rdma event channel: %s", strerror(-rc));
		return rc;
	}
	set_nonblock(k->lch->fd);
	if (rdma_create_id(k->lch, &k->lid, NULL, RDMA_PS_TCP)) {
		rc = -errno;
		snprintf(why, wl, "rdma_create_id: %s", strerror(-rc));
		goto fail;
	}
	if (rdma_bind_addr(k->lid, (struct sockaddr *)ss) || rdma_listen(k->lid, 64)) {
		rc = -errno;
		snprintf(why, wl, "rdma listen on port %d: %s", x->port, strerror(-rc));
		goto fail;
	}
	if (pthread_create(&k->lthr, NULL, rx_listen, x)) {
		rc = -EAGAIN;
		snprintf(why, wl, "no thread");
		goto fail;
	}
	k->listening = true;
	x->rdma_listening = true;
	return 0;
fail:
	if (k->lid)
		rdma_destroy_id(k->lid);
	rdma_destroy_event_channel(k->lch);
	k->lid = NULL;
	k->lch = NULL;
	return rc;
}

void kvr_stop(struct kvx *x)
{
	struct kvr *k = x->rdma;

	if (!k->listening)
		return;
	pthread_join(k->lthr, NULL);
	rdma_destroy_id(k->lid);
	rdma_destroy_event_channel(k->lch);
	k->listening = false;
}

/* ---- sender ------------------------------------------------------------- */

/*
 * One authenticated connection to the peer at ss: rdma_cm resolution and
 * connect with our private data, the peer's checked, then AUTH/AUOK.
 * -EACCES: refused either way (why says which).
 */
static int conn_connect(struct conn *c, struct kvx *x, const char *peer,
			const struct sockaddr_storage *ss, char *why, size_t wl)
{
	struct kvr *k = x->rdma;
	struct rdma_conn_param cp = { .responder_resources = 1, .initiator_depth = 1,
				      .retry_count = 7, .rnr_retry_count = 7 };
	struct r_msg m = { .type = M_AUTH }, ans;
	uint8_t want[32];
	int ms = x->o.timeout_ms, rc, ev;
	bool need;

	c->x = x;
	c->ch = rdma_create_event_channel();
	if (!c->ch || rdma_create_id(c->ch, &c->id, NULL, RDMA_PS_TCP)) {
		rc = -errno;
		snprintf(why, wl, "rdma_cm: %s", strerror(-rc));
		return rc;
	}
	set_nonblock(c->ch->fd);
	if (rdma_resolve_addr(c->id, NULL, (struct sockaddr *)ss, ms)) {
		rc = -errno;
		snprintf(why, wl, "rdma address of %s: %s", peer, strerror(-rc));
		return rc;
	}
	rc = cm_wait(c, RDMA_CM_EVENT_ADDR_RESOLVED, ms, &ev);
	if (!rc && rdma_resolve_route(c->id, ms))
		rc = -errno;
	if (!rc)
		rc = cm_wait(c, RDMA_CM_EVENT_ROUTE_RESOLVED, ms, &ev);
	if (rc) {
		snprintf(why, wl, "rdma route to %s: %s", peer, strerror(-rc));
		return rc;
	}
	c->dev = dev_index(k, c->id->verbs);
	if (c->dev < 0) {
		snprintf(why, wl, "rdma route to %s uses a device without an active port",
			 peer);
		return -ENODEV;
	}
	rc = conn_setup(c, k->pd[c->dev], false);
	if (rc) {
		snprintf(why, wl, "rdma queue pair: %s", strerror(-rc));
		return rc;
	}
	local_info(c, &c->me);
	cp.private_data = &c->me;
	cp.private_data_len = sizeof(c->me);
	if (rdma_connect(c->id, &cp)) {
		rc = -errno;
		snprintf(why, wl, "rdma connect %s: %s", peer, strerror(-rc));
		return rc;
	}
	rc = cm_wait(c, RDMA_CM_EVENT_ESTABLISHED, ms, &ev);
	if (rc) {
		snprintf(why, wl, "rdma connect %s: %s%s", peer, cm_name(ev),
			 rc == -ECONNREFUSED ? " (no rdma listener there?)" : "");
		return rc;
	}
	if (peer_info(c)) {
		snprintf(why, wl, "rdma handshake with %s: bad private data (not an "
			 "idn-agent of this version?)", peer);
		return -EPROTO;
	}
	/* the receiver's nonce is the challenge: prove the key over it */
	need = le32toh(c->peer.flags) & KVR_F_KEY;
	if (x->o.auth && !need) {
		snprintf(why, wl, "peer %s does not authenticate KV peers over rdma (no KV key "
			 "there): refused, a key is set here", peer);
		return -EACCES;
	}
	if (x->o.auth)
		auth_mac(m.mac, x->o.key, 's', &c->me, &c->peer);
	rc = post_msg(c, &m, MSG_HDR);
	if (!rc)
		rc = wait_msg(c, ms, &ans);
	if (rc && need && !x->o.auth) {	/* refused, whatever came back first */
		snprintf(why, wl, "peer %s requires KV peer authentication and no KV key is "
			 "set here", peer);
		return -EACCES;
	}
	if (rc) {
		snprintf(why, wl, "rdma authentication with %s: %s", peer, strerror(-rc));
		return rc;
	}
	if (ans.type == M_RESULT) {
		if (need && !x->o.auth)
			snprintf(why, wl, "peer %s requires KV peer authentication and no KV "
				 "key is set here", peer);
		else
			snprintf(why, wl, "peer %s refused our KV key over rdma (authentication "
				 "failed: a different key?)", peer);
		return -EACCES;
	}
	if (ans.type != M_AUOK) {
		snprintf(why, wl, "rdma authentication with %s: unexpected answer", peer);
		return -EPROTO;
	}
	if (x->o.auth) {
		auth_mac(want, x->o.key, 'r', &c->me, &c->peer);
		if (sodium_memcmp(want, ans.mac, 32)) {
			snprintf(why, wl, "peer %s could not prove the KV key over rdma (a "
				 "different key?): refused", peer);
			return -EACCES;
		}
	}
	return 0;
}

static void grp_close(struct grp *g)
{
	for (int i = 0; i < g->n; i++)
		conn_close(&g->c[i]);
	free(g);
}

/* n connections to peer, all on one device; fewer when a later one fails */
static struct grp *grp_open(struct kvx *x, const char *peer, int n, int *err, char *why,
			    size_t wl)
{
	struct sockaddr_storage ss;
	socklen_t slen;
	struct grp *g;
	int rc;

	rc = kvx_resolve(peer, &ss, &slen);
	if (rc) {
		snprintf(why, wl, "bad peer address %s", peer);
		*err = rc;
		return NULL;
	}
	g = calloc(1, sizeof(*g));
	if (!g) {
		*err = -ENOMEM;
		snprintf(why, wl, "out of memory");
		return NULL;
	}
	snprintf(g->peer, sizeof(g->peer), "%s", peer);
	for (g->n = 0; g->n < n; g->n++) {
		char w2[200];

		rc = conn_connect(&g->c[g->n], x, peer, &ss, g->n ? w2 : why, g->n ? sizeof(w2) : wl);
		if (!rc && g->n && g->c[g->n].dev != g->c[0].dev)
			rc = -EXDEV;
		if (rc) {
			conn_close(&g->c[g->n]);
			break;
		}
	}
	if (!g->n) {
		free(g);
		*err = rc;
		return NULL;
	}
	g->dev = g->c[0].dev;
	return g;
}

/* an idle group to peer from the pool (closing the ones idle too long) */
static struct grp *pool_take(struct kvx *x, const char *peer)
{
	struct kvr *k = x->rdma;
	struct grp *g = NULL, *old = NULL, **pp;

	pthread_mutex_lock(&x->mu);
	for (pp = &k->idle; *pp;) {
		struct grp *e = *pp;

		if (kvx_since(&e->last) * 1000 > KVR_IDLE_MS) {
			*pp = e->next;
			e->next = old;
			old = e;
		} else if (!g && !strcmp(e->peer, peer)) {
			*pp = e->next;
			g = e;
		} else {
			pp = &e->next;
		}
	}
	pthread_mutex_unlock(&x->mu);
	while (old) {
		struct grp *e = old;

		old = e->next;
		grp_close(e);
	}
	/* one the peer closed meanwhile (idle there, restarted) */
	for (int i = 0; g && i < g->n; i++)
		if (g->c[i].gone || cm_poll(&g->c[i])) {
			grp_close(g);
			g = NULL;
		}
	return g;
}

static void pool_put(struct kvx *x, struct grp *g)
{
	struct kvr *k = x->rdma;
	int same = 0;

	clock_gettime(CLOCK_MONOTONIC, &g->last);
	pthread_mutex_lock(&x->mu);
	for (struct grp *e = k->idle; e; e = e->next)
		same += !strcmp(e->peer, g->peer);
	if (same < KVR_POOL && !x->stop) {
		g->next = k->idle;
		k->idle = g;
		g = NULL;
	}
	pthread_mutex_unlock(&x->mu);
	if (g)
		grp_close(g);
}

/*
 * Every completion of g handled: a slice written (fin, in flight -1), a
 * message slot free, a message on the first connection (a RESULT before
 * the end: the peer failed the transfer). 0, 1 when a RESULT came (in
 * res), -errno with why.
 */
struct txs {
	struct grp *g;
	uint8_t *fin;
	uint32_t infl[KVR_MAXQP];
	struct r_msg res;
	bool have_res;
};

static int tx_wc(struct txs *s, int q, const struct ibv_wc *wc, int rc)
{
	if (rc)
		return rc;
	if (wc->wr_id >= KVR_WR_DATA) {
		s->fin[wc->wr_id - KVR_WR_DATA] = 1;
		s->infl[q]--;
	} else if (wc->wr_id < KVR_NRECV) {
		rc = take_msg(&s->g->c[q], wc->wr_id, wc->byte_len, &s->res);
		if (rc)
			return rc;
		if (q || s->res.type != M_RESULT)
			return -EPROTO;
		s->have_res = true;
	}
	return 0;
}

/* whatever completed on g, without waiting: the number handled, or -errno */
static int tx_poll(struct txs *s, struct ibv_wc *bad)
{
	int got = 0;

	for (int q = 0; q < s->g->n; q++) {
		struct ibv_wc wc[16];
		int n = ibv_poll_cq(s->g->c[q].cq, 16, wc);

		if (n < 0)
			return -EIO;
		for (int i = 0; i < n; i++) {
			int rc;

			wc_note(&s->g->c[q], &wc[i]);
			rc = tx_wc(s, q, &wc[i], wc[i].status == IBV_WC_SUCCESS ? 0 : -EIO);
			if (rc) {
				*bad = wc[i];
				return rc;
			}
		}
		got += n;
	}
	return got;
}

/*
 * What completed on g, sleeping on the completion channels (and the first
 * connection's cm channel: a disconnect ends the wait) up to ms when
 * nothing has: the number handled (0: nothing in ms), or -errno.
 */
static int tx_wait(struct txs *s, int ms, struct ibv_wc *bad)
{
	struct grp *g = s->g;
	struct pollfd p[KVR_MAXQP + 1];
	int n = tx_poll(s, bad);

	if (n)
		return n;
	if (g->c[0].gone)
		return g->c[0].gone;
	for (int q = 0; q < g->n; q++) {
		if (ibv_req_notify_cq(g->c[q].cq, 0))
			return -EIO;
		p[q] = (struct pollfd){ .fd = g->c[q].cc->fd, .events = POLLIN };
	}
	n = tx_poll(s, bad);		/* armed: what completed before is seen here */
	if (n)
		return n;
	if (g->c[0].x->stop)
		return -ECANCELED;
	p[g->n] = (struct pollfd){ .fd = g->c[0].ch->fd, .events = POLLIN };
	if (poll(p, g->n + 1, ms) < 0 && errno != EINTR)
		return -errno;
	if (p[g->n].revents & POLLIN) {
		n = cm_poll(&g->c[0]);
		if (n)
			g->c[0].gone = n;
	}
	for (int q = 0; q < g->n; q++)
		if (p[q].revents & POLLIN) {
			struct ibv_cq *cq;
			void *ctx;

			if (!ibv_get_cq_event(g->c[q].cc, &cq, &ctx))
				ibv_ack_cq_events(cq, 1);
		}
	n = tx_poll(s, bad);
	return n || !g->c[0].gone ? n : g->c[0].gone;
}

static void tab_entry(struct w_slice *e, const struct tx *t, const struct tslice *s,
		      const uint8_t *src)
{
	*e = (struct w_slice){
		.magic = htole32(KVX_MAGIC_SLICE), .seq = htole32(s->seq),
		.stage_off = htole64(s->stage_off), .dst_off = htole64(s->dst_off),
		.len = htole64(s->len), .tag = htole64(s->tag),
		.hash = htole64(kvx_hash64(src + s->src_off, s->len,
					   kvx_slice_seed(t->id, s->seq, s->stage_off, s->dst_off,
							  s->len, s->tag))),
	};
}

/* after a failed completion: did the peer answer first (a RESULT on c0)? */
static bool late_result(struct txs *s)
{
	struct conn *c0 = &s->g->c[0];
	struct timespec t0;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	while (!s->have_res && kvx_since(&t0) < 0.5) {
		struct ibv_wc wc;
		int n = ibv_poll_cq(c0->cq, 1, &wc);

		if (n < 0)
			break;
		if (!n) {
			usleep(1000);
			continue;
		}
		wc_note(c0, &wc);
		if (wc.status == IBV_WC_SUCCESS && wc.wr_id < KVR_NRECV &&
		    !take_msg(c0, wc.wr_id, wc.byte_len, &s->res) && s->res.type == M_RESULT)
			s->have_res = true;
	}
	return s->have_res;
}

/*
 * One transfer over g: REQ/GRANT on the first connection, the writes
 * striped over all of them, the entries of landed slices in PROG/DONE, the
 * verdict. *granted: the peer granted a stage (from there a failure is the
 * transfer's, not a dead pooled connection's). tm: seconds since t0 at the
 * grant and at the last entry sent. 0 or -errno with why.
 */
static int tx_run(struct grp *g, struct tx *t, const struct tslice *sl, uint32_t nsl,
		  const uint8_t *src, const struct timespec *t0, double tm[2], bool *granted,
		  char *why, size_t wl)
{
	struct kvx *x = t->x;
	struct kvr *k = x->rdma;
	struct conn *c0 = &g->c[0];
	struct ibv_mr *mr = k->mr[t->src_arena][g->dev], *bad_mr = NULL;
	struct r_msg req = { .type = M_REQ, .nslices = nsl, .dst_arena = t->dst_arena,
			     .xfer = t->id }, grant, m;
	struct txs s = { .g = g };
	struct w_slice *tab = NULL;
	struct ibv_wc wc = { 0 };
	uint32_t next = 0, hashed = 0, ready = 0, sent = 0, stop_at = nsl, n = g->n;
	uint64_t total = 0;
	uint8_t *bad = NULL;
	int ms = x->o.timeout_ms, rc;
	struct timespec tw;

	*granted = false;
	for (uint32_t i = 0; i < nsl; i++)
		total += sl[i].len;
	req.total = total;
	if (!mr) {
		snprintf(why, wl, "arena %u has no rdma registration", t->src_arena);
		return -ENOENT;
	}
	/* the stage granted ahead in the last RESULT, when this fits: write at
	 * once (a grant as good as GRANT's; REQ names it, RC orders REQ before
	 * the first queue pair's writes and DONE) */
	g->sg_used = g->sg_rkey && total <= g->sg_len;
	if (g->sg_used) {
		req.addr = g->sg_addr;
		req.rkey = g->sg_rkey;
	}
	g->sg_rkey = 0;			/* the next RESULT grants again */
	rc = post_msg(c0, &req, MSG_HDR);
	if (!rc && g->sg_used)
		grant = (struct r_msg){ .type = M_GRANT, .xfer = t->id, .addr = req.addr,
					.rkey = req.rkey };
	else if (!rc)
		rc = wait_msg(c0, ms, &grant);
	if (!rc && (grant.type != M_GRANT || grant.xfer != t->id))
		rc = -EPROTO;
	if (rc) {
		snprintf(why, wl, "rdma request to %s: %s", t->peer, strerror(-rc));
		return rc;
	}
	*granted = true;
	if (grant.status) {
		rc = grant.status < 0 ? grant.status : -EPROTO;
		snprintf(why, wl, "peer %s rejected the transfer: %s", t->peer, strerror(-rc));
		return rc;
	}
	tm[0] = kvx_since(t0);
	s.fin = calloc(nsl, 1);
	tab = calloc(nsl, sizeof(*tab));
	if (!s.fin || !tab) {
		rc = -ENOMEM;
		snprintf(why, wl, "slice table: out of memory");
		goto out;
	}
	if (x->o.fault == KVX_FAULT_TRUNCATE && x->o.fault_slice < nsl)
		stop_at = x->o.fault_slice;

	clock_gettime(CLOCK_MONOTONIC, &tw);
	for (;;) {
		uint32_t lim, busy = 0;
		int got = 0;

		/* slice i on queue pair i mod n, KVR_WINDOW in flight on each */
		while (next < stop_at && s.infl[next % n] < KVR_WINDOW) {
			const struct tslice *e = &sl[next];
			uint32_t q = next % n;
			struct ibv_sge sge = { (uintptr_t)(src + e->src_off), e->len, mr->lkey };
			struct ibv_send_wr wr = {
				.wr_id = KVR_WR_DATA + next, .sg_list = &sge, .num_sge = 1,
				.opcode = IBV_WR_RDMA_WRITE, .send_flags = IBV_SEND_SIGNALED,
				.wr.rdma = { grant.addr + e->stage_off, grant.rkey },
			}, *badwr;

			if (x->o.fault == KVX_FAULT_SLOW && x->o.fault_ms)
				usleep(x->o.fault_ms * 1000);
			if (x->o.fault == KVX_FAULT_CORRUPT && e->seq == x->o.fault_slice && !bad) {
				bad = malloc(e->len);
				bad_mr = bad ? ibv_reg_mr(k->pd[g->dev], bad, e->len,
							  IBV_ACCESS_LOCAL_WRITE) : NULL;
				if (bad_mr) {
					memcpy(bad, src + e->src_off, e->len);
					bad[e->len / 2] ^= 0x40;
					sge = (struct ibv_sge){ (uintptr_t)bad, e->len,
								bad_mr->lkey };
				}
			}
			if (ibv_post_send(g->c[q].qp, &wr, &badwr)) {
				rc = -EIO;
				snprintf(why, wl, "rdma write: post failed");
				goto out;
			}
			s.infl[q]++;
			next++;
			got++;
		}
		/* hash while the writes move (one slice per round) */
		if (hashed < next) {
			tab_entry(&tab[hashed], t, &sl[hashed], src);
			hashed++;
			got++;
		}
		/* landed: write completed, or on c0 (RC orders it before our SEND) */
		while (ready < next && (s.fin[ready] || ready % n == 0))
			ready++;
		lim = ready < hashed ? ready : hashed;
		while (lim > sent && (lim - sent >= KVR_PROG || lim == nsl)) {
			uint32_t c = lim - sent < KVR_PROG ? lim - sent : KVR_PROG;

			m = (struct r_msg){ .type = sent + c == nsl ? M_DONE : M_PROG,
					    .xfer = t->id, .nslices = nsl, .first = sent,
					    .count = c };
			memcpy(m.e, tab + sent, c * sizeof(*tab));
			rc = post_msg(c0, &m, MSG_HDR + c * sizeof(*tab));
			if (rc == -EAGAIN)
				break;	/* all send slots in flight: after completions */
			if (rc) {
				snprintf(why, wl, "rdma send: post failed");
				goto out;
			}
			sent += c;
			got++;
		}
		if (sent == nsl)
			break;
		for (uint32_t q = 0; q < n; q++)
			busy += s.infl[q];
		if (stop_at < nsl && next == stop_at && !busy) {
			rc = -ECONNABORTED;
			snprintf(why, wl, "injected fault: rdma connection closed after %u of %u "
				 "slices", stop_at, nsl);
			goto out;
		}
		rc = got ? tx_poll(&s, &wc) : tx_wait(&s, 200, &wc);
		if (rc > 0)
			clock_gettime(CLOCK_MONOTONIC, &tw);
		else if (!rc && !got && kvx_since(&tw) * 1000 > ms)
			rc = -ETIMEDOUT;
		if (rc < 0 && rc != -EPROTO)
			late_result(&s);
		if (s.have_res) {	/* an answer before the end: the peer failed it */
			rc = s.res.status < 0 ? s.res.status : -EPROTO;
			snprintf(why, wl, "peer %s rejected the transfer: %s", t->peer,
				 strerror(-rc));
			goto out;
		}
		if (rc < 0) {
			snprintf(why, wl, "rdma write to %s: %s (peer gone mid-transfer?)",
				 t->peer, wc_why(rc, &wc));
			goto out;
		}
	}
	tm[1] = kvx_since(t0);
	/* the verdict; and every write and send of ours completed: the queues
	 * of a pooled group start the next transfer empty */
	ms = x->o.timeout_ms + (int)(total / 1000 > 600000 ? 600000 : total / 1000);
	clock_gettime(CLOCK_MONOTONIC, &tw);
	for (;;) {
		uint32_t busy = 0;

		for (uint32_t q = 0; q < n; q++)
			busy += s.infl[q] + (g->c[q].sbusy != 0);
		if (s.have_res && !busy)
			break;
		rc = tx_wait(&s, 200, &wc);
		if (rc > 0)
			clock_gettime(CLOCK_MONOTONIC, &tw);
		else if (!rc && kvx_since(&tw) * 1000 > ms)
			rc = -ETIMEDOUT;
		if (rc < 0 && rc != -EPROTO && late_result(&s) && s.res.status)
			break;
		if (rc < 0) {
			snprintf(why, wl, "rdma: no answer from %s: %s", t->peer, wc_why(rc, &wc));
			goto out;
		}
	}
	rc = s.res.status;
	if (rc) {
		rc = rc < 0 ? rc : -EPROTO;
		snprintf(why, wl, "peer %s rejected the transfer: %s", t->peer, strerror(-rc));
	} else if (s.res.rkey && s.res.total) {
		g->sg_addr = s.res.addr;	/* granted ahead for the next one */
		g->sg_len = s.res.total;
		g->sg_rkey = s.res.rkey;
	}
out:
	if (bad_mr)
		ibv_dereg_mr(bad_mr);
	free(bad);
	free(tab);
	free(s.fin);
	return rc;
}

int kvr_send(struct tx *t, const struct tslice *sl, uint32_t nsl, uint64_t total,
	     const uint8_t *src, bool *setup, char *why, size_t wl)
{
	struct kvx *x = t->x;
	int nq = x->o.rdma_qps ? (int)x->o.rdma_qps : KVR_QPS, rc = -EIO;
	bool granted = false, reused = false;
	double tm[2] = { 0, 0 };
	struct timespec t0;
	struct grp *g;
	char mtu[200];

	clock_gettime(CLOCK_MONOTONIC, &t0);
	*setup = true;
	snprintf(t->res.transport, sizeof(t->res.transport), "rdma");
	if (nq > KVR_MAXQP)
		nq = KVR_MAXQP;
	for (int attempt = 0; attempt < 2; attempt++) {
		g = pool_take(x, t->peer);
		reused = g != NULL;
		if (!g) {
			g = grp_open(x, t->peer, nq, &rc, why, wl);
			if (!g) {
				/* refused by authentication: not a missing path */
				*setup = rc != -EACCES && *setup;
				return rc;
			}
		}
		*setup = false;		/* an RDMA path to the peer exists */
		t->res.rdma = g->c[0].info;
		rc = tx_run(g, t, sl, nsl, src, &t0, tm, &granted, why, wl);
		if (!rc) {
			kvx_rdma_info_str(&g->c[0].info, mtu, sizeof(mtu));
			snprintf(why, wl, "%llu bytes in %u slices over rdma to %s, verified; "
				 "%d queue pairs, connection %s; %s; connect+grant %.0f ms, "
				 "writes %.0f ms, verify+commit %.0f ms",
				 (unsigned long long)total, nsl, t->peer, g->n,
				 !reused ? "new" : g->sg_used ? "reused, stage granted ahead" :
				 "reused", mtu, tm[0] * 1e3,
				 (tm[1] - tm[0]) * 1e3, (kvx_since(&t0) - tm[1]) * 1e3);
			pool_put(x, g);
			return 0;
		}
		grp_close(g);
		if (granted || !reused)
			break;
		/* a pooled connection that died while idle: once more, a new one */
	}
	return rc;
}
