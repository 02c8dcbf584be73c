#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# pair_rdma.sh ROLE - (guest) KV transfer over RDMA between two QEMU
# guests. selftests/kernel/run.sh boots the tier's kernel and initramfs
# twice more, "idnpair=a" and "idnpair=b" on the command line, each guest
# with one virtio-net NIC; the two NICs are one Ethernet link (a QEMU
# dgram netdev over two unix sockets on the host). Each guest brings up
# eth0 (MTU 9000) and rdma_rxe on it: two rxe devices, two kernels, the
# RoCE packets on the wire between them.
#
# b (10.78.0.2): idn-agent B, --kv-transport rdma, --kv-key (the key run.sh
#   put in the initramfs), its OpenAI listener on the link so that A can
#   ask it what it has cached; then takes A's orders on TCP port 7070
#   (busybox nc): "killmid" kills agent B (-9) once 256 RoCE packets of
#   A's next push arrived (rxe's rcvd_pkts counter), "restart" starts
#   it again, "done" ends. Checks its own side: the wrong key refused and logged,
#   the kill landed mid-transfer, the pushed bytes came as RoCE packets.
# a (10.78.0.1): idn-agent A with the same key pushes a cached 64-block
#   prefix (4 MiB) to B over POST /v1/kv/push: done, transport rdma, 4 queue
#   pairs on a new connection, path MTU 4096 and the GIDs of both guests,
#   rxe_pair's sent packets grew by at least bytes / 4096 (the bytes went
#   as RoCE, not over a TCP fallback), B serves the prefix from cache; a
#   second push reuses the pooled connection; an agent with another key is
#   refused (502, nothing committed on B); agent B killed mid-transfer: a
#   clean 502 in bounded time, A stays up, and once B is back the next
#   push succeeds on a new connection and B serves it from cache.
# Each guest prints its own TAP ("pair a: ..."/"pair b: ...").
ROLE=$1
IP=/usr/sbin/ip
AG=/idn/bin/idn-agent
KEY=/idn/pair.key
A=10.78.0.1
B=10.78.0.2
W=/tmp/kvp
DEV=rxe_pair
CNT=/sys/class/infiniband/$DEV/ports/1/hw_counters
ENG="--speed 50 --block-tokens 16 --kv-bytes-per-token 4096 --kv-capacity-tokens 16384"
fail=0
T0=$(cut -d' ' -f1 /proc/uptime)
t() {	# t STATUS NAME [DETAIL-FILE...]
	if [ "$1" = 0 ]; then
		echo "ok 0 - pair $ROLE: $2"
	else
		echo "not ok 0 - pair $ROLE: $2"
		shift 2
		for f in "$@"; do sed "s|^|# $(basename "$f"): |" "$f" | tail -40; done
		fail=1
	fi
}
skip() { echo "ok 0 - pair $ROLE: KV transfer between two guests # SKIP $*"; exit 0; }
pids=""
cleanup() {
	echo "# pair $ROLE: $(awk -v a=$T0 -v b="$(cut -d' ' -f1 /proc/uptime)" \
		'BEGIN { print b - a }') s in the guest"
	for p in $pids; do kill -9 "$p" 2>/dev/null; done
}
wait_for() {	# wait_for FILE PATTERN [SECONDS]
	n=0
	while ! grep -q "$2" "$1" 2>/dev/null; do
		n=$((n + 1))
		[ $n -gt $((${3:-30} * 10)) ] && return 1
		sleep 0.1
	done
}
up() { curl -s -o /dev/null -m 5 "http://$1/v1/agent/key"; }
wait_up() {	# wait_up HOST:PORT SECONDS
	e=$(($(cut -d. -f1 /proc/uptime) + $2))
	until up "$1"; do
		[ "$(cut -d. -f1 /proc/uptime)" -ge $e ] && return 1
		sleep 0.2
	done
}
cnt() { cat $CNT/$1 2>/dev/null || echo -1; }
ids() { seq -s, "$1" "$2"; }
req() {	# req HOST:PORT FIRST LAST
	curl -s -m 120 "http://$1/v1/completions" -H 'Content-Type: application/json' \
		-d "{\"model\":\"m\",\"hash_ids\":[$(ids "$2" "$3")],\"max_tokens\":4}"
}
cached() { sed -n 's/.*"cached_tokens": *\([0-9]*\).*/\1/p'; }
push() {	# push MGMT-PORT FIRST LAST OUT: POST /v1/kv/push to B, "body\ncode"
	curl -s -m 150 -w '\n%{http_code}\n' "http://127.0.0.1:$1/v1/kv/push" \
		-d "{\"peer\":\"$B:9101\",\"hash_ids\":[$(ids "$2" "$3")]}" >"$4"
	echo "# $(head -1 "$4")"
}
dmesg_clean() {
	if dmesg | grep -E 'WARNING:|BUG:|Oops|general protection|Call Trace:|refcount_t:' >$W/splat; then
		t 1 "dmesg: no WARN/BUG/Oops" $W/splat
	else
		t 0 "dmesg: no WARN/BUG/Oops"
	fi
}

case $ROLE in
a) ME=$A ;;
b) ME=$B ;;
*) echo "not ok 0 - pair: role '$ROLE' is neither a nor b"; exit 1 ;;
esac
echo "# pair $ROLE: $(uname -r), $(nproc) CPU, $ME"
[ -x $AG ] && command -v curl >/dev/null || skip "no idn-agent/curl in the initramfs"
[ -s /idn/rdma/order ] || skip "no rdma_rxe modules in the initramfs"
[ -s /idn/vnet/order ] || skip "no virtio-net modules in the initramfs"
command -v rdma >/dev/null || skip "no rdma tool (iproute2)"
[ -s $KEY ] || skip "no shared KV key in the initramfs"
mkdir -p $W
for m in $(cat /idn/rdma/order) $(cat /idn/vnet/order); do
	d=/idn/rdma
	[ -f $d/$m.ko ] || d=/idn/vnet
	insmod $d/$m.ko 2>$W/insmod.err ||
		grep -q "File exists" $W/insmod.err || echo "# insmod $m: $(cat $W/insmod.err)"
done
ulimit -l unlimited 2>/dev/null
trap cleanup EXIT

# ---- the link and rxe on it (both roles) ----------------------------------
n=0
while [ ! -e /sys/class/net/eth0 ] && [ $n -lt 100 ]; do sleep 0.1; n=$((n + 1)); done
$IP link set eth0 mtu 9000 && $IP addr add $ME/24 dev eth0 && $IP link set eth0 up
t $? "eth0 (virtio-net, the link to the other guest) up, MTU 9000, $ME"
rdma link add $DEV type rxe netdev eth0 2>$W/rdma.err ||
	{ t 1 "rdma link add $DEV on eth0" $W/rdma.err; exit 1; }
n=0
until rdma link show $DEV/1 2>/dev/null | grep -q "state ACTIVE"; do
	n=$((n + 1))
	[ $n -gt 100 ] && break
	sleep 0.1
done
rdma link show $DEV/1 | grep -q "state ACTIVE.*netdev eth0"
t $? "$DEV on eth0 ACTIVE ($(rdma link show $DEV/1 2>&1 | tr -s ' '))"

if [ "$ROLE" = b ]; then
	agent_b() {	# agent_b LOG: start agent B, wait until it answers
		$AG --insecure --node-id 2 --listen $B:8001 --mgmt-listen 127.0.0.1:9001 \
			--key $W/b.key --kv-listen $B:9101 --kv-key $KEY --kv-transport rdma $ENG \
			>"$1" 2>&1 &
		agent=$!
		pids="$pids $agent"
		wait_up $B:8001 60 && grep -q "kv transport policy rdma: rdma ($DEV active mtu 4096" "$1"
	}
	r0=$(cnt rcvd_pkts)
	agent_b $W/b.log
	t $? "agent B up, --kv-transport rdma on $DEV (active MTU 4096), KV listener $B:9101" \
		$W/b.log
	echo "# pair b: waiting for A's orders on :7070"
	# A's orders, one per connection, answered "ok" once written down (nc
	# -e: the connection stays open until the order is read); A ends with
	# "done" (also when it fails early); bounded in case A never comes
	cat >$W/order.sh <<-EOS
	#!/bin/sh
	read -r o
	echo "\$o" >$W/order
	echo ok
	EOS
	chmod +x $W/order.sh
	killed=0
	while :; do
		rm -f $W/order
		timeout 280 nc -l -p 7070 -e $W/order.sh
		o=$(cat $W/order 2>/dev/null)
		case $o in
		killmid)
			# the wrong key came before this: refused in the handshake, logged
			[ "$(grep -c "refused over rdma: authentication failed" $W/b.log)" = 1 ] &&
				grep -q "no memory region exposed, no rkey sent" $W/b.log
			t $? "agent B refused A's other agent (wrong key) once in the rdma_cm handshake, logged" \
				$W/b.log
			grep "refused over rdma" $W/b.log | head -1 | sed 's/^/# /'
			# A pushes 4 MiB next (1024 RoCE packets): kill agent B once
			# 256 of them arrived, while the writes are still landing
			read -r k0 <$CNT/rcvd_pkts
			k=$k0 n=0 e=$(($(cut -d. -f1 /proc/uptime) + 60))
			while [ "$k" -lt $((k0 + 256)) ]; do
				read -r k <$CNT/rcvd_pkts
				n=$((n + 1))
				[ $((n % 200)) = 0 ] && [ "$(cut -d. -f1 /proc/uptime)" -gt $e ] && break
			done
			kill -9 $agent
			read -r k1 <$CNT/rcvd_pkts
			wait $agent 2>/dev/null
			echo "# pair b: agent B killed $((k - k0)) packets into the push ($((k1 - k0)) by its death)"
			[ $((k - k0)) -ge 256 ] && [ $((k1 - k0)) -lt 1024 ]
			t $? "agent B killed -9 mid-transfer ($((k - k0)) of the 1024 packets in)"
			killed=1
			;;
		restart)
			# only now: a retry of the failed push must not find it
			agent_b $W/b2.log
			t $? "agent B restarted (an empty cache)" $W/b2.log
			;;
		done) break ;;
		*)
			t 1 "A's orders: got '$o' (A gone or timed out)"
			break
			;;
		esac
	done
	[ $killed = 1 ]
	t $? "A ordered agent B killed mid-transfer (the failure case ran)"
	r1=$(cnt rcvd_pkts)
	echo "# pair b: $DEV rcvd_pkts $r0 -> $r1"
	# 9 MiB arrived verified over RDMA (4 + 1 + 4 MiB): at least that many
	# 4 KiB packets
	[ "$r0" -ge 0 ] && [ $((r1 - r0)) -ge 2304 ]
	t $? "$DEV received the pushed bytes as RoCE packets ($((r1 - r0)) >= 2304)"
	dmesg_clean
	exit $fail
fi

# ---- role a: drives the test ------------------------------------------------
order() {	# order WORD: to B's order loop (retried until B says ok)
	n=0
	until [ "$(echo "$1" | nc -w 10 $B 7070 2>/dev/null)" = ok ]; do
		n=$((n + 1))
		[ $n -gt 50 ] && return 1
		sleep 0.2
	done
}
trap 'order "done" 2>/dev/null; cleanup' EXIT
n=0
until ping -c 1 -W 1 $B >/dev/null 2>&1; do
	n=$((n + 1))
	[ $n -gt 180 ] && break
	sleep 0.5
done
ping -c 1 -W 2 $B >/dev/null 2>&1
t $? "guest B ($B) answers over the link"
wait_up $B:8001 180
t $? "agent B up (its OpenAI listener answers over the link)"
head -c 32 /dev/urandom >$W/k2.key && chmod 600 $W/k2.key
$AG --insecure --node-id 1 --listen 127.0.0.1:8000 --key $W/a.key --kv-peers $B:9101 \
	--kv-key $KEY --kv-transport rdma $ENG >$W/a.log 2>&1 &
pids="$pids $!"
wait_up 127.0.0.1:8000 60 && grep -q "kv transport policy rdma: rdma ($DEV active mtu 4096" $W/a.log
t $? "agent A up, --kv-transport rdma on $DEV (active MTU 4096), --kv-peers $B:9101" $W/a.log

# 1. a cached 64-block prefix (4 MiB) A -> B: a new connection group
req 127.0.0.1:8000 1 64 >$W/ca.json
[ "$(cached <$W/ca.json)" = 0 ]
t $? "agent A computes a 1024-token prompt (nothing cached)" $W/ca.json
s0=$(cnt sent_pkts)
push 9000 1 64 $W/push1.json
s1=$(cnt sent_pkts)
[ "$(tail -1 $W/push1.json)" = 200 ] && grep -q '"state": *"done"' $W/push1.json &&
	grep -q '"transport": *"rdma"' $W/push1.json && grep -q '"bytes": *4194304' $W/push1.json &&
	grep -q "4 queue pairs, connection new" $W/push1.json
t $? "A pushes 64 KV blocks (4 MiB) to B over authenticated RDMA, 4 queue pairs, verified" \
	$W/push1.json
grep -q "path mtu 4096 (local 4096, peer 4096), qpn [^ ]* -> [^ ]*, gid ::ffff:$A -> ::ffff:$B" \
	$W/push1.json
t $? "handshake across the link: path MTU 4096 on both ends, GID ::ffff:$A -> ::ffff:$B" \
	$W/push1.json
echo "# pair a: $DEV sent_pkts $s0 -> $s1"
[ "$s0" -ge 0 ] && [ $((s1 - s0)) -ge 1024 ]
t $? "the bytes left as RoCE packets on $DEV ($((s1 - s0)) >= 4 MiB / 4096): not a TCP fallback"
c=$(req $B:8001 1 64 | cached)
[ -n "$c" ] && [ "$c" -ge 1008 ]
t $? "agent B serves the prefix from the blocks that came over the wire (cached $c of 1024)"

# 2. the next push finds the pooled connection group
req 127.0.0.1:8000 101 116 >/dev/null
push 9000 101 116 $W/push2.json
[ "$(tail -1 $W/push2.json)" = 200 ] && grep -q '"transport": *"rdma"' $W/push2.json &&
	grep -q '"bytes": *1048576' $W/push2.json &&
	grep -q "4 queue pairs, connection reused, stage granted ahead" $W/push2.json
t $? "a second push (16 blocks) reuses the pooled connection and writes at once into the stage B granted ahead" \
	$W/push2.json
c=$(req $B:8001 101 116 | cached)
[ -n "$c" ] && [ "$c" -ge 240 ]
t $? "agent B serves the second prefix from cache (cached $c of 256)"

# 3. another agent on A with a different key: refused, nothing committed on B
$AG --insecure --node-id 3 --listen 127.0.0.1:8002 --key $W/a2.key --kv-peers $B:9101 \
	--kv-key $W/k2.key --kv-transport rdma $ENG >$W/a2.log 2>&1 &
pids="$pids $!"
wait_up 127.0.0.1:8002 60
req 127.0.0.1:8002 201 216 >/dev/null
push 9002 201 216 $W/push3.json
# not retried: the same key would be refused again
[ "$(tail -1 $W/push3.json)" = 502 ] && grep -q '"state": *"failed"' $W/push3.json &&
	grep -q "refused our KV key over rdma" $W/push3.json &&
	grep -q '"attempts": *1' $W/push3.json
t $? "a push with the wrong KV key: 502, refused in the handshake, not retried" $W/push3.json
c=$(req $B:8001 201 216 | cached)
[ "$c" = 0 ]
t $? "nothing of it committed on B (cached ${c:-?} of 256)"

# 4. agent B killed (-9) mid-transfer, on the pooled connection: B kills
# it once 256 of the push's 1024 RoCE packets arrived, then restarts it
order killmid
sleep 0.3
p0=$(cut -d' ' -f1 /proc/uptime)
push 9000 1 64 $W/push4.json
p1=$(cut -d' ' -f1 /proc/uptime)
el=$(awk -v a=$p0 -v b=$p1 'BEGIN { printf "%.1f", b - a }')
# the agent retries a failed push once, whole: B's agent is still down
# then (restarted only on the next order), so that attempt is refused
[ "$(tail -1 $W/push4.json)" = 502 ] && grep -q '"state": *"failed"' $W/push4.json &&
	grep -q '"transport": *"rdma"' $W/push4.json && grep -q '"attempts": *2' $W/push4.json &&
	grep -q "rdma connect $B:9101: RDMA_CM_EVENT_REJECTED" $W/push4.json &&
	awk -v e=$el 'BEGIN { exit !(e < 60) }'
t $? "agent B killed mid-transfer: a clean 502 (rdma, no fallback; the retry refused) in $el s" \
	$W/push4.json
# 5. B back (an empty cache): the dead pooled connections are not reused
order restart
wait_up $B:8001 60
push 9000 1 64 $W/push5.json
[ "$(tail -1 $W/push5.json)" = 200 ] && grep -q '"transport": *"rdma"' $W/push5.json &&
	grep -q '"bytes": *4194304' $W/push5.json &&
	grep -q "4 queue pairs, connection new" $W/push5.json
t $? "after B's restart the push succeeds on a new connection" $W/push5.json
c=$(req $B:8001 1 64 | cached)
[ -n "$c" ] && [ "$c" -ge 1008 ]
t $? "the restarted agent B serves the prefix from cache (cached $c of 1024)"
up 127.0.0.1:8000
t $? "agent A still serves after the failed push" $W/a.log
dmesg_clean
exit $fail
