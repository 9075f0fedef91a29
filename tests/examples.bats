#!/usr/bin/env bats
# Every example of README.md and of the man pages works as written (curl's
# documentation tests, git's t0450): each block is run as a reader would
# run it, in a throwaway state directory, with the small stand-ins a reader
# would use — generated telemetry for "coordinator --log-json"
# (tests/standins/coordinator), a throwaway PostgreSQL whose role aistack
# needs its password file, an HTTP stand-in for the stack's services
# (tests/bin/example-upstream), the unit's own commands for "systemctl
# start" (tests/bin/run-unit) — and what the text around it promises is
# checked: a record count, an exit status, an output's shape.
#
# An example is a fenced block of README.md or a .Bd -literal or .Dl
# display of a man page, named by ID = FILE:HASH (tests/bin/doc-examples
# list shows them all); editing an example changes its ID.  The first test fails for
# every example that no test here names, and for every name here that no
# page has any more: a new or changed example needs a test, or a reason.
#
# How to register an example (the failing test prints its ID and text):
#   1. Add a test that runs it and checks what its text promises:
#        @test "aistack-foo(1): list the widgets" {
#            make_widgets 3                         # the state it needs
#            ex_run man/aistack-foo.1:0123abcd --sub /var/lib/x "$T/x"
#            ex_ok                                  # every command: 0, quiet
#            [ "$(ex_out 1 | wc -l)" -eq 3 ]        # what the text says
#        }
#      ex_run's options (--sub, --bg, --then, --in, --skip, --instead,
#      --env) and the checks (ex_ok, ex_status, ex_out, ex_shown, ...) are
#      described at the top of tests/examples_helper.bash.
#   2. An example that changed: replace the old ID by the new one in its
#      test, and adjust the test to what the example now says.
#   3. An example that cannot run here (systemctl: PID 1 is not systemd)
#      is still named, with its reason, where what can be checked instead
#      is: ex_exempt ID "why"; or ex_run ... --skip N "why" for one
#      command of a block.  A block that shows no command (a format, a
#      grammar) is checked against what the commands really do, or exempt.
#   Then: AISTACK_BIN=$PWD/build/bin tests/run examples

bats_require_minimum_version 1.5.0

load test_helper
load examples_helper

setup_file() {
	ex_dump
	ex_pg_start
}

teardown_file() {
	ex_pg_stop
}

setup() {
	ex_setup
}

teardown() {
	ex_teardown
	ex_upstream_stop
}

# records STREAM: the number of records in a stream of the sandbox
records() {
	stream_bytes "$1" | wc -l
}

# consumer_field STREAM CONSUMER FIELD
consumer_field() {
	aistack-checkpoint status --json "$1" |
		jq -r --arg c "$2" --arg f "$3" '.consumers[] | select(.consumer == $c) | .[$f]'
}

head_of() {
	aistack-checkpoint status --json "$1" | jq -r .head
}

# telemetry N [SEED]: N generated events into the stream telemetry
telemetry() {
	"$TESTS_DIR/../bench/gen-telemetry" -n "$1" --seed "${2:-1}" --dups 0.25 > "$T/gen.$1.${2:-1}"
	aistack-ingest telemetry "$T/gen.$1.${2:-1}"
}

# a jq that fails, for the "a failing stage" checks
failing_jq() {
	mkdir -p "$T/failbin"
	printf '#!/bin/sh\necho "jq: error: boom" >&2\nexit 5\n' > "$T/failbin/jq"
	chmod +x "$T/failbin/jq"
}

# unit_dir: the shipped units of the commands (rotate, proxy) in $T/units,
# @BINDIR@ filled in as make install does, with the built commands
unit_dir() {
	local u
	mkdir -p "$T/units"
	for u in "$EX_DOCS"/systemd/aistack-rotate.* "$EX_DOCS"/systemd/aistack-proxy.*; do
		sed "s|@BINDIR@|$AISTACK_BIN|g" "$u" > "$T/units/${u##*/}"
	done
}

# the learning flow's key, as examples/learning-flow.sh applies it: the
# number of distinct (question, answer) pairs, trimmed and lower-cased, of
# the interactions extract.jq finds in FILE
learning_pairs() {
	jq -c -f "$EX_DOCS/examples/extract.jq" "$1" |
		jq -r '[.messages[1].content, .messages[2].content] | map(ascii_downcase | gsub("^\\s+|\\s+$"; "")) | @json' |
		sort -u | wc -l
}

# flock_writer FILE FROM TO: append the records {"q":FROM..TO} to FILE, each
# under fcntl.flock, as a Python service does
flock_writer() {
	python3 -c '
import fcntl, json, sys
with open(sys.argv[1], "a") as f:
    for i in range(int(sys.argv[2]), int(sys.argv[3]) + 1):
        fcntl.flock(f, fcntl.LOCK_EX)
        f.write(json.dumps({"q": i}) + "\n")
        f.flush()
        fcntl.flock(f, fcntl.LOCK_UN)
' "$@"
}

# pg_down: a stand-in for db.lab while the database is down (a socket
# directory where no server listens), URL-encoded
pg_down() {
	mkdir -p "$T/down"
	url_host "$T/down"
}

# installed_units: make install's units in $T/u, their paths pointing at a
# staged tree in $T/root (PREFIX=/usr), as systemd-analyze verify needs
installed_units() {
	local f
	[ -d "$T/u" ] && return
	make -C "$EX_DOCS" --no-print-directory install BUILD="$(dirname "$AISTACK_BIN")" \
		DESTDIR="$T/root" PREFIX=/usr > "$T/install.log" 2>&1 || { cat "$T/install.log"; return 1; }
	mkdir -p "$T/u"
	for f in "$T"/root/usr/lib/systemd/system/*; do
		sed "s|/usr/|$T/root/usr/|g; s|$T/root/usr/bin/bash|/usr/bin/bash|g" "$f" > "$T/u/${f##*/}"
	done
}

verify_units() {	# verify_units FILE...: systemd-analyze verify is clean
	run systemd-analyze verify --man=no "$@"
	[ "$status" -eq 0 ] && [ -z "$output" ] && return 0
	echo "systemd-analyze verify $*:" >&2
	echo "$output" >&2
	return 1
}

@test "every example of README.md and the man pages is registered here" {
	run "$TESTS_DIR/bin/doc-examples" -C "$EX_DOCS" list
	assert_success
	list=$output
	[ "$(wc -l <<< "$list")" -gt 40 ]
	registered=$(grep -v '^[[:space:]]*#' "$BATS_TEST_FILENAME" |
		grep -oE '(README\.md|man/[A-Za-z0-9._-]+):[0-9a-f]{8}(-[0-9]+)?' | sort -u)
	bad=0
	while IFS=$'\t' read -r id where section first; do
		grep -qxF "$id" <<< "$registered" && continue
		bad=1
		echo "# an example that no test names: $id ($where, $section)"
		ex_text "$id" | sed 's/^/#     /'
	done <<< "$list"
	while read -r id; do
		cut -f1 <<< "$list" | grep -qxF "$id" && continue
		bad=1
		echo "# named here but in no page any more (changed or removed?): $id"
	done <<< "$registered"
	if [ "$bad" = 1 ]; then
		echo "# register them as the top of tests/examples.bats explains"
	fi
	[ "$bad" = 0 ]
}

# --- README.md -------------------------------------------------------------

@test "README: make demo runs the learning flow on sample telemetry; make check is this suite" {
	EX_TIMEOUT=600 ex_run README.md:f9086861 --cwd "$EX_DOCS" \
		--skip 2 "make check runs every suite, this one included"
	ex_status 1 0
	out=$(ex_out 1)
	dir=$(sed -n 's/^  state directory: *//p' <<< "$out")
	[ -d "$dir/streams/dataset" ]
	dataset=$(sed -n 's/^  dataset: *\([0-9]*\) chat records.*/\1/p' <<< "$out")
	removed=$(sed -n 's/^  duplicates removed: *\([0-9]*\)$/\1/p' <<< "$out")
	[ "$dataset" -gt 100 ]
	[ "$removed" -gt 10 ]
	grep -qx '  consumer lag: *0 bytes' <<< "$out"
	# what the report says is what the state holds: every extracted
	# interaction once, by the flow's own key
	[ "$(zcat -f "$dir"/streams/dataset/0* | wc -l)" -eq "$dataset" ]
	[ "$dataset" -eq "$(learning_pairs <(zcat -f "$dir"/streams/telemetry/0*))" ]
}

@test "README: the package route (exempt: it installs a package system-wide and needs systemd as PID 1)" {
	ex_exempt README.md:770b7689 "apt install and systemctl change the system; make package-check, in .ci/run, builds, installs, runs and purges the package under a booted systemd"
	text=$(ex_text README.md:770b7689)
	# what can be checked here: the target exists, the file it names is the
	# one it makes, the units it enables are shipped
	deb=$(make -C "$EX_DOCS" -s --no-print-directory -f Makefile -f - print-deb <<< 'print-deb: ; @echo $(DEB)')
	[[ $deb == build-deb/aistack_*.deb ]]
	grep -qF "$deb" <<< "$text"
	grep -qF "./build-deb/aistack_*_$(dpkg --print-architecture).deb" <<< "$text"
	for u in $(grep -oE 'aistack-[a-z]+\.(service|timer)' <<< "$text"); do
		[ -f "$EX_DOCS/systemd/$u" ] || { echo "no unit $u" >&2; false; }
	done
}

@test "README and aistack(7): the flow diagrams name real commands and options" {
	for id in README.md:036ff7ae man/aistack.7:7688da27; do
		text=$(ex_text "$id")
		for cmd in $(grep -oE 'aistack-[a-z]+' <<< "$text" | sort -u); do
			[ -x "$AISTACK_BIN/$cmd" ] || { echo "$id: no command $cmd" >&2; false; }
		done
		# every "aistack-X verb" and "aistack-X -o"/"--opt" shown is accepted
		while read -r cmd word; do
			"$AISTACK_BIN/$cmd" --help | grep -qE -- "(^|[^a-z-])$word([^a-z-]|$)" ||
				{ echo "$id: $cmd has no $word" >&2; false; }
		done < <(grep -oE 'aistack-[a-z]+ +(-[a-z]|--[a-z-]+|run|read|commit|status)' <<< "$text" | sort -u)
	done
}

@test "README: the tree names the directories there are" {
	text=$(ex_text README.md:1947e932)
	dirs=$(grep -oE '^[a-z]+/' <<< "$text")
	[ "$(wc -l <<< "$dirs")" -ge 8 ]
	for dir in $dirs; do
		[ -d "$EX_DOCS/$dir" ] || { echo "no directory $dir" >&2; false; }
	done
	# the folders of lib/, each of them and no other
	shown=$(grep -oE '^  [a-z]+/' <<< "$text" | tr -d ' ' | sort)
	there=$(cd "$EX_DOCS/lib" && ls -d -- */ | sort)
	[ "$shown" = "$there" ] || { echo "lib/ shows: $shown; has: $there" >&2; false; }
	# and the command folders and files it names
	for f in $(grep -oE 'cmd/[a-z]+/([a-z]+\.c)?' <<< "$text"); do
		[ -e "$EX_DOCS/$f" ] || { echo "no $f" >&2; false; }
	done
}

@test "README: aistack-ingest from a pipe and from files, and into PostgreSQL one row per key" {
	mkdir -p "$T/var/log/aidb"
	gen_records 40 a > "$T/var/log/aidb/queries.jsonl"
	{ gen_records 10 b; echo 'not json'; } > "$T/var/log/aidb/search.jsonl"
	ex_pg
	pg_q 'DROP SCHEMA IF EXISTS learning CASCADE; CREATE SCHEMA learning AUTHORIZATION aistack'
	# interactions as two hosts saw them: other metadata, case, spacing
	gen-key-variants -n 60 --seed 3 --ways 3 > dataset.jsonl
	ex_run README.md:f68651cd --sub /var/log/aidb/ "$T/var/log/aidb/" \
		--sub @db/ "@$PG_HOST/" --env "PGPASSFILE=$T/etc/aistack/pgpass"
	ex_ok
	coordinator --log-json > "$T/coord"
	read -r rec rej _ < <(valid_lines "$T/coord")
	[ "$rej" -gt 0 ]
	[ "$(records telemetry)" -eq $((rec + 40 + 10)) ]
	[ "$(records telemetry.rejects)" -eq $((rej + 1)) ]
	# one row per interaction, as aistack-dedup's key counts them
	keys=$(dedup-key-ref -k .prompt,.response --normalize trim,lower < dataset.jsonl | sort -u | wc -l)
	[ "$keys" -lt "$(wc -l < dataset.jsonl)" ]
	[ "$(pg_q 'select count(*) from learning.interactions')" -eq "$keys" ]
}

@test "README: aistack-checkpoint commits a batch only when its whole pipeline succeeded" {
	telemetry 300 1
	ex_run README.md:7058a9d0 \
		--then 1 'COORDINATOR_SEED=8 coordinator --log-json | aistack-ingest telemetry'
	ex_ok
	# both the run and the batch by hand reached the dataset, and committed
	want=$({ cat "$T/gen.300.1"; COORDINATOR_SEED=8 coordinator --log-json; } |
		grep -c '"event":"task_completed"')
	[ "$(records dataset)" -eq "$want" ]
	[ "$(consumer_field telemetry learning committed)" -eq "$(head_of telemetry)" ]
	jq -se 'map(select(.stream == "telemetry"))[0].consumers[0].consumer == "learning"' <<< "$(ex_out 4)"

	# a stage that fails: nothing is committed, by run or by hand
	rm -rf "$AISTACK_STATE_DIR"
	telemetry 300 1
	failing_jq
	ex_run README.md:7058a9d0 --env "PATH=$T/failbin:$PATH" \
		--then 1 'COORDINATOR_SEED=8 coordinator --log-json | aistack-ingest telemetry'
	ex_status 1 5
	[ "$(ex_rc 3)" -eq 5 ]
	[ "$(consumer_field telemetry learning committed)" -eq 0 ]
	[ "$(records dataset)" -eq 0 ]
}

@test "README: aistack-dedup's five forms" {
	gen=$TESTS_DIR/../bench/gen-telemetry
	"$gen" -n 600 --seed 3 --dups 0.3 | jq -c 'select(.prompt)' > "$T/ev"
	# the same interactions written differently, and in other case
	{ cat "$T/ev"; head -n 40 "$T/ev" | jq -cS . | sed 's/,/, /g'; } > in.jsonl
	head -n 20 "$T/ev" | jq -c '.response |= ascii_upcase' >> in.jsonl
	gen_records 30 > batch.jsonl
	gen_records 10 >> batch.jsonl
	printf '%s\n' b a b c a a d > events.log
	python3 - > notes.jsonl << 'EOF'
import json, random
r = random.Random(5)
words = "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi omicron pi rho sigma tau".split()
for i in range(12):
    t = " ".join(r.choice(words) for _ in range(40))
    print(json.dumps({"text": t}))
    print(json.dumps({"text": t + " " + r.choice(words)}))
EOF
	ex_run README.md:f66ea589
	ex_ok
	want=$(jq -cS . in.jsonl | awk '!seen[$0]++' | wc -l)
	[ "$(wc -l < out.jsonl)" -eq "$want" ]
	want=$(jq -r '[.prompt, .response] | map(ascii_downcase | gsub("^\\s+|\\s+$"; "")) | @json' in.jsonl |
		sort -u | wc -l)
	[ "$(ex_out 2 | wc -l)" -eq "$want" ]
	[ "$(records dataset)" -eq 30 ]
	[ "$(ex_out 4)" = "$(awk '!seen[$0]++' events.log)" ]
	[ "$(ex_out 5 | wc -l)" -eq 12 ]
	# retried, the exact form passes nothing on twice
	ex_run README.md:f66ea589
	ex_ok
	[ "$(records dataset)" -eq 30 ]
}

@test "README: aistack-rotate seals, compresses and rotates plain files; the timer's units verify" {
	telemetry 200
	aistack-rotate --seal-size 1 telemetry
	sealed=$(ls "$STREAMS"/telemetry/0*.jsonl | head -n 1)
	touch -d '8 days ago' "$sealed"
	mkdir -p "$T/var/log/aidb"
	gen_records 50 > "$T/var/log/aidb/app.jsonl"
	gen_records 5 old > "$T/var/log/aidb/app.jsonl.20260101T000000Z"
	touch -d '20 days ago' "$T/var/log/aidb/app.jsonl.20260101T000000Z"
	ex_run README.md:29ce92df --sub /var/log/aidb/ "$T/var/log/aidb/" \
		--skip 4 "systemctl: PID 1 is not systemd here; the units are verified below"
	ex_ok
	grep -qE "^compress telemetry [^ ]*${sealed##*/} [0-9]+" <<< "$(ex_out 1)"
	[ -e "$sealed.gz" ] && [ ! -e "$sealed" ]
	[ "$(records telemetry)" -eq "$(valid_lines "$T/gen.200.1" | cut -d' ' -f1)" ]
	[ ! -s "$T/var/log/aidb/app.jsonl" ]
	[ ! -e "$T/var/log/aidb/app.jsonl.20260101T000000Z" ]
	copies=("$T"/var/log/aidb/app.jsonl.2*)
	[ ${#copies[@]} -eq 1 ]
	[ "$(zcat -f "${copies[0]}")" = "$(gen_records 50)" ]
	unit_dir
	grep -qw 'aistack-rotate.timer' <<< "$(ex_cmd 4)"
	verify_units "$T/units/aistack-rotate.service" "$T/units/aistack-rotate.timer"
}

@test "README: aistack-breaker run counts a failed load, refuses with 75 while open; probe; status" {
	ex_pg
	upstream=qdrant; ex_upstream qdrant
	echo 'CREATE TABLE IF NOT EXISTS scores (n int); INSERT INTO scores VALUES (1);' > load.sql
	args=(--sub qdrant.lab:6333 "127.0.0.1:$qdrant_PORT"
		--env "DSN=postgresql://aistack@$PG_HOST/aistack"
		--env "PGPASSFILE=$T/etc/aistack/pgpass")
	ex_run README.md:4d4c255b "${args[@]}"
	ex_ok
	[ "$(pg_q 'select count(*) from scores')" -eq 1 ]
	# a breaker that only saw successes has no file yet: closed, not listed
	jq -e -s 'all(.state == "closed")' <<< "$(ex_out 3)"
	# a load that fails is a failure of the breaker; five open it
	echo 'INSERT INTO scores VALUES (1/0);' > load.sql
	for i in 1 2 3 4 5; do
		ex_run README.md:4d4c255b "${args[@]}"
		[ "$(ex_rc 1)" -ne 0 ] && [ "$(ex_rc 1)" -ne 75 ]
	done
	ex_run README.md:4d4c255b "${args[@]}"
	ex_status 1 75
	grep -q 'postgres is open; retry in' <<< "$(ex_err 1)"
	jq -se 'map(select(.name == "postgres"))[0] | .state == "open" and .retry_in > 0' <<< "$(ex_out 3)"
	[ "$(pg_q 'select count(*) from scores')" -eq 1 ]
}

@test "README: aistack-proxy serves the dashboard, /health, /metrics, /api/stats and an upstream" {
	ex_upstream qdrant
	port=$(free_port)
	printf '[upstream qdrant]\nurl = http://127.0.0.1:%s\nallow = /collections\n' "$qdrant_PORT" > "$AISTACK_CONFIG"
	token=$(openssl rand -hex 16)
	telemetry 50
	ex_run README.md:ef671261 --sub localhost:8888 "localhost:$port" \
		--env "AISTACK_PROXY_LISTEN=127.0.0.1:$port" \
		--env "TOKEN=$token" --env "AISTACK_PROXY_TOKEN=$token" \
		--bg 1 --then 1 "ex_wait 'curl -sf localhost:$port/health > /dev/null'
			for p in / /metrics; do curl -sf localhost:$port\$p > /dev/null || echo \"ex: --then 1 failed\"; done
			curl -sf -H 'Authorization: Bearer $token' localhost:$port/api/stats | jq -e 'any(.streams[]; .name == \"telemetry\")' > /dev/null ||
				echo 'ex: --then 1 failed'"
	ex_ok 2 3
	jq -e '.status == "ok" and .streams.telemetry.head > 0 and (.circuit_breakers | has("qdrant"))' <<< "$(ex_out 2)"
	jq -e '.service == "example-upstream" and .path == "/collections"' <<< "$(ex_out 3)"
	ex_stop 1
	ex_status 1 0
}

@test "README: the learning flow script, then with PostgreSQL" {
	ex_pg
	mkdir -p "$T/var/log/aidb"
	"$TESTS_DIR/../bench/gen-telemetry" -n 1000 --seed 4 --dups 0.25 > "$T/var/log/aidb/coordinator.jsonl"
	ex_run README.md:d72f803f --sub /usr/share/aistack/ "$EX_DOCS/examples/" \
		--sub /var/log/aidb/ "$T/var/log/aidb/" --sub /etc/aistack/ "$T/etc/aistack/" \
		--sub @db/ "@$PG_HOST/"
	ex_ok
	kept=$(records dataset)
	[ "$kept" -eq "$(learning_pairs "$T/var/log/aidb/coordinator.jsonl")" ]
	[ "$(pg_q 'select count(*) from aistack_dataset')" -eq "$kept" ]
	# it ends with the summary
	grep -q '^telemetry: head ' <<< "$(ex_out 1)"
	grep -q 'learning' <<< "$(ex_out 1)"
	grep -q 'pgload' <<< "$(ex_out 2)"
}

@test "README: under systemd (exempt: systemctl and journalctl need systemd as PID 1); the installed units verify, learn.env's settings load PostgreSQL" {
	text=$(ex_text README.md:05555d6e)
	ex_exempt README.md:05555d6e "systemctl and journalctl need systemd as PID 1; make package-check runs the units under a booted systemd"
	installed_units
	names=$(grep -oE 'aistack-[a-z]+\.(service|timer)' <<< "$text" | sort -u)
	[ -n "$names" ]
	for n in $names; do
		[ -f "$T/u/$n" ] || { echo "README names $n, not installed" >&2; false; }
	done
	verify_units "$T"/u/*.service "$T"/u/*.timer
	# "to load PostgreSQL too, put AISTACK_PG_DSN=... and PGPASSFILE=... in
	# /etc/aistack/learn.env": the installed unit, started as systemd would,
	# with the settings README gives
	ex_pg
	vars=$(grep -oE '`(AISTACK_PG_DSN|PGPASSFILE)=[^`]*`' "$EX_DOCS/README.md" | tr -d '`')
	[ "$(wc -l <<< "$vars")" -eq 2 ]
	grep -q 'EnvironmentFile=-/etc/aistack/learn.env' "$T/u/aistack-learn.service"
	sed -i "s|/etc/aistack/|$T/etc/aistack/|" "$T/u/aistack-learn.service"
	sed "s|@db/|@$PG_HOST/|; s|/etc/aistack/|$T/etc/aistack/|" <<< "$vars" > "$T/etc/aistack/learn.env"
	export AISTACK_STATE_DIR=$T/var/lib/aistack
	STREAMS=$AISTACK_STATE_DIR/streams
	telemetry 500
	run-unit --state-root "$T/var/lib" "$T/u/aistack-learn.timer"
	kept=$(records dataset)
	[ "$kept" -eq "$(learning_pairs "$T/gen.500.1")" ]
	[ "$(pg_q 'select count(*) from aistack_dataset')" -eq "$kept" ]
}

# --- aistack-ingest(1) -----------------------------------------------------

@test "aistack-ingest(1): a rejected line is kept as the page shows it" {
	printf '%s\n' '{"ok":1}' 'not json' > "$T/in"
	aistack-ingest telemetry "$T/in"
	shown=$(ex_text man/aistack-ingest.1:1fdf464c)
	real=$(stream_bytes telemetry.rejects)
	[ "$(jq -c 'keys' <<< "$real")" = "$(jq -c 'keys' <<< "$shown")" ]
	jq -e --arg f "$T/in" '.source == "\($f):2" and .record == "not json"' <<< "$real"
}

@test "aistack-ingest(1): the table is made as the page shows it" {
	ex_pg
	echo '{"a":1}' > "$T/in"
	PGPASSFILE=$T/etc/aistack/pgpass aistack-ingest --table shape "postgresql://aistack@$PG_HOST/aistack" "$T/in"
	shown=$(ex_text man/aistack-ingest.1:7813af12 |
		awk '{ t = $2; sub(/^bigserial$/, "bigint", t); sub(/^timestamptz$/, "timestamp with time zone", t)
		       print $1, t, ($0 ~ /NOT NULL|PRIMARY KEY/) ? "NO" : "YES" }')
	real=$(pg_q "select column_name || ' ' || data_type || ' ' || is_nullable from information_schema.columns
		where table_name = 'shape' order by ordinal_position")
	[ "$real" = "$shown" ]
	[ "$(pg_q "select count(*) from pg_indexes where tablename = 'shape' and indexdef like '%UNIQUE%(sha256)'")" -eq 1 ]
}

@test "aistack-ingest(1): telemetry from a pipe, waiting while the learning job lags" {
	set_consumer telemetry learning 0
	printf '[ingest]\nmax_backlog = 4k\n' > "$AISTACK_CONFIG"
	ex_run man/aistack-ingest.1:4f3d144c --bg 1 \
		--then 1 "ex_wait '[ \"\$(aistack-checkpoint status --json telemetry | jq -r .paused)\" = true ]'"
	[ ! -e "$EX/1.rc" ]
	# the learning job catches up, again and again, until the input is in
	ex_wait "aistack-checkpoint seek learning telemetry --end; [ -e '$EX/1.rc' ]" 60
	ex_ok 1
	coordinator --log-json > "$T/coord"
	[ "$(records telemetry)" -eq "$(valid_lines "$T/coord" | cut -d' ' -f1)" ]
}

@test "aistack-ingest(1): a cron job that must never block" {
	mkdir -p "$T/var/log/aidb" "$T/run"
	gen_records 30 a > "$T/var/log/aidb/a.jsonl"
	gen_records 20 b > "$T/var/log/aidb/b.jsonl"
	args=(--sub /var/log/aidb/ "$T/var/log/aidb/" --sub /run/ "$T/run/")
	ex_run man/aistack-ingest.1:d190a96c "${args[@]}"
	ex_ok
	jq -e '.records == 50 and .rejected == 0' "$T/run/ingest.json"
	# the learning job lags: the job ends at once, successfully, and says so
	set_consumer telemetry learning 0
	printf '[ingest]\nmax_backlog = 512\n' > "$AISTACK_CONFIG"
	ex_run man/aistack-ingest.1:d190a96c "${args[@]}"
	ex_status 1 0
	grep -q 'exceeds --max-backlog' "$EX/1.err"
	[ "$(records telemetry)" -eq 50 ]
	jq -e '.records == 0' "$T/run/ingest.json"
}

@test "aistack-ingest(1): following a log that is appended under fcntl.flock and rotated" {
	mkdir -p "$T/var/log/aidb"
	log=$T/var/log/aidb/queries.jsonl
	flock_writer "$log" 1 100
	ex_run man/aistack-ingest.1:b01e7467 --sub /var/log/aidb/ "$T/var/log/aidb/" --bg 1 \
		--then 1 "ex_wait '[ \$(cat \"$STREAMS\"/telemetry/0* 2>/dev/null | wc -l) -ge 100 ]'"
	flock_writer "$log" 101 200
	aistack-rotate "$T/var/log/aidb/"
	flock_writer "$log" 201 300
	ex_wait '[ "$(records telemetry)" -ge 300 ]' 60
	ex_stop 1
	ex_ok 1
	[ "$(stream_bytes telemetry | jq -r .q | sort -n | uniq | wc -l)" -eq 300 ]
	[ "$(records telemetry)" -eq 300 ]
}

@test "aistack-ingest(1): recover the original text of the rejected lines" {
	unset AISTACK_STATE_DIR
	coordinator --log-json > "$T/coord"
	printf '{"bad": \xff}\n' >> "$T/coord"
	aistack-ingest telemetry "$T/coord"
	aistack-checkpoint read review telemetry.rejects > /dev/null	# someone reads them
	[ -d ~/.local/state/aistack/streams/telemetry.rejects/consumers ]
	ex_run man/aistack-ingest.1:3362761d
	ex_ok
	want=$(python3 -c '
import json, sys
for raw in open(sys.argv[1], "rb"):
    line = raw.rstrip(b"\n")
    if not line.strip():
        continue
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError:
        continue
    try:
        if isinstance(json.loads(text), dict):
            continue
    except ValueError:
        pass
    print(text)
' "$T/coord")
	[ -n "$want" ]
	[ "$(ex_out 1)" = "$want" ]
}

@test "aistack-ingest(1): load the dataset into a shared PostgreSQL, once, behind a breaker" {
	ex_pg
	gen_records 90 > dataset.jsonl
	gen_records 10 >> dataset.jsonl
	args=(--sub /etc/aistack/ "$T/etc/aistack/" --sub db.lab "$PG_HOST")
	ex_run man/aistack-ingest.1:40bf6a64 "${args[@]}"
	ex_ok
	table=$(grep -oE -- '--table [a-z_.]+' <<< "$(ex_cmd 1)" | cut -d' ' -f2)
	[ "$(pg_q "select count(*) from $table")" -eq 90 ]
	ex_run man/aistack-ingest.1:40bf6a64 "${args[@]}"
	ex_ok
	[ "$(pg_q "select count(*) from $table")" -eq 90 ]
}

@test "aistack-ingest(1): re-key an existing table's records into a new one" {
	ex_pg
	db="postgresql://aistack@$PG_HOST/aistack"
	gen-key-variants -n 50 --seed 4 --ways 3 > "$T/in"
	PGPASSFILE=$T/etc/aistack/pgpass aistack-ingest --table old "$db" "$T/in"
	[ "$(pg_q 'select count(*) from old')" -eq "$(wc -l < "$T/in")" ]
	ex_run man/aistack-ingest.1:616bbda8 --env "DB=$db" \
		--env "PGPASSFILE=$T/etc/aistack/pgpass"
	ex_ok
	keys=$(dedup-key-ref -k .prompt,.response < "$T/in" | sort -u | wc -l)
	[ "$(pg_q 'select count(*) from new')" -eq "$keys" ]
	# the same digests as the records' own keys: jsonb's re-spelling
	# changes nothing of a key
	[ "$(pg_q "select encode(sha256, 'hex') from new order by 1")" = \
	    "$(dedup-key-ref -k .prompt,.response < "$T/in" | sort -u)" ]
}

@test "aistack-ingest(1): hosts load one table keyed like the dataset: one row per interaction" {
	ex_pg
	pg_q 'DROP SCHEMA IF EXISTS learning CASCADE; CREATE SCHEMA learning AUTHORIZATION aistack'
	local h
	# one set of interactions, each host its own spellings and metadata
	for h in 1 2; do
		mkdir -p "$T/host$h"
		gen-key-variants -n 80 --seed 9 --spell-seed "$h" --host "h$h" --ways 2 \
			--only "$(( (h - 1) * 30 )):$(( 50 + (h - 1) * 30 ))" |
			AISTACK_STATE_DIR=$T/host$h aistack-ingest telemetry
	done
	for h in 1 2; do
		ex_run man/aistack-ingest.1:5089322e --sub db.lab "$PG_HOST" \
			--env "AISTACK_STATE_DIR=$T/host$h" --env "PGPASSFILE=$T/etc/aistack/pgpass"
		ex_ok
	done
	# interactions 0-49 and 30-79, each host's spellings: one row per
	# key (the reference's count), fewer than the records
	cat "$T"/host*/streams/telemetry/0* > "$T/all"
	dedup-key-ref -k .prompt,.response --normalize trim,space < "$T/all" | sort -u > "$T/want"
	[ "$(wc -l < "$T/want")" -ge 80 ]
	[ "$(wc -l < "$T/want")" -lt "$(wc -l < "$T/all")" ]
	[ "$(pg_q 'select count(*) from learning.interactions')" -eq "$(wc -l < "$T/want")" ]
	[ "$(pg_q "select encode(sha256, 'hex') from learning.interactions order by 1")" = "$(cat "$T/want")" ]
	# and each host's consumer went through its whole stream
	for h in 1 2; do
		AISTACK_STATE_DIR=$T/host$h aistack-checkpoint status --json telemetry |
			jq -e '.backlog == 0'
	done
}

# --- aistack-checkpoint(1) -------------------------------------------------

@test "aistack-checkpoint(1): the learning unit commits a batch only after its pipeline, and a retry adds nothing twice" {
	export AISTACK_STATE_DIR=$T/var/lib/aistack
	STREAMS=$AISTACK_STATE_DIR/streams
	ex_files man/aistack-checkpoint.1:236488a7 "$T/units" --sub /usr/bin/aistack- "$AISTACK_BIN/aistack-"
	verify_units "$T"/units/learning.*
	start() { run-unit --state-root "$T/var/lib" --path "$AISTACK_BIN" "$@" "$T/units/learning.timer"; }
	tc() { cat "$T"/gen.* | grep -c '"event":"task_completed"'; }
	telemetry 300 1
	start
	[ "$(records dataset)" -eq "$(tc)" ]
	[ "$(consumer_field telemetry learning committed)" -eq "$(head_of telemetry)" ]
	# a stage fails: nothing is committed, the next start delivers it again
	telemetry 300 2
	failing_jq
	run start --path "$T/failbin"
	[ "$status" -eq 5 ]
	[ "$(consumer_field telemetry learning committed)" -lt "$(head_of telemetry)" ]
	start
	[ "$(records dataset)" -eq "$(tc)" ]
	# a crash after the pipeline, before the commit: delivered again, and
	# aistack-dedup -a drops what already reached the dataset
	telemetry 300 3
	run start --stop-after 1
	[ "$status" -eq 137 ]
	[ "$(records dataset)" -eq "$(tc)" ]
	[ "$(consumer_field telemetry learning committed)" -lt "$(head_of telemetry)" ]
	start
	[ "$(records dataset)" -eq "$(tc)" ]
	[ "$(consumer_field telemetry learning committed)" -eq "$(head_of telemetry)" ]
}

@test "aistack-checkpoint(1): the long-running flow, and a failing stage that stops it uncommitted" {
	telemetry 400
	want=$(grep -c '"event":"task_completed"' "$T/gen.400.1")
	ex_run man/aistack-checkpoint.1:bddaa8f9 --bg 1 \
		--then 1 "ex_wait '[ \"\$(zcat -f \"$STREAMS\"/dataset/0* 2>/dev/null | wc -l)\" -ge $want ] && aistack-checkpoint status --json telemetry | jq -e \".consumers[0].committed == .head\" > /dev/null' 60"
	ex_stop 1
	ex_ok 1
	[ "$(records dataset)" -eq "$want" ]
	[ "$(consumer_field telemetry learning committed)" -eq "$(head_of telemetry)" ]
	# "without -o pipefail a failing jq would be hidden": with it, the
	# failure stops the run with jq's status, nothing committed
	rm -rf "$AISTACK_STATE_DIR"
	telemetry 400
	failing_jq
	ex_run man/aistack-checkpoint.1:bddaa8f9 --env "PATH=$T/failbin:$PATH" --bg 1 \
		--then 1 "ex_wait '[ -e \"$EX/1.rc\" ]' 60"
	ex_wait "[ -e '$EX/1.rc' ]" 60
	ex_status 1 5
	[ "$(consumer_field telemetry learning committed)" -eq 0 ]
	[ "$(records dataset)" -eq 0 ]
}

@test "aistack-checkpoint(1): status, and what a stuck consumer still has to read" {
	telemetry 100
	aistack-checkpoint read -n 10 learning telemetry > /dev/null
	aistack-checkpoint commit learning telemetry
	ex_run man/aistack-checkpoint.1:6678e143
	ex_ok
	grep -q telemetry <<< "$(ex_out 1)"
	grep -q learning <<< "$(ex_out 1)"
	lag=$(( $(head_of telemetry) - $(consumer_field telemetry learning committed) ))
	[ "$lag" -gt 0 ]
	[ "$(ex_out 2 | jq -c .)" = "{\"consumer\":\"learning\",\"lag\":$lag}" ]
	# the JSON form has the members and the nesting the page shows
	shape='[paths | map(if type == "number" then 0 else . end)] | unique'
	[ "$(ex_text man/aistack-checkpoint.1:fe6b026b | jq -c "$shape")" = \
	  "$(aistack-checkpoint status --json telemetry | jq -c "$shape")" ]
}

@test "aistack-checkpoint(1): seek --start past what an expiry lost" {
	telemetry 100 1
	aistack-rotate --seal-size 1 telemetry
	telemetry 100 2
	set_consumer telemetry learning 0
	aistack-rotate --max-total 1 --force telemetry 2> /dev/null
	run aistack-checkpoint read learning telemetry
	[ "$status" -eq 65 ]
	ex_run man/aistack-checkpoint.1:49072203
	ex_ok
	run aistack-checkpoint read learning telemetry
	assert_success
	[ "$(wc -l <<< "$output")" -eq "$(valid_lines "$T/gen.100.2" | cut -d' ' -f1)" ]
}

# --- aistack-dedup(1) ------------------------------------------------------

@test "aistack-dedup(1): the learning flow keeps every interaction once, as the shipped flow does" {
	telemetry 5000
	extracted=$(jq -c -f "$EX_DOCS/examples/extract.jq" "$T/gen.5000.1" | wc -l)
	ex_run man/aistack-dedup.1:3cdf90d8 --sub /usr/share/aistack/ "$EX_DOCS/examples/"
	ex_ok
	kept=$(records dataset)
	[ "$kept" -eq "$(learning_pairs "$T/gen.5000.1")" ]
	[ "$kept" -lt "$extracted" ]
	# the same as examples/learning-flow.sh on the same telemetry
	mkdir -p "$T/flow"
	AISTACK_STATE_DIR=$T/flow QUIET=1 "$EX_DOCS/examples/learning-flow.sh" "$T/gen.5000.1"
	[ "$(zcat -f "$T"/flow/streams/dataset/0* | wc -l)" -eq "$kept" ]
}

@test "aistack-dedup(1): drop records repeated whatever their spelling, and see what was dropped" {
	gen_records 100 > in.jsonl
	gen_records 30 | jq -cS . | sed 's/:/: /g; s/^{/{ /' >> in.jsonl
	ex_run man/aistack-dedup.1:01ad42ab
	ex_ok
	[ "$(cat out.jsonl)" = "$(gen_records 100)" ]
	[ "$(wc -l < dropped.jsonl)" -eq 30 ]
	jq -en "(30 / 130 - $(ex_out 2)) | fabs < 1e-6"
}

@test "aistack-dedup(1): lines repeated byte for byte, as awk '!seen[\$0]++'" {
	"$TESTS_DIR/../bench/gen-telemetry" -n 300 | cut -d, -f2,3 > events.log
	ex_run man/aistack-dedup.1:494b2d41
	ex_ok
	[ "$(cat unique.log)" = "$(awk '!seen[$0]++' events.log)" ]
	[ "$(wc -l < unique.log)" -lt 300 ]
}

@test "aistack-dedup(1): one answer per question and user, across daily files" {
	day() {	# day USER:QUESTION...: one record a pair, answered anew each day
		for p in "$@"; do
			jq -cn --arg u "${p%%:*}" --arg q "${p#*:}" --arg d "$RANDOM" \
				'{user: $u, messages: [{role: "system", content: "s"}, {role: "user", content: $q},
				  {role: "assistant", content: ("answer " + $d)}]}'
		done > day.jsonl
	}
	day ann:q1 ann:q2 bob:q1 ann:q1
	ex_run man/aistack-dedup.1:3532e9fc
	ex_ok
	[ "$(ex_out 1 | jq -r '.user + ":" + .messages[1].content' | paste -sd' ')" = "ann:q1 ann:q2 bob:q1" ]
	day bob:q1 bob:q2 ann:q2 cy:q1
	ex_run man/aistack-dedup.1:3532e9fc
	ex_ok
	[ "$(ex_out 1 | jq -r '.user + ":" + .messages[1].content' | paste -sd' ')" = "bob:q2 cy:q1" ]
}

@test "aistack-dedup(1): prompts that differ by a word or two" {
	python3 -c '
import json, random
r = random.Random(9)
words = "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi omicron pi rho sigma tau upsilon".split()
for i in range(10):
    t = [r.choice(words) for _ in range(50)]
    print(json.dumps({"prompt": " ".join(t)}))
    print(json.dumps({"prompt": " ".join(t).upper().replace(" ", "  ")}))
    print(json.dumps({"prompt": " ".join(t + [r.choice(words)])}))
    print(json.dumps({"prompt": " ".join(t[:-1] + [r.choice(words), r.choice(words)])}))
' > prompts.jsonl
	ex_run man/aistack-dedup.1:da4c7b86
	ex_ok
	[ "$(ex_out 1)" = "$(awk 'NR % 4 == 1' prompts.jsonl)" ]
}

@test "aistack-dedup(1): bad lines set aside instead of stopping" {
	{ gen_records 10; echo 'not json'; gen_records 3; echo '[1,2]'; } > mixed.jsonl
	ex_run man/aistack-dedup.1:bd622f2b
	ex_status 1 0
	[ "$(cat clean.jsonl)" = "$(gen_records 10)" ]
	[ "$(wc -l < rejects.jsonl)" -eq 5 ]
	grep -q 'not json' rejects.jsonl
	grep -q '^aistack-dedup: stdin:11: ' <<< "$(ex_err 1)"
	grep -q '^aistack-dedup: stdin:15: ' <<< "$(ex_err 1)"
}

@test "aistack-dedup(1): the key path grammar (exempt: a grammar, not a command)" {
	ex_exempt man/aistack-dedup.1:a5aba1bb "a grammar; the key paths it allows are tested in tests/dedup.bats"
}

# --- aistack-rotate(1) -----------------------------------------------------

@test "aistack-rotate(1): the nightly plan, in the format the page shows, changes nothing" {
	telemetry 200
	aistack-rotate --seal-size 1 telemetry
	telemetry 50 2
	aistack-rotate --seal-size 1 telemetry
	telemetry 50 3
	segs=("$STREAMS"/telemetry/0*.jsonl)
	touch -d '40 days ago' "${segs[0]}"
	touch -d '10 days ago' "${segs[1]}"
	before=$(cd "$STREAMS" && ls -lR)
	ex_run man/aistack-rotate.1:ed8699b3
	ex_ok
	[ "$(cd "$STREAMS" && ls -lR)" = "$before" ]
	[ "$(ex_text man/aistack-rotate.1:37b916b8)" = 'ACTION TARGET FILE BYTES [REASON]' ]
	out=$(ex_out 1)
	[ -n "$out" ]
	while read -r action target file bytes reason; do
		[[ $action =~ ^(seal|compress|delete|keep|rotate|recover)$ ]]
		[ "$target" = telemetry ]
		[[ $file == 0*.jsonl* ]]
		[[ $bytes =~ ^[0-9]+$ ]]
	done <<< "$out"
	grep -qE '^compress telemetry ' <<< "$out"
	grep -qE '^delete telemetry ' <<< "$out"
}

@test "aistack-rotate(1): a stream kept under 20G, compressed after one day" {
	telemetry 200
	aistack-rotate --seal-size 1 telemetry
	sealed=$STREAMS/telemetry/00000000000000000000.jsonl
	touch -d '2 days ago' "$sealed"
	ex_run man/aistack-rotate.1:e7199362
	ex_ok
	[ -e "$sealed.gz" ] && [ ! -e "$sealed" ]
	[ "$(records telemetry)" -eq "$(valid_lines "$T/gen.200.1" | cut -d' ' -f1)" ]
}

@test "aistack-rotate(1): logs appended under fcntl.flock rotated while written, nothing lost" {
	mkdir -p "$T/var/log/aidb"
	log=$T/var/log/aidb/queries.jsonl
	gen_records 5 old > "$log.20260101T000000Z"
	touch -d '20 days ago' "$log.20260101T000000Z"
	flock_writer "$log" 1 3000 &
	writer=$!
	ex_wait "[ -s '$log' ]"
	ex_run man/aistack-rotate.1:ead1148d --sub /var/log/aidb/ "$T/var/log/aidb/"
	ex_ok
	wait "$writer"
	[ ! -e "$log.20260101T000000Z" ]
	copies=("$log".2*)
	[ ${#copies[@]} -eq 1 ]
	[ "$(zcat -f "${copies[0]}" "$log" | jq -r .q)" = "$(seq 1 3000)" ]
}

@test "aistack-rotate(1): the drop-in for another service's logs is the one shipped; it verifies, and the unit then rotates them too" {
	text=$(ex_text man/aistack-rotate.1:926b4990)
	[ "$text" = "$(sed -n '/^\[Service\]/,$p' "$EX_DOCS/systemd/aistack-rotate-logs.conf" | sed 's|@BINDIR@|/usr/bin|')" ]
	installed_units
	mkdir -p "$T/u/aistack-rotate.service.d"
	sed "s|/usr/bin/|$T/root/usr/bin/|" <<< "$text" > "$T/u/aistack-rotate.service.d/aidb-logs.conf"
	verify_units "$T/u/aistack-rotate.service"
	# started as systemd would (its user and groups aside: see run-unit)
	sed -i "s|/var/log/aidb|$T/var/log/aidb|g" "$T/u/aistack-rotate.service.d/aidb-logs.conf"
	mkdir -p "$T/var/log/aidb"
	gen_records 20 > "$T/var/log/aidb/app.jsonl"
	export AISTACK_STATE_DIR=$T/var/lib/aistack
	STREAMS=$AISTACK_STATE_DIR/streams
	telemetry 100
	touch -d '2 days ago' "$STREAMS/telemetry/00000000000000000000.jsonl"
	run-unit --state-root "$T/var/lib" --setenv AISTACK_ROTATE_SEAL_AGE=1d "$T/u/aistack-rotate.timer"
	[ ! -s "$T/var/log/aidb/app.jsonl" ]
	copies=("$T"/var/log/aidb/app.jsonl.2*)
	[ "$(cat "${copies[0]}")" = "$(gen_records 20)" ]
	[ -e "$STREAMS/telemetry/00000000000000000000.jsonl" ]
	[ "$(ls "$STREAMS"/telemetry/0* | wc -l)" -eq 2 ]	# sealed: 1d old
}

@test "aistack-rotate(1): enable the timer (exempt: systemctl); the shipped units verify" {
	ex_exempt man/aistack-rotate.1:3a7d8d05 "systemctl needs systemd as PID 1"
	grep -qx 'systemctl enable --now aistack-rotate.timer' <<< "$(ex_text man/aistack-rotate.1:3a7d8d05)"
	unit_dir
	verify_units "$T/units/aistack-rotate.service" "$T/units/aistack-rotate.timer"
	# what the timer starts runs: every stream rotated
	telemetry 100
	run-unit --state-root "$T/var/lib" "$T/units/aistack-rotate.timer"
}

# --- aistack-breaker(1) ----------------------------------------------------

@test "aistack-breaker(1): an open breaker's refusal says what the page shows" {
	shown=$(ex_text man/aistack-breaker.1:3660fcf4)
	[ "$shown" = 'aistack-breaker: name is open; retry in Ns' ]
	aistack-breaker trip --open-for 90s postgres
	run aistack-breaker run postgres -- true
	[ "$status" -eq 75 ]
	[[ $output =~ ^aistack-breaker:\ postgres\ is\ open\;\ retry\ in\ (89|90)s$ ]]
}

@test "aistack-breaker(1): a timer's load into PostgreSQL, refused without failing the unit while the server is down" {
	ex_pg
	echo 'CREATE TABLE IF NOT EXISTS scores (n int); INSERT INTO scores VALUES (1);' > "$T/etc/aistack/load-scores.sql"
	for d in up down; do
		host=$PG_HOST
		[ "$d" = down ] && host=$(pg_down)
		# a unit file writes a % as %%
		ex_files man/aistack-breaker.1:47609ab8 "$T/units-$d" \
			--sub /usr/bin/aistack-breaker "$AISTACK_BIN/aistack-breaker" \
			--sub /etc/aistack/ "$T/etc/aistack/" --sub db.lab "${host//%/%%}"
	done
	verify_units "$T"/units-up/load-scores.*
	start() { run-unit --state-root "$T/var/lib" "$T/units-$1/load-scores.timer"; }
	start up
	[ "$(pg_q 'select count(*) from scores')" -eq 1 ]
	for i in 1 2 3 4 5; do
		run start down
		[ "$status" -eq 2 ]	# psql: no connection
	done
	run start down
	assert_success
	grep -q 'postgres is open; retry in' <<< "$output"
}

@test "aistack-breaker(1): pushing to Qdrant every minute, the breaker set up once in aistack.conf" {
	ex_upstream qdrant
	mkdir -p "$T/var/lib/aistack"
	echo '{"points":[{"id":1,"vector":[0.1,0.2]}]}' > "$T/var/lib/aistack/points.json"
	for d in up down; do
		port=$qdrant_PORT
		[ "$d" = down ] && port=$(free_port)
		ex_files man/aistack-breaker.1:e641f949 "$T/units-$d" \
			--sub /usr/bin/aistack-breaker "$AISTACK_BIN/aistack-breaker" \
			--sub /var/lib/aistack/ "$T/var/lib/aistack/" --sub qdrant.lab:6333 "127.0.0.1:$port"
	done
	verify_units "$T"/units-up/push-vectors.*
	start() {
		run-unit --state-root "$T/var/lib" --setenv "AISTACK_CONFIG=$T/units-$1/aistack.conf" \
			"$T/units-$1/push-vectors.timer"
	}
	run start up
	assert_success
	jq -e --argjson n "$(wc -c < "$T/var/lib/aistack/points.json")" \
		'.method == "PUT" and .path == "/collections/ai/points" and .body_bytes == $n' <<< "$output"
	# failures = 3 of [breaker qdrant] opens it after three
	for i in 1 2 3; do
		run start down
		[ "$status" -eq 7 ]	# curl: cannot connect
	done
	run start down
	assert_success
	grep -q 'qdrant is open; retry in' <<< "$output"
}

@test "aistack-breaker(1): probe the database, then see every breaker, as the page shows" {
	ex_pg
	aistack-breaker probe --failures 3 qdrant "http://127.0.0.1:$(free_port)/readyz" 2> /dev/null || true
	aistack-breaker probe --failures 3 qdrant "http://127.0.0.1:$(free_port)/readyz" 2> /dev/null || true
	aistack-breaker probe --failures 3 qdrant "http://127.0.0.1:$(free_port)/readyz" 2> /dev/null || true
	ex_run man/aistack-breaker.1:ccb189d1 --sub /run/postgresql "$PG_SOCK" \
		--env PGUSER=aistack --env "PGPASSFILE=$T/etc/aistack/pgpass"
	ex_ok
	[ -z "$(ex_shown 1)" ] && [ -z "$(ex_out 1)" ]
	# the same columns (their widths follow the longest name)
	[ "$(ex_out 2 | awk 'NR == 1 { $1 = $1; print }')" = "$(ex_shown 2 | awk 'NR == 1 { $1 = $1; print }')" ]
	fields=$(ex_shown 2 | awk 'NR == 2 { print NF }')
	ex_out 2 | awk -v n="$fields" 'NR > 1 && NF != n { exit 1 }'
	ex_out 2 | grep -qE '^qdrant +open +3 +0 +[0-9]+s +1 +3 +3 +0 +[0-9T:-]+Z$'
	[[ $(ex_out 3) =~ ^[1-9][0-9]*$ ]] && [[ $(ex_shown 3) =~ ^[1-9][0-9]*$ ]]
}

@test "aistack-breaker(1): stop every caller before a planned outage, let them back afterwards" {
	ex_run man/aistack-breaker.1:71922d9e \
		--then 1 "aistack-breaker status --json postgres > '$T/tripped'
			aistack-breaker run postgres -- true 2> /dev/null; echo \$? > '$T/run.rc'"
	ex_ok
	jq -e '.state == "open" and .retry_in > 7000' "$T/tripped"
	[ "$(cat "$T/run.rc")" -eq 75 ]
	run aistack-breaker status --json postgres
	jq -e '.state == "closed"' <<< "$output"
	run aistack-breaker run postgres -- true
	assert_success
}

@test "aistack-breaker(1): a shell script tells a refusal from a failure" {
	ex_pg
	args=(--env "PGHOST=$PG_SOCK" --env PGUSER=aistack --env PGDATABASE=aistack
		--env "PGPASSFILE=$T/etc/aistack/pgpass")
	echo 'CREATE TABLE IF NOT EXISTS batch (n int); INSERT INTO batch VALUES (1);' > batch.sql
	ex_run man/aistack-breaker.1:25eaa743 "${args[@]}"
	ex_ok
	[ "$(ex_shell_rc)" -eq 0 ]
	[ "$(pg_q 'select count(*) from batch')" -eq 1 ]
	# a batch that fails is a failure: the script exits 1
	echo 'INSERT INTO batch VALUES (1/0);' > batch.sql
	ex_run man/aistack-breaker.1:25eaa743 "${args[@]}"
	[ "$(ex_rc 1)" -ne 0 ] && [ "$(ex_rc 1)" -ne 75 ]
	[ "$(ex_shell_rc)" -eq 1 ]
	# the breaker is open: a refusal, said so, and not a failure
	aistack-breaker trip postgres
	ex_run man/aistack-breaker.1:25eaa743 "${args[@]}"
	ex_status 1 75
	ex_status 2 0
	[ "$(ex_err 2)" = 'postgres is down; the batch will be retried' ]
	[ "$(ex_shell_rc)" -eq 0 ]
}

# --- aistack-proxy(1) ------------------------------------------------------

@test "aistack-proxy(1): the stack's services behind one door, started by its unit; the access log as shown" {
	port=$(free_port)
	for s in aidb coordinator qdrant; do ex_upstream "$s"; done
	ex_files man/aistack-proxy.1:88f28ba4 "$T/etc/aistack" \
		--sub /etc/aistack/ "$T/etc/aistack/" --sub 127.0.0.1:8888 "127.0.0.1:$port" \
		--sub 127.0.0.1:8091 "127.0.0.1:$aidb_PORT" --sub 127.0.0.1:8092 "127.0.0.1:$coordinator_PORT" \
		--sub 127.0.0.1:6333 "127.0.0.1:$qdrant_PORT"
	unit_dir
	ex_run man/aistack-proxy.1:d79e7b72 \
		--sub /etc/aistack/ "$T/etc/aistack/" --sub localhost:8888 "localhost:$port" \
		--sub '-o aistack -g aistack' "-o $(id -un) -g $(id -gn)" \
		--instead 3 "run-unit --state-root '$T/var/lib' --setenv 'AISTACK_CONFIG=$T/etc/aistack/aistack.conf' \
			'$T/units/aistack-proxy.service'" \
			"PID 1 is not systemd here: the unit's own command is started instead" \
		--bg 3 --then 3 "ex_wait 'curl -s localhost:$port/health > /dev/null'"
	ex_ok 1 2 4 5
	grep -qx 'systemctl enable --now aistack-proxy' <<< "$(ex_orig 3)"
	[ "$(stat -c %a "$T/etc/aistack/proxy.token")" = 600 ]
	grep -qxE '[0-9a-f]{64}' "$T/etc/aistack/proxy.token"
	jq -e '.status == "ok" and (.circuit_breakers | keys) == ["aidb", "coordinator", "qdrant"]' <<< "$(ex_out 4)"
	jq -e '.service == "example-upstream" and .path == "/collections"' <<< "$(ex_out 5)"
	# every path the configuration allows answers, each of several per line
	auth="Authorization: Bearer $(cat "$T/etc/aistack/proxy.token")"
	for p in aidb/health aidb/v1/stats coordinator/health coordinator/status \
	    'coordinator/v1/metrics?format=json' qdrant/healthz qdrant/readyz qdrant/collections; do
		run curl -s -o /dev/null -w '%{http_code}' -H "$auth" "localhost:$port/upstream/$p"
		[ "$output" = 200 ] || { echo "$p: $output" >&2; false; }
	done
	run curl -s -o /dev/null -w '%{http_code}' -H "$auth" "localhost:$port/upstream/qdrant/points"
	[ "$output" = 403 ]
	# a path that tries to leave the list is refused, as shown
	ex_run man/aistack-proxy.1:49d6b8d7 --sub localhost:8888 "localhost:$port"
	ex_ok
	[ "$(ex_out 1)" = "$(ex_shown 1)" ]
	# the access log line of a /health call has the shape shown
	shown=$(ex_text man/aistack-proxy.1:96bc03bb)
	shape=$(sed 's/[][\.*^$+?(){}|]/\\&/g; s/[0-9][0-9]*/[0-9]+/g; s/[A-Z][a-z][a-z]/[A-Z][a-z]{2}/' <<< "$shown")
	grep -qE "^$shape\$" "$T/ex.1/3.err" || { cat "$T/ex.1/3.err" >&2; false; }
	EX=$T/ex.1 ex_stop 3
	EX=$T/ex.1 ex_status 3 0
}

@test "aistack-proxy(1): the drop-in for an upstream elsewhere verifies" {
	installed_units
	mkdir -p "$T/u/aistack-proxy.service.d"
	ex_text man/aistack-proxy.1:aa08fa64 > "$T/u/aistack-proxy.service.d/override.conf"
	verify_units "$T/u/aistack-proxy.service"
}

# --- aistack(7) ------------------------------------------------------------

@test "aistack(7): several hosts load their datasets into one PostgreSQL, each record once" {
	ex_pg
	host() {	# host NAME [SUBST...]: the example run on host NAME
		local h=$1
		shift
		ex_run man/aistack.7:d95b12ad --env "AISTACK_STATE_DIR=$T/$h" \
			--sub /etc/aistack/ "$T/etc/aistack/" "$@"
	}
	up=(--sub @db/ "@$PG_HOST/")
	AISTACK_STATE_DIR=$T/a aistack-ingest dataset < <(gen_records 60)
	AISTACK_STATE_DIR=$T/b aistack-ingest dataset < <(gen_records 100 | tail -n 60)
	host a "${up[@]}"
	ex_ok
	table=$(grep -oE -- '--table [a-z_.]+' <<< "$(ex_cmd 1)" | cut -d' ' -f2)
	[ "$(pg_q "select count(*) from $table")" -eq 60 ]
	host b "${up[@]}"
	ex_ok
	[ "$(pg_q "select count(*) from $table")" -eq 100 ]
	host a "${up[@]}"
	ex_ok
	[ "$(pg_q "select count(*) from $table")" -eq 100 ]
	# the database is down: loads fail, then the breaker fails them fast;
	# the consumer lags and loading resumes when it is back
	AISTACK_STATE_DIR=$T/a aistack-ingest dataset < <(gen_records 10 new)
	for i in 1 2 3 4 5; do
		host a --sub @db/ "@$(pg_down)/"
		ex_status 1 69
	done
	host a --sub @db/ "@$(pg_down)/"
	ex_status 1 75
	[ "$(AISTACK_STATE_DIR=$T/a consumer_field dataset pgload lag)" -gt 0 ]
	AISTACK_STATE_DIR=$T/a aistack-breaker reset postgres
	host a "${up[@]}"
	ex_ok
	[ "$(pg_q "select count(*) from $table")" -eq 110 ]
}

@test "aistack(7): messages name the failing thing first, as the page shows" {
	[ "$(ex_text man/aistack.7:70773b8b)" = 'aistack-CMD: context: reason' ]
	msgs=$( {
		aistack-ingest telemetry "$T/missing.jsonl"
		aistack-checkpoint commit learning nosuch
		echo 'nope' | aistack-dedup
		aistack-rotate "$T/missing/"
		aistack-breaker reset 'Bad Name'
		aistack-proxy --dashboard "$T/missing"
	} 2>&1 > /dev/null || true)
	[ "$(wc -l <<< "$msgs")" -ge 6 ]
	while IFS= read -r m; do
		[[ $m =~ ^aistack-(ingest|checkpoint|dedup|rotate|breaker|proxy):\ [^\ ].*:\ [^\ ].*$ ]] ||
			{ echo "not CMD: context: reason: $m" >&2; false; }
	done <<< "$msgs"
}

@test "aistack(7): the services (exempt: systemctl); the units named are shipped, a drop-in for an address elsewhere verifies" {
	ex_exempt man/aistack.7:fe3b2533 "systemctl needs systemd as PID 1; make package-check enables the units under a booted systemd"
	for u in $(ex_text man/aistack.7:fe3b2533 | grep -oE 'aistack-[a-z]+\.(service|timer)'); do
		[ -f "$EX_DOCS/systemd/$u" ] || { echo "no unit $u" >&2; false; }
	done
	installed_units
	mkdir -p "$T/u/aistack-learn.service.d"
	ex_text man/aistack.7:f3813bd2 > "$T/u/aistack-learn.service.d/override.conf"
	verify_units "$T/u/aistack-learn.service"
}

@test "aistack(7): commands by hand on the services' state, as their user" {
	export AISTACK_STATE_DIR=$T/var/lib/aistack
	STREAMS=$AISTACK_STATE_DIR/streams
	telemetry 50
	aistack-checkpoint read -n 10 learning telemetry > /dev/null
	unset AISTACK_STATE_DIR
	# the tests' user stands in for aistack
	ex_run man/aistack.7:aced7c9a --sub '-u aistack' "-u $(id -un)" --sub /var/lib/aistack "$T/var/lib/aistack"
	ex_ok
	grep -q '^telemetry: head ' <<< "$(ex_out 1)"
	grep -q learning <<< "$(ex_out 1)"
}

# --- aistack.conf(5) -------------------------------------------------------

@test "aistack.conf(5): every command takes the example file, and its settings hold" {
	ex_upstream qdrant
	port=$(free_port)
	ex_files man/aistack.conf.5:f9464bab "$T/etc/aistack" --sub /etc/aistack/ "$T/etc/aistack/" \
		--sub 127.0.0.1:8888 "127.0.0.1:$port" --sub 127.0.0.1:6333 "127.0.0.1:$qdrant_PORT"
	export AISTACK_CONFIG=$T/etc/aistack/aistack.conf
	install -m 0600 /dev/null "$T/etc/aistack/proxy.token"
	openssl rand -hex 32 > "$T/etc/aistack/proxy.token"
	gen_records 10 | aistack-ingest telemetry
	aistack-checkpoint status > /dev/null
	aistack-rotate -n
	aistack-breaker status > /dev/null
	gen_records 3 | aistack-dedup > /dev/null
	# [breaker] failures = 3
	for i in 1 2 3; do
		run aistack-breaker run postgres -- false
		[ "$status" -eq 1 ]
	done
	run aistack-breaker run postgres -- false
	[ "$status" -eq 75 ]
	# [proxy] and [upstream qdrant]: both allow lines, nothing else
	aistack-proxy 3>&- 2> "$T/proxy.err" &
	proxy=$!
	ex_wait "curl -s localhost:$port/health > /dev/null"
	auth="Authorization: Bearer $(cat "$T/etc/aistack/proxy.token")"
	for p in healthz:200 collections:200 readyz:403; do
		run curl -s -o /dev/null -w '%{http_code}' -H "$auth" "localhost:$port/upstream/qdrant/${p%:*}"
		[ "$output" = "${p#*:}" ]
	done
	kill "$proxy"
	wait "$proxy"
}
