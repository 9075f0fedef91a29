/*
 * GET /health and GET /api/stats: the state directory (streams,
 * consumers, breakers, the ingest and dedup metrics files) read into
 * JSON, and the proxy's own counters.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "base/fsutil.h"
#include "format/promtext.h"
#include "stream/consumer.h"
#include "stream/stream.h"

#include "proxy.h"

#define INGEST_FRESH_S		30

/* What metrics/ingest-NAME.prom says. */
struct ingest_info {
	int have;
	int paused;
	double appended, rejected, empty, bytes;
};

static int
is_name(const struct prom_sample *s, const char *name)
{
	return s->namelen == strlen(name) && memcmp(s->name, name, s->namelen) == 0;
}

static int
ingest_sample(const struct prom_sample *s, void *arg)
{
	struct ingest_info *in = arg;
	char result[32];

	if (is_name(s, "aistack_ingest_paused"))
		in->paused = s->value > 0;
	else if (is_name(s, "aistack_ingest_records_total") &&
	    prom_label(s, "result", result, sizeof(result)) == 0) {
		if (strcmp(result, "appended") == 0)
			in->appended = s->value;
		else if (strcmp(result, "rejected") == 0)
			in->rejected = s->value;
		else if (strcmp(result, "empty") == 0)
			in->empty = s->value;
	} else if (is_name(s, "aistack_ingest_bytes_total"))
		in->bytes = s->value;
	return 0;
}

static void
ingest_read(const char *metricsdir, const char *name, struct ingest_info *in)
{
	char file[NAME_MAX_LEN + 16];
	struct stat st;
	char *text;
	size_t len;

	memset(in, 0, sizeof(*in));
	snprintf(file, sizeof(file), "ingest-%s.prom", name);
	if (files_read(metricsdir, file, METRICS_MAX_FILE, &text, &len,
	    &st) == -1)
		return;
	in->have = 1;
	prom_each_sample(text, len, ingest_sample, in);
	/* a paused gauge left by an ingest that died long ago says nothing */
	if (time(NULL) - st.st_mtime > INGEST_FRESH_S)
		in->paused = 0;
	free(text);
}

/* Append the streams as JSON: an object name -> {head, backlog, paused}
 * (full == 0, /health) or an array with consumers and ingest counters.
 * *degraded is set when a stream is paused. */
static void
streams_json(struct proxy *p, struct buf *b, int full, int *degraded)
{
	char sdir[PATH_MAX], mdir[PATH_MAX], dir[PATH_MAX + 80];
	char **names = NULL, **cons = NULL;
	size_t n, i, nc, j;
	struct error e;

	buf_putc(b, full ? '[' : '{');
	if (statedir_sub(sdir, sizeof(sdir), "streams", &e) == -1 ||
	    statedir_sub(mdir, sizeof(mdir), "metrics", &e) == -1) {
		buf_putc(b, full ? ']' : '}');
		return;
	}
	n = files_list(sdir, 1, NULL, &names);
	for (i = 0; i < n; i++) {
		uint64_t head = 0, first = 0, backlog = 0, minc = 0;
		struct ingest_info in;
		int paused;

		snprintf(dir, sizeof(dir), "%s/%s", sdir, names[i]);
		if (consumer_backlog(dir, &head, &backlog, &minc, &e) == -1)
			continue;
		stream_head(dir, &head, &first, &e);
		ingest_read(mdir, names[i], &in);
		paused = in.paused || (p->max_backlog > 0 &&
		    backlog > p->max_backlog);
		if (paused)
			*degraded = 1;
		if (b->data != NULL && b->data[b->len - 1] != '[' &&
		    b->data[b->len - 1] != '{')
			buf_putc(b, ',');
		if (!full) {
			buf_printf(b, "\"%s\":{\"head\":%llu,\"backlog\":%llu,"
			    "\"paused\":%s}", names[i], (unsigned long long)head,
			    (unsigned long long)backlog, paused ? "true" : "false");
			continue;
		}
		buf_printf(b, "{\"name\":\"%s\",\"head\":%llu,\"first\":%llu,"
		    "\"backlog\":%llu,\"paused\":%s,\"consumers\":[", names[i],
		    (unsigned long long)head, (unsigned long long)first,
		    (unsigned long long)backlog, paused ? "true" : "false");
		nc = 0;
		if (consumer_list(dir, &cons, &nc, &e) == -1)
			nc = 0;
		for (j = 0; j < nc; j++) {
			struct consumer_state st;
			if (!name_valid(cons[j]) ||
			    consumer_load(dir, cons[j], &st, &e) != 0)
				continue;
			if (b->data[b->len - 1] != '[')
				buf_putc(b, ',');
			buf_printf(b, "{\"name\":\"%s\",\"committed\":%llu,"
			    "\"pending\":%llu,\"lag\":%llu,\"records\":%llu,"
			    "\"updated\":\"", cons[j],
			    (unsigned long long)st.committed,
			    (unsigned long long)st.pending,
			    (unsigned long long)(head > st.committed ?
			    head - st.committed : 0),
			    (unsigned long long)st.records);
			buf_json_escape(b, st.updated, strnlen(st.updated,
			    sizeof(st.updated)));
			buf_printf(b, "\"}");
		}
		if (nc > 0)
			names_free(cons, nc);
		cons = NULL;
		buf_printf(b, "],\"ingest\":");
		if (in.have)
			buf_printf(b, "{\"appended\":%.0f,\"rejected\":%.0f,"
			    "\"empty\":%.0f,\"bytes\":%.0f}", in.appended,
			    in.rejected, in.empty, in.bytes);
		else
			buf_printf(b, "null");
		buf_putc(b, '}');
	}
	names_free(names, n);
	buf_putc(b, full ? ']' : '}');
}

/* The breakers: every breaker file, and every configured upstream's. */
static size_t
breaker_names(struct proxy *p, char ***out)
{
	char **v = NULL, **nv;
	size_t n = 0, i, j;
	struct error e;

	if (breaker_list(&v, &n, &e) == -1) {
		v = NULL;
		n = 0;
	}
	for (i = 0; i < p->nup; i++) {
		for (j = 0; j < n; j++)
			if (strcmp(v[j], p->up[i].name) == 0)
				break;
		if (j < n)
			continue;
		if ((nv = realloc(v, (n + 1) * sizeof(*v))) == NULL)
			break;
		v = nv;
		if ((v[n] = strdup(p->up[i].name)) == NULL)
			break;
		n++;
	}
	files_sort(v, n);
	*out = v;
	return n;
}

static void
breakers_json(struct proxy *p, struct buf *b, int full, int *degraded)
{
	struct breaker_status st;
	struct error e;
	char **names, when[32];
	size_t n, i;
	int first = 1;

	n = breaker_names(p, &names);
	buf_putc(b, full ? '[' : '{');
	for (i = 0; i < n; i++) {
		if (breaker_status_read(names[i], &st, &e) == -1)
			continue;
		if (st.state != BREAKER_CLOSED)
			*degraded = 1;
		if (!first)
			buf_putc(b, ',');
		first = 0;
		if (!full) {
			buf_printf(b, "\"%s\":\"%s\"", st.name,
			    breaker_state_name(st.state));
			continue;
		}
		when[0] = '\0';
		if (st.data.last_failure != 0) {
			time_t t = (time_t)st.data.last_failure;
			struct tm tm;
			if (gmtime_r(&t, &tm) != NULL)
				strftime(when, sizeof(when),
				    "%Y-%m-%dT%H:%M:%SZ", &tm);
		}
		buf_printf(b, "{\"name\":\"%s\",\"state\":\"%s\",\"failures\":%llu,"
		    "\"retry_in\":%llu,\"opened\":%llu,\"last_failure\":",
		    st.name, breaker_state_name(st.state),
		    (unsigned long long)st.data.failures,
		    (unsigned long long)((st.retry_in_ms + 999) / 1000),
		    (unsigned long long)st.data.opened);
		buf_printf(b, when[0] ? "\"%s\"}" : "null}", when);
	}
	names_free(names, n);
	buf_putc(b, full ? ']' : '}');
}

/* Dedup statistics from metrics/dedup-*.prom: aistack_dedup_records_total
 * by state (the dedup state's name, else the file's); results whose name
 * holds "dup" (duplicate, near_duplicate) are duplicates, "unique" is
 * unique, seen is their sum (lines that were not records are left out). */
struct dedup_acc {
	char names[32][NAME_MAX_LEN + 1];
	double seen[32], dups[32];
	size_t n;
	const char *file;
};

static int
dedup_sample(const struct prom_sample *s, void *arg)
{
	struct dedup_acc *a = arg;
	char state[NAME_MAX_LEN + 1], result[64];
	size_t i;

	if (!is_name(s, "aistack_dedup_records_total") || isnan(s->value))
		return 0;
	if (prom_label(s, "state", state, sizeof(state)) == -1 ||
	    state[0] == '\0')
		snprintf(state, sizeof(state), "%s", a->file);
	if (prom_label(s, "result", result, sizeof(result)) == -1)
		result[0] = '\0';
	for (i = 0; i < a->n; i++)
		if (strcmp(a->names[i], state) == 0)
			break;
	if (i == a->n) {
		if (a->n == 32)
			return 0;
		snprintf(a->names[a->n], sizeof(a->names[0]), "%s", state);
		a->seen[a->n] = a->dups[a->n] = 0;
		a->n++;
	}
	if (strstr(result, "dup") != NULL) {
		a->dups[i] += s->value;
		a->seen[i] += s->value;
	} else if (strcmp(result, "unique") == 0)
		a->seen[i] += s->value;
	return 0;
}

static void
dedup_json(struct buf *b)
{
	char mdir[PATH_MAX], label[NAME_MAX_LEN + 1];
	struct dedup_acc a;
	struct error e;
	char **files, *text;
	size_t n, i, len;

	memset(&a, 0, sizeof(a));
	buf_putc(b, '[');
	if (statedir_sub(mdir, sizeof(mdir), "metrics", &e) == -1) {
		buf_putc(b, ']');
		return;
	}
	n = files_list(mdir, 0, ".prom", &files);
	for (i = 0; i < n; i++) {
		if (strncmp(files[i], "dedup-", 6) != 0)
			continue;
		if (files_read(mdir, files[i], METRICS_MAX_FILE, &text, &len,
		    NULL) == -1)
			continue;
		snprintf(label, sizeof(label), "%.*s",
		    (int)(strlen(files[i]) - 11), files[i] + 6);
		a.file = label;
		prom_each_sample(text, len, dedup_sample, &a);
		free(text);
	}
	names_free(files, n);
	for (i = 0; i < a.n; i++) {
		if (i > 0)
			buf_putc(b, ',');
		buf_printf(b, "{\"name\":\"");
		buf_json_escape(b, a.names[i], strlen(a.names[i]));
		buf_printf(b, "\",\"seen\":%.0f,\"unique\":%.0f,\"duplicates\":%.0f,"
		    "\"duplicate_rate\":%.6f}", a.seen[i], a.seen[i] - a.dups[i],
		    a.dups[i], a.seen[i] > 0 ? a.dups[i] / a.seen[i] : 0.0);
	}
	buf_putc(b, ']');
}

enum MHD_Result
status_health(struct request *rq, struct MHD_Connection *conn)
{
	struct buf b = BUF_INIT, br = BUF_INIT, st = BUF_INIT;
	int degraded = 0;

	breakers_json(rq->p, &br, 0, &degraded);
	streams_json(rq->p, &st, 0, &degraded);
	buf_printf(&b, "{\"status\":\"%s\",\"circuit_breakers\":",
	    degraded ? "degraded" : "ok");
	buf_append(&b, br.data, br.len);
	buf_printf(&b, ",\"streams\":");
	buf_append(&b, st.data, st.len);
	buf_putc(&b, '}');
	buf_release(&br);
	buf_release(&st);
	return respond_json(rq, conn, 200, &b, NULL);
}

enum MHD_Result
status_stats(struct request *rq, struct MHD_Connection *conn)
{
	struct proxy *p = rq->p;
	struct buf b = BUF_INIT, br = BUF_INIT, st = BUF_INIT;
	struct ratelimit_stats rs;
	struct timespec ts;
	uint64_t total = 0;
	size_t i, j;
	int degraded = 0;

	breakers_json(p, &br, 1, &degraded);
	streams_json(p, &st, 1, &degraded);
	clock_gettime(CLOCK_REALTIME, &ts);
	buf_printf(&b, "{\"time\":%.3f,\"status\":\"%s\",\"streams\":",
	    (double)ts.tv_sec + ts.tv_nsec / 1e9, degraded ? "degraded" : "ok");
	buf_append(&b, st.data, st.len);
	buf_printf(&b, ",\"breakers\":");
	buf_append(&b, br.data, br.len);
	buf_printf(&b, ",\"dedup\":");
	dedup_json(&b);
	for (i = 0; i < ROUTE_LABEL_N; i++)
		for (j = 0; j < MAX_STATUS; j++)
			total += load(&p->requests[i][j]);
	ratelimit_stats(p->rl, &rs);
	buf_printf(&b, ",\"proxy\":{\"requests\":%llu,\"rate_limited\":%llu,"
	    "\"clients\":%zu,\"ratelimit_memory_bytes\":%zu,"
	    "\"rate_per_min\":%g,\"burst\":%llu,\"upstreams\":[",
	    (unsigned long long)total, (unsigned long long)load(&p->rate_limited),
	    rs.clients, rs.memory, p->per_min, (unsigned long long)p->burst);
	for (i = 0; i < p->nup; i++) {
		struct upstream *u = &p->up[i];
		uint64_t n = 0;
		for (j = 0; j < U_N; j++)
			n += load(&u->outcomes[j]);
		buf_printf(&b, "%s{\"name\":\"%s\",\"requests\":%llu,"
		    "\"ok\":%llu}", i ? "," : "", u->name,
		    (unsigned long long)n,
		    (unsigned long long)load(&u->outcomes[U_OK]));
	}
	buf_printf(&b, "]}}");
	buf_release(&br);
	buf_release(&st);
	return respond_json(rq, conn, 200, &b, NULL);
}
