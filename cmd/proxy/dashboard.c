/*
 * The dashboard: its files, read into memory at start (one level, known
 * extensions, only names the router can ask for), and served from there.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "exitcode.h"
#include "fsutil.h"

#include "proxy.h"

#define DASHBOARD_REL		"../share/aistack/dashboard"
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

void
dashboard_default_dir(char *buf, size_t n)
{
	char exe[PATH_MAX], dir[PATH_MAX];
	ssize_t r;

	buf[0] = '\0';
	if ((r = readlink("/proc/self/exe", exe, sizeof(exe) - 1)) <= 0)
		return;
	exe[r] = '\0';
	path_dirname(exe, dir, sizeof(dir));
	if (strlen(dir) + sizeof(DASHBOARD_REL) + 1 <= n)
		snprintf(buf, n, "%.*s/%s", (int)(n - sizeof(DASHBOARD_REL) - 1),
		    dir, DASHBOARD_REL);
}

int
dashboard_load(struct proxy *p, int given, struct error *e)
{
	char **names, path[PATH_MAX * 2];
	size_t n, i;
	struct stat st;
	const char *ct;
	struct route r;

	if (stat(p->dashdir, &st) == -1 || !S_ISDIR(st.st_mode)) {
		const char *why = stat(p->dashdir, &st) == -1 ?
		    strerror(errno) : "not a directory";
		if (given)
			return error_set(e, EXIT_NOINPUT, "%s: %s", p->dashdir,
			    why);
		warnmsg("%s: %s", p->dashdir, why);
		warnmsg("dashboard: not installed; / answers 404");
		return 0;
	}
	n = files_list(p->dashdir, 0, "", &names);
	for (i = 0; i < n && p->nfiles < DASHBOARD_MAX_FILES; i++) {
		struct dfile *f = &p->files[p->nfiles];
		char *data;
		size_t len;
		if ((ct = content_type(names[i])) == NULL ||
		    strlen(names[i]) >= sizeof(f->name))
			continue;
		/* only names the router can ask for */
		snprintf(path, sizeof(path), "/%s", names[i]);
		if (route_match(NULL, 0, "GET", path, strlen(path), 4096, &r) != 0 ||
		    r.kind != ROUTE_DASHBOARD)
			continue;
		snprintf(path, sizeof(path), "%s/%s", p->dashdir, names[i]);
		if (read_file(path, DASHBOARD_MAX_FILE, &data, &len) == -1) {
			warnmsg("%s: %s", path, strerror(errno));
			continue;
		}
		snprintf(f->name, sizeof(f->name), "%s", names[i]);
		f->data = data;
		f->len = len;
		f->ctype = ct;
		p->nfiles++;
	}
	names_free(names, n);
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
