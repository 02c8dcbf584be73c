// SPDX-License-Identifier: GPL-2.0
/*
 * idn_eval - make eval's simulation mode: replays traces through N
 * emulated engines under IDN's routing and today's routers' rules, at
 * load levels rho, and prints the figures of docs/benchmarks.md
 * ("Routing evaluation (make eval)"), one "name value unit" line each.
 *
 *   idn_eval [--trace NAME=FILE]... [--rho R[,R...]] [--nodes N]
 *            [--policies P[,P...]] [--out DIR] [--limit N] [--seed S]
 *            [--tele-ms MS] [--cap JSON] [--speed X] [--summary]
 *            [--requests FILE] [--spread] [--kv-link-gbps G] [--pd-prefill N]
 *
 * Without --trace: conv and code from ../shared/traces/ when present,
 * else the slices in selftests/data/. --out DIR writes report.md and the
 * data files tools/eval/run.sh plots. Errors (a malformed trace: file and
 * line) go to stderr with exit status 1. --speed X runs the engines X
 * times faster (a testbed's agents at --speed X, in their real time) and
 * --summary prints each flat run's TTFT percentiles as a "# sim ..."
 * line (tools/eval/testbed.sh compares them with the testbed's);
 * --requests FILE writes each flat run's per-request TTFT and node;
 * --spread spaces requests that share a timestamp (ev_trace_spread()).
 */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "eval.h"

#define MAX_TRACES	8
#define MAX_RHO		8

struct tr {
	char name[32];
	const char *path;
	struct ev_trace t;
	struct ev_res flat[MAX_RHO][EV_POLICIES];
	bool ran[MAX_RHO][EV_POLICIES];
	struct ev_res tiered[EV_POLICIES];
	bool tran[EV_POLICIES];
	struct ev_res mig;	/* IDN with idnd --migrate, flat, rho 1.0 */
	bool mran;
	int mig_ri;
	struct ev_res migr[MAX_RHO];	/* ... at the other load levels */
	/* bounds at rho 1.0: [cluster, reuse][J as the product's, J knowing it] */
	struct ev_res orc[2][2];
	bool oran;
	struct ev_res pd;	/* IDN, the capability in two stages (P/D), flat, rho 1.0 */
	bool pran;
	int n_prefill;
};

static struct tr T[MAX_TRACES];
static int n_tr;
static double rhos[MAX_RHO] = { 0.7, 1.0, 1.3 };
static int n_rho = 3;
static int nodes = 8;
static bool use[EV_POLICIES];
static const char *outdir;
static size_t limit;
static uint64_t seed = 1;
static double sim_requests, sim_cpu_s;
static uint32_t tele_ms;		/* 0: the agent's default */
static const char *cap_json;		/* NULL: the default capability */
static double speed = 1.0;		/* engines' speed-up (testbed companion) */
static bool summary;			/* "# sim ..." line per flat run */
static FILE *req_out;			/* --requests: per request TTFT and node */
static bool spread;			/* --spread: ev_trace_spread() after --limit */
static double kv_link_gbps;		/* --kv-link-gbps: 0, the nodes' (EV_KV_LINK_GBPS) */
static int pd_prefill;			/* --pd-prefill: 0, by the trace's prefill work */

static double cpu_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int usage(FILE *f)
{
	fprintf(f,
"Usage: idn_eval [--trace NAME=FILE]... [--rho R[,R...]] [--nodes N]\n"
"                [--policies P[,P...]] [--out DIR] [--limit N] [--seed S]\n"
"                [--tele-ms MS] [--cap JSON] [--speed X] [--summary]\n"
"                [--requests FILE] [--spread] [--kv-link-gbps G] [--pd-prefill N]\n"
"FILE: Mooncake JSON lines or Azure CSV, plain or gzip'd. --tele-ms: the agents'\n"
"telemetry interval (default theirs); --cap: the capability body idnd gets\n"
"(class 1, variant 0; default: idnd's defaults); --speed: engines X times faster\n"
"(agents at --speed X, real time); --summary: a \"# sim ...\" line per flat run;\n"
"--kv-link-gbps: the nodes' KV link for migrations and P/D (default 400);\n"
"--pd-prefill: prefill nodes of the P/D run (default: the trace's prefill share). Policies:");
	for (int p = 0; p < EV_POLICIES; p++)
		fprintf(f, " %s", ev_policy_names[p]);
	fprintf(f, "\n");
	return f == stderr ? 2 : 0;
}

static bool exists(const char *p)
{
	return access(p, R_OK) == 0;
}

static void add_trace(const char *name, const char *path)
{
	if (n_tr >= MAX_TRACES)
		return;
	snprintf(T[n_tr].name, sizeof(T[n_tr].name), "%s", name);
	T[n_tr].path = path;
	n_tr++;
}

static void default_traces(void)
{
	static const char *const conv[] = {
		"../shared/traces/mooncake_fast25_conversation_trace.jsonl",
		"selftests/data/mooncake_conversation_2000.jsonl.gz",
	};
	static const char *const code[] = {
		"../shared/traces/azure_llm_2023_code.csv",
		"selftests/data/azure_llm_2023_code_2000.csv.gz",
	};

	for (size_t i = 0; i < 2; i++)
		if (exists(conv[i])) {
			add_trace("conv", conv[i]);
			break;
		}
	for (size_t i = 0; i < 2; i++)
		if (exists(code[i])) {
			add_trace("code", code[i]);
			break;
		}
}

/* oracle, blind: a bound (ev_cfg.oracle, oracle_blind), IDN flat only */
static int run_full(struct tr *tr, enum ev_policy p, enum ev_layout l, double rho,
		    struct ev_res *res, bool keep, bool migrate, int n_prefill, int oracle,
		    bool blind)
{
	struct ev_cfg c = {
		.policy = p, .layout = l, .nodes = l == EV_TIERED ? 8 : nodes,
		.scale = ev_scale_for(&tr->t, l == EV_TIERED ? 8 : nodes, rho),
		.seed = seed, .keep_ttft = keep, .tele_ms = tele_ms, .cap_json = cap_json,
		.speed = speed, .migrate = migrate, .kv_link_gbps = kv_link_gbps,
		.pd = n_prefill > 0, .n_prefill = n_prefill, .oracle = oracle,
		.oracle_blind = blind,
	};
	if (req_out && l == EV_FLAT && !migrate && !n_prefill && !oracle)
		c.keep_ttft = true;
	char err[256] = "";
	double t0 = cpu_now();
	int ret = ev_run(&tr->t, &c, res, err, sizeof(err));

	/* the simulator's speed over the routing runs (the migration and P/D
	 * experiments replay overloaded queues: not what the figure is about) */
	if (!migrate && !n_prefill && !oracle) {
		sim_cpu_s += cpu_now() - t0;
		sim_requests += tr->t.n;
	}
	if (ret)
		fprintf(stderr, "idn_eval: %s %s rho %.1f: %s\n", tr->name, ev_policy_names[p],
			rho, err);
	else if (summary && l == EV_FLAT)	/* TTFT in the engines' (sped-up) time */
		printf("# sim %s rho %.3f policy %s%s%s nodes %d speed %g scale %.6f requests %zu "
		       "served %zu shed %zu p50_s %.4f p90_s %.4f p99_s %.4f hit_pct %.2f\n",
		       tr->name, rho, ev_policy_names[p], migrate ? "+migrate" : "",
		       n_prefill ? "+pd" : oracle == EV_ORACLE_CLUSTER ? "+oracle_cluster" :
		       oracle == EV_ORACLE_REUSE ? "+oracle_reuse" : "", c.nodes,
		       speed, c.scale, res->n, res->served, res->shed, res->p50, res->p90,
		       res->p99, res->hit_pct);
	if (!ret && migrate)
		fprintf(stderr, "idn_eval: %s rho %.1f migrate: %zu decided, %zu moved (%llu blocks), "
			"%zu recompute, %zu failed; pull on miss: %zu asked, %zu pulled, %zu late\n",
			tr->name, rho, res->mig.decided, res->mig.moved,
			(unsigned long long)res->mig.blocks, res->mig.recompute, res->mig.failed,
			res->mig.pull_asked, res->mig.pulls, res->mig.pull_late);
	if (!ret && req_out && l == EV_FLAT && !migrate && !n_prefill && !oracle && res->ttft_us &&
	    res->node) {
		fprintf(req_out, "# %s rho %.3f policy %s: i send_ms ttft_ms node (-1: shed)\n",
			tr->name, rho, ev_policy_names[p]);
		for (size_t i = 0; i < res->n; i++)
			fprintf(req_out, "%zu %.3f %.3f %d\n", i,
				tr->t.r[i].t_us / c.scale / speed / 1e3,
				res->ttft_us[i] >= 0 ? res->ttft_us[i] / 1e3 : -1.0, res->node[i]);
	}
	return ret;
}

static int run_one(struct tr *tr, enum ev_policy p, enum ev_layout l, double rho,
		   struct ev_res *res, bool keep, bool migrate, int n_prefill)
{
	return run_full(tr, p, l, rho, res, keep, migrate, n_prefill, 0, false);
}

/*
 * The baseline with the lowest TTFT p90 (none sheds, so its p90 over
 * served requests is its p90 over all). IDN's figure is its TTFT p90 over
 * the requests it served: what it sheds is judged by shed % and goodput
 * (a shed request is a miss there); the report also gives the p90 with
 * shed requests as never served.
 */
static int best_of(const struct ev_res *r, const bool *ran)
{
	int b = -1;

	for (int p = 0; p < EV_POLICIES; p++) {
		if (p == EV_IDN || !ran[p])
			continue;
		if (b < 0 || r[p].p90_all < r[b].p90_all)
			b = p;
	}
	return b;
}

static double ratio(double a, double b)
{
	if (isinf(b))
		return isinf(a) ? 1.0 : 0.0;	/* both never served at that rank: equal */
	if (b > 0)
		return a / b;
	return a > 0 ? INFINITY : 1.0;
}

static void fig(const char *name, double v, const char *unit)
{
	if (isinf(v))
		printf("%s inf %s\n", name, unit);
	else
		printf("%s %.3f %s\n", name, v, unit);
	fflush(stdout);
}

static void row(FILE *f, const char *pol, const struct ev_res *r, bool wan)
{
	fprintf(f, "| %s | %.2f | %.2f | %.2f | %.2f | %.1f | %.2f | %.1f | %.1f | %.0f / %.0f | %.0f |",
		pol, r->p50, r->p90, r->p99, r->p90_all, r->tpot_mean * 1000, r->goodput,
		r->shed_pct, r->hit_pct, r->busy_mean, r->busy_max, r->herd_pct);
	for (int j = 0; j < r->nodes; j++)
		fprintf(f, "%s%.0f", j ? " " : " ", r->busy_pct[j]);
	fprintf(f, " |");
	if (wan)
		fprintf(f, " %.2f |", r->wan_bytes / 1e9);
	fprintf(f, "\n");
}

static const char hdr[] =
"| policy | TTFT p50 s | p90 s | p99 s | p90 with shed s | TPOT ms | goodput req/s | shed % "
"| prefix hit % | busy % mean / max | herd % | busy % per node |";

static void report(void)
{
	char path[512];
	FILE *f;

	snprintf(path, sizeof(path), "%s/report.md", outdir);
	f = fopen(path, "w");
	if (!f) {
		fprintf(stderr, "idn_eval: %s: %s\n", path, strerror(errno));
		return;
	}
	fprintf(f, "# make eval: routing simulation\n\n"
		   "%d nodes (Llama-3.1-8B on one H100 each, vLLM-like engine model), SLO TTFT <= 2 s "
		   "and mean TPOT <= 200 ms; \"best\" = the baseline with the lowest TTFT p90; "
		   "IDN's p90 is over the requests it served (shed ones are misses in goodput). herd %%: in each 100 ms window of decisions, the "
		   "share of its requests sent to the most chosen node (an even spread over 8 "
		   "is 12.5 %% for large windows). Set-up: docs/benchmarks.md.\n\n", nodes);
	for (int k = 0; k < n_tr; k++) {
		struct tr *tr = &T[k];

		fprintf(f, "## %s (%s, %zu requests)\n\n", tr->name, tr->path, tr->t.n);
		fprintf(f, "| rho | best (lowest p90) | IDN p90 / best's (the figure) "
			   "| with shed as never served | goodput / best's | goodput / highest "
			   "baseline goodput | IDN shed %% |\n|---|---|---|---|---|---|---|\n");
		for (int ri = 0; ri < n_rho; ri++) {
			const struct ev_res *r = tr->flat[ri];
			int b = best_of(r, tr->ran[ri]), g = -1;

			if (b < 0 || !tr->ran[ri][EV_IDN])
				continue;
			for (int p = 1; p < EV_POLICIES; p++)
				if (tr->ran[ri][p] && (g < 0 || r[p].goodput > r[g].goodput))
					g = p;
			fprintf(f, "| %.1f | %s | %.3f | %.3f | %.3f | %.3f (%s) | %.1f |\n", rhos[ri],
				ev_policy_names[b], ratio(r[EV_IDN].p90, r[b].p90_all),
				ratio(r[EV_IDN].p90_all, r[b].p90_all),
				ratio(r[EV_IDN].goodput, r[b].goodput),
				ratio(r[EV_IDN].goodput, r[g].goodput), ev_policy_names[g],
				r[EV_IDN].shed_pct);
		}
		fprintf(f, "\n");
		for (int ri = 0; ri < n_rho; ri++) {
			int b = best_of(tr->flat[ri], tr->ran[ri]);

			fprintf(f, "### flat, rho %.1f (best baseline: %s)\n\n%s\n", rhos[ri],
				b >= 0 ? ev_policy_names[b] : "-", hdr);
			fprintf(f, "|---|---|---|---|---|---|---|---|---|---|---|---|\n");
			for (int p = 0; p < EV_POLICIES; p++)
				if (tr->ran[ri][p])
					row(f, ev_policy_names[p], &tr->flat[ri][p], false);
			fprintf(f, "\n");
		}
		if (tr->mran) {
			const struct ev_mig *m = &tr->mig.mig;

			fprintf(f, "### migration (idnd --migrate), flat, rho 1.0\n\n"
				   "%zu decisions: %zu moves committed (%llu blocks), %zu recompute, "
				   "%zu failed.\n\n%s\n", m->decided, m->moved,
				(unsigned long long)m->blocks, m->recompute, m->failed, hdr);
			fprintf(f, "|---|---|---|---|---|---|---|---|---|---|---|---|\n");
			row(f, "idn", &tr->flat[tr->mig_ri][EV_IDN], false);
			row(f, "idn + migrate", &tr->mig, false);
			if (tr->oran) {
				row(f, "bound: every node's cache, J as the product's",
				    &tr->orc[0][0], false);
				row(f, "bound: every node's cache, J knowing it", &tr->orc[0][1],
				    false);
				row(f, "bound: every prefix seen, J as the product's",
				    &tr->orc[1][0], false);
				row(f, "bound: every prefix seen, J knowing it", &tr->orc[1][1],
				    false);
			}
			fprintf(f, "\n");
		}
		if (tr->pran) {
			fprintf(f, "### P/D (two-stage plan) vs colocated, flat, rho 1.0\n\n"
				   "%d prefill + %d decode nodes.\n\n%s\n", tr->n_prefill,
				nodes - tr->n_prefill, hdr);
			fprintf(f, "|---|---|---|---|---|---|---|---|---|---|---|---|\n");
			row(f, "idn (colocated)", &tr->flat[tr->mig_ri][EV_IDN], false);
			row(f, "idn P/D", &tr->pd, false);
			fprintf(f, "\n");
		}
		if (tr->tran[EV_IDN]) {
			fprintf(f, "### tiered, rho 0.7\n\n%s WAN GB |\n", hdr);
			fprintf(f, "|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
			for (int p = 0; p < EV_POLICIES; p++)
				if (tr->tran[p])
					row(f, ev_policy_names[p], &tr->tiered[p], true);
			fprintf(f, "\n");
		}
	}
	fprintf(f, "Simulator: %.0f trace requests in %.2f CPU s (%.0f per CPU second).\n",
		sim_requests, sim_cpu_s, sim_cpu_s > 0 ? sim_requests / sim_cpu_s : 0);
	fclose(f);
}

static int dcmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* gnuplot data: TTFT CDF per policy at one rho, p90/goodput vs rho, WAN per policy */
static void plot_data(struct tr *tr, int ri_cdf)
{
	char path[512];
	FILE *f;

	for (int p = 0; p < EV_POLICIES; p++) {
		const struct ev_res *r = &tr->flat[ri_cdf][p];
		size_t n = 0, step;
		double *v;

		if (!tr->ran[ri_cdf][p] || !r->ttft_us)
			continue;
		v = malloc(sizeof(*v) * (r->n + 1));
		snprintf(path, sizeof(path), "%s/cdf_%.31s_%s.dat", outdir, tr->name,
			 ev_policy_names[p]);
		f = v ? fopen(path, "w") : NULL;
		if (!f) {
			free(v);
			continue;
		}
		for (size_t i = 0; i < r->n; i++)
			if (r->ttft_us[i] >= 0)
				v[n++] = r->ttft_us[i] / 1e6;
		qsort(v, n, sizeof(*v), dcmp);
		step = n > 400 ? n / 400 : 1;
		for (size_t i = 0; i < n; i += step)	/* fraction of all requests */
			fprintf(f, "%.4f %.5f\n", v[i], (double)(i + 1) / r->n);
		if (n)
			fprintf(f, "%.4f %.5f\n", v[n - 1], (double)n / r->n);
		fclose(f);
		free(v);
	}
	snprintf(path, sizeof(path), "%s/rho_%.31s.dat", outdir, tr->name);
	f = fopen(path, "w");
	if (f) {
		fprintf(f, "# rho, then per policy: p90_with_shed_s goodput_req_s\n");
		for (int ri = 0; ri < n_rho; ri++) {
			fprintf(f, "%.2f", rhos[ri]);
			for (int p = 0; p < EV_CLOUD; p++)
				fprintf(f, " %.4f %.4f",
					tr->ran[ri][p] && !isinf(tr->flat[ri][p].p90_all) ?
					tr->flat[ri][p].p90_all : NAN,
					tr->ran[ri][p] ? tr->flat[ri][p].goodput : NAN);
			fprintf(f, "\n");
		}
		fclose(f);
	}
	snprintf(path, sizeof(path), "%s/wan_%.31s.dat", outdir, tr->name);
	f = fopen(path, "w");
	if (f) {
		for (int p = 0; p < EV_POLICIES; p++)
			if (tr->tran[p])
				fprintf(f, "%s %.4f\n", ev_policy_names[p],
					tr->tiered[p].wan_bytes / 1e9);
		fclose(f);
	}
}

static int parse_list(const char *s, double *v, int max)
{
	int n = 0;
	char *end;

	while (*s && n < max) {
		v[n] = strtod(s, &end);
		if (end == s || !(v[n] > 0) || v[n] > 10)
			return -1;
		n++;
		s = *end == ',' ? end + 1 : end;
		if (*end && *end != ',')
			return -1;
	}
	return n;
}

static int parse_policies(const char *s)
{
	char buf[256], *tok, *save = NULL;

	snprintf(buf, sizeof(buf), "%s", s);
	memset(use, 0, sizeof(use));
	for (tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		int p;

		for (p = 0; p < EV_POLICIES; p++)
			if (!strcmp(tok, ev_policy_names[p]))
				break;
		if (p == EV_POLICIES)
			return -1;
		use[p] = true;
	}
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "trace", required_argument, NULL, 't' },
		{ "rho", required_argument, NULL, 'r' },
		{ "nodes", required_argument, NULL, 'n' },
		{ "policies", required_argument, NULL, 'p' },
		{ "out", required_argument, NULL, 'o' },
		{ "limit", required_argument, NULL, 'l' },
		{ "seed", required_argument, NULL, 's' },
		{ "tele-ms", required_argument, NULL, 'T' },
		{ "cap", required_argument, NULL, 'c' },
		{ "speed", required_argument, NULL, 'S' },
		{ "summary", no_argument, NULL, 'U' },
		{ "requests", required_argument, NULL, 'Q' },
		{ "spread", no_argument, NULL, 'D' },
		{ "kv-link-gbps", required_argument, NULL, 'K' },
		{ "pd-prefill", required_argument, NULL, 'P' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 }
	};
	int c, ret = 0;

	for (int p = 0; p < EV_POLICIES; p++)
		use[p] = true;
	while ((c = getopt_long(argc, argv, "t:r:n:p:o:l:s:T:c:S:UQ:DK:P:h", opts, NULL)) != -1) {
		switch (c) {
		case 't': {
			char *eq = strchr(optarg, '=');

			if (eq && eq != optarg && eq - optarg < 32) {
				*eq = 0;
				add_trace(optarg, eq + 1);
			} else {
				const char *b = strrchr(optarg, '/');

				add_trace(b ? b + 1 : optarg, optarg);
			}
			break;
		}
		case 'r':
			n_rho = parse_list(optarg, rhos, MAX_RHO);
			if (n_rho < 1) {
				fprintf(stderr, "idn_eval: --rho: numbers in (0, 10], comma-separated\n");
				return 2;
			}
			break;
		case 'n':
			nodes = atoi(optarg);
			if (nodes < 1 || nodes > EV_MAX_NODES) {
				fprintf(stderr, "idn_eval: --nodes: 1..%d\n", EV_MAX_NODES);
				return 2;
			}
			break;
		case 'p':
			if (parse_policies(optarg)) {
				fprintf(stderr, "idn_eval: --policies: unknown name\n");
				return usage(stderr);
			}
			break;
		case 'o':
			outdir = optarg;
			break;
		case 'l':
			limit = strtoul(optarg, NULL, 10);
			break;
		case 's':
			seed = strtoull(optarg, NULL, 0);
			break;
		case 'T':
			tele_ms = strtoul(optarg, NULL, 10);
			if (!tele_ms || tele_ms > 600000) {
				fprintf(stderr, "idn_eval: --tele-ms: 1..600000\n");
				return 2;
			}
			break;
		case 'c':
			cap_json = optarg;
			break;
		case 'S':
			speed = strtod(optarg, NULL);
			if (!(speed >= 0.01 && speed <= 1000)) {
				fprintf(stderr, "idn_eval: --speed: 0.01..1000\n");
				return 2;
			}
			break;
		case 'U':
			summary = true;
			break;
		case 'D':
			spread = true;
			break;
		case 'P':
			pd_prefill = atoi(optarg);
			if (pd_prefill < 1 || pd_prefill >= EV_MAX_NODES) {
				fprintf(stderr, "idn_eval: --pd-prefill: 1..nodes-1\n");
				return 2;
			}
			break;
		case 'K':
			kv_link_gbps = strtod(optarg, NULL);
			if (!(kv_link_gbps >= 0.001 && kv_link_gbps <= 1e5)) {
				fprintf(stderr, "idn_eval: --kv-link-gbps: 0.001..100000\n");
				return 2;
			}
			break;
		case 'Q':
			req_out = fopen(optarg, "w");
			if (!req_out) {
				fprintf(stderr, "idn_eval: %s: %s\n", optarg, strerror(errno));
				return 1;
			}
			break;
		case 'h':
			return usage(stdout);
		default:
			return usage(stderr);
		}
	}
	if (optind < argc)
		return usage(stderr);
	if (!n_tr)
		default_traces();
	if (!n_tr) {
		fprintf(stderr, "idn_eval: no trace (give --trace FILE)\n");
		return 1;
	}
	if (outdir)
		mkdir(outdir, 0755);
	for (int k = 0; k < n_tr; k++) {
		char err[512] = "";

		if (ev_trace_load(T[k].path, &T[k].t, err, sizeof(err))) {
			fprintf(stderr, "idn_eval: %s\n", err);
			return 1;
		}
		if (limit && T[k].t.n > limit) {
			T[k].t.n = limit;
			T[k].t.span_us = T[k].t.r[limit - 1].t_us;
		}
		if (spread)
			ev_trace_spread(&T[k].t);
	}
	for (int k = 0; k < n_tr && !ret; k++) {
		struct tr *tr = &T[k];
		int ri_cdf = n_rho > 1 ? 1 : 0;
		char name[128];

		fprintf(stderr, "idn_eval: %s: %zu requests from %s, %.0f s\n", tr->name,
			tr->t.n, tr->path, tr->t.span_us / 1e6);
		for (int ri = 0; ri < n_rho && !ret; ri++) {
			int b;

			for (int p = 0; p < EV_CLOUD && !ret; p++) {
				if (!use[p])
					continue;
				ret = run_one(tr, p, EV_FLAT, rhos[ri], &tr->flat[ri][p],
					      ri == ri_cdf && outdir, false, 0);
				tr->ran[ri][p] = !ret;
			}
			b = best_of(tr->flat[ri], tr->ran[ri]);
			if (ret || b < 0 || !tr->ran[ri][EV_IDN])
				continue;
			snprintf(name, sizeof(name), "eval_%.31s_rho%.1f_p90_vs_best", tr->name, rhos[ri]);
			fig(name, ratio(tr->flat[ri][EV_IDN].p90, tr->flat[ri][b].p90_all), "x");
			snprintf(name, sizeof(name), "eval_%.31s_rho%.1f_goodput_vs_best", tr->name,
				 rhos[ri]);
			fig(name, ratio(tr->flat[ri][EV_IDN].goodput, tr->flat[ri][b].goodput), "x");
			snprintf(name, sizeof(name), "eval_%.31s_rho%.1f_shed_pct", tr->name, rhos[ri]);
			fig(name, tr->flat[ri][EV_IDN].shed_pct, "%");
		}
		/* migration on/off: IDN at rho 1.0 with idnd --migrate (prefix traces) */
		for (int ri = 0; ri < n_rho && !ret; ri++) {
			if (fabs(rhos[ri] - 1.0) > 1e-9 || !tr->ran[ri][EV_IDN] || !tr->t.has_prefix)
				continue;
			ret = run_one(tr, EV_IDN, EV_FLAT, rhos[ri], &tr->mig, false, true, 0);
			tr->mran = !ret;
			tr->mig_ri = ri;
			if (ret)
				break;
			snprintf(name, sizeof(name), "eval_%.31s_rho1.0_migrate_p90_vs_nomigrate",
				 tr->name);
			fig(name, ratio(tr->mig.p90, tr->flat[ri][EV_IDN].p90), "x");
			/*
			 * What any state mobility could reach under the same
			 * engines and router: the blocks given free (every
			 * node's cache, or every prefix ever seen), the router's
			 * J as the product's (T_state prices recompute off the
			 * affinity node) and knowing it (no T_state); the
			 * bound is the better of the two
			 */
			for (int o = 0; o < 2 && !ret; o++) {
				static const char *const on[2] = { "migrate_oracle", "reuse_oracle" };
				double q[2];

				for (int b = 0; b < 2 && !ret; b++) {
					ret = run_full(tr, EV_IDN, EV_FLAT, rhos[ri], &tr->orc[o][b],
						       false, false, 0, o ? EV_ORACLE_REUSE :
						       EV_ORACLE_CLUSTER, b);
					q[b] = ratio(tr->orc[o][b].p90, tr->flat[ri][EV_IDN].p90);
				}
				if (ret)
					break;
				fprintf(stderr, "idn_eval: %s rho 1.0 %s: p90 %.3f s with J as the "
					"product's (%.3f x, hit %.1f %%), %.3f s with J knowing it "
					"(%.3f x, hit %.1f %%); without: %.3f s, hit %.1f %%\n",
					tr->name, on[o], tr->orc[o][0].p90, q[0],
					tr->orc[o][0].hit_pct, tr->orc[o][1].p90, q[1],
					tr->orc[o][1].hit_pct, tr->flat[ri][EV_IDN].p90,
					tr->flat[ri][EV_IDN].hit_pct);
				snprintf(name, sizeof(name), "eval_%.31s_rho1.0_%s_p90_vs_nomigrate",
					 tr->name, on[o]);
				fig(name, q[0] < q[1] ? q[0] : q[1], "x");
			}
			tr->oran = !ret;
		}
		/* ... and at the other load levels */
		for (int ri = 0; ri < n_rho && !ret; ri++) {
			if (fabs(rhos[ri] - 1.0) <= 1e-9 || !tr->ran[ri][EV_IDN] || !tr->t.has_prefix)
				continue;
			ret = run_one(tr, EV_IDN, EV_FLAT, rhos[ri], &tr->migr[ri], false, true, 0);
			if (ret)
				break;
			snprintf(name, sizeof(name), "eval_%.31s_rho%.1f_migrate_p90_vs_nomigrate",
				 tr->name, rhos[ri]);
			fig(name, ratio(tr->migr[ri].p90, tr->flat[ri][EV_IDN].p90), "x");
		}
		/*
		 * P/D vs colocated: IDN at rho 1.0 with the capability in two
		 * stages on the same nodes, split by the offered work: prefill
		 * nodes in the proportion of the trace's prefill work
		 */
		for (int ri = 0; ri < n_rho && !ret && nodes > 1; ri++) {
			double wp, wd;

			if (fabs(rhos[ri] - 1.0) > 1e-9 || !tr->ran[ri][EV_IDN])
				continue;
			ev_offered_split(&tr->t, &wp, &wd);
			tr->n_prefill = (int)lround(nodes * wp / (wp + wd));
			if (pd_prefill)
				tr->n_prefill = pd_prefill;
			tr->n_prefill = tr->n_prefill < 1 ? 1 : tr->n_prefill > nodes - 1 ?
					nodes - 1 : tr->n_prefill;
			ret = run_one(tr, EV_IDN, EV_FLAT, rhos[ri], &tr->pd, false, false,
				      tr->n_prefill);
			tr->pran = !ret;
			tr->mig_ri = ri;
			if (ret)
				break;
			fprintf(stderr, "idn_eval: %s rho 1.0 P/D: %d prefill + %d decode nodes "
				"(prefill %.0f %% of the offered work)\n", tr->name, tr->n_prefill,
				nodes - tr->n_prefill, 100 * wp / (wp + wd));
			snprintf(name, sizeof(name), "eval_%.31s_rho1.0_pd_vs_colocated_goodput",
				 tr->name);
			fig(name, ratio(tr->pd.goodput, tr->flat[ri][EV_IDN].goodput), "x");
		}
		/* tiered layout at rho 0.7 (8 nodes) */
		for (int p = 0; p < EV_POLICIES && !ret && nodes == 8; p++) {
			if (!use[p])
				continue;
			ret = run_one(tr, p, EV_TIERED, 0.7, &tr->tiered[p], false, false, 0);
			tr->tran[p] = !ret;
		}
		if (!ret && tr->tran[EV_IDN]) {
			int b = best_of(tr->tiered, tr->tran);

			if (b >= 0) {
				snprintf(name, sizeof(name), "eval_%.31s_tiered_p90_vs_best", tr->name);
				fig(name, ratio(tr->tiered[EV_IDN].p90, tr->tiered[b].p90_all), "x");
			}
			if (tr->tran[EV_CLOUD]) {
				snprintf(name, sizeof(name), "eval_%.31s_wan_vs_cloud", tr->name);
				fig(name, ratio(tr->tiered[EV_IDN].wan_bytes,
						tr->tiered[EV_CLOUD].wan_bytes), "x");
			}
		}
		if (outdir)
			plot_data(tr, ri_cdf);
	}
	if (!ret)
		fig("eval_sim_requests_per_s", sim_cpu_s > 0 ? sim_requests / sim_cpu_s : 0,
		    "req/s");
	if (outdir && !ret)
		report();
	if (req_out)
		fclose(req_out);
	for (int k = 0; k < n_tr; k++) {
		for (int ri = 0; ri < n_rho; ri++)
			for (int p = 0; p < EV_POLICIES; p++)
				ev_res_free(&T[k].flat[ri][p]);
		ev_res_free(&T[k].mig);
		for (int ri = 0; ri < MAX_RHO; ri++)
			ev_res_free(&T[k].migr[ri]);
		for (int o = 0; o < 4; o++)
			ev_res_free(&T[k].orc[o / 2][o % 2]);
		ev_res_free(&T[k].pd);
		ev_trace_free(&T[k].t);
	}
	return ret ? 1 : 0;
}
