// SPDX-License-Identifier: GPL-2.0
/*
 * receipt.c - idnctl receipt: read routing receipts from the ring buffer
 * idn_receipts and print each (text, or one JSON object per line with -j).
 * `idnctl monitor` (hold.c) follows the same ring, with idn.ko's events.
 *
 * `idnctl receipt verify` (receipt_verify.c) checks the agents' signed
 * execution receipts instead.
 *
 * Reading a BPF ring buffer consumes it: one reader at a time sees each
 * receipt.
 */
#include <stdio.h>
#include <errno.h>
#include <signal.h>
#include <time.h>
#include <bpf/libbpf.h>

#include "idnctl.h"

static int usage_receipt(void)
{
	fprintf(stdout,
"Usage: idnctl receipt show [ count N ] [ timeout SECONDS ]\n"
"       idnctl receipt verify { FILE | - } [ key HEX ]\n"
"       idnctl receipt help\n"
"Without count, prints the receipts waiting in the ring and returns;\n"
"with count, waits for N receipts (or the timeout, or SIGINT).\n"
"verify checks node agents' signed execution receipts (one per line):\n"
"exit 1 when any was altered; key pins the signer's Ed25519 key.\n");
	return EXIT_OK;
}

static volatile sig_atomic_t stop;
static unsigned long seen, want;

static void on_signal(int sig)
{
	stop = 1;
}

/*
 * The domains a forwarded request crosses (docs/federation.md): the home
 * domain, then the chosen entry's domain when that is another one (a
 * federation peer's ingress, or a node of another domain), as "0>2".
 */
static void print_domain_path(const struct idn_receipt *rc)
{
	struct idn_config cfg;
	struct idn_node n;
	char b[32];

	if (rc->node == IDN_NODE_NONE || idn_config_get(&G.maps, &cfg) ||
	    idn_node_get(&G.maps, rc->node, &n) || !(n.flags & IDN_NODE_F_VALID))
		return;
	if (n.domain != cfg.home_domain)
		snprintf(b, sizeof(b), "%u>%u", cfg.home_domain, n.domain);
	else
		snprintf(b, sizeof(b), "%u", cfg.home_domain);
	print_text("\n    ");
	print_string(PRINT_ANY, "domain_path", "domain-path %s", b);
	if (n.domain != cfg.home_domain && (n.flags & IDN_NODE_F_WAN))
		print_string(PRINT_ANY, "via", " via %s", "wan");
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
	print_receipt(&rc);
	print_domain_path(&rc);
	print_nl();
	idn_json_end();
	fflush(stdout);
	seen++;
	if (want && seen >= want)
		return 1;	/* stops ring_buffer__poll/consume */
	return 0;
}

static int read_receipts(bool follow, unsigned long count, unsigned int timeout_s)
{
	struct ring_buffer *rb;
	struct timespec t0, t;
	int fd, err = 0;

	fd = idn_map_fd(&G.maps, IDN_MAP_RECEIPTS);
	if (fd < 0)
		return runtime_error("receipts: %s", idn_errmsg());
	rb = ring_buffer__new(fd, on_receipt, NULL, NULL);
	if (!rb)
		return runtime_error("receipts: ring buffer: %s", strerror(errno));
	want = count;
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	clock_gettime(CLOCK_MONOTONIC, &t0);

	if (!follow) {
		err = ring_buffer__consume(rb);
		goto out;
	}
	while (!stop && !(want && seen >= want)) {
		err = ring_buffer__poll(rb, 200);
		if (err == -EINTR) {
			err = 0;
			break;
		}
		if (err < 0)
			break;
		clock_gettime(CLOCK_MONOTONIC, &t);
		if (timeout_s && t.tv_sec - t0.tv_sec >= (time_t)timeout_s)
			break;
	}
out:
	ring_buffer__free(rb);
	if (err < 0)
		return runtime_error("receipts: %s", strerror(-err));
	return EXIT_OK;
}

static int parse_read_args(int argc, char **argv, unsigned long *count,
			   unsigned int *timeout_s, const char *obj)
{
	__u32 v;

	while (argc > 0) {
		if (matches(*argv, "count")) {
			NEXT_ARG();
			PARSE(idn_parse_u32(*argv, 1, UINT32_MAX, &v, "count"));
			*count = v;
		} else if (matches(*argv, "timeout")) {
			NEXT_ARG();
			PARSE(idn_parse_u32(*argv, 1, 86400, &v, "timeout"));
			*timeout_s = v;
		} else {
			return usage_error("unknown argument \"%s\", try \"idnctl %s help\".",
					   *argv, obj);
		}
		argc--;
		argv++;
	}
	return -1;
}

int do_receipt(int argc, char **argv)
{
	unsigned long count = 0;
	unsigned int timeout_s = 0;
	int rc;

	if (argc > 0 && matches(*argv, "help"))
		return usage_receipt();
	if (argc > 0 && matches(*argv, "verify"))
		return do_receipt_verify(argc - 1, argv + 1);
	if (argc > 0 && !matches(*argv, "show"))
		return unknown_cmd("receipt", *argv);
	if (argc > 0) {
		argc--;
		argv++;
	}
	rc = parse_read_args(argc, argv, &count, &timeout_s, "receipt");
	if (rc >= 0)
		return rc;
	return read_receipts(count || timeout_s, count, timeout_s);
}
