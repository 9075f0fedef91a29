#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/clock.h"
#include "base/exitcode.h"
#include "base/fsutil.h"
#include "base/statedir.h"
#include "format/jsonget.h"
#include "consumer.h"
#include "stream.h"

#define CONSUMER_FILE_MAX 4096

int
consumer_path(const char *streamdir, const char *name, char *buf, size_t n,
    struct error *e)
{
	if (!name_valid(name))
		return error_set(e, EXIT_USAGE, "%s: invalid consumer name "
		    "(expected [a-z0-9][a-z0-9._-]{0,63})", name);
	if ((size_t)snprintf(buf, n, "%s/consumers/%s", streamdir, name) >= n)
		return error_set(e, EXIT_USAGE, "%s: path too long", name);
	return 0;
}

int
consumer_parse(const char *text, size_t n, struct consumer_state *st,
    struct error *e)
{
	json_error_t je;
	json_t *root, *upd;

	memset(st, 0, sizeof(*st));
	if ((root = json_loadb(text, n, 0, &je)) == NULL)
		return error_set(e, EXIT_DATAERR, "invalid JSON: %s", je.text);
	if (!json_is_object(root) || jsonget_u64(root, "committed",
	    &st->committed) == -1 || jsonget_u64(root, "pending", &st->pending) == -1 ||
	    jsonget_u64(root, "records", &st->records) == -1) {
		json_decref(root);
		return error_set(e, EXIT_DATAERR, "expected non-negative integers "
		    "\"committed\", \"pending\" and \"records\"");
	}
	if (st->pending < st->committed) {
		json_decref(root);
		return error_set(e, EXIT_DATAERR, "\"pending\" is below "
		    "\"committed\"");
	}
	if (json_is_string(upd = json_object_get(root, "updated")))
		snprintf(st->updated, sizeof(st->updated), "%s",
		    json_string_value(upd));
	if (json_object_get(root, "batches_failed") != NULL &&
	    jsonget_u64(root, "batches_failed", &st->batches_failed) == -1) {
		json_decref(root);
		return error_set(e, EXIT_DATAERR, "expected a non-negative "
		    "integer \"batches_failed\"");
	}
	json_decref(root);
	return 0;
}

int
consumer_load(const char *streamdir, const char *name,
    struct consumer_state *st, struct error *e)
{
	char path[PATH_MAX], *text;
	size_t n;

	memset(st, 0, sizeof(*st));
	if (consumer_path(streamdir, name, path, sizeof(path), e) == -1)
		return -1;
	if (read_file(path, CONSUMER_FILE_MAX, &text, &n) == -1) {
		if (errno == ENOENT)
			return 1;
		return error_errno(e, errno == EFBIG ? EXIT_DATAERR : EXIT_IOERR,
		    "%s", path);
	}
	if (consumer_parse(text, n, st, e) == -1) {
		free(text);
		return error_wrap(e, "%s", path);
	}
	free(text);
	return 0;
}

static int
save(const char *streamdir, const char *name, struct consumer_state *st,
    int stamp, struct error *e)
{
	char path[PATH_MAX], dir[PATH_MAX + 16], text[320];
	int n;

	if (consumer_path(streamdir, name, path, sizeof(path), e) == -1)
		return -1;
	snprintf(dir, sizeof(dir), "%s/consumers", streamdir);
	if (mkdir_p(dir, 0700) == -1)
		return error_errno(e, error_code_for_errno(errno), "%s", dir);
	if (stamp || st->updated[0] == '\0')
		clock_rfc3339_now(st->updated, sizeof(st->updated));
	n = snprintf(text, sizeof(text), "{\"committed\":%llu,\"pending\":%llu,"
	    "\"records\":%llu,\"updated\":\"%s\"",
	    (unsigned long long)st->committed, (unsigned long long)st->pending,
	    (unsigned long long)st->records, st->updated);
	if (st->batches_failed > 0)
		n += snprintf(text + n, sizeof(text) - (size_t)n,
		    ",\"batches_failed\":%llu",
		    (unsigned long long)st->batches_failed);
	n += snprintf(text + n, sizeof(text) - (size_t)n, "}\n");
	return atomic_replace(path, text, (size_t)n, 0600, e);
}

int
consumer_save(const char *streamdir, const char *name,
    struct consumer_state *st, struct error *e)
{
	return save(streamdir, name, st, 1, e);
}

int
consumer_note_failure(const char *streamdir, const char *name,
    struct consumer_state *st, struct error *e)
{
	st->batches_failed++;
	return save(streamdir, name, st, 0, e);
}

int
consumer_remove(const char *streamdir, const char *name, struct error *e)
{
	char path[PATH_MAX], lock[PATH_MAX + 16];

	if (consumer_path(streamdir, name, path, sizeof(path), e) == -1)
		return -1;
	snprintf(lock, sizeof(lock), "%s/consumers/.%s.lock", streamdir, name);
	if (unlink(path) == -1 && errno != ENOENT)
		return error_errno(e, EXIT_IOERR, "%s", path);
	if (unlink(lock) == -1 && errno != ENOENT)
		return error_errno(e, EXIT_IOERR, "%s", lock);
	return 0;
}

int
consumer_list(const char *streamdir, char ***names, size_t *n,
    struct error *e)
{
	char dir[PATH_MAX + 16];

	snprintf(dir, sizeof(dir), "%s/consumers", streamdir);
	return names_list(dir, NAMES_FILES, names, n, e);
}

int
consumer_backlog(const char *streamdir, uint64_t *head, uint64_t *backlog,
    uint64_t *min_committed, struct error *e)
{
	struct consumer_state st;
	uint64_t low = UINT64_MAX;
	char **names;
	size_t n, i;

	if (stream_head(streamdir, head, NULL, e) == -1)
		return -1;
	if (consumer_list(streamdir, &names, &n, e) == -1)
		return -1;
	for (i = 0; i < n; i++) {
		int rc = consumer_load(streamdir, names[i], &st, e);
		if (rc == -1) {
			names_free(names, n);
			return -1;
		}
		if (rc == 0 && st.committed < low)
			low = st.committed;
	}
	names_free(names, n);
	if (low == UINT64_MAX || low > *head)
		low = low == UINT64_MAX ? *head : low;
	*backlog = *head > low ? *head - low : 0;
	if (min_committed != NULL)
		*min_committed = low;
	return 0;
}
