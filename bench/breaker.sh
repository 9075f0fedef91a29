#!/usr/bin/env bash
# aistack-breaker's overhead, with hyperfine: a call through a closed
# breaker ("run b -- true") against the bare command ("true"), and a
# refused call (an open breaker: the command is not run) against both.
# Targets (issue 6): run b -- true at most 2x true; a refused call faster
# than running true.  Usage: bench/breaker.sh [RUNS]   (default 500)
set -eu
. "$(dirname "$0")/lib.sh"

runs=${1:-500}
if ! command -v hyperfine > /dev/null; then
	echo "bench: hyperfine is missing (sh tests/deps.sh bench)" >&2
	exit 1
fi
export AISTACK_STATE_DIR=$BENCH_WORK/breaker-state AISTACK_CONFIG=/dev/null
rm -rf "$AISTACK_STATE_DIR"
breaker=$(command -v aistack-breaker)
true_=$(command -v true)
# the floor of any wrapper: a bare C program that spawns and waits
floor=$BENCH_WORK/spawn-wait
cc -O2 -o "$floor" "$BENCH_DIR/spawn-wait.c"
"$breaker" reset closed
"$breaker" trip --open-for 1d open
echo "breaker: $runs runs each"

# -N: no shell in between; -i: the refused call exits 75
hyperfine -N -i --warmup 50 --runs "$runs" --style none \
	--export-json "$BENCH_OUT/breaker.json" \
	"$true_" "$breaker run closed -- $true_" "$breaker run open -- $true_" \
	"$floor $true_" \
	> /dev/null 2> "$BENCH_OUT/breaker-hyperfine.txt"
# median wall times in milliseconds
read -r t_true t_run t_open t_floor < <(jq -r \
	'[.results[].median * 1000 | . * 1000 | round / 1000] | @tsv' \
	"$BENCH_OUT/breaker.json")
[ "$("$breaker" status --json closed | jq -r .state)" = closed ]
[ "$("$breaker" status --json open | jq -r .state)" = open ]

row "breaker run b -- true, closed (ms)" "$t_run" "true" "$t_true" ms 0.5
row "breaker refused call, open (ms)" "$t_open" "run -- true" "$t_run" ms 1
row "breaker refused call vs bare true (ms)" "$t_open" "true" "$t_true" ms -
row "breaker run b -- true vs a bare spawn-and-wait (ms)" "$t_run" \
    "spawn-wait true" "$t_floor" ms -
awk -v r="$t_run" -v o="$t_open" -v t="$t_true" 'BEGIN {
	printf "  run b -- true = %.2fx true (target <= 2); refused = %.2fx true, %.2fx run b -- true\n",
	    r / t, o / t, o / r }'
note "breaker: a bare C program that only spawns true and waits (bench/spawn-wait.c) takes $t_floor ms, $(awk -v f="$t_floor" -v t="$t_true" 'BEGIN { printf "%.2f", f / t }')x true: starting any second process costs as much as true itself here (glibc's start-up runs CPUID, which traps to the hypervisor on this VM), so no wrapper process can reach 2x; aistack-breaker run adds $(awk -v r="$t_run" -v f="$t_floor" 'BEGIN { printf "%.3f", r - f }') ms to that floor"
