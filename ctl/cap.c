// SPDX-License-Identifier: GPL-2.0
/*
 * cap.c - idnctl cap: the capabilities the dataplane knows (from VIPs,
 * plans and idn_cap_stats) with their new-flow decisions per verdict.
 */
#include <stdio.h>
#include <errno.h>
#include <bpf/bpf.h>

#include "idnctl.h"

static int usage(void)
{
	fprintf(stdout,
"Usage: idnctl cap show [ cap CAP ]\n"
"       idnctl [ -C URL ] cap list\n"
"       idnctl cap help\n");
	return EXIT_OK;
}

struct cap_row {
	__u32 cap;
	unsigned int vips, plans;
};

static struct cap_row *row(struct cap_row **rows, int *n, __u32 cap)
{
	struct cap_row *r;

	for (int i = 0; i < *n; i++)
		if ((*rows)[i].cap == cap)
			return &(*rows)[i];
	r = realloc(*rows, (*n + 1) * sizeof(**rows));
	if (!r)
		return NULL;
	*rows = r;
	r = &r[(*n)++];
	memset(r, 0, sizeof(*r));
	r->cap = cap;
	return r;
}

static int cap_cmp(const void *a, const void *b)
{
	const struct cap_row *x = a, *y = b;

	return x->cap < y->cap ? -1 : x->cap > y->cap;
}

static int cap_show(int argc, char **argv)
{
	struct idn_vip_entry *v = NULL;
	struct idn_plan_entry *p = NULL;
	struct cap_row *rows = NULL, *r;
	struct idn_config cfg;
	int nv, np, n = 0, fd, rc = EXIT_OK;
	__u32 only = 0, key, next;
	void *prev = NULL;

	while (argc > 0) {
		if (matches(*argv, "cap")) {
			NEXT_ARG();
			PARSE(idn_parse_cap(*argv, &only));
		} else {
			return usage_error("unknown argument \"%s\", try \"idnctl cap help\".", *argv);
		}
		argc--;
		argv++;
	}
	if (idn_config_get(&G.maps, &cfg))
		return runtime_error("cap show: %s", idn_errmsg());
	nv = idn_vip_list(&G.maps, &v);
	if (nv < 0)
		return runtime_error("cap show: %s", idn_errmsg());
	np = idn_plan_list(&G.maps, cfg.active_slot & 1, &p);
	if (np < 0) {
		free(v);
		return runtime_error("cap show: %s", idn_errmsg());
	}
	for (int i = 0; i < nv; i++)
		if ((r = row(&rows, &n, v[i].vip.defaults.cap)))
			r->vips++;
	for (int i = 0; i < np; i++) {
		if ((r = row(&rows, &n, p[i].key.cap)))
			r->plans++;
		if (p[i].plan.fallback_cap)
			row(&rows, &n, p[i].plan.fallback_cap);
	}
	fd = idn_map_fd(&G.maps, IDN_MAP_CAP_STATS);
	if (fd >= 0) {
		while (!bpf_map_get_next_key(fd, prev, &next)) {
			key = next;
			prev = &key;
			row(&rows, &n, key);
		}
	}
	if (n)
		qsort(rows, n, sizeof(*rows), cap_cmp);

	idn_json_begin(true);
	for (int i = 0; i < n; i++) {
		struct idn_cstat cs;
		__u64 total = 0;

		if (only && rows[i].cap != only)
			continue;
		if (idn_cstat_read(&G.maps, rows[i].cap, &cs) < 0)
			memset(&cs, 0, sizeof(cs));	/* no decisions yet */
		open_json_object(NULL);
		print_cap("cap", "cap %s ", rows[i].cap);
		print_uint(PRINT_ANY, "vips", "vips %u ", rows[i].vips);
		print_uint(PRINT_ANY, "plans", "plans %u ", rows[i].plans);
		for (int vd = 0; vd < IDN_V_MAX; vd++)
			total += cs.flows[vd];
		print_u64(PRINT_ANY, "flows", "flows %llu", total);
		open_json_object("verdicts");
		for (int vd = 0; vd < IDN_V_MAX; vd++) {
			if (!cs.flows[vd])
				continue;
			print_text(" %s ", idn_name(&idn_verdict_names, vd));
			print_u64(PRINT_ANY, idn_name(&idn_verdict_names, vd), "%llu", cs.flows[vd]);
		}
		close_json_object();
		close_json_object();
		print_nl();
	}
	idn_json_end();
	free(rows);
	free(v);
	free(p);
	return rc;
}

int do_cap(int argc, char **argv)
{
	int rc;

	if (argc < 1)
		return cap_show(0, NULL);
	if (matches(*argv, "show"))
		return cap_show(argc - 1, argv + 1);
	if (matches(*argv, "list"))
		return ctl_cap_list(argc - 1, argv + 1);
	if (matches(*argv, "help")) {
		usage();
		return sign_usage();
	}
	rc = ctl_cap_sign(argc, argv);	/* sign.c: keygen, sign, register, revoke, versions */
	if (rc >= 0)
		return rc;
	return unknown_cmd("cap", *argv);
}
