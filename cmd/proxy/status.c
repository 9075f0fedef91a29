/*
 * GET /health and GET /api/stats: the read model of the state directory
 * (lib/state/stateview.h), read once a request, as JSON, with the proxy's own
 * counters.  status_view is also what /metrics renders (metrics.c).
 *
 * "degraded" means what is true now: a breaker that is not closed, or a
 * writer that is paused at this moment (it holds the stream's pause lock,
 * which dies with it); never what a dead process left behind.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/exitcode.h"
#include "base/fsutil.h"
#include "format/promtext.h"
#include "state/stateview.h"

#include "proxy.h"

/* --- the read model ---------------------------------------------------------- */

/* The breakers: those with a state file, the [breaker NAME] sections and
 * every upstream's, each once, sorted. */
static int
breaker_names(struct proxy *p, char ***out, size_t *n, struct error *e)
{
	size_t i;

	if (breaker_list_all(&p->cfg, out, n, e) == -1)
		return -1;
	for (i = 0; i < p->nup; i++)
		if (names_add(out, n, p->up[i].name) == -1) {
			names_free(*out, *n);
			return error_errno(e, EXIT_SOFTWARE, "breakers");
		}
	names_sort(*out, *n);
	return 0;
}

int
status_view(struct proxy *p, struct stateview *v, int dedup, struct error *e)
{
	struct error e2;
	char **names = NULL;
	size_t n = 0;
	int rc = 0;

	/* each part is read even when another cannot be: e is the first
	 * error */
	stateview_init(v);
	if (stateview_streams(v, NULL, 0, e) == -1)
		rc = -1;
	if (breaker_names(p, &names, &n, rc == 0 ? e : &e2) == -1)
		rc = -1;
	else if (n > 0 && stateview_breakers(v, &p->cfg, names, n,
	    rc == 0 ? e : &e2) == -1)
		rc = -1;
	names_free(names, n);
	if (dedup && stateview_dedup(v, rc == 0 ? e : &e2) == -1)
		rc = -1;
	return rc;
}

int
status_degraded(const struct stateview *v)
{
	size_t i;

	for (i = 0; i < v->nbreakers; i++)
		if (v->breakers[i].ok && v->breakers[i].st.state != BREAKER_CLOSED)
			return 1;
	for (i = 0; i < v->nstreams; i++)
		if (v->streams[i].ok && v->streams[i].paused)
			return 1;
	return 0;
}

/* --- JSON ------------------------------------------------------------------ */

static int
utf8_ok(const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0, k, len;

	while (i < n) {
		if (p[i] < 0x80) {
			i++;
			continue;
		}
		len = p[i] >= 0xf0 ? 4 : p[i] >= 0xe0 ? 3 : 2;
		if (p[i] < 0xc2 || p[i] > 0xf4 || i + len > n)
			return 0;
		for (k = 1; k < len; k++)
			if ((p[i + k] & 0xc0) != 0x80)
				return 0;
		i += len;
	}
	return 1;
}

/* A JSON string of any bytes: text that is not UTF-8 is shown byte by
 * byte as Latin-1. */
static void
json_str(struct buf *b, const char *s)
{
	size_t n = strlen(s), i;

	buf_putc(b, '"');
	if (utf8_ok(s, n))
		buf_json_escape(b, s, n);
	else
		for (i = 0; i < n; i++) {
			unsigned char c = (unsigned char)s[i];
			if (c >= 0x80)
				buf_printf(b, "\\u%04x", c);
			else
				buf_json_escape(b, s + i, 1);
		}
	buf_putc(b, '"');
}

/* Unix time as "2026-11-27T07:18:37Z", or null when 0. */
static void
json_time(struct buf *b, int64_t t)
{
	char when[32];
	time_t tt = (time_t)t;
	struct tm tm;

	if (t == 0 || gmtime_r(&tt, &tm) == NULL) {
		buf_printf(b, "null");
		return;
	}
	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
	buf_printf(b, "\"%s\"", when);
}

#define U(x)	((unsigned long long)(x))

static void
consumers_json(struct buf *b, const struct sv_stream *s)
{
	size_t j;

	buf_putc(b, '[');
	for (j = 0; j < s->nconsumers; j++) {
		const struct sv_consumer *c = &s->consumers[j];
		buf_printf(b, "%s{\"name\":", j ? "," : "");
		json_str(b, c->name);
		buf_printf(b, ",\"committed\":%llu,\"pending\":%llu,\"lag\":%llu,"
		    "\"records\":%llu,\"batches_failed\":%llu,\"updated\":",
		    U(c->st.committed), U(c->st.pending), U(c->lag),
		    U(c->st.records), U(c->st.batches_failed));
		json_str(b, c->st.updated);
		buf_printf(b, ",\"last_commit\":%lld}", (long long)c->updated);
	}
	buf_putc(b, ']');
}

static void
sources_json(struct buf *b, const struct sv_stream *s)
{
	size_t j;

	buf_putc(b, '[');
	for (j = 0; j < s->nsources; j++) {
		const struct sv_source *f = &s->sources[j];
		buf_printf(b, "%s{\"key\":", j ? "," : "");
		json_str(b, f->key);
		buf_printf(b, ",\"path\":");
		json_str(b, f->path);
		buf_printf(b, ",\"offset\":%llu", U(f->offset));
		if (f->have_counters)
			buf_printf(b, ",\"lines\":%llu,\"lost_bytes\":%llu}",
			    U(f->lines), U(f->lost_bytes));
		else
			buf_printf(b, ",\"lines\":null,\"lost_bytes\":null}");
	}
	buf_putc(b, ']');
}

/* The streams: an object NAME -> {head, backlog, paused} (full == 0,
 * /health) or an array of everything the view holds. */
static void
streams_json(struct proxy *p, struct buf *b, const struct stateview *v,
    int full)
{
	size_t i;

	buf_putc(b, full ? '[' : '{');
	for (i = 0; i < v->nstreams; i++) {
		const struct sv_stream *s = &v->streams[i];
		if (i > 0)
			buf_putc(b, ',');
		if (full) {
			buf_printf(b, "{\"name\":");
			json_str(b, s->name);
		} else {
			json_str(b, s->name);
			buf_printf(b, ":{");
		}
		if (!s->ok) {
			buf_printf(b, "%s\"error\":", full ? "," : "");
			json_str(b, s->err.msg);
			buf_putc(b, '}');
			continue;
		}
		buf_printf(b, "%s\"head\":%llu,", full ? "," : "", U(s->head));
		if (full)
			buf_printf(b, "\"first\":%llu,", U(s->first));
		buf_printf(b, "\"backlog\":%llu,\"paused\":%s", U(s->backlog),
		    s->paused ? "true" : "false");
		if (!full) {
			buf_putc(b, '}');
			continue;
		}
		buf_printf(b, ",\"max_backlog\":%llu,\"disk\":{\"plain\":%llu,"
		    "\"gz\":%llu,\"total\":%llu},\"segments\":{\"plain\":%llu,"
		    "\"gz\":%llu},\"consumers\":",
		    U(s->have_counters && s->ctr.max_backlog > 0 ?
		    s->ctr.max_backlog : p->max_backlog), U(s->disk_plain),
		    U(s->disk_gz), U(s->disk_plain + s->disk_gz),
		    U(s->segments_plain), U(s->segments_gz));
		consumers_json(b, s);
		buf_printf(b, ",\"sources\":");
		sources_json(b, s);
		/* cumulative, kept by the stream under its lock */
		buf_printf(b, ",\"ingest\":");
		if (s->have_counters)
			buf_printf(b, "{\"appended\":%llu,\"rejected\":%llu,"
			    "\"empty\":%llu,\"bytes\":%llu,\"since\":%lld}",
			    U(s->ctr.records), U(s->ctr.rejected), U(s->ctr.empty),
			    U(s->ctr.bytes), (long long)s->ctr.since);
		else
			buf_printf(b, "null");
		buf_putc(b, '}');
	}
	buf_putc(b, full ? ']' : '}');
}

static void
breakers_json(struct buf *b, const struct stateview *v, int full)
{
	size_t i;
	int first = 1;

	buf_putc(b, full ? '[' : '{');
	for (i = 0; i < v->nbreakers; i++) {
		const struct sv_breaker *r = &v->breakers[i];
		const struct breaker_status *st = &r->st;
		if (!r->ok)
			continue;
		if (!first)
			buf_putc(b, ',');
		first = 0;
		if (!full) {
			buf_printf(b, "\"%s\":\"%s\"", st->name,
			    breaker_state_name(st->state));
			continue;
		}
		buf_printf(b, "{\"name\":\"%s\",\"state\":\"%s\",\"failures\":%llu,"
		    "\"retry_in\":%llu,\"opened\":%llu,\"last_failure\":",
		    st->name, breaker_state_name(st->state),
		    U(st->data.failures), U((st->retry_in_ms + 999) / 1000),
		    U(st->data.opened));
		json_time(b, st->data.last_failure != 0 ? st->data.last_failure :
		    r->ctr.last_failure);
		buf_printf(b, ",\"last_success\":");
		json_time(b, r->ctr.last_success);
		buf_printf(b, ",\"configured\":%s,\"stored\":%s,\"calls\":{"
		    "\"success\":%llu,\"failure\":%llu,\"ignored\":%llu,"
		    "\"refused\":%llu},\"transitions\":{\"closed\":%llu,"
		    "\"half_open\":%llu,\"open\":%llu}}",
		    r->configured ? "true" : "false", r->stored ? "true" : "false",
		    U(r->ctr.success), U(r->ctr.failure), U(r->ctr.ignored),
		    U(r->ctr.refused), U(st->data.closed), U(st->data.half_opened),
		    U(st->data.opened));
	}
	buf_putc(b, full ? ']' : '}');
}

/* What the last run of aistack-dedup on a state did: the gauges
 * aistack_dedup_last_run_records{state,result} of metrics/dedup-*.prom. */
struct last_run {
	char state[NAME_MAX_LEN + 1];
	double unique, duplicate, near, bad;
};

struct last_runs {
	struct last_run v[64];
	size_t n;
};

static int
last_run_sample(const struct prom_sample *s, void *arg)
{
	static const char name[] = "aistack_dedup_last_run_records";
	struct last_runs *a = arg;
	struct last_run *r;
	char state[NAME_MAX_LEN + 1], result[32];
	size_t i;

	if (s->namelen != sizeof(name) - 1 || memcmp(s->name, name,
	    s->namelen) != 0 || !isfinite(s->value) ||
	    prom_label(s, "state", state, sizeof(state)) == -1 ||
	    prom_label(s, "result", result, sizeof(result)) == -1)
		return 0;
	for (i = 0; i < a->n && strcmp(a->v[i].state, state) != 0; i++)
		;
	if (i == a->n) {
		if (a->n == sizeof(a->v) / sizeof(a->v[0]))
			return 0;
		memset(&a->v[i], 0, sizeof(a->v[i]));
		snprintf(a->v[i].state, sizeof(a->v[i].state), "%s", state);
		a->n++;
	}
	r = &a->v[i];
	if (strcmp(result, "unique") == 0)
		r->unique = s->value;
	else if (strcmp(result, "duplicate") == 0)
		r->duplicate = s->value;
	else if (strcmp(result, "near_duplicate") == 0)
		r->near = s->value;
	else if (strcmp(result, "bad") == 0)
		r->bad = s->value;
	return 0;
}

static void
last_runs_read(struct last_runs *a)
{
	char mdir[PATH_MAX];
	struct error e;
	char **files = NULL, *text;
	size_t n = 0, i, len;

	a->n = 0;
	if (statedir_sub(mdir, sizeof(mdir), "metrics", &e) == -1)
		return;
	n = files_list(mdir, 0, ".prom", &files);
	for (i = 0; i < n; i++) {
		if (strncmp(files[i], "dedup-", 6) != 0 ||
		    files_read(mdir, files[i], METRICS_MAX_FILE, &text, &len,
		    NULL) == -1)
			continue;
		prom_each_sample(text, len, last_run_sample, a);
		free(text);
	}
	names_free(files, n);
}

static void
dedup_json(struct buf *b, const struct stateview *v)
{
	struct last_runs *runs;
	size_t i, j;
	int first = 1;

	if ((runs = calloc(1, sizeof(*runs))) != NULL)
		last_runs_read(runs);
	buf_putc(b, '[');
	for (i = 0; i < v->ndedup; i++) {
		const struct sv_dedup *d = &v->dedup[i];
		if (!d->ok)
			continue;
		buf_printf(b, "%s{\"name\":", first ? "" : ",");
		first = 0;
		json_str(b, d->label);
		buf_printf(b, ",\"kind\":\"%s\",\"keys\":%llu,\"disk_bytes\":%llu",
		    d->index ? "index" : "state", U(d->keys), U(d->disk_bytes));
		/* cumulative, kept by the state */
		if (d->have_counters)
			buf_printf(b, ",\"seen\":%llu,\"unique\":%llu,"
			    "\"duplicates\":%llu,\"near\":%llu,"
			    "\"duplicate_rate\":%.6f", U(d->seen), U(d->unique),
			    U(d->duplicates), U(d->near), d->seen > 0 ?
			    (double)d->duplicates / (double)d->seen : 0.0);
		else
			buf_printf(b, ",\"seen\":null,\"unique\":null,"
			    "\"duplicates\":null,\"near\":null,"
			    "\"duplicate_rate\":null");
		buf_printf(b, ",\"last_run\":");
		for (j = 0; runs != NULL && j < runs->n &&
		    strcmp(runs->v[j].state, d->label) != 0; j++)
			;
		if (runs != NULL && j < runs->n) {
			const struct last_run *r = &runs->v[j];
			double dups = r->duplicate + r->near;
			double seen = r->unique + dups;
			buf_printf(b, "{\"seen\":%.0f,\"unique\":%.0f,"
			    "\"duplicates\":%.0f,\"near\":%.0f,\"bad\":%.0f,"
			    "\"duplicate_rate\":%.6f}", seen, r->unique, dups,
			    r->near, r->bad, seen > 0 ? dups / seen : 0.0);
		} else
			buf_printf(b, "null");
		buf_putc(b, '}');
	}
	buf_putc(b, ']');
	free(runs);
}

/* --- the routes ---------------------------------------------------------------- */

enum MHD_Result
status_health(struct request *rq, struct MHD_Connection *conn)
{
	struct stateview v;
	struct buf b = BUF_INIT;
	struct error e;
	int rc;

	/* what cannot be read is said, and is not ok */
	rc = status_view(rq->p, &v, 0, &e);
	buf_printf(&b, "{\"status\":\"%s\",",
	    rc == -1 || status_degraded(&v) ? "degraded" : "ok");
	if (rc == -1) {
		buf_printf(&b, "\"error\":");
		json_str(&b, e.msg);
		buf_putc(&b, ',');
	}
	buf_printf(&b, "\"circuit_breakers\":");
	breakers_json(&b, &v, 0);
	buf_printf(&b, ",\"streams\":");
	streams_json(rq->p, &b, &v, 0);
	buf_putc(&b, '}');
	stateview_release(&v);
	return respond_json(rq, conn, 200, &b, NULL);
}

enum MHD_Result
status_stats(struct request *rq, struct MHD_Connection *conn)
{
	struct proxy *p = rq->p;
	struct stateview v;
	struct buf b = BUF_INIT;
	struct ratelimit_stats rs;
	struct timespec ts;
	struct error e;
	uint64_t total = 0;
	size_t i, j;
	int rc;

	rc = status_view(p, &v, 1, &e);
	clock_gettime(CLOCK_REALTIME, &ts);
	buf_printf(&b, "{\"time\":%.3f,\"status\":\"%s\",",
	    (double)ts.tv_sec + ts.tv_nsec / 1e9,
	    rc == -1 || status_degraded(&v) ? "degraded" : "ok");
	if (rc == -1) {
		buf_printf(&b, "\"error\":");
		json_str(&b, e.msg);
		buf_putc(&b, ',');
	}
	buf_printf(&b, "\"streams\":");
	streams_json(p, &b, &v, 1);
	buf_printf(&b, ",\"breakers\":");
	breakers_json(&b, &v, 1);
	buf_printf(&b, ",\"dedup\":");
	dedup_json(&b, &v);
	stateview_release(&v);
	for (i = 0; i < ROUTE_LABEL_N; i++)
		for (j = 0; j < MAX_STATUS; j++)
			total += load(&p->requests[i][j]);
	ratelimit_stats(p->rl, &rs);
	buf_printf(&b, ",\"proxy\":{\"requests\":%llu,\"rate_limited\":%llu,"
	    "\"clients\":%zu,\"ratelimit_memory_bytes\":%zu,"
	    "\"rate_per_min\":%g,\"burst\":%llu,\"upstreams\":[",
	    U(total), U(load(&p->rate_limited)), rs.clients, rs.memory,
	    p->per_min, U(p->burst));
	for (i = 0; i < p->nup; i++) {
		struct upstream *u = &p->up[i];
		uint64_t n = 0;
		for (j = 0; j < U_N; j++)
			n += load(&u->outcomes[j]);
		buf_printf(&b, "%s{\"name\":\"%s\",\"requests\":%llu,"
		    "\"ok\":%llu}", i ? "," : "", u->name, U(n),
		    U(load(&u->outcomes[U_OK])));
	}
	buf_printf(&b, "]}}");
	return respond_json(rq, conn, 200, &b, NULL);
}
