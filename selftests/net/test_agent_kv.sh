#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# test_agent_kv.sh - KV transfer and signed receipts between two idn-agents
# in a private namespace:
#   1. transport policy: rdma is refused with a clear error (no RDMA device
#      here), auto picks tcp and says why in the log;
#   2. a prefix cached on agent A moves to agent B (POST /v1/kv/push): the
#      answer reports transport and policy, B then serves the same prompt
#      from cache; a push to a dead peer fails cleanly (502, B unchanged);
#   3. receipts: every completion names its receipt (X-IDN-Receipt), the
#      node key is 0600, `idnctl receipt verify` accepts it (also pinned to
#      the agent's key) and rejects flipped bytes and another key (exit 1);
#   4. --kv-key: a key file readable by others is refused; a peer without
#      the key is refused (logged, nothing reaches the cache), peers with the
#      same key move blocks, a sender with a key refuses a keyless receiver;
#      a listener without a key needs --kv-insecure (A and B run with it).
# Faults inside a transfer (peer killed, truncated stream, corrupted
# slice) are unit_agent_kvxfer's. TAP output; exit 4 when it cannot run.
if [ -z "${IDN_TEST_UNSHARED:-}" ] && [ "$(id -u)" -eq 0 ]; then
	IDN_TEST_UNSHARED=1 exec unshare -m --propagation private "$0" "$@"
fi

source "$(dirname "$0")/lib.sh"

require_root
require_cmd ip jq nsenter curl ss
AGENT=$BUILD/idn-agent
require_file "$AGENT" "$IDNCTL"
probe_netns || skip_all "cannot create network namespaces"
make_tmpdir || exit 1
T=$TMPD
setup_ns NS || { tap_fail "netns"; tap_done; }

ENG=(--speed 50 --block-tokens 16 --kv-bytes-per-token 4096 --kv-capacity-tokens 16384
     --kv-peers 127.0.0.1:9199,127.0.0.1:9101,127.0.0.1:9103)
# mgmt URL: the agent's management listener (default: loopback, port + 1000)
mgmt() { echo "${1%:*}:$(( ${1##*:} + 1000 ))"; }
A=http://127.0.0.1:8000
B=http://127.0.0.1:8001

# 1. policy
in_ns "$NS" "$AGENT" --insecure --node-id 9 --listen 127.0.0.1:8009 --key "$T/k9" \
	--kv-transport rdma "${ENG[@]}" >"$T/rdma.log" 2>&1 &
pid=$!
bg_pid $pid
wait $pid
rc=$?
# (this host has no RDMA device: rdma must fail, never fall back to tcp)
[ $rc -eq 1 ] && grep -Eq "transport policy rdma: (no RDMA device|built without RDMA)" "$T/rdma.log"
tap_result "kv-transport rdma without an RDMA device: exit 1 with a clear error" $? \
	"rc $rc: $(cat "$T/rdma.log")"

bg_ns "$NS" "$T/a.log" "$AGENT" --insecure --node-id 1 --listen 127.0.0.1:8000 --key "$T/keys/a.key" \
	--kv-listen 127.0.0.1:9100 --kv-insecure --kv-transport auto --kv-streams 4 "${ENG[@]}"
bg_ns "$NS" "$T/b.log" "$AGENT" --insecure --node-id 2 --listen 127.0.0.1:8001 --key "$T/keys/b.key" \
	--kv-listen 127.0.0.1:9101 --kv-insecure --kv-transport tcp "${ENG[@]}"
wait_listen "$NS" 8000 && wait_listen "$NS" 8001 && wait_listen "$NS" 9101
tap_result "two agents up" $? "$(cat "$T/a.log" "$T/b.log")"
grep -Eq "kv transport policy auto: tcp \((no RDMA device|built without RDMA)" "$T/a.log" &&
	grep -q "kv transport policy tcp: tcp" "$T/b.log"
tap_result "transport choice reported (auto -> tcp, said so)" $? "$(cat "$T/a.log")"

# 2. KV transfer: 64 blocks of 64 KiB
ids=$(seq -s, 1 64)
req() {	# req URL -> completion JSON (headers in $T/h)
	in_ns "$NS" curl -s -D "$T/h" "$1/v1/completions" -H 'Content-Type: application/json' \
		-H 'X-IDN-Plan-Generation: 17' -H 'X-IDN-Verdict: forward' \
		-d "{\"model\":\"m\",\"hash_ids\":[$ids],\"max_tokens\":4}"
}
cached() { jq -r '.usage.prompt_tokens_details.cached_tokens'; }
r=$(req $A) && [ "$(cached <<<"$r")" = 0 ]
tap_result "A computes the prompt (nothing cached)" $? "$r"
p=$(in_ns "$NS" curl -s -w '\n%{http_code}' "$(mgmt $A)/v1/kv/push" -d "{\"peer\":\"127.0.0.1:9199\",\"hash_ids\":[$ids]}")
[ "$(tail -1 <<<"$p")" = 502 ] && jq -e '.state == "failed" and (.message | test("connect"))' \
	<<<"$(head -1 <<<"$p")" >/dev/null
tap_result "push to a dead peer: 502, failure reported" $? "$p"
p=$(in_ns "$NS" curl -s -w '\n%{http_code}' "$(mgmt $A)/v1/kv/push" -d "{\"peer\":\"127.0.0.1:9101\",\"hash_ids\":[$ids]}")
log "$(head -1 <<<"$p")"
[ "$(tail -1 <<<"$p")" = 200 ] && jq -e '.state == "done" and .transport == "tcp" and
	.policy == "auto" and .blocks == 64 and .bytes == 4194304 and
	(.choice | test("auto"))' <<<"$(head -1 <<<"$p")" >/dev/null
tap_result "A pushes 64 KV blocks (4 MiB) to B over tcp, verified" $? "$p"
r=$(req $B) && c=$(cached <<<"$r") && [ "$c" -ge 1008 ]
tap_result "B serves the prefix from the moved blocks (cached $c of 1024)" $? "$r"

# 3. receipts
rid=$(tr -d '\r' <"$T/h" | sed -n 's/^X-IDN-Receipt: //Ip')
in_ns "$NS" curl -s -f "$B$rid" >"$T/r.json"
tap_result "completion names its receipt ($rid), served" $? "$(cat "$T/h")"
[ "$(stat -c %a "$T/keys/b.key")" = 600 ]
tap_result "node key created with mode 0600" $?
out=$("$IDNCTL" receipt verify "$T/r.json")
tap_result "idnctl receipt verify: valid" $? "$out"
log "$out"
jq -r .body "$T/r.json" | jq -e '.node == 2 and .plan_generation == 17 and
	.verdict == "forward" and .cache.cached_tokens >= 1008 and .capability_version' >/dev/null
tap_result "receipt body: node, plan generation, verdict, cache usage" $? "$(cat "$T/r.json")"
kb=$(in_ns "$NS" curl -s $B/v1/agent/key | jq -r .pubkey)
ka=$(in_ns "$NS" curl -s $A/v1/agent/key | jq -r .pubkey)
"$IDNCTL" receipt verify - key "$kb" <"$T/r.json" >/dev/null
tap_result "verify from stdin, pinned to B's key" $?
out=$("$IDNCTL" receipt verify "$T/r.json" key "$ka" 2>&1)
[ $? -eq 1 ] && grep -q "not the expected" <<<"$out"
tap_result "pinned to A's key: exit 1" $? "$out"
n=$(stat -c %s "$T/r.json")
bad=0
for pos in 0 5 40 $((n / 3)) $((n / 2)) $((n - 140)) $((n - 3)) $((n - 2)); do
	cp "$T/r.json" "$T/t.json"
	b=$(od -An -tu1 -j "$pos" -N1 "$T/t.json" | tr -d ' ')
	printf "$(printf '\\%03o' $((b ^ 1)))" | dd of="$T/t.json" bs=1 seek="$pos" conv=notrunc status=none
	out=$("$IDNCTL" receipt verify "$T/t.json" 2>&1)
	rc=$?
	if [ $rc -ne 1 ] || ! grep -qiE "failed|malformed|altered|invalid" <<<"$out"; then
		bad=1
		log "byte $pos flipped: rc $rc: $out"
	fi
done
tap_result "flipped bytes: exit 1 with a clear message" $bad
log "$out"
in_ns "$NS" curl -s $A/v1/receipts >"$T/all.json"
"$IDNCTL" receipt verify "$T/all.json" >/dev/null && [ "$(wc -l <"$T/all.json")" -ge 1 ]
tap_result "GET /v1/receipts: all of A's receipts verify" $?

# 4. authentication of KV peers (--kv-key: a shared key, mode 0600)
(umask 077 && head -c 32 /dev/urandom >"$T/kv.key" && head -c 32 /dev/urandom >"$T/kv.open")
chmod 644 "$T/kv.open"
in_ns "$NS" "$AGENT" --insecure --node-id 8 --listen 127.0.0.1:8008 --key "$T/k8" --kv-key "$T/kv.open" \
	--kv-listen 127.0.0.1:9108 "${ENG[@]}" >"$T/open.log" 2>&1 &
pid=$!
bg_pid $pid
wait $pid
rc=$?
[ $rc -eq 1 ] && grep -q "kv key .*must be mode 0600" "$T/open.log"
tap_result "--kv-key readable by others: exit 1, says 0600" $? "rc $rc: $(cat "$T/open.log")"
in_ns "$NS" "$AGENT" --insecure --node-id 7 --listen 127.0.0.1:8007 --key "$T/k7" \
	--kv-listen 127.0.0.1:9107 "${ENG[@]}" >"$T/nokey.log" 2>&1 &
pid=$!
bg_pid $pid
wait $pid
rc=$?
[ $rc -eq 1 ] && grep -q -- "--kv-listen 127.0.0.1:9107 without --kv-key" "$T/nokey.log"
tap_result "--kv-listen without --kv-key or --kv-insecure: exit 1, says why" $? \
	"rc $rc: $(cat "$T/nokey.log")"
grep -q "WARNING: --kv-insecure" "$T/a.log" && grep -q "WARNING: --kv-insecure" "$T/b.log"
tap_result "--kv-insecure listeners warn in the log" $?
C=http://127.0.0.1:8002
D=http://127.0.0.1:8003
bg_ns "$NS" "$T/c.log" "$AGENT" --insecure --node-id 3 --listen 127.0.0.1:8002 --key "$T/keys/c.key" \
	--kv-key "$T/kv.key" --kv-transport auto "${ENG[@]}"
bg_ns "$NS" "$T/d.log" "$AGENT" --insecure --node-id 4 --listen 127.0.0.1:8003 --key "$T/keys/d.key" \
	--kv-listen 127.0.0.1:9103 --kv-key "$T/kv.key" --kv-transport auto "${ENG[@]}"
wait_listen "$NS" 8002 && wait_listen "$NS" 8003 && wait_listen "$NS" 9103 &&
	grep -q "kv peers authenticated with the key" "$T/d.log"
tap_result "two agents with a KV key up (said so)" $? "$(cat "$T/c.log" "$T/d.log")"
poll_log() {	# poll_log PATTERN FILE: up to 20 s
	for _ in $(seq 100); do
		grep -q "$1" "$2" && return 0
		sleep 0.2
	done
	return 1
}
push() {	# push FROM TO_PORT -> body + newline + HTTP code
	in_ns "$NS" curl -s -w '\n%{http_code}' "$(mgmt "$1")/v1/kv/push" \
		-d "{\"peer\":\"127.0.0.1:$2\",\"hash_ids\":[$ids],\"retries\":0}"
}
p=$(push $A 9103)
[ "$(tail -1 <<<"$p")" = 502 ] && jq -e '.state == "failed" and
	(.message | test("requires KV peer authentication"))' <<<"$(head -1 <<<"$p")" >/dev/null &&
	poll_log "refused: authentication failed" "$T/d.log"
tap_result "a peer without the key is refused (502; receiver logs the refusal)" $? \
	"$p $(cat "$T/d.log")"
r=$(req $D) && [ "$(cached <<<"$r")" = 0 ]
tap_result "nothing of the refused push reached D's cache" $? "$r"
r=$(req $C) && p=$(push $C 9103)
log "$(head -1 <<<"$p")"
[ "$(tail -1 <<<"$p")" = 200 ] && jq -e '.state == "done" and .transport == "tcp" and
	.blocks == 64' <<<"$(head -1 <<<"$p")" >/dev/null
tap_result "same key: C pushes 64 KV blocks to D, verified" $? "$p"
r=$(req $D) && c=$(cached <<<"$r") && [ "$c" -ge 1008 ]
tap_result "D serves the prefix pushed by C (cached $c of 1024)" $? "$r"
p=$(push $C 9101)
[ "$(tail -1 <<<"$p")" = 502 ] && jq -e '.message | test("does not authenticate KV peers")' \
	<<<"$(head -1 <<<"$p")" >/dev/null
tap_result "a sender with a key refuses a receiver without one" $? "$p"
tap_done
