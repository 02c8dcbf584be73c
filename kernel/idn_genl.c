// SPDX-License-Identifier: GPL-2.0
/*
 * idn_genl.c - the generic netlink family "idn": per-command policies,
 * request handlers (config get/set, release, flush, stats, queue dump) and
 * the notifications on the "miss" and "hold" multicast groups. Every
 * rejection carries an extack message.
 */
#include <net/genetlink.h>
#include <net/netlink.h>
#include <net/sock.h>

#include "idn_kmod.h"

static bool idn_genl_live;
static struct genl_family idn_family;

enum { IDN_GRP_MISS, IDN_GRP_HOLD };

/*
 * Reads and events are restricted like the writes: what is held, for
 * which capability and destination, is the router's business. Requests
 * need CAP_NET_ADMIN in the user namespace owning the request's netns
 * (GENL_UNS_ADMIN_PERM on every op, checked by genetlink for do and dump).
 * Joining a group needs the same (GENL_MCAST_CAP_NET_ADMIN, checked by
 * genl_bind() against the netns's user namespace; mainline since 6.7,
 * backported to 6.1.y stable and Debian's 6.1). A kernel without the
 * flag has no way left for a module to refuse a join (no bind callback
 * for a family, no filtered multicast): there the module says so at load
 * and the groups stay open to every process of the netns.
 */
#ifdef GENL_MCAST_CAP_NET_ADMIN
#define IDN_MCAST_FLAGS	GENL_MCAST_CAP_NET_ADMIN
#else
#define IDN_MCAST_FLAGS	0
#endif

static const struct genl_multicast_group idn_mcgrps[] = {
	[IDN_GRP_MISS] = { .name = IDN_MCGRP_MISS, .flags = IDN_MCAST_FLAGS },
	[IDN_GRP_HOLD] = { .name = IDN_MCGRP_HOLD, .flags = IDN_MCAST_FLAGS },
};

/* limits a netns may set (module parameters give the defaults) */
#define IDN_PKTS_MAX	65536
#define IDN_BYTES_MIN	1500
#define IDN_BYTES_MAX	(64U << 20)
#define IDN_TMO_MIN	10
#define IDN_TMO_MAX	600000
#define IDN_EVT_MAX	60000

static struct netlink_range_validation idn_pkts_range = { 1, IDN_PKTS_MAX };
static struct netlink_range_validation idn_bytes_range = { IDN_BYTES_MIN, IDN_BYTES_MAX };
static struct netlink_range_validation idn_tmo_range = { IDN_TMO_MIN, IDN_TMO_MAX };
static struct netlink_range_validation idn_evt_range = { 0, IDN_EVT_MAX };

static const struct nla_policy idn_set_policy[IDN_A_MAX + 1] = {
	[IDN_A_MAX_PKTS] = NLA_POLICY_FULL_RANGE(NLA_U32, &idn_pkts_range),
	[IDN_A_MAX_BYTES] = NLA_POLICY_FULL_RANGE(NLA_U32, &idn_bytes_range),
	[IDN_A_TIMEOUT_MS] = NLA_POLICY_FULL_RANGE(NLA_U32, &idn_tmo_range),
	[IDN_A_EVENT_MS] = NLA_POLICY_FULL_RANGE(NLA_U32, &idn_evt_range),
};

static const struct nla_policy idn_sel_policy[IDN_A_MAX + 1] = {
	[IDN_A_CAP] = { .type = NLA_U32 },
	[IDN_A_ALL] = { .type = NLA_FLAG },
};

static const struct nla_policy idn_cap_policy[IDN_A_MAX + 1] = {
	[IDN_A_CAP] = { .type = NLA_U32 },
};

static void *idn_msg(struct sk_buff *skb, struct genl_info *info, u8 cmd)
{
	return genlmsg_put_reply(skb, info, &idn_family, 0, cmd);
}

int idn_put_stats(struct sk_buff *skb, const u64 *st)
{
	struct nlattr *nest = nla_nest_start(skb, IDN_A_STATS);
	int i;

	if (!nest)
		return -EMSGSIZE;
	for (i = IDN_HS_HELD; i < __IDN_HS_MAX; i++)
		if (nla_put_u64_64bit(skb, i, st[i], IDN_HS_PAD))
			return -EMSGSIZE;
	nla_nest_end(skb, nest);
	return 0;
}

static int idn_put_cfg(struct sk_buff *skb, const struct idn_cfg *c)
{
	if (nla_put_u32(skb, IDN_A_MAX_PKTS, c->max_pkts) ||
	    nla_put_u32(skb, IDN_A_MAX_BYTES, c->max_bytes) ||
	    nla_put_u32(skb, IDN_A_TIMEOUT_MS, c->timeout_ms) ||
	    nla_put_u32(skb, IDN_A_EVENT_MS, c->event_ms) ||
	    nla_put_u32(skb, IDN_A_MAX_QUEUES, idn_max_queues))
		return -EMSGSIZE;
	return 0;
}

/* reply with the config (CONFIG_GET, CONFIG_SET) or the stats (STATS_GET) */
static int idn_reply(struct genl_info *info, u8 cmd, bool stats)
{
	struct idn_net *in = idn_pernet(genl_info_net(info));
	struct idn_cfg cfg;
	u64 st[__IDN_HS_MAX];
	struct sk_buff *msg;
	void *hdr;

	spin_lock_bh(&in->lock);
	cfg = in->cfg;
	memcpy(st, in->st, sizeof(st));
	spin_unlock_bh(&in->lock);
	msg = nlmsg_new(NLMSG_DEFAULT_SIZE, GFP_KERNEL);
	if (!msg)
		return -ENOMEM;
	hdr = idn_msg(msg, info, cmd);
	if (!hdr)
		goto nospace;
	if (stats ? idn_put_stats(msg, st) : idn_put_cfg(msg, &cfg))
		goto nospace;
	genlmsg_end(msg, hdr);
	return genlmsg_reply(msg, info);
nospace:
	nlmsg_free(msg);
	return -EMSGSIZE;
}

static int idn_cmd_config_get(struct sk_buff *skb, struct genl_info *info)
{
	return idn_reply(info, IDN_CMD_CONFIG_GET, false);
}

static int idn_cmd_config_set(struct sk_buff *skb, struct genl_info *info)
{
	struct idn_net *in = idn_pernet(genl_info_net(info));
	struct nlattr **a = info->attrs;
	struct idn_cfg c;

	if (!a[IDN_A_MAX_PKTS] && !a[IDN_A_MAX_BYTES] && !a[IDN_A_TIMEOUT_MS] &&
	    !a[IDN_A_EVENT_MS]) {
		NL_SET_ERR_MSG(info->extack, "no hold limit given (max_pkts, max_bytes, timeout_ms, event_ms)");
		return -EINVAL;
	}
	spin_lock_bh(&in->lock);
	c = in->cfg;
	if (a[IDN_A_MAX_PKTS])
		c.max_pkts = nla_get_u32(a[IDN_A_MAX_PKTS]);
	if (a[IDN_A_MAX_BYTES])
		c.max_bytes = nla_get_u32(a[IDN_A_MAX_BYTES]);
	if (a[IDN_A_TIMEOUT_MS])
		c.timeout_ms = nla_get_u32(a[IDN_A_TIMEOUT_MS]);
	if (a[IDN_A_EVENT_MS])
		c.event_ms = nla_get_u32(a[IDN_A_EVENT_MS]);
	in->cfg = c;
	spin_unlock_bh(&in->lock);
	return idn_reply(info, IDN_CMD_CONFIG_SET, false);
}

/* RELEASE and FLUSH: exactly one of CAP and ALL */
static int idn_select(struct genl_info *info, bool *all, u32 *cap)
{
	struct nlattr **a = info->attrs;

	if (a[IDN_A_CAP] && a[IDN_A_ALL]) {
		NL_SET_ERR_MSG_ATTR(info->extack, a[IDN_A_ALL], "give either a capability or all, not both");
		return -EINVAL;
	}
	if (!a[IDN_A_CAP] && !a[IDN_A_ALL]) {
		NL_SET_ERR_MSG(info->extack, "a capability (IDN_A_CAP) or IDN_A_ALL is required");
		return -EINVAL;
	}
	*all = !!a[IDN_A_ALL];
	*cap = a[IDN_A_CAP] ? nla_get_u32(a[IDN_A_CAP]) : 0;
	return 0;
}

static int idn_count_reply(struct genl_info *info, u8 cmd, u32 count)
{
	struct sk_buff *msg = nlmsg_new(NLMSG_GOODSIZE, GFP_KERNEL);
	void *hdr;

	if (!msg)
		return -ENOMEM;
	hdr = idn_msg(msg, info, cmd);
	if (!hdr || nla_put_u32(msg, IDN_A_COUNT, count)) {
		nlmsg_free(msg);
		return -EMSGSIZE;
	}
	genlmsg_end(msg, hdr);
	return genlmsg_reply(msg, info);
}

/* RELEASE and FLUSH: the same selection of queues, a different end for them. */
static int idn_cmd_queues(struct genl_info *info, u8 cmd,
			  int (*op)(struct idn_net *in, bool all, u32 cap, u32 *count))
{
	struct idn_net *in = idn_pernet(genl_info_net(info));
	u32 cap, count = 0;
	bool all;
	int err;

	err = idn_select(info, &all, &cap);
	if (err)
		return err;
	err = op(in, all, cap, &count);
	if (err) {
		NL_SET_ERR_MSG_ATTR(info->extack, info->attrs[IDN_A_CAP], "no hold queue for this capability");
		return err;
	}
	return idn_count_reply(info, cmd, count);
}

static int idn_cmd_release(struct sk_buff *skb, struct genl_info *info)
{
	return idn_cmd_queues(info, IDN_CMD_RELEASE, idn_hold_release);
}

static int idn_cmd_flush(struct sk_buff *skb, struct genl_info *info)
{
	return idn_cmd_queues(info, IDN_CMD_FLUSH, idn_hold_flush);
}

static int idn_cmd_stats_get(struct sk_buff *skb, struct genl_info *info)
{
	return idn_reply(info, IDN_CMD_STATS_GET, true);
}

static int idn_put_queue(struct sk_buff *skb, const struct idn_queue *q)
{
	struct sk_buff *head = skb_peek((struct sk_buff_head *)&q->skbs);
	u32 age = head ? jiffies_to_msecs(jiffies - IDN_CB(head)->held_at) : 0;

	if (nla_put_u32(skb, IDN_A_CAP, q->cap) ||
	    nla_put_u32(skb, IDN_A_PKTS, skb_queue_len(&q->skbs)) ||
	    nla_put_u32(skb, IDN_A_BYTES, q->bytes) ||
	    nla_put_u32(skb, IDN_A_AGE_MS, age) ||
	    nla_put_u8(skb, IDN_A_FAMILY, q->family) ||
	    nla_put(skb, IDN_A_DADDR, q->family == IDN_AF_INET ? 4 : 16,
		    q->family == IDN_AF_INET ? (const void *)&q->daddr.s6_addr32[0]
					     : (const void *)&q->daddr) ||
	    nla_put_u16(skb, IDN_A_DPORT, q->dport) ||
	    nla_put_u8(skb, IDN_A_PROTO, q->proto) ||
	    nla_put_u32(skb, IDN_A_IFINDEX, q->ifindex))
		return -EMSGSIZE;
	return idn_put_stats(skb, q->st);
}

static int idn_cmd_queue_get(struct sk_buff *skb, struct genl_info *info)
{
	struct idn_net *in = idn_pernet(genl_info_net(info));
	struct idn_queue *q;
	struct sk_buff *msg;
	void *hdr;
	u32 cap;
	int err = -ENOENT;

	if (!info->attrs[IDN_A_CAP]) {
		NL_SET_ERR_MSG(info->extack, "IDN_A_CAP is required (dump for every queue)");
		return -EINVAL;
	}
	cap = nla_get_u32(info->attrs[IDN_A_CAP]);
	msg = nlmsg_new(NLMSG_DEFAULT_SIZE, GFP_KERNEL);
	if (!msg)
		return -ENOMEM;
	hdr = idn_msg(msg, info, IDN_CMD_QUEUE_GET);
	if (!hdr) {
		nlmsg_free(msg);
		return -EMSGSIZE;
	}
	spin_lock_bh(&in->lock);
	list_for_each_entry(q, &in->queues, list) {
		if (q->cap == cap) {
			err = idn_put_queue(msg, q);
			break;
		}
	}
	spin_unlock_bh(&in->lock);
	if (err) {
		nlmsg_free(msg);
		if (err == -ENOENT)
			NL_SET_ERR_MSG_ATTR(info->extack, info->attrs[IDN_A_CAP], "no hold queue for this capability");
		return err;
	}
	genlmsg_end(msg, hdr);
	return genlmsg_reply(msg, info);
}

static int idn_dump_queues(struct sk_buff *skb, struct netlink_callback *cb)
{
	struct idn_net *in = idn_pernet(sock_net(skb->sk));
	long idx = 0, start = cb->args[0];
	struct idn_queue *q;
	void *hdr;

	spin_lock_bh(&in->lock);
	list_for_each_entry(q, &in->queues, list) {
		if (idx++ < start)
			continue;
		hdr = genlmsg_put(skb, NETLINK_CB(cb->skb).portid, cb->nlh->nlmsg_seq,
				  &idn_family, NLM_F_MULTI, IDN_CMD_QUEUE_GET);
		if (!hdr)
			break;
		if (idn_put_queue(skb, q)) {
			genlmsg_cancel(skb, hdr);
			break;
		}
		genlmsg_end(skb, hdr);
		cb->args[0] = idx;
	}
	spin_unlock_bh(&in->lock);
	return skb->len;
}

static const struct genl_ops idn_ops[] = {
	{
		.cmd = IDN_CMD_CONFIG_GET,
		.doit = idn_cmd_config_get,
		.policy = idn_cap_policy,
		.maxattr = IDN_A_MAX,
		.flags = GENL_UNS_ADMIN_PERM,
	},
	{
		.cmd = IDN_CMD_CONFIG_SET,
		.doit = idn_cmd_config_set,
		.policy = idn_set_policy,
		.maxattr = IDN_A_MAX,
		.flags = GENL_UNS_ADMIN_PERM,
	},
	{
		.cmd = IDN_CMD_RELEASE,
		.doit = idn_cmd_release,
		.policy = idn_sel_policy,
		.maxattr = IDN_A_MAX,
		.flags = GENL_UNS_ADMIN_PERM,
	},
	{
		.cmd = IDN_CMD_FLUSH,
		.doit = idn_cmd_flush,
		.policy = idn_sel_policy,
		.maxattr = IDN_A_MAX,
		.flags = GENL_UNS_ADMIN_PERM,
	},
	{
		.cmd = IDN_CMD_STATS_GET,
		.doit = idn_cmd_stats_get,
		.policy = idn_cap_policy,
		.maxattr = IDN_A_MAX,
		.flags = GENL_UNS_ADMIN_PERM,
	},
	{
		.cmd = IDN_CMD_QUEUE_GET,
		.doit = idn_cmd_queue_get,
		.dumpit = idn_dump_queues,
		.policy = idn_cap_policy,
		.maxattr = IDN_A_MAX,
		.flags = GENL_UNS_ADMIN_PERM,
	},
};

static struct genl_family idn_family __ro_after_init = {
	.name = IDN_FAMILY_NAME,
	.version = IDN_FAMILY_VERSION,
	.maxattr = IDN_A_MAX,
	.netnsok = true,
	.parallel_ops = true,
	.resv_start_op = IDN_CMD_QUEUE_GET + 1,
	.ops = idn_ops,
	.n_ops = ARRAY_SIZE(idn_ops),
	.mcgrps = idn_mcgrps,
	.n_mcgrps = ARRAY_SIZE(idn_mcgrps),
	.module = THIS_MODULE,
};

static void idn_ntf_send(struct idn_net *in, struct sk_buff *msg, void *hdr, int grp)
{
	genlmsg_end(msg, hdr);
	genlmsg_multicast_netns(&idn_family, in->net, msg, 0, grp, GFP_ATOMIC);
}

/* DEMAND_MISS: called with in->lock held (atomic context) */
void idn_ntf_miss(struct idn_net *in, const struct idn_queue *q)
{
	struct sk_buff *msg;
	void *hdr;

	rcu_read_lock();
	if (!READ_ONCE(idn_genl_live) ||
	    !genl_has_listeners(&idn_family, in->net, IDN_GRP_MISS))
		goto out;
	msg = genlmsg_new(NLMSG_GOODSIZE, GFP_ATOMIC);
	if (!msg)
		goto out;
	hdr = genlmsg_put(msg, 0, 0, &idn_family, 0, IDN_CMD_DEMAND_MISS_NTF);
	if (!hdr || idn_put_queue(msg, q)) {
		nlmsg_free(msg);
		goto out;
	}
	idn_ntf_send(in, msg, hdr, IDN_GRP_MISS);
out:
	rcu_read_unlock();
}

/* RELEASE_NTF / REJECT_NTF: @count packets of queue @cap */
void idn_ntf_count(struct idn_net *in, u8 cmd, u32 cap, u8 reason, u32 count)
{
	struct sk_buff *msg;
	void *hdr;

	rcu_read_lock();
	if (!READ_ONCE(idn_genl_live) ||
	    !genl_has_listeners(&idn_family, in->net, IDN_GRP_HOLD))
		goto out;
	msg = genlmsg_new(NLMSG_GOODSIZE, GFP_ATOMIC);
	if (!msg)
		goto out;
	hdr = genlmsg_put(msg, 0, 0, &idn_family, 0, cmd);
	if (!hdr || nla_put_u32(msg, IDN_A_CAP, cap) || nla_put_u32(msg, IDN_A_COUNT, count) ||
	    (reason && nla_put_u8(msg, IDN_A_REASON, reason))) {
		nlmsg_free(msg);
		goto out;
	}
	idn_ntf_send(in, msg, hdr, IDN_GRP_HOLD);
out:
	rcu_read_unlock();
}

int idn_genl_register(void)
{
	int err = genl_register_family(&idn_family);

	if (!IDN_MCAST_FLAGS)
		pr_warn("idn: this kernel cannot restrict multicast groups: events are readable without CAP_NET_ADMIN\n");
	if (!err)
		WRITE_ONCE(idn_genl_live, true);
	return err;
}

void idn_genl_unregister(void)
{
	WRITE_ONCE(idn_genl_live, false);
	synchronize_rcu();
	genl_unregister_family(&idn_family);
}
