#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# run.sh - `make bench`: every IDN benchmark, one "name value unit" line
# per figure on stdout (progress on stderr).
#
#   O=build tools/bench/run.sh [xdp] [rps] [placement]   (default: all)
#
#   xdp   per-packet cost of the XDP steering paths in loop mode against
#         an XDP_TX floor (build/tools/idn_bench, see docs/benchmarks.md),
#         in a private network namespace with a veth, a route and
#         permanent neighbours toward the node locators
#   rps   requests/s through the namespace router, plain forwarding vs
#         the IDN XDP dataplane, same run (tools/bench/router_rps.sh)
#   placement  the controller's placement solver (build/tools/idn_placement):
#         gap to CBC's proven optimum (20x8, 50x20), gap to GLPK's LP bound
#         (200x100), 2000x5000 seconds, churn after a 10 % demand shift;
#         CBC/GLPK bounded from outside (PLACEMENT_TIMEOUT, 900 s)
#
# Knobs (environment): BENCH_REPEAT (2000000), BENCH_ROUNDS (5),
# BENCH_CPU (last allowed CPU), BENCH_VERBOSE=1, RPS_SECONDS (5).
# Needs root. Exit 0, 1 when a benchmark failed, 2 on bad usage.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
O=${O:-build}
case "$O" in /*) ;; *) O="$ROOT/$O" ;; esac

want_xdp=0 want_rps=0 want_placement=0
[ $# -eq 0 ] && set -- xdp rps placement
for a in "$@"; do
	case "$a" in
	xdp) want_xdp=1 ;;
	rps) want_rps=1 ;;
	placement) want_placement=1 ;;
	*) echo "usage: run.sh [xdp] [rps] [placement]" >&2; exit 2 ;;
	esac
done

if [ "$(id -u)" -ne 0 ]; then
	echo "run.sh: benchmarks need root" >&2
	exit 1
fi

# Runs inside `unshare -n`: a namespace of our own, gone when we exit.
xdp_in_netns() {
	local dev=bidn0 peer=bidn1 i
	ip link set lo up
	ip link add "$dev" type veth peer name "$peer"
	ip link set "$peer" up
	ip link set "$dev" up
	ip addr add 10.99.0.1/24 dev "$dev"
	sysctl -qw net.ipv4.ip_forward=1
	# node locators 10.99.0.10 .. 10.99.0.41 (idn_bench: LOC4_NET, N_NODES)
	for i in $(seq 0 31); do
		ip neigh replace "10.99.0.$((10 + i))" \
			lladdr "$(printf '02:00:00:99:00:%02x' "$i")" dev "$dev" nud permanent
	done
	local args=(-i "$dev" -n "${BENCH_REPEAT:-2000000}" -r "${BENCH_ROUNDS:-5}")
	[ -n "${BENCH_CPU:-}" ] && args+=(-c "$BENCH_CPU")
	[ "${BENCH_VERBOSE:-0}" = 1 ] && args+=(-v)
	"$O/tools/idn_bench" "${args[@]}"
}

rc=0
if [ $want_xdp = 1 ]; then
	if [ ! -x "$O/tools/idn_bench" ]; then
		echo "run.sh: $O/tools/idn_bench missing (run make first)" >&2
		rc=1
	else
		echo "# xdp: loop-mode per-packet cost vs XDP_TX floor" >&2
		export O BENCH_REPEAT BENCH_ROUNDS BENCH_CPU BENCH_VERBOSE
		export -f xdp_in_netns
		unshare -n bash -euo pipefail -c xdp_in_netns || {
			echo "run.sh: xdp benchmark FAILED" >&2
			rc=1
		}
	fi
fi
if [ $want_rps = 1 ]; then
	echo "# rps: requests/s through the namespace router" >&2
	st=0
	O="$O" "$HERE/router_rps.sh" || st=$?
	if [ $st -eq 4 ]; then
		echo "run.sh: router requests/s benchmark skipped" >&2
	elif [ $st -ne 0 ]; then
		echo "run.sh: router requests/s benchmark FAILED" >&2
		rc=1
	fi
fi
if [ $want_placement = 1 ]; then
	echo "# placement: heuristic vs CBC optimum / GLPK bound, scale, churn" >&2
	if [ ! -x "$O/tools/idn_placement" ]; then
		echo "run.sh: $O/tools/idn_placement missing (run make first)" >&2
		rc=1
	else
		timeout -k 10 "${PLACEMENT_TIMEOUT:-900}" "$O/tools/idn_placement" \
			-n "${PLACEMENT_INSTANCES:-3}" -t "${PLACEMENT_LIMIT:-60}" || {
			echo "run.sh: placement benchmark FAILED" >&2
			rc=1
		}
	fi
fi
exit $rc
