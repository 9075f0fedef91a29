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
		size_t have = GZ_CHUNK - z->avail_out;
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

int
gzfile_compress(const char *src, const char *dst, int level,
    gzfile_progress_fn progress, void *arg, struct gzfile_result *res,
    struct error *e)
{
	char dir[PATH_MAX], tmp[PATH_MAX + 32];
	unsigned char *in = NULL, *out = NULL;
	uint64_t done = 0, written = 0, reported = 0;
	struct timespec times[2];
	struct stat st;
	z_stream z;
	int sfd, tfd = -1, zinit = 0, rc;

	if (res != NULL)
		res->in_bytes = res->out_bytes = 0;
	if ((sfd = open(src, O_RDONLY | O_CLOEXEC)) == -1)
		return error_errno(e, errno == ENOENT ? EXIT_NOINPUT : EXIT_IOERR,
		    "%s", src);
	if (fstat(sfd, &st) == -1) {
		error_errno(e, EXIT_IOERR, "%s", src);
		goto fail;
	}
	(void)posix_fadvise(sfd, 0, 0, POSIX_FADV_SEQUENTIAL);
	path_dirname(dst, dir, sizeof(dir));
	if (snprintf(tmp, sizeof(tmp), "%s/.%s.tmpXXXXXX", dir,
	    path_basename(dst)) >= (int)sizeof(tmp)) {
		error_set(e, EXIT_CANTCREAT, "%s: path too long", dst);
		goto fail;
	}
	if ((tfd = mkostemp(tmp, O_CLOEXEC)) == -1) {
		error_errno(e, error_code_for_errno(errno),
		    "%s: create temporary file", dst);
		goto fail;
	}
	if ((in = malloc(GZ_CHUNK)) == NULL ||
	    (out = malloc(GZ_CHUNK)) == NULL) {
		error_errno(e, EXIT_SOFTWARE, "%s", src);
		goto fail;
	}
	memset(&z, 0, sizeof(z));
	/* windowBits 15 + 16: a gzip wrapper, as gzip(1) writes */
	if (deflateInit2(&z, level, Z_DEFLATED, 15 + 16, 8,
	    Z_DEFAULT_STRATEGY) != Z_OK) {
		error_set(e, EXIT_SOFTWARE, "%s: deflateInit failed", src);
		goto fail;
	}
	zinit = 1;
	for (;;) {
		ssize_t got = read_full(sfd, in, GZ_CHUNK);
		if (got < 0) {
			error_errno(e, EXIT_IOERR, "%s: read", src);
			goto fail;
		}
		if (deflate_chunk(&z, in, (size_t)got, got == 0 ? Z_FINISH :
		    Z_NO_FLUSH, out, tfd, &written, tmp, e) == -1)
			goto fail;
		if (got == 0)
			break;
		done += (uint64_t)got;
		if (progress != NULL && done - reported >= GZ_REPORT) {
			progress(arg, done, (uint64_t)st.st_size);
			reported = done;
		}
	}
	if (done != (uint64_t)st.st_size) {
		error_set(e, EXIT_IOERR, "%s: changed while being compressed",
		    src);
		goto fail;
	}
	deflateEnd(&z);
	zinit = 0;
	/* the gzip form keeps the age and the permissions of the original */
	times[0] = st.st_atim;
	times[1] = st.st_mtim;
	if (fchmod(tfd, st.st_mode & 07777) == -1 ||
	    futimens(tfd, times) == -1) {
		error_errno(e, EXIT_IOERR, "%s", tmp);
		goto fail;
	}
	do
		rc = fsync(tfd);
	while (rc == -1 && errno == EINTR);
	if (rc == -1) {
		error_errno(e, EXIT_IOERR, "%s: fsync", tmp);
		goto fail;
	}
	if (close(tfd) == -1) {
		tfd = -1;
		error_errno(e, EXIT_IOERR, "%s: close", tmp);
		goto fail;
	}
	tfd = -1;
	if (rename(tmp, dst) == -1) {
		error_errno(e, error_code_for_errno(errno), "%s: rename", dst);
		goto fail;
	}
	free(in);
	free(out);
	close(sfd);
	if (fsync_dir(dir) == -1)
		return error_errno(e, EXIT_IOERR, "%s: fsync", dir);
	if (progress != NULL)
		progress(arg, done, (uint64_t)st.st_size);
	/* the gzip form is durable under its name: the original may go */
	if (unlink(src) == -1 && errno != ENOENT)
		return error_errno(e, EXIT_IOERR, "%s: unlink", src);
	if (fsync_dir(dir) == -1)
		return error_errno(e, EXIT_IOERR, "%s: fsync", dir);
	if (res != NULL) {
		res->in_bytes = done;
		res->out_bytes = written;
	}
	return 0;
fail:
	if (zinit)
		deflateEnd(&z);
	if (tfd != -1) {
		close(tfd);
		unlink(tmp);
	}
	free(in);
	free(out);
	close(sfd);
	return -1;
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
