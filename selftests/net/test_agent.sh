#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# test_agent.sh - idn-agent end to end:
#   1. with idnd in a namespace: the agent registers its resource profile,
#      heartbeats with its engine's load; when it stops, idnd marks the
#      node down; restarted, it is up again; deleted from idnd, the agent
#      registers again by itself. The engine answers OpenAI requests
#      (JSON and SSE) and residency orders over HTTP.
#   2. with the real dataplane (client - router - 2 nodes): the agent in
#      node1 sends telemetry datagrams; a long prompt queued in its engine
#      raises node1's pending tokens in idn_nodes (idnctl node show), and
#      new flows that went to node1 now go to node2.
# TAP output; exit 4 when the machine cannot run it.
if [ -z "${IDN_TEST_UNSHARED:-}" ] && [ "$(id -u)" -eq 0 ]; then
	IDN_TEST_UNSHARED=1 exec unshare -m --propagation private "$0" "$@"
fi

source "$(dirname "$0")/lib.sh"
HERE=$(cd "$(dirname "$0")" && pwd)
source "$(dirname "$0")/topo.sh"

require_root
require_cmd ip jq nsenter curl python3 ethtool findmnt ss
AGENT=$BUILD/idn-agent
require_file "$AGENT" "$BUILD/idnd" "$IDNCTL"
probe_netns || skip_all "cannot create network namespaces"

make_tmpdir || exit 1
T0=$TMPD
setup_ns CNS || { tap_fail "netns"; tap_done; }
URL=http://127.0.0.1:8787
AURL=http://127.0.0.1:8000
MURL=http://127.0.0.1:9000	# the agent's management listener (default: loopback, port + 1000)

bg_ns "$CNS" "$T0/idnd.log" "$BUILD/idnd" --insecure -d "$T0/idnd.db" -p 8787 -t 400 -P none
for _ in $(seq 100); do in_ns "$CNS" curl -s -o /dev/null $URL/v1/status && break; sleep 0.05; done

start_agent() {
	bg_ns "$CNS" "$T0/agent.log" "$AGENT" --insecure --node-id 1 --addr4 10.1.0.1 --trust 5 --key "$T0/node.key" \
		--controller $URL --hb-ms 100 --listen 127.0.0.1:8000 --speed 20 \
		--mem-budget 4M --artifact-dir "$T0" -v
	AGENT_PID=$BG_PID
}
# node_state -> "up", "down" or "" (not registered)
node_state() { in_ns "$CNS" curl -s $URL/v1/nodes | jq -r '.[] | select(.id == 1) | .state'; }
wait_state() {	# wait_state WANT TIMEOUT_S
	local i
	for ((i = 0; i < $2 * 20; i++)); do
		[ "$(node_state)" = "$1" ] && return 0
		sleep 0.05
	done
	return 1
}

start_agent
for _ in $(seq 60); do in_ns "$CNS" curl -s -o /dev/null $AURL/healthz && break; sleep 0.05; done
code=$(in_ns "$CNS" curl -s -o "$T0/ready.json" -w '%{http_code}' $AURL/readyz)
[ "$code" = 503 ] && jq -e '.ready == false and .registered == false and .engine_up == true and
	(.missing[0] | test("not registered"))' "$T0/ready.json" >/dev/null &&
	[ "$(in_ns "$CNS" curl -s $AURL/healthz)" = ok ]
tap_result "agent /healthz ok, /readyz 503 before enrolment (not registered)" $? \
	"$code $(cat "$T0/ready.json")"
# enrolment (docs/security.md): the agent's key waits for the operator,
# who approves it and sets the node's trust (never the agent's claim)
st=""
for _ in $(seq 60); do
	st=$(in_ns "$CNS" curl -s $URL/v1/identities/1 | jq -r .state)
	[ "$st" = pending ] && break
	sleep 0.05
done
in_ns "$CNS" curl -sf -o /dev/null -X POST $URL/v1/identities/1/approve -d '{}' &&
	in_ns "$CNS" curl -sf -o /dev/null -X POST $URL/v1/identities/1/trust -d '{"trust":5}'
tap_result "node 1's key pending ($st), approved by the operator, trust 5" $?
wait_state up 5
tap_result "agent registers with idnd (node 1 up)" $? "$(cat "$T0/agent.log" "$T0/idnd.log" | tail -5)"
ok=1
for _ in $(seq 40); do
	in_ns "$CNS" curl -sf -o "$T0/ready.json" $AURL/readyz && jq -e .ready "$T0/ready.json" >/dev/null &&
		{ ok=0; break; }
	sleep 0.05
done
tap_result "agent /readyz 200 once registered" $ok "$(cat "$T0/ready.json")"
r=$(in_ns "$CNS" curl -s $URL/v1/nodes | jq -c '.[] | select(.id == 1) | {addr4, trust, tok_ns, accelerator}')
jq -e '.addr4 == "10.1.0.1" and .trust == 5 and .tok_ns > 0 and (.accelerator | length > 0)' \
	<<<"$r" >/dev/null
tap_result "registered profile R: locator, trust, tok_ns, accelerator" $? "$r"

out=$(in_ns "$CNS" curl -s $AURL/v1/completions -d '{"prompt":"one two three","max_tokens":3}')
jq -e '.choices[0].text == " t0 t1 t2" and .usage.prompt_tokens == 3 and .usage.completion_tokens == 3' \
	<<<"$out" >/dev/null
tap_result "engine: /v1/completions" $? "$out"
out=$(in_ns "$CNS" curl -s -N $AURL/v1/chat/completions \
	-d '{"messages":[{"role":"user","content":"hi"}],"max_tokens":4,"stream":true}')
[ "$(grep -c '^data: {' <<<"$out")" = 4 ] && [ "$(tail -n 1 <<<"$out")" = "data: [DONE]" ]
tap_result "engine: SSE stream of 4 chunks and [DONE]" $? "$(head -c 400 <<<"$out")"
body='{"input_length":2000,"output_length":2,"hash_ids":[7,8,9,10]}'
in_ns "$CNS" curl -s $AURL/v1/completions -d "$body" >/dev/null
out=$(in_ns "$CNS" curl -s $AURL/v1/completions -d "$body")
[ "$(jq .usage.prompt_tokens_details.cached_tokens <<<"$out")" = 1999 ]
tap_result "engine: trace-shaped request, repeated prefix is cached" $? "$out"
m=$(in_ns "$CNS" curl -s $AURL/metrics)
grep -q '^idn_agent_prefix_cache_hit_tokens_total{model_name="[^"]*"} 1999$' <<<"$m" &&
	grep -q '^idn_agent_requests_running' <<<"$m" && ! grep -q '^vllm:' <<<"$m"
tap_result "engine: /metrics with the agent's names" $? "$m"
if command -v promtool >/dev/null; then
	out=$(promtool check metrics <<<"$m" 2>&1)
	tap_result "engine: /metrics lint-clean (promtool check metrics)" $? "$out"
else
	tap_skip "engine: /metrics lint-clean" "no promtool (Debian's prometheus package)"
fi
m=$(in_ns "$CNS" curl -s "$AURL/metrics?names=vllm")
grep -q '^vllm:prefix_cache_hits_total{model_name="[^"]*"} 1999$' <<<"$m" &&
	grep -q '^vllm:num_requests_running' <<<"$m" && ! grep -q '^idn_agent_' <<<"$m"
tap_result "engine: /metrics?names=vllm with vLLM's names" $? "$m"

head -c 1048576 /dev/urandom >"$T0/w.bin"
sha=$(sha256sum "$T0/w.bin" | cut -d' ' -f1)
code=$(in_ns "$CNS" curl -s -o "$T0/resp" -w '%{http_code}' $MURL/v1/residency/load \
	-d "{\"name\":\"w\",\"path\":\"$T0/w.bin\",\"sha256\":\"$sha\",\"cap\":1792}")
[ "$code" = 200 ] && jq -e '.used == 1048576' "$T0/resp" >/dev/null
tap_result "residency: load order over HTTP" $? "$code $(cat "$T0/resp")"
code=$(in_ns "$CNS" curl -s -o "$T0/resp" -w '%{http_code}' $MURL/v1/residency/load \
	-d "{\"name\":\"bad\",\"path\":\"$T0/w.bin\",\"sha256\":\"${sha//[0-9]/0}\"}")
used=$(in_ns "$CNS" curl -s $AURL/v1/residency | jq -c '[.used, (.artifacts | length)]')
[ "$code" = 422 ] && [ "$used" = "[1048576,1]" ]
tap_result "residency: corrupt artifact -> 422, rolled back" $? "$code $used"
# the execution receipt names the artifact by its verified digest (the one
# idnd's load order carries: a signed version's, docs/security.md)
in_ns "$CNS" curl -s -D "$T0/hdr" -o /dev/null -H 'X-IDN-Capability: 7/0' $AURL/v1/completions \
	-d '{"prompt":"hi","max_tokens":2}'
rp=$(tr -d '\r' <"$T0/hdr" | awk 'tolower($1) == "x-idn-receipt:" {print $2}')
got=$(in_ns "$CNS" curl -s "$AURL$rp" | jq -r '.body | fromjson | .artifact_sha256')
tap_result "receipt of a 7/0 request names the resident artifact's verified digest" \
	"$([ -n "$rp" ] && [ "$got" = "$sha" ]; echo $?)" "receipt $rp: $got"
hbs() { in_ns "$CNS" curl -s $URL/v1/nodes | jq -r '.[] | select(.id == 1) | .heartbeats'; }
h1=$(hbs); sleep 0.4; h2=$(hbs)
[ "$h2" -gt "$h1" ] && [ "$(node_state)" = up ]
tap_result "heartbeats with resident [1792] accepted by idnd ($h1 -> $h2)" $?

kill "$AGENT_PID"; wait "$AGENT_PID" 2>/dev/null
t0=$(date +%s%N)
wait_state down 5
rc=$?
tap_result "agent stops: idnd marks node 1 down ($(( ($(date +%s%N) - t0) / 1000000 )) ms, timeout 400)" $rc
start_agent
wait_state up 5
tap_result "agent restarts: node 1 up again" $?
in_ns "$CNS" curl -s -X DELETE $URL/v1/nodes/1 >/dev/null
wait_state up 5
tap_result "node deleted in idnd: the agent registers again" $? \
	"$(in_ns "$CNS" curl -s $URL/v1/nodes)"
n=$(in_ns "$CNS" curl -s $AURL/metrics | awk '/^idn_agent_registrations_total/ {print $2}')
[ "${n:-0}" -ge 2 ]
tap_result "registrations counted ($n)" $?
kill "$AGENT_PID"; wait "$AGENT_PID" 2>/dev/null

# ---- 2. telemetry through the real dataplane
require_file "$BUILD/bpf/idn_steer.bpf.o" "$BUILD/bpf/idn_node.bpf.o" "$BUILD/bpf/idn_pass.bpf.o"
if ! probe_bpffs; then
	tap_skip "telemetry end to end" "cannot mount bpffs"
	tap_done
fi
topo_setup 2 || { tap_fail "test bed setup"; tap_done; }
if ! topo_dataplane || ! ctl dp attach dev r1 mode xdp >/dev/null; then
	tap_fail "attach dataplane"
	tap_done
fi
on_cleanup "ctl dp detach dev r1"
on_cleanup topo_dataplane_detach
CAP=1001/0
cfg=0
topo_nodes || cfg=1
for i in 1 2; do ctl node set id $i tok-ns 17250 >/dev/null || cfg=1; done
ctl dp set telemetry on port 7777 >/dev/null || cfg=1
# no idnd here: node 1's telemetry key by hand, on the router and the node
TKEY=000102030405060708090a0b0c0d0e0f
ctl node tele-key id 1 key $TKEY key-id 7 >/dev/null || cfg=1
(umask 077; echo "7 $TKEY" >"$TMPD/tele1.key")
ctl vip add $TOPO_VIP4 port 80 proto tcp cap $CAP tier 1 >/dev/null || cfg=1
# node1 a little cheaper: new flows go there while it is idle
ctl plan add cap $CAP tier any policy any cand node 1 exec-us 100 cand node 2 exec-us 300 \
	>/dev/null || cfg=1
tap_result "dataplane: 2 nodes, telemetry on port 7777, plan 1001 over nodes 1, 2" $cfg

flows_to() {	# flows_to NODE N: N new flows (fresh source ports), all to NODE?
	local i w
	for ((i = 0; i < $2; i++)); do
		w=$(who http://$TOPO_VIP4/)
		[ "$w" = "node$1" ] || { echo "$w"; return 1; }
	done
}
flows_to 1 3
tap_result "idle: new flows go to node1" $?

bg_ns "${NS_NODE[1]}" "$TMPD/agent1.log" "$AGENT" --insecure --node-id 1 --addr4 10.20.1.2 \
	--telemetry 10.20.1.1:7777 --tele-ms 50 --listen 127.0.0.1:8000 --speed 0.01 --key "$TMPD/node1.key" \
	--tele-key "$TMPD/tele1.key"
A1=$BG_PID
sleep 0.5
seq=$(ctl -j node show | jq -r '.[] | select(.id == 1) | .tele_seq')
[ "${seq:-0}" != 0 ]
tap_result "agent telemetry accepted by the router (tele_seq $seq)" $?
# a 100k-token prompt: at speed 0.01 its prefill stays outstanding for minutes
in_ns "${NS_NODE[1]}" curl -s -m 60 $AURL/v1/completions \
	-d '{"input_length":100000,"output_length":1}' >/dev/null &
bg_pid $!
pend=0
for _ in $(seq 40); do
	pend=$(ctl -j node show | jq -r '.[] | select(.id == 1) | .pending_tokens')
	[ "${pend:-0}" -gt 50000 ] && break
	sleep 0.05
done
q=$(ctl -j node show | jq -c '.[] | select(.id == 1) | {queue, pending_tokens, load, tele_seq}')
[ "${pend:-0}" -gt 50000 ] && jq -e '.queue >= 1' <<<"$q" >/dev/null
tap_result "engine queue raises node1 in idn_nodes: $q" $?
log_cmd ctl node show
flows_to 2 5
tap_result "new flows move away from node1 to node2" $?
s1=$(ctl -j node show | jq -r '.[] | select(.id == 1) | .tele_seq')
sleep 0.3
s2=$(ctl -j node show | jq -r '.[] | select(.id == 1) | .tele_seq')
[ "$s2" -gt "$s1" ]
tap_result "sequence strictly increasing ($s1 -> $s2)" $?
kill "$A1"; wait "$A1" 2>/dev/null

# ---- 3. a spoofed datagram claiming low load does not steer
# node 1 is still busy in idn_nodes; from its own locator (the router's
# address check passes) a forged "idle" report under a wrong key
drops() { ctl -j stats show | jq -r '.drops[] | select(.reason == "tele-mac") | .packets'; }
d0=$(drops)
for i in 1 2 3; do
	in_ns "${NS_NODE[1]}" python3 "$HERE/tele.py" 10.20.1.1 7777 1 $((s2 + 1000 + i)) 0 0 \
		ffeeddccbbaa99887766554433221100 7
done
sleep 0.2
d1=$(drops)
q=$(ctl -j node show | jq -r '.[] | select(.id == 1) | .pending_tokens')
[ "$((d1 - ${d0:-0}))" -ge 3 ] && [ "${q:-0}" -gt 50000 ]
tap_result "forged low-load datagrams dropped as tele-mac ($d0 -> $d1), node 1 still busy" $?
flows_to 2 5
tap_result "new flows still avoid node1 after the forged reports" $?
# the same report under node 1's key (tele.py's own SipHash) is taken
in_ns "${NS_NODE[1]}" python3 "$HERE/tele.py" 10.20.1.1 7777 1 $((s2 + 2000)) 0 0 $TKEY 7
sleep 0.2
q=$(ctl -j node show | jq -r '.[] | select(.id == 1) | .pending_tokens')
[ "${q:-1}" = 0 ]
tap_result "the genuine report (node 1's key) is applied: pending $q" $?
tap_done
