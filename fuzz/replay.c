/*
 * Replay a fuzz target's corpus without libFuzzer: every FILE operand, and
 * every regular file in each DIR operand (in name order), is passed once
 * to the target's LLVMFuzzerTestOneInput in a buffer of exactly its size,
 * so that a sanitizer build catches a read past the end.  A broken
 * property aborts.  "make check" runs this over fuzz/corpus/NAME.
 *
 * usage: replay-NAME [-v] FILE|DIR...
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "base/fsutil.h"
#include "fuzz.h"

/* libFuzzer calls it when a target defines it; the replay does the same. */
__attribute__((weak)) int LLVMFuzzerInitialize(int *argc, char ***argv);

static int verbose;

static int
replay_file(const char *path)
{
	char *data, *copy;
	size_t len;

	if (read_file(path, 64 * 1024 * 1024, &data, &len) == -1) {
		fprintf(stderr, "%s: %s: %s\n", progname, path, strerror(errno));
		return -1;
	}
	/* exactly len bytes: no NUL after the input to lean on */
	if ((copy = malloc(len == 0 ? 1 : len)) == NULL) {
		free(data);
		return -1;
	}
	memcpy(copy, data, len);
	free(data);
	if (verbose)
		fprintf(stderr, "%s: %s (%zu bytes)\n", progname, path, len);
	LLVMFuzzerTestOneInput((const uint8_t *)copy, len);
	free(copy);
	return 0;
}

static int
cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int
replay_dir(const char *dir, unsigned long *count)
{
	struct dirent *de;
	char **names = NULL, path[4096];
	size_t n = 0, i;
	int rc = 0;
	DIR *d;

	if ((d = opendir(dir)) == NULL) {
		fprintf(stderr, "%s: %s: %s\n", progname, dir, strerror(errno));
		return -1;
	}
	while ((de = readdir(d)) != NULL) {
		char **nn;

		if (de->d_name[0] == '.')
			continue;
		if ((nn = realloc(names, (n + 1) * sizeof(*nn))) == NULL ||
		    (nn[n] = strdup(de->d_name)) == NULL) {
			rc = -1;
			if (nn != NULL)
				names = nn;
			break;
		}
		names = nn;
		n++;
	}
	closedir(d);
	if (n > 0)
		qsort(names, n, sizeof(*names), cmp_names);
	for (i = 0; i < n && rc == 0; i++) {
		struct stat st;

		snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
		if (stat(path, &st) == 0 && S_ISREG(st.st_mode)) {
			rc = replay_file(path);
			(*count)++;
		}
	}
	for (i = 0; i < n; i++)
		free(names[i]);
	free(names);
	return rc;
}

int
main(int argc, char *argv[])
{
	unsigned long count = 0;
	int i, rc = 0;

	if ((progname = strrchr(argv[0], '/')) != NULL)
		progname++;
	else
		progname = argv[0];
	if (argc > 1 && strcmp(argv[1], "-v") == 0) {
		verbose = 1;
		argv++;
		argc--;
	}
	if (argc < 2) {
		fprintf(stderr, "usage: %s [-v] FILE|DIR...\n", progname);
		return 64;
	}
	if (LLVMFuzzerInitialize != NULL)
		LLVMFuzzerInitialize(&argc, &argv);
	for (i = 1; i < argc && rc == 0; i++) {
		struct stat st;

		if (stat(argv[i], &st) == 0 && S_ISDIR(st.st_mode))
			rc = replay_dir(argv[i], &count);
		else {
			rc = replay_file(argv[i]);
			count++;
		}
	}
	if (rc == 0)
		printf("%s: %lu inputs replayed\n", progname, count);
	return rc == 0 ? 0 : 66;
}
