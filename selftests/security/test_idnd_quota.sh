#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# test_idnd_quota.sh - per-principal limits of idnd's API (issue 11; docs/
# security.md, "Quotas and rate limits"), with mutual TLS in a namespace of
# its own: principals tenant-a, tenant-b and flooder (admin certificates)
# and node-1.
#   registry quotas per principal (-Q principal-caps, principal-policies):
#   tenant-a at its quota is refused 507 naming the principal quota (log
#   line, audit entry, /metrics) while tenant-b still registers; a deletion
#   frees the quota; an update of another's capability keeps its owner; a
#   body claiming an owner is refused; the owner survives a restart, and a
#   capability stored without one (before owners) counts for no one.
#   write rate per principal (-Q principal-rate, principal-burst): a flood
#   gets 429 with Retry-After beyond the burst (counted, logged) while
#   tenant-b's writes, the flooder's reads and node-1's heartbeats pass
#   (heartbeats are never charged).
# Every attack's TAP line starts "attack:" (counted by run.sh).
if [ -z "${IDN_TEST_UNSHARED:-}" ] && [ "$(id -u)" -eq 0 ]; then
	IDN_TEST_UNSHARED=1 exec unshare -m --propagation private "$0" "$@"
fi

source "$(dirname "$0")/../net/lib.sh"

require_root
require_cmd ip jq nsenter curl openssl python3
IDND=$BUILD/idnd
require_file "$IDND" "$IDNCTL"
probe_netns || skip_all "cannot create network namespaces"

make_tmpdir || exit 1
setup_ns NS || { tap_fail "netns"; tap_done; }
P=$TMPD/pki
URL=https://127.0.0.1:8787
L=$TMPD/idnd.log
AUD=$TMPD/idnd.db.audit
RATE=2 BURST=20
QUOTAS="caps=100,policies=20,principal-caps=5,principal-policies=2,principal-rate=$RATE/s,principal-burst=$BURST"
mk_ca "$P" && mk_cert "$P" idnd controller idnd && mk_cert "$P" tenant-a admin tenant-a &&
	mk_cert "$P" tenant-b admin tenant-b && mk_cert "$P" flooder admin flooder &&
	mk_cert "$P" node-1 node node-1 || { tap_fail "test certificates (openssl)"; tap_done; }

# call WHO METHOD PATH [BODY]: the HTTP code; body in $TMPD/resp, headers in $TMPD/hdr
call() {
	local who=$1 m=$2 u=$3 body=${4:-} a=(--cacert "$P/ca.pem" --cert "$P/$1.pem" --key "$P/$1.key")
	[ -n "$body" ] && a+=(--data-binary "$body")
	: >"$TMPD/resp"
	in_ns "$NS" curl -s -m 10 -D "$TMPD/hdr" -o "$TMPD/resp" -w '%{http_code}' "${a[@]}" \
		-X "$m" "$URL$u" 2>/dev/null
}
cap() { echo "{\"class\":$1,\"name\":\"c$1\",\"resources\":{\"mem_gb\":1}}"; }
start_idnd() {
	bg_ns "$NS" "$L" "$IDND" --enrol open -d "$TMPD/idnd.db" -P none -t 60000 -Q "$QUOTAS" \
		--ca "$P/ca.pem" --cert "$P/idnd.pem" --key "$P/idnd.key"
	IDND_PID=$BG_PID
	for _ in $(seq 200); do [ "$(call tenant-b GET /v1/status)" = 200 ] && return 0; sleep 0.05; done
	return 1
}
stop_idnd() { kill "$IDND_PID" 2>/dev/null; wait "$IDND_PID" 2>/dev/null; }
owner_of() { call tenant-b GET /v1/caps >/dev/null; jq -r ".[] | select(.label == $1) | .owner // \"\"" "$TMPD/resp"; }

start_idnd
tap_result "idnd starts with -Q $QUOTAS (mutual TLS)" $?

# ---- registry quotas per principal
codes=""
for c in 1 2 3 4 5; do codes+="$(call tenant-a POST /v1/caps "$(cap $c)") "; done
tap_result "tenant-a registers 5 capabilities (its quota)" "$([ "$codes" = "201 201 201 201 201 " ]; echo $?)" \
	"got $codes"
code=$(call tenant-a POST /v1/caps "$(cap 6)")
tap_result "attack: tenant-a beyond its capability quota: 507 naming the principal quota" \
	"$([ "$code" = 507 ] && grep -q 'principal quota: tenant-a holds 5 capabilities, at most 5 per principal (idnd -Q principal-caps=N)' \
	"$TMPD/resp"; echo $?)" "got $code $(cat "$TMPD/resp")"
code=$(call tenant-b POST /v1/caps "$(cap 20)")
tap_result "tenant-b still registers (201)" "$([ "$code" = 201 ]; echo $?)" "got $code $(cat "$TMPD/resp")"
code=$(call tenant-a POST /v1/caps '{"class":3,"name":"c3-v2","version":2,"resources":{"mem_gb":2}}')
tap_result "tenant-a updates its own capability at its quota (200)" "$([ "$code" = 200 ]; echo $?)" "got $code"
code=$(call tenant-b POST /v1/caps '{"class":4,"name":"c4-by-b","resources":{"mem_gb":2}}')
tap_result "an update by tenant-b keeps tenant-a the owner" \
	"$([ "$code" = 200 ] && [ "$(owner_of 1024)" = tenant-a ] && [ "$(owner_of 5120)" = tenant-b ]; echo $?)" \
	"got $code, owners $(owner_of 1024) $(owner_of 5120)"
code=$(call tenant-a POST /v1/caps '{"class":7,"name":"c7","owner":"tenant-b","resources":{"mem_gb":1}}')
tap_result "attack: a body that names its owner (tenant-b's quota): 400" \
	"$([ "$code" = 400 ] && grep -qF 'owner\": set by idnd' "$TMPD/resp" && [ -z "$(owner_of 1792)" ]; echo $?)" \
	"got $code $(cat "$TMPD/resp")"
sleep 0.2
tap_result "principal quota refusal logged" \
	"$(grep -q 'API: principal quota: tenant-a holds 5 capabilities' "$L"; echo $?)"
n=$(jq -r 'select(.what == "/v1/caps" and .status == 507) | .who' "$AUD" 2>/dev/null | sort -u)
tap_result "audit entry: the 507 by tenant-a" "$([ "$n" = tenant-a@127.0.0.1 ]; echo $?)" "who: $n"
code=$(call tenant-a DELETE /v1/caps/512)
code2=$(call tenant-a POST /v1/caps "$(cap 6)")
tap_result "deleting one of tenant-a's capabilities frees its quota (200, then 201)" \
	"$([ "$code" = 200 ] && [ "$code2" = 201 ]; echo $?)" "got $code, $code2 $(cat "$TMPD/resp")"
code=$(call tenant-a POST /v1/caps "$(cap 8)")
tap_result "attack: tenant-a at its quota again: 507" "$([ "$code" = 507 ]; echo $?)" "got $code"

codes=""
for t in 1 2 3; do codes+="$(call tenant-a POST /v1/policies "{\"name\":\"p$t\",\"min_trust\":$t}") "; done
code=$(call tenant-b POST /v1/policies '{"name":"pb","min_trust":6}')
tap_result "attack: tenant-a beyond its policy quota (2): 201 201 507; tenant-b still 201" \
	"$([ "$codes" = "201 201 507 " ] && [ "$code" = 201 ]; echo $?)" "got $codes, tenant-b $code"
call tenant-b GET /v1/policies/1 >/dev/null
tap_result "a policy class shows its owner" "$(jq -e '.owner == "tenant-a"' "$TMPD/resp" >/dev/null; echo $?)" \
	"$(cat "$TMPD/resp")"
code=$(call tenant-a DELETE /v1/policies/1)
code2=$(call tenant-a POST /v1/policies '{"name":"p3","min_trust":3}')
tap_result "deleting a policy class frees the quota (200, then 201)" \
	"$([ "$code" = 200 ] && [ "$code2" = 201 ]; echo $?)" "got $code, $code2"

ctl() { in_ns "$NS" "$IDNCTL" --ca "$P/ca.pem" --cert "$P/tenant-b.pem" --key "$P/tenant-b.key" -C "$URL" "$@"; }
out=$(ctl cap list)
tap_result "idnctl cap list names the owners" \
	"$(grep -q '^cap 1/0 name c1 .* owner tenant-a$' <<<"$out" && grep -q '^cap 20/0 name c20 .* owner tenant-b$' <<<"$out"; echo $?)" \
	"$out"
out=$(ctl policy show id 6; ctl -j policy show id 6 | jq -r .owner)
tap_result "idnctl policy show (and -j) names the owner" \
	"$([ "$out" = "$(printf 'policy 6 name pb trust 6 privacy public scope any domains any tiers all owner tenant-b\ntenant-b')" ]; echo $?)" "$out"
call tenant-b GET /metrics >/dev/null
tap_result "/metrics: principal quota refusals counted (HELP, TYPE; caps 2, policies 1)" \
	"$(grep -q '^# TYPE idnd_principal_quota_refused_total counter' "$TMPD/resp" &&
	   grep -q '^# HELP idnd_principal_quota_refused_total ' "$TMPD/resp" &&
	   grep -q '^idnd_principal_quota_refused_total{quota="principal-caps"} 2$' "$TMPD/resp" &&
	   grep -q '^idnd_principal_quota_refused_total{quota="principal-policies"} 1$' "$TMPD/resp"; echo $?)" \
	"$(grep principal_quota "$TMPD/resp")"

# ---- restart: the owners are in the store; a capability stored without
# one (as before owners were recorded) counts for no one
stop_idnd
python3 - "$TMPD/idnd.db" <<'EOF'
import json, sqlite3, sys
db = sqlite3.connect(sys.argv[1])
body = json.loads(db.execute("SELECT body FROM caps WHERE label = 256").fetchone()[0])
body.pop("owner")
db.execute("UPDATE caps SET body = ? WHERE label = 256", (json.dumps(body),))
db.commit()
EOF
tap_result "the store edited: capability 1/0 without an owner (python3 sqlite3)" $?
start_idnd
tap_result "idnd restarts on the same store" $?
tap_result "owners survive the restart (1024: tenant-a, 5120: tenant-b; 256: none)" \
	"$([ "$(owner_of 1024)" = tenant-a ] && [ "$(owner_of 5120)" = tenant-b ] && [ -z "$(owner_of 256)" ]; echo $?)" \
	"owners $(owner_of 1024) $(owner_of 5120) '$(owner_of 256)'"
codes="$(call tenant-a POST /v1/caps "$(cap 8)") $(call tenant-a POST /v1/caps "$(cap 9)")"
tap_result "attack: after the restart tenant-a holds 4 (the ownerless one counts for no one): 201, then 507" \
	"$([ "$codes" = "201 507" ]; echo $?)" "got $codes"
call tenant-b GET /v1/policies/2 >/dev/null
tap_result "a policy class's owner survives the restart" "$(jq -e '.owner == "tenant-a"' "$TMPD/resp" >/dev/null; echo $?)"

# ---- write rate per principal
code=$(call node-1 POST /v1/nodes '{"id":1,"addr4":"10.9.0.1","mem_gb":8,"region":0}')
tap_result "node-1 registers" "$([ "$code" = 201 ] || [ "$code" = 200 ]; echo $?)" "got $code $(cat "$TMPD/resp")"
N=60
mkdir -p "$TMPD/fl"
t0=$(date +%s%3N)
in_ns "$NS" curl -s -m 60 --cacert "$P/ca.pem" --cert "$P/flooder.pem" --key "$P/flooder.key" \
	--data-binary '{"cap":1024,"region":0,"rps":1}' -w '%{http_code}\n' -D "$TMPD/flood.hdr" \
	-o "$TMPD/fl/#1" "$URL/v1/demand?n=[1-$N]" >"$TMPD/flood" 2>/dev/null
dt=$(( $(date +%s%3N) - t0 ))
ok=$(grep -c '^200$' "$TMPD/flood") limited=$(grep -c '^429$' "$TMPD/flood")
max=$(( BURST + RATE * (dt + 999) / 1000 ))
log "flood of $N changes by flooder in $dt ms: $ok answered 200, $limited 429 (at most $max may pass)"
tap_result "attack: a write flood by one principal ($N in $dt ms): 429 beyond burst + rate ($ok <= $max passed)" \
	"$([ "$limited" -gt 0 ] && [ $((ok + limited)) = $N ] && [ "$ok" -ge "$BURST" ] && [ "$ok" -le "$max" ]; echo $?)" \
	"$ok x 200, $limited x 429 of $N in $dt ms"
ra=$(tr -d '\r' <"$TMPD/flood.hdr" | grep -ci '^retry-after: [1-9][0-9]*$')
body=$(grep -lE 'rate limit: principal flooder is over 2 changes\\?/s \(burst 20\); retry after [1-9]' "$TMPD"/fl/* | wc -l)
tap_result "each 429 says Retry-After ($ra) and names the principal ($body)" \
	"$([ "$ra" = "$limited" ] && [ "$body" = "$limited" ]; echo $?)" \
	"$limited x 429, $ra Retry-After, $body bodies; $(cat "$(ls "$TMPD"/fl/* | tail -1)")"
code=$(call tenant-b POST /v1/demand '{"cap":5120,"region":0,"rps":3}')
code2=$(call flooder GET /v1/caps)
tap_result "another principal's change passes (200), and the flooder's reads (200)" \
	"$([ "$code" = 200 ] && [ "$code2" = 200 ]; echo $?)" "got $code, $code2"
codes=$(for _ in $(seq $((BURST + 10))); do call node-1 POST /v1/nodes/1/heartbeat '{"load":1}'; echo; done |
	sort | uniq -c | awk '{printf "%s:%s ", $2, $1}')
tap_result "node-1's heartbeats are never charged: $((BURST + 10)) in a row all 200" \
	"$([ "$codes" = "200:$((BURST + 10)) " ]; echo $?)" "got $codes"
sleep 0.2
tap_result "write rate refusals logged (rate-limited lines)" \
	"$(n=$(grep -c 'API: write rate: principal flooder over 2/s (burst 20)' "$L"); [ "$n" -ge 1 ] && [ "$n" -le 10 ]; echo $?)" \
	"$(grep -c 'write rate' "$L") lines"
call tenant-b GET /metrics >/dev/null
n=$(sed -n 's/^idnd_api_rate_limited_total //p' "$TMPD/resp")
tap_result "/metrics: idnd_api_rate_limited_total $n (HELP, TYPE) = the 429s" \
	"$(grep -q '^# TYPE idnd_api_rate_limited_total counter' "$TMPD/resp" &&
	   grep -q '^# HELP idnd_api_rate_limited_total ' "$TMPD/resp" &&
	   [ "$n" = "$limited" ]; echo $?)" "got $n, want $limited"

stop_idnd
log_cmd tail -n 5 "$L"
tap_done
