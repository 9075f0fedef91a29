# shellcheck shell=bash
# The proxy suites' helpers: start and stop aistack-proxy, ask it things.

# proxy_start [ARG...]: aistack-proxy -v on 127.0.0.1, on a port the kernel
# picks, its standard error in $LOG ($BATS_TEST_TMPDIR/proxy.log unless
# set); sets PROXY_PID, PORT and URL, or shows the log and fails
proxy_start() {
	: "${LOG:=$BATS_TEST_TMPDIR/proxy.log}"
	: > "$LOG"	# before the background job opens it: sed reads it at once
	aistack-proxy -v -l 127.0.0.1:0 "$@" 2> "$LOG" 3>&- &
	PROXY_PID=$!
	local i
	PORT=
	for ((i = 0; i < 200; i++)); do
		PORT=$(sed -n 's/^aistack-proxy: listening on 127\.0\.0\.1:\([0-9]*\)$/\1/p' "$LOG")
		[ -n "$PORT" ] && break
		kill -0 "$PROXY_PID" 2>/dev/null || break
		sleep 0.05
	done
	if [ -z "$PORT" ]; then
		cat "$LOG" >&2
		return 1
	fi
	URL="http://127.0.0.1:$PORT"
}

stop_proxy() {
	if [ -n "${PROXY_PID:-}" ]; then
		kill "$PROXY_PID" 2>/dev/null || true
		wait "$PROXY_PID" 2>/dev/null || true
		PROXY_PID=
	fi
}

# code PATH [CURL-ARG...]: the status code of GET PATH, exactly as written
code() {
	local path=$1
	shift
	curl -s -o /dev/null -w '%{http_code}' --path-as-is --max-time 20 "$@" "$URL$path"
}

# fetch PATH [CURL-ARG...]: headers to $HDRS, body to $BODY, code echoed
fetch() {
	local path=$1
	shift
	curl -s -D "$HDRS" -o "$BODY" -w '%{http_code}' --path-as-is --max-time 20 "$@" "$URL$path"
}

# header NAME: the value of header NAME in $HDRS (first one)
header() {
	awk -v n="$1" 'BEGIN { n = tolower(n) } {
		sub(/\r$/, "")
		i = index($0, ":")
		if (i > 0 && tolower(substr($0, 1, i - 1)) == n) {
			print substr($0, i + 2); exit
		}
	}' "$HDRS"
}

# upstream_stub_start: tests/bin/proxy-upstream-stub for the whole file
# (setup_file); exports UP_DIR and UP_PORT
upstream_stub_start() {
	export UP_DIR="$BATS_FILE_TMPDIR/upstream"
	mkdir -p "$UP_DIR"
	proxy-upstream-stub "$UP_DIR/port" 3>&- &
	echo $! > "$UP_DIR/pid"
	local i
	for ((i = 0; i < 100; i++)); do
		[ -s "$UP_DIR/port" ] && break
		sleep 0.1
	done
	UP_PORT=$(cat "$UP_DIR/port")
	export UP_PORT
}

upstream_stub_stop() {
	[ -f "$UP_DIR/pid" ] && kill "$(cat "$UP_DIR/pid")" 2>/dev/null || true
}
