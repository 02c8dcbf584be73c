#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# test_agent.sh - attacks on idn-agent (issue 11) replayed in a namespace
# of its own; each must be refused, and the refusal logged:
#   management on the inference port (orders, KV push, sleep/wake, LoRA):
#   403 before the body is read, the engine untouched; artifact paths
#   outside --artifact-dir (/etc/shadow, .., symlinks): 403, the same answer
#   whether the file exists or not; /v1/kv/push as a port scanner: 403,
#   nothing dialled; a 40-byte KV hello asking for 32 GiB: refused before
#   allocation; 1,050 idle KV handshakes: dropped after the hello deadline,
#   the API answers throughout; 200 held 8 MiB bodies: bounded memory;
#   oversized bodies: 413 at once; a KV listener without a key: the agent
#   refuses to start (authenticated by default); an unauthenticated KV hello
#   to an agent with --kv-key: refused before staging, logged. (The bounds
#   attacks run against an agent started with --kv-insecure, so that its
#   hello reaches the length checks, and its warning is checked too.)
# Every attack's TAP line starts "attack:" (counted by run.sh).
if [ -z "${IDN_TEST_UNSHARED:-}" ] && [ "$(id -u)" -eq 0 ]; then
	IDN_TEST_UNSHARED=1 exec unshare -m --propagation private "$0" "$@"
fi

source "$(dirname "$0")/../net/lib.sh"
HERE=$(cd "$(dirname "$0")" && pwd)

require_root
require_cmd ip jq nsenter curl python3 ss
AGENT=$BUILD/idn-agent
require_file "$AGENT"
probe_netns || skip_all "cannot create network namespaces"

make_tmpdir || exit 1
T=$TMPD
setup_ns NS || { tap_fail "netns"; tap_done; }
A=http://127.0.0.1:8000
M=http://127.0.0.1:9000	# management listener (default: loopback, port + 1000)
mkdir -p "$T/art" "$T/outside"
head -c 65536 /dev/urandom >"$T/art/w.bin"
head -c 65536 /dev/urandom >"$T/outside/secret.bin"
ln -s "$T/outside/secret.bin" "$T/art/link.bin"
ln -s "$T/outside" "$T/art/linkdir"

ENG=(--speed 50 --block-tokens 16 --kv-bytes-per-token 4096 --kv-capacity-tokens 16384)

# ---- a KV listener is authenticated by default
in_ns "$NS" timeout 20 "$AGENT" --insecure --node-id 5 --listen 127.0.0.1:8005 --key "$T/node5.key" \
	--kv-listen 127.0.0.1:9105 "${ENG[@]}" >"$T/nokey.log" 2>&1
rc=$?
tap_result "attack: a KV listener without --kv-key: the agent refuses to start (exit 1, says why)" \
	"$([ $rc = 1 ] && grep -q 'without --kv-key: KV peers are authenticated by default' \
	"$T/nokey.log"; echo $?)" "rc $rc: $(cat "$T/nokey.log")"
(umask 077 && head -c 32 /dev/urandom >"$T/kv.key")
bg_ns "$NS" "$T/keyed.log" "$AGENT" --insecure --node-id 6 --listen 127.0.0.1:8006 --key "$T/node6.key" \
	--kv-listen 127.0.0.1:9106 --kv-key "$T/kv.key" "${ENG[@]}"
KEYED_PID=$BG_PID
wait_listen "$NS" 9106
tap_result "an agent with --kv-key listens on :9106" $? "$(cat "$T/keyed.log")"
out=$(in_ns "$NS" python3 "$HERE/attack.py" kvhello 127.0.0.1 9106 65536 2>&1)
tap_result "attack: an unauthenticated KV hello to a keyed agent: refused (EACCES)" \
	"$([ "$out" = "status -13" ]; echo $?)" "got $out"
out=$(in_ns "$NS" python3 "$HERE/attack.py" kvhello 127.0.0.1 9106 $((32 << 30)) 2>&1)
tap_result "attack: an unauthenticated 32 GiB KV hello to a keyed agent: refused (EACCES)" \
	"$([ "$out" = "status -13" ]; echo $?)" "got $out"
tap_result "unauthenticated KV peers logged" "$(grep -q \
	'kv peer 127.0.0.1 port [0-9]* refused: authentication failed' "$T/keyed.log"; echo $?)" \
	"$(cat "$T/keyed.log")"
# a forged connection hand-off (POST /v1/pd/handoff: the keyed agent would
# rebuild a TCP connection to any address and answer there): refused
# without the KV key's MAC, nothing rebuilt; logged
ho='{"op":"prepare","id":7,"node":1,"t":'$(($(date +%s) * 1000))',"state":{},"request":"POST /v1/completions HTTP/1.1"}'
ho=$(jq -cn --arg p "$ho" '{payload: $p, mac: ("00" * 32)}')
c=$(in_ns "$NS" curl -s -o "$T/ho" -w '%{http_code}' -d "$ho" http://127.0.0.1:8006/v1/pd/handoff)
tap_result "attack: a connection hand-off with a forged MAC to a keyed agent: 403" \
	"$([ "$c" = 403 ] && grep -q 'not authenticated' "$T/ho"; echo $?)" "got $c $(cat "$T/ho")"
c=$(in_ns "$NS" curl -s -o "$T/ho" -w '%{http_code}' -d "$(jq -c 'del(.mac)' <<<"$ho")" \
	http://127.0.0.1:8006/v1/pd/handoff)
tap_result "attack: ... without a MAC: 400" "$([ "$c" = 400 ]; echo $?)" "got $c $(cat "$T/ho")"
tap_result "the forged hand-off logged" "$(grep -q 'connection hand-off with a bad MAC refused' \
	"$T/keyed.log"; echo $?)"
kill "$KEYED_PID" 2>/dev/null
wait "$KEYED_PID" 2>/dev/null

bg_ns "$NS" "$T/agent.log" "$AGENT" --insecure --node-id 1 --listen 127.0.0.1:8000 --key "$T/node.key" \
	--kv-listen 127.0.0.1:9100 --kv-insecure --artifact-dir "$T/art" \
	--kv-peers 127.0.0.1:9101 "${ENG[@]}"
AGENT_PID=$BG_PID
wait_listen "$NS" 8000 && wait_listen "$NS" 9000 && wait_listen "$NS" 9100
tap_result "agent up: inference :8000, management :9000 (loopback), KV :9100 (--kv-insecure)" $? \
	"$(cat "$T/agent.log")"
tap_result "--kv-insecure: a warning logged" "$(grep -q 'WARNING: --kv-insecure: the KV listener on 127.0.0.1:9100 accepts' \
	"$T/agent.log"; echo $?)"

code() {	# code URL [curl args]: HTTP code, body in $T/body
	local u=$1
	shift
	in_ns "$NS" curl -s -m 20 -o "$T/body" -w '%{http_code}' "$u" "$@"
}

# ---- management endpoints on the inference port
for ep in /v1/residency/load /v1/residency/evict /v1/kv/push /sleep /wake_up \
	/v1/engine/sleep /v1/engine/wake /v1/load_lora_adapter /v1/unload_lora_adapter; do
	c=$(code "$A$ep" -d '{"name":"x","path":"/etc/shadow","peer":"127.0.0.1:22","lora_name":"x","lora_path":"/etc"}')
	tap_result "attack: POST $ep on the inference port: 403" \
		"$([ "$c" = 403 ] && grep -q 'management endpoint' "$T/body"; echo $?)" "got $c $(cat "$T/body")"
done
c=$(code "$A/health")
s=$(in_ns "$NS" curl -s "$A/is_sleeping" | jq -r .is_sleeping)
tap_result "the engine is not asleep and /health 200 (the sleep was refused)" \
	"$([ "$c" = 200 ] && [ "$s" = false ]; echo $?)" "health $c, is_sleeping $s"
tap_result "refusal logged" "$(grep -q 'HTTP: management request POST .* on the inference port refused' \
	"$T/agent.log"; echo $?)"
c=$(code "$M/v1/completions" -d '{"prompt":"x","max_tokens":1}')
tap_result "inference POST on the management listener: 404" "$([ "$c" = 404 ]; echo $?)" "got $c"

# ---- artifact paths confined to --artifact-dir
load() { code "$M/v1/residency/load" -d "{\"name\":\"$1\",\"path\":\"$2\"}"; }
c=$(load ok "$T/art/w.bin")
tap_result "an artifact under --artifact-dir loads (200)" "$([ "$c" = 200 ]; echo $?)" "$c $(cat "$T/body")"
ref=
for case in "/etc/shadow:/etc/shadow (exists)" "/etc/no-such-file-$$:a missing file outside" \
	"$T/art/missing.bin:a missing file inside" "$T/art/../outside/secret.bin:.. out of the directory" \
	"$T/art/link.bin:a symlink to a file outside" "$T/art/linkdir/secret.bin:a symlinked directory" \
	"../outside/secret.bin:a relative .. path" "$T/art:the directory itself"; do
	path=${case%%:*} what=${case#*:}
	c=$(load x "$path")
	body=$(cat "$T/body")
	[ -z "$ref" ] && ref=$body
	tap_result "attack: artifact load of $what: 403, the same answer" \
		"$([ "$c" = 403 ] && [ "$body" = "$ref" ]; echo $?)" "got $c $body"
done
tap_result "path refusals logged" "$(grep -q 'artifact order for .* refused: not a regular file under' \
	"$T/agent.log"; echo $?)"

# ---- /v1/kv/push as a port scanner
in_ns "$NS" python3 "$HERE/attack.py" count 9555 4 >"$T/count.out" 2>&1 &
bg_pid $!
for _ in $(seq 50); do grep -q listening "$T/count.out" 2>/dev/null && break; sleep 0.1; done
c=$(code "$M/v1/kv/push" -d '{"peer":"127.0.0.1:9555","hash_ids":[1,2,3]}')
c2=$(code "$M/v1/kv/push" -d '{"peer":"10.255.255.1:22","hash_ids":[1]}')
for _ in $(seq 60); do grep -q connections "$T/count.out" && break; sleep 0.1; done
tap_result "attack: /v1/kv/push to an arbitrary host:port: 403, nothing dialled" \
	"$([ "$c" = 403 ] && [ "$c2" = 403 ] && grep -q 'connections 0' "$T/count.out"; echo $?)" \
	"got $c $c2, $(cat "$T/count.out")"
tap_result "refusal logged" "$(grep -q 'kv/push to .* refused: not in --kv-peers' "$T/agent.log"; echo $?)"

# ---- KV lengths from the wire
out=$(in_ns "$NS" python3 "$HERE/attack.py" kvhello 127.0.0.1 9100 $((32 << 30)) 2>&1)
tap_result "attack: a 40-byte KV hello asking for 32 GiB: refused (EMSGSIZE), nothing allocated" \
	"$([ "$out" = "status -90" ]; echo $?)" "got $out"
out=$(in_ns "$NS" python3 "$HERE/attack.py" kvhello 127.0.0.1 9100 $((512 << 20)) 2>&1)
tap_result "attack: a KV hello larger than the whole KV cache (512 MiB): refused" \
	"$([ "$out" = "status -90" ]; echo $?)" "got $out"
tap_result "hello refusals logged" "$(grep -q 'kv hello refused: transfer of 34359738368 bytes' \
	"$T/agent.log"; echo $?)"

# ---- 1,050 idle KV handshakes
rss0=$(awk '/VmRSS/ {print $2}' /proc/$AGENT_PID/status)
in_ns "$NS" python3 "$HERE/attack.py" hold 127.0.0.1 9100 1050 >"$T/idle.out" 2>&1 &
IDLE=$!
bg_pid $IDLE
for _ in $(seq 100); do [ -s "$T/idle.out" ] && break; sleep 0.1; done
ok=0
for _ in 1 2 3 4 5; do
	[ "$(code "$A/health")" = 200 ] && [ "$(code "$M/v1/residency/evict" -d '{"name":"none"}')" = 404 ] &&
		ok=$((ok + 1))
	sleep 0.3
done
threads=$(awk '/Threads/ {print $2}' /proc/$AGENT_PID/status)
log "idle handshakes: $(cat "$T/idle.out"); agent threads $threads"
tap_result "attack: 1,050 idle KV handshakes: the API answers throughout, threads bounded ($threads)" \
	"$([ $ok = 5 ] && [ "$threads" -lt 200 ]; echo $?)" "$ok/5 answered, $threads threads"
sleep 4	# past the 3 s hello deadline
open=$(in_ns "$NS" ss -Htn state established "( sport = :9100 )" | wc -l)
tap_result "idle KV peers dropped after the hello deadline ($open left)" "$([ "$open" -lt 70 ]; echo $?)"
tap_result "KV refusals logged (limit, deadline)" "$(grep -q 'kv peer refused: 64 receive streams already open' \
	"$T/agent.log" && grep -q 'kv peer dropped: no hello within 3000 ms' "$T/agent.log"; echo $?)"
kill $IDLE 2>/dev/null; wait $IDLE 2>/dev/null
out=$(in_ns "$NS" python3 "$HERE/attack.py" kvhello 127.0.0.1 9100 $((32 << 30)) 2>&1)
tap_result "KV listener answers again after the flood (the 32 GiB hello: refused)" \
	"$([ "$out" = "status -90" ]; echo $?)" "got $out"

# ---- 200 held 8 MiB bodies
c=$(code "$A/v1/completions" -H 'Content-Type: application/json' -H 'Content-Length: 104857600' \
	-X POST --data-binary @/dev/null)
tap_result "attack: a 100 MiB Content-Length: 413 before the body is read" "$([ "$c" = 413 ]; echo $?)" "got $c"
head -c 70000 /dev/zero | tr '\0' ' ' >"$T/big"
c=$(code "$M/v1/residency/load" --data-binary @"$T/big")
tap_result "attack: a 70 KB management body: 413 (64 KiB limit)" "$([ "$c" = 413 ]; echo $?)" "got $c"
rss1=$(awk '/VmRSS/ {print $2}' /proc/$AGENT_PID/status)
in_ns "$NS" python3 "$HERE/attack.py" slowbody 127.0.0.1 8000 200 8388608 /v1/completions \
	>"$T/slow.out" 2>&1 &
SLOW=$!
bg_pid $SLOW
for _ in $(seq 600); do [ -s "$T/slow.out" ] && break; sleep 0.1; done
rss2=$(awk '/VmRSS/ {print $2}' /proc/$AGENT_PID/status)
c=$(code "$A/health")
log "held bodies: $(cat "$T/slow.out"); agent RSS $((rss1 / 1024)) MB -> $((rss2 / 1024)) MB"
tap_result "attack: 200 held 8 MiB bodies: RSS grew $(( (rss2 - rss1) / 1024 )) MB (< 200), API answers" \
	"$([ $((rss2 - rss1)) -lt 204800 ] && [ "$c" = 200 ]; echo $?)" \
	"rss $rss1 -> $rss2 kB, health $c, $(cat "$T/slow.out")"
tap_result "body budget refusals logged" "$(grep -q 'request bodies in flight over 64 MiB' "$T/agent.log"; echo $?)"
kill $SLOW 2>/dev/null; wait $SLOW 2>/dev/null
log "agent RSS at start $((rss0 / 1024)) MB"

kill "$AGENT_PID" 2>/dev/null
wait "$AGENT_PID" 2>/dev/null
log_cmd grep -c . "$T/agent.log"
tap_done
