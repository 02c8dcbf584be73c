#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# test_fuzz.sh - libFuzzer smoke run over the parsers (selftests/fuzz/).
# Runs each harness for IDN_FUZZ_TIME seconds (default 20) on a scratch
# copy of its seed corpus: ok if no crash, leak or UB; not ok with a
# hexdump of the reproducer otherwise. Exit 4 (all skipped) without
# clang's fuzzer runtime. Build: make fuzz.
set -u
O=${O:-build}
cd "$(dirname "$0")/../.."
T=${IDN_FUZZ_TIME:-20}
CORPUS=selftests/fuzz/corpus

# name binary corpus-dir env
runs=(
	"args $O/fuzz/fuzz_args args -"
	"idnd_cap $O/fuzz/fuzz_idnd_body cap IDN_FUZZ_BODY=cap"
	"idnd_node $O/fuzz/fuzz_idnd_body node IDN_FUZZ_BODY=node"
	"idnd_heartbeat $O/fuzz/fuzz_idnd_body heartbeat IDN_FUZZ_BODY=heartbeat"
	"idnd_demand $O/fuzz/fuzz_idnd_body demand IDN_FUZZ_BODY=demand"
	"idnd_policy $O/fuzz/fuzz_idnd_body policy IDN_FUZZ_BODY=policy"
	"agent_metrics $O/fuzz/fuzz_agent_metrics metrics -"
	"eval_trace $O/fuzz/fuzz_eval_trace eval_trace -"
	"agent_completions $O/fuzz/fuzz_agent_body agent_completions IDN_FUZZ_AGENT=completions"
	"agent_chat $O/fuzz/fuzz_agent_body agent_chat IDN_FUZZ_AGENT=chat"
	"agent_residency_load $O/fuzz/fuzz_agent_body agent_residency IDN_FUZZ_AGENT=load"
	"agent_kv_push $O/fuzz/fuzz_agent_body agent_kv_push IDN_FUZZ_AGENT=kv_push"
	"agent_lora $O/fuzz/fuzz_agent_body agent_lora IDN_FUZZ_AGENT=lora_load"
	"agent_kvx_open $O/fuzz/fuzz_agent_kvx kvx IDN_FUZZ_KV=open"
	"agent_kvx_auth $O/fuzz/fuzz_agent_kvx kvx IDN_FUZZ_KV=auth"
	"agent_kvx_commit $O/fuzz/fuzz_agent_kvx kvx IDN_FUZZ_KV=agent"
	"fed_envelope $O/fuzz/fuzz_fedsum fed_envelope IDN_FUZZ_FED=envelope"
	"fed_payload $O/fuzz/fuzz_fedsum fed_payload IDN_FUZZ_FED=payload"
)
echo "1..${#runs[@]}"
if ! echo 'int LLVMFuzzerTestOneInput(const char *d, long n){return 0;}' |
	${FUZZ_CC:-clang} -x c -fsanitize=fuzzer -o /dev/null - 2>/dev/null; then
	for i in "${!runs[@]}"; do
		set -- ${runs[$i]}
		echo "ok $((i + 1)) - fuzz $1 # SKIP clang's libFuzzer runtime is not installed"
	done
	exit 4
fi
if [ ! -x "$O/fuzz/fuzz_args" ] || [ ! -x "$O/fuzz/fuzz_idnd_body" ] ||
   [ ! -x "$O/fuzz/fuzz_agent_metrics" ] || [ ! -x "$O/fuzz/fuzz_eval_trace" ] ||
   [ ! -x "$O/fuzz/fuzz_agent_body" ] || [ ! -x "$O/fuzz/fuzz_agent_kvx" ] ||
   [ ! -x "$O/fuzz/fuzz_fedsum" ]; then
	make -s O="$O" fuzz >/dev/null || { echo "not ok 1 - fuzz build failed"; exit 1; }
fi

scratch=$(mktemp -d /tmp/idn-fuzz.XXXXXX)
trap 'rm -rf "$scratch"' EXIT
fail=0 n=0
for r in "${runs[@]}"; do
	set -- $r
	name=$1 bin=$2 dir=$3 env=$4
	n=$((n + 1))
	work=$scratch/$name
	mkdir -p "$work/corpus" "$work/art"
	cp "$CORPUS/$dir"/* "$work/corpus/"
	[ "$env" = - ] && env=IDN_FUZZ_NONE=1
	env "$env" ASAN_OPTIONS=detect_leaks=1 \
		UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
		"$bin" -max_total_time="$T" -rss_limit_mb=1024 -timeout=10 \
		-max_len=4096 -print_final_stats=1 -artifact_prefix="$work/art/" \
		"$work/corpus" >"$work/log" 2>&1
	rc=$?
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/log" | tail -1)
	echo "# $name: ${execs:-?} executions in ${T}s, exit $rc"
	crash=$(ls "$work/art"/* 2>/dev/null | head -1)
	if [ "$rc" -eq 0 ] && [ -z "$crash" ]; then
		echo "ok $n - fuzz $name"
	else
		fail=1
		echo "not ok $n - fuzz $name"
		grep -E 'ERROR|SUMMARY|runtime error|#[0-9]+ 0x' "$work/log" | head -30 | sed 's/^/# /'
		if [ -n "$crash" ]; then
			echo "# reproducer $(basename "$crash"):"
			od -A x -t x1z -v "$crash" | head -40 | sed 's/^/# /'
		fi
	fi
done
[ "$fail" -eq 0 ]
