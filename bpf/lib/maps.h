/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * maps.h - every map of the router steering program (BPF only).
 *
 * Keys and values are the structs of <linux/idn.h>; names stay within the
 * kernel's 15 characters and are pinned by name (LIBBPF_PIN_BY_NAME)
 * under the pin directory idnctl chooses (default /sys/fs/bpf/idn), so
 * bpftool and idnctl see the same objects.
 */
#ifndef __IDN_LIB_MAPS_H
#define __IDN_LIB_MAPS_H

#include "lib/compat.h"

/* Router-wide settings; written by idnctl / idnd. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct idn_config);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} idn_config SEC(".maps");

/* VIP:port -> capability and default descriptor. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, IDN_MAX_VIPS);
	__type(key, struct idn_vip_key);
	__type(value, struct idn_vip);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} idn_vips SEC(".maps");

/*
 * 5-tuple -> node: established flows never move. Set-associative, no
 * locks (lib/ctab.h): the sets, a header (the seed), the sets' metadata.
 */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, IDN_CONN_ELEMS);
	__uint(map_flags, BPF_F_MMAPABLE);	/* userspace works in place: ctl/lib/tables.h */
	__type(key, __u32);
	__type(value, struct idn_conn_set);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} idn_conns SEC(".maps");

/* (token, class) -> node holding the session's state; as idn_conns. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, IDN_AFF_ELEMS);
	__uint(map_flags, BPF_F_MMAPABLE);
	__type(key, __u32);
	__type(value, struct idn_aff_set);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} idn_affinity SEC(".maps");

/*
 * (cap, tier, policy, slot) -> plan. No prealloc: an update replaces the
 * element under RCU, so a reader holding the old value never sees it
 * half-written.
 */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 2 * IDN_MAX_PLANS);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct idn_plan_key);
	__type(value, struct idn_plan);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} idn_plans SEC(".maps");

/* Node id -> locator, trust, domain, health, load. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, IDN_MAX_NODES);
	__type(key, __u32);
	__type(value, struct idn_node);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} idn_nodes SEC(".maps");

/* Node id -> its telemetry key and the replay window under it (tele.h). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, IDN_MAX_NODES);
	__type(key, __u32);
	__type(value, struct idn_tele_key);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} idn_tele_keys SEC(".maps");

/* IDN_NH_KEY(node, v6) -> cached FIB result toward that locator. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2 * IDN_MAX_NODES);
	__type(key, __u32);
	__type(value, struct idn_nexthop);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} idn_nexthops SEC(".maps");

/* Packets and bytes per verdict. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, IDN_V_MAX);
	__type(key, __u32);
	__type(value, struct idn_vstat);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} idn_stats SEC(".maps");

/* Count per drop (malformed) reason. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, IDN_DROP_MAX);
	__type(key, __u32);
	__type(value, __u64);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} idn_drops SEC(".maps");

/* Packets, bytes, new flows per node. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, IDN_MAX_NODES);
	__type(key, __u32);
	__type(value, struct idn_nstat);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} idn_node_stats SEC(".maps");

/* New-flow decisions per capability and verdict. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, IDN_MAX_CAPSTATS);
	__type(key, __u32);
	__type(value, struct idn_cstat);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} idn_cap_stats SEC(".maps");

/* Routing receipts, read by idnctl monitor / receipt. */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, IDN_RECEIPT_RING);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} idn_receipts SEC(".maps");

/* Per-CPU scratch where a sampled receipt is assembled. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct idn_receipt);
} idn_rscratch SEC(".maps");

#endif /* __IDN_LIB_MAPS_H */
