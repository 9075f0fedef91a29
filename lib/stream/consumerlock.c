#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/exitcode.h"
#include "base/fsutil.h"
#include "base/lock.h"
#include "base/statedir.h"
#include "consumerlock.h"

int
consumer_lock(const char *streamdir, const char *name, int64_t timeout_ms,
    struct error *e)
{
	char dir[PATH_MAX], path[PATH_MAX + NAME_MAX_LEN + 16];
	struct stat held, now;
	int fd, saved;

	if (!name_valid(name))
		return error_set(e, EXIT_USAGE, "%s: invalid consumer name "
		    "(expected [a-z0-9][a-z0-9._-]{0,63})", name);
	if ((size_t)snprintf(dir, sizeof(dir), "%s/consumers", streamdir) >=
	    sizeof(dir))
		return error_set(e, EXIT_USAGE, "%s: path too long", streamdir);
	snprintf(path, sizeof(path), "%s/.%s.lock", dir, name);
	if (mkdir_p(dir, 0700) == -1)
		return error_errno(e, error_code_for_errno(errno), "%s", dir);
	for (;;) {
		if ((fd = lock_open(path)) == -1)
			return error_errno(e, error_code_for_errno(errno), "%s",
			    path);
		if (lock_take(fd, LOCK_KIND_FCNTL, 1, timeout_ms) == -1) {
			saved = errno;
			close(fd);
			errno = saved;
			if (saved == EWOULDBLOCK)
				return error_set(e, EXIT_TEMPFAIL,
				    "consumer %s is busy", name);
			return error_errno(e, EXIT_IOERR, "%s: lock", path);
		}
		/* the file we locked must still be the one at path */
		if (fstat(fd, &held) == -1) {
			error_errno(e, EXIT_IOERR, "%s", path);
			close(fd);
			return -1;
		}
		if (stat(path, &now) == 0) {
			if (now.st_dev == held.st_dev &&
			    now.st_ino == held.st_ino)
				return fd;
		} else if (errno != ENOENT) {
			error_errno(e, EXIT_IOERR, "%s", path);
			close(fd);
			return -1;
		}
		close(fd);	/* removed meanwhile: lock the new file */
	}
}

void
consumer_unlock(int fd)
{
	if (fd != -1)
		close(fd);
}
