#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# test_valgrind.sh - the userspace unit tests again under valgrind
# memcheck: no invalid access, no uninitialised use, no leak. The ASan
# builds (*_asan) and ASan-linked tests are skipped: valgrind and ASan
# cannot share a process.
set -u
O=${O:-build}
cd "$(dirname "$0")/../.."
echo "TAP version 13"
if ! command -v valgrind >/dev/null; then
	echo "ok 1 - valgrind # SKIP valgrind not installed"
	exit 4
fi
n=0 fail=0
for t in "$O"/tests/unit_*; do
	[ -x "$t" ] || continue
	case "$t" in *_asan) continue ;; esac
	if nm -D "$t" 2>/dev/null | grep -q __asan_init; then
		continue
	fi
	n=$((n + 1))
	log=$(mktemp)
	if valgrind -q --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite,indirect \
		"$t" >"$log" 2>&1; then
		echo "ok $n - valgrind $(basename "$t")"
	else
		fail=$((fail + 1))
		echo "not ok $n - valgrind $(basename "$t")"
		grep -E '^==[0-9]+==' "$log" | head -30 | sed 's/^/# /'
	fi
	rm -f "$log"
done
[ "$n" -gt 0 ] || { echo "ok 1 - valgrind # SKIP no unit test binaries"; exit 4; }
[ "$fail" -eq 0 ]
