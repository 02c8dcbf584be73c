// SPDX-License-Identifier: GPL-2.0
/*
 * plan.c - idnctl plan: plan entries (cap, tier, policy) -> candidates,
 * weights and ladder settings. Every add or del is one committed
 * generation through idn_plan_commit() (double-buffered slots).
 */
#include <stdio.h>
#include <errno.h>

#include "idnctl.h"

static int usage(void)
{
	fprintf(stdout,
"Usage: idnctl plan { add | change | replace } cap CAP [ tier { TIER | any } ]\n"
"                       [ policy { POLICY | any } ]\n"
"                       [ fallback CAP ] [ slo-us US ] [ shed-tier TIER ]\n"
"                       [ prompt-tokens N ] [ wan-ns-per-byte NS ] [ domains LIST ]\n"
"                       [ weights W,W,W,W,W,W ] [ CAND ]...\n"
"       idnctl plan del cap CAP [ tier { TIER | any } ] [ policy { POLICY | any } ]\n"
"       idnctl plan show [ cap CAP ]\n"
"       idnctl plan help\n"
"where  CAND := cand node ID exec-us US [ state-us US ] [ policy-us US ] [ variant 0-255 ]\n"
"       POLICY := [ trust 0-7 ] [ privacy { public | tenant | confidential | hw-bound } ]\n"
"                 [ scope { any | home | plan } ]\n"
"       LIST := domains 0-31 as in 0,2,5-7\n"
"       W := weights of net,queue,exec,state,load,policy; decimal, 1.0 = 256 (Q8.8)\n"
"add refuses an existing plan, change an absent one; replace takes both. Every\n"
"candidate must be a node (idnctl node add) and a fallback a capability with a\n"
"plan; del refuses a plan another falls back to. While idnd manages the router\n"
"(its pin dir claimed), plans are idnd's: add, change, replace and del are refused.\n");
	return EXIT_OK;
}

struct plan_args {
	struct idn_plan_op op;
	bool have_cap, have_plan_attr;
};

static int parse_plan(int argc, char **argv, struct plan_args *a, bool add)
{
	struct idn_plan *p = &a->op.plan;
	struct idn_cand *c = NULL;
	bool c_node = false, c_exec = false;
	__u32 v;

	memset(a, 0, sizeof(*a));
	a->op.key.tier = IDN_ANY;
	a->op.key.policy = IDN_ANY;
	for (int w = 0; w < IDN_W_MAX; w++)
		p->weight[w] = 256;

	while (argc > 0) {
		if (matches(*argv, "cap")) {
			NEXT_ARG();
			if (a->have_cap)
				return duparg("cap");
			PARSE(idn_parse_cap(*argv, &a->op.key.cap));
			a->have_cap = true;
		} else if (matches(*argv, "tier")) {
			NEXT_ARG();
			if (matches(*argv, "any")) {
				a->op.key.tier = IDN_ANY;
			} else {
				PARSE(idn_parse_u32(*argv, 0, IDN_TIER_MAX, &v, "tier"));
				a->op.key.tier = v;
			}
		} else if (matches(*argv, "policy")) {
			NEXT_ARG();
			if (matches(*argv, "any")) {
				a->op.key.policy = IDN_ANY;
			} else {
				int n = idn_parse_policy(argc, argv, &a->op.key.policy);

				if (n < 0)
					return invarg();
				argc -= n - 1;
				argv += n - 1;
			}
		} else if (!add) {
			return usage_error("unknown argument \"%s\", try \"idnctl plan help\".", *argv);
		} else if (matches(*argv, "fallback")) {
			NEXT_ARG();
			PARSE(idn_parse_cap(*argv, &p->fallback_cap));
		} else if (matches(*argv, "slo-us")) {
			NEXT_ARG();
			PARSE(idn_parse_u32(*argv, 0, UINT32_MAX, &p->slo_us, "slo-us"));
		} else if (matches(*argv, "shed-tier")) {
			NEXT_ARG();
			PARSE(idn_parse_u32(*argv, 0, IDN_TIER_MAX + 1, &v, "shed-tier"));
			p->shed_tier = v;
		} else if (matches(*argv, "prompt-tokens")) {
			NEXT_ARG();
			PARSE(idn_parse_u32(*argv, 0, 65535, &v, "prompt-tokens"));
			p->prompt_tokens = v;
		} else if (matches(*argv, "wan-ns-per-byte")) {
			NEXT_ARG();
			PARSE(idn_parse_u32(*argv, 0, UINT32_MAX, &p->wan_ns_per_byte,
					    "wan-ns-per-byte"));
		} else if (matches(*argv, "domains")) {
			NEXT_ARG();
			PARSE(idn_parse_domains(*argv, &p->domain_mask));
		} else if (matches(*argv, "weights")) {
			NEXT_ARG();
			PARSE(idn_parse_weights(*argv, p->weight));
		} else if (matches(*argv, "cand")) {
			if (c && (!c_node || !c_exec))
				return usage_error("cand needs node ID and exec-us US");
			if (p->n_cand >= IDN_MAX_CAND)
				return usage_error("too many candidates (max %d)", IDN_MAX_CAND);
			c = &p->cand[p->n_cand++];
			c_node = c_exec = false;
		} else if (c && matches(*argv, "node")) {
			NEXT_ARG();
			if (c_node)
				return duparg("node");
			PARSE(idn_parse_u32(*argv, 0, IDN_MAX_NODES - 1, &c->node, "node id"));
			c_node = true;
		} else if (c && matches(*argv, "exec-us")) {
			NEXT_ARG();
			PARSE(idn_parse_u32(*argv, 0, UINT32_MAX, &c->exec_us, "exec-us"));
			c_exec = true;
		} else if (c && matches(*argv, "state-us")) {
			NEXT_ARG();
			PARSE(idn_parse_u32(*argv, 0, UINT32_MAX, &c->state_us, "state-us"));
		} else if (c && matches(*argv, "policy-us")) {
			NEXT_ARG();
			PARSE(idn_parse_u32(*argv, 0, 65535, &v, "policy-us"));
			c->policy_us = v;
		} else if (c && matches(*argv, "variant")) {
			NEXT_ARG();
			PARSE(idn_parse_u32(*argv, 0, 255, &v, "variant"));
			c->variant = v;
		} else {
			return usage_error("unknown argument \"%s\", try \"idnctl plan help\".", *argv);
		}
		argc--;
		argv++;
	}
	if (c && (!c_node || !c_exec))
		return usage_error("cand needs node ID and exec-us US");
	if (!a->have_cap)
		return usage_error("\"cap\" missing");
	if (p->fallback_cap == a->op.key.cap)
		return usage_error("fallback must differ from the plan's capability");
	return -1;
}

/*
 * References of a plan to write: every candidate a node of idn_nodes, a
 * fallback a capability with a plan (ladder step 2 looks its plan up).
 */
static int check_refs(const struct plan_args *a, const char *cmd,
		      const struct idn_plan_entry *cur, int n_cur)
{
	const struct idn_plan *p = &a->op.plan;
	char cb[32];
	bool found = false;

	for (int i = 0; i < p->n_cand; i++) {
		struct idn_node n;

		if (idn_node_get(&G.maps, p->cand[i].node, &n))
			return runtime_error("plan %s: %s", cmd, idn_errmsg());
		if (!(n.flags & IDN_NODE_F_VALID))
			return runtime_error("plan %s: candidate node %u does not exist "
					     "(idnctl node add id %u ...)", cmd,
					     p->cand[i].node, p->cand[i].node);
	}
	if (!p->fallback_cap)
		return -1;
	for (int i = 0; i < n_cur && !found; i++)
		found = cur[i].key.cap == p->fallback_cap;
	if (!found)
		return runtime_error("plan %s: fallback capability %s (label %u) has no plan: "
				     "add its plan first", cmd,
				     idn_fmt_cap(p->fallback_cap, cb, sizeof(cb)), p->fallback_cap);
	return -1;
}

/* a plan another falls back to stays while its last plan is the target */
static int check_del(const struct plan_args *a, const struct idn_plan_entry *cur, int n_cur)
{
	__u32 cap = a->op.key.cap;
	char cb[32], kb[160];
	int left = 0;

	for (int i = 0; i < n_cur; i++)
		if (cur[i].key.cap == cap && (cur[i].key.tier != a->op.key.tier ||
					      cur[i].key.policy != a->op.key.policy))
			left++;	/* another (tier, policy) of the same capability */
	if (left)
		return -1;
	for (int i = 0; i < n_cur; i++)
		if (cur[i].plan.fallback_cap == cap && cur[i].key.cap != cap)
			return runtime_error("plan del: plan %s falls back to capability %s "
					     "(label %u), its last plan: change that plan first",
					     idn_fmt_plan_key(&cur[i].key, kb, sizeof(kb)),
					     idn_fmt_cap(cap, cb, sizeof(cb)), cap);
	return -1;
}

static int plan_commit_one(struct plan_args *a, const char *cmd, __u8 mode)
{
	struct idn_plan_entry *cur = NULL;
	struct idn_config cfg;
	int n_cur, rc, err;
	__u32 gen;

	rc = refuse_managed(!strcmp(cmd, "add") ? "plan add" : !strcmp(cmd, "del") ? "plan del" :
			    !strcmp(cmd, "change") ? "plan change" : "plan replace");
	if (rc >= 0)
		return rc;
	if (idn_config_get(&G.maps, &cfg))
		return runtime_error("plan %s: %s", cmd, idn_errmsg());
	n_cur = idn_plan_list(&G.maps, cfg.active_slot & 1, &cur);
	if (n_cur < 0)
		return runtime_error("plan %s: %s", cmd, idn_errmsg());
	rc = a->op.del ? check_del(a, cur, n_cur) : check_refs(a, cmd, cur, n_cur);
	free(cur);
	if (rc >= 0)
		return rc;
	a->op.mode = mode;
	err = idn_plan_commit(&G.maps, &a->op, 1, &gen);
	if (err == -EEXIST)
		return runtime_error("plan %s: %s (use \"plan replace\" or \"plan change\")",
				     cmd, idn_errmsg());
	if (err)
		return runtime_error("plan %s: %s", cmd, idn_errmsg());
	pr_info("plan %s: generation %u\n", cmd, gen);
	if (is_json_context()) {
		idn_json_begin(false);
		print_uint(PRINT_JSON, "generation", NULL, gen);
		idn_json_end();
	}
	return EXIT_OK;
}

static int plan_write(int argc, char **argv, const char *cmd, __u8 mode)
{
	struct plan_args a;
	int rc = parse_plan(argc, argv, &a, true);

	if (rc >= 0)
		return rc;
	return plan_commit_one(&a, cmd, mode);
}

static int plan_del(int argc, char **argv)
{
	struct plan_args a;
	int rc = parse_plan(argc, argv, &a, false);

	if (rc >= 0)
		return rc;
	a.op.del = true;
	return plan_commit_one(&a, "del", IDN_PLAN_SET);
}

static int plan_show(int argc, char **argv)
{
	struct idn_plan_entry *e = NULL;
	struct idn_config cfg;
	__u32 cap = 0;
	int n;

	while (argc > 0) {
		if (matches(*argv, "cap")) {
			NEXT_ARG();
			PARSE(idn_parse_cap(*argv, &cap));
		} else {
			return usage_error("unknown argument \"%s\", try \"idnctl plan help\".", *argv);
		}
		argc--;
		argv++;
	}
	if (idn_config_get(&G.maps, &cfg))
		return runtime_error("plan show: %s", idn_errmsg());
	n = idn_plan_list(&G.maps, cfg.active_slot & 1, &e);
	if (n < 0)
		return runtime_error("plan show: %s", idn_errmsg());
	idn_json_begin(false);
	print_uint(PRINT_ANY, "generation", "generation %u ", cfg.generation);
	print_uint(PRINT_ANY, "active_slot", "active-slot %u", cfg.active_slot);
	print_nl();
	open_json_array(PRINT_JSON, "plans");
	for (int i = 0; i < n; i++) {
		if (cap && e[i].key.cap != cap)
			continue;
		open_json_object(NULL);
		print_plan_entry(&e[i]);
		close_json_object();
		print_nl();
	}
	close_json_array(PRINT_JSON, NULL);
	idn_json_end();
	free(e);
	return EXIT_OK;
}

int do_plan(int argc, char **argv)
{
	if (argc < 1)
		return plan_show(0, NULL);
	if (matches(*argv, "add"))
		return plan_write(argc - 1, argv + 1, "add", IDN_PLAN_CREATE);
	if (matches(*argv, "change"))
		return plan_write(argc - 1, argv + 1, "change", IDN_PLAN_CHANGE);
	if (matches(*argv, "replace"))
		return plan_write(argc - 1, argv + 1, "replace", IDN_PLAN_SET);
	if (matches(*argv, "del"))
		return plan_del(argc - 1, argv + 1);
	if (matches(*argv, "show"))
		return plan_show(argc - 1, argv + 1);
	if (matches(*argv, "help"))
		return usage();
	return unknown_cmd("plan", *argv);
}
