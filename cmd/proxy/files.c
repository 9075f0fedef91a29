/*
 * The files of the directories the proxy reads: the dashboard's and the
 * state directory's streams/ and metrics/.
 */
#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

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
		if (fstatat(dirfd(d), de->d_name, &st, 0) == -1)
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
