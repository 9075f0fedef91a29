# shellcheck shell=bash
# Shared helpers for bench/*.sh (sourced).  A benchmark measures aistack
# and its baseline in the same run, on the same input, and records one row
# per comparison with `row`; bench/run prints the table and RESULTS.md.
#
#   measure VAR CMD...   run CMD $BENCH_RUNS times (default 3); sets VAR to
#                        the median wall seconds and VAR_rss to the peak
#                        RSS in KiB of the median run
#   row WORKLOAD AISTACK BASELINE-NAME BASELINE UNIT TARGET [lower|higher [RSS]]
#                        record a comparison; for "lower" (times: the
#                        default) ratio = baseline / aistack, for "higher"
#                        (rates) ratio = aistack / baseline; TARGET is the
#                        minimum ratio ("-" when only reported); RSS is
#                        aistack's peak RSS in KiB for the table
#   note TEXT            a line of extra findings for RESULTS.md

set -u
: "${BENCH_RUNS:=3}"
: "${BENCH_OUT:=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/out}"
: "${AISTACK_BIN:=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/build-bench/bin}"
# shellcheck disable=SC2034 # for the scripts that source this file
BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
PATH="$AISTACK_BIN:$PATH"
export AISTACK_BIN PATH
mkdir -p "$BENCH_OUT"
: "${BENCH_WORK:=$BENCH_OUT/work}"
mkdir -p "$BENCH_WORK"

measure() {
	local var=$1 i t rss times=() rsses=()
	shift
	for ((i = 0; i < BENCH_RUNS; i++)); do
		[ -n "${BENCH_PREPARE:-}" ] && eval "$BENCH_PREPARE"
		local t0=$EPOCHREALTIME
		/usr/bin/time -f '%M' -o "$BENCH_OUT/time.txt" "$@" >/dev/null 2>"$BENCH_OUT/stderr.txt" || {
			echo "bench: failed: $*" >&2
			cat "$BENCH_OUT/stderr.txt" >&2
			return 1
		}
		local t1=$EPOCHREALTIME
		t=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.4f", b - a }')
		rss=$(tail -n 1 "$BENCH_OUT/time.txt")
		times+=("$t")
		rsses+=("$t $rss")
	done
	t=$(printf '%s\n' "${times[@]}" | sort -g | sed -n "$(( (BENCH_RUNS + 1) / 2 ))p")
	rss=$(printf '%s\n' "${rsses[@]}" | sort -g | sed -n "$(( (BENCH_RUNS + 1) / 2 ))p" | cut -d' ' -f2)
	printf -v "$var" '%s' "$t"
	printf -v "${var}_rss" '%s' "$rss"
}

row() {
	local workload=$1 ours=$2 bname=$3 base=$4 unit=$5 target=$6 dir=${7:-lower}
	local rss=${8:--}
	local ratio met
	ratio=$(awk -v a="$ours" -v b="$base" -v d="$dir" 'BEGIN {
		if (d == "higher") r = (b > 0 ? a / b : 0); else r = (a > 0 ? b / a : 0);
		printf "%.2f", r }')
	if [ "$target" = - ]; then
		met=-
	else
		met=$(awk -v r="$ratio" -v t="$target" 'BEGIN { print (r >= t ? "yes" : "NO") }')
	fi
	printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$workload" "$ours" "$bname" \
	    "$base" "$unit" "$ratio" "$target" "$met" "$rss" >> "$BENCH_OUT/rows.tsv"
	printf '  %-46s aistack %-10s %-14s %-10s %s  ratio %s (target %s) %s\n' \
	    "$workload" "$ours" "$bname" "$base" "$unit" "$ratio" "$target" "$met"
}

note() {
	printf '%s\n' "$*" >> "$BENCH_OUT/notes.txt"
	printf '  note: %s\n' "$*"
}
