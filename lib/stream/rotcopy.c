#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "base/exitcode.h"
#include "rotcopy.h"

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

