// SPDX-License-Identifier: GPL-2.0
/*
 * idnctl.c - entry point: global options, the object table, and the
 * error helpers every object uses.
 *
 *   idnctl [OPTIONS] OBJECT { COMMAND | help }
 *
 * Each object lives in its own file (dp.c vip.c node.c plan.c cap.c
 * route.c stats.c receipt.c hold.c; controller, placement and policy in
 * controller.c); this file knows none of their commands.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <bpf/libbpf.h>

#include "idnctl.h"
#include "idn_version.h"

IDN_ASSERT_ABI();

struct idnctl_opts G;

static const char usage_text[] =
"Usage: idnctl [ OPTIONS ] OBJECT { COMMAND | help }\n"
"where  OBJECT := { dp | vip | node | plan | cap | route | stats | receipt | hold | monitor |\n"
"                  controller | placement | policy | state | publisher | bgp | peer }\n"
"       OPTIONS := { -j[son] | -p[retty] | -P DIR | -n NETNS | -C URL | -v | -V |\n"
"                    --ca FILE | --cert FILE | --key FILE | --insecure }\n"
"  -j, --json         JSON output (errors as {\"error\": ...})\n"
"  -p, --pretty       pretty JSON (implies -j)\n"
"  -P, --pin DIR      bpffs pin directory (default $IDN_PIN or " IDN_PIN_DEFAULT ")\n"
"  -n, --netns NAME   run in network namespace NAME (/run/netns/NAME)\n"
"  -C, --controller URL  idnd's API (default $IDN_CONTROLLER or https://127.0.0.1:8787;\n"
"    http://127.0.0.1:8787 with --insecure)\n"
"  --ca FILE, --cert FILE, --key FILE   mutual TLS to idnd (PEM; default $IDN_CA,\n"
"    $IDN_CERT, $IDN_KEY): the CA of idnd's certificate, ours (OU admin for changes)\n"
"  --insecure         plain http:// to idnd (also $IDN_INSECURE=1)\n"
"  -v, --verbose      more messages (repeat for libbpf debug)\n"
"  -V, --version      print the version\n";

static void usage(FILE *f)
{
	fputs(usage_text, f);
}

/* Print an error once, through the JSON-aware path, and return @code. */
static int error_exit(int code, const char *fmt, va_list ap)
{
	char msg[1024];

	vsnprintf(msg, sizeof(msg), fmt, ap);
	idn_print_error("%s", msg);
	return code;
}

int usage_error(const char *fmt, ...)
{
	va_list ap;
	int code;

	va_start(ap, fmt);
	code = error_exit(EXIT_USAGE, fmt, ap);
	va_end(ap);
	return code;
}

int runtime_error(const char *fmt, ...)
{
	va_list ap;
	int code;

	va_start(ap, fmt);
	code = error_exit(EXIT_FAIL, fmt, ap);
	va_end(ap);
	return code;
}

/*
 * Hand-made changes of plans and nodes: refused while idnd (or its
 * watcher) holds the pin dir's claim (idn_maps_claim()); it would undo
 * them at its next compile. Return -1 when the change may go ahead.
 */
int refuse_managed(const char *cmd)
{
	int r = idn_maps_managed(&G.maps);

	if (r < 0)
		return runtime_error("%s: %s", cmd, idn_errmsg());
	if (r)
		return runtime_error("%s: refused: idnd manages the router at %s (it compiles "
				     "its plans and node table from its registry); change them "
				     "through idnd (idnctl -C URL ...), or stop idnd first",
				     cmd, G.maps.dir);
	return -1;
}

int unknown_cmd(const char *obj, const char *cmd)
{
	return usage_error("Command \"%s\" is unknown, try \"idnctl %s help\".", cmd, obj);
}

int invarg(void)
{
	return usage_error("%s", idn_errmsg());
}

int missarg(const char *kw)
{
	return usage_error("\"%s\" needs an argument", kw);
}

int duparg(const char *kw)
{
	return usage_error("duplicate \"%s\"", kw);
}

static int enter_netns(const char *name)
{
	char path[512];
	int fd;

	if (strchr(name, '/'))
		snprintf(path, sizeof(path), "%s", name);
	else
		snprintf(path, sizeof(path), "/run/netns/%s", name);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return runtime_error("netns %s: %s", name, strerror(errno));
	if (setns(fd, CLONE_NEWNET) < 0) {
		int err = errno;

		close(fd);
		return runtime_error("setns %s: %s", name, strerror(err));
	}
	close(fd);
	return 0;
}

static int do_help(int argc, char **argv)
{
	usage(stdout);
	return EXIT_OK;
}

static const struct {
	const char *name;
	int (*fn)(int argc, char **argv);
} objects[] = {
	{ "dp", do_dp },
	{ "vip", do_vip },
	{ "node", do_node },
	{ "plan", do_plan },
	{ "cap", do_cap },
	{ "route", do_route },
	{ "stats", do_stats },
	{ "receipt", do_receipt },
	{ "hold", do_hold },
	{ "monitor", do_monitor },
	{ "controller", do_controller },
	{ "placement", do_placement },
	{ "state", do_state },
	{ "policy", do_policy },
	{ "publisher", do_publisher },
	{ "bgp", do_bgp },
	{ "peer", do_peer },
	{ "help", do_help },
};

int main(int argc, char **argv)
{
	static const struct option long_opts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "pretty", no_argument, NULL, 'p' },
		{ "pin", required_argument, NULL, 'P' },
		{ "netns", required_argument, NULL, 'n' },
		{ "controller", required_argument, NULL, 'C' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "version", no_argument, NULL, 'V' },
		{ "help", no_argument, NULL, 'h' },
		{ "ca", required_argument, NULL, 1 },
		{ "cert", required_argument, NULL, 2 },
		{ "key", required_argument, NULL, 3 },
		{ "insecure", no_argument, NULL, 4 },
		{}
	};
	int c, rc;

	opterr = 0;
	while ((c = getopt_long(argc, argv, "+jpP:n:C:vVh", long_opts, NULL)) != -1) {
		switch (c) {
		case 'j':
			G.json = true;
			break;
		case 'p':
			G.pretty = G.json = true;
			break;
		case 'P':
			G.pin = optarg;
			break;
		case 'n':
			G.netns = optarg;
			break;
		case 'C':
			G.ctl_url = optarg;
			break;
		case 1:
			G.tls.ca = optarg;
			break;
		case 2:
			G.tls.cert = optarg;
			break;
		case 3:
			G.tls.key = optarg;
			break;
		case 4:
			G.tls.insecure = true;
			break;
		case 'v':
			G.verbose++;
			break;
		case 'V':
			printf("idnctl %s (libbpf %s)\n", idn_version, libbpf_version_string());
			return EXIT_OK;
		case 'h':
			usage(stdout);
			return EXIT_OK;
		default:
			idn_print_init(G.json, G.pretty, NULL);
			if (optopt)
				usage_error("option \"-%c\" is unknown or needs an argument, try \"idnctl help\".",
					    optopt);
			else
				usage_error("option \"%s\" is unknown, try \"idnctl help\".",
					    argv[optind - 1]);
			return EXIT_USAGE;
		}
	}
	argc -= optind;
	argv += optind;
	idn_tls_env(&G.tls);

	idn_print_init(G.json, G.pretty, NULL);
	idn_log_init(G.verbose);
	idn_maps_init(&G.maps, G.pin);

	if (argc < 1) {
		usage(stderr);
		return EXIT_USAGE;
	}
	if (G.netns) {
		rc = enter_netns(G.netns);
		if (rc)
			return rc;
	}
	for (size_t i = 0; i < ARRAY_SIZE(objects); i++) {
		if (matches(argv[0], objects[i].name)) {
			rc = objects[i].fn(argc - 1, argv + 1);
			idn_maps_close(&G.maps);
			return rc;
		}
	}
	return usage_error("Object \"%s\" is unknown, try \"idnctl help\".", argv[0]);
}
