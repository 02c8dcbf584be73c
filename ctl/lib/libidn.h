/* SPDX-License-Identifier: GPL-2.0 */
/*
 * libidn.h - userspace library of the IDN control tools (idnctl, idnd).
 *
 * What belongs here: name tables of the uapi enums, argument parsers,
 * access to the dataplane's pinned maps, the plan generation swap
 * (idn_plan_commit), the userspace struct idn_env that lets
 * bpf/lib/select.h run in userspace against the live maps, and the
 * generic netlink client of idn.ko (hold.c, libnl-3).
 * What does not: printing (json_print.h, done by the CLI) and exiting.
 *
 * Every function returns 0 (or a count) on success and -errno on failure,
 * leaving a message in idn_errmsg() (log.h).
 */
#ifndef __IDN_CTL_LIBIDN_H
#define __IDN_CTL_LIBIDN_H

#include <stdbool.h>
#include <stddef.h>
#include <limits.h>
#include <linux/types.h>

#include "lib/select.h"		/* struct idn_env, idn_select() */
#include "lib/desc.h"

#include "log.h"

#ifndef ARRAY_SIZE
#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#endif

/* ---- names: one table per enum, used for parsing and printing ---- */

struct idn_names {
	const char *const *name;
	unsigned int n;
	const char *what;	/* for error messages: "verdict", ... */
};

extern const struct idn_names idn_verdict_names;	/* enum idn_verdict */
extern const struct idn_names idn_drop_names;		/* enum idn_drop_reason */
extern const struct idn_names idn_reject_names;	/* enum idn_reject */
extern const struct idn_names idn_health_names;	/* enum idn_health */
extern const struct idn_names idn_privacy_names;	/* enum idn_privacy */
extern const struct idn_names idn_scope_names;		/* enum idn_scope */
extern const struct idn_names idn_weight_names;	/* enum idn_weight */

/* Name of v, or "unknown-N" in a static buffer (never NULL). */
const char *idn_name(const struct idn_names *t, unsigned int v);
/* Exact (full-word) match; -EINVAL with a message listing the choices. */
int idn_name_parse(const struct idn_names *t, const char *s, unsigned int *v);

/* ---- argument parsers (all -EINVAL + message on bad input) ---- */

struct idn_addr {
	__u8 family;		/* IDN_AF_INET / IDN_AF_INET6 */
	__u32 addr[4];		/* network order; IPv4 in addr[0] */
};

int idn_parse_u32(const char *s, __u32 min, __u32 max, __u32 *out, const char *what);
int idn_parse_u64(const char *s, __u64 *out, const char *what);
int idn_parse_onoff(const char *s, bool *on, const char *what);
int idn_parse_addr(const char *s, struct idn_addr *a);
int idn_parse_prefix6(const char *s, __u8 pfx[IDN_ADDR6_PREFIX_LEN]);
/* CLASS[/VARIANT], decimal or 0x hex; class 1..0xffffff, variant 0..255. */
int idn_parse_cap(const char *s, __u32 *cap);
/* IPPROTO_TCP / IPPROTO_UDP from "tcp" / "udp". */
int idn_parse_proto(const char *s, __u8 *proto);
/*
 * idn_parse_policy - policy keywords at argv[0..argc):
 *   trust N | privacy public|tenant|confidential|hw-bound | scope any|home|plan
 * (any order, each at most once), or a raw number 0..0x7f.
 * Return: number of argv entries consumed (>= 1), or -EINVAL.
 */
int idn_parse_policy(int argc, char **argv, __u8 *policy);
/* "a,b,c,d,e,z" decimal weights, 1.0 = 256 (Q8.8), each 0 .. 255.99. */
int idn_parse_weights(const char *s, __u16 w[IDN_W_MAX]);
/* "0,2,5-7" -> bit mask of domains 0..31. */
int idn_parse_domains(const char *s, __u32 *mask);

/* Formatters into caller buffers; return buf. */
char *idn_fmt_cap(__u32 cap, char *buf, size_t len);
char *idn_fmt_policy(__u8 policy, char *buf, size_t len);
char *idn_fmt_addr(__u8 family, const __u32 addr[4], char *buf, size_t len);
char *idn_fmt_domains(__u32 mask, char *buf, size_t len);
const char *idn_proto_name(__u8 proto);

/* ---- pinned maps ---- */

enum idn_map_id {
	IDN_MAP_CONFIG = 0,
	IDN_MAP_VIPS,
	IDN_MAP_CONNS,
	IDN_MAP_AFFINITY,
	IDN_MAP_PLANS,
	IDN_MAP_NODES,
	IDN_MAP_NEXTHOPS,
	IDN_MAP_STATS,
	IDN_MAP_DROPS,
	IDN_MAP_NODE_STATS,
	IDN_MAP_CAP_STATS,
	IDN_MAP_RECEIPTS,
	IDN_MAP_TELE_KEYS,
	IDN_MAP__MAX,
};

/* Map name as in bpf/lib/maps.h (and pin file name). */
const char *idn_map_name(enum idn_map_id id);

struct idn_maps {
	char dir[PATH_MAX];	/* pin directory */
	int fd[IDN_MAP__MAX];	/* -1 until opened */
	int lock_fd;
	int claim_fd;		/* idn_maps_claim(): fd + 1 of the lease, 0 = none */
};

/* Pin dir from $IDN_PIN, else IDN_PIN_DEFAULT. */
const char *idn_pin_dir_default(void);
/* dir NULL: idn_pin_dir_default(). Opens nothing yet. */
void idn_maps_init(struct idn_maps *m, const char *dir);
void idn_maps_close(struct idn_maps *m);
/* fd of a map, opened from DIR/<name> on first use; -errno if absent. */
int idn_map_fd(struct idn_maps *m, enum idn_map_id id);
/* Use an already open map (tests, or a loader holding a skeleton). Takes ownership. */
void idn_maps_set_fd(struct idn_maps *m, enum idn_map_id id, int fd);
/*
 * Number of entries (keys) in a hash map / nonzero entries of arrays /
 * ways in use of the connection and affinity tables.
 */
int idn_map_count(struct idn_maps *m, enum idn_map_id id);
/*
 * Delete every entry of a hash map, or of the connection or affinity
 * table. Return: entries deleted, or -errno.
 */
int idn_map_flush(struct idn_maps *m, enum idn_map_id id);
/*
 * Ownership of a router's plans and node table. idnd (and its router-side
 * watcher, idnd -W) claim the pin dir for their lifetime: an exclusive
 * flock on the directory DIR/IDN_OWNER_LEASE (made on first use; bpffs
 * allows directories), which the kernel drops when the process ends, so
 * a crashed idnd leaves no stale claim. idnctl's hand-made plan and node
 * changes are refused while a live claim exists (docs/operator.md,
 * "Ownership of the maps").
 */
#define IDN_OWNER_LEASE "idnd_owner"	/* bpffs refuses dots in names */
/* Claim @m's pin dir. 0, -EBUSY when another process holds it, -errno. */
int idn_maps_claim(struct idn_maps *m);
/* 1 when a live process (not this one) holds the claim, 0 when none, -errno. */
int idn_maps_managed(struct idn_maps *m);
/* Serialise writers (plan commits) with flock on the pin dir. */
int idn_maps_lock(struct idn_maps *m);
void idn_maps_unlock(struct idn_maps *m);

int idn_config_get(struct idn_maps *m, struct idn_config *cfg);
int idn_config_set(struct idn_maps *m, const struct idn_config *cfg);

struct idn_vip_entry {
	struct idn_vip_key key;
	struct idn_vip vip;
};
void idn_vip_key_make(struct idn_vip_key *k, const struct idn_addr *a, __u16 port, __u8 proto);
/* excl: fail with -EEXIST when present. */
int idn_vip_update(struct idn_maps *m, const struct idn_vip_key *k,
		   const struct idn_vip *v, bool excl);
int idn_vip_get(struct idn_maps *m, const struct idn_vip_key *k, struct idn_vip *v);
int idn_vip_del(struct idn_maps *m, const struct idn_vip_key *k);
/* All VIPs, sorted; *out malloc()ed (free it). Return count. */
int idn_vip_list(struct idn_maps *m, struct idn_vip_entry **out);

int idn_node_get(struct idn_maps *m, __u32 id, struct idn_node *n);
int idn_node_put(struct idn_maps *m, __u32 id, const struct idn_node *n);
/*
 * A node's telemetry key (idn_tele_keys): put writes key and generation
 * with a fresh replay window (seq 0, not seen); key NULL removes it (every
 * datagram of the node then drops as tele-nokey). get: -ENOENT when none.
 */
int idn_tele_key_put(struct idn_maps *m, __u32 id, const __u8 key[16], __u32 key_id);
int idn_tele_key_get(struct idn_maps *m, __u32 id, struct idn_tele_key *k);
/*
 * A node has up to two locators, one per family (IDN_NODE_F_LOC4 addr4,
 * IDN_NODE_F_LOC6 addr6). idn_node_locator: the one of @family into @a,
 * -ENOENT (no message) when the node has none. idn_node_set_locator: set
 * or replace the locator of a's family.
 */
int idn_node_locator(const struct idn_node *n, __u8 family, struct idn_addr *a);
void idn_node_set_locator(struct idn_node *n, const struct idn_addr *a);
/*
 * Zero the node's cached next hop toward its locator of @family
 * (IDN_AF_INET / IDN_AF_INET6; 0: both), e.g. when that locator changed
 * or the node is gone. Key IDN_NH_KEY(id, v6).
 */
int idn_nexthop_clear(struct idn_maps *m, __u32 id, __u8 family);
int idn_nexthop_get(struct idn_maps *m, __u32 id, __u8 family, struct idn_nexthop *nh);
/* All IDN_MAX_NODES entries into out[] (caller array). */
int idn_node_read_all(struct idn_maps *m, struct idn_node *out);

struct idn_plan_entry {
	struct idn_plan_key key;
	struct idn_plan plan;
};
/* Plans of one slot (slot < 0: both), sorted; *out malloc()ed. Return count. */
int idn_plan_list(struct idn_maps *m, int slot, struct idn_plan_entry **out);

/* One change of a plan commit. */
/* what an op that is no delete asks of its key (idnctl plan add/change/replace) */
enum idn_plan_mode {
	IDN_PLAN_SET = 0,	/* add or replace (idnd's compiler, replace) */
	IDN_PLAN_CREATE,	/* only if absent: -EEXIST else (add) */
	IDN_PLAN_CHANGE,	/* only if present: -ENOENT else (change) */
};

struct idn_plan_op {
	bool del;			/* delete key, else per mode */
	__u8 mode;			/* enum idn_plan_mode */
	struct idn_plan_key key;	/* slot ignored */
	struct idn_plan plan;		/* generation ignored */
};

/*
 * idn_plan_commit - publish a new plan generation atomically.
 * Copies every plan of the active slot into the inactive slot with
 * generation config.generation + 1, applies @ops (add/replace/delete; a
 * delete or a change of a key not present fails with -ENOENT, a create of
 * one present with -EEXIST, before anything is written), removes stale entries of the inactive slot, then flips
 * config.active_slot and sets config.generation with one array update:
 * readers see either the whole old or the whole new generation.
 * @gen: new generation out (may be NULL).
 */
int idn_plan_commit(struct idn_maps *m, const struct idn_plan_op *ops, int n_ops,
		    __u32 *gen);

/*
 * One naming of a capability in messages: "CLASS/VARIANT (label L)", L the
 * IDN_CAP() value the API and maps take: printf(IDN_CAP_FMT, IDN_CAP_ARG(c)).
 */
#define IDN_CAP_FMT	"%u/%u (label %u)"
#define IDN_CAP_ARG(c)	IDN_CAP_CLASS(c), IDN_CAP_VARIANT(c), (unsigned int)(c)

/* "cap C/V (label L) tier T policy P" of a plan key, as messages name it */
char *idn_fmt_plan_key(const struct idn_plan_key *k, char *buf, size_t len);

/* Per-CPU stats summed over possible CPUs. */
int idn_vstats_read(struct idn_maps *m, struct idn_vstat out[IDN_V_MAX]);
int idn_drops_read(struct idn_maps *m, __u64 out[IDN_DROP_MAX]);
/* out: IDN_MAX_NODES entries. */
int idn_nstats_read(struct idn_maps *m, struct idn_nstat *out);
/* -ENOENT when the cap has no entry. */
int idn_cstat_read(struct idn_maps *m, __u32 cap, struct idn_cstat *out);
/* Zero idn_stats, idn_drops, idn_node_stats; delete idn_cap_stats entries. */
int idn_stats_reset(struct idn_maps *m);

/* Affinity lookup; -ENOENT if none. */
int idn_aff_get(struct idn_maps *m, __u64 token, __u32 cls, struct idn_aff *a);
/* a new affinity entry (token, cls) -> node, used now; -EEXIST: one is there (kept) */
int idn_aff_seed(struct idn_maps *m, __u64 token, __u32 cls, __u32 node);
/* (token, class) -> node, whatever was there: a migration's destination */
int idn_aff_point(struct idn_maps *m, __u64 token, __u32 cls, __u32 node);
/* Coarse seconds as the dataplane counts them (CLOCK_MONOTONIC_COARSE >> 30). */
__u32 idn_coarse_now(void);
/* the dataplane's ticks: CLOCK_MONOTONIC_COARSE ns >> IDN_TICK_SHIFT */
__u32 idn_tick_now(void);

/* ---- userspace idn_env over a snapshot of the maps ---- */

struct idn_uenv {
	struct idn_env env;		/* pass &u->env to idn_select() */
	struct idn_node *nodes;		/* IDN_MAX_NODES */
	struct idn_plan_entry *plans;	/* both slots */
	int n_plans;
};

int idn_uenv_load(struct idn_maps *m, struct idn_uenv *u);
void idn_uenv_free(struct idn_uenv *u);

/* ---- route get: the dataplane's decision for one descriptor ---- */

#define IDN_RQ_VIP	0x0001	/* vip_key given */
#define IDN_RQ_ADDR6	0x0002	/* addr6 given */
#define IDN_RQ_FROM	0x0004
#define IDN_RQ_CAP	0x0008
#define IDN_RQ_TIER	0x0010
#define IDN_RQ_POLICY	0x0020
#define IDN_RQ_TOKEN	0x0040
#define IDN_RQ_SIZE	0x0080

struct idn_route_req {
	__u32 flags;		/* IDN_RQ_* */
	struct idn_vip_key vip;
	struct idn_addr addr6;
	struct idn_addr from;
	__u32 cap;
	__u8 tier, policy, size_class;
	__u64 token;
};

struct idn_route_res {
	struct idn_receipt rc;	/* verdict, node, generation, desc, flow, cand */
	struct idn_sel sel;
	__u32 slot;
	__u32 drop;		/* enum idn_drop_reason when verdict is malformed */
	bool aff_stale;		/* an affinity entry existed but was older than the TTL */
	bool in_prefix;		/* addr6 inside config.prefix6 */
	bool has_locator;	/* a node was chosen: locator below is set */
	struct idn_addr locator;	/* its locator of the flow's family (outer dst) */
	/* the chosen node's T_queue tokens: this router's charge, the others' estimate */
	__u32 charged_tokens, others_tokens;
};

/*
 * idn_route_get - build the descriptor as the dataplane does (VIP defaults
 * or IPv6 descriptor address, then the request's own fields as a TCP
 * option would carry them, then the address token), look up affinity and
 * run idn_select() with a receipt.
 */
int idn_route_get(struct idn_maps *m, const struct idn_route_req *rq,
		  struct idn_route_res *res);

/* ---- idn.ko: the activation hold, generic netlink family "idn" (hold.c) ---- */

extern const struct idn_names idn_hold_reason_names;	/* enum idn_hold_reason */
extern const struct idn_names idn_hold_stat_names;	/* enum idn_hold_stat */

#include "hold.h"

#endif /* __IDN_CTL_LIBIDN_H */
