#!/usr/bin/env bats
# The truth about aistack itself: counters kept by the state add up under
# concurrent writers, across a hundred runs and under kill -9; paused is
# live; the backlog is live; every metrics file is valid Prometheus text;
# the shipped alert rules pass their promtool tests; every metric is
# documented.

load test_helper
load proxy_helper

TOP=$(cd "$BATS_TEST_DIRNAME/.." && pwd)

teardown() {
	stop_proxy
}

# records STREAM: the records in a stream, every segment.
records() {
	stream_bytes "$1" | wc -l
}

# counter STREAM KEY: a counter from aistack-checkpoint status --json.
counter() {
	aistack-checkpoint status --json "$1" | jq -r ".$2"
}

# counted STREAM KEY: the same, 0 when the stream or its counters are
# not there yet (nothing was ever counted).
counted() {
	if [ -d "$STREAMS/$1" ]; then
		counter "$1" "$2" | sed 's/^null$/0/'
	else
		echo 0
	fi
}

# prom FILE SERIES: the value of a sample in a metrics file.
prom() {
	awk -v k="$2" '$1 == k { print $2 }' "$AISTACK_STATE_DIR/metrics/$1"
}

@test "the alert rules are valid and their unit tests pass" {
	run promtool check rules "$TOP/prometheus/aistack.rules.yml"
	assert_success
	assert_output --partial 'SUCCESS: 10 rules found'
	cd "$TOP/prometheus"
	run promtool test rules aistack.rules.test.yml
	assert_success
	assert_output --partial SUCCESS
	# every alert of the file has a test that expects it to fire
	for a in $(sed -n 's/^ *- alert: //p' aistack.rules.yml); do
		grep -q "alertname: $a\$" aistack.rules.test.yml
		[ "$(grep -c "alertname: $a\$" aistack.rules.test.yml)" -ge 2 ]
	done
}

@test "every metric of lib/base/metricnames.h is in aistack(7), and the rules use only those" {
	names=$(sed -n 's/^#define MN_[A-Z_]*[[:space:]]*"\(aistack_[a-z_]*\)"$/\1/p; s/^[[:space:]]*"\(aistack_[a-z_]*\)"$/\1/p' \
		"$TOP/lib/base/metricnames.h")
	[ "$(wc -l <<< "$names")" -ge 40 ]
	missing=
	for n in $names; do
		grep -qE "Li $n( |$)" "$TOP/man/aistack.7" || missing="$missing $n"
	done
	assert_equal "$missing" ""
	for n in $(grep -o 'aistack_[a-z_]*' "$TOP/prometheus/aistack.rules.yml" | sort -u); do
		grep -qx "$n" <<< "$names"
	done
}

@test "4 concurrent producers x 25 runs: the counters equal the stream, exactly" {
	for p in 1 2 3 4; do
		(
			for i in $(seq 25); do
				{ gen_records $((i % 7 + 1)) "p$p.$i."; printf 'bad %s\n\n' "$i"; } |
					aistack-ingest t || exit 1
			done
		) &
	done
	wait
	want=0
	for i in $(seq 25); do want=$((want + 4 * (i % 7 + 1))); done
	assert_equal "$(records t)" "$want"
	assert_equal "$(counter t records)" "$(records t)"
	assert_equal "$(counter t bytes)" "$(stream_bytes t | wc -c)"
	assert_equal "$(counter t rejected)" 100
	assert_equal "$(counter t empty)" 100
	assert_equal "$(counter t rejected)" "$(records t.rejects)"
	assert_equal "$(counter t.rejects records)" 100
	# the textfile, written under the lock, says the same after the last run
	assert_equal "$(prom ingest-t.prom 'aistack_ingest_records_total{stream="t",result="appended"}')" "$(records t)"
	assert_equal "$(prom ingest-t.prom 'aistack_ingest_records_total{stream="t",result="rejected"}')" 100
}

@test "2 concurrent dedup loops x 25 runs against one state: its counters equal what went through, exactly" {
	# run i of loop p: keys k1..k(i % 5 + 3), each twice, then p.i once;
	# k* repeat across runs, p.i never
	for p in 1 2; do
		(
			for i in $(seq 25); do
				for k in $(seq $((i % 5 + 3))); do
					printf '{"k":%d}\n{"k":%d}\n' "$k" "$k"
				done | { cat; printf '{"u":"%s.%s"}\n' "$p" "$i"; } |
					aistack-dedup -s st > /dev/null || exit 1
			done
		) &
	done
	wait
	seen=0
	for i in $(seq 25); do seen=$((seen + 2 * (2 * (i % 5 + 3) + 1))); done
	unique=$((7 + 50))
	proxy_start
	run curl -s "$URL/api/stats"
	assert_success
	assert_equal "$(jq -c '.dedup[] | select(.name == "st") | [.seen, .unique, .duplicates]' <<< "$output")" "[$seen,$unique,$((seen - unique))]"
	run curl -s "$URL/metrics"
	assert_line "aistack_dedup_records_total{state=\"st\",kind=\"state\",result=\"unique\"} $unique"
	assert_line "aistack_dedup_records_total{state=\"st\",kind=\"state\",result=\"duplicate\"} $((seen - unique))"
}

@test "counters never go down across a hundred runs, rotations and failures among them" {
	last_rec=0 last_rej=0 last_prom=0 last_bytes=0
	for i in $(seq 100); do
		case $((i % 10)) in
		3) aistack-rotate --seal-size 0 t > /dev/null ;;
		5) aistack-ingest --max-backlog 1 --on-full fail t <<< '{"x":1}' 2> /dev/null || true ;;
		7) printf 'junk\n{"i":%d}\n' "$i" | aistack-ingest t ;;
		*) gen_records 3 "r$i." | aistack-ingest t ;;
		esac
		[ "$i" -eq 40 ] && set_consumer t slow 0
		[ "$i" -eq 60 ] && rm "$STREAMS/t/consumers/slow"
		rec=$(counter t records) rej=$(counter t rejected) bytes=$(counter t bytes)
		p=$(prom ingest-t.prom 'aistack_ingest_records_total{stream="t",result="appended"}')
		[ "$rec" -ge "$last_rec" ] && [ "$rej" -ge "$last_rej" ] &&
			[ "$bytes" -ge "$last_bytes" ] && [ "${p:-0}" -ge "$last_prom" ] ||
			fail "run $i: a counter went down: records $last_rec -> $rec, rejected $last_rej -> $rej, bytes $last_bytes -> $bytes, textfile $last_prom -> $p"
		last_rec=$rec last_rej=$rej last_prom=${p:-0} last_bytes=$bytes
	done
	assert_equal "$last_rec" "$(records t)"
	assert_equal "$last_rej" "$(records t.rejects)"
	[ "$(ls "$STREAMS"/t/*.jsonl* | wc -l)" -gt 5 ]
}

# feed N: N chunks of 20 records, one blank and one bad line each, a little
# apart, so that an ingest reading them appends many small batches.
feed() {
	local i
	for ((i = 0; i < $1; i++)); do
		gen_records 20 "k$RANDOM.$i."
		printf '\nbad line %d\n' "$i"
		sleep 0.01
	done
}

@test "the crash rule: after kill -9 at random points the counters lag, never lead; the next writer makes them exact" {
	local lagged=0 sync
	for round in $(seq 24); do
		# --sync always holds the lock across many writes: kills land
		# between a write and the counters' save most of the time
		sync=none
		[ $((round % 2)) -eq 1 ] && sync=always
		feed 40 | aistack-ingest --sync "$sync" t &
		pid=$!
		sleep "0.0$((RANDOM % 10))$((RANDOM % 10))"
		kill -KILL "$pid" 2> /dev/null || true
		wait "$pid" 2> /dev/null || true
		have=$(records t) rej=$(records t.rejects)
		rec=$(counted t records)
		[ "$rec" -le "$have" ] || fail "round $round: counted $rec records, the stream has $have"
		[ "$rec" -lt "$have" ] && lagged=$((lagged + 1))
		[ "$(counted t rejected)" -le "$rej" ] ||
			fail "round $round: more rejects counted than landed"
		[ "$(counted t.rejects records)" -le "$rej" ] ||
			fail "round $round: more reject records counted than landed"
		# any writer's next lock counts what the killed one left
		aistack-ingest t < /dev/null
		aistack-ingest t.rejects < /dev/null
		assert_equal "$(counter t records)" "$(records t)"
		assert_equal "$(counter t bytes)" "$(stream_bytes t | wc -c)"
		assert_equal "$(counter t.rejects records)" "$(records t.rejects)"
	done
	# the rounds did append and reject, and kills did leave records
	# uncounted for the next writer to count
	[ "$(records t)" -gt 0 ] && [ "$(records t.rejects)" -gt 0 ]
	[ "$lagged" -ge 1 ]
}

@test "kill -9 of an ingest while it is paused: not paused at once, in status and the read model" {
	gen_records 50 | aistack-ingest t
	set_consumer t slow 0
	gen_records 5 more | aistack-ingest --max-backlog 100 t 3>&- &
	pid=$!
	poll_until paused_is t true
	run aistack-checkpoint status t
	assert_line --index 0 --regexp ', paused$'
	kill -KILL "$pid"
	wait "$pid" || true
	# no wait: the lock died with the process
	paused_is t false
	run aistack-checkpoint status t
	refute_line --index 0 --regexp 'paused'
	# no textfile says otherwise either
	no_match aistack_ingest_paused "$AISTACK_STATE_DIR/metrics/ingest-t.prom"
}

@test "after a consumer commits, with no ingest running, the backlog is the live one" {
	gen_records 200 | aistack-ingest t
	aistack-checkpoint read -n 150 learning t > /dev/null
	aistack-checkpoint commit learning t
	head=$(stream_bytes t | wc -c)
	committed=$(jq .committed "$STREAMS/t/consumers/learning")
	[ "$committed" -gt 0 ] && [ "$committed" -lt "$head" ]
	assert_equal "$(counter t backlog)" $((head - committed))
	assert_equal "$(aistack-checkpoint status --json t | jq '.consumers[0].lag')" $((head - committed))
	# nothing in the metrics files claims another backlog or lag
	no_match -r 'aistack_stream_backlog_bytes\|aistack_consumer_lag_bytes' "$AISTACK_STATE_DIR/metrics"
	aistack-checkpoint read learning t > /dev/null
	aistack-checkpoint commit learning t
	assert_equal "$(counter t backlog)" 0
}

@test "every metrics file the commands write is valid Prometheus text" {
	printf '[breaker pg]\nfailures = 2\n' > "$AISTACK_CONFIG"
	{ gen_records 30; printf 'bad\n\n'; } | aistack-ingest telemetry
	aistack-checkpoint run -n 7 learning telemetry -- sh -c \
		'aistack-dedup -a dataset -k .n | aistack-ingest dataset'
	aistack-checkpoint run fails telemetry -- false || true
	aistack-dedup -s st < "$STREAMS/dataset/00000000000000000000.jsonl" > /dev/null
	aistack-breaker run pg -- true
	aistack-breaker run flaky -- false || true
	aistack-breaker trip flaky
	aistack-rotate --seal-size 0
	n=0
	for f in "$AISTACK_STATE_DIR"/metrics/*.prom; do
		promtool check metrics < "$f" || fail "$f is not valid: $(cat "$f")"
		n=$((n + 1))
	done
	[ "$n" -ge 10 ]
	# counters are counters of the state; a run's values are gauges
	cd "$AISTACK_STATE_DIR/metrics"
	run sh -c "grep -h '^# TYPE .*_total ' ingest-*.prom checkpoint-*.prom rotate-*.prom breaker-*.prom | grep -v ' counter\$'"
	assert_output ''
	run sh -c "grep -h '^# TYPE .*_last_run_' *.prom | grep -v ' gauge\$'"
	assert_output ''
}
