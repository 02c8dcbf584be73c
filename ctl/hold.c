// SPDX-License-Identifier: GPL-2.0
/*
 * hold.c - idnctl hold / monitor: idn.ko's activation hold over generic
 * netlink (ctl/lib/hold.c): limits, counters and queues, RELEASE and
 * FLUSH; and `monitor`, which prints the dataplane's routing receipts
 * and/or the module's events as they arrive (one JSON object per line
 * with -j).
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <time.h>
#include <bpf/libbpf.h>

#include "idnctl.h"

static int usage_hold(void)
{
	fprintf(stdout,
"Usage: idnctl hold [ show ]\n"
"       idnctl hold set [ max-pkts N ] [ max-bytes N ] [ timeout-ms MS ] [ event-ms MS ]\n"
"       idnctl hold release { cap CAP | all }\n"
"       idnctl hold flush [ cap CAP ]\n"
"       idnctl hold help\n"
"Needs idn.ko. flush without cap rejects every held packet.\n");
	return EXIT_OK;
}

static int usage_monitor(void)
{
	fprintf(stdout,
"Usage: idnctl monitor [ { receipts | events | all } ] [ count N ] [ timeout SECONDS ]\n"
"       idnctl monitor help\n"
"receipts (default): routing receipts of the dataplane; events: idn.ko's\n"
"miss, release and reject events, and unload / load of the module; all:\n"
"both. Prints until SIGINT (or count / timeout).\n");
	return EXIT_OK;
}

static int open_hold(struct idn_hold **h)
{
	if (idn_hold_open(h))
		return runtime_error("hold: %s", idn_errmsg());
	return 0;
}

static void print_counters(const __u64 *st)
{
	print_string(PRINT_FP, NULL, "%s", "counters ");
	open_json_object("counters");
	for (int i = IDN_HS_HELD; i < __IDN_HS_MAX; i++) {
		char fmt[32];
		const char *n = idn_name(&idn_hold_stat_names, i);

		snprintf(fmt, sizeof(fmt), "%s %%llu ", n);
		print_u64(PRINT_ANY, n, fmt, st[i]);
	}
	close_json_object();
}

/* the first miss of a queue: where it was going */
static void print_miss_dst(const struct idn_hold_queue *q)
{
	if (q->family)
		print_addr("dst", "dst %s ", q->family, q->daddr);
	print_uint(PRINT_ANY, "dport", "dport %u ", q->dport);
	print_string(PRINT_ANY, "proto", "proto %s ", idn_proto_name(q->proto));
	print_uint(PRINT_ANY, "ifindex", "ifindex %u ", q->ifindex);
}

static int hold_show(struct idn_hold *h)
{
	struct idn_hold_queue *qs;
	struct idn_hold_cfg c;
	__u64 st[__IDN_HS_MAX];
	int n;

	if (idn_hold_config_get(h, &c) || idn_hold_stats(h, st))
		return runtime_error("%s", idn_errmsg());
	n = idn_hold_queues(h, &qs);
	if (n < 0)
		return runtime_error("%s", idn_errmsg());
	idn_json_begin(false);
	print_text("limits ");
	print_uint(PRINT_ANY, "max_pkts", "max-pkts %u ", c.max_pkts);
	print_uint(PRINT_ANY, "max_bytes", "max-bytes %u ", c.max_bytes);
	print_uint(PRINT_ANY, "timeout_ms", "timeout-ms %u ", c.timeout_ms);
	print_uint(PRINT_ANY, "event_ms", "event-ms %u ", c.event_ms);
	print_uint(PRINT_ANY, "max_queues", "max-queues %u ", c.max_queues);
	print_nl();
	print_counters(st);
	print_nl();
	open_json_array(PRINT_JSON, "queues");
	for (int i = 0; i < n; i++) {
		open_json_object(NULL);
		print_cap("cap", "queue cap %s ", qs[i].cap);
		print_uint(PRINT_ANY, "pkts", "pkts %u ", qs[i].pkts);
		print_uint(PRINT_ANY, "bytes", "bytes %u ", qs[i].bytes);
		print_uint(PRINT_ANY, "age_ms", "age-ms %u ", qs[i].age_ms);
		print_miss_dst(&qs[i]);
		if (qs[i].has_stats) {
			print_nl();
			print_text("  ");
			print_counters(qs[i].st);
		}
		close_json_object();
		print_nl();
	}
	close_json_array(PRINT_JSON, NULL);
	idn_json_end();
	free(qs);
	return EXIT_OK;
}

/* parse `set` arguments into @c / @which; -1 when fine, else the exit status */
static int parse_set(int argc, char **argv, struct idn_hold_cfg *c, unsigned int *which)
{
	static const struct {
		const char *kw;
		unsigned int bit;
		__u32 min, max;	/* as the module's policy (docs/kernel.md) */
		size_t off;
	} keys[] = {
		{ "max-pkts", IDN_HC_MAX_PKTS, 1, 65536, offsetof(struct idn_hold_cfg, max_pkts) },
		{ "max-bytes", IDN_HC_MAX_BYTES, 1500, 64U << 20,
		  offsetof(struct idn_hold_cfg, max_bytes) },
		{ "timeout-ms", IDN_HC_TIMEOUT_MS, 10, 600000,
		  offsetof(struct idn_hold_cfg, timeout_ms) },
		{ "event-ms", IDN_HC_EVENT_MS, 0, 60000, offsetof(struct idn_hold_cfg, event_ms) },
	};
	while (argc > 0) {
		size_t k;

		for (k = 0; k < ARRAY_SIZE(keys); k++)
			if (matches(*argv, keys[k].kw))
				break;
		if (k == ARRAY_SIZE(keys))
			return usage_error("unknown argument \"%s\", try \"idnctl hold help\".",
					   *argv);
		if (*which & keys[k].bit)
			return duparg(*argv);
		NEXT_ARG();
		PARSE(idn_parse_u32(*argv, keys[k].min, keys[k].max,
				    (__u32 *)((char *)c + keys[k].off), keys[k].kw));
		*which |= keys[k].bit;
		argc--;
		argv++;
	}
	if (!*which)
		return usage_error("hold set: nothing to set, try \"idnctl hold help\".");
	return -1;
}

/* release / flush: { cap CAP | all }; flush alone means all. -1: fine */
static int parse_sel(bool release, int argc, char **argv, bool *all, __u32 *cap)
{
	const char *verb = release ? "release" : "flush";
	bool have = false;

	while (argc > 0) {
		if (have)
			return usage_error("hold %s: one of \"cap CAP\" or \"all\"", verb);
		if (matches(*argv, "cap")) {
			NEXT_ARG();
			PARSE(idn_parse_cap(*argv, cap));
		} else if (matches(*argv, "all")) {
			*all = true;
		} else {
			return usage_error("unknown argument \"%s\", try \"idnctl hold help\".",
					   *argv);
		}
		have = true;
		argc--;
		argv++;
	}
	if (!have) {
		if (release)
			return usage_error("hold release needs \"cap CAP\" or \"all\"");
		*all = true;
	}
	return -1;
}

static int hold_sel(struct idn_hold *h, bool release, bool all, __u32 cap)
{
	__u32 count;
	int err;

	err = release ? idn_hold_release(h, all, cap, &count)
		      : idn_hold_flush(h, all, cap, &count);
	if (err)
		return runtime_error("%s", idn_errmsg());
	idn_json_begin(false);
	print_uint(PRINT_ANY, release ? "released" : "rejected",
		   release ? "released %u" : "rejected %u", count);
	print_nl();
	idn_json_end();
	return EXIT_OK;
}

int do_hold(int argc, char **argv)
{
	struct idn_hold *h;
	const char *cmd = argc > 0 ? *argv : "show";
	struct idn_hold_cfg c = { 0 };
	unsigned int which = 0;
	bool all = false;
	__u32 cap = 0;
	int rc = -1;

	if (matches(cmd, "help"))
		return usage_hold();
	if (!matches(cmd, "show") && !matches(cmd, "set") && !matches(cmd, "release") &&
	    !matches(cmd, "flush"))
		return unknown_cmd("hold", cmd);
	if (argc > 0) {
		argc--;
		argv++;
	}
	/* usage errors first: they do not need the module */
	if (matches(cmd, "show") && argc > 0)
		return usage_error("unknown argument \"%s\", try \"idnctl hold help\".", *argv);
	if (matches(cmd, "set"))
		rc = parse_set(argc, argv, &c, &which);
	else if (!matches(cmd, "show"))
		rc = parse_sel(matches(cmd, "release"), argc, argv, &all, &cap);
	if (rc >= 0)
		return rc;
	rc = open_hold(&h);
	if (rc)
		return rc;
	if (matches(cmd, "show"))
		rc = hold_show(h);
	else if (matches(cmd, "set"))
		rc = idn_hold_config_set(h, &c, which, NULL) ?
		     runtime_error("%s", idn_errmsg()) : EXIT_OK;
	else
		rc = hold_sel(h, matches(cmd, "release"), all, cap);
	idn_hold_close(h);
	return rc;
}

/* ---- monitor ------------------------------------------------------------ */

static volatile sig_atomic_t stop;
static unsigned long seen, want;
static bool tag_receipts;	/* "all": say which kind each line is */

static void on_signal(int sig)
{
	stop = 1;
}

static int one_more(void)
{
	fflush(stdout);
	seen++;
	return want && seen >= want;
}

static int on_receipt(void *ctx, void *data, size_t sz)
{
	struct idn_receipt rc;

	if (sz < sizeof(rc)) {
		pr_warn("idnctl: short receipt (%zu bytes)\n", sz);
		return 0;
	}
	memcpy(&rc, data, sizeof(rc));
	idn_json_begin(false);
	if (tag_receipts)
		print_string(PRINT_ANY, "event", "%s ", "receipt");
	print_receipt(&rc);
	print_nl();
	idn_json_end();
	return one_more();	/* non-zero stops ring_buffer__consume */
}

static int on_event(const struct idn_hold_event *ev, void *ctx)
{
	static const char *const names[] = {
		[IDN_HEV_MISS] = "miss", [IDN_HEV_RELEASE] = "release",
		[IDN_HEV_REJECT] = "reject", [IDN_HEV_UNLOAD] = "unload",
		[IDN_HEV_LOAD] = "load",
	};

	idn_json_begin(false);
	print_string(PRINT_ANY, "event", "%s ", names[ev->type]);
	switch (ev->type) {
	case IDN_HEV_MISS:
		print_cap("cap", "cap %s ", ev->cap);
		print_uint(PRINT_ANY, "pkts", "pkts %u ", ev->q.pkts);
		print_miss_dst(&ev->q);
		break;
	case IDN_HEV_RELEASE:
		print_cap("cap", "cap %s ", ev->cap);
		print_uint(PRINT_ANY, "count", "count %u", ev->count);
		break;
	case IDN_HEV_REJECT:
		print_cap("cap", "cap %s ", ev->cap);
		print_string(PRINT_ANY, "reason", "reason %s ",
			     idn_name(&idn_hold_reason_names, ev->reason));
		print_uint(PRINT_ANY, "count", "count %u", ev->count);
		break;
	case IDN_HEV_UNLOAD:
		print_string(PRINT_ANY, "module", "module %s", "idn");
		break;
	case IDN_HEV_LOAD:
		print_string(PRINT_ANY, "module", "module %s", "idn");
		break;
	}
	print_nl();
	idn_json_end();
	return one_more();
}

static int monitor(bool receipts, bool events, unsigned long count, unsigned int timeout_s,
		   bool all)
{
	struct idn_hold_watch *w = NULL;
	struct ring_buffer *rb = NULL;
	struct pollfd pfd[2];
	struct timespec t0, t;
	int n = 0, rc = EXIT_OK, err, fd;

	want = count;
	tag_receipts = all;
	if (events && idn_hold_watch_open(&w, on_event, NULL)) {
		if (!all)
			return runtime_error("monitor events: %s", idn_errmsg());
		pr_warn("idnctl: monitor: %s; receipts only\n", idn_errmsg());
		w = NULL;
	}
	if (receipts) {
		fd = idn_map_fd(&G.maps, IDN_MAP_RECEIPTS);
		if (fd >= 0)
			rb = ring_buffer__new(fd, on_receipt, NULL, NULL);
		if (!rb) {
			rc = runtime_error("receipts: %s", fd < 0 ? idn_errmsg() : strerror(errno));
			goto out;
		}
		pfd[n].fd = ring_buffer__epoll_fd(rb);
		pfd[n++].events = POLLIN;
	}
	if (w) {
		pfd[n].fd = idn_hold_watch_fd(w);
		pfd[n++].events = POLLIN;
	}
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	while (!stop && !(want && seen >= want)) {
		if (poll(pfd, n, 200) < 0 && errno != EINTR) {
			rc = runtime_error("monitor: poll: %s", strerror(errno));
			break;
		}
		if (rb) {
			err = ring_buffer__consume(rb);
			if (err < 0 && err != -EINTR) {
				rc = runtime_error("receipts: %s", strerror(-err));
				break;
			}
		}
		if (w && !(want && seen >= want)) {
			err = idn_hold_watch_read(w);
			if (err == -ENOBUFS) {
				pr_warn("idnctl: monitor: %s\n", idn_errmsg());
			} else if (err < 0) {
				rc = runtime_error("monitor: %s", idn_errmsg());
				break;
			}
		}
		clock_gettime(CLOCK_MONOTONIC, &t);
		if (timeout_s && t.tv_sec - t0.tv_sec >= (time_t)timeout_s)
			break;
	}
out:
	ring_buffer__free(rb);
	idn_hold_watch_close(w);
	return rc;
}

int do_monitor(int argc, char **argv)
{
	bool receipts = true, events = false, all = false;
	unsigned long count = 0;
	unsigned int timeout_s = 0;
	__u32 v;

	if (argc > 0 && matches(*argv, "help"))
		return usage_monitor();
	if (argc > 0 && (matches(*argv, "receipts") || matches(*argv, "events") ||
			 matches(*argv, "all"))) {
		all = matches(*argv, "all");
		events = !matches(*argv, "receipts");
		receipts = !matches(*argv, "events");
		argc--;
		argv++;
	}
	while (argc > 0) {
		if (matches(*argv, "count")) {
			NEXT_ARG();
			PARSE(idn_parse_u32(*argv, 1, UINT32_MAX, &v, "count"));
			count = v;
		} else if (matches(*argv, "timeout")) {
			NEXT_ARG();
			PARSE(idn_parse_u32(*argv, 1, 86400, &v, "timeout"));
			timeout_s = v;
		} else {
			return usage_error("unknown argument \"%s\", try \"idnctl monitor help\".",
					   *argv);
		}
		argc--;
		argv++;
	}
	return monitor(receipts, events, count, timeout_s, all);
}
