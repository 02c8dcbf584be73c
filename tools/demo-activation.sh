#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# demo-activation.sh - the paper's demand-driven deployment, end to end,
# in the kernel tier's QEMU guest (Debian 6.1): a cold capability is
# registered with idnd but deployed nowhere; the client's first request
# is held by idn.ko, idnd hears the DEMAND_MISS, places the capability,
# installs its plan and sends RELEASE; the held request is served by the
# node. A capability nobody registered gets a RST after the hold timeout.
#
# Runs selftests/kernel/run.sh with IDN_KTESTS=activate IDN_KNARRATE=1
# (selftests/kernel/test_activate.sh) and prints its story.
# Exit: 0 shown, 1 failed, 4 skipped (one line saying why: no qemu, no
# Debian 6.1 image, ...). Env: V=1 also prints every TAP line.
set -uo pipefail
cd "$(dirname "$0")/.."

command -v qemu-system-x86_64 >/dev/null || {
	echo "demo-activation: skipped: no qemu-system-x86_64 (tools/deps.sh)"; exit 4; }
[ -x "${O:-build}/idnd" ] && [ -x "${O:-build}/idnctl" ] || {
	echo "demo-activation: skipped: build idnd and idnctl first (make)"; exit 4; }

echo "== demand-driven activation (idn.ko hold + idnd -M), QEMU guest, Debian 6.1"
out=$(IDN_KTESTS=activate IDN_KNARRATE=1 selftests/kernel/run.sh 2>&1)
rc=$?
if [ $rc = 4 ]; then
	echo "demo-activation: skipped: $(sed -n 's/^1\.\.0 # SKIP //p' <<<"$out" | head -1)"
	exit 4
fi
[ "${V:-0}" = 1 ] && grep -E '^(not )?ok ' <<<"$out"
if grep -q 'activate: .*# SKIP' <<<"$out"; then
	echo "demo-activation: skipped: $(grep -o 'activate: .*# SKIP.*' <<<"$out" | head -1 | sed 's/.*# SKIP //')"
	exit 4
fi
# the story: the narration lines, idnd's steps without their repeat in the log dump
sed -n 's/^# story: /  /p' <<<"$out" |
	sed -e 's/idnd: HOLD: miss cap/HELD      idnd: demand miss, cap/' \
	    -e 's/idnd: HOLD: cap \([0-9/]*\): placed/PLACED    idnd: cap \1 placed/' \
	    -e 's/idnd: HOLD: cap \([0-9/]*\): plan installed/INSTALLED idnd: cap \1 plan installed/' \
	    -e 's/idnd: HOLD: cap \([0-9/]*\): RELEASE sent/RELEASED  idnd: cap \1 RELEASE sent/' \
	    -e 's/client: connected/SERVED    client: connected/' \
	    -e 's/client: refused/REJECTED  client: refused (RST)/' \
	    -e 's/idnd: HOLD: cap \([0-9/]*\) is not registered/UNKNOWN   idnd: cap \1 is not registered/'
grep -E '^# kernel tier:' <<<"$out" | sed 's/^# kernel tier:/== guest:/'
n_ok=$(grep -cE '^ok .*activate:' <<<"$out")
n_bad=$(grep -cE '^not ok ' <<<"$out")
if [ $rc != 0 ] || [ "$n_bad" != 0 ]; then
	echo "== FAILED ($n_bad check(s) failed, run.sh exit $rc):"
	grep -E '^not ok |^# console:|^# idnd:' <<<"$out" | tail -40
	exit 1
fi
echo "== held -> placed -> released -> served: $n_ok checks passed"
exit 0
