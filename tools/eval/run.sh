#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# make eval: the routing evaluation in simulation (tools/eval/idn_eval),
# figures on stdout ("name value unit"), report and plots in $O/eval/.
# EVAL_ARGS adds options (e.g. --limit 2000, --trace NAME=FILE).
# Then the testbed mode (tools/eval/testbed.sh: a slice through the real
# router, idnd and agents in namespaces, compared with the same slice
# simulated); it needs root and XDP and says why it skips otherwise.
# EVAL_TESTBED=0 leaves it out, EVAL_TESTBED_ARGS adds options.
set -e
O=${O:-build}
OUT="$O/eval"
mkdir -p "$OUT"
# shellcheck disable=SC2086
"$O/tools/idn_eval" --out "$OUT" ${EVAL_ARGS:-} | tee "$OUT/figures.txt"
if [ "${EVAL_TESTBED:-1}" != 0 ]; then
	set +e
	# shellcheck disable=SC2086
	O="$O" tools/eval/testbed.sh --keep "$OUT/testbed" ${EVAL_TESTBED_ARGS:-} |
		tee -a "$OUT/figures.txt"
	rc=${PIPESTATUS[0]}
	set -e
	if [ "$rc" = 4 ]; then
		echo "# eval: testbed mode skipped (the reason above): eval_sim_vs_testbed_p90_err" \
			"and eval_testbed_keepalive_p90_vs_conn not measured" >&2
	elif [ "$rc" != 0 ]; then
		echo "# eval: testbed mode failed (exit $rc)" >&2
		exit 1
	fi
fi
if ! command -v gnuplot >/dev/null 2>&1; then
	echo "# eval: gnuplot not installed (tools/deps.sh): no PNGs, data in $OUT" >&2
	exit 0
fi
cd "$OUT"
pols="idn random round_robin least_loaded consistent_hash sglang_cache_aware llmd_prefix_load llmd_precise"
for t in $(ls rho_*.dat 2>/dev/null | sed 's/^rho_//;s/\.dat$//'); do
	cdf=""
	for p in $pols; do
		[ -f "cdf_${t}_$p.dat" ] && cdf="$cdf${cdf:+, }'cdf_${t}_$p.dat' using 1:2 with lines title '$p'"
	done
	p90="" gp=""
	i=0
	for p in $pols; do
		c1=$((2 + 2 * i)) c2=$((3 + 2 * i))
		p90="$p90${p90:+, }'rho_$t.dat' using 1:$c1 with linespoints title '$p'"
		gp="$gp${gp:+, }'rho_$t.dat' using 1:$c2 with linespoints title '$p'"
		i=$((i + 1))
	done
	gnuplot <<-GP
	set terminal pngcairo size 900,600 noenhanced
	set key bottom right
	set grid
	set output 'ttft_cdf_$t.png'
	set title '$t: TTFT CDF at rho 1.0 (fraction of all requests)'
	set xlabel 'TTFT (s)'
	set logscale x
	$( [ -n "$cdf" ] && echo "plot $cdf" )
	unset logscale x
	set output 'p90_vs_rho_$t.png'
	set title '$t: TTFT p90 (shed as never served) vs load'
	set xlabel 'rho'
	set ylabel 'p90 TTFT (s)'
	set logscale y
	set key top left
	plot $p90
	unset logscale y
	set output 'goodput_vs_rho_$t.png'
	set title '$t: goodput (TTFT <= 2 s, TPOT <= 200 ms) vs load'
	set ylabel 'requests/s'
	plot $gp
	set output 'wan_$t.png'
	set title '$t: WAN bytes per policy, tiered layout, rho 0.7'
	set style data histograms
	set style fill solid
	set ylabel 'GB'
	unset xlabel
	set yrange [0:*]
	set xtics rotate by -30
	unset logscale
	set key off
	plot 'wan_$t.dat' using 2:xtic(1)
	GP
done
# testbed vs simulation: TTFT CDFs of the same slice (real time at the agents' speed)
if [ -f testbed/conn.tsv ] && [ -f testbed/sim.tsv ]; then
	cdf() { sort -g | awk '{ v[NR] = $1 } END { for (i = 1; i <= NR; i++) print v[i], i / NR }'; }
	awk '!/^#/ && $NF == "ok" { print $3 / 1000 }' testbed/conn.tsv | cdf >testbed/cdf_conn.dat
	awk '!/^#/ && $3 >= 0 { print $3 / 1000 }' testbed/sim.tsv | cdf >testbed/cdf_sim.dat
	tb="'testbed/cdf_conn.dat' using 1:2 with lines title 'testbed, a connection per request'"
	tb="$tb, 'testbed/cdf_sim.dat' using 1:2 with lines title 'simulation (idn_eval --speed)'"
	if [ -f testbed/keepalive.tsv ]; then
		awk '!/^#/ && $NF == "ok" { print $3 / 1000 }' testbed/keepalive.tsv | cdf \
			>testbed/cdf_keepalive.dat
		tb="$tb, 'testbed/cdf_keepalive.dat' using 1:2 with lines title 'testbed, keep-alive per session'"
	fi
	gnuplot <<-GP
	set terminal pngcairo size 900,600 noenhanced
	set key bottom right
	set grid
	set logscale x
	set output 'testbed_ttft_cdf.png'
	set title 'testbed vs simulation, same slice: TTFT CDF (served requests)'
	set xlabel 'TTFT (s, real time at the agents speed-up)'
	plot $tb
	GP
fi
echo "# eval: report $OUT/report.md, plots $OUT/*.png" >&2
