// SPDX-License-Identifier: GPL-2.0
/*
 * plans.c - the plans and node entries a router would hold, from idnd's
 * own code: ctl/idnd/model.c is compiled in (as unit_idnd_compile does),
 * the capability and the nodes are registered from the JSON bodies idnd's
 * API takes (with its defaults), the placement puts the capability on
 * every node, idnd_plans_build() compiles the plans and idnd_node_push()
 * writes each node entry - into the simulator's table instead of a BPF
 * map (the map calls below are that table).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../ctl/idnd/model.c"
#include "eval.h"

IDN_ASSERT_ABI();

struct idnd D;

static struct idn_node *ev_nodes;	/* where idnd_node_push writes */

/* ---- what model.c calls elsewhere in idnd / libidn ---- */
double idnd_now(void) { return 0; }
void idnd_orders_diff(const struct d_place *o, int no, const struct d_place *n, int nn) {}
int idnd_store_gen(uint32_t gen) { return 0; }
int idnd_dist_publish(const struct idn_plan_op *ops, int n_ops, uint32_t gen) { return 0; }
void idnd_dist_aff_seeds(const struct idnd_aff_seed *s, size_t n) {}
/* fed.c: one domain in the simulator, no peer offers candidates */
int idnd_fed_cands(const struct d_cap *c, const struct d_policy *pol, struct idn_plan *pl)
{
	return 0;
}
bool idnd_fed_any(uint32_t label) { return false; }
/* audit.c, libidn's args.c: the takeover log of idnd_compile(), not reached here */
void idnd_audit(const char *who, const char *method, const char *what, unsigned int status,
		const char *body, size_t len) {}
char *idn_fmt_plan_key(const struct idn_plan_key *k, char *buf, size_t len)
{
	snprintf(buf, len, "cap %u/%u", IDN_CAP_CLASS(k->cap), IDN_CAP_VARIANT(k->cap));
	return buf;
}
int idn_config_get(struct idn_maps *m, struct idn_config *cfg) { return -ENOSYS; }
/* libidn's clock: idnd_pd_pick() reads it; the simulator picks P/D's
 * stage 2 itself in emulated ticks (sim.c), so it is not reached */
__u32 idn_tick_now(void) { return 0; }
int idn_plan_list(struct idn_maps *m, int slot, struct idn_plan_entry **out) { return -ENOSYS; }
int idn_plan_commit(struct idn_maps *m, const struct idn_plan_op *ops, int n, __u32 *gen)
{
	return -ENOSYS;
}
int idn_node_get(struct idn_maps *m, __u32 id, struct idn_node *n)
{
	if (!ev_nodes || id >= IDN_MAX_NODES)
		return -ENOENT;
	*n = ev_nodes[id];
	return 0;
}
int idn_node_put(struct idn_maps *m, __u32 id, const struct idn_node *n)
{
	if (!ev_nodes || id >= IDN_MAX_NODES)
		return -ENOENT;
	ev_nodes[id] = *n;
	return 0;
}
/* idnd_aff_seeds() writes the simulator's affinity table through this */
static int (*aff_put)(void *priv, uint64_t token, uint32_t cls, uint32_t node);
static void *aff_priv;
int idn_aff_seed(struct idn_maps *m, __u64 token, __u32 cls, __u32 node)
{
	return aff_put ? aff_put(aff_priv, token, cls, node) : -ENOSYS;
}

int ev_idnd_seed(const struct ev_aff_desc *d, size_t n,
		 int (*put)(void *priv, uint64_t token, uint32_t cls, uint32_t node), void *priv)
{
	struct idnd_aff_desc *c = n ? calloc(n, sizeof(*c)) : NULL;
	int ret;

	if (n && !c)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++)
		c[i] = (struct idnd_aff_desc){ .token = d[i].token, .hits = d[i].hits,
					       .blocks = d[i].blocks, .value = d[i].value_us,
					       .node = d[i].node };
	aff_put = put;
	aff_priv = priv;
	D.have_maps = true;	/* its "router": the simulator's table, through aff_put */
	ret = idnd_aff_seeds_from(c, n);
	D.have_maps = false;
	aff_put = NULL;
	free(c);
	return ret;
}
static char errbuf[256];
const char *idn_errmsg(void) { return errbuf; }
int idn_err(int err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(errbuf, sizeof(errbuf), fmt, ap);
	va_end(ap);
	return err;
}
void idn_log(enum idn_log_level lvl, const char *fmt, ...) {}

static void registry_reset(void)
{
	free(D.caps);
	free(D.place);
	memset(&D, 0, sizeof(D));
}

int ev_idnd_build(const char *cap_json, struct json_object **node_bodies, int n,
		  int router_region, struct idn_node *nodes, struct ev_plan **plans,
		  struct idn_plan *stage2, char *err, size_t errlen)
{
	struct idn_plan_op *ops = NULL;
	json_object *o;
	struct d_cap c;
	int ret;

	*plans = NULL;
	registry_reset();
	D.loop_region = router_region;	/* idnd -R: the node entries carry T_net from it */
	o = json_tokener_parse(cap_json);
	ret = o ? idnd_cap_from_json(o, &c, err, errlen) : -EINVAL;
	json_object_put(o);
	if (!o)
		snprintf(err, errlen, "capability: not JSON");
	if (ret)
		return ret;
	ret = idnd_cap_put(&c);
	if (ret) {
		snprintf(err, errlen, "capability: %s", idn_errmsg());
		return ret;
	}
	memset(nodes, 0, sizeof(*nodes) * IDN_MAX_NODES);
	ev_nodes = nodes;
	D.have_maps = true;	/* idnd_node_push writes through idn_node_put above */
	D.place = calloc(n ? n : 1, sizeof(*D.place));
	if (!D.place)
		return -ENOMEM;
	for (int i = 0; i < n; i++) {
		struct d_node dn;

		ret = idnd_node_from_json(node_bodies[i], &dn, err, errlen);
		if (ret)
			return ret;
		dn.up = true;	/* its heartbeat arrived */
		D.nodes[dn.id] = dn;
		ret = idnd_node_push(&D.nodes[dn.id]);
		if (ret) {
			snprintf(err, errlen, "node %u: push failed", dn.id);
			return ret;
		}
		D.place[D.n_place++] = (struct d_place){ c.label, dn.id };
	}
	ret = idnd_plans_build(&ops);
	if (ret < 0)
		snprintf(err, errlen, "plan compile: %s", idn_errmsg());
	if (ret > 0) {
		*plans = calloc(ret, sizeof(**plans));
		if (!*plans)
			ret = -ENOMEM;
		for (int i = 0; *plans && i < ret; i++) {
			(*plans)[i].key = ops[i].key;
			(*plans)[i].plan = ops[i].plan;
		}
	}
	free(ops);
	if (ret >= 0 && stage2 && idnd_pd_stage2(c.label, NULL, stage2) == -ENOMEM)
		ret = -ENOMEM;
	ev_nodes = NULL;
	D.have_maps = false;
	return ret;
}
