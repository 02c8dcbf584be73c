#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# test_identity.sh - node identity and enrolment (docs/security.md, "Node
# identity and enrolment") attacked in a namespace of its own: idnd with
# the default enrolment by approval, an operator enrolment key and the
# test attestation verifier. Each attack must be refused and logged:
#   another key claiming an enrolled id (registration, heartbeat), an
#   unsigned heartbeat for an enrolled node, trust claimed in a signed
#   register body, a replayed, a tampered and a stale signed request,
#   a forged and a misdirected enrolment statement, forged attestation.
# And what must work: pending -> approved, a statement enrols at once,
# attestation and operator trust grant, identities survive a restart.
# Every attack's TAP line starts "attack:" (counted by run.sh).
if [ -z "${IDN_TEST_UNSHARED:-}" ] && [ "$(id -u)" -eq 0 ]; then
	IDN_TEST_UNSHARED=1 exec unshare -m --propagation private "$0" "$@"
fi

source "$(dirname "$0")/../net/lib.sh"

require_root
require_cmd ip jq nsenter curl
IDND=$BUILD/idnd
AGENT=$BUILD/idn-agent
IDNCTL=$BUILD/idnctl
require_file "$IDND" "$AGENT" "$IDNCTL"
probe_netns || skip_all "cannot create network namespaces"

make_tmpdir || exit 1
setup_ns NS || { tap_fail "netns"; tap_done; }
PORT=8787
URL=http://127.0.0.1:$PORT
T=$TMPD

k() { in_ns "$NS" "$IDNCTL" --insecure -C $URL "$@" 2>/dev/null; }
# post PATH_WITH_QUERY BODY -> status code, answer in $T/resp
post() { in_ns "$NS" curl -s -m 5 -o "$T/resp" -w '%{http_code}' -X POST --data-binary "$2" "$URL$1"; }
# signed PATH BODY NODE KEYFILE [TIME]: the path with node NODE's signature
signed() { "$IDNCTL" node sign request id "$3" key "$4" path "$1" body "$2" ${5:+time $5}; }
pubkey() { "$IDNCTL" node operator-key "$1"; }	# the public half of a 0600 seed file

# operator enrolment and attestation keys; node keys (seed files, as the agent's)
OPK=$(pubkey "$T/operator.key") && echo "$OPK" >"$T/operator.pub"
ATK=$(pubkey "$T/attest.key") && echo "$ATK" >"$T/attest.pub"
EVK=$(pubkey "$T/evil.key")
start_idnd() {
	bg_ns "$NS" "$T/idnd.log" "$IDND" --insecure -d "$T/idnd.db" -p $PORT -l 0.0.0.0 -P none \
		-t 60000 -v --enrol-key "$T/operator.pub" --attest-key "$T/attest.pub"
	IDND_PID=$BG_PID
	for _ in $(seq 100); do in_ns "$NS" curl -s -o /dev/null "$URL/v1/status" && break; sleep 0.05; done
}
start_idnd
check "idnd starts (enrolment by approval, operator and attestation keys)" \
	in_ns "$NS" curl -sf -o /dev/null "$URL/v1/status"

# ---- node 1: pending, then approved by the operator
bg_ns "$NS" "$T/agent1.log" "$AGENT" --insecure --node-id 1 --addr4 127.0.0.1 --key "$T/n1.key" \
	--controller $URL --hb-ms 100 --listen 127.0.0.1:8001 --mgmt-listen none --speed 20
A1=$BG_PID
for _ in $(seq 60); do grep -q "waits for approval" "$T/idnd.log" && break; sleep 0.05; done
state=$(k -j node identity 1 | jq -r .state)
tap_result "an unknown key waits: node 1 pending, logged, agent told why" \
	"$([ "$state" = pending ] && grep -q 'IDENT: node 1: key SHA256:[0-9a-f]* waits for approval' \
		"$T/idnd.log" && grep -q 'not enrolled' "$T/agent1.log"; echo $?)" "$state"
k node list | grep -q "node 1 identity pending"
tap_result "idnctl node list shows the pending key" $?
N1=$(k -j node identity 1 | jq -r .pubkey)
[ "$N1" = "$("$IDNCTL" node operator-key "$T/n1.key")" ]
tap_result "the pending key is the agent's" $?
k node approve 1 >/dev/null && k node trust 1 5 >/dev/null
up=""
for _ in $(seq 60); do
	up=$(in_ns "$NS" curl -s $URL/v1/nodes | jq -r '.[] | select(.id == 1) | "\(.state) \(.trust)"')
	[ "$up" = "up 5" ] && break
	sleep 0.05
done
tap_result "approved: node 1 registers, trust 5 from the operator" "$([ "$up" = "up 5" ]; echo $?)" "$up"

# ---- another key claims node 1
bg_ns "$NS" "$T/evil.log" "$AGENT" --insecure --node-id 1 --addr4 127.0.0.1 --key "$T/evil.key" \
	--controller $URL --hb-ms 100 --listen 127.0.0.1:8002 --mgmt-listen none
EP=$BG_PID
for _ in $(seq 60); do grep -q "registration refused: key" "$T/idnd.log" && break; sleep 0.05; done
kill "$EP" 2>/dev/null
grep -E "IDENT: node 1: registration refused: key SHA256:[0-9a-f]{16} is not the node's enrolled key SHA256:[0-9a-f]{16}" \
	"$T/idnd.log" >/dev/null && grep -q "enrolled with another key" "$T/evil.log"
tap_result "attack: another key re-registers node 1: 403, logged with both fingerprints" $? \
	"$(grep IDENT "$T/idnd.log" | tail -2)"
b='{"load":1}'
code=$(post "$(signed /v1/nodes/1/heartbeat "$b" 1 "$T/evil.key")" "$b")
tap_result "attack: another key's heartbeat for node 1: 403" \
	"$([ "$code" = 403 ] && grep -q 'heartbeat refused: key' "$T/idnd.log"; echo $?)" "$code $(cat "$T/resp")"
code=$(post /v1/nodes/1/heartbeat '{"load":1000}')
tap_result "attack: unsigned heartbeat for enrolled node 1: 403, logged" \
	"$([ "$code" = 403 ] && grep -q 'node 1: unsigned heartbeat refused' "$T/idnd.log"; echo $?)" "$code"
code=$(post /v1/nodes '{"id":1,"addr4":"127.0.0.1","mem_gb":1,"region":0}')
tap_result "attack: unsigned registration of enrolled node 1: 403" "$([ "$code" = 403 ]; echo $?)" "$code"

# ---- signed requests: trust claimed, replayed, tampered, stale (node 1's real key)
b='{"id":1,"addr4":"127.0.0.1","mem_gb":1,"region":0,"trust":7,"confidential":true}'
code=$(post "$(signed /v1/nodes "$b" 1 "$T/n1.key")" "$b")
tr=$(in_ns "$NS" curl -s $URL/v1/nodes | jq -r '.[] | select(.id == 1) | .trust')
tap_result "attack: trust 7 + confidential claimed in a signed register body: 403, logged, trust stays 5" \
	"$([ "$code" = 403 ] && [ "$tr" = 5 ] && grep -q 'node 1: registration refused: it claims trust' \
		"$T/idnd.log"; echo $?)" "$code $tr"
b='{"id":1,"addr4":"127.0.0.1","mem_gb":1,"region":0,"api_port":8001}'
q=$(signed /v1/nodes "$b" 1 "$T/n1.key")
c1=$(post "$q" "$b")
c2=$(post "$q" "$b")
tap_result "attack: a signed registration replayed: first 200, again 403 (logged)" \
	"$([ "$c1" = 200 ] && [ "$c2" = 403 ] && grep -q 'refused: replayed request' "$T/idnd.log"; echo $?)" \
	"$c1 $c2"
q=$(signed /v1/nodes "$b" 1 "$T/n1.key")
code=$(post "$q" '{"id":1,"addr4":"127.0.0.2","mem_gb":1,"region":0,"api_port":8001}')
tap_result "attack: a signed registration with its body changed: 401, logged" \
	"$([ "$code" = 401 ] && grep -q 'signature does not verify' "$T/idnd.log"; echo $?)" "$code"
old=$(( $(date +%s%3N) - 120000 ))
code=$(post "$(signed /v1/nodes "$b" 1 "$T/n1.key" $old)" "$b")
tap_result "attack: a signed registration two minutes old: 403, logged" \
	"$([ "$code" = 403 ] && grep -q "ms off idnd's clock" "$T/idnd.log"; echo $?)" "$code"

# ---- node 2: an operator-signed enrolment statement and attestation
N2=$(pubkey "$T/n2.key")
"$IDNCTL" node sign enrol id 2 pubkey "$N2" key "$T/operator.key" >"$T/enrol2.json"
"$IDNCTL" node sign attest id 2 pubkey "$N2" trust 6 confidential key "$T/attest.key" >"$T/att2.json"
bg_ns "$NS" "$T/agent2.log" "$AGENT" --insecure --node-id 2 --addr4 127.0.0.1 --key "$T/n2.key" \
	--controller $URL --hb-ms 100 --listen 127.0.0.1:8003 --mgmt-listen none \
	--enrol-statement "$T/enrol2.json" --attestation "$T/att2.json"
r=""
for _ in $(seq 60); do
	r=$(in_ns "$NS" curl -s $URL/v1/nodes | jq -r '.[] | select(.id == 2) | "\(.state) \(.trust) \(.confidential)"')
	[ "$r" = "up 6 true" ] && break
	sleep 0.05
done
how=$(k -j node identity 2 | jq -r .how)
tap_result "a statement enrols node 2 at once; attestation grants trust 6, confidential" \
	"$([ "$r" = "up 6 true" ] && [ "$how" = statement ]; echo $?)" "$r $how"
# forged: the statement signed by the attacker's key; misdirected: node 2's statement for node 3
"$IDNCTL" node sign enrol id 3 pubkey "$EVK" key "$T/evil.key" >"$T/forged.json"
b=$(jq -c --slurpfile s "$T/forged.json" -n '{id:3,addr4:"127.0.0.1",mem_gb:1,region:0,enrolment:$s[0]}')
code=$(post "$(signed /v1/nodes "$b" 3 "$T/evil.key")" "$b")
tap_result "attack: an enrolment statement not signed by the operator: 403, logged" \
	"$([ "$code" = 403 ] && grep -q 'node 3: enrolment of key .* refused' "$T/idnd.log"; echo $?)" \
	"$code $(cat "$T/resp")"
b=$(jq -c --slurpfile s "$T/enrol2.json" -n '{id:3,addr4:"127.0.0.1",mem_gb:1,region:0,enrolment:$s[0]}')
code=$(post "$(signed /v1/nodes "$b" 3 "$T/evil.key")" "$b")
tap_result "attack: node 2's statement presented for node 3 with another key: 403" \
	"$([ "$code" = 403 ] && grep -q 'not for node 3' "$T/resp"; echo $?)" "$(cat "$T/resp")"
"$IDNCTL" node sign attest id 1 pubkey "$N1" trust 7 confidential key "$T/evil.key" >"$T/fatt.json"
b=$(jq -c --slurpfile s "$T/fatt.json" -n '{id:1,addr4:"127.0.0.1",mem_gb:1,region:0,api_port:8001,attestation:$s[0]}')
code=$(post "$(signed /v1/nodes "$b" 1 "$T/n1.key")" "$b")
tap_result "attack: attestation evidence not signed by the verifier's key: 403, logged" \
	"$([ "$code" = 403 ] && grep -q 'node 1: attestation refused' "$T/idnd.log"; echo $?)" "$code"
k node trust 2 2 >/dev/null
tr=$(in_ns "$NS" curl -s $URL/v1/nodes | jq -r '.[] | select(.id == 2) | "\(.trust) \(.confidential)"')
tap_result "operator trust wins over attestation (node 2: trust 2, not confidential)" \
	"$([ "$tr" = "2 false" ]; echo $?)" "$tr"

# ---- restart: identities are in the store
kill "$IDND_PID"; wait "$IDND_PID" 2>/dev/null
start_idnd
s1=$(k -j node identity 1 | jq -r '"\(.state) \(.pubkey) \(.operator_trust)"')
tap_result "after a restart node 1 is enrolled with its key, trust 5" \
	"$([ "$s1" = "enrolled $N1 5" ]; echo $?)" "$s1"
code=$(post "$(signed /v1/nodes/1/heartbeat '{"load":3}' 1 "$T/evil.key")" '{"load":3}')
tap_result "attack: another key after the restart: still 403" "$([ "$code" = 403 ]; echo $?)" "$code"
log_cmd grep IDENT "$T/idnd.log"
kill "$A1" 2>/dev/null
tap_done
