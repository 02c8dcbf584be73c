#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# test_etcd_auth.sh - idnd and idn-agent on an etcd with its own
# authentication on (`etcdctl auth enable`; docs/security.md, "etcd"):
# users from --etcd-user and --etcd-password-file.
#   - no credentials, a wrong password, a read-only user: refused by etcd,
#     idnd says so (an error line naming etcd's reason; it keeps trying, so
#     an operator can fix etcd's users without restarting it), nothing
#     written;
#   - bad flags (a password file without a user, a missing or empty file):
#     exit 2 with a message;
#   - the right users: idnd leads, its plans reach etcd; an agent whose
#     role covers only nodes/ (the least it needs) keeps its lease and key;
#   - etcd's tokens thrown away (auth disable + enable): the next write
#     authenticates again and goes through.
# Skips without etcd.
if [ -z "${IDN_TEST_UNSHARED:-}" ] && [ "$(id -u)" -eq 0 ]; then
	IDN_TEST_UNSHARED=1 exec unshare -m --propagation private "$0" "$@"
fi

source "$(dirname "$0")/../net/lib.sh"

require_root
command -v etcd >/dev/null || skip_all "etcd not installed (Debian etcd-server)"
command -v etcdctl >/dev/null || skip_all "etcdctl not installed (Debian etcd-client)"
require_cmd ip jq nsenter curl base64
IDND=$BUILD/idnd
AGENT=$BUILD/idn-agent
require_file "$IDND" "$AGENT"
probe_netns || skip_all "cannot create network namespaces"

make_tmpdir || exit 1
setup_ns NS || { tap_fail "netns"; tap_done; }
ip -n "$NS" link set lo up
CP=$((20000 + RANDOM % 20000))
ETCD=http://127.0.0.1:$CP
PA=$((CP + 1)) PB=$((CP + 2))
DOM=/idn/0/

start_etcd "$NS" "$ETCD"
check "etcd up on 127.0.0.1:$CP" test $? = 0 || tap_done

ectl() { in_ns "$NS" etcdctl --endpoints "$ETCD" "$@"; }
R=(--user root:rootpw)
# root, a read-write user for the domain's prefix, a read-only one
setup=$( {
	ectl user add root --new-user-password=rootpw &&
	ectl role add idn && ectl role grant-permission idn --prefix=true readwrite $DOM &&
	ectl user add idn --new-user-password=idnpw && ectl user grant-role idn idn &&
	ectl role add ro && ectl role grant-permission ro --prefix=true read $DOM &&
	ectl user add reader --new-user-password=readpw && ectl user grant-role reader ro &&
	ectl role add node && ectl role grant-permission node --prefix=true readwrite ${DOM}nodes/ &&
	ectl user add node --new-user-password=nodepw && ectl user grant-role node node &&
	ectl auth enable; } 2>&1)
check "etcd auth enabled: users root, idn (readwrite $DOM), reader (read), node (readwrite ${DOM}nodes/)" \
	test $? = 0 || { echo "# $setup"; tap_done; }
printf 'idnpw\n' >"$TMPD/idn.pw"
printf 'wrong\n' >"$TMPD/wrong.pw"
printf 'readpw\n' >"$TMPD/read.pw"
printf 'nodepw\n' >"$TMPD/node.pw"
: >"$TMPD/empty.pw"
chmod 600 "$TMPD"/*.pw

keys() { ectl "${R[@]}" get --prefix --keys-only $DOM 2>/dev/null | grep -v '^$'; }
# idnd ARGS...: a 3 s leader try; its exit code (124: still running), log in $TMPD/try.log
try_idnd() {
	timeout 3 nsenter --net="/run/netns/$NS" "$IDND" --insecure --enrol open \
		-d "$TMPD/try.db" -p "$PB" -P none -E "$ETCD" -N t "$@" >"$TMPD/try.log" 2>&1
}

try_idnd
rc=$?
refused() {	# PATTERN: idnd's error line for an election etcd refused, with etcd's reason
	grep -q "error DIST: leader .* refused by etcd (credentials or permissions.*$1" "$TMPD/try.log" ||
		{ grep DIST "$TMPD/try.log"; return 1; }
}
check "attack: idnd without credentials on an auth-enabled etcd: refused, says etcd wants a user" \
	refused 'user name is empty'
try_idnd --etcd-user idn --etcd-password-file "$TMPD/wrong.pw"
rc=$?
check "attack: idnd with a wrong etcd password: refused, says so" \
	refused 'authentication as user idn refused.*authentication failed'
try_idnd --etcd-user reader --etcd-password-file "$TMPD/read.pw"
rc=$?
check "attack: idnd as a read-only etcd user: its writes refused, permission denied" \
	refused 'permission denied'
check "nothing written under $DOM by the refused tries" test -z "$(keys)"

try_idnd --etcd-password-file "$TMPD/idn.pw"
rc=$?
check "a password file without --etcd-user: exit 2 ($rc), says so" \
	bash -c "[ $rc = 2 ] && grep -q 'needs --etcd-user' '$TMPD/try.log'"
try_idnd --etcd-user idn --etcd-password-file "$TMPD/none.pw"
rc=$?
check "a missing password file: exit 2 ($rc), says so" \
	bash -c "[ $rc = 2 ] && grep -q 'cannot read the etcd password file' '$TMPD/try.log'"
try_idnd --etcd-user idn --etcd-password-file "$TMPD/empty.pw"
rc=$?
check "an empty password file: exit 2 ($rc), says so" \
	bash -c "[ $rc = 2 ] && grep -q 'first line is empty' '$TMPD/try.log'"
timeout 5 nsenter --net="/run/netns/$NS" "$AGENT" --insecure --node-id 9 --addr4 10.9.0.9 \
	--no-engine --etcd "$ETCD" --etcd-password-file "$TMPD/idn.pw" \
	>"$TMPD/try.log" 2>&1
rc=$?
check "idn-agent: a password file without --etcd-user: exit 2 ($rc), says so" \
	bash -c "[ $rc = 2 ] && grep -q 'needs --etcd-user' '$TMPD/try.log'"

# the real leader
bg_ns "$NS" "$TMPD/idnd.log" "$IDND" -v --insecure --enrol open -d "$TMPD/a.db" -p "$PA" -P none \
	-t 60000 -E "$ETCD" -N a --etcd-user idn --etcd-password-file "$TMPD/idn.pw"
api() { in_ns "$NS" curl -s -m 5 "$@"; }
post() { api -o /dev/null -w '%{http_code}' -X POST --data-binary "$2" "http://127.0.0.1:$PA$1"; }
wait_for 20 '[ "$(api "http://127.0.0.1:$PA/v1/status" | jq -r .leader 2>/dev/null)" = true ]'
check "idnd as etcd user idn: leader" test $? = 0
for i in 1 2; do
	post /v1/nodes "{\"id\":$i,\"addr4\":\"10.2.0.$i\",\"mem_gb\":80,\"region\":$i,\"trust\":6}" \
		>/dev/null
	post /v1/nodes/$i/heartbeat '{"load":1}' >/dev/null
done
post /v1/caps '{"class":7,"name":"chat","resources":{"mem_gb":30}}' >/dev/null
post /v1/demand '{"cap":1792,"region":1,"rps":100}' >/dev/null
code=$(post /v1/placement/solve '{}')
wait_for 20 'keys | grep -q "^${DOM}plans/1792-255-255$"'
check "solve ($code): the plan reached etcd, written as user idn" test $? = 0

# an agent with a lease on the same etcd, as user node: readwrite on nodes/ only
# (the least role: it cannot read the routers' telemetry keys)
bg_ns "$NS" "$TMPD/agent.log" "$AGENT" --insecure --node-id 3 --addr4 10.2.0.3 --trust 6 \
	--no-engine --region 1 --key "$TMPD/node3.key" --listen 127.0.0.1:$((CP + 4)) --hb-ms 200 \
	--etcd-ttl 2 --controller "http://127.0.0.1:$PA" --etcd "$ETCD" \
	--etcd-user node --etcd-password-file "$TMPD/node.pw"
APID=$BG_PID
wait_for 20 'keys | grep -q "^${DOM}nodes/3$"'
check "idn-agent as etcd user node (readwrite ${DOM}nodes/ only): its node key and lease are in etcd" test $? = 0 ||
	echo "# $(tail -3 "$TMPD/agent.log")"

# tokens thrown away: auth disable + enable (etcd drops every simple token)
ectl "${R[@]}" auth disable >/dev/null 2>&1 && ectl auth enable >/dev/null 2>&1
check "etcd auth disabled and enabled again (every token invalid)" test $? = 0
post /v1/caps '{"class":8,"name":"code","resources":{"mem_gb":30}}' >/dev/null
post /v1/demand '{"cap":2048,"region":1,"rps":100}' >/dev/null
code=$(post /v1/placement/solve '{}')
# the plan in etcd, and idnd's line saying so (written beside the put: polled too)
wait_for 20 'keys | grep -q "^${DOM}plans/2048-255-255$"' &&
	wait_for 10 "grep -q 'DIST: etcd token 2 obtained' '$TMPD/idnd.log'"
check "after the tokens were dropped, idnd authenticated again: the new plan reached etcd" \
	test $? = 0 ||
	grep 'DIST: etcd token' "$TMPD/idnd.log" | sed 's/^/#   /'
check "the agent's lease still kept alive after the tokens were dropped" \
	bash -c "sleep 3; kill -0 $APID && [ -n \"\$(nsenter --net=/run/netns/$NS etcdctl \
		--endpoints $ETCD ${R[*]} get ${DOM}nodes/3 --print-value-only)\" ]"

tap_done
