#!/usr/bin/env bats
# aistack-rotate: sealing, compression, expiry that spares unread data,
# crash safety, lossless rotation of plain files, dry runs, the command line
# and the systemd units.

load test_helper

SEG0=00000000000000000000.jsonl

# read_back NAME: the stream as a reader sees it: segments in base order,
# the plain form of a base when both forms exist (as lib/stream/reader.c does).
read_back() {
	local f base
	for f in "$STREAMS/$1"/[0-9]*.jsonl*; do
		[ -e "$f" ] || continue
		base=${f%.gz}
		case $f in
		*.gz) [ -e "$base" ] || zcat "$f" ;;
		*) cat "$f" ;;
		esac
	done
}

# fill NAME N...: one sealed segment per count, N records each, then an
# active segment with 2 more records.
fill() {
	local name=$1 k=0 n
	shift
	for n in "$@"; do
		k=$((k + 1))
		gen_records "$n" "s$k-" | aistack-ingest "$name"
		aistack-rotate --seal-size 0 "$name"
	done
	gen_records 2 active- | aistack-ingest "$name"
}

segs() {
	(cd "$STREAMS/$1" && ls -1 [0-9]*)
}

# wait_nonempty FILE: until a writer has started (generous timeout).
wait_nonempty() {
	local i
	for i in $(seq 600); do
		[ -s "$1" ] && return 0
		sleep 0.05
	done
	return 1
}

# snapshot DIR: names, sizes, modes, times and contents of everything.
snapshot() {
	(cd "$1" && find . -printf '%p %s %m %T@\n' | sort &&
		find . -type f -exec md5sum {} + | sort)
}

@test "sealing: the next segment's base is the head, and reading continues across it" {
	gen_records 10 a | aistack-ingest t
	size=$(stat -c %s "$STREAMS/t/$SEG0")
	run aistack-rotate --seal-size 64 t
	assert_success
	assert_output ''
	next=$(printf '%020d.jsonl' "$size")
	run segs t
	assert_output "$(printf '%s\n%s' "$SEG0" "$next")"
	assert_equal "$(stat -c %a "$STREAMS/t/$SEG0")" 444
	assert_equal "$(stat -c %s "$STREAMS/t/$next")" 0
	gen_records 5 b | aistack-ingest t
	assert_equal "$(read_back t)" "$( (gen_records 10 a; gen_records 5 b) )"
	assert_equal "$(stream_bytes t)" "$(read_back t)"
	# a small, fresh segment is not sealed; an empty one never is
	run aistack-rotate -v t
	assert_success
	assert_output ''
	run segs t
	assert_equal "${#lines[@]}" 2
}

@test "sealing by age: an active segment older than --seal-age is sealed" {
	gen_records 3 | aistack-ingest t
	touch -d '2 days ago' "$STREAMS/t/$SEG0"
	run aistack-rotate --json --seal-age 1d t
	assert_success
	size=$(stat -c %s "$STREAMS/t/$SEG0")
	assert_output "{\"action\":\"seal\",\"target\":\"t\",\"file\":\"$SEG0\",\"bytes\":$size,\"dry_run\":false}"
	run aistack-rotate --seal-age 1d t
	assert_output ''
	run segs t
	assert_equal "${#lines[@]}" 2
}

@test "consumers read on across a seal" {
	command -v aistack-checkpoint >/dev/null || {
		# until aistack-checkpoint lands, the reader's view is read_back
		gen_records 4 | aistack-ingest t
		aistack-rotate --seal-size 0 t
		gen_records 3 x | aistack-ingest t
		assert_equal "$(read_back t)" "$( (gen_records 4; gen_records 3 x) )"
		return
	}
	gen_records 4 | aistack-ingest t
	run aistack-checkpoint read c t
	assert_success
	assert_output "$(gen_records 4)"
	aistack-checkpoint commit c t
	aistack-rotate --seal-size 0 t
	gen_records 3 x | aistack-ingest t
	run aistack-checkpoint read c t
	assert_success
	assert_output "$(gen_records 3 x)"
}

@test "compression at 7 days: content identical, mode and age kept, the active segment untouched" {
	fill t 100 100 100
	read_back t > "$BATS_TEST_TMPDIR/before"
	mapfile -t s < <(segs t)
	touch -d '8 days ago' "$STREAMS/t/${s[0]}" "$STREAMS/t/${s[1]}" "$STREAMS/t/${s[3]}"
	touch -d '6 days ago' "$STREAMS/t/${s[2]}"
	cp "$STREAMS/t/${s[0]}" "$BATS_TEST_TMPDIR/seg0"
	mtime=$(stat -c %Y "$STREAMS/t/${s[0]}")
	run aistack-rotate --seal-size 1G --seal-age never t
	assert_success
	assert_output ''
	run segs t
	assert_output "$(printf '%s.gz\n%s.gz\n%s\n%s' "${s[0]}" "${s[1]}" "${s[2]}" "${s[3]}")"
	zcat "$STREAMS/t/${s[0]}.gz" | cmp - "$BATS_TEST_TMPDIR/seg0"
	assert_equal "$(stat -c '%a %Y' "$STREAMS/t/${s[0]}.gz")" "444 $mtime"
	# glob order is stream order
	zcat -f "$STREAMS/t/"[0-9]* | cmp - "$BATS_TEST_TMPDIR/before"
	# a second run has nothing left to do
	run aistack-rotate -n --seal-age never t
	assert_success
	assert_output ''
}

@test "consumers read through compressed segments" {
	fill t 50 50
	read_back t > "$BATS_TEST_TMPDIR/before"
	touch -d '8 days ago' "$STREAMS/t"/0*
	aistack-rotate --seal-age never t
	run ls "$STREAMS/t"
	assert_line --index 0 "$SEG0.gz"
	if command -v aistack-checkpoint >/dev/null; then
		run aistack-checkpoint read -n 1000 c t
		assert_success
		assert_output "$(cat "$BATS_TEST_TMPDIR/before")"
	else
		zcat -f "$STREAMS/t/"[0-9]* | cmp - "$BATS_TEST_TMPDIR/before"
	fi
}

@test "the gzip form is what gzip -d reads, and compresses like gzip -6" {
	awk 'BEGIN { for (i = 0; i < 20000; i++)
		printf "{\"i\":%d,\"text\":\"row %d of the test %s\"}\n", i, i * 7, (i % 3 ? "alpha" : "beta") }' |
		aistack-ingest t
	aistack-rotate --seal-size 0 t
	cp "$STREAMS/t/$SEG0" "$BATS_TEST_TMPDIR/plain"
	touch -d '8 days ago' "$STREAMS/t/$SEG0"
	aistack-rotate --seal-age never t
	gzip -dc "$STREAMS/t/$SEG0.gz" | cmp - "$BATS_TEST_TMPDIR/plain"
	gzip -t "$STREAMS/t/$SEG0.gz"
	ours=$(stat -c %s "$STREAMS/t/$SEG0.gz")
	theirs=$(gzip -6 -c "$BATS_TEST_TMPDIR/plain" | wc -c)
	# within 1% of gzip -6
	[ $((ours * 100)) -le $((theirs * 101)) ]
	[ $((ours * 101)) -ge $((theirs * 100)) ]
}

@test "expiry deletes read segments and keeps the unread ones" {
	fill t 10 10 10
	mapfile -t s < <(segs t)
	b1=$((10#${s[1]%.jsonl}))
	b2=$((10#${s[2]%.jsonl}))
	sz0=$(stat -c %s "$STREAMS/t/${s[0]}")
	sz1=$(stat -c %s "$STREAMS/t/${s[1]}")
	sz2=$(stat -c %s "$STREAMS/t/${s[2]}")
	set_consumer t fast "$b2"
	set_consumer t slow "$((b1 + 5))"
	touch -d '31 days ago' "$STREAMS/t"/0*
	run aistack-rotate --json --seal-age never --compress-after never t
	assert_success
	assert_output "$(cat <<EOF
{"action":"delete","target":"t","file":"${s[0]}","bytes":$sz0,"dry_run":false}
{"action":"keep","target":"t","file":"${s[1]}","bytes":$sz1,"reason":"unread","dry_run":false}
{"action":"keep","target":"t","file":"${s[2]}","bytes":$sz2,"reason":"unread","dry_run":false}
EOF
)"
	run segs t
	assert_output "$(printf '%s\n%s\n%s' "${s[1]}" "${s[2]}" "${s[3]}")"
	# once the slow consumer has read them, they go
	set_consumer t slow "$((10#${s[3]%.jsonl}))"
	set_consumer t fast "$((10#${s[3]%.jsonl}))"
	run aistack-rotate --seal-age never --compress-after never t
	assert_success
	run segs t
	assert_output "${s[3]}"
}

@test "--force deletes unread segments, reports the loss, and the consumer then fails with 65" {
	fill t 10 10
	mapfile -t s < <(segs t)
	b1=$((10#${s[1]%.jsonl}))
	b2=$((10#${s[2]%.jsonl}))
	set_consumer t slow 7
	touch -d '31 days ago' "$STREAMS/t"/0*
	run aistack-rotate --force --seal-age never --compress-after never t
	assert_success
	assert_output "aistack-rotate: t: --force deleted $((b2 - 7)) bytes that consumer slow had not read (committed offset 7, the stream now starts at $b2)"
	run segs t
	assert_output "${s[2]}"
	if command -v aistack-checkpoint >/dev/null; then
		run aistack-checkpoint read slow t
		assert_failure 65
		assert_output --partial "$((b2 - 7)) bytes lost"
	fi
	grep -qx "aistack_rotate_last_run_unread_deleted_bytes{target=\"t\"} $((b2 - 7))" \
		"$AISTACK_STATE_DIR/metrics/rotate-t.prom"
}

@test "--max-total deletes the oldest read segments until the stream fits" {
	fill t 100 100 100 100
	mapfile -t s < <(segs t)
	sz=$(stat -c %s "$STREAMS/t/${s[0]}")
	total=$(cat "$STREAMS/t"/0* | wc -c)
	run aistack-rotate --seal-age never --max-total "$((total - sz))" t
	assert_success
	run segs t
	assert_equal "${lines[0]}" "${s[1]}"
	# a consumer protects what it has not read, whatever the size
	set_consumer t c 0
	run aistack-rotate --seal-age never --max-total 1 t
	assert_success
	run segs t
	assert_equal "${#lines[@]}" 4
}

@test "kill -9 during compression at random points: the stream reads back exactly once" {
	awk 'BEGIN { for (i = 0; i < 60000; i++)
		printf "{\"i\":%d,\"pad\":\"%s the quick brown fox %d\"}\n", i, (i % 7 ? "lorem" : "ipsum"), i * 13 }' > "$BATS_TEST_TMPDIR/all"
	split -n l/6 "$BATS_TEST_TMPDIR/all" "$BATS_TEST_TMPDIR/part."
	for p in "$BATS_TEST_TMPDIR"/part.*; do
		aistack-ingest t "$p"
		aistack-rotate --seal-size 0 t
	done
	touch -d '8 days ago' "$STREAMS/t"/0*
	for round in 1 2 3 4 5 6 7 8; do
		aistack-rotate --seal-age never t &
		pid=$!
		sleep "0.0$((RANDOM % 10))$((RANDOM % 10))"
		kill -9 "$pid" 2>/dev/null || true
		wait "$pid" || true
		read_back t | cmp - "$BATS_TEST_TMPDIR/all"
	done
	run aistack-rotate --seal-age never t
	assert_success
	run ls -A "$STREAMS/t"
	refute_output --partial '.tmp'
	[ "$(ls "$STREAMS/t"/0*.jsonl.gz | wc -l)" -eq 6 ]
	zcat -f "$STREAMS/t/"[0-9]* | cmp - "$BATS_TEST_TMPDIR/all"
	if command -v aistack-checkpoint >/dev/null; then
		aistack-checkpoint read -n 100000 c t | cmp - "$BATS_TEST_TMPDIR/all"
	fi
}

@test "leftovers of an interrupted run are recovered: both forms, temporary files" {
	fill t 20 20
	read_back t > "$BATS_TEST_TMPDIR/before"
	cp "$STREAMS/t/$SEG0" "$BATS_TEST_TMPDIR/seg0"
	touch -d '8 days ago' "$STREAMS/t/$SEG0"
	aistack-rotate --seal-age never t
	# as if killed between the rename and the unlink, and mid-write
	cp -p "$BATS_TEST_TMPDIR/seg0" "$STREAMS/t/$SEG0"
	echo garbage > "$STREAMS/t/.$SEG0.gz.tmpAbCdEf"
	echo mine > "$STREAMS/t/.notes"
	run aistack-rotate -v --seal-age never t
	assert_success
	assert_output "$(printf 'aistack-rotate: recover t .%s.gz.tmpAbCdEf 0\naistack-rotate: recover t %s 0' "$SEG0" "$SEG0")"
	LC_ALL=C run ls -A "$STREAMS/t"
	assert_output "$(printf '.counters\n.notes\n%s.gz\n%s\n%s\nconsumers\nlock' "$SEG0" "$(segs t | sed -n 2p)" "$(segs t | sed -n 3p)")"
	zcat -f "$STREAMS/t/"[0-9]* | cmp - "$BATS_TEST_TMPDIR/before"
}

@test "plain file: 3,000 lines from flock-ing writers while rotate runs 15 times, every line exactly once" {
	log="$BATS_TEST_TMPDIR/logs/app.jsonl"
	mkdir -p "${log%/*}"
	: > "$log"
	for w in 1 2 3; do
		python3 -c '
import fcntl, sys, time
w, path = sys.argv[1], sys.argv[2]
with open(path, "a") as f:
    for i in range(1000):
        fcntl.flock(f, fcntl.LOCK_EX)
        f.write("{\"w\":%s,\"i\":%d,\"pad\":\"%s\"}\n" % (w, i, "x" * (i % 50)))
        f.flush()
        fcntl.flock(f, fcntl.LOCK_UN)
        if i % 10 == 0:
            time.sleep(0.004)
' "$w" "$log" &
	done
	wait_nonempty "$log"
	for r in $(seq 15); do
		aistack-rotate --lock flock "$log"
		sleep 0.03
	done
	wait
	ls "${log%/*}" | grep -E '^app\.jsonl\.[0-9]{8}T[0-9]{6}Z$' > "$BATS_TEST_TMPDIR/copies"
	[ -s "$BATS_TEST_TMPDIR/copies" ]
	# copies in name order, then the live file
	(cd "${log%/*}" && xargs cat < "$BATS_TEST_TMPDIR/copies" && cat app.jsonl) > "$BATS_TEST_TMPDIR/all"
	assert_equal "$(wc -l < "$BATS_TEST_TMPDIR/all")" 3000
	assert_equal "$(sort "$BATS_TEST_TMPDIR/all" | uniq -d | wc -l)" 0
	# whole lines only, and each writer's lines in its order
	jq -r '"\(.w) \(.i)"' "$BATS_TEST_TMPDIR/all" > "$BATS_TEST_TMPDIR/pairs"
	run awk '{ if ($2 != want[$1] + 0) bad++; want[$1] = $2 + 1 }
		END { print bad ? "out of order" : "in order" }' "$BATS_TEST_TMPDIR/pairs"
	assert_output 'in order'
}

@test "plain files: a lock held past --lock-timeout skips that file only, exit 75" {
	mkdir -p "$BATS_TEST_TMPDIR/d1" "$BATS_TEST_TMPDIR/d2"
	echo '{"a":1}' > "$BATS_TEST_TMPDIR/d1/app.jsonl"
	echo '{"b":1}' > "$BATS_TEST_TMPDIR/d2/app.jsonl"
	flock "$BATS_TEST_TMPDIR/d1/app.jsonl" sleep 20 &
	holder=$!
	poll_until sh -c "! flock -n '$BATS_TEST_TMPDIR/d1/app.jsonl' true"
	start=$SECONDS
	run timeout 15 aistack-rotate --lock-timeout 1s "$BATS_TEST_TMPDIR/d1/" "$BATS_TEST_TMPDIR/d2/"
	kill "$holder"; wait "$holder" || true
	assert_failure 75
	assert_output "aistack-rotate: $BATS_TEST_TMPDIR/d1/app.jsonl: the writers' lock was not obtained within --lock-timeout 1000ms; not rotated"
	[ $((SECONDS - start)) -lt 10 ]
	# the held file is untouched, the other operand rotated
	[ "$(cat "$BATS_TEST_TMPDIR/d1/app.jsonl")" = '{"a":1}' ]
	[ -z "$(ls "$BATS_TEST_TMPDIR"/d1/app.jsonl.*Z 2>/dev/null)" ]
	[ ! -s "$BATS_TEST_TMPDIR/d2/app.jsonl" ]
	[ "$(cat "$BATS_TEST_TMPDIR"/d2/app.jsonl.*Z)" = '{"b":1}' ]
}

# check_once DIR BASE TOTAL: the copies of DIR/BASE in stamp order, then
# the file, hold TOTAL lines "{"w":W,"i":I...}", each once, whole, and
# each writer's in its order.
check_once() {
	local dir=$1 base=$2 total=$3 out=$BATS_TEST_TMPDIR
	ls "$dir" | grep -E "^${base//./\\.}\\.[0-9]{8}T[0-9]{6}Z(\\.gz)?\$" | sort > "$out/copies"
	[ "$(wc -l < "$out/copies")" -ge 2 ]
	(cd "$dir" && while read -r c; do zcat -f "$c"; done < "$out/copies" && cat "$base") > "$out/all"
	assert_equal "$(wc -l < "$out/all")" "$total"
	assert_equal "$(sort "$out/all" | uniq -d | wc -l)" 0
	jq -r '"\(.w) \(.i)"' "$out/all" > "$out/pairs"
	run awk '{ if ($2 != want[$1] + 0) bad++; want[$1] = $2 + 1 }
		END { print bad ? "out of order" : "in order" }' "$out/pairs"
	assert_output 'in order'
}

@test "--method rename: shell >> writers lose and duplicate nothing across 20 rotations" {
	log="$BATS_TEST_TMPDIR/logs/app.jsonl"
	mkdir -p "${log%/*}"
	echo '{"w":0,"i":0}' > "$log"
	chmod 640 "$log"
	# each writer writes until told to stop, and says how many lines
	for w in 1 2 3; do
		(i=0
		while [ ! -e "$log.stop" ]; do
			printf '{"w":%d,"i":%d,"pad":"%*s"}\n' "$w" "$i" $((i % 40)) '' >> "$log"
			i=$((i + 1))
		done
		echo "$i" > "$log.count$w") &
	done
	for r in $(seq 20); do
		aistack-rotate --method rename "$log"
		sleep 0.05
	done
	touch "$log.stop"
	wait
	aistack-rotate --method rename "$log"
	# the new file has the old one's mode; the copies are the old files
	[ "$(stat -c %a "$log")" = 640 ]
	check_once "${log%/*}" app.jsonl $(( $(cat "$log".count* | paste -sd+) + 1 ))
}

@test "--method rename: Python WatchedFileHandler writers lose and duplicate nothing, copies compressed meanwhile" {
	log="$BATS_TEST_TMPDIR/logs/app.jsonl"
	mkdir -p "${log%/*}"
	: > "$log"
	for w in 1 2 3; do
		python3 -c '
import logging, logging.handlers, os, sys, time
w, path = sys.argv[1], sys.argv[2]
h = logging.handlers.WatchedFileHandler(path)
h.setFormatter(logging.Formatter("%(message)s"))
log = logging.getLogger("w")
log.addHandler(h)
log.setLevel(logging.INFO)
i = 0
while not os.path.exists(path + ".stop"):
    log.info("{\"w\":%s,\"i\":%d}" % (w, i))
    i += 1
    if i % 20 == 0:
        time.sleep(0.005)
with open("%s.count%s" % (path, w), "w") as c:
    c.write("%d\n" % i)
' "$w" "$log" &
	done
	wait_nonempty "$log"
	for r in $(seq 20); do
		aistack-rotate --method rename --compress-after 0s "$log"
		sleep 0.05
	done
	touch "$log.stop"
	wait
	sleep 1.1
	aistack-rotate --method rename --compress-after 0s "$log"
	ls "${log%/*}" | grep -q '\.gz$'
	check_once "${log%/*}" app.jsonl $(( $(cat "$log".count* | paste -sd+) ))
}

@test "--method rename --signal HUP --pidfile: a writer that reopens on the signal loses nothing; a missing or stale pidfile is reported" {
	d="$BATS_TEST_TMPDIR/logs"
	log="$d/app.jsonl"
	mkdir -p "$d"
	: > "$log"
	python3 -c '
import os, signal, sys, time
path, pidfile = sys.argv[1], sys.argv[2]
f = open(path, "a")
hup = False
def on_hup(sig, frame):
    global hup
    hup = True
signal.signal(signal.SIGHUP, on_hup)
with open(pidfile + ".tmp", "w") as p:
    p.write("%d\n" % os.getpid())
os.rename(pidfile + ".tmp", pidfile)
i = 0
while not os.path.exists(path + ".stop"):
    if hup:
        hup = False
        f.close()
        f = open(path, "a")
    f.write("{\"w\":1,\"i\":%d}\n" % i)
    f.flush()
    i += 1
    if i % 20 == 0:
        time.sleep(0.005)
print(i)
' "$log" "$d/writer.pid" > "$d/count" &
	writer=$!
	wait_nonempty "$log"
	for r in $(seq 10); do
		aistack-rotate --method rename --signal HUP --pidfile "$d/writer.pid" "$log"
		sleep 0.1
	done
	touch "$log.stop"
	wait "$writer"
	check_once "$d" app.jsonl "$(cat "$d/count")"
	rm "$log.stop"
	# the writer is gone: its pidfile is stale, and the file is not renamed
	echo '{"w":2,"i":0}' >> "$log"
	ino=$(stat -c %i "$log")
	run aistack-rotate --method rename --signal SIGHUP --pidfile "$d/writer.pid" "$log"
	assert_failure 69
	assert_output --partial "$log: not rotated: --pidfile $d/writer.pid: process $writer (a stale pidfile)"
	[ "$(stat -c %i "$log")" = "$ino" ]
	run aistack-rotate --method rename --signal HUP --pidfile "$d/none.pid" "$log"
	assert_failure 66
	assert_output --partial "$log: not rotated: --pidfile $d/none.pid"
	[ "$(stat -c %i "$log")" = "$ino" ]
	run aistack-rotate --signal HUP --pidfile "$d/writer.pid" "$log"
	assert_failure 64
	run aistack-rotate --method rename --signal HUP "$log"
	assert_failure 64
	run aistack-rotate --method rename --signal NOSUCH --pidfile "$d/writer.pid" "$log"
	assert_failure 64
	run aistack-rotate --method move "$log"
	assert_failure 64
	assert_line --index 0 'aistack-rotate: --method: invalid value "move"'
	assert_line --index 1 --partial 'usage: aistack-rotate'
	# [rotate] method = rename
	printf '[rotate]\nmethod = rename\n' > "$AISTACK_CONFIG"
	aistack-rotate "$log"
	[ "$(stat -c %i "$log")" != "$ino" ]
	[ ! -s "$log" ]
	[ "$(stat -c %i "$d"/app.jsonl.*Z | grep -cx "$ino")" = 1 ]
	# an empty file is not rotated: no writer to signal, nothing to say
	run aistack-rotate --method rename --signal HUP --pidfile "$d/none.pid" "$log"
	assert_success
	assert_output ''
}

@test "--method rename: a run that died between the link and the rename is finished by the next" {
	d="$BATS_TEST_TMPDIR/logs"
	mkdir -p "$d"
	echo '{"a":1}' > "$d/app.jsonl"
	ln "$d/app.jsonl" "$d/app.jsonl.20260101T000000Z"
	aistack-rotate --method rename "$d/app.jsonl"
	[ ! -s "$d/app.jsonl" ]
	[ "$(ls "$d")" = "app.jsonl
app.jsonl.20260101T000000Z" ]
	[ "$(cat "$d/app.jsonl.20260101T000000Z")" = '{"a":1}' ]
	[ "$(stat -c %h "$d/app.jsonl.20260101T000000Z")" = 1 ]
}

@test "plain copies a follower has not finished survive expiry; --force deletes them, says how many bytes, and the follower then reports the loss" {
	d="$BATS_TEST_TMPDIR/logs"
	log="$d/app.jsonl"
	mkdir -p "$d"
	for i in 1 2 3 4 5; do printf '{"id":%d}\n' "$i"; done > "$log"
	set_consumer t slow 0
	aistack-ingest --max-backlog 1 --follow "$log" t 2> "$BATS_TEST_TMPDIR/ferr" &
	fpid=$!
	poll_until sh -c "[ \"\$(cat '$STREAMS'/t/0*.jsonl 2>/dev/null | wc -l)\" -ge 5 ]"
	poll_until paused_is t true
	for i in 6 7 8 9 10; do printf '{"id":%d}\n' "$i"; done >> "$log"
	aistack-rotate "$log"
	copy=$(ls "$d"/app.jsonl.*Z)
	bytes=$(( $(stat -c %s "$copy") - $(stream_bytes t | wc -c) ))
	poll_until grep -q "\"name\":\"$copy\"" "$STREAMS"/t/sources/app.jsonl.*
	kill -9 "$fpid"; wait "$fpid" || true
	# due for deletion, but the follower has not finished it: kept
	run aistack-rotate -v --delete-after 0s "$log"
	assert_success
	assert_output "aistack-rotate: keep $log ${copy##*/} $(stat -c %s "$copy") unread"
	[ -e "$copy" ]
	# compressed, it is still the follower's unread copy
	aistack-rotate --compress-after 0s --delete-after 0s "$log"
	[ ! -e "$copy" ] && [ -e "$copy.gz" ]
	run aistack-rotate -n --delete-after 0s "$log"
	assert_output "keep $log ${copy##*/}.gz $(stat -c %s "$copy.gz") unread"
	# --force deletes it and says what the follower loses
	run aistack-rotate --json --force --delete-after 0s "$log"
	assert_success
	assert_line "aistack-rotate: $log: --force deleted ${copy##*/}.gz with $bytes bytes that the follower into stream t had not read"
	assert_line --partial "\"action\":\"delete\",\"target\":\"$log\",\"file\":\"${copy##*/}.gz\""
	assert_line --partial "\"unread_bytes\":$bytes,"
	[ ! -e "$copy.gz" ]
	grep -qx "aistack_rotate_last_run_unread_deleted_bytes{target=\"$(realpath "$log")\"} $bytes" \
		"$AISTACK_STATE_DIR"/metrics/rotate-*app.jsonl.*.prom
	# the follower records the loss as for any copy gone before it was read
	set_consumer t slow 100000000
	run aistack-ingest --on-loss fail --follow "$log" t
	assert_failure 65
	assert_line "aistack-ingest: t: $copy: $bytes bytes lost before they were read (gone); recorded in t.rejects"
	# once finished, a copy is deleted without --force
	echo '{"id":11}' >> "$log"
	aistack-rotate "$log"
	aistack-ingest --follow "$log" t 2>/dev/null &
	fpid=$!
	poll_until sh -c "grep -q '\"id\":11' '$STREAMS'/t/0*.jsonl"
	sleep 1.5	# the copy is finished once unwritten for half a second
	poll_until sh -c "! aistack-rotate -n --delete-after 0s '$log' | grep -q '^keep'"
	kill -TERM "$fpid"; wait "$fpid" || true
	run aistack-rotate -v --delete-after 0s "$log"
	assert_success
	assert_output --regexp "^aistack-rotate: delete $log app\\.jsonl\\.[0-9T]+Z [0-9]+\$"
}

@test "plain file: --lock fcntl agrees with lockf writers" {
	log="$BATS_TEST_TMPDIR/app.jsonl"
	: > "$log"
	python3 -c '
import fcntl, sys, time
with open(sys.argv[1], "a") as f:
    for i in range(600):
        fcntl.lockf(f, fcntl.LOCK_EX)
        f.write("{\"i\":%d}\n" % i)
        f.flush()
        fcntl.lockf(f, fcntl.LOCK_UN)
        if i % 20 == 0:
            time.sleep(0.005)
' "$log" &
	pid=$!
	wait_nonempty "$log"
	for r in 1 2 3 4 5; do
		aistack-rotate --lock fcntl "$log"
		sleep 0.03
	done
	wait "$pid"
	cat "$BATS_TEST_TMPDIR"/app.jsonl.* "$log" > "$BATS_TEST_TMPDIR/all"
	assert_equal "$(cat "$BATS_TEST_TMPDIR/all")" "$(seq 0 599 | sed 's/.*/{"i":&}/')"
}

@test "plain copies are compressed after 7 days and deleted after 30; other names are never touched" {
	d="$BATS_TEST_TMPDIR/logs"
	mkdir "$d"
	gen_records 5 a > "$d/app.jsonl"
	gen_records 3 b > "$d/web.jsonl"
	for f in notes.txt app.jsonl.bak app.jsonl.1 .hidden.jsonl app.jsonl.20260101T000000 other.log.20250101T000000Z; do
		echo keep > "$d/$f"
		touch -d '60 days ago' "$d/$f"
	done
	ln -s app.jsonl "$d/link.jsonl"
	run aistack-rotate "$d/"
	assert_success
	assert_output ''
	assert_equal "$(wc -c < "$d/app.jsonl")" 0
	a=$(cd "$d" && ls app.jsonl.2*Z)
	w=$(cd "$d" && ls web.jsonl.2*Z)
	assert_equal "$(cat "$d/$a")" "$(gen_records 5 a)"
	touch -d '8 days ago' "$d/$a"
	touch -d '31 days ago' "$d/$w"
	# an old copy whose file is gone is still looked after
	gen_records 2 g > "$d/gone.jsonl.20250101T000000Z"
	touch -d '8 days ago' "$d/gone.jsonl.20250101T000000Z"
	run aistack-rotate --json "$d"
	assert_success
	assert_line "{\"action\":\"delete\",\"target\":\"$d/web.jsonl\",\"file\":\"$w\",\"bytes\":$(gen_records 3 b | wc -c),\"dry_run\":false}"
	assert_line --partial "{\"action\":\"compress\",\"target\":\"$d/app.jsonl\",\"file\":\"$a\",\"bytes\":$(gen_records 5 a | wc -c),\"compressed_bytes\":"
	assert_line --partial "{\"action\":\"compress\",\"target\":\"$d/gone.jsonl\",\"file\":\"gone.jsonl.20250101T000000Z\","
	assert_equal "${#lines[@]}" 3
	assert_equal "$(zcat "$d/$a.gz")" "$(gen_records 5 a)"
	[ ! -e "$d/$w" ]
	touch -d '31 days ago' "$d/$a.gz"
	gzsize=$(stat -c %s "$d/$a.gz")
	run aistack-rotate -v "$d/app.jsonl"
	assert_success
	assert_output "aistack-rotate: delete $d/app.jsonl $a.gz $gzsize"
	[ ! -e "$d/$a.gz" ]
	for f in notes.txt app.jsonl.bak app.jsonl.1 .hidden.jsonl app.jsonl.20260101T000000 other.log.20250101T000000Z; do
		assert_equal "$(cat "$d/$f")" keep
	done
	[ -L "$d/link.jsonl" ]
}

@test "-n prints the plan and changes nothing" {
	fill t 10 10 10
	mapfile -t s < <(segs t)
	touch -d '31 days ago' "$STREAMS/t/${s[0]}"
	touch -d '8 days ago' "$STREAMS/t/${s[1]}"
	touch -d '2 days ago' "$STREAMS/t/${s[3]}"
	set_consumer t c "$((10#${s[2]%.jsonl}))"
	d="$BATS_TEST_TMPDIR/logs"
	mkdir "$d"
	gen_records 4 > "$d/app.jsonl"
	gen_records 1 > "$d/app.jsonl.20250101T000000Z"
	touch -d '40 days ago' "$d/app.jsonl.20250101T000000Z"
	snapshot "$AISTACK_STATE_DIR" > "$BATS_TEST_TMPDIR/s1"
	snapshot "$d" > "$BATS_TEST_TMPDIR/d1"
	run aistack-rotate -n t "$d/app.jsonl"
	assert_success
	assert_line --index 0 "seal t ${s[3]} $(stat -c %s "$STREAMS/t/${s[3]}")"
	assert_line --index 1 "delete t ${s[0]} $(stat -c %s "$STREAMS/t/${s[0]}")"
	assert_line --index 2 "compress t ${s[1]} $(stat -c %s "$STREAMS/t/${s[1]}")"
	assert_line --index 3 --regexp "^rotate $d/app.jsonl app\.jsonl\.[0-9]{8}T[0-9]{6}Z $(gen_records 4 | wc -c)\$"
	assert_line --index 4 "delete $d/app.jsonl app.jsonl.20250101T000000Z $(gen_records 1 | wc -c)"
	assert_equal "${#lines[@]}" 5
	run aistack-rotate -n --json t
	assert_success
	assert_line --index 0 "{\"action\":\"seal\",\"target\":\"t\",\"file\":\"${s[3]}\",\"bytes\":$(stat -c %s "$STREAMS/t/${s[3]}"),\"dry_run\":true}"
	snapshot "$AISTACK_STATE_DIR" | diff -u "$BATS_TEST_TMPDIR/s1" -
	snapshot "$d" | diff -u "$BATS_TEST_TMPDIR/d1" -
	# and the real run does what was planned
	sz0=$(stat -c %s "$STREAMS/t/${s[0]}")
	sz3=$(stat -c %s "$STREAMS/t/${s[3]}")
	run aistack-rotate -v t
	assert_success
	assert_line --index 0 "aistack-rotate: seal t ${s[3]} $sz3"
	assert_line --index 1 "aistack-rotate: delete t ${s[0]} $sz0"
}

@test "without operands every stream is handled; several operands keep going and report the worst status" {
	fill a 5
	fill b 5
	touch -d '8 days ago' "$STREAMS"/a/0* "$STREAMS"/b/0*
	run aistack-rotate --seal-age never
	assert_success
	[ -e "$STREAMS/a/$SEG0.gz" ]
	[ -e "$STREAMS/b/$SEG0.gz" ]
	fill c 5
	touch -d '8 days ago' "$STREAMS"/c/0*
	run aistack-rotate --seal-age never nosuch c "$BATS_TEST_TMPDIR/missing.jsonl"
	assert_failure 66
	assert_line --index 0 'aistack-rotate: nosuch: no such stream'
	assert_line --index 1 "aistack-rotate: $BATS_TEST_TMPDIR/missing.jsonl: No such file or directory"
	[ -e "$STREAMS/c/$SEG0.gz" ]
}

@test "metrics: bytes sealed, compressed and deleted" {
	fill t 10 10
	mapfile -t s < <(segs t)
	sz0=$(stat -c %s "$STREAMS/t/${s[0]}")
	sz1=$(stat -c %s "$STREAMS/t/${s[1]}")
	sz2=$(stat -c %s "$STREAMS/t/${s[2]}")
	touch -d '31 days ago' "$STREAMS/t/${s[0]}"
	touch -d '8 days ago' "$STREAMS/t/${s[1]}"
	aistack-rotate --seal-size 0 t
	m="$AISTACK_STATE_DIR/metrics/rotate-t.prom"
	grep -qx "aistack_rotate_last_run_bytes{target=\"t\",action=\"sealed\"} $sz2" "$m"
	grep -qx "aistack_rotate_last_run_bytes{target=\"t\",action=\"compressed\"} $sz1" "$m"
	grep -qx "aistack_rotate_last_run_bytes{target=\"t\",action=\"deleted\"} $sz0" "$m"
	grep -qx "aistack_rotate_last_run_compressed_output_bytes{target=\"t\"} $(stat -c %s "$STREAMS/t/${s[1]}.gz")" "$m"
	grep -qx "aistack_rotate_files{target=\"t\",form=\"gz\"} 1" "$m"
	grep -qx "aistack_rotate_files{target=\"t\",form=\"plain\"} 1" "$m"
	grep -q '^aistack_rotate_last_success_timestamp_seconds{target="t"} [1-9][0-9]*$' "$m"
	promtool check metrics < "$m"
}

@test "metrics: two operands with the same base name get a file each, labelled with the absolute path" {
	mkdir -p "$BATS_TEST_TMPDIR/a/logs" "$BATS_TEST_TMPDIR/b/logs"
	echo '{"a":1}' > "$BATS_TEST_TMPDIR/a/logs/app.jsonl"
	echo '{"b":22}' > "$BATS_TEST_TMPDIR/b/logs/app.jsonl"
	cd "$BATS_TEST_TMPDIR"
	aistack-rotate a/logs/ b/logs/
	m="$AISTACK_STATE_DIR/metrics"
	run ls "$m"
	assert_equal "${#lines[@]}" 2
	real=$(realpath "$BATS_TEST_TMPDIR")
	fa=$(grep -l "target=\"$real/a/logs\"" "$m"/rotate-*.prom)
	fb=$(grep -l "target=\"$real/b/logs\"" "$m"/rotate-*.prom)
	[ -n "$fa" ] && [ -n "$fb" ] && [ "$fa" != "$fb" ]
	# each file is the path's tail, cleaned, and a hash of the whole
	[[ $fa == "$m"/rotate-*a_logs.[0-9a-f][0-9a-f][0-9a-f][0-9a-f]*.prom ]]
	grep -qx "aistack_rotate_files{target=\"$real/a/logs\",form=\"plain\"} 1" "$fa"
	grep -qx "aistack_rotate_files{target=\"$real/b/logs\",form=\"plain\"} 1" "$fb"
	run grep -c 'target=' "$fa"
	[ "$(grep -c "target=\"$real/a/logs\"" "$fa")" = "$output" ]
	promtool check metrics < "$fa"
	# the same operand by another path writes the same file
	aistack-rotate "$real/a/logs"
	run ls "$m"
	assert_equal "${#lines[@]}" 2
}

@test "settings come from flags, then the environment, then [rotate] in the configuration" {
	fill t 5
	touch -d '3 days ago' "$STREAMS/t/$SEG0"
	printf '[rotate]\ncompress_after = 2d\nseal_age = never\n' > "$AISTACK_CONFIG"
	run aistack-rotate -n t
	assert_output "compress t $SEG0 $(stat -c %s "$STREAMS/t/$SEG0")"
	AISTACK_ROTATE_COMPRESS_AFTER=4d run aistack-rotate -n t
	assert_output ''
	AISTACK_ROTATE_COMPRESS_AFTER=4d run aistack-rotate -n --compress-after 1d t
	assert_output "compress t $SEG0 $(stat -c %s "$STREAMS/t/$SEG0")"
	printf '[rotate]\nlock = sometimes\n' > "$AISTACK_CONFIG"
	run aistack-rotate -n t
	assert_failure 78
	assert_output "aistack-rotate: $AISTACK_CONFIG:2: invalid lock \"sometimes\""
}

@test "the command line: usage errors, --help, --version" {
	run aistack-rotate --lock none t
	assert_failure 64
	assert_line --index 0 'aistack-rotate: --lock: invalid value "none"'
	assert_line --index 1 --partial 'usage: aistack-rotate'
	run aistack-rotate --delete-after 3weeks t
	assert_failure 64
	run aistack-rotate --bogus
	assert_failure 64
	run aistack-rotate --help
	assert_success
	assert_line --index 0 --partial 'usage: aistack-rotate [-n] [-v] [--json]'
	run aistack-rotate --version
	assert_success
	assert_output --regexp '^aistack-rotate [0-9]+\.[0-9]+\.[0-9]+$'
	mkfifo "$BATS_TEST_TMPDIR/fifo"
	run aistack-rotate "$BATS_TEST_TMPDIR/fifo"
	assert_failure 64
}

@test "systemd units: a hardened oneshot service and a daily persistent timer" {
	svc="$TESTS_DIR/../systemd/aistack-rotate.service"
	tmr="$TESTS_DIR/../systemd/aistack-rotate.timer"
	for k in 'Type=oneshot' 'ExecStart=@BINDIR@/aistack-rotate' \
	    'StateDirectory=aistack' 'ProtectSystem=strict' \
	    'NoNewPrivileges=true' 'PrivateTmp=true'; do
		grep -qx "$k" "$svc"
	done
	# a run that hangs (a file system that stops answering) ends
	grep -q '^TimeoutStartSec=[1-9]' "$svc"
	grep -qx 'OnCalendar=\*-\*-\* 03:00:00' "$tmr"
	grep -qx 'Persistent=true' "$tmr"
	grep -q '^RandomizedDelaySec=' "$tmr"
	command -v systemd-analyze >/dev/null || return 0
	u="$BATS_TEST_TMPDIR/units"
	mkdir "$u"
	sed "s|@BINDIR@|$AISTACK_BIN|g" "$svc" > "$u/aistack-rotate.service"
	cp "$tmr" "$u/"
	run systemd-analyze verify --man=no "$u/aistack-rotate.service" "$u/aistack-rotate.timer"
	assert_success
	assert_output ''
}
