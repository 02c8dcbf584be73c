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
# a corrupt artifact send no half state: the agent rolls back.
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

bg_ns "$NS" "$TMPD/idnd.log" "$BUILD/idnd" -d "$TMPD/idnd.db" -p 8787 -t 2000 -P none -v
for _ in $(seq 100); do in_ns "$NS" curl -s -o /dev/null $URL/v1/status && break; sleep 0.05; done
bg_ns "$NS" "$TMPD/agent.log" "$AGENT" --node-id 1 --addr4 10.1.0.1 --trust 5 \
	--key "$TMPD/node.key" --controller $URL --hb-ms 100 --listen 10.1.0.1:8000 \
	--mem-budget 8M --speed 20
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
# wait_res JQ-EXPR: up to 5 s for the agent's residency to satisfy it
wait_res() {
	for _ in $(seq 100); do
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
tap_done
