#!/usr/bin/env bash
# aistack-ingest against jq, cat and the original design's Python appender
# (open + flock + write per line), on the same realistic telemetry.
# Usage: bench/ingest.sh [RECORDS]   (default 1000000)
set -eu
. "$(dirname "$0")/lib.sh"

n=${1:-1000000}
in=$BENCH_WORK/telemetry-$n.jsonl
[ -s "$in" ] || "$BENCH_DIR/gen-telemetry" -n "$n" --seed 7 > "$in"
bytes=$(wc -c < "$in")
out=$BENCH_WORK/out.jsonl
export AISTACK_STATE_DIR=$BENCH_WORK/state AISTACK_CONFIG=/dev/null
echo "ingest: $n records, $bytes bytes"

BENCH_PREPARE='rm -rf "$AISTACK_STATE_DIR" "$out"; sync'
measure ours aistack-ingest --sync batch --max-backlog 0 bench "$in"
measure cat sh -c 'cat "$1" >> "$2"' sh "$in" "$out"
row "ingest $n records, --sync batch (s)" "$ours" "cat >>" "$cat" s 0.25 lower "$ours_rss"
# cat leaves the bytes in the page cache; the same durability costs this:
measure catsync sh -c 'cat "$1" >> "$2" && sync "$2"' sh "$in" "$out"
row "ingest $n records vs cat >> file && sync (s)" "$ours" "cat+sync" "$catsync" s -
measure nosync aistack-ingest --sync none --max-backlog 0 bench "$in"
row "ingest $n records, --sync none (s)" "$nosync" "cat >>" "$cat" s 0.25 lower "$nosync_rss"
ours_rate=$(awk -v n="$n" -v t="$ours" 'BEGIN { printf "%.0f", n / t }')

# jq and the Python appender are slow: measure them on a tenth
small=$BENCH_WORK/telemetry-small.jsonl
head -n $((n / 10)) "$in" > "$small"
measure jq sh -c 'jq -c . < "$1" >> "$2"' sh "$small" "$out"
jq_rate=$(awk -v n=$((n / 10)) -v t="$jq" 'BEGIN { printf "%.0f", n / t }')
row "ingest records/s vs jq -c . >> file" "$ours_rate" "jq" "$jq_rate" rec/s 20 higher

cat > "$BENCH_WORK/appender.py" <<'PY'
import fcntl, sys
# the original appender: open, lock, append, unlock, close for every line
with open(sys.argv[1]) as src:
    for line in src:
        with open(sys.argv[2], "a") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            f.write(line)
            fcntl.flock(f, fcntl.LOCK_UN)
PY
measure py python3 "$BENCH_WORK/appender.py" "$small" "$out"
py_rate=$(awk -v n=$((n / 10)) -v t="$py" 'BEGIN { printf "%.0f", n / t }')
row "ingest records/s vs Python flock-per-line" "$ours_rate" "python" "$py_rate" rec/s - higher
note "aistack-ingest peak RSS on $n records: ${ours_rss} KiB (target < 16384)"
row "ingest peak RSS (KiB), 16 MiB budget" "$ours_rss" "16 MiB" 16384 KiB 1
