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
	assert_output 'aistack-ingest: the PostgreSQL URI carries a password; give it in PGPASSWORD or a PGPASSFILE instead'
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
