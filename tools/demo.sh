#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# demo.sh - IDN's main job: build, bring up a small network in namespaces,
# attach the steering dataplane, describe capabilities and nodes with
# idnctl, send real HTTP requests and show where each one went and why
# (routing receipts), then clean everything up.
#
#   client --> router (XDP: idn_xdp) --IPIP / IP6IP6--> node1 node2 node3
#                                                      (TC: idn_decap, httpd)
#
# Usage: tools/demo.sh            (as root; after tools/deps.sh)
#        DEBUG_TESTENV=1 tools/demo.sh   opens a shell in the test bed at the end
# Everything it creates (namespaces, mounts, cgroups, processes) is removed
# on exit, also on Ctrl-C.
set -u

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT" || exit 1

if [ "$(id -u)" -ne 0 ]; then
	echo "demo.sh: run as root (it creates network namespaces and attaches BPF)" >&2
	exit 1
fi

B=$'\e[1m' D=$'\e[2m' G=$'\e[32m' Y=$'\e[33m' N=$'\e[0m'
[ -t 1 ] || B='' D='' G='' Y='' N=''
step() { printf '\n%s== %s%s\n' "$B" "$*" "$N"; }
say()  { printf '%s\n' "$*"; }
# show LABEL CMD...: print the command line as typed, then its output indented
show() {
	local label=$1
	shift
	printf '%s$ %s%s\n' "$D" "$label" "$N"
	"$@" 2>&1 | sed 's/^/    /'
	return "${PIPESTATUS[0]}"
}
die() { printf 'demo.sh: %s\n' "$*" >&2; exit 1; }

O=${O:-build}
export O
NEED=("$O/idnctl" "$O/idn-stamp" "$O/bpf/idn_steer.bpf.o" "$O/bpf/idn_node.bpf.o"
      "$O/bpf/idn_pass.bpf.o")
step "Building (make ${NEED[*]})"
make -s O="$O" "${NEED[@]}" >/dev/null 2>"/tmp/idn-demo-make.$$" || {
	tail -n 20 "/tmp/idn-demo-make.$$" >&2; rm -f "/tmp/idn-demo-make.$$"; die "make failed"; }
rm -f "/tmp/idn-demo-make.$$"
for f in "${NEED[@]}"; do
	[ -e "$f" ] || die "missing $f after make"
done
say "up to date: ${NEED[*]}"

# shellcheck source=../selftests/net/lib.sh
source "$ROOT/selftests/net/lib.sh"
# shellcheck source=../selftests/net/topo.sh
source "$ROOT/selftests/net/topo.sh"
on_cleanup 'printf "\n%s== Cleaned up: namespaces, pins, cgroup, servers removed%s\n" "$B" "$N"'

step "1. Test bed: 1 client, 1 router, 3 nodes (network namespaces, veth)"
topo_setup 3 || die "could not build the test bed"
cat <<EOF
    client $TOPO_CLI4 $TOPO_CLI6
      |
    router r0 (XDP steering)     outer source $TOPO_SRC4 / $TOPO_SRC6
      |--- node1 10.20.1.2 fd00:20:1::2
      |--- node2 10.20.2.2 fd00:20:2::2
      '--- node3 10.20.3.2 fd00:20:3::2
    every node serves HTTP on port 80 and answers "node <name>";
    VIPs $TOPO_VIP4 and $TOPO_VIP6, descriptor prefix ${TOPO_PREFIX6}/48
EOF

step "2. Dataplane"
show "idnctl dp attach dev r0 mode xdp            (router)" ctl dp attach dev r0 mode xdp ||
	die "dp attach failed"
on_cleanup topo_dataplane_detach
for i in 1 2 3; do
	mkdir -p "$PIN/node$i"
	_xdp_pass "${NS_NODE[$i]}" "n$i" || die "XDP_PASS on n$i"
	show "idnctl dp decap attach dev n$i                (node$i)" ctl_node $i dp decap attach dev "n$i" ||
		die "decap attach failed"
done
_xdp_pass "$NS_CLI" c0 || die "XDP_PASS on c0"
show "idnctl dp set src4 $TOPO_SRC4 src6 $TOPO_SRC6 prefix6 ${TOPO_PREFIX6}/48" \
	ctl dp set src4 "$TOPO_SRC4" src6 "$TOPO_SRC6" prefix6 "${TOPO_PREFIX6}/48" || die "dp set failed"

step "3. Nodes, a capability and its plan"
say "Capability 1001/0 (say, a chat model). Node2 executes it fastest, node1 is"
say "nearest; a node that lacks a session's state pays state-us 3000."
net=(0 40 120 200)
for i in 1 2 3; do
	ctl node add id $i addr "10.20.$i.2" addr "fd00:20:$i::2" domain 0 trust 3 health up \
		net-us "${net[$i]}" tok-ns 1000 >/dev/null || die "node add failed"
done
say "${D}\$ idnctl node add id 1 addr 10.20.1.2 addr fd00:20:1::2 domain 0 trust 3 health up net-us 40 tok-ns 1000   (and 2, 3)${N}"
say "  (one id per node, dual-stack: IPv4 requests go to its IPv4 locator, IPv6 ones to its IPv6 locator)"
show "idnctl vip add $TOPO_VIP4 port 80 proto tcp cap 1001/0 tier 1 receipt on" \
	ctl vip add $TOPO_VIP4 port 80 proto tcp cap 1001/0 tier 1 receipt on || die "vip add"
show "idnctl vip add $TOPO_VIP6 port 80 proto tcp cap 1001/0 tier 1 receipt on" \
	ctl vip add $TOPO_VIP6 port 80 proto tcp cap 1001/0 tier 1 receipt on || die "vip add"
ctl dp set receipt-sample 1 >/dev/null 2>&1	# receipts for descriptor-address flows too
PLAN=(cap 1001/0 tier any policy any
	cand node 1 exec-us 900 state-us 3000 cand node 2 exec-us 600 state-us 3000
	cand node 3 exec-us 800 state-us 3000)
show "idnctl plan add ${PLAN[*]}" ctl plan add "${PLAN[@]}" || die "plan add"
show "idnctl node show" ctl node show
show "idnctl plan show" ctl plan show

# request LABEL CMD...: drain old receipts, run the request, print who answered
# and the receipt the dataplane wrote for it
request() {
	local label=$1 out
	shift
	ctl receipt show >/dev/null 2>&1
	printf '\n%s$ %s%s\n' "$D" "$label" "$N"
	out=$("$@" 2>&1)
	printf '    %s%s%s\n' "$G" "${out:-<no answer>}" "$N"
	ctl receipt show 2>/dev/null | sed "s/^/    ${Y}receipt:${N} /; 2,\$s/${Y}receipt:${N} /         /"
}

DA42=$(desc_addr6 1001 0 1 0 42)
step "4. Requests: where each went, and why"
say "Each receipt lists the candidates with their cost J (us) or why they were"
say "rejected, the chosen node, the affinity node and the plan generation."
request "curl http://$TOPO_VIP4/            (VIP; token = hash of the client address)" \
	cli curl -s -m 5 "http://$TOPO_VIP4/"
request "curl http://[$TOPO_VIP6]/         (IPv6 VIP)" cli curl -s -m 5 "http://[$TOPO_VIP6]/"
request "curl -g http://[$DA42]/   (IPv6 descriptor address: cap 1001/0 tier 1 token 42)" \
	cli curl -s -m 5 -g "http://[$DA42]/"
request "idn-stamp run token 42 -- curl http://$TOPO_VIP4/   (TCP option on the SYN)" \
	cli "$IDNSTAMP" run cap 1001/0 tier 1 token 42 pin "$PIN" -- curl -s -m 5 "http://$TOPO_VIP4/"
say "  -> token 42 came over IPv6 first, then over IPv4: the same node, by affinity"
say "     (affinity is per node id, and a node is one id with both locators)."
N42=$(cli "$IDNSTAMP" run token 42 pin "$PIN" -- curl -s -m 5 "http://$TOPO_VIP4/" | awk '{print $2}')
ID42=${N42#node}

step "5. A new plan generation makes node1 the cheapest; token 42 keeps its node"
PLAN2=(cap 1001/0 tier any policy any
	cand node 1 exec-us 500 state-us 3000 cand node 2 exec-us 1500 state-us 3000
	cand node 3 exec-us 800 state-us 3000)
show "idnctl plan add ${PLAN2[*]}" ctl plan add "${PLAN2[@]}" || die "plan add"
request "idn-stamp run token 7 -- curl http://$TOPO_VIP4/    (a new session)" \
	cli "$IDNSTAMP" run cap 1001/0 tier 1 token 7 pin "$PIN" -- curl -s -m 5 "http://$TOPO_VIP4/"
request "idn-stamp run token 42 -- curl http://$TOPO_VIP4/   (the session of step 4)" \
	cli "$IDNSTAMP" run cap 1001/0 tier 1 token 42 pin "$PIN" -- curl -s -m 5 "http://$TOPO_VIP4/"
say "  -> new sessions follow the new plan; token 42 stays with the node that holds"
say "     its state (affinity: the others would pay state-us 3000 more)."

if [ -n "$ID42" ]; then
	step "6. $N42 gets busy: 2,000,000 prefill tokens queued"
	show "idnctl node set id $ID42 queue 64 pending-tokens 2000000" \
		ctl node set id "$ID42" queue 64 pending-tokens 2000000
	say "idnctl route get runs the dataplane's own selection code on the live maps:"
	show "idnctl route get vip $TOPO_VIP4 port 80 proto tcp token 42" \
		ctl route get vip "$TOPO_VIP4" port 80 proto tcp token 42
	request "idn-stamp run token 42 -- curl http://$TOPO_VIP4/   (new flow, same token)" \
		cli "$IDNSTAMP" run cap 1001/0 tier 1 token 42 pin "$PIN" -- curl -s -m 5 "http://$TOPO_VIP4/"
	say "  -> waiting behind the queue now costs more than rebuilding the state: it moved."
	ctl node set id "$ID42" queue 0 pending-tokens 0 >/dev/null
fi

step "7. node1 goes down: new flows avoid it"
declare -A before=()
for t in 101 102 103 104 105 106; do
	before[$t]=$(cli curl -s -m 5 -g "http://[$(desc_addr6 1001 0 1 0 $t)]/" | awk '{print $2}')
done
show "idnctl node set id 1 health down" ctl node set id 1 health down
for t in 201 202 203 204 205 206; do
	printf '    new session token %-4s -> %s\n' "$t" \
		"$(cli curl -s -m 5 -g "http://[$(desc_addr6 1001 0 1 0 $t)]/" | awk '{print $2}')"
done
say "  (before, sessions 101-106 went to: ${before[*]})"
ctl node set id 1 health up >/dev/null

step "8. Counters"
show "idnctl stats show" ctl stats show

debug_shell
exit 0
