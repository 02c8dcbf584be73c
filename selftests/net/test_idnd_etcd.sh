#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# test_idnd_etcd.sh - idnd's distributed mode against a real etcd started
# by the test on loopback of a private network namespace (random ports,
# own data dir, killed by pid): two controller replicas elect one leader by
# lease; nodes register as keys bound to leases; a router-side idnd (-W)
# watches the plan prefix and applies it to its pinned maps; a generation
# larger than etcd's txn limit goes in several txns and the watcher applies
# it whole (a policy class compiles into 16 plans), and a watcher that
# syncs while a generation is incomplete does not apply it; a node whose
# heartbeats stop loses its key by lease expiry, plans recompile and the
# watcher's maps follow; the leader is killed and the other replica takes
# over and publishes. Skips (4) without etcd.
if [ -z "${IDN_TEST_UNSHARED:-}" ] && [ "$(id -u)" -eq 0 ]; then
	IDN_TEST_UNSHARED=1 exec unshare -m --propagation private "$0" "$@"
fi

source "$(dirname "$0")/lib.sh"

require_root
command -v etcd >/dev/null || skip_all "etcd not installed (Debian etcd-server)"
require_cmd ip jq nsenter curl
IDND=$BUILD/idnd
require_file "$IDND" "$IDNCTL" "$BUILD/bpf/idn_steer.bpf.o"
probe_netns || skip_all "cannot create network namespaces"
probe_bpffs || skip_all "cannot mount bpffs"

make_tmpdir || exit 1
setup_ns NS || { tap_fail "netns"; tap_done; }
ip -n "$NS" link set lo up
CP=$((20000 + RANDOM % 20000))
ETCD=http://127.0.0.1:$CP
PA=$((CP + 1)) PB=$((CP + 2))
DOM=/idn/0/

start_etcd "$NS" "$ETCD" --max-txn-ops 8
up=$?
tap_result "etcd up on 127.0.0.1:$CP" $up "$(tail -5 "$TMPD/etcd.log")"
[ $up = 0 ] || tap_done

# etcd keys under the prefix (v3 JSON gateway, base64)
keys() {
	local k e
	k=$(printf '%s' "$DOM$1" | base64 -w0)
	e=$(printf '%s' "$DOM$1" | python3 -c 'import sys; s=sys.stdin.read(); print(s[:-1] + chr(ord(s[-1]) + 1), end="")' | base64 -w0)
	in_ns "$NS" curl -s -m 2 -X POST "$ETCD/v3/kv/range" \
		-d "{\"key\":\"$k\",\"range_end\":\"$e\"}" |
		jq -c '[.kvs // [] | .[] | {key: (.key | @base64d), lease: (.lease // "0")}]'
}
api() { in_ns "$NS" curl -s -m 5 "$@"; }
post() { api -o /dev/null -w '%{http_code}' -X POST --data-binary "$3" "http://127.0.0.1:$1$2"; }
leader() { api "http://127.0.0.1:$1/v1/status" | jq -r .leader; }

start_replica() {	# NAME PORT
	bg_ns "$NS" "$TMPD/idnd-$1.log" "$IDND" --insecure --enrol open -v -d "$TMPD/$1.db" -p "$2" -P none -t 1000 \
		-E "$ETCD" -N "$1" -T 8
	eval "PID_$1=\$BG_PID"
	for _ in $(seq 100); do api -o /dev/null "http://127.0.0.1:$2/v1/status" && return 0; sleep 0.05; done
	return 1
}
start_replica a $PA
for _ in $(seq 40); do [ "$(leader $PA)" = true ] && break; sleep 0.1; done
start_replica b $PB
sleep 0.6
tap_result "two replicas: a leads, b follows" \
	"$([ "$(leader $PA)" = true ] && [ "$(leader $PB)" = false ]; echo $?)"
code=$(post $PB /v1/caps '{"class":7,"name":"chat","resources":{"mem_gb":30}}')
tap_result "the follower refuses writes (503)" "$([ "$code" = 503 ]; echo $?)" "got $code"

# heartbeats for the node ids in $TMPD/hb, to both replicas (the follower says 503)
echo "1 2" >"$TMPD/hb"
hb_loop() {
	while :; do
		for n in $(cat "$TMPD/hb"); do
			for p in $PA $PB; do post $p /v1/nodes/$n/heartbeat '{"load":1}' >/dev/null; done
		done
		sleep 0.2
	done
}
for i in 1 2; do
	post $PA /v1/nodes "{\"id\":$i,\"addr4\":\"10.2.0.$i\",\"mem_gb\":80,\"region\":$i,\"trust\":6}" >/dev/null
done
hb_loop &
bg_pid $!
post $PA /v1/caps '{"class":7,"name":"chat","resources":{"mem_gb":30}}' >/dev/null
post $PA /v1/demand '{"cap":1792,"region":1,"rps":100}' >/dev/null
post $PA /v1/demand '{"cap":1792,"region":2,"rps":100}' >/dev/null
code=$(post $PA /v1/placement/solve '{}')
tap_result "leader: placement solved" "$([ "$code" = 200 ]; echo $?)" "got $code"
k=$(keys nodes/)
tap_result "nodes registered as keys bound to leases: $(jq -c 'map(.key)' <<<"$k")" \
	"$(jq -e 'length == 2 and all(.lease != "0")' <<<"$k" >/dev/null; echo $?)" "$k"
k=$(keys plans/)
tap_result "one key per capability plan: $(jq -c 'map(.key)' <<<"$k")" \
	"$(jq -e 'length == 1' <<<"$k" >/dev/null; echo $?)" "$k"

# router side: its own maps, watching the prefix
make_bpffs "$TMPD/bpf" || { tap_fail "bpffs"; tap_done; }
P=$TMPD/bpf/idn
ip -n "$NS" link add w0 type veth peer name w1
ip -n "$NS" link set w0 up; ip -n "$NS" link set w1 up
c() { "$IDNCTL" -n "$NS" -P "$P" "$@"; }
check "router dataplane attached" c dp attach dev w0
bg_ns "$NS" "$TMPD/watch.log" "$IDND" -v -W -E "$ETCD" -P "$P"
WPID=$BG_PID
cands() { c -j plan show | jq -c '[.. | objects | .node? // empty] | unique'; }
health() { c -j node show | jq -r ".. | objects | select(.id? == $1) | .health" | head -1; }
got=""
for _ in $(seq 50); do got=$(cands); [ "$got" = "[1,2]" ] && break; sleep 0.1; done
tap_result "watcher applied the plan to its maps: cap 7 -> $got" \
	"$([ "$got" = "[1,2]" ] && [ "$(health 1)" = up ]; echo $?)" "$(cat "$TMPD/watch.log")"

# a policy class no node satisfies: 16 empty (cap 7, tier, policy 7) plans,
# one generation of 16 changes in 2 txns of at most 8 ops (etcd
# --max-txn-ops 8, idnd -T 8), applied by the watcher as one generation
code=$(post $PA /v1/policies '{"name":"nobody","min_trust":7}')
gl=""
for _ in $(seq 50); do
	gl=$(grep -o 'generation [0-9]* published (16 changes, [0-9]* txns)' "$TMPD/idnd-a.log" | tail -1)
	[ -n "$gl" ] && break
	sleep 0.1
done
g=$(awk '{print $2}' <<<"$gl")
k=$(keys plans/)
tap_result "policy: $gl; $(jq length <<<"$k") plan keys in etcd" \
	"$([ "$code" = 201 ] && [ -n "$gl" ] && ! grep -q ' 1 txns' <<<"$gl" &&
	   [ "$(jq length <<<"$k")" = 17 ]; echo $?)" "$code $(tail -5 "$TMPD/idnd-a.log")"
wl=""
for _ in $(seq 50); do
	wl=$(grep "WATCH: generation $g applied" "$TMPD/watch.log")
	[ -n "$wl" ] && break
	sleep 0.1
done
n=$(c -j plan show | jq '(.. | objects | select(has("active_slot")) | .active_slot) as $s |
	[.. | objects | select(has("candidates") and .slot == $s)] | length')
tap_result "watcher applied the split generation at once: ${wl#*WATCH: }; $n plans" \
	"$([ -n "$wl" ] && [ "$n" = 17 ] &&
	   ! grep -q "applied as local generation [0-9]* ([1-9] changes)" <<<"$wl"; echo $?)" \
	"$(tail -5 "$TMPD/watch.log")"
code=$(api -o /dev/null -w '%{http_code}' -X DELETE "http://127.0.0.1:$PA/v1/policies/7")
got=0
for _ in $(seq 50); do
	got=$(c -j plan show | jq '(.. | objects | select(has("active_slot")) | .active_slot) as $s |
		[.. | objects | select(has("candidates") and .slot == $s)] | length')
	[ "$got" = 1 ] && break
	sleep 0.1
done
tap_result "policy deleted: its 16 plans left etcd and the watcher's maps ($got)" \
	"$([ "$code" = 200 ] && [ "$got" = 1 ] && [ "$(keys plans/ | jq length)" = 1 ]; echo $?)"

# a generation cut short (a leader that died between its txns): a plan key
# in etcd without its gen. A watcher that syncs now reads the prefix at the
# revision of gen and does not apply it; the gen that completes the
# generation makes the watcher apply it. In domain 1 (/idn/1/), which has
# no controller (none could publish in between), with its own maps.
etcd_put() {	# KEY VALUE-BASE64
	in_ns "$NS" curl -s -m 2 -X POST "$ETCD/v3/kv/put" \
		-d "{\"key\":\"$(printf '%s' "$1" | base64 -w0)\",\"value\":\"$2\"}" >/dev/null
}
# the plan's stateless ring: its size from the UAPI header
SL_RING=$(awk '$1 == "#define" && $2 == "IDN_SL_RING" {print $3}' "$IDN_ROOT/include/uapi/linux/idn.h")
plan_b64() {	# CAP NODE: struct idn_plan_key + struct idn_plan, one candidate
	python3 -c '
import base64, struct, sys
cap, node = int(sys.argv[1]), int(sys.argv[2])
key = struct.pack("<IBBBB", cap, 255, 255, 0, 0)
# header (wan_ns_per_byte last), 16 candidates, the stateless ring (left 0)
plan = struct.pack("<IIII6HBBHI", 0, 0, 0, 0xffffffff, *[256] * 6, 0, 1, 0, 0)
plan += struct.pack("<IIIHBB", node, 1000, 0, 0, 0, 0) + bytes(16 * 15)
plan += bytes(int(sys.argv[3]))
print(base64.b64encode(key + plan).decode())' "$1" "$2" "$SL_RING"
}
make_bpffs "$TMPD/bpf2" || { tap_fail "bpffs"; tap_done; }
P2=$TMPD/bpf2/idn
ip -n "$NS" link add x0 type veth peer name x1
ip -n "$NS" link set x0 up; ip -n "$NS" link set x1 up
c2() { "$IDNCTL" -n "$NS" -P "$P2" "$@"; }
c2 dp attach dev x0 >/dev/null
etcd_put /idn/1/plans/1792-255-255 "$(plan_b64 1792 1)"	# generation 1: cap 7
etcd_put /idn/1/gen "$(printf 1 | base64 -w0)"
etcd_put /idn/1/plans/4096-255-255 "$(plan_b64 4096 1)"	# generation 2, cut short
bg_ns "$NS" "$TMPD/watch2.log" "$IDND" -v -W -E "$ETCD" -D 1 -P "$P2"
W2=$BG_PID
for _ in $(seq 50); do grep -q 'WATCH: synced' "$TMPD/watch2.log" && break; sleep 0.1; done
caps() { c2 -j plan show | jq -c '(.. | objects | select(has("active_slot")) | .active_slot) as $s |
	[.. | objects | select(has("candidates") and .slot == $s) | .cap] | unique'; }
got=$(caps)
tap_result "watcher synced at gen's revision: the incomplete generation's plan (16/0) not applied: $got" \
	"$(grep -q 'WATCH: synced' "$TMPD/watch2.log" && [ "$got" = '["7/0"]' ]; echo $?)" \
	"$(cat "$TMPD/watch2.log")"
etcd_put /idn/1/gen "$(printf 2 | base64 -w0)"
for _ in $(seq 50); do got=$(caps); [ "$got" = '["16/0","7/0"]' ] && break; sleep 0.1; done
tap_result "its gen arrives: the watcher applies it ($got)" \
	"$([ "$got" = '["16/0","7/0"]' ] &&
	   grep -q 'WATCH: generation 2 applied as local generation [0-9]* (1 changes)' "$TMPD/watch2.log"
	   echo $?)" "$(tail -5 "$TMPD/watch2.log")"
kill "$W2"; wait "$W2" 2>/dev/null
c2 dp detach dev x0 >/dev/null 2>&1

# node 2 goes silent: lease expiry removes its key, plans recompile, maps follow
echo 1 >"$TMPD/hb"
t0=$(date +%s%N)
gone=1
for _ in $(seq 80); do
	jq -e 'map(.key) | index("/idn/0/nodes/2") == null' <<<"$(keys nodes/)" >/dev/null &&
		{ gone=0; break; }
	sleep 0.1
done
t1=$(date +%s%N)
tap_result "lease expiry removed node 2's key ($(( (t1 - t0) / 1000000 )) ms)" $gone
got=""
for _ in $(seq 30); do got=$(cands); [ "$got" = "[1]" ] && break; sleep 0.1; done
tap_result "plans recompiled, watcher's maps: cap 7 -> $got, node 2 $(health 2)" \
	"$([ "$got" = "[1]" ] && [ "$(health 2)" = down ]; echo $?)" "$(tail -5 "$TMPD/watch.log")"

# kill the leader: b takes over (leader key expires) and publishes
kill -9 "$PID_a"; wait "$PID_a" 2>/dev/null
t0=$(date +%s%N)
for _ in $(seq 80); do [ "$(leader $PB)" = true ] && break; sleep 0.1; done
t1=$(date +%s%N)
tap_result "leader killed: b took over in $(( (t1 - t0) / 1000000 )) ms" \
	"$([ "$(leader $PB)" = true ]; echo $?)" "$(tail -5 "$TMPD/idnd-b.log")"
post $PB /v1/caps '{"class":8,"name":"code","resources":{"mem_gb":20}}' >/dev/null
post $PB /v1/demand '{"cap":2048,"region":1,"rps":50}' >/dev/null
code=$(post $PB /v1/placement/solve '{}')
got=""
for _ in $(seq 30); do
	got=$(c -j plan show | jq -c '[.. | objects | select(.cap? != null) | .cap] | unique')
	grep -q '8' <<<"$got" && grep -q '7' <<<"$got" && break
	sleep 0.1
done
tap_result "new leader loaded the registry and published: plans $got (solve $code)" \
	"$(grep -q "8" <<<"$got" && grep -q "7" <<<"$got"; echo $?)" "$(tail -5 "$TMPD/idnd-b.log"; api http://127.0.0.1:$PB/v1/placement; api http://127.0.0.1:$PB/v1/nodes; c -j plan show)"
kill "$WPID"
tap_done
