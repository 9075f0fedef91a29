#!/usr/bin/env bats
# What libmicrohttpd (Debian 12: 0.9.75) answers by itself, before the
# proxy sees a request, pinned byte for byte where it matters, so that a
# change of the library is noticed (aistack-proxy(1), "What libmicrohttpd
# answers by itself"); and what the proxy refuses itself that the library
# lets through.  Raw requests: tests/bin/raw-http.

load test_helper
load proxy_helper

setup() {
	common_setup
	unset AISTACK_PROXY_TOKEN
	PROXY_PID=''
	LOG="$BATS_TEST_TMPDIR/proxy.log"
}

teardown() {
	[ -n "$PROXY_PID" ] && kill "$PROXY_PID" 2>/dev/null
	wait 2>/dev/null || true
}

# start_proxy [ARG...]: aistack-proxy on a free port; sets PORT
start_proxy() {
	proxy_start "$@"
}

# raw FORMAT: send printf FORMAT, the answer in $output
raw() {
	# shellcheck disable=SC2059
	run bash -c 'printf "$1" | raw-http "$2" 3' _ "$1" "$PORT"
	assert_success
}

# library_answer STATUS: $output is libmicrohttpd's own answer STATUS,
# once, with none of the proxy's headers, and the connection closed
library_answer() {
	assert_line --index 0 "HTTP/1.1 $1"
	assert_line 'Connection: close'
	assert_line '<closed>'
	[ "$(grep -c '^HTTP/1.1 ' <<< "$output")" -eq 1 ]
}

# no_proxy_headers: $output has none of the headers every proxy answer has
no_proxy_headers() {
	refute_line --regexp '^(X-Content-Type-Options|Content-Security-Policy|Content-Type|Cache-Control|RateLimit):'
}

@test "proxy-mhd: the library's own 400, 414, 431 and 505, and a request line it drops" {
	start_proxy
	# white space before a colon (refused at MHD_OPTION_STRICT_FOR_CLIENT -1)
	raw 'GET /health HTTP/1.1\r\nHost: x\r\nX-A : b\r\n\r\n'
	no_proxy_headers
	library_answer '400 Bad Request'
	assert_line --partial 'Your HTTP request was syntactically incorrect.'
	raw 'GET /health HTTP/1.1\r\nHost: x\r\nNoColon\r\n\r\n'
	no_proxy_headers
	library_answer '400 Bad Request'
	raw "GET /$(head -c 40000 /dev/zero | tr '\0' a) HTTP/1.1\r\nHost: x\r\n\r\n"
	no_proxy_headers
	library_answer '414 URI Too Long'
	raw "GET /health HTTP/1.1\r\nHost: x\r\nX-Big: $(head -c 40000 /dev/zero | tr '\0' a)\r\n\r\n"
	no_proxy_headers
	library_answer '431 Request Header Fields Too Large'
	raw 'GET /health HTTP/2.0\r\nHost: x\r\n\r\n'
	no_proxy_headers
	library_answer '505 HTTP Version Not Supported'
	raw 'GET /health HTTP/1.x\r\nHost: x\r\n\r\n'
	no_proxy_headers
	library_answer '400 Bad Request'
	# no space in the request line: closed without a byte
	raw 'GARBAGE\r\n\r\n'
	assert_output '<closed>'
}

@test "proxy-mhd: a bad Content-Length gets the library's header block twice" {
	start_proxy
	raw 'GET /health HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n'
	no_proxy_headers
	run grep -c '^HTTP/1.1 400 Bad Request$' <<< "$output"
	assert_output 2
	raw 'GET /health HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999999\r\n\r\n'
	no_proxy_headers
	run grep -c '^HTTP/1.1 413 Content Too Large$' <<< "$output"
	assert_output 2
}

@test "proxy-mhd: the library's own answers after the request line cost a token, before it none" {
	start_proxy --rate 2/min
	raw 'GET /health HTTP/1.1\r\nHost: x\r\nX-A : b\r\n\r\n'
	library_answer '400 Bad Request'
	raw 'GET /health HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n'
	assert_line --index 0 'HTTP/1.1 400 Bad Request'
	raw 'GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'
	assert_line --index 0 'HTTP/1.1 429 Too Many Requests'
	stop_and_restart() {
		kill "$PROXY_PID"
		wait "$PROXY_PID" || true
		start_proxy --rate 1/min
	}
	stop_and_restart
	# an over-long target or a bad version: no request line, no token
	raw "GET /$(head -c 40000 /dev/zero | tr '\0' a) HTTP/1.1\r\nHost: x\r\n\r\n"
	library_answer '414 URI Too Long'
	raw 'GET /health HTTP/2.0\r\nHost: x\r\n\r\n'
	library_answer '505 HTTP Version Not Supported'
	raw 'GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'
	assert_line --index 0 'HTTP/1.1 200 OK'
}

@test "proxy-mhd: the proxy refuses a missing or second Host and control bytes in a field itself" {
	start_proxy
	raw 'GET /health HTTP/1.1\r\nConnection: close\r\n\r\n'
	assert_line --index 0 'HTTP/1.1 400 Bad Request'
	assert_line 'X-Content-Type-Options: nosniff'
	assert_line 'Content-Type: application/json'
	assert_line --regexp '^RateLimit: '
	assert_line '{"error":"missing Host"}'
	raw 'GET /health HTTP/1.1\r\nHost: x\r\nHost: y\r\nConnection: close\r\n\r\n'
	assert_line --index 0 'HTTP/1.1 400 Bad Request'
	assert_line '{"error":"more than one Host"}'
	# a lone CR inside a value, a control byte
	raw 'GET /health HTTP/1.1\r\nHost: x\r\nX-A: a\rSet-Cookie: b\r\nConnection: close\r\n\r\n'
	assert_line --index 0 'HTTP/1.1 400 Bad Request'
	assert_line '{"error":"bad header field"}'
	raw 'GET /health HTTP/1.1\r\nHost: x\r\nX-A: a\033b\r\nConnection: close\r\n\r\n'
	assert_line '{"error":"bad header field"}'
	# HTTP/1.0 needs no Host
	raw 'GET /health HTTP/1.0\r\n\r\n'
	assert_line --index 0 'HTTP/1.1 200 OK'
	grep -q '"GET /health" 400 ' "$LOG"
}

@test "proxy-mhd: what the library lets through: bare LF lines, a value cut at a NUL" {
	start_proxy
	# RFC 9112 2.2 lets a recipient take a bare LF for a line's end
	raw 'GET /health HTTP/1.1\nHost: x\nConnection: close\n\n'
	assert_line --index 0 'HTTP/1.1 200 OK'
	# the library cuts the value at the NUL: the proxy never sees it
	raw 'GET /health HTTP/1.1\r\nHost: x\r\nX-A: a\000\001b\r\nConnection: close\r\n\r\n'
	assert_line --index 0 'HTTP/1.1 200 OK'
}
