#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# lib.sh - helpers for IDN's namespace tests (selftests/net/test_*.sh) and
# tools/demo.sh, in the style of the kernel's tools/testing/selftests/net/lib.sh:
#
#   setup_ns VAR...         make namespaces named VAR-<random>, lo up; the
#                           name is stored in $VAR
#   veth_pair NS1 DEV1 NS2 DEV2 [mtu N]
#   in_ns NS CMD...         run CMD in NS's network namespace only
#                           (nsenter --net: bpffs pins, cgroups and /sys stay
#                           visible, unlike "ip netns exec")
#   bg_ns NS LOG CMD...     same, in the background; pid kept for cleanup
#   make_tmpdir / make_bpffs   private scratch dir / private bpffs instance
#   mk_ca DIR / mk_cert DIR NAME ROLE CN [SAN...]   test PKI for mutual TLS
#                           (docs/security.md); mk_role_certs DIR: one per role
#   tap_ok / tap_fail / tap_skip / check / tap_done      TAP output
#   require_root / require_cmd / probe_*                 skip code 4 + reason
#   debug_shell             DEBUG_TESTENV=1: open a shell in the test bed
#
# Cleanup runs from an EXIT trap and removes only what this script made:
# processes by pid, namespaces by name, mounts and cgroups by path.
# Never killall/pkill: other tests may be running on the same machine.

KSFT_PASS=0
KSFT_FAIL=1
KSFT_SKIP=4

IDN_ROOT=${IDN_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
O=${O:-build}
case $O in /*) BUILD=$O ;; *) BUILD=$IDN_ROOT/$O ;; esac
IDNCTL=${IDNCTL:-$BUILD/idnctl}
IDNSTAMP=${IDNSTAMP:-$BUILD/idn-stamp}
# iproute2 keeps its object pins (ip link set ... xdp obj: "xdp/globals")
# in the first bpffs it finds in /proc/mounts; another test's chroot or
# nspawn root with a bpffs of its own (selftests/pkg) may come first, and
# vanish under it. Name the host's own.
export TC_BPF_MNT=${TC_BPF_MNT:-/sys/fs/bpf}

_ns_list=()
_pid_list=()
_mount_list=()
_cgroup_list=()
_tmp_list=()
_cleanup_hooks=()
_tap_n=0
_tap_fail=0
_tap_skip=0
_tap_pass=0

# ---------------------------------------------------------------- output

log()  { printf '%s\n' "$*" | sed 's/^/# /'; }
# log a multi-line command output as TAP comments
log_cmd() { "$@" 2>&1 | sed 's/^/#   /'; }

tap_ok()   { _tap_n=$((_tap_n + 1)); _tap_pass=$((_tap_pass + 1)); echo "ok $_tap_n - $1"; }
tap_fail() {
	_tap_n=$((_tap_n + 1)); _tap_fail=$((_tap_fail + 1))
	echo "not ok $_tap_n - $1"
	[ $# -gt 1 ] && log "  ${*:2}"
	return 0
}
tap_skip() { _tap_n=$((_tap_n + 1)); _tap_skip=$((_tap_skip + 1)); echo "ok $_tap_n - $1 # SKIP ${2:-}"; }

# tap_result NAME RC [why]: ok when RC is 0
tap_result() {
	if [ "$2" -eq 0 ]; then tap_ok "$1"; else tap_fail "$1" "${@:3}"; fi
}

# check NAME CMD...: run CMD, ok when it exits 0; its output as comments on failure
check() {
	local name=$1 out rc
	shift
	out=$("$@" 2>&1)
	rc=$?
	if [ $rc -eq 0 ]; then
		tap_ok "$name"
	else
		tap_fail "$name" "exit $rc: $*"
		[ -n "$out" ] && printf '%s\n' "$out" | tail -n 20 | sed 's/^/#   /'
	fi
	return $rc
}

# tap_done: closing line and exit status (0 pass, 1 failures, 4 all skipped)
tap_done() {
	echo "1..$_tap_n"
	log "$_tap_pass passed, $_tap_fail failed, $_tap_skip skipped"
	if [ $_tap_fail -gt 0 ]; then exit $KSFT_FAIL; fi
	if [ $_tap_pass -eq 0 ] && [ $_tap_skip -gt 0 ]; then exit $KSFT_SKIP; fi
	exit $KSFT_PASS
}

# skip_all REASON: nothing can run here
skip_all() {
	echo "1..0 # SKIP $*"
	exit $KSFT_SKIP
}

# ---------------------------------------------------------------- probes

require_root() { [ "$(id -u)" -eq 0 ] || skip_all "needs root"; }

require_cmd() {
	local c
	for c in "$@"; do
		command -v "$c" >/dev/null 2>&1 || skip_all "needs $c"
	done
}

require_file() {
	local f
	for f in "$@"; do
		[ -e "$f" ] || skip_all "missing $f (run make)"
	done
}

# probe_netns: can we create a network namespace and a veth pair in it?
probe_netns() {
	local n="idnprobe-$$-$RANDOM" ok=1
	ip netns add "$n" 2>/dev/null || return 1
	ip -n "$n" link add p0 type veth peer name p1 2>/dev/null && ok=0
	ip netns del "$n" 2>/dev/null
	return $ok
}

# probe_bpffs: can we mount a private bpffs?
probe_bpffs() {
	local d rc=1
	d=$(mktemp -d /tmp/idn-probe.XXXXXX) || return 1
	mount -t bpf bpf "$d" 2>/dev/null && { rc=0; umount "$d"; }
	rmdir "$d"
	return $rc
}

# probe_cgroup2: a cgroup2 mount we can create groups in. Where none is
# mounted (a minimal Debian root, some containers), mount the hierarchy at
# a temporary directory, unmounted at cleanup. Call it in the test's own
# shell (not in a subshell).
probe_cgroup2() {
	local root d
	root=$(findmnt -n -t cgroup2 -o TARGET 2>/dev/null | head -n 1)
	if [ -z "$root" ]; then
		d=$(mktemp -d /tmp/idn-cg2.XXXXXX) || return 1
		if ! mount -t cgroup2 none "$d" 2>/dev/null; then
			rmdir "$d"
			return 1
		fi
		_mount_list+=("$d")
		_tmp_list+=("$d")
		root=$d
	fi
	[ -w "$root" ]
}

# ---------------------------------------------------------------- cleanup

# on_cleanup CMD...: run CMD (as one string, eval'ed) at cleanup, last first
on_cleanup() { _cleanup_hooks+=("$*"); }

cleanup() {
	local i p ns m c
	set +e
	for ((i = ${#_cleanup_hooks[@]} - 1; i >= 0; i--)); do
		eval "${_cleanup_hooks[$i]}" >/dev/null 2>&1
	done
	for p in "${_pid_list[@]}"; do
		kill "$p" 2>/dev/null
	done
	for p in "${_pid_list[@]}"; do
		# give each a moment, then insist (still by pid only)
		for i in 1 2 3 4 5 6 7 8 9 10; do
			kill -0 "$p" 2>/dev/null || break
			sleep 0.1
		done
		kill -9 "$p" 2>/dev/null
		wait "$p" 2>/dev/null
	done
	for ns in "${_ns_list[@]}"; do
		ip netns pids "$ns" 2>/dev/null | while read -r p; do kill -9 "$p" 2>/dev/null; done
		ip netns del "$ns" 2>/dev/null
	done
	for ((i = ${#_mount_list[@]} - 1; i >= 0; i--)); do
		umount "${_mount_list[$i]}" 2>/dev/null || umount -l "${_mount_list[$i]}" 2>/dev/null
	done
	for ((i = ${#_cgroup_list[@]} - 1; i >= 0; i--)); do
		rmdir "${_cgroup_list[$i]}" 2>/dev/null
	done
	for m in "${_tmp_list[@]}"; do
		rm -rf --one-file-system "$m"
	done
	_ns_list=() _pid_list=() _mount_list=() _cgroup_list=() _tmp_list=() _cleanup_hooks=()
}

# install the trap; the test's own EXIT work goes through on_cleanup
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---------------------------------------------------------------- namespaces

# setup_ns VAR...: one namespace per VAR, named "VAR-<suffix>"
setup_ns() {
	local var name
	for var in "$@"; do
		name="$var-$(mktemp -u XXXXXX)"
		ip netns add "$name" || return 1
		_ns_list+=("$name")
		ip -n "$name" link set lo up
		in_ns "$name" sysctl -qw net.ipv6.conf.all.accept_dad=0 \
			net.ipv6.conf.default.accept_dad=0 >/dev/null
		eval "$var=$name"
	done
}

in_ns() {
	local ns=$1
	shift
	nsenter --net="/run/netns/$ns" "$@"
}

# bg_ns NS LOGFILE CMD...: start CMD in NS in the background; sets BG_PID
bg_ns() {
	local ns=$1 logf=$2
	shift 2
	nsenter --net="/run/netns/$ns" "$@" >"$logf" 2>&1 &
	BG_PID=$!
	_pid_list+=("$BG_PID")
}

# wait_for DEADLINE_S 'CODE': eval CODE every 0.1 s until it succeeds (a
# last try at the deadline); its status
wait_for() {
	local end=$((SECONDS + $1))
	while [ $SECONDS -lt $end ]; do eval "$2" && return 0; sleep 0.1; done
	eval "$2"
}

# start_etcd NS URL [ETCD_ARG...]: a one-member etcd of the test's own in
# NS, client URL (http[s]://127.0.0.1:PORT), peer port PORT+3, data in
# $TMPD/etcd, log $TMPD/etcd.log, fast elections; ETCD_PID. Returns 0
# once /health answers (curl options for that in the array ETCD_CURL, e.g.
# TLS), 1 after 10 s.
start_etcd() {
	local ns=$1 url=$2 pp
	shift 2
	pp=$(( ${url##*:} + 3 ))
	bg_ns "$ns" "$TMPD/etcd.log" etcd --name t --data-dir "$TMPD/etcd" \
		--listen-client-urls "$url" --advertise-client-urls "$url" \
		--listen-peer-urls "http://127.0.0.1:$pp" \
		--initial-advertise-peer-urls "http://127.0.0.1:$pp" \
		--initial-cluster "t=http://127.0.0.1:$pp" \
		--heartbeat-interval 10 --election-timeout 100 "$@"
	ETCD_PID=$BG_PID
	for _ in $(seq 100); do
		in_ns "$ns" curl -s -m 1 "${ETCD_CURL[@]}" "$url/health" | grep -q true && return 0
		sleep 0.1
	done
	return 1
}

# bg_pid PID: have cleanup kill PID too
bg_pid() { _pid_list+=("$1"); }

# veth_pair NS1 DEV1 NS2 DEV2 [mtu N]: both ends up
veth_pair() {
	local ns1=$1 d1=$2 ns2=$3 d2=$4 mtu=
	[ "${5:-}" = mtu ] && mtu=$6
	ip link add "$d1" netns "$ns1" type veth peer name "$d2" netns "$ns2" || return 1
	if [ -n "$mtu" ]; then
		ip -n "$ns1" link set "$d1" mtu "$mtu"
		ip -n "$ns2" link set "$d2" mtu "$mtu"
	fi
	ip -n "$ns1" link set "$d1" up
	ip -n "$ns2" link set "$d2" up
}

# mac_of NS DEV
mac_of() { ip -n "$1" -br link show dev "$2" | awk '{print $3}'; }

# wait_listen NS PORT [TIMEOUT_S]: a TCP listener on PORT in NS
wait_listen() {
	local ns=$1 port=$2 t=${3:-10} i
	for ((i = 0; i < t * 10; i++)); do
		in_ns "$ns" ss -Hltn "sport = :$port" 2>/dev/null | grep -q . && return 0
		sleep 0.1
	done
	return 1
}

# ---------------------------------------------------------------- scratch

make_tmpdir() {
	TMPD=$(mktemp -d /tmp/idn-test.XXXXXX) || return 1
	_tmp_list+=("$TMPD")
}

# make_bpffs DIR: a private bpffs instance (pins invisible to other tests)
make_bpffs() {
	mkdir -p "$1" && mount -t bpf bpf "$1" || return 1
	_mount_list+=("$1")
}

# cgroup_path NAME: a cgroup under the cgroup2 mount, removed at cleanup
cgroup_make() {
	local root
	root=$(findmnt -n -t cgroup2 -o TARGET | head -n 1)
	CGROUP="$root/$1"
	mkdir -p "$CGROUP" || return 1
	_cgroup_list+=("$CGROUP")
}

# ---------------------------------------------------------------- TLS

# mk_ca DIR: a test CA (DIR/ca.pem, DIR/ca.key; EC P-256, 2 days) with the
# openssl CLI. DIR is the caller's scratch dir (removed with it).
mk_ca() {
	mkdir -p "$1" &&
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
		-keyout "$1/ca.key" -out "$1/ca.pem" -subj "/O=IDN test/CN=IDN test CA" \
		-days 2 -addext basicConstraints=critical,CA:TRUE \
		-addext keyUsage=critical,keyCertSign,cRLSign >/dev/null 2>&1
}

# mk_cert DIR NAME ROLE CN [SAN...]: DIR/NAME.pem + DIR/NAME.key signed by
# DIR's CA. Subject OU=ROLE (admin, controller, node, router, read-only:
# the role idnd and the agent grant), CN=CN (a node: node-ID). SANs:
# IP:127.0.0.1 and DNS:localhost, then each SAN given (IP:10.0.0.1,
# DNS:name). Usable as client and server certificate. IDN_CERT_DAYS=-1:
# already expired; IDN_CERT_CA=OTHERDIR: signed by another CA.
mk_cert() {
	local dir=$1 name=$2 role=$3 cn=$4 ca=${IDN_CERT_CA:-$1} san="IP:127.0.0.1,DNS:localhost" s
	shift 4
	for s in "$@"; do san+=",$s"; done
	openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
		-keyout "$dir/$name.key" -out "$dir/$name.csr" -subj "/OU=$role/CN=$cn" \
		>/dev/null 2>&1 &&
	printf '%s\n' "subjectAltName=$san" "extendedKeyUsage=serverAuth,clientAuth" \
		"keyUsage=critical,digitalSignature" "basicConstraints=CA:FALSE" >"$dir/$name.ext" &&
	openssl x509 -req -in "$dir/$name.csr" -CA "$ca/ca.pem" -CAkey "$ca/ca.key" \
		-CAcreateserial -days "${IDN_CERT_DAYS:-2}" -extfile "$dir/$name.ext" \
		-out "$dir/$name.pem" >/dev/null 2>&1 &&
	rm -f "$dir/$name.csr" "$dir/$name.ext"
}

# mk_role_certs DIR [SAN...]: a CA and one certificate per role in DIR:
# admin (CN admin), idnd (OU controller, CN idnd), router, reader
# (read-only), node-1 .. node-4 (OU node); SANs as mk_cert's
mk_role_certs() {
	local dir=$1 i
	shift
	mk_ca "$dir" &&
	mk_cert "$dir" admin admin admin "$@" &&
	mk_cert "$dir" idnd controller idnd "$@" &&
	mk_cert "$dir" router router router "$@" &&
	mk_cert "$dir" reader read-only reader "$@" || return 1
	for i in 1 2 3 4; do
		mk_cert "$dir" "node-$i" node "node-$i" "$@" || return 1
	done
}

# tls_args DIR NAME: the --ca/--cert/--key arguments of NAME's certificate
tls_args() { echo "--ca $1/ca.pem --cert $1/$2.pem --key $1/$2.key"; }

# DEBUG_TESTENV=1: open a shell inside the test bed (namespaces listed)
debug_shell() {
	[ "${DEBUG_TESTENV:-0}" = 1 ] || return 0
	echo "# DEBUG_TESTENV: namespaces: ${_ns_list[*]}" >&2
	echo "# use: nsenter --net=/run/netns/NAME bash ; exit the shell to continue" >&2
	PS1='idn-testenv# ' bash --norc -i </dev/tty >/dev/tty 2>&1 || true
}
