#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# test_ts_cookie.sh - the connection table flushed mid-download loses no
# connection: the client echoes its node's TCP timestamp cookie (written
# by idn_stamp on the node, docs/architecture.md "State only for real
# connections") and the router sends every segment without an entry to
# that node, even where the stateless choice would now pick another:
#
#   1. three paced downloads start on node X (the client's affinity node);
#   2. X drains, a new request goes to Y and moves the client's affinity
#      to Y: the stateless choice of the downloads is now Y;
#   3. `idnctl dp flush conns` ten times during the downloads;
#   4. every download completes (status 200, every byte), ts-cookie
#      counted, no node-down.
# Then the node side: cookie in the TSval of the VIP's segments only.

source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/topo.sh"

require_root
require_cmd ip jq nsenter curl python3 ethtool
require_file "$IDNCTL" "$BUILD/bpf/idn_node.bpf.o" "$BUILD/bpf/idn_pass.bpf.o"
probe_netns || skip_all "cannot create network namespaces"
probe_bpffs || skip_all "cannot mount bpffs"

BIG=1500000
RATE=250000

topo_setup 3 || { tap_fail "test bed"; tap_done; exit; }
topo_dataplane || { tap_fail "attach dataplane"; tap_done; exit; }
on_cleanup topo_dataplane_detach
topo_nodes || { tap_fail "nodes"; tap_done; exit; }
ctl vip add $TOPO_VIP4 port 80 proto tcp cap 1001/0 tier 1 >/dev/null &&
	ctl plan add cap 1001/0 tier any policy any cand node 1 exec-us 100 \
		cand node 2 exec-us 100 cand node 3 exec-us 100 >/dev/null
tap_result "VIP and plan" $?

drop_count() { ctl -j stats | jq -r --arg r "$1" '[.drops[] | select(.reason == $r) | .packets] | add // 0'; }

x=$(who "http://$TOPO_VIP4/")
x=${x#node}
[ -n "$x" ]
tap_result "the client's node X: node$x" $?

# ---- the node stamps its VIP connections, and nothing else
# sniff.py DEV SECONDS READY: "SRC TSVAL" of every IPv4 TCP segment with
# a timestamp option seen on DEV (an AF_PACKET socket: no tcpdump needed);
# creates the file READY once it listens
SNIFF=$TMPD/sniff.py
cat >"$SNIFF" <<'PY'
import socket, struct, sys, time
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(3))	# ETH_P_ALL: also sent
s.bind((sys.argv[1], 0))
s.settimeout(0.2)
open(sys.argv[3], "w").close()
end = time.monotonic() + float(sys.argv[2])
while time.monotonic() < end:
    try:
        f = s.recv(2048)
    except socket.timeout:
        continue
    ip = f[14:]
    if f[12:14] != b"\x08\x00" or len(ip) < 40 or ip[9] != 6:
        continue
    ihl = (ip[0] & 15) * 4
    th = ip[ihl:]
    opts, i = th[20:(th[12] >> 4) * 4], 0
    while i < len(opts):
        k = opts[i]
        if k == 0:
            break
        if k == 1:
            i += 1
            continue
        if i + 1 >= len(opts) or opts[i + 1] < 2:
            break
        if k == 8 and opts[i + 1] == 10:
            print(socket.inet_ntoa(ip[12:16]), struct.unpack("!I", opts[i + 2:i + 6])[0])
            break
        i += opts[i + 1]
    sys.stdout.flush()
PY
bg_ns "${NS_NODE[$x]}" "$TMPD/ts.txt" python3 "$SNIFF" "n$x" 4 "$TMPD/sniff.ready"
SN=$BG_PID
for ((w = 0; w < 100; w++)); do [ -e "$TMPD/sniff.ready" ] && break; sleep 0.1; done
cli curl -s -o /dev/null "http://$TOPO_VIP4/bytes/20000"
in_ns "$NS_RTR" curl -s -o /dev/null -m 2 "http://10.20.$x.2/" || true
wait "$SN"
tsv=$(cat "$TMPD/ts.txt")
vip_bad=$(echo "$tsv" | awk -v a=$TOPO_VIP4 -v x="$x" '$1 == a && $2 % 4096 != x' | wc -l)
vip_n=$(echo "$tsv" | awk -v a=$TOPO_VIP4 '$1 == a' | wc -l)
loc_n=$(echo "$tsv" | awk -v a="10.20.$x.2" '$1 == a' | wc -l)
loc_stamped=$(echo "$tsv" | awk -v a="10.20.$x.2" -v x="$x" '$1 == a && $2 % 4096 == x' | wc -l)
[ "$vip_n" -gt 2 ] && [ "$vip_bad" -le 1 ]	# the SYN+ACK is left alone
tap_result "VIP segments carry cookie $x in TSval ($vip_n segments, $vip_bad not)" $?
[ "$loc_n" -gt 0 ] && [ "$loc_stamped" -lt "$loc_n" ]
tap_result "the node's own connections are not stamped ($loc_stamped of $loc_n)" $?

# ---- downloads on X; the client's affinity moves to Y; flushes
dl=()
for ((k = 0; k < 3; k++)); do
	bg_ns "$NS_CLI" "$TMPD/dl$k.log" curl -s -o /dev/null -m 60 \
		-w '%{http_code} %{size_download}\n' "http://$TOPO_VIP4/bytes/$BIG?rate=$RATE"
	dl+=("$BG_PID")
done
sleep 1
ctl node set id "$x" health drain >/dev/null
y=$(who "http://$TOPO_VIP4/")
y=${y#node}
[ -n "$y" ] && [ "$y" != "$x" ]
tap_result "a new request while X drains goes to Y: node$y" $?

c0=$(drop_count ts-cookie)
d0=$(drop_count node-down)
flushed=0
for ((r = 0; r < 10; r++)); do
	n=$(ctl -j dp flush conns | jq -r .flushed) && flushed=$((flushed + n))
	sleep 0.4
done
[ "$flushed" -gt 0 ]
tap_result "dp flush conns: $flushed entries flushed over 10 flushes" $?
bad=0
for ((k = 0; k < 3; k++)); do
	wait "${dl[$k]}"
	got=$(cat "$TMPD/dl$k.log")
	[ "$got" = "200 $BIG" ] || { bad=$((bad + 1)); log "download $k: $got"; }
done
[ $bad -eq 0 ]
tap_result "3 downloads across 10 flushes complete intact on node$x" $?
c1=$(drop_count ts-cookie)
d1=$(drop_count node-down)
[ "$c1" -gt "$c0" ] && [ "$d1" -eq "$d0" ]
tap_result "segments steered by cookie: $((c1 - c0)); node-down $((d1 - d0))" $?

tap_done
