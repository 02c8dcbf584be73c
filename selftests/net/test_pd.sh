#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# test_pd.sh - two-stage (P/D) plans and requests with real agents and a
# real router (docs/architecture.md "Two-stage plans", docs/controller.md
# "Two-stage capabilities", docs/agent.md "Two-stage (P/D) requests"):
# idnd on a router dataplane, agent A (node 1, region 1) registered with
# --role prefill, agent B (node 2, region 2) with --role decode, each with
# its engine emulator in its node's namespace; demand in both regions
# places each capability on both.
#   - the nodes' roles reach idnd's registry;
#   - a capability registered "pd": true placed on both: the router's plan
#     (stage 1) names the prefill node only; GET /v1/placement/stage2 names
#     the decode node only, with what J needs of it (load, pending tokens,
#     tok_ns, net_us, exec_us), where to push the KV ("kv") and idnd's
#     pick by J ("pick");
#   - the same nodes serve a capability that is not two-stage: its plan
#     names both, and it has no second stage (404); a bad label is a 400;
#   - (the agents run with --pd-handoff off: the relay; the connection
#     hand-off, direct server return, is test_pd_dsr.sh's)
#   - a request to the VIP of the two-stage capability, without
#     X-IDN-Capability: A finds the capability by the VIP it reached (idnd:
#     the router's VIP table; stage 2 by ?vip=&port=), the router sends
#     it to A, A prefills it, pushes the prompt's KV to B (kvxfer, TCP),
#     B decodes from the moved blocks and its answer reaches the client
#     through A (one OpenAI response, whole and streamed); each agent signs
#     a receipt of its stage naming the other's node and request, both
#     verify (idnctl receipt verify, pinned to each node's key), both
#     name the capability; the header still works; a burst of requests
#     asks idnd once (stage 2's answers cached --pd-cache-ms), a failed
#     hand-over drops the cached pick;
#   - not a VIP (A's own address): served as one stage, counted; a VIP
#     that two capabilities claim ("vips"): ambiguous without a model
#     naming one (one stage, counted), two-stage with it;
#   - tenant- and session-scoped state (X-IDN-Tenant, X-IDN-Session): two-stage
#     to B, which may hold it (A's domain, at least A's trust): stage 2
#     announces the transfer at B, both receipts record the scope, B serves
#     the blocks to that tenant or session only (another tenant's, or a
#     public, identical prompt misses there); the same root announced at B
#     for two tenants at once: the push is taken for neither (colocated);
#     hardware-bound state: colocated; A's trust raised above B's: stage 2
#     refuses B (verdict scope), tenant state is served colocated with the
#     reason "scope", public state still goes to B; bad scoped queries 400;
#   - B killed (idnd still holds it up): the request is served by A,
#     colocated, from the blocks its prefill left (nothing recomputed but
#     the tail), whole and streamed; A's receipts say so and why.
# TAP output; exit 4 when the machine cannot run it.
if [ -z "${IDN_TEST_UNSHARED:-}" ] && [ "$(id -u)" -eq 0 ]; then
	IDN_TEST_UNSHARED=1 exec unshare -m --propagation private "$0" "$@"
fi

source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/topo.sh"

require_root
require_cmd ip nsenter curl jq ethtool findmnt
AGENT=$BUILD/idn-agent
topo_bed 2 "$AGENT" "$BUILD/idnd"
URL=http://127.0.0.1:8787
APORT=8000 KVPORT=9100
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
	-l 0.0.0.0 -P "$PIN/rtr" -t 60000 -v
poll_until 100 api -o /dev/null "$URL/v1/status"
start_agent() {	# start_agent ID ROLE [ARG...]: in node ID's namespace, on its locator
	bg_ns "${NS_NODE[$1]}" "$TMPD/agent$1.log" "$AGENT" --insecure --node-id "$1" \
		--addr4 "10.20.$1.2" --key "$TMPD/node$1.key" --controller "http://10.20.$1.1:8787" \
		--listen "0.0.0.0:$APORT" --mgmt-listen "10.20.$1.2:9000" \
		--kv-listen "10.20.$1.2:$KVPORT" --kv-insecure \
		--kv-transport tcp --hb-ms 100 --role "$2" --region "$1" --block-tokens 16 \
		--kv-bytes-per-token 256 --pd-handoff off -v "${@:3}"
	eval "PID_$1=\$BG_PID"
}
start_agent 1 prefill
start_agent 2 decode
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

st=$(api "$URL/v1/placement/stage2?cap=1792&token=00000000000004d2&size_class=2")
jq -e '.cap == 1792 and ([.candidates[] | .id] == [2]) and .pick == 2 and .verdict == "new" and
       (.candidates[0] | .kv == "10.20.2.2:9100" and .state == "up" and .exec_us > 0 and
        has("load") and has("pending_tokens") and has("tok_ns") and has("net_us"))' \
	<<<"$st" >/dev/null
tap_result "stage 2 (GET /v1/placement/stage2): the decode node, J's inputs, its KV listener, idnd's pick" $? "$st"
code=$(api -o /dev/null -w '%{http_code}' "$URL/v1/placement/stage2?cap=2048")
tap_result "no second stage for a colocated capability: 404" "$([ "$code" = 404 ]; echo $?)" "$code"
code=$(api -o /dev/null -w '%{http_code}' "$URL/v1/placement/stage2?cap=x7")
tap_result "a malformed label: 400" "$([ "$code" = 400 ]; echo $?)" "$code"
code=$(api -o /dev/null -w '%{http_code}' "$URL/v1/placement/stage2?cap=1792&token=xyz")
tap_result "a malformed token: 400" "$([ "$code" = 400 ]; echo $?)" "$code"
code=$(api -o /dev/null -w '%{http_code}' "$URL/v1/placement/stage2?vip=10.99.0.x&port=8000")$(
	api -o /dev/null -w '%{http_code}' "$URL/v1/placement/stage2?vip=$TOPO_VIP4")$(
	api -o /dev/null -w '%{http_code}' "$URL/v1/placement/stage2?cap=1792&vip=$TOPO_VIP4&port=1")
tap_result "stage 2 by VIP: a bad address, no port, both cap and vip: 400" \
	"$([ "$code" = 400400400 ]; echo $?)" "$code"

# ---- two-stage requests through the router ----
code=$(api -o /dev/null -w '%{http_code}' "$URL/v1/placement/stage2?vip=$TOPO_VIP4&port=$APORT")
ctl vip add $TOPO_VIP4 port $APORT proto tcp cap 7/0 tier 1 >/dev/null
st=$(api "$URL/v1/placement/stage2?vip=$TOPO_VIP4&port=$APORT&token=00000000000004d2&size_class=2")
[ "$code" = 404 ] && jq -e '.cap == 1792 and .pick == 2 and (.resolved | test("the one it serves"))' \
	<<<"$st" >/dev/null
tap_result "stage 2 by VIP: 404 before the VIP is in the router's table, then its capability 7/0" $? \
	"$code $st"
PROMPT=$(seq -s ' ' 1 100)	# 100 words: 6 full blocks of 16 tokens and a tail of 4
body() { printf '{"prompt":"%s %s","max_tokens":8%s}' "$1" "$PROMPT" "${2:+,\"stream\":true}"; }
# ask CURL-ARGS...: a completion to the VIP from the client, headers in $TMPD/hdr
# (no X-IDN-Capability: the agent finds the capability by the VIP)
ask() { cli curl -s -m 20 -D "$TMPD/hdr" "$@" "http://$TOPO_VIP4:$APORT/v1/completions"; }
hval() { tr -d '\r' <"$TMPD/hdr" | awk -v h="$1:" 'tolower($1) == tolower(h) { print $2 }'; }
# rcpt NODE ID -> the receipt line; rbody NODE ID -> its body
rcpt() { in_ns "${NS_NODE[$1]}" curl -s -m 5 "http://127.0.0.1:$APORT/v1/receipts/$2"; }
rbody() { rcpt "$1" "$2" | jq -c '.body | fromjson'; }
pk1=$(in_ns "${NS_NODE[1]}" curl -s "http://127.0.0.1:$APORT/v1/agent/key" | jq -r .pubkey)
pk2=$(in_ns "${NS_NODE[2]}" curl -s "http://127.0.0.1:$APORT/v1/agent/key" | jq -r .pubkey)
verify() {	# verify NODE ID PUBKEY: the receipt checks, signed by that node's key
	rcpt "$1" "$2" >"$TMPD/r$1.$2"
	"$IDNCTL" receipt verify "$TMPD/r$1.$2" key "$3" >"$TMPD/v$1.$2" 2>&1
}
rid() { hval X-IDN-Receipt | sed 's|.*/||'; }

out=$(ask -d "$(body one)")
pre=$(rid)
dec=$(hval X-IDN-Receipt-Decode | sed 's|.*/||')
[ -n "$out" ] && jq -e '(.id | startswith("cmpl-idn-2-")) and .usage.completion_tokens == 8 and
       .usage.prompt_tokens == 101 and .usage.prompt_tokens_details.cached_tokens >= 96 and
       (.choices[0].text | length > 0)' <<<"$out" >/dev/null
tap_result "a request to the VIP: prefilled on A, decoded on B from the moved blocks (one answer)" $? \
	"$out $(cat "$TMPD/hdr") $(tail -5 "$TMPD/agent1.log")"
p=$(rbody 1 "$pre") d=$(rbody 2 "$dec")
[ -n "$pre" ] && [ -n "$dec" ] && jq -e --argjson d "$dec" '.node == 1 and .pd.stage == "prefill" and .pd.outcome == "moved" and
	.pd.decode_node == 2 and .pd.decode_request == $d and .pd.kv_blocks == 6 and
	.pd.kv_bytes == 6 * 16 * 256 and .pd.kv_transport == "tcp" and .output_tokens == 1 and
	.cache.prompt_tokens == 101 and .status == "ok"' <<<"$p" >/dev/null &&
jq -e --argjson r "$pre" '.node == 2 and .pd.stage == "decode" and .pd.prefill_node == 1 and
	.pd.prefill_request == $r and .output_tokens == 8 and .cache.cached_tokens >= 96 and
	.status == "ok"' <<<"$d" >/dev/null
tap_result "the two receipts: A's prefill stage names B's request, B's decode stage names A's" $? \
	"prefill $p decode $d"
jq -e '.capability == "7/0"' <<<"$p" >/dev/null && jq -e '.capability == "7/0"' <<<"$d" >/dev/null
tap_result "no X-IDN-Capability: both receipts name the capability found by the VIP (7/0)" $? \
	"prefill $p decode $d"
verify 1 "$pre" "$pk1" && verify 2 "$dec" "$pk2" && grep -q "P/D stage prefill -> moved" "$TMPD/v1.$pre" &&
	grep -q "P/D stage decode" "$TMPD/v2.$dec"
tap_result "both receipts verify, each with its node's key (idnctl receipt verify ... key)" $? \
	"$(cat "$TMPD/v1.$pre" "$TMPD/v2.$dec")"
"$IDNCTL" receipt verify "$TMPD/r1.$pre" >/dev/null 2>&1 &&
	! "$IDNCTL" receipt verify "$TMPD/r1.$pre" key "$pk2" >/dev/null 2>&1
tap_result "A's receipt does not verify as B's" $?
log_cmd cat "$TMPD/v1.$pre" "$TMPD/v2.$dec"

out=$(ask -N -d "$(body two s)")
n=$(grep -c '^data: {"id":"cmpl-idn-2-' <<<"$out")
[ "$n" = 8 ] && tail -n 1 <<<"$out" | grep -q '^data: \[DONE\]'
tap_result "streamed: B's 8 chunks relayed through A as they come, then [DONE]" $? "$out"
pre=$(rid)
for _ in $(seq 40); do rbody 1 "$pre" | jq -e '.pd.outcome == "moved"' >/dev/null && break; sleep 0.05; done
[ -n "$pre" ] && rbody 1 "$pre" | jq -e '.pd.stage == "prefill" and .pd.outcome == "moved" and
	.pd.decode_request > 0' >/dev/null
tap_result "streamed: A's prefill receipt names B's request" $? "$(rbody 1 "$pre")"
a1=$(api "http://10.20.1.2:$APORT/v1/agent" | jq -c .pd) a2=$(api "http://10.20.2.2:$APORT/v1/agent" | jq -c .pd)
jq -e '.moved == 2 and .colocated == 0 and .decoded == 0 and .not_two_stage == 0 and
	.ambiguous == 0' <<<"$a1" >/dev/null &&
	jq -e '.moved == 0 and .colocated == 0 and .decoded == 2' <<<"$a2" >/dev/null
tap_result "the agents count them (/v1/agent .pd)" $? "A $a1 B $a2"

out=$(cli curl -s -m 20 -D "$TMPD/hdr" -H 'X-IDN-Capability: 7/0' -d "$(body hdr)" \
	"http://$TOPO_VIP4:$APORT/v1/completions")
p=$(rbody 1 "$(rid)")
jq -e '.id | startswith("cmpl-idn-2-")' <<<"$out" >/dev/null &&
	jq -e '.capability == "7/0" and .pd.outcome == "moved"' <<<"$p" >/dev/null
tap_result "X-IDN-Capability still accepted (and used as is): two-stage" $? "$out $p"

# a burst: stage 2's answer (per VIP, model and size class) reused for 1 s
s2() { api "http://10.20.1.2:$APORT/v1/agent" | jq -r ".pd.stage2.$1"; }
sleep 1.1	# what is cached now is older than --pd-cache-ms (1000)
q0=$(s2 asked) h0=$(s2 cache_hits) m0=$(api "http://10.20.1.2:$APORT/v1/agent" | jq .pd.moved)
t0=$(date +%s%N)
for i in 1 2 3 4 5 6; do ask -o /dev/null -d "$(body burst$i)"; done
t1=$(date +%s%N)
q1=$(s2 asked) h1=$(s2 cache_hits) m1=$(api "http://10.20.1.2:$APORT/v1/agent" | jq .pd.moved)
ms=$(( (t1 - t0) / 1000000 ))
# every request either asked idnd or hit the cache; the first asked; in 1 s the rest hit
[ $((q1 - q0 + h1 - h0)) = 6 ] && [ $((m1 - m0)) = 6 ] && [ $((q1 - q0)) -ge 1 ] &&
	[ $((q1 - q0)) -le $((ms / 1000 + 1)) ] && [ $((h1 - h0)) -ge 1 ]
tap_result "a burst of 6 two-stage requests in $ms ms: idnd asked $((q1 - q0)) times, $((h1 - h0)) cache hits" \
	$? "asked $q0 -> $q1 hits $h0 -> $h1 moved $m0 -> $m1"

# not a VIP: A's own address reached directly (idnd: no capability there)
n0=$(api "http://10.20.1.2:$APORT/v1/agent" | jq .pd.not_two_stage)
out=$(in_ns "${NS_NODE[1]}" curl -s -m 20 -D "$TMPD/hdr" -d "$(body direct)" \
	"http://10.20.1.2:$APORT/v1/completions")
c=$(rbody 1 "$(rid)")
n1=$(api "http://10.20.1.2:$APORT/v1/agent" | jq .pd.not_two_stage)
jq -e '(.id | startswith("cmpl-idn-1-")) and .usage.completion_tokens == 8' <<<"$out" >/dev/null &&
	jq -e 'has("pd") | not' <<<"$c" >/dev/null && [ "$n1" = $((n0 + 1)) ]
tap_result "not a VIP (A's own address): served by A as one stage, counted (not_two_stage $n0 -> $n1)" \
	$? "$out $c"

# a second two-stage capability claims the VIP ("vips"): which one is it?
code=$(post /v1/caps "{\"class\":9,\"name\":\"chat-pd2\",\"pd\":true,\"vips\":[\"$TOPO_VIP4:$APORT\"],\"resources\":{\"mem_gb\":$mem}}")
st=$(api "$URL/v1/placement/stage2?vip=$TOPO_VIP4&port=$APORT")
st2=$(api "$URL/v1/placement/stage2?vip=$TOPO_VIP4&port=$APORT&model=chat-pd")
[ "$code" = 201 ] && jq -e '.error | test("serves 2 capabilities")' <<<"$st" >/dev/null &&
	jq -e '.cap == 1792 and .pick == 2' <<<"$st2" >/dev/null &&
	api "$URL/v1/caps" | jq -e --arg v "$TOPO_VIP4:$APORT" \
		'[.[] | select(.class == 9) | .vips] == [[$v]]' >/dev/null
tap_result "two capabilities on the VIP: stage 2 409 without a model, the one the model names with it" \
	$? "$code $st $st2"
code=$(post /v1/caps "{\"class\":10,\"name\":\"x\",\"vips\":[\"$TOPO_VIP4\"],\"resources\":{\"mem_gb\":1}}")
tap_result "a VIP without its port in \"vips\": 400" "$([ "$code" = 400 ]; echo $?)" "$code"
sleep 1.1	# A's cached answer for the VIP (one capability) is older than --pd-cache-ms
a0=$(api "http://10.20.1.2:$APORT/v1/agent" | jq .pd.ambiguous)
out=$(ask -d "$(body ambiguous)")
c=$(rbody 1 "$(rid)")
a1=$(api "http://10.20.1.2:$APORT/v1/agent" | jq .pd.ambiguous)
jq -e '(.id | startswith("cmpl-idn-1-")) and .usage.completion_tokens == 8' <<<"$out" >/dev/null &&
	jq -e 'has("pd") | not' <<<"$c" >/dev/null && [ "$a1" = $((a0 + 1)) ]
tap_result "ambiguous (no model): served by A as one stage, counted (ambiguous $a0 -> $a1)" $? \
	"$out $c"
bodym() { printf '{"model":"%s","prompt":"%s %s","max_tokens":8}' "$1" "$2" "$PROMPT"; }
out=$(ask -d "$(bodym chat-pd named)")
p=$(rbody 1 "$(rid)")
jq -e '.id | startswith("cmpl-idn-2-")' <<<"$out" >/dev/null &&
	jq -e '.capability == "7/0" and .pd.outcome == "moved"' <<<"$p" >/dev/null
tap_result "the model names one of them (\"chat-pd\"): two-stage, 7/0" $? "$out $p"
code=$(api -o /dev/null -w '%{http_code}' -X DELETE "$URL/v1/caps/2304")
st=$(api "$URL/v1/placement/stage2?vip=$TOPO_VIP4&port=$APORT")
[ "$code" = 200 ] && jq -e '.cap == 1792' <<<"$st" >/dev/null
tap_result "the second capability deleted: the VIP's is 7/0 again" $? "$code $st"
sleep 1.1	# A's cached "ambiguous" is older than --pd-cache-ms

# ---- tenant- and session-scoped state: two-stage only to a node that may hold it ----
# (the migrations' rule: a decode node of A's domain and at least its trust)
nodes=$(api "$URL/v1/nodes")
jq -e '([.[] | select(.id == 2) | .trust] | .[0]) >= ([.[] | select(.id == 1) | .trust] | .[0]) and
       ([.[] | .domain] | unique | length) == 1' <<<"$nodes" >/dev/null
tap_result "A and B: one domain, B's trust at least A's (B may hold A's tenant state)" $? \
	"$(jq -c '[.[] | {id, trust, domain}]' <<<"$nodes")"
# bdirect HDR... PROMPT-WORD: the same prompt straight to B (one stage there), its usage
bdirect() {
	in_ns "${NS_NODE[2]}" curl -s -m 20 "${@:1:$#-1}" -d "$(body "${!#}")" \
		"http://10.20.2.2:$APORT/v1/completions"
}
out=$(ask -H 'X-IDN-Tenant: 7' -d "$(body tenant7)")
pre=$(rid)
dec=$(hval X-IDN-Receipt-Decode | sed 's|.*/||')
p=$(rbody 1 "$pre") d=$(rbody 2 "$dec")
jq -e '(.id | startswith("cmpl-idn-2-")) and .usage.completion_tokens == 8 and
       .usage.prompt_tokens_details.cached_tokens >= 96' <<<"$out" >/dev/null &&
	jq -e '.pd.stage == "prefill" and .pd.outcome == "moved" and .pd.scope == "tenant" and
	       .pd.tenant == 7 and .pd.decode_node == 2 and .pd.kv_blocks == 6' <<<"$p" >/dev/null &&
	jq -e '.pd.stage == "decode" and .pd.scope == "tenant" and .pd.tenant == 7 and
	       .cache.cached_tokens >= 96' <<<"$d" >/dev/null
tap_result "tenant 7's request: two-stage to B (allowed), both receipts record the scope" $? \
	"$out prefill $p decode $d $(tail -3 "$TMPD/agent1.log")"
o8=$(bdirect -H 'X-IDN-Tenant: 8' tenant7) o0=$(bdirect tenant7) o7=$(bdirect -H 'X-IDN-Tenant: 7' tenant7)
jq -e '.usage.prompt_tokens_details.cached_tokens == 0' <<<"$o8" >/dev/null &&
	jq -e '.usage.prompt_tokens_details.cached_tokens == 0' <<<"$o0" >/dev/null &&
	jq -e '.usage.prompt_tokens_details.cached_tokens >= 96' <<<"$o7" >/dev/null
tap_result "B holds the moved blocks in tenant 7's scope: tenant 8's and a public identical prompt miss, tenant 7's hits" \
	$? "t8 $o8 public $o0 t7 $o7"

out=$(ask -H 'X-IDN-Session: 0x5e55' -d "$(body sess)")
p=$(rbody 1 "$(rid)")
os=$(bdirect -H 'X-IDN-Session: 0x5e55' sess) ox=$(bdirect -H 'X-IDN-Session: 0x5e56' sess)
jq -e '.id | startswith("cmpl-idn-2-")' <<<"$out" >/dev/null &&
	jq -e '.pd.outcome == "moved" and .pd.scope == "session"' <<<"$p" >/dev/null &&
	jq -e '.usage.prompt_tokens_details.cached_tokens >= 96' <<<"$os" >/dev/null &&
	jq -e '.usage.prompt_tokens_details.cached_tokens == 0' <<<"$ox" >/dev/null
tap_result "session-scoped: two-stage to B, the blocks there its session's only" $? \
	"$out prefill $p same $os other $ox"

# the same root announced at B for another owner meanwhile (tenant 9): whose is the
# transfer? taken for neither, so tenant 7's request is served colocated
root=
for _ in $(seq 60); do
	root=$(api "$URL/v1/nodes/1/state" | jq -r '[.descriptors[]? | select(.scope == "tenant" and
		.tenant == 7) | .root] | .[0] // empty')
	[ -n "$root" ] && break
	sleep 0.05
done
u0=$(api "http://10.20.2.2:$APORT/v1/agent" | jq .kv_rx_unannounced)
code=$(api -o /dev/null -w '%{http_code}' -X POST \
	-d "{\"root\":\"$root\",\"scope\":\"tenant\",\"tenant\":9}" "http://10.20.2.2:9000/v1/kv/expect")
out=$(ask -H 'X-IDN-Tenant: 7' -d "$(body tenant7)")
c=$(rbody 1 "$(rid)")
u1=$(api "http://10.20.2.2:$APORT/v1/agent" | jq .kv_rx_unannounced)
[ -n "$root" ] && [ "$code" = 200 ] && [ "$u1" = $((u0 + 1)) ] &&
	jq -e '.id | startswith("cmpl-idn-1-")' <<<"$out" >/dev/null &&
	jq -e '.pd.stage == "colocated" and (.pd.reason | test("KV push to node 2"))' <<<"$c" >/dev/null
tap_result "root $root announced at B for tenants 9 and 7 at once: the push taken for neither, colocated" \
	$? "$code unannounced $u0 -> $u1 $out $c"

out=$(ask -H 'X-IDN-Scope: hardware' -d "$(body hw)")
c=$(rbody 1 "$(rid)")
jq -e '.id | startswith("cmpl-idn-1-")' <<<"$out" >/dev/null &&
	jq -e '.pd.stage == "colocated" and .pd.scope == "hardware" and
	       (.pd.reason | test("scope: hardware-bound"))' <<<"$c" >/dev/null
tap_result "hardware-bound state: never two-stage (colocated on A, the reason says scope)" $? "$out $c"

# A's trust above B's: no decode node may hold A's tenant state
t1=$(jq '.[] | select(.id == 1) | .trust' <<<"$nodes")
t2=$(jq '.[] | select(.id == 2) | .trust' <<<"$nodes")
hi=$((t2 < 7 ? t2 + 1 : 7))
code=$(post /v1/identities/1/trust "{\"trust\":$hi}")
st=$(api "$URL/v1/placement/stage2?cap=1792&scope=tenant&tenant=7&root=00000000000000aa&from=1")
[ "$t2" -lt 7 ] && [ "$code" = 200 ] &&
	jq -e '.scope == "tenant" and .scope_refused == [2] and .candidates == [] and
	       (has("pick") | not) and .verdict == "scope"' <<<"$st" >/dev/null
tap_result "stage 2 for tenant state with A's trust $hi above B's $t2: B refused, no pick (verdict scope)" \
	$? "$code $st"
out=$(ask -H 'X-IDN-Tenant: 7' -d "$(body tenant7b)")
c=$(rbody 1 "$(rid)")
jq -e '(.id | startswith("cmpl-idn-1-")) and .usage.completion_tokens == 8' <<<"$out" >/dev/null &&
	jq -e '.pd.stage == "colocated" and .pd.scope == "tenant" and
	       (.pd.reason | test("scope"))' <<<"$c" >/dev/null
tap_result "... so tenant 7's request is served colocated on A, the reason says scope" $? "$out $c"
out=$(ask -d "$(body public-while-scoped)")
jq -e '.id | startswith("cmpl-idn-2-")' <<<"$out" >/dev/null
tap_result "... while a public request still goes two-stage to B" $? "$out"
code=$(api -o /dev/null -w '%{http_code}' "$URL/v1/placement/stage2?cap=1792&scope=tenant&root=aa&from=1")$(
	api -o /dev/null -w '%{http_code}' "$URL/v1/placement/stage2?cap=1792&scope=hardware")$(
	api -o /dev/null -w '%{http_code}' "$URL/v1/placement/stage2?cap=1792&scope=tenant&tenant=7&from=1")$(
	api -o /dev/null -w '%{http_code}' "$URL/v1/placement/stage2?cap=1792&scope=tenant&tenant=7&root=aa&from=9")
tap_result "stage 2 scoped: no tenant, hardware, no root, an unknown node: 400" \
	"$([ "$code" = 400400400400 ]; echo $?)" "$code"
post /v1/identities/1/trust "{\"trust\":$t1}" >/dev/null

# the hand-over fails after the KV moved: B's engine asleep answers 503
mgmt() { api -o /dev/null -w '%{http_code}' -X POST -d '{}' "http://10.20.2.2:9000$1"; }
code=$(mgmt /sleep)
out=$(ask -d "$(body five)")
c=$(rbody 1 "$(rid)")
[ "$code" = 200 ] && [ -n "$out" ] && jq -e '(.id | startswith("cmpl-idn-1-")) and
	.usage.completion_tokens == 8 and .usage.prompt_tokens_details.cached_tokens >= 96' \
	<<<"$out" >/dev/null && jq -e '.pd.stage == "colocated" and
	(.pd.reason | test("decode node 2: HTTP 503"))' <<<"$c" >/dev/null
tap_result "B refuses after the push (asleep, 503): served colocated by A, the receipt says why" $? \
	"$code $out $c"
d=$(s2 cache_dropped)
[ "$d" -ge 1 ]
tap_result "the failed hand-over dropped B's cached pick (cache_dropped $d)" $?
out=$(ask -N -d "$(body six s)")
n=$(grep -c '^data: {"id":"cmpl-idn-1-' <<<"$out")
c=$(rbody 1 "$(rid)")
[ "$n" = 8 ] && tail -n 1 <<<"$out" | grep -q '^data: \[DONE\]' &&
	jq -e '.pd.stage == "prefill" and .pd.outcome == "colocated" and
	(.pd.reason | test("decode node 2: HTTP 503"))' <<<"$c" >/dev/null
tap_result "... streamed: the relay falls back before its first byte, A streams it whole" $? \
	"$out $c"
mgmt /wake_up >/dev/null

# the same burst without the cache (A restarted with --pd-cache-ms 0): one round trip each
kill "$PID_1"
wait "$PID_1" 2>/dev/null
start_agent 1 prefill --pd-cache-ms 0
poll_until 200 eval '[ "$(s2 cache_ms)" = 0 ]'
poll_until 200 eval 'api "$URL/v1/nodes" | jq -e ".[] | select(.id == 1) | .state == \"up\"" >/dev/null'
poll_until 100 eval '[ "$(cands 7/0)" = "[1]" ]'
q0=$(s2 asked) h0=$(s2 cache_hits) m0=$(api "http://10.20.1.2:$APORT/v1/agent" | jq .pd.moved)
for i in 1 2 3 4 5 6; do ask -o /dev/null -d "$(body nocache$i)"; done
q1=$(s2 asked) h1=$(s2 cache_hits) m1=$(api "http://10.20.1.2:$APORT/v1/agent" | jq .pd.moved)
[ $((q1 - q0)) = 6 ] && [ $((h1 - h0)) = 0 ] && [ $((m1 - m0)) = 6 ]
tap_result "the same burst with --pd-cache-ms 0: idnd asked $((q1 - q0)) times, $((h1 - h0)) cache hits" \
	$? "asked $q0 -> $q1 hits $h0 -> $h1 moved $m0 -> $m1 $(tail -3 "$TMPD/agent1.log")"

# failure: B is lost (idnd still holds it up, -t 60 s: stage 2 still picks it)
kill -9 "$PID_2"
wait "$PID_2" 2>/dev/null
out=$(ask -d "$(body three)")
got=$(rid)
[ -n "$out" ] && jq -e '(.id | startswith("cmpl-idn-1-")) and .usage.completion_tokens == 8 and
       .usage.prompt_tokens_details.cached_tokens >= 96' <<<"$out" >/dev/null
tap_result "B killed: A serves the request colocated, from its prefill's blocks" $? \
	"$out $(tail -3 "$TMPD/agent1.log")"
c=$(rbody 1 "$got")
pre=$(jq -r '.pd.prefill_request' <<<"$c")
p=$(rbody 1 "$pre")
[ -n "$got" ] && [ -n "$c" ] && [ -n "$p" ] && jq -e '.pd.stage == "colocated" and .pd.decode_node == 2 and (.pd.reason | test("KV push to node 2")) and
       .output_tokens == 8 and .status == "ok"' <<<"$c" >/dev/null &&
jq -e '.pd.stage == "prefill" and .pd.outcome == "colocated" and .pd.decode_node == 2 and
       (.pd.reason | length > 0)' <<<"$p" >/dev/null && verify 1 "$got" "$pk1" && verify 1 "$pre" "$pk1"
tap_result "its receipts say so: colocated (why), the prefill stage's outcome; both verify" $? \
	"served $c prefill $p"
log_cmd cat "$TMPD/v1.$got" "$TMPD/v1.$pre"
out=$(ask -N -d "$(body four s)")
n=$(grep -c '^data: {"id":"cmpl-idn-1-' <<<"$out")
[ "$n" = 8 ] && tail -n 1 <<<"$out" | grep -q '^data: \[DONE\]'
tap_result "streamed with B gone: served colocated by A, whole" $? "$out"
tap_done
