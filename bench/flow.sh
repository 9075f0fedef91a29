#!/usr/bin/env bash
# The learning flow (examples/learning-flow.sh: the real extract.jq,
# aistack-dedup -a dataset, the dataset append, every fsync) at scale:
#
#  1. Events/s of the flow in batches of 100 (-n 100, no growth: the
#     batch cost is all there is) with a dataset index of 0, 1M and 10M
#     keys, the ratio to 0 keys (target >= 0.8), and the peak RSS of one
#     `aistack-dedup -a` batch of 100 records at each size.
#  2. Events/s of the shipped flow (batches growing to 20,000 events) on
#     a 1M-event backlog (target >= 20,000), beside what a user would
#     write by hand, `jq -c -f extract.jq | awk '!seen[$0]++'`, on the
#     same events (not exactly-once, and no fsync: the speed expected).
#
# The 1M and 10M indexes are made directly (bench/mkindex.c adds random
# keys through lib/dedup/keystore.c to an index made by a real aistack-dedup -a
# run, its mark at the dataset's head): deduplicating a 10M-record
# dataset first would take most of an hour.  A lookup costs the same
# whatever keys the table holds: digests are uniform either way.
# Usage: bench/flow.sh [EVENTS]   (default 1000000: the backlog of part 2)
set -eu
. "$(dirname "$0")/lib.sh"

n=${1:-1000000}
small=5000			# events of part 1, at each size
sizes="0 1000000 10000000"
if [ "${BENCH_QUICK:-0}" = 1 ]; then
	sizes="0 1000000"
fi
top=$(cd "$BENCH_DIR/.." && pwd)
flow=$top/examples/extract.jq
export AISTACK_CONFIG=/dev/null QUIET=1
KEY=".messages[1].content,.messages[2].content"

mk=$BENCH_WORK/mkindex
cc -O2 -std=gnu11 -D_GNU_SOURCE -I"$top/lib" -o "$mk" "$BENCH_DIR/mkindex.c" \
    "$top"/lib/dedup/{keystore,digestset,minhash}.c \
    "$top"/lib/base/{fsutil,err,buf}.c -lcrypto -lm

ev_small=$BENCH_WORK/flow-$small.jsonl
ev=$BENCH_WORK/flow-$n.jsonl
[ -s "$ev_small" ] || "$BENCH_DIR/gen-telemetry" -n "$small" --seed 11 --dups 0.2 > "$ev_small"
[ -s "$ev" ] || "$BENCH_DIR/gen-telemetry" -n "$n" --seed 12 --dups 0.2 > "$ev"

# prepare DIR KEYS: a state directory whose dataset holds one record and
# whose index holds that key and KEYS random ones, and a telemetry
# backlog of $small events.
prepare() {
	local dir=$1 keys=$2
	rm -rf "$dir"
	mkdir -p "$dir"
	export AISTACK_STATE_DIR=$dir
	echo '{"messages":[{"role":"system","content":"s"},{"role":"user","content":"seed prompt of the bench"},{"role":"assistant","content":"seed response"}]}' |
		aistack-ingest dataset
	aistack-dedup -a dataset -k "$KEY" --normalize trim,lower < /dev/null
	[ "$keys" -eq 0 ] || "$mk" "$dir/dedup/_stream.dataset" "$keys"
	aistack-ingest telemetry "$ev_small"
}

# --- 1. batch cost against the index size --------------------------------
# Wall time on this shared machine is mostly the wait for a core; the
# CPU time of the whole flow (user + system of every process it ran, as
# GNU time reports a child's and its waited-for descendants') is the
# steadier figure, reported beside it as events per CPU second.  The
# sizes take turns within each round, so that a change of the machine's
# load weighs on all of them alike.
declare -A rate crate rss runs cruns idx
for ((i = 0; i < BENCH_RUNS; i++)); do
	for k in $sizes; do
		dir=$BENCH_WORK/flow-state-$k
		prepare "$dir" "$k"
		t0=$EPOCHREALTIME
		BATCH=100 MAX_BATCH=100 /usr/bin/time -f '%U %S' \
		    -o "$BENCH_OUT/flow-cpu.txt" \
		    "$top/examples/learning-flow.sh" > /dev/null
		t1=$EPOCHREALTIME
		runs[$k]+="$(awk -v a="$t0" -v b="$t1" -v n="$small" 'BEGIN { printf "%.0f", n / (b - a) }') "
		cruns[$k]+="$(tail -n 1 "$BENCH_OUT/flow-cpu.txt" | awk -v n="$small" '{ printf "%.0f", n / ($1 + $2) }') "
		# in the last round, one batch of 100 extracted records not
		# yet in the dataset, alone, for its peak RSS
		if [ "$i" -eq $((BENCH_RUNS - 1)) ]; then
			jq -c -f "$flow" "$ev_small" | head -n 100 > "$BENCH_WORK/flow-batch"
			/usr/bin/time -f '%M' -o "$BENCH_OUT/time.txt" \
			    aistack-dedup -a dataset -k "$KEY" \
			    --normalize trim,lower < "$BENCH_WORK/flow-batch" > /dev/null
			rss[$k]=$(tail -n 1 "$BENCH_OUT/time.txt")
			idx[$k]=$(stat -c %s "$dir/dedup/_stream.dataset")
		fi
		[ "$k" -eq 0 ] || rm -rf "$dir"
	done
done
median() { tr ' ' '\n' | sed '/^$/d' | sort -n | sed -n "$(( (BENCH_RUNS + 1) / 2 ))p"; }
for k in $sizes; do
	rate[$k]=$(median <<< "${runs[$k]}")
	crate[$k]=$(median <<< "${cruns[$k]}")
	echo "  index of $k keys (${idx[$k]} bytes): ${rate[$k]} events/s (runs: ${runs[$k]}), ${crate[$k]} per CPU s (runs: ${cruns[$k]}) in batches of 100, one dedup -a batch ${rss[$k]} KiB"
done
for k in $sizes; do
	[ "$k" -ne 0 ] || continue
	row "flow, batches of 100, index of $k keys" "${rate[$k]}" \
	    "index of 0 keys" "${rate[0]}" events/s 0.8 higher "${rss[$k]}"
	row "flow, batches of 100, index of $k keys (CPU)" "${crate[$k]}" \
	    "index of 0 keys" "${crate[0]}" events/cpu-s 0.8 higher
done
note "flow: peak RSS of one aistack-dedup -a batch of 100 records: $(for k in $sizes; do printf '%s keys %s KiB; ' "$k" "${rss[$k]}"; done)the index is mapped and only the pages of the batch's keys are touched"

# --- 2. the shipped flow on a large backlog ------------------------------
dir=$BENCH_WORK/flow-state-backlog
bruns=()
for ((i = 0; i < BENCH_RUNS; i++)); do
	rm -rf "$dir"
	mkdir -p "$dir"
	export AISTACK_STATE_DIR=$dir
	aistack-ingest telemetry "$ev"
	t0=$EPOCHREALTIME
	"$top/examples/learning-flow.sh" > /dev/null
	t1=$EPOCHREALTIME
	bruns+=("$(awk -v a="$t0" -v b="$t1" -v n="$n" 'BEGIN { printf "%.0f", n / (b - a) }')")
done
flow_rate=$(printf '%s\n' "${bruns[@]}" | sort -n | sed -n "$(( (BENCH_RUNS + 1) / 2 ))p")
kept=$(cat "$dir"/streams/dataset/*.jsonl | wc -l)
# the yardstick (measure sets t_hand)
t_hand=
# shellcheck disable=SC2016 # sh -c's own arguments
measure t_hand sh -c 'jq -c -f "$1" "$2" | awk "!seen[\$0]++"' sh "$flow" "$ev"
hand_rate=$(awk -v t="$t_hand" -v n="$n" 'BEGIN { printf "%.0f", n / t }')
echo "  shipped flow on a backlog of $n events: $flow_rate events/s ($kept records kept); jq | awk: $hand_rate events/s"
row "shipped flow, backlog of $n events" "$flow_rate" "jq|awk (by hand)" \
    "$hand_rate" events/s - higher
row "shipped flow, backlog of $n events (target 20000/s)" "$flow_rate" \
    "target" 20000 events/s 1 higher
rm -rf "$dir"
