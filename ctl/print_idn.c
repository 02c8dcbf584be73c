// SPDX-License-Identifier: GPL-2.0
/*
 * print_idn.c - IDN values (capabilities, policies, addresses, VIPs,
 * nodes, plans, receipts) through the one print path of json_print.h.
 *
 * Text keywords are the ones idnctl parses (so text output can be pasted
 * back as arguments); JSON keys are the same words with '_' for '-'.
 */
#include <stdio.h>
#include <netinet/in.h>

#include "idnctl.h"

void print_cap(const char *key, const char *fmt, __u32 cap)
{
	char b[32];

	print_string(PRINT_ANY, key, fmt, idn_fmt_cap(cap, b, sizeof(b)));
}

void print_policy(const char *key, __u8 policy)
{
	print_string(PRINT_FP, NULL, "%s ", key);
	open_json_object(key);
	print_uint(PRINT_ANY, "trust", "trust %u ", IDN_POL_TRUST(policy));
	print_string(PRINT_ANY, "privacy", "privacy %s ",
		     idn_name(&idn_privacy_names, IDN_POL_PRIVACY(policy)));
	print_string(PRINT_ANY, "scope", "scope %s ",
		     idn_name(&idn_scope_names, IDN_POL_SCOPE(policy)));
	close_json_object();
}

void print_addr(const char *key, const char *fmt, __u8 family, const __u32 addr[4])
{
	char b[64];

	print_string(PRINT_ANY, key, fmt, idn_fmt_addr(family, addr, b, sizeof(b)));
}

static void print_node_id(const char *key, const char *fmt, __u32 id)
{
	if (id == IDN_NODE_NONE) {
		char tf[64];

		snprintf(tf, sizeof(tf), "%s", fmt);
		/* same text shape as the number: "key none " */
		for (char *p = tf; *p; p++)
			if (p[0] == '%' && p[1] == 'u')
				p[1] = 's';
		print_null(PRINT_ANY, key, tf, "none");
	} else {
		print_uint(PRINT_ANY, key, fmt, id);
	}
}

static void print_onoff(const char *key, const char *fmt, bool on)
{
	if (is_json_context())
		print_bool(PRINT_JSON, key, NULL, on);
	else
		print_string(PRINT_FP, NULL, fmt, on ? "on" : "off");
}

static void print_source(__u8 flags)
{
	static const char *const names[] = { "token", "size", "opt", "addr6" };
	char b[64] = "";
	size_t off = 0;

	open_json_array(PRINT_JSON, "source");
	for (unsigned int i = 0; i < ARRAY_SIZE(names); i++) {
		if (!(flags & (1U << i)))
			continue;
		print_string(PRINT_JSON, NULL, NULL, names[i]);
		off += snprintf(b + off, sizeof(b) - off, "%s%s", off ? "," : "", names[i]);
	}
	close_json_array(PRINT_JSON, NULL);
	print_string(PRINT_FP, NULL, "source %s ", off ? b : "defaults");
}

void print_desc(const struct idn_desc *d)
{
	char tb[24];

	open_json_object("desc");
	print_cap("cap", "cap %s ", d->cap);
	print_uint(PRINT_ANY, "tier", "tier %u ", d->tier);
	print_policy("policy", d->policy);
	/* hex string: JSON numbers lose 64-bit precision in most readers */
	snprintf(tb, sizeof(tb), "0x%llx", (unsigned long long)d->token);
	print_string(PRINT_ANY, "token", "token %s ", tb);
	print_uint(PRINT_ANY, "budget", "budget %u ", d->budget);
	print_uint(PRINT_ANY, "tenant", "tenant %u ", d->tenant);
	if (d->flags & IDN_DF_SIZE)
		print_uint(PRINT_ANY, "size_class", "size-class %u ", d->size_class);
	else
		print_null(PRINT_ANY, "size_class", "size-class %s ", "none");
	close_json_object();
}

void print_flow(const struct idn_flow_key *f)
{
	open_json_object("flow");
	print_string(PRINT_ANY, "proto", "%s ", idn_proto_name(f->proto));
	print_addr("saddr", "%s", f->family, f->saddr);
	print_uint(PRINT_ANY, "sport", ":%u", ntohs(f->sport));
	print_addr("daddr", " -> %s", f->family, f->daddr);
	print_uint(PRINT_ANY, "dport", ":%u ", ntohs(f->dport));
	close_json_object();
}

void print_rcands(const struct idn_receipt *rc)
{
	unsigned int n = rc->n_cand > IDN_MAX_CAND ? IDN_MAX_CAND : rc->n_cand;

	open_json_array(PRINT_JSON, "candidates");
	for (unsigned int i = 0; i < n; i++) {
		const struct idn_rcand *c = &rc->cand[i];

		print_text("\n    ");
		open_json_object(NULL);
		print_uint(PRINT_ANY, "node", "cand node %u ", c->node);
		print_uint(PRINT_ANY, "cost", "J %u ", c->cost);
		print_string(PRINT_ANY, "reject", "%s ", idn_name(&idn_reject_names, c->reject));
		print_uint(PRINT_ANY, "variant", "variant %u", c->variant);
		print_bool(PRINT_JSON, "fallback", NULL, c->from_fallback);
		if (c->from_fallback)
			print_text(" (fallback)");
		close_json_object();
	}
	close_json_array(PRINT_JSON, NULL);
}

void print_receipt(const struct idn_receipt *rc)
{
	print_string(PRINT_ANY, "verdict", "verdict %s ", idn_name(&idn_verdict_names, rc->verdict));
	print_node_id("node", "node %u ", rc->node);
	print_uint(PRINT_ANY, "generation", "generation %u ", rc->generation);
	print_node_id("aff_node", "aff-node %u ", rc->aff_node);
	print_source(rc->source);
	if (rc->ktime_ns)
		print_u64(PRINT_ANY, "ktime_ns", "ktime %llu ", rc->ktime_ns);
	print_text("\n    ");
	print_desc(&rc->desc);
	print_text("\n    ");
	print_flow(&rc->flow);
	print_rcands(rc);
}

void print_vip_entry(const struct idn_vip_entry *e)
{
	const struct idn_desc *d = &e->vip.defaults;

	print_addr("vip", "vip %s ", e->key.family, e->key.addr);
	print_uint(PRINT_ANY, "port", "port %u ", ntohs(e->key.port));
	print_string(PRINT_ANY, "proto", "proto %s ", idn_proto_name(e->key.proto));
	print_cap("cap", "cap %s ", d->cap);
	print_uint(PRINT_ANY, "tier", "tier %u ", d->tier);
	print_policy("policy", d->policy);
	print_uint(PRINT_ANY, "budget", "budget %u ", d->budget);
	print_uint(PRINT_ANY, "tenant", "tenant %u ", d->tenant);
	print_onoff("receipt", "receipt %s", e->vip.flags & IDN_VIP_F_RECEIPT);
}

void print_node_entry(__u32 id, const struct idn_node *n)
{
	struct idn_addr loc;

	print_uint(PRINT_ANY, "id", "node %u ", id);
	/* one "addr" per locator (as node add takes them); JSON: addr4, addr6 */
	if (!idn_node_locator(n, IDN_AF_INET, &loc))
		print_addr("addr4", "addr %s ", loc.family, loc.addr);
	if (!idn_node_locator(n, IDN_AF_INET6, &loc))
		print_addr("addr6", "addr %s ", loc.family, loc.addr);
	print_uint(PRINT_ANY, "domain", "domain %u ", n->domain);
	print_uint(PRINT_ANY, "trust", "trust %u ", n->trust);
	print_string(PRINT_ANY, "health", "health %s ", idn_name(&idn_health_names, n->health));
	print_onoff("confidential", "confidential %s ", n->flags & IDN_NODE_F_CONFIDENTIAL);
	print_onoff("wan", "wan %s ", n->flags & IDN_NODE_F_WAN);
	print_text("\n    ");
	print_uint(PRINT_ANY, "net_us", "net-us %u ", n->net_us);
	print_uint(PRINT_ANY, "tok_ns", "tok-ns %u ", n->tok_ns);
	print_uint(PRINT_ANY, "max_queue", "max-queue %u ", n->max_queue);
	print_uint(PRINT_ANY, "queue", "queue %u ", n->queue_depth);
	print_uint(PRINT_ANY, "pending_tokens", "pending-tokens %u ", n->pending_tokens);
	print_uint(PRINT_ANY, "charged_tokens", "charged-tokens %u ", n->charged_tokens);
	print_uint(PRINT_ANY, "charged_reqs", "charged-reqs %u ", n->charged_reqs);
	/* the other routers' expected work now, and their rate in tokens/s */
	print_uint(PRINT_ANY, "others_tokens", "others-tokens %u ",
		   idn_others_tokens(n, idn_tick_now()));
	print_uint(PRINT_ANY, "others_tokens_per_s", "others-rate %u ",
		   (__u32)(((__u64)n->others_rate * (1000000000ULL >> IDN_TICK_SHIFT)) >> 16));
	print_uint(PRINT_ANY, "load", "load %u ", n->load);
	print_uint(PRINT_ANY, "kv_use", "kv-use %u ", n->kv_use);
	print_uint(PRINT_ANY, "tele_seq", "tele-seq %u", n->tele_seq);
}

void print_plan_entry(const struct idn_plan_entry *e)
{
	const struct idn_plan *p = &e->plan;
	char b[128];

	print_cap("cap", "plan cap %s ", e->key.cap);
	if (e->key.tier == IDN_ANY)
		print_string(PRINT_ANY, "tier", "tier %s ", "any");
	else
		print_uint(PRINT_ANY, "tier", "tier %u ", e->key.tier);
	if (e->key.policy == IDN_ANY)
		print_string(PRINT_ANY, "policy", "policy %s ", "any");
	else
		print_policy("policy", e->key.policy);
	print_uint(PRINT_ANY, "slot", "slot %u ", e->key.slot);
	print_uint(PRINT_ANY, "generation", "generation %u", p->generation);
	print_text("\n    ");
	if (p->fallback_cap)
		print_cap("fallback", "fallback %s ", p->fallback_cap);
	else
		print_null(PRINT_ANY, "fallback", "fallback %s ", "none");
	print_uint(PRINT_ANY, "slo_us", "slo-us %u ", p->slo_us);
	print_uint(PRINT_ANY, "shed_tier", "shed-tier %u ", p->shed_tier);
	print_uint(PRINT_ANY, "prompt_tokens", "prompt-tokens %u ", p->prompt_tokens);
	print_uint(PRINT_ANY, "wan_ns_per_byte", "wan-ns-per-byte %u ", p->wan_ns_per_byte);
	print_string(PRINT_ANY, "domains", "domains %s ", idn_fmt_domains(p->domain_mask, b, sizeof(b)));
	print_text("weights ");
	open_json_object("weights");
	for (int w = 0; w < IDN_W_MAX; w++) {
		print_double(PRINT_JSON, idn_name(&idn_weight_names, w), NULL, p->weight[w] / 256.0);
		print_double(PRINT_FP, NULL, w ? ",%g" : "%g", p->weight[w] / 256.0);
	}
	close_json_object();
	open_json_array(PRINT_JSON, "candidates");
	for (int i = 0; i < p->n_cand && i < IDN_MAX_CAND; i++) {
		const struct idn_cand *c = &p->cand[i];

		print_text("\n    ");
		open_json_object(NULL);
		print_uint(PRINT_ANY, "node", "cand node %u ", c->node);
		print_uint(PRINT_ANY, "exec_us", "exec-us %u ", c->exec_us);
		print_uint(PRINT_ANY, "state_us", "state-us %u ", c->state_us);
		print_uint(PRINT_ANY, "policy_us", "policy-us %u ", c->policy_us);
		print_uint(PRINT_ANY, "variant", "variant %u", c->variant);
		close_json_object();
	}
	close_json_array(PRINT_JSON, NULL);
}
