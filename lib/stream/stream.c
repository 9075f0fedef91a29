#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "base/exitcode.h"
#include "base/fsutil.h"
#include "base/lock.h"
#include "base/statedir.h"
#include "stream.h"

#define SEGMENT_MODE	0644
#define SEALED_MODE	0444
#define COUNTERS_FILE	".counters"
#define PAUSE_FILE	"pause"

void
segment_name(char *buf, size_t n, uint64_t base, int gz)
{
	snprintf(buf, n, "%020llu.jsonl%s", (unsigned long long)base,
	    gz ? ".gz" : "");
}

/* Parse a segment file name; 0 and *seg set when it is one. */
static int
parse_segment_name(const char *name, struct segment *seg)
{
	uint64_t base = 0;
	int i;

	for (i = 0; i < SEGMENT_DIGITS; i++) {
		if (name[i] < '0' || name[i] > '9')
			return -1;
		if (base > (UINT64_MAX - (uint64_t)(name[i] - '0')) / 10)
			return -1;
		base = base * 10 + (uint64_t)(name[i] - '0');
	}
	if (strcmp(name + SEGMENT_DIGITS, ".jsonl") == 0)
		seg->gz = 0;
	else if (strcmp(name + SEGMENT_DIGITS, ".jsonl.gz") == 0)
		seg->gz = 1;
	else
		return -1;
	seg->base = base;
	return 0;
}

static int
segment_cmp(const void *a, const void *b)
{
	const struct segment *x = a, *y = b;

	if (x->base != y->base)
		return x->base < y->base ? -1 : 1;
	return x->gz - y->gz;	/* plain first */
}

int
segments_list(const char *dir, struct segment_list *l, struct error *e)
{
	struct dirent *de;
	size_t cap = 0, i, o;
	DIR *d;

	l->v = NULL;
	l->n = 0;
	if ((d = opendir(dir)) == NULL) {
		if (errno == ENOENT)
			return 0;
		return error_errno(e, EXIT_NOINPUT, "%s", dir);
	}
	while ((errno = 0, de = readdir(d)) != NULL) {
		struct segment seg, *nv;
		if (parse_segment_name(de->d_name, &seg) == -1)
			continue;
		if (l->n == cap) {
			cap = cap ? cap * 2 : 16;
			if ((nv = realloc(l->v, cap * sizeof(*nv))) == NULL) {
				closedir(d);
				segments_free(l);
				return error_errno(e, EXIT_SOFTWARE, "%s", dir);
			}
			l->v = nv;
		}
		l->v[l->n++] = seg;
	}
	if (errno != 0) {
		error_errno(e, EXIT_IOERR, "%s", dir);
		closedir(d);
		segments_free(l);
		return -1;
	}
	closedir(d);
	if (l->n == 0)
		return 0;
	qsort(l->v, l->n, sizeof(l->v[0]), segment_cmp);
	/* keep one entry per base: the plain one, listed first */
	for (i = 1, o = 1; i < l->n; i++)
		if (l->v[i].base != l->v[o - 1].base)
			l->v[o++] = l->v[i];
	l->n = o;
	return 0;
}

void
segments_free(struct segment_list *l)
{
	if (l == NULL)
		return;
	free(l->v);
	l->v = NULL;
	l->n = 0;
}

void
stream_init(struct stream *s)
{
	memset(s, 0, sizeof(*s));
	s->lockfd = s->segfd = s->pausefd = s->ctrfd = -1;
	s->max_backlog = UINT64_MAX;
}

int
stream_open(struct stream *s, const char *arg, int create, struct error *e)
{
	char path[PATH_MAX + 16];
	struct stat st;

	stream_init(s);
	if (statedir_resolve(arg, "streams", s->dir, sizeof(s->dir), e) == -1)
		return -1;
	snprintf(s->name, sizeof(s->name), "%s", arg);
	if (stat(s->dir, &st) == -1) {
		if (errno != ENOENT || !create)
			return error_errno(e, errno == ENOENT ? EXIT_NOINPUT :
			    EXIT_IOERR, "%s", s->name);
	} else if (!S_ISDIR(st.st_mode))
		return error_set(e, EXIT_DATAERR, "%s: not a stream directory",
		    s->name);
	snprintf(path, sizeof(path), "%s/consumers", s->dir);
	if (create && mkdir_p(path, 0700) == -1)
		return error_errno(e, error_code_for_errno(errno), "%s", path);
	snprintf(path, sizeof(path), "%s/lock", s->dir);
	if ((s->lockfd = lock_open(path)) == -1)
		return error_errno(e, errno == ENOENT ? EXIT_NOINPUT :
		    error_code_for_errno(errno), "%s", path);
	return 0;
}

/* Create the segment at base (empty, O_EXCL) and make the name durable. */
static int
create_segment(struct stream *s, uint64_t base, struct error *e)
{
	char name[64], path[PATH_MAX + 64];
	int fd;

	segment_name(name, sizeof(name), base, 0);
	snprintf(path, sizeof(path), "%s/%s", s->dir, name);
	fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_EXCL | O_CLOEXEC,
	    SEGMENT_MODE);
	if (fd == -1 && errno == EEXIST)
		fd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC);
	if (fd == -1)
		return error_errno(e, error_code_for_errno(errno), "%s: %s",
		    s->name, name);
	if (fsync_dir(s->dir) == -1) {
		close(fd);
		return error_errno(e, EXIT_IOERR, "%s: fsync", s->name);
	}
	if (s->segfd != -1)
		close(s->segfd);
	s->segfd = fd;
	s->base = base;
	s->size = 0;
	return 0;
}

/*
 * Find the size of fd's content up to and including its last newline,
 * given its file size.  Reads backwards in blocks; only the torn tail
 * (normally nothing) is scanned.
 */
static int
last_newline_end(int fd, uint64_t size, uint64_t *end)
{
	char block[8192];
	uint64_t pos = size;

	while (pos > 0) {
		size_t want = pos > sizeof(block) ? sizeof(block) : (size_t)pos;
		ssize_t r = pread_full(fd, block, want, (off_t)(pos - want));
		char *nl;
		if (r < 0)
			return -1;
		if ((size_t)r != want) {
			errno = EIO;
			return -1;
		}
		if ((nl = memrchr(block, '\n', want)) != NULL) {
			*end = pos - want + (uint64_t)(nl - block) + 1;
			return 0;
		}
		pos -= want;
	}
	*end = 0;
	return 0;
}

/* Open the highest segment (or create the first / the successor of a
 * half-sealed one) as the active segment. */
static int
find_active(struct stream *s, struct error *e)
{
	struct segment_list l;
	struct stat st;
	char name[64], path[PATH_MAX + 64];
	struct segment top;
	int fd;

	if (s->segfd != -1) {
		close(s->segfd);
		s->segfd = -1;
	}
	if (segments_list(s->dir, &l, e) == -1)
		return error_wrap(e, "%s", s->name);
	if (l.n == 0) {
		segments_free(&l);
		return create_segment(s, 0, e);
	}
	top = l.v[l.n - 1];
	segments_free(&l);
	if (top.gz)
		return error_set(e, EXIT_DATAERR, "%s: the highest segment "
		    "%020llu.jsonl.gz is compressed; a stream's active segment "
		    "must be plain", s->name, (unsigned long long)top.base);
	segment_name(name, sizeof(name), top.base, 0);
	snprintf(path, sizeof(path), "%s/%s", s->dir, name);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
		return error_errno(e, EXIT_IOERR, "%s: %s", s->name, name);
	if (fstat(fd, &st) == -1) {
		close(fd);
		return error_errno(e, EXIT_IOERR, "%s: %s", s->name, name);
	}
	if ((st.st_mode & 0222) == 0) {
		/* sealed, but its successor was never created */
		uint64_t end;
		if (last_newline_end(fd, (uint64_t)st.st_size, &end) == -1) {
			close(fd);
			return error_errno(e, EXIT_IOERR, "%s: %s", s->name, name);
		}
		close(fd);
		if (end != (uint64_t)st.st_size)
			return error_set(e, EXIT_DATAERR, "%s: sealed segment %s "
			    "does not end with a newline", s->name, name);
		return create_segment(s, top.base + (uint64_t)st.st_size, e);
	}
	close(fd);
	if ((fd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC)) == -1)
		return error_errno(e, error_code_for_errno(errno), "%s: %s",
		    s->name, name);
	s->segfd = fd;
	s->base = top.base;
	s->size = UINT64_MAX;	/* unknown: check the tail */
	return 0;
}

/* Truncate bytes after the last newline of the active segment. */
static int
repair_tail(struct stream *s, struct error *e)
{
	struct stat st;
	uint64_t end;
	int rfd;
	char path[PATH_MAX + 64], name[64];

	if (fstat(s->segfd, &st) == -1)
		return error_errno(e, EXIT_IOERR, "%s: active segment", s->name);
	if ((uint64_t)st.st_size == s->size)
		return 0;	/* exactly as this process left it */
	segment_name(name, sizeof(name), s->base, 0);
	snprintf(path, sizeof(path), "%s/%s", s->dir, name);
	if ((rfd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
		return error_errno(e, EXIT_IOERR, "%s: %s", s->name, name);
	if (last_newline_end(rfd, (uint64_t)st.st_size, &end) == -1) {
		close(rfd);
		return error_errno(e, EXIT_IOERR, "%s: %s", s->name, name);
	}
	close(rfd);
	if (end != (uint64_t)st.st_size &&
	    ftruncate(s->segfd, (off_t)end) == -1)
		return error_errno(e, EXIT_IOERR, "%s: truncate torn tail of %s",
		    s->name, name);
	s->size = end;
	return 0;
}

/* --- counters (see struct stream_counters) ------------------------------ */

uint64_t
records_count(const char *p, size_t n)
{
	const char *end = p + n, *nl;
	uint64_t c = 0;

	while (p < end && (nl = memchr(p, '\n', (size_t)(end - p))) != NULL) {
		c++;
		p = nl + 1;
	}
	return c;
}

/*
 * The .counters file: one page, mapped shared by the writers, in the
 * machine's byte order.  Word 0 is the magic, word 1 a generation, then
 * two slots of CTR_SLOT_WORDS: slot (gen & 1) is current.  A writer,
 * under the stream lock, fills the other slot and then stores gen + 1
 * (release), so a writer killed in the middle leaves the current slot as
 * it was, and saving costs no system call.  Readers take no lock: they
 * read gen, the slot, and gen again, and retry when it moved (a seqlock).
 * gen 0 means never written.
 */
#define CTR_MAGIC	0x314e435354534941ULL	/* "AISTSCN1" */
#define CTR_BYTES	4096
#define CTR_SLOT_WORDS	8
#define CTR_RETRIES	1000

enum { W_MAGIC, W_GEN, W_SLOTS };
enum { C_HEAD, C_RECORDS, C_BYTES, C_REJECTED, C_EMPTY, C_MAX_BACKLOG,
    C_SINCE };

static uint64_t *
ctr_slot(uint64_t *map, uint64_t gen)
{
	return map + W_SLOTS + (gen & 1) * CTR_SLOT_WORDS;
}

/* Read the current slot of map into c, consistently; 0, 1 when never
 * written, -1 (EAGAIN) when writers kept it moving. */
static int
ctr_load(uint64_t *map, struct stream_counters *c)
{
	uint64_t g1, g2, w[CTR_SLOT_WORDS], *slot;
	int tries, i;

	for (tries = 0; tries < CTR_RETRIES; tries++) {
		g1 = __atomic_load_n(&map[W_GEN], __ATOMIC_ACQUIRE);
		if (g1 == 0)
			return 1;
		slot = ctr_slot(map, g1);
		for (i = 0; i < CTR_SLOT_WORDS; i++)
			w[i] = __atomic_load_n(&slot[i], __ATOMIC_RELAXED);
		__atomic_thread_fence(__ATOMIC_ACQUIRE);
		g2 = __atomic_load_n(&map[W_GEN], __ATOMIC_RELAXED);
		if (g1 != g2)
			continue;
		c->head = w[C_HEAD];
		c->records = w[C_RECORDS];
		c->bytes = w[C_BYTES];
		c->rejected = w[C_REJECTED];
		c->empty = w[C_EMPTY];
		c->max_backlog = w[C_MAX_BACKLOG];
		c->since = (int64_t)w[C_SINCE];
		return 0;
	}
	errno = EAGAIN;
	return -1;
}

/* Make c current in map (the stream lock held). */
static void
ctr_store(uint64_t *map, const struct stream_counters *c)
{
	uint64_t gen = __atomic_load_n(&map[W_GEN], __ATOMIC_RELAXED) + 1;
	uint64_t *slot = ctr_slot(map, gen);
	const uint64_t w[CTR_SLOT_WORDS] = { c->head, c->records, c->bytes,
	    c->rejected, c->empty, c->max_backlog, (uint64_t)c->since, 0 };
	int i;

	for (i = 0; i < CTR_SLOT_WORDS; i++)
		__atomic_store_n(&slot[i], w[i], __ATOMIC_RELAXED);
	__atomic_store_n(&map[W_GEN], gen, __ATOMIC_RELEASE);
}

int
stream_counters_read(const char *dir, struct stream_counters *c,
    struct error *e)
{
	char path[PATH_MAX + 16];
	uint64_t *map;
	int rc;

	memset(c, 0, sizeof(*c));
	snprintf(path, sizeof(path), "%s/%s", dir, COUNTERS_FILE);
	if ((map = counters_file_map(path, CTR_BYTES, CTR_MAGIC, 0, 0,
	    NULL)) == NULL) {
		if (errno == ENOENT)
			return 1;
		return error_errno(e, errno == EINVAL ? EXIT_DATAERR :
		    EXIT_IOERR, "%s: not a counters file", path);
	}
	rc = ctr_load(map, c);
	munmap(map, CTR_BYTES);
	if (rc == -1)
		return error_errno(e, EXIT_TEMPFAIL, "%s", path);
	return rc;
}

/*
 * The stream's counters mapped (with the lock held): the mapping is kept
 * across batches and checked to be the file's still (one fstat); a
 * missing file is created, a damaged one started afresh.  NULL when it
 * cannot be: then nothing is counted, and the next holder makes it good.
 */
static uint64_t *
ctr_get(struct stream *s)
{
	char path[PATH_MAX + 16];
	struct stat st;

	if (s->ctrmap != NULL) {
		if (fstat(s->ctrfd, &st) == 0 && st.st_nlink > 0 &&
		    st.st_size >= CTR_BYTES)
			return s->ctrmap;
		munmap(s->ctrmap, CTR_BYTES);
		close(s->ctrfd);
		s->ctrmap = NULL;
		s->ctrfd = -1;
	}
	snprintf(path, sizeof(path), "%s/%s", s->dir, COUNTERS_FILE);
	if ((s->ctrmap = counters_file_map(path, CTR_BYTES, CTR_MAGIC, 1, 1,
	    &s->ctrfd)) == NULL)
		s->ctrfd = -1;
	return s->ctrmap;
}

int
stream_counters_flush(struct stream *s, struct error *e)
{
	if (!s->ctr_dirty)
		return 0;
	if (s->ctrmap == NULL)
		return error_set(e, EXIT_CANTCREAT, "%s: %s: cannot be kept",
		    s->name, COUNTERS_FILE);
	ctr_store(s->ctrmap, &s->ctr);
	s->ctr_dirty = 0;
	return 0;
}

/*
 * Count the records (newlines) of the stream's bytes [from, to), read
 * from its plain segments.  Bytes in a compressed or expired segment are
 * not counted (see struct stream_counters).  Only the bytes a killed
 * writer left uncounted are ever read: normally none.
 */
static uint64_t
count_range(const char *dir, uint64_t from, uint64_t to)
{
	struct segment_list l;
	struct error ignored;
	char name[64], path[PATH_MAX + 64], block[65536];
	uint64_t count = 0;
	size_t i;

	if (from >= to || segments_list(dir, &l, &ignored) == -1)
		return 0;
	for (i = 0; i < l.n; i++) {
		uint64_t lo = l.v[i].base, hi = i + 1 < l.n ? l.v[i + 1].base :
		    UINT64_MAX, pos;
		int fd;

		if (hi <= from || lo >= to || l.v[i].gz)
			continue;
		segment_name(name, sizeof(name), lo, 0);
		snprintf(path, sizeof(path), "%s/%s", dir, name);
		if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
			continue;
		for (pos = from > lo ? from : lo; pos < to && pos < hi;) {
			uint64_t want = (to < hi ? to : hi) - pos;
			ssize_t r;
			if (want > sizeof(block))
				want = sizeof(block);
			r = pread_full(fd, block, (size_t)want, (off_t)(pos - lo));
			if (r <= 0)
				break;
			count += records_count(block, (size_t)r);
			pos += (uint64_t)r;
		}
		close(fd);
	}
	segments_free(&l);
	return count;
}

/*
 * With the lock held and head the stream's real head: load the counters
 * and bring them up to head (records a killed writer left uncounted).
 */
static void
counters_reconcile(struct stream *s, uint64_t head)
{
	struct stream_counters *c = &s->ctr;
	uint64_t *map = ctr_get(s);
	struct error ignored;

	s->ctr_dirty = 0;
	if (map == NULL || ctr_load(map, c) != 0) {
		/*
		 * None yet: counting begins at the head, 0 for a new stream.
		 * Saved now, before anything is appended, so that the next
		 * holder counts what this one may leave uncounted if it dies.
		 */
		memset(c, 0, sizeof(*c));
		c->head = head;
		c->since = (int64_t)time(NULL);
		s->ctr_dirty = 1;
		(void)stream_counters_flush(s, &ignored);
	}
	if (c->head < head) {
		c->records += count_range(s->dir, c->head, head);
		c->bytes += head - c->head;
		c->head = head;
		s->ctr_dirty = 1;
	} else if (c->head > head) {
		/* records counted are gone (a machine crash): never uncount */
		c->head = head;
		s->ctr_dirty = 1;
	}
	if (s->max_backlog != UINT64_MAX && c->max_backlog != s->max_backlog) {
		c->max_backlog = s->max_backlog;
		s->ctr_dirty = 1;
	}
}

/* Records and bytes that landed at the head, under the lock. */
static void
counters_add(struct stream *s, uint64_t records, uint64_t bytes)
{
	if (bytes == 0)
		return;
	s->ctr.records += records;
	s->ctr.bytes += bytes;
	s->ctr.head += bytes;
	s->ctr_dirty = 1;
}

void
stream_count_lines(struct stream *s, uint64_t rejected, uint64_t empty)
{
	if (rejected == 0 && empty == 0)
		return;
	s->ctr.rejected += rejected;
	s->ctr.empty += empty;
	s->ctr_dirty = 1;
}

int
stream_lock(struct stream *s, struct error *e)
{
	struct stat st;

	if (lock_take(s->lockfd, LOCK_KIND_FCNTL, 1, -1) == -1)
		return error_errno(e, EXIT_IOERR, "%s: lock", s->name);
	s->locked = 1;
	if (s->segfd != -1 && (fstat(s->segfd, &st) == -1 ||
	    (st.st_mode & 0222) == 0 || st.st_nlink == 0)) {
		close(s->segfd);
		s->segfd = -1;
	}
	if ((s->segfd == -1 && find_active(s, e) == -1) ||
	    repair_tail(s, e) == -1) {
		s->ctr_dirty = 0;
		stream_unlock(s);
		return -1;
	}
	counters_reconcile(s, s->base + s->size);
	return 0;
}

int
stream_lock_counters(struct stream *s, struct error *e)
{
	uint64_t head = 0;

	if (lock_take(s->lockfd, LOCK_KIND_FCNTL, 1, -1) == -1)
		return error_errno(e, EXIT_IOERR, "%s: lock", s->name);
	s->locked = 1;
	if (stream_head(s->dir, &head, NULL, e) == -1) {
		s->ctr_dirty = 0;
		stream_unlock(s);
		return error_wrap(e, "%s", s->name);
	}
	counters_reconcile(s, head);
	return 0;
}

/* --- paused --------------------------------------------------------------- */

int
stream_pause(struct stream *s, int on, struct error *e)
{
	char path[PATH_MAX + 16];

	if (!on) {
		if (s->pausefd != -1)
			lock_release(s->pausefd, LOCK_KIND_FCNTL);
		return 0;
	}
	if (s->pausefd == -1) {
		snprintf(path, sizeof(path), "%s/%s", s->dir, PAUSE_FILE);
		if ((s->pausefd = lock_open(path)) == -1)
			return error_errno(e, error_code_for_errno(errno), "%s",
			    path);
	}
	/* shared: any number of paused writers; nobody takes it exclusively */
	if (lock_take(s->pausefd, LOCK_KIND_FCNTL, 0, 0) == -1)
		return error_errno(e, EXIT_IOERR, "%s: pause lock", s->name);
	return 0;
}

int
stream_paused(const char *dir)
{
	char path[PATH_MAX + 16];
	int fd, rc;

	snprintf(path, sizeof(path), "%s/%s", dir, PAUSE_FILE);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
		return errno == ENOENT ? 0 : -1;
	rc = lock_held(fd);
	close(fd);
	return rc;
}

int
stream_append(struct stream *s, const char *data, size_t n, size_t *done,
    struct error *e)
{
	return stream_append_records(s, data, n, records_count(data, n), done,
	    e);
}

/* The append itself; *done is always set. */
static int
append(struct stream *s, const char *data, size_t n, size_t *done,
    struct error *e)
{
	struct stat st;
	uint64_t grown, keep;
	const char *nl;
	int saved;

	*done = 0;
	if (write_all(s->segfd, data, n) != -1) {
		s->size += n;
		*done = n;
		return 0;
	}
	saved = errno;
	error_errno(e, error_code_for_errno(saved), "%s: write", s->name);
	/* keep the whole records that landed, cut the torn rest */
	if (fstat(s->segfd, &st) == -1 || (uint64_t)st.st_size < s->size) {
		s->size = UINT64_MAX;
		return -1;
	}
	grown = (uint64_t)st.st_size - s->size;
	if (grown > n)
		grown = n;
	nl = grown > 0 ? memrchr(data, '\n', (size_t)grown) : NULL;
	keep = nl != NULL ? (uint64_t)(nl - data) + 1 : 0;
	if (ftruncate(s->segfd, (off_t)(s->size + keep)) == -1) {
		s->size = UINT64_MAX;	/* the next lock repairs it */
		return -1;
	}
	s->size += keep;
	*done = (size_t)keep;
	errno = saved;
	return -1;
}

int
stream_append_records(struct stream *s, const char *data, size_t n,
    uint64_t nrec, size_t *done, struct error *e)
{
	size_t landed;
	int rc = append(s, data, n, &landed, e);

	if (done != NULL)
		*done = landed;
	if (rc == 0)
		counters_add(s, nrec, n);
	else if (s->size != UINT64_MAX)
		counters_add(s, records_count(data, landed), landed);
	/* else: what landed is unknown; the next holder counts it */
	return rc;
}

int
stream_sync(struct stream *s, struct error *e)
{
	if (fdatasync_fd(s->segfd) == -1)
		return error_errno(e, EXIT_IOERR, "%s: fdatasync", s->name);
	return 0;
}

void
stream_writeback_start(struct stream *s, size_t n)
{
	if (s->segfd != -1 && n > 0 && n <= s->size)
		(void)sync_file_range(s->segfd, (off_t)(s->size - n), (off_t)n,
		    SYNC_FILE_RANGE_WRITE);
}

int
stream_seal(struct stream *s, uint64_t *sealed_base, uint64_t *sealed_size,
    struct error *e)
{
	uint64_t base = s->base, size = s->size;

	if (size == 0)
		return 0;
	if (fsync_fd(s->segfd) == -1)
		return error_errno(e, EXIT_IOERR, "%s: fsync", s->name);
	if (fchmod(s->segfd, SEALED_MODE) == -1)
		return error_errno(e, EXIT_IOERR, "%s: seal", s->name);
	if (create_segment(s, base + size, e) == -1)
		return -1;
	if (sealed_base != NULL)
		*sealed_base = base;
	if (sealed_size != NULL)
		*sealed_size = size;
	return 1;
}

void
stream_unlock(struct stream *s)
{
	if (s->locked) {
		struct error ignored;
		/* on failure the counters lag until a later holder saves them */
		(void)stream_counters_flush(s, &ignored);
		s->ctr_dirty = 0;
		lock_release(s->lockfd, LOCK_KIND_FCNTL);
		s->locked = 0;
	}
}

void
stream_close(struct stream *s)
{
	if (s == NULL)
		return;
	stream_unlock(s);
	if (s->segfd != -1)
		close(s->segfd);
	if (s->lockfd != -1)
		close(s->lockfd);
	if (s->pausefd != -1)
		close(s->pausefd);
	if (s->ctrmap != NULL)
		munmap(s->ctrmap, CTR_BYTES);
	if (s->ctrfd != -1)
		close(s->ctrfd);
	s->ctrmap = NULL;
	s->segfd = s->lockfd = s->pausefd = s->ctrfd = -1;
}

int
stream_head(const char *dir, uint64_t *head, uint64_t *first, struct error *e)
{
	struct segment_list l;
	char name[64], path[PATH_MAX + 64];
	struct segment top;
	struct stat st;
	uint64_t end;
	int fd;

	if (segments_list(dir, &l, e) == -1)
		return -1;
	if (l.n == 0) {
		*head = 0;
		if (first != NULL)
			*first = 0;
		return 0;
	}
	top = l.v[l.n - 1];
	if (first != NULL)
		*first = l.v[0].base;
	segments_free(&l);
	if (top.gz)
		return error_set(e, EXIT_DATAERR, "%s: the highest segment is "
		    "compressed", dir);
	segment_name(name, sizeof(name), top.base, 0);
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1) {
		if (errno == ENOENT)	/* raced with a seal: look again */
			return stream_head(dir, head, first, e);
		return error_errno(e, EXIT_IOERR, "%s", path);
	}
	if (fstat(fd, &st) == -1 ||
	    last_newline_end(fd, (uint64_t)st.st_size, &end) == -1) {
		error_errno(e, EXIT_IOERR, "%s", path);
		close(fd);
		return -1;
	}
	close(fd);
	*head = top.base + end;
	return 0;
}
