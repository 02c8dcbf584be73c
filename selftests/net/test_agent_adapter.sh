#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# test_agent_adapter.sh - the real-engine adapter (agent/adapter.c) against
# the emulator's vLLM endpoints, in a private namespace:
#   E  idn-agent with the emulator (the "engine": vLLM API, /metrics,
#      /v1/load_lora_adapter, /sleep, /wake_up, /is_sleeping)
#   A  idn-agent --no-engine --engine-url http://E, heartbeating to a stub
#      controller (records the bodies)
#   M  a stub engine whose /metrics is malformed, managed by agent B
# Checks: E's load (running/waiting, pending tokens) flows into A's
# /v1/agent, /metrics and heartbeats; LoRA load/unload through A's
# residency orders round-trips on E (listed by /v1/models, twice -> 409,
# unknown -> 404); sleep/wake through A (E refuses completions asleep,
# /is_sleeping); E killed -> A's /health 503 with the reason, heartbeats
# stop, LoRA orders 502; malformed metrics counted, B keeps running;
# completions passed through agent P are its pending prefill (the ledger)
# in /v1/agent and in its telemetry datagrams, at the telemetry rate.
# TAP output; exit 4 when it cannot run.
source "$(dirname "$0")/lib.sh"

require_root
require_cmd ip jq nsenter curl ss python3
AGENT=$BUILD/idn-agent
require_file "$AGENT"
probe_netns || skip_all "cannot create network namespaces"
make_tmpdir || exit 1
T=$TMPD
setup_ns NS || { tap_fail "netns"; tap_done; }

E=http://127.0.0.1:8100
A=http://127.0.0.1:8101
B=http://127.0.0.1:8102
# management listeners (loopback, port + 1000): orders, LoRA, sleep/wake
EM=http://127.0.0.1:9100
AM=http://127.0.0.1:9101

# stub: controller (POST /v1/nodes, heartbeats appended to $T/hb) and a
# broken engine (GET /health ok, GET /metrics malformed)
cat >"$T/stub.py" <<'EOF'
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
HB = sys.argv[2]
BAD = (b"# HELP vllm:num_requests_running x\n"
       b"vllm:num_requests_running{model_name=\"m\"} 3\n"
       b"vllm:num_requests_waiting{model_name=\"m\" 5\n"
       b"this is not prometheus\n"
       b"vllm:kv_cache_usage_perc{model_name=\"m\"} banana\n"
       b"vllm:num_requests_waiting{model_name=\"m\"} -7\n"
       b"{}{}{} 1\n" + b"x" * 3000 + b" 1\n")
class H(BaseHTTPRequestHandler):
    def log_message(self, *a):
        pass
    def reply(self, code, body):
        self.send_response(code)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def do_GET(self):
        if self.path == "/metrics":
            self.reply(200, BAD)
        elif self.path == "/health":
            self.reply(200, b"")
        else:
            self.reply(404, b"{}")
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        if self.path.split("?", 1)[0].endswith("/heartbeat"):	# signed: ?idn_sig=...
            with open(HB, "ab") as f:
                f.write(body + b"\n")
        self.reply(200, b"{}")
ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
EOF
bg_ns "$NS" "$T/stub.log" python3 "$T/stub.py" 8190 "$T/hb"
bg_ns "$NS" "$T/e.log" "$AGENT" --insecure --node-id 1 --listen 127.0.0.1:8100 --key "$T/k1" \
	--speed 1 --max-seqs 2 --block-tokens 16
EPID=$BG_PID
bg_ns "$NS" "$T/a.log" "$AGENT" --insecure --node-id 2 --listen 127.0.0.1:8101 --key "$T/k2" \
	--no-engine --engine-url $E --engine-mgmt-url $EM --scrape-ms 100 --max-seqs 2 \
	--controller http://127.0.0.1:8190 --addr4 10.0.0.2 --hb-ms 200
bg_ns "$NS" "$T/b.log" "$AGENT" --insecure --node-id 3 --listen 127.0.0.1:8102 --key "$T/k3" \
	--no-engine --engine-url http://127.0.0.1:8190/ --scrape-ms 100
BPID=$BG_PID
wait_listen "$NS" 8100 && wait_listen "$NS" 8101 && wait_listen "$NS" 8102 &&
	wait_listen "$NS" 8190
tap_result "emulator, adapter agents and stub up" $? \
	"$(cat "$T/e.log" "$T/a.log" "$T/b.log" "$T/stub.log")"
grep -q "managing engine $E" "$T/a.log"
tap_result "adapter mode said at start" $? "$(cat "$T/a.log")"

get() { in_ns "$NS" curl -s -m 10 "$@"; }
code() { in_ns "$NS" curl -s -m 60 -o "$T/body" -w '%{http_code}' "$@"; }
# poll CMD...: true within 10 s
poll() { local i; for ((i = 0; i < 100; i++)); do "$@" && return 0; sleep 0.1; done; return 1; }

# 1. metrics flow: 6 long requests on E (2 run at a time, the rest wait;
# each decodes 400 tokens, ~2.3 s, so requests wait for ~5 s)
for i in 1 2 3 4 5 6; do
	in_ns "$NS" curl -s -m 90 $E/v1/completions \
		-d "{\"prompt\":\"w$i a b c\",\"max_tokens\":400}" >/dev/null &
	bg_pid $!
done
busy() {
	get $A/v1/agent >"$T/ag.json" &&
		jq -e '.engine.metrics.running == 2 and .engine.metrics.waiting >= 2 and
		       .load.queue >= 3 and .load.load == 1000 and .load.pending_tokens > 0' \
			"$T/ag.json" >/dev/null
}
poll busy
tap_result "E's running/waiting scraped by A" $? "$(cat "$T/ag.json")"
jq -e '.load.queue >= 3 and .load.load == 1000 and .load.pending_tokens > 0' "$T/ag.json" >/dev/null
tap_result "A's load: queued, saturated, pending prefill tokens" $? "$(jq -c .load "$T/ag.json")"
get $A/metrics >"$T/am.txt"
grep -q '^idn_agent_requests_running{.*} 2$' "$T/am.txt" &&
	grep -q '^idn_agent_requests_waiting{.*} [1-9]' "$T/am.txt" &&
	grep -q '^idn_agent_engine_up{.*} 1$' "$T/am.txt"
tap_result "A's /metrics carry E's figures and engine_up 1" $? "$(grep -v '^#' "$T/am.txt")"
hb_busy() { [ -s "$T/hb" ] && jq -e 'select(.queue >= 3 and .load == 1000)' "$T/hb" | grep -q .; }
poll hb_busy
tap_result "A's heartbeat carries E's queue and load" $? "$(tail -n2 "$T/hb" 2>/dev/null)"

# 2. LoRA adapters through A's residency orders
mkdir -p "$T/lora-sql"
echo '{"r": 8}' >"$T/lora-sql/adapter_config.json"
c=$(code $AM/v1/residency/load -d "{\"name\":\"sql\",\"path\":\"$T/lora-sql\",\"cap\":2049}")
[ "$c" = 200 ] && jq -e '.lora_adapters[0].name == "sql"' "$T/body" >/dev/null
tap_result "LoRA load order (a directory) -> 200, listed by A" $? "$c $(cat "$T/body")"
get $E/v1/models | jq -e '[.data[].id] | index("sql") != null' >/dev/null
tap_result "E lists the adapter in /v1/models" $? "$(get $E/v1/models)"
c=$(code $EM/v1/load_lora_adapter -d "{\"lora_name\":\"sql\",\"lora_path\":\"$T/lora-sql\"}")
[ "$c" = 400 ] && grep -q "already been loaded" "$T/body"
tap_result "E: loading it twice -> 400 already loaded" $? "$c $(cat "$T/body")"
c=$(code $AM/v1/residency/load -d "{\"name\":\"sql\",\"path\":\"$T/lora-sql\",\"kind\":\"adapter\"}")
[ "$c" = 409 ]
tap_result "A: the same order again -> 409" $? "$c $(cat "$T/body")"
c=$(code $AM/v1/residency/load -d "{\"name\":\"nope\",\"path\":\"$T/missing\",\"kind\":\"adapter\"}")
[ "$c" = 400 ] && grep -q "No adapter found" "$T/body"
tap_result "A: adapter with a missing path -> 400 with E's reason" $? "$c $(cat "$T/body")"
hb_res() { tail -n1 "$T/hb" | jq -e '.resident | index(2049) != null' >/dev/null; }
poll hb_res
tap_result "heartbeat lists the adapter's capability" $? "$(tail -n1 "$T/hb")"
c=$(code $AM/v1/residency/evict -d '{"name":"sql"}')
[ "$c" = 200 ] && jq -e '.lora_adapters == []' "$T/body" >/dev/null &&
	get $E/v1/models | jq -e '[.data[].id] | index("sql") == null' >/dev/null
tap_result "evict order -> unloaded on E" $? "$c $(cat "$T/body")"
c=$(code $EM/v1/unload_lora_adapter -d '{"lora_name":"sql"}')
[ "$c" = 404 ]
tap_result "E: unloading an unknown adapter -> 404" $? "$c $(cat "$T/body")"

# 3. sleep / wake through A
c=$(code $AM/v1/engine/sleep -d '{"level":1}')
[ "$c" = 200 ] && get $E/is_sleeping | jq -e '.is_sleeping == true' >/dev/null
tap_result "sleep via A -> E is_sleeping true" $? "$c $(cat "$T/body")"
c=$(code $E/v1/completions -d '{"prompt":"x","max_tokens":1}')
[ "$c" = 503 ] && grep -q sleeping "$T/body"
tap_result "E refuses completions while asleep (503)" $? "$c $(cat "$T/body")"
asleep() { get $A/v1/agent | jq -e '.engine.sleeping == true' >/dev/null; }
poll asleep
tap_result "A reports the engine asleep" $?
c=$(code -X POST $AM/v1/engine/wake)
[ "$c" = 200 ] && get $E/is_sleeping | jq -e '.is_sleeping == false' >/dev/null &&
	[ "$(code $E/v1/completions -d '{"prompt":"x","max_tokens":1}')" = 200 ]
tap_result "wake via A -> E serves again" $? "$c $(cat "$T/body")"

# 4. malformed metrics (B manages the stub)
bad() { get $B/metrics | grep -q '^idn_agent_engine_metrics_malformed_total{.*} [1-9]'; }
poll bad
tap_result "malformed /metrics lines counted" $? "$(get $B/metrics | grep engine_)"
get $B/v1/agent >"$T/b.json"
jq -e '.engine.up == true and .engine.metrics.running == 3 and (.engine.error | test("malformed"))' \
	"$T/b.json" >/dev/null && kill -0 "$BPID"
tap_result "B alive, good lines used, the error says malformed" $? "$(jq -c .engine "$T/b.json")"

# 4b. requests passed through an agent (P: --no-engine --engine-url E,
# telemetry every 100 ms to a UDP listener): the prompt tokens it passed
# and E has not prefilled are P's pending tokens, in /v1/agent and in every
# datagram; E is busy with 2 long requests, so 3 passed ones wait
cat >"$T/udp.py" <<'EOF'
import socket, struct, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", int(sys.argv[1])))
while True:
    m = s.recv(64)
    if len(m) >= 28:
        with open(sys.argv[2], "a") as f:
            f.write("%d %d\n" % struct.unpack(">II", m[16:24]))
EOF
: >"$T/tele"
bg_ns "$NS" "$T/udp.log" python3 "$T/udp.py" 8191 "$T/tele"
bg_ns "$NS" "$T/p.log" "$AGENT" --insecure --node-id 4 --listen 127.0.0.1:8103 --key "$T/k4" \
	--no-engine --engine-url $E --scrape-ms 100 --telemetry 127.0.0.1:8191 --tele-ms 100 \
	--addr4 127.0.0.1
P=http://127.0.0.1:8103
wait_listen "$NS" 8103
tap_result "passing agent P up" $? "$(cat "$T/p.log")"
for i in 1 2; do
	in_ns "$NS" curl -s -m 90 $E/v1/completions \
		-d "{\"prompt\":\"long$i\",\"max_tokens\":400}" >/dev/null &
	bg_pid $!
done
e_busy() { get $E/metrics | grep -q '^idn_agent_requests_running{.*} 2$'; }
poll e_busy
for i in 1 2 3; do
	in_ns "$NS" curl -s -m 90 -o "$T/pass$i" $P/v1/completions \
		-d "{\"prompt\":\"p$i\",\"input_length\":4000,\"max_tokens\":2}" &
	bg_pid $!
done
waiting() {
	get $P/v1/agent >"$T/p.json" &&
		jq -e '.engine.passed == 3 and .load.pending_tokens == 12000' "$T/p.json" >/dev/null
}
poll waiting
tap_result "P's pending tokens = the 3 passed prompts waiting on E (3 x 4000)" $? \
	"$(jq -c '{load, passed: .engine.passed, out: .engine.prefill_outstanding}' "$T/p.json")"
tele_12k() { [ -s "$T/tele" ] && grep -q ' 12000$' "$T/tele"; }	# any datagram: E may prefill them soon after
poll tele_12k
tap_result "P's telemetry datagrams carry them" $? "$(tail -n3 "$T/tele" 2>/dev/null)"
n=$(wc -l <"$T/tele")
sleep 1
m=$(wc -l <"$T/tele")
[ $((m - n)) -ge 5 ]
tap_result "datagrams at the telemetry rate (100 ms), not the scrape's" $? "$n -> $m in 1 s"
drained() {
	get $P/v1/agent >"$T/p.json" &&
		jq -e '.load.pending_tokens == 0 and .engine.passed == 3' "$T/p.json" >/dev/null
}
poll drained || poll drained	# up to 20 s: the long ones end, the passed ones prefill
tap_result "prefilled on E: P's pending back to 0" $? "$(jq -c .load "$T/p.json")"
tele_0() { tail -n1 "$T/tele" | grep -q ' 0$'; }
poll tele_0
tap_result "and in its datagrams" $? "$(tail -n2 "$T/tele")"
pass_ok() { [ -s "$T/pass3" ] && jq -e '.usage.prompt_tokens == 4000' "$T/pass3" >/dev/null; }
poll pass_ok
tap_result "the passed request's answer comes back from E" $? "$(cat "$T/pass3" 2>/dev/null)"

# 5. engine down
kill "$EPID"
wait "$EPID" 2>/dev/null
down() { [ "$(code $A/health)" = 503 ]; }
poll down
tap_result "E killed -> A's /health 503" $? "$(cat "$T/body")"
grep -q "down: .*Couldn't connect\|down: .*refused" "$T/body"
tap_result "the reason is said" $? "$(cat "$T/body")"
sleep 0.5	# a heartbeat already on its way when the scrape failed
n1=$(wc -l <"$T/hb")
sleep 1
n2=$(wc -l <"$T/hb")
[ "$n1" = "$n2" ]
tap_result "no heartbeats while the engine is down" $? "$n1 -> $n2"
c=$(code $AM/v1/residency/load -d "{\"name\":\"x\",\"path\":\"$T/lora-sql\"}")
[ "$c" = 502 ]
tap_result "LoRA order with the engine down -> 502" $? "$c $(cat "$T/body")"
get $A/metrics | grep -q '^idn_agent_engine_up{.*} 0$'
tap_result "engine_up 0" $?

tap_done
