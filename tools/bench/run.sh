#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# run.sh - `make bench`: every IDN benchmark, one "name value unit" line
# per figure on stdout (progress on stderr).
#
#   O=build tools/bench/run.sh [xdp] [hostile] [rps] [replace] [connstate] [placement] [kernel]
#         [agent] [kvauth] [rdma] [security] [bgp] [fed] [scale] [migrate] [metrics] [packages]
#   (default: all; kvauth is part of agent)
#
#   xdp   per-packet cost of the XDP steering paths in loop mode against
#         an XDP_TX floor (build/tools/idn_bench, see docs/benchmarks.md),
#         in a private network namespace with a veth, a route and
#         permanent neighbours toward the node locators
#   hostile  the hostile frame corpus (build/tests/bpf_hostile) through idn_xdp
#         and idn_tc: hostile_frames_forwarded (frames encapsulated to a
#         node; must be 0)
#   rps   requests/s through the namespace router, plain forwarding vs
#         the IDN XDP dataplane, same run (tools/bench/router_rps.sh)
#   replace  hitless upgrade: REPLACE_N (100) `idnctl dp replace` under wrk,
#         paced downloads and a sequenced UDP stream through the VIP
#         (tools/bench/dp_replace.sh): dp_replace_lost_packets,
#         dp_replace_broken_conns
#   connstate  live connections without router state (tools/bench/conn_state.sh):
#         conn_flush_live_conns_broken (FLUSH_N, 40, `dp flush conns` mid-transfer
#         with the client's affinity moved off the connections' node: the TS
#         cookie keeps them) and flood_live_conns_broken (FLOOD_N, 1,000,000,
#         spoofed SYNs and mid-flow segments from tools/bench/idn_flood), both
#         under wrk + paced downloads; both must be 0
#   placement  the controller's placement solver (build/tools/idn_placement):
#         2000x5000 seconds with served demand, memory use, gap to the
#         memory-free bound and what the heuristic did; churn after a 10 %
#         demand shift (warm, and cold beside it); gap to CBC's proven
#         optimum (20x8, 50x20; median over the proven ones, proven count
#         printed; CBC limit PLACEMENT_LIMIT, 120 CPU s, per instance),
#         gap to GLPK's LP bound (200x100); fails on any constraint
#         violated; CBC/GLPK bounded from outside (PLACEMENT_TIMEOUT, 1800 s
#         wall: a loaded machine stretches CPU limits);
#         then, against the real pinned maps in a private netns + bpffs
#         (build/tools/idn_ctlbench): plan_push_10k_ms (10,000 plans of 16
#         candidates, one generation, commit start to config flip) and
#         node_down_to_drained_ms (idnd running, a placed node stops
#         heartbeating: DOWN in idn_nodes and out of every active plan,
#         excess over the heartbeat timeout CTL_HB_MS, 300 ms) and
#         idnd_api_p99_ms_during_solve (GET /v1/status while idnd solves
#         a generated 2000x5000 instance off its request lock),
#         tls_api_rps_vs_plain (build/tools/idn_tlsbench: GET /v1/status
#         requests/s of idnd with mutual TLS over the same with --insecure,
#         4 keep-alive clients) and
#         revoke_to_plans_ms (a signed version revoked: API call to the
#         version gone from every plan of the maps)
#   kernel  idn.ko in one QEMU guest boot (Debian 6.1, TCG unless KVM:
#         absolute numbers are emulated, ratios matter), through
#         selftests/kernel/run.sh IDN_KBENCH=1 (tools/bench/kernel_guest.sh,
#         tools/bench/idn_kbench.c): hold_release_latency_us_median/_p99
#         (RELEASE sent -> held SYN enters the node's veth), hold_loss_packets
#         (held at the limit, released, not arrived: must be 0),
#         miss_path_vs_steer (idn_tc, BPF_PROG_TEST_RUN); skipped (exit 0,
#         "# skipped: reason" on stderr) without qemu or the 6.1 image
#   agent  the node agent (build/tools/idn_agentbench): kv_tcp_vs_socket (KV
#         transfer engine, default streams, N bytes of KV blocks on loopback
#         into a receiving agent's KV cache as idn-agent receives a push, vs
#         one plain TCP stream) and residency_load_vs_read (artifact load into the host
#         backend vs a raw read() of the same page-cache-warm file); AB_KV_BYTES
#         (256M), AB_RES_BYTES (256M), AB_ROUNDS (5), AB_DIR (TMPDIR or /tmp);
#         kv_tcp_tls_vs_socket (the same transfer authenticated: KV key on
#         both ends, Poly1305 over every slice, vs the same plain socket copy;
#         also alone: run.sh kvauth);
#         cache_eq8_vs_lru_saved_prefill (build/tools/idn_cachebench: the
#         Mooncake trace through the emulator's prefix cache, eq8 vs LRU);
#         residency_load_gpu_vs_h2d (CUDA backend vs pinned host-to-device
#         copy): printed as "not_measured", the reason on stderr, where no
#         GPU run measured it
#   rdma  KV transfer over RDMA on Soft-RoCE in one QEMU guest boot
#         (selftests/kernel/run.sh IDN_KBENCH=1, tools/bench/rdma_guest.sh):
#         kv_rdma_vs_ib_write_bw (kvxfer, policy rdma, warm pooled
#         connections, vs perftest's ib_write_bw on the same rxe device,
#         same message and total size; RB_BYTES 32M, RB_SLICE 1M,
#         RB_ROUNDS 5, RB_QPS queue pairs per transfer), kv_rdma_small_push_ms
#         (64 KiB on a warm connection) vs ib_write_rtt_64k_ms (twice
#         ib_write_lat's typical latency): kv_rdma_small_push_vs_ib_rtt
#         (target <= 2); skipped like kernel
#   security  selftests/security/run.sh: every attack of issue 11 replayed
#         against idnd and idn-agent: security_attacks_tried,
#         security_attacks_not_refused (must be 0)
#   bgp   capability anycast (selftests/net/test_bgp_anycast.sh, BIRD with its
#         default timers): bgp_withdraw_to_path_ms (a router's plan for the
#         capability empties -> the client's kernel route to the VIP via the
#         other router; median of 3 rounds); skipped without BIRD
#   fed   federation between two domains (selftests/net/test_fed.sh: two
#         idnd, two routers with the dataplane, agents): federation_withdraw_to_plans_ms
#         (a peer withdraws a capability -> gone from every plan of the other
#         domain's router, from the two daemons' log timestamps; median of 3
#         rounds; target <= 1000); selftests/net/test_fed_etcd.sh (domain A
#         distributed, its router fed by the etcd watcher):
#         federation_withdraw_to_etcd_router_ms, the same to that router's plans
#   scale the distributed mode on one etcd in a private netns
#         (build/tools/idn_scalebench, docs/federation.md "Scale"):
#         SCALE_WATCHERS (1000) routers' watchers and SCALE_NODES (10000)
#         agents' leases (heartbeat SCALE_HB_MS 20000, TTL 3 periods), in
#         one process with the agent's and idnd's own etcd client code:
#         scale_1000_watchers_plan_p99_ms, scale_10k_leases_node_down_p99_ms,
#         scale_control_bytes_per_node_s and what explains them; a few
#         minutes; skipped without etcd
#   migrate  idnd's migration decisions with real agents and a real pinned
#         router map (selftests/net/test_migrate.sh): migration_commit_to_affinity_ms
#         (the destination agent's commit of the moved blocks to idnd's write
#         of the router's affinity entry; target <= 100) and, with etcd,
#         migration_etcd_repoint_ms (the leader's write of affmoves/TOKEN to
#         a watcher's write of its router's entry; no target, the test
#         asserts <= 1000)
#
#   packages  selftests/pkg/test_packages.sh: make deb, the packages
#         installed into a fresh Debian 12 debootstrap chroot, each binary's
#         --version, the units verified, idnd and an agent started from
#         their units: packages_built (>= 4), packages_failed_fresh_chroot
#         (packages that fail to install or to run --version; must be 0)
#
#   metrics  tools/bench/metrics_lint.sh: idnd's, an agent's and the
#         dataplane's Prometheus exports of a running system through
#         `promtool check metrics`: metrics_lint_errors (must be 0),
#         metrics_dashboard_unknown (must be 0), metrics_lint_families
#
# Knobs (environment): BENCH_REPEAT (2000000), BENCH_ROUNDS (5),
# BENCH_CPU (last allowed CPU), BENCH_VERBOSE=1, RPS_SECONDS (5),
# KB_N (200 held packets per round = the hold limit), KB_ROUNDS (5),
# KB_K (2000 test runs per case), IDN_QEMU_TIMEOUT (300 s).
# Needs root. Exit 0, 1 when a benchmark failed, 2 on bad usage.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
O=${O:-build}
case "$O" in /*) ;; *) O="$ROOT/$O" ;; esac

want_xdp=0 want_rps=0 want_replace=0 want_connstate=0 want_placement=0 want_kernel=0 want_agent=0 want_rdma=0
want_hostile=0 want_security=0 want_bgp=0 want_fed=0 want_scale=0 want_migrate=0 want_metrics=0 want_kvauth=0
want_packages=0
[ $# -eq 0 ] && set -- xdp hostile rps replace connstate placement kernel agent rdma security bgp fed scale migrate metrics packages
for a in "$@"; do
	case "$a" in
	xdp) want_xdp=1 ;;
	rps) want_rps=1 ;;
	replace) want_replace=1 ;;
	connstate) want_connstate=1 ;;
	placement) want_placement=1 ;;
	kernel) want_kernel=1 ;;
	agent) want_agent=1 ;;
	kvauth) want_kvauth=1 ;;
	rdma) want_rdma=1 ;;
	hostile) want_hostile=1 ;;
	security) want_security=1 ;;
	bgp) want_bgp=1 ;;
	fed) want_fed=1 ;;
	scale) want_scale=1 ;;
	migrate) want_migrate=1 ;;
	metrics) want_metrics=1 ;;
	packages) want_packages=1 ;;
	*) echo "usage: run.sh [xdp] [hostile] [rps] [replace] [connstate] [placement] [kernel] [agent] [kvauth] [rdma] [security] [bgp] [fed] [scale] [migrate] [metrics] [packages]" >&2; exit 2 ;;
	esac
done

if [ "$(id -u)" -ne 0 ]; then
	echo "run.sh: benchmarks need root" >&2
	exit 1
fi

# Runs inside `unshare -n`: a namespace of our own, gone when we exit.
xdp_in_netns() {
	local dev=bidn0 peer=bidn1 i
	ip link set lo up
	ip link add "$dev" type veth peer name "$peer"
	ip link set "$peer" up
	ip link set "$dev" up
	ip addr add 10.99.0.1/24 dev "$dev"
	sysctl -qw net.ipv4.ip_forward=1
	# node locators 10.99.0.10 .. 10.99.0.41 (idn_bench: LOC4_NET, N_NODES)
	for i in $(seq 0 31); do
		ip neigh replace "10.99.0.$((10 + i))" \
			lladdr "$(printf '02:00:00:99:00:%02x' "$i")" dev "$dev" nud permanent
	done
	local args=(-i "$dev" -n "${BENCH_REPEAT:-2000000}" -r "${BENCH_ROUNDS:-5}")
	[ -n "${BENCH_CPU:-}" ] && args+=(-c "$BENCH_CPU")
	[ "${BENCH_VERBOSE:-0}" = 1 ] && args+=(-v)
	"$O/tools/idn_bench" "${args[@]}"
}

# Runs inside `unshare -n -m`: private netns, private bpffs; idnd by pid.
ctl_in_netns() {
	local d p url=127.0.0.1:18787 tmo=${CTL_HB_MS:-300} pid st=0
	d=$(mktemp -d /tmp/idn-ctlbench.XXXXXX)
	p=$d/bpf/idn
	mkdir -p "$d/bpf" && mount -t bpf bpf "$d/bpf"
	ip link set lo up
	ip link add cbidn0 type veth peer name cbidn1
	ip link set cbidn0 up && ip link set cbidn1 up
	"$O/idnctl" -P "$p" dp attach dev cbidn0 >&2
	"$O/tools/idn_ctlbench" push -P "$p" -n 10000 -r "${CTL_ROUNDS:-5}" || st=1
	"$O/idnd" --insecure --enrol open -d "$d/idnd.db" -p 18787 -P "$p" -t "$tmo" -G 2>"$d/idnd.log" &
	pid=$!
	post() { curl -s -m 5 -o /dev/null -w '%{http_code}' -X POST --data-binary "$2" "http://$url$1"; }
	for _ in $(seq 100); do post /v1/demand '{}' >/dev/null && break; sleep 0.05; done
	post /v1/nodes '{"id":1,"addr4":"10.98.0.1","mem_gb":80,"region":0,"trust":6}' >/dev/null
	post /v1/nodes '{"id":2,"addr4":"10.98.0.2","mem_gb":80,"region":1,"trust":6}' >/dev/null
	post /v1/caps '{"class":7,"name":"chat","resources":{"mem_gb":30}}' >/dev/null
	post /v1/demand '{"cap":1792,"region":0,"rps":100}' >/dev/null
	post /v1/demand '{"cap":1792,"region":1,"rps":100}' >/dev/null
	post /v1/nodes/1/heartbeat '{"load":1}' >/dev/null
	post /v1/nodes/2/heartbeat '{"load":1}' >/dev/null
	[ "$(post /v1/placement/solve '{}')" = 200 ] || { echo "run.sh: idnd solve failed" >&2; st=1; }
	"$O/tools/idn_ctlbench" drain -P "$p" -u "$url" -i 1 -t "$tmo" -r "${CTL_ROUNDS:-5}" || st=1
	"$O/tools/idn_ctlbench" solvelat -u "$url" -r "${CTL_ROUNDS:-5}" || st=1	# idnd -G
	"$O/tools/idn_ctlbench" revoke -P "$p" -u "$url" -r "${CTL_ROUNDS:-5}" || st=1
	kill "$pid"; wait "$pid" 2>/dev/null || true
	# tls_api_rps_vs_plain: the same idnd --insecure and with mutual TLS, keep-alive clients
	if (source "$ROOT/selftests/net/lib.sh" && mk_role_certs "$d/pki") >/dev/null 2>&1; then
		local tp tt
		"$O/idnd" --insecure -d "$d/plain.db" -p 18801 -P none -t 60000 2>"$d/plain.log" &
		tp=$!
		"$O/idnd" -d "$d/tls.db" -p 18802 -P none -t 60000 --ca "$d/pki/ca.pem" \
			--cert "$d/pki/idnd.pem" --key "$d/pki/idnd.key" 2>"$d/tls.log" &
		tt=$!
		for _ in $(seq 100); do
			curl -s -o /dev/null http://127.0.0.1:18801/v1/status &&
				curl -s -o /dev/null --cacert "$d/pki/ca.pem" --cert "$d/pki/reader.pem" \
					--key "$d/pki/reader.key" https://127.0.0.1:18802/v1/status && break
			sleep 0.05
		done
		"$O/tools/idn_tlsbench" -u http://127.0.0.1:18801 -U https://127.0.0.1:18802 \
			--ca "$d/pki/ca.pem" --cert "$d/pki/reader.pem" --key "$d/pki/reader.key" \
			-r "${CTL_ROUNDS:-5}" || st=1
		kill "$tp" "$tt"; wait "$tp" "$tt" 2>/dev/null || true
	else
		echo "run.sh: cannot make the test certificates (openssl)" >&2; st=1
	fi
	[ $st = 0 ] || cat "$d/idnd.log" >&2
	umount "$d/bpf"; rm -rf "$d"
	return $st
}

# Runs inside `unshare -n`: etcd on this namespace's loopback, killed by pid.
scale_in_netns() {
	local d pid st=0
	# etcd's data in memory: the figures are the control plane's fan-out and
	# client costs, not this VM's shared disk (fsync behind other builds)
	d=$(mktemp -d /dev/shm/idn-scale.XXXXXX)
	ip link set lo up
	ulimit -n "$(ulimit -Hn)"	# a connection per simulated agent and watcher
	etcd --name s --data-dir "$d/etcd" --listen-client-urls http://127.0.0.1:2379 \
		--advertise-client-urls http://127.0.0.1:2379 \
		--listen-peer-urls http://127.0.0.1:2380 \
		--initial-advertise-peer-urls http://127.0.0.1:2380 \
		--initial-cluster s=http://127.0.0.1:2380 >"$d/etcd.log" 2>&1 &
	pid=$!
	for _ in $(seq 100); do
		curl -s -m 1 http://127.0.0.1:2379/health | grep -q true && break
		sleep 0.1
	done
	"$O/tools/idn_scalebench" -e http://127.0.0.1:2379 -p "$pid" \
		-w "${SCALE_WATCHERS:-1000}" -n "${SCALE_NODES:-10000}" -b "${SCALE_HB_MS:-20000}" || st=1
	kill "$pid"; wait "$pid" 2>/dev/null || true
	[ $st = 0 ] || tail -20 "$d/etcd.log" >&2
	rm -rf "$d"
	return $st
}

rc=0
# run_part WHAT CMD...: a benchmark script; exit 4 is a skip (said why on
# stderr), any other failure fails the run
run_part() {
	local what=$1 st=0
	shift
	"$@" || st=$?
	if [ $st -eq 4 ]; then
		echo "run.sh: $what skipped" >&2
	elif [ $st -ne 0 ]; then
		echo "run.sh: $what FAILED" >&2
		rc=1
	fi
}
if [ $want_xdp = 1 ]; then
	if [ ! -x "$O/tools/idn_bench" ]; then
		echo "run.sh: $O/tools/idn_bench missing (run make first)" >&2
		rc=1
	else
		echo "# xdp: loop-mode per-packet cost vs XDP_TX floor" >&2
		export O BENCH_REPEAT BENCH_ROUNDS BENCH_CPU BENCH_VERBOSE
		export -f xdp_in_netns
		unshare -n bash -euo pipefail -c xdp_in_netns || {
			echo "run.sh: xdp benchmark FAILED" >&2
			rc=1
		}
	fi
fi
if [ $want_hostile = 1 ]; then
	# the hostile frame corpus through idn_xdp and idn_tc (selftests/bpf/bpf_hostile.c)
	echo "# hostile: malformed frames encapsulated to a node" >&2
	if [ ! -x "$O/tests/bpf_hostile" ]; then
		echo "run.sh: $O/tests/bpf_hostile missing (run make first)" >&2
		rc=1
	else
		st=0
		out=$("$O/tests/bpf_hostile") || st=$?
		[ "${BENCH_VERBOSE:-0}" = 1 ] && echo "$out" >&2
		sed -n 's/^# \(hostile_frames_forwarded [0-9]* frames\)$/\1/p' <<<"$out"
		if [ $st -ne 0 ]; then
			echo "run.sh: hostile frame corpus FAILED" >&2
			rc=1
		fi
	fi
fi
if [ $want_rps = 1 ]; then
	echo "# rps: requests/s through the namespace router" >&2
	run_part "router requests/s benchmark" env O="$O" "$HERE/router_rps.sh"
fi
if [ $want_replace = 1 ]; then
	echo "# replace: dp replace under traffic" >&2
	run_part "dp replace benchmark" env O="$O" "$HERE/dp_replace.sh"
fi
if [ $want_connstate = 1 ]; then
	echo "# connstate: live connections across conn-table flushes and a spoofed flood" >&2
	run_part "conn state benchmark" env O="$O" "$HERE/conn_state.sh"
fi
if [ $want_placement = 1 ]; then
	echo "# placement: heuristic vs CBC optimum / GLPK bound, scale, churn" >&2
	if [ ! -x "$O/tools/idn_placement" ]; then
		echo "run.sh: $O/tools/idn_placement missing (run make first)" >&2
		rc=1
	else
		pargs=(-n "${PLACEMENT_INSTANCES:-3}" -t "${PLACEMENT_LIMIT:-120}")
		[ "${BENCH_VERBOSE:-0}" = 1 ] && pargs+=(-v)
		timeout -k 10 "${PLACEMENT_TIMEOUT:-1800}" "$O/tools/idn_placement" "${pargs[@]}" || {
			echo "run.sh: placement benchmark FAILED" >&2
			rc=1
		}
	fi
	echo "# placement: plan push and node drain against the pinned maps" >&2
	if [ ! -x "$O/tools/idn_ctlbench" ] || [ ! -x "$O/idnd" ]; then
		echo "run.sh: $O/tools/idn_ctlbench or $O/idnd missing (run make first)" >&2
		rc=1
	else
		export O ROOT CTL_HB_MS CTL_ROUNDS
		export -f ctl_in_netns
		unshare -n -m --propagation private bash -euo pipefail -c ctl_in_netns || {
			echo "run.sh: controller benchmark FAILED" >&2
			rc=1
		}
	fi
fi
if [ $want_kernel = 1 ]; then
	echo "# kernel: idn.ko hold release latency/loss, miss path vs steer (QEMU guest)" >&2
	run_part "kernel benchmark" env O="$O" IDN_KBENCH=1 KB_N="${KB_N:-}" \
		KB_ROUNDS="${KB_ROUNDS:-}" KB_K="${KB_K:-}" "$ROOT/selftests/kernel/run.sh"
fi
if [ $want_rdma = 1 ]; then
	echo "# rdma: KV transfer over Soft-RoCE vs ib_write_bw (QEMU guest)" >&2
	run_part "rdma benchmark" env O="$O" IDN_KBENCH=1 \
		IDN_KBENCH_SCRIPT=tools/bench/rdma_guest.sh RB_BYTES="${RB_BYTES:-}" \
		RB_SLICE="${RB_SLICE:-}" RB_ROUNDS="${RB_ROUNDS:-}" RB_QPS="${RB_QPS:-}" \
		"$ROOT/selftests/kernel/run.sh"
fi
if [ $want_agent = 1 ]; then
	echo "# agent: KV transfer vs plain socket, residency load vs raw read" >&2
	if [ ! -x "$O/tools/idn_agentbench" ]; then
		echo "run.sh: $O/tools/idn_agentbench missing (run make first)" >&2
		rc=1
	else
		"$O/tools/idn_agentbench" -k "${AB_KV_BYTES:-256M}" -s "${AB_RES_BYTES:-256M}" \
			-r "${AB_ROUNDS:-5}" -d "${AB_DIR:-${TMPDIR:-/tmp}}" || {
			echo "run.sh: agent benchmark FAILED" >&2
			rc=1
		}
	fi
	# eq. 8 vs LRU in the emulator's prefix cache (build/tools/idn_cachebench)
	if [ ! -x "$O/tools/idn_cachebench" ]; then
		echo "run.sh: $O/tools/idn_cachebench missing (run make first)" >&2
		rc=1
	else
		(cd "$ROOT" && "$O/tools/idn_cachebench") || {
			echo "run.sh: cache benchmark FAILED" >&2
			rc=1
		}
	fi
	# The CUDA residency backend (agent/res_cuda.cu -> idn_res_cuda.so) vs a
	# pinned host-to-device copy needs a GPU; no run of it here measures
	# one, so the line says so (with what this host has) instead of a value.
	gpu="no GPU on this host (nvidia-smi -L lists none)"
	if command -v nvidia-smi >/dev/null && nvidia-smi -L 2>/dev/null | grep -q '^GPU'; then
		gpu="a GPU is present ($(nvidia-smi -L | head -1 | cut -c1-60)), but this run has no GPU load benchmark"
	fi
	cuda="idn_res_cuda.so not built (no nvcc)"
	[ -f "$O/idn_res_cuda.so" ] && cuda="idn_res_cuda.so built"
	echo "residency_load_gpu_vs_h2d not_measured x"
	echo "# residency_load_gpu_vs_h2d: not measured: $gpu; $cuda" >&2
fi
if [ $want_kvauth = 1 ] && [ $want_agent = 0 ]; then
	echo "# kvauth: authenticated KV transfer vs plain socket" >&2
	if [ ! -x "$O/tools/idn_agentbench" ]; then
		echo "run.sh: $O/tools/idn_agentbench missing (run make first)" >&2
		rc=1
	else
		"$O/tools/idn_agentbench" kvauth -k "${AB_KV_BYTES:-256M}" -r "${AB_ROUNDS:-5}" || {
			echo "run.sh: kvauth benchmark FAILED" >&2
			rc=1
		}
	fi
fi
if [ $want_security = 1 ]; then
	echo "# security: attacks of issue 11 replayed (selftests/security)" >&2
	st=0
	out=$(O="$O" "$ROOT/selftests/security/run.sh" 2>&1) || st=$?
	sed -n 's/^# \(security_attacks_[a-z_]*\) /\1 /p' <<<"$out"
	if [ $st -ne 0 ] && [ $st -ne 4 ]; then
		grep -E '^not ok' <<<"$out" >&2
		echo "run.sh: security benchmark FAILED" >&2
		rc=1
	fi
fi
if [ $want_bgp = 1 ]; then
	echo "# bgp: capability anycast, withdrawal to the client's path (BIRD)" >&2
	st=0
	out=$(O="$O" "$ROOT/selftests/net/test_bgp_anycast.sh" 2>&1) || st=$?
	if [ $st -eq 4 ]; then
		echo "run.sh: bgp benchmark skipped: $(head -1 <<<"$out")" >&2
	elif [ $st -ne 0 ]; then
		grep -E '^not ok' <<<"$out" >&2
		echo "run.sh: bgp benchmark FAILED" >&2
		rc=1
	else
		sed -n 's/^# \(bgp_withdraw_to_path_ms\) \([0-9]*\)$/\1 \2 ms/p' <<<"$out"
	fi
fi
if [ $want_fed = 1 ]; then
	echo "# fed: two domains, a peer withdraws a capability" >&2
	st=0
	out=$(O="$O" "$ROOT/selftests/net/test_fed.sh" 2>&1) || st=$?
	if [ $st -eq 4 ]; then
		echo "run.sh: fed benchmark skipped: $(head -1 <<<"$out")" >&2
	elif [ $st -ne 0 ]; then
		grep -E '^not ok' <<<"$out" >&2
		echo "run.sh: fed benchmark FAILED" >&2
		rc=1
	else
		sed -n 's/^# \(federation_withdraw_to_plans_ms\) \([0-9]*\)$/\1 \2 ms/p' <<<"$out"
	fi
	# the same withdrawal seen by a router the etcd watcher feeds (domain A distributed)
	st=0
	out=$(O="$O" "$ROOT/selftests/net/test_fed_etcd.sh" 2>&1) || st=$?
	if [ $st -eq 4 ]; then
		echo "run.sh: fed (etcd) benchmark skipped: $(head -1 <<<"$out")" >&2
	elif [ $st -ne 0 ]; then
		grep -E '^not ok' <<<"$out" >&2
		echo "run.sh: fed (etcd) benchmark FAILED" >&2
		rc=1
	else
		sed -n 's/^# \(federation_withdraw_to_etcd_router_ms\) \([0-9]*\)$/\1 \2 ms/p' <<<"$out"
	fi
fi
if [ $want_scale = 1 ]; then
	echo "# scale: ${SCALE_WATCHERS:-1000} watchers, ${SCALE_NODES:-10000} leases on one etcd" >&2
	if ! command -v etcd >/dev/null; then
		echo "run.sh: scale benchmark skipped: etcd not installed (Debian etcd-server)" >&2
	elif [ ! -x "$O/tools/idn_scalebench" ]; then
		echo "run.sh: $O/tools/idn_scalebench missing (run make first)" >&2
		rc=1
	else
		export -f scale_in_netns
		export O
		run_part "scale benchmark" unshare -n bash -c scale_in_netns
	fi
fi
if [ $want_migrate = 1 ]; then
	echo "# migrate: idnd moves a session's KV state, commit -> affinity (netns)" >&2
	st=0
	out=$(O="$O" "$ROOT/selftests/net/test_migrate.sh" 2>&1) || st=$?
	sed -n 's/^# \(migration_commit_to_affinity_ms\|migration_etcd_repoint_ms\) \([0-9.]*\)$/\1 \2 ms/p' \
		<<<"$out"
	if [ $st -ne 0 ] && [ $st -ne 4 ]; then
		grep -E '^not ok' <<<"$out" >&2
		echo "run.sh: migrate benchmark FAILED" >&2
		rc=1
	fi
fi
if [ $want_metrics = 1 ]; then
	echo "# metrics: promtool check metrics over idnd, agent and dataplane exports" >&2
	run_part "metrics lint" env O="$O" "$HERE/metrics_lint.sh"
fi
if [ $want_packages = 1 ]; then
	# the Debian packages in a fresh Debian 12 chroot (selftests/pkg)
	echo "# packages: make deb, install into a fresh Debian 12 chroot, --version" >&2
	pf=$(mktemp)
	st=0
	out=$(O="$O" IDN_PKG_FIGURES="$pf" "$ROOT/selftests/pkg/test_packages.sh" 2>&1) || st=$?
	cat "$pf"
	rm -f "$pf"
	if [ $st -eq 4 ]; then
		echo "run.sh: packages skipped: $(grep -m1 SKIP <<<"$out")" >&2
	elif [ $st -ne 0 ]; then
		grep -E '^not ok' -A3 <<<"$out" >&2
		echo "run.sh: packages benchmark FAILED" >&2
		rc=1
	fi
fi
exit $rc
