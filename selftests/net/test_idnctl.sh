#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# test_idnctl.sh - idnctl against a private bpffs and a namespace of its
# own: dp attach/status/detach (XDP, TC, decap), vip/node/plan round trips
# in text and JSON, plan generations flipping the slot, route get, stats,
# receipts, hold/monitor without idn.ko, and usage errors (exit 2 with a
# message). Re-executes itself under `unshare -m` so the bpffs mount is
# invisible to everything else.

if [ -z "${IDN_TEST_UNSHARED:-}" ] && [ "$(id -u)" -eq 0 ]; then
	IDN_TEST_UNSHARED=1 exec unshare -m --propagation private "$0" "$@"
fi

source "$(dirname "$0")/lib.sh"

require_root
require_cmd ip jq nsenter bpftool
require_file "$IDNCTL" "$BUILD/bpf/idn_steer.bpf.o"
probe_netns || skip_all "cannot create network namespaces"
probe_bpffs || skip_all "cannot mount bpffs"

make_tmpdir || exit 1
make_bpffs "$TMPD/bpf" || skip_all "cannot mount bpffs"
P=$TMPD/bpf/idn
setup_ns NS || { tap_fail "netns"; tap_done; }
veth_pair "$NS" a0 "$NS" a1 || { tap_fail "veth"; tap_done; }
veth_pair "$NS" b0 "$NS" b1 || { tap_fail "veth"; tap_done; }

# c ARGS...: idnctl in the test's namespace (-n) with the private pins
c() { "$IDNCTL" -n "$NS" -P "$P" "$@"; }
# usage_err NAME PATTERN ARGS...: exit 2, message matching PATTERN on stderr
usage_err() {
	local name=$1 pat=$2 out rc
	shift 2
	out=$(c "$@" 2>&1 >/dev/null)
	rc=$?
	[ $rc -eq 2 ] && grep -qE -- "$pat" <<<"$out"
	tap_result "usage error: $name" $? "exit $rc, stderr: $out"
}
jgen() { c -j plan show | jq -r .generation; }
jslot() { c -j plan show | jq -r .active_slot; }

# ---- the man page's SYNOPSIS is the usage() text of every object
MAN=$IDN_ROOT/docs/idnctl.8
syn=$(sed -n '/^\.SH SYNOPSIS/,/^\.fi/p' "$MAN" | sed 's/\\-/-/g; s/^ *//')
man_ok=0
for obj in "" dp vip node plan cap route stats receipt hold monitor controller placement policy state publisher bgp peer; do
	while IFS= read -r line; do
		line=${line#Usage: }
		line=$(sed 's/^ *//' <<<"$line")
		[ -z "$line" ] && continue
		grep -qxF -- "$line" <<<"$syn" || { man_ok=1; log "not in idnctl.8: $line"; }
	done < <("$IDNCTL" $obj help | grep -E '^(Usage|where|       )')
done
tap_result "docs/idnctl.8 SYNOPSIS matches usage() of every object" $man_ok

# ---- before anything is loaded
out=$(c -j dp status) && [ "$(jq -r .loaded <<<"$out")" = false ]
tap_result "dp status before attach: loaded false (valid JSON)" $?
out=$(c vip show 2>&1); rc=$?
[ $rc -eq 1 ] && grep -q "not found" <<<"$out"
tap_result "map command without dataplane: exit 1 with a hint" $? "$rc $out"

# ---- usage errors
usage_err "unknown command" 'Command "frob" is unknown, try "idnctl vip help"\.' vip frob
usage_err "unknown object" 'Object "frob" is unknown' frob
usage_err "no prefix abbreviation" 'Command "sh" is unknown' vip sh
usage_err "bad port" 'invalid port "x"' vip add 10.0.0.1 port x proto tcp cap 1
usage_err "missing argument" '"cap" needs an argument' vip add 10.0.0.1 port 80 proto tcp cap
usage_err "bad capability" 'invalid capability' plan add cap 0
usage_err "node id range" 'invalid node id' node add id 5000 addr 10.0.0.1
usage_err "cand without exec-us" 'cand needs node ID and exec-us' plan add cap 1 cand node 1
usage_err "bad policy value" 'invalid privacy "secret"' vip add 10.0.0.1 port 80 proto tcp cap 1 policy privacy secret
out=$(c -j vip add 10.0.0.1 port 99999 proto tcp cap 1 2>/dev/null); rc=$?
[ $rc -eq 2 ] && jq -e '.error | test("invalid port")' >/dev/null <<<"$out"
tap_result "usage error in JSON mode: {\"error\": ...} on stdout" $? "$rc $out"
c vip help | grep -q "Usage: idnctl vip add"
tap_result "vip help exits 0 with the grammar" $?

# ---- dp attach (XDP), status, pins visible to bpftool
check "dp attach dev a0 (xdp)" c dp attach dev a0
out=$(c -j dp status)
out_status=$out
jq -e '.loaded and (.devices | length == 1) and .devices[0].dev == "a0" and
	.devices[0].mode == "xdp" and .devices[0].attached and .prog_xdp > 0' >/dev/null <<<"$out"
tap_result "dp status: a0 attached, prog pinned" $? "$out"
ip -n "$NS" link show dev a0 | grep -q xdp
tap_result "ip link shows XDP on a0" $?
bpftool map show pinned "$P/idn_vips" >/dev/null 2>&1
tap_result "maps pinned by name, visible to bpftool" $?
out=$(c dp attach dev a0 2>&1); rc=$?
[ $rc -eq 1 ] && grep -q "already has" <<<"$out"
tap_result "attach twice: exit 1 with a message" $? "$rc $out"
check "dp attach dev b0 mode tc" c dp attach dev b0 mode tc
c -j dp status | jq -e '[.devices[] | select(.dev == "b0" and .mode == "tc" and .attached)] | length == 1' >/dev/null
tap_result "dp status: b0 tc attached" $?
tc -n "$NS" filter show dev b0 ingress | grep -q bpf
tap_result "tc filter on b0 ingress" $?

# ---- dp set
check "dp set" c dp set hold on rst off telemetry on port 7777 src4 10.9.9.9 \
	src6 fd00::9 prefix6 2001:db8:1::/48 home-domain 3 receipt-sample 1 affinity-ttl 30
c -j dp status | jq -e '.config | .hold and (.rst | not) and .telemetry and .port == 7777 and
	.src4 == "10.9.9.9" and .src6 == "fd00::9" and .prefix6 == "2001:db8:1::/48" and
	.home_domain == 3 and .receipt_sample == 1 and .affinity_ttl == 30' >/dev/null
tap_result "dp set: every field reads back" $?
c -j dp status | jq -e '.config | .frag == "pass" and .ext6 == "pass" and .flood_rate == 20000' >/dev/null &&
	c dp set frag drop ext6 steer flood-rate off >/dev/null &&
	c -j dp status | jq -e '.config | .frag == "drop" and .ext6 == "steer" and .flood_rate == null' >/dev/null &&
	c dp status | grep -q "^frag drop ext6 steer flood-rate off" &&
	c dp set frag pass ext6 pass flood-rate default >/dev/null
tap_result "dp status: frag, ext6 and flood-rate read back (defaults, set, text)" $?
usage_err "dp set src4 with v6" 'src4 needs an IPv4' dp set src4 fd00::1
check "dp set: outer source pools" c dp set src4 10.9.9.0/24 src6 fd00::/112
c -j dp status | jq -e '.config | .src4 == "10.9.9.0" and .src4_flow_bits == 8 and
	.src6 == "fd00::" and .src6_flow_bits == 16' >/dev/null &&
	c dp status | grep -q "src4 10.9.9.0/24 src6 fd00::/112"
tap_result "dp status: the pools (JSON flow bits, text ADDR/LEN)" $?
usage_err "dp set src4 pool wider than /16" 'prefix length 16\.\.32' dp set src4 10.0.0.0/8
check "dp set: single outer sources again" c dp set src4 10.9.9.9 src6 fd00::9

# ---- vip round trip
check "vip add v4" c vip add 10.0.0.1 port 80 proto tcp cap 1001/2 tier 3 \
	policy trust 2 privacy tenant scope home budget 50 tenant 7 receipt on
check "vip add v6" c vip add fd00::1 port 443 proto udp cap 0x20
out=$(c -j vip show)
jq -e 'length == 2 and (.[] | select(.vip == "10.0.0.1") | .port == 80 and .proto == "tcp" and
	.cap == "1001/2" and .tier == 3 and .policy.trust == 2 and .policy.privacy == "tenant" and
	.policy.scope == "home" and .budget == 50 and .tenant == 7 and .receipt) and
	(.[] | select(.vip == "fd00::1") | .cap == "32/0" and .proto == "udp")' >/dev/null <<<"$out"
tap_result "vip show -j: both VIPs with every field" $? "$out"
c vip show 10.0.0.1 port 80 proto tcp | grep -q "vip 10.0.0.1 port 80 proto tcp cap 1001/2 tier 3 policy trust 2 privacy tenant scope home"
tap_result "vip show text, filtered" $?
out=$(c vip add 10.0.0.1 port 80 proto tcp cap 1 2>&1); rc=$?
[ $rc -eq 1 ] && grep -q exists <<<"$out"
tap_result "vip add of an existing VIP: exit 1" $?
check "vip del v6" c vip del fd00::1 port 443 proto udp
[ "$(c -j vip show | jq length)" = 1 ]
tap_result "vip del removed it" $?

# ---- dp replace: this build swapped in on every device, maps kept
before=$(c -j dp status)
out=$(c dp replace 2>&1)
tap_result "dp replace" $? "$out"
after=$(c -j dp status)
jq -e --argjson b "$before" '
	([.devices[] | select(.attached)] | length) == ($b.devices | length) and
	([.devices[] | .prog_id] - [$b.devices[] | .prog_id] | length) == ($b.devices | length) and
	.prog_xdp != $b.prog_xdp and .prog_tc != $b.prog_tc and
	(.build_xdp.stale | not) and .build_xdp.map_layout > 0' >/dev/null <<<"$after"
tap_result "dp replace: new programs attached on a0 and b0, pins updated, not stale" $? \
	"before $before after $after"
[ "$(c -j vip show | jq length)" = 1 ] && ip -n "$NS" link show dev a0 | grep -q xdp
tap_result "dp replace: the maps carried over (the VIP is still there)" $?
out=$(c dp replace dev a1 2>&1); rc=$?
[ $rc -eq 1 ] && grep -q "no steering program attached" <<<"$out"
tap_result "dp replace on a device without our program: exit 1" $? "$rc $out"

# ---- node round trip (dual-stack locators), next hop invalidation
usage_err "node add without addr" '"addr" missing' node add id 1 trust 3
usage_err "two IPv4 locators" 'two IPv4 addresses' node add id 1 addr 10.1.0.1 addr 10.1.0.9
usage_err "two IPv6 locators" 'two IPv6 addresses' node add id 1 addr fd00::1 addr fd00::2
check "node add 1 (dual-stack)" c node add id 1 addr 10.1.0.1 addr fd00:1::1 domain 0 trust 3 net-us 50
check "node add 2" c node add id 2 addr 10.1.0.2 domain 3 trust 3 net-us 10 confidential on
check "node add 3" c node add id 3 addr 10.1.0.3 domain 3 trust 1 net-us 1 health drain
c -j node show | jq -e 'length == 3 and .[1].id == 2 and .[1].confidential and .[1].domain == 3 and
	.[2].health == "drain" and .[0].health == "up"' >/dev/null
tap_result "node show -j" $?
c -j node show | jq -e '.[0].addr4 == "10.1.0.1" and .[0].addr6 == "fd00:1::1" and
	.[1].addr4 == "10.1.0.2" and (.[1] | has("addr6") | not) and (.[1] | has("addr") | not)' >/dev/null
tap_result "node show -j: addr4 and addr6, absent when unset" $?
c node show id 1 | grep -q "^node 1 addr 10.1.0.1 addr fd00:1::1 domain 0 "
tap_result "node show text: one addr per locator" $? "$(c node show id 1)"
check "node set (fields)" c node set id 1 queue 5 pending-tokens 1000 load 200 max-queue 64 tok-ns 7
c -j node show id 1 | jq -e '.[0] | .queue == 5 and .pending_tokens == 1000 and .load == 200 and
	.max_queue == 64 and .tok_ns == 7 and .addr4 == "10.1.0.1" and .addr6 == "fd00:1::1" and
	.net_us == 50' >/dev/null
tap_result "node set changes only the given fields" $?
# next hops: key IDN_NH_KEY(node, v6) = node * 2 + v6; node 1: 2 (IPv4), 3 (IPv6)
nh_put() { bpftool map update pinned "$P/idn_nexthops" key "$1" 0 0 0 \
	value 5 0 0 0 220 5 1 2 3 4 5 6 1 2 3 4 5 6 0 0 0 0 0 0 2>/dev/null; }
nh_zero() {
	bpftool -j map lookup pinned "$P/idn_nexthops" key "$1" 0 0 0 2>/dev/null |
		jq -e '[.value[]] | map(tonumber? // (ltrimstr("0x") | tonumber)) | add == 0' >/dev/null 2>&1
}
nh_put 2 && nh_put 3
c node set id 1 addr 10.1.0.11
nh_zero 2 && ! nh_zero 3 && [ "$(c -j node show id 1 | jq -r '.[0].addr4 + " " + .[0].addr6')" = "10.1.0.11 fd00:1::1" ]
tap_result "node set IPv4 addr: replaces it, zeroes only the IPv4 next hop" $?
nh_put 2
c node set id 1 addr fd00:1::11
nh_zero 3 && ! nh_zero 2 && [ "$(c -j node show id 1 | jq -r '.[0].addr4 + " " + .[0].addr6')" = "10.1.0.11 fd00:1::11" ]
tap_result "node set IPv6 addr: replaces it, zeroes only the IPv6 next hop" $?
nh_put 2 && nh_put 3
c node set id 1 addr 10.1.0.11 load 200
! nh_zero 2 && ! nh_zero 3
tap_result "node set with an unchanged addr keeps the next hops" $?
c node set id 3 addr fd00:1::3 && c -j node show id 3 | jq -e '.[0].addr4 == "10.1.0.3" and .[0].addr6 == "fd00:1::3"' >/dev/null
tap_result "node set addr of a new family adds a locator" $?
usage_err "node set: two IPv6 locators" 'two IPv6 addresses' node set id 1 addr fd00::1 addr fd00::2
out=$(c node set id 9 load 1 2>&1); [ $? -eq 1 ]
tap_result "node set of an absent node: exit 1" $?

# ---- references: a plan names nodes that exist, a fallback with a plan
out=$(c plan add cap 1001/2 cand node 9 exec-us 100 2>&1); rc=$?
[ $rc -eq 1 ] && grep -q 'plan add: candidate node 9 does not exist' <<<"$out"
tap_result "plan add with an unknown candidate node: exit 1, named" $? "$rc $out"
out=$(c plan add cap 1001/2 fallback 1001/1 cand node 1 exec-us 100 2>&1); rc=$?
[ $rc -eq 1 ] && grep -qF 'fallback capability 1001/1 (label 256257) has no plan' <<<"$out"
tap_result "plan add with a fallback that has no plan: exit 1, class/variant and label" $? \
	"$rc $out"
[ "$(c -j plan show | jq '.plans | length')" = 0 ]
tap_result "refused plans wrote nothing" $?
check "plan add (the fallback's plan)" c plan add cap 1001/1 cand node 3 exec-us 10

# ---- plan generations
g0=$(jgen); s0=$(jslot)
check "plan add" c plan add cap 1001/2 tier any policy any fallback 1001/1 slo-us 5000 shed-tier 2 \
	domains 0,3 weights 1,1,1,0.5,1,1 cand node 1 exec-us 100 state-us 10 \
	cand node 2 exec-us 100 variant 2 cand node 3 exec-us 10
g1=$(jgen); s1=$(jslot)
[ "$g1" = $((g0 + 1)) ] && [ "$s1" != "$s0" ]
tap_result "plan add: generation $g0 -> $g1, slot $s0 -> $s1" $?
c -j plan show | jq -e '.plans | map(select(.cap == "1001/2")) | length == 1 and .[0].tier == "any" and
	.[0].fallback == "1001/1" and .[0].slo_us == 5000 and .[0].shed_tier == 2 and
	.[0].domains == "0,3" and .[0].weights.state == 0.5 and (.[0].candidates | length == 3) and
	.[0].candidates[1].variant == 2 and .[0].generation == '"$g1"'' >/dev/null
tap_result "plan show -j: every field" $?
check "plan add (tier 3, policy)" c plan add cap 1001/2 tier 3 policy trust 2 cand node 2 exec-us 50 variant 2
g2=$(jgen); s2=$(jslot)
[ "$g2" = $((g1 + 1)) ] && [ "$s2" = "$s0" ] && [ "$(c -j plan show | jq '.plans | length')" = 3 ]
tap_result "second plan add: generation $g2, slot back to $s2, 3 plans" $?
bpftool map dump pinned "$P/idn_plans" >/dev/null 2>&1
tap_result "plans dumpable by bpftool" $?

# ---- route get (the dataplane's own selection code)
out=$(c -j route get vip 10.0.0.1 port 80 proto tcp from 192.168.1.1 policy trust 2)
jq -e '.verdict == "new" and (.candidates | length == 1) and .node == 2 and .flow.saddr == "192.168.1.1" and
	.locator == "10.1.0.2"' >/dev/null <<<"$out"
tap_result "route get: (cap, tier 3, policy) plan, node 2 at its IPv4 locator" $? "$out"
out=$(c -j route get vip 10.0.0.1 port 80 proto tcp policy trust 0)
jq -e '.verdict == "new" and .node == 2 and ([.candidates[].reject] == ["variant", "ok", "health"])' >/dev/null <<<"$out"
tap_result "route get: wildcard plan, variant and health rejects" $? "$out"
out=$(c -j route get vip 10.0.0.1 port 80 proto tcp tier 0 token 42)
jq -e '.verdict == "new" and .desc.token == "0x2a" and ([.candidates[] | select(.node == 3) | .reject] == ["health"])' >/dev/null <<<"$out"
tap_result "route get: any-tier plan, drain node rejected (health)" $? "$out"
c route get vip 10.0.0.1 port 80 proto tcp tier 0 token 42 | grep -qE "^verdict new node [0-9]+ generation $g2"
tap_result "route get text" $?
# prefix 2001:db8:1, version 1 tier 3, cap 1001/2, policy trust 2, token 42
out=$(c -j route get addr6 2001:db8:1:1300:3e9:202:0:2a)
# (the only candidate, node 2, has no IPv6 locator: rejected for family, hold on: miss-hold)
jq -e '.verdict == "miss-hold" and .candidates[0].reject == "family" and .desc.cap == "1001/2" and
	.desc.tier == 3 and .desc.policy.trust == 2 and .desc.token == "0x2a" and
	.source == ["token", "addr6"]' >/dev/null <<<"$out"
tap_result "route get addr6: descriptor decoded from the address" $? "$out"
[ "$(c -j route get vip 10.0.0.99 port 80 proto tcp | jq -r .verdict)" = pass ]
tap_result "route get: unknown VIP is pass" $?
[ "$(c -j route get vip 10.0.0.1 port 80 proto tcp cap 4242 | jq -r .verdict)" = miss-hold ]
tap_result "route get: no plan with hold on is miss-hold" $?

# ---- plan del
check "plan del" c plan del cap 1001/2 tier 3 policy trust 2
g3=$(jgen)
[ "$g3" = $((g2 + 1)) ] && [ "$(c -j plan show | jq '.plans | length')" = 2 ]
tap_result "plan del: generation $g3, 2 plans left" $?
out=$(c plan del cap 4242 2>&1); rc=$?
[ $rc -eq 1 ] && [ "$(jgen)" = "$g3" ] &&
	grep -qF 'no plan cap 4242/0 (label 1085952) tier any policy any' <<<"$out"
tap_result "plan del of an absent plan: exit 1, generation unchanged, class/variant and label" \
	$? "$out"

# ---- add refuses to overwrite; change and replace are explicit (iproute2)
P2="tier any policy any fallback 1001/1 slo-us 5000 shed-tier 2 domains 0,3 weights 1,1,1,0.5,1,1
	cand node 1 exec-us 100 state-us 10 cand node 2 exec-us 100 variant 2 cand node 3 exec-us 10"
plan_json() { c -j plan show cap 1001/2 | jq -c '.plans[] | select(.tier == "any") | del(.generation, .slot)'; }
before=$(plan_json)
out=$(c plan add cap 1001/2 tier any policy any cand node 2 exec-us 1 2>&1); rc=$?
[ $rc -eq 1 ] && [ "$(jgen)" = "$g3" ] && [ "$(plan_json)" = "$before" ] &&
	grep -qF 'plan add: plan cap 1001/2 (label 256258) tier any policy any exists (use "plan replace" or "plan change")' <<<"$out"
tap_result "plan add of an existing plan: exit 1, plan and generation unchanged" $? "$rc $out"
out=$(c plan change cap 1001/2 tier 5 cand node 2 exec-us 1 2>&1); rc=$?
[ $rc -eq 1 ] && [ "$(jgen)" = "$g3" ] && grep -q 'no plan cap 1001/2 (label 256258) tier 5' <<<"$out"
tap_result "plan change of an absent plan: exit 1, nothing written" $? "$rc $out"
check "plan change of an existing plan" c plan change cap 1001/2 tier any policy any cand node 2 exec-us 1
c -j plan show cap 1001/2 | jq -e '.plans[] | select(.tier == "any") | .candidates | length == 1 and .[0].node == 2 and .[0].exec_us == 1' >/dev/null
tap_result "plan change wrote the new plan" $?
check "plan replace of an absent plan creates it" c plan replace cap 1001/2 tier 5 cand node 1 exec-us 7
check "plan replace of an existing plan" c plan replace cap 1001/2 $P2
[ "$(plan_json)" = "$before" ]
tap_result "plan replace put the first plan back, field for field" $?
check "plan del (tier 5)" c plan del cap 1001/2 tier 5
out=$(c plan del cap 1001/1 2>&1); rc=$?
[ $rc -eq 1 ] && grep -qF 'falls back to capability 1001/1 (label 256257), its last plan' <<<"$out"
tap_result "plan del of a capability another plan falls back to: exit 1" $? "$rc $out"
out=$(c node add id 1 addr 10.1.0.1 2>&1); rc=$?
[ $rc -eq 1 ] && grep -q 'node add: node 1 exists (use node set or node change)' <<<"$out"
tap_result "node add of an existing node: exit 1" $? "$rc $out"
check "node change (set's iproute2 name)" c node change id 1 net-us 50

# ---- one real packet through the pinned program: receipt, stats, conns
# Ethernet + IPv4 + TCP SYN 192.168.1.1:1234 -> 10.0.0.1:80
python3 - "$TMPD/syn.bin" <<'PY'
import struct, sys
eth = b"\x02" * 6 + b"\x04" * 6 + b"\x08\x00"
tcp = struct.pack("!HHIIBBHHH", 1234, 80, 1, 0, 5 << 4, 0x02, 65535, 0, 0)
ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp), 1, 0, 64, 6, 0,
                 bytes([192, 168, 1, 1]), bytes([10, 0, 0, 1]))
s = sum(struct.unpack("!10H", ip))      # the header checksum (strict admission)
s = (s & 0xffff) + (s >> 16)
ip = ip[:10] + struct.pack("!H", ~((s & 0xffff) + (s >> 16)) & 0xffff) + ip[12:]
open(sys.argv[1], "wb").write(eth + ip + tcp)
PY
c stats reset
if bpftool prog run pinned "$P/prog_xdp" data_in "$TMPD/syn.bin" repeat 1 >/dev/null 2>&1; then
	out=$(c -j receipt show count 1 timeout 3)
	jq -e '.verdict == "new" and .node == 2 and .flow.saddr == "192.168.1.1" and
		.flow.dport == 80 and .desc.cap == "1001/2"' >/dev/null <<<"$out"
	tap_result "receipt show: the SYN's receipt (new, node 2)" $? "$out"
	c -j cap show cap 1001/2 | jq -e '.[0].verdicts.new == 1' >/dev/null
	tap_result "cap show: one new-flow decision counted" $?
	c -j dp status | jq -e '.maps.conns == 1 and .maps.affinity == 1' >/dev/null
	tap_result "dp status: conn and affinity entries counted" $?
	out=$(c -j stats show)
	jq -e '[.verdicts[].packets] | add == 1' >/dev/null <<<"$out"
	tap_result "stats show: the packet counted once" $? "$out"
	out=$(c stats prometheus)
	grep -q '^# TYPE idn_dp_packets_total counter$' <<<"$out" &&
		grep -q '^# HELP idn_dp_drops_total ' <<<"$out" &&
		grep -qx 'idn_dp_packets_total{verdict="new"} 1' <<<"$out" &&
		grep -qx 'idn_dp_cap_flows_total{cap="1001/2",verdict="new"} 1' <<<"$out" &&
		grep -qx 'idn_dp_node_flows_total{node="2"} 1' <<<"$out"
	tap_result "stats prometheus: HELP/TYPE, verdict, capability and node counters" $? "$out"
	if command -v promtool >/dev/null; then
		pt=$(promtool check metrics <<<"$out" 2>&1)
		tap_result "stats prometheus: lint-clean (promtool check metrics)" $? "$pt"
	else
		tap_skip "stats prometheus: lint-clean" "no promtool (Debian's prometheus package)"
	fi
	port=$((20000 + RANDOM % 20000))
	c stats serve listen 127.0.0.1:$port >/dev/null 2>&1 &
	spid=$!
	bg_pid $spid
	got=""
	for _ in $(seq 50); do
		got=$(nsenter --net="/run/netns/$NS" curl -s -m 2 "http://127.0.0.1:$port/metrics") && [ -n "$got" ] && break
		sleep 0.1
	done
	grep -qx 'idn_dp_packets_total{verdict="new"} 1' <<<"$got" &&
		[ "$(nsenter --net="/run/netns/$NS" curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/x")" = 404 ]
	tap_result "stats serve: GET /metrics answers the counters, other paths 404" $? "$got"
	kill $spid 2>/dev/null; wait $spid 2>/dev/null
else
	tap_skip "packet through prog_xdp" "bpftool prog run failed"
fi

# ---- stats, cap, receipts
c -j stats show | jq -e '(.verdicts | length == 13) and .verdicts[0].verdict == "pass" and
	(.drops | type == "array") and (.nodes | type == "array")' >/dev/null
tap_result "stats show -j" $?
check "stats reset" c stats reset
c -j cap show | jq -e '[.[].cap] | index("1001/2") != null and index("1001/1") != null' >/dev/null
tap_result "cap show: capabilities from VIPs and plans" $?
check "receipt show (empty ring) exits 0" c receipt show
check "monitor with timeout" c monitor receipts timeout 1

# ---- hold / monitor events (idn.ko; the kernel tier runs them against it):
# usage errors come before the module is asked
usage_err "hold set: out of range" 'invalid max-pkts "0"' hold set max-pkts 0
usage_err "hold release without a selector" 'needs "cap CAP" or "all"' hold release
usage_err "hold release: cap and all" 'one of "cap CAP" or "all"' hold release cap 5 all
usage_err "hold set: nothing" 'nothing to set' hold set
usage_err "monitor: unknown kind" 'unknown argument "frob"' monitor frob
if [ ! -d /sys/module/idn ]; then
	out=$(c -j hold show); rc=$?
	[ $rc -eq 1 ] && jq -e '.error | test("idn.ko is not loaded")' >/dev/null <<<"$out"
	tap_result "hold show without idn.ko: exit 1, JSON error" $? "$rc $out"
	out=$(c monitor events timeout 1 2>&1); rc=$?
	[ $rc -eq 1 ] && grep -q "idn.ko is not loaded" <<<"$out"
	tap_result "monitor events without idn.ko: exit 1" $? "$rc $out"
	out=$(c monitor all timeout 1 2>&1); rc=$?
	[ $rc -eq 0 ] && grep -q "receipts only" <<<"$out"
	tap_result "monitor all without idn.ko: receipts only, warned" $? "$rc $out"
fi

# ---- ownership: a node a plan names stays; idnd owns what it manages
out=$(c node del id 3 2>&1); rc=$?
[ $rc -eq 1 ] && grep -q 'node del: node 3 is a candidate of plan cap 1001/' <<<"$out"
tap_result "node del of a plan's candidate: exit 1, the plan named" $? "$rc $out"
nplans=$(c -j plan show | jq '.plans | length')
bg_ns "$NS" "$TMPD/idnd.log" "$BUILD/idnd" --insecure -d "$TMPD/idnd.db" -p 8799 -P "$P" -t 1000
IDND_PID=$BG_PID
ok=1
for _ in $(seq 100); do
	[ "$(c -j plan show | jq '.plans | length')" = 0 ] && { ok=0; break; }
	sleep 0.1
done
[ $ok -eq 0 ] && [ "$(grep -c 'is not in the registry: removed' "$TMPD/idnd.log")" = "$nplans" ] &&
	grep -qE 'warn +idnd: router .* plan cap 1001/2 \(label 256258\) tier any policy any is not in the registry: removed' "$TMPD/idnd.log" &&
	grep -q '"method":"TAKEOVER"' "$TMPD/idnd.db.audit"
tap_result "idnd takes the router over: the $nplans hand-made plans replaced, each logged, audited" \
	$? "$(tail -5 "$TMPD/idnd.log")"
for cmd in "plan add cap 1001/1 cand node 3 exec-us 10" "plan replace cap 1001/1 cand node 3 exec-us 10" \
	"plan del cap 1001/1" "node add id 5 addr 10.1.0.5" "node set id 1 load 5" "node del id 3"; do
	out=$(c $cmd 2>&1); rc=$?
	[ $rc -eq 1 ] && grep -q "refused: idnd manages the router at $P" <<<"$out"
	tap_result "while idnd manages the router: idnctl ${cmd% cap*} refused" $? "$rc $out"
done
[ "$(c -j node show | jq length)" = 3 ]
tap_result "refused node changes wrote nothing" $?
out=$(timeout 10 nsenter --net="/run/netns/$NS" "$BUILD/idnd" --insecure -d "$TMPD/idnd2.db" \
	-p 8798 -P "$P" 2>&1 </dev/null); rc=$?
[ $rc -eq 1 ] && grep -q 'another idnd manages this router' <<<"$out"
tap_result "a second idnd on the same router is refused (exit 1)" $? "$rc $out"
kill "$IDND_PID"; wait "$IDND_PID" 2>/dev/null
check "idnd gone: idnctl plan add accepted again" c plan add cap 1001/1 cand node 3 exec-us 10
check "plan del" c plan del cap 1001/1

# ---- node del, decap, detach
nh_put 6 && nh_put 7
check "node del" c node del id 3
[ "$(c -j node show | jq length)" = 2 ] && nh_zero 6 && nh_zero 7
tap_result "node del removed it and zeroed both of its next hops" $?
if [ -e "$BUILD/bpf/idn_node.bpf.o" ]; then
	check "dp decap attach dev a1" c dp decap attach dev a1
	c -j dp status | jq -e '[.devices[] | select(.dev == "a1" and .mode == "decap" and .attached)] | length == 1' >/dev/null
	tap_result "dp status: decap on a1" $?
	check "dp decap detach dev a1" c dp decap detach dev a1
else
	tap_skip "dp decap" "no build/bpf/idn_node.bpf.o"
fi
check "dp detach dev a0" c dp detach dev a0
check "dp detach dev b0" c dp detach dev b0
! ip -n "$NS" link show dev a0 | grep -q xdp && ! tc -n "$NS" filter show dev b0 ingress | grep -q bpf
tap_result "no XDP on a0, no filter on b0 after detach" $?
c -j dp status | jq -e '(.devices | length == 0) and .prog_xdp == null' >/dev/null
tap_result "dp status: no devices, programs unpinned" $?
out=$(c dp detach dev a0 2>&1); [ $? -eq 1 ]
tap_result "detach of a device with nothing attached: exit 1" $?

# ---- dataplane variants: a feature forced off is off in the loaded
# program (read back from its .rodata) and says why; a typo is refused
out=$(IDN_DP_DISABLE=meta c dp attach dev b0 mode tc 2>&1)
tap_result "IDN_DP_DISABLE=meta: dp attach mode tc" $? "$out"
out=$(c -j dp status)
jq -e '.prog_xdp == null and .prog_tc > 0 and (.features.meta.on | not) and
	(.features.meta.why | test("IDN_DP_DISABLE"))' >/dev/null <<<"$out"
tap_result "dp status: TC mode loaded only TC; meta off (IDN_DP_DISABLE at load)" $? "$out"
c dp status | grep -q "^features meta off (IDN_DP_DISABLE at load)"
tap_result "dp status text: the features line" $?
check "dp detach dev b0 (variant)" c dp detach dev b0
out=$(IDN_DP_DISABLE=mta c dp attach dev b0 mode tc 2>&1); rc=$?
[ $rc -eq 1 ] && grep -q 'unknown feature "mta"' <<<"$out"
tap_result "IDN_DP_DISABLE with an unknown feature: exit 1, named" $? "$rc $out"

tap_done
