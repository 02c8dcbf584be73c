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
#     is printed as a TAP comment; make bench prints it (tools/bench/run.sh);
#   - distributed mode (with etcd; skipped without): etcd of the test's
#     own, replicas a (leader, the router's maps) and b (no maps), a second
#     router fed only by a watcher (idnd -W): a pull's move decided by a
#     re-points both routers (affmoves/TOKEN under a's lease, applied by
#     the watcher within 1 s of a's write: migration_etcd_repoint_ms), a
#     deletes the key 10 s later; a killed after a move whose key is still
#     there: b leads, the key went with a's lease and the router's later
#     choice is not undone; the watcher's rule: a token the router sent to
#     a third node is kept, a re-point written 60 s ago is stale; bad keys
#     and values are refused and counted.
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
IDND_PID=$BG_PID
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

# ---- distributed mode (etcd): the re-point reaches a router fed by etcd only
if ! command -v etcd >/dev/null; then
	tap_skip "distributed mode: re-points through etcd" "etcd not installed (Debian etcd-server)"
	tap_done
fi
kill -TERM "$IDND_PID"; wait "$IDND_PID" 2>/dev/null
EP=$((10000 + RANDOM % 20000))	# below the ephemeral port range
ETCD=http://127.0.0.1:$EP DOM=/idn/0/
start_etcd "$NS_RTR" "$ETCD" || { tap_fail "etcd up" "$(tail -5 "$TMPD/etcd.log")"; tap_done; }
# replica a leads on idnd's port (the agents' --controller) with the
# router's maps; b follows without maps; the agents register again with a
# (heartbeats answered 404 by the new registry)
bg_ns "$NS_RTR" "$TMPD/idnd-a.log" "$BUILD/idnd" --insecure --enrol open -d "$TMPD/a.db" \
	-P "$PIN/rtr" -t 60000 --migrate -v -E "$ETCD" -N a
PID_A=$BG_PID
leader() { [ "$(api "http://127.0.0.1:$1/v1/status" | jq -r .leader)" = true ]; }
poll_until 200 leader 8787
bg_ns "$NS_RTR" "$TMPD/idnd-b.log" "$BUILD/idnd" --insecure --enrol open -d "$TMPD/b.db" \
	-p 8788 -P none -t 60000 --migrate -v -E "$ETCD" -N b
poll_until 200 api -o /dev/null http://127.0.0.1:8788/v1/status
poll_until 400 upn
post /v1/caps "{\"class\":7,\"variant\":0,\"name\":\"chat\",\"resources\":{\"mem_gb\":$mem}}" >/dev/null
post /v1/caps "{\"class\":7,\"variant\":1,\"name\":\"chat1\",\"resources\":{\"mem_gb\":$mem}}" >/dev/null
post /v1/demand '{"cap":1792,"region":0,"rps":1}' >/dev/null
post /v1/demand '{"cap":1793,"region":0,"rps":1}' >/dev/null
post /v1/placement/solve '{}' >/dev/null
pl=$(api "$URL/v1/placement" | jq -c '[.[] | .node] | sort')
leader 8787 && ! leader 8788 && upn && [ "$pl" = "[1,2]" ]
tap_result "etcd mode: a leads, b follows, both agents up on a, class 7 on both nodes" $? \
	"$pl $(tail -5 "$TMPD/idnd-a.log")"
# a second router: its own dataplane, fed only by a watcher (idnd -W)
ip -n "$NS_RTR" link add wr0 type veth peer name wr1
ip -n "$NS_RTR" link set wr0 up; ip -n "$NS_RTR" link set wr1 up
mkdir -p "$PIN/rtr2"
c2() { in_ns "$NS_RTR" "$IDNCTL" -P "$PIN/rtr2" "$@"; }
check "second router's dataplane attached" c2 dp attach dev wr0
on_cleanup 'c2 dp detach dev wr0 >/dev/null 2>&1'
bg_ns "$NS_RTR" "$TMPD/watch.log" "$BUILD/idnd" -v -W -E "$ETCD" -P "$PIN/rtr2"
WPID=$BG_PID
aff2_node() { c2 -j dp affinity "$1" "$2" 2>/dev/null | jq -r '.node // empty'; }
aff2_set() { c2 dp affinity "$1" "$2" node "$3" >/dev/null; }
wsynced() { grep -q 'WATCH: synced' "$TMPD/watch.log"; }
poll_until 200 wsynced
tap_result "the watcher synced the second router from etcd" $? "$(tail -5 "$TMPD/watch.log")"
# affmoves/TOKEN as etcd has it: {value..., lease}, "" if none
mkey() {
	api -X POST "$ETCD/v3/kv/range" -d "{\"key\":\"$(printf '%s' "${DOM}affmoves/$1" | base64 -w0)\"}" |
		jq -c '[.kvs // [] | .[] | (.value | @base64d | fromjson) + {lease: (.lease // "0")}] | .[0] // empty'
}
# move TOKEN: a session on A, both routers' affinity -> node 1, then its
# turn on B: pull on miss, decided by the leader a, A pushes, B commits
move() {
	local p
	p=$(words "x$1" 600)
	for _ in 1 2; do complete $AURL "$1" "$p" >/dev/null; done
	poll_until 100 descw_of "$1" || return 1
	aff_set "$1" $CLS 1; aff2_set "$1" $CLS 1
	[ "$(cached "$(complete $BURL "$1" "$p")")" -ge 512 ]
}
descw_of() { api "$URL/v1/nodes/1/state" | jq -e --arg t "$(hx "$1")" \
	'[.descriptors[] | select(.token == $t)] | length == 1' >/dev/null; }
X=4721 Y=4722
move $X
mv=$?
wait_for 10 '[ "$(aff2_node $X $CLS)" = 2 ]'
k=$(mkey "$(hx $X)")
[ $mv = 0 ] && moved $X && [ "$(aff_node $X $CLS)" = 2 ] && [ "$(aff2_node $X $CLS)" = 2 ] &&
	jq -e '.src == 1 and .dst == 2 and .classes == [7] and .at > 0 and .lease != "0"' <<<"$k" >/dev/null
tap_result "a's move of X (pull on miss): a's router and the etcd-fed router -> node 2, affmoves/$(hx $X) under a's lease" \
	$? "move $mv; routers $(aff_node $X $CLS) $(aff2_node $X $CLS); key $k; $(grep -h 're-point' "$TMPD/idnd-a.log" "$TMPD/watch.log")"
# the leader's write to the watcher's map write, by the leader's clock ("at")
# and the watcher's (one host here)
ems=$(sed -n "s/.*re-point $(hx $X) node 1 -> 2 (revision [0-9]*, \([0-9-]*\) ms after the leader wrote it): 1 re-pointed.*/\1/p" \
	"$TMPD/watch.log" | head -1)
[ -n "$ems" ] && [ "$ems" -ge 0 ] && [ "$ems" -le 1000 ]
tap_result "etcd -> watcher: the re-point applied $ems ms after the leader wrote it (<= 1000)" $? \
	"$(grep 're-point' "$TMPD/watch.log")"
echo "# migration_etcd_repoint_ms $ems"
# clean-up: the leader deletes the key 10 s after writing it
t0=$SECONDS
wait_for 25 '[ -z "$(mkey "$(hx $X)")" ]'
tap_result "affmoves/$(hx $X) deleted by the leader after $((SECONDS - t0)) s more (kept 10 s)" \
	"$([ -z "$(mkey "$(hx $X)")" ] && leader 8787; echo $?)" "$(mkey "$(hx $X)")"

# failover: Y moved, its key still in etcd; the etcd-fed router then sends
# Y to node 1 again (its own, newer choice); a killed: b takes over, a's
# keys went with its lease, nothing re-points Y again
move $Y
mv=$?
wait_for 10 '[ "$(aff2_node $Y $CLS)" = 2 ]'
ky=$(mkey "$(hx $Y)")
aff2_set $Y $CLS 1
kill -9 "$PID_A"; wait "$PID_A" 2>/dev/null
poll_until 400 leader 8788
lb=$?
wait_for 10 '[ -z "$(mkey "$(hx $Y)")" ]'
sleep 1
n_y=$(grep -c "re-point $(hx $Y) " "$TMPD/watch.log")
[ $mv = 0 ] && [ -n "$ky" ] && [ $lb = 0 ] && [ -z "$(mkey "$(hx $Y)")" ] &&
	[ "$(aff2_node $Y $CLS)" = 1 ] && [ "$n_y" = 1 ] && ! grep -q 're-point for the routers' "$TMPD/idnd-b.log"
tap_result "failover: b leads, a's affmoves/$(hx $Y) gone with its lease, not replayed: the router keeps its own choice (node $(aff2_node $Y $CLS))" \
	$? "move $mv key $ky leader $lb; $(grep 're-point' "$TMPD/watch.log")"

# the rule, with values written straight to etcd (fresh: "at" now)
eput() { api -o /dev/null -X POST "$ETCD/v3/kv/put" -d "{\"key\":\"$(printf '%s' "${DOM}affmoves/$1" |
	base64 -w0)\",\"value\":\"$(printf '%s' "$2" | base64 -w0)\"}"; }
nowms() { date +%s%3N; }
K=4731 Z=4732
aff2_set $K $CLS 3	# the router sent K to node 3 since
eput "$(hx $K)" "{\"src\":1,\"dst\":2,\"classes\":[7],\"at\":$(nowms)}"
wait_for 10 "grep -q 're-point $(hx $K) node 1 -> 2' \"$TMPD/watch.log\""
[ "$(aff2_node $K $CLS)" = 3 ] && grep -q "re-point $(hx $K) node 1 -> 2 .*0 re-pointed, 0 already there, 1 kept" "$TMPD/watch.log"
tap_result "a re-point for a token the router has since sent to another node: its entry kept (node $(aff2_node $K $CLS)), counted" \
	$? "$(grep 're-point' "$TMPD/watch.log" | tail -2)"
aff2_set $Z $CLS 1	# a re-point read 60 s late (a watcher that restarted): stale
eput "$(hx $Z)" "{\"src\":1,\"dst\":2,\"classes\":[7],\"at\":$(( $(nowms) - 60000 ))}"
wait_for 10 "grep -q 're-point $(hx $Z) .*is stale' \"$TMPD/watch.log\""
[ "$(aff2_node $Z $CLS)" = 1 ]
tap_result "a stale re-point (written 60 s ago): not applied, counted (node $(aff2_node $Z $CLS))" $? \
	"$(grep 're-point' "$TMPD/watch.log" | tail -2)"
r0=$(grep -c 'refused .*affmoves/' "$TMPD/watch.log")
now=$(nowms)
eput 00000000000000c1 'not json'
eput 0000000000000000 "{\"src\":1,\"dst\":2,\"classes\":[7],\"at\":$now}"
eput 00000000000000c2 "{\"src\":1,\"dst\":1,\"classes\":[7],\"at\":$now}"
eput 00000000000000c3 "{\"src\":1,\"dst\":5000,\"classes\":[7],\"at\":$now}"
eput 00000000000000c4 "{\"src\":1,\"dst\":2,\"classes\":[7],\"at\":$now,\"x\":1}"
eput 00000000000000c5 "{\"src\":1,\"dst\":2,\"classes\":[7]}"
eput 00000000000000c6 "{\"src\":1,\"dst\":4090,\"classes\":[7],\"at\":$now}"
eput 00000000000000C7 "{\"src\":1,\"dst\":2,\"classes\":[7],\"at\":$now}"
mrefused() { for t in c1 c2 c3 c4 c5 c6 C7; do grep -q "refused ${DOM}affmoves/00000000000000$t " \
	"$TMPD/watch.log" || return 1; done; grep -q "refused ${DOM}affmoves/0000000000000000 " "$TMPD/watch.log"; }
wait_for 20 mrefused
none2() { for t in "$@"; do [ -z "$(aff2_node "$t" $CLS)" ] || return 1; done; }
mrefused && [ "$(grep -c 'refused .*affmoves/' "$TMPD/watch.log")" -eq $((r0 + 8)) ] && kill -0 $WPID &&
	none2 193 194 195 196 197 198 199 0
tap_result "bad affmoves keys and values (not JSON, token 0, src = dst, node 5000, unknown field, no at, a peer's id, upper case): refused, counted" \
	$? "$(grep 'refused .*affmoves/' "$TMPD/watch.log")"
api -o /dev/null -X POST "$ETCD/v3/kv/deleterange" -d "{\"key\":\"$(printf '%s' "${DOM}affmoves/" |
	base64 -w0)\",\"range_end\":\"$(printf '%s' "${DOM}affmoves0" | base64 -w0)\"}"
grep -h "re-point" "$TMPD/watch.log" | sed "s/^/# /" | tail -6
tap_done
