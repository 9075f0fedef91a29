/*
 * aistack-checkpoint: durable consumer offsets over a stream.  A consumer
 * reads the records after its committed offset; they are committed only
 * when whoever handled them says so (commit), or when the batch pipeline
 * that handled them exited 0 (run).  Anything not committed is delivered
 * again, so a failure or a crash at any moment loses nothing.
 *
 * One process works a consumer at a time (lib/stream/consumerlock.h); run hands
 * the lock to its batch pipeline, so a pipeline orphaned by a killed run
 * keeps the consumer until it exits.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/clock.h"
#include "base/config.h"
#include "base/err.h"
#include "base/exitcode.h"
#include "base/fsutil.h"
#include "base/metricnames.h"
#include "base/metrics.h"
#include "base/parse.h"
#include "base/sig.h"
#include "base/statedir.h"
#include "format/json.h"
#include "state/stateview.h"
#include "stream/consumer.h"
#include "stream/consumerlock.h"
#include "stream/reader.h"
#include "stream/stream.h"

#define DEFAULT_BATCH		100
#define DEFAULT_MAX_BYTES	((uint64_t)16 << 20)	/* run --max-batch-bytes */
#define LINGER_MS		1000	/* run -f: wait to fill a batch */
#define POLL_MIN_MS		10
#define POLL_MAX_MS		200
#define METRICS_EVERY_MS	10000
#define METRICS_NAME_MAX	(256 + NAME_MAX_LEN + 2)

enum verb { VERB_READ, VERB_COMMIT, VERB_RUN, VERB_SEEK, VERB_STATUS,
	VERB_REMOVE };
enum seek_to { SEEK_TO_NONE, SEEK_TO_START, SEEK_TO_END, SEEK_TO_OFFSET };

struct checkpoint_opts {
	enum verb verb;
	int verbose;
	uint64_t max;			/* read -n: 0 for every record */
	uint64_t batch;			/* run -n */
	int batch_given;
	uint64_t max_batch;		/* run --max-batch: 0, no growth */
	uint64_t max_bytes;		/* run --max-batch-bytes */
	int follow;
	uint64_t timeout_ms;		/* read -f --timeout: 0 for none */
	int from_end;
	int json;
	enum seek_to seek;
	uint64_t offset;		/* seek --offset */
	const char *consumer;
	const char *stream;
	char **command;			/* run: COMMAND [ARG...], NULL */
	char **streams;			/* status operands */
	int nstreams;
};

/* A consumer being worked: its stream, lock and state. */
struct work {
	const struct checkpoint_opts *o;
	struct stream s;
	int stream_open;
	int lockfd;
	int exists;			/* the consumer file was there */
	struct consumer_state st;
	uint64_t records0;		/* st.records when the run began */
	uint64_t batches;		/* batches committed in this run */
	uint64_t failed;		/* batches failed in this run */
	uint64_t cur;			/* run: records of the next batch */
	uint64_t metrics_at;
	int has_deferred;		/* run: an error after a last batch */
	struct error deferred;
	uint64_t deferred_lost, deferred_at;
};

static const char usage_text[] =
"usage: aistack-checkpoint read [-v] [-n MAX] [-f] [--timeout DUR] [--from start|end] CONSUMER STREAM\n"
"       aistack-checkpoint commit [-v] CONSUMER STREAM\n"
"       aistack-checkpoint run [-v] [-n BATCH] [--max-batch N] [--max-batch-bytes SIZE]\n"
"                              [-f] [--from start|end] CONSUMER STREAM -- COMMAND [ARG...]\n"
"       aistack-checkpoint seek [-v] CONSUMER STREAM --start | --end | --offset N\n"
"       aistack-checkpoint status [--json] [STREAM...]\n"
"       aistack-checkpoint remove [-v] CONSUMER STREAM\n"
"       aistack-checkpoint -h | --help | --version\n";

static const char help_text[] =
"\n"
"Durable consumer offsets over a stream: records are delivered again until\n"
"they are committed.\n"
"\n"
"  read     print the records after the committed offset; they become pending\n"
"  commit   make the pending offset the committed one\n"
"  run      feed batches to COMMAND's standard input, commit each on exit 0\n"
"  seek     move the committed offset to the start, the end or offset N\n"
"  status   head, backlog, counters, disk use, paused; each consumer's lag\n"
"  remove   forget a consumer\n"
"\n"
"  -n MAX|BATCH          read: at most MAX records; run: records a batch (100)\n"
"      --max-batch N     run: while batches come full, double them up to N records\n"
"      --max-batch-bytes SIZE\n"
"                        run: and stop a growing batch at SIZE bytes (16M)\n"
"  -f                    follow: wait for more records at the head\n"
"      --timeout DUR     read -f: stop waiting after DUR\n"
"      --from start|end  where a new consumer starts (default start)\n"
"      --start, --end, --offset N\n"
"                        seek: the first retained offset, the head, or offset N\n"
"      --json            status as JSON Lines, one object per stream\n"
"  -v                    report what was done on standard error\n"
"  -h, --help            show this help\n"
"      --version         show the version\n";

/* Sleep; a signal (SIGTERM) cuts it short. */
static void
nap_ms(unsigned ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000 };

	nanosleep(&ts, NULL);
}

/* --- metrics -------------------------------------------------------------- */

/* The metrics file's name part: "STREAM.CONSUMER" (the stream's last
 * path component), cleaned as metrics_write cleans it. */
static void
metrics_name(const struct work *w, char *buf, size_t n)
{
	size_t i;

	if (snprintf(buf, n, "%s.%s", path_basename(w->s.name),
	    w->o->consumer) < 0)
		buf[0] = '\0';
	for (i = 0; buf[i] != '\0'; i++) {
		char c = buf[i];
		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		    c == '.' || c == '_' || c == '-'))
			buf[i] = '_';
	}
}

static int
metrics_file(const struct work *w, char *path, size_t n, struct error *e)
{
	char dir[PATH_MAX], name[METRICS_NAME_MAX];

	if (statedir_sub(dir, sizeof(dir), "metrics", e) == -1)
		return -1;
	metrics_name(w, name, sizeof(name));
	if ((size_t)snprintf(path, n, "%s/checkpoint-%s.prom", dir, name) >= n)
		return error_set(e, EXIT_CANTCREAT, "%s: path too long", dir);
	return 0;
}

/*
 * Write metrics/checkpoint-STREAM.CONSUMER.prom: the consumer's counters
 * (its file keeps them; written under the consumer's lock, so the file
 * never shows them going down) and what this run did.  ok says whether
 * the run has gone well so far.  Lag and offsets are live values: they
 * come from the read model (lib/state/stateview.h), not from here.  A failure
 * only warns.
 */
static void
write_metrics(struct work *w, int ok)
{
	struct metrics m = METRICS_INIT;
	const char *s = w->s.name, *c = w->o->consumer;
	char name[METRICS_NAME_MAX];
	struct error e;

	w->metrics_at = clock_mono_ms();
	metrics_name(w, name, sizeof(name));
	metrics_family(&m, MN_CONSUMER_RECORDS, "counter", MH_CONSUMER_RECORDS);
	metrics_sample(&m, MN_CONSUMER_RECORDS, (double)w->st.records,
	    "stream", s, "consumer", c, NULL);
	metrics_family(&m, MN_CONSUMER_FAILED, "counter", MH_CONSUMER_FAILED);
	metrics_sample(&m, MN_CONSUMER_FAILED, (double)w->st.batches_failed,
	    "stream", s, "consumer", c, NULL);
	metrics_family(&m, MN_CHECKPOINT_LAST_RECORDS, "gauge",
	    MH_CHECKPOINT_LAST_RECORDS);
	metrics_sample(&m, MN_CHECKPOINT_LAST_RECORDS,
	    (double)(w->st.records - w->records0), "stream", s, "consumer", c,
	    NULL);
	metrics_family(&m, MN_CHECKPOINT_LAST_BATCHES, "gauge",
	    MH_CHECKPOINT_LAST_BATCHES);
	metrics_sample(&m, MN_CHECKPOINT_LAST_BATCHES, (double)w->batches,
	    "stream", s, "consumer", c, NULL);
	metrics_family(&m, MN_CHECKPOINT_LAST_FAILED, "gauge",
	    MH_CHECKPOINT_LAST_FAILED);
	metrics_sample(&m, MN_CHECKPOINT_LAST_FAILED, (double)w->failed,
	    "stream", s, "consumer", c, NULL);
	metrics_last_success(&m, "checkpoint", name, ok && w->failed == 0,
	    MN_CHECKPOINT_LAST_SUCCESS, MH_CHECKPOINT_LAST_SUCCESS, "stream", s,
	    "consumer", c, NULL);
	if (metrics_write(&m, "checkpoint", name, &e) == -1)
		warnmsg("%s", e.msg);
	metrics_release(&m);
}

/* --- the consumer --------------------------------------------------------- */

/*
 * Open the stream, take the consumer's lock (waiting for it) and load its
 * state.  With create, the stream and consumer may be new: a new consumer
 * starts at the stream's first retained offset, or at its head with --from
 * end; without, a missing consumer is EXIT_NOINPUT.
 */
static int
work_open(struct work *w, const struct checkpoint_opts *o, int create,
    struct error *e)
{
	char path[PATH_MAX];
	uint64_t head, first;
	int rc;

	memset(w, 0, sizeof(*w));
	w->o = o;
	w->lockfd = -1;
	if (stream_open(&w->s, o->stream, create, e) == -1)
		return -1;
	w->stream_open = 1;
	if (consumer_path(w->s.dir, o->consumer, path, sizeof(path), e) == -1)
		return -1;
	if ((w->lockfd = consumer_lock(w->s.dir, o->consumer, 0, e)) == -1) {
		if (e->code != EXIT_TEMPFAIL)
			return error_wrap(e, "%s", w->s.name);
		if (o->verbose)
			warnmsg("%s: consumer %s is busy, waiting", w->s.name,
			    o->consumer);
		if ((w->lockfd = consumer_lock(w->s.dir, o->consumer, -1,
		    e)) == -1)
			return error_wrap(e, "%s", w->s.name);
	}
	if ((rc = consumer_load(w->s.dir, o->consumer, &w->st, e)) == -1)
		return -1;
	w->exists = rc == 0;
	w->records0 = w->st.records;
	if (w->exists)
		return 0;
	if (!create)
		return error_set(e, EXIT_NOINPUT, "%s: no consumer %s",
		    w->s.name, o->consumer);
	if (stream_head(w->s.dir, &head, &first, e) == -1)
		return -1;
	w->st.committed = w->st.pending = o->from_end ? head : first;
	w->st.records = 0;
	return 0;
}

static void
work_close(struct work *w)
{
	consumer_unlock(w->lockfd);
	w->lockfd = -1;
	if (w->stream_open)
		stream_close(&w->s);
	w->stream_open = 0;
}

static int
work_save(struct work *w, struct error *e)
{
	if (consumer_save(w->s.dir, w->o->consumer, &w->st, e) == -1)
		return -1;
	w->exists = 1;
	return 0;
}

/* Report a reader failure, naming lost data in the consumer's terms. */
static int
report_reader(struct work *w, uint64_t lost, uint64_t at, struct error *e)
{
	if (lost == 0) {
		if (e->code == EXIT_DATAERR)
			warnmsg("%s: consumer %s: %s", w->s.name,
			    w->o->consumer, e->msg);
		else
			warnmsg("%s", e->msg);
		return e->code != 0 ? e->code : EXIT_SOFTWARE;
	}
	warnmsg("%s: consumer %s: offset %llu is in expired data: %llu bytes "
	    "lost (\"aistack-checkpoint seek --start\" skips them)", w->s.name,
	    w->o->consumer, (unsigned long long)at, (unsigned long long)lost);
	return EXIT_DATAERR;
}

static int
open_reader(struct work *w, struct reader **r, uint64_t offset)
{
	struct error e;
	uint64_t lost = 0;

	memset(&e, 0, sizeof(e));
	if (reader_open(r, w->s.dir, offset, &lost, &e) == -1)
		return report_reader(w, lost, offset, &e);
	return 0;
}

/* --- read ----------------------------------------------------------------- */

static int
cmd_read(const struct checkpoint_opts *o)
{
	struct reader *r = NULL;
	struct work w;
	struct error e;
	uint64_t printed = 0, delivered, deadline = 0;
	unsigned nap = POLL_MIN_MS;
	const char *d;
	size_t len, n;
	int status = EXIT_OK, rc;

	memset(&e, 0, sizeof(e));
	if (work_open(&w, o, 1, &e) == -1) {
		status = error_report(&e);
		goto out;
	}
	if ((status = open_reader(&w, &r, w.st.committed)) != 0)
		goto out;
	delivered = w.st.committed;
	/* a larger pipe means fewer switches with the reader (cat uses 64k) */
	(void)fcntl(STDOUT_FILENO, F_SETPIPE_SZ, 1024 * 1024);
	if (o->follow) {
		sig_catch_stop();
		if (o->timeout_ms != 0)
			deadline = clock_mono_ms() + o->timeout_ms;
	}
	while (o->max == 0 || printed < o->max) {
		rc = reader_next(r, o->max != 0 ?
		    (size_t)(o->max - printed) : 0, &d, &len, &n, &e);
		if (rc == -1) {
			status = report_reader(&w, reader_lost(r),
			    reader_offset(r), &e);
			break;
		}
		if (rc == 1) {
			if (write_all(STDOUT_FILENO, d, len) == -1) {
				warnmsg("standard output: %s", strerror(errno));
				status = EXIT_IOERR;
				break;
			}
			printed += n;
			delivered = reader_offset(r);
			nap = POLL_MIN_MS;
			continue;
		}
		if (!o->follow || sig_stopping() ||
		    (deadline != 0 && clock_mono_ms() >= deadline))
			break;
		if (clock_mono_ms() - w.metrics_at >= METRICS_EVERY_MS)
			write_metrics(&w, 1);
		nap_ms(nap);
		if (nap < POLL_MAX_MS)
			nap *= 2;
	}
	if (!w.exists || delivered != w.st.pending) {
		w.st.pending = delivered;
		if (work_save(&w, &e) == -1 && status == EXIT_OK)
			status = error_report(&e);
	}
	if (o->verbose)
		warnmsg("%s: consumer %s: %llu records delivered, pending "
		    "offset %llu", w.s.name, o->consumer,
		    (unsigned long long)printed, (unsigned long long)delivered);
	write_metrics(&w, status == EXIT_OK);
out:
	reader_free(r);
	work_close(&w);
	return status;
}

/* --- commit --------------------------------------------------------------- */

/* Count the records between from and to (both record boundaries). */
static int
count_records(struct work *w, uint64_t from, uint64_t to, uint64_t *count)
{
	struct reader *r;
	struct error e;
	const char *d, *p, *end;
	size_t len, n;
	uint64_t at = from;
	int rc, status;

	*count = 0;
	if ((status = open_reader(w, &r, from)) != 0)
		return status;
	while (at < to) {
		memset(&e, 0, sizeof(e));
		if ((rc = reader_next(r, 0, &d, &len, &n, &e)) == -1) {
			status = report_reader(w, reader_lost(r),
			    reader_offset(r), &e);
			break;
		}
		if (rc == 0) {
			warnmsg("%s: consumer %s: pending offset %llu is past "
			    "the head %llu", w->s.name, w->o->consumer,
			    (unsigned long long)to, (unsigned long long)at);
			status = EXIT_DATAERR;
			break;
		}
		if (at + len <= to) {
			*count += n;
		} else {
			for (p = d, end = d + (to - at); p < end &&
			    (p = memchr(p, '\n', (size_t)(end - p))) != NULL;
			    p++)
				(*count)++;
		}
		at += len;
	}
	reader_free(r);
	return status;
}

static int
cmd_commit(const struct checkpoint_opts *o)
{
	struct work w;
	struct error e;
	uint64_t count;
	int status = EXIT_OK;

	memset(&e, 0, sizeof(e));
	if (work_open(&w, o, 0, &e) == -1) {
		status = error_report(&e);
		goto out;
	}
	if (w.st.pending == w.st.committed) {
		if (o->verbose)
			warnmsg("%s: consumer %s: nothing pending", w.s.name,
			    o->consumer);
		goto out;
	}
	if ((status = count_records(&w, w.st.committed, w.st.pending,
	    &count)) != 0)
		goto out;
	w.st.committed = w.st.pending;
	w.st.records += count;
	if (work_save(&w, &e) == -1) {
		status = error_report(&e);
		goto out;
	}
	w.batches++;
	if (o->verbose)
		warnmsg("%s: consumer %s: committed %llu records, offset %llu",
		    w.s.name, o->consumer, (unsigned long long)count,
		    (unsigned long long)w.st.committed);
	write_metrics(&w, 1);
out:
	work_close(&w);
	return status;
}

/* --- run ------------------------------------------------------------------ */

/*
 * Collect the next batch: up to w->cur whole records (and, while batches
 * grow, no more records once it holds --max-batch-bytes).  Returns 1 with
 * the batch in *data, *len and *n (borrowed until the next call), 0 when there
 * is nothing to do (no record and no -f, or a stop was asked), or minus
 * the exit status on error (reported).  Records before an error form a
 * last batch; the error is kept in w->deferred for after it.
 */
static int
next_batch(struct work *w, struct reader *r, struct buf *b,
    const char **data, size_t *len, size_t *n)
{
	const struct checkpoint_opts *o = w->o;
	uint64_t linger = 0;
	unsigned nap = POLL_MIN_MS;
	struct error e;
	const char *d;
	size_t l, k;
	int rc;

	b->len = 0;
	*n = 0;
	for (;;) {
		if (sig_stopping())
			return 0;
		memset(&e, 0, sizeof(e));
		rc = reader_next(r, (size_t)w->cur - *n, &d, &l, &k, &e);
		if (rc == 1) {
			if (*n == 0 && (k == w->cur || (w->cur > o->batch &&
			    l >= o->max_bytes))) {
				*data = d;	/* the whole batch: no copy */
				*len = l;
				*n = k;
				return 1;
			}
			if (buf_append(b, d, l) == -1) {
				warnmsg("batch of %zu bytes: %s", b->len + l,
				    strerror(errno));
				return -EXIT_SOFTWARE;
			}
			*n += k;
			nap = POLL_MIN_MS;
			if (*n == w->cur || (w->cur > o->batch &&
			    b->len >= o->max_bytes))
				break;
			continue;
		}
		if (rc == -1) {
			if (*n == 0) {
				return -report_reader(w, reader_lost(r),
				    reader_offset(r), &e);
			}
			w->has_deferred = 1;
			w->deferred = e;
			w->deferred_lost = reader_lost(r);
			w->deferred_at = reader_offset(r);
			break;
		}
		/* at the head */
		if (!o->follow) {
			if (*n == 0)
				return 0;
			break;
		}
		if (*n > 0) {
			if (linger == 0)
				linger = clock_mono_ms() + LINGER_MS;
			else if (clock_mono_ms() >= linger)
				break;
		}
		if (clock_mono_ms() - w->metrics_at >= METRICS_EVERY_MS)
			write_metrics(w, w->o->follow);
		nap_ms(nap);
		if (nap < POLL_MAX_MS)
			nap *= 2;
	}
	*data = b->data;
	*len = b->len;
	return 1;
}

/*
 * Run COMMAND with the batch on its standard input and return its exit
 * status (128 + the signal's number when a signal killed it).  COMMAND
 * inherits the consumer lock's descriptor, so the consumer stays locked
 * while it or anything it started is alive.
 */
static int
run_batch(struct work *w, const char *data, size_t len, uint64_t start,
    uint64_t end)
{
	char **cmd = w->o->command;
	char num[32];
	int p[2], status;
	pid_t pid;

	snprintf(num, sizeof(num), "%llu", (unsigned long long)start);
	setenv("AISTACK_BATCH_START", num, 1);
	snprintf(num, sizeof(num), "%llu", (unsigned long long)end);
	setenv("AISTACK_BATCH_END", num, 1);
	if (pipe2(p, O_CLOEXEC) == -1) {
		warnmsg("pipe: %s", strerror(errno));
		return EXIT_SOFTWARE;
	}
	fflush(NULL);
	if ((pid = fork()) == -1) {
		warnmsg("fork: %s", strerror(errno));
		close(p[0]);
		close(p[1]);
		return EXIT_SOFTWARE;
	}
	if (pid == 0) {
		signal(SIGPIPE, SIG_DFL);
		signal(SIGINT, SIG_DFL);
		signal(SIGTERM, SIG_DFL);
		if (p[0] == STDIN_FILENO ? fcntl(p[0], F_SETFD, 0) == -1 :
		    dup2(p[0], STDIN_FILENO) == -1) {
			warnmsg("%s: standard input: %s", cmd[0],
			    strerror(errno));
			_exit(EXIT_CANTEXEC);
		}
		/* the pipeline holds the consumer until it exits */
		if (fcntl(w->lockfd, F_SETFD, 0) == -1) {
			warnmsg("%s: consumer lock: %s", cmd[0],
			    strerror(errno));
			_exit(EXIT_CANTEXEC);
		}
		execvp(cmd[0], cmd);
		warnmsg("%s: %s", cmd[0], strerror(errno));
		_exit(errno == ENOENT ? EXIT_NOTFOUND : EXIT_CANTEXEC);
	}
	close(p[0]);
	/* a COMMAND that does not read it all is its own business */
	if (write_all(p[1], data, len) == -1 && errno != EPIPE)
		warnmsg("%s: standard input: %s", cmd[0], strerror(errno));
	close(p[1]);
	while (waitpid(pid, &status, 0) == -1)
		if (errno != EINTR) {
			warnmsg("%s: wait: %s", cmd[0], strerror(errno));
			return EXIT_SOFTWARE;
		}
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	if (WIFSIGNALED(status))
		return 128 + WTERMSIG(status);
	return EXIT_SOFTWARE;
}

static int
cmd_run(const struct checkpoint_opts *o)
{
	struct buf b = BUF_INIT;
	struct reader *r = NULL;
	struct work w;
	struct error e;
	uint64_t start;
	const char *data = NULL;
	size_t len = 0, n;
	int status = EXIT_OK, rc;

	memset(&e, 0, sizeof(e));
	if (work_open(&w, o, 1, &e) == -1) {
		status = error_report(&e);
		goto out;
	}
	if (!w.exists && work_save(&w, &e) == -1) {	/* register it */
		status = error_report(&e);
		goto out;
	}
	if ((status = open_reader(&w, &r, w.st.committed)) != 0)
		goto out;
	setenv("AISTACK_STREAM", o->stream, 1);
	setenv("AISTACK_CONSUMER", o->consumer, 1);
	w.cur = o->batch;
	sig_catch_stop();
	for (;;) {
		if ((rc = next_batch(&w, r, &b, &data, &len, &n)) < 0) {
			status = -rc;
			break;
		}
		if (rc == 0)
			break;
		start = w.st.committed;
		status = run_batch(&w, data, len, start, start + len);
		if (status != EXIT_OK) {
			w.failed++;
			warnmsg("%s: consumer %s: batch %llu-%llu (%zu "
			    "records) failed: %s exited with status %d; "
			    "not committed", w.s.name, o->consumer,
			    (unsigned long long)start,
			    (unsigned long long)(start + len), n,
			    o->command[0], status);
			if (consumer_note_failure(w.s.dir, o->consumer, &w.st,
			    &e) == -1)
				error_report(&e);
			break;
		}
		w.st.committed = w.st.pending = start + len;
		w.st.records += n;
		/* a full batch: the backlog is larger; the next one doubles
		 * (up to --max-batch); otherwise back to -n */
		if (n >= w.cur && w.cur < o->max_batch)
			w.cur = w.cur * 2 < o->max_batch ? w.cur * 2 :
			    o->max_batch;
		else if (n < w.cur)
			w.cur = o->batch;
		if (work_save(&w, &e) == -1) {
			status = error_report(&e);
			break;
		}
		w.batches++;
		if (o->verbose)
			warnmsg("%s: consumer %s: batch %llu-%llu: %zu records "
			    "committed", w.s.name, o->consumer,
			    (unsigned long long)start,
			    (unsigned long long)(start + len), n);
		if (w.has_deferred) {
			status = report_reader(&w, w.deferred_lost,
			    w.deferred_at, &w.deferred);
			break;
		}
		if (clock_mono_ms() - w.metrics_at >= METRICS_EVERY_MS)
			write_metrics(&w, o->follow);
	}
	write_metrics(&w, status == EXIT_OK);
out:
	buf_release(&b);
	reader_free(r);
	work_close(&w);
	return status;
}

/* --- seek ----------------------------------------------------------------- */

/* Check that offset is a record boundary of the retained stream. */
static int
check_boundary(struct work *w, uint64_t offset, uint64_t head, uint64_t first)
{
	struct segment_list l;
	struct reader *r;
	struct error e;
	const char *d;
	size_t len, n, i;
	int rc, found = 0;

	if (offset > head) {
		warnmsg("%s: offset %llu is past the head %llu", w->s.name,
		    (unsigned long long)offset, (unsigned long long)head);
		return EXIT_DATAERR;
	}
	if (offset < first) {
		warnmsg("%s: offset %llu is in expired data: the first "
		    "retained offset is %llu", w->s.name,
		    (unsigned long long)offset, (unsigned long long)first);
		return EXIT_DATAERR;
	}
	if (offset == head || offset == first)
		return 0;
	memset(&e, 0, sizeof(e));
	if (segments_list(w->s.dir, &l, &e) == -1)
		return error_report(&e);
	for (i = 0; i < l.n; i++)
		if (l.v[i].base == offset)
			found = 1;
	segments_free(&l);
	if (found)
		return 0;
	/* the byte before a boundary is a newline: a one-byte "record" */
	rc = reader_open(&r, w->s.dir, offset - 1, NULL, &e);
	if (rc == 0)
		rc = reader_next(r, 1, &d, &len, &n, &e);
	if (rc == 1 && len == 1) {
		reader_free(r);
		return 0;
	}
	if (rc == -1 && e.code != EXIT_DATAERR) {
		reader_free(r);
		return error_report(&e);
	}
	if (rc != -1)
		reader_free(r);
	warnmsg("%s: offset %llu is not a record boundary", w->s.name,
	    (unsigned long long)offset);
	return EXIT_DATAERR;
}

static int
cmd_seek(const struct checkpoint_opts *o)
{
	struct work w;
	struct error e;
	uint64_t head, first, to = 0;
	int status = EXIT_OK;

	memset(&e, 0, sizeof(e));
	if (work_open(&w, o, 1, &e) == -1 ||
	    stream_head(w.s.dir, &head, &first, &e) == -1) {
		status = error_report(&e);
		goto out;
	}
	switch (o->seek) {
	case SEEK_TO_START:
		to = first;
		break;
	case SEEK_TO_END:
		to = head;
		break;
	case SEEK_TO_OFFSET:
		if ((status = check_boundary(&w, o->offset, head, first)) != 0)
			goto out;
		to = o->offset;
		break;
	case SEEK_TO_NONE:
		break;
	}
	w.st.committed = w.st.pending = to;
	if (work_save(&w, &e) == -1) {
		status = error_report(&e);
		goto out;
	}
	if (o->verbose)
		warnmsg("%s: consumer %s: committed offset %llu", w.s.name,
		    o->consumer, (unsigned long long)to);
	write_metrics(&w, 1);
out:
	work_close(&w);
	return status;
}

/* --- remove --------------------------------------------------------------- */

static int
cmd_remove(const struct checkpoint_opts *o)
{
	char path[PATH_MAX + METRICS_NAME_MAX + 32];
	struct work w;
	struct error e;
	int status = EXIT_OK;

	memset(&e, 0, sizeof(e));
	if (work_open(&w, o, 0, &e) == -1) {
		status = error_report(&e);
		goto out;
	}
	if (consumer_remove(w.s.dir, o->consumer, &e) == -1) {
		status = error_report(&e);
		goto out;
	}
	if (metrics_file(&w, path, sizeof(path), &e) == 0 &&
	    unlink(path) == -1 && errno != ENOENT)
		warnmsg("%s: %s", path, strerror(errno));
	if (o->verbose)
		warnmsg("%s: consumer %s removed", w.s.name, o->consumer);
out:
	work_close(&w);
	return status;
}

/* --- status --------------------------------------------------------------- */

static void
json_str(struct buf *b, const char *s)
{
	buf_putc(b, '"');
	json_escape_name(b, s);
	buf_putc(b, '"');
}

static void
rfc3339(char *buf, size_t n, int64_t t)
{
	if (t == 0 || clock_rfc3339(buf, n, t) == -1)
		snprintf(buf, n, "-");
}

/* A counter of the stream's, or null when it keeps none yet. */
static void
json_counter(struct buf *b, const char *key, const struct sv_stream *s,
    uint64_t v)
{
	if (s->have_counters)
		buf_printf(b, ",\"%s\":%llu", key, (unsigned long long)v);
	else
		buf_printf(b, ",\"%s\":null", key);
}

/* One stream as one JSON object on a line (aistack-checkpoint(1)). */
static void
status_json(struct buf *out, const struct sv_stream *s)
{
	const struct stream_counters *c = &s->ctr;
	char when[32];
	size_t i;

	buf_printf(out, "{\"stream\":");
	json_str(out, s->name);
	buf_printf(out, ",\"head\":%llu,\"backlog\":%llu,\"first\":%llu,"
	    "\"paused\":%s", (unsigned long long)s->head,
	    (unsigned long long)s->backlog, (unsigned long long)s->first,
	    s->paused ? "true" : "false");
	json_counter(out, "max_backlog", s, c->max_backlog);
	json_counter(out, "records", s, c->records);
	json_counter(out, "bytes", s, c->bytes);
	json_counter(out, "rejected", s, c->rejected);
	json_counter(out, "empty", s, c->empty);
	json_counter(out, "counted_head", s, c->head);
	rfc3339(when, sizeof(when), c->since);
	buf_printf(out, s->have_counters ? ",\"counting_since\":\"%s\"" :
	    ",\"counting_since\":null", when);
	buf_printf(out, ",\"disk_bytes\":%llu,\"disk_bytes_gz\":%llu,"
	    "\"segments\":%llu,\"segments_gz\":%llu,\"consumers\":[",
	    (unsigned long long)s->disk_plain, (unsigned long long)s->disk_gz,
	    (unsigned long long)s->segments_plain,
	    (unsigned long long)s->segments_gz);
	for (i = 0; i < s->nconsumers; i++) {
		const struct sv_consumer *k = &s->consumers[i];
		buf_printf(out, "%s{\"consumer\":\"%s\",\"committed\":%llu,"
		    "\"pending\":%llu,\"lag\":%llu,\"records\":%llu,"
		    "\"batches_failed\":%llu,\"updated\":", i ? "," : "",
		    k->name, (unsigned long long)k->st.committed,
		    (unsigned long long)k->st.pending,
		    (unsigned long long)k->lag,
		    (unsigned long long)k->st.records,
		    (unsigned long long)k->st.batches_failed);
		json_str(out, k->st.updated);
		buf_putc(out, '}');
	}
	buf_printf(out, "],\"sources\":[");
	for (i = 0; i < s->nsources; i++) {
		const struct sv_source *f = &s->sources[i];
		buf_printf(out, "%s{\"source\":", i ? "," : "");
		json_str(out, f->key);
		buf_printf(out, ",\"path\":");
		json_str(out, f->path);
		buf_printf(out, ",\"offset\":%llu", (unsigned long long)f->offset);
		if (f->have_counters)
			buf_printf(out, ",\"lines\":%llu,\"lost_bytes\":%llu}",
			    (unsigned long long)f->lines,
			    (unsigned long long)f->lost_bytes);
		else
			buf_printf(out, ",\"lines\":null,\"lost_bytes\":null}");
	}
	buf_printf(out, "]}\n");
}

/* One stream as text: a line, then a line per consumer and source. */
static void
status_text(struct buf *out, const struct sv_stream *s)
{
	const struct stream_counters *c = &s->ctr;
	size_t i;

	buf_printf(out, "%s: head %llu, backlog %llu", s->name,
	    (unsigned long long)s->head, (unsigned long long)s->backlog);
	if (s->have_counters)
		buf_printf(out, ", records %llu, rejected %llu, empty %llu",
		    (unsigned long long)c->records,
		    (unsigned long long)c->rejected,
		    (unsigned long long)c->empty);
	buf_printf(out, ", disk %llu bytes in %llu segments (%llu bytes in "
	    "%llu gzipped)", (unsigned long long)(s->disk_plain + s->disk_gz),
	    (unsigned long long)(s->segments_plain + s->segments_gz),
	    (unsigned long long)s->disk_gz,
	    (unsigned long long)s->segments_gz);
	if (s->paused)
		buf_printf(out, ", paused");
	buf_putc(out, '\n');
	for (i = 0; i < s->nconsumers; i++) {
		const struct sv_consumer *k = &s->consumers[i];
		buf_printf(out, "  %s: committed %llu, pending %llu, lag %llu, "
		    "records %llu, updated %s", k->name,
		    (unsigned long long)k->st.committed,
		    (unsigned long long)k->st.pending,
		    (unsigned long long)k->lag,
		    (unsigned long long)k->st.records,
		    k->st.updated[0] != '\0' ? k->st.updated : "-");
		if (k->st.batches_failed > 0)
			buf_printf(out, ", %llu batches failed",
			    (unsigned long long)k->st.batches_failed);
		buf_putc(out, '\n');
	}
	for (i = 0; i < s->nsources; i++) {
		const struct sv_source *f = &s->sources[i];
		buf_printf(out, "  source %s: offset %llu", f->path[0] != '\0' ?
		    f->path : f->key, (unsigned long long)f->offset);
		if (f->have_counters)
			buf_printf(out, ", %llu lines, %llu bytes lost",
			    (unsigned long long)f->lines,
			    (unsigned long long)f->lost_bytes);
		buf_putc(out, '\n');
	}
}

/* status: the streams as the read model (lib/state/stateview.h) sees them. */
static int
cmd_status(const struct checkpoint_opts *o)
{
	struct buf out = BUF_INIT;
	struct stateview v;
	struct error e;
	int status = EXIT_OK;
	size_t i;

	memset(&e, 0, sizeof(e));
	stateview_init(&v);
	if (stateview_streams(&v, o->streams, (size_t)o->nstreams, &e) == -1)
		status = error_report(&e);
	for (i = 0; i < v.nstreams; i++) {
		const struct sv_stream *s = &v.streams[i];
		if (!s->ok) {
			status = error_report(&s->err);
			continue;
		}
		if (o->json)
			status_json(&out, s);
		else
			status_text(&out, s);
	}
	stateview_release(&v);
	if (out.len > 0 && write_all(STDOUT_FILENO, out.data, out.len) == -1) {
		warnmsg("standard output: %s", strerror(errno));
		status = EXIT_IOERR;
	}
	buf_release(&out);
	return status;
}

/* --- options -------------------------------------------------------------- */

enum {
	OPT_END = 256, OPT_FROM, OPT_JSON, OPT_MAX_BATCH, OPT_MAX_BYTES,
	OPT_OFFSET, OPT_START, OPT_TIMEOUT, OPT_VERSION
};

static const struct option longopts[] = {
	{ "end",	no_argument,		NULL, OPT_END },
	{ "from",	required_argument,	NULL, OPT_FROM },
	{ "help",	no_argument,		NULL, 'h' },
	{ "json",	no_argument,		NULL, OPT_JSON },
	{ "max-batch",	required_argument,	NULL, OPT_MAX_BATCH },
	{ "max-batch-bytes", required_argument,	NULL, OPT_MAX_BYTES },
	{ "offset",	required_argument,	NULL, OPT_OFFSET },
	{ "start",	no_argument,		NULL, OPT_START },
	{ "timeout",	required_argument,	NULL, OPT_TIMEOUT },
	{ "version",	no_argument,		NULL, OPT_VERSION },
	{ NULL,		0,			NULL, 0 }
};

static const struct {
	const char *name;
	enum verb verb;
	const char *shortopts;
	int operands;			/* 2: CONSUMER STREAM; -1: any */
} verbs[] = {
	{ "read",	VERB_READ,	"hvn:f",	2 },
	{ "commit",	VERB_COMMIT,	"hv",		2 },
	{ "run",	VERB_RUN,	"hvn:f",	2 },
	{ "seek",	VERB_SEEK,	"hv",		2 },
	{ "status",	VERB_STATUS,	"hv",		-1 },
	{ "remove",	VERB_REMOVE,	"hv",		2 },
};

/* Whether the long option opt belongs to the verb. */
static int
long_allowed(enum verb v, int opt)
{
	switch (opt) {
	case OPT_END:
	case OPT_OFFSET:
	case OPT_START:
		return v == VERB_SEEK;
	case OPT_FROM:
		return v == VERB_READ || v == VERB_RUN;
	case OPT_JSON:
		return v == VERB_STATUS;
	case OPT_MAX_BATCH:
	case OPT_MAX_BYTES:
		return v == VERB_RUN;
	case OPT_TIMEOUT:
		return v == VERB_READ;
	default:
		return 1;
	}
}

static void
help(void)
{
	fputs(usage_text, stdout);
	fputs(help_text, stdout);
}

/* [checkpoint] batch and AISTACK_CHECKPOINT_BATCH, for run without -n. */
static const struct config_option config_keys[] = {
	{ "batch", 'n' },
};

static int
option_given(void *arg, int opt)
{
	const struct checkpoint_opts *o = arg;

	(void)opt;
	return o->batch_given;
}

static int
set_option(void *arg, int opt, const char *v, const char *src,
    struct error *e)
{
	struct checkpoint_opts *o = arg;

	(void)opt;
	if (parse_u64(v, &o->batch) == -1 || o->batch == 0 ||
	    o->batch > SIZE_MAX / 2)
		return error_set(e, EXIT_CONFIG, "%s: invalid batch \"%s\"",
		    src, v);
	return 0;
}

/*
 * run: COMMAND follows the first "--"; *nargs gets the count of the
 * arguments before it.  Returns 0, or an exit status (*done after -h).
 */
static int
split_command(struct checkpoint_opts *o, int argc, char **argv, int *nargs,
    int *done)
{
	int k;

	for (k = 1; k < argc && strcmp(argv[k], "--") != 0; k++)
		;
	if (k == argc) {
		/* no "--": still honour -h */
		for (k = 1; k < argc; k++)
			if (strcmp(argv[k], "-h") == 0 ||
			    strcmp(argv[k], "--help") == 0) {
				help();
				*done = 1;
				return EXIT_OK;
			}
		return usage_error(usage_text, "run: missing -- COMMAND");
	}
	if (k + 1 == argc)
		return usage_error(usage_text, "run: missing COMMAND after --");
	o->command = argv + k + 1;
	*nargs = k;
	return EXIT_OK;
}

/* A count option's value: 1 .. SIZE_MAX / 2. */
static int
parse_count(const char *s, uint64_t *v)
{
	return parse_u64(s, v) == -1 || *v == 0 || *v > SIZE_MAX / 2 ? -1 : 0;
}

/* One option ch (its argument arg) into o; 0, or an exit status. */
static int
set_flag(struct checkpoint_opts *o, int ch, const char *arg, int *done)
{
	uint64_t v;

	switch (ch) {
	case 'f':
		o->follow = 1;
		break;
	case 'h':
		help();
		*done = 1;
		break;
	case 'n':
		if (parse_count(arg, &v) == -1)
			return usage_error(usage_text, "-n: invalid value \"%s\"",
			    arg);
		if (o->verb == VERB_RUN) {
			o->batch = v;
			o->batch_given = 1;
		} else
			o->max = v;
		break;
	case 'v':
		o->verbose = 1;
		break;
	case OPT_END:
	case OPT_START:
	case OPT_OFFSET:
		if (o->seek != SEEK_TO_NONE)
			return usage_error(usage_text, "seek: give one of "
			    "--start, --end and --offset");
		o->seek = ch == OPT_END ? SEEK_TO_END :
		    ch == OPT_START ? SEEK_TO_START : SEEK_TO_OFFSET;
		if (ch == OPT_OFFSET && parse_u64(arg, &o->offset) == -1)
			return usage_error(usage_text, "--offset: invalid value "
			    "\"%s\"", arg);
		break;
	case OPT_FROM:
		if (strcmp(arg, "start") != 0 && strcmp(arg, "end") != 0)
			return usage_error(usage_text, "--from: invalid value "
			    "\"%s\" (expected start or end)", arg);
		o->from_end = strcmp(arg, "end") == 0;
		break;
	case OPT_JSON:
		o->json = 1;
		break;
	case OPT_MAX_BATCH:
		if (parse_count(arg, &o->max_batch) == -1)
			return usage_error(usage_text, "--max-batch: invalid "
			    "value \"%s\"", arg);
		break;
	case OPT_MAX_BYTES:
		if (parse_size(arg, &o->max_bytes) == -1 || o->max_bytes == 0)
			return usage_error(usage_text, "--max-batch-bytes: "
			    "invalid size \"%s\"", arg);
		break;
	case OPT_TIMEOUT:
		if (parse_duration_ms(arg, &o->timeout_ms) == -1 ||
		    o->timeout_ms == 0)
			return usage_error(usage_text, "--timeout: invalid value "
			    "\"%s\"", arg);
		break;
	case OPT_VERSION:
		printf("aistack-checkpoint %s\n", AISTACK_VERSION);
		*done = 1;
		break;
	default:
		return usage_error(usage_text, "%s", "");
	}
	return EXIT_OK;
}

/* The operands of verb vi (nop of them at ops) into o; 0 or 64. */
static int
take_operands(struct checkpoint_opts *o, size_t vi, int nop, char **ops)
{
	if (verbs[vi].operands == -1) {
		o->streams = ops;
		o->nstreams = nop;
		return EXIT_OK;
	}
	if (nop != 2)
		return usage_error(usage_text, nop < 2 ?
		    "%s: missing CONSUMER STREAM" : "%s: too many operands",
		    verbs[vi].name);
	o->consumer = ops[0];
	o->stream = ops[1];
	if (!name_valid(o->consumer))
		return usage_error(usage_text, "%s: invalid consumer name "
		    "(expected [a-z0-9][a-z0-9._-]{0,63})", o->consumer);
	if (o->verb == VERB_SEEK && o->seek == SEEK_TO_NONE)
		return usage_error(usage_text, "seek: give one of --start, "
		    "--end and --offset");
	if (o->timeout_ms != 0 && !o->follow)
		return usage_error(usage_text, "--timeout: needs -f");
	return EXIT_OK;
}

/* Parse argv after the verb into o; returns 0, or an exit status. */
static int
parse_verb(struct checkpoint_opts *o, int argc, char **argv, size_t vi,
    int *done)
{
	int ch, nargs = argc, status;

	*done = 0;
	if (o->verb == VERB_RUN && ((status = split_command(o, argc, argv,
	    &nargs, done)) != EXIT_OK || *done))
		return status;
	optind = 1;
	while ((ch = getopt_long(nargs, argv, verbs[vi].shortopts, longopts,
	    NULL)) != -1) {
		if (ch >= OPT_END && !long_allowed(o->verb, ch))
			return usage_error(usage_text, "%s: option not valid here",
			    argv[optind - 1]);
		if ((status = set_flag(o, ch, optarg, done)) != EXIT_OK || *done)
			return status;
	}
	return take_operands(o, vi, nargs - optind, argv + optind);
}

static int
run(const struct checkpoint_opts *o)
{
	switch (o->verb) {
	case VERB_READ:
		return cmd_read(o);
	case VERB_COMMIT:
		return cmd_commit(o);
	case VERB_RUN:
		return cmd_run(o);
	case VERB_SEEK:
		return cmd_seek(o);
	case VERB_STATUS:
		return cmd_status(o);
	case VERB_REMOVE:
		return cmd_remove(o);
	}
	return EXIT_SOFTWARE;
}

int
main(int argc, char **argv)
{
	struct checkpoint_opts o;
	size_t vi;
	struct error e;
	int status, done;

	progname = "aistack-checkpoint";
	memset(&o, 0, sizeof(o));
	o.batch = DEFAULT_BATCH;
	o.max_bytes = DEFAULT_MAX_BYTES;
	if (argc < 2)
		return usage_error(usage_text, "missing command");
	if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
		help();
		status = EXIT_OK;
		goto out;
	}
	if (strcmp(argv[1], "--version") == 0) {
		printf("aistack-checkpoint %s\n", AISTACK_VERSION);
		status = EXIT_OK;
		goto out;
	}
	for (vi = 0; vi < sizeof(verbs) / sizeof(verbs[0]); vi++)
		if (strcmp(argv[1], verbs[vi].name) == 0)
			break;
	if (vi == sizeof(verbs) / sizeof(verbs[0]))
		return usage_error(usage_text, "%s: unknown command", argv[1]);
	o.verb = verbs[vi].verb;
	status = parse_verb(&o, argc - 1, argv + 1, vi, &done);
	if (status != EXIT_OK || done)
		goto out;
	if (o.verb == VERB_RUN && config_apply("checkpoint", config_keys,
	    sizeof(config_keys) / sizeof(config_keys[0]), option_given,
	    set_option, &o, &e) == -1) {
		status = error_report(&e);
		goto out;
	}
	if (o.verb == VERB_RUN)
		signal(SIGPIPE, SIG_IGN);
	status = run(&o);
out:
	return exit_flush(status);
}
