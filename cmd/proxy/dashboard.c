/*
 * The dashboard: the copy built into the program (embed.h), or, with
 * --dashboard DIR, the files of DIR read at start (one level, regular
 * files only, never through a link: files.c).  Either way only known
 * extensions and names the router can ask for are kept, in memory, and
 * served from there.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/exitcode.h"

#include "base/fsutil.h"
#include "embed.h"

#include "proxy.h"

#define DASHBOARD_MAX_FILE	(1024 * 1024)

static const char *
content_type(const char *name)
{
	static const struct {
		const char *ext, *type;
	} types[] = {
		{ ".html", "text/html; charset=utf-8" },
		{ ".js", "text/javascript; charset=utf-8" },
		{ ".css", "text/css; charset=utf-8" },
		{ ".svg", "image/svg+xml" },
		{ ".png", "image/png" },
		{ ".ico", "image/x-icon" },
		{ ".json", "application/json" },
		{ ".webmanifest", "application/manifest+json" },
		{ ".txt", "text/plain; charset=utf-8" },
	};
	const char *dot = strrchr(name, '.');
	size_t i;

	if (dot == NULL)
		return NULL;
	for (i = 0; i < sizeof(types) / sizeof(types[0]); i++)
		if (strcmp(dot, types[i].ext) == 0)
			return types[i].type;
	return NULL;
}

/* The slot for a file called name, or NULL when it is not one to serve
 * (unknown extension, a name the router never asks for) or all slots
 * are taken. */
static struct dfile *
slot(struct proxy *p, const char *name)
{
	char path[sizeof(p->files[0].name) + 1];
	struct dfile *f;
	struct route r;
	const char *ct;

	if (p->nfiles == DASHBOARD_MAX_FILES ||
	    (ct = content_type(name)) == NULL ||
	    strlen(name) >= sizeof(p->files[0].name))
		return NULL;
	snprintf(path, sizeof(path), "/%s", name);
	if (route_match(NULL, 0, "GET", path, strlen(path), 4096, &r) != 0 ||
	    r.kind != ROUTE_DASHBOARD)
		return NULL;
	f = &p->files[p->nfiles];
	memset(f, 0, sizeof(*f));
	snprintf(f->name, sizeof(f->name), "%s", name);
	f->ctype = ct;
	return f;
}

/* The files of dir, read now. */
static int
load_dir(struct proxy *p, const char *dir, struct error *e)
{
	struct dfile *f;
	char **names, *data;
	size_t n, i, len;
	int dfd, fd;

	snprintf(p->dashdir, sizeof(p->dashdir), "%s", dir);
	if ((dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) == -1)
		return error_errno(e, EXIT_NOINPUT, "%s", dir);
	n = files_list(dir, 0, "", &names);
	for (i = 0; i < n; i++) {
		if ((f = slot(p, names[i])) == NULL)
			continue;
		if ((fd = files_open_beneath(dfd, names[i])) == -1 ||
		    read_fd(fd, DASHBOARD_MAX_FILE, &data, &len) == -1) {
			warnmsg("%s/%s: %s", dir, names[i], errno == EINVAL ?
			    "not a regular file" : strerror(errno));
			if (fd != -1)
				close(fd);
			continue;
		}
		close(fd);
		f->data = data;
		f->len = len;
		f->owned = 1;
		p->nfiles++;
	}
	names_free(names, n);
	close(dfd);
	return 0;
}

int
dashboard_load(struct proxy *p, const char *dir, struct error *e)
{
	const struct embedded_file *ef;
	struct dfile *f;

	if (dir != NULL)
		return load_dir(p, dir, e);
	for (ef = dashboard_embedded; ef->name != NULL; ef++) {
		if ((f = slot(p, ef->name)) == NULL)
			continue;
		f->data = ef->start;
		f->len = (size_t)(ef->end - ef->start);
		p->nfiles++;
	}
	return 0;
}

enum MHD_Result
dashboard_serve(struct request *rq, struct MHD_Connection *conn,
    const struct route *r)
{
	struct proxy *p = rq->p;
	size_t i;

	for (i = 0; i < p->nfiles; i++)
		if (strlen(p->files[i].name) == r->filelen &&
		    memcmp(p->files[i].name, r->file, r->filelen) == 0)
			return respond(rq, conn, 200, p->files[i].ctype,
			    p->files[i].data, p->files[i].len, 0, "no-cache",
			    NULL);
	return respond_error(rq, conn, 404, "not found", NULL);
}
