/*
 * The consumer lock: one process works a consumer at a time.  It is an
 * exclusive open-file-description lock (F_OFD_SETLKW) on
 * streams/NAME/consumers/.CONSUMER.lock.  The lock belongs to the open
 * file, so a child that inherits the descriptor (a batch pipeline) keeps
 * the consumer locked until the last copy is closed, even when the
 * process that took it was killed; the kernel releases it then, so a
 * crash never leaves it taken.
 */
#ifndef AISTACK_CONSUMERLOCK_H
#define AISTACK_CONSUMERLOCK_H

#include <stdint.h>

#include "base/err.h"

/*
 * Take the lock of consumer name of the stream directory streamdir,
 * creating consumers/ and the lock file when missing.  timeout_ms < 0
 * waits for ever, 0 tries once.  Returns the descriptor (O_CLOEXEC:
 * clear it to hand the lock to a child), or -1: busy past the timeout is
 * EXIT_TEMPFAIL.  A lock file removed by consumer_remove while this
 * process waited is not trusted: the lock is taken again on the new file.
 */
int consumer_lock(const char *streamdir, const char *name, int64_t timeout_ms,
    struct error *e);

/* Release this process's hold: close fd (-1 is ignored). */
void consumer_unlock(int fd);

#endif
