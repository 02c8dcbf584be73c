#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# test_idnd.sh - attacks on idnd (issue 11) replayed in a namespace of its
# own; each must be refused, and the refusal logged:
#   registry floods (capabilities, nodes, policy classes) beyond the -Q
#   quotas: 507 and one "registry quota" line; a long placement solve
#   (the 264 s freeze): GET /v1/status and heartbeats answered during it,
#   a silent node still marked down during it, the solve stopped at the -S
#   limit, a second solve at the same time 503; slow connections from one
#   address (-C): another address still served.
# Every attack's TAP line starts "attack:" (counted by run.sh).
if [ -z "${IDN_TEST_UNSHARED:-}" ] && [ "$(id -u)" -eq 0 ]; then
	IDN_TEST_UNSHARED=1 exec unshare -m --propagation private "$0" "$@"
fi

source "$(dirname "$0")/../net/lib.sh"
HERE=$(cd "$(dirname "$0")" && pwd)

require_root
require_cmd ip jq nsenter curl python3
IDND=$BUILD/idnd
require_file "$IDND"
probe_netns || skip_all "cannot create network namespaces"

make_tmpdir || exit 1
setup_ns NS || { tap_fail "netns"; tap_done; }
PORT=8787
URL=http://127.0.0.1:$PORT
LIMIT=5	# the probing loop below runs 1.8 s (+ one slow round under load): the solve must outlast it

post() { in_ns "$NS" curl -s -m 20 -o "$TMPD/resp" -w '%{http_code}' -X POST --data-binary "$2" "$URL$1"; }
ms() { date +%s%3N; }

bg_ns "$NS" "$TMPD/idnd.log" "$IDND" --insecure --enrol open -d "$TMPD/idnd.db" -p $PORT -l 0.0.0.0 -P none -t 1000 \
	-Q caps=200,nodes=20,policies=4 -S $LIMIT -C 16 -G
IDND_PID=$BG_PID
for _ in $(seq 100); do in_ns "$NS" curl -s -o /dev/null "$URL/v1/status" && break; sleep 0.05; done
check "idnd starts with quotas caps=200,nodes=20,policies=4, -S $LIMIT, -C 16" \
	in_ns "$NS" curl -sf -o /dev/null "$URL/v1/status"

# ---- registry floods
out=$(in_ns "$NS" python3 "$HERE/attack.py" flood "$URL" /v1/caps 230 \
	'{"class":1%d,"name":"flood","resources":{"mem_gb":1}}' 2>&1)
log "capability flood: $out"
tap_result "attack: capability flood beyond the quota: 200 registered, 30 refused 507" \
	"$([ "$out" = "201:200 507:30" ]; echo $?)" "got $out"
code=$(post /v1/caps '{"class":9999,"name":"one-more","resources":{"mem_gb":1}}')
grep -q "registry quota" "$TMPD/resp"
tap_result "refusal names the quota" "$([ "$code" = 507 ] && grep -q 'idnd -Q caps' "$TMPD/resp"; echo $?)" \
	"got $code $(cat "$TMPD/resp")"
code=$(post /v1/caps '{"class":10,"name":"update","resources":{"mem_gb":2}}')
tap_result "an update of a registered capability still passes at the quota" \
	"$([ "$code" = 200 ]; echo $?)" "got $code"
out=$(in_ns "$NS" python3 "$HERE/attack.py" flood "$URL" /v1/nodes 25 \
	'{"id":%d,"addr4":"10.9.0.1","mem_gb":80,"region":0,"trust":5}' 2>&1)
tap_result "attack: node flood beyond the quota: 20 registered, 5 refused 507" \
	"$([ "$out" = "201:20 507:5" ]; echo $?)" "got $out"
n=0
for p in '{"name":"a","min_trust":1}' '{"name":"b","min_trust":2}' '{"name":"c","min_trust":3}' \
	'{"name":"d","min_trust":4}' '{"name":"e","min_trust":5}'; do
	code=$(post /v1/policies "$p")
	[ "$code" = 201 ] && n=$((n + 1))
done
tap_result "attack: policy class flood beyond the quota: 4 registered, the 5th refused 507" \
	"$([ $n = 4 ] && [ "$code" = 507 ]; echo $?)" "got $n registered, last $code"
tap_result "quota refusals logged" "$(grep -q 'API: registry quota: 200 capabilities reached' \
	"$TMPD/idnd.log" && grep -q 'registry quota: 20 nodes' "$TMPD/idnd.log"; echo $?)"

# ---- stored strings: NUL and invalid UTF-8
code=$(post /v1/caps '{"class":10,"name":"ok\u0000hidden","resources":{"mem_gb":1}}')
tap_result "attack: a capability name with \\u0000: 400, not stored cut short" \
	"$([ "$code" = 400 ] && grep -q 'NUL character' "$TMPD/resp"; echo $?)" "got $code $(cat "$TMPD/resp")"
printf '{"class":10,"name":"bad\xff\xfe","resources":{"mem_gb":1}}' >"$TMPD/badutf8"
code=$(in_ns "$NS" curl -s -m 5 -o "$TMPD/resp" -w '%{http_code}' --data-binary @"$TMPD/badutf8" "$URL/v1/caps")
tap_result "attack: invalid UTF-8 in a name: 400" \
	"$([ "$code" = 400 ] && grep -q 'not valid UTF-8' "$TMPD/resp"; echo $?)" "got $code $(cat "$TMPD/resp")"
name=$(in_ns "$NS" curl -s "$URL/v1/caps" | jq -r '.[] | select(.label == 2560) | .name')
tap_result "the stored capability is unchanged (\"$name\")" "$([ "$name" = update ]; echo $?)"

# ---- the audit log: every change, who / what / when
AUD=$TMPD/idnd.db.audit
post /v1/caps '{"class":11,"name":"x\n{\"forged\":1}","resources":{"mem_gb":1}}' >/dev/null
n=$(wc -l <"$AUD")
bad=$(jq -c . "$AUD" >/dev/null 2>&1; echo $?)
c201=$(jq -r 'select(.what == "/v1/caps" and .status == 201) | .who' "$AUD" | sort -u)
c507=$(jq -r 'select(.what == "/v1/caps" and .status == 507)' "$AUD" | jq -s length)
tap_result "audit log: $n lines, all JSON, capability writes by 127.0.0.1 with status (201, 30+ x 507)" \
	"$([ "$bad" = 0 ] && [ "$c201" = 127.0.0.1 ] && [ "$c507" -ge 30 ] && [ "$n" -ge 260 ]; echo $?)" \
	"bad $bad, who $c201, 507s $c507"
tap_result "attack: a newline in a body cannot forge an audit line" \
	"$(! jq -e 'select(.forged)' "$AUD" | grep -q . && jq -e 'select(.body | test("forged"))' "$AUD" | grep -q .; echo $?)"
jq -e 'select(.ts | test("^20[0-9][0-9]-[0-9][0-9]-[0-9][0-9]T[0-9:.]+Z$") | not)' "$AUD" | grep -q .
tap_result "every audit line has a UTC timestamp" "$([ $? != 0 ]; echo $?)"

# ---- a registration that aims idnd's orders at another host
in_ns "$NS" ip addr add 10.9.9.9/32 dev lo 2>/dev/null
code=$(in_ns "$NS" curl -s -m 5 -o "$TMPD/resp1" -w '%{http_code}' --interface 10.9.9.9 -X POST \
	--data-binary '{"id":3,"addr4":"10.9.0.3","mem_gb":80,"mgmt":"10.200.0.1:2379"}' "http://10.9.9.9:$PORT/v1/nodes")
code2=$(in_ns "$NS" curl -s -m 5 -o /dev/null -w '%{http_code}' --interface 10.9.9.9 -X POST \
	--data-binary '{"id":3,"addr4":"10.9.0.3","mem_gb":80,"mgmt":"127.0.0.1:2379"}' "http://10.9.9.9:$PORT/v1/nodes")
code3=$(post /v1/nodes '{"id":3,"addr4":"10.9.0.3","mem_gb":80,"mgmt":"10.9.0.3:9000"}')
tap_result "attack: node registration with a management address on another host: 400" \
	"$([ "$code" = 400 ] && grep -q 'locator, a wildcard' "$TMPD/resp1"; echo $?)" "got $code $(cat "$TMPD/resp1")"
tap_result "attack: loopback management address from a remote client: 400; the locator's: 200" \
	"$([ "$code2" = 400 ] && [ "$code3" = 200 ]; echo $?)" "got $code2, $code3"
tap_result "refusal logged" "$(grep -q 'registration refused: management address' "$TMPD/idnd.log"; echo $?)"

# ---- a long solve: the API, heartbeats and node-down detection go on
for i in 0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19; do
	post /v1/nodes/$i/heartbeat '{"load":1}' >/dev/null
done
(
	t0=$(ms)
	c=$(post /v1/placement/solve '{"dry_run":true,"generate":{"caps":2000,"nodes":100,"regions":4}}')
	echo "$c $(( $(ms) - t0 ))" >"$TMPD/solve.out"
) &
SOLVER=$!
sleep 0.3
code=$(post /v1/placement/solve '{"dry_run":true}')
tap_result "attack: a second solve while one runs: 503" "$([ "$code" = 503 ]; echo $?)" \
	"got $code $(cat "$TMPD/resp")"
worst=0 fails=0
t_end=$(( $(ms) + 1800 ))
while [ "$(ms)" -lt $t_end ]; do
	t0=$(ms)
	# node 1 keeps heartbeating, node 2 and the others are silent
	c1=$(post /v1/nodes/1/heartbeat '{"load":1}')
	c2=$(in_ns "$NS" curl -s -m 5 -o /dev/null -w '%{http_code}' "$URL/v1/status")
	dt=$(( $(ms) - t0 ))
	[ $dt -gt $worst ] && worst=$dt
	[ "$c1" = 200 ] && [ "$c2" = 200 ] || fails=$((fails + 1))
	sleep 0.05
done
running=$([ -s "$TMPD/solve.out" ] && echo no || echo yes)
in_ns "$NS" curl -s "$URL/v1/nodes" >"$TMPD/nodes"
up1=$(jq -r '.[] | select(.id == 1) | .state' "$TMPD/nodes")
up2=$(jq -r '.[] | select(.id == 2) | .state' "$TMPD/nodes")
log "during the solve: slowest heartbeat + status pair $worst ms, $fails failed"
tap_result "attack: long solve: status and heartbeats answered during it (< 1 s, the solve takes $LIMIT)" \
	"$([ $running = yes ] && [ $fails = 0 ] && [ $worst -lt 1000 ]; echo $?)" \
	"still running: $running, worst $worst ms, $fails failed"
tap_result "node-down detection runs during the solve: heartbeating node up, silent node down" \
	"$([ $running = yes ] && [ "$up1" = up ] && [ "$up2" = down ]; echo $?)" \
	"running $running, node 1 up $up1, node 2 up $up2"
wait $SOLVER
read -r code took <"$TMPD/solve.out"
tap_result "attack: the solve stops at the -S $LIMIT s limit" \
	"$([ "$code" = 200 ] && [ "$took" -lt $(( (LIMIT + 3) * 1000 )) ]; echo $?)" "got $code in $took ms"
tap_result "time limit logged" "$(grep -q "stopped at the $LIMIT.0 s limit" "$TMPD/idnd.log"; echo $?)"
code=$(post /v1/placement/solve '{"dry_run":true,"generate":{"caps":10,"nodes":10,"regions":2}}')
tap_result "a solve after it runs (solver released)" "$([ "$code" = 200 ]; echo $?)" "got $code"

# ---- slow connections from one address
in_ns "$NS" ip addr add 127.0.0.2/8 dev lo 2>/dev/null
in_ns "$NS" python3 "$HERE/attack.py" hold 127.0.0.1 $PORT 40 >"$TMPD/hold.out" 2>&1 &
bg_pid $!
for _ in $(seq 50); do [ -s "$TMPD/hold.out" ] && break; sleep 0.1; done
log "slow connections: $(cat "$TMPD/hold.out")"
code=$(in_ns "$NS" curl -s -m 5 -o /dev/null -w '%{http_code}' --interface 127.0.0.2 \
	"http://127.0.0.2:$PORT/v1/status")
tap_result "attack: 40 idle connections from one address: at most 16 held, another address served" \
	"$([ "$(cat "$TMPD/hold.out")" = "held 40" ] && [ "$code" = 200 ]; echo $?)" \
	"got $code, $(cat "$TMPD/hold.out")"
held=$(in_ns "$NS" ss -Htn state established "( sport = :$PORT )" | wc -l)
tap_result "per-address limit: $held server-side connections held (<= 17)" \
	"$([ "$held" -le 17 ]; echo $?)"

kill "$IDND_PID" 2>/dev/null
wait "$IDND_PID" 2>/dev/null
log_cmd tail -n 5 "$TMPD/idnd.log"
tap_done
