#!/usr/bin/env bats
# make install: commands, pages, completions, the flow and the systemd
# units land under PREFIX in DESTDIR, with their paths filled in.

load test_helper

setup_file() {
	export DEST=$BATS_FILE_TMPDIR/dest
	make -C "$TESTS_DIR/.." --no-print-directory install BUILD="$(dirname "$AISTACK_BIN")" \
		DESTDIR="$DEST" PREFIX=/opt/aistack > "$BATS_FILE_TMPDIR/install.log" 2>&1
}

@test "every command, man page and completion is installed" {
	for src in "$TESTS_DIR"/../cmd/aistack-*.c; do
		cmd=$(basename "$src" .c)
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
	[ -f "$DEST/opt/aistack/share/aistack/dashboard/index.html" ]
	# the alert rules, and their tests, which pass where installed
	[ -f "$DEST/opt/aistack/share/aistack/prometheus/aistack.rules.yml" ]
	(cd "$DEST/opt/aistack/share/aistack/prometheus" && promtool test rules aistack.rules.test.yml > /dev/null)
}

@test "the systemd units name the installed paths and verify" {
	units=$DEST/opt/aistack/lib/systemd/system
	for u in aistack-learn.service aistack-learn.timer aistack-rotate.service \
	    aistack-rotate.timer aistack-proxy.service; do
		[ -f "$units/$u" ]
	done
	[ -z "$(grep -l '@[A-Z]*@' "$units"/*)" ]
	grep -qx 'ExecStart=/opt/aistack/bin/aistack-rotate' "$units/aistack-rotate.service"
	grep -qx 'ExecStart=/bin/bash /opt/aistack/share/aistack/learning-flow.sh' "$units/aistack-learn.service"
	grep -qx 'OnUnitActiveSec=5min' "$units/aistack-learn.timer"
	grep -qx 'Persistent=true' "$units/aistack-rotate.timer"
	if command -v systemd-analyze > /dev/null; then
		# ExecStart must exist for verify: point it at the staged tree
		mkdir -p "$BATS_TEST_TMPDIR/u"
		for f in "$units"/*; do
			sed "s|/opt/aistack|$DEST/opt/aistack|g" "$f" > "$BATS_TEST_TMPDIR/u/${f##*/}"
		done
		run systemd-analyze verify --man=no "$BATS_TEST_TMPDIR"/u/*
		assert_success
		assert_output ''
	fi
}

@test "the installed flow runs from the installed tree" {
	bin=$DEST/opt/aistack/bin
	gen_records 30 > "$BATS_TEST_TMPDIR/in"
	jq -c '{event: "task_completed", prompt: ("a prompt that is long enough " + .id),
		response: ("a long enough response " + .id)}' "$BATS_TEST_TMPDIR/in" > "$BATS_TEST_TMPDIR/ev"
	PATH="$bin:$PATH" QUIET=1 bash "$DEST/opt/aistack/share/aistack/learning-flow.sh" "$BATS_TEST_TMPDIR/ev"
	[ "$(stream_bytes dataset | wc -l)" -eq 30 ]
}
