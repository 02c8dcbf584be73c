#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# test_agent_etcd.sh - idn-agent holding its node's own lease in etcd
# (--etcd), against a real etcd started by the test on loopback of a
# private network namespace (random ports, own data dir, killed by pid),
# two idnd replicas and a router-side watcher (idnd -W) with its own maps:
# the agent's key nodes/ID is bound to a lease the agent granted
# ("lease_owner": "agent") beside a node whose lease the leader keeps
# ("idnd"); bad URLs exit 2, an unreachable etcd is retried; kill -9 of the
# agent: the key goes within the TTL, the leader takes the node out of the
# plans and the watcher's maps follow; the agent restarts: registered
# again; its lease revoked under it: granted and written again; kill -9 of
# the leader: the other replica takes over, leaves the agent's lease to
# the agent, and the node stays up (heartbeats reach the new leader);
# a clean exit revokes the lease; affinity seeds through etcd: a reused
# prefix root node 2 reports in its heartbeat's state reaches the
# watcher's router as (token, class) -> node 2 (affseeds/TOKEN), an entry
# the router has is kept, a root no longer popular loses its key, bad
# values written straight to etcd are refused. Polls with generous deadlines (the host
# may be loaded). Skips (4) without etcd.
if [ -z "${IDN_TEST_UNSHARED:-}" ] && [ "$(id -u)" -eq 0 ]; then
	IDN_TEST_UNSHARED=1 exec unshare -m --propagation private "$0" "$@"
fi

source "$(dirname "$0")/lib.sh"

require_root
command -v etcd >/dev/null || skip_all "etcd not installed (Debian etcd-server)"
require_cmd ip jq nsenter curl python3
IDND=$BUILD/idnd
AGENT=$BUILD/idn-agent
require_file "$IDND" "$AGENT" "$IDNCTL" "$BUILD/bpf/idn_steer.bpf.o"
probe_netns || skip_all "cannot create network namespaces"
probe_bpffs || skip_all "cannot mount bpffs"

make_tmpdir || exit 1
setup_ns NS || { tap_fail "netns"; tap_done; }
CP=$((10000 + RANDOM % 20000))	# below the ephemeral port range
ETCD=http://127.0.0.1:$CP
PA=$((CP + 1)) PB=$((CP + 2)) AP=$((CP + 4))
DOM=/idn/0/

ms() { echo $(( ($(date +%s%N) - $1) / 1000000 )); }

# the agent's exit status on bad --etcd values (no etcd needed)
rc=0; "$AGENT" --insecure --node-id 1 --addr4 10.2.0.1 --etcd ftp://x --no-engine >/dev/null 2>&1 || rc=$?
rc2=0; "$AGENT" --insecure --node-id 1 --addr4 10.2.0.1 --etcd "http://a:1," --no-engine >/dev/null 2>&1 || rc2=$?
rc3=0; "$AGENT" --insecure --node-id 1 --etcd http://127.0.0.1:1 --no-engine >/dev/null 2>&1 || rc3=$?
tap_result "bad --etcd URL / list / no locator: exit 2 ($rc $rc2 $rc3)" \
	"$([ $rc = 2 ] && [ $rc2 = 2 ] && [ $rc3 = 2 ]; echo $?)"

start_etcd "$NS" "$ETCD"
tap_result "etcd up on 127.0.0.1:$CP" $? "$(tail -5 "$TMPD/etcd.log")" || tap_done

api() { in_ns "$NS" curl -s -m 5 "$@"; }
post() { api -o /dev/null -w '%{http_code}' -X POST --data-binary "$3" "http://127.0.0.1:$1$2"; }
leader() { api "http://127.0.0.1:$1/v1/status" | jq -r .leader; }
# nodes/ID as etcd has it: {lease (decimal string), owner}
nkey() {
	local k
	k=$(printf '%s' "${DOM}nodes/$1" | base64 -w0)
	api -X POST "$ETCD/v3/kv/range" -d "{\"key\":\"$k\"}" |
		jq -c '[.kvs // [] | .[] | {lease: (.lease // "0"),
			owner: (.value | @base64d | fromjson | .lease_owner)}] | .[0] // {}'
}
nowner() { nkey "$1" | jq -r '.owner // ""'; }
nlease() { nkey "$1" | jq -r '.lease // ""'; }
# node ID's state as replica PORT sees it
nstate() { api "http://127.0.0.1:$1/v1/nodes" | jq -r ".[] | select(.id == $2) | .state"; }
nhb() { api "http://127.0.0.1:$1/v1/nodes" | jq -r ".[] | select(.id == $2) | .heartbeats"; }

start_replica() {	# NAME PORT ETCD-URLS
	bg_ns "$NS" "$TMPD/idnd-$1.log" "$IDND" --insecure --enrol open -v -d "$TMPD/$1.db" -p "$2" -P none -t 1000 \
		-E "$3" -N "$1"
	eval "PID_$1=\$BG_PID"
	wait_for 20 "api -o /dev/null http://127.0.0.1:$2/v1/status"
}
start_replica a $PA "$ETCD"
wait_for 20 '[ "$(leader $PA)" = true ]'
start_replica b $PB "http://127.0.0.1:1,$ETCD"	# a dead endpoint first
tap_result "two replicas: a leads, b follows" \
	"$(wait_for 10 '[ "$(leader $PB)" = false ]' && [ "$(leader $PA)" = true ]; echo $?)"

start_agent() {	# LOG
	bg_ns "$NS" "$TMPD/$1" "$AGENT" --insecure --node-id 1 --addr4 10.2.0.1 --trust 6 --no-engine \
		--region 1 --key "$TMPD/node1.key" --listen 127.0.0.1:$AP --hb-ms 200 --etcd-ttl 2 \
		--controller "http://127.0.0.1:$PA,http://127.0.0.1:$PB" --etcd "http://127.0.0.1:1,$ETCD"
	AGENT_PID=$BG_PID
}
start_agent agent.log
# node 2: no etcd, heartbeats over HTTP to both replicas (the follower says 503)
post $PA /v1/nodes '{"id":2,"addr4":"10.2.0.2","mem_gb":80,"region":2,"trust":6}' >/dev/null
(while :; do for p in $PA $PB; do post $p /v1/nodes/2/heartbeat '{"load":1}' >/dev/null; done
	sleep 0.2; done) &
bg_pid $!

wait_for 20 '[ "$(nowner 1)" = agent ]'
lease1=$(nlease 1)
glog=$(grep -o 'etcd lease [0-9a-f]* holds' "$TMPD/agent.log" | head -1 | awk '{print $3}')
st=$(api "http://127.0.0.1:$AP/v1/agent" | jq -c .etcd)
tap_result "agent's key nodes/1 bound to the lease it granted ($glog), lease_owner agent" \
	"$([ -n "$glog" ] && [ "$(printf '%x' "$lease1")" = "$glog" ] &&
	   jq -e ".held and .lease == \"$glog\"" <<<"$st" >/dev/null; echo $?)" \
	"$(nkey 1) $st $(cat "$TMPD/agent.log")"
wait_for 20 '[ "$(nowner 2)" = idnd ]'
tap_result "node 2 (no etcd): key under the leader's lease, lease_owner idnd" \
	"$([ "$(nowner 2)" = idnd ] && [ "$(nlease 2)" != 0 ]; echo $?)" "$(nkey 2)"
wait_for 20 '[ "$(nstate $PA 1)" = up ]'
tap_result "the leader has node 1 up (HTTP registration + heartbeats)" \
	"$([ "$(nstate $PA 1)" = up ]; echo $?)" "$(tail -5 "$TMPD/idnd-a.log")"

post $PA /v1/caps '{"class":7,"name":"chat","resources":{"mem_gb":1}}' >/dev/null
post $PA /v1/demand '{"cap":1792,"region":1,"rps":100}' >/dev/null
post $PA /v1/demand '{"cap":1792,"region":2,"rps":100}' >/dev/null
code=$(post $PA /v1/placement/solve '{}')

# router side: its own maps, watching the prefix
make_bpffs "$TMPD/bpf" || { tap_fail "bpffs"; tap_done; }
P=$TMPD/bpf/idn
ip -n "$NS" link add w0 type veth peer name w1
ip -n "$NS" link set w0 up; ip -n "$NS" link set w1 up
c() { "$IDNCTL" -n "$NS" -P "$P" "$@"; }
check "router dataplane attached" c dp attach dev w0
bg_ns "$NS" "$TMPD/watch.log" "$IDND" -v -W -E "$ETCD" -P "$P"
WPID=$BG_PID
cands() { c -j plan show | jq -c '(.. | objects | select(has("active_slot")) | .active_slot) as $s |
	[.. | objects | select(has("candidates") and .slot == $s) | .. | objects | .node? // empty] | unique'; }
health() { c -j node show | jq -r ".. | objects | select(.id? == $1) | .health" | head -1; }
wait_for 30 '[ "$(cands)" = "[1,2]" ]'
tap_result "watcher's maps: cap 7 -> $(cands), node 1 $(health 1) (solve $code)" \
	"$([ "$(cands)" = "[1,2]" ] && [ "$(health 1)" = up ]; echo $?)" \
	"$(tail -5 "$TMPD/watch.log"; api http://127.0.0.1:$PA/v1/placement)"
# the node's telemetry key reaches the router through etcd (telekeys/1):
# the key id the leader issued at the agent's signed registration
tkid() { api "http://127.0.0.1:$PA/v1/identities/1" | jq -r '.tele_key_id // 0'; }
wkid() { c -j node tele-key id 1 2>/dev/null | jq -r .key_id; }
wait_for 20 '[ "$(tkid)" != 0 ] && [ "$(wkid)" = "$(tkid)" ]'
tk1=$(tkid)
tap_result "watcher's maps: node 1's telemetry key from etcd (key id $(wkid), the leader's $tk1)" \
	"$([ "$tk1" != 0 ] && [ "$(wkid)" = "$tk1" ]; echo $?)" \
	"$(grep 'telemetry key' "$TMPD/watch.log" | tail -3)"

# affinity seeds through etcd (docs/controller.md "Affinity seeds"): node 2
# reports, in its heartbeat's state, prefix roots naming tokens T and U,
# each block hit twice (popular); the leader (no maps of its own, -P none)
# writes affseeds/TOKEN, the watcher installs (TOKEN, class 7) -> node 2
# where its router has no entry: U's own entry (-> node 1) is kept
T=4919 U=4920
TH=$(printf '%016x' $T) UH=$(printf '%016x' $U)
desc() {	# TOKEN-HEX HITS
	echo "{\"type\":\"kv_prefix\",\"compat\":\"0000000000000001\",\"scope\":\"public\",
	\"root\":\"${1}\",\"blocks\":4,\"token\":\"$1\",\"size\":4096,\"hits\":$2,\"migration_us\":100}"
}
hbst() { post $PA /v1/nodes/2/heartbeat "{\"load\":1,\"state\":{\"descriptors\":[$(desc $TH $1),$(desc $UH 8)]}}"; }
# affseeds/TOKEN as etcd has it (its value), "" if none
akey() {
	api -X POST "$ETCD/v3/kv/range" -d "{\"key\":\"$(printf '%s' "${DOM}affseeds/$1" | base64 -w0)\"}" |
		jq -c '[.kvs // [] | .[] | .value | @base64d | fromjson] | .[0] // empty'
}
eput() { api -o /dev/null -X POST "$ETCD/v3/kv/put" -d "{\"key\":\"$(printf '%s' "${DOM}affseeds/$1" |
	base64 -w0)\",\"value\":\"$(printf '%s' "$2" | base64 -w0)\"}"; }
aff() { c -j dp affinity "$1" 7 2>/dev/null | jq -r '.node // empty'; }
c dp affinity $U 7 node 1 >/dev/null
code=$(hbst 8)
wait_for 20 'hbst 8 >/dev/null; [ "$(aff $T)" = 2 ] && [ -n "$(akey $UH)" ]'
tap_result "seed through etcd: affseeds/$TH $(akey $TH), the watcher's router (T, 7) -> node $(aff $T) (hb $code)" \
	"$([ "$(akey $TH)" = '{"node":2,"classes":[7]}' ] && [ "$(aff $T)" = 2 ]; echo $?)" \
	"$(grep -i 'seed' "$TMPD/watch.log" "$TMPD/idnd-a.log" | tail -5)"
tap_result "the router's own entry kept: (U, 7) -> node $(aff $U), affseeds/$UH $(akey $UH)" \
	"$([ "$(aff $U)" = 1 ] && [ "$(akey $UH)" = '{"node":2,"classes":[7]}' ] &&
	   grep -q "affinity seed $UH -> node 2: 0 written, 1 kept" "$TMPD/watch.log"; echo $?)" \
	"$(grep 'affinity seed' "$TMPD/watch.log" | tail -3)"
# T no longer popular (1 hit over 4 blocks): its key goes; the router's entry stays
wait_for 20 'hbst 1 >/dev/null; [ -z "$(akey $TH)" ]'
tap_result "T no longer popular: affseeds/$TH deleted, U's still there, the router's entry kept" \
	"$([ -z "$(akey $TH)" ] && [ -n "$(akey $UH)" ] && [ "$(aff $T)" = 2 ]; echo $?)"
# bad values written straight to etcd: refused, counted, said; nothing installed
r0=$(grep -c 'refused .*affseeds/' "$TMPD/watch.log")
eput 00000000000000b1 'not json'
eput 0000000000000000 '{"node":2,"classes":[7]}'
eput 00000000000000b2 '{"node":5000,"classes":[7]}'
eput 00000000000000b3 '{"node":2,"classes":[7],"x":1}'
eput 00000000000000b4 '{"node":4090,"classes":[7]}'
refused() { for t in b1 b2 b3 b4; do grep -q "refused ${DOM}affseeds/00000000000000$t " \
	"$TMPD/watch.log" || return 1; done; grep -q "refused ${DOM}affseeds/0000000000000000 " "$TMPD/watch.log"; }
wait_for 20 refused
tap_result "bad affseeds values (not JSON, token 0, node 5000, unknown field, a peer's id): refused" \
	"$(refused && [ "$(grep -c 'refused .*affseeds/' "$TMPD/watch.log")" -eq $((r0 + 5)) ] &&
	   kill -0 $WPID && [ -z "$(aff 177)" ] && [ -z "$(aff 178)" ] && [ -z "$(aff 0)" ] &&
	   [ -z "$(aff 180)" ]; echo $?)" "$(grep 'refused .*affseeds/' "$TMPD/watch.log")"
api -o /dev/null -X POST "$ETCD/v3/kv/deleterange" -d "{\"key\":\"$(printf '%s' "${DOM}affseeds/00000000000000b" |
	base64 -w0)\",\"range_end\":\"$(printf '%s' "${DOM}affseeds/00000000000000c" | base64 -w0)\"}"
api -o /dev/null -X POST "$ETCD/v3/kv/deleterange" -d "{\"key\":\"$(printf '%s' "${DOM}affseeds/0000000000000000" | base64 -w0)\"}"

# kill -9 the agent: its key goes within the TTL (2 s; 15 s allowed under
# load), the leader drops node 1 from the plans, the watcher's maps follow
kill -9 "$AGENT_PID"; wait "$AGENT_PID" 2>/dev/null
t0=$(date +%s%N)
wait_for 15 '[ -z "$(nowner 1)" ]'
tap_result "agent killed: its key expired with its lease ($(ms $t0) ms, TTL 2 s)" \
	"$([ -z "$(nowner 1)" ]; echo $?)" "$(nkey 1)"
wait_for 20 '[ "$(cands)" = "[2]" ]'
tap_result "node 1 out of the plans: watcher's maps cap 7 -> $(cands), node 1 $(health 1)" \
	"$([ "$(cands)" = "[2]" ] && [ "$(health 1)" = down ]; echo $?)" \
	"$(tail -5 "$TMPD/watch.log"; tail -5 "$TMPD/idnd-a.log")"

# the agent restarts (its first etcd endpoint is dead): a new lease, its key again,
# back in the plans
start_agent agent2.log
wait_for 20 '[ "$(nowner 1)" = agent ]'
lease2=$(nlease 1)
tap_result "agent restarted: nodes/1 again under a new lease of its own" \
	"$([ "$(nowner 1)" = agent ] && [ "$lease2" != "$lease1" ]; echo $?)" "$(nkey 1)"
wait_for 30 '[ "$(cands)" = "[1,2]" ]'
tap_result "re-registered: watcher's maps cap 7 -> $(cands), node 1 $(health 1)" \
	"$([ "$(cands)" = "[1,2]" ] && [ "$(health 1)" = up ]; echo $?)" "$(tail -5 "$TMPD/watch.log")"
wait_for 20 '[ "$(tkid)" != "$tk1" ] && [ "$(wkid)" = "$(tkid)" ]'
tap_result "re-registration's new telemetry key (id $(tkid), was $tk1) replaced the router's" \
	"$([ "$(tkid)" != "$tk1" ] && [ "$(wkid)" = "$(tkid)" ]; echo $?)" \
	"$(grep 'telemetry key' "$TMPD/watch.log" | tail -3)"

# the lease revoked under the agent (as when etcd lost it): granted and written again
api -o /dev/null -X POST "$ETCD/v3/lease/revoke" -d "{\"ID\":\"$lease2\"}"
wait_for 20 'grep -q "granted again" "$TMPD/agent2.log"'
wait_for 20 '[ "$(nowner 1)" = agent ]'
lease3=$(nlease 1)
tap_result "lease revoked: the agent granted a new one and wrote its key again" \
	"$([ "$(nowner 1)" = agent ] && [ "$lease3" != "$lease2" ] &&
	   grep -q 'granted again' "$TMPD/agent2.log"; echo $?)" "$(nkey 1) $(tail -3 "$TMPD/agent2.log")"

# kill -9 the leader: b takes over, the agent keeps its own lease and node 1 stays up
hb_a=$(nhb $PA 1)
kill -9 "$PID_a"; wait "$PID_a" 2>/dev/null
t0=$(date +%s%N)
wait_for 20 '[ "$(leader $PB)" = true ]'
tap_result "leader killed: b took over in $(ms $t0) ms" \
	"$([ "$(leader $PB)" = true ]; echo $?)" "$(tail -5 "$TMPD/idnd-b.log")"
# heartbeats reach b (the agent's next controller URL) well past the
# heartbeat timeout (1 s): 12 of them at 200 ms
wait_for 30 '[ "$(nhb $PB 1)" -ge 12 ] 2>/dev/null'
st=$(nstate $PB 1)
tap_result "after failover node 1 stays up on b ($(nhb $PB 1) heartbeats), key still the agent's" \
	"$([ "$st" = up ] && [ "$(nowner 1)" = agent ] && [ "$(nlease 1)" = "$lease3" ] &&
	   ! grep -q 'node 1 missed\|node 1: its own lease is gone' "$TMPD/idnd-b.log"; echo $?)" \
	"state $st, a had $hb_a; $(nkey 1); $(tail -5 "$TMPD/idnd-b.log")"
tap_result "watcher: node 1 still up, cap 7 -> $(cands)" \
	"$([ "$(health 1)" = up ] && [ "$(cands)" = "[1,2]" ]; echo $?)"
code=$(post $PB /v1/placement/solve '{}')
wait_for 20 '[ "$(cands)" = "[1,2]" ]'
tap_result "new leader solves with node 1 placed: cap 7 -> $(cands) ($code)" \
	"$([ "$(cands)" = "[1,2]" ]; echo $?)" "$(api http://127.0.0.1:$PB/v1/placement)"

# a clean exit revokes the lease: the key goes at once, node 1 leaves the plans
kill -TERM "$AGENT_PID"
wait_for 20 '! kill -0 $AGENT_PID 2>/dev/null'
wait "$AGENT_PID" 2>/dev/null
tap_result "clean exit: lease revoked, key gone" \
	"$(wait_for 10 '[ -z "$(nowner 1)" ]' && grep -q 'lease revoked' "$TMPD/agent2.log"; echo $?)" \
	"$(nkey 1) $(tail -3 "$TMPD/agent2.log")"
wait_for 20 '[ "$(cands)" = "[2]" ]'
tap_result "b took node 1 out of the plans: cap 7 -> $(cands), node 1 $(health 1)" \
	"$([ "$(cands)" = "[2]" ] && [ "$(health 1)" = down ] &&
	   grep -q 'node 1: its own lease is gone' "$TMPD/idnd-b.log"; echo $?)" \
	"$(tail -5 "$TMPD/idnd-b.log")"

# etcd unreachable at start: the agent runs, retries with backoff, never crashes
bg_ns "$NS" "$TMPD/agent3.log" "$AGENT" --insecure --node-id 3 --addr4 10.2.0.3 --no-engine \
	--key "$TMPD/node3.key" --listen 127.0.0.1:$((AP + 1)) --hb-ms 100 \
	--etcd "http://127.0.0.1:1,http://127.0.0.1:2"
A3=$BG_PID
wait_for 20 'grep -q retrying "$TMPD/agent3.log"'
tap_result "etcd unreachable: the agent keeps running and retries" \
	"$(grep -q 'retrying (backoff' "$TMPD/agent3.log" && kill -0 $A3 &&
	   api "http://127.0.0.1:$((AP + 1))/v1/agent" |
		jq -e '.etcd.held == false and .etcd.failures > 0' >/dev/null; echo $?)" \
	"$(cat "$TMPD/agent3.log")"
kill "$A3"; wait "$A3" 2>/dev/null
tap_done
