/* Unit tests of lib/stream/reader.c: reading a stream made of hand-built segments. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "base/buf.h"
#include "base/exitcode.h"
#include "stream/reader.h"
#include "stream/stream.h"
#include "unit.h"

#define DIR_ "s"

/* Write a segment file of the stream directory DIR_ (mode: 0444 sealed). */
static int
put_segment(uint64_t base, const char *data, size_t n, int gz, mode_t mode)
{
	char name[64], path[128];
	int fd;

	mkdir(DIR_, 0700);
	segment_name(name, sizeof(name), base, gz);
	snprintf(path, sizeof(path), "%s/%s", DIR_, name);
	if (gz) {
		gzFile g = gzopen(path, "wb");
		if (g == NULL || (n > 0 && gzwrite(g, data, (unsigned)n) !=
		    (int)n) || gzclose(g) != Z_OK)
			return -1;
		return chmod(path, mode);
	}
	if ((fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644)) == -1)
		return -1;
	if (write(fd, data, n) != (ssize_t)n) {
		close(fd);
		return -1;
	}
	close(fd);
	return chmod(path, mode);
}

/* Append bytes to the plain segment at base. */
static int
append_segment(uint64_t base, const char *data, size_t n)
{
	char name[64], path[128];
	int fd;

	segment_name(name, sizeof(name), base, 0);
	snprintf(path, sizeof(path), "%s/%s", DIR_, name);
	if ((fd = open(path, O_WRONLY | O_APPEND)) == -1)
		return -1;
	if (write(fd, data, n) != (ssize_t)n) {
		close(fd);
		return -1;
	}
	return close(fd);
}

/* n records "{"i":K,"pad":"xx..."}\n" for K in [from, from+n), into b. */
static void
records(struct buf *b, int from, int n)
{
	int i;

	for (i = from; i < from + n; i++)
		buf_printf(b, "{\"i\":%d,\"pad\":\"%.*s\"}\n", i, i % 37,
		    "abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyz");
}

/*
 * Read everything available from offset into out (until reader_next
 * says 0).  Returns reader_next's last result (0, or -1), and the
 * record count in *nrec.
 */
static int
drain(struct reader *r, size_t max, struct buf *out, size_t *total,
    struct error *e)
{
	const char *d;
	size_t len, n;
	int rc;

	*total = 0;
	while ((rc = reader_next(r, max, &d, &len, &n, e)) == 1) {
		if (len == 0 || n == 0 || d[len - 1] != '\n' ||
		    (max != 0 && n > max))
			return -2;
		buf_append(out, d, len);
		*total += n;
	}
	return rc;
}

static size_t
count_nl(const char *p, size_t n)
{
	size_t c = 0;

	while (n-- > 0)
		if (*p++ == '\n')
			c++;
	return c;
}

/*
 * The three-segment stream used below: a sealed plain segment, a sealed
 * compressed one and the active one with a torn tail.  all gets the
 * stream's whole bytes (without the torn tail).
 */
static int
three_segments(struct buf *all, uint64_t *b1, uint64_t *b2)
{
	struct buf a = BUF_INIT, g = BUF_INIT, c = BUF_INIT;
	int rc = 0;

	records(&a, 0, 500);
	records(&g, 500, 40000);	/* > 1 MiB: several buffer fills */
	records(&c, 40500, 300);
	*b1 = a.len;
	*b2 = a.len + g.len;
	rc |= put_segment(0, a.data, a.len, 0, 0444);
	rc |= put_segment(*b1, g.data, g.len, 1, 0444);
	rc |= put_segment(*b2, c.data, c.len, 0, 0644);
	rc |= append_segment(*b2, "{\"torn\":", 8);
	buf_append(all, a.data, a.len);
	buf_append(all, g.data, g.len);
	buf_append(all, c.data, c.len);
	buf_release(&a);
	buf_release(&g);
	buf_release(&c);
	return rc;
}

TEST(reader_plain_gz_active_exact_bytes)
{
	struct buf all = BUF_INIT, out = BUF_INIT;
	struct reader *r;
	struct error e;
	uint64_t b1, b2, lost = 99;
	size_t n;

	CHECK(three_segments(&all, &b1, &b2) == 0);
	CHECK_INT(reader_open(&r, DIR_, 0, &lost, &e), 0);
	CHECK_U64(lost, 0);
	CHECK_INT(drain(r, 0, &out, &n, &e), 0);
	CHECK_U64(out.len, all.len);
	CHECK(memcmp(out.data, all.data, all.len) == 0);
	CHECK_U64(n, 40800);
	CHECK_U64(reader_offset(r), all.len);
	reader_free(r);
	buf_release(&all);
	buf_release(&out);
}

TEST(reader_offsets_inside_segments)
{
	struct buf all = BUF_INIT, out = BUF_INIT;
	struct reader *r;
	struct error e;
	uint64_t b1, b2, off;
	size_t n, step = 0;
	const char *p;

	CHECK(three_segments(&all, &b1, &b2) == 0);
	/* every 997th record boundary, plus the segment bases and head */
	for (p = all.data; p <= all.data + all.len; step++) {
		off = (uint64_t)(p - all.data);
		if (step % 997 == 0 || off == b1 || off == b2 ||
		    off == all.len) {
			out.len = 0;
			CHECK_INT(reader_open(&r, DIR_, off, NULL, &e), 0);
			CHECK_INT(drain(r, 0, &out, &n, &e), 0);
			CHECK_U64(out.len, all.len - off);
			CHECK(out.len == 0 ||
			    memcmp(out.data, all.data + off, out.len) == 0);
			CHECK_U64(n, count_nl(all.data + off, all.len - off));
			CHECK_U64(reader_offset(r), all.len);
			reader_free(r);
		}
		if (p == all.data + all.len)
			break;
		p = (const char *)memchr(p, '\n',
		    all.len - (size_t)(p - all.data)) + 1;
	}
	buf_release(&all);
	buf_release(&out);
}

TEST(reader_max_records)
{
	struct buf all = BUF_INIT, out = BUF_INIT;
	struct reader *r;
	struct error e;
	uint64_t b1, b2;
	const char *d;
	size_t len, n, total = 0;
	int rc;

	CHECK(three_segments(&all, &b1, &b2) == 0);
	CHECK_INT(reader_open(&r, DIR_, 0, NULL, &e), 0);
	while ((rc = reader_next(r, 7, &d, &len, &n, &e)) == 1) {
		CHECK(n >= 1 && n <= 7);
		CHECK_U64(count_nl(d, len), n);
		CHECK(d[len - 1] == '\n');
		buf_append(&out, d, len);
		total += n;
	}
	CHECK_INT(rc, 0);
	CHECK_U64(total, 40800);
	CHECK(out.len == all.len && memcmp(out.data, all.data, all.len) == 0);
	reader_free(r);
	/* exactly one record when asked for one */
	CHECK_INT(reader_open(&r, DIR_, b1, NULL, &e), 0);
	CHECK_INT(reader_next(r, 1, &d, &len, &n, &e), 1);
	CHECK_U64(n, 1);
	CHECK_U64(len, (size_t)((char *)memchr(all.data + b1, '\n', 100) -
	    (all.data + b1)) + 1);
	CHECK_U64(reader_offset(r), b1 + len);
	reader_free(r);
	buf_release(&all);
	buf_release(&out);
}

TEST(reader_torn_tail_not_delivered)
{
	struct reader *r;
	struct error e;
	const char *d;
	size_t len, n;

	CHECK(put_segment(0, "{\"a\":1}\n{\"b\":", 13, 0, 0644) == 0);
	CHECK_INT(reader_open(&r, DIR_, 0, NULL, &e), 0);
	CHECK_INT(reader_next(r, 0, &d, &len, &n, &e), 1);
	CHECK_U64(len, 8);
	CHECK_U64(n, 1);
	CHECK_INT(reader_next(r, 0, &d, &len, &n, &e), 0);
	CHECK_INT(reader_next(r, 0, &d, &len, &n, &e), 0);
	CHECK_U64(reader_offset(r), 8);
	/* the writer finishes the record */
	CHECK(append_segment(0, "2}\n", 3) == 0);
	CHECK_INT(reader_next(r, 0, &d, &len, &n, &e), 1);
	CHECK_U64(len, 8);
	CHECK(memcmp(d, "{\"b\":2}\n", 8) == 0);
	CHECK_U64(reader_offset(r), 16);
	reader_free(r);
}

/*
 * A writer died mid-record; the next writer truncated the torn bytes
 * away and appended other records.  The reader must deliver the bytes
 * that are in the stream now, never the torn ones it saw before.
 */
TEST(reader_torn_tail_replaced)
{
	static const char rec2[] = "{\"second\":\"a longer record\"}\n";
	struct reader *r;
	struct error e;
	const char *d;
	size_t len, n;
	int fd;

	CHECK(put_segment(0, "{\"a\":1}\n{\"torn\":\"xx", 19, 0, 0644) == 0);
	CHECK_INT(reader_open(&r, DIR_, 0, NULL, &e), 0);
	CHECK_INT(reader_next(r, 0, &d, &len, &n, &e), 1);
	CHECK_U64(len, 8);
	CHECK_INT(reader_next(r, 0, &d, &len, &n, &e), 0);
	/* repair: cut back to the last newline, then append */
	CHECK((fd = open(DIR_ "/00000000000000000000.jsonl", O_WRONLY)) != -1);
	CHECK(ftruncate(fd, 8) == 0);
	close(fd);
	CHECK(append_segment(0, rec2, sizeof(rec2) - 1) == 0);
	CHECK_INT(reader_next(r, 0, &d, &len, &n, &e), 1);
	CHECK_U64(len, sizeof(rec2) - 1);
	CHECK(memcmp(d, rec2, len) == 0);
	CHECK_U64(n, 1);
	CHECK_U64(reader_offset(r), 8 + sizeof(rec2) - 1);
	CHECK_INT(reader_next(r, 0, &d, &len, &n, &e), 0);
	reader_free(r);
}

TEST(reader_growth_and_seal_while_reading)
{
	struct buf b = BUF_INIT, out = BUF_INIT, want = BUF_INIT;
	struct reader *r;
	struct error e;
	uint64_t base2;
	size_t n;

	records(&b, 0, 10);
	CHECK(put_segment(0, b.data, b.len, 0, 0644) == 0);
	buf_append(&want, b.data, b.len);
	CHECK_INT(reader_open(&r, DIR_, 0, NULL, &e), 0);
	CHECK_INT(drain(r, 0, &out, &n, &e), 0);
	CHECK_U64(n, 10);
	/* it grows */
	b.len = 0;
	records(&b, 10, 5);
	CHECK(append_segment(0, b.data, b.len) == 0);
	buf_append(&want, b.data, b.len);
	CHECK_INT(drain(r, 0, &out, &n, &e), 0);
	CHECK_U64(n, 5);
	/* it grows, is sealed and a successor is written, between two reads */
	b.len = 0;
	records(&b, 15, 3);
	CHECK(append_segment(0, b.data, b.len) == 0);
	buf_append(&want, b.data, b.len);
	CHECK(chmod(DIR_ "/00000000000000000000.jsonl", 0444) == 0);
	base2 = want.len;
	b.len = 0;
	records(&b, 18, 4);
	CHECK(put_segment(base2, b.data, b.len, 0, 0644) == 0);
	buf_append(&want, b.data, b.len);
	CHECK_INT(drain(r, 0, &out, &n, &e), 0);
	CHECK_U64(n, 7);
	CHECK(out.len == want.len &&
	    memcmp(out.data, want.data, want.len) == 0);
	CHECK_U64(reader_offset(r), want.len);
	reader_free(r);
	buf_release(&b);
	buf_release(&out);
	buf_release(&want);
}

TEST(reader_half_sealed_then_successor)
{
	struct buf b = BUF_INIT, out = BUF_INIT;
	struct reader *r;
	struct error e;
	size_t n;

	records(&b, 0, 4);
	CHECK(put_segment(0, b.data, b.len, 0, 0444) == 0);
	/* open at the end of a sealed segment whose successor is missing */
	CHECK_INT(reader_open(&r, DIR_, b.len, NULL, &e), 0);
	CHECK_INT(drain(r, 0, &out, &n, &e), 0);
	CHECK_U64(n, 0);
	CHECK(put_segment(b.len, "{\"next\":1}\n", 11, 0, 0644) == 0);
	CHECK_INT(drain(r, 0, &out, &n, &e), 0);
	CHECK_U64(n, 1);
	CHECK_U64(reader_offset(r), b.len + 11);
	reader_free(r);
	buf_release(&b);
	buf_release(&out);
}

TEST(reader_empty_stream_then_first_segment)
{
	struct buf out = BUF_INIT;
	struct reader *r;
	struct error e;
	size_t n;

	CHECK(mkdir(DIR_, 0700) == 0);
	CHECK_INT(reader_open(&r, DIR_, 0, NULL, &e), 0);
	CHECK_INT(drain(r, 0, &out, &n, &e), 0);
	CHECK_U64(n, 0);
	CHECK(put_segment(0, "{\"a\":1}\n", 8, 0, 0644) == 0);
	CHECK_INT(drain(r, 0, &out, &n, &e), 0);
	CHECK_U64(n, 1);
	reader_free(r);
	/* an offset past the head of an empty stream */
	CHECK_INT(reader_open(&r, "t", 5, NULL, &e), -1);
	CHECK_INT(e.code, EXIT_DATAERR);
	buf_release(&out);
}

TEST(reader_lost_at_expired_offset)
{
	struct reader *r;
	struct error e;
	uint64_t lost = 0;

	CHECK(put_segment(1000, "{\"a\":1}\n", 8, 0, 0444) == 0);
	CHECK(put_segment(1008, "{\"b\":1}\n", 8, 0, 0644) == 0);
	CHECK_INT(reader_open(&r, DIR_, 250, &lost, &e), -1);
	CHECK_INT(e.code, EXIT_DATAERR);
	CHECK_U64(lost, 750);
	CHECK(strstr(e.msg, "750 bytes lost") != NULL);
	CHECK(r == NULL);
	/* the first retained offset is fine */
	CHECK_INT(reader_open(&r, DIR_, 1000, &lost, &e), 0);
	CHECK_U64(lost, 0);
	reader_free(r);
}

TEST(reader_lost_at_gap)
{
	struct buf out = BUF_INIT;
	struct reader *r;
	struct error e;
	uint64_t lost = 0;
	size_t n;

	/* 0..16 sealed, then 16..100 expired, then 100.. active */
	CHECK(put_segment(0, "{\"a\":1}\n{\"b\":2}\n", 16, 0, 0444) == 0);
	CHECK(put_segment(100, "{\"c\":3}\n", 8, 1, 0444) == 0);
	CHECK(put_segment(108, "{\"d\":4}\n", 8, 0, 0644) == 0);
	CHECK_INT(reader_open(&r, DIR_, 8, NULL, &e), 0);
	CHECK_INT(drain(r, 0, &out, &n, &e), -1);
	CHECK_U64(n, 1);
	CHECK_INT(e.code, EXIT_DATAERR);
	CHECK_U64(reader_lost(r), 84);
	CHECK(strstr(e.msg, "84 bytes lost") != NULL);
	CHECK_U64(reader_offset(r), 16);
	reader_free(r);
	/* an offset inside the gap itself */
	CHECK_INT(reader_open(&r, DIR_, 40, &lost, &e), -1);
	CHECK_INT(e.code, EXIT_DATAERR);
	CHECK_U64(lost, 60);
	/* past the head */
	CHECK_INT(reader_open(&r, DIR_, 117, &lost, &e), -1);
	CHECK_INT(e.code, EXIT_DATAERR);
	CHECK_U64(lost, 0);
	CHECK_INT(reader_open(&r, DIR_, 116, &lost, &e), 0);
	CHECK_INT(drain(r, 0, &out, &n, &e), 0);
	CHECK_U64(n, 0);
	reader_free(r);
	buf_release(&out);
}

TEST(reader_gap_inside_compressed_offset)
{
	struct reader *r;
	struct error e;
	uint64_t lost = 0;

	/* a compressed segment shorter than the distance to its successor */
	CHECK(put_segment(0, "{\"a\":1}\n", 8, 1, 0444) == 0);
	CHECK(put_segment(50, "{\"b\":1}\n", 8, 0, 0644) == 0);
	CHECK_INT(reader_open(&r, DIR_, 20, &lost, &e), -1);
	CHECK_INT(e.code, EXIT_DATAERR);
	CHECK_U64(lost, 30);
}

TEST(reader_record_larger_than_buffer)
{
	struct buf big = BUF_INIT, out = BUF_INIT;
	struct reader *r;
	struct error e;
	size_t i, n;

	buf_append(&big, "{\"a\":1}\n{\"big\":\"", 16);
	for (i = 0; i < 2600000; i++)
		buf_putc(&big, (char)('a' + i % 26));
	buf_append(&big, "\"}\n{\"z\":1}\n", 11);
	/* live: the reader must not hand out part of it */
	CHECK(put_segment(0, big.data, big.len - 11 - 500000, 0, 0644) == 0);
	CHECK_INT(reader_open(&r, DIR_, 0, NULL, &e), 0);
	CHECK_INT(drain(r, 0, &out, &n, &e), 0);
	CHECK_U64(n, 1);
	CHECK(append_segment(0, big.data + big.len - 11 - 500000,
	    500000 + 11) == 0);
	CHECK_INT(drain(r, 0, &out, &n, &e), 0);
	CHECK_U64(n, 2);
	CHECK(out.len == big.len && memcmp(out.data, big.data, big.len) == 0);
	reader_free(r);
	/* sealed and compressed, read with a record limit */
	CHECK(unlink(DIR_ "/00000000000000000000.jsonl") == 0);
	CHECK(put_segment(0, big.data, big.len, 1, 0444) == 0);
	out.len = 0;
	CHECK_INT(reader_open(&r, DIR_, 8, NULL, &e), 0);
	CHECK_INT(drain(r, 1, &out, &n, &e), 0);
	CHECK_U64(n, 2);
	CHECK(out.len == big.len - 8 &&
	    memcmp(out.data, big.data + 8, out.len) == 0);
	reader_free(r);
	buf_release(&big);
	buf_release(&out);
}

TEST(reader_compressed_while_reading)
{
	struct buf a = BUF_INIT, out = BUF_INIT, want = BUF_INIT;
	struct reader *r;
	struct error e;
	const char *d;
	size_t len, n;

	records(&a, 0, 30000);
	CHECK(put_segment(0, a.data, a.len, 0, 0444) == 0);
	CHECK(put_segment(a.len, "{\"z\":1}\n", 8, 0, 0644) == 0);
	buf_append(&want, a.data, a.len);
	buf_append(&want, "{\"z\":1}\n", 8);
	CHECK_INT(reader_open(&r, DIR_, 0, NULL, &e), 0);
	CHECK_INT(reader_next(r, 10, &d, &len, &n, &e), 1);
	buf_append(&out, d, len);
	/* aistack-rotate replaces the plain segment by its gzip form */
	CHECK(put_segment(0, a.data, a.len, 1, 0444) == 0);
	CHECK(unlink(DIR_ "/00000000000000000000.jsonl") == 0);
	CHECK_INT(drain(r, 0, &out, &n, &e), 0);
	CHECK(out.len == want.len &&
	    memcmp(out.data, want.data, want.len) == 0);
	reader_free(r);
	/* and a new reader finds the compressed one */
	out.len = 0;
	CHECK_INT(reader_open(&r, DIR_, (uint64_t)(strchr(a.data,
	    '\n') - a.data) + 1, NULL, &e), 0);
	CHECK_INT(drain(r, 0, &out, &n, &e), 0);
	CHECK_U64(n, 30000);
	reader_free(r);
	buf_release(&a);
	buf_release(&out);
	buf_release(&want);
}

TEST(reader_sealed_segment_without_final_newline)
{
	struct buf out = BUF_INIT;
	struct reader *r;
	struct error e;
	size_t n;

	CHECK(put_segment(0, "{\"a\":1}\n{\"b\"", 12, 0, 0444) == 0);
	CHECK(put_segment(12, "{\"c\":1}\n", 8, 0, 0644) == 0);
	CHECK_INT(reader_open(&r, DIR_, 0, NULL, &e), 0);
	CHECK_INT(drain(r, 0, &out, &n, &e), -1);
	CHECK_INT(e.code, EXIT_DATAERR);
	reader_free(r);
	/* the same segment left writable must not make the reader spin */
	CHECK(chmod(DIR_ "/00000000000000000000.jsonl", 0644) == 0);
	out.len = 0;
	CHECK_INT(reader_open(&r, DIR_, 0, NULL, &e), 0);
	CHECK_INT(drain(r, 0, &out, &n, &e), -1);
	CHECK_INT(e.code, EXIT_DATAERR);
	reader_free(r);
	buf_release(&out);
}

/*
 * Right after a seal the active segment is empty: a reader there is at
 * the head, waits, and reads what is appended to it.
 */
TEST(reader_at_an_empty_active_segment)
{
	struct buf out = BUF_INIT;
	struct reader *r;
	struct error e;
	const char *d;
	size_t len, n;

	CHECK(put_segment(0, "{\"a\":1}\n", 8, 0, 0444) == 0);
	CHECK(put_segment(8, "", 0, 0, 0644) == 0);
	CHECK_INT(reader_open(&r, DIR_, 0, NULL, &e), 0);
	CHECK_INT(drain(r, 0, &out, &n, &e), 0);
	CHECK_U64(n, 1);
	CHECK_INT(reader_next(r, 0, &d, &len, &n, &e), 0);
	reader_free(r);
	/* opened right at the empty segment */
	CHECK_INT(reader_open(&r, DIR_, 8, NULL, &e), 0);
	CHECK_INT(reader_next(r, 0, &d, &len, &n, &e), 0);
	CHECK_INT(reader_next(r, 5, &d, &len, &n, &e), 0);
	CHECK(append_segment(8, "{\"b\":2}\n", 8) == 0);
	CHECK_INT(reader_next(r, 0, &d, &len, &n, &e), 1);
	CHECK_U64(len, 8);
	CHECK_U64(reader_offset(r), 16);
	reader_free(r);
	/* an empty segment followed by a later one is a gap */
	CHECK(chmod(DIR_ "/00000000000000000008.jsonl", 0444) == 0);
	CHECK(put_segment(16, "", 0, 0, 0444) == 0);
	CHECK(put_segment(30, "{\"c\":3}\n", 8, 0, 0644) == 0);
	CHECK_INT(reader_open(&r, DIR_, 16, NULL, &e), 0);
	CHECK_INT(reader_next(r, 0, &d, &len, &n, &e), -1);
	CHECK_INT(e.code, EXIT_DATAERR);
	CHECK_U64(reader_lost(r), 14);
	reader_free(r);
	buf_release(&out);
}
