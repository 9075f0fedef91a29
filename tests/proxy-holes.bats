#!/usr/bin/env bats
# aistack-proxy: the holes of issue 15 that are not the server's (1, 4, 7
# and 9): the token file's rules, the access log's escaping, the proxy's
# own Cache-Control and HEAD through /upstream/.  One upstream stub
# (tests/bin/proxy-upstream-stub) serves the whole suite; every proxy
# listens on a port the kernel picks (-l 127.0.0.1:0).

load test_helper
load proxy_helper

setup_file() {
	upstream_stub_start
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
	TOKEN="$BATS_TEST_TMPDIR/token"
	cat > "$AISTACK_CONFIG" <<-EOF
	[upstream aidb]
	url = http://127.0.0.1:$UP_PORT
	allow = /v1/health /echo /ctl /nolength
	timeout = 2s
	EOF
}

teardown() {
	stop_proxy
}

# start_proxy [ARG...]: start aistack-proxy on a free port; sets URL,
# PROXY_PID, LOG (its standard error).
start_proxy() {
	proxy_start "$@"
}

# refused_token: aistack-proxy with token_file = $TOKEN must not start
# (bounded: a proxy that starts, or hangs, is killed and fails the test)
refused_token() {
	printf '[proxy]\ntoken_file = %s\n' "$TOKEN" > "$AISTACK_CONFIG"
	run timeout 10 aistack-proxy -l 127.0.0.1:0
}

# --- hole 1: the token file ------------------------------------------------

@test "proxy-holes: a token file with a NUL byte is refused; a token is its bytes (hole 1)" {
	printf '\0binarytokenbytes' > "$TOKEN"
	chmod 0600 "$TOKEN"
	refused_token
	assert_failure 78
	assert_output "aistack-proxy: $AISTACK_CONFIG:2: token_file: $TOKEN: a NUL byte at offset 0"
	printf 'x\0y' > "$TOKEN"
	refused_token
	assert_failure 78
	assert_output --partial "$TOKEN: a NUL byte at offset 1"
	# a token is every byte but one newline, compared over its length
	printf 'x\377y z\r\n' > "$TOKEN"
	printf '[proxy]\ntoken_file = %s\n' "$TOKEN" >> "$AISTACK_CONFIG"
	start_proxy
	[ "$(code /api/stats)" = 401 ]
	[ "$(code /api/stats -H 'Authorization: Bearer x')" = 401 ]
	[ "$(code /api/stats -H "$(printf 'Authorization: Bearer x\377y')")" = 401 ]
	[ "$(code /api/stats -H "$(printf 'Authorization: Bearer x\377y z')")" = 200 ]
}

@test "proxy-holes: empty, white-space-only and control-byte tokens are refused (hole 1)" {
	: > "$TOKEN"
	chmod 0600 "$TOKEN"
	refused_token
	assert_failure 78
	assert_output --partial "$TOKEN: empty token"
	printf '\n' > "$TOKEN"
	refused_token
	assert_failure 78
	assert_output --partial "$TOKEN: empty token"
	printf '   \r\n' > "$TOKEN"
	refused_token
	assert_failure 78
	assert_output --partial "$TOKEN: white space only"
	printf 'abc\033[0m\n' > "$TOKEN"
	refused_token
	assert_failure 78
	assert_output --partial "$TOKEN: a control byte (0x1b) at offset 3"
	printf 'abc\n\n' > "$TOKEN"
	refused_token
	assert_failure 78
	assert_output --partial "$TOKEN: a control byte (0x0a) at offset 3"
	export AISTACK_PROXY_TOKEN='   '
	run timeout 10 aistack-proxy -l 127.0.0.1:0
	assert_failure 78
	assert_output "aistack-proxy: AISTACK_PROXY_TOKEN: white space only"
}

@test "proxy-holes: a FIFO, a directory and a link are not token files (hole 1)" {
	mkfifo -m 0600 "$TOKEN"
	# a FIFO nobody writes to hung start-up forever
	refused_token
	assert_failure 78
	assert_output --partial "$TOKEN: not a regular file"
	rm "$TOKEN"
	mkdir -m 0700 "$TOKEN"
	refused_token
	assert_failure 78
	assert_output --partial "$TOKEN: not a regular file"
	refute_output --partial "too open"
	rmdir "$TOKEN"
	printf 's3cret\n' > "$BATS_TEST_TMPDIR/real"
	chmod 0600 "$BATS_TEST_TMPDIR/real"
	ln -s "$BATS_TEST_TMPDIR/real" "$TOKEN"
	refused_token
	assert_failure 78
	assert_output --partial "$TOKEN: a symbolic link"
}

@test "proxy-holes: a token file owned by another user is refused, root's is not (hole 1)" {
	[ "$(id -u)" -eq 0 ] || skip "needs root to give a file away"
	printf 's3cret\n' > "$TOKEN"
	chmod 0600 "$TOKEN"
	chown 65534 "$TOKEN"
	refused_token
	assert_failure 78
	assert_output --partial "$TOKEN: owned by uid 65534; a secret file must be owned by the user reading it (uid 0) or root"
	chown 0 "$TOKEN"
	start_proxy
	[ "$(code /api/stats -H 'Authorization: Bearer s3cret')" = 200 ]
}

# --- hole 4: the access log ------------------------------------------------

# raw BYTES: send printf's BYTES to the proxy on a socket of its own; the
# answer's status line is echoed
raw() {
	# shellcheck disable=SC2059
	printf "$1" | python3 -c '
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10)
s.sendall(sys.stdin.buffer.read())
s.shutdown(socket.SHUT_WR)
data = b""
while True:
    d = s.recv(65536)
    if not d:
        break
    data += d
print(data.split(b"\r\n", 1)[0].decode("latin-1"))
' "$PORT"
}

@test "proxy-holes: the access log escapes the method as it does the target (hole 4)" {
	local alog="$BATS_TEST_TMPDIR/access.log" bad
	start_proxy --access-log "$alog"
	run raw '\033]0;pwn\007 /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'
	run raw 'G"E\\T\177\303 /health?\033[2J HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'
	stop_proxy
	cat "$alog"
	[ "$(wc -l < "$alog")" -eq 2 ]
	# no control byte, '"' inside a field, or byte >= 0x7f reaches the log
	bad=$(LC_ALL=C grep -c '[^ -~]' "$alog" || true)
	[ "$bad" -eq 0 ]
	run cat "$alog"
	# (libmicrohttpd may refuse such a method itself: then none is logged)
	assert_line --index 0 --regexp '^127\.0\.0\.1 - - \[[^]]*\] "(\\x1b\]0;pwn\\x07|-) /health" '
	assert_line --index 1 --regexp '^127\.0\.0\.1 - - \[[^]]*\] "(G\\x22E\\x5cT\\x7f\\xc3|-) /health\?\\x1b\[2J" '
}

# --- hole 7: Cache-Control -------------------------------------------------

@test "proxy-holes: an upstream header with a control byte is dropped and said; the proxy's Cache-Control stays (hole 7)" {
	local path
	start_proxy
	[ "$(fetch /upstream/aidb/ctl)" = 200 ]
	cat "$HDRS"
	[ "$(header Cache-Control)" = no-store ]
	[ "$(grep -ci '^Cache-Control:' "$HDRS")" -eq 1 ]
	[ "$(grep -ci '^Set-Cookie' "$HDRS")" -eq 0 ]
	# the clean header of the same answer passes
	[ "$(header ETag)" = '"ctl"' ]
	grep -F 'aistack-proxy: aidb: /upstream/aidb/ctl: header Cache-Control dropped: a control byte (0x0d) in its value' "$LOG"
	# HEAD too; an upstream's clean Cache-Control passes instead of ours
	[ "$(fetch /upstream/aidb/ctl -I)" = 200 ]
	[ "$(header Cache-Control)" = no-store ]
	[ "$(fetch /upstream/aidb/v1/health)" = 200 ]
	[ "$(header Cache-Control)" = max-age=5 ]
	[ "$(grep -ci '^Cache-Control:' "$HDRS")" -eq 1 ]
	# and every answer of the proxy's own
	for path in / /health /metrics /api/stats /nope /upstream/aidb/not-allowed /upstream/nope/x; do
		fetch "$path" > /dev/null
		[ -n "$(header Cache-Control)" ] || {
			echo "$path: no Cache-Control"
			cat "$HDRS"
			false
		}
	done
}

# --- hole 9: HEAD through /upstream/ ----------------------------------------

@test "proxy-holes: HEAD through /upstream/ answers with the upstream's Content-Length, or none (hole 9)" {
	start_proxy
	[ "$(fetch /upstream/aidb/v1/health)" = 200 ]
	[ "$(header Content-Length)" = 11 ]
	[ "$(fetch /upstream/aidb/v1/health -I)" = 200 ]
	cat "$HDRS"
	[ "$(header Content-Length)" = 11 ]
	[ "$(header Content-Type)" = "application/json; charset=utf-8" ]
	[ "$(header Cache-Control)" = max-age=5 ]
	# none when the upstream sent none (the connection closes after it,
	# as HTTP/1.0 does: libmicrohttpd would announce chunks and send one)
	[ "$(fetch /upstream/aidb/nolength -I)" = 200 ]
	cat "$HDRS"
	[ -z "$(header Content-Length)" ]
	[ -z "$(header Transfer-Encoding)" ]
	[ "$(header Connection)" = close ]
	[ "$(header Content-Type)" = text/plain ]
	[ "$(header Cache-Control)" = no-store ]
	# a HEAD with a length leaves its connection fit for the next request
	run curl -s -I -w '%{http_code} %{num_connects}\n' --max-time 10 \
	    -o /dev/null "$URL/upstream/aidb/v1/health" \
	    -o /dev/null "$URL/upstream/aidb/v1/health"
	assert_output "200 1
200 0"
}

@test "proxy-holes: --rate is at least one a minute: 59/h is refused, 60/h is not (hole 9, as the man page says)" {
	run timeout 10 aistack-proxy --rate 59/h -l 127.0.0.1:0
	assert_failure 64
	assert_output 'aistack-proxy: --rate: invalid value "59/h"'
	run timeout 10 aistack-proxy --rate 0/min -l 127.0.0.1:0
	assert_failure 64
	printf '[proxy]\nrate = 59/h\n' > "$AISTACK_CONFIG"
	run timeout 10 aistack-proxy -l 127.0.0.1:0
	assert_failure 78
	assert_output "aistack-proxy: $AISTACK_CONFIG:2: invalid rate \"59/h\""
	start_proxy --rate 60/h
	fetch /health > /dev/null
	[ "$(header RateLimit-Policy)" = '"client";q=1;w=60' ]
	# the bound is documented
	grep -F '(59/h is refused, exit 64 on the command line, 78 in the file).' "$TESTS_DIR/../man/aistack-proxy.1"
}
