#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# run.sh - run every test tier and print one TAP stream with a closing
# "N passed, N failed, N skipped" line. Exit 0 only if nothing failed.
#
# A test is any executable that prints TAP lines ("ok N - name",
# "not ok N - name", "ok N - name # SKIP why") and exits 0 (pass/skip) or
# non-zero. Tiers, in order:
#   1 unit     $O/tests/unit_*          (userspace C, incl. bpf/lib), and
#              selftests/unit/test_*.sh (the same under valgrind)
#   2 bpf      $O/tests/bpf_*           (BPF_PROG_TEST_RUN fixtures)
#   3 net      selftests/net/test_*.sh  (namespaces + veth + real clients),
#              selftests/security/run.sh (the attacks of issue 11)
#   4 pkg      selftests/pkg/test_*.sh  (make deb, the packages installed and
#              started in a fresh Debian 12 debootstrap chroot)
#   5 kernel   selftests/kernel/run.sh  (QEMU guest), when present
# IDN_TESTS="pattern" runs only tests whose path matches the pattern.
#
# The BPF tier runs once per dataplane variant: the features this kernel
# allows, then each fallback forced (IDN_DP_DISABLE=meta: held misses
# without XDP metadata), so every variant is exercised on any kernel.
#
# A test that skips whole ("1..0 # SKIP why", or only skipped checks and
# exit 4) counts as one skip.
# IDN_REQUIRE_ALL=1 (set by .ci/run) counts it as a failure instead: on
# the machine CI runs on every tier can run, and a tier that silently
# stops running must not pass.
set -u
O=${O:-build}
cd "$(dirname "$0")/.."

tests=()
for t in "$O"/tests/unit_* selftests/unit/test_*.sh "$O"/tests/bpf_* \
	selftests/net/test_*.sh selftests/security/run.sh selftests/pkg/test_*.sh \
	selftests/kernel/run.sh; do
	[ -x "$t" ] || continue
	[ -n "${IDN_TESTS:-}" ] && [[ $t != *${IDN_TESTS}* ]] && continue
	tests+=("$t")
	case $t in
	"$O"/tests/bpf_*) tests+=("IDN_DP_DISABLE=meta $t") ;;
	esac
done

pass=0 fail=0 skip=0 n=0
echo "TAP version 13"
echo "1..${#tests[@]}"
for t in "${tests[@]}"; do
	n=$((n + 1))
	echo "# === $t"
	log=$(mktemp)
	# "VAR=value path": the test with that environment (a variant)
	cmd=(env)
	for w in $t; do cmd+=("$w"); done
	timeout --foreground -k 10 "${IDN_TEST_TIMEOUT:-1200}" "${cmd[@]}" >"$log" 2>&1
	rc=$?
	sed 's/^/    /' "$log"
	p=$(grep -cE '^ok [0-9]+' "$log" | tr -d ' ')
	s=$(grep -cE '^ok [0-9]+.*# *SKIP' "$log" | tr -d ' ')
	f=$(grep -cE '^not ok [0-9]+' "$log" | tr -d ' ')
	whole=$(grep -cE '^1\.\.0 *# *SKIP' "$log" | tr -d ' ')
	p=$((p - s))
	rm -f "$log"
	if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ] && [ "$rc" -ne 4 ]; then
		f=1	# crashed or exited non-zero without reporting a failure
		echo "    # $t exited with status $rc without a failing test: counted as one failure"
	fi
	# skipped whole: "1..0 # SKIP", or nothing but skips (exit 4 after a
	# skipped setup step, say)
	if [ "$p" -eq 0 ] && [ "$f" -eq 0 ] && { [ "$whole" -gt 0 ] || [ "$s" -gt 0 ]; }; then
		if [ "${IDN_REQUIRE_ALL:-0}" = 1 ]; then
			f=1
			echo "    # $t skipped whole under IDN_REQUIRE_ALL=1: counted as one failure"
		elif [ "$s" -eq 0 ]; then
			s=1
		fi
	fi
	pass=$((pass + p)); fail=$((fail + f)); skip=$((skip + s))
	if [ "$f" -gt 0 ]; then
		echo "not ok $n - $t ($p passed, $f failed, $s skipped)"
	elif [ "$p" -eq 0 ] && [ "$s" -gt 0 ]; then
		echo "ok $n - $t # SKIP all $s skipped"
	else
		echo "ok $n - $t ($p passed, $s skipped)"
	fi
done
echo "$pass passed, $fail failed, $skip skipped"
[ "$fail" -eq 0 ]
