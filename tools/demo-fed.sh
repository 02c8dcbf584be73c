#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# demo-fed.sh - federation between two IDN domains on one machine
# (docs/federation.md): each domain with its own idnd (mutual TLS), router
# with the XDP dataplane and a node running idn-agent with its engine
# emulator; B's ingress decapsulates what A's router sends it
# (selftests/net/fedtopo.sh has the network). B exports capability
# 1001/0 to A, signed with its domain key; A imports it and serves a
# request in A with B's node; a request whose policy keeps it at home is
# served in A; a forged summary is refused; B withdraws the capability and
# A's requests are rerouted to its own node; with A's node gone, a request
# whose policy forbids leaving A is refused while the default policy's is
# served by B; B's idnd stops and A's plans lose it within the stale bound. About 30 s; removes everything it made.
#
# Usage: tools/demo-fed.sh (as root; after tools/deps.sh and make)
set -u

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT" || exit 1
if [ "$(id -u)" -ne 0 ]; then
	echo "demo-fed.sh: run as root (it creates network namespaces and attaches BPF)" >&2
	exit 1
fi

B=$'\e[1m' D=$'\e[2m' G=$'\e[32m' Y=$'\e[33m' N=$'\e[0m'
[ -t 1 ] || B='' D='' G='' Y='' N=''
step() { printf '\n%s== %s%s\n' "$B" "$*" "$N"; }
say()  { printf '%s\n' "$*"; }
show() {	# LABEL CMD...: the command as typed, then its output indented
	local label=$1
	shift
	printf '%s$ %s%s\n' "$D" "$label" "$N"
	"$@" 2>&1 | sed 's/^/    /'
	return "${PIPESTATUS[0]}"
}
die() { printf 'demo-fed.sh: %s\n' "$*" >&2; exit 1; }

O=${O:-build}
export O
NEED=("$O/idnctl" "$O/idnd" "$O/idn-agent" "$O/bpf/idn_steer.bpf.o" "$O/bpf/idn_node.bpf.o"
      "$O/bpf/idn_pass.bpf.o")
for f in "${NEED[@]}"; do
	[ -e "$f" ] || die "missing $f (make)"
done
for c in jq curl nsenter openssl ethtool; do
	command -v $c >/dev/null || die "needs $c (tools/deps.sh)"
done

# shellcheck source=../selftests/net/lib.sh
source "$ROOT/selftests/net/lib.sh"
# shellcheck source=../selftests/net/fedtopo.sh
source "$ROOT/selftests/net/fedtopo.sh"
IDND=$BUILD/idnd
AGENT=$BUILD/idn-agent
BODY='{"model":"chat-8b","prompt":"Which domain serves me?","max_tokens":4}'

make_tmpdir || die "no temp dir"
step "1. Two domains in network namespaces"
cat <<'PIC'
  client --> router A (XDP, idnd A "dom-a") ---------------> node A1 (agent, 200 ms away)
                 |  WAN: IPIP to B's ingress 10.79.0.1
                 v
             B's ingress (decap) --> router B (XDP, idnd B "dom-b") --> node B2 (agent)
PIC
fed_ns && fed_dirs && fed_net || die "network set-up failed"
fed_dp || die "dataplane attach failed"
fed_pki || die "certificates (openssl) failed"
fed_keys || die "idnctl cap keygen failed"
say "${D}\$ idnctl cap keygen a.key; idnctl cap keygen b.key   (each domain's Ed25519 key)${N}"
fed_idnd a
fed_idnd b
fed_up ca && fed_up cb || die "idnd did not start: $(tail -n 3 "$TMPD"/idnd-*.log)"
say "${D}\$ idnd ... --ca ca.pem --cert idnd-a.pem --key idnd-a.key \\"
say "      --fed-name dom-a --fed-key a.key --fed-ingress 10.70.0.1 \\"
say "      --fed-cert peer-a.pem --fed-cert-key peer-a.key   (certificate OU peer, CN dom-a; B alike)${N}"
fed_agent 1 "$nda" 10.61.1.1 200000
AGENT1_PID=$BG_PID
fed_agent 2 "$ndb" 10.62.1.1 40
fed_registered ca 1 && fed_registered cb 2 || die "agents did not register"
fed_caps || die "capability registration / placement failed"
ka vip add $VIP port $PORT proto tcp cap 1001/0 >/dev/null &&
	ka vip add $VIP_HOME port $PORT proto tcp cap 1001/0 policy scope home >/dev/null &&
	kb vip add $VIP port $PORT proto tcp cap 1001/0 >/dev/null || die "vip add failed"
[ "$(apost ca /v1/policies '{"name":"home","scope":"home"}')" = 201 ] || die "policy failed"
say "capability 1001/0 (chat-8b) registered and placed in both domains; VIPs in A:"
show "idnctl vip show   (router A)" ka vip show

step "2. Peering: each operator adds the other domain (URL, Ed25519 key, its number here)"
show "idnctl peer add name dom-b url https://10.71.0.2:8787 key \$(cat b.pub) domain 1   (in A)" \
	ca peer add name dom-b url https://10.71.0.2:8787 key "$PUB_B" domain 1
cb peer add name dom-a url https://10.70.0.1:8787 key "$PUB_A" domain 1 >/dev/null
say "${D}\$ idnctl peer add name dom-a url https://10.70.0.1:8787 key \$(cat a.pub) domain 1   (in B)${N}"
show "idnctl peer export cap 1001/0 peers dom-a   (in B: what may leave domain B)" \
	cb peer export cap 1001/0 peers dom-a
for _ in $(seq 100); do fed_has_remote && break; sleep 0.1; done
fed_has_remote || die "A did not import B's summary: $(ca peer show)"
show "idnctl peer exported   (in B: the summary dom-a gets, signed every 100 ms at most)" \
	cb peer exported
show "idnctl peer imported   (in A: verified with dom-b's key, every field checked)" \
	ca peer imported
show "idnctl plan show   (router A: node 4095 is B's ingress, a WAN candidate of domain 1)" \
	eval "ka plan show | grep -A3 'plan cap 1001/0 tier any policy any'"

request() {	# LABEL URL
	local out n
	ka receipt show >/dev/null 2>&1
	printf '\n%s$ curl -d ... %s/v1/completions   (%s)%s\n' "$D" "$2" "$1" "$N"
	out=$(in_ns "$cli" curl -sS -m 10 -d "$BODY" "$2/v1/completions" 2>&1)
	n=$(jq -r '.id | split("-")[2]' <<<"$out" 2>/dev/null)
	if [ -n "$n" ] && [ "$n" != null ]; then
		printf '    %sserved by node %s (%s)%s\n' "$G" "$n" \
			"$([ "$n" = 2 ] && echo "domain B" || echo "domain A")" "$N"
	else
		printf '    %srefused: %s%s\n' "$Y" "${out:-no answer}" "$N"
	fi
	ka receipt show 2>/dev/null | sed "s/^/    ${Y}receipt:${N} /; 2,\$s/${Y}receipt:${N} /         /"
}

step "3. Requests in A"
say "J: node A1 costs 200 ms of network; B's ingress 20 ms + the WAN price of the request's bytes."
request "default policy: may leave the domain" "http://$VIP:$PORT"
request "policy scope home: stays in domain A" "http://$VIP_HOME:$PORT"
show "idnctl peer usage   (in A: for settlement)" ca peer usage

step "4. A forged summary: refused, counted"
good=$(in_ns "$rtb" curl -s -m 5 --cacert "$P/ca.pem" --cert "$P/admin.pem" --key "$P/admin.key" \
	"https://10.62.1.1:8787/v1/fed/summary?peer=dom-a")
bad=$(jq -c '.payload |= sub("\"nodes\":1"; "\"nodes\":50")' <<<"$good")
say "${D}\$ curl --cert peer-b.pem ... -d '<B's summary with nodes 1 -> 50>' https://10.70.0.1:8787/v1/fed/summary${N}"
in_ns "$gwb" curl -s -m 5 --cacert "$P/ca.pem" --cert "$P/peer-b.pem" --key "$P/peer-b.key" \
	-w '  HTTP %{http_code}\n' --data-binary "$bad" https://10.70.0.1:8787/v1/fed/summary |
	sed 's/^/    /'
show "idnctl peer show name dom-b   (in A)" ca peer show name dom-b

step "5. B withdraws the capability: gone from A's plans, requests rerouted"
t0=$(date +%s%N)
cb peer unexport cap 1001/0
say "${D}\$ idnctl peer unexport cap 1001/0   (in B)${N}"
for _ in $(seq 100); do fed_has_remote || break; sleep 0.02; done
say "  A's plan for 1001/0 lost B's ingress $(( ($(date +%s%N) - t0) / 1000000 )) ms after the command:"
grep -h 'no longer exported\|withdrew\|plans recompiled' "$TMPD/idnd-b.log" "$TMPD/idnd-a.log" |
	sort | tail -n 3 | sed 's/^/    /'
request "after the withdrawal" "http://$VIP:$PORT"

step "6. B comes back; A's own node goes away: the policy decides"
cb peer export cap 1001/0 peers dom-a >/dev/null
for _ in $(seq 100); do fed_has_remote && break; sleep 0.1; done
say "  exported again; A's plan has B's ingress: $(fed_has_remote && echo yes || echo no)"
kill "$AGENT1_PID"
say "${D}\$ kill <agent of node A1>   (A's idnd takes it down after its heartbeat timeout, 1.5 s)${N}"
a1_gone() {	# node 1 in no plan of A's
	[ "$(fed_plans_a | jq '[.[] | .candidates[]? | select(.node == 1)] | length')" = 0 ]
}
for _ in $(seq 100); do a1_gone && break; sleep 0.1; done
say "  node A1 is in no plan of A's: $(a1_gone && echo yes || echo no)"
request "default policy: B's capability serves it" "http://$VIP:$PORT"
request "policy scope home: forbidden to leave A, nothing left in A: refused" "http://$VIP_HOME:$PORT"

step "7. B's idnd stops: A's entry goes down within the stale bound (1 s)"
t0=$(date +%s%N)
kill "$IDND_PID_b"
say "${D}\$ kill <idnd B>${N}"
for _ in $(seq 200); do fed_has_remote || break; sleep 0.02; done
say "  A's plan lost B's ingress $(( ($(date +%s%N) - t0) / 1000000 )) ms later"
show "idnctl peer show name dom-b   (in A)" ca peer show name dom-b
step "Done: removing the namespaces, mounts and processes"
