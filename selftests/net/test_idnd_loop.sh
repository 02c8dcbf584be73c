#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# test_idnd_loop.sh - idnd's closed loop through the dataplane: a client
# sends requests for a registered but undeployed capability; the router
# counts demand misses in idn_cap_stats; idnd (-L) senses them, places the
# capability, compiles its plan, and the requests are served. A steady
# load re-places nothing; when the load stops, the capability is scaled
# back and its plan leaves the maps.
if [ -z "${IDN_TEST_UNSHARED:-}" ] && [ "$(id -u)" -eq 0 ]; then
	IDN_TEST_UNSHARED=1 exec unshare -m --propagation private "$0" "$@"
fi

source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/topo.sh"

require_root
require_cmd ip nsenter curl jq python3 ethtool findmnt ss
IDND=$BUILD/idnd
topo_bed 2 "$IDND"
URL=http://127.0.0.1:8787
api() { in_ns "$NS_RTR" curl -s -m 5 "$@"; }
post() { api -o /dev/null -w '%{http_code}' -X POST --data-binary "$2" "$URL$1"; }

# -L 400: scale back after 5 idle intervals (2 s); a loaded machine can leave
# a 1 s gap between two requests of the steady load
bg_ns "$NS_RTR" "$TMPD/idnd.log" "$IDND" --insecure --enrol open -d "$TMPD/idnd.db" -P "$PIN/rtr" -t 60000 \
	-L 400 -R 1 -v
for _ in $(seq 100); do api -o /dev/null "$URL/v1/status" && break; sleep 0.05; done
for i in 1 2; do
	post /v1/nodes "{\"id\":$i,\"addr4\":\"10.20.$i.2\",\"addr6\":\"fd00:20:$i::2\",\"mem_gb\":80,\"region\":$i,\"trust\":6}" >/dev/null
	post /v1/nodes/$i/heartbeat '{"load":1}' >/dev/null
done
code=$(post /v1/caps '{"class":7,"name":"chat","resources":{"mem_gb":30}}')
tap_result "capability registered, no demand, not placed" \
	"$([ "$code" = 201 ] && [ "$(api "$URL/v1/placement" | jq length)" = 0 ]; echo $?)"
check "VIP for cap 7/0" ctl vip add $TOPO_VIP4 port 80 proto tcp cap 7/0 tier 1

# demand for the undeployed capability: misses (rejected with RST)
served=1
for _ in $(seq 60); do
	if who "http://$TOPO_VIP4/" -m 1 | grep -q node; then served=0; break; fi
	sleep 0.05
done
misses=$(sed -n 's/.*LOOP: cap 7\/0 (label 1792): \([0-9]*\) unmet.*/\1/p' "$TMPD/idnd.log" | head -1)
st=$(api "$URL/v1/status")
tap_result "${misses:-no} misses sensed, then idnd placed the capability (scale out)" \
	"$([ "${misses:-0}" -ge 1 ] && [ "$(jq .loop.scale_out <<<"$st")" -ge 1 ]; echo $?)" "$st"
cands=$(ctl -j plan show | jq -c '[.. | objects | .node? // empty] | unique')
tap_result "plan for cap 7/0 in the maps: $cands" "$([ "$cands" != "[]" ] && [ -n "$cands" ]; echo $?)"
tap_result "requests served after placement" $served "$(cat "$TMPD/idnd.log")"

# steady load: nothing moves
ch0=$(api "$URL/v1/status" | jq .loop.changed)
ok=0
for _ in $(seq 20); do who "http://$TOPO_VIP4/" -m 1 | grep -q node || ok=1; sleep 0.05; done
ch1=$(api "$URL/v1/status" | jq .loop.changed)
tap_result "steady load: every request served, no placement changed ($ch0 -> $ch1)" \
	"$([ $ok = 0 ] && [ "$ch0" = "$ch1" ]; echo $?)"

# idle: scaled back, plan gone
gone=1
for _ in $(seq 60); do
	[ "$(api "$URL/v1/placement" | jq length)" = 0 ] && { gone=0; break; }
	sleep 0.1
done
cands=$(ctl -j plan show | jq -c '[.. | objects | .node? // empty] | unique')
tap_result "idle: scaled back, plan left the maps ($cands)" \
	"$([ $gone = 0 ] && [ "$cands" = "[]" ]; echo $?)" "$(api "$URL/v1/status")"
tap_done
