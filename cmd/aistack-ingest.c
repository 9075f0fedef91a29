/*
 * aistack-ingest: validate JSON Lines records and append them to a locked
 * stream, sending every line that is not a record to the rejects stream.
 *
 * Input is read in large chunks; the whole records of a chunk form one
 * batch, appended with one write under the stream lock and fdatasynced
 * while the next chunk is validated, before the next append and before
 * exit.  Exit 0 acknowledges every record of the input.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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
#include "base/sig.h"
#include "dedup/dedupkey.h"
#include "format/canon.h"
#include "format/json.h"
#include "format/keypath.h"
#include "pg/pg.h"
#include "stream/consumer.h"
#include "stream/follow.h"
#include "stream/stream.h"

#define DEFAULT_MAX_RECORD	(1024 * 1024)
#define DEFAULT_MAX_BACKLOG	(100ULL * 1024 * 1024)
#define MIN_INPUT_BUF		(4 * 1024 * 1024)
#define BACKLOG_RECHECK_MS	1000
#define METRICS_EVERY_MS	10000

enum on_full { ON_FULL_BLOCK, ON_FULL_FAIL };
enum on_loss { ON_LOSS_WARN, ON_LOSS_FAIL };
enum sync_mode { SYNC_BATCH, SYNC_ALWAYS, SYNC_NONE };

struct ingest_opts {
	int verbose;
	uint64_t max_record;
	uint64_t max_backlog;		/* 0: no limit */
	enum on_full on_full;
	enum sync_mode sync;
	const char *rejects;		/* NULL: TARGET.rejects */
	const char *stats;
	const char *table;		/* PostgreSQL targets */
	const char *key_arg;		/* --key PATHS */
	struct dedupkey_def key;	/* --key, --normalize: the digest */
	const char *target;
	char **files;
	int nfiles;
	const char *follow;		/* --follow FILE */
	enum lock_kind lock;		/* the lock its writers take */
	enum on_loss on_loss;		/* --follow: data found gone */
	uint64_t given;			/* bit opt - OPT_MAX_BACKLOG: a flag set it */
};

struct counters {
	uint64_t records, rejected, empty, bytes, batches;
	uint64_t skipped;		/* PostgreSQL: already present */
	uint64_t paused_ms;
};

/*
 * Rejected and empty lines on their way into the stream's counters
 * (lib/stream/stream.h): landed are those whose rejects are in the rejects
 * stream; they are added at the next lock of the stream.  moved_* are the
 * run's counts already passed on to landed_*.
 */
struct uncounted {
	uint64_t moved_rejected, moved_empty;
	uint64_t landed_rejected, landed_empty;
};

struct ingest {
	const struct ingest_opts *o;
	const char *label;		/* the stream's name, or the table */
	struct stream out;		/* a stream target, or */
	struct pg_sink *pg;		/* a PostgreSQL target */
	uint64_t *lines;		/* PostgreSQL: input line of each record */
	size_t nlines, caplines;
	struct stream rej;
	int rej_open;
	char *in;			/* input buffer */
	size_t cap;
	struct buf rejbuf;		/* reject records of the current batch */
	struct counters n;
	struct uncounted unc;
	const char *source;		/* input name for rejects */
	uint64_t lineno;		/* lines read from source so far */
	/* backpressure */
	int paused;
	int pause_warned;		/* stream_pause failed once */
	uint64_t head, backlog;		/* as last computed */
	uint64_t min_committed;
	uint64_t appended_since;	/* bytes since the last computation */
	uint64_t checked_at;		/* monotonic ms, 0: never */
	uint64_t metrics_at;
	int unsynced;			/* a batch awaits its fdatasync */
	int (*stop)(void);		/* --follow: nonzero once asked to stop */
	struct follow *follow;		/* --follow: scanned while paused */
	/* an oversized line being streamed into the rejects */
	int oversize;
	unsigned char carry[3];
	size_t ncarry;
};

static const char usage_text[] =
"usage: aistack-ingest [-v] [--max-record SIZE] [--max-backlog SIZE] [--on-full block|fail]\n"
"                      [--sync batch|always|none] [--rejects STREAM] [--stats FILE]\n"
"                      [--table NAME] [-k PATHS] [--normalize LIST] TARGET [FILE...]\n"
"       aistack-ingest [options] --follow FILE [--lock flock|fcntl|none]\n"
"                      [--on-loss warn|fail] TARGET\n"
"\n"
"Validate JSON Lines records and append them to the stream TARGET (a NAME\n"
"under the state directory, or a path), or load them into PostgreSQL when\n"
"TARGET is a postgres:// URI.  Lines that are not records go to the rejects\n"
"stream (default TARGET.rejects, or TABLE.rejects), byte for byte recoverable.\n"
"\n"
"  -v, --verbose            report counts on standard error\n"
"      --max-record SIZE    longest record accepted (default 1M)\n"
"      --max-backlog SIZE   pause while the backlog is above SIZE (default 100M, 0: never)\n"
"      --on-full MODE       block (wait, default) or fail (exit 75) when over the backlog\n"
"      --sync MODE          fdatasync per batch (default), per record, or none\n"
"      --rejects STREAM     where invalid lines go (default TARGET.rejects)\n"
"      --stats FILE         write run statistics as JSON to FILE\n"
"      --table NAME         PostgreSQL table (default aistack_events)\n"
"  -k, --key PATHS          PostgreSQL: one row per key at these paths (as aistack-dedup -k)\n"
"      --normalize LIST     PostgreSQL: trim, lower, space the key's strings first\n"
"      --follow FILE        tail FILE, written by other programs, until SIGTERM\n"
"      --lock KIND          the lock FILE's writers take: flock (default), fcntl, none\n"
"      --on-loss MODE       data of FILE gone before it was read: warn (default) or fail (exit 65)\n"
"  -h, --help               show this help\n"
"      --version            show the version\n";

/* --- metrics and statistics ---------------------------------------------- */

/* The rejected and empty lines counted so far have landed (their rejects
 * are in the rejects stream): pass them on to the stream's counters. */
static void
lines_landed(struct ingest *ing)
{
	struct uncounted *u = &ing->unc;

	u->landed_rejected += ing->n.rejected - u->moved_rejected;
	u->landed_empty += ing->n.empty - u->moved_empty;
	u->moved_rejected = ing->n.rejected;
	u->moved_empty = ing->n.empty;
}

/* With the stream locked: add the landed lines to its counters. */
static void
count_landed(struct ingest *ing)
{
	struct uncounted *u = &ing->unc;

	stream_count_lines(&ing->out, u->landed_rejected, u->landed_empty);
	u->landed_rejected = u->landed_empty = 0;
}

/*
 * Write metrics/ingest-NAME.prom: the stream's counters, read and saved
 * under its lock (so that the file, replaced in lock order, never shows
 * a counter going down), and what this run did.  ok says whether the run
 * has gone well so far (for aistack_ingest_last_success_timestamp_seconds).
 */
static void
write_metrics(struct ingest *ing, int ok)
{
	struct metrics m = METRICS_INIT;
	const char *s = ing->label, *file;
	struct stream_counters c;
	struct error e;
	int locked = 0, have = 0;

	file = ing->pg != NULL ? s : path_basename(s);
	if (ing->pg == NULL) {
		if (stream_lock_counters(&ing->out, &e) == -1)
			warnmsg("%s", e.msg);
		else {
			locked = 1;
			count_landed(ing);
			have = stream_counters_flush(&ing->out, &e) == 0;
			if (!have)
				warnmsg("%s", e.msg);
			c = ing->out.ctr;
		}
	}
	if (have) {
		metrics_family(&m, MN_INGEST_RECORDS, "counter",
		    MH_INGEST_RECORDS);
		metrics_sample(&m, MN_INGEST_RECORDS, (double)c.records,
		    "stream", s, "result", "appended", NULL);
		metrics_sample(&m, MN_INGEST_RECORDS, (double)c.rejected,
		    "stream", s, "result", "rejected", NULL);
		metrics_sample(&m, MN_INGEST_RECORDS, (double)c.empty,
		    "stream", s, "result", "empty", NULL);
		metrics_family(&m, MN_INGEST_BYTES, "counter", MH_INGEST_BYTES);
		metrics_sample(&m, MN_INGEST_BYTES, (double)c.bytes,
		    "stream", s, NULL);
	}
	metrics_family(&m, MN_INGEST_LAST_RECORDS, "gauge",
	    MH_INGEST_LAST_RECORDS);
	metrics_sample(&m, MN_INGEST_LAST_RECORDS, (double)ing->n.records,
	    "stream", s, "result", "appended", NULL);
	metrics_sample(&m, MN_INGEST_LAST_RECORDS, (double)ing->n.rejected,
	    "stream", s, "result", "rejected", NULL);
	metrics_sample(&m, MN_INGEST_LAST_RECORDS, (double)ing->n.empty,
	    "stream", s, "result", "empty", NULL);
	metrics_family(&m, MN_INGEST_LAST_BYTES, "gauge", MH_INGEST_LAST_BYTES);
	metrics_sample(&m, MN_INGEST_LAST_BYTES, (double)ing->n.bytes,
	    "stream", s, NULL);
	metrics_family(&m, MN_INGEST_LAST_BATCHES, "gauge",
	    MH_INGEST_LAST_BATCHES);
	metrics_sample(&m, MN_INGEST_LAST_BATCHES, (double)ing->n.batches,
	    "stream", s, NULL);
	metrics_family(&m, MN_INGEST_LAST_PAUSED, "gauge",
	    MH_INGEST_LAST_PAUSED);
	metrics_sample(&m, MN_INGEST_LAST_PAUSED,
	    (double)ing->n.paused_ms / 1000.0, "stream", s, NULL);
	metrics_last_success(&m, "ingest", file, ok, MN_INGEST_LAST_SUCCESS,
	    MH_INGEST_LAST_SUCCESS, "stream", s, NULL);
	if (metrics_write(&m, "ingest", file, &e) == -1)
		warnmsg("%s", e.msg);
	if (locked)
		stream_unlock(&ing->out);
	metrics_release(&m);
	ing->metrics_at = clock_mono_ms();
}

static int
write_stats(struct ingest *ing, struct error *e)
{
	struct buf b = BUF_INIT;
	int rc;

	buf_printf(&b, "{\"stream\":\"");
	buf_json_escape(&b, ing->label, strlen(ing->label));
	buf_printf(&b, "\",\"records\":%llu,\"rejected\":%llu,\"empty\":%llu,"
	    "\"bytes\":%llu,\"batches\":%llu,\"paused_seconds\":%.3f",
	    (unsigned long long)ing->n.records,
	    (unsigned long long)ing->n.rejected,
	    (unsigned long long)ing->n.empty, (unsigned long long)ing->n.bytes,
	    (unsigned long long)ing->n.batches, (double)ing->n.paused_ms / 1000);
	if (ing->pg != NULL)
		buf_printf(&b, ",\"already_present\":%llu",
		    (unsigned long long)ing->n.skipped);
	buf_printf(&b, "}\n");
	rc = report_write(ing->o->stats, b.data, b.len, e);
	buf_release(&b);
	return rc;
}

static int sync_pending(struct ingest *, struct error *);

/* --- backpressure -------------------------------------------------------- */

/*
 * Wait while the stream's backlog is above --max-backlog (or fail with
 * EXIT_TEMPFAIL under --on-full fail).  Called before input is read, so
 * nothing read is ever left unappended.  The backlog is computed from
 * file sizes and consumer files at most once a second while it is
 * comfortably under the limit, from this process's own appends between.
 * Returns 0 to go on, 1 when ing->stop asked to stop while waiting, -1.
 */
static int
backpressure(struct ingest *ing, struct error *e)
{
	const struct ingest_opts *o = ing->o;
	unsigned nap = 50;
	uint64_t t = clock_mono_ms(), since = 0;

	if (o->max_backlog == 0 || ing->pg != NULL)
		return 0;
	if (ing->checked_at != 0 && t - ing->checked_at < BACKLOG_RECHECK_MS &&
	    ing->backlog + ing->appended_since <= o->max_backlog)
		return 0;
	for (;;) {
		if (consumer_backlog(ing->out.dir, &ing->head, &ing->backlog,
		    &ing->min_committed, e) == -1)
			return error_wrap(e, "%s: backlog", ing->out.name);
		ing->checked_at = t = clock_mono_ms();
		ing->appended_since = 0;
		if (ing->backlog <= o->max_backlog) {
			if (ing->paused) {
				ing->paused = 0;
				stream_pause(&ing->out, 0, e);
				if (o->verbose)
					warnmsg("%s: backlog %llu bytes, resuming",
					    ing->out.name,
					    (unsigned long long)ing->backlog);
			}
			return 0;
		}
		if (o->on_full == ON_FULL_FAIL) {
			char lim[32];
			format_size(lim, sizeof(lim), o->max_backlog);
			return error_set(e, EXIT_TEMPFAIL, "%s: backlog %llu bytes "
			    "exceeds --max-backlog %s; appended %llu records, "
			    "stopped after %s:%llu", ing->out.name,
			    (unsigned long long)ing->backlog, lim,
			    (unsigned long long)ing->n.records, ing->source,
			    (unsigned long long)ing->lineno);
		}
		if (!ing->paused) {
			/* what was appended is made durable before waiting */
			if (sync_pending(ing, e) == -1)
				return -1;
			ing->paused = 1;
			/* held while paused: readers see it, it dies with us */
			if (stream_pause(&ing->out, 1, e) == -1 &&
			    !ing->pause_warned) {
				warnmsg("%s (the pause is not shown)", e->msg);
				ing->pause_warned = 1;
			}
			if (o->verbose)
				warnmsg("%s: backlog %llu bytes over the limit, "
				    "pausing", ing->out.name,
				    (unsigned long long)ing->backlog);
		}
		if (ing->stop != NULL && ing->stop())
			return 1;
		/* what rotation does meanwhile is recorded */
		if (ing->follow != NULL && follow_scan(ing->follow, e) == -1)
			return -1;
		clock_sleep_ms(nap);
		since = clock_mono_ms() - t;
		ing->n.paused_ms += since;
		if (nap < 500)
			nap *= 2;
		if (clock_mono_ms() - ing->metrics_at >= METRICS_EVERY_MS)
			write_metrics(ing, ing->o->follow != NULL);
	}
}

/* --- rejects ------------------------------------------------------------- */

static int
open_rejects(struct ingest *ing, struct error *e)
{
	char name[PATH_MAX + 16];

	if (ing->rej_open)
		return 0;
	if (ing->o->rejects != NULL)
		snprintf(name, sizeof(name), "%s", ing->o->rejects);
	else if (snprintf(name, sizeof(name), "%s.rejects", ing->pg != NULL ?
	    ing->o->table : ing->o->target) >=
	    (int)sizeof(name))
		return error_set(e, EXIT_USAGE, "%s: name too long",
		    ing->o->target);
	if (stream_open(&ing->rej, name, 1, e) == -1)
		return -1;
	ing->rej_open = 1;
	return 0;
}

/* Append the text of a reject's fields before the record itself. */
static void
reject_head(struct ingest *ing, struct buf *b, const char *reason)
{
	char now[32];
	const char *src = ing->source;

	clock_rfc3339_now(now, sizeof(now));
	buf_printf(b, "{\"reason\":\"");
	buf_json_escape(b, reason, strlen(reason));
	buf_printf(b, "\",\"source\":\"");
	json_escape_name(b, src);
	buf_printf(b, ":%llu\",\"time\":\"%s\",", (unsigned long long)ing->lineno,
	    now);
}

/* Queue a reject record for line p[0..n) (without its newline). */
static int
reject(struct ingest *ing, const char *p, size_t n, const char *reason,
    struct error *e)
{
	struct buf *b = &ing->rejbuf;

	reject_head(ing, b, reason);
	if (utf8_valid(p, n)) {
		buf_printf(b, "\"record\":\"");
		buf_json_escape(b, p, n);
	} else {
		buf_printf(b, "\"record_base64\":\"");
		buf_base64(b, (const unsigned char *)p, n);
	}
	if (buf_append(b, "\"}\n", 3) == -1)
		return error_errno(e, EXIT_SOFTWARE, "rejects");
	ing->n.rejected++;
	return 0;
}

/* Append bytes to the rejects stream, which the caller has locked. */
static int
rejects_write(struct ingest *ing, const char *p, size_t n, struct error *e)
{
	if (stream_append(&ing->rej, p, n, NULL, e) == -1)
		return -1;
	return 0;
}

static int
rejects_flush(struct ingest *ing, struct error *e)
{
	int rc;

	if (ing->rejbuf.len == 0) {
		lines_landed(ing);
		return 0;
	}
	if (open_rejects(ing, e) == -1 || stream_lock(&ing->rej, e) == -1)
		return -1;
	rc = rejects_write(ing, ing->rejbuf.data, ing->rejbuf.len, e);
	if (rc == 0 && ing->o->sync != SYNC_NONE)
		rc = stream_sync(&ing->rej, e);
	stream_unlock(&ing->rej);
	ing->rejbuf.len = 0;
	if (rc == 0)
		lines_landed(ing);
	return rc;
}

/*
 * A line longer than the input buffer is streamed into one reject record
 * as base64, holding the rejects stream's lock until its end, so memory
 * stays bounded whatever the line's length.  A failure cuts the partial
 * reject away (stream_append) and ends the run.
 */
static int
oversize_begin(struct ingest *ing, struct error *e)
{
	char reason[96], lim[32];
	struct buf b = BUF_INIT;
	int rc;

	if (rejects_flush(ing, e) == -1 || open_rejects(ing, e) == -1 ||
	    stream_lock(&ing->rej, e) == -1)
		return -1;
	format_size(lim, sizeof(lim), ing->o->max_record);
	snprintf(reason, sizeof(reason), "record larger than --max-record %s",
	    lim);
	ing->lineno++;		/* the line's own number */
	reject_head(ing, &b, reason);
	ing->lineno--;
	buf_printf(&b, "\"record_base64\":\"");
	rc = rejects_write(ing, b.data, b.len, e);
	buf_release(&b);
	if (rc == -1) {
		stream_unlock(&ing->rej);
		return -1;
	}
	ing->oversize = 1;
	ing->ncarry = 0;
	return 0;
}

static int
oversize_more(struct ingest *ing, const char *p, size_t n, struct error *e)
{
	const unsigned char *u = (const unsigned char *)p;
	struct buf b = BUF_INIT;
	int rc = 0;

	while (ing->ncarry > 0 && ing->ncarry < 3 && n > 0) {
		ing->carry[ing->ncarry++] = *u++;
		n--;
	}
	if (ing->ncarry == 3) {
		buf_base64(&b, ing->carry, 3);
		ing->ncarry = 0;
	}
	buf_base64(&b, u, n - n % 3);
	memcpy(ing->carry + ing->ncarry, u + n - n % 3, n % 3);
	ing->ncarry += n % 3;
	if (b.len > 0)
		rc = rejects_write(ing, b.data, b.len, e);
	buf_release(&b);
	if (rc == -1) {
		stream_unlock(&ing->rej);
		ing->oversize = 0;
	}
	return rc;
}

static int
oversize_end(struct ingest *ing, struct error *e)
{
	struct buf b = BUF_INIT;
	int rc;

	buf_base64(&b, ing->carry, ing->ncarry);
	buf_append(&b, "\"}\n", 3);
	rc = rejects_write(ing, b.data, b.len, e);
	buf_release(&b);
	if (rc == 0 && ing->o->sync != SYNC_NONE)
		rc = stream_sync(&ing->rej, e);
	stream_unlock(&ing->rej);
	ing->oversize = 0;
	ing->ncarry = 0;
	ing->lineno++;
	ing->n.rejected++;
	if (rc == 0)
		lines_landed(ing);
	return rc;
}

/* --- appending ----------------------------------------------------------- */

/*
 * fdatasync the batch appended last, if it is not yet.  Under --sync
 * batch the sync of batch k runs while batch k+1 is read and validated
 * (its writeback was started at once, stream_writeback_start), and always
 * before the next append, before the input position is recorded and
 * before exit: no batch is acknowledged unsynced.
 */
static int
sync_pending(struct ingest *ing, struct error *e)
{
	if (!ing->unsynced || ing->pg != NULL)
		return 0;
	ing->unsynced = 0;
	return stream_sync(&ing->out, e);
}

/*
 * Append one batch of whole records (and the batch's rejects); see
 * sync_pending for when it is synced.
 */
static int
append_batch(struct ingest *ing, const char *data, size_t n, uint64_t nrec,
    struct error *e)
{
	struct stream *s = &ing->out;
	size_t done = 0;
	int rc = 0;

	if (n > 0 && ing->pg != NULL) {
		uint64_t added, bad;
		if (pg_sink_load(ing->pg, data, n, nrec, &added, &bad, e) == -1) {
			if (bad < ing->nlines)
				error_wrap(e, "%s:%llu", ing->source,
				    (unsigned long long)ing->lines[bad]);
			return -1;
		}
		ing->n.records += nrec;
		ing->n.bytes += n;
		ing->n.batches++;
		ing->n.skipped += nrec - added;
	} else if (n > 0) {
		/* before stream_lock, which may move to a new segment */
		if (sync_pending(ing, e) == -1)
			return -1;
		if (stream_lock(s, e) == -1)
			return -1;
		count_landed(ing);
		if (ing->o->sync == SYNC_ALWAYS) {
			const char *p = data, *end = data + n;
			while (rc == 0 && p < end) {
				const char *nl = memchr(p, '\n', (size_t)(end - p));
				size_t one = (size_t)(nl - p) + 1, d;
				rc = stream_append_records(s, p, one, 1, &d, e);
				if (rc == 0)
					rc = stream_sync(s, e);
				done += d;
				p += one;
			}
		} else
			rc = stream_append_records(s, data, n, nrec, &done, e);
		/* the counters are saved with the lock's release */
		stream_unlock(s);
		if (rc == 0 && ing->o->sync == SYNC_BATCH) {
			/* start writeback now; sync_pending waits for it */
			stream_writeback_start(s, n);
			ing->unsynced = 1;
		}
		if (rc == -1) {
			uint64_t landed = records_count(data, done);
			ing->n.records += landed;
			ing->n.bytes += done;
			return error_append(e, " (%llu of the batch's %llu "
			    "records landed, none acknowledged)",
			    (unsigned long long)landed, (unsigned long long)nrec);
		}
		ing->n.records += nrec;
		ing->n.bytes += n;
		ing->n.batches++;
		ing->appended_since += n;
	}
	return rejects_flush(ing, e);
}

/* PostgreSQL: remember the input line of the batch's record k. */
static int
note_line(struct ingest *ing, uint64_t k, struct error *e)
{
	if (k >= ing->caplines) {
		size_t cap = ing->caplines ? ing->caplines * 2 : 4096;
		uint64_t *nl = realloc(ing->lines, cap * sizeof(*nl));
		if (nl == NULL)
			return error_errno(e, EXIT_SOFTWARE, "line numbers");
		ing->lines = nl;
		ing->caplines = cap;
	}
	ing->lines[k] = ing->lineno;
	ing->nlines = (size_t)k + 1;
	return 0;
}

/*
 * Classify the complete lines at the front of buf[0..len): valid records
 * are compacted to the front in place (they only move down), rejects are
 * queued.  *vlen receives the length of the compacted records, *used
 * the bytes consumed (everything up to the last newline, or all of it
 * when final), *nrec the number of records.  Returns 0 or -1.
 */
static int
classify(struct ingest *ing, char *buf, size_t len, int final, size_t *vlen,
    size_t *used, uint64_t *nrec, struct error *e)
{
	const struct ingest_opts *o = ing->o;
	char *p = buf, *end = buf + len, *w = buf, *nl;
	struct json_result jr;
	char why[160];

	*nrec = 0;
	while (p < end) {
		size_t n;
		if ((nl = memchr(p, '\n', (size_t)(end - p))) == NULL) {
			if (!final)
				break;
			nl = end;	/* an unterminated last line */
		}
		n = (size_t)(nl - p);
		ing->lineno++;
		if (n > o->max_record) {
			char lim[32];
			format_size(lim, sizeof(lim), o->max_record);
			snprintf(why, sizeof(why), "record larger than "
			    "--max-record %s", lim);
			if (reject(ing, p, n, why, e) == -1)
				return -1;
		} else if (json_scan_record(p, n, &jr) == 0) {
			if (ing->pg != NULL && note_line(ing, *nrec, e) == -1)
				return -1;
			if (w != p)
				memmove(w, p, n);
			w += n;
			*w++ = '\n';
			(*nrec)++;
		} else if (jr.status == JSON_EMPTY) {
			ing->n.empty++;
		} else if (reject(ing, p, n, json_result_str(&jr, why,
		    sizeof(why)), e) == -1)
			return -1;
		p = nl < end ? nl + 1 : end;
	}
	*used = (size_t)(p - buf);
	*vlen = (size_t)(w - buf);
	return 0;
}

static int ingest_fd_unsynced(struct ingest *, int, const char *,
    struct error *);

/*
 * Ingest everything from fd, named source in rejects and messages, and
 * make it durable.  What was appended before a failure is synced too.
 */
static int
ingest_fd(struct ingest *ing, int fd, const char *source, struct error *e)
{
	struct error se;
	int rc = ingest_fd_unsynced(ing, fd, source, e);

	if (sync_pending(ing, &se) == -1) {
		if (rc == 0 || e->code != EXIT_IOERR)
			*e = se;
		return -1;
	}
	return rc;
}

static int
ingest_fd_unsynced(struct ingest *ing, int fd, const char *source,
    struct error *e)
{
	size_t len = 0;

	ing->source = source;
	ing->lineno = 0;
	for (;;) {
		size_t used, vlen;
		uint64_t nrec;
		ssize_t r;
		int eof;

		if (backpressure(ing, e) == -1)
			return -1;
		r = read_more(fd, ing->in + len, ing->cap - len, &eof);
		if (r < 0)
			return error_errno(e, EXIT_IOERR, "%s: read", source);
		len += (size_t)r;

		if (ing->oversize) {
			/* the rest of a line longer than the buffer */
			char *nl = memchr(ing->in, '\n', len);
			size_t part = nl != NULL ? (size_t)(nl - ing->in) : len;
			if (oversize_more(ing, ing->in, part, e) == -1)
				return -1;
			if (nl == NULL && !eof) {
				len = 0;
				continue;
			}
			if (oversize_end(ing, e) == -1)
				return -1;
			used = nl != NULL ? part + 1 : part;
			memmove(ing->in, ing->in + used, len - used);
			len -= used;
			if (eof && len == 0)
				return 0;
			if (!eof)
				continue;
		}

		ing->nlines = 0;
		if (classify(ing, ing->in, len, eof, &vlen, &used, &nrec, e) == -1)
			return -1;
		if (append_batch(ing, ing->in, vlen, nrec, e) == -1)
			return -1;
		memmove(ing->in, ing->in + used, len - used);
		len -= used;
		if (eof)
			return 0;
		if (len == ing->cap) {
			/* one line fills the whole buffer: stream it to rejects */
			if (oversize_begin(ing, e) == -1 ||
			    oversize_more(ing, ing->in, len, e) == -1)
				return -1;
			len = 0;
		}
	}
}

/* --- following a file (--follow) ---------------------------------------- */

/*
 * Tail o->follow into the stream until SIGINT or SIGTERM, with the same
 * validation, rejects and backpressure as any input.  Per batch: the
 * intent is recorded, the records and rejects are appended and synced,
 * then the file position is committed (lib/stream/follow.h), so a restart
 * neither loses nor duplicates a line.
 */
/*
 * Report the losses the follower found, each as a reject record (made
 * durable before the loss is taken off the position file, so a crash
 * may report one twice but never not at all) and a warning.  With
 * --on-loss fail, the first one ends the run with 65.
 */
static int
report_losses(struct ingest *ing, struct follow *f, struct error *e)
{
	struct follow_loss l;
	struct buf b = BUF_INIT;
	char now[32];
	int rc;

	while (follow_loss_next(f, &l)) {
		b.len = 0;
		clock_rfc3339_now(now, sizeof(now));
		buf_printf(&b, "{\"reason\":\"lost\",\"source\":\"");
		json_escape_name(&b, l.file);
		if (buf_printf(&b, "\",\"time\":\"%s\",\"lost_bytes\":%llu,"
		    "\"record\":\"\"}\n", now, (unsigned long long)l.bytes) == -1) {
			buf_release(&b);
			return error_errno(e, EXIT_SOFTWARE, "rejects");
		}
		if (open_rejects(ing, e) == -1 || stream_lock(&ing->rej, e) == -1) {
			buf_release(&b);
			return -1;
		}
		rc = rejects_write(ing, b.data, b.len, e);
		if (rc == 0)
			rc = stream_sync(&ing->rej, e);
		stream_unlock(&ing->rej);
		if (rc == -1 || follow_loss_done(f, e) == -1) {
			buf_release(&b);
			return -1;
		}
		warnmsg("%s: %s: %llu bytes lost before they were read (gone); "
		    "recorded in %s", ing->out.name, l.file,
		    (unsigned long long)l.bytes, ing->rej.name);
		if (ing->o->on_loss == ON_LOSS_FAIL) {
			buf_release(&b);
			return error_set(e, EXIT_DATAERR, "%s: --on-loss fail: "
			    "%llu bytes of %s lost", ing->out.name,
			    (unsigned long long)l.bytes, l.file);
		}
	}
	buf_release(&b);
	return 0;
}

static int
ingest_follow(struct ingest *ing, struct error *e)
{
	const struct ingest_opts *o = ing->o;
	struct follow f;
	int rc = -1;

	sig_catch_stop();
	ing->stop = sig_stopping;
	if (open_rejects(ing, e) == -1 || follow_open(&f, ing->out.dir,
	    ing->rej.dir, o->follow, o->lock, e) == -1)
		return -1;
	ing->follow = &f;
	while (!sig_stopping()) {
		struct follow_batch b;
		size_t used, vlen, off = 0;
		uint64_t nrec;
		ssize_t r;
		int flags, bp;

		if (f.note[0] != '\0' && (f.warn || o->verbose))
			warnmsg("%s", f.note);
		f.note[0] = '\0';
		f.warn = 0;
		if (report_losses(ing, &f, e) == -1)
			goto out;
		if ((bp = backpressure(ing, e)) == 1)
			break;		/* asked to stop while waiting */
		if (bp == -1 ||
		    (r = follow_read(&f, ing->in, ing->cap, &flags, e)) == -1)
			goto out;
		if (clock_mono_ms() - ing->metrics_at >= METRICS_EVERY_MS)
			write_metrics(ing, ing->o->follow != NULL);
		if (r == 0) {
			follow_wait(&f, 1000);
			continue;
		}
		ing->source = f.source;
		if (!ing->oversize)
			ing->lineno = follow_lines(&f);
		if (flags & FOLLOW_LONG) {
			/* a line longer than the buffer: stream it to a reject */
			if ((!ing->oversize && oversize_begin(ing, e) == -1) ||
			    oversize_more(ing, ing->in, (size_t)r, e) == -1)
				goto out;
			continue;
		}
		if (ing->oversize) {
			char *nl = memchr(ing->in, '\n', (size_t)r);
			off = nl != NULL ? (size_t)(nl - ing->in) + 1 : (size_t)r;
			if (oversize_more(ing, ing->in, nl != NULL ? off - 1 : off,
			    e) == -1 || oversize_end(ing, e) == -1)
				goto out;
		}
		ing->nlines = 0;
		if (classify(ing, ing->in + off, (size_t)r - off,
		    (flags & FOLLOW_FINAL) != 0, &vlen, &used, &nrec, e) == -1)
			goto out;
		if (flags & FOLLOW_REPLAY)
			vlen = nrec = 0;	/* its records are in already */
		b.lines = ing->lineno;
		b.records = ing->in + off;
		b.nrecords = vlen;
		b.rejects = ing->rejbuf.data;
		b.nrejects = ing->rejbuf.len;
		if ((vlen > 0 || ing->rejbuf.len > 0) &&
		    follow_intent(&f, &b, e) == -1)
			goto out;
		if (append_batch(ing, ing->in + off, vlen, nrec, e) == -1 ||
		    sync_pending(ing, e) == -1 ||
		    follow_commit(&f, ing->lineno, e) == -1)
			goto out;
	}
	rc = report_losses(ing, &f, e);
out:
	if (f.note[0] != '\0' && (f.warn || o->verbose))
		warnmsg("%s", f.note);
	ing->follow = NULL;
	follow_close(&f);
	return rc;
}

static int
run(const struct ingest_opts *o)
{
	struct ingest ing;
	struct error e;
	int status = EXIT_OK, i;

	memset(&ing, 0, sizeof(ing));
	memset(&e, 0, sizeof(e));
	ing.o = o;
	ing.cap = o->max_record + 2 > MIN_INPUT_BUF ?
	    (size_t)o->max_record + 2 : MIN_INPUT_BUF;
	if ((ing.in = malloc(ing.cap + 1)) == NULL) {	/* +1: a final unterminated line gets its newline */
		warnmsg("input buffer of %zu bytes: %s", ing.cap, strerror(errno));
		return EXIT_SOFTWARE;
	}
	stream_init(&ing.out);
	if (pg_uri_is(o->target)) {
		ing.label = o->table;
		if (pg_sink_open(&ing.pg, o->target, o->table, &o->key,
		    &e) == -1) {
			free(ing.in);
			return error_report(&e);
		}
	} else if (stream_open(&ing.out, o->target, 1, &e) == -1) {
		free(ing.in);
		return error_report(&e);
	} else {
		ing.label = ing.out.name;
		ing.out.max_backlog = o->max_backlog;
	}
	if (o->follow != NULL) {
		if (ingest_follow(&ing, &e) == -1)
			status = error_report(&e);
	} else if (o->nfiles == 0) {
		if (ingest_fd(&ing, STDIN_FILENO, "stdin", &e) == -1)
			status = error_report(&e);
	}
	for (i = 0; i < o->nfiles && status != EXIT_IOERR &&
	    status != EXIT_TEMPFAIL && status != EXIT_DATAERR; i++) {
		const char *f = o->files[i];
		int fd;

		memset(&e, 0, sizeof(e));
		if (strcmp(f, "-") == 0) {
			if (ingest_fd(&ing, STDIN_FILENO, "stdin", &e) == -1)
				status = error_report(&e);
			continue;
		}
		if ((fd = open(f, O_RDONLY | O_CLOEXEC)) == -1) {
			warnmsg("%s: %s", f, strerror(errno));
			status = EXIT_NOINPUT;
			continue;
		}
		if (ingest_fd(&ing, fd, f, &e) == -1)
			status = error_report(&e);
		close(fd);
	}
	if (ing.oversize)
		stream_unlock(&ing.rej);
	if (o->verbose && ing.pg != NULL)
		warnmsg("%s: %llu records inserted, %llu already present, %llu "
		    "rejected, %llu empty lines, %llu batches",
		    pg_sink_name(ing.pg),
		    (unsigned long long)(ing.n.records - ing.n.skipped),
		    (unsigned long long)ing.n.skipped,
		    (unsigned long long)ing.n.rejected,
		    (unsigned long long)ing.n.empty,
		    (unsigned long long)ing.n.batches);
	else if (o->verbose)
		warnmsg("%s: %llu records appended, %llu rejected, %llu empty "
		    "lines, %llu batches", ing.label,
		    (unsigned long long)ing.n.records,
		    (unsigned long long)ing.n.rejected,
		    (unsigned long long)ing.n.empty,
		    (unsigned long long)ing.n.batches);
	write_metrics(&ing, status == EXIT_OK);
	if (o->stats != NULL && write_stats(&ing, &e) == -1) {
		error_report(&e);
		if (status == EXIT_OK)
			status = e.code;
	}
	stream_close(&ing.out);
	pg_sink_close(ing.pg);
	free(ing.lines);
	if (ing.rej_open)
		stream_close(&ing.rej);
	buf_release(&ing.rejbuf);
	free(ing.in);
	return status;
}

/* --- options ------------------------------------------------------------- */

enum {
	OPT_MAX_BACKLOG = 256, OPT_MAX_RECORD, OPT_ON_FULL, OPT_REJECTS,
	OPT_STATS, OPT_SYNC, OPT_TABLE, OPT_FOLLOW, OPT_LOCK, OPT_NORMALIZE,
	OPT_ON_LOSS, OPT_VERSION
};

static const struct option longopts[] = {
	{ "follow",		required_argument,	NULL, OPT_FOLLOW },
	{ "help",		no_argument,		NULL, 'h' },
	{ "key",		required_argument,	NULL, 'k' },
	{ "lock",		required_argument,	NULL, OPT_LOCK },
	{ "max-backlog",	required_argument,	NULL, OPT_MAX_BACKLOG },
	{ "max-record",		required_argument,	NULL, OPT_MAX_RECORD },
	{ "normalize",		required_argument,	NULL, OPT_NORMALIZE },
	{ "on-full",		required_argument,	NULL, OPT_ON_FULL },
	{ "on-loss",		required_argument,	NULL, OPT_ON_LOSS },
	{ "rejects",		required_argument,	NULL, OPT_REJECTS },
	{ "stats",		required_argument,	NULL, OPT_STATS },
	{ "sync",		required_argument,	NULL, OPT_SYNC },
	{ "table",		required_argument,	NULL, OPT_TABLE },
	{ "verbose",		no_argument,		NULL, 'v' },
	{ "version",		no_argument,		NULL, OPT_VERSION },
	{ NULL,			0,			NULL, 0 }
};

/*
 * Set one setting from its text: a flag's, or the environment's or the
 * config file's (then "from" names the source and errors are EXIT_CONFIG).
 */
static int
set_option(void *arg, int opt, const char *v, const char *from,
    struct error *e)
{
	struct ingest_opts *o = arg;
	const char *what = NULL;

	switch (opt) {
	case OPT_MAX_BACKLOG:
		if (parse_size(v, &o->max_backlog) == -1)
			what = "max-backlog";
		break;
	case OPT_MAX_RECORD:
		if (parse_size(v, &o->max_record) == -1 || o->max_record == 0 ||
		    o->max_record > (1ULL << 30))
			what = "max-record";
		break;
	case OPT_ON_FULL:
		if (strcmp(v, "block") == 0)
			o->on_full = ON_FULL_BLOCK;
		else if (strcmp(v, "fail") == 0)
			o->on_full = ON_FULL_FAIL;
		else
			what = "on-full";
		break;
	case OPT_ON_LOSS:
		if (strcmp(v, "warn") == 0)
			o->on_loss = ON_LOSS_WARN;
		else if (strcmp(v, "fail") == 0)
			o->on_loss = ON_LOSS_FAIL;
		else
			what = "on-loss";
		break;
	case OPT_SYNC:
		if (strcmp(v, "batch") == 0)
			o->sync = SYNC_BATCH;
		else if (strcmp(v, "always") == 0)
			o->sync = SYNC_ALWAYS;
		else if (strcmp(v, "none") == 0)
			o->sync = SYNC_NONE;
		else
			what = "sync";
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
	const struct ingest_opts *o = arg;

	return (int)(o->given >> (opt - OPT_MAX_BACKLOG) & 1);
}

/* [ingest] settings and AISTACK_INGEST_*, for what no flag set. */
static const struct config_option config_keys[] = {
	{ "max_backlog", OPT_MAX_BACKLOG }, { "max_record", OPT_MAX_RECORD },
	{ "on_full", OPT_ON_FULL }, { "on_loss", OPT_ON_LOSS },
	{ "sync", OPT_SYNC },
};

/* Check the operands and the options' combinations; EXIT_OK or 64. */
static int
check_args(struct ingest_opts *o, int argc, char **argv)
{
	struct error e;

	if (optind >= argc)
		return usage_error(usage_text, "missing TARGET");
	o->target = argv[optind];
	if (pg_uri_is(o->target) && pg_uri_has_password(o->target))
		return usage_error(usage_text, "the PostgreSQL URI carries a "
		    "password; give it in PGPASSWORD or a PGPASSFILE instead");
	if (!pg_table_valid(o->table))
		return usage_error(usage_text, "--table: invalid name \"%s\" "
		    "(expected [schema.]name in lower case)", o->table);
	o->files = argv + optind + 1;
	o->nfiles = argc - optind - 1;
	if (o->follow != NULL && (o->nfiles > 0 || pg_uri_is(o->target)))
		return usage_error(usage_text, "--follow: %s", o->nfiles > 0 ?
		    "no FILE operand with --follow" :
		    "the target must be a stream");
	if (o->follow == NULL && option_given(o, OPT_LOCK))
		return usage_error(usage_text, "--lock: only with --follow");
	if (o->follow == NULL && option_given(o, OPT_ON_LOSS))
		return usage_error(usage_text, "--on-loss: only with --follow");
	if ((o->key_arg != NULL || o->key.norm != 0) && !pg_uri_is(o->target))
		return usage_error(usage_text, "%s: only for a PostgreSQL "
		    "target (a stream keeps every record; aistack-dedup -k "
		    "filters by key)", o->key_arg != NULL ? "--key" :
		    "--normalize");
	if (o->key_arg != NULL) {
		if (keypath_parse(o->key_arg, &o->key.paths, &e) == -1)
			return usage_error(usage_text, "--key: %s", e.msg);
		o->key.mode = DEDUPKEY_PATHS;
	}
	return EXIT_OK;
}

int
main(int argc, char **argv)
{
	struct ingest_opts o;
	struct error e;
	int ch, status;

	progname = "aistack-ingest";
	memset(&o, 0, sizeof(o));
	o.max_record = DEFAULT_MAX_RECORD;
	o.max_backlog = DEFAULT_MAX_BACKLOG;
	o.on_full = ON_FULL_BLOCK;
	o.sync = SYNC_BATCH;
	o.table = "aistack_events";
	o.lock = LOCK_KIND_FLOCK;
	o.key.mode = DEDUPKEY_CANON;
	signal(SIGPIPE, SIG_IGN);

	while ((ch = getopt_long(argc, argv, "hk:v", longopts, NULL)) != -1) {
		switch (ch) {
		case 'h':
			fputs(usage_text, stdout);
			status = EXIT_OK;
			goto out;
		case 'k':
			o.key_arg = optarg;
			break;
		case OPT_NORMALIZE:
			if (canon_flags_parse(optarg, &o.key.norm) == -1)
				return usage_error(usage_text, "--normalize: "
				    "invalid list \"%s\" (expected trim, lower, "
				    "space)", optarg);
			break;
		case 'v':
			o.verbose = 1;
			break;
		case OPT_MAX_BACKLOG:
		case OPT_MAX_RECORD:
		case OPT_ON_FULL:
		case OPT_ON_LOSS:
		case OPT_SYNC:
			if (set_option(&o, ch, optarg, NULL, &e) == -1)
				return usage_error(usage_text, "%s", e.msg);
			o.given |= 1ULL << (ch - OPT_MAX_BACKLOG);
			break;
		case OPT_REJECTS:
			o.rejects = optarg;
			break;
		case OPT_STATS:
			o.stats = optarg;
			break;
		case OPT_TABLE:
			o.table = optarg;
			break;
		case OPT_FOLLOW:
			o.follow = optarg;
			break;
		case OPT_LOCK:
			if (lock_kind_parse(optarg, &o.lock) == -1)
				return usage_error(usage_text, "--lock: invalid "
				    "value \"%s\"", optarg);
			o.given |= 1ULL << (ch - OPT_MAX_BACKLOG);
			break;
		case OPT_VERSION:
			printf("aistack-ingest %s\n", AISTACK_VERSION);
			status = EXIT_OK;
			goto out;
		default:
			return usage_error(usage_text, NULL);
		}
	}
	if ((status = check_args(&o, argc, argv)) != EXIT_OK)
		goto out;
	if (config_apply("ingest", config_keys, sizeof(config_keys) /
	    sizeof(config_keys[0]), option_given, set_option, &o, &e) == -1)
		status = error_report(&e);
	else
		status = run(&o);
out:
	dedupkey_def_release(&o.key);
	return exit_flush(status);
}
