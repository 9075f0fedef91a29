#!/usr/bin/env bats
# aistack-dedup: order and first-kept, canonical keys, key paths,
# normalization, statistics, duplicates, -s across runs, -a against a sink
# stream (exact under failures and kills), near duplicates, hostile input
# and the command line.

bats_require_minimum_version 1.5.0

load test_helper

seg0() {
	echo "$STREAMS/$1/00000000000000000000.jsonl"
}

# put_stream NAME: standard input becomes stream NAME's only segment.
put_stream() {
	mkdir -p "$STREAMS/$1"
	cat > "$(seg0 "$1")"
}

@test "first record of each key kept, in input order, byte for byte" {
	run aistack-dedup <<'EOF'
{"id":3, "t":"c"}
{"id":1,"t":"a"}
{"id":3,"t":"c"}
{"id":2,"t":"b"}
{"id":1,"t":"a"}
{"id":1,"t":"a"}
{"id":4,"t":"a"}
EOF
	assert_success
	assert_output '{"id":3, "t":"c"}
{"id":1,"t":"a"}
{"id":2,"t":"b"}
{"id":4,"t":"a"}'
}

@test "canonical key: key order, white space, escapes and numbers written alike are one key" {
	printf '%s\n' \
		'{"a":1,"b":{"y":[1,2],"x":"\u00e9"}}' \
		'{"b":{"x":"é","y":[1.0,2e0]},"a":1}' \
		' {  "b" : { "x" : "\u00E9" , "y" : [ 10e-1 , 0.2e1 ] } , "a" : 1 } ' \
		'{"a":1e0,"b":{"y":[1,2],"x":"\u00e9"}}' \
		'{"s":"a\/b","n":100}' \
		'{"n":1e2,"s":"a/b"}' \
		'{"n":1E+2,"s":"\u0061/b"}' \
		'{"n":-0}' \
		'{"n":0.0}' \
		'{"t":"\ud83d\ude00\n"}' \
		'{"t":"😀\u000a"}' > "$BATS_TEST_TMPDIR/in"
	run aistack-dedup < "$BATS_TEST_TMPDIR/in"
	assert_success
	assert_output '{"a":1,"b":{"y":[1,2],"x":"\u00e9"}}
{"s":"a\/b","n":100}
{"n":-0}
{"t":"\ud83d\ude00\n"}'
}

@test "canonical key: values that differ stay apart" {
	printf '%s\n' \
		'{"a":[1,2]}' '{"a":[2,1]}' '{"a":1}' '{"a":"1"}' '{"a":null}' '{}' \
		'{"a":0.1}' '{"a":0.10000000000000001}' '{"a":true}' '{"a":"A"}' \
		'{"a":"a"}' '{"a":{}}' '{"a":[]}' '{"A":1}' > "$BATS_TEST_TMPDIR/in"
	run aistack-dedup < "$BATS_TEST_TMPDIR/in"
	assert_success
	assert_output "$(cat "$BATS_TEST_TMPDIR/in")"
}

@test "a repeated member name: the last one wins, as in jq" {
	run aistack-dedup <<'EOF'
{"a":1,"a":2}
{"a":2}
{"a":1}
EOF
	assert_success
	assert_output '{"a":1,"a":2}
{"a":1}'
}

@test "--exact keys on the raw line, like awk '!seen[\$0]++'" {
	printf '%s\n' '{"a":1}' '{"a": 1}' '{"a":1}' 'not json' '' 'not json' '' \
		'{"a":1} ' > "$BATS_TEST_TMPDIR/in"
	run aistack-dedup --exact < "$BATS_TEST_TMPDIR/in"
	assert_success
	assert_output "$(awk '!seen[$0]++' "$BATS_TEST_TMPDIR/in")"
	# a larger input, byte for byte the same as awk's
	awk 'BEGIN { srand(3); for (i = 0; i < 20000; i++)
		printf "{\"k\":%d,\"v\":\"%s\"}\n", int(rand() * 6000), (i % 7 ? "x" : "y") }' \
		> "$BATS_TEST_TMPDIR/big"
	aistack-dedup --exact < "$BATS_TEST_TMPDIR/big" > "$BATS_TEST_TMPDIR/ours"
	awk '!seen[$0]++' "$BATS_TEST_TMPDIR/big" > "$BATS_TEST_TMPDIR/awk"
	cmp "$BATS_TEST_TMPDIR/ours" "$BATS_TEST_TMPDIR/awk"
}

@test "a last line without a newline is written with one; CR LF lines stay as they are" {
	printf '{"a":1}\r\n{"a":1}\n{"b":2}' | aistack-dedup > "$BATS_TEST_TMPDIR/out"
	printf '{"a":1}\r\n{"b":2}\n' | cmp - "$BATS_TEST_TMPDIR/out"
	printf 'x\r\nx\ny' | aistack-dedup --exact > "$BATS_TEST_TMPDIR/out"
	printf 'x\r\nx\ny\n' | cmp - "$BATS_TEST_TMPDIR/out"
}

@test "-k: nested, indexed and quoted paths; several paths; absent is not null" {
	cat > "$BATS_TEST_TMPDIR/in" <<'EOF'
{"task":{"prompt":"p1"},"messages":[{"c":"sys"},{"content":"hi"}],"odd key":1,"n":1}
{"task":{"prompt":"p1"},"messages":[{"c":"other"},{"content":"hi"}],"odd key":1,"n":2}
{"task":{"prompt":"p1"},"messages":[{"c":"sys"},{"content":"hello"}],"odd key":1,"n":3}
{"task":{"prompt":"p2"},"messages":[{"c":"sys"},{"content":"hi"}],"odd key":2,"n":4}
{"task":{"prompt":"p1"},"messages":[{"c":"sys"},{"content":"hi"}],"odd key":2,"n":5}
{"task":{"prompt":"p1"},"messages":[{"c":"sys"},{"content":"hi"}],"n":6}
{"task":{"prompt":"p1"},"messages":[{"c":"sys"},{"content":"hi"}],"odd key":null,"n":7}
{"task":{"prompt":"p1"},"messages":[{"c":"sys"},{"content":"hi"}],"n":8}
{"task":{"prompt":"p1"},"messages":[{"c":"sys"},{"content":"hi"}],"odd key":null,"n":9}
EOF
	run aistack-dedup -k '.task.prompt,.messages[1].content,."odd key"' < "$BATS_TEST_TMPDIR/in"
	assert_success
	assert_output "$(sed -n '1p;3p;4p;5p;6p;7p' "$BATS_TEST_TMPDIR/in")"
	# the same paths spelled otherwise are the same key definition
	run aistack-dedup -k '.["task"].prompt,.messages.[1]["content"],.["odd key"]' < "$BATS_TEST_TMPDIR/in"
	assert_output "$(sed -n '1p;3p;4p;5p;6p;7p' "$BATS_TEST_TMPDIR/in")"
	# a negative index counts from the end; a missing path on all is one key
	run aistack-dedup -k '.messages[-1].content' < "$BATS_TEST_TMPDIR/in"
	assert_output "$(sed -n '1p;3p' "$BATS_TEST_TMPDIR/in")"
	run aistack-dedup -k .nothing < "$BATS_TEST_TMPDIR/in"
	assert_output "$(sed -n '1p' "$BATS_TEST_TMPDIR/in")"
}

@test "-k: values are compared canonically, objects included" {
	run aistack-dedup -k .v <<'EOF'
{"v":{"b":1,"a":"\u00e9"},"i":1}
{"v":{"a":"é","b":1.0},"i":2}
{"v":1,"i":3}
{"v":"1","i":4}
{"v":1e0,"i":5}
EOF
	assert_success
	assert_output '{"v":{"b":1,"a":"\u00e9"},"i":1}
{"v":1,"i":3}
{"v":"1","i":4}'
}

@test "--normalize trim,lower: the original learning rule" {
	cat > "$BATS_TEST_TMPDIR/in" <<'EOF'
{"prompt":"What is 2+2?","response":"Four.","id":1}
{"prompt":"  what is 2+2?\n","response":"FOUR.","id":2}
{"prompt":"What is 2+2?","response":"Four!","id":3}
{"prompt":"ÉTÉ","response":"x","id":4}
{"prompt":"été ","response":"X","id":5}
{"prompt":"what  is 2+2?","response":"four.","id":6}
EOF
	run aistack-dedup -k .prompt,.response --normalize trim,lower < "$BATS_TEST_TMPDIR/in"
	assert_success
	assert_output "$(sed -n '1p;3p;4p;6p' "$BATS_TEST_TMPDIR/in")"
	# space collapses inner runs of white space too
	run aistack-dedup -k .prompt,.response --normalize trim,lower,space < "$BATS_TEST_TMPDIR/in"
	assert_output "$(sed -n '1p;3p;4p' "$BATS_TEST_TMPDIR/in")"
	# without normalization every record is its own
	run aistack-dedup -k .prompt,.response < "$BATS_TEST_TMPDIR/in"
	assert_output "$(cat "$BATS_TEST_TMPDIR/in")"
}

@test "--stats and --dups agree with the output" {
	awk 'BEGIN { srand(11); for (i = 0; i < 3000; i++)
		printf "{\"k\":%d}\n", int(rand() * 1000) }
		END { print ""; print "  " }' /dev/null > "$BATS_TEST_TMPDIR/in"
	run aistack-dedup --stats "$BATS_TEST_TMPDIR/stats" --dups "$BATS_TEST_TMPDIR/dups" \
		< "$BATS_TEST_TMPDIR/in"
	assert_success
	printf '%s\n' "$output" > "$BATS_TEST_TMPDIR/out"
	out=$(wc -l < "$BATS_TEST_TMPDIR/out")
	dups=$(wc -l < "$BATS_TEST_TMPDIR/dups")
	assert_equal "$out" "$(grep k "$BATS_TEST_TMPDIR/in" | sort -u | wc -l)"
	assert_equal "$((out + dups))" 3000
	run jq -c . "$BATS_TEST_TMPDIR/stats"
	rate=$(awk -v d="$dups" 'BEGIN { printf "%.6g", d / 3000 }')
	assert_output "{\"seen\":3000,\"unique\":$out,\"duplicates\":$dups,\"duplicate_rate\":$rate,\"near_duplicates\":0,\"bad\":0,\"empty\":2}"
	# the duplicates are the dropped records, in order, byte for byte
	awk 'seen[$0]++' "$BATS_TEST_TMPDIR/in" | grep k | cmp - "$BATS_TEST_TMPDIR/dups"
	# output and duplicates together are the input's records
	sort "$BATS_TEST_TMPDIR/out" "$BATS_TEST_TMPDIR/dups" > "$BATS_TEST_TMPDIR/both"
	grep k "$BATS_TEST_TMPDIR/in" | sort | cmp - "$BATS_TEST_TMPDIR/both"
}

@test "--stats of an empty input; --stats to a device is written, not replaced" {
	run aistack-dedup --stats "$BATS_TEST_TMPDIR/stats" < /dev/null
	assert_success
	assert_output ''
	run cat "$BATS_TEST_TMPDIR/stats"
	assert_output '{"seen":0,"unique":0,"duplicates":0,"duplicate_rate":0,"near_duplicates":0,"bad":0,"empty":0}'
	ln -s /dev/null "$BATS_TEST_TMPDIR/link"
	run aistack-dedup --stats "$BATS_TEST_TMPDIR/link" <<< '{"a":1}'
	assert_success
	[ -L "$BATS_TEST_TMPDIR/link" ]
}

@test "-s: keys remembered across runs, saved at a clean exit" {
	printf '%s\n' '{"a":1}' '{"a":2}' '{"a":1}' > "$BATS_TEST_TMPDIR/one"
	printf '%s\n' '{"a":2}' '{"a":3}' '{ "a" : 1.0 }' '{"a":4}' > "$BATS_TEST_TMPDIR/two"
	run aistack-dedup -s learning < "$BATS_TEST_TMPDIR/one"
	assert_success
	assert_output $'{"a":1}\n{"a":2}'
	[ -f "$AISTACK_STATE_DIR/dedup/learning" ]
	run aistack-dedup -s learning --stats "$BATS_TEST_TMPDIR/stats" < "$BATS_TEST_TMPDIR/two"
	assert_success
	assert_output $'{"a":3}\n{"a":4}'
	run jq -c '[.seen, .unique, .duplicates, .state_keys]' "$BATS_TEST_TMPDIR/stats"
	assert_output '[4,2,2,4]'
	run aistack-dedup -s learning < "$BATS_TEST_TMPDIR/two"
	assert_output ''
	# a state given as a path
	run aistack-dedup -s "$BATS_TEST_TMPDIR/st/keys" < "$BATS_TEST_TMPDIR/one"
	assert_output $'{"a":1}\n{"a":2}'
	[ -f "$BATS_TEST_TMPDIR/st/keys" ]
	run aistack-dedup -s "$BATS_TEST_TMPDIR/st/keys" < "$BATS_TEST_TMPDIR/one"
	assert_output ''
	# a run that fails saves nothing
	printf '%s\n' '{"a":9}' 'oops' | aistack-dedup -s learning > /dev/null 2>&1 || true
	run aistack-dedup -s learning <<< '{"a":9}'
	assert_output '{"a":9}'
}

@test "-s: many keys across many runs" {
	for r in 1 2 3 4 5; do
		awk -v r="$r" 'BEGIN { for (i = 0; i < 4000; i++) printf "{\"k\":%d}\n", (r - 1) * 2000 + i }' |
			aistack-dedup -s many > "$BATS_TEST_TMPDIR/out$r"
	done
	cat "$BATS_TEST_TMPDIR"/out[1-5] | jq .k | sort -n > "$BATS_TEST_TMPDIR/all"
	seq 0 11999 | cmp - "$BATS_TEST_TMPDIR/all"
	assert_equal "$(wc -l < "$BATS_TEST_TMPDIR/out1")" 4000
	assert_equal "$(wc -l < "$BATS_TEST_TMPDIR/out2")" 2000
}

@test "-s: another key definition is refused; a damaged state is reported" {
	echo '{"a":1}' | aistack-dedup -s st -k .a > /dev/null
	run aistack-dedup -s st <<< '{"a":1}'
	assert_failure 64
	assert_output "aistack-dedup: st: made with another key definition (key paths .a; normalize none; near none) than this run's (key canonical; normalize none; near none)"
	run aistack-dedup -s st -k .a --normalize lower <<< '{"a":1}'
	assert_failure 64
	assert_output "aistack-dedup: st: made with another key definition (key paths .a; normalize none; near none) than this run's (key paths .a; normalize lower; near none)"
	run aistack-dedup -s st -k '.["a"]' <<< '{"a":1}'
	assert_success
	assert_output ''
	cp "$AISTACK_STATE_DIR/dedup/st" "$BATS_TEST_TMPDIR/good"
	# the header's metadata altered
	printf 'x' | dd of="$AISTACK_STATE_DIR/dedup/st" bs=1 seek=100 conv=notrunc 2>/dev/null
	run aistack-dedup -s st -k .a <<< '{"a":1}'
	assert_failure 65
	assert_output "aistack-dedup: $AISTACK_STATE_DIR/dedup/st: corrupt key set file (bad header)"
	# both slots of the header's values altered
	cp "$BATS_TEST_TMPDIR/good" "$AISTACK_STATE_DIR/dedup/st"
	printf 'x' | dd of="$AISTACK_STATE_DIR/dedup/st" bs=1 seek=3600 conv=notrunc 2>/dev/null
	printf 'x' | dd of="$AISTACK_STATE_DIR/dedup/st" bs=1 seek=3856 conv=notrunc 2>/dev/null
	run aistack-dedup -s st -k .a <<< '{"a":1}'
	assert_failure 65
	assert_output "aistack-dedup: $AISTACK_STATE_DIR/dedup/st: corrupt key set file (no valid header values)"
	# truncated (as another program could, while no run holds it)
	cp "$BATS_TEST_TMPDIR/good" "$AISTACK_STATE_DIR/dedup/st"
	truncate -s 8192 "$AISTACK_STATE_DIR/dedup/st"
	run aistack-dedup -s st -k .a <<< '{"a":1}'
	assert_failure 65
	assert_output "aistack-dedup: $AISTACK_STATE_DIR/dedup/st: corrupt key set file (8192 bytes where its header says 20480)"
	# the good copy still answers
	cp "$BATS_TEST_TMPDIR/good" "$AISTACK_STATE_DIR/dedup/st"
	run aistack-dedup -s st -k .a <<< $'{"a":1}\n{"a":2}'
	assert_success
	assert_output '{"a":2}'
	run aistack-dedup -s 'Bad Name' <<< '{"a":1}'
	assert_failure 64
}

@test "-s: metrics textfile with records by result" {
	printf '%s\n' '{"a":1}' '{"a":1}' '{"a":2}' 'bad' |
		aistack-dedup -s m --on-bad dups > /dev/null 2>&1
	run grep -v '^#' "$AISTACK_STATE_DIR/metrics/dedup-m.prom"
	assert_output --regexp '^aistack_dedup_last_run_records\{state="m",result="unique"\} 2
aistack_dedup_last_run_records\{state="m",result="duplicate"\} 1
aistack_dedup_last_run_records\{state="m",result="near_duplicate"\} 0
aistack_dedup_last_run_records\{state="m",result="bad"\} 1
aistack_dedup_last_success_timestamp_seconds\{state="m"\} [0-9]{10}$'
	grep -qx '# TYPE aistack_dedup_last_run_records gauge' "$AISTACK_STATE_DIR/metrics/dedup-m.prom"
}

@test "-a: records already in the sink stream, or earlier in the input, are dropped" {
	printf '%s\n' '{"id":1}' '{"id":2}' | put_stream dataset
	run aistack-dedup -a dataset <<'EOF'
{"id":2}
{"id":3}
{ "id" : 1 }
{"id":3}
{"id":4}
EOF
	assert_success
	assert_output $'{"id":3}\n{"id":4}'
	[ -f "$AISTACK_STATE_DIR/dedup/_stream.dataset" ]
	# a sink that does not exist yet holds nothing
	run aistack-dedup -a newsink <<< '{"id":1}'
	assert_output '{"id":1}'
}

@test "-a: a retried batch passes on exactly what did not reach the sink" {
	seq 1 10 | sed 's/.*/{"n":&}/' > "$BATS_TEST_TMPDIR/batch"
	# the sink step dies after four records
	aistack-dedup -a ds -k .n < "$BATS_TEST_TMPDIR/batch" | head -n 4 | aistack-ingest ds
	assert_equal "$(stream_bytes ds | wc -l)" 4
	# the retry, and a second retry after a complete run
	aistack-dedup -a ds -k .n < "$BATS_TEST_TMPDIR/batch" | aistack-ingest ds
	aistack-dedup -a ds -k .n < "$BATS_TEST_TMPDIR/batch" | aistack-ingest ds
	run stream_bytes ds
	assert_output "$(cat "$BATS_TEST_TMPDIR/batch")"
}

@test "-a: the index catches up incrementally and is rebuilt when missing or made otherwise" {
	printf '%s\n' '{"id":1}' '{"id":2}' | put_stream ds
	run aistack-dedup -v -a ds --stats "$BATS_TEST_TMPDIR/s" < /dev/null
	assert_success
	assert_equal "$(jq -c '[.caught_up, .index_offset, .state_keys]' "$BATS_TEST_TMPDIR/s")" '[2,18,2]'
	printf '%s\n' '{"id":3}' '{"id":1}' >> "$(seg0 ds)"
	# only what was appended since is read
	run aistack-dedup -a ds --stats "$BATS_TEST_TMPDIR/s" <<< '{"id":3}'
	assert_output ''
	assert_equal "$(jq -c '[.caught_up, .index_offset, .state_keys]' "$BATS_TEST_TMPDIR/s")" '[2,36,3]'
	# deleted: rebuilt from the whole stream, same answers
	rm -f "$AISTACK_STATE_DIR/dedup/_stream.ds" "$AISTACK_STATE_DIR/dedup/._stream.ds.journal"
	run aistack-dedup -a ds --stats "$BATS_TEST_TMPDIR/s" <<< $'{"id":3}\n{"id":5}'
	assert_output '{"id":5}'
	assert_equal "$(jq -c '[.caught_up, .index_offset, .state_keys]' "$BATS_TEST_TMPDIR/s")" '[4,36,3]'
	# another key definition: rebuilt for it
	run aistack-dedup -v -a ds -k .id --stats "$BATS_TEST_TMPDIR/s" <<< '{"id":2,"x":1}'
	assert_output --partial 'ds: index made with another key definition or stream; rebuilding'
	refute_output --partial '{"id":2,"x":1}'
	assert_equal "$(jq -c '[.caught_up, .index_offset]' "$BATS_TEST_TMPDIR/s")" '[4,36]'
	# damaged: a warning, and rebuilt
	printf 'xxxx' | dd of="$AISTACK_STATE_DIR/dedup/_stream.ds" bs=1 seek=20 conv=notrunc 2>/dev/null
	run aistack-dedup -a ds -k .id <<< $'{"id":2}\n{"id":6}'
	assert_success
	assert_output "aistack-dedup: $AISTACK_STATE_DIR/dedup/_stream.ds: corrupt key set file (bad header); rebuilding the index
{\"id\":6}"
	# truncated: the same
	truncate -s 4100 "$AISTACK_STATE_DIR/dedup/_stream.ds"
	run aistack-dedup -a ds -k .id <<< $'{"id":2}\n{"id":7}'
	assert_success
	assert_output "aistack-dedup: $AISTACK_STATE_DIR/dedup/_stream.ds: corrupt key set file (4100 bytes where its header says 20480); rebuilding the index
{\"id\":7}"
	# garbage for a file: the same
	head -c 30000 /dev/urandom > "$AISTACK_STATE_DIR/dedup/_stream.ds"
	run aistack-dedup -a ds -k .id <<< $'{"id":2}\n{"id":8}'
	assert_success
	assert_output "aistack-dedup: $AISTACK_STATE_DIR/dedup/_stream.ds: not a key set file; rebuilding the index
{\"id\":8}"
	# the stream made anew (shorter than the index covers): rebuilt
	rm -r "$STREAMS/ds"
	printf '%s\n' '{"id":9}' | put_stream ds
	run aistack-dedup -a ds -k .id <<< $'{"id":1}\n{"id":9}'
	assert_output '{"id":1}'
}

@test "-a: a stream given as a path, and expired segments" {
	mkdir -p "$BATS_TEST_TMPDIR/s1"
	printf '%s\n' '{"id":"old"}' > "$BATS_TEST_TMPDIR/s1/00000000000000000000.jsonl"
	printf '%s\n' '{"id":"new"}' > "$BATS_TEST_TMPDIR/s1/00000000000000000013.jsonl"
	run aistack-dedup -a "$BATS_TEST_TMPDIR/s1" <<< $'{"id":"old"}\n{"id":"new"}\n{"id":"x"}'
	assert_output '{"id":"x"}'
	ls "$AISTACK_STATE_DIR"/dedup/_path.* > /dev/null
	# the first segment expires: its keys stay known to the index...
	rm "$BATS_TEST_TMPDIR/s1/00000000000000000000.jsonl"
	printf '%s\n' '{"id":"newer"}' >> "$BATS_TEST_TMPDIR/s1/00000000000000000013.jsonl"
	run aistack-dedup -a "$BATS_TEST_TMPDIR/s1" <<< $'{"id":"old"}\n{"id":"newer"}'
	assert_output ''
	# ...and a rebuild reads from the first segment still there
	rm "$AISTACK_STATE_DIR"/dedup/_path.*
	run aistack-dedup -a "$BATS_TEST_TMPDIR/s1" <<< $'{"id":"old"}\n{"id":"newer"}'
	assert_output '{"id":"old"}'
}

@test "-a: concurrent runs against one index wait for each other" {
	printf '%s\n' '{"id":1}' | put_stream ds
	mkfifo "$BATS_TEST_TMPDIR/fifo"
	aistack-dedup -a ds < "$BATS_TEST_TMPDIR/fifo" > "$BATS_TEST_TMPDIR/first" &
	first=$!
	exec 7> "$BATS_TEST_TMPDIR/fifo"	# the first run holds the index now
	for i in $(seq 1 100); do
		[ -e "$AISTACK_STATE_DIR/dedup/_stream.ds" ] && break
		sleep 0.1
	done
	aistack-dedup -v -a ds <<< '{"id":2}' > "$BATS_TEST_TMPDIR/second" 2> "$BATS_TEST_TMPDIR/err" 7>&- &
	second=$!
	for i in $(seq 1 100); do
		grep -q waiting "$BATS_TEST_TMPDIR/err" && break
		sleep 0.1
	done
	run cat "$BATS_TEST_TMPDIR/err"
	assert_output 'aistack-dedup: ds: in use by another run, waiting'
	echo '{"id":3}' >&7
	exec 7>&-
	wait "$first"
	wait "$second"
	assert_equal "$(cat "$BATS_TEST_TMPDIR/first")" '{"id":3}'
	assert_equal "$(cat "$BATS_TEST_TMPDIR/second")" '{"id":2}'
}

@test "-a: the index truncated under a run is SIGBUS, exit 74 with nothing passed on; the next run rebuilds it" {
	printf '%s\n' '{"id":1}' '{"id":2}' '{"id":3}' | put_stream ds
	aistack-dedup -a ds -k .id < /dev/null
	mkfifo "$BATS_TEST_TMPDIR/fifo"
	aistack-dedup -v -a ds -k .id < "$BATS_TEST_TMPDIR/fifo" \
	    > "$BATS_TEST_TMPDIR/out" 2> "$BATS_TEST_TMPDIR/err" &
	pid=$!
	exec 7> "$BATS_TEST_TMPDIR/fifo"
	for _ in $(seq 1 300); do	# the index is open and mapped
		grep -q 'index holds' "$BATS_TEST_TMPDIR/err" && break
		sleep 0.1
	done
	grep -q 'index holds' "$BATS_TEST_TMPDIR/err"
	truncate -s 0 "$AISTACK_STATE_DIR/dedup/_stream.ds"
	printf '%s\n' '{"id":2}' '{"id":4}' >&7
	exec 7>&-
	status=0
	wait "$pid" || status=$?
	assert_equal "$status" 74
	run cat "$BATS_TEST_TMPDIR/err"
	assert_line "aistack-dedup: $AISTACK_STATE_DIR/dedup/_stream.ds: the key set file changed size while in use (SIGBUS); nothing of this run was saved"
	assert_equal "$(cat "$BATS_TEST_TMPDIR/out")" ''
	# the retry: a warning, the index rebuilt, the same answer as ever
	run aistack-dedup -a ds -k .id <<< $'{"id":2}\n{"id":4}'
	assert_success
	assert_output "aistack-dedup: $AISTACK_STATE_DIR/dedup/_stream.ds: not a key set file; rebuilding the index
{\"id\":4}"
}

# chaos_events N SEED: records with about 30% duplicates written another
# way (members reordered, spaced, numbers and escapes spelled otherwise).
chaos_events() {
	python3 - "$1" "$2" <<'PY'
import json, random, sys
n, seed = int(sys.argv[1]), int(sys.argv[2])
r = random.Random(seed)
made = []
for i in range(n):
    if made and r.random() < 0.3:
        d = dict(r.choice(made))
        items = list(d.items())
        r.shuffle(items)
        s = json.dumps(dict(items), ensure_ascii=r.random() < 0.5,
                       separators=r.choice([(",", ":"), (", ", ": ")]))
        s = s.replace('"w": 2', '"w": 2.0').replace('"w":2', '"w":20e-1')
        print(s)
    else:
        d = {"q": "question %d-%d \u00e9" % (seed, i), "w": 2, "i": i % 7}
        made.append(d)
        print(json.dumps(d, ensure_ascii=False, separators=(",", ":")))
PY
}

@test "-a under aistack-checkpoint run: a failing sink and kill -9 of the runner, every unique key exactly once" {
	chaos_events 1200 1 > "$BATS_TEST_TMPDIR/in"
	aistack-ingest events "$BATS_TEST_TMPDIR/in"
	# the sink step dies one batch in four after passing on a few records
	pipeline='aistack-dedup -a dataset -k .q,.i | {
		if [ $((RANDOM % 4)) -eq 0 ]; then head -n $((RANDOM % 25)); cat > /dev/null; exit 1; fi
		cat; } | aistack-ingest dataset'
	for round in $(seq 1 24); do
		setsid aistack-checkpoint run -n 40 learn events -- \
			bash -o pipefail -c "$pipeline" 2>/dev/null &
		pid=$!
		sleep "0.$((RANDOM % 25))"
		if [ $((round % 2)) -eq 0 ]; then
			kill -9 -- -"$pid" 2>/dev/null || true	# the runner and its batch
		else
			kill -9 "$pid" 2>/dev/null || true	# the runner only
		fi
		wait "$pid" 2>/dev/null || true
	done
	for attempt in $(seq 1 200); do
		if aistack-checkpoint run -n 40 learn events -- \
			bash -o pipefail -c "$pipeline" 2>/dev/null; then
			lag=$(aistack-checkpoint status --json events |
				jq '.consumers[] | select(.consumer == "learn") | .lag')
			[ "$lag" = 0 ] && break
		fi
	done
	assert_equal "$lag" 0
	jq -cS . "$BATS_TEST_TMPDIR/in" | sed 's/"w":2\.0/"w":2/' | sort -u > "$BATS_TEST_TMPDIR/expected"
	stream_bytes dataset | jq -cS . | sed 's/"w":2\.0/"w":2/' | sort > "$BATS_TEST_TMPDIR/got"
	[ -z "$(uniq -d "$BATS_TEST_TMPDIR/got")" ]
	diff -u "$BATS_TEST_TMPDIR/expected" "$BATS_TEST_TMPDIR/got"
	# one record per key, and the records are inputs byte for byte
	[ -z "$(stream_bytes dataset | jq -c '[.q, .i]' | sort | uniq -d)" ]
	stream_bytes dataset | sort -u | comm -23 - <(sort -u "$BATS_TEST_TMPDIR/in") > "$BATS_TEST_TMPDIR/foreign"
	[ ! -s "$BATS_TEST_TMPDIR/foreign" ]
}

@test "--near drops a one-word edit of a long text and keeps a different text" {
	python3 - > "$BATS_TEST_TMPDIR/in" <<'PY'
import json, random
r = random.Random(5)
words = ["w%d" % i for i in range(400)]
a = [r.choice(words) for _ in range(120)]
edit = list(a); edit[60] = "changed"
other = [r.choice(words) for _ in range(120)]
for i, t in enumerate([a, edit, other, a[:40]]):
    print(json.dumps({"id": i, "text": " ".join(t)}))
PY
	run aistack-dedup -k .text --near 0.8 --stats "$BATS_TEST_TMPDIR/stats" --dups "$BATS_TEST_TMPDIR/dups" \
		< "$BATS_TEST_TMPDIR/in"
	assert_success
	assert_output "$(sed -n '1p;3p;4p' "$BATS_TEST_TMPDIR/in")"
	assert_equal "$(jq -c .id "$BATS_TEST_TMPDIR/dups")" 1
	assert_equal "$(jq -c '[.duplicates, .near_duplicates]' "$BATS_TEST_TMPDIR/stats")" '[1,1]'
	# without --near, all four are kept
	run aistack-dedup -k .text < "$BATS_TEST_TMPDIR/in"
	assert_output "$(cat "$BATS_TEST_TMPDIR/in")"
	# with a state, across runs; with -a, against the sink
	sed -n 1p "$BATS_TEST_TMPDIR/in" | aistack-dedup -s nearly -k .text --near 0.8 > /dev/null
	run aistack-dedup -s nearly -k .text --near 0.8 < <(sed -n 2p "$BATS_TEST_TMPDIR/in")
	assert_output ''
	sed -n 1p "$BATS_TEST_TMPDIR/in" | put_stream ds
	run aistack-dedup -a ds -k .text --near 0.8 < <(sed -n '2,3p' "$BATS_TEST_TMPDIR/in")
	assert_output "$(sed -n 3p "$BATS_TEST_TMPDIR/in")"
}

@test "--near with -s: the signatures' band table is a mapped file, added to by later runs, made anew when unfit" {
	python3 - 3> "$BATS_TEST_TMPDIR/edits" > "$BATS_TEST_TMPDIR/in" <<'PY'
import json, random
r = random.Random(6)
words = ["w%d" % i for i in range(400)]
with open("/dev/fd/3", "w") as e:
    for i in range(40):
        a = [r.choice(words) for _ in range(60)]
        edit = list(a); edit[30] = "changed"
        print(json.dumps({"id": i, "text": " ".join(a)}))
        print(json.dumps({"id": i, "text": " ".join(edit), "edit": 1}), file=e)
PY
	d=$AISTACK_STATE_DIR/dedup
	head -n 20 "$BATS_TEST_TMPDIR/in" | aistack-dedup -s nearly -k .text --near 0.8 > /dev/null
	# the first run with signatures to read makes the band table...
	run aistack-dedup -s nearly -k .text --near 0.8 < <(sed -n '21,40p' "$BATS_TEST_TMPDIR/in")
	assert_output "$(sed -n '21,40p' "$BATS_TEST_TMPDIR/in")"
	[ -s "$d/.nearly.bands" ]
	ino=$(stat -c %i "$d/.nearly.bands")
	# ...which later runs add to, not make again, and whose answers are
	# those of every earlier run's records
	run aistack-dedup -s nearly -k .text --near 0.8 < "$BATS_TEST_TMPDIR/edits"
	assert_success
	assert_output ''
	assert_equal "$(stat -c %i "$d/.nearly.bands")" "$ino"
	# another threshold (another band count), damage, a missing table:
	# made anew, the same answers
	run aistack-dedup -s nearly -k .text --near 0.5 < "$BATS_TEST_TMPDIR/edits"
	assert_output ''
	[ "$(stat -c %i "$d/.nearly.bands")" != "$ino" ]
	printf 'xxxx' | dd of="$d/.nearly.bands" bs=1 seek=20 conv=notrunc 2>/dev/null
	run aistack-dedup -s nearly -k .text --near 0.8 < "$BATS_TEST_TMPDIR/edits"
	assert_output ''
	rm "$d/.nearly.bands"
	run aistack-dedup -s nearly -k .text --near 0.8 < "$BATS_TEST_TMPDIR/edits"
	assert_output ''
}

@test "bad input: exit 65 naming the line, after the records before it" {
	run aistack-dedup <<'EOF'
{"a":1}
{"a":1}
{"a":2}
not json
{"a":3}
EOF
	assert_failure 65
	assert_output '{"a":1}
{"a":2}
aistack-dedup: stdin:4: invalid JSON: unexpected '"'"'o'"'"' at byte 1'
	run aistack-dedup -k .a <<< '[1,2]'
	assert_failure 65
	assert_output 'aistack-dedup: stdin:1: not a JSON object'
}

@test "bad input: --on-bad dups sets it aside, --on-bad pass keeps it, both with a warning" {
	printf '%s\n' '{"a":1}' 'bad' '{"a":1}' '[1]' > "$BATS_TEST_TMPDIR/in"
	run --separate-stderr aistack-dedup --on-bad dups --dups "$BATS_TEST_TMPDIR/dups" \
		--stats "$BATS_TEST_TMPDIR/stats" < "$BATS_TEST_TMPDIR/in"
	assert_success
	assert_output '{"a":1}'
	assert_equal "$stderr" "aistack-dedup: stdin:2: invalid JSON: unexpected 'b' at byte 0 (set aside in the duplicates)
aistack-dedup: stdin:4: not a JSON object (set aside in the duplicates)"
	assert_equal "$(cat "$BATS_TEST_TMPDIR/dups")" $'bad\n{"a":1}\n[1]'
	assert_equal "$(jq -c '[.seen, .unique, .duplicates, .bad]' "$BATS_TEST_TMPDIR/stats")" '[2,1,1,2]'
	# without --dups the warning is all that is left of the line
	run --separate-stderr aistack-dedup --on-bad dups < "$BATS_TEST_TMPDIR/in"
	assert_output '{"a":1}'
	assert_equal "${stderr_lines[0]}" "aistack-dedup: stdin:2: invalid JSON: unexpected 'b' at byte 0 (set aside)"
	run --separate-stderr aistack-dedup --on-bad pass < "$BATS_TEST_TMPDIR/in"
	assert_success
	assert_output $'{"a":1}\nbad\n[1]'
	assert_equal "$stderr" "aistack-dedup: stdin:2: invalid JSON: unexpected 'b' at byte 0 (passed on)
aistack-dedup: stdin:4: not a JSON object (passed on)"
}

@test "hostile input: invalid UTF-8, NUL bytes, deep nesting, huge numbers, long lines" {
	{
		printf '{"s":"\xff"}\n'
		printf '{"s":"a\0b"}\n'
		python3 -c 'print("{\"a\":" + "[" * 3000 + "]" * 3000 + "}")'
		printf '{"s":"\\ud800"}\n'
		printf '{"a":1}{"b":2}\n'
	} > "$BATS_TEST_TMPDIR/bad"
	run aistack-dedup --on-bad dups --dups "$BATS_TEST_TMPDIR/dups" < "$BATS_TEST_TMPDIR/bad"
	assert_success
	assert_line --index 0 'aistack-dedup: stdin:1: invalid UTF-8 at byte 6 (set aside in the duplicates)'
	assert_line --index 1 'aistack-dedup: stdin:2: NUL byte in a string at byte 7 (set aside in the duplicates)'
	assert_line --index 2 'aistack-dedup: stdin:3: nested deeper than 2048 at byte 2052 (set aside in the duplicates)'
	assert_line --index 3 'aistack-dedup: stdin:4: invalid JSON: unpaired surrogate escape at byte 6 (set aside in the duplicates)'
	assert_line --index 4 'aistack-dedup: stdin:5: trailing data after the object at byte 7 (set aside in the duplicates)'
	cmp "$BATS_TEST_TMPDIR/bad" "$BATS_TEST_TMPDIR/dups"
	# valid but unusual records
	{
		printf '{"n":1e999999999999999999999}\n'
		printf '{"n":10e999999999999999999998}\n'
		printf '{"n":-0.0e-99999999999999999999}\n'
		printf '{"n":0}\n'
		printf '{"s":"\\u0000"}\n'
		printf '{"s":""}\n'
		python3 -c 'print("{\"a\":" + "[" * 2040 + "]" * 2040 + "}")'
		python3 -c 'print("{\"a\":" + "[" * 2040 + "]" * 2040 + "}")'
		python3 -c 'import json; print(json.dumps({"k%d" % i: i for i in range(20000, 0, -1)}))'
		python3 -c 'import json; print(json.dumps({"k%d" % i: i for i in range(1, 20001)}))'
		python3 -c 'print("{\"big\":\"" + "x" * 3000000 + "\"}")'
		python3 -c 'print("{ \"big\" : \"" + "x" * 3000000 + "\" }")'
	} > "$BATS_TEST_TMPDIR/odd"
	run aistack-dedup --stats "$BATS_TEST_TMPDIR/stats" < "$BATS_TEST_TMPDIR/odd"
	assert_success
	assert_equal "$(jq -c '[.seen, .unique]' "$BATS_TEST_TMPDIR/stats")" '[12,7]'
	printf '%s\n' "$output" | cut -c 1-40 > "$BATS_TEST_TMPDIR/kept"
	sed -n '1p;3p;5p;6p;7p;9p;11p' "$BATS_TEST_TMPDIR/odd" | cut -c 1-40 | cmp - "$BATS_TEST_TMPDIR/kept"
}

@test "output errors: a full device is exit 74, an unwritable --dups is exit 73" {
	run bash -c 'aistack-dedup <<< "{\"a\":1}" > /dev/full'
	assert_failure 74
	assert_output 'aistack-dedup: standard output: No space left on device'
	run aistack-dedup --dups "$BATS_TEST_TMPDIR/no/such/dir" <<< '{"a":1}'
	assert_failure 73
	assert_output "aistack-dedup: $BATS_TEST_TMPDIR/no/such/dir: No such file or directory"
}

@test "command line: usage errors are exit 64, --help and --version" {
	run aistack-dedup -s a -a b
	assert_failure 64
	assert_line --index 0 'aistack-dedup: -s and -a cannot be used together'
	run aistack-dedup --exact -k .a
	assert_failure 64
	assert_line --index 0 'aistack-dedup: --exact cannot be used with -k or --normalize'
	run aistack-dedup --exact --normalize trim
	assert_failure 64
	run aistack-dedup -k '.a['
	assert_failure 64
	assert_line --index 0 'aistack-dedup: -k: .a[: expected an index or a string at character 4'
	run aistack-dedup --normalize upper
	assert_failure 64
	assert_line --index 0 'aistack-dedup: --normalize: invalid list "upper" (expected trim, lower, space)'
	for t in 0 1.5 -1 x 0.5x ''; do
		run aistack-dedup --near "$t"
		assert_failure 64
	done
	run aistack-dedup --on-bad skip
	assert_failure 64
	run aistack-dedup extra-operand
	assert_failure 64
	assert_line --index 0 'aistack-dedup: unexpected operand "extra-operand"'
	run aistack-dedup --no-such-option
	assert_failure 64
	run aistack-dedup --help
	assert_success
	assert_line --index 0 --partial 'usage: aistack-dedup [-v] [-k PATH[,PATH...]]'
	run aistack-dedup --version
	assert_success
	assert_output --regexp '^aistack-dedup [0-9]+\.[0-9]+\.[0-9]+$'
}

# --- linear time and the exact depth limit ----------------------------------

# The worst cases of issue #17: one record holding a million escapes (a
# quadratic reader took 2 s for a quarter of that and 477 s for twice it).
# Each run is limited to 20 s of CPU (ulimit -t): a quadratic key would
# be killed, a linear one takes a fraction of a second.
@test "escape-heavy records: every key, -k off or on the string, --normalize and --near, in bounded CPU time" {
	local kind def
	for kind in e9 emoji nl utf8 cjk mixed; do
		gen-escapes "$kind" 1048576 > "$BATS_TEST_TMPDIR/in"
		for def in "" "-k .meta" "-k .text" "--normalize trim,lower,space" \
		    "-k .text --normalize lower" "--near 0.9" "-k .meta,.text --near 0.9"; do
			# the two spellings of the record are one key
			# shellcheck disable=SC2086 # the definition is words
			run bash -c 'ulimit -t 20; aistack-dedup "$@" < "$0" | wc -l' \
				"$BATS_TEST_TMPDIR/in" $def
			assert_success
			[ "$output" = 1 ] || fail "$kind [$def]: $output"
		done
	done
}

# generated spellings of the same interactions, against the reference
# (tests/bin/dedup-key-ref, written from the man page): the same records kept
@test "keys agree with an independent reference on random escape mixes, under every definition" {
	local def seed
	for seed in 1 2 3; do
		gen-key-variants -n 200 --seed "$seed" --ways 4 > "$BATS_TEST_TMPDIR/in"
		# the quotes of a path are the path's own: literal, as meant
		# shellcheck disable=SC2089,SC2090
		for def in "" "--normalize trim,lower,space" "-k .prompt,.response" \
		    "-k .prompt,.params.temperature --normalize lower" "-k .response --normalize space,trim" \
		    '-k ."prompt",.missing,.params["temperature"]'; do
			# shellcheck disable=SC2086,SC2090 # the definition is words
			aistack-dedup $def < "$BATS_TEST_TMPDIR/in" | jq -r .n > "$BATS_TEST_TMPDIR/ours"
			# shellcheck disable=SC2086,SC2090
			paste -d' ' <(dedup-key-ref $def < "$BATS_TEST_TMPDIR/in") <(jq -r .n "$BATS_TEST_TMPDIR/in") |
				awk '!seen[$1]++ { print $2 }' > "$BATS_TEST_TMPDIR/ref"
			diff -u "$BATS_TEST_TMPDIR/ref" "$BATS_TEST_TMPDIR/ours" || fail "seed $seed [$def]"
		done
	done
}

@test "the depth limit is exact: 2048 nested containers with any innermost value are keys, 2049 are refused" {
	local n shape inner
	for n in 2047 2048 2049; do
		for shape in a o; do
			for inner in "" 1 '"x"'; do
				# the record twice, once with white space: one key
				{ gen-nested $n $shape "$inner"; gen-nested $n $shape "$inner" | sed 's/:/ : /g; s/,/, /g'; } > "$BATS_TEST_TMPDIR/in"
				run --separate-stderr aistack-dedup --on-bad dups --dups "$BATS_TEST_TMPDIR/dups" < "$BATS_TEST_TMPDIR/in"
				assert_success
				if [ $n -le 2048 ]; then
					assert_equal "$(printf '%s\n' "$output" | wc -l)" 1
					assert_equal "$stderr" ""
					cmp <(head -n 1 "$BATS_TEST_TMPDIR/in") <(printf '%s\n' "$output")
				else
					assert_output ""
					assert_equal "$(printf '%s\n' "$stderr" | head -n 1)" "aistack-dedup: stdin:1: nested deeper than 2048 at byte $([ $shape = a ] && echo 2052 || echo 10240) (set aside in the duplicates)"
				fi
			done
		done
	done
	# a key path down to the innermost value of 2048 containers
	gen-nested 2048 a 7 > "$BATS_TEST_TMPDIR/in"
	gen-nested 2048 a 8 >> "$BATS_TEST_TMPDIR/in"
	path=.k$(printf '[0]%.0s' $(seq 1 2046))
	run aistack-dedup -k "$path" < "$BATS_TEST_TMPDIR/in"
	assert_success
	assert_equal "$(printf '%s\n' "$output" | wc -l)" 2
	run aistack-dedup -k "${path}[0]" < "$BATS_TEST_TMPDIR/in"
	assert_equal "$(printf '%s\n' "$output" | wc -l)" 2
	run aistack-dedup -k "${path}[1]" < "$BATS_TEST_TMPDIR/in"
	assert_equal "$(printf '%s\n' "$output" | wc -l)" 1
}
