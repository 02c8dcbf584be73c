#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# guest.sh - runs inside the QEMU guest (selftests/kernel/run.sh): loads
# the modules, runs the kernel tests and prints TAP; run.sh renumbers it.
# Last: unload, reload with parameters, and scan dmesg for WARN/BUG/Oops
# and leak reports. Exit 0 only if nothing failed.
fail=0
t() {	# t COND-STATUS NAME
	if [ "$1" = 0 ]; then echo "ok 0 - $2"; else echo "not ok 0 - $2"; fail=1; fi
}
filter=$(cat /idn/filter 2>/dev/null)
want() { [ -z "$filter" ] || case $1 in *$filter*) return 0 ;; *) return 1 ;; esac; }

echo "# guest: $(uname -r), $(nproc) CPUs"
for m in veth nf_reject_ipv4 nf_reject_ipv6 sch_ingress cls_bpf cls_u32 act_skbedit; do
	insmod /idn/mods/$m.ko || { echo "# insmod $m failed"; fail=1; }
done
insmod /idn/mods/idn.ko; t $? "load: insmod idn.ko"
[ -r /proc/net/idn ] && grep -q '^max_pkts 64$' /proc/net/idn
t $? "load: /proc/net/idn with the default limits"
grep -q . /sys/kernel/btf/idn 2>/dev/null; t $? "load: module BTF at /sys/kernel/btf/idn"

if want genl; then
	echo "# --- kt_genl_test (kselftest harness)"
	kt_genl_test; [ $? = 0 ] || fail=1
fi
for s in /idn/test_*.sh; do
	[ -e "$s" ] || continue
	want "$s" || continue
	echo "# --- $s"
	sh "$s"; [ $? = 0 ] || fail=1
done

rmmod idn; t $? "unload: rmmod idn"
[ ! -e /proc/net/idn ]; t $? "unload: /proc/net/idn gone"
insmod /idn/mods/idn.ko max_pkts=3 timeout_ms=250 event_ms=0 max_queues=2
t $? "load: with module parameters"
grep -q '^max_pkts 3$' /proc/net/idn && grep -q '^timeout_ms 250$' /proc/net/idn
t $? "load: parameters are the netns defaults"
/usr/sbin/ip netns add kt_ns 2>/dev/null || { mkdir -p /run/netns; /usr/sbin/ip netns add kt_ns; }
/usr/sbin/ip netns exec kt_ns grep -q '^max_pkts 3$' /proc/net/idn
t $? "netns: a new namespace has its own /proc/net/idn"
/usr/sbin/ip netns exec kt_ns kt_genl set max_pkts 9 >/dev/null &&
	/usr/sbin/ip netns exec kt_ns grep -q '^max_pkts 9$' /proc/net/idn &&
	grep -q '^max_pkts 3$' /proc/net/idn
t $? "netns: limits are per namespace"
/usr/sbin/ip netns del kt_ns
rmmod idn; t $? "unload: rmmod idn (after a netns came and went)"
insmod /idn/mods/idn.ko timeout_ms=1 2>/dev/null
rc=$?; [ $rc != 0 ] || rmmod idn; [ $rc != 0 ]; t $? "load: out-of-range parameter refused"

sleep 0.2
if dmesg | grep -E 'WARNING:|BUG:|Oops|general protection|Call Trace:|leaked|kmemleak|refcount_t:' >/tmp/splat; then
	echo "not ok 0 - dmesg: no WARN/BUG/Oops/leak"
	dmesg | tail -60 | sed 's/^/# dmesg: /'
	fail=1
else
	echo "ok 0 - dmesg: no WARN/BUG/Oops/leak"
fi
exit $fail
