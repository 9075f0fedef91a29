#!/usr/bin/env bats
# aistack-ingest: validated appends, rejects, concurrency, crashes, a full
# file system, backpressure and the command line.

load test_helper

seg0() {
	echo "$STREAMS/$1/00000000000000000000.jsonl"
}

@test "records are appended byte for byte, in order, from files, - and stdin" {
	printf '{"a":1}\n{ "b" : [1, 2.5e3, "x\\u00e9"] }\n' > "$BATS_TEST_TMPDIR/one"
	printf '{"c":"\xc3\xa9"}\n' > "$BATS_TEST_TMPDIR/two"
	run aistack-ingest telemetry "$BATS_TEST_TMPDIR/one" - "$BATS_TEST_TMPDIR/two" \
		<<< '{"from":"stdin"}'
	assert_success
	assert_output ''
	run aistack-ingest telemetry <<< '{"d":4}'
	assert_success
	expected=$(printf '{"a":1}\n{ "b" : [1, 2.5e3, "x\\u00e9"] }\n{"from":"stdin"}\n{"c":"\xc3\xa9"}\n{"d":4}')
	assert_equal "$(cat "$(seg0 telemetry)")" "$expected"
	[ ! -e "$STREAMS/telemetry.rejects" ]
}

@test "a last line without a newline is appended with one" {
	printf '{"a":1}\n{"b":2}' | aistack-ingest t
	run cat "$(seg0 t)"
	assert_output "$(printf '{"a":1}\n{"b":2}')"
	assert_equal "$(tail -c 1 "$(seg0 t)" | od -An -c | tr -d ' ')" '\n'
}

@test "every class of bad line goes to the rejects stream, recoverable, exit 0" {
	bad="$BATS_TEST_TMPDIR/bad"
	{
		printf '{"ok":1}\n'
		printf 'not json\n'
		printf '[1,2]\n'
		printf '"a string"\n'
		printf '{"a":1}{"b":2}\n'
		printf '{"a":1} trailing\n'
		printf '{"s":"\xff\xfe"}\n'
		printf '{"s":"a\0b"}\n'
		printf '{"s":"unterminated}\n'
		printf '{"ok":2}\n'
		python3 -c 'print("{\"big\":\"" + "x" * 2000 + "\"}")'
		python3 -c 'print("[" * 200000 + "]" * 200000)'
		python3 -c 'print("{\"a\":" + "[" * 200000 + "]" * 200000 + "}")'
		printf '{"ok":3}\n'
	} > "$bad"
	run aistack-ingest --max-record 1k t "$bad"
	assert_success
	assert_output ''
	run cat "$(seg0 t)"
	assert_output "$(printf '{"ok":1}\n{"ok":2}\n{"ok":3}')"
	# the originals come back byte for byte, in order
	grep -av '^{"ok"' "$bad" > "$BATS_TEST_TMPDIR/expected"
	recover-rejects "$(seg0 t.rejects)" > "$BATS_TEST_TMPDIR/recovered"
	cmp "$BATS_TEST_TMPDIR/expected" "$BATS_TEST_TMPDIR/recovered"
	# each reject says why and where
	run jq -r '[.source, .reason] | join(" ")' "$(seg0 t.rejects)"
	assert_output "$(cat <<EOF
$bad:2 invalid JSON: unexpected 'o' at byte 1
$bad:3 not a JSON object
$bad:4 not a JSON object
$bad:5 trailing data after the object at byte 7
$bad:6 trailing data after the object at byte 8
$bad:7 invalid UTF-8 at byte 6
$bad:8 NUL byte in a string at byte 7
$bad:9 invalid JSON: unexpected end at byte 19
$bad:11 record larger than --max-record 1k
$bad:12 record larger than --max-record 1k
$bad:13 record larger than --max-record 1k
EOF
)"
	jq -e '.time | test("^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}Z$")' "$(seg0 t.rejects)" > /dev/null
	# the rejects stream is itself a valid stream of records
	run aistack-ingest t2 "$(seg0 t.rejects)"
	assert_success
	[ ! -e "$STREAMS/t2.rejects" ]
}

@test "deep nesting within --max-record is refused, not a crash" {
	python3 -c 'print("{\"a\":" + "[" * 200000 + "]" * 200000 + "}")' > "$BATS_TEST_TMPDIR/deep"
	run aistack-ingest t "$BATS_TEST_TMPDIR/deep"
	assert_success
	run jq -r .reason "$(seg0 t.rejects)"
	assert_output 'nested deeper than 2048 at byte 2052'
	recover-rejects "$(seg0 t.rejects)" | cmp - "$BATS_TEST_TMPDIR/deep"
}

@test "a line longer than the input buffer is rejected whole, in bounded memory" {
	python3 -c 'import sys; sys.stdout.write("{\"ok\":1}\n{\"s\":\"" + "y" * (9 * 1024 * 1024) + "\"}\n{\"ok\":2}\n{\"tail\":\"" + "z" * (5 * 1024 * 1024))' > "$BATS_TEST_TMPDIR/huge"
	run aistack-ingest t "$BATS_TEST_TMPDIR/huge"
	assert_success
	run cat "$(seg0 t)"
	assert_output "$(printf '{"ok":1}\n{"ok":2}')"
	recover-rejects "$(seg0 t.rejects)" > "$BATS_TEST_TMPDIR/back"
	{ sed -n 2p "$BATS_TEST_TMPDIR/huge"; sed -n 4p "$BATS_TEST_TMPDIR/huge"; echo; } |
		cmp - "$BATS_TEST_TMPDIR/back"
	run jq -r .source "$(seg0 t.rejects)"
	assert_output "$(printf '%s\n%s' "$BATS_TEST_TMPDIR/huge:2" "$BATS_TEST_TMPDIR/huge:4")"
}

@test "empty lines are skipped and counted" {
	printf '\n{"a":1}\n\n  \n{"b":2}\n' | aistack-ingest --stats "$BATS_TEST_TMPDIR/s.json" t
	run cat "$(seg0 t)"
	assert_output "$(printf '{"a":1}\n{"b":2}')"
	run jq -c '{records, rejected, empty}' "$BATS_TEST_TMPDIR/s.json"
	assert_output '{"records":2,"rejected":0,"empty":3}'
	[ ! -e "$STREAMS/t.rejects" ]
}

@test "--rejects names another stream, and paths work as streams" {
	printf '{"a":1}\nbad\n' | aistack-ingest --rejects "$BATS_TEST_TMPDIR/rej" "$BATS_TEST_TMPDIR/out"
	run cat "$BATS_TEST_TMPDIR/out/00000000000000000000.jsonl"
	assert_output '{"a":1}'
	run jq -r .record "$BATS_TEST_TMPDIR/rej/00000000000000000000.jsonl"
	assert_output 'bad'
}

@test "--stats and the metrics textfile report the run; the stream's counters add up across runs" {
	printf '{"a":1}\nbad\n\n{"b":2}\n' | aistack-ingest --stats "$BATS_TEST_TMPDIR/s.json" t
	run jq -c 'del(.paused_seconds)' "$BATS_TEST_TMPDIR/s.json"
	assert_output '{"stream":"t","records":2,"rejected":1,"empty":1,"bytes":16,"batches":1}'
	printf '{"c":3}\n\n\n' | aistack-ingest t
	run grep -v -e '^#' -e '^aistack_ingest_last_success' "$AISTACK_STATE_DIR/metrics/ingest-t.prom"
	assert_output "$(cat <<'EOF'
aistack_ingest_records_total{stream="t",result="appended"} 3
aistack_ingest_records_total{stream="t",result="rejected"} 1
aistack_ingest_records_total{stream="t",result="empty"} 3
aistack_ingest_bytes_total{stream="t"} 24
aistack_ingest_last_run_records{stream="t",result="appended"} 1
aistack_ingest_last_run_records{stream="t",result="rejected"} 0
aistack_ingest_last_run_records{stream="t",result="empty"} 2
aistack_ingest_last_run_bytes{stream="t"} 8
aistack_ingest_last_run_batches{stream="t"} 1
aistack_ingest_last_run_paused_seconds{stream="t"} 0
EOF
)"
	now=$(date +%s)
	t=$(sed -n 's/^aistack_ingest_last_success_timestamp_seconds{stream="t"} //p' \
		"$AISTACK_STATE_DIR/metrics/ingest-t.prom")
	[ "$t" -le "$now" ] && [ "$t" -ge $((now - 60)) ]
	# a failed run keeps the last success's time
	set_consumer t learning 0
	sleep 1
	run aistack-ingest --max-backlog 1 --on-full fail t <<< '{"d":4}'
	assert_failure 75
	grep -qx "aistack_ingest_last_success_timestamp_seconds{stream=\"t\"} $t" \
		"$AISTACK_STATE_DIR/metrics/ingest-t.prom"
	grep -qx 'aistack_ingest_records_total{stream="t",result="appended"} 3' \
		"$AISTACK_STATE_DIR/metrics/ingest-t.prom"
}

@test "--sync always and none append the same bytes" {
	gen_records 50 > "$BATS_TEST_TMPDIR/in"
	aistack-ingest --sync always a "$BATS_TEST_TMPDIR/in"
	aistack-ingest --sync none b "$BATS_TEST_TMPDIR/in"
	cmp "$(seg0 a)" "$BATS_TEST_TMPDIR/in"
	cmp "$(seg0 b)" "$BATS_TEST_TMPDIR/in"
}

@test "500 concurrent writers x 100 records give exactly 50,000 whole records" {
	for i in $(seq 1 500); do
		gen_records 100 "w$i-" > "$BATS_TEST_TMPDIR/in$i"
	done
	pids=()
	for i in $(seq 1 500); do
		aistack-ingest many "$BATS_TEST_TMPDIR/in$i" &
		pids+=($!)
	done
	for p in "${pids[@]}"; do
		wait "$p"
	done
	run wc -l < "$(seg0 many)"
	assert_output 50000
	# every line a whole record, every record exactly once
	[ "$(jq -c . "$(seg0 many)" | wc -l)" -eq 50000 ]
	[ "$(jq -r .id "$(seg0 many)" | sort -u | wc -l)" -eq 50000 ]
	# each writer's records stay in its order
	for i in 1 250 500; do
		grep "\"w$i-" "$(seg0 many)" | cmp - "$BATS_TEST_TMPDIR/in$i"
	done
}

@test "a writer killed mid-batch leaves no torn record; every exit-0 run is there" {
	python3 -c '
import sys
for i in range(200000):
    sys.stdout.write("{\"id\":\"big%d\",\"pad\":\"%s\"}\n" % (i, "p" * 300))
' > "$BATS_TEST_TMPDIR/big"
	acked="$BATS_TEST_TMPDIR/acked"
	: > "$acked"
	for round in $(seq 1 8); do
		aistack-ingest --sync none t < "$BATS_TEST_TMPDIR/big" &
		pid=$!
		sleep "0.0$((RANDOM % 9 + 1))"
		kill -9 "$pid" 2>/dev/null || true
		wait "$pid" || true
		gen_records 20 "ok$round-" > "$BATS_TEST_TMPDIR/small"
		if aistack-ingest t < "$BATS_TEST_TMPDIR/small"; then
			cat "$BATS_TEST_TMPDIR/small" >> "$acked"
		fi
	done
	# a torn tail left by the last kill is not a record
	printf '{"torn":' >> "$(seg0 t)"
	gen_records 5 final- > "$BATS_TEST_TMPDIR/small"
	aistack-ingest t < "$BATS_TEST_TMPDIR/small"
	cat "$BATS_TEST_TMPDIR/small" >> "$acked"
	# every line is a valid record
	total=$(wc -l < "$(seg0 t)")
	[ "$(jq -c . "$(seg0 t)" | wc -l)" -eq "$total" ]
	[ "$(tail -c 1 "$(seg0 t)" | od -An -c | tr -d ' ')" = '\n' ]
	[ "$(grep -c torn "$(seg0 t)")" -eq 0 ]
	# every acknowledged record is present exactly once
	[ "$(wc -l < "$acked")" -eq 165 ]
	while IFS= read -r line; do
		[ "$(grep -cxF "$line" "$(seg0 t)")" -eq 1 ]
	done < "$acked"
}

@test "a full file system: exit 74 naming the stream, no partial record, acknowledged data intact" {
	mnt="$BATS_TEST_TMPDIR/small"
	mkdir -p "$mnt"
	mount -t tmpfs -o size=1m tmpfs "$mnt"
	export AISTACK_STATE_DIR="$mnt/state"
	gen_records 100 first- > "$BATS_TEST_TMPDIR/first"
	aistack-ingest t "$BATS_TEST_TMPDIR/first"
	python3 -c '
import sys
for i in range(20000):
    sys.stdout.write("{\"id\":\"fill%d\",\"pad\":\"%s\"}\n" % (i, "f" * 100))
' > "$BATS_TEST_TMPDIR/fill"
	run aistack-ingest t "$BATS_TEST_TMPDIR/fill"
	seg=$mnt/state/streams/t/00000000000000000000.jsonl
	cp "$seg" "$BATS_TEST_TMPDIR/after"
	umount "$mnt"
	assert_failure 74
	assert_line --index 0 --regexp '^aistack-ingest: t: write: No space left on device \([0-9]+ of the batch.s 20000 records landed, none acknowledged\)$'
	# only whole records, and the acknowledged run is all there
	[ "$(tail -c 1 "$BATS_TEST_TMPDIR/after" | od -An -c | tr -d ' ')" = '\n' ]
	[ "$(jq -c . "$BATS_TEST_TMPDIR/after" | wc -l)" -eq "$(wc -l < "$BATS_TEST_TMPDIR/after")" ]
	head -n 100 "$BATS_TEST_TMPDIR/after" | cmp - "$BATS_TEST_TMPDIR/first"
}

@test "--on-full fail exits 75 while a consumer lags, having appended nothing more" {
	gen_records 100 > "$BATS_TEST_TMPDIR/in"
	aistack-ingest t "$BATS_TEST_TMPDIR/in"
	set_consumer t learning 0
	size=$(wc -c < "$(seg0 t)")
	run aistack-ingest --max-backlog 1k --on-full fail t "$BATS_TEST_TMPDIR/in"
	assert_failure 75
	assert_output "aistack-ingest: t: backlog $size bytes exceeds --max-backlog 1k; appended 0 records, stopped after $BATS_TEST_TMPDIR/in:0"
	[ "$(wc -c < "$(seg0 t)")" -eq "$size" ]
	# a consumer that caught up lets it through
	set_consumer t learning "$size"
	run aistack-ingest --max-backlog 1k --on-full fail t "$BATS_TEST_TMPDIR/in"
	assert_success
	[ "$(wc -l < "$(seg0 t)")" -eq 200 ]
}

@test "--on-full block waits while a consumer lags and resumes by itself" {
	gen_records 100 > "$BATS_TEST_TMPDIR/in"
	aistack-ingest t "$BATS_TEST_TMPDIR/in"
	set_consumer t learning 0
	size=$(wc -c < "$(seg0 t)")
	gen_records 10 more- > "$BATS_TEST_TMPDIR/more"
	aistack-ingest --max-backlog 1k t "$BATS_TEST_TMPDIR/more" &
	pid=$!
	# paused, not failed: still running, nothing appended, shown as paused
	poll_until paused_is t true
	kill -0 "$pid"
	[ "$(wc -c < "$(seg0 t)")" -eq "$size" ]
	set_consumer t learning "$size"
	wait "$pid"
	[ "$(wc -l < "$(seg0 t)")" -eq 110 ]
	paused_is t false
}

@test "settings come from the config file and the environment, flags win" {
	gen_records 100 > "$BATS_TEST_TMPDIR/in"
	aistack-ingest t "$BATS_TEST_TMPDIR/in"
	set_consumer t c 0
	printf '[ingest]\nmax_backlog = 1k\non_full = fail\n' > "$AISTACK_CONFIG"
	run aistack-ingest t "$BATS_TEST_TMPDIR/in"
	assert_failure 75
	AISTACK_INGEST_MAX_BACKLOG=1M run aistack-ingest t "$BATS_TEST_TMPDIR/in"
	assert_success
	run aistack-ingest --max-backlog 0 t "$BATS_TEST_TMPDIR/in"
	assert_success
	printf '[ingest]\nsync = sometimes\n' > "$AISTACK_CONFIG"
	run aistack-ingest t "$BATS_TEST_TMPDIR/in"
	assert_failure 78
	assert_output "aistack-ingest: $AISTACK_CONFIG:2: invalid sync \"sometimes\""
}

@test "usage errors exit 64, missing input 66, --help and --version" {
	run aistack-ingest
	assert_failure 64
	assert_line --index 0 'aistack-ingest: missing TARGET'
	run aistack-ingest --bogus t
	assert_failure 64
	run aistack-ingest --sync maybe t
	assert_failure 64
	assert_line --index 0 'aistack-ingest: --sync: invalid value "maybe"'
	run aistack-ingest --max-record 12Q t
	assert_failure 64
	run aistack-ingest Bad_Name
	assert_failure 64
	assert_output --partial 'aistack-ingest: Bad_Name: invalid name'
	printf '{"a":1}\n' > "$BATS_TEST_TMPDIR/in"
	run aistack-ingest t "$BATS_TEST_TMPDIR/nope" "$BATS_TEST_TMPDIR/in"
	assert_failure 66
	assert_output "aistack-ingest: $BATS_TEST_TMPDIR/nope: No such file or directory"
	run cat "$(seg0 t)"
	assert_output '{"a":1}'
	run aistack-ingest --help
	assert_success
	assert_line --index 0 --partial 'usage: aistack-ingest [-v]'
	run aistack-ingest --version
	assert_success
	assert_output --regexp '^aistack-ingest [0-9]+\.[0-9]+\.[0-9]+$'
}

@test "-v reports counts on standard error" {
	run aistack-ingest -v t <<< $'{"a":1}\nbad'
	assert_success
	assert_output 'aistack-ingest: t: 1 records appended, 1 rejected, 0 empty lines, 1 batches'
}

@test "the depth limit is exact: 2048 nested containers with any innermost value are records, 2049 are rejected" {
	local n shape inner want=
	for n in 2047 2048 2049; do
		for shape in a o; do
			for inner in "" 1 '"x"' null; do
				gen-nested $n $shape "$inner" >> "$BATS_TEST_TMPDIR/in"
				if [ $n -le 2048 ]; then
					gen-nested $n $shape "$inner" >> "$BATS_TEST_TMPDIR/want"
				else
					want="${want}nested deeper than 2048 at byte $([ $shape = a ] && echo 2052 || echo 10240)
"
				fi
			done
		done
	done
	run aistack-ingest t "$BATS_TEST_TMPDIR/in"
	assert_success
	cmp "$BATS_TEST_TMPDIR/want" "$(seg0 t)"
	run jq -r .reason "$(seg0 t.rejects)"
	assert_output "${want%
}"
}

@test "escape-heavy records are scanned in bounded CPU time" {
	local kind
	for kind in e9 emoji nl cjk mixed; do
		gen-escapes "$kind" 1048576 > "$BATS_TEST_TMPDIR/in"
		run bash -c 'ulimit -t 20; aistack-ingest --max-record 16M "t$1" "$0"' \
			"$BATS_TEST_TMPDIR/in" "$kind"
		assert_success
		cmp "$BATS_TEST_TMPDIR/in" "$(seg0 "t$kind")"
	done
}
