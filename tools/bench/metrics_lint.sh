#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# metrics_lint.sh - `make bench` mode metrics: the three Prometheus exports
# of a running system checked by `promtool check metrics` (Debian's
# prometheus package):
#   idnd          GET /metrics (a node and a capability placed, heartbeats)
#   idn-agent     GET /metrics (emulator, registered with that idnd, a
#                 completion served; model name with a quote, a backslash
#                 and a newline: the label escaping under test)
#   dataplane     idnctl stats prometheus (the XDP program attached, plans
#                 compiled by idnd, one SYN through it)
# Prints metrics_lint_errors (the problems promtool reports over all three;
# target 0) and metrics_lint_families (the families checked). Runs in a
# private network and mount namespace (its own bpffs), all on loopback
# and a veth of its own. Exit 0, 1 on failure, 4 when it cannot run.
set -euo pipefail
if [ -z "${IDN_ML_UNSHARED:-}" ]; then
	IDN_ML_UNSHARED=1 exec unshare -n -m --propagation private "$0" "$@"
fi
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
O=${O:-build}
case "$O" in /*) ;; *) O="$ROOT/$O" ;; esac
if ! command -v promtool >/dev/null; then
	echo "# skipped: no promtool (Debian's prometheus package, tools/deps.sh)" >&2
	exit 4
fi

d=$(mktemp -d /tmp/idn-mlint.XXXXXX)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
	umount "$d/bpf" 2>/dev/null || true
	rm -rf "$d"
}
trap cleanup EXIT
P=$d/bpf/idn
mkdir -p "$d/bpf" && mount -t bpf bpf "$d/bpf"
ip link set lo up
ip link add mlidn0 type veth peer name mlidn1
ip link set mlidn0 up && ip link set mlidn1 up
"$O/idnctl" -P "$P" dp attach dev mlidn0 >&2

U=http://127.0.0.1:18931
"$O/idnd" --insecure --enrol open -d "$d/idnd.db" -p 18931 -P "$P" -t 60000 2>"$d/idnd.log" &
pids+=($!)
post() { curl -s -m 5 -o /dev/null -w '%{http_code}' -X POST --data-binary "$2" "$U$1"; }
for _ in $(seq 100); do curl -sf -o /dev/null $U/readyz && break; sleep 0.05; done
post /v1/nodes '{"id":2,"addr4":"10.98.0.2","mem_gb":80,"region":0,"trust":6}' >/dev/null
post /v1/caps '{"class":7,"name":"chat","resources":{"mem_gb":30}}' >/dev/null
post /v1/demand '{"cap":1792,"region":0,"rps":100}' >/dev/null
post /v1/nodes/2/heartbeat '{"load":100,"queue":3,"pending_tokens":500,"kv_use":250}' >/dev/null
[ "$(post /v1/placement/solve '{}')" = 200 ] || { echo "metrics_lint: solve failed" >&2; exit 1; }

model=$(printf 'chat "v1" \\ x\ny')
"$O/idn-agent" --insecure --node-id 1 --addr4 10.98.0.1 --trust 5 --key "$d/node.key" \
	--controller $U --hb-ms 100 --listen 127.0.0.1:18000 --mgmt-listen 127.0.0.1:19000 \
	--speed 50 --model "$model" --artifact-dir "$d" 2>"$d/agent.log" &
pids+=($!)
for _ in $(seq 100); do curl -sf -o /dev/null http://127.0.0.1:18000/readyz && break; sleep 0.05; done
curl -s -m 10 -o /dev/null http://127.0.0.1:18000/v1/completions \
	-d '{"prompt":"one two three","max_tokens":2}' || true

# one SYN to 10.0.0.1:80 through the attached program (counted per verdict)
python3 - "$d/syn.bin" <<'PY'
import struct, sys
eth = b"\x02" * 6 + b"\x04" * 6 + b"\x08\x00"
tcp = struct.pack("!HHIIBBHHH", 1234, 80, 1, 0, 5 << 4, 0x02, 65535, 0, 0)
ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp), 1, 0, 64, 6, 0,
                 bytes([192, 168, 1, 1]), bytes([10, 0, 0, 1]))
s = sum(struct.unpack("!10H", ip))
s = (s & 0xffff) + (s >> 16)
ip = ip[:10] + struct.pack("!H", ~((s & 0xffff) + (s >> 16)) & 0xffff) + ip[12:]
open(sys.argv[1], "wb").write(eth + ip + tcp)
PY
bpftool prog run pinned "$P/prog_xdp" data_in "$d/syn.bin" repeat 1 >/dev/null 2>&1 || true

curl -s -m 5 $U/metrics >"$d/idnd.prom"
curl -s -m 5 http://127.0.0.1:18000/metrics >"$d/agent.prom"
"$O/idnctl" -P "$P" stats prometheus >"$d/dp.prom"

errors=0 families=0
for x in idnd agent dp; do
	f=$d/$x.prom
	n=$(grep -c '^# TYPE ' "$f" || true)
	if [ "$n" -eq 0 ]; then
		echo "metrics_lint: $x: empty export" >&2
		exit 1
	fi
	families=$((families + n))
	st=0
	out=$(promtool check metrics <"$f" 2>&1) || st=$?
	k=$(grep -c . <<<"$out" || true)
	[ $st -ne 0 ] && [ "$k" -eq 0 ] && k=1
	[ "$k" -gt 0 ] && sed "s/^/metrics_lint: $x: /" <<<"$out" >&2
	errors=$((errors + k))
done
grep -q 'model_name="chat \\"v1\\" \\\\ x\\ny"' "$d/agent.prom" ||
	{ echo "metrics_lint: the agent's model label is not escaped" >&2; errors=$((errors + 1)); }
# the dashboard's metric names: each a family of one of the exports (idn.ko's
# hold families only appear with the module loaded: taken from the exporter)
unknown=0
for m in $(jq -r '.panels[].targets[].expr' "$ROOT/docs/grafana/idn-dashboard.json" |
	   grep -oE '\b(idn|idnd)_[a-z0-9_]+' | sed -E 's/_(bucket|sum|count)$//' | sort -u); do
	grep -qh "^# TYPE $m " "$d"/*.prom && continue
	case $m in idn_hold_*) grep -q "\"$m\"" "$ROOT/ctl/stats.c" && continue ;; esac
	echo "metrics_lint: the dashboard's $m is in no export" >&2
	unknown=$((unknown + 1))
done
echo "metrics_lint_errors $errors count"
echo "metrics_dashboard_unknown $unknown count"
echo "metrics_lint_families $families count"
