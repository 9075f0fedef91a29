#!/usr/bin/env bash
# Rotation and tailing with real writers: lost, duplicated and torn lines
# for each writer kind (tests/bin/follow-writer: flock per event, shell
# >>, WatchedFileHandler, FileHandler, reopen on SIGHUP), each rotation
# (aistack-rotate copytruncate and rename, every second, every other run
# with --compress-after 0s; Debian's logrotate copytruncate and create,
# every second, private state and configuration) and each reader: the
# files left on disk, aistack-ingest --follow (killed -9 and stopped at
# random meanwhile) and tail -F (left alone).  Counted by
# tests/bin/follow-check; one line per combination in follow.tsv, which
# bench/run prints and writes to RESULTS.md.  Fails when a combination
# aistack-rotate(1) documents as lossless loses, duplicates or tears a line.
# Usage: bench/follow.sh [SECONDS]   (default 15, or BENCH_FOLLOW_SECONDS;
# the issue's experiment is 60).  BENCH_FOLLOW_RATE: lines/s per writer
# (default 2000; 0 unthrottled).
set -eu
. "$(dirname "$0")/lib.sh"

secs=${1:-${BENCH_FOLLOW_SECONDS:-15}}
rate=${BENCH_FOLLOW_RATE:-2000}
tbin=$(cd "$BENCH_DIR/../tests/bin" && pwd)
work=$BENCH_WORK/follow
tsv=$BENCH_OUT/follow.tsv
: > "$tsv"
bad=0

# lossless ROTATION KIND READER: whether aistack documents it as lossless
# (aistack-rotate(1), WRITERS; --follow reads whatever rotation left)
lossless() {
	case $1:$2 in
	aistack-copytruncate:flock) ;;
	aistack-rename:shell | aistack-rename:watched | aistack-rename:signal) ;;
	*) return 1 ;;
	esac
	[ "$3" != tail ]
}

# experiment LABEL ROTATE-CMD [ROTATE-CMD]: one run of every writer kind
experiment() {
	local label=$1 d=$work/$1 sig=()
	shift
	rm -rf "$d"
	mkdir -p "$d/logs/sig"
	export AISTACK_STATE_DIR=$d/state AISTACK_CONFIG=/dev/null
	case $label in
	*-rename | *-create) sig=(--file sig/g.jsonl:signal:1) ;;
	*) sig=() ;;
	esac
	local rot=() c
	for c in "$@"; do rot+=(--rotate "$c"); done
	"$tbin/follow-chaos" --seconds "$secs" --rate "$rate" --out "$d/out" \
	    --follower aistack,tail --chaos kill,stop --disk --json \
	    --file f.jsonl:flock:4 --file s.jsonl:shell:4 \
	    --file w.jsonl:watched:4 --file p.jsonl:file:4 "${sig[@]}" \
	    "${rot[@]}" "$d/logs" > "$d/result.json" || true
	python3 - "$label" "$d/result.json" >> "$tsv" <<'EOF'
import json, sys
label, path = sys.argv[1], sys.argv[2]
for line in open(path):
    line = line.strip()
    if not line.startswith("{"):
        continue
    r = json.loads(line)
    name, reader = r["label"].split("/")[-2:]
    print("\t".join(str(x) for x in (label, r["kind"], reader, r["written"],
        r["lost"], r["duplicated"], r["torn"], r["reordered"])))
EOF
}

D=$work
lr_conf() {	# lr_conf LABEL copytruncate|create: logrotate's configuration
	local d=$D/$1/logs
	cat <<EOF
$d/*.jsonl {
	$2
	rotate 100000
	missingok
	notifempty
	nocompress
}
$d/sig/g.jsonl {
	$2
	rotate 100000
	missingok
	notifempty
	nocompress
	postrotate
		kill -HUP "\$(cat $d/sig/g.jsonl.pid)" 2>/dev/null || true
	endscript
}
EOF
}

echo "follow: $secs s a run, $rate lines/s per writer, rotated every second"
L=$work/aistack-copytruncate/logs
experiment aistack-copytruncate "aistack-rotate $L/" \
    "aistack-rotate --compress-after 0s $L/"
L=$work/aistack-rename/logs
experiment aistack-rename \
    "aistack-rotate --method rename $L/ && aistack-rotate --method rename --signal HUP --pidfile $L/sig/g.jsonl.pid $L/sig/g.jsonl" \
    "aistack-rotate --method rename --compress-after 0s $L/ && aistack-rotate --method rename --compress-after 0s --signal HUP --pidfile $L/sig/g.jsonl.pid $L/sig/g.jsonl"
for m in copytruncate create; do
	mkdir -p "$work/lr-$m"
	lr_conf "logrotate-$m" "$m" > "$work/lr-$m/logrotate.conf"
	experiment "logrotate-$m" "logrotate -f -s $work/lr-$m/state $work/lr-$m/logrotate.conf"
done

# the figures, and the verdict on what aistack documents as lossless
printf '  %-22s %-8s %-7s %9s %8s %6s %5s\n' rotation writer reader written lost dup torn
while IFS=$'\t' read -r rot kind reader written lost dup torn reord; do
	flag=
	if lossless "$rot" "$kind" "$reader"; then
		flag=' (documented lossless)'
		if [ "$lost" != 0 ] || [ "$dup" != 0 ] || [ "$torn" != 0 ] ||
		    [ "$reord" != 0 ] || [ "$written" = 0 ]; then
			flag=' (documented lossless: FAILED)'
			bad=1
		fi
	fi
	printf '  %-22s %-8s %-7s %9s %8s %6s %5s%s\n' "$rot" "$kind" "$reader" \
	    "$written" "$lost" "$dup" "$torn" "$flag"
done < "$tsv"
note "follow: $secs s runs, $rate lines/s per writer, a rotation every second; aistack-ingest --follow killed -9 and stopped at random, tail -F left alone (table: Rotation and tailing)"
exit $bad
