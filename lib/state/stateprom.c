#include <string.h>

#include "base/metricnames.h"
#include "stateprom.h"

/*
 * Each family is written whole (its samples together, as the text format
 * requires), walking the view once per family: a few dozen walks of a
 * view of tens of streams.
 */

static const char *const forms[] = { "plain", "gz" };

static int
streams(const struct stateview *v, struct metrics *m)
{
	const struct sv_stream *s;
	size_t i, k;
	int rc = 0;

#define EACH	for (i = 0; i < v->nstreams; i++) \
			if ((s = &v->streams[i])->ok)
#define EACH_COUNTED	EACH if (s->have_counters)
	rc |= metrics_family(m, MN_STREAM_HEAD, "gauge", MH_STREAM_HEAD);
	EACH rc |= metrics_sample(m, MN_STREAM_HEAD, (double)s->head,
	    "stream", s->name, NULL);
	rc |= metrics_family(m, MN_STREAM_FIRST, "gauge", MH_STREAM_FIRST);
	EACH rc |= metrics_sample(m, MN_STREAM_FIRST, (double)s->first,
	    "stream", s->name, NULL);
	rc |= metrics_family(m, MN_STREAM_BACKLOG, "gauge", MH_STREAM_BACKLOG);
	EACH rc |= metrics_sample(m, MN_STREAM_BACKLOG, (double)s->backlog,
	    "stream", s->name, NULL);
	rc |= metrics_family(m, MN_STREAM_MAX_BACKLOG, "gauge",
	    MH_STREAM_MAX_BACKLOG);
	EACH_COUNTED rc |= metrics_sample(m, MN_STREAM_MAX_BACKLOG,
	    (double)s->ctr.max_backlog, "stream", s->name, NULL);
	rc |= metrics_family(m, MN_STREAM_DISK, "gauge", MH_STREAM_DISK);
	EACH for (k = 0; k < 2; k++)
		rc |= metrics_sample(m, MN_STREAM_DISK, (double)(k ?
		    s->disk_gz : s->disk_plain), "stream", s->name, "form",
		    forms[k], NULL);
	rc |= metrics_family(m, MN_STREAM_SEGMENTS, "gauge", MH_STREAM_SEGMENTS);
	EACH for (k = 0; k < 2; k++)
		rc |= metrics_sample(m, MN_STREAM_SEGMENTS, (double)(k ?
		    s->segments_gz : s->segments_plain), "stream", s->name,
		    "form", forms[k], NULL);
	rc |= metrics_family(m, MN_INGEST_PAUSED, "gauge", MH_INGEST_PAUSED);
	EACH rc |= metrics_sample(m, MN_INGEST_PAUSED, s->paused ? 1 : 0,
	    "stream", s->name, NULL);
	rc |= metrics_family(m, MN_INGEST_RECORDS, "counter", MH_INGEST_RECORDS);
	EACH_COUNTED {
		rc |= metrics_sample(m, MN_INGEST_RECORDS, (double)s->ctr.records,
		    "stream", s->name, "result", "appended", NULL);
		rc |= metrics_sample(m, MN_INGEST_RECORDS,
		    (double)s->ctr.rejected, "stream", s->name, "result",
		    "rejected", NULL);
		rc |= metrics_sample(m, MN_INGEST_RECORDS, (double)s->ctr.empty,
		    "stream", s->name, "result", "empty", NULL);
	}
	rc |= metrics_family(m, MN_INGEST_BYTES, "counter", MH_INGEST_BYTES);
	EACH_COUNTED rc |= metrics_sample(m, MN_INGEST_BYTES,
	    (double)s->ctr.bytes, "stream", s->name, NULL);
#undef EACH_COUNTED
#undef EACH
	return rc;
}

static int
consumers(const struct stateview *v, struct metrics *m)
{
	const struct sv_stream *s;
	const struct sv_consumer *c;
	size_t i, j;
	int rc = 0;

#define EACH	for (i = 0; i < v->nstreams; i++) \
			if ((s = &v->streams[i])->ok) \
				for (j = 0; j < s->nconsumers; j++) \
					if ((c = &s->consumers[j]) != NULL)
	rc |= metrics_family(m, MN_CONSUMER_LAG, "gauge", MH_CONSUMER_LAG);
	EACH rc |= metrics_sample(m, MN_CONSUMER_LAG, (double)c->lag,
	    "stream", s->name, "consumer", c->name, NULL);
	rc |= metrics_family(m, MN_CONSUMER_COMMITTED, "gauge",
	    MH_CONSUMER_COMMITTED);
	EACH rc |= metrics_sample(m, MN_CONSUMER_COMMITTED,
	    (double)c->st.committed, "stream", s->name, "consumer", c->name,
	    NULL);
	rc |= metrics_family(m, MN_CONSUMER_UPDATED, "gauge",
	    MH_CONSUMER_UPDATED);
	EACH if (c->updated != 0)
		rc |= metrics_sample(m, MN_CONSUMER_UPDATED, (double)c->updated,
		    "stream", s->name, "consumer", c->name, NULL);
	rc |= metrics_family(m, MN_CONSUMER_RECORDS, "counter",
	    MH_CONSUMER_RECORDS);
	EACH rc |= metrics_sample(m, MN_CONSUMER_RECORDS, (double)c->st.records,
	    "stream", s->name, "consumer", c->name, NULL);
	rc |= metrics_family(m, MN_CONSUMER_FAILED, "counter",
	    MH_CONSUMER_FAILED);
	EACH rc |= metrics_sample(m, MN_CONSUMER_FAILED,
	    (double)c->st.batches_failed, "stream", s->name, "consumer",
	    c->name, NULL);
#undef EACH
	return rc;
}

static int
sources(const struct stateview *v, struct metrics *m)
{
	const struct sv_stream *s;
	const struct sv_source *f;
	size_t i, j;
	int rc = 0;

#define EACH	for (i = 0; i < v->nstreams; i++) \
			if ((s = &v->streams[i])->ok) \
				for (j = 0; j < s->nsources; j++) \
					if ((f = &s->sources[j])->have_counters)
#define SOURCE	(f->path[0] != '\0' ? f->path : f->key)
	rc |= metrics_family(m, MN_FOLLOW_LINES, "counter", MH_FOLLOW_LINES);
	EACH rc |= metrics_sample(m, MN_FOLLOW_LINES, (double)f->lines,
	    "stream", s->name, "source", SOURCE, NULL);
	rc |= metrics_family(m, MN_FOLLOW_LOST, "counter", MH_FOLLOW_LOST);
	EACH rc |= metrics_sample(m, MN_FOLLOW_LOST, (double)f->lost_bytes,
	    "stream", s->name, "source", SOURCE, NULL);
#undef SOURCE
#undef EACH
	return rc;
}

static int
breakers(const struct stateview *v, struct metrics *m)
{
	static const char *const results[] = { "success", "failure",
	    "ignored", "refused" };
	static const enum breaker_state states[] = { BREAKER_CLOSED,
	    BREAKER_HALF_OPEN, BREAKER_OPEN };
	const struct sv_breaker *b;
	size_t i, k;
	int rc = 0;

#define EACH	for (i = 0; i < v->nbreakers; i++) \
			if ((b = &v->breakers[i])->ok)
	rc |= metrics_family(m, MN_BREAKER_STATE, "gauge", MH_BREAKER_STATE);
	EACH rc |= metrics_sample(m, MN_BREAKER_STATE, (double)b->st.state,
	    "breaker", b->st.name, NULL);
	rc |= metrics_family(m, MN_BREAKER_FAILURES, "gauge",
	    MH_BREAKER_FAILURES);
	EACH rc |= metrics_sample(m, MN_BREAKER_FAILURES,
	    (double)b->st.data.failures, "breaker", b->st.name, NULL);
	rc |= metrics_family(m, MN_BREAKER_RETRY_IN, "gauge",
	    MH_BREAKER_RETRY_IN);
	EACH rc |= metrics_sample(m, MN_BREAKER_RETRY_IN,
	    (double)b->st.retry_in_ms / 1000.0, "breaker", b->st.name, NULL);
	rc |= metrics_family(m, MN_BREAKER_CALLS, "counter", MH_BREAKER_CALLS);
	EACH for (k = 0; k < 4; k++) {
		const uint64_t n[] = { b->ctr.success, b->ctr.failure,
		    b->ctr.ignored, b->ctr.refused };
		rc |= metrics_sample(m, MN_BREAKER_CALLS, (double)n[k],
		    "breaker", b->st.name, "result", results[k], NULL);
	}
	rc |= metrics_family(m, MN_BREAKER_TRANSITIONS, "counter",
	    MH_BREAKER_TRANSITIONS);
	EACH for (k = 0; k < 3; k++) {
		const uint64_t n[] = { b->st.data.closed, b->st.data.half_opened,
		    b->st.data.opened };
		rc |= metrics_sample(m, MN_BREAKER_TRANSITIONS, (double)n[k],
		    "breaker", b->st.name, "to", breaker_state_name(states[k]),
		    NULL);
	}
	rc |= metrics_family(m, MN_BREAKER_LAST_SUCCESS, "gauge",
	    MH_BREAKER_LAST_SUCCESS);
	EACH if (b->ctr.last_success != 0)
		rc |= metrics_sample(m, MN_BREAKER_LAST_SUCCESS,
		    (double)b->ctr.last_success, "breaker", b->st.name, NULL);
#undef EACH
	return rc;
}

static int
dedup(const struct stateview *v, struct metrics *m)
{
	const struct sv_dedup *d;
	size_t i;
	int rc = 0;

#define EACH	for (i = 0; i < v->ndedup; i++) \
			if ((d = &v->dedup[i])->ok)
#define KIND	(d->index ? "index" : "state")
	rc |= metrics_family(m, MN_DEDUP_KEYS, "gauge", MH_DEDUP_KEYS);
	EACH rc |= metrics_sample(m, MN_DEDUP_KEYS, (double)d->keys, "state",
	    d->label, "kind", KIND, NULL);
	rc |= metrics_family(m, MN_DEDUP_DISK, "gauge", MH_DEDUP_DISK);
	EACH rc |= metrics_sample(m, MN_DEDUP_DISK, (double)d->disk_bytes,
	    "state", d->label, "kind", KIND, NULL);
	rc |= metrics_family(m, MN_DEDUP_RECORDS, "counter", MH_DEDUP_RECORDS);
	EACH if (d->have_counters) {
		rc |= metrics_sample(m, MN_DEDUP_RECORDS, (double)d->unique,
		    "state", d->label, "kind", KIND, "result", "unique", NULL);
		rc |= metrics_sample(m, MN_DEDUP_RECORDS,
		    (double)(d->duplicates - d->near), "state", d->label,
		    "kind", KIND, "result", "duplicate", NULL);
		rc |= metrics_sample(m, MN_DEDUP_RECORDS, (double)d->near,
		    "state", d->label, "kind", KIND, "result", "near_duplicate",
		    NULL);
	}
#undef KIND
#undef EACH
	return rc;
}

int
stateprom_render(const struct stateview *v, struct metrics *m)
{
	int rc = 0;

	rc |= streams(v, m);
	rc |= consumers(v, m);
	rc |= sources(v, m);
	rc |= breakers(v, m);
	rc |= dedup(v, m);
	return rc != 0 ? -1 : 0;
}
