#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "base/clock.h"
#include "base/exitcode.h"
#include "base/fsutil.h"
#include "stateview.h"

#define SOURCE_FILE_MAX	65536

void
stateview_init(struct stateview *v)
{
	memset(v, 0, sizeof(*v));
	v->time = (int64_t)time(NULL);
}

/* "2026-11-27T07:18:37Z" as Unix time; 0 when it is not that. */
static int64_t
rfc3339_time(const char *s)
{
	int64_t t;

	return clock_rfc3339_parse(s, &t) == -1 ? 0 : t;
}

/* --- streams ---------------------------------------------------------------- */

/* Sizes of the segments on disk, by form. */
static int
disk_usage(struct sv_stream *s, struct error *e)
{
	struct segment_list l;
	char name[64];
	struct stat st;
	size_t i;
	int dfd;

	if (segments_list(s->dir, &l, e) == -1)
		return -1;
	if ((dfd = open(s->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) == -1) {
		segments_free(&l);
		return error_errno(e, EXIT_IOERR, "%s", s->dir);
	}
	for (i = 0; i < l.n; i++) {
		segment_name(name, sizeof(name), l.v[i].base, l.v[i].gz);
		if (fstatat(dfd, name, &st, 0) == -1)
			continue;	/* compressed or expired meanwhile */
		if (l.v[i].gz) {
			s->disk_gz += (uint64_t)st.st_size;
			s->segments_gz++;
		} else {
			s->disk_plain += (uint64_t)st.st_size;
			s->segments_plain++;
		}
	}
	close(dfd);
	segments_free(&l);
	return 0;
}

static int
get_u64(json_t *o, const char *key, uint64_t *v)
{
	json_t *j = json_object_get(o, key);

	if (!json_is_integer(j) || json_integer_value(j) < 0)
		return -1;
	*v = (uint64_t)json_integer_value(j);
	return 0;
}

/*
 * The one reader of a --follow position file (lib/stream/follow.h writes it):
 * the followed path, its committed offset, and the cumulative counters
 * "lines_total" and "lost_bytes_total" when the file keeps them.
 */
static int
source_read(const char *path, struct sv_source *src, struct error *e)
{
	json_error_t je;
	json_t *root, *p;
	char *text;
	size_t n;

	if (read_file(path, SOURCE_FILE_MAX, &text, &n) == -1)
		return error_errno(e, errno == EFBIG ? EXIT_DATAERR : EXIT_IOERR,
		    "%s", path);
	root = json_loadb(text, n, 0, &je);
	free(text);
	if (root == NULL || !json_is_object(root)) {
		json_decref(root);
		return error_set(e, EXIT_DATAERR, "%s: not a follow position",
		    path);
	}
	if (json_is_string(p = json_object_get(root, "path")))
		snprintf(src->path, sizeof(src->path), "%s",
		    json_string_value(p));
	(void)get_u64(root, "offset", &src->offset);
	src->have_counters = get_u64(root, "lines_total", &src->lines) == 0 &&
	    get_u64(root, "lost_bytes_total", &src->lost_bytes) == 0;
	json_decref(root);
	return 0;
}

static int
source_cmp(const void *a, const void *b)
{
	return strcmp(((const struct sv_source *)a)->key,
	    ((const struct sv_source *)b)->key);
}

/* The position files under sources/ (none is no directory). */
static int
sources_read(struct sv_stream *s, struct error *e)
{
	char dir[PATH_MAX + 16], path[PATH_MAX + NAME_MAX + 32];
	struct dirent *de;
	struct sv_source *nv;
	size_t cap = 0;
	DIR *d;
	int rc = 0;

	snprintf(dir, sizeof(dir), "%s/sources", s->dir);
	if ((d = opendir(dir)) == NULL)
		return errno == ENOENT ? 0 : error_errno(e, EXIT_IOERR, "%s",
		    dir);
	while ((de = readdir(d)) != NULL) {
		struct sv_source src;
		struct stat st;
		if (de->d_name[0] == '.')	/* temporary files */
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		if (stat(path, &st) == -1 || !S_ISREG(st.st_mode))
			continue;
		memset(&src, 0, sizeof(src));
		snprintf(src.key, sizeof(src.key), "%s", de->d_name);
		if (source_read(path, &src, e) == -1) {
			rc = -1;
			break;
		}
		if (s->nsources == cap) {
			cap = cap ? cap * 2 : 4;
			if ((nv = realloc(s->sources, cap * sizeof(*nv))) == NULL) {
				rc = error_errno(e, EXIT_SOFTWARE, "%s", dir);
				break;
			}
			s->sources = nv;
		}
		s->sources[s->nsources++] = src;
	}
	closedir(d);
	if (s->nsources > 1)
		qsort(s->sources, s->nsources, sizeof(*s->sources), source_cmp);
	return rc;
}

/* The consumers, read before the head so that no lag is negative. */
static int
consumers_read(struct sv_stream *s, struct error *e)
{
	char **names;
	size_t n, i;
	int rc = 0;

	if (consumer_list(s->dir, &names, &n, e) == -1)
		return -1;
	if (n > 0 && (s->consumers = calloc(n, sizeof(*s->consumers))) ==
	    NULL) {
		names_free(names, n);
		return error_errno(e, EXIT_SOFTWARE, "%s", s->name);
	}
	for (i = 0; i < n; i++) {
		struct sv_consumer *c = &s->consumers[s->nconsumers];
		int lrc = consumer_load(s->dir, names[i], &c->st, e);
		if (lrc == 1)		/* removed meanwhile */
			continue;
		if (lrc == -1) {
			rc = -1;
			break;
		}
		snprintf(c->name, sizeof(c->name), "%s", names[i]);
		c->updated = rfc3339_time(c->st.updated);
		s->nconsumers++;
	}
	names_free(names, n);
	return rc;
}

void
stateview_stream(struct sv_stream *s, const char *name, const char *dir)
{
	struct error *e = &s->err;
	uint64_t low = UINT64_MAX;
	struct stat st;
	size_t i;
	int rc;

	memset(s, 0, sizeof(*s));
	snprintf(s->name, sizeof(s->name), "%s", name);
	snprintf(s->dir, sizeof(s->dir), "%s", dir);
	if (stat(dir, &st) == -1 || !S_ISDIR(st.st_mode)) {
		error_set(e, EXIT_NOINPUT, "%s: no such stream", name);
		return;
	}
	if (consumers_read(s, e) == -1 ||
	    stream_head(dir, &s->head, &s->first, e) == -1 ||
	    disk_usage(s, e) == -1) {
		error_wrap(e, "%s", name);
		return;
	}
	for (i = 0; i < s->nconsumers; i++) {
		struct sv_consumer *c = &s->consumers[i];
		c->lag = s->head > c->st.committed ? s->head - c->st.committed : 0;
		if (c->st.committed < low)
			low = c->st.committed;
	}
	/* backlog: head minus the slowest consumer (aistack(7), Streams) */
	s->backlog = low != UINT64_MAX && s->head > low ? s->head - low : 0;
	if ((rc = stream_counters_read(dir, &s->ctr, e)) == -1) {
		error_wrap(e, "%s", name);
		return;
	}
	s->have_counters = rc == 0;
	if ((rc = stream_paused(dir)) == -1) {
		error_errno(e, EXIT_IOERR, "%s: pause", name);
		return;
	}
	s->paused = rc;
	if (sources_read(s, e) == -1) {
		error_wrap(e, "%s", name);
		return;
	}
	s->ok = 1;
}

static int
grow(void **v, size_t n, size_t size, struct error *e)
{
	void *nv;

	if ((nv = realloc(*v, (n + 1) * size)) == NULL)
		return error_errno(e, EXIT_SOFTWARE, "state view");
	*v = nv;
	return 0;
}

int
stateview_streams(struct stateview *v, char *const *names, size_t n,
    struct error *e)
{
	char sdir[PATH_MAX], dir[PATH_MAX];
	char **all = NULL;
	size_t nall = 0, i;
	int rc = 0;

	if (n == 0) {
		if (statedir_sub(sdir, sizeof(sdir), "streams", e) == -1 ||
		    names_list(sdir, NAMES_DIRS, &all, &nall, e) == -1)
			return -1;
		names = all;
		n = nall;
	}
	for (i = 0; i < n; i++) {
		struct sv_stream *s;
		if ((rc = grow((void **)&v->streams, v->nstreams,
		    sizeof(*v->streams), e)) == -1)
			break;
		s = &v->streams[v->nstreams++];
		if (statedir_resolve(names[i], "streams", dir, sizeof(dir),
		    &s->err) == -1) {
			struct error err = s->err;
			memset(s, 0, sizeof(*s));
			snprintf(s->name, sizeof(s->name), "%s", names[i]);
			s->err = err;
			continue;
		}
		stateview_stream(s, names[i], dir);
	}
	names_free(all, nall);
	return rc;
}

/* --- breakers ----------------------------------------------------------------- */

static void
breaker_read(struct sv_breaker *b, const struct config *c, const char *name)
{
	char dir[PATH_MAX], path[PATH_MAX + NAME_MAX_LEN + 2];

	memset(b, 0, sizeof(*b));
	snprintf(b->st.name, sizeof(b->st.name), "%s", name);
	b->configured = breaker_configured(c, name);
	if (breaker_status_read(name, &b->st, &b->err) == -1)
		return;
	if (statedir_sub(dir, sizeof(dir), "breakers", &b->err) == -1)
		return;
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	b->stored = access(path, F_OK) == 0;
	/* damaged counters hide nothing else: they read as none */
	(void)breaker_counters_read(name, &b->ctr);
	b->ok = 1;
}

int
stateview_breakers(struct stateview *v, const struct config *c,
    char *const *names, size_t n, struct error *e)
{
	char **all = NULL;
	size_t nall = 0, i;
	int rc = 0;

	if (n == 0) {
		if (breaker_list_all(c, &all, &nall, e) == -1)
			return -1;
		names = all;
		n = nall;
	}
	for (i = 0; i < n; i++) {
		if ((rc = grow((void **)&v->breakers, v->nbreakers,
		    sizeof(*v->breakers), e)) == -1)
			break;
		breaker_read(&v->breakers[v->nbreakers++], c, names[i]);
	}
	names_free(all, nall);
	return rc;
}

void
stateview_release(struct stateview *v)
{
	size_t i;

	if (v == NULL)
		return;
	for (i = 0; i < v->nstreams; i++) {
		free(v->streams[i].consumers);
		free(v->streams[i].sources);
	}
	free(v->streams);
	free(v->breakers);
	free(v->dedup);
	stateview_init(v);
}
