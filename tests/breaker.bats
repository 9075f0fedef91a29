#!/usr/bin/env bats
# aistack-breaker: pass-through, the shared state machine across processes,
# trial slots, timeouts, probes against a local HTTP stub and a throwaway
# PostgreSQL cluster, status/reset/trip and the command line.

load test_helper
bats_require_minimum_version 1.5.0

PG_BIN=/usr/lib/postgresql/15/bin

# Run a command as the postgres user when root (initdb refuses root).
pg_as() {
	if [ "$(id -u)" -eq 0 ]; then
		runuser -u postgres -- "$@"
	else
		"$@"
	fi
}

# The HTTP stub: /ok 200, /fail 503, /redirect 302, /slow answers after 30 s.
write_stub() {
	cat > "$1" <<'EOF'
import http.server, socketserver, sys, time
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path == "/slow":
            time.sleep(30)
        code = {"/ok": 200, "/fail": 503, "/redirect": 302}.get(self.path, 404)
        self.send_response(code)
        if code == 302:
            self.send_header("Location", "/ok")
        self.send_header("Content-Length", "3")
        self.end_headers()
        self.wfile.write(b"hi\n")
    def log_message(self, *a):
        pass
class S(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
s = S(("127.0.0.1", 0), H)
with open(sys.argv[1] + ".tmp", "w") as f:
    f.write(str(s.server_address[1]))
import os; os.rename(sys.argv[1] + ".tmp", sys.argv[1])
s.serve_forever()
EOF
}

# wait_for FILE: until it exists (60 s at most).
wait_for() {
	local i
	for ((i = 0; i < 600; i++)); do
		[ -e "$1" ] && return 0
		sleep 0.1
	done
	echo "timed out waiting for $1" >&2
	return 1
}

# gone PID: true once the process has died (a zombie counts as dead).
gone() {
	local i
	for ((i = 0; i < 100; i++)); do
		[ -e "/proc/$1" ] || return 0
		grep -q '^[0-9]* (.*) Z' "/proc/$1/stat" 2>/dev/null && return 0
		sleep 0.1
	done
	return 1
}

setup_file() {
	local dir
	dir=$(mktemp -d /tmp/aistack-breaker-suite.XXXXXX)
	chmod 0755 "$dir"
	export SUITE_DIR=$dir
	# the HTTP stub
	write_stub "$dir/stub.py"
	python3 "$dir/stub.py" "$dir/http.port" > /dev/null 2>&1 3>&- &
	echo $! > "$dir/http.pid"
	# a port with nothing behind it
	python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])' \
		> "$dir/closed.port"
	# the PostgreSQL cluster, on a unix socket of its own
	mkdir "$dir/pg" "$dir/pgsock"
	[ "$(id -u)" -ne 0 ] || chown postgres: "$dir/pg" "$dir/pgsock"
	pg_as "$PG_BIN/initdb" -D "$dir/pg/data" -A trust -U postgres \
		--no-sync > "$dir/initdb.log" 2>&1
	pg_as "$PG_BIN/pg_ctl" -D "$dir/pg/data" -l "$dir/pg/log" -w \
		-o "-k $dir/pgsock -c listen_addresses= -F" start > /dev/null 3>&-
	wait_for "$dir/http.port"
}

teardown_file() {
	pg_as "$PG_BIN/pg_ctl" -D "$SUITE_DIR/pg/data" -m immediate stop \
		> /dev/null 2>&1 || true
	kill "$(cat "$SUITE_DIR/http.pid")" 2>/dev/null || true
	rm -rf "$SUITE_DIR"
}

setup() {
	common_setup
	T=$BATS_TEST_TMPDIR
	HTTP="http://127.0.0.1:$(cat "$SUITE_DIR/http.port")"
	PG="postgresql:///postgres?host=$SUITE_DIR/pgsock&user=postgres"
	BREAKERS=$AISTACK_STATE_DIR/breakers
	unset PGPASSWORD PGHOST PGPORT PGUSER PGDATABASE
}

# field NAME KEY: one field of "status --json".
field() {
	aistack-breaker status --json "$1" | jq -r ".$2"
}

# stored NAME KEY: one field of the state file.
stored() {
	jq -r ".$2" "$BREAKERS/$1"
}

# expire NAME: make the open period over, as a reboot does (another boot id).
expire() {
	local f=$BREAKERS/$1
	jq -c '.boot_id = "00000000-0000-0000-0000-000000000000"' "$f" > "$f.new"
	mv "$f.new" "$f"
}

# open_it NAME: five failures.
open_it() {
	local i
	for i in 1 2 3 4 5; do
		aistack-breaker run "$1" -- false || true
	done
}

@test "output, input and exit status pass through untouched" {
	printf 'in\x00put\n' > "$T/in"
	set +e
	aistack-breaker run b -- sh -c 'cat; printf "out\n"; printf "err\n" >&2; exit 7' \
		< "$T/in" > "$T/out" 2> "$T/err"
	rc=$?
	set -e
	assert_equal "$rc" 7
	assert_equal "$(od -An -c "$T/out" | tr -s ' ')" "$(printf 'in\x00put\nout\n' | od -An -c | tr -s ' ')"
	assert_equal "$(cat "$T/err")" "err"
	run aistack-breaker run b -- printf 'a  b\n'
	assert_success
	assert_output 'a  b'
	assert_equal "$(field b failures)" 0
	# arguments reach the command exactly, "--" and options included
	run aistack-breaker run b -- sh -c 'printf "[%s]" "$@"' sh -v -- '' 'x y'
	assert_success
	assert_output '[-v][--][][x y]'
}

@test "a closed standard output is the command's business" {
	run bash -c 'aistack-breaker run b -- true >&-; echo "rc=$?"'
	assert_output 'rc=0'
	run bash -c 'aistack-breaker run b -- sh -c "echo x 2>/dev/null || exit 9" >&-; echo "rc=$?"'
	assert_output 'rc=9'
}

@test "a signal death is 128+N and a failure" {
	run aistack-breaker run b -- sh -c 'kill -USR1 $$'
	assert_failure 138
	assert_equal "$(field b failures)" 1
}

@test "five consecutive failures open it; then the command is not run (75)" {
	for i in 1 2 3 4; do
		run aistack-breaker run b -- false
		assert_failure 1
	done
	assert_equal "$(field b state)" closed
	assert_equal "$(field b failures)" 4
	run aistack-breaker run --open-for 1h b -- false
	assert_failure 1
	assert_equal "$(field b state)" open
	run aistack-breaker run b -- touch "$T/ran"
	assert_failure 75
	assert_output --regexp '^aistack-breaker: b is open; retry in [0-9]+s$'
	n=${output##*retry in }
	n=${n%s}
	[ "$n" -ge 3000 ] && [ "$n" -le 3600 ]
	[ ! -e "$T/ran" ]
	assert_equal "$(field b opened)" 1
	assert_equal "$(stored b open_ms)" 3600000
}

@test "a success resets the consecutive count" {
	for i in 1 2 3 4; do aistack-breaker run b -- false || true; done
	run aistack-breaker run b -- true
	assert_success
	assert_equal "$(field b failures)" 0
	for i in 1 2 3 4; do aistack-breaker run b -- false || true; done
	assert_equal "$(field b state)" closed
	run aistack-breaker run --failures 2 b -- false
	assert_failure 1
	assert_equal "$(field b state)" open
}

@test "failures from separate processes add up" {
	for i in 1 2 3 4; do
		aistack-breaker run b -- sh -c 'exit 3' 3>&- &
	done
	wait
	assert_equal "$(field b failures)" 4
	assert_equal "$(field b state)" closed
	run aistack-breaker run b -- false
	assert_equal "$(field b state)" open
}

@test "half-open after --open-for; two successes close it" {
	run aistack-breaker run --failures 1 --open-for 3s b -- false
	assert_failure 1
	run aistack-breaker run b -- true
	assert_failure 75
	sleep 3.2
	assert_equal "$(field b state)" half_open
	assert_equal "$(field b retry_in)" 0
	run aistack-breaker run -v b -- echo trial
	assert_success
	assert_line --index 0 'aistack-breaker: b: half-open: trial call'
	assert_line --index 1 'trial'
	assert_line --index 2 'aistack-breaker: b: success'
	assert_equal "$(stored b state)" half_open
	assert_equal "$(field b successes)" 1
	run aistack-breaker run -v b -- true
	assert_success
	assert_line --index 1 'aistack-breaker: b: success; now closed'
	assert_equal "$(field b state)" closed
	run aistack-breaker run b -- true
	assert_success
	assert_equal "$(stored b closed)" 1
	assert_equal "$(stored b half_opened)" 1
}

@test "a failed trial reopens it" {
	aistack-breaker run --failures 1 --open-for 1s b -- false || true
	sleep 1.2
	run aistack-breaker run b -- true
	assert_success
	run aistack-breaker run -v b -- false
	assert_failure 1
	assert_line --index 0 'aistack-breaker: b: half-open: trial call'
	assert_line --index 1 'aistack-breaker: b: failure; now open'
	assert_equal "$(field b state)" open
	assert_equal "$(field b opened)" 2
	run aistack-breaker run b -- true
	assert_failure 75
}

@test "the open period grows on repeated failed trials, with jitter, up to --max-open-for" {
	aistack-breaker run --failures 1 --open-for 10s b -- false || true
	assert_equal "$(stored b open_ms)" 10000
	expire b
	aistack-breaker run --open-for 10s --max-open-for 35s b -- false || true
	p=$(stored b open_ms)
	[ "$p" -ge 16000 ] && [ "$p" -le 20000 ]
	assert_equal "$(stored b streak)" 1
	expire b
	aistack-breaker run --open-for 10s --max-open-for 35s b -- false || true
	p=$(stored b open_ms)
	[ "$p" -ge 32000 ] && [ "$p" -le 35000 ]
	expire b
	aistack-breaker run --open-for 10s --max-open-for 35s b -- false || true
	p=$(stored b open_ms)
	[ "$p" -ge 28000 ] && [ "$p" -le 35000 ]
	assert_equal "$(stored b streak)" 3
	# closing starts over at --open-for
	expire b
	aistack-breaker run b -- true
	aistack-breaker run b -- true
	assert_equal "$(field b state)" closed
	aistack-breaker run --failures 1 --open-for 10s b -- false || true
	assert_equal "$(stored b open_ms)" 10000
}

@test "the default cap is 5m" {
	aistack-breaker trip b
	for i in 1 2 3 4 5 6 7; do
		expire b
		aistack-breaker run b -- false || true
	done
	p=$(stored b open_ms)
	[ "$p" -ge 240000 ] && [ "$p" -le 300000 ]
}

@test "10 concurrent calls while half-open: exactly one trial runs" {
	aistack-breaker trip b
	expire b
	for i in $(seq 10); do
		(
			set +e
			aistack-breaker run b -- sh -c \
				'echo ran >> "$0/ran"; while [ ! -e "$0/release" ]; do sleep 0.05; done' "$T" \
				2> "$T/err.$i"
			echo $? > "$T/rc.$i.tmp"
			mv "$T/rc.$i.tmp" "$T/rc.$i"
		) 3>&- &
	done
	# the refusals come back while the trial holds its slot
	for ((i = 0; i < 600; i++)); do
		done_=$(ls "$T" | grep -c '^rc\.[0-9]*$' || true)
		ran=$(cat "$T/ran" 2>/dev/null | wc -l)
		[ $((done_ + ran)) -ge 10 ] && break
		sleep 0.1
	done
	touch "$T/release"
	wait
	assert_equal "$(wc -l < "$T/ran")" 1
	assert_equal "$(cat "$T"/rc.* | grep -c '^75$')" 9
	assert_equal "$(cat "$T"/rc.* | grep -c '^0$')" 1
	assert_equal "$(cat "$T"/err.* | grep -c '^aistack-breaker: b is open; retry in 1s$')" 9
	assert_equal "$(field b successes)" 1
}

@test "--half-open 3 lets three trials run at once" {
	aistack-breaker trip b
	expire b
	for i in $(seq 6); do
		(
			set +e
			aistack-breaker run --half-open 3 b -- sh -c \
				'echo ran >> "$0/ran"; while [ ! -e "$0/release" ]; do sleep 0.05; done' "$T" \
				2> /dev/null
			echo $? > "$T/rc.$i.tmp"
			mv "$T/rc.$i.tmp" "$T/rc.$i"
		) 3>&- &
	done
	for ((i = 0; i < 600; i++)); do
		done_=$(ls "$T" | grep -c '^rc\.[0-9]*$' || true)
		ran=$(cat "$T/ran" 2>/dev/null | wc -l)
		[ $((done_ + ran)) -ge 6 ] && break
		sleep 0.1
	done
	touch "$T/release"
	wait
	assert_equal "$(wc -l < "$T/ran")" 3
	assert_equal "$(cat "$T"/rc.* | grep -c '^75$')" 3
	assert_equal "$(field b state)" closed
}

@test "the trial slot of a kill -9ed holder is reclaimed" {
	aistack-breaker trip b
	expire b
	aistack-breaker run b -- sh -c 'echo $$ > "$0/child.tmp"; mv "$0/child.tmp" "$0/child"; exec sleep 300' "$T" \
		> /dev/null 2>&1 3>&- &
	holder=$!
	wait_for "$T/child"
	run aistack-breaker run b -- true
	assert_failure 75
	assert_output 'aistack-breaker: b is open; retry in 1s'
	kill -9 "$holder"
	gone "$holder"
	run aistack-breaker run b -- true
	assert_success
	assert_equal "$(field b successes)" 1
	kill "$(cat "$T/child")"
}

@test "--timeout kills the whole process group: 124, counted as a failure" {
	start=$(date +%s)
	run aistack-breaker run --timeout 1s b -- sh -c \
		'sleep 300 & echo $! > "$0/bg"; exec sleep 300' "$T"
	assert_failure 124
	assert_output ''
	[ $(($(date +%s) - start)) -lt 60 ]
	gone "$(cat "$T/bg")"
	assert_equal "$(field b failures)" 1
}

@test "--timeout: what ignores SIGTERM is killed too" {
	start=$(date +%s)
	run aistack-breaker run --timeout 500ms b -- sh -c \
		'trap "" TERM; sleep 300 & echo $! > "$0/bg"; while :; do sleep 1; done' "$T"
	assert_failure 124
	[ $(($(date +%s) - start)) -lt 60 ]
	gone "$(cat "$T/bg")"
	assert_equal "$(field b failures)" 1
}

@test "a command that ends in time is unaffected by --timeout" {
	run aistack-breaker run --timeout 1m b -- sh -c 'echo fine; exit 0'
	assert_success
	assert_output 'fine'
}

@test "127 for a missing program, 126 for one that cannot run; not counted" {
	run -127 aistack-breaker run b -- no-such-program-aistack
	assert_output 'aistack-breaker: no-such-program-aistack: No such file or directory'
	printf 'echo hi\n' > "$T/noexec"
	chmod 0644 "$T/noexec"
	run aistack-breaker run b -- "$T/noexec"
	assert_failure 126
	assert_output "aistack-breaker: $T/noexec: Permission denied"
	assert_equal "$(field b failures)" 0
}

@test "a signal sent to aistack-breaker is passed on and the call not counted" {
	aistack-breaker run b -- sh -c 'echo $$ > "$0/child.tmp"; mv "$0/child.tmp" "$0/child"; exec sleep 300' "$T" \
		> /dev/null 2>&1 3>&- &
	holder=$!
	wait_for "$T/child"
	kill -TERM "$holder"
	set +e
	wait "$holder"
	rc=$?
	set -e
	assert_equal "$rc" 143
	gone "$(cat "$T/child")"
	assert_equal "$(field b failures)" 0
}

@test "probe http: 2xx is up, 5xx, 3xx, refused and timeouts are down" {
	run aistack-breaker probe b "$HTTP/ok"
	assert_success
	assert_output ''
	run aistack-breaker probe b "$HTTP/fail"
	assert_failure 69
	assert_output 'aistack-breaker: b: probe: HTTP status 503'
	run aistack-breaker probe b "$HTTP/redirect"
	assert_failure 69
	assert_output 'aistack-breaker: b: probe: HTTP status 302'
	run aistack-breaker probe b "http://127.0.0.1:$(cat "$SUITE_DIR/closed.port")/"
	assert_failure 69
	assert_output --regexp '^aistack-breaker: b: probe: .*(onnect|refused)'
	run aistack-breaker probe b "$HTTP/missing"
	assert_failure 69
	assert_output 'aistack-breaker: b: probe: HTTP status 404'
	assert_equal "$(field b failures)" 4
	start=$(date +%s)
	run aistack-breaker probe --timeout 500ms b "$HTTP/slow"
	assert_failure 69
	assert_output --regexp '^aistack-breaker: b: probe: .*[Tt]imeout|timed out'
	[ $(($(date +%s) - start)) -lt 20 ]
	assert_equal "$(field b state)" open
	run aistack-breaker probe b "$HTTP/ok"
	assert_failure 75
	assert_output --regexp '^aistack-breaker: b is open; retry in [0-9]+s$'
	expire b
	run aistack-breaker probe b "$HTTP/ok"
	assert_success
	run aistack-breaker probe b "$HTTP/ok"
	assert_success
	assert_equal "$(field b state)" closed
}

@test "probe postgres: a connection is up, no server is down" {
	run aistack-breaker probe pg "$PG"
	assert_success
	assert_output ''
	down="postgresql:///postgres?host=$SUITE_DIR/pgsock&port=1&user=postgres"
	for i in 1 2 3 4 5; do
		run aistack-breaker probe pg "$down"
		assert_failure 69
		assert_output --regexp '^aistack-breaker: pg: probe: connection to server on socket .* failed: No such file or directory$'
	done
	assert_equal "$(field pg state)" open
	run aistack-breaker probe pg "$PG"
	assert_failure 75
	aistack-breaker reset pg
	run aistack-breaker probe pg "postgres:///postgres?host=$SUITE_DIR/pgsock&user=postgres"
	assert_success
	# a database that does not exist: the server says no, that is down
	run aistack-breaker probe pg "postgresql:///nosuchdb?host=$SUITE_DIR/pgsock&user=postgres"
	assert_failure 69
	assert_output --partial 'database "nosuchdb" does not exist'
}

@test "probe refuses passwords in URLs and unknown schemes without counting" {
	run aistack-breaker probe pg "postgresql://u:secret@localhost/db"
	assert_failure 64
	assert_output 'aistack-breaker: URL carries a password; use PGPASSWORD or PGPASSFILE instead'
	run aistack-breaker probe pg "postgresql:///db?password=secret"
	assert_failure 64
	refute_output --partial secret
	run aistack-breaker probe h "http://u:secret@127.0.0.1/"
	assert_failure 64
	refute_output --partial secret
	run aistack-breaker probe h "ftp://127.0.0.1/"
	assert_failure 64
	assert_output 'aistack-breaker: unsupported URL scheme (expected http://, https://, postgres:// or postgresql://)'
	[ ! -e "$BREAKERS/pg" ]
	[ ! -e "$BREAKERS/h" ]
}

@test "status: text and JSON Lines, every breaker or those named" {
	run aistack-breaker status
	assert_success
	assert_output ''
	aistack-breaker run zeta -- false || true
	aistack-breaker trip --open-for 1h alpha
	run aistack-breaker status --json
	assert_success
	assert_line --index 0 --regexp '^\{"name":"alpha","state":"open","failures":0,"successes":0,"retry_in":3[0-9]{3},"last_failure":null,"opened":1,"half_opened":0,"closed":0,"calls":\{"success":0,"failure":0,"ignored":0,"refused":0\},"last_success":null,"configured":false\}$'
	assert_line --index 1 --regexp '^\{"name":"zeta","state":"closed","failures":1,"successes":0,"retry_in":0,"last_failure":"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z","opened":0,"half_opened":0,"closed":0,"calls":\{"success":0,"failure":1,"ignored":0,"refused":0\},"last_success":null,"configured":false\}$'
	assert_equal "${#lines[@]}" 2
	run aistack-breaker status --json never-used
	assert_success
	assert_output '{"name":"never-used","state":"closed","failures":0,"successes":0,"retry_in":0,"last_failure":null,"opened":0,"half_opened":0,"closed":0,"calls":{"success":0,"failure":0,"ignored":0,"refused":0},"last_success":null,"configured":false}'
	run aistack-breaker status zeta
	assert_success
	assert_line --index 0 --regexp '^NAME +STATE +FAILURES +SUCCESSES +RETRY_IN +OPENED +CALLS +FAILED +REFUSED +LAST_FAILURE$'
	assert_line --index 1 --regexp '^zeta +closed +1 +0 +- +0 +1 +1 +0 +[0-9T:Z-]+$'
	run aistack-breaker status Bad
	assert_failure 64
	assert_output 'aistack-breaker: Bad: invalid breaker name (expected [a-z0-9][a-z0-9._-]{0,63})'
}

@test "trip opens it now, reset closes it and clears its counts" {
	run aistack-breaker trip -v --open-for 2h b
	assert_success
	assert_output 'aistack-breaker: b: open for 2h'
	run aistack-breaker run b -- true
	assert_failure 75
	assert_output --regexp 'retry in 7[0-9]{3}s$'
	run aistack-breaker reset b
	assert_success
	assert_output ''
	assert_equal "$(field b state)" closed
	run aistack-breaker run b -- true
	assert_success
	# reset also mends a damaged state file
	echo garbage > "$BREAKERS/b"
	run aistack-breaker run b -- true
	assert_failure 65
	assert_output "aistack-breaker: $BREAKERS/b: invalid breaker state (aistack-breaker reset b starts it afresh)"
	aistack-breaker reset b
	run aistack-breaker run b -- true
	assert_success
}

@test "settings come from [breaker NAME], the environment and flags, in that order" {
	cat > "$AISTACK_CONFIG" <<'EOF'
[breaker]
open_for = 2h

[breaker pg]
failures = 2
EOF
	aistack-breaker run pg -- false || true
	aistack-breaker run pg -- false || true
	assert_equal "$(field pg state)" open
	assert_equal "$(stored pg open_ms)" 7200000
	aistack-breaker reset pg
	AISTACK_BREAKER_PG_FAILURES=3 aistack-breaker run pg -- false || true
	AISTACK_BREAKER_PG_FAILURES=3 aistack-breaker run pg -- false || true
	assert_equal "$(field pg state)" closed
	aistack-breaker run --failures 3 pg -- false || true
	assert_equal "$(field pg state)" open
	# other breakers only take the [breaker] defaults
	for i in 1 2 3 4; do aistack-breaker run other -- false || true; done
	assert_equal "$(field other state)" closed
	echo 'failures = none' >> "$AISTACK_CONFIG"
	run aistack-breaker run pg -- true
	assert_failure 78
	assert_output "aistack-breaker: $AISTACK_CONFIG:6: failures: invalid count \"none\""
}

@test "metrics: state gauge and transition counters" {
	aistack-breaker run --failures 1 b -- false || true
	run cat "$AISTACK_STATE_DIR/metrics/breaker-b.prom"
	assert_line 'aistack_breaker_state{breaker="b"} 2'
	assert_line 'aistack_breaker_failures{breaker="b"} 1'
	assert_line 'aistack_breaker_transitions_total{breaker="b",to="open"} 1'
	assert_line 'aistack_breaker_transitions_total{breaker="b",to="closed"} 0'
	aistack-breaker reset b
	run cat "$AISTACK_STATE_DIR/metrics/breaker-b.prom"
	assert_line 'aistack_breaker_state{breaker="b"} 0'
	assert_line 'aistack_breaker_transitions_total{breaker="b",to="closed"} 1'
}

@test "first use: a breaker that only ever succeeded is listed, its state written once" {
	aistack-breaker run b -- true
	[ -e "$BREAKERS/b" ]
	before=$(stat -c '%i %Y.%y %s' "$BREAKERS/b")
	for i in $(seq 20); do aistack-breaker run b -- true; done
	# no write per call: the state file is the first call's
	assert_equal "$(stat -c '%i %Y.%y %s' "$BREAKERS/b")" "$before"
	run aistack-breaker status --json
	assert_success
	assert_output --regexp '^\{"name":"b","state":"closed",.*"calls":\{"success":21,"failure":0,"ignored":0,"refused":0\},"last_success":"[0-9]{4}-[0-9T:-]+Z","configured":false\}$'
	grep -qx 'aistack_breaker_state{breaker="b"} 0' "$AISTACK_STATE_DIR/metrics/breaker-b.prom"
	promtool check metrics < "$AISTACK_STATE_DIR/metrics/breaker-b.prom"
}

@test "status lists every [breaker NAME] section before its first call" {
	printf '[breaker]\nfailures = 4\n[breaker postgres]\nopen_for = 1m\n[breaker qdrant]\nfailures = 2\n[upstream x]\nurl = http://127.0.0.1:1\n' > "$AISTACK_CONFIG"
	aistack-breaker run called -- true
	run sh -c 'aistack-breaker status --json | jq -c "[.name, .state, .configured, .calls.success]"'
	assert_success
	assert_output '["called","closed",false,1]
["postgres","closed",true,0]
["qdrant","closed",true,0]'
	[ ! -e "$BREAKERS/postgres" ]
	run aistack-breaker status
	assert_line --index 2 --regexp '^postgres +closed +0 +0 +- +0 +0 +0 +0 +-$'
}

@test "calls are counted by result in the state, across concurrent processes" {
	for p in 1 2 3 4; do
		(for i in $(seq 25); do aistack-breaker run c -- true; done) &
	done
	wait
	[ "$(field c calls.success)" -eq 100 ]
	aistack-breaker run --failures 2 c -- false || true
	aistack-breaker run --failures 2 c -- false || true
	run aistack-breaker run --failures 2 c -- true
	assert_failure 75
	run aistack-breaker run --failures 2 c -- /nonexistent/command
	assert_failure 75
	aistack-breaker reset c
	run aistack-breaker run c -- /nonexistent/command
	assert_failure 127
	run aistack-breaker status --json c
	assert_output --regexp '"opened":1,"half_opened":0,"closed":1,"calls":\{"success":100,"failure":2,"ignored":1,"refused":2\}'
}

@test "command line: usage errors are 64, --help and --version" {
	run aistack-breaker
	assert_failure 64
	run aistack-breaker frobnicate b
	assert_failure 64
	assert_line --index 0 'aistack-breaker: frobnicate: unknown subcommand'
	run aistack-breaker run b
	assert_failure 64
	assert_line --index 0 'aistack-breaker: run: missing COMMAND'
	run aistack-breaker run --failures 0 b -- true
	assert_failure 64
	assert_line --index 0 'aistack-breaker: --failures: invalid value "0"'
	assert_line --index 1 --partial 'usage: aistack-breaker'
	run aistack-breaker run --open-for soon b -- true
	assert_failure 64
	run aistack-breaker status --failures 3
	assert_failure 64
	assert_line --index 0 'aistack-breaker: --failures: not an option of this subcommand'
	run aistack-breaker run ../x -- true
	assert_failure 64
	run aistack-breaker reset
	assert_failure 64
	run aistack-breaker probe b
	assert_failure 64
	run aistack-breaker --help
	assert_success
	assert_line --index 0 --partial 'usage: aistack-breaker run'
	run aistack-breaker status --help
	assert_success
	run aistack-breaker --version
	assert_success
	assert_output --regexp '^aistack-breaker [0-9]+\.[0-9]+\.[0-9]+$'
}
