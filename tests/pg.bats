#!/usr/bin/env bats
# aistack-ingest into PostgreSQL: a throwaway cluster for the suite.

load test_helper

setup_file() {
	PG_DIR=$(pg_mkdir)
	export PG_DIR
	pg_start "$PG_DIR"
}

teardown_file() {
	pg_stop "$PG_DIR"
	rm -rf "$PG_DIR"
}

setup() {
	common_setup
	pg_as "$PG_BIN/pg_ctl" -D "$PG_DIR/data" status > /dev/null 2>&1 ||
		pg_start "$PG_DIR"
	PG_URI="postgresql:///postgres?host=$PG_DIR/sock&user=postgres"
	T=t_$BATS_TEST_NUMBER
}

@test "loading the same file twice adds each record once" {
	gen_records 1000 > "$BATS_TEST_TMPDIR/in"
	run aistack-ingest --table "$T" --stats "$BATS_TEST_TMPDIR/s1" "$PG_URI" "$BATS_TEST_TMPDIR/in"
	assert_success
	assert_output ''
	run aistack-ingest --table "$T" --stats "$BATS_TEST_TMPDIR/s2" "$PG_URI" "$BATS_TEST_TMPDIR/in"
	assert_success
	assert_equal "$(psql_q "select count(*) from $T")" 1000
	assert_equal "$(psql_q "select count(distinct sha256) from $T")" 1000
	run jq -c '{records, already_present}' "$BATS_TEST_TMPDIR/s1" "$BATS_TEST_TMPDIR/s2"
	assert_output "$(printf '%s\n%s' '{"records":1000,"already_present":0}' '{"records":1000,"already_present":1000}')"
	# rows keep input order and the record itself
	assert_equal "$(psql_q "select record->>'id' from $T order by id limit 1")" r1
	assert_equal "$(psql_q "select record->>'id' from $T order by id desc limit 1")" r1000
	# the table has the documented shape
	run psql_q "select column_name || ' ' || data_type from information_schema.columns where table_name = '$T' order by ordinal_position"
	assert_output "$(printf 'id bigint\nsha256 bytea\nrecord jsonb\ningested_at timestamp with time zone')"
}

@test "records written differently but equal canonically are one row" {
	printf '%s\n' '{"a":1,"b":"\u00e9"}' '{ "b" : "é", "a" : 1.0 }' '{"a":2}' |
		aistack-ingest --table "$T" "$PG_URI"
	assert_equal "$(psql_q "select count(*) from $T")" 2
	assert_equal "$(psql_q "select encode(sha256, 'hex') from $T order by id limit 1")" \
		"$(printf '{"a":1,"b":"é"}' | sha256sum | cut -d' ' -f1)"
}

@test "invalid lines go to TABLE.rejects, valid ones are loaded" {
	printf '{"a":1}\nnot json\n{"b":2}\n' | aistack-ingest --table "$T" "$PG_URI"
	assert_equal "$(psql_q "select count(*) from $T")" 2
	run jq -r .record "$STREAMS/$T.rejects/00000000000000000000.jsonl"
	assert_output 'not json'
}

@test "a record PostgreSQL refuses: exit 65 naming the line, nothing of the batch committed" {
	printf '{"a":1}\n{"a":2}\n{"s":"nul \\u0000 here"}\n{"a":3}\n' > "$BATS_TEST_TMPDIR/in"
	run aistack-ingest --table "$T" "$PG_URI" "$BATS_TEST_TMPDIR/in"
	assert_failure 65
	assert_output "aistack-ingest: $BATS_TEST_TMPDIR/in:3: postgres $PG_DIR/sock/postgres $T: unsupported Unicode escape sequence: \\u0000 cannot be converted to text."
	assert_equal "$(psql_q "select count(*) from $T")" 0
}

@test "a password in the URI is refused without echoing it" {
	run aistack-ingest "postgresql://postgres:hunter2@localhost/postgres" < /dev/null
	assert_failure 64
	assert_line --index 0 'aistack-ingest: the PostgreSQL URI carries a password; give it in PGPASSWORD or a PGPASSFILE instead'
	assert_line --index 1 --partial 'usage: aistack-ingest'
	run aistack-ingest "postgresql://localhost/postgres?password=hunter2" < /dev/null
	assert_failure 64
	refute_output --partial hunter2
}

@test "an unreachable server is exit 69, and so is a bad table name 64" {
	run aistack-ingest "postgresql:///postgres?host=$BATS_TEST_TMPDIR/nosock&user=postgres" < /dev/null
	assert_failure 69
	assert_output --partial 'aistack-ingest: postgres: connection to server on socket'
	run aistack-ingest --table 'Bad Name' "$PG_URI" < /dev/null
	assert_failure 64
}

@test "the server stopped mid-load: exit 69, committed batches stay, nothing partial, a rerun completes" {
	gen_records 300 a- > "$BATS_TEST_TMPDIR/first"
	gen_records 300 b- > "$BATS_TEST_TMPDIR/second"
	fifo=$BATS_TEST_TMPDIR/fifo
	mkfifo "$fifo"
	aistack-ingest --table "$T" "$PG_URI" < "$fifo" 2> "$BATS_TEST_TMPDIR/err" &
	pid=$!
	exec 5> "$fifo"
	cat "$BATS_TEST_TMPDIR/first" >&5
	for _ in $(seq 1 100); do
		[ "$(psql_q "select count(*) from $T" 2>/dev/null)" = 300 ] && break
		sleep 0.1
	done
	assert_equal "$(psql_q "select count(*) from $T")" 300
	pg_stop "$PG_DIR"
	cat "$BATS_TEST_TMPDIR/second" >&5
	exec 5>&-
	status=0
	wait "$pid" || status=$?
	assert_equal "$status" 69
	run cat "$BATS_TEST_TMPDIR/err"
	assert_output --regexp "^aistack-ingest: postgres $PG_DIR/sock/postgres $T: "
	pg_start "$PG_DIR"
	assert_equal "$(psql_q "select count(*) from $T")" 300
	assert_equal "$(psql_q "select count(*) from $T where record->>'id' like 'b-%'")" 0
	cat "$BATS_TEST_TMPDIR/first" "$BATS_TEST_TMPDIR/second" |
		aistack-ingest --table "$T" "$PG_URI"
	assert_equal "$(psql_q "select count(*) from $T")" 600
}

@test "a breaker around the load opens after repeated failures" {
	down="postgresql:///postgres?host=$BATS_TEST_TMPDIR/nosock&user=postgres"
	for i in 1 2 3; do
		run aistack-breaker run --failures 3 postgres -- aistack-ingest "$down" < /dev/null
		assert_failure 69
	done
	run aistack-breaker run --failures 3 postgres -- aistack-ingest "$down" < /dev/null
	assert_failure 75
	assert_output --regexp '^aistack-breaker: postgres is open; retry in [0-9]+s$'
}

@test "-v says how many records were inserted and how many were already there" {
	gen_records 30 > "$BATS_TEST_TMPDIR/in"
	run aistack-ingest -v --table "$T" "$PG_URI" "$BATS_TEST_TMPDIR/in"
	assert_success
	assert_output --partial ": 30 records inserted, 0 already present, 0 rejected"
	gen_records 40 > "$BATS_TEST_TMPDIR/in"
	run aistack-ingest -v --table "$T" "$PG_URI" "$BATS_TEST_TMPDIR/in"
	assert_success
	assert_output --partial ": 10 records inserted, 30 already present, 0 rejected"
}

# --- --key and --normalize: the digest is aistack-dedup -k's ----------------

KEY=.prompt,.response,.params.temperature
NORM=trim,lower,space

# pairs N DIGEST of the table's rows, sorted
rows_by_n() {
	psql_q "select record->>'n', encode(sha256, 'hex') from $T" | tr '|' ' ' | sort
}
# pairs N DIGEST of the reference (tests/bin/dedup-key-ref) for FILE's lines
ref_by_n() {
	local f=$1
	shift
	paste -d' ' <(jq -r .n "$f") <(dedup-key-ref "$@" < "$f") | sort
}

@test "--key: records that differ outside the key are one row, the first; digests are the key's" {
	gen-key-variants -n 300 --seed 5 > "$BATS_TEST_TMPDIR/in"
	head -n 200 "$BATS_TEST_TMPDIR/in" > "$BATS_TEST_TMPDIR/first"
	# two runs: keys already present from an earlier batch, and within one
	run aistack-ingest -k "$KEY" --normalize "$NORM" --table "$T" "$PG_URI" "$BATS_TEST_TMPDIR/first"
	assert_success
	run aistack-ingest --key "$KEY" --normalize "$NORM" --table "$T" \
		--stats "$BATS_TEST_TMPDIR/stats" "$PG_URI" "$BATS_TEST_TMPDIR/in"
	assert_success
	# the rows are what aistack-dedup keeps, in its order
	aistack-dedup -k "$KEY" --normalize "$NORM" < "$BATS_TEST_TMPDIR/in" | jq -r .n > "$BATS_TEST_TMPDIR/kept"
	assert_equal "$(wc -l < "$BATS_TEST_TMPDIR/kept")" 300
	psql_q "select record->>'n' from $T order by id" > "$BATS_TEST_TMPDIR/rows"
	diff -u "$BATS_TEST_TMPDIR/kept" "$BATS_TEST_TMPDIR/rows"
	# each row's digest is the reference digest of its record's key
	join <(rows_by_n) <(ref_by_n "$BATS_TEST_TMPDIR/in" -k "$KEY" --normalize "$NORM") |
		awk '$2 != $3 { bad++ } END { print NR, bad + 0 }' > "$BATS_TEST_TMPDIR/cmp"
	assert_equal "$(cat "$BATS_TEST_TMPDIR/cmp")" "300 0"
	# the second run added the keys the first had not seen
	local all first
	all=$(wc -l < "$BATS_TEST_TMPDIR/in")
	first=$(aistack-dedup -k "$KEY" --normalize "$NORM" < "$BATS_TEST_TMPDIR/first" | wc -l)
	run jq -c '{records, already_present}' "$BATS_TEST_TMPDIR/stats"
	assert_output "{\"records\":$all,\"already_present\":$((all - (300 - first)))}"
	# the key definition is the sha256 column's comment
	run psql_q "select col_description('$T'::regclass, 2)"
	assert_output "$(printf 'aistack-ingest key 1\nkey paths .prompt,.response,.params.temperature\nnormalize lower,space,trim\n')"
}

@test "ingest --key and dedup -k agree on the digest for tricky inputs, under every key definition" {
	gen-key-variants -n 150 --seed 8 --ways 4 > "$BATS_TEST_TMPDIR/in"
	local i=0 def
	# the quotes of a path are the path's own: literal, as meant
	# shellcheck disable=SC2089,SC2090
	for def in "" "--normalize trim" "-k .prompt" "-k .response --normalize lower" \
	    "-k .params,.prompt --normalize space" '-k ."prompt",.missing[0],.params["temperature"]'; do
		i=$((i + 1))
		# shellcheck disable=SC2086,SC2090 # the definition is words
		aistack-ingest $def --table "${T}_$i" "$PG_URI" "$BATS_TEST_TMPDIR/in"
		# shellcheck disable=SC2086,SC2090
		aistack-dedup $def < "$BATS_TEST_TMPDIR/in" | jq -r .n > "$BATS_TEST_TMPDIR/kept"
		psql_q "select record->>'n' from ${T}_$i order by id" > "$BATS_TEST_TMPDIR/rows"
		diff -u "$BATS_TEST_TMPDIR/kept" "$BATS_TEST_TMPDIR/rows" || fail "definition [$def]"
		T=${T}_$i
		# shellcheck disable=SC2086,SC2090
		join <(rows_by_n) <(ref_by_n "$BATS_TEST_TMPDIR/in" $def) |
			awk '$2 != $3 { bad++ } END { print NR, bad + 0 }' > "$BATS_TEST_TMPDIR/cmp"
		T=${T%_*}
		assert_equal "$(cat "$BATS_TEST_TMPDIR/cmp")" "$(wc -l < "$BATS_TEST_TMPDIR/kept") 0"
	done
}

@test "a table of another key definition is refused (78), loading nothing; the same one spelled otherwise is not" {
	printf '%s\n' '{"a":1,"b":"x"}' '{"a":1,"b":"y"}' > "$BATS_TEST_TMPDIR/in"
	aistack-ingest --table "$T" "$PG_URI" "$BATS_TEST_TMPDIR/in"
	run aistack-ingest -k .a --table "$T" "$PG_URI" "$BATS_TEST_TMPDIR/in"
	assert_failure 78
	assert_output "aistack-ingest: postgres $PG_DIR/sock/postgres $T: the table's sha256 is the digest of another key (key canonical; normalize none), not of this one (key paths .a; normalize none): load it with the table's --key and --normalize, or into another --table"
	run aistack-ingest --normalize lower --table "$T" "$PG_URI" "$BATS_TEST_TMPDIR/in"
	assert_failure 78
	assert_equal "$(psql_q "select count(*) from $T")" 2
	# a --key table refuses the canonical digest and other paths
	aistack-ingest -k .a --table "${T}k" "$PG_URI" "$BATS_TEST_TMPDIR/in"
	assert_equal "$(psql_q "select count(*) from ${T}k")" 1
	run aistack-ingest --table "${T}k" "$PG_URI" "$BATS_TEST_TMPDIR/in"
	assert_failure 78
	run aistack-ingest -k .a,.b --table "${T}k" "$PG_URI" "$BATS_TEST_TMPDIR/in"
	assert_failure 78
	run aistack-ingest -k .a --normalize trim --table "${T}k" "$PG_URI" "$BATS_TEST_TMPDIR/in"
	assert_failure 78
	# the same definition spelled otherwise
	run aistack-ingest -k '."a"' --table "${T}k" "$PG_URI" "$BATS_TEST_TMPDIR/in"
	assert_success
	assert_equal "$(psql_q "select count(*) from ${T}k")" 1
}

@test "a table made before --key (no comment) holds canonical digests: loaded without --key, refused with it" {
	psql_q "create table $T (id bigserial primary key, sha256 bytea unique not null, record jsonb not null, ingested_at timestamptz not null default now())"
	printf '%s\n' '{"a":1}' '{"a":1.0}' '{"a":2}' > "$BATS_TEST_TMPDIR/in"
	run aistack-ingest --table "$T" "$PG_URI" "$BATS_TEST_TMPDIR/in"
	assert_success
	assert_equal "$(psql_q "select count(*) from $T")" 2
	run aistack-ingest -k .a --normalize lower --table "$T" "$PG_URI" "$BATS_TEST_TMPDIR/in"
	assert_failure 78
	assert_output --partial "another key (key canonical; normalize none), not of this one (key paths .a; normalize lower)"
	# a comment that is not a key definition: refused, whatever the key
	psql_q "comment on column $T.sha256 is 'checksums'"
	run aistack-ingest --table "$T" "$PG_URI" "$BATS_TEST_TMPDIR/in"
	assert_failure 78
	assert_output "aistack-ingest: postgres $PG_DIR/sock/postgres $T: the comment of the sha256 column is not a key definition of aistack-ingest; its digests cannot be trusted to be this key's"
}

@test "--key and --normalize: only for a PostgreSQL target, a valid list (64)" {
	run aistack-ingest -k .a t < /dev/null
	assert_failure 64
	assert_line --index 0 'aistack-ingest: --key: only for a PostgreSQL target (a stream keeps every record; aistack-dedup -k filters by key)'
	assert_line --index 1 --partial 'usage: aistack-ingest'
	run aistack-ingest --normalize trim t < /dev/null
	assert_failure 64
	run aistack-ingest -k '.a.' --table "$T" "$PG_URI" < /dev/null
	assert_failure 64
	assert_line --index 0 "aistack-ingest: --key: .a.: expected a name, a string or '[' at character 4"
	assert_line --index 1 --partial 'usage: aistack-ingest'
	run aistack-ingest --normalize upper --table "$T" "$PG_URI" < /dev/null
	assert_failure 64
	assert_line --index 0 'aistack-ingest: --normalize: invalid list "upper" (expected trim, lower, space)'
	assert_line --index 1 --partial 'usage: aistack-ingest'
	[ ! -e "$STREAMS/t" ]
}

@test "loaders that create the table at the same moment: one table, every row" {
	local i pids=()
	for i in 1 2 3 4 5 6; do
		gen_records 200 "p$i-" > "$BATS_TEST_TMPDIR/in$i"
	done
	for i in 1 2 3 4 5 6; do
		aistack-ingest --table "$T" "$PG_URI" "$BATS_TEST_TMPDIR/in$i" 3>&- &
		pids+=($!)
	done
	for i in "${pids[@]}"; do
		wait "$i"
	done
	assert_equal "$(psql_q "select count(*) from $T")" 1200
}

@test "loaders of the same keys in opposite orders never deadlock" {
	gen_records 20000 > "$BATS_TEST_TMPDIR/fwd"
	tac "$BATS_TEST_TMPDIR/fwd" > "$BATS_TEST_TMPDIR/rev"
	local f pids=() st=0
	for f in fwd rev fwd rev; do
		aistack-ingest --table "$T" "$PG_URI" "$BATS_TEST_TMPDIR/$f" \
			2>> "$BATS_TEST_TMPDIR/err" 3>&- &
		pids+=($!)
	done
	for f in "${pids[@]}"; do
		wait "$f" || st=$?
	done
	run cat "$BATS_TEST_TMPDIR/err"
	assert_output ''
	assert_equal "$st" 0
	assert_equal "$(psql_q "select count(*) from $T")" 20000
}

# loader HOST: the flow of one host, from its own state directory: its
# stream is loaded into the table by aistack-checkpoint run, restarted
# until it exits 0 (killed, or the database away); its pid in HOST/pid.
loader() {
	local dir=$BATS_TEST_TMPDIR/$1 tries=0 pid
	export AISTACK_STATE_DIR=$dir
	while [ $tries -lt 2000 ]; do
		tries=$((tries + 1))
		aistack-checkpoint run -n 20 pg events -- \
			aistack-ingest -k "$KEY" --normalize "$NORM" --table "$T" \
			"$PG_URI" 2>> "$dir/err" &
		pid=$!
		echo "$pid" > "$dir/pid"
		if wait "$pid"; then
			echo "$tries" > "$dir/done"
			return 0
		fi
		sleep 0.05
	done
	return 1
}

@test "three hosts load overlapping datasets at once, with kill -9s and a database restart: one row per key, nothing missing" {
	local h n=1500 kills=0 restarted=0 deadline pid
	# one set of interactions, seen by three hosts in their own spellings,
	# orders and metadata: a 0-899, b 600-1499, c every interaction
	gen-key-variants -n $n --seed 21 --spell-seed 1 --host a --ways 2 --only 0:900 > "$BATS_TEST_TMPDIR/a.jsonl"
	gen-key-variants -n $n --seed 21 --spell-seed 2 --host b --ways 2 --only 600:$n > "$BATS_TEST_TMPDIR/b.jsonl"
	gen-key-variants -n $n --seed 21 --spell-seed 3 --host c --ways 1 > "$BATS_TEST_TMPDIR/c.jsonl"
	cat "$BATS_TEST_TMPDIR"/[abc].jsonl | dedup-key-ref -k "$KEY" --normalize "$NORM" |
		sort -u > "$BATS_TEST_TMPDIR/want"
	assert_equal "$(wc -l < "$BATS_TEST_TMPDIR/want")" $n
	for h in a b c; do
		mkdir -p "$BATS_TEST_TMPDIR/$h"
		AISTACK_STATE_DIR=$BATS_TEST_TMPDIR/$h aistack-ingest events "$BATS_TEST_TMPDIR/$h.jsonl"
	done
	for h in a b c; do
		loader "$h" 3>&- &
	done
	# chaos while they load: kill -9 a loader (the checkpoint, or its
	# batch pipeline) every few tenths of a second, and once rows are
	# arriving, restart the database without a clean shutdown
	deadline=$((SECONDS + 120))
	while [ $SECONDS -lt $deadline ]; do
		[ -e "$BATS_TEST_TMPDIR/a/done" ] && [ -e "$BATS_TEST_TMPDIR/b/done" ] &&
			[ -e "$BATS_TEST_TMPDIR/c/done" ] && break
		sleep "0.$((RANDOM % 3 + 1))"
		if [ $restarted -eq 0 ] && [ "$(psql_q "select count(*) from $T" 2>/dev/null || echo 0)" -gt 100 ]; then
			pg_as "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/log" -w \
				-m immediate restart > /dev/null 3>&-
			restarted=1
			continue
		fi
		[ $kills -lt 12 ] || continue
		h=$(printf 'a\nb\nc\n' | shuf -n 1)
		[ -e "$BATS_TEST_TMPDIR/$h/done" ] && continue
		pid=$(cat "$BATS_TEST_TMPDIR/$h/pid")
		# only while it is still that loader's run
		grep -q aistack-checkpoint "/proc/$pid/cmdline" 2>/dev/null || continue
		if [ $((RANDOM % 2)) -eq 0 ]; then
			kill -9 "$pid" 2>/dev/null && kills=$((kills + 1))
		else
			pkill -9 -P "$pid" 2>/dev/null && kills=$((kills + 1))
		fi
	done
	for h in a b c; do
		[ -e "$BATS_TEST_TMPDIR/$h/done" ] || fail "host $h did not finish: $(tail -n 3 "$BATS_TEST_TMPDIR/$h/err")"
	done
	[ $restarted -eq 1 ] || fail "the database was never restarted"
	[ $kills -ge 3 ] || fail "only $kills loaders were killed"
	# one row per key, every key there, and each row's digest its record's
	assert_equal "$(psql_q "select count(*) from $T")" $n
	psql_q "select encode(sha256, 'hex') from $T" | sort > "$BATS_TEST_TMPDIR/have"
	diff -u "$BATS_TEST_TMPDIR/want" "$BATS_TEST_TMPDIR/have"
	psql_q "select record::text from $T order by sha256" | dedup-key-ref -k "$KEY" --normalize "$NORM" |
		diff -u "$BATS_TEST_TMPDIR/have" -
	# every host read its whole stream
	for h in a b c; do
		run env AISTACK_STATE_DIR="$BATS_TEST_TMPDIR/$h" aistack-checkpoint status --json events
		assert_output --partial '"backlog":0'
	done
}

@test "--key on escape-heavy records and deep nesting: bounded CPU time, the 2048th container's value is a key" {
	local kind
	for kind in e9 emoji nl cjk mixed; do
		gen-escapes "$kind" 1048576 > "$BATS_TEST_TMPDIR/in"
		# the two spellings of the record are one row
		run bash -c 'ulimit -t 20; aistack-ingest --max-record 16M -k .text --normalize trim,lower --table "$1" "$2" "$0"' \
			"$BATS_TEST_TMPDIR/in" "${T}_$kind" "$PG_URI"
		assert_success
		assert_equal "$(psql_q "select count(*) from ${T}_$kind")" 1
	done
	{ gen-nested 2048 a 1; gen-nested 2048 a 2; gen-nested 2048 a '"x"'; } > "$BATS_TEST_TMPDIR/deep"
	path=.k$(printf '[0]%.0s' $(seq 1 2046))
	run aistack-ingest -k "$path" --table "$T" "$PG_URI" "$BATS_TEST_TMPDIR/deep"
	assert_success
	assert_equal "$(psql_q "select count(*) from $T")" 3
}
