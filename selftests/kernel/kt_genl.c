// SPDX-License-Identifier: GPL-2.0
/*
 * kt_genl.c - guest-side client of the "idn" generic netlink family
 * (libnl-3), for the kernel tier.
 *
 *   kt_genl test                   conformance: every command with valid,
 *                                  missing, oversized and malformed attributes
 *   kt_genl set KEY N [KEY N]...   KEY: max_pkts max_bytes timeout_ms event_ms
 *   kt_genl release { CAP | all }  prints "count N"
 *   kt_genl flush { CAP | all }    prints "count N"
 *   kt_genl stats                  prints "NAME VALUE" lines
 *   kt_genl queues                 prints one line per queue (dump)
 *   kt_genl monitor SECONDS        prints events until SECONDS passed
 * Exit: 0 ok, 1 failure (test mode: a failing case), 2 usage.
 */
#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <netlink/netlink.h>
#include <netlink/genl/genl.h>
#include <netlink/genl/ctrl.h>
#include <netlink/genl/family.h>
#include <linux/netlink.h>
#include <linux/idn.h>

IDN_ASSERT_ABI();

struct reply {
	int done, err;
	char ext[256];
	int nmsg;
	int have[IDN_A_MAX + 1];
	unsigned long long val[IDN_A_MAX + 1];
	unsigned long long st[IDN_HS_MAX + 1];
	int have_st;
};

static struct nl_sock *sk;
static int fam;

static int on_valid(struct nl_msg *msg, void *arg)
{
	struct reply *r = arg;
	struct nlattr *a[IDN_A_MAX + 1], *s[IDN_HS_MAX + 1];
	int i;

	r->nmsg++;
	if (genlmsg_parse(nlmsg_hdr(msg), 0, a, IDN_A_MAX, NULL))
		return NL_SKIP;
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
	return NL_OK;
}

static int on_err(struct sockaddr_nl *nla, struct nlmsgerr *e, void *arg)
{
	struct reply *r = arg;
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

static int on_ack(struct nl_msg *msg, void *arg)
{
	((struct reply *)arg)->done = 1;
	return NL_STOP;
}

static int on_finish(struct nl_msg *msg, void *arg)
{
	((struct reply *)arg)->done = 1;
	return NL_STOP;
}

static struct nl_msg *req(int cmd, int flags)
{
	struct nl_msg *m = nlmsg_alloc();

	genlmsg_put(m, NL_AUTO_PORT, NL_AUTO_SEQ, fam, 0, flags, cmd, IDN_FAMILY_VERSION);
	return m;
}

/* send @m (consumed), collect replies; returns the errno-style result */
static int xfer(struct nl_msg *m, struct reply *r)
{
	memset(r, 0, sizeof(*r));
	nl_socket_modify_cb(sk, NL_CB_VALID, NL_CB_CUSTOM, on_valid, r);
	nl_socket_modify_cb(sk, NL_CB_ACK, NL_CB_CUSTOM, on_ack, r);
	nl_socket_modify_cb(sk, NL_CB_FINISH, NL_CB_CUSTOM, on_finish, r);
	nl_socket_modify_err_cb(sk, NL_CB_CUSTOM, on_err, r);
	if (nl_send_auto(sk, m) < 0) {
		nlmsg_free(m);
		return r->err = -EIO;
	}
	nlmsg_free(m);
	while (!r->done)
		if (nl_recvmsgs_default(sk) < 0 && !r->done)
			return r->err ? r->err : (r->err = -EIO);
	return r->err;
}

static int connect_idn(void)
{
	int one = 1;

	sk = nl_socket_alloc();
	if (!sk || genl_connect(sk))
		return -1;
	setsockopt(nl_socket_get_fd(sk), SOL_NETLINK, NETLINK_EXT_ACK, &one, sizeof(one));
	setsockopt(nl_socket_get_fd(sk), SOL_NETLINK, NETLINK_CAP_ACK, &one, sizeof(one));
	fam = genl_ctrl_resolve(sk, IDN_FAMILY_NAME);
	return fam < 0 ? -1 : 0;
}

/* ---- test mode ---------------------------------------------------------- */

static int tn, tfail;

static void ok(int cond, const char *fmt, ...)
{
	va_list ap;

	tn++;
	if (!cond)
		tfail++;
	printf("%sok %d - ", cond ? "" : "not ", tn);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
}

/* a rejection: the expected errno and a non-empty extack message */
static void rejected(struct reply *r, int err, const char *what)
{
	ok(r->err == -err && r->ext[0], "%s: %s (got %d, extack \"%s\")", what, strerror(err),
	   r->err, r->ext);
}

static void t_set_u32(struct nl_msg *m, int type, unsigned int v)
{
	nla_put_u32(m, type, v);
}

static int run_tests(void)
{
	struct reply r;
	struct nl_msg *m;
	struct genl_family *f = NULL;
	unsigned char raw[8];

	printf("# genetlink family \"%s\"\n", IDN_FAMILY_NAME);
	{
		struct nl_cache *c;

		f = NULL;
		if (!genl_ctrl_alloc_cache(sk, &c)) {
			f = genl_ctrl_search_by_name(c, IDN_FAMILY_NAME);
			nl_cache_free(c);
		}
		ok(f && genl_family_get_version(f) == IDN_FAMILY_VERSION, "family version %d",
		   IDN_FAMILY_VERSION);
		if (f)
			genl_family_put(f);
	}
	ok(genl_ctrl_resolve_grp(sk, IDN_FAMILY_NAME, IDN_MCGRP_MISS) > 0 &&
	   genl_ctrl_resolve_grp(sk, IDN_FAMILY_NAME, IDN_MCGRP_HOLD) > 0,
	   "multicast groups \"miss\" and \"hold\"");

	xfer(req(IDN_CMD_CONFIG_GET, 0), &r);
	ok(!r.err && r.val[IDN_A_MAX_PKTS] == 64 && r.val[IDN_A_MAX_BYTES] == 262144 &&
	   r.val[IDN_A_TIMEOUT_MS] == 2000 && r.val[IDN_A_EVENT_MS] == 1000 &&
	   r.val[IDN_A_MAX_QUEUES] == 256, "CONFIG_GET: module parameter defaults");

	m = req(IDN_CMD_CONFIG_SET, 0);
	t_set_u32(m, IDN_A_MAX_PKTS, 8);
	t_set_u32(m, IDN_A_TIMEOUT_MS, 500);
	xfer(m, &r);
	ok(!r.err && r.val[IDN_A_MAX_PKTS] == 8 && r.val[IDN_A_TIMEOUT_MS] == 500 &&
	   r.val[IDN_A_MAX_BYTES] == 262144, "CONFIG_SET: valid, reply has the new limits");
	xfer(req(IDN_CMD_CONFIG_GET, 0), &r);
	ok(!r.err && r.val[IDN_A_MAX_PKTS] == 8, "CONFIG_GET: sees the new limits");

	xfer(req(IDN_CMD_CONFIG_SET, 0), &r);
	rejected(&r, EINVAL, "CONFIG_SET: missing attributes");
	m = req(IDN_CMD_CONFIG_SET, 0);
	t_set_u32(m, IDN_A_MAX_PKTS, 0);
	xfer(m, &r);
	rejected(&r, ERANGE, "CONFIG_SET: max_pkts 0 out of range");
	m = req(IDN_CMD_CONFIG_SET, 0);
	t_set_u32(m, IDN_A_MAX_BYTES, 1U << 30);
	xfer(m, &r);
	rejected(&r, ERANGE, "CONFIG_SET: max_bytes 1 GiB out of range");
	m = req(IDN_CMD_CONFIG_SET, 0);
	t_set_u32(m, IDN_A_TIMEOUT_MS, 5);
	xfer(m, &r);
	rejected(&r, ERANGE, "CONFIG_SET: timeout_ms 5 out of range");
	m = req(IDN_CMD_CONFIG_SET, 0);
	nla_put_u64(m, IDN_A_MAX_PKTS, 4);
	xfer(m, &r);
	rejected(&r, EINVAL, "CONFIG_SET: oversized (8-byte) u32 attribute");
	m = req(IDN_CMD_CONFIG_SET, 0);
	nla_put_u16(m, IDN_A_TIMEOUT_MS, 100);
	xfer(m, &r);
	rejected(&r, EINVAL, "CONFIG_SET: short (2-byte) u32 attribute");
	m = req(IDN_CMD_CONFIG_SET, 0);
	t_set_u32(m, IDN_A_MAX + 7, 1);
	xfer(m, &r);
	rejected(&r, EINVAL, "CONFIG_SET: unknown attribute type");
	m = req(IDN_CMD_CONFIG_SET, 0);
	t_set_u32(m, IDN_A_CAP, 1);
	xfer(m, &r);
	rejected(&r, EINVAL, "CONFIG_SET: attribute of another command (CAP)");
	m = req(IDN_CMD_CONFIG_SET, 0);
	/* malformed: an attribute header claiming 2 bytes (less than itself) */
	raw[0] = 2; raw[1] = 0; raw[2] = IDN_A_MAX_PKTS; raw[3] = 0;
	memset(raw + 4, 0, 4);
	nlmsg_append(m, raw, sizeof(raw), 0);
	xfer(m, &r);
	rejected(&r, EINVAL, "CONFIG_SET: malformed attribute header");
	m = req(IDN_CMD_CONFIG_SET, 0);
	raw[0] = 12; raw[1] = 0; raw[2] = IDN_A_MAX_PKTS; raw[3] = 0;	/* past the end */
	nlmsg_append(m, raw, sizeof(raw), 0);
	xfer(m, &r);
	ok(r.err < 0, "CONFIG_SET: attribute longer than the message (got %d)", r.err);

	xfer(req(IDN_CMD_RELEASE, 0), &r);
	rejected(&r, EINVAL, "RELEASE: missing CAP/ALL");
	m = req(IDN_CMD_RELEASE, 0);
	t_set_u32(m, IDN_A_CAP, 7);
	nla_put_flag(m, IDN_A_ALL);
	xfer(m, &r);
	rejected(&r, EINVAL, "RELEASE: CAP and ALL together");
	m = req(IDN_CMD_RELEASE, 0);
	t_set_u32(m, IDN_A_CAP, 0x4242);
	xfer(m, &r);
	rejected(&r, ENOENT, "RELEASE: no queue for the capability");
	m = req(IDN_CMD_RELEASE, 0);
	nla_put_u64(m, IDN_A_CAP, 7);
	xfer(m, &r);
	rejected(&r, EINVAL, "RELEASE: oversized CAP");
	m = req(IDN_CMD_RELEASE, 0);
	nla_put_u32(m, IDN_A_ALL, 1);
	xfer(m, &r);
	rejected(&r, ERANGE, "RELEASE: ALL flag with a payload");
	m = req(IDN_CMD_RELEASE, 0);
	nla_put_flag(m, IDN_A_ALL);
	xfer(m, &r);
	ok(!r.err && r.have[IDN_A_COUNT] && r.val[IDN_A_COUNT] == 0, "RELEASE: all, count 0");

	xfer(req(IDN_CMD_FLUSH, 0), &r);
	rejected(&r, EINVAL, "FLUSH: missing CAP/ALL");
	m = req(IDN_CMD_FLUSH, 0);
	t_set_u32(m, IDN_A_CAP, 0x4242);
	xfer(m, &r);
	rejected(&r, ENOENT, "FLUSH: no queue for the capability");
	m = req(IDN_CMD_FLUSH, 0);
	t_set_u32(m, IDN_A_TIMEOUT_MS, 7);
	xfer(m, &r);
	rejected(&r, EINVAL, "FLUSH: attribute of another command");
	m = req(IDN_CMD_FLUSH, 0);
	nla_put_flag(m, IDN_A_ALL);
	xfer(m, &r);
	ok(!r.err && r.have[IDN_A_COUNT], "FLUSH: all");

	xfer(req(IDN_CMD_STATS_GET, 0), &r);
	ok(!r.err && r.have_st && r.st[IDN_HS_HELD] == 0, "STATS_GET: stats nest, nothing held");
	m = req(IDN_CMD_STATS_GET, 0);
	t_set_u32(m, IDN_A_MAX_PKTS, 1);
	xfer(m, &r);
	rejected(&r, EINVAL, "STATS_GET: attribute of another command");

	xfer(req(IDN_CMD_QUEUE_GET, NLM_F_DUMP), &r);
	ok(!r.err && r.nmsg == 0, "QUEUE_GET dump: no queues");
	xfer(req(IDN_CMD_QUEUE_GET, 0), &r);
	rejected(&r, EINVAL, "QUEUE_GET: missing CAP");
	m = req(IDN_CMD_QUEUE_GET, 0);
	t_set_u32(m, IDN_A_CAP, 9);
	xfer(m, &r);
	rejected(&r, ENOENT, "QUEUE_GET: no such queue");

	xfer(req(IDN_CMD_DEMAND_MISS_NTF, 0), &r);
	ok(r.err == -EOPNOTSUPP, "notification id as a request: EOPNOTSUPP (got %d)", r.err);
	xfer(req(IDN_CMD_MAX + 20, 0), &r);
	ok(r.err == -EOPNOTSUPP, "unknown command: EOPNOTSUPP (got %d)", r.err);

	m = req(IDN_CMD_CONFIG_SET, 0);
	t_set_u32(m, IDN_A_MAX_PKTS, 64);
	t_set_u32(m, IDN_A_TIMEOUT_MS, 2000);
	xfer(m, &r);
	ok(!r.err, "CONFIG_SET: restore defaults");
	printf("# %d tests, %d failed\n", tn, tfail);
	return tfail ? 1 : 0;
}

/* ---- command mode --------------------------------------------------------- */

static const char *const stat_names[IDN_HS_MAX + 1] = {
	[IDN_HS_HELD] = "held", [IDN_HS_RELEASED] = "released",
	[IDN_HS_REJ_TIMEOUT] = "rej_timeout", [IDN_HS_REJ_OVERFLOW] = "rej_overflow",
	[IDN_HS_REJ_FLUSH] = "rej_flush", [IDN_HS_DROPPED] = "dropped",
	[IDN_HS_EVENTS] = "events", [IDN_HS_EVENTS_LIMITED] = "events_limited",
};

static int on_event(struct nl_msg *msg, void *arg)
{
	struct reply r;
	int cmd = nlmsg_hdr(msg)->nlmsg_type == fam ?
		((struct genlmsghdr *)nlmsg_data(nlmsg_hdr(msg)))->cmd : -1;

	memset(&r, 0, sizeof(r));
	on_valid(msg, &r);
	if (cmd == IDN_CMD_DEMAND_MISS_NTF)
		printf("miss cap %llu pkts %llu dport %llu proto %llu\n", r.val[IDN_A_CAP],
		       r.val[IDN_A_PKTS], r.val[IDN_A_DPORT], r.val[IDN_A_PROTO]);
	else if (cmd == IDN_CMD_RELEASE_NTF)
		printf("release cap %llu count %llu\n", r.val[IDN_A_CAP], r.val[IDN_A_COUNT]);
	else if (cmd == IDN_CMD_REJECT_NTF)
		printf("reject cap %llu reason %llu count %llu\n", r.val[IDN_A_CAP],
		       r.val[IDN_A_REASON], r.val[IDN_A_COUNT]);
	fflush(stdout);
	return NL_OK;
}

static int monitor(int secs)
{
	time_t end = time(NULL) + secs;

	nl_socket_disable_seq_check(sk);
	nl_socket_modify_cb(sk, NL_CB_VALID, NL_CB_CUSTOM, on_event, NULL);
	if (nl_socket_add_memberships(sk, genl_ctrl_resolve_grp(sk, IDN_FAMILY_NAME, IDN_MCGRP_MISS),
				      genl_ctrl_resolve_grp(sk, IDN_FAMILY_NAME, IDN_MCGRP_HOLD), 0))
		return 1;
	printf("listening\n");
	fflush(stdout);
	while (time(NULL) < end) {
		struct pollfd p = { .fd = nl_socket_get_fd(sk), .events = POLLIN };

		if (poll(&p, 1, 200) > 0)
			nl_recvmsgs_default(sk);
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct reply r;
	struct nl_msg *m;
	int i, rc;

	if (argc < 2)
		return 2;
	if (connect_idn()) {
		fprintf(stderr, "kt_genl: family %s not found\n", IDN_FAMILY_NAME);
		if (!strcmp(argv[1], "test"))
			printf("not ok 1 - family \"%s\" resolves\n", IDN_FAMILY_NAME);
		return 1;
	}
	if (!strcmp(argv[1], "test"))
		return run_tests();
	if (!strcmp(argv[1], "monitor"))
		return monitor(argc > 2 ? atoi(argv[2]) : 5);
	if (!strcmp(argv[1], "set")) {
		static const char *const keys[] = { "max_pkts", "max_bytes", "timeout_ms", "event_ms" };
		static const int types[] = { IDN_A_MAX_PKTS, IDN_A_MAX_BYTES, IDN_A_TIMEOUT_MS,
					     IDN_A_EVENT_MS };
		m = req(IDN_CMD_CONFIG_SET, 0);
		for (i = 2; i + 1 < argc; i += 2)
			for (int k = 0; k < 4; k++)
				if (!strcmp(argv[i], keys[k]))
					nla_put_u32(m, types[k], strtoul(argv[i + 1], NULL, 0));
		rc = xfer(m, &r);
	} else if (!strcmp(argv[1], "release") || !strcmp(argv[1], "flush")) {
		m = req(argv[1][0] == 'r' ? IDN_CMD_RELEASE : IDN_CMD_FLUSH, 0);
		if (argc > 2 && strcmp(argv[2], "all"))
			nla_put_u32(m, IDN_A_CAP, strtoul(argv[2], NULL, 0));
		else
			nla_put_flag(m, IDN_A_ALL);
		rc = xfer(m, &r);
		if (!rc)
			printf("count %llu\n", r.val[IDN_A_COUNT]);
	} else if (!strcmp(argv[1], "stats")) {
		rc = xfer(req(IDN_CMD_STATS_GET, 0), &r);
		for (i = IDN_HS_HELD; !rc && i <= IDN_HS_MAX; i++)
			printf("%s %llu\n", stat_names[i], r.st[i]);
	} else if (!strcmp(argv[1], "queues")) {
		rc = xfer(req(IDN_CMD_QUEUE_GET, NLM_F_DUMP), &r);
		printf("queues %d\n", r.nmsg);
	} else {
		return 2;
	}
	if (rc)
		fprintf(stderr, "kt_genl: %s: %s%s%s\n", argv[1], strerror(-rc),
			r.ext[0] ? ": " : "", r.ext);
	return rc ? 1 : 0;
}
