# The harness of tests/examples.bats: run an example of README.md or of a
# man page as a reader would, in a throwaway sandbox, and look at what each
# of its commands did.  tests/bin/doc-examples finds the examples.
#
# The sandbox (ex_setup, from setup):
#   $WORK      the current directory of the examples
#   $HOME      $T/home, so ~/.local/state/aistack is the sandbox's too
#   $AISTACK_STATE_DIR, $AISTACK_CONFIG   as in every suite (test_helper)
#   PATH       the built commands, tests/standins (coordinator), tests/bin
#   $T         the test's own temporary directory
#
# ex_run ID [option...]
#   Runs the commands of example ID one after the other in one bash, as if
#   pasted into a terminal: no -e (a failing command does not stop the
#   next), the shell's state ($?, variables, set -o) carried from one to
#   the next, each command's standard input /dev/null, its standard output,
#   standard error and exit status kept.  Options:
#     --sub FROM TO        replace FROM by TO in the text first: a host name,
#                          a path under /etc or /var, a port.  FROM must
#                          occur, or the example has changed under the test.
#     --in N FILE          command N reads FILE
#     --bg N               command N runs in the background, in a process
#                          group of its own; ex_stop N ends it (SIGTERM to
#                          the group, as Ctrl-C or systemctl stop would)
#     --instead N CMD WHY  run CMD in place of command N, because WHY
#     --skip N WHY         do not run command N, because WHY
#     --then N CMD         after command N, run CMD (not part of the example:
#                          a wait, a look at the state); output in $EX/N.then
#     --cwd DIR            run in DIR instead of $WORK
#     --env NAME=VALUE     set in the example's shell (what a reader has set)
# Then:
#   ex_ok [N...]      commands N (default all that ran) exited 0 and wrote
#                     nothing on standard error; otherwise the test fails,
#                     showing each command, its status and its stderr
#   ex_rc N, ex_out N, ex_err N      command N's status, stdout, stderr
#   ex_shown N        the output the example shows for command N (a
#                     transcript's lines after "$ command")
#   ex_cmd N          command N as run (after --sub and --instead);
#   ex_orig N         as the example has it (after --sub)
#   ex_shell_rc       the status of the example's shell (an "exit" in it)
#   EX_N              the number of commands;  $EX  where their files are
# ex_text ID          the example's text, as a reader sees it
# ex_files ID DIR [--sub FROM TO]...
#                     write the files that an example shows one after the
#                     other, each under a "# /path/NAME" comment line (unit
#                     files, aistack.conf), into DIR/NAME
# ex_exempt ID WHY    an example that cannot run here, and why
# ex_wait COND [SECONDS]   poll until the shell condition COND holds

EX_DOCS=$(cd "$TESTS_DIR/.." && pwd)
EX_COUNT=0

ex_setup() {
	common_setup
	T=$BATS_TEST_TMPDIR
	WORK=$T/work
	export HOME=$T/home TMPDIR=$T/tmp
	mkdir -p "$WORK" "$HOME" "$TMPDIR"
	PATH="$TESTS_DIR/standins:$AISTACK_BIN:$TESTS_DIR/bin:$PATH"
	# the system's python3 for the helpers, not a version manager's shim
	# (pyenv's costs a few tenths of a second a start)
	if [ -x /usr/bin/python3 ]; then
		mkdir -p "$T/python"
		ln -sf /usr/bin/python3 "$T/python/python3"
		PATH="$T/python:$PATH"
	fi
	unset MAKEFLAGS MAKELEVEL MFLAGS
	cd "$WORK" || return
}

# Kill whatever an example left running in the background.
ex_teardown() {
	local f pid
	for f in "$T"/ex.*/*.pid; do
		[ -e "$f" ] || continue
		pid=$(cat "$f")
		[ -e "${f%.pid}.rc" ] && continue
		kill -KILL -- "-$pid" 2> /dev/null || true
	done
}

ex_fail() {
	printf 'ex: %s\n' "$@" >&2
	return 1
}

# ex_dump (from setup_file): every example's text, once for the file
ex_dump() {
	EX_CACHE=$BATS_FILE_TMPDIR/examples
	export EX_CACHE
	"$TESTS_DIR/bin/doc-examples" -C "$EX_DOCS" dump "$EX_CACHE"
}

ex_text() {
	if [ -n "${EX_CACHE:-}" ] && [ -e "$EX_CACHE/${1//\//%}" ]; then
		cat "$EX_CACHE/${1//\//%}"
	else
		"$TESTS_DIR/bin/doc-examples" -C "$EX_DOCS" show "$1"
	fi
}

ex_exempt() {
	[ -n "${2:-}" ] || { ex_fail "ex_exempt $1: give the reason"; return 1; }
	ex_text "$1" > /dev/null
}

ex_wait() {	# ex_wait COND [SECONDS]
	local deadline=$((SECONDS + ${2:-30}))
	until eval "$1"; do
		[ "$SECONDS" -lt "$deadline" ] || { echo "ex: timed out waiting for: $1" >&2; return 1; }
		sleep 0.1
	done
}

ex_subst() {	# ex_subst ID TEXT FROM TO: TEXT with FROM replaced
	local text=$2
	[[ $text == *"$3"* ]] ||
		{ ex_fail "$1: --sub '$3': not in the example any more; has it changed?"; return 1; }
	printf '%s' "${text//"$3"/"$4"}"
}

ex_run() {
	local id=$1 text cwd=$WORK i n cmd shown bg=0 rc
	local -A in=() background=() instead=() skip=() after=()
	local -a envs=()
	shift
	text=$(ex_text "$id") || return
	while [ $# -gt 0 ]; do
		case $1 in
		--sub) text=$(ex_subst "$id" "$text" "$2" "$3") || return; shift 3 ;;
		--in) in[$2]=$3; shift 3 ;;
		--bg) background[$2]=1; bg=1; shift 2 ;;
		--instead) instead[$2]=$3; [ -n "${4:-}" ] || { ex_fail "--instead $2: why?"; return 1; }; shift 4 ;;
		--skip) skip[$2]=$3; [ -n "$3" ] || { ex_fail "--skip $2: why?"; return 1; }; shift 3 ;;
		--then) after[$2]=$3; shift 3 ;;
		--cwd) cwd=$2; shift 2 ;;
		--env) envs+=("$2"); shift 2 ;;
		*) ex_fail "ex_run: unknown option $1"; return ;;
		esac
	done
	EX_COUNT=$((EX_COUNT + 1))
	EX=$T/ex.$EX_COUNT
	EX_ID=$id
	mkdir -p "$EX"
	n=0
	{
		echo 'exec 3>&- 4>&-'	# bats waits for its descriptors to close
		[ "$bg" = 1 ] && echo 'set -m'
		declare -f ex_wait
		printf 'cd %q || exit 70\n' "$cwd"
		for i in "${envs[@]}"; do printf 'export %q\n' "$i"; done
		echo '__ex_st=0'
	} > "$EX/script"
	while IFS= read -r -d '' cmd && IFS= read -r -d '' shown; do
		n=$((n + 1))
		if [ -n "${skip[$n]+x}" ]; then
			echo "skipped: ${skip[$n]}" > "$EX/$n.skip"
			printf '%s\n' "$cmd" > "$EX/$n.cmd"
			continue
		fi
		printf '%s\n' "$cmd" > "$EX/$n.orig"
		[ -n "${instead[$n]+x}" ] && cmd=${instead[$n]}
		printf '%s\n' "$cmd" > "$EX/$n.cmd"
		printf '%s' "$shown" > "$EX/$n.shown"
		{
			if [ -n "${background[$n]+x}" ]; then
				printf '{ trap : TERM; {\n%s\n} <%q >%q 2>%q; echo $? >%q; } &\n' \
				    "$cmd" "${in[$n]:-/dev/null}" "$EX/$n.out" "$EX/$n.err" "$EX/$n.rc"
				printf 'echo $! >%q\n' "$EX/$n.pid"
			else
				printf '(exit $__ex_st)\n{\n%s\n} <%q >%q 2>%q\n' \
				    "$cmd" "${in[$n]:-/dev/null}" "$EX/$n.out" "$EX/$n.err"
				printf '__ex_st=$?; echo $__ex_st >%q\n' "$EX/$n.rc"
			fi
			if [ -n "${after[$n]+x}" ]; then
				printf '{\n%s\n} >%q 2>&1 </dev/null || echo "ex: --then %s failed" >>%q\n' \
				    "${after[$n]}" "$EX/$n.then" "$n" "$EX/$n.then"
			fi
		} >> "$EX/script"
	done < <(printf '%s\n' "$text" | "$TESTS_DIR/bin/doc-examples" split)
	EX_N=$n
	[ "$n" -gt 0 ] || { ex_fail "$id: no command in the example"; return 1; }
	rc=0
	timeout -k 5 "${EX_TIMEOUT:-120}" bash "$EX/script" < /dev/null > "$EX/shell.out" 2>&1 || rc=$?
	echo "$rc" > "$EX/shell.rc"
	for i in "${!after[@]}"; do
		if grep -q '^ex: --then .* failed$' "$EX/$i.then" 2> /dev/null; then
			cat "$EX/$i.then" >&2
			ex_fail "$id: the probe after command $i failed"
			return
		fi
	done
}

ex_cmd() { cat "$EX/$1.cmd"; }
ex_orig() { cat "$EX/$1.orig"; }
ex_shell_rc() { cat "$EX/shell.rc"; }
ex_rc() { cat "$EX/$1.rc" 2> /dev/null || echo "not run"; }
ex_out() { cat "$EX/$1.out"; }
ex_err() { cat "$EX/$1.err"; }
ex_shown() { cat "$EX/$1.shown"; }

ex_describe() {	# ex_describe N: what command N did
	echo "--- command $1 of $EX_ID, exit $(ex_rc "$1"):"
	sed 's/^/    /' "$EX/$1.cmd"
	if [ -s "$EX/$1.err" ]; then
		echo "--- its standard error:"
		head -n 20 "$EX/$1.err" | sed 's/^/    /'
	fi
}

ex_ok() {
	local i bad=0 list=("$@")
	if [ ${#list[@]} -eq 0 ]; then
		for ((i = 1; i <= EX_N; i++)); do
			[ -e "$EX/$i.skip" ] || list+=("$i")
		done
	fi
	for i in "${list[@]}"; do
		if [ "$(ex_rc "$i")" != 0 ] || [ -s "$EX/$i.err" ]; then
			ex_describe "$i" >&2
			bad=1
		fi
	done
	if [ -s "$EX/shell.out" ]; then
		echo "--- the shell said:" >&2
		sed 's/^/    /' "$EX/shell.out" >&2
		bad=1
	fi
	return "$bad"
}

# ex_status N WANT: command N exited WANT (and say what it did otherwise)
ex_status() {
	[ "$(ex_rc "$1")" = "$2" ] && return 0
	echo "ex: command $1 should exit $2" >&2
	ex_describe "$1" >&2
	return 1
}

# ex_stop N: end background command N as Ctrl-C or systemctl stop would
# (SIGTERM to its process group) and wait until it has exited.
ex_stop() {
	local pid
	pid=$(cat "$EX/$1.pid") || return
	kill -TERM -- "-$pid" 2> /dev/null || true
	ex_wait "[ -e '$EX/$1.rc' ]" 60
}

ex_files() {	# ex_files ID DIR [--sub FROM TO]...
	local id=$1 dir=$2 text
	text=$(ex_text "$id") || return
	shift 2
	while [ $# -gt 0 ]; do
		[ "$1" = --sub ] || { ex_fail "ex_files: unknown option $1"; return; }
		text=$(ex_subst "$id" "$text" "$2" "$3") || return
		shift 3
	done
	mkdir -p "$dir"
	printf '%s\n' "$text" | awk -v dir="$dir" '
		/^# (\/[^ ,]*\/)?[A-Za-z0-9_.@-]+\.(service|timer|socket|conf)([ ,]|$)/ {
			name = $2; sub(/,$/, "", name); sub(/.*\//, "", name)
			if (out) close(out)
			out = dir "/" name; printf "" > out; blank = 0; next }
		!out { next }
		/^$/ { blank++; next }
		{ while (blank > 0) { print "" > out; blank-- } print > out }'
	[ -n "$(ls -A "$dir")" ] || ex_fail "$id: no \"# /path/NAME\" file in the example"
}

# The throwaway PostgreSQL of the examples: a cluster (tests/test_helper's
# pg_start) where the role aistack, owner of the database aistack, logs in
# with a password only, as on a shared server; the password is in
# $T/etc/aistack/pgpass (ex_pg), the stand-in for /etc/aistack/pgpass.
# PG_HOST is the socket directory, URL-encoded: the stand-in for db.lab.
ex_pg_start() {
	PG_DIR=$(pg_mkdir)
	pg_start "$PG_DIR" || return
	psql "$PG_URI" -Xq -c "CREATE ROLE aistack LOGIN PASSWORD 'example-secret'" \
		-c "CREATE DATABASE aistack OWNER aistack" || return
	printf 'local all postgres trust\nlocal all all scram-sha-256\n' > "$PG_DIR/data/pg_hba.conf"
	pg_as "$PG_BIN/pg_ctl" -D "$PG_DIR/data" reload > /dev/null
	PG_SOCK=$PG_DIR/sock
	PG_HOST=$(url_host "$PG_SOCK")
	export PG_DIR PG_SOCK PG_HOST
}
# url_host DIR: a socket directory as the host of a postgresql:// URI
url_host() {
	python3 -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1], safe=""))' "$1"
}
ex_pg_stop() {
	[ -n "${PG_DIR:-}" ] || return 0
	pg_stop "$PG_DIR"
	rm -rf "$PG_DIR"
}
# ex_pg: the database aistack emptied for this test, and its password file
ex_pg() {
	pg_q 'DROP SCHEMA public CASCADE; CREATE SCHEMA public AUTHORIZATION aistack' || return
	mkdir -p "$T/etc/aistack"
	echo '*:*:*:aistack:example-secret' > "$T/etc/aistack/pgpass"
	chmod 600 "$T/etc/aistack/pgpass"
}
# pg_q SQL: one value, as the database's owner
pg_q() {
	psql "postgresql:///aistack?host=$PG_SOCK&user=postgres" -XAtq -v ON_ERROR_STOP=1 -c "$1"
}

# ex_upstream NAME: start the HTTP stand-in (tests/bin/example-upstream)
# for the service NAME; its port is in ${NAME}_PORT.
ex_upstream() {
	example-upstream "$T/$1.port" 3>&- &
	echo $! > "$T/$1.stub"
	ex_wait "[ -s '$T/$1.port' ]" || return
	printf -v "$1_PORT" '%s' "$(cat "$T/$1.port")"
}
ex_upstream_stop() {
	local f
	for f in "$T"/*.stub; do
		[ -e "$f" ] && kill "$(cat "$f")" 2> /dev/null
	done
	return 0
}

# free_port: a TCP port of 127.0.0.1 that nothing listens on now
free_port() {
	python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# valid_lines FILE: the count of lines aistack-ingest takes as records, as
# Python's json module sees them (an oracle independent of lib/format/json.c):
# prints "RECORDS REJECTS EMPTY".
valid_lines() {
	python3 - "$1" << 'EOF'
import json, sys
rec = rej = empty = 0
for raw in open(sys.argv[1], "rb"):
    line = raw.rstrip(b"\n")
    if not line.strip():
        empty += 1
        continue
    try:
        ok = isinstance(json.loads(line.decode("utf-8")), dict)
    except (ValueError, UnicodeDecodeError):
        ok = False
    if ok:
        rec += 1
    else:
        rej += 1
print(rec, rej, empty)
EOF
}
