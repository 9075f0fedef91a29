/*
 * The read model of the state directory: what aistack-checkpoint status,
 * aistack-breaker status, the proxy's /health, /metrics and /api/stats
 * and the dashboard report, read into structs.  The text, JSON or
 * Prometheus form is the caller's (lib/state/stateprom.h renders the metrics).
 *
 * Its cost does not grow with the data: it reads directory listings, file
 * sizes and small state files (consumer files, counters, breaker and
 * position files, the header of a dedup state), never a record.  It takes
 * no lock and changes nothing, so it may run at any moment beside any
 * writer; each value is as it was when read.
 *
 * Live values are computed here, at the time of reading: the head (the
 * active segment's size up to its last newline), the backlog, each
 * consumer's lag, disk usage, whether a writer is paused (a lock that
 * dies with its holder, lib/stream/stream.h) and a breaker's effective state
 * (open past its period reads half-open).  Counters are those the state
 * keeps (lib/stream/stream.h, lib/breaker/breaker.h, lib/dedup/keystore.h, the follow
 * position files).
 *
 * Every function fills a struct stateview that stateview_release frees;
 * a stream, breaker or dedup state that cannot be read is kept in the
 * view with its error (ok == 0), so that one damaged file hides nothing
 * else.
 */
#ifndef AISTACK_STATEVIEW_H
#define AISTACK_STATEVIEW_H

#include <limits.h>
#include <stddef.h>
#include <stdint.h>

#include "base/config.h"
#include "base/err.h"
#include "base/statedir.h"
#include "breaker/breaker.h"
#include "stream/consumer.h"
#include "stream/stream.h"

struct sv_consumer {
	char name[NAME_MAX_LEN + 1];
	struct consumer_state st;	/* committed, pending, records, updated */
	uint64_t lag;			/* head - committed (0 when above) */
	int64_t updated;		/* st.updated as Unix time, 0 unknown */
};

/* A file that aistack-ingest --follow reads into the stream. */
struct sv_source {
	char key[NAME_MAX + 1];		/* its position file under sources/ */
	char path[PATH_MAX];		/* the followed path ("" unknown) */
	uint64_t offset;		/* committed offset in the current file */
	int have_counters;		/* the file keeps the cumulative counts */
	uint64_t lines;			/* lines read, ever */
	uint64_t lost_bytes;		/* bytes lost before they were read, ever */
};

struct sv_stream {
	char name[PATH_MAX];		/* the NAME, or the path given */
	char dir[PATH_MAX];
	int ok;				/* 0: err says why it could not be read */
	struct error err;
	uint64_t head;			/* logical size (up to the last newline) */
	uint64_t first;			/* oldest retained offset */
	uint64_t backlog;		/* head - the lowest committed offset */
	uint64_t disk_plain, disk_gz;	/* bytes of segments on disk, by form */
	uint64_t segments_plain, segments_gz;
	int have_counters;		/* it has a .counters file */
	struct stream_counters ctr;	/* as its last writer left them */
	int paused;			/* a writer waits for the backlog now */
	struct sv_consumer *consumers;	/* sorted by name */
	size_t nconsumers;
	struct sv_source *sources;	/* sorted by key */
	size_t nsources;
};

struct sv_breaker {
	int ok;				/* 0: err says why */
	struct error err;
	struct breaker_status st;	/* name, effective state, retry_in_ms, data */
	int stored;			/* it has a state file */
	int configured;			/* a [breaker NAME] section names it */
	struct breaker_counters ctr;	/* its calls (zero before the first) */
};

/* A dedup state (-s NAME) or index (-a STREAM) under dedup/. */
struct sv_dedup {
	char name[NAME_MAX + 1];	/* the file under dedup/ */
	char label[NAME_MAX + 1];	/* NAME, or the stream NAME of an index */
	int index;			/* an -a index, not an -s state */
	int ok;
	struct error err;
	uint64_t disk_bytes;		/* of its files */
	uint64_t keys;			/* keys held (as of its last snapshot) */
	int have_counters;		/* it keeps the cumulative counts: */
	uint64_t seen;			/* records looked up */
	uint64_t unique;		/* kept */
	uint64_t duplicates;		/* dropped, near duplicates included */
	uint64_t near;			/* dropped as near duplicates */
};

struct stateview {
	int64_t time;			/* when it was read (Unix time) */
	struct sv_stream *streams;	/* sorted by name */
	size_t nstreams;
	struct sv_breaker *breakers;	/* sorted by name */
	size_t nbreakers;
	struct sv_dedup *dedup;		/* sorted by name */
	size_t ndedup;
};

/* An empty view (also what stateview_release leaves). */
void stateview_init(struct stateview *v);

/*
 * Read streams into v: those named in names[0..n) (NAMEs or paths, in
 * that order), or with n == 0 every stream of the state directory.
 * -1 only when the streams directory cannot be listed; a named stream
 * that does not exist is kept with ok == 0 and err.code EXIT_NOINPUT.
 */
int stateview_streams(struct stateview *v, char *const *names, size_t n,
    struct error *e);

/* Read one stream (dir: its directory, name: its label) into s. */
void stateview_stream(struct sv_stream *s, const char *name, const char *dir);

/*
 * Read breakers into v: those named (n > 0), or every breaker with a
 * state file and every "[breaker NAME]" section of c (c may be NULL).
 */
int stateview_breakers(struct stateview *v, const struct config *c,
    char *const *names, size_t n, struct error *e);

/*
 * Read every dedup state and index into v.  It is in its own object
 * (lib/state/stateview_dedup.c) so that commands that do not report them do not
 * link the dedup state module.
 */
int stateview_dedup(struct stateview *v, struct error *e);

void stateview_release(struct stateview *v);

#endif
