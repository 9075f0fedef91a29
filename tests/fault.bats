#!/usr/bin/env bats
# Fault injection (tests/fault/libfault.c): every file-system call that an
# operation makes under the state directory is made to fail in turn, and
# after each run the stream, consumer and state files must be intact.
#
# A walk first counts the calls of a clean run, then for every N runs the
# operation again from the same starting state with call N failing:
#   EIO     that call fails once;
#   ENOSPC  that call and every later one fail (a full file system);
#   EINTR   that write or fsync is interrupted: it must be retried, and the
#           run must succeed with the clean run's result;
#   SHORT   that write transfers half its bytes: the same.
# Each run must succeed or exit with a documented status, lose nothing it
# acknowledged and double nothing, and a clean run afterwards must succeed
# and leave the files as they should be.
load test_helper
bats_require_minimum_version 1.5.0

setup() {
	common_setup
	D=$BATS_TEST_TMPDIR
	# thousands of runs: on tmpfs, where fsync costs nothing, when there is one
	if [ -d /dev/shm ] && [ -w /dev/shm ]; then
		D=$(mktemp -d /dev/shm/aistack-fault.XXXXXX)
		export AISTACK_STATE_DIR=$D/state
		STREAMS=$AISTACK_STATE_DIR/streams
	fi
	LIBFAULT=$AISTACK_BIN/../lib/libfault.so
	[ -f "$LIBFAULT" ] || fail "$LIBFAULT: not built (make replays)"
	COUNTER=$D/fault.counter
	FLOG=$D/fault.log
	TEMPLATE=$D/template
	# libfault is loaded in front of the ASan runtime of a SANITIZE=1 build
	export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0"
}

teardown() {
	case $D in
	/dev/shm/aistack-fault.*) rm -rf "$D" ;;
	esac
}

# faulty N MODE COMMAND...: run COMMAND with the Nth counted call failing
# in MODE (N = 0 only counts); sets $status, $output (standard output)
# and $stderr like bats' run --separate-stderr.
faulty() {
	local n=$1 mode=$2 ops=open,write,fsync,rename,truncate,unlink persist=0
	shift 2
	case $mode in
	EINTR|SHORT) ops=write,fsync ;;
	ENOSPC) persist=1 ;;
	esac
	: > "$COUNTER"
	rm -f "$FLOG"
	run --separate-stderr env LD_PRELOAD="$LIBFAULT" FAULT_PREFIX="$AISTACK_STATE_DIR" \
	    FAULT_COUNTER="$COUNTER" FAULT_LOG="$FLOG" FAULT_NTH="$n" \
	    FAULT_ERRNO="$mode" FAULT_PERSIST="$persist" FAULT_OPS="$ops" "$@"
}

# faulted N MODE COMMAND...: faulty, and the Nth call did fail (a walk
# that injected nothing would prove nothing)
faulted() {
	faulty "$@"
	[ -s "$FLOG" ] || fail "call $1 in $2: nothing was injected"
}

calls() {	# the calls counted by the last faulty run
	od -An -tu8 -N8 "$COUNTER" | tr -d ' '
}

injected() {	# what the last faulty run had fail (the log's lines)
	[ -f "$FLOG" ] && cut -d' ' -f2- "$FLOG"
}

save_template() {	# the starting state of every run of a walk
	rm -rf "$TEMPLATE"
	if [ -d "$AISTACK_STATE_DIR" ]; then
		cp -a "$AISTACK_STATE_DIR" "$TEMPLATE"
	else
		mkdir -p "$TEMPLATE"
	fi
}

restore_template() {
	rm -rf "$AISTACK_STATE_DIR"
	cp -a "$TEMPLATE" "$AISTACK_STATE_DIR"
}

complete_lines() {	# complete_lines STREAM: the stream up to its last newline
	stream_bytes "$1" > "$D/lines"
	if [ -s "$D/lines" ] && [ -n "$(tail -c 1 "$D/lines")" ]; then
		head -n -1 "$D/lines"
	else
		cat "$D/lines"
	fi
}

whatfailed() {	# whatfailed N MODE: a description for failure messages
	printf 'call %s in %s (%s): status %s\n%s\n%s' "$1" "$2" \
	    "$(injected | tr '\n' ';')" "$status" "$output" "${stderr:-}"
}

status_in() {	# status_in CODE...: $status is one of them
	local c
	for c in "$@"; do
		[ "$status" -eq "$c" ] && return 0
	done
	return 1
}

# --- aistack-ingest --------------------------------------------------------

# ingest_input: 20 records and two bad lines (not JSON, not UTF-8)
ingest_input() {
	{
		gen_records 10 a
		printf '{"broken":\n'
		printf '{"bytes":"\377"}\n'
		gen_records 10 b
	} > "$D/input"
	{ gen_records 10 a; gen_records 10 b; } > "$D/good"
}

# check_ingest N MODE: the invariants after a faulted ingest of $D/input
# into s over the records of $D/before, then the recovery run.
check_ingest() {
	local n=$1 mode=$2 landed want
	status_in 0 73 74 || fail "undocumented status: $(whatfailed "$n" "$mode")"
	landed=$(complete_lines s)
	# whole records only, from the input, each once, in order: the
	# stream is what it held before plus a prefix of the input
	want=$(cat "$D/before" "$D/good")
	case $want in
	"$landed"*) ;;
	*) fail "stream is not the old records plus a prefix of the input: $(whatfailed "$n" "$mode")" ;;
	esac
	if [ "$status" -eq 0 ]; then
		[ "$landed" = "$want" ] ||
		    fail "acknowledged records missing: $(whatfailed "$n" "$mode")"
		[ "$(stream_bytes s.rejects | wc -l)" -eq 2 ] ||
		    fail "rejects missing: $(whatfailed "$n" "$mode")"
		# a failed write or sync of the stream is never acknowledged
		if [ "$mode" = EIO ] || [ "$mode" = ENOSPC ]; then
			if injected | grep -qE '^(write|fdatasync|fsync) [A-Z]+ .*/streams/s/[0-9]+\.jsonl$'; then
				fail "acknowledged after a failed write or sync: $(whatfailed "$n" "$mode")"
			fi
		fi
	fi
	# the next writer repairs what the failure left and appends after
	# the records that landed
	run aistack-ingest s <<< '{"id":"after"}'
	[ "$status" -eq 0 ] || fail "recovery run failed: $output; after $(whatfailed "$n" "$mode")"
	want=$({ [ -z "$landed" ] || printf '%s\n' "$landed"; echo '{"id":"after"}'; })
	[ "$(stream_bytes s)" = "$want" ] ||
	    fail "recovery run: stream is not the landed records plus one: $(whatfailed "$n" "$mode")"
}

# walk_ingest ARGS...: walk every call of "aistack-ingest ARGS s $D/input"
walk_ingest() {
	local total n mode clean
	save_template
	for mode in EIO ENOSPC EINTR SHORT; do
		restore_template
		faulty 0 "$mode" aistack-ingest "$@" s "$D/input"
		assert_success
		total=$(calls)
		[ "$total" -gt 3 ] || fail "only $total calls counted"
		clean=$(stream_bytes s)
		echo "# ingest $*: $mode at each of $total calls" >&3
		for n in $(seq 1 "$total"); do
			restore_template
			faulted "$n" "$mode" aistack-ingest "$@" s "$D/input"
			case $mode in
			EINTR|SHORT)
				[ "$status" -eq 0 ] ||
				    fail "not retried: $(whatfailed "$n" "$mode")"
				[ "$(stream_bytes s)" = "$clean" ] ||
				    fail "stream differs from the clean run: $(whatfailed "$n" "$mode")"
				;;
			esac
			check_ingest "$n" "$mode"
		done
	done
}

@test "ingest into a new stream: every call failing in turn" {
	ingest_input
	: > "$D/before"
	walk_ingest
}

@test "ingest into a stream with a torn tail and a consumer" {
	ingest_input
	mkdir -p "$STREAMS/s"
	gen_records 3 old > "$STREAMS/s/00000000000000000000.jsonl"
	cp "$STREAMS/s/00000000000000000000.jsonl" "$D/before"
	printf '{"id":"torn' >> "$STREAMS/s/00000000000000000000.jsonl"
	set_consumer s c 20
	walk_ingest
}

@test "ingest --sync always: every call failing in turn" {
	{ gen_records 5 a; printf 'not json\n'; } > "$D/input"
	gen_records 5 a > "$D/good"
	: > "$D/before"
	# two bad lines are expected by check_ingest: add the second
	printf '\377\n' >> "$D/input"
	walk_ingest --sync always
}

# --- aistack-checkpoint ----------------------------------------------------

consumer_json() {	# consumer_json FIELD: from streams/s/consumers/c
	jq -er ".$1" "$STREAMS/s/consumers/c"
}

# offsets: the stream offset after each record of s, one per line
offsets() {
	stream_bytes s | awk '{ o += length($0) + 1; print o }'
}

@test "checkpoint commit: every call failing in turn" {
	local total n mode off4 committed
	gen_records 10 r > "$D/input"
	aistack-ingest s "$D/input"
	run aistack-checkpoint read -n 4 c s
	assert_success
	off4=$(offsets | sed -n 4p)
	[ "$(consumer_json pending)" -eq "$off4" ] || fail "read left no pending offset"
	save_template
	for mode in EIO ENOSPC EINTR SHORT; do
		restore_template
		faulty 0 "$mode" aistack-checkpoint commit c s
		assert_success
		total=$(calls)
		[ "$total" -gt 3 ] || fail "only $total calls counted"
		echo "# checkpoint commit: $mode at each of $total calls" >&3
		for n in $(seq 1 "$total"); do
			restore_template
			faulted "$n" "$mode" aistack-checkpoint commit c s
			status_in 0 74 ||
			    fail "undocumented status: $(whatfailed "$n" "$mode")"
			case $mode in
			EINTR|SHORT) [ "$status" -eq 0 ] ||
			    fail "not retried: $(whatfailed "$n" "$mode")" ;;
			esac
			# the old state or the new one, never a torn file
			committed=$(consumer_json committed) ||
			    fail "consumer file unreadable: $(whatfailed "$n" "$mode")"
			[ "$committed" -eq 0 ] || [ "$committed" -eq "$off4" ] ||
			    fail "committed $committed: $(whatfailed "$n" "$mode")"
			if [ "$status" -eq 0 ]; then
				[ "$committed" -eq "$off4" ] ||
				    fail "acknowledged commit lost: $(whatfailed "$n" "$mode")"
			fi
			if [ "$mode" = EIO ] &&
			    ls -A "$STREAMS/s/consumers" | grep -q '^\.c\.tmp'; then
				fail "temporary file left: $(whatfailed "$n" "$mode")"
			fi
			# the next read starts after what was committed
			run aistack-checkpoint read -n 100 c s
			[ "$status" -eq 0 ] || fail "read after: $output; $(whatfailed "$n" "$mode")"
			if [ "$committed" -eq 0 ]; then
				[ "$output" = "$(cat "$D/input")" ] ||
				    fail "read after a failed commit: $(whatfailed "$n" "$mode")"
			else
				[ "$output" = "$(tail -n 6 "$D/input")" ] ||
				    fail "read after a commit: $(whatfailed "$n" "$mode")"
			fi
		done
	done
}

@test "checkpoint run in batches: every call failing in turn" {
	local total n mode committed k m head
	gen_records 5 r > "$D/input"
	aistack-ingest s "$D/input"
	head=$(offsets | tail -n 1)
	save_template
	for mode in EIO ENOSPC EINTR SHORT; do
		restore_template
		rm -f "$D/out"
		faulty 0 "$mode" aistack-checkpoint run -n 3 c s -- \
		    sh -c 'cat >> "$0"' "$D/out"
		assert_success
		total=$(calls)
		[ "$total" -gt 3 ] || fail "only $total calls counted"
		echo "# checkpoint run: $mode at each of $total calls" >&3
		for n in $(seq 1 "$total"); do
			restore_template
			: > "$D/out"
			faulted "$n" "$mode" aistack-checkpoint run -n 3 c s -- \
			    sh -c 'cat >> "$0"' "$D/out"
			status_in 0 74 ||
			    fail "undocumented status: $(whatfailed "$n" "$mode")"
			case $mode in
			EINTR|SHORT) [ "$status" -eq 0 ] ||
			    fail "not retried: $(whatfailed "$n" "$mode")" ;;
			esac
			# committed at a batch boundary, and only what was delivered
			committed=0
			if [ -e "$STREAMS/s/consumers/c" ]; then
				committed=$(consumer_json committed) ||
				    fail "consumer file unreadable: $(whatfailed "$n" "$mode")"
			fi
			k=0
			[ "$committed" -eq 0 ] || k=$(offsets | grep -nx "$committed" | cut -d: -f1)
			case $k in
			0|3|5) ;;
			*) fail "committed $committed (record $k): $(whatfailed "$n" "$mode")" ;;
			esac
			m=$(wc -l < "$D/out")
			[ "$(cat "$D/out")" = "$(head -n "$m" "$D/input")" ] ||
			    fail "delivered records out of order: $(whatfailed "$n" "$mode")"
			[ "$m" -ge "$k" ] && [ $((m - k)) -le 3 ] ||
			    fail "$m delivered, $k committed: $(whatfailed "$n" "$mode")"
			[ "$status" -ne 0 ] || [ "$k" -eq 5 ] ||
			    fail "success with records left: $(whatfailed "$n" "$mode")"
			# a clean run delivers the rest, from the committed offset
			run aistack-checkpoint run -n 3 c s -- sh -c 'cat >> "$0"' "$D/out"
			[ "$status" -eq 0 ] || fail "run after: $output; $(whatfailed "$n" "$mode")"
			[ "$(cat "$D/out")" = "$(head -n "$m" "$D/input"; tail -n +"$((k + 1))" "$D/input")" ] ||
			    fail "records after recovery: $(whatfailed "$n" "$mode")"
			[ "$(consumer_json committed)" -eq "$head" ] ||
			    fail "not all committed after recovery: $(whatfailed "$n" "$mode")"
		done
	done
}

# --- aistack-rotate --------------------------------------------------------

@test "rotate compressing a sealed segment: every call failing in turn" {
	local total n mode all plain gz
	gen_records 10 a > "$D/input"
	aistack-ingest s "$D/input"
	aistack-rotate --seal-size 1 s
	gen_records 3 b | aistack-ingest s
	plain=$STREAMS/s/00000000000000000000.jsonl
	gz=$plain.gz
	[ -f "$plain" ] || fail "no sealed segment"
	all=$(stream_bytes s)
	save_template
	for mode in EIO ENOSPC EINTR SHORT; do
		restore_template
		faulty 0 "$mode" aistack-rotate --compress-after 0s s
		assert_success
		[ -f "$gz" ] && [ ! -e "$plain" ] || fail "clean run did not compress"
		total=$(calls)
		[ "$total" -gt 3 ] || fail "only $total calls counted"
		echo "# rotate gzip: $mode at each of $total calls" >&3
		for n in $(seq 1 "$total"); do
			restore_template
			faulted "$n" "$mode" aistack-rotate --compress-after 0s s
			status_in 0 73 74 ||
			    fail "undocumented status: $(whatfailed "$n" "$mode")"
			case $mode in
			EINTR|SHORT) [ "$status" -eq 0 ] ||
			    fail "not retried: $(whatfailed "$n" "$mode")" ;;
			esac
			# one form of the segment, the same bytes
			if [ "$status" -eq 0 ]; then
				[ -f "$gz" ] && [ ! -e "$plain" ] ||
				    fail "success without the gzip form alone: $(whatfailed "$n" "$mode")"
			fi
			# both forms remain only when it failed between renaming
			# the gzip form in and removing the plain one (as after a
			# crash there); readers take one of them
			if [ -e "$plain" ] && [ -e "$gz" ]; then
				[ "$status" -ne 0 ] ||
				    fail "success leaving both forms: $(whatfailed "$n" "$mode")"
				[ "$(zcat "$gz")" = "$(cat "$plain")" ] ||
				    fail "the two forms differ: $(whatfailed "$n" "$mode")"
			else
				[ "$(stream_bytes s)" = "$all" ] ||
				    fail "stream bytes changed: $(whatfailed "$n" "$mode")"
			fi
			run aistack-checkpoint read -n 1000 z s
			[ "$status" -eq 0 ] && [ "$output" = "$all" ] ||
			    fail "reading the stream: $output; $(whatfailed "$n" "$mode")"
			# a clean run finishes the job
			run aistack-rotate --compress-after 0s s
			[ "$status" -eq 0 ] || fail "rotate after: $output; $(whatfailed "$n" "$mode")"
			[ -f "$gz" ] && [ ! -e "$plain" ] && [ "$(stream_bytes s)" = "$all" ] ||
			    fail "after recovery: $(whatfailed "$n" "$mode")"
			if ls -A "$STREAMS/s" | grep -q '\.tmp'; then
				fail "temporary file left: $(ls -A "$STREAMS/s"); $(whatfailed "$n" "$mode")"
			fi
		done
	done
}

# --- aistack-dedup ---------------------------------------------------------

# walk_dedup: every call of "aistack-dedup -s st" over $D/input, from the
# state in the template (made from $D/seen); the keys are saved (new
# state) or not (old state), never anything else.
walk_dedup() {
	local total n mode got first
	save_template
	# what a clean run passes on, and the second-run checks
	cat "$D/seen" "$D/input" | awk '!x[$0]++' > "$D/all"
	for mode in EIO ENOSPC EINTR SHORT; do
		restore_template
		faulty 0 "$mode" aistack-dedup -s st < "$D/input"
		assert_success
		[ "$output" = "$(cat "$D/new")" ] || fail "clean run passed on: $output"
		total=$(calls)
		# the mapped state is written through its mapping: only a few
		# calls (the journal's, the growth file's) can be interrupted
		[ "$total" -gt 3 ] || { [ "$mode" = EINTR ] || [ "$mode" = SHORT ]; } && [ "$total" -gt 0 ] ||
		    fail "only $total calls counted"
		echo "# dedup -s $1: $mode at each of $total calls" >&3
		for n in $(seq 1 "$total"); do
			restore_template
			faulted "$n" "$mode" aistack-dedup -s st < "$D/input"
			status_in 0 74 ||
			    fail "undocumented status: $(whatfailed "$n" "$mode")"
			case $mode in
			EINTR|SHORT) [ "$status" -eq 0 ] ||
			    fail "not retried: $(whatfailed "$n" "$mode")" ;;
			esac
			# the output does not depend on the save
			[ "$output" = "$(cat "$D/new")" ] || [ "$status" -ne 0 ] ||
			    fail "passed on: $(whatfailed "$n" "$mode")"
			# the state is the old one or the new one
			first=$status
			run aistack-dedup -s st < "$D/all"
			[ "$status" -eq 0 ] ||
			    fail "state unusable after: $output; $(whatfailed "$n" "$mode")"
			got=$output
			if [ -n "$got" ]; then
				[ "$got" = "$(cat "$D/new")" ] ||
				    fail "state neither old nor new (a second run passed on $got): $(whatfailed "$n" "$mode")"
				[ "$first" -ne 0 ] ||
				    fail "success without saving: $(whatfailed "$n" "$mode")"
			fi
		done
	done
}

@test "dedup -s: the first save of a state, every call failing in turn" {
	: > "$D/seen"
	gen_records 6 a > "$D/input"
	cp "$D/input" "$D/new"
	walk_dedup first
}

@test "dedup -s: a save over an existing state, every call failing in turn" {
	gen_records 5 a > "$D/seen"
	aistack-dedup -s st < "$D/seen" > /dev/null
	{ gen_records 5 a | tail -n 2; gen_records 3 b; } > "$D/input"
	gen_records 3 b > "$D/new"
	walk_dedup journal
}

@test "dedup -a: catching the index up with the sink, every call failing in turn" {
	local total n mode
	gen_records 2 a | aistack-ingest sink
	# the index covers a1 and a2; a3 reaches the sink after it
	gen_records 2 a | aistack-dedup -a sink > /dev/null
	gen_records 3 a | tail -n 1 | aistack-ingest sink
	gen_records 6 a > "$D/input"
	gen_records 6 a | tail -n 3 > "$D/new"
	save_template
	for mode in EIO ENOSPC EINTR SHORT; do
		restore_template
		faulty 0 "$mode" aistack-dedup -a sink < "$D/input"
		assert_success
		[ "$output" = "$(cat "$D/new")" ] || fail "clean run passed on: $output"
		total=$(calls)
		[ "$total" -gt 3 ] || fail "only $total calls counted"
		echo "# dedup -a: $mode at each of $total calls" >&3
		for n in $(seq 1 "$total"); do
			restore_template
			faulted "$n" "$mode" aistack-dedup -a sink < "$D/input"
			status_in 0 74 ||
			    fail "undocumented status: $(whatfailed "$n" "$mode")"
			case $mode in
			EINTR|SHORT) [ "$status" -eq 0 ] ||
			    fail "not retried: $(whatfailed "$n" "$mode")" ;;
			esac
			# nothing already in the sink is ever passed on
			if [ "$status" -eq 0 ]; then
				[ "$output" = "$(cat "$D/new")" ] ||
				    fail "passed on: $(whatfailed "$n" "$mode")"
			elif [ -n "$output" ]; then
				case "$(cat "$D/new")" in
				"$output"*) ;;
				*) fail "passed on before failing: $(whatfailed "$n" "$mode")" ;;
				esac
			fi
			# the index is a cache: whatever the failure left, the
			# next run answers right
			run aistack-dedup -a sink < "$D/input"
			[ "$status" -eq 0 ] && [ "$output" = "$(cat "$D/new")" ] ||
			    fail "run after: $output; $(whatfailed "$n" "$mode")"
		done
	done
}
