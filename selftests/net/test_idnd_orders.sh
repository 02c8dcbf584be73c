#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# test_idnd_orders.sh - idnd's deploy/evict orders to node agents, in a
# namespace of its own: an agent registers (with its api_port); a
# capability with a realization artifact (a real file with a .sha256
# sidecar) is placed on its node -> idnd orders the agent to load it (the
# agent's /v1/residency shows it ready, its heartbeats report it
# resident); demand drops to 0 and the placement goes -> evict order, the
# artifact leaves the agent's memory. A capability without an artifact and
# a corrupt artifact send no half state: the agent rolls back. Retry: a
# load order to an agent that is down is retried with backoff and lands
# once the agent is back (without registering). Re-send: an agent that
# restarts (its memory empty) and registers again gets load orders for
# everything its node holds in the placement.
# TAP output; exit 4 when the machine cannot run it.
source "$(dirname "$0")/lib.sh"

require_root
require_cmd ip jq nsenter curl sha256sum
AGENT=$BUILD/idn-agent
require_file "$AGENT" "$BUILD/idnd"
probe_netns || skip_all "cannot create network namespaces"

make_tmpdir || exit 1
setup_ns NS || { tap_fail "netns"; tap_done; }
ip -n "$NS" addr add 10.1.0.1/32 dev lo
URL=http://127.0.0.1:8787
AURL=http://10.1.0.1:8000

bg_ns "$NS" "$TMPD/idnd.log" "$BUILD/idnd" --insecure --enrol open -d "$TMPD/idnd.db" -p 8787 -t 2000 -P none -v
for _ in $(seq 100); do in_ns "$NS" curl -s -o /dev/null $URL/v1/status && break; sleep 0.05; done
start_agent() {	# LOG CONTROLLER-URL
	bg_ns "$NS" "$TMPD/$1" "$AGENT" --insecure --node-id 1 --addr4 10.1.0.1 --trust 5 \
		--key "$TMPD/node.key" --controller "$2" --hb-ms 100 --listen 10.1.0.1:8000 \
		--mem-budget 8M --speed 20 --artifact-dir "$TMPD"
	AGENT_PID=$BG_PID
}
start_agent agent.log $URL
up=
for _ in $(seq 100); do
	up=$(in_ns "$NS" curl -s $URL/v1/nodes | jq -r '.[] | select(.id == 1) | "\(.state) \(.api_port)"')
	[ "$up" = "up 8000" ] && break
	sleep 0.05
done
[ "$up" = "up 8000" ]
tap_result "agent registers with its api_port" $? "$up $(tail -3 "$TMPD/agent.log")"

post() { in_ns "$NS" curl -s -o /dev/null -w '%{http_code}' -d "$2" "$URL$1"; }
residency() { in_ns "$NS" curl -s $AURL/v1/residency; }
# wait_res JQ-EXPR [N]: up to N x 50 ms (default 5 s) for the agent's residency to satisfy it
wait_res() {	# JQ-EXPR [TRIES of 50 ms]
	for _ in $(seq "${2:-100}"); do
		residency | jq -e "$1" >/dev/null && return 0
		sleep 0.05
	done
	return 1
}

head -c 2097152 /dev/urandom >"$TMPD/chat.bin"
(cd "$TMPD" && sha256sum chat.bin >chat.bin.sha256)
code=$(post /v1/caps "{\"class\":7,\"name\":\"chat\",\"resources\":{\"mem_gb\":1},\"realization\":{\"artifact\":\"$TMPD/chat.bin\"}}")
post /v1/caps '{"class":8,"name":"noart","resources":{"mem_gb":1}}' >/dev/null
post /v1/demand '{"cap":1792,"region":0,"rps":10}' >/dev/null
post /v1/demand '{"cap":2048,"region":0,"rps":10}' >/dev/null
code=$(post /v1/placement/solve '{}')
pl=$(in_ns "$NS" curl -s $URL/v1/placement | jq -c 'map([.cap, .node])')
[ "$code" = 200 ] && [ "$pl" = "[[1792,1],[2048,1]]" ]
tap_result "placement: caps 7 and 8 on node 1" $? "$code $pl"

wait_res '.artifacts | map(select(.name == "cap-7-0" and .state == "ready" and .cap == 1792)) | length == 1'
tap_result "load order: the agent loaded cap 7's artifact (2 MiB, digest checked)" $? \
	"$(residency) $(grep ORDER "$TMPD/idnd.log")"
[ "$(residency | jq '[.artifacts[] | select(.name == "cap-8-0")] | length')" = 0 ] &&
	[ "$(residency | jq .used)" = 2097152 ]
tap_result "no order for a capability without an artifact" $? "$(residency)"
post /v1/demand '{"cap":1792,"region":0,"rps":0}' >/dev/null
code=$(post /v1/placement/solve '{}')
pl=$(in_ns "$NS" curl -s $URL/v1/placement | jq -c 'map([.cap, .node])')
[ "$pl" = "[[2048,1]]" ]
tap_result "demand 0: cap 7 leaves the placement" $? "$code $pl"
wait_res '(.artifacts | length == 0) and .used == 0'
tap_result "evict order: the artifact left the agent's memory" $? "$(residency)"

# a corrupt artifact: the order fails, the agent rolls back, idnd counts it
printf 'x' >>"$TMPD/chat.bin"
post /v1/demand '{"cap":1792,"region":0,"rps":10}' >/dev/null
post /v1/placement/solve '{}' >/dev/null
for _ in $(seq 100); do
	grep -q 'ORDER: load cap 7/0 to node 1: HTTP 422' "$TMPD/idnd.log" && break
	sleep 0.05
done
grep -q 'ORDER: load cap 7/0 to node 1: HTTP 422' "$TMPD/idnd.log" &&
	residency | jq -e '(.artifacts | length == 0) and .used == 0' >/dev/null
tap_result "corrupt artifact: order answered 422, nothing left loaded" $? \
	"$(grep ORDER "$TMPD/idnd.log") $(residency)"

# ---- retry: the agent is down when a load order goes out
(cd "$TMPD" && sha256sum chat.bin >chat.bin.sha256)	# cap 7's artifact valid again
kill -9 "$AGENT_PID"; wait "$AGENT_PID" 2>/dev/null
# idnd keeps node 1 up (heartbeats from here) while its agent is gone
(while :; do in_ns "$NS" curl -s -m 2 -o /dev/null -d '{"load":1}' $URL/v1/nodes/1/heartbeat
	sleep 0.1; done) &
HBP=$!
bg_pid $HBP
head -c 1048576 /dev/urandom >"$TMPD/code.bin"
(cd "$TMPD" && sha256sum code.bin >code.bin.sha256)
post /v1/caps "{\"class\":9,\"name\":\"code\",\"resources\":{\"mem_gb\":1},\"realization\":{\"artifact\":\"$TMPD/code.bin\"}}" >/dev/null
post /v1/demand '{"cap":2304,"region":0,"rps":10}' >/dev/null
post /v1/placement/solve '{}' >/dev/null
for _ in $(seq 100); do
	grep -q 'ORDER: load cap 9/0 to node 1: retry in' "$TMPD/idnd.log" && break
	sleep 0.05
done
grep -q 'ORDER: load cap 9/0 to node 1: retry in' "$TMPD/idnd.log"
tap_result "agent down: the load order of cap 9 failed and is retried with backoff" $? \
	"$(grep ORDER "$TMPD/idnd.log" | tail -5)"
# the agent comes back without registering (its controller URL leads nowhere)
start_agent agent2.log http://127.0.0.1:1
wait_res '.artifacts | map(select(.name == "cap-9-0" and .state == "ready")) | length == 1' 800
ok=$?
# the agent answers (and shows the artifact ready) before idnd logs the answer
for _ in $(seq 200); do
	line=$(grep 'ORDER: load cap 9/0 to node 1: HTTP 200' "$TMPD/idnd.log" | tail -1)
	[ -n "$line" ] && break
	sleep 0.05
done
att=$(sed -n 's/.*(attempt \([0-9]*\)).*/\1/p' <<<"$line")
tap_result "a retry (attempt ${att:-?}) loaded cap 9 once the agent was back" \
	"$([ $ok = 0 ] && [ "${att:-0}" -ge 2 ] &&
	   [ "$(residency | jq '.artifacts | length')" = 1 ]; echo $?)" \
	"$(grep ORDER "$TMPD/idnd.log" | tail -8) $(residency)"
st=$(in_ns "$NS" curl -s $URL/v1/status | jq -c .orders)
tap_result "status counts the retries: $st" "$(jq -e '.retries >= 1' <<<"$st" >/dev/null; echo $?)"

# ---- re-send: the agent restarts (memory empty) and registers again
kill -9 "$AGENT_PID"; wait "$AGENT_PID" 2>/dev/null
kill "$HBP"; wait "$HBP" 2>/dev/null
start_agent agent3.log $URL
wait_res '[.artifacts[] | select(.state == "ready") | .name] | sort == ["cap-7-0", "cap-9-0"]' 200
tap_result "restarted agent registered again and got its placement re-sent (caps 7, 9)" $? \
	"$(grep ORDER "$TMPD/idnd.log" | tail -6) $(residency)"
grep -q 'ORDER: node 1 registered: 2 load orders of its placement re-sent' "$TMPD/idnd.log"
tap_result "idnd logged the re-send" $? "$(grep ORDER "$TMPD/idnd.log" | tail -6)"
tap_done
