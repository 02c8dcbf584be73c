// SPDX-License-Identifier: GPL-2.0
/*
 * dp_decap.c - load the node-side skeleton (bpf/idn_node.bpf.c) and pin
 * its program. A file of its own because the skeleton's struct idn_node
 * has the name of the uapi node entry (<linux/idn.h>): the two cannot
 * meet in one translation unit, so this file includes no IDN header.
 */
#include <errno.h>
#include <stdio.h>
#include <bpf/libbpf.h>

#include "dp_load.h"

#if __has_include("bpf/idn_node.skel.h")
#include "bpf/idn_node.skel.h"

int idnctl_decap_load_pin(const char *pin_root, const char *prog_pin, const char *stamp_pin)
{
	LIBBPF_OPTS(bpf_object_open_opts, opts, .pin_root_path = pin_root);
	struct idn_node *skel;
	int err;

	skel = idn_node__open_opts(&opts);
	if (!skel)
		return -errno;
	err = idn_node__load(skel);
	if (!err)
		err = bpf_program__pin(skel->progs.idn_decap, prog_pin);
	if (!err) {
		err = bpf_program__pin(skel->progs.idn_stamp, stamp_pin);
		if (err)
			bpf_program__unpin(skel->progs.idn_decap, prog_pin);
	}
	idn_node__destroy(skel);	/* the pin keeps the program */
	return err;
}
#else
int idnctl_decap_load_pin(const char *pin_root, const char *prog_pin, const char *stamp_pin)
{
	return -EOPNOTSUPP;	/* built without bpf/idn_node.bpf.c */
}
#endif
