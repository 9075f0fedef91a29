#!/usr/bin/env bats
# aistack-checkpoint: delivery until commit, batches run by a command and
# committed only on its success, the consumer lock, kill -9, reading across
# sealed, compressed and active segments, lost data, seek, status, remove,
# metrics and ingest's backpressure against a real consumer.

load test_helper
bats_require_minimum_version 1.5.0

setup() {
	common_setup
	D=$BATS_TEST_TMPDIR
}

seg() {	# seg STREAM BASE: the path of a plain segment
	printf '%s/%s/%020d.jsonl' "$STREAMS" "$1" "$2"
}

# three_segments STREAM: records a1..a100 in a sealed plain segment,
# b1..b100 in a sealed gzipped one and c1..c100 in the active one, made by
# hand (a stream is just files).  Sets B1 and B2, the bases of the second
# and the third segment, and writes the stream's bytes to $D/all.
three_segments() {
	mkdir -p "$STREAMS/$1"
	gen_records 100 a > "$(seg "$1" 0)"
	B1=$(stat -c %s "$(seg "$1" 0)")
	gen_records 100 b > "$(seg "$1" "$B1")"
	B2=$((B1 + $(stat -c %s "$(seg "$1" "$B1")")))
	gen_records 100 c > "$(seg "$1" "$B2")"
	cat "$(seg "$1" 0)" "$(seg "$1" "$B1")" "$(seg "$1" "$B2")" > "$D/all"
	chmod 0444 "$(seg "$1" 0)" "$(seg "$1" "$B1")"
	gzip "$(seg "$1" "$B1")"
}

consumer_file() {	# consumer_file STREAM CONSUMER
	echo "$STREAMS/$1/consumers/$2"
}

committed() {	# committed STREAM CONSUMER
	jq -r .committed "$(consumer_file "$1" "$2")"
}

committed_is() {	# committed_is STREAM CONSUMER OFFSET
	[ -e "$(consumer_file "$1" "$2")" ] && [ "$(committed "$1" "$2")" -eq "$3" ]
}

lines_are() {	# lines_are FILE N
	[ -e "$1" ] && [ "$(wc -l < "$1")" -eq "$2" ]
}

wait_for() {	# wait_for COMMAND...: up to 20 s for it to succeed
	local i
	for i in $(seq 1 200); do
		"$@" && return 0
		sleep 0.1
	done
	"$@"
}

@test "read delivers after the committed offset until a commit" {
	gen_records 10 > "$D/in"
	aistack-ingest t "$D/in"
	run aistack-checkpoint read c t
	assert_success
	assert_output "$(cat "$D/in")"
	# not committed: delivered again
	run aistack-checkpoint read c t
	assert_success
	assert_output "$(cat "$D/in")"
	size=$(stat -c %s "$D/in")
	run jq -c '[.committed, .pending, .records]' "$(consumer_file t c)"
	assert_output "[0,$size,0]"
	run aistack-checkpoint commit c t
	assert_success
	assert_output ''
	run jq -c '[.committed, .pending, .records]' "$(consumer_file t c)"
	assert_output "[$size,$size,10]"
	run aistack-checkpoint read c t
	assert_success
	assert_output ''
	# new records only
	gen_records 3 new > "$D/new"
	aistack-ingest t "$D/new"
	run aistack-checkpoint read c t
	assert_output "$(cat "$D/new")"
	aistack-checkpoint commit c t
	[ "$(jq .records "$(consumer_file t c)")" -eq 13 ]
}

@test "-n caps a read; a commit takes only what the last read delivered" {
	gen_records 10 > "$D/in"
	aistack-ingest t "$D/in"
	run aistack-checkpoint read -n 3 c t
	assert_success
	assert_output "$(head -n 3 "$D/in")"
	run aistack-checkpoint read -n 4 c t
	assert_output "$(head -n 4 "$D/in")"
	aistack-checkpoint commit c t
	[ "$(committed t c)" -eq "$(head -n 4 "$D/in" | wc -c)" ]
	[ "$(jq .records "$(consumer_file t c)")" -eq 4 ]
	run aistack-checkpoint read -n 100 c t
	assert_output "$(tail -n 6 "$D/in")"
	# a commit with nothing pending changes nothing
	aistack-checkpoint commit c t
	aistack-checkpoint commit c t
	[ "$(jq .records "$(consumer_file t c)")" -eq 10 ]
	run aistack-checkpoint commit -v c t
	assert_success
	assert_output "aistack-checkpoint: t: consumer c: nothing pending"
}

@test "consumers are independent" {
	gen_records 6 > "$D/in"
	aistack-ingest t "$D/in"
	aistack-checkpoint read -n 2 one t > /dev/null
	aistack-checkpoint commit one t
	run aistack-checkpoint read two t
	assert_output "$(cat "$D/in")"
	run aistack-checkpoint read one t
	assert_output "$(tail -n 4 "$D/in")"
	aistack-checkpoint commit two t
	run aistack-checkpoint read two t
	assert_output ''
	run aistack-checkpoint read one t
	assert_output "$(tail -n 4 "$D/in")"
}

@test "a new consumer starts at the first retained offset, or the head with --from end" {
	three_segments t
	rm "$(seg t 0)"
	run aistack-checkpoint read -n 1 first t
	assert_output "$(zcat "$(seg t "$B1").gz" | head -n 1)"
	[ "$(committed t first)" -eq "$B1" ]
	run aistack-checkpoint read --from end last t
	assert_success
	assert_output ''
	head=$((B2 + $(stat -c %s "$(seg t "$B2")")))
	[ "$(committed t last)" -eq "$head" ]
	printf '{"after":1}\n' | aistack-ingest t
	run aistack-checkpoint read last t
	assert_output '{"after":1}'
	# --from only matters to a new consumer
	run aistack-checkpoint read -n 1 --from end first t
	assert_output "$(zcat "$(seg t "$B1").gz" | head -n 1)"
}

@test "commit and remove of a missing consumer or stream exit 66" {
	run aistack-checkpoint commit c nosuch
	assert_failure 66
	mkdir -p "$STREAMS/t"
	run aistack-checkpoint commit c t
	assert_failure 66
	assert_output "aistack-checkpoint: t: no consumer c"
	run aistack-checkpoint remove c t
	assert_failure 66
	assert_output "aistack-checkpoint: t: no consumer c"
}

@test "run: 250 records in batches of 100 are 3 batches with consecutive offsets" {
	gen_records 250 > "$D/in"
	aistack-ingest t "$D/in"
	run aistack-checkpoint run -n 100 c t -- sh -c '
		cat > "$0/batch.$AISTACK_BATCH_START"
		echo "$AISTACK_STREAM $AISTACK_CONSUMER $AISTACK_BATCH_START $AISTACK_BATCH_END $(wc -l < "$0/batch.$AISTACK_BATCH_START")" >> "$0/log"' "$D"
	assert_success
	assert_output ''
	b1=$(head -n 100 "$D/in" | wc -c)
	b2=$(head -n 200 "$D/in" | wc -c)
	b3=$(wc -c < "$D/in")
	run cat "$D/log"
	assert_output "t c 0 $b1 100
t c $b1 $b2 100
t c $b2 $b3 50"
	cat "$D/batch.0" "$D/batch.$b1" "$D/batch.$b2" | cmp - "$D/in"
	run jq -c '[.committed, .pending, .records]' "$(consumer_file t c)"
	assert_output "[$b3,$b3,250]"
	# nothing left: COMMAND is not run
	run aistack-checkpoint run c t -- sh -c 'echo ran'
	assert_success
	assert_output ''
}

@test "run: a batch that fails with 7 stops with 7; a rerun delivers from it, every record in order" {
	gen_records 250 > "$D/in"
	aistack-ingest t "$D/in"
	# batches are kept when they succeed, the second one fails once
	cmd='cat > "$0/cur"; if [ "$AISTACK_BATCH_START" != 0 ] && [ ! -e "$0/failed" ]; then touch "$0/failed"; exit 7; fi; cat "$0/cur" >> "$0/ok"'
	run aistack-checkpoint run -n 100 c t -- sh -c "$cmd" "$D"
	assert_failure 7
	b1=$(head -n 100 "$D/in" | wc -c)
	b2=$(head -n 200 "$D/in" | wc -c)
	assert_output "aistack-checkpoint: t: consumer c: batch $b1-$b2 (100 records) failed: sh exited with status 7; not committed"
	[ "$(committed t c)" -eq "$b1" ]
	[ "$(jq .records "$(consumer_file t c)")" -eq 100 ]
	m=$AISTACK_STATE_DIR/metrics/checkpoint-t.c.prom
	grep -qx 'aistack_consumer_batches_failed_total{stream="t",consumer="c"} 1' "$m"
	grep -qx 'aistack_checkpoint_last_run_batches_failed{stream="t",consumer="c"} 1' "$m"
	grep -qx 'aistack_checkpoint_last_run_records{stream="t",consumer="c"} 100' "$m"
	no_match '^aistack_checkpoint_last_success_timestamp_seconds' "$m"
	[ "$(jq .batches_failed "$(consumer_file t c)")" -eq 1 ]
	run aistack-checkpoint run -n 100 c t -- sh -c "$cmd" "$D"
	assert_success
	cmp "$D/ok" "$D/in"
	[ "$(jq .records "$(consumer_file t c)")" -eq 250 ]
	# the failure stays counted across runs, by the consumer's file
	grep -qx 'aistack_consumer_batches_failed_total{stream="t",consumer="c"} 1' "$m"
	grep -qx 'aistack_consumer_records_committed_total{stream="t",consumer="c"} 250' "$m"
	grep -qx 'aistack_checkpoint_last_run_records{stream="t",consumer="c"} 150' "$m"
	grep -qx 'aistack_checkpoint_last_run_batches{stream="t",consumer="c"} 2' "$m"
	grep -qx 'aistack_checkpoint_last_run_batches_failed{stream="t",consumer="c"} 0' "$m"
	grep -q '^aistack_checkpoint_last_success_timestamp_seconds{stream="t",consumer="c"} [0-9]' "$m"
	# live values are the read model's, not a file's
	no_match '^aistack_consumer_lag_bytes' "$m"
	run aistack-checkpoint status --json t
	assert_output --partial '"consumer":"c","committed":'"$(stat -c %s "$D/in")"',"pending":'"$(stat -c %s "$D/in")"',"lag":0,"records":250,"batches_failed":1,'
	promtool check metrics < "$m"
}

@test "run: COMMAND is run directly; a signal, a missing or a non-executable COMMAND fail the batch" {
	gen_records 5 > "$D/in"
	aistack-ingest t "$D/in"
	# no shell: the argument is passed as it is
	run aistack-checkpoint run c t -- printf '%s|' 'a b;$HOME'
	assert_success
	assert_output 'a b;$HOME|'
	aistack-checkpoint seek c t --start
	run aistack-checkpoint run c t -- sh -c 'kill -TERM $$'
	assert_failure 143
	run -127 aistack-checkpoint run c t -- "$D/nosuch"
	assert_failure 127
	assert_line --index 0 "aistack-checkpoint: $D/nosuch: No such file or directory"
	printf '#!/bin/sh\n' > "$D/noexec"
	run aistack-checkpoint run c t -- "$D/noexec"
	assert_failure 126
	[ "$(committed t c)" -eq 0 ]
	# a COMMAND that does not read its input still decides by its status
	run aistack-checkpoint run c t -- true
	assert_success
	[ "$(committed t c)" -eq "$(stat -c %s "$D/in")" ]
}

@test "30 rounds of kill -9 during run: every record delivered, consumer files always valid" {
	gen_records 20000 > "$D/in"
	aistack-ingest t "$D/in"
	last=0
	for round in $(seq 1 30); do
		aistack-checkpoint run -n 50 k t -- sh -c 'cat >> "$0/out"' "$D" 3>&- &
		pid=$!
		sleep "0.0$((RANDOM % 60 + 10))"
		kill -9 "$pid" 2> /dev/null || true
		wait "$pid" 2> /dev/null || true
		f=$(consumer_file t k)
		if [ -e "$f" ]; then
			# valid, never torn or empty, and never going back
			jq -e '(.committed | type) == "number" and .pending >= .committed and
				(.records | type) == "number" and (.updated | type) == "string"' "$f" > /dev/null
			c=$(jq .committed "$f")
			[ "$c" -ge "$last" ]
			last=$c
			# what is committed was delivered, as whole records
			head -c "$c" "$D/in" | sort -u > "$D/done"
			sort -u "$D/out" | comm -23 "$D/done" - > "$D/missing"
			[ ! -s "$D/missing" ]
		fi
	done
	# the last run waits for any orphaned pipeline, then finishes
	aistack-checkpoint run -n 50 k t -- sh -c 'cat >> "$0/out"' "$D"
	[ "$(committed t k)" -eq "$(stat -c %s "$D/in")" ]
	[ "$(jq .records "$(consumer_file t k)")" -eq 20000 ]
	sort -u "$D/out" > "$D/got"
	sort -u "$D/in" | cmp - "$D/got"
	# nothing but the consumer, its lock and temporary files
	run ls -A "$STREAMS/t/consumers"
	assert_output --regexp '^(\.k\.lock|k|\.k\.tmp.*)(
(\.k\.lock|k|\.k\.tmp.*))*$'
}

@test "a second run waits while the first, then its orphaned pipeline, holds the consumer" {
	gen_records 20 > "$D/in"
	aistack-ingest t "$D/in"
	aistack-checkpoint run c t -- sh -c '
		cat > "$0/first"; : > "$0/started"
		while [ ! -e "$0/release" ]; do sleep 0.05; done' "$D" 3>&- &
	first=$!
	wait_for test -e "$D/started"
	aistack-checkpoint run c t -- sh -c 'cat > "$0/second"' "$D" 3>&- &
	second=$!
	sleep 0.5
	kill -0 "$second"
	[ ! -e "$D/second" ]
	# the first run dies; its pipeline still holds the consumer
	kill -9 "$first"
	wait "$first" || true
	sleep 0.5
	kill -0 "$second"
	[ ! -e "$D/second" ]
	# read waits the same way
	aistack-checkpoint read c t > "$D/read" 3>&- &
	reader=$!
	sleep 0.3
	kill -0 "$reader"
	touch "$D/release"
	wait "$second"
	wait "$reader"
	# the first batch was never committed: delivered again, whole
	cmp "$D/first" "$D/in"
	cmp "$D/second" "$D/in"
	[ "$(committed t c)" -eq "$(stat -c %s "$D/in")" ]
}

@test "reading across plain, gzipped and active segments gives the exact bytes" {
	three_segments t
	printf '{"torn":' >> "$(seg t "$B2")"
	aistack-checkpoint read c t > "$D/got"
	cmp "$D/got" "$D/all"
	# from offsets inside each segment, with a cap
	for off in 0 $((B1 - $(tail -n 1 "$(seg t 0)" | wc -c))) "$B1" \
		$((B1 + $(zcat "$(seg t "$B1").gz" | head -n 37 | wc -c))) "$B2" \
		$((B2 + $(head -n 99 "$(seg t "$B2")" | wc -c))); do
		set_consumer t "o$off" "$off"
		aistack-checkpoint read "o$off" t > "$D/got"
		tail -c +"$((off + 1))" "$D/all" | cmp - "$D/got"
		aistack-checkpoint read -n 150 "o$off" t > "$D/got"
		tail -c +"$((off + 1))" "$D/all" | head -n 150 | cmp - "$D/got"
	done
	# the torn tail is never delivered; the next writer repairs it
	printf '{"next":1}\n' | aistack-ingest t
	aistack-checkpoint commit c t
	run aistack-checkpoint read c t
	assert_output '{"next":1}'
	# and run feeds the same bytes
	aistack-checkpoint run -n 70 r t -- sh -c 'cat >> "$0/ran"' "$D"
	{ cat "$D/all"; echo '{"next":1}'; } | cmp - "$D/ran"
}

@test "read and run at the empty active segment of a freshly sealed stream return" {
	three_segments t
	chmod 0444 "$(seg t "$B2")"
	head=$((B2 + $(stat -c %s "$(seg t "$B2")")))
	: > "$(seg t "$head")"
	run timeout 20 aistack-checkpoint read c t
	assert_success
	assert_output "$(cat "$D/all")"
	aistack-checkpoint commit c t
	run timeout 20 aistack-checkpoint read c t
	assert_success
	assert_output ''
	run timeout 20 aistack-checkpoint run r t -- sh -c 'cat >> "$0/ran"' "$D"
	assert_success
	cmp "$D/ran" "$D/all"
	printf '{"after":"seal"}\n' | aistack-ingest t
	run aistack-checkpoint read c t
	assert_output '{"after":"seal"}'
	[ "$(stat -c %s "$(seg t "$head")")" -eq 17 ]
}

@test "an offset in expired data is lost data: exit 65 with the byte count" {
	three_segments t
	set_consumer t c 0
	rm "$(seg t 0)"
	run aistack-checkpoint read c t
	assert_failure 65
	assert_output "aistack-checkpoint: t: consumer c: offset 0 is in expired data: $B1 bytes lost (\"aistack-checkpoint seek --start\" skips them)"
	run aistack-checkpoint run c t -- cat
	assert_failure 65
	assert_output "aistack-checkpoint: t: consumer c: offset 0 is in expired data: $B1 bytes lost (\"aistack-checkpoint seek --start\" skips them)"
	[ "$(committed t c)" -eq 0 ]
	aistack-checkpoint seek c t --start
	[ "$(committed t c)" -eq "$B1" ]
	aistack-checkpoint read c t > "$D/got"
	tail -c +"$((B1 + 1))" "$D/all" | cmp - "$D/got"
}

@test "a gap met while reading: the records before it are delivered, then exit 65" {
	three_segments t
	rm "$(seg t "$B1").gz"
	lost=$((B2 - B1))
	run aistack-checkpoint read c t
	assert_failure 65
	assert_output "$(cat "$(seg t 0)")
aistack-checkpoint: t: consumer c: offset $B1 is in expired data: $lost bytes lost (\"aistack-checkpoint seek --start\" skips them)"
	[ "$(jq .pending "$(consumer_file t c)")" -eq "$B1" ]
	# run commits the batches before the gap, then stops the same way
	run aistack-checkpoint run -n 30 r t -- sh -c 'cat >> "$0/ran"' "$D"
	assert_failure 65
	assert_output "aistack-checkpoint: t: consumer r: offset $B1 is in expired data: $lost bytes lost (\"aistack-checkpoint seek --start\" skips them)"
	cmp "$D/ran" "$(seg t 0)"
	[ "$(committed t r)" -eq "$B1" ]
	[ "$(jq .records "$(consumer_file t r)")" -eq 100 ]
}

@test "seek: --start, --end and --offset at a record boundary only" {
	three_segments t
	head=$((B2 + $(stat -c %s "$(seg t "$B2")")))
	aistack-checkpoint seek c t --end
	[ "$(committed t c)" -eq "$head" ]
	[ "$(jq .pending "$(consumer_file t c)")" -eq "$head" ]
	aistack-checkpoint seek c t --start
	[ "$(committed t c)" -eq 0 ]
	mid=$((B1 + $(zcat "$(seg t "$B1").gz" | head -n 10 | wc -c)))
	run aistack-checkpoint seek c t --offset "$mid"
	assert_success
	run aistack-checkpoint read -n 1 c t
	assert_output '{"id":"b11","n":11}'
	for off in "$B1" "$B2" "$head"; do
		aistack-checkpoint seek c t --offset "$off"
		[ "$(committed t c)" -eq "$off" ]
	done
	run aistack-checkpoint seek c t --offset $((mid + 1))
	assert_failure 65
	assert_output "aistack-checkpoint: t: offset $((mid + 1)) is not a record boundary"
	run aistack-checkpoint seek c t --offset $((head + 1))
	assert_failure 65
	assert_output "aistack-checkpoint: t: offset $((head + 1)) is past the head $head"
	rm "$(seg t 0)"
	run aistack-checkpoint seek c t --offset 0
	assert_failure 65
	assert_output "aistack-checkpoint: t: offset 0 is in expired data: the first retained offset is $B1"
	[ "$(committed t c)" -eq "$head" ]
}

@test "status --json values match the file sizes" {
	three_segments t
	printf '{"torn":' >> "$(seg t "$B2")"
	size2=$(($(stat -c %s "$(seg t "$B2")") - 8))
	head=$((B2 + size2))
	set_consumer t slow "$B1"
	aistack-checkpoint seek fast t --end
	aistack-checkpoint read -n 5 slow t > /dev/null
	pending=$((B1 + $(zcat "$(seg t "$B1").gz" | head -n 5 | wc -c)))
	mkdir -p "$STREAMS/empty"
	run aistack-checkpoint status --json t
	assert_success
	run jq -c '[.stream, .head, .backlog, (.consumers[] | [.consumer, .committed, .pending, .lag, .records])]' <<< "$output"
	assert_output "[\"t\",$head,$((head - B1)),[\"fast\",$head,$head,0,0],[\"slow\",$B1,$pending,$((head - B1)),0]]"
	# disk usage by form, from the file sizes (the torn tail is on disk)
	plain=$(($(stat -c %s "$(seg t 0)") + $(stat -c %s "$(seg t "$B2")")))
	run jq -c '[.first, .disk_bytes, .disk_bytes_gz, .segments, .segments_gz, .paused, .records]' <<< "$(aistack-checkpoint status --json t)"
	assert_output "[0,$plain,$(stat -c %s "$(seg t "$B1").gz"),2,1,false,null]"
	# every stream, sorted, one JSON object per line
	run aistack-checkpoint status --json
	assert_success
	assert_line --index 0 '{"stream":"empty","head":0,"backlog":0,"first":0,"paused":false,"max_backlog":null,"records":null,"bytes":null,"rejected":null,"empty":null,"counted_head":null,"counting_since":null,"disk_bytes":0,"disk_bytes_gz":0,"segments":0,"segments_gz":0,"consumers":[],"sources":[]}'
	[ "$(jq -r .stream <<< "$output" | paste -sd,)" = empty,t ]
	run aistack-checkpoint status t
	assert_success
	assert_line --index 0 "t: head $head, backlog $((head - B1)), disk $((plain + $(stat -c %s "$(seg t "$B1").gz"))) bytes in 3 segments ($(stat -c %s "$(seg t "$B1").gz") bytes in 1 gzipped)"
	assert_line --index 1 --regexp "^  fast: committed $head, pending $head, lag 0, records 0, updated 20[0-9-]+T[0-9:]+Z$"
	assert_line --index 2 --regexp "^  slow: committed $B1, pending $pending, lag $((head - B1)), records 0, updated 20[0-9-]+T[0-9:]+Z$"
	run aistack-checkpoint status nosuch
	assert_failure 66
	assert_output "aistack-checkpoint: nosuch: no such stream"
}

@test "remove forgets a consumer, its lock and its metrics" {
	gen_records 3 | aistack-ingest t
	aistack-checkpoint read c t > /dev/null
	aistack-checkpoint read d t > /dev/null
	[ -e "$AISTACK_STATE_DIR/metrics/checkpoint-t.c.prom" ]
	run aistack-checkpoint remove c t
	assert_success
	assert_output ''
	run ls -A "$STREAMS/t/consumers"
	assert_output $'.d.lock\nd'
	[ ! -e "$AISTACK_STATE_DIR/metrics/checkpoint-t.c.prom" ]
	run sh -c 'aistack-checkpoint status --json t | jq -c "{stream, head, backlog, consumers}"'
	assert_output '{"stream":"t","head":'"$(stat -c %s "$(seg t 0)")"',"backlog":'"$(stat -c %s "$(seg t 0)")"',"consumers":[{"consumer":"d","committed":0,"pending":'"$(stat -c %s "$(seg t 0)")"',"lag":'"$(stat -c %s "$(seg t 0)")"',"records":0,"batches_failed":0,"updated":"'"$(jq -r .updated "$(consumer_file t d)")"'"}]}'
	# a removed consumer starts again from the first retained offset
	run aistack-checkpoint read -n 1 c t
	assert_output '{"id":"r1","n":1}'
}

@test "read -f waits for records, up to -n or --timeout" {
	gen_records 2 > "$D/in"
	aistack-ingest t "$D/in"
	aistack-checkpoint read -f -n 5 c t > "$D/got" 3>&- &
	pid=$!
	wait_for lines_are "$D/got" 2
	kill -0 "$pid"
	gen_records 3 more > "$D/more"
	aistack-ingest t "$D/more"
	wait "$pid"
	cat "$D/in" "$D/more" | cmp - "$D/got"
	# --timeout ends the wait; what was printed is pending
	aistack-checkpoint commit c t
	run aistack-checkpoint read -f --timeout 300ms c t
	assert_success
	assert_output ''
	# SIGTERM ends a follow cleanly, recording what it delivered
	aistack-checkpoint read -f c t > "$D/got2" 3>&- &
	pid=$!
	printf '{"late":1}\n' | aistack-ingest t
	wait_for grep -q late "$D/got2"
	kill -TERM "$pid"
	wait "$pid"
	aistack-checkpoint commit c t
	[ "$(committed t c)" -eq "$(stat -c %s "$(seg t 0)")" ]
}

@test "run -f runs batches as records arrive and stops on SIGTERM" {
	aistack-checkpoint run -f -n 2 c t -- sh -c 'cat >> "$0/out"' "$D" 3>&- &
	pid=$!
	gen_records 5 > "$D/in"
	aistack-ingest t "$D/in"
	wait_for committed_is t c "$(stat -c %s "$D/in")"
	kill -TERM "$pid"
	wait "$pid"
	cmp "$D/out" "$D/in"
	[ "$(jq .records "$(consumer_file t c)")" -eq 5 ]
}

@test "aistack-ingest --max-backlog blocks while the consumer lags, resumes when it commits" {
	gen_records 100 > "$D/in"
	aistack-ingest t "$D/in"
	aistack-checkpoint seek c t --start
	size=$(stat -c %s "$(seg t 0)")
	gen_records 10 more > "$D/more"
	aistack-ingest --max-backlog 1k t "$D/more" 3>&- &
	pid=$!
	wait_for paused_is t true
	kill -0 "$pid"
	[ "$(stat -c %s "$(seg t 0)")" -eq "$size" ]
	# reading alone does not move the backlog: only a commit does
	aistack-checkpoint read -n 50 c t > /dev/null
	sleep 1.5
	kill -0 "$pid"
	[ "$(stat -c %s "$(seg t 0)")" -eq "$size" ]
	aistack-checkpoint read c t > "$D/got"
	cmp "$D/got" "$D/in"
	aistack-checkpoint commit c t
	wait "$pid"
	run aistack-checkpoint read c t
	assert_output "$(cat "$D/more")"
	run aistack-checkpoint status --json t
	assert_output --partial "\"backlog\":$(stat -c %s "$D/more")"
}

@test "settings: [checkpoint] batch, AISTACK_CHECKPOINT_BATCH, -n wins" {
	gen_records 6 | aistack-ingest t
	cmd='wc -l >> "$0"'
	printf '[checkpoint]\nbatch = 4\n' > "$AISTACK_CONFIG"
	aistack-checkpoint run a t -- sh -c "$cmd" "$D/a"
	AISTACK_CHECKPOINT_BATCH=5 aistack-checkpoint run b t -- sh -c "$cmd" "$D/b"
	AISTACK_CHECKPOINT_BATCH=5 aistack-checkpoint run -n 3 c t -- sh -c "$cmd" "$D/c"
	assert_equal "$(paste -sd, "$D/a")" 4,2
	assert_equal "$(paste -sd, "$D/b")" 5,1
	assert_equal "$(paste -sd, "$D/c")" 3,3
	printf '[checkpoint]\nbatch = many\n' > "$AISTACK_CONFIG"
	run aistack-checkpoint run d t -- true
	assert_failure 78
	assert_output "aistack-checkpoint: $AISTACK_CONFIG:2: invalid batch \"many\""
}

@test "the command line: usage errors exit 64, --help and --version" {
	run aistack-checkpoint
	assert_failure 64
	assert_line --index 0 'aistack-checkpoint: missing command'
	run aistack-checkpoint frobnicate c t
	assert_failure 64
	assert_line --index 0 'aistack-checkpoint: frobnicate: unknown command'
	run aistack-checkpoint read c
	assert_failure 64
	assert_line --index 0 'aistack-checkpoint: read: missing CONSUMER STREAM'
	run aistack-checkpoint read c t extra
	assert_failure 64
	run aistack-checkpoint read -n 0 c t
	assert_failure 64
	assert_line --index 0 'aistack-checkpoint: -n: invalid value "0"'
	run aistack-checkpoint read --from middle c t
	assert_failure 64
	run aistack-checkpoint read --timeout 1s c t
	assert_failure 64
	assert_line --index 0 'aistack-checkpoint: --timeout: needs -f'
	run aistack-checkpoint commit --json c t
	assert_failure 64
	run aistack-checkpoint read Bad t
	assert_failure 64
	run aistack-checkpoint run c t cat
	assert_failure 64
	assert_line --index 0 'aistack-checkpoint: run: missing -- COMMAND'
	run aistack-checkpoint run c t --
	assert_failure 64
	run aistack-checkpoint seek c t
	assert_failure 64
	run aistack-checkpoint seek c t --start --end
	assert_failure 64
	run aistack-checkpoint seek c t --offset x
	assert_failure 64
	[ ! -e "$STREAMS/t" ]
	run aistack-checkpoint --version
	assert_success
	assert_output --regexp '^aistack-checkpoint [0-9]+\.[0-9]+\.[0-9]+$'
	run aistack-checkpoint --help
	assert_success
	assert_line --index 0 --partial 'usage: aistack-checkpoint read'
	run aistack-checkpoint run -h
	assert_success
	assert_line --index 0 --partial 'usage: aistack-checkpoint read'
}
