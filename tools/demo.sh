#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# demo.sh - IDN's main job: the whole system on one machine. Builds, brings
# up a small network in namespaces, attaches the steering dataplane, starts
# the controller idnd (embedded: SQLite in a temp dir) on the router and an
# idn-agent with its engine emulator on every node. Capabilities are
# registered through idnd's API; idnd places them, explains a decision and
# compiles the plans into the dataplane's maps. Real OpenAI-style requests
# go to the VIP and are served by the emulated engines, with routing
# receipts (dataplane) and signed execution receipts (agents, verified).
# An agent's telemetry steers new flows away from a busy node; an agent
# that stops heartbeating is marked down and its new flows move. idnd
# (--migrate) decides to move a session's cached KV prefix off the busy
# node (eq. 8; KV transfer between agents, policy auto), re-points the
# router's affinity after the commit, and the next turn is served from
# the moved blocks. A two-stage (P/D) capability: the router sends a
# request to the prefill node, which prefills it, pushes the prompt's KV
# to the decode node idnd's stage 2 picks, and hands the client's TCP
# connection over to it (TCP_REPAIR), so the decode node answers the
# client directly (the relay is the fallback); each node signs the receipt of its stage. Then everything is cleaned
# up; the cold activation through idn.ko runs last, in a QEMU guest.
#
#   client --> router (XDP: idn_xdp; idnd) --IPIP / IP6IP6--> node1 node2 node3
#                                        (TC: idn_decap; idn-agent + engine :8000)
#
# Usage: tools/demo.sh            (as root; after tools/deps.sh)
#        DEBUG_TESTENV=1 tools/demo.sh   opens a shell in the test bed at the end
# Everything it creates (namespaces, mounts, processes, temp dirs) is
# removed on exit, also on Ctrl-C (by name and pid only).
set -u

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT" || exit 1

if [ "$(id -u)" -ne 0 ]; then
	echo "demo.sh: run as root (it creates network namespaces and attaches BPF)" >&2
	exit 1
fi

B=$'\e[1m' D=$'\e[2m' G=$'\e[32m' Y=$'\e[33m' N=$'\e[0m'
[ -t 1 ] || B='' D='' G='' Y='' N=''
step() { printf '\n%s== %s%s\n' "$B" "$*" "$N"; }
say()  { printf '%s\n' "$*"; }
# show LABEL CMD...: print the command line as typed, then its output indented
show() {
	local label=$1
	shift
	printf '%s$ %s%s\n' "$D" "$label" "$N"
	"$@" 2>&1 | sed 's/^/    /'
	return "${PIPESTATUS[0]}"
}
die() { printf 'demo.sh: %s\n' "$*" >&2; exit 1; }
T_START=$(date +%s)

O=${O:-build}
export O
NEED=("$O/idnctl" "$O/idn-stamp" "$O/idnd" "$O/idn-agent" "$O/bpf/idn_steer.bpf.o"
      "$O/bpf/idn_node.bpf.o" "$O/bpf/idn_pass.bpf.o")
step "Building (make ${NEED[*]})"
make -s O="$O" "${NEED[@]}" >/dev/null 2>"/tmp/idn-demo-make.$$" || {
	tail -n 20 "/tmp/idn-demo-make.$$" >&2; rm -f "/tmp/idn-demo-make.$$"; die "make failed"; }
rm -f "/tmp/idn-demo-make.$$"
for f in "${NEED[@]}"; do
	[ -e "$f" ] || die "missing $f after make"
done
for c in jq curl nsenter openssl; do
	command -v $c >/dev/null || die "needs $c (tools/deps.sh)"
done
say "up to date: ${NEED[*]}"

# shellcheck source=../selftests/net/lib.sh
source "$ROOT/selftests/net/lib.sh"
# shellcheck source=../selftests/net/topo.sh
source "$ROOT/selftests/net/topo.sh"

IDND=$BUILD/idnd
AGENT=$BUILD/idn-agent
API=https://127.0.0.1:8787	# idnd, seen from the router namespace (mutual TLS)
APORT=8000			# the engines' OpenAI API, also the VIPs' port
TELE=7777
KVPORT=9100			# the agents' KV transfer listeners
MPORT=9000			# the agents' management listeners (orders, KV push), on the locator
HB_TMO=1000

step "1. Test bed: 1 client, 1 router, 3 nodes (network namespaces, veth)"
topo_setup 3 || die "could not build the test bed"
cat <<EOF
    client $TOPO_CLI4 $TOPO_CLI6
      |
    router r0 (XDP steering; idnd :8787)    outer source $TOPO_SRC4 / $TOPO_SRC6
      |--- node1 10.20.1.2 fd00:20:1::2   idn-agent: engine emulator :$APORT
      |--- node2 10.20.2.2 fd00:20:2::2   idn-agent: engine emulator :$APORT
      '--- node3 10.20.3.2 fd00:20:3::2   idn-agent: engine emulator :$APORT
    VIPs $TOPO_VIP4 and $TOPO_VIP6 port $APORT, descriptor prefix ${TOPO_PREFIX6}/48
EOF

step "2. Dataplane"
show "idnctl dp attach dev r0 mode xdp            (router, client side)" ctl dp attach dev r0 mode xdp ||
	die "dp attach failed"
on_cleanup topo_dataplane_detach
for i in 1 2 3; do
	ctl dp attach dev "r$i" mode xdp >/dev/null || die "dp attach r$i failed"
	on_cleanup "ctl dp detach dev r$i"
done
say "${D}\$ idnctl dp attach dev r1 mode xdp   (and r2, r3: node side, for the agents' telemetry)${N}"
for i in 1 2 3; do
	mkdir -p "$PIN/node$i"
	_xdp_pass "${NS_NODE[$i]}" "n$i" || die "XDP_PASS on n$i"
	ctl_node $i dp decap attach dev "n$i" node $i >/dev/null || die "decap attach failed"
done
say "${D}\$ idnctl dp decap attach dev n1 node 1     (node1; and n2, n3)${N}"
_xdp_pass "$NS_CLI" c0 || die "XDP_PASS on c0"
show "idnctl dp set src4 $TOPO_SRC4 src6 $TOPO_SRC6 prefix6 ${TOPO_PREFIX6}/48 telemetry on port $TELE" \
	ctl dp set src4 "$TOPO_SRC4" src6 "$TOPO_SRC6" prefix6 "${TOPO_PREFIX6}/48" \
	telemetry on port $TELE || die "dp set failed"
ctl dp set receipt-sample 1 >/dev/null 2>&1	# routing receipts for every new flow

step "3. Controller and agents"
# mutual TLS on the control plane (docs/security.md): a CA and a certificate
# per program, the role in the subject's OU; servers name their addresses
P=$TMPD/pki
{ mk_ca "$P" && mk_cert "$P" admin admin admin &&
  mk_cert "$P" idnd controller idnd IP:10.20.1.1 IP:10.20.2.1 IP:10.20.3.1 &&
  mk_cert "$P" node-1 node node-1 IP:10.20.1.2 && mk_cert "$P" node-2 node node-2 IP:10.20.2.2 &&
  mk_cert "$P" node-3 node node-3 IP:10.20.3.2; } || die "could not make the certificates (openssl)"
say "${D}\$ openssl ...   (a CA; certificates with OU admin, controller (idnd), node (CN node-1..3))${N}"
ADMIN=(--cacert "$P/ca.pem" --cert "$P/admin.pem" --key "$P/admin.key")	# curl as admin
bg_ns "$NS_RTR" "$TMPD/idnd.log" "$IDND" -d "$TMPD/idnd.db" -l 0.0.0.0 -p 8787 \
	-P "$PIN/rtr" -t $HB_TMO --ca "$P/ca.pem" --cert "$P/idnd.pem" --key "$P/idnd.key" \
	--migrate
IDND_PID=$BG_PID
for _ in $(seq 100); do
	in_ns "$NS_RTR" curl -s "${ADMIN[@]}" -o /dev/null $API/v1/status && break
	sleep 0.05
done
say "${D}\$ idnd -d \$TMP/idnd.db -l 0.0.0.0 -P \$PIN -t $HB_TMO --ca ca.pem --cert idnd.pem --key idnd.key --migrate${N}"
say "  (router: SQLite store, drives the maps; its API speaks mutual TLS only;"
say "   --migrate: it decides where sessions' cached state should be, eq. 8)"
k() { in_ns "$NS_RTR" "$IDNCTL" -C "$API" --ca "$P/ca.pem" --cert "$P/admin.pem" \
	--key "$P/admin.key" "$@"; }
show "idnctl controller status" k controller status || die "idnd did not start: $(cat "$TMPD/idnd.log")"
net=(0 40 120 200)
trust=(0 3 6 6)
role=(x prefill both decode)	# stages of two-stage (P/D) capabilities they serve
declare -A AGENT_PID=()
# the KV key the agents share: KV listeners are authenticated by default
(umask 077 && head -c 32 /dev/urandom >"$TMPD/kv.key")
for i in 1 2 3; do
	bg_ns "${NS_NODE[$i]}" "$TMPD/agent$i.log" "$AGENT" --node-id $i \
		--addr4 "10.20.$i.2" --addr6 "fd00:20:$i::2" --region $i --trust "${trust[$i]}" \
		--net-us "${net[$i]}" --role "${role[$i]}" --controller "https://10.20.$i.1:8787" --hb-ms 200 \
		--tls-ca "$P/ca.pem" --tls-cert "$P/node-$i.pem" --tls-key "$P/node-$i.key" \
		--telemetry "10.20.$i.1:$TELE" --tele-ms 50 --listen "[::]:$APORT" \
		--model chat-8b --speed 1 --key "$TMPD/node$i.key" \
		--kv-listen "10.20.$i.2:$KVPORT" --kv-key "$TMPD/kv.key" --kv-transport auto \
		--mgmt-listen "10.20.$i.2:$MPORT" --artifact-dir "$TMPD" \
		--handoff-map "$PIN/node$i/idn_handoff" \
		--kv-peers "10.20.1.2:$KVPORT,10.20.2.2:$KVPORT,10.20.3.2:$KVPORT"
	AGENT_PID[$i]=$BG_PID
done
say "${D}\$ idn-agent --node-id 1 --addr4 10.20.1.2 --addr6 fd00:20:1::2 --region 1 --trust 3 --net-us 40 --role prefill \\"
say "      --controller https://10.20.1.1:8787 --tls-ca ca.pem --tls-cert node-1.pem --tls-key node-1.key \\"
say "      --telemetry 10.20.1.1:$TELE --listen [::]:$APORT \\"
say "      --kv-listen 10.20.1.2:$KVPORT --kv-key \$TMP/kv.key --kv-transport auto \\"
say "      --mgmt-listen 10.20.1.2:$MPORT \\"
say "      --artifact-dir \$TMP --kv-peers 10.20.1.2:$KVPORT,...   (node1; and 2 (role both), 3 (decode))${N}"
# enrolment (docs/security.md): each agent's key waits until the operator
# approves it, and the operator (not the agent) grants its trust level
for _ in $(seq 100); do
	n=$(k -j node identity 2>/dev/null | jq '[.[] | select(.state == "pending")] | length')
	[ "${n:-0}" = 3 ] && break
	sleep 0.05
done
show "idnctl node identity      (three node keys wait for approval)" k node identity
for i in 1 2 3; do
	k node approve $i >/dev/null && k node trust $i "${trust[$i]}" >/dev/null ||
		die "enrolling node $i failed: $(tail -n 3 "$TMPD/idnd.log")"
done
say "${D}\$ idnctl node approve 1; idnctl node trust 1 3   (and 2, 3: enrol each key, grant its trust)${N}"
up=0
for _ in $(seq 100); do
	up=$(in_ns "$NS_RTR" curl -s "${ADMIN[@]}" $API/v1/nodes | jq '[.[] | select(.state == "up")] | length')
	[ "${up:-0}" = 3 ] && break
	sleep 0.05
done
[ "${up:-0}" = 3 ] || die "agents did not register: $(tail -n 3 "$TMPD"/agent*.log)"
say "  the agents registered their resource profiles R and heartbeat every 200 ms:"
show "idnctl node list          (idnd's registry)" k node list

step "4. Capabilities through the API; idnd places them and compiles the plans"
post() {	# post PATH JSON
	printf '%s$ curl --cert admin.pem ... -d %s %s%s\n' "$D" "'$2'" "$API$1" "$N"
	in_ns "$NS_RTR" curl -s "${ADMIN[@]}" -o /dev/null -w '    HTTP %{http_code}\n' -d "$2" "$API$1"
}
head -c 8388608 /dev/urandom >"$TMPD/chat-8b.safetensors"	# the "weights": a real file
(cd "$TMPD" && sha256sum chat-8b.safetensors >chat-8b.safetensors.sha256)
post /v1/caps "{\"class\":1001,\"name\":\"chat-8b\",\"tier\":1,\"latency_us\":600,\"resources\":{\"mem_gb\":8},\"realization\":{\"artifact\":\"$TMPD/chat-8b.safetensors\",\"runtime\":\"emulator\"}}"
post /v1/caps '{"class":1002,"name":"records-summarizer","latency_us":900,"resources":{"mem_gb":8},"security":{"min_trust":5,"privacy":"tenant"}}'
say "  demand (requests/s per region): chat-8b in regions 1-3, records-summarizer in region 1"
for r in 1 2 3; do
	in_ns "$NS_RTR" curl -s "${ADMIN[@]}" -o /dev/null -d "{\"cap\":256256,\"region\":$r,\"rps\":100}" \
		$API/v1/demand
done
in_ns "$NS_RTR" curl -s "${ADMIN[@]}" -o /dev/null -d '{"cap":256512,"region":1,"rps":20}' $API/v1/demand
show "idnctl placement solve" k placement solve || die "placement solve failed"
show "idnctl placement show" k placement show
say "  idnd sent load orders to the agents (POST /v1/residency/load); the agents' residency:"
for i in 1 2 3; do
	for _ in $(seq 40); do
		in_ns "${NS_NODE[$i]}" curl -s "http://127.0.0.1:$APORT/v1/residency" |
			jq -e '.artifacts | all(.state == "ready")' >/dev/null && break
		sleep 0.05
	done
	in_ns "${NS_NODE[$i]}" curl -s "http://127.0.0.1:$APORT/v1/residency" | jq -r --arg n "$i" \
		'"    node\($n): " + ([.artifacts[] | "\(.name) \(.state) \(.size / 1048576 | floor) MiB"] | join(", ") | if . == "" then "(nothing)" else . end)'
done
show "idnctl placement explain cap 1002/0" k placement explain cap 1002/0
show "idnctl plan show          (compiled by idnd into the router's maps)" ctl plan show
show "idnctl vip add $TOPO_VIP4 port $APORT proto tcp cap 1001/0 tier 1" \
	ctl vip add $TOPO_VIP4 port $APORT proto tcp cap 1001/0 tier 1 || die "vip add"
ctl vip add $TOPO_VIP6 port $APORT proto tcp cap 1001/0 tier 1 >/dev/null || die "vip add"
say "${D}\$ idnctl vip add $TOPO_VIP6 port $APORT proto tcp cap 1001/0 tier 1${N}"

# complete URL [CURL-PREFIX...]: POST a completion; prints "nodeN: text (usage)"
BODY='{"model":"chat-8b","prompt":"What is an intent-defined network ?","max_tokens":6}'
complete() {
	local url=$1 out
	shift
	out=$(cli "$@" curl -s -m 10 -g -d "$BODY" "$url/v1/completions" 2>&1)
	jq -r '"node\(.id | split("-")[2]): \"\(.choices[0].text)\"  (\(.usage.prompt_tokens) prompt tokens, \(.usage.prompt_tokens_details.cached_tokens // 0) cached, ttft \(.idn.ttft_ms) ms)"' \
		<<<"$out" 2>/dev/null || printf '<no answer> %s\n' "$out"
}
# request LABEL URL [CURL-PREFIX...]: drain old receipts, run it, show the answer and receipt
request() {
	local label=$1 out
	shift
	ctl receipt show >/dev/null 2>&1
	printf '\n%s$ %s%s\n' "$D" "$label" "$N"
	out=$(complete "$@")
	LAST_NODE=${out%%:*}
	printf '    %s%s%s\n' "$G" "$out" "$N"
	ctl receipt show 2>/dev/null | sed "s/^/    ${Y}receipt:${N} /; 2,\$s/${Y}receipt:${N} /         /"
}
stamp() { echo "$IDNSTAMP" run cap 1001/0 tier 1 token "$1" pin "$PIN" --; }

DA42=$(desc_addr6 1001 0 1 0 42)
step "5. Requests to the VIP, served by the agents' engines"
say "Each routing receipt lists the candidates with their cost J (us) or why they were"
say "rejected, the chosen node, the affinity node and the plan generation (idnd's)."
request "curl -d '$BODY' http://$TOPO_VIP4:$APORT/v1/completions" "http://$TOPO_VIP4:$APORT"
request "curl ... http://[$TOPO_VIP6]:$APORT/v1/completions     (IPv6 VIP)" "http://[$TOPO_VIP6]:$APORT"
request "curl ... http://[$DA42]:$APORT/v1/completions   (descriptor address: token 42)" \
	"http://[$DA42]:$APORT"
# shellcheck disable=SC2046
request "idn-stamp run token 42 -- curl ... http://$TOPO_VIP4:$APORT/v1/completions   (TCP option)" \
	"http://$TOPO_VIP4:$APORT" $(stamp 42)
N42=$LAST_NODE
ID42=${N42#node}
say "  -> token 42 over IPv6 (descriptor address) and IPv4 (TCP option): $N42 both times."

step "6. The execution receipt of $N42, signed by its agent (Ed25519), verified"
[ -n "$ID42" ] && [ "$ID42" -ge 1 ] 2>/dev/null || die "no answer for token 42"
in_ns "${NS_NODE[$ID42]}" curl -s "http://127.0.0.1:$APORT/v1/receipts" | tail -n 1 >"$TMPD/receipt"
jq -r '.body | fromjson | "    node \(.node) request \(.request) capability \(.capability) model \(.model) verdict \(.verdict)\n    cache \(.cache | tojson) output_tokens \(.output_tokens) status \(.status)"' \
	"$TMPD/receipt" 2>/dev/null
show "idnctl receipt verify receipt.json" "$IDNCTL" receipt verify "$TMPD/receipt"
sed 's/\\"output_tokens\\":6/\\"output_tokens\\":600/' "$TMPD/receipt" >"$TMPD/receipt.bad"
show "idnctl receipt verify receipt-with-output_tokens-600.json   (tampered)" \
	"$IDNCTL" receipt verify "$TMPD/receipt.bad"
say "  -> exit $? : the altered receipt is detected."

step "7. A two-stage (P/D) request: prefill on node1, decode on node3, one answer"
# a capability realised in two stages: compute-rich nodes prefill (role prefill or
# both), memory-rich ones decode (decode or both); the router's plan is stage 1
post /v1/caps '{"class":1003,"name":"chat-8b-pd","pd":true,"tier":1,"resources":{"mem_gb":2}}'
for r in 1 3; do
	in_ns "$NS_RTR" curl -s "${ADMIN[@]}" -o /dev/null -d "{\"cap\":256768,\"region\":$r,\"rps\":50}" \
		$API/v1/demand
done
k placement solve >/dev/null || die "placement solve failed"
for _ in $(seq 100); do
	in_ns "$NS_RTR" curl -s "${ADMIN[@]}" "$API/v1/placement/stage2?cap=256768" |
		jq -e '[.candidates[] | .id] == [3]' >/dev/null && [ -n "$(ctl -j plan show |
		jq -c '.. | objects | select(has("candidates") and .cap == "1003/0") | .candidates[] |
		select(.node == 1)' 2>/dev/null | head -1)" ] && break
	sleep 0.05
done
say "  placed on node1 (prefill) and node3 (decode): the router's plan of 1003/0 (stage 1) names node1;"
say "  stage 2, which the prefill node asks idnd for, names node3 and idnd's pick by J:"
say "${D}\$ curl --cert admin.pem ... $API/v1/placement/stage2?cap=256768${N}"
in_ns "$NS_RTR" curl -s "${ADMIN[@]}" "$API/v1/placement/stage2?cap=256768" | jq -r \
	'"    stage 2: decode nodes \([.candidates[] | .id]), KV listeners \([.candidates[] | .kv]), pick node \(.pick) (J \(.pick_j_us) us)"'
PDBODY="{\"model\":\"chat-8b\",\"hash_ids\":[$(seq -s, 7001 7008)],\"max_tokens\":6}"
printf '\n%s$ idn-stamp run cap 1003/0 tier 1 -- curl -H "X-IDN-Capability: 1003/0" -d %s http://%s:%s/v1/completions%s\n' \
	"$D" "'<8 blocks of a prompt>'" "$TOPO_VIP4" "$APORT" "$N"
ctl receipt show >/dev/null 2>&1
out=$(cli "$IDNSTAMP" run cap 1003/0 tier 1 pin "$PIN" -- curl -s -m 20 -D "$TMPD/pd.hdr" \
	-H "X-IDN-Capability: 1003/0" -d "$PDBODY" "http://$TOPO_VIP4:$APORT/v1/completions" 2>&1)
jq -r '"    '"$G"'node\(.id | split("-")[2]): \"\(.choices[0].text)\"  (\(.usage.prompt_tokens) prompt tokens, \(.usage.prompt_tokens_details.cached_tokens // 0) cached on arrival: the moved KV)'"$N"'"' \
	<<<"$out" 2>/dev/null || printf '    <no answer> %s\n' "$out"
ctl receipt show 2>/dev/null | sed "s/^/    ${Y}routing receipt:${N} /; 2,\$s/${Y}routing receipt:${N} /                 /"
hdr() { tr -d '\r' <"$TMPD/pd.hdr" | awk -v h="$1" 'tolower($1) == h":" { sub(".*/", "", $2); print $2 }'; }
if [ -n "$(hdr x-idn-pd-prefill)" ]; then
	# handed off: node3 answered the client itself (direct server return)
	PRE=$(hdr x-idn-pd-prefill) DEC=$(hdr x-idn-receipt)
	say "  the answer came from node3 straight to the client: node1 handed the client's TCP connection"
	fwd=$(bpftool -j map lookup pinned "$PIN/node1/idn_decap_stats" key 4 0 0 0 2>/dev/null |
		jq '[.. | objects | select(has("formatted")) | .formatted.values[].value] | add // 0')
	say "  over (TCP_REPAIR), and its node dataplane forwards the client's ACKs to node3 ($fwd so far)"
else
	# relayed through node1 (the hand-off fell back: see agent1.log)
	PRE=$(hdr x-idn-receipt) DEC=$(hdr x-idn-receipt-decode)
	say "  relayed through node1 (no hand-off: $(grep -m1 -i 'hand-off' "$TMPD/agent1.log" | cut -c1-120))"
fi
[ -n "$PRE" ] && [ -n "$DEC" ] || die "the two-stage request was not served in two stages: $out $(tail -n 3 "$TMPD/agent1.log")"
in_ns "${NS_NODE[1]}" curl -s "http://127.0.0.1:$APORT/v1/receipts/$PRE" >"$TMPD/receipt.pre"
in_ns "${NS_NODE[3]}" curl -s "http://127.0.0.1:$APORT/v1/receipts/$DEC" >"$TMPD/receipt.dec"
say "  its two execution receipts, each signed by the node of its stage:"
jq -r '.body | fromjson | "    node \(.node) request \(.request): stage \(.pd.stage) (\(.pd.outcome)), \(.cache.prompt_tokens) prompt tokens, \(.output_tokens) output token; KV \(.pd.kv_blocks) blocks (\(.pd.kv_bytes) bytes, \(.pd.kv_transport), \(.pd.kv_push_ms) ms) -> node \(.pd.decode_node) \(if .pd.decode_request then "request \(.pd.decode_request)" else "hand-off \(.pd.handoff)" end)"' \
	"$TMPD/receipt.pre" 2>/dev/null
jq -r '.body | fromjson | "    node \(.node) request \(.request): stage \(.pd.stage) of node \(.pd.prefill_node) request \(.pd.prefill_request), \(.cache.cached_tokens) cached tokens, \(.output_tokens) output tokens"' \
	"$TMPD/receipt.dec" 2>/dev/null
show "idnctl receipt verify receipt-prefill.json" "$IDNCTL" receipt verify "$TMPD/receipt.pre"
show "idnctl receipt verify receipt-decode.json" "$IDNCTL" receipt verify "$TMPD/receipt.dec"

# session 42's conversation so far: 32 prefix blocks (hash ids as in the
# traces) computed and cached by $N42's engine, under session token 42
KVBODY="{\"model\":\"chat-8b\",\"hash_ids\":[$(seq -s, 4201 4232)],\"max_tokens\":4}"
in_ns "${NS_NODE[$ID42]}" curl -s -m 30 -H "X-IDN-Token: 42" -d "$KVBODY" \
	"http://127.0.0.1:$APORT/v1/completions" >"$TMPD/kv42.json" 2>&1
jq -e '.usage.prompt_tokens > 0' "$TMPD/kv42.json" >/dev/null ||
	die "session 42's conversation on $N42 failed: $(cat "$TMPD/kv42.json")"
T42=$(printf '%016x' 42)
for _ in $(seq 60); do	# its heartbeat brings the descriptor naming token 42
	in_ns "$NS_RTR" curl -s "${ADMIN[@]}" "$API/v1/nodes/$ID42/state" |
		jq -e --arg t "$T42" '[.descriptors[] | select(.token == $t)] | length == 1' \
		>/dev/null && break
	sleep 0.05
done
say "  session 42 built 32 KV blocks on $N42; its agent's state descriptor (heartbeat -> idnd):"
in_ns "$NS_RTR" curl -s "${ADMIN[@]}" "$API/v1/nodes/$ID42/state" | jq -r --arg t "$T42" \
	'.descriptors[] | select(.token == $t) | "    token \(.token) \(.scope): \(.blocks) blocks, \(.size) bytes, reuse \(.reuse), value \(.value_us) us, migration \(.migration_us) us"'

step "8. $N42 gets busy: new flows go elsewhere, and idnd decides to move session 42's state"
LONG='{"input_length":300000,"output_length":1}'
say "${D}\$ curl -d '$LONG' http://127.0.0.1:$APORT/v1/completions   (in $N42, twice: 300k-token prompts)${N}"
for _ in 1 2; do	# the second does not fit the KV beside the first: it waits (load 1000)
	in_ns "${NS_NODE[$ID42]}" curl -s -m 60 -d "$LONG" "http://127.0.0.1:$APORT/v1/completions" \
		>/dev/null 2>&1 &
	bg_pid $!
done
for _ in $(seq 60); do
	pend=$(ctl -j node show | jq -r ".[] | select(.id == $ID42) | .pending_tokens")
	[ "${pend:-0}" -gt 100000 ] && break
	sleep 0.05
done
show "idnctl node show        (queue and pending prefill tokens from the telemetry datagrams)" \
	ctl node show
moved=""
for _ in $(seq 200); do
	moved=$(in_ns "$NS_RTR" curl -s "${ADMIN[@]}" "$API/v1/migrations" |
		jq -c --arg t "$T42" '[.[] | select(.token == $t and .result == "moved")] | last // empty')
	[ -n "$moved" ] && break
	sleep 0.05
done
[ -n "$moved" ] || die "idnd did not move session 42's state: $(in_ns "$NS_RTR" curl -s "${ADMIN[@]}" "$API/v1/migrations" | head -c 600)"
say "${D}\$ curl --cert admin.pem ... $API/v1/migrations     (idnd's decision, eq. 8)${N}"
jq -r '"    token \(.token): node \(.from) -> node \(.to), \(.result): gain \(.gain_us | floor) us > transfer \(.transfer_us | floor) + storage \(.storage_us | floor) + privacy \(.privacy_us | floor) us\n    why: \(.why)\n    push (order -> committed) \(.push_ms * 10 | floor / 10) ms, then the router'"'"'s affinity for token 42 -> node \(.to)"' <<<"$moved"
DST=$(jq -r .to <<<"$moved")

step "9. Session 42's next turn: the router follows the moved state"
SAVED_BODY=$BODY
BODY=$KVBODY
# shellcheck disable=SC2046
request "idn-stamp run token 42 -- curl -d '<session 42, next turn>' http://$TOPO_VIP4:$APORT/v1/completions" \
	"http://$TOPO_VIP4:$APORT" $(stamp 42)
BODY=$SAVED_BODY
[ "$LAST_NODE" = "node$DST" ] || die "session 42's next turn went to $LAST_NODE, not node$DST"
say "  -> idnd moved session 42's blocks off busy $N42 (nobody asked it to), pointed the"
say "     router's affinity at node$DST only after node$DST committed them, and node$DST served"
say "     the next turn from them (cached tokens above): no prefill recomputed."

declare -A before=()
for t in 101 102 103 104 105 106; do
	before[$t]=$(complete "http://[$(desc_addr6 1001 0 1 0 $t)]:$APORT" | cut -d: -f1)
done
VN=${before[101]}
VID=${VN#node}
[ -n "${AGENT_PID[$VID]:-}" ] || die "no answer for session 101"
step "10. The agent of $VN (serving sessions 101-106) stops: no heartbeats -> node down -> flows move"
say "${D}\$ kill ${AGENT_PID[$VID]}     (idn-agent of $VN; idnd's heartbeat timeout is $HB_TMO ms)${N}"
kill "${AGENT_PID[$VID]}"
wait "${AGENT_PID[$VID]}" 2>/dev/null
t0=$(date +%s%N)
for _ in $(seq 100); do
	st=$(in_ns "$NS_RTR" curl -s "${ADMIN[@]}" $API/v1/nodes | jq -r ".[] | select(.id == $VID) | .state")
	[ "$st" = down ] && break
	sleep 0.05
done
say "  idnd: node $VID $st $(( ($(date +%s%N) - t0) / 1000000 )) ms after the agent stopped; it left every plan:"
show "idnctl plan show" ctl plan show
moved=0
for t in 101 102 103 104 105 106; do
	now=$(complete "http://[$(desc_addr6 1001 0 1 0 $t)]:$APORT" | cut -d: -f1)
	[ "$now" != "${before[$t]}" ] && moved=$((moved + 1))
	printf '    session token %-4s before: %-6s now: %s\n' "$t" "${before[$t]}" "$now"
done
say "  -> $moved of 6 sessions moved off $VN (a dead engine answers nothing: nothing is sent there)."

step "11. Counters"
show "idnctl stats show" ctl stats show
show "idnctl controller status" k controller status
say "(demo ran $(( $(date +%s) - T_START )) s)"

debug_shell
cleanup
step "Cleaned up: namespaces, pins, idnd, agents, servers, temp dirs removed"

# This host cannot load modules: the cold activation through idn.ko (a
# request held, the capability placed, the request released and served)
# runs in Debian's 6.1 kernel under QEMU. Exit 4: qemu or the image absent.
step "12. Demand-driven activation through idn.ko (QEMU guest, Debian 6.1)"
"$(dirname "$0")/demo-activation.sh" || [ $? = 4 ] || exit 1
exit 0
