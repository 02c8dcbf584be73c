#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# test_activate.sh - (guest) demand-driven activation end to end: the
# steering program idn_tc on a router veth with hold on, idn.ko loaded,
# idnd -M running embedded (SQLite in /tmp) with a registered capability
# and a registered node but nothing placed. The client's first request is
# held, idnd hears the DEMAND_MISS, places the capability, installs its
# plan and sends RELEASE; the held SYN reaches the node and the
# connection is served. A capability nobody registered stays held until
# the module's timeout answers with a RST.
# /idn/narrate = 1 (run.sh IDN_KNARRATE=1, tools/demo-activation.sh):
# also print the story and idnd's log as "# " lines.
IP=/usr/sbin/ip
fail=0
t() { if [ "$1" = 0 ]; then echo "ok 0 - activate: $2"; else echo "not ok 0 - activate: $2"; fail=1; fi; }
NARRATE=$(cat /idn/narrate 2>/dev/null)
say() { [ "$NARRATE" != 1 ] || echo "# story: $*"; }
stat() { idnctl hold show | awk -v k="$1" '/^counters / { for (i = 2; i < NF; i += 2) if ($i == k) print $(i + 1) }'; }
P=/sys/fs/bpf/idn
NP=/sys/fs/bpf/idnactnode
VIP=10.9.0.1
API=http://127.0.0.1:8787
DB=/tmp/idnd-act.db
LOG=/tmp/idnd-act.log
api() {	# api METHOD PATH [BODY]
	if [ -n "${3:-}" ]; then
		curl -s -f -X "$1" -H 'Content-Type: application/json' -d "$3" "$API$2"
	else
		curl -s -f -X "$1" "$API$2"
	fi
}

if ! command -v idnd >/dev/null || ! command -v curl >/dev/null; then
	echo "ok 0 - activate: demand-driven activation # SKIP no idnd or curl in the guest image"
	exit 0
fi

$IP netns add kacli && $IP netns add kanode || { echo "not ok 0 - activate: netns"; exit 1; }
$IP link add ra0 type veth peer name c0 netns kacli
$IP link add ra1 type veth peer name n0 netns kanode
$IP addr add 10.1.0.1/24 dev ra0; $IP link set ra0 up
$IP addr add 10.2.0.1/24 dev ra1; $IP link set ra1 up
$IP -n kacli addr add 10.1.0.2/24 dev c0; $IP -n kacli link set c0 up
$IP -n kacli link set lo up; $IP -n kacli route add default via 10.1.0.1
$IP -n kanode addr add 10.2.0.2/24 dev n0; $IP -n kanode link set n0 up
$IP -n kanode link set lo up; $IP -n kanode route add default via 10.2.0.1
$IP -n kanode addr add $VIP/32 dev lo
echo 1 >/proc/sys/net/ipv4/ip_forward
$IP netns exec kacli ping -c1 -W2 10.2.0.2 >/dev/null
t $? "client reaches the node network through the router"

cleanup() {
	[ -z "${ipid:-}" ] || { kill "$ipid" 2>/dev/null; wait "$ipid" 2>/dev/null; }
	[ -z "${lpid:-}" ] || { kill "$lpid" 2>/dev/null; wait "$lpid" 2>/dev/null; }
	idnctl -P $P dp detach dev ra0 >/dev/null 2>&1
	$IP netns del kacli; $IP netns del kanode
	$IP link del ra0 2>/dev/null; $IP link del ra1 2>/dev/null
	rm -rf $P $NP $DB $DB-wal $DB-shm
}

if ! idnctl -P $P dp attach dev ra0 mode tc >/tmp/aatt 2>&1; then
	echo "ok 0 - activate: demand-driven activation # SKIP the steering program does not load on this kernel ($(tail -1 /tmp/aatt))"
	cleanup
	exit 0
fi
# cap 5/0 (label 0x500) on port 80 is registered with idnd; 6/0 on port 81 is not
idnctl -P $P dp set hold on src4 10.2.0.1 receipt-sample 1 >/dev/null &&
	idnctl -P $P vip add $VIP port 80 proto tcp cap 5/0 >/dev/null &&
	idnctl -P $P vip add $VIP port 81 proto tcp cap 6/0 >/dev/null &&
	idnctl -n kanode -P $NP dp decap attach dev n0 >/dev/null
t $? "idn_tc on the router with hold on, node decap, VIPs without plans"
$IP netns exec kanode kt_tcp listen 80 & lpid=$!
# the emulated guest is slow: the hold outlasts placement; idnd's own
# latency is what it reports ("ms after the miss")
idnctl hold set timeout-ms 20000 event-ms 0 >/dev/null

idnd --insecure --enrol open -v -M -P $P -d $DB -t 3600000 >$LOG 2>&1 & ipid=$!
i=0
until api GET /v1/status >/dev/null 2>&1 || [ $i -ge 100 ]; do sleep 0.1; i=$((i + 1)); done
api GET /v1/status | grep -q '"activation": *{ *"on": *true'
t $? "idnd -M up, activation on ($(grep HOLD: $LOG | head -1))"
api POST /v1/nodes '{"id": 1, "addr4": "10.2.0.2", "mem_gb": 16, "region": 0}' >/dev/null &&
	api POST /v1/caps '{"class": 5, "variant": 0, "name": "chat-cold", "latency_us": 100,
		"resources": {"mem_gb": 4}}' >/dev/null
t $? "node 1 and capability 5/0 registered"
pl=$(api GET /v1/placement | tr -d ' \n')
[ "$pl" = "[]" ] && ! idnctl -P $P plan show 2>/dev/null | grep -q 'cap 5/0'
t $? "nothing placed, no plan for 5/0 (placement $pl)"
say "cold: capability 5/0 registered, node 1 registered, nothing deployed"

# 1. the first request: held -> placed -> plan installed -> released -> served
say "client: connect $VIP:80 (capability 5/0)"
$IP netns exec kacli kt_tcp connect $VIP 80 15000 >/tmp/ac1; rc=$?
t $rc "first request served by node 1 after activation ($(cat /tmp/ac1))"
grep -q '\(^\| \)HOLD: miss cap 5/0: ' $LOG; t $? "idnd heard the DEMAND_MISS"
grep -q '\(^\| \)HOLD: cap 5/0: placed on node 1 ' $LOG; t $? "idnd placed 5/0 on node 1"
grep -q '\(^\| \)HOLD: cap 5/0: plan installed, generation ' $LOG; t $? "idnd installed the plan"
grep -q '\(^\| \)HOLD: cap 5/0: RELEASE sent, [1-9][0-9]* packet(s) re-injected' $LOG
t $? "idnd sent RELEASE ($(grep 'RELEASE sent' $LOG | head -1))"
say "idnd: $(grep '\(^\| \)HOLD: miss cap 5/0' $LOG | head -1)"
say "idnd: $(grep '\(^\| \)HOLD: cap 5/0: placed' $LOG | head -1)"
say "idnd: $(grep '\(^\| \)HOLD: cap 5/0: plan installed' $LOG | head -1)"
say "idnd: $(grep '\(^\| \)HOLD: cap 5/0: RELEASE sent' $LOG | head -1)"
say "client: $(cat /tmp/ac1) (time from the first SYN to the connection)"
[ "$(stat held)" -ge 1 ] && [ "$(stat released)" -ge 1 ] &&
	[ "$(awk '$1 == "holding" { print $2 }' /proc/net/idn)" = 0 ]
t $? "module: held and released, nothing left held ($(idnctl hold show | grep '^counters'))"
idnctl -P $P receipt show >/tmp/arc 2>&1
# one receipt per new-flow decision: the miss (held), then the released
# SYN's decision: steered to node 1
grep -q 'verdict miss-hold ' /tmp/arc && grep -q 'verdict new node 1 ' /tmp/arc
t $? "receipts: the miss held, the released SYN steered to node 1 ($(grep -oE 'verdict [a-z-]+( node [0-9]+)?' /tmp/arc | tr '\n' ';'))"
say "receipts: $(grep -oE 'verdict [a-z-]+( node [0-9]+)?' /tmp/arc | tr '\n' ';')"
api GET /v1/placement | tr -d ' \n' | grep -q '"cap":1280,"node":1'
t $? "placement: 5/0 on node 1 ($(api GET /v1/placement | tr -d ' \n'))"
# 2. steady state: the next request is steered at once, no hold
h0=$(stat held)
$IP netns exec kacli kt_tcp connect $VIP 80 5000 >/tmp/ac2; rc=$?
[ $rc = 0 ] && [ "$(stat held)" = "$h0" ]
t $? "second request served without a hold ($(cat /tmp/ac2))"
say "client: second request $(cat /tmp/ac2), no hold (plan in place)"
idnctl -P $P -j cap show cap 5/0 >/tmp/acs 2>&1
grep -q '"miss-hold": *[1-9]' /tmp/acs && grep -q '"new": *[1-9]' /tmp/acs
t $? "cap stats: a miss held, then new flows ($(tr -d ' \n' </tmp/acs | cut -c1-300))"

# 3. an unregistered capability: held, left to the timeout, RST
idnctl hold set timeout-ms 500 >/dev/null
say "client: connect $VIP:81 (capability 6/0, registered nowhere)"
$IP netns exec kacli kt_tcp connect $VIP 81 8000 >/tmp/ac3; rc=$?
ms=$(awk '{ print $2 }' /tmp/ac3)
[ $rc = 3 ] && [ "$ms" -ge 400 ]; t $? "unregistered capability: RST after the hold timeout ($(cat /tmp/ac3))"
sleep 0.2
grep -q '\(^\| \)HOLD: cap 6/0 is not registered' $LOG; t $? "idnd counted it and left it held"
api GET /v1/status | tr -d ' \n' | grep -q '"unregistered":[1-9]'
t $? "status: activation counters ($(api GET /v1/status | tr -d ' \n' | sed 's/.*"activation":\({[^}]*}\).*/\1/'))"
[ "$(stat rej_timeout)" -ge 1 ]; t $? "module: timeout rejection counted"
say "idnd: $(grep '\(^\| \)HOLD: cap 6/0' $LOG | head -1)"
say "client: $(cat /tmp/ac3)"

if [ "$NARRATE" = 1 ] || [ $fail != 0 ]; then
	sed 's/^/# idnd: /' $LOG
fi
cleanup
exit $fail
