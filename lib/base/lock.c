#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>

#include "lock.h"

int
lock_kind_parse(const char *s, enum lock_kind *k)
{
	if (strcmp(s, "fcntl") == 0)
		*k = LOCK_KIND_FCNTL;
	else if (strcmp(s, "flock") == 0)
		*k = LOCK_KIND_FLOCK;
	else if (strcmp(s, "none") == 0)
		*k = LOCK_KIND_NONE;
	else
		return -1;
	return 0;
}

int
lock_open(const char *path)
{
	int fd;

	do
		fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	while (fd == -1 && errno == EINTR);
	return fd;
}

static int
try_once(int fd, enum lock_kind k, int exclusive, int wait)
{
	struct flock fl;

	switch (k) {
	case LOCK_KIND_FCNTL:
		memset(&fl, 0, sizeof(fl));
		fl.l_type = exclusive ? F_WRLCK : F_RDLCK;
		fl.l_whence = SEEK_SET;
		if (fcntl(fd, wait ? F_OFD_SETLKW : F_OFD_SETLK, &fl) == -1) {
			if (errno == EACCES || errno == EAGAIN)
				errno = EWOULDBLOCK;
			return -1;
		}
		return 0;
	case LOCK_KIND_FLOCK:
		return flock(fd, (exclusive ? LOCK_EX : LOCK_SH) |
		    (wait ? 0 : LOCK_NB));
	case LOCK_KIND_NONE:
		return 0;
	}
	errno = EINVAL;
	return -1;
}

int
lock_take(int fd, enum lock_kind k, int exclusive, int64_t timeout_ms)
{
	struct timespec nap = { 0, 2000000 };	/* 2 ms, doubling to 50 ms */
	int64_t waited = 0;

	for (;;) {
		if (try_once(fd, k, exclusive, timeout_ms < 0) == 0)
			return 0;
		if (errno == EINTR)
			continue;
		if (errno != EWOULDBLOCK || timeout_ms < 0 || waited >= timeout_ms)
			return -1;
		nanosleep(&nap, NULL);
		waited += nap.tv_nsec / 1000000;
		if (nap.tv_nsec < 50000000)
			nap.tv_nsec *= 2;
	}
}

int
lock_release(int fd, enum lock_kind k)
{
	struct flock fl;

	switch (k) {
	case LOCK_KIND_FCNTL:
		memset(&fl, 0, sizeof(fl));
		fl.l_type = F_UNLCK;
		fl.l_whence = SEEK_SET;
		return fcntl(fd, F_OFD_SETLK, &fl);
	case LOCK_KIND_FLOCK:
		return flock(fd, LOCK_UN);
	case LOCK_KIND_NONE:
		return 0;
	}
	errno = EINVAL;
	return -1;
}

int
lock_held(int fd)
{
	struct flock fl;

	memset(&fl, 0, sizeof(fl));
	fl.l_type = F_WRLCK;
	fl.l_whence = SEEK_SET;
	if (fcntl(fd, F_OFD_GETLK, &fl) == -1)
		return -1;
	return fl.l_type != F_UNLCK;
}
