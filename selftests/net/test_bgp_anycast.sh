#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# test_bgp_anycast.sh - capability anycast over BGP (idnctl bgp,
# docs/federation.md): two routers A (AS 65001) and B (AS 65002), each with
# the XDP dataplane attached, a VIP for capability 7/0 and a plan for it,
# run BIRD and `idnctl bgp sync`, which announces the VIP while the plan
# has an up node; a client (AS 65000, BIRD with its kernel protocol) peers
# eBGP with both and prefers A (B prepends its AS once). When A's plan
# empties (its node drained, then the plan deleted) A withdraws the VIP and
# the client's kernel route moves to B; when A can serve again it moves
# back. BIRD runs with its default timers. The time from the plan emptying
# to the client's route via B is printed as "# bgp_withdraw_to_path_ms"
# (the median of the rounds; tools/bench/run.sh bgp). Skips (4) without
# BIRD (Debian bird2).
if [ -z "${IDN_TEST_UNSHARED:-}" ] && [ "$(id -u)" -eq 0 ]; then
	IDN_TEST_UNSHARED=1 exec unshare -m --propagation private "$0" "$@"
fi

source "$(dirname "$0")/lib.sh"

require_root
command -v bird >/dev/null && command -v birdc >/dev/null ||
	skip_all "BIRD not installed (Debian bird2)"
require_cmd ip jq
require_file "$IDNCTL" "$BUILD/bpf/idn_steer.bpf.o"
probe_netns || skip_all "cannot create network namespaces"
probe_bpffs || skip_all "cannot mount bpffs"

make_tmpdir || exit 1
# namespaces idnfed-{c,a,b}-XXXXXX (removed by name at cleanup)
mkns() {
	local name
	name="idnfed-$1-$(mktemp -u XXXXXX)"
	ip netns add "$name" || return 1
	_ns_list+=("$name")
	ip -n "$name" link set lo up
	eval "$2=$name"
}
mkns c NSC && mkns a NSA && mkns b NSB || { tap_fail "netns"; tap_done; }
veth_pair "$NSC" ca "$NSA" ac && veth_pair "$NSC" cb "$NSB" bc ||
	{ tap_fail "veths"; tap_done; }
ip -n "$NSC" addr add 10.210.1.1/24 dev ca
ip -n "$NSA" addr add 10.210.1.2/24 dev ac
ip -n "$NSC" addr add 10.210.2.1/24 dev cb
ip -n "$NSB" addr add 10.210.2.2/24 dev bc
VIP=10.250.0.1

# each router: its dataplane (own bpffs), a node, the VIP and a plan
for r in a b; do
	ns=$NSA; [ $r = b ] && ns=$NSB
	make_bpffs "$TMPD/bpf-$r" || { tap_fail "bpffs"; tap_done; }
	eval "P_$r=$TMPD/bpf-$r/idn"
done
ca() { "$IDNCTL" -n "$NSA" -P "$P_a" "$@"; }
cb() { "$IDNCTL" -n "$NSB" -P "$P_b" "$@"; }
setup_router() {	# IDNCTL-FUNCTION DEV
	$1 dp attach dev "$2" && $1 node add id 1 addr 10.211.0.10 health up &&
		$1 vip add $VIP port 8000 proto tcp cap 7/0 &&
		$1 plan add cap 7/0 cand node 1 exec-us 1000
}
check "router A: dataplane, node, VIP and plan of cap 7/0" setup_router ca ac
check "router B: dataplane, node, VIP and plan of cap 7/0" setup_router cb bc
got=$(ca bgp show)
tap_result "bgp show: A serves $VIP/32 ($got)" \
	"$(grep -q "^$VIP/32 cap 7/0" <<<"$got"; echo $?)" "$got"
got=$(ca -j bgp show)
tap_result "bgp show -j: [{prefix, cap}]" \
	"$(jq -e --arg p "$VIP/32" 'length == 1 and .[0].prefix == $p and .[0].cap == "7/0"' \
		<<<"$got" >/dev/null; echo $?)" "$got"

# BIRD: default timers; A and B export the generated static protocol only
router_conf() {	# NAME LOCAL_ADDR AS PEER_ADDR PREPEND
	local exp="accept;"
	[ -n "$5" ] && exp="bgp_path.prepend($5); accept;"
	cat <<EOF
router id $2;
log stderr all;
protocol device { }
include "$TMPD/$1-anycast.conf";
protocol bgp uplink {
	local $2 as $3;
	neighbor $4 as 65000;
	ipv4 { import none; export filter { if proto = "idn_anycast4" then { $exp } reject; }; };
}
EOF
}
: >"$TMPD/a-anycast.conf"
: >"$TMPD/b-anycast.conf"
router_conf a 10.210.1.2 65001 10.210.1.1 "" >"$TMPD/a.conf"
router_conf b 10.210.2.2 65002 10.210.2.1 65002 >"$TMPD/b.conf"
cat >"$TMPD/c.conf" <<EOF
router id 10.210.1.1;
log stderr all;
protocol device { }
protocol kernel { ipv4 { import none; export all; }; }
protocol bgp peer_a {
	local 10.210.1.1 as 65000;
	neighbor 10.210.1.2 as 65001;
	ipv4 { import all; export none; };
}
protocol bgp peer_b {
	local 10.210.2.1 as 65000;
	neighbor 10.210.2.2 as 65002;
	ipv4 { import all; export none; };
}
EOF
for r in a b c; do
	ns=$NSA; [ $r = b ] && ns=$NSB; [ $r = c ] && ns=$NSC
	bg_ns "$ns" "$TMPD/bird-$r.log" bird -f -c "$TMPD/$r.conf" -s "$TMPD/$r.ctl"
done
# the routers' announcers
bg_ns "$NSA" "$TMPD/sync-a.log" "$IDNCTL" -P "$P_a" bgp sync file "$TMPD/a-anycast.conf" \
	socket "$TMPD/a.ctl" interval 100
bg_ns "$NSB" "$TMPD/sync-b.log" "$IDNCTL" -P "$P_b" bgp sync file "$TMPD/b-anycast.conf" \
	socket "$TMPD/b.ctl" interval 100

# the client's route to the VIP: "a", "b" or "none"
via() {
	local r
	r=$(ip -n "$NSC" -4 route show "$VIP/32" 2>/dev/null)
	case $r in
	*"via 10.210.1.2"*) echo a ;;
	*"via 10.210.2.2"*) echo b ;;
	*) echo none ;;
	esac
}
# wait_via WANT SECONDS: 0 when the client's route is WANT in time
wait_via() {
	local end=$((SECONDS + $2))
	while [ $SECONDS -lt $end ]; do
		[ "$(via)" = "$1" ] && return 0
		sleep 0.05
	done
	return 1
}
wait_via a 30
tap_result "both sessions up: the client reaches $VIP via A" $? \
	"$(via); $(birdc -s "$TMPD/c.ctl" show protocols 2>&1 | tail -3)"
routes=$(birdc -s "$TMPD/c.ctl" show route "$VIP/32" all 2>&1)
tap_result "the client's BIRD holds both paths, A's preferred (B prepends)" \
	"$(grep -q 'BGP.as_path: 65001$' <<<"$routes" &&
		grep -q 'BGP.as_path: 65002 65002$' <<<"$routes" &&
		grep -q '^10.250.0.1/32 .*\[peer_a .*\] \*' <<<"$routes"; echo $?)" "$routes"
tap_result "generated file: $VIP/32 in idn_anycast4" \
	"$(grep -q "route $VIP/32 blackhole;" "$TMPD/a-anycast.conf"; echo $?)" \
	"$(cat "$TMPD/a-anycast.conf")"

# time from the plan emptying (the idnctl command) to the client's route via B
ms_to_b() {
	local t0 t1 i
	t0=$(date +%s%N)
	echo "$t0" >"$TMPD/t0"
	"$@" >/dev/null || return 1
	for i in $(seq 400); do
		[ "$(via)" = b ] && { t1=$(date +%s%N); echo $(((t1 - t0) / 1000000)); return 0; }
		sleep 0.01
	done
	return 1
}
times=()
round() {	# NAME EMPTY_CMD RESTORE_CMD
	local ms
	if ms=$(ms_to_b $2); then
		times+=("$ms")
		tap_ok "$1: A withdraws, the client's route moves to B in $ms ms"
		# of which: until A's announcer had BIRD reconfigured (its log's time)
		awk -v t0="$(cat "$TMPD/t0")" '/bgp: withdraw/ { w = $1 }
			END { if (w) printf "#   announcer done after %.0f ms\n", w * 1000 - t0 / 1e6 }' \
			"$TMPD/sync-a.log"
	else
		tap_fail "$1: the client's route did not move to B" "$(via); $(tail -3 "$TMPD/sync-a.log")"
	fi
	$3 >/dev/null
	wait_via a 10
	tap_result "$1 undone: A announces again, the client is back via A" $? "$(via)"
}
round "node drained" "ca node set id 1 health drain" "ca node set id 1 health up"
round "plan deleted" "ca plan del cap 7/0" "ca plan add cap 7/0 cand node 1 exec-us 1000"
round "node down" "ca node set id 1 health down" "ca node set id 1 health up"

got=$(grep -c "bgp: withdraw $VIP/32" "$TMPD/sync-a.log")
tap_result "A's announcer logged 3 withdrawals ($got)" "$([ "$got" = 3 ]; echo $?)" \
	"$(cat "$TMPD/sync-a.log")"
# B kept announcing throughout: it never withdrew
got=$(grep -c "bgp: withdraw" "$TMPD/sync-b.log")
tap_result "B never withdrew" "$([ "$got" = 0 ]; echo $?)" "$(cat "$TMPD/sync-b.log")"
# bad input: a bad protocol name is refused at once
out=$("$IDNCTL" -P "$P_a" bgp sync file "$TMPD/x.conf" name bad-name once 2>&1)
rc=$?
tap_result "bgp sync refuses a bad protocol name (exit $rc)" \
	"$([ $rc != 0 ] && grep -q "protocol name" <<<"$out" && [ ! -e "$TMPD/x.conf" ]; echo $?)" "$out"
if [ ${#times[@]} -gt 0 ]; then
	med=$(printf '%s\n' "${times[@]}" | sort -n | sed -n "$(((${#times[@]} + 1) / 2))p")
	log "bgp_withdraw_to_path_ms $med"
	log "rounds: ${times[*]} ms (announcer interval 100 ms, BIRD default timers)"
fi
tap_done
