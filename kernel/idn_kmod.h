/* SPDX-License-Identifier: GPL-2.0 */
/*
 * idn_kmod.h - state shared by the parts of idn.ko: the per-netns hold
 * state, the hold-queue entry points (idn_hold.c) and the generic netlink
 * family and its events (idn_genl.c). Nothing here is ABI: that lives in
 * include/uapi/linux/idn.h.
 */
#ifndef _IDN_KMOD_H
#define _IDN_KMOD_H

#include <linux/skbuff.h>
#include <linux/spinlock.h>
#include <linux/workqueue.h>
#include <linux/in6.h>
#include <net/net_namespace.h>
#include <net/netns/generic.h>
#include <linux/idn.h>

/* module parameters (defaults of every new netns) */
extern unsigned int idn_max_pkts;
extern unsigned int idn_max_bytes;
extern unsigned int idn_timeout_ms;
extern unsigned int idn_event_ms;
extern unsigned int idn_max_queues;
extern atomic_t idn_outstanding;	/* skbs held, all netns: must be 0 at exit */

struct idn_cfg {
	u32 max_pkts;
	u32 max_bytes;
	u32 timeout_ms;
	u32 event_ms;
};

/* one queue per capability */
struct idn_queue {
	struct list_head list;
	u32 cap;
	u32 bytes;
	struct sk_buff_head skbs;
	unsigned long last_event;	/* jiffies of the last miss event */
	bool evented;			/* last_event valid */
	/* first miss, for events and dumps */
	u8 family, proto;
	u16 dport;
	int ifindex;
	struct in6_addr daddr;
	u64 st[__IDN_HS_MAX];
};

struct idn_net {
	struct net *net;
	spinlock_t lock;		/* queues, cfg, st (taken with _bh) */
	struct list_head queues;
	unsigned int nqueues;
	struct idn_cfg cfg;
	u64 st[__IDN_HS_MAX];
	struct delayed_work expire;
	struct notifier_block netdev_nb;	/* this netns's devices only */
	bool dying;
};

/* private control block of a held skb */
struct idn_skb_cb {
	unsigned long held_at;		/* jiffies */
};
#define IDN_CB(skb) ((struct idn_skb_cb *)(skb)->cb)

extern unsigned int idn_net_id;
static inline struct idn_net *idn_pernet(const struct net *net)
{
	return net_generic(net, idn_net_id);
}

/* idn_hold.c */
int idn_hold_net_init(struct idn_net *in);
void idn_hold_net_exit(struct idn_net *in);
int idn_hold_release(struct idn_net *in, bool all, u32 cap, u32 *count);
int idn_hold_flush(struct idn_net *in, bool all, u32 cap, u32 *count);
void idn_hold_show(struct seq_file *m, struct idn_net *in);

/* idn_genl.c */
int idn_genl_register(void);
void idn_genl_unregister(void);
void idn_ntf_miss(struct idn_net *in, const struct idn_queue *q);
void idn_ntf_count(struct idn_net *in, u8 cmd, u32 cap, u8 reason, u32 count);
int idn_put_stats(struct sk_buff *skb, const u64 *st);

#endif /* _IDN_KMOD_H */
