#!/usr/bin/env bash
# aistack-dedup against the Unix ways of removing duplicates, on one
# generated input of 1.3M events with 23% duplicate lines:
#   --exact              against awk '!seen[$0]++' and sort -u (time, peak RSS)
#   -k .query,.response  against jq -c '[.query,.response]' | awk '!seen[$0]++'
#   canonical (default)  against jq -cS . | awk '!seen[$0]++'
# and reports the bytes of state per unique key (-s) and the cost of the
# -a index's catch-up per record appended to the sink stream.
# awk is gawk when installed: mawk's arrays slow down badly past a few
# hundred thousand keys (hours for this input), which says nothing of us.
# Usage: bench/dedup.sh [EVENTS]   (default 1300000)
set -eu
. "$(dirname "$0")/lib.sh"

n=${1:-1300000}
in=$BENCH_WORK/dedup-$n.jsonl
export AISTACK_STATE_DIR=$BENCH_WORK/dedup-state AISTACK_CONFIG=/dev/null
AWK="awk"
command -v gawk > /dev/null && AWK=gawk

# The events: task completions of a chat service, about 350 bytes each;
# 23% of the lines repeat an earlier event byte for byte (a retried
# delivery), chosen at random.  Deterministic for a given size.
generate() {
	"$AWK" -v n="$n" -v dup=0.23 '
	function words(id, salt, cnt,   s, j, x) {
		s = ""; x = (id * 7919 + salt * 104729) % 1000003
		for (j = 0; j < cnt; j++) {
			x = (x * 48271 + 11) % 2147483647
			s = s (j ? " " : "") W[x % nw + 1]
		}
		return s
	}
	function rec(id,   x) {
		x = (id * 2654435761) % 4294967296
		return sprintf("{\"id\":\"evt-%d\",\"ts\":\"2026-05-%02dT%02d:%02d:%02dZ\",\"service\":\"chat\",\"user\":\"u%d\",\"query\":\"%s\",\"response\":\"%s\",\"latency_ms\":%d,\"tokens\":{\"in\":%d,\"out\":%d}}",
		    id, x % 28 + 1, x % 24, x % 60, int(x / 60) % 60, x % 5000,
		    words(id, 1, 6 + x % 12), words(id, 2, 16 + x % 40),
		    x % 3000, 6 + x % 12, 16 + x % 40)
	}
	BEGIN {
		nw = split("the a of to and in is it you that he was for on are with as I his they be at one have this from or had by hot word but what some we can out other were all there when up use your how said an each she which do their time if will way about many then them write would like so these her long make thing see him two has look more day could go come did number sound no most people my over know water than call first who may down side been now find", W, " ")
		srand(7); u = 0
		for (i = 1; i <= n; i++) {
			if (u > 0 && rand() < dup)
				print rec(int(rand() * u) + 1)
			else
				print rec(++u)
		}
	}'
}

[ -s "$in" ] || generate > "$in"
bytes=$(wc -c < "$in")
unique=$(aistack-dedup --exact < "$in" | wc -l)
echo "dedup: $n events, $bytes bytes, $unique unique ($AWK as awk)"

# The same answers first: --exact is awk's output byte for byte; the key
# and canonical modes find as many unique records as the jq pipelines.
aistack-dedup --exact < "$in" | cmp - <("$AWK" '!seen[$0]++' "$in")
k_ours=$(aistack-dedup -k .query,.response < "$in" | wc -l)
k_jq=$(jq -c '[.query,.response]' "$in" | "$AWK" '!seen[$0]++' | wc -l)
[ "$k_ours" -eq "$k_jq" ] || { echo "bench: -k: $k_ours unique, jq $k_jq" >&2; exit 1; }
c_jq=$(jq -cS . "$in" | "$AWK" '!seen[$0]++' | wc -l)
[ "$unique" -eq "$c_jq" ] || { echo "bench: canonical: $unique unique, jq $c_jq" >&2; exit 1; }

# exec: the measured process is aistack-dedup itself (its own peak RSS)
measure ours sh -c 'exec aistack-dedup --exact < "$1"' sh "$in"
measure awk "$AWK" '!seen[$0]++' "$in"
measure sortu sort -u "$in"
row "--exact, $n events (s)" "$ours" "awk !seen" "$awk" s 3 lower "$ours_rss"
row "--exact, $n events (s)" "$ours" "sort -u" "$sortu" s 1.5 lower "$ours_rss"
row "--exact peak RSS (KiB)" "$ours_rss" "awk !seen" "$awk_rss" KiB 8 lower "$ours_rss"
note "peak RSS: aistack-dedup --exact ${ours_rss} KiB, awk ${awk_rss} KiB, sort -u ${sortu_rss} KiB ($n events, $unique unique)"

# jq is slow: one run of each jq pipeline is enough for the ratio
runs=$BENCH_RUNS
measure ours sh -c 'exec aistack-dedup -k .query,.response < "$1"' sh "$in"
ours_k_rss=$ours_rss
BENCH_RUNS=1
measure jqk sh -c 'jq -c "[.query,.response]" "$1" | "$2" "!seen[\$0]++"' sh "$in" "$AWK"
BENCH_RUNS=$runs
row "-k .query,.response, $n events (s)" "$ours" "jq | awk" "$jqk" s 3 lower "$ours_k_rss"

measure ours sh -c 'exec aistack-dedup < "$1"' sh "$in"
ours_c_rss=$ours_rss
BENCH_RUNS=1
measure jqs sh -c 'jq -cS . "$1" | "$2" "!seen[\$0]++"' sh "$in" "$AWK"
BENCH_RUNS=$runs
row "canonical key, $n events (s)" "$ours" "jq -cS | awk" "$jqs" s 3 lower "$ours_c_rss"

# Bytes of state per unique key: the -s file after one run
rm -rf "$AISTACK_STATE_DIR"
aistack-dedup --exact -s bench < "$in" > /dev/null
state=$(stat -c %s "$AISTACK_STATE_DIR/dedup/bench")
note "state of -s after $unique unique keys: $state bytes, $(awk -v s="$state" -v u="$unique" 'BEGIN { printf "%.1f", s / u }') bytes per key (16-byte digests, table 3/8 to 3/4 full)"

# -a: the sink holds the unique records; the index is built once (a
# rebuild), then each run catches up on what was appended since.
rm -rf "$AISTACK_STATE_DIR"
mkdir -p "$AISTACK_STATE_DIR/streams/sink"
aistack-dedup --exact < "$in" > "$AISTACK_STATE_DIR/streams/sink/00000000000000000000.jsonl"
measure build sh -c 'rm -f "$1"/dedup/_stream.sink "$1"/dedup/._stream.sink.journal; exec aistack-dedup -a sink < /dev/null' sh "$AISTACK_STATE_DIR"
aistack-dedup -a sink < /dev/null
measure noop sh -c 'exec aistack-dedup -a sink < /dev/null'
# append 100k new records each time, then catch up
m=100000
"$AWK" -v m="$m" '{ sub(/"id":"evt-/, "\"id\":\"app-" NR "-"); print } NR == m { exit }' \
    "$AISTACK_STATE_DIR/streams/sink/00000000000000000000.jsonl" > "$BENCH_WORK/append.jsonl"
BENCH_PREPARE='cat "$BENCH_WORK/append.jsonl" >> "$AISTACK_STATE_DIR/streams/sink/00000000000000000000.jsonl"'
measure catchup sh -c 'exec aistack-dedup -a sink < /dev/null'
BENCH_PREPARE=
awk -v b="$build" -v u="$unique" -v z="$noop" -v c="$catchup" -v m="$m" 'BEGIN {
	printf "  -a index: built from %d records in %.2f s (%.2f us/record); " \
	    "a run with nothing new %.1f ms; catch-up %.2f us per appended record\n",
	    u, b, b * 1e6 / u, z * 1e3, (c - z) * 1e6 / m }'
note "-a index: rebuild $(awk -v b="$build" -v u="$unique" 'BEGIN { printf "%.2f", b * 1e6 / u }') us per sink record; a run with nothing to catch up $(awk -v z="$noop" 'BEGIN { printf "%.1f", z * 1e3 }') ms (load and lock of a $unique-key index); catch-up $(awk -v c="$catchup" -v z="$noop" -v m="$m" 'BEGIN { printf "%.2f", (c - z) * 1e6 / m }') us per appended record"
rm -rf "$AISTACK_STATE_DIR" "$BENCH_WORK/append.jsonl"
