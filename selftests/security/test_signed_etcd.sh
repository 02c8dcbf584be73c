#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# test_signed_etcd.sh - signed capability metadata in distributed mode
# (docs/security.md, "Signed capability metadata and revocation"): the
# leader mirrors trusted publishers, signed versions and revocations
# under /idn/0/sig/ in etcd; when it dies the replica that takes over
# imports them and checks every registered version's signature again, so
#   - the capability it serves is still signed by the same publisher;
#   - a revocation made at the old leader still holds: the revoked version
#     cannot be registered again at the new one (409), and a rollback at
#     the new leader skips it;
#   - a publisher the operator removes at the new leader leaves etcd;
#   - the owners of a capability (after a rollback) and of a policy class
#     (per-principal quotas, docs/security.md) are those a recorded.
# Skips without etcd.
if [ -z "${IDN_TEST_UNSHARED:-}" ] && [ "$(id -u)" -eq 0 ]; then
	IDN_TEST_UNSHARED=1 exec unshare -m --propagation private "$0" "$@"
fi

source "$(dirname "$0")/../net/lib.sh"

require_root
command -v etcd >/dev/null || skip_all "etcd not installed (Debian etcd-server)"
require_cmd ip jq nsenter curl base64
IDND=$BUILD/idnd
require_file "$IDND" "$IDNCTL"
probe_netns || skip_all "cannot create network namespaces"

make_tmpdir || exit 1
setup_ns NS || { tap_fail "netns"; tap_done; }
ip -n "$NS" link set lo up
CP=$((20000 + RANDOM % 20000))
ETCD=http://127.0.0.1:$CP
PA=$((CP + 1)) PB=$((CP + 2))
DOM=/idn/0/

start_etcd "$NS" "$ETCD"
check "etcd up on 127.0.0.1:$CP" test $? = 0 || tap_done

api() { in_ns "$NS" curl -s -m 5 "$@"; }
leader() { api "http://127.0.0.1:$1/v1/status" | jq -r .leader 2>/dev/null; }
# ictl PORT ARGS...: idnctl toward the replica on PORT
ictl() {
	IDN_INSECURE=1 IDN_CONTROLLER=http://127.0.0.1:$1 in_ns "$NS" "$IDNCTL" "${@:2}" \
		2> >(grep -v -- '--insecure' >&2)
}
ekeys() {
	api -X POST "$ETCD/v3/kv/range" -d "{\"key\":\"$(printf '%s' "${DOM}sig/" | base64 -w0)\",
		\"range_end\":\"$(printf '%s' "${DOM}sig0" | base64 -w0)\",\"keys_only\":true}" |
		jq -r '.kvs[]?.key | @base64d' | sed "s|^${DOM}sig/||" | sort | tr '\n' ' '
}
replica() {	# NAME PORT
	bg_ns "$NS" "$TMPD/idnd-$1.log" "$IDND" -v --insecure --enrol open -d "$TMPD/$1.db" \
		-p "$2" -P none -t 60000 -E "$ETCD" -N "$1"
	eval "PID_$1=\$BG_PID"
}
replica a "$PA"
wait_for 20 '[ "$(leader $PA)" = true ]'
replica b "$PB"
wait_for 20 '[ "$(leader $PB)" = false ]'
check "two replicas: a leads, b follows" test "$(leader $PA)/$(leader $PB)" = true/false

"$IDNCTL" cap keygen "$TMPD/pub.key" >"$TMPD/pub.hex"
ictl $PA publisher add acme "$(cat "$TMPD/pub.hex")" >/dev/null
printf 'weights v2\n' >"$TMPD/art2"
printf 'weights v3\n' >"$TMPD/art3"
for v in 1 2 3; do
	echo "{\"class\":7,\"name\":\"chat\",\"version\":$v,\"resources\":{\"mem_gb\":30}}" \
		>"$TMPD/d$v"
done
for v in 2 3; do
	"$IDNCTL" cap sign key "$TMPD/pub.key" publisher acme desc "$TMPD/d$v" \
		artifact "$TMPD/art$v" origin "https://models.example/chat@$v" out "$TMPD/m$v"
done
ictl $PA cap register "$TMPD/d1" >/dev/null && ictl $PA cap register "$TMPD/d2" manifest "$TMPD/m2" \
	>/dev/null && ictl $PA cap register "$TMPD/d3" manifest "$TMPD/m3" >/dev/null
check "at a: publisher acme, versions 1 (unsigned), 2 and 3 (signed) registered" test $? = 0
ictl $PA cap revoke 7/0 3 >"$TMPD/out"
check "at a: version 3 revoked, version 2 serves" grep -q 'version 2' "$TMPD/out"
wait_for 10 '[[ "$(ekeys)" == *"rev/1792-3"* ]]'
k=$(ekeys)
check "etcd holds the signed metadata: $k" \
	bash -c "[[ '$k' == *'pub/acme '* && '$k' == *'ver/1792-2 '* && '$k' == *'ver/1792-3 '* &&
		  '$k' == *'rev/1792-3 '* && '$k' == *'seeded'* ]]"

ictl $PA policy add name owned trust 3 >/dev/null
check "at a: policy class 3 registered" test $? = 0

# the leader dies: b takes over with what etcd has
kill -9 "$PID_a"; wait "$PID_a" 2>/dev/null
wait_for 20 '[ "$(leader $PB)" = true ]'
check "a killed: b leads" test "$(leader $PB)" = true
cap=$(api "http://127.0.0.1:$PB/v1/caps" | jq -c '.[] | select(.label == 1792) |
	{version, publisher: .signed.publisher}')
check "b serves version 2, still signed by acme ($cap)" \
	test "$cap" = '{"version":2,"publisher":"acme"}'
own=$(api "http://127.0.0.1:$PB/v1/caps" | jq -r '.[] | select(.label == 1792) | .owner')/$(
	api "http://127.0.0.1:$PB/v1/policies/3" | jq -r .owner)
check "b keeps the owners a recorded (per-principal quotas): capability and policy by $own" \
	test "$own" = 127.0.0.1/127.0.0.1
pubs=$(api "http://127.0.0.1:$PB/v1/publishers" | jq -c '[.[].name]')
check "b trusts the domain's publishers: $pubs" test "$pubs" = '["acme"]'
revs=$(api "http://127.0.0.1:$PB/v1/revocations" | jq -c '[.[] | "\(.cap)/\(.version)"]')
check "b knows a's revocation: $revs" test "$revs" = '["1792/3"]'
code=$(api -o /dev/null -w '%{http_code}' -X POST --data-binary \
	"$(jq -c --slurpfile m "$TMPD/m3" '. + {manifest: $m[0]}' "$TMPD/d3")" \
	"http://127.0.0.1:$PB/v1/caps")
check "attack: the version revoked at a registered again at b: $code" test "$code" = 409
ictl $PB cap revoke 7/0 2 >/dev/null
cap=$(api "http://127.0.0.1:$PB/v1/caps" | jq -c '.[] | select(.label == 1792) |
	[.version, .signed.publisher]')
check "revoke 2 at b: the rollback skips revoked 3, unsigned version 1 serves ($cap)" \
	test "$cap" = '[1,null]'
ictl $PB publisher del acme >/dev/null
wait_for 10 '[[ "$(ekeys)" != *"pub/acme"* ]]'
check "publisher removed at b: gone from etcd ($(ekeys))" bash -c "[[ '$(ekeys)' != *pub/acme* ]]"

tap_done
