#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# test_rdma.sh - (guest) KV transfer over real verbs on Soft-RoCE: rdma_rxe
# on one veth (MTU 9000), both endpoints on that one device (two rxe
# devices in one namespace cannot talk on 6.1). kt_kvx (the agent's kvxfer
# library) receives into a 4 MiB arena and sends 64 scattered KV blocks:
# bytes verified at the destination; the handshake's MTU/GID/QPN checked
# against each other and the device; a corrupted slice, a sender killed
# mid-transfer and a connection closed mid-transfer leave the destination
# untouched; policy rdma to a peer without RDMA fails, auto falls back to
# tcp and says so; a receiver with a KV key refuses a wrong key and no
# key in the rdma_cm handshake (logged, before any rkey) and takes the
# right one, whose later transfers reuse the pooled connections; two
# idn-agents with --kv-transport rdma and a shared --kv-key move a cached
# prefix (POST /v1/kv/push) and the receiver serves it from cache.
# SKIP (with the reason) when rxe cannot be set up.
IP=/usr/sbin/ip
K=/idn/bin/kt_kvx
A=10.77.0.1
SZ=4194304
BLK=65536
W=/tmp/kvr
fail=0
T0=$(cut -d' ' -f1 /proc/uptime)
t() {	# t STATUS NAME [DETAIL-FILE...]
	if [ "$1" = 0 ]; then
		echo "ok 0 - rdma: $2"
	else
		echo "not ok 0 - rdma: $2"
		shift 2
		for f in "$@"; do sed "s|^|# $(basename "$f"): |" "$f"; done
		fail=1
	fi
}
skip() { echo "ok 0 - rdma: KV transfer over Soft-RoCE # SKIP $*"; exit 0; }
pids=""
cleanup() {
	t1=$(cut -d' ' -f1 /proc/uptime)
	echo "# rdma: $(awk -v a=$T0 -v b=$t1 'BEGIN { print b - a }') s in the guest"
	for p in $pids; do kill -9 "$p" 2>/dev/null; done
	rdma link delete rxe_kv 2>/dev/null
	$IP link del kvr0 2>/dev/null
}
wait_for() {	# wait_for FILE PATTERN [SECONDS]: poll, don't sleep blindly
	n=0
	while ! grep -q "$2" "$1" 2>/dev/null; do
		n=$((n + 1))
		[ $n -gt $((${3:-30} * 10)) ] && return 1
		sleep 0.1
	done
}
field() { sed -n "s/.*$2=\([^ ]*\).*/\1/p" "$1" | tail -1; }

[ -x $K ] || skip "no kt_kvx (libibverbs-dev/librdmacm-dev missing on the host: tools/deps.sh)"
[ -s /idn/rdma/order ] || skip "no rdma_rxe modules in the initramfs"
command -v rdma >/dev/null || skip "no rdma tool (iproute2)"
mkdir -p $W
for m in $(cat /idn/rdma/order); do
	insmod /idn/rdma/$m.ko 2>$W/insmod.err ||
		grep -q "File exists" $W/insmod.err || echo "# insmod $m: $(cat $W/insmod.err)"
done
ulimit -l unlimited 2>/dev/null
trap cleanup EXIT
$IP link add kvr0 mtu 9000 type veth peer name kvr1 mtu 9000 || skip "no veth"
$IP addr add $A/24 dev kvr0
$IP link set kvr0 up && $IP link set kvr1 up
rdma link add rxe_kv type rxe netdev kvr0 2>$W/rdma.err ||
	skip "rdma link add rxe_kv failed: $(cat $W/rdma.err)"
n=0
until rdma link show rxe_kv/1 2>/dev/null | grep -q "state ACTIVE"; do
	n=$((n + 1))
	[ $n -gt 100 ] && skip "rxe_kv port 1 never became ACTIVE: $(rdma link show 2>&1)"
	sleep 0.1
done
echo "# $(rdma link show rxe_kv/1)"

# receiver: policy rdma, 9 receives expected (1 ok, 3 failed, 1 + 4 ok)
KT_POLICY=rdma $K recv $A:7471 $SZ 9 150 >$W/rx.log 2>&1 &
rxpid=$!
pids="$pids $rxpid"
wait_for $W/rx.log "rx listening" 30
t $? "receiver up (policy rdma, rdma_cm listener on $A:7471)" $W/rx.log
h0=$(field $W/rx.log hash)
grep -q "choice: policy rdma: rdma (rxe_kv active mtu 4096" $W/rx.log
t $? "policy rdma: the device and its active MTU are reported" $W/rx.log

# 1. a transfer: 64 blocks of 64 KiB, block i -> block 63-i
KT_POLICY=rdma $K send $A:7471 $SZ $BLK 1 >$W/tx1.log 2>&1
grep -q "tx state=done transport=rdma bytes=$SZ" $W/tx1.log
t $? "4 MiB in 64 scattered KV blocks over RDMA WRITE: done" $W/tx1.log
grep "tx state" $W/tx1.log | sed 's/^/# /'
wait_for $W/rx.log "rx ok=1 failed=0 rdma=1" 20
t $? "receiver: one verified RDMA receive" $W/rx.log
h1=$(field $W/rx.log hash)
[ -n "$h1" ] && [ "$h1" = "$(field $W/tx1.log expect)" ] && [ "$h1" != "$h0" ]
t $? "destination bytes are the source blocks, scattered as described (hash $h1)" \
	$W/tx1.log $W/rx.log

# handshake: "path mtu M (local L, peer P), qpn 0xA -> 0xB, gid G1 -> G2"
txr=$(grep "^tx rdma" $W/tx1.log)
rxr=$(grep "^rx rdma" $W/rx.log | tail -1)
echo "# sender:   $txr"
echo "# receiver: $rxr"
set -- $txr
tmtu=$5 tlq=${11} tpq=${13%,} tlg=${15} tpg=${17}
set -- $rxr
rmtu=$5 rlq=${11} rpq=${13%,} rlg=${15} rpg=${17}
[ "$tmtu" = 4096 ] && [ "$rmtu" = 4096 ] && echo "$txr" | grep -q "(local 4096, peer 4096)"
t $? "handshake: path MTU 4096 = min of both ends (netdev MTU 9000)"
[ -n "$tlq" ] && [ "$tlq" != 0x0 ] && [ "$tlq" = "$rpq" ] && [ "$tpq" = "$rlq" ] &&
	[ "$tlq" != "$tpq" ]
t $? "handshake: each end's QPN is the one the other end reports"
gid=::ffff:$A
[ "$tlg" = "$gid" ] && [ "$tpg" = "$gid" ] && [ "$rlg" = "$gid" ] && [ "$rpg" = "$gid" ] &&
	cat /sys/class/infiniband/rxe_kv/ports/1/gids/* 2>/dev/null |
	grep -q "0000:0000:0000:0000:0000:ffff:0a4d:0001"
t $? "handshake: GID ::ffff:$A on both ends, in rxe_kv's GID table"

# 2. a corrupted slice: rejected, nothing applied
KT_POLICY=rdma $K send $A:7471 $SZ $BLK 2 corrupt 5 >$W/tx2.log 2>&1
rc=$?
[ $rc = 1 ] && grep -q "tx state=failed transport=rdma" $W/tx2.log &&
	grep -q "rejected the transfer: Bad message" $W/tx2.log
t $? "corrupted slice: the sender is told the transfer was rejected" $W/tx2.log
wait_for $W/rx.log "rx ok=1 failed=1" 20 &&
	grep "rx ok=1 failed=1" $W/rx.log | grep -q "slice 5 checksum mismatch" &&
	[ "$(field $W/rx.log hash)" = "$h1" ]
t $? "corrupted slice: receiver says checksum mismatch, destination untouched" $W/rx.log

# 3. the sender killed mid-transfer (SIGKILL while slices are in flight)
na=$(grep -c "rx active" $W/rx.log)
KT_POLICY=rdma $K send $A:7471 $SZ $BLK 3 slow 0 150 >$W/tx3.log 2>&1 &
txpid=$!
pids="$pids $txpid"
# killed once the receiver holds the transfer (slices land every 150 ms)
n=0
until [ "$(grep -c "rx active" $W/rx.log)" -gt "$na" ] || [ $n -gt 300 ]; do
	sleep 0.1
	n=$((n + 1))
done
sleep 0.5
kill -9 $txpid 2>/dev/null
wait $txpid 2>/dev/null
wait_for $W/rx.log "rx ok=1 failed=2" 40 && [ "$(field $W/rx.log hash)" = "$h1" ]
t $? "sender killed mid-transfer: receive failed, destination untouched" $W/rx.log
grep "rx ok=1 failed=2" $W/rx.log | sed 's/^/# /'

# 4. the connection closed after 10 of 64 slices
KT_POLICY=rdma $K send $A:7471 $SZ $BLK 4 truncate 10 >$W/tx4.log 2>&1
[ $? = 1 ] && grep -q "closed after 10 of 64 slices" $W/tx4.log &&
	wait_for $W/rx.log "rx ok=1 failed=3" 40 && [ "$(field $W/rx.log hash)" = "$h1" ]
t $? "connection closed mid-transfer: receive failed, destination untouched" \
	$W/tx4.log $W/rx.log

# 5. policy auto with an RDMA device and an RDMA peer: rdma
KT_POLICY=auto $K send $A:7471 $SZ $BLK 5 >$W/tx5.log 2>&1
grep -q "choice: policy auto: rdma (rxe_kv" $W/tx5.log &&
	grep -q "tx state=done transport=rdma" $W/tx5.log &&
	wait_for $W/rx.log "rx ok=2 failed=3 rdma=2" 20 &&
	[ "$(field $W/rx.log hash)" = "$(field $W/tx5.log expect)" ]
t $? "policy auto, RDMA peer: rdma chosen and said, bytes verified" $W/tx5.log $W/rx.log

# 6. four transfers submitted at once: four connections, four stages
KT_PAR=4 KT_POLICY=rdma $K send $A:7471 $SZ $BLK 8 >$W/tx8.log 2>&1
grep -q "tx parallel=4 done=4" $W/tx8.log && wait_for $W/rx.log "rx ok=6 failed=3 rdma=6" 40 &&
	[ "$(field $W/rx.log hash)" = "$(field $W/tx8.log expect)" ]
t $? "four RDMA transfers in flight at once: all verified and applied" $W/tx8.log $W/rx.log
wait $rxpid
t $? "receiver saw exactly 6 good and 3 failed transfers" $W/rx.log

# 7. a peer that receives over tcp only: rdma fails clearly, auto uses tcp
KT_POLICY=tcp $K recv $A:7472 $SZ 1 60 >$W/rx2.log 2>&1 &
pids="$pids $!"
wait_for $W/rx2.log "rx listening" 30
KT_POLICY=rdma $K send $A:7472 $SZ $BLK 6 >$W/tx6.log 2>&1
[ $? = 1 ] && grep -q "tx state=failed transport=rdma" $W/tx6.log &&
	grep -q "rdma connect $A:7472" $W/tx6.log
t $? "policy rdma, peer without an RDMA listener: a clear error, no fallback" $W/tx6.log
grep "tx msg" $W/tx6.log | sed 's/^/# /'
KT_POLICY=auto $K send $A:7472 $SZ $BLK 7 >$W/tx7.log 2>&1
grep -q "tx state=done transport=tcp" $W/tx7.log &&
	grep -q "policy auto: tcp, no rdma path to $A:7472" $W/tx7.log &&
	wait_for $W/rx2.log "rx ok=1" 20 &&
	[ "$(field $W/rx2.log hash)" = "$(field $W/tx7.log expect)" ]
t $? "policy auto, peer without RDMA: tcp, the reason reported, bytes verified" \
	$W/tx7.log $W/rx2.log

# 9. peer authentication in the rdma_cm handshake: a receiver with a KV key
head -c 32 /dev/urandom >$W/k1.key && head -c 32 /dev/urandom >$W/k2.key &&
	chmod 600 $W/k1.key $W/k2.key
KT_KEY=$W/k1.key KT_POLICY=rdma $K recv $A:7473 $SZ 4 120 >$W/rx3.log 2>&1 &
rx3=$!
pids="$pids $rx3"
wait_for $W/rx3.log "rx listening" 30
h3=$(field $W/rx3.log hash)
KT_KEY=$W/k2.key KT_POLICY=rdma $K send $A:7473 $SZ $BLK 9 >$W/tx9.log 2>&1
[ $? = 1 ] && grep -q "tx state=failed transport=rdma" $W/tx9.log &&
	grep -q "refused our KV key over rdma" $W/tx9.log &&
	wait_for $W/rx3.log "refused over rdma: authentication failed" 20 &&
	grep -q "no memory region exposed, no rkey sent" $W/rx3.log
t $? "rdma: a wrong KV key is refused in the handshake, before any rkey, and logged" \
	$W/tx9.log $W/rx3.log
grep "refused over rdma" $W/rx3.log | sed 's/^/# /'
KT_POLICY=rdma $K send $A:7473 $SZ $BLK 10 >$W/tx10.log 2>&1
[ $? = 1 ] && grep -q "requires KV peer authentication and no KV key is set" $W/tx10.log &&
	[ "$(grep -c "refused over rdma: authentication failed" $W/rx3.log)" = 2 ] &&
	[ "$(field $W/rx3.log hash)" = "$h3" ] && ! grep -q "rx ok=" $W/rx3.log
t $? "rdma: a sender without a key is refused too; nothing received" $W/tx10.log $W/rx3.log
# the right key: the first transfer connects, the next ones reuse the pool
KT_REPEAT=4 KT_KEY=$W/k1.key KT_POLICY=rdma $K send $A:7473 $SZ $BLK 11 >$W/tx11.log 2>&1
grep -q "tx state=done transport=rdma bytes=$SZ" $W/tx11.log &&
	grep "tx round 1 " $W/tx11.log | grep -q "queue pairs, connection new" &&
	[ "$(grep "tx round" $W/tx11.log | grep -c "connection reused, stage granted ahead")" = 3 ] &&
	wait_for $W/rx3.log "rx ok=4 failed=0 rdma=4" 40 &&
	[ "$(field $W/rx3.log hash)" = "$(field $W/tx11.log expect)" ]
t $? "rdma: the right key: authenticated, 4 transfers on one pooled connection group (the later 3 write into the stage granted ahead)" \
	$W/tx11.log $W/rx3.log
grep -E "tx round|first_ms" $W/tx11.log | sed 's/^/# /'
wait $rx3
t $? "authenticated receiver saw exactly 4 good transfers" $W/rx3.log

# 8. two idn-agents with --kv-transport rdma: a cached prefix moves A -> B
AG=/idn/bin/idn-agent
if [ ! -x $AG ] || ! command -v curl >/dev/null; then
	echo "ok 0 - rdma: two agents push a prefix over RDMA # SKIP no idn-agent/curl in the initramfs"
	exit $fail
fi
ENG="--speed 50 --block-tokens 16 --kv-bytes-per-token 4096 --kv-capacity-tokens 16384"
# --kv-key: both agents share a KV key, proved in the rdma_cm handshake;
# --insecure: plain HTTP on the management listener (not about TLS here)
$AG --insecure --node-id 1 --listen 127.0.0.1:8000 --key $W/a.key --kv-listen $A:9100 --kv-peers $A:9101 \
	--kv-key $W/k1.key --kv-transport rdma $ENG >$W/a.log 2>&1 &
pids="$pids $!"
$AG --insecure --node-id 2 --listen 127.0.0.1:8001 --key $W/b.key --kv-listen $A:9101 \
	--kv-key $W/k1.key --kv-transport rdma $ENG >$W/b.log 2>&1 &
pids="$pids $!"
up() { curl -s -o /dev/null -m 5 http://127.0.0.1:$1/v1/agent/key; }
n=0
until up 8000 && up 8001; do
	n=$((n + 1))
	[ $n -gt 300 ] && break
	sleep 0.1
done
grep -q "kv transport policy rdma: rdma (rxe_kv" $W/a.log &&
	grep -q "kv transport policy rdma: rdma (rxe_kv" $W/b.log && up 8000 && up 8001
t $? "two agents up with --kv-transport rdma (the device reported)" $W/a.log $W/b.log
ids=$(seq -s, 1 64)
req() {
	curl -s -m 60 http://127.0.0.1:$1/v1/completions -H 'Content-Type: application/json' \
		-d "{\"model\":\"m\",\"hash_ids\":[$ids],\"max_tokens\":4}"
}
cached() { sed -n 's/.*"cached_tokens": *\([0-9]*\).*/\1/p'; }
req 8000 >$W/ca.json
[ "$(cached <$W/ca.json)" = 0 ]
t $? "agent A computes the prompt (nothing cached)" $W/ca.json
curl -s -m 120 -w '\n%{http_code}\n' http://127.0.0.1:9000/v1/kv/push \
	-d "{\"peer\":\"$A:9101\",\"hash_ids\":[$ids]}" >$W/push.json
echo "# $(head -1 $W/push.json)"
[ "$(tail -1 $W/push.json)" = 200 ] && grep -q '"state": *"done"' $W/push.json &&
	grep -q '"transport": *"rdma"' $W/push.json && grep -q '"bytes": *4194304' $W/push.json
t $? "agent A pushes 64 KV blocks (4 MiB) to agent B over authenticated RDMA, verified" \
	$W/push.json
req 8001 >$W/cb.json
c=$(cached <$W/cb.json)
[ -n "$c" ] && [ "$c" -ge 1008 ]
t $? "agent B serves the prefix from the blocks that came over RDMA (cached $c of 1024)" \
	$W/cb.json
exit $fail
