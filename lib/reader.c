#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "exitcode.h"
#include "reader.h"
#include "stream.h"

#define READER_BUF	(1024 * 1024)
#define READER_BUF_MAX	((size_t)1 << 31)

struct reader {
	char dir[PATH_MAX];
	uint64_t offset;	/* logical offset of buf[start] */
	uint64_t seg_base;	/* current segment */
	uint64_t seg_pos;	/* logical bytes consumed from it into buf */
	int fd;			/* plain segment, or -1 */
	gzFile gz;		/* compressed segment, or NULL */
	char *buf;
	size_t cap, start, len;	/* buffered bytes are buf[start, start+len) */
	uint64_t lost;
};

static void
close_segment(struct reader *r)
{
	if (r->gz != NULL) {
		gzclose(r->gz);
		r->gz = NULL;
	} else if (r->fd != -1)
		close(r->fd);
	r->fd = -1;
}

/*
 * Open the segment with the given base, plain or compressed, and skip
 * skip bytes of it.  Returns 0, 1 when no such segment exists, -1.
 */
static int
open_segment(struct reader *r, uint64_t base, uint64_t skip, struct error *e)
{
	char name[64], path[PATH_MAX + 64];
	int gzform, fd;

	for (gzform = 0; gzform < 2; gzform++) {
		segment_name(name, sizeof(name), base, gzform);
		snprintf(path, sizeof(path), "%s/%s", r->dir, name);
		if ((fd = open(path, O_RDONLY | O_CLOEXEC)) != -1)
			break;
		if (errno != ENOENT)
			return error_errno(e, EXIT_IOERR, "%s", path);
	}
	if (fd == -1)
		return 1;
	close_segment(r);
	r->seg_base = base;
	r->seg_pos = skip;
	if (!gzform) {
		r->fd = fd;
		if (skip != 0 && lseek(fd, (off_t)skip, SEEK_SET) == -1)
			return error_errno(e, EXIT_IOERR, "%s", path);
		return 0;
	}
	if ((r->gz = gzdopen(fd, "rb")) == NULL) {
		close(fd);
		return error_set(e, EXIT_IOERR, "%s: cannot open", path);
	}
	gzbuffer(r->gz, 256 * 1024);
	while (skip > 0) {
		unsigned want = skip > r->cap ? (unsigned)r->cap : (unsigned)skip;
		int got = gzread(r->gz, r->buf, want);
		if (got <= 0) {
			int zerr;
			const char *msg = gzerror(r->gz, &zerr);
			return error_set(e, EXIT_DATAERR, "%s: %s", path,
			    got < 0 ? msg : "offset past the end of the segment");
		}
		skip -= (uint64_t)got;
	}
	return 0;
}

int
reader_open(struct reader **rp, const char *dir, uint64_t offset,
    uint64_t *lost, struct error *e)
{
	struct segment_list l;
	struct reader *r;
	size_t i;
	int attempt, rc;

	*rp = NULL;
	if (lost != NULL)
		*lost = 0;
	if ((r = calloc(1, sizeof(*r))) == NULL ||
	    (r->buf = malloc(READER_BUF)) == NULL) {
		free(r);
		return error_errno(e, EXIT_SOFTWARE, "%s", dir);
	}
	r->fd = -1;
	r->cap = READER_BUF;
	r->offset = offset;
	snprintf(r->dir, sizeof(r->dir), "%s", dir);
	/* a segment may be compressed or sealed between listing and opening */
	for (attempt = 0; attempt < 8; attempt++) {
		if (segments_list(dir, &l, e) == -1)
			goto fail;
		if (l.n == 0) {
			segments_free(&l);
			if (offset != 0) {
				error_set(e, EXIT_DATAERR, "%s: offset %llu is "
				    "past the head 0", dir,
				    (unsigned long long)offset);
				goto fail;
			}
			r->seg_base = 0;
			r->seg_pos = 0;
			*rp = r;
			return 0;
		}
		if (offset < l.v[0].base) {
			r->lost = l.v[0].base - offset;
			if (lost != NULL)
				*lost = r->lost;
			error_set(e, EXIT_DATAERR, "%s: offset %llu is in expired "
			    "data: %llu bytes lost", dir,
			    (unsigned long long)offset,
			    (unsigned long long)r->lost);
			segments_free(&l);
			goto fail;
		}
		for (i = l.n; i-- > 1;)
			if (l.v[i].base <= offset)
				break;
		rc = open_segment(r, l.v[i].base, offset - l.v[i].base, e);
		segments_free(&l);
		if (rc == -1)
			goto fail;
		if (rc == 0) {
			struct stat st;
			if (r->fd != -1 && fstat(r->fd, &st) == 0 &&
			    (uint64_t)st.st_size < r->seg_pos) {
				error_set(e, EXIT_DATAERR, "%s: offset %llu is past "
				    "the head", dir, (unsigned long long)offset);
				goto fail;
			}
			*rp = r;
			return 0;
		}
	}
	error_set(e, EXIT_IOERR, "%s: segments keep changing", dir);
fail:
	reader_free(r);
	return -1;
}

/*
 * At the end of the current segment's file: move to the next segment.
 * Returns 0 when moved, 1 when there is none yet (the head), 2 when the
 * current segment grew meanwhile, -1 on error (a gap is lost data).
 */
static int
next_segment(struct reader *r, struct error *e)
{
	struct segment_list l;
	uint64_t next = r->seg_base + r->seg_pos;
	struct stat st;
	size_t i;
	int rc;

	if ((rc = open_segment(r, next, 0, e)) != 1)
		return rc;
	if (segments_list(r->dir, &l, e) == -1)
		return -1;
	for (i = 0; i < l.n; i++)
		if (l.v[i].base > next)
			break;
	if (i == l.n) {
		segments_free(&l);
		return 1;
	}
	/*
	 * A later segment exists, so the current one is final: it may have
	 * grown since we read its end, and the successor may have appeared
	 * since we looked.  Only then is the difference a gap.
	 */
	if (r->fd != -1 && fstat(r->fd, &st) == 0 &&
	    (uint64_t)st.st_size > r->seg_pos) {
		segments_free(&l);
		return 2;
	}
	if ((rc = open_segment(r, next, 0, e)) != 1) {
		segments_free(&l);
		return rc;
	}
	r->lost = l.v[i].base - next;
	segments_free(&l);
	return error_set(e, EXIT_DATAERR, "%s: offset %llu is in expired data: "
	    "%llu bytes lost", r->dir, (unsigned long long)next,
	    (unsigned long long)r->lost);
}

/* Read more bytes of the current segment into the buffer; 0 at its end. */
static ssize_t
fill(struct reader *r, struct error *e)
{
	ssize_t got;
	size_t room;

	if (r->start > 0 && (r->start + r->len == r->cap || r->len == 0)) {
		memmove(r->buf, r->buf + r->start, r->len);
		r->start = 0;
	}
	if (r->start + r->len == r->cap) {
		/* one record larger than the buffer */
		size_t ncap = r->cap * 2;
		char *nb;
		if (ncap > READER_BUF_MAX || (nb = realloc(r->buf, ncap)) == NULL)
			return error_set(e, EXIT_DATAERR, "%s: record at offset "
			    "%llu is larger than %zu bytes", r->dir,
			    (unsigned long long)r->offset, r->cap);
		r->buf = nb;
		r->cap = ncap;
	}
	room = r->cap - r->start - r->len;
	if (r->gz != NULL) {
		got = gzread(r->gz, r->buf + r->start + r->len,
		    room > INT_MAX ? INT_MAX : (unsigned)room);
		if (got < 0) {
			int zerr;
			return error_set(e, EXIT_DATAERR, "%s: segment %llu: %s",
			    r->dir, (unsigned long long)r->seg_base,
			    gzerror(r->gz, &zerr));
		}
	} else if (r->fd != -1) {
		do
			got = read(r->fd, r->buf + r->start + r->len, room);
		while (got == -1 && errno == EINTR);
		if (got < 0)
			return error_errno(e, EXIT_IOERR, "%s: segment %llu",
			    r->dir, (unsigned long long)r->seg_base);
	} else
		got = 0;
	r->len += (size_t)got;
	r->seg_pos += (uint64_t)got;
	return got;
}

/* Count up to max records (0: all) at the front of the buffer; returns
 * the byte length they cover and their number in *n. */
static size_t
scan_records(const struct reader *r, size_t max, size_t *n)
{
	const char *p = r->buf + r->start, *end = p + r->len, *q = p, *nl;

	*n = 0;
	if (max == 0) {
		const char *last = r->len ? memrchr(p, '\n', r->len) : NULL;
		if (last == NULL)
			return 0;
		for (; q <= last; q = nl + 1) {
			nl = memchr(q, '\n', (size_t)(last - q) + 1);
			(*n)++;
		}
		return (size_t)(last + 1 - p);
	}
	while (*n < max && q < end && (nl = memchr(q, '\n',
	    (size_t)(end - q))) != NULL) {
		q = nl + 1;
		(*n)++;
	}
	return (size_t)(q - p);
}

int
reader_next(struct reader *r, size_t max_records, const char **data,
    size_t *len, size_t *nrec, struct error *e)
{
	size_t cut, n;
	ssize_t got;
	int rc;

	r->lost = 0;
	for (;;) {
		cut = scan_records(r, max_records, &n);
		/* deliver a full count, or a reasonably full buffer */
		if (n > 0 && ((max_records != 0 && n == max_records) ||
		    r->len >= r->cap / 2))
			break;
		if ((got = fill(r, e)) < 0)
			return -1;
		if (got > 0)
			continue;
		/* the end of the current segment's file, for now */
		if ((rc = next_segment(r, e)) == -1)
			return -1;
		if (rc == 2)
			continue;
		if (rc == 1) {		/* at the head */
			cut = scan_records(r, max_records, &n);
			if (n == 0)
				return 0;
			break;
		}
		if (r->len > 0 && r->buf[r->start + r->len - 1] != '\n')
			return error_set(e, EXIT_DATAERR, "%s: segment before "
			    "offset %llu does not end with a newline", r->dir,
			    (unsigned long long)r->seg_base);
	}
	*data = r->buf + r->start;
	*len = cut;
	*nrec = n;
	r->start += cut;
	r->len -= cut;
	r->offset += cut;
	return 1;
}

uint64_t
reader_offset(const struct reader *r)
{
	return r->offset;
}

uint64_t
reader_lost(const struct reader *r)
{
	return r->lost;
}

void
reader_free(struct reader *r)
{
	if (r == NULL)
		return;
	close_segment(r);
	free(r->buf);
	free(r);
}
