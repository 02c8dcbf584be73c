#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# testbed.sh - make eval's testbed mode: a trace slice through the real
# system, and the same slice simulated, compared.
#
#   client ns --c0-- r0  router ns (idn_xdp on r0..rN, idnd)  r1 --n1  node ns 1
#   idn_tbclient          VIP 10.99.0.1:8000                    ...    idn-agent +
#   (idn-stamp run:                                             rN --nN  its engine
#    every socket stamped)                                      (idn_decap)
#
# N agents (idn-agent, engine emulator at --speed X with the simulator's
# engine: idn_tbclient --agent-args) register with idnd, which places the
# capability on every node and compiles the plan into the router's maps;
# the agents' telemetry datagrams (--tele-ms) reach the router's dataplane.
# idn_tbclient replays the slice (arrivals at load rho on N nodes, / X) as
# streaming completions, one connection per request, each stamped with
# the descriptor the simulator's router sees (session token, size class),
# and measures TTFT at the client (first streamed token). Then the same
# slice with a keep-alive client (a connection pool per session; the
# dataplane decides once per connection). idn_eval simulates the slice
# with the same nodes, engine (at speed X), telemetry interval and
# capability. Prints (figures, "name value unit"):
#
#   eval_sim_vs_testbed_p90_err E %           |sim p90 - testbed p90| / testbed p90
#   eval_testbed_keepalive_p90_vs_conn R x    keep-alive p90 / per-request p90
#
# on stdout, and "# ..." lines with the measurements on stderr. Time constants of the
# capability (latency_us, slo_ttft_ms) are divided by X like the engine's,
# in both, so the testbed is the emulated system X times faster.
#
# Usage: O=build tools/eval/testbed.sh [--trace FILE] [--limit N] [--nodes N]
#          [--rho R] [--speed X] [--tele-ms MS] [--no-keepalive] [--as-released]
#          [--keep DIR]
# --keep DIR: the per-request files and logs are copied there. Requests
# that share a timestamp are spaced over the gap to the next one in both
# (ev_trace_spread(): the order they reach the engines is the trace's);
# --as-released replays the stamps as they are, where a batch's long
# prompts finish uploading after its short ones in the testbed only.
# Exit 0 done; 4 skipped ("# eval testbed: SKIP why" on stderr: not root,
# no namespaces, no XDP, ...); 1 failed.
if [ -z "${IDN_TEST_UNSHARED:-}" ] && [ "$(id -u)" -eq 0 ]; then
	IDN_TEST_UNSHARED=1 exec unshare -m --propagation private "$0" "$@"
fi
set -u

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT" || exit 1
# shellcheck source=../../selftests/net/lib.sh
source "$ROOT/selftests/net/lib.sh"

TRACE=selftests/data/mooncake_conversation_2000.jsonl.gz
[ -r ../shared/traces/mooncake_fast25_conversation_trace.jsonl ] &&
	TRACE=../shared/traces/mooncake_fast25_conversation_trace.jsonl
LIMIT=300 NODES=4 RHO=0.7 SPEED=2 TELE_MS=100 KEEPALIVE=1 KEEP= SPREAD=--spread
while [ $# -gt 0 ]; do
	case $1 in
	--trace) TRACE=$2; shift 2 ;;
	--limit) LIMIT=$2; shift 2 ;;
	--nodes) NODES=$2; shift 2 ;;
	--rho) RHO=$2; shift 2 ;;
	--speed) SPEED=$2; shift 2 ;;
	--tele-ms) TELE_MS=$2; shift 2 ;;
	--no-keepalive) KEEPALIVE=0; shift ;;
	--as-released) SPREAD=; shift ;;
	--keep) KEEP=$2; shift 2 ;;
	*) echo "usage: testbed.sh [--trace FILE] [--limit N] [--nodes N] [--rho R] [--speed X]" \
		"[--tele-ms MS] [--no-keepalive] [--as-released] [--keep DIR]" >&2; exit 2 ;;
	esac
done
[[ $NODES =~ ^[0-9]+$ ]] && [ "$NODES" -ge 1 ] && [ "$NODES" -le 16 ] ||
	{ echo "testbed.sh: --nodes 1..16" >&2; exit 2; }

skip() { echo "# eval testbed: SKIP $*" >&2; exit 4; }
die() { echo "# eval testbed: FAILED $*" >&2; exit 1; }
say() { echo "# testbed: $*" >&2; }

IDND=$BUILD/idnd AGENT=$BUILD/idn-agent CLIENT=$BUILD/tools/idn_tbclient EVAL=$BUILD/tools/idn_eval
[ "$(id -u)" -eq 0 ] || skip "needs root (network namespaces, XDP): sudo make eval"
for c in ip nsenter curl jq ethtool findmnt ss unshare; do
	command -v $c >/dev/null 2>&1 || skip "needs $c (tools/deps.sh)"
done
for f in "$IDND" "$AGENT" "$CLIENT" "$EVAL" "$IDNCTL" "$IDNSTAMP" "$BUILD/bpf/idn_pass.bpf.o" \
	"$BUILD/bpf/idn_steer.bpf.o" "$BUILD/bpf/idn_node.bpf.o"; do
	[ -e "$f" ] || skip "missing $f (make O=$O)"
done
[ -r "$TRACE" ] || skip "no trace $TRACE"
probe_netns || skip "cannot create network namespaces"
probe_bpffs || skip "cannot mount bpffs"
probe_cgroup2 || skip "no writable cgroup2 (idn-stamp needs one)"

APORT=8000 TELE=7777 API=http://127.0.0.1:8787 VIP=10.99.0.1 CLS=1
# the capability, its time constants / speed (idnd's defaults 10 ms, 2 s)
CAPJ=$(awk -v x="$SPEED" 'BEGIN { l = int(10000 / x + 0.5); s = int(2000 / x + 0.5);
	if (s < 1) s = 1;
	printf "{\"class\":1,\"name\":\"llama-3.1-8b-instruct\",\"latency_us\":%d,\"slo_ttft_ms\":%d,\"resources\":{\"mem_gb\":1}}", l, s }')
ENG=$("$CLIENT" --agent-args --speed "$SPEED") || die "idn_tbclient --agent-args"

# ---- namespaces: idntb-<role>-<random>, removed at exit (lib.sh cleanup)
tb_ns() {	# tb_ns VAR ROLE
	local name
	name="idntb-$2-$(mktemp -u XXXXXX)"
	ip netns add "$name" || return 1
	_ns_list+=("$name")
	ip -n "$name" link set lo up
	eval "$1=$name"
}
_sysctl() { in_ns "$1" sysctl -qw "${@:2}" >/dev/null; }
make_tmpdir || die "mktemp"
PIN=$TMPD/bpf
make_bpffs "$PIN" || skip "cannot mount bpffs"
mkdir -p "$PIN/rtr"
ctl() { in_ns "$RTR" "$IDNCTL" -P "$PIN/rtr" "$@"; }
tb_ns CLI cli && tb_ns RTR rtr || die "ip netns add"
veth_pair "$CLI" c0 "$RTR" r0 || die "veth"
ip -n "$CLI" addr add 10.10.0.2/24 dev c0
ip -n "$RTR" addr add 10.10.0.1/24 dev r0
ip -n "$CLI" route add default via 10.10.0.1
in_ns "$CLI" ethtool -K c0 tx off >/dev/null 2>&1	# XDP and partial checksums
ip -n "$RTR" addr add 10.30.0.1/32 dev lo
_sysctl "$RTR" net.ipv4.ip_forward=1 net.ipv4.conf.all.accept_local=1 \
	net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0 \
	net.ipv4.conf.default.accept_local=1 net.ipv4.conf.r0.rp_filter=0
declare -a NODE
for ((i = 1; i <= NODES; i++)); do
	tb_ns ns "n$i" || die "ip netns add"
	NODE[$i]=$ns
	veth_pair "$RTR" "r$i" "$ns" "n$i" mtu 1600 || die "veth"
	ip -n "$RTR" addr add "10.20.$i.1/24" dev "r$i"
	ip -n "$ns" addr add "10.20.$i.2/24" dev "n$i"
	ip -n "$ns" route add default via "10.20.$i.1"
	ip -n "$ns" addr add "$VIP/32" dev lo
	_sysctl "$ns" net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0 \
		net.ipv4.conf.all.accept_local=1 "net.ipv4.conf.n$i.rp_filter=0"
	ip -n "$RTR" neigh replace "10.20.$i.2" lladdr "$(mac_of "$ns" "n$i")" dev "r$i" nud permanent
	_sysctl "$RTR" "net.ipv4.conf.r$i.rp_filter=0" "net.ipv4.conf.r$i.accept_local=1"
done
ip -n "$RTR" neigh replace 10.10.0.2 lladdr "$(mac_of "$CLI" c0)" dev r0 nud permanent
say "namespaces $CLI $RTR ${NODE[*]}"

# ---- dataplane: steering on r0 (clients) and r1..rN (telemetry), decap on nodes
xdp_pass() { ip -n "$1" link set dev "$2" xdpdrv obj "$BUILD/bpf/idn_pass.bpf.o" sec xdp; }
ctl dp attach dev r0 mode xdp >/dev/null 2>"$TMPD/attach.err" ||
	skip "no XDP here: $(head -n 1 "$TMPD/attach.err")"
on_cleanup "ctl dp detach dev r0"
xdp_pass "$CLI" c0 || die "XDP_PASS on c0"
for ((i = 1; i <= NODES; i++)); do
	ctl dp attach dev "r$i" mode xdp >/dev/null || die "dp attach r$i"
	on_cleanup "ctl dp detach dev r$i"
	mkdir -p "$PIN/node$i"
	xdp_pass "${NODE[$i]}" "n$i" || die "XDP_PASS on n$i"
	in_ns "${NODE[$i]}" "$IDNCTL" -P "$PIN/node$i" dp decap attach dev "n$i" >/dev/null ||
		die "decap attach n$i"
	on_cleanup "in_ns ${NODE[$i]} $IDNCTL -P $PIN/node$i dp decap detach dev n$i"
done
ctl dp set src4 10.30.0.1 telemetry on port $TELE >/dev/null || die "dp set"

# ---- controller, agents, capability, placement, VIP
bg_ns "$RTR" "$TMPD/idnd.log" "$IDND" --insecure --enrol open -d "$TMPD/idnd.db" -l 0.0.0.0 -p 8787 -P "$PIN/rtr" -t 3000
IDND_PID=$BG_PID
for _ in $(seq 100); do in_ns "$RTR" curl -s -o /dev/null $API/v1/status && break; sleep 0.05; done
kill -0 $IDND_PID 2>/dev/null || die "idnd did not start: $(head -n 3 "$TMPD/idnd.log")"
api() { in_ns "$RTR" curl -s -m 5 "$@"; }
for ((i = 1; i <= NODES; i++)); do
	# shellcheck disable=SC2086
	bg_ns "${NODE[$i]}" "$TMPD/agent$i.log" "$AGENT" --insecure --node-id $i --addr4 "10.20.$i.2" \
		--region $i --net-us 0 --controller "http://10.20.$i.1:8787" --hb-ms 1000 \
		--telemetry "10.20.$i.1:$TELE" --tele-ms "$TELE_MS" --listen "0.0.0.0:$APORT" \
		--mgmt-listen "10.20.$i.2:9000" --model llama-3.1-8b-instruct --key "$TMPD/node$i.key" \
		--artifact-dir "$TMPD" $ENG
done
up=0
for _ in $(seq 200); do
	up=$(api $API/v1/nodes | jq '[.[] | select(.state == "up")] | length' 2>/dev/null)
	[ "${up:-0}" = "$NODES" ] && break
	sleep 0.05
done
[ "${up:-0}" = "$NODES" ] || die "$up of $NODES agents registered: $(tail -n 3 "$TMPD"/agent*.log "$TMPD/idnd.log")"
code=$(api -o /dev/null -w '%{http_code}' -d "$CAPJ" $API/v1/caps)
[ "$code" = 201 ] || [ "$code" = 200 ] || die "POST /v1/caps: $code: $(tail -n 3 "$TMPD/idnd.log")"
for ((i = 1; i <= NODES; i++)); do	# demand in every node's region: a replica each
	api -o /dev/null -d "{\"cap\":$((CLS * 256)),\"region\":$i,\"rps\":100}" $API/v1/demand
done
api -o /dev/null -d '{}' $API/v1/placement/solve
placed=$(api $API/v1/placement | jq "[.[] | select(.cap == $((CLS * 256)))] | length")
[ "$placed" = "$NODES" ] || die "the capability is placed on $placed of $NODES nodes"
for _ in $(seq 50); do
	nc=$(ctl -j plan show 2>/dev/null | jq '[.. | objects | select(has("candidates")) |
		.candidates | length] | max // 0' 2>/dev/null)
	[ "${nc:-0}" = "$NODES" ] && break
	sleep 0.1
done
[ "${nc:-0}" = "$NODES" ] || die "no plan over the $NODES nodes"
ctl vip add $VIP port $APORT proto tcp cap $CLS/0 tier 0 >/dev/null || die "vip add"
say "$NODES nodes up, capability $CLS/0 on each, plan compiled; agents: $ENG --tele-ms $TELE_MS"
say "capability $CAPJ"

# ---- the replays: a connection per request, then keep-alive per session
replay() {	# replay NAME [client options...]; sets SUM
	local name=$1
	shift
	ctl stats show >"$TMPD/stats0.$name" 2>&1
	in_ns "$CLI" "$IDNSTAMP" run cap $CLS/0 tier 0 port $APORT pin "$PIN" -- \
		"$CLIENT" --trace "$TRACE" --limit "$LIMIT" --nodes "$NODES" --rho "$RHO" \
		--speed "$SPEED" --addr $VIP --port $APORT --pin "$PIN" --out "$TMPD/$name.tsv" \
		$SPREAD "$@" >"$TMPD/$name.out" 2>"$TMPD/$name.err" || {
		cat "$TMPD/$name.err" >&2
		die "idn_tbclient ($name) failed"
	}
	SUM=$(grep '^# tb ' "$TMPD/$name.out")
	[ -n "$SUM" ] || die "idn_tbclient ($name): no summary: $(tail -n 3 "$TMPD/$name.err")"
	echo "$SUM" >&2
	ctl stats show >"$TMPD/stats1.$name" 2>&1
}
field() { awk -v k="$2" '{ for (i = 1; i < NF; i++) if ($i == k) { print $(i + 1); exit } }' <<<"$1"; }
t_start=$(date +%s)
replay conn
TB=$SUM
if [ "$KEEPALIVE" = 1 ]; then
	# other prompt text and tokens (salt): nothing cached or remembered from the first run
	replay keepalive --keepalive --salt 0x5a17
	KA=$SUM
fi
say "replays took $(($(date +%s) - t_start)) s"

# ---- the same slice simulated: same nodes, engine at the same speed, telemetry, capability
SIM=$("$EVAL" --trace "conv=$TRACE" --limit "$LIMIT" --nodes "$NODES" --rho "$RHO" \
	--policies idn --tele-ms "$TELE_MS" --cap "$CAPJ" --speed "$SPEED" --summary \
	--requests "$TMPD/sim.tsv" $SPREAD 2>"$TMPD/sim.err" |
	grep '^# sim .* policy idn nodes ') || die "idn_eval: $(cat "$TMPD/sim.err")"
echo "$SIM" >&2
tb90=$(field "$TB" p90_s) sim90=$(field "$SIM" p90_s)
n=$(field "$TB" requests) ok=$(field "$TB" ok)
[ "$ok" = "$n" ] || say "WARNING: $((n - ok)) of $n requests got no complete answer (see $TMPD/conn.tsv)"
awk -v s="$sim90" -v t="$tb90" -v x="$SPEED" 'BEGIN {
	printf "# testbed: TTFT p90 testbed %.4f s, simulated %.4f s (x %g: %.3f / %.3f s emulated)\n",
		t, s, x, t * x, s * x > "/dev/stderr"
	if (t > 0) printf "eval_sim_vs_testbed_p90_err %.1f %%\n", (s > t ? s - t : t - s) / t * 100
	else printf "eval_sim_vs_testbed_p90_err inf %%\n" }'
if [ "$KEEPALIVE" = 1 ]; then
	ka90=$(field "$KA" p90_s)
	awk -v k="$ka90" -v t="$tb90" 'BEGIN {
		printf "# testbed: keep-alive client TTFT p90 %.4f s vs a connection per request %.4f s\n",
			k, t > "/dev/stderr"
		if (t > 0) printf "eval_testbed_keepalive_p90_vs_conn %.3f x\n", k / t
		else printf "eval_testbed_keepalive_p90_vs_conn inf x\n" }'
	# the requests that went over a kept connection, against the same ones routed afresh
	awk 'FNR == 1 { f++ } /^#/ { next } f == 1 { c[$1] = $3 } f == 2 && $9 == 1 && $NF == "ok" {
		n++; k += $4 > 0 ? $3 : 0; a += c[$1]; if ($3 > c[$1] + 500) w++ }
		END { if (n) printf "# testbed: %d requests reused a session'"'"'s connection: mean TTFT %.0f ms" \
			" (%.0f ms on a connection of their own in the first run), %d over 0.5 s worse\n",
			n, k / n, a / n, w > "/dev/stderr" }' "$TMPD/conn.tsv" "$TMPD/keepalive.tsv"
fi
if [ -n "$KEEP" ]; then
	mkdir -p "$KEEP" && rm -f "$KEEP"/*.tsv "$KEEP"/*.out &&
		cp "$TMPD"/*.tsv "$TMPD"/*.out "$TMPD"/*.log "$TMPD"/stats* "$KEEP"/ 2>/dev/null
	echo "$SIM" >"$KEEP/sim.out"
fi
exit 0
