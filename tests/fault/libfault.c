/*
 * libfault.so: make file-system calls fail on purpose, for tests/fault.bats
 * (after jq's libinject_errors.so).  Loaded with LD_PRELOAD, it counts the
 * calls that touch a path under FAULT_PREFIX and makes the Nth one fail.
 *
 * Environment:
 *   FAULT_PREFIX   directory (absolute); only calls on paths under it, or
 *                  on descriptors open on such paths, are counted.  Unset:
 *                  the library does nothing.
 *   FAULT_OPS      comma-separated classes to count (default all):
 *                  open     open, open64, openat, openat64, creat, the
 *                           _FORTIFY_SOURCE __open*_2, mk(o)stemp(s)
 *                  write    write, pwrite, pwrite64, writev, copy_file_range
 *                  fsync    fsync, fdatasync
 *                  rename   rename, renameat, renameat2
 *                  truncate ftruncate, truncate
 *                  unlink   unlink, unlinkat
 *   FAULT_NTH      the counted call that fails (1 is the first); 0 or
 *                  unset only counts.
 *   FAULT_PERSIST  1: every counted call from the Nth on fails (a disk
 *                  that stays broken); otherwise only the Nth.
 *   FAULT_ERRNO    EIO (default), ENOSPC, EINTR, EDQUOT, EROFS, or SHORT:
 *                  a write transfers half its bytes (at least one) and
 *                  succeeds; a call that cannot be short fails with EINTR.
 *   FAULT_COUNTER  a file holding the count, shared by every process that
 *                  has it (children inherit LD_PRELOAD and the environment),
 *                  so that N numbers the calls of a whole process tree.
 *                  After a run it holds the total.  Unset: per process.
 *   FAULT_LOG      a file to which each injected fault appends a line
 *                  "PID OP ERRNO PATH".
 *
 * The count is 64-bit in a MAP_SHARED page, bumped atomically.  The
 * library's own I/O (the log, reading /proc/self/fd) goes to the real
 * functions and is never counted.
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>

#define OP_OPEN		0x01
#define OP_WRITE	0x02
#define OP_FSYNC	0x04
#define OP_RENAME	0x08
#define OP_TRUNCATE	0x10
#define OP_UNLINK	0x20
#define OP_ALL		0x3f

static pthread_once_t once = PTHREAD_ONCE_INIT;
static char prefix[PATH_MAX];
static size_t prefix_len;
static unsigned ops = OP_ALL;
static uint64_t nth;
static int persist;
static int fault_errno = EIO;
static int short_writes;
static char log_path[PATH_MAX];
static uint64_t local_count;
static uint64_t *shared_count;

/* The real functions. */
static int (*real_open)(const char *, int, ...);
static int (*real_openat)(int, const char *, int, ...);
static ssize_t (*real_write)(int, const void *, size_t);
static ssize_t (*real_pwrite)(int, const void *, size_t, off_t);
static ssize_t (*real_pwrite64)(int, const void *, size_t, off_t);
static ssize_t (*real_writev)(int, const struct iovec *, int);
static ssize_t (*real_copy_file_range)(int, off_t *, int, off_t *, size_t,
    unsigned);
static int (*real_fsync)(int);
static int (*real_fdatasync)(int);
static int (*real_rename)(const char *, const char *);
static int (*real_renameat)(int, const char *, int, const char *);
static int (*real_renameat2)(int, const char *, int, const char *, unsigned);
static int (*real_ftruncate)(int, off_t);
static int (*real_truncate)(const char *, off_t);
static int (*real_unlink)(const char *);
static int (*real_unlinkat)(int, const char *, int);
static int (*real_mkostemps)(char *, int, int);

static void *
next(const char *name)
{
	return dlsym(RTLD_NEXT, name);
}

static void
init(void)
{
	const char *v;

	real_open = (int (*)(const char *, int, ...))next("open");
	real_openat = (int (*)(int, const char *, int, ...))next("openat");
	real_write = (ssize_t (*)(int, const void *, size_t))next("write");
	real_pwrite = (ssize_t (*)(int, const void *, size_t, off_t))
	    next("pwrite");
	real_pwrite64 = (ssize_t (*)(int, const void *, size_t, off_t))
	    next("pwrite64");
	real_writev = (ssize_t (*)(int, const struct iovec *, int))
	    next("writev");
	real_copy_file_range = (ssize_t (*)(int, off_t *, int, off_t *,
	    size_t, unsigned))next("copy_file_range");
	real_fsync = (int (*)(int))next("fsync");
	real_fdatasync = (int (*)(int))next("fdatasync");
	real_rename = (int (*)(const char *, const char *))next("rename");
	real_renameat = (int (*)(int, const char *, int, const char *))
	    next("renameat");
	real_renameat2 = (int (*)(int, const char *, int, const char *,
	    unsigned))next("renameat2");
	real_ftruncate = (int (*)(int, off_t))next("ftruncate");
	real_truncate = (int (*)(const char *, off_t))next("truncate");
	real_unlink = (int (*)(const char *))next("unlink");
	real_unlinkat = (int (*)(int, const char *, int))next("unlinkat");
	real_mkostemps = (int (*)(char *, int, int))next("mkostemps");

	if ((v = getenv("FAULT_PREFIX")) == NULL || v[0] != '/')
		return;
	snprintf(prefix, sizeof(prefix), "%s", v);
	prefix_len = strlen(prefix);
	while (prefix_len > 1 && prefix[prefix_len - 1] == '/')
		prefix[--prefix_len] = '\0';
	if ((v = getenv("FAULT_OPS")) != NULL && v[0] != '\0') {
		ops = 0;
		if (strstr(v, "open") != NULL)
			ops |= OP_OPEN;
		if (strstr(v, "write") != NULL)
			ops |= OP_WRITE;
		if (strstr(v, "fsync") != NULL)
			ops |= OP_FSYNC;
		if (strstr(v, "rename") != NULL)
			ops |= OP_RENAME;
		if (strstr(v, "truncate") != NULL)
			ops |= OP_TRUNCATE;
		if (strstr(v, "unlink") != NULL)
			ops |= OP_UNLINK;
	}
	if ((v = getenv("FAULT_NTH")) != NULL)
		nth = strtoull(v, NULL, 10);
	if ((v = getenv("FAULT_PERSIST")) != NULL)
		persist = strcmp(v, "1") == 0;
	if ((v = getenv("FAULT_ERRNO")) != NULL) {
		if (strcmp(v, "ENOSPC") == 0)
			fault_errno = ENOSPC;
		else if (strcmp(v, "EINTR") == 0)
			fault_errno = EINTR;
		else if (strcmp(v, "EDQUOT") == 0)
			fault_errno = EDQUOT;
		else if (strcmp(v, "EROFS") == 0)
			fault_errno = EROFS;
		else if (strcmp(v, "SHORT") == 0) {
			fault_errno = EINTR;
			short_writes = 1;
		}
	}
	if ((v = getenv("FAULT_LOG")) != NULL)
		snprintf(log_path, sizeof(log_path), "%s", v);
	if ((v = getenv("FAULT_COUNTER")) != NULL && v[0] != '\0') {
		int fd = real_open(v, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
		struct stat st;

		if (fd != -1) {
			if (fstat(fd, &st) == 0 && st.st_size < 4096)
				real_ftruncate(fd, 4096);
			shared_count = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
			    MAP_SHARED, fd, 0);
			if (shared_count == MAP_FAILED)
				shared_count = NULL;
			close(fd);
		}
	}
}

static int
under(const char *path)
{
	return prefix_len > 0 && strncmp(path, prefix, prefix_len) == 0 &&
	    (path[prefix_len] == '/' || path[prefix_len] == '\0');
}

/* Does path (relative to dirfd) lie under the prefix? */
static int
path_under(int dirfd, const char *path)
{
	char base[PATH_MAX], full[PATH_MAX * 2 + 2], link[64];
	ssize_t n;

	if (prefix_len == 0 || path == NULL)
		return 0;
	if (path[0] == '/')
		return under(path);
	if (dirfd == AT_FDCWD) {
		if (getcwd(base, sizeof(base)) == NULL)
			return 0;
	} else {
		snprintf(link, sizeof(link), "/proc/self/fd/%d", dirfd);
		if ((n = readlink(link, base, sizeof(base) - 1)) < 0)
			return 0;
		base[n] = '\0';
	}
	snprintf(full, sizeof(full), "%s/%s", base, path);
	return under(full);
}

static int
fd_under(int fd, char *buf, size_t len)
{
	char link[64];
	ssize_t n;

	if (prefix_len == 0 || fd < 0)
		return 0;
	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	if ((n = readlink(link, buf, len - 1)) < 0)
		return 0;
	buf[n] = '\0';
	return under(buf);
}

static void
log_fault(const char *op, int err, const char *path)
{
	char line[PATH_MAX + 128];
	int fd, n;

	if (log_path[0] == '\0')
		return;
	n = snprintf(line, sizeof(line), "%ld %s %s %s\n", (long)getpid(), op,
	    short_writes && err == 0 ? "SHORT" : strerrorname_np(err), path);
	if ((fd = real_open(log_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC,
	    0600)) == -1)
		return;
	if (n > 0)
		(void)!real_write(fd, line, (size_t)n < sizeof(line) ?
		    (size_t)n : sizeof(line) - 1);
	close(fd);
}

/*
 * Count a call of class op on path; nonzero when it must fail.  The
 * caller then fails with fault_errno (or shortens a write).
 */
static int
hit(unsigned op)
{
	uint64_t k;

	if (!(ops & op))
		return 0;
	if (shared_count != NULL)
		k = __atomic_add_fetch(shared_count, 1, __ATOMIC_SEQ_CST);
	else
		k = __atomic_add_fetch(&local_count, 1, __ATOMIC_SEQ_CST);
	if (nth == 0)
		return 0;
	return k == nth || (persist && k > nth);
}

static int
fail(const char *op, const char *path)
{
	log_fault(op, fault_errno, path);
	errno = fault_errno;
	return -1;
}

/* --- open ---------------------------------------------------------------- */

static int
do_openat(int dirfd, const char *path, int flags, mode_t mode, int at)
{
	pthread_once(&once, init);
	if (path_under(dirfd, path) && hit(OP_OPEN))
		return fail("open", path);
	if (at)
		return real_openat(dirfd, path, flags, mode);
	return real_open(path, flags, mode);
}

static mode_t
mode_arg(int flags, va_list ap)
{
	if ((flags & O_CREAT) != 0 || (flags & __O_TMPFILE) == __O_TMPFILE)
		return (mode_t)va_arg(ap, int);
	return 0;
}

int
open(const char *path, int flags, ...)
{
	va_list ap;
	mode_t mode;

	va_start(ap, flags);
	mode = mode_arg(flags, ap);
	va_end(ap);
	return do_openat(AT_FDCWD, path, flags, mode, 0);
}

int
open64(const char *path, int flags, ...)
{
	va_list ap;
	mode_t mode;

	va_start(ap, flags);
	mode = mode_arg(flags, ap);
	va_end(ap);
	return do_openat(AT_FDCWD, path, flags, mode, 0);
}

int
openat(int dirfd, const char *path, int flags, ...)
{
	va_list ap;
	mode_t mode;

	va_start(ap, flags);
	mode = mode_arg(flags, ap);
	va_end(ap);
	return do_openat(dirfd, path, flags, mode, 1);
}

int
openat64(int dirfd, const char *path, int flags, ...)
{
	va_list ap;
	mode_t mode;

	va_start(ap, flags);
	mode = mode_arg(flags, ap);
	va_end(ap);
	return do_openat(dirfd, path, flags, mode, 1);
}

int
__open_2(const char *path, int flags)
{
	return do_openat(AT_FDCWD, path, flags, 0, 0);
}

int
__open64_2(const char *path, int flags)
{
	return do_openat(AT_FDCWD, path, flags, 0, 0);
}

int
__openat_2(int dirfd, const char *path, int flags)
{
	return do_openat(dirfd, path, flags, 0, 1);
}

int
__openat64_2(int dirfd, const char *path, int flags)
{
	return do_openat(dirfd, path, flags, 0, 1);
}

int
creat(const char *path, mode_t mode)
{
	return do_openat(AT_FDCWD, path, O_CREAT | O_WRONLY | O_TRUNC, mode, 0);
}

int
creat64(const char *path, mode_t mode)
{
	return do_openat(AT_FDCWD, path, O_CREAT | O_WRONLY | O_TRUNC, mode, 0);
}

/* glibc's mkstemp family opens inside libc, out of reach of open above. */
int
mkostemps(char *tmpl, int suffixlen, int flags)
{
	pthread_once(&once, init);
	if (path_under(AT_FDCWD, tmpl) && hit(OP_OPEN))
		return fail("open", tmpl);
	return real_mkostemps(tmpl, suffixlen, flags);
}

int
mkostemp(char *tmpl, int flags)
{
	return mkostemps(tmpl, 0, flags);
}

int
mkstemp(char *tmpl)
{
	return mkostemps(tmpl, 0, 0);
}

int
mkstemps(char *tmpl, int suffixlen)
{
	return mkostemps(tmpl, suffixlen, 0);
}

/* --- write --------------------------------------------------------------- */

/*
 * Shared by the write calls: 1 when the call must fail (errno set),
 * 0 to go ahead with *n bytes (halved for a short write).
 */
static int
write_fault(int fd, size_t *n, const char *op)
{
	char path[PATH_MAX];

	pthread_once(&once, init);
	if (!fd_under(fd, path, sizeof(path)) || !hit(OP_WRITE))
		return 0;
	if (short_writes && *n > 1) {
		*n /= 2;
		log_fault(op, 0, path);
		return 0;
	}
	fail(op, path);
	return 1;
}

ssize_t
write(int fd, const void *p, size_t n)
{
	if (write_fault(fd, &n, "write"))
		return -1;
	return real_write(fd, p, n);
}

ssize_t
pwrite(int fd, const void *p, size_t n, off_t off)
{
	if (write_fault(fd, &n, "pwrite"))
		return -1;
	return real_pwrite(fd, p, n, off);
}

ssize_t
pwrite64(int fd, const void *p, size_t n, off_t off)
{
	if (write_fault(fd, &n, "pwrite"))
		return -1;
	return real_pwrite64(fd, p, n, off);
}

ssize_t
writev(int fd, const struct iovec *iov, int cnt)
{
	size_t n = cnt > 0 ? iov[0].iov_len : 0, want = n;

	if (write_fault(fd, &n, "writev"))
		return -1;
	if (n < want)	/* short: part of the first buffer only */
		return real_write(fd, iov[0].iov_base, n);
	return real_writev(fd, iov, cnt);
}

ssize_t
copy_file_range(int in, off_t *inoff, int out, off_t *outoff, size_t n,
    unsigned flags)
{
	if (write_fault(out, &n, "copy_file_range"))
		return -1;
	return real_copy_file_range(in, inoff, out, outoff, n, flags);
}

/* --- fsync ----------------------------------------------------------------- */

int
fsync(int fd)
{
	char path[PATH_MAX];

	pthread_once(&once, init);
	if (fd_under(fd, path, sizeof(path)) && hit(OP_FSYNC))
		return fail("fsync", path);
	return real_fsync(fd);
}

int
fdatasync(int fd)
{
	char path[PATH_MAX];

	pthread_once(&once, init);
	if (fd_under(fd, path, sizeof(path)) && hit(OP_FSYNC))
		return fail("fdatasync", path);
	return real_fdatasync(fd);
}

/* --- rename, truncate, unlink ---------------------------------------------- */

int
rename(const char *from, const char *to)
{
	pthread_once(&once, init);
	if ((path_under(AT_FDCWD, from) || path_under(AT_FDCWD, to)) &&
	    hit(OP_RENAME))
		return fail("rename", to);
	return real_rename(from, to);
}

int
renameat(int fd1, const char *from, int fd2, const char *to)
{
	pthread_once(&once, init);
	if ((path_under(fd1, from) || path_under(fd2, to)) && hit(OP_RENAME))
		return fail("rename", to);
	return real_renameat(fd1, from, fd2, to);
}

int
renameat2(int fd1, const char *from, int fd2, const char *to, unsigned flags)
{
	pthread_once(&once, init);
	if ((path_under(fd1, from) || path_under(fd2, to)) && hit(OP_RENAME))
		return fail("rename", to);
	return real_renameat2(fd1, from, fd2, to, flags);
}

int
ftruncate(int fd, off_t len)
{
	char path[PATH_MAX];

	pthread_once(&once, init);
	if (fd_under(fd, path, sizeof(path)) && hit(OP_TRUNCATE))
		return fail("ftruncate", path);
	return real_ftruncate(fd, len);
}

int
truncate(const char *path, off_t len)
{
	pthread_once(&once, init);
	if (path_under(AT_FDCWD, path) && hit(OP_TRUNCATE))
		return fail("truncate", path);
	return real_truncate(path, len);
}

int
unlink(const char *path)
{
	pthread_once(&once, init);
	if (path_under(AT_FDCWD, path) && hit(OP_UNLINK))
		return fail("unlink", path);
	return real_unlink(path);
}

int
unlinkat(int dirfd, const char *path, int flags)
{
	pthread_once(&once, init);
	if (path_under(dirfd, path) && hit(OP_UNLINK))
		return fail("unlink", path);
	return real_unlinkat(dirfd, path, flags);
}
