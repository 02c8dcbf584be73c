#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# test_openapi.sh - docs/openapi/*.yaml against the running servers: an
# idnd and an idn-agent (emulator, registered with it) in a namespace;
# every documented operation answers one of its documented statuses (the
# agent's management operations on the management listener, refused on
# the inference one), every path their dispatch code names is documented,
# undocumented paths answer 404 (selftests/net/openapi_check.py).
# TAP output; exit 4 when the machine cannot run it.
if [ -z "${IDN_TEST_UNSHARED:-}" ] && [ "$(id -u)" -eq 0 ]; then
	IDN_TEST_UNSHARED=1 exec unshare -m --propagation private "$0" "$@"
fi

source "$(dirname "$0")/lib.sh"

require_root
require_cmd ip curl python3
python3 -c 'import yaml' 2>/dev/null || skip_all "no python3-yaml"
AGENT=$BUILD/idn-agent
require_file "$AGENT" "$BUILD/idnd"
probe_netns || skip_all "cannot create network namespaces"

make_tmpdir || exit 1
setup_ns NS || { tap_fail "netns"; tap_done; }
URL=http://127.0.0.1:8787
AURL=http://127.0.0.1:8000
MURL=http://127.0.0.1:9000
CHECK=$IDN_ROOT/selftests/net/openapi_check.py

bg_ns "$NS" "$TMPD/idnd.log" "$BUILD/idnd" --insecure --enrol open -d "$TMPD/idnd.db" -p 8787 \
	-t 60000 -P none
for _ in $(seq 100); do in_ns "$NS" curl -sf -o /dev/null $URL/readyz && break; sleep 0.05; done
bg_ns "$NS" "$TMPD/agent.log" "$AGENT" --insecure --node-id 1 --addr4 10.1.0.1 --trust 5 \
	--key "$TMPD/node.key" --controller $URL --hb-ms 100 --listen 127.0.0.1:8000 \
	--mgmt-listen 127.0.0.1:9000 --speed 50 --mem-budget 4M --artifact-dir "$TMPD"
ok=1
for _ in $(seq 100); do in_ns "$NS" curl -sf -o /dev/null $AURL/readyz && { ok=0; break; }; sleep 0.05; done
tap_result "idnd and an agent registered with it are ready" $ok "$(tail -5 "$TMPD/agent.log")"

run_check() {
	local line st why name
	while IFS=$'\t' read -r st name why; do
		case $st in
		PASS) tap_ok "$1: $name" ;;
		FAIL) tap_result "$1: $name" 1 "$why" ;;
		*) log "$st $name $why" ;;
		esac
	done < <(in_ns "$NS" python3 "$CHECK" "${@:2}" 2>&1)
}
run_check idnd "$IDN_ROOT/docs/openapi/idnd.yaml" $URL --src "$IDN_ROOT"/ctl/idnd/api.c \
	"$IDN_ROOT"/ctl/idnd/ident.c "$IDN_ROOT"/ctl/idnd/signed.c "$IDN_ROOT"/ctl/idnd/fed.c
run_check idn-agent "$IDN_ROOT/docs/openapi/idn-agent.yaml" $AURL --mgmt $MURL \
	--src "$IDN_ROOT"/agent/http.c
tap_done
