#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# test_idnd_signed_orders.sh - signed capability versions on a node agent
# (docs/security.md, "Signed capability metadata and revocation"), in a
# namespace of its own: idnd's load order of a signed version carries the
# manifest's digest and the agent checks the artifact against it (a file
# that does not match the publisher's digest is refused, whatever its
# .sha256 sidecar says); revoking the version the node runs makes idnd
# evict it there and load the previous version's artifact.
# TAP output; exit 4 when the machine cannot run it.
source "$(dirname "$0")/lib.sh"

require_root
require_cmd ip jq nsenter curl sha256sum
AGENT=$BUILD/idn-agent
require_file "$AGENT" "$BUILD/idnd" "$IDNCTL"
probe_netns || skip_all "cannot create network namespaces"

make_tmpdir || exit 1
setup_ns NS || { tap_fail "netns"; tap_done; }
ip -n "$NS" addr add 10.1.0.1/32 dev lo
URL=http://127.0.0.1:8787
AURL=http://10.1.0.1:8000
ENROL=()
"$BUILD/idnd" -h 2>&1 | grep -q -- '--enrol' && ENROL=(--enrol open)

bg_ns "$NS" "$TMPD/idnd.log" "$BUILD/idnd" --insecure "${ENROL[@]}" -d "$TMPD/idnd.db" -p 8787 \
	-t 2000 -P none -v
for _ in $(seq 100); do in_ns "$NS" curl -s -o /dev/null $URL/v1/status && break; sleep 0.05; done
bg_ns "$NS" "$TMPD/agent.log" "$AGENT" --insecure --node-id 1 --addr4 10.1.0.1 --trust 5 \
	--key "$TMPD/node.key" --controller $URL --hb-ms 100 --listen 10.1.0.1:8000 \
	--mem-budget 8M --speed 20 --artifact-dir "$TMPD"
up=
for _ in $(seq 100); do
	up=$(in_ns "$NS" curl -s $URL/v1/nodes | jq -r '.[] | select(.id == 1) | .state')
	[ "$up" = up ] && break
	sleep 0.05
done
tap_result "agent registered" "$([ "$up" = up ]; echo $?)" "$up $(tail -3 "$TMPD/agent.log")"

post() { in_ns "$NS" curl -s -o "$TMPD/resp" -w '%{http_code}' -d "$2" "$URL$1"; }
residency() { in_ns "$NS" curl -s $AURL/v1/residency; }
wait_res() {	# JQ-EXPR [TRIES of 50 ms]
	for _ in $(seq "${2:-100}"); do
		residency | jq -e "$1" >/dev/null && return 0
		sleep 0.05
	done
	return 1
}
with() { jq -c --slurpfile m "$2" '. + {manifest: $m[0]}' "$1"; }

"$IDNCTL" cap keygen "$TMPD/pub.key" >"$TMPD/pub.hex"
post /v1/publishers "{\"name\":\"acme\",\"pubkey\":\"$(cat "$TMPD/pub.hex")\"}" >/dev/null
for v in 1 2 3; do
	head -c 1048576 /dev/urandom >"$TMPD/w$v.bin"
	(cd "$TMPD" && sha256sum "w$v.bin" >"w$v.bin.sha256")
	echo "{\"class\":9,\"name\":\"chat\",\"version\":$v,\"resources\":{\"mem_gb\":1},\"realization\":{\"artifact\":\"$TMPD/w$v.bin\"}}" >"$TMPD/d$v"
done
# versions 1 and 2 signed over their files; version 3 signed over w1's bytes
# but pointing at w3 (a swapped artifact with a matching sidecar)
for v in 1 2; do
	"$IDNCTL" cap sign key "$TMPD/pub.key" publisher acme desc "$TMPD/d$v" artifact "$TMPD/w$v.bin" \
		out "$TMPD/m$v"
done
"$IDNCTL" cap sign key "$TMPD/pub.key" publisher acme desc "$TMPD/d3" artifact "$TMPD/w1.bin" \
	out "$TMPD/m3"
sha() { sha256sum "$TMPD/$1" | cut -d' ' -f1; }

c1=$(post /v1/caps "$(with "$TMPD/d1" "$TMPD/m1")")
c2=$(post /v1/caps "$(with "$TMPD/d2" "$TMPD/m2")")
post /v1/demand '{"cap":2304,"region":0,"rps":10}' >/dev/null
code=$(post /v1/placement/solve '{}')
tap_result "signed versions 1 and 2 registered, version 2 placed on node 1" \
	"$([ "$c1/$c2/$code" = 201/200/200 ]; echo $?)" "$c1 $c2 $code"
wait_res ".artifacts | map(select(.name == \"cap-9-0\" and .state == \"ready\" and
	.sha256 == \"$(sha w2.bin)\" and .verified)) | length == 1"
tap_result "the agent loaded version 2's artifact, checked against the signed digest" $? \
	"$(residency) $(grep ORDER "$TMPD/idnd.log")"

code=$(post /v1/caps/2304/revoke '{"version":2}')
act=$(jq .active "$TMPD/resp")
tap_result "revoke version 2: version 1 active" "$([ "$code/$act" = 200/1 ]; echo $?)" \
	"$code $(cat "$TMPD/resp")"
wait_res "(.artifacts | map(select(.name == \"cap-9-0\" and .state == \"ready\" and
	.sha256 == \"$(sha w1.bin)\")) | length == 1) and (.artifacts | length == 1)"
tap_result "the node evicted version 2 and loaded version 1's artifact" $? \
	"$(residency) $(grep ORDER "$TMPD/idnd.log" | tail -4)"
grep -q 'ORDER: cap 9/0 changed version: 1 node evict and load it again' "$TMPD/idnd.log"
tap_result "the reload is logged" $?

# version 3: the manifest signs w1's digest, the descriptor points at w3
# (whose own .sha256 sidecar matches it): the signed digest wins
code=$(post /v1/caps "$(with "$TMPD/d3" "$TMPD/m3")")
tap_result "version 3 registered (its manifest is valid)" "$([ "$code" = 200 ]; echo $?)" "$code"
for _ in $(seq 100); do
	grep -q 'ORDER: load cap 9/0 to node 1: HTTP 422' "$TMPD/idnd.log" && break
	sleep 0.05
done
grep -q 'ORDER: load cap 9/0 to node 1: HTTP 422' "$TMPD/idnd.log" &&
	! residency | jq -e ".artifacts[] | select(.path == \"$TMPD/w3.bin\")" >/dev/null
tap_result "attack: an artifact swapped under a signed version is refused by the agent (422)" $? \
	"$(residency) $(grep ORDER "$TMPD/idnd.log" | tail -3)"

tap_done
