#!/usr/bin/env bash
# Canonical keys on escape-heavy records: aistack-dedup's time per MB for
# each key definition beside --exact (the raw bytes hashed, no JSON read
# at all) on the same input, for records whose long string is made of
#   \u00e9           an escaped Latin letter (Java, Go, ensure_ascii)
#   \ud83d\ude00     an escaped emoji (a surrogate pair)
#   \u4e2d\u6587     Python's json.dumps of CJK text (ensure_ascii)
#   \n               an escaped newline (source code, logs)
#   é                plain UTF-8
# in records of 1 MiB (the largest aistack-ingest takes by default, and
# the old worst case: the reader rescanned the string after each escape)
# and of 4 KiB.  Target: within 3x of --exact for every kind and key.
# Usage: bench/canon.sh [MB]   (default 32: the input of each kind)
set -eu
. "$(dirname "$0")/lib.sh"

mb=${1:-32}
export AISTACK_STATE_DIR=$BENCH_WORK/canon-state AISTACK_CONFIG=/dev/null

# gen KIND UNIT RECORD-BYTES: records {"id":N,"host":"h1","text":"rN UNIT..."}
# of about RECORD-BYTES each, $mb MiB in all; deterministic.
gen() {
	python3 - "$2" "$3" "$mb" <<'PY'
import sys
unit, size, mb = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
out = sys.stdout
total, i = 0, 0
while total < mb * 1024 * 1024:
    i += 1
    head = '{"id":%d,"host":"h1","text":"r%d ' % (i, i)
    k = max(1, (size - len(head) - 2) // len(unit))
    line = head + unit * k + '"}\n'
    out.write(line)
    total += len(line)
PY
}

kinds=(e9 emoji cjk nl utf8)
declare -A unit=([e9]='\u00e9' [emoji]='\ud83d\ude00' [cjk]='\u4e2d\u6587'
    [nl]='\n' [utf8]='é')
declare -A label=([e9]='\u00e9' [emoji]='\ud83d\ude00' [cjk]='\u4e2d\u6587 (ensure_ascii)'
    [nl]='\n' [utf8]='plain UTF-8 é')
modes=(canonical "-k .id" "-k .text" "--normalize trim,lower,space" "--near 0.9")

echo "canon: $mb MiB of each kind, records of 1 MiB and 4 KiB"
for size in 1048576 4096; do
	sz=$([ "$size" -eq 4096 ] && echo "4 KiB" || echo "1 MiB")
	for k in "${kinds[@]}"; do
		in=$BENCH_WORK/canon-$k-$size.jsonl
		[ -s "$in" ] || gen "$k" "${unit[$k]}" "$size" > "$in"
		bytes=$(wc -c < "$in")
		n=$(wc -l < "$in")
		# the same answer from every key: all records are distinct
		for m in "${modes[@]}"; do
			[ "$m" = canonical ] && m=
			# shellcheck disable=SC2086 # the mode is words
			got=$(aistack-dedup $m < "$in" | wc -l)
			[ "$got" -eq "$n" ] || {
				echo "bench: canon: $k $m kept $got of $n" >&2
				exit 1
			}
		done
		measure exact sh -c 'exec aistack-dedup --exact < "$1"' sh "$in"
		exact_ms=$(awk -v t="$exact" -v b="$bytes" 'BEGIN { printf "%.3f", t * 1e3 * 1048576 / b }')
		for m in "${modes[@]}"; do
			flag=$m
			[ "$m" = canonical ] && flag=
			measure ours sh -c 'exec aistack-dedup $2 < "$1"' sh "$in" "$flag"
			ms=$(awk -v t="$ours" -v b="$bytes" 'BEGIN { printf "%.3f", t * 1e3 * 1048576 / b }')
			row "$m, ${label[$k]}, $sz records (ms/MB)" "$ms" "--exact" \
			    "$exact_ms" ms/MB 0.33 lower "$ours_rss"
		done
	done
done
note "canon: time per MiB of input (wall, process start included, $mb MiB a kind); --exact hashes the raw line and reads no JSON, the floor of any key; target 0.33 = within 3x of it"
rm -rf "$AISTACK_STATE_DIR"
