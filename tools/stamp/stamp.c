// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * stamp.c - library side of client stamping (see stamp.h): per-socket
 * descriptors in the pinned SK_STORAGE map, option encoding, cgroup2
 * discovery, capability parsing. No printing, no exit: -errno.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <arpa/inet.h>
#include <bpf/bpf.h>

#include "idn_stamp.h"
#include "stamp.h"

IDN_ASSERT_ABI();

__u64 idn_stamp_prefix_token(const void *prompt, size_t len, size_t block)
{
	return idn_prefix_token(prompt, len, block);	/* prefix.h: the agent's too */
}

int idn_stamp_sk_open(const char *pin_dir)
{
	char path[512];
	int fd;

	if (snprintf(path, sizeof(path), "%s/%s", pin_dir ? pin_dir : IDN_PIN_DEFAULT,
		     IDN_STAMP_SK_MAP) >= (int)sizeof(path))
		return -ENAMETOOLONG;
	fd = bpf_obj_get(path);
	return fd < 0 ? -errno : fd;
}

int idn_stamp_sk_set(int map_fd, int sock_fd, const struct idn_desc *d)
{
	struct idn_desc v = *d;

	if (v.tier > IDN_TIER_MAX || ((v.flags & IDN_DF_SIZE) && v.size_class > 15))
		return -EINVAL;
	v.pad = 0;
	if (bpf_map_update_elem(map_fd, &sock_fd, &v, BPF_ANY))
		return -errno;
	return 0;
}

int idn_stamp_sk_clear(int map_fd, int sock_fd)
{
	if (bpf_map_delete_elem(map_fd, &sock_fd) && errno != ENOENT)
		return -errno;
	return 0;
}

void idn_stamp_encode(const struct idn_desc *d, struct idn_tcpopt *o)
{
	memset(o, 0, sizeof(*o));
	o->kind = IDN_TCPOPT_KIND;
	o->len = IDN_TCPOPT_LEN;
	o->exid = htons(IDN_TCPOPT_EXID);
	o->ver_tier = (IDN_TCPOPT_VERSION << 4) | (d->tier & 0xf);
	o->policy = d->policy;
	o->size_class = (d->flags & IDN_DF_SIZE) ? (d->size_class & 0xf) : IDN_SIZE_NONE;
	o->cap = htonl(d->cap);
	o->token_hi = htonl((__u32)(d->token >> 32));
	o->token_lo = htonl((__u32)d->token);
}

int idn_stamp_cgroup2_root(char *buf, size_t len, int do_mount)
{
	static const char fallback[] = "/run/idn/cgroup2";
	char line[1024], mnt[512], *sep;
	FILE *f;
	int found = 0;

	f = fopen("/proc/self/mountinfo", "r");
	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		/* "id parent maj:min root mountpoint opts... - fstype src opts" */
		sep = strstr(line, " - ");
		if (!sep || strncmp(sep + 3, "cgroup2 ", 8))
			continue;
		if (sscanf(line, "%*s %*s %*s %*s %511s", mnt) == 1) {
			found = 1;
			break;
		}
	}
	fclose(f);
	if (!found) {
		if (!do_mount)
			return -ENOENT;
		mkdir("/run/idn", 0755);
		if (mkdir(fallback, 0755) && errno != EEXIST)
			return -errno;
		if (mount("cgroup2", fallback, "cgroup2", 0, NULL))
			return -errno;
		snprintf(mnt, sizeof(mnt), "%s", fallback);
	}
	if (strlen(mnt) >= len)
		return -ENAMETOOLONG;
	strcpy(buf, mnt);
	return 0;
}

int idn_stamp_parse_cap(const char *s, __u32 *cap)
{
	unsigned long cls, var = 0;
	char *end;

	errno = 0;
	cls = strtoul(s, &end, 0);
	if (errno || end == s)
		return -EINVAL;
	if (*end == '/') {
		s = end + 1;
		var = strtoul(s, &end, 0);
		if (errno || end == s)
			return -EINVAL;
	}
	if (*end || cls > 0xffffff || var > 0xff)
		return -EINVAL;
	*cap = IDN_CAP(cls, var);
	return 0;
}
