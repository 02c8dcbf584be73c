/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * desc.h - the request descriptor Q from its three encodings: VIP
 * defaults, IPv6 descriptor address, TCP option; and its validation.
 *
 * Context-free (see compat.h). Nothing decoded here is trusted before
 * idn_desc_validate() has accepted it.
 */
#ifndef __IDN_LIB_DESC_H
#define __IDN_LIB_DESC_H

#include "lib/compat.h"
#include "lib/parse.h"

/* Affinity token for clients that carry none: a hash of their address. */
IDN_INLINE __u64 idn_addr_token(const struct idn_flow_key *f)
{
	__u64 h = ((__u64)f->saddr[0] << 32) ^ f->saddr[1];

	h = idn_mix64(h ^ idn_mix64(((__u64)f->saddr[2] << 32) ^ f->saddr[3]));
	return h ? h : 1;
}

/* Does an IPv6 destination fall in the configured descriptor prefix? */
IDN_INLINE int idn_addr6_in_prefix(const struct idn_config *cfg,
				   const struct idn_flow_key *f)
{
	const __u8 *a = (const __u8 *)f->daddr;

	if (!cfg->prefix6_on || f->family != IDN_AF_INET6)
		return 0;
	return *(const __u32 *)a == *(const __u32 *)cfg->prefix6 &&
	       *(const __u16 *)(a + 4) == *(const __u16 *)(cfg->prefix6 + 4);
}

/*
 * idn_desc_from_addr6 - decode an IPv6 descriptor address (encoding 2).
 * Return: 0 or IDN_DROP_BAD_ADDR6 for a wrong version.
 */
IDN_INLINE int idn_desc_from_addr6(const struct idn_flow_key *f, struct idn_desc *d)
{
	const __u8 *a = (const __u8 *)f->daddr;
	__u32 cap, tok;

	if ((a[IDN_ADDR6_OFF_VT] >> 4) != IDN_ADDR6_VERSION)
		return IDN_DROP_BAD_ADDR6;
	__builtin_memcpy(&cap, a + IDN_ADDR6_OFF_CAP, 4);
	__builtin_memcpy(&tok, a + IDN_ADDR6_OFF_TOKEN, 4);
	__builtin_memset(d, 0, sizeof(*d));
	d->tier = a[IDN_ADDR6_OFF_VT] & 0xf;
	d->cap = idn_ntohl(cap);
	d->policy = a[IDN_ADDR6_OFF_POLICY];
	d->size_class = 0;
	d->token = idn_ntohl(tok);
	d->flags = IDN_DF_ADDR6;
	if (d->token)
		d->flags |= IDN_DF_TOKEN;
	return 0;
}

/*
 * idn_tcpopt_check - the IDN option's own fields, judged before any
 * table is consulted (strict admission): version, reserved byte, size
 * class, reserved policy bits. Return: 0 or a drop reason.
 */
IDN_INLINE int idn_tcpopt_check(const struct idn_tcpopt *o)
{
	if ((o->ver_tier >> 4) != IDN_TCPOPT_VERSION)
		return IDN_DROP_BAD_OPT_VER;
	if (o->rsvd)
		return IDN_DROP_BAD_OPT;
	if (o->size_class != IDN_SIZE_NONE && o->size_class > 15)
		return IDN_DROP_BAD_DESC;
	if ((o->policy & IDN_POL_RESERVED) ||
	    IDN_POL_SCOPE(o->policy) == IDN_SCOPE_RESERVED)
		return IDN_DROP_BAD_DESC;
	return 0;
}

/*
 * idn_desc_apply_opt - overlay the fields of an IDN TCP option (encoding
 * 3) on a descriptor holding the VIP's or the address's values.
 * Return: 0 or a drop reason (idn_tcpopt_check()).
 */
IDN_INLINE int idn_desc_apply_opt(const struct idn_tcpopt *o, struct idn_desc *d)
{
	__u32 cap = idn_ntohl(o->cap);
	__u64 tok = ((__u64)idn_ntohl(o->token_hi) << 32) | idn_ntohl(o->token_lo);
	int r = idn_tcpopt_check(o);

	if (r)
		return r;
	if (cap)
		d->cap = cap;
	d->tier = o->ver_tier & 0xf;
	d->policy = o->policy;
	if (o->size_class != IDN_SIZE_NONE) {
		d->size_class = o->size_class;
		d->flags |= IDN_DF_SIZE;
	}
	if (tok) {
		d->token = tok;
		d->flags |= IDN_DF_TOKEN;
	}
	d->flags |= IDN_DF_OPT;
	return 0;
}

/* idn_desc_validate - range checks of a decoded descriptor. */
IDN_INLINE int idn_desc_validate(const struct idn_desc *d)
{
	if (d->tier > IDN_TIER_MAX || d->size_class > 15)
		return IDN_DROP_BAD_DESC;
	if ((d->policy & IDN_POL_RESERVED) ||
	    IDN_POL_SCOPE(d->policy) == IDN_SCOPE_RESERVED)
		return IDN_DROP_BAD_DESC;
	if (IDN_CAP_CLASS(d->cap) == 0)
		return IDN_DROP_BAD_DESC;
	return 0;
}

#define IDN_DESC_NOT_IDN (-1)

/*
 * idn_desc_begin - the descriptor's starting values: the VIP's defaults
 * (encoding 1) when @vip is given, else the IPv6 descriptor address
 * (encoding 2) when the destination lies in the configured prefix.
 * The steering program, idnctl route get and the tests all start here.
 * Return: 0, IDN_DESC_NOT_IDN when the packet is not IDN traffic, or a
 * drop reason.
 */
IDN_INLINE int idn_desc_begin(const struct idn_config *cfg, const struct idn_vip *vip,
			      const struct idn_flow_key *f, struct idn_desc *d)
{
	if (vip) {
		*d = vip->defaults;
		d->flags &= ~(IDN_DF_TOKEN | IDN_DF_SIZE | IDN_DF_OPT | IDN_DF_ADDR6);
		return 0;
	}
	if (!idn_addr6_in_prefix(cfg, f))
		return IDN_DESC_NOT_IDN;
	return idn_desc_from_addr6(f, d);
}

/*
 * idn_desc_finish - after the TCP option (encoding 3) was applied: the
 * address token for a client that sent none, then validation.
 * Return: 0 or a drop reason.
 */
IDN_INLINE int idn_desc_finish(const struct idn_flow_key *f, struct idn_desc *d)
{
	if (!(d->flags & IDN_DF_TOKEN))
		d->token = idn_addr_token(f);
	return idn_desc_validate(d);
}

#endif /* __IDN_LIB_DESC_H */
