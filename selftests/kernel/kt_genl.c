// SPDX-License-Identifier: GPL-2.0
/*
 * kt_genl.c - guest-side command tool for the "idn" generic netlink
 * family (libnl-3, selftests/kernel/kt.h), for the kernel tier's shell
 * tests. The conformance tests are kt_genl_test.c (kselftest harness).
 *
 *   kt_genl set KEY N [KEY N]...   KEY: max_pkts max_bytes timeout_ms event_ms
 *   kt_genl release { CAP | all }  prints "count N"
 *   kt_genl flush { CAP | all }    prints "count N"
 *   kt_genl stats                  prints "NAME VALUE" lines
 *   kt_genl queues                 prints "queues N" (dump)
 *   kt_genl monitor SECONDS        prints events until SECONDS passed
 * Exit: 0 ok, 1 failure, 2 usage.
 */
#include <poll.h>
#include <stdlib.h>
#include <time.h>

#include "kt.h"

IDN_ASSERT_ABI();

static struct kt_nl nl;

static const char *const stat_names[IDN_HS_MAX + 1] = {
	[IDN_HS_HELD] = "held", [IDN_HS_RELEASED] = "released",
	[IDN_HS_REJ_TIMEOUT] = "rej_timeout", [IDN_HS_REJ_OVERFLOW] = "rej_overflow",
	[IDN_HS_REJ_FLUSH] = "rej_flush", [IDN_HS_DROPPED] = "dropped",
	[IDN_HS_EVENTS] = "events", [IDN_HS_EVENTS_LIMITED] = "events_limited",
};

static int on_event(struct nl_msg *msg, void *arg)
{
	struct kt_reply r;
	int cmd = nlmsg_hdr(msg)->nlmsg_type == nl.fam ?
		((struct genlmsghdr *)nlmsg_data(nlmsg_hdr(msg)))->cmd : -1;

	memset(&r, 0, sizeof(r));
	kt_parse(msg, &r);
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

	int err;

	nl_socket_disable_seq_check(nl.sk);
	nl_socket_modify_cb(nl.sk, NL_CB_VALID, NL_CB_CUSTOM, on_event, NULL);
	if ((err = kt_join(&nl, IDN_MCGRP_MISS)) || (err = kt_join(&nl, IDN_MCGRP_HOLD))) {
		fprintf(stderr, "kt_genl: monitor: %s\n", strerror(-err));
		return 1;
	}
	printf("listening\n");
	fflush(stdout);
	while (time(NULL) < end) {
		struct pollfd p = { .fd = nl_socket_get_fd(nl.sk), .events = POLLIN };

		if (poll(&p, 1, 200) > 0)
			nl_recvmsgs_default(nl.sk);
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct kt_reply r;
	struct nl_msg *m;
	int i, rc;

	if (argc < 2)
		return 2;
	if (kt_connect(&nl)) {
		fprintf(stderr, "kt_genl: family %s not found\n", IDN_FAMILY_NAME);
		return 1;
	}
	if (!strcmp(argv[1], "monitor"))
		return monitor(argc > 2 ? atoi(argv[2]) : 5);
	if (!strcmp(argv[1], "set")) {
		static const char *const keys[] = { "max_pkts", "max_bytes", "timeout_ms", "event_ms" };
		static const int types[] = { IDN_A_MAX_PKTS, IDN_A_MAX_BYTES, IDN_A_TIMEOUT_MS,
					     IDN_A_EVENT_MS };
		m = kt_req(&nl, IDN_CMD_CONFIG_SET, 0);
		for (i = 2; i + 1 < argc; i += 2)
			for (int k = 0; k < 4; k++)
				if (!strcmp(argv[i], keys[k]))
					nla_put_u32(m, types[k], strtoul(argv[i + 1], NULL, 0));
		rc = kt_xfer(&nl, m, &r);
	} else if (!strcmp(argv[1], "release") || !strcmp(argv[1], "flush")) {
		m = kt_req(&nl, argv[1][0] == 'r' ? IDN_CMD_RELEASE : IDN_CMD_FLUSH, 0);
		if (argc > 2 && strcmp(argv[2], "all"))
			nla_put_u32(m, IDN_A_CAP, strtoul(argv[2], NULL, 0));
		else
			nla_put_flag(m, IDN_A_ALL);
		rc = kt_xfer(&nl, m, &r);
		if (!rc)
			printf("count %llu\n", r.val[IDN_A_COUNT]);
	} else if (!strcmp(argv[1], "stats")) {
		rc = kt_cmd(&nl, IDN_CMD_STATS_GET, 0, &r);
		for (i = IDN_HS_HELD; !rc && i <= IDN_HS_MAX; i++)
			printf("%s %llu\n", stat_names[i], r.st[i]);
	} else if (!strcmp(argv[1], "queues")) {
		rc = kt_cmd(&nl, IDN_CMD_QUEUE_GET, NLM_F_DUMP, &r);
		printf("queues %d\n", r.nmsg);
	} else {
		return 2;
	}
	if (rc)
		fprintf(stderr, "kt_genl: %s: %s%s%s\n", argv[1], strerror(-rc),
			r.ext[0] ? ": " : "", r.ext);
	return rc ? 1 : 0;
}
