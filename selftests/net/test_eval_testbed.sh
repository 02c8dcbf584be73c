#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# test_eval_testbed.sh - make eval's testbed mode on a small slice: 60
# requests of the Mooncake conversation slice through the real router
# (idn_xdp), idnd and 2 agents (emulators at --speed 4) in idntb-*
# namespaces, from idn_tbclient, a connection per request and then
# keep-alive per session; the same slice simulated (tools/eval/testbed.sh).
# Checks: every request got a complete streamed answer in both runs
# (status 200, every output token), the dataplane spread them over both
# nodes, the shared prompt blocks hit the engines' prefix caches as in the
# simulation, and both figures are computed from the two p90s. Then the
# client's keep-alive pool against one agent: 3 sessions of 2 turns, the
# second turn of each reuses its session's connection and finds the first
# turn's blocks cached (sessions rarely repeat within the slice's first 60
# requests).
# TAP output; exit 4 when the machine cannot run it.

source "$(dirname "$0")/lib.sh"

require_root
require_file "$BUILD/tools/idn_tbclient" "$BUILD/tools/idn_eval"

N=60
make_tmpdir || skip_all "mktemp"
out=$(O=$O "$IDN_ROOT/tools/eval/testbed.sh" --limit $N --nodes 2 --speed 4 \
	--trace "$IDN_ROOT/selftests/data/mooncake_conversation_2000.jsonl.gz" \
	--keep "$TMPD/keep" 2>"$TMPD/err")
rc=$?
[ $rc -eq 4 ] && skip_all "$(grep -m1 SKIP "$TMPD/err" | sed 's/.*SKIP //')"
log_cmd cat "$TMPD/err"
log_cmd echo "$out"
K=$TMPD/keep
tap_result "testbed.sh ran (exit $rc)" $rc "$(tail -n 5 "$TMPD/err")"

# field LINE KEY: the value after KEY
field() { awk -v k="$2" '{ for (i = 1; i < NF; i++) if ($i == k) { print $(i + 1); exit } }' <<<"$1"; }
conn=$(cat "$K/conn.out" 2>/dev/null)
ka=$(cat "$K/keepalive.out" 2>/dev/null)
sim=$(cat "$K/sim.out" 2>/dev/null)
for run in conn keepalive; do
	s=$(cat "$K/$run.out" 2>/dev/null)
	okn=$(awk '!/^#/ && $NF == "ok" && $6 == 200 && $3 > 0' "$K/$run.tsv" 2>/dev/null | wc -l)
	[ "$(field "$s" requests)" = $N ] && [ "$(field "$s" ok)" = $N ] && [ "$okn" = $N ]
	tap_result "$run: all $N requests answered (200, first token, every output token)" $? "$s"
done
[ "$(field "$sim" requests)" = $N ]
tap_result "the same $N requests simulated" $? "$sim"

n1=$(awk '!/^#/ && $5 == 1' "$K/conn.tsv" | wc -l)
n2=$(awk '!/^#/ && $5 == 2' "$K/conn.tsv" | wc -l)
[ "$n1" -gt 0 ] && [ "$n2" -gt 0 ] && [ $((n1 + n2)) = $N ]
tap_result "the dataplane spread them over both nodes ($n1 / $n2)" $?

# shared leading blocks of text hit the emulators' prefix caches as the
# simulator's hash ids do (a partial last block is not cached: within 1 %)
th=$(field "$conn" hit_pct) sh=$(field "$sim" hit_pct)
awk -v t="$th" -v s="$sh" 'BEGIN { exit !(s > 0 && t > 0 && t - s < 1 && s - t < 1) }'
tap_result "prefix hits: testbed $th % of prompt tokens, simulated $sh %" $?

r=$(field "$ka" reused)
[ -n "$r" ] && [ $(($(field "$ka" conns) + r)) = $N ]
tap_result "keep-alive run: connections opened + reused = $N ($r reused)" $? "$ka"

err=$(awk '$1 == "eval_sim_vs_testbed_p90_err" { print $2 }' <<<"$out")
want=$(awk -v s="$(field "$sim" p90_s)" -v t="$(field "$conn" p90_s)" \
	'BEGIN { if (t > 0) printf "%.1f", (s > t ? s - t : t - s) / t * 100 }')
[ -n "$err" ] && [ "$err" = "$want" ]
tap_result "eval_sim_vs_testbed_p90_err $err % = |sim - testbed| / testbed of the two p90s" $? \
	"want $want"
kr=$(awk '$1 == "eval_testbed_keepalive_p90_vs_conn" { print $2 }' <<<"$out")
want=$(awk -v k="$(field "$ka" p90_s)" -v t="$(field "$conn" p90_s)" \
	'BEGIN { if (t > 0) printf "%.3f", k / t }')
[ -n "$kr" ] && [ "$kr" = "$want" ]
tap_result "eval_testbed_keepalive_p90_vs_conn $kr x = keep-alive p90 / per-request p90" $? \
	"want $want"
ns=$(sed -n 's/^# testbed: namespaces //p' "$TMPD/err")
left=""
for n in $ns; do
	[ -e "/run/netns/$n" ] && left="$left $n"
done
[ -n "$ns" ] && [ -z "$left" ]
tap_result "its namespaces ($ns) are gone" $? "left:$left"

# ---- keep-alive per session against one agent (no router): 3 sessions
# (hash ids 7,S,...), turn 2 of each 1.5 s after turn 1, sharing its blocks
KA=idntb-ka-$(mktemp -u XXXXXX)
ip netns add "$KA" && _ns_list+=("$KA") && ip -n "$KA" link set lo up
bg_ns "$KA" "$TMPD/ka_agent.log" "$BUILD/idn-agent" --insecure --node-id 1 \
	--listen 127.0.0.1:8000 --mgmt-listen none --key "$TMPD/ka.key" --speed 4
wait_listen "$KA" 8000 10
tap_result "an agent for the keep-alive check" $? "$(cat "$TMPD/ka_agent.log")"
: >"$TMPD/ka.jsonl"
for t in 0 1; do
	for s in 1 2 3; do
		ids="7,$s$s"
		[ $t = 1 ] && ids="$ids,$s${s}1"
		echo "{\"timestamp\":$((t * 1500 + s * 10)),\"input_length\":$((512 * (t + 2))),\"output_length\":4,\"hash_ids\":[$ids]}" >>"$TMPD/ka.jsonl"
	done
done
s=$(in_ns "$KA" "$BUILD/tools/idn_tbclient" --trace "$TMPD/ka.jsonl" --scale 1 --keepalive \
	--addr 127.0.0.1 --port 8000 --out "$TMPD/ka.tsv" --timeout 20 2>"$TMPD/ka.err")
log "$s"
[ "$(field "$s" ok)" = 6 ] && [ "$(field "$s" conns)" = 3 ] && [ "$(field "$s" reused)" = 3 ]
tap_result "keep-alive: 6 answered over 3 connections, the 3 second turns reused theirs" $? \
	"$(cat "$TMPD/ka.err")"
c2=$(awk '!/^#/ && $1 >= 3 && $9 == 1 && $7 >= 1024' "$TMPD/ka.tsv" | wc -l)
[ "$c2" = 3 ]
tap_result "the second turns found their first turn's 2 blocks cached ($c2 of 3)" $? \
	"$(cat "$TMPD/ka.tsv")"
tap_done
