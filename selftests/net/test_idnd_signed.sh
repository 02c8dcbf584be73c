#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# test_idnd_signed.sh - signed capability metadata and revocation through
# the real dataplane's pinned maps (docs/security.md, "Signed capability
# metadata and revocation"). A publisher key (idnctl cap keygen) is
# trusted (idnctl publisher add); capability 7 is registered as version 1
# unsigned, versions 2 and 3 signed (idnctl cap sign / cap register), each
# with its own latency so the plans show which version they were compiled
# from (exec_us). A policy class with require_signed gets plans from a
# signed version only, and only within the version's signed scope (a
# confidential class outside it gets empty plans, fail closed); `cap
# revoke` of the serving version puts the previous one in every plan of
# the maps before the API answers; revoking the last signed version leaves
# the require_signed class's plans empty while the default plan serves the
# unsigned version 1; a revoked version cannot be registered again, and
# revocations and signatures survive a restart of idnd.
if [ -z "${IDN_TEST_UNSHARED:-}" ] && [ "$(id -u)" -eq 0 ]; then
	IDN_TEST_UNSHARED=1 exec unshare -m --propagation private "$0" "$@"
fi

source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/topo.sh"

require_root
require_cmd ip nsenter curl jq
IDND=$BUILD/idnd
topo_bed 2 "$IDND"
URL=http://127.0.0.1:8787
export IDN_INSECURE=1 IDN_CONTROLLER=$URL
api() { in_ns "$NS_RTR" curl -s -m 5 "$@"; }
post() { api -o "$TMPD/resp" -w '%{http_code}' -X POST --data-binary "$2" "$URL$1"; }
# idnctl toward idnd (its --insecure warning dropped)
ictl() { in_ns "$NS_RTR" "$IDNCTL" "$@" 2> >(grep -v -- '--insecure' >&2); }

# nodes register unsigned here: open enrolment where idnd has enrolment
ENROL=()
"$IDND" -h 2>&1 | grep -q -- '--enrol' && ENROL=(--enrol open)
start_idnd() {
	bg_ns "$NS_RTR" "$TMPD/idnd.log" "$IDND" --insecure -d "$TMPD/idnd.db" -P "$PIN/rtr" \
		-t 60000 -v "${ENROL[@]}"
	IDND_PID=$BG_PID
	for _ in $(seq 100); do api -o /dev/null "$URL/v1/status" && return 0; sleep 0.05; done
	return 1
}
start_idnd
tap_result "idnd starts with the dataplane" $?

# the publisher's key and a second, untrusted one
"$IDNCTL" cap keygen "$TMPD/pub.key" >"$TMPD/pub.hex" && "$IDNCTL" cap keygen "$TMPD/evil.key" >/dev/null
mode=$(stat -c %a "$TMPD/pub.key")
tap_result "cap keygen: a 0600 key file and its public key" \
	"$([ "$mode" = 600 ] && grep -qxE '[0-9a-f]{64}' "$TMPD/pub.hex"; echo $?)" "mode $mode"
"$IDNCTL" cap keygen "$TMPD/pub.key" >/dev/null 2>&1
tap_result "cap keygen never overwrites a key" "$([ $? -ne 0 ]; echo $?)"
ictl publisher add acme "$(cat "$TMPD/pub.hex")"
n=$(ictl -j publisher list | jq 'map(select(.name == "acme")) | length')
tap_result "publisher add: acme is trusted" "$([ "$n" = 1 ]; echo $?)" "$n"

printf 'weights v2\n' >"$TMPD/art2"
printf 'weights v3\n' >"$TMPD/art3"
for v in 1 2 3; do
	echo "{\"class\":7,\"name\":\"chat\",\"version\":$v,\"latency_us\":${v}000,\"resources\":{\"mem_gb\":30}}" >"$TMPD/d$v"
done
for v in 2 3; do
	"$IDNCTL" cap sign key "$TMPD/pub.key" publisher acme desc "$TMPD/d$v" artifact "$TMPD/art$v" \
		origin "https://models.example/chat@$v" privacy public,tenant out "$TMPD/m$v"
done
want=$(sha256sum "$TMPD/art3" | cut -d' ' -f1)
tap_result "cap sign: the manifest carries the artifact's SHA-256" \
	"$([ "$(jq -r .artifact_sha256 "$TMPD/m3")" = "$want" ]; echo $?)"

ictl cap register "$TMPD/d1" >/dev/null && ictl cap register "$TMPD/d2" manifest "$TMPD/m2" >/dev/null &&
	ictl cap register "$TMPD/d3" manifest "$TMPD/m3" >"$TMPD/out"
tap_result "versions 1 (unsigned), 2 and 3 (signed) registered" $? "$(cat "$TMPD/out")"
grep -q "version 3 signed by acme" "$TMPD/out"
tap_result "cap register names the signer" $? "$(cat "$TMPD/out")"
pub=$(api "$URL/v1/caps" | jq -r '.[] | select(.label == 1792) | .signed.publisher')
tap_result "GET /v1/caps: version 3 signed by acme" "$([ "$pub" = acme ]; echo $?)" "$pub"

post /v1/nodes '{"id":1,"addr4":"10.20.1.2","addr6":"fd00:20:1::2","mem_gb":80,"region":1,"trust":6,"confidential":true}' >/dev/null
post /v1/nodes '{"id":2,"addr4":"10.20.2.2","addr6":"fd00:20:2::2","mem_gb":80,"region":2,"trust":3}' >/dev/null
post /v1/demand '{"cap":1792,"region":1,"rps":100}' >/dev/null
post /v1/demand '{"cap":1792,"region":2,"rps":100}' >/dev/null
post /v1/placement/solve '{}' >/dev/null
# "signedonly": tenant privacy (id 8); "confsigned": confidential (id 16),
# outside the signed scope (public, tenant)
code=$(post /v1/policies '{"name":"signedonly","privacy":"tenant","require_signed":true}')
post /v1/policies '{"name":"confsigned","privacy":"confidential","require_signed":true}' >/dev/null
rs=$(api "$URL/v1/policies/8" | jq .require_signed)
tap_result "policy class with require_signed" "$([ "$code" = 201 ] && [ "$rs" = true ]; echo $?)" "$code $rs"

# the active slot's plans of cap 7 as "POLICY NODES EXEC_US" lines (policy: any or trust+privacy*8)
plans() {
	ctl -j plan show | jq -r '
		(.. | objects | select(has("active_slot")) | .active_slot) as $s |
		[.. | objects | select(has("candidates") and .slot == $s and .cap == "7/0")] | .[] |
		"\(if .policy == "any" then "any" else
			(.policy.trust + (if .policy.privacy == "tenant" then 8
			 elif .policy.privacy == "confidential" then 16
			 elif .policy.privacy == "hw-bound" then 24 else 0 end)) end) \([.candidates[].node] | sort | join(",")) \([.candidates[].exec_us] | unique | join(","))"'
}
plans >"$TMPD/p0"
grep -qx 'any 1,2 3000' "$TMPD/p0"
tap_result "default plan from version 3 (exec_us 3000)" $? "$(cat "$TMPD/p0")"
n=$(awk '$1 == 16 && $2 == ""' "$TMPD/p0" | wc -l)
tap_result "confidential require_signed class outside the signed scope: 16 empty plans" \
	"$([ "$n" = 16 ]; echo $?)" "$(cat "$TMPD/p0")"
why=$(api "$URL/v1/placement/explain?cap=1792" | jq -r '.policies[] | select(.id == 16) | .refused')
tap_result "explain says why: $why" "$(grep -q 'outside the signed scope' <<<"$why"; echo $?)"
# tenant privacy: only the compiler's checks apply, a plan per tier is not
# needed (it equals the default) - but none of it may be empty
n=$(awk '$1 == 8 && $2 == ""' "$TMPD/p0" | wc -l)
tap_result "signed version 3 serves the require_signed tenant class" "$([ "$n" = 0 ]; echo $?)" \
	"$(cat "$TMPD/p0")"

# revoke version 3: version 2 in every plan when the call returns
t0=$(date +%s%N)
ictl cap revoke chat 3 >"$TMPD/out"
rc=$?
plans >"$TMPD/p1"
t1=$(date +%s%N)
grep -q "version 2 serves" "$TMPD/out"
tap_result "cap revoke chat 3: version 2 serves" "$([ $rc = 0 ]; echo $?)" "$(cat "$TMPD/out")"
left=$(awk '$3 ~ /3000/' "$TMPD/p1" | wc -l)
grep -qx 'any 1,2 2000' "$TMPD/p1"
tap_result "version 3 gone from every plan of the maps, version 2's in the default ($(( (t1 - t0) / 1000000 )) ms incl. idnctl)" \
	"$([ $? = 0 ] && [ "$left" = 0 ]; echo $?)" "$(cat "$TMPD/p1")"
grep -q 'SIG: capability 7/0 version 3 revoked: version 2 (signed) serves instead' "$TMPD/idnd.log"
tap_result "the revocation is logged" $?
code=$(post /v1/caps "$(jq -c --slurpfile m "$TMPD/m3" '. + {manifest: $m[0]}' "$TMPD/d3")")
grep -q 'registration refused: capability 7/0 version 3 is revoked' "$TMPD/idnd.log"
tap_result "revoked version 3 registered again: 409 and a log line" \
	"$([ "$code" = 409 ] && [ $? = 0 ]; echo $?)" "$code $(cat "$TMPD/resp")"

# revoke version 2: version 1 is unsigned - the default serves it, the
# require_signed class fails closed
ictl cap revoke 7/0 2 >/dev/null
plans >"$TMPD/p2"
grep -qx 'any 1,2 1000' "$TMPD/p2"
tap_result "revoke 2: unsigned version 1 in the default plan" $? "$(cat "$TMPD/p2")"
n=$(awk '$1 == 8 && $2 == ""' "$TMPD/p2" | wc -l)
tap_result "require_signed tenant class: 16 empty plans (unsigned version)" \
	"$([ "$n" = 16 ]; echo $?)" "$(cat "$TMPD/p2")"
why=$(api "$URL/v1/placement/explain?cap=1792" | jq -r '.policies[] | select(.id == 8) | .refused')
tap_result "explain: $why" "$(grep -q 'unsigned' <<<"$why"; echo $?)"
code=$(post /v1/caps "$(jq -c --slurpfile m "$TMPD/m2" '. + {manifest: $m[0]}' "$TMPD/d2")")
tap_result "rollback to revoked version 2: 409" "$([ "$code" = 409 ]; echo $?)" "$code"

# an untrusted key, a tampered manifest
echo '{"class":9,"name":"other","version":1,"resources":{"mem_gb":1}}' >"$TMPD/d9"
"$IDNCTL" cap sign key "$TMPD/evil.key" publisher acme desc "$TMPD/d9" sha256 "$want" out "$TMPD/m9"
code=$(post /v1/caps "$(jq -c --slurpfile m "$TMPD/m9" '. + {manifest: $m[0]}' "$TMPD/d9")")
tap_result "manifest signed by an untrusted key: 403" "$([ "$code" = 403 ] &&
	grep -q 'signature check FAILED' "$TMPD/resp"; echo $?)" "$code $(cat "$TMPD/resp")"
"$IDNCTL" cap sign key "$TMPD/pub.key" publisher acme desc "$TMPD/d9" sha256 "$want" \
	privacy public,tenant out "$TMPD/m9"
jq '.scope.privacy += ["confidential"]' "$TMPD/m9" >"$TMPD/m9t"
code=$(post /v1/caps "$(jq -c --slurpfile m "$TMPD/m9t" '. + {manifest: $m[0]}' "$TMPD/d9")")
tap_result "tampered manifest (widened scope): 403" "$([ "$code" = 403 ]; echo $?)" "$code"
n=$(api "$URL/v1/caps" | jq 'map(select(.label == 2304)) | length')
tap_result "nothing registered by the refused requests" "$([ "$n" = 0 ]; echo $?)" "$n"

# a restart keeps publishers, signatures and revocations
kill "$IDND_PID"; wait "$IDND_PID" 2>/dev/null
start_idnd
ictl cap versions 7/0 >"$TMPD/v"
grep -qx 'version 1 unsigned active' "$TMPD/v" && grep -qx 'version 2 signed by acme REVOKED' "$TMPD/v" &&
	grep -qx 'version 3 signed by acme REVOKED' "$TMPD/v"
tap_result "after a restart: version 1 active, 2 and 3 revoked" $? "$(cat "$TMPD/v")"
code=$(post /v1/caps "$(jq -c --slurpfile m "$TMPD/m3" '. + {manifest: $m[0]}' "$TMPD/d3")")
tap_result "after a restart: revoked version 3 still refused" "$([ "$code" = 409 ]; echo $?)" "$code"
ictl cap register "$TMPD/d9" manifest "$TMPD/m9" >/dev/null
ictl publisher del acme
sig=$(api "$URL/v1/caps" | jq -c '.[] | select(.label == 2304) | .signed')
tap_result "publisher removed: its versions are unsigned" "$([ "$sig" = null ]; echo $?)" "$sig"

tap_done
