#!/usr/bin/env bats
# aistack-proxy's live state views: /health, /api/stats and /metrics read
# the state directory at each request (lib/state/stateview.h), so backlog and
# paused are those of now, the same number everywhere; breakers are
# listed from their first use or configuration; the files of metrics/
# are validated (what is invalid is dropped, counted and reported once)
# and the output always passes promtool check metrics.

load test_helper
load proxy_helper

setup() {
	common_setup
	unset AISTACK_PROXY_TOKEN
	PROXY_PID=
	BODY="$BATS_TEST_TMPDIR/body"
}

teardown() {
	if [ -n "${PROXY_PID:-}" ]; then
		kill "$PROXY_PID" 2>/dev/null || true
		wait "$PROXY_PID" 2>/dev/null || true
	fi
}

# start_proxy: aistack-proxy on a free port; sets URL, PROXY_PID
# and LOG (its standard error).
start_proxy() {
	proxy_start --rate 6000/min
}

# scrape: GET /metrics into $BODY, checked by promtool.
scrape() {
	[ "$(curl -s -o "$BODY" -w '%{http_code}' "$URL/metrics")" = 200 ]
	promtool check metrics < "$BODY"
}

# sample SERIES: its value in $BODY (nothing when absent).
sample() {
	awk -v k="$1" '$1 == k { print $2 }' "$BODY"
}

# health JQ: a value of /health.
health() {
	curl -s "$URL/health" | jq -c "$1"
}

# health_paused STREAM true|false
health_paused() {
	[ "$(health ".streams.\"$1\".paused")" = "$2" ]
}

@test "proxy state: after a consumer commits, with no ingest run, /metrics and /health give the same live backlog" {
	gen_records 200 | aistack-ingest t
	mkdir -p "$AISTACK_STATE_DIR/metrics"
	# what an ingest of old left: its backlog, long out of date
	printf '# HELP aistack_stream_backlog_bytes Old.\n# TYPE aistack_stream_backlog_bytes gauge\naistack_stream_backlog_bytes{stream="t"} 84363120\n' \
	    > "$AISTACK_STATE_DIR/metrics/ingest-old.prom"
	start_proxy
	aistack-checkpoint read -n 150 learning t > /dev/null
	aistack-checkpoint commit learning t
	head=$(stream_bytes t | wc -c)
	committed=$(jq .committed "$STREAMS/t/consumers/learning")
	[ "$committed" -gt 0 ] && [ "$committed" -lt "$head" ]
	scrape
	assert_equal "$(sample 'aistack_stream_backlog_bytes{stream="t"}')" $((head - committed))
	assert_equal "$(health .streams.t.backlog)" $((head - committed))
	assert_equal "$(sample 'aistack_consumer_lag_bytes{stream="t",consumer="learning"}')" $((head - committed))
	run grep -c '^aistack_stream_backlog_bytes{stream="t"}' "$BODY"
	assert_output 1
	# the consumer catches up: both say 0 at once
	aistack-checkpoint read learning t > /dev/null
	aistack-checkpoint commit learning t
	scrape
	assert_equal "$(sample 'aistack_stream_backlog_bytes{stream="t"}')" 0
	assert_equal "$(health .streams.t.backlog)" 0
	run curl -s "$URL/api/stats"
	assert_equal "$(jq -c '.streams[0] | [.backlog, .consumers[0].lag, .consumers[0].committed == .head]' <<< "$output")" '[0,0,true]'
}

@test "proxy state: kill -9 of an ingest while it is paused: within a scrape paused is false and /health not degraded" {
	gen_records 50 | aistack-ingest t
	set_consumer t slow 0
	start_proxy
	gen_records 5 more | aistack-ingest --max-backlog 100 t 3>&- &
	pid=$!
	poll_until health_paused t true
	assert_equal "$(health .status)" '"degraded"'
	scrape
	assert_equal "$(sample 'aistack_ingest_paused{stream="t"}')" 1
	kill -KILL "$pid"
	wait "$pid" || true
	# no wait: the pause lock died with the process
	scrape
	assert_equal "$(sample 'aistack_ingest_paused{stream="t"}')" 0
	assert_equal "$(health .status)" '"ok"'
	assert_equal "$(health .streams.t.paused)" false
	run curl -s "$URL/api/stats"
	assert_equal "$(jq -c '[.status, .streams[0].paused, .streams[0].backlog > .streams[0].max_backlog]' <<< "$output")" '["ok",false,true]'
}

@test "proxy state: a breaker that only succeeded, and one only configured, are listed in /health and /api/stats" {
	printf '[breaker qdrant]\nfailures = 3\n' > "$AISTACK_CONFIG"
	aistack-breaker run pg -- true
	aistack-breaker run pg -- true
	start_proxy
	assert_equal "$(health .circuit_breakers)" '{"pg":"closed","qdrant":"closed"}'
	assert_equal "$(health .status)" '"ok"'
	run curl -s "$URL/api/stats"
	assert_equal "$(jq -c '[.breakers[] | [.name, .state, .calls.success, .calls.failure, .configured, (.last_success != null)]]' <<< "$output")" \
	    '[["pg","closed",2,0,false,true],["qdrant","closed",0,0,true,false]]'
	scrape
	assert_equal "$(sample 'aistack_breaker_calls_total{breaker="pg",result="success"}')" 2
	assert_equal "$(sample 'aistack_breaker_state{breaker="qdrant"}')" 0
	# a tripped one degrades, and says so everywhere
	aistack-breaker trip qdrant
	assert_equal "$(health .status)" '"degraded"'
	assert_equal "$(health .circuit_breakers.qdrant)" '"open"'
}

@test "proxy state: hostile metrics files: /metrics still passes promtool, the rejected counter counts them, one warning a file" {
	mkdir -p "$AISTACK_STATE_DIR/metrics"
	m=$AISTACK_STATE_DIR/metrics
	cat > "$m/hostile.prom" <<-'EOF'
	dup{a="1",a="2"} 1
	a{__name__="x"} 1
	bad-name 1
	not_a_number abc
	repeated 1
	repeated 1
	# HELP camelCase x
	# TYPE camelCase gauge
	camelCase 1
	bad_escape{l="\x"} 1
	# TYPE h histogram
	h_bucket 1
	# TYPE wrong_total gauge
	wrong_total 1
	# TYPE twice gauge
	# TYPE twice gauge
	twice 1
	aistack_custom_good 1
	EOF
	printf 'bad_utf8{l="\xff"} 1\n' >> "$m/hostile.prom"
	# a type clash between files, and a family of the live view
	printf '# TYPE clash gauge\nclash 1\n' > "$m/a.prom"
	printf '# TYPE clash counter\nclash 2\n# TYPE aistack_proxy_connections gauge\naistack_proxy_connections 99\n' > "$m/b.prom"
	start_proxy
	for i in 1 2 3; do
		scrape
		assert_equal "$(sample 'aistack_proxy_metrics_rejected_total{file="hostile.prom"}')" $((16 * i))
		assert_equal "$(sample 'aistack_proxy_metrics_rejected_total{file="b.prom"}')" $((2 * i))
		assert_equal "$(sample 'aistack_proxy_metrics_rejected_total{file="a.prom"}')" 0
	done
	grep -q '^# TYPE aistack_proxy_metrics_rejected_total counter$' "$BODY"
	assert_equal "$(sample aistack_custom_good)" 1
	assert_equal "$(sample clash)" 1
	assert_equal "$(sample aistack_proxy_connections)" 1
	for s in dup a repeated camelCase h_bucket wrong_total twice; do
		assert_equal "$(grep -c "^${s}[ {]" "$BODY")" "$([ "$s" = repeated ] && echo 1 || echo 0)"
	done
	# one warning a file, naming its first bad line
	run grep -c 'aistack-proxy: metrics/hostile.prom: line ' "$LOG"
	assert_output 1
	grep -q '^aistack-proxy: metrics/hostile.prom: line 1: duplicate label name' "$LOG"
	run grep -c 'aistack-proxy: metrics/b.prom: line 1: ' "$LOG"
	assert_output 1
	# a new version of the file is reported again
	printf 'x{a="1",a="1"} 1\n' > "$m/hostile.prom"
	scrape
	run grep -c 'aistack-proxy: metrics/hostile.prom: line ' "$LOG"
	assert_output 2
	assert_equal "$(sample 'aistack_proxy_metrics_rejected_total{file="hostile.prom"}')" 49
}

@test "proxy state: counters never go down across runs, and /metrics has the state's own" {
	printf '[breaker pg]\nfailures = 2\n' > "$AISTACK_CONFIG"
	start_proxy
	declare -A last=()
	for i in $(seq 12); do
		case $((i % 4)) in
		0) aistack-rotate --seal-size 0 t > /dev/null ;;
		1) { gen_records 5 "r$i."; printf 'junk\n'; } | aistack-ingest t ;;
		2) gen_records 6 "d$((i % 2))." | aistack-dedup -s st > /dev/null ;;
		3) aistack-breaker run pg -- true; aistack-breaker run pg -- false || true ;;
		esac
		scrape
		while read -r series value; do
			prev=${last[$series]:-0}
			awk -v a="$value" -v b="$prev" 'BEGIN { exit !(a >= b) }' ||
			    fail "run $i: $series went down: $prev -> $value"
			last[$series]=$value
		done < <(grep -E '^aistack_[a-z_]*_total[{ ]' "$BODY")
	done
	assert_equal "${last['aistack_ingest_records_total{stream="t",result="appended"}']}" "$(stream_bytes t | wc -l)"
	assert_equal "${last['aistack_ingest_records_total{stream="t",result="rejected"}']}" 3
	assert_equal "${last['aistack_dedup_records_total{state="st",kind="state",result="unique"}']}" 6
	assert_equal "${last['aistack_breaker_calls_total{breaker="pg",result="success"}']}" 3
	assert_equal "${last['aistack_breaker_calls_total{breaker="pg",result="failure"}']}" 3
	run curl -s "$URL/api/stats"
	assert_equal "$(jq -c '.dedup[] | select(.name == "st") | [.seen, .unique, .duplicates, .last_run.seen, .last_run.unique]' <<< "$output")" '[18,6,12,6,0]'
}

# random-prom SEED DIR: two files of random, mostly hostile, exposition
# lines (names, types, labels, escapes and values mixed) in DIR.
random_prom() {
	python3 - "$1" "$2" <<-'PY'
	import random, sys
	random.seed(int(sys.argv[1]))
	names = ['a', 'b_total', 'h', 'h_bucket', 'h_sum', 'h_count', 's', 's_sum',
	         'x_seconds', 'y_bytes', 'z_milliseconds', 'w:x', 'fooBar', 'q_gauge',
	         'aistack_stream_backlog_bytes', 'aistack_proxy_connections',
	         'aistack_custom_total']
	types = ['counter', 'gauge', 'histogram', 'summary', 'untyped', 'bogus']
	labels = ['a', 'b', 'le', 'quantile', '__name__', '__x', 'camelCase', 'stream']
	values = ['1', 'x', '+Inf', '0.5', '\\n', '\\"', '\\\\', 'é', '\\q', '0x10']
	numbers = ['1', '-1', '0', 'NaN', '+Inf', '-Inf', '1e3', '2.5', 'x', '1 1700000000000']
	def line():
	    r, n = random.random(), random.choice(names)
	    if r < 0.15:
	        return '# HELP %s %s' % (n, random.choice(['help', '', 'bad \\q', 'é']))
	    if r < 0.3:
	        return '# TYPE %s %s' % (n, random.choice(types))
	    lab = ''
	    if random.random() < 0.7:
	        lab = '{' + ','.join('%s="%s"' % (random.choice(labels), random.choice(values))
	                             for _ in range(random.randint(0, 3))) + '}'
	    return '%s%s %s' % (n, lab, random.choice(numbers))
	for f in ('r1.prom', 'r2.prom'):
	    with open(sys.argv[2] + '/' + f, 'w') as out:
	        out.write('\n'.join(line() for _ in range(random.randint(1, 30))) + '\n')
	PY
}

@test "proxy state: whatever the metrics files hold, /metrics passes promtool check metrics" {
	gen_records 5 | aistack-ingest t
	mkdir -p "$AISTACK_STATE_DIR/metrics"
	start_proxy
	for seed in $(seq 40); do
		random_prom "$seed" "$AISTACK_STATE_DIR/metrics"
		scrape || fail "seed $seed: $(cat "$AISTACK_STATE_DIR"/metrics/r?.prom)"
		# the live view's families are its own
		assert_equal "$(grep -c '^aistack_stream_backlog_bytes' "$BODY")" 1
	done
	rejected=$(awk '$1 ~ /^aistack_proxy_metrics_rejected_total\{file="r[12].prom"\}$/ { n += $2 } END { print n + 0 }' "$BODY")
	[ "$rejected" -gt 40 ]
}
