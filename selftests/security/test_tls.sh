#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# test_tls.sh - mutual TLS and roles on the control plane's HTTP APIs
# (docs/security.md, "Transport and roles"), replayed in a namespace of
# its own against idnd and an idn-agent's management listener, both with
# certificates from a test CA (lib.sh mk_role_certs). Each attack must be
# refused (403, or no HTTP at all for plain HTTP on the TLS port) and the
# refusal logged naming the principal and the endpoint:
#   no client certificate (read and write), a certificate from another CA,
#   an expired one, one whose OU is no role, a node certificate calling an
#   admin endpoint, registering or heartbeating as another node, a router
#   certificate writing, a read-only certificate reading the registry, a
#   wrong bearer token, plain HTTP against the TLS port; on the agent's
#   management listener: no certificate, a node's certificate.
# Also (not attacks): each role reaches what it may, the agent registers
# over mTLS, idnctl speaks mTLS and says clearly when it cannot.
# Every attack's TAP line starts "attack:" (counted by run.sh).
if [ -z "${IDN_TEST_UNSHARED:-}" ] && [ "$(id -u)" -eq 0 ]; then
	IDN_TEST_UNSHARED=1 exec unshare -m --propagation private "$0" "$@"
fi

source "$(dirname "$0")/../net/lib.sh"

require_root
require_cmd ip jq nsenter curl openssl
IDND=$BUILD/idnd
AGENT=$BUILD/idn-agent
require_file "$IDND" "$AGENT" "$IDNCTL"
probe_netns || skip_all "cannot create network namespaces"

make_tmpdir || exit 1
setup_ns NS || { tap_fail "netns"; tap_done; }
P=$TMPD/pki
URL=https://127.0.0.1:8787
MGMT=https://127.0.0.1:9100
check "test PKI: a CA and a certificate per role (openssl)" mk_role_certs "$P"
mk_ca "$TMPD/other" && IDN_CERT_CA=$TMPD/other mk_cert "$P" evil admin admin &&
	IDN_CERT_DAYS=-1 mk_cert "$P" expired admin admin-old && mk_cert "$P" norole staff bob ||
	{ tap_fail "extra certificates"; tap_done; }
head -c 24 /dev/urandom | base64 >"$TMPD/token"

# call WHO METHOD URL [BODY]: the HTTP code (000: no HTTP answer); body in $TMPD/resp
call() {
	local who=$1 m=$2 u=$3 body=${4:-} a=(--cacert "$P/ca.pem")
	case $who in
	-) ;;
	token=*) a+=(-H "Authorization: Bearer ${who#token=}") ;;
	*) a+=(--cert "$P/$who.pem" --key "$P/$who.key") ;;
	esac
	[ -n "$body" ] && a+=(--data-binary "$body")
	: >"$TMPD/resp"
	in_ns "$NS" curl -s -m 5 -o "$TMPD/resp" -w '%{http_code}' "${a[@]}" -X "$m" "$u" 2>/dev/null
}
# refused LOG NAME WHO METHOD URL [BODY] [WANT-CODE] [LOG-PATTERN]: an attack refused and logged
refused() {
	local log=$1 name=$2 who=$3 m=$4 u=$5 body=${6:-} want=${7:-403} pat=${8:-} lines code new
	lines=$(wc -l <"$log")
	code=$(call "$who" "$m" "$u" "$body")
	sleep 0.1
	new=$(tail -n +$((lines + 1)) "$log")
	[ -n "$pat" ] || pat="403 $m ${u#https://127.0.0.1:[0-9]*} refused"
	tap_result "attack: $name: $want" "$([ "$code" = "$want" ] && grep -qF -- "$pat" <<<"$new"; echo $?)" \
		"got $code $(head -c 200 "$TMPD/resp"); log: $(head -3 <<<"$new")"
}

bg_ns "$NS" "$TMPD/idnd.log" "$IDND" --enrol open -d "$TMPD/idnd.db" -P none -t 60000 \
	--ca "$P/ca.pem" --cert "$P/idnd.pem" --key "$P/idnd.key" --read-token "$TMPD/token"
IDND_PID=$BG_PID
for _ in $(seq 100); do [ "$(call admin GET $URL/v1/status)" = 200 ] && break; sleep 0.05; done
check "idnd serves mutual TLS (admin reads /v1/status)" \
	test "$(call admin GET $URL/v1/status)" = 200

# ---- what each role may do
code=$(call admin POST $URL/v1/caps '{"class":1,"name":"c1","resources":{"mem_gb":1}}')
tap_result "admin registers a capability" "$([ "$code" = 201 ]; echo $?)" "got $code $(cat "$TMPD/resp")"
code=$(call router GET $URL/v1/placement)
tap_result "router reads the placement" "$([ "$code" = 200 ]; echo $?)" "got $code"
code=$(call reader GET $URL/metrics)
tap_result "read-only certificate scrapes /metrics" "$([ "$code" = 200 ]; echo $?)" "got $code"
code=$(call "token=$(cat "$TMPD/token")" GET $URL/v1/status)
tap_result "the bearer token reads /v1/status without a certificate" \
	"$([ "$code" = 200 ]; echo $?)" "got $code"

# ---- attacks on idnd's API
L=$TMPD/idnd.log
refused "$L" "no client certificate reads /v1/status" - GET $URL/v1/status "" 403 "no client certificate"
refused "$L" "no client certificate registers a capability" - POST $URL/v1/caps \
	'{"class":2,"name":"x","resources":{"mem_gb":1}}' 403 "no client certificate"
refused "$L" "certificate from another CA" evil POST $URL/v1/caps \
	'{"class":3,"name":"x","resources":{"mem_gb":1}}' 403 "issuer is unknown"
refused "$L" "expired certificate" expired GET $URL/v1/nodes "" 403 "expired"
refused "$L" "certificate whose OU is no role" norole GET $URL/v1/nodes "" 403 "is no role"
refused "$L" "node certificate calls an admin endpoint (POST /v1/caps)" node-1 POST $URL/v1/caps \
	'{"class":4,"name":"x","resources":{"mem_gb":1}}' 403 "refused for node-1 (role node): needs admin"
refused "$L" "node certificate solves the placement" node-1 POST $URL/v1/placement/solve '{}' 403 \
	"(role node): needs admin"
refused "$L" "node-1 registers as node 2" node-1 POST $URL/v1/nodes \
	'{"id":2,"addr4":"10.9.0.2","mem_gb":8,"region":0,"trust":5}' 403 "needs the node's own ID"
refused "$L" "node-1 heartbeats for node 2" node-1 POST $URL/v1/nodes/2/heartbeat '{"load":1}' 403 \
	"needs the node's own ID"
refused "$L" "router certificate writes a policy class" router POST $URL/v1/policies \
	'{"name":"p","min_trust":1}' 403 "refused for router (role router): needs admin"
refused "$L" "router certificate deletes a capability" router DELETE $URL/v1/caps/256 "" 403 \
	"(role router): needs admin"
refused "$L" "read-only certificate reads the registry" reader GET $URL/v1/nodes "" 403 \
	"(role read-only): needs router"
refused "$L" "node certificate drains itself (POST /v1/nodes/1/drain)" node-1 POST \
	$URL/v1/nodes/1/drain '{}' 403 "refused for node-1 (role node): needs admin"
refused "$L" "router certificate undrains a node" router POST $URL/v1/nodes/1/undrain '' 403 \
	"(role router): needs admin"
refused "$L" "a wrong bearer token" "token=not-the-token-0123456789" GET $URL/v1/status "" 403 \
	"no client certificate"
lines=$(wc -l <"$L")
code=$(in_ns "$NS" curl -s -m 5 -o /dev/null -w '%{http_code}' http://127.0.0.1:8787/v1/status)
sleep 0.1
tap_result "attack: plain HTTP against the TLS port: no HTTP answer" \
	"$([ "$code" = 000 ] && tail -n +$((lines + 1)) "$L" | grep -q "TLS handshake failed"; echo $?)" \
	"got $code; log: $(tail -n +$((lines + 1)) "$L" | head -2)"
code=$(call admin GET $URL/v1/caps)
tap_result "nothing changed: one capability, no policy class" \
	"$([ "$code" = 200 ] && [ "$(jq length "$TMPD/resp")" = 1 ] &&
	   [ "$(call admin GET $URL/v1/policies)" = 200 ] && [ "$(jq length "$TMPD/resp")" = 0 ]; echo $?)"

# ---- idnctl
ic() { in_ns "$NS" env -u IDN_INSECURE "$IDNCTL" -C $URL "$@"; }
out=$(ic --ca "$P/ca.pem" --cert "$P/admin.pem" --key "$P/admin.key" -j controller status 2>&1)
tap_result "idnctl with the admin certificate: controller status" \
	"$(jq -e '.caps == 1' <<<"$out" >/dev/null; echo $?)" "got $out"
out=$(in_ns "$NS" env IDN_CA="$P/ca.pem" IDN_CERT="$P/admin.pem" IDN_KEY="$P/admin.key" \
	"$IDNCTL" -C $URL policy add name gold trust 3 2>&1)
tap_result "idnctl with \$IDN_CA/\$IDN_CERT/\$IDN_KEY (admin) adds a policy class" "$?" "$out"
out=$(ic controller status 2>&1)
tap_result "idnctl without a certificate: says so" \
	"$(grep -q "no client certificate" <<<"$out"; echo $?)" "got $out"
out=$(ic --ca "$TMPD/other/ca.pem" --cert "$P/admin.pem" --key "$P/admin.key" controller status 2>&1)
tap_result "idnctl with another CA: the server certificate does not verify" \
	"$(grep -q "server certificate does not verify" <<<"$out"; echo $?)" "got $out"
out=$(ic --ca "$P/ca.pem" --cert "$P/router.pem" --key "$P/router.key" policy add name x trust 1 2>&1)
tap_result "idnctl with the router certificate: a change refused 403" \
	"$(grep -q "HTTP 403" <<<"$out"; echo $?)" "got $out"
out=$(in_ns "$NS" env -u IDN_INSECURE "$IDNCTL" -C http://127.0.0.1:8787 controller status 2>&1)
tap_result "idnctl refuses plain http:// without --insecure" \
	"$(grep -q "without --insecure" <<<"$out"; echo $?)" "got $out"

# ---- idn-agent: registration over mTLS, its management listener
bg_ns "$NS" "$TMPD/agent.log" "$AGENT" --node-id 1 --addr4 127.0.0.1 --key "$TMPD/node.key" \
	--controller $URL --hb-ms 100 --listen 127.0.0.1:8100 --mgmt-listen 127.0.0.1:9100 \
	--tls-ca "$P/ca.pem" --tls-cert "$P/node-1.pem" --tls-key "$P/node-1.key" --no-engine
AGENT_PID=$BG_PID
ok=1
for _ in $(seq 100); do
	# registered (else no heartbeat is answered 200) and heartbeating as node-1
	[ "$(jq -s 'map(select(.who == "node-1@127.0.0.1" and .status == 200)) | length' \
		"$TMPD/idnd.db.audit" 2>/dev/null)" -gt 0 ] 2>/dev/null && { ok=0; break; }
	sleep 0.05
done
tap_result "the agent registers and heartbeats over mTLS as node-1 (audit names it)" "$ok" \
	"$(tail -3 "$TMPD/idnd.db.audit" 2>/dev/null) $(tail -3 "$TMPD/agent.log")"
L=$TMPD/agent.log
code=$(call idnd POST $MGMT/v1/residency/evict '{"name":"none"}')
tap_result "idnd's certificate reaches the agent's management listener" \
	"$([ "$code" != 000 ] && [ "$code" != 403 ]; echo $?)" "got $code $(cat "$TMPD/resp")"
refused "$L" "agent management listener without a client certificate" - POST \
	$MGMT/v1/residency/evict '{"name":"x"}' 403 "no client certificate"
refused "$L" "agent management listener with a node's certificate" node-2 POST \
	$MGMT/v1/residency/load '{"name":"x","path":"/etc/passwd"}' 403 "(role node): needs controller"
refused "$L" "agent management listener with a router's certificate" router POST \
	$MGMT/v1/kv/push '{}' 403 "(role router): needs controller"

# ---- idnd's etcd client over TLS (etcd --client-cert-auth with the same CA)
if command -v etcd >/dev/null; then
	CP=$((20000 + RANDOM % 20000))
	ETCD=https://127.0.0.1:$CP
	ec=(--cacert "$P/ca.pem" --cert "$P/admin.pem" --key "$P/admin.key")
	ETCD_CURL=("${ec[@]}")
	start_etcd "$NS" "$ETCD" --cert-file "$P/idnd.pem" --key-file "$P/idnd.key" \
		--trusted-ca-file "$P/ca.pem" --client-cert-auth
	bg_ns "$NS" "$TMPD/idnd-e.log" "$IDND" -d "$TMPD/e.db" -P none -p 8790 -E "$ETCD" \
		--ca "$P/ca.pem" --cert "$P/idnd.pem" --key "$P/idnd.key" \
		--etcd-ca "$P/ca.pem" --etcd-cert "$P/idnd.pem" --etcd-key "$P/idnd.key"
	lead=""
	for _ in $(seq 100); do
		call admin GET https://127.0.0.1:8790/v1/status >/dev/null
		lead=$(jq -r .leader "$TMPD/resp" 2>/dev/null)
		[ "$lead" = true ] && break
		sleep 0.1
	done
	code=$(call admin POST https://127.0.0.1:8790/v1/caps \
		'{"class":9,"name":"e","resources":{"mem_gb":1}}')
	k=$(printf '%s' /idn/0/caps/2304 | base64 -w0)
	n=$(in_ns "$NS" curl -s -m 2 "${ec[@]}" -X POST "$ETCD/v3/kv/range" -d "{\"key\":\"$k\"}" |
		jq -r '.count // "0"')
	tap_result "idnd on etcd over mutual TLS (--etcd-ca/--etcd-cert/--etcd-key): leader, a capability written" \
		"$([ "$lead" = true ] && [ "$code" = 201 ] && [ "$n" = 1 ]; echo $?)" \
		"leader $lead, POST $code, in etcd $n; $(tail -3 "$TMPD/idnd-e.log")"
	bg_ns "$NS" "$TMPD/f.log" "$IDND" -d "$TMPD/f.db" -P none -p 8791 -E "$ETCD" --insecure \
		--etcd-ca "$P/ca.pem"
	FPID=$BG_PID
	sleep 3
	lead=$(in_ns "$NS" curl -s -m 2 http://127.0.0.1:8791/v1/status | jq -r .leader)
	code=$(in_ns "$NS" curl -s -m 2 -o /dev/null -w '%{http_code}' -X POST \
		-d '{"class":10,"name":"x","resources":{"mem_gb":1}}' http://127.0.0.1:8791/v1/caps)
	tap_result "without an etcd client certificate idnd never leads (writes 503)" \
		"$([ "$lead" = false ] && [ "$code" = 503 ]; echo $?)" "leader $lead, POST $code"
	kill "$FPID" 2>/dev/null
else
	tap_skip "idnd on etcd over mutual TLS" "etcd not installed (Debian etcd-server)"
fi

# ---- start-up refusals
rc=0; "$IDND" -d "$TMPD/x.db" -P none -p 18999 >"$TMPD/start.out" 2>&1 || rc=$?
tap_result "idnd without TLS material or --insecure refuses to start" \
	"$([ $rc = 2 ] && grep -q -- "--insecure" "$TMPD/start.out"; echo $?)" "rc $rc $(cat "$TMPD/start.out")"
rc=0; timeout 5 "$AGENT" --node-id 7 --listen 127.0.0.1:18100 --no-engine --key "$TMPD/k7" \
	>"$TMPD/start.out" 2>&1 || rc=$?
tap_result "idn-agent with a management listener but no TLS material refuses to start" \
	"$([ $rc = 2 ] && grep -q -- "--insecure" "$TMPD/start.out"; echo $?)" "rc $rc $(cat "$TMPD/start.out")"
in_ns "$NS" timeout 5 "$IDND" --insecure -d "$TMPD/y.db" -P none -p 18998 >"$TMPD/start.out" 2>&1 &
YPID=$!
sleep 0.5
tap_result "idnd --insecure warns at start" \
	"$(grep -q "insecure.*plain HTTP" "$TMPD/start.out"; echo $?)" "$(cat "$TMPD/start.out")"
wait "$YPID"	# only this one: the daemons above are the cleanup's

tap_done
