#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# test_pd_dsr.sh - direct server return of two-stage (P/D) requests: the
# client's TCP connection handed from the prefill node to the decode node
# (docs/agent.md "Direct server return of a two-stage request"). idnd on
# a router dataplane, agent A (node 1) --role prefill, agent B (node 2)
# --role decode, each node with its decap dataplane (idn_decap,
# idn_handoff) and the agent pointed at its pinned hand-off map.
#   - a request to the VIP (whole, then streamed, answers of tens of KB):
#     A prefills, pushes the KV, freezes the connection (TCP_REPAIR), B
#     rebuilds it and serves the request; the answer is complete and
#     correct, and it does NOT cross A (no more than 3 segments left A
#     from the VIP, idn_stamp's count; A's device sent far fewer bytes
#     than the answer; B's sent at least the answer); A's dataplane
#     forwarded the client's packets to B (idn_decap_stats, idn_handoff);
#     A's socket sent no reset; the receipts: A's prefill stage
#     "handed-off" with the hand-off id, B's decode stage with the same id
#     naming A's request; both verify with their node's key;
#   - a second request on the same connection (keep-alive) reaches B
#     through A's forwarding; a tenant-scoped request is handed off with
#     its owner (B serves it as that tenant's, from the moved blocks);
#   - B restarted with --pd-handoff off: the hand-off is refused after the
#     freeze, A un-freezes and relays B's answer on the same connection.
# TAP output; exit 4 when the machine cannot run it.
if [ -z "${IDN_TEST_UNSHARED:-}" ] && [ "$(id -u)" -eq 0 ]; then
	IDN_TEST_UNSHARED=1 exec unshare -m --propagation private "$0" "$@"
fi

source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/topo.sh"

require_root
require_cmd ip nsenter curl jq ethtool findmnt bpftool
AGENT=$BUILD/idn-agent
topo_bed 2 "$AGENT" "$BUILD/idnd"
URL=http://127.0.0.1:8787
APORT=8000 KVPORT=9100
api() { in_ns "$NS_RTR" curl -s -m 5 "$@"; }
post() { api -o /dev/null -w '%{http_code}' -X POST --data-binary "$2" "$URL$1"; }
poll_until() { local n=$1; shift; for _ in $(seq "$n"); do "$@" && return 0; sleep 0.05; done; return 1; }

bg_ns "$NS_RTR" "$TMPD/idnd.log" "$BUILD/idnd" --insecure --enrol open -d "$TMPD/idnd.db" \
	-l 0.0.0.0 -P "$PIN/rtr" -t 60000 -v
poll_until 100 api -o /dev/null "$URL/v1/status"
start_agent() {	# start_agent ID ROLE [ARGS...]: in node ID's namespace, on its locator
	local i=$1 role=$2
	shift 2
	bg_ns "${NS_NODE[$i]}" "$TMPD/agent$i.log" "$AGENT" --insecure --node-id "$i" \
		--addr4 "10.20.$i.2" --key "$TMPD/node$i.key" --controller "http://10.20.$i.1:8787" \
		--listen "0.0.0.0:$APORT" --mgmt-listen "10.20.$i.2:9000" \
		--kv-listen "10.20.$i.2:$KVPORT" --kv-insecure \
		--kv-transport tcp --hb-ms 1000 --role "$role" --region "$i" --block-tokens 16 \
		--kv-bytes-per-token 16 --speed 1000 --handoff-map "$PIN/node$i/idn_handoff" -v "$@"
	eval "PID_$i=\$BG_PID"
}
start_agent 1 prefill
start_agent 2 decode
upn() { [ "$(api "$URL/v1/nodes" | jq -r '[.[] | select(.state == "up")] | length')" = 2 ]; }
poll_until 400 upn
tap_result "agents up (prefill, decode)" $? "$(tail -3 "$TMPD/agent1.log")"

mem=$(api "$URL/v1/nodes" | jq '[.[] | .mem_gb] | min * 0.3')
post /v1/caps "{\"class\":7,\"name\":\"chat-pd\",\"pd\":true,\"resources\":{\"mem_gb\":$mem}}" >/dev/null
for r in 1 2; do post /v1/demand "{\"cap\":1792,\"region\":$r,\"rps\":50}" >/dev/null; done
placed() {
	post /v1/placement/solve '{}' >/dev/null
	[ "$(api "$URL/v1/placement" | jq -c '[.[] | select(.cap == 1792) | .node] | sort')" = "[1,2]" ]
}
poll_until 40 placed
tap_result "capability 7/0 (pd) placed on both nodes" $? "$(api "$URL/v1/placement" | jq -c .)"
ctl vip add $TOPO_VIP4 port $APORT proto tcp cap 7/0 tier 1 >/dev/null
[ -e "$PIN/node1/idn_handoff" ] && [ -e "$PIN/node1/idn_decap_stats" ]
tap_result "the node dataplane pins idn_handoff and idn_decap_stats" $? "$(ls "$PIN/node1")"

PROMPT=$(seq -s ' ' 1 100)	# 6 full blocks of 16 tokens and a tail
body() { printf '{"prompt":"%s %s","max_tokens":%s%s}' "$1" "$PROMPT" "$2" "${3:+,\"stream\":true}"; }
hval() { tr -d '\r' <"$TMPD/hdr" | awk -v h="$1:" 'tolower($1) == tolower(h) { print $2 }'; }
rcpt() { in_ns "${NS_NODE[$1]}" curl -s -m 5 "http://127.0.0.1:$APORT/v1/receipts/$2"; }
rbody() { rcpt "$1" "$2" | jq -c '.body | fromjson'; }
pk1=$(in_ns "${NS_NODE[1]}" curl -s "http://127.0.0.1:$APORT/v1/agent/key" | jq -r .pubkey)
pk2=$(in_ns "${NS_NODE[2]}" curl -s "http://127.0.0.1:$APORT/v1/agent/key" | jq -r .pubkey)
verify() {	# verify NODE ID PUBKEY
	rcpt "$1" "$2" >"$TMPD/r$1.$2"
	"$IDNCTL" receipt verify "$TMPD/r$1.$2" key "$3" >"$TMPD/v$1.$2" 2>&1
}
txb() { ip -n "${NS_NODE[$1]}" -s -j link show dev "n$1" | jq '.[0].stats64.tx.bytes'; }
rsts() { in_ns "${NS_NODE[$1]}" awk '/^Tcp:/ { if (h) print $15; h = 1 }' /proc/net/snmp; }
# dstat NODE KEY: sum over CPUs of idn_decap_stats[KEY] (3: IDN_DECAP_STAMP,
# segments sent from the VIP with a timestamp; 4: IDN_DECAP_HANDOFF, forwarded)
dstat() {
	bpftool -j map lookup pinned "$PIN/node$1/idn_decap_stats" key "$2" 0 0 0 |
		jq '[.. | objects | select(has("formatted")) | .formatted.values[].value] | add // 0'
}
# ask OUT CURL-ARGS...: a completion to the VIP from the client; body to OUT, headers to $TMPD/hdr
ask() {
	local o=$1
	shift
	cli curl -s -m 30 -o "$o" -D "$TMPD/hdr" -H 'X-IDN-Capability: 7/0' "$@" \
		"http://$TOPO_VIP4:$APORT/v1/completions"
}
a1() { api "http://10.20.1.2:$APORT/v1/agent" | jq -c .pd; }
a2() { api "http://10.20.2.2:$APORT/v1/agent" | jq -c .pd; }

# ---- whole answer: 20000 tokens, ~130 KB ----
N=20000
t1=$(txb 1) t2=$(txb 2) r1=$(rsts 1) f0=$(dstat 1 4) v1=$(dstat 1 3)
ask "$TMPD/out1" -d "$(body one $N)"
t1=$(($(txb 1) - t1)) t2=$(($(txb 2) - t2))
size=$(stat -c %s "$TMPD/out1")
dec=$(hval X-IDN-Receipt | sed 's|.*/||')
pre=$(hval X-IDN-PD-Prefill | sed 's|.*/||')
jq -e --argjson n $N '(.id | startswith("cmpl-idn-2-")) and .usage.completion_tokens == $n and
	.usage.prompt_tokens == 101 and .usage.prompt_tokens_details.cached_tokens >= 96 and
	(.choices[0].text | split(" ") | length) == $n + 1' "$TMPD/out1" >/dev/null &&
	[ "$(hval X-IDN-PD-Prefill | cut -d/ -f1)" = 1 ]
tap_result "whole: the decode node's complete answer ($size bytes), naming the prefill stage" $? \
	"$(head -c 300 "$TMPD/out1") $(cat "$TMPD/hdr") $(tail -5 "$TMPD/agent1.log") $(tail -5 "$TMPD/agent2.log")"
v1=$(($(dstat 1 3) - v1))
[ "$size" -gt 20000 ] && [ "$t1" -lt $((size / 4)) ] && [ "$t2" -gt "$size" ] && [ "$v1" -le 3 ]
tap_result "whole: the answer did not cross the prefill node (A sent $t1 B, $v1 segments from the VIP; B sent $t2 B; answer $size B)" $?
f1=$(dstat 1 4)
[ "$f1" -gt "$f0" ] && [ "$(rsts 1)" = "$r1" ]
tap_result "whole: A's dataplane forwarded the client's packets to B ($((f1 - f0))), A sent no reset" $? \
	"forwarded $f0 -> $f1, resets $r1 -> $(rsts 1) $(bpftool -j map dump pinned "$PIN/node1/idn_handoff")"
bpftool -j map dump pinned "$PIN/node1/idn_handoff" |
	jq -e '[.. | objects | select(has("packets")) | .packets] | add > 0' >/dev/null
tap_result "whole: the connection's idn_handoff entry counts its packets" $? \
	"$(bpftool -j map dump pinned "$PIN/node1/idn_handoff")"
p=$(rbody 1 "$pre") d=$(rbody 2 "$dec")
[ -n "$pre" ] && [ -n "$dec" ] && jq -e '.node == 1 and .pd.stage == "prefill" and
	.pd.outcome == "handed-off" and .pd.decode_node == 2 and (.pd.handoff | length) == 16 and
	.pd.kv_blocks == 6 and .pd.kv_transport == "tcp" and .status == "ok"' <<<"$p" >/dev/null &&
	jq -e --argjson r "$pre" --arg h "$(jq -r .pd.handoff <<<"$p")" '.node == 2 and
	.pd.stage == "decode" and .pd.prefill_node == 1 and .pd.prefill_request == $r and
	.pd.handoff == $h and .status == "ok"' <<<"$d" >/dev/null &&
	verify 1 "$pre" "$pk1" && verify 2 "$dec" "$pk2"
tap_result "whole: A's receipt says handed-off, B's decode stage names it (same hand-off id); both verify" $? \
	"prefill $p decode $d $(cat "$TMPD/v1.$pre" "$TMPD/v2.$dec" 2>/dev/null)"

# ---- streamed: 1500 chunks, ~250 KB ----
N=1500
t1=$(txb 1) t2=$(txb 2) r1=$(rsts 1) f0=$(dstat 1 4) v1=$(dstat 1 3)
ask "$TMPD/out2" -N -d "$(body two $N s)"
t1=$(($(txb 1) - t1)) t2=$(($(txb 2) - t2))
size=$(stat -c %s "$TMPD/out2")
n=$(grep -c '^data: {"id":"cmpl-idn-2-' "$TMPD/out2")
[ "$n" = $N ] && grep -v '^\s*$' "$TMPD/out2" | tail -n 1 | grep -q '^data: \[DONE\]'
tap_result "streamed: the decode node's $N chunks and [DONE] ($size bytes)" $? \
	"$n $(tail -c 300 "$TMPD/out2") $(tail -5 "$TMPD/agent1.log")"
# A's device also carries the client's ACKs it forwards (one per one or two
# chunks): what counts is that no segment left A from the VIP
v1=$(($(dstat 1 3) - v1))
[ "$size" -gt 20000 ] && [ "$v1" -le 3 ] && [ "$t1" -lt "$size" ] && [ "$t2" -gt "$size" ] &&
	[ "$(dstat 1 4)" -gt "$f0" ] && [ "$(rsts 1)" = "$r1" ]
tap_result "streamed: not through A ($v1 segments from the VIP, A sent $t1 B, B sent $t2 B, answer $size B), A forwarded, no reset" $?
pre=$(hval X-IDN-PD-Prefill | sed 's|.*/||')
dec=$(hval X-IDN-Receipt | sed 's|.*/||')
for _ in $(seq 40); do rbody 2 "$dec" 2>/dev/null | jq -e .pd >/dev/null 2>&1 && break; sleep 0.05; done
rbody 1 "$pre" | jq -e '.pd.outcome == "handed-off"' >/dev/null &&
	rbody 2 "$dec" | jq -e --argjson r "$pre" '.pd.stage == "decode" and .pd.prefill_request == $r and
	(.pd.handoff | length) == 16' >/dev/null
tap_result "streamed: both receipts (handed-off, decode)" $? "$(rbody 1 "$pre") $(rbody 2 "$dec")"

# ---- keep-alive: a second request on the handed-off connection reaches B ----
cli curl -s -m 30 -H 'X-IDN-Capability: 7/0' -d "$(body three 8)" \
	"http://$TOPO_VIP4:$APORT/v1/completions" -o "$TMPD/k1" --next \
	-H 'X-IDN-Capability: 7/0' -d "$(body four 8)" "http://$TOPO_VIP4:$APORT/v1/completions" \
	-o "$TMPD/k2" -w '%{num_connects}\n' >"$TMPD/nc"
jq -e '.id | startswith("cmpl-idn-2-")' "$TMPD/k1" >/dev/null &&
	jq -e '(.id | startswith("cmpl-idn-2-")) and .usage.completion_tokens == 8' "$TMPD/k2" \
	>/dev/null && [ "$(cat "$TMPD/nc")" = 0 ]
tap_result "keep-alive: the next request on the connection is served by B" $? \
	"$(cat "$TMPD/k1" "$TMPD/k2" "$TMPD/nc")"
s1=$(a1) s2=$(a2)
jq -e '.handed_off == 3 and .handoff_fallback == 0 and .moved == 0' <<<"$s1" >/dev/null &&
	jq -e '.handoff_taken == 3 and .decoded == 3' <<<"$s2" >/dev/null
tap_result "the agents count them (/v1/agent .pd)" $? "A $s1 B $s2"

# ---- tenant-scoped state: handed off with its owner (the relay's X-IDN-Scope/Tenant) ----
ask "$TMPD/out5" -H 'X-IDN-Tenant: 7' -d "$(body tenant7 8)"
dec=$(hval X-IDN-Receipt | sed 's|.*/||')
pre=$(hval X-IDN-PD-Prefill | sed 's|.*/||')
p=$(rbody 1 "$pre") d=$(rbody 2 "$dec")
jq -e '(.id | startswith("cmpl-idn-2-")) and .usage.completion_tokens == 8 and
	.usage.prompt_tokens_details.cached_tokens >= 96' "$TMPD/out5" >/dev/null &&
	jq -e '.pd.outcome == "handed-off" and .pd.scope == "tenant" and .pd.tenant == 7' \
	<<<"$p" >/dev/null && jq -e '.pd.stage == "decode" and .pd.scope == "tenant" and
	.pd.tenant == 7 and .cache.cached_tokens >= 96' <<<"$d" >/dev/null
tap_result "tenant 7's request handed off: B serves it as tenant 7's, from the moved blocks" $? \
	"$(cat "$TMPD/out5") prefill $p decode $d"

# ---- B refuses hand-offs: A un-freezes the connection and relays ----
kill "$PID_2"
wait "$PID_2" 2>/dev/null
start_agent 2 decode --pd-handoff off
poll_until 200 eval 'in_ns "${NS_NODE[2]}" curl -s -o /dev/null "http://127.0.0.1:$APORT/healthz"'
v1=$(dstat 1 3)
ask "$TMPD/out3" -d "$(body five 8)"
v1=$(($(dstat 1 3) - v1))
pre=$(hval X-IDN-Receipt | sed 's|.*/||')
p=$(rbody 1 "$pre")
jq -e '(.id | startswith("cmpl-idn-2-")) and .usage.completion_tokens == 8' "$TMPD/out3" \
	>/dev/null && jq -e '.pd.outcome == "moved" and
	(.pd.handoff_fallback | test("refused the connection.*off"))' <<<"$p" >/dev/null &&
	jq -e '.handoff_fallback == 1' <<<"$(a1)" >/dev/null && [ "$v1" -ge 2 ]
tap_result "hand-off refused (B --pd-handoff off): relayed through A on the same connection ($v1 segments from A's VIP)" $? \
	"$(cat "$TMPD/out3") $p $(a1) $(tail -3 "$TMPD/agent1.log")"
ask "$TMPD/out4" -N -d "$(body six 8 s)"
n=$(grep -c '^data: {"id":"cmpl-idn-2-' "$TMPD/out4")
[ "$n" = 8 ] && grep -v '^\s*$' "$TMPD/out4" | tail -n 1 | grep -q '^data: \[DONE\]'
tap_result "... streamed: relayed, whole" $? "$(cat "$TMPD/out4")"
tap_done
