// SPDX-License-Identifier: GPL-2.0
/*
 * node.c - idnctl node: the node table idn_nodes (locator, domain, trust,
 * health, load) the selection reads. `node list` is the controller's
 * registry instead (idnd's API, controller.c): profile R, state, last
 * heartbeat, load.
 *
 * A node is dual-stack: one entry with up to two locators, one IPv4 and
 * one IPv6 (`addr` given once per family); a request leaves toward the
 * locator of its own family. A locator that changes gets its idn_nexthops
 * entry (IDN_NH_KEY(id, family)) zeroed, so the dataplane resolves the new
 * locator instead of using a stale FIB result.
 */
#include <stdio.h>
#include <errno.h>

#include "idnctl.h"

static int usage(void)
{
	fprintf(stdout,
"Usage: idnctl node add id ID addr ADDR [ addr ADDR ] [ NODE_ATTRS ]\n"
"       idnctl node { set | change } id ID [ addr ADDR ] [ addr ADDR ] [ NODE_ATTRS ]\n"
"       idnctl node del id ID\n"
"       idnctl node show [ id ID ]\n"
"       idnctl [ -C URL ] node list [ id ID ]\n"
"       idnctl [ -C URL ] node { drain | undrain } ID\n"
"       idnctl [ -C URL ] node approve ID [ KEY ]\n"
"       idnctl [ -C URL ] node trust ID LEVEL [ confidential { on | off } ]\n"
"       idnctl [ -C URL ] node identity [ ID ]\n"
"       idnctl [ -C URL ] node forget ID\n"
"       idnctl node sign { enrol | attest } id ID pubkey KEY key FILE\n"
"                        [ trust 0-7 ] [ confidential ] [ expires SECONDS ]\n"
"       idnctl node sign request id ID key FILE path PATH [ body TEXT ] [ time MS ]\n"
"       idnctl node operator-key FILE\n"
"       idnctl node tele-key id ID [ key HEX32 [ key-id N ] | del ]\n"
"       idnctl node help\n"
"where  ADDR := { IPV4ADDR | IPV6ADDR }, at most one locator of each family\n"
"       NODE_ATTRS := [ domain 0-31 ] [ trust 0-7 ] [ health { up | down | drain } ]\n"
"                     [ confidential { on | off } ] [ wan { on | off } ] [ net-us US ]\n"
"                     [ tok-ns NS ]\n"
"                     [ max-queue N ] [ queue N ] [ pending-tokens N ] [ load PERMILLE ]\n"
"drain (idnd): the node's router entry says health drain (its established flows\n"
"are kept, it gets no new ones), nothing new is placed on it and, with idnd\n"
"--migrate, its sessions' state moves to other nodes; undrain restores it.\n"
"add refuses an existing node, set (change) an absent one; del refuses a node that\n"
"a plan names as candidate. While idnd manages the router (its pin dir claimed),\n"
"add, set and del are refused: idnd owns the node table.\n");
	return EXIT_OK;
}

/* Fields a command gave, applied over an existing or empty entry. */
struct node_args {
	__u32 id;
	bool have_id;
	int n_addr;
	struct idn_addr addr[2];	/* distinct families */
	struct idn_node set;	/* values */
	unsigned int mask;	/* NA_* given */
};

enum {
	NA_DOMAIN = 1 << 0, NA_TRUST = 1 << 1, NA_HEALTH = 1 << 2, NA_CONF = 1 << 3,
	NA_NET = 1 << 4, NA_TOK = 1 << 5, NA_MAXQ = 1 << 6, NA_QUEUE = 1 << 7,
	NA_PEND = 1 << 8, NA_LOAD = 1 << 9, NA_WAN = 1 << 10,
};

static int parse_node(int argc, char **argv, struct node_args *a, bool attrs)
{
	static const struct {
		const char *kw;
		unsigned int bit;
		__u32 max;
	} u32kw[] = {
		{ "domain", NA_DOMAIN, 31 },	/* plan domain masks hold 0..31 */
		{ "trust", NA_TRUST, 7 },
		{ "net-us", NA_NET, UINT32_MAX },
		{ "tok-ns", NA_TOK, UINT32_MAX },
		{ "max-queue", NA_MAXQ, UINT32_MAX },
		{ "queue", NA_QUEUE, UINT32_MAX },
		{ "pending-tokens", NA_PEND, UINT32_MAX },
		{ "load", NA_LOAD, 1000 },
	};
	unsigned int h;
	bool on;

	memset(a, 0, sizeof(*a));
	while (argc > 0) {
		bool done = false;

		if (matches(*argv, "id")) {
			NEXT_ARG();
			if (a->have_id)
				return duparg("id");
			PARSE(idn_parse_u32(*argv, 0, IDN_MAX_NODES - 1, &a->id, "node id"));
			a->have_id = true;
			done = true;
		} else if (attrs && matches(*argv, "addr")) {
			struct idn_addr ad;

			NEXT_ARG();
			PARSE(idn_parse_addr(*argv, &ad));
			for (int i = 0; i < a->n_addr; i++)
				if (a->addr[i].family == ad.family)
					return usage_error("two %s addresses: a node has one locator per family",
							   ad.family == IDN_AF_INET ? "IPv4" : "IPv6");
			a->addr[a->n_addr++] = ad;
			done = true;
		} else if (attrs && matches(*argv, "health")) {
			NEXT_ARG();
			PARSE(idn_name_parse(&idn_health_names, *argv, &h));
			if (h == IDN_HEALTH_UNKNOWN)
				return usage_error("invalid health \"unknown\" (expected up|down|drain)");
			a->set.health = h;
			a->mask |= NA_HEALTH;
			done = true;
		} else if (attrs && matches(*argv, "confidential")) {
			NEXT_ARG();
			PARSE(idn_parse_onoff(*argv, &on, "confidential"));
			a->set.flags = (a->set.flags & ~IDN_NODE_F_CONFIDENTIAL) |
				       (on ? IDN_NODE_F_CONFIDENTIAL : 0);
			a->mask |= NA_CONF;
			done = true;
		} else if (attrs && matches(*argv, "wan")) {
			/* outside this router's region: T_wan prices its bytes */
			NEXT_ARG();
			PARSE(idn_parse_onoff(*argv, &on, "wan"));
			a->set.flags = (a->set.flags & ~IDN_NODE_F_WAN) | (on ? IDN_NODE_F_WAN : 0);
			a->mask |= NA_WAN;
			done = true;
		}
		for (size_t i = 0; attrs && !done && i < ARRAY_SIZE(u32kw); i++) {
			__u32 v;

			if (!matches(*argv, u32kw[i].kw))
				continue;
			NEXT_ARG();
			if (a->mask & u32kw[i].bit)
				return duparg(u32kw[i].kw);
			PARSE(idn_parse_u32(*argv, 0, u32kw[i].max, &v, u32kw[i].kw));
			a->mask |= u32kw[i].bit;
			switch (u32kw[i].bit) {
			case NA_DOMAIN: a->set.domain = v; break;
			case NA_TRUST: a->set.trust = v; break;
			case NA_NET: a->set.net_us = v; break;
			case NA_TOK: a->set.tok_ns = v; break;
			case NA_MAXQ: a->set.max_queue = v; break;
			case NA_QUEUE: a->set.queue_depth = v; break;
			case NA_PEND: a->set.pending_tokens = v; break;
			case NA_LOAD: a->set.load = v; break;
			}
			done = true;
			break;
		}
		if (!done)
			return usage_error("unknown argument \"%s\", try \"idnctl node help\".", *argv);
		argc--;
		argv++;
	}
	return -1;
}

static void apply(struct idn_node *n, const struct node_args *a)
{
	const struct idn_node *s = &a->set;

	for (int i = 0; i < a->n_addr; i++)
		idn_node_set_locator(n, &a->addr[i]);
	if (a->mask & NA_DOMAIN) n->domain = s->domain;
	if (a->mask & NA_TRUST) n->trust = s->trust;
	if (a->mask & NA_HEALTH) n->health = s->health;
	if (a->mask & NA_CONF)
		n->flags = (n->flags & ~IDN_NODE_F_CONFIDENTIAL) |
			   (s->flags & IDN_NODE_F_CONFIDENTIAL);
	if (a->mask & NA_WAN)
		n->flags = (n->flags & ~IDN_NODE_F_WAN) | (s->flags & IDN_NODE_F_WAN);
	if (a->mask & NA_NET) n->net_us = s->net_us;
	if (a->mask & NA_TOK) n->tok_ns = s->tok_ns;
	if (a->mask & NA_MAXQ) n->max_queue = s->max_queue;
	if (a->mask & NA_QUEUE) n->queue_depth = s->queue_depth;
	if (a->mask & NA_PEND) n->pending_tokens = s->pending_tokens;
	if (a->mask & NA_LOAD) n->load = s->load;
}

static int node_add_set(int argc, char **argv, bool add)
{
	const char *cmd = add ? "add" : "set";
	struct node_args a;
	struct idn_node n, old;
	int rc = parse_node(argc, argv, &a, true), err;

	if (rc >= 0)
		return rc;
	rc = refuse_managed(add ? "node add" : "node set");
	if (rc >= 0)
		return rc;
	if (!a.have_id)
		return usage_error("\"id\" missing");
	if (add && !a.n_addr)
		return usage_error("\"addr\" missing (an IPv4 and/or an IPv6 locator)");
	err = idn_node_get(&G.maps, a.id, &old);
	if (err)
		return runtime_error("node %s: %s", cmd, idn_errmsg());
	if (add && (old.flags & IDN_NODE_F_VALID))
		return runtime_error("node add: node %u exists (use node set or node change)", a.id);
	if (!add && !(old.flags & IDN_NODE_F_VALID))
		return runtime_error("node set: node %u does not exist", a.id);
	if (add) {
		memset(&n, 0, sizeof(n));
		n.health = IDN_HEALTH_UP;	/* a new node takes flows unless told */
	} else {
		n = old;
	}
	apply(&n, &a);
	n.flags |= IDN_NODE_F_VALID;
	err = idn_node_put(&G.maps, a.id, &n);
	if (err)
		return runtime_error("node %s: %s", cmd, idn_errmsg());
	/*
	 * ORDER: after the new locator is visible, forget the old next hop of
	 * that family (a new node: both, whatever a previous one left).
	 */
	if (add)
		err = idn_nexthop_clear(&G.maps, a.id, 0);
	for (int i = 0; !add && !err && i < a.n_addr; i++) {
		struct idn_addr was;
		__u8 fam = a.addr[i].family;

		if (idn_node_locator(&old, fam, &was) ||
		    memcmp(was.addr, a.addr[i].addr, sizeof(was.addr)))
			err = idn_nexthop_clear(&G.maps, a.id, fam);
	}
	if (err)
		return runtime_error("node %s: %s", cmd, idn_errmsg());
	return EXIT_OK;
}

static int node_del(int argc, char **argv)
{
	struct node_args a;
	struct idn_node n, z = {};
	struct idn_plan_entry *e = NULL;
	struct idn_config cfg;
	int rc = parse_node(argc, argv, &a, false), err, np;

	if (rc >= 0)
		return rc;
	if (!a.have_id)
		return usage_error("\"id\" missing");
	rc = refuse_managed("node del");
	if (rc >= 0)
		return rc;
	err = idn_node_get(&G.maps, a.id, &n);
	if (err)
		return runtime_error("node del: %s", idn_errmsg());
	if (!(n.flags & IDN_NODE_F_VALID))
		return runtime_error("node del: node %u does not exist", a.id);
	/* a plan's candidate must stay a node: those plans go (or change) first */
	if (idn_config_get(&G.maps, &cfg))
		return runtime_error("node del: %s", idn_errmsg());
	np = idn_plan_list(&G.maps, cfg.active_slot & 1, &e);
	if (np < 0)
		return runtime_error("node del: %s", idn_errmsg());
	for (int i = 0; i < np; i++)
		for (int c = 0; c < e[i].plan.n_cand && c < IDN_MAX_CAND; c++) {
			char kb[160];

			if (e[i].plan.cand[c].node != a.id)
				continue;
			idn_fmt_plan_key(&e[i].key, kb, sizeof(kb));
			free(e);
			return runtime_error("node del: node %u is a candidate of plan %s: "
					     "delete or change that plan first", a.id, kb);
		}
	free(e);
	err = idn_node_put(&G.maps, a.id, &z);
	if (!err)
		err = idn_nexthop_clear(&G.maps, a.id, 0);
	if (err)
		return runtime_error("node del: %s", idn_errmsg());
	return EXIT_OK;
}

static int node_show(int argc, char **argv)
{
	struct node_args a;
	struct idn_node *all;
	int rc = parse_node(argc, argv, &a, false), err;

	if (rc >= 0)
		return rc;
	all = calloc(IDN_MAX_NODES, sizeof(*all));
	if (!all)
		return runtime_error("out of memory");
	err = idn_node_read_all(&G.maps, all);
	if (err) {
		free(all);
		return runtime_error("node show: %s", idn_errmsg());
	}
	if (a.have_id && !(all[a.id].flags & IDN_NODE_F_VALID)) {
		free(all);
		return runtime_error("node show: node %u does not exist", a.id);
	}
	idn_json_begin(true);
	for (__u32 id = 0; id < IDN_MAX_NODES; id++) {
		if (!(all[id].flags & IDN_NODE_F_VALID) || (a.have_id && id != a.id))
			continue;
		open_json_object(NULL);
		print_node_entry(id, &all[id]);
		close_json_object();
		print_nl();
	}
	idn_json_end();
	free(all);
	return EXIT_OK;
}

int do_node(int argc, char **argv)
{
	if (argc < 1)
		return node_show(0, NULL);
	if (matches(*argv, "add"))
		return node_add_set(argc - 1, argv + 1, true);
	if (matches(*argv, "set") || matches(*argv, "change"))
		return node_add_set(argc - 1, argv + 1, false);
	if (matches(*argv, "del"))
		return node_del(argc - 1, argv + 1);
	if (matches(*argv, "show"))
		return node_show(argc - 1, argv + 1);
	if (matches(*argv, "list"))
		return ctl_node_list(argc - 1, argv + 1);
	if (!strcmp(*argv, "drain") || !strcmp(*argv, "undrain"))
		return ctl_node_drain(argc - 1, argv + 1, !strcmp(*argv, "drain"));
	if (matches(*argv, "help"))
		return usage();
	{
		int rc = ctl_node_ident(argc, argv);	/* node_ident.c */

		if (rc >= 0)
			return rc;
	}
	return unknown_cmd("node", *argv);
}
