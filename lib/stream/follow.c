#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "base/buf.h"
#include "base/clock.h"
#include "base/exitcode.h"
#include "base/fsutil.h"
#include "format/json.h"
#include "format/jsonget.h"
#include "consumer.h"
#include "follow.h"
#include "reader.h"
#include "stream.h"

#define STATE_MAX	(16 * 1024 * 1024)
#define SCAN_SLACK_MS	2000	/* a new sibling may be this much older than the last scan */
#define RESCAN_MS	1000	/* when idle, look at the directory this often */
#define DRAIN_QUIET_MS	500	/* a rotated file is finished after this long quiet */
#define POLL_MS		250	/* without inotify */
#define FP_PREFIX_MIN	64	/* a fingerprint this long names a content */

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

/* --- the chain in memory ---------------------------------------------------- */

static struct follow_file *
file_add(struct follow *f, size_t at)
{
	struct follow_file *nv;

	if (f->nfiles == f->cap) {
		size_t cap = f->cap ? f->cap * 2 : 8;
		if ((nv = realloc(f->files, cap * sizeof(*nv))) == NULL)
			return NULL;
		f->files = nv;
		f->cap = cap;
	}
	memmove(&f->files[at + 1], &f->files[at],
	    (f->nfiles - at) * sizeof(*f->files));
	f->nfiles++;
	memset(&f->files[at], 0, sizeof(f->files[at]));
	if (f->cur >= at && f->cur < f->nfiles - 1)
		f->cur++;
	return &f->files[at];
}

static void
file_remove(struct follow *f, size_t at)
{
	memmove(&f->files[at], &f->files[at + 1],
	    (f->nfiles - at - 1) * sizeof(*f->files));
	f->nfiles--;
	if (f->cur > at)
		f->cur--;
}

/* Copy the current file's fields into its chain entry. */
static void
cur_store(struct follow *f)
{
	struct follow_file *c;

	if (f->cur >= f->nfiles)
		return;
	c = &f->files[f->cur];
	c->dev = f->dev;
	c->ino = f->ino;
	c->fp_hash = f->fp_hash;
	c->fp_len = f->fp_len;
	c->offset = f->offset;
	c->lines = f->lines;
	if (f->last_size > c->size)
		c->size = f->last_size;
	if (strcmp(f->source, f->given) != 0 && f->source[0] == '/')
		snprintf(c->name, sizeof(c->name), "%s", f->source);
}

/* Make the first unfinished entry the current file (not yet opened). */
static void
cur_load(struct follow *f)
{
	struct follow_file *c;

	for (f->cur = 0; f->cur < f->nfiles && f->files[f->cur].done; f->cur++)
		;
	f->dev = f->ino = 0;
	f->fp_len = 0;
	f->fp_hash = 0;
	f->offset = f->rpos = f->lines = 0;
	f->last_size = 0;
	f->draining = 0;
	if (f->cur >= f->nfiles)
		return;
	c = &f->files[f->cur];
	f->dev = c->dev;
	f->ino = c->ino;
	f->fp_hash = c->fp_hash;
	f->fp_len = c->fp_len;
	f->offset = f->rpos = c->offset;
	f->lines = c->lines;
	f->last_size = c->size;
}

uint64_t
follow_lines(const struct follow *f)
{
	return f->lines;
}

/* --- the position file ------------------------------------------------------ */

/*
 * Replace the position file: the current file's position at the top
 * level (what lib/state/stateview reads), the cumulative counters, the chain
 * and the losses not yet reported.
 */
static int
save_state(struct follow *f, struct error *e)
{
	const struct follow_intent *p = &f->pending;
	struct buf b = BUF_INIT;
	char now[32];
	size_t i;
	int rc;

	cur_store(f);
	clock_rfc3339_now(now, sizeof(now));
	buf_printf(&b, "{\"path\":\"");
	json_escape_name(&b, f->path);
	buf_printf(&b, "\",\"file\":\"");
	json_escape_name(&b, f->source);
	buf_printf(&b, "\",\"dev\":%llu,\"ino\":%llu,\"fp_len\":%zu,"
	    "\"fp_hash\":\"%016llx\",\"offset\":%llu,\"lines\":%llu,"
	    "\"replay_until\":%llu,\"lines_total\":%llu,"
	    "\"lost_bytes_total\":%llu,\"seen_ms\":%lld,\"updated\":\"%s\"",
	    (unsigned long long)f->dev, (unsigned long long)f->ino, f->fp_len,
	    (unsigned long long)f->fp_hash, (unsigned long long)f->offset,
	    (unsigned long long)f->lines, (unsigned long long)f->replay_until,
	    (unsigned long long)f->lines_total,
	    (unsigned long long)f->lost_total, (long long)f->seen_ms, now);
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
	buf_printf(&b, ",\"files\":[");
	for (i = 0; i < f->nfiles; i++) {
		const struct follow_file *c = &f->files[i];
		buf_printf(&b, "%s{\"name\":\"", i ? "," : "");
		json_escape_name(&b, c->name);
		buf_printf(&b, "\",\"dev\":%llu,\"ino\":%llu,\"fp_len\":%zu,"
		    "\"fp_hash\":\"%016llx\",\"offset\":%llu,\"lines\":%llu,"
		    "\"size\":%llu,\"mtime_ms\":%lld,\"done\":%s,\"gz\":%s%s}",
		    (unsigned long long)c->dev, (unsigned long long)c->ino,
		    c->fp_len, (unsigned long long)c->fp_hash,
		    (unsigned long long)c->offset, (unsigned long long)c->lines,
		    (unsigned long long)c->size, (long long)c->mtime_ms,
		    c->done ? "true" : "false", c->gz ? "true" : "false",
		    c->finished ? ",\"finished\":true" : "");
	}
	buf_printf(&b, "],\"losses\":[");
	for (i = 0; i < f->nlosses; i++) {
		buf_printf(&b, "%s{\"file\":\"", i ? "," : "");
		json_escape_name(&b, f->losses[i].file);
		buf_printf(&b, "\",\"bytes\":%llu}",
		    (unsigned long long)f->losses[i].bytes);
	}
	if (buf_printf(&b, "]}\n") == -1) {
		buf_release(&b);
		return error_errno(e, EXIT_SOFTWARE, "%s", f->state);
	}
	rc = atomic_replace(f->state, b.data, b.len, 0600, e);
	buf_release(&b);
	return rc;
}

static int
get_u32(json_t *o, const char *key, uint32_t *v)
{
	uint64_t x;

	if (jsonget_u64(o, key, &x) == -1 || x > UINT32_MAX)
		return -1;
	*v = (uint32_t)x;
	return 0;
}

/* One entry of "files" (or the top level of an older position file). */
static int
get_file(json_t *o, struct follow_file *c)
{
	json_t *h = json_object_get(o, "fp_hash"), *j;
	uint64_t fpl;

	if (jsonget_u64(o, "dev", &c->dev) == -1 ||
	    jsonget_u64(o, "ino", &c->ino) == -1 ||
	    jsonget_u64(o, "fp_len", &fpl) == -1 || fpl > FOLLOW_FP_MAX ||
	    !json_is_string(h) || jsonget_u64(o, "offset", &c->offset) == -1 ||
	    jsonget_u64(o, "lines", &c->lines) == -1)
		return -1;
	c->fp_len = (size_t)fpl;
	c->fp_hash = strtoull(json_string_value(h), NULL, 16);
	(void)jsonget_u64(o, "size", &c->size);
	if (json_is_integer(j = json_object_get(o, "mtime_ms")))
		c->mtime_ms = (int64_t)json_integer_value(j);
	c->done = json_is_true(json_object_get(o, "done"));
	c->gz = json_is_true(json_object_get(o, "gz"));
	c->finished = c->done && json_is_true(json_object_get(o, "finished"));
	if (json_is_string(j = json_object_get(o, "name")))
		snprintf(c->name, sizeof(c->name), "%s", json_string_value(j));
	return 0;
}

/* The chain of a position file: 0, 1 when it is damaged, -1 (errno)
 * when out of memory. */
static int
get_files(struct follow *f, json_t *root)
{
	json_t *files = json_object_get(root, "files");
	struct follow_file *c;
	size_t i;

	if (!json_is_array(files)) {
		/* one file, at the top level */
		if ((c = file_add(f, 0)) == NULL)
			return -1;
		if (get_file(root, c) == -1)
			return 1;
		if (c->dev == 0 && c->ino == 0)
			file_remove(f, 0);
		return 0;
	}
	for (i = 0; i < json_array_size(files); i++) {
		if ((c = file_add(f, f->nfiles)) == NULL)
			return -1;
		if (get_file(json_array_get(files, i), c) == -1)
			return 1;
	}
	return 0;
}

/* The losses not yet reported, as get_files returns. */
static int
get_losses(struct follow *f, json_t *losses)
{
	struct follow_loss *nl;
	json_t *l, *fl;
	uint64_t bytes;
	size_t i;

	for (i = 0; json_is_array(losses) && i < json_array_size(losses);
	    i++) {
		l = json_array_get(losses, i);
		if (!json_is_string(fl = json_object_get(l, "file")) ||
		    jsonget_u64(l, "bytes", &bytes) == -1)
			return 1;
		if ((nl = realloc(f->losses, (f->nlosses + 1) *
		    sizeof(*nl))) == NULL)
			return -1;
		f->losses = nl;
		snprintf(nl[f->nlosses].file, sizeof(nl->file), "%s",
		    json_string_value(fl));
		nl[f->nlosses++].bytes = bytes;
	}
	return 0;
}

/* The intent of a batch not yet committed; -1 when it is damaged. */
static int
get_pending(struct follow_intent *p, json_t *pend)
{
	p->active = 1;
	if (jsonget_u64(pend, "offset", &p->offset) == -1 ||
	    jsonget_u64(pend, "lines", &p->lines) == -1 ||
	    jsonget_u64(pend, "at", &p->at) == -1 ||
	    jsonget_u64(pend, "len", &p->len) == -1 ||
	    get_u32(pend, "crc", &p->crc) == -1 ||
	    jsonget_u64(pend, "first_len", &p->first_len) == -1 ||
	    get_u32(pend, "first_crc", &p->first_crc) == -1 ||
	    jsonget_u64(pend, "rat", &p->rat) == -1 ||
	    jsonget_u64(pend, "rlen", &p->rlen) == -1 ||
	    get_u32(pend, "rcrc", &p->rcrc) == -1 ||
	    jsonget_u64(pend, "rfirst_len", &p->rfirst_len) == -1 ||
	    get_u32(pend, "rfirst_crc", &p->rfirst_crc) == -1)
		return -1;
	return 0;
}

/* Load the position; 0, 1 when there is none, -1 on error. */
static int
load_state(struct follow *f, struct error *e)
{
	json_t *root, *pend, *j;
	json_error_t je;
	struct stat st;
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
	if (f->path[0] == '\0' &&
	    json_is_string(j = json_object_get(root, "path")))
		snprintf(f->path, sizeof(f->path), "%s", json_string_value(j));
	bad = jsonget_u64(root, "replay_until", &f->replay_until) == -1;
	(void)jsonget_u64(root, "lines_total", &f->lines_total);
	(void)jsonget_u64(root, "lost_bytes_total", &f->lost_total);
	if (json_is_integer(j = json_object_get(root, "seen_ms")))
		f->seen_ms = (int64_t)json_integer_value(j);
	else if (stat(f->state, &st) == 0)	/* an older position file */
		f->seen_ms = (int64_t)st.st_mtim.tv_sec * 1000;
	if (!bad)
		bad = get_files(f, root);
	if (!bad)
		bad = get_losses(f, json_object_get(root, "losses"));
	if (!bad && (pend = json_object_get(root, "pending")) != NULL)
		bad = get_pending(&f->pending, pend) == -1;
	json_decref(root);
	if (bad == -1)
		return error_errno(e, EXIT_SOFTWARE, "%s", f->state);
	if (bad)
		return error_set(e, EXIT_DATAERR, "%s: not a follow position "
		    "file", f->state);
	cur_load(f);
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
	const char *data;
	size_t start = 0, dlen, nrec;
	uint64_t lost;
	int result = 0, more = 1, rc;

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
		rc = reader_next(r, 0, &data, &dlen, &nrec, e);
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

/* --- the siblings ------------------------------------------------------------ */

static int
all_of(const char *s, size_t n, const char *set)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (s[i] == '\0' || strchr(set, s[i]) == NULL)
			return 0;
	return 1;
}

int
follow_chain_name(const char *base, const char *name, int *gz)
{
	size_t b = strlen(base), n = strlen(name);
	const char *r;

	*gz = 0;
	if (n <= b + 1 || strncmp(name, base, b) != 0)
		return 0;
	if (n > 3 && strcmp(name + n - 3, ".gz") == 0) {
		*gz = 1;
		n -= 3;
	}
	if (n <= b + 1)
		return 0;
	r = name + b;
	n -= b;
	/* ".N" */
	if (r[0] == '.' && all_of(r + 1, n - 1, "0123456789"))
		return 1;
	/* ".YYYYMMDD…" or "-YYYYMMDD…" (aistack-rotate, logrotate dateext) */
	if ((r[0] == '.' || r[0] == '-') && n >= 9 &&
	    all_of(r + 1, 8, "0123456789") &&
	    all_of(r + 9, n - 9, "0123456789TZ-_"))
		return 1;
	return 0;
}

/* A file of the directory that may belong to the chain. */
struct cand {
	char path[PATH_MAX];
	uint64_t dev, ino, size;
	int64_t mtime_ms, ctime_ms;
	long rank;		/* FILE.N: -N (older first); others 0 */
	unsigned char head[FOLLOW_FP_MAX];
	size_t headlen;
	int gz, live, used;
};

/* The uncompressed size a gzip file's trailer gives (modulo 2^32). */
static uint64_t
gz_isize(int fd, uint64_t disk)
{
	unsigned char t[4];

	if (disk < 18 || pread_full(fd, t, 4, (off_t)(disk - 4)) != 4)
		return 0;
	return (uint64_t)t[0] | (uint64_t)t[1] << 8 | (uint64_t)t[2] << 16 |
	    (uint64_t)t[3] << 24;
}

/* Fill c from the file at c->path; -1 when it cannot be read. */
static int
cand_fill(struct cand *c)
{
	struct stat st;
	int fd;

	if (lstat(c->path, &st) == -1 || !S_ISREG(st.st_mode))
		return -1;
	if ((fd = open(c->path, O_RDONLY | O_CLOEXEC | O_NOCTTY)) == -1)
		return -1;
	if (fstat(fd, &st) == -1) {
		close(fd);
		return -1;
	}
	c->dev = (uint64_t)st.st_dev;
	c->ino = (uint64_t)st.st_ino;
	c->mtime_ms = (int64_t)st.st_mtim.tv_sec * 1000 +
	    st.st_mtim.tv_nsec / 1000000;
	c->ctime_ms = (int64_t)st.st_ctim.tv_sec * 1000 +
	    st.st_ctim.tv_nsec / 1000000;
	if (!c->gz) {
		ssize_t got;
		c->size = (uint64_t)st.st_size;
		got = pread_full(fd, c->head, c->size < FOLLOW_FP_MAX ?
		    (size_t)c->size : FOLLOW_FP_MAX, 0);
		close(fd);
		if (got < 0)
			return -1;
		c->headlen = (size_t)got;
		return 0;
	}
	c->size = gz_isize(fd, (uint64_t)st.st_size);
	{
		int d = dup(fd);
		gzFile g = d == -1 ? NULL : gzdopen(d, "rb");
		int got;
		close(fd);
		if (g == NULL) {
			if (d != -1)
				close(d);
			return -1;
		}
		got = gzread(g, c->head, FOLLOW_FP_MAX);
		gzclose(g);
		if (got < 0)
			return -1;
		c->headlen = (size_t)got;
	}
	return 0;
}

/* Nonzero when candidate c holds the content of entry x. */
static int
cand_holds(const struct cand *c, const struct follow_file *x)
{
	if (x->fp_len == 0)
		return !c->gz && c->dev == x->dev && c->ino == x->ino;
	if (c->headlen < x->fp_len ||
	    fnv1a(c->head, x->fp_len) != x->fp_hash)
		return 0;
	/* a copy too short to hold what was read is another file (a gzip
	 * trailer counts modulo 2^32) */
	if (c->gz)
		return x->offset < (1ULL << 32) ? c->size >= x->offset ||
		    c->size < x->fp_len : 1;
	return c->size >= x->offset;
}

static int
cand_cmp(const void *a, const void *b)
{
	const struct cand *x = a, *y = b;

	if (x->live != y->live)
		return x->live - y->live;
	/* last written first, then (a tie of coarse clocks) renamed or
	 * made first, then FILE.N before FILE.N-1, then by name */
	if (x->mtime_ms != y->mtime_ms)
		return x->mtime_ms < y->mtime_ms ? -1 : 1;
	if (x->ctime_ms != y->ctime_ms && !x->gz && !y->gz)
		return x->ctime_ms < y->ctime_ms ? -1 : 1;
	if (x->rank != y->rank)
		return x->rank < y->rank ? -1 : 1;
	return strcmp(x->path, y->path);
}

/* The siblings of the followed file and the file itself. */
static int
cands_list(const struct follow *f, struct cand **vp, size_t *np)
{
	struct cand *v = NULL, *nv;
	size_t n = 0, cap = 0;
	struct dirent *de;
	DIR *d;

	*vp = NULL;
	*np = 0;
	if ((d = opendir(f->dir)) == NULL)
		return -1;
	while ((de = readdir(d)) != NULL) {
		int gz = 0, live = strcmp(de->d_name, f->base) == 0;
		if (!live && !follow_chain_name(f->base, de->d_name, &gz))
			continue;
		if (n == cap) {
			cap = cap ? cap * 2 : 16;
			if ((nv = realloc(v, cap * sizeof(*v))) == NULL) {
				free(v);
				closedir(d);
				return -1;
			}
			v = nv;
		}
		memset(&v[n], 0, sizeof(v[n]));
		if ((size_t)snprintf(v[n].path, sizeof(v[n].path), "%s/%s",
		    f->dir, de->d_name) >= sizeof(v[n].path))
			continue;
		v[n].gz = gz;
		v[n].live = live;
		{
			const char *r = de->d_name + strlen(f->base);
			if (!live && r[0] == '.' && r[1] >= '0' && r[1] <= '9' &&
			    strspn(r + 1, "0123456789") < 8)
				v[n].rank = -strtol(r + 1, NULL, 10);
		}
		if (cand_fill(&v[n]) == 0)
			n++;
	}
	closedir(d);
	if (n > 1)
		qsort(v, n, sizeof(*v), cand_cmp);
	*vp = v;
	*np = n;
	return 0;
}

/*
 * The best candidate for entry x: one that holds its content, the plain
 * form with its inode first, then any plain form, then a gzip form.
 */
static struct cand *
cand_best(struct cand *v, size_t n, const struct follow_file *x)
{
	struct cand *best = NULL;
	int bs = 0;
	size_t i;

	for (i = 0; i < n; i++) {
		int s;
		if (v[i].used || !cand_holds(&v[i], x))
			continue;
		s = 1 + (v[i].gz ? 0 : 2) +
		    (!v[i].gz && v[i].dev == x->dev && v[i].ino == x->ino ? 4 : 0);
		if (s > bs) {
			bs = s;
			best = &v[i];
		}
	}
	return best;
}

/*
 * A sibling that starts with entry x's content but is shorter than what
 * was read of it: a copy made without the writers' lock (logrotate's cp)
 * while the file was read past the point the copy stopped at.  Its lines
 * were all read from the file itself; it is x, finished.
 */
/* Nonzero when c starts with x's first bytes, x's fingerprint being
 * long enough to tell files apart (more than a line's first fields). */
static int
cand_prefix(const struct cand *c, const struct follow_file *x)
{
	return x->fp_len >= FP_PREFIX_MIN && c->headlen >= x->fp_len &&
	    fnv1a(c->head, x->fp_len) == x->fp_hash;
}

static struct cand *
cand_short(struct cand *v, size_t n, const struct follow_file *x)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (!v[i].used && !v[i].live && cand_prefix(&v[i], x) &&
		    (v[i].gz || v[i].size < x->offset))
			return &v[i];
	return NULL;
}

static void
loss_add(struct follow *f, const char *file, uint64_t bytes)
{
	struct follow_loss *nl;

	f->lost_total += bytes;
	if ((nl = realloc(f->losses, (f->nlosses + 1) * sizeof(*nl))) == NULL)
		return;		/* counted, not reported */
	f->losses = nl;
	snprintf(nl[f->nlosses].file, sizeof(nl->file), "%s", file);
	nl[f->nlosses++].bytes = bytes;
}

static void close_file(struct follow *f);
static void note(struct follow *f, int warn, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Whether the open file of the current entry still holds what was read. */
static int
cur_fd_intact(struct follow *f, struct stat *st)
{
	if (f->fd == -1 || fstat(f->fd, st) == -1)
		return 0;
	if (f->gz != NULL)
		return 1;	/* a gzip form never changes */
	if ((uint64_t)st->st_size < f->rpos)
		return 0;
	return fp_matches(f->fd, (uint64_t)st->st_size, f->fp_len, f->fp_hash);
}

/*
 * List the directory's candidates into *vp (the open file's first bytes
 * brought up to date first, so that an entry known by its inode alone is
 * recognised in a copy); again, briefly, while a file of the chain is
 * missing from it: a file being renamed may be missed by one readdir.
 */
static int
scan_list(struct follow *f, struct cand **vp, size_t *np, struct error *e)
{
	struct cand *v;
	struct stat st;
	size_t n, i, tries;

	/* the open file's first bytes as they are now: an entry known by its
	 * inode alone (empty when it was opened) is not recognised in a copy
	 * or a gzip form */
	if (f->cur < f->nfiles && f->gz == NULL && f->fp_len < FOLLOW_FP_MAX &&
	    cur_fd_intact(f, &st) && (uint64_t)st.st_size > f->fp_len)
		(void)fingerprint(f->fd, (uint64_t)st.st_size, &f->fp_len,
		    &f->fp_hash);
	for (tries = 0;; tries++) {
		size_t missing = 0;
		free(*vp);
		*vp = NULL;
		if (cands_list(f, vp, np) == -1)
			return error_errno(e, EXIT_IOERR, "%s", f->dir);
		v = *vp;
		n = *np;
		cur_store(f);
		for (i = 0; i < f->nfiles; i++) {
			struct follow_file *x = &f->files[i];
			if (x->done)
				continue;
			if (i == f->cur && cur_fd_intact(f, &st))
				continue;
			if (cand_best(v, n, x) == NULL)
				missing++;
		}
		/* a file being renamed may be missed by one readdir */
		if (missing == 0 || tries >= 2)
			break;
		usleep(20000);
	}

	return 0;
}

/* The current file first: its open descriptor is its best copy; 1 when
 * it is intact (it keeps its place), else 0. */
static int
scan_current(struct follow *f, struct cand *v, size_t n)
{
	struct stat st;
	size_t i;

	if (f->cur >= f->nfiles || !cur_fd_intact(f, &st))
		return 0;
	for (i = 0; i < n; i++)
		if (v[i].gz == (f->gz != NULL) &&
		    v[i].dev == (uint64_t)st.st_dev &&
		    v[i].ino == (uint64_t)st.st_ino &&
		    (v[i].gz || cand_holds(&v[i], &f->files[f->cur]))) {
			v[i].used = 1;
			snprintf(f->files[f->cur].name,
			    sizeof(f->files[f->cur].name), "%s", v[i].path);
			f->files[f->cur].mtime_ms = v[i].mtime_ms;
		}
	return 1;
}

/*
 * Each entry takes the sibling that holds its content (unfinished ones
 * first, then finished ones, which a shorter copy or a late write may
 * concern); 1 when a finished file was written to again.
 */
static int
scan_match(struct follow *f, struct cand *v, size_t n, int cur_open_ok)
{
	struct cand *c;
	size_t i;
	int pass, late = 0;

	for (pass = 0; pass < 2; pass++)
	for (i = 0; i < f->nfiles; i++) {
		struct follow_file *x = &f->files[i];
		int shorter = 0;
		if ((i == f->cur && cur_open_ok) || x->done != pass)
			continue;
		if ((c = cand_best(v, n, x)) == NULL) {
			if ((!x->done || x->finished) &&
			    (c = cand_short(v, n, x)) != NULL)
				shorter = 1;
			else
				continue;
		}
		c->used = 1;
		if (i == f->cur && !x->done &&
		    (c->gz || c->dev != f->dev || c->ino != f->ino ||
		    f->fd == -1)) {
			/* the content moved (a copy, or its gzip form) */
			close_file(f);
			f->rescan = 0;
		}
		snprintf(x->name, sizeof(x->name), "%s", c->path);
		x->gz = c->gz;
		x->mtime_ms = c->mtime_ms;
		if (!c->gz) {
			x->dev = c->dev;
			x->ino = c->ino;
		}
		if (!c->gz && !c->live && x->fp_len == 0 && x->offset == 0 &&
		    c->headlen > 0) {
			/* known by its inode alone (it was empty when it
			 * joined), renamed to a copy since, not read yet: a
			 * renamed copy keeps its content, so its first bytes
			 * name it from now on, and its other forms (its gzip
			 * form, the path still linked to it) are known as
			 * such below; at the path, see scan_learn */
			x->fp_len = c->headlen;
			x->fp_hash = fnv1a(c->head, c->headlen);
		}
		if (shorter) {
			if (!x->done)
				note(f, 0, "%s: %s is a copy of what was read, "
				    "shorter (copied without the writers' lock); "
				    "finished", f->given, c->path);
			x->done = x->finished = 1;
			x->size = x->offset;
			continue;
		}
		if (c->size > x->size && (!c->gz || x->size < (1ULL << 32)))
			x->size = c->size;
		if (x->finished && c->size > x->offset &&
		    (!c->gz || x->offset < (1ULL << 32))) {
			/* written to after it was finished (a writer that
			 * still had it open): read on from its end */
			x->done = x->finished = 0;
			late = 1;
			note(f, 0, "%s: %s was written to after it was "
			    "finished; reading on from offset %llu", f->given,
			    c->path, (unsigned long long)x->offset);
		}
	}
	return late;
}

/* Mark the candidates that are known content in another form. */
static void
scan_forms(struct follow *f, struct cand *v, size_t n)
{
	size_t i;

	/* other forms of a known content (a copy not yet truncated, the
	 * plain and gzip forms of one copy, a snapshot of a file still
	 * written to: a sibling that starts with its first bytes) are no
	 * new files */
	for (i = 0; i < n; i++) {
		size_t j;
		if (v[i].used)
			continue;
		for (j = 0; j < f->nfiles; j++)
			if (f->files[j].fp_len > 0 &&
			    (cand_holds(&v[i], &f->files[j]) ||
			    (!v[i].live && cand_prefix(&v[i], &f->files[j]))))
				v[i].used = 1;
	}
}

/*
 * An entry known by its inode alone (the file was empty when it joined)
 * and not read yet, at the path, takes the first bytes its file has now,
 * so that its copy or gzip form is recognised when it is rotated before
 * it is read.  After scan_new: what joined in this scan was decided on
 * what the previous scan knew (an entry at the path known by its inode
 * says nothing of whether a new copy holds what was there: copytruncate
 * gives the inode other content).  Not while another sibling starts
 * with the same bytes: a copy being made (copytruncate before the
 * truncation) would leave it two files to match.
 */
static void
scan_learn(struct follow *f, const struct cand *v, size_t n)
{
	size_t i, j;

	for (i = 0; i < f->nfiles; i++) {
		struct follow_file *x = &f->files[i];
		const struct cand *c = NULL;
		if (x->done || x->fp_len > 0 || x->offset > 0)
			continue;
		for (j = 0; j < n && c == NULL; j++)
			if (v[j].used && v[j].live && v[j].dev == x->dev &&
			    v[j].ino == x->ino && strcmp(v[j].path, x->name) == 0)
				c = &v[j];
		if (c == NULL || c->headlen == 0)
			continue;
		for (j = 0; j < n; j++)
			if (&v[j] != c && v[j].headlen > 0 &&
			    memcmp(v[j].head, c->head, v[j].headlen < c->headlen ?
			    v[j].headlen : c->headlen) == 0)
				break;
		if (j < n)
			continue;
		x->fp_len = c->headlen;
		x->fp_hash = fnv1a(c->head, c->headlen);
		if (i == f->cur) {
			f->fp_len = x->fp_len;
			f->fp_hash = x->fp_hash;
		}
	}
}

/* Unfinished entries found nowhere are lost; finished ones that are gone
 * are forgotten. */
static void
scan_gone(struct follow *f, struct cand *v, size_t n, int cur_open_ok)
{
	size_t i;

	for (i = f->nfiles; i-- > 0;) {
		struct follow_file *x = &f->files[i];
		int found = 0;
		size_t j;
		if (i == f->cur && cur_open_ok)
			continue;
		for (j = 0; j < n && !found; j++)
			found = v[j].used && strcmp(v[j].path, x->name) == 0;
		if (found)
			continue;
		if (!x->done) {
			uint64_t lost = x->size > x->offset ? x->size - x->offset : 0;
			if (lost > 0) {
				loss_add(f, x->name[0] ? x->name : f->path, lost);
				note(f, 1, "%s: %s is gone with %llu bytes not yet "
				    "read (lost)", f->given,
				    x->name[0] ? x->name : f->path,
				    (unsigned long long)lost);
			} else
				note(f, 0, "%s: %s is gone (truncated or deleted); "
				    "nothing known unread was in it", f->given,
				    x->name[0] ? x->name : f->path);
			if (i == f->cur) {
				close_file(f);
				f->replay_until = 0;
			}
		}
		file_remove(f, i);
		if (i == f->cur)
			f->cur = f->nfiles;	/* reloaded below */
	}
}

/* New files join the chain, or are remembered as not ours. */
static int
scan_new(struct follow *f, struct cand *v, size_t n, int first,
    struct error *e)
{
	size_t i, live_at;
	int rotated;

	/* new files: a sibling that appeared since the last scan is a
	 * rotated one, queued before the file at the path, which is always
	 * read last; one there at the first scan, or older, is not ours */
	live_at = SIZE_MAX;
	for (i = 0; i < n; i++)
		if (v[i].live && v[i].used) {
			size_t j;
			for (j = 0; j < f->nfiles; j++)
				if (strcmp(f->files[j].name, v[i].path) == 0 &&
				    !f->files[j].done) {
					live_at = j;
				}
		}
	/* the content last seen at the path is still there (and known by
	 * its first bytes): nothing was rotated, a new sibling is not ours */
	rotated = live_at == SIZE_MAX || f->files[live_at].fp_len == 0;
	for (i = 0; i < n; i++) {
		struct follow_file *x;
		size_t at;
		int ours;
		if (v[i].used)
			continue;
		ours = v[i].live || (!first && rotated &&
		    v[i].mtime_ms + SCAN_SLACK_MS >= f->seen_ms);
		at = v[i].live || !ours || live_at == SIZE_MAX ? f->nfiles :
		    live_at++;
		if (ours && !v[i].live && at <= f->cur && f->cur < f->nfiles &&
		    f->rpos == f->offset && f->replay_until == 0) {
			/* the file read comes after it: read this one first,
			 * and come back to that one at its position */
			close_file(f);
		}
		if ((x = file_add(f, at)) == NULL)
			return error_errno(e, EXIT_SOFTWARE, "%s", f->state);
		snprintf(x->name, sizeof(x->name), "%s", v[i].path);
		x->dev = v[i].dev;
		x->ino = v[i].ino;
		x->gz = v[i].gz;
		x->size = v[i].size;
		x->mtime_ms = v[i].mtime_ms;
		x->fp_len = v[i].headlen;
		x->fp_hash = fnv1a(v[i].head, v[i].headlen);
		if (!ours) {
			x->done = 1;
			x->offset = v[i].size;
		} else if (!v[i].live)
			note(f, 0, "%s: rotated; %s joins the files to read",
			    f->given, v[i].path);
	}
	return 0;
}

/*
 * Scan the directory and bring the chain up to date, as lib/stream/follow.h
 * describes: entries take the siblings that hold their content, new
 * files join the chain (or are remembered as not ours), and unfinished
 * entries found nowhere are losses.  first: no chain was known before.
 */
static int
scan(struct follow *f, int first, struct error *e)
{
	struct cand *v = NULL;
	size_t n = 0;
	int cur_open_ok, late;
	int64_t now = clock_wall_ms();

	if (scan_list(f, &v, &n, e) == -1) {
		free(v);
		return -1;
	}
	cur_open_ok = scan_current(f, v, n);
	late = scan_match(f, v, n, cur_open_ok);
	if (late && f->cur < f->nfiles && f->rpos == f->offset &&
	    f->replay_until == 0) {
		/* from the first file that is not finished again */
		cur_store(f);
		close_file(f);
		f->cur = f->nfiles;
	}
	scan_forms(f, v, n);
	scan_gone(f, v, n, cur_open_ok);
	if (scan_new(f, v, n, first, e) == -1) {
		free(v);
		return -1;
	}
	scan_learn(f, v, n);
	free(v);
	f->seen_ms = now;
	if (f->cur >= f->nfiles || f->files[f->cur].done || f->fd == -1) {
		size_t was = f->cur;
		uint64_t ru = f->replay_until;
		int keep = f->fd == -1 && was < f->nfiles && !f->files[was].done;
		cur_load(f);
		if (keep && f->cur == was)
			f->replay_until = ru;
		else if (!keep)
			f->replay_until = 0;
	}
	return save_state(f, e);
}

int
follow_scan(struct follow *f, struct error *e)
{
	return scan(f, 0, e);
}

int
follow_loss_next(struct follow *f, struct follow_loss *l)
{
	if (f->nlosses == 0)
		return 0;
	*l = f->losses[0];
	return 1;
}

int
follow_loss_done(struct follow *f, struct error *e)
{
	if (f->nlosses == 0)
		return 0;
	memmove(&f->losses[0], &f->losses[1],
	    (f->nlosses - 1) * sizeof(*f->losses));
	f->nlosses--;
	return save_state(f, e);
}

/* --- reading ------------------------------------------------------------------ */

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
	if (f->gz != NULL)
		gzclose((gzFile)f->gz);
	else if (f->fd != -1)
		close(f->fd);
	f->gz = NULL;
	f->fd = -1;
	free(f->carry);
	f->carry = NULL;
	f->ncarry = 0;
	f->gz_eof = 0;
}

/* Whether the current file is no longer the one at the path. */
static void
update_draining(struct follow *f)
{
	struct stat st;

	if (f->cur >= f->nfiles) {
		f->draining = 0;
		return;
	}
	if (f->files[f->cur].gz)
		f->draining = 1;
	else if (stat(f->path, &st) == -1 || (uint64_t)st.st_dev != f->dev ||
	    (uint64_t)st.st_ino != f->ino)
		f->draining = f->dev != 0 || f->ino != 0 || f->fd != -1;
}

/*
 * Open the current entry at its position (the committed offset): 0 with
 * the file open, or 1 when it is not where it was last seen (a scan is
 * asked for), -1 on error.
 */
static int
open_cur(struct follow *f, struct error *e)
{
	struct follow_file *x = &f->files[f->cur];
	const char *name = x->name[0] != '\0' ? x->name : f->path;
	struct stat st;
	int fd;

	close_file(f);
	if ((fd = open(name, O_RDONLY | O_CLOEXEC | O_NOCTTY)) == -1 ||
	    fstat(fd, &st) == -1 || !S_ISREG(st.st_mode)) {
		if (fd != -1)
			close(fd);
		f->rescan = 1;
		return 1;
	}
	snprintf(f->source, sizeof(f->source), "%s",
	    strcmp(name, f->path) == 0 ? f->given : name);
	if (!x->gz) {
		if ((uint64_t)st.st_size < f->offset ||
		    !fp_matches(fd, (uint64_t)st.st_size, f->fp_len, f->fp_hash)) {
			close(fd);
			f->rescan = 1;
			return 1;
		}
		f->fd = fd;
		f->dev = (uint64_t)st.st_dev;
		f->ino = (uint64_t)st.st_ino;
		f->gz_dev = f->gz_ino = 0;
		if ((uint64_t)st.st_size > f->last_size)
			f->last_size = (uint64_t)st.st_size;
		return 0;
	}
	/* the gzip form: read up to the position */
	{
		gzFile g = gzdopen(fd, "rb");
		uint64_t skip = f->offset;
		char tmp[65536];

		if (g == NULL) {
			close(fd);
			return error_errno(e, EXIT_SOFTWARE, "%s", name);
		}
		f->gz_dev = (uint64_t)st.st_dev;
		f->gz_ino = (uint64_t)st.st_ino;
		gzbuffer(g, 128 * 1024);
		while (skip > 0) {
			int got = gzread(g, tmp, skip > sizeof(tmp) ?
			    (unsigned)sizeof(tmp) : (unsigned)skip);
			if (got <= 0) {
				gzclose(g);
				f->rescan = 1;
				return 1;
			}
			skip -= (uint64_t)got;
		}
		f->gz = g;
		f->fd = fd;
	}
	return 0;
}

/* The current entry is finished: on to the next one. */
static int
finish_cur(struct follow *f, struct error *e)
{
	struct follow_file *x = &f->files[f->cur];

	cur_store(f);
	x->done = 1;
	x->finished = 1;
	if (x->size < x->offset || !x->gz)
		x->size = x->offset;
	f->rescan = 1;		/* what follows it may be known better now */
	note(f, 0, "%s: finished %s; on to the next file", f->given,
	    x->name[0] ? x->name : f->path);
	close_file(f);
	f->replay_until = 0;
	cur_load(f);
	if (f->cur < f->nfiles)
		snprintf(f->source, sizeof(f->source), "%s", f->given);
	update_draining(f);
	return save_state(f, e);
}

/* follow_read for a gzip form: sequential, with what follows the last
 * newline kept for the next call. */
static ssize_t
read_gz(struct follow *f, char *buf, size_t room, int *flags,
    struct error *e)
{
	size_t n = 0, avail;
	char *nl;

	if (f->ncarry > 0) {
		n = f->ncarry < room ? f->ncarry : room;
		memcpy(buf, f->carry, n);
		memmove(f->carry, f->carry + n, f->ncarry - n);
		f->ncarry -= n;
	}
	while (n < room && !f->gz_eof) {
		int got = gzread((gzFile)f->gz, buf + n, (unsigned)(room - n >
		    (1u << 30) ? (1u << 30) : room - n));
		if (got < 0) {
			int zerr;
			const char *msg = gzerror((gzFile)f->gz, &zerr);
			struct follow_file *x = &f->files[f->cur];
			uint64_t lost = x->size > f->rpos ? x->size - f->rpos : 0;
			loss_add(f, f->source, lost);
			note(f, 1, "%s: %s: %s after offset %llu; %llu bytes "
			    "after it lost", f->given, f->source, msg,
			    (unsigned long long)f->rpos, (unsigned long long)lost);
			f->last_size = f->rpos;
			if (finish_cur(f, e) == -1)
				return -1;
			return 0;
		}
		if (got == 0)
			f->gz_eof = 1;
		n += (size_t)got;
	}
	if (n == 0) {
		if (finish_cur(f, e) == -1)
			return -1;
		return 0;
	}
	avail = n;
	if (f->replay_until > f->rpos && avail > f->replay_until - f->rpos)
		avail = (size_t)(f->replay_until - f->rpos);
	nl = memrchr(buf, '\n', avail);
	if (nl != NULL)
		avail = (size_t)(nl - buf) + 1;
	else if (avail == room)
		*flags |= FOLLOW_LONG;
	else if (f->gz_eof && avail == n)
		*flags |= FOLLOW_FINAL;
	if (avail < n) {
		char *nc = malloc(f->ncarry + (n - avail));
		if (nc == NULL)
			return error_errno(e, EXIT_SOFTWARE, "%s", f->source);
		memcpy(nc, buf + avail, n - avail);
		if (f->ncarry > 0)
			memcpy(nc + (n - avail), f->carry, f->ncarry);
		free(f->carry);
		f->carry = nc;
		f->ncarry += n - avail;
	}
	f->rpos += avail;
	if (f->rpos > f->last_size)
		f->last_size = f->rpos;
	if (f->replay_until > 0 && f->rpos <= f->replay_until)
		*flags |= FOLLOW_REPLAY;
	return (ssize_t)avail;
}

int
follow_open(struct follow *f, const char *streamdir, const char *rejdir,
    const char *path, enum lock_kind k, struct error *e)
{
	char dir[PATH_MAX], real[PATH_MAX], sub[PATH_MAX + 16];
	struct follow_intent *p = &f->pending;
	int rc;

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
	if (rc == 1) {
		/* never followed: the file from its start; its siblings
		 * present now are not ours */
		if (scan(f, 1, e) == -1)
			return -1;
		update_draining(f);
		return 0;
	}

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
		f->rpos = f->offset;
		p->active = 0;
		if (save_state(f, e) == -1)
			return -1;
	}
	f->rpos = f->offset;
	if (scan(f, 0, e) == -1)
		return -1;
	if (f->cur < f->nfiles && strcmp(f->files[f->cur].name, f->path) != 0 &&
	    f->files[f->cur].name[0] != '\0')
		note(f, 0, "%s: rotated; finishing %s from offset %llu", f->given,
		    f->files[f->cur].name, (unsigned long long)f->offset);
	update_draining(f);
	return 0;
}

/*
 * Take the current file's lock and look at it (*st): rotated away from
 * the path (then finish it, and scan for what follows), truncated or
 * rewritten (then scan: 1, unlocked).  0: locked, ready to be read.
 */
static int
cur_check(struct follow *f, struct stat *st, struct error *e)
{
	struct stat ps;
	uint64_t size;

	memset(st, 0, sizeof(*st));
	if (lock_take(f->fd, f->lock, 0, -1) == -1)
		return error_errno(e, EXIT_IOERR, "%s: lock", f->source);
	if (fstat(f->fd, st) == -1) {
		lock_release(f->fd, f->lock);
		return error_errno(e, EXIT_IOERR, "%s", f->source);
	}
	size = (uint64_t)st->st_size;
	if (!f->draining && (stat(f->path, &ps) == -1 ||
	    (uint64_t)ps.st_dev != f->dev || (uint64_t)ps.st_ino != f->ino)) {
		/* rotated: learn what follows before finishing it */
		f->draining = 1;
		f->rescan = 1;
		note(f, 0, "%s: rotated; finishing the old file from offset "
		    "%llu", f->given, (unsigned long long)f->rpos);
	}
	if (size < f->rpos || !fp_matches(f->fd, size, f->fp_len,
	    f->fp_hash)) {
		/* truncated, or rewritten: where did the content go? */
		lock_release(f->fd, f->lock);
		f->last_size = f->last_size > f->rpos ? f->last_size : f->rpos;
		if (f->last_size <= f->rpos)
			note(f, 0, "%s: truncated; reading on from its copy, "
			    "or from the start", f->given);
		f->rescan = 1;
		return 1;
	}
	if (f->fp_len < FOLLOW_FP_MAX && size > f->fp_len &&
	    fingerprint(f->fd, size, &f->fp_len, &f->fp_hash) == -1) {
		lock_release(f->fd, f->lock);
		return error_errno(e, EXIT_IOERR, "%s", f->source);
	}
	return 0;
}

/*
 * Read what follows the position in the current file (size bytes, its
 * lock held: released here), up to room and to the end of a replay.
 */
static ssize_t
cur_pread(struct follow *f, uint64_t size, char *buf, size_t room,
    struct error *e)
{
	uint64_t limit = size, n;
	ssize_t got;

	if (f->replay_until > f->rpos && limit > f->replay_until)
		limit = f->replay_until;
	n = limit - f->rpos;
	if (n > room)
		n = room;
	if (size > f->last_size)
		f->last_size = size;
	got = n > 0 ? pread_full(f->fd, buf, (size_t)n, (off_t)f->rpos) : 0;
	lock_release(f->fd, f->lock);
	if (got < 0)
		return error_errno(e, EXIT_IOERR, "%s: read", f->source);
	return got;
}

ssize_t
follow_read(struct follow *f, char *buf, size_t room, int *flags,
    struct error *e)
{
	int round;

	*flags = 0;
	for (round = 0; round < 16; round++) {
		struct stat st;
		uint64_t n;
		ssize_t got;
		char *nl;
		int quiet, rc;

		if (f->rescan) {
			f->rescan = 0;
			if (scan(f, 0, e) == -1)
				return -1;
			update_draining(f);
		}
		if (f->cur >= f->nfiles) {
			struct stat s2;
			if (stat(f->path, &s2) == 0 && S_ISREG(s2.st_mode) &&
			    round == 0) {
				f->rescan = 1;	/* a file appeared */
				continue;
			}
			return 0;
		}
		if (f->fd == -1) {
			if ((rc = open_cur(f, e)) == -1)
				return -1;
			if (rc == 1)
				continue;
			update_draining(f);
		}
		if (f->gz != NULL)
			return read_gz(f, buf, room, flags, e);
		if ((rc = cur_check(f, &st, e)) == -1)
			return -1;
		if (rc == 1)
			continue;
		if ((got = cur_pread(f, (uint64_t)st.st_size, buf, room, e)) < 0)
			return -1;
		n = (uint64_t)got;
		nl = n > 0 ? memrchr(buf, '\n', (size_t)n) : NULL;
		/* a rotated file is done once nothing whole is left and it
		 * has not been written to for a while (by its mtime, so that
		 * a restart need not wait again) */
		quiet = f->draining && !f->rescan && nl == NULL && n < room &&
		    clock_wall_ms() - ((int64_t)st.st_mtim.tv_sec * 1000 +
		    st.st_mtim.tv_nsec / 1000000) >= DRAIN_QUIET_MS;
		if (n == 0) {
			if (f->rescan)
				continue;
			if (quiet) {
				if (finish_cur(f, e) == -1)
					return -1;
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
	if (lines > f->lines)
		f->lines_total += lines - f->lines;
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
	struct pollfd pfd;
	ssize_t got;

	if (f->draining && timeout_ms > 100)
		timeout_ms = 100;
	if (f->ifd == -1) {
		struct timespec ts;
		if (timeout_ms > POLL_MS)
			timeout_ms = POLL_MS;
		ts.tv_sec = timeout_ms / 1000;
		ts.tv_nsec = (long)(timeout_ms % 1000) * 1000000;
		nanosleep(&ts, NULL);
		if (clock_wall_ms() - f->seen_ms >= RESCAN_MS)
			f->rescan = 1;
		return;
	}
	pfd.fd = f->ifd;
	pfd.events = POLLIN;
	pfd.revents = 0;
	if (poll(&pfd, 1, timeout_ms) > 0)
		while ((got = read(f->ifd, ev, sizeof(ev))) > 0) {
			char *p = ev;
			/* names coming and going: a rotation */
			while (p < ev + got) {
				struct inotify_event *ie = (void *)p;
				if (ie->mask & (IN_CREATE | IN_MOVED_FROM |
				    IN_MOVED_TO | IN_DELETE | IN_IGNORED |
				    IN_Q_OVERFLOW))
					f->rescan = 1;
				p += sizeof(*ie) + ie->len;
			}
		}
	if (clock_wall_ms() - f->seen_ms >= RESCAN_MS)
		f->rescan = 1;
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
	free(f->files);
	f->files = NULL;
	f->nfiles = f->cap = 0;
	free(f->losses);
	f->losses = NULL;
	f->nlosses = 0;
}

/* --- what the followers hold, for aistack-rotate ------------------------------ */

static int
hold_add(struct follow_hold **v, size_t *n, const char *stream,
    const struct cand *c, uint64_t unread)
{
	struct follow_hold *nv;

	if ((nv = realloc(*v, (*n + 1) * sizeof(*nv))) == NULL)
		return -1;
	*v = nv;
	nv += (*n)++;
	memset(nv, 0, sizeof(*nv));
	snprintf(nv->name, sizeof(nv->name), "%s", path_basename(c->path));
	snprintf(nv->stream, sizeof(nv->stream), "%s", stream);
	nv->unread = unread;
	return 0;
}

/* What the follower whose position file f->state is holds of its chain,
 * the way scan() would assign the directory's files to its entries. */
static int
holds_of(struct follow *f, const char *stream, struct follow_hold **hv,
    size_t *hn, struct error *e)
{
	const struct follow_file *at_path = NULL;
	struct cand *v = NULL, *c;
	size_t n = 0, i, j;
	int rc, rotated;

	if ((rc = load_state(f, e)) != 0)
		return rc == 1 ? 0 : -1;
	if (cands_list(f, &v, &n) == -1)
		return error_errno(e, EXIT_IOERR, "%s", f->dir);
	for (i = 0; i < f->nfiles; i++) {
		struct follow_file *x = &f->files[i];
		uint64_t size;
		if (x->done || (c = cand_best(v, n, x)) == NULL)
			continue;
		c->used = 1;
		if (c->live)
			at_path = x;
		size = c->gz && x->size > c->size ? x->size : c->size;
		if (x->size > size)
			size = x->size;
		if (hold_add(hv, hn, stream, c, size > x->offset ?
		    size - x->offset : 0) == -1)
			goto oom;
	}
	for (i = 0; i < f->nfiles; i++) {
		struct follow_file *x = &f->files[i];
		if (!x->done || (c = cand_best(v, n, x)) == NULL)
			continue;
		c->used = 1;
		/* written to after it was finished (a late writer): the
		 * follower reads on from its end */
		if (x->finished && !c->live && c->size > x->offset &&
		    (!c->gz || x->offset < (1ULL << 32)) &&
		    hold_add(hv, hn, stream, c, c->size - x->offset) == -1)
			goto oom;
	}
	/* a new sibling is a rotation of the follower's file only when the
	 * content it last saw at the path has moved */
	rotated = at_path == NULL || at_path->fp_len == 0;
	for (i = 0; i < n && rotated; i++) {
		int known = v[i].used || v[i].live;
		for (j = 0; j < f->nfiles && !known; j++)
			known = f->files[j].fp_len > 0 &&
			    (cand_holds(&v[i], &f->files[j]) ||
			    cand_prefix(&v[i], &f->files[j]));
		if (!known && v[i].mtime_ms + SCAN_SLACK_MS >= f->seen_ms &&
		    hold_add(hv, hn, stream, &v[i], v[i].size) == -1)
			goto oom;
	}
	free(v);
	return 0;
oom:
	free(v);
	return error_errno(e, EXIT_SOFTWARE, "%s", f->state);
}

int
follow_holds(const char *streamsdir, const char *path, struct follow_hold **hv,
    size_t *hn, struct error *e)
{
	char dir[PATH_MAX], real[PATH_MAX], abspath[PATH_MAX], sdir[PATH_MAX];
	struct follow *f = NULL;
	struct dirent *de;
	DIR *d;
	int rc = 0;

	*hv = NULL;
	*hn = 0;
	path_dirname(path, dir, sizeof(dir));
	if (realpath(dir, real) == NULL)
		return error_errno(e, errno == ENOENT ? EXIT_NOINPUT : EXIT_IOERR,
		    "%s", dir);
	if ((size_t)snprintf(abspath, sizeof(abspath), "%s/%s",
	    strcmp(real, "/") == 0 ? "" : real, path_basename(path)) >=
	    sizeof(abspath))
		return error_set(e, EXIT_USAGE, "%s: path too long", path);
	if ((d = opendir(streamsdir)) == NULL)
		return errno == ENOENT ? 0 : error_errno(e, EXIT_IOERR, "%s",
		    streamsdir);
	while (rc == 0 && (de = readdir(d)) != NULL) {
		struct stat st;
		if (de->d_name[0] == '.' || (size_t)snprintf(sdir, sizeof(sdir),
		    "%s/%s", streamsdir, de->d_name) >= sizeof(sdir))
			continue;
		if (f == NULL && (f = malloc(sizeof(*f))) == NULL) {
			rc = error_errno(e, EXIT_SOFTWARE, "%s", streamsdir);
			break;
		}
		memset(f, 0, sizeof(*f));
		f->fd = f->ifd = -1;
		if (follow_state_path(sdir, abspath, f->state, sizeof(f->state),
		    e) == -1 || stat(f->state, &st) == -1) {
			memset(e, 0, sizeof(*e));
			continue;
		}
		snprintf(f->dir, sizeof(f->dir), "%s", real);
		f->base = path_basename(abspath);
		if ((rc = holds_of(f, de->d_name, hv, hn, e)) == 0 &&
		    f->path[0] != '\0' && strcmp(f->path, abspath) != 0) {
			/* a hash collision: another file's follower; forget
			 * what was added for it */
			while (*hn > 0 && strcmp((*hv)[*hn - 1].stream,
			    de->d_name) == 0)
				(*hn)--;
		}
		free(f->files);
		free(f->losses);
		f->files = NULL;
		f->losses = NULL;
	}
	closedir(d);
	free(f);
	if (rc == -1) {
		free(*hv);
		*hv = NULL;
		*hn = 0;
	}
	return rc;
}
