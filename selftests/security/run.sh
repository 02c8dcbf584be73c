#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# run.sh - selftests/security: every attack of issue 11 replayed against
# idnd and idn-agent; each must be refused, with a clear log line.
# Runs every selftests/security/test_*.sh (TAP, lib.sh conventions) and
# prints one TAP stream; attacks are the TAP lines whose name starts
# "attack:". Closing comments give the figures:
#   # security_attacks_tried N attacks
#   # security_attacks_not_refused N attacks
# Exit 0 when nothing failed, 4 when everything skipped.
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
n=0 fail=0 pass=0 skip=0 tried=0 not_refused=0
for t in "$HERE"/test_*.sh; do
	[ -x "$t" ] || continue
	echo "# === $(basename "$t")"
	out=$("$t" 2>&1)
	rc=$?
	while IFS= read -r l; do
		case $l in
		"ok "*|"not ok "*)
			n=$((n + 1))
			name=${l#*- }
			st=ok
			[[ $l == "not ok "* ]] && st="not ok"
			echo "$st $n - $(basename "$t" .sh): $name"
			if [[ $l == *"# SKIP"* ]]; then
				skip=$((skip + 1))
			elif [ "$st" = ok ]; then
				pass=$((pass + 1))
			else
				fail=$((fail + 1))
			fi
			if [[ $name == attack:* ]] && [[ $l != *"# SKIP"* ]]; then
				tried=$((tried + 1))
				[ "$st" = ok ] || not_refused=$((not_refused + 1))
			fi
			;;
		"1..0"*)
			n=$((n + 1)); skip=$((skip + 1))
			echo "ok $n - $(basename "$t" .sh) # SKIP ${l#*SKIP }"
			;;
		"1.."*) ;;
		*) echo "$l" ;;
		esac
	done <<<"$out"
	if [ $rc -ne 0 ] && [ $rc -ne 4 ] && ! grep -q '^not ok' <<<"$out"; then
		n=$((n + 1)); fail=$((fail + 1))
		echo "not ok $n - $(basename "$t" .sh) exited with status $rc"
	fi
done
echo "1..$n"
echo "# security_attacks_tried $tried attacks"
echo "# security_attacks_not_refused $not_refused attacks"
echo "# $pass passed, $fail failed, $skip skipped"
[ $fail -gt 0 ] && exit 1
[ $pass -eq 0 ] && [ $skip -gt 0 ] && exit 4
exit 0
