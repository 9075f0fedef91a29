/*
 * File-system helpers with the crash guarantees the stream store relies on.
 * Every function retries EINTR and short transfers; none of them prints.
 */
#ifndef AISTACK_FSUTIL_H
#define AISTACK_FSUTIL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "err.h"

/* Write all n bytes; returns n, or -1 with errno (partial bytes may be on disk). */
ssize_t write_all(int fd, const void *p, size_t n);

/* Read until n bytes or end of file; returns the count or -1 with errno. */
ssize_t read_full(int fd, void *p, size_t n);

/*
 * Read into p[0..room): once (waiting), then again while more is ready at
 * once (a burst, or a regular file), so that batches are large when input
 * is fast and prompt when it trickles.  Returns the bytes read (*eof set
 * when the end of input was seen), or -1 with errno when nothing was.
 */
ssize_t read_more(int fd, void *p, size_t room, int *eof);

/* pread until n bytes or end of file; returns the count or -1 with errno. */
ssize_t pread_full(int fd, void *p, size_t n, off_t off);

/* fsync and fdatasync of fd, resumed after a signal; -1 with errno. */
int fsync_fd(int fd);
int fdatasync_fd(int fd);

/* fsync the directory at path (so a rename or create in it is durable). */
int fsync_dir(const char *path);

/* Create path and any missing parents with mode; existing directories are fine. */
int mkdir_p(const char *path, mode_t mode);

/*
 * Replace path with n bytes of data atomically: write a temporary file in
 * the same directory, fsync it, rename it over path, fsync the directory.
 * A crash at any instant leaves either the old file or the new one, never
 * a torn or empty file; an orphaned ".NAME.tmp*" file may remain.
 */
int atomic_replace(const char *path, const void *data, size_t n, mode_t mode,
    struct error *e);

/*
 * Like atomic_replace without the fsyncs: readers see the old file or the
 * new one, never a torn one, but a machine crash may lose the change (or
 * leave an empty file).  For what is rewritten often and costs nothing
 * to lose, such as metrics textfiles.
 */
int atomic_replace_volatile(const char *path, const void *data, size_t n,
    mode_t mode, struct error *e);

/*
 * Write a report (--stats FILE): atomically replaced when path is a
 * regular file or missing; appended to when it is anything else, such as
 * a device, a FIFO or a symbolic link like /dev/stderr, which must never
 * be replaced.
 */
int report_write(const char *path, const char *data, size_t n,
    struct error *e);

/*
 * Read the whole file at path into a new NUL-terminated buffer (caller
 * frees *data).  Files larger than max fail with EFBIG.  Returns 0, or -1
 * with errno (ENOENT when missing).
 */
int read_file(const char *path, size_t max, char **data, size_t *len);
/* The same for what is left to read of the open descriptor fd. */
int read_fd(int fd, size_t max, char **data, size_t *len);

/* Split path into its directory part (at least ".") in dir. */
void path_dirname(const char *path, char *dir, size_t n);

/* The last component of path (borrowed from path). */
const char *path_basename(const char *path);

/*
 * Map the file at path, bytes long, shared (read-write when writable): a
 * file of 64-bit counters that processes change with atomic operations,
 * whose first word is magic.  With create, a missing file is created
 * whole (zeroes after the magic, written aside and linked into place, so
 * that nobody sees it short) and a damaged one (short, or another magic)
 * is replaced by a fresh one.  Returns the mapping (release it with
 * munmap(p, bytes)), or NULL with errno (ENOENT: missing; EINVAL: not
 * such a file); *fdp, when not NULL, receives its open descriptor.
 */
uint64_t *counters_file_map(const char *path, size_t bytes, uint64_t magic,
    int writable, int create, int *fdp);

#endif
