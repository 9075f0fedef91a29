/*
 * aistack-rotate: seal, compress and expire the segments of streams, and
 * rotate the plain JSONL files that other programs write, without ever
 * losing a line or deleting what a consumer has not read.
 *
 * Each operand is handled under an exclusive flock(2) of its directory,
 * so two runs never work on the same stream or directory at once; an
 * operand's failure does not stop the others, and the exit status is
 * the worst (highest) one seen.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/clock.h"
#include "base/config.h"
#include "base/err.h"
#include "base/exitcode.h"
#include "base/fsutil.h"
#include "base/lock.h"
#include "base/metricnames.h"
#include "base/metrics.h"
#include "base/parse.h"
#include "base/statedir.h"
#include "format/json.h"
#include "stream/consumer.h"
#include "stream/copytrunc.h"
#include "stream/follow.h"
#include "stream/gzfile.h"
#include "stream/retention.h"
#include "stream/stream.h"

#define DEFAULT_SEAL_SIZE	(64ULL * 1024 * 1024)
#define DEFAULT_SEAL_AGE	(86400ULL * 1000)
#define DEFAULT_COMPRESS_AFTER	(7 * 86400ULL * 1000)
#define DEFAULT_DELETE_AFTER	(30 * 86400ULL * 1000)
#define PROGRESS_MIN		(64ULL * 1024 * 1024)
#define MAX_JOBS		4
#define RENAME_SETTLE_MS	1000	/* a renamed copy written this recently may
					 * still get a late writer's line */

enum { METHOD_COPYTRUNCATE, METHOD_RENAME };

struct rotate_opts {
	int dry_run;
	int json;
	int verbose;
	int force;
	uint64_t seal_size;
	uint64_t seal_age_ms;		/* RETAIN_NEVER: never by age */
	uint64_t compress_after_ms;
	uint64_t delete_after_ms;
	uint64_t max_total;		/* RETAIN_NEVER: no limit */
	enum lock_kind lock;
	uint64_t lock_timeout_ms;	/* for the writers' lock of plain files */
	int method;			/* of plain files: METHOD_* */
	int sig;			/* sent to the writer after a rename; 0: none */
	char pidfile[PATH_MAX];		/* the writer's, for sig ("": none) */
	char **operands;
	int noperands;
	uint64_t given;			/* bit opt - OPT_COMPRESS_AFTER: a flag set it */
};

/* What one operand did, for its metrics. */
struct tally {
	uint64_t sealed, compressed_in, compressed_out, deleted, unread;
	uint64_t nplain, ngz;
};

/* One file to compress. */
struct job {
	char target[PATH_MAX];		/* the stream or plain file it belongs to */
	char src[PATH_MAX];
	char dst[PATH_MAX];
	const char *file;		/* the name printed (borrowed from src) */
	uint64_t size;
	uint64_t done;			/* progress, under the pool's mutex */
	struct gzfile_result res;
	struct error e;
	int rc;
};

struct pool {
	struct job *jobs;
	size_t n, next;
	pthread_mutex_t mu;
	/* progress on a terminal */
	int show;
	const char *label;
	uint64_t total, shown;
};

struct rotate {
	const struct rotate_opts *o;
	int64_t now_ms;
	int status;			/* the worst so far */
	int progress;			/* standard error is a terminal */
	long ncpu;
};

static const char usage_text[] =
"usage: aistack-rotate [-n] [-v] [--json] [--seal-size SIZE] [--seal-age DUR]\n"
"                      [--compress-after DUR] [--delete-after DUR] [--max-total SIZE] [--force]\n"
"                      [--lock flock|fcntl] [--lock-timeout DUR]\n"
"                      [--method copytruncate|rename] [--signal SIG --pidfile FILE]\n"
"                      [STREAM|FILE|DIR...]\n"
"\n"
"Seal, compress and expire the segments of streams (every stream when no\n"
"operand is given), and rotate plain JSONL files by a locked copy and\n"
"truncate, never deleting what a consumer has not read.\n"
"\n"
"  -n, --dry-run              print the plan and change nothing\n"
"      --json                 print the actions as JSON lines\n"
"      --seal-size SIZE       seal an active segment larger than SIZE (default 64M)\n"
"      --seal-age DUR         seal an active segment older than DUR (default 1d)\n"
"      --compress-after DUR   gzip sealed segments and copies older than DUR (default 7d)\n"
"      --delete-after DUR     delete sealed segments and copies older than DUR (default 30d)\n"
"      --max-total SIZE       delete the oldest while the total exceeds SIZE (default: none)\n"
"      --force                delete even what a consumer or follower has not read\n"
"      --lock KIND            the writers' lock of plain files: flock (default) or fcntl\n"
"      --lock-timeout DUR     skip a file whose lock is not obtained in DUR (default 10s; exit 75)\n"
"      --method METHOD        of plain files: copytruncate (default) or rename\n"
"      --signal SIG           with rename: signal the writer after the rename\n"
"      --pidfile FILE         the writer's process id, for --signal\n"
"  -v, --verbose              report every action on standard error\n"
"  -h, --help                 show this help\n"
"      --version              show the version\n";

static void
worse(struct rotate *r, int status)
{
	if (status > r->status)
		r->status = status;
}

static int64_t
mtime_ms(const struct stat *st)
{
	return (int64_t)st->st_mtim.tv_sec * 1000 + st->st_mtim.tv_nsec / 1000000;
}

/* --- reporting ------------------------------------------------------------ */

struct action {
	const char *what;		/* seal, compress, delete, keep, rotate, recover */
	const char *target;
	const char *file;
	uint64_t bytes;
	int64_t compressed;		/* -1: not known */
	uint64_t unread;
	const char *reason;
};

/*
 * Report one action: as a JSON line on standard output with --json, as a
 * text line "ACTION TARGET FILE BYTES [REASON]" on standard output with
 * -n, and on standard error with -v.
 */
static void
report(const struct rotate *r, const struct action *a)
{
	const struct rotate_opts *o = r->o;
	struct buf b = BUF_INIT;

	if (o->json) {
		buf_printf(&b, "{\"action\":\"%s\",\"target\":\"", a->what);
		json_escape_name(&b, a->target);
		buf_printf(&b, "\",\"file\":\"");
		json_escape_name(&b, a->file);
		buf_printf(&b, "\",\"bytes\":%llu", (unsigned long long)a->bytes);
		if (a->compressed >= 0)
			buf_printf(&b, ",\"compressed_bytes\":%lld",
			    (long long)a->compressed);
		if (a->unread > 0)
			buf_printf(&b, ",\"unread_bytes\":%llu",
			    (unsigned long long)a->unread);
		if (a->reason != NULL)
			buf_printf(&b, ",\"reason\":\"%s\"", a->reason);
		buf_printf(&b, ",\"dry_run\":%s}\n", o->dry_run ? "true" :
		    "false");
		fwrite(b.data, 1, b.len, stdout);
	}
	if (o->dry_run || o->verbose) {
		b.len = 0;
		buf_printf(&b, "%s %s %s %llu%s%s\n", a->what, a->target, a->file,
		    (unsigned long long)a->bytes, a->reason ? " " : "",
		    a->reason ? a->reason : "");
		if (o->dry_run && !o->json)
			fwrite(b.data, 1, b.len, stdout);
		else if (o->verbose)
			fprintf(stderr, "%s: %s", progname, b.data);
	}
	buf_release(&b);
}

static void
act(const struct rotate *r, const char *what, const char *target,
    const char *file, uint64_t bytes)
{
	struct action a = { what, target, file, bytes, -1, 0, NULL };

	report(r, &a);
}

/*
 * The target label and metrics file name of an operand: a stream NAME
 * is itself; an operand given by path is its absolute path (symbolic
 * links resolved), and its file is named by that path's last 64
 * characters, cleaned, and a hash of the whole, so that two operands
 * never share a file and the same one always gets the same.
 */
static void
metrics_ids(const char *target, char *label, size_t ln, char *name,
    size_t nn)
{
	char dir[PATH_MAX], real[PATH_MAX], clean[72];
	const char *p;
	uint64_t h = 0xcbf29ce484222325ULL;
	size_t len, i;

	snprintf(label, ln, "%s", target);
	snprintf(name, nn, "%s", target);
	if (strchr(target, '/') == NULL)
		return;
	if (realpath(target, real) != NULL)
		snprintf(label, ln, "%s", real);
	else {
		/* a file gone meanwhile: its directory's path */
		path_dirname(target, dir, sizeof(dir));
		if (realpath(dir, real) != NULL &&
		    strlen(real) + strlen(path_basename(target)) + 2 <= ln) {
			const char *bn = path_basename(target);
			size_t l = strcmp(real, "/") ? strlen(real) : 0;
			/* it fits: checked above */
			memcpy(label, real, l);
			label[l] = '/';
			memcpy(label + l + 1, bn, strlen(bn) + 1);
		}
	}
	for (p = label; *p != '\0'; p++) {
		h ^= (unsigned char)*p;
		h *= 0x100000001b3ULL;
	}
	p = label;
	while (*p == '/')
		p++;
	if ((len = strlen(p)) > 64)
		p += len - 64;
	for (i = 0; p[i] != '\0' && i + 1 < sizeof(clean); i++) {
		char c = p[i];
		clean[i] = ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		    c == '.' || c == '-') ? c : '_';
	}
	clean[i] = '\0';
	snprintf(name, nn, "%s.%016llx", clean, (unsigned long long)h);
}

/* What the run did for one operand: gauges (aistack(7), METRICS); ok
 * says whether it went without an error. */
static void
write_metrics(const struct rotate *r, const char *operand,
    const struct tally *t, int ok)
{
	struct metrics m = METRICS_INIT;
	char target[PATH_MAX], name[128];
	struct error e;

	if (r->o->dry_run)
		return;
	metrics_ids(operand, target, sizeof(target), name, sizeof(name));
	metrics_family(&m, MN_ROTATE_LAST_BYTES, "gauge", MH_ROTATE_LAST_BYTES);
	metrics_sample(&m, MN_ROTATE_LAST_BYTES, (double)t->sealed, "target",
	    target, "action", "sealed", NULL);
	metrics_sample(&m, MN_ROTATE_LAST_BYTES, (double)t->compressed_in,
	    "target", target, "action", "compressed", NULL);
	metrics_sample(&m, MN_ROTATE_LAST_BYTES, (double)t->deleted, "target",
	    target, "action", "deleted", NULL);
	metrics_family(&m, MN_ROTATE_LAST_GZ, "gauge", MH_ROTATE_LAST_GZ);
	metrics_sample(&m, MN_ROTATE_LAST_GZ, (double)t->compressed_out,
	    "target", target, NULL);
	metrics_family(&m, MN_ROTATE_LAST_UNREAD, "gauge", MH_ROTATE_LAST_UNREAD);
	metrics_sample(&m, MN_ROTATE_LAST_UNREAD, (double)t->unread, "target",
	    target, NULL);
	metrics_family(&m, MN_ROTATE_FILES, "gauge", MH_ROTATE_FILES);
	metrics_sample(&m, MN_ROTATE_FILES, (double)t->nplain, "target", target,
	    "form", "plain", NULL);
	metrics_sample(&m, MN_ROTATE_FILES, (double)t->ngz, "target", target,
	    "form", "gz", NULL);
	metrics_family(&m, MN_ROTATE_LAST_RUN, "gauge", MH_ROTATE_LAST_RUN);
	metrics_sample(&m, MN_ROTATE_LAST_RUN, (double)(clock_wall_ms() / 1000),
	    "target", target, NULL);
	metrics_last_success(&m, "rotate", name, ok, MN_ROTATE_LAST_SUCCESS,
	    MH_ROTATE_LAST_SUCCESS, "target", target, NULL);
	if (metrics_write(&m, "rotate", name, &e) == -1)
		warnmsg("%s", e.msg);
	metrics_release(&m);
}

/* --- compression, on up to MAX_JOBS threads ------------------------------- */

static void
progress_show(struct pool *p)
{
	uint64_t done = 0;
	char a[32], b[32];
	size_t i;

	for (i = 0; i < p->n; i++)
		done += p->jobs[i].done;
	if (p->total == 0 ||
	    ((done - p->shown) * 100 < p->total && done != p->total))
		return;
	p->shown = done;
	format_size(a, sizeof(a), done - done % 1024);
	format_size(b, sizeof(b), p->total - p->total % 1024);
	fprintf(stderr, "\r%s: %s: compressing %zu file%s: %3d%% (%s of %s)",
	    progname, p->label, p->n, p->n == 1 ? "" : "s",
	    (int)(done * 100 / p->total), a, b);
	fflush(stderr);
}

struct progress_arg {
	struct pool *pool;
	struct job *job;
};

static void
on_progress(void *arg, uint64_t done, uint64_t total)
{
	struct progress_arg *pa = arg;

	(void)total;
	pthread_mutex_lock(&pa->pool->mu);
	pa->job->done = done;
	if (pa->pool->show)
		progress_show(pa->pool);
	pthread_mutex_unlock(&pa->pool->mu);
}

static void *
worker(void *arg)
{
	struct pool *p = arg;
	struct progress_arg pa;
	struct job *j;

	for (;;) {
		pthread_mutex_lock(&p->mu);
		j = p->next < p->n ? &p->jobs[p->next++] : NULL;
		pthread_mutex_unlock(&p->mu);
		if (j == NULL)
			return NULL;
		pa.pool = p;
		pa.job = j;
		memset(&j->e, 0, sizeof(j->e));
		j->rc = gzfile_compress(j->src, j->dst, GZFILE_LEVEL, on_progress,
		    &pa, &j->res, &j->e);
	}
}

/*
 * Compress every job, on as many threads as there are processors (at
 * most MAX_JOBS, at most one per job).  Each job's outcome is in its rc
 * and e.
 */
static void
compress_all(struct rotate *r, const char *label, struct job *jobs, size_t n)
{
	pthread_t tid[MAX_JOBS];
	struct pool p;
	size_t nthreads, started = 0, i;

	if (n == 0)
		return;
	memset(&p, 0, sizeof(p));
	p.jobs = jobs;
	p.n = n;
	p.label = label;
	pthread_mutex_init(&p.mu, NULL);
	for (i = 0; i < n; i++)
		p.total += jobs[i].size;
	p.show = r->progress && p.total >= PROGRESS_MIN;
	nthreads = r->ncpu > 0 ? (size_t)r->ncpu : 1;
	if (nthreads > MAX_JOBS)
		nthreads = MAX_JOBS;
	if (nthreads > n)
		nthreads = n;
	if (nthreads > 1)
		for (i = 0; i < nthreads; i++)
			if (pthread_create(&tid[started], NULL, worker, &p) == 0)
				started++;
	if (started == 0)
		worker(&p);
	for (i = 0; i < started; i++)
		pthread_join(tid[i], NULL);
	if (p.show)
		fprintf(stderr, "\r\033[K");
	pthread_mutex_destroy(&p.mu);
}

/* Report the jobs' outcomes in order and add them up. */
static void
compress_report(struct rotate *r, struct job *jobs, size_t n, struct tally *t)
{
	size_t i;

	for (i = 0; i < n; i++) {
		struct job *j = &jobs[i];
		struct action a = { "compress", j->target, j->file,
		    j->res.in_bytes, (int64_t)j->res.out_bytes, 0, NULL };
		if (j->rc == -1) {
			worse(r, error_report(&j->e));
			continue;
		}
		report(r, &a);
		t->compressed_in += j->res.in_bytes;
		t->compressed_out += j->res.out_bytes;
		t->ngz++;
		if (t->nplain > 0)
			t->nplain--;
	}
}

static int
job_add(struct job **jobs, size_t *n, const char *target, const char *dir,
    const char *name, const char *gzname, uint64_t size)
{
	struct job *nj, *j;

	if ((nj = realloc(*jobs, (*n + 1) * sizeof(*nj))) == NULL)
		return -1;
	*jobs = nj;
	j = &nj[(*n)++];
	memset(j, 0, sizeof(*j));
	snprintf(j->target, sizeof(j->target), "%s", target);
	snprintf(j->src, sizeof(j->src), "%s/%s", dir, name);
	snprintf(j->dst, sizeof(j->dst), "%s/%s", dir, gzname);
	j->file = path_basename(j->src);
	j->size = size;
	return 0;
}

/* Re-point the jobs' file names after the array may have moved. */
static void
jobs_fix(struct job *jobs, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		jobs[i].file = path_basename(jobs[i].src);
}

/* --- the directory lock --------------------------------------------------- */

/* Take an exclusive flock on a directory: one rotation of it at a time. */
static int
dir_lock(const struct rotate *r, const char *dir, struct error *e)
{
	int fd;

	if ((fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) == -1)
		return error_errno(e, errno == ENOENT ? EXIT_NOINPUT : EXIT_IOERR,
		    "%s", dir);
	if (r->o->dry_run)
		return fd;
	while (flock(fd, LOCK_EX) == -1) {
		if (errno == EINTR)
			continue;
		error_errno(e, EXIT_IOERR, "%s: lock", dir);
		close(fd);
		return -1;
	}
	return fd;
}

/* --- streams -------------------------------------------------------------- */

/* The age origin of an active segment: its birth time when the file
 * system records one, or its modification time when that is earlier. */
static int64_t
active_origin_ms(const char *path)
{
	struct statx sx;
	int64_t t;

	if (statx(AT_FDCWD, path, 0, STATX_MTIME | STATX_BTIME, &sx) == -1)
		return INT64_MAX;
	t = (int64_t)sx.stx_mtime.tv_sec * 1000 + sx.stx_mtime.tv_nsec / 1000000;
	if (sx.stx_mask & STATX_BTIME) {
		int64_t b = (int64_t)sx.stx_btime.tv_sec * 1000 +
		    sx.stx_btime.tv_nsec / 1000000;
		if (b < t)
			t = b;
	}
	return t;
}

static int
seal_due(const struct rotate *r, uint64_t size, int64_t origin)
{
	const struct rotate_opts *o = r->o;

	if (size == 0)
		return 0;
	if (size > o->seal_size)
		return 1;
	return o->seal_age_ms != RETAIN_NEVER && origin != INT64_MAX &&
	    r->now_ms >= origin && (uint64_t)(r->now_ms - origin) >= o->seal_age_ms;
}

/* Remove orphaned temporary files and finish interrupted compressions. */
static int
stream_recover(struct rotate *r, struct stream *s, struct error *e)
{
	char path[PATH_MAX + NAME_MAX + 2], gzpath[PATH_MAX + 64];
	char name[64], gzname[64];
	struct segment_list l;
	struct dirent *de;
	DIR *d;
	size_t i;

	if ((d = opendir(s->dir)) == NULL)
		return error_errno(e, EXIT_IOERR, "%s", s->name);
	while ((de = readdir(d)) != NULL) {
		/* ".<20 digits>.jsonl.gz.tmpXXXXXX" */
		if (!gzfile_is_temp(de->d_name, NULL) ||
		    strspn(de->d_name + 1, "0123456789") != SEGMENT_DIGITS ||
		    strncmp(de->d_name + 1 + SEGMENT_DIGITS, ".jsonl.gz.tmp",
		    13) != 0)
			continue;
		act(r, "recover", s->name, de->d_name, 0);
		snprintf(path, sizeof(path), "%s/%s", s->dir, de->d_name);
		if (!r->o->dry_run && unlink(path) == -1 && errno != ENOENT) {
			error_errno(e, EXIT_IOERR, "%s", path);
			closedir(d);
			return -1;
		}
	}
	closedir(d);
	if (segments_list(s->dir, &l, e) == -1)
		return error_wrap(e, "%s", s->name);
	for (i = 0; i + 1 < l.n; i++) {
		int rc;
		if (l.v[i].gz)
			continue;
		segment_name(name, sizeof(name), l.v[i].base, 0);
		segment_name(gzname, sizeof(gzname), l.v[i].base, 1);
		snprintf(gzpath, sizeof(gzpath), "%s/%s", s->dir, gzname);
		if (access(gzpath, F_OK) == -1)
			continue;
		act(r, "recover", s->name, name, 0);
		if (r->o->dry_run)
			continue;
		snprintf(path, sizeof(path), "%s/%s", s->dir, name);
		if ((rc = gzfile_finish(path, gzpath, e)) == -1) {
			segments_free(&l);
			return -1;
		}
	}
	segments_free(&l);
	return 0;
}

/*
 * The sealed segments of a stream as retention items (oldest first), and
 * the on-disk size and base of the active segment.  With sim_seal (a dry run that
 * would seal), the active segment counts as sealed at head.
 */
static int
stream_items(struct stream *s, int sim_seal, uint64_t head,
    struct retain_item **itemsp, size_t *np, uint64_t *active_disk,
    uint64_t *active_base, struct error *e)
{
	struct segment_list l;
	struct retain_item *v;
	char path[PATH_MAX + 64], name[64];
	size_t i, n;

	*itemsp = NULL;
	*np = 0;
	*active_disk = 0;
	*active_base = head;
	if (segments_list(s->dir, &l, e) == -1)
		return error_wrap(e, "%s", s->name);
	if (l.n == 0)
		return 0;
	if (!sim_seal)
		*active_base = l.v[l.n - 1].base;
	n = sim_seal ? l.n : l.n - 1;
	if ((v = calloc(n + 1, sizeof(*v))) == NULL) {
		segments_free(&l);
		return error_errno(e, EXIT_SOFTWARE, "%s", s->name);
	}
	for (i = 0; i < l.n; i++) {
		struct stat st;
		int gz;
		uint64_t disk = 0;
		int64_t mt = 0;
		/* the gzip form is what remains when both exist */
		for (gz = 1; gz >= 0; gz--) {
			segment_name(name, sizeof(name), l.v[i].base, gz);
			snprintf(path, sizeof(path), "%s/%s", s->dir, name);
			if (stat(path, &st) == 0)
				break;
		}
		if (gz >= 0) {
			disk = (uint64_t)st.st_size;
			mt = mtime_ms(&st);
		}
		if (i == n) {
			*active_disk = disk;
			break;
		}
		v[i].base = l.v[i].base;
		v[i].end = i + 1 < l.n ? l.v[i + 1].base : head;
		v[i].disk = disk;
		v[i].mtime_ms = mt;
		v[i].gz = gz == 1;
	}
	segments_free(&l);
	*itemsp = v;
	*np = n;
	return 0;
}

struct consumers {
	char **names;
	uint64_t *committed;
	size_t n;
	uint64_t min;			/* UINT64_MAX: none */
};

static void
consumers_free(struct consumers *c)
{
	names_free(c->names, c->n);
	free(c->committed);
	memset(c, 0, sizeof(*c));
}

static int
consumers_load(struct stream *s, struct consumers *c, struct error *e)
{
	struct consumer_state st;
	size_t i;

	memset(c, 0, sizeof(*c));
	c->min = UINT64_MAX;
	if (consumer_list(s->dir, &c->names, &c->n, e) == -1)
		return error_wrap(e, "%s", s->name);
	if (c->n > 0 && (c->committed = calloc(c->n, sizeof(uint64_t))) == NULL) {
		consumers_free(c);
		return error_errno(e, EXIT_SOFTWARE, "%s", s->name);
	}
	for (i = 0; i < c->n; i++) {
		int rc = consumer_load(s->dir, c->names[i], &st, e);
		if (rc == -1) {
			consumers_free(c);
			return error_wrap(e, "%s", s->name);
		}
		c->committed[i] = rc == 1 ? UINT64_MAX : st.committed;
		if (c->committed[i] < c->min)
			c->min = c->committed[i];
	}
	return 0;
}

/*
 * Execute a plan: delete the planned items oldest first (both forms),
 * queue the compressions and report what is kept.  Returns 0, or -1 when
 * a deletion failed (later items are then left alone).
 */
static int
stream_apply(struct rotate *r, struct stream *s, struct retain_item *v,
    size_t n, int report_kept, struct job **jobs, size_t *njobs,
    struct tally *t, struct error *e)
{
	char path[PATH_MAX + 64], name[64], gzname[64];
	size_t i;
	int deleted = 0;

	for (i = 0; i < n; i++) {
		segment_name(name, sizeof(name), v[i].base, 0);
		segment_name(gzname, sizeof(gzname), v[i].base, 1);
		if (v[i].delete) {
			struct action a = { "delete", s->name, v[i].gz ? gzname :
			    name, v[i].disk, -1, v[i].unread, NULL };
			if (!r->o->dry_run) {
				int form;
				for (form = 0; form < 2; form++) {
					snprintf(path, sizeof(path), "%s/%s",
					    s->dir, form ? gzname : name);
					if (unlink(path) == -1 && errno != ENOENT)
						return error_errno(e, EXIT_IOERR,
						    "%s: %s", s->name, path);
				}
				deleted = 1;
			}
			report(r, &a);
			t->deleted += v[i].disk;
			t->unread += v[i].unread;
			continue;
		}
		if (v[i].kept && report_kept) {
			struct action a = { "keep", s->name, v[i].gz ? gzname :
			    name, v[i].disk, -1, 0, "unread" };
			report(r, &a);
		}
		if (v[i].compress) {
			if (r->o->dry_run) {
				act(r, "compress", s->name, name, v[i].disk);
				t->compressed_in += v[i].disk;
			} else if (job_add(jobs, njobs, s->name, s->dir, name, gzname,
			    v[i].disk) == -1)
				return error_errno(e, EXIT_SOFTWARE, "%s", s->name);
		}
		if (v[i].gz)
			t->ngz++;
		else
			t->nplain++;
	}
	if (deleted && fsync_dir(s->dir) == -1)
		return error_errno(e, EXIT_IOERR, "%s: fsync", s->name);
	return 0;
}

/* Warn, consumer by consumer, about unread bytes a forced run deleted. */
static void
report_loss(struct stream *s, const struct consumers *c, uint64_t old_first,
    uint64_t new_first)
{
	size_t i;

	for (i = 0; i < c->n; i++) {
		uint64_t from = c->committed[i] > old_first ? c->committed[i] :
		    old_first;
		if (c->committed[i] == UINT64_MAX || from >= new_first)
			continue;
		warnmsg("%s: --force deleted %llu bytes that consumer %s had not "
		    "read (committed offset %llu, the stream now starts at %llu)",
		    s->name, (unsigned long long)(new_first - from), c->names[i],
		    (unsigned long long)c->committed[i],
		    (unsigned long long)new_first);
	}
}

static uint64_t
first_kept(const struct retain_item *v, size_t n, uint64_t fallback)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (!v[i].delete)
			return v[i].base;
	return fallback;
}

/*
 * Seal the active segment when it is due: O(1) whatever its size, under
 * the writers' lock (with -n, only say so: *sim_seal).  *head gets the
 * stream's head.
 */
static int
stream_seal_due(struct rotate *r, struct stream *s, uint64_t *head,
    int *sim_seal, struct tally *t, struct error *e)
{
	char name[64], path[PATH_MAX + 64];
	struct segment_list l;
	uint64_t first, base, size;
	int rc = 0;

	if (!r->o->dry_run) {
		if (stream_lock(s, e) == -1)
			return -1;
		base = s->base;
		size = s->size;
	} else {
		if (stream_head(s->dir, head, &first, e) == -1 ||
		    segments_list(s->dir, &l, e) == -1)
			return -1;
		if (l.n == 0) {
			segments_free(&l);
			return 0;
		}
		base = l.v[l.n - 1].base;
		size = *head - base;
		segments_free(&l);
	}
	segment_name(name, sizeof(name), base, 0);
	snprintf(path, sizeof(path), "%s/%s", s->dir, name);
	if (seal_due(r, size, active_origin_ms(path))) {
		if (r->o->dry_run)
			*sim_seal = 1;
		else
			rc = stream_seal(s, NULL, NULL, e);
		if (rc != -1) {
			act(r, "seal", s->name, name, size);
			t->sealed += size;
		}
	}
	if (!r->o->dry_run) {
		*head = s->base + s->size;
		stream_unlock(s);
	}
	return rc == -1 ? -1 : 0;
}

/*
 * One retention pass over the stream's segments: plan them by pol, then
 * delete and queue compressions (jobs); final when no pass follows.
 * *old_first (when not NULL) and *new_first get the first offset
 * retained before and after.
 */
static int
retain_pass(struct rotate *r, struct stream *s, struct retain_policy *pol,
    uint64_t head, int sim_seal, int final, uint64_t *old_first,
    uint64_t *new_first, struct job **jobs, size_t *njobs, struct tally *t,
    struct error *e)
{
	struct retain_item *v = NULL;
	uint64_t adisk = 0, abase = 0;
	size_t n = 0;
	int rc;

	if (stream_items(s, sim_seal, head, &v, &n, &adisk, &abase, e) == -1)
		return -1;
	pol->other_bytes = adisk;
	retain_plan(v, n, pol, NULL);
	if (old_first != NULL)
		*old_first = n > 0 ? v[0].base : head;
	*new_first = first_kept(v, n, abase);
	rc = stream_apply(r, s, v, n, final, jobs, njobs, t, e);
	free(v);
	return rc;
}

/* "no such stream", and a hint when arg names a file or directory here. */
static int
no_stream(const char *arg)
{
	int here = access(arg, F_OK) == 0;

	warnmsg("%s: no such stream%s%s%s", arg, here ? " (a file or "
	    "directory is named by a path: ./" : "", here ? arg : "",
	    here ? ")" : "");
	return EXIT_NOINPUT;
}

static int
rotate_stream(struct rotate *r, const char *arg)
{
	const struct rotate_opts *o = r->o;
	struct retain_policy pol;
	struct consumers cons;
	struct job *jobs = NULL;
	struct tally t, t2;
	struct stream s;
	struct error e;
	uint64_t head = 0, old_first = 0, new_first = 0;
	size_t njobs = 0, i;
	int dfd = -1, sim_seal = 0, status = EXIT_OK, phase2;

	memset(&e, 0, sizeof(e));
	memset(&t, 0, sizeof(t));
	memset(&t2, 0, sizeof(t2));
	memset(&cons, 0, sizeof(cons));
	if (stream_open(&s, arg, 0, &e) == -1) {
		if (e.code == EXIT_NOINPUT && strchr(arg, '/') == NULL)
			return no_stream(arg);
		return error_report(&e);
	}
	if ((dfd = dir_lock(r, s.dir, &e)) == -1 ||
	    stream_recover(r, &s, &e) == -1 ||
	    stream_seal_due(r, &s, &head, &sim_seal, &t, &e) == -1 ||
	    consumers_load(&s, &cons, &e) == -1)
		goto fail;

	/* compress and expire; then --max-total with the sizes compression left */
	memset(&pol, 0, sizeof(pol));
	pol.now_ms = r->now_ms;
	pol.compress_after_ms = o->compress_after_ms;
	pol.delete_after_ms = o->delete_after_ms;
	pol.max_total = o->dry_run ? o->max_total : RETAIN_NEVER;
	pol.min_committed = cons.min;
	pol.force = o->force;
	phase2 = !o->dry_run && o->max_total != RETAIN_NEVER;
	if (retain_pass(r, &s, &pol, head, sim_seal, !phase2, &old_first,
	    &new_first, &jobs, &njobs, &t, &e) == -1)
		goto fail;
	jobs_fix(jobs, njobs);
	compress_all(r, s.name, jobs, njobs);
	compress_report(r, jobs, njobs, &t);
	for (i = 0; i < njobs; i++)
		if (jobs[i].rc == -1)
			status = EXIT_IOERR;
	if (phase2) {
		pol.compress_after_ms = RETAIN_NEVER;
		pol.max_total = o->max_total;
		if (retain_pass(r, &s, &pol, head, 0, 1, NULL, &new_first,
		    &jobs, &njobs, &t2, &e) == -1)
			goto fail;
		t.deleted += t2.deleted;
		t.unread += t2.unread;
		t.nplain = t2.nplain;
		t.ngz = t2.ngz;
	}
	if (o->force)
		report_loss(&s, &cons, old_first, new_first);
	write_metrics(r, s.name, &t, status == EXIT_OK);
	goto out;
fail:
	status = error_report(&e);
out:
	free(jobs);
	consumers_free(&cons);
	stream_close(&s);
	if (dfd != -1)
		close(dfd);
	return status;
}

/* --- plain files ---------------------------------------------------------- */

/*
 * The writer's process id from --pidfile, checked to be a process that
 * can be signalled.  -1 with EXIT_NOINPUT when the file is missing,
 * unreadable or holds no process id, EXIT_UNAVAILABLE when the process
 * is gone (a stale file) or may not be signalled.
 */
static int
writer_pid(const struct rotate *r, pid_t *pid, struct error *e)
{
	const char *pf = r->o->pidfile;
	char *text, *end;
	size_t n;
	long v;

	if (read_file(pf, 64, &text, &n) == -1)
		return error_errno(e, EXIT_NOINPUT, "--pidfile %s", pf);
	errno = 0;
	v = strtol(text, &end, 10);
	while (end < text + n && (*end == '\n' || *end == ' ' || *end == '\t' ||
	    *end == '\r'))
		end++;
	if (errno != 0 || end == text || end != text + n || v <= 0 ||
	    v > INT32_MAX) {
		free(text);
		return error_set(e, EXIT_NOINPUT, "--pidfile %s: no process id "
		    "in it", pf);
	}
	free(text);
	*pid = (pid_t)v;
	if (kill(*pid, 0) == -1)
		return error_errno(e, EXIT_UNAVAILABLE, "--pidfile %s: process "
		    "%ld%s", pf, v, errno == ESRCH ? " (a stale pidfile)" : "");
	return 0;
}

/*
 * The followers' hold on the copy named name (either form) or, with name
 * NULL, on the file itself: nonzero when some follower has not finished
 * it, the most bytes one has not read in *unread.
 */
static int
held(const struct follow_hold *h, size_t nh, const char *base,
    const char *name, uint64_t *unread)
{
	size_t i, k = name ? strlen(name) : 0;
	int yes = 0;

	*unread = 0;
	for (i = 0; i < nh; i++) {
		if (name == NULL ? strcmp(h[i].name, base) != 0 :
		    strncmp(h[i].name, name, k) != 0 ||
		    (h[i].name[k] != '\0' && strcmp(h[i].name + k, ".gz") != 0))
			continue;
		yes = 1;
		if (h[i].unread > *unread)
			*unread = h[i].unread;
	}
	return yes;
}

/* Warn, follower by follower, about the unread bytes of a copy that
 * --force deleted. */
static void
report_copy_loss(const char *path, const char *file,
    const struct follow_hold *h, size_t nh, const char *name)
{
	size_t i, k = strlen(name);

	for (i = 0; i < nh; i++)
		if (strncmp(h[i].name, name, k) == 0 && (h[i].name[k] == '\0' ||
		    strcmp(h[i].name + k, ".gz") == 0))
			warnmsg("%s: --force deleted %s with %llu bytes that the "
			    "follower into stream %s had not read", path, file,
			    (unsigned long long)h[i].unread, h[i].stream);
}

/* One plain file's rotation and its copies, across the steps of rotate_base. */
struct plain {
	const char *dir, *base;
	char path[PATH_MAX];
	char copy[NAME_MAX + 1];	/* the copy made (or that -n would make) */
	char made[NAME_MAX + 1];	/* the copy a rename made now, "" none */
	uint64_t bytes;			/* its size */
	int newcopy;			/* -n: the copy not made, planned as item n */
	struct rotcopy *c;		/* the copies there are */
	size_t n;
	struct retain_item *v;		/* their plan (n + newcopy items) */
	struct follow_hold *h;		/* what followers have not finished */
	size_t nh;
	int holdall;			/* their positions unknown: delete none */
};

/* Report e, make it the run's status at worst, and go on. */
static void
carry_on(struct rotate *r, struct error *e)
{
	worse(r, error_report(e));
	memset(e, 0, sizeof(*e));
}

/* Rotate the file itself (when it exists), by copy or by rename. */
static int
plain_rotate(struct rotate *r, struct plain *pl, struct error *e)
{
	const struct rotate_opts *o = r->o;
	int rc, signalled = o->method == METHOD_RENAME && o->sig != 0;
	struct stat st;
	pid_t pid = 0;

	if (lstat(pl->path, &st) == -1 || !S_ISREG(st.st_mode) ||
	    (signalled && st.st_size == 0))
		return 0;	/* nothing to rotate (nor a writer to bother) */
	if (signalled && writer_pid(r, &pid, e) == -1) {
		/* renamed, the writer would go on writing into the copy */
		error_wrap(e, "%s: not rotated", pl->path);
		carry_on(r, e);
		return 0;
	}
	rc = (o->method == METHOD_RENAME ? rotrename_timed : copytrunc_timed)(
	    pl->path, o->lock, (int64_t)o->lock_timeout_ms, r->now_ms / 1000,
	    o->dry_run, pl->copy, sizeof(pl->copy), &pl->bytes, e);
	if (rc == -1 && e->code == EXIT_TEMPFAIL) {
		carry_on(r, e);	/* its copies are still looked after */
		return 0;
	}
	if (rc != 1)
		return rc;
	act(r, "rotate", pl->path, pl->copy, pl->bytes);
	pl->newcopy = o->dry_run;
	if (o->method == METHOD_RENAME)
		snprintf(pl->made, sizeof(pl->made), "%s", pl->copy);
	if (pid > 0 && !o->dry_run && kill(pid, o->sig) == -1) {
		error_errno(e, EXIT_UNAVAILABLE, "%s: rotated, but the writer "
		    "(process %ld of --pidfile %s) was not signalled", pl->path,
		    (long)pid, o->pidfile);
		carry_on(r, e);
	}
	return 0;
}

/* Remove the temporary files an interrupted run left. */
static int
plain_orphans(struct rotate *r, struct plain *pl, struct error *e)
{
	char p2[PATH_MAX + NAME_MAX + 8];
	struct dirent *de;
	DIR *d;

	if ((d = opendir(pl->dir)) == NULL)
		return error_errno(e, EXIT_IOERR, "%s", pl->dir);
	while ((de = readdir(d)) != NULL) {
		if (!rotcopy_is_temp(pl->base, de->d_name))
			continue;
		act(r, "recover", pl->path, de->d_name, 0);
		snprintf(p2, sizeof(p2), "%s/%s", pl->dir, de->d_name);
		if (!r->o->dry_run && unlink(p2) == -1 && errno != ENOENT) {
			error_errno(e, EXIT_IOERR, "%s", p2);
			closedir(d);
			return -1;
		}
	}
	closedir(d);
	return 0;
}

/*
 * List the copies (finishing a half-done gzip of one) and plan them: item
 * i spans [i, i + 1), and the first one a follower holds stops deletion.
 */
static int
plain_plan(struct rotate *r, struct plain *pl, struct error *e)
{
	const struct rotate_opts *o = r->o;
	char src[PATH_MAX + NAME_MAX + 8], gz[PATH_MAX + NAME_MAX + 8];
	uint64_t firsthold = UINT64_MAX, un;
	struct retain_policy pol;
	size_t i, total;

	if (rotcopy_list(pl->dir, pl->base, &pl->c, &pl->n, e) == -1)
		return -1;
	if ((pl->v = calloc(pl->n + 1, sizeof(*pl->v))) == NULL)
		return error_errno(e, EXIT_SOFTWARE, "%s", pl->path);
	total = pl->n + (size_t)pl->newcopy;
	for (i = 0; i < total; i++) {
		struct retain_item *it = &pl->v[i];
		const char *name = i < pl->n ? pl->c[i].name : NULL;
		if (i < pl->n && pl->c[i].plain && pl->c[i].gz) {
			act(r, "recover", pl->path, name, 0);
			snprintf(src, sizeof(src), "%s/%s", pl->dir, name);
			snprintf(gz, sizeof(gz), "%s/%s.gz", pl->dir, name);
			if (!o->dry_run && gzfile_finish(src, gz, e) == -1)
				return -1;
			pl->c[i].plain = 0;
		}
		it->base = i;
		it->end = i + 1;
		if (firsthold == UINT64_MAX && (pl->holdall ||
		    held(pl->h, pl->nh, pl->base, name, &un)))
			firsthold = i;
		/* the copy a dry run would make is item n */
		it->disk = i < pl->n ? pl->c[i].disk : pl->bytes;
		it->mtime_ms = i < pl->n ? pl->c[i].mtime_ms : r->now_ms;
		it->gz = i < pl->n ? pl->c[i].gz : 0;
	}
	memset(&pol, 0, sizeof(pol));
	pol.now_ms = r->now_ms;
	pol.compress_after_ms = o->compress_after_ms;
	pol.delete_after_ms = o->delete_after_ms;
	pol.max_total = o->max_total;
	pol.min_committed = firsthold;
	pol.force = o->force && !pl->holdall;
	retain_plan(pl->v, total, &pol, NULL);
	if (o->method != METHOD_RENAME)
		return 0;
	/*
	 * A writer that opened the file just before the rename may still
	 * append to the copy: the copy made now is neither compressed nor
	 * deleted before a later run, nor is a plain copy written to in the
	 * last RENAME_SETTLE_MS compressed.
	 */
	for (i = 0; i < total; i++) {
		int fresh = i == pl->n || strcmp(pl->c[i].name, pl->made) == 0;
		if (fresh)
			pl->v[i].delete = 0;
		if (fresh || (!pl->v[i].gz && pl->v[i].mtime_ms +
		    RENAME_SETTLE_MS > r->now_ms))
			pl->v[i].compress = 0;
	}
	return 0;
}

/* Delete copy i as planned, reporting what a follower loses with it. */
static int
plain_delete(struct rotate *r, struct plain *pl, size_t i, struct tally *t,
    struct error *e)
{
	const struct rotcopy *c = &pl->c[i];
	char p2[PATH_MAX + NAME_MAX + 8];
	struct action a = { "delete", pl->path, p2, pl->v[i].disk, -1, 0,
	    NULL };
	uint64_t un;

	snprintf(p2, sizeof(p2), "%s%s", c->name, c->gz ? ".gz" : "");
	if (pl->v[i].unread > 0 && held(pl->h, pl->nh, pl->base, c->name,
	    &un)) {
		a.unread = un;
		t->unread += un;
		report_copy_loss(pl->path, p2, pl->h, pl->nh, c->name);
	}
	report(r, &a);
	t->deleted += pl->v[i].disk;
	if (r->o->dry_run)
		return 0;
	snprintf(p2, sizeof(p2), "%s/%s%s", pl->dir, c->name,
	    c->gz ? ".gz" : "");
	if (unlink(p2) == -1 && errno != ENOENT)
		return error_errno(e, EXIT_IOERR, "%s", p2);
	return 0;
}

/* Carry out the plan: delete, keep (saying why) or queue compressions. */
static int
plain_apply(struct rotate *r, struct plain *pl, struct job **jobs,
    size_t *njobs, struct tally *t, struct error *e)
{
	char p2[PATH_MAX + NAME_MAX + 8];
	size_t i;

	for (i = 0; i < pl->n; i++) {
		const struct rotcopy *c = &pl->c[i];
		if (pl->v[i].delete) {
			if (plain_delete(r, pl, i, t, e) == -1)
				return -1;
			continue;
		}
		if (pl->v[i].kept) {
			struct action a = { "keep", pl->path, p2,
			    pl->v[i].disk, -1, 0, "unread" };
			snprintf(p2, sizeof(p2), "%s%s", c->name,
			    c->gz ? ".gz" : "");
			report(r, &a);
		}
		if (c->gz)
			t->ngz++;
		else
			t->nplain++;
		if (!pl->v[i].compress)
			continue;
		snprintf(p2, sizeof(p2), "%s.gz", c->name);
		if (r->o->dry_run) {
			act(r, "compress", pl->path, c->name, pl->v[i].disk);
			t->compressed_in += pl->v[i].disk;
		} else if (job_add(jobs, njobs, pl->path, pl->dir, c->name, p2,
		    pl->v[i].disk) == -1)
			return error_errno(e, EXIT_SOFTWARE, "%s", pl->path);
	}
	if (pl->newcopy && pl->v[pl->n].compress)
		act(r, "compress", pl->path, pl->copy, pl->bytes);
	return 0;
}

/* Rotate one plain file of dir (when it exists) and look after its copies. */
static int
rotate_base(struct rotate *r, const char *dir, const char *base,
    struct job **jobs, size_t *njobs, struct tally *t, struct error *e)
{
	char streams[PATH_MAX];
	struct plain pl;
	int rc = -1;

	memset(&pl, 0, sizeof(pl));
	pl.dir = dir;
	pl.base = base;
	if (snprintf(pl.path, sizeof(pl.path), "%s/%s", dir, base) >=
	    (int)sizeof(pl.path))
		return error_set(e, EXIT_USAGE, "%s/%s: path too long", dir, base);
	if (plain_rotate(r, &pl, e) == -1 || plain_orphans(r, &pl, e) == -1)
		return -1;
	/* what the followers of the file have not finished is kept */
	if (statedir_sub(streams, sizeof(streams), "streams", e) == -1 ||
	    follow_holds(streams, pl.path, &pl.h, &pl.nh, e) == -1) {
		error_wrap(e, "%s: its followers' positions cannot be read; "
		    "no copy is deleted", pl.path);
		carry_on(r, e);
		pl.holdall = 1;
	}
	if (plain_plan(r, &pl, e) == 0 &&
	    plain_apply(r, &pl, jobs, njobs, t, e) == 0)
		rc = 0;
	rotcopy_list_free(pl.c, pl.n);
	free(pl.v);
	free(pl.h);
	if (rc == 0 && !r->o->dry_run && fsync_dir(dir) == -1)
		return error_errno(e, EXIT_IOERR, "%s: fsync", dir);
	return rc;
}

/*
 * Rotate plain files: the one named base in dir, or (base NULL) every
 * "*.jsonl" of dir.  target labels messages and metrics.
 */
static int
rotate_plain(struct rotate *r, const char *target, const char *dir,
    const char *base)
{
	struct job *jobs = NULL;
	struct tally t;
	struct error e;
	char **bases = NULL;
	size_t nbases = 0, njobs = 0, i;
	int dfd, status = EXIT_OK;

	memset(&t, 0, sizeof(t));
	memset(&e, 0, sizeof(e));
	if ((dfd = dir_lock(r, dir, &e)) == -1)
		return error_report(&e);
	if (base != NULL) {
		if (rotate_base(r, dir, base, &jobs, &njobs, &t, &e) == -1)
			status = error_report(&e);
	} else if (rotdir_bases(dir, &bases, &nbases, &e) == -1) {
		status = error_report(&e);
	} else {
		for (i = 0; i < nbases; i++) {
			memset(&e, 0, sizeof(e));
			if (rotate_base(r, dir, bases[i], &jobs, &njobs, &t,
			    &e) == -1 && error_report(&e) > status)
				status = e.code != 0 ? e.code : EXIT_SOFTWARE;
		}
	}
	jobs_fix(jobs, njobs);
	compress_all(r, target, jobs, njobs);
	compress_report(r, jobs, njobs, &t);
	for (i = 0; i < njobs; i++)
		if (jobs[i].rc == -1 && status < EXIT_IOERR)
			status = jobs[i].e.code != 0 ? jobs[i].e.code : EXIT_IOERR;
	write_metrics(r, target, &t, status == EXIT_OK);
	rotdir_free(bases, nbases);
	free(jobs);
	close(dfd);
	return status;
}

/* --- operands ------------------------------------------------------------- */

/* Nonzero when the directory at path is a stream: it has a lock file or a
 * segment. */
static int
is_stream_dir(const char *path)
{
	struct segment_list l;
	struct error e;
	char lock[PATH_MAX + 8];
	int yes;

	snprintf(lock, sizeof(lock), "%s/lock", path);
	if (access(lock, F_OK) == 0)
		return 1;
	if (segments_list(path, &l, &e) == -1)
		return 0;
	yes = l.n > 0;
	segments_free(&l);
	return yes;
}

static int
rotate_operand(struct rotate *r, const char *arg)
{
	char dir[PATH_MAX], clean[PATH_MAX];
	struct stat st;
	size_t len;

	if (strchr(arg, '/') == NULL)
		return rotate_stream(r, arg);
	snprintf(clean, sizeof(clean), "%s", arg);
	len = strlen(clean);
	while (len > 1 && clean[len - 1] == '/')
		clean[--len] = '\0';
	if (stat(clean, &st) == -1) {
		warnmsg("%s: %s", arg, strerror(errno));
		return errno == ENOENT ? EXIT_NOINPUT : EXIT_IOERR;
	}
	if (S_ISDIR(st.st_mode))
		return is_stream_dir(clean) ? rotate_stream(r, clean) :
		    rotate_plain(r, clean, clean, NULL);
	if (!S_ISREG(st.st_mode)) {
		warnmsg("%s: not a regular file, stream or directory", arg);
		return EXIT_USAGE;
	}
	path_dirname(clean, dir, sizeof(dir));
	return rotate_plain(r, clean, dir, path_basename(clean));
}

/* Every stream of the state directory, in name order. */
static int
rotate_all(struct rotate *r)
{
	char dir[PATH_MAX];
	struct error e;
	char **names;
	size_t n, i;

	if (statedir_sub(dir, sizeof(dir), "streams", &e) == -1 ||
	    names_list(dir, NAMES_DIRS, &names, &n, &e) == -1)
		return error_report(&e);
	for (i = 0; i < n; i++)
		worse(r, rotate_stream(r, names[i]));
	names_free(names, n);
	return EXIT_OK;
}

static int
run(const struct rotate_opts *o)
{
	struct rotate r;
	int i;

	memset(&r, 0, sizeof(r));
	r.o = o;
	r.now_ms = clock_wall_ms();
	r.progress = isatty(STDERR_FILENO);
	r.ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	if (o->noperands == 0)
		worse(&r, rotate_all(&r));
	for (i = 0; i < o->noperands; i++) {
		worse(&r, rotate_operand(&r, o->operands[i]));
		fflush(stdout);
	}
	return r.status;
}

/* --- options -------------------------------------------------------------- */

enum {
	OPT_COMPRESS_AFTER = 256, OPT_DELETE_AFTER, OPT_FORCE, OPT_JSON,
	OPT_LOCK, OPT_MAX_TOTAL, OPT_SEAL_AGE, OPT_SEAL_SIZE, OPT_LOCK_TIMEOUT,
	OPT_METHOD, OPT_SIGNAL, OPT_PIDFILE, OPT_VERSION
};

static const struct option longopts[] = {
	{ "compress-after",	required_argument,	NULL, OPT_COMPRESS_AFTER },
	{ "delete-after",	required_argument,	NULL, OPT_DELETE_AFTER },
	{ "dry-run",		no_argument,		NULL, 'n' },
	{ "force",		no_argument,		NULL, OPT_FORCE },
	{ "help",		no_argument,		NULL, 'h' },
	{ "json",		no_argument,		NULL, OPT_JSON },
	{ "lock",		required_argument,	NULL, OPT_LOCK },
	{ "lock-timeout",	required_argument,	NULL, OPT_LOCK_TIMEOUT },
	{ "max-total",		required_argument,	NULL, OPT_MAX_TOTAL },
	{ "method",		required_argument,	NULL, OPT_METHOD },
	{ "pidfile",		required_argument,	NULL, OPT_PIDFILE },
	{ "seal-age",		required_argument,	NULL, OPT_SEAL_AGE },
	{ "seal-size",		required_argument,	NULL, OPT_SEAL_SIZE },
	{ "signal",		required_argument,	NULL, OPT_SIGNAL },
	{ "verbose",		no_argument,		NULL, 'v' },
	{ "version",		no_argument,		NULL, OPT_VERSION },
	{ NULL,			0,			NULL, 0 }
};

/* A duration, or "never". */
static int
parse_age(const char *v, uint64_t *ms)
{
	if (strcmp(v, "never") == 0) {
		*ms = RETAIN_NEVER;
		return 0;
	}
	return parse_duration_ms(v, ms);
}

/* A signal by name (HUP, SIGHUP) or number; 0 with *sig. */
static int
parse_signal(const char *v, int *sig)
{
	static const struct {
		const char *name;
		int sig;
	} t[] = {
		{ "HUP", SIGHUP }, { "INT", SIGINT }, { "QUIT", SIGQUIT },
		{ "USR1", SIGUSR1 }, { "USR2", SIGUSR2 }, { "TERM", SIGTERM },
		{ "ALRM", SIGALRM }, { "CONT", SIGCONT }, { "WINCH", SIGWINCH },
	};
	char *end;
	size_t i;
	long n;

	if (strncasecmp(v, "SIG", 3) == 0)
		v += 3;
	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++)
		if (strcasecmp(v, t[i].name) == 0) {
			*sig = t[i].sig;
			return 0;
		}
	errno = 0;
	n = strtol(v, &end, 10);
	if (errno != 0 || end == v || *end != '\0' || n < 1 || n > SIGRTMAX ||
	    n == SIGKILL || n == SIGSTOP)
		return -1;
	*sig = (int)n;
	return 0;
}

/*
 * Set one setting from its text: a flag's, or the environment's or the
 * config file's (then "from" names the source).
 */
static int
set_option(void *arg, int opt, const char *v, const char *from,
    struct error *e)
{
	struct rotate_opts *o = arg;
	const char *what = NULL;

	switch (opt) {
	case OPT_COMPRESS_AFTER:
		if (parse_age(v, &o->compress_after_ms) == -1)
			what = "compress-after";
		break;
	case OPT_DELETE_AFTER:
		if (parse_age(v, &o->delete_after_ms) == -1)
			what = "delete-after";
		break;
	case OPT_LOCK:
		if (lock_kind_parse(v, &o->lock) == -1 ||
		    o->lock == LOCK_KIND_NONE)
			what = "lock";
		break;
	case OPT_LOCK_TIMEOUT:
		if (parse_duration_ms(v, &o->lock_timeout_ms) == -1 ||
		    o->lock_timeout_ms > INT64_MAX)
			what = "lock-timeout";
		break;
	case OPT_METHOD:
		if (strcmp(v, "copytruncate") == 0)
			o->method = METHOD_COPYTRUNCATE;
		else if (strcmp(v, "rename") == 0)
			o->method = METHOD_RENAME;
		else
			what = "method";
		break;
	case OPT_PIDFILE:
		if (*v == '\0' || strlen(v) >= sizeof(o->pidfile))
			what = "pidfile";
		else
			snprintf(o->pidfile, sizeof(o->pidfile), "%s", v);
		break;
	case OPT_SIGNAL:
		if (parse_signal(v, &o->sig) == -1)
			what = "signal";
		break;
	case OPT_MAX_TOTAL:
		if (parse_size(v, &o->max_total) == -1)
			what = "max-total";
		else if (o->max_total == 0)
			o->max_total = RETAIN_NEVER;
		break;
	case OPT_SEAL_AGE:
		if (parse_age(v, &o->seal_age_ms) == -1)
			what = "seal-age";
		break;
	case OPT_SEAL_SIZE:
		if (parse_size(v, &o->seal_size) == -1)
			what = "seal-size";
		break;
	}
	if (what == NULL)
		return 0;
	if (from != NULL)
		return error_set(e, EXIT_CONFIG, "%s: invalid %s \"%s\"", from,
		    what, v);
	return error_set(e, EXIT_USAGE, "--%s: invalid value \"%s\"", what, v);
}

static int
option_given(void *arg, int opt)
{
	const struct rotate_opts *o = arg;

	return (int)(o->given >> (opt - OPT_COMPRESS_AFTER) & 1);
}

/* [rotate] settings and AISTACK_ROTATE_*, for what no flag set. */
static const struct config_option config_keys[] = {
	{ "compress_after", OPT_COMPRESS_AFTER },
	{ "delete_after", OPT_DELETE_AFTER }, { "lock", OPT_LOCK },
	{ "lock_timeout", OPT_LOCK_TIMEOUT },
	{ "max_total", OPT_MAX_TOTAL }, { "method", OPT_METHOD },
	{ "pidfile", OPT_PIDFILE }, { "seal_age", OPT_SEAL_AGE },
	{ "seal_size", OPT_SEAL_SIZE }, { "signal", OPT_SIGNAL },
};

int
main(int argc, char **argv)
{
	struct rotate_opts o;
	struct error e;
	int ch, status;

	progname = "aistack-rotate";
	memset(&o, 0, sizeof(o));
	o.seal_size = DEFAULT_SEAL_SIZE;
	o.seal_age_ms = DEFAULT_SEAL_AGE;
	o.compress_after_ms = DEFAULT_COMPRESS_AFTER;
	o.delete_after_ms = DEFAULT_DELETE_AFTER;
	o.max_total = RETAIN_NEVER;
	o.lock = LOCK_KIND_FLOCK;
	o.lock_timeout_ms = 10000;
	signal(SIGPIPE, SIG_IGN);

	while ((ch = getopt_long(argc, argv, "hnv", longopts, NULL)) != -1) {
		switch (ch) {
		case 'h':
			fputs(usage_text, stdout);
			status = EXIT_OK;
			goto out;
		case 'n':
			o.dry_run = 1;
			break;
		case 'v':
			o.verbose = 1;
			break;
		case OPT_COMPRESS_AFTER:
		case OPT_DELETE_AFTER:
		case OPT_LOCK:
		case OPT_LOCK_TIMEOUT:
		case OPT_MAX_TOTAL:
		case OPT_METHOD:
		case OPT_PIDFILE:
		case OPT_SIGNAL:
		case OPT_SEAL_AGE:
		case OPT_SEAL_SIZE:
			if (set_option(&o, ch, optarg, NULL, &e) == -1)
				return usage_error(usage_text, "%s", e.msg);
			o.given |= 1ULL << (ch - OPT_COMPRESS_AFTER);
			break;
		case OPT_FORCE:
			o.force = 1;
			break;
		case OPT_JSON:
			o.json = 1;
			break;
		case OPT_VERSION:
			printf("aistack-rotate %s\n", AISTACK_VERSION);
			status = EXIT_OK;
			goto out;
		default:
			return usage_error(usage_text, NULL);
		}
	}
	o.operands = argv + optind;
	o.noperands = argc - optind;
	if (config_apply("rotate", config_keys, sizeof(config_keys) /
	    sizeof(config_keys[0]), option_given, set_option, &o, &e) == -1) {
		status = error_report(&e);
		goto out;
	}
	if ((o.sig != 0) != (o.pidfile[0] != '\0') ||
	    (o.sig != 0 && o.method != METHOD_RENAME))
		return usage_error(usage_text, "--signal and --pidfile go "
		    "together, with --method rename");
	status = run(&o);
out:
	return exit_flush(status);
}
