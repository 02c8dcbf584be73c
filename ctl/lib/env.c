// SPDX-License-Identifier: GPL-2.0
/*
 * env.c - struct idn_env for userspace: bpf/lib/select.h reads nodes and
 * plans through it, here from a snapshot of the pinned maps, so that
 * `idnctl route get` runs the selection code the kernel runs.
 *
 * A snapshot (rather than live lookups) keeps the pointers select.h holds
 * stable and the decision consistent within one call.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "libidn.h"

static const struct idn_node *uenv_node(void *priv, __u32 id)
{
	struct idn_uenv *u = priv;

	return id < IDN_MAX_NODES ? &u->nodes[id] : NULL;
}

static const struct idn_plan *uenv_plan(void *priv, const struct idn_plan_key *k)
{
	struct idn_uenv *u = priv;

	for (int i = 0; i < u->n_plans; i++) {
		const struct idn_plan_key *p = &u->plans[i].key;

		if (p->cap == k->cap && p->tier == k->tier && p->policy == k->policy &&
		    p->slot == k->slot)
			return &u->plans[i].plan;
	}
	return NULL;
}

int idn_uenv_load(struct idn_maps *m, struct idn_uenv *u)
{
	int err;

	memset(u, 0, sizeof(*u));
	u->nodes = calloc(IDN_MAX_NODES, sizeof(*u->nodes));
	if (!u->nodes)
		return idn_err(-ENOMEM, "out of memory");
	err = idn_node_read_all(m, u->nodes);
	if (err)
		goto fail;
	err = idn_plan_list(m, -1, &u->plans);
	if (err < 0)
		goto fail;
	u->n_plans = err;
	u->env.node = uenv_node;
	u->env.plan = uenv_plan;
	u->env.priv = u;
	return 0;
fail:
	idn_uenv_free(u);
	return err;
}

void idn_uenv_free(struct idn_uenv *u)
{
	free(u->nodes);
	free(u->plans);
	memset(u, 0, sizeof(*u));
}
