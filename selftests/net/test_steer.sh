#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# test_steer.sh - the steering dataplane end to end, with real clients:
#
#   client --> router (idn_xdp on r0) --IPIP/IP6IP6--> node1..node3
#                                                      (idn_decap, httpd)
#
# Reaches a capability by VIP (IPv4, IPv6), by IPv6 descriptor address and
# with the sock_ops TCP option; shows that one token stays on one node,
# also when its client switches between IPv6 and IPv4 (nodes are
# dual-stack: one id, two locators), that a node's queue moves new flows away, that a node marked down gets
# none (a download running on it is reset, with a receipt that names the
# node and the reason node-down), and that no established connection breaks across 100+ plan swaps
# under load (wrk + rate-limited curl downloads). Receipts and counters
# are checked too. TAP output; exit 4 when the machine cannot run it.
# DEBUG_TESTENV=1 opens a shell once the test bed is up.

source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/topo.sh"

require_root
require_cmd ip nsenter curl wrk python3 ethtool findmnt ss
require_file "$IDNCTL" "$IDNSTAMP" "$BUILD/bpf/idn_pass.bpf.o" \
	"$BUILD/bpf/idn_steer.bpf.o" "$BUILD/bpf/idn_node.bpf.o"
probe_netns || skip_all "cannot create network namespaces"
probe_bpffs || skip_all "cannot mount bpffs"

CAP=1001/0
SWAPS=${IDN_SWAPS:-120}
BIG=4000000		# bytes per long download
RATE=200000		# bytes/s, paced by the server: ~20 s each

topo_setup 3 || { tap_fail "test bed setup"; tap_done; }

# ---- 0. the bed itself, before any BPF: plain forwarding to node1
topo_plain_routes
[ "$(who http://$TOPO_VIP4/)" = node1 ] && [ "$(who "http://[$TOPO_VIP6]/")" = node1 ]
tap_result "test bed: plain forwarding reaches node1 (v4 and v6)" $?
topo_plain_routes_del
# and the VIP is unreachable without the dataplane
! cli curl -s -m 1 -o /dev/null http://$TOPO_VIP4/
tap_result "test bed: VIP unreachable without the dataplane" $?

# ---- dataplane and configuration
if ! topo_dataplane; then
	tap_fail "attach dataplane (idnctl dp attach, dp decap attach)"
	tap_done
fi
on_cleanup topo_dataplane_detach
tap_ok "attach dataplane: idn_xdp on r0, idn_decap on 3 nodes"

cfg_ok=0
topo_nodes || cfg_ok=1
for ((i = 1; i <= TOPO_N; i++)); do
	ctl node set id $i tok-ns 1000 >/dev/null || cfg_ok=1
done
ctl vip add $TOPO_VIP4 port 80 proto tcp cap $CAP tier 1 receipt on || cfg_ok=1
ctl vip add $TOPO_VIP6 port 80 proto tcp cap $CAP tier 1 receipt on || cfg_ok=1
# plan_all EXEC1 EXEC2 EXEC3: one plan over the 3 dual-stack nodes
plan_all() {
	ctl plan replace cap $CAP tier any policy any \
		cand node 1 exec-us "$1" state-us 2000 cand node 2 exec-us "$2" state-us 2000 \
		cand node 3 exec-us "$3" state-us 2000 >/dev/null
}
plan_all 100 100 100 || cfg_ok=1
ctl -j node show | python3 -c '
import json, sys
n = json.load(sys.stdin)
sys.exit(0 if len(n) == 3 and all("addr4" in e and "addr6" in e for e in n) else 1)' || cfg_ok=1
tap_result "configure: 3 dual-stack nodes, 2 VIPs, 1 plan (idnctl)" $cfg_ok
log_cmd ctl node show
log_cmd ctl plan show
debug_shell

# stamped_curl TOKEN ARGS...: curl whose SYN carries TOKEN (sock_ops option)
cgroup_make "idn-test-steer-$$" || exit 1
CG=$CGROUP
"$IDNSTAMP" attach cgroup "$CG" cap $CAP tier 1 token 1 port 80 pin "$PIN" >/dev/null || tap_fail "idn-stamp attach"
stamped_curl() {
	local tok=$1
	shift
	"$IDNSTAMP" attach cgroup "$CG" cap $CAP tier 1 token "$tok" port 80 pin "$PIN" >/dev/null &&
		cli sh -c 'echo $$ > "$0/cgroup.procs" && exec curl "$@"' "$CG" "$@"
}
stamped_who() { stamped_curl "$1" -s -m 5 "${@:2}" | awk '/^node /{print $2}'; }
# desc_who TOKEN: node answering the descriptor address with TOKEN
desc_who() { who -g "http://[$(desc_addr6 1001 0 1 0 "$1")]/"; }

# ---- 1. the three encodings
n4=$(who http://$TOPO_VIP4/)
[[ $n4 == node[123] ]]
tap_result "VIP IPv4 $TOPO_VIP4: served by $n4" $?
n6=$(who "http://[$TOPO_VIP6]/")
[[ $n6 == node[123] ]]
tap_result "VIP IPv6 $TOPO_VIP6: served by $n6" $?
da=$(desc_addr6 1001 0 1 0 42)
out=$(cli curl -s -m 5 -g "http://[$da]/who")
log "$da -> $out"
[[ $out == "node node"[123]" client $TOPO_CLI6 server "* ]] &&
	python3 -c 'import ipaddress,sys; sys.exit(ipaddress.ip_address(sys.argv[1]) != ipaddress.ip_address(sys.argv[2]))' \
		"${out##* }" "$da"
tap_result "IPv6 descriptor address $da: reached, server sees it" $?
out=$(stamped_curl 4242 -s -m 5 http://$TOPO_VIP4/who)
w=$("$IDNSTAMP" show pin "$PIN" | awk '$1 == "written" {print $2}')
[[ $out == "node node"[123]" client "*"$TOPO_CLI4 "* ]] && [ "${w:-0}" -ge 1 ]
tap_result "sock_ops option (idn-stamp, token 4242): $out" $?
out=$(cli "$IDNSTAMP" run cap $CAP tier 1 token 4242 pin "$PIN" -- curl -s -m 5 "http://[$TOPO_VIP6]/")
[[ $out == "node node"[123] ]]
tap_result "idn-stamp run token 4242 -- curl (IPv6 VIP): $out" $?

# ---- 2. same token -> same node; different tokens spread
same_node() {	# same_node CMD...: 15 runs of CMD answer with one node
	local k first='' n
	for ((k = 0; k < 15; k++)); do
		n=$("$@")
		[ -n "$n" ] || return 1
		[ -z "$first" ] && first=$n
		[ "$n" = "$first" ] || return 1
	done
	SAME=$first
}
same_node stamped_who 777 http://$TOPO_VIP4/
tap_result "same token (777, TCP option, IPv4): 15 new flows on $SAME" $?
same_node desc_who 778
tap_result "same token (778, descriptor address): 15 new flows on $SAME" $?
declare -A seen=()
for t in $(seq 1000 1023); do n=$(desc_who "$t"); seen[$n]=1; done
log "24 tokens landed on: ${!seen[*]}"
[ ${#seen[@]} -ge 2 ]
tap_result "24 different tokens spread over ${#seen[@]} nodes" $?

# ---- 2b. a token's affinity survives a family switch (one id per node)
# rcpt_json: the next receipt (the request just made), JSON
rcpt_json() { ctl -j receipt show count 1 timeout 3 2>/dev/null; }
T=6161
ctl receipt show >/dev/null 2>&1	# drain
X=$(cli "$IDNSTAMP" run cap $CAP tier 1 token $T pin "$PIN" -- curl -s -m 5 "http://[$TOPO_VIP6]/" |
	awk '/^node /{print $2}')
r6=$(rcpt_json)
ix=${X#node}
fs_ok=1
if [[ $X == node[123] ]]; then
	# make X the dearest node but for its state: only affinity keeps T there
	ex=(0 100 100 100)
	ex[ix]=1500
	plan_all "${ex[1]}" "${ex[2]}" "${ex[3]}"
	ctl receipt show >/dev/null 2>&1
	Y=$(stamped_who $T http://$TOPO_VIP4/)
	r4=$(rcpt_json)
	plan_all 100 100 100
	log "token $T: IPv6 -> $X, then IPv4 -> $Y"
	python3 -c '
import json, sys
r6, r4 = json.loads(sys.argv[1]), json.loads(sys.argv[2])
ix, tok = int(sys.argv[3]), "0x%x" % int(sys.argv[4])
ok = (r6["node"] == ix and r6["desc"]["token"] == tok and ":" in r6["flow"]["daddr"] and
      r4["verdict"] == "affinity" and r4["node"] == ix and r4["aff_node"] == ix and
      r4["desc"]["token"] == tok and "." in r4["flow"]["daddr"])
sys.exit(0 if ok else 1)' "$r6" "$r4" "$ix" $T && [ "$Y" = "$X" ] && fs_ok=0
fi
tap_result "token $T over IPv6 then IPv4: same node ($X, $Y), verdict affinity" $fs_ok \
	"receipts: ${r6:-none} / ${r4:-none}"

# ---- 3. raising a node's queue moves new flows away
A=$(stamped_who 4343 http://$TOPO_VIP4/)
ida=${A#node}
ctl node set id "$ida" queue 40 pending-tokens 1000000 >/dev/null
moved=1
for ((k = 0; k < 10; k++)); do
	n=$(stamped_who 4343 http://$TOPO_VIP4/)
	[ -n "$n" ] && [ "$n" != "$A" ] || moved=0
done
log_cmd ctl route get vip $TOPO_VIP4 port 80 proto tcp token 4343
[ $moved = 1 ]
tap_result "queue on $A (1M pending tokens): token 4343's new flows moved to $n" $?
ctl node set id "$ida" queue 0 pending-tokens 0 >/dev/null

# ---- 4. a node marked down gets no new flows; its connections are reset,
# each with a receipt (verdict error, the down node, reason node-down)
B=node2
T2=
for t in $(seq 3000 3039); do
	[ "$(stamped_who "$t" http://$TOPO_VIP4/)" = "$B" ] && { T2=$t; break; }
done
ctl receipt show >/dev/null 2>&1	# drain
DLPID=
if [ -n "$T2" ]; then	# a paced download from node2, running when it goes down
	stamped_curl "$T2" -s -o /dev/null -w '%{http_code} %{size_download}\n' \
		"http://$TOPO_VIP4/bytes/$BIG?rate=$RATE" >"$TMPD/down_dl.log" 2>&1 &
	DLPID=$!
	sleep 1
fi
ctl node set id 2 health down >/dev/null
if [ -n "$DLPID" ]; then
	for _ in $(seq 50); do kill -0 "$DLPID" 2>/dev/null || break; sleep 0.1; done
	kill "$DLPID" 2>/dev/null
	wait "$DLPID" 2>/dev/null
fi
ctl -j receipt show >"$TMPD/down_rcpt.json" 2>&1
python3 -c '
import json, sys
ok = False
for line in open(sys.argv[1]):
    try:
        r = json.loads(line)
    except ValueError:
        continue
    c = r.get("candidates", [])
    if (r.get("verdict") == "error" and r.get("node") == 2 and len(c) == 1 and
            c[0]["node"] == 2 and c[0]["reject"] == "node-down" and
            r["flow"]["daddr"] == sys.argv[2]):
        ok = True
sys.exit(0 if ok else 1)' "$TMPD/down_rcpt.json" "$TOPO_VIP4"
tap_result "node2 down: its download (token ${T2:-none}) reset, receipt node 2 reason node-down" $? \
	"download: $(cat "$TMPD/down_dl.log" 2>/dev/null); receipts: $(head -c 600 "$TMPD/down_rcpt.json")"
hit=0 cnt=0
for t in $(seq 2000 2019); do
	n=$(desc_who "$t"); [ -n "$n" ] && cnt=$((cnt + 1)); [ "$n" = "$B" ] && hit=$((hit + 1))
	n=$(stamped_who "$t" http://$TOPO_VIP4/); [ -n "$n" ] && cnt=$((cnt + 1)); [ "$n" = "$B" ] && hit=$((hit + 1))
done
[ $hit -eq 0 ] && [ $cnt -eq 40 ]
tap_result "node2 down: 0 of $cnt new flows on it" $? "$hit hit node2"
ctl node set id 2 health up >/dev/null

# ---- 5. 100+ plan swaps under load: no established connection breaks
gen0=$(ctl -j plan show | python3 -c 'import json,sys; print(json.load(sys.stdin)["generation"])' 2>/dev/null)
# wrk runs until every swap is done (SIGINT ends it and it reports), so a
# slow, loaded machine cannot leave swaps outside the load
bg_ns "$NS_CLI" "$TMPD/wrk4.log" wrk -t1 -c16 -d300s "http://$TOPO_VIP4/"
WRK4=$BG_PID
bg_ns "$NS_CLI" "$TMPD/wrk6.log" wrk -t1 -c8 -d300s "http://[$TOPO_VIP6]/"
WRK6=$BG_PID
# and a stream of new flows: one curl (one connection) after the other
bg_ns "$NS_CLI" "$TMPD/churn.log" sh -c 'while [ ! -e "$0" ]; do
	curl -s -m 5 -o /dev/null -w "%{http_code}\n" "$1" || echo "fail $?"; done' \
	"$TMPD/churn.stop" "http://$TOPO_VIP4/"
CHURN=$BG_PID
dl=()
for ((k = 0; k < 8; k++)); do
	if ((k % 2)); then url="http://[$TOPO_VIP6]/bytes/$BIG?rate=$RATE"; else url="http://$TOPO_VIP4/bytes/$BIG?rate=$RATE"; fi
	bg_ns "$NS_CLI" "$TMPD/dl$k.log" curl -s -o /dev/null \
		-w '%{http_code} %{size_download}\n' "$url"
	dl+=("$BG_PID")
done
sleep 1
swap_fail=0 churn_fail=0 churn=0 probe_bad=0 loaded=0
t_start=$(date +%s%N)
for ((s = 0; s < SWAPS; s++)); do
	# rotate which node is cheapest: new flows change node every swap
	case $((s % 3)) in
	0) plan_all 100 300 500 ;;
	1) plan_all 500 100 300 ;;
	2) plan_all 300 500 100 ;;
	esac || swap_fail=$((swap_fail + 1))
	kill -0 "$WRK4" 2>/dev/null && kill -0 "$WRK6" 2>/dev/null && loaded=$((loaded + 1))
	if ((s % 10 == 0)); then
		# a fresh token has no affinity: it must go to this generation's
		# cheapest node (node1, node2, node3 in turn)
		churn=$((churn + 1))
		n=$(desc_who $((5000 + s)))
		[ -n "$n" ] || churn_fail=$((churn_fail + 1))
		[ "$n" = "node$((s % 3 + 1))" ] || probe_bad=$((probe_bad + 1))
	fi
	sleep 0.02
done
t_ms=$((($(date +%s%N) - t_start) / 1000000))
gen1=$(ctl -j plan show | python3 -c 'import json,sys; print(json.load(sys.stdin)["generation"])' 2>/dev/null)
log "$SWAPS swaps in ${t_ms} ms ($loaded while wrk ran), generation $gen0 -> $gen1"
kill -INT "$WRK4" "$WRK6" 2>/dev/null
dl_bad=0
for ((k = 0; k < 8; k++)); do
	wait "${dl[$k]}"
	r=$(cat "$TMPD/dl$k.log")
	[ "$r" = "200 $BIG" ] || { dl_bad=$((dl_bad + 1)); log "download $k: '$r'"; }
done
wait $WRK4 $WRK6
touch "$TMPD/churn.stop"
wait $CHURN
for f in wrk4 wrk6; do log "$f: $(grep -E 'requests in|Socket errors|Non-2xx' "$TMPD/$f.log" | tr -s ' ' | tr '\n' ';')"; done
[ $swap_fail -eq 0 ] && [ -n "$gen1" ] && [ $((gen1 - gen0)) -ge $SWAPS ] && [ $loaded -ge 100 ]
tap_result "$SWAPS plan swaps committed (generation $gen0 -> $gen1), $loaded under load" $?
[ $dl_bad -eq 0 ]
tap_result "8 long downloads (IPv4+IPv6, $BIG B each) complete across the swaps" $? "$dl_bad broken"
wrk_ok=0
for f in wrk4 wrk6; do
	grep -q 'requests in' "$TMPD/$f.log" || wrk_ok=1
	grep -qE 'Socket errors|Non-2xx' "$TMPD/$f.log" && wrk_ok=1
done
tap_result "wrk (24 keep-alive connections): 0 socket errors, 0 non-2xx across the swaps" $wrk_ok
c_all=$(grep -c . "$TMPD/churn.log")
c_ok=$(grep -c '^200$' "$TMPD/churn.log")
[ "$c_all" -gt 0 ] && [ "$c_ok" = "$c_all" ]
tap_result "new connections during the swaps (curl loop): $c_ok of $c_all answered 200" $?
[ $churn_fail -eq 0 ]
tap_result "new flows during the swaps: all $churn answered" $?
[ $probe_bad -eq 0 ]
tap_result "each swap steers new flows at once: $((churn - probe_bad)) of $churn on the new cheapest node" $?

# verdict_pkts NAME: packets counted with that verdict (idnctl -j stats)
verdict_pkts() {
	ctl -j stats show | python3 -c '
import json, sys
s = json.load(sys.stdin)
print(sum(v["packets"] for v in s["verdicts"] if v["verdict"] == sys.argv[1]))' "$1"
}

# ---- 6. no plan for the capability: fast TCP reset built in XDP
ctl vip add 10.99.0.2 port 80 proto tcp cap 2002/0 tier 1 >/dev/null &&
	ctl vip add fd00:99::2 port 80 proto tcp cap 2002/0 tier 1 >/dev/null
rej0=$(verdict_pkts miss-reject)
t0=$(date +%s%N)
cli curl -s -m 5 -o /dev/null http://10.99.0.2/; rc4=$?
cli curl -s -m 5 -o /dev/null "http://[fd00:99::2]/"; rc6=$?
ms=$((($(date +%s%N) - t0) / 1000000))
rej1=$(verdict_pkts miss-reject)
log "curl exit $rc4 (v4) $rc6 (v6) in ${ms} ms; miss-reject packets $rej0 -> $rej1"
[ $rc4 -eq 7 ] && [ $rc6 -eq 7 ] && [ $ms -lt 2000 ] && [ $((rej1 - rej0)) -ge 2 ]
tap_result "capability without a plan: connection refused at once (RST from XDP, v4+v6)" $?

# ---- 7. receipts (monitor, receipt show) and counters
ctl receipt show >/dev/null 2>&1
bg_ns "$NS_RTR" "$TMPD/monitor.log" "$IDNCTL" -P "$PIN/rtr" monitor count 1 timeout 10
MON=$BG_PID
sleep 0.5
stamped_curl 31337 -s -m 5 -o /dev/null http://$TOPO_VIP4/
wait $MON
log "$(head -n 3 "$TMPD/monitor.log")"
grep -q 'token 0x7a69' "$TMPD/monitor.log"
tap_result "idnctl monitor shows the receipt of a request (token 31337)" $?
cli curl -s -m 5 -o /dev/null http://$TOPO_VIP4/

out=$(ctl receipt show 2>&1)
log "$(head -n 6 <<<"$out")"
[ -n "$out" ] && grep -qE 'node' <<<"$out"
tap_result "receipts recorded (idnctl receipt show)" $?
out=$(ctl -j stats show 2>/dev/null)
python3 -c '
import json, sys
s = json.loads(sys.argv[1])
v = {e["verdict"]: e["packets"] for e in s["verdicts"]}
flows = [n["node"] for n in s["nodes"] if n["flows"] > 0]
down = sum(d["packets"] for d in s["drops"] if d["reason"] == "node-down")
print("# new %d affinity %d conn %d error %d (node-down resets %d); nodes with flows %s" %
      (v["new"], v["affinity"], v["conn"], v["error"], down, flows))
sys.exit(0 if v["new"] > 0 and v["affinity"] > 0 and v["conn"] > 1000 and
         v["error"] == down and len(flows) >= 3 else 1)' "$out"
tap_result "stats: new/affinity/conn verdicts counted, no errors but the node-down resets (4), flows on all 3 nodes" $?
log_cmd ctl stats show

tap_done
