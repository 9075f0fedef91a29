#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "base/exitcode.h"
#include "base/fsutil.h"
#include "copytrunc.h"

#define COPY_CHUNK (1024 * 1024)

/* Copy n bytes of in (from offset 0) to out. */
static int
copy_bytes(int in, int out, uint64_t n)
{
	uint64_t done = 0;
	char *buf = NULL;

	while (done < n) {
		loff_t off = (loff_t)done;
		ssize_t w = copy_file_range(in, &off, out, NULL,
		    (size_t)(n - done > (1u << 30) ? (1u << 30) : n - done), 0);
		if (w > 0) {
			done += (uint64_t)w;
			continue;
		}
		if (w == 0) {
			errno = EIO;	/* the file shrank under the lock */
			return -1;
		}
		if (errno == EINTR)
			continue;
		if (errno != EXDEV && errno != ENOSYS && errno != EINVAL &&
		    errno != EOPNOTSUPP)
			return -1;
		break;		/* fall back to read and write */
	}
	if (done == n)
		return 0;
	if ((buf = malloc(COPY_CHUNK)) == NULL)
		return -1;
	if (lseek(out, (off_t)done, SEEK_SET) == -1)
		goto fail;
	while (done < n) {
		size_t want = n - done > COPY_CHUNK ? COPY_CHUNK :
		    (size_t)(n - done);
		ssize_t r = pread_full(in, buf, want, (off_t)done);
		if (r < 0)
			goto fail;
		if ((size_t)r != want) {
			errno = EIO;
			goto fail;
		}
		if (write_all(out, buf, want) == -1)
			goto fail;
		done += want;
	}
	free(buf);
	return 0;
fail:
	free(buf);
	return -1;
}

/* The stamp for a new copy of base in dir: now, or after the newest. */
static int
next_stamp(const char *dir, const char *base, int64_t now, int64_t *stamp,
    struct error *e)
{
	struct rotcopy *v;
	size_t n;

	if (rotcopy_list(dir, base, &v, &n, e) == -1)
		return -1;
	*stamp = now;
	if (n > 0 && v[n - 1].stamp >= now)
		*stamp = v[n - 1].stamp + 1;
	rotcopy_list_free(v, n);
	return 0;
}

int
copytrunc(const char *path, enum lock_kind k, int64_t now, int dry_run,
    char *copy, size_t cn, uint64_t *bytes, struct error *e)
{
	return copytrunc_timed(path, k, -1, now, dry_run, copy, cn, bytes, e);
}

/*
 * Open path for a rotation (read-only for a dry run), take its writers'
 * lock k within lock_timeout_ms (not for a dry run; EXIT_TEMPFAIL when it
 * did not come) and check that it is a regular file: the descriptor, or
 * -1 with nothing held.
 */
static int
rot_open(const char *path, enum lock_kind k, int64_t lock_timeout_ms,
    int dry_run, struct stat *st, struct error *e)
{
	int fd;

	if ((fd = open(path, (dry_run ? O_RDONLY : O_RDWR) | O_CLOEXEC |
	    O_NOCTTY)) == -1)
		return error_errno(e, errno == ENOENT ? EXIT_NOINPUT :
		    error_code_for_errno(errno), "%s", path);
	if (!dry_run && lock_take(fd, k, 1, lock_timeout_ms) == -1) {
		if (errno == EWOULDBLOCK)
			error_set(e, EXIT_TEMPFAIL, "%s: the writers' lock was "
			    "not obtained within --lock-timeout %lldms; not "
			    "rotated", path, (long long)lock_timeout_ms);
		else
			error_errno(e, EXIT_IOERR, "%s: lock", path);
		close(fd);
		return -1;
	}
	if (fstat(fd, st) == -1)
		error_errno(e, EXIT_IOERR, "%s", path);
	else if (!S_ISREG(st->st_mode))
		error_set(e, EXIT_DATAERR, "%s: not a regular file", path);
	else
		return fd;
	if (!dry_run)
		lock_release(fd, k);
	close(fd);
	return -1;
}

/* Release what rot_open took; returns rc. */
static int
rot_close(int fd, enum lock_kind k, int dry_run, int rc)
{
	if (!dry_run)
		lock_release(fd, k);
	close(fd);
	return rc;
}

/* The name of the next copy of base in dir into copy. */
static int
rot_name(const char *path, const char *dir, const char *base, int64_t now,
    char *copy, size_t cn, struct error *e)
{
	int64_t stamp;

	if (next_stamp(dir, base, now, &stamp, e) == -1)
		return -1;
	if (rotcopy_name(copy, cn, base, stamp, 0) == -1)
		return error_set(e, EXIT_CANTCREAT, "%s: name too long", path);
	return 0;
}

/* fsync and close fd, the temporary file tmp. */
static int
fsync_close(int fd, const char *tmp, struct error *e)
{
	int rc;

	rc = fsync_fd(fd);
	if (close(fd) == -1 || rc == -1)
		return error_errno(e, EXIT_IOERR, "%s: fsync", tmp);
	return 0;
}

/*
 * Copy the whole file fd (st) to the copy named copy in dir, durably,
 * then truncate it: the lines leave FILE only once they are in the copy.
 */
static int
copy_then_truncate(int fd, const struct stat *st, const char *path,
    const char *dir, const char *copy, struct error *e)
{
	char tmp[PATH_MAX + 64], dst[PATH_MAX + 64];
	int tfd, rc;

	snprintf(dst, sizeof(dst), "%s/%s", dir, copy);
	snprintf(tmp, sizeof(tmp), "%s/.%s.tmpXXXXXX", dir, copy);
	if ((tfd = mkostemp(tmp, O_CLOEXEC)) == -1)
		return error_errno(e, error_code_for_errno(errno), "%s", tmp);
	if (fchmod(tfd, st->st_mode & 0666) == -1 ||
	    copy_bytes(fd, tfd, (uint64_t)st->st_size) == -1) {
		error_errno(e, error_code_for_errno(errno), "%s: copy to %s",
		    path, copy);
		close(tfd);
		unlink(tmp);
		return -1;
	}
	if (fsync_close(tfd, tmp, e) == -1) {
		unlink(tmp);
		return -1;
	}
	/* link, not rename: an existing copy is never replaced */
	rc = link(tmp, dst);
	if (rc == -1)
		error_errno(e, error_code_for_errno(errno), "%s", dst);
	unlink(tmp);
	if (rc == -1)
		return -1;
	if (fsync_dir(dir) == -1)
		return error_errno(e, EXIT_IOERR, "%s: fsync", dir);
	/* the copy is durable: now the lines may leave FILE */
	if (ftruncate(fd, 0) == -1)
		return error_errno(e, EXIT_IOERR, "%s: truncate", path);
	rc = fsync_fd(fd);
	if (rc == -1)
		return error_errno(e, EXIT_IOERR, "%s: fsync", path);
	return 0;
}

int
copytrunc_timed(const char *path, enum lock_kind k, int64_t lock_timeout_ms,
    int64_t now, int dry_run, char *copy, size_t cn, uint64_t *bytes,
    struct error *e)
{
	char dir[PATH_MAX];
	struct stat st;
	int fd;

	*bytes = 0;
	path_dirname(path, dir, sizeof(dir));
	if ((fd = rot_open(path, k, lock_timeout_ms, dry_run, &st, e)) == -1)
		return -1;
	if (st.st_size == 0)
		return rot_close(fd, k, dry_run, 0);
	if (rot_name(path, dir, path_basename(path), now, copy, cn, e) == -1)
		return rot_close(fd, k, dry_run, -1);
	*bytes = (uint64_t)st.st_size;
	if (dry_run)
		return rot_close(fd, k, dry_run, 1);
	if (copy_then_truncate(fd, &st, path, dir, copy, e) == -1)
		return rot_close(fd, k, dry_run, -1);
	return rot_close(fd, k, dry_run, 1);
}

/*
 * The name of the copy of base in dir that is the file st itself (a run
 * that died between the link and the rename), into copy; 1 when there is
 * one, 0 when not, -1 on error.
 */
static int
linked_copy(const char *dir, const char *base, const struct stat *st,
    char *copy, size_t cn, struct error *e)
{
	char p[PATH_MAX + NAME_MAX + 2];
	struct rotcopy *v;
	struct stat cs;
	size_t n, i;
	int found = 0;

	if (st->st_nlink < 2)
		return 0;
	if (rotcopy_list(dir, base, &v, &n, e) == -1)
		return -1;
	for (i = n; i-- > 0 && !found;) {
		if (!v[i].plain)
			continue;
		snprintf(p, sizeof(p), "%s/%s", dir, v[i].name);
		if (lstat(p, &cs) == 0 && cs.st_dev == st->st_dev &&
		    cs.st_ino == st->st_ino) {
			snprintf(copy, cn, "%s", v[i].name);
			found = 1;
		}
	}
	rotcopy_list_free(v, n);
	return found;
}

/*
 * The rename of fd (st, at path) to the copy named copy in dir, an empty
 * file of the same owner and mode in its place: made beside it, then
 * renamed over it once FILE is linked as the copy (relink: it already
 * is), so that the name exists at every instant.
 */
static int
rename_to_copy(const struct stat *st, const char *path, const char *dir,
    const char *copy, int relink, struct error *e)
{
	char tmp[PATH_MAX + 64], dst[PATH_MAX + 64];
	int tfd;

	snprintf(dst, sizeof(dst), "%s/%s", dir, copy);
	snprintf(tmp, sizeof(tmp), "%s/.%s.tmpXXXXXX", dir, copy);
	if ((tfd = mkostemp(tmp, O_CLOEXEC)) == -1)
		return error_errno(e, error_code_for_errno(errno), "%s", tmp);
	/* the new file must be one the writers may open as they did the old */
	if ((fchown(tfd, st->st_uid, st->st_gid) == -1 &&
	    (st->st_uid != geteuid() || st->st_gid != getegid())) ||
	    fchmod(tfd, st->st_mode & 07777) == -1) {
		error_errno(e, error_code_for_errno(errno), "%s: cannot give "
		    "the new file the owner %lu:%lu and mode %04o of the old; "
		    "not rotated", path, (unsigned long)st->st_uid,
		    (unsigned long)st->st_gid, (unsigned)(st->st_mode & 07777));
		close(tfd);
		unlink(tmp);
		return -1;
	}
	if (fsync_close(tfd, tmp, e) == -1) {
		unlink(tmp);
		return -1;
	}
	/* link, not rename: FILE is never missing, and an existing copy is
	 * never replaced */
	if (!relink && link(path, dst) == -1) {
		error_errno(e, error_code_for_errno(errno), "%s", dst);
		unlink(tmp);
		return -1;
	}
	if (rename(tmp, path) == -1) {
		error_errno(e, EXIT_IOERR, "%s: rename over %s", tmp, path);
		unlink(tmp);
		return -1;
	}
	if (fsync_dir(dir) == -1)
		return error_errno(e, EXIT_IOERR, "%s: fsync", dir);
	return 0;
}

int
rotrename_timed(const char *path, enum lock_kind k, int64_t lock_timeout_ms,
    int64_t now, int dry_run, char *copy, size_t cn, uint64_t *bytes,
    struct error *e)
{
	char dir[PATH_MAX];
	const char *base = path_basename(path);
	struct stat st, ls;
	int fd, relink;

	*bytes = 0;
	path_dirname(path, dir, sizeof(dir));
	if ((fd = rot_open(path, k, lock_timeout_ms, dry_run, &st, e)) == -1)
		return -1;
	/* the file locked must be the one at the path */
	if (lstat(path, &ls) == -1 || ls.st_dev != st.st_dev ||
	    ls.st_ino != st.st_ino) {
		error_set(e, EXIT_TEMPFAIL, "%s: replaced while being rotated; "
		    "not rotated", path);
		return rot_close(fd, k, dry_run, -1);
	}
	if ((relink = linked_copy(dir, base, &st, copy, cn, e)) == -1)
		return rot_close(fd, k, dry_run, -1);
	if (st.st_size == 0 && !relink)
		return rot_close(fd, k, dry_run, 0);
	if (!relink && rot_name(path, dir, base, now, copy, cn, e) == -1)
		return rot_close(fd, k, dry_run, -1);
	*bytes = (uint64_t)st.st_size;
	if (dry_run)
		return rot_close(fd, k, dry_run, 1);
	if (rename_to_copy(&st, path, dir, copy, relink, e) == -1)
		return rot_close(fd, k, dry_run, -1);
	return rot_close(fd, k, dry_run, 1);
}
