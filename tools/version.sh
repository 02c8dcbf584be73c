#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# The version every binary prints with --version, from the repository root:
#   in a git checkout: the nearest v* tag (git describe, "-dirty" if edited),
#                      else VERSION + "+g<commit>"
#   elsewhere (a tarball, a package build without .git): VERSION as is.
# $IDN_VERSION, when set, wins (a packager's override).
cd "$(dirname "$0")/.." || exit 1
if [ -n "$IDN_VERSION" ]; then
	echo "$IDN_VERSION"
	exit 0
fi
base=$(cat VERSION 2>/dev/null || echo 0.0.0)
if [ -e .git ] && command -v git >/dev/null 2>&1; then
	if d=$(git describe --tags --match 'v[0-9]*' --dirty 2>/dev/null); then
		echo "${d#v}"
		exit 0
	fi
	if h=$(git describe --always --dirty --abbrev=12 2>/dev/null); then
		echo "$base+g$h"
		exit 0
	fi
fi
echo "$base"
