#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# test_telemetry.sh - forged and replayed telemetry against the real
# dataplane (docs/security.md, "Telemetry authentication"): a router with
# node 1 keyed (idnctl node tele-key) takes node 1's datagrams from its
# own locator; each attack must be dropped and counted under its reason
# (the dataplane logs nothing per packet: the counters are its log line,
# printed here) and leave node 1's entry as it was:
#   a datagram under a wrong key, one whose body was changed after the
#   MAC, one of an old key generation, a replayed one, a version-1
#   (unauthenticated) one, one for a node without a key.
# Every attack's TAP line starts "attack:" (counted by run.sh).
if [ -z "${IDN_TEST_UNSHARED:-}" ] && [ "$(id -u)" -eq 0 ]; then
	IDN_TEST_UNSHARED=1 exec unshare -m --propagation private "$0" "$@"
fi

source "$(dirname "$0")/../net/lib.sh"
source "$(dirname "$0")/../net/topo.sh"
NET=$(cd "$(dirname "$0")/../net" && pwd)

require_root
require_cmd ip jq nsenter python3
IDNCTL=$BUILD/idnctl
require_file "$IDNCTL" "$BUILD/bpf/idn_steer.bpf.o" "$BUILD/bpf/idn_node.bpf.o" \
	"$BUILD/bpf/idn_pass.bpf.o"
probe_netns || skip_all "cannot create network namespaces"
probe_bpffs || skip_all "cannot mount bpffs"
make_tmpdir || exit 1

topo_setup 2 || { tap_fail "test bed setup"; tap_done; }
if ! topo_dataplane || ! ctl dp attach dev r1 mode xdp >/dev/null ||
   ! ctl dp attach dev r2 mode xdp >/dev/null; then
	tap_fail "attach dataplane"
	tap_done
fi
on_cleanup "ctl dp detach dev r1"
on_cleanup "ctl dp detach dev r2"
on_cleanup topo_dataplane_detach
K1=00112233445566778899aabbccddeeff
K2=0f1e2d3c4b5a69788796a5b4c3d2e1f0
cfg=0
topo_nodes || cfg=1
ctl dp set telemetry on port 7777 >/dev/null || cfg=1
ctl node tele-key id 1 key $K1 key-id 1 >/dev/null || cfg=1
tap_result "router: nodes 1, 2, telemetry on 7777, node 1 keyed (generation 1)" $cfg

# send SEQ PENDING KEY KEYID [NODE]: one datagram from node 1's locator
send() { in_ns "${NS_NODE[1]}" python3 "$NET/tele.py" 10.20.1.1 7777 "${5:-1}" "$1" "$2" 0 "$3" "$4"; }
pending() { ctl -j node show | jq -r '.[] | select(.id == 1) | .pending_tokens'; }
drops() { ctl -j stats show | jq -r --arg r "$1" '[.drops[] | select(.reason == $r) | .packets] | add // 0'; }
# attack NAME REASON: the datagram just sent was counted under REASON, node 1 unchanged
expect_drop() {
	local want=$2 before=$3 got p
	sleep 0.1
	got=$(drops "$want")
	p=$(pending)
	log "$want drops: $before -> $got; node 1 pending $p"
	tap_result "attack: $1: dropped as $want, node 1 unchanged" \
		"$([ "$got" -gt "$before" ] && [ "$p" = 1000 ]; echo $?)" "$want $before -> $got, pending $p"
}

send 100 1000 $K1 1
sleep 0.1
[ "$(pending)" = 1000 ]
tap_result "node 1's datagram under its key is applied (pending 1000)" $?

d=$(drops tele-mac); send 101 0 $K2 1; expect_drop "a datagram under a wrong key claiming idle" tele-mac "$d"
d=$(drops tele-mac)
in_ns "${NS_NODE[1]}" python3 - "$NET" $K1 <<'EOF'
import socket, sys
sys.path.insert(0, sys.argv[1])
import tele
d = bytearray(tele.datagram(1, 102, 1000, 0, bytes.fromhex(sys.argv[2]), 1))
d[20:24] = (0).to_bytes(4, "big")          # pending tokens changed after the MAC
socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(bytes(d), ("10.20.1.1", 7777))
EOF
expect_drop "a datagram changed after its MAC (pending 1000 -> 0)" tele-mac "$d"
d=$(drops tele-replay); send 100 0 $K1 1; expect_drop "node 1's own datagram replayed (seq 100)" tele-replay "$d"
d=$(drops tele-replay); send 50 0 $K1 1; expect_drop "an older sequence (50)" tele-replay "$d"
d=$(drops bad-telemetry)
in_ns "${NS_NODE[1]}" python3 -c '
import socket, struct
d = struct.pack("!IBBHIIIIHH", 0x49444e54, 1, 0, 0, 1, 200, 0, 0, 0, 0)
socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(d, ("10.20.1.1", 7777))'
expect_drop "a version-1 (unauthenticated) datagram" bad-telemetry "$d"

# a new generation (what idnd does at each registration): a restarted
# node's lower sequence gets in, the old generation's datagrams do not
ctl node tele-key id 1 key $K2 key-id 2 >/dev/null
d=$(drops tele-mac); send 300 0 $K1 1; expect_drop "a datagram of the old key generation" tele-mac "$d"
send 5 1000 $K2 2
sleep 0.1
k=$(ctl -j node tele-key id 1)
jq -e '.key_id == 2 and .seen and .seq == 5' <<<"$k" >/dev/null
tap_result "new generation: a lower sequence (5) from the restarted node is taken" $? "$k"
d=$(drops tele-nokey)
in_ns "${NS_NODE[2]}" python3 "$NET/tele.py" 10.20.2.1 7777 2 1 0 0 $K1 1
sleep 0.1
g=$(drops tele-nokey)
log "tele-nokey drops: $d -> $g"
tap_result "attack: telemetry for node 2, which has no key: dropped as tele-nokey" \
	"$([ "$g" -gt "$d" ]; echo $?)" "$d -> $g"
log_cmd ctl stats show
tap_done
