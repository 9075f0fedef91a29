/*
 * Rotation of plain JSONL files that other programs append to: a lossless
 * copytruncate for writers that lock each write, and the naming rules of
 * the rotated copies.
 *
 * The copies of FILE live beside it as FILE.YYYYMMDDTHHMMSSZ (UTC) and,
 * once compressed, FILE.YYYYMMDDTHHMMSSZ.gz.  Nothing else is ever
 * treated as a copy: a name that does not follow these rules exactly is
 * not touched.  Stamps only increase, so name order is content order.
 */
#ifndef AISTACK_COPYTRUNC_H
#define AISTACK_COPYTRUNC_H

#include <stddef.h>
#include <stdint.h>

#include "base/err.h"
#include "base/lock.h"

#define ROTCOPY_STAMP_LEN 16	/* "YYYYMMDDTHHMMSSZ" */

struct rotcopy {
	char *name;		/* the plain name, FILE.STAMP (owned) */
	int64_t stamp;		/* seconds since the epoch */
	int plain;		/* FILE.STAMP exists */
	int gz;			/* FILE.STAMP.gz exists */
	uint64_t disk;		/* bytes on disk (the gzip form when there is one) */
	int64_t mtime_ms;	/* modification time of that form */
};

/* Parse name as a copy of the file named base; 0 with *stamp and *gz. */
int rotcopy_parse(const char *base, const char *name, int64_t *stamp,
    int *gz);

/* Write the name of base's copy stamped stamp (".gz" when gz). */
int rotcopy_name(char *buf, size_t n, const char *base, int64_t stamp,
    int gz);

/* Nonzero when name is a temporary file left by the rotation of base:
 * ".BASE.STAMP.tmpXXXXXX" or ".BASE.STAMP.gz.tmpXXXXXX". */
int rotcopy_is_temp(const char *base, const char *name);

/*
 * List the copies of base in dir, oldest stamp first (caller frees with
 * rotcopy_list_free).  A stamp present in both forms is one entry with
 * plain and gz set.
 */
int rotcopy_list(const char *dir, const char *base, struct rotcopy **v,
    size_t *n, struct error *e);
void rotcopy_list_free(struct rotcopy *v, size_t n);

/*
 * The plain files of a directory that rotation looks after: every
 * "*.jsonl" regular file (not a symbolic link, not a dot file), and every
 * "*.jsonl" base that only has copies left.  Sorted; caller frees with
 * rotdir_free.
 */
int rotdir_bases(const char *dir, char ***bases, size_t *n, struct error *e);
void rotdir_free(char **bases, size_t n);

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
