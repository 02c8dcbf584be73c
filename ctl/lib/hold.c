// SPDX-License-Identifier: GPL-2.0
/*
 * hold.c - client of idn.ko's generic netlink family "idn" (libnl-3): hold
 * limits, RELEASE / FLUSH, stats and the queue dump (struct idn_hold, one
 * request at a time), and the module's notifications (struct
 * idn_hold_watch: groups "miss" and "hold", plus nlctrl's "notify" group so
 * that the module going away or coming back is an event too).
 *
 * Errors: -errno with the kernel's extack message in idn_errmsg(); a module
 * that is not loaded is -ENOENT ("idn.ko is not loaded").
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <netlink/netlink.h>
#include <netlink/genl/genl.h>
#include <netlink/genl/ctrl.h>
#include <linux/netlink.h>
#include <linux/genetlink.h>

#include "hold.h"
#include "log.h"

IDN_ASSERT_ABI();

#ifndef SOL_NETLINK
#define SOL_NETLINK 270
#endif

struct idn_hold {
	struct nl_sock *sk;
	int fam;
};

/* what one request collected */
struct hold_reply {
	int done, err;
	char ext[256];
	int (*each)(struct nlattr **a, void *ctx);	/* per reply message */
	void *ctx;
	int cb_err;
};

static int not_loaded(void)
{
	return idn_err(-ENOENT, "idn.ko is not loaded (no generic netlink family \"%s\")",
		       IDN_FAMILY_NAME);
}

static struct nl_sock *hold_socket(void)
{
	struct nl_sock *sk = nl_socket_alloc();
	int one = 1;

	if (!sk)
		return NULL;
	if (genl_connect(sk)) {
		nl_socket_free(sk);
		return NULL;
	}
	/* extack messages, without the request echoed back */
	setsockopt(nl_socket_get_fd(sk), SOL_NETLINK, NETLINK_EXT_ACK, &one, sizeof(one));
	setsockopt(nl_socket_get_fd(sk), SOL_NETLINK, NETLINK_CAP_ACK, &one, sizeof(one));
	return sk;
}

int idn_hold_open(struct idn_hold **out)
{
	struct idn_hold *h = calloc(1, sizeof(*h));

	*out = NULL;
	if (!h)
		return idn_err(-ENOMEM, "out of memory");
	h->sk = hold_socket();
	if (!h->sk) {
		free(h);
		return idn_err(-EIO, "generic netlink socket: cannot connect");
	}
	h->fam = genl_ctrl_resolve(h->sk, IDN_FAMILY_NAME);
	if (h->fam < 0) {
		idn_hold_close(h);
		return not_loaded();
	}
	*out = h;
	return 0;
}

void idn_hold_close(struct idn_hold *h)
{
	if (!h)
		return;
	nl_socket_free(h->sk);
	free(h);
}

static int on_valid(struct nl_msg *msg, void *arg)
{
	struct hold_reply *r = arg;
	struct nlattr *a[IDN_A_MAX + 1];

	if (genlmsg_parse(nlmsg_hdr(msg), 0, a, IDN_A_MAX, NULL))
		return NL_SKIP;
	if (r->each && !r->cb_err)
		r->cb_err = r->each(a, r->ctx);
	return NL_OK;
}

static int on_error(struct sockaddr_nl *nla, struct nlmsgerr *e, void *arg)
{
	struct hold_reply *r = arg;
	struct nlmsghdr *h = (struct nlmsghdr *)((char *)e - NLMSG_HDRLEN);

	r->err = e->error;
	r->done = 1;
	if (h->nlmsg_flags & NLM_F_ACK_TLVS) {
		int off = NLMSG_HDRLEN + sizeof(*e);
		struct nlattr *a = (struct nlattr *)((char *)h + off);
		int rem = (int)h->nlmsg_len - off;

		if (!(h->nlmsg_flags & NLM_F_CAPPED))
			return NL_STOP;	/* we asked for capped acks */
		for (; nla_ok(a, rem); a = nla_next(a, &rem))
			if (nla_type(a) == NLMSGERR_ATTR_MSG)
				snprintf(r->ext, sizeof(r->ext), "%s", (char *)nla_data(a));
	}
	return NL_STOP;
}

static int on_done(struct nl_msg *msg, void *arg)
{
	((struct hold_reply *)arg)->done = 1;
	return NL_STOP;
}

static struct nl_msg *hold_msg(struct idn_hold *h, __u8 cmd, int flags)
{
	struct nl_msg *m = nlmsg_alloc();

	if (m && !genlmsg_put(m, NL_AUTO_PORT, NL_AUTO_SEQ, h->fam, 0, flags, cmd,
			      IDN_FAMILY_VERSION)) {
		nlmsg_free(m);
		m = NULL;
	}
	return m;
}

/* send @m (consumed) and read the replies into @r; -errno + message */
static int hold_xfer(struct idn_hold *h, struct nl_msg *m, struct hold_reply *r,
		     const char *what)
{
	int err;

	nl_socket_modify_cb(h->sk, NL_CB_VALID, NL_CB_CUSTOM, on_valid, r);
	nl_socket_modify_cb(h->sk, NL_CB_ACK, NL_CB_CUSTOM, on_done, r);
	nl_socket_modify_cb(h->sk, NL_CB_FINISH, NL_CB_CUSTOM, on_done, r);
	nl_socket_modify_err_cb(h->sk, NL_CB_CUSTOM, on_error, r);
	err = nl_send_auto(h->sk, m);
	nlmsg_free(m);
	if (err < 0)
		return idn_err(-EIO, "%s: %s", what, nl_geterror(err));
	while (!r->done) {
		err = nl_recvmsgs_default(h->sk);
		if (err < 0 && !r->done)
			return idn_err(-EIO, "%s: %s", what, nl_geterror(err));
	}
	if (r->err == -EPERM)	/* every command of the family, reads too */
		return idn_err(r->err, "%s: permission denied: needs CAP_NET_ADMIN in this "
			       "network namespace", what);
	if (r->err)
		return idn_err(r->err, "%s: %s", what, r->ext[0] ? r->ext : strerror(-r->err));
	if (r->cb_err)
		return idn_err(r->cb_err, "%s: malformed reply", what);
	return 0;
}

static int get_cfg(struct nlattr **a, void *ctx)
{
	struct idn_hold_cfg *c = ctx;

	if (!a[IDN_A_MAX_PKTS] || !a[IDN_A_MAX_BYTES] || !a[IDN_A_TIMEOUT_MS] ||
	    !a[IDN_A_EVENT_MS])
		return -EPROTO;
	c->max_pkts = nla_get_u32(a[IDN_A_MAX_PKTS]);
	c->max_bytes = nla_get_u32(a[IDN_A_MAX_BYTES]);
	c->timeout_ms = nla_get_u32(a[IDN_A_TIMEOUT_MS]);
	c->event_ms = nla_get_u32(a[IDN_A_EVENT_MS]);
	c->max_queues = a[IDN_A_MAX_QUEUES] ? nla_get_u32(a[IDN_A_MAX_QUEUES]) : 0;
	return 0;
}

int idn_hold_config_get(struct idn_hold *h, struct idn_hold_cfg *c)
{
	struct hold_reply r = { .each = get_cfg, .ctx = c };
	struct nl_msg *m = hold_msg(h, IDN_CMD_CONFIG_GET, 0);

	if (!m)
		return idn_err(-ENOMEM, "out of memory");
	return hold_xfer(h, m, &r, "hold config");
}

int idn_hold_config_set(struct idn_hold *h, const struct idn_hold_cfg *c, unsigned int which,
			struct idn_hold_cfg *now)
{
	struct idn_hold_cfg dummy;
	struct hold_reply r = { .each = get_cfg, .ctx = now ? now : &dummy };
	struct nl_msg *m = hold_msg(h, IDN_CMD_CONFIG_SET, 0);

	if (!m)
		return idn_err(-ENOMEM, "out of memory");
	if (((which & IDN_HC_MAX_PKTS) && nla_put_u32(m, IDN_A_MAX_PKTS, c->max_pkts)) ||
	    ((which & IDN_HC_MAX_BYTES) && nla_put_u32(m, IDN_A_MAX_BYTES, c->max_bytes)) ||
	    ((which & IDN_HC_TIMEOUT_MS) && nla_put_u32(m, IDN_A_TIMEOUT_MS, c->timeout_ms)) ||
	    ((which & IDN_HC_EVENT_MS) && nla_put_u32(m, IDN_A_EVENT_MS, c->event_ms))) {
		nlmsg_free(m);
		return idn_err(-EMSGSIZE, "hold set: message too large");
	}
	return hold_xfer(h, m, &r, "hold set");
}

static int get_count(struct nlattr **a, void *ctx)
{
	if (!a[IDN_A_COUNT])
		return -EPROTO;
	*(__u32 *)ctx = nla_get_u32(a[IDN_A_COUNT]);
	return 0;
}

static int hold_sel(struct idn_hold *h, __u8 cmd, bool all, __u32 cap, __u32 *count,
		    const char *what)
{
	struct hold_reply r = { .each = get_count, .ctx = count };
	struct nl_msg *m = hold_msg(h, cmd, 0);

	*count = 0;
	if (!m)
		return idn_err(-ENOMEM, "out of memory");
	if (all ? nla_put_flag(m, IDN_A_ALL) : nla_put_u32(m, IDN_A_CAP, cap)) {
		nlmsg_free(m);
		return idn_err(-EMSGSIZE, "%s: message too large", what);
	}
	return hold_xfer(h, m, &r, what);
}

int idn_hold_release(struct idn_hold *h, bool all, __u32 cap, __u32 *count)
{
	return hold_sel(h, IDN_CMD_RELEASE, all, cap, count, "hold release");
}

int idn_hold_flush(struct idn_hold *h, bool all, __u32 cap, __u32 *count)
{
	return hold_sel(h, IDN_CMD_FLUSH, all, cap, count, "hold flush");
}

static int get_stats(const struct nlattr *nest, __u64 st[__IDN_HS_MAX])
{
	struct nlattr *s[IDN_HS_MAX + 1];

	memset(st, 0, sizeof(__u64) * __IDN_HS_MAX);
	if (!nest)
		return -EPROTO;
	if (nla_parse_nested(s, IDN_HS_MAX, (struct nlattr *)nest, NULL))
		return -EPROTO;
	for (int i = IDN_HS_HELD; i <= IDN_HS_MAX; i++)
		if (s[i] && nla_len(s[i]) == sizeof(__u64))
			st[i] = nla_get_u64(s[i]);
	return 0;
}

static int get_nstats(struct nlattr **a, void *ctx)
{
	return get_stats(a[IDN_A_STATS], ctx);
}

int idn_hold_stats(struct idn_hold *h, __u64 st[__IDN_HS_MAX])
{
	struct hold_reply r = { .each = get_nstats, .ctx = st };
	struct nl_msg *m = hold_msg(h, IDN_CMD_STATS_GET, 0);

	if (!m)
		return idn_err(-ENOMEM, "out of memory");
	return hold_xfer(h, m, &r, "hold stats");
}

/* a queue entry: dump reply or DEMAND_MISS notification */
static int get_queue(struct nlattr **a, struct idn_hold_queue *q)
{
	memset(q, 0, sizeof(*q));
	if (!a[IDN_A_CAP])
		return -EPROTO;
	q->cap = nla_get_u32(a[IDN_A_CAP]);
	if (a[IDN_A_PKTS])
		q->pkts = nla_get_u32(a[IDN_A_PKTS]);
	if (a[IDN_A_BYTES])
		q->bytes = nla_get_u32(a[IDN_A_BYTES]);
	if (a[IDN_A_AGE_MS])
		q->age_ms = nla_get_u32(a[IDN_A_AGE_MS]);
	if (a[IDN_A_IFINDEX])
		q->ifindex = nla_get_u32(a[IDN_A_IFINDEX]);
	if (a[IDN_A_PROTO])
		q->proto = nla_get_u8(a[IDN_A_PROTO]);
	if (a[IDN_A_DPORT])
		q->dport = nla_get_u16(a[IDN_A_DPORT]);
	if (a[IDN_A_FAMILY] && a[IDN_A_DADDR]) {
		int len = nla_len(a[IDN_A_DADDR]);

		q->family = nla_get_u8(a[IDN_A_FAMILY]);
		if ((q->family == IDN_AF_INET && len == 4) ||
		    (q->family == IDN_AF_INET6 && len == 16))
			memcpy(q->daddr, nla_data(a[IDN_A_DADDR]), len);
		else
			q->family = 0;
	}
	if (a[IDN_A_STATS] && !get_stats(a[IDN_A_STATS], q->st))
		q->has_stats = true;
	return 0;
}

struct queue_list {
	struct idn_hold_queue *q;
	int n, cap;
};

static int add_queue(struct nlattr **a, void *ctx)
{
	struct queue_list *l = ctx;

	if (l->n == l->cap) {
		int cap = l->cap ? l->cap * 2 : 16;
		void *p = realloc(l->q, cap * sizeof(*l->q));

		if (!p)
			return -ENOMEM;
		l->q = p;
		l->cap = cap;
	}
	if (get_queue(a, &l->q[l->n]))
		return -EPROTO;
	l->n++;
	return 0;
}

static int cmp_queue(const void *a, const void *b)
{
	const struct idn_hold_queue *x = a, *y = b;

	return x->cap < y->cap ? -1 : x->cap > y->cap;
}

int idn_hold_queues(struct idn_hold *h, struct idn_hold_queue **out)
{
	struct queue_list l = { 0 };
	struct hold_reply r = { .each = add_queue, .ctx = &l };
	struct nl_msg *m = hold_msg(h, IDN_CMD_QUEUE_GET, NLM_F_DUMP);
	int err;

	*out = NULL;
	if (!m)
		return idn_err(-ENOMEM, "out of memory");
	err = hold_xfer(h, m, &r, "hold queues");
	if (err) {
		free(l.q);
		return err;
	}
	if (l.n)
		qsort(l.q, l.n, sizeof(*l.q), cmp_queue);
	*out = l.q;
	return l.n;
}

/* ---- notifications ---------------------------------------------------- */

struct idn_hold_watch {
	struct nl_sock *sk;
	int fam;		/* -1 while the module is not loaded */
	int ctrl_grp;		/* nlctrl "notify" */
	int (*cb)(const struct idn_hold_event *ev, void *ctx);
	void *ctx;
	int stop;		/* what cb returned, non-zero: stop */
};

/* join the groups listed in a CTRL_ATTR_MCAST_GROUPS nest (NEWFAMILY) */
static void join_groups(struct idn_hold_watch *w, struct nlattr *groups)
{
	struct nlattr *g;
	int rem;

	nla_for_each_nested(g, groups, rem) {
		struct nlattr *t[CTRL_ATTR_MCAST_GRP_MAX + 1];

		if (nla_parse_nested(t, CTRL_ATTR_MCAST_GRP_MAX, g, NULL) ||
		    !t[CTRL_ATTR_MCAST_GRP_NAME] || !t[CTRL_ATTR_MCAST_GRP_ID])
			continue;
		nl_socket_add_membership(w->sk, (int)nla_get_u32(t[CTRL_ATTR_MCAST_GRP_ID]));
	}
}

static int on_ctrl(struct idn_hold_watch *w, struct nlmsghdr *nlh)
{
	struct genlmsghdr *gh = nlmsg_data(nlh);
	struct nlattr *a[CTRL_ATTR_MAX + 1];
	struct idn_hold_event ev = { 0 };

	if (gh->cmd != CTRL_CMD_NEWFAMILY && gh->cmd != CTRL_CMD_DELFAMILY)
		return NL_OK;
	if (genlmsg_parse(nlh, 0, a, CTRL_ATTR_MAX, NULL) || !a[CTRL_ATTR_FAMILY_NAME] ||
	    strcmp(nla_get_string(a[CTRL_ATTR_FAMILY_NAME]), IDN_FAMILY_NAME))
		return NL_OK;
	if (gh->cmd == CTRL_CMD_DELFAMILY) {
		if (w->fam < 0)
			return NL_OK;
		w->fam = -1;
		ev.type = IDN_HEV_UNLOAD;
	} else {
		if (w->fam >= 0 || !a[CTRL_ATTR_FAMILY_ID])
			return NL_OK;
		w->fam = nla_get_u16(a[CTRL_ATTR_FAMILY_ID]);
		if (a[CTRL_ATTR_MCAST_GROUPS])
			join_groups(w, a[CTRL_ATTR_MCAST_GROUPS]);
		ev.type = IDN_HEV_LOAD;
	}
	w->stop = w->cb(&ev, w->ctx);
	return w->stop ? NL_STOP : NL_OK;
}

static int on_event(struct nl_msg *msg, void *arg)
{
	struct idn_hold_watch *w = arg;
	struct nlmsghdr *nlh = nlmsg_hdr(msg);
	struct genlmsghdr *gh = nlmsg_data(nlh);
	struct nlattr *a[IDN_A_MAX + 1];
	struct idn_hold_event ev = { 0 };

	if (nlh->nlmsg_type == GENL_ID_CTRL)
		return on_ctrl(w, nlh);
	if (w->fam < 0 || nlh->nlmsg_type != w->fam)
		return NL_OK;
	if (genlmsg_parse(nlh, 0, a, IDN_A_MAX, NULL) || !a[IDN_A_CAP])
		return NL_OK;
	switch (gh->cmd) {
	case IDN_CMD_DEMAND_MISS_NTF:
		ev.type = IDN_HEV_MISS;
		if (get_queue(a, &ev.q))
			return NL_OK;
		break;
	case IDN_CMD_RELEASE_NTF:
		ev.type = IDN_HEV_RELEASE;
		break;
	case IDN_CMD_REJECT_NTF:
		ev.type = IDN_HEV_REJECT;
		if (a[IDN_A_REASON])
			ev.reason = nla_get_u8(a[IDN_A_REASON]);
		break;
	default:
		return NL_OK;
	}
	ev.cap = nla_get_u32(a[IDN_A_CAP]);
	if (a[IDN_A_COUNT])
		ev.count = nla_get_u32(a[IDN_A_COUNT]);
	w->stop = w->cb(&ev, w->ctx);
	return w->stop ? NL_STOP : NL_OK;
}

int idn_hold_watch_open(struct idn_hold_watch **out,
			int (*cb)(const struct idn_hold_event *ev, void *ctx), void *ctx)
{
	struct idn_hold_watch *w = calloc(1, sizeof(*w));
	int miss, hold, err;

	*out = NULL;
	if (!w)
		return idn_err(-ENOMEM, "out of memory");
	w->cb = cb;
	w->ctx = ctx;
	w->sk = hold_socket();
	if (!w->sk) {
		free(w);
		return idn_err(-EIO, "generic netlink socket: cannot connect");
	}
	w->fam = genl_ctrl_resolve(w->sk, IDN_FAMILY_NAME);
	miss = w->fam < 0 ? -1 : genl_ctrl_resolve_grp(w->sk, IDN_FAMILY_NAME, IDN_MCGRP_MISS);
	hold = w->fam < 0 ? -1 : genl_ctrl_resolve_grp(w->sk, IDN_FAMILY_NAME, IDN_MCGRP_HOLD);
	w->ctrl_grp = genl_ctrl_resolve_grp(w->sk, "nlctrl", "notify");
	if (miss < 0 || hold < 0 || w->ctrl_grp < 0) {
		idn_hold_watch_close(w);
		return not_loaded();
	}
	err = nl_socket_add_memberships(w->sk, miss, hold, w->ctrl_grp, 0);
	if (err) {
		idn_hold_watch_close(w);
		if (err == -NLE_PERM)
			return idn_err(-EPERM, "cannot join the event groups of \"%s\": permission "
				       "denied: needs CAP_NET_ADMIN in this network namespace",
				       IDN_FAMILY_NAME);
		return idn_err(-EIO, "cannot join the multicast groups of \"%s\"",
			       IDN_FAMILY_NAME);
	}
	nl_socket_disable_seq_check(w->sk);
	nl_socket_modify_cb(w->sk, NL_CB_VALID, NL_CB_CUSTOM, on_event, w);
	nl_socket_set_nonblocking(w->sk);
	*out = w;
	return 0;
}

int idn_hold_watch_fd(const struct idn_hold_watch *w)
{
	return nl_socket_get_fd(w->sk);
}

int idn_hold_watch_read(struct idn_hold_watch *w)
{
	int err;

	w->stop = 0;
	do {
		err = nl_recvmsgs_default(w->sk);
	} while (err >= 0 && !w->stop);
	if (w->stop)
		return w->stop;
	if (err == -NLE_AGAIN)
		return 0;
	if (err == -NLE_NOMEM)	/* ENOBUFS: events were lost, keep going */
		return idn_err(-ENOBUFS, "events lost (socket buffer overrun)");
	return idn_err(-EIO, "events: %s", nl_geterror(err));
}

void idn_hold_watch_close(struct idn_hold_watch *w)
{
	if (!w)
		return;
	nl_socket_free(w->sk);
	free(w);
}
