/*
 * Reading a stream from a logical offset, through sealed, compressed and
 * active segments alike, without any lock.  Only whole records are ever
 * returned: bytes after the last newline of the active segment (a write
 * in progress, or a torn tail) wait until they are complete.
 */
#ifndef AISTACK_READER_H
#define AISTACK_READER_H

#include <stddef.h>
#include <stdint.h>

#include "base/err.h"

struct reader;

/*
 * Open a reader of the stream directory dir at offset.  An offset before
 * the oldest retained segment fails with EXIT_DATAERR and *lost (when not
 * NULL) set to the number of bytes that were expired; an offset past the
 * head fails with EXIT_DATAERR too.  The caller frees *r with reader_free.
 */
int reader_open(struct reader **r, const char *dir, uint64_t offset,
    uint64_t *lost, struct error *e);

/*
 * Return the next whole records, at most max_records of them (0: as many
 * as are buffered), as a pointer into the reader's buffer that stays
 * valid until the next call (borrowed).  Returns 1 with *data, *len and
 * *nrec set; 0 when no complete record is available yet (the head);
 * -1 on error (a gap in the segments is EXIT_DATAERR, with *lost set by
 * reader_lost).
 */
int reader_next(struct reader *r, size_t max_records, const char **data,
    size_t *len, size_t *nrec, struct error *e);

/* The logical offset just after the records returned so far. */
uint64_t reader_offset(const struct reader *r);

/* Bytes found missing by the last failed reader_next, 0 when none. */
uint64_t reader_lost(const struct reader *r);

void reader_free(struct reader *r);

#endif
