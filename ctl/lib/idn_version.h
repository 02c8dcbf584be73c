/* SPDX-License-Identifier: GPL-2.0 */
/*
 * idn_version.h - the build's version string (tools/version.sh: git
 * describe in a checkout, else the VERSION file), defined in the generated
 * $(O)/version.c that every shipped binary links; printed by --version.
 */
#ifndef IDN_VERSION_H
#define IDN_VERSION_H

extern const char idn_version[];

#endif
