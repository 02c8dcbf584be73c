/* SPDX-License-Identifier: GPL-2.0 */
/*
 * dp_load.h - skeleton loaders of idnctl dp, kept apart from the IDN
 * headers (see dp_decap.c for why).
 */
#ifndef __IDN_CTL_DP_LOAD_H
#define __IDN_CTL_DP_LOAD_H

/*
 * Load idn_node (maps pinned under pin_root), pin idn_decap at prog_pin
 * and idn_stamp (TC egress, the TS cookie) at stamp_pin.
 */
int idnctl_decap_load_pin(const char *pin_root, const char *prog_pin, const char *stamp_pin);

#endif /* __IDN_CTL_DP_LOAD_H */
