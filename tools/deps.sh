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
	libsodium-dev libcurl4-openssl-dev libxxhash-dev
	# configuration files (/etc/idn/*.conf, ctl/lib/conf.c)
	libinih-dev
	# Debian packages (make deb) and their test in a fresh Debian 12 chroot
	# (selftests/pkg/test_packages.sh), booted with systemd-nspawn to start
	# the units with systemctl
	debhelper dh-dkms dkms lintian debootstrap dpkg-dev systemd systemd-container
	# control-plane mutual TLS (ctl/lib/http.c: GnuTLS, libmicrohttpd's TLS
	# library); certificates for the demo and tests with the openssl CLI
	libgnutls28-dev openssl
	# controller: placement ILP reference (CBC) and LP bounds (GLPK, no .pc file);
	# distributed mode on etcd (selftests/net/test_idnd_etcd.sh starts its own)
	coinor-libcbc-dev libglpk-dev etcd-server etcd-client
	# capability anycast over BGP (idnctl bgp; selftests/net/test_bgp_anycast.sh)
	bird2
	# network testbed and load tools
	iproute2 ethtool curl wrk procps util-linux iputils-ping netcat-openbsd jq
	# sanitizers / memcheck
	valgrind libclang-rt-14-dev
	# kernel tier (selftests/kernel): QEMU guest, busybox initramfs, module
	# BTF (pahole; resolve_btfids is built from linux-source-6.1's tools/)
	qemu-system-x86 busybox-static cpio xz-utils zstd kmod dwarves bison flex
	linux-source-6.1
	# KV transfer over RDMA (agent/kvx_rdma.c): verbs + rdma_cm headers; in the
	# kernel tier's guest: the rxe provider, the `rdma` tool (iproute2),
	# perftest's ib_write_bw (kv_rdma_vs_ib_write_bw)
	libibverbs-dev librdmacm-dev ibverbs-providers perftest
	# make eval's plots (tools/eval/run.sh)
	gnuplot-nox
	# promtool: every /metrics export checked by `promtool check metrics`
	# (unit_idnctl_prom, the net tests, bench mode metrics); the OpenAPI
	# descriptions read by selftests/net/openapi_check.py
	prometheus python3-yaml
)

# Debian 12's 6.1 kernel ABI (e.g. 6.1.0-57-amd64): the headers are installed,
# the image package is only downloaded (selftests/kernel unpacks it; installing
# a kernel would run bootloader and initramfs hooks on the host for nothing).
KCACHE=${IDN_KCACHE:-/var/cache/idn}
kabi() {
	apt-cache depends linux-headers-amd64 2>/dev/null |
		sed -n 's/.*Depends: linux-headers-\(6\.1\.[0-9.-]*-amd64\)$/\1/p' | head -1
}

if [ "$(id -u)" -ne 0 ]; then
	echo "deps.sh: must run as root" >&2
	exit 1
fi

missing=()
for p in "${PKGS[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
		missing+=("$p")
done
export DEBIAN_FRONTEND=noninteractive
kver=$(kabi)
if [ -z "$kver" ]; then
	apt-get -o DPkg::Lock::Timeout=600 update -q
	kver=$(kabi)
fi
if [ -n "$kver" ]; then
	dpkg-query -W -f='${Status}' "linux-headers-$kver" 2>/dev/null |
		grep -q "install ok installed" || missing+=("linux-headers-$kver")
else
	echo "deps.sh: no Debian 6.1 linux-headers-amd64 known to apt: kernel tier will skip" >&2
fi
if [ ${#missing[@]} -eq 0 ]; then
	echo "deps.sh: all ${#PKGS[@]} packages present"
else
	echo "deps.sh: installing ${missing[*]}"
	apt-get -o DPkg::Lock::Timeout=600 update -q
	apt-get -o DPkg::Lock::Timeout=600 install -y -q --no-install-recommends "${missing[@]}"
fi
if [ -n "$kver" ] && ! ls "$KCACHE"/linux-image-"$kver"_*.deb >/dev/null 2>&1 &&
	[ ! -f "/boot/vmlinuz-$kver" ]; then
	echo "deps.sh: downloading linux-image-$kver to $KCACHE"
	mkdir -p "$KCACHE"
	(cd "$KCACHE" && apt-get -o DPkg::Lock::Timeout=600 download "linux-image-$kver")
fi
