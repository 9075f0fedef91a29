/*
 * The stream store (see aistack(7)).  A stream is a directory of segments
 * named by their base offset (20 digits, ".jsonl" or ".jsonl.gz"), a lock
 * file and a consumers/ directory.  The segment with the highest base is
 * the active one; writers append whole records to it under an exclusive
 * OFD lock on "lock", one batch at a time; readers take no lock.
 *
 * Sealing (stream_seal) makes the active segment read-only (mode 0444)
 * and then creates its successor, whose base is the sealed base plus its
 * size.  A writer that finds the highest segment read-only (a sealer died
 * between the two steps) creates the successor itself, so a crash at any
 * point leaves a stream that writers and readers can continue.
 */
#ifndef AISTACK_STREAM_H
#define AISTACK_STREAM_H

#include <limits.h>
#include <stddef.h>
#include <stdint.h>

#include "base/err.h"

#define SEGMENT_DIGITS 20

struct segment {
	uint64_t base;
	int gz;			/* ".jsonl.gz" */
};

struct segment_list {
	struct segment *v;	/* sorted by base; owned, free with segments_free */
	size_t n;
};

/*
 * The counters a stream keeps in its ".counters" file, so that they add
 * up across processes, restarts and concurrent writers.  They are changed
 * only under the stream lock and made current when it is released, in a
 * page that the writers map (lib/stream/stream.c: two slots and a generation),
 * so that saving them costs no system call and a reader never sees them
 * half written.
 *
 * The crash rule: a counter never counts what is not in the stream, and
 * may lag it.  records and bytes are advanced only after the write of the
 * records returned, and the file records the head they cover; a writer
 * killed between its write and the release of the lock leaves them
 * behind the stream, and the next process that takes the lock (after
 * cutting a torn tail) counts the records between that head and the real
 * head and adds them, so they are exact again.  rejected and empty count
 * input lines that are not in the stream (the rejects are in the rejects
 * stream): a writer adds them after the rejects have landed, so a killed
 * writer's last ones may be missing for good, never counted early.  Only
 * a machine crash, which may lose written but unsynced (never
 * acknowledged) records and the file alike, can leave records counted that
 * are gone.  A stream written before it had a .counters file starts
 * counting at its head then (since says when).
 */
struct stream_counters {
	uint64_t head;		/* every record before it is counted */
	uint64_t records;	/* records appended */
	uint64_t bytes;		/* bytes of records appended */
	uint64_t rejected;	/* input lines the writers rejected */
	uint64_t empty;		/* empty input lines the writers skipped */
	uint64_t max_backlog;	/* --max-backlog of the last writer, 0 none */
	int64_t since;		/* Unix time the counting began */
};

struct stream {
	char dir[PATH_MAX];	/* the stream directory */
	char name[PATH_MAX];	/* the label: the NAME, or the path as given */
	int lockfd;		/* "lock", O_CLOEXEC */
	int segfd;		/* the active segment, write+append; -1 unknown */
	uint64_t base;		/* base of segfd's segment */
	uint64_t size;		/* its size as this process last left it */
	int locked;
	struct stream_counters ctr;	/* while locked: the stream's counters */
	int ctr_dirty;		/* ctr changed: saved when the lock is released */
	uint64_t max_backlog;	/* recorded in ctr at each lock (UINT64_MAX: keep) */
	int pausefd;		/* "pause", held while paused; -1 */
	uint64_t *ctrmap;	/* ".counters" mapped (lib/stream/stream.c), or NULL */
	int ctrfd;		/* its descriptor, -1 */
};

/* The records of data[0..n): the newlines (a last line without one is
 * not a whole record). */
uint64_t records_count(const char *data, size_t n);

/* Write the file name of a segment ("%020llu.jsonl[.gz]") to buf. */
void segment_name(char *buf, size_t n, uint64_t base, int gz);

/*
 * List the segments of the stream directory dir, sorted by base.  Other
 * names are ignored.  When both forms of one base exist (a compression
 * that died between rename and unlink), the plain one is listed.  A
 * missing directory is an empty list.
 */
int segments_list(const char *dir, struct segment_list *l, struct error *e);
void segments_free(struct segment_list *l);

/* An unopened stream: what stream_close may be given before stream_open. */
void stream_init(struct stream *s);

/*
 * Resolve a stream operand (NAME under statedir/streams, or a path) into
 * s and open its lock file, creating the directory, lock file and
 * consumers/ when create is nonzero.  Without create a missing stream
 * fails with EXIT_NOINPUT.
 */
int stream_open(struct stream *s, const char *arg, int create, struct error *e);

/*
 * Take the stream's exclusive lock (waiting for it), find the active
 * segment (creating the first segment, or the successor of a half-sealed
 * one) and truncate a torn tail: bytes after the last newline, left by a
 * writer that died mid-write, which were never acknowledged.
 */
int stream_lock(struct stream *s, struct error *e);

/*
 * Append n bytes of whole records (ending in '\n') to the active segment;
 * the lock must be held.  On failure the stream is cut back to the last
 * newline actually written (no partial record stays behind), *done (when
 * not NULL) says how many bytes of data did land, and e names the stream.
 * The records that landed are added to the stream's counters.
 */
int stream_append(struct stream *s, const char *data, size_t n, size_t *done,
    struct error *e);

/* stream_append of data that the caller knows holds nrec records (it
 * saves counting them). */
int stream_append_records(struct stream *s, const char *data, size_t n,
    uint64_t nrec, size_t *done, struct error *e);

/*
 * Take the stream's lock for its counters only: the head is read from
 * file sizes (as stream_head does), no segment is created or repaired.
 * Release with stream_unlock.
 */
int stream_lock_counters(struct stream *s, struct error *e);

/* Save the counters now if they changed (the lock must be held): 0, or
 * -1 with e set, the file then being as it was. */
int stream_counters_flush(struct stream *s, struct error *e);

/* Add input lines rejected and empty lines skipped to the counters (the
 * lock must be held; call once the rejects have landed). */
void stream_count_lines(struct stream *s, uint64_t rejected, uint64_t empty);

/*
 * Read a stream's counters without the lock (as of the last release of
 * the lock).  Returns 0, 1 when the stream has none yet (c zeroed), -1.
 */
int stream_counters_read(const char *dir, struct stream_counters *c,
    struct error *e);

/*
 * Mark the stream paused (on nonzero) or not, for readers: while paused
 * the process holds a shared OFD lock on "pause", which the kernel
 * releases when the process dies, however it dies.  stream_paused says
 * whether any process holds one: 1, 0, or -1 with errno.
 */
int stream_pause(struct stream *s, int on, struct error *e);
int stream_paused(const char *dir);

/* fdatasync the active segment (the lock must be held). */
int stream_sync(struct stream *s, struct error *e);

/*
 * Start the writeback of the last n bytes appended to the active segment
 * without waiting for it (sync_file_range), so that the stream_sync that
 * must follow before they are acknowledged finds them on their way.
 */
void stream_writeback_start(struct stream *s, size_t n);

/*
 * Seal the active segment if it is not empty (the lock must be held):
 * fsync it, make it read-only, create its successor and fsync the
 * directory.  *sealed_base and *sealed_size (when not NULL) receive what
 * was sealed; returns 1 when sealed, 0 when the segment was empty.
 */
int stream_seal(struct stream *s, uint64_t *sealed_base, uint64_t *sealed_size,
    struct error *e);

/* Save the counters when they changed (a failure is left for the next
 * holder to make good: see struct stream_counters), release the lock. */
void stream_unlock(struct stream *s);

/* Release everything; s may be reused with stream_open. */
void stream_close(struct stream *s);

/*
 * The stream's head: the active segment's base plus its size, read from
 * file sizes only (no lock).  Bytes of a torn tail are not counted.
 * *first (when not NULL) receives the base of the oldest segment.
 */
int stream_head(const char *dir, uint64_t *head, uint64_t *first,
    struct error *e);

#endif
