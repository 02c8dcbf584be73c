#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# dp_replace.sh - hitless upgrade of the router dataplane, measured: N
# `idnctl dp replace` runs (default 100) while traffic crosses the router.
#
#   client ns -- router ns (idn_xdp on r0, the VIP) -- 3 node ns (decap, httpd)
#
# Traffic during the replacements, all to the VIP through the dataplane:
#   - wrk, 16 keep-alive connections (HTTP GETs), and 4 paced long
#     downloads (~20 s each): live_conns.sh;
#   - a UDP stream with sequence numbers (REPLACE_PPS per second) to a
#     counting receiver on every node.
# Prints (one "name value unit" line each):
#   dp_replace_lost_packets   UDP datagrams sent and never received (the
#                             receivers count each sequence number once)
#   dp_replace_broken_conns   wrk socket errors + non-2xx answers +
#                             downloads that did not complete
# and, on stderr, the TCP retransmissions the client saw and the time per
# replacement. A replacement that fails, or programs that did not change,
# fail the run. Knobs: REPLACE_N (100), REPLACE_PPS (2000); REPLACE_MODE=reattach
# measures the same with detach + attach instead (the gap dp replace closes).
# Exit 0; 1 on failure; 4 when something it needs is missing.
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=../../selftests/net/lib.sh
source "$HERE/../../selftests/net/lib.sh"
# shellcheck source=../../selftests/net/topo.sh
source "$HERE/../../selftests/net/topo.sh"
# shellcheck source=live_conns.sh
source "$HERE/live_conns.sh"

N=${REPLACE_N:-100}
PPS=${REPLACE_PPS:-2000}
UDP_PORT=9999
BIG=4000000
RATE=200000

say() { echo "# dp_replace: $*" >&2; }
missing() { say "SKIP: $*"; exit $KSFT_SKIP; }
die() { say "FAILED: $*"; exit $KSFT_FAIL; }

[ "$(id -u)" -eq 0 ] || missing "needs root"
for c in wrk curl python3 ethtool nsenter jq nstat; do
	command -v $c >/dev/null 2>&1 || missing "needs $c"
done
for f in "$IDNCTL" "$BUILD/bpf/idn_node.bpf.o" "$BUILD/bpf/idn_pass.bpf.o"; do
	[ -e "$f" ] || missing "$f not built"
done

topo_setup 3 || die "test bed"
topo_dataplane || die "dp attach"
on_cleanup topo_dataplane_detach
topo_nodes || die "nodes"
ctl vip add $TOPO_VIP4 port 80 proto tcp cap 1001/0 tier 1 >/dev/null || die "vip tcp"
ctl vip add $TOPO_VIP4 port $UDP_PORT proto udp cap 1001/0 tier 1 >/dev/null || die "vip udp"
ctl plan add cap 1001/0 tier any policy any cand node 1 exec-us 100 \
	cand node 2 exec-us 100 cand node 3 exec-us 100 >/dev/null || die "plan"

# ---- receivers: every node counts the sequence numbers it gets
RX=$TMPD/udp_rx.py
cat >"$RX" <<'PY'
import socket, sys
out, port = sys.argv[1], int(sys.argv[2])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
s.bind(("0.0.0.0", port))
seen = set()
while True:
    d = s.recv(2048)
    if d == b"stop":
        break
    seen.add(int.from_bytes(d[:8], "big"))
open(out, "w").write("\n".join(map(str, sorted(seen))) + "\n")
PY
TX=$TMPD/udp_tx.py
cat >"$TX" <<'PY'
import socket, sys, time, os
dst, port, pps, stopf, out = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5]
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.connect((dst, port))		# one flow: one 5-tuple, one node
pad = b"p" * 56
n, t0 = 0, time.monotonic()
while not os.path.exists(stopf):
    s.send(n.to_bytes(8, "big") + pad)
    n += 1
    ahead = t0 + n / pps - time.monotonic()
    if ahead > 0:
        time.sleep(ahead)
open(out, "w").write("%d\n" % n)
PY
rxp=()
for ((i = 1; i <= TOPO_N; i++)); do
	bg_ns "${NS_NODE[$i]}" "$TMPD/rx$i.log" python3 "$RX" "$TMPD/rx$i.seen" $UDP_PORT
	rxp+=("$BG_PID")
done
sleep 0.5

in_ns "$NS_CLI" nstat -n >/dev/null 2>&1	# reset the client's counter history
live_start "http://$TOPO_VIP4" 4 $BIG $RATE
bg_ns "$NS_CLI" "$TMPD/tx.log" python3 "$TX" $TOPO_VIP4 $UDP_PORT "$PPS" "$TMPD/tx.stop" "$TMPD/tx.sent"
TXP=$BG_PID
sleep 1

fail=0 same=0
t0=$(date +%s%N)
for ((r = 0; r < N; r++)); do
	before=$(ctl -j dp status | jq -r '.devices[0].prog_id')
	if [ "${REPLACE_MODE:-replace}" = reattach ]; then
		# the reference: what an upgrade by detach + attach costs
		{ ctl dp detach dev r0 && ctl dp attach dev r0 mode xdp; } >/dev/null 2>"$TMPD/replace.err"
	else
		ctl dp replace >/dev/null 2>"$TMPD/replace.err"
	fi || { fail=$((fail + 1)); say "replace $r: $(cat "$TMPD/replace.err")"; }
	after=$(ctl -j dp status | jq -r '.devices[0].prog_id')
	[ "$before" != "$after" ] || same=$((same + 1))
done
t_ms=$((($(date +%s%N) - t0) / 1000000))
sleep 1
touch "$TMPD/tx.stop"
wait "$TXP"
live_stop
sleep 0.5
for ((i = 1; i <= TOPO_N; i++)); do
	in_ns "${NS_NODE[$i]}" python3 -c 'import socket,sys; socket.socket(socket.AF_INET,
socket.SOCK_DGRAM).sendto(b"stop", ("127.0.0.1", int(sys.argv[1])))' $UDP_PORT
done
for p in "${rxp[@]}"; do
	for ((w = 0; w < 50; w++)); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
	kill "$p" 2>/dev/null
done
sent=$(cat "$TMPD/tx.sent" 2>/dev/null || echo 0)
got=$(cat "$TMPD"/rx*.seen 2>/dev/null | grep -c . )
uniq=$(cat "$TMPD"/rx*.seen 2>/dev/null | grep . | sort -un | wc -l)
lost=$((sent - uniq))
retrans=$(in_ns "$NS_CLI" nstat -az TcpRetransSegs 2>/dev/null | awk '/TcpRetransSegs/ { print $2 }')
say "$N replacements in $t_ms ms ($((t_ms / (N > 0 ? N : 1))) ms each), failed $fail, unchanged $same"
say "udp: sent $sent, received $got ($uniq distinct); $LIVE_SUMMARY; client TCP retransmissions ${retrans:-?}"
[ -n "$LIVE_REQS" ] && [ "${LIVE_REQS:-0}" -gt 0 ] || die "wrk did not run (see $LIVE_TAG.wrk)"
[ "$sent" -gt 0 ] || die "the UDP sender sent nothing"
[ $fail -eq 0 ] && [ $same -eq 0 ] || die "$fail replacements failed, $same left the program unchanged"
echo "dp_replace_lost_packets $lost packets"
echo "dp_replace_broken_conns $LIVE_BROKEN conns"
exit 0
