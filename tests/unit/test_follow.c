/* lib/stream/follow: whole lines, positions across restarts, rotation by rename
 * and by copytruncate, fingerprints, and the intent that makes a restart
 * after a crash neither lose nor duplicate a batch. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/fsutil.h"
#include "stream/copytrunc.h"
#include "stream/follow.h"
#include "stream/stream.h"
#include "unit.h"

static int
put(const char *path, const char *text, int append)
{
	int fd = open(path, O_WRONLY | O_CREAT | (append ? O_APPEND : O_TRUNC),
	    0644);

	if (fd == -1 || write_all(fd, text, strlen(text)) == -1)
		return -1;
	return close(fd);
}

/* Everything follow_read hands out now, committed, as a string. */
static char *
drain(struct follow *f, int *flags_seen)
{
	static char out[65536];
	char buf[4096];
	struct error e;
	size_t len = 0;
	ssize_t r;
	int flags;

	*flags_seen = 0;
	while ((r = follow_read(f, buf, sizeof(buf), &flags, &e)) > 0) {
		memcpy(out + len, buf, (size_t)r);
		len += (size_t)r;
		*flags_seen |= flags;
		if (!(flags & FOLLOW_LONG) &&
		    follow_commit(f, f->lines + 1, &e) == -1)
			return NULL;
	}
	if (r == -1)
		return NULL;
	out[len] = '\0';
	return out;
}

/* Drain, waiting out the quiet interval that finishes a rotated file (as
 * aistack-ingest waits: follow_wait). */
static char *
drain_wait(struct follow *f, int *flags_seen)
{
	static char all[65536];
	int i, fl;

	all[0] = '\0';
	*flags_seen = 0;
	for (i = 0; i < 12; i++) {
		char *d = drain(f, &fl);
		if (d == NULL)
			return NULL;
		strcat(all, d);
		*flags_seen |= fl;
		follow_wait(f, 100);	/* and a scan now and then */
	}
	return all;
}

static int
stream_mk(const char *name, struct stream *s)
{
	struct error e;

	return stream_open(s, name, 1, &e);
}

/* A stream t and a follower of app.jsonl that has read its first line,
 * {"a":1}: where most tests here begin. */
static int
started(struct stream *s, struct follow *f, struct error *e)
{
	const char *d;
	int flags;

	if (stream_mk("t", s) != 0 || put("app.jsonl", "{\"a\":1}\n", 0) != 0 ||
	    follow_open(f, s->dir, NULL, "app.jsonl", LOCK_KIND_FLOCK, e) != 0)
		return -1;
	d = drain(f, &flags);
	return d != NULL && strcmp(d, "{\"a\":1}\n") == 0 ? 0 : -1;
}

/* Close the follower and open it again: it must read nothing more. */
static int
restart_reads_nothing(struct follow *f, const struct stream *s,
    struct error *e)
{
	const char *d;
	int flags;

	follow_close(f);
	if (follow_open(f, s->dir, NULL, "app.jsonl", LOCK_KIND_FLOCK, e) != 0)
		return -1;
	d = drain_wait(f, &flags);
	return d != NULL && d[0] == '\0' ? 0 : -1;
}

TEST(follow_hands_out_whole_lines_only)
{
	struct stream s;
	struct follow f;
	struct error e;
	char buf[256];
	int flags;

	CHECK(stream_mk("t", &s) == 0);
	CHECK(put("app.jsonl", "{\"a\":1}\n{\"b\"", 0) == 0);
	CHECK(follow_open(&f, s.dir, NULL, "app.jsonl", LOCK_KIND_FLOCK, &e) == 0);
	CHECK_INT(follow_read(&f, buf, sizeof(buf), &flags, &e), 8);
	CHECK(memcmp(buf, "{\"a\":1}\n", 8) == 0);
	CHECK_INT(flags, 0);
	CHECK(follow_commit(&f, 1, &e) == 0);
	CHECK_INT(follow_read(&f, buf, sizeof(buf), &flags, &e), 0);
	CHECK(put("app.jsonl", ":2}\n", 1) == 0);
	CHECK_INT(follow_read(&f, buf, sizeof(buf), &flags, &e), 8);
	CHECK(memcmp(buf, "{\"b\":2}\n", 8) == 0);
	follow_close(&f);
	stream_close(&s);
}

TEST(follow_a_line_longer_than_the_buffer_comes_in_pieces)
{
	struct stream s;
	struct follow f;
	struct error e;
	char buf[8];
	int flags;

	CHECK(stream_mk("t", &s) == 0);
	CHECK(put("app.jsonl", "{\"long\":12345}\n", 0) == 0);
	CHECK(follow_open(&f, s.dir, NULL, "app.jsonl", LOCK_KIND_NONE, &e) == 0);
	CHECK_INT(follow_read(&f, buf, sizeof(buf), &flags, &e), 8);
	CHECK_INT(flags, FOLLOW_LONG);
	CHECK_INT(follow_read(&f, buf, sizeof(buf), &flags, &e), 7);
	CHECK_INT(flags, 0);
	CHECK(memcmp(buf, "12345}\n", 7) == 0);
	follow_close(&f);
	stream_close(&s);
}

TEST(follow_resumes_from_the_committed_position)
{
	struct stream s;
	struct follow f;
	struct error e;
	char buf[256];
	int flags;

	CHECK(stream_mk("t", &s) == 0);
	CHECK(put("app.jsonl", "{\"a\":1}\n{\"b\":2}\n", 0) == 0);
	CHECK(follow_open(&f, s.dir, NULL, "app.jsonl", LOCK_KIND_FLOCK, &e) == 0);
	CHECK_INT(follow_read(&f, buf, 8, &flags, &e), 8);
	CHECK(follow_commit(&f, 1, &e) == 0);
	/* handed out but not committed: read again after a restart */
	CHECK_INT(follow_read(&f, buf, sizeof(buf), &flags, &e), 8);
	follow_close(&f);
	CHECK(put("app.jsonl", "{\"c\":3}\n", 1) == 0);
	CHECK(follow_open(&f, s.dir, NULL, "./app.jsonl", LOCK_KIND_FLOCK,
	    &e) == 0);
	CHECK_U64(f.offset, 8);
	CHECK_U64(f.lines, 1);
	CHECK_INT(follow_read(&f, buf, sizeof(buf), &flags, &e), 16);
	CHECK(memcmp(buf, "{\"b\":2}\n{\"c\":3}\n", 16) == 0);
	follow_close(&f);
	stream_close(&s);
}

TEST(follow_finishes_a_renamed_file_before_the_new_one)
{
	struct stream s;
	struct follow f;
	struct error e;
	char *d;
	int flags;

	CHECK(started(&s, &f, &e) == 0);
	CHECK(rename("app.jsonl", "app.jsonl.1") == 0);
	CHECK(put("app.jsonl", "{\"new\":1}\n", 0) == 0);
	/* a late writer of the old file, and an unterminated last line */
	CHECK(put("app.jsonl.1", "{\"late\":1}\n{\"last\":1}", 1) == 0);
	d = drain_wait(&f, &flags);
	CHECK_STR(d, "{\"late\":1}\n{\"last\":1}{\"new\":1}\n");
	CHECK(flags & FOLLOW_FINAL);
	CHECK(f.draining == 0);
	follow_close(&f);
	stream_close(&s);
}

TEST(follow_after_a_restart_finishes_a_file_renamed_meanwhile)
{
	struct stream s;
	struct follow f;
	struct error e;
	char *d;
	int flags;

	CHECK(started(&s, &f, &e) == 0);
	follow_close(&f);
	CHECK(put("app.jsonl", "{\"b\":2}\n", 1) == 0);
	CHECK(rename("app.jsonl", "app.jsonl-20260101") == 0);
	CHECK(put("app.jsonl", "{\"c\":3}\n", 0) == 0);
	CHECK(follow_open(&f, s.dir, NULL, "app.jsonl", LOCK_KIND_FLOCK, &e) == 0);
	CHECK(f.draining == 1);
	d = drain_wait(&f, &flags);
	CHECK_STR(d, "{\"b\":2}\n{\"c\":3}\n");
	follow_close(&f);
	stream_close(&s);
}

TEST(follow_finishes_a_copytruncate_copy)
{
	char copy[256];
	uint64_t bytes;
	struct stream s;
	struct follow f;
	struct error e;
	char *d;
	int flags;

	CHECK(started(&s, &f, &e) == 0);
	/* written, rotated by copy and truncate, then written again */
	CHECK(put("app.jsonl", "{\"b\":2}\n", 1) == 0);
	CHECK_INT(copytrunc("./app.jsonl", LOCK_KIND_FLOCK, 1795737600, 0, copy,
	    sizeof(copy), &bytes, &e), 1);
	CHECK(put("app.jsonl", "{\"c\":3}\n", 1) == 0);
	d = drain_wait(&f, &flags);
	CHECK_STR(d, "{\"b\":2}\n{\"c\":3}\n");
	follow_close(&f);
	stream_close(&s);
}

TEST(follow_finishes_a_rename_copy_then_reads_the_new_file)
{
	char copy[256];
	uint64_t bytes;
	struct stream s;
	struct follow f;
	struct error e;
	char *d;
	int flags;

	CHECK(started(&s, &f, &e) == 0);
	/* written, rotated by rename (aistack-rotate --method rename), the
	 * new file written, and a late line into the copy */
	CHECK(put("app.jsonl", "{\"b\":2}\n", 1) == 0);
	CHECK_INT(rotrename_timed("./app.jsonl", LOCK_KIND_FLOCK, -1, 1795737600,
	    0, copy, sizeof(copy), &bytes, &e), 1);
	CHECK(put("app.jsonl", "{\"d\":4}\n", 1) == 0);
	CHECK(put(copy, "{\"c\":3}\n", 1) == 0);
	d = drain_wait(&f, &flags);
	CHECK_STR(d, "{\"b\":2}\n{\"c\":3}\n{\"d\":4}\n");
	follow_close(&f);
	stream_close(&s);
}

TEST(follow_holds_names_the_copies_a_follower_has_not_finished)
{
	char copy[256], copy2[256], streams[PATH_MAX];
	struct follow_hold *h;
	uint64_t bytes;
	struct stream s;
	struct follow f;
	struct error e;
	size_t n, i;
	char *d;
	int flags;

	CHECK(stream_mk("t", &s) == 0);
	path_dirname(s.dir, streams, sizeof(streams));
	/* no follower of this file: nothing held */
	CHECK(put("other.jsonl", "{\"o\":1}\n", 0) == 0);
	CHECK(follow_holds(streams, "./other.jsonl", &h, &n, &e) == 0);
	CHECK_INT((int)n, 0);
	free(h);
	CHECK(put("app.jsonl", "{\"a\":1}\n", 0) == 0);
	CHECK(follow_open(&f, s.dir, NULL, "app.jsonl", LOCK_KIND_FLOCK, &e) == 0);
	d = drain(&f, &flags);
	CHECK_STR(d, "{\"a\":1}\n");
	follow_close(&f);
	/* while it is away: a copy holding what it read and 8 bytes more,
	 * and a copy of lines it never saw */
	CHECK(put("app.jsonl", "{\"b\":2}\n", 1) == 0);
	CHECK_INT(copytrunc("./app.jsonl", LOCK_KIND_FLOCK, 1795737600, 0, copy,
	    sizeof(copy), &bytes, &e), 1);
	CHECK(put("app.jsonl", "{\"c\":33}\n", 1) == 0);
	CHECK_INT(copytrunc("./app.jsonl", LOCK_KIND_FLOCK, 1795737600, 0, copy2,
	    sizeof(copy2), &bytes, &e), 1);
	CHECK(follow_holds(streams, "app.jsonl", &h, &n, &e) == 0);
	CHECK_INT((int)n, 2);
	for (i = 0; i < n; i++) {
		CHECK_STR(h[i].stream, "t");
		if (strcmp(h[i].name, copy) == 0)
			CHECK_U64(h[i].unread, 8);
		else {
			CHECK_STR(h[i].name, copy2);
			CHECK_U64(h[i].unread, 9);
		}
	}
	free(h);
	/* read to the end and finished: nothing held but the live file */
	CHECK(follow_open(&f, s.dir, NULL, "app.jsonl", LOCK_KIND_FLOCK, &e) == 0);
	d = drain_wait(&f, &flags);
	CHECK_STR(d, "{\"b\":2}\n{\"c\":33}\n");
	follow_close(&f);
	CHECK(follow_holds(streams, "app.jsonl", &h, &n, &e) == 0);
	for (i = 0; i < n; i++)
		CHECK_STR(h[i].name, "app.jsonl");
	free(h);
	stream_close(&s);
}

TEST(follow_a_truncated_file_without_copy_is_read_from_its_start)
{
	struct stream s;
	struct follow f;
	struct error e;
	char *d;
	int flags;

	CHECK(stream_mk("t", &s) == 0);
	CHECK(put("app.jsonl", "{\"a\":1}\n{\"b\":2}\n", 0) == 0);
	CHECK(follow_open(&f, s.dir, NULL, "app.jsonl", LOCK_KIND_FLOCK, &e) == 0);
	d = drain(&f, &flags);
	CHECK_STR(d, "{\"a\":1}\n{\"b\":2}\n");
	/* truncated and refilled past the position: the fingerprint tells */
	CHECK(put("app.jsonl", "{\"x\":9}\n{\"y\":9}\n{\"z\":9}\n", 0) == 0);
	d = drain(&f, &flags);
	CHECK_STR(d, "{\"x\":9}\n{\"y\":9}\n{\"z\":9}\n");
	CHECK(strstr(f.note, "truncated") != NULL);
	CHECK_INT(f.warn, 0);
	follow_close(&f);
	stream_close(&s);
}

TEST(follow_a_new_file_with_the_old_inode_is_not_the_same_file)
{
	struct stream s;
	struct follow f;
	struct error e;
	struct stat st;
	char *d, *text;
	size_t n;
	int flags;

	CHECK(stream_mk("t", &s) == 0);
	CHECK(put("app.jsonl", "{\"old\":1}\n", 0) == 0);
	CHECK(follow_open(&f, s.dir, NULL, "app.jsonl", LOCK_KIND_FLOCK, &e) == 0);
	d = drain(&f, &flags);
	CHECK_STR(d, "{\"old\":1}\n");
	follow_close(&f);
	/* other content, longer, in the same inode while we were away */
	CHECK(put("app.jsonl", "{\"new\":1}\n{\"new\":2}\n", 0) == 0);
	CHECK(stat("app.jsonl", &st) == 0);
	CHECK_U64(st.st_ino, f.ino);
	CHECK(follow_open(&f, s.dir, NULL, "app.jsonl", LOCK_KIND_FLOCK, &e) == 0);
	CHECK_U64(f.offset, 0);
	d = drain(&f, &flags);
	CHECK_STR(d, "{\"new\":1}\n{\"new\":2}\n");
	CHECK(read_file(f.state, 65536, &text, &n) == 0);
	CHECK(strstr(text, "\"offset\":20,") != NULL);
	free(text);
	follow_close(&f);
	stream_close(&s);
}

static int
append(struct stream *s, const char *text)
{
	struct error e;
	int rc;

	if (stream_lock(s, &e) == -1)
		return -1;
	rc = stream_append(s, text, strlen(text), NULL, &e);
	stream_unlock(s);
	return rc;
}

/* Read a batch and record its intent, as aistack-ingest does. */
static int
batch(struct follow *f, const char *rec, const char *rej)
{
	struct follow_batch b;
	struct error e;
	char buf[256];
	int flags;

	if (follow_read(f, buf, sizeof(buf), &flags, &e) <= 0)
		return -1;
	b.lines = 2;
	b.records = rec;
	b.nrecords = strlen(rec);
	b.rejects = rej;
	b.nrejects = strlen(rej);
	return follow_intent(f, &b, &e);
}

TEST(follow_intent_a_batch_that_landed_is_committed_after_a_crash)
{
	struct stream s, r;
	struct follow f;
	struct error e;
	char buf[256];
	int flags;

	CHECK(stream_mk("t", &s) == 0);
	CHECK(stream_mk("t.rejects", &r) == 0);
	CHECK(append(&s, "{\"other\":1}\n") == 0);
	CHECK(put("app.jsonl", "{\"a\":1}\nbad\n", 0) == 0);
	CHECK(follow_open(&f, s.dir, r.dir, "app.jsonl", LOCK_KIND_FLOCK,
	    &e) == 0);
	CHECK(batch(&f, "{\"a\":1}\n", "{\"reject\":\"bad\"}\n") == 0);
	/* another writer gets in first, then our batch and its rejects */
	CHECK(append(&s, "{\"other\":2}\n") == 0);
	CHECK(append(&s, "{\"a\":1}\n") == 0);
	CHECK(append(&r, "{\"reject\":\"bad\"}\n") == 0);
	follow_close(&f);	/* died before the commit */
	CHECK(follow_open(&f, s.dir, r.dir, "app.jsonl", LOCK_KIND_FLOCK,
	    &e) == 0);
	CHECK_U64(f.offset, 12);
	CHECK_U64(f.lines, 2);
	CHECK_INT(follow_read(&f, buf, sizeof(buf), &flags, &e), 0);
	follow_close(&f);
	stream_close(&s);
	stream_close(&r);
}

TEST(follow_intent_a_batch_that_did_not_land_is_read_again)
{
	struct stream s, r;
	struct follow f;
	struct error e;
	char buf[256];
	int flags;

	CHECK(stream_mk("t", &s) == 0);
	CHECK(stream_mk("t.rejects", &r) == 0);
	CHECK(put("app.jsonl", "{\"a\":1}\nbad\n", 0) == 0);
	CHECK(follow_open(&f, s.dir, r.dir, "app.jsonl", LOCK_KIND_FLOCK,
	    &e) == 0);
	CHECK(batch(&f, "{\"a\":1}\n", "{\"reject\":\"bad\"}\n") == 0);
	/* only another writer's record, not the batch */
	CHECK(append(&s, "{\"a\":2}\n") == 0);
	follow_close(&f);
	CHECK(follow_open(&f, s.dir, r.dir, "app.jsonl", LOCK_KIND_FLOCK,
	    &e) == 0);
	CHECK_U64(f.offset, 0);
	CHECK_INT(follow_read(&f, buf, sizeof(buf), &flags, &e), 12);
	CHECK_INT(flags, 0);
	follow_close(&f);
	stream_close(&s);
	stream_close(&r);
}

TEST(follow_intent_records_in_but_rejects_not_replays_the_rejects_only)
{
	struct stream s, r;
	struct follow f;
	struct error e;
	char buf[256];
	int flags;

	CHECK(stream_mk("t", &s) == 0);
	CHECK(stream_mk("t.rejects", &r) == 0);
	CHECK(put("app.jsonl", "{\"a\":1}\nbad\n{\"b\":2}\n", 0) == 0);
	CHECK(follow_open(&f, s.dir, r.dir, "app.jsonl", LOCK_KIND_FLOCK,
	    &e) == 0);
	CHECK(follow_read(&f, buf, 12, &flags, &e) == 12);
	{
		struct follow_batch b = { 2, "{\"a\":1}\n", 8,
		    "{\"reject\":\"bad\"}\n", 17 };
		CHECK(follow_intent(&f, &b, &e) == 0);
	}
	CHECK(append(&s, "{\"a\":1}\n") == 0);
	follow_close(&f);	/* died before the rejects were written */
	CHECK(follow_open(&f, s.dir, r.dir, "app.jsonl", LOCK_KIND_FLOCK,
	    &e) == 0);
	CHECK_U64(f.offset, 0);
	CHECK_U64(f.replay_until, 12);
	CHECK_INT(follow_read(&f, buf, sizeof(buf), &flags, &e), 12);
	CHECK_INT(flags, FOLLOW_REPLAY);
	CHECK(follow_commit(&f, 2, &e) == 0);
	CHECK_INT(follow_read(&f, buf, sizeof(buf), &flags, &e), 8);
	CHECK_INT(flags, 0);
	follow_close(&f);
	stream_close(&s);
	stream_close(&r);
}

TEST(follow_state_path_is_per_file_and_safe)
{
	char a[4096], b[4096];
	struct error e;

	CHECK(follow_state_path("/s/streams/t", "/var/log/app.jsonl", a,
	    sizeof(a), &e) == 0);
	CHECK(follow_state_path("/s/streams/t", "/var/log2/app.jsonl", b,
	    sizeof(b), &e) == 0);
	CHECK(strncmp(a, "/s/streams/t/sources/app.jsonl.", 31) == 0);
	CHECK(strcmp(a, b) != 0);
	CHECK(follow_state_path("/s/streams/t", "/x/.a b\n", a, sizeof(a),
	    &e) == 0);
	CHECK(strncmp(a, "/s/streams/t/sources/_a_b_.", 27) == 0);
}

TEST(follow_chain_name_knows_rotated_siblings_and_no_others)
{
	int gz;

	CHECK(follow_chain_name("app.jsonl", "app.jsonl.1", &gz) && !gz);
	CHECK(follow_chain_name("app.jsonl", "app.jsonl.12.gz", &gz) && gz);
	CHECK(follow_chain_name("app.jsonl", "app.jsonl-20261202", &gz));
	CHECK(follow_chain_name("app.jsonl", "app.jsonl-2026120203.gz", &gz) &&
	    gz);
	CHECK(follow_chain_name("app.jsonl", "app.jsonl.20261202T081354Z",
	    &gz) && !gz);
	CHECK(!follow_chain_name("app.jsonl", "app.jsonl", &gz));
	CHECK(!follow_chain_name("app.jsonl", "app.jsonl.bak", &gz));
	CHECK(!follow_chain_name("app.jsonl", "app.jsonl.gz", &gz));
	CHECK(!follow_chain_name("app.jsonl", "app.jsonlx.1", &gz));
	CHECK(!follow_chain_name("app.jsonl", "app.jsonl-old", &gz));
	CHECK(!follow_chain_name("app.jsonl", "app.jsonl.1.swp", &gz));
}

TEST(follow_reads_renamed_copied_and_gzipped_siblings_once_in_order)
{
	char copy[256];
	uint64_t bytes;
	struct stream s;
	struct follow f;
	struct error e;
	char *d;
	int flags;

	CHECK(started(&s, &f, &e) == 0);
	follow_close(&f);
	/* while away: a copy (compressed), a rename, a new file */
	CHECK(put("app.jsonl", "{\"b\":2}\n", 1) == 0);
	CHECK_INT(copytrunc("./app.jsonl", LOCK_KIND_FLOCK, 1795737600, 0, copy,
	    sizeof(copy), &bytes, &e), 1);
	{
		char cmd[512];
		snprintf(cmd, sizeof(cmd), "gzip %s", copy);
		CHECK(system(cmd) == 0);
	}
	CHECK(put("app.jsonl", "{\"c\":3}\n", 1) == 0);
	CHECK(rename("app.jsonl", "app.jsonl.1") == 0);
	CHECK(put("app.jsonl", "{\"d\":4}\n", 0) == 0);
	CHECK(follow_open(&f, s.dir, NULL, "app.jsonl", LOCK_KIND_FLOCK, &e) == 0);
	d = drain_wait(&f, &flags);
	CHECK_STR(d, "{\"b\":2}\n{\"c\":3}\n{\"d\":4}\n");
	follow_close(&f);
	/* and nothing twice after another start */
	CHECK(follow_open(&f, s.dir, NULL, "app.jsonl", LOCK_KIND_FLOCK, &e) == 0);
	d = drain_wait(&f, &flags);
	CHECK_STR(d, "");
	follow_close(&f);
	stream_close(&s);
}

/* Replace path by a new file holding text, trying to make it get the inode
 * number old (freed just before; ext4 hands it out again at once). */
static int
put_reusing(const char *path, const char *text, uint64_t old)
{
	struct stat st;
	char tmp[64];
	int i;

	for (i = 0; i < 64; i++) {
		snprintf(tmp, sizeof(tmp), "reuse.%d", i);
		if (put(tmp, text, 0) == -1 || stat(tmp, &st) == -1)
			return -1;
		if ((uint64_t)st.st_ino == old)
			break;
	}
	if (i == 64)
		snprintf(tmp, sizeof(tmp), "reuse.0");
	if (rename(tmp, path) == -1)
		return -1;
	for (i = 0; i < 64; i++) {
		snprintf(tmp, sizeof(tmp), "reuse.%d", i);
		(void)unlink(tmp);
	}
	return 0;
}

TEST(follow_reused_inode_the_new_file_is_not_the_gzipped_old_one)
{
	struct stream s;
	struct follow f;
	struct error e;
	struct stat st;
	uint64_t ino;
	char *d;
	int flags;

	CHECK(started(&s, &f, &e) == 0);
	ino = f.ino;
	follow_close(&f);
	/* renamed and compressed (the inode freed), then a new file that
	 * takes the old inode number, longer than what was read */
	CHECK(put("app.jsonl", "{\"b\":2}\n", 1) == 0);
	CHECK(rename("app.jsonl", "app.jsonl.1") == 0);
	CHECK(system("gzip app.jsonl.1") == 0);
	CHECK(put_reusing("app.jsonl", "{\"new\":1}\n{\"new\":2}\n", ino) == 0);
	CHECK(stat("app.jsonl", &st) == 0);
	if ((uint64_t)st.st_ino != ino)
		fprintf(stderr, "# (the inode number was not reused here)\n");
	CHECK(follow_open(&f, s.dir, NULL, "app.jsonl", LOCK_KIND_FLOCK, &e) == 0);
	d = drain_wait(&f, &flags);
	CHECK_STR(d, "{\"b\":2}\n{\"new\":1}\n{\"new\":2}\n");
	follow_close(&f);
	stream_close(&s);
}

TEST(follow_a_new_sibling_not_a_rotation_of_ours_is_never_read)
{
	struct stream s;
	struct follow f;
	struct error e;
	char *d;
	int flags;

	CHECK(started(&s, &f, &e) == 0);
	/* another program's files, with rotation names, made just now, the
	 * followed file never rotated: while it runs ... */
	CHECK(put("app.jsonl.1", "{\"other\":1}\n", 0) == 0);
	CHECK(put("app.jsonl-20261202", "{\"other\":2}\n", 0) == 0);
	CHECK(put("app.jsonl.2", "{\"other\":3}\n", 0) == 0);
	CHECK(system("gzip app.jsonl.2") == 0);
	CHECK(put("app.jsonl", "{\"b\":2}\n", 1) == 0);
	d = drain_wait(&f, &flags);
	CHECK_STR(d, "{\"b\":2}\n");
	follow_close(&f);
	/* ... and while it is away */
	CHECK(put("app.jsonl.20261202T081354Z", "{\"other\":4}\n", 0) == 0);
	CHECK(put("app.jsonl", "{\"c\":3}\n", 1) == 0);
	CHECK(follow_open(&f, s.dir, NULL, "app.jsonl", LOCK_KIND_FLOCK, &e) == 0);
	d = drain_wait(&f, &flags);
	CHECK_STR(d, "{\"c\":3}\n");
	/* a real rotation after them is still read */
	CHECK(put("app.jsonl", "{\"d\":4}\n", 1) == 0);
	CHECK(rename("app.jsonl", "app.jsonl.3") == 0);
	CHECK(put("app.jsonl", "{\"e\":5}\n", 0) == 0);
	d = drain_wait(&f, &flags);
	CHECK_STR(d, "{\"d\":4}\n{\"e\":5}\n");
	follow_close(&f);
	stream_close(&s);
}

TEST(follow_a_gzipped_copy_resumes_at_its_uncompressed_offset)
{
	char copy[256], cmd[512];
	uint64_t bytes;
	struct stream s;
	struct follow f;
	struct error e;
	char buf[8], *d;
	int flags;

	CHECK(stream_mk("t", &s) == 0);
	CHECK(put("app.jsonl", "{\"a\":1}\n{\"b\":2}\n{\"c\":3}\n{\"d\":4}\n",
	    0) == 0);
	CHECK(follow_open(&f, s.dir, NULL, "app.jsonl", LOCK_KIND_FLOCK, &e) == 0);
	CHECK_INT(follow_read(&f, buf, sizeof(buf), &flags, &e), 8);
	CHECK(memcmp(buf, "{\"a\":1}\n", 8) == 0);
	CHECK(follow_commit(&f, 1, &e) == 0);
	follow_close(&f);
	/* copied, truncated and compressed while away */
	CHECK_INT(copytrunc("./app.jsonl", LOCK_KIND_FLOCK, 1795737600, 0, copy,
	    sizeof(copy), &bytes, &e), 1);
	snprintf(cmd, sizeof(cmd), "gzip %s", copy);
	CHECK(system(cmd) == 0);
	CHECK(put("app.jsonl", "{\"e\":5}\n", 1) == 0);
	/* one line from the gzip form, then away again */
	CHECK(follow_open(&f, s.dir, NULL, "app.jsonl", LOCK_KIND_FLOCK, &e) == 0);
	CHECK_INT(follow_read(&f, buf, sizeof(buf), &flags, &e), 8);
	CHECK(memcmp(buf, "{\"b\":2}\n", 8) == 0);
	CHECK(follow_commit(&f, 2, &e) == 0);
	follow_close(&f);
	CHECK(follow_open(&f, s.dir, NULL, "app.jsonl", LOCK_KIND_FLOCK, &e) == 0);
	CHECK_U64(f.offset, 16);
	d = drain_wait(&f, &flags);
	CHECK_STR(d, "{\"c\":3}\n{\"d\":4}\n{\"e\":5}\n");
	CHECK(restart_reads_nothing(&f, &s, &e) == 0);
	follow_close(&f);
	stream_close(&s);
}

TEST(follow_late_writes_to_a_finished_renamed_file_are_read)
{
	struct stream s;
	struct follow f;
	struct error e;
	char *d;
	int flags;

	CHECK(started(&s, &f, &e) == 0);
	CHECK(rename("app.jsonl", "app.jsonl.1") == 0);
	CHECK(put("app.jsonl", "{\"new\":1}\n", 0) == 0);
	d = drain_wait(&f, &flags);
	CHECK_STR(d, "{\"new\":1}\n");
	CHECK(f.files[0].done);
	/* a writer that still has the old file open writes long after */
	CHECK(put("app.jsonl.1", "{\"late\":1}\n", 1) == 0);
	d = drain_wait(&f, &flags);
	CHECK_STR(d, "{\"late\":1}\n");
	follow_close(&f);
	/* and after a restart */
	CHECK(put("app.jsonl.1", "{\"late\":2}\n", 1) == 0);
	CHECK(put("app.jsonl", "{\"new\":2}\n", 1) == 0);
	CHECK(follow_open(&f, s.dir, NULL, "app.jsonl", LOCK_KIND_FLOCK, &e) == 0);
	d = drain_wait(&f, &flags);
	CHECK_STR(d, "{\"late\":2}\n{\"new\":2}\n");
	follow_close(&f);
	stream_close(&s);
}

TEST(follow_a_truncated_file_and_its_copy_are_each_read_once)
{
	struct stream s;
	struct follow f;
	struct error e;
	char *d;
	int flags;

	CHECK(started(&s, &f, &e) == 0);
	/* logrotate's copytruncate: cp, then truncate in place; then a new
	 * line shorter than what was read */
	CHECK(put("app.jsonl", "{\"b\":2}\n", 1) == 0);
	CHECK(system("cp app.jsonl app.jsonl.1 && : > app.jsonl") == 0);
	CHECK(put("app.jsonl", "{\"c\":3}\n", 1) == 0);
	d = drain_wait(&f, &flags);
	CHECK_STR(d, "{\"b\":2}\n{\"c\":3}\n");
	CHECK(restart_reads_nothing(&f, &s, &e) == 0);
	follow_close(&f);
	stream_close(&s);
}

TEST(follow_a_copy_shorter_than_what_was_read_is_not_read_again)
{
	char a[512], ab[600];
	struct stream s;
	struct follow f;
	struct error e;
	char *d;
	int flags;

	/* a first line longer than the fingerprint */
	snprintf(a, sizeof(a), "{\"a\":\"%0300d\"}\n", 1);
	snprintf(ab, sizeof(ab), "%s{\"b\":2}\n", a);
	CHECK(stream_mk("t", &s) == 0);
	CHECK(put("app.jsonl", ab, 0) == 0);
	CHECK(follow_open(&f, s.dir, NULL, "app.jsonl", LOCK_KIND_FLOCK, &e) == 0);
	d = drain(&f, &flags);
	CHECK_STR(d, ab);
	/* logrotate's copytruncate, no lock: cp copied the file before b
	 * was appended (and read), then the file is truncated */
	CHECK(put("app.jsonl.1", a, 0) == 0);
	CHECK(put("app.jsonl", "{\"c\":3}\n", 0) == 0);
	d = drain_wait(&f, &flags);
	CHECK_STR(d, "{\"c\":3}\n");
	/* renamed on by the next rotation, and compressed: still not new */
	CHECK(rename("app.jsonl.1", "app.jsonl.2") == 0);
	CHECK(system("gzip app.jsonl.2") == 0);
	CHECK(put("app.jsonl", "{\"d\":4}\n", 1) == 0);
	d = drain_wait(&f, &flags);
	CHECK_STR(d, "{\"d\":4}\n");
	CHECK(restart_reads_nothing(&f, &s, &e) == 0);
	follow_close(&f);
	stream_close(&s);
}

TEST(follow_holds_a_finished_file_written_to_later)
{
	struct follow_hold *hv;
	char streams[4096];
	struct stream s;
	struct follow f;
	struct error e;
	size_t hn, i;
	char *d;
	int flags, held = 0;

	CHECK(stream_mk("t", &s) == 0);
	CHECK(put("app.jsonl", "{\"a\":1}\n", 0) == 0);
	CHECK(follow_open(&f, s.dir, NULL, "app.jsonl", LOCK_KIND_FLOCK, &e) == 0);
	d = drain(&f, &flags);
	CHECK(rename("app.jsonl", "app.jsonl.1") == 0);
	CHECK(put("app.jsonl", "{\"new\":1}\n", 0) == 0);
	d = drain_wait(&f, &flags);
	CHECK_STR(d, "{\"new\":1}\n");
	CHECK(f.files[0].done);
	follow_close(&f);
	snprintf(streams, sizeof(streams), "%s/streams", unit_tmpdir());
	CHECK(follow_holds(streams, "app.jsonl", &hv, &hn, &e) == 0);
	for (i = 0; i < hn; i++)
		held |= strcmp(hv[i].name, "app.jsonl.1") == 0;
	free(hv);
	CHECK(!held);		/* finished: rotation may expire it */
	/* a late line: it is read at the next scan, so it is held */
	CHECK(put("app.jsonl.1", "{\"late\":1}\n", 1) == 0);
	CHECK(follow_holds(streams, "app.jsonl", &hv, &hn, &e) == 0);
	for (i = 0; i < hn; i++)
		if (strcmp(hv[i].name, "app.jsonl.1") == 0) {
			held = 1;
			CHECK_U64(hv[i].unread, 11);
		}
	free(hv);
	CHECK(held);
	stream_close(&s);
}

TEST(follow_an_empty_file_open_then_renamed_and_gzipped_is_read_once)
{
	struct stream s;
	struct follow f;
	struct error e;
	char buf[256], *d;
	int flags;

	CHECK(stream_mk("t", &s) == 0);
	CHECK(put("app.jsonl", "", 0) == 0);
	CHECK(follow_open(&f, s.dir, NULL, "app.jsonl", LOCK_KIND_FLOCK, &e) == 0);
	CHECK_INT(follow_read(&f, buf, sizeof(buf), &flags, &e), 0);
	CHECK(f.fd != -1);
	/* stopped while its writer writes, the file is renamed and the
	 * copy compressed: the open file is only known by its inode */
	CHECK(put("app.jsonl", "{\"a\":1}\n{\"b\":2}\n", 1) == 0);
	CHECK(rename("app.jsonl", "app.jsonl.1") == 0);
	CHECK(put("app.jsonl", "{\"c\":3}\n", 0) == 0);
	CHECK(system("gzip app.jsonl.1") == 0);
	f.rescan = 1;		/* as inotify has it */
	d = drain_wait(&f, &flags);
	CHECK_STR(d, "{\"a\":1}\n{\"b\":2}\n{\"c\":3}\n");
	follow_close(&f);
	stream_close(&s);
}

TEST(follow_a_gzip_snapshot_of_a_file_still_written_is_not_new)
{
	char a[512], cmd[256];
	struct stream s;
	struct follow f;
	struct error e;
	size_t ab;
	char *d;
	int flags, wfd;

	snprintf(a, sizeof(a), "{\"a\":\"%0300d\"}\n", 1);
	CHECK(stream_mk("t", &s) == 0);
	CHECK(put("app.jsonl", a, 0) == 0);
	CHECK(follow_open(&f, s.dir, NULL, "app.jsonl", LOCK_KIND_FLOCK, &e) == 0);
	d = drain(&f, &flags);
	CHECK_STR(d, a);
	/* renamed; its writer never reopens and goes on writing into it */
	CHECK(rename("app.jsonl", "app.jsonl.1") == 0);
	CHECK(put("app.jsonl", "", 0) == 0);
	CHECK((wfd = open("app.jsonl.1", O_WRONLY | O_APPEND)) != -1);
	CHECK(write_all(wfd, "{\"b\":2}\n", 8) == 8);
	d = drain(&f, &flags);
	CHECK_STR(d, "{\"b\":2}\n");
	ab = strlen(a) + 8;
	CHECK(write_all(wfd, "{\"c\":3}\n", 8) == 8);
	d = drain(&f, &flags);
	CHECK_STR(d, "{\"c\":3}\n");
	/* compressed as it was a moment ago, the plain form removed, and
	 * written to again */
	snprintf(cmd, sizeof(cmd), "head -c %zu app.jsonl.1 | gzip > "
	    "app.jsonl.1.gz && rm app.jsonl.1", ab);
	CHECK(system(cmd) == 0);
	CHECK(write_all(wfd, "{\"d\":4}\n", 8) == 8);
	close(wfd);
	f.rescan = 1;
	d = drain_wait(&f, &flags);
	CHECK_STR(d, "{\"d\":4}\n");
	CHECK(restart_reads_nothing(&f, &s, &e) == 0);
	follow_close(&f);
	stream_close(&s);
}

TEST(follow_a_file_queued_empty_then_rotated_and_gzipped_unread_is_not_lost)
{
	struct stream s;
	struct follow f;
	struct error e;
	char *d;
	int flags;

	CHECK(started(&s, &f, &e) == 0);
	/* renamed, a new empty file at the path, seen by a scan while the
	 * follower still finishes the old one (it is paused, say) */
	CHECK(put("app.jsonl", "{\"b\":2}\n", 1) == 0);
	CHECK(rename("app.jsonl", "app.jsonl.1") == 0);
	CHECK(put("app.jsonl", "", 0) == 0);
	CHECK(follow_scan(&f, &e) == 0);
	/* written to, seen again, then rotated and compressed unread */
	CHECK(put("app.jsonl", "{\"c\":3}\n", 1) == 0);
	CHECK(follow_scan(&f, &e) == 0);
	CHECK(rename("app.jsonl", "app.jsonl.2") == 0);
	CHECK(put("app.jsonl", "", 0) == 0);
	CHECK(follow_scan(&f, &e) == 0);	/* seen under its copy name */
	CHECK(system("gzip app.jsonl.2") == 0);
	d = drain_wait(&f, &flags);
	CHECK_STR(d, "{\"b\":2}\n{\"c\":3}\n");
	CHECK_INT((int)f.nlosses, 0);
	CHECK(restart_reads_nothing(&f, &s, &e) == 0);
	follow_close(&f);
	stream_close(&s);
}

/* started, then {"b":2} written, renamed to app.jsonl.1 and a new empty
 * app.jsonl seen by a scan: an entry known by its inode alone, queued
 * while the follower still finishes the old file (paused, say). */
static int
queued_empty(struct stream *s, struct follow *f, struct error *e)
{
	if (started(s, f, e) != 0 || put("app.jsonl", "{\"b\":2}\n", 1) != 0 ||
	    rename("app.jsonl", "app.jsonl.1") != 0 ||
	    put("app.jsonl", "", 0) != 0)
		return -1;
	return follow_scan(f, e);
}

TEST(follow_a_file_queued_empty_seen_written_then_renamed_and_gzipped_unseen_is_not_lost)
{
	struct stream s;
	struct follow f;
	struct error e;
	char *d;
	int flags;

	CHECK(queued_empty(&s, &f, &e) == 0);
	CHECK(put("app.jsonl", "{\"c\":3}\n", 1) == 0);
	CHECK(follow_scan(&f, &e) == 0);	/* seen written, at its path */
	/* renamed and compressed with no scan between (the follower
	 * stopped, or its scans far apart) */
	CHECK(rename("app.jsonl", "app.jsonl.2") == 0);
	CHECK(put("app.jsonl", "{\"d\":4}\n", 0) == 0);
	CHECK(system("gzip app.jsonl.2") == 0);
	d = drain_wait(&f, &flags);
	CHECK_STR(d, "{\"b\":2}\n{\"c\":3}\n{\"d\":4}\n");
	CHECK_INT((int)f.nlosses, 0);
	CHECK(restart_reads_nothing(&f, &s, &e) == 0);
	follow_close(&f);
	stream_close(&s);
}

TEST(follow_a_file_queued_empty_then_copytruncated_unseen_its_copy_joins)
{
	struct stream s;
	struct follow f;
	struct error e;
	char *d;
	int flags;

	CHECK(queued_empty(&s, &f, &e) == 0);
	/* written, copied and truncated, written again, all unseen: the
	 * first scan to see the file at the path again sees other bytes
	 * than the copy's, and must not take them for what was there */
	CHECK(put("app.jsonl", "{\"c\":3}\n", 1) == 0);
	CHECK(system("cp -p app.jsonl app.jsonl.2") == 0);
	CHECK(truncate("app.jsonl", 0) == 0);
	CHECK(put("app.jsonl", "{\"d\":4}\n", 1) == 0);
	CHECK(follow_scan(&f, &e) == 0);
	d = drain_wait(&f, &flags);
	CHECK_STR(d, "{\"b\":2}\n{\"c\":3}\n{\"d\":4}\n");
	CHECK_INT((int)f.nlosses, 0);
	CHECK(restart_reads_nothing(&f, &s, &e) == 0);
	follow_close(&f);
	stream_close(&s);
}

TEST(follow_a_file_queued_empty_seen_while_copied_before_its_truncation_is_not_lost)
{
	struct stream s;
	struct follow f;
	struct error e;
	char *d;
	int flags;

	CHECK(queued_empty(&s, &f, &e) == 0);
	CHECK(put("app.jsonl", "{\"c\":3}\n", 1) == 0);
	/* a scan between copytruncate's copy and its truncation: the copy
	 * and the file at the path start alike */
	CHECK(system("cp -p app.jsonl app.jsonl.2") == 0);
	CHECK(follow_scan(&f, &e) == 0);
	CHECK(truncate("app.jsonl", 0) == 0);
	CHECK(put("app.jsonl", "{\"d\":4}\n", 1) == 0);
	d = drain_wait(&f, &flags);
	CHECK_STR(d, "{\"b\":2}\n{\"c\":3}\n{\"d\":4}\n");
	CHECK_INT((int)f.nlosses, 0);
	CHECK(restart_reads_nothing(&f, &s, &e) == 0);
	follow_close(&f);
	stream_close(&s);
}

TEST(follow_a_file_queued_empty_seen_linked_to_its_copy_is_read_once)
{
	struct stream s;
	struct follow f;
	struct error e;
	char *d;
	int flags;

	CHECK(queued_empty(&s, &f, &e) == 0);
	CHECK(put("app.jsonl", "{\"c\":3}\n", 1) == 0);
	/* aistack-rotate --method rename links the file to its copy name,
	 * then renames a new file over the path: a scan between sees one
	 * file under two names */
	CHECK(link("app.jsonl", "app.jsonl.2") == 0);
	CHECK(follow_scan(&f, &e) == 0);
	CHECK(put("app.jsonl.new", "{\"d\":4}\n", 0) == 0);
	CHECK(rename("app.jsonl.new", "app.jsonl") == 0);
	/* and one scan sees the copy's plain and gzip forms together */
	CHECK(system("gzip -k app.jsonl.2") == 0);
	CHECK(follow_scan(&f, &e) == 0);
	CHECK(unlink("app.jsonl.2") == 0);
	d = drain_wait(&f, &flags);
	CHECK_STR(d, "{\"b\":2}\n{\"c\":3}\n{\"d\":4}\n");
	CHECK_INT((int)f.nlosses, 0);
	CHECK(restart_reads_nothing(&f, &s, &e) == 0);
	follow_close(&f);
	stream_close(&s);
}
