#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "base/exitcode.h"
#include "base/fsutil.h"
#include "gzfile.h"

#define GZ_CHUNK	(256 * 1024)
#define GZ_REPORT	(4 * 1024 * 1024)	/* progress granularity */

/* Feed n bytes (flush Z_FINISH at the end) through z, writing to fd. */
static int
deflate_chunk(z_stream *z, const unsigned char *in, size_t n, int flush,
    unsigned char *out, int fd, uint64_t *written, const char *tmp,
    struct error *e)
{
	size_t have;
	int zrc;

	z->next_in = (unsigned char *)in;
	z->avail_in = (uInt)n;
	do {
		z->next_out = out;
		z->avail_out = GZ_CHUNK;
		zrc = deflate(z, flush);
		if (zrc == Z_STREAM_ERROR)
			return error_set(e, EXIT_SOFTWARE, "%s: deflate failed",
			    tmp);
		have = GZ_CHUNK - z->avail_out;
		if (have > 0 && write_all(fd, out, have) == -1)
			return error_errno(e, error_code_for_errno(errno),
			    "%s: write", tmp);
		*written += have;
	} while (z->avail_out == 0);
	if (flush == Z_FINISH && zrc != Z_STREAM_END)
		return error_set(e, EXIT_SOFTWARE, "%s: deflate did not finish",
		    tmp);
	return 0;
}

/* A compression under way: the source, the temporary file beside dst. */
struct gzjob {
	const char *src, *dst;
	char dir[PATH_MAX], tmp[PATH_MAX + 32];
	int sfd, tfd;
	struct stat st;
	uint64_t done, written;
};

/* Create the temporary file of j beside dst. */
static int
job_temp(struct gzjob *j, struct error *e)
{
	path_dirname(j->dst, j->dir, sizeof(j->dir));
	if (snprintf(j->tmp, sizeof(j->tmp), "%s/.%s.tmpXXXXXX", j->dir,
	    path_basename(j->dst)) >= (int)sizeof(j->tmp))
		return error_set(e, EXIT_CANTCREAT, "%s: path too long", j->dst);
	if ((j->tfd = mkostemp(j->tmp, O_CLOEXEC)) == -1)
		return error_errno(e, error_code_for_errno(errno),
		    "%s: create temporary file", j->dst);
	return 0;
}

/* Deflate the whole source into the temporary file, as gzip(1) writes. */
static int
job_deflate(struct gzjob *j, int level, gzfile_progress_fn progress,
    void *arg, struct error *e)
{
	unsigned char *in, *out;
	uint64_t reported = 0;
	ssize_t got;
	z_stream z;
	int rc = -1;

	in = malloc(GZ_CHUNK);
	out = malloc(GZ_CHUNK);
	memset(&z, 0, sizeof(z));
	/* windowBits 15 + 16: a gzip wrapper */
	if (in == NULL || out == NULL) {
		error_errno(e, EXIT_SOFTWARE, "%s", j->src);
		goto out;
	}
	if (deflateInit2(&z, level, Z_DEFLATED, 15 + 16, 8,
	    Z_DEFAULT_STRATEGY) != Z_OK) {
		error_set(e, EXIT_SOFTWARE, "%s: deflateInit failed", j->src);
		goto out;
	}
	do {
		if ((got = read_full(j->sfd, in, GZ_CHUNK)) < 0) {
			error_errno(e, EXIT_IOERR, "%s: read", j->src);
			goto end;
		}
		if (deflate_chunk(&z, in, (size_t)got, got == 0 ? Z_FINISH :
		    Z_NO_FLUSH, out, j->tfd, &j->written, j->tmp, e) == -1)
			goto end;
		j->done += (uint64_t)got;
		if (progress != NULL && j->done - reported >= GZ_REPORT) {
			progress(arg, j->done, (uint64_t)j->st.st_size);
			reported = j->done;
		}
	} while (got > 0);
	rc = 0;
	if (j->done != (uint64_t)j->st.st_size)
		rc = error_set(e, EXIT_IOERR, "%s: changed while being "
		    "compressed", j->src);
end:
	deflateEnd(&z);
out:
	free(in);
	free(out);
	return rc;
}

/* Give the temporary file the original's age and mode; fsync and close it. */
static int
job_seal(struct gzjob *j, struct error *e)
{
	struct timespec times[2];
	int rc, fd = j->tfd;

	times[0] = j->st.st_atim;
	times[1] = j->st.st_mtim;
	if (fchmod(fd, j->st.st_mode & 07777) == -1 ||
	    futimens(fd, times) == -1)
		return error_errno(e, EXIT_IOERR, "%s", j->tmp);
	rc = fsync_fd(fd);
	if (rc == -1)
		return error_errno(e, EXIT_IOERR, "%s: fsync", j->tmp);
	j->tfd = -1;
	if (close(fd) == -1)
		return error_errno(e, EXIT_IOERR, "%s: close", j->tmp);
	return 0;
}

/* The gzip form durable under its name, then the original removed. */
static int
job_publish(struct gzjob *j, struct error *e)
{
	if (rename(j->tmp, j->dst) == -1) {
		error_errno(e, error_code_for_errno(errno), "%s: rename", j->dst);
		unlink(j->tmp);
		return -1;
	}
	if (fsync_dir(j->dir) == -1)
		return error_errno(e, EXIT_IOERR, "%s: fsync", j->dir);
	if (unlink(j->src) == -1 && errno != ENOENT)
		return error_errno(e, EXIT_IOERR, "%s: unlink", j->src);
	if (fsync_dir(j->dir) == -1)
		return error_errno(e, EXIT_IOERR, "%s: fsync", j->dir);
	return 0;
}

int
gzfile_compress(const char *src, const char *dst, int level,
    gzfile_progress_fn progress, void *arg, struct gzfile_result *res,
    struct error *e)
{
	struct gzjob j;
	int rc = -1;

	memset(&j, 0, sizeof(j));
	j.src = src;
	j.dst = dst;
	j.tfd = -1;
	if (res != NULL)
		res->in_bytes = res->out_bytes = 0;
	if ((j.sfd = open(src, O_RDONLY | O_CLOEXEC)) == -1)
		return error_errno(e, errno == ENOENT ? EXIT_NOINPUT : EXIT_IOERR,
		    "%s", src);
	if (fstat(j.sfd, &j.st) == -1) {
		error_errno(e, EXIT_IOERR, "%s", src);
		goto out;
	}
	(void)posix_fadvise(j.sfd, 0, 0, POSIX_FADV_SEQUENTIAL);
	if (job_temp(&j, e) == -1)
		goto out;
	if (job_deflate(&j, level, progress, arg, e) == -1 ||
	    job_seal(&j, e) == -1) {
		if (j.tfd != -1)
			close(j.tfd);
		unlink(j.tmp);
		goto out;
	}
	if ((rc = job_publish(&j, e)) == 0) {
		if (progress != NULL)
			progress(arg, j.done, (uint64_t)j.st.st_size);
		if (res != NULL) {
			res->in_bytes = j.done;
			res->out_bytes = j.written;
		}
	}
out:
	close(j.sfd);
	return rc;
}

/* Read the ISIZE field (input size modulo 2^32) of a gzip file's trailer. */
static int
gz_trailer_isize(const char *path, uint32_t *isize, struct error *e)
{
	unsigned char t[4];
	struct stat st;
	int fd;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
		return error_errno(e, EXIT_IOERR, "%s", path);
	if (fstat(fd, &st) == -1) {
		close(fd);
		return error_errno(e, EXIT_IOERR, "%s", path);
	}
	if (st.st_size < 18 || pread_full(fd, t, 4, st.st_size - 4) != 4) {
		close(fd);
		*isize = UINT32_MAX;
		return 1;	/* too short to be a gzip file */
	}
	close(fd);
	*isize = (uint32_t)t[0] | (uint32_t)t[1] << 8 | (uint32_t)t[2] << 16 |
	    (uint32_t)t[3] << 24;
	return 0;
}

int
gzfile_finish(const char *src, const char *dst, struct error *e)
{
	char dir[PATH_MAX];
	struct stat ss, ds;
	uint32_t isize;
	int rc;

	if (stat(src, &ss) == -1)
		return errno == ENOENT ? 0 : error_errno(e, EXIT_IOERR, "%s", src);
	if (stat(dst, &ds) == -1)
		return errno == ENOENT ? 0 : error_errno(e, EXIT_IOERR, "%s", dst);
	if ((rc = gz_trailer_isize(dst, &isize, e)) == -1)
		return -1;
	path_dirname(dst, dir, sizeof(dir));
	if (rc == 1 || isize != (uint32_t)ss.st_size) {
		if (unlink(dst) == -1)
			return error_errno(e, EXIT_IOERR, "%s: unlink", dst);
		rc = 2;
	} else {
		if (unlink(src) == -1)
			return error_errno(e, EXIT_IOERR, "%s: unlink", src);
		rc = 1;
	}
	if (fsync_dir(dir) == -1)
		return error_errno(e, EXIT_IOERR, "%s: fsync", dir);
	return rc;
}

int
gzfile_is_temp(const char *name, const char *dstname)
{
	size_t n = strlen(name), d;

	if (n < 1 + 3 + 4 + 6 || name[0] != '.' ||
	    memcmp(name + n - 10, ".tmp", 4) != 0)
		return 0;
	if (dstname == NULL)
		return n - 10 >= 4 && memcmp(name + n - 13, ".gz", 3) == 0;
	d = strlen(dstname);
	return n == 1 + d + 10 && memcmp(name + 1, dstname, d) == 0;
}
