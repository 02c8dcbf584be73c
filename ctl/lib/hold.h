/* SPDX-License-Identifier: GPL-2.0 */
/*
 * hold.h - libidn's client of idn.ko (generic netlink family "idn",
 * ctl/lib/hold.c). Part of libidn.h; a header of its own because hold.c
 * includes libnl, whose glibc <netinet/tcp.h> cannot meet the uapi
 * <linux/tcp.h> that the dataplane headers in libidn.h pull in.
 */
#ifndef __IDN_CTL_HOLD_H
#define __IDN_CTL_HOLD_H

#include <stdbool.h>
#include <linux/types.h>
#include <linux/idn.h>

struct idn_hold_cfg {
	__u32 max_pkts, max_bytes, timeout_ms, event_ms;
	__u32 max_queues;	/* read only (module parameter) */
};
/* which fields idn_hold_config_set() sends */
#define IDN_HC_MAX_PKTS		0x1
#define IDN_HC_MAX_BYTES	0x2
#define IDN_HC_TIMEOUT_MS	0x4
#define IDN_HC_EVENT_MS		0x8

struct idn_hold_queue {
	__u32 cap, pkts, bytes, age_ms, ifindex;
	__u8 family, proto;	/* of the queue's first miss; family 0: unknown */
	__u16 dport;
	__u32 daddr[4];		/* network order */
	bool has_stats;
	__u64 st[__IDN_HS_MAX];	/* enum idn_hold_stat */
};

/* A request socket. -ENOENT "idn.ko is not loaded" when the family is absent. */
struct idn_hold;
int idn_hold_open(struct idn_hold **h);
void idn_hold_close(struct idn_hold *h);
int idn_hold_config_get(struct idn_hold *h, struct idn_hold_cfg *c);
/* Send the fields of @which (IDN_HC_*); @now (may be NULL): the config after. */
int idn_hold_config_set(struct idn_hold *h, const struct idn_hold_cfg *c, unsigned int which,
			struct idn_hold_cfg *now);
/* One capability, or every queue (@all). -ENOENT: no queue of @cap. */
int idn_hold_release(struct idn_hold *h, bool all, __u32 cap, __u32 *count);
int idn_hold_flush(struct idn_hold *h, bool all, __u32 cap, __u32 *count);
int idn_hold_stats(struct idn_hold *h, __u64 st[__IDN_HS_MAX]);
/* Every queue of this netns, sorted by capability; *out malloc()ed. Return count. */
int idn_hold_queues(struct idn_hold *h, struct idn_hold_queue **out);

/* Notifications: the module's events, and the module leaving / coming back. */
enum idn_hold_ev_type {
	IDN_HEV_MISS,		/* IDN_CMD_DEMAND_MISS_NTF: q */
	IDN_HEV_RELEASE,	/* IDN_CMD_RELEASE_NTF: cap, count */
	IDN_HEV_REJECT,		/* IDN_CMD_REJECT_NTF: cap, reason, count */
	IDN_HEV_UNLOAD,		/* family "idn" unregistered (rmmod) */
	IDN_HEV_LOAD,		/* family "idn" registered again (groups rejoined) */
};
struct idn_hold_event {
	enum idn_hold_ev_type type;
	__u32 cap, count;
	__u8 reason;		/* enum idn_hold_reason */
	struct idn_hold_queue q;	/* MISS: the queue's first miss */
};
struct idn_hold_watch;
/* Joins "miss", "hold" and nlctrl "notify"; -ENOENT when the module is absent. */
int idn_hold_watch_open(struct idn_hold_watch **w,
			int (*cb)(const struct idn_hold_event *ev, void *ctx), void *ctx);
/* Non-blocking socket to poll() for POLLIN. */
int idn_hold_watch_fd(const struct idn_hold_watch *w);
/*
 * Call cb for every event waiting; returns 0 when drained, cb's non-zero
 * return to stop, -ENOBUFS when events were lost (the watch still works),
 * other -errno on failure.
 */
int idn_hold_watch_read(struct idn_hold_watch *w);
void idn_hold_watch_close(struct idn_hold_watch *w);

#endif /* __IDN_CTL_HOLD_H */
