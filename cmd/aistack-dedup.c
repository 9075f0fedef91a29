/*
 * aistack-dedup: a filter that keeps the first record of each key, in
 * input order, and drops the others.
 *
 * Input is read in large chunks.  The keys of a chunk's lines are hashed
 * first (SHA-256 of the key, by several threads for a large chunk), then
 * the lines are decided in order by one thread against the key sets, and
 * kept lines are written out byte for byte.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "base/buf.h"
#include "base/err.h"
#include "base/exitcode.h"
#include "base/fsutil.h"
#include "base/lock.h"
#include "base/metricnames.h"
#include "base/metrics.h"
#include "base/statedir.h"
#include "dedup/dedupkey.h"
#include "dedup/digestset.h"
#include "dedup/keystore.h"
#include "dedup/minhash.h"
#include "format/canon.h"
#include "format/json.h"
#include "format/keypath.h"
#include "stream/reader.h"
#include "stream/stream.h"

#define INPUT_BUF	(4 * 1024 * 1024)
#define MAX_LINE	((size_t)1 << 30)
#define BATCH_LINES	16384
#define MAX_THREADS	8
#define MIN_PARALLEL	(256 * 1024)	/* bytes of a batch worth a thread */
#define KEYDEF_VERSION	1
#define CATCHUP_SAVE	(1 << 20)	/* keys of a catch-up saved at once */

enum on_bad { BAD_FAIL, BAD_DUPS, BAD_PASS };

struct dedup_opts {
	int verbose;
	const char *paths_arg;		/* -k */
	struct dedupkey_def key;	/* -k, --normalize, --exact */
	const char *state;		/* -s */
	const char *against;		/* -a */
	const char *stats;
	const char *dups;
	double near;			/* 0: off */
	enum on_bad on_bad;
};

enum line_status { L_OK, L_EMPTY, L_BAD, L_FAIL };

struct line {
	size_t off, len;		/* in the batch's text, without '\n' */
	unsigned char status;
	unsigned char d[DIGEST_BYTES];
};

/* What one thread needs to compute keys. */
struct worker {
	const struct dedup_opts *o;
	struct dedupkey key;
	struct buf text;		/* --near: the key's text */
	/* a slice of a batch, for a thread */
	const char *in;
	struct line *v;
	unsigned char *sigs;		/* --near: the slice's signatures */
	size_t n;
	pthread_t tid;
};

struct counters {
	uint64_t seen, unique, duplicates, near, bad, empty, caught_up;
};

/*
 * An output file.  Kept lines are written straight from the input buffer:
 * adjacent pieces are gathered into one iovec, and the iovecs are written
 * with writev before the input buffer is reused.
 */
struct out {
	int fd;
	const char *name;
	struct iovec *iov;
	int niov, capiov;
};

struct dedup {
	const struct dedup_opts *o;
	struct worker w[MAX_THREADS];
	int nthreads;
	/* -s STATE or -a STREAM */
	int have_store;
	struct keystore ks;
	int lockfd;
	char label[PATH_MAX];		/* for messages and metrics */
	char streamdir[PATH_MAX];	/* -a */
	struct buf keydef;
	/* keys seen in this input, when they are not the store's */
	int use_run;
	struct digestset run;
	struct minhash_index runix;
	unsigned char *sigs;		/* --near: a signature per line */
	struct counters n;
	struct out out, dupsout;
	uint64_t lineno;
	struct line *lines;
};

static const char usage_text[] =
"usage: aistack-dedup [-v] [-k PATH[,PATH...]] [--normalize trim,lower,space] [--exact]\n"
"                     [-s STATE | -a STREAM] [--stats FILE] [--dups FILE] [--near THRESHOLD]\n"
"                     [--on-bad fail|dups|pass]\n"
"       aistack-dedup -h | --help | --version\n"
"\n"
"Copy standard input to standard output, keeping the first record of each\n"
"key in input order.  The key is the canonical form of the whole record, the\n"
"values at jq-style paths, or the raw line, compared by SHA-256.\n"
"\n"
"  -k, --key PATHS          key on the values at these paths (.a.b .a[1] .\"odd key\")\n"
"      --normalize LIST     trim, lower and/or space: normalize string values first\n"
"      --exact              key on the raw bytes of each line\n"
"  -s, --state STATE        remember keys across runs (a NAME under dedup/, or a path)\n"
"  -a, --against STREAM     exact mode: a key is seen if it is in STREAM or earlier input\n"
"      --stats FILE         write seen, unique, duplicates, duplicate_rate as JSON\n"
"      --dups FILE          write the dropped records to FILE\n"
"      --near THRESHOLD     also drop near duplicates (MinHash similarity at least THRESHOLD)\n"
"      --on-bad MODE        a line that is not a JSON object: fail (exit 65, the default),\n"
"                           dups (set aside, with a warning) or pass (kept, with a warning)\n"
"  -v, --verbose            report counts and the index's catch-up on standard error\n"
"  -h, --help               show this help\n"
"      --version            show the version\n";

/* --- keys ---------------------------------------------------------------- */

/*
 * Compute the status and digest of one line (lib/dedup/dedupkey.h), and with
 * --near its signature into sig, from the same reading of the record.
 */
static void
key_line(struct worker *w, const char *p, struct line *l, unsigned char *sig)
{
	const struct dedup_opts *o = w->o;
	unsigned char d[DEDUPKEY_DIGEST];
	struct json_result jr;

	if (o->key.mode != DEDUPKEY_EXACT &&
	    json_scan_record(p, l->len, &jr) == -1) {
		l->status = jr.status == JSON_EMPTY ? L_EMPTY : L_BAD;
		return;
	}
	w->text.len = 0;
	if (dedupkey_digest(&w->key, &o->key, p, l->len, d,
	    sig != NULL ? &w->text : NULL) == -1) {
		l->status = L_FAIL;
		return;
	}
	memcpy(l->d, d, DIGEST_BYTES);
	if (sig != NULL)
		minhash_sign(w->text.data, w->text.len, sig);
	l->status = L_OK;
}

/*
 * The key definition: everything that decides a record's digest and
 * signature, recorded in state files and indexes.
 */
static int
keydef_make(const struct dedup_opts *o, struct buf *b)
{
	buf_printf(b, "aistack-dedup keys %d\n", KEYDEF_VERSION);
	if (dedupkey_def_str(&o->key, b) == -1)
		return -1;
	if (o->near > 0)
		buf_printf(b, "near shingle %d perm %d\n", MINHASH_SHINGLE,
		    MINHASH_PERM);
	else
		buf_printf(b, "near none\n");
	if (buf_cstr(b) == NULL)
		return -1;
	if (b->len > KEYSTORE_META_MAX / 2) {
		/* very long path lists: keep their digest */
		unsigned char d[32];
		unsigned len;
		char hex[65];
		int i;
		if (!EVP_Digest(b->data, b->len, d, &len, EVP_sha256(), NULL))
			return -1;
		for (i = 0; i < 32; i++)
			snprintf(hex + 2 * i, 3, "%02x", d[i]);
		b->len = 0;
		buf_printf(b, "aistack-dedup keys %d\nsha256 %s\n",
		    KEYDEF_VERSION, hex);
	}
	return 0;
}

/* --- workers ------------------------------------------------------------- */

static int
worker_init(struct worker *w, const struct dedup_opts *o)
{
	memset(w, 0, sizeof(*w));
	w->o = o;
	return dedupkey_init(&w->key);
}

static void
worker_release(struct worker *w)
{
	dedupkey_release(&w->key);
	buf_release(&w->text);
}

static void *
worker_main(void *arg)
{
	struct worker *w = arg;
	size_t i;

	for (i = 0; i < w->n; i++)
		key_line(w, w->in + w->v[i].off, &w->v[i],
		    w->sigs != NULL ? w->sigs + i * MINHASH_SIG : NULL);
	return NULL;
}

/*
 * Compute the keys of lines v[0..n) of text, splitting the work between
 * threads by bytes when it is large enough to be worth it.
 */
static void
key_batch(struct dedup *dd, const char *text, struct line *v, size_t n,
    size_t bytes)
{
	int t = dd->nthreads, i, started = 0;
	size_t at = 0, base = n > 0 ? v[0].off : 0;

	if ((size_t)t > bytes / MIN_PARALLEL)
		t = (int)(bytes / MIN_PARALLEL);
	if (t < 1)
		t = 1;
	for (i = 0; i < t; i++) {
		struct worker *w = &dd->w[i];
		size_t from = at, lim = base + bytes / (size_t)t * (size_t)(i + 1);
		if (i == t - 1)
			at = n;
		else
			while (at < n && v[at].off < lim)
				at++;
		w->in = text;
		w->v = v + from;
		w->sigs = dd->sigs != NULL ? dd->sigs + from * MINHASH_SIG : NULL;
		w->n = at - from;
		if (i > 0 && w->n > 0 &&
		    pthread_create(&w->tid, NULL, worker_main, w) == 0) {
			started |= 1 << i;
			continue;
		}
		if (i > 0)
			worker_main(w);
	}
	worker_main(&dd->w[0]);
	for (i = 1; i < t; i++)
		if (started & (1 << i))
			pthread_join(dd->w[i].tid, NULL);
}

static int
cpu_count(void)
{
	cpu_set_t set;
	int n;

	if (sched_getaffinity(0, sizeof(set), &set) == 0)
		n = CPU_COUNT(&set);
	else
		n = (int)sysconf(_SC_NPROCESSORS_ONLN);
	if (n < 1)
		n = 1;
	return n > MAX_THREADS ? MAX_THREADS : n;
}

/* --- output -------------------------------------------------------------- */

/* Write everything queued. */
static int
out_flush(struct out *o, struct error *e)
{
	struct iovec *v = o->iov;
	int n = o->niov;

	while (n > 0) {
		ssize_t w = writev(o->fd, v, n > IOV_MAX ? IOV_MAX : n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			o->niov = 0;
			return error_errno(e, errno == ENOSPC || errno == EIO ||
			    errno == EPIPE || errno == EFBIG ? EXIT_IOERR :
			    error_code_for_errno(errno), "%s", o->name);
		}
		while (n > 0 && (size_t)w >= v->iov_len) {
			w -= (ssize_t)v->iov_len;
			v++;
			n--;
		}
		if (n > 0) {
			v->iov_base = (char *)v->iov_base + w;
			v->iov_len -= (size_t)w;
		}
	}
	o->niov = 0;
	return 0;
}

/*
 * Queue bytes p[0..n) of the input buffer for output; they must stay
 * where they are until out_flush.
 */
static int
out_put(struct out *o, const char *p, size_t n, struct error *e)
{
	struct iovec *last = o->niov > 0 ? &o->iov[o->niov - 1] : NULL;

	if (o->fd == -1)
		return 0;
	if (last != NULL && (const char *)last->iov_base + last->iov_len == p) {
		last->iov_len += n;
		return 0;
	}
	if (o->niov == o->capiov) {
		int cap = o->capiov ? o->capiov * 2 : 256;
		struct iovec *v = realloc(o->iov, (size_t)cap * sizeof(*v));
		if (v == NULL)
			return error_errno(e, EXIT_SOFTWARE, "%s", o->name);
		o->iov = v;
		o->capiov = cap;
	}
	o->iov[o->niov].iov_base = (void *)(uintptr_t)p;
	o->iov[o->niov].iov_len = n;
	o->niov++;
	return 0;
}

/* --- deciding ------------------------------------------------------------ */

static int
is_dup(struct dedup *dd, const unsigned char *d)
{
	if (dd->have_store && keystore_has(&dd->ks, d))
		return 1;
	return dd->use_run && digestset_has(&dd->run, d);
}

static int
near_dup(struct dedup *dd, const unsigned char *sig)
{
	double sim;

	if (dd->have_store && keystore_near(&dd->ks, sig, &sim))
		return 1;
	return dd->use_run && minhash_index_query(&dd->runix, sig, &sim);
}

static int
remember(struct dedup *dd, const unsigned char *d, const unsigned char *sig)
{
	if (!dd->use_run)
		return keystore_add(&dd->ks, d, sig) == -1 ? -1 : 0;
	if (digestset_add(&dd->run, d) == -1)
		return -1;
	if (sig != NULL && minhash_index_add(&dd->runix, sig) == -1)
		return -1;
	return 0;
}

static int
bad_line(struct dedup *dd, const char *p, size_t n, struct error *e)
{
	struct json_result jr;
	char why[160];

	dd->n.bad++;
	json_scan_record(p, n, &jr);
	json_result_str(&jr, why, sizeof(why));
	switch (dd->o->on_bad) {
	case BAD_FAIL:
		return error_set(e, EXIT_DATAERR, "stdin:%llu: %s",
		    (unsigned long long)dd->lineno, why);
	case BAD_DUPS:
		warnmsg("stdin:%llu: %s (set aside%s)",
		    (unsigned long long)dd->lineno, why,
		    dd->o->dups != NULL ? " in the duplicates" : "");
		return out_put(&dd->dupsout, p, n + 1, e);
	case BAD_PASS:
		warnmsg("stdin:%llu: %s (passed on)",
		    (unsigned long long)dd->lineno, why);
		return out_put(&dd->out, p, n + 1, e);
	}
	return 0;
}

/*
 * Decide the lines of a batch in order: each line (with its newline,
 * which the text always has) is written to the output or the duplicates.
 */
static int
decide_batch(struct dedup *dd, const char *text, struct line *v, size_t n,
    struct error *e)
{
	size_t i;

	for (i = 0; i < n; i++) {
		struct line *l = &v[i];
		const char *p = text + l->off;
		const unsigned char *sig = NULL;
		int dup;

		if (i + 8 < n && v[i + 8].status == L_OK) {
			if (dd->have_store)
				keystore_prefetch(&dd->ks, v[i + 8].d);
			if (dd->use_run)
				digestset_prefetch(&dd->run, v[i + 8].d);
		}
		dd->lineno++;
		switch (l->status) {
		case L_EMPTY:
			dd->n.empty++;
			continue;
		case L_BAD:
			if (bad_line(dd, p, l->len, e) == -1)
				return -1;
			continue;
		case L_FAIL:
			return error_errno(e, EXIT_SOFTWARE, "stdin:%llu: key",
			    (unsigned long long)dd->lineno);
		}
		dd->n.seen++;
		dup = is_dup(dd, l->d);
		if (!dup && dd->sigs != NULL) {
			sig = dd->sigs + i * MINHASH_SIG;
			if (near_dup(dd, sig)) {
				dd->n.near++;
				dup = 1;
			}
		}
		if (dup) {
			dd->n.duplicates++;
			if (out_put(&dd->dupsout, p, l->len + 1, e) == -1)
				return -1;
			continue;
		}
		dd->n.unique++;
		if (remember(dd, l->d, sig) == -1)
			return error_errno(e, EXIT_SOFTWARE, "key set");
		if (out_put(&dd->out, p, l->len + 1, e) == -1)
			return -1;
	}
	return 0;
}

/*
 * Split text[0..len) into lines (each ends with '\n') and process them
 * in batches: keys, then decisions (or, when index is set, additions to
 * the index of -a).
 */
static int
process_text(struct dedup *dd, const char *text, size_t len, int index,
    struct error *e)
{
	size_t at = 0;

	while (at < len) {
		size_t n = 0, start = at;
		const char *nl;
		while (n < BATCH_LINES && at < len &&
		    (nl = memchr(text + at, '\n', len - at)) != NULL) {
			dd->lines[n].off = at;
			dd->lines[n].len = (size_t)(nl - text) - at;
			n++;
			at = (size_t)(nl - text) + 1;
		}
		if (n == 0)
			break;
		key_batch(dd, text, dd->lines, n, at - start);
		if (!index) {
			if (decide_batch(dd, text, dd->lines, n, e) == -1)
				return -1;
			continue;
		}
		for (size_t i = 0; i < n; i++) {
			struct line *l = &dd->lines[i];
			const unsigned char *sig = NULL;
			int r;
			if (l->status == L_FAIL)
				return error_errno(e, EXIT_SOFTWARE, "%s: key",
				    dd->label);
			if (l->status != L_OK)
				continue;	/* not a record: never a key */
			dd->n.caught_up++;
			if (keystore_has(&dd->ks, l->d))
				continue;
			if (dd->sigs != NULL)
				sig = dd->sigs + i * MINHASH_SIG;
			if ((r = keystore_add(&dd->ks, l->d, sig)) == -1)
				return error_errno(e, EXIT_SOFTWARE, "%s",
				    dd->label);
		}
	}
	return 0;
}

/* --- input --------------------------------------------------------------- */

static int
filter_stdin(struct dedup *dd, struct error *e)
{
	size_t cap = INPUT_BUF, len = 0, used;
	char *in, *nl;
	int eof = 0;

	if ((in = malloc(cap + 1)) == NULL)
		return error_errno(e, EXIT_SOFTWARE, "input buffer");
	while (!eof) {
		ssize_t r = read_more(STDIN_FILENO, in + len, cap - len, &eof);
		if (r < 0) {
			error_errno(e, EXIT_IOERR, "stdin");
			goto fail;
		}
		len += (size_t)r;
		if (eof && len > 0 && in[len - 1] != '\n')
			in[len++] = '\n';	/* an unterminated last line */
		nl = len > 0 ? memrchr(in, '\n', len) : NULL;
		used = nl != NULL ? (size_t)(nl - in) + 1 : 0;
		if (process_text(dd, in, used, 0, e) == -1) {
			/* what was decided before the failure goes out */
			struct error ignored;
			out_flush(&dd->out, &ignored);
			out_flush(&dd->dupsout, &ignored);
			goto fail;
		}
		if (out_flush(&dd->out, e) == -1 ||
		    out_flush(&dd->dupsout, e) == -1)
			goto fail;
		memmove(in, in + used, len - used);
		len -= used;
		if (len == cap) {
			/* one line fills the buffer: make it larger */
			char *bigger;
			if (cap >= MAX_LINE) {
				error_set(e, EXIT_DATAERR, "stdin:%llu: line "
				    "longer than 1G",
				    (unsigned long long)dd->lineno + 1);
				goto fail;
			}
			if ((bigger = realloc(in, cap * 2 + 1)) == NULL) {
				error_errno(e, EXIT_SOFTWARE, "stdin:%llu",
				    (unsigned long long)dd->lineno + 1);
				goto fail;
			}
			in = bigger;
			cap *= 2;
		}
	}
	free(in);
	return 0;
fail:
	free(in);
	return -1;
}

/* --- state and index ----------------------------------------------------- */

/*
 * A key set file truncated by another process while it is mapped: the
 * next access raises SIGBUS.  Say so and exit 74; the run's output is
 * not committed (an index is rebuilt by the next run, which finds the
 * size wrong; a state is reported as damaged).  The message is made
 * before the handler is installed: the one global of this file, as a
 * signal handler has no other way to it.
 */
static char sigbus_msg[PATH_MAX + 160];

static void
on_sigbus(int sig)
{
	ssize_t w;

	(void)sig;
	w = write(STDERR_FILENO, sigbus_msg, strlen(sigbus_msg));
	(void)w;
	_exit(EXIT_IOERR);
}

static void
sigbus_install(const char *path)
{
	struct sigaction sa;

	snprintf(sigbus_msg, sizeof(sigbus_msg), "aistack-dedup: %s: the key "
	    "set file changed size while in use (SIGBUS); nothing of this "
	    "run was saved\n", path);
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_sigbus;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGBUS, &sa, NULL);
}

/* Take the lock of a key set file: DIR/.BASE.lock, waiting for it. */
static int
store_lock(struct dedup *dd, const char *path, struct error *e)
{
	char dir[PATH_MAX], lp[PATH_MAX + 32];

	path_dirname(path, dir, sizeof(dir));
	if (mkdir_p(dir, 0700) == -1)
		return error_errno(e, error_code_for_errno(errno), "%s", dir);
	snprintf(lp, sizeof(lp), "%s/.%s.lock", dir, path_basename(path));
	if ((dd->lockfd = lock_open(lp)) == -1)
		return error_errno(e, error_code_for_errno(errno), "%s", lp);
	sigbus_install(path);
	if (lock_take(dd->lockfd, LOCK_KIND_FCNTL, 1, 0) == 0)
		return 0;
	if (dd->o->verbose)
		warnmsg("%s: in use by another run, waiting", dd->label);
	if (lock_take(dd->lockfd, LOCK_KIND_FCNTL, 1, -1) == -1)
		return error_errno(e, EXIT_IOERR, "%s", lp);
	return 0;
}

/* A key definition in words for messages: its lines after the first,
 * joined by "; " ("key paths .a; normalize lower; near none"). */
static void
describe_keydef(const struct buf *def, char *out, size_t n)
{
	const char *p = def->data, *end, *nl;
	size_t len = 0;

	out[0] = '\0';
	if (p == NULL || (nl = memchr(p, '\n', def->len)) == NULL)
		return;
	end = p + def->len;
	for (p = nl + 1; p < end && len + 1 < n; p = nl + 1) {
		if ((nl = memchr(p, '\n', (size_t)(end - p))) == NULL)
			nl = end;
		len += (size_t)snprintf(out + len, n - len, "%s%.*s",
		    len > 0 ? "; " : "", (int)(nl - p), p);
		if (len >= n)
			len = n - 1;
	}
}

static int
open_state(struct dedup *dd, struct error *e)
{
	const struct dedup_opts *o = dd->o;
	char path[PATH_MAX];
	int rc;

	if (statedir_resolve(o->state, "dedup", path, sizeof(path), e) == -1)
		return -1;
	snprintf(dd->label, sizeof(dd->label), "%s", o->state);
	if (store_lock(dd, path, e) == -1)
		return -1;
	if ((rc = keystore_open(&dd->ks, path, o->near > 0, o->near, e)) == -1)
		return -1;
	dd->have_store = 1;
	if (rc == 1)
		return keystore_reset(&dd->ks, dd->keydef.data, dd->keydef.len) ==
		    -1 ? error_errno(e, EXIT_SOFTWARE, "%s", path) : 0;
	if (!keystore_meta_is(&dd->ks, dd->keydef.data, dd->keydef.len)) {
		char was[400], now[400];
		describe_keydef(&dd->ks.meta, was, sizeof(was));
		describe_keydef(&dd->keydef, now, sizeof(now));
		return error_set(e, EXIT_USAGE, "%s: made with another key "
		    "definition (%s) than this run's (%s)", o->state, was, now);
	}
	if (dd->ks.nosigs)
		return error_set(e, EXIT_DATAERR, "%s: corrupt state (missing "
		    "signatures)", path);
	return 0;
}

/* The index of -a STREAM: dedup/_stream.NAME, or for a path,
 * dedup/_path.HEX (16 hex digits of the SHA-256 of its absolute path). */
static int
index_path(struct dedup *dd, char *buf, size_t n, struct error *e)
{
	const char *a = dd->o->against;
	char dir[PATH_MAX], abs[PATH_MAX * 2];
	unsigned char d[32];
	unsigned len;

	if (statedir_sub(dir, sizeof(dir), "dedup", e) == -1)
		return -1;
	if (strchr(a, '/') == NULL) {
		if ((size_t)snprintf(buf, n, "%s/_stream.%s", dir, a) >= n)
			return error_set(e, EXIT_USAGE, "%s: path too long", a);
		return 0;
	}
	if (realpath(dd->streamdir, abs) == NULL) {
		char cwd[PATH_MAX];
		if (dd->streamdir[0] == '/' || getcwd(cwd, sizeof(cwd)) == NULL)
			snprintf(abs, sizeof(abs), "%s", dd->streamdir);
		else
			snprintf(abs, sizeof(abs), "%s/%s", cwd, dd->streamdir);
	}
	if (!EVP_Digest(abs, strlen(abs), d, &len, EVP_sha256(), NULL))
		return error_set(e, EXIT_SOFTWARE, "%s: digest", a);
	if ((size_t)snprintf(buf, n, "%s/_path.%02x%02x%02x%02x%02x%02x%02x%02x",
	    dir, d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7]) >= n)
		return error_set(e, EXIT_USAGE, "%s: path too long", a);
	return 0;
}

/* Read STREAM from the index's mark to its head, adding the keys. */
static int
catch_up(struct dedup *dd, struct error *e)
{
	struct reader *r = NULL;
	uint64_t head, first;
	const char *data;
	size_t len, nrec;
	int rc;

	if (stream_head(dd->streamdir, &head, &first, e) == -1)
		return -1;
	if (dd->ks.mark > head) {
		/* the stream is shorter than the index: not the same one */
		if (dd->o->verbose)
			warnmsg("%s: index covers %llu bytes but the stream "
			    "has %llu; rebuilding", dd->label,
			    (unsigned long long)dd->ks.mark,
			    (unsigned long long)head);
		if (keystore_reset(&dd->ks, dd->keydef.data, dd->keydef.len) == -1)
			return error_errno(e, EXIT_SOFTWARE, "%s", dd->label);
	}
	if (dd->ks.mark < first) {
		/* expired records: their keys stay, the rest is read */
		if (dd->o->verbose && dd->ks.mark > 0)
			warnmsg("%s: %llu bytes expired since the index was "
			    "made", dd->label,
			    (unsigned long long)(first - dd->ks.mark));
		dd->ks.mark = first;
	}
	if (reader_open(&r, dd->streamdir, dd->ks.mark, NULL, e) == -1)
		return error_wrap(e, "%s", dd->label);
	while ((rc = reader_next(r, 0, &data, &len, &nrec, e)) == 1) {
		if (process_text(dd, data, len, 1, e) == -1) {
			reader_free(r);
			return -1;
		}
		dd->ks.mark = reader_offset(r);
		/* a long catch-up (a rebuild) is saved as it goes, so that
		 * memory stays bounded and the work is kept */
		if (dd->ks.npend >= CATCHUP_SAVE &&
		    keystore_save(&dd->ks, e) == -1) {
			reader_free(r);
			return -1;
		}
	}
	reader_free(r);
	if (rc == -1)
		return error_wrap(e, "%s", dd->label);
	return 0;
}

static int
open_index(struct dedup *dd, struct error *e)
{
	const struct dedup_opts *o = dd->o;
	char path[PATH_MAX];
	struct stat st;
	int rc;

	if (statedir_resolve(o->against, "streams", dd->streamdir,
	    sizeof(dd->streamdir), e) == -1)
		return -1;
	snprintf(dd->label, sizeof(dd->label), "%s", o->against);
	if (index_path(dd, path, sizeof(path), e) == -1 ||
	    store_lock(dd, path, e) == -1)
		return -1;
	/* the stream's identity joins the key definition */
	if (stat(dd->streamdir, &st) == 0)
		buf_printf(&dd->keydef, "stream %s\nstream-id %llu:%llu\n",
		    dd->streamdir, (unsigned long long)st.st_dev,
		    (unsigned long long)st.st_ino);
	else
		buf_printf(&dd->keydef, "stream %s\nstream-id none\n",
		    dd->streamdir);
	rc = keystore_open(&dd->ks, path, o->near > 0, o->near, e);
	if (rc == -1) {
		if (e->code != EXIT_DATAERR)
			return -1;
		/* the index is a cache: a damaged one is made again */
		warnmsg("%s; rebuilding the index", e->msg);
		memset(e, 0, sizeof(*e));
		if (unlink(path) == -1 && errno != ENOENT)
			return error_errno(e, EXIT_IOERR, "%s", path);
		if ((rc = keystore_open(&dd->ks, path, o->near > 0, o->near,
		    e)) == -1)
			return -1;
	}
	dd->have_store = 1;
	if (rc == 1 || !keystore_meta_is(&dd->ks, dd->keydef.data,
	    dd->keydef.len) || dd->ks.nosigs) {
		if (rc == 0 && o->verbose)
			warnmsg("%s: index made with another key definition "
			    "or stream; rebuilding", dd->label);
		if (keystore_reset(&dd->ks, dd->keydef.data, dd->keydef.len) ==
		    -1)
			return error_errno(e, EXIT_SOFTWARE, "%s", path);
	}
	if (catch_up(dd, e) == -1)
		return -1;
	if (o->verbose)
		warnmsg("%s: index holds %llu keys up to offset %llu (%llu "
		    "records read)", dd->label,
		    (unsigned long long)keystore_count(&dd->ks),
		    (unsigned long long)dd->ks.mark,
		    (unsigned long long)dd->n.caught_up);
	/* a rebuild or a long catch-up is kept even if this run fails
	 * later; a short one is saved with the run's counts at its end */
	if (dd->ks.rewrite || dd->ks.npend >= CATCHUP_SAVE / 16)
		return keystore_save(&dd->ks, e);
	return 0;
}

/* --- statistics and metrics ---------------------------------------------- */

static int
write_stats(struct dedup *dd, struct error *e)
{
	struct buf b = BUF_INIT;
	const struct counters *n = &dd->n;
	int rc;

	buf_printf(&b, "{\"seen\":%llu,\"unique\":%llu,\"duplicates\":%llu,"
	    "\"duplicate_rate\":%.6g,\"near_duplicates\":%llu,\"bad\":%llu,"
	    "\"empty\":%llu", (unsigned long long)n->seen,
	    (unsigned long long)n->unique, (unsigned long long)n->duplicates,
	    n->seen > 0 ? (double)n->duplicates / (double)n->seen : 0.0,
	    (unsigned long long)n->near, (unsigned long long)n->bad,
	    (unsigned long long)n->empty);
	if (dd->have_store)
		buf_printf(&b, ",\"state_keys\":%llu",
		    (unsigned long long)keystore_count(&dd->ks));
	if (dd->o->against != NULL)
		buf_printf(&b, ",\"caught_up\":%llu,\"index_offset\":%llu",
		    (unsigned long long)n->caught_up,
		    (unsigned long long)dd->ks.mark);
	if (buf_printf(&b, "}\n") == -1) {
		buf_release(&b);
		return error_errno(e, EXIT_SOFTWARE, "%s", dd->o->stats);
	}
	rc = report_write(dd->o->stats, b.data, b.len, e);
	buf_release(&b);
	return rc;
}

/*
 * What this run did, as gauges (the cumulative counts are the state's,
 * read by lib/state/stateview.h), and when a run last ended cleanly.
 */
static void
write_metrics(struct dedup *dd, int ok)
{
	struct metrics m = METRICS_INIT;
	const char *s = path_basename(dd->label), *f = MN_DEDUP_LAST_RECORDS;
	struct error e;

	metrics_family(&m, f, "gauge", MH_DEDUP_LAST_RECORDS);
	metrics_sample(&m, f, (double)dd->n.unique, "state", s, "result",
	    "unique", NULL);
	metrics_sample(&m, f, (double)(dd->n.duplicates - dd->n.near), "state",
	    s, "result", "duplicate", NULL);
	metrics_sample(&m, f, (double)dd->n.near, "state", s, "result",
	    "near_duplicate", NULL);
	metrics_sample(&m, f, (double)dd->n.bad, "state", s, "result", "bad",
	    NULL);
	metrics_last_success(&m, "dedup", s, ok, MN_DEDUP_LAST_SUCCESS,
	    MH_DEDUP_LAST_SUCCESS, "state", s, NULL);
	if (metrics_write(&m, "dedup", s, &e) == -1)
		warnmsg("%s", e.msg);
	metrics_release(&m);
}

/* Add this run's counts to the state's and commit them (with -s, the
 * run's keys too). */
static int
save_counts(struct dedup *dd, struct error *e)
{
	dd->ks.ctr.seen += dd->n.seen;
	dd->ks.ctr.unique += dd->n.unique;
	dd->ks.ctr.duplicates += dd->n.duplicates;
	dd->ks.ctr.near += dd->n.near;
	return keystore_save(&dd->ks, e);
}

/* --- the run ------------------------------------------------------------- */

static int
out_open(struct out *o, const char *path, struct error *e)
{
	memset(o, 0, sizeof(*o));
	o->fd = -1;
	if (path == NULL)
		return 0;
	o->name = path;
	if ((o->fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
	    0644)) == -1)
		return error_errno(e, EXIT_CANTCREAT, "%s", path);
	return 0;
}

static int
run(const struct dedup_opts *o)
{
	struct dedup *dd;
	struct error e;
	int status = EXIT_OK, i;

	memset(&e, 0, sizeof(e));
	if ((dd = calloc(1, sizeof(*dd))) == NULL ||
	    (dd->lines = calloc(BATCH_LINES, sizeof(struct line))) == NULL ||
	    (o->near > 0 &&
	    (dd->sigs = malloc((size_t)BATCH_LINES * MINHASH_SIG)) == NULL)) {
		warnmsg("cannot start: %s", strerror(errno ? errno : ENOMEM));
		if (dd != NULL) {
			free(dd->lines);
			free(dd->sigs);
		}
		free(dd);
		return EXIT_SOFTWARE;
	}
	dd->o = o;
	dd->lockfd = -1;
	dd->nthreads = cpu_count();
	for (i = 0; i < dd->nthreads; i++)
		if (worker_init(&dd->w[i], o) == -1) {
			warnmsg("cannot start: %s", strerror(ENOMEM));
			dd->nthreads = i;
			status = EXIT_SOFTWARE;
			goto done;
		}
	dd->out.fd = STDOUT_FILENO;
	dd->out.name = "standard output";
	dd->dupsout.fd = -1;
	if (keydef_make(o, &dd->keydef) == -1 ||
	    out_open(&dd->dupsout, o->dups, &e) == -1 ||
	    (o->state != NULL && open_state(dd, &e) == -1) ||
	    (o->against != NULL && open_index(dd, &e) == -1)) {
		status = error_report(&e);
		goto done;
	}
	dd->use_run = o->state == NULL;
	if (dd->use_run && (digestset_init(&dd->run, 0) == -1 ||
	    (o->near > 0 && minhash_index_init(&dd->runix, o->near) == -1))) {
		warnmsg("key set: %s", strerror(errno));
		status = EXIT_SOFTWARE;
		goto done;
	}
	if (filter_stdin(dd, &e) == -1)
		status = error_report(&e);
	else if (dd->have_store && save_counts(dd, &e) == -1)
		status = error_report(&e);
	if (o->verbose)
		warnmsg("%llu records: %llu unique, %llu duplicates (%llu near), "
		    "%llu bad, %llu empty lines", (unsigned long long)dd->n.seen,
		    (unsigned long long)dd->n.unique,
		    (unsigned long long)dd->n.duplicates,
		    (unsigned long long)dd->n.near,
		    (unsigned long long)dd->n.bad,
		    (unsigned long long)dd->n.empty);
	if (o->stats != NULL && write_stats(dd, &e) == -1) {
		error_report(&e);
		if (status == EXIT_OK)
			status = e.code;
	}
	if (dd->have_store)
		write_metrics(dd, status == EXIT_OK);
done:
	if (dd->dupsout.fd != -1 && close(dd->dupsout.fd) == -1 &&
	    status == EXIT_OK) {
		warnmsg("%s: %s", o->dups, strerror(errno));
		status = EXIT_IOERR;
	}
	free(dd->out.iov);
	free(dd->dupsout.iov);
	for (i = 0; i < dd->nthreads; i++)
		worker_release(&dd->w[i]);
	if (dd->have_store)
		keystore_close(&dd->ks);
	if (dd->lockfd != -1)
		close(dd->lockfd);
	digestset_release(&dd->run);
	if (o->near > 0)
		minhash_index_release(&dd->runix);
	buf_release(&dd->keydef);
	free(dd->sigs);
	free(dd->lines);
	free(dd);
	return status;
}

/* --- options ------------------------------------------------------------- */

enum {
	OPT_DUPS = 256, OPT_EXACT, OPT_NEAR, OPT_NORMALIZE, OPT_ON_BAD,
	OPT_STATS, OPT_VERSION
};

static const struct option longopts[] = {
	{ "against",	required_argument,	NULL, 'a' },
	{ "dups",	required_argument,	NULL, OPT_DUPS },
	{ "exact",	no_argument,		NULL, OPT_EXACT },
	{ "help",	no_argument,		NULL, 'h' },
	{ "key",	required_argument,	NULL, 'k' },
	{ "near",	required_argument,	NULL, OPT_NEAR },
	{ "normalize",	required_argument,	NULL, OPT_NORMALIZE },
	{ "on-bad",	required_argument,	NULL, OPT_ON_BAD },
	{ "state",	required_argument,	NULL, 's' },
	{ "stats",	required_argument,	NULL, OPT_STATS },
	{ "verbose",	no_argument,		NULL, 'v' },
	{ "version",	no_argument,		NULL, OPT_VERSION },
	{ NULL,		0,			NULL, 0 }
};

int
main(int argc, char **argv)
{
	struct dedup_opts o;
	struct error e;
	char *end;
	int ch, status;

	progname = "aistack-dedup";
	memset(&o, 0, sizeof(o));
	o.key.mode = DEDUPKEY_CANON;
	o.on_bad = BAD_FAIL;

	while ((ch = getopt_long(argc, argv, "a:hk:s:v", longopts, NULL)) !=
	    -1) {
		switch (ch) {
		case 'a':
			o.against = optarg;
			break;
		case 'h':
			fputs(usage_text, stdout);
			status = EXIT_OK;
			goto out;
		case 'k':
			o.paths_arg = optarg;
			break;
		case 's':
			o.state = optarg;
			break;
		case 'v':
			o.verbose = 1;
			break;
		case OPT_DUPS:
			o.dups = optarg;
			break;
		case OPT_EXACT:
			o.key.mode = DEDUPKEY_EXACT;
			break;
		case OPT_NEAR:
			errno = 0;
			o.near = strtod(optarg, &end);
			if (errno != 0 || end == optarg || *end != '\0' ||
			    !(o.near > 0 && o.near <= 1))
				return usage_error(usage_text, "--near: invalid threshold "
				    "\"%s\" (expected a number above 0, at "
				    "most 1)", optarg);
			break;
		case OPT_NORMALIZE:
			if (canon_flags_parse(optarg, &o.key.norm) == -1)
				return usage_error(usage_text, "--normalize: invalid list "
				    "\"%s\" (expected trim, lower, space)",
				    optarg);
			break;
		case OPT_ON_BAD:
			if (strcmp(optarg, "fail") == 0)
				o.on_bad = BAD_FAIL;
			else if (strcmp(optarg, "dups") == 0)
				o.on_bad = BAD_DUPS;
			else if (strcmp(optarg, "pass") == 0)
				o.on_bad = BAD_PASS;
			else
				return usage_error(usage_text, "--on-bad: invalid mode "
				    "\"%s\" (expected fail, dups or pass)",
				    optarg);
			break;
		case OPT_STATS:
			o.stats = optarg;
			break;
		case OPT_VERSION:
			printf("aistack-dedup %s\n", AISTACK_VERSION);
			status = EXIT_OK;
			goto out;
		default:
			return usage_error(usage_text, NULL);
		}
	}
	if (optind < argc)
		return usage_error(usage_text, "unexpected operand \"%s\"", argv[optind]);
	if (o.state != NULL && o.against != NULL)
		return usage_error(usage_text, "%s", "-s and -a cannot be used together");
	if (o.key.mode == DEDUPKEY_EXACT && (o.paths_arg != NULL ||
	    o.key.norm != 0))
		return usage_error(usage_text, "%s", "--exact cannot be used with -k or "
		    "--normalize");
	if (o.paths_arg != NULL) {
		if (keypath_parse(o.paths_arg, &o.key.paths, &e) == -1)
			return usage_error(usage_text, "-k: %s", e.msg);
		o.key.mode = DEDUPKEY_PATHS;
	}
	status = run(&o);
	dedupkey_def_release(&o.key);
out:
	return exit_flush(status);
}
