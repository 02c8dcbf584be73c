/* SPDX-License-Identifier: GPL-2.0 */
/*
 * dp_features.h - which dataplane features this kernel allows, found by
 * loading, and which the operator switched off.
 *
 * Asking is not enough: some kernels refuse a helper in every program of
 * a type while bpftool's and libbpf's helper probes still report it (a
 * 6.18 build refuses bpf_xdp_adjust_meta in XDP). So each feature is
 * probed by loading a few instructions that use it, and the steering
 * object's .rodata flags (idn_features, idn_features_forced_off; uapi
 * IDN_FEAT_*) are set from the answer before the real load.
 *
 * IDN_DP_DISABLE=meta[,...] forces a feature off, so every fallback can
 * be exercised on any kernel (selftests run each variant).
 *
 * Header-only: idnctl, the BPF test bed and the benchmarks load the
 * steering object, and all of them use this one probe.
 */
#ifndef __IDN_CTL_DP_FEATURES_H
#define __IDN_CTL_DP_FEATURES_H

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <linux/bpf.h>
#include <bpf/bpf.h>

#include "linux/idn.h"

struct idn_feature_desc {
	__u32 bit;
	const char *name;	/* IDN_DP_DISABLE and dp status spelling */
	const char *what;
};

static const struct idn_feature_desc idn_feature_descs[] = {
	{ IDN_FEAT_XDP_META, "meta",
	  "XDP metadata for held misses (bpf_xdp_adjust_meta)" },
};
#define IDN_N_FEATURES (sizeof(idn_feature_descs) / sizeof(idn_feature_descs[0]))

/*
 * idn_probe_xdp_meta - load "r2 = -8; call bpf_xdp_adjust_meta; return
 * XDP_PASS" as XDP. Return: 1 allowed, 0 refused (why names the helper and
 * the verifier's words), -errno when the probe itself could not run.
 */
static inline int idn_probe_xdp_meta(char *why, size_t n)
{
	const struct bpf_insn insns[] = {
		{ .code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = BPF_REG_2, .imm = -8 },
		{ .code = BPF_JMP | BPF_CALL, .imm = BPF_FUNC_xdp_adjust_meta },
		{ .code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = BPF_REG_0, .imm = XDP_PASS },
		{ .code = BPF_JMP | BPF_EXIT },
	};
	char log[512] = "";
	LIBBPF_OPTS(bpf_prog_load_opts, o, .log_buf = log, .log_size = sizeof(log),
		    .log_level = 1);
	int fd, err;

	fd = bpf_prog_load(BPF_PROG_TYPE_XDP, "idn_probe_meta", "GPL", insns,
			   sizeof(insns) / sizeof(insns[0]), &o);
	if (fd >= 0) {
		close(fd);
		snprintf(why, n, "on (probe load ok)");
		return 1;
	}
	err = -errno;
	if (err == -EINVAL || err == -EACCES) {
		char *nl, *line = strstr(log, "cannot use helper");

		/* the verifier's own line, e.g. "program of this type cannot use helper ..." */
		if (line) {
			while (line > log && line[-1] != '\n')
				line--;
			nl = strchr(line, '\n');
			if (nl)
				*nl = 0;
		}
		snprintf(why, n, "off (kernel refuses bpf_xdp_adjust_meta in XDP: %s)",
			 line ? line : strerror(-err));
		return 0;
	}
	snprintf(why, n, "unknown (probe load failed: %s)", strerror(-err));
	return err;
}

/* Is name in the comma list s? */
static inline int idn_feature_listed(const char *s, const char *name)
{
	size_t len = strlen(name);

	while (s && *s) {
		if (!strncmp(s, name, len) && (s[len] == ',' || s[len] == 0))
			return 1;
		s = strchr(s, ',');
		if (s)
			s++;
	}
	return 0;
}

/*
 * idn_dp_features - features to load with: the kernel's answer to each
 * probe, less those named in IDN_DP_DISABLE. *forced gets the ones the
 * operator switched off; why (may be NULL) one "name: state" line per
 * feature. An unknown name in IDN_DP_DISABLE is an error (-EINVAL, why
 * says which): a typo must not silently keep a feature on.
 */
static inline int idn_dp_features(__u32 *features, __u32 *forced, char *why, size_t n)
{
	const char *off = getenv("IDN_DP_DISABLE");
	size_t used = 0;
	__u32 f = 0, fo = 0;

	if (why && n)
		why[0] = 0;
	if (off && *off) {
		const char *s = off;

		while (*s) {
			size_t len = strcspn(s, ",");
			int known = 0;

			for (size_t i = 0; i < IDN_N_FEATURES; i++)
				known |= len == strlen(idn_feature_descs[i].name) &&
					 !strncmp(s, idn_feature_descs[i].name, len);
			if (!known && len) {
				if (why)
					snprintf(why, n, "IDN_DP_DISABLE: unknown feature \"%.*s\" (known: meta)",
						 (int)len, s);
				return -EINVAL;
			}
			s += len;
			if (*s == ',')
				s++;
		}
	}
	for (size_t i = 0; i < IDN_N_FEATURES; i++) {
		const struct idn_feature_desc *fd = &idn_feature_descs[i];
		char line[256];
		int r = 1;

		if (idn_feature_listed(off, fd->name)) {
			fo |= fd->bit;
			snprintf(line, sizeof(line), "off (IDN_DP_DISABLE)");
			r = 0;
		} else if (fd->bit == IDN_FEAT_XDP_META) {
			r = idn_probe_xdp_meta(line, sizeof(line));
		}
		/* a probe that could not run (no privilege): leave the feature on,
		 * the real load then reports the real error */
		if (r != 0)
			f |= fd->bit;
		if (why && used < n)
			used += snprintf(why + used, n - used, "%s%s: %s", used ? "\n" : "",
					 fd->name, line);
	}
	*features = f;
	if (forced)
		*forced = fo;
	return 0;
}

#endif /* __IDN_CTL_DP_FEATURES_H */
