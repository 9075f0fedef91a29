/*
 * Crash-safe gzip compression of a file that no longer changes (a sealed
 * segment, a rotated copy), with zlib directly.
 *
 * gzfile_compress writes SRC's gzip form to a temporary ".DST.tmpXXXXXX"
 * beside DST, gives it SRC's mode and modification time, fsyncs it,
 * renames it to DST, fsyncs the directory, and only then unlinks SRC and
 * fsyncs the directory again.  A crash at any instant leaves SRC alone,
 * SRC and a complete DST (readers prefer SRC; gzfile_finish removes it),
 * or DST alone; never a partial DST under its real name.  An orphaned
 * temporary file may remain: gzfile_is_temp recognises it.
 */
#ifndef AISTACK_GZFILE_H
#define AISTACK_GZFILE_H

#include <stddef.h>
#include <stdint.h>

#include "base/err.h"

#define GZFILE_LEVEL 6

/*
 * Called from time to time while compressing (from the compressing
 * thread) with the input bytes done so far and the total.
 */
typedef void (*gzfile_progress_fn)(void *arg, uint64_t done, uint64_t total);

struct gzfile_result {
	uint64_t in_bytes;	/* bytes of SRC */
	uint64_t out_bytes;	/* bytes of DST */
};

/*
 * Compress src into dst at level (0-9) as described above.  progress may
 * be NULL.  Thread-safe: it touches no shared state.  Returns 0, or -1
 * with e set (SRC is then untouched and no DST was created).
 */
int gzfile_compress(const char *src, const char *dst, int level,
    gzfile_progress_fn progress, void *arg, struct gzfile_result *res,
    struct error *e);

/*
 * Complete a compression interrupted between the rename and the unlink:
 * when both src and dst exist and dst's gzip trailer matches src's size,
 * unlink src; when the trailer does not match, dst is not src's gzip
 * form and dst is unlinked instead.  Returns 1 when it removed src, 2
 * when it removed dst, 0 when there was nothing to do, -1 on error.
 */
int gzfile_finish(const char *src, const char *dst, struct error *e);

/*
 * Nonzero when name is a temporary file that gzfile_compress makes for
 * a destination named dstname: "." dstname ".tmp" and six characters.
 * With dstname NULL, any ".*.gz.tmpXXXXXX".
 */
int gzfile_is_temp(const char *name, const char *dstname);

#endif
