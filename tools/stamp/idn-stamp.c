// SPDX-License-Identifier: GPL-2.0
/*
 * idn-stamp - attach the client-side stamping program (bpf/idn_stamp.bpf.c)
 * to a cgroup, run a command under it, or open one stamped connection.
 *
 *   idn-stamp attach cgroup PATH [DESC] [port N] [pin DIR]
 *   idn-stamp detach cgroup PATH [pin DIR]
 *   idn-stamp show [pin DIR]
 *   idn-stamp run [DESC] [port N] [pin DIR] -- CMD [ARGS...]
 *   idn-stamp connect ADDR PORT [DESC] [http [PATH]] [inplace] [pin DIR]
 *   DESC := [cap CLASS[/VARIANT]] [tier N] [policy N] [token N] [size-class N]
 *           [prefix-file FILE [prefix-bytes N]]
 *
 * Pins: the shared maps idn_stamp_sk and idn_stamp_stats live in DIR
 * (default /sys/fs/bpf/idn); each attached cgroup gets DIR/stamp/cg<ID>/
 * holding its link and its configuration map, so a second attach to the
 * same cgroup only changes the descriptor.
 * Exit status: 0 success, 1 failure, 2 usage.
 */
#include <errno.h>
#include <fcntl.h>
#include <dirent.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <netdb.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/wait.h>
#include <linux/magic.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include "idn_version.h"

#include "idn_stamp.h"
#include "stamp.h"
#include "bpf/idn_stamp.skel.h"

IDN_ASSERT_ABI();

static const char *prog_name = "idn-stamp";
static int verbose;

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: idn-stamp [-v | -h | -V] COMMAND ...\n"
		"  -v verbose, -h/--help this text, -V/--version the version\n"
		"  attach cgroup PATH [DESC] [port N] [pin DIR]\n"
		"  detach cgroup PATH [pin DIR]\n"
		"  show [pin DIR]\n"
		"  run [DESC] [port N] [pin DIR] -- CMD [ARGS...]\n"
		"  connect ADDR PORT [DESC] [http [PATH]] [inplace] [pin DIR]\n"
		"DESC := [cap CLASS[/VARIANT]] [tier N] [policy N] [token N] [size-class N]\n"
		"        [prefix-file FILE [prefix-bytes N]]  (token from the prompt's first N bytes)\n"
		"PATH of a cgroup: absolute, or relative to the cgroup2 mount\n"
		"(created when missing). port N: only connections to port N.\n"
		"connect: one connection whose socket carries DESC itself (per-socket\n"
		"storage); in a private cgroup, or with inplace in the caller's cgroup\n"
		"through the pinned map, as an application would.\n");
}

static void err(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s: ", prog_name);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

static int libbpf_print(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	if (level == LIBBPF_DEBUG || (level == LIBBPF_INFO && !verbose))
		return 0;
	return vfprintf(stderr, fmt, ap);
}

/* ---------------------------------------------------------------- */
/* Arguments                                                         */
/* ---------------------------------------------------------------- */

struct opts {
	struct idn_stamp_conf conf;
	const char *pin;
	int have_desc;
	const char *prefix_file;	/* token from this prompt's leading bytes */
	unsigned long long prefix_bytes;
};

/* The token of the prompt in o->prefix_file (idn_stamp_prefix_token()). */
static int prefix_token(struct opts *o)
{
	size_t want = o->prefix_bytes ? o->prefix_bytes : IDN_STAMP_PREFIX_BYTES, n;
	unsigned char *buf = malloc(want);
	FILE *f = fopen(o->prefix_file, "rb");
	int r = -1;

	if (!f || !buf) {
		err("prefix-file %s: %s", o->prefix_file, strerror(errno));
		goto out;
	}
	n = fread(buf, 1, want, f);
	if (ferror(f)) {
		err("prefix-file %s: read error", o->prefix_file);
		goto out;
	}
	o->conf.desc.token = idn_stamp_prefix_token(buf, n, want);
	o->conf.desc.flags |= IDN_DF_TOKEN;
	r = 0;
out:
	if (f)
		fclose(f);
	free(buf);
	return r;
}

static int parse_u64(const char *s, unsigned long long max, unsigned long long *v)
{
	char *end;

	errno = 0;
	*v = strtoull(s, &end, 0);
	if (errno || end == s || *end || *v > max || *s == '-')
		return -1;
	return 0;
}

/*
 * Consume one DESC/port/pin keyword at argv[*i]. Return 1 when consumed,
 * 0 when the word is not ours, -1 on a bad value (already reported).
 */
static int parse_common(int argc, char **argv, int *i, struct opts *o)
{
	const char *kw = argv[*i], *val;
	struct idn_desc *d = &o->conf.desc;
	unsigned long long v;

	if (strcmp(kw, "cap") && strcmp(kw, "tier") && strcmp(kw, "policy") &&
	    strcmp(kw, "token") && strcmp(kw, "size-class") && strcmp(kw, "port") &&
	    strcmp(kw, "pin") && strcmp(kw, "prefix-file") && strcmp(kw, "prefix-bytes"))
		return 0;
	if (*i + 1 >= argc) {
		err("\"%s\" needs a value", kw);
		return -1;
	}
	val = argv[++*i];
	if (!strcmp(kw, "pin")) {
		o->pin = val;
		return 1;
	}
	if (!strcmp(kw, "cap")) {
		if (idn_stamp_parse_cap(val, &d->cap) || IDN_CAP_CLASS(d->cap) == 0)
			goto bad;
	} else if (!strcmp(kw, "tier")) {
		if (parse_u64(val, IDN_TIER_MAX, &v))
			goto bad;
		d->tier = v;
	} else if (!strcmp(kw, "policy")) {
		if (parse_u64(val, 0x7f, &v))
			goto bad;
		d->policy = v;
	} else if (!strcmp(kw, "token")) {
		if (parse_u64(val, ~0ULL, &v))
			goto bad;
		d->token = v;
		d->flags |= IDN_DF_TOKEN;
	} else if (!strcmp(kw, "prefix-file") || !strcmp(kw, "prefix-bytes")) {
		if (!strcmp(kw, "prefix-file"))
			o->prefix_file = val;
		else if (parse_u64(val, 1 << 20, &v) || !v)
			goto bad;
		else
			o->prefix_bytes = v;
		/* either order: the token follows the last of the two */
		if (o->prefix_file && prefix_token(o))
			return -1;
	} else if (!strcmp(kw, "size-class")) {
		if (parse_u64(val, 15, &v))
			goto bad;
		d->size_class = v;
		d->flags |= IDN_DF_SIZE;
	} else if (!strcmp(kw, "port")) {
		if (parse_u64(val, 65535, &v))
			goto bad;
		o->conf.dport = htons(v);
		return 1;
	}
	o->have_desc = 1;
	return 1;
bad:
	err("invalid %s \"%s\"", kw, val);
	return -1;
}

/* ---------------------------------------------------------------- */
/* bpffs, cgroups, loading                                           */
/* ---------------------------------------------------------------- */

static int mkdir_p(const char *path, mode_t mode)
{
	char buf[PATH_MAX], *p;

	if (snprintf(buf, sizeof(buf), "%s", path) >= (int)sizeof(buf))
		return -ENAMETOOLONG;
	for (p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = 0;
		if (mkdir(buf, mode) && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(buf, mode) && errno != EEXIST)
		return -errno;
	return 0;
}

/* Make sure pin dir exists on a bpffs; mount /sys/fs/bpf when it is bare. */
static int prepare_pin_dir(const char *dir)
{
	struct statfs st;

	if (!strncmp(dir, "/sys/fs/bpf", 11) &&
	    (statfs("/sys/fs/bpf", &st) || st.f_type != BPF_FS_MAGIC)) {
		if (mount("bpf", "/sys/fs/bpf", "bpf", 0, "mode=0700"))
			return -errno;
	}
	if (mkdir_p(dir, 0700))
		return -errno;
	if (statfs(dir, &st))
		return -errno;
	return st.f_type == BPF_FS_MAGIC ? 0 : -ENOTSUP;
}

/* Resolve a cgroup PATH (absolute or relative to the cgroup2 mount); create it. */
static int resolve_cgroup(const char *path, char *out, size_t len)
{
	char root[PATH_MAX];
	struct statfs st;
	int ret;

	if (path[0] == '/') {
		if (snprintf(out, len, "%s", path) >= (int)len)
			return -ENAMETOOLONG;
	} else {
		ret = idn_stamp_cgroup2_root(root, sizeof(root), 1);
		if (ret)
			return ret;
		if (snprintf(out, len, "%s/%s", root, path) >= (int)len)
			return -ENAMETOOLONG;
	}
	ret = mkdir_p(out, 0755);
	if (ret)
		return ret;
	if (statfs(out, &st))
		return -errno;
	return st.f_type == CGROUP2_SUPER_MAGIC ? 0 : -ENOTDIR;
}

static int cgroup_state_dir(const char *pin, const char *cg, char *out, size_t len)
{
	struct stat st;

	if (stat(cg, &st))
		return -errno;
	if (snprintf(out, len, "%s/stamp/cg%llu", pin,
		     (unsigned long long)st.st_ino) >= (int)len)
		return -ENAMETOOLONG;
	return 0;
}

/* Open and load one program instance, sharing pinned maps under pin. */
static struct idn_stamp *stamp_load(const char *pin, const struct idn_stamp_conf *conf)
{
	LIBBPF_OPTS(bpf_object_open_opts, oo, .pin_root_path = pin);
	struct idn_stamp *skel;
	__u32 zero = 0;
	int ret;

	ret = prepare_pin_dir(pin);
	if (ret) {
		err("pin dir %s: %s", pin, strerror(-ret));
		return NULL;
	}
	skel = idn_stamp__open_opts(&oo);
	if (!skel) {
		err("open BPF object: %s", strerror(errno));
		return NULL;
	}
	ret = idn_stamp__load(skel);
	if (ret) {
		err("load BPF program: %s", strerror(-ret));
		idn_stamp__destroy(skel);
		return NULL;
	}
	if (bpf_map_update_elem(bpf_map__fd(skel->maps.idn_stamp_conf), &zero, conf, BPF_ANY)) {
		err("set descriptor: %s", strerror(errno));
		idn_stamp__destroy(skel);
		return NULL;
	}
	return skel;
}

static int cgroup_attach(struct idn_stamp *skel, const char *cg)
{
	int cg_fd, fd;

	cg_fd = open(cg, O_RDONLY | O_DIRECTORY);
	if (cg_fd < 0)
		return -errno;
	fd = bpf_link_create(bpf_program__fd(skel->progs.idn_stamp), cg_fd,
			     BPF_CGROUP_SOCK_OPS, NULL);
	if (fd < 0)
		fd = -errno;
	close(cg_fd);
	return fd;
}

/* ---------------------------------------------------------------- */
/* Commands                                                          */
/* ---------------------------------------------------------------- */

static int parse_cgroup_cmd(int argc, char **argv, struct opts *o, const char **cg, int desc_ok)
{
	int i, r;

	if (argc < 2 || strcmp(argv[0], "cgroup")) {
		usage(stderr);
		return -1;
	}
	*cg = argv[1];
	for (i = 2; i < argc; i++) {
		r = parse_common(argc, argv, &i, o);
		if (r < 0)
			return -1;
		if (!r || (!desc_ok && strcmp(argv[i - 1], "pin"))) {
			err("unexpected argument \"%s\"", argv[i]);
			return -1;
		}
	}
	return 0;
}

static int cmd_attach(int argc, char **argv, struct opts *o)
{
	char cg[PATH_MAX], state[PATH_MAX], path[PATH_MAX + 16];
	struct idn_stamp *skel;
	const char *cgarg;
	__u32 zero = 0;
	int ret, fd;

	if (parse_cgroup_cmd(argc, argv, o, &cgarg, 1))
		return 2;
	o->conf.flags |= IDN_STAMP_F_ON;
	ret = resolve_cgroup(cgarg, cg, sizeof(cg));
	if (ret) {
		err("cgroup %s: %s", cgarg, ret == -ENOTDIR ? "not on a cgroup2 mount" :
		    strerror(-ret));
		return 1;
	}
	ret = prepare_pin_dir(o->pin);
	if (!ret)
		ret = cgroup_state_dir(o->pin, cg, state, sizeof(state));
	if (ret) {
		err("pin dir %s: %s", o->pin, strerror(-ret));
		return 1;
	}

	/* Already attached here: only replace the descriptor. */
	snprintf(path, sizeof(path), "%s/conf", state);
	fd = bpf_obj_get(path);
	if (fd >= 0) {
		ret = bpf_map_update_elem(fd, &zero, &o->conf, BPF_ANY) ? -errno : 0;
		close(fd);
		if (ret) {
			err("update %s: %s", path, strerror(-ret));
			return 1;
		}
		printf("updated cgroup %s\n", cg);
		return 0;
	}

	skel = stamp_load(o->pin, &o->conf);
	if (!skel)
		return 1;
	ret = mkdir_p(state, 0700);
	fd = ret ? ret : cgroup_attach(skel, cg);
	if (fd < 0) {
		err("attach to %s: %s", cg, strerror(-fd));
		idn_stamp__destroy(skel);
		return 1;
	}
	snprintf(path, sizeof(path), "%s/link", state);
	ret = bpf_obj_pin(fd, path) ? -errno : 0;
	if (!ret) {
		snprintf(path, sizeof(path), "%s/conf", state);
		ret = bpf_map__pin(skel->maps.idn_stamp_conf, path);
		if (ret) {
			snprintf(path, sizeof(path), "%s/link", state);
			unlink(path);
		}
	}
	if (ret) {
		err("pin %s: %s", path, strerror(-ret));
		bpf_link_detach(fd);
		rmdir(state);
	} else {
		printf("attached cgroup %s\n", cg);
	}
	close(fd);
	idn_stamp__destroy(skel);
	return ret ? 1 : 0;
}

static int cmd_detach(int argc, char **argv, struct opts *o)
{
	char cg[PATH_MAX], state[PATH_MAX], path[PATH_MAX + 16];
	const char *cgarg;
	int ret, fd;

	if (parse_cgroup_cmd(argc, argv, o, &cgarg, 0))
		return 2;
	if (cgarg[0] == '/') {
		snprintf(cg, sizeof(cg), "%s", cgarg);
	} else {
		ret = idn_stamp_cgroup2_root(state, sizeof(state), 0);
		if (ret || snprintf(cg, sizeof(cg), "%s/%s", state, cgarg) >= (int)sizeof(cg)) {
			err("cgroup %s: not found", cgarg);
			return 1;
		}
	}
	ret = cgroup_state_dir(o->pin, cg, state, sizeof(state));
	if (ret) {
		err("cgroup %s: %s", cg, strerror(-ret));
		return 1;
	}
	snprintf(path, sizeof(path), "%s/link", state);
	fd = bpf_obj_get(path);
	if (fd < 0) {
		err("cgroup %s: not attached (no %s)", cg, path);
		return 1;
	}
	ret = bpf_link_detach(fd) ? -errno : 0;
	close(fd);
	unlink(path);
	snprintf(path, sizeof(path), "%s/conf", state);
	unlink(path);
	rmdir(state);
	if (ret) {
		err("detach %s: %s", cg, strerror(-ret));
		return 1;
	}
	printf("detached cgroup %s\n", cg);
	return 0;
}

static const char *const stat_names[IDN_STAMP_MAX] = {
	[IDN_STAMP_CONNECT] = "connect",
	[IDN_STAMP_SOCK] = "sock",
	[IDN_STAMP_DEFAULT] = "default",
	[IDN_STAMP_RESERVED] = "reserved",
	[IDN_STAMP_NOSPC] = "nospc",
	[IDN_STAMP_RESERVE_ERR] = "reserve-err",
	[IDN_STAMP_WRITTEN] = "written",
	[IDN_STAMP_WRITE_ERR] = "write-err",
	[IDN_STAMP_NODESC] = "nodesc",
};

static void print_desc(const struct idn_stamp_conf *c)
{
	const struct idn_desc *d = &c->desc;

	printf(" cap %u/%u tier %u policy %u token %llu",
	       IDN_CAP_CLASS(d->cap), IDN_CAP_VARIANT(d->cap), d->tier, d->policy,
	       (unsigned long long)d->token);
	if (d->flags & IDN_DF_SIZE)
		printf(" size-class %u", d->size_class);
	if (c->dport)
		printf(" port %u", ntohs(c->dport));
}

static int cmd_show(int argc, char **argv, struct opts *o)
{
	char path[PATH_MAX], sub[PATH_MAX + 300];
	struct idn_stamp_conf conf;
	struct dirent *de;
	__u32 zero = 0, i;
	__u64 v;
	DIR *dir;
	int fd;

	for (i = 0; i < (__u32)argc; i++) {
		if (strcmp(argv[i], "pin") || i + 1 >= (__u32)argc) {
			err("unexpected argument \"%s\"", argv[i]);
			return 2;
		}
		o->pin = argv[++i];
	}
	snprintf(path, sizeof(path), "%s/%s", o->pin, IDN_STAMP_STATS_MAP);
	fd = bpf_obj_get(path);
	if (fd < 0) {
		err("%s: %s (nothing attached yet?)", path, strerror(errno));
		return 1;
	}
	for (i = 0; i < IDN_STAMP_MAX; i++) {
		if (bpf_map_lookup_elem(fd, &i, &v))
			v = 0;
		printf("%s %llu\n", stat_names[i], (unsigned long long)v);
	}
	close(fd);

	snprintf(path, sizeof(path), "%s/stamp", o->pin);
	dir = opendir(path);
	if (!dir)
		return 0;
	while ((de = readdir(dir))) {
		if (strncmp(de->d_name, "cg", 2))
			continue;
		snprintf(sub, sizeof(sub), "%s/%s/conf", path, de->d_name);
		fd = bpf_obj_get(sub);
		if (fd < 0)
			continue;
		if (!bpf_map_lookup_elem(fd, &zero, &conf)) {
			printf("cgroup-id %s", de->d_name + 2);
			print_desc(&conf);
			printf("\n");
		}
		close(fd);
	}
	closedir(dir);
	return 0;
}

/* A private cgroup with one program instance attached, for run/connect. */
struct session {
	struct idn_stamp *skel;
	char cg[PATH_MAX];
	char home[2 * PATH_MAX + 8];	/* cgroup2 path we came from */
	int link_fd;
};

static int session_begin(struct session *s, const struct opts *o)
{
	char rel[64], root[PATH_MAX], line[PATH_MAX];
	FILE *f;
	int ret;

	memset(s, 0, sizeof(*s));
	s->link_fd = -1;
	ret = idn_stamp_cgroup2_root(root, sizeof(root), 1);
	if (ret) {
		err("no cgroup2 mount: %s", strerror(-ret));
		return -1;
	}
	/* Where this process sits now, to go back after connect. */
	f = fopen("/proc/self/cgroup", "r");
	while (f && fgets(line, sizeof(line), f)) {
		if (!strncmp(line, "0::", 3)) {
			line[strcspn(line, "\n")] = 0;
			snprintf(s->home, sizeof(s->home), "%s%s", root,
				 strcmp(line + 3, "/") ? line + 3 : "");
		}
	}
	if (f)
		fclose(f);
	snprintf(rel, sizeof(rel), "idn-stamp/run-%d", (int)getpid());
	ret = resolve_cgroup(rel, s->cg, sizeof(s->cg));
	if (ret) {
		err("cgroup %s/%s: %s", root, rel, strerror(-ret));
		return -1;
	}
	s->skel = stamp_load(o->pin, &o->conf);
	if (!s->skel)
		goto fail;
	s->link_fd = cgroup_attach(s->skel, s->cg);
	if (s->link_fd < 0) {
		err("attach to %s: %s", s->cg, strerror(-s->link_fd));
		goto fail;
	}
	return 0;
fail:
	idn_stamp__destroy(s->skel);
	s->skel = NULL;
	rmdir(s->cg);
	return -1;
}

static int cgroup_join(const char *cg, pid_t pid)
{
	char path[PATH_MAX + 16];
	int fd, ret = 0;

	snprintf(path, sizeof(path), "%s/cgroup.procs", cg);
	fd = open(path, O_WRONLY);
	if (fd < 0)
		return -errno;
	if (dprintf(fd, "%d\n", (int)pid) < 0)
		ret = -errno;
	close(fd);
	return ret;
}

static void session_end(struct session *s)
{
	if (s->link_fd >= 0)
		close(s->link_fd);
	idn_stamp__destroy(s->skel);
	if (rmdir(s->cg) && errno != ENOENT) {
		err("cgroup %s left behind: %s", s->cg, strerror(errno));
		return;
	}
	/* The shared parent goes too once no other session uses it. */
	*strrchr(s->cg, '/') = 0;
	rmdir(s->cg);
}

static pid_t run_child;

static void forward_signal(int sig)
{
	if (run_child > 0)
		kill(run_child, sig);
}

static int cmd_run(int argc, char **argv, struct opts *o)
{
	struct session s;
	int i, r, status;
	pid_t pid;

	for (i = 0; i < argc && strcmp(argv[i], "--"); i++) {
		r = parse_common(argc, argv, &i, o);
		if (r <= 0) {
			if (!r)
				err("unexpected argument \"%s\" (missing \"--\"?)", argv[i]);
			return 2;
		}
	}
	if (i + 1 >= argc) {
		err("run: no command after \"--\"");
		return 2;
	}
	if (o->have_desc)
		o->conf.flags |= IDN_STAMP_F_ON;
	if (session_begin(&s, o))
		return 1;

	pid = fork();
	if (pid < 0) {
		err("fork: %s", strerror(errno));
		session_end(&s);
		return 1;
	}
	if (pid == 0) {
		r = cgroup_join(s.cg, 0);
		if (r) {
			err("join %s: %s", s.cg, strerror(-r));
			_exit(126);
		}
		execvp(argv[i + 1], argv + i + 1);
		err("exec %s: %s", argv[i + 1], strerror(errno));
		_exit(127);
	}
	run_child = pid;
	signal(SIGINT, forward_signal);
	signal(SIGTERM, forward_signal);
	signal(SIGHUP, forward_signal);
	while (waitpid(pid, &status, 0) < 0) {
		if (errno != EINTR) {
			status = 1 << 8;
			break;
		}
	}
	session_end(&s);
	if (WIFSIGNALED(status))
		return 128 + WTERMSIG(status);
	return WEXITSTATUS(status);
}

static int do_http(int fd, const char *host, const char *path)
{
	char buf[4096];
	ssize_t n;

	dprintf(fd, "GET %s HTTP/1.0\r\nHost: %s\r\nConnection: close\r\n\r\n", path, host);
	while ((n = read(fd, buf, sizeof(buf))) > 0)
		fwrite(buf, 1, n, stdout);
	return n < 0 ? -errno : 0;
}

static int cmd_connect(int argc, char **argv, struct opts *o)
{
	const char *addr, *port, *http = NULL;
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICHOST };
	struct addrinfo *ai;
	struct session s = { .link_fd = -1 };
	int i, r, fd, map_fd, inplace = 0, ret = 1;

	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	addr = argv[0];
	port = argv[1];
	for (i = 2; i < argc; i++) {
		if (!strcmp(argv[i], "http")) {
			http = "/";
			if (i + 1 < argc && argv[i + 1][0] == '/')
				http = argv[++i];
			continue;
		}
		if (!strcmp(argv[i], "inplace")) {
			inplace = 1;
			continue;
		}
		r = parse_common(argc, argv, &i, o);
		if (r <= 0) {
			if (!r)
				err("unexpected argument \"%s\"", argv[i]);
			return 2;
		}
	}
	r = getaddrinfo(addr, port, &hints, &ai);
	if (r) {
		err("%s port %s: %s", addr, port, gai_strerror(r));
		return 2;
	}
	if (inplace) {
		/* As an application: the pinned map, the cgroup we are in. */
		map_fd = idn_stamp_sk_open(o->pin);
		if (map_fd < 0) {
			err("%s/%s: %s", o->pin, IDN_STAMP_SK_MAP, strerror(-map_fd));
			freeaddrinfo(ai);
			return 1;
		}
	} else {
		/* The cgroup default stays off: only the socket's own descriptor stamps. */
		o->conf.flags = 0;
		if (session_begin(&s, o)) {
			freeaddrinfo(ai);
			return 1;
		}
		r = cgroup_join(s.cg, getpid());
		if (r) {
			err("join %s: %s", s.cg, strerror(-r));
			goto out;
		}
		map_fd = bpf_map__fd(s.skel->maps.idn_stamp_sk);
	}
	fd = socket(ai->ai_family, SOCK_STREAM, 0);
	if (fd < 0) {
		err("socket: %s", strerror(errno));
		goto out;
	}
	r = idn_stamp_sk_set(map_fd, fd, &o->conf.desc);
	if (r) {
		err("per-socket descriptor: %s", strerror(-r));
	} else if (connect(fd, ai->ai_addr, ai->ai_addrlen)) {
		err("connect %s port %s: %s", addr, port, strerror(errno));
	} else if (http) {
		r = do_http(fd, addr, http);
		if (r)
			err("read: %s", strerror(-r));
		ret = r ? 1 : 0;
	} else {
		printf("connected %s port %s token %llu\n", addr, port,
		       (unsigned long long)o->conf.desc.token);
		ret = 0;
	}
	close(fd);
out:
	if (inplace) {
		close(map_fd);
	} else {
		if (s.home[0])
			cgroup_join(s.home, getpid());
		session_end(&s);
	}
	freeaddrinfo(ai);
	return ret;
}

int main(int argc, char **argv)
{
	struct opts o = { .pin = IDN_PIN_DEFAULT };
	const char *cmd;

	while (argc > 1 && argv[1][0] == '-' && argv[1][1]) {
		if (!strcmp(argv[1], "-v")) {
			verbose = 1;
		} else if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
			usage(stdout);
			return 0;
		} else if (!strcmp(argv[1], "-V") || !strcmp(argv[1], "--version")) {
			printf("idn-stamp %s (libbpf %s)\n", idn_version, libbpf_version_string());
			return 0;
		} else {
			err("unknown option %s", argv[1]);
			return 2;
		}
		argc--, argv++;
	}
	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	libbpf_set_print(libbpf_print);
	cmd = argv[1];
	argc -= 2;
	argv += 2;
	if (!strcmp(cmd, "attach"))
		return cmd_attach(argc, argv, &o);
	if (!strcmp(cmd, "detach"))
		return cmd_detach(argc, argv, &o);
	if (!strcmp(cmd, "show"))
		return cmd_show(argc, argv, &o);
	if (!strcmp(cmd, "run"))
		return cmd_run(argc, argv, &o);
	if (!strcmp(cmd, "connect"))
		return cmd_connect(argc, argv, &o);
	if (!strcmp(cmd, "help")) {
		usage(stdout);
		return 0;
	}
	err("command \"%s\" is unknown, try \"idn-stamp help\"", cmd);
	return 2;
}
