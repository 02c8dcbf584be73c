#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# fedtopo.sh - two IDN domains in namespaces, shared by
# selftests/net/test_fed.sh and tools/demo-fed.sh (source lib.sh first):
#
#   cli c0 10.60.0.2 --- a0 router A (rta) ra1 10.61.1.1 --- na 10.61.1.2 node A1 (nda)
#                        aw 10.70.0.1                         agent id 1
#                         |  the WAN
#   B's ingress (gwb) gw 10.70.0.2, lo 10.79.0.1: idn_decap, then routes the
#                         inner request on
#                        gr 10.71.0.1
#                         |
#                        rg 10.71.0.2 router B (rtb) rb1 10.62.1.1 --- nb 10.62.1.2 node B2 (ndb)
#                                                                     agent id 2
#
# Routers: XDP dataplane on their ingress (a0, rg), outer source 10.30.0.1 /
# 10.31.0.1. Nodes: idn_decap, VIPs 10.99.0.1 and 10.99.0.3 on lo, idn-agent
# with its engine emulator on :8000. idnd A and idnd B on 0.0.0.0:8787 in the
# routers (mutual TLS; federation: names dom-a / dom-b, keys, ingress).
#
#   fed_ns                  namespaces (cli rta nda gwb rtb ndb), forwarding
#   fed_net                 links, addresses, routes, neighbours
#   fed_dirs                bpffs in $PIN, $P for certificates (call directly:
#                           not in a subshell, nor fed_ns or fed_keys)
#   fed_dp                  dataplanes (routers, nodes, B's ingress)
#   fed_pki                 CA and certificates in $P; fed_keys: domain keys
#   fed_idnd a|b            start that domain's idnd (IDND_PID_a/_b)
#   fed_agent ID NS CTL NET_US   start an agent
#   ka/kb ARGS              idnctl on router A/B's maps
#   ca/cb ARGS              idnctl to idnd A/B as admin
#   apost ca|cb PATH JSON   POST as admin, prints the status
# Sets: cli rta nda gwb rtb ndb PIN P PUB_A PUB_B

VIP=10.99.0.1		# capability 1001/0, default policy
VIP_HOME=10.99.0.3	# the same capability, policy scope home
PORT=8000
INGRESS_B=10.79.0.1
LABEL=256256		# 1001/0
REMOTE=4095		# A's node entry of its first peer (IDN_MAX_NODES - 1)
CAP='{"class":1001,"name":"chat-8b","tier":1,"latency_us":600,"resources":{"mem_gb":8}}'

_fsc() { in_ns "$1" sysctl -qw "${@:2}" >/dev/null; }
fed_ns() {
	local ns
	setup_ns cli rta nda gwb rtb ndb || return 1
	for ns in $rta $gwb $rtb $nda $ndb $cli; do
		_fsc "$ns" net.ipv4.ip_forward=1 net.ipv4.conf.all.rp_filter=0 \
			net.ipv4.conf.default.rp_filter=0 net.ipv4.conf.all.accept_local=1 \
			net.ipv4.conf.default.accept_local=1
	done
}
_flink() {	# NS1 DEV1 ADDR1 NS2 DEV2 ADDR2 (/24)
	veth_pair "$1" "$2" "$4" "$5" mtu 1600 || return 1
	ip -n "$1" addr add "$3/24" dev "$2" && ip -n "$4" addr add "$6/24" dev "$5"
}
_fneigh() {	# NS DEV ADDR PEER_NS PEER_DEV: bpf_fib_lookup needs the neighbour
	ip -n "$1" neigh replace "$3" lladdr "$(mac_of "$4" "$5")" dev "$2" nud permanent
}
fed_net() {
	local ns
	_flink $cli c0 10.60.0.2 $rta a0 10.60.0.1 &&
	_flink $rta ra1 10.61.1.1 $nda na 10.61.1.2 &&
	_flink $rta aw 10.70.0.1 $gwb gw 10.70.0.2 &&
	_flink $gwb gr 10.71.0.1 $rtb rg 10.71.0.2 &&
	_flink $rtb rb1 10.62.1.1 $ndb nb 10.62.1.2 || return 1
	in_ns $cli ethtool -K c0 tx off >/dev/null 2>&1
	ip -n $cli route add default via 10.60.0.1
	ip -n $rta addr add 10.30.0.1/32 dev lo
	ip -n $rta route add default via 10.70.0.2
	ip -n $nda route add default via 10.61.1.1
	ip -n $gwb addr add $INGRESS_B/32 dev lo
	ip -n $gwb route add default via 10.70.0.1
	ip -n $gwb route add 10.62.0.0/16 via 10.71.0.2
	ip -n $gwb route add 10.31.0.1/32 via 10.71.0.2
	ip -n $gwb route add $VIP/32 via 10.71.0.2
	ip -n $rtb addr add 10.31.0.1/32 dev lo
	ip -n $rtb route add default via 10.71.0.1
	ip -n $ndb route add default via 10.62.1.1
	for ns in $nda $ndb; do
		ip -n $ns addr add $VIP/32 dev lo
		ip -n $ns addr add $VIP_HOME/32 dev lo
	done
	_fneigh $rta a0 10.60.0.2 $cli c0 && _fneigh $rta ra1 10.61.1.2 $nda na &&
	_fneigh $rta aw 10.70.0.2 $gwb gw && _fneigh $rtb rb1 10.62.1.2 $ndb nb &&
	_fneigh $rtb rg 10.71.0.1 $gwb gr
}

ka() { in_ns $rta "$IDNCTL" -P "$PIN/a" "$@"; }
kb() { in_ns $rtb "$IDNCTL" -P "$PIN/b" "$@"; }
_fxpass() {	# XDP_PASS on a veth peer (frames redirected to it are taken only then)
	local i
	# TC_BPF_MNT: ip's own pins in our bpffs, not in the first bpffs it finds
	# mounted (another test's chroot may hold one)
	for i in 1 2 3; do	# ip's bpffs set-up in a fresh mount namespace can race
		TC_BPF_MNT=$PIN ip -n "$1" link set dev "$2" xdpdrv obj "$BUILD/bpf/idn_pass.bpf.o" sec xdp &&
			return 0
		sleep 0.2
	done
	return 1
}
# pins and certificates' directory (not in a subshell: sets PIN, P, cleanups)
fed_dirs() {
	PIN=$TMPD/bpf
	P=$TMPD/pki
	mkdir -p "$P"
	make_bpffs "$PIN" || return 1
	mkdir -p "$PIN/a" "$PIN/b" "$PIN/na" "$PIN/nb" "$PIN/gw"
	on_cleanup "ka dp detach dev a0; kb dp detach dev rg"
}
# the dataplane: XDP on each router's ingress, decapsulation on the nodes
# and on B's ingress (the inner request goes on to router B)
fed_dp() {
	ka dp attach dev a0 mode xdp && ka dp set src4 10.30.0.1 receipt-sample 1 &&
	kb dp attach dev rg mode xdp && kb dp set src4 10.31.0.1 || return 1
	_fxpass $cli c0 && _fxpass $nda na && _fxpass $ndb nb && _fxpass $gwb gw || return 1
	in_ns $nda "$IDNCTL" -P "$PIN/na" dp decap attach dev na node 1 &&
	in_ns $ndb "$IDNCTL" -P "$PIN/nb" dp decap attach dev nb node 2 &&
	in_ns $gwb "$IDNCTL" -P "$PIN/gw" dp decap attach dev gw node 0
}

# one CA; each idnd's peer certificate (OU peer, CN its domain's name) is
# its client certificate to the other domain's idnd
fed_pki() {
	mk_ca "$P" && mk_cert "$P" admin admin admin &&
	mk_cert "$P" idnd-a controller idnd-a IP:10.61.1.1 IP:10.70.0.1 &&
	mk_cert "$P" idnd-b controller idnd-b IP:10.62.1.1 IP:10.71.0.2 &&
	mk_cert "$P" peer-a peer dom-a && mk_cert "$P" peer-b peer dom-b &&
	mk_cert "$P" peer-x peer dom-x && mk_cert "$P" router router router &&
	mk_cert "$P" node-1 node node-1 IP:10.61.1.2 && mk_cert "$P" node-2 node node-2 IP:10.62.1.2
}
fed_keys() {	# each domain's Ed25519 key (and dom-x's, a stranger's)
	(umask 077 && "$IDNCTL" cap keygen "$TMPD/a.key" >"$TMPD/a.pub" &&
		"$IDNCTL" cap keygen "$TMPD/b.key" >"$TMPD/b.pub" &&
		"$IDNCTL" cap keygen "$TMPD/x.key" >"$TMPD/x.pub") || return 1
	PUB_A=$(cat "$TMPD/a.pub") PUB_B=$(cat "$TMPD/b.pub")
}

fed_idnd() {	# a|b
	local ns=$rta pin=$PIN/a name=dom-a ing=10.70.0.1
	[ "$1" = b ] && ns=$rtb pin=$PIN/b name=dom-b ing=$INGRESS_B
	bg_ns $ns "$TMPD/idnd-$1.log" "$IDND" -d "$TMPD/idnd-$1.db" -l 0.0.0.0 -P "$pin" \
		-t 1500 --enrol open --ca "$P/ca.pem" --cert "$P/idnd-$1.pem" --key "$P/idnd-$1.key" \
		--fed-name $name --fed-key "$TMPD/$1.key" --fed-ingress $ing --fed-ms 100 \
		--fed-stale-ms 1000 --fed-cert "$P/peer-$1.pem" --fed-cert-key "$P/peer-$1.key" -v
	eval "IDND_PID_$1=$BG_PID"
}
ca() { in_ns $rta "$IDNCTL" -P "$PIN/a" -C https://10.61.1.1:8787 --ca "$P/ca.pem" \
	--cert "$P/admin.pem" --key "$P/admin.key" "$@"; }
cb() { in_ns $rtb "$IDNCTL" -P "$PIN/b" -C https://10.62.1.1:8787 --ca "$P/ca.pem" \
	--cert "$P/admin.pem" --key "$P/admin.key" "$@"; }
fed_up() {	# ca|cb: that idnd answers
	for _ in $(seq 100); do $1 controller status >/dev/null 2>&1 && return 0; sleep 0.1; done
	return 1
}

fed_agent() {	# ID NS CONTROLLER_ADDR NET_US
	bg_ns "$2" "$TMPD/agent$1.log" "$AGENT" --node-id "$1" --addr4 "10.6$1.1.2" --region 1 \
		--net-us "$4" --controller "https://$3:8787" --hb-ms 200 --tls-ca "$P/ca.pem" \
		--tls-cert "$P/node-$1.pem" --tls-key "$P/node-$1.key" --listen "0.0.0.0:$PORT" \
		--mgmt-listen "10.6$1.1.2:9000" --model chat-8b --speed 1 --key "$TMPD/node$1.key"
}
fed_registered() {	# ca|cb ID: the node is up in that idnd's registry
	for _ in $(seq 100); do
		[ "$($1 -j node list 2>/dev/null | jq -r --argjson i "$2" \
			'.[] | select(.id == $i) | .state')" = up ] && return 0
		sleep 0.1
	done
	return 1
}
apost() {	# ca|cb PATH JSON: POST as admin, prints the HTTP status
	local ns=$rta u=https://10.61.1.1:8787
	[ "$1" = cb ] && ns=$rtb u=https://10.62.1.1:8787
	in_ns $ns curl -s -m 5 --cacert "$P/ca.pem" --cert "$P/admin.pem" --key "$P/admin.key" \
		-o /dev/null -w '%{http_code}' -d "$3" "$u$2"
}
# 1001/0 in both registries, placed on node 1 in A and node 2 in B
fed_caps() {
	[[ "$(apost ca /v1/caps "$CAP")" == 20? ]] && [[ "$(apost cb /v1/caps "$CAP")" == 20? ]] &&
	[[ "$(apost cb /v1/demand "{\"cap\":$LABEL,\"region\":1,\"rps\":50}")" == 20? ]] &&
	[[ "$(apost ca /v1/demand "{\"cap\":$LABEL,\"region\":1,\"rps\":50}")" == 20? ]] &&
	cb placement solve >/dev/null && ca placement solve >/dev/null &&
	[ "$(cb -j placement show | jq -c '[.[] | select(.cap == 256256) | .node]')" = "[2]" ] &&
	[ "$(ca -j placement show | jq -c '[.[] | select(.cap == 256256) | .node]')" = "[1]" ]
}
# A's plans in the active slot, one JSON array
fed_plans_a() {
	ka -j plan show 2>/dev/null | jq -c '(.. | objects | select(has("active_slot")) |
		.active_slot) as $s | [.. | objects | select(has("candidates") and .slot == $s)]'
}
fed_has_remote() {	# the default plan of 1001/0 in A names B's entry (jq 1.6 -e: 0 on no input)
	[ "$(fed_plans_a | jq --argjson n $REMOTE \
		'[.[] | select(.cap == "1001/0" and .tier == "any" and .policy == "any") |
		  .candidates[]? | select(.node == $n)] | length > 0')" = true ]
}
