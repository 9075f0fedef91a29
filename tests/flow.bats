#!/usr/bin/env bats
# The learning flow end to end: the chaos proof of the end-to-end
# guarantee, and make demo's report against the files it describes.

load test_helper

# chaos_input N SEED: records keyed by "id", about 25% duplicate keys
# (written differently), and a few corrupt lines.
chaos_input() {
	python3 - "$1" "$2" <<'PY'
import json, random, sys
n, seed = int(sys.argv[1]), int(sys.argv[2])
r = random.Random(seed)
keys = []
for i in range(n):
    x = r.random()
    if x < 0.02:
        print(r.choice(['{"id":', 'garbage', '{"id":"x"}{}', '[1]']))
    elif x < 0.27 and keys:
        k = r.choice(keys)
        # the same key, the record written another way
        print(json.dumps({"pad": r.random(), "id": k}, indent=None))
    else:
        k = "p%d-%d" % (seed, i)
        keys.append(k)
        print(json.dumps({"id": k, "prompt": "question %d" % i}, separators=(",", ":")))
PY
}

pipeline='aistack-dedup -a dataset -k .id | flaky-pass | aistack-ingest dataset'

run_consumer() {	# one run of the batch consumer, in its own session
	setsid aistack-checkpoint run -n 50 learning telemetry -- \
		bash -o pipefail -c "$pipeline" &
	RUN_PID=$!
}

@test "chaos: concurrent producers, 40 kill -9 of the consumer, a flaky sink: every unique key exactly once" {
	for i in 1 2 3 4; do
		chaos_input 1500 "$i" > "$BATS_TEST_TMPDIR/in$i"
	done
	# four producers, started together, each in small pieces
	for i in 1 2 3 4; do
		(split -l 100 "$BATS_TEST_TMPDIR/in$i" "$BATS_TEST_TMPDIR/piece$i-" &&
		 for f in "$BATS_TEST_TMPDIR"/piece$i-*; do aistack-ingest telemetry "$f"; done) &
	done
	# the consumer, killed forty times at random moments
	for round in $(seq 1 40); do
		run_consumer
		sleep "0.$((RANDOM % 30))"
		if [ $((round % 2)) -eq 0 ]; then
			kill -9 -- -"$RUN_PID" 2>/dev/null || true	# the whole batch
		else
			kill -9 "$RUN_PID" 2>/dev/null || true		# the runner only
		fi
		wait "$RUN_PID" 2>/dev/null || true
	done
	wait	# the producers
	# then run until caught up (a batch fails one time in five)
	for attempt in $(seq 1 300); do
		if aistack-checkpoint run -n 50 learning telemetry -- \
			bash -o pipefail -c "$pipeline" 2>/dev/null; then
			lag=$(aistack-checkpoint status --json telemetry |
				jq '.consumers[] | select(.consumer == "learning") | .lag')
			[ "$lag" = 0 ] && break
		fi
	done
	[ "$lag" = 0 ]
	ds=$BATS_TEST_TMPDIR/dataset
	stream_bytes dataset > "$ds"
	# valid JSONL, one record per line
	[ "$(jq -c . "$ds" | wc -l)" -eq "$(wc -l < "$ds")" ]
	# every unique key of the valid input exactly once
	cat "$BATS_TEST_TMPDIR"/in[1-4] | jq -R -r 'fromjson? | objects | .id' |
		sort -u > "$BATS_TEST_TMPDIR/expected"
	jq -r .id "$ds" | sort > "$BATS_TEST_TMPDIR/got"
	[ -z "$(uniq -d "$BATS_TEST_TMPDIR/got")" ]
	diff -u "$BATS_TEST_TMPDIR/expected" "$BATS_TEST_TMPDIR/got"
	# and the corrupt lines are all in the rejects
	[ "$(stream_bytes telemetry.rejects | wc -l)" -eq \
		"$(cat "$BATS_TEST_TMPDIR"/in[1-4] | jq -R 'fromjson? | objects' -c | wc -l |
		   awk -v t="$(cat "$BATS_TEST_TMPDIR"/in[1-4] | wc -l)" '{ print t - $1 }')" ]
}

@test "make demo: exits 0 and its report's numbers match the files" {
	export DEMO_DIR=$BATS_TEST_TMPDIR/demo DEMO_EVENTS=2000
	run "$TESTS_DIR/../examples/demo.sh"
	assert_success
	report=$output
	field() { sed -n "s/^  $1: *\([0-9]*\).*/\1/p" <<< "$report"; }
	export AISTACK_STATE_DIR=$DEMO_DIR
	STREAMS=$DEMO_DIR/streams
	ingested=$(stream_bytes telemetry | wc -l)
	rejected=$(stream_bytes telemetry.rejects | wc -l)
	dataset=$(stream_bytes dataset | wc -l)
	extracted=$(stream_bytes telemetry | jq -c -f "$TESTS_DIR/../examples/extract.jq" | wc -l)
	total=$(cat "$DEMO_DIR"/sample/producer-*.jsonl | wc -l)
	empty=$(cat "$DEMO_DIR"/sample/producer-*.jsonl | grep -c '^[[:space:]]*$' || true)
	assert_equal "$(field 'events ingested')" "$ingested"
	assert_equal "$(field 'lines rejected')" "$rejected"
	assert_equal "$((ingested + rejected + empty))" "$total"
	assert_equal "$(field 'patterns extracted')" "$extracted"
	assert_equal "$(field 'dataset')" "$dataset"
	assert_equal "$(field 'duplicates removed')" "$((extracted - dataset))"
	assert_equal "$(field 'consumer lag')" 0
	[ "$dataset" -gt 0 ] && [ "$extracted" -gt "$dataset" ]
	# the dataset is chat-format and its interactions are unique
	jq -e '.messages | length == 3' "$STREAMS"/dataset/0* > /dev/null
	[ -z "$(stream_bytes dataset | jq -r '[.messages[1].content, .messages[2].content] | map(ascii_downcase) | @json' | sort | uniq -d)" ]
}
