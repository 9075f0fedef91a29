/*
 * The dedup part of the read model (lib/state/stateview.h): every state (-s
 * NAME: dedup/NAME) and index (-a STREAM: dedup/_stream.NAME, or
 * dedup/_path.HEX for a stream given by path) under dedup/, described
 * by the dedup state module's keystore_stat, the one function that knows
 * their format.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "base/exitcode.h"
#include "dedup/keystore.h"
#include "stateview.h"

static int
dedup_cmp(const void *a, const void *b)
{
	return strcmp(((const struct sv_dedup *)a)->name,
	    ((const struct sv_dedup *)b)->name);
}

static void
dedup_read(struct sv_dedup *d, const char *dir, const char *name)
{
	char path[PATH_MAX + NAME_MAX + 2];
	struct keystore_stat ks;

	memset(d, 0, sizeof(*d));
	snprintf(d->name, sizeof(d->name), "%s", name);
	d->index = name[0] == '_';
	snprintf(d->label, sizeof(d->label), "%s",
	    strncmp(name, "_stream.", 8) == 0 ? name + 8 : name);
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	if (keystore_stat(path, &ks, &d->err) != 0)
		return;
	d->disk_bytes = ks.bytes;
	d->keys = ks.keys;
	d->have_counters = ks.have_counters;
	d->seen = ks.seen;
	d->unique = ks.unique;
	d->duplicates = ks.duplicates;
	d->near = ks.near;
	d->ok = 1;
}

int
stateview_dedup(struct stateview *v, struct error *e)
{
	char dir[PATH_MAX], path[PATH_MAX + NAME_MAX + 2];
	struct dirent *de;
	struct sv_dedup *nv;
	struct stat st;
	size_t first = v->ndedup;
	DIR *d;

	if (statedir_sub(dir, sizeof(dir), "dedup", e) == -1)
		return -1;
	if ((d = opendir(dir)) == NULL)
		return error_errno(e, EXIT_IOERR, "%s", dir);
	while ((errno = 0, de = readdir(d)) != NULL) {
		/* dot files are journals, locks and temporary files */
		if (de->d_name[0] == '.' || strlen(de->d_name) > NAME_MAX_LEN + 8)
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		if (stat(path, &st) == -1 || !S_ISREG(st.st_mode))
			continue;
		if ((nv = realloc(v->dedup, (v->ndedup + 1) *
		    sizeof(*nv))) == NULL) {
			closedir(d);
			return error_errno(e, EXIT_SOFTWARE, "%s", dir);
		}
		v->dedup = nv;
		dedup_read(&v->dedup[v->ndedup++], dir, de->d_name);
	}
	closedir(d);
	if (v->ndedup - first > 1)
		qsort(v->dedup + first, v->ndedup - first, sizeof(*v->dedup),
		    dedup_cmp);
	return 0;
}
