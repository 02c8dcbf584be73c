// SPDX-License-Identifier: GPL-2.0
/*
 * idn_hold.c - the activation hold: a netfilter PRE_ROUTING hook takes
 * packets the dataplane marked IDN_MARK_MISS into a bounded queue per
 * capability (skb->priority); RELEASE re-injects them on their ingress
 * device (the TC/XDP program steers them again), timeout/overflow/FLUSH
 * answer the client with a TCP RST or ICMP unreachable. Every held packet ends released, rejected
 * or counted as dropped.
 */
#include <linux/netdevice.h>
#include <linux/netfilter.h>
#include <linux/netfilter_ipv4.h>
#include <linux/netfilter_ipv6.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/tcp.h>
#include <linux/udp.h>
#include <linux/icmp.h>
#include <linux/icmpv6.h>
#include <linux/seq_file.h>
#include <linux/slab.h>
#include <net/ip.h>
#include <net/ipv6.h>
#include <net/netfilter/ipv4/nf_reject.h>
#include <net/netfilter/ipv6/nf_reject.h>
#include <net/netfilter/nf_conntrack.h>

#include "idn_kmod.h"

#define IDN_TICK	(HZ / 20 ? HZ / 20 : 1)	/* expiry scan while packets are held */

static void idn_count(struct idn_net *in, struct idn_queue *q, int stat, u32 n)
{
	in->st[stat] += n;
	if (q)
		q->st[stat] += n;
}

/*
 * capability of a marked miss: the dataplane puts the full label in
 * skb->priority next to the mark (uapi idn.h, IDN_MARK_MISS); it converts
 * the XDP metadata (struct idn_meta) the same way, so there is one source.
 */
static u32 idn_skb_cap(const struct sk_buff *skb)
{
	return skb->priority;
}

/* destination of a miss, for events and dumps */
static void idn_flow_dst(struct idn_queue *q, const struct sk_buff *skb)
{
	int thoff = -1;
	u8 proto = 0;

	if (skb->protocol == htons(ETH_P_IP)) {
		const struct iphdr *iph = ip_hdr(skb);

		q->family = IDN_AF_INET;
		ipv6_addr_set(&q->daddr, iph->daddr, 0, 0, 0);
		proto = iph->protocol;
		if (!ip_is_fragment(iph))
			thoff = skb_network_offset(skb) + iph->ihl * 4;
	} else {
		const struct ipv6hdr *ip6 = ipv6_hdr(skb);
		__be16 frag = 0;

		q->family = IDN_AF_INET6;
		q->daddr = ip6->daddr;
		proto = ip6->nexthdr;
		thoff = ipv6_skip_exthdr(skb, skb_network_offset(skb) + sizeof(*ip6),
					 &proto, &frag);
		if (frag)
			thoff = -1;
	}
	q->proto = proto;
	q->dport = 0;
	if (thoff >= 0 && (proto == IPPROTO_TCP || proto == IPPROTO_UDP)) {
		__be16 _ports[2];
		const __be16 *p = skb_header_pointer(skb, thoff, sizeof(_ports), _ports);

		if (p)
			q->dport = ntohs(p[1]);
	}
	q->ifindex = skb->dev ? skb->dev->ifindex : 0;
}

/*
 * idn_reject_skb - answer the sender of @skb: TCP RST for TCP, ICMP port
 * unreachable otherwise. @skb is left to the caller. Return: true if a
 * rejection was attempted.
 */
static bool idn_reject_skb(struct net *net, struct sk_buff *skb)
{
	bool sent = true;

	local_bh_disable();
	rcu_read_lock();
	if (skb->protocol == htons(ETH_P_IP)) {
		const struct iphdr *iph = ip_hdr(skb);

		if (iph->protocol == IPPROTO_TCP && !ip_is_fragment(iph))
			nf_send_reset(net, NULL, skb, NF_INET_PRE_ROUTING);
		else
			nf_send_unreach(skb, ICMP_PORT_UNREACH, NF_INET_PRE_ROUTING);
	} else if (skb->protocol == htons(ETH_P_IPV6)) {
		if (ipv6_hdr(skb)->nexthdr == IPPROTO_TCP)
			nf_send_reset6(net, NULL, skb, NF_INET_PRE_ROUTING);
		else
			nf_send_unreach6(net, skb, ICMPV6_PORT_UNREACH, NF_INET_PRE_ROUTING);
	} else {
		sent = false;
	}
	rcu_read_unlock();
	local_bh_enable();
	return sent;
}

static void idn_put_skb(struct sk_buff *skb)
{
	if (skb->dev)
		dev_put(skb->dev);
	atomic_dec(&idn_outstanding);
}

/* reject and free every skb of @list; returns how many were only dropped */
static u32 idn_reject_list(struct net *net, struct sk_buff_head *list, bool can_send)
{
	struct sk_buff *skb;
	u32 dropped = 0;

	while ((skb = __skb_dequeue(list))) {
		if (!can_send || !idn_reject_skb(net, skb))
			dropped++;
		idn_put_skb(skb);
		consume_skb(skb);
	}
	return dropped;
}

static struct idn_queue *idn_queue_find(struct idn_net *in, u32 cap)
{
	struct idn_queue *q;

	list_for_each_entry(q, &in->queues, list)
		if (q->cap == cap)
			return q;
	return NULL;
}

static void idn_queue_free(struct idn_net *in, struct idn_queue *q)
{
	list_del(&q->list);
	in->nqueues--;
	kfree(q);
}

/* move every skb of @q (or those of @dev when non-NULL) to @out */
static u32 idn_queue_take(struct idn_queue *q, struct sk_buff_head *out,
			  const struct net_device *dev)
{
	struct sk_buff *skb, *tmp;
	u32 n = 0;

	skb_queue_walk_safe(&q->skbs, skb, tmp) {
		if (dev && skb->dev != dev)
			continue;
		__skb_unlink(skb, &q->skbs);
		q->bytes -= skb->len;
		__skb_queue_tail(out, skb);
		n++;
	}
	return n;
}

/* hook: take a marked demand miss, or reject it when there is no room */
static unsigned int idn_take(struct idn_net *in, struct sk_buff *skb)
{
	u32 cap = idn_skb_cap(skb);
	struct idn_queue *q;
	bool full = false;

	spin_lock_bh(&in->lock);
	if (in->dying) {
		spin_unlock_bh(&in->lock);
		return NF_ACCEPT;
	}
	q = idn_queue_find(in, cap);
	if (!q) {
		if (in->nqueues >= idn_max_queues ||
		    !(q = kzalloc(sizeof(*q), GFP_ATOMIC))) {
			idn_count(in, NULL, IDN_HS_REJ_OVERFLOW, 1);
			spin_unlock_bh(&in->lock);
			idn_ntf_count(in, IDN_CMD_REJECT_NTF, cap, IDN_HOLD_R_OVERFLOW, 1);
			goto reject;
		}
		q->cap = cap;
		__skb_queue_head_init(&q->skbs);
		list_add_tail(&q->list, &in->queues);
		in->nqueues++;
	}
	if (skb_queue_len(&q->skbs) >= in->cfg.max_pkts ||
	    q->bytes + skb->len > in->cfg.max_bytes)
		full = true;
	if (full) {
		idn_count(in, q, IDN_HS_REJ_OVERFLOW, 1);
		if (skb_queue_empty(&q->skbs))
			idn_queue_free(in, q);
		spin_unlock_bh(&in->lock);
		idn_ntf_count(in, IDN_CMD_REJECT_NTF, cap, IDN_HOLD_R_OVERFLOW, 1);
		goto reject;
	}
	if (skb_queue_empty(&q->skbs))
		idn_flow_dst(q, skb);
	IDN_CB(skb)->held_at = jiffies;
	if (skb->dev)
		dev_hold(skb->dev);
	atomic_inc(&idn_outstanding);
	__skb_queue_tail(&q->skbs, skb);
	q->bytes += skb->len;
	idn_count(in, q, IDN_HS_HELD, 1);
	if (!q->evented ||
	    time_after_eq(jiffies, q->last_event + msecs_to_jiffies(in->cfg.event_ms))) {
		q->evented = true;
		q->last_event = jiffies;
		idn_count(in, q, IDN_HS_EVENTS, 1);
		idn_ntf_miss(in, q);
	} else {
		idn_count(in, q, IDN_HS_EVENTS_LIMITED, 1);
	}
	spin_unlock_bh(&in->lock);
	schedule_delayed_work(&in->expire, IDN_TICK);
	return NF_STOLEN;

reject:
	idn_reject_skb(in->net, skb);
	return NF_DROP;
}

static unsigned int idn_hook(void *priv, struct sk_buff *skb,
			     const struct nf_hook_state *state)
{
	if (likely((skb->mark & IDN_MARK_MASK) != IDN_MARK_MISS))
		return NF_ACCEPT;
	return idn_take(idn_pernet(state->net), skb);
}

static const struct nf_hook_ops idn_nf_ops[] = {
	{
		.hook = idn_hook,
		.pf = NFPROTO_IPV4,
		.hooknum = NF_INET_PRE_ROUTING,
		.priority = NF_IP_PRI_RAW_BEFORE_DEFRAG - 50,
	},
	{
		.hook = idn_hook,
		.pf = NFPROTO_IPV6,
		.hooknum = NF_INET_PRE_ROUTING,
		.priority = NF_IP6_PRI_RAW_BEFORE_DEFRAG - 50,
	},
};

/* reject packets held longer than timeout_ms; rescan while any are held */
static void idn_expire(struct work_struct *work)
{
	struct idn_net *in = container_of(to_delayed_work(work), struct idn_net, expire);
	struct sk_buff_head rej;
	struct idn_queue *q, *tmp;
	bool more = false;
	u32 dropped;

	__skb_queue_head_init(&rej);
	spin_lock_bh(&in->lock);
	list_for_each_entry_safe(q, tmp, &in->queues, list) {
		unsigned long tmo = msecs_to_jiffies(in->cfg.timeout_ms);
		struct sk_buff *skb;
		u32 n = 0;

		while ((skb = skb_peek(&q->skbs)) &&
		       time_after_eq(jiffies, IDN_CB(skb)->held_at + tmo)) {
			__skb_unlink(skb, &q->skbs);
			q->bytes -= skb->len;
			__skb_queue_tail(&rej, skb);
			n++;
		}
		if (n) {
			idn_count(in, q, IDN_HS_REJ_TIMEOUT, n);
			idn_ntf_count(in, IDN_CMD_REJECT_NTF, q->cap, IDN_HOLD_R_TIMEOUT, n);
		}
		if (skb_queue_empty(&q->skbs))
			idn_queue_free(in, q);
		else
			more = true;
	}
	more = more && !in->dying;
	spin_unlock_bh(&in->lock);
	dropped = idn_reject_list(in->net, &rej, true);
	if (dropped) {
		spin_lock_bh(&in->lock);
		idn_count(in, NULL, IDN_HS_DROPPED, dropped);
		spin_unlock_bh(&in->lock);
	}
	if (more)
		schedule_delayed_work(&in->expire, IDN_TICK);
}

/* collect the skbs of queue @cap (or all) into @out; -ENOENT if none matched */
static int idn_collect(struct idn_net *in, bool all, u32 cap, struct sk_buff_head *out,
		       int stat, u8 ntf, u8 reason)
{
	struct idn_queue *q, *tmp;
	int found = 0;

	list_for_each_entry_safe(q, tmp, &in->queues, list) {
		u32 n;

		if (!all && q->cap != cap)
			continue;
		found = 1;
		n = idn_queue_take(q, out, NULL);
		idn_count(in, q, stat, n);
		if (n)
			idn_ntf_count(in, ntf, q->cap, reason, n);
		idn_queue_free(in, q);
	}
	return found || all ? 0 : -ENOENT;
}

int idn_hold_release(struct idn_net *in, bool all, u32 cap, u32 *count)
{
	struct sk_buff_head list;
	struct sk_buff *skb;
	u32 dropped = 0;
	int err;

	__skb_queue_head_init(&list);
	spin_lock_bh(&in->lock);
	err = idn_collect(in, all, cap, &list, IDN_HS_RELEASED, IDN_CMD_RELEASE_NTF, 0);
	spin_unlock_bh(&in->lock);
	*count = skb_queue_len(&list);
	while ((skb = __skb_dequeue(&list))) {
		struct net_device *dev = skb->dev;

		/* back to the ingress device: TC/XDP-generic steer it again */
		skb->mark = 0;
		skb->priority = 0;
		skb_metadata_clear(skb);
		skb_dst_drop(skb);
		nf_reset_ct(skb);
		memset(skb->cb, 0, sizeof(skb->cb));
		atomic_dec(&idn_outstanding);
		if (!dev || !(dev->flags & IFF_UP)) {
			dropped++;
			kfree_skb(skb);
		} else if (netif_rx(skb) != NET_RX_SUCCESS) {
			dropped++;
		}
		if (dev)
			dev_put(dev);
	}
	if (dropped) {
		spin_lock_bh(&in->lock);
		idn_count(in, NULL, IDN_HS_DROPPED, dropped);
		in->st[IDN_HS_RELEASED] -= dropped;
		spin_unlock_bh(&in->lock);
	}
	return err;
}

int idn_hold_flush(struct idn_net *in, bool all, u32 cap, u32 *count)
{
	struct sk_buff_head list;
	u32 dropped;
	int err;

	__skb_queue_head_init(&list);
	spin_lock_bh(&in->lock);
	err = idn_collect(in, all, cap, &list, IDN_HS_REJ_FLUSH, IDN_CMD_REJECT_NTF,
			  IDN_HOLD_R_FLUSH);
	spin_unlock_bh(&in->lock);
	*count = skb_queue_len(&list);
	dropped = idn_reject_list(in->net, &list, true);
	if (dropped) {
		spin_lock_bh(&in->lock);
		idn_count(in, NULL, IDN_HS_DROPPED, dropped);
		in->st[IDN_HS_REJ_FLUSH] -= dropped;
		spin_unlock_bh(&in->lock);
	}
	return err;
}

/*
 * The ingress device of held packets goes away (unregistered, or moved to
 * another netns): drop them, counted. The notifier is per netns and lives
 * exactly as long as the netns state: unregistering a notifier replays
 * NETDEV_UNREGISTER for every existing device, so it must go only after
 * idn_hold_net_exit() has rejected what is held, or every held packet would
 * be dropped silently instead of answered (a module-wide notifier, taken
 * off before the pernet exit, did exactly that on rmmod).
 */
static int idn_netdev_event(struct notifier_block *nb, unsigned long event, void *ptr)
{
	struct net_device *dev = netdev_notifier_info_to_dev(ptr);
	struct idn_net *in = container_of(nb, struct idn_net, netdev_nb);
	struct sk_buff_head list;
	struct idn_queue *q, *tmp;
	u32 n;

	if (event != NETDEV_UNREGISTER)
		return NOTIFY_DONE;
	__skb_queue_head_init(&list);
	spin_lock_bh(&in->lock);
	list_for_each_entry_safe(q, tmp, &in->queues, list) {
		n = idn_queue_take(q, &list, dev);
		if (!n)
			continue;
		idn_count(in, q, IDN_HS_DROPPED, n);
		idn_ntf_count(in, IDN_CMD_REJECT_NTF, q->cap, IDN_HOLD_R_DEVICE, n);
		if (skb_queue_empty(&q->skbs))
			idn_queue_free(in, q);
	}
	spin_unlock_bh(&in->lock);
	idn_reject_list(in->net, &list, false);
	return NOTIFY_DONE;
}

void idn_hold_show(struct seq_file *m, struct idn_net *in)
{
	static const char *const names[__IDN_HS_MAX] = {
		[IDN_HS_HELD] = "held", [IDN_HS_RELEASED] = "released",
		[IDN_HS_REJ_TIMEOUT] = "rej_timeout", [IDN_HS_REJ_OVERFLOW] = "rej_overflow",
		[IDN_HS_REJ_FLUSH] = "rej_flush", [IDN_HS_DROPPED] = "dropped",
		[IDN_HS_EVENTS] = "events", [IDN_HS_EVENTS_LIMITED] = "events_limited",
	};
	struct idn_queue *q;
	u32 pkts = 0;
	int i;

	spin_lock_bh(&in->lock);
	list_for_each_entry(q, &in->queues, list)
		pkts += skb_queue_len(&q->skbs);
	seq_printf(m, "version %d\nmax_pkts %u\nmax_bytes %u\ntimeout_ms %u\nevent_ms %u\n"
		   "max_queues %u\nqueues %u\nholding %u\n", IDN_FAMILY_VERSION,
		   in->cfg.max_pkts, in->cfg.max_bytes, in->cfg.timeout_ms, in->cfg.event_ms,
		   idn_max_queues, in->nqueues, pkts);
	for (i = IDN_HS_HELD; i < __IDN_HS_MAX; i++)
		seq_printf(m, "%s %llu\n", names[i], in->st[i]);
	list_for_each_entry(q, &in->queues, list)
		seq_printf(m, "queue cap 0x%08x pkts %u bytes %u dport %u proto %u ifindex %d\n",
			   q->cap, skb_queue_len(&q->skbs), q->bytes, q->dport, q->proto,
			   q->ifindex);
	spin_unlock_bh(&in->lock);
}

int idn_hold_net_init(struct idn_net *in)
{
	int err;

	spin_lock_init(&in->lock);
	INIT_LIST_HEAD(&in->queues);
	INIT_DELAYED_WORK(&in->expire, idn_expire);
	in->cfg.max_pkts = idn_max_pkts;
	in->cfg.max_bytes = idn_max_bytes;
	in->cfg.timeout_ms = idn_timeout_ms;
	in->cfg.event_ms = idn_event_ms;
	in->netdev_nb.notifier_call = idn_netdev_event;
	err = register_netdevice_notifier_net(in->net, &in->netdev_nb);
	if (err)
		return err;
	err = nf_register_net_hooks(in->net, idn_nf_ops, ARRAY_SIZE(idn_nf_ops));
	if (err)
		unregister_netdevice_notifier_net(in->net, &in->netdev_nb);
	return err;
}

/*
 * netns gone or module unloading: reject what is held (drop if the netns
 * dies), and only then stop watching the devices (see idn_netdev_event()).
 */
void idn_hold_net_exit(struct idn_net *in)
{
	struct sk_buff_head list;
	struct idn_queue *q, *tmp;
	bool alive = check_net(in->net);
	u32 dropped;

	nf_unregister_net_hooks(in->net, idn_nf_ops, ARRAY_SIZE(idn_nf_ops));
	spin_lock_bh(&in->lock);
	in->dying = true;
	spin_unlock_bh(&in->lock);
	cancel_delayed_work_sync(&in->expire);
	__skb_queue_head_init(&list);
	spin_lock_bh(&in->lock);
	list_for_each_entry_safe(q, tmp, &in->queues, list) {
		u32 n = idn_queue_take(q, &list, NULL);

		if (n)
			idn_ntf_count(in, IDN_CMD_REJECT_NTF, q->cap, IDN_HOLD_R_UNLOAD, n);
		idn_queue_free(in, q);
	}
	spin_unlock_bh(&in->lock);
	dropped = idn_reject_list(in->net, &list, alive);
	if (dropped)
		pr_debug("idn: netns exit: %u held packets dropped\n", dropped);
	unregister_netdevice_notifier_net(in->net, &in->netdev_nb);
}
