// SPDX-License-Identifier: GPL-2.0
/*
 * main.c - idn-agent, the IDN node agent daemon: detects the resource
 * profile R, runs the engine emulator and the residency manager behind
 * its HTTP server, registers with idnd and heartbeats, and sends
 * telemetry datagrams to its router. See idn-agent.8 and docs/agent.md.
 *
 * ORDER: config -> profile -> engine -> residency -> HTTP -> telemetry ->
 * controller; the loop ticks every 10 ms and sends what is due.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <json-c/json.h>
#include <sodium.h>

#include "agent.h"
#include "kvxfer.h"
#include "receipt.h"
#include "../ctl/idnd/etcd.h"
#include "http.h"
#include "log.h"
#include "idn_version.h"

static const char usage_text[] =
"Usage: idn-agent [-c FILE] [OPTIONS]\n"
"  --node-id N --addr4 A --addr6 A6 --domain N --region N --trust N\n"
"  --runtime N --net-us US --max-queue N --confidential\n"
"  --region-net-us US,US,...  round trip from each region's router (region 0, 1, ...)\n"
"  --controller URL[,URL] [--hb-ms MS]  register with idnd and heartbeat\n"
"  --etcd URL[,URL] [--etcd-domain N] [--etcd-ttl S]\n"
"                                       hold the node's own lease in etcd\n"
"  --telemetry ADDR:PORT[,ADDR:PORT] [--tele-ms MS]\n"
"                                       datagrams to the router (a router per region: up to 4)\n"
"  --listen ADDR:PORT (127.0.0.1:8000)  HTTP: OpenAI API, /health, /metrics\n"
"  --mgmt-listen ADDR:PORT|none (127.0.0.1:listen port + 1000)\n"
"  --tls-ca FILE --tls-cert FILE --tls-key FILE\n"
"                                       mutual TLS (PEM) on the management listener\n"
"                                       (idnd's certificate, OU controller, or an admin's\n"
"                                       only) and to idnd (ours: OU node, CN node-ID)\n"
"  --insecure                           plain HTTP for both instead (logged warning)\n"
"  --etcd-ca FILE --etcd-cert FILE --etcd-key FILE   TLS to https:// --etcd endpoints\n"
"  --etcd-user NAME --etcd-password-file FILE   etcd's own authentication (the\n"
"            file's first line is the password; keep it 0600)\n"
"                                       management: residency orders, /v1/kv/push,\n"
"                                       sleep/wake, LoRA (refused on --listen)\n"
"  --artifact-dir DIR (/var/lib/idn/artifacts)  artifacts load from under it only\n"
"  --kv-peers ADDR:PORT[,...]           /v1/kv/push targets besides idnd's nodes\n"
"  --engine-mgmt-url URL                the engine's management URL (default --engine-url)\n"
"  --model NAME --no-engine --speed X\n"
"  --iter-base-us --prefill-tok-us --decode-seq-us --attn-ctx-ns --prefill-attn-ns\n"
"  --block-tokens --kv-capacity-tokens --kv-bytes-per-token\n"
"  --kv-link-gbps G (10)                the KV link to other nodes: the migration cost\n"
"                                       its state descriptors report\n"
"  --role both|prefill|decode (both)    the stages of two-stage (P/D) capabilities\n"
"                                       this node serves (registered with idnd)\n"
"  --max-batch-tokens --max-seqs\n"
"  --mem-budget BYTES[K|M|G] --backend host|cuda\n"
"  --kv-listen ADDR:PORT --kv-transport rdma|tcp|auto --kv-streams N\n"
"                                       KV transfer between agents\n"
"  --kv-key FILE                        shared key (mode 0600) authenticating KV peers:\n"
"                                       --kv-listen needs it unless --kv-insecure\n"
"  --kv-insecure                        accept KV peers without a key (logged warning)\n"
"  --pd-handoff auto|off (auto)         two-stage requests: hand the client's TCP\n"
"                                       connection to the decode node, which answers\n"
"                                       the client directly (needs CAP_NET_ADMIN and\n"
"                                       the node's dataplane); off, or when it cannot:\n"
"                                       its answer is relayed through this node\n"
"  --handoff-map PATH (/sys/fs/bpf/idn/idn_handoff)  the node dataplane's pinned\n"
"                                       hand-off map (idnctl dp decap attach)\n"
"  --kv-pull                            a request whose token's state another node\n"
"                                       holds: ask idnd to pull it here before the\n"
"                                       prefill (needs --kv-listen and idnd --migrate)\n"
"  --pd-cache-ms MS (1000)               two-stage requests: stage 2's answer (the\n"
"                                       decode node idnd picks by J) reused this long\n"
"                                       per capability or VIP and size class; 0 = ask\n"
"                                       idnd every request (max 10000)\n"
"  --key FILE (/var/lib/idn-agent/node-N.key)  Ed25519 node key: identity (signed\n"
"                                       registrations, heartbeats) and receipts\n"
"  --tele-key FILE                      telemetry key \"KEY_ID HEX\" (0600) where no\n"
"                                       idnd hands one out at registration\n"
"  --enrol-statement FILE               enrolment statement signed by the operator\n"
"                                       (idnctl node sign enrol), sent when registering\n"
"  --attestation FILE                   attestation evidence (idnctl node sign attest)\n"
"  --cache-policy eq8|lru --cache-half-life X  prefix cache admission/eviction\n"
"  --affinity-pin DIR                   router pins: affinity self-check\n"
"  --engine-url URL [--scrape-ms MS]    manage a vLLM/SGLang server (metrics,\n"
"                                       LoRA load/unload, sleep/wake)\n"
"  -v verbose, -h/--help this text, -V/--version the version. See idn-agent(8).\n";

static struct agent A;
static struct rcpt_key KEY;

static void kv_log(void *arg, const char *line)
{
	pr_warn("idn-agent: %s\n", line);
}

static int kv_setup(char *err, size_t errlen)
{
	struct kvx_opts o;
	int rc;

	kvx_opts_defaults(&o);
	kvx_policy_parse(A.cfg.kv_transport, &o.policy);
	o.streams = A.cfg.kv_streams;
	o.max_rx = 4ULL << 30;
	/* nothing larger than the KV cache itself can be committed: refuse it up front */
	if (A.cfg.engine && A.eng.kv.arena &&
	    (uint64_t)A.eng.kv.nblocks * A.eng.kv.block_bytes < o.max_rx)
		o.max_rx = (uint64_t)A.eng.kv.nblocks * A.eng.kv.block_bytes;
	o.log = kv_log;
	/* authenticated by default: a listener takes any byte a peer sends */
	if (A.cfg.kv_listen[0] && !A.cfg.kv_key[0] && !A.cfg.kv_insecure) {
		snprintf(err, errlen, "--kv-listen %.64s without --kv-key: KV peers are "
			 "authenticated by default; give --kv-key FILE (mode 0600, the same "
			 "on every agent), or --kv-insecure to accept peers without a key",
			 A.cfg.kv_listen);
		return -EPERM;
	}
	if (A.cfg.kv_listen[0] && !A.cfg.kv_key[0])
		pr_warn("idn-agent: WARNING: --kv-insecure: the KV listener on %s accepts "
			"peers without a key (anyone reaching it can write this node's KV cache)\n",
			A.cfg.kv_listen);
	if (A.cfg.kv_key[0]) {
		rc = kvx_key_load(A.cfg.kv_key, o.key);
		if (rc) {
			snprintf(err, errlen, "kv key %.120s: %s%s", A.cfg.kv_key, strerror(-rc),
				 rc == -EPERM ? " (readable by others: must be mode 0600)" :
				 rc == -EINVAL ? " (a regular file of 16..4096 bytes)" : "");
			return rc;
		}
		o.auth = true;
		memcpy(A.pd_key, o.key, sizeof(A.pd_key));
		A.pd_key_set = true;
		pr_info("idn-agent: kv peers authenticated with the key in %s\n",
			A.cfg.kv_key);
	}
	rc = kvx_create(&A.kvx, &o, err, errlen);
	if (rc)
		return rc;
	if (A.cfg.engine && A.eng.kv.arena) {
		rc = kvx_register(A.kvx, A.eng.kv.arena,
				  (uint64_t)A.eng.kv.nblocks * A.eng.kv.block_bytes, &A.kv_arena);
		if (rc) {
			snprintf(err, errlen, "registering the KV arena: %s", strerror(-rc));
			return rc;
		}
	}
	if (A.cfg.kv_listen[0]) {
		rc = kvx_set_sink(A.kvx, &agent_kv_sink, &A);
		if (!rc)
			rc = kvx_listen(A.kvx, A.cfg.kv_listen, agent_kv_commit, &A);
		if (rc) {
			snprintf(err, errlen, "listen on %s: %s", A.cfg.kv_listen, strerror(-rc));
			return rc;
		}
	}
	return 0;
}

static int key_setup(void)
{
	bool created;
	int rc;

	if (!A.cfg.key_path[0])
		snprintf(A.cfg.key_path, sizeof(A.cfg.key_path),
			 "/var/lib/idn-agent/node-%u.key", A.cfg.node_id);
	rc = rcpt_key_load(A.cfg.key_path, &KEY, &created);
	if (rc) {
		pr_err("idn-agent: node key %s: %s%s\n", A.cfg.key_path, strerror(-rc),
			rc == -EPERM ? " (readable by others: must be mode 0600)" : "");
		return rc;
	}
	pthread_mutex_init(&A.rc.mu, NULL);
	A.key = &KEY;
	pr_info("idn-agent: node key %s %s, ed25519 %s\n", A.cfg.key_path,
		created ? "created" : "loaded", KEY.pk_hex);
	return 0;
}

static volatile sig_atomic_t hup;

static void on_signal(int sig)
{
	if (sig == SIGHUP)
		hup = 1;
	else
		A.stop = 1;
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static struct adapter AD;

/* the managed engine's figures when there is one, else the emulator's */
static void get_load(struct eng_load *l)
{
	memset(l, 0, sizeof(*l));
	if (A.ad)
		adapter_load(A.ad, l);
	else if (A.cfg.engine)
		engine_load(&A.eng, l);
}

/* the node's own lease in etcd: keepalive, or grant + put (logged on change) */
static void lease_tick(uint64_t now)
{
	uint64_t grants = A.lease.grants, fails = A.lease.failures;
	json_object *r = agent_profile_json(&A.prof, &A.cfg);
	int err;

	/* trust is granted by idnd (ident.c), never claimed by the node */
	json_object_object_del(r, "trust");
	json_object_object_del(r, "confidential");
	err = ctl_lease_tick(&A.lease, r, now);

	json_object_put(r);
	if (A.lease.grants != grants)
		pr_info("idn-agent: etcd lease %llx holds %s (TTL %u s)%s%s\n",
			(long long)A.lease.lease, A.lease.key, A.lease.ttl,
			A.lease.grants > 1 ? ", granted again: " : "",
			A.lease.grants > 1 ? A.lease.err : "");
	else if (err && err != -EAGAIN && A.lease.failures != fails &&
		 (fails == 0 || A.lease.backoff_ms == 250 || A.cfg.verbose))
		pr_warn("idn-agent: etcd: %s; retrying (backoff %u ms)\n", A.lease.err,
			A.lease.backoff_ms);
}

/* idnd's own words for a 403 (role, enrolment, another key), else a summary */
static const char *refusal_text(void)
{
	static char msg[256];
	json_object *o = A.ctl.resp ? json_tokener_parse(A.ctl.resp) : NULL, *e;

	snprintf(msg, sizeof(msg), "HTTP 403: %s", o && json_object_object_get_ex(o, "error", &e) ?
		 json_object_get_string(e) : "idnd refused our certificate's role, node ID or key");
	json_object_put(o);
	return msg;
}

static void controller_tick(void)
{
	struct eng_load l;
	json_object *res, *st;
	int err;

	if (!A.ctl.registered) {
		json_object *r = agent_profile_json(&A.prof, &A.cfg);

		err = ctl_register(&A.ctl, r);
		json_object_put(r);
		if (err && (A.ctl.err[0] || A.ctl.last_code == 403)) {
			/* TLS or authorization: said once (until it changes), not per try */
			static char said[256];
			char now[256];

			snprintf(now, sizeof(now), "%s", A.ctl.err[0] ? A.ctl.err :
				 refusal_text());
			if (strcmp(now, said))
				pr_warn("idn-agent: registration with %s failed: %s\n",
					A.cfg.controller, now);
			snprintf(said, sizeof(said), "%s", now);
			A.ctl.err[0] = 0;
		}
		if (err) {
			pr_debug("idn-agent: registration failed (%ld)\n", A.ctl.last_code);
			return;
		}
		pr_info("idn-agent: registered node %u\n", A.cfg.node_id);
		if (A.ctl.tkey_new && A.have_tele) {
			tele_set_key(&A.tele, A.ctl.tkey, A.ctl.tkey_id);
			pr_info("idn-agent: telemetry key generation %u from idnd\n",
				A.ctl.tkey_id);
		}
		A.ctl.tkey_new = false;
		sodium_memzero(A.ctl.tkey, sizeof(A.ctl.tkey));
	}
	/* a managed engine that is down: no heartbeat, so idnd marks the node
	 * down after its timeout (the next heartbeat brings it back) */
	if (A.ad && !adapter_up(A.ad)) {
		pr_debug("idn-agent: engine down, no heartbeat\n");
		return;
	}
	get_load(&l);
	res = res_resident_caps(&A.res);
	if (A.ad)
		adapter_resident_caps(A.ad, res);
	st = state_summary(A.cfg.engine ? &A.eng : NULL, &A.res, A.cfg.model, STATE_MAX_DESC);
	state_tokens(&A.st, st);	/* which tokens' prefixes are held here */
	json_object_object_add(st, "affinity", state_affinity_json(&A.st));
	err = ctl_heartbeat(&A.ctl, A.cfg.node_id, &l, res, st);
	json_object_put(st);
	json_object_put(res);
	if (err)
		pr_debug("idn-agent: heartbeat failed (%ld)\n", A.ctl.last_code);
}

int main(int argc, char **argv)
{
	const struct res_backend *be = &res_backend_host;
	uint64_t next_hb = 0, next_tele = 0;
	char err[256] = "";
	int rc;

	/* levelled lines, a timestamp or the journal's priority (ctl/lib/log.h) */
	idn_log_set(IDN_LOG_INFO, true);
	agent_cfg_defaults(&A.cfg);
	rc = agent_cfg_parse(&A.cfg, argc, argv, err, sizeof(err));
	if (rc == 2) {
		printf("idn-agent %s\n", idn_version);
		return 0;
	}
	if (rc > 0) {
		fputs(usage_text, stdout);
		return 0;
	}
	if (rc) {
		pr_err("idn-agent: %s\n", err);
		return 2;
	}
	idn_log_set(IDN_LOG_INFO + A.cfg.verbose, true);	/* -v: debug */
	agent_profile_detect(&A.prof);
	if (A.cfg.engine) {
		rc = engine_init(&A.eng, &A.cfg.eng);
		if (!rc)
			rc = engine_start(&A.eng);
		if (rc) {
			pr_err("idn-agent: engine: %s\n", strerror(-rc));
			return 1;
		}
	}
	if (!strcmp(A.cfg.backend, "cuda")) {
		be = res_backend_cuda();
		if (!be) {
			pr_err("idn-agent: backend cuda: plugin idn_res_cuda.so not built or not loadable\n");
			return 1;
		}
	}
	rc = state_init(&A.st);
	if (!rc && A.cfg.affinity_pin[0]) {
		rc = A.cfg.engine ? state_affinity_open(&A.st, A.cfg.affinity_pin) : -EINVAL;
		if (rc) {
			pr_err("idn-agent: affinity self-check: %s/idn_affinity: %s\n",
				A.cfg.affinity_pin, A.cfg.engine ? strerror(-rc) : "needs the engine");
			return 1;
		}
	}
	if (rc) {
		pr_err("idn-agent: state: %s\n", strerror(-rc));
		return 1;
	}
	rc = res_init(&A.res, be, A.cfg.mem_budget);
	if (rc) {
		pr_err("idn-agent: residency (%s): %s\n", be->name, strerror(-rc));
		return 1;
	}
	if (key_setup())
		return 1;
	rc = kv_setup(err, sizeof(err));
	if (rc) {
		pr_err("idn-agent: kv transfer: %s\n", err);
		return 1;
	}
	pr_info("idn-agent: kv transport %s%s%s\n", kvx_choice(A.kvx),
		A.cfg.kv_listen[0] ? ", listening on " : ", not listening",
		A.cfg.kv_listen);
	if (A.cfg.engine_url[0]) {
		rc = adapter_init(&AD, A.cfg.engine_url, A.cfg.scrape_ms, A.cfg.eng.max_seqs);
		if (rc) {
			pr_err("idn-agent: engine %s: %s\n", A.cfg.engine_url, strerror(-rc));
			return 1;
		}
		if (A.cfg.engine_mgmt_url[0])
			snprintf(AD.mgmt, sizeof(AD.mgmt), "%s", A.cfg.engine_mgmt_url);
		A.ad = &AD;
	}
	/* the control plane's transport: TLS unless --insecure (ctl/lib/http.c) */
	if (strcmp(A.cfg.mgmt_listen, "none") || A.cfg.controller[0]) {
		static struct idn_tls tls;

		tls.insecure = A.cfg.insecure;
		tls.ca = A.cfg.tls_ca[0] ? A.cfg.tls_ca : NULL;
		tls.cert = A.cfg.tls_cert[0] ? A.cfg.tls_cert : NULL;
		tls.key = A.cfg.tls_key[0] ? A.cfg.tls_key : NULL;
		if (idn_tls_load(&tls, true, err, sizeof(err))) {
			pr_err("idn-agent: management listener %s / --controller: %s "
				"(--tls-ca, --tls-cert, --tls-key, or --insecure; --mgmt-listen none "
				"for neither)\n", A.cfg.mgmt_listen, err);
			return 2;
		}
		if (tls.insecure)
			pr_warn("idn-agent: warning: --insecure: management listener %s and "
				"idnd client%s%s are plain HTTP without authentication\n",
				A.cfg.mgmt_listen, A.cfg.controller[0] ? " " : "", A.cfg.controller);
		A.tls = &tls;
	}
	rc = http_start(&A);
	if (rc) {
		pr_err("idn-agent: cannot listen on %s (inference) or %s (management)\n",
			A.cfg.listen, A.cfg.mgmt_listen);
		return 1;
	}
	A.tele.fd = -1;
	if (A.cfg.tele[0]) {
		rc = tele_open(&A.tele, A.cfg.tele, A.cfg.node_id, A.cfg.addr4, A.cfg.addr6);
		if (rc) {
			pr_err("idn-agent: telemetry %s: %s\n", A.cfg.tele, strerror(-rc));
			return 1;
		}
		A.have_tele = true;
		if (A.cfg.tele_key[0]) {
			uint8_t k[16];
			uint32_t kid;

			rc = tele_key_load(A.cfg.tele_key, k, &kid);
			if (rc) {
				pr_err("idn-agent: telemetry key %s: %s%s\n", A.cfg.tele_key,
					strerror(-rc), rc == -EPERM ? " (readable by others: must be "
					"mode 0600)" : rc == -EINVAL ? " (one line: KEY_ID HEX32)" : "");
				return 1;
			}
			tele_set_key(&A.tele, k, kid);
			sodium_memzero(k, sizeof(k));
			pr_info("idn-agent: telemetry key %s loaded (generation %u)\n",
				A.cfg.tele_key, kid);
		}
	}
	curl_global_init(CURL_GLOBAL_DEFAULT);
	if (A.cfg.controller[0]) {
		if (ctl_init(&A.ctl, A.cfg.controller)) {
			pr_err("idn-agent: libcurl init failed\n");
			return 1;
		}
		A.ctl.tls = A.tls;
		A.have_ctl = true;
		/* identity: every request signed with the node key (docs/security.md) */
		if (ctl_identity(&A.ctl, &KEY, A.cfg.node_id, A.cfg.enrol_stmt, A.cfg.attestation)) {
			pr_err("idn-agent: --enrol-statement/--attestation: not a JSON object "
				"file\n");
			return 1;
		}
	}
	if (A.cfg.etcd[0]) {
		/* https:// endpoints: etcd's CA, our client certificate (etcd.c) */
		etcd_tls(A.cfg.etcd_ca[0] ? A.cfg.etcd_ca : NULL,
			 A.cfg.etcd_cert[0] ? A.cfg.etcd_cert : NULL,
			 A.cfg.etcd_key[0] ? A.cfg.etcd_key : NULL);
		if (A.cfg.etcd_user[0] || A.cfg.etcd_pass[0]) {
			const char *why = "a password file needs --etcd-user";

			rc = A.cfg.etcd_user[0] ? etcd_auth(A.cfg.etcd_user,
							    A.cfg.etcd_pass[0] ? A.cfg.etcd_pass : NULL,
							    &why) : -EINVAL;
			if (rc) {
				pr_err("idn-agent: --etcd-user/--etcd-password-file: %s%s%s\n",
					why, rc != -EINVAL ? ": " : "",
					rc != -EINVAL ? strerror(-rc) : "");
				return 2;
			}
		}
		rc = ctl_lease_init(&A.lease, A.cfg.etcd, A.cfg.etcd_domain, A.cfg.node_id,
				    A.cfg.etcd_ttl);
		if (rc) {
			pr_err("idn-agent: etcd %s: %s\n", A.cfg.etcd,
				A.lease.err[0] ? A.lease.err : strerror(-rc));
			return rc == -EINVAL ? 2 : 1;
		}
		A.have_lease = true;
	}
	if (A.ad) {
		rc = adapter_start(A.ad);
		if (rc) {
			pr_err("idn-agent: engine adapter: %s\n", strerror(-rc));
			return 1;
		}
		pr_info("idn-agent: managing engine %s (scrape every %u ms)%s\n",
			A.cfg.engine_url, A.cfg.scrape_ms,
			A.cfg.engine ? ", emulator beside it" : "");
	}
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	signal(SIGHUP, on_signal);
	signal(SIGPIPE, SIG_IGN);
	pr_info("idn-agent: node %u listening on %s, %u cpus, %llu MiB, %u gpus (%s)%s%s\n",
		A.cfg.node_id, A.cfg.listen, A.prof.cpus,
		(unsigned long long)(A.prof.mem_total >> 20), A.prof.n_gpus, A.prof.gpu_source,
		A.have_tele ? ", telemetry to " : "", A.have_tele ? A.cfg.tele : "");

	while (!A.stop) {
		uint64_t t = now_ms();

		if (hup) {	/* verbose, hb-ms, tele-ms again (config.c) */
			hup = 0;
			if (agent_cfg_reload(&A.cfg, argc, argv, err, sizeof(err))) {
				pr_warn("idn-agent: reload: %s (nothing changed)\n", err);
			} else {
				idn_log_set(IDN_LOG_INFO + A.cfg.verbose, true);
				pr_info("idn-agent: reloaded: verbose %d, hb-ms %u, tele-ms %u\n",
					A.cfg.verbose, A.cfg.hb_ms, A.cfg.tele_ms);
			}
			next_hb = next_tele = 0;
		}

		if (A.have_tele && t >= next_tele) {
			struct eng_load l;

			get_load(&l);
			tele_send(&A.tele, &l, 0, t);
			next_tele = t + A.cfg.tele_ms;
		}
		if (t >= next_hb) {
			/* affinity self-check, then the heartbeat reports it */
			if (A.st.aff_fd >= 0)
				state_affinity_poll(&A.st, &A.eng, A.cfg.node_id, 64);
			/* ORDER: the lease-bound key first, so a leader hearing
			 * the registration finds it owned by the agent */
			if (A.have_lease)
				lease_tick(t);
			if (A.have_ctl)
				controller_tick();
			next_hb = t + A.cfg.hb_ms;
		}
		usleep(10000);
	}
	if (A.have_lease) {	/* the key goes with the lease: node down at once */
		ctl_lease_fini(&A.lease);
		pr_info("idn-agent: etcd lease revoked\n");
	}
	http_stop(&A);
	if (A.ad)
		adapter_stop(A.ad);
	kvx_destroy(A.kvx);
	for (int i = 0; i < AGENT_RECEIPTS; i++)
		free(A.rc.text[i]);
	if (A.cfg.engine)
		engine_free(&A.eng);
	res_fini(&A.res);
	state_fini(&A.st);
	tele_close(&A.tele);
	if (A.have_ctl)
		ctl_fini(&A.ctl);
	curl_global_cleanup();
	return 0;
}
