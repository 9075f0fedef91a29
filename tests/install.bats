#!/usr/bin/env bats
# make install: commands, pages, completions, the flow, the systemd units
# and the sysusers.d file land under PREFIX in DESTDIR, with their paths
# filled in; the units run as the user aistack, without capabilities,
# score 1.0 or less in "systemd-analyze security", and the rotate unit's
# documented drop-in lets that user rotate another service's log files.
# tests/package/package.bats does the same for the installed package.

load test_helper

setup_file() {
	export DEST=$BATS_FILE_TMPDIR/dest
	make -C "$TESTS_DIR/.." --no-print-directory install BUILD="$(dirname "$AISTACK_BIN")" \
		DESTDIR="$DEST" PREFIX=/opt/aistack > "$BATS_FILE_TMPDIR/install.log" 2>&1
	export UNITS=$DEST/opt/aistack/lib/systemd/system
	export DROPIN=$DEST/opt/aistack/share/doc/aistack/examples/aistack-rotate-logs.conf
}

setup() {
	common_setup
	SHARED=
}

teardown() {
	if [ -n "$SHARED" ]; then
		rm -rf "$SHARED"
	fi
}

# staged_units DIR [DROPIN]: the units in DIR, their paths pointing at the
# staged tree (ExecStart must exist for verify), DROPIN as a drop-in of
# aistack-rotate.service.
staged_units() {
	local f
	mkdir -p "$1"
	for f in "$UNITS"/*; do
		sed "s|/opt/aistack|$DEST/opt/aistack|g" "$f" > "$1/${f##*/}"
	done
	if [ $# -gt 1 ]; then
		mkdir -p "$1/aistack-rotate.service.d"
		sed "s|/opt/aistack|$DEST/opt/aistack|g" "$2" > "$1/aistack-rotate.service.d/logs.conf"
	fi
}

@test "every command, man page and completion is installed" {
	# a command is cmd/aistack-NAME.c or the folder cmd/NAME/
	for src in "$TESTS_DIR"/../cmd/aistack-*.c "$TESTS_DIR"/../cmd/*/; do
		[ -e "$src" ] || continue
		case $src in
		*.c) cmd=$(basename "$src" .c) ;;
		*) cmd=aistack-$(basename "$src") ;;
		esac
		[ -x "$DEST/opt/aistack/bin/$cmd" ]
		[ -f "$DEST/opt/aistack/share/man/man1/$cmd.1" ]
		[ -f "$DEST/opt/aistack/share/bash-completion/completions/$cmd" ]
		[ -f "$DEST/opt/aistack/share/zsh/vendor-completions/_$cmd" ]
		[ -f "$DEST/opt/aistack/share/fish/vendor_completions.d/$cmd.fish" ]
	done
	[ -f "$DEST/opt/aistack/share/man/man7/aistack.7" ]
	[ -f "$DEST/opt/aistack/share/man/man5/aistack.conf.5" ]
	[ -x "$DEST/opt/aistack/share/aistack/learning-flow.sh" ]
	[ -f "$DEST/opt/aistack/share/aistack/extract.jq" ]
	# the dashboard is in aistack-proxy itself: no copy of it is installed
	[ ! -e "$DEST/opt/aistack/share/aistack/dashboard" ]
	# the alert rules, and their tests, which pass where installed
	cmp "$TESTS_DIR/../prometheus/aistack.rules.yml" \
		"$DEST/opt/aistack/share/aistack/prometheus/aistack.rules.yml"
	(cd "$DEST/opt/aistack/share/aistack/prometheus" && promtool test rules aistack.rules.test.yml > /dev/null)
}

@test "the systemd units name the installed paths and verify" {
	for u in aistack-learn.service aistack-learn.timer aistack-rotate.service \
	    aistack-rotate.timer aistack-proxy.service; do
		[ -f "$UNITS/$u" ]
	done
	[ -z "$(grep -l '@[A-Z]*@' "$UNITS"/* "$DROPIN")" ]
	grep -qx 'ExecStart=/opt/aistack/bin/aistack-rotate' "$UNITS/aistack-rotate.service"
	grep -qx 'ExecStart=/bin/bash /opt/aistack/share/aistack/learning-flow.sh' "$UNITS/aistack-learn.service"
	grep -qx 'ExecStart=/opt/aistack/bin/aistack-rotate --delete-after 14d /var/log/aidb/' "$DROPIN"
	grep -qx 'OnUnitActiveSec=5min' "$UNITS/aistack-learn.timer"
	grep -qx 'Persistent=true' "$UNITS/aistack-rotate.timer"
	if command -v systemd-analyze > /dev/null; then
		staged_units "$BATS_TEST_TMPDIR/u" "$DROPIN"
		run systemd-analyze verify --man=no "$BATS_TEST_TMPDIR"/u/*.service \
			"$BATS_TEST_TMPDIR"/u/*.timer
		assert_success
		assert_output ''
	fi
}

@test "the package's version is the Makefile's" {
	want=$(sed -n 's/^VERSION *= *//p' "$TESTS_DIR/../Makefile")
	[ -n "$want" ]
	run sed -n '1s/^aistack (\([^)]*\)) .*/\1/p' "$TESTS_DIR/../debian/changelog"
	assert_output "$want"
}

@test "the sysusers.d file creates the system user aistack" {
	conf=$DEST/opt/aistack/lib/sysusers.d/aistack.conf
	[ -f "$conf" ]
	command -v systemd-sysusers > /dev/null || skip "systemd-sysusers is not installed"
	root=$BATS_TEST_TMPDIR/root
	mkdir -p "$root/etc"
	printf 'root:x:0:0:root:/root:/bin/sh\n' > "$root/etc/passwd"
	printf 'root:x:0:\n' > "$root/etc/group"
	run systemd-sysusers --root="$root" "$conf"
	assert_success
	run grep '^aistack:' "$root/etc/passwd"
	assert_output --regexp '^aistack:x:[1-9][0-9]*:[1-9][0-9]*:aistack telemetry services:/nonexistent:/usr/sbin/nologin$'
	uid=$(cut -d: -f3 <<< "$output")
	# a system user, with a group of its own
	[ "$uid" -lt 1000 ]
	grep -q "^aistack:x:$(cut -d: -f4 <<< "$output"):\$" "$root/etc/group"
}

@test "every service runs as aistack, with no capability and no root" {
	for u in "$UNITS"/*.service; do
		grep -qx 'User=aistack' "$u"
		grep -qx 'Group=aistack' "$u"
		grep -qx 'StateDirectory=aistack' "$u"
		grep -qx 'CapabilityBoundingSet=' "$u"
		grep -qx 'NoNewPrivileges=true' "$u"
		grep -qx 'PrivateUsers=true' "$u"
		grep -qx 'ProtectProc=invisible' "$u"
		grep -qx 'ProcSubset=pid' "$u"
		grep -qx 'IPAddressDeny=any' "$u"
		grep -qx 'SystemCallFilter=~@privileged @resources' "$u"
		[ -z "$(grep 'CAP_' "$u")" ]
		if grep -qx 'Type=oneshot' "$u"; then
			grep -q '^TimeoutStartSec=[1-9]' "$u"
		fi
	done
	# the example drop-in adds access, never privilege
	run grep -E '^(User|Group|CapabilityBoundingSet|AmbientCapabilities|PrivateUsers|NoNewPrivileges)=' "$DROPIN"
	assert_failure
}

@test "each service's exposure in systemd-analyze security is 1.0 or less" {
	command -v systemd-analyze > /dev/null || skip "systemd-analyze is not installed"
	staged_units "$BATS_TEST_TMPDIR/u" "$DROPIN"
	check_scores "$BATS_TEST_TMPDIR"/u/*.service
}

# A directory every test user can reach (bats' own are root's, mode 0700).
shared_dir() {
	SHARED=$(mktemp -d "${TMPDIR:-/tmp}/aistack-install.XXXXXX")
	chmod 755 "$SHARED"
}

# as_unit UID GID GROUPS CMD...: run CMD as the unit would: that user and
# group, the supplementary GROUPS ("" for none), no capability, no new
# privileges, in a user namespace that maps only its own user and group
# (PrivateUsers=yes; others' files appear as nobody's).
as_unit() {
	local uid=$1 gid=$2 groups=(--clear-groups) ns=()
	[ -n "$3" ] && groups=(--groups="$3")
	shift 3
	if setpriv --reuid="$uid" --regid="$gid" --clear-groups \
	    unshare --user --map-user="$uid" --map-group="$gid" true 2> /dev/null; then
		ns=(unshare --user --map-user="$uid" --map-group="$gid" --)
	fi
	setpriv --reuid="$uid" --regid="$gid" "${groups[@]}" --inh-caps=-all \
		--bounding-set=-all --no-new-privs -- "${ns[@]}" "$@"
}

# writes N FIRST: the service appends lines FIRST..FIRST+N-1 to its log
# under its flock, as a writer of aistack-rotate(1) does.
writes() {
	setpriv --reuid="$WRITER" --regid="$LOGGRP" --clear-groups -- \
		flock "$LOG" sh -c 'i=$2; while [ "$i" -lt $(($2 + $1)) ]; do
			printf "{\"n\":%d}\n" "$i"; i=$((i + 1)); done >> "$3"' sh "$1" "$2" "$LOG"
}

unit_rotate() {	# unit_rotate GROUPS -- ARGS: aistack-rotate as the unit's user
	local supp=$1
	shift 2
	as_unit "$SVC" "$SVC" "$supp" env AISTACK_STATE_DIR="$SHARED/state" \
		AISTACK_CONFIG="$SHARED/aistack.conf" "$SHARED/aistack-rotate" "$@"
}

rotate_setup() {
	[ "$(id -u)" -eq 0 ] || skip "needs root to switch users"
	command -v setpriv > /dev/null || skip "setpriv is not installed"
	# numeric identities nobody has: the service, its group, the unit's user
	WRITER=64101 LOGGRP=64102 SVC=64103
	for id in $WRITER $LOGGRP $SVC; do
		[ -z "$(getent passwd "$id")$(getent group "$id")" ]
	done
	shared_dir
	cp "$AISTACK_BIN/aistack-rotate" "$SHARED/"
	: > "$SHARED/aistack.conf"
	install -d -o "$SVC" -g "$SVC" -m 0700 "$SHARED/state"
	# what the drop-in's comment asks of the service
	install -d -o "$WRITER" -g "$LOGGRP" -m 2770 "$SHARED/aidb"
	LOG=$SHARED/aidb/events.jsonl
	install -o "$WRITER" -g "$LOGGRP" -m 0660 /dev/null "$LOG"
}

@test "the rotate unit's user rotates another service's log files through their group" {
	rotate_setup
	# what the drop-in grants: the group, and the directory to write
	grep -qx 'SupplementaryGroups=aidb' "$DROPIN"
	grep -qx 'ReadWritePaths=/var/log/aidb' "$DROPIN"
	n=0
	for round in 1 2 3 4 5; do
		writes 40 "$n"
		n=$((n + 40))
		run unit_rotate "$LOGGRP" -- --delete-after 30d "$SHARED/aidb/"
		assert_success
		[ ! -s "$LOG" ]
	done
	writes 7 "$n"
	n=$((n + 7))
	# every line once, in order: the copies (oldest first), then the file
	copies=("$SHARED"/aidb/events.jsonl.*Z)
	[ "${#copies[@]}" -eq 5 ]
	diff -u <(seq 0 $((n - 1)) | sed 's/.*/{"n":&}/') <(cat "${copies[@]}" "$LOG")
	# the copies are the unit user's, in the service's group, its mode
	run stat -c '%u:%g %a' "${copies[@]}"
	for line in "${lines[@]}"; do
		[ "$line" = "$SVC:$LOGGRP 660" ]
	done
	# the writer still owns the file it writes to
	[ "$(stat -c '%u:%g %a' "$LOG")" = "$WRITER:$LOGGRP 660" ]
	# compressed and expired by the same user
	touch -d '2 days ago' "${copies[@]}"
	run unit_rotate "$LOGGRP" -- --compress-after 1d "$SHARED/aidb/"
	assert_success
	# (the file's last lines became a sixth copy, too young to compress)
	[ "$(find "$SHARED/aidb" -name 'events.jsonl.*Z.gz' | wc -l)" -eq 5 ]
	[ "$(find "$SHARED/aidb" -name 'events.jsonl.*Z' | wc -l)" -eq 1 ]
	[ ! -s "$LOG" ]
	diff -u <(seq 0 $((n - 1)) | sed 's/.*/{"n":&}/') \
		<(zcat -f "$SHARED"/aidb/events.jsonl.*Z*)
	touch -d '40 days ago' "$SHARED"/aidb/events.jsonl.*Z*
	run unit_rotate "$LOGGRP" -- --delete-after 30d "$SHARED/aidb/"
	assert_success
	[ -z "$(find "$SHARED/aidb" -name 'events.jsonl.*')" ]
}

@test "without the group the unit's user cannot rotate them, and nothing is lost" {
	rotate_setup
	writes 10 0
	run unit_rotate "" -- "$SHARED/aidb/"
	assert_failure 74
	assert_output "aistack-rotate: $SHARED/aidb: Permission denied"
	[ "$(wc -l < "$LOG")" -eq 10 ]
	[ -z "$(find "$SHARED/aidb" -name 'events.jsonl.*')" ]
	# a file the group may only read: refused as well, kept whole
	chmod 0640 "$LOG"
	run unit_rotate "$LOGGRP" -- "$LOG"
	assert_failure 73
	assert_output --partial "$LOG: Permission denied"
	[ "$(wc -l < "$LOG")" -eq 10 ]
}

@test "under ProcSubset=pid the breakers keep the boot id the units pass" {
	[ "$(id -u)" -eq 0 ] || skip "needs root for a private /proc"
	kernel=$(cat /proc/sys/kernel/random/boot_id)
	for u in aistack-proxy.service aistack-learn.service; do
		grep -qx 'ProcSubset=pid' "$UNITS/$u"
		grep -qx 'Environment=AISTACK_BOOT_ID=%b' "$UNITS/$u"
	done
	# /proc as the units see it; %b is the boot id without its dashes
	in_unit_proc() {
		unshare --mount --pid --fork --propagation private sh -c \
			'mount -t proc -o subset=pid,hidepid=invisible proc /proc &&
			! test -e /proc/sys && exec "$@"' sh "$@"
	}
	for b in with without; do
		env=()
		[ $b = with ] && env=(AISTACK_BOOT_ID="${kernel//-/}")
		for i in 1 2 3 4 5; do
			run in_unit_proc env "${env[@]}" aistack-breaker run "$b" -- false
			assert_failure 1
		done
	done
	[ "$(jq -r '.state + " " + .boot_id' "$AISTACK_STATE_DIR/breakers/with")" = "open $kernel" ]
	# what the setting prevents: an open breaker that names no boot
	[ "$(jq -r '.state + " [" + .boot_id + "]"' "$AISTACK_STATE_DIR/breakers/without")" = "open []" ]
}

@test "the installed flow runs from the installed tree" {
	bin=$DEST/opt/aistack/bin
	gen_records 30 > "$BATS_TEST_TMPDIR/in"
	jq -c '{event: "task_completed", prompt: ("a prompt that is long enough " + .id),
		response: ("a long enough response " + .id)}' "$BATS_TEST_TMPDIR/in" > "$BATS_TEST_TMPDIR/ev"
	PATH="$bin:$PATH" QUIET=1 bash "$DEST/opt/aistack/share/aistack/learning-flow.sh" "$BATS_TEST_TMPDIR/ev"
	[ "$(stream_bytes dataset | wc -l)" -eq 30 ]
}
