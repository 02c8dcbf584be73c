#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# test_idnd_signed.sh - attacks on signed capability metadata and
# revocation (docs/security.md, "Signed capability metadata and
# revocation"), replayed against idnd in a namespace of its own; each must
# be refused with a clear error, logged, and change nothing:
#   a tampered manifest (a field changed after signing, a widened scope, an
#   unsigned field added), a signature by an untrusted key under a trusted
#   publisher's name, an unknown publisher, a valid manifest replayed onto
#   another capability, re-registering a revoked version, rolling back to a
#   revoked version, replacing a signed version by an unsigned one, a
#   lineage through a revoked version.
# Every attack's TAP line starts "attack:" (counted by run.sh).
if [ -z "${IDN_TEST_UNSHARED:-}" ] && [ "$(id -u)" -eq 0 ]; then
	IDN_TEST_UNSHARED=1 exec unshare -m --propagation private "$0" "$@"
fi

source "$(dirname "$0")/../net/lib.sh"

require_root
require_cmd ip jq nsenter curl
IDND=$BUILD/idnd
require_file "$IDND" "$IDNCTL"
probe_netns || skip_all "cannot create network namespaces"

make_tmpdir || exit 1
setup_ns NS || { tap_fail "netns"; tap_done; }
URL=http://127.0.0.1:8787

post() { in_ns "$NS" curl -s -m 5 -o "$TMPD/resp" -w '%{http_code}' -X POST --data-binary "$2" "$URL$1"; }
get() { in_ns "$NS" curl -s -m 5 "$URL$1"; }
# with DESCRIPTOR MANIFEST: the registration body
with() { jq -c --slurpfile m "$2" '. + {manifest: $m[0]}' "$1"; }
sign() { "$IDNCTL" cap sign "$@" 2>&1; }
# refused NAME WANT-CODE ERROR-PATTERN LOG-PATTERN BODY
refused() {
	local code lines
	lines=$(wc -l <"$TMPD/idnd.log")
	code=$(post /v1/caps "$5")
	tap_result "attack: $1: $2" "$([ "$code" = "$2" ] && jq -r .error "$TMPD/resp" | grep -qE -- "$3" &&
		tail -n +$((lines + 1)) "$TMPD/idnd.log" | grep -qE -- "$4"; echo $?)" \
		"got $code $(cat "$TMPD/resp"); log: $(tail -n +$((lines + 1)) "$TMPD/idnd.log" | head -3)"
}

bg_ns "$NS" "$TMPD/idnd.log" "$IDND" --insecure --enrol open -d "$TMPD/idnd.db" -P none -t 60000
IDND_PID=$BG_PID
for _ in $(seq 100); do get /v1/status >/dev/null && break; sleep 0.05; done
check "idnd starts" in_ns "$NS" curl -sf -o /dev/null "$URL/v1/status"

"$IDNCTL" cap keygen "$TMPD/pub.key" >"$TMPD/pub.hex" && "$IDNCTL" cap keygen "$TMPD/evil.key" >/dev/null
post /v1/publishers "{\"name\":\"acme\",\"pubkey\":\"$(cat "$TMPD/pub.hex")\"}" >/dev/null
sha=0000000000000000000000000000000000000000000000000000000000000001
for v in 1 2 3; do
	echo "{\"class\":7,\"name\":\"chat\",\"version\":$v,\"resources\":{\"mem_gb\":1}}" >"$TMPD/d$v"
	sign key "$TMPD/pub.key" publisher acme desc "$TMPD/d$v" sha256 "$sha" privacy public,tenant \
		out "$TMPD/m$v"
done
code=$(post /v1/caps "$(with "$TMPD/d1" "$TMPD/m1")")
check "signed version 1 registered" test "$code" = 201

# ---- forged or altered manifests
jq '.version = 2' "$TMPD/m1" >"$TMPD/t"
refused "tampered manifest (version changed after signing)" 403 'signature check FAILED' \
	'SIG: registration refused: .*signature check FAILED' "$(with "$TMPD/d2" "$TMPD/t")"
jq ".artifact_sha256 = \"$(printf '%064d' 2)\"" "$TMPD/m2" >"$TMPD/t"
refused "tampered manifest (another artifact digest)" 403 'signature check FAILED' \
	'signature check FAILED' "$(with "$TMPD/d2" "$TMPD/t")"
jq '.scope.privacy += ["confidential"]' "$TMPD/m2" >"$TMPD/t"
refused "tampered manifest (widened privacy scope)" 403 'signature check FAILED' \
	'signature check FAILED' "$(with "$TMPD/d2" "$TMPD/t")"
jq '.path = "/tmp/evil"' "$TMPD/m2" >"$TMPD/t"
refused "an unsigned field added to the manifest" 400 'unknown field "path"' \
	'registration refused: manifest: unknown field' "$(with "$TMPD/d2" "$TMPD/t")"
jq '.sig = .sig[0:100]' "$TMPD/m2" >"$TMPD/t"
refused "truncated signature" 400 '"sig"' 'registration refused: manifest: field "sig"' \
	"$(with "$TMPD/d2" "$TMPD/t")"
sign key "$TMPD/evil.key" publisher acme desc "$TMPD/d2" sha256 "$sha" out "$TMPD/t" >/dev/null
refused "signature by an untrusted key under a trusted publisher's name" 403 \
	'signature check FAILED' 'signature check FAILED: altered, or not signed by publisher "acme"' \
	"$(with "$TMPD/d2" "$TMPD/t")"
sign key "$TMPD/evil.key" publisher mallory desc "$TMPD/d2" sha256 "$sha" out "$TMPD/t" >/dev/null
refused "manifest of an unknown publisher" 403 'publisher "mallory" is not trusted' \
	'publisher "mallory" is not trusted' "$(with "$TMPD/d2" "$TMPD/t")"
echo '{"class":8,"name":"chat","version":2,"resources":{"mem_gb":1}}' >"$TMPD/d8"
refused "a valid manifest replayed onto another capability" 403 'does not match the descriptor' \
	'does not match the descriptor' "$(with "$TMPD/d8" "$TMPD/m2")"
refused "signed version 1 replaced by an unsigned version 1" 409 'registered signed' \
	'registration refused: .*registered signed' "$(cat "$TMPD/d1")"
n=$(get /v1/caps | jq '[.[] | select(.label == 1792 or .label == 2048)] | length')
v=$(get /v1/caps | jq '.[] | select(.label == 1792) | .version')
tap_result "nothing changed: only signed version 1 of capability 7 registered" \
	"$([ "$n" = 1 ] && [ "$v" = 1 ]; echo $?)" "$n caps, version $v"

# ---- revocation
post /v1/caps "$(with "$TMPD/d2" "$TMPD/m2")" >/dev/null
post /v1/caps "$(with "$TMPD/d3" "$TMPD/m3")" >/dev/null
code=$(post /v1/caps/1792/revoke '{"version":3}')
act=$(jq .active "$TMPD/resp")
check "revoke version 3: version 2 active" test "$code/$act" = 200/2
refused "re-register revoked version 3" 409 'version 3 is revoked' \
	'registration refused: capability 7/0 version 3 is revoked' "$(with "$TMPD/d3" "$TMPD/m3")"
post /v1/caps/1792/revoke '{"version":2}' >/dev/null
refused "rollback to revoked version 2 (newer than the serving version 1)" 409 \
	'version 2 is revoked' 'registration refused: capability 7/0 version 2 is revoked' \
	"$(with "$TMPD/d2" "$TMPD/m2")"
echo '{"class":7,"variant":1,"name":"chat-q","version":1,"resources":{"mem_gb":1},"lineage":{"parent":1792,"method":"quantization"}}' >"$TMPD/dq"
sign key "$TMPD/pub.key" publisher acme desc "$TMPD/dq" sha256 "$sha" lineage 7/0@3 out "$TMPD/mq" >/dev/null
refused "a derived capability whose lineage names revoked version 3" 409 \
	'lineage: capability 7/0 \(label 1792\) version 3 is revoked' 'lineage: capability 7/0 \(label 1792\) version 3 is revoked' \
	"$(with "$TMPD/dq" "$TMPD/mq")"
v=$(get /v1/caps | jq '.[] | select(.label == 1792) | .version')
revs=$(get /v1/revocations | jq -c 'map(.version) | sort')
tap_result "version 1 serves, revocations [2,3] kept" "$([ "$v" = 1 ] && [ "$revs" = "[2,3]" ]; echo $?)" \
	"version $v, revocations $revs"
code=$(post /v1/caps/1792/revoke '{"version":2,"force":true}')
tap_result "revoke with an unknown field: 400" "$([ "$code" = 400 ]; echo $?)" "got $code"
code=$(post /v1/caps/4242/revoke '{"version":1}')
tap_result "revoke of an unknown capability: 404" "$([ "$code" = 404 ]; echo $?)" "got $code"
code=$(post /v1/publishers '{"name":"x y","pubkey":"00"}')
tap_result "publisher with a bad name and key: 400" "$([ "$code" = 400 ]; echo $?)" "got $code"

kill "$IDND_PID" 2>/dev/null
wait "$IDND_PID" 2>/dev/null
log_cmd tail -n 5 "$TMPD/idnd.log"
tap_done
