// SPDX-License-Identifier: GPL-2.0
/*
 * route.c - idn_route_get(): the dataplane's decision for one request,
 * computed with bpf/lib/desc.h and select.h over the live maps.
 *
 * The steps mirror the steering program for a new flow: descriptor from
 * the VIP's defaults or the IPv6 descriptor address, then the fields a TCP
 * option would carry, address token when the client sent none,
 * validation, affinity (with its TTL), selection with a receipt.
 */
#include <errno.h>
#include <string.h>
#include <netinet/in.h>

#include "libidn.h"

/* The request's own fields, carried as the TCP option would carry them. */
static int overlay_opt(const struct idn_route_req *rq, struct idn_desc *d)
{
	struct idn_tcpopt o = {
		.kind = IDN_TCPOPT_KIND,
		.len = IDN_TCPOPT_LEN,
		.exid = htons(IDN_TCPOPT_EXID),
	};
	__u8 tier = rq->flags & IDN_RQ_TIER ? rq->tier : d->tier;

	o.ver_tier = (IDN_TCPOPT_VERSION << 4) | (tier & 0xf);
	o.policy = rq->flags & IDN_RQ_POLICY ? rq->policy : d->policy;
	o.size_class = rq->flags & IDN_RQ_SIZE ? rq->size_class : IDN_SIZE_NONE;
	o.cap = htonl(rq->flags & IDN_RQ_CAP ? rq->cap : 0);
	if (rq->flags & IDN_RQ_TOKEN) {
		o.token_hi = htonl((__u32)(rq->token >> 32));
		o.token_lo = htonl((__u32)rq->token);
	}
	return idn_desc_apply_opt(&o, d);
}

int idn_route_get(struct idn_maps *m, const struct idn_route_req *rq,
		  struct idn_route_res *res)
{
	struct idn_receipt *rc = &res->rc;
	struct idn_desc *d = &rc->desc;
	struct idn_flow_key *f = &rc->flow;
	const struct idn_vip *vp = NULL;
	struct idn_sel_in in = {};
	struct idn_config cfg;
	struct idn_vip vip;
	struct idn_uenv u;
	struct idn_aff aff;
	int err, reason;

	memset(res, 0, sizeof(*res));
	rc->version = IDN_RECEIPT_VERSION;
	rc->node = rc->aff_node = IDN_NODE_NONE;
	res->sel.node = IDN_NODE_NONE;

	if (!(rq->flags & (IDN_RQ_VIP | IDN_RQ_ADDR6)))
		return idn_err(-EINVAL, "route get needs vip ADDR port N proto P or addr6 ADDR");
	err = idn_config_get(m, &cfg);
	if (err)
		return err;
	res->slot = cfg.active_slot & 1;
	rc->generation = cfg.generation;

	if (rq->flags & IDN_RQ_VIP) {
		f->family = rq->vip.family;
		memcpy(f->daddr, rq->vip.addr, sizeof(f->daddr));
		f->dport = rq->vip.port;
		f->proto = rq->vip.proto;
	} else {
		f->family = IDN_AF_INET6;
		memcpy(f->daddr, rq->addr6.addr, sizeof(f->daddr));
		f->proto = IPPROTO_TCP;
	}
	if (rq->flags & IDN_RQ_FROM) {
		if (rq->from.family != f->family)
			return idn_err(-EINVAL, "from address family differs from the destination's");
		memcpy(f->saddr, rq->from.addr, sizeof(f->saddr));
	}

	if (rq->flags & IDN_RQ_VIP) {
		err = idn_vip_get(m, &rq->vip, &vip);
		if (!err)
			vp = &vip;
		else if (err != -ENOENT)
			return err;
		idn_errclear();
	} else if (rq->addr6.family != IDN_AF_INET6) {
		return idn_err(-EINVAL, "addr6 needs an IPv6 address");
	}
	/* Encoding 1 or 2: where the defaults come from, as the dataplane does. */
	res->in_prefix = !vp && idn_addr6_in_prefix(&cfg, f);
	reason = idn_desc_begin(&cfg, vp, f, d);
	if (reason == IDN_DESC_NOT_IDN) {
		rc->verdict = IDN_V_PASS;	/* not IDN traffic */
		return 0;
	}
	if (reason)
		goto malformed;
	/* Encoding 3: what the client itself sent. */
	if (rq->flags & (IDN_RQ_CAP | IDN_RQ_TIER | IDN_RQ_POLICY | IDN_RQ_TOKEN | IDN_RQ_SIZE)) {
		reason = overlay_opt(rq, d);
		if (reason)
			goto malformed;
	}
	reason = idn_desc_finish(f, d);
	rc->source = d->flags;
	if (reason)
		goto malformed;

	/* Affinity, ignored when older than the configured TTL. */
	err = idn_aff_get(m, d->token, IDN_CAP_CLASS(d->cap), &aff);
	if (!err) {
		if (cfg.aff_ttl_s && (__u32)(idn_coarse_now() - aff.last_s) > cfg.aff_ttl_s)
			res->aff_stale = true;
		else
			rc->aff_node = aff.node;
	} else if (err != -ENOENT) {
		return err;
	}
	idn_errclear();

	err = idn_uenv_load(m, &u);
	if (err)
		return err;
	idn_sel_in_init(&in, d, rc->aff_node, cfg.active_slot, cfg.home_domain, f->family,
			idn_tick_now());
	idn_select(&u.env, &in, &res->sel, rc);
	/* the outer destination: the chosen node's locator of the flow's family */
	if (res->sel.node < IDN_MAX_NODES &&
	    !idn_node_locator(&u.nodes[res->sel.node], f->family, &res->locator))
		res->has_locator = true;
	if (res->sel.node < IDN_MAX_NODES) {
		res->charged_tokens = u.nodes[res->sel.node].charged_tokens;
		res->others_tokens = idn_others_tokens(&u.nodes[res->sel.node], in.now_tick);
	}
	idn_uenv_free(&u);

	rc->verdict = res->sel.verdict;
	if (rc->verdict == IDN_V_MISS_REJECT && (cfg.flags & IDN_CFG_F_HOLD))
		rc->verdict = IDN_V_MISS_HOLD;
	res->sel.verdict = rc->verdict;
	rc->node = res->sel.node;
	rc->n_cand = res->sel.n_rc;
	if (res->sel.generation)
		rc->generation = res->sel.generation;
	return 0;

malformed:
	rc->verdict = IDN_V_MALFORMED;
	rc->source = d->flags;
	res->drop = reason;
	return 0;
}
