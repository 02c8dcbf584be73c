#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# conn_state.sh - live connections when the router loses or refuses
# per-connection state, measured from the client's side.
#
#   client ns -- router ns (idn_xdp on r0, the VIP) -- 3 node ns (decap +
#   idn_stamp with their node id, httpd)
#
# Traffic in each part (live_conns.sh): wrk, 16 keep-alive connections,
# and 4 paced downloads, all to the VIP.
#   1. flush: the client's node X drains, so a new request moves the
#      client's affinity to Y (the stateless choice of X's connections is
#      now wrong); then `idnctl dp flush conns` every FLUSH_MS (250) ms,
#      FLUSH_N (40) times, mid-transfer. Only the TS cookie keeps X's
#      connections on X.
#   2. flood: FLOOD_N (1,000,000) spoofed TCP segments at the VIP from
#      random sources and ports, half SYNs, half mid-flow (ACKs, some with
#      data, half with a timestamp option echoing a random TSecr), sent by
#      tools/bench/idn_flood (AF_PACKET, sendmmsg) in the client namespace.
# Prints (one "name value unit" line each):
#   conn_flush_live_conns_broken   wrk socket errors + non-2xx answers +
#                                  downloads not complete, part 1
#   flood_live_conns_broken        the same, part 2
# and, on stderr, the router's counters (ts-cookie, no-state,
# flood-guard) and the flood's rate. Exit 0; 1 on failure; 4 when
# something it needs is missing.
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=../../selftests/net/lib.sh
source "$HERE/../../selftests/net/lib.sh"
# shellcheck source=../../selftests/net/topo.sh
source "$HERE/../../selftests/net/topo.sh"
# shellcheck source=live_conns.sh
source "$HERE/live_conns.sh"

FLUSH_N=${FLUSH_N:-40}
FLUSH_MS=${FLUSH_MS:-250}
FLOOD_N=${FLOOD_N:-1000000}
FLOOD=$BUILD/tools/idn_flood

say() { echo "# conn_state: $*" >&2; }
missing() { say "SKIP: $*"; exit $KSFT_SKIP; }
die() { say "FAILED: $*"; exit $KSFT_FAIL; }

[ "$(id -u)" -eq 0 ] || missing "needs root"
for c in wrk curl python3 ethtool nsenter jq; do
	command -v $c >/dev/null 2>&1 || missing "needs $c"
done
for f in "$IDNCTL" "$BUILD/bpf/idn_node.bpf.o" "$BUILD/bpf/idn_pass.bpf.o" "$FLOOD"; do
	[ -e "$f" ] || missing "$f not built"
done

topo_setup 3 || die "test bed"
topo_dataplane || die "dp attach"
on_cleanup topo_dataplane_detach
topo_nodes || die "nodes"
ctl vip add $TOPO_VIP4 port 80 proto tcp cap 1001/0 tier 1 >/dev/null || die "vip"
ctl plan add cap 1001/0 tier any policy any cand node 1 exec-us 100 \
	cand node 2 exec-us 100 cand node 3 exec-us 100 >/dev/null || die "plan"
URL=http://$TOPO_VIP4

drops() {
	ctl -j stats | jq -r '[.drops[] | "\(.reason) \(.packets)"] | join(", ")'
}

# ---- 1. flush mid-transfer, with the stateless choice pointing elsewhere
x=$(who "$URL/")
x=${x#node}
[ -n "$x" ] || die "no answer from the VIP"
live_start "$URL" 4 4000000 300000
sleep 1
ctl node set id "$x" health drain >/dev/null || die "drain node$x"
y=$(who "$URL/")
y=${y#node}
[ -n "$y" ] && [ "$y" != "$x" ] || die "affinity did not move off node$x (got '$y')"
flushed=0
t0=$(date +%s%N)
for ((r = 0; r < FLUSH_N; r++)); do
	n=$(ctl -j dp flush conns | jq -r .flushed) || die "dp flush conns"
	flushed=$((flushed + n))
	sleep "$(awk -v m="$FLUSH_MS" 'BEGIN { print m / 1000 }')"
done
t_ms=$((($(date +%s%N) - t0) / 1000000))
live_stop
[ -n "$LIVE_REQS" ] && [ "${LIVE_REQS:-0}" -gt 0 ] || die "wrk did not run"
say "flush: $FLUSH_N flushes in $t_ms ms ($flushed entries) with node$x draining and the affinity on node$y"
say "flush: $LIVE_SUMMARY"
say "flush: router drops: $(drops)"
flush_broken=$LIVE_BROKEN
ctl node set id "$x" health up >/dev/null
ctl stats reset >/dev/null 2>&1

# ---- 2. a million spoofed SYNs and mid-flow segments during traffic
rmac=$(mac_of "$NS_RTR" r0)
live_start "$URL" 4 4000000 300000
sleep 1
in_ns "$NS_CLI" "$FLOOD" -i c0 -m "$rmac" -d $TOPO_VIP4 -p 80 -n "$FLOOD_N" -s 50 \
	>"$TMPD/flood.out" 2>"$TMPD/flood.err" || die "idn_flood: $(cat "$TMPD/flood.err")"
say "flood: $(cat "$TMPD/flood.out")"
sleep 2
conns=$(ctl -j dp status | jq -r '.maps.conns // empty')
live_stop
[ -n "$LIVE_REQS" ] && [ "${LIVE_REQS:-0}" -gt 0 ] || die "wrk did not run"
say "flood: $LIVE_SUMMARY; conn entries after the flood: ${conns:-?}"
say "flood: router drops: $(drops)"

echo "conn_flush_live_conns_broken $flush_broken conns"
echo "flood_live_conns_broken $LIVE_BROKEN conns"
exit 0
