/*
 * GET /metrics: the proxy's own counters (through lib/base/metrics, named
 * in lib/base/metricnames.h), the live view of the state
 * (lib/state/stateprom.h, read at each scrape: backlog and paused are
 * those /health gives) and every .prom file of metrics/, merged into one
 * valid exposition by lib/format/prommerge.h.  The first two own their
 * families: a file's samples of them are left out (a file is as old as
 * its last writer).  What a file has that is invalid is dropped, counted
 * by file in aistack_proxy_metrics_rejected_total and reported once for
 * each version of the file.
 */
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "base/fsutil.h"
#include "base/metricnames.h"
#include "base/metrics.h"
#include "format/prommerge.h"
#include "state/stateprom.h"
#include "state/stateview.h"

#include "proxy.h"

/* A file of metrics/ seen by a scrape. */
struct metrics_file {
	char name[NAME_MAX + 1];
	uint64_t rejected;		/* lines dropped, all scrapes */
	int warned;			/* about the version below */
	dev_t dev;
	ino_t ino;
	off_t size;
	struct timespec mtime;
};

static const char *const outcome_names[U_N] = {
	"ok", "down", "timeout", "too_big", "error", "breaker_open",
	"breaker_error"
};

static void
upstream_metrics(const struct proxy *p, struct metrics *m)
{
	char le[32];
	uint64_t cum;
	size_t i, j;

	metrics_family(m, MN_PROXY_UPSTREAM, "counter", MH_PROXY_UPSTREAM);
	for (i = 0; i < p->nup; i++)
		for (j = 0; j < U_N; j++)
			metrics_sample(m, MN_PROXY_UPSTREAM,
			    (double)load(&p->up[i].outcomes[j]),
			    "upstream", p->up[i].name,
			    "outcome", outcome_names[j], NULL);
	metrics_family(m, MN_PROXY_UPSTREAM_TIME, "histogram",
	    MH_PROXY_UPSTREAM_TIME);
	for (i = 0; i < p->nup; i++) {
		const struct upstream *u = &p->up[i];
		cum = 0;
		for (j = 0; j <= PROXY_NBUCKETS; j++) {
			cum += load(&u->hist[j]);
			if (j < PROXY_NBUCKETS)
				snprintf(le, sizeof(le), "%g", upstream_buckets[j]);
			else
				snprintf(le, sizeof(le), "+Inf");
			metrics_sample(m, MN_PROXY_UPSTREAM_TIME "_bucket",
			    (double)cum, "upstream", u->name, "le", le, NULL);
		}
		metrics_sample(m, MN_PROXY_UPSTREAM_TIME "_sum",
		    (double)load(&u->sum_us) / 1e6, "upstream", u->name, NULL);
		metrics_sample(m, MN_PROXY_UPSTREAM_TIME "_count", (double)cum,
		    "upstream", u->name, NULL);
	}
}

/* The proxy's own metrics, appended to m. */
static void
own_metrics(const struct proxy *p, struct metrics *m)
{
	struct ratelimit_stats rs;
	char code[8];
	size_t i, j;
	uint64_t v;

	metrics_family(m, MN_PROXY_REQUESTS, "counter", MH_PROXY_REQUESTS);
	for (i = 0; i < ROUTE_LABEL_N; i++)
		for (j = 0; j < MAX_STATUS; j++) {
			if ((v = load(&p->requests[i][j])) == 0)
				continue;
			snprintf(code, sizeof(code), "%zu", j);
			metrics_sample(m, MN_PROXY_REQUESTS, (double)v, "route",
			    route_label_name((enum route_label)i), "code", code,
			    NULL);
		}
	metrics_family(m, MN_PROXY_RATE_LIMITED, "counter",
	    MH_PROXY_RATE_LIMITED);
	metrics_sample(m, MN_PROXY_RATE_LIMITED,
	    (double)load(&p->rate_limited), NULL);
	ratelimit_stats(p->rl, &rs);
	metrics_family(m, MN_PROXY_CLIENTS, "gauge", MH_PROXY_CLIENTS);
	metrics_sample(m, MN_PROXY_CLIENTS, (double)rs.clients, NULL);
	metrics_family(m, MN_PROXY_MAX_CLIENTS, "gauge", MH_PROXY_MAX_CLIENTS);
	metrics_sample(m, MN_PROXY_MAX_CLIENTS, (double)rs.max_clients, NULL);
	metrics_family(m, MN_PROXY_RL_MEMORY, "gauge", MH_PROXY_RL_MEMORY);
	metrics_sample(m, MN_PROXY_RL_MEMORY, (double)rs.memory, NULL);
	metrics_family(m, MN_PROXY_EVICTIONS, "counter", MH_PROXY_EVICTIONS);
	metrics_sample(m, MN_PROXY_EVICTIONS,
	    (double)(rs.evicted - rs.evicted_unrefilled), "refilled", "yes",
	    NULL);
	metrics_sample(m, MN_PROXY_EVICTIONS, (double)rs.evicted_unrefilled,
	    "refilled", "no", NULL);
	metrics_family(m, MN_PROXY_CONNECTIONS, "gauge", MH_PROXY_CONNECTIONS);
	metrics_sample(m, MN_PROXY_CONNECTIONS, (double)load(&p->connections),
	    NULL);
	if (p->nup > 0)
		upstream_metrics(p, m);
}

static void
files_lock(struct proxy *p)
{
	while (__atomic_test_and_set(&p->mfiles_lock, __ATOMIC_ACQUIRE))
		sched_yield();
}

static void
files_unlock(struct proxy *p)
{
	__atomic_clear(&p->mfiles_lock, __ATOMIC_RELEASE);
}

/* The entry of the file name (added when new), or NULL.  Locked. */
static struct metrics_file *
file_entry(struct proxy *p, const char *name)
{
	struct metrics_file *nv;
	size_t i;

	for (i = 0; i < p->nmfiles; i++)
		if (strcmp(p->mfiles[i].name, name) == 0)
			return &p->mfiles[i];
	if ((nv = realloc(p->mfiles, (p->nmfiles + 1) * sizeof(*nv))) == NULL)
		return NULL;
	p->mfiles = nv;
	memset(&nv[p->nmfiles], 0, sizeof(*nv));
	snprintf(nv[p->nmfiles].name, sizeof(nv->name), "%s", name);
	return &nv[p->nmfiles++];
}

void
metrics_files_free(struct proxy *p)
{
	free(p->mfiles);
	p->mfiles = NULL;
	p->nmfiles = 0;
}

/* What a file's merge dropped: the first line and how many. */
struct rejects {
	size_t first;
	const char *reason;
	long n;
};

static void
on_reject(void *arg, size_t line, const char *reason)
{
	struct rejects *r = arg;

	if (r->n++ == 0) {
		r->first = line;
		r->reason = reason;
	}
}

/* Count what file name (status st) had dropped; warn once a version. */
static void
file_note(struct proxy *p, const char *name, const struct stat *st,
    const struct rejects *r)
{
	struct metrics_file *f;
	int warn = 0;

	files_lock(p);
	if ((f = file_entry(p, name)) != NULL) {
		int same = f->dev == st->st_dev && f->ino == st->st_ino &&
		    f->size == st->st_size &&
		    f->mtime.tv_sec == st->st_mtim.tv_sec &&
		    f->mtime.tv_nsec == st->st_mtim.tv_nsec;
		f->rejected += (uint64_t)r->n;
		if (r->n > 0 && !(same && f->warned)) {
			warn = 1;
			f->warned = 1;
		} else if (r->n == 0)
			f->warned = 0;
		f->dev = st->st_dev;
		f->ino = st->st_ino;
		f->size = st->st_size;
		f->mtime = st->st_mtim;
	}
	files_unlock(p);
	if (!warn)
		return;
	if (r->n > 1)
		warnmsg("metrics/%s: line %zu: %s (%ld lines dropped)", name,
		    r->first, r->reason, r->n);
	else
		warnmsg("metrics/%s: line %zu: %s", name, r->first, r->reason);
}

/* aistack_proxy_metrics_rejected_total, a sample for every file seen. */
static int
rejected_metrics(struct proxy *p, struct metrics *m)
{
	size_t i;
	int rc = 0;

	rc |= metrics_family(m, MN_PROXY_METRICS_REJECTED, "counter",
	    MH_PROXY_METRICS_REJECTED);
	files_lock(p);
	for (i = 0; i < p->nmfiles; i++)
		rc |= metrics_sample(m, MN_PROXY_METRICS_REJECTED,
		    (double)p->mfiles[i].rejected, "file", p->mfiles[i].name,
		    NULL);
	files_unlock(p);
	return rc;
}

/* Add the files of metrics/ to the merge. */
static int
add_files(struct proxy *p, struct prommerge *pm)
{
	char mdir[PATH_MAX], source[NAME_MAX + 16];
	struct error e;
	struct stat st;
	char **files = NULL, *text;
	size_t nf = 0, i, len;
	int rc = 0;

	if (statedir_sub(mdir, sizeof(mdir), "metrics", &e) == 0)
		nf = files_list(mdir, 0, ".prom", &files);
	for (i = 0; i < nf && rc == 0; i++) {
		struct rejects r = { 0, NULL, 0 };
		if (files_read(mdir, files[i], METRICS_MAX_FILE, &text, &len,
		    &st) == -1)
			continue;
		snprintf(source, sizeof(source), "metrics/%s", files[i]);
		if (prommerge_add(pm, text, len, source, 0, on_reject, &r) == -1)
			rc = -1;
		else
			file_note(p, files[i], &st, &r);
		free(text);
	}
	names_free(files, nf);
	return rc;
}

enum MHD_Result
metrics_serve(struct request *rq, struct MHD_Connection *conn)
{
	struct metrics own = METRICS_INIT, live = METRICS_INIT,
	    rej = METRICS_INIT;
	struct prommerge *pm;
	struct stateview v;
	struct buf out = BUF_INIT;
	struct error e;
	int rc = 0;

	own_metrics(rq->p, &own);
	/* its family first, closed: the samples come once the files are read */
	metrics_family(&own, MN_PROXY_METRICS_REJECTED, "counter",
	    MH_PROXY_METRICS_REJECTED);
	/* what cannot be read is left out (/health says why) */
	(void)status_view(rq->p, &v, 1, &e);
	if (stateprom_render(&v, &live) == -1)
		rc = -1;
	stateview_release(&v);
	if (rc == 0 && (pm = prommerge_new()) != NULL) {
		if (prommerge_add(pm, own.text.data != NULL ? own.text.data : "",
		    own.text.len, "aistack-proxy", 1, NULL, NULL) == -1 ||
		    prommerge_add(pm, live.text.data != NULL ? live.text.data :
		    "", live.text.len, "the state", 1, NULL, NULL) == -1 ||
		    add_files(rq->p, pm) == -1 ||
		    rejected_metrics(rq->p, &rej) == -1 ||
		    prommerge_add(pm, rej.text.data != NULL ? rej.text.data : "",
		    rej.text.len, "aistack-proxy", 1, NULL, NULL) == -1 ||
		    prommerge_write(pm, &out) == -1)
			rc = -1;
		prommerge_free(pm);
	} else
		rc = -1;
	metrics_release(&own);
	metrics_release(&live);
	metrics_release(&rej);
	if (rc == -1 || buf_cstr(&out) == NULL) {
		buf_release(&out);
		return respond_error(rq, conn, 500, "out of memory", NULL);
	}
	return respond(rq, conn, 200, "text/plain; version=0.0.4; charset=utf-8",
	    out.data, out.len, 1, "no-store", NULL);
}
