#!/usr/bin/env bats
# make package-check (run by .ci/run, as root, on a machine of its own):
# the package $DEB installs with dpkg -i, creates the user aistack, puts
# every command, page, completion and unit where Debian looks for them,
# runs the learning flow as aistack from the installed paths; then, under
# a real systemd booted in a container (systemd-nspawn) on this machine's
# /usr and a copy-on-write /etc, the units start, sandboxed as they are
# written, and do their jobs; finally dpkg -r and dpkg --purge leave
# nothing behind but what policy keeps: the user, and (after -r only)
# /var/lib/aistack.
#
# Not part of "make check": it changes the machine (a package, a user).

load ../test_helper

# What may name aistack on this machine, outside the temporary directories.
aistack_paths() {
	find /etc /usr /var /opt /srv -xdev \( -path /var/tmp -o -path /var/cache/man \) \
		-prune -o -name '*aistack*' -print 2> /dev/null | sort
}

setup_file() {
	[ "$(id -u)" -eq 0 ] || skip "needs root (dpkg -i)"
	[ -n "${DEB:-}" ] && [ -f "$DEB" ] || {
		echo "DEB must name the package: make package-check" >&2
		return 1
	}
	# one run at a time on a machine
	lockdir=/run/lock
	[ -d "$lockdir" ] || lockdir=/tmp
	exec 9> "$lockdir/aistack-package-check.lock"
	flock -w 900 9
	if dpkg-query -W -f='${Status}' aistack 2> /dev/null | grep -q ' installed$'; then
		echo "aistack is installed here; this test would remove it" >&2
		return 1
	fi
	export VERSION
	VERSION=$(dpkg-deb -f "$DEB" Version)
	aistack_paths > "$BATS_FILE_TMPDIR/before"
	if getent passwd aistack > /dev/null; then
		export USER_EXISTED=1
	fi
	dpkg -i "$DEB" > "$BATS_FILE_TMPDIR/dpkg-i.log" 2>&1 || {
		cat "$BATS_FILE_TMPDIR/dpkg-i.log" >&2
		return 1
	}
	dpkg -L aistack | sort > "$BATS_FILE_TMPDIR/files"
}

teardown_file() {
	container_stop
	# never leave the package installed, whatever failed
	if dpkg-query -W -f='${Status}' aistack 2> /dev/null | grep -q ' installed$'; then
		dpkg --purge aistack > /dev/null 2>&1 || true
	fi
}

# as_aistack CMD...: CMD as the services' user, with no capability.
as_aistack() {
	setpriv --reuid=aistack --regid=aistack --init-groups --inh-caps=-all \
		--bounding-set=-all --no-new-privs -- "$@"
}

@test "dpkg -i creates the user aistack through sysusers.d" {
	grep -q 'systemd-sysusers' /var/lib/dpkg/info/aistack.postinst
	# created by the postinst's systemd-sysusers, not by a running systemd
	if [ -z "${USER_EXISTED:-}" ]; then
		grep -q "^Creating user 'aistack' " "$BATS_FILE_TMPDIR/dpkg-i.log"
	fi
	[ -f /usr/lib/sysusers.d/aistack.conf ]
	run getent passwd aistack
	assert_output --regexp '^aistack:x:[0-9]+:[0-9]+:aistack telemetry services:/nonexistent:/usr/sbin/nologin$'
	[ "$(id -u aistack)" -lt 1000 ]
	[ "$(id -gn aistack)" = aistack ]
	# nothing is enabled or started by the installation
	[ -z "$(find /etc/systemd/system -name 'aistack*' 2> /dev/null)" ]
	[ ! -e /var/lib/aistack ]
}

@test "every command runs from /usr/bin as aistack and tells its version" {
	n=0
	while IFS= read -r f; do
		case $f in /usr/bin/aistack-*) ;; *) continue ;; esac
		run as_aistack "$f" --version
		assert_success
		assert_output "${f##*/} $VERSION"
		n=$((n + 1))
	done < "$BATS_FILE_TMPDIR/files"
	# one a section 1 page
	[ "$n" -ge 6 ]
	[ "$n" -eq "$(ls "$TESTS_DIR"/../../man/aistack-*.1 | wc -l)" ]
}

@test "every man page is reachable by man" {
	n=0
	for src in "$TESTS_DIR"/../../man/*.[1-8]; do
		page=${src##*/}
		sec=${page##*.}
		run man -w "$sec" "${page%.*}"
		assert_success
		assert_output "/usr/share/man/man$sec/$page.gz"
		n=$((n + 1))
	done
	[ "$n" -ge 8 ]
	run env MANPAGER=cat MANWIDTH=80 man aistack-ingest
	assert_success
	assert_line --regexp '^NAME$'
	assert_line --regexp '^ +aistack-ingest'
}

@test "the completions are where bash, zsh and fish look for them" {
	cmds=()
	while IFS= read -r f; do
		case $f in /usr/bin/aistack-*) cmds+=("${f##*/}") ;; esac
	done < "$BATS_FILE_TMPDIR/files"
	[ "${#cmds[@]}" -ge 6 ]
	for c in "${cmds[@]}"; do
		# bash-completion loads /usr/share/bash-completion/completions/CMD
		run bash -c ". /usr/share/bash-completion/completions/$c && complete -p $c"
		assert_success
		assert_output --regexp "^complete .* $c\$"
		# zsh's vendor-completions is on its default fpath
		[ -f "/usr/share/zsh/vendor-completions/_$c" ]
		# fish autoloads vendor_completions.d
		run env HOME="$BATS_TEST_TMPDIR" fish -c "complete -C '$c --he'"
		assert_success
		assert_output --partial '--help'
	done
	zsh -fc 'print -rl -- $fpath' | grep -qx /usr/share/zsh/vendor-completions
	run env HOME="$BATS_TEST_TMPDIR" fish -c 'complete -C "aistack-ingest --max-r"'
	assert_output --partial '--max-record'
}

@test "the installed units verify, their Documentation= pages included" {
	units=()
	while IFS= read -r f; do
		case $f in */systemd/system/aistack-*.service | */systemd/system/aistack-*.timer)
			units+=("$f") ;;
		esac
	done < "$BATS_FILE_TMPDIR/files"
	[ "${#units[@]}" -eq 5 ]
	run systemd-analyze verify "${units[@]}"
	assert_success
	assert_output ''
	grep -q 'Documentation=man:aistack' "${units[@]}"
}

@test "each installed service's exposure is 1.0 or less" {
	services=()
	while IFS= read -r f; do
		case $f in */systemd/system/aistack-*.service) services+=("$f") ;; esac
	done < "$BATS_FILE_TMPDIR/files"
	[ "${#services[@]}" -eq 3 ]
	check_scores "${services[@]}"
}

# The demo's telemetry: four producers, duplicates and corrupt lines.
demo_telemetry() {
	local i
	for i in 1 2 3 4; do
		"$TESTS_DIR/../../bench/gen-telemetry" -n 500 --seed "$i" --dups 0.25 \
			--corrupt 0.004
	done
}

# expected_dataset FILE: how many distinct interactions the flow keeps of
# the valid telemetry lines in FILE (its extract, its key, its
# normalization), computed without aistack.
expected_dataset() {
	jq -R -c 'fromjson? | objects' "$1" | jq -c -f /usr/share/aistack/extract.jq |
		jq -r '[.messages[1].content, .messages[2].content] |
			map(ascii_downcase | sub("^\\s+"; "") | sub("\\s+$"; "")) | @json' |
		sort -u | wc -l
}

@test "the learning flow runs as aistack from the installed paths" {
	demo_telemetry > "$BATS_FILE_TMPDIR/telemetry"
	want=$(expected_dataset "$BATS_FILE_TMPDIR/telemetry")
	[ "$want" -gt 50 ]
	# what StateDirectory=aistack makes, then the unit's command line
	install -d -o aistack -g aistack -m 0700 /var/lib/aistack
	exec_start=$(sed -n 's/^ExecStart=//p' /lib/systemd/system/aistack-learn.service)
	path=$(sed -n 's/^Environment=PATH=//p' /lib/systemd/system/aistack-learn.service)
	[ "$exec_start" = "/bin/bash /usr/share/aistack/learning-flow.sh" ]
	for i in 1 2; do
		as_aistack env -i PATH="$path" STATE_DIRECTORY=/var/lib/aistack \
			aistack-ingest telemetry < "$BATS_FILE_TMPDIR/telemetry"
		# shellcheck disable=SC2086 # the unit's words
		run as_aistack env -i PATH="$path" STATE_DIRECTORY=/var/lib/aistack $exec_start
		assert_success
		assert_line --regexp '^  learning: committed [0-9]+, pending [0-9]+, lag 0, '
	done
	# the second copy of every interaction was a duplicate
	got=$(cat /var/lib/aistack/streams/dataset/[0-9]*.jsonl | wc -l)
	[ "$got" -eq "$want" ]
	[ -z "$(find /var/lib/aistack ! -user aistack)" ]
}

# --- the units under systemd ------------------------------------------------
# A container booted by systemd-nspawn from this machine's /usr (read
# only) and /etc (an overlay: changes stay in the container), with /var a
# fresh tmpfs, its own network namespace (loopback only) and cgroup v2, so
# that the units' IPAddressDeny= is enforced; bpf() is allowed in it for
# the same reason.  Its cgroups live under one of ours, removed after.

CG_NAME=aistack-package-check

cgroup_roots() {	# the hierarchies nspawn makes its cgroups in
	if [ "$(stat -fc %T /sys/fs/cgroup)" = cgroup2fs ]; then
		echo /sys/fs/cgroup
	else
		[ -d /sys/fs/cgroup/unified ] && echo /sys/fs/cgroup/unified
		[ -d /sys/fs/cgroup/systemd ] && echo /sys/fs/cgroup/systemd
	fi
	return 0
}

container_start() {
	local d r i
	command -v systemd-nspawn > /dev/null || {
		echo "systemd-nspawn is not installed (tests/deps.sh installs it)" >&2
		return 1
	}
	CROOT=$(mktemp -d "${TMPDIR:-/tmp}/aistack-ct.XXXXXX")
	echo "$CROOT" > "$BATS_FILE_TMPDIR/croot"
	chmod 755 "$CROOT"
	mkdir -p "$CROOT"/{usr,etc,var,tmp,run,dev,proc,sys,root,home}
	chmod 1777 "$CROOT/tmp"
	binds=(--bind-ro=/usr)
	for d in bin sbin lib lib32 lib64 libx32; do
		if [ -L "/$d" ]; then
			ln -s "$(readlink "/$d")" "$CROOT/$d"
		elif [ -d "/$d" ]; then
			mkdir "$CROOT/$d"
			binds+=(--bind-ro="/$d")
		fi
	done
	cp -L /etc/os-release "$CROOT/etc/os-release"
	for r in $(cgroup_roots); do
		mkdir -p "$r/$CG_NAME"
	done
	(
		for r in $(cgroup_roots); do
			echo "$BASHPID" > "$r/$CG_NAME/cgroup.procs"
		done
		exec env SYSTEMD_NSPAWN_UNIFIED_HIERARCHY=1 systemd-nspawn --quiet \
			-D "$CROOT" "${binds[@]}" --overlay=/etc::/etc --tmpfs=/var \
			--private-network --register=no --keep-unit --link-journal=no \
			--capability=CAP_BPF,CAP_NET_ADMIN --system-call-filter=bpf \
			-M "aistack-check-$$" -b systemd.unit=basic.target
	) > "$BATS_FILE_TMPDIR/nspawn.log" 2>&1 3>&- 9>&- &
	NSPAWN=$!
	echo "$NSPAWN" > "$BATS_FILE_TMPDIR/nspawn.pid"
	LEADER=
	for ((i = 0; i < 600; i++)); do
		LEADER=$(pgrep -P "$NSPAWN" -x systemd || true)
		[ -n "$LEADER" ] && break
		kill -0 "$NSPAWN" 2> /dev/null || break
		sleep 0.1
	done
	if [ -z "$LEADER" ]; then
		cat "$BATS_FILE_TMPDIR/nspawn.log" >&2
		return 1
	fi
	echo "$LEADER" > "$BATS_FILE_TMPDIR/leader"
	# its manager answers once its bus is up; then wait for the boot
	for ((i = 0; i < 600; i++)); do
		state=$(ct systemctl is-system-running 2> /dev/null || true)
		case $state in
		running | degraded) return 0 ;;
		esac
		kill -0 "$NSPAWN" 2> /dev/null || break
		sleep 0.1
	done
	echo "container: ${state:-no answer}" >&2
	cat "$BATS_FILE_TMPDIR/nspawn.log" >&2
	return 1
}

container_stop() {
	local pid croot r i
	pid=$(cat "$BATS_FILE_TMPDIR/nspawn.pid" 2> /dev/null) || return 0
	if kill -0 "$pid" 2> /dev/null; then
		kill -TERM "$pid" 2> /dev/null
		for ((i = 0; i < 300; i++)); do
			kill -0 "$pid" 2> /dev/null || break
			sleep 0.1
		done
		kill -KILL "$pid" 2> /dev/null || true
	fi
	wait "$pid" 2> /dev/null || true
	rm -f "$BATS_FILE_TMPDIR/nspawn.pid"
	for r in $(cgroup_roots); do
		[ -d "$r/$CG_NAME" ] && find "$r/$CG_NAME" -depth -type d -exec rmdir {} + 2> /dev/null
	done
	croot=$(cat "$BATS_FILE_TMPDIR/croot" 2> /dev/null) || return 0
	# nothing of the container stays mounted (it had its own namespace)
	if ! findmnt -rn -o TARGET | grep -q "^$croot"; then
		rm -rf --one-file-system "$croot"
	fi
}

ct() {	# ct CMD...: run CMD in the container, in an environment of its own
	timeout 120 nsenter -t "$(cat "$BATS_FILE_TMPDIR/leader")" -a \
		env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 "$@"
}

# unit_ok UNIT: the last run of UNIT succeeded
unit_ok() {
	run ct systemctl show -p Result -p ExecMainStatus -p ActiveState "$1"
	assert_line Result=success
	assert_line ExecMainStatus=0
}

@test "under systemd: the rotate unit runs as aistack and owns /var/lib/aistack" {
	container_start
	run ct systemctl start aistack-rotate.service
	assert_success
	unit_ok aistack-rotate.service
	run ct stat -c '%U:%G %a' /var/lib/aistack /var/lib/aistack/streams
	assert_output $'aistack:aistack 700\naistack:aistack 700'
	# the timers that start learn and rotate
	for t in aistack-learn.timer aistack-rotate.timer; do
		ct systemctl start "$t"
		run ct systemctl show -p ActiveState -p Triggers "$t"
		assert_line ActiveState=active
		assert_line "Triggers=${t%.timer}.service"
	done
	ct systemctl stop aistack-learn.timer aistack-rotate.timer
}

@test "under systemd: the learn unit turns telemetry into the dataset" {
	head -n 600 "$BATS_FILE_TMPDIR/telemetry" > "$BATS_FILE_TMPDIR/part"
	want=$(expected_dataset "$BATS_FILE_TMPDIR/part")
	ct setpriv --reuid=aistack --regid=aistack --init-groups env \
		AISTACK_STATE_DIR=/var/lib/aistack /usr/bin/aistack-ingest telemetry \
		< "$BATS_FILE_TMPDIR/part"
	run ct systemctl start aistack-learn.service
	assert_success
	unit_ok aistack-learn.service
	run ct sh -c 'cat /var/lib/aistack/streams/dataset/[0-9]*.jsonl | wc -l'
	assert_output "$want"
	run ct journalctl -u aistack-learn.service -o cat --no-pager
	assert_output --regexp 'learning: committed [0-9]+, pending [0-9]+, lag 0'
}

@test "under systemd: the learn unit loads PostgreSQL at an allowed address only" {
	# a cluster on an address of this machine that is not loopback
	ct sh -c 'ip addr add 192.0.2.5/32 dev lo && mkdir -p /var/lib/pgtest &&
		chown postgres /var/lib/pgtest && cd /tmp &&
		runuser -u postgres -- /usr/lib/postgresql/15/bin/initdb -D /var/lib/pgtest/data \
			-A trust -U postgres --no-sync > /dev/null &&
		echo "host all all 192.0.2.5/32 trust" >> /var/lib/pgtest/data/pg_hba.conf &&
		runuser -u postgres -- /usr/lib/postgresql/15/bin/pg_ctl -D /var/lib/pgtest/data \
			-l /var/lib/pgtest/log -w -o "-p 5499 -k /var/lib/pgtest -c listen_addresses=192.0.2.5" \
			start > /dev/null &&
		psql -h 192.0.2.5 -p 5499 -U postgres -qc "create role aistack login" \
			-c "create database aistack owner aistack"'
	ct sh -c 'mkdir -p /etc/aistack &&
		echo "AISTACK_PG_DSN=postgresql://aistack@192.0.2.5:5499/aistack?connect_timeout=2" \
			> /etc/aistack/learn.env &&
		printf "[breaker postgres]\nfailures = 1\nopen_for = 1s\n" >> /etc/aistack/aistack.conf'
	# IPAddressDeny=any: the load fails, its breaker opens, on this boot
	run ct systemctl start aistack-learn.service
	assert_failure
	run ct jq -r '.state + " " + .boot_id' /var/lib/aistack/breakers/postgres
	assert_output "open $(ct cat /proc/sys/kernel/random/boot_id)"
	# the drop-in aistack(7) shows
	ct sh -c 'mkdir -p /etc/systemd/system/aistack-learn.service.d &&
		printf "[Service]\nIPAddressAllow=192.0.2.5\n" > /etc/systemd/system/aistack-learn.service.d/db.conf &&
		systemctl daemon-reload'
	sleep 1.5
	run ct systemctl start aistack-learn.service
	assert_success
	unit_ok aistack-learn.service
	run ct sh -c 'cat /var/lib/aistack/streams/dataset/[0-9]*.jsonl | wc -l'
	want=$output
	run ct psql -h 192.0.2.5 -p 5499 -U postgres -Atc 'select count(*) from aistack_dataset' aistack
	assert_output "$want"
	# back to no database, the breaker closed, as an operator would
	ct rm -rf /etc/systemd/system/aistack-learn.service.d /etc/aistack/learn.env
	ct systemctl daemon-reload
	ct runuser -u aistack -- env AISTACK_STATE_DIR=/var/lib/aistack aistack-breaker reset postgres
}

# proxy_get PATH [CURL-ARGS]: status and body of a call to the proxy
proxy_get() {
	local p=$1
	shift
	ct curl -s -m 20 -o /dev/stdout -w ' %{http_code}' "$@" "http://127.0.0.1:8888$p"
}

@test "under systemd: the proxy binds, reads its 0600 token, reaches only allowed addresses" {
	# an upstream on loopback and one on an address that is not allowed
	ct sh -c 'ip addr add 192.0.2.1/32 dev lo && mkdir -p /tmp/www &&
		echo "{\"hello\":1}" > /tmp/www/hello.json && cd /tmp/www &&
		(setpriv --reuid=nobody --regid=nogroup --clear-groups \
			/usr/bin/python3 -m http.server -b 0.0.0.0 8099 > /dev/null 2>&1 &)'
	ct sh -c 'mkdir -p /etc/aistack && cat > /etc/aistack/aistack.conf' <<-'EOF'
	[proxy]
	token_file = /etc/aistack/proxy.token

	[upstream near]
	url = http://127.0.0.1:8099
	allow = /hello.json

	[upstream far]
	url = http://192.0.2.1:8099
	allow = /hello.json
	timeout = 2s

	[breaker far]
	failures = 1
	open_for = 1s
	EOF
	ct install -m 0600 -o aistack -g aistack /dev/null /etc/aistack/proxy.token
	ct sh -c 'echo package-check-token > /etc/aistack/proxy.token'
	for ((i = 0; i < 100; i++)); do
		ct curl -s -o /dev/null http://127.0.0.1:8099/hello.json && break
		sleep 0.1
	done
	run ct systemctl start aistack-proxy.service
	assert_success
	for ((i = 0; i < 100; i++)); do
		ct curl -s -o /dev/null http://127.0.0.1:8888/health && break
		sleep 0.1
	done
	run ct ps -o user= -C aistack-proxy
	assert_output aistack
	run proxy_get /health
	assert_output --regexp '^\{"status":"ok".* 200$'
	run proxy_get /
	assert_output --regexp '<html.* 200$'
	run proxy_get /api/stats
	assert_output --regexp ' 401$'
	auth=(-H 'Authorization: Bearer package-check-token')
	run proxy_get /api/stats "${auth[@]}"
	assert_output --regexp ' 200$'
	run proxy_get /upstream/near/hello.json "${auth[@]}"
	assert_output '{"hello":1}
 200'
	# IPAddressDeny=any: only localhost is allowed
	run proxy_get /upstream/far/hello.json "${auth[@]}"
	assert_output --regexp ' 50[24]$'
	# which opened its breaker, on this boot (ProcSubset=pid hides
	# /proc/sys from the proxy: the unit passes the id)
	run ct jq -r '.state + " " + .boot_id' /var/lib/aistack/breakers/far
	assert_output "open $(ct cat /proc/sys/kernel/random/boot_id)"
	# the drop-in its unit file describes opens it
	ct sh -c 'mkdir -p /etc/systemd/system/aistack-proxy.service.d &&
		printf "[Service]\nIPAddressAllow=192.0.2.1\n" > /etc/systemd/system/aistack-proxy.service.d/far.conf &&
		systemctl daemon-reload && systemctl restart aistack-proxy.service'
	for ((i = 0; i < 100; i++)); do
		ct curl -s -o /dev/null http://127.0.0.1:8888/health && break
		sleep 0.1
	done
	# the breaker may still be open from the refused call: wait it out
	for ((i = 0; i < 60; i++)); do
		run proxy_get /upstream/far/hello.json "${auth[@]}"
		[[ $output == *' 200' ]] && break
		sleep 1
	done
	assert_output '{"hello":1}
 200'
	# ExecReload= (SIGHUP), under the same sandbox: still serving
	run ct systemctl reload aistack-proxy.service
	assert_success
	run proxy_get /health
	assert_output --regexp ' 200$'
	run ct systemctl show -p ActiveState -p NRestarts aistack-proxy.service
	assert_line ActiveState=active
	assert_line NRestarts=0
}

@test "under systemd: the example drop-in lets the rotate unit rotate another service's logs" {
	# the service's side, as the drop-in's comment asks
	ct sh -c 'useradd --system --user-group --no-create-home aidb &&
		install -d -o aidb -g aidb -m 2770 /var/log/aidb'
	printf '{"a":1}\n{"a":2}\n' | ct setpriv --reuid=aidb --regid=aidb --clear-groups \
		sh -c 'umask 007 && cat > /var/log/aidb/events.jsonl'
	# without the group: the unit fails, the file is kept whole
	ct sh -c 'mkdir -p /etc/systemd/system/aistack-rotate.service.d &&
		grep -v "^SupplementaryGroups=" /usr/share/doc/aistack/examples/aistack-rotate-logs.conf \
			> /etc/systemd/system/aistack-rotate.service.d/aidb-logs.conf &&
		systemctl daemon-reload'
	run ct systemctl start aistack-rotate.service
	assert_failure
	run ct systemctl show -p Result aistack-rotate.service
	assert_output Result=exit-code
	run ct wc -l /var/log/aidb/events.jsonl
	assert_output '2 /var/log/aidb/events.jsonl'
	# the drop-in as shipped
	ct sh -c 'cp /usr/share/doc/aistack/examples/aistack-rotate-logs.conf \
			/etc/systemd/system/aistack-rotate.service.d/aidb-logs.conf &&
		systemctl daemon-reload'
	run ct systemctl start aistack-rotate.service
	assert_success
	unit_ok aistack-rotate.service
	run ct sh -c 'cat /var/log/aidb/events.jsonl.*Z; stat -c "%U:%G %a %s" /var/log/aidb/events.jsonl'
	assert_output '{"a":1}
{"a":2}
aidb:aidb 660 0'
	container_stop
}

@test "dpkg -r removes the package and keeps the state and the user" {
	dpkg -r aistack
	run dpkg-query -W -f='${Status}' aistack
	assert_output 'deinstall ok config-files'
	while IFS= read -r f; do
		# directories other packages share stay
		[ -d "$f" ] && continue
		[ ! -e "$f" ]
		[ ! -L "$f" ]
	done < "$BATS_FILE_TMPDIR/files"
	[ -d /var/lib/aistack/streams/dataset ]
	getent passwd aistack
}

@test "dpkg --purge leaves only the user behind" {
	dpkg --purge aistack
	run dpkg-query -W aistack
	assert_failure
	[ ! -e /var/lib/aistack ]
	aistack_paths > "$BATS_FILE_TMPDIR/after"
	diff -u "$BATS_FILE_TMPDIR/before" "$BATS_FILE_TMPDIR/after"
	# what policy keeps: the system user and its group
	getent passwd aistack
	getent group aistack
}
