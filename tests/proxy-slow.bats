#!/usr/bin/env bats
# aistack-proxy against slow clients that hold every connection it has:
# four loopback addresses (127.0.0.2..5), each at the per-client cap,
# trickle their request heads (one header line every 5 s, a closed
# connection opened again), and a fifth client must still be served.

load test_helper
load proxy_helper

setup() {
	common_setup
	unset AISTACK_PROXY_TOKEN
	PROXY_PID='' SLOW_PID=''
	LOG="$BATS_TEST_TMPDIR/proxy.log"
}

teardown() {
	[ -n "$SLOW_PID" ] && kill "$SLOW_PID" 2>/dev/null
	[ -n "$PROXY_PID" ] && kill "$PROXY_PID" 2>/dev/null
	wait 2>/dev/null || true
}

# start_proxy: aistack-proxy on 127.0.0.1, a free port; sets PORT
start_proxy() {
	proxy_start --rate 100000/min
}

# trickle SECONDS: 4 addresses x 64 connections, each sending one header
# line every 5 s and opened again 1 s after it was closed, for SECONDS
# (as slowhttptest keeps its count of connections); writes how
# many it had open at first to slow.ready, then the 408 and 503 answers
# it got, and the connections it opened in all, to slow.done
trickle() {
	python3 - "$PORT" "$BATS_TEST_TMPDIR/slow" "$1" <<-'EOF' 3>&- &
	import selectors, socket, sys, time
	port, out, secs = int(sys.argv[1]), sys.argv[2], float(sys.argv[3])
	sel = selectors.DefaultSelector()
	opened = 0
	got = {b"408": 0, b"503": 0}
	def connect(addr):
	    global opened
	    s = socket.socket()
	    try:
	        s.bind((addr, 0))
	        s.connect(("127.0.0.1", port))
	        s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n")
	    except OSError:
	        s.close()
	        return
	    s.setblocking(False)
	    opened += 1
	    sel.register(s, selectors.EVENT_READ, addr)
	for a in range(2, 6):
	    for _ in range(64):
	        connect("127.0.0.%d" % a)
	open(out + ".ready", "w").write("%d\n" % len(sel.get_map()))
	end = time.time() + secs
	nextline = time.time() + 5
	again = []
	while time.time() < end:
	    while again and again[0][0] <= time.time():
	        connect(again.pop(0)[1])
	    for key, _ in sel.select(timeout=0.1):
	        try:
	            data = key.fileobj.recv(4096)
	        except OSError:
	            data = b""
	        if data[9:12] in got:
	            got[data[9:12]] += 1
	        sel.unregister(key.fileobj)
	        key.fileobj.close()
	        again.append((time.time() + 1, key.data))
	    if time.time() >= nextline:
	        nextline += 5
	        for key in list(sel.get_map().values()):
	            try:
	                key.fileobj.send(b"X-Slow: 1\r\n")
	            except OSError:
	                pass
	open(out + ".done", "w").write("408 %d\n503 %d\nopened %d\n" %
	    (got[b"408"], got[b"503"], opened))
	EOF
	SLOW_PID=$!
	local i
	for ((i = 0; i < 100; i++)); do
		[ -s "$BATS_TEST_TMPDIR/slow.ready" ] && break
		sleep 0.1
	done
	[ -s "$BATS_TEST_TMPDIR/slow.ready" ]
}

@test "proxy-slow: 4 x 64 trickling connections lock no fifth client out" {
	start_proxy
	trickle 24
	# the whole table was theirs: 4 x 64 = max_connections
	run cat "$BATS_TEST_TMPDIR/slow.ready"
	assert_output 256
	local end=$((SECONDS + 20)) n=0
	while ((SECONDS < end)); do
		run curl -s -o /dev/null -w '%{http_code}' --max-time 3 \
		    --interface 127.0.0.6 "http://127.0.0.1:$PORT/health"
		assert_output 200
		n=$((n + 1))
		sleep 0.5
	done
	[ "$n" -ge 10 ]
	wait "$SLOW_PID"
	SLOW_PID=
	# the slow heads were shed (503) and timed out (408), and opened anew
	run cat "$BATS_TEST_TMPDIR/slow.done"
	assert_line --regexp '^408 [1-9][0-9]*$'
	assert_line --regexp '^503 [1-9][0-9]*$'
}

# raw FORMAT [SECONDS]: send printf FORMAT to the proxy, what comes back
# in $output (tests/bin/raw-http)
raw() {
	# shellcheck disable=SC2059
	run bash -c 'printf "$1" | raw-http "$2" "$3"' _ "$1" "$PORT" "${2:-5}"
	assert_success
}

@test "proxy-slow: a head not in within header_timeout is answered 408 and closed" {
	printf '[proxy]\nheader_timeout = 1s\nidle_timeout = 2s\n' > "$AISTACK_CONFIG"
	start_proxy
	# the first request's head: timed from the opening
	raw 'GET /health HTTP/1.1\r\nHost: x\r\n'
	assert_line --index 0 'HTTP/1.1 408 Request Timeout'
	assert_line 'Connection: close'
	assert_line 'Content-Type: application/json'
	assert_line 'X-Content-Type-Options: nosniff'
	assert_line 'Cache-Control: no-store'
	assert_line --regexp '^Content-Security-Policy: '
	assert_line '{"error":"request header timeout"}'
	assert_line '<closed>'
	grep -q '^127\.0\.0\.1 .* "- /health" 408 35 ' "$LOG"
	# nothing at all: the same
	raw ''
	assert_line --index 0 'HTTP/1.1 408 Request Timeout'
	assert_line '<closed>'
	# a later request on a kept-alive connection: from its request line
	raw 'GET /health HTTP/1.1\r\nHost: x\r\n\r\nGET /health HTTP/1.1\r\n'
	assert_line --index 0 'HTTP/1.1 200 OK'
	assert_line 'HTTP/1.1 408 Request Timeout'
	assert_line '<closed>'
	# idle after an answer: closed after idle_timeout without a word
	raw 'GET /health HTTP/1.1\r\nHost: x\r\n\r\n' 5
	assert_line --index 0 'HTTP/1.1 200 OK'
	refute_line --partial '408'
	assert_line '<closed>'
}

@test "proxy-slow: header_timeout is checked" {
	printf '[proxy]\nheader_timeout = 0\n' > "$AISTACK_CONFIG"
	run aistack-proxy -l 127.0.0.1:0
	assert_failure 78
	assert_output --partial 'invalid header_timeout "0"'
}
