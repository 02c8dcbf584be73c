#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# test_drain.sh - the operator's drain through idnd (docs/operator.md
# "Drain a node for maintenance", docs/controller.md "Migration
# decisions"): idnd --migrate on a router dataplane, agents A (node 1) and
# B (node 2) with their engine emulators and KV listeners (no pull on
# miss: B holds a session's blocks only if idnd moved them there).
#   - a session T builds a prefix on A, the router's affinity (T, class 7)
#     is node 1; a paced download through the VIP runs on node 1;
#   - `idnctl node drain 1`: idnd stores it, the router's node entry says
#     health drain; A is not busy, yet idnd weighs T's state (eq. 8,
#     reason "draining"), A pushes it to B, B commits, the affinity points
#     at node 2, and B serves T's next turn from the moved blocks;
#   - no new flow to node 1 through the VIP while it drains, the download
#     started before the drain finishes on node 1 with every byte;
#   - bad input: an unknown node, a body with fields, bad JSON, a
#     registration that carries "drain": clear errors, nothing changed;
#     a node that registers again stays drained;
#   - the drain survives an idnd restart (SQLite): node entry still drain;
#   - `idnctl node undrain 1`: health up, node 1 takes VIP flows again;
#   - distributed mode (with etcd; skipped without): replicas a (leader,
#     the router's maps) and b, a second router fed by a watcher; node 1's
#     agent runs with --etcd and owns its nodes/1 key (node 2's is
#     idnd's): a drain reaches both routers through drains/1 (nodes/1,
#     the agent's, does not carry it), the agent's re-write of nodes/1
#     (its lease revoked under it) does not undo it, b takes over with
#     node 1 still drained, its undrain reaches the watcher's router and
#     deletes drains/1; malformed drains/ keys refused and counted by the
#     watcher; a deleted node's drains/ key goes with it.
# The roles (admin only) are checked by selftests/security/test_tls.sh.
# TAP output; exit 4 when the machine cannot run it.
if [ -z "${IDN_TEST_UNSHARED:-}" ] && [ "$(id -u)" -eq 0 ]; then
	IDN_TEST_UNSHARED=1 exec unshare -m --propagation private "$0" "$@"
fi

source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/topo.sh"

require_root
require_cmd ip nsenter curl jq python3 ethtool findmnt
AGENT=$BUILD/idn-agent
topo_bed 2 "$AGENT" "$BUILD/idnd"
URL=http://127.0.0.1:8787
AURL=http://127.0.0.1:8000 BURL=http://127.0.0.1:8001
api() { in_ns "$NS_RTR" curl -s -m 5 "$@"; }
post() { api -o /dev/null -w '%{http_code}' -X POST --data-binary "$2" "$URL$1"; }
ictl() { in_ns "$NS_RTR" "$IDNCTL" --insecure -C $URL "$@"; }
aff_node() {
	in_ns "$NS_RTR" "$IDNCTL" -P "$PIN/rtr" -j dp affinity "$1" "$2" 2>/dev/null |
		jq -r '.node // empty'
}
aff_set() { in_ns "$NS_RTR" "$IDNCTL" -P "$PIN/rtr" dp affinity "$1" "$2" node "$3" >/dev/null; }
# the router's node entry: its health
health() { ctl -j node show id "$1" 2>/dev/null | jq -r '(if type == "array" then .[0] else . end).health'; }
drainf() { api "$URL/v1/nodes" | jq -r ".[] | select(.id == $1) | .drain"; }
poll_until() { local n=$1; shift; for _ in $(seq "$n"); do "$@" && return 0; sleep 0.05; done; return 1; }
T=4811 CLS=7
hx() { printf '%016x' "$1"; }

start_idnd() {
	bg_ns "$NS_RTR" "$TMPD/idnd.log" "$BUILD/idnd" --insecure --enrol open -d "$TMPD/idnd.db" \
		-P "$PIN/rtr" -t 60000 --migrate -v
	IDND_PID=$BG_PID
	poll_until 100 api -o /dev/null "$URL/v1/status"
}
start_idnd
ENG=(--speed 0.05 --max-seqs 2 --block-tokens 16 --kv-capacity-tokens 65536
     --kv-bytes-per-token 256 --kv-insecure --kv-transport tcp --hb-ms 100 -v)
start_agent() {	# start_agent ID PORT KVPORT PEERPORT [ARG...]
	bg_ns "$NS_RTR" "$TMPD/agent$1.log" "$AGENT" --insecure --node-id "$1" \
		--addr4 "10.20.$1.2" --key "$TMPD/node$1.key" --controller $URL \
		--listen "127.0.0.1:$2" --kv-listen "127.0.0.1:$3" \
		--kv-peers "127.0.0.1:$4" "${ENG[@]}" "${@:5}"
}
start_agent 1 8000 9100 9101
start_agent 2 8001 9101 9100
upn() { [ "$(api "$URL/v1/nodes" | jq -r "[.[] | select(.state == \"up\" and .kv != null)] | length")" = 2 ]; }
poll_until 400 upn
tap_result "agents A (node 1) and B (node 2) registered with KV listeners, up" $? \
	"$(api "$URL/v1/nodes" | jq -c '[.[] | {id, state, kv}]')"

# class 7: one variant per node (each needs 60 % of a node's memory)
mem=$(api "$URL/v1/nodes" | jq '[.[] | .mem_gb] | min * 0.6')
post /v1/caps "{\"class\":7,\"variant\":0,\"name\":\"chat\",\"resources\":{\"mem_gb\":$mem}}" >/dev/null
post /v1/caps "{\"class\":7,\"variant\":1,\"name\":\"chat1\",\"resources\":{\"mem_gb\":$mem}}" >/dev/null
post /v1/demand '{"cap":1792,"region":0,"rps":1}' >/dev/null
post /v1/demand '{"cap":1793,"region":0,"rps":1}' >/dev/null
post /v1/placement/solve '{}' >/dev/null
pl=$(api "$URL/v1/placement" | jq -c '[.[] | .node] | sort')
# the variant node 1 holds: the VIP's capability (its plan: node 1 alone)
V1=$(api "$URL/v1/placement" | jq -r '.[] | select(.node == 1) | .cap % 256')
[ "$pl" = "[1,2]" ] && [ -n "$V1" ] && ctl vip add $TOPO_VIP4 port 80 proto tcp cap "7/$V1" tier 1
tap_result "class 7 on both nodes; VIP for 7/$V1 (node 1's)" $? "$pl"
vipw() { who "http://$TOPO_VIP4/" -m 2; }
poll_until 100 eval '[ "$(vipw)" = node1 ]'
tap_result "through the VIP: node 1 answers" $? "$(vipw)"

words() { python3 -c "import sys; print(' '.join('$1%d' % i for i in range(int(sys.argv[1]))))" "$2"; }
complete() { api -H "X-IDN-Token: $2" "$1/v1/completions" -d "{\"prompt\":\"$3\",\"max_tokens\":2}"; }
cached() { jq -r '.usage.prompt_tokens_details.cached_tokens // 0' <<<"$1"; }
pt=$(words d 600)
for _ in 1 2 3; do complete $AURL $T "$pt" >/dev/null; done
aff_set $T $CLS 1
desc() { api "$URL/v1/nodes/1/state" | jq -e --arg t "$(hx "$1")" \
	'[.descriptors[] | select(.token == $t and .hits >= .blocks)] | length == 1' >/dev/null; }
poll_until 100 desc $T
c=$(cached "$(complete $BURL 4899 "$pt")")
[ "$(health 1)" = up ] && [ "$(drainf 1)" = false ] && [ "$c" = 0 ] &&
	[ -z "$(api "$URL/v1/migrations" | jq -r '.[]')" ]
tap_result "A holds T's prefix (B does not: $c cached), affinity node 1, health up, no migration" $? \
	"$(health 1) $(drainf 1) $(api "$URL/v1/migrations" | jq -c .)"

# a download on node 1, paced over ~6 s, started before the drain
BIG=1500000 RATE=250000
bg_ns "$NS_CLI" "$TMPD/dl.log" curl -s -o /dev/null -m 60 -w '%{http_code} %{size_download}\n' \
	"http://$TOPO_VIP4/bytes/$BIG?rate=$RATE"
DL=$BG_PID
sleep 1

# ---- drain
lines=$(wc -l <"$TMPD/idnd.db.audit" 2>/dev/null || echo 0)
out=$(ictl node drain 1 2>&1)
rc=$?
[ $rc = 0 ] && grep -q "draining" <<<"$out" && [ "$(drainf 1)" = true ] && [ "$(health 1)" = drain ] &&
	[ "$(health 2)" = up ]
tap_result "idnctl node drain 1: stored, the router's entry for node 1 says health drain" $? \
	"rc $rc: $out; health $(health 1)"
tail -n +$((lines + 1)) "$TMPD/idnd.db.audit" 2>/dev/null |
	jq -e -s 'map(select(.method == "POST" and .what == "/v1/nodes/1/drain" and .status == 200)) | length == 1' >/dev/null
tap_result "the drain is audited" $? "$(tail -2 "$TMPD/idnd.db.audit" 2>/dev/null)"
moved() { [ "$(api "$URL/v1/migrations" | jq -r --arg t "$(hx "$1")" \
	'[.[] | select(.token == $t)] | last | .result')" = moved ]; }
poll_until 400 moved $T
m=$(api "$URL/v1/migrations" | jq -c --arg t "$(hx $T)" '[.[] | select(.token == $t)] | last')
jq -e '.from == 1 and .to == 2 and (.why | test("draining")) and .net_us > 0' <<<"$m" >/dev/null
tap_result "A not busy ($(api "$URL/v1/nodes" | jq '.[] | select(.id == 1) | .load')): T's state moved 1 -> 2 for \"draining\" (eq. 8)" \
	$? "$m $(grep MIGRATE "$TMPD/idnd.log" | tail -3)"
[ "$(aff_node $T $CLS)" = 2 ]
tap_result "after B's commit: affinity (T, class 7) -> node 2" $? "node $(aff_node $T $CLS)"
out=$(complete $BURL $T "$pt")
c=$(cached "$out")
[ "${c:-0}" -ge 512 ]
tap_result "B serves T's next turn from the moved blocks ($c cached tokens)" $? "$out"

n1=0
for _ in 1 2 3 4 5; do [ "$(vipw)" = node1 ] && n1=$((n1 + 1)); done
[ $n1 = 0 ]
tap_result "while node 1 drains no new flow through the VIP reaches it ($n1 of 5)" $?
wait "$DL"
read -r dcode dsize <"$TMPD/dl.log"
[ "$dcode" = 200 ] && [ "$dsize" = "$BIG" ]
tap_result "the download started before the drain finishes on node 1 ($dcode, $dsize of $BIG bytes)" $? \
	"$(cat "$TMPD/dl.log")"

# ---- bad input
r=$(api -X POST "$URL/v1/nodes/77/drain")
code=$(post /v1/nodes/77/drain '')
out=$(ictl node drain 77 2>&1)
rc=$?
[ "$code" = 404 ] && jq -e '.error | test("node 77 is not registered")' <<<"$r" >/dev/null &&
	[ $rc = 1 ] && grep -q "HTTP 404: node 77 is not registered" <<<"$out"
tap_result "an unknown node: 404 \"not registered\"; idnctl says so, exit 1" $? "$code $r / $rc $out"
r=$(api -X POST "$URL/v1/nodes/2/drain" -d '{"why":"x"}')
code=$(post /v1/nodes/2/drain '{"why":"x"}')
code2=$(post /v1/nodes/2/undrain '{"id":')
code3=$(post /v1/nodes/x/drain '')
out=$(ictl node drain two 2>&1)
rc=$?
out2=$(ictl node drain 2 3 2>&1)
rc2=$?
[ "$code" = 400 ] && jq -e '.error | test("unknown field \"why\"")' <<<"$r" >/dev/null &&
	[ "$code2" = 400 ] && [ "$code3" = 404 ] && [ $rc != 0 ] && [ $rc2 != 0 ] &&
	[ "$(drainf 2)" = false ] && [ "$(health 2)" = up ]
tap_result "a body with fields, bad JSON, a bad id, bad idnctl arguments: refused, node 2 untouched" $? \
	"$code $r $code2 $code3 / $rc $out / $rc2 $out2"
r=$(api -X POST "$URL/v1/nodes" -d '{"id":3,"addr4":"10.20.3.2","mem_gb":8,"drain":false}')
code=$(post /v1/nodes '{"id":3,"addr4":"10.20.3.2","mem_gb":8,"drain":false}')
[ "$code" = 400 ] && jq -e '.error | test("drain")' <<<"$r" >/dev/null &&
	[ "$(api "$URL/v1/nodes" | jq '[.[] | select(.id == 3)] | length')" = 0 ] && [ "$(drainf 1)" = true ]
tap_result "a registration carrying \"drain\": 400 (the operator's field), nothing registered" $? "$code $r"
# the agent registers again (a restart): still drained
stop_agent1() {
	kill -TERM "$(in_ns "$NS_RTR" ss -Hltnp 'sport = :8000' | grep -o 'pid=[0-9]*' | head -1 |
		cut -d= -f2)" 2>/dev/null
	sleep 0.5
}
stop_agent1
start_agent 1 8000 9100 9101
reg() { [ "$(api "$AURL/v1/agent" | jq -r .registered)" = true ]; }
poll_until 400 reg
[ "$(drainf 1)" = true ] && [ "$(health 1)" = drain ]
tap_result "node 1's agent registers again: node 1 still drains" $? "$(drainf 1) $(health 1)"

# ---- restart: the drain comes back from the store
kill -TERM "$IDND_PID"; wait "$IDND_PID" 2>/dev/null
start_idnd
poll_until 200 eval '[ "$(drainf 1)" = true ] && [ "$(health 1)" = drain ]'
tap_result "idnd restarted: node 1 still drains (store), its entry health drain" $? \
	"$(drainf 1) $(health 1) $(api "$URL/v1/nodes" | jq -c '[.[] | {id, state, drain}]')"

# ---- undrain
out=$(ictl -j node undrain 1 2>"$TMPD/err")
rc=$?
[ $rc = 0 ] && jq -e '.drain == false' <<<"$out" >/dev/null && [ "$(drainf 1)" = false ] &&
	[ "$(health 1)" = up ]
tap_result "idnctl node undrain 1: health up" $? "rc $rc $out $(cat "$TMPD/err") $(health 1)"
poll_until 100 eval '[ "$(vipw)" = node1 ]'
tap_result "through the VIP: node 1 answers again" $? "$(vipw)"
grep -h "MIGRATE\|drain" "$TMPD/idnd.log" | sed "s/^/# /" | tail -6

# ---- distributed mode (with etcd; skipped without): the drain in drains/ID
if ! command -v etcd >/dev/null; then
	tap_skip "distributed mode: the drain through etcd" "etcd not installed (Debian etcd-server)"
	tap_done
fi
kill -TERM "$IDND_PID"; wait "$IDND_PID" 2>/dev/null
EP=$((10000 + RANDOM % 20000))	# below the ephemeral port range
ETCD=http://127.0.0.1:$EP
start_etcd "$NS_RTR" "$ETCD" || { tap_fail "etcd up" "$(tail -5 "$TMPD/etcd.log")"; tap_done; }
DOM=/idn/0/
b64() { printf '%s' "$DOM$1" | base64 -w0; }
# ekv KEY: the key's etcd record ({key, value, lease...}, value decoded); eput KEY VALUE; edel KEY
ekv() {
	api -X POST "$ETCD/v3/kv/range" -d "{\"key\":\"$(b64 "$1")\"}" |
		jq -c '.kvs[0] // empty | .value |= (@base64d)'
}
eput() { api -o /dev/null -X POST "$ETCD/v3/kv/put" -d "{\"key\":\"$(b64 "$1")\",\"value\":\"$(printf '%s' "$2" | base64 -w0)\"}"; }
edel() { api -o /dev/null -X POST "$ETCD/v3/kv/deleterange" -d "{\"key\":\"$(b64 "$1")\"}"; }
# node 1's agent with --etcd: it owns nodes/1 under its own lease
stop_agent1
start_agent 1 8000 9100 9101 --controller "$URL,http://127.0.0.1:8788" --etcd "$ETCD" --etcd-ttl 2
# replica a leads on idnd's port with the router's maps, b follows; the
# agents register again with a (their heartbeats answered 404 first)
bg_ns "$NS_RTR" "$TMPD/idnd-a.log" "$BUILD/idnd" --insecure --enrol open -d "$TMPD/a.db" \
	-P "$PIN/rtr" -t 60000 --migrate -v -E "$ETCD" -N a
PID_A=$BG_PID
leader() { [ "$(api "http://127.0.0.1:$1/v1/status" | jq -r .leader)" = true ]; }
poll_until 200 leader 8787
bg_ns "$NS_RTR" "$TMPD/idnd-b.log" "$BUILD/idnd" --insecure --enrol open -d "$TMPD/b.db" \
	-p 8788 -P none -t 60000 --migrate -v -E "$ETCD" -N b
poll_until 200 api -o /dev/null http://127.0.0.1:8788/v1/status
poll_until 400 upn
# a second router fed only by a watcher (idnd -W)
ip -n "$NS_RTR" link add dr0 type veth peer name dr1
ip -n "$NS_RTR" link set dr0 up; ip -n "$NS_RTR" link set dr1 up
mkdir -p "$PIN/rtr2"
c2() { in_ns "$NS_RTR" "$IDNCTL" -P "$PIN/rtr2" "$@"; }
check "second router's dataplane attached" c2 dp attach dev dr0
on_cleanup 'c2 dp detach dev dr0 >/dev/null 2>&1'
bg_ns "$NS_RTR" "$TMPD/watch.log" "$BUILD/idnd" -v -W -E "$ETCD" -P "$PIN/rtr2"
health2() { c2 -j node show id "$1" 2>/dev/null | jq -r '(if type == "array" then .[0] else . end).health'; }
owner() { ekv "nodes/$1" | jq -r '.value | fromjson | .lease_owner'; }
wait_for 20 '[ "$(health2 1)" = up ] && [ "$(health2 2)" = up ] && [ "$(owner 1)" = agent ]'
tap_result "etcd mode: a leads, both agents up, node 1's agent owns nodes/1, the watcher's router has both nodes up" $? \
	"$(health2 1) $(health2 2) owner $(owner 1) $(tail -3 "$TMPD/watch.log")"
ictl node drain 1 >/dev/null 2>&1
wait_for 10 '[ "$(health2 1)" = drain ]'
[ "$(health2 1)" = drain ] && [ "$(health 1)" = drain ] && [ "$(health2 2)" = up ] &&
	[ "$(ekv drains/1 | jq -r .value)" = '{"id":1}' ] && [ "$(ekv drains/1 | jq -r '.lease // 0')" = 0 ] &&
	[ "$(owner 1)" = agent ] && [ "$(ekv nodes/1 | jq -r '.value | fromjson | .drain // false')" = false ]
tap_result "drain through the leader: drains/1 (no lease) written, both routers' entries for node 1 say drain though the agent's nodes/1 does not" $? \
	"$(health 1) $(health2 1) $(ekv drains/1) $(ekv nodes/1) $(grep 'node 1' "$TMPD/watch.log" | tail -2)"
# the agent's lease revoked under it: it grants a new one and writes nodes/1 again
lease1=$(ekv nodes/1 | jq -r .lease)
api -o /dev/null -X POST "$ETCD/v3/lease/revoke" -d "{\"ID\":\"$lease1\"}"
wait_for 10 'l=$(ekv nodes/1 | jq -r .lease); [ -n "$l" ] && [ "$l" != "$lease1" ]'
rw=$?
sleep 0.5
[ $rw = 0 ] && [ "$(owner 1)" = agent ] && [ "$(health2 1)" = drain ] &&
	grep -q "node 1 up, draining" "$TMPD/watch.log"
tap_result "the agent re-writes its nodes/1 (lease $lease1 revoked): the watcher's entry still says drain" $? \
	"rewritten $rw $(ekv nodes/1) $(health2 1) $(grep 'node 1' "$TMPD/watch.log" | tail -3)"
kill -9 "$PID_A"; wait "$PID_A" 2>/dev/null
poll_until 400 leader 8788
lb=$?
drainb() { api http://127.0.0.1:8788/v1/nodes | jq -r ".[] | select(.id == ${1:-1}) | .drain"; }
[ $lb = 0 ] && [ "$(drainb)" = true ] && [ "$(drainb 2)" = false ]
tap_result "a killed: b leads and has node 1 drained (drains/1 loaded from etcd), node 2 not" $? \
	"leader $lb drain $(drainb) $(drainb 2)"
code=$(api -o /dev/null -w '%{http_code}' -X POST http://127.0.0.1:8788/v1/nodes/1/undrain)
wait_for 10 '[ "$(health2 1)" = up ]'
[ "$code" = 200 ] && [ "$(drainb)" = false ] && [ "$(health2 1)" = up ] && [ -z "$(ekv drains/1)" ]
tap_result "undrain on b: drains/1 deleted, the watcher's router has node 1 up again" $? \
	"$code $(drainb) $(health2 1) drains/1: $(ekv drains/1)"
# malformed drains/ keys: refused and counted by the watcher, node 2 stays up
refused() { grep -o '([0-9]* values refused since start)' "$TMPD/watch.log" | tail -1 | tr -dc 0-9; }
r0=$(refused); r0=${r0:-0}
eput drains/2 '{"id":3}'; eput drains/2x '{"id":2}'; eput drains/1 'drain'
wait_for 10 '[ "$(refused)" = $((r0 + 3)) ]'
[ "$(refused)" = $((r0 + 3)) ] && [ "$(health2 2)" = up ] && [ "$(health2 1)" = up ] &&
	grep -q "refused ${DOM}drains/2 .*field \"id\": 2" "$TMPD/watch.log" &&
	grep -q "refused ${DOM}drains/2x .*not a node id" "$TMPD/watch.log" &&
	grep -q "refused ${DOM}drains/1 .*not a JSON object" "$TMPD/watch.log"
rc=$? r1=$(refused)
tap_result "malformed drains/2, drains/2x, drains/1: refused and counted ($r0 -> $r1), nodes 1 and 2 still up" $rc \
	"$(health2 1) $(health2 2) $(grep 'refused.*drains' "$TMPD/watch.log" | tail -3)"
edel drains/2; edel drains/2x; edel drains/1
# a deleted node's drain key goes with it
code=$(api -o /dev/null -w '%{http_code}' -X POST http://127.0.0.1:8788/v1/nodes/2/drain)
wait_for 10 '[ "$(health2 2)" = drain ]'
d2=$(ekv drains/2 | jq -r .value)
code2=$(api -o /dev/null -w '%{http_code}' -X DELETE http://127.0.0.1:8788/v1/nodes/2)
[ "$code" = 200 ] && [ "$d2" = '{"id":2}' ] && [ "$code2" = 200 ] && [ -z "$(ekv drains/2)" ]
tap_result "node 2 drained on b (drains/2 written), then deleted: drains/2 deleted with it" $? \
	"$code $d2 $code2 drains/2: $(ekv drains/2)"
tap_done
