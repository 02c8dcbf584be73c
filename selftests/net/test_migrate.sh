#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# test_migrate.sh - idnd decides migrations (eq. 8, docs/controller.md
# "Migration decisions") with real agents and a real router map: idnd
# --migrate on a router dataplane (its pinned idn_affinity), agents A
# (node 1) and B (node 2) with their engine emulators and KV listeners.
#   - a session (X-IDN-Token T) builds and reuses a prefix on A; its
#     descriptor names T; the router's affinity (T, class 7) is node 1;
#   - A gets busy (eight long prompts, --max-seqs 2: load 1000 for ~20 s): idnd decides
#     "move" for T's state, A pushes it to B, B commits it, and only then
#     the affinity (T, class 7) points at node 2; B serves T's prompt from
#     the moved blocks (cached tokens), without a request to A;
#   - tenant-scoped state (X-IDN-Tenant) moves too, into the same tenant's
#     scope on B (another tenant misses it there);
#   - failure first: the destination is gone (B killed, idnd still holds
#     it up): the move is recorded failed, the affinity still names node 1
#     and A still holds the prefix; with B back the next try moves it;
#   - pull on miss (agents --kv-pull): a session W served on A, its next
#     turn sent to B (as the router does when A is loaded): B asks idnd
#     (POST /v1/nodes/2/pull), idnd finds A's descriptor for W, decides
#     "move" (eq. 8, P_hit 1), A pushes, and B prefills W's turn from the
#     pulled blocks; a token nobody holds: "none"; bad input: 400;
#   - figure: migration_commit_to_affinity_ms (B's commit to the map write)
#     is printed as a TAP comment; make bench prints it (tools/bench/run.sh).
# TAP output; exit 4 when the machine cannot run it.
if [ -z "${IDN_TEST_UNSHARED:-}" ] && [ "$(id -u)" -eq 0 ]; then
	IDN_TEST_UNSHARED=1 exec unshare -m --propagation private "$0" "$@"
fi

source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/topo.sh"

require_root
require_cmd ip nsenter curl jq python3 ethtool findmnt
AGENT=$BUILD/idn-agent
require_file "$AGENT" "$BUILD/idnd" "$IDNCTL" "$BUILD/bpf/idn_pass.bpf.o" \
	"$BUILD/bpf/idn_steer.bpf.o" "$BUILD/bpf/idn_node.bpf.o"
probe_netns || skip_all "cannot create network namespaces"
probe_bpffs || skip_all "cannot mount bpffs"

topo_setup 2 || { tap_fail "test bed setup"; tap_done; }
topo_dataplane || { tap_fail "dataplane attach"; tap_done; }
on_cleanup topo_dataplane_detach
URL=http://127.0.0.1:8787
AURL=http://127.0.0.1:8000 BURL=http://127.0.0.1:8001
api() { in_ns "$NS_RTR" curl -s -m 5 "$@"; }
post() { api -o /dev/null -w '%{http_code}' -X POST --data-binary "$2" "$URL$1"; }
# the affinity table is set-associative (bpf/lib/ctab.h): idnctl reads and writes it by key
aff_node() {
	in_ns "$NS_RTR" "$IDNCTL" -P "$PIN/rtr" -j dp affinity "$1" "$2" 2>/dev/null |
		jq -r '.node // empty'
}
aff_set() { in_ns "$NS_RTR" "$IDNCTL" -P "$PIN/rtr" dp affinity "$1" "$2" node "$3" >/dev/null; }
poll_until() { local n=$1; shift; for _ in $(seq "$n"); do "$@" && return 0; sleep 0.05; done; return 1; }
T=4711 U=4712 V=4713 CLS=7
hx() { printf '%016x' "$1"; }

bg_ns "$NS_RTR" "$TMPD/idnd.log" "$BUILD/idnd" --insecure --enrol open -d "$TMPD/idnd.db" \
	-P "$PIN/rtr" -t 60000 --migrate -v
poll_until 100 api -o /dev/null "$URL/v1/status"
ENG=(--speed 0.05 --max-seqs 2 --block-tokens 16 --kv-capacity-tokens 65536
     --kv-bytes-per-token 256 --kv-insecure --kv-transport tcp --hb-ms 100 -v)
start_agent() {	# start_agent ID PORT KVPORT PEERPORT [extra...]
	local id=$1 port=$2 kv=$3 peer=$4
	shift 4
	bg_ns "$NS_RTR" "$TMPD/agent$id.log" "$AGENT" --insecure --node-id "$id" \
		--addr4 "10.20.$id.2" --key "$TMPD/node$id.key" --controller $URL \
		--listen "127.0.0.1:$port" --kv-listen "127.0.0.1:$kv" \
		--kv-peers "127.0.0.1:$peer" --kv-pull "${ENG[@]}" "$@"
	eval "PID_$id=\$BG_PID"
}
start_agent 1 8000 9100 9101
start_agent 2 8001 9101 9100
breg() { [ "$(api "$BURL/v1/agent" | jq -r .registered)" = true ]; }
poll_until 400 breg
upn() { [ "$(api "$URL/v1/nodes" | jq -r "[.[] | select(.state == \"up\")] | length")" = 2 ]; }
poll_until 200 upn
tap_result "agents A (node 1) and B (node 2) registered, up" $? "$(tail -3 "$TMPD/agent1.log")"
api "$URL/v1/nodes" | jq -e '[.[] | .kv] == ["127.0.0.1:9100", "127.0.0.1:9101"]' >/dev/null
tap_result "each registered its KV listener (\"kv\")" $? "$(api "$URL/v1/nodes" | jq -c '[.[] | .kv]')"

# two variants of class 7, each needing 60 % of a node's memory: one per node
mem=$(api "$URL/v1/nodes" | jq '[.[] | .mem_gb] | min * 0.6')
code=$(post /v1/caps "{\"class\":7,\"variant\":0,\"name\":\"chat\",\"resources\":{\"mem_gb\":$mem}}")
code2=$(post /v1/caps "{\"class\":7,\"variant\":1,\"name\":\"chat1\",\"resources\":{\"mem_gb\":$mem}}")
post /v1/demand '{"cap":1792,"region":0,"rps":1}' >/dev/null
post /v1/demand '{"cap":1793,"region":0,"rps":1}' >/dev/null
post /v1/placement/solve '{}' >/dev/null
pl=$(api "$URL/v1/placement" | jq -c '[.[] | .node] | sort')
[ "$code" = 201 ] && [ "$code2" = 201 ] && [ "$pl" = "[1,2]" ]
tap_result "class 7 placed on both nodes (variants 0 and 1)" $? "$code $code2 $pl"

words() { python3 -c "import sys; print(' '.join('$1%d' % i for i in range(int(sys.argv[1]))))" "$2"; }
complete() {	# complete URL TOKEN PROMPT [header] -> completion JSON
	local h=()
	[ -n "${4:-}" ] && h=(-H "$4")
	api -H "X-IDN-Token: $2" "${h[@]}" "$1/v1/completions" -d "{\"prompt\":\"$3\",\"max_tokens\":2}"
}
cached() { jq -r '.usage.prompt_tokens_details.cached_tokens // 0' <<<"$1"; }
pt=$(words t 600) pu=$(words u 600) pv=$(words v 600)
for _ in 1 2 3; do
	complete $AURL $T "$pt" >/dev/null
	complete $AURL $U "$pu" "X-IDN-Tenant: 5" >/dev/null
	complete $AURL $V "$pv" >/dev/null
done
aff_set $T $CLS 1
aff_set $U $CLS 1
aff_set $V $CLS 1
desc() { api "$URL/v1/nodes/1/state" | jq -e --arg t "$(hx "$1")" \
	'[.descriptors[] | select(.token == $t and .hits >= .blocks)] | length == 1' >/dev/null; }
poll_until 100 desc $T && poll_until 100 desc $U
tap_result "A's descriptors name T (public) and U (tenant 5), reused; affinity -> node 1" $? \
	"$(api "$URL/v1/nodes/1/state" | jq -c '[.descriptors[] | {token, scope, blocks, hits}]')"
[ -z "$(api "$URL/v1/migrations" | jq -r '.[]')" ]
tap_result "no migration while A is not busy" $?

# failure first: B dies (idnd still holds it up: -t 60 s), then A gets busy
# (one long prompt occupies its only sequence slot): the move of T fails,
# the affinity stays on node 1 and A's state is untouched
kill -9 "$PID_2"; wait "$PID_2" 2>/dev/null
for i in 1 2 3 4 5 6 7 8; do	# --max-seqs 2: two 5.5 s prompts run, the rest wait
	api -m 60 "$AURL/v1/completions" -d '{"input_length":16000,"output_length":1}' \
		>"$TMPD/long$i" 2>&1 &
	bg_pid $!
done
failed() { [ "$(api "$URL/v1/migrations" | jq -r --arg t "$(hx "$1")" \
	'[.[] | select(.token == $t)] | last | .result')" = failed ]; }
poll_until 200 failed $T
tap_result "A busy, B gone: the move of T is decided and fails" $? \
	"$(api "$URL/v1/migrations" | jq -c .) $(api "$URL/v1/nodes" | jq -c '[.[] | {id, state, load, kv}]') $(cat "$TMPD/long1")"
[ "$(aff_node $T $CLS)" = 1 ] && desc $T
tap_result "after the failure: affinity (T, class 7) still node 1, A still holds T's blocks" $? \
	"node $(aff_node $T $CLS)"

# B back: the next try moves it
start_agent 2 8001 9101 9100
breg() { [ "$(api "$BURL/v1/agent" | jq -r .registered)" = true ]; }
poll_until 400 breg
moved() { [ "$(api "$URL/v1/migrations" | jq -r --arg t "$(hx "$1")" \
	'[.[] | select(.token == $t)] | last | .result')" = moved ]; }
poll_until 200 moved $T
tap_result "B back: idnd decided again and moved T's state (eq. 8: move)" $? \
	"$(api "$URL/v1/migrations" | jq -c .) $(grep MIGRATE "$TMPD/idnd.log" | tail -3)"
[ "$(aff_node $T $CLS)" = 2 ]
tap_result "after the commit: affinity (T, class 7) -> node 2" $? "node $(aff_node $T $CLS)"
out=$(complete $BURL $T "$pt")
c=$(cached "$out")
[ "${c:-0}" -ge 512 ]
tap_result "B serves T's next turn from the moved blocks ($c cached tokens)" $? "$out"
m=$(api "$URL/v1/migrations" | jq -c --arg t "$(hx $T)" '[.[] | select(.token == $t)] | last')
jq -e '.gain_us > .transfer_us and .net_us > 0 and .from == 1 and .to == 2' <<<"$m" >/dev/null
tap_result "the decision record: gain, transfer, storage, privacy terms, from 1 to 2" $? "$m"
# figure: B's last commit (its agent's wall clock) to idnd's map write of the
# same move (one worker posts the moves one after the other: B's last commit
# is the latest move's, read when no other move came between)
for _ in $(seq 20); do
	a1=$(api "$URL/v1/migrations" | jq '[.[] | .affinity_at // 0] | max')
	commit=$(api "$BURL/v1/agent" | jq -r '.kv_rx_last_commit // 0')
	aff=$(api "$URL/v1/migrations" | jq '[.[] | .affinity_at // 0] | max')
	[ "$a1" = "$aff" ] && awk -v a="$aff" -v c="$commit" 'BEGIN { exit !(c <= a) }' && break
	sleep 0.1
done
ms=$(awk -v a="$aff" -v c="$commit" 'BEGIN { printf "%.2f", (a - c) * 1000 }')
awk -v m="$ms" 'BEGIN { exit !(m >= 0 && m <= 100) }'
tap_result "commit -> affinity: $ms ms (<= 100)" $? "commit $commit affinity $aff"
echo "# migration_commit_to_affinity_ms $ms"

poll_until 200 moved $U
tap_result "tenant 5's state (U) moved too, announced to B first" $? \
	"$(api "$URL/v1/migrations" | jq -c .)"
[ "$(cached "$(complete $BURL $U "$pu" "X-IDN-Tenant: 5")")" -ge 512 ] &&
	[ "$(cached "$(complete $BURL 99 "$pu" "X-IDN-Tenant: 6")")" = 0 ]
tap_result "on B in tenant 5's scope: tenant 5 hits, tenant 6 misses" $?

# pull on miss: A not busy any more (no scan move), a session W on A only
W=4714
idle() { [ "$(api "$URL/v1/nodes" | jq -r '.[] | select(.id == 1) | .load')" -lt 900 ]; }
poll_until 600 idle
pw=$(words w 600)
for _ in 1 2; do complete $AURL $W "$pw" >/dev/null; done
descw() { api "$URL/v1/nodes/1/state" | jq -e --arg t "$(hx $W)" \
	'[.descriptors[] | select(.token == $t)] | length == 1' >/dev/null; }
poll_until 100 descw
tap_result "A's descriptor names W" $? "$(api "$URL/v1/nodes/1/state" | jq -c '[.descriptors[] | {token, blocks}]')"
out=$(complete $BURL $W "$pw")
c=$(cached "$out")
[ "${c:-0}" -ge 512 ]
tap_result "W's turn sent to B: B pulled W's blocks from A before its prefill ($c cached tokens)" \
	$? "$out $(api "$URL/v1/migrations" | jq -c '[.[] | select(.why | test("pull"))]')"
m=$(api "$URL/v1/migrations" | jq -c --arg t "$(hx $W)" '[.[] | select(.token == $t)] | last')
jq -e '.result == "moved" and .from == 1 and .to == 2 and (.why | test("pull on miss")) and
	.gain_us > .transfer_us' <<<"$m" >/dev/null
tap_result "the pull's record: moved from 1 to 2, pull on miss, gain > transfer" $? "$m"
api "$BURL/metrics" | grep -Eq '^idn_agent_kv_pulled_total(\{[^}]*\})? [1-9]'
tap_result "B counts the pull (idn_agent_kv_pulled_total)" $? \
	"$(api "$BURL/metrics" | grep kv_pull)"
r=$(api -X POST "$URL/v1/nodes/2/pull" -d "{\"token\":\"$(hx 9999)\",\"lack\":3}")
code=$(post /v1/nodes/2/pull '{"token":"xyz","lack":3}')
[ "$(jq -r .verdict <<<"$r")" = none ] && [ "$code" = 400 ]
tap_result "a token nobody holds: verdict none; a bad token: 400" $? "$r $code"
grep -h "MIGRATE" "$TMPD/idnd.log" | sed "s/^/# /" | tail -8
tap_done
