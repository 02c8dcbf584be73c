#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# run.sh - the kernel test tier: build idn.ko against Debian 12's 6.1
# headers with module BTF, boot Debian's 6.1 kernel under QEMU with a
# busybox initramfs holding the module, the test binaries and their
# libraries, run selftests/kernel/guest.sh inside and print its TAP here.
# For test_rdma.sh the initramfs also carries Soft-RoCE: rdma_rxe and its
# modules (from the cached image), the rxe verbs provider, iproute2's rdma,
# perftest's ib_write_bw and ib_write_lat, kt_kvx (selftests/kernel/rdma/)
# and idn-agent.
# Then, for pair_rdma.sh, two more guests on the same kernel and initramfs
# ("idnpair=a"/"idnpair=b"), one virtio-net NIC each, the two NICs joined
# by a QEMU dgram netdev over two unix sockets in this run's temp dir:
# rdma_rxe on each end, idn-agent A pushes KV blocks to idn-agent B across
# the link. Their TAP follows the first guest's.
#
# Exit: 0 all passed, 1 a failure (incl. WARN/BUG/Oops/leak in the guest's
# dmesg, no exit marker, timeout), 4 skipped (the host cannot: no qemu,
# no 6.1 headers/image/source; reason printed).
# Cache (reused while inputs are unchanged): $O/kernel/<kver>/.
# Env: O (build dir), IDN_KVER, IDN_KCACHE (downloaded linux-image .deb,
#      default /var/cache/idn), IDN_QEMU_ACCEL=kvm|tcg, IDN_QEMU_TIMEOUT (s, 420),
#      IDN_QEMU_PAIR_TIMEOUT (s, 300: the two guests of pair_rdma.sh),
#      IDN_KTESTS="pattern" (guest tests to run, e.g. rdma, which includes
#      the two-guest pair_rdma.sh; "pair" runs that one alone beside the
#      first guest's load checks), V=1 (show the consoles),
#      IDN_KNARRATE=1 (guest tests that tell a story print it as "# " lines:
#      test_activate.sh, for tools/demo-activation.sh),
#      IDN_KBENCH=1: benchmark mode for `tools/bench/run.sh kernel|rdma`: the
#      same build and boot, but the guest runs tools/bench/kernel_guest.sh
#      or IDN_KBENCH_SCRIPT (tools/bench/rdma_guest.sh), knobs KB_N,
#      KB_ROUNDS, KB_K, RB_BYTES, RB_SLICE, RB_ROUNDS passed through, and this script prints
#      its figures, one "name value unit" line each, on stdout, progress
#      and "# skipped: reason" on stderr (exit 0, 1 failed, 4 skipped).
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
O=${O:-build}
case $O in /*) ;; *) O=$ROOT/$O ;; esac
KCACHE=${IDN_KCACHE:-/var/cache/idn}
T0=$(date +%s.%N)

BENCH=${IDN_KBENCH:-0}
if [ "$BENCH" = 1 ]; then
	skip() { echo "# skipped: $*" >&2; exit 4; }
	fail() { echo "kernel bench setup: $*" >&2; exit 1; }
else
	skip() { echo "1..0 # SKIP $*"; exit 4; }
	fail() { echo "not ok 1 - kernel tier setup: $*"; echo "1..1"; exit 1; }
fi
log() { [ "${V:-0}" != 1 ] || echo "# $*"; }

# ---- what the host has --------------------------------------------------
command -v qemu-system-x86_64 >/dev/null || skip "no qemu-system-x86_64 (tools/deps.sh)"
BB=$(command -v busybox || true)
[ -n "$BB" ] && ! readelf -lW "$BB" 2>/dev/null | grep -q 'program interpreter' ||
	skip "no static busybox (busybox-static)"
for t in objcopy cpio xz readelf ldd gcc make pkg-config; do
	command -v $t >/dev/null || skip "no $t"
done
KVER=${IDN_KVER:-$(ls -d /usr/src/linux-headers-6.1.*-amd64 2>/dev/null | sort -V | tail -1 |
	sed 's|.*/linux-headers-||')}
[ -n "$KVER" ] && [ -f "/usr/src/linux-headers-$KVER/Makefile" ] ||
	skip "no Debian 6.1 linux-headers-*-amd64 (tools/deps.sh)"
SERIES=$(echo "$KVER" | cut -d. -f1,2)
SRCTAR=$(ls /usr/src/linux-source-"$SERIES".tar.* 2>/dev/null | head -1 || true)
[ -n "$SRCTAR" ] || skip "no linux-source-$SERIES (tools/deps.sh)"
DEB=$(ls "$KCACHE"/linux-image-"$KVER"_*.deb 2>/dev/null | sort -V | tail -1 || true)
if [ ! -f "/boot/vmlinuz-$KVER" ] || [ ! -d "/lib/modules/$KVER/kernel" ]; then
	[ -n "$DEB" ] || skip "no linux-image-$KVER (tools/deps.sh downloads it to $KCACHE)"
fi
pkg-config --exists libnl-genl-3.0 || skip "no libnl-genl-3 (tools/deps.sh)"

C=$O/kernel/$KVER
mkdir -p "$C"

# ---- kernel image and the modules the guest needs -----------------------
KMODS="kernel/drivers/net/veth.ko kernel/net/ipv4/netfilter/nf_reject_ipv4.ko
	kernel/net/ipv6/netfilter/nf_reject_ipv6.ko kernel/net/sched/sch_ingress.ko
	kernel/net/sched/cls_bpf.ko kernel/net/sched/cls_u32.ko kernel/net/sched/act_skbedit.ko"
if [ ! -f "$C/root/.done" ]; then
	log "unpacking kernel $KVER"
	rm -rf "$C/root" && mkdir -p "$C/root/boot" "$C/root/modules"
	if [ -f "/boot/vmlinuz-$KVER" ] && [ -d "/lib/modules/$KVER/kernel" ]; then
		cp "/boot/vmlinuz-$KVER" "$C/root/boot/"
		for m in $KMODS; do cp "/lib/modules/$KVER/$m" "$C/root/modules/"; done
	else
		pat=()
		for m in $KMODS; do pat+=("./lib/modules/$KVER/$m"); done
		dpkg-deb --fsys-tarfile "$DEB" | tar -C "$C/root" -x "./boot/vmlinuz-$KVER" "${pat[@]}" ||
			fail "cannot unpack $DEB"
		mv "$C/root/boot/vmlinuz-$KVER" "$C/root/vmlinuz" && mv "$C/root/vmlinuz" "$C/root/boot/vmlinuz-$KVER"
		for m in $KMODS; do mv "$C/root/lib/modules/$KVER/$m" "$C/root/modules/"; done
		rm -rf "$C/root/lib"
	fi
	touch "$C/root/.done"
fi

# Soft-RoCE for test_rdma.sh and the rdma benchmark: rdma_rxe and what it
# needs, in load order (the image ships no modules.dep; crc32 first: rxe's
# ICRC asks the crypto API for "crc32" and fails without a provider)
RMODS="kernel/fs/configfs/configfs.ko kernel/crypto/crc32_generic.ko
	kernel/arch/x86/crypto/crc32-pclmul.ko kernel/net/ipv4/udp_tunnel.ko
	kernel/net/ipv6/ip6_udp_tunnel.ko kernel/drivers/infiniband/core/ib_core.ko
	kernel/drivers/infiniband/core/ib_uverbs.ko kernel/drivers/infiniband/core/iw_cm.ko
	kernel/drivers/infiniband/core/ib_cm.ko kernel/drivers/infiniband/core/rdma_cm.ko
	kernel/drivers/infiniband/core/rdma_ucm.ko kernel/drivers/infiniband/sw/rxe/rdma_rxe.ko"
if [ ! -f "$C/rdma/.done" ]; then
	log "unpacking the RDMA modules"
	rm -rf "$C/rdma" && mkdir -p "$C/rdma"
	if [ -d "/lib/modules/$KVER/kernel" ]; then
		for m in $RMODS; do cp "/lib/modules/$KVER/$m" "$C/rdma/" 2>/dev/null || true; done
	else
		pat=()
		for m in $RMODS; do pat+=("./lib/modules/$KVER/$m"); done
		dpkg-deb --fsys-tarfile "$DEB" | tar -C "$C/rdma" -x "${pat[@]}" 2>/dev/null || true
		find "$C/rdma/lib" -name '*.ko' -exec mv {} "$C/rdma/" \; 2>/dev/null || true
		rm -rf "$C/rdma/lib"
	fi
	touch "$C/rdma/.done"
fi

# virtio-net for pair_rdma.sh's two guests (the link between them), in
# load order
VMODS="kernel/drivers/virtio/virtio_ring.ko kernel/drivers/virtio/virtio.ko
	kernel/drivers/virtio/virtio_pci_legacy_dev.ko kernel/drivers/virtio/virtio_pci_modern_dev.ko
	kernel/drivers/virtio/virtio_pci.ko kernel/net/core/failover.ko
	kernel/drivers/net/net_failover.ko kernel/drivers/net/virtio_net.ko"
if [ ! -f "$C/vnet/.done" ]; then
	log "unpacking the virtio-net modules"
	rm -rf "$C/vnet" && mkdir -p "$C/vnet"
	if [ -d "/lib/modules/$KVER/kernel" ]; then
		for m in $VMODS; do cp "/lib/modules/$KVER/$m" "$C/vnet/" 2>/dev/null || true; done
	else
		pat=()
		for m in $VMODS; do pat+=("./lib/modules/$KVER/$m"); done
		dpkg-deb --fsys-tarfile "$DEB" | tar -C "$C/vnet" -x "${pat[@]}" 2>/dev/null || true
		find "$C/vnet/lib" -name '*.ko' -exec mv {} "$C/vnet/" \; 2>/dev/null || true
		rm -rf "$C/vnet/lib"
	fi
	touch "$C/vnet/.done"
fi

# decompressed ELF vmlinux: boots faster (PVH entry) and holds .BTF
if [ ! -s "$C/vmlinux" ]; then
	log "extracting vmlinux"
	bz=$C/root/boot/vmlinuz-$KVER
	for off in $(LC_ALL=C grep -obUaP '\xfd7zXZ\x00' "$bz" | cut -d: -f1); do
		tail -c +$((off + 1)) "$bz" | xz -dc >"$C/vmlinux.tmp" 2>/dev/null || true
		if readelf -h "$C/vmlinux.tmp" >/dev/null 2>&1; then
			mv "$C/vmlinux.tmp" "$C/vmlinux"
			break
		fi
	done
	rm -f "$C/vmlinux.tmp"
	[ -s "$C/vmlinux" ] || fail "no XZ-compressed ELF in vmlinuz-$KVER"
fi

# shadow kbuild dir: Debian's headers + vmlinux (= the image's .BTF section)
KDIR=$C/kbuild
if [ ! -s "$KDIR/vmlinux" ]; then
	log "preparing kbuild dir with vmlinux BTF"
	rm -rf "$KDIR" && mkdir -p "$KDIR"
	hdr=/usr/src/linux-headers-$KVER
	for f in "$hdr"/* "$hdr"/.config "$hdr"/.kernelvariables; do
		[ -e "$f" ] && ln -s "$(readlink -f "$f")" "$KDIR/$(basename "$f")"
	done
	objcopy -O binary -j .BTF "$C/vmlinux" "$KDIR/vmlinux.tmp"
	[ -s "$KDIR/vmlinux.tmp" ] || fail "no .BTF section in vmlinux"
	mv "$KDIR/vmlinux.tmp" "$KDIR/vmlinux"
fi

# the kernel's own makefiles read O= as their output directory: a caller's
# make (`make demo O=build`: O in MAKEFLAGS, and O in the environment) must
# not reach them
submake() { env -u MAKEFLAGS -u MAKEOVERRIDES -u MFLAGS -u MAKELEVEL -u O make "$@"; }

# resolve_btfids, built from linux-source's tools/ (linux-kbuild-6.1 lacks it)
RB=$O/kernel/resolve_btfids-$SERIES
if [ ! -x "$RB" ]; then
	log "building resolve_btfids from $(basename "$SRCTAR") (once, ~1 min)"
	src=$O/kernel/src-$SERIES
	rm -rf "$src" && mkdir -p "$src"
	tar -C "$src" -xf "$SRCTAR" "linux-source-$SERIES/tools" \
		"linux-source-$SERIES/scripts/bpf_doc.py" || fail "cannot unpack $SRCTAR"
	submake -s -C "$src/linux-source-$SERIES/tools/bpf/resolve_btfids" >"$src/build.log" 2>&1 ||
		{ tail -20 "$src/build.log"; fail "resolve_btfids build failed"; }
	cp "$src/linux-source-$SERIES/tools/bpf/resolve_btfids/resolve_btfids" "$RB.tmp"
	mv "$RB.tmp" "$RB"
	# keep the kselftest harness headers, drop the rest of the tree
	mkdir -p "$O/kernel/kselftest-$SERIES"
	cp "$src/linux-source-$SERIES/tools/testing/selftests/kselftest_harness.h" \
		"$src/linux-source-$SERIES/tools/testing/selftests/kselftest.h" \
		"$O/kernel/kselftest-$SERIES/" 2>/dev/null || true
	rm -rf "$src"
fi

# the kselftest harness the C tests (kt_*_test.c) are written on, from the
# same linux-source (a cache made before the harness was used lacks it)
KSFT=$O/kernel/kselftest-$SERIES
if [ ! -s "$KSFT/kselftest_harness.h" ] || [ ! -s "$KSFT/kselftest.h" ]; then
	log "extracting the kselftest harness from $(basename "$SRCTAR")"
	mkdir -p "$KSFT"
	tar -C "$KSFT" -xf "$SRCTAR" --strip-components=4 \
		"linux-source-$SERIES/tools/testing/selftests/kselftest_harness.h" \
		"linux-source-$SERIES/tools/testing/selftests/kselftest.h" ||
		fail "cannot unpack the kselftest harness from $SRCTAR"
fi

# ---- idn.ko (from a copy: the source tree stays clean) ------------------
MOD=$C/mod
mkdir -p "$MOD"
for f in kernel/Kbuild kernel/*.c kernel/*.h; do
	cmp -s "$f" "$MOD/$(basename "$f")" || cp "$f" "$MOD/"
done
log "building idn.ko"
if ! submake -C "$KDIR" M="$MOD" IDN_UAPI="$ROOT/include/uapi" RESOLVE_BTFIDS="$RB" \
	modules >"$C/mod.log" 2>&1; then
	sed 's/^/# /' "$C/mod.log" | tail -30
	fail "idn.ko does not build against $KVER"
fi
if grep -E 'warning:|Skipping BTF' "$C/mod.log" >/dev/null; then
	grep -E 'warning:|Skipping BTF' "$C/mod.log" | sed 's/^/# /'
	fail "idn.ko: build warnings or no module BTF"
fi
readelf -S "$MOD/idn.ko" | grep -q '\.BTF' || fail "idn.ko has no .BTF section"

# ---- guest test binaries ---------------------------------------------------
# kt_*_test.c: tests on the kselftest harness (TAP, one line per test);
# the other kt_*.c: tools the shell tests drive
TB=$C/tests
mkdir -p "$TB"
NLCF=$(pkg-config --cflags libnl-genl-3.0)
NLLD=$(pkg-config --libs libnl-genl-3.0)
SRCS=(selftests/kernel/*.c)
[ "$BENCH" = 1 ] && SRCS+=(tools/bench/idn_kbench.c)
for src in "${SRCS[@]}"; do
	[ -e "$src" ] || continue
	bin=$TB/$(basename "$src" .c)
	if [ ! "$bin" -nt "$src" ] || [ include/uapi/linux/idn.h -nt "$bin" ] ||
		[ selftests/kernel/kt.h -nt "$bin" ]; then
		# shellcheck disable=SC2086 # pkg-config flags are word lists
		gcc -O2 -g -Wall -Wextra -Wno-unused-parameter -std=gnu11 -Iinclude/uapi \
			-Iselftests/lib -Iselftests/kernel -I"$KSFT" $NLCF -o "$bin" "$src" $NLLD ||
			fail "cannot build $src"
	fi
done

# the RDMA test's KV transfer endpoint: the agent's kvxfer library + verbs
if pkg-config --exists libibverbs librdmacm; then
	bin=$TB/kt_kvx
	ksrcs=(selftests/kernel/rdma/kt_kvx.c agent/kvxfer.c agent/kvx_rdma.c)
	stale=0
	for f in "${ksrcs[@]}" agent/kvxfer.h agent/kvx_priv.h; do
		[ "$bin" -nt "$f" ] || stale=1
	done
	if [ $stale = 1 ]; then
		# shellcheck disable=SC2046 # pkg-config flags are word lists
		gcc -O2 -g -Wall -Wextra -Wno-unused-parameter -std=gnu11 -DKVX_HAVE_RDMA \
			-Iagent -Iinclude/uapi -o "$bin" "${ksrcs[@]}" \
			$(pkg-config --libs libibverbs librdmacm libxxhash libsodium) -lpthread ||
			fail "cannot build kt_kvx"
	fi
fi

# ---- initramfs ---------------------------------------------------------------
W=$(mktemp -d "${TMPDIR:-/tmp}/idn-ktest.XXXXXX")
# the console is written in $W and kept as $C/console.log(.txt) at exit:
# two runs at once (tier and bench) must not read each other's console
# (and pair_rdma.sh's two guests, by pid, when this script ends early)
ppids=""
trap 'for p in $ppids; do kill "$p" 2>/dev/null; done
cp -f "$W/console.log" "$W/console.log.txt" "$W"/pair-?.log.txt "$C/" 2>/dev/null || true
rm -rf "$W"' EXIT
# a signal ends the script through the EXIT trap (bash skips it otherwise)
trap 'exit 143' TERM INT HUP
R=$W/root
mkdir -p "$R"/{bin,sbin,usr/bin,usr/sbin,proc,sys,dev,tmp,run,etc,idn/mods,idn/bin}
cp "$BB" "$R/bin/busybox"
for a in $("$BB" --list); do [ "$a" = busybox ] || ln -sf busybox "$R/bin/$a"; done

add_elf() {	# FILE DEST: copy with its shared libraries
	mkdir -p "$R$(dirname "$2")"
	cp -L "$1" "$R$2"
	ldd "$1" 2>/dev/null | grep -oE '/[^ ]+' | while read -r lib; do
		[ -e "$R$lib" ] || { mkdir -p "$R$(dirname "$lib")"; cp -L "$lib" "$R$lib"; }
	done
}
for m in $KMODS; do cp "$C/root/modules/$(basename "$m")" "$R/idn/mods/"; done
cp "$MOD/idn.ko" "$R/idn/mods/"
for b in "$TB"/*; do [ -x "$b" ] && add_elf "$b" "/idn/bin/$(basename "$b")"; done
for b in ip tc; do
	p=$(command -v "$b" || true)
	[ -n "$p" ] && add_elf "$p" "/usr/sbin/$b"
done
# idnctl; idnd (test_activate.sh runs it embedded) and curl to talk to it;
# idn-agent (test_rdma.sh: two agents push KV blocks over RDMA)
for b in idnctl idnd idn-agent; do
	[ ! -x "$O/$b" ] || add_elf "$O/$b" "/idn/bin/$b"
done
p=$(command -v curl || true)
[ -n "$p" ] && add_elf "$p" /usr/bin/curl
# Soft-RoCE: modules (load order in /idn/rdma/order), the verbs provider and
# libgcc_s (dlopen()ed: ldd cannot see them), the rdma tool, ib_write_bw.
# Without them test_rdma.sh says SKIP and why.
if [ -x "$TB/kt_kvx" ] && [ -f "$C/rdma/rdma_rxe.ko" ]; then
	mkdir -p "$R/idn/rdma" "$R/etc/libibverbs.d"
	for m in $RMODS; do
		b=$(basename "$m")
		[ -f "$C/rdma/$b" ] && cp "$C/rdma/$b" "$R/idn/rdma/" && echo "${b%.ko}"
	done >"$R/idn/rdma/order"
	cp /etc/libibverbs.d/rxe.driver "$R/etc/libibverbs.d/" 2>/dev/null || true
	vd=$(pkg-config --variable=libdir libibverbs)/libibverbs
	for so in "$vd"/librxe-rdmav*.so /lib/x86_64-linux-gnu/libgcc_s.so.1; do
		[ -e "$so" ] && add_elf "$so" "$so"
	done
	p=$(command -v rdma || true)
	[ -n "$p" ] && add_elf "$p" /usr/sbin/rdma
	for b in ib_write_bw ib_write_lat; do
		p=$(command -v $b || true)
		[ -n "$p" ] && add_elf "$p" /usr/bin/$b
	done
fi
# pair_rdma.sh: the virtio-net modules (load order in /idn/vnet/order) and
# the KV key both guests' agents share (fresh each run)
if [ -d "$R/idn/rdma" ]; then
	mkdir -p "$R/idn/vnet"
	for m in $VMODS; do
		b=$(basename "$m")
		[ -f "$C/vnet/$b" ] && cp "$C/vnet/$b" "$R/idn/vnet/" && echo "${b%.ko}"
	done >"$R/idn/vnet/order"
	head -c 32 /dev/urandom >"$R/idn/pair.key" && chmod 600 "$R/idn/pair.key"
fi
if [ "$BENCH" = 1 ]; then
	cp "${IDN_KBENCH_SCRIPT:-tools/bench/kernel_guest.sh}" "$R/idn/guest.sh"
	for k in KB_N KB_ROUNDS KB_K RB_BYTES RB_SLICE RB_ROUNDS RB_QPS; do
		[ -z "${!k:-}" ] || echo "$k=${!k}"
	done >"$R/idn/benchenv"
else
	cp selftests/kernel/guest.sh "$R/idn/guest.sh"
fi
cp selftests/kernel/test_*.sh selftests/kernel/pair_*.sh "$R/idn/" 2>/dev/null || true
echo "${IDN_KTESTS:-}" >"$R/idn/filter"
echo "${IDN_KNARRATE:-0}" >"$R/idn/narrate"
cat >"$R/init" <<'EOS'
#!/bin/sh
export PATH=/idn/bin:/bin:/sbin:/usr/bin:/usr/sbin HOME=/ TERM=dumb
mount -t proc proc /proc; mount -t sysfs sysfs /sys; mount -t devtmpfs devtmpfs /dev
mount -t tmpfs tmpfs /tmp; mount -t tmpfs tmpfs /run; mount -t bpf bpf /sys/fs/bpf
/usr/sbin/ip link set lo up
# "idnpair=a|b" on the command line: one end of pair_rdma.sh
role=$(sed -n 's/.*idnpair=\([ab]\).*/\1/p' /proc/cmdline)
if [ -n "$role" ]; then
	cd /idn && sh /idn/pair_rdma.sh "$role" </dev/null
else
	cd /idn && sh /idn/guest.sh </dev/null
fi
echo "IDN_GUEST_EXIT=$?"
poweroff -f
EOS
chmod +x "$R/init"
(cd "$R" && find . -print0 | cpio --null -o -H newc --owner=0:0 --quiet) >"$W/initrd"

# ---- boot ----------------------------------------------------------------------
# KVM only where a short boot shows it works: some hosts have a /dev/kvm
# whose nested KVM dies on the guest's first instructions, and qemu then
# hangs instead of exiting. The probe boots the same kernel with no
# initrd (it panics at once, and -no-reboot ends qemu) and looks for the
# kernel's banner within IDN_KVM_PROBE_S seconds (default 20).
kvm_works() {
	local log=$W/kvm-probe.log
	timeout -k 2 "${IDN_KVM_PROBE_S:-20}" qemu-system-x86_64 -accel kvm -cpu max \
		-m 256M -nodefaults -no-user-config -nographic -serial stdio -no-reboot \
		-kernel "$C/vmlinux" -append "console=ttyS0 panic=-1 loglevel=4" \
		</dev/null >"$log" 2>&1
	grep -aq 'Linux version' "$log"
}
accel=${IDN_QEMU_ACCEL:-}
accel_why="IDN_QEMU_ACCEL"
if [ -z "$accel" ]; then
	accel=tcg
	accel_why="no writable /dev/kvm"
	if [ -w /dev/kvm ]; then
		t=$(date +%s.%N)
		if kvm_works; then
			accel=kvm
			accel_why="KVM probe booted"
		else
			accel_why="/dev/kvm present but a probe boot did not reach the kernel banner"
		fi
		accel_why="$accel_why in $(awk -v a="$t" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f s", b - a }')"
	fi
fi
echo "# qemu accel: $accel ($accel_why)" >&2
aargs=(-accel "$accel")
T1=$(date +%s.%N)
CON=$W/console.log
rc=0
timeout -k 5 "${IDN_QEMU_TIMEOUT:-420}" qemu-system-x86_64 "${aargs[@]}" -cpu max \
	-smp 2 -m 512M -nodefaults -no-user-config -nographic -serial stdio -no-reboot \
	-kernel "$C/vmlinux" -initrd "$W/initrd" \
	-append "console=ttyS0 quiet loglevel=4 panic=-1 oops=panic rdinit=/init" \
	</dev/null >"$CON" 2>&1 || rc=$?
T2=$(date +%s.%N)
tr -d '\r' <"$CON" >"$CON.txt"
[ "${V:-0}" = 1 ] && sed 's/^/# console: /' "$CON.txt"

if [ "$BENCH" = 1 ]; then
	st=$(grep -ao 'IDN_GUEST_EXIT=[0-9]*' "$CON.txt" | tail -1 | cut -d= -f2 || true)
	awk -v k="$KVER" -v a="$accel" -v t0="$T0" -v t1="$T1" -v t2="$T2" 'BEGIN {
		printf "# kernel bench: %s, %s, build %.1f s, boot+bench %.1f s\n", k, a, t1 - t0, t2 - t1 }' >&2
	grep -a '^# ' "$CON.txt" >&2 || true
	sed -n 's/^IDNBENCH //p' "$CON.txt"
	if [ "$st" != 0 ]; then
		grep -avE '^# |^IDNBENCH ' "$CON.txt" | tail -30 | sed 's/^/# console: /' >&2
		echo "kernel bench: guest failed (exit ${st:-none}, qemu rc $rc)" >&2
		exit 1
	fi
	exit 0
fi

# ---- pair_rdma.sh: two more guests, one link between them ------------------
# Both boot the same kernel and initramfs at once, one vCPU each; A's NIC
# sends to B's unix socket and B's to A's (a QEMU dgram netdev: no TCP
# ports on the host, the sockets go with $W).
PT=$W/pair.tap
: >"$PT"
pairrun=0
# IDN_KTESTS is a pattern, as guest.sh matches it
[[ /idn/pair_rdma.sh != *${IDN_KTESTS:-}* ]] || pairrun=1
T3=$T2
if [ $pairrun = 1 ]; then
	why=""
	[ -s "$R/idn/rdma/order" ] || why="no rdma_rxe modules or kt_kvx (libibverbs-dev/librdmacm-dev: tools/deps.sh)"
	[ -n "$why" ] || [ -s "$R/idn/vnet/order" ] || why="no virtio-net modules in $C/vnet"
	[ -n "$why" ] || [ -x "$R/idn/bin/idn-agent" ] || why="no $O/idn-agent (make)"
	if [ -n "$why" ]; then
		echo "ok 0 - pair: KV transfer between two guests # SKIP $why" >"$PT"
		pairrun=0
	fi
fi
if [ $pairrun = 1 ]; then
	pq=(qemu-system-x86_64 "${aargs[@]}" -cpu max -smp 1 -m 512M -nodefaults
		-no-user-config -nographic -serial stdio -no-reboot -kernel "$C/vmlinux"
		-initrd "$W/initrd")
	for r in a b; do
		o=b mac=52:54:00:78:00:01
		[ $r = b ] && o=a mac=52:54:00:78:00:02
		timeout -k 5 "${IDN_QEMU_PAIR_TIMEOUT:-300}" "${pq[@]}" \
			-netdev "dgram,id=n0,local.type=unix,local.path=$W/pair-$r.sock,remote.type=unix,remote.path=$W/pair-$o.sock" \
			-device "virtio-net-pci,netdev=n0,mac=$mac" \
			-append "console=ttyS0 quiet loglevel=4 panic=-1 oops=panic rdinit=/init idnpair=$r" \
			</dev/null >"$W/pair-$r.log" 2>&1 &
		ppids="$ppids $!"
	done
	prc=()
	for p in $ppids; do
		r=0
		wait "$p" || r=$?
		prc+=("$r")
	done
	ppids=""
	T3=$(date +%s.%N)
	i=0
	for r in a b; do
		tr -d '\r' <"$W/pair-$r.log" >"$W/pair-$r.log.txt"
		[ "${V:-0}" = 1 ] && sed "s/^/# console $r: /" "$W/pair-$r.log.txt"
		pst=$(grep -ao 'IDN_GUEST_EXIT=[0-9]*' "$W/pair-$r.log.txt" | tail -1 | cut -d= -f2 || true)
		if [ -z "$pst" ]; then
			echo "not ok 0 - pair $r: guest finished (qemu rc ${prc[$i]}: timeout, panic or early failure)"
		fi
		if [ "$pst" != 0 ]; then
			grep -avE '^(not )?ok [0-9]+|^# ' "$W/pair-$r.log.txt" | tail -30 |
				sed "s/^/# console $r: /"
			echo "not ok 0 - pair $r: guest exit ${pst:-none}" >>"$W/pair.st"
		fi
		i=$((i + 1))
	done >>"$PT"
fi

# renumber the guests' TAP into one stream: the first guest's, then the pair's
pcons=()
[ $pairrun = 0 ] || pcons=("$W/pair-a.log.txt" "$W/pair-b.log.txt")
awk '/^(not )?ok [0-9]+/ { n++; ok = ($1 == "ok"); sub(/^(not )?ok [0-9]+/, "");
		print (ok ? "ok " : "not ok ") n $0; next }
	/^# / { print } END { print "1.." n + 0 > "/dev/stderr" }' "$CON.txt" \
	"${pcons[@]}" "$PT" 2>"$W/plan"
n=$(sed 's/^1\.\.//' "$W/plan")
st=$(grep -ao 'IDN_GUEST_EXIT=[0-9]*' "$CON.txt" | tail -1 | cut -d= -f2 || true)
awk -v k="$KVER" -v a="$accel" -v t0="$T0" -v t1="$T1" -v t2="$T2" 'BEGIN {
	printf "# kernel tier: %s, %s, build %.1f s, boot+test %.1f s\n", k, a, t1 - t0, t2 - t1 }'
[ $pairrun = 0 ] || awk -v a="$T2" -v b="$T3" 'BEGIN {
	printf "# kernel tier: pair_rdma.sh, two guests at once, boot+test %.1f s\n", b - a }'
if [ -z "$st" ]; then
	n=$((n + 1))
	echo "not ok $n - guest finished (qemu rc $rc: timeout, panic or early failure)"
	grep -vE '^(not )?ok [0-9]+|^# ' "$CON.txt" | tail -40 | sed 's/^/# console: /'
	echo "1..$n"
	exit 1
fi
echo "1..$n"
[ ! -s "$W/pair.st" ] || exit 1
[ "$st" = 0 ] || { grep -vE '^(not )?ok [0-9]+|^# ' "$CON.txt" | tail -20 | sed 's/^/# console: /'; exit 1; }
exit 0
