#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# test_agent_state.sh - the agent's state end to end (docs/agent.md "State"):
#   - sharing scopes over HTTP: a tenant's prefix is served from cache to the
#     same tenant, never to another one; a bad scope header is a 400;
#   - the affinity self-check: a pinned idn_affinity map (a private bpffs,
#     created with bpftool) says tokens A and C go to this node; A was
#     served here and its prefix is cached (agree), C never was (unknown);
#     then A's prefix is evicted on purpose (one long prompt fills the cache)
#     and the mismatch counter moves, on /metrics and in idnd;
#   - idnd: state descriptors S arrive with the heartbeats (idnctl state show,
#     -j), hostile state bodies are refused with 400 and change nothing, and
#     the state survives an idnd kill -9 and restart (SQLite).
# TAP output; exit 4 when the machine cannot run it.
if [ -z "${IDN_TEST_UNSHARED:-}" ] && [ "$(id -u)" -eq 0 ]; then
	IDN_TEST_UNSHARED=1 exec unshare -m --propagation private "$0" "$@"
fi

source "$(dirname "$0")/lib.sh"

require_root
require_cmd ip jq nsenter curl bpftool
AGENT=$BUILD/idn-agent
require_file "$AGENT" "$BUILD/idnd" "$IDNCTL"
probe_netns || skip_all "cannot create network namespaces"
probe_bpffs || skip_all "cannot mount bpffs"

make_tmpdir || exit 1
setup_ns NS || { tap_fail "netns"; tap_done; }
PIN=$TMPD/pin
make_bpffs "$PIN" || { tap_fail "bpffs"; tap_done; }
URL=http://127.0.0.1:8787
AURL=http://127.0.0.1:8000
NODE=3

# the router's affinity table as the dataplane pins it (uapi idn.h: an array
# of IDN_AFF_SETS sets of 8 ways + header + metadata, 128-byte elements,
# mmapable; a way is the token and a tag check << 48 | node << 32 | last use)
AFF_ELEMS=$((16384 + 1 + 16384 / 8))
bpftool map create "$PIN/idn_affinity" type array key 4 value 128 entries $AFF_ELEMS \
	name idn_affinity flags 1024 >/dev/null 2>&1
tap_result "pinned idn_affinity map created" $?
le64() { printf '%016x' "$1" | sed -E 's/(..)(..)(..)(..)(..)(..)(..)(..)/\8 \7 \6 \5 \4 \3 \2 \1/'; }
le32() { printf '%08x' "$1" | sed -E 's/(..)(..)(..)(..)/\4 \3 \2 \1/'; }
aff_put() {	# aff_put TOKEN CLASS NODE: way 0 of set TOKEN (the agent walks every set)
	bpftool map update pinned "$PIN/idn_affinity" key hex $(le32 "$1") \
		value hex $(le64 "$1") $(le64 $(((1 << 48) | ($3 << 32) | 1))) $(printf '00 %.0s' $(seq 112))
}

start_idnd() {
	bg_ns "$NS" "$TMPD/idnd.log" "$BUILD/idnd" --insecure --enrol open -d "$TMPD/idnd.db" -p 8787 -t 5000 -P none
	IDND_PID=$BG_PID
	for _ in $(seq 200); do in_ns "$NS" curl -s -o /dev/null $URL/v1/status && return 0; sleep 0.05; done
	return 1
}
start_idnd
tap_result "idnd starts" $?

# 64 blocks of 16 tokens: small, so one long prompt evicts everything else
bg_ns "$NS" "$TMPD/agent.log" "$AGENT" --insecure --node-id $NODE --addr4 10.1.0.3 --key "$TMPD/node.key" \
	--controller $URL --hb-ms 100 --listen 127.0.0.1:8000 --speed 1000 \
	--block-tokens 16 --kv-capacity-tokens 1024 --kv-bytes-per-token 8 \
	--affinity-pin "$PIN" -v
AGENT_PID=$BG_PID
for _ in $(seq 200); do in_ns "$NS" curl -s -o /dev/null $AURL/health && break; sleep 0.05; done

comp() {	# comp BODY [HEADER...] -> the answer
	local b=$1; shift
	local h=()
	for x in "$@"; do h+=(-H "$x"); done
	in_ns "$NS" curl -s -m 30 "${h[@]}" $AURL/v1/completions -d "$b"
}
code_of() {	# code_of BODY [HEADER...] -> HTTP status
	local b=$1; shift
	local h=()
	for x in "$@"; do h+=(-H "$x"); done
	in_ns "$NS" curl -s -m 30 -o /dev/null -w '%{http_code}' "${h[@]}" $AURL/v1/completions -d "$b"
}
cached() { jq -r '.usage.prompt_tokens_details.cached_tokens' <<<"$1"; }

A='{"input_length":100,"output_length":2,"hash_ids":[11,12,13,14,15,16]}'
out=$(comp "$A" "X-IDN-Tenant: 5" "X-IDN-Token: 0xa1")
[ "$(cached "$out")" = 0 ]
tap_result "tenant 5, token A: first request computes its prefix" $? "$out"
out=$(comp "$A" "X-IDN-Tenant: 5" "X-IDN-Token: 0xa1")
[ "$(cached "$out")" = 96 ]
tap_result "scope: tenant 5 hits its own prefix (96 of 100 tokens)" $? "$out"
out=$(comp "$A" "X-IDN-Tenant: 6")
[ "$(cached "$out")" = 0 ]
tap_result "scope: tenant 6 does not hit tenant 5's prefix" $? "$out"
out=$(comp "$A")
[ "$(cached "$out")" = 0 ]
tap_result "scope: an anonymous request does not hit it either" $? "$out"
c=$(code_of "$A" "X-IDN-Scope: tenant")
tap_result "X-IDN-Scope tenant without X-IDN-Tenant: 400" "$([ "$c" = 400 ]; echo $?)" "got $c"
c=$(code_of "$A" "X-IDN-Scope: galaxy")
tap_result "unknown X-IDN-Scope: 400" "$([ "$c" = 400 ]; echo $?)" "got $c"

# the router sends token A (class 1) and token C to this node
aff_put 161 1 $NODE && aff_put 195 1 $NODE && aff_put 4660 1 7
tap_result "affinity entries written (A and C -> node $NODE, another -> node 7)" $?

metric() { in_ns "$NS" curl -s $AURL/metrics | awk -v m="$1" '$1 ~ "^"m"[{]" {print $2}'; }
wait_metric() {	# wait_metric NAME MIN TIMEOUT_S
	local i v
	for ((i = 0; i < $3 * 20; i++)); do
		v=$(metric "$1")
		[ -n "$v" ] && awk -v v="$v" -v m="$2" 'BEGIN { exit !(v >= m) }' && return 0
		sleep 0.05
	done
	return 1
}
wait_metric idn_affinity_agree_total 1 10
tap_result "self-check: token A agrees (its prefix is cached)" $? "$(in_ns "$NS" curl -s $AURL/metrics | grep idn_affinity)"
wait_metric idn_affinity_unknown_total 1 10
tap_result "self-check: token C is unknown (never served here)" $?
[ "$(metric idn_affinity_mismatch_total)" = 0 ] &&
	awk -v r="$(metric idn_affinity_agree_ratio)" 'BEGIN { exit !(r != "" && r + 0 == 1) }'
tap_result "self-check: no mismatch yet, ratio 1" $? "$(in_ns "$NS" curl -s $AURL/metrics | grep idn_affinity)"

# idnd has the state: descriptors and the affinity counters
wait_idnd() {	# wait_idnd JQ-EXPR TIMEOUT_S
	local i
	for ((i = 0; i < $2 * 20; i++)); do
		in_ns "$NS" "$IDNCTL" --insecure -C $URL -j state show node $NODE 2>/dev/null | jq -e "$1" \
			>/dev/null && return 0
		sleep 0.05
	done
	return 1
}
wait_idnd '.policy == "eq8" and .kv_blocks == 64 and (.descriptors | map(select(.type == "kv_prefix" and .scope == "tenant" and .tenant == 5 and .blocks == 6 and .hits >= 6 and .migration_us > 0)) | length == 1) and .affinity.agree >= 1' 10
tap_result "idnd: state descriptors S of the node (tenant 5 prefix: 6 blocks, reused)" $? \
	"$(in_ns "$NS" "$IDNCTL" --insecure -C $URL -j state show node $NODE | head -c 600)"
out=$(in_ns "$NS" "$IDNCTL" --insecure -C $URL state show)
grep -q "^node $NODE policy eq8 kv-blocks 64" <<<"$out" && grep -q "kv_prefix root [0-9a-f]\{16\} scope tenant tenant 5 blocks 6" <<<"$out"
tap_result "idnctl state show (text)" $? "$out"

# evict A's prefix on purpose: one prompt of 62 blocks needs nearly the whole cache
LONG=$(jq -cn '{input_length: 992, output_length: 2, hash_ids: [range(1000; 1062)]}')
out=$(comp "$LONG")
[ "$(jq -r .usage.prompt_tokens <<<"$out")" = 992 ]
tap_result "a long prompt filled the cache" $? "$out"
wait_metric idn_affinity_mismatch_total 1 10
tap_result "self-check: token A now mismatches (the router still sends it here)" $? \
	"$(in_ns "$NS" curl -s $AURL/metrics | grep idn_affinity)"
wait_metric idn_affinity_agree_ratio 0 1
r=$(metric idn_affinity_agree_ratio)
awk -v r="$r" 'BEGIN { exit !(r < 1) }'
tap_result "self-check: agree ratio below 1 ($r)" $?
wait_idnd '.affinity.mismatch >= 1' 10
tap_result "idnd: the mismatch arrives with the heartbeat" $?
out=$(comp "$A" "X-IDN-Tenant: 5")
[ "$(cached "$out")" = 0 ]
tap_result "and the engine really lost it (tenant 5: 0 cached tokens)" $? "$out"

# hostile state bodies: 400, stored state unchanged
kill "$AGENT_PID"; wait "$AGENT_PID" 2>/dev/null
before=$(in_ns "$NS" curl -s $URL/v1/nodes/$NODE/state)
# signed with the agent's own key (docs/security.md): an enrolled node's
# unsigned heartbeat is refused 403 before its body is looked at
hb() {
	local q
	q=$("$IDNCTL" node sign request id $NODE key "$TMPD/node.key" \
		path /v1/nodes/$NODE/heartbeat body "$1") || return 1
	in_ns "$NS" curl -s -m 5 -o "$TMPD/resp" -w '%{http_code}' -X POST \
		--data-binary "$1" "$URL$q"
}
bad() {	# bad NAME BODY PATTERN
	local c
	c=$(hb "$2")
	[ "$c" = 400 ] && jq -r .error "$TMPD/resp" | grep -qE -- "$3"
	tap_result "hostile state: $1 -> 400" $? "got $c $(cat "$TMPD/resp")"
}
D='"type":"kv_prefix","compat":"0123456789abcdef","scope":"public","root":"00000000000000aa","blocks":1,"size":1,"migration_us":1'
bad "unknown field" '{"state":{"evil":1}}' 'unknown field "evil"'
bad "unknown descriptor field" "{\"state\":{\"descriptors\":[{$D,\"x\":1}]}}" 'descriptors\[0\]: unknown field "x"'
bad "bad compat hash" "{\"state\":{\"descriptors\":[{${D/0123456789abcdef/XYZ}}]}}" 'compat'
bad "bad scope" "{\"state\":{\"descriptors\":[{${D/public/galaxy}}]}}" 'scope'
bad "reuse out of range" "{\"state\":{\"descriptors\":[{$D,\"reuse\":-0.5}]}}" 'reuse'
bad "session scope without session" "{\"state\":{\"descriptors\":[{${D/public/session},\"tenant\":1}]}}" 'session'
bad "hardware-bound but migratable" "{\"state\":{\"descriptors\":[{${D/public/hardware}}]}}" 'migration_us'
bad "negative size" "{\"state\":{\"descriptors\":[{${D/\"size\":1/\"size\":-1}}]}}" 'size'
many=$(for i in $(seq 65); do printf '{%s},' "$D"; done)
bad "65 descriptors" "{\"state\":{\"descriptors\":[${many%,}]}}" 'at most 64'
bad "descriptors not an array" '{"state":{"descriptors":{}}}' 'array'
after=$(in_ns "$NS" curl -s $URL/v1/nodes/$NODE/state)
[ "$before" = "$after" ]
tap_result "rejected heartbeats changed nothing" $?
m=$(in_ns "$NS" curl -s $URL/metrics)
awk '$1 == "idnd_affinity_mismatch" && $2 >= 1 {a = 1} $1 == "idnd_state_rejected_total" && $2 >= 10 {b = 1}
	$1 == "idnd_state_nodes" && $2 == 1 {c = 1} END {exit !(a && b && c)}' <<<"$m"
tap_result "idnd /metrics: state nodes, affinity mismatch sum, rejected state reports" $? \
	"$(grep -E 'idnd_(state|affinity)' <<<"$m")"

# persistence: kill -9 idnd, restart, the state is still there (a changed
# summary is written within a second: wait that long after the last report)
sleep 1.5
kill -9 "$IDND_PID"; wait "$IDND_PID" 2>/dev/null
start_idnd
tap_result "idnd restarts after kill -9" $?
after=$(in_ns "$NS" curl -s $URL/v1/nodes/$NODE/state)
[ -n "$before" ] && jq -e '.descriptors | length > 0' <<<"$after" >/dev/null &&
	[ "$(jq -c 'del(.updated)' <<<"$before")" = "$(jq -c 'del(.updated)' <<<"$after")" ]
tap_result "state survives the restart (SQLite)" $? "$(head -c 300 <<<"$after")"
# a reuse estimate a little above 1 (an agent's slip, 1.005-1.017 seen) is
# clamped and counted; the heartbeat's load still counts
c=$(hb "{\"load\":417,\"state\":{\"descriptors\":[{$D,\"reuse\":1.017}]}}")
st=$(in_ns "$NS" curl -s $URL/v1/nodes/$NODE/state)
ld=$(in_ns "$NS" curl -s $URL/v1/nodes | jq -r ".[] | select(.id == $NODE) | .load")
m=$(in_ns "$NS" curl -s $URL/metrics)
[ "$c" = 200 ] && [ "$(jq -r '.descriptors[0].reuse' <<<"$st")" = 1 ] && [ "$ld" = 417 ] &&
	awk '$1 == "idnd_state_clamped_total" && $2 == 1 {a = 1} END {exit !a}' <<<"$m"
tap_result "reuse 1.017: clamped to 1 and counted, the heartbeat's load taken" $? \
	"got $c $(cat "$TMPD/resp"); state $st; load $ld; $(grep clamped <<<"$m")"
c=$(in_ns "$NS" curl -s -o /dev/null -w '%{http_code}' -X DELETE $URL/v1/nodes/$NODE)
c2=$(in_ns "$NS" curl -s -o /dev/null -w '%{http_code}' $URL/v1/nodes/$NODE/state)
[ "$c" = 200 ] && [ "$c2" = 404 ] && [ "$(in_ns "$NS" curl -s $URL/v1/state)" = "[]" ]
tap_result "deleting the node drops its state" $? "delete $c, state $c2"

tap_done
