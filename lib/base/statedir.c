#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "exitcode.h"
#include "fsutil.h"
#include "statedir.h"

static int
nonempty(const char *s)
{
	return s != NULL && s[0] != '\0';
}

int
statedir_get(char *buf, size_t n, struct error *e)
{
	const char *v;
	int len;

	if (nonempty(v = getenv("AISTACK_STATE_DIR")))
		len = snprintf(buf, n, "%s", v);
	else if (nonempty(v = getenv("STATE_DIRECTORY")))
		len = snprintf(buf, n, "%.*s", (int)strcspn(v, ":"), v);
	else if (nonempty(v = getenv("XDG_STATE_HOME")))
		len = snprintf(buf, n, "%s/aistack", v);
	else if (nonempty(v = getenv("HOME")))
		len = snprintf(buf, n, "%s/.local/state/aistack", v);
	else
		return error_set(e, EXIT_CONFIG, "state directory: "
		    "set AISTACK_STATE_DIR or HOME");
	if (len < 0 || (size_t)len >= n)
		return error_set(e, EXIT_CONFIG, "state directory: path too long");
	if (mkdir_p(buf, 0700) == -1)
		return error_errno(e, error_code_for_errno(errno), "%s", buf);
	return 0;
}

int
statedir_sub(char *buf, size_t n, const char *sub, struct error *e)
{
	char top[PATH_MAX];
	int len;

	if (statedir_get(top, sizeof(top), e) == -1)
		return -1;
	len = snprintf(buf, n, "%s/%s", top, sub);
	if (len < 0 || (size_t)len >= n)
		return error_set(e, EXIT_CONFIG, "%s/%s: path too long", top, sub);
	if (mkdir_p(buf, 0700) == -1)
		return error_errno(e, error_code_for_errno(errno), "%s", buf);
	return 0;
}

int
name_valid(const char *s)
{
	size_t i;

	if (!((s[0] >= 'a' && s[0] <= 'z') || (s[0] >= '0' && s[0] <= '9')))
		return 0;
	for (i = 1; s[i] != '\0'; i++) {
		char c = s[i];
		if (i >= NAME_MAX_LEN)
			return 0;
		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		    c == '.' || c == '_' || c == '-'))
			return 0;
	}
	return 1;
}

int
statedir_resolve(const char *arg, const char *sub, char *buf, size_t n,
    struct error *e)
{
	char dir[PATH_MAX];
	int len;

	if (strchr(arg, '/') != NULL) {
		len = snprintf(buf, n, "%s", arg);
		if (len < 0 || (size_t)len >= n)
			return error_set(e, EXIT_USAGE, "%s: path too long", arg);
		/* "dir/" names dir itself */
		while (len > 1 && buf[len - 1] == '/')
			buf[--len] = '\0';
		return 0;
	}
	if (!name_valid(arg))
		return error_set(e, EXIT_USAGE, "%s: invalid name "
		    "(expected [a-z0-9][a-z0-9._-]{0,63}, or a path with '/')",
		    arg);
	if (statedir_sub(dir, sizeof(dir), sub, e) == -1)
		return -1;
	len = snprintf(buf, n, "%s/%s", dir, arg);
	if (len < 0 || (size_t)len >= n)
		return error_set(e, EXIT_USAGE, "%s: path too long", arg);
	return 0;
}

static int
names_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int
names_list(const char *dir, enum names_kind kind, char ***names, size_t *n,
    struct error *e)
{
	struct dirent *de;
	struct stat st;
	char **v = NULL, **nv;
	size_t count = 0, cap = 0;
	DIR *d;

	*names = NULL;
	*n = 0;
	if ((d = opendir(dir)) == NULL)
		return errno == ENOENT ? 0 : error_errno(e, EXIT_IOERR, "%s", dir);
	while ((errno = 0, de = readdir(d)) != NULL) {
		if (!name_valid(de->d_name) ||
		    fstatat(dirfd(d), de->d_name, &st, 0) == -1 ||
		    (kind == NAMES_DIRS ? !S_ISDIR(st.st_mode) :
		    !S_ISREG(st.st_mode)))
			continue;
		if (count == cap) {
			cap = cap ? cap * 2 : 16;
			if ((nv = realloc(v, cap * sizeof(*v))) == NULL)
				goto nomem;
			v = nv;
		}
		if ((v[count] = strdup(de->d_name)) == NULL)
			goto nomem;
		count++;
	}
	if (errno != 0) {
		error_errno(e, EXIT_IOERR, "%s", dir);
		goto fail;
	}
	closedir(d);
	if (count > 1)
		qsort(v, count, sizeof(*v), names_cmp);
	*names = v;
	*n = count;
	return 0;
nomem:
	error_errno(e, EXIT_SOFTWARE, "%s", dir);
fail:
	closedir(d);
	names_free(v, count);
	return -1;
}

void
names_free(char **names, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		free(names[i]);
	free(names);
}
