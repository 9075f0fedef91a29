#!/usr/bin/env bash
# aistack-rotate: compressing one large sealed segment against gzip -6 on
# the same file (time, and size within 1%; zcat must read ours), six
# segments at once (both cores), and the time to seal a 1 MiB and a 1 GiB
# active segment (it must not depend on the size).
# Usage: bench/rotate.sh [SIZE]   (default 389M; sizes as 512k, 100M, 1G)
set -eu
. "$(dirname "$0")/lib.sh"

size_arg=${1:-389M}
size=$(numfmt --from=iec "${size_arg%B}")
export AISTACK_STATE_DIR=$BENCH_WORK/rotate-state AISTACK_CONFIG=/dev/null
streams=$AISTACK_STATE_DIR/streams
seg0=00000000000000000000.jsonl

# whole lines of telemetry, at most BYTES and within 1 MiB of it
make_input() {	# make_input BYTES FILE
	local want=$1 out=$2 src=$BENCH_WORK/telemetry-rotate.jsonl gen have n i
	if [ -s "$out" ]; then
		have=$(stat -c %s "$out")
		[ "$have" -le "$want" ] && [ "$have" -gt $((want - 1048576)) ] &&
		    return 0
	fi
	gen=$want
	[ "$gen" -gt $((400 * 1048576)) ] && gen=$((400 * 1048576))
	if [ ! -s "$src" ] || [ "$(stat -c %s "$src")" -lt "$gen" ]; then
		"$BENCH_DIR/gen-telemetry" -n $((gen / 380 + 1000)) --seed 11 > "$src"
	fi
	# larger inputs repeat the generated telemetry
	n=$((want / $(stat -c %s "$src") + 1))
	for ((i = 0; i < n; i++)); do cat "$src"; done | head -c "$want" > "$out.tmp"
	# drop the partial last line
	python3 -c 'import os, sys
p = sys.argv[1]
with open(p, "rb+") as f:
    size = os.path.getsize(p)
    f.seek(max(0, size - 1048576))
    d = f.read()
    f.truncate(size - len(d) + d.rfind(b"\n") + 1)' "$out.tmp"
	mv "$out.tmp" "$out"
}

# a stream of one sealed segment holding FILE (8 days old) and an empty
# active segment, as after a seal a week ago
layout_sealed() {	# layout_sealed FILE STREAM
	local d=$streams/$2 bytes
	rm -rf "$d"
	mkdir -p "$d/consumers"
	: > "$d/lock"
	cp "$1" "$d/$seg0"
	chmod 0444 "$d/$seg0"
	touch -d '8 days ago' "$d/$seg0"
	bytes=$(stat -c %s "$1")
	: > "$d/$(printf '%020d' "$bytes").jsonl"
	sync -f "$d/$seg0"
}

rm -rf "$AISTACK_STATE_DIR"
in=$BENCH_WORK/rotate-$size_arg.jsonl
make_input "$size" "$in"
bytes=$(stat -c %s "$in")
echo "rotate: one segment of $bytes bytes"

# --- one large segment: aistack-rotate against gzip -6 ---------------------
BENCH_PREPARE="layout_sealed '$in' big"
measure ours aistack-rotate --seal-age never big
BENCH_PREPARE=
measure gzip sh -c 'gzip -6 -c "$1" > "$2"' sh "$in" "$BENCH_WORK/rotate-gzip.gz"
row "gzip a $size_arg segment (s)" "$ours" "gzip -6" "$gzip" s 0.91 lower "$ours_rss"
zcat "$streams/big/$seg0.gz" | cmp - "$in"
ours_size=$(stat -c %s "$streams/big/$seg0.gz")
gzip_size=$(stat -c %s "$BENCH_WORK/rotate-gzip.gz")
# within 1% either way: the ratio gzip/ours must be at least 0.99 (and is
# reported; a ratio far above 1 would mean ours is much smaller)
row "compressed size of the $size_arg segment (bytes)" "$ours_size" "gzip -6" \
    "$gzip_size" bytes 0.99
note "rotate: gzip form of $bytes bytes: $ours_size bytes, gzip -6 $gzip_size bytes; zcat reads it back identical"
note "rotate: peak RSS compressing $size_arg: ${ours_rss} KiB"

# --- six segments due at once: both cores ------------------------------------
part=$((bytes / 6))
d=$streams/six
prepare_six() {
	local base=0 f
	rm -rf "$d" "$BENCH_WORK"/rotate-part.*
	mkdir -p "$d/consumers"
	: > "$d/lock"
	split -n l/6 "$in" "$BENCH_WORK/rotate-part."
	for f in "$BENCH_WORK"/rotate-part.*; do
		mv "$f" "$d/$(printf '%020d' "$base").jsonl"
		base=$((base + $(stat -c %s "$d/$(printf '%020d' "$base").jsonl")))
	done
	chmod 0444 "$d"/*.jsonl
	touch -d '8 days ago' "$d"/*.jsonl
	: > "$d/$(printf '%020d' "$base").jsonl"
	sync -f "$d"
}
BENCH_PREPARE=prepare_six
measure ours6 aistack-rotate --seal-age never six
BENCH_PREPARE=
row "gzip 6 segments of ~$((part / 1048576))M at once (s)" "$ours6" "gzip -6 one file" \
    "$gzip" s -
zcat "$d"/0*.jsonl.gz | cmp - "$in"

# --- sealing: the same for 1 MiB and 1 GiB ------------------------------------
for s in 1M 1G; do
	f=$BENCH_WORK/rotate-active-$s.jsonl
	make_input "$(numfmt --from=iec "$s")" "$f"
	d=$streams/seal-${s,,}
	rm -rf "$d"
	mkdir -p "$d/consumers"
	: > "$d/lock"
	cp "$f" "$d/$seg0"
	sync -f "$d/$seg0"
	next=$(printf '%020d' "$(stat -c %s "$f")").jsonl
	# undo the seal between runs: no data is written either way
	BENCH_PREPARE="rm -f '$d/$next'; chmod 0644 '$d/$seg0'"
	measure "seal_$s" aistack-rotate --seal-size 0 --compress-after never \
	    --delete-after never "seal-${s,,}"
	BENCH_PREPARE=
	[ -e "$d/$next" ]
done
row "seal a 1 GiB active segment (s)" "$seal_1G" "a 1 MiB one" "$seal_1M" s 0.5
note "rotate: seal of a 1 MiB segment ${seal_1M}s, of a 1 GiB segment ${seal_1G}s (process start included)"
rm -rf "$AISTACK_STATE_DIR" "$BENCH_WORK/rotate-gzip.gz"
