#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# topo.sh - the IDN test bed, shared by selftests/net/test_*.sh and
# tools/demo.sh (source lib.sh first):
#
#   client ns  c0 ---- r0  router ns  r1 ---- n1  node1 ns  (decap, httpd)
#   10.10.0.2     10.10.0.1        r2 ---- n2  node2 ns
#   fd00:10::2    fd00:10::1       rN ---- nN  nodeN ns
#                 lo 10.30.0.1 / fd00:30::1  (outer source of IPIP/IP6IP6)
#
#   router rI 10.20.I.1/24 fd00:20:I::1/64, node nI 10.20.I.2/24 fd00:20:I::2/64
#   every node: VIP4 10.99.0.1 and VIP6 fd00:99::1 on lo, the descriptor
#   prefix fd1d:4e00:0::/48 routed to lo, httpd.py on [::]:80 naming itself.
#
#   topo_setup N          namespaces, links, addresses, routes, servers
#   topo_dataplane        idn_xdp on r0, XDP_PASS on the peers, idn_decap on
#                         the nodes, idnctl dp set (src4/src6/prefix6)
#   topo_nodes            idnctl node add: ids 1..N, dual-stack (locators
#                         10.20.I.2 and fd00:20:I::2)
#   ctl ARGS...           idnctl in the router namespace with the private pins
#   cli CMD...            CMD in the client namespace
#   desc_addr6 CLASS VAR TIER POLICY TOKEN   IPv6 descriptor address
# Sets: NS_CLI NS_RTR NS_NODE[1..N] PIN TMPD

TOPO_VIP4=10.99.0.1
TOPO_VIP6=fd00:99::1
TOPO_PREFIX6=fd1d:4e00:0::
TOPO_SRC4=10.30.0.1
TOPO_SRC6=fd00:30::1
TOPO_CLI4=10.10.0.2
TOPO_CLI6=fd00:10::2
TOPO_MTU_NODE=1600
TOPO_PORT=80
NS_NODE=()
TOPO_N=0

# Router-side pins of the dataplane; each node keeps its own decap pins.
ctl() { in_ns "$NS_RTR" "$IDNCTL" -P "$PIN/rtr" "$@"; }
ctl_node() { local i=$1; shift; in_ns "${NS_NODE[$i]}" "$IDNCTL" -P "$PIN/node$i" "$@"; }
cli() { in_ns "$NS_CLI" "$@"; }

# desc_addr6 CLASS VARIANT TIER POLICY TOKEN -> descriptor address in TOPO_PREFIX6
desc_addr6() {
	local cls=$1 var=$2 tier=$3 pol=$4 tok=$5
	# 16-bit groups 3..7 after the /48: ver|tier cls_hi, cls_mid cls_lo,
	# var pol, tok_hi, tok_lo (canonical form: no leading zeros)
	printf 'fd1d:4e00:0:%x:%x:%x:%x:%x\n' \
		$((((0x10 | tier) << 8) | ((cls >> 16) & 0xff))) $((cls & 0xffff)) \
		$(((var << 8) | pol)) $(((tok >> 16) & 0xffff)) $((tok & 0xffff))
}

_sysctl() { in_ns "$1" sysctl -qw "${@:2}" >/dev/null; }

# topo_bed N [FILE...]: a test's start on this bed: FILE... (its binaries)
# besides idnctl and the BPF objects must exist; skipped where the machine
# has no network namespaces or bpffs; N nodes behind the router with the
# dataplane attached (detached at exit). Fails the test when that fails.
topo_bed() {
	local n=$1

	shift
	require_file "$@" "$IDNCTL" "$BUILD/bpf/idn_pass.bpf.o" "$BUILD/bpf/idn_steer.bpf.o" \
		"$BUILD/bpf/idn_node.bpf.o"
	probe_netns || skip_all "cannot create network namespaces"
	probe_bpffs || skip_all "cannot mount bpffs"
	topo_setup "$n" || { tap_fail "test bed setup"; tap_done; }
	topo_dataplane || { tap_fail "dataplane attach"; tap_done; }
	on_cleanup topo_dataplane_detach
}

topo_setup() {
	local n=$1 i ns mac
	TOPO_N=$n
	make_tmpdir || return 1
	PIN=$TMPD/bpf
	make_bpffs "$PIN" || return 1
	mkdir -p "$PIN/rtr"

	local cli="" rtr=""
	setup_ns cli rtr || return 1
	NS_CLI=$cli NS_RTR=$rtr

	# client <-> router
	veth_pair "$NS_CLI" c0 "$NS_RTR" r0 || return 1
	ip -n "$NS_CLI" addr add "$TOPO_CLI4/24" dev c0
	ip -n "$NS_CLI" addr add "$TOPO_CLI6/64" dev c0 nodad
	ip -n "$NS_RTR" addr add 10.10.0.1/24 dev r0
	ip -n "$NS_RTR" addr add fd00:10::1/64 dev r0 nodad
	ip -n "$NS_CLI" route add default via 10.10.0.1
	ip -n "$NS_CLI" -6 route add default via fd00:10::1
	# locally generated traffic has partial checksums XDP would lose
	in_ns "$NS_CLI" ethtool -K c0 tx off >/dev/null 2>&1

	ip -n "$NS_RTR" addr add "$TOPO_SRC4/32" dev lo
	ip -n "$NS_RTR" addr add "$TOPO_SRC6/128" dev lo nodad
	_sysctl "$NS_RTR" net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1 \
		net.ipv4.conf.all.accept_local=1 net.ipv4.conf.all.rp_filter=0 \
		net.ipv4.conf.default.rp_filter=0 net.ipv4.conf.default.accept_local=1

	for ((i = 1; i <= n; i++)); do
		setup_ns "node$i" || return 1
		eval "ns=\$node$i"
		NS_NODE[$i]=$ns
		veth_pair "$NS_RTR" "r$i" "$ns" "n$i" mtu $TOPO_MTU_NODE || return 1
		ip -n "$NS_RTR" addr add "10.20.$i.1/24" dev "r$i"
		ip -n "$NS_RTR" addr add "fd00:20:$i::1/64" dev "r$i" nodad
		ip -n "$ns" addr add "10.20.$i.2/24" dev "n$i"
		ip -n "$ns" addr add "fd00:20:$i::2/64" dev "n$i" nodad
		ip -n "$ns" route add default via "10.20.$i.1"
		ip -n "$ns" -6 route add default via "fd00:20:$i::1"
		ip -n "$ns" addr add "$TOPO_VIP4/32" dev lo
		ip -n "$ns" addr add "$TOPO_VIP6/128" dev lo nodad
		ip -n "$ns" -6 route add local "${TOPO_PREFIX6}/48" dev lo
		_sysctl "$ns" net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0 \
			net.ipv4.conf.all.accept_local=1 "net.ipv4.conf.n$i.rp_filter=0"
		# bpf_fib_lookup fills MACs only from existing neighbour entries
		mac=$(mac_of "$ns" "n$i")
		ip -n "$NS_RTR" neigh replace "10.20.$i.2" lladdr "$mac" dev "r$i" nud permanent
		ip -n "$NS_RTR" -6 neigh replace "fd00:20:$i::2" lladdr "$mac" dev "r$i" nud permanent
		_sysctl "$NS_RTR" "net.ipv4.conf.r$i.rp_filter=0" "net.ipv4.conf.r$i.accept_local=1"
		bg_ns "$ns" "$TMPD/httpd$i.log" python3 "$IDN_ROOT/selftests/net/httpd.py" "node$i" $TOPO_PORT
	done
	_sysctl "$NS_RTR" net.ipv4.conf.r0.rp_filter=0 net.ipv4.conf.r0.accept_local=1
	mac=$(mac_of "$NS_CLI" c0)
	ip -n "$NS_RTR" neigh replace "$TOPO_CLI4" lladdr "$mac" dev r0 nud permanent
	ip -n "$NS_RTR" -6 neigh replace "$TOPO_CLI6" lladdr "$mac" dev r0 nud permanent
	for ((i = 1; i <= n; i++)); do
		wait_listen "${NS_NODE[$i]}" $TOPO_PORT 15 || { log "httpd in node$i did not start"; return 1; }
	done
}

# Without the dataplane: the router forwards the VIPs to node1 (bring-up check).
topo_plain_routes() {
	ip -n "$NS_RTR" route replace "$TOPO_VIP4/32" via 10.20.1.2
	ip -n "$NS_RTR" -6 route replace "$TOPO_VIP6/128" via fd00:20:1::2
}

topo_plain_routes_del() {
	ip -n "$NS_RTR" route del "$TOPO_VIP4/32" 2>/dev/null
	ip -n "$NS_RTR" -6 route del "$TOPO_VIP6/128" 2>/dev/null
}

# XDP_PASS on a veth peer: frames XDP_TX'ed / redirected to it are taken only then
_xdp_pass() {
	ip -n "$1" link set dev "$2" xdpdrv obj "$BUILD/bpf/idn_pass.bpf.o" sec xdp
}

topo_dataplane() {
	local i
	ctl dp attach dev r0 mode xdp || return 1
	_xdp_pass "$NS_CLI" c0 || return 1
	for ((i = 1; i <= TOPO_N; i++)); do
		mkdir -p "$PIN/node$i"
		_xdp_pass "${NS_NODE[$i]}" "n$i" || return 1
		# node id: the TS cookie idn_stamp writes into replies
		ctl_node "$i" dp decap attach dev "n$i" node "$i" || return 1
	done
	ctl dp set src4 "$TOPO_SRC4" src6 "$TOPO_SRC6" prefix6 "${TOPO_PREFIX6}/48" || return 1
}

topo_dataplane_detach() {
	local i
	ctl dp detach dev r0 >/dev/null 2>&1
	for ((i = 1; i <= TOPO_N; i++)); do
		ctl_node "$i" dp decap detach dev "n$i" >/dev/null 2>&1
	done
}

# topo_nodes: ids 1..N, one per node, each with its IPv4 and IPv6 locator
topo_nodes() {
	local i
	for ((i = 1; i <= TOPO_N; i++)); do
		ctl node add id "$i" addr "10.20.$i.2" addr "fd00:20:$i::2" domain 0 trust 3 \
			health up || return 1
	done
}

# which node answered: curl ARGS... -> "nodeI" (or empty)
who() { cli curl -s -m 5 "$@" | awk '/^node /{print $2}'; }
