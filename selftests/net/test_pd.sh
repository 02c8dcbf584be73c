#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# test_pd.sh - two-stage (P/D) plans with real agents and a real router map
# (docs/architecture.md "Two-stage plans", docs/controller.md "Two-stage
# capabilities"): idnd on a router dataplane, agent A (node 1, region 1)
# registered with --role prefill, agent B (node 2, region 2) with --role
# decode; demand in both regions places each capability on both.
#   - the nodes' roles reach idnd's registry;
#   - a capability registered "pd": true placed on both: the router's plan
#     (stage 1) names the prefill node only; GET /v1/placement/stage2 names
#     the decode node only, with what J needs of it (load, pending tokens,
#     tok_ns, net_us, exec_us) and where to push the KV ("kv");
#   - the same nodes serve a capability that is not two-stage: its plan
#     names both, and it has no second stage (404); a bad label is a 400.
# TAP output; exit 4 when the machine cannot run it.
if [ -z "${IDN_TEST_UNSHARED:-}" ] && [ "$(id -u)" -eq 0 ]; then
	IDN_TEST_UNSHARED=1 exec unshare -m --propagation private "$0" "$@"
fi

source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/topo.sh"

require_root
require_cmd ip nsenter curl jq ethtool findmnt
AGENT=$BUILD/idn-agent
require_file "$AGENT" "$BUILD/idnd" "$IDNCTL" "$BUILD/bpf/idn_pass.bpf.o" \
	"$BUILD/bpf/idn_steer.bpf.o" "$BUILD/bpf/idn_node.bpf.o"
probe_netns || skip_all "cannot create network namespaces"
probe_bpffs || skip_all "cannot mount bpffs"

topo_setup 2 || { tap_fail "test bed setup"; tap_done; }
topo_dataplane || { tap_fail "dataplane attach"; tap_done; }
on_cleanup topo_dataplane_detach
URL=http://127.0.0.1:8787
api() { in_ns "$NS_RTR" curl -s -m 5 "$@"; }
post() { api -o /dev/null -w '%{http_code}' -X POST --data-binary "$2" "$URL$1"; }
poll_until() { local n=$1; shift; for _ in $(seq "$n"); do "$@" && return 0; sleep 0.05; done; return 1; }
# the router's plans of a capability (CLASS/VARIANT): their candidates' nodes, active slot
cands() {
	in_ns "$NS_RTR" "$IDNCTL" -P "$PIN/rtr" -j plan show | jq -c --arg cap "$1" \
		'(.. | objects | select(has("active_slot")) | .active_slot) as $s |
		 [.. | objects | select(has("candidates") and .slot == $s and .cap == $cap) |
		  .candidates[] | .node] | unique'
}

bg_ns "$NS_RTR" "$TMPD/idnd.log" "$BUILD/idnd" --insecure --enrol open -d "$TMPD/idnd.db" \
	-P "$PIN/rtr" -t 60000 -v
poll_until 100 api -o /dev/null "$URL/v1/status"
start_agent() {	# start_agent ID PORT KVPORT ROLE
	bg_ns "$NS_RTR" "$TMPD/agent$1.log" "$AGENT" --insecure --node-id "$1" \
		--addr4 "10.20.$1.2" --key "$TMPD/node$1.key" --controller $URL \
		--listen "127.0.0.1:$2" --kv-listen "127.0.0.1:$3" --kv-insecure \
		--kv-transport tcp --hb-ms 100 --role "$4" --region "$1"
}
start_agent 1 8000 9100 prefill
start_agent 2 8001 9101 decode
upn() { [ "$(api "$URL/v1/nodes" | jq -r '[.[] | select(.state == "up")] | length')" = 2 ]; }
poll_until 400 upn
roles=$(api "$URL/v1/nodes" | jq -c '[.[] | {id, role: (.role // "both")}]')
[ "$roles" = '[{"id":1,"role":"prefill"},{"id":2,"role":"decode"}]' ]
tap_result "agents registered with their roles (prefill, decode)" $? "$roles $(tail -3 "$TMPD/agent1.log")"

mem=$(api "$URL/v1/nodes" | jq '[.[] | .mem_gb] | min * 0.3')
c1=$(post /v1/caps "{\"class\":7,\"name\":\"chat-pd\",\"pd\":true,\"resources\":{\"mem_gb\":$mem}}")
c2=$(post /v1/caps "{\"class\":8,\"name\":\"chat\",\"resources\":{\"mem_gb\":$mem}}")
for r in 1 2; do	# demand in each node's region: a replica on each
	post /v1/demand "{\"cap\":1792,\"region\":$r,\"rps\":50}" >/dev/null
	post /v1/demand "{\"cap\":2048,\"region\":$r,\"rps\":50}" >/dev/null
done
placed() {
	post /v1/placement/solve '{}' >/dev/null
	[ "$(api "$URL/v1/placement" | jq -c '[.[] | select(.cap == 1792) | .node] | sort')" = "[1,2]" ] &&
	[ "$(api "$URL/v1/placement" | jq -c '[.[] | select(.cap == 2048) | .node] | sort')" = "[1,2]" ]
}
poll_until 40 placed
tap_result "capabilities 7/0 (pd) and 8/0 placed on both nodes" $? \
	"$c1 $c2 $(api "$URL/v1/placement" | jq -c .)"
api "$URL/v1/caps" | jq -e '[.[] | select(.class == 7) | .pd] == [true]' >/dev/null
tap_result "the capability is registered two-stage (\"pd\": true)" $? "$(api "$URL/v1/caps" | jq -c .)"

poll_until 100 eval '[ "$(cands 7/0)" = "[1]" ]'
tap_result "stage 1, the router's plan of 7/0: the prefill node only" $? "$(cands 7/0)"
poll_until 100 eval '[ "$(cands 8/0)" = "[1,2]" ]'
tap_result "a capability that is not two-stage: both nodes, roles aside" $? "$(cands 8/0)"

st=$(api "$URL/v1/placement/stage2?cap=1792")
jq -e '.cap == 1792 and ([.candidates[] | .id] == [2]) and
       (.candidates[0] | .kv == "127.0.0.1:9101" and .state == "up" and .exec_us > 0 and
        has("load") and has("pending_tokens") and has("tok_ns") and has("net_us"))' \
	<<<"$st" >/dev/null
tap_result "stage 2 (GET /v1/placement/stage2): the decode node, J's inputs, its KV listener" $? "$st"
code=$(api -o /dev/null -w '%{http_code}' "$URL/v1/placement/stage2?cap=2048")
tap_result "no second stage for a colocated capability: 404" "$([ "$code" = 404 ]; echo $?)" "$code"
code=$(api -o /dev/null -w '%{http_code}' "$URL/v1/placement/stage2?cap=x7")
tap_result "a malformed label: 400" "$([ "$code" = 400 ]; echo $?)" "$code"
tap_done
