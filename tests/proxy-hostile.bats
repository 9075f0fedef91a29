#!/usr/bin/env bats
# aistack-proxy against a hostile upstream (tests/bin/proxy-hostile-upstream):
# after each answer the upstream writes a second, unasked response on the
# idle kept-alive connection.  Those bytes must never answer a later call.

load test_helper
load proxy_helper

setup() {
	common_setup
	unset AISTACK_PROXY_TOKEN
	PROXY_PID='' UP_PID=''
	UP="$BATS_TEST_TMPDIR/up"
	proxy-hostile-upstream "$UP/port" 3>&- &
	UP_PID=$!
	mkdir -p "$UP"
	local i
	for ((i = 0; i < 100; i++)); do
		[ -s "$UP/port" ] && break
		sleep 0.1
	done
	cat > "$AISTACK_CONFIG" <<-EOF
	[upstream h]
	url = http://127.0.0.1:$(cat "$UP/port")
	allow = /r0 /r1 /r2 /r3 /r4 /r5 /r6 /r7 /r8 /r9
	timeout = 2s
	EOF
	proxy_start
}

teardown() {
	[ -n "$PROXY_PID" ] && kill "$PROXY_PID" 2>/dev/null
	[ -n "$UP_PID" ] && kill "$UP_PID" 2>/dev/null
	wait 2>/dev/null || true
}

@test "bytes an upstream writes on an idle connection never answer a later call" {
	local i body strays
	for ((i = 0; i < 10; i++)); do
		strays=$(wc -l < "$UP/port.stray")
		body=$(curl -s --max-time 10 "$URL/upstream/h/r$i")
		[ "$body" = "{\"path\": \"/r$i\"}" ] || {
			echo "round $i: asked /r$i, got: $body"
			false
		}
		# wait until the upstream has written its stray response
		local j
		for ((j = 0; j < 100; j++)); do
			[ "$(wc -l < "$UP/port.stray")" -gt "$strays" ] && break
			sleep 0.05
		done
		sleep 0.1
	done
}
