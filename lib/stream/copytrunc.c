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

/* Parse "YYYYMMDDTHHMMSSZ" exactly; 0 with *t. */
static int
parse_stamp(const char *s, int64_t *t)
{
	static const char shape[] = "ddddddddTddddddZ";
	struct tm tm;
	int v[6], i;

	for (i = 0; i < ROTCOPY_STAMP_LEN; i++) {
		if (shape[i] == 'd') {
			if (s[i] < '0' || s[i] > '9')
				return -1;
		} else if (s[i] != shape[i])
			return -1;
	}
	memset(&tm, 0, sizeof(tm));
	for (i = 0; i < 6; i++) {
		static const int off[] = { 0, 4, 6, 9, 11, 13 };
		static const int len[] = { 4, 2, 2, 2, 2, 2 };
		int j, x = 0;
		for (j = 0; j < len[i]; j++)
			x = x * 10 + (s[off[i] + j] - '0');
		v[i] = x;
	}
	if (v[1] < 1 || v[1] > 12 || v[2] < 1 || v[2] > 31 || v[3] > 23 ||
	    v[4] > 59 || v[5] > 60)
		return -1;
	tm.tm_year = v[0] - 1900;
	tm.tm_mon = v[1] - 1;
	tm.tm_mday = v[2];
	tm.tm_hour = v[3];
	tm.tm_min = v[4];
	tm.tm_sec = v[5];
	*t = (int64_t)timegm(&tm);
	return 0;
}

int
rotcopy_parse(const char *base, const char *name, int64_t *stamp, int *gz)
{
	size_t b = strlen(base), n = strlen(name);
	const char *rest;

	if (n < b + 1 + ROTCOPY_STAMP_LEN || memcmp(name, base, b) != 0 ||
	    name[b] != '.')
		return -1;
	rest = name + b + 1 + ROTCOPY_STAMP_LEN;
	if (strcmp(rest, "") == 0)
		*gz = 0;
	else if (strcmp(rest, ".gz") == 0)
		*gz = 1;
	else
		return -1;
	return parse_stamp(name + b + 1, stamp);
}

int
rotcopy_name(char *buf, size_t n, const char *base, int64_t stamp, int gz)
{
	char ts[32];
	time_t t = (time_t)stamp;
	struct tm tm;

	if (gmtime_r(&t, &tm) == NULL)
		return -1;
	strftime(ts, sizeof(ts), "%Y%m%dT%H%M%SZ", &tm);
	if ((size_t)snprintf(buf, n, "%s.%s%s", base, ts, gz ? ".gz" : "") >= n)
		return -1;
	return 0;
}

int
rotcopy_is_temp(const char *base, const char *name)
{
	size_t n = strlen(name), b = strlen(base), core;
	int64_t t;
	int gz;
	char tmp[NAME_MAX + 1];

	/* "." BASE "." STAMP [".gz"] ".tmp" XXXXXX */
	if (name[0] != '.' || n < 1 + b + 1 + ROTCOPY_STAMP_LEN + 10 ||
	    memcmp(name + n - 10, ".tmp", 4) != 0)
		return 0;
	core = n - 1 - 10;
	if (core >= sizeof(tmp))
		return 0;
	memcpy(tmp, name + 1, core);
	tmp[core] = '\0';
	return rotcopy_parse(base, tmp, &t, &gz) == 0;
}

static int
rotcopy_cmp(const void *a, const void *b)
{
	const struct rotcopy *x = a, *y = b;

	return x->stamp < y->stamp ? -1 : x->stamp > y->stamp;
}

int
rotcopy_list(const char *dir, const char *base, struct rotcopy **vp,
    size_t *np, struct error *e)
{
	struct rotcopy *v = NULL;
	size_t n = 0, cap = 0, i, o;
	struct dirent *de;
	DIR *d;

	*vp = NULL;
	*np = 0;
	if ((d = opendir(dir)) == NULL)
		return error_errno(e, errno == ENOENT ? EXIT_NOINPUT : EXIT_IOERR,
		    "%s", dir);
	while ((errno = 0, de = readdir(d)) != NULL) {
		char path[PATH_MAX];
		struct stat st;
		int64_t stamp;
		int gz;

		if (rotcopy_parse(base, de->d_name, &stamp, &gz) == -1)
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		if (lstat(path, &st) == -1 || !S_ISREG(st.st_mode))
			continue;	/* gone meanwhile, or not ours */
		if (n == cap) {
			struct rotcopy *nv;
			cap = cap ? cap * 2 : 16;
			if ((nv = realloc(v, cap * sizeof(*v))) == NULL)
				goto oom;
			v = nv;
		}
		memset(&v[n], 0, sizeof(v[n]));
		v[n].stamp = stamp;
		v[n].plain = !gz;
		v[n].gz = gz;
		v[n].disk = (uint64_t)st.st_size;
		v[n].mtime_ms = (int64_t)st.st_mtim.tv_sec * 1000 +
		    st.st_mtim.tv_nsec / 1000000;
		if (gz)
			de->d_name[strlen(de->d_name) - 3] = '\0';
		if ((v[n].name = strdup(de->d_name)) == NULL)
			goto oom;
		n++;
	}
	if (errno != 0) {
		error_errno(e, EXIT_IOERR, "%s", dir);
		closedir(d);
		rotcopy_list_free(v, n);
		return -1;
	}
	closedir(d);
	if (n > 1)
		qsort(v, n, sizeof(*v), rotcopy_cmp);
	/* merge the two forms of one stamp; the gzip form's size counts */
	for (i = 1, o = n ? 1 : 0; i < n; i++) {
		if (v[i].stamp == v[o - 1].stamp) {
			struct rotcopy *keep = &v[o - 1], *dup = &v[i];
			if (dup->gz) {
				keep->disk = dup->disk;
				keep->mtime_ms = dup->mtime_ms;
			}
			keep->plain |= dup->plain;
			keep->gz |= dup->gz;
			free(dup->name);
			continue;
		}
		v[o++] = v[i];
	}
	*vp = v;
	*np = o;
	return 0;
oom:
	closedir(d);
	rotcopy_list_free(v, n);
	return error_errno(e, EXIT_SOFTWARE, "%s", dir);
}

void
rotcopy_list_free(struct rotcopy *v, size_t n)
{
	size_t i;

	if (v == NULL)
		return;
	for (i = 0; i < n; i++)
		free(v[i].name);
	free(v);
}

static int
str_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int
ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), k = strlen(suffix);

	return n > k && strcmp(s + n - k, suffix) == 0;
}

int
rotdir_bases(const char *dir, char ***basesp, size_t *np, struct error *e)
{
	char **v = NULL;
	size_t n = 0, cap = 0, i, o;
	struct dirent *de;
	DIR *d;

	*basesp = NULL;
	*np = 0;
	if ((d = opendir(dir)) == NULL)
		return error_errno(e, errno == ENOENT ? EXIT_NOINPUT : EXIT_IOERR,
		    "%s", dir);
	while ((errno = 0, de = readdir(d)) != NULL) {
		char name[NAME_MAX + 1], path[PATH_MAX];
		struct stat st;
		const char *dot;

		if (de->d_name[0] == '.')
			continue;
		snprintf(name, sizeof(name), "%s", de->d_name);
		if (ends_with(name, ".jsonl")) {
			snprintf(path, sizeof(path), "%s/%s", dir, name);
			if (lstat(path, &st) == -1 || !S_ISREG(st.st_mode))
				continue;
		} else {
			/* a copy whose file may be gone: X.jsonl.STAMP[.gz] */
			int64_t t;
			int gz;
			if ((dot = strstr(name, ".jsonl.")) == NULL)
				continue;
			name[dot - name + 6] = '\0';
			if (rotcopy_parse(name, de->d_name, &t, &gz) == -1)
				continue;
		}
		if (n == cap) {
			char **nv;
			cap = cap ? cap * 2 : 16;
			if ((nv = realloc(v, cap * sizeof(*v))) == NULL)
				goto oom;
			v = nv;
		}
		if ((v[n] = strdup(name)) == NULL)
			goto oom;
		n++;
	}
	if (errno != 0) {
		error_errno(e, EXIT_IOERR, "%s", dir);
		closedir(d);
		rotdir_free(v, n);
		return -1;
	}
	closedir(d);
	if (n > 1)
		qsort(v, n, sizeof(*v), str_cmp);
	for (i = 1, o = n ? 1 : 0; i < n; i++) {
		if (strcmp(v[i], v[o - 1]) == 0)
			free(v[i]);
		else
			v[o++] = v[i];
	}
	*basesp = v;
	*np = o;
	return 0;
oom:
	closedir(d);
	rotdir_free(v, n);
	return error_errno(e, EXIT_SOFTWARE, "%s", dir);
}

void
rotdir_free(char **bases, size_t n)
{
	size_t i;

	if (bases == NULL)
		return;
	for (i = 0; i < n; i++)
		free(bases[i]);
	free(bases);
}

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

int
copytrunc_timed(const char *path, enum lock_kind k, int64_t lock_timeout_ms,
    int64_t now, int dry_run, char *copy, size_t cn, uint64_t *bytes,
    struct error *e)
{
	char dir[PATH_MAX], tmp[PATH_MAX + 64], dst[PATH_MAX + 64];
	const char *base = path_basename(path);
	struct stat st;
	int64_t stamp;
	int fd, tfd = -1, rc, locked = 0;

	*bytes = 0;
	path_dirname(path, dir, sizeof(dir));
	if ((fd = open(path, (dry_run ? O_RDONLY : O_RDWR) | O_CLOEXEC |
	    O_NOCTTY)) == -1)
		return error_errno(e, errno == ENOENT ? EXIT_NOINPUT :
		    error_code_for_errno(errno), "%s", path);
	if (!dry_run) {
		if (lock_take(fd, k, 1, lock_timeout_ms) == -1) {
			if (errno == EWOULDBLOCK)
				error_set(e, EXIT_TEMPFAIL, "%s: the writers' lock "
				    "was not obtained within --lock-timeout %lldms; "
				    "not rotated", path, (long long)lock_timeout_ms);
			else
				error_errno(e, EXIT_IOERR, "%s: lock", path);
			goto fail;
		}
		locked = 1;
	}
	if (fstat(fd, &st) == -1) {
		error_errno(e, EXIT_IOERR, "%s", path);
		goto fail;
	}
	if (!S_ISREG(st.st_mode)) {
		error_set(e, EXIT_DATAERR, "%s: not a regular file", path);
		goto fail;
	}
	if (st.st_size == 0) {
		if (locked)
			lock_release(fd, k);
		close(fd);
		return 0;
	}
	if (next_stamp(dir, base, now, &stamp, e) == -1)
		goto fail;
	if (rotcopy_name(copy, cn, base, stamp, 0) == -1) {
		error_set(e, EXIT_CANTCREAT, "%s: name too long", path);
		goto fail;
	}
	*bytes = (uint64_t)st.st_size;
	if (dry_run) {
		close(fd);
		return 1;
	}
	snprintf(dst, sizeof(dst), "%s/%s", dir, copy);
	snprintf(tmp, sizeof(tmp), "%s/.%s.tmpXXXXXX", dir, copy);
	if ((tfd = mkostemp(tmp, O_CLOEXEC)) == -1) {
		error_errno(e, error_code_for_errno(errno), "%s", tmp);
		goto fail;
	}
	if (fchmod(tfd, st.st_mode & 0666) == -1 ||
	    copy_bytes(fd, tfd, (uint64_t)st.st_size) == -1) {
		error_errno(e, error_code_for_errno(errno), "%s: copy to %s",
		    path, copy);
		goto fail;
	}
	do
		rc = fsync(tfd);
	while (rc == -1 && errno == EINTR);
	if (rc == -1 || close(tfd) == -1) {
		tfd = -1;
		error_errno(e, EXIT_IOERR, "%s: fsync", tmp);
		unlink(tmp);
		goto fail;
	}
	tfd = -1;
	/* link, not rename: an existing copy is never replaced */
	if (link(tmp, dst) == -1) {
		error_errno(e, error_code_for_errno(errno), "%s", dst);
		unlink(tmp);
		goto fail;
	}
	unlink(tmp);
	if (fsync_dir(dir) == -1) {
		error_errno(e, EXIT_IOERR, "%s: fsync", dir);
		goto fail;
	}
	/* the copy is durable: now the lines may leave FILE */
	if (ftruncate(fd, 0) == -1) {
		error_errno(e, EXIT_IOERR, "%s: truncate", path);
		goto fail;
	}
	do
		rc = fsync(fd);
	while (rc == -1 && errno == EINTR);
	if (rc == -1) {
		error_errno(e, EXIT_IOERR, "%s: fsync", path);
		goto fail;
	}
	lock_release(fd, k);
	close(fd);
	return 1;
fail:
	if (tfd != -1) {
		close(tfd);
		unlink(tmp);
	}
	if (locked)
		lock_release(fd, k);
	close(fd);
	return -1;
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

int
rotrename_timed(const char *path, enum lock_kind k, int64_t lock_timeout_ms,
    int64_t now, int dry_run, char *copy, size_t cn, uint64_t *bytes,
    struct error *e)
{
	char dir[PATH_MAX], tmp[PATH_MAX + 64], dst[PATH_MAX + 64];
	const char *base = path_basename(path);
	struct stat st, ls;
	int64_t stamp;
	int fd, tfd = -1, rc, locked = 0, relink;

	*bytes = 0;
	tmp[0] = '\0';
	path_dirname(path, dir, sizeof(dir));
	if ((fd = open(path, (dry_run ? O_RDONLY : O_RDWR) | O_CLOEXEC |
	    O_NOCTTY)) == -1)
		return error_errno(e, errno == ENOENT ? EXIT_NOINPUT :
		    error_code_for_errno(errno), "%s", path);
	if (!dry_run) {
		if (lock_take(fd, k, 1, lock_timeout_ms) == -1) {
			if (errno == EWOULDBLOCK)
				error_set(e, EXIT_TEMPFAIL, "%s: the writers' lock "
				    "was not obtained within --lock-timeout %lldms; "
				    "not rotated", path, (long long)lock_timeout_ms);
			else
				error_errno(e, EXIT_IOERR, "%s: lock", path);
			goto fail;
		}
		locked = 1;
	}
	if (fstat(fd, &st) == -1) {
		error_errno(e, EXIT_IOERR, "%s", path);
		goto fail;
	}
	if (!S_ISREG(st.st_mode)) {
		error_set(e, EXIT_DATAERR, "%s: not a regular file", path);
		goto fail;
	}
	/* the file locked must be the one at the path */
	if (lstat(path, &ls) == -1 || ls.st_dev != st.st_dev ||
	    ls.st_ino != st.st_ino) {
		error_set(e, EXIT_TEMPFAIL, "%s: replaced while being rotated; "
		    "not rotated", path);
		goto fail;
	}
	if ((relink = linked_copy(dir, base, &st, copy, cn, e)) == -1)
		goto fail;
	if (st.st_size == 0 && !relink) {
		if (locked)
			lock_release(fd, k);
		close(fd);
		return 0;
	}
	if (!relink) {
		if (next_stamp(dir, base, now, &stamp, e) == -1)
			goto fail;
		if (rotcopy_name(copy, cn, base, stamp, 0) == -1) {
			error_set(e, EXIT_CANTCREAT, "%s: name too long", path);
			goto fail;
		}
	}
	*bytes = (uint64_t)st.st_size;
	if (dry_run) {
		close(fd);
		return 1;
	}
	snprintf(dst, sizeof(dst), "%s/%s", dir, copy);
	snprintf(tmp, sizeof(tmp), "%s/.%s.tmpXXXXXX", dir, copy);
	if ((tfd = mkostemp(tmp, O_CLOEXEC)) == -1) {
		error_errno(e, error_code_for_errno(errno), "%s", tmp);
		tmp[0] = '\0';
		goto fail;
	}
	/* the new file must be one the writers may open as they did the old */
	if ((fchown(tfd, st.st_uid, st.st_gid) == -1 &&
	    (st.st_uid != geteuid() || st.st_gid != getegid())) ||
	    fchmod(tfd, st.st_mode & 07777) == -1) {
		error_errno(e, error_code_for_errno(errno), "%s: cannot give "
		    "the new file the owner %lu:%lu and mode %04o of the old; "
		    "not rotated", path, (unsigned long)st.st_uid,
		    (unsigned long)st.st_gid, (unsigned)(st.st_mode & 07777));
		goto fail;
	}
	do
		rc = fsync(tfd);
	while (rc == -1 && errno == EINTR);
	if (rc == -1 || close(tfd) == -1) {
		tfd = -1;
		error_errno(e, EXIT_IOERR, "%s: fsync", tmp);
		goto fail;
	}
	tfd = -1;
	/* link, not rename: FILE is never missing, and an existing copy is
	 * never replaced */
	if (!relink && link(path, dst) == -1) {
		error_errno(e, error_code_for_errno(errno), "%s", dst);
		goto fail;
	}
	if (rename(tmp, path) == -1) {
		error_errno(e, EXIT_IOERR, "%s: rename over %s", tmp, path);
		goto fail;
	}
	tmp[0] = '\0';
	if (fsync_dir(dir) == -1) {
		error_errno(e, EXIT_IOERR, "%s: fsync", dir);
		goto fail;
	}
	lock_release(fd, k);
	close(fd);
	return 1;
fail:
	if (tfd != -1)
		close(tfd);
	if (tmp[0] != '\0')
		unlink(tmp);
	if (locked)
		lock_release(fd, k);
	close(fd);
	return -1;
}
