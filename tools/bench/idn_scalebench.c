// SPDX-License-Identifier: GPL-2.0
/*
 * idn_scalebench.c - the distributed mode at scale (tools/bench/run.sh
 * scale, docs/federation.md "Scale"): W routers' watchers and N nodes'
 * leases on one etcd, simulated in this process with the project's own
 * code: every node is an agent's lease (agent/ctlclient.c: ctl_lease_*,
 * its own etcd client and connection, grant + put of nodes/ID bound to
 * it, a keepalive every heartbeat period), every router a watch of the
 * domain prefix through ctl/idnd/etcd.c (one thread and connection each,
 * as idnd -W), and the leader's generation is a txn guarded by the
 * leader key that writes a plan key and `gen` (as idnd_dist_publish()).
 *
 *   plan change -> all watchers: R generations, each timed from the txn
 *     call to the `gen` event at every watcher; per generation the last
 *     watcher's time, p99 (nearest rank) over the generations
 *   node loss -> all watchers: K nodes stop keeping their lease alive
 *     (an agent killed: no revoke), one every 200 ms; from that moment to
 *     the DELETE of nodes/ID at every watcher (the lease TTL included);
 *     per node the last watcher's time, p99 over the nodes; also the same
 *     past the lease's deadline (last keepalive + TTL)
 *   control bytes per node per second: HTTP bytes (headers and bodies,
 *     both directions) of all agents' etcd clients over a steady window
 *     of S seconds / (N x S); TCP/IP framing not counted
 *
 * Usage: idn_scalebench -e URL [-w 1000] [-n 10000] [-b HB_MS 1000]
 *        [-t TTL_S, default 3 heartbeat periods as the agent's] [-r 20] [-k 20]
 *        [-s 10] [-a AGENT_THREADS 64] [-p ETCD_PID]
 */
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <json-c/json.h>

#include <linux/idn.h>

#include "agent.h"
#include "../ctl/idnd/etcd.h"

#define DOMAIN		0
#define PREFIX		"/idn/0/"

static const char *url;
static int n_watch = 1000, n_nodes = 10000, hb_ms = 1000, ttl_s, rounds = 20, kills = 20;
static int steady_s = 10, n_athreads = 64, etcd_pid;
static volatile int stop_watch;

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* ---- agents ---- */

/*
 * The agents run in child processes of at most NODES_PER_PROC nodes each:
 * every client holds a connection and libcurl's wake-up socket pair, three
 * descriptors a node, and a process may open 20,000 here. What the parent
 * reads or sets lives in a shared mapping.
 */
#define NODES_PER_PROC	4000

struct shnode {
	_Atomic unsigned long long bytes;	/* HTTP bytes of its etcd client */
	_Atomic long long last_ok_us;		/* last keepalive that succeeded */
	atomic_int killed;			/* stop keeping the lease alive */
};

struct shared {
	atomic_int registered, tick_errors, stop;
	_Atomic long long keepalives;
	struct shnode n[];
};

struct node {
	struct ctl_lease cl;
	json_object *profile;
	double next;		/* next keepalive due */
};

static struct shared *SH;
static struct node *nodes;	/* in an agent process: its own nodes only */
static int *kill_idx;		/* node id -> index among the killed, -1 */
static int my_proc, n_procs, threads_per_proc;

static void *agent_thread(void *arg)
{
	long t = (long)arg;
	int step = n_procs * threads_per_proc;

	while (!atomic_load(&SH->stop)) {
		double now = now_ms(), next = now + hb_ms;

		for (int i = my_proc + n_procs * (int)t; i < n_nodes && !atomic_load(&SH->stop);
		     i += step) {
			struct node *nd = &nodes[i];
			struct shnode *sn = &SH->n[i];
			bool fresh = !nd->cl.key_put;

			if (atomic_load(&sn->killed))
				continue;
			if (now < nd->next) {
				if (nd->next < next)
					next = nd->next;
				continue;
			}
			if (!ctl_lease_tick(&nd->cl, nd->profile, (uint64_t)now)) {
				atomic_store(&sn->last_ok_us, (long long)(now_ms() * 1e3));
				if (fresh)
					atomic_fetch_add(&SH->registered, 1);
				else
					atomic_fetch_add(&SH->keepalives, 1);
			} else if (nd->cl.failures && atomic_fetch_add(&SH->tick_errors, 1) < 5) {
				fprintf(stderr, "# scale: node %d: %s\n", i, nd->cl.err);
			}
			atomic_store(&sn->bytes, ((struct etcd *)nd->cl.etcd)->tx_bytes +
						 ((struct etcd *)nd->cl.etcd)->rx_bytes);
			nd->next += hb_ms;
			if (nd->next < now)	/* fell behind: no burst to catch up */
				nd->next = now + hb_ms;
			now = now_ms();
		}
		now = now_ms();
		if (next > now)
			usleep((useconds_t)((next - now) * 1000));
	}
	return NULL;
}

/* One agent process: its nodes' leases until the parent says stop. */
static void agent_proc(void)
{
	pthread_attr_t attr;
	pthread_t *th;

	nodes = calloc(n_nodes, sizeof(*nodes));
	th = calloc(threads_per_proc, sizeof(*th));
	if (!nodes || !th)
		_exit(1);
	for (int i = my_proc; i < n_nodes; i += n_procs) {
		char p[160];

		if (ctl_lease_init(&nodes[i].cl, url, DOMAIN, i, ttl_s)) {
			fprintf(stderr, "scalebench: node %d: %s\n", i, nodes[i].cl.err);
			_exit(1);
		}
		snprintf(p, sizeof(p),
			 "{\"id\":%d,\"addr4\":\"10.%d.%d.%d\",\"mem_gb\":80,\"region\":%d,"
			 "\"trust\":6,\"api_port\":9090}",
			 i, 64 + i / 65536, i / 256 % 256, i % 256, i % 16);
		nodes[i].profile = json_tokener_parse(p);
		/* spread the first ticks over one period */
		nodes[i].next = now_ms() + (double)hb_ms * i / n_nodes;
	}
	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, 256 << 10);
	for (long t = 0; t < threads_per_proc; t++)
		pthread_create(&th[t], &attr, agent_thread, (void *)t);
	for (int t = 0; t < threads_per_proc; t++)
		pthread_join(th[t], NULL);
	_exit(0);	/* like kill -9: leases left to expire */
}

/* ---- watchers ---- */

struct watcher {
	struct etcd e;
	double *gen_at;		/* [rounds + 1]: the `gen` event of each generation */
	double *down_at;	/* [kills]: the DELETE of each killed node's key */
	atomic_int ready;
	int64_t start_rev;
};

static struct watcher *watchers;
static int *kill_node;		/* [kills] node id */
static _Atomic long long events;	/* delivered to all watchers */

static int on_event(void *arg, const char *key, const void *val, size_t len, int64_t rev)
{
	struct watcher *w = arg;
	double t = now_ms();
	const char *rest;
	unsigned int id;

	if (!key || strncmp(key, PREFIX, strlen(PREFIX)))
		return 0;
	atomic_fetch_add(&events, 1);
	rest = key + strlen(PREFIX);
	if (!strcmp(rest, "gen") && val) {
		long g = strtol(val, NULL, 10);

		if (g >= 0 && g <= rounds && !w->gen_at[g])
			w->gen_at[g] = t;
		atomic_store(&w->ready, 1);
	} else if (!val && sscanf(rest, "nodes/%u", &id) == 1 && id < (unsigned int)n_nodes) {
		int k = kill_idx[id];

		if (k >= 0 && !w->down_at[k])
			w->down_at[k] = t;
	}
	return 0;
}

static void *watch_thread(void *arg)
{
	struct watcher *w = arg;
	int64_t rev = w->start_rev, last = 0;

	while (!stop_watch) {
		etcd_watch(&w->e, PREFIX, rev, on_event, w, &stop_watch, &last);
		if (last >= rev)
			rev = last + 1;
		if (!stop_watch)
			usleep(100000);
	}
	return NULL;
}

static int dcmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* nearest-rank percentile of v[0..n) (sorted here) */
static double pct(double *v, int n, double p)
{
	int k;

	if (n <= 0)
		return -1;
	qsort(v, n, sizeof(*v), dcmp);
	k = (int)(p / 100.0 * n + 0.999999) - 1;
	return v[k < 0 ? 0 : (k >= n ? n - 1 : k)];
}

static long etcd_rss_kb(void)
{
	char path[64], line[256];
	long kb = -1;
	FILE *f;

	if (!etcd_pid)
		return -1;
	snprintf(path, sizeof(path), "/proc/%d/status", etcd_pid);
	f = fopen(path, "r");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "VmRSS: %ld", &kb) == 1)
			break;
	fclose(f);
	return kb;
}

/* the leader's generation g: a plan key and `gen`, guarded by the leader key */
static int publish(struct etcd *e, int g)
{
	struct {
		struct idn_plan_key key;
		struct idn_plan plan;
	} pv = {};
	struct etcd_op ops[2];
	char gv[16];

	pv.key.cap = 0x700;
	pv.key.tier = IDN_ANY;
	pv.key.policy = IDN_ANY;
	pv.plan.n_cand = 1 + g % IDN_MAX_CAND;
	for (int c = 0; c < pv.plan.n_cand; c++)
		pv.plan.cand[c].node = (g + c) % n_nodes;
	snprintf(gv, sizeof(gv), "%d", g);
	ops[0] = (struct etcd_op){ PREFIX "plans/1792-255-255", &pv, sizeof(pv), 0 };
	ops[1] = (struct etcd_op){ PREFIX "gen", gv, strlen(gv), 0 };
	return etcd_txn(e, PREFIX "leader", "scalebench", ops, 2);
}

static int usage(void)
{
	fprintf(stderr, "usage: idn_scalebench -e URL [-w WATCHERS] [-n NODES] [-b HB_MS] [-t TTL_S]\n"
			"       [-r ROUNDS] [-k KILLS] [-s STEADY_S] [-a AGENT_THREADS] [-p ETCD_PID]\n");
	return 2;
}

int main(int argc, char **argv)
{
	pthread_t *wth;
	pid_t *procs;
	pthread_attr_t attr;
	struct etcd L;
	int64_t lease = 0, rev = 0;
	double t0, *v;
	int c, st = 0, n_ready;

	while ((c = getopt(argc, argv, "e:w:n:b:t:r:k:s:a:p:")) != -1) {
		switch (c) {
		case 'e': url = optarg; break;
		case 'w': n_watch = atoi(optarg); break;
		case 'n': n_nodes = atoi(optarg); break;
		case 'b': hb_ms = atoi(optarg); break;
		case 't': ttl_s = atoi(optarg); break;
		case 'r': rounds = atoi(optarg); break;
		case 'k': kills = atoi(optarg); break;
		case 's': steady_s = atoi(optarg); break;
		case 'a': n_athreads = atoi(optarg); break;
		case 'p': etcd_pid = atoi(optarg); break;
		default: return usage();
		}
	}
	if (!ttl_s)	/* the agent's default: three heartbeat periods, at least 2 s */
		ttl_s = (3 * hb_ms + 999) / 1000 < 2 ? 2 : (3 * hb_ms + 999) / 1000;
	if (!url || n_watch < 1 || n_nodes < 1 || hb_ms < 10 || ttl_s < 1 || rounds < 1 ||
	    kills < 0 || kills > n_nodes || steady_s < 1 || n_athreads < 1)
		return usage();

	if (etcd_open(&L, url)) {
		fprintf(stderr, "scalebench: %s\n", etcd_err(&L));
		return 1;
	}
	/* this process leads the domain: the leader key under its own lease */
	if (etcd_lease_grant(&L, 600, &lease) ||
	    etcd_put(&L, PREFIX "leader", "scalebench", 10, lease)) {
		fprintf(stderr, "scalebench: leader: %s\n", etcd_err(&L));
		return 1;
	}

	/* ---- N agents: grant + put, then keepalives every hb_ms ---- */
	SH = mmap(NULL, sizeof(*SH) + (size_t)n_nodes * sizeof(SH->n[0]), PROT_READ | PROT_WRITE,
		  MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	kill_node = calloc(kills + 1, sizeof(*kill_node));
	kill_idx = calloc(n_nodes, sizeof(*kill_idx));
	if (SH == MAP_FAILED || !kill_node || !kill_idx)
		return 1;
	for (int i = 0; i < n_nodes; i++)
		kill_idx[i] = -1;
	for (int k = 0; k < kills; k++) {
		kill_node[k] = (int)((long long)(k + 1) * n_nodes / (kills + 1));
		kill_idx[kill_node[k]] = k;
	}
	n_procs = (n_nodes + NODES_PER_PROC - 1) / NODES_PER_PROC;
	threads_per_proc = (n_athreads + n_procs - 1) / n_procs;
	procs = calloc(n_procs, sizeof(*procs));
	if (!procs)
		return 1;
	fflush(stdout);
	fflush(stderr);
	for (int p = 0; p < n_procs; p++) {
		procs[p] = fork();
		if (procs[p] < 0) {
			perror("scalebench: fork");
			return 1;
		}
		if (!procs[p]) {
			my_proc = p;
			agent_proc();
		}
	}
	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, 256 << 10);
	wth = calloc(n_watch, sizeof(*wth));
	t0 = now_ms();
	while (atomic_load(&SH->registered) < n_nodes && now_ms() - t0 < 300e3)
		usleep(100000);
	fprintf(stderr, "# scale: %d node keys under their leases (TTL %d s, heartbeat %d ms) "
		"in %.1f s, %d agent processes (%d tick errors)\n", atomic_load(&SH->registered),
		ttl_s, hb_ms, (now_ms() - t0) / 1e3, n_procs, atomic_load(&SH->tick_errors));
	if (atomic_load(&SH->registered) < n_nodes) {
		fprintf(stderr, "scalebench: nodes did not all register\n");
		st = 1;
		goto out_agents;
	}

	/* one router's full sync of the prefix, as the watcher does at start */
	{
		struct etcd_kv *kvs = NULL;
		int n = 0;
		uint64_t rx = L.rx_bytes;

		t0 = now_ms();
		if (etcd_range(&L, PREFIX, false, &kvs, &n, &rev)) {
			fprintf(stderr, "scalebench: range: %s\n", etcd_err(&L));
			st = 1;
			goto out_agents;
		}
		printf("scale_watcher_full_sync_ms %.1f ms\n", now_ms() - t0);
		printf("scale_watcher_full_sync_bytes %llu bytes\n",
		       (unsigned long long)(L.rx_bytes - rx));
		etcd_kvs_free(kvs, n);
	}

	/* ---- W watchers from that revision ---- */
	watchers = calloc(n_watch, sizeof(*watchers));
	v = calloc((size_t)n_watch * (rounds + 1) + kills + 1, sizeof(*v));
	if (!watchers || !v)
		return 1;
	for (int w = 0; w < n_watch; w++) {
		watchers[w].gen_at = calloc(rounds + 1, sizeof(double));
		watchers[w].down_at = calloc(kills + 1, sizeof(double));
		watchers[w].start_rev = rev + 1;
		if (etcd_open(&watchers[w].e, url))
			return 1;
	}
	t0 = now_ms();
	for (int w = 0; w < n_watch; w++)
		if (pthread_create(&wth[w], &attr, watch_thread, &watchers[w])) {
			fprintf(stderr, "scalebench: thread %d: %s\n", w, strerror(errno));
			return 1;
		}
	/* generation 0 until every watch delivers it: all streams are up */
	do {
		if (publish(&L, 0))
			fprintf(stderr, "scalebench: publish: %s\n", etcd_err(&L));
		usleep(500000);
		n_ready = 0;
		for (int w = 0; w < n_watch; w++)
			n_ready += atomic_load(&watchers[w].ready);
	} while (n_ready < n_watch && now_ms() - t0 < 120e3);
	fprintf(stderr, "# scale: %d of %d watchers streaming after %.1f s\n", n_ready, n_watch,
		(now_ms() - t0) / 1e3);
	if (n_ready < n_watch) {
		st = 1;
		goto out;
	}

	/* ---- steady state: control bytes of the agents ---- */
	{
		uint64_t b0 = 0, b1 = 0;
		long long k0 = atomic_load(&SH->keepalives), k1;

		for (int i = 0; i < n_nodes; i++)
			b0 += atomic_load(&SH->n[i].bytes);
		t0 = now_ms();
		sleep(steady_s);
		for (int i = 0; i < n_nodes; i++)
			b1 += atomic_load(&SH->n[i].bytes);
		k1 = atomic_load(&SH->keepalives);
		t0 = (now_ms() - t0) / 1e3;
		printf("scale_control_bytes_per_node_s %.1f bytes/s\n",
		       (double)(b1 - b0) / n_nodes / t0);
		printf("scale_keepalives_per_s %.0f /s\n", (k1 - k0) / t0);
		printf("scale_keepalive_bytes %.0f bytes\n",
		       k1 > k0 ? (double)(b1 - b0) / (k1 - k0) : -1.0);
	}

	/* ---- plan changes ---- */
	{
		double *pub = calloc(rounds + 1, sizeof(double)), *all = v;
		int n_all = 0, missed = 0;
		double *last = calloc(rounds + 1, sizeof(double));

		for (int g = 1; g <= rounds; g++) {
			pub[g] = now_ms();
			if (publish(&L, g)) {
				fprintf(stderr, "scalebench: publish %d: %s\n", g, etcd_err(&L));
				st = 1;
			}
			usleep(300000);
		}
		usleep(1000000);
		for (int g = 1; g <= rounds; g++) {
			last[g - 1] = 0;
			for (int w = 0; w < n_watch; w++) {
				double t = watchers[w].gen_at[g];

				if (!t) {
					missed++;
					continue;
				}
				all[n_all++] = t - pub[g];
				if (t - pub[g] > last[g - 1])
					last[g - 1] = t - pub[g];
			}
		}
		if (missed) {
			fprintf(stderr, "scalebench: %d generation events never arrived\n", missed);
			st = 1;
		}
		printf("scale_1000_watchers_plan_p99_ms %.1f ms\n", pct(last, rounds, 99));
		printf("scale_1000_watchers_plan_p50_ms %.1f ms\n", pct(all, n_all, 50));
		free(pub);
		free(last);
	}

	/* ---- node losses ---- */
	if (kills) {
		double *kill_at = calloc(kills, sizeof(double)), *last = calloc(kills, sizeof(double));
		double *past = calloc(kills, sizeof(double));
		int missed = 0;

		for (int k = 0; k < kills; k++) {
			atomic_store(&SH->n[kill_node[k]].killed, 1);
			kill_at[k] = now_ms();
			usleep(200000);
		}
		usleep((ttl_s + 3) * 1000000);
		for (int k = 0; k < kills; k++) {
			double deadline = atomic_load(&SH->n[kill_node[k]].last_ok_us) / 1e3 + ttl_s * 1e3;

			for (int w = 0; w < n_watch; w++) {
				double t = watchers[w].down_at[k];

				if (!t) {
					missed++;
					continue;
				}
				if (t - kill_at[k] > last[k])
					last[k] = t - kill_at[k];
			}
			past[k] = last[k] - (deadline - kill_at[k]);
		}
		if (missed) {
			fprintf(stderr, "scalebench: %d node-down events never arrived\n", missed);
			st = 1;
		}
		printf("scale_10k_leases_node_down_p99_ms %.1f ms\n", pct(last, kills, 99));
		printf("scale_10k_leases_node_down_past_ttl_p99_ms %.1f ms\n", pct(past, kills, 99));
		free(kill_at);
		free(last);
		free(past);
	}
	if (etcd_rss_kb() > 0)
		printf("scale_etcd_rss_mb %.0f MB\n", etcd_rss_kb() / 1024.0);
out:
	stop_watch = 1;
	for (int w = 0; w < n_watch; w++)
		pthread_join(wth[w], NULL);
	{
		uint64_t rx = 0;

		for (int w = 0; w < n_watch; w++)
			rx += watchers[w].e.rx_bytes;
		fprintf(stderr, "# scale: watch streams received %.1f MB in all, %lld events\n",
			rx / 1e6, (long long)atomic_load(&events));
	}
out_agents:
	atomic_store(&SH->stop, 1);
	for (int p = 0; p < n_procs; p++)
		waitpid(procs[p], NULL, 0);
	fflush(stdout);
	/* leases are left to expire with etcd, which the caller stops */
	return st;
}
