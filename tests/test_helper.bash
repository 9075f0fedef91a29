# Loaded by every tests/*.bats file: the binaries under test come from
# $AISTACK_BIN (the build directory), each test gets its own state
# directory and an empty configuration.

: "${AISTACK_BIN:=$(cd "$BATS_TEST_DIRNAME/.." && pwd)/build/bin}"
export AISTACK_BIN
PATH="$AISTACK_BIN:$BATS_TEST_DIRNAME/bin:$PATH"
TESTS_DIR=$BATS_TEST_DIRNAME

if [ -d /usr/lib/bats/bats-support ]; then
	load /usr/lib/bats/bats-support/load
	load /usr/lib/bats/bats-assert/load
fi

common_setup() {
	export AISTACK_STATE_DIR="$BATS_TEST_TMPDIR/state"
	export AISTACK_CONFIG="$BATS_TEST_TMPDIR/aistack.conf"
	: > "$AISTACK_CONFIG"
	unset STATE_DIRECTORY XDG_STATE_HOME
	STREAMS="$AISTACK_STATE_DIR/streams"
}

setup() {
	common_setup
}

# stream_bytes NAME: the logical bytes of a stream, all segments in order.
stream_bytes() {
	local f
	for f in "$STREAMS/$1"/[0-9]*.jsonl*; do
		[ -e "$f" ] || continue
		case $f in
		*.gz) zcat "$f" ;;
		*) cat "$f" ;;
		esac
	done
}

# gen_records N [PREFIX]: N distinct valid records.
gen_records() {
	local n=$1 prefix=${2:-r}
	awk -v n="$n" -v p="$prefix" 'BEGIN { for (i = 1; i <= n; i++)
		printf "{\"id\":\"%s%d\",\"n\":%d}\n", p, i, i }'
}

# set_consumer STREAM CONSUMER COMMITTED: write a consumer file by hand.
set_consumer() {
	mkdir -p "$STREAMS/$1/consumers"
	printf '{"committed":%s,"pending":%s,"records":0,"updated":"2026-01-01T00:00:00Z"}\n' \
		"$3" "$3" > "$STREAMS/$1/consumers/$2"
}

# A throwaway PostgreSQL cluster for a suite: pg_start DIR starts one with
# its unix socket in DIR/sock (no TCP) and sets PG_URI; pg_stop DIR stops
# it.  The server runs as the postgres user when the tests run as root, so
# DIR must be reachable by that user: make it with pg_mkdir (outside the
# private bats temporary directories).
PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
pg_as() {
	if [ "$(id -u)" -eq 0 ]; then
		runuser -u postgres -- "$@"
	else
		"$@"
	fi
}
pg_mkdir() {
	local d
	d=$(mktemp -d "${TMPDIR:-/tmp}/aistack-pg.XXXXXX")
	chmod 755 "$d"
	echo "$d"
}
pg_start() {
	local dir=$1
	mkdir -p "$dir/sock"
	[ "$(id -u)" -eq 0 ] && chown postgres "$dir" "$dir/sock"
	if [ ! -d "$dir/data" ]; then
		pg_as "$PG_BIN/initdb" -D "$dir/data" -A trust -U postgres \
			--no-sync > "$dir/initdb.log" 2>&1 || { cat "$dir/initdb.log" >&2; return 1; }
	fi
	pg_as "$PG_BIN/pg_ctl" -D "$dir/data" -l "$dir/log" -w \
		-o "-k $dir/sock -c listen_addresses= -F" start > /dev/null 3>&-
	PG_URI="postgresql:///postgres?host=$dir/sock&user=postgres"
	export PG_URI
}
pg_stop() {
	pg_as "$PG_BIN/pg_ctl" -D "$1/data" -m immediate stop > /dev/null 2>&1 || true
}
# psql_q SQL: one value from the suite's cluster
psql_q() {
	psql "$PG_URI" -XAtqc "$1"
}

# poll_until COMMAND...: until it succeeds (30 s at most), then once more.
poll_until() {
	local i
	for ((i = 0; i < 300; i++)); do
		"$@" && return 0
		sleep 0.1
	done
	"$@"
}

# paused_is STREAM true|false: what the read model says of a writer
# waiting for the stream's backlog (aistack-checkpoint status --json).
paused_is() {
	[ "$(aistack-checkpoint status --json "$1" | jq -r .paused)" = "$2" ]
}

# no_match GREP-ARGS...: fails when grep finds a match (a plain "! grep"
# does not fail a bats test).
no_match() {
	! grep -q "$@"
}

# check_scores UNIT...: print each unit's "systemd-analyze security
# --offline" exposure (to the TAP stream), and fail unless every one is
# 1.0 or less.
check_scores() {
	local u out score bad=0
	for u in "$@"; do
		out=$(systemd-analyze security --offline=yes "$u" 2>&1)
		score=$(sed -n 's/^→ Overall exposure level for [^:]*: \([0-9.]*\) .*/\1/p' <<< "$out")
		echo "# ${u##*/}: exposure ${score:-unknown}" >&3
		if [ -z "$score" ] || ! awk -v s="$score" 'BEGIN { exit !(s <= 1.0) }'; then
			bad=1
		fi
	done
	[ "$bad" -eq 0 ]
}
