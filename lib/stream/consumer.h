/*
 * Consumer state files: streams/NAME/consumers/CONSUMER holds
 * {"committed":N,"pending":N,"records":N,"updated":"RFC 3339 UTC",
 * "batches_failed":N} (the last is optional: older files lack it) and is
 * replaced atomically (temp file, fsync, rename, fsync directory), so a
 * crash leaves the old state or the new one, never a torn file.
 * Temporary files start with '.', so listing skips them.
 */
#ifndef AISTACK_CONSUMER_H
#define AISTACK_CONSUMER_H

#include <stddef.h>
#include <stdint.h>

#include "base/err.h"

struct consumer_state {
	uint64_t committed;	/* every record ending at or before is consumed */
	uint64_t pending;	/* delivered but not acknowledged (>= committed) */
	uint64_t records;	/* records committed so far */
	char updated[32];	/* RFC 3339 UTC of the last move of the offsets */
	uint64_t batches_failed;	/* batches whose command failed, ever */
};

/* Write the path of a consumer's file (stream dir, consumer NAME) to buf. */
int consumer_path(const char *streamdir, const char *name, char *buf, size_t n,
    struct error *e);

/*
 * Load a consumer's state.  Returns 0, 1 when the consumer does not exist,
 * -1 on error (a malformed file is EXIT_DATAERR naming it).
 */
int consumer_load(const char *streamdir, const char *name,
    struct consumer_state *st, struct error *e);

/* Parse the JSON text of a consumer file (for the loader and fuzzing). */
int consumer_parse(const char *text, size_t n, struct consumer_state *st,
    struct error *e);

/* Save a consumer's state atomically, stamping st->updated with now. */
int consumer_save(const char *streamdir, const char *name,
    struct consumer_state *st, struct error *e);

/* Count a failed batch in st and save it, leaving st->updated as it was
 * (the offsets did not move). */
int consumer_note_failure(const char *streamdir, const char *name,
    struct consumer_state *st, struct error *e);

/* Remove a consumer's file (and lock file); a missing one is not an error. */
int consumer_remove(const char *streamdir, const char *name, struct error *e);

/*
 * List the consumer names of a stream, sorted (caller frees with
 * names_free of statedir.h).  A stream without consumers/ has none.
 */
int consumer_list(const char *streamdir, char ***names, size_t *n,
    struct error *e);

/*
 * A stream's head and its consumers' backlog: head minus the lowest committed offset
 * among its consumers (0 without consumers), from file sizes and consumer
 * files only.  *min_committed (when not NULL) gets that lowest offset, or
 * head when there are no consumers.
 */
int consumer_backlog(const char *streamdir, uint64_t *head, uint64_t *backlog,
    uint64_t *min_committed, struct error *e);

#endif
