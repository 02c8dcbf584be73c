#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# router_rps.sh - HTTP requests/s through the namespace router, with plain
# kernel forwarding and with the IDN XDP dataplane, in the same run:
#
#   client (c0 10.10.1.2) -- (r0 10.10.1.1) router (r1 10.10.2.1) -- (n0 10.10.2.2) node
#
#   plain  wrk -> http://10.10.2.2/   routed by the router's kernel, no XDP
#   idn    wrk -> http://10.200.0.1/  (the VIP): idn_xdp on r0 encapsulates
#          to the node's locator (IPIP), the node's TC program (idn_decap)
#          decapsulates, the server answers from the VIP straight back
#
# Both use the same server (build/tools/idn_httpd), the same wrk command
# and the same test bed (client TX checksum offload off and XDP_PASS on
# n0 in both, since the dataplane needs them). Prints router_rps_plain,
# router_rps_idn (req/s) and router_rps_ratio (idn / plain). The idn run
# only counts when the dataplane's CONN counter shows it carried the
# requests. Exit 0, 1 on failure, 4 when something it needs is missing.
#
# Each round measures plain and idn back to back (order alternating); the figures are medians
# over rounds, the ratio the median of the rounds' idn/plain ratios (a
# pair shares the machine's load of the moment: other jobs on a shared
# machine move req/s a lot, see docs/benchmarks.md).
# Knobs: RPS_SECONDS (2) per measurement, RPS_ROUNDS (5) plain/idn pairs,
# RPS_CONNS (16) wrk connections.
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=../../selftests/net/lib.sh
source "$HERE/../../selftests/net/lib.sh"

SECS=${RPS_SECONDS:-2}
ROUNDS=${RPS_ROUNDS:-5}
CONNS=${RPS_CONNS:-16}
VIP=10.200.0.1

say() { echo "# rps: $*" >&2; }
missing() { say "SKIP: $*"; exit $KSFT_SKIP; }
die() { say "FAILED: $*"; exit $KSFT_FAIL; }

[ "$(id -u)" -eq 0 ] || missing "needs root"
for c in wrk curl tc bpftool ethtool python3; do
	command -v $c >/dev/null 2>&1 || missing "needs $c"
done
for f in "$BUILD/tools/idn_httpd" "$BUILD/tools/idn_rps" "$BUILD/bpf/idn_steer.bpf.o" \
	 "$BUILD/bpf/idn_node.bpf.o" "$BUILD/bpf/idn_pass.bpf.o"; do
	[ -e "$f" ] || missing "$f not built"
done

# ---- test bed ------------------------------------------------------------
setup_ns CLI RTR NODE || die "namespaces"
veth_pair "$CLI" c0 "$RTR" r0 || die "veth client-router"
veth_pair "$RTR" r1 "$NODE" n0 mtu 1600 || die "veth router-node"
in_ns "$CLI" ip addr add 10.10.1.2/24 dev c0
in_ns "$CLI" ip route add default via 10.10.1.1
in_ns "$RTR" ip addr add 10.10.1.1/24 dev r0
in_ns "$RTR" ip addr add 10.10.2.1/24 dev r1
in_ns "$RTR" sysctl -qw net.ipv4.ip_forward=1
in_ns "$NODE" ip addr add 10.10.2.2/24 dev n0
in_ns "$NODE" ip addr add $VIP/32 dev lo
in_ns "$NODE" ip route add default via 10.10.2.1
in_ns "$NODE" sysctl -qw net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.n0.rp_filter=0
# XDP redirect/TX loses partial checksums; a veth takes redirected frames
# only when its peer runs XDP: both set for plain and idn alike.
in_ns "$CLI" ethtool -K c0 tx off >/dev/null
ip -n "$NODE" link set dev n0 xdpdrv obj "$BUILD/bpf/idn_pass.bpf.o" sec xdp ||
	die "XDP_PASS on n0"
in_ns "$NODE" tc qdisc add dev n0 clsact || die "clsact on n0"
in_ns "$NODE" tc filter add dev n0 ingress bpf direct-action \
	obj "$BUILD/bpf/idn_node.bpf.o" sec tc || die "idn_decap on n0"
# bpf_fib_lookup needs the neighbour before the first packet
in_ns "$RTR" ip neigh replace 10.10.2.2 lladdr "$(mac_of "$NODE" n0)" dev r1 nud permanent

make_tmpdir || die "tmpdir"
make_bpffs "$TMPD/bpffs" || die "bpffs"
# Pin client and server apart: otherwise the run flips between "same CPU"
# and "different CPUs" and req/s with it. Packet processing on veth runs
# on the sender's CPU, so the router's work follows them.
CPUS=($(taskset -pc $$ | sed 's/.*: //' | tr ',' '\n' |
	awk -F- '{ if (NF == 2) for (i = $1; i <= $2; i++) print i; else print $1 }'))
CPU_CLI=${CPUS[0]}
CPU_SRV=${CPUS[${#CPUS[@]} - 1]}
bg_ns "$NODE" "$TMPD/httpd.log" taskset -c "$CPU_SRV" "$BUILD/tools/idn_httpd" node1 80
wait_listen "$NODE" 80 5 || die "server did not start"

# ---- measurements ----------------------------------------------------------
# wrk_rps URL: requests/s of one wrk run (0 when it failed or saw errors)
wrk_rps() {
	local out rps
	out=$(in_ns "$CLI" taskset -c "$CPU_CLI" wrk -t1 -c"$CONNS" -d"${SECS}s" --latency "$1" 2>&1)
	if [ "${RPS_DEBUG:-0}" = 1 ] || printf '%s\n' "$out" | grep -q 'Non-2xx\|Socket errors'; then
		printf '%s\n' "$out" | sed 's/^/# rps:   /' >&2
	fi
	rps=$(printf '%s\n' "$out" | awk '/^Requests\/sec:/ {print $2}')
	echo "${rps:-0}"
}

# conn_count: CONN verdicts counted by the dataplane so far (all CPUs)
conn_count() {
	bpftool -j map lookup pinned "$TMPD/bpffs/idn_stats" key 1 0 0 0 2>/dev/null |
		python3 -c '
import json, sys
d = json.load(sys.stdin)
vals = d.get("values", [])
tot = 0
for v in vals:
    x = v.get("value")
    if isinstance(x, dict):
        tot += int(x.get("packets", 0))
    elif isinstance(x, list):   # raw bytes: first 8 are packets, little endian
        tot += int.from_bytes(bytes(int(b, 16) for b in x[:8]), "little")
print(tot)' 2>/dev/null || echo 0
}

attach_idn() {
	in_ns "$RTR" "$BUILD/tools/idn_rps" -o "$BUILD/bpf/idn_steer.bpf.o" -d r0 \
		-p "$TMPD/bpffs" -s 10.10.2.1 -V $VIP:80 -l 10.10.2.2
}
detach_idn() { in_ns "$RTR" ip link set dev r0 xdp off; }

plain=() idn=() ratio=()
measure_plain() {
	detach_idn 2>/dev/null
	in_ns "$CLI" curl -s -m 3 http://10.10.2.2/ | grep -q 'node node1' ||
		die "plain path: no answer from the node"
	p=$(wrk_rps http://10.10.2.2/)
}
measure_idn() {
	local c0 c1
	attach_idn || die "cannot attach the dataplane"
	in_ns "$CLI" curl -s -m 3 http://$VIP/ | grep -q 'node node1' ||
		die "idn path: no answer through the VIP"
	c0=$(conn_count)
	i=$(wrk_rps http://$VIP/)
	c1=$(conn_count)
	[ "$c1" -gt "$c0" ] || die "the dataplane counted no established packets during the idn run"
	steered=$((c1 - c0))
}
for ((r = 1; r <= ROUNDS; r++)); do
	# alternate the order so that a drift in load favours neither mode
	if ((r % 2)); then
		measure_plain; measure_idn
	else
		measure_idn; measure_plain
	fi
	say "round $r: plain $p req/s, idn $i req/s ($steered packets steered by the conn table)"
	plain+=("$p") idn+=("$i")
	ratio+=("$(awk -v p="$p" -v i="$i" 'BEGIN { printf "%.4f", (p > 0) ? i / p : 0 }')")
done
detach_idn 2>/dev/null

median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
P=$(median "${plain[@]}")
I=$(median "${idn[@]}")
awk -v p="$P" 'BEGIN { exit !(p > 0) }' || die "plain run measured nothing"
awk -v p="$I" 'BEGIN { exit !(p > 0) }' || die "idn run measured nothing"
echo "router_rps_plain $P req/s"
echo "router_rps_idn $I req/s"
R=$(median "${ratio[@]}")
say "idn/plain per round: ${ratio[*]}"
echo "router_rps_ratio $(awk -v r="$R" 'BEGIN { printf "%.3f", r }') x"
exit 0	# lib.sh's EXIT trap removes the namespaces, server and bpffs
