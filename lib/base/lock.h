/*
 * Advisory locks.  LOCK_FCNTL is an open-file-description lock
 * (F_OFD_SETLKW) on the whole file: it belongs to the open file, is
 * inherited by children that keep the descriptor, is released by the
 * kernel when the last descriptor closes (a killed holder never leaks it),
 * and conflicts with classic POSIX fcntl/lockf locks of other programs.
 * LOCK_FLOCK is flock(2), what Python's fcntl.flock and flock(1) take.
 */
#ifndef AISTACK_LOCK_H
#define AISTACK_LOCK_H

#include <stdint.h>

enum lock_kind {
	LOCK_KIND_FCNTL,
	LOCK_KIND_FLOCK,
	LOCK_KIND_NONE
};

/* Parse "fcntl", "flock" or "none"; 0 on success, -1 otherwise. */
int lock_kind_parse(const char *s, enum lock_kind *k);

/* Open (creating with mode 0600) a lock file; returns the fd or -1. */
int lock_open(const char *path);

/*
 * Take an exclusive (or shared) lock of kind k on fd.  timeout_ms < 0
 * waits for ever, 0 tries once; otherwise waits at most that long.
 * Returns 0, or -1 with errno EWOULDBLOCK when busy past the timeout.
 * EINTR is retried.
 */
int lock_take(int fd, enum lock_kind k, int exclusive, int64_t timeout_ms);

/* Release a lock taken by lock_take. */
int lock_release(int fd, enum lock_kind k);

/*
 * Whether another open file description holds an OFD (or classic fcntl)
 * lock, shared or exclusive, on any part of the file open at fd: 1 or 0,
 * -1 with errno.  Say, whether a process that marks a state by holding a
 * lock is still alive in that state.
 */
int lock_held(int fd);

#endif
