#!/usr/bin/env bash
# aistack-checkpoint against cat and zcat: reading a stream of plain and of
# gzipped segments to a pipe, records/s of `run -n 100 -- cat`, and the
# cost of one commit (a process, the consumer lock, fsync of the file and
# of its directory).
# Usage: bench/checkpoint.sh [RECORDS]   (default 1000000)
set -eu
. "$(dirname "$0")/lib.sh"

n=${1:-1000000}
in=$BENCH_WORK/telemetry-$n.jsonl
[ -s "$in" ] || "$BENCH_DIR/gen-telemetry" -n "$n" --seed 7 > "$in"
bytes=$(wc -c < "$in")
export AISTACK_STATE_DIR=$BENCH_WORK/checkpoint-state AISTACK_CONFIG=/dev/null
streams=$AISTACK_STATE_DIR/streams
echo "checkpoint: $n records, $bytes bytes"

# Lay a file out as a stream by hand: sealed 64 MiB segments of whole
# lines (plain, or gzipped with gzip's default level) and an empty active
# segment, as aistack-rotate leaves them.
layout() {	# layout FILE STREAM plain|gz
	local d=$streams/$2 base=0 f size name
	rm -rf "$d" "$BENCH_WORK/part."*
	mkdir -p "$d"
	split -C 64M -d -a 4 "$1" "$BENCH_WORK/part."
	for f in "$BENCH_WORK/part."*; do
		size=$(stat -c %s "$f")
		name=$d/$(printf '%020d' "$base").jsonl
		if [ "$3" = gz ]; then
			gzip -c "$f" > "$name.gz"
			rm "$f"
		else
			mv "$f" "$name"
		fi
		chmod 0444 "$name"*
		base=$((base + size))
	done
	: > "$d/$(printf '%020d' "$base").jsonl"
}

rm -rf "$AISTACK_STATE_DIR"
layout "$in" plain plain
layout "$in" gz gz
aistack-checkpoint read b plain | cmp - "$in"
aistack-checkpoint read b gz | cmp - "$in"

# A read starts again from the committed offset each time: the same work.
measure ours sh -c 'aistack-checkpoint read b plain | cat > /dev/null'
measure cat sh -c 'cat "$1"/*.jsonl | cat > /dev/null' sh "$streams/plain"
row "read $n records, plain segments, to a pipe (s)" "$ours" "cat" "$cat" s 0.5 lower "$ours_rss"
measure ours sh -c 'aistack-checkpoint read b gz | cat > /dev/null'
measure zcat sh -c 'zcat "$1"/*.jsonl.gz | cat > /dev/null' sh "$streams/gz"
row "read $n records, gzipped segments, to a pipe (s)" "$ours" "zcat" "$zcat" s 0.8 lower "$ours_rss"
note "aistack-checkpoint read peak RSS on $n records: ${ours_rss} KiB"

# run: a process and a commit (fsync) per batch; a tenth of the records
m=$((n / 10))
head -n "$m" "$in" > "$BENCH_WORK/run.jsonl"
layout "$BENCH_WORK/run.jsonl" run plain
BENCH_PREPARE='aistack-checkpoint seek r run --start'
measure ours aistack-checkpoint run -n 100 r run -- cat
BENCH_PREPARE=
rate=$(awk -v n="$m" -v t="$ours" 'BEGIN { printf "%.0f", n / t }')
# the same processes without the checkpoint: split into 100-line batches
measure split sh -c 'split -l 100 --filter=cat "$1" > /dev/null' sh "$BENCH_WORK/run.jsonl"
srate=$(awk -v n="$m" -v t="$split" 'BEGIN { printf "%.0f", n / t }')
row "run -n 100 -- cat, records/s ($m records)" "$rate" "split --filter" "$srate" rec/s - higher

# one commit: after a one-record read, timed alone
k=100
aistack-checkpoint seek c run --start
total=0
for ((i = 0; i < k; i++)); do
	aistack-checkpoint read -n 1 c run > /dev/null
	t0=$EPOCHREALTIME
	aistack-checkpoint commit c run
	t1=$EPOCHREALTIME
	total=$(awk -v a="$total" -v b="$t0" -v c="$t1" 'BEGIN { printf "%.6f", a + c - b }')
done
commit_ms=$(awk -v t="$total" -v k="$k" 'BEGIN { printf "%.2f", t * 1000 / k }')
t0=$EPOCHREALTIME
for ((i = 0; i < k; i++)); do aistack-checkpoint --version > /dev/null; done
t1=$EPOCHREALTIME
exec_ms=$(awk -v a="$t0" -v b="$t1" -v k="$k" 'BEGIN { printf "%.2f", (b - a) * 1000 / k }')
row "one commit, fsync included (ms)" "$commit_ms" "exec --version" "$exec_ms" ms -
note "a commit costs ${commit_ms} ms as a process (starting one costs ${exec_ms} ms); run pays it per batch"
rm -rf "$AISTACK_STATE_DIR" "$BENCH_WORK/run.jsonl"
