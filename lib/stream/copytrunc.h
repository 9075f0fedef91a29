/*
 * Rotation of plain JSONL files that other programs append to: a lossless
 * copytruncate for writers that lock each write, and a rename for writers
 * that reopen.  The copies are named as rotcopy.h says.
 */
#ifndef AISTACK_COPYTRUNC_H
#define AISTACK_COPYTRUNC_H

#include <stddef.h>
#include <stdint.h>

#include "base/err.h"
#include "base/lock.h"
#include "rotcopy.h"

/*
 * Rotate the plain file at path by copy and truncate, holding the
 * writers' lock of kind k on it throughout: copy its bytes to a
 * temporary file, fsync it, link it as FILE.STAMP (never replacing a
 * file), fsync the directory, truncate FILE to zero and fsync it.  The
 * stamp is now, or one second after the newest existing copy when that
 * is later.  Writers that append under the same lock lose nothing and
 * duplicate nothing.  A crash before the link leaves only a temporary
 * file (FILE intact); a crash between the link and the truncation
 * leaves the copied lines in both places (a duplicate, never a loss).
 * With dry_run nothing is locked or changed and the name the copy would
 * get is computed.  Returns 1 when rotated (copy's name in copy, its
 * size in *bytes), 0 when the file is empty, -1 on error.
 */
int copytrunc(const char *path, enum lock_kind k, int64_t now, int dry_run,
    char *copy, size_t n, uint64_t *bytes, struct error *e);

/* The same, waiting at most lock_timeout_ms (< 0: for ever) for the
 * writers' lock; past it, -1 with e->code EXIT_TEMPFAIL and nothing
 * changed. */
int copytrunc_timed(const char *path, enum lock_kind k,
    int64_t lock_timeout_ms, int64_t now, int dry_run, char *copy, size_t n,
    uint64_t *bytes, struct error *e);

/*
 * Rotate the plain file at path by rename, for writers that open it for
 * each write or reopen it when it is renamed (or on a signal): holding
 * the writers' lock of kind k (waiting at most lock_timeout_ms, < 0: for
 * ever; past it -1 with e->code EXIT_TEMPFAIL, nothing changed), make an
 * empty temporary file beside it with its mode and owner, fsync it, link
 * FILE as FILE.STAMP (the name copytrunc gives its copy; never replacing
 * a file), then rename the temporary file over FILE and fsync the
 * directory.  FILE names a file at every instant, the old one until the
 * rename and the new one after it, so a writer that opens it (O_APPEND,
 * O_CREAT or not) writes either into the copy or into the new file;
 * nothing is lost and nothing copied.  The copy is the old file itself
 * (same inode), which is how a follower recognises it.  A crash before
 * the link leaves only a temporary file; one between the link and the
 * rename leaves FILE and its copy naming one file, which the next run
 * finishes (by the rename alone).  With dry_run nothing is locked or
 * changed.  Returns 1 when rotated (copy and *bytes as copytrunc), 0
 * when the file is empty, -1 on error.
 */
int rotrename_timed(const char *path, enum lock_kind k,
    int64_t lock_timeout_ms, int64_t now, int dry_run, char *copy, size_t n,
    uint64_t *bytes, struct error *e);

#endif
