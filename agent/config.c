// SPDX-License-Identifier: GPL-2.0
/*
 * config.c - idn-agent's configuration: long options, and the same names
 * as "key = value" lines in a file given with -c/--config, read with
 * libinih (ctl/lib/conf.c; command line wins when both set a key: the
 * file is read first). SIGHUP re-reads the keys of reload_keys. See
 * idn-agent.8 and docs/operator.md.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent.h"
#include "../ctl/lib/conf.h"

void agent_cfg_defaults(struct agent_cfg *c)
{
	memset(c, 0, sizeof(*c));
	c->trust = 3;
	c->hb_ms = 1000;
	c->tele_ms = 100;
	snprintf(c->listen, sizeof(c->listen), "127.0.0.1:8000");
	snprintf(c->artifact_dir, sizeof(c->artifact_dir), "/var/lib/idn/artifacts");
	snprintf(c->model, sizeof(c->model), "emulated-llama-3.1-8b");
	snprintf(c->backend, sizeof(c->backend), "host");
	c->engine = true;
	c->mem_budget = 1ULL << 30;
	snprintf(c->kv_transport, sizeof(c->kv_transport), "auto");
	c->pd_handoff = true;
	snprintf(c->handoff_map, sizeof(c->handoff_map), "/sys/fs/bpf/idn/idn_handoff");
	c->kv_streams = 4;
	c->pd_cache_ms = 1000;
	c->scrape_ms = 500;
	eng_params_defaults(&c->eng);
}

enum {
	O_NODE = 256, O_ADDR4, O_ADDR6, O_DOMAIN, O_REGION, O_TRUST, O_RUNTIME, O_NETUS,
	O_MAXQ, O_CONF, O_CTL, O_HB, O_TELE, O_TELEMS, O_LISTEN, O_MODEL, O_NOENG,
	O_BASE, O_PTOK, O_DSEQ, O_ATTN, O_BLOCK, O_CAPT, O_KVB, O_MBT, O_MSEQ, O_SPEED,
	O_BUDGET, O_BACKEND, O_KVLISTEN, O_KVPOL, O_KVSTREAMS, O_KEY, O_CPOL, O_CHALF,
	O_KVKEY, O_PATTN, O_MGMT, O_ARTDIR, O_KVPEERS, O_ENGMGMT,
	O_AFFPIN, O_ENGURL, O_KVLINK, O_ROLE, O_SCRAPE, O_ETCD, O_ETCDDOM, O_ETCDTTL, O_RNETUS, O_KVINSEC,
	O_TELEKEY, O_TLSCA, O_TLSCERT, O_TLSKEY, O_INSECURE, O_ETCDCA, O_ETCDCERT, O_ETCDKEY, O_ETCDUSER, O_ETCDPASS, O_ENROL, O_ATTEST,
	O_KVPULL, O_PDCACHE, O_PDHO, O_HOMAP,
};

static const struct option opts[] = {
	{ "config", required_argument, NULL, 'c' },
	{ "verbose", no_argument, NULL, 'v' },
	{ "help", no_argument, NULL, 'h' },
	{ "version", no_argument, NULL, 'V' },
	{ "node-id", required_argument, NULL, O_NODE },
	{ "addr4", required_argument, NULL, O_ADDR4 },
	{ "addr6", required_argument, NULL, O_ADDR6 },
	{ "domain", required_argument, NULL, O_DOMAIN },
	{ "region", required_argument, NULL, O_REGION },
	{ "trust", required_argument, NULL, O_TRUST },
	{ "runtime", required_argument, NULL, O_RUNTIME },
	{ "net-us", required_argument, NULL, O_NETUS },
	{ "region-net-us", required_argument, NULL, O_RNETUS },
	{ "max-queue", required_argument, NULL, O_MAXQ },
	{ "confidential", no_argument, NULL, O_CONF },
	{ "controller", required_argument, NULL, O_CTL },
	{ "hb-ms", required_argument, NULL, O_HB },
	{ "telemetry", required_argument, NULL, O_TELE },
	{ "tele-ms", required_argument, NULL, O_TELEMS },
	{ "listen", required_argument, NULL, O_LISTEN },
	{ "mgmt-listen", required_argument, NULL, O_MGMT },
	{ "artifact-dir", required_argument, NULL, O_ARTDIR },
	{ "kv-peers", required_argument, NULL, O_KVPEERS },
	{ "engine-mgmt-url", required_argument, NULL, O_ENGMGMT },
	{ "model", required_argument, NULL, O_MODEL },
	{ "no-engine", no_argument, NULL, O_NOENG },
	{ "iter-base-us", required_argument, NULL, O_BASE },
	{ "prefill-tok-us", required_argument, NULL, O_PTOK },
	{ "decode-seq-us", required_argument, NULL, O_DSEQ },
	{ "attn-ctx-ns", required_argument, NULL, O_ATTN },
	{ "prefill-attn-ns", required_argument, NULL, O_PATTN },
	{ "block-tokens", required_argument, NULL, O_BLOCK },
	{ "kv-capacity-tokens", required_argument, NULL, O_CAPT },
	{ "kv-bytes-per-token", required_argument, NULL, O_KVB },
	{ "kv-link-gbps", required_argument, NULL, O_KVLINK },
	{ "role", required_argument, NULL, O_ROLE },
	{ "max-batch-tokens", required_argument, NULL, O_MBT },
	{ "max-seqs", required_argument, NULL, O_MSEQ },
	{ "speed", required_argument, NULL, O_SPEED },
	{ "mem-budget", required_argument, NULL, O_BUDGET },
	{ "backend", required_argument, NULL, O_BACKEND },
	{ "kv-listen", required_argument, NULL, O_KVLISTEN },
	{ "kv-transport", required_argument, NULL, O_KVPOL },
	{ "kv-streams", required_argument, NULL, O_KVSTREAMS },
	{ "kv-key", required_argument, NULL, O_KVKEY },
	{ "kv-insecure", no_argument, NULL, O_KVINSEC },
	{ "kv-pull", no_argument, NULL, O_KVPULL },
	{ "pd-cache-ms", required_argument, NULL, O_PDCACHE },
	{ "pd-handoff", required_argument, NULL, O_PDHO },
	{ "handoff-map", required_argument, NULL, O_HOMAP },
	{ "key", required_argument, NULL, O_KEY },
	{ "tele-key", required_argument, NULL, O_TELEKEY },
	{ "enrol-statement", required_argument, NULL, O_ENROL },
	{ "attestation", required_argument, NULL, O_ATTEST },
	{ "tls-ca", required_argument, NULL, O_TLSCA },
	{ "tls-cert", required_argument, NULL, O_TLSCERT },
	{ "tls-key", required_argument, NULL, O_TLSKEY },
	{ "insecure", no_argument, NULL, O_INSECURE },
	{ "etcd-ca", required_argument, NULL, O_ETCDCA },
	{ "etcd-cert", required_argument, NULL, O_ETCDCERT },
	{ "etcd-key", required_argument, NULL, O_ETCDKEY },
	{ "etcd-user", required_argument, NULL, O_ETCDUSER },
	{ "etcd-password-file", required_argument, NULL, O_ETCDPASS },
	{ "cache-policy", required_argument, NULL, O_CPOL },
	{ "cache-half-life", required_argument, NULL, O_CHALF },
	{ "affinity-pin", required_argument, NULL, O_AFFPIN },
	{ "engine-url", required_argument, NULL, O_ENGURL },
	{ "scrape-ms", required_argument, NULL, O_SCRAPE },
	{ "etcd", required_argument, NULL, O_ETCD },
	{ "etcd-domain", required_argument, NULL, O_ETCDDOM },
	{ "etcd-ttl", required_argument, NULL, O_ETCDTTL },
	{ 0 }
};

/* unsigned with optional K/M/G (binary) suffix */
static int num(const char *s, uint64_t max, uint64_t *v)
{
	char *end;
	unsigned long long x;

	errno = 0;
	if (*s == '-')
		return -EINVAL;
	x = strtoull(s, &end, 0);
	if (errno || end == s)
		return -EINVAL;
	switch (*end) {
	case 'K': case 'k': x <<= 10; end++; break;
	case 'M': case 'm': x <<= 20; end++; break;
	case 'G': case 'g': x <<= 30; end++; break;
	}
	if (*end || x > max)
		return -ERANGE;
	*v = x;
	return 0;
}

static int dbl(const char *s, double lo, double hi, double *v)
{
	char *end;
	double x = strtod(s, &end);

	if (end == s || *end || !(x >= lo && x <= hi))
		return -ERANGE;
	*v = x;
	return 0;
}

#define U32(field, max) do {						\
	uint64_t __v;							\
	if (num(arg, max, &__v)) return -ERANGE;			\
	c->field = __v;							\
} while (0)

#define STR(field) do {							\
	if (strlen(arg) >= sizeof(c->field)) return -ENAMETOOLONG;	\
	snprintf(c->field, sizeof(c->field), "%s", arg);		\
} while (0)

/* "http[s]://HOST[:PORT][,...]": each entry a URL with a host */
static int url_list(const char *s)
{
	while (*s) {
		size_t n = strcspn(s, ","), skip;

		if (!strncmp(s, "http://", 7))
			skip = 7;
		else if (!strncmp(s, "https://", 8))
			skip = 8;
		else
			return -EINVAL;
		if (n <= skip || s[skip] == '/' || s[skip] == ':')
			return -EINVAL;
		s += n;
		if (*s == ',' && !*++s)
			return -EINVAL;
	}
	return 0;
}

static int apply(struct agent_cfg *c, int o, const char *arg)
{
	struct in_addr a4;
	struct in6_addr a6;
	uint64_t v;

	switch (o) {
	case 'v': c->verbose++; return 0;
	case O_NODE: U32(node_id, 4095); return 0;
	case O_ADDR4:
		if (inet_pton(AF_INET, arg, &a4) != 1)
			return -EINVAL;
		STR(addr4);
		return 0;
	case O_ADDR6:
		if (inet_pton(AF_INET6, arg, &a6) != 1)
			return -EINVAL;
		STR(addr6);
		return 0;
	case O_DOMAIN: U32(domain, 31); return 0;
	case O_REGION: U32(region, 15); return 0;
	case O_TRUST: U32(trust, 7); return 0;
	case O_RUNTIME: U32(runtime, 31); return 0;
	case O_NETUS: U32(net_us, 10000000); return 0;
	case O_RNETUS: {	/* "US,US,...": region 0's router, region 1's, ... */
		const char *p = arg;
		char *end;

		memset(c->region_net_us, 0, sizeof(c->region_net_us));
		for (int r = 0; *p; r++) {
			unsigned long us = strtoul(p, &end, 10);

			if (r >= 16 || end == p || us > 10000000 || (*end && *end != ',') ||
			    (*end == ',' && !end[1]))
				return -EINVAL;
			c->region_net_us[r] = us;
			p = *end ? end + 1 : end;
		}
		return 0;
	}
	case O_MAXQ: U32(max_queue, 1000000); return 0;
	case O_CONF: c->confidential = true; return 0;
	case O_CTL: STR(controller); return 0;
	case O_HB: U32(hb_ms, 600000); return c->hb_ms ? 0 : -ERANGE;
	case O_TELE: STR(tele); return 0;
	case O_TELEMS: U32(tele_ms, 600000); return c->tele_ms ? 0 : -ERANGE;
	case O_LISTEN: STR(listen); return 0;
	case O_MGMT: STR(mgmt_listen); return 0;
	case O_TLSCA: STR(tls_ca); return 0;
	case O_TLSCERT: STR(tls_cert); return 0;
	case O_TLSKEY: STR(tls_key); return 0;
	case O_INSECURE: c->insecure = true; return 0;
	case O_ETCDCA: STR(etcd_ca); return 0;
	case O_ETCDCERT: STR(etcd_cert); return 0;
	case O_ETCDKEY: STR(etcd_key); return 0;
	case O_ETCDUSER: STR(etcd_user); return 0;
	case O_ETCDPASS: STR(etcd_pass); return 0;
	case O_ARTDIR:
		if (arg[0] != '/')
			return -EINVAL;
		STR(artifact_dir);
		return 0;
	case O_KVPEERS: STR(kv_peers); return 0;
	case O_ENGMGMT:
		if (strncmp(arg, "http://", 7) && strncmp(arg, "https://", 8))
			return -EINVAL;
		STR(engine_mgmt_url);
		return 0;
	case O_MODEL: STR(model); return 0;
	case O_NOENG: c->engine = false; return 0;
	case O_BASE: return dbl(arg, 0, 1e7, &c->eng.iter_base_us);
	case O_PTOK: return dbl(arg, 0, 1e6, &c->eng.prefill_tok_us);
	case O_DSEQ: return dbl(arg, 0, 1e6, &c->eng.decode_seq_us);
	case O_ATTN: return dbl(arg, 0, 1e6, &c->eng.attn_ctx_ns);
	case O_PATTN: return dbl(arg, 0, 1e6, &c->eng.prefill_attn_ns);
	case O_BLOCK: U32(eng.block_tokens, 1 << 20); return c->eng.block_tokens ? 0 : -ERANGE;
	case O_CAPT:
		if (num(arg, 1ULL << 40, &v))
			return -ERANGE;
		c->eng.capacity_tokens = v;
		return 0;
	case O_KVB: U32(eng.kv_bytes_per_token, 1 << 24); return 0;
	case O_KVLINK: return dbl(arg, 0.001, 1e5, &c->eng.kv_link_gbps);
	case O_ROLE:
		if (!strcmp(arg, "both"))
			c->role = 0;
		else if (!strcmp(arg, "prefill"))
			c->role = 1;
		else if (!strcmp(arg, "decode"))
			c->role = 2;
		else
			return -EINVAL;
		return 0;
	case O_MBT: U32(eng.max_batch_tokens, 1 << 24); return c->eng.max_batch_tokens ? 0 : -ERANGE;
	case O_MSEQ: U32(eng.max_seqs, 1 << 16); return c->eng.max_seqs ? 0 : -ERANGE;
	case O_SPEED: return dbl(arg, 0.001, 1e6, &c->eng.speed);
	case O_BUDGET: return num(arg, 1ULL << 50, &c->mem_budget);
	case O_BACKEND:
		if (strcmp(arg, "host") && strcmp(arg, "cuda"))
			return -EINVAL;
		STR(backend);
		return 0;
	case O_KVLISTEN: STR(kv_listen); return 0;
	case O_KVPOL:
		if (strcmp(arg, "auto") && strcmp(arg, "tcp") && strcmp(arg, "rdma"))
			return -EINVAL;
		STR(kv_transport);
		return 0;
	case O_KVSTREAMS: U32(kv_streams, 32); return c->kv_streams ? 0 : -ERANGE;
	case O_KVKEY: STR(kv_key); return 0;
	case O_KVINSEC: c->kv_insecure = true; return 0;
	case O_KVPULL: c->kv_pull = true; return 0;
	case O_PDCACHE: U32(pd_cache_ms, 10000); return 0;
	case O_PDHO:
		if (!strcmp(arg, "auto"))
			c->pd_handoff = true;
		else if (!strcmp(arg, "off"))
			c->pd_handoff = false;
		else
			return -EINVAL;
		return 0;
	case O_HOMAP: STR(handoff_map); return 0;
	case O_KEY: STR(key_path); return 0;
	case O_TELEKEY: STR(tele_key); return 0;
	case O_ENROL: STR(enrol_stmt); return 0;
	case O_ATTEST: STR(attestation); return 0;
	case O_CPOL: {
		int pol = kv_policy_parse(arg);

		if (pol < 0)
			return -EINVAL;
		c->eng.cache_policy = pol;
		return 0;
	}
	case O_CHALF: return dbl(arg, 0.001, 1e6, &c->eng.cache_half_life);
	case O_AFFPIN: STR(affinity_pin); return 0;
	case O_ENGURL:
		if (strncmp(arg, "http://", 7) && strncmp(arg, "https://", 8))
			return -EINVAL;
		STR(engine_url);
		return 0;
	case O_SCRAPE: U32(scrape_ms, 600000); return c->scrape_ms ? 0 : -ERANGE;
	case O_ETCD:
		if (url_list(arg))
			return -EINVAL;
		STR(etcd);
		return 0;
	case O_ETCDDOM: U32(etcd_domain, 31); return 0;
	case O_ETCDTTL: U32(etcd_ttl, 3600); return c->etcd_ttl >= 2 ? 0 : -ERANGE;
	}
	return -EINVAL;
}

static int conf_apply(void *ctx, int val, const char *arg, const char **why)
{
	return apply(ctx, val, arg ? arg : "");
}

/* keys that are no configuration */
static const char *const not_keys[] = { "config", "help", "version", NULL };
/* keys a SIGHUP re-reads (agent_cfg_reload) */
static const char *const reload_keys[] = { "verbose", "hb-ms", "tele-ms", NULL };

static int load_file(struct agent_cfg *c, const char *path, const char *const *only,
		     char *err, size_t errlen)
{
	struct idn_conf conf = {
		.path = path, .opts = opts, .apply = conf_apply, .ctx = c,
		.skip = not_keys, .only = only,
	};

	return idn_conf_load(&conf, err, errlen);
}

int agent_cfg_parse(struct agent_cfg *c, int argc, char **argv, char *err, size_t errlen)
{
	int o, rc;

	/* the file first, so the command line overrides it */
	for (int i = 1; i < argc - 1; i++)
		if (!strcmp(argv[i], "-c") || !strcmp(argv[i], "--config")) {
			rc = load_file(c, argv[i + 1], NULL, err, errlen);
			if (rc)
				return rc;
		}
	optind = 1;
	opterr = 0;
	while ((o = getopt_long(argc, argv, "c:vhV", opts, NULL)) != -1) {
		if (o == 'c')
			continue;
		if (o == 'h')
			return 1;
		if (o == 'V')
			return 2;
		if (o == '?' || o == ':') {
			snprintf(err, errlen, "unknown option or missing value: %s",
				 argv[optind - 1]);
			return -EINVAL;
		}
		rc = apply(c, o, optarg);
		if (rc) {
			snprintf(err, errlen, "bad value for --%s: \"%s\"",
				 opts[0].name ? "option" : "", optarg ? optarg : "");
			for (const struct option *p = opts; p->name; p++)
				if (p->val == o)
					snprintf(err, errlen, "bad value for --%s: \"%s\"",
						 p->name, optarg ? optarg : "");
			return rc;
		}
	}
	if (optind < argc) {
		snprintf(err, errlen, "unexpected argument \"%s\"", argv[optind]);
		return -EINVAL;
	}
	if ((c->controller[0] || c->tele[0] || c->etcd[0]) && !c->addr4[0] && !c->addr6[0]) {
		snprintf(err, errlen,
			 "--controller, --etcd and --telemetry need a locator (--addr4/--addr6)");
		return -EINVAL;
	}
	if (c->etcd[0] && !c->etcd_ttl) {
		/* three heartbeat periods, at least 2 s */
		c->etcd_ttl = (3 * c->hb_ms + 999) / 1000;
		if (c->etcd_ttl < 2)
			c->etcd_ttl = 2;
	}
	if (c->etcd[0] && (uint64_t)c->etcd_ttl * 1000 < 2ULL * c->hb_ms) {
		snprintf(err, errlen, "--etcd-ttl %u s is under two heartbeat periods (--hb-ms %u)",
			 c->etcd_ttl, c->hb_ms);
		return -EINVAL;
	}
	if (!c->mgmt_listen[0]) {	/* default: loopback, the inference port + 1000 */
		const char *colon = strrchr(c->listen, ':');
		long port = colon ? strtol(colon + 1, NULL, 10) : 0;

		if (port <= 0 || port + 1000 > 65535) {
			snprintf(err, errlen, "--listen %s: no default --mgmt-listen (port + 1000)",
				 c->listen);
			return -EINVAL;
		}
		snprintf(c->mgmt_listen, sizeof(c->mgmt_listen), "127.0.0.1:%ld", port + 1000);
	}
	return 0;
}

/* "A.B.C.D:PORT" or "[V6]:PORT" */
int agent_parse_hostport(const char *s, struct sockaddr_storage *ss, socklen_t *len)
{
	char host[INET6_ADDRSTRLEN + 2];
	const char *colon = strrchr(s, ':');
	uint64_t port;
	size_t hl;

	memset(ss, 0, sizeof(*ss));
	if (!colon || num(colon + 1, 65535, &port) || !port)
		return -EINVAL;
	hl = colon - s;
	if (hl >= sizeof(host))
		return -EINVAL;
	memcpy(host, s, hl);
	host[hl] = 0;
	if (host[0] == '[' && hl > 2 && host[hl - 1] == ']') {
		struct sockaddr_in6 *a = (void *)ss;

		host[hl - 1] = 0;
		a->sin6_family = AF_INET6;
		a->sin6_port = htons(port);
		if (inet_pton(AF_INET6, host + 1, &a->sin6_addr) != 1)
			return -EINVAL;
		*len = sizeof(*a);
	} else {
		struct sockaddr_in *a = (void *)ss;

		a->sin_family = AF_INET;
		a->sin_port = htons(port);
		if (inet_pton(AF_INET, host, &a->sin_addr) != 1)
			return -EINVAL;
		*len = sizeof(*a);
	}
	return 0;
}

/*
 * SIGHUP: the reloadable keys again, from their defaults, then the file,
 * then the command line (which still wins); the rest needs a restart.
 * On a bad file nothing changes and @err says why.
 */
int agent_cfg_reload(struct agent_cfg *c, int argc, char **argv, char *err, size_t errlen)
{
	struct agent_cfg d, n;
	const char *path = NULL;
	int o, rc;

	for (int i = 1; i < argc - 1; i++)
		if (!strcmp(argv[i], "-c") || !strcmp(argv[i], "--config"))
			path = argv[i + 1];
	if (!path) {
		snprintf(err, errlen, "no --config file to reload");
		return -ENOENT;
	}
	agent_cfg_defaults(&d);
	n = *c;
	n.verbose = d.verbose;
	n.hb_ms = d.hb_ms;
	n.tele_ms = d.tele_ms;
	rc = load_file(&n, path, reload_keys, err, errlen);
	if (rc)
		return rc;
	optind = 1;
	opterr = 0;
	while ((o = getopt_long(argc, argv, "c:vhV", opts, NULL)) != -1)
		if (o == 'v' || o == O_HB || o == O_TELEMS)
			apply(&n, o, optarg);
	if (n.etcd[0] && (uint64_t)n.etcd_ttl * 1000 < 2ULL * n.hb_ms) {
		snprintf(err, errlen, "hb-ms %u: over half the etcd lease (%u s)", n.hb_ms,
			 n.etcd_ttl);
		return -EINVAL;
	}
	c->verbose = n.verbose;
	c->hb_ms = n.hb_ms;
	c->tele_ms = n.tele_ms;
	return 0;
}
