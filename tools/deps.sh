#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Install every Debian 12 package IDN needs to build, test and benchmark.
# Idempotent: safe to run again; run as root.
set -euo pipefail

PKGS=(
	# toolchain
	build-essential clang llvm make pkg-config python3
	# BPF
	libbpf-dev bpftool libelf-dev zlib1g-dev linux-libc-dev
	# userspace libraries
	libjson-c-dev libnl-3-dev libnl-genl-3-dev libmicrohttpd-dev libsqlite3-dev
	libsodium-dev libcurl4-openssl-dev
	# network testbed and load tools
	iproute2 ethtool curl wrk procps util-linux iputils-ping netcat-openbsd
	# sanitizers / memcheck
	valgrind libclang-rt-14-dev
)

if [ "$(id -u)" -ne 0 ]; then
	echo "deps.sh: must run as root" >&2
	exit 1
fi

missing=()
for p in "${PKGS[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
		missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
	echo "deps.sh: all ${#PKGS[@]} packages present"
	exit 0
fi
echo "deps.sh: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get -o DPkg::Lock::Timeout=600 update -q
apt-get -o DPkg::Lock::Timeout=600 install -y -q --no-install-recommends "${missing[@]}"
