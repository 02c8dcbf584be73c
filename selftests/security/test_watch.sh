#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# test_watch.sh - a router's watcher (idnd -W) applies from etcd only plan
# and node values idnd could have written (docs/security.md, "Router
# watchers"). Someone who can write etcd's prefix (a stolen etcd client
# certificate, an etcd without auth) puts forged values there; each must be
# refused with a "WATCH: refused" log line that says why and counts it, and
# the router's maps must keep the plan they had:
#   a candidate node out of range, 200 candidates, a truncated value, a
#   value whose plan key is another capability's, a weight over the bound,
#   an absurd cost, a plan for capability class 0, a node value naming
#   another node, and (after a watcher restart, full sync) the forged value
#   still in etcd leaves the plan in the maps as it was.
# Every attack's TAP line starts "attack:" (counted by run.sh).
# Skips (4) without etcd.
if [ -z "${IDN_TEST_UNSHARED:-}" ] && [ "$(id -u)" -eq 0 ]; then
	IDN_TEST_UNSHARED=1 exec unshare -m --propagation private "$0" "$@"
fi

source "$(dirname "$0")/../net/lib.sh"

require_root
command -v etcd >/dev/null || skip_all "etcd not installed (Debian etcd-server)"
require_cmd ip jq nsenter curl python3 base64
IDND=$BUILD/idnd
require_file "$IDND" "$IDNCTL" "$BUILD/bpf/idn_steer.bpf.o"
probe_netns || skip_all "cannot create network namespaces"
probe_bpffs || skip_all "cannot mount bpffs"

make_tmpdir || exit 1
setup_ns NS || { tap_fail "netns"; tap_done; }
ip -n "$NS" link set lo up
CP=$((20000 + RANDOM % 20000))
ETCD=http://127.0.0.1:$CP
PA=$((CP + 1))
DOM=/idn/0/

start_etcd "$NS" "$ETCD"
up=$?
check "etcd up on 127.0.0.1:$CP" test $up = 0
[ $up = 0 ] || tap_done

api() { in_ns "$NS" curl -s -m 5 "$@"; }
post() { api -o /dev/null -w '%{http_code}' -X POST --data-binary "$2" "http://127.0.0.1:$PA$1"; }
# eget KEY: the value's bytes, base64; eput KEY B64VALUE
eget() {
	api -X POST "$ETCD/v3/kv/range" -d "{\"key\":\"$(printf '%s' "$DOM$1" | base64 -w0)\"}" |
		jq -r '.kvs[0].value // empty'
}
eput() {
	api -o /dev/null -X POST "$ETCD/v3/kv/put" \
		-d "{\"key\":\"$(printf '%s' "$DOM$1" | base64 -w0)\",\"value\":\"$2\"}"
}

bg_ns "$NS" "$TMPD/idnd.log" "$IDND" --insecure --enrol open -d "$TMPD/a.db" -p "$PA" -P none \
	-t 60000 -E "$ETCD" -N a
for _ in $(seq 100); do
	[ "$(api "http://127.0.0.1:$PA/v1/status" | jq -r .leader 2>/dev/null)" = true ] && break
	sleep 0.1
done
for i in 1 2; do
	post /v1/nodes "{\"id\":$i,\"addr4\":\"10.2.0.$i\",\"mem_gb\":80,\"region\":$i,\"trust\":6}" \
		>/dev/null
	post /v1/nodes/$i/heartbeat '{"load":1}' >/dev/null
done
post /v1/caps '{"class":7,"name":"chat","resources":{"mem_gb":30}}' >/dev/null
post /v1/demand '{"cap":1792,"region":1,"rps":100}' >/dev/null
post /v1/demand '{"cap":1792,"region":2,"rps":100}' >/dev/null
code=$(post /v1/placement/solve '{}')
PK=plans/1792-255-255
GOOD=$(eget $PK)
check "leader solved and published plan $PK" test "$code" = 200 -a -n "$GOOD"

make_bpffs "$TMPD/bpf" || { tap_fail "bpffs"; tap_done; }
P=$TMPD/bpf/idn
ip -n "$NS" link add sw0 type veth peer name sw1
ip -n "$NS" link set sw0 up; ip -n "$NS" link set sw1 up
c() { "$IDNCTL" -n "$NS" -P "$P" "$@"; }
check "router dataplane attached" c dp attach dev sw0
start_watch() {
	bg_ns "$NS" "$TMPD/watch.log" "$IDND" -v -W -E "$ETCD" -P "$P"
	WPID=$BG_PID
}
start_watch
# the active slot's plans, generation and slot left out (a commit flips them)
plans() {
	c -j plan show | jq -cS '(.. | objects | select(has("active_slot")) | .active_slot) as $s |
		[.. | objects | select(has("candidates") and .slot == $s) |
		 walk(if type == "object" then del(.generation, .slot) else . end)]'
}
cands() { c -j plan show | jq -c '[.. | objects | .node? // empty] | unique'; }
got=""
for _ in $(seq 50); do got=$(cands); [ "$got" = "[1,2]" ] && break; sleep 0.1; done
BEFORE=$(plans)
check "watcher applied the plan: cap 7 -> $got, $(jq length <<<"$BEFORE") plan in the maps" \
	test "$got" = "[1,2]" -a "$(jq length <<<"$BEFORE")" = 1

# forge B64 OFFSET-FORMAT-VALUE...: the good value with fields rewritten
# (struct plan_val: idn_plan_key 8 bytes, then struct idn_plan)
forge() {
	python3 - "$GOOD" "$@" <<'EOF'
import base64, struct, sys
v = bytearray(base64.b64decode(sys.argv[1]))
for a in sys.argv[2:]:
    off, fmt, val = a.split(":")
    if fmt == "cut":
        v = v[:int(off)]
        continue
    struct.pack_into("<" + fmt, v, int(off), int(val, 0))
print(base64.b64encode(bytes(v)).decode())
EOF
}
GEN=1000
# attack NAME KEY B64 LOG-PATTERN: put a forged value (then a gen, so the
# watcher would apply a generation), expect the refusal and the maps as before
attack() {
	local name=$1 key=$2 val=$3 pat=$4 lines new after
	lines=$(wc -l <"$TMPD/watch.log")
	eput "$key" "$val"
	GEN=$((GEN + 1))
	eput gen "$(printf '%s' $GEN | base64 -w0)"
	for _ in $(seq 30); do
		tail -n +$((lines + 1)) "$TMPD/watch.log" | grep -q "WATCH: refused" && break
		sleep 0.1
	done
	sleep 0.2
	new=$(tail -n +$((lines + 1)) "$TMPD/watch.log")
	after=$(plans)
	tap_result "attack: $name: refused, the maps keep their plan" \
		"$(grep -q "WATCH: refused $DOM$key.*$pat" <<<"$new" && [ "$after" = "$BEFORE" ]; echo $?)" \
		"log: $(head -3 <<<"$new"); maps: $after"
}
# offsets in the value: plan at 8; weight[] at 8+16; n_cand at 8+29;
# wan_ns_per_byte at 8+32; cand[i] at 8+36+16*i
attack "a candidate node out of range (5000)" $PK "$(forge 44:I:5000)" "node 5000 out of range"
attack "200 candidates" $PK "$(forge 37:B:200)" "200 candidates"
attack "a truncated plan value" $PK "$(forge 100:cut:0)" "100 bytes, a plan is"
attack "a plan value whose key is another capability's" $PK "$(forge 0:I:2048)" \
	"plan key is not its etcd key"
attack "a weight over the bound (255.99)" $PK "$(forge 32:H:65535)" "weight 4 is 65535"
attack "a candidate cost of 4295 s" $PK "$(forge 48:I:0xffffffff)" "over 3600000000 us"
attack "a WAN price of 4.3 s per byte" $PK "$(forge 40:I:0xffffffff)" "wan price 4294967295"
attack "a plan for capability class 0" plans/7-255-255 \
	"$(forge 0:I:7)" "class 0 is no capability"
lines=$(wc -l <"$TMPD/watch.log")
eput nodes/3 "$(printf '%s' '{"id":4,"addr4":"10.2.0.66","mem_gb":80,"region":0,"trust":7}' |
	base64 -w0)"
sleep 0.5
new=$(tail -n +$((lines + 1)) "$TMPD/watch.log")
tap_result "attack: a node value naming another node (nodes/3 says 4): refused, no node 3 or 4" \
	"$(grep -q "WATCH: refused ${DOM}nodes/3.*names node 4" <<<"$new" &&
	   ! c -j node show | jq -e '.. | objects | select(.id? == 3 or .id? == 4)' >/dev/null; echo $?)" \
	"log: $new"
# telemetry keys (telekeys/ID): one naming another node, one not 32 hex
lines=$(wc -l <"$TMPD/watch.log")
eput telekeys/3 "$(printf '%s' '{"id":4,"key_id":1,"key":"00112233445566778899aabbccddeeff"}' |
	base64 -w0)"
eput telekeys/2 "$(printf '%s' '{"id":2,"key_id":1,"key":"0011"}' | base64 -w0)"
sleep 0.5
new=$(tail -n +$((lines + 1)) "$TMPD/watch.log")
tap_result "attack: telemetry keys naming another node or malformed: refused, none in the maps" \
	"$(grep -q "WATCH: refused ${DOM}telekeys/3.*not a telemetry key of this node" <<<"$new" &&
	   grep -q "WATCH: refused ${DOM}telekeys/2.*32 hex" <<<"$new" &&
	   ! c node tele-key id 3 >/dev/null 2>&1 && ! c node tele-key id 4 >/dev/null 2>&1 &&
	   ! c node tele-key id 2 >/dev/null 2>&1; echo $?)" "log: $new"
# the forged plan value is still in etcd: a watcher starting now syncs past it
kill "$WPID"; wait "$WPID" 2>/dev/null
eput $PK "$(forge 44:I:5000)"
: >"$TMPD/watch.log"
start_watch
for _ in $(seq 50); do grep -q "WATCH: synced" "$TMPD/watch.log" && break; sleep 0.1; done
sleep 0.2
tap_result "attack: the forged plan still in etcd at a watcher's full sync: refused, the maps keep their plan" \
	"$(grep -q "WATCH: refused $DOM$PK.*node 5000 out of range" "$TMPD/watch.log" &&
	   [ "$(plans)" = "$BEFORE" ]; echo $?)" "$(head -5 "$TMPD/watch.log"); maps: $(plans)"
# the leader's next generation writes the real plan back: applied again
lines=$(wc -l <"$TMPD/watch.log")
eput $PK "$GOOD"
GEN=$((GEN + 1))
eput gen "$(printf '%s' $GEN | base64 -w0)"
for _ in $(seq 30); do
	tail -n +$((lines + 1)) "$TMPD/watch.log" | grep -q "generation $GEN applied" && break
	sleep 0.1
done
new=$(tail -n +$((lines + 1)) "$TMPD/watch.log")
tap_result "a good value after the forged ones is applied (the watcher still works)" \
	"$(grep -q "generation $GEN applied" <<<"$new" && ! grep -q refused <<<"$new" &&
	   [ "$(plans)" = "$BEFORE" ]; echo $?)" "log: $new"

tap_done
