#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "base/exitcode.h"
#include "base/fsutil.h"
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
	int live;		/* fd is writable: its tail may be torn */
	uint64_t tail;		/* bytes after its last newline */
	int grow;		/* the next record does not fit: grow first */
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
 * skip bytes of it.  Returns 0, 1 when no such segment exists, 2 when it
 * is shorter than skip (nothing is changed then), -1.
 */
static int
open_segment(struct reader *r, uint64_t base, uint64_t skip, struct error *e)
{
	char name[64], path[PATH_MAX + 64];
	struct stat st;
	uint64_t left;
	int gzform, fd, got, zerr;
	gzFile gz;

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
	if (fstat(fd, &st) == -1) {
		error_errno(e, EXIT_IOERR, "%s", path);
		close(fd);
		return -1;
	}
	if (!gzform) {
		if ((uint64_t)st.st_size < skip) {
			close(fd);
			return 2;
		}
		if (skip != 0 && lseek(fd, (off_t)skip, SEEK_SET) == -1) {
			error_errno(e, EXIT_IOERR, "%s", path);
			close(fd);
			return -1;
		}
		close_segment(r);
		r->fd = fd;
		r->live = (st.st_mode & 0222) != 0;
	} else {
		if ((gz = gzdopen(fd, "rb")) == NULL) {
			close(fd);
			return error_set(e, EXIT_IOERR, "%s: cannot open", path);
		}
		gzbuffer(gz, 256 * 1024);
		for (left = skip; left > 0; left -= (uint64_t)got) {
			unsigned want = left > r->cap ? (unsigned)r->cap :
			    (unsigned)left;
			if ((got = gzread(gz, r->buf, want)) > 0)
				continue;
			if (got == 0) {
				gzclose(gz);
				return 2;
			}
			error_set(e, EXIT_DATAERR, "%s: %s", path,
			    gzerror(gz, &zerr));
			gzclose(gz);
			return -1;
		}
		close_segment(r);
		r->gz = gz;
		r->live = 0;
	}
	r->seg_base = base;
	r->seg_pos = skip;
	r->tail = 0;
	return 0;
}

/* offset lies in expired data, gap bytes of it gone: say so, as *lost too. */
static void
expired(struct reader *r, const char *dir, uint64_t offset, uint64_t gap,
    uint64_t *lost, struct error *e)
{
	r->lost = gap;
	if (lost != NULL)
		*lost = gap;
	error_set(e, EXIT_DATAERR, "%s: offset %llu is in expired data: %llu "
	    "bytes lost", dir, (unsigned long long)offset,
	    (unsigned long long)gap);
}

int
reader_open(struct reader **rp, const char *dir, uint64_t offset,
    uint64_t *lost, struct error *e)
{
	struct segment_list l;
	struct reader *r;
	size_t i;
	int attempt, rc, past = 0;

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
			expired(r, dir, offset, l.v[0].base - offset, lost, e);
			segments_free(&l);
			goto fail;
		}
		for (i = l.n; i-- > 1;)
			if (l.v[i].base <= offset)
				break;
		rc = open_segment(r, l.v[i].base, offset - l.v[i].base, e);
		if (rc == 2 && i + 1 < l.n) {
			/* between the end of a segment and its successor */
			expired(r, dir, offset, l.v[i + 1].base - offset, lost,
			    e);
			segments_free(&l);
			goto fail;
		}
		segments_free(&l);
		if (rc == -1)
			goto fail;
		if (rc == 0) {
			*rp = r;
			return 0;
		}
		/* the last one is shorter: a seal may have run, look again */
		if (rc == 2 && past++ > 0) {
			error_set(e, EXIT_DATAERR, "%s: offset %llu is past "
			    "the head", dir, (unsigned long long)offset);
			goto fail;
		}
	}
	error_set(e, EXIT_IOERR, "%s: segments keep changing", dir);
fail:
	reader_free(r);
	return -1;
}

/*
 * Nonzero when the bytes of fd from pos to its end hold a newline (the
 * tail of a live segment that is final now); -1 on error.
 */
static int
tail_has_newline(int fd, uint64_t pos, uint64_t end)
{
	char block[8192];
	ssize_t got;

	while (pos < end) {
		size_t want = end - pos > sizeof(block) ? sizeof(block) :
		    (size_t)(end - pos);
		if ((got = pread_full(fd, block, want, (off_t)pos)) <= 0)
			return got == 0 ? 0 : -1;
		if (memchr(block, '\n', (size_t)got) != NULL)
			return 1;
		pos += (uint64_t)got;
	}
	return 0;
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
	int rc, open = r->fd != -1 || r->gz != NULL;

	/* an empty segment (a fresh active one) is not its own successor */
	if ((!open || next != r->seg_base) &&
	    (rc = open_segment(r, next, 0, e)) != 1)
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
	 * since we looked.  Only then is the difference a gap.  Bytes after
	 * the last newline that were there at the last read and have not
	 * grown since are a segment that does not end with a newline.
	 */
	if (r->fd != -1 && fstat(r->fd, &st) == 0 &&
	    (uint64_t)st.st_size > r->seg_pos) {
		segments_free(&l);
		if ((uint64_t)st.st_size > r->seg_pos + r->tail)
			return 2;
		if ((rc = tail_has_newline(r->fd, r->seg_pos,
		    (uint64_t)st.st_size)) == -1)
			return error_errno(e, EXIT_IOERR, "%s: segment %llu",
			    r->dir, (unsigned long long)r->seg_base);
		if (rc == 1)
			return 2;
		return error_set(e, EXIT_DATAERR, "%s: segment %llu does not "
		    "end with a newline", r->dir,
		    (unsigned long long)r->seg_base);
	}
	if ((!open || next != r->seg_base) &&
	    (rc = open_segment(r, next, 0, e)) != 1) {
		segments_free(&l);
		return rc;
	}
	r->lost = l.v[i].base - next;
	segments_free(&l);
	return error_set(e, EXIT_DATAERR, "%s: offset %llu is in expired data: "
	    "%llu bytes lost", r->dir, (unsigned long long)next,
	    (unsigned long long)r->lost);
}

/*
 * Read more bytes of the current segment into the buffer; returns how
 * many, 0 when nothing more is there for now.  From a live segment only
 * whole records are kept: the bytes after the last newline (a write in
 * progress, or a torn tail that the next writer will truncate and
 * overwrite) are read again next time, so a record is always delivered
 * as the stream holds it once its newline is there.
 */
static ssize_t
fill(struct reader *r, struct error *e)
{
	ssize_t got;
	size_t room, keep;
	char *p, *nl;

	for (;;) {
		if (r->start > 0 && (r->start + r->len == r->cap ||
		    r->len == 0 || r->grow)) {
			memmove(r->buf, r->buf + r->start, r->len);
			r->start = 0;
		}
		if (r->start + r->len == r->cap || r->grow) {
			/* one record larger than the buffer */
			size_t ncap = r->cap * 2;
			char *nb;
			if (ncap > READER_BUF_MAX ||
			    (nb = realloc(r->buf, ncap)) == NULL)
				return error_set(e, EXIT_DATAERR, "%s: record "
				    "at offset %llu is larger than %zu bytes",
				    r->dir, (unsigned long long)r->offset,
				    r->cap);
			r->buf = nb;
			r->cap = ncap;
			r->grow = 0;
		}
		room = r->cap - r->start - r->len;
		p = r->buf + r->start + r->len;
		if (r->gz != NULL) {
			got = gzread(r->gz, p,
			    room > INT_MAX ? INT_MAX : (unsigned)room);
			if (got < 0) {
				int zerr;
				return error_set(e, EXIT_DATAERR, "%s: segment "
				    "%llu: %s", r->dir,
				    (unsigned long long)r->seg_base,
				    gzerror(r->gz, &zerr));
			}
		} else if (r->fd != -1) {
			do
				got = read(r->fd, p, room);
			while (got == -1 && errno == EINTR);
			if (got < 0)
				return error_errno(e, EXIT_IOERR, "%s: segment "
				    "%llu", r->dir,
				    (unsigned long long)r->seg_base);
		} else
			got = 0;
		if (!r->live || got == 0) {
			r->len += (size_t)got;
			r->seg_pos += (uint64_t)got;
			r->tail = 0;
			return got;
		}
		nl = memrchr(p, '\n', (size_t)got);
		keep = nl != NULL ? (size_t)(nl + 1 - p) : 0;
		r->tail = (uint64_t)got - keep;
		r->len += keep;
		r->seg_pos += keep;
		if (r->tail > 0 &&
		    lseek(r->fd, (off_t)r->seg_pos, SEEK_SET) == -1)
			return error_errno(e, EXIT_IOERR, "%s: segment %llu",
			    r->dir, (unsigned long long)r->seg_base);
		if (keep > 0)
			return (ssize_t)keep;
		if ((size_t)got < room)
			return 0;	/* part of a record, for now */
		r->grow = 1;		/* a record larger than the room */
	}
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
		if ((rc = next_segment(r, e)) == -1) {
			/* hand out what came before a gap first */
			cut = scan_records(r, max_records, &n);
			if (n == 0)
				return -1;
			r->lost = 0;
			break;
		}
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
