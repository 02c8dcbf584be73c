// SPDX-License-Identifier: GPL-2.0
/*
 * kvx_rdma.c - the KV transfer engine's RDMA transport (see kvxfer.h and
 * kvx_priv.h): rdma_cm connection setup, one memory region per arena and
 * device, slices as RDMA WRITEs with many in flight, completions in event
 * mode (a completion channel, poll(); no busy polling), end-to-end hashes,
 * commit only after every slice verified. Built only where pkg-config
 * finds libibverbs and librdmacm (agent/build.mk defines KVX_HAVE_RDMA).
 *
 * One RC connection per transfer, to the receiver's rdma_cm listener on
 * the same address and port as its TCP listener:
 *   connect / accept private data, both ways: {magic KXDR, ver, active MTU
 *       in bytes, QPN, GID}; path MTU = min of both ends (reported).
 *   sender -> SEND REQ   {xfer, total, nslices, dst_arena}
 *   receiver -> SEND GRANT {status, addr, rkey, table_off}: a registered
 *       stage of total bytes + the slice table (reused between transfers)
 *   sender -> RDMA WRITE of every slice to addr + stage_off (a window of
 *       KVR_WINDOW in flight), then RDMA WRITE of the slice table
 *       (struct w_slice: seq, offsets, length, tag, hash seeded like TCP's)
 *       to addr + table_off, then SEND DONE (RC orders it after the WRITEs)
 *   receiver: checks every entry (bounds, repeats, hash), applies the
 *       transfer (same commit as TCP) and SENDs RESULT {status}.
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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <infiniband/verbs.h>
#include <rdma/rdma_cma.h>

#include "kvxfer.h"
#include "kvx_priv.h"

#define KVR_MAX_DEV	8
#define KVR_MAGIC_PRIV	0x5244584bU	/* "KXDR" */
#define KVR_MAGIC_MSG	0x4d52584bU	/* "KXRM" */
#define KVR_VERSION	2		/* 2: XXH3 slice hashes */
#define KVR_WINDOW	16		/* RDMA WRITEs in flight */
#define KVR_NRECV	4
#define KVR_WR_MSG	0x100ULL	/* wr_id of SENDs; recvs are 0..NRECV-1 */
#define KVR_WR_TABLE	0x200ULL
#define KVR_WR_DATA	0x1000ULL	/* + slice index */

enum { M_REQ = 1, M_GRANT, M_DONE, M_RESULT };

struct r_priv {				/* the handshake, in private data */
	uint32_t magic;
	uint16_t ver, mtu;		/* active MTU of the port, bytes */
	uint32_t qpn;
	uint8_t gid[16];
};

struct r_msg {
	uint32_t magic, type;
	int32_t status;
	uint32_t nslices, dst_arena, rkey;
	uint64_t xfer, total, addr, table_off;
};

struct stage {
	uint8_t *buf;
	uint64_t len;
	struct ibv_mr *mr;
	int dev;
};

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
};

struct conn {
	struct kvx *x;
	struct rdma_event_channel *ch;
	struct rdma_cm_id *id;
	struct ibv_comp_channel *cc;
	struct ibv_cq *cq;
	int dev;
	struct r_msg *msgs;		/* [0, NRECV) receives, [NRECV] the send */
	struct ibv_mr *msg_mr;
	struct r_priv peer;		/* connect request's private data (receiver) */
	bool have_peer;
	struct kvx_rdma_info info;
};

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

	return ibv_post_recv(c->id->qp, &wr, &bad) ? -EIO : 0;
}

static int post_msg(struct conn *c, const struct r_msg *m)
{
	struct r_msg *s = &c->msgs[KVR_NRECV];
	struct ibv_sge sge = { (uintptr_t)s, sizeof(*s), c->msg_mr->lkey };
	struct ibv_send_wr wr = { .wr_id = KVR_WR_MSG, .sg_list = &sge, .num_sge = 1,
				  .opcode = IBV_WR_SEND, .send_flags = IBV_SEND_SIGNALED }, *bad;

	*s = *m;
	s->magic = KVR_MAGIC_MSG;
	return ibv_post_send(c->id->qp, &wr, &bad) ? -EIO : 0;
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
		if (n == 1)
			return wc->status == IBV_WC_SUCCESS ? 0 : -EIO;
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
				return rc;
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

static int conn_setup(struct conn *c, struct ibv_pd *pd)
{
	struct ibv_qp_init_attr qa = {
		.qp_type = IBV_QPT_RC,
		.cap = { .max_send_wr = KVR_WINDOW + 4, .max_recv_wr = KVR_NRECV,
			 .max_send_sge = 1, .max_recv_sge = 1 },
	};

	c->cc = ibv_create_comp_channel(c->id->verbs);
	if (!c->cc)
		return -errno;
	set_nonblock(c->cc->fd);
	c->cq = ibv_create_cq(c->id->verbs, KVR_WINDOW + KVR_NRECV + 8, NULL, c->cc, 0);
	if (!c->cq)
		return -errno;
	qa.send_cq = qa.recv_cq = c->cq;
	if (rdma_create_qp(c->id, pd, &qa))
		return -errno;
	c->msgs = calloc(KVR_NRECV + 1, sizeof(*c->msgs));
	if (!c->msgs)
		return -ENOMEM;
	c->msg_mr = ibv_reg_mr(pd, c->msgs, (KVR_NRECV + 1) * sizeof(*c->msgs),
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
	if (c->id && c->id->qp)
		rdma_destroy_qp(c->id);
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
}

/* our half of the handshake: the port's active MTU, the QPN, the GID */
static void local_info(struct conn *c, struct r_priv *p)
{
	struct ibv_port_attr pa;
	struct sockaddr *sa = rdma_get_local_addr(c->id);
	union ibv_gid g;
	bool found = false;

	memset(p, 0, sizeof(*p));
	p->magic = htole32(KVR_MAGIC_PRIV);
	p->ver = htole16(KVR_VERSION);
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
	p->qpn = htole32(c->id->qp->qp_num);
	c->info.local_mtu = le16toh(p->mtu);
	c->info.local_qpn = c->id->qp->qp_num;
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

/* every table entry checked like TCP's slices: bounds, repeats, hash */
static int rx_verify(struct kvx *x, struct rx *t, const struct w_slice *tab, char *why,
		     size_t wl)
{
	uint64_t alen = t->dst_arena != KVX_ARENA_NONE ? x->ar[t->dst_arena].len : 0;

	for (uint32_t i = 0; i < t->nslices; i++) {
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

static void *rx_conn(void *arg)
{
	struct lconn *lc = arg;
	struct kvx *x = lc->x;
	struct kvr *k = x->rdma;
	struct conn c = { .x = x, .id = lc->id, .peer = lc->peer, .have_peer = lc->have_peer };
	struct rdma_conn_param cp = { .responder_resources = 1, .initiator_depth = 1,
				      .rnr_retry_count = 7 };
	struct r_msg m = { 0 }, ans = { .type = M_GRANT };
	struct stage *st = NULL;
	struct rx *t = NULL;
	struct w_hello h = { 0 };
	struct r_priv me;
	struct ibv_wc wc;
	char why[160] = "";
	int ms = x->o.timeout_ms, rc, ev;
	bool got = false;

	free(lc);
	c.ch = rdma_create_event_channel();
	if (!c.ch || rdma_migrate_id(c.id, c.ch)) {
		rdma_reject(c.id, NULL, 0);
		goto out;
	}
	set_nonblock(c.ch->fd);
	c.dev = dev_index(k, c.id->verbs);
	if (c.dev < 0 || conn_setup(&c, k->pd[c.dev])) {
		rdma_reject(c.id, NULL, 0);
		goto out;
	}
	local_info(&c, &me);
	if (peer_info(&c)) {
		rdma_reject(c.id, NULL, 0);
		goto out;
	}
	cp.private_data = &me;
	cp.private_data_len = sizeof(me);
	if (rdma_accept(c.id, &cp) || cm_wait(&c, RDMA_CM_EVENT_ESTABLISHED, ms, &ev))
		goto out;
	pthread_mutex_lock(&x->mu);
	x->st.rx_last_rdma = c.info;
	pthread_mutex_unlock(&x->mu);

	/* REQ */
	do {
		rc = cq_next(&c, &wc, ms);
	} while (!rc && !(wc.opcode & IBV_WC_RECV));
	if (rc || wc.byte_len < sizeof(m))
		goto out;
	m = c.msgs[wc.wr_id];
	if (m.magic != KVR_MAGIC_MSG || m.type != M_REQ)
		goto out;
	h = (struct w_hello){ .magic = KVX_MAGIC_HELLO, .ver = KVX_VERSION, .nstreams = 1,
			      .dst_arena = m.dst_arena, .xfer = m.xfer, .total = m.total,
			      .nslices = m.nslices };
	pthread_mutex_lock(&x->mu);
	t = kvx_rx_get_locked(x, &h, false, &rc);
	pthread_mutex_unlock(&x->mu);
	if (t) {
		ans.table_off = (m.total + 63) & ~63ULL;
		st = stage_get(x, c.dev, ans.table_off + (uint64_t)m.nslices *
			       sizeof(struct w_slice));
		if (!st) {
			rc = -ENOMEM;
			pthread_mutex_lock(&x->mu);
			kvx_rx_fail_locked(x, t, rc, "transfer %016llx: no registered stage "
					   "of %llu bytes", (unsigned long long)t->id,
					   (unsigned long long)m.total);
			pthread_mutex_unlock(&x->mu);
		} else {
			t->stage = st->buf;
			t->stage_len = st->len;
			ans.addr = (uintptr_t)st->buf;
			ans.rkey = st->mr->rkey;
		}
	}
	ans.status = rc;
	if (post_msg(&c, &ans) || rc)
		goto answered;

	/* DONE: the peer wrote everything, then the table; allow 1 MB/s at least */
	ms = x->o.timeout_ms + (int)(m.total / 1000 > 600000 ? 600000 : m.total / 1000);
	for (;;) {
		rc = cq_next(&c, &wc, ms);
		if (rc)
			break;
		if (!(wc.opcode & IBV_WC_RECV))
			continue;
		if (c.msgs[wc.wr_id].magic == KVR_MAGIC_MSG &&
		    c.msgs[wc.wr_id].type == M_DONE) {
			got = true;
			break;
		}
	}
	if (!got) {
		pthread_mutex_lock(&x->mu);
		kvx_rx_fail_locked(x, t, rc ? rc : -EPROTO, "transfer %016llx: rdma: %s "
				   "before all slices arrived", (unsigned long long)t->id,
				   rc == -ECONNRESET ? "peer disconnected mid-transfer" :
				   rc == -EIO ? ibv_wc_status_str(wc.status) :
				   strerror(-(rc ? rc : -EPROTO)));
		pthread_mutex_unlock(&x->mu);
		goto out;		/* nobody to answer */
	}
	rc = rx_verify(x, t, (const struct w_slice *)(st->buf + ans.table_off), why,
		       sizeof(why));
	if (rc) {
		pthread_mutex_lock(&x->mu);
		kvx_rx_fail_locked(x, t, rc, "transfer %016llx: rdma: %s",
				   (unsigned long long)t->id, why);
		pthread_mutex_unlock(&x->mu);
	} else {
		rc = kvx_rx_finish(x, t);
		if (!rc) {
			pthread_mutex_lock(&x->mu);
			x->st.rx_rdma++;
			pthread_mutex_unlock(&x->mu);
		}
	}
	ans = (struct r_msg){ .type = M_RESULT, .status = rc };
	post_msg(&c, &ans);
answered:
	/* the answer is sent; the sender disconnects (or has gone) */
	while (!cq_next(&c, &wc, 2000) && wc.wr_id != KVR_WR_MSG)
		;
	cm_wait(&c, RDMA_CM_EVENT_DISCONNECTED, 2000, &ev);
out:
	if (c.id)
		rdma_disconnect(c.id);
	pthread_mutex_lock(&x->mu);
	if (t) {
		if (!t->done)
			kvx_rx_fail_locked(x, t, -ECONNRESET, "transfer %016llx: rdma "
					   "connection lost", (unsigned long long)t->id);
		kvx_rx_put_locked(x, t);
	}
	pthread_mutex_unlock(&x->mu);
	stage_put(x, st);
	conn_free(&c);
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

int kvr_send(struct tx *t, const struct tslice *sl, uint32_t nsl, uint64_t total,
	     const uint8_t *src, bool *setup, char *why, size_t wl)
{
	struct kvx *x = t->x;
	struct kvr *k = x->rdma;
	struct conn c = { .x = x };
	struct rdma_conn_param cp = { .responder_resources = 1, .initiator_depth = 1,
				      .retry_count = 7, .rnr_retry_count = 7 };
	struct sockaddr_storage ss;
	struct w_slice *tab = NULL;
	struct ibv_mr *tab_mr = NULL, *bad_mr = NULL, *mr;
	uint8_t *bad = NULL;
	struct r_msg req, grant = { 0 }, res = { 0 };
	struct r_priv me;
	struct ibv_wc wc;
	uint32_t posted = 0, hashed = 0, done = 0, stop_at = nsl;
	int ms = x->o.timeout_ms, rc, ev;
	bool have_grant = false, have_res = false, table_done = false, msg_done = false;
	socklen_t slen;
	char mtu[200];
	struct timespec t0;
	double t_conn = 0, t_data = 0;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	*setup = true;
	snprintf(t->res.transport, sizeof(t->res.transport), "rdma");
	rc = kvx_resolve(t->peer, &ss, &slen);
	if (rc) {
		snprintf(why, wl, "bad peer address %s", t->peer);
		return rc;
	}
	c.ch = rdma_create_event_channel();
	if (!c.ch || rdma_create_id(c.ch, &c.id, NULL, RDMA_PS_TCP)) {
		rc = -errno;
		snprintf(why, wl, "rdma_cm: %s", strerror(-rc));
		goto out;
	}
	set_nonblock(c.ch->fd);
	if (rdma_resolve_addr(c.id, NULL, (struct sockaddr *)&ss, ms)) {
		rc = -errno;
		snprintf(why, wl, "rdma address of %s: %s", t->peer, strerror(-rc));
		goto out;
	}
	rc = cm_wait(&c, RDMA_CM_EVENT_ADDR_RESOLVED, ms, &ev);
	if (!rc && rdma_resolve_route(c.id, ms))
		rc = -errno;
	if (!rc)
		rc = cm_wait(&c, RDMA_CM_EVENT_ROUTE_RESOLVED, ms, &ev);
	if (rc) {
		snprintf(why, wl, "rdma route to %s: %s", t->peer, strerror(-rc));
		goto out;
	}
	c.dev = dev_index(k, c.id->verbs);
	if (c.dev < 0) {
		rc = -ENODEV;
		snprintf(why, wl, "rdma route to %s uses a device without an active port",
			 t->peer);
		goto out;
	}
	mr = k->mr[t->src_arena][c.dev];
	rc = mr ? conn_setup(&c, k->pd[c.dev]) : -ENOENT;
	if (rc) {
		snprintf(why, wl, "rdma queue pair: %s", strerror(-rc));
		goto out;
	}
	local_info(&c, &me);
	cp.private_data = &me;
	cp.private_data_len = sizeof(me);
	if (rdma_connect(c.id, &cp)) {
		rc = -errno;
		snprintf(why, wl, "rdma connect %s: %s", t->peer, strerror(-rc));
		goto out;
	}
	rc = cm_wait(&c, RDMA_CM_EVENT_ESTABLISHED, ms, &ev);
	if (rc) {
		snprintf(why, wl, "rdma connect %s: %s%s", t->peer, cm_name(ev),
			 rc == -ECONNREFUSED ? " (no rdma listener there?)" : "");
		goto out;
	}
	rc = peer_info(&c);
	if (rc) {
		snprintf(why, wl, "rdma handshake with %s: bad private data", t->peer);
		goto out;
	}
	t->res.rdma = c.info;
	*setup = false;			/* from here on a failure is the transfer's */

	req = (struct r_msg){ .type = M_REQ, .nslices = nsl, .dst_arena = t->dst_arena,
			      .xfer = t->id, .total = total };
	rc = post_msg(&c, &req);
	while (!rc && !have_grant) {
		rc = cq_next(&c, &wc, ms);
		if (!rc && (wc.opcode & IBV_WC_RECV)) {
			grant = c.msgs[wc.wr_id];
			have_grant = grant.magic == KVR_MAGIC_MSG && grant.type == M_GRANT;
			if (!have_grant)
				rc = -EPROTO;
		}
	}
	if (rc) {
		snprintf(why, wl, "rdma request to %s: %s", t->peer, wc_why(rc, &wc));
		goto out;
	}
	if (grant.status) {
		rc = grant.status < 0 ? grant.status : -EPROTO;
		snprintf(why, wl, "peer %s rejected the transfer: %s", t->peer, strerror(-rc));
		goto out;
	}
	t_conn = kvx_since(&t0);
	tab = calloc(nsl, sizeof(*tab));
	tab_mr = tab ? ibv_reg_mr(k->pd[c.dev], tab, nsl * sizeof(*tab),
				  IBV_ACCESS_LOCAL_WRITE) : NULL;
	if (!tab_mr) {
		rc = -ENOMEM;
		snprintf(why, wl, "slice table: out of memory");
		goto out;
	}
	if (x->o.fault == KVX_FAULT_TRUNCATE && x->o.fault_slice < nsl)
		stop_at = x->o.fault_slice;

	/* slices: keep KVR_WINDOW writes in flight, hash while they move */
	while (done < stop_at) {
		while (posted < stop_at && posted - done < KVR_WINDOW) {
			const struct tslice *s = &sl[posted];
			struct ibv_sge sge = { (uintptr_t)(src + s->src_off), s->len, mr->lkey };
			struct ibv_send_wr wr = {
				.wr_id = KVR_WR_DATA + posted, .sg_list = &sge, .num_sge = 1,
				.opcode = IBV_WR_RDMA_WRITE, .send_flags = IBV_SEND_SIGNALED,
				.wr.rdma = { grant.addr + s->stage_off, grant.rkey },
			}, *badwr;

			if (x->o.fault == KVX_FAULT_SLOW && x->o.fault_ms)
				usleep(x->o.fault_ms * 1000);
			if (x->o.fault == KVX_FAULT_CORRUPT && s->seq == x->o.fault_slice) {
				bad = malloc(s->len);
				bad_mr = bad ? ibv_reg_mr(k->pd[c.dev], bad, s->len,
							  IBV_ACCESS_LOCAL_WRITE) : NULL;
				if (bad_mr) {
					memcpy(bad, src + s->src_off, s->len);
					bad[s->len / 2] ^= 0x40;
					sge = (struct ibv_sge){ (uintptr_t)bad, s->len,
								bad_mr->lkey };
				}
			}
			if (ibv_post_send(c.id->qp, &wr, &badwr)) {
				rc = -EIO;
				snprintf(why, wl, "rdma write: post failed");
				goto out;
			}
			posted++;
		}
		if (hashed < posted) {
			const struct tslice *s = &sl[hashed];

			tab[hashed] = (struct w_slice){
				.magic = htole32(KVX_MAGIC_SLICE), .seq = htole32(s->seq),
				.stage_off = htole64(s->stage_off), .dst_off = htole64(s->dst_off),
				.len = htole64(s->len), .tag = htole64(s->tag),
				.hash = htole64(kvx_hash64(src + s->src_off, s->len,
							   kvx_slice_seed(t->id, s->seq,
									  s->stage_off,
									  s->dst_off, s->len,
									  s->tag))),
			};
			hashed++;
			rc = ibv_poll_cq(c.cq, 1, &wc);
			if (rc < 0) {
				rc = -EIO;
				wc.status = IBV_WC_GENERAL_ERR;
			} else if (rc == 0) {
				continue;
			} else {
				rc = wc.status == IBV_WC_SUCCESS ? 0 : -EIO;
			}
		} else {
			rc = cq_next(&c, &wc, ms);
		}
		if (!rc && wc.wr_id >= KVR_WR_DATA)
			done++;
		else if (!rc && (wc.opcode & IBV_WC_RECV))
			rc = -EPROTO;	/* an answer before the end: the peer failed */
		if (rc) {
			snprintf(why, wl, "rdma write to %s: %s (peer gone mid-transfer?)",
				 t->peer, wc_why(rc, &wc));
			goto out;
		}
	}
	if (stop_at < nsl) {
		rc = -ECONNABORTED;
		snprintf(why, wl, "injected fault: rdma connection closed after %u of %u slices",
			 stop_at, nsl);
		goto out;
	}
	t_data = kvx_since(&t0);
	for (; hashed < nsl; hashed++) {
		const struct tslice *s = &sl[hashed];

		tab[hashed] = (struct w_slice){
			.magic = htole32(KVX_MAGIC_SLICE), .seq = htole32(s->seq),
			.stage_off = htole64(s->stage_off), .dst_off = htole64(s->dst_off),
			.len = htole64(s->len), .tag = htole64(s->tag),
			.hash = htole64(kvx_hash64(src + s->src_off, s->len,
						   kvx_slice_seed(t->id, s->seq, s->stage_off,
								  s->dst_off, s->len, s->tag))),
		};
	}
	/* the table, then DONE: RC delivers them in order, after the data */
	{
		struct ibv_sge sge = { (uintptr_t)tab, nsl * sizeof(*tab), tab_mr->lkey };
		struct ibv_send_wr wr = {
			.wr_id = KVR_WR_TABLE, .sg_list = &sge, .num_sge = 1,
			.opcode = IBV_WR_RDMA_WRITE, .send_flags = IBV_SEND_SIGNALED,
			.wr.rdma = { grant.addr + grant.table_off, grant.rkey },
		}, *badwr;
		struct r_msg dm = { .type = M_DONE, .nslices = nsl, .xfer = t->id };

		if (ibv_post_send(c.id->qp, &wr, &badwr) || post_msg(&c, &dm)) {
			rc = -EIO;
			snprintf(why, wl, "rdma write: post failed");
			goto out;
		}
	}
	/* the peer verifies, commits and answers */
	ms = x->o.timeout_ms + (int)(total / 1000 > 600000 ? 600000 : total / 1000);
	while (!have_res || !table_done || !msg_done) {
		rc = cq_next(&c, &wc, ms);
		if (rc)
			break;
		if (wc.wr_id == KVR_WR_TABLE)
			table_done = true;
		else if (wc.wr_id == KVR_WR_MSG)
			msg_done = true;
		else if (wc.opcode & IBV_WC_RECV) {
			res = c.msgs[wc.wr_id];
			have_res = res.magic == KVR_MAGIC_MSG && res.type == M_RESULT;
			if (!have_res) {
				rc = -EPROTO;
				break;
			}
		}
	}
	if (rc) {
		snprintf(why, wl, "rdma: no answer from %s: %s", t->peer, wc_why(rc, &wc));
		goto out;
	}
	if (res.status) {
		rc = res.status < 0 ? res.status : -EPROTO;
		snprintf(why, wl, "peer %s rejected the transfer: %s", t->peer, strerror(-rc));
		goto out;
	}
	kvx_rdma_info_str(&c.info, mtu, sizeof(mtu));
	snprintf(why, wl, "%llu bytes in %u slices over rdma to %s, verified; %s; "
		 "connect+grant %.0f ms, writes %.0f ms, verify+commit %.0f ms",
		 (unsigned long long)total, nsl, t->peer, mtu, t_conn * 1e3,
		 (t_data - t_conn) * 1e3, (kvx_since(&t0) - t_data) * 1e3);
	rc = 0;
out:
	if (c.id && c.id->qp)
		rdma_disconnect(c.id);
	if (tab_mr)
		ibv_dereg_mr(tab_mr);
	free(tab);
	if (bad_mr)
		ibv_dereg_mr(bad_mr);
	free(bad);
	conn_free(&c);
	return rc;
}
