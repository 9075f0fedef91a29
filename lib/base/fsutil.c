#include <errno.h>
#include <poll.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "buf.h"
#include "exitcode.h"
#include "fsutil.h"

ssize_t
write_all(int fd, const void *p, size_t n)
{
	const char *c = p;
	size_t done = 0;

	while (done < n) {
		ssize_t w = write(fd, c + done, n - done);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (w == 0) {
			errno = EIO;
			return -1;
		}
		done += (size_t)w;
	}
	return (ssize_t)done;
}

ssize_t
read_full(int fd, void *p, size_t n)
{
	char *c = p;
	size_t done = 0;

	while (done < n) {
		ssize_t r = read(fd, c + done, n - done);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (r == 0)
			break;
		done += (size_t)r;
	}
	return (ssize_t)done;
}

ssize_t
pread_full(int fd, void *p, size_t n, off_t off)
{
	char *c = p;
	size_t done = 0;

	while (done < n) {
		ssize_t r = pread(fd, c + done, n - done, off + (off_t)done);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (r == 0)
			break;
		done += (size_t)r;
	}
	return (ssize_t)done;
}

int
fsync_fd(int fd)
{
	int rc;

	do
		rc = fsync(fd);
	while (rc == -1 && errno == EINTR);
	return rc;
}

int
fdatasync_fd(int fd)
{
	int rc;

	do
		rc = fdatasync(fd);
	while (rc == -1 && errno == EINTR);
	return rc;
}

int
fsync_dir(const char *path)
{
	int fd, rc;

	if ((fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) == -1)
		return -1;
	rc = fsync_fd(fd);
	if (rc == -1 && errno == EINVAL)
		rc = 0;		/* file systems that cannot sync directories */
	close(fd);
	return rc;
}

int
mkdir_p(const char *path, mode_t mode)
{
	char tmp[PATH_MAX];
	struct stat st;
	size_t len = strlen(path);
	char *p, saved;

	if (len == 0 || len >= sizeof(tmp)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	/* the common case, in one call: it is there */
	if (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
		return 0;
	memcpy(tmp, path, len + 1);
	for (p = tmp + 1; ; p++) {
		if (*p != '/' && *p != '\0')
			continue;
		saved = *p;
		*p = '\0';
		if (mkdir(tmp, mode) == -1) {
			if (errno != EEXIST)
				return -1;
			if (stat(tmp, &st) == -1)
				return -1;
			if (!S_ISDIR(st.st_mode)) {
				errno = ENOTDIR;
				return -1;
			}
		}
		*p = saved;
		if (saved == '\0')
			break;
		while (p[1] == '/')
			p++;
		if (p[1] == '\0')
			break;
	}
	return 0;
}

void
path_dirname(const char *path, char *dir, size_t n)
{
	const char *slash = strrchr(path, '/');

	if (slash == NULL)
		snprintf(dir, n, ".");
	else if (slash == path)
		snprintf(dir, n, "/");
	else
		snprintf(dir, n, "%.*s", (int)(slash - path), path);
}

const char *
path_basename(const char *path)
{
	const char *slash = strrchr(path, '/');

	return slash != NULL ? slash + 1 : path;
}

static int replace(const char *, const void *, size_t, mode_t, int,
    struct error *);

int
atomic_replace(const char *path, const void *data, size_t n, mode_t mode,
    struct error *e)
{
	return replace(path, data, n, mode, 1, e);
}

int
atomic_replace_volatile(const char *path, const void *data, size_t n,
    mode_t mode, struct error *e)
{
	return replace(path, data, n, mode, 0, e);
}

static int
replace(const char *path, const void *data, size_t n, mode_t mode,
    int durable, struct error *e)
{
	char dir[PATH_MAX], tmp[PATH_MAX + 32];
	int fd;

	path_dirname(path, dir, sizeof(dir));
	if (snprintf(tmp, sizeof(tmp), "%s/.%s.tmpXXXXXX", dir,
	    path_basename(path)) >= (int)sizeof(tmp))
		return error_set(e, EXIT_CANTCREAT, "%s: path too long", path);
	if ((fd = mkostemp(tmp, O_CLOEXEC)) == -1)
		return error_errno(e, error_code_for_errno(errno),
		    "%s: create temporary file", path);
	if (fchmod(fd, mode) == -1 || write_all(fd, data, n) == -1) {
		error_errno(e, error_code_for_errno(errno), "%s: write", tmp);
		goto fail;
	}
	if (durable && fsync_fd(fd) == -1) {
		error_errno(e, EXIT_IOERR, "%s: fsync", tmp);
		goto fail;
	}
	if (close(fd) == -1) {
		fd = -1;
		error_errno(e, EXIT_IOERR, "%s: close", tmp);
		goto fail;
	}
	fd = -1;
	if (rename(tmp, path) == -1) {
		error_errno(e, error_code_for_errno(errno), "%s: rename", path);
		goto fail;
	}
	if (durable && fsync_dir(dir) == -1)
		return error_errno(e, EXIT_IOERR, "%s: fsync directory", dir);
	return 0;
fail:
	if (fd != -1)
		close(fd);
	unlink(tmp);
	return -1;
}

int
report_write(const char *path, const char *data, size_t n, struct error *e)
{
	struct stat st;
	int fd;

	if (lstat(path, &st) == -1 || S_ISREG(st.st_mode))
		return atomic_replace(path, data, n, 0644, e);
	if ((fd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC)) == -1)
		return error_errno(e, EXIT_CANTCREAT, "%s", path);
	if (write_all(fd, data, n) == -1) {
		error_errno(e, EXIT_IOERR, "%s", path);
		close(fd);
		return -1;
	}
	if (close(fd) == -1)
		return error_errno(e, EXIT_IOERR, "%s", path);
	return 0;
}

int
read_fd(int fd, size_t max, char **data, size_t *len)
{
	struct buf b = BUF_INIT;
	ssize_t r;

	*data = NULL;
	*len = 0;
	for (;;) {
		if (buf_reserve(&b, 65536) == -1)
			goto fail;
		r = read(fd, b.data + b.len, b.cap - b.len - 1);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			goto fail;
		}
		if (r == 0)
			break;
		b.len += (size_t)r;
		if (b.len > max) {
			errno = EFBIG;
			goto fail;
		}
	}
	*data = buf_cstr(&b);
	*len = b.len;
	return 0;
fail:
	buf_release(&b);
	return -1;
}

int
read_file(const char *path, size_t max, char **data, size_t *len)
{
	int fd, rc, saved;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1) {
		*data = NULL;
		*len = 0;
		return -1;
	}
	rc = read_fd(fd, max, data, len);
	saved = errno;
	close(fd);
	errno = saved;
	return rc;
}

/* Create path whole: bytes of zeroes with magic first, written to a
 * temporary file and linked (or, replace, renamed) into place. */
static int
counters_file_create(const char *path, size_t bytes, uint64_t magic,
    int replace)
{
	char tmp[PATH_MAX + 32];
	uint64_t *page;
	int fd, rc;

	if ((page = calloc(1, bytes)) == NULL)
		return -1;
	page[0] = magic;
	snprintf(tmp, sizeof(tmp), "%s.tmpXXXXXX", path);
	if ((fd = mkostemp(tmp, O_CLOEXEC)) == -1) {
		free(page);
		return -1;
	}
	rc = fchmod(fd, 0644) == -1 || write_all(fd, page, bytes) == -1 ?
	    -1 : 0;
	free(page);
	if (close(fd) == -1)
		rc = -1;
	if (rc == 0 && (replace ? rename(tmp, path) : link(tmp, path)) == -1 &&
	    errno != EEXIST)
		rc = -1;
	unlink(tmp);
	return rc;
}

/* Map path if it is a counters file of that size and magic. */
static uint64_t *
counters_file_open(const char *path, size_t bytes, uint64_t magic,
    int writable, int *fdp)
{
	struct stat st;
	void *p;
	int fd;

	if ((fd = open(path, (writable ? O_RDWR : O_RDONLY) | O_CLOEXEC)) == -1)
		return NULL;
	if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode) ||
	    (uint64_t)st.st_size < bytes) {
		close(fd);
		errno = EINVAL;
		return NULL;
	}
	p = mmap(NULL, bytes, PROT_READ | (writable ? PROT_WRITE : 0),
	    MAP_SHARED, fd, 0);
	if (p == MAP_FAILED) {
		close(fd);
		return NULL;
	}
	if (__atomic_load_n((uint64_t *)p, __ATOMIC_RELAXED) != magic) {
		munmap(p, bytes);
		close(fd);
		errno = EINVAL;
		return NULL;
	}
	if (fdp != NULL)
		*fdp = fd;
	else
		close(fd);
	return p;
}

uint64_t *
counters_file_map(const char *path, size_t bytes, uint64_t magic,
    int writable, int create, int *fdp)
{
	uint64_t *p;

	if ((p = counters_file_open(path, bytes, magic, writable, fdp)) != NULL ||
	    !create)
		return p;
	if (counters_file_create(path, bytes, magic, errno != ENOENT) == -1)
		return NULL;
	return counters_file_open(path, bytes, magic, writable, fdp);
}

ssize_t
read_more(int fd, void *p, size_t room, int *eof)
{
	char *c = p;
	size_t got = 0;
	ssize_t r;

	*eof = 0;
	while (got < room) {
		struct pollfd pfd = { fd, POLLIN, 0 };
		if ((r = read(fd, c + got, room - got)) < 0) {
			if (errno == EINTR)
				continue;
			return got > 0 ? (ssize_t)got : -1;
		}
		if (r == 0) {
			*eof = 1;
			break;
		}
		got += (size_t)r;
		if (got < room && poll(&pfd, 1, 0) != 1)
			break;
	}
	return (ssize_t)got;
}
