/* SPDX-License-Identifier: (GPL-2.0 WITH Linux-syscall-note) OR BSD-2-Clause */
/*
 * idn.h - the one contract of the Intelligence Delivery Network.
 *
 * Shared unchanged by the kernel module (kernel/), the BPF dataplane (bpf/)
 * and userspace (ctl/, agent/, selftests/). It holds:
 *   - the request descriptor Q and its three wire encodings,
 *   - the keys and values of every dataplane map,
 *   - verdicts, drop reasons (append-only) and limits,
 *   - the agent telemetry datagram.
 *
 * Rules: fixed-width fields only, no pointers, no bool, no bitfields,
 * explicit padding (always zero), sizes asserted below with IDN_ASSERT_SIZE
 * by every consumer. Multi-byte numeric fields of map values are in host
 * byte order; addresses and ports are in network byte order (as on the
 * wire) and typed __be*. Wire formats are big-endian.
 *
 * Enum values are ABI: append only, never renumber; a retired value stays
 * reserved as *_UNUSEDn.
 */
#ifndef _UAPI_LINUX_IDN_H
#define _UAPI_LINUX_IDN_H

#include <linux/types.h>

/* ------------------------------------------------------------------ */
/* Limits                                                              */
/* ------------------------------------------------------------------ */

#define IDN_MAX_CAND		16	/* candidates per plan */
#define IDN_SL_RING		128	/* buckets of a plan's stateless choice */
#define IDN_MAX_NODES		4096	/* node ids are 0 .. IDN_MAX_NODES-1 */
#define IDN_MAX_VIPS		1024
#define IDN_MAX_PLANS		16384	/* per slot; the map holds two slots */
#define IDN_MAX_CONNS		262144	/* connection table entries */
#define IDN_MAX_AFFINITY	131072	/* affinity table entries */
#define IDN_MAX_CAPSTATS	4096
#define IDN_RECEIPT_RING	(256 * 1024)	/* ring buffer bytes */
#define IDN_TIER_MAX		15	/* tier is 4 bits */
#define IDN_NODE_NONE		0xffffffffU
#define IDN_ANY			0xff	/* wildcard tier/policy in a plan key */

/* ------------------------------------------------------------------ */
/* Capability label and request descriptor Q                           */
/* ------------------------------------------------------------------ */

/* 32-bit capability label: 24-bit class, 8-bit variant (0 = any). */
#define IDN_CAP(cls, var)	((((__u32)(cls) & 0xffffffU) << 8) | ((__u32)(var) & 0xffU))
#define IDN_CAP_CLASS(cap)	((__u32)(cap) >> 8)
#define IDN_CAP_VARIANT(cap)	((__u32)(cap) & 0xffU)

/*
 * Policy class p (8 bits):
 *   bits 0-2  minimum trust level a node must have (0..7)
 *   bits 3-4  privacy level (0 public, 1 tenant, 2 confidential, 3 hw-bound);
 *             levels >= 2 need a node with IDN_NODE_F_CONFIDENTIAL
 *   bits 5-6  locality scope (0 any, 1 home domain only, 2 allowed domains
 *             of the plan only, 3 reserved - malformed)
 *   bit  7    reserved, must be zero
 */
#define IDN_POL_TRUST(p)	((p) & 0x7)
#define IDN_POL_PRIVACY(p)	(((p) >> 3) & 0x3)
#define IDN_POL_SCOPE(p)	(((p) >> 5) & 0x3)
#define IDN_POL_RESERVED	0x80
#define IDN_POLICY(trust, priv, scope) \
	((__u8)(((trust) & 0x7) | (((priv) & 0x3) << 3) | (((scope) & 0x3) << 5)))

enum idn_scope {
	IDN_SCOPE_ANY = 0,
	IDN_SCOPE_HOME = 1,	/* node.domain == config.home_domain */
	IDN_SCOPE_PLAN = 2,	/* node.domain in plan.domain_mask */
	IDN_SCOPE_RESERVED = 3,
};

enum idn_privacy {
	IDN_PRIV_PUBLIC = 0,
	IDN_PRIV_TENANT = 1,
	IDN_PRIV_CONFIDENTIAL = 2,
	IDN_PRIV_HW_BOUND = 3,
};

/* idn_desc.flags: which fields the request carried itself */
#define IDN_DF_TOKEN		0x01	/* token from the client (not a hash) */
#define IDN_DF_SIZE		0x02	/* size_class given */
#define IDN_DF_OPT		0x04	/* came with a TCP option */
#define IDN_DF_ADDR6		0x08	/* came in an IPv6 descriptor address */

/*
 * Request descriptor Q = <c, q, p, a, b> plus tenant and a prompt-size
 * class, in host byte order. Built by the parser from one of the three
 * encodings and the VIP's defaults.
 */
struct idn_desc {
	__u64 token;		/* affinity token a */
	__u32 cap;		/* capability label c */
	__u16 budget;		/* cost budget b: max J in units of 100 us, 0 = none */
	__u16 tenant;
	__u8 tier;		/* quality tier q, 0..15 */
	__u8 policy;		/* policy class p */
	__u8 size_class;	/* prompt ~ 256 << size_class tokens, 0..15 */
	__u8 flags;		/* IDN_DF_* */
	__u32 pad;
};

/*
 * Encoding 2: IPv6 descriptor address.
 *   bytes 0-5   operator prefix (/48)
 *   byte  6     version (high nibble, must be IDN_ADDR6_VERSION) | tier (low)
 *   bytes 7-10  capability label, big-endian
 *   byte  11    policy class
 *   bytes 12-15 affinity token (32 bits), big-endian
 * 80 bits do not hold the 84 the brief lists (class 24 + variant 8 + tier 4
 * + policy 8 + token 40): see docs/wire-format.md for why the token keeps
 * 32 bits and a 4-bit version is kept for validation.
 */
#define IDN_ADDR6_PREFIX_LEN	6
#define IDN_ADDR6_VERSION	1
#define IDN_ADDR6_OFF_VT	6
#define IDN_ADDR6_OFF_CAP	7
#define IDN_ADDR6_OFF_POLICY	11
#define IDN_ADDR6_OFF_TOKEN	12

/*
 * Encoding 3: TCP option on SYN (RFC 6994 experimental option).
 *   kind 253, length 20, ExID 0x1D4E, then 16 bytes:
 *   struct idn_tcpopt_body.  All fields big-endian.
 * A default Linux SYN leaves exactly 20 option bytes, so this is the
 * largest option that fits; budget and tenant come from the VIP.
 */
#define IDN_TCPOPT_KIND		253
#define IDN_TCPOPT_EXID		0x1D4E
#define IDN_TCPOPT_LEN		20
#define IDN_TCPOPT_VERSION	1

struct idn_tcpopt {
	__u8 kind;		/* IDN_TCPOPT_KIND */
	__u8 len;		/* IDN_TCPOPT_LEN */
	__be16 exid;		/* IDN_TCPOPT_EXID */
	__u8 ver_tier;		/* version << 4 | tier */
	__u8 policy;
	__u8 size_class;	/* 0..15; 0xff = not given */
	__u8 rsvd;		/* must be zero */
	__be32 cap;		/* 0 = the VIP's capability */
	__be32 token_hi;	/* token, high 32 bits; token 0 = not given */
	__be32 token_lo;	/* (affinity from a hash of the client address) */
};

#define IDN_SIZE_NONE		0xff

/* ------------------------------------------------------------------ */
/* Maps                                                                */
/* ------------------------------------------------------------------ */

/* Address families as stored in keys and node entries. */
#define IDN_AF_INET		4
#define IDN_AF_INET6		6

/* idn_config (ARRAY, 1 entry): router-wide settings. */
#define IDN_CFG_F_DROP_MALFORMED 0x01	/* drop (else pass) malformed IDN traffic */
#define IDN_CFG_F_HOLD		0x02	/* idn.ko loaded: mark demand misses */
#define IDN_CFG_F_NO_RST	0x04	/* reject by drop instead of TCP RST */
#define IDN_CFG_F_TELEMETRY	0x08	/* accept agent telemetry datagrams */
#define IDN_CFG_F_FRAG_DROP	0x10	/* drop (else pass) IPv4/IPv6 fragments */
#define IDN_CFG_F_EXT6_DROP	0x20	/* drop (else pass) IPv6 with extension headers */
#define IDN_CFG_F_EXT6_STEER	0x40	/* steer IPv6 past its extension headers */
#define IDN_CFG_F_PLANS0	0x80	/* plan_bloom[0] describes plan slot 0 */
#define IDN_CFG_F_PLANS1	0x100	/* plan_bloom[1] describes plan slot 1 */

/* The bit of config.plan_bloom[] a capability's specific plans set. */
#define IDN_PLAN_BLOOM_BIT(cap)	(1U << ((__u32)((cap) * 0x9e3779b1U) >> 29))

/*
 * New flows per CPU per coarse second that may create state (conn and
 * affinity entries); above it the flood guard chooses statelessly
 * (docs/architecture.md, "Flood guard"). config.flood_rate 0 means this
 * default, IDN_FLOOD_OFF never guards.
 */
#define IDN_FLOOD_RATE_DEFAULT	20000
#define IDN_FLOOD_OFF		0xffffffffU

struct idn_config {
	__u32 flags;		/* IDN_CFG_F_* */
	__u32 active_slot;	/* plan slot readers use: 0 or 1 */
	__u32 generation;	/* generation of the active slot */
	__u16 home_domain;
	__be16 tele_port;	/* UDP port of telemetry datagrams */
	__be32 src4;		/* outer source for IPIP */
	__u32 src6[4];		/* outer source for IP6IP6 (network order) */
	__u8 prefix6[8];	/* descriptor prefix; first 6 bytes used */
	__u32 prefix6_on;	/* 1 = prefix6 configured */
	__u32 receipt_sample;	/* 0 off, 1 every new flow, N: 1 in N */
	__u32 aff_ttl_s;	/* affinity entries older than this are ignored */
	__u32 flood_rate;	/* new flows per CPU per coarse second, see above */
	__u8 src4_bits;		/* low bits of the IPIP outer source taken from the
				 * inner flow (bpf/lib/rss.h): nodes' RSS spreads
				 * flows; 0 = src4 for every packet */
	__u8 src6_bits;		/* the same for IP6IP6 (<= 32: the last word) */
	/*
	 * Per plan slot, written by idn_plan_commit() with the slot's plans
	 * (before the flip that activates them) and trusted only under
	 * IDN_CFG_F_PLANS0 << slot: bit IDN_PLAN_BLOOM_BIT(cap) is set for
	 * every capability that has a plan of a specific tier or policy in
	 * the slot. A capability whose bit is clear has only its (any, any)
	 * plan there, so a new flow looks up that one plan and not first
	 * the (tier, policy) plan it would miss (bpf/lib/select.h).
	 */
	__u8 plan_bloom[2];
};

/* idn_vips (HASH): VIP:port -> capability and default Q */
struct idn_vip_key {
	__u32 addr[4];		/* network order; IPv4 in addr[0], rest zero */
	__be16 port;
	__u8 proto;		/* IPPROTO_TCP / IPPROTO_UDP */
	__u8 family;		/* IDN_AF_* */
};

#define IDN_VIP_F_RECEIPT	0x01	/* receipt for every new flow */

struct idn_vip {
	struct idn_desc defaults;	/* cap, tier, policy, budget, tenant */
	__u32 flags;		/* IDN_VIP_F_* */
	__u32 pad;
};

/*
 * idn_conns: 5-tuple -> node, so flows survive plan changes (bpf/lib/ctab.h).
 * The destination half (daddr, dport, proto, family) is laid out exactly
 * as struct idn_vip_key, so the dataplane looks a VIP up in place.
 */
struct idn_flow_key {
	__u32 saddr[4];
	__be16 sport;
	__u16 pad;
	__u32 daddr[4];
	__be16 dport;
	__u8 proto;
	__u8 family;
};

/* A connection entry as libidn, the tests and the benchmarks read and write it. */
struct idn_conn {
	__u32 node;
	__u32 generation;	/* plan generation that chose it */
	__u32 cap;
	__u32 pad;
};

/* idn_affinity: (token, capability class) -> node (bpf/lib/ctab.h) */
struct idn_aff_key {
	__u64 token;
	__u32 cls;		/* IDN_CAP_CLASS(cap) */
	__u32 pad;
};

struct idn_aff {
	__u32 node;
	__u32 last_s;		/* coarse seconds of last use, see IDN_COARSE_SHIFT */
};

/*
 * Both tables are set-associative arrays written without locks
 * (docs/architecture.md, "Connection and affinity tables", and
 * bpf/lib/ctab.h). One ARRAY map each, of elements the size of a set:
 *   [0, IDN_*_SETS)           the sets, IDN_*_WAYS ways each
 *   IDN_*_SETS                the header: the table's hash seed (struct
 *                             idn_tab_seed; zero is a valid seed, `idnctl
 *                             dp attach` gives new tables a random one)
 *   IDN_*_SETS + 1 + i / M    the metadata of set i (struct idn_tab_meta,
 *                             M = IDN_*_META_PER per element): a one-byte
 *                             check per way and a use byte per way, so
 *                             that a key that is not in the table costs
 *                             one read of a small, cache-resident array
 * An entry's set is the low bits of a keyed hash of its key; its check
 * byte and the check in its own tag come from the high bits. The tag is
 * authoritative (read once, it holds the check and the node), so a
 * reader that races a writer sees a whole entry or none. Tag 0, check 0:
 * an empty way.
 */
#define IDN_CONN_WAYS		8
#define IDN_CONN_SETS		(IDN_MAX_CONNS / IDN_CONN_WAYS)		/* power of two */
#define IDN_AFF_WAYS		8
#define IDN_AFF_SETS		(IDN_MAX_AFFINITY / IDN_AFF_WAYS)	/* power of two */

struct idn_tab_seed {
	__u32 k[12];		/* hash key words (ctab.h); all zero: fixed constants */
};

/*
 * Metadata of one set: check byte of each way (0: empty), and its use:
 * idn_conns, 1 when the way's flow was used since the set's clock last
 * passed it; idn_affinity, the low byte of the entry's last use (coarse
 * seconds).
 */
struct idn_tab_meta {
	__u8 check[8];
	__u8 use[8];
};

/* One way of idn_conns: a cache line. */
struct idn_conn_slot {
	struct idn_flow_key key;
	__u64 tag;		/* check << 32 | node; 0: empty (the check is odd) */
	__u32 generation;
	__u32 cap;
	__u64 pad;
};

#define IDN_CONN_META_PER	(64 * IDN_CONN_WAYS / 16)	/* sets per metadata element */
#define IDN_CONN_ELEMS		(IDN_CONN_SETS + 1 + IDN_CONN_SETS / IDN_CONN_META_PER)

struct idn_conn_set {
	union {
		struct idn_conn_slot way[IDN_CONN_WAYS];
		struct idn_tab_seed seed;			/* header element */
		struct idn_tab_meta meta[IDN_CONN_META_PER];	/* metadata element */
	};
};

/* One way of idn_affinity: token, and check, node and last use in one word. */
struct idn_aff_slot {
	__u64 token;
	__u64 tag;		/* IDN_AFF_TAG(check, node, last_s); 0: empty */
};

#define IDN_AFF_TAG(check, node, last_s)				\
	((__u64)(check) << 48 | (__u64)((node) & 0xffff) << 32 | (__u32)(last_s))
#define IDN_AFF_TAG_CHECK(t)	((__u32)((t) >> 48))
#define IDN_AFF_TAG_NODE(t)	((__u32)((t) >> 32) & 0xffff)
#define IDN_AFF_TAG_LAST(t)	((__u32)(t))

#define IDN_AFF_META_PER	(16 * IDN_AFF_WAYS / 16)
#define IDN_AFF_ELEMS		(IDN_AFF_SETS + 1 + IDN_AFF_SETS / IDN_AFF_META_PER)

struct idn_aff_set {
	union {
		struct idn_aff_slot way[IDN_AFF_WAYS];
		struct idn_tab_seed seed;
		struct idn_tab_meta meta[IDN_AFF_META_PER];
	};
};

/*
 * idn_plans (HASH, no prealloc): (cap, tier, policy, slot) -> plan.
 * Two slots double-buffer a generation: the controller writes the next
 * generation into the inactive slot, then flips config.active_slot with a
 * single word write; readers read the slot once per packet.
 * Lookup order: (cap, tier, policy), then (cap, IDN_ANY, IDN_ANY).
 */
struct idn_plan_key {
	__u32 cap;
	__u8 tier;
	__u8 policy;
	__u8 slot;
	__u8 pad;
};

/* Per-candidate estimates, microseconds. */
struct idn_cand {
	__u32 node;
	__u32 exec_us;		/* T_exec without the prefill (select.h adds the
				 * request's tokens at node.tok_ns) */
	__u32 state_us;		/* cost of moving the token's state here (migration),
				 * used when cheaper than recomputing it; 0 = none */
	__u16 policy_us;	/* P_policy: soft policy penalty */
	__u8 variant;		/* variant this node runs */
	__u8 pad;
};

/* Weights alpha..zeta of J, Q8.8 fixed point (256 = 1.0). */
enum idn_weight {
	IDN_W_NET = 0,		/* alpha: T_net */
	IDN_W_QUEUE,		/* beta: T_queue */
	IDN_W_EXEC,		/* gamma: T_exec */
	IDN_W_STATE,		/* delta: T_state(a) */
	IDN_W_LOAD,		/* epsilon: C_load (permille as us) */
	IDN_W_POLICY,		/* zeta: P_policy */
	IDN_W_MAX,
};

struct idn_plan {
	__u32 generation;
	__u32 fallback_cap;	/* cheaper variant's plan (ladder step 2), 0 = none */
	__u32 slo_us;		/* J above this makes a candidate overloaded, 0 = none */
	__u32 domain_mask;	/* allowed domains 0..31 for IDN_SCOPE_PLAN */
	__u16 weight[IDN_W_MAX];
	__u8 shed_tier;		/* under overload, tiers below this are shed */
	__u8 n_cand;
	__u16 prompt_tokens;	/* capability's mean prompt, tokens: the work a new
				 * flow without a size class is charged (and
				 * recomputes away from its state); 0 = none */
	__u32 wan_ns_per_byte;	/* T_wan: J's price of a byte that crosses the WAN
				 * (to a node with IDN_NODE_F_WAN), ns per byte of
				 * the request (IDN_WAN_BYTES_PER_TOKEN per prompt
				 * token); 0 = WAN bytes are free */
	struct idn_cand cand[IDN_MAX_CAND];
	/*
	 * Stateless choice of the plan (bpf/lib/stateless.h): bucket b of the
	 * flow hash goes to candidate sl_ring[b] - 1, the candidate with the
	 * highest rendezvous weight for b. A function of cand[] alone, filled
	 * in by the dataplane at a bucket's first use; writers leave it 0.
	 */
	__u8 sl_ring[IDN_SL_RING];
};

/* idn_nodes (ARRAY, IDN_MAX_NODES): node id -> node */
enum idn_health {
	IDN_HEALTH_UNKNOWN = 0,	/* never set: treated as down */
	IDN_HEALTH_UP = 1,
	IDN_HEALTH_DRAIN = 2,	/* keeps its flows, gets no new ones */
	IDN_HEALTH_DOWN = 3,
};

#define IDN_NODE_F_VALID	0x0001
#define IDN_NODE_F_CONFIDENTIAL	0x0002	/* may serve privacy >= confidential */
#define IDN_NODE_F_LOC4		0x0004	/* addr4 is a locator */
#define IDN_NODE_F_LOC6		0x0008	/* addr6 is a locator */
#define IDN_NODE_F_WAN		0x0010	/* outside this router's region: a request's
					 * bytes cross the WAN (plan wan_ns_per_byte) */

/* bytes of text per prompt token that T_wan prices (request size from its tokens) */
#define IDN_WAN_BYTES_PER_TOKEN	4

/*
 * One entry per physical node, dual-stack: a request is sent to the
 * node's locator of its own address family (so inner and outer family
 * agree), and a session's affinity survives a client that moves between
 * IPv4 and IPv6.
 */
struct idn_node {
	__u32 addr6[4];		/* IPv6 locator, network order */
	__be32 addr4;		/* IPv4 locator */
	__u8 trust;		/* 0..7 */
	__u8 health;		/* enum idn_health */
	__u16 domain;		/* 0..31 for plan domain masks */
	__u16 flags;		/* IDN_NODE_F_* */
	__u16 pad0;
	__u32 net_us;		/* T_net from this router */
	__u32 tok_ns;		/* prefill cost per token, for T_queue/T_exec */
	__u32 max_queue;	/* soft limit of queue_depth; 0 = none */
	/* load: written by the controller and by telemetry in XDP */
	__u32 queue_depth;	/* requests waiting or running */
	__u32 pending_tokens;	/* prefill tokens still to process */
	__u16 load;		/* permille */
	__u16 kv_use;		/* permille */
	__u32 tele_seq;		/* last accepted telemetry sequence */
	__u32 tele_s;		/* coarse seconds of last telemetry, 0 = never */
	/*
	 * Written by the dataplane only: prefill tokens of the new flows it
	 * sent here since the node's last accepted telemetry datagram (an
	 * atomic add per decision; the datagram, which counts them itself,
	 * resets it). Part of T_queue, so a burst within one telemetry
	 * interval spreads instead of piling on the node that looked idle.
	 */
	__u32 charged_tokens;
	/* the same flows counted: what this router's share of the node's admissions was */
	__u32 charged_reqs;
	/*
	 * Work other routers send here (docs/architecture.md, "Other routers'
	 * work"), written by the dataplane at each accepted datagram (version
	 * 3: the requests and tokens the node admitted over its last interval,
	 * less this router's charged_reqs): their rate in prefill tokens per
	 * tick (IDN_TICK_SHIFT) << 16, the datagram's arrival tick and its
	 * interval in ticks. T_queue counts others_rate x the ticks since the
	 * datagram, at most others_span: idn_others_tokens() (select.h).
	 */
	__u32 others_rate;
	__u32 tele_tick;
	__u16 others_span;
	__u16 others_carry;	/* of charged_reqs, those the node did not count yet */
};

/*
 * Ticks: CLOCK_MONOTONIC_COARSE (bpf_ktime_get_coarse_ns()) nanoseconds >>
 * IDN_TICK_SHIFT, about 1.05 ms; 32 bits wrap after about 52 days (only
 * differences are used).
 */
#define IDN_TICK_SHIFT		20
/* a telemetry interval in ms as ticks: ms * 10^6 >> IDN_TICK_SHIFT */
#define IDN_MS_TICKS(ms)	((__u32)(((__u64)(ms) * 1000000ULL) >> IDN_TICK_SHIFT))

/*
 * idn_nexthops (ARRAY, 2 * IDN_MAX_NODES, key IDN_NH_KEY): the dataplane's
 * own cache of the FIB result toward each locator of each node (egress
 * device, MACs, MTU), filled on new flows and used by established ones.
 * Writing zeroes invalidates.
 */
#define IDN_NH_KEY(node, v6)	((__u32)(node) * 2 + ((v6) ? 1 : 0))
struct idn_nexthop {
	__u32 ifindex;		/* 0 = not resolved */
	__u16 mtu;
	__u8 smac[6];
	__u8 dmac[6];
	__u16 pad;
	__u32 stamp_s;		/* coarse seconds of resolution */
};

/*
 * TCP timestamp cookie (docs/wire-format.md, "TCP timestamp cookie"): a
 * node's TC egress program (idn_node.bpf.c idn_stamp) rounds the TSval
 * of its IDN connections' segments up to the next value whose low
 * IDN_TS_COOKIE_BITS bits are the node's cookie; the client echoes it in
 * TSecr and the router reads the node of a segment it has no entry for
 * from there. The cookie is the node id itself (ids are below
 * IDN_MAX_NODES = 1 << IDN_TS_COOKIE_BITS). Node side: idn_ts_cfg (ARRAY,
 * 1, __u32 IDN_TS_CFG_ON | cookie; 0: no stamping), idn_ts_addrs (HASH,
 * IDN_TS_ADDRS, struct idn_ts_addr -> __u8): the inner destinations the
 * node decapsulated, whose connections are stamped.
 */
#define IDN_TS_COOKIE_BITS	12
#define IDN_TS_COOKIE_MASK	((1U << IDN_TS_COOKIE_BITS) - 1)
#define IDN_TS_CFG_ON		0x80000000U
#define IDN_TS_ADDRS		4096

struct idn_ts_addr {
	__u32 addr[2];		/* IPv4 address, or the first 64 bits of an IPv6 one */
	__u8 family;		/* IDN_AF_INET / IDN_AF_INET6 */
	__u8 pad[3];
};

/* idn_decap_stats (per-CPU array, the node dataplane): the index of each count */
enum idn_decap_stat {
	IDN_DECAP_OK = 0,	/* decapsulated */
	IDN_DECAP_PASS,		/* not encapsulated: passed */
	IDN_DECAP_BAD,		/* encapsulated but malformed: dropped */
	IDN_DECAP_STAMP,	/* egress: TSval stamped with the cookie */
	IDN_DECAP_HANDOFF,	/* a handed-off connection's packet forwarded */
	IDN_DECAP_HANDOFF_ERR,	/* ... that could not be: dropped */
	IDN_DECAP_MAX,
};

/*
 * Connection hand-off (docs/agent.md "Direct server return of a two-stage
 * request"): a node whose agent handed a client's TCP connection to
 * another node (the decode node of a two-stage request) forwards that
 * connection's packets there. idn_handoff (LRU_HASH, IDN_HANDOFF_MAX,
 * pinned in the node's pin directory): the inner 4-tuple as the client
 * sent it (TCP, IPv4; addresses and ports in network order) -> the node
 * to forward to. idn_decap rewrites the outer header of a hit (source:
 * this node, destination: node4, TTL - 1) and sends it on; a SYN of the
 * tuple deletes the entry (a new connection) and is served here.
 */
#define IDN_HANDOFF_MAX		65536

struct idn_handoff_key {
	__u32 saddr, daddr;	/* client, VIP (network order) */
	__u16 sport, dport;	/* network order */
};

struct idn_handoff_val {
	__u32 node4;		/* the node's IPv4 locator (network order) */
	__u32 pad;
	__u64 packets;		/* forwarded so far */
};

/* ------------------------------------------------------------------ */
/* Verdicts, drop reasons, stats                                       */
/* ------------------------------------------------------------------ */

enum idn_verdict {
	IDN_V_PASS = 0,		/* not IDN traffic */
	IDN_V_CONN,		/* established flow, forwarded by conn table */
	IDN_V_NEW,		/* new flow, forwarded to min-J node */
	IDN_V_AFFINITY,		/* new flow, forwarded to its affinity node */
	IDN_V_FALLBACK,		/* new flow, forwarded to the cheaper variant */
	IDN_V_OVERFLOW,		/* new flow, admitted past soft limits (high tier) */
	IDN_V_SHED,		/* rejected: overload, shed by tier */
	IDN_V_NOCAP,		/* rejected: no capacity left */
	IDN_V_MISS_HOLD,	/* demand miss, marked for idn.ko */
	IDN_V_MISS_REJECT,	/* demand miss, rejected (no module) */
	IDN_V_MALFORMED,	/* malformed IDN traffic (passed or dropped) */
	IDN_V_TELEMETRY,	/* agent telemetry consumed */
	IDN_V_ERROR,		/* encapsulation or forwarding failed */
	IDN_V_MAX,
};

enum idn_drop_reason {
	IDN_DROP_NONE = 0,
	IDN_DROP_TRUNC_L2,	/* short Ethernet/VLAN header */
	IDN_DROP_TRUNC_L3,	/* short IPv4/IPv6 header */
	IDN_DROP_BAD_IP4,	/* bad version/IHL/total length */
	IDN_DROP_IP4_FRAG,	/* IPv4 fragment (MF or offset) */
	IDN_DROP_BAD_IP6,	/* bad version/payload length */
	IDN_DROP_TRUNC_L4,	/* short TCP/UDP header */
	IDN_DROP_BAD_TCP,	/* bad data offset */
	IDN_DROP_BAD_OPT,	/* malformed TCP option list or IDN option */
	IDN_DROP_BAD_OPT_VER,	/* IDN option of unknown version */
	IDN_DROP_BAD_ADDR6,	/* descriptor address: bad version/reserved */
	IDN_DROP_BAD_DESC,	/* descriptor field out of range (tier, policy) */
	IDN_DROP_BAD_TELEMETRY,	/* malformed telemetry datagram */
	IDN_DROP_TELE_SPOOF,	/* telemetry from a source not the node's locator */
	IDN_DROP_TELE_REPLAY,	/* telemetry sequence not newer */
	IDN_DROP_NO_NODE,	/* conn/affinity points at an invalid node */
	IDN_DROP_ENCAP,		/* head room adjust failed */
	IDN_DROP_FIB,		/* no route/neighbour to the node */
	IDN_DROP_MTU,		/* encapsulated packet exceeds the egress MTU */
	IDN_DROP_BAD_FLAGS,	/* TCP flag set no connection sends (SYN+FIN, NULL, ...) */
	IDN_DROP_BAD_UDP,	/* UDP length below 8 or past the datagram */
	IDN_DROP_TTL,		/* IPv4 TTL or IPv6 hop limit 0 */
	IDN_DROP_IP4_CSUM,	/* IPv4 header checksum does not verify */
	IDN_DROP_IP6_FRAG,	/* IPv6 fragment (fragment header) */
	IDN_DROP_IP6_EXT,	/* IPv6 extension headers (not steered by config,
				 * or a chain the parser does not follow) */
	IDN_DROP_VLAN,		/* more than two VLAN tags */
	IDN_DROP_NO_STATE,	/* TCP segment without SYN and no connection entry:
				 * steered without state (or dropped: nowhere) */
	IDN_DROP_FLOOD,		/* new flow above the flood guard rate: chosen
				 * statelessly, no state written */
	IDN_DROP_NODE_DOWN,	/* TCP segment of a connection whose node is down
				 * or gone: reset at once, entry removed */
	IDN_DROP_TS_COOKIE,	/* mid-flow TCP segment without an entry steered
				 * to the node named by its TSecr cookie */
	IDN_DROP_TELE_NOKEY,	/* telemetry for a node with no telemetry key */
	IDN_DROP_TELE_MAC,	/* telemetry MAC does not verify, or another
				 * key generation's (struct idn_tele_key) */
	IDN_DROP_MAX,
};

/* Why a candidate was rejected (receipts). */
enum idn_reject {
	IDN_REJ_NONE = 0,	/* feasible */
	IDN_REJ_NO_NODE,	/* node id not configured */
	IDN_REJ_HEALTH,		/* down, drain or unknown */
	IDN_REJ_TRUST,		/* trust < policy minimum */
	IDN_REJ_PRIVACY,	/* privacy level needs a confidential node */
	IDN_REJ_SCOPE,		/* domain outside the policy scope */
	IDN_REJ_VARIANT,	/* variant differs from the requested one */
	IDN_REJ_FAMILY,		/* node has no locator of the request's family */
	IDN_REJ_OVERLOAD,	/* queue over its soft limit (node.max_queue) */
	IDN_REJ_BUDGET,		/* J over the request's cost budget */
	IDN_REJ_SLO,		/* J (expected TTFT) over the plan's SLO */
	IDN_REJ_NODE_DOWN,	/* the connection's node is down, gone or lost
				 * its locator: the connection was reset
				 * (verdict error, node-down rule) */
	IDN_REJ_MAX,
};

/* idn_stats (PERCPU_ARRAY, IDN_V_MAX) */
struct idn_vstat {
	__u64 packets;
	__u64 bytes;
};

/* idn_drops (PERCPU_ARRAY, IDN_DROP_MAX): one u64 count per reason */

/* idn_node_stats (PERCPU_ARRAY, IDN_MAX_NODES) */
struct idn_nstat {
	__u64 packets;
	__u64 bytes;
	__u64 flows;		/* new flows steered here */
};

/* idn_cap_stats (PERCPU_HASH): cap -> new-flow decisions per verdict */
struct idn_cstat {
	__u64 flows[IDN_V_MAX];
};

/* ------------------------------------------------------------------ */
/* Routing receipt (ring buffer idn_receipts)                          */
/* ------------------------------------------------------------------ */

#define IDN_RECEIPT_VERSION	1

struct idn_rcand {
	__u32 node;
	__u32 cost;		/* J in us (saturated), 0 when rejected early */
	__u8 reject;		/* enum idn_reject */
	__u8 variant;
	__u8 from_fallback;	/* 1 = candidate of the fallback plan */
	__u8 pad;
};

struct idn_receipt {
	__u8 version;		/* IDN_RECEIPT_VERSION */
	__u8 verdict;		/* enum idn_verdict */
	__u8 n_cand;		/* entries used in cand[] */
	__u8 source;		/* IDN_DF_* of the descriptor */
	__u32 generation;
	__u32 node;		/* chosen node or IDN_NODE_NONE */
	__u32 aff_node;		/* affinity node or IDN_NODE_NONE */
	__u64 ktime_ns;
	struct idn_desc desc;
	struct idn_flow_key flow;
	struct idn_rcand cand[IDN_MAX_CAND];
};

/* ------------------------------------------------------------------ */
/* Agent telemetry datagram (UDP to config.tele_port), big-endian      */
/* ------------------------------------------------------------------ */

#define IDN_TELE_MAGIC		0x49444e54	/* "IDNT" */
#define IDN_TELE_VERSION	3	/* 3: admitted work appended (48 bytes) */
#define IDN_TELE_MAC_LEN	8
#define IDN_TELE_MAC_OFF	40	/* version 3: the MAC covers bytes 0 .. 39 */
/*
 * Version 2, still accepted: 40 bytes, the MAC at byte 32 over bytes
 * 0 .. 31 (where version 3 has admit_tokens .. span_ms): no admitted work.
 */
#define IDN_TELE_V2		2
#define IDN_TELE_V2_LEN		40
#define IDN_TELE_V2_MAC_OFF	32

struct idn_telemetry {
	__be32 magic;
	__u8 version;
	__u8 health;		/* enum idn_health; 0 = leave unchanged */
	__be16 pad;
	__be32 node;
	__be32 seq;		/* increasing per node and key (wraps) */
	__be32 queue_depth;
	__be32 pending_tokens;
	__be16 load;		/* permille, <= 1000 */
	__be16 kv_use;		/* permille, <= 1000 */
	__be32 key_id;		/* generation of the node's telemetry key */
	/*
	 * Version 3: what the node admitted since its previous datagram, from
	 * every router (requests and their prompt tokens), over span_ms
	 * milliseconds (0: no previous datagram, nothing to say)
	 */
	__be32 admit_tokens;
	__be16 admit_reqs;
	__be16 span_ms;
	__u8 mac[IDN_TELE_MAC_LEN];	/* SipHash-2-4 of bytes 0..39 under the
					 * node's key, little-endian (as the
					 * reference implementation writes it) */
};

/*
 * idn_tele_keys (ARRAY, IDN_MAX_NODES): node id -> its telemetry key and
 * the replay window under that key (docs/security.md, "Telemetry
 * authentication"). The controller writes k0, k1, key_id and
 * IDN_TKEY_F_VALID (a new generation: seq and IDN_TKEY_F_SEEN zero); the
 * dataplane writes seq and IDN_TKEY_F_SEEN on every accepted datagram.
 */
#define IDN_TKEY_F_VALID	0x1
#define IDN_TKEY_F_SEEN		0x2	/* a datagram was accepted under this key */

struct idn_tele_key {
	__u64 k0, k1;		/* SipHash key: its 16 bytes as two little-endian words */
	__u32 key_id;		/* generation: a datagram's key_id must equal it */
	__u32 flags;		/* IDN_TKEY_F_* */
	__u32 seq;		/* last accepted sequence under this key */
	__u32 pad;
};

/* XDP metadata left for TC / idn.ko on a demand miss (IDN_V_MISS_HOLD). */
#define IDN_META_MAGIC		0x1d4e
struct idn_meta {
	__u16 magic;
	__u8 verdict;
	__u8 pad;
	__u32 cap;
};

/*
 * Dataplane features chosen at load time: the steering object's .rodata
 * holds idn_features (what this load uses) and idn_features_forced_off
 * (what the operator switched off, IDN_DP_DISABLE). A feature the kernel
 * refuses is off, and the verifier never sees its code (docs/architecture.md,
 * "Portability").
 */
#define IDN_FEAT_XDP_META	(1U << 0)	/* held misses carry struct idn_meta from XDP
						 * (bpf_xdp_adjust_meta); off: XDP passes the
						 * miss and TC decides and marks it */
#define IDN_FEAT_ALL		IDN_FEAT_XDP_META

/*
 * Layout of the pinned maps (keys, values, sizes, meaning). Bump it with
 * any change to a pinned map's key or value: `idnctl dp replace` swaps a
 * running program only for one of the same layout, since the new program
 * keeps the old maps (.rodata idn_map_layout of idn_steer).
 */
#define IDN_MAP_LAYOUT		4	/* 2: idn_conns, idn_affinity set-associative; 3: idn_plan.wan_ns_per_byte;
					 * 4: idn_node charged_reqs, others_rate, tele_tick, others_span */

/* skb->mark value set on demand misses in TC: IDN_MARK_MISS | (cap class bits untouched) */
#define IDN_MARK_MISS		0x1d4e0000U
#define IDN_MARK_MASK		0xffff0000U
/*
 * With the mark, TC also sets skb->priority = the full 32-bit capability
 * label of the miss (struct idn_desc cap; from idn_meta.cap when XDP decided
 * the miss). idn.ko queues a marked packet by that capability and resets
 * mark and priority to 0 before re-injecting it.
 */

/*
 * Coarse seconds: CLOCK_MONOTONIC_COARSE (bpf_ktime_get_coarse_ns())
 * nanoseconds >> IDN_COARSE_SHIFT, about 1.07 s; never 0 in the dataplane.
 */
#define IDN_COARSE_SHIFT	30

/* Pinned object names under the bpffs pin directory (default /sys/fs/bpf/idn). */
#define IDN_PIN_DEFAULT		"/sys/fs/bpf/idn"

/* ------------------------------------------------------------------ */
/* Generic netlink family "idn" (kernel/idn.ko): activation hold       */
/* ------------------------------------------------------------------ */

/*
 * Demand misses marked by the dataplane (IDN_MARK_MISS) are held by idn.ko
 * in one bounded queue per capability (cap 0: capability unknown, e.g. a
 * TC-mode miss; see docs/kernel.md). Every held packet ends released
 * (RELEASE), rejected (timeout, overflow, FLUSH, unload: TCP RST or ICMP
 * unreachable) or, when no rejection can be sent, counted as dropped.
 * Numbers in attributes are host order unless the name says otherwise.
 */
#define IDN_FAMILY_NAME		"idn"
#define IDN_FAMILY_VERSION	1
#define IDN_MCGRP_MISS		"miss"		/* IDN_CMD_DEMAND_MISS_NTF */
#define IDN_MCGRP_HOLD		"hold"		/* IDN_CMD_RELEASE_NTF, IDN_CMD_REJECT_NTF */

enum idn_genl_cmd {
	IDN_CMD_UNSPEC,
	IDN_CMD_CONFIG_GET = 1,	/* do: hold limits of this netns */
	IDN_CMD_CONFIG_SET,	/* do: set limits (admin) */
	IDN_CMD_RELEASE,	/* do: CAP or ALL; re-inject held packets (admin) */
	IDN_CMD_FLUSH,		/* do: CAP or ALL; reject held packets (admin) */
	IDN_CMD_STATS_GET,	/* do: netns totals (IDN_A_STATS) */
	IDN_CMD_QUEUE_GET,	/* do: one queue (CAP); dump: every queue */
	/* notifications: their own ids, never requests */
	IDN_CMD_DEMAND_MISS_NTF,	/* group "miss", rate-limited per queue */
	IDN_CMD_RELEASE_NTF,	/* group "hold": CAP, COUNT */
	IDN_CMD_REJECT_NTF,	/* group "hold": CAP, REASON, COUNT */
	__IDN_CMD_MAX,
};
#define IDN_CMD_MAX		(__IDN_CMD_MAX - 1)

enum idn_genl_attr {
	IDN_A_UNSPEC,
	IDN_A_PAD = 1,
	IDN_A_CAP,		/* u32: capability label (0 = unknown) */
	IDN_A_ALL,		/* flag: every queue (RELEASE, FLUSH) */
	IDN_A_MAX_PKTS,		/* u32: packets per queue */
	IDN_A_MAX_BYTES,	/* u32: bytes per queue */
	IDN_A_TIMEOUT_MS,	/* u32: hold time before rejection */
	IDN_A_EVENT_MS,		/* u32: min. interval between a queue's miss events */
	IDN_A_MAX_QUEUES,	/* u32: queues per netns (read only: module parameter) */
	IDN_A_PKTS,		/* u32: packets held now */
	IDN_A_BYTES,		/* u32: bytes held now */
	IDN_A_AGE_MS,		/* u32: age of the oldest held packet */
	IDN_A_COUNT,		/* u32: packets released or rejected by this message */
	IDN_A_REASON,		/* u8: enum idn_hold_reason */
	IDN_A_FAMILY,		/* u8: IDN_AF_INET / IDN_AF_INET6 of the first miss */
	IDN_A_DADDR,		/* binary 4 or 16 bytes, network order */
	IDN_A_DPORT,		/* u16, host order */
	IDN_A_PROTO,		/* u8: IPPROTO_TCP / IPPROTO_UDP / ... */
	IDN_A_IFINDEX,		/* u32: ingress device of the first miss */
	IDN_A_STATS,		/* nest of enum idn_hold_stat (u64 each) */
	__IDN_A_MAX,
};
#define IDN_A_MAX		(__IDN_A_MAX - 1)

enum idn_hold_reason {
	IDN_HOLD_R_NONE,
	IDN_HOLD_R_TIMEOUT = 1,	/* held longer than timeout_ms */
	IDN_HOLD_R_OVERFLOW,	/* queue full (packets or bytes) or no queue left */
	IDN_HOLD_R_FLUSH,	/* IDN_CMD_FLUSH */
	IDN_HOLD_R_UNLOAD,	/* module unloaded / netns gone */
	IDN_HOLD_R_DEVICE,	/* ingress device went away */
	__IDN_HOLD_R_MAX,
};

/* IDN_A_STATS nest (per netns and per queue); all u64 */
enum idn_hold_stat {
	IDN_HS_UNSPEC,
	IDN_HS_PAD = 1,
	IDN_HS_HELD,		/* packets taken into a queue */
	IDN_HS_RELEASED,	/* re-injected into the steering path */
	IDN_HS_REJ_TIMEOUT,	/* rejected after timeout_ms */
	IDN_HS_REJ_OVERFLOW,	/* rejected: queue or queue table full */
	IDN_HS_REJ_FLUSH,	/* rejected by FLUSH or unload */
	IDN_HS_DROPPED,		/* no rejection possible (e.g. device gone): counted drop */
	IDN_HS_EVENTS,		/* demand-miss events sent */
	IDN_HS_EVENTS_LIMITED,	/* demand-miss events suppressed by rate limit */
	__IDN_HS_MAX,
};
#define IDN_HS_MAX		(__IDN_HS_MAX - 1)

/* Size assertions: every consumer includes these via IDN_ASSERT_ABI(). */
#define IDN_ASSERT_SIZE(t, n) _Static_assert(sizeof(t) == (n), #t " size is ABI")
#define IDN_ASSERT_ABI()						\
	IDN_ASSERT_SIZE(struct idn_desc, 24);				\
	IDN_ASSERT_SIZE(struct idn_tcpopt, IDN_TCPOPT_LEN);		\
	IDN_ASSERT_SIZE(struct idn_config, 64);				\
	IDN_ASSERT_SIZE(struct idn_vip_key, 20);			\
	IDN_ASSERT_SIZE(struct idn_vip, 32);				\
	IDN_ASSERT_SIZE(struct idn_flow_key, 40);			\
	IDN_ASSERT_SIZE(struct idn_conn, 16);				\
	IDN_ASSERT_SIZE(struct idn_aff_key, 16);			\
	IDN_ASSERT_SIZE(struct idn_aff, 8);				\
	IDN_ASSERT_SIZE(struct idn_tab_seed, 48);			\
	IDN_ASSERT_SIZE(struct idn_tab_meta, 16);			\
	_Static_assert(IDN_CONN_WAYS == 8 && IDN_AFF_WAYS == 8, "a set's metadata: 8 ways"); \
	IDN_ASSERT_SIZE(struct idn_conn_slot, 64);			\
	IDN_ASSERT_SIZE(struct idn_conn_set, 64 * IDN_CONN_WAYS);	\
	IDN_ASSERT_SIZE(struct idn_aff_slot, 16);			\
	IDN_ASSERT_SIZE(struct idn_aff_set, 16 * IDN_AFF_WAYS);		\
	_Static_assert((IDN_CONN_SETS & (IDN_CONN_SETS - 1)) == 0 &&	\
		       (IDN_AFF_SETS & (IDN_AFF_SETS - 1)) == 0, "sets: a power of two"); \
	_Static_assert(IDN_MAX_NODES <= 0x10000, "an affinity tag holds a node id"); \
	IDN_ASSERT_SIZE(struct idn_plan_key, 8);			\
	IDN_ASSERT_SIZE(struct idn_cand, 16);				\
	IDN_ASSERT_SIZE(struct idn_plan, 36 + 16 * IDN_MAX_CAND + IDN_SL_RING); \
	IDN_ASSERT_SIZE(struct idn_node, 80);				\
	IDN_ASSERT_SIZE(struct idn_nexthop, 24);			\
	IDN_ASSERT_SIZE(struct idn_vstat, 16);				\
	IDN_ASSERT_SIZE(struct idn_nstat, 24);				\
	IDN_ASSERT_SIZE(struct idn_rcand, 12);				\
	IDN_ASSERT_SIZE(struct idn_receipt, 24 + 24 + 40 + 12 * IDN_MAX_CAND); \
	IDN_ASSERT_SIZE(struct idn_telemetry, 48);			\
	IDN_ASSERT_SIZE(struct idn_tele_key, 32);			\
	IDN_ASSERT_SIZE(struct idn_meta, 8);				\
	IDN_ASSERT_SIZE(struct idn_ts_addr, 12);			\
	_Static_assert(IDN_MAX_NODES <= (1U << IDN_TS_COOKIE_BITS),	\
		       "a TS cookie names every node id")

#endif /* _UAPI_LINUX_IDN_H */
