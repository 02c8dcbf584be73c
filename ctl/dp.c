// SPDX-License-Identifier: GPL-2.0
/*
 * dp.c - idnctl dp: load, attach, detach and configure the dataplane.
 *
 * The steering skeleton (bpf/idn_steer.bpf.c) is loaded once per pin dir:
 * its maps are pinned by name there, its two programs as prog_xdp and
 * prog_tc; later attaches reuse the pinned programs. Attachments are
 * recorded in a small array map of our own, DIR/idn_ctl_devs, so that
 * `dp status` and `dp detach` work from any later process, and bpftool
 * sees the record too. TC attaches use clsact + cls_bpf (libbpf bpf_tc_*),
 * which every supported kernel has.
 */
#include <errno.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>
#include <net/if.h>
#include <arpa/inet.h>
#include <linux/if_link.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "idnctl.h"
#include "dp_load.h"
#include "dp_features.h"
#include "tables.h"
#include "conf.h"

#if __has_include("bpf/idn_steer.skel.h")
#include "bpf/idn_steer.skel.h"
#define HAVE_STEER_SKEL 1
#else
#define HAVE_STEER_SKEL 0
#endif

#define DEVS_MAP	"idn_ctl_devs"
#define DEVS_MAX	64
#define PIN_XDP		"prog_xdp"
#define PIN_TC		"prog_tc"
#define PIN_DECAP	"prog_decap"
#define PIN_STAMP	"prog_stamp"	/* idn_stamp: TC egress beside idn_decap */
#define TS_CFG_MAP	"idn_ts_cfg"
/* Our cls_bpf filter: fixed handle/priority so detach finds it again. */
#define TC_HANDLE	1
#define TC_PRIO		0x1d4e

enum dp_kind { DP_NONE = 0, DP_XDP = 1, DP_TC = 2, DP_DECAP = 3 };
static const char *const kind_names[] = { "none", "xdp", "tc", "decap" };

/* One attachment made by idnctl (value of DIR/idn_ctl_devs). */
struct dp_dev {
	__u32 ifindex;
	__u32 kind;		/* enum dp_kind */
	__u32 xdp_flags;
	__u32 prog_id;
	__u32 created_hook;	/* we created the clsact qdisc */
	__u32 pad;
	char ifname[IF_NAMESIZE];
};

static int usage(void)
{
	fprintf(stdout,
"Usage: idnctl dp attach dev IFNAME [ mode { xdp | tc } ] [ xdpmode { native | generic } ]\n"
"       idnctl dp attach dev IFNAME config FILE\n"
"       idnctl dp detach dev IFNAME\n"
"       idnctl dp replace [ dev IFNAME ]\n"
"       idnctl dp decap attach dev IFNAME [ node ID ]\n"
"       idnctl dp decap detach dev IFNAME\n"
"       idnctl dp flush conns\n"
"       idnctl dp affinity TOKEN CLASS [ node ID ]\n"
"       idnctl dp status\n"
"       idnctl dp set [ drop-malformed { on | off } ] [ hold { on | off } ]\n"
"                     [ rst { on | off } ] [ telemetry { on | off } ] [ port PORT ]\n"
"                     [ src4 ADDR[/LEN] ] [ src6 ADDR6[/LEN] ] [ prefix6 { PREFIX/48 | off } ]\n"
"                     [ home-domain N ] [ receipt-sample N ] [ affinity-ttl SECONDS ]\n"
"                     [ frag { pass | drop } ] [ ext6 { pass | drop | steer } ]\n"
"                     [ flood-rate { N | default | off } ]\n"
"       idnctl dp set config FILE\n"
"       idnctl dp help\n");
	return EXIT_OK;
}

static void pin_path(char *buf, size_t len, const char *name)
{
	snprintf(buf, len, "%s/%s", G.maps.dir, name);
}

static int mkdir_p(const char *dir)
{
	char tmp[PATH_MAX];

	snprintf(tmp, sizeof(tmp), "%s", dir);
	for (char *p = tmp + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = 0;
		if (mkdir(tmp, 0700) && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(tmp, 0700) && errno != EEXIST)
		return -errno;
	return 0;
}

/* The attachment record map; created (and pinned) when create is set. */
static int devs_fd(bool create)
{
	char path[PATH_MAX + 32];
	int fd;

	pin_path(path, sizeof(path), DEVS_MAP);
	fd = bpf_obj_get(path);
	if (fd >= 0 || !create)
		return fd >= 0 ? fd : -errno;
	fd = bpf_map_create(BPF_MAP_TYPE_ARRAY, DEVS_MAP, sizeof(__u32),
			    sizeof(struct dp_dev), DEVS_MAX, NULL);
	if (fd < 0)
		return -errno;
	if (bpf_obj_pin(fd, path)) {
		int err = -errno;

		close(fd);
		return err;
	}
	return fd;
}

static int devs_read(int fd, struct dp_dev *devs)
{
	for (__u32 i = 0; i < DEVS_MAX; i++)
		if (bpf_map_lookup_elem(fd, &i, &devs[i]))
			return -errno;
	return 0;
}

static int prog_id_of(int fd)
{
	struct bpf_prog_info info = {};
	__u32 len = sizeof(info);

	if (bpf_obj_get_info_by_fd(fd, &info, &len))
		return 0;
	return info.id;
}

#if HAVE_STEER_SKEL
/*
 * Load the steering program of kind from this idnctl's skeleton: only the
 * program this attach needs (TC mode must not depend on what the kernel
 * allows XDP), with the features the kernel allows (dp_features.h: probed
 * by loading) set in .rodata first. The maps are pinned by name, so every
 * load shares them. Return: the program's fd (the caller's), or -errno
 * with idn_errmsg() set; why gets the features chosen.
 */
static int steer_load(enum dp_kind kind, char *why, size_t n)
{
	LIBBPF_OPTS(bpf_object_open_opts, opts, .pin_root_path = G.maps.dir);
	struct bpf_program *prog;
	struct idn_steer *skel;
	__u32 feat, forced;
	const char *refused;
	char pin[PATH_MAX + 32];
	bool new_conns, new_aff;
	int err, fd;

	/* tables this load creates get a hash seed of their own (tables.h) */
	snprintf(pin, sizeof(pin), "%s/idn_conns", G.maps.dir);
	new_conns = access(pin, F_OK) != 0;
	snprintf(pin, sizeof(pin), "%s/idn_affinity", G.maps.dir);
	new_aff = access(pin, F_OK) != 0;
	err = idn_dp_features(&feat, &forced, why, n);
	if (err)
		return idn_err(err, "%s", why);
	skel = idn_steer__open_opts(&opts);
	if (!skel)
		return idn_err(-errno, "open idn_steer: %s", strerror(errno));
	skel->rodata->idn_features = feat;
	skel->rodata->idn_features_forced_off = forced;
	prog = kind == DP_XDP ? skel->progs.idn_xdp : skel->progs.idn_tc;
	bpf_program__set_autoload(kind == DP_XDP ? skel->progs.idn_tc : skel->progs.idn_xdp,
				  false);
	idn_log_libbpf_refused(true);
	err = idn_steer__load(skel);
	if (err) {
		refused = idn_log_libbpf_refused(true);
		idn_steer__destroy(skel);
		if (*refused)
			return idn_err(err, "load idn_steer (%s): the kernel refused it: %s",
				       kind_names[kind], refused);
		return idn_err(err, "load idn_steer (%s): %s (try -v)", kind_names[kind],
			       strerror(-err));
	}
	/* before any attach: no packet has used a table yet */
	err = new_conns ? idn_tab_seed_new(bpf_map__fd(skel->maps.idn_conns)) : 0;
	if (err >= 0 && new_aff)
		err = idn_tab_seed_new(bpf_map__fd(skel->maps.idn_affinity));
	if (err < 0)
		pr_warn("idnctl: tables keep the fixed hash seed: %s\n", strerror(-err));
	fd = dup(bpf_program__fd(prog));
	err = -errno;
	idn_steer__destroy(skel);	/* the fd and the pins keep program and maps */
	if (fd < 0)
		return idn_err(err, "dup: %s", strerror(-err));
	return fd;
}

/*
 * This idnctl's own dataplane build: the skeleton's .rodata, not loaded;
 * read once (opening the skeleton parses the whole embedded object).
 */
static __u64 own_build_id(void)
{
	static __u64 id;
	static bool read;
	struct idn_steer *skel;

	if (read)
		return id;
	read = true;
	skel = idn_steer__open();
	if (skel) {
		id = skel->rodata->idn_build_id;
		idn_steer__destroy(skel);
	}
	return id;
}
#endif

/*
 * The .rodata of a loaded steering program (what runs: features, map
 * layout, build id), read back through the program's own maps.
 */
static int prog_rodata(int prog_fd, void *out, size_t size)
{
	struct bpf_prog_info info = {};
	__u32 ids[32], len = sizeof(info), key = 0;
	int err = -ENOENT;

	info.nr_map_ids = ARRAY_SIZE(ids);
	info.map_ids = (__u64)(unsigned long)ids;
	if (bpf_obj_get_info_by_fd(prog_fd, &info, &len))
		return -errno;
	for (__u32 i = 0; i < info.nr_map_ids && i < ARRAY_SIZE(ids) && err; i++) {
		struct bpf_map_info mi = {};
		__u32 ml = sizeof(mi);
		int mfd = bpf_map_get_fd_by_id(ids[i]);
		void *val;

		if (mfd < 0)
			continue;
		if (!bpf_obj_get_info_by_fd(mfd, &mi, &ml) && strstr(mi.name, ".rodata") &&
		    mi.value_size >= size && (val = calloc(1, mi.value_size))) {
			if (!bpf_map_lookup_elem(mfd, &key, val)) {
				memcpy(out, val, size);
				err = 0;
			}
			free(val);
		}
		close(mfd);
	}
	return err;
}

/* The same, of the pinned program DIR/pin. */
static int pinned_rodata(const char *pin, void *out, size_t size)
{
	char path[PATH_MAX + 32];
	int fd, err;

	pin_path(path, sizeof(path), pin);
	fd = bpf_obj_get(path);
	if (fd < 0)
		return -errno;
	err = prog_rodata(fd, out, size);
	close(fd);
	return err;
}

/*
 * Pinned steering program of kind, loading it when absent. A pinned
 * program of another build keeps running (attaching it is what the
 * operator asked), with a warning: `dp replace` upgrades it.
 */
static int steer_prog(enum dp_kind kind)
{
	char path[PATH_MAX + 32];
	int fd;

	pin_path(path, sizeof(path), kind == DP_XDP ? PIN_XDP : PIN_TC);
	fd = bpf_obj_get(path);
#if HAVE_STEER_SKEL
	if (fd >= 0) {
		struct idn_steer__rodata ro;

		if (!prog_rodata(fd, &ro, sizeof(ro)) && ro.idn_build_id != own_build_id())
			pr_warn("idnctl: the pinned %s program is of another build (%016llx, this "
				"idnctl %016llx): \"idnctl dp replace\" upgrades it\n",
				kind_names[kind], (unsigned long long)ro.idn_build_id,
				(unsigned long long)own_build_id());
		return fd;
	}
	{
		char why[512];
		int err;

		fd = steer_load(kind, why, sizeof(why));
		if (fd < 0)
			return fd;
		if (bpf_obj_pin(fd, path)) {
			err = -errno;
			close(fd);
			return idn_err(err, "pin %s: %s", path, strerror(-err));
		}
		pr_info("loaded idn_steer (%s), pinned in %s; features:\n%s\n", kind_names[kind],
			G.maps.dir, why);
	}
	return fd;
#else
	if (fd >= 0)
		return fd;
	return idn_err(-EOPNOTSUPP, "idnctl was built without bpf/idn_steer.bpf.c");
#endif
}

static int decap_prog(void)
{
	char path[PATH_MAX + 32], stamp[PATH_MAX + 32];
	int fd, err;

	pin_path(path, sizeof(path), PIN_DECAP);
	fd = bpf_obj_get(path);
	if (fd >= 0)
		return fd;
	pin_path(stamp, sizeof(stamp), PIN_STAMP);
	unlink(stamp);	/* a leftover of an older load: ours comes with decap */
	err = idnctl_decap_load_pin(G.maps.dir, path, stamp);
	if (err == -EOPNOTSUPP)
		return idn_err(err, "idnctl was built without bpf/idn_node.bpf.c");
	if (err)
		return idn_err(err, "load idn_node: %s (try -v)", strerror(-err));
	fd = bpf_obj_get(path);
	if (fd < 0)
		return idn_err(-errno, "%s: %s", path, strerror(errno));
	return fd;
}

/*
 * Beside idn_decap, idn_stamp on the device's egress writes the node's TS
 * cookie into the replies (docs/architecture.md, "State only for real
 * connections"). Decapsulation works without it: a failure is a warning.
 */
static void stamp_attach(int ifindex, const char *ifname)
{
	LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = ifindex, .attach_point = BPF_TC_EGRESS);
	LIBBPF_OPTS(bpf_tc_opts, opts, .handle = TC_HANDLE, .priority = TC_PRIO);
	char path[PATH_MAX + 32];
	int fd, err;

	pin_path(path, sizeof(path), PIN_STAMP);
	fd = bpf_obj_get(path);
	if (fd < 0) {
		pr_warn("idnctl: %s: no TS cookie stamping: %s: %s\n", ifname, path,
			strerror(errno));
		return;
	}
	opts.prog_fd = fd;
	err = bpf_tc_attach(&hook, &opts);
	if (err)
		pr_warn("idnctl: %s: no TS cookie stamping: tc egress attach: %s\n", ifname,
			strerror(-err));
	close(fd);
}

static int tc_attach(int ifindex, int prog_fd, struct dp_dev *d)
{
	LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = ifindex, .attach_point = BPF_TC_INGRESS);
	LIBBPF_OPTS(bpf_tc_opts, opts, .prog_fd = prog_fd, .handle = TC_HANDLE,
		    .priority = TC_PRIO);
	int err;

	/*
	 * The clsact qdisc may pre-exist (another tool, or our other hook on
	 * this device): then it is not ours and detach leaves it in place.
	 */
	err = bpf_tc_hook_create(&hook);
	if (err && err != -EEXIST)
		return idn_err(err, "create clsact on %s: %s", d->ifname, strerror(-err));
	d->created_hook = !err;
	err = bpf_tc_attach(&hook, &opts);
	if (err) {
		if (d->created_hook) {
			hook.attach_point = BPF_TC_INGRESS | BPF_TC_EGRESS;
			bpf_tc_hook_destroy(&hook);
		}
		return idn_err(err, "tc attach on %s: %s", d->ifname, strerror(-err));
	}
	d->prog_id = opts.prog_id;
	if (d->kind == DP_DECAP)
		stamp_attach(ifindex, d->ifname);
	return 0;
}

static int tc_detach(const struct dp_dev *d)
{
	LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = d->ifindex, .attach_point = BPF_TC_INGRESS);
	LIBBPF_OPTS(bpf_tc_opts, opts, .handle = TC_HANDLE, .priority = TC_PRIO);
	int err = bpf_tc_detach(&hook, &opts);

	if (err && err != -ENOENT)
		return idn_err(err, "tc detach from %s: %s", d->ifname, strerror(-err));
	if (d->kind == DP_DECAP) {
		LIBBPF_OPTS(bpf_tc_hook, eg, .ifindex = d->ifindex, .attach_point = BPF_TC_EGRESS);
		LIBBPF_OPTS(bpf_tc_opts, eo, .handle = TC_HANDLE, .priority = TC_PRIO);
		bool q = idn_log_libbpf_quiet(true);

		bpf_tc_detach(&eg, &eo);	/* idn_stamp, when it was attached */
		idn_log_libbpf_quiet(q);
	}
	if (d->created_hook) {
		/* we made the clsact qdisc: take it away again (with its filters) */
		hook.attach_point = BPF_TC_INGRESS | BPF_TC_EGRESS;
		bpf_tc_hook_destroy(&hook);
	}
	return 0;
}

static __u32 tc_query(const struct dp_dev *d)
{
	LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = d->ifindex, .attach_point = BPF_TC_INGRESS);
	LIBBPF_OPTS(bpf_tc_opts, opts, .handle = TC_HANDLE, .priority = TC_PRIO);
	bool q = idn_log_libbpf_quiet(true);
	int err = bpf_tc_query(&hook, &opts);

	idn_log_libbpf_quiet(q);
	return err ? 0 : opts.prog_id;
}

static __u32 xdp_query(const struct dp_dev *d)
{
	__u32 id = 0;

	if (bpf_xdp_query_id(d->ifindex, d->xdp_flags & XDP_FLAGS_MODES, &id))
		return 0;
	return id;
}

static int parse_dev(int argc, char **argv, const char **dev, enum dp_kind *kind,
		     __u32 *xdp_flags, bool attach)
{
	while (argc > 0) {
		if (matches(*argv, "dev")) {
			NEXT_ARG();
			if (*dev)
				return duparg("dev");
			if (strlen(*argv) >= IF_NAMESIZE)
				return usage_error("device name \"%s\" too long", *argv);
			*dev = *argv;
		} else if (attach && kind && matches(*argv, "mode")) {
			NEXT_ARG();
			if (matches(*argv, "xdp"))
				*kind = DP_XDP;
			else if (matches(*argv, "tc"))
				*kind = DP_TC;
			else
				return usage_error("invalid mode \"%s\" (expected xdp|tc)", *argv);
		} else if (attach && xdp_flags && matches(*argv, "xdpmode")) {
			NEXT_ARG();
			if (matches(*argv, "native"))
				*xdp_flags = XDP_FLAGS_DRV_MODE;
			else if (matches(*argv, "generic"))
				*xdp_flags = XDP_FLAGS_SKB_MODE;
			else
				return usage_error("invalid xdpmode \"%s\" (expected native|generic)",
						   *argv);
		} else {
			return usage_error("unknown argument \"%s\", try \"idnctl dp help\".", *argv);
		}
		argc--;
		argv++;
	}
	if (!*dev)
		return usage_error("\"dev\" missing");
	return -1;
}

static int dp_attach_kind(const char *dev, enum dp_kind kind, __u32 xdp_flags)
{
	struct dp_dev devs[DEVS_MAX], d = {};
	int ifindex, prog_fd = -1, fd = -1, err, slot = -1;
	int rc = EXIT_FAIL;

	ifindex = if_nametoindex(dev);
	if (!ifindex)
		return runtime_error("dp attach: device \"%s\": %s", dev, strerror(errno));
	err = mkdir_p(G.maps.dir);
	if (err)
		return runtime_error("dp attach: mkdir %s: %s", G.maps.dir, strerror(-err));
	if (idn_maps_lock(&G.maps))
		return runtime_error("dp attach: %s", idn_errmsg());
	fd = devs_fd(true);
	if (fd < 0) {
		runtime_error("dp attach: %s/%s: %s", G.maps.dir, DEVS_MAP, strerror(-fd));
		goto out;
	}
	if (devs_read(fd, devs)) {
		runtime_error("dp attach: read %s: %s", DEVS_MAP, strerror(errno));
		goto out;
	}
	for (int i = 0; i < DEVS_MAX; i++) {
		if (devs[i].kind == DP_NONE) {
			if (slot < 0)
				slot = i;
			continue;
		}
		if (devs[i].ifindex == (__u32)ifindex &&
		    (devs[i].kind == kind || (kind != DP_DECAP && devs[i].kind != DP_DECAP))) {
			runtime_error("dp attach: %s already has the %s program (dp detach first)",
				      dev, kind_names[devs[i].kind]);
			goto out;
		}
	}
	if (slot < 0) {
		runtime_error("dp attach: too many attachments (max %d)", DEVS_MAX);
		goto out;
	}

	prog_fd = kind == DP_DECAP ? decap_prog() : steer_prog(kind);
	if (prog_fd < 0) {
		runtime_error("dp attach: %s", idn_errmsg());
		goto out;
	}
	d.ifindex = ifindex;
	d.kind = kind;
	snprintf(d.ifname, sizeof(d.ifname), "%s", dev);
	if (kind == DP_XDP) {
		d.xdp_flags = xdp_flags;
		err = bpf_xdp_attach(ifindex, prog_fd, xdp_flags | XDP_FLAGS_UPDATE_IF_NOEXIST, NULL);
		if (err) {
			runtime_error("dp attach: XDP on %s: %s%s", dev, strerror(-err),
				      err == -EBUSY || err == -EEXIST ?
				      " (another XDP program is attached)" :
				      xdp_flags == XDP_FLAGS_DRV_MODE ? " (try xdpmode generic)" : "");
			goto out;
		}
		d.prog_id = prog_id_of(prog_fd);
	} else {
		err = tc_attach(ifindex, prog_fd, &d);
		if (err) {
			runtime_error("dp attach: %s", idn_errmsg());
			goto out;
		}
	}
	if (bpf_map_update_elem(fd, &slot, &d, BPF_ANY)) {
		runtime_error("dp attach: record in %s: %s", DEVS_MAP, strerror(errno));
		goto out;
	}
	pr_info("attached %s (prog id %u) to %s\n", kind_names[kind], d.prog_id, dev);
	rc = EXIT_OK;
out:
	if (prog_fd >= 0)
		close(prog_fd);
	if (fd >= 0)
		close(fd);
	idn_maps_unlock(&G.maps);
	return rc;
}

/* Unpin a program when no recorded attachment uses it any more. */
static void unpin_unused(const struct dp_dev *devs)
{
	bool steer = false, decap = false;
	char path[PATH_MAX + 32];

	for (int i = 0; i < DEVS_MAX; i++) {
		steer |= devs[i].kind == DP_XDP || devs[i].kind == DP_TC;
		decap |= devs[i].kind == DP_DECAP;
	}
	if (!steer) {
		pin_path(path, sizeof(path), PIN_XDP);
		unlink(path);
		pin_path(path, sizeof(path), PIN_TC);
		unlink(path);
	}
	if (!decap) {
		pin_path(path, sizeof(path), PIN_DECAP);
		unlink(path);
		pin_path(path, sizeof(path), PIN_STAMP);
		unlink(path);
	}
}

static int dp_detach_kind(const char *dev, bool decap)
{
	struct dp_dev devs[DEVS_MAX], zero = {};
	int ifindex, fd, found = 0, rc = EXIT_OK;

	ifindex = if_nametoindex(dev);
	if (!ifindex)
		return runtime_error("dp detach: device \"%s\": %s", dev, strerror(errno));
	if (idn_maps_lock(&G.maps))
		return runtime_error("dp detach: %s", idn_errmsg());
	fd = devs_fd(false);
	if (fd < 0 || devs_read(fd, devs)) {
		rc = runtime_error("dp detach: nothing attached by idnctl in %s", G.maps.dir);
		goto out;
	}
	for (__u32 i = 0; i < DEVS_MAX; i++) {
		struct dp_dev *d = &devs[i];

		if (d->kind == DP_NONE || d->ifindex != (__u32)ifindex ||
		    (d->kind == DP_DECAP) != decap)
			continue;
		found++;
		if (d->kind == DP_XDP) {
			__u32 id = xdp_query(d);

			if (id && id != d->prog_id) {
				pr_warn("idnctl: %s: XDP program %u is not ours (%u), left attached\n",
					dev, id, d->prog_id);
			} else if (id) {
				int err = bpf_xdp_detach(ifindex, d->xdp_flags, NULL);

				if (err) {
					rc = runtime_error("dp detach: XDP from %s: %s", dev,
							   strerror(-err));
					continue;
				}
			}
		} else if (tc_detach(d)) {
			rc = runtime_error("dp detach: %s", idn_errmsg());
			continue;
		}
		bpf_map_update_elem(fd, &i, &zero, BPF_ANY);
		*d = zero;
	}
	if (!found)
		rc = runtime_error("dp detach: %s: no %s program attached by idnctl", dev,
				   decap ? "decap" : "steering");
	unpin_unused(devs);
out:
	if (fd >= 0)
		close(fd);
	idn_maps_unlock(&G.maps);
	return rc;
}

#if HAVE_STEER_SKEL
/* Swap the program of one recorded attachment for new_fd, atomically. */
static int replace_one(int fd, __u32 slot, struct dp_dev *d, int new_fd)
{
	int old_fd = bpf_prog_get_fd_by_id(d->prog_id), err;
	__u32 new_id = prog_id_of(new_fd);

	if (old_fd < 0)
		return idn_err(-errno, "%s: program %u of the record is gone: %s", d->ifname,
			       d->prog_id, strerror(errno));
	if (d->kind == DP_XDP) {
		/* the kernel swaps only if old_fd still runs there */
		LIBBPF_OPTS(bpf_xdp_attach_opts, o, .old_prog_fd = old_fd);

		err = bpf_xdp_attach(d->ifindex, new_fd, d->xdp_flags | XDP_FLAGS_REPLACE, &o);
	} else {
		/* cls_bpf replaces the filter of our handle and priority in place */
		LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = d->ifindex,
			    .attach_point = BPF_TC_INGRESS);
		LIBBPF_OPTS(bpf_tc_opts, opts, .prog_fd = new_fd, .handle = TC_HANDLE,
			    .priority = TC_PRIO, .flags = BPF_TC_F_REPLACE);

		err = bpf_tc_attach(&hook, &opts);
	}
	close(old_fd);
	if (err)
		return idn_err(err, "%s: replace %s program %u: %s", d->ifname,
			       kind_names[d->kind], d->prog_id, strerror(-err));
	pr_info("replaced %s program %u with %u on %s\n", kind_names[d->kind], d->prog_id,
		new_id, d->ifname);
	d->prog_id = new_id;
	if (bpf_map_update_elem(fd, &slot, d, BPF_ANY))
		return idn_err(-errno, "record in %s: %s", DEVS_MAP, strerror(errno));
	return 0;
}

/*
 * dp replace: load this build's steering programs and swap them in on
 * every device (or one) where idnctl attached them, without a moment
 * with no program: XDP_FLAGS_REPLACE names the program it replaces, and
 * cls_bpf replaces our filter in place. The pinned maps stay (flows,
 * affinity, plans and counters carry over), so the new program must
 * expect the same map layout: a different one is refused.
 */
static int dp_replace_kind(const char *dev)
{
	static const enum dp_kind kinds[] = { DP_XDP, DP_TC };
	struct dp_dev devs[DEVS_MAX];
	int fd, rc = EXIT_OK, done = 0;

	if (idn_maps_lock(&G.maps))
		return runtime_error("dp replace: %s", idn_errmsg());
	fd = devs_fd(false);
	if (fd < 0 || devs_read(fd, devs)) {
		rc = runtime_error("dp replace: nothing attached by idnctl in %s", G.maps.dir);
		goto out;
	}
	for (size_t k = 0; k < ARRAY_SIZE(kinds); k++) {
		const char *pin = kinds[k] == DP_XDP ? PIN_XDP : PIN_TC;
		char path[PATH_MAX + 32], why[512];
		struct idn_steer__rodata ro;
		int new_fd = -1, n = 0;

		for (int i = 0; i < DEVS_MAX; i++)
			n += devs[i].kind == kinds[k] && (!dev || !strcmp(devs[i].ifname, dev));
		if (!n)
			continue;
		if (!pinned_rodata(pin, &ro, sizeof(ro)) && ro.idn_map_layout != IDN_MAP_LAYOUT) {
			rc = runtime_error("dp replace: the running %s program uses map layout %u, "
					   "this build %u: its maps cannot be kept (dp detach, "
					   "then dp attach: flows and counters start anew)",
					   kind_names[kinds[k]], ro.idn_map_layout, IDN_MAP_LAYOUT);
			goto out;
		}
		new_fd = steer_load(kinds[k], why, sizeof(why));
		if (new_fd < 0) {
			rc = runtime_error("dp replace: %s", idn_errmsg());
			goto out;
		}
		for (int i = 0; i < DEVS_MAX; i++) {
			if (devs[i].kind != kinds[k] || (dev && strcmp(devs[i].ifname, dev)))
				continue;
			if (replace_one(fd, i, &devs[i], new_fd)) {
				rc = runtime_error("dp replace: %s", idn_errmsg());
				continue;
			}
			done++;
		}
		/*
		 * The new program is what later attaches use (bpffs has no
		 * rename: unpin, pin; the attachments run on meanwhile, and
		 * other idnctl runs wait for the lock we hold).
		 */
		pin_path(path, sizeof(path), pin);
		unlink(path);
		if (bpf_obj_pin(new_fd, path))
			rc = runtime_error("dp replace: pin %s: %s", path, strerror(errno));
		close(new_fd);
	}
	if (!done && rc == EXIT_OK)
		rc = runtime_error("dp replace: %s: no steering program attached by idnctl",
				   dev ? dev : "any device");
out:
	if (fd >= 0)
		close(fd);
	idn_maps_unlock(&G.maps);
	return rc;
}
#endif

static int dp_replace(int argc, char **argv)
{
	const char *dev = NULL;

	if (argc > 0) {
		int rc = parse_dev(argc, argv, &dev, NULL, NULL, false);

		if (rc >= 0)
			return rc;
	}
#if HAVE_STEER_SKEL
	return dp_replace_kind(dev);
#else
	return runtime_error("dp replace: idnctl was built without bpf/idn_steer.bpf.c");
#endif
}

/*
 * "config FILE" (idn-dataplane@.service, /etc/idn/dataplane.conf): the keys
 * of section @section (else @fallback) of FILE as "key value" arguments
 * after the command line's; @keys, when set, are the only keys allowed.
 */
struct conf_argv {
	char *argv[64];
	int argc;
	const char *const *keys;
	bool from_file;		/* "config FILE" was given */
};

static int conf_arg(void *ctx, const char *key, const char *value, const char **why)
{
	struct conf_argv *a = ctx;
	bool ok = !a->keys;

	for (const char *const *k = a->keys; k && *k; k++)
		ok |= !strcmp(*k, key);
	if (!ok) {
		*why = "unknown key (dp attach takes mode, xdpmode)";
		return -1;
	}
	if (a->argc + 2 > (int)ARRAY_SIZE(a->argv)) {
		*why = "too many keys";
		return -1;
	}
	a->argv[a->argc++] = strdup(key);
	a->argv[a->argc++] = strdup(value);
	return 0;
}

static int conf_args(int *argc, char ***argv, struct conf_argv *a, const char *section,
		     const char *fallback)
{
	const char *path = NULL;
	char err[512];
	int rc;

	a->argc = 0;
	for (int i = 0; i < *argc; i++) {
		if (!strcmp((*argv)[i], "config")) {
			if (i + 1 >= *argc)
				return missarg("config");
			if (path)
				return duparg("config");
			path = (*argv)[++i];
		} else if (a->argc < (int)ARRAY_SIZE(a->argv) - 1) {
			a->argv[a->argc++] = (*argv)[i];
		}
	}
	if (!path)
		return -1;
	a->from_file = true;
	rc = idn_conf_section(path, section, conf_arg, a, err, sizeof(err));
	if (rc == 0 && fallback)
		rc = idn_conf_section(path, fallback, conf_arg, a, err, sizeof(err));
	if (rc < 0)
		return rc == -EINVAL ? usage_error("%s", err) : runtime_error("%s", err);
	*argc = a->argc;
	*argv = a->argv;
	return -1;
}

static int dp_attach(int argc, char **argv)
{
	static const char *const keys[] = { "mode", "xdpmode", NULL };
	struct conf_argv ca = { .keys = keys };
	const char *dev = NULL;
	enum dp_kind kind = DP_XDP;
	__u32 flags = 0;
	int rc;

	for (int i = 0; i + 1 < argc; i++)	/* the section of "config FILE" */
		if (!strcmp(argv[i], "dev"))
			dev = argv[i + 1];
	if (dev) {
		rc = conf_args(&argc, &argv, &ca, dev, "default");
		if (rc >= 0)
			return rc;
		dev = NULL;
	}
	rc = parse_dev(argc, argv, &dev, &kind, &flags, true);
	if (rc >= 0)
		return rc;
	if (kind == DP_TC && flags)
		return usage_error("xdpmode goes with mode xdp");
	return dp_attach_kind(dev, kind, flags);
}

static int dp_detach(int argc, char **argv)
{
	const char *dev = NULL;
	int rc = parse_dev(argc, argv, &dev, NULL, NULL, false);

	return rc >= 0 ? rc : dp_detach_kind(dev, false);
}

/* Write this node's TS cookie (its node id) for idn_stamp. */
static int ts_cookie_set(__u32 node)
{
	char path[PATH_MAX + 32];
	__u32 zero = 0, v = IDN_TS_CFG_ON | node;
	int fd, rc = EXIT_OK;

	pin_path(path, sizeof(path), TS_CFG_MAP);
	fd = bpf_obj_get(path);
	if (fd < 0)
		return runtime_error("dp decap: %s: %s", path, strerror(errno));
	if (bpf_map_update_elem(fd, &zero, &v, BPF_ANY))
		rc = runtime_error("dp decap: write %s: %s", path, strerror(errno));
	close(fd);
	return rc;
}

static int dp_decap(int argc, char **argv)
{
	const char *dev = NULL;
	char *rest[8];
	int rc, n = 0;
	__u32 node = IDN_NODE_NONE;

	if (argc < 1)
		return usage_error("dp decap needs attach or detach, try \"idnctl dp help\".");
	if (matches(*argv, "attach")) {
		/* node ID: the TS cookie idn_stamp writes; the rest is parse_dev's */
		for (int i = 1; i < argc; i++) {
			if (matches(argv[i], "node")) {
				if (i + 1 >= argc)
					return usage_error("\"node\" needs a node id");
				if (node != IDN_NODE_NONE)
					return duparg("node");
				PARSE(idn_parse_u32(argv[++i], 0, IDN_MAX_NODES - 1, &node,
						    "node id"));
			} else if (n < (int)ARRAY_SIZE(rest)) {
				rest[n++] = argv[i];
			} else {
				return usage_error("too many arguments, try \"idnctl dp help\".");
			}
		}
		rc = parse_dev(n, rest, &dev, NULL, NULL, false);
		if (rc >= 0)
			return rc;
		rc = dp_attach_kind(dev, DP_DECAP, 0);
		if (rc == EXIT_OK && node != IDN_NODE_NONE)
			rc = ts_cookie_set(node);
		return rc;
	}
	if (matches(*argv, "detach")) {
		rc = parse_dev(argc - 1, argv + 1, &dev, NULL, NULL, false);
		return rc >= 0 ? rc : dp_detach_kind(dev, true);
	}
	return unknown_cmd("dp", *argv);
}

static void print_flag(const char *key, const char *fmt, bool on)
{
	if (is_json_context())
		print_bool(PRINT_JSON, key, NULL, on);
	else
		print_string(PRINT_FP, NULL, fmt, on ? "on" : "off");
}

/*
 * What runs: the features, map layout and build of the loaded steering
 * programs, read back from their own .rodata (not what a probe would
 * choose now), each pin read once. Features come from the first program
 * pinned (both are loaded with the same probe); for each feature that is
 * off, why: the operator's IDN_DP_DISABLE, or the kernel's answer now.
 */
static void print_running(void)
{
#if HAVE_STEER_SKEL
	static const char *const pins[] = { PIN_XDP, PIN_TC };
	struct idn_steer__rodata ro[ARRAY_SIZE(pins)];
	bool have[ARRAY_SIZE(pins)];
	const struct idn_steer__rodata *first = NULL;
	char b[32];

	for (size_t i = 0; i < ARRAY_SIZE(pins); i++) {
		have[i] = !pinned_rodata(pins[i], &ro[i], sizeof(ro[i]));
		if (have[i] && !first)
			first = &ro[i];
	}
	if (!first)
		return;
	open_json_object("features");
	print_string(PRINT_FP, NULL, "%s", "features");
	for (size_t i = 0; i < IDN_N_FEATURES; i++) {
		const struct idn_feature_desc *fd = &idn_feature_descs[i];
		bool on = first->idn_features & fd->bit;
		char why[256] = "on";

		if (!on && (first->idn_features_forced_off & fd->bit))
			snprintf(why, sizeof(why), "off (IDN_DP_DISABLE at load)");
		else if (!on && fd->bit == IDN_FEAT_XDP_META)
			idn_probe_xdp_meta(why, sizeof(why));
		if (!on && !strncmp(why, "on", 2))
			snprintf(why, sizeof(why), "off (the kernel allows it now: reload to use it)");
		open_json_object(fd->name);
		print_bool(PRINT_JSON, "on", NULL, on);
		print_string(PRINT_JSON, "why", NULL, why);
		print_string(PRINT_FP, NULL, " %s ", fd->name);
		print_string(PRINT_FP, NULL, "%s", why);
		close_json_object();
	}
	close_json_object();
	print_nl();
	for (size_t i = 0; i < ARRAY_SIZE(pins); i++) {
		if (!have[i])
			continue;
		snprintf(b, sizeof(b), "%016llx", (unsigned long long)ro[i].idn_build_id);
		open_json_object(i ? "build_tc" : "build_xdp");
		print_string(PRINT_ANY, "id", i ? "build-tc %s " : "build-xdp %s ", b);
		print_uint(PRINT_ANY, "map_layout", "map-layout %u ", ro[i].idn_map_layout);
		print_bool(PRINT_ANY, "stale", "stale %s", ro[i].idn_build_id != own_build_id());
		close_json_object();
		print_nl();
	}
#endif
}

static void print_pinned_prog(const char *key, const char *name)
{
	char path[PATH_MAX + 32];
	int fd;

	pin_path(path, sizeof(path), name);
	fd = bpf_obj_get(path);
	if (fd < 0) {
		print_null(PRINT_ANY, key, " %s none", key);
		return;
	}
	print_uint(PRINT_ANY, key, NULL, prog_id_of(fd));
	print_text(" %s %u", key, prog_id_of(fd));
	close(fd);
}

static int dp_status(int argc, char **argv)
{
	struct dp_dev devs[DEVS_MAX];
	struct idn_config cfg;
	char b[64];
	int fd;

	if (argc > 0)
		return usage_error("unknown argument \"%s\", try \"idnctl dp help\".", *argv);
	idn_json_begin(false);
	print_string(PRINT_ANY, "pin_dir", "pin-dir %s", G.maps.dir);
	if (idn_config_get(&G.maps, &cfg)) {
		print_bool(PRINT_ANY, "loaded", " loaded %s", false);
		print_nl();
		idn_json_end();
		return EXIT_OK;
	}
	print_bool(PRINT_ANY, "loaded", " loaded %s", true);
	print_pinned_prog("prog_xdp", PIN_XDP);
	print_pinned_prog("prog_tc", PIN_TC);
	print_pinned_prog("prog_decap", PIN_DECAP);
	print_nl();
	print_running();

	print_uint(PRINT_ANY, "generation", "generation %u ", cfg.generation);
	print_uint(PRINT_ANY, "active_slot", "active-slot %u", cfg.active_slot);
	print_nl();
	open_json_object("config");
	print_flag("drop_malformed", "drop-malformed %s ", cfg.flags & IDN_CFG_F_DROP_MALFORMED);
	print_flag("hold", "hold %s ", cfg.flags & IDN_CFG_F_HOLD);
	print_flag("rst", "rst %s ", !(cfg.flags & IDN_CFG_F_NO_RST));
	print_flag("telemetry", "telemetry %s ", cfg.flags & IDN_CFG_F_TELEMETRY);
	print_uint(PRINT_ANY, "port", "port %u", ntohs(cfg.tele_port));
	print_nl();
	{
		__u32 a4[4] = { cfg.src4 };

		print_addr("src4", "src4 %s", IDN_AF_INET, a4);
		if (cfg.src4_bits)
			print_uint(PRINT_FP, NULL, "/%u", 32 - cfg.src4_bits);
		print_uint(PRINT_JSON, "src4_flow_bits", NULL, cfg.src4_bits);
		print_text(" ");
	}
	print_addr("src6", "src6 %s", IDN_AF_INET6, cfg.src6);
	if (cfg.src6_bits)
		print_uint(PRINT_FP, NULL, "/%u", 128 - cfg.src6_bits);
	print_uint(PRINT_JSON, "src6_flow_bits", NULL, cfg.src6_bits);
	print_text(" ");
	if (cfg.prefix6_on) {
		__u32 a[4] = {};

		memcpy(a, cfg.prefix6, IDN_ADDR6_PREFIX_LEN);
		idn_fmt_addr(IDN_AF_INET6, a, b, sizeof(b) - 3);
		strcat(b, "/48");
		print_string(PRINT_ANY, "prefix6", "prefix6 %s", b);
	} else {
		print_null(PRINT_ANY, "prefix6", "prefix6 %s", "off");
	}
	print_nl();
	print_uint(PRINT_ANY, "home_domain", "home-domain %u ", cfg.home_domain);
	print_uint(PRINT_ANY, "receipt_sample", "receipt-sample %u ", cfg.receipt_sample);
	print_uint(PRINT_ANY, "affinity_ttl", "affinity-ttl %u", cfg.aff_ttl_s);
	print_nl();
	print_string(PRINT_ANY, "frag", "frag %s ",
		     cfg.flags & IDN_CFG_F_FRAG_DROP ? "drop" : "pass");
	print_string(PRINT_ANY, "ext6", "ext6 %s ",
		     cfg.flags & IDN_CFG_F_EXT6_STEER ? "steer" :
		     cfg.flags & IDN_CFG_F_EXT6_DROP ? "drop" : "pass");
	if (cfg.flood_rate == IDN_FLOOD_OFF)
		print_null(PRINT_ANY, "flood_rate", "flood-rate %s", "off");
	else
		print_uint(PRINT_ANY, "flood_rate", "flood-rate %u",
			   cfg.flood_rate ? cfg.flood_rate : IDN_FLOOD_RATE_DEFAULT);
	print_nl();
	close_json_object();

	open_json_object("maps");
	print_int(PRINT_ANY, "vips", "vips %d ", idn_map_count(&G.maps, IDN_MAP_VIPS));
	print_int(PRINT_ANY, "nodes", "nodes %d ", idn_map_count(&G.maps, IDN_MAP_NODES));
	print_int(PRINT_ANY, "plans", "plans %d ", idn_map_count(&G.maps, IDN_MAP_PLANS));
	print_int(PRINT_ANY, "conns", "conns %d ", idn_map_count(&G.maps, IDN_MAP_CONNS));
	print_int(PRINT_ANY, "affinity", "affinity %d", idn_map_count(&G.maps, IDN_MAP_AFFINITY));
	close_json_object();
	print_nl();

	open_json_array(PRINT_JSON, "devices");
	fd = devs_fd(false);
	if (fd >= 0 && !devs_read(fd, devs)) {
		for (int i = 0; i < DEVS_MAX; i++) {
			const struct dp_dev *d = &devs[i];
			__u32 now_id;

			if (d->kind == DP_NONE)
				continue;
			now_id = d->kind == DP_XDP ? xdp_query(d) : tc_query(d);
			open_json_object(NULL);
			print_string(PRINT_ANY, "dev", "dev %s ", d->ifname);
			print_uint(PRINT_ANY, "ifindex", "ifindex %u ", d->ifindex);
			print_string(PRINT_ANY, "mode", "mode %s ", kind_names[d->kind]);
			if (d->kind == DP_XDP)
				print_string(PRINT_ANY, "xdpmode", "xdpmode %s ",
					     d->xdp_flags == XDP_FLAGS_DRV_MODE ? "native" :
					     d->xdp_flags == XDP_FLAGS_SKB_MODE ? "generic" : "auto");
			print_uint(PRINT_ANY, "prog_id", "prog-id %u ", d->prog_id);
			print_bool(PRINT_ANY, "attached", "attached %s",
				   now_id && now_id == d->prog_id);
			close_json_object();
			print_nl();
		}
	}
	if (fd >= 0)
		close(fd);
	close_json_array(PRINT_JSON, NULL);
	idn_json_end();
	return EXIT_OK;
}

/*
 * Outer source: ADDR, or ADDR/LEN, a pool whose host bits come from each
 * flow (bpf/lib/rss.h): IPv4 /16../32, IPv6 /96../128. 0 or -EINVAL with
 * idn_errmsg() set (PARSE() prints it).
 */
static int parse_src(const char *arg, __u8 family, struct idn_addr *a, __u8 *bits)
{
	const char *name = family == IDN_AF_INET ? "src4" : "src6";
	__u32 min = family == IDN_AF_INET ? 16 : 96, max = family == IDN_AF_INET ? 32 : 128;
	char buf[INET6_ADDRSTRLEN + 8];
	char *slash;
	__u32 len = max;

	if (strlen(arg) >= sizeof(buf))
		return idn_err(-EINVAL, "invalid %s \"%s\"", name, arg);
	strcpy(buf, arg);
	slash = strchr(buf, '/');
	if (slash) {
		*slash = 0;
		if (idn_parse_u32(slash + 1, min, max, &len, name))
			return idn_err(-EINVAL, "invalid %s \"%s\" (prefix length %u..%u: the "
				       "pool's host bits come from each flow)", name, arg, min, max);
	}
	if (idn_parse_addr(buf, a) || a->family != family)
		return idn_err(-EINVAL, "%s needs an %s address", name,
			       family == IDN_AF_INET ? "IPv4" : "IPv6");
	*bits = (__u8)(max - len);
	return 0;
}

static int dp_set(int argc, char **argv)
{
	struct conf_argv ca = {};
	struct idn_config cfg;
	struct idn_addr a;
	__u32 v;
	bool on;
	int rc = conf_args(&argc, &argv, &ca, "router", NULL);

	if (rc >= 0)
		return rc;
	if (argc < 1 && ca.from_file)
		return EXIT_OK;		/* "config FILE" with no [router] settings */
	if (argc < 1)
		return usage_error("dp set needs at least one setting, try \"idnctl dp help\".");
	if (idn_config_get(&G.maps, &cfg))
		return runtime_error("dp set: %s", idn_errmsg());
	while (argc > 0) {
		static const struct { const char *kw; __u32 flag; bool invert; } flags[] = {
			{ "drop-malformed", IDN_CFG_F_DROP_MALFORMED, false },
			{ "hold", IDN_CFG_F_HOLD, false },
			{ "rst", IDN_CFG_F_NO_RST, true },
			{ "telemetry", IDN_CFG_F_TELEMETRY, false },
		};
		bool done = false;

		for (size_t i = 0; i < ARRAY_SIZE(flags); i++) {
			if (!matches(*argv, flags[i].kw))
				continue;
			NEXT_ARG();
			PARSE(idn_parse_onoff(*argv, &on, flags[i].kw));
			if (on != flags[i].invert)
				cfg.flags |= flags[i].flag;
			else
				cfg.flags &= ~flags[i].flag;
			done = true;
			break;
		}
		if (done) {
		} else if (matches(*argv, "port")) {
			NEXT_ARG();
			PARSE(idn_parse_u32(*argv, 1, 65535, &v, "port"));
			cfg.tele_port = htons(v);
		} else if (matches(*argv, "src4")) {
			NEXT_ARG();
			PARSE(parse_src(*argv, IDN_AF_INET, &a, &cfg.src4_bits));
			cfg.src4 = a.addr[0];
		} else if (matches(*argv, "src6")) {
			NEXT_ARG();
			PARSE(parse_src(*argv, IDN_AF_INET6, &a, &cfg.src6_bits));
			memcpy(cfg.src6, a.addr, sizeof(cfg.src6));
		} else if (matches(*argv, "prefix6")) {
			NEXT_ARG();
			memset(cfg.prefix6, 0, sizeof(cfg.prefix6));
			if (matches(*argv, "off")) {
				cfg.prefix6_on = 0;
			} else {
				PARSE(idn_parse_prefix6(*argv, cfg.prefix6));
				cfg.prefix6_on = 1;
			}
		} else if (matches(*argv, "home-domain")) {
			NEXT_ARG();
			PARSE(idn_parse_u32(*argv, 0, 65535, &v, "home-domain"));
			cfg.home_domain = v;
		} else if (matches(*argv, "receipt-sample")) {
			NEXT_ARG();
			PARSE(idn_parse_u32(*argv, 0, UINT32_MAX, &cfg.receipt_sample,
					    "receipt-sample"));
		} else if (matches(*argv, "affinity-ttl")) {
			NEXT_ARG();
			PARSE(idn_parse_u32(*argv, 0, UINT32_MAX, &cfg.aff_ttl_s, "affinity-ttl"));
		} else if (matches(*argv, "frag")) {
			/* IPv4 and IPv6 fragments: counted, then passed or dropped */
			NEXT_ARG();
			if (matches(*argv, "pass"))
				cfg.flags &= ~IDN_CFG_F_FRAG_DROP;
			else if (matches(*argv, "drop"))
				cfg.flags |= IDN_CFG_F_FRAG_DROP;
			else
				return usage_error("invalid frag \"%s\" (expected pass|drop)", *argv);
		} else if (matches(*argv, "ext6")) {
			/* IPv6 with extension headers: passed, dropped or steered past them */
			NEXT_ARG();
			cfg.flags &= ~(IDN_CFG_F_EXT6_DROP | IDN_CFG_F_EXT6_STEER);
			if (matches(*argv, "drop"))
				cfg.flags |= IDN_CFG_F_EXT6_DROP;
			else if (matches(*argv, "steer"))
				cfg.flags |= IDN_CFG_F_EXT6_STEER;
			else if (!matches(*argv, "pass"))
				return usage_error("invalid ext6 \"%s\" (expected pass|drop|steer)",
						   *argv);
		} else if (matches(*argv, "flood-rate")) {
			/* new flows per CPU per second that may create state */
			NEXT_ARG();
			if (matches(*argv, "default"))
				cfg.flood_rate = 0;
			else if (matches(*argv, "off"))
				cfg.flood_rate = IDN_FLOOD_OFF;
			else
				PARSE(idn_parse_u32(*argv, 1, IDN_FLOOD_OFF - 1, &cfg.flood_rate,
						    "flood-rate"));
		} else {
			return usage_error("unknown argument \"%s\", try \"idnctl dp help\".", *argv);
		}
		argc--;
		argv++;
	}
	/*
	 * Read-modify-write of the one config entry: a plan commit between
	 * our read and write would be undone, so hold the writers' lock.
	 */
	if (idn_maps_lock(&G.maps))
		return runtime_error("dp set: %s", idn_errmsg());
	{
		struct idn_config now;

		if (idn_config_get(&G.maps, &now))
			return runtime_error("dp set: %s", idn_errmsg());
		cfg.active_slot = now.active_slot;
		cfg.generation = now.generation;
	}
	if (idn_config_set(&G.maps, &cfg))
		return runtime_error("dp set: %s", idn_errmsg());
	idn_maps_unlock(&G.maps);
	return EXIT_OK;
}

/*
 * dp flush conns: empty the connection table (as a restart or an LRU
 * storm would). Live connections continue where they are: their next
 * segments find the node by TS cookie or the stateless choice.
 */
static int dp_flush(int argc, char **argv)
{
	int n;

	if (argc != 1 || !matches(*argv, "conns"))
		return usage_error("dp flush needs \"conns\", try \"idnctl dp help\".");
	n = idn_map_flush(&G.maps, IDN_MAP_CONNS);
	if (n < 0)
		return runtime_error("dp flush: %s", idn_errmsg());
	idn_json_begin(false);
	print_int(PRINT_ANY, "flushed", "flushed %d conns\n", n);
	idn_json_end();
	return EXIT_OK;
}

/*
 * dp affinity TOKEN CLASS [ node ID ]: the affinity table's entry of
 * (TOKEN, CLASS), the node a client's token is steered back to, or write
 * one (used now). The table is set-associative (bpf/lib/ctab.h): bpftool
 * cannot look it up by key.
 */
static int dp_affinity(int argc, char **argv)
{
	unsigned long long token, cls, node = 0;
	struct idn_aff a = { 0 };
	int fd, err;
	char *end;

	if (argc != 2 && !(argc == 4 && matches(argv[2], "node")))
		return usage_error("dp affinity needs TOKEN CLASS [ node ID ], try \"idnctl dp help\".");
	errno = 0;
	token = strtoull(argv[0], &end, 0);
	if (errno || *end || !*argv[0])
		return usage_error("dp affinity: bad token \"%s\".", argv[0]);
	cls = strtoull(argv[1], &end, 0);
	if (errno || *end || !*argv[1] || cls > IDN_CAP_CLASS(~0U))
		return usage_error("dp affinity: bad class \"%s\".", argv[1]);
	if (argc == 4) {
		node = strtoull(argv[3], &end, 0);
		if (errno || *end || !*argv[3] || node >= IDN_MAX_NODES)
			return usage_error("dp affinity: bad node \"%s\".", argv[3]);
	}
	fd = idn_map_fd(&G.maps, IDN_MAP_AFFINITY);
	if (fd < 0)
		return runtime_error("dp affinity: %s", idn_errmsg());
	if (argc == 4) {
		a.node = (__u32)node;
		a.last_s = idn_coarse_now();
		err = idn_afft_put(fd, token, (__u32)cls, &a, 0);
		if (err)
			return runtime_error("dp affinity: write: %s", strerror(-err));
	}
	err = idn_afft_get(fd, token, (__u32)cls, &a);
	if (err && err != -ENOENT)
		return runtime_error("dp affinity: read: %s", strerror(-err));
	idn_json_begin(false);
	print_u64(PRINT_ANY, "token", "token %llu ", token);
	print_uint(PRINT_ANY, "class", "class %u ", (unsigned int)cls);
	if (err) {
		print_null(PRINT_ANY, "node", "%s\n", "none");
	} else {
		print_uint(PRINT_ANY, "node", "node %u ", a.node);
		print_uint(PRINT_ANY, "age_s", "age %us\n", idn_coarse_now() - a.last_s);
	}
	idn_json_end();
	return EXIT_OK;
}

int do_dp(int argc, char **argv)
{
	if (argc < 1)
		return dp_status(0, NULL);
	if (matches(*argv, "attach"))
		return dp_attach(argc - 1, argv + 1);
	if (matches(*argv, "detach"))
		return dp_detach(argc - 1, argv + 1);
	if (matches(*argv, "replace"))
		return dp_replace(argc - 1, argv + 1);
	if (matches(*argv, "decap"))
		return dp_decap(argc - 1, argv + 1);
	if (matches(*argv, "status") || matches(*argv, "show"))
		return dp_status(argc - 1, argv + 1);
	if (matches(*argv, "set"))
		return dp_set(argc - 1, argv + 1);
	if (matches(*argv, "flush"))
		return dp_flush(argc - 1, argv + 1);
	if (matches(*argv, "affinity"))
		return dp_affinity(argc - 1, argv + 1);
	if (matches(*argv, "help"))
		return usage();
	return unknown_cmd("dp", *argv);
}
