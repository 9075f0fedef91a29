#!/usr/bin/env bats
# aistack-ingest --follow: tailing a plain file that other programs append
# to under flock, across rename rotation, copytruncate and truncation,
# kill -9 and restarts, exactly once.

load test_helper

setup() {
	common_setup
	LOGDIR=$BATS_TEST_TMPDIR/logs
	LOG=$LOGDIR/app.jsonl
	mkdir -p "$LOGDIR"
	FPID=
	KILLER=
}

teardown() {
	rm -f "$BATS_TEST_TMPDIR/run"
	if [ -n "$KILLER" ]; then
		wait "$KILLER" 2>/dev/null || true
	fi
	if [ -n "$FPID" ]; then
		kill -9 "$FPID" 2>/dev/null || true
		wait "$FPID" 2>/dev/null || true
	fi
}

# write_lines FILE FIRST LAST [DELAY]: records with ids FIRST..LAST, each
# appended under flock, as Python services write their logs.
write_lines() {
	python3 - "$@" <<'EOF'
import fcntl, sys, time
path, a, b = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
delay = float(sys.argv[4]) if len(sys.argv) > 4 else 0
with open(path, "a") as f:
    for i in range(a, b + 1):
        fcntl.flock(f, fcntl.LOCK_EX)
        f.write('{"id":%d,"text":"line %d"}\n' % (i, i))
        f.flush()
        fcntl.flock(f, fcntl.LOCK_UN)
        if delay:
            time.sleep(delay)
EOF
}

# wait_records NAME N: until the stream holds at least N records (30 s at most).
wait_records() {
	local i
	for i in $(seq 600); do
		[ "$(stream_bytes "$1" | wc -l)" -ge "$2" ] && return 0
		sleep 0.05
	done
	echo "stream $1: $(stream_bytes "$1" | wc -l) records, expected $2" >&2
	return 1
}

start_follower() {
	aistack-ingest "$@" --follow "$LOG" t 2>>"$BATS_TEST_TMPDIR/stderr" &
	FPID=$!
}

stop_follower() {
	kill -TERM "$FPID"
	wait "$FPID"
	FPID=
}

# ids NAME: the record ids of a stream, sorted
ids() {
	stream_bytes "$1" | jq -r .id | sort -n
}

@test "150 lines across a rename rotation and a truncation: exactly 150 records" {
	: > "$LOG"
	start_follower
	write_lines "$LOG" 1 50
	mv "$LOG" "$LOG.1"
	# a writer that has not reopened yet, and the new file
	write_lines "$LOG.1" 51 60
	write_lines "$LOG" 61 100
	wait_records t 100
	: > "$LOG"
	write_lines "$LOG" 101 150
	wait_records t 150
	stop_follower
	run ids t
	assert_output "$(seq 150)"
	[ ! -e "$STREAMS/t.rejects/00000000000000000000.jsonl" ] ||
		[ ! -s "$STREAMS/t.rejects/00000000000000000000.jsonl" ]
}

@test "a copytruncate by aistack-rotate loses nothing even when the follower lags" {
	: > "$LOG"
	start_follower
	write_lines "$LOG" 1 20
	wait_records t 20
	# stopped: it cannot read what is rotated next
	kill -STOP "$FPID"
	write_lines "$LOG" 21 40
	aistack-rotate "$LOG"
	write_lines "$LOG" 41 50
	kill -CONT "$FPID"
	wait_records t 50
	stop_follower
	run ids t
	assert_output "$(seq 50)"
}

@test "kill -9 and restart the follower again and again: still exactly once" {
	: > "$LOG"
	touch "$BATS_TEST_TMPDIR/run"
	(
		while [ -e "$BATS_TEST_TMPDIR/run" ]; do
			aistack-ingest --follow "$LOG" t 2>>"$BATS_TEST_TMPDIR/stderr" &
			p=$!
			sleep "0.$((RANDOM % 4 + 1))"
			kill -9 "$p" 2>/dev/null || true
			wait "$p" 2>/dev/null || true
		done
	) &
	KILLER=$!
	write_lines "$LOG" 1 50 0.004
	mv "$LOG" "$LOG.1"
	write_lines "$LOG.1" 51 55
	write_lines "$LOG" 56 100 0.004
	# the new file has been seen before it is rotated again
	wait_records t 60
	aistack-rotate "$LOG"
	write_lines "$LOG" 101 150 0.004
	rm "$BATS_TEST_TMPDIR/run"
	wait "$KILLER"
	KILLER=
	start_follower
	# one more line: this follower is up and has worked a batch
	write_lines "$LOG" 151 151
	wait_records t 151
	stop_follower
	run ids t
	assert_output "$(seq 151)"
}

@test "a restart resumes where it stopped, the file renamed and replaced meanwhile" {
	write_lines "$LOG" 1 10
	start_follower
	wait_records t 10
	stop_follower
	write_lines "$LOG" 11 15
	mv "$LOG" "$LOG.1"
	write_lines "$LOG" 16 20
	start_follower -v
	wait_records t 20
	stop_follower
	run ids t
	assert_output "$(seq 20)"
	grep -q "app.jsonl: rotated; finishing $LOG.1 from offset " "$BATS_TEST_TMPDIR/stderr"
}

@test "invalid lines go to the rejects stream with FILE:LINE, numbered across restarts" {
	printf '{"id":1}\nnot json\n' > "$LOG"
	start_follower
	wait_records t.rejects 1
	stop_follower
	printf '{"id":2}\n\n[3]\n' >> "$LOG"
	start_follower
	wait_records t.rejects 2
	stop_follower
	run ids t
	assert_output "$(printf '1\n2')"
	run jq -r '[.source, .record] | join(" ")' "$STREAMS/t.rejects/00000000000000000000.jsonl"
	assert_output "$(printf '%s:2 not json\n%s:5 [3]' "$LOG" "$LOG")"
}

@test "the file may appear later; an unterminated line waits for its end" {
	start_follower
	sleep 0.3
	printf '{"id":1}\n{"id":' > "$LOG"
	wait_records t 1
	sleep 0.3
	printf '2}\n' >> "$LOG"
	wait_records t 2
	stop_follower
	run ids t
	assert_output "$(printf '1\n2')"
	[ ! -e "$STREAMS/t.rejects/00000000000000000000.jsonl" ] ||
		[ ! -s "$STREAMS/t.rejects/00000000000000000000.jsonl" ]
}

@test "backpressure: --on-full fail exits 75 with its position kept; the rest comes once" {
	write_lines "$LOG" 1 30
	set_consumer t slow 0
	run aistack-ingest --max-backlog 1 --on-full fail --follow "$LOG" t
	assert_failure 75
	n=$(stream_bytes t | wc -l)
	[ "$n" -ge 1 ]
	write_lines "$LOG" 31 40
	set_consumer t slow 100000000
	start_follower
	wait_records t 40
	stop_follower
	run ids t
	assert_output "$(seq 40)"
}

@test "SIGTERM ends it with status 0, position saved, metrics written" {
	write_lines "$LOG" 1 3
	start_follower --lock fcntl
	wait_records t 3
	stop_follower
	run cat "$STREAMS"/t/sources/app.jsonl.*
	assert_output --regexp '"offset":[0-9]+,"lines":3,'
	grep -q '^aistack_ingest_records_total{stream="t",result="appended"} 3$' \
		"$AISTACK_STATE_DIR/metrics/ingest-t.prom"
}

@test "SIGTERM while paused by backpressure ends it promptly, nothing past the limit read" {
	write_lines "$LOG" 1 50
	aistack-ingest t "$LOG"		# a backlog for a lagging consumer
	set_consumer t slow 0
	write_lines "$LOG.2" 51 60
	mv "$LOG.2" "$LOG"
	start_follower --max-backlog 1k
	poll_until paused_is t true
	stop_follower
	run ids t
	assert_output "$(seq 50)"
}

@test "the command line: --follow and --lock" {
	run aistack-ingest --follow "$LOG" t extra.jsonl
	assert_failure 64
	assert_line --index 0 'aistack-ingest: --follow: no FILE operand with --follow'
	assert_line --index 1 --partial 'usage: aistack-ingest'
	run aistack-ingest --follow "$LOG" postgres://localhost/db
	assert_failure 64
	assert_line --index 0 'aistack-ingest: --follow: the target must be a stream'
	assert_line --index 1 --partial 'usage: aistack-ingest'
	run aistack-ingest --lock flock t
	assert_failure 64
	assert_line --index 0 'aistack-ingest: --lock: only with --follow'
	assert_line --index 1 --partial 'usage: aistack-ingest'
	run aistack-ingest --lock sometimes --follow "$LOG" t
	assert_failure 64
	assert_line --index 0 'aistack-ingest: --lock: invalid value "sometimes"'
	assert_line --index 1 --partial 'usage: aistack-ingest'
	run aistack-ingest --follow "$BATS_TEST_TMPDIR/no/such/dir/x.jsonl" t
	assert_failure 66
	run aistack-ingest --on-loss fail t
	assert_failure 64
	assert_line --index 0 'aistack-ingest: --on-loss: only with --follow'
	assert_line --index 1 --partial 'usage: aistack-ingest'
	run aistack-ingest --on-loss maybe --follow "$LOG" t
	assert_failure 64
	assert_line --index 0 'aistack-ingest: --on-loss: invalid value "maybe"'
	assert_line --index 1 --partial 'usage: aistack-ingest'
	run aistack-ingest --help
	assert_line --index 3 '       aistack-ingest [options] --follow FILE [--lock flock|fcntl|none]'
	assert_line --index 4 '                      [--on-loss warn|fail] TARGET'
}

# the follower, started and stopped (SIGTERM) once it has read N records
follow_until() {
	start_follower "${@:2}"
	wait_records t "$1"
	stop_follower
}

@test "two rotations while killed: the middle copy is read too (the issue's repro)" {
	echo '{"id":1}' >> "$LOG"
	start_follower
	wait_records t 1
	kill -9 "$FPID"; wait "$FPID" || true; FPID=
	echo '{"id":2}' >> "$LOG"; aistack-rotate "$LOGDIR/"
	sleep 1.1	# the next copy gets the next second's stamp anyway
	echo '{"id":3}' >> "$LOG"; aistack-rotate "$LOGDIR/"
	echo '{"id":4}' >> "$LOG"
	follow_until 4
	run ids t
	assert_output "$(seq 4)"
}

@test "three renames (mv, numbered and dated) while stopped: every line once, in order" {
	echo '{"id":1}' >> "$LOG"
	follow_until 1
	echo '{"id":2}' >> "$LOG"; mv "$LOG" "$LOG.2"
	echo '{"id":3}' >> "$LOG"; mv "$LOG" "$LOG.1"
	echo '{"id":4}' >> "$LOG"; mv "$LOG" "$LOG-20261202"
	echo '{"id":5}' >> "$LOG"
	follow_until 5
	run stream_bytes t
	assert_output "$(printf '{"id":%d}\n' 1 2 3 4 5)"
	# and nothing twice when it starts again
	follow_until 5
	run ids t
	assert_output "$(seq 5)"
}

@test "compressed copies (--compress-after 0s) are read through zlib" {
	echo '{"id":1}' >> "$LOG"
	follow_until 1
	echo '{"id":2}' >> "$LOG"; aistack-rotate --compress-after 0s "$LOG"
	sleep 1.1
	echo '{"id":3}' >> "$LOG"; aistack-rotate --compress-after 0s "$LOG"
	echo '{"id":4}' >> "$LOG"
	ls "$LOGDIR"/app.jsonl.*.gz >/dev/null
	[ -z "$(ls "$LOGDIR"/app.jsonl.*Z 2>/dev/null)" ]
	follow_until 4
	run ids t
	assert_output "$(seq 4)"
}

@test "paused by its own backpressure across two rotations: nothing lost" {
	write_lines "$LOG" 1 5
	set_consumer t slow 0
	start_follower --max-backlog 1
	wait_records t 5
	poll_until paused_is t true
	write_lines "$LOG" 6 10; aistack-rotate "$LOG"
	sleep 1.1
	write_lines "$LOG" 11 15; aistack-rotate "$LOG"
	write_lines "$LOG" 16 20
	set_consumer t slow 100000000
	wait_records t 20
	stop_follower
	run ids t
	assert_output "$(seq 20)"
}

@test "a sibling that is not ours (present before, or another name) is never read" {
	echo '{"id":100}' > "$LOG.1"		# there before the first start
	echo '{"id":101}' > "$LOG.bak"		# not a rotation name
	echo '{"id":102}' > "$LOGDIR/app.jsonlx.1"	# another file's
	echo '{"id":1}' >> "$LOG"
	follow_until 1
	echo '{"id":2}' >> "$LOG"
	follow_until 2
	run ids t
	assert_output "$(seq 2)"
}

@test "a copy deleted before it was read: reject record, counter, warning; --on-loss fail exits 65" {
	write_lines "$LOG" 1 5
	set_consumer t slow 0
	start_follower --max-backlog 1
	wait_records t 5
	poll_until paused_is t true
	write_lines "$LOG" 6 10
	aistack-rotate "$LOG"
	copy=$(ls "$LOGDIR"/app.jsonl.*Z)
	# the copy holds lines 1-10; 1-5 were read
	bytes=$(( $(stat -c %s "$copy") - $(stream_bytes t | wc -c) ))
	# the paused follower has seen the copy: wait for its position file
	poll_until grep -q "\"name\":\"$copy\"" "$STREAMS"/t/sources/app.jsonl.*
	kill -9 "$FPID"; wait "$FPID" || true; FPID=
	rm "$copy"
	write_lines "$LOG" 11 12
	set_consumer t slow 100000000
	run aistack-ingest --on-loss fail --follow "$LOG" t
	assert_failure 65
	assert_line "aistack-ingest: t: $copy: $bytes bytes lost before they were read (gone); recorded in t.rejects"
	run jq -c '[.reason, .source, .lost_bytes]' "$STREAMS/t.rejects/00000000000000000000.jsonl"
	assert_output "[\"lost\",\"$copy\",$bytes]"
	grep -q "\"lost_bytes_total\":$bytes," "$STREAMS"/t/sources/app.jsonl.*
	# the counter, as the read model (and so /metrics) exports it
	run sh -c "aistack-checkpoint status --json t | jq -c '.sources[] | [.path, .lost_bytes]'"
	assert_output "[\"$LOG\",$bytes]"
	follow_until 7
	run ids t
	assert_output "$(seq 5; seq 11 12)"
}

