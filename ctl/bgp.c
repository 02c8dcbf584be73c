// SPDX-License-Identifier: GPL-2.0
/*
 * bgp.c - idnctl bgp: capability anycast through BIRD. `show` prints the
 * prefixes this router can serve now (ctl/lib/anycast.c: a VIP whose
 * capability has an up node in its default plan or its fallback's, the
 * descriptor prefix while any capability has); `sync` writes them as a
 * BIRD include file (static protocols NAME4/NAME6) and runs `birdc
 * configure` whenever that set changes, once or every interval. See
 * docs/federation.md for why a generated file and not per-prefix
 * enable/disable.
 */
#define _GNU_SOURCE	/* pipe2 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/wait.h>

#include "idnctl.h"
#include "anycast.h"

static int usage(void)
{
	fprintf(stdout,
"Usage: idnctl bgp show\n"
"       idnctl bgp sync file FILE [ socket PATH ] [ birdc PATH ] [ name NAME ]\n"
"                       [ interval MS ] [ once ]\n"
"       idnctl bgp help\n"
"show: the prefixes this router announces now (capabilities it can serve).\n"
"sync: write them to FILE (a BIRD include: static protocols NAME4 and NAME6,\n"
"      default name idn_anycast) and run \"birdc [-s PATH] configure\" whenever\n"
"      the set changes; every MS milliseconds (default 200) until SIGINT or\n"
"      SIGTERM, or once.\n");
	return EXIT_OK;
}

/* The snapshot and its prefixes; out has room for every VIP + 1. */
struct snap {
	struct idn_plan_entry *plans;
	struct idn_vip_entry *vips;
	struct idn_node *nodes;
	struct idn_anycast_pfx *out;
	int n_plans, n_vips, n;
};

static void snap_free(struct snap *s)
{
	free(s->plans);
	free(s->vips);
	free(s->nodes);
	free(s->out);
	memset(s, 0, sizeof(*s));
}

static int snap_take(struct snap *s)
{
	struct idn_config cfg;
	int e;

	memset(s, 0, sizeof(*s));
	s->nodes = calloc(IDN_MAX_NODES, sizeof(*s->nodes));
	if (!s->nodes)
		return idn_err(-ENOMEM, "out of memory");
	e = idn_config_get(&G.maps, &cfg);
	if (!e)
		e = idn_node_read_all(&G.maps, s->nodes);
	if (!e) {
		s->n_plans = idn_plan_list(&G.maps, cfg.active_slot & 1, &s->plans);
		e = s->n_plans < 0 ? s->n_plans : 0;
	}
	if (!e) {
		s->n_vips = idn_vip_list(&G.maps, &s->vips);
		e = s->n_vips < 0 ? s->n_vips : 0;
	}
	if (!e) {
		s->out = calloc(s->n_vips + 1, sizeof(*s->out));
		e = s->out ? 0 : idn_err(-ENOMEM, "out of memory");
	}
	if (e) {
		snap_free(s);
		return e;
	}
	s->n = idn_anycast_compute(s->plans, s->n_plans, s->nodes, s->vips, s->n_vips, &cfg,
				   s->out);
	return 0;
}

static int bgp_show(int argc, char **argv)
{
	struct snap s;
	char b[64];

	if (argc > 0)
		return usage_error("unknown argument \"%s\", try \"idnctl bgp help\".", *argv);
	if (snap_take(&s))
		return runtime_error("bgp show: %s", idn_errmsg());
	idn_json_begin(true);
	for (int i = 0; i < s.n; i++) {
		open_json_object(NULL);
		print_string(PRINT_ANY, "prefix", "%s", idn_anycast_fmt(&s.out[i], b, sizeof(b)));
		if (s.out[i].desc)
			print_string(PRINT_ANY, "kind", " %s", "descriptor");
		else
			print_cap("cap", " cap %s", s.out[i].cap);
		close_json_object();
		print_nl();
	}
	idn_json_end();
	snap_free(&s);
	return EXIT_OK;
}

static volatile sig_atomic_t stop;

static void on_sig(int sig)
{
	stop = 1;
}

/*
 * Write FILE atomically (FILE.tmp, rename). Not fsync()ed: a crash may lose
 * the newest set, which the announcer writes again at its first tick, and
 * an fsync behind a busy disk delayed withdrawals by hundreds of ms.
 */
static int write_file(const char *path, const char *text, size_t len)
{
	char tmp[4096];
	int fd, e = 0;

	if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp))
		return idn_err(-ENAMETOOLONG, "%s: name too long", path);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return idn_err(-errno, "%s: %s", tmp, strerror(errno));
	for (size_t off = 0; off < len && !e;) {
		ssize_t w = write(fd, text + off, len - off);

		if (w < 0 && errno != EINTR)
			e = idn_err(-errno, "%s: %s", tmp, strerror(errno));
		else if (w > 0)
			off += w;
	}
	close(fd);
	if (!e && rename(tmp, path))
		e = idn_err(-errno, "rename %s: %s", path, strerror(errno));
	if (e)
		unlink(tmp);
	return e;
}

/*
 * birdc [-s SOCKET] configure: 0 when BIRD took the new configuration
 * ("Reconfigured", "Reconfiguration in progress"); its answer otherwise.
 */
static int bird_configure(const char *birdc, const char *sock)
{
	char out[1024];
	size_t len = 0;
	int pfd[2], st = 0;
	pid_t pid;

	if (pipe2(pfd, O_CLOEXEC))
		return idn_err(-errno, "pipe: %s", strerror(errno));
	pid = fork();
	if (pid < 0) {
		close(pfd[0]);
		close(pfd[1]);
		return idn_err(-errno, "fork: %s", strerror(errno));
	}
	if (!pid) {
		dup2(pfd[1], 1);
		dup2(pfd[1], 2);
		if (sock)
			execlp(birdc, birdc, "-s", sock, "configure", (char *)NULL);
		else
			execlp(birdc, birdc, "configure", (char *)NULL);
		fprintf(stderr, "exec %s: %s", birdc, strerror(errno));
		_exit(127);
	}
	close(pfd[1]);
	for (;;) {
		ssize_t r = read(pfd[0], out + len, sizeof(out) - 1 - len);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		len += r;
		if (len == sizeof(out) - 1) {
			char sink[256];

			while (read(pfd[0], sink, sizeof(sink)) > 0)
				;
			break;
		}
	}
	out[len] = 0;
	close(pfd[0]);
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	if (WIFEXITED(st) && !WEXITSTATUS(st) && strstr(out, "Reconfigur"))
		return 0;
	for (char *p = out; *p; p++)
		if (*p == '\n')
			*p = ' ';
	return idn_err(-EIO, "%s configure: %s", birdc, len ? out : "no answer");
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Log what was announced and withdrawn between two sorted sets. */
static void log_diff(const struct idn_anycast_pfx *a, int na, const struct idn_anycast_pfx *b,
		     int nb)
{
	char s[64];

	for (int i = 0; i < nb; i++) {
		bool had = false;

		for (int j = 0; j < na && !had; j++)
			had = a[j].family == b[i].family && !memcmp(a[j].addr, b[i].addr, 16);
		if (!had)
			printf("%.3f bgp: announce %s\n", now_s(), idn_anycast_fmt(&b[i], s, sizeof(s)));
	}
	for (int j = 0; j < na; j++) {
		bool has = false;

		for (int i = 0; i < nb && !has; i++)
			has = a[j].family == b[i].family && !memcmp(a[j].addr, b[i].addr, 16);
		if (!has)
			printf("%.3f bgp: withdraw %s\n", now_s(), idn_anycast_fmt(&a[j], s, sizeof(s)));
	}
	fflush(stdout);
}

static int bgp_sync(int argc, char **argv)
{
	const char *file = NULL, *sock = NULL, *birdc = "birdc", *name = "idn_anycast";
	struct idn_anycast_pfx *last = NULL;
	int n_last = -1, rc = EXIT_OK;
	bool once = false;
	char *text = NULL, last_err[512] = "";
	size_t text_len = 0;
	__u32 ms = 200;

	while (argc > 0) {
		if (matches(*argv, "file")) {
			NEXT_ARG();
			file = *argv;
		} else if (matches(*argv, "socket")) {
			NEXT_ARG();
			sock = *argv;
		} else if (matches(*argv, "birdc")) {
			NEXT_ARG();
			birdc = *argv;
		} else if (matches(*argv, "name")) {
			NEXT_ARG();
			name = *argv;
		} else if (matches(*argv, "interval")) {
			NEXT_ARG();
			PARSE(idn_parse_u32(*argv, 10, 3600000, &ms, "interval"));
		} else if (matches(*argv, "once")) {
			once = true;
		} else {
			return usage_error("unknown argument \"%s\", try \"idnctl bgp help\".", *argv);
		}
		argc--;
		argv++;
	}
	if (!file)
		return usage_error("bgp sync needs file FILE");
	if (idn_anycast_render(NULL, 0, name, NULL, 0) < 0)
		return invarg();
	signal(SIGINT, on_sig);
	signal(SIGTERM, on_sig);
	signal(SIGPIPE, SIG_IGN);
	while (!stop) {
		struct snap s;
		bool same;

		if (snap_take(&s)) {
			/* the maps may be away for a moment (dp replace): next tick */
			fprintf(stderr, "idnctl bgp: %s\n", idn_errmsg());
			if (once) {
				rc = EXIT_FAIL;
				break;
			}
			usleep(ms * 1000);
			continue;
		}
		same = n_last == s.n && !memcmp(last, s.out, s.n * sizeof(*s.out));
		if (!same) {
			int len = idn_anycast_render(s.out, s.n, name, NULL, 0);
			char *t = len >= 0 ? malloc(len + 1) : NULL;

			if (t) {
				idn_anycast_render(s.out, s.n, name, t, len + 1);
				free(text);
				text = t;
				text_len = len;
			}
			if (!t || write_file(file, text, text_len) ||
			    bird_configure(birdc, sock)) {
				/* not applied: tried again next tick (last unchanged) */
				const char *m = t ? idn_errmsg() : "out of memory";

				if (strcmp(m, last_err))	/* once per new error */
					fprintf(stderr, "%.3f idnctl bgp: %s\n", now_s(), m);
				snprintf(last_err, sizeof(last_err), "%s", m);
				if (once)
					rc = EXIT_FAIL;
			} else {
				if (last_err[0])
					fprintf(stderr, "%.3f idnctl bgp: applied\n", now_s());
				last_err[0] = 0;
				log_diff(last, n_last < 0 ? 0 : n_last, s.out, s.n);
				free(last);
				last = s.out;
				s.out = NULL;
				n_last = s.n;
			}
		}
		snap_free(&s);
		if (once)
			break;
		usleep(ms * 1000);
	}
	free(last);
	free(text);
	return rc;
}

int do_bgp(int argc, char **argv)
{
	if (argc < 1)
		return usage_error("bgp needs a command, try \"idnctl bgp help\".");
	if (matches(*argv, "show"))
		return bgp_show(argc - 1, argv + 1);
	if (matches(*argv, "sync"))
		return bgp_sync(argc - 1, argv + 1);
	if (matches(*argv, "help"))
		return usage();
	return unknown_cmd("bgp", *argv);
}
