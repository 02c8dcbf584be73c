#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# test_fed_etcd.sh - federation into a domain that runs in the distributed
# mode (docs/federation.md, docs/controller.md): domain A's idnd is the
# leader of an etcd (started by the test on A's router's loopback) and has
# no dataplane of its own; A's router is fed by the watcher (idnd -W).
# Domain B is as in test_fed.sh (selftests/net/fedtopo.sh), with its node
# B2; A has no node of its own for capability 1001/0, so its plans hold
# B's ingress alone. Checked:
#   - A's leader imports B's summary and writes B's entry to etcd
#     (fednodes/4095, bound to the leader's lease); the watcher installs
#     it in the router's node table and the plans that name it, and a
#     request in A is served by B's node through that router (receipt:
#     domain path 0>1);
#   - a request under a policy that keeps it at home is refused (no
#     candidate: the class's plan has no remote entry);
#   - bad fednodes/ values (not JSON, an id outside the peers' range, a
#     field out of range, an id that is not the key's) and a nodes/ key in
#     the peers' range are refused with a reason and counted; the watcher
#     goes on, nothing of them reaches the maps;
#   - B withdraws the capability: gone from the watcher's plans within
#     1000 ms (3 rounds; "# federation_withdraw_to_etcd_router_ms": their
#     median, from B's log line to the watcher's generation applied);
#   - the peer removed while the watcher is down: its full sync at start
#     removes the entry etcd no longer has; the peer added again comes back
#     live; B's idnd stops: the entry goes down on the router and the
#     plans lose it; the peer removed live: the entry leaves the router.
if [ -z "${IDN_TEST_UNSHARED:-}" ] && [ "$(id -u)" -eq 0 ]; then
	IDN_TEST_UNSHARED=1 exec unshare -m --propagation private "$0" "$@"
fi

source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/fedtopo.sh"

require_root
command -v etcd >/dev/null || skip_all "etcd not installed (Debian etcd-server)"
require_cmd ip nsenter curl jq openssl ethtool ss base64
IDND=$BUILD/idnd
AGENT=$BUILD/idn-agent
require_file "$IDND" "$IDNCTL" "$AGENT" "$BUILD/bpf/idn_pass.bpf.o" \
	"$BUILD/bpf/idn_steer.bpf.o" "$BUILD/bpf/idn_node.bpf.o"
probe_netns || skip_all "cannot create network namespaces"
probe_bpffs || skip_all "cannot mount bpffs"

make_tmpdir || exit 1
fed_ns && fed_dirs || { tap_fail "namespaces, bpffs"; tap_done; }
check "two domains' networks (selftests/net/fedtopo.sh)" fed_net
check "dataplanes: routers A and B (XDP), nodes and B's ingress (decap)" fed_dp
check "certificates" fed_pki
fed_keys
tap_result "domain keys (Ed25519)" $?

CP=$((20000 + RANDOM % 20000))
ETCD=http://127.0.0.1:$CP
DOM=/idn/0/
start_etcd "$rta" "$ETCD"
up=$?
tap_result "etcd up on router A's loopback, 127.0.0.1:$CP" $up "$(tail -5 "$TMPD/etcd.log")"
[ $up = 0 ] || tap_done

ekeys() {	# SUFFIX [PREFIX]: etcd's keys under PREFIX SUFFIX, [{key, value, lease}]
	local k e
	k=$(printf '%s' "${2:-$DOM}$1" | base64 -w0)
	e=$(printf '%s' "${2:-$DOM}$1" | python3 -c 'import sys; s=sys.stdin.read(); print(s[:-1] + chr(ord(s[-1]) + 1), end="")' | base64 -w0)
	in_ns "$rta" curl -s -m 2 -X POST "$ETCD/v3/kv/range" \
		-d "{\"key\":\"$k\",\"range_end\":\"$e\"}" |
		jq -c '[.kvs // [] | .[] | {key: (.key | @base64d), value: (.value | @base64d),
			lease: (.lease // "0")}]'
}
eput() {	# KEY-SUFFIX VALUE: written by hand, as a broken or hostile writer would
	in_ns "$rta" curl -s -m 2 -X POST "$ETCD/v3/kv/put" -d "{\"key\":\"$(printf '%s' "$DOM$1" |
		base64 -w0)\",\"value\":\"$(printf '%s' "$2" | base64 -w0)\"}" >/dev/null
}
edel() {
	in_ns "$rta" curl -s -m 2 -X POST "$ETCD/v3/kv/deleterange" \
		-d "{\"key\":\"$(printf '%s' "$DOM$1" | base64 -w0)\"}" >/dev/null
}

# domain A: the leader (no dataplane: -P none) and the router's watcher
bg_ns $rta "$TMPD/idnd-a.log" "$IDND" -d "$TMPD/idnd-a.db" -l 0.0.0.0 -P none -E "$ETCD" -N a1 \
	-t 1500 --enrol open --ca "$P/ca.pem" --cert "$P/idnd-a.pem" --key "$P/idnd-a.key" \
	--fed-name dom-a --fed-key "$TMPD/a.key" --fed-ingress 10.70.0.1 --fed-ms 100 \
	--fed-stale-ms 1000 --fed-cert "$P/peer-a.pem" --fed-cert-key "$P/peer-a.key" -v
IDND_PID_a=$BG_PID
start_a2() {	# a second replica of domain A (a follower), API on :8788
	bg_ns $rta "$TMPD/idnd-a2.log" "$IDND" -d "$TMPD/idnd-a2.db" -l 0.0.0.0 -p 8788 -P none \
		-E "$ETCD" -N a2 -t 1500 --enrol open --ca "$P/ca.pem" --cert "$P/idnd-a.pem" \
		--key "$P/idnd-a.key" --fed-name dom-a --fed-key "$TMPD/a.key" --fed-ingress 10.70.0.1 \
		--fed-ms 100 --fed-stale-ms 1000 --fed-cert "$P/peer-a.pem" \
		--fed-cert-key "$P/peer-a.key" -v
}
start_watch() {	# LOG
	bg_ns $rta "$TMPD/$1" "$IDND" -v -W -E "$ETCD" -N rta1 -P "$PIN/a"
	WATCH_PID=$BG_PID
}
start_watch watch.log
fed_idnd b
a_leads() { [ "$(ca -j controller status 2>/dev/null | jq .leader)" = true ]; }
for _ in $(seq 100); do a_leads && break; sleep 0.1; done
check "idnd A leads its etcd domain (no dataplane), idnd B answers" eval 'a_leads && fed_up cb'
start_a2
check "the watcher feeds router A's maps" eval \
	'for _ in $(seq 50); do grep -q "WATCH: synced" "$TMPD/watch.log" && exit 0; sleep 0.1; done; exit 1'

fed_agent 2 $ndb 10.62.1.1 40
fed_registered cb 2
tap_result "B's agent registered (node 2)" $? "$(tail -n 3 "$TMPD/agent2.log")"
caps_ok() {
	[[ "$(apost cb /v1/caps "$CAP")" == 20? ]] &&
	[[ "$(apost cb /v1/demand "{\"cap\":$LABEL,\"region\":1,\"rps\":50}")" == 20? ]] &&
	cb placement solve >/dev/null &&
	[ "$(cb -j placement show | jq -c '[.[] | select(.cap == 256256) | .node]')" = "[2]" ] &&
	[[ "$(apost ca /v1/caps "$CAP")" == 20? ]] &&
	[ "$(apost ca /v1/policies '{"name":"home","scope":"home"}')" = 201 ]
}
check "1001/0 placed on B's node 2; registered in A (no node of A's); class home in A" caps_ok
check "VIPs: $VIP and $VIP_HOME (policy scope home) on router A, $VIP on router B" eval \
	"ka vip add $VIP port $PORT proto tcp cap 1001/0 && \
	 ka vip add $VIP_HOME port $PORT proto tcp cap 1001/0 policy scope home && \
	 kb vip add $VIP port $PORT proto tcp cap 1001/0"
check "A (the leader): peer dom-b" \
	ca peer add name dom-b url https://10.71.0.2:8787 key "$PUB_B" domain 1 net-us 20000
check "B: peer dom-a, 1001/0 exported to it" eval \
	'cb peer add name dom-a url https://10.70.0.1:8787 key "$PUB_A" domain 1 &&
	 cb peer export cap 1001/0 peers dom-a'

wait_for() {	# TIMEOUT_MS CMD...: until CMD succeeds; prints the ms it took
	local t0 t1 lim=$1
	shift
	t0=$(date +%s%N)
	while :; do
		"$@" && { t1=$(date +%s%N); echo $(((t1 - t0) / 1000000)); return 0; }
		t1=$(date +%s%N)
		[ $(((t1 - t0) / 1000000)) -gt "$lim" ] && return 1
		sleep 0.02
	done
}
no_remote() { ! fed_has_remote; }
entry() { ka -j node show id $REMOTE 2>/dev/null | jq -c 'if type == "array" then .[0] // empty else empty end'; }
entry_gone() { [ -z "$(entry)" ]; }
entry_health() { [ "$(entry | jq -r .health)" = "$1" ]; }

ms=$(wait_for 10000 fed_has_remote)
tap_result "the watcher's plan of 1001/0 on router A names B's ingress (node $REMOTE) (${ms:-never} ms)" \
	"$([ -n "$ms" ]; echo $?)" \
	"$(ka plan show 2>&1 | head; tail -5 "$TMPD/watch.log"; tail -5 "$TMPD/idnd-a.log")"
got=$(ekeys fednodes/)
tap_result "etcd: fednodes/$REMOTE written by the leader (peer dom-b, up), bound to a lease" \
	"$(jq -e --arg k "${DOM}fednodes/$REMOTE" --arg a $INGRESS_B 'length == 1 and .[0].key == $k and
		.[0].lease != "0" and (.[0].value | fromjson | .peer == "dom-b" and .addr4 == $a and
		.health == "up" and .domain == 1)' <<<"$got" >/dev/null; echo $?)" "$got"
got=$(entry)
tap_result "router A's entry $REMOTE (from the watcher): B's ingress $INGRESS_B, up, WAN, domain 1" \
	"$([ -n "$got" ] && jq -e --arg a $INGRESS_B '(.addr4 == $a) and .health == "up" and
		.domain == 1 and (.wan == true)' <<<"$got" >/dev/null; echo $?)" \
	"$got $(grep 'peer entry' "$TMPD/watch.log")"

BODY='{"model":"chat-8b","prompt":"Where am I served?","max_tokens":4}'
ka receipt show >/dev/null 2>&1
out=$(in_ns $cli curl -s -m 10 -d "$BODY" "http://$VIP:$PORT/v1/completions")
node=$(jq -r '.id | split("-")[2]' <<<"$out" 2>/dev/null)
rc=$(ka receipt show 2>&1)
tap_result "a request to $VIP in A is served by B's node 2 through the etcd-fed router (domain path 0>1)" \
	"$([ "$node" = 2 ] && grep -q "node $REMOTE " <<<"$rc" &&
	   grep -q 'domain-path 0>1 via wan' <<<"$rc"; echo $?)" "$out / $rc"

usage() { ca -j peer usage 2>/dev/null | jq -c '.[] | select(.peer == "dom-b")'; }
for _ in $(seq 50); do
	u=$(usage)
	[ "$(jq -r .requests <<<"$u")" -ge 1 ] 2>/dev/null && break
	sleep 0.1
done
tap_result "usage for settlement: the watcher's record (router rta1) in A's leader: requests, tokens, bytes" \
	"$([ -n "$u" ] && jq -e '.requests == 1 and .tokens > 0 and .bytes > 0 and
		(.routers | length == 1) and .routers[0].router == "rta1" and
		.routers[0].requests == 1' <<<"$u" >/dev/null; echo $?)" "$u $(ekeys rta1/ /idn/usage/0/)"
got=$(ekeys rta1/ /idn/usage/0/)
tap_result "etcd: /idn/usage/0/rta1/dom-b (outside the watched prefix); the entry's charge was turned into the count (charged-tokens 0)" \
	"$(jq -e 'length == 1 and .[0].key == "/idn/usage/0/rta1/dom-b"' <<<"$got" >/dev/null &&
	   [ "$(entry | jq .charged_tokens)" = 0 ]; echo $?)" "$got $(entry)"
REQ0=$(jq -r .requests <<<"$u") TOK0=$(jq -r .tokens <<<"$u")

ka receipt show >/dev/null 2>&1
out=$(in_ns $cli curl -s -m 5 -d "$BODY" "http://$VIP_HOME:$PORT/v1/completions" 2>&1)
st=$?
got=$(fed_plans_a | jq -c '[.[] | select(.cap == "1001/0" and (.policy | type == "object" and
	.scope == "home"))]')
tap_result "a request under policy scope home is refused (curl $st), its class's plan has no remote candidate" \
	"$([ $st != 0 ] && [ -z "$out" ] && jq -e --argjson n $REMOTE 'all(.[]; [.candidates[]? |
		select(.node == $n)] | length == 0)' <<<"$got" >/dev/null; echo $?)" "$out / $got"

# values the watcher must not install: refused, counted, said; it goes on
r0=$(grep -c 'WATCH: refused' "$TMPD/watch.log")
eput fednodes/4094 '{"id":4094,"peer":'
eput fednodes/17 '{"id":17,"peer":"dom-x","addr4":"10.79.0.9","domain":2,"trust":0,"health":"up","net_us":1,"load":0}'
eput fednodes/4094 '{"id":4094,"peer":"dom-x","addr4":"10.79.0.9","domain":99,"trust":0,"health":"up","net_us":1,"load":0}'
eput fednodes/4094 '{"id":4093,"peer":"dom-x","addr4":"10.79.0.9","domain":2,"trust":0,"health":"up","net_us":1,"load":0}'
eput fednodes/4094 '{"id":4094,"peer":"dom-x","addr4":"0.0.0.0","domain":2,"trust":0,"health":"up","net_us":1,"load":0,"extra":1}'
eput nodes/4093 '{"id":4093,"addr4":"10.79.0.9","region":1,"resources":{"mem_gb":8}}'
for _ in $(seq 50); do
	[ $(($(grep -c 'WATCH: refused' "$TMPD/watch.log") - r0)) -ge 6 ] && break
	sleep 0.1
done
ref=$(grep 'WATCH: refused' "$TMPD/watch.log" | tail -n 6)
tap_result "6 bad values refused with their reasons (JSON, id range, field range, id mismatch, unknown field, nodes/ in the peers' range)" \
	"$([ "$(wc -l <<<"$ref")" = 6 ] && grep -q 'fednodes/4094.*not a JSON object' <<<"$ref" &&
	   grep -q 'fednodes/17.*not a federation peer' <<<"$ref" &&
	   grep -q 'field "domain": an integer 0..31' <<<"$ref" &&
	   grep -q 'value names node 4093, the key node 4094' <<<"$ref" &&
	   grep -q 'unknown field "extra"' <<<"$ref" &&
	   grep -q 'nodes/4093.*federation peers' <<<"$ref" && grep -q 'values refused since start' <<<"$ref"
	   echo $?)" "$ref"
tap_result "the watcher runs on; nodes 4093, 4094 and 17 are not in the router's table" \
	"$(kill -0 "$WATCH_PID" && ! ka node show id 4094 >/dev/null 2>&1 &&
	   ! ka node show id 4093 >/dev/null 2>&1 && ! ka node show id 17 >/dev/null 2>&1; echo $?)" \
	"$(ka node show 2>&1)"
edel fednodes/4094
edel fednodes/17
edel nodes/4093
tap_result "B's entry and remote candidate unchanged" "$(entry_health up && fed_has_remote; echo $?)"

# B withdraws the capability: gone from the etcd-fed router's plans. Timed
# from B's log line (unexport handled) to the watcher's of the generation
# applied (same clock).
ts_ms() { date -d "$1" +%s%3N; }
times=()
for round in 1 2 3; do
	wait_for 5000 fed_has_remote >/dev/null || { tap_fail "round $round: remote back"; break; }
	cb peer unexport cap 1001/0 >/dev/null || { tap_fail "unexport"; break; }
	if wait_for 5000 no_remote >/dev/null; then
		tb=$(grep 'no longer exported' "$TMPD/idnd-b.log" | tail -n 1 | awk '{print $1}')
		tw=$(awk -v t="$tb" '$1 >= t && /WATCH: generation .* applied/ {print $1; exit}' \
			"$TMPD/watch.log")
		ms=
		[ -n "$tb" ] && [ -n "$tw" ] && ms=$(( $(ts_ms "$tw") - $(ts_ms "$tb") ))
		times+=("${ms:-9999}")
		tap_result "round $round: B withdraws 1001/0 ($tb), the watcher's plans without it ($tw): ${ms:-?} ms (<= 1000)" \
			"$([ -n "$ms" ] && [ "$ms" -le 1000 ]; echo $?)"
	else
		tap_fail "round $round: B withdrew 1001/0, still in the watcher's plans after 5 s"
	fi
	cb peer export cap 1001/0 peers dom-a >/dev/null
done
if [ ${#times[@]} -gt 0 ]; then
	med=$(printf '%s\n' "${times[@]}" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
	log "federation_withdraw_to_etcd_router_ms $med"
	log "rounds: ${times[*]} ms (daemon logs; --fed-ms 100)"
fi

# the leader dies (kill -9): replica a2 takes over; it has no peer of its
# own (a follower refuses writes), so it takes them from etcd (fedconf/)
ca2() { in_ns $rta "$IDNCTL" -P "$PIN/a" -C https://10.61.1.1:8788 --ca "$P/ca.pem" \
	--cert "$P/admin.pem" --key "$P/admin.key" "$@"; }
a2_ready() {
	[ "$(ca2 -j controller status 2>/dev/null | jq .leader)" = true ] &&
	[ "$(ca2 -j peer show name dom-b 2>/dev/null | jq -r .state)" = fresh ] &&
	entry_health up && fed_has_remote
}
wait_for 5000 fed_has_remote >/dev/null
l0=$(ekeys fednodes/ | jq -r '.[0].lease')
got=$(ekeys fedconf/)
tap_result "etcd holds A's federation configuration (fedconf/: peer dom-b, seeded)" \
	"$(jq -e --arg d "$DOM" '[.[].key] | index($d + "fedconf/peers/dom-b") != null and
		index($d + "fedconf/seeded") != null' <<<"$got" >/dev/null; echo $?)" "$got"
kill -9 "$IDND_PID_a"
ms=$(wait_for 15000 a2_ready)
l1=$(ekeys fednodes/ | jq -r '.[0].lease')
tap_result "leader killed: a2 takes over with peer dom-b from etcd; B's entry (lease $l0 -> $l1) and candidate on the router (${ms:-never} ms)" \
	"$([ -n "$ms" ] && [ "$l1" != "$l0" ] && [ "$l1" != 0 ] && [ -n "$l1" ]; echo $?)" \
	"$(ca2 peer show 2>&1; tail -n 5 "$TMPD/idnd-a2.log")"
out=$(in_ns $cli curl -s -m 10 -d "$BODY" "http://$VIP:$PORT/v1/completions")
node=$(jq -r '.id | split("-")[2]' <<<"$out" 2>/dev/null)
tap_result "after the failover a request in A is served by B's node 2" "$([ "$node" = 2 ]; echo $?)" "$out"
ca() { ca2 "$@"; }	# the leader from here on
for _ in $(seq 50); do
	u=$(usage)
	[ "$(jq -r .requests <<<"$u")" -gt "$REQ0" ] 2>/dev/null && break
	sleep 0.1
done
REQ0=$(jq -r .requests <<<"$u") TOK0=$(jq -r .tokens <<<"$u")

# the peer removed while the watcher is away: its full sync removes the entry
wait_for 5000 fed_has_remote >/dev/null
kill "$WATCH_PID"
wait "$WATCH_PID" 2>/dev/null
ca peer del name dom-b >/dev/null
for _ in $(seq 50); do [ "$(ekeys fednodes/ | jq length)" = 0 ] && break; sleep 0.1; done
tap_result "peer dom-b removed in A: the leader deletes fednodes/$REMOTE; the stopped watcher's maps still have it" \
	"$([ "$(ekeys fednodes/ | jq length)" = 0 ] && entry_health up; echo $?)" "$(ekeys fednodes/)"
start_watch watch2.log
ms=$(wait_for 5000 entry_gone)
tap_result "the watcher's full sync at start removes the entry etcd no longer has (${ms:-never} ms), and the remote candidate" \
	"$([ -n "$ms" ] && no_remote && grep -q "peer entry $REMOTE removed" "$TMPD/watch2.log"; echo $?)" \
	"$(entry) $(tail -n 5 "$TMPD/watch2.log")"

ca peer add name dom-b url https://10.71.0.2:8787 key "$PUB_B" domain 1 net-us 20000 >/dev/null
ms=$(wait_for 5000 eval 'entry_health up && fed_has_remote')
tap_result "peer dom-b added again: entry and remote candidate back on router A (${ms:-never} ms)" \
	"$([ -n "$ms" ]; echo $?)"
out=$(in_ns $cli curl -s -m 10 -d "$BODY" "http://$VIP:$PORT/v1/completions")
node=$(jq -r '.id | split("-")[2]' <<<"$out" 2>/dev/null)
for _ in $(seq 50); do
	u=$(usage)
	[ "$(jq -r .requests <<<"$u")" -gt "$REQ0" ] 2>/dev/null && break
	sleep 0.1
done
tap_result "served by B again; the restarted watcher (same name) continues its usage record: requests $REQ0 -> $(jq -r .requests <<<"$u")" \
	"$([ "$node" = 2 ] && jq -e --argjson r "$REQ0" --argjson t "$TOK0" \
		'.requests == $r + 1 and .tokens > $t and (.routers | length == 1)' <<<"$u" >/dev/null
	   echo $?)" "$out / $u"

# timed from the kill to the watcher's log line of the entry down (the
# test's own polling, idnctl processes on a loaded host, only observes)
tk=$(date +%s%3N)
kill "$IDND_PID_b"
obs=$(wait_for 8000 eval 'entry_health down && no_remote')
td=$(grep "WATCH: peer entry $REMOTE (peer dom-b.* down" "$TMPD/watch2.log" | tail -n 1 | awk '{print $1}')
ms=
[ -n "$td" ] && ms=$(( $(ts_ms "$td") - tk ))
tap_result "B's idnd stops: router A's entry $REMOTE down ${ms:-never} ms later (stale bound 1000 ms + a tick; <= 3000), its plans lose B (observed ${obs:-never} ms)" \
	"$([ -n "$obs" ] && [ -n "$ms" ] && [ "$ms" -le 3000 ]; echo $?)" \
	"$(entry) $(ca peer show 2>&1) $(tail -n 4 "$TMPD/watch2.log")"
ca peer del name dom-b >/dev/null
ms=$(wait_for 5000 entry_gone)
tap_result "peer dom-b removed live: entry $REMOTE leaves router A's node table (${ms:-never} ms)" \
	"$([ -n "$ms" ]; echo $?)" "$(entry)"
tap_result "the watchers refused nothing of the leader's (only the 6 values written by hand)" \
	"$([ "$(cat "$TMPD/watch.log" "$TMPD/watch2.log" | grep -c 'WATCH: refused')" = 6 ]; echo $?)" \
	"$(grep 'WATCH: refused' "$TMPD/watch.log" "$TMPD/watch2.log")"
tap_done
