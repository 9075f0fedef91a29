#!/usr/bin/env bats
# The fuzz corpora, replayed (fuzz/README.md): each committed input of
# fuzz/corpus/NAME goes once through the target's properties, built with
# the normal compiler (and under ASan + UBSan in the SANITIZE=1 pass).
load test_helper

replay() {	# replay NAME: run the target over its corpus
	local bin="$AISTACK_BIN/../fuzz/replay-$1"
	[ -x "$bin" ] || fail "$bin: not built (make replays)"
	run "$bin" "$TESTS_DIR/../fuzz/corpus/$1"
	assert_success
	local n
	n=$(find "$TESTS_DIR/../fuzz/corpus/$1" -type f ! -name '.*' | wc -l)
	assert_output "replay-$1: $n inputs replayed"
	[ "$n" -ge 5 ] || fail "corpus $1 has only $n inputs"
}

@test "every fuzz target has a seed corpus" {
	local f t missing=
	for f in "$TESTS_DIR"/../fuzz/fuzz_*.c; do
		t=${f##*/fuzz_}
		t=${t%.c}
		[ -d "$TESTS_DIR/../fuzz/corpus/$t" ] || missing="$missing $t"
	done
	assert_equal "$missing" ""
}

@test "every fuzz target is replayed by this file" {
	local f t missing=
	for f in "$TESTS_DIR"/../fuzz/fuzz_*.c; do
		t=${f##*/fuzz_}
		t=${t%.c}
		grep -q "^	replay $t\$" "$BATS_TEST_FILENAME" || missing="$missing $t"
	done
	assert_equal "$missing" ""
}

@test "fuzz corpus: record scanner against jansson" {
	replay json
}

@test "fuzz corpus: configuration parser" {
	replay config
}

@test "fuzz corpus: duration, size, integer and rate parsers" {
	replay parse
}

@test "fuzz corpus: consumer file parser" {
	replay consumer
}

@test "fuzz corpus: breaker state file reader" {
	replay breaker
}

@test "fuzz corpus: the proxy's router and token check" {
	replay route
}

@test "fuzz corpus: the canonicalizer" {
	replay canon
}

@test "fuzz corpus: the key-path parser and evaluator" {
	replay keypath
}

@test "fuzz corpus: the dedup key against a jansson reference" {
	replay dedupkey
}

@test "the replay driver fails on an input it cannot read" {
	run "$AISTACK_BIN/../fuzz/replay-json" "$BATS_TEST_TMPDIR/missing"
	assert_failure 66
	assert_output --partial "missing: No such file or directory"
}
