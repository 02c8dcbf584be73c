// SPDX-License-Identifier: GPL-2.0
/*
 * kt_genl_test.c - conformance tests of idn.ko's generic netlink family
 * "idn", on the kselftest harness (kselftest_harness.h from linux-source,
 * extracted by selftests/kernel/run.sh): every command with valid,
 * missing, out-of-range, oversized, short, unknown, foreign and malformed
 * attributes (errno and extack message), and who may use the family:
 * reads, writes, events and /proc/net/idn need CAP_NET_ADMIN in the user
 * namespace owning the netns (issue 11).
 *
 * Runs in the guest as root with idn.ko loaded at its default parameters;
 * every test runs in its own child (the harness forks), so a test that
 * drops privileges drops them for itself only. Prints TAP.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <sched.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <linux/capability.h>

#include "kt.h"
#include "kselftest_harness.h"

IDN_ASSERT_ABI();

/* ---- the family: discovery and valid requests ---------------------------- */

FIXTURE(genl) {
	struct kt_nl nl;
	struct kt_reply r;
};

FIXTURE_SETUP(genl)
{
	ASSERT_EQ(0, kt_connect(&self->nl)) TH_LOG("family \"%s\" does not resolve", IDN_FAMILY_NAME);
}

/* every test leaves the netns's limits at the module's defaults */
FIXTURE_TEARDOWN(genl)
{
	struct nl_msg *m;

	if (self->nl.fam < 0) {
		kt_close(&self->nl);
		return;
	}
	m = kt_req(&self->nl, IDN_CMD_CONFIG_SET, 0);
	nla_put_u32(m, IDN_A_MAX_PKTS, KT_DEF_MAX_PKTS);
	nla_put_u32(m, IDN_A_MAX_BYTES, KT_DEF_MAX_BYTES);
	nla_put_u32(m, IDN_A_TIMEOUT_MS, KT_DEF_TIMEOUT_MS);
	nla_put_u32(m, IDN_A_EVENT_MS, KT_DEF_EVENT_MS);
	EXPECT_EQ(0, kt_xfer(&self->nl, m, &self->r));
	kt_close(&self->nl);
}

TEST_F(genl, family_version)
{
	struct genl_family *f = NULL;
	struct nl_cache *c;

	ASSERT_EQ(0, genl_ctrl_alloc_cache(self->nl.sk, &c));
	f = genl_ctrl_search_by_name(c, IDN_FAMILY_NAME);
	nl_cache_free(c);
	ASSERT_NE(NULL, f);
	EXPECT_EQ(IDN_FAMILY_VERSION, genl_family_get_version(f));
	genl_family_put(f);
}

TEST_F(genl, multicast_groups)
{
	EXPECT_LT(0, genl_ctrl_resolve_grp(self->nl.sk, IDN_FAMILY_NAME, IDN_MCGRP_MISS));
	EXPECT_LT(0, genl_ctrl_resolve_grp(self->nl.sk, IDN_FAMILY_NAME, IDN_MCGRP_HOLD));
}

/* root (CAP_NET_ADMIN in the init netns) joins both groups */
TEST_F(genl, join_groups_privileged)
{
	EXPECT_EQ(0, kt_join(&self->nl, IDN_MCGRP_MISS));
	EXPECT_EQ(0, kt_join(&self->nl, IDN_MCGRP_HOLD));
}

TEST_F(genl, config_get_defaults)
{
	struct kt_reply *r = &self->r;

	ASSERT_EQ(0, kt_cmd(&self->nl, IDN_CMD_CONFIG_GET, 0, r));
	EXPECT_EQ(KT_DEF_MAX_PKTS, r->val[IDN_A_MAX_PKTS]);
	EXPECT_EQ(KT_DEF_MAX_BYTES, r->val[IDN_A_MAX_BYTES]);
	EXPECT_EQ(KT_DEF_TIMEOUT_MS, r->val[IDN_A_TIMEOUT_MS]);
	EXPECT_EQ(KT_DEF_EVENT_MS, r->val[IDN_A_EVENT_MS]);
	EXPECT_EQ(KT_DEF_MAX_QUEUES, r->val[IDN_A_MAX_QUEUES]);
}

TEST_F(genl, config_set_valid)
{
	struct kt_reply *r = &self->r;
	struct nl_msg *m = kt_req(&self->nl, IDN_CMD_CONFIG_SET, 0);

	nla_put_u32(m, IDN_A_MAX_PKTS, 8);
	nla_put_u32(m, IDN_A_TIMEOUT_MS, 500);
	ASSERT_EQ(0, kt_xfer(&self->nl, m, r));
	/* the reply has the new limits, the others unchanged */
	EXPECT_EQ(8ULL, r->val[IDN_A_MAX_PKTS]);
	EXPECT_EQ(500ULL, r->val[IDN_A_TIMEOUT_MS]);
	EXPECT_EQ(KT_DEF_MAX_BYTES, r->val[IDN_A_MAX_BYTES]);
	ASSERT_EQ(0, kt_cmd(&self->nl, IDN_CMD_CONFIG_GET, 0, r));
	EXPECT_EQ(8ULL, r->val[IDN_A_MAX_PKTS]);
	EXPECT_EQ(500ULL, r->val[IDN_A_TIMEOUT_MS]);
}

TEST_F(genl, release_all_none_held)
{
	struct nl_msg *m = kt_req(&self->nl, IDN_CMD_RELEASE, 0);

	nla_put_flag(m, IDN_A_ALL);
	ASSERT_EQ(0, kt_xfer(&self->nl, m, &self->r));
	ASSERT_TRUE(self->r.have[IDN_A_COUNT]);
	EXPECT_EQ(0ULL, self->r.val[IDN_A_COUNT]);
}

TEST_F(genl, flush_all)
{
	struct nl_msg *m = kt_req(&self->nl, IDN_CMD_FLUSH, 0);

	nla_put_flag(m, IDN_A_ALL);
	ASSERT_EQ(0, kt_xfer(&self->nl, m, &self->r));
	EXPECT_TRUE(self->r.have[IDN_A_COUNT]);
}

TEST_F(genl, stats_get_nothing_held)
{
	ASSERT_EQ(0, kt_cmd(&self->nl, IDN_CMD_STATS_GET, 0, &self->r));
	ASSERT_TRUE(self->r.have_st);
	EXPECT_EQ(0ULL, self->r.st[IDN_HS_HELD]);
}

TEST_F(genl, queue_dump_empty)
{
	ASSERT_EQ(0, kt_cmd(&self->nl, IDN_CMD_QUEUE_GET, NLM_F_DUMP, &self->r));
	EXPECT_EQ(0, self->r.nmsg);
}

/* notifications have their own ids and are never accepted as requests */
TEST_F(genl, notification_as_request)
{
	EXPECT_EQ(-EOPNOTSUPP, kt_cmd(&self->nl, IDN_CMD_DEMAND_MISS_NTF, 0, &self->r));
	EXPECT_EQ(-EOPNOTSUPP, kt_cmd(&self->nl, IDN_CMD_RELEASE_NTF, 0, &self->r));
	EXPECT_EQ(-EOPNOTSUPP, kt_cmd(&self->nl, IDN_CMD_REJECT_NTF, 0, &self->r));
}

TEST_F(genl, unknown_command)
{
	EXPECT_EQ(-EOPNOTSUPP, kt_cmd(&self->nl, IDN_CMD_MAX + 20, 0, &self->r));
}

/* ---- rejections: one variant per bad request ------------------------------- */

static void no_attrs(struct nl_msg *m)
{
}

static void max_pkts_0(struct nl_msg *m)
{
	nla_put_u32(m, IDN_A_MAX_PKTS, 0);
}

static void max_bytes_1g(struct nl_msg *m)
{
	nla_put_u32(m, IDN_A_MAX_BYTES, 1U << 30);
}

static void timeout_5(struct nl_msg *m)
{
	nla_put_u32(m, IDN_A_TIMEOUT_MS, 5);
}

static void max_pkts_u64(struct nl_msg *m)
{
	nla_put_u64(m, IDN_A_MAX_PKTS, 4);
}

static void timeout_u16(struct nl_msg *m)
{
	nla_put_u16(m, IDN_A_TIMEOUT_MS, 100);
}

static void unknown_attr(struct nl_msg *m)
{
	nla_put_u32(m, IDN_A_MAX + 7, 1);
}

static void cap_attr(struct nl_msg *m)
{
	nla_put_u32(m, IDN_A_CAP, 0x4242);
}

static void cap_7_and_all(struct nl_msg *m)
{
	nla_put_u32(m, IDN_A_CAP, 7);
	nla_put_flag(m, IDN_A_ALL);
}

static void cap_u64(struct nl_msg *m)
{
	nla_put_u64(m, IDN_A_CAP, 7);
}

static void all_with_payload(struct nl_msg *m)
{
	nla_put_u32(m, IDN_A_ALL, 1);
}

static void timeout_7(struct nl_msg *m)
{
	nla_put_u32(m, IDN_A_TIMEOUT_MS, 7);
}

static void max_pkts_1(struct nl_msg *m)
{
	nla_put_u32(m, IDN_A_MAX_PKTS, 1);
}

/* an attribute header that claims 2 bytes: less than the header itself */
static void hdr_too_short(struct nl_msg *m)
{
	unsigned char raw[8] = { 2, 0, IDN_A_MAX_PKTS, 0 };

	nlmsg_append(m, raw, sizeof(raw), 0);
}

/* an attribute header that claims 12 bytes of a 8-byte remainder */
static void past_the_end(struct nl_msg *m)
{
	unsigned char raw[8] = { 12, 0, IDN_A_MAX_PKTS, 0 };

	nlmsg_append(m, raw, sizeof(raw), 0);
}

FIXTURE(reject) {
	struct kt_nl nl;
};

FIXTURE_VARIANT(reject) {
	int cmd;
	void (*attrs)(struct nl_msg *m);
	int err;		/* the errno expected */
	int no_extack;		/* the rejection comes before the family's policy */
};

FIXTURE_SETUP(reject)
{
	ASSERT_EQ(0, kt_connect(&self->nl));
}

FIXTURE_TEARDOWN(reject)
{
	kt_close(&self->nl);
}

#define REJECT(name, c, fn, e) \
	FIXTURE_VARIANT_ADD(reject, name) { .cmd = (c), .attrs = (fn), .err = (e) }

REJECT(config_set_missing, IDN_CMD_CONFIG_SET, no_attrs, EINVAL);
REJECT(config_set_max_pkts_0, IDN_CMD_CONFIG_SET, max_pkts_0, ERANGE);
REJECT(config_set_max_bytes_1g, IDN_CMD_CONFIG_SET, max_bytes_1g, ERANGE);
REJECT(config_set_timeout_5, IDN_CMD_CONFIG_SET, timeout_5, ERANGE);
REJECT(config_set_oversized_u32, IDN_CMD_CONFIG_SET, max_pkts_u64, EINVAL);
REJECT(config_set_short_u32, IDN_CMD_CONFIG_SET, timeout_u16, EINVAL);
REJECT(config_set_unknown_attr, IDN_CMD_CONFIG_SET, unknown_attr, EINVAL);
REJECT(config_set_foreign_attr, IDN_CMD_CONFIG_SET, cap_attr, EINVAL);
REJECT(config_set_malformed_hdr, IDN_CMD_CONFIG_SET, hdr_too_short, EINVAL);
FIXTURE_VARIANT_ADD(reject, config_set_past_the_end) {
	.cmd = IDN_CMD_CONFIG_SET, .attrs = past_the_end, .err = EINVAL, .no_extack = 1,
};
REJECT(release_missing, IDN_CMD_RELEASE, no_attrs, EINVAL);
REJECT(release_cap_and_all, IDN_CMD_RELEASE, cap_7_and_all, EINVAL);
REJECT(release_no_queue, IDN_CMD_RELEASE, cap_attr, ENOENT);
REJECT(release_oversized_cap, IDN_CMD_RELEASE, cap_u64, EINVAL);
REJECT(release_all_with_payload, IDN_CMD_RELEASE, all_with_payload, ERANGE);
REJECT(flush_missing, IDN_CMD_FLUSH, no_attrs, EINVAL);
REJECT(flush_no_queue, IDN_CMD_FLUSH, cap_attr, ENOENT);
REJECT(flush_foreign_attr, IDN_CMD_FLUSH, timeout_7, EINVAL);
REJECT(stats_get_foreign_attr, IDN_CMD_STATS_GET, max_pkts_1, EINVAL);
REJECT(config_get_foreign_attr, IDN_CMD_CONFIG_GET, max_pkts_1, EINVAL);
REJECT(queue_get_missing_cap, IDN_CMD_QUEUE_GET, no_attrs, EINVAL);
REJECT(queue_get_no_queue, IDN_CMD_QUEUE_GET, cap_attr, ENOENT);

/* the errno, and an extack message saying why */
TEST_F(reject, errno_and_extack)
{
	struct nl_msg *m = kt_req(&self->nl, variant->cmd, 0);
	struct kt_reply r;

	ASSERT_NE(NULL, m);
	variant->attrs(m);
	EXPECT_EQ(-variant->err, kt_xfer(&self->nl, m, &r)) TH_LOG("extack \"%s\"", r.ext);
	if (!variant->no_extack)
		EXPECT_NE(0, r.ext[0]) TH_LOG("no extack message");
}

/* ---- who may use the family ------------------------------------------------ */

/* drop CAP_NET_ADMIN from this process (effective, permitted, inheritable) */
static int drop_net_admin(void)
{
	struct __user_cap_header_struct h = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct d[2];

	if (syscall(SYS_capget, &h, d))
		return -errno;
	d[CAP_TO_INDEX(CAP_NET_ADMIN)].effective &= ~CAP_TO_MASK(CAP_NET_ADMIN);
	d[CAP_TO_INDEX(CAP_NET_ADMIN)].permitted &= ~CAP_TO_MASK(CAP_NET_ADMIN);
	d[CAP_TO_INDEX(CAP_NET_ADMIN)].inheritable &= ~CAP_TO_MASK(CAP_NET_ADMIN);
	return syscall(SYS_capset, &h, d) ? -errno : 0;
}

/*
 * An unprivileged caller of the init netns: root without CAP_NET_ADMIN,
 * or a process in a user namespace of its own (all capabilities there,
 * none over the init netns, which the init user namespace owns).
 * "before" is a socket opened while still privileged: the kernel checks
 * the caller as well as the socket's opener.
 */
FIXTURE(unpriv) {
	struct kt_nl before, nl;
	struct kt_reply r;
	int proc_fd;
};

FIXTURE_VARIANT(unpriv) {
	int userns;
};

FIXTURE_VARIANT_ADD(unpriv, no_cap_net_admin) {
	.userns = 0,
};

FIXTURE_VARIANT_ADD(unpriv, user_namespace) {
	.userns = 1,
};

FIXTURE_SETUP(unpriv)
{
	ASSERT_EQ(0, kt_connect(&self->before));
	self->proc_fd = open("/proc/net/idn", O_RDONLY);
	ASSERT_LE(0, self->proc_fd);
	if (variant->userns) {
		ASSERT_EQ(0, unshare(CLONE_NEWUSER)) TH_LOG("unshare: %s", strerror(errno));
	} else {
		ASSERT_EQ(0, drop_net_admin()) TH_LOG("capset: %s", strerror(errno));
	}
	ASSERT_EQ(0, kt_connect(&self->nl));
}

FIXTURE_TEARDOWN(unpriv)
{
	kt_close(&self->nl);
	kt_close(&self->before);
	if (self->proc_fd >= 0)
		close(self->proc_fd);
}

TEST_F(unpriv, reads_refused)
{
	struct kt_nl *nl[] = { &self->nl, &self->before };
	unsigned int i;

	for (i = 0; i < sizeof(nl) / sizeof(nl[0]); i++) {
		struct nl_msg *m;

		EXPECT_EQ(-EPERM, kt_cmd(nl[i], IDN_CMD_CONFIG_GET, 0, &self->r));
		EXPECT_EQ(-EPERM, kt_cmd(nl[i], IDN_CMD_STATS_GET, 0, &self->r));
		EXPECT_EQ(-EPERM, kt_cmd(nl[i], IDN_CMD_QUEUE_GET, NLM_F_DUMP, &self->r));
		EXPECT_EQ(0, self->r.nmsg);
		m = kt_req(nl[i], IDN_CMD_QUEUE_GET, 0);
		nla_put_u32(m, IDN_A_CAP, 0x4242);
		EXPECT_EQ(-EPERM, kt_xfer(nl[i], m, &self->r));
	}
}

TEST_F(unpriv, writes_refused)
{
	struct nl_msg *m = kt_req(&self->nl, IDN_CMD_CONFIG_SET, 0);

	nla_put_u32(m, IDN_A_MAX_PKTS, 9);
	EXPECT_EQ(-EPERM, kt_xfer(&self->nl, m, &self->r));
	m = kt_req(&self->nl, IDN_CMD_FLUSH, 0);
	nla_put_flag(m, IDN_A_ALL);
	EXPECT_EQ(-EPERM, kt_xfer(&self->nl, m, &self->r));
	m = kt_req(&self->nl, IDN_CMD_RELEASE, 0);
	nla_put_flag(m, IDN_A_ALL);
	EXPECT_EQ(-EPERM, kt_xfer(&self->nl, m, &self->r));
}

TEST_F(unpriv, join_events_refused)
{
	EXPECT_EQ(-EPERM, kt_join(&self->nl, IDN_MCGRP_MISS));
	EXPECT_EQ(-EPERM, kt_join(&self->nl, IDN_MCGRP_HOLD));
	EXPECT_EQ(-EPERM, kt_join(&self->before, IDN_MCGRP_MISS));
	EXPECT_EQ(-EPERM, kt_join(&self->before, IDN_MCGRP_HOLD));
}

/* /proc/net/idn lists the queues too: opened now, it is refused */
TEST_F(unpriv, proc_refused)
{
	char buf[256];
	int fd = open("/proc/net/idn", O_RDONLY);

	if (fd >= 0) {	/* no CAP_DAC_OVERRIDE needed: the file is 0444 */
		errno = 0;
		EXPECT_EQ(-1, read(fd, buf, sizeof(buf)));
		EXPECT_EQ(EPERM, errno);
		close(fd);
	}
	/* opened by root with the right: reading after the drop works */
	EXPECT_LT(0, read(self->proc_fd, buf, sizeof(buf)));
}

/*
 * The right is CAP_NET_ADMIN in the user namespace that owns the netns,
 * not in the init one: a process with a user and a network namespace of
 * its own administers its own idn state.
 */
TEST(own_netns_admin)
{
	struct kt_nl nl;
	struct kt_reply r;
	struct nl_msg *m;

	ASSERT_EQ(0, unshare(CLONE_NEWUSER | CLONE_NEWNET)) TH_LOG("unshare: %s", strerror(errno));
	ASSERT_EQ(0, kt_connect(&nl));
	ASSERT_EQ(0, kt_cmd(&nl, IDN_CMD_CONFIG_GET, 0, &r)) TH_LOG("extack \"%s\"", r.ext);
	EXPECT_EQ(KT_DEF_MAX_PKTS, r.val[IDN_A_MAX_PKTS]);
	m = kt_req(&nl, IDN_CMD_CONFIG_SET, 0);
	nla_put_u32(m, IDN_A_MAX_PKTS, 9);
	EXPECT_EQ(0, kt_xfer(&nl, m, &r));
	EXPECT_EQ(9ULL, r.val[IDN_A_MAX_PKTS]);
	EXPECT_EQ(0, kt_cmd(&nl, IDN_CMD_STATS_GET, 0, &r));
	EXPECT_EQ(0, kt_cmd(&nl, IDN_CMD_QUEUE_GET, NLM_F_DUMP, &r));
	EXPECT_EQ(0, kt_join(&nl, IDN_MCGRP_MISS));
	EXPECT_EQ(0, kt_join(&nl, IDN_MCGRP_HOLD));
	kt_close(&nl);
}

TEST_HARNESS_MAIN
