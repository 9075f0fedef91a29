#!/usr/bin/env bats
# aistack-proxy: routing and refusals, rate limiting, breakers, auth,
# limits, metrics, shutdown, and the dashboard in a real browser.  One
# upstream stub (tests/bin/proxy-upstream-stub) serves the whole suite;
# every proxy listens on a port the kernel picks (-l 127.0.0.1:0).

load test_helper
load proxy_helper

setup_file() {
	upstream_stub_start
	# a port nothing listens on: bound once, then released
	DOWN_PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
	export DOWN_PORT
}

teardown_file() {
	upstream_stub_stop
}

setup() {
	common_setup
	unset AISTACK_PROXY_TOKEN
	PROXY_PID=
	HDRS="$BATS_TEST_TMPDIR/headers"
	BODY="$BATS_TEST_TMPDIR/body"
	cat > "$AISTACK_CONFIG" <<-EOF
	[upstream aidb]
	url = http://127.0.0.1:$UP_PORT
	allow = /v1/health /echo /html /big /fail
	allow = /echo?q=listed
	allow = /slow
	timeout = 1s
	max_response = 64k

	[upstream dead]
	url = http://127.0.0.1:$DOWN_PORT
	allow = /v1/health

	[breaker dead]
	failures = 2
	open_for = 30s
	EOF
}

teardown() {
	stop_proxy
}

# start_proxy [ARG...]: start aistack-proxy on a free port with the
# repository's dashboard; sets URL, PROXY_PID, LOG (its standard error).
start_proxy() {
	start_proxy_bare --dashboard "$TESTS_DIR/../dashboard" "$@"
}

# start_proxy_bare [ARG...]: the same without --dashboard
start_proxy_bare() {
	proxy_start "$@"
}

@test "proxy: --help, --version and bad usage" {
	run aistack-proxy --help
	assert_success
	assert_line --index 0 --partial "usage: aistack-proxy [-v] [-c CONFIG]"
	run aistack-proxy --version
	assert_success
	assert_output --regexp '^aistack-proxy [0-9]+\.[0-9]+\.[0-9]+$'
	run aistack-proxy --nope
	assert_failure 64
	run aistack-proxy extra
	assert_failure 64
	assert_line --index 0 "aistack-proxy: extra: unexpected operand"
	run aistack-proxy --rate fast -l 127.0.0.1:0
	assert_failure 64
	assert_output 'aistack-proxy: --rate: invalid value "fast"'
	run aistack-proxy -l 127.0.0.1:99999
	assert_failure 64
}

@test "proxy: an address in use is refused, another aistack-proxy's too" {
	start_proxy
	# its workers listen with SO_REUSEPORT: a second one must not join them
	# (one that did would serve until timeout stops it: 124)
	run timeout 5 aistack-proxy -l "${URL#http://}"
	assert_failure 69
	assert_output --partial "${URL#http://}: cannot listen: Address already in use"
	run code /health
	assert_output 200
}

@test "proxy: a whitelisted path is proxied; hop-by-hop and unsafe headers are not" {
	start_proxy
	run fetch /upstream/aidb/v1/health
	assert_output 200
	run cat "$BODY"
	assert_output '{"ok":true}'
	assert_equal "$(header Content-Type)" "application/json; charset=utf-8"
	assert_equal "$(header ETag)" '"v1"'
	assert_equal "$(header Cache-Control)" "max-age=5"
	for h in Keep-Alive X-Hop Set-Cookie Access-Control-Allow-Origin; do
		assert_equal "$(header "$h")" ""
	done
	# HEAD is allowed and has no body
	run curl -s -I -o /dev/null -w '%{http_code}' "$URL/upstream/aidb/v1/health"
	assert_output 200
	# a listed query string passes; the client's own headers do not
	run fetch '/upstream/aidb/echo?q=listed' -H 'Authorization: Bearer abc' -H 'Cookie: c=1'
	assert_output 200
	run jq -c '[.path, .query, .headers.authorization, .headers.cookie, .headers["user-agent"]]' "$BODY"
	assert_output '["/echo","q=listed",null,null,"aistack-proxy/'"$(aistack-proxy --version | cut -d' ' -f2)"'"]'
	# an upstream's HTML is not served as HTML
	run fetch /upstream/aidb/html
	assert_output 200
	assert_equal "$(header Content-Type)" "application/octet-stream"
	# upstream statuses pass through; a body over max_response is refused
	run code /upstream/aidb/fail
	assert_output 500
	run fetch /upstream/aidb/big
	assert_output 502
	run cat "$BODY"
	assert_output '{"error":"upstream response too large"}'
	grep -q '"GET /upstream/aidb/v1/health" 200 11 ' "$LOG"
}

@test "proxy: every refusal class, before any match" {
	start_proxy --rate 1000/min
	while read -r want path; do
		run code "$path"
		if [ "$output" != "$want" ]; then
			echo "$path: got $output, want $want" >&2
			return 1
		fi
	done <<-'EOF'
	403 /upstream/aidb/../aidb/v1/health
	403 /upstream/aidb/v1/../v1/health
	403 /upstream/aidb/./v1/health
	403 /upstream/aidb/v1/health/.
	403 /upstream/aidb/%2e%2e/etc/passwd
	403 /upstream/aidb/%2E%2E/etc/passwd
	403 /upstream/aidb/%2e/v1/health
	403 /upstream/aidb/v1%2fhealth
	403 /upstream/aidb/v1%2Fhealth
	403 /upstream/aidb/v1%5chealth
	403 /upstream/aidb/v1\health
	403 /upstream/aidb/v1/health%00
	403 /upstream/aidb/v1%252fhealth
	403 //upstream/aidb/v1/health
	403 /upstream//aidb/v1/health
	403 /upstream/aidb//v1/health
	403 /../../etc/passwd
	403 /upstream/nope/v1/health
	403 /upstream/aidbx/v1/health
	403 /upstream/aidb
	403 /upstream/aidb/v1/health/
	403 /upstream/aidb/v1/healt
	403 /upstream/aidb/v1/health?x=1
	403 /upstream/aidb/echo?q=other
	403 /upstream/aidb/V1/health
	404 /nothere
	404 /api/nothere
	404 /a/b.js
	200 /upstream/aidb/v1/health
	EOF
	# a NUL byte sent raw, not encoded
	run python3 -c '
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.sendall(b"GET /upstream/aidb/v1/health\x00/../x HTTP/1.1\r\nHost: x\r\n\r\n")
print(s.recv(100).split(b"\r\n")[0].decode())' "${URL##*:}"
	assert_output "HTTP/1.1 403 Forbidden"
	# only GET and HEAD
	run fetch /health -X POST -d x=1
	assert_output 405
	assert_equal "$(header Allow)" "GET, HEAD"
	for m in PUT DELETE OPTIONS PATCH TRACE; do
		run code /upstream/aidb/v1/health -X "$m"
		assert_output 405
	done
	run fetch /upstream/aidb/%2e%2e/x
	run cat "$BODY"
	assert_output '{"error":"forbidden request target"}'
	# nothing refused reached the upstream
	run grep -c ' 200 ' "$LOG"
	assert_output 1
}

@test "proxy: security headers on every response, no CORS wildcard" {
	start_proxy --rate 3/min
	for p in / /health /nothere /../x /upstream/aidb/v1/health /upstream/aidb/v1/health; do
		fetch "$p" > /dev/null
		assert_equal "$(header Content-Security-Policy)" \
		    "default-src 'self'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
		assert_equal "$(header X-Content-Type-Options)" nosniff
		assert_equal "$(header Referrer-Policy)" no-referrer
		assert_equal "$(header Access-Control-Allow-Origin)" ""
	done
	# the last one was a 429
	run grep -c '^HTTP/1.1 429' "$HDRS"
	assert_output 1
}

@test "proxy: exactly --rate requests from loopback, then 429 with headers and body" {
	start_proxy --rate 5/min
	# one token comes back every 12 s; the seconds below allow the test
	# itself a few seconds of slowness, never more than that
	for i in 1 2 3 4 5; do
		run fetch /health
		assert_output 200
		run header RateLimit
		assert_output --regexp "^\"client\";r=$((5 - i));t=[0-9]+$"
		t=${output##*t=}
		[ "$t" -le $((12 * i)) ] && [ "$t" -ge $((12 * i - 3)) ]
	done
	run fetch /health
	assert_output 429
	retry=$(header Retry-After)
	[ "$retry" -ge 9 ] && [ "$retry" -le 12 ]
	run cat "$BODY"
	assert_output "{\"error\":\"rate limit exceeded\",\"retry_after_seconds\":$retry}"
	assert_equal "$(header RateLimit-Policy)" '"client";q=5;w=60'
	run header RateLimit
	assert_output --regexp '^"client";r=0;t=(5[7-9]|60)$'
	assert_equal "$(header Content-Type)" application/json
	# refused requests cost nothing and the dashboard is limited too
	run code /
	assert_output 429
	run curl -s "$URL/metrics"
	assert_output --partial '{"error":"rate limit exceeded"'
}

@test "proxy: the bucket refills after its period" {
	start_proxy --rate 2/s --burst 2
	run code /health
	assert_output 200
	run code /health
	assert_output 200
	run fetch /health
	assert_output 429
	assert_equal "$(header Retry-After)" 1
	sleep 1.2
	run code /health
	assert_output 200
}

@test "proxy: rate and burst from the configuration file" {
	printf '[proxy]\nrate = 2/min\nburst = 1\n' >> "$AISTACK_CONFIG"
	start_proxy
	run code /health
	assert_output 200
	run fetch /health
	assert_output 429
	run header Retry-After
	assert_output --regexp '^(2[7-9]|30)$'
	assert_equal "$(header RateLimit-Policy)" '"client";q=1;w=30'
}

@test "proxy: upstream down is 502, then the breaker opens: 503 with Retry-After" {
	start_proxy
	run fetch /upstream/dead/v1/health
	assert_output 502
	run cat "$BODY"
	assert_output '{"error":"upstream unreachable"}'
	run code /upstream/dead/v1/health
	assert_output 502
	run fetch /upstream/dead/v1/health
	assert_output 503
	retry=$(header Retry-After)
	[ "$retry" -ge 1 ] && [ "$retry" -le 30 ]
	run jq -c . "$BODY"
	assert_output "{\"error\":\"upstream unavailable\",\"upstream\":\"dead\",\"retry_after_seconds\":$retry}"
	# the breaker is the shared one
	run aistack-breaker status --json dead
	assert_success
	assert_output --partial '"state":"open"'
	run curl -s "$URL/health"
	assert_output --partial '"circuit_breakers":{"aidb":"closed","dead":"open"}'
	assert_output --partial '"status":"degraded"'
	# tripped by hand, aidb refuses without calling the upstream
	aistack-breaker trip aidb
	run code /upstream/aidb/v1/health
	assert_output 503
}

@test "proxy: an upstream timeout is 504" {
	start_proxy
	run fetch /upstream/aidb/slow
	assert_output 504
	run cat "$BODY"
	assert_output '{"error":"upstream timed out"}'
	run curl -s "$URL/metrics"
	assert_line 'aistack_proxy_upstream_requests_total{upstream="aidb",outcome="timeout"} 1'
}

@test "proxy: the token is required on /api/ and /upstream/, checked, never logged" {
	export AISTACK_PROXY_TOKEN=s3cret-token-value
	start_proxy --rate 100/min
	run fetch /api/stats
	assert_output 401
	assert_equal "$(header WWW-Authenticate)" 'Bearer realm="aistack-proxy"'
	run cat "$BODY"
	assert_output '{"error":"unauthorized"}'
	run code /api/stats -H 'Authorization: Bearer wrong'
	assert_output 401
	run code /api/stats -H 'Authorization: Bearer s3cret-token-valu'
	assert_output 401
	run code /api/stats -H 'Authorization: Basic s3cret-token-value'
	assert_output 401
	run code /api/stats -H 'Authorization: Bearer s3cret-token-value'
	assert_output 200
	run code /upstream/aidb/v1/health
	assert_output 401
	# unauthenticated clients learn nothing of the upstreams
	run code /upstream/nope/x
	assert_output 401
	run code /upstream/aidb/v1/health -H 'Authorization: Bearer s3cret-token-value'
	assert_output 200
	run code /upstream/aidb/v1/health -H 'Authorization: bearer s3cret-token-value'
	assert_output 200
	# the rest is public
	run code /health
	assert_output 200
	run code /
	assert_output 200
	stop_proxy
	run grep -c s3cret "$LOG"
	assert_output 0
}

@test "proxy: token_file must be mode 0600; secrets are not read from the config" {
	printf 'from-file-token\n' > "$BATS_TEST_TMPDIR/token"
	chmod 0644 "$BATS_TEST_TMPDIR/token"
	printf '[proxy]\ntoken_file = %s\n' "$BATS_TEST_TMPDIR/token" >> "$AISTACK_CONFIG"
	run aistack-proxy -l 127.0.0.1:0
	assert_failure 78
	assert_output --partial "token: permissions 0644 are too open; a secret file must be mode 0600 or stricter"
	refute_output --partial from-file-token
	chmod 0600 "$BATS_TEST_TMPDIR/token"
	start_proxy
	run code /api/stats
	assert_output 401
	run code /api/stats -H 'Authorization: Bearer from-file-token'
	assert_output 200
	stop_proxy
	printf '[proxy]\ntoken = inline\n' > "$AISTACK_CONFIG"
	run aistack-proxy -l 127.0.0.1:0
	assert_failure 78
	assert_output --partial "token: secrets are not read from the configuration file; use token_file (mode 0600)"
}

@test "proxy: slowloris connections do not stall a normal client" {
	printf '[proxy]\nmax_connections_per_client = 16\nidle_timeout = 20s\n' >> "$AISTACK_CONFIG"
	start_proxy --rate 1000/min
	# 40 connections from 127.0.0.2 that send a header byte now and then
	python3 - "${URL##*:}" "$BATS_TEST_TMPDIR/slow.ready" <<-'EOF' 3>&- &
	import socket, sys, time
	conns = []
	for i in range(40):
	    try:
	        s = socket.socket()
	        s.bind(("127.0.0.2", 0))
	        s.connect(("127.0.0.1", int(sys.argv[1])))
	        s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n")
	        conns.append(s)
	    except OSError:
	        pass
	open(sys.argv[2], "w").write(str(len(conns)))
	for _ in range(60):
	    for s in conns:
	        try:
	            s.sendall(b"X-a: b\r\n")
	        except OSError:
	            pass
	    time.sleep(0.5)
	EOF
	slow=$!
	for ((i = 0; i < 100; i++)); do
		[ -s "$BATS_TEST_TMPDIR/slow.ready" ] && break
		sleep 0.1
	done
	for i in 1 2 3 4 5; do
		run code /health
		assert_output 200
	done
	run curl -s "$URL/metrics"
	kill "$slow"
	wait "$slow" || true
	# they were held open, bounded per client
	assert_line --regexp '^aistack_proxy_connections ([0-9]+)$'
	n=$(printf '%s\n' "$output" | sed -n 's/^aistack_proxy_connections //p')
	[ "$n" -ge 2 ] && [ "$n" -le 17 ]
}

@test "proxy: oversized headers and targets are refused and the server stays up" {
	start_proxy --rate 1000/min
	big=$(head -c 40000 /dev/zero | tr '\0' a)
	run code /health -H "X-Big: $big"
	assert_output 431
	run code "/health?$(head -c 3000 /dev/zero | tr '\0' a)"
	assert_output 414
	run code "/$(head -c 50000 /dev/zero | tr '\0' a)"
	assert_output 414
	run code /health
	assert_output 200
	kill -0 "$PROXY_PID"
}

@test "proxy: /metrics is valid Prometheus text with its own counters and every metrics file" {
	mkdir -p "$AISTACK_STATE_DIR/metrics"
	# two files declaring one family, a repeated series, a bad line, and a
	# family of the live view (which owns it: the files' samples are left out)
	cat > "$AISTACK_STATE_DIR/metrics/ingest-a.prom" <<-'EOF'
	# HELP aistack_ingest_last_run_records Input lines by result in this run.
	# TYPE aistack_ingest_last_run_records gauge
	aistack_ingest_last_run_records{stream="a",result="appended"} 10
	# HELP aistack_stream_backlog_bytes Bytes not yet read by the slowest consumer.
	# TYPE aistack_stream_backlog_bytes gauge
	aistack_stream_backlog_bytes{stream="a"} 100
	EOF
	cat > "$AISTACK_STATE_DIR/metrics/ingest-b.prom" <<-'EOF'
	# HELP aistack_ingest_last_run_records Input lines by result in this run.
	# TYPE aistack_ingest_last_run_records gauge
	aistack_ingest_last_run_records{stream="b",result="appended"} 7
	aistack_stream_backlog_bytes{stream="a"} 100
	this is not a sample
	EOF
	start_proxy --rate 1000/min
	code /upstream/aidb/v1/health > /dev/null
	code /nothere > /dev/null
	curl -s -o /dev/null "$URL/upstream/dead/v1/health"
	run fetch /metrics
	assert_output 200
	assert_equal "$(header Content-Type)" "text/plain; version=0.0.4; charset=utf-8"
	if command -v promtool > /dev/null; then
		promtool check metrics < "$BODY"
	fi
	run promtext-check < "$BODY"
	assert_output ok
	run cat "$BODY"
	assert_line 'aistack_proxy_requests_total{route="upstream",code="200"} 1'
	assert_line 'aistack_proxy_requests_total{route="other",code="404"} 1'
	assert_line 'aistack_proxy_requests_total{route="upstream",code="502"} 1'
	assert_line 'aistack_proxy_rate_limited_total 0'
	assert_line 'aistack_proxy_upstream_duration_seconds_count{upstream="aidb"} 1'
	assert_line 'aistack_proxy_upstream_requests_total{upstream="dead",outcome="down"} 1'
	assert_line 'aistack_ingest_last_run_records{stream="a",result="appended"} 10'
	assert_line 'aistack_ingest_last_run_records{stream="b",result="appended"} 7'
	assert_line --regexp '^aistack_proxy_ratelimit_memory_bytes [1-9][0-9]*$'
	assert_line 'aistack_breaker_state{breaker="dead"} 0'
	run grep -c '^# TYPE aistack_ingest_last_run_records gauge$' "$BODY"
	assert_output 1
	run grep -c '^aistack_stream_backlog_bytes{stream="a"} 100$' "$BODY"
	assert_output 0
}

@test "proxy: /health and /api/stats report streams, consumers' lag, paused, breakers, dedup" {
	gen_records 20 | aistack-ingest telemetry
	head=$(stat -c %s "$STREAMS/telemetry/00000000000000000000.jsonl")
	set_consumer telemetry learning 100
	aistack-breaker trip qdrant
	{ gen_records 30; gen_records 10; } | aistack-dedup -s dataset > /dev/null
	start_proxy
	run curl -s "$URL/health"
	assert_output "{\"status\":\"degraded\",\"circuit_breakers\":{\"aidb\":\"closed\",\"dead\":\"closed\",\"qdrant\":\"open\"},\"streams\":{\"telemetry\":{\"head\":$head,\"backlog\":$((head - 100)),\"paused\":false}}}"
	run sh -c "curl -s '$URL/api/stats' | jq -c '[.streams[0].consumers[0] | .name, .lag, .committed], .streams[0].ingest.appended, ([.breakers[] | select(.state == \"open\") | .name]), (.dedup | map({name, seen, unique, duplicates, duplicate_rate}))'"
	assert_output "[\"learning\",$((head - 100)),100]
20
[\"qdrant\"]
[{\"name\":\"dataset\",\"seen\":40,\"unique\":30,\"duplicates\":10,\"duplicate_rate\":0.25}]"
}

@test "proxy: a stream over [ingest] max_backlog is not paused while no writer waits" {
	gen_records 20 | aistack-ingest telemetry
	set_consumer telemetry learning 0
	printf '[ingest]\nmax_backlog = 100\n' >> "$AISTACK_CONFIG"
	start_proxy
	run sh -c "curl -s '$URL/health' | jq -c '.status, .streams.telemetry.paused'"
	assert_output '"ok"
false'
}

# term_during_slow_call [CONFIG-LINES]: a proxy with the upstream "slow"
# (3 s an answer) gets SIGTERM while a call to it is in flight; the
# client's code and body are left in slow.code and slow.out, and the
# proxy must exit 0.
term_during_slow_call() {
	printf '%b[upstream slow]\nurl = http://127.0.0.1:%s\nallow = /slow\ntimeout = 20s\n' \
	    "${1:-}" "$UP_PORT" >> "$AISTACK_CONFIG"
	start_proxy
	curl -s -o "$BATS_TEST_TMPDIR/slow.out" -w '%{http_code}' "$URL/upstream/slow/slow" \
	    > "$BATS_TEST_TMPDIR/slow.code" 3>&- &
	local client=$! i status=0
	for ((i = 0; i < 200; i++)); do
		grep -q '^aistack_proxy_connections 2$' <(curl -s "$URL/metrics") && break
		sleep 0.05
	done
	kill -TERM "$PROXY_PID"
	wait "$client"
	wait "$PROXY_PID" || status=$?
	PROXY_PID=
	assert_equal "$status" 0
}

@test "proxy: SIGTERM lets the request in flight finish, then exits 0" {
	term_during_slow_call
	run cat "$BATS_TEST_TMPDIR/slow.code" "$BATS_TEST_TMPDIR/slow.out"
	assert_output '200{"slow":true}'
	run curl -s -o /dev/null -w '%{http_code}' "$URL/health"
	assert_output 000
	grep -q 'aistack-proxy: Terminated: shutting down' "$LOG"
	grep -q '"GET /upstream/slow/slow" 200 13 ' "$LOG"
}

@test "proxy: calls to a slow upstream hold up no other request" {
	printf '[upstream slow]\nurl = http://127.0.0.1:%s\nallow = /slow\ntimeout = 20s\n' \
	    "$UP_PORT" >> "$AISTACK_CONFIG"
	start_proxy --rate 1000/min
	# more calls in flight (3 s each) than the server has threads
	slow=()
	for i in 1 2 3 4 5 6 7 8; do
		curl -s -o /dev/null -w '%{http_code}\n' "$URL/upstream/slow/slow" \
		    >> "$BATS_TEST_TMPDIR/slow.codes" 3>&- &
		slow+=($!)
	done
	for ((i = 0; i < 200; i++)); do
		grep -q '^aistack_proxy_connections 9$' <(curl -s "$URL/metrics") && break
		sleep 0.05
	done
	# each answered while all eight wait (a blocked thread would take 3 s)
	for i in 1 2 3; do
		run code /health --max-time 2
		assert_output 200
		run code /upstream/aidb/v1/health --max-time 2
		assert_output 200
		run code / --max-time 2
		assert_output 200
	done
	wait "${slow[@]}"
	run sort "$BATS_TEST_TMPDIR/slow.codes"
	assert_output "$(printf '200\n%.0s' 1 2 3 4 5 6 7 8)"
}

@test "proxy: SIGTERM gives up a call still running after shutdown_grace: 503" {
	term_during_slow_call '[proxy]\nshutdown_grace = 500ms\n'
	run cat "$BATS_TEST_TMPDIR/slow.code"
	assert_output 503
	run cat "$BATS_TEST_TMPDIR/slow.out"
	assert_output --partial '"shutting down"'
	# given up is not a failure of the upstream
	run aistack-breaker status --json slow
	assert_output --partial '"failures":0'
}

@test "proxy: bad configuration is refused with 78" {
	printf '[upstream Bad!]\nurl = http://127.0.0.1:1\n' > "$AISTACK_CONFIG"
	run aistack-proxy -l 127.0.0.1:0
	assert_failure 78
	assert_output --partial 'an upstream name is [a-z0-9][a-z0-9._-]{0,63}'
	printf '[upstream x]\nurl = ftp://127.0.0.1/\n' > "$AISTACK_CONFIG"
	run aistack-proxy -l 127.0.0.1:0
	assert_failure 78
	assert_output --partial 'ftp://127.0.0.1/: not an http or https URL'
	printf '[upstream x]\nurl = http://127.0.0.1:1\nallow = /a/../b\n' > "$AISTACK_CONFIG"
	run aistack-proxy -l 127.0.0.1:0
	assert_failure 78
	assert_output --partial 'allow "/a/../b": not a safe absolute path'
	printf '[upstream x]\nallow = /a\n' > "$AISTACK_CONFIG"
	run aistack-proxy -l 127.0.0.1:0
	assert_failure 78
	assert_output --partial '[upstream x]: missing url'
	printf '[proxy]\nrate = lots\n' > "$AISTACK_CONFIG"
	run aistack-proxy -l 127.0.0.1:0
	assert_failure 78
	assert_output --partial 'invalid rate "lots"'
	: > "$AISTACK_CONFIG"
	run aistack-proxy -l 127.0.0.1:0 --dashboard "$BATS_TEST_TMPDIR/none"
	assert_failure 66
}

# The dashboard in headless Chromium, against real state: a stream with a
# lagging consumer and an open breaker, records from concurrent producers,
# a breaker that only succeeded, two dedup runs.  Asserted from the
# rendered DOM and from the screenshot's pixels (the open breaker's red,
# the plots).
@test "proxy: the dashboard shows the open breaker and the consumer's lag in a real browser" {
	for p in 1 2 3 4; do gen_records 50 "p$p." | aistack-ingest telemetry & done
	wait
	head=$(stat -c %s "$STREAMS/telemetry/00000000000000000000.jsonl")
	set_consumer telemetry learning 1100
	lag=$((head - 1100))
	aistack-breaker trip --open-for 5m qdrant
	aistack-breaker run pg -- true
	{ gen_records 30; gen_records 10; } | aistack-dedup -s dataset > /dev/null
	gen_records 4 | aistack-dedup -s dataset > /dev/null
	start_proxy
	chrome=(chromium --headless --no-sandbox --disable-gpu
	    --disable-background-networking --disable-component-update
	    --disable-sync --no-first-run --disable-dev-shm-usage
	    --user-data-dir="$BATS_TEST_TMPDIR/chrome" --virtual-time-budget=8000)
	timeout 120 "${chrome[@]}" --dump-dom "$URL/" > "$BATS_TEST_TMPDIR/dom.html" 2> /dev/null
	run grep -o 'data-breaker="qdrant" data-state="open"' "$BATS_TEST_TMPDIR/dom.html"
	assert_output 'data-breaker="qdrant" data-state="open"'
	run grep -oE 'retry in [0-9]+ s' "$BATS_TEST_TMPDIR/dom.html"
	assert_output --regexp '^retry in (2[0-9][0-9]|300) s$'
	run grep -o "data-consumer=\"learning\" data-lag=\"$lag\"" "$BATS_TEST_TMPDIR/dom.html"
	assert_success
	run grep -oE 'lag [0-9.]+ (B|KiB)' "$BATS_TEST_TMPDIR/dom.html"
	assert_output "lag $(awk -v n="$lag" 'BEGIN { if (n < 1024) print n " B"; else printf "%.1f KiB\n", n / 1024 }')"
	run grep -c '<polyline' "$BATS_TEST_TMPDIR/dom.html"
	[ "$output" -ge 2 ]
	run grep -o 'id="status" class="badge degraded"' "$BATS_TEST_TMPDIR/dom.html"
	assert_success
	# the truth: ingested records from the stream's counters, its disk
	# usage, a breaker from its first use, dedup over all runs beside the
	# last one, paused only while a writer waits
	grep -q 'data-rate="ingest" data-total="200"' "$BATS_TEST_TMPDIR/dom.html"
	grep -q 'data-appended="200"' "$BATS_TEST_TMPDIR/dom.html"
	grep -q "data-disk=\"$head\"" "$BATS_TEST_TMPDIR/dom.html"
	grep -q 'data-breaker="pg" data-state="closed"' "$BATS_TEST_TMPDIR/dom.html"
	grep -q '1 ok · 0 failed · 0 refused' "$BATS_TEST_TMPDIR/dom.html"
	run grep -oE 'data-dedup="dataset".*</tr>' "$BATS_TEST_TMPDIR/dom.html"
	assert_output --partial '>31.8 %<'
	assert_output --partial '>100.0 % of 4<'
	grep -q 'data-stream="telemetry" data-paused="false"' "$BATS_TEST_TMPDIR/dom.html"
	no_match 'class="paused"' "$BATS_TEST_TMPDIR/dom.html"

	timeout 120 "${chrome[@]}" --window-size=420,1800 \
	    --screenshot="$BATS_TEST_TMPDIR/shot.png" "$URL/" 2> /dev/null
	# the open breaker's border and state (#cf222e) and the plots (#0969da)
	run png-has-color "$BATS_TEST_TMPDIR/shot.png" 207 34 46 30 100
	assert_success
	run png-has-color "$BATS_TEST_TMPDIR/shot.png" 9 105 218 40 20
	assert_success
	# the browser went through the proxy like any client
	grep -q '"GET /api/stats" 200 ' "$LOG"
	grep -q '"GET /app.js" 200 ' "$LOG"
}

@test "proxy: the dashboard asks for the token when one is required" {
	export AISTACK_PROXY_TOKEN=s3cret
	start_proxy
	timeout 120 chromium --headless --no-sandbox --disable-gpu \
	    --disable-background-networking --disable-component-update --disable-sync \
	    --no-first-run --disable-dev-shm-usage --user-data-dir="$BATS_TEST_TMPDIR/chrome" \
	    --virtual-time-budget=3000 --dump-dom "$URL/" > "$BATS_TEST_TMPDIR/dom.html" 2> /dev/null
	run grep -c '<form id="login">' "$BATS_TEST_TMPDIR/dom.html"
	assert_output 1
	run grep -o 'This proxy needs its bearer token.' "$BATS_TEST_TMPDIR/dom.html"
	assert_success
	grep -q '"GET /api/stats" 401 ' "$LOG"
}

@test "proxy: listens on IPv6 and limits IPv6 clients too" {
	LOG="$BATS_TEST_TMPDIR/proxy.log"
	: > "$LOG"
	aistack-proxy -v -l '[::1]:0' --rate 2/min 2> "$LOG" 3>&- &
	PROXY_PID=$!
	for ((i = 0; i < 200; i++)); do
		port=$(sed -n 's/^aistack-proxy: listening on \[::1\]:\([0-9]*\)$/\1/p' "$LOG")
		[ -n "$port" ] && break
		sleep 0.05
	done
	[ -n "$port" ]
	run curl -s -g -o /dev/null -w '%{http_code}' "http://[::1]:$port/health"
	assert_output 200
	run curl -s -g -o /dev/null -w '%{http_code}' "http://[::1]:$port/health"
	assert_output 200
	run curl -s -g -o /dev/null -w '%{http_code}' "http://[::1]:$port/health"
	assert_output 429
	grep -q '^::1 - - \[.*\] "GET /health" 429 ' "$LOG"
}

@test "proxy: the dashboard is built in: a fresh build serves / with no --dashboard" {
	# nothing installed beside the binary: only its own copy can answer
	cp "$AISTACK_BIN/aistack-proxy" "$BATS_TEST_TMPDIR/aistack-proxy"
	PATH="$BATS_TEST_TMPDIR:$PATH" start_proxy_bare
	[ "$(fetch /)" = 200 ]
	cmp "$BODY" "$TESTS_DIR/../dashboard/index.html"
	[ "$(header Content-Type)" = "text/html; charset=utf-8" ]
	for f in "$TESTS_DIR"/../dashboard/*; do
		[ "$(fetch "/${f##*/}")" = 200 ]
		cmp "$BODY" "$f"
	done
	[ "$(header Cache-Control)" = no-cache ]
	[ "$(code /nope.js)" = 404 ]
	refute grep -q "not installed" "$LOG"
	stop_proxy
	# --dashboard DIR overrides the built-in copy, for development
	mkdir "$BATS_TEST_TMPDIR/dev"
	echo '<!doctype html><title>dev</title>' > "$BATS_TEST_TMPDIR/dev/index.html"
	start_proxy_bare --dashboard "$BATS_TEST_TMPDIR/dev"
	[ "$(fetch /)" = 200 ]
	cmp "$BODY" "$BATS_TEST_TMPDIR/dev/index.html"
	[ "$(code /app.js)" = 404 ]
}

@test "proxy: no symbolic link is followed out of the dashboard or metrics directory" {
	dash="$BATS_TEST_TMPDIR/dash"
	mkdir -p "$dash" "$AISTACK_STATE_DIR/metrics"
	cp "$TESTS_DIR/../dashboard/index.html" "$dash/"
	echo 'inside' > "$dash/real.txt"
	ln -s /etc/passwd "$dash/passwd.txt"
	ln -s real.txt "$dash/alias.txt"
	ln -s "$BATS_TEST_TMPDIR" "$dash/up.txt"
	mkfifo "$dash/fifo.txt"
	printf 'aistack_secret_total 7\n' > "$BATS_TEST_TMPDIR/outside.prom"
	ln -s "$BATS_TEST_TMPDIR/outside.prom" "$AISTACK_STATE_DIR/metrics/evil.prom"
	printf 'aistack_inside_total 3\n' > "$AISTACK_STATE_DIR/metrics/good.prom"
	start_proxy_bare --dashboard "$dash"
	[ "$(code /passwd.txt)" = 404 ]
	[ "$(code /alias.txt)" = 404 ]
	[ "$(code /up.txt)" = 404 ]
	[ "$(code /fifo.txt)" = 404 ]
	[ "$(fetch /real.txt)" = 200 ]
	[ "$(cat "$BODY")" = inside ]
	[ "$(fetch /metrics)" = 200 ]
	grep -q '^aistack_inside_total 3$' "$BODY"
	refute grep -q aistack_secret "$BODY"
}
