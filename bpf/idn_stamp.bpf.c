// SPDX-License-Identifier: GPL-2.0
/*
 * idn_stamp.bpf.c - client side: a cgroup sock_ops program that stamps the
 * IDN TCP option (encoding 3, struct idn_tcpopt) on outgoing SYNs, so
 * unmodified programs carry a request descriptor and an affinity token.
 *
 * Where the descriptor comes from, first match wins:
 *   1. the socket's own storage (idn_stamp_sk), filled by the application
 *      with its socket fd as key after socket() and before connect();
 *   2. the cgroup's default (idn_stamp_conf), set by the loader.
 *
 * Sequence on an active open:
 *   TCP_CONNECT_CB      pick the descriptor (copying the default into the
 *                       socket's storage), enable WRITE_HDR_OPT callbacks
 *   HDR_OPT_LEN_CB      on the SYN: reserve IDN_TCPOPT_LEN bytes; -ENOSPC
 *                       (the SYN has no room left) is counted, the SYN then
 *                       leaves without the option
 *   WRITE_HDR_OPT_CB    on the SYN: write the option
 *   ACTIVE_ESTABLISHED  turn the callbacks off again: data segments pay
 *                       nothing.
 * Loaded once per cgroup (tools/stamp/idn-stamp.c); the socket storage and
 * the counters are shared by every instance through their pins.
 */
#include <linux/bpf.h>
#include <linux/errno.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include <linux/idn.h>
#include "idn_stamp.h"

IDN_ASSERT_ABI();
_Static_assert(sizeof(struct idn_stamp_conf) == 32, "idn_stamp_conf size");

#define TCPHDR_SYN	0x02
#define TCPHDR_ACK	0x10

/* The cgroup's default descriptor (one program instance per cgroup). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct idn_stamp_conf);
} idn_stamp_conf SEC(".maps");

/* Per-socket descriptor: key is the socket fd from userspace. */
struct {
	__uint(type, BPF_MAP_TYPE_SK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct idn_desc);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} idn_stamp_sk SEC(".maps");

/* Counters, enum idn_stamp_stat. Rare events: a shared array will do. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, IDN_STAMP_MAX);
	__type(key, __u32);
	__type(value, __u64);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} idn_stamp_stats SEC(".maps");

static __always_inline void count(__u32 idx)
{
	__u64 *v = bpf_map_lookup_elem(&idn_stamp_stats, &idx);

	if (v)
		__sync_fetch_and_add(v, 1);
}

static __always_inline int is_syn(const struct bpf_sock_ops *skops)
{
	return (skops->skb_tcp_flags & (TCPHDR_SYN | TCPHDR_ACK)) == TCPHDR_SYN;
}

/* TCP_CONNECT_CB: decide whether this connection's SYN carries the option. */
static __always_inline void on_connect(struct bpf_sock_ops *skops)
{
	struct bpf_sock *sk = skops->sk;
	struct idn_stamp_conf *conf;
	struct idn_desc *d;
	__u32 zero = 0;

	if (!sk)
		return;
	d = bpf_sk_storage_get(&idn_stamp_sk, sk, NULL, 0);
	if (d) {
		count(IDN_STAMP_SOCK);
	} else {
		conf = bpf_map_lookup_elem(&idn_stamp_conf, &zero);
		if (!conf || !(conf->flags & IDN_STAMP_F_ON))
			return;
		/* remote_port: network order in the upper 16 bits on old kernels,
		 * lower 16 on new ones; compare both halves. */
		if (conf->dport && conf->dport != (__u16)skops->remote_port &&
		    conf->dport != (__u16)(skops->remote_port >> 16))
			return;
		d = bpf_sk_storage_get(&idn_stamp_sk, sk, &conf->desc,
				       BPF_SK_STORAGE_GET_F_CREATE);
		if (!d)
			return;
		count(IDN_STAMP_DEFAULT);
	}
	count(IDN_STAMP_CONNECT);
	bpf_sock_ops_cb_flags_set(skops, skops->bpf_sock_ops_cb_flags |
				  BPF_SOCK_OPS_WRITE_HDR_OPT_CB_FLAG);
}

/* HDR_OPT_LEN_CB: reserve room in the SYN; a full SYN is counted, not fatal. */
static __always_inline void on_opt_len(struct bpf_sock_ops *skops)
{
	long err;

	if (!is_syn(skops))
		return;
	err = bpf_reserve_hdr_opt(skops, IDN_TCPOPT_LEN, 0);
	if (!err)
		count(IDN_STAMP_RESERVED);
	else if (err == -ENOSPC)
		count(IDN_STAMP_NOSPC);
	else
		count(IDN_STAMP_RESERVE_ERR);
}

/* WRITE_HDR_OPT_CB: encode the socket's descriptor as struct idn_tcpopt. */
static __always_inline void on_write(struct bpf_sock_ops *skops)
{
	struct bpf_sock *sk = skops->sk;
	struct idn_tcpopt opt = {};
	struct idn_desc *d;

	if (!is_syn(skops) || !sk)
		return;
	d = bpf_sk_storage_get(&idn_stamp_sk, sk, NULL, 0);
	if (!d) {
		count(IDN_STAMP_NODESC);
		return;
	}
	opt.kind = IDN_TCPOPT_KIND;
	opt.len = IDN_TCPOPT_LEN;
	opt.exid = bpf_htons(IDN_TCPOPT_EXID);
	opt.ver_tier = (IDN_TCPOPT_VERSION << 4) | (d->tier & 0xf);
	opt.policy = d->policy;
	opt.size_class = (d->flags & IDN_DF_SIZE) ? (d->size_class & 0xf) : IDN_SIZE_NONE;
	opt.cap = bpf_htonl(d->cap);
	opt.token_hi = bpf_htonl((__u32)(d->token >> 32));
	opt.token_lo = bpf_htonl((__u32)d->token);
	if (bpf_store_hdr_opt(skops, &opt, sizeof(opt), 0))
		count(IDN_STAMP_WRITE_ERR);
	else
		count(IDN_STAMP_WRITTEN);
}

SEC("sockops")
int idn_stamp(struct bpf_sock_ops *skops)
{
	switch (skops->op) {
	case BPF_SOCK_OPS_TCP_CONNECT_CB:
		on_connect(skops);
		break;
	case BPF_SOCK_OPS_HDR_OPT_LEN_CB:
		on_opt_len(skops);
		break;
	case BPF_SOCK_OPS_WRITE_HDR_OPT_CB:
		on_write(skops);
		break;
	case BPF_SOCK_OPS_ACTIVE_ESTABLISHED_CB:
		/* Handshake done: no more SYNs, stop paying per segment. */
		bpf_sock_ops_cb_flags_set(skops, skops->bpf_sock_ops_cb_flags &
					  ~BPF_SOCK_OPS_WRITE_HDR_OPT_CB_FLAG);
		break;
	}
	return 1;
}

char LICENSE[] SEC("license") = "GPL";
