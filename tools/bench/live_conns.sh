# SPDX-License-Identifier: GPL-2.0
#
# live_conns.sh - live client connections through the router while a
# benchmark does something to it, counted from the client's side
# (sourced by dp_replace.sh and conn_state.sh, after selftests/net/lib.sh
# and topo.sh):
#
#   live_start URL [DOWNLOADS [BYTES [RATE]]]
#       in the client namespace: wrk, 16 keep-alive connections (HTTP GETs
#       of URL, 10 s timeout), and DOWNLOADS (4) paced downloads of BYTES
#       (4000000) at RATE bytes/s (200000) from URL/bytes/BYTES
#   live_stop
#       stops wrk, waits for the downloads; sets LIVE_BROKEN (wrk socket
#       errors + non-2xx answers + downloads that did not complete),
#       LIVE_REQS (wrk's requests) and LIVE_SUMMARY (one line for stderr)

live_start() {
	local url=$1 k
	LIVE_NDL=${2:-4}
	LIVE_BIG=${3:-4000000}
	local rate=${4:-200000}
	LIVE_N=$((${LIVE_N:-0} + 1))
	LIVE_TAG=$TMPD/live$LIVE_N
	bg_ns "$NS_CLI" "$LIVE_TAG.wrk" wrk -t1 -c16 -d600s --timeout 10s "$url/"
	LIVE_WRK=$BG_PID
	LIVE_DL=()
	for ((k = 0; k < LIVE_NDL; k++)); do
		bg_ns "$NS_CLI" "$LIVE_TAG.dl$k" curl -s -o /dev/null -m 120 \
			-w '%{http_code} %{size_download}\n' "$url/bytes/$LIVE_BIG?rate=$rate"
		LIVE_DL+=("$BG_PID")
	done
}

live_stop() {
	local k dl_bad=0 sock non2xx
	kill -INT "$LIVE_WRK" 2>/dev/null
	wait "$LIVE_WRK"
	for ((k = 0; k < LIVE_NDL; k++)); do
		wait "${LIVE_DL[$k]}"
		[ "$(cat "$LIVE_TAG.dl$k")" = "200 $LIVE_BIG" ] || dl_bad=$((dl_bad + 1))
	done
	sock=$(sed -n 's/.*Socket errors: connect \([0-9]*\), read \([0-9]*\), write \([0-9]*\), timeout \([0-9]*\).*/\1 \2 \3 \4/p' \
		"$LIVE_TAG.wrk" | awk '{ print $1 + $2 + $3 + $4 }')
	non2xx=$(sed -n 's/.*Non-2xx or 3xx responses: \([0-9]*\).*/\1/p' "$LIVE_TAG.wrk")
	LIVE_REQS=$(sed -n 's/^ *\([0-9]*\) requests in.*/\1/p' "$LIVE_TAG.wrk")
	LIVE_BROKEN=$((${sock:-0} + ${non2xx:-0} + dl_bad))
	LIVE_SUMMARY="wrk: ${LIVE_REQS:-?} requests, socket errors ${sock:-0}, non-2xx ${non2xx:-0}; downloads not complete $dl_bad of $LIVE_NDL"
}
