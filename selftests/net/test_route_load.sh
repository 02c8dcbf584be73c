#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# test_route_load.sh - the router's own load accounting and SLO shedding,
# end to end through idn_xdp with real clients:
#
#   client --> router (idn_xdp on r0) --IPIP--> node1..node3 (idn_decap, httpd)
#
# One plan over three nodes, node 1 a little cheaper (exec 100/150/200 us,
# 1000 ns per token), no telemetry between the requests:
#   - without a mean prompt (prompt-tokens 0) nothing is charged and a burst
#     of new flows piles on node 1 (what the router did before);
#   - with prompt-tokens 2000 each decision charges 2000 tokens (2 ms) to
#     its node, so the same burst spreads 10/10/10; node show and route get
#     show the charge;
#   - a node's telemetry datagram supersedes its charge;
#   - every queue over the SLO: tier 0 is shed (RST, receipt: shed, every
#     candidate "slo"), tier 1 overflows, a prompt that cannot meet the SLO
#     even on an idle node is served (route get).
# TAP output; exit 4 when the machine cannot run it.

source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/topo.sh"

require_root
require_cmd ip nsenter curl python3 ethtool findmnt
require_file "$IDNCTL" "$BUILD/bpf/idn_pass.bpf.o" "$BUILD/bpf/idn_steer.bpf.o" \
	"$BUILD/bpf/idn_node.bpf.o"
probe_netns || skip_all "cannot create network namespaces"
probe_bpffs || skip_all "cannot mount bpffs"

CLS=1001
CAP=$CLS/0
TELE_PORT=7777
SLO_US=100000	# 100 ms: above a 30-flow burst's charge (20 ms a node)

topo_setup 3 || { tap_fail "test bed setup"; tap_done; }
# the dataplane also on r2: node 2's telemetry datagrams come in there
if ! topo_dataplane || ! ctl dp attach dev r2 mode xdp >/dev/null; then
	tap_fail "attach dataplane (idnctl dp attach, dp decap attach)"
	tap_done
fi
on_cleanup "ctl dp detach dev r2"
on_cleanup topo_dataplane_detach

# plan PROMPT_TOKENS: one plan over the 3 nodes, node 1 cheapest
plan() {
	ctl plan replace cap $CAP tier any policy any slo-us $SLO_US shed-tier 1 \
		prompt-tokens "$1" cand node 1 exec-us 100 cand node 2 exec-us 150 \
		cand node 3 exec-us 200 >/dev/null
}
cfg=0
topo_nodes || cfg=1
for ((i = 1; i <= TOPO_N; i++)); do
	ctl node set id $i tok-ns 1000 >/dev/null || cfg=1
done
plan 0 || cfg=1
ctl dp set receipt-sample 1 >/dev/null || cfg=1
tap_result "configure: 3 nodes at 1000 ns/token, plan $CAP (SLO $SLO_US us, shed-tier 1)" $cfg
log_cmd ctl plan show

# desc_who TIER TOKEN: the node answering a new flow to the descriptor address
desc_who() { who -g "http://[$(desc_addr6 $CLS 0 "$1" 0 "$2")]/"; }
# charged: node id -> charged_tokens, one "id:tokens" per line
charged() { ctl -j node show | python3 -c '
import json, sys
for n in json.load(sys.stdin):
    print("%d:%d" % (n["id"], n["charged_tokens"]))'; }
# burst FIRST N TIER: N new flows with tokens FIRST.., no datagram between;
# sets HITS[1..3]
burst() {
	local t n
	HITS=(0 0 0 0)
	for ((t = $1; t < $1 + $2; t++)); do
		n=$(desc_who "$3" "$t")
		[[ $n == node[123] ]] && HITS[${n#node}]=$((HITS[${n#node}] + 1))
	done
}

# ---- 1. without a mean prompt nothing is charged: the burst herds
burst 1000 12 0
log "prompt-tokens 0, 12 new flows: node1 ${HITS[1]} node2 ${HITS[2]} node3 ${HITS[3]}"
[ "${HITS[1]}" -eq 12 ] && [ "$(charged | tr '\n' ' ')" = "1:0 2:0 3:0 " ]
tap_result "no charge: all 12 new flows on the cheapest node (herding)" $? \
	"hits ${HITS[*]:1}, charged $(charged | tr '\n' ' ')"

# ---- 2. each decision charges its node: the same burst spreads
plan 2000
out=$(ctl -j route get addr6 "$(desc_addr6 $CLS 0 0 0 4999)")
log "route get: $(python3 -c 'import json,sys; r=json.loads(sys.argv[1]); print(r["verdict"], "node", r["node"], "charge", r["charge"])' "$out")"
python3 -c 'import json,sys; r=json.loads(sys.argv[1]); sys.exit(r["charge"] != 2000)' "$out"
tap_result "route get shows the charge a decision adds (2000 tokens)" $?
# node 1 already holds 12 of the first burst's flows but no charge: the
# charge counts flows from now on
burst 2000 30 0
log "prompt-tokens 2000, 30 new flows: node1 ${HITS[1]} node2 ${HITS[2]} node3 ${HITS[3]}"
ch=$(charged | tr '\n' ' ')
log "charged tokens: $ch"
[ "${HITS[1]}" -eq 10 ] && [ "${HITS[2]}" -eq 10 ] && [ "${HITS[3]}" -eq 10 ]
tap_result "charged: 30 new flows in one telemetry interval spread 10/10/10" $? "hits ${HITS[*]:1}"
[ "$ch" = "1:$((HITS[1] * 2000)) 2:$((HITS[2] * 2000)) 3:$((HITS[3] * 2000)) " ]
tap_result "node show: each node's charged-tokens = its new flows x 2000 ($ch)" $?
log_cmd ctl node show

# ---- 3. a node's telemetry datagram supersedes the router's charge
ctl dp set telemetry on port $TELE_PORT >/dev/null
# tele NODE SEQ PENDING: one datagram from node NODE's locator, MACed with
# the node's telemetry key (docs/security.md, "Telemetry authentication")
TELE_KEY=00112233445566778899aabbccddeeff
for i in 1 2 3; do ctl node tele-key id $i key $TELE_KEY key-id 1 >/dev/null; done
tele() {
	in_ns "${NS_NODE[$1]}" python3 "$(dirname "$0")/tele.py" "10.20.$1.1" $TELE_PORT "$1" "$2" \
		"$3" 0 $TELE_KEY 1
}
tele 2 1 700
ok=1
for ((k = 0; k < 20; k++)); do
	ch=$(charged | tr '\n' ' ')
	[[ $ch == "1:20000 2:0 3:20000 " ]] && { ok=0; break; }
	sleep 0.1
done
pend=$(ctl -j node show | python3 -c 'import json,sys; print([n["pending_tokens"] for n in json.load(sys.stdin) if n["id"] == 2][0])')
[ $ok = 0 ] && [ "$pend" = 700 ]
tap_result "node 2's datagram resets its charge, others keep theirs ($ch, pending $pend)" $?
n=$(desc_who 0 3000)
[ "$n" = node2 ]
tap_result "the next new flow goes to the node that just reported ($n)" $?

# ---- 4. every queue over the SLO: shed tier 0, overflow tier 1
for ((i = 1; i <= TOPO_N; i++)); do
	ctl node set id $i pending-tokens 200000 >/dev/null	# 200 ms > 100 ms
done
ctl receipt show >/dev/null 2>&1	# drain
cli curl -s -m 5 -o /dev/null -g "http://[$(desc_addr6 $CLS 0 0 0 3100)]/"
rc=$?
r=$(ctl -j receipt show count 1 timeout 3 2>/dev/null)
log "tier 0 at overload: curl exit $rc; receipt $r"
python3 -c '
import json, sys
r = json.loads(sys.argv[1])
c = r["candidates"]
sys.exit(0 if r["verdict"] == "shed" and len(c) == 3 and
         all(x["reject"] == "slo" and x["cost"] > '$SLO_US' for x in c) else 1)' "$r" &&
	{ [ "$rc" -eq 7 ] || [ "$rc" -eq 56 ]; }
tap_result "tier 0 over the SLO everywhere: shed (curl refused), receipt says slo on every node" $? \
	"curl exit $rc"
n=$(desc_who 1 3101)
[[ $n == node[123] ]]
tap_result "tier 1 at the same overload overflows: served by $n" $?
out=$(ctl -j route get addr6 "$(desc_addr6 $CLS 0 0 0 3102)" size-class 15)
log "route get size-class 15: $(python3 -c 'import json,sys; r=json.loads(sys.argv[1]); print(r["verdict"], r["node"], [c["reject"] for c in r["candidates"]])' "$out")"
python3 -c 'import json,sys; r=json.loads(sys.argv[1]); sys.exit(r["verdict"] != "new")' "$out"
tap_result "a prompt over the SLO even on an idle node is served, not shed (route get)" $?
s=$(ctl -j stats show 2>/dev/null)
python3 -c '
import json, sys
v = {e["verdict"]: e["packets"] for e in json.loads(sys.argv[1])["verdicts"]}
print("# shed %d overflow %d new %d" % (v["shed"], v["overflow"], v["new"]))
sys.exit(0 if v["shed"] >= 1 and v["overflow"] >= 1 else 1)' "$s"
tap_result "stats: shed and overflow verdicts counted" $?

tap_done
