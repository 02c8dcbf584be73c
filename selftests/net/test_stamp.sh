#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# test_stamp.sh - the client-side sock_ops program (bpf/idn_stamp.bpf.c)
# through build/idn-stamp, on the wire: a client namespace talks to a
# server namespace whose veth is watched by synopt.py, which decodes the
# IDN option of every SYN. Checks cgroup-default and per-socket
# descriptors, IPv4 and IPv6, update in place, detach, the port filter,
# -ENOSPC (TCP Fast Open leaves no room) being counted, prefix-aware
# tokens (prefix-file), and cleanup.
# TAP output; exit 4 when the machine cannot run it.

source "$(dirname "$0")/lib.sh"

require_root
require_cmd ip nsenter curl python3 findmnt ss
require_file "$IDNSTAMP"
probe_netns || skip_all "cannot create network namespaces"
probe_bpffs || skip_all "cannot mount bpffs"
probe_cgroup2 || skip_all "no writable cgroup2 mount"

SYNOPT=$IDN_ROOT/selftests/net/synopt.py
stamp() { "$IDNSTAMP" "$@" pin "$PIN"; }

make_tmpdir || exit 1
PIN=$TMPD/bpf
make_bpffs "$PIN" || skip_all "cannot mount bpffs"
cli='' srv=''
setup_ns cli srv || exit 1
veth_pair "$cli" c0 "$srv" s0 || exit 1
ip -n "$cli" addr add 10.1.0.1/24 dev c0
ip -n "$srv" addr add 10.1.0.2/24 dev s0
ip -n "$cli" addr add fd00:1::1/64 dev c0 nodad
ip -n "$srv" addr add fd00:1::2/64 dev s0 nodad
bg_ns "$srv" "$TMPD/httpd.log" python3 "$IDN_ROOT/selftests/net/httpd.py" srv 80
bg_ns "$srv" "$TMPD/httpd81.log" python3 "$IDN_ROOT/selftests/net/httpd.py" srv81 81
wait_listen "$srv" 80 15 && wait_listen "$srv" 81 15 || skip_all "test server did not start"
debug_shell

# syn_start COUNT [PORT]: capture COUNT SYNs on s0; syn_lines: wait, print them
syn_start() {
	local i
	bg_ns "$srv" "$TMPD/syn.log" python3 "$SYNOPT" s0 "${2:-80}" "$1" 8
	SYN_PID=$BG_PID
	for ((i = 0; i < 100; i++)); do
		grep -q listening "$TMPD/syn.log" && return 0
		sleep 0.05
	done
	return 1
}
syn_lines() { wait "$SYN_PID" 2>/dev/null; grep '^syn' "$TMPD/syn.log"; }
counter() { stamp show | awk -v k="$1" '$1 == k {print $2}'; }

# 1. run: the cgroup default descriptor on an IPv4 SYN
syn_start 1
out=$(in_ns "$cli" "$IDNSTAMP" run cap 1001/2 tier 3 policy 9 token 4242 size-class 5 \
	pin "$PIN" -- curl -s -m 5 http://10.1.0.2/)
syns=$(syn_lines)
log "$syns"
[ "$out" = "node srv" ] && [[ $syns == *"idn ver 1 tier 3 policy 9 size 5 cap 1001/2 token 4242"* ]]
tap_result "run: IPv4 SYN carries the cgroup's descriptor" $? "got '$syns' / '$out'"

# 2. run on IPv6 with a 64-bit token (high and low words)
syn_start 1
in_ns "$cli" "$IDNSTAMP" run cap 7/0 token 1099511627783 pin "$PIN" -- \
	curl -s -m 5 -o /dev/null "http://[fd00:1::2]/"
syns=$(syn_lines)
log "$syns"
[[ $syns == *"idn ver 1 tier 0 policy 0 size 255 cap 7/0 token 1099511627783"* ]]
tap_result "run: IPv6 SYN carries a 64-bit token" $? "got '$syns'"

# 3. connect: per-socket storage only (the private cgroup has no default)
syn_start 1
out=$(in_ns "$cli" "$IDNSTAMP" connect 10.1.0.2 80 token 77 tier 2 http pin "$PIN" | tail -n 1)
syns=$(syn_lines)
log "$syns"
[ "$out" = "node srv" ] && [[ $syns == *"idn ver 1 tier 2 policy 0 size 255 cap 0/0 token 77"* ]]
tap_result "connect: per-socket descriptor on the SYN" $? "got '$syns' / '$out'"

# 3b. prefix-aware tokens: prompts that begin alike (a shared system prompt,
# 2320 bytes) share a token whatever follows; a change in the first
# prefix-bytes bytes, or a shorter prompt, gives another one
python3 - "$TMPD" <<'PY'
import sys
d, sysp = sys.argv[1], "You are a helpful assistant. " * 80
for name, text in (("p1", sysp + "Question one?"), ("p2", sysp + "Another question"),
                   ("p3", "X" + sysp[1:] + "Question one?"), ("p4", sysp[:100])):
    open(d + "/" + name, "w").write(text)
PY
ptok() {
	in_ns "$cli" "$IDNSTAMP" connect 10.1.0.2 80 prefix-file "$TMPD/$1" "${@:2}" pin "$PIN" |
		awk '/^connected/ {print $NF}'
}
t1=$(ptok p1) t2=$(ptok p2) t3=$(ptok p3) t4=$(ptok p4)
t5=$(ptok p1 prefix-bytes 4096) t6=$(ptok p2 prefix-bytes 4096)
log "prefix tokens: p1 $t1 p2 $t2 p3 $t3 p4 $t4; 4096 bytes: p1 $t5 p2 $t6"
[ -n "$t1" ] && [ "$t1" != 0 ] && [ "$t1" = "$t2" ] && [ "$t1" != "$t3" ] &&
	[ -n "$t3" ] && [ "$t1" != "$t4" ] && [ -n "$t5" ] && [ "$t5" != "$t6" ]
tap_result "prefix-file: same leading 2048 bytes, same token; differing prefix, another" $?
syn_start 1
out=$(in_ns "$cli" "$IDNSTAMP" connect 10.1.0.2 80 prefix-file "$TMPD/p2" http pin "$PIN" | tail -n 1)
syns=$(syn_lines)
[ "$out" = "node srv" ] && [[ $syns == *" token $t1"* ]]
tap_result "prefix-file: the prefix token on the SYN" $? "got '$syns' / '$out'"

# 4. attach to a cgroup; a socket's own descriptor wins over the cgroup's
cgroup_make "idn-test-stamp-$$" || exit 1
CG=$CGROUP
check "attach cgroup" stamp attach cgroup "$CG" token 1 port 80
syn_start 2
in_ns "$cli" sh -c "echo \$\$ > $CG/cgroup.procs &&
	curl -s -m 5 -o /dev/null http://10.1.0.2/ &&
	$IDNSTAMP connect 10.1.0.2 80 token 2 inplace pin $PIN >/dev/null"
syns=$(syn_lines)
log "$syns"
[ "$(grep -c 'token 1$' <<<"$syns")" = 1 ] && [ "$(grep -c 'token 2$' <<<"$syns")" = 1 ]
tap_result "attached cgroup: default for curl, per-socket wins for an application" $? "got '$syns'"

# 5. a second attach replaces the descriptor in place; port filter holds
check "attach again updates the descriptor" stamp attach cgroup "$CG" token 3 port 80
syn_start 1 81
in_ns "$cli" sh -c "echo \$\$ > $CG/cgroup.procs && curl -s -m 5 -o /dev/null http://10.1.0.2:81/"
syns=$(syn_lines)
[[ $syns == *"none"* ]]
tap_result "port filter: SYN to another port is left bare" $? "got '$syns'"
syn_start 1
in_ns "$cli" sh -c "echo \$\$ > $CG/cgroup.procs && curl -s -m 5 -o /dev/null http://10.1.0.2/"
syns=$(syn_lines)
[[ $syns == *"token 3"* ]] && [ "$(stamp show | grep -c '^cgroup-id ')" = 1 ]
tap_result "updated descriptor used, one instance attached" $? "got '$syns'"

# 6. -ENOSPC: a Fast Open cookie request leaves under 20 option bytes
before=$(counter nospc)
in_ns "$cli" sysctl -qw net.ipv4.tcp_fastopen=1
syn_start 1
in_ns "$cli" sh -c "echo \$\$ > $CG/cgroup.procs &&
	curl -s -m 5 -o /dev/null --tcp-fastopen http://10.1.0.2/"
rc=$?
syns=$(syn_lines)
after=$(counter nospc)
log "nospc $before -> $after; $syns"
[ $rc -eq 0 ] && [ "$after" -gt "$before" ] && [[ $syns == *"none"* ]]
tap_result "no room in the SYN: counted (nospc), connection still works" $? "rc $rc nospc $before -> $after"

# 7. detach: SYNs are bare again, pins gone
check "detach cgroup" stamp detach cgroup "$CG"
syn_start 1
in_ns "$cli" sh -c "echo \$\$ > $CG/cgroup.procs && curl -s -m 5 -o /dev/null http://10.1.0.2/"
syns=$(syn_lines)
[[ $syns == *"none"* ]] && [ "$(stamp show | grep -c '^cgroup-id ')" = 0 ]
tap_result "after detach the SYN is bare" $? "got '$syns'"

# 8. counters and cleanup of run
w=$(counter written)
[ "${w:-0}" -ge 6 ]
tap_result "written counter ($w) counts stamped SYNs" $?
in_ns "$cli" "$IDNSTAMP" run token 9 pin "$PIN" -- sh -c 'exit 3'
rc=$?
root=$(findmnt -n -t cgroup2 -o TARGET | head -n 1)
[ $rc -eq 3 ] && ! ls -d "$root"/idn-stamp/run-* >/dev/null 2>&1
tap_result "run passes the exit status and removes its cgroup" $? "rc $rc"
check "bad descriptor value is a usage error (exit 2)" \
	sh -c "\"$IDNSTAMP\" run tier 16 -- true; [ \$? -eq 2 ]"

tap_done
