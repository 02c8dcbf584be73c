#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# rdma_guest.sh - (guest) `tools/bench/run.sh rdma`, booted by
# selftests/kernel/run.sh with IDN_KBENCH=1 IDN_KBENCH_SCRIPT=this: in one
# guest boot, on one Soft-RoCE device (rdma_rxe on a veth, MTU 9000, both
# ends on 10.77.0.1 as in selftests/kernel/test_rdma.sh), perftest's
# ib_write_bw and the KV transfer engine (kt_kvx over agent/kvxfer.c,
# policy rdma) move the same bytes in the same message size: RB_BYTES
# (32 MiB) as RB_SLICE (1 MiB) writes, RB_ROUNDS (5) times each,
# alternating. Prints "IDNBENCH name value unit" lines and "# ..."
# progress: the ratio is the median of the per-round ratios (each pair ran
# back to back, under the same load of the shared host), the rates are the
# medians of each side. perftest's MB/sec is 2^20 bytes/s, as kt_kvx's MiB/s.
# Each kt_kvx round moves the bytes twice on one engine (KT_REPEAT=2): the
# first transfer opens the pooled connections (as ib_write_bw's setup, not
# in its figure), the second is measured. Then the small push: 64 KiB,
# one block, 11 times on one engine (the first connects, the median of the
# other 10 is kv_rdma_small_push_ms), against perftest's ib_write_lat with
# 64 KiB messages over the same device: its typical latency is half a
# round trip, so one round trip is twice it (ib_write_rtt_64k_ms). Under
# TCG perftest's own conversion to microseconds reads "inf", so it reports
# cycles (-C) and the guest's cpu MHz (/proc/cpuinfo) converts them.
# RB_QPS: queue pairs per transfer (kvxfer's default when unset).
IP=/usr/sbin/ip
K=/idn/bin/kt_kvx
A=10.77.0.1
RB_BYTES=33554432 RB_SLICE=1048576 RB_ROUNDS=5
[ -r /idn/benchenv ] && . /idn/benchenv
W=/tmp/rb
mkdir -p $W
die() { echo "# bench: FAILED: $*"; exit 1; }
skip() { echo "# skipped: rdma bench: $*"; exit 0; }	# no figure, not a failure
med() { sort -n | awk '{ v[NR] = $1 } END { if (NR) print v[int((NR + 1) / 2)] }'; }

echo "# guest: $(uname -r), $(nproc) CPUs"
[ -x $K ] || skip "no kt_kvx (libibverbs-dev/librdmacm-dev: tools/deps.sh)"
command -v ib_write_bw >/dev/null || skip "no ib_write_bw (perftest: tools/deps.sh)"
[ -s /idn/rdma/order ] || skip "no rdma_rxe modules in the initramfs"
insmod /idn/mods/veth.ko
for m in $(cat /idn/rdma/order); do
	insmod /idn/rdma/$m.ko 2>/dev/null || echo "# insmod $m failed"
done
ulimit -l unlimited 2>/dev/null
$IP link add kvr0 mtu 9000 type veth peer name kvr1 mtu 9000 || die "veth"
$IP addr add $A/24 dev kvr0
$IP link set kvr0 up && $IP link set kvr1 up
rdma link add rxe_kv type rxe netdev kvr0 || skip "rdma link add rxe_kv failed"
n=0
until rdma link show rxe_kv/1 | grep -q "state ACTIVE"; do
	n=$((n + 1))
	[ $n -gt 100 ] && die "rxe_kv not ACTIVE"
	sleep 0.1
done
iters=$((RB_BYTES / RB_SLICE))
echo "# $iters x $RB_SLICE bytes per round, $RB_ROUNDS rounds each, rxe_kv MTU 4096"

[ -n "${RB_QPS:-}" ] && export KT_QPS=$RB_QPS
KT_POLICY=rdma KT_SLICE=$RB_SLICE $K recv $A:7471 $RB_BYTES $((RB_ROUNDS * 2)) 600 >$W/rx.log 2>&1 &
rxpid=$!
n=0
until grep -q "rx listening" $W/rx.log; do
	n=$((n + 1))
	[ $n -gt 300 ] && die "kt_kvx receiver: $(cat $W/rx.log)"
	sleep 0.1
done

r=1
while [ $r -le $RB_ROUNDS ]; do
	# perftest: server, then a client over rdma_cm (-R) on the same device
	ib_write_bw -d rxe_kv -R -F -s $RB_SLICE -n $iters -p 18515 >$W/ibs.$r 2>&1 &
	spid=$!
	n=0
	w0=$(cut -d' ' -f1 /proc/uptime)
	until ib_write_bw -d rxe_kv -R -F -s $RB_SLICE -n $iters -p 18515 $A >$W/ibc.$r 2>&1; do
		n=$((n + 1))
		[ $n -gt 50 ] && { cat $W/ibc.$r; die "ib_write_bw client"; }
		sleep 0.2
	done
	w1=$(cut -d' ' -f1 /proc/uptime)
	wait $spid
	# "#bytes #iterations BW peak[MB/sec] BW average[MB/sec] MsgRate[Mpps]"
	# (a round whose average reads 0.00, a perftest timing glitch seen under
	# TCG, is left out: no rate, no ratio)
	awk -v s=$RB_SLICE '$1 == s && NF >= 5 && $4 > 0 { print $4 }' $W/ibc.$r | tail -1 >>$W/ib
	grep -E "^ *$RB_SLICE " $W/ibc.$r | tail -1 | sed 's/^ */# ib_write_bw: /'
	# ours: the same bytes as RB_SLICE-sized descriptors, block i -> n-1-i
	KT_REPEAT=2 KT_POLICY=rdma KT_SLICE=$RB_SLICE $K send $A:7471 $RB_BYTES $RB_SLICE $r \
		>$W/tx.$r 2>&1 ||
		{ cat $W/tx.$r; die "kt_kvx send"; }
	w2=$(cut -d' ' -f1 /proc/uptime)
	# sanity: wall clock of each whole process (start, setup, exit included)
	echo "# round $r wall: ib_write_bw client $(awk -v a=$w0 -v b=$w1 'BEGIN { print b - a }') s," \
		"kt_kvx send $(awk -v a=$w1 -v b=$w2 'BEGIN { print b - a }') s"
	sed -n 's/.*mibps=\([0-9.]*\).*/\1/p' $W/tx.$r >>$W/kv
	# the pair ran back to back under the same load: their ratio is the sample
	ratio=$(awk -v a="$(tail -1 $W/kv)" -v b="$(tail -1 $W/ib)" \
		'BEGIN { if (a > 0 && b > 0) printf "%.3f", a / b }')
	[ -n "$ratio" ] && echo "$ratio" >>$W/ratio
	echo "# round $r: ib_write_bw $(tail -1 $W/ib) MB/s," \
		"kvxfer rdma $(tail -1 $W/kv) MiB/s, ratio $ratio"
	r=$((r + 1))
done
wait $rxpid || die "receiver: $(cat $W/rx.log)"
grep -q "failed=0" $W/rx.log || die "a transfer failed: $(cat $W/rx.log)"
[ "$(sed -n 's/.*hash=\([^ ]*\).*/\1/p' $W/rx.log | tail -1)" = \
	"$(sed -n 's/^tx expect=//p' $W/tx.$RB_ROUNDS)" ] || die "destination bytes differ"
grep "tx msg" $W/tx.$RB_ROUNDS | sed 's/^/# /'

# the small push on a warm connection vs one 64 KiB round trip of perftest
KT_POLICY=rdma $K recv $A:7473 65536 11 300 >$W/rxs.log 2>&1 &
rxs=$!
n=0
until grep -q "rx listening" $W/rxs.log; do
	n=$((n + 1))
	[ $n -gt 300 ] && die "kt_kvx small receiver: $(cat $W/rxs.log)"
	sleep 0.1
done
KT_REPEAT=11 KT_POLICY=rdma $K send $A:7473 65536 65536 7 >$W/txs.log 2>&1 ||
	{ cat $W/txs.log; die "kt_kvx small send"; }
wait $rxs || die "small receiver: $(cat $W/rxs.log)"
# every push's split (connect+grant, writes, verify+commit): a slow one
# shows which phase the host's load hit
grep -E "tx round" $W/txs.log | sed -E 's/ over rdma to [^;]*; [0-9]+ queue pairs,|; path mtu [^;]*;/;/g; s/^/# /'
push=$(sed -n 's/^tx first_ms=[^ ]* warm_ms=//p' $W/txs.log)
first=$(sed -n 's/^tx first_ms=\([^ ]*\) .*/\1/p' $W/txs.log)
lat=""
if command -v ib_write_lat >/dev/null; then
	ib_write_lat -d rxe_kv -R -F -C -s 65536 -n 50 -p 18516 >$W/ils 2>&1 &
	spid=$!
	n=0
	until ib_write_lat -d rxe_kv -R -F -C -s 65536 -n 50 -p 18516 $A >$W/ilc 2>&1; do
		n=$((n + 1))
		[ $n -gt 50 ] && { cat $W/ilc; die "ib_write_lat client"; }
		sleep 0.2
	done
	wait $spid
	# "#bytes #iterations t_min t_max t_typical t_avg ..." (cycles, half a
	# round trip)
	cyc=$(awk '$1 == 65536 && NF >= 6 { print $5 }' $W/ilc | tail -1)
	mhz=$(awk -F: '/^cpu MHz/ { print $2 + 0; exit }' /proc/cpuinfo)
	grep -E "^ *65536 " $W/ilc | tail -1 | sed "s/^ */# ib_write_lat (cycles, cpu MHz $mhz): /"
	if echo "$cyc" | grep -qE '^[0-9]+(\.[0-9]+)?$' && echo "$mhz" | grep -qE '^[0-9]+(\.[0-9]+)?$'; then
		lat=$(awk -v c="$cyc" -v m="$mhz" 'BEGIN { if (m > 0) printf "%.3f", c / m }')
	fi
fi
ib=$(med <$W/ib)
kv=$(med <$W/kv)
ratio=$(med <$W/ratio)
[ -n "$ib" ] && [ -n "$kv" ] && [ -n "$ratio" ] || die "no figures: ib '$ib' kv '$kv'"
echo "IDNBENCH kv_rdma_vs_ib_write_bw $ratio x"
echo "IDNBENCH kv_rdma_mibps $kv MiB/s"
echo "IDNBENCH ib_write_bw_mibps $ib MiB/s"
[ -n "$push" ] || die "no small push figure: $(cat $W/txs.log)"
echo "IDNBENCH kv_rdma_small_push_ms $push ms"
echo "IDNBENCH kv_rdma_first_push_ms $first ms"
if [ -n "$lat" ] && awk -v l="$lat" 'BEGIN { exit !(l > 0) }'; then
	rtt=$(awk -v l="$lat" 'BEGIN { printf "%.3f", 2 * l / 1000 }')
	echo "IDNBENCH ib_write_rtt_64k_ms $rtt ms"
	echo "IDNBENCH kv_rdma_small_push_vs_ib_rtt $(awk -v a="$push" -v b="$rtt" \
		'BEGIN { if (b > 0) printf "%.3f", a / b }') x"
else
	echo "# kv_rdma_small_push_vs_ib_rtt: not measured (no ib_write_lat in the guest, or no" \
		"number from it)"
fi
rdma link delete rxe_kv
exit 0
