#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "buf.h"
#include "consumer.h"
#include "exitcode.h"
#include "follow.h"
#include "fsutil.h"
#include "json.h"
#include "reader.h"
#include "stream.h"

#define STATE_MAX	(64 * 1024)
#define DRAIN_QUIET_MS	500	/* a rotated file is finished after this long quiet */
#define POLL_MS		250	/* without inotify */

static volatile sig_atomic_t stop_flag;

static void
on_signal(int sig)
{
	(void)sig;
	stop_flag = 1;
}

void
follow_handle_signals(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
}

int
follow_stop_requested(void)
{
	return stop_flag != 0;
}

static int64_t
wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static uint64_t
fnv1a(const void *p, size_t n)
{
	const unsigned char *c = p;
	uint64_t h = 14695981039346656037ULL;
	size_t i;

	for (i = 0; i < n; i++) {
		h ^= c[i];
		h *= 1099511628211ULL;
	}
	return h;
}

/* The fingerprint of fd's first min(size, FOLLOW_FP_MAX) bytes. */
static int
fingerprint(int fd, uint64_t size, size_t *len, uint64_t *hash)
{
	unsigned char b[FOLLOW_FP_MAX];
	size_t want = size < FOLLOW_FP_MAX ? (size_t)size : FOLLOW_FP_MAX;
	ssize_t got = pread_full(fd, b, want, 0);

	if (got < 0)
		return -1;
	*len = (size_t)got;
	*hash = fnv1a(b, (size_t)got);
	return 0;
}

/* Nonzero when fd (of size) starts with the bytes of the fingerprint. */
static int
fp_matches(int fd, uint64_t size, size_t fp_len, uint64_t fp_hash)
{
	unsigned char b[FOLLOW_FP_MAX];

	if (fp_len == 0)
		return 1;
	if (size < fp_len || pread_full(fd, b, fp_len, 0) != (ssize_t)fp_len)
		return 0;
	return fnv1a(b, fp_len) == fp_hash;
}

int
follow_state_path(const char *streamdir, const char *path, char *buf, size_t n,
    struct error *e)
{
	const char *base = path_basename(path);
	char name[49];
	size_t i;

	for (i = 0; base[i] != '\0' && i + 1 < sizeof(name); i++) {
		char c = base[i];
		name[i] = ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-') ?
		    c : '_';
	}
	name[i] = '\0';
	if (name[0] == '.' || name[0] == '\0')
		name[0] = '_';
	if ((size_t)snprintf(buf, n, "%s/sources/%s.%016llx", streamdir, name,
	    (unsigned long long)fnv1a(path, strlen(path))) >= n)
		return error_set(e, EXIT_USAGE, "%s: path too long", path);
	return 0;
}

/* --- the position file ------------------------------------------------------ */

static void
json_path(struct buf *b, const char *s)
{
	size_t n = strlen(s);

	if (utf8_valid(s, n))
		buf_json_escape(b, s, n);
	else
		for (; *s != '\0'; s++)
			buf_putc(b, (*s & 0x80) || (unsigned char)*s < 0x20 ?
			    '?' : *s);
}

static int
save_state(struct follow *f, struct error *e)
{
	const struct follow_intent *p = &f->pending;
	struct buf b = BUF_INIT;
	char now[32];
	int rc;

	rfc3339_now(now, sizeof(now));
	buf_printf(&b, "{\"path\":\"");
	json_path(&b, f->path);
	buf_printf(&b, "\",\"file\":\"");
	json_path(&b, f->source);
	buf_printf(&b, "\",\"dev\":%llu,\"ino\":%llu,\"fp_len\":%zu,"
	    "\"fp_hash\":\"%016llx\",\"offset\":%llu,\"lines\":%llu,"
	    "\"replay_until\":%llu,\"updated\":\"%s\"",
	    (unsigned long long)f->dev, (unsigned long long)f->ino, f->fp_len,
	    (unsigned long long)f->fp_hash, (unsigned long long)f->offset,
	    (unsigned long long)f->lines, (unsigned long long)f->replay_until,
	    now);
	if (p->active)
		buf_printf(&b, ",\"pending\":{\"offset\":%llu,\"lines\":%llu,"
		    "\"at\":%llu,\"len\":%llu,\"crc\":%lu,\"first_len\":%llu,"
		    "\"first_crc\":%lu,\"rat\":%llu,\"rlen\":%llu,\"rcrc\":%lu,"
		    "\"rfirst_len\":%llu,\"rfirst_crc\":%lu}",
		    (unsigned long long)p->offset, (unsigned long long)p->lines,
		    (unsigned long long)p->at, (unsigned long long)p->len,
		    (unsigned long)p->crc, (unsigned long long)p->first_len,
		    (unsigned long)p->first_crc, (unsigned long long)p->rat,
		    (unsigned long long)p->rlen, (unsigned long)p->rcrc,
		    (unsigned long long)p->rfirst_len,
		    (unsigned long)p->rfirst_crc);
	if (buf_printf(&b, "}\n") == -1) {
		buf_release(&b);
		return error_errno(e, EXIT_SOFTWARE, "%s", f->state);
	}
	rc = atomic_replace(f->state, b.data, b.len, 0600, e);
	buf_release(&b);
	return rc;
}

static int
get_u64(json_t *o, const char *key, uint64_t *v)
{
	json_t *j = json_object_get(o, key);

	if (!json_is_integer(j) || json_integer_value(j) < 0)
		return -1;
	*v = (uint64_t)json_integer_value(j);
	return 0;
}

static int
get_u32(json_t *o, const char *key, uint32_t *v)
{
	uint64_t x;

	if (get_u64(o, key, &x) == -1 || x > UINT32_MAX)
		return -1;
	*v = (uint32_t)x;
	return 0;
}

/* Load the position; 0, 1 when there is none, -1 on error. */
static int
load_state(struct follow *f, struct error *e)
{
	struct follow_intent *p = &f->pending;
	json_t *root, *pend, *h;
	json_error_t je;
	uint64_t fpl;
	size_t n;
	char *text;
	int bad;

	if (read_file(f->state, STATE_MAX, &text, &n) == -1) {
		if (errno == ENOENT)
			return 1;
		return error_errno(e, EXIT_IOERR, "%s", f->state);
	}
	root = json_loadb(text, n, 0, &je);
	free(text);
	if (root == NULL)
		return error_set(e, EXIT_DATAERR, "%s: invalid JSON: %s",
		    f->state, je.text);
	h = json_object_get(root, "fp_hash");
	bad = get_u64(root, "dev", &f->dev) == -1 ||
	    get_u64(root, "ino", &f->ino) == -1 ||
	    get_u64(root, "fp_len", &fpl) == -1 || fpl > FOLLOW_FP_MAX ||
	    !json_is_string(h) ||
	    get_u64(root, "offset", &f->offset) == -1 ||
	    get_u64(root, "lines", &f->lines) == -1 ||
	    get_u64(root, "replay_until", &f->replay_until) == -1;
	if (!bad) {
		f->fp_len = (size_t)fpl;
		f->fp_hash = strtoull(json_string_value(h), NULL, 16);
	}
	if (!bad && (pend = json_object_get(root, "pending")) != NULL) {
		p->active = 1;
		bad = get_u64(pend, "offset", &p->offset) == -1 ||
		    get_u64(pend, "lines", &p->lines) == -1 ||
		    get_u64(pend, "at", &p->at) == -1 ||
		    get_u64(pend, "len", &p->len) == -1 ||
		    get_u32(pend, "crc", &p->crc) == -1 ||
		    get_u64(pend, "first_len", &p->first_len) == -1 ||
		    get_u32(pend, "first_crc", &p->first_crc) == -1 ||
		    get_u64(pend, "rat", &p->rat) == -1 ||
		    get_u64(pend, "rlen", &p->rlen) == -1 ||
		    get_u32(pend, "rcrc", &p->rcrc) == -1 ||
		    get_u64(pend, "rfirst_len", &p->rfirst_len) == -1 ||
		    get_u32(pend, "rfirst_crc", &p->rfirst_crc) == -1;
	}
	json_decref(root);
	if (bad)
		return error_set(e, EXIT_DATAERR, "%s: not a follow position "
		    "file", f->state);
	return 0;
}

/* --- finding what landed -------------------------------------------------- */

static uint32_t
crc(const void *p, size_t n)
{
	return (uint32_t)crc32_z(0, p, n);
}

/*
 * Whether len bytes with CRC c, whose first record is first_len bytes
 * with CRC fc, are in the stream at dir, starting at a record boundary at
 * or after offset at.  Returns 1 (they are), 0 (they are not), -1 (it
 * cannot be told: the data there has been expired, or cannot be read).
 */
static int
landed(const char *dir, uint64_t at, uint64_t len, uint32_t c,
    uint64_t first_len, uint32_t fc, struct error *e)
{
	struct buf w = BUF_INIT;
	struct reader *r;
	size_t start = 0;
	uint64_t lost;
	int result = 0, more = 1;

	if (len == 0)
		return 1;
	if (dir[0] == '\0')
		return 0;
	if (reader_open(&r, dir, at, &lost, e) == -1) {
		if (lost > 0 || e->code != EXIT_DATAERR)
			return -1;
		return 0;	/* the stream ends before at: it did not land */
	}
	while (result == 0) {
		/* test each record that starts in the window */
		while (start < w.len) {
			char *p = w.data + start;
			size_t avail = w.len - start;
			char *nl = memchr(p, '\n', avail);
			size_t rl = nl != NULL ? (size_t)(nl - p) + 1 : avail;
			if (rl == first_len && crc(p, rl) == fc) {
				if (avail < len)
					break;	/* read on, then decide */
				if (crc(p, (size_t)len) == c) {
					result = 1;
					break;
				}
			}
			start += rl;
		}
		if (result != 0)
			break;
		buf_consume(&w, start);
		start = 0;
		if (!more)
			break;
		const char *data;
		size_t dlen, nrec;
		int rc = reader_next(r, 0, &data, &dlen, &nrec, e);
		if (rc == -1) {
			result = -1;
			break;
		}
		if (rc == 0)
			more = 0;
		else if (buf_append(&w, data, dlen) == -1) {
			result = error_errno(e, EXIT_SOFTWARE, "%s", dir);
			break;
		}
	}
	reader_free(r);
	buf_release(&w);
	return result;
}

/* --- files ---------------------------------------------------------------- */

static void
note(struct follow *f, int warn, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
note(struct follow *f, int warn, const char *fmt, ...)
{
	va_list ap;

	if (f->warn && f->note[0] != '\0' && !warn)
		return;		/* a warning not yet reported wins */
	va_start(ap, fmt);
	vsnprintf(f->note, sizeof(f->note), fmt, ap);
	va_end(ap);
	f->warn = warn;
}

static void
close_file(struct follow *f)
{
	if (f->fd != -1)
		close(f->fd);
	f->fd = -1;
}

/* Take fd as the file read from now on, with its identity. */
static void
adopt(struct follow *f, int fd, const struct stat *st, const char *name)
{
	close_file(f);
	f->fd = fd;
	f->dev = (uint64_t)st->st_dev;
	f->ino = (uint64_t)st->st_ino;
	f->last_size = (uint64_t)st->st_size;
	snprintf(f->source, sizeof(f->source), "%s",
	    strcmp(name, f->path) == 0 ? f->given : name);
}

/*
 * Switch to the file now at the path, from its start (or to no file when
 * there is none yet), and save that position.
 */
static int
switch_to_path(struct follow *f, struct error *e)
{
	struct stat st;
	int fd;

	close_file(f);
	f->dev = f->ino = 0;
	f->fp_len = 0;
	f->fp_hash = 0;
	f->offset = f->rpos = f->lines = 0;
	f->replay_until = 0;
	f->draining = 0;
	f->last_size = 0;
	snprintf(f->source, sizeof(f->source), "%s", f->given);
	if ((fd = open(f->path, O_RDONLY | O_CLOEXEC | O_NOCTTY)) != -1) {
		if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode))
			adopt(f, fd, &st, f->path);
		else
			close(fd);
	}
	return save_state(f, e);
}

/*
 * Look in the file's directory for another regular file holding the
 * content read so far: the same inode (a rename), or, with by_content, a
 * name starting with the base name whose first bytes match the
 * fingerprint and that is at least minsize long (a copy).  Returns an
 * open descriptor with *st and its path in found, or -1.
 */
static int
find_old(struct follow *f, int by_content, uint64_t minsize, struct stat *st,
    char *found, size_t n)
{
	size_t blen = strlen(f->base);
	struct dirent *de;
	int64_t best_mtime = INT64_MIN;
	int best = -1;
	DIR *d;

	if ((d = opendir(f->dir)) == NULL)
		return -1;
	while ((de = readdir(d)) != NULL) {
		char p[PATH_MAX];
		struct stat s;
		int fd;

		if (strcmp(de->d_name, f->base) == 0 || de->d_name[0] == '.')
			continue;
		if (by_content && (strncmp(de->d_name, f->base, blen) != 0 ||
		    strchr(".-_", de->d_name[blen]) == NULL ||
		    de->d_name[blen] == '\0'))
			continue;
		if ((size_t)snprintf(p, sizeof(p), "%s/%s", f->dir, de->d_name) >=
		    sizeof(p))
			continue;
		if (lstat(p, &s) == -1 || !S_ISREG(s.st_mode))
			continue;
		if (!by_content && ((uint64_t)s.st_dev != f->dev ||
		    (uint64_t)s.st_ino != f->ino))
			continue;
		if (by_content && ((uint64_t)s.st_size < minsize ||
		    ((uint64_t)s.st_dev == f->dev && (uint64_t)s.st_ino == f->ino)))
			continue;
		if ((fd = open(p, O_RDONLY | O_CLOEXEC | O_NOCTTY)) == -1)
			continue;
		if (!fp_matches(fd, (uint64_t)s.st_size, f->fp_len, f->fp_hash) ||
		    (int64_t)s.st_mtime < best_mtime) {
			close(fd);
			continue;
		}
		if (best != -1)
			close(best);
		best = fd;
		best_mtime = (int64_t)s.st_mtime;
		*st = s;
		snprintf(found, n, "%s", p);
	}
	closedir(d);
	return best;
}

/*
 * The content at the read position is gone from the file being read
 * (truncated, or rewritten): finish it from a copy if one is found,
 * otherwise start the file again from its beginning, saying what was lost.
 */
static int
truncated(struct follow *f, uint64_t size, struct error *e)
{
	char found[PATH_MAX];
	struct stat st;
	int fd;

	if (f->rpos > 0 && f->fp_len > 0 &&
	    (fd = find_old(f, 1, f->rpos, &st, found, sizeof(found))) != -1) {
		note(f, 0, "%s: truncated; finishing its copy %s from offset "
		    "%llu", f->given, found, (unsigned long long)f->rpos);
		adopt(f, fd, &st, found);
		f->draining = 1;
		return save_state(f, e);
	}
	if (f->last_size > f->rpos)
		note(f, 1, "%s: truncated with %llu bytes not yet read and no "
		    "copy of them found; reading it from its start", f->given,
		    (unsigned long long)(f->last_size - f->rpos));
	else
		note(f, 0, "%s: truncated; reading it from its start", f->given);
	if (f->draining)
		return switch_to_path(f, e);
	f->offset = f->rpos = f->lines = 0;
	f->replay_until = 0;
	f->fp_len = 0;
	f->fp_hash = 0;
	f->last_size = size;
	return save_state(f, e);
}

int
follow_open(struct follow *f, const char *streamdir, const char *rejdir,
    const char *path, enum lock_kind k, struct error *e)
{
	char dir[PATH_MAX], real[PATH_MAX], found[PATH_MAX], sub[PATH_MAX + 16];
	struct follow_intent *p = &f->pending;
	struct stat st;
	int fd, rc;

	memset(f, 0, sizeof(*f));
	f->fd = f->ifd = -1;
	f->lock = k;
	path_dirname(path, dir, sizeof(dir));
	if (realpath(dir, real) == NULL)
		return error_errno(e, errno == ENOENT ? EXIT_NOINPUT : EXIT_IOERR,
		    "%s", dir);
	if ((size_t)snprintf(f->path, sizeof(f->path), "%s%s%s",
	    strcmp(real, "/") == 0 ? "" : real, "/", path_basename(path)) >=
	    sizeof(f->path) || path_basename(path)[0] == '\0')
		return error_set(e, EXIT_USAGE, "%s: not a file name", path);
	snprintf(f->dir, sizeof(f->dir), "%s", real);
	f->base = path_basename(f->path);
	snprintf(f->given, sizeof(f->given), "%s", path);
	snprintf(f->source, sizeof(f->source), "%s", path);
	snprintf(f->streamdir, sizeof(f->streamdir), "%s", streamdir);
	snprintf(f->rejdir, sizeof(f->rejdir), "%s", rejdir ? rejdir : "");
	snprintf(sub, sizeof(sub), "%s/sources", streamdir);
	if (mkdir_p(sub, 0700) == -1)
		return error_errno(e, error_code_for_errno(errno), "%s", sub);
	if (follow_state_path(streamdir, f->path, f->state, sizeof(f->state),
	    e) == -1)
		return -1;
	if ((f->ifd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC)) != -1 &&
	    inotify_add_watch(f->ifd, f->dir, IN_MODIFY | IN_CREATE |
	    IN_MOVED_FROM | IN_MOVED_TO | IN_DELETE | IN_CLOSE_WRITE |
	    IN_ATTRIB) == -1) {
		close(f->ifd);
		f->ifd = -1;
	}

	if ((rc = load_state(f, e)) == -1)
		return -1;
	if (rc == 1)
		return switch_to_path(f, e);

	/* a batch was being appended: did it land? */
	if (p->active) {
		int m = landed(streamdir, p->at, p->len, p->crc, p->first_len,
		    p->first_crc, e);
		int r = m == 1 ? landed(f->rejdir, p->rat, p->rlen, p->rcrc,
		    p->rfirst_len, p->rfirst_crc, e) : 0;
		if (m == 1 && r == 1) {
			f->offset = p->offset;
			f->lines = p->lines;
		} else if (m == 1)
			f->replay_until = p->offset;	/* only its rejects */
		p->active = 0;
		if (save_state(f, e) == -1)
			return -1;
	}

	/* find the file the position is in */
	f->rpos = f->offset;
	if ((fd = open(f->path, O_RDONLY | O_CLOEXEC | O_NOCTTY)) != -1) {
		if (fstat(fd, &st) == 0 && (uint64_t)st.st_dev == f->dev &&
		    (uint64_t)st.st_ino == f->ino &&
		    fp_matches(fd, (uint64_t)st.st_size, f->fp_len, f->fp_hash) &&
		    (uint64_t)st.st_size >= f->offset) {
			adopt(f, fd, &st, f->path);
			return 0;
		}
		close(fd);
	}
	if (f->dev != 0 || f->ino != 0) {
		if ((fd = find_old(f, 0, 0, &st, found, sizeof(found))) != -1 &&
		    (uint64_t)st.st_size >= f->offset) {
			note(f, 0, "%s: rotated; finishing %s from offset %llu",
			    f->given, found, (unsigned long long)f->offset);
			adopt(f, fd, &st, found);
			f->draining = 1;
			return 0;
		}
		if (fd != -1)
			close(fd);
		if (f->offset > 0 && f->fp_len > 0 && (fd = find_old(f, 1,
		    f->offset, &st, found, sizeof(found))) != -1) {
			note(f, 0, "%s: rotated; finishing its copy %s from "
			    "offset %llu", f->given, found,
			    (unsigned long long)f->offset);
			adopt(f, fd, &st, found);
			f->dev = (uint64_t)st.st_dev;
			f->ino = (uint64_t)st.st_ino;
			f->draining = 1;
			return save_state(f, e);
		}
		if (f->offset > 0)
			note(f, 1, "%s: the file read up to offset %llu is "
			    "gone and no copy of it was found (anything written "
			    "to it after that offset is lost); reading the file "
			    "now there from its start", f->given,
			    (unsigned long long)f->offset);
	}
	return switch_to_path(f, e);
}

ssize_t
follow_read(struct follow *f, char *buf, size_t room, int *flags,
    struct error *e)
{
	int round;

	*flags = 0;
	for (round = 0; round < 8; round++) {
		struct stat st, ps;
		uint64_t size, limit, n;
		ssize_t got;
		char *nl;
		int quiet;

		if (f->fd == -1) {
			struct stat s2;
			int fd = open(f->path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
			if (fd == -1)
				return 0;	/* not there (yet) */
			if (fstat(fd, &s2) == -1 || !S_ISREG(s2.st_mode)) {
				close(fd);
				return 0;
			}
			adopt(f, fd, &s2, f->path);
			f->last_size = 0;
		}
		if (lock_take(f->fd, f->lock, 0, -1) == -1)
			return error_errno(e, EXIT_IOERR, "%s: lock", f->source);
		if (fstat(f->fd, &st) == -1) {
			lock_release(f->fd, f->lock);
			return error_errno(e, EXIT_IOERR, "%s", f->source);
		}
		size = (uint64_t)st.st_size;
		if (!f->draining && (stat(f->path, &ps) == -1 ||
		    (uint64_t)ps.st_dev != f->dev ||
		    (uint64_t)ps.st_ino != f->ino)) {
			f->draining = 1;
			note(f, 0, "%s: rotated; finishing the old file from "
			    "offset %llu", f->given, (unsigned long long)f->rpos);
		}
		if (size < f->rpos ||
		    !fp_matches(f->fd, size, f->fp_len, f->fp_hash)) {
			lock_release(f->fd, f->lock);
			if (truncated(f, size, e) == -1)
				return -1;
			continue;
		}
		if (f->fp_len < FOLLOW_FP_MAX && size > f->fp_len &&
		    fingerprint(f->fd, size, &f->fp_len, &f->fp_hash) == -1) {
			lock_release(f->fd, f->lock);
			return error_errno(e, EXIT_IOERR, "%s", f->source);
		}
		limit = size;
		if (f->replay_until > f->rpos && limit > f->replay_until)
			limit = f->replay_until;
		n = limit - f->rpos;
		if (n > room)
			n = room;
		f->last_size = size;
		got = n > 0 ? pread_full(f->fd, buf, (size_t)n, (off_t)f->rpos) : 0;
		lock_release(f->fd, f->lock);
		if (got < 0)
			return error_errno(e, EXIT_IOERR, "%s: read", f->source);
		n = (uint64_t)got;
		nl = n > 0 ? memrchr(buf, '\n', (size_t)n) : NULL;
		/* a rotated file is done once nothing whole is left and it
		 * has not been written to for a while (by its mtime, so that
		 * a restart need not wait again) */
		quiet = f->draining && nl == NULL && n < room &&
		    wall_ms() - ((int64_t)st.st_mtim.tv_sec * 1000 +
		    st.st_mtim.tv_nsec / 1000000) >= DRAIN_QUIET_MS;
		if (n == 0) {
			if (quiet) {
				/* finished: on to the file now at the path */
				if (switch_to_path(f, e) == -1)
					return -1;
				note(f, 0, "%s: finished the old file; reading the "
				    "new one from its start", f->given);
				continue;
			}
			return 0;
		}
		if (nl == NULL) {
			if (n == room)
				*flags |= FOLLOW_LONG;
			else if (quiet)
				*flags |= FOLLOW_FINAL;
			else
				return 0;	/* the rest of the line is coming */
		} else
			n = (uint64_t)(nl - buf) + 1;
		f->rpos += n;
		if (f->replay_until > 0 && f->rpos <= f->replay_until)
			*flags |= FOLLOW_REPLAY;
		return (ssize_t)n;
	}
	return 0;
}

int
follow_intent(struct follow *f, const struct follow_batch *b, struct error *e)
{
	struct follow_intent *p = &f->pending;
	const char *nl;

	memset(p, 0, sizeof(*p));
	p->active = 1;
	p->offset = f->rpos;
	p->lines = b->lines;
	if (b->nrecords > 0) {
		if (stream_head(f->streamdir, &p->at, NULL, e) == -1)
			return -1;
		p->len = b->nrecords;
		p->crc = crc(b->records, b->nrecords);
		nl = memchr(b->records, '\n', b->nrecords);
		p->first_len = nl ? (uint64_t)(nl - b->records) + 1 : b->nrecords;
		p->first_crc = crc(b->records, (size_t)p->first_len);
	}
	if (b->nrejects > 0 && f->rejdir[0] != '\0') {
		if (stream_head(f->rejdir, &p->rat, NULL, e) == -1)
			return -1;
		p->rlen = b->nrejects;
		p->rcrc = crc(b->rejects, b->nrejects);
		nl = memchr(b->rejects, '\n', b->nrejects);
		p->rfirst_len = nl ? (uint64_t)(nl - b->rejects) + 1 :
		    b->nrejects;
		p->rfirst_crc = crc(b->rejects, (size_t)p->rfirst_len);
	}
	return save_state(f, e);
}

int
follow_commit(struct follow *f, uint64_t lines, struct error *e)
{
	f->offset = f->rpos;
	f->lines = lines;
	f->pending.active = 0;
	if (f->replay_until <= f->offset)
		f->replay_until = 0;
	return save_state(f, e);
}

void
follow_wait(struct follow *f, int timeout_ms)
{
	char ev[4096];

	if (f->draining && timeout_ms > 100)
		timeout_ms = 100;
	if (f->ifd == -1) {
		struct timespec ts;
		if (timeout_ms > POLL_MS)
			timeout_ms = POLL_MS;
		ts.tv_sec = timeout_ms / 1000;
		ts.tv_nsec = (long)(timeout_ms % 1000) * 1000000;
		nanosleep(&ts, NULL);
		return;
	}
	struct pollfd pfd = { f->ifd, POLLIN, 0 };
	if (poll(&pfd, 1, timeout_ms) > 0)
		while (read(f->ifd, ev, sizeof(ev)) > 0)
			;
}

void
follow_close(struct follow *f)
{
	if (f == NULL)
		return;
	close_file(f);
	if (f->ifd != -1)
		close(f->ifd);
	f->ifd = -1;
}
