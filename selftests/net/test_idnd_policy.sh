#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# test_idnd_policy.sh - policy classes compiled into plans as hard
# constraints, through the real dataplane: two nodes serve capability 7
# (node 1 trusted, confidential, domain 1, slower; node 2 trust 3, domain
# 2, faster). idnd compiles, beside the (cap, any, any) default, per-(tier,
# policy) plans whose candidates satisfy each registered policy class:
# "secure" (min trust 5) and "confidential" exclude node 2 from their plans
# but not from the default; "domain1" (privacy tenant, allowed domains [1],
# scope any: a constraint only the compiler enforces, the dataplane's own
# filters would let node 2 serve it) does too. Requests carrying those
# policies (IPv6 descriptor addresses, many tokens) never reach node 2;
# default-policy requests do. A class that excludes every node gets an
# empty plan (fail closed, not the default). Per tier, the fallback is the
# cheaper variant whose quality tier serves it. Deleting a class removes
# its plans; classes survive an idnd restart.
if [ -z "${IDN_TEST_UNSHARED:-}" ] && [ "$(id -u)" -eq 0 ]; then
	IDN_TEST_UNSHARED=1 exec unshare -m --propagation private "$0" "$@"
fi

source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/topo.sh"

require_root
require_cmd ip nsenter curl jq python3 ethtool findmnt ss
IDND=$BUILD/idnd
topo_bed 2 "$IDND"
URL=http://127.0.0.1:8787
api() { in_ns "$NS_RTR" curl -s -m 5 "$@"; }
post() { api -o /dev/null -w '%{http_code}' -X POST --data-binary "$2" "$URL$1"; }

start_idnd() {
	bg_ns "$NS_RTR" "$TMPD/idnd.log" "$IDND" --insecure --enrol open -d "$TMPD/idnd.db" -P "$PIN/rtr" -t 60000 -v
	IDND_PID=$BG_PID
	for _ in $(seq 100); do api -o /dev/null "$URL/v1/status" && return 0; sleep 0.05; done
	return 1
}
start_idnd
tap_result "idnd starts with the dataplane" $?

post /v1/nodes '{"id":1,"addr4":"10.20.1.2","addr6":"fd00:20:1::2","mem_gb":80,"region":1,"domain":1,"trust":6,"confidential":true,"net_us":3000}' >/dev/null
post /v1/nodes '{"id":2,"addr4":"10.20.2.2","addr6":"fd00:20:2::2","mem_gb":80,"region":2,"domain":2,"trust":3,"net_us":100}' >/dev/null
post /v1/caps '{"class":7,"name":"chat","resources":{"mem_gb":30}}' >/dev/null
post /v1/demand '{"cap":1792,"region":1,"rps":100}' >/dev/null
post /v1/demand '{"cap":1792,"region":2,"rps":100}' >/dev/null
code=$(post /v1/placement/solve '{}')
pl=$(api "$URL/v1/placement" | jq -c 'map(.node) | sort')
tap_result "cap 7 placed on nodes 1 and 2" "$([ "$code" = 200 ] && [ "$pl" = "[1,2]" ]; echo $?)" "$code $pl"

code=$(post /v1/policies '{"name":"secure","min_trust":5}')
id=$(api "$URL/v1/policies/5" | jq -r .name)
tap_result "policy class secure registered as id 5 (trust 5, public, scope any)" \
	"$([ "$code" = 201 ] && [ "$id" = secure ]; echo $?)" "$code $id"
post /v1/policies '{"name":"confidential","privacy":"confidential"}' >/dev/null
post /v1/policies '{"name":"domain1","privacy":"tenant","domains":[1]}' >/dev/null
post /v1/policies '{"name":"nobody","min_trust":7}' >/dev/null
post /v1/policies '{"name":"tier1","min_trust":4,"tiers":[1]}' >/dev/null
code=$(post /v1/policies '{"name":"bad","min_trust":5,"id":9}')
tap_result "policy id that contradicts its fields: 400" "$([ "$code" = 400 ]; echo $?)" "$code"
code=$(post /v1/policies '{"name":"x","min_trust":3,"colour":"red"}')
tap_result "policy with an unknown field: 400" "$([ "$code" = 400 ]; echo $?)" "$code"

# active slot's plans as "TIER POLICY-ID NODES" lines
plans() {
	ctl -j plan show | jq -r '
		(.. | objects | select(has("active_slot")) | .active_slot) as $s |
		[.. | objects | select(has("candidates") and .slot == $s and .cap == "7/0")] | .[] |
		"\(.tier) \(if .policy == "any" then "any" else
			(.policy.trust + (if .policy.privacy == "tenant" then 8
			 elif .policy.privacy == "confidential" then 16
			 elif .policy.privacy == "hw-bound" then 24 else 0 end)) end) \([.candidates[].node] | sort | join(","))"'
}
plans >"$TMPD/plans"
grep -qx 'any any 1,2' "$TMPD/plans"
tap_result "default plan (cap 7, any, any): nodes 1 and 2" $? "$(cat "$TMPD/plans")"
for p in 5 16 8; do
	n=$(awk -v p=$p '$2 == p && $3 == "1"' "$TMPD/plans" | wc -l)
	bad=$(awk -v p=$p '$2 == p && $3 != "1"' "$TMPD/plans" | wc -l)
	tap_result "policy $p: a plan per tier (0-15), only node 1 ($n plans)" \
		"$([ "$n" = 16 ] && [ "$bad" = 0 ]; echo $?)" "$(cat "$TMPD/plans")"
done
n=$(awk '$2 == 4 && $3 == "1" {print $1}' "$TMPD/plans" | xargs)
tap_result "policy 4 compiled for tier 1 only (\"tiers\": [1]): tiers $n" "$([ "$n" = 1 ]; echo $?)" \
	"$(cat "$TMPD/plans")"
n=$(awk '$2 == 7 && $3 == ""' "$TMPD/plans" | wc -l)
tap_result "policy 7 (trust 7, no node): empty plans, fail closed ($n)" "$([ "$n" = 16 ]; echo $?)" \
	"$(cat "$TMPD/plans")"

# tiers: class 5 in three variants, a cheaper one is the fallback (ladder
# step 2) only for tiers it serves (its quality tier >= the request's)
post /v1/caps '{"class":5,"variant":1,"name":"big","tier":4,"resources":{"mem_gb":30}}' >/dev/null
post /v1/caps '{"class":5,"variant":2,"name":"small","tier":2,"resources":{"mem_gb":10}}' >/dev/null
post /v1/caps '{"class":5,"variant":3,"name":"tiny","tier":0,"resources":{"mem_gb":5}}' >/dev/null
for v in 1 2 3; do
	for r in 1 2; do
		post /v1/demand "{\"cap\":$((5 * 256 + v)),\"region\":$r,\"rps\":50}" >/dev/null
	done
done
post /v1/placement/solve '{}' >/dev/null
# "CAP TIER FALLBACK" of the active slot's plans for policy any or 0
fb() {
	ctl -j plan show | jq -r '
		(.. | objects | select(has("active_slot")) | .active_slot) as $s |
		[.. | objects | select(has("candidates") and .slot == $s and
		 (.cap | startswith("5/")) and (.policy == "any" or .policy.trust? == 0 and
		 .policy.privacy? == "public" and .policy.scope? == "any"))] | .[] |
		"\(.cap) \(.tier) \(.fallback // "none")"'
}
fb >"$TMPD/fb"
t51=$(awk '$1 == "5/1" && $2 != "any" && $3 == "none" {print $2}' "$TMPD/fb" | sort -n | xargs)
t52=$(awk '$1 == "5/2" && $2 != "any" && $3 == "none" {print $2}' "$TMPD/fb" | sort -n | xargs)
tap_result "fallback by tier: 5/1 -> 5/2 by default, none for tiers 3-15; 5/2 -> 5/3, none for 1-15" \
	"$(grep -qx '5/1 any 5/2' "$TMPD/fb" && grep -qx '5/2 any 5/3' "$TMPD/fb" &&
	   grep -qx '5/3 any none' "$TMPD/fb" && [ "$t51" = "$(seq -s ' ' 3 15)" ] &&
	   [ "$t52" = "$(seq -s ' ' 1 15)" ] && [ "$(grep -c '^5/3 ' "$TMPD/fb")" = 1 ] &&
	   [ "$(grep -c '^5/1 ' "$TMPD/fb")" = 14 ]; echo $?)" "$(cat "$TMPD/fb")"

# requests: IPv6 descriptor addresses carry (cap 7/0, tier 1, policy, token)
# served_by POLICY: the nodes that answered 24 requests of distinct tokens
served_by() {
	local t a
	for t in $(seq 101 124); do
		a=$(desc_addr6 7 0 1 "$1" "$t")
		who -g "http://[$a]/" -m 2 || echo none
	done | sort | uniq -c | awk '{printf "%s:%s ", $2, $1}'
}
for p in 5 16 8; do
	s=$(served_by $p)
	tap_result "policy $p requests: all served, never by node 2 ($s)" \
		"$(grep -q 'node1:24' <<<"$s" && ! grep -q node2 <<<"$s"; echo $?)"
done
s=$(served_by 4)
tap_result "policy 4 (tier 1) requests: all served, never by node 2 ($s)" \
	"$(grep -q 'node1:24' <<<"$s" && ! grep -q node2 <<<"$s"; echo $?)"
s=$(served_by 0)
tap_result "default-policy requests reach node 2 ($s)" "$(grep -q node2 <<<"$s"; echo $?)"
s=$(served_by 7)
tap_result "policy 7 requests (no node allowed): none served ($s)" \
	"$(! grep -q 'node[12]' <<<"$s"; echo $?)"

code=$(api -o /dev/null -w '%{http_code}' -X DELETE "$URL/v1/policies/8")
plans >"$TMPD/plans"
n=$(awk '$2 == 8' "$TMPD/plans" | wc -l)
s=$(served_by 8)
tap_result "policy 8 deleted: its plans left the maps, its requests take the default ($s)" \
	"$([ "$code" = 200 ] && [ "$n" = 0 ] && grep -q node2 <<<"$s"; echo $?)" "$code $n"

kill "$IDND_PID"; wait "$IDND_PID" 2>/dev/null
start_idnd
ids=$(api "$URL/v1/policies" | jq -c 'map(.id)')
plans >"$TMPD/plans"
n=$(awk '$2 == 5 && $3 == "1"' "$TMPD/plans" | wc -l)
tap_result "policy classes survive a restart ($ids) and stay compiled" \
	"$([ "$ids" = "[4,5,7,16]" ] && [ "$n" = 16 ]; echo $?)" "$ids $(cat "$TMPD/plans")"
tap_done
