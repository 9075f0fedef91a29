/*
 * The files of the directories the proxy reads: the dashboard's (when
 * --dashboard names one) and the state directory's streams/ and
 * metrics/.  A file is read only as a regular file directly beneath its
 * directory, opened relative to the directory's descriptor and never
 * through a symbolic link (openat2 with RESOLVE_BENEATH and
 * RESOLVE_NO_SYMLINKS where the kernel has it, O_NOFOLLOW otherwise), so
 * that a link planted there cannot serve a file from elsewhere.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "base/fsutil.h"

#include "proxy.h"

static int
names_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

void
files_sort(char **names, size_t n)
{
	if (n > 0)
		qsort(names, n, sizeof(*names), names_cmp);
}

size_t
files_list(const char *dir, int dirs, const char *suffix, char ***out)
{
	struct dirent *de;
	size_t n = 0, cap = 0, sl = suffix != NULL ? strlen(suffix) : 0;
	char **v = NULL, **nv;
	DIR *d;

	*out = NULL;
	if ((d = opendir(dir)) == NULL)
		return 0;
	while ((de = readdir(d)) != NULL) {
		struct stat st;
		size_t l = strlen(de->d_name);
		if (de->d_name[0] == '.')
			continue;
		/* files: a link is not listed (files_read would refuse it) */
		if (fstatat(dirfd(d), de->d_name, &st, dirs ? 0 :
		    AT_SYMLINK_NOFOLLOW) == -1)
			continue;
		if (dirs ? !S_ISDIR(st.st_mode) || !name_valid(de->d_name) :
		    !S_ISREG(st.st_mode) || l <= sl ||
		    strcmp(de->d_name + l - sl, suffix) != 0)
			continue;
		if (n == cap) {
			cap = cap ? cap * 2 : 16;
			if ((nv = realloc(v, cap * sizeof(*v))) == NULL)
				break;
			v = nv;
		}
		if ((v[n] = strdup(de->d_name)) == NULL)
			break;
		n++;
	}
	closedir(d);
	files_sort(v, n);
	*out = v;
	return n;
}

int
files_open_beneath(int dirfd, const char *name)
{
	struct open_how how;
	struct stat st;
	int fd, err;

	if (name[0] == '\0' || strchr(name, '/') != NULL ||
	    strcmp(name, ".") == 0 || strcmp(name, "..") == 0) {
		errno = EINVAL;
		return -1;
	}
	memset(&how, 0, sizeof(how));
	how.flags = O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY;
	how.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS |
	    RESOLVE_NO_MAGICLINKS;
	fd = (int)syscall(SYS_openat2, dirfd, name, &how, sizeof(how));
	if (fd == -1 && (errno == ENOSYS || errno == EPERM))
		/* no openat2 (or a seccomp filter refuses it): one
		 * component, not followed when it is a link */
		fd = openat(dirfd, name, (int)how.flags);
	if (fd == -1)
		return -1;
	if (fstat(fd, &st) == -1)
		err = errno;
	else if (!S_ISREG(st.st_mode))
		err = EINVAL;
	else
		return fd;
	close(fd);
	errno = err;
	return -1;
}

int
files_read(const char *dir, const char *name, size_t max, char **data,
    size_t *len, struct stat *st)
{
	int dfd, fd, rc, err;

	*data = NULL;
	*len = 0;
	if ((dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) == -1)
		return -1;
	fd = files_open_beneath(dfd, name);
	err = errno;
	close(dfd);
	if (fd == -1) {
		errno = err;
		return -1;
	}
	rc = st != NULL && fstat(fd, st) == -1 ? -1 :
	    read_fd(fd, max, data, len);
	err = errno;
	close(fd);
	errno = err;
	return rc;
}
