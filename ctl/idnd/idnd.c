// SPDX-License-Identifier: GPL-2.0
/*
 * idnd.c - the IDN controller daemon: options, start-up order, and the
 * resource broker's loop that marks nodes down when their heartbeats
 * stop (within the configured timeout + one 10 ms tick + a plan commit).
 *
 * ORDER at start: store (reload everything) -> dataplane maps (node
 * table rewritten from R, plans recompiled from the stored placement)
 * -> HTTP API. A restart therefore loses nothing and agents need not
 * register again: they have one heartbeat timeout to report.
 */
#include <errno.h>
#include <limits.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "idnd.h"
#include "solver.h"
#include "audit.h"
#include "http.h"
#include "etcd.h"
#include "ident.h"
#include "idn_version.h"
#include "conf.h"
#include "fed.h"

IDN_ASSERT_ABI();

struct idnd D = { .lock = PTHREAD_MUTEX_INITIALIZER };
static volatile sig_atomic_t stop, hup;

double idnd_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void on_signal(int sig)
{
	if (sig == SIGHUP)
		hup = 1;
	else
		stop = 1;
}

static const char usage_text[] =
"Usage: idnd [ -c FILE ] [ -d DB ] [ -l ADDR ] [ -p PORT ] [ -P PIN | -P none ] [ -t MS ]\n"
"            [ -L MS ] [ -R REGION ] [ -M ]\n"
"            [ -E URL [ -D DOMAIN ] [ -N NAME ] [ -T OPS ] [ -W ] ]\n"
"            [ -Q caps=N,nodes=N,policies=N,principal-caps=N,principal-policies=N,\n"
"                 principal-rate=R/s,principal-burst=N ] [ -S SECONDS ] [ -C N ] [ -G ]\n"
"            [ -A FILE|none ] [ -v ] [ --enrol approve|open ] [ --enrol-key FILE ]\n"
"            [ --attest-key FILE ] [ --fed-name NAME --fed-key FILE --fed-ingress ADDR ]\n"
"            [ --fed-ms MS ] [ --fed-stale-ms MS ] [ --fed-cert FILE --fed-cert-key FILE ]\n"
"            { --ca FILE --cert FILE --key FILE [ --read-token FILE ] | --insecure }\n"
"  -c, --config FILE\n"
"            read options from FILE (INI \"key = value\", keys the long names\n"
"            below; the command line wins); SIGHUP re-reads verbose,\n"
"            hb-timeout, loop-ms, solve-s, quotas from it\n"
"  Long names: -d --db, -l --listen, -p --port, -P --pin, -t --hb-timeout,\n"
"            -L --loop-ms, -R --region, -M --hold, -E --etcd, -D --domain,\n"
"            -N --name, -T --txn-ops, -W --watch, -Q --quotas, -S --solve-s,\n"
"            -C --per-client, -G --bench-generate, -A --audit, -v --verbose\n"
"  -d DB     SQLite store (default /var/lib/idn/idnd.db)\n"
"  -l ADDR   listen address (default 127.0.0.1)\n"
"  -p PORT   HTTP port (default 8787)\n"
"  -P PIN    dataplane pin dir to program (default $IDN_PIN or " IDN_PIN_DEFAULT "),\n"
"            none: controller only\n"
"  -t MS     heartbeat timeout (default 3000)\n"
"  -L MS     closed loop: re-place from the router's idn_cap_stats every MS\n"
"            (default 0: off; demand only from POST /v1/demand)\n"
"  -R REGION region of the local router: its sensed demand, and its net cost\n"
"            to each node (node region_net_us[REGION], else net_us) in the node\n"
"            entries it gets (default 0); nodes of other regions are marked wan:\n"
"            J prices a request's bytes to them (capability wan_ns_per_byte)\n"
"  -M        demand-driven activation: on idn.ko's DEMAND_MISS for a registered\n"
"            capability, place it, install its plan, then RELEASE the held\n"
"            requests (a no-op, logged, while the module is absent)\n"
"  -E URL    distributed mode on etcd (v3 JSON gateway, e.g. http://127.0.0.1:2379):\n"
"            registry and plans under /idn/DOMAIN/, one leader among replicas;\n"
"            URL,URL,...: endpoints of one cluster, the next when one fails\n"
"  -D DOMAIN domain of the key prefix (default 0)\n"
"  -N NAME   this replica's name in the leader key (default idnd-PID)\n"
"  -T OPS    most operations per etcd txn (etcd's --max-txn-ops, default 128):\n"
"            a larger plan generation is written in several txns, gen last\n"
"  -W        router side: watch the plan prefix and apply it to the maps of -P\n"
"            (no store, no API)\n"
"  -Q QUOTAS registry quotas (default caps=2048,nodes=4096,policies=128): a\n"
"            registration beyond one is refused with 507; per principal (the\n"
"            client certificate's CN, the address with --insecure; 0: off):\n"
"            principal-caps=N, principal-policies=N capabilities and policy\n"
"            classes it created (default 1024, 64; beyond: 507),\n"
"            principal-rate=R/s, principal-burst=N its changes (POST, DELETE;\n"
"            not heartbeats, not reads) per second and in a burst (default\n"
"            100/s, 1000; beyond: 429 with Retry-After)\n"
"  -S SEC    placement solve time limit (default 5; the solve runs off the\n"
"            request lock either way)\n"
"  -C N      HTTP connections per client address (default 64, 0: no limit)\n"
"  -A FILE   audit log, one JSON line per change (who, what, when, status, body;\n"
"            default DB.audit, none: off)\n"
"  -G        benchmarks: accept {\"dry_run\": true, \"generate\": {...}} solves of a\n"
"            generated instance (tools/bench/idn_ctlbench solvelat)\n"
"  -v        debug log (default: info; levels and timestamps, journald priorities)\n"
"  --migrate  migration decisions (eq. 8, docs/controller.md): state on a busy\n"
"            node, or one about to be declared down, is moved to a better\n"
"            node or left to be recomputed; the router's affinity follows a move\n"
"  --migrate-busy LOAD\n"
"            heartbeat load (0..1000) at which a node is busy (default 900)\n"
"  --migrate-weights NET,STORE,PRIVACY\n"
"            eq. 8's weights: per us of transfer, us per MiB displaced, us for\n"
"            moving tenant/session state (default 1,50,1000)\n"
"  -h, --help this text; -V, --version the version\n"
"  --ca FILE, --cert FILE, --key FILE\n"
"            mutual TLS on the API (PEM): clients need a certificate from the\n"
"            CA whose subject OU names their role (admin, node, router,\n"
"            controller, read-only; docs/security.md); idnd's own certificate\n"
"            (OU controller) is also what its orders to agents present\n"
"  --read-token FILE\n"
"            a bearer token (16+ characters) that may read /metrics and\n"
"            /v1/status without a certificate\n"
"  --insecure plain HTTP without authentication (tests, a closed lab only)\n"
"  --etcd-ca FILE, --etcd-cert FILE, --etcd-key FILE\n"
"            TLS to https:// etcd endpoints (-E): etcd's CA, our client\n"
"            certificate and key (etcd --client-cert-auth)\n"
"  --etcd-user NAME, --etcd-password-file FILE\n"
"            etcd's own authentication (etcdctl auth enable): the user and a\n"
"            file (0600) whose first line is the password\n"
"  --enrol approve|open\n"
"            node enrolment (docs/security.md): approve (default) - a new\n"
"            node's key waits for idnctl node approve; open - keys enrolled on\n"
"            first use, unsigned registrations accepted (tests only, warned)\n"
"  --enrol-key FILE\n"
"            the operator's enrolment public key (64 hex): a node presenting a\n"
"            statement it signed (idnctl node sign enrol) is enrolled at once\n"
"  --attest-key FILE\n"
"            the test attestation verifier's key (64 hex): evidence it signed\n"
"            (idnctl node sign attest) grants trust and confidential\n"
"  --fed-name NAME, --fed-key FILE, --fed-ingress ADDR\n"
"            federation (docs/federation.md): this domain's name in the summaries\n"
"            it signs for its peers, its Ed25519 key (idnctl cap keygen), and the\n"
"            IPv4 address of its ingress, where peers' routers send its requests\n"
"  --fed-ms MS  peers' summaries fetched, and ours signed at most, every MS\n"
"            (default 200)\n"
"  --fed-stale-ms MS\n"
"            a peer's summary older than MS is gone: its capabilities leave the\n"
"            plans (default 2000; also the validity of the summaries we sign)\n"
"  --fed-cert FILE, --fed-cert-key FILE\n"
"            the client certificate presented to peers (OU peer, CN this domain's\n"
"            name; default --cert/--key)\n";

/*
 * The closed loop and demand activation solve (solver.c), which releases
 * D.lock and may wait for another solve: they run in a thread of their
 * own, so the broker's node-down detection, etcd leases and state writes
 * in the main loop keep their 10 ms tick during any solve.
 */
static void *solve_ticks(void *arg)
{
	while (!stop) {
		struct timespec ts = { 0, 10 * 1000 * 1000 };

		nanosleep(&ts, NULL);
		pthread_mutex_lock(&D.lock);
		idnd_loop_tick(idnd_now());
		idnd_act_tick(idnd_now());
		pthread_mutex_unlock(&D.lock);
	}
	return NULL;
}

/* A node whose last heartbeat is older than the timeout goes down. */
static void broker_tick(void)
{
	double now = idnd_now();
	bool changed = false;

	for (int j = 0; j < IDN_MAX_NODES; j++) {
		struct d_node *n = &D.nodes[j];

		if (!n->used || !n->up || now - n->last_hb <= D.hb_timeout)
			continue;
		n->up = false;
		n->down_at = now;
		D.nodes_down++;
		changed = true;
		/* ORDER: health first (new flows stop at once), then plans */
		idnd_node_push(n);
		pr_info("BROKER: node %u missed heartbeats for %.0f ms: down\n", n->id,
			(now - n->last_hb) * 1000);
	}
	if (changed) {
		int e = idnd_compile();

		if (e)
			pr_warn("BROKER: plan commit failed: %s\n", idn_errmsg());
		D.last_drain_ms = (idnd_now() - now) * 1000;
	}
}

/* the options, from the command line and the --config file */
static struct {
	const char *listen, *pin, *etcd_url, *name, *audit;
	const char *etcd_ca, *etcd_cert, *etcd_key, *etcd_user, *etcd_pass;
	const char *enrol_mode, *enrol_key, *attest_key;
	int domain, port, verbose;
	bool watch;
	long tmo;
	struct idnd_fed_opts fed;
} O = { .listen = "127.0.0.1", .port = 8787, .tmo = 3000 };

/* every option's long name is also its key in the --config file (idnd.conf) */
static const struct option lopts[] = {
	{ "db", required_argument, NULL, 'd' },
	{ "listen", required_argument, NULL, 'l' },
	{ "port", required_argument, NULL, 'p' },
	{ "pin", required_argument, NULL, 'P' },
	{ "hb-timeout", required_argument, NULL, 't' },
	{ "loop-ms", required_argument, NULL, 'L' },
	{ "region", required_argument, NULL, 'R' },
	{ "hold", no_argument, NULL, 'M' },
	{ "etcd", required_argument, NULL, 'E' },
	{ "domain", required_argument, NULL, 'D' },
	{ "name", required_argument, NULL, 'N' },
	{ "txn-ops", required_argument, NULL, 'T' },
	{ "watch", no_argument, NULL, 'W' },
	{ "quotas", required_argument, NULL, 'Q' },
	{ "solve-s", required_argument, NULL, 'S' },
	{ "per-client", required_argument, NULL, 'C' },
	{ "bench-generate", no_argument, NULL, 'G' },
	{ "audit", required_argument, NULL, 'A' },
	{ "verbose", no_argument, NULL, 'v' },
	{ "ca", required_argument, NULL, 1 },
	{ "cert", required_argument, NULL, 2 },
	{ "key", required_argument, NULL, 3 },
	{ "read-token", required_argument, NULL, 4 },
	{ "insecure", no_argument, NULL, 5 },
	{ "etcd-ca", required_argument, NULL, 6 },
	{ "etcd-cert", required_argument, NULL, 7 },
	{ "etcd-key", required_argument, NULL, 8 },
	{ "etcd-user", required_argument, NULL, 9 },
	{ "etcd-password-file", required_argument, NULL, 10 },
	{ "enrol", required_argument, NULL, 0x101 },
	{ "enrol-key", required_argument, NULL, 0x102 },
	{ "attest-key", required_argument, NULL, 0x103 },
	{ "migrate", no_argument, NULL, 0x104 },
	{ "migrate-busy", required_argument, NULL, 0x105 },
	{ "migrate-weights", required_argument, NULL, 0x106 },
	{ "fed-name", required_argument, NULL, 0x107 },
	{ "fed-key", required_argument, NULL, 0x108 },
	{ "fed-ingress", required_argument, NULL, 0x109 },
	{ "fed-ms", required_argument, NULL, 0x10a },
	{ "fed-stale-ms", required_argument, NULL, 0x10b },
	{ "fed-cert", required_argument, NULL, 0x10c },
	{ "fed-cert-key", required_argument, NULL, 0x10d },
	{ "config", required_argument, NULL, 'c' },
	{ "help", no_argument, NULL, 'h' },
	{ "version", no_argument, NULL, 'V' },
	{}
};
static const char optstring[] = "c:d:l:p:P:t:L:R:ME:D:N:T:WQ:S:C:GA:vhV";
static const char *const not_keys[] = { "config", "help", "version", NULL };
/* what SIGHUP re-reads (reload()); the rest applies at the next start */
static const char *const reload_keys[] = {
	"verbose", "hb-timeout", "loop-ms", "solve-s", "quotas", NULL
};

static long num(const char *s, long lo, long hi)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < lo || v > hi)
		return LONG_MIN;
	return v;
}

#define RANGE(var, lo, hi, what) do {					\
	long __v = num(arg, lo, hi);					\
	if (__v == LONG_MIN) {						\
		*why = what;						\
		return -1;						\
	}								\
	var = __v;							\
} while (0)

/* one option: 0, or -1 with *why saying what is expected */
static int opt_apply(void *ctx, int c, const char *arg, const char **why)
{
	char *end;

	switch (c) {
	case 1: idnd_tls.ca = arg; break;
	case 2: idnd_tls.cert = arg; break;
	case 3: idnd_tls.key = arg; break;
	case 4: idnd_tls.token_file = arg; break;
	case 5: idnd_tls.insecure = true; break;
	case 6: O.etcd_ca = arg; break;
	case 7: O.etcd_cert = arg; break;
	case 8: O.etcd_key = arg; break;
	case 9: O.etcd_user = arg; break;
	case 10: O.etcd_pass = arg; break;
	case 0x101: O.enrol_mode = arg; break;
	case 0x102: O.enrol_key = arg; break;
	case 0x103: O.attest_key = arg; break;
	case 0x107: O.fed.name = arg; break;
	case 0x108: O.fed.key = arg; break;
	case 0x109: O.fed.ingress4 = arg; break;
	case 0x10a: RANGE(O.fed.ms, 10, 60000, "milliseconds, 10..60000"); break;
	case 0x10b: RANGE(O.fed.stale_ms, 100, 600000, "milliseconds, 100..600000"); break;
	case 0x10c: O.fed.cert = arg; break;
	case 0x10d: O.fed.tls_key = arg; break;
	case 'd': D.db_path = arg; break;
	case 'l': O.listen = arg; break;
	case 'p': RANGE(O.port, 1, 65535, "a port, 1..65535"); break;
	case 'P': O.pin = arg; break;
	case 't': RANGE(O.tmo, 10, 3600000, "milliseconds, 10..3600000"); break;
	case 'L': RANGE(D.loop_ms, 0, 3600000, "milliseconds, 0..3600000"); break;
	case 'R': RANGE(D.loop_region, 0, IDND_REGIONS - 1, "a region, 0..15"); break;
	case 'M': D.hold = true; break;
	case 'E': O.etcd_url = arg; break;
	case 'D': RANGE(O.domain, 0, 31, "a domain, 0..31"); break;
	case 'N':
		if (strlen(arg) >= sizeof(D.replica)) {
			*why = "name too long";
			return -1;
		}
		O.name = arg;
		break;
	case 'T': RANGE(D.txn_ops, 0, 1000000, "operations, 0..1000000"); break;
	case 'W': O.watch = true; break;
	case 'Q':
		if (idnd_limits_parse(arg)) {
			*why = "expected caps=N,nodes=N,policies=N,principal-caps=N,"
			       "principal-policies=N,principal-rate=R/s,principal-burst=N";
			return -1;
		}
		break;
	case 'S':
		idnd_limits.solve_s = strtod(arg, &end);
		if (*end || !(idnd_limits.solve_s > 0 && idnd_limits.solve_s <= 3600)) {
			*why = "seconds, 0..3600";
			return -1;
		}
		break;
	case 'C': RANGE(idnd_limits.per_ip, 0, 1000000, "connections, 0..1000000"); break;
	case 'G': idnd_limits.bench_gen = true; break;
	case 'A': O.audit = arg; break;
	case 'v': O.verbose++; break;
	case 0x104: D.migrate = true; break;
	case 0x105:
		D.mig_busy = strtoul(arg, &end, 10);
		if (*end || !D.mig_busy || D.mig_busy > 1000) {
			*why = "a load, 1..1000";
			return -1;
		}
		break;
	case 0x106:
		if (sscanf(arg, "%lf,%lf,%lf", &D.mig_w.w_net, &D.mig_w.w_store,
			   &D.mig_w.w_priv) != 3 || !(D.mig_w.w_net >= 0) ||
		    !(D.mig_w.w_store >= 0) || !(D.mig_w.w_priv >= 0)) {
			*why = "NET,STORE,PRIVACY, each >= 0";
			return -1;
		}
		break;
	default:
		return -1;
	}
	return 0;
}

/* the command line (after the --config file, which it overrides) */
static int opt_args(int argc, char **argv, const char *const *only)
{
	const char *why;
	int c;

	optind = 1;
	opterr = only ? 0 : 1;
	while ((c = getopt_long(argc, argv, optstring, lopts, NULL)) != -1) {
		const struct option *o;

		if (c == 'c')
			continue;
		if (c == 'h' || c == 'V' || c == '?' || c == ':')
			return c;
		for (o = lopts; o->name && o->val != c; o++)
			;
		if (only) {
			bool hit = false;

			for (const char *const *k = only; *k; k++)
				hit |= o->name && !strcmp(*k, o->name);
			if (!hit)
				continue;
		}
		why = NULL;
		if (opt_apply(NULL, c, optarg, &why)) {
			fprintf(stderr, "idnd: --%s %s: %s\n", o->name ? o->name : "?",
				optarg ? optarg : "", why ? why : "bad value");
			return 'x';
		}
	}
	return 0;
}

static const char *config_path(int argc, char **argv)
{
	const char *path = NULL;

	for (int i = 1; i < argc - 1; i++)
		if (!strcmp(argv[i], "-c") || !strcmp(argv[i], "--config"))
			path = argv[i + 1];
	for (int i = 1; i < argc; i++)
		if (!strncmp(argv[i], "--config=", 9))
			path = argv[i] + 9;
	return path;
}

/*
 * SIGHUP: the keys of reload_keys from their defaults, the file, then the
 * command line again; a bad file changes nothing. Called with D.lock held
 * (the broker and the solve thread read these under it).
 */
static void reload(int argc, char **argv)
{
	struct idnd_limits lim = idnd_limits;
	double hb = D.hb_timeout;
	long loop = D.loop_ms, tmo = O.tmo;
	int verbose = O.verbose;
	const char *path = config_path(argc, argv);
	struct idn_conf conf = {
		.path = path, .opts = lopts, .apply = opt_apply, .skip = not_keys,
		.only = reload_keys,
	};
	char err[512] = "bad command line";

	if (!path) {
		pr_warn("idnd: SIGHUP: no --config file to reload\n");
		return;
	}
	O.verbose = 0;
	O.tmo = 3000;
	D.loop_ms = 0;
	idnd_limits_defaults();
	if (idn_conf_load(&conf, err, sizeof(err)) || opt_args(argc, argv, reload_keys)) {
		pr_warn("idnd: SIGHUP: %s (nothing changed)\n", err);
		idnd_limits = lim;
		D.loop_ms = loop;
		O.tmo = tmo;
		O.verbose = verbose;
		D.hb_timeout = hb;
		return;
	}
	D.hb_timeout = O.tmo / 1000.0;
	idn_log_daemon(O.verbose);
	idnd_rate_config();
	pr_info("idnd: reloaded %s: verbose %d, hb-timeout %ld, loop-ms %ld, solve-s %g, "
		"quotas caps=%d,nodes=%d,policies=%d,principal-caps=%d,principal-policies=%d,"
		"principal-rate=%g/s,principal-burst=%d\n", path, O.verbose, O.tmo,
		(long)D.loop_ms, idnd_limits.solve_s, idnd_limits.max_caps, idnd_limits.max_nodes,
		idnd_limits.max_policies, idnd_limits.principal_caps,
		idnd_limits.principal_policies, idnd_limits.principal_rate,
		idnd_limits.principal_burst);
}

int main(int argc, char **argv)
{
	pthread_t ticks;
	char audit_path[512];
	const char *cfg_path;
	int c, err;

	D.db_path = "/var/lib/idn/idnd.db";
	D.mig_busy = MIG_BUSY_DEFAULT;
	mig_weights_default(&D.mig_w);
	cfg_path = config_path(argc, argv);
	if (cfg_path) {
		struct idn_conf conf = {
			.path = cfg_path, .opts = lopts, .apply = opt_apply, .skip = not_keys,
		};
		char cerr[512];

		if (idn_conf_load(&conf, cerr, sizeof(cerr))) {
			fprintf(stderr, "idnd: %s\n", cerr);
			return 2;
		}
	}
	c = opt_args(argc, argv, NULL);
	if (c == 'h') {
		fputs(usage_text, stdout);
		return 0;
	}
	if (c == 'V') {
		printf("idnd %s\n", idn_version);
		return 0;
	}
	if (c == 'x')
		return 2;
	if (c || optind != argc || (O.watch && (!O.etcd_url || D.hold))) {
		fputs(usage_text, stderr);
		return 2;
	}
	idn_log_daemon(O.verbose);	/* info by default, -v debug; levels, timestamps */
	if (!O.watch) {	/* the API's transport (-W serves none) */
		char terr[320];

		if (idn_tls_load(&idnd_tls, true, terr, sizeof(terr))) {
			fprintf(stderr, "idnd: %s\n", terr);
			return 2;
		}
		if (idnd_tls.insecure)
			pr_warn("idnd: --insecure: the API on %s:%d is plain HTTP without "
				"authentication; anyone who reaches it may change the registry\n",
				O.listen, O.port);
	}
	D.hb_timeout = O.tmo / 1000.0;
	D.lambda = 2.0;
	D.mu = 5.0;
	D.nu = 1.0;
	for (int a = 0; a < IDND_REGIONS; a++)
		for (int b = 0; b < IDND_REGIONS; b++) {
			int h = abs(a - b);

			if (IDND_REGIONS - h < h)
				h = IDND_REGIONS - h;
			D.region_lat[a * IDND_REGIONS + b] = 2 + 8.0 * h;
		}
	D.started = idnd_now();
	etcd_tls(O.etcd_ca, O.etcd_cert, O.etcd_key);	/* https:// etcd endpoints (etcd.c) */
	if (O.etcd_user || O.etcd_pass) {
		const char *why = "";
		int rc = etcd_auth(O.etcd_user, O.etcd_pass, &why);

		if (rc || !O.etcd_user) {
			fprintf(stderr, "idnd: --etcd-user/--etcd-password-file: %s%s%s\n",
				O.etcd_user ? why : "a password file needs --etcd-user",
				rc && rc != -EINVAL ? ": " : "", rc && rc != -EINVAL ? strerror(-rc) : "");
			return 2;
		}
	}
	if (O.etcd_url && idnd_dist_start(O.etcd_url, O.domain, O.name)) {
		fprintf(stderr, "idnd: etcd %s: %s\n", O.etcd_url, idn_errmsg());
		return 1;
	}
	if (O.watch) {
		struct idn_config cfg;

		idn_maps_init(&D.maps, O.pin);
		D.pin = D.maps.dir;
		if (idn_config_get(&D.maps, &cfg)) {
			fprintf(stderr, "idnd: dataplane maps in %s: %s\n", D.maps.dir,
				idn_errmsg());
			return 1;
		}
		/* the watcher owns this router's plans and nodes: hand-made ones refused */
		if (idn_maps_claim(&D.maps)) {
			fprintf(stderr, "idnd: %s\n", idn_errmsg());
			return 1;
		}
		D.have_maps = true;
		signal(SIGINT, on_signal);
		signal(SIGTERM, on_signal);
		signal(SIGPIPE, SIG_IGN);
		pr_info("idnd: watching %s%s for %s\n", O.etcd_url, D.prefix, D.maps.dir);
		idnd_dist_watch((volatile int *)&stop);
		idn_maps_close(&D.maps);
		return 0;
	}

	{
		char ierr[320];

		if (idnd_ident_config(O.enrol_mode, O.enrol_key, O.attest_key, ierr, sizeof(ierr))) {
			fprintf(stderr, "idnd: %s\n", ierr);
			return 2;
		}
		if (idnd_fed_config(&O.fed, ierr, sizeof(ierr))) {
			fprintf(stderr, "idnd: %s\n", ierr);
			return 2;
		}
	}
	err = idnd_store_open(D.db_path);
	if (!err)
		err = idnd_store_load();
	if (!err)	/* signed.c: publishers, revocations, signatures checked again */
		err = idnd_sig_load();
	if (!err && idnd_ident_open()) {	/* identities: after the nodes they grant */
		fprintf(stderr, "idnd: store %s: identities unreadable\n", D.db_path);
		return 1;
	}
	if (!err && idnd_fed_load()) {	/* fed.c: peers, exports, usage */
		fprintf(stderr, "idnd: store %s: federation tables unreadable\n", D.db_path);
		return 1;
	}
	if (err) {
		fprintf(stderr, "idnd: store %s: %s\n", D.db_path, idnd_store_err());
		return 1;
	}
	if (!O.audit) {
		snprintf(audit_path, sizeof(audit_path), "%s.audit", D.db_path);
		O.audit = audit_path;
	}
	err = idnd_audit_open(O.audit);
	if (err) {
		fprintf(stderr, "idnd: audit log %s: %s\n", O.audit, strerror(-err));
		return 1;
	}
	if (!O.pin || strcmp(O.pin, "none")) {
		struct idn_config cfg;

		idn_maps_init(&D.maps, O.pin);
		D.pin = D.maps.dir;
		if (idn_config_get(&D.maps, &cfg) == 0) {
			/*
			 * idnd owns the router's plans and node table from here:
			 * idnctl's hand-made changes are refused while it runs,
			 * and what it finds there that its registry does not
			 * make is replaced at the first compile (logged).
			 */
			if (idn_maps_claim(&D.maps)) {
				fprintf(stderr, "idnd: %s\n", idn_errmsg());
				return 1;
			}
			D.takeover = true;
			D.have_maps = true;
			D.generation = cfg.generation;
			idnd_ident_push_keys();	/* before the nodes: their telemetry counts at once */
			for (int j = 0; j < IDN_MAX_NODES; j++)
				if (D.nodes[j].used && idnd_node_push(&D.nodes[j]))
					pr_warn("idnd: node %d: %s\n", j, idn_errmsg());
			if (idnd_compile())
				pr_warn("idnd: plan commit: %s\n", idn_errmsg());
		} else if (O.pin) {
			fprintf(stderr, "idnd: dataplane maps in %s: %s\n", D.maps.dir,
				idn_errmsg());
			return 1;
		} else {
			pr_info("idnd: no dataplane at %s: controller only\n", D.maps.dir);
		}
	}
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	signal(SIGHUP, on_signal);
	signal(SIGPIPE, SIG_IGN);
	idnd_rate_config();	/* quota.c: the write rate's copy of -Q */
	err = idnd_api_start(O.listen, O.port);
	if (err) {
		fprintf(stderr, "idnd: cannot listen on %s:%d\n", O.listen, O.port);
		return 1;
	}
	pr_info("idnd: listening on %s:%d (%s), store %s\n", O.listen, O.port,
		idnd_tls.insecure ? "plain HTTP" : "mutual TLS", D.db_path);
	if (D.hold) {
		if (!D.have_maps)
			pr_warn("HOLD: no dataplane maps: plans cannot be installed, "
				"held requests will time out\n");
		idnd_act_start();
	}
	if (pthread_create(&ticks, NULL, solve_ticks, NULL)) {
		fprintf(stderr, "idnd: cannot start the solve thread\n");
		return 1;
	}
	if (idnd_fed_start()) {	/* fed.c: peers' summaries */
		fprintf(stderr, "idnd: cannot start the federation thread\n");
		return 1;
	}
	while (!stop) {
		struct timespec ts = { 0, 10 * 1000 * 1000 };

		nanosleep(&ts, NULL);
		pthread_mutex_lock(&D.lock);
		if (hup) {
			hup = 0;
			reload(argc, argv);
		}
		idnd_dist_tick(idnd_now());
		if (!D.etcd || D.leader) {	/* a follower hears no heartbeats */
			broker_tick();
			idnd_mig_tick(idnd_now());
		}
		idnd_state_tick(idnd_now());
		pthread_mutex_unlock(&D.lock);
	}
	pthread_join(ticks, NULL);
	idnd_fed_stop();
	pthread_mutex_lock(&D.lock);
	idnd_state_tick(1e300);		/* write what is left */
	pthread_mutex_unlock(&D.lock);
	idnd_api_stop();
	idnd_act_stop();
	idnd_audit_close();
	idnd_store_close();
	if (D.have_maps)
		idn_maps_close(&D.maps);
	free(D.caps);
	free(D.place);
	idn_tls_free(&idnd_tls);
	return 0;
}
