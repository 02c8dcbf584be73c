#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# test_packages.sh - IDN's Debian packages, as a new operator gets them:
# build them (make deb: debhelper, from a copy of the tree without .git),
# lintian on them, install them into a fresh Debian 12 chroot (apt takes
# their dependencies from the Debian archive), run each binary's --version,
# systemd-analyze verify the units, then start idnd and an agent from their
# units' ExecStart lines with the shipped /etc/idn configuration (plus the
# TLS certificates the operator guide has one create): both answer
# /healthz, the agent registers and, once approved with idnctl, idnd lists
# it up and the agent's /readyz turns 200.
#
# The base chroot (debootstrap minbase + systemd + dkms) is built when
# absent and cached as a tarball under $IDN_KCACHE (/var/cache/idn):
# reruns unpack it (seconds); apt's downloads are cached beside it. The
# services run in a network namespace of their own (loopback only), with
# an empty bpffs of their own at the chroot's /sys/fs/bpf (no router's
# pins are reachable). Mounts, namespace, processes and the chroot are
# removed on every exit (lib.sh's EXIT trap).
#
# IDN_PKG_PREBUILT=1: test the packages already in $O/deb (no make deb).
# IDN_PKG_FIGURES=FILE: write "packages_built N count" and
# "packages_failed_fresh_chroot N count" there (tools/bench/run.sh packages).
source "$(dirname "$0")/../net/lib.sh"

require_root
require_cmd dpkg-buildpackage dh debootstrap systemd-analyze zstd openssl curl jq chroot
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
# rbind mounts: removed recursively, deepest first, before the tree goes
on_cleanup "for m in proc sys dev; do umount -R '$R/'\$m || umount -Rl '$R/'\$m; done"
for m in proc sys dev; do
	mount --rbind "/$m" "$R/$m" && mount --make-rslave "$R/$m"
done
# an empty bpffs of the test's own: idnd's default pin dir holds nothing
make_bpffs "$R/sys/fs/bpf"
mount --bind "$APTCACHE" "$R/var/cache/apt/archives" && _mount_list+=("$R/var/cache/apt/archives")
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
units=(idnd.service idn-watcher.service idn-agent.service)
vdir=$R/tmp/units
mkdir -p "$vdir"
for u in "${units[@]}"; do
	cp "$R/lib/systemd/system/$u" "$vdir/"
done
# the template, instantiated for an interface every machine has
cp "$R/lib/systemd/system/idn-dataplane@.service" "$vdir/idn-dataplane@lo.service"
out=$(inr systemd-analyze verify --man=no $(cd "$R" && ls tmp/units/*.service | sed 's|^|/|') 2>&1)
[ -z "$out" ] || log "$out"
check "systemd-analyze verify: the four units, no message" test -z "$out"
sec=$(inr systemd-analyze security --offline=true /lib/systemd/system/idnd.service \
	/lib/systemd/system/idn-agent.service 2>&1 | sed -n 's/.*Overall exposure level for \([^ ]*\): \([0-9.]*\).*/\1 \2/p')
[ -n "$sec" ] && log "systemd-analyze security (exposure, 0 best .. 10):" $sec

# ---- start idnd and the agent as their units would, shipped config
T=$R/etc/idn/tls
mkdir -p "$T"
mk_role_certs "$T" >/dev/null || { tap_fail "test certificates"; tap_done; }
execstart() { sed -n 's/^ExecStart=//p' "$R/lib/systemd/system/$1.service"; }
# StateDirectory= of the units
mkdir -p "$R/var/lib/idn/artifacts" "$R/var/lib/idn-agent"
setup_ns PKG
bg_ns "$PKG" "$TMPD/idnd.log" chroot "$R" $(execstart idnd)
IDND_PID=$BG_PID	# nsenter and chroot exec: idnd's own pid, as $MAINPID
wait_listen "$PKG" 8787 || true
bg_ns "$PKG" "$TMPD/agent.log" chroot "$R" $(execstart idn-agent)
AGENT_PID=$BG_PID
wait_listen "$PKG" 8000 || true
wait_listen "$PKG" 9000 || true
cu() { in_ns "$PKG" curl -s --max-time 5 --cacert "$T/ca.pem" --cert "$T/admin.pem" \
	--key "$T/admin.key" "$@"; }
h=$(cu https://127.0.0.1:8787/healthz)
if [ "$h" = ok ]; then
	tap_ok "idnd (ExecStart of idnd.service, /etc/idn/idnd.conf) answers /healthz over TLS"
else
	sed 's/^/#   /' "$TMPD/idnd.log" | tail -10
	tap_fail "idnd (ExecStart of idnd.service, /etc/idn/idnd.conf) answers /healthz over TLS"
fi
# the inference listener (plain, the load balancer's probe) and the
# management listener (mutual TLS)
h=$(in_ns "$PKG" curl -s --max-time 5 http://127.0.0.1:8000/healthz)$(cu https://127.0.0.1:9000/healthz)
if [ "$h" = okok ]; then
	tap_ok "idn-agent (ExecStart of idn-agent.service, /etc/idn/agent.conf) answers /healthz on both listeners"
else
	sed 's/^/#   /' "$TMPD/agent.log" | tail -10
	tap_fail "idn-agent (ExecStart of idn-agent.service, /etc/idn/agent.conf) answers /healthz on both listeners"
fi
# enrol = approve (shipped): node 1 waits; the operator approves it with idnctl
ctlr() { in_ns "$PKG" chroot "$R" idnctl --ca /etc/idn/tls/ca.pem --cert /etc/idn/tls/admin.pem \
	--key /etc/idn/tls/admin.key "$@"; }
ok=1
for _ in $(seq 50); do
	ctlr node approve 1 >/dev/null 2>&1 && { ok=0; break; }
	sleep 0.2
done
tap_result "the agent's key waits at idnd; idnctl node approve 1 enrols it" $ok \
	"$(tail -5 "$TMPD/agent.log")"
ok=1
for _ in $(seq 50); do
	up=$(ctlr -j node list 2>/dev/null | jq -r '.[] | select(.id == 1) | .state' 2>/dev/null)
	r=$(in_ns "$PKG" curl -s --max-time 5 -o /dev/null -w '%{http_code}' http://127.0.0.1:8000/readyz)
	[ "$up" = up ] && [ "$r" = 200 ] && { ok=0; break; }
	sleep 0.2
done
tap_result "approved: idnd lists node 1 up, the agent's /readyz is 200" $ok \
	"node state=$up readyz=$r; $(tail -3 "$TMPD/agent.log")"
# systemctl reload (ExecReload: kill -HUP $MAINPID) re-reads the shipped file
sed -i 's/^hb-timeout = 3000$/hb-timeout = 4000/' "$R/etc/idn/idnd.conf"
sed -i 's/^hb-ms = 1000$/hb-ms = 900/' "$R/etc/idn/agent.conf"
reload=$(sed -n 's/^ExecReload=//p' "$R/lib/systemd/system/idnd.service")
[ "$reload" = '/bin/kill -HUP $MAINPID' ] && [ -x "$R/bin/kill" ] &&
	inr /bin/kill -HUP "$IDND_PID" && inr /bin/kill -HUP "$AGENT_PID"
ok=1
for _ in $(seq 50); do
	grep -q 'idnd: reloaded /etc/idn/idnd.conf: .*hb-timeout 4000' "$TMPD/idnd.log" &&
		grep -q 'idn-agent: reloaded: .*hb-ms 900' "$TMPD/agent.log" && { ok=0; break; }
	sleep 0.1
done
h=$(cu https://127.0.0.1:8787/healthz)
[ "$h" = ok ] || ok=1
tap_result "reload (the units' ExecReload, SIGHUP): idnd and the agent re-read /etc/idn, idnd still answers" \
	$ok "$(tail -2 "$TMPD/idnd.log"; tail -2 "$TMPD/agent.log")"
# journald-friendly: every line of idnd's log carries a level (a timestamp
# and a level word outside the journal, ctl/lib/log.h)
bad=$(grep -cvE '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]+Z (error|warn|info|debug) ' "$TMPD/idnd.log" || true)
[ "$bad" -eq 0 ] || grep -vE '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]+Z (error|warn|info|debug) ' \
	"$TMPD/idnd.log" | head -3 | sed 's/^/#   /'
check "idnd's log lines carry a timestamp and a level ($bad without)" test "$bad" -eq 0
tap_done
