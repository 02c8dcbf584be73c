#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# test_aff_seed.sh - idnd seeds the router's affinity for popular prefix
# roots from the agents' state descriptors (docs/controller.md, "Affinity
# seeds"), end to end: a real router dataplane (its pinned idn_affinity),
# idnd on it (-P), an agent with its engine emulator heartbeating its state.
#   - requests carrying X-IDN-Token A share a prefix and reuse it on the
#     node; the agent's descriptor of that root names A; idnd writes
#     (A, class 7) -> node 1 into the router's map;
#   - token B's prefix was served once (never reused): not seeded;
#   - requests without X-IDN-Token whose prompt is reused: the agent names
#     the prompt's prefix token (idn-stamp prefix-file's, the FNV-1a of its
#     first 2048 bytes), and that token is seeded;
#   - an entry the router already has for token C is kept, not overwritten;
#   - idnd_affinity_seeded_total / _seed_kept_total count them.
# TAP output; exit 4 when the machine cannot run it.
if [ -z "${IDN_TEST_UNSHARED:-}" ] && [ "$(id -u)" -eq 0 ]; then
	IDN_TEST_UNSHARED=1 exec unshare -m --propagation private "$0" "$@"
fi

source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/topo.sh"

require_root
require_cmd ip nsenter curl jq python3 ethtool findmnt bpftool
AGENT=$BUILD/idn-agent
topo_bed 1 "$AGENT" "$BUILD/idnd"
URL=http://127.0.0.1:8787
AURL=http://127.0.0.1:8000
api() { in_ns "$NS_RTR" curl -s -m 5 "$@"; }
post() { api -o /dev/null -w '%{http_code}' -X POST --data-binary "$2" "$URL$1"; }
# aff_node TOKEN CLASS -> the node of the router's entry, "" if none (the
# table is set-associative: idnctl finds the entry, bpftool cannot by key)
aff_node() {
	in_ns "$NS_RTR" "$IDNCTL" -P "$PIN/rtr" -j dp affinity "$1" "$2" 2>/dev/null |
		jq -r '.node // empty'
}
metric() { api "$URL/metrics" | awk -v m="$1" '$1 == m { print $2 }'; }
A=4660 B=4661 C=4662 CLS=7

bg_ns "$NS_RTR" "$TMPD/idnd.log" "$BUILD/idnd" --insecure --enrol open -d "$TMPD/idnd.db" \
	-P "$PIN/rtr" -t 60000 -v
for _ in $(seq 100); do api -o /dev/null "$URL/v1/status" && break; sleep 0.05; done
# 16-token blocks: a 12-word prompt is 0 blocks, a 200-word one 12
bg_ns "$NS_RTR" "$TMPD/agent.log" "$AGENT" --insecure --node-id 1 --addr4 10.20.1.2 \
	--key "$TMPD/node.key" --controller $URL --hb-ms 100 --listen 127.0.0.1:8000 \
	--speed 1000 --block-tokens 16 --kv-capacity-tokens 4096 --kv-bytes-per-token 8 -v
up=1
for _ in $(seq 100); do
	[ "$(api "$URL/v1/nodes" | jq -r '.[] | select(.id == 1) | .state')" = up ] && { up=0; break; }
	sleep 0.05
done
tap_result "agent registered with idnd (node 1 up)" $up "$(tail -5 "$TMPD/agent.log")"

code=$(post /v1/caps '{"class":7,"name":"chat","resources":{"mem_gb":0.001}}')
post /v1/demand '{"cap":1792,"region":0,"rps":1}' >/dev/null
post /v1/placement/solve '{}' >/dev/null
pl=$(api "$URL/v1/placement" | jq -c .)
tap_result "capability 7/0 placed on node 1" \
	"$([ "$code" = 201 ] && [ "$pl" = '[{"cap":1792,"node":1}]' ]; echo $?)" "$code $pl"

words() { python3 -c "import sys; print(' '.join('$1%d' % i for i in range(int(sys.argv[1]))))" "$2"; }
complete() {	# complete TOKEN PROMPT
	api -o /dev/null -w '%{http_code}' -H "X-IDN-Token: $1" "$AURL/v1/completions" \
		-d "{\"prompt\":\"$2\",\"max_tokens\":2}"
}
# the router's own entry for C (towards node 1, as a decision would write it)
in_ns "$NS_RTR" "$IDNCTL" -P "$PIN/rtr" dp affinity $C $CLS node 1 >/dev/null
pa=$(words a 200) pb=$(words b 200) pc=$(words c 200) pd=$(words d 600)
# the token idn-stamp prefix-file derives from pd (tools/stamp/prefix.h)
D=$(python3 -c '
import sys
h = 0xcbf29ce484222325
for b in sys.argv[1].encode()[:2048]:
    h = ((h ^ b) * 0x100000001b3) & (2**64 - 1)
h ^= h >> 30; h = (h * 0xbf58476d1ce4e5b9) & (2**64 - 1)
h ^= h >> 27; h = (h * 0x94d049bb133111eb) & (2**64 - 1)
h ^= h >> 31
print(h or 1)' "$pd")
ok=0
for _ in 1 2 3; do
	[ "$(complete $A "$pa")" = 200 ] || ok=1
	[ "$(complete $C "$pc")" = 200 ] || ok=1
done
[ "$(complete $B "$pb")" = 200 ] || ok=1
for _ in 1 2 3; do
	[ "$(api -o /dev/null -w '%{http_code}' "$AURL/v1/completions" \
		-d "{\"prompt\":\"$pd\",\"max_tokens\":2}")" = 200 ] || ok=1
done
tap_result "requests with tokens A and C (3 each, one prefix each), B (once), none (3) served" $ok

seeded() { [ "$(aff_node $A $CLS)" = 1 ]; }
poll_until() { for _ in $(seq 60); do "$@" && return 0; sleep 0.05; done; return 1; }
poll_until seeded
tap_result "A's reused prefix: (A, class 7) -> node 1 seeded into the router's map" $? \
	"$(api "$URL/v1/nodes/1/state" | jq -c '[.descriptors[] | {token, blocks, hits}]')"
st=$(api "$URL/v1/nodes/1/state")
jq -e --arg a "$(printf '%016x' $A)" --arg b "$(printf '%016x' $B)" \
	'([.descriptors[] | select(.token == $a and .hits >= .blocks)] | length == 1) and
	 ([.descriptors[] | select(.token == $b)] | .[0].hits == 0)' <<<"$st" >/dev/null
tap_result "idnd holds the descriptors naming A (reused) and B (not)" $? \
	"$(jq -c '[.descriptors[] | {token, blocks, hits}]' <<<"$st")"
[ -z "$(aff_node $B $CLS)" ]
tap_result "B, served once: not seeded" $?
poll_until eval '[ "$(aff_node "$D" $CLS)" = 1 ]'
tap_result "no X-IDN-Token: the prompt's prefix token (idn-stamp's) seeded" $? \
	"$(printf '%016x' "$D") $(api "$URL/v1/nodes/1/state" | jq -c '[.descriptors[] | {token, blocks, hits}]')"
[ "$(aff_node $A 8)" = "" ] && [ "$(aff_node $C $CLS)" = 1 ]
tap_result "no entry for a class not placed there; C's own entry still there" $?
s=$(metric idnd_affinity_seeded_total) k=$(metric idnd_affinity_seed_kept_total)
[ "${s:-0}" -ge 1 ] && [ "${k:-0}" -ge 1 ]
tap_result "idnd /metrics: seeded ${s:-?}, kept ${k:-?} (C)" $?
tap_done
