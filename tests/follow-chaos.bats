#!/usr/bin/env bats
# aistack-ingest --follow against real writers (tests/bin/follow-writer),
# all at once, with aistack-rotate every second, and the follower killed
# with SIGKILL at random instants, stopped and ended across three and more
# rotations, and paused by its own --max-backlog: afterwards every
# (writer, seq) is in the stream exactly once, in order per writer, no
# line torn, and the rejects stream is empty (no loss was reported).
# tests/bin/follow-chaos runs it, tests/bin/follow-check checks it.
# CHAOS_SECONDS (12) is how long the writers write in each test (12 at
# least for every kind of trouble to come at least once).

load test_helper

setup() {
	common_setup
	LOGDIR=$BATS_TEST_TMPDIR/logs
	OUT=$BATS_TEST_TMPDIR/chaos
	mkdir -p "$LOGDIR"
	: "${CHAOS_SECONDS:=12}"
}

# chaos ARGS...: follow-chaos on $LOGDIR, 1000 lines/s per writer, with
# its log shown when it fails
chaos() {
	run follow-chaos --seconds "$CHAOS_SECONDS" --rate 1000 --out "$OUT" \
		--disk "$@" "$LOGDIR"
	if [ "$status" -ne 0 ]; then
		cat "$OUT/chaos.log" "$OUT"/*.stderr >&2 || true
	fi
}

# happened WHAT N: the chaos log says WHAT (killed, stopped, ended) N
# times at least
happened() {
	local n
	n=$(grep -c ": $1\$" "$OUT/chaos.log" || true)
	[ "$n" -ge "$2" ] || { echo "$1: $n times, expected $2" >&2; return 1; }
}

@test "copytruncate: 4 flock writers, rotated every second (half compressed at once), the follower killed -9 at random" {
	chaos --file app.jsonl:flock:4 --chaos kill \
		--rotate "aistack-rotate $LOGDIR/" \
		--rotate "aistack-rotate --compress-after 0s $LOGDIR/"
	assert_success
	assert_line --regexp '^app.jsonl/follow flock: written [1-9][0-9]* read [0-9]+ lost 0 duplicated 0 torn 0 reordered 0$'
	assert_line --regexp '^app.jsonl/disk flock: .* lost 0 duplicated 0 torn 0 '
	happened killed 3
	ls "$LOGDIR"/app.jsonl.*Z.gz >/dev/null
}

@test "copytruncate: the follower stopped and ended across 3 rotations, and paused by --max-backlog until a consumer reads" {
	chaos --file app.jsonl:flock:4 --chaos stop,term,pause \
		--rotate "aistack-rotate $LOGDIR/" \
		--rotate "aistack-rotate --compress-after 0s $LOGDIR/"
	assert_success
	assert_line --regexp '^app.jsonl/follow flock: written [1-9][0-9]* read [0-9]+ lost 0 duplicated 0 torn 0 reordered 0$'
	happened stopped 1
	happened ended 1
	grep -q 'backlog [0-9]* bytes over the limit, pausing' "$OUT/app.stderr"
}

@test "rename: 4 WatchedFileHandler and 4 shell >> writers, killed, stopped, ended and paused" {
	chaos --file w.jsonl:watched:4 --file s.jsonl:shell:4 \
		--chaos kill,stop,term,pause \
		--rotate "aistack-rotate --method rename $LOGDIR/" \
		--rotate "aistack-rotate --method rename --compress-after 0s $LOGDIR/"
	assert_success
	assert_line --regexp '^w.jsonl/follow watched: written [1-9][0-9]* read [0-9]+ lost 0 duplicated 0 torn 0 reordered 0$'
	assert_line --regexp '^s.jsonl/follow shell: written [1-9][0-9]* read [0-9]+ lost 0 duplicated 0 torn 0 reordered 0$'
	assert_line --regexp '^w.jsonl/disk watched: .* lost 0 duplicated 0 torn 0 '
	assert_line --regexp '^s.jsonl/disk shell: .* lost 0 duplicated 0 torn 0 '
	happened killed 1
	happened stopped 1
	happened ended 1
}

@test "follow-check finds a lost, a duplicated, a torn and a reordered line" {
	mkdir -p "$OUT/counts"
	echo 4 > "$OUT/counts/flock-1"
	pad=$(printf 'x%.0s' $(seq 64))
	line() { printf '{"w":"flock-1","seq":%d,"pad":"%s"}\n' "$1" "$pad"; }
	{ line 1; line 3; line 2; line 3; printf '{"w":"flock-1","se\n'; } > "$OUT/read.jsonl"
	run follow-check "$OUT/counts" "$OUT/read.jsonl"
	assert_failure 1
	assert_output 'flock: written 4 read 4 lost 1 duplicated 1 torn 1 reordered 1'
	{ line 1; line 2; line 3; line 4; } > "$OUT/read.jsonl"
	run follow-check "$OUT/counts" "$OUT/read.jsonl"
	assert_success
	assert_output 'flock: written 4 read 4 lost 0 duplicated 0 torn 0 reordered 0'
}
