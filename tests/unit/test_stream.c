/* The stream store: appends, torn-tail repair, sealing, head, backlog. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/exitcode.h"
#include "base/fsutil.h"
#include "base/statedir.h"
#include "stream/consumer.h"
#include "stream/reader.h"
#include "stream/stream.h"
#include "unit.h"

static int
append(struct stream *s, const char *text)
{
	struct error e;
	int rc;

	if (stream_lock(s, &e) == -1)
		return -1;
	rc = stream_append(s, text, strlen(text), NULL, &e);
	if (rc == 0)
		rc = stream_sync(s, &e);
	stream_unlock(s);
	return rc;
}

static char *
slurp(const char *path)
{
	char *d;
	size_t n;

	return read_file(path, 1 << 20, &d, &n) == 0 ? d : NULL;
}

TEST(stream_first_append_creates_segment_zero)
{
	struct stream s;
	struct error e;
	char *d;

	CHECK(stream_open(&s, "t", 1, &e) == 0);
	CHECK(append(&s, "{\"a\":1}\n") == 0);
	CHECK(append(&s, "{\"b\":2}\n") == 0);
	d = slurp("streams/t/00000000000000000000.jsonl");
	CHECK_STR(d, "{\"a\":1}\n{\"b\":2}\n");
	free(d);
	stream_close(&s);
}

TEST(stream_missing_without_create_is_noinput)
{
	struct stream s;
	struct error e;

	CHECK(stream_open(&s, "nope", 0, &e) == -1);
	CHECK_INT(e.code, EXIT_NOINPUT);
}

TEST(stream_repairs_torn_tail_under_lock)
{
	struct stream s, w;
	struct error e;
	uint64_t head;
	char *d;
	int fd;

	CHECK(stream_open(&s, "t", 1, &e) == 0);
	CHECK(append(&s, "{\"a\":1}\n") == 0);
	/* another writer dies mid-record */
	fd = open("streams/t/00000000000000000000.jsonl", O_WRONLY | O_APPEND);
	CHECK(write(fd, "{\"torn", 6) == 6);
	close(fd);
	CHECK(stream_head("streams/t", &head, NULL, &e) == 0);
	CHECK_U64(head, 8);
	CHECK(stream_open(&w, "t", 1, &e) == 0);
	CHECK(append(&w, "{\"b\":2}\n") == 0);
	d = slurp("streams/t/00000000000000000000.jsonl");
	CHECK_STR(d, "{\"a\":1}\n{\"b\":2}\n");
	free(d);
	/* the first writer notices the file changed under it */
	CHECK(append(&s, "{\"c\":3}\n") == 0);
	d = slurp("streams/t/00000000000000000000.jsonl");
	CHECK_STR(d, "{\"a\":1}\n{\"b\":2}\n{\"c\":3}\n");
	free(d);
	stream_close(&s);
	stream_close(&w);
}

TEST(stream_seal_creates_successor_at_head)
{
	struct stream s, other;
	struct error e;
	struct segment_list l;
	uint64_t base, size, head, first;
	struct stat st;

	CHECK(stream_open(&s, "t", 1, &e) == 0);
	CHECK(stream_open(&other, "t", 1, &e) == 0);
	CHECK(append(&other, "{\"a\":1}\n") == 0);	/* other holds the fd */
	CHECK(stream_lock(&s, &e) == 0);
	CHECK_INT(stream_seal(&s, &base, &size, &e), 1);
	stream_unlock(&s);
	CHECK_U64(base, 0);
	CHECK_U64(size, 8);
	CHECK(stat("streams/t/00000000000000000000.jsonl", &st) == 0);
	CHECK((st.st_mode & 0222) == 0);
	CHECK(append(&other, "{\"b\":2}\n") == 0);	/* goes to the successor */
	CHECK(segments_list("streams/t", &l, &e) == 0);
	CHECK_INT(l.n, 2);
	CHECK_U64(l.v[1].base, 8);
	segments_free(&l);
	CHECK(stream_head("streams/t", &head, &first, &e) == 0);
	CHECK_U64(head, 16);
	CHECK_U64(first, 0);
	/* sealing an empty active segment does nothing */
	CHECK(stream_lock(&s, &e) == 0);
	CHECK_INT(stream_seal(&s, NULL, NULL, &e), 1);
	CHECK_INT(stream_seal(&s, NULL, NULL, &e), 0);
	stream_unlock(&s);
	stream_close(&s);
	stream_close(&other);
}

TEST(stream_finishes_a_half_done_seal)
{
	struct stream s;
	struct error e;
	struct segment_list l;

	CHECK(stream_open(&s, "t", 1, &e) == 0);
	CHECK(append(&s, "{\"a\":1}\n") == 0);
	stream_close(&s);
	/* a sealer died after chmod, before creating the successor */
	CHECK(chmod("streams/t/00000000000000000000.jsonl", 0444) == 0);
	CHECK(stream_open(&s, "t", 1, &e) == 0);
	CHECK(append(&s, "{\"b\":2}\n") == 0);
	CHECK(segments_list("streams/t", &l, &e) == 0);
	CHECK_INT(l.n, 2);
	CHECK_U64(l.v[1].base, 8);
	segments_free(&l);
	stream_close(&s);
}

TEST(stream_segments_list_prefers_plain_and_ignores_others)
{
	struct segment_list l;
	struct error e;

	mkdir_p("d", 0700);
	close(open("d/00000000000000000000.jsonl", O_CREAT | O_WRONLY, 0644));
	close(open("d/00000000000000000000.jsonl.gz", O_CREAT | O_WRONLY, 0644));
	close(open("d/00000000000000000100.jsonl.gz", O_CREAT | O_WRONLY, 0644));
	close(open("d/00000000000000000200.jsonl", O_CREAT | O_WRONLY, 0644));
	close(open("d/0000000000000000020.jsonl", O_CREAT | O_WRONLY, 0644));
	close(open("d/.00000000000000000300.jsonl.gz.tmp", O_CREAT | O_WRONLY, 0644));
	close(open("d/lock", O_CREAT | O_WRONLY, 0644));
	CHECK(segments_list("d", &l, &e) == 0);
	CHECK_INT(l.n, 3);
	CHECK(l.v[0].base == 0 && !l.v[0].gz);
	CHECK(l.v[1].base == 100 && l.v[1].gz);
	CHECK(l.v[2].base == 200 && !l.v[2].gz);
	segments_free(&l);
}

TEST(stream_backlog_is_head_minus_slowest_consumer)
{
	struct stream s;
	struct error e;
	struct consumer_state c = { 0 };
	uint64_t head, backlog, low;

	CHECK(stream_open(&s, "t", 1, &e) == 0);
	CHECK(append(&s, "{\"a\":1}\n{\"b\":2}\n{\"c\":3}\n") == 0);
	CHECK(consumer_backlog(s.dir, &head, &backlog, &low, &e) == 0);
	CHECK_U64(head, 24);
	CHECK_U64(backlog, 0);
	c.committed = c.pending = 8;
	CHECK(consumer_save(s.dir, "slow", &c, &e) == 0);
	c.committed = c.pending = 16;
	CHECK(consumer_save(s.dir, "fast", &c, &e) == 0);
	CHECK(consumer_backlog(s.dir, &head, &backlog, &low, &e) == 0);
	CHECK_U64(backlog, 16);
	CHECK_U64(low, 8);
	CHECK(consumer_remove(s.dir, "slow", &e) == 0);
	CHECK(consumer_backlog(s.dir, &head, &backlog, &low, &e) == 0);
	CHECK_U64(backlog, 8);
	stream_close(&s);
}

TEST(consumer_files_round_trip_and_reject_garbage)
{
	struct consumer_state c = { 5, 9, 2, "", 0 }, d;
	struct error e;
	char **names;
	size_t n;

	mkdir_p("s", 0700);
	CHECK(consumer_save("s", "learning", &c, &e) == 0);
	CHECK_INT(consumer_load("s", "learning", &d, &e), 0);
	CHECK_U64(d.committed, 5);
	CHECK_U64(d.pending, 9);
	CHECK_U64(d.records, 2);
	CHECK(strlen(d.updated) == 20);
	CHECK_INT(consumer_load("s", "other", &d, &e), 1);
	CHECK_INT(consumer_load("s", "Bad/Name", &d, &e), -1);
	CHECK_INT(e.code, EXIT_USAGE);
	CHECK(consumer_parse("{\"committed\":9,\"pending\":5,\"records\":0}", 39,
	    &d, &e) == -1);
	CHECK(consumer_parse("{\"committed\":-1,\"pending\":5,\"records\":0}", 40,
	    &d, &e) == -1);
	CHECK(consumer_parse("", 0, &d, &e) == -1);
	CHECK(consumer_list("s", &names, &n, &e) == 0);
	CHECK_INT(n, 1);
	CHECK_STR(names[0], "learning");
	names_free(names, n);
}

TEST(reader_reads_all_records_and_waits_at_torn_tail)
{
	struct stream s;
	struct error e;
	struct reader *r;
	const char *d;
	size_t len, nrec;
	int fd;

	CHECK(stream_open(&s, "t", 1, &e) == 0);
	CHECK(append(&s, "{\"a\":1}\n{\"b\":2}\n") == 0);
	CHECK(stream_lock(&s, &e) == 0);
	CHECK(stream_seal(&s, NULL, NULL, &e) == 1);
	stream_unlock(&s);
	CHECK(append(&s, "{\"c\":3}\n") == 0);
	fd = open("streams/t/00000000000000000016.jsonl", O_WRONLY | O_APPEND);
	CHECK(write(fd, "{\"d\"", 4) == 4);
	CHECK(reader_open(&r, s.dir, 8, NULL, &e) == 0);
	CHECK_INT(reader_next(r, 0, &d, &len, &nrec, &e), 1);
	CHECK_INT(nrec, 2);	/* across the sealed and the active segment */
	CHECK(len == 16 && memcmp(d, "{\"b\":2}\n{\"c\":3}\n", 16) == 0);
	CHECK_INT(reader_next(r, 0, &d, &len, &nrec, &e), 0);
	CHECK(write(fd, ":4}\n", 4) == 4);
	CHECK_INT(reader_next(r, 0, &d, &len, &nrec, &e), 1);
	CHECK(len == 8 && memcmp(d, "{\"d\":4}\n", 8) == 0);
	CHECK_U64(reader_offset(r), 32);
	close(fd);
	reader_free(r);
	stream_close(&s);
}
