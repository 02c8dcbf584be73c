/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * steer.h - the steering program body (BPF only): parse -> classify ->
 * connection table -> select -> encapsulate -> transmit, per packet,
 * without locks.
 *
 * One body serves both hooks: idn_steer(ctx, IDN_HOOK_XDP) and
 * idn_steer(ctx, IDN_HOOK_TC). The hook is a compile-time constant after
 * inlining, so each program keeps only its own branch; ctx accessors and
 * actions below are the only places that differ between XDP and TC.
 *
 * What is decided here and not in bpf/lib: which packets are IDN traffic,
 * when a flow is new, what a verdict does to the packet (encapsulation,
 * RST, metadata for idn.ko), counters and receipts.
 */
#ifndef __IDN_LIB_STEER_H
#define __IDN_LIB_STEER_H

#include "lib/compat.h"
#include <linux/pkt_cls.h>
#include "lib/maps.h"
#include "lib/parse.h"
#include "lib/desc.h"
#include "lib/csum.h"
#include "lib/rss.h"
#include "lib/tele.h"

/* The BPF side needs no environment: maps are globals. */
struct idn_env_bpf {
	int unused;
};
#define IDN_ENV_T struct idn_env_bpf
#define IDN_NODE_GET(env, id) \
	((const struct idn_node *)bpf_map_lookup_elem(&idn_nodes, &(__u32){ (id) }))
#define IDN_PLAN_GET(env, k) \
	((const struct idn_plan *)bpf_map_lookup_elem(&idn_plans, (k)))
#include "lib/select.h"
#include "lib/stateless.h"
#include "lib/ctab.h"

/* A connection entry to write (idn_conn_put()). */
struct idn_ct_req {
	struct idn_flow_key key;
	__u32 node;
	__u32 generation;
	__u32 cap;
	__u32 noexist;		/* keep an entry already there */
};

/*
 * Per-CPU work area of a new-flow decision (not ABI): keeps the
 * descriptor and selection state off the 512-byte BPF stack, which the
 * program and its global functions share.
 */
struct idn_work {
	struct idn_tcpopt opt;		/* a SYN's IDN option (strict admission) */
	struct idn_desc d;
	struct idn_sel_in in;
	struct idn_sel sel;
	struct idn_ct_req ctr;		/* the connection entry a new flow writes */
	struct idn_tab_pos cp;		/* where it lives */
	struct idn_tab_pos ap;		/* where its token's affinity entry lives */
	/*
	 * A telemetry datagram's copy (telemetry()): a packet's datagram is
	 * not a decision's, and programs on one CPU do not nest (both run
	 * with bottom halves off), so the two uses never overlap
	 */
	struct idn_telemetry tele;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct idn_work);
} idn_work SEC(".maps");


/*
 * Per-CPU count of new flows in the current coarse second (flood guard,
 * flood_over()); not ABI, not pinned.
 */
struct idn_flood {
	__u32 sec;
	__u32 count;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct idn_flood);
} idn_flood SEC(".maps");

#define IDN_HOOK_XDP 1
#define IDN_HOOK_TC 0

/*
 * Load-time features (IDN_FEAT_*), set by the loader in .rodata before
 * load (ctl/lib/dp_features.h probes the kernel by loading). A constant
 * to the verifier: a feature that is off removes its branch before the
 * helper it calls is checked, so a kernel that refuses the helper still
 * loads the program. idn_features_forced_off only records, for `dp status`,
 * which features the operator switched off.
 */
const volatile __u32 idn_features = IDN_FEAT_ALL;
const volatile __u32 idn_features_forced_off = 0;

/*
 * What this object is, for `dp status` and `dp replace`: the layout of the
 * pinned maps it expects, and a hash of the dataplane sources it was
 * built from (bpf/build.mk), so a stale pinned program is noticed.
 */
#ifndef IDN_BUILD_ID
#define IDN_BUILD_ID 0
#endif
const volatile __u32 idn_map_layout = IDN_MAP_LAYOUT;
const volatile __u64 idn_build_id = IDN_BUILD_ID;

#ifndef AF_INET
#define AF_INET 2
#define AF_INET6 10
#endif

IDN_ASSERT_ABI();

/* ------------------------------------------------------------------ */
/* hook-specific accessors and actions                                  */
/* ------------------------------------------------------------------ */

IDN_INLINE void *ctx_data(void *ctx, const int xdp)
{
	return xdp ? (void *)(long)((struct xdp_md *)ctx)->data :
		     (void *)(long)((struct __sk_buff *)ctx)->data;
}

IDN_INLINE void *ctx_data_end(void *ctx, const int xdp)
{
	return xdp ? (void *)(long)((struct xdp_md *)ctx)->data_end :
		     (void *)(long)((struct __sk_buff *)ctx)->data_end;
}

IDN_INLINE __u32 ctx_ifindex(void *ctx, const int xdp)
{
	return xdp ? ((struct xdp_md *)ctx)->ingress_ifindex :
		     ((struct __sk_buff *)ctx)->ifindex;
}

IDN_INLINE int act_pass(const int xdp)
{
	return xdp ? XDP_PASS : TC_ACT_OK;
}

IDN_INLINE int act_drop(const int xdp)
{
	return xdp ? XDP_DROP : TC_ACT_SHOT;
}

/* Send back out of the device it came in on. */
IDN_INLINE int act_tx(void *ctx, const int xdp)
{
	return xdp ? XDP_TX : (int)bpf_redirect(ctx_ifindex(ctx, xdp), 0);
}

IDN_INLINE int act_fwd(void *ctx, __u32 ifindex, const int xdp)
{
	if (xdp && ifindex == ctx_ifindex(ctx, xdp))
		return XDP_TX;
	return (int)bpf_redirect(ifindex, 0);
}

/*
 * Make room for the outer header and leave a plain 14-byte Ethernet header
 * in front: [eth][outer][inner L3]. VLAN tags of the ingress frame are
 * dropped: they belong to the client's link, not to the routed link toward
 * the node. With @keep_macs (no next hop known: the frame is passed up to
 * the kernel) XDP moves the old header's MACs to the new front, so the
 * frame is still addressed to us; otherwise the caller writes the next
 * hop's.
 */
IDN_INLINE int ctx_push_outer(void *ctx, __u32 l2_len, __u32 room, int v6, int keep_macs,
			      const int xdp)
{
	__u16 proto = v6 ? idn_htons(ETH_P_IPV6) : idn_htons(ETH_P_IP);

	if (!xdp) {
		struct __sk_buff *skb = ctx;

		/* in-frame tags move to the accelerated slot as they are popped */
		for (int i = 0; i < 3; i++) {
			if (!skb->vlan_present && skb->protocol != idn_htons(ETH_P_8021Q) &&
			    skb->protocol != idn_htons(ETH_P_8021AD))
				break;
			if (bpf_skb_vlan_pop(skb))
				return -1;
		}
		if (skb->vlan_present || skb->protocol != proto)
			return -1;
		return bpf_skb_adjust_room(ctx, room, BPF_ADJ_ROOM_MAC,
					   v6 ? BPF_F_ADJ_ROOM_ENCAP_L3_IPV6 :
						BPF_F_ADJ_ROOM_ENCAP_L3_IPV4);
	}
	if (bpf_xdp_adjust_head(ctx, (int)l2_len - ETH_HLEN - (int)room))
		return -1;
	{
		void *data = ctx_data(ctx, xdp), *end = ctx_data_end(ctx, xdp);
		struct ethhdr *eth = data;
		/* the old frame now starts room + 14 - l2_len bytes in (>= 12) */
		__u8 *old = data + ((room + ETH_HLEN - l2_len) & 0x3f);
		__u8 macs[12];

		if ((void *)(old + 12) > end || (void *)(eth + 1) > end)
			return -1;
		if (keep_macs) {
			__builtin_memcpy(macs, old, 12);
			__builtin_memcpy(eth, macs, 12);
		}
		eth->h_proto = proto;
	}
	return 0;
}

/* The next hop's MACs into @eth: 6 + 6 bytes in four moves, not twelve. */
_Static_assert(__builtin_offsetof(struct idn_nexthop, smac) % 4 == 2 &&
	       __builtin_offsetof(struct idn_nexthop, dmac) % 4 == 0, "MAC moves aligned");
IDN_INLINE void eth_put_macs(struct ethhdr *eth, const struct idn_nexthop *nh)
{
	*(idn_u32a *)eth->h_dest = *(const idn_u32a *)nh->dmac;
	*(idn_u16a *)(eth->h_dest + 4) = *(const idn_u16a *)(nh->dmac + 4);
	*(idn_u16a *)eth->h_source = *(const idn_u16a *)nh->smac;
	*(idn_u32a *)(eth->h_source + 2) = *(const idn_u32a *)(nh->smac + 2);
}

/* Copy @len (1..IDN_TCPOPT_SPACE) packet bytes from @off into @buf. */
IDN_INLINE int ctx_load(void *ctx, __u32 off, void *buf, __u32 len, const int xdp)
{
	if (len < 1 || len > IDN_TCPOPT_SPACE)
		return -1;
	/*
	 * Restate 1 <= len <= sizeof(struct idn_optbuf) in a form every
	 * verifier sees (6.1 does not learn len != 0 from a branch); the
	 * barrier keeps the compiler from folding it away.
	 */
	len -= 1;
	IDN_BARRIER_VAR(len);
	len = (len & IDN_OPTBUF_MASK) + 1;
	if (xdp)
		return bpf_xdp_load_bytes(ctx, off, buf, len);
	return bpf_skb_load_bytes(ctx, off, buf, len);
}

IDN_INLINE int ctx_set_len(void *ctx, __u32 cur, __u32 want, const int xdp)
{
	if (xdp)
		return bpf_xdp_adjust_tail(ctx, (int)want - (int)cur);
	return bpf_skb_change_tail(ctx, want, 0);
}

/* ------------------------------------------------------------------ */
/* counters                                                            */
/* ------------------------------------------------------------------ */

IDN_INLINE void stat_verdict(__u32 v, __u32 bytes)
{
	struct idn_vstat *s = bpf_map_lookup_elem(&idn_stats, &v);

	if (s) {
		s->packets++;
		s->bytes += bytes;
	}
}

IDN_INLINE void stat_drop(__u32 reason)
{
	__u64 *c = bpf_map_lookup_elem(&idn_drops, &reason);

	if (c)
		(*c)++;
}

IDN_INLINE void stat_node(__u32 node, __u32 bytes, int new_flow)
{
	struct idn_nstat *s = bpf_map_lookup_elem(&idn_node_stats, &node);

	if (s) {
		s->packets++;
		s->bytes += bytes;
		s->flows += new_flow;
	}
}

static const struct idn_cstat idn_cstat_zero;

IDN_INLINE void stat_cap(__u32 cap, __u32 verdict)
{
	struct idn_cstat *s = bpf_map_lookup_elem(&idn_cap_stats, &cap);

	if (!s) {
		bpf_map_update_elem(&idn_cap_stats, &cap, &idn_cstat_zero, BPF_NOEXIST);
		s = bpf_map_lookup_elem(&idn_cap_stats, &cap);
		if (!s)
			return;
	}
	/* check and index with one register (the barrier stops a reload) */
	IDN_BARRIER_VAR(verdict);
	if (verdict < IDN_V_MAX)
		s->flows[verdict]++;
}

IDN_INLINE __u32 coarse_now(void)
{
	__u32 s = bpf_ktime_get_coarse_ns() >> IDN_COARSE_SHIFT;

	return s ? s : 1;
}

/* ticks (IDN_TICK_SHIFT): the time other routers' estimated work grows with */
IDN_INLINE __u32 tick_now(void)
{
	return bpf_ktime_get_coarse_ns() >> IDN_TICK_SHIFT;
}

/* ------------------------------------------------------------------ */
/* connection and affinity tables (lib/ctab.h)                          */
/* ------------------------------------------------------------------ */

/*
 * Start loading a table line this packet reads later, so that its cache
 * miss overlaps the work in between (or other lines' misses) instead of
 * stalling where the line is compared. BPF has no prefetch: a byte load
 * whose value is unused (volatile, so the compiler keeps it).
 */
IDN_INLINE void tab_touch(const void *p)
{
	(void)*(const volatile __u8 *)p;
}

/*
 * Where @k lives in idn_conns: its set (returned), the set's metadata in
 * *m and its position in *p. Three array lookups, inlined by the
 * verifier, and the hash; no table memory is read but the seed's line.
 */
IDN_INLINE struct idn_conn_set *conn_set(const struct idn_flow_key *k, struct idn_tab_pos *p,
					 struct idn_tab_meta **m)
{
	__u32 i = IDN_CONN_SETS;
	struct idn_conn_set *hd = bpf_map_lookup_elem(&idn_conns, &i);

	if (!hd)
		return NULL;
	idn_conn_pos(idn_conn_hash(&hd->seed, k), p);
	i = idn_conn_meta_elem(p->set);
	hd = bpf_map_lookup_elem(&idn_conns, &i);
	if (!hd)
		return NULL;
	*m = &hd->meta[p->set & (IDN_CONN_META_PER - 1)];
	return bpf_map_lookup_elem(&idn_conns, &p->set);
}

/* The set and metadata at place @p of idn_conns (as aff_at() below). */
IDN_INLINE struct idn_conn_set *conn_at(const struct idn_tab_pos *p, struct idn_tab_meta **m)
{
	__u32 i = idn_conn_meta_elem(p->set);
	struct idn_conn_set *e = bpf_map_lookup_elem(&idn_conns, &i);

	if (!e)
		return NULL;
	*m = &e->meta[p->set & (IDN_CONN_META_PER - 1)];
	i = p->set;
	return bpf_map_lookup_elem(&idn_conns, &i);
}

/*
 * idn_conn_put - enter a connection into its set @s (metadata @m, place
 * @p): its own way, an empty one or the clock's. A BPF global function,
 * verified once on its own: the choice's loops, inlined, would be verified
 * again on every path of the program that writes an entry.
 */
__attribute__((noinline)) int idn_conn_put(struct idn_conn_set *s, struct idn_tab_meta *m,
					   const struct idn_tab_pos *p,
					   const struct idn_ct_req *r)
{
	int w;

	if (!s || !m || !p || !r)
		return -1;
	w = idn_ct_victim(s, m, &r->key, p, r->noexist);
	if (w >= 0)
		idn_ct_write(s, m, w, &r->key, p, r->node, r->generation, r->cap);
	return w;
}

/*
 * idn_conn_del - remove @k's entry from its set @s, unless its tag is not
 * @tag any more (another CPU took the way for another flow meanwhile). A
 * global function too: the main program never indexes a set with a way
 * number, so the verifier need not tell the ways apart on its paths.
 */
__attribute__((noinline)) int idn_conn_del(struct idn_conn_set *s, struct idn_tab_meta *m,
					   const struct idn_tab_pos *p,
					   const struct idn_flow_key *k, __u64 tag)
{
	__u64 t;
	int w;

	if (!s || !m || !p || !k)
		return -1;
	w = idn_ct_find(s, m, k, p, &t);
	if (w < 0 || t != tag)
		return -1;
	idn_ct_clear(s, m, w);
	return w;
}

/*
 * Enter @k -> @node in its set @s: its own way, an empty one or the
 * clock's; @noexist keeps an entry already there. The request is built in
 * the per-CPU work area @w, off the stack.
 */
IDN_INLINE void conn_insert(struct idn_work *w, struct idn_conn_set *s, struct idn_tab_meta *m,
			    const struct idn_tab_pos *p, const struct idn_flow_key *k,
			    __u32 node, __u32 generation, __u32 cap, int noexist)
{
	w->ctr.key = *k;
	w->ctr.node = node;
	w->ctr.generation = generation;
	w->ctr.cap = cap;
	w->ctr.noexist = noexist;
	idn_conn_put(s, m, p, &w->ctr);
}

/* The same from the key alone. */
IDN_INLINE void conn_put(const struct idn_flow_key *k, __u32 node, __u32 generation,
			 __u32 cap, int noexist)
{
	struct idn_tab_meta *m = NULL;
	struct idn_work *w;
	struct idn_tab_pos p;
	struct idn_conn_set *s;
	__u32 zero = 0;

	w = bpf_map_lookup_elem(&idn_work, &zero);
	s = conn_set(k, &p, &m);
	if (w && s && m)
		conn_insert(w, s, m, &p, k, node, generation, cap, noexist);
}

/*
 * idn_aff_write - (@token) -> node and last use (@node_now: node << 32 |
 * coarse second) into its set @s (metadata @m, place @p): its own way, an
 * empty one or the one used longest ago. A BPF global function, as
 * idn_conn_put().
 */
__attribute__((noinline)) int idn_aff_write(struct idn_aff_set *s, struct idn_tab_meta *m,
					    const struct idn_tab_pos *p, __u64 token,
					    __u64 node_now)
{
	if (!s || !m || !p)
		return -1;
	idn_aff_put(s, m, -1, token, p, (__u32)(node_now >> 32), (__u32)node_now);
	return 0;
}

/*
 * The set and metadata at place @p of idn_affinity: a decision looks the
 * entry up before its selection and writes it after, and keeps only the
 * place (in the work area) across the selection's call, not the pointers
 * (the 512-byte stack of main program and global functions together).
 */
IDN_INLINE struct idn_aff_set *aff_at(const struct idn_tab_pos *p, struct idn_tab_meta **m)
{
	__u32 i = idn_aff_meta_elem(p->set);
	struct idn_aff_set *e = bpf_map_lookup_elem(&idn_affinity, &i);

	if (!e)
		return NULL;
	*m = &e->meta[p->set & (IDN_AFF_META_PER - 1)];
	i = p->set;
	return bpf_map_lookup_elem(&idn_affinity, &i);
}

/* Where (@token, @cls) lives in idn_affinity; as conn_set(). */
IDN_INLINE struct idn_aff_set *aff_set(__u64 token, __u32 cls, struct idn_tab_pos *p,
				       struct idn_tab_meta **m)
{
	__u32 i = IDN_AFF_SETS;
	struct idn_aff_set *hd = bpf_map_lookup_elem(&idn_affinity, &i);

	if (!hd)
		return NULL;
	idn_aff_pos(idn_aff_hash(&hd->seed, token, cls), p);
	i = idn_aff_meta_elem(p->set);
	hd = bpf_map_lookup_elem(&idn_affinity, &i);
	if (!hd)
		return NULL;
	*m = &hd->meta[p->set & (IDN_AFF_META_PER - 1)];
	return bpf_map_lookup_elem(&idn_affinity, &p->set);
}

/* ------------------------------------------------------------------ */
/* forwarding                                                          */
/* ------------------------------------------------------------------ */

/*
 * Resolve the route to a node's locator into its cache entry (the caller
 * looked the entry up: nh_get()). Return: the entry, or NULL when the FIB
 * cannot give a next hop (then the caller lets the kernel forward the
 * encapsulated packet, which also resolves the neighbour). Not inlined:
 * the FIB request stays off the main stack.
 */
static __attribute__((noinline))
struct idn_nexthop *nh_resolve(void *ctx, __u32 node_id, const struct idn_node *n,
			       __u64 now_v6, __u32 in_ifindex)
{
	int v6 = now_v6 & 1;
	__u32 key = IDN_NH_KEY(node_id, v6), now = (__u32)(now_v6 >> 1);
	struct idn_nexthop *nh = bpf_map_lookup_elem(&idn_nexthops, &key);
	struct bpf_fib_lookup fib = {};
	__u32 mtu = 0;
	long r;

	if (!nh)
		return NULL;
	fib.ifindex = in_ifindex;
	if (!v6) {
		fib.family = AF_INET;
		fib.ipv4_dst = n->addr4;
	} else {
		fib.family = AF_INET6;
		__builtin_memcpy(fib.ipv6_dst, n->addr6, 16);
	}
	r = bpf_fib_lookup(ctx, &fib, sizeof(fib), 0);
	if (r != BPF_FIB_LKUP_RET_SUCCESS)
		return NULL;
	/* device MTU into mtu (its return says whether this packet fits) */
	bpf_check_mtu(ctx, fib.ifindex, &mtu, 0, 0);
	nh->mtu = mtu > 0xffff ? 0xffff : (__u16)mtu;
	__builtin_memcpy(nh->smac, fib.smac, 6);
	__builtin_memcpy(nh->dmac, fib.dmac, 6);
	nh->stamp_s = now ? now : coarse_now();
	nh->ifindex = fib.ifindex;
	return nh;
}

/*
 * The cached next hop toward node @node_id's locator of family @v6:
 * established flows (@now 0) only read it; a new flow (@now: this coarse
 * second) refreshes it at most once per coarse second.
 */
IDN_INLINE struct idn_nexthop *nh_get(void *ctx, __u32 node_id, const struct idn_node *n,
				      int v6, __u32 now, __u32 in_ifindex)
{
	__u32 key = IDN_NH_KEY(node_id, v6);
	struct idn_nexthop *nh = bpf_map_lookup_elem(&idn_nexthops, &key);

	if (nh && nh->ifindex && (!now || now == nh->stamp_s))
		return nh;
	return nh_resolve(ctx, node_id, n, (__u64)now << 1 | (v6 & 1), in_ifindex);
}

/*
 * encap_forward - wrap the packet in IPIP / IP6IP6 toward the node and
 * transmit it. The node decapsulates and answers the client directly.
 */
IDN_INLINE int encap_forward(void *ctx, const struct idn_config *cfg,
			     const struct idn_pkt *p, __u32 node_id,
			     const struct idn_node *n, __u32 now, const int xdp)
{
	struct idn_nexthop *nh;
	int v6 = p->flow.family == IDN_AF_INET6;
	__u32 room = v6 ? sizeof(struct ipv6hdr) : sizeof(struct iphdr);
	__u32 l2 = p->l3_off;
	void *data, *end;

	/* the locator of the request's own family (select made sure it exists) */
	if (!(n->flags & (v6 ? IDN_NODE_F_LOC6 : IDN_NODE_F_LOC4))) {
		stat_drop(IDN_DROP_NO_NODE);
		return -1;
	}
	nh = nh_get(ctx, node_id, n, v6, now, ctx_ifindex(ctx, xdp));
	if (nh && nh->mtu && p->l3_len + room > nh->mtu) {
		stat_drop(IDN_DROP_MTU);
		return -1;
	}
	if (l2 != 14 && l2 != 18 && l2 != 22)
		return -1;
	if (ctx_push_outer(ctx, l2, room, v6, !nh, xdp)) {
		stat_drop(IDN_DROP_ENCAP);
		return -1;
	}
	data = ctx_data(ctx, xdp);
	end = ctx_data_end(ctx, xdp);
	if (data + ETH_HLEN + sizeof(struct ipv6hdr) > end) {
		stat_drop(IDN_DROP_ENCAP);
		return -1;
	}
	if (!v6) {
		struct iphdr *ip = data + ETH_HLEN;
		__u16 tot = idn_htons(p->l3_len + sizeof(*ip));
		__u32 src = cfg->src4_bits ?
			    idn_rss_addr(cfg->src4, cfg->src4_bits, idn_rss_hash(&p->flow)) :
			    cfg->src4;

		/* checksum from the values written, not read back */
		ip->version = 4;
		ip->ihl = 5;
		ip->tos = 0;
		ip->tot_len = tot;
		ip->id = 0;
		ip->frag_off = 0;
		ip->ttl = 64;
		ip->protocol = IPPROTO_IPIP;
		ip->saddr = src;
		ip->daddr = n->addr4;
		ip->check = idn_csum_fold(idn_ip4_csum_sum(idn_htons(0x4500), tot, 0,
							   IPPROTO_IPIP, src, n->addr4));
	} else {
		struct ipv6hdr *ip6 = data + ETH_HLEN;

		*(__u32 *)ip6 = idn_htonl(0x60000000);
		ip6->payload_len = idn_htons(p->l3_len);
		ip6->nexthdr = IPPROTO_IPV6;
		ip6->hop_limit = 64;
		__builtin_memcpy(&ip6->saddr, cfg->src6, 16);
		if (cfg->src6_bits)
			ip6->saddr.in6_u.u6_addr32[3] =
				idn_rss_addr(cfg->src6[3], cfg->src6_bits, idn_rss_hash(&p->flow));
		__builtin_memcpy(&ip6->daddr, n->addr6, 16);
	}
	if (!nh) {
		/* No neighbour yet: the kernel forwards and resolves it. */
		stat_drop(IDN_DROP_FIB);
		return act_pass(xdp);
	}
	eth_put_macs(data, nh);
	return act_fwd(ctx, nh->ifindex, xdp);
}

/*
 * Forward to node @id and count it: per verdict, and per node (new flows).
 * @now: the coarse second of a new flow (its next hop may be refreshed),
 * 0 for an established one.
 */
IDN_INLINE int forward_at(void *ctx, const struct idn_config *cfg, const struct idn_pkt *p,
			  __u32 id, const struct idn_node *n, __u32 verdict, __u32 len,
			  __u32 now, const int xdp)
{
	int act = encap_forward(ctx, cfg, p, id, n, verdict != IDN_V_CONN ? now : 0, xdp);

	if (act < 0)
		return act;
	stat_verdict(verdict, len);
	stat_node(id, len, verdict != IDN_V_CONN);
	return act;
}

IDN_INLINE int forward(void *ctx, const struct idn_config *cfg, const struct idn_pkt *p,
		       __u32 id, const struct idn_node *n, __u32 verdict, __u32 len,
		       const int xdp)
{
	return forward_at(ctx, cfg, p, id, n, verdict, len,
			  verdict != IDN_V_CONN ? coarse_now() : 0, xdp);
}

/* ------------------------------------------------------------------ */
/* rejection                                                           */
/* ------------------------------------------------------------------ */

/*
 * Fill the TCP header of a reset answering @p; @sum: pseudo-header sum.
 * The checksum is summed from the values written, never read back from
 * the packet.
 */
IDN_INLINE void rst_tcp(struct tcphdr *th, const struct idn_pkt *p, __u64 sum)
{
	__u32 seg_len = p->l4_len - p->tcp_hlen, seq, ack;
	__u16 flags;

	if (p->tcp_flags & IDN_TCP_ACK) {
		seq = idn_htonl(p->ack_seq);
		ack = 0;
		flags = IDN_TCP_RST;
	} else {
		seg_len += !!(p->tcp_flags & IDN_TCP_SYN) + !!(p->tcp_flags & IDN_TCP_FIN);
		seq = 0;
		ack = idn_htonl(p->seq + seg_len);
		flags = IDN_TCP_RST | IDN_TCP_ACK;
	}
	flags = idn_htons((5 << 12) | flags);	/* doff 5, no options */
	sum += (__u64)p->flow.dport + p->flow.sport + (seq & 0xffff) + (seq >> 16) +
	       (ack & 0xffff) + (ack >> 16) + flags;
	th->source = p->flow.dport;
	th->dest = p->flow.sport;
	th->seq = seq;
	th->ack_seq = ack;
	*(__u16 *)((__u8 *)th + 12) = flags;
	th->window = 0;
	th->urg_ptr = 0;
	th->check = idn_csum_fold(sum);
}

/*
 * reject_tcp_rst - turn the packet into the TCP RST that answers it
 * (RFC 9293 3.10.7.1) and send it back. Return: action, or -1 when the
 * packet cannot be turned (IP options), in which case it is dropped.
 */
IDN_INLINE int reject_tcp_rst(void *ctx, const struct idn_pkt *p, const int xdp)
{
	__u32 l2 = p->l3_off, iph = p->l4_off - p->l3_off;
	__u32 cur = (__u32)(ctx_data_end(ctx, xdp) - ctx_data(ctx, xdp));
	__u32 want = l2 + iph + sizeof(struct tcphdr);
	void *data, *end, *l3;
	struct ethhdr *eth;
	__u8 mac[6];

	if (iph != (p->flow.family == IDN_AF_INET ? sizeof(struct iphdr) :
						    sizeof(struct ipv6hdr)))
		return -1;	/* IPv4 options, IPv6 extension headers */
	if (l2 > 22)
		return -1;
	if (want < cur && ctx_set_len(ctx, cur, want, xdp))
		return -1;
	data = ctx_data(ctx, xdp);
	end = ctx_data_end(ctx, xdp);
	eth = data;
	if ((void *)(eth + 1) > end)
		return -1;
	__builtin_memcpy(mac, eth->h_source, 6);
	__builtin_memcpy(eth->h_source, eth->h_dest, 6);
	__builtin_memcpy(eth->h_dest, mac, 6);
	l3 = data + (l2 & 0x1f);

	if (p->flow.family == IDN_AF_INET) {
		struct iphdr *ip = l3;
		struct tcphdr *th = l3 + sizeof(*ip);

		if ((void *)(th + 1) > end)
			return -1;
		__u16 vt = idn_htons(0x4500 | ip->tos);
		__u16 tot = idn_htons(sizeof(*ip) + sizeof(*th));

		ip->saddr = p->flow.daddr[0];
		ip->daddr = p->flow.saddr[0];
		ip->tot_len = tot;
		ip->ttl = 64;
		ip->id = 0;
		ip->frag_off = idn_htons(0x4000);
		ip->protocol = IPPROTO_TCP;
		ip->check = idn_csum_fold(idn_ip4_csum_sum(vt, tot, idn_htons(0x4000),
							   IPPROTO_TCP, p->flow.daddr[0],
							   p->flow.saddr[0]));
		rst_tcp(th, p, idn_addr_sum(p->flow.saddr, 1) + idn_addr_sum(p->flow.daddr, 1) +
			       idn_htons(IPPROTO_TCP) + idn_htons(sizeof(*th)));
	} else {
		struct ipv6hdr *ip6 = l3;
		struct tcphdr *th = l3 + sizeof(*ip6);

		if ((void *)(th + 1) > end)
			return -1;
		__builtin_memcpy(&ip6->saddr, p->flow.daddr, 16);
		__builtin_memcpy(&ip6->daddr, p->flow.saddr, 16);
		ip6->payload_len = idn_htons(sizeof(*th));
		ip6->nexthdr = IPPROTO_TCP;
		ip6->hop_limit = 64;
		rst_tcp(th, p, idn_addr_sum(p->flow.saddr, 4) + idn_addr_sum(p->flow.daddr, 4) +
			       idn_htons(IPPROTO_TCP) + idn_htons(sizeof(*th)));
	}
	return act_tx(ctx, xdp);
}

/* ------------------------------------------------------------------ */
/* telemetry                                                           */
/* ------------------------------------------------------------------ */

/*
 * Not inlined: the MAC's SipHash rounds spill registers, and in the main
 * program those slots would count toward the stack that the main program,
 * idn_select() and idn_plan_pass() share (512 bytes; 6.1 rounds each frame
 * up to 32).
 */
static __attribute__((noinline)) int telemetry(void *data, void *end, const struct idn_pkt *p)
{
	/* the mask restates l4_off's bound (parse.h) where the verifier sees it */
	struct idn_telemetry *pt = data + (p->l4_off & IDN_L4_OFF_MASK) + sizeof(struct udphdr);
	struct idn_telemetry *t;
	struct idn_work *w;
	struct idn_node *n;
	__u32 id = 0;
	int r;

	/* version 2 is 40 bytes, version 3 (struct idn_telemetry) 48 */
	if ((void *)pt + IDN_TELE_V2_LEN > end ||
	    p->l4_len < sizeof(struct udphdr) + IDN_TELE_V2_LEN)
		return IDN_DROP_BAD_TELEMETRY;
	/*
	 * A copy, version 2's last 8 bytes zero: the fields are read again by
	 * version further down, and the verifier does not tie those reads to
	 * the length checked here. Not on the stack (6.1's 512 bytes)
	 */
	w = bpf_map_lookup_elem(&idn_work, &id);
	if (!w)
		return IDN_DROP_BAD_TELEMETRY;
	t = &w->tele;
	__builtin_memcpy(t, pt, IDN_TELE_V2_LEN);
	__builtin_memset((__u8 *)t + IDN_TELE_V2_LEN, 0, sizeof(*t) - IDN_TELE_V2_LEN);
	if (t->version != IDN_TELE_V2) {
		if ((void *)(pt + 1) > end || p->l4_len < sizeof(struct udphdr) + sizeof(*pt))
			return IDN_DROP_BAD_TELEMETRY;
		__builtin_memcpy((__u8 *)t + IDN_TELE_V2_LEN, (__u8 *)pt + IDN_TELE_V2_LEN,
				 sizeof(*t) - IDN_TELE_V2_LEN);
	}
	r = idn_tele_check(t);
	if (r)
		return r;
	id = idn_ntohl(t->node);
	n = bpf_map_lookup_elem(&idn_nodes, &id);
	if (!n || !(n->flags & IDN_NODE_F_VALID))
		return IDN_DROP_BAD_TELEMETRY;
	/* only from the node's own locator of the datagram's family */
	if (p->flow.family == IDN_AF_INET ?
	    (!(n->flags & IDN_NODE_F_LOC4) || n->addr4 != p->flow.saddr[0]) :
	    (!(n->flags & IDN_NODE_F_LOC6) ||
	     n->addr6[0] != p->flow.saddr[0] || n->addr6[1] != p->flow.saddr[1] ||
	     n->addr6[2] != p->flow.saddr[2] || n->addr6[3] != p->flow.saddr[3]))
		return IDN_DROP_TELE_SPOOF;
	return idn_tele_rx(n, id, t, coarse_now(), tick_now());
}

/* ------------------------------------------------------------------ */
/* the program body                                                    */
/* ------------------------------------------------------------------ */

/* Malformed IDN traffic: count the reason, pass or drop per config. */
IDN_INLINE int malformed(const struct idn_config *cfg, __u32 reason, __u32 len,
			 const int xdp)
{
	stat_drop(reason);
	stat_verdict(IDN_V_MALFORMED, len);
	return cfg->flags & IDN_CFG_F_DROP_MALFORMED ? act_drop(xdp) : act_pass(xdp);
}

IDN_INLINE int demand_miss_hold(void *ctx, const struct idn_desc *d, const int xdp)
{
	if (xdp) {
		struct idn_meta *m;
		void *data;

		/*
		 * idn_steer() already passed the miss when the feature is off;
		 * this test on the .rodata constant is what keeps the helper
		 * out of the verifier's sight on kernels that refuse it
		 */
		if (!(idn_features & IDN_FEAT_XDP_META))
			return XDP_PASS;
		if (bpf_xdp_adjust_meta(ctx, -(int)sizeof(*m)))
			return XDP_PASS;
		m = (void *)(long)((struct xdp_md *)ctx)->data_meta;
		data = ctx_data(ctx, xdp);
		if ((void *)(m + 1) > data)
			return XDP_PASS;
		m->magic = IDN_META_MAGIC;
		m->verdict = IDN_V_MISS_HOLD;
		m->pad = 0;
		m->cap = d->cap;
		return XDP_PASS;
	}
	/* the mark says "miss", the priority which capability (uapi idn.h) */
	((struct __sk_buff *)ctx)->mark = IDN_MARK_MISS;
	((struct __sk_buff *)ctx)->priority = d->cap;
	return TC_ACT_OK;
}

/*
 * opt_scan - copy a SYN's option list, walk it and find the IDN option.
 * Strict admission: a malformed list, or an IDN option whose own fields
 * are wrong, is refused here, before any table is consulted. A function
 * of its own (not inlined) so its buffers do not add to the main
 * program's stack. Return: 1 with the IDN option in *o, 0 without one,
 * or -reason.
 */
IDN_INLINE int opt_scan(void *ctx, __u32 off, __u32 len, struct idn_tcpopt *o,
			const int xdp)
{
	struct idn_optwalk w;
	int r;

	if (len > IDN_TCPOPT_SPACE)
		return -IDN_DROP_BAD_OPT;
	/* the mask restates len <= sizeof(w.buf) where the verifier sees it */
	w.len = len & IDN_OPTBUF_MASK;
	if (ctx_load(ctx, off, w.buf.b, w.len, xdp))
		return -IDN_DROP_BAD_OPT;
	r = idn_tcpopt_scan(&w, o);
	if (r > 0) {
		int c = idn_tcpopt_check(o);

		if (c)
			return -c;
	}
	return r;
}

/* Out-of-line per hook: a BPF call keeps the hook constant inside. */
static __attribute__((noinline)) int opt_scan_xdp(void *ctx, __u32 off, __u32 len,
						  struct idn_tcpopt *o)
{
	return opt_scan(ctx, off, len, o, IDN_HOOK_XDP);
}

static __attribute__((noinline)) int opt_scan_tc(void *ctx, __u32 off, __u32 len,
						 struct idn_tcpopt *o)
{
	return opt_scan(ctx, off, len, o, IDN_HOOK_TC);
}

/*
 * Fragments and IPv6 extension headers (strict admission): never steered
 * here, counted under their own reason, then passed or dropped as the
 * configuration says (`idnctl dp set frag`, `ext6`).
 */
IDN_INLINE int unsteered(__u32 reason, int drop, __u32 len, const int xdp)
{
	stat_drop(reason);
	stat_verdict(drop ? IDN_V_MALFORMED : IDN_V_PASS, len);
	return drop ? act_drop(xdp) : act_pass(xdp);
}

/*
 * stateless_forward - send @p where stateless.h says, writing no table:
 * a mid-flow segment without a connection entry (@reason
 * IDN_DROP_NO_STATE, counted as @verdict IDN_V_CONN) or a new flow above
 * the flood guard (IDN_DROP_FLOOD, IDN_V_NEW). The reason is counted for
 * every such packet; with nowhere to go it is dropped (IDN_V_NOCAP).
 */
IDN_INLINE int stateless_forward(void *ctx, const struct idn_config *cfg,
				 const struct idn_pkt *p, const struct idn_desc *d,
				 __u32 reason, __u32 verdict, __u32 len, __u32 now,
				 const int xdp)
{
	struct idn_sl_in in = {
		.hash = idn_flow_hash(&p->flow), .cap = d->cap, .aff_node = IDN_NODE_NONE,
		.tier = d->tier, .policy = d->policy, .slot = cfg->active_slot & 1,
		.family = p->flow.family,
	};
	const struct idn_node *n = NULL;
	struct idn_tab_meta *am = NULL;
	struct idn_tab_pos ap;
	struct idn_aff_set *as;
	__u32 id;
	__u64 atag;
	int act;

	in.plans = idn_plan_hint(cfg, in.slot);
	/*
	 * The affinity entry whatever its age (where the client's flows
	 * went) wins over the plan's choice. Its set's metadata is loaded
	 * first and compared last: the plan's lookups run while that line,
	 * a cache miss in a flood of new tokens, is on its way.
	 */
	as = aff_set(d->token, IDN_CAP_CLASS(d->cap), &ap, &am);
	if (as && am)
		tab_touch(am);
	id = idn_stateless_pick(&in);
	if (as && am && idn_aff_find(as, am, d->token, &ap, &atag) >= 0) {
		__u32 aid = IDN_AFF_TAG_NODE(atag);

		n = bpf_map_lookup_elem(&idn_nodes, &aid);
		if (idn_node_usable(n, in.family))
			id = aid;
		n = NULL;
	}
	stat_drop(reason);
	if (id != IDN_NODE_NONE)
		n = bpf_map_lookup_elem(&idn_nodes, &id);
	if (!n) {
		stat_verdict(IDN_V_NOCAP, len);
		return act_drop(xdp);
	}
	act = forward_at(ctx, cfg, p, id, n, verdict, len, now, xdp);
	if (act < 0) {
		stat_verdict(IDN_V_ERROR, len);
		return act_drop(xdp);
	}
	return act;
}

/*
 * flood_over_at - count a new flow on this CPU; true when this coarse
 * second's count is past the configured rate (config.flood_rate, 0 the
 * default, IDN_FLOOD_OFF never). The coarse second in *now (read here
 * once for the whole packet).
 */
IDN_INLINE int flood_over_at(const struct idn_config *cfg, __u32 *now)
{
	__u32 rate = cfg->flood_rate ? cfg->flood_rate : IDN_FLOOD_RATE_DEFAULT, zero = 0;
	struct idn_flood *f;

	*now = coarse_now();
	if (rate == IDN_FLOOD_OFF)
		return 0;
	f = bpf_map_lookup_elem(&idn_flood, &zero);
	if (!f)
		return 0;
	if (f->sec != *now) {
		f->sec = *now;
		f->count = 0;
	}
	return ++f->count > rate;
}

IDN_INLINE int flood_over(const struct idn_config *cfg)
{
	__u32 now;

	return flood_over_at(cfg, &now);
}

/*
 * flood_full - has this CPU counted its rate of new flows in this coarse
 * second already (so the next one is over it)? Reads the clock (into
 * *now) only at the rate. A SYN then skips the connection lookup and the
 * count (it is over the rate until the second ends): it is chosen without
 * state whatever the table holds.
 */
IDN_INLINE int flood_full(const struct idn_config *cfg, __u32 *now)
{
	__u32 rate = cfg->flood_rate ? cfg->flood_rate : IDN_FLOOD_RATE_DEFAULT, zero = 0;
	struct idn_flood *f;

	if (rate == IDN_FLOOD_OFF)
		return 0;
	f = bpf_map_lookup_elem(&idn_flood, &zero);
	if (!f || f->count < rate)
		return 0;
	*now = coarse_now();
	return f->sec == *now;
}

/*
 * The TS cookie of a mid-flow segment (tsopt.h): the low bits of the
 * TSecr it echoes, or -1 (no ACK, no timestamp option, TSecr 0). Out of
 * line per hook, like opt_scan, so the option copy stays off the main
 * program's stack.
 */
IDN_INLINE int ts_cookie(void *ctx, __u32 off, __u32 len, const int xdp)
{
	struct idn_tsbuf w;
	__u32 ecr;
	int o;

	if (len < IDN_TCPOPT_TS_LEN || len > IDN_TSOPT_SPACE)
		return -1;
	w.len = len;
	if (ctx_load(ctx, off, w.b, len, xdp))
		return -1;
	o = idn_tsopt_find(&w);
	if (o < 0 || o > IDN_TSOPT_SPACE - IDN_TCPOPT_TS_LEN)
		return -1;
	ecr = idn_tsbuf_word(&w, o + 6);
	return ecr ? (int)idn_ts_cookie(ecr) : -1;
}

static __attribute__((noinline)) int ts_cookie_xdp(void *ctx, __u32 off, __u32 len)
{
	return ts_cookie(ctx, off, len, IDN_HOOK_XDP);
}

static __attribute__((noinline)) int ts_cookie_tc(void *ctx, __u32 off, __u32 len)
{
	return ts_cookie(ctx, off, len, IDN_HOOK_TC);
}

IDN_INLINE int receipt_sampled(const struct idn_config *cfg, const struct idn_vip *vip)
{
	if (vip && (vip->flags & IDN_VIP_F_RECEIPT))
		return 1;
	if (cfg->receipt_sample == 1)
		return 1;
	return cfg->receipt_sample > 1 && bpf_get_prandom_u32() % cfg->receipt_sample == 0;
}

/*
 * receipt_node_down - the receipt of a connection reset by the node-down
 * rule: verdict error, node the down node, one candidate (that node,
 * reason node-down), the flow; the descriptor where the segment carried
 * one (@d, else zero). Sampled like a new flow's (receipt_sample, the
 * VIP's receipt flag). A call of its own: nothing on idn_steer()'s stack.
 */
static __attribute__((noinline)) void receipt_node_down(const struct idn_config *cfg,
							const struct idn_flow_key *flow,
							const struct idn_desc *d, __u32 node)
{
	const struct idn_vip *vip;
	struct idn_receipt *rc;
	__u32 zero = 0;

	vip = bpf_map_lookup_elem(&idn_vips, (struct idn_vip_key *)flow->daddr);
	if (!receipt_sampled(cfg, vip))
		return;
	rc = bpf_map_lookup_elem(&idn_rscratch, &zero);
	if (!rc)
		return;
	rc->version = IDN_RECEIPT_VERSION;
	rc->verdict = IDN_V_ERROR;
	rc->n_cand = 1;
	rc->source = d ? d->flags : 0;
	rc->generation = cfg->generation;
	rc->node = node;
	rc->aff_node = IDN_NODE_NONE;
	rc->ktime_ns = bpf_ktime_get_ns();
	if (d)
		rc->desc = *d;
	else
		__builtin_memset(&rc->desc, 0, sizeof(rc->desc));
	rc->flow = *flow;
	rc->cand[0].node = node;
	rc->cand[0].cost = 0;
	rc->cand[0].reject = IDN_REJ_NODE_DOWN;
	rc->cand[0].variant = 0;
	rc->cand[0].from_fallback = 0;
	rc->cand[0].pad = 0;
	bpf_ringbuf_output(&idn_receipts, rc, sizeof(*rc), 0);
}

/*
 * ts_cookie_forward - a mid-flow TCP segment without a connection entry
 * whose TSecr names a node of the flow's plans (stateless.h,
 * idn_ts_check()) goes to that node, where the connection lives; the
 * entry is written again unless the flood guard is over its rate
 * (counted as a new flow). A node that is down or gone: the node-down
 * rule (reset at once). Return: the action, or -1 when the segment has no
 * usable cookie (the caller takes the stateless choice).
 */
IDN_INLINE int ts_cookie_forward(void *ctx, const struct idn_config *cfg,
				 const struct idn_pkt *p, const struct idn_desc *d, __u32 len,
				 const int xdp)
{
	struct idn_sl_in in = {
		.cap = d->cap, .aff_node = IDN_NODE_NONE, .tier = d->tier, .policy = d->policy,
		.slot = cfg->active_slot & 1, .family = p->flow.family,
	};
	__u32 off = p->l4_off + sizeof(struct tcphdr), olen, id;
	const struct idn_node *n;
	int cookie, r, act;

	if (!(p->tcp_flags & IDN_TCP_ACK) || p->tcp_hlen < sizeof(struct tcphdr) + IDN_TCPOPT_TS_LEN)
		return -1;
	in.plans = idn_plan_hint(cfg, in.slot);
	olen = p->tcp_hlen - sizeof(struct tcphdr);
	cookie = xdp ? ts_cookie_xdp(ctx, off, olen) : ts_cookie_tc(ctx, off, olen);
	if (cookie < 0)
		return -1;
	id = (__u32)cookie;
	r = idn_ts_check(&in, id);
	if (!r)
		return -1;
	if (r < 0) {
		/* its node is down or gone: reset now (see idn_steer()) */
		stat_drop(IDN_DROP_NODE_DOWN);
		receipt_node_down(cfg, &p->flow, d, id);
		stat_verdict(IDN_V_ERROR, len);
		if (!(p->tcp_flags & IDN_TCP_RST) && !(cfg->flags & IDN_CFG_F_NO_RST)) {
			act = reject_tcp_rst(ctx, p, xdp);
			if (act >= 0)
				return act;
		}
		return act_drop(xdp);
	}
	stat_drop(IDN_DROP_TS_COOKIE);
	n = bpf_map_lookup_elem(&idn_nodes, &id);
	if (!n) {
		stat_verdict(IDN_V_ERROR, len);
		return act_drop(xdp);
	}
	if (!(p->tcp_flags & (IDN_TCP_RST | IDN_TCP_FIN)) && !flood_over(cfg))
		conn_put(&p->flow, id, 0, d->cap, 1);
	act = forward(ctx, cfg, p, id, n, IDN_V_CONN, len, xdp);
	if (act < 0) {
		stat_verdict(IDN_V_ERROR, len);
		return act_drop(xdp);
	}
	return act;
}

/*
 * Is it IDN traffic? A VIP (@vip: the flow key's destination half looked
 * up as a VIP key), or the IPv6 descriptor prefix. The descriptor into
 * w->d, the SYN's option (w->opt) applied when @has_opt. Return: 0,
 * IDN_DESC_NOT_IDN, or the malformed reason.
 */
IDN_INLINE int steer_desc(const struct idn_config *cfg, const struct idn_vip *vip,
			  const struct idn_flow_key *f, struct idn_work *w, int has_opt)
{
	int r = idn_desc_begin(cfg, vip, f, &w->d);

	if (r)
		return r;
	if (has_opt) {
		r = idn_desc_apply_opt(&w->opt, &w->d);
		if (r)
			return r;
	}
	return idn_desc_finish(f, &w->d);
}

IDN_INLINE int idn_steer(void *ctx, const int xdp)
{
	void *data = ctx_data(ctx, xdp), *end = ctx_data_end(ctx, xdp);
	__u32 len = (__u32)(end - data), zero = 0, now, aff_last = 0;
	__u32 aff_node, id, verdict;
	const struct idn_config *cfg;
	const struct idn_vip *vip = NULL;
	struct idn_receipt *rc = NULL;
	const struct idn_node *n;
	struct idn_desc *d;
	struct idn_pkt p;
	struct idn_conn_set *cs = NULL;
	struct idn_aff_set *as;
	struct idn_tab_meta *cm = NULL, *am = NULL;
	struct idn_tab_pos cp;
	struct idn_work *w = NULL;
	__u64 ctag = 0, atag = 0;
	int r, rd = 0, act, has_opt = 0, ct = -1, aw = -1, syn, early, full;

	cfg = bpf_map_lookup_elem(&idn_config, &zero);
	if (!cfg)
		return act_pass(xdp);

	r = idn_parse(data, end, &p);
	if (r)
		return malformed(cfg, r, len, xdp);
	if (unlikely(p.frag))
		return unsteered(p.flow.family == IDN_AF_INET ? IDN_DROP_IP4_FRAG :
								IDN_DROP_IP6_FRAG,
				 cfg->flags & IDN_CFG_F_FRAG_DROP, len, xdp);
	if (unlikely(p.ext6) &&
	    (p.ext6 == IDN_EXT6_OPAQUE || !(cfg->flags & IDN_CFG_F_EXT6_STEER)))
		return unsteered(IDN_DROP_IP6_EXT, cfg->flags & IDN_CFG_F_EXT6_DROP, len, xdp);
	if (!p.flow.family || !p.has_ports)
		goto pass;

	if (p.flow.proto == IPPROTO_UDP && (cfg->flags & IDN_CFG_F_TELEMETRY) &&
	    p.flow.dport == cfg->tele_port) {
		r = telemetry(data, end, &p);
		if (r) {
			stat_drop(r);
			stat_verdict(IDN_V_MALFORMED, len);
			return act_drop(xdp);
		}
		stat_verdict(IDN_V_TELEMETRY, len);
		return act_drop(xdp);
	}

	/*
	 * Strict admission of a SYN's option list before the connection
	 * table: an entry must not let a broken list through.
	 */
	syn = p.flow.proto == IPPROTO_TCP &&
	      (p.tcp_flags & (IDN_TCP_SYN | IDN_TCP_ACK)) == IDN_TCP_SYN;
	if (syn && p.tcp_hlen > sizeof(struct tcphdr)) {
		__u32 ooff = p.l4_off + sizeof(struct tcphdr);
		__u32 olen = p.tcp_hlen - sizeof(struct tcphdr);

		w = bpf_map_lookup_elem(&idn_work, &zero);
		if (!w)
			goto error;
		r = xdp ? opt_scan_xdp(ctx, ooff, olen, &w->opt) :
			  opt_scan_tc(ctx, ooff, olen, &w->opt);
		if (r < 0)
			return malformed(cfg, -r, len, xdp);
		has_opt = r;
	}

	/*
	 * A SYN under the flood guard's rate: its descriptor first (nothing
	 * is decided on it before the connection table is read), so that
	 * the table lines its decision reads and writes at random places
	 * (its affinity set's metadata and ways, its connection set's way
	 * the clock would give it, the set's metadata) are all loading
	 * before the first of them is compared: their cache misses overlap
	 * instead of following one another.
	 */
	full = syn && flood_full(cfg, &now);
	early = syn && !full;
	if (!syn || early)
		cs = conn_set(&p.flow, &cp, &cm);
	if (early) {
		if (cs && cm) {
			tab_touch(cm);
			tab_touch(&cs->way[cp.start & (IDN_CONN_WAYS - 1)]);
		}
		if (!w)
			w = bpf_map_lookup_elem(&idn_work, &zero);
		if (!w || !cs || !cm)
			goto error;
		/* where its entry goes, kept for the insert (no second hash) */
		w->cp = cp;
		vip = bpf_map_lookup_elem(&idn_vips, (struct idn_vip_key *)p.flow.daddr);
		rd = steer_desc(cfg, vip, &p.flow, w, has_opt);
		if (!rd) {
			as = aff_set(w->d.token, IDN_CAP_CLASS(w->d.cap), &w->ap, &am);
			if (as && am) {
				tab_touch(am);
				tab_touch(&as->way[0]);
				tab_touch(&as->way[IDN_AFF_WAYS / 2]);
			}
		}
	}

	/*
	 * Established flows first: one set of the connection table, no
	 * selection. A SYN over the flood guard's rate looks nothing up: it
	 * is chosen without state below, whatever the table holds.
	 */
	if (cs && cm)
		ct = idn_ct_lookup(cs, cm, &p.flow, &cp, &ctag, 1);

	if (ct >= 0 && cs && cm) {
		__u32 id = (__u32)ctag;

		n = bpf_map_lookup_elem(&idn_nodes, &id);
		if (n && (n->flags & IDN_NODE_F_VALID) &&
		    (n->flags & (p.flow.family == IDN_AF_INET6 ? IDN_NODE_F_LOC6 :
								  IDN_NODE_F_LOC4)) &&
		    (n->health == IDN_HEALTH_UP || n->health == IDN_HEALTH_DRAIN)) {
			act = forward(ctx, cfg, &p, id, n, IDN_V_CONN, len, xdp);
			if (act < 0)
				goto error;
			return act;
		}
		/*
		 * Its node is down, unknown or removed, or lost the locator of
		 * this family. A TCP connection cannot move: another node has
		 * no socket for it and would answer with a reset a round trip
		 * later. Reset it here, at once, and forget the entry: the
		 * client's next SYN is chosen anew. A SYN (a new connection on
		 * a reused 5-tuple) and a UDP flow are chosen again below.
		 */
		if (p.flow.proto == IPPROTO_TCP && !(p.tcp_flags & IDN_TCP_SYN)) {
			idn_conn_del(cs, cm, &cp, &p.flow, ctag);
			stat_drop(IDN_DROP_NODE_DOWN);
			receipt_node_down(cfg, &p.flow, NULL, id);
			stat_verdict(IDN_V_ERROR, len);
			if (!(p.tcp_flags & IDN_TCP_RST) && !(cfg->flags & IDN_CFG_F_NO_RST)) {
				act = reject_tcp_rst(ctx, &p, xdp);
				if (act >= 0)
					return act;
			}
			return act_drop(xdp);
		}
	}

	if (!w)
		w = bpf_map_lookup_elem(&idn_work, &zero);
	if (!w)
		goto error;
	d = &w->d;

	if (!early) {
		vip = bpf_map_lookup_elem(&idn_vips, (struct idn_vip_key *)p.flow.daddr);
		rd = steer_desc(cfg, vip, &p.flow, w, has_opt);
	}
	if (rd == IDN_DESC_NOT_IDN)
		goto pass;
	if (rd)
		return malformed(cfg, rd, len, xdp);

	/*
	 * State only for real connections: a TCP segment that is not a SYN
	 * and has no connection entry is never chosen by load; it goes where
	 * its connection lives (stateless.h): the node its TS cookie names
	 * (which writes the entry again), else the stateless choice, which
	 * writes nothing. Above the flood guard's rate, new flows are chosen
	 * the same way, without writing a table, so a SYN flood cannot evict
	 * live flows.
	 */
	if (ct < 0 && p.flow.proto == IPPROTO_TCP && !syn) {
		/* exact when the client echoes its node's TS cookie */
		act = ts_cookie_forward(ctx, cfg, &p, d, len, xdp);
		if (act >= 0)
			return act;
		return stateless_forward(ctx, cfg, &p, d, IDN_DROP_NO_STATE, IDN_V_CONN, len, 0,
					 xdp);
	}
	if (full || flood_over_at(cfg, &now))
		return stateless_forward(ctx, cfg, &p, d, IDN_DROP_FLOOD, IDN_V_NEW, len, now, xdp);

	/* Affinity: the node that holds this token's state, if fresh. */
	as = aff_set(d->token, IDN_CAP_CLASS(d->cap), &w->ap, &am);
	aff_node = IDN_NODE_NONE;
	if (as && am)
		aw = idn_aff_find(as, am, d->token, &w->ap, &atag);
	if (aw >= 0 &&
	    (!cfg->aff_ttl_s || now - IDN_AFF_TAG_LAST(atag) <= cfg->aff_ttl_s)) {
		aff_node = IDN_AFF_TAG_NODE(atag);
		aff_last = IDN_AFF_TAG_LAST(atag);
	}
	idn_sel_in_init(&w->in, d, aff_node, cfg->active_slot, cfg->home_domain,
			p.flow.family, tick_now());
	w->in.plans = idn_plan_hint(cfg, w->in.slot);
	if (receipt_sampled(cfg, vip))
		rc = bpf_map_lookup_elem(&idn_rscratch, &zero);

	idn_select(&w->in, &w->sel, rc);
	verdict = w->sel.verdict;
	id = w->sel.node;
	if (verdict == IDN_V_MISS_REJECT && (cfg->flags & IDN_CFG_F_HOLD))
		verdict = IDN_V_MISS_HOLD;
	/*
	 * Without XDP metadata a held miss cannot carry its capability out of
	 * XDP: pass it untouched, uncounted and without a receipt; TC on this
	 * device reaches the same decision and marks, counts and explains it.
	 */
	if (xdp && verdict == IDN_V_MISS_HOLD && !(idn_features & IDN_FEAT_XDP_META))
		return act_pass(xdp);
	stat_cap(d->cap, verdict);

	if (rc) {
		rc->version = IDN_RECEIPT_VERSION;
		rc->verdict = verdict;
		rc->n_cand = w->sel.n_rc;
		rc->source = d->flags;
		rc->generation = w->sel.generation;
		rc->node = id;
		rc->aff_node = aff_node;
		rc->ktime_ns = bpf_ktime_get_ns();
		rc->desc = *d;
		rc->flow = p.flow;
		bpf_ringbuf_output(&idn_receipts, rc, sizeof(*rc), 0);
	}

	switch (verdict) {
	case IDN_V_NEW:
	case IDN_V_AFFINITY:
	case IDN_V_FALLBACK:
	case IDN_V_OVERFLOW: {
		struct idn_node *cn = bpf_map_lookup_elem(&idn_nodes, &id);

		if (!cn) {
			stat_drop(IDN_DROP_NO_NODE);
			goto error;
		}
		n = cn;
		/*
		 * into its set (found again: pointers kept across the
		 * selection's call would not fit the stack); a SYN's place
		 * was kept in the work area, other flows' is hashed again
		 */
		cs = early ? conn_at(&w->cp, &cm) : conn_set(&p.flow, &w->cp, &cm);
		if (cs && cm)
			conn_insert(w, cs, cm, &w->cp, &p.flow, id, w->sel.generation, w->sel.cap,
				    0);
		/* the node's load counts this request until its next datagram */
		idn_node_charge(cn, w->sel.charge);
		/* refresh the token's node at most once per coarse second */
		if (aff_node != id || aff_last != now) {
			as = aff_at(&w->ap, &am);
			if (as && am)
				idn_aff_write(as, am, &w->ap, d->token, (__u64)id << 32 | now);
		}
		act = forward_at(ctx, cfg, &p, id, n, verdict, len, now, xdp);
		if (act < 0)
			goto error;
		return act;
	}
	case IDN_V_MISS_HOLD:
		stat_verdict(IDN_V_MISS_HOLD, len);
		return demand_miss_hold(ctx, d, xdp);
	default:	/* SHED, NOCAP, MISS_REJECT */
		stat_verdict(verdict, len);
		if (p.flow.proto == IPPROTO_TCP && !(p.tcp_flags & IDN_TCP_RST) &&
		    !(cfg->flags & IDN_CFG_F_NO_RST)) {
			act = reject_tcp_rst(ctx, &p, xdp);
			if (act >= 0)
				return act;
		}
		return act_drop(xdp);
	}

pass:
	stat_verdict(IDN_V_PASS, len);
	return act_pass(xdp);
error:
	stat_verdict(IDN_V_ERROR, len);
	return act_drop(xdp);
}

#endif /* __IDN_LIB_STEER_H */
