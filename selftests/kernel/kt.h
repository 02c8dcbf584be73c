/* SPDX-License-Identifier: GPL-2.0 */
/*
 * kt.h - the kernel tier's libnl-3 client of the "idn" generic netlink
 * family, shared by the conformance tests (kt_genl_test.c, kselftest
 * harness) and the command tool the shell tests use (kt_genl.c).
 *
 * One request at a time: kt_req() builds a request, kt_xfer() sends it
 * (and frees it), collects every reply into struct kt_reply and returns
 * 0 or -errno, with the kernel's extack message in reply->ext.
 */
#ifndef KT_H
#define KT_H

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <netlink/netlink.h>
#include <netlink/genl/genl.h>
#include <netlink/genl/ctrl.h>
#include <netlink/genl/family.h>
#include <linux/netlink.h>
#include <linux/idn.h>

#ifndef SOL_NETLINK
#define SOL_NETLINK 270
#endif

struct kt_nl {
	struct nl_sock *sk;
	int fam;
};

struct kt_reply {
	int done, err;
	char ext[256];
	int nmsg;
	int have[IDN_A_MAX + 1];
	unsigned long long val[IDN_A_MAX + 1];
	unsigned long long st[IDN_HS_MAX + 1];
	int have_st;
};

/* the module's defaults (module parameters of guest.sh's first load) */
#define KT_DEF_MAX_PKTS		64ULL
#define KT_DEF_MAX_BYTES	262144ULL
#define KT_DEF_TIMEOUT_MS	2000ULL
#define KT_DEF_EVENT_MS		1000ULL
#define KT_DEF_MAX_QUEUES	256ULL

static inline int kt_parse(struct nl_msg *msg, struct kt_reply *r)
{
	struct nlattr *a[IDN_A_MAX + 1], *s[IDN_HS_MAX + 1];
	int i;

	if (genlmsg_parse(nlmsg_hdr(msg), 0, a, IDN_A_MAX, NULL))
		return -EINVAL;
	for (i = 1; i <= IDN_A_MAX; i++) {
		if (!a[i])
			continue;
		r->have[i] = 1;
		switch (nla_len(a[i])) {
		case 1: r->val[i] = nla_get_u8(a[i]); break;
		case 2: r->val[i] = nla_get_u16(a[i]); break;
		case 4: r->val[i] = nla_get_u32(a[i]); break;
		case 8: r->val[i] = nla_get_u64(a[i]); break;
		}
	}
	if (a[IDN_A_STATS] && !nla_parse_nested(s, IDN_HS_MAX, a[IDN_A_STATS], NULL)) {
		r->have_st = 1;
		for (i = IDN_HS_HELD; i <= IDN_HS_MAX; i++)
			if (s[i])
				r->st[i] = nla_get_u64(s[i]);
	}
	return 0;
}

static inline int kt_on_valid(struct nl_msg *msg, void *arg)
{
	struct kt_reply *r = arg;

	r->nmsg++;
	return kt_parse(msg, r) ? NL_SKIP : NL_OK;
}

static inline int kt_on_err(struct sockaddr_nl *nla, struct nlmsgerr *e, void *arg)
{
	struct kt_reply *r = arg;
	struct nlmsghdr *h = (struct nlmsghdr *)((char *)e - NLMSG_HDRLEN);

	r->err = e->error;
	r->done = 1;
	if (h->nlmsg_flags & NLM_F_ACK_TLVS) {
		int off = NLMSG_HDRLEN + sizeof(*e);
		struct nlattr *a = (struct nlattr *)((char *)h + off);
		int rem = h->nlmsg_len - off;

		for (; nla_ok(a, rem); a = nla_next(a, &rem))
			if (nla_type(a) == NLMSGERR_ATTR_MSG)
				snprintf(r->ext, sizeof(r->ext), "%s", (char *)nla_data(a));
	}
	return NL_STOP;
}

static inline int kt_on_done(struct nl_msg *msg, void *arg)
{
	((struct kt_reply *)arg)->done = 1;
	return NL_STOP;
}

/* a socket of the caller's netns with extack on; 0 or -errno */
static inline int kt_connect(struct kt_nl *nl)
{
	int one = 1;

	nl->fam = -1;
	nl->sk = nl_socket_alloc();
	if (!nl->sk)
		return -ENOMEM;
	if (genl_connect(nl->sk)) {
		nl_socket_free(nl->sk);
		nl->sk = NULL;
		return -EIO;
	}
	setsockopt(nl_socket_get_fd(nl->sk), SOL_NETLINK, NETLINK_EXT_ACK, &one, sizeof(one));
	setsockopt(nl_socket_get_fd(nl->sk), SOL_NETLINK, NETLINK_CAP_ACK, &one, sizeof(one));
	nl->fam = genl_ctrl_resolve(nl->sk, IDN_FAMILY_NAME);
	return nl->fam < 0 ? -ENOENT : 0;
}

static inline void kt_close(struct kt_nl *nl)
{
	if (nl->sk)
		nl_socket_free(nl->sk);
	nl->sk = NULL;
}

static inline struct nl_msg *kt_req(struct kt_nl *nl, int cmd, int flags)
{
	struct nl_msg *m = nlmsg_alloc();

	if (m)
		genlmsg_put(m, NL_AUTO_PORT, NL_AUTO_SEQ, nl->fam, 0, flags, cmd,
			    IDN_FAMILY_VERSION);
	return m;
}

/* send @m (consumed), collect the replies; returns 0 or -errno */
static inline int kt_xfer(struct kt_nl *nl, struct nl_msg *m, struct kt_reply *r)
{
	memset(r, 0, sizeof(*r));
	if (!m)
		return r->err = -ENOMEM;
	nl_socket_modify_cb(nl->sk, NL_CB_VALID, NL_CB_CUSTOM, kt_on_valid, r);
	nl_socket_modify_cb(nl->sk, NL_CB_ACK, NL_CB_CUSTOM, kt_on_done, r);
	nl_socket_modify_cb(nl->sk, NL_CB_FINISH, NL_CB_CUSTOM, kt_on_done, r);
	nl_socket_modify_err_cb(nl->sk, NL_CB_CUSTOM, kt_on_err, r);
	if (nl_send_auto(nl->sk, m) < 0) {
		nlmsg_free(m);
		return r->err = -EIO;
	}
	nlmsg_free(m);
	while (!r->done)
		if (nl_recvmsgs_default(nl->sk) < 0 && !r->done)
			return r->err ? r->err : (r->err = -EIO);
	return r->err;
}

/* a request with no attributes */
static inline int kt_cmd(struct kt_nl *nl, int cmd, int flags, struct kt_reply *r)
{
	return kt_xfer(nl, kt_req(nl, cmd, flags), r);
}

/* join an idn multicast group by name with a plain setsockopt: 0 or -errno */
static inline int kt_join(struct kt_nl *nl, const char *grp)
{
	int id = genl_ctrl_resolve_grp(nl->sk, IDN_FAMILY_NAME, grp);

	if (id < 0)
		return -ENOENT;
	if (setsockopt(nl_socket_get_fd(nl->sk), SOL_NETLINK, NETLINK_ADD_MEMBERSHIP,
		       &id, sizeof(id)))
		return -errno;
	return 0;
}

#endif
