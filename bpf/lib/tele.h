/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * tele.h - a node's telemetry datagram (struct idn_telemetry) onto its
 * node entry: the part of steer.h's telemetry() that does not depend on
 * the packet, so that userspace (tools/eval's simulator) applies the
 * agent's datagrams exactly as the router does.
 *
 *   idn_tele_check()  the datagram's own fields (magic, version, ranges)
 *   idn_tele_apply()  replay guard (serial-number order of seq), then the
 *                     load fields, health when given, seq and stamp; the
 *                     router's own charge (idn_node_charge(), select.h)
 *                     is superseded: the node now counts those requests
 *
 * The caller has looked the node up and checked that the datagram came
 * from the node's own locator (steer.h does both in BPF).
 */
#ifndef __IDN_LIB_TELE_H
#define __IDN_LIB_TELE_H

#include "lib/compat.h"

IDN_INLINE int idn_tele_check(const struct idn_telemetry *t)
{
	if (t->magic != idn_htonl(IDN_TELE_MAGIC) || t->version != IDN_TELE_VERSION ||
	    idn_ntohl(t->node) >= IDN_MAX_NODES || idn_ntohs(t->load) > 1000 ||
	    idn_ntohs(t->kv_use) > 1000 || t->health > IDN_HEALTH_DOWN)
		return IDN_DROP_BAD_TELEMETRY;
	return 0;
}

IDN_INLINE int idn_tele_apply(struct idn_node *n, const struct idn_telemetry *t, __u32 now_s)
{
	__u32 seq = idn_ntohl(t->seq);

	if (n->tele_s && (__s32)(seq - n->tele_seq) <= 0)
		return IDN_DROP_TELE_REPLAY;
	n->queue_depth = idn_ntohl(t->queue_depth);
	n->pending_tokens = idn_ntohl(t->pending_tokens);
	n->load = idn_ntohs(t->load);
	n->kv_use = idn_ntohs(t->kv_use);
	if (t->health)
		n->health = t->health;
	n->tele_seq = seq;
	n->tele_s = now_s;
	/*
	 * A charge added on another CPU between the datagram's sending and
	 * this store is lost: at most the requests of one network delay.
	 */
	n->charged_tokens = 0;
	return 0;
}

#endif /* __IDN_LIB_TELE_H */
