#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# test_dp_replace.sh - `idnctl dp replace` under traffic loses nothing:
# tools/bench/dp_replace.sh with a few replacements (IDN_REPLACE_N, 10)
# must print dp_replace_lost_packets 0 and dp_replace_broken_conns 0 (the
# benchmark runs 100). One TAP line per figure.

source "$(dirname "$0")/lib.sh"

require_root
require_cmd ip jq nsenter curl wrk python3 ethtool nstat
require_file "$IDNCTL" "$BUILD/bpf/idn_node.bpf.o" "$BUILD/bpf/idn_pass.bpf.o"
probe_netns || skip_all "cannot create network namespaces"
probe_bpffs || skip_all "cannot mount bpffs"

make_tmpdir || exit 1
REPLACE_N=${IDN_REPLACE_N:-10} O="$BUILD" "$IDN_ROOT/tools/bench/dp_replace.sh" \
	>"$TMPD/out" 2>"$TMPD/err"
rc=$?
sed 's/^/# /' "$TMPD/err"
tap_result "dp_replace.sh ran (exit $rc)" $([ $rc -eq 0 ] && echo 0 || echo 1)
grep -qx "dp_replace_lost_packets 0 packets" "$TMPD/out"
tap_result "no datagram lost across the replacements" $? "$(cat "$TMPD/out")"
grep -qx "dp_replace_broken_conns 0 conns" "$TMPD/out"
tap_result "no connection broken across the replacements" $? "$(cat "$TMPD/out")"
tap_done
