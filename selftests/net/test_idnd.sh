#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# test_idnd.sh - the controller daemon build/idnd end to end, in a network
# namespace of its own: the HTTP API rejects malformed, oversized and
# hostile bodies with a clear 4xx and changes nothing; kill -9 during a
# stream of writes loses no acknowledged write; with the dataplane
# attached, registered nodes and a solved placement are compiled into the
# pinned maps (idnctl plan show / node show), and a node whose heartbeats
# stop is marked down and leaves every plan within timeout + 100 ms.
if [ -z "${IDN_TEST_UNSHARED:-}" ] && [ "$(id -u)" -eq 0 ]; then
	IDN_TEST_UNSHARED=1 exec unshare -m --propagation private "$0" "$@"
fi

source "$(dirname "$0")/lib.sh"

require_root
require_cmd ip jq nsenter curl
IDND=$BUILD/idnd
require_file "$IDND" "$IDNCTL"
probe_netns || skip_all "cannot create network namespaces"

make_tmpdir || exit 1
setup_ns NS || { tap_fail "netns"; tap_done; }
PORT=8787
URL=http://127.0.0.1:$PORT
TMO=1500	# heartbeat timeout (ms): generous, the machine may be loaded

# req METHOD PATH [BODY-FILE]: prints "CODE BODY"
req() {
	local m=$1 p=$2 f=${3:-}
	if [ -n "$f" ]; then
		in_ns "$NS" curl -s -m 5 -o "$TMPD/resp" -w '%{http_code}' -X "$m" \
			--data-binary "@$f" "$URL$p"
	else
		in_ns "$NS" curl -s -m 5 -o "$TMPD/resp" -w '%{http_code}' -X "$m" "$URL$p"
	fi
}
body() { printf '%s' "$1" >"$TMPD/body"; echo "$TMPD/body"; }
state() { in_ns "$NS" curl -s "$URL/v1/caps"; in_ns "$NS" curl -s "$URL/v1/nodes" |
	jq -c 'map(del(.hb_age_ms, .state, .heartbeats))'; in_ns "$NS" curl -s "$URL/v1/placement"; }

# not in a subshell: sets IDND_PID (and cleanup's pid list)
start_idnd() {
	bg_ns "$NS" "$TMPD/idnd.log" "$IDND" --insecure --enrol open -d "$TMPD/idnd.db" -p $PORT -t $TMO "$@"
	IDND_PID=$BG_PID
	for _ in $(seq 100); do
		in_ns "$NS" curl -s -o /dev/null "$URL/v1/status" && return 0
		sleep 0.05
	done
	return 1
}

start_idnd -P none
tap_result "idnd starts (controller only)" $?

code=$(req POST /v1/caps "$(body '{"class":1,"name":"llama-8b","tier":2,"resources":{"mem_gb":16},"security":{"min_trust":2}}')")
tap_result "register capability: 201" "$([ "$code" = 201 ]; echo $?)" "got $code $(cat "$TMPD/resp")"
code=$(req POST /v1/nodes "$(body '{"id":1,"addr4":"10.1.0.1","mem_gb":80,"region":0,"trust":5}')")
tap_result "register node: 201" "$([ "$code" = 201 ]; echo $?)" "got $code"

before=$(state)
bad() {	# bad NAME EXPECTED-CODE METHOD PATH BODY-FILE MESSAGE-PATTERN
	local name=$1 want=$2 code msg
	code=$(req "$3" "$4" "$5")
	msg=$(jq -r .error "$TMPD/resp" 2>/dev/null)
	[ "$code" = "$want" ] && [ -n "$msg" ] && [ "$msg" != null ] && grep -qiE -- "$6" <<<"$msg"
	tap_result "hostile: $name -> $want" $? "got $code: $(head -c 300 "$TMPD/resp")"
}
bad "unknown top-level field" 400 POST /v1/caps "$(body '{"class":2,"name":"x","resources":{"mem_gb":1},"evil":1}')" 'unknown field "evil"'
bad "unknown nested field" 400 POST /v1/caps "$(body '{"class":2,"name":"x","resources":{"mem_gb":1,"gpu":"h100"}}')" 'resources: unknown field "gpu"'
bad "wrong type" 400 POST /v1/caps "$(body '{"class":"2","name":"x","resources":{"mem_gb":1}}')" 'expected an integer'
bad "class out of range" 400 POST /v1/caps "$(body '{"class":16777216,"name":"x","resources":{"mem_gb":1}}')" 'out of range'
bad "missing field" 400 POST /v1/caps "$(body '{"class":3,"resources":{"mem_gb":1}}')" 'missing field "name"'
bad "not JSON" 400 POST /v1/caps "$(body 'class=1&name=x')" 'invalid JSON'
bad "trailing garbage" 400 POST /v1/caps "$(body '{"class":3,"name":"x","resources":{"mem_gb":1}} {}')" 'trailing'
bad "array instead of object" 400 POST /v1/nodes "$(body '[1,2,3]')" 'object'
bad "deep nesting" 400 POST /v1/caps "$(body "$(printf '%.0s[' $(seq 200))")" 'invalid JSON'
bad "NUL byte" 400 POST /v1/caps "$(printf '{"class":3,"name":"a\0b","resources":{"mem_gb":1}}' >"$TMPD/nul"; echo "$TMPD/nul")" 'NUL'
bad "control character in string" 400 POST /v1/caps "$(body '{"class":3,"name":"a\u0001b","resources":{"mem_gb":1}}')" 'control'
head -c 200000 /dev/zero | tr '\0' ' ' >"$TMPD/big"
bad "oversized body" 413 POST /v1/caps "$TMPD/big" 'larger than'
bad "node id out of range" 400 POST /v1/nodes "$(body '{"id":4096,"addr4":"10.1.0.9","mem_gb":8}')" 'out of range'
bad "bad locator" 400 POST /v1/nodes "$(body '{"id":9,"addr4":"10.1.0.999","mem_gb":8}')" 'IPv4'
bad "no locator" 400 POST /v1/nodes "$(body '{"id":9,"mem_gb":8}')" 'locator'
bad "negative memory" 400 POST /v1/nodes "$(body '{"id":9,"addr4":"10.1.0.9","mem_gb":-1}')" 'out of range'
bad "lineage parent unknown" 422 POST /v1/caps "$(body '{"class":4,"name":"q","resources":{"mem_gb":1},"lineage":{"parent":999,"method":"quantization"}}')" 'parent'
bad "lineage method without parent" 400 POST /v1/caps "$(body '{"class":4,"name":"q","resources":{"mem_gb":1},"lineage":{"method":"adapter"}}')" 'needs a parent'
bad "older version" 409 POST /v1/caps "$(body '{"class":1,"name":"llama-8b","version":0,"resources":{"mem_gb":16}}')" 'older'
bad "heartbeat unknown node" 404 POST /v1/nodes/77/heartbeat "$(body '{"load":1}')" 'not registered'
bad "heartbeat bad value" 400 POST /v1/nodes/1/heartbeat "$(body '{"load":5000}')" 'load'
bad "demand unknown cap" 404 POST /v1/demand "$(body '{"cap":12345,"region":0,"rps":1}')" 'no capability'
bad "demand region out of range" 400 POST /v1/demand "$(body '{"cap":256,"region":99,"rps":1}')" 'region'
bad "solve unknown field" 400 POST /v1/placement/solve "$(body '{"dry_run":true,"x":1}')" 'unknown field'
bad "unknown endpoint" 404 GET /v1/nope "" 'no such endpoint'
bad "wrong method" 405 PUT /v1/caps "" 'not allowed'
bad "explain without cap" 400 GET /v1/placement/explain "" 'cap'
after=$(state)
[ "$before" = "$after" ]
tap_result "state unchanged after every rejected request" $? "before: $before after: $after"

out=$(in_ns "$NS" curl -s "$URL/metrics")
grep -q '^idnd_http_client_errors_total [1-9]' <<<"$out" &&
	grep -q '^idnd_node_up{node="1"} [01]$' <<<"$out"
tap_result "/metrics: Prometheus text with the 4xx count and node 1's state" $? "$out"
if command -v promtool >/dev/null; then
	pt=$(promtool check metrics <<<"$out" 2>&1)
	tap_result "/metrics lint-clean (promtool check metrics)" $? "$pt"
else
	tap_skip "/metrics lint-clean" "no promtool (Debian's prometheus package)"
fi
[ "$(in_ns "$NS" curl -s "$URL/healthz")" = ok ] &&
	in_ns "$NS" curl -sf "$URL/readyz" | jq -e '.ready == true and .store == true and
		.role == "standalone" and .missing == []' >/dev/null
tap_result "/healthz ok, /readyz 200: store open, standalone" $?

# ---- persistence: kill -9 during a stream of writes
: >"$TMPD/acked"
(
	for i in $(seq 10 400); do
		code=$(in_ns "$NS" curl -s -m 2 -o /dev/null -w '%{http_code}' -X POST \
			--data-binary "{\"class\":$i,\"name\":\"c$i\",\"resources\":{\"mem_gb\":4}}" \
			"$URL/v1/caps")
		[ "$code" = 201 ] && echo $((i * 256)) >>"$TMPD/acked"
	done
) &
WRITER=$!
bg_pid $WRITER
sleep 0.4
# a loaded machine: at least one write acknowledged before the kill
for _ in $(seq 100); do [ -s "$TMPD/acked" ] && break; sleep 0.05; done
kill -9 "$IDND_PID"
wait "$IDND_PID" 2>/dev/null
wait "$WRITER" 2>/dev/null
n_acked=$(wc -l <"$TMPD/acked")
start_idnd -P none
tap_result "idnd restarts on the same store" $?
in_ns "$NS" curl -s "$URL/v1/caps" | jq -r '.[].label' | sort >"$TMPD/have"
missing=$(sort "$TMPD/acked" | comm -23 - "$TMPD/have" | wc -l)
[ "$n_acked" -gt 0 ] && [ "$missing" -eq 0 ]
tap_result "kill -9 during writes: all $n_acked acknowledged capabilities survive" $? "missing $missing"
in_ns "$NS" curl -s "$URL/v1/nodes" | jq -e 'map(.id) == [1]' >/dev/null
tap_result "registered node survives the restart" $?
if command -v sqlite3 >/dev/null; then
	[ "$(sqlite3 "$TMPD/idnd.db" 'PRAGMA integrity_check')" = ok ]
	tap_result "store integrity_check ok" $?
fi
kill "$IDND_PID"; wait "$IDND_PID" 2>/dev/null

# idnctl's controller objects (libcurl, -C); a long heartbeat timeout
start_idnd -P none -t 60000
k() { "$IDNCTL" --insecure -n "$NS" -C "$URL" "$@"; }
out=$(k controller status)
tap_result "idnctl controller status" "$(grep -q 'mode embedded' <<<"$out"; echo $?)" "$out"
out=$(k -j cap list | jq -r '.[] | select(.label == 256) | .name')
tap_result "idnctl cap list (registry)" "$([ "$out" = llama-8b ]; echo $?)" "$out"
req POST /v1/demand "$(body '{"cap":256,"region":0,"rps":10}')" >/dev/null
out=$(k placement solve dry-run)
tap_result "idnctl placement solve dry-run" \
	"$(grep -q 'cap 1/0 node 1' <<<"$out" && grep -q 'dry run' <<<"$out" &&
	   [ "$(k -j placement show)" = "[]" ]; echo $?)" "$out"
out=$(k placement solve)
tap_result "idnctl placement solve, show" \
	"$([ "$(k placement show)" = "cap 1/0 node 1" ]; echo $?)" "$out"
out=$(k -j placement explain cap 1/0 | jq -c .placed_on)
tap_result "idnctl placement explain cap 1/0: placed on $out" "$([ "$out" = "[1]" ]; echo $?)"
k placement explain cap 99/0 >/dev/null 2>&1
tap_result "idnctl placement explain of an unknown cap: exit 1" "$([ $? = 1 ]; echo $?)"
# readable numbers: demand 0.1 + 0.2 rps makes binary fractions
req POST /v1/demand "$(body '{"cap":256,"region":0,"rps":0.1}')" >/dev/null
req POST /v1/demand "$(body '{"cap":256,"region":1,"rps":0.2}')" >/dev/null
out=$(k placement solve dry-run; k placement explain cap 1/0; k cap list)
tap_result "idnctl placement solve/explain print readable numbers" \
	"$(! grep -qE '[0-9]\.[0-9]{7,}|e[-+][0-9]' <<<"$out" &&
	   grep -q 'cost [0-9.]* latency' <<<"$out" &&
	   grep -q '^  placed on nodes 1$' <<<"$out" &&
	   grep -qE '^  region 0 demand 0.1 rps served by node 1 unit cost [0-9.]+$' <<<"$out"; echo $?)" "$out"
out=$(k -j placement solve dry-run)
tap_result "placement solve -j: numbers of 10 significant digits at most" \
	"$(! grep -qE '[0-9]\.0*[1-9][0-9]{10,}' <<<"$out" && jq -e .cost >/dev/null <<<"$out"; echo $?)" "$out"

# idnctl node list: the controller's registry (node show is the maps)
out=$(k node list)
tap_result "idnctl node list: profile, state, heartbeat, load" \
	"$(grep -q '^node 1 state up hb-age [0-9]* ms heartbeats [0-9]* addr 10.1.0.1$' <<<"$out" &&
	   grep -q 'region 0 domain 0 trust 5 confidential off mem-gb 80' <<<"$out" &&
	   grep -q 'load [0-9]* queue [0-9]* pending-tokens' <<<"$out"; echo $?)" "$out"
out=$(k -j node list id 1 | jq -r '"\(.id) \(.state) \(.trust)"')
tap_result "idnctl -j node list id 1" "$([ "$out" = "1 up 5" ]; echo $?)" "$out"
k node list id 77 >/dev/null 2>&1
tap_result "idnctl node list id 77 (not registered): exit 1" "$([ $? = 1 ]; echo $?)"
k node list frob >/dev/null 2>&1
tap_result "idnctl node list frob: exit 2" "$([ $? = 2 ]; echo $?)"

# idnctl policy: the controller's policy classes
out=$(k policy add name secure trust 5 domains 0,3-4)
tap_result "idnctl policy add prints the class and its id" \
	"$([ "$out" = "policy 5 name secure trust 5 privacy public scope any domains 0,3-4 tiers all owner 127.0.0.1" ]; echo $?)" "$out"
k policy add name conf privacy confidential scope plan tiers 0-3,7 >/dev/null
out=$(k policy list)
tap_result "idnctl policy list" "$([ "$(wc -l <<<"$out")" = 2 ] &&
	grep -qx 'policy 80 name conf trust 0 privacy confidential scope plan domains any tiers 0-3,7 owner 127.0.0.1' <<<"$out"; echo $?)" "$out"
out=$(k -j policy show id 5 | jq -c '[.name, .min_trust, .domains]')
tap_result "idnctl -j policy show id 5" "$([ "$out" = '["secure",5,[0,3,4]]' ]; echo $?)" "$out"
k policy add name x privacy secret >/dev/null 2>&1
r1=$?
k policy add trust 3 >/dev/null 2>&1
r2=$?
k policy show >/dev/null 2>&1
r3=$?
k policy add name t tiers 3,16 >/dev/null 2>&1
r4=$?
tap_result "idnctl policy usage errors: exit 2 ($r1 $r2 $r3 $r4)" "$([ "$r1$r2$r3$r4" = 2222 ]; echo $?)"
out=$(k placement explain cap 1/0)
tap_result "placement explain shows what each policy class keeps" \
	"$(grep -q '^  policy 5 secure: nodes 1$' <<<"$out" &&
	   grep -q '^  policy 80 conf: nodes none$' <<<"$out" &&
	   grep -q '^    excluded node 1: policy privacy needs a confidential node$' <<<"$out"; echo $?)" "$out"
k policy del id 5
r=$?
k policy show id 5 >/dev/null 2>&1
r2=$?
tap_result "idnctl policy del id 5; show then exits 1" "$([ $r = 0 ] && [ $r2 = 1 ]; echo $?)"
kill "$IDND_PID"; wait "$IDND_PID" 2>/dev/null

# ---- end to end with the dataplane maps
if ! probe_bpffs || [ ! -f "$BUILD/bpf/idn_steer.bpf.o" ]; then
	tap_skip "dataplane end to end" "no bpffs or no steering program"
	tap_done
fi
make_bpffs "$TMPD/bpf" || { tap_skip "dataplane end to end" "cannot mount bpffs"; tap_done; }
P=$TMPD/bpf/idn
veth_pair "$NS" a0 "$NS" a1 || { tap_fail "veth"; tap_done; }
c() { "$IDNCTL" -n "$NS" -P "$P" "$@"; }
check "dp attach" c dp attach dev a0
rm -f "$TMPD/idnd.db"*
start_idnd -P "$P"
tap_result "idnd starts with the dataplane" $? "$(cat "$TMPD/idnd.log")"
for n in 1 2; do
	req POST /v1/nodes "$(body "{\"id\":$n,\"addr4\":\"10.2.0.$n\",\"mem_gb\":80,\"region\":$n,\"trust\":6}")" >/dev/null
done
req POST /v1/caps "$(body '{"class":7,"name":"chat","resources":{"mem_gb":30}}')" >/dev/null
req POST /v1/demand "$(body '{"cap":1792,"region":1,"rps":100}')" >/dev/null
req POST /v1/demand "$(body '{"cap":1792,"region":2,"rps":100}')" >/dev/null
# keep both nodes alive while solving
hb() { req POST "/v1/nodes/$1/heartbeat" "$(body '{"load":100,"queue":1}')" >/dev/null; }
hb 1; hb 2
# and keep them alive until node 2 is meant to go silent (a loaded machine
# can take longer than a short timeout between two checks)
hbq() { in_ns "$NS" curl -s -m 5 -o /dev/null -X POST --data-binary '{"load":100,"queue":1}' \
	"$URL/v1/nodes/$1/heartbeat"; }	# own files: runs beside req
(while :; do hbq 1; hbq 2; sleep 0.05; done) &
HBP=$!
bg_pid $HBP
code=$(req POST /v1/placement/solve "$(body '{}')")
tap_result "placement solve applied" "$([ "$code" = 200 ]; echo $?)" "got $code $(cat "$TMPD/resp")"
cands=$(c -j plan show | jq -c '[.. | objects | select(.cap? == "7" or .cap? == 1792 or .cap? == "7/0") | .. | objects | .node? // empty] | unique')
[ "$cands" = "[1,2]" ]
tap_result "plan compiled into the maps: cap 7 -> nodes 1, 2" $? "got $cands; $(c -j plan show | head -c 600)"
health=$(c -j node show | jq -c '[.. | objects | select(.id? == 1 or .id? == 2) | .health] ')
grep -q up <<<"$health"
tap_result "node table filled from R (health up)" $? "got $health"
# node 2 stops heartbeating; node 1 keeps going, in the background, until
# every check below is done (a loaded machine is slower than the timeout)
kill $HBP; wait $HBP 2>/dev/null
(while :; do hbq 1; sleep 0.05; done) &
HB1=$!
bg_pid $HB1
t0=$(date +%s%N)
down=1
for _ in $(seq 200); do
	st=$(in_ns "$NS" curl -s "$URL/v1/nodes" | jq -r '.[] | select(.id == 2) | .state')
	if [ "$st" = down ]; then down=0; break; fi
	sleep 0.05
done
t1=$(date +%s%N)
tap_result "heartbeat loss: node 2 down (seen $(( (t1 - t0) / 1000000 )) ms after it went silent, timeout $TMO ms)" $down
cands=$(c -j plan show | jq -c '[.. | objects | .node? // empty] | unique')
[ "$cands" = "[1]" ]
tap_result "node 2 left every plan" $? "got $cands"
h2=$(c -j node show | jq -r '.. | objects | select(.id? == 2) | .health' | head -1)
[ "$h2" = down ]
tap_result "node 2 down in the dataplane node table" $? "got $h2"
kill $HB1; wait $HB1 2>/dev/null
drain=$(in_ns "$NS" curl -s "$URL/v1/status" | jq -r .last_drain_ms)
awk -v d="$drain" 'BEGIN { exit !(d < 100) }'
tap_result "drain (node table + plan commit) took ${drain} ms (< 100)" $?
tap_done
