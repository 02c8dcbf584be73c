#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# test_packages.sh - IDN's Debian packages, as a new operator gets them:
# build them (make deb: debhelper, from a copy of the tree without .git),
# lintian on them, install them into a fresh Debian 12 chroot (apt takes
# their dependencies from the Debian archive), run each binary's --version,
# systemd-analyze verify the units; then, as the operator guide has one do,
# create the TLS certificates, edit /etc/idn, boot the system with systemd
# (systemd-nspawn -b) and `systemctl start idn-dataplane@pkgdp0 idnd
# idn-agent idn-exporter`: all four active, the program attached to pkgdp0, idnd and
# the agent answer /healthz, the agent registers and, once approved with
# idnctl, idnd lists it up, the agent's /readyz turns 200 and the
# dataplane's pins hold idnd's node table; the three Prometheus exports
# (promtool check metrics clean where promtool is installed), Prometheus
# itself scraping them (every target up, node 1 seen through each; every
# query of docs/grafana/idn-dashboard.json evaluates), systemctl reload,
# levels kept by journald, systemctl stop.
#
# The base chroot (debootstrap minbase + systemd + dkms) is built when
# absent and cached as a tarball under $IDN_KCACHE (/var/cache/idn):
# reruns unpack it (seconds); apt's downloads are cached beside it. The
# booted system runs in a network namespace of its own (loopback and a
# veth pair), with an empty bpffs of its own at its /sys/fs/bpf (no
# router's pins are reachable). The container (powered off), mounts,
# namespace and the chroot are removed on every exit (lib.sh's EXIT trap).
#
# IDN_PKG_PREBUILT=1: test the packages already in $O/deb (no make deb).
# IDN_PKG_FIGURES=FILE: write "packages_built N count" and
# "packages_failed_fresh_chroot N count" there (tools/bench/run.sh packages).
source "$(dirname "$0")/../net/lib.sh"

require_root
require_cmd dpkg-buildpackage dh debootstrap systemd-analyze systemd-nspawn zstd openssl curl jq \
	chroot nsenter
KCACHE=${IDN_KCACHE:-/var/cache/idn}
SUITE=bookworm
MIRROR=${IDN_DEBIAN_MIRROR:-http://deb.debian.org/debian}
BASE=$KCACHE/pkgtest-$SUITE-base.tar.zst
APTCACHE=$KCACHE/pkgtest-apt
PKGS=(idn-dataplane idnd idn-agent idn-dkms)
figures() { [ -n "${IDN_PKG_FIGURES:-}" ] && printf '%s\n' "$@" >>"$IDN_PKG_FIGURES"; true; }

# ---- build the packages
t0=$(date +%s)
if [ "${IDN_PKG_PREBUILT:-0}" = 1 ] && ls "$BUILD"/deb/*.deb >/dev/null 2>&1; then
	log "IDN_PKG_PREBUILT=1: the packages already in $BUILD/deb"
elif ! log_cmd "$IDN_ROOT/dist/make-deb.sh" "$BUILD"; then
	tap_fail "make deb builds the packages"
	figures "packages_built 0 count" "packages_failed_fresh_chroot ${#PKGS[@]} count"
	tap_done
fi
debs=()
for p in "${PKGS[@]}"; do
	d=$(ls "$BUILD"/deb/"${p}"_*.deb 2>/dev/null | head -1)
	[ -n "$d" ] && debs+=("$d")
done
built=${#debs[@]}
check "make deb: $built of ${#PKGS[@]} packages (${PKGS[*]}) in $(($(date +%s) - t0)) s" \
	test "$built" -eq ${#PKGS[@]}
figures "packages_built $built count"
if command -v lintian >/dev/null; then
	n=$(grep -cE '^[EW]: ' "$BUILD/deb/lintian.txt" 2>/dev/null || true)
	[ "$n" -eq 0 ] || grep -E '^[EW]: ' "$BUILD/deb/lintian.txt" | head -20 | sed 's/^/#   /'
	check "lintian: no error or warning on the packages ($n; overrides in debian/)" \
		test "$n" -eq 0
fi

# ---- the fresh chroot
mkdir -p "$KCACHE" "$APTCACHE"
if [ ! -s "$BASE" ]; then
	t0=$(date +%s)
	tmpb=$(mktemp -d "$KCACHE/pkgtest-base.XXXXXX")
	_tmp_list+=("$tmpb" "$tmpb.log")
	log "no cached base chroot: debootstrap $SUITE from $MIRROR (minutes)"
	if ! debootstrap --variant=minbase --include=systemd,dkms,ca-certificates \
		"$SUITE" "$tmpb" "$MIRROR" >"$tmpb.log" 2>&1; then
		tail -5 "$tmpb.log" | sed 's/^/#   /'
		tap_fail "debootstrap $SUITE from $MIRROR"
		figures "packages_failed_fresh_chroot $built count"
		tap_done
	fi
	rm -rf "$tmpb"/var/cache/apt/archives/*.deb
	tar -C "$tmpb" -c . | zstd -q -T0 -o "$BASE.tmp" && mv "$BASE.tmp" "$BASE"
	log "base chroot cached in $(($(date +%s) - t0)) s: $BASE"
fi
make_tmpdir
R=$TMPD/root
mkdir -p "$R"
zstd -dc "$BASE" | tar -C "$R" -x
# the host's /proc, /sys, /dev (rbind) and apt's cache for chroot(8);
# removed (recursively, deepest first) before systemd boots the tree, and
# at exit
unbind() {
	local m
	for m in proc sys dev var/cache/apt/archives; do
		mountpoint -q "$R/$m" || continue
		umount -R "$R/$m" 2>/dev/null || umount -Rl "$R/$m"
	done
}
on_cleanup unbind
for m in proc sys dev; do
	mount --rbind "/$m" "$R/$m" && mount --make-rslave "$R/$m"
done
mount --bind "$APTCACHE" "$R/var/cache/apt/archives"
cp /etc/resolv.conf "$R/etc/resolv.conf"
mkdir -p "$R/pkgs" && cp "${debs[@]}" "$R/pkgs/"
inr() { chroot "$R" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LC_ALL=C.UTF-8 "$@"; }

# ---- install: each package, as apt would, dependencies from the archive
declare -A pfail=()	# package -> why it failed
inr apt-get -q update >"$R/apt.log" 2>&1 ||
	{ tail -3 "$R/apt.log" | sed 's/^/#   /'; }
for p in "${PKGS[@]}"; do
	deb=$(ls "$R"/pkgs/"${p}"_*.deb 2>/dev/null | head -1)
	if [ -z "$deb" ]; then
		tap_fail "$p: no package built"
		pfail[$p]=built
		continue
	fi
	if inr env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
		"/pkgs/${deb##*/}" >>"$R/apt.log" 2>&1; then
		tap_ok "$p installs into a fresh Debian 12 chroot"
	else
		tail -8 "$R/apt.log" | sed 's/^/#   /'
		tap_fail "$p installs into a fresh Debian 12 chroot"
		pfail[$p]=install
	fi
done

# ---- --version of every shipped binary (a package fails once)
for b in /usr/sbin/idnd:idnd /usr/sbin/idn-agent:idn-agent /usr/bin/idnctl:idn-dataplane \
	/usr/bin/idn-stamp:idn-dataplane; do
	bin=${b%%:*} pkg=${b#*:}
	out=$(inr "$bin" --version 2>&1)
	if [[ $out == "${bin##*/} "[0-9]* ]]; then
		tap_ok "$bin --version: $out"
	else
		log "$out"
		tap_fail "$bin --version ($pkg)"
		pfail[$pkg]=${pfail[$pkg]:-version}
	fi
done
figures "packages_failed_fresh_chroot ${#pfail[@]} count"
out=$(inr dkms status 2>&1)
grep -q '^idn/' <<<"$out"
tap_result "idn-dkms: dkms knows the module (dkms status)" $? "$out"

# ---- the units, as shipped
units=(idnd.service idn-watcher.service idn-agent.service idn-exporter.service)
vdir=$R/tmp/units
mkdir -p "$vdir"
for u in "${units[@]}"; do
	cp "$R/lib/systemd/system/$u" "$vdir/"
done
# the template, instantiated for an interface every machine has
cp "$R/lib/systemd/system/idn-dataplane@.service" "$vdir/idn-dataplane@lo.service"
out=$(inr systemd-analyze verify --man=no $(cd "$R" && ls tmp/units/*.service | sed 's|^|/|') 2>&1)
[ -z "$out" ] || log "$out"
check "systemd-analyze verify: the five units, no message" test -z "$out"
sec=$(inr systemd-analyze security --offline=true /lib/systemd/system/idnd.service \
	/lib/systemd/system/idn-agent.service 2>&1 | sed -n 's/.*Overall exposure level for \([^ ]*\): \([0-9.]*\).*/\1 \2/p')
[ -n "$sec" ] && log "systemd-analyze security (exposure, 0 best .. 10):" $sec


# ---- the operator's part: certificates (docs/operator.md), /etc/idn edits
T=$R/etc/idn/tls
mkdir -p "$T"
mk_role_certs "$T" >/dev/null || { tap_fail "test certificates"; tap_done; }
# idnd programs this router's dataplane: the pins idn-dataplane@ makes
sed -i 's|^#pin = /sys/fs/bpf/idn$|pin = /sys/fs/bpf/idn|' "$R/etc/idn/idnd.conf"
check "the operator edits /etc/idn/idnd.conf: pin = /sys/fs/bpf/idn" \
	grep -q '^pin = /sys/fs/bpf/idn$' "$R/etc/idn/idnd.conf"

# ---- boot the installed system with systemd: systemd-nspawn -b, in a
# network namespace of the test's own (loopback, and a veth pair for the
# dataplane: pkgdp0 steered, pkgdp1 its peer), with an empty bpffs of its
# own at /sys/fs/bpf. nspawn's defaults refuse bpf(2) and keep neither
# CAP_BPF nor CAP_PERFMON: both are granted (a router container needs
# them as much). Device units do not exist in a container (no udev, /sys
# read-only), so the one thing not exercised is idn-dataplane@'s
# BindsTo=/After= its interface's device: the test installs the shipped
# unit less those two names as an override in /etc/systemd/system
# (systemd-analyze verify above checks the shipped one as it is).
setup_ns PKG
ip -n "$PKG" link add pkgdp0 type veth peer name pkgdp1 &&
	ip -n "$PKG" link set pkgdp0 up && ip -n "$PKG" link set pkgdp1 up ||
	{ tap_fail "veth pair pkgdp0/pkgdp1"; tap_done; }
make_bpffs "$TMPD/bpf"
unbind
U=$R/lib/systemd/system/idn-dataplane@.service
sed -e 's/ sys-subsystem-net-devices-%i\.device//' \
	-e '/^BindsTo=sys-subsystem-net-devices-%i\.device$/d' "$U" >"$R/etc/systemd/system/${U##*/}"
n=$(diff "$U" "$R/etc/systemd/system/${U##*/}" | grep -c '^[<>]')
[ "$n" -eq 3 ] || { tap_fail "idn-dataplane@ less its device dependency ($n lines differ, 3 expected)"; tap_done; }
# stop: SIGTERM to nspawn powers the container off; insist after 20 s
stop_container() {
	local i
	kill "$1" 2>/dev/null || return 0
	for i in $(seq 200); do kill -0 "$1" 2>/dev/null || return 0; sleep 0.1; done
	kill -9 "$1"
}
t0=$SECONDS
systemd-nspawn -q -D "$R" -M "idn${PKG,,}" --register=no --keep-unit --console=read-only \
	--network-namespace-path="/run/netns/$PKG" --bind="$TMPD/bpf:/sys/fs/bpf" \
	--capability=CAP_BPF,CAP_PERFMON,CAP_NET_ADMIN,CAP_IPC_LOCK --system-call-filter=bpf \
	-b >"$TMPD/boot.log" 2>&1 &
NSP=$!
on_cleanup "stop_container $NSP"
# inc CMD...: CMD inside the container (its namespaces, its /usr/bin)
inc() { nsenter -t "$LEADER" -a env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LC_ALL=C.UTF-8 "$@"; }
LEADER= st=
for _ in $(seq 900); do
	kill -0 "$NSP" 2>/dev/null || break
	# the container's init: nspawn's child once it runs systemd (a
	# child of nspawn's before that is gone by then)
	LEADER=$(pgrep -x -P "$NSP" systemd | head -1)
	[ -n "$LEADER" ] && st=$(inc systemctl is-system-running 2>/dev/null)
	case $st in running | degraded) break ;; esac
	sleep 0.1
done
case $st in
running) tap_ok "systemd boots the installed system (systemd-nspawn -b): running in $((SECONDS - t0)) s" ;;
*)
	tail -15 "$TMPD/boot.log" | sed 's/^/#   /'
	[ -n "$LEADER" ] && inc systemctl --failed --no-pager --no-legend 2>&1 | sed 's/^/#   /'
	tap_fail "systemd boots the installed system (systemd-nspawn -b): ${st:-no container}"
	tap_done
	;;
esac

# ---- systemctl start, as the operator guide says
out=$(inc systemctl start idn-dataplane@pkgdp0.service idnd.service idn-agent.service \
	idn-exporter.service 2>&1)
tap_result "systemctl start idn-dataplane@pkgdp0 idnd idn-agent idn-exporter" $? "$out"
for u in idn-dataplane@pkgdp0 idnd idn-agent idn-exporter; do
	a=$(inc systemctl is-active "$u.service")
	if [ "$a" = active ]; then
		tap_ok "systemctl is-active $u: active"
	else
		inc journalctl -u "$u.service" --no-pager -n 10 -o cat 2>&1 | sed 's/^/#   /'
		tap_fail "systemctl is-active $u: $a"
	fi
done
out=$(ip -n "$PKG" link show dev pkgdp0)
grep -q 'prog/xdp' <<<"$out"
tap_result "idn-dataplane@pkgdp0 attached the steering program to pkgdp0 (XDP, dataplane.conf)" $? "$out"
wait_listen "$PKG" 8787 || true
wait_listen "$PKG" 8000 || true
cu() { in_ns "$PKG" curl -s --max-time 5 --cacert "$T/ca.pem" --cert "$T/admin.pem" \
	--key "$T/admin.key" "$@"; }
h=$(cu https://127.0.0.1:8787/healthz)
tap_result "idnd (idnd.service, /etc/idn/idnd.conf) answers /healthz over TLS" \
	"$([ "$h" = ok ]; echo $?)" "$(inc journalctl -u idnd.service -n 10 -o cat 2>&1)"
# the inference listener (plain, the load balancer's probe) and the
# management listener (mutual TLS)
h=$(in_ns "$PKG" curl -s --max-time 5 http://127.0.0.1:8000/healthz)$(cu https://127.0.0.1:9000/healthz)
tap_result "idn-agent (idn-agent.service, /etc/idn/agent.conf) answers /healthz on both listeners" \
	"$([ "$h" = okok ]; echo $?)" "$(inc journalctl -u idn-agent.service -n 10 -o cat 2>&1)"
# enrol = approve (shipped): node 1 waits; the operator approves it with idnctl
ctlr() { inc idnctl --ca /etc/idn/tls/ca.pem --cert /etc/idn/tls/admin.pem \
	--key /etc/idn/tls/admin.key "$@"; }
ok=1
for _ in $(seq 50); do
	ctlr node approve 1 >/dev/null 2>&1 && { ok=0; break; }
	sleep 0.2
done
tap_result "the agent's key waits at idnd; idnctl node approve 1 enrols it" $ok \
	"$(inc journalctl -u idn-agent.service -n 5 -o cat 2>&1)"
ok=1
for _ in $(seq 50); do
	up=$(ctlr -j node list 2>/dev/null | jq -r '.[] | select(.id == 1) | .state' 2>/dev/null)
	r=$(in_ns "$PKG" curl -s --max-time 5 -o /dev/null -w '%{http_code}' http://127.0.0.1:8000/readyz)
	[ "$up" = up ] && [ "$r" = 200 ] && { ok=0; break; }
	sleep 0.2
done
tap_result "approved: idnd lists node 1 up, the agent's /readyz is 200" $ok \
	"node state=$up readyz=$r; $(inc journalctl -u idn-agent.service -n 3 -o cat 2>&1)"

# ---- what Prometheus scrapes: idnd's /metrics, the agent's /metrics, the
# dataplane's counters (idn-exporter's /metrics: the pins of
# idn-dataplane@, with the node table idnd compiled into them)
cu https://127.0.0.1:8787/metrics >"$TMPD/idnd.prom"
in_ns "$PKG" curl -s --max-time 5 http://127.0.0.1:8000/metrics >"$TMPD/agent.prom"
ok=1
for _ in $(seq 50); do
	in_ns "$PKG" curl -s --max-time 5 http://127.0.0.1:9477/metrics >"$TMPD/dp.prom" &&
		grep -q '^idn_dp_node_health{node="1",health="up"} 1$' "$TMPD/dp.prom" && { ok=0; break; }
	sleep 0.2
done
tap_result "idn-exporter's /metrics: node 1 up (idnd compiled its node table into the dataplane's pins)" \
	$ok "$(grep -E '^idn_dp_node' "$TMPD/dp.prom" | head -5; inc journalctl -u idn-exporter -n 3 -o cat)"
for x in idnd:idnd_ agent:idn_agent_ dp:idn_dp_; do
	f=$TMPD/${x%%:*}.prom
	n=$(grep -c "^# TYPE ${x#*:}" "$f" || true)
	out=
	st=0
	if command -v promtool >/dev/null; then
		out=$(promtool check metrics <"$f" 2>&1) || st=$?
		[ -z "$out" ] || st=1
	fi
	tap_result "${x%%:*}'s Prometheus export: $n ${x#*:}* families$(command -v promtool >/dev/null &&
		echo ', promtool check metrics clean')" "$([ "$n" -gt 0 ] && [ $st -eq 0 ]; echo $?)" "$out"
done

# ---- Prometheus (Debian's, on the host in the test's namespace) scrapes the
# three: every target up, node 1 seen by idnd, the agent and the router;
# every query of the dashboard evaluates (its Grafana variables as any)
if command -v prometheus >/dev/null; then
	cat >"$TMPD/prometheus.yml" <<EOF
global: {scrape_interval: 1s, evaluation_interval: 1s}
scrape_configs:
  - job_name: idnd
    scheme: https
    tls_config: {ca_file: $T/ca.pem, cert_file: $T/admin.pem, key_file: $T/admin.key}
    static_configs: [{targets: ['127.0.0.1:8787']}]
  - job_name: idn-agent
    static_configs: [{targets: ['127.0.0.1:8000']}]
  - job_name: idn-exporter
    static_configs: [{targets: ['127.0.0.1:9477']}]
EOF
	bg_ns "$PKG" "$TMPD/prometheus.log" prometheus --config.file="$TMPD/prometheus.yml" \
		--storage.tsdb.path="$TMPD/tsdb" --web.listen-address=127.0.0.1:9090
	pq() { in_ns "$PKG" curl -s --max-time 5 -G http://127.0.0.1:9090/api/v1/query \
		--data-urlencode "query=$1"; }
	seen() { pq "$1" | jq -r '.data.result[0].value[1] // empty' 2>/dev/null; }
	ok=1
	for _ in $(seq 150); do
		[ "$(seen 'sum(up)')" = 3 ] && [ "$(seen 'idnd_node_up{node="1"}')" = 1 ] &&
			[ "$(seen 'idn_agent_registered')" = 1 ] &&
			[ "$(seen 'idn_dp_node_health{node="1",health="up"}')" = 1 ] && { ok=0; break; }
		sleep 0.2
	done
	tap_result "Prometheus scrapes idnd, idn-agent and idn-exporter: all up, node 1 up in each" $ok \
		"$(pq 'up' | jq -c '[.data.result[] | {job: .metric.job, up: .value[1]}]' 2>&1
		   tail -3 "$TMPD/prometheus.log")"
	bad=0 n=0
	while IFS= read -r e; do
		n=$((n + 1))
		e=${e//\$__rate_interval/1m}
		e=$(sed -E 's/=~"\$[a-z_]+"/=~".*"/g' <<<"$e")
		[ "$(pq "$e" | jq -r .status 2>/dev/null)" = success ] && continue
		bad=$((bad + 1))
		log "dashboard query refused: $e"
	done < <(jq -r '.panels[].targets[].expr' "$IDN_ROOT/docs/grafana/idn-dashboard.json")
	tap_result "the dashboard's $n queries evaluate in that Prometheus ($bad refused)" \
		"$([ "$n" -gt 0 ] && [ "$bad" -eq 0 ]; echo $?)"
fi

# ---- systemctl reload (ExecReload: SIGHUP) re-reads the edited files
sed -i 's/^hb-timeout = 3000$/hb-timeout = 4000/' "$R/etc/idn/idnd.conf"
sed -i 's/^hb-ms = 1000$/hb-ms = 900/' "$R/etc/idn/agent.conf"
out=$(inc systemctl reload idnd.service idn-agent.service 2>&1)
ok=$?
jl() { inc journalctl --no-pager -o cat -u "$@"; }
for _ in $(seq 50); do
	[ $ok -eq 0 ] || break
	jl idnd.service | grep -q 'idnd: reloaded /etc/idn/idnd.conf: .*hb-timeout 4000' &&
		jl idn-agent.service | grep -q 'idn-agent: reloaded: .*hb-ms 900' && break
	sleep 0.1
done
jl idnd.service | grep -q 'idnd: reloaded /etc/idn/idnd.conf: .*hb-timeout 4000' &&
	jl idn-agent.service | grep -q 'idn-agent: reloaded: .*hb-ms 900' || ok=1
h=$(cu https://127.0.0.1:8787/healthz)
[ "$h" = ok ] || ok=1
tap_result "systemctl reload idnd idn-agent: both re-read /etc/idn (journal), idnd still answers" \
	$ok "$out $(jl idnd.service | tail -2; jl idn-agent.service | tail -2)"

# ---- journald keeps the levels: every line of idnd and the agent came
# with its sd-daemon(3) priority (none left in the text, no timestamp of
# their own); the agent's refusal before approval is a warning
inc journalctl --no-pager -o json -u idnd.service -u idn-agent.service \
	--output-fields=PRIORITY,MESSAGE,_COMM >"$TMPD/journal.json" 2>&1
n=$(jq -r 'select(._COMM == "idnd" or ._COMM == "idn-agent") | .MESSAGE | strings' \
	"$TMPD/journal.json" | grep -c .)
bad=$(jq -r 'select(._COMM == "idnd" or ._COMM == "idn-agent") | .MESSAGE | strings' \
	"$TMPD/journal.json" | grep -cE '^(<[0-7]>|[0-9]{4}-[0-9]{2}-[0-9]{2}T)' || true)
w=$(jq -r 'select(._COMM == "idn-agent" and .PRIORITY == "4") | .MESSAGE | strings' \
	"$TMPD/journal.json" | grep -c 'registration with .* failed: HTTP 403' || true)
i=$(jq -r 'select(._COMM == "idn-agent" and .PRIORITY == "6") | .MESSAGE | strings' \
	"$TMPD/journal.json" | grep -c 'idn-agent: registered node 1' || true)
tap_result "journal: $n lines of idnd and the agent, $bad with a level or time left in the text; the agent's 403 at warning ($w), its registration at info ($i)" \
	"$([ "$n" -gt 0 ] && [ "$bad" -eq 0 ] && [ "$w" -ge 1 ] && [ "$i" -ge 1 ]; echo $?)" \
	"$(jq -c 'select(._COMM == "idn-agent") | [.PRIORITY, .MESSAGE]' "$TMPD/journal.json" | head -8)"

# ---- systemctl stop: the interface is detached, the pins stay for idnd
out=$(inc systemctl stop idn-dataplane@pkgdp0.service 2>&1)
st=$?
a=$(inc systemctl is-active idn-dataplane@pkgdp0.service)
l=$(ip -n "$PKG" link show dev pkgdp0)
x=$(grep -c 'prog/xdp' <<<"$l")
p=$(ls "$TMPD/bpf/idn" 2>/dev/null | grep -c '^idn_plans$')
d=$(inc systemctl is-active idnd.service)
tap_result "systemctl stop idn-dataplane@pkgdp0: inactive, pkgdp0 detached, the pins kept, idnd active" \
	"$([ $st -eq 0 ] && [ "$a" = inactive ] && [ "$x" = 0 ] && [ "$p" = 1 ] && [ "$d" = active ]
	   echo $?)" "stop: $st $out; unit $a; xdp on pkgdp0: $x; idn_plans pinned: $p; idnd $d" \
	"$(inc journalctl -u idnd.service -u idn-dataplane@pkgdp0.service -n 6 -o cat)"
out=$(inc systemctl stop idnd.service idn-agent.service idn-exporter.service 2>&1)
a=$(inc systemctl is-active idnd.service idn-agent.service idn-exporter.service | tr '\n' ' ')
tap_result "systemctl stop idnd idn-agent idn-exporter: ${a% }" \
	"$([ "$a" = "inactive inactive inactive " ]; echo $?)" "$out"
tap_done
