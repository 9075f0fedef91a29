/*
 * GET /metrics: the proxy's own counters (through lib/base/metrics, named in
 * lib/base/metricnames.h) merged with every .prom file of metrics/ into one valid
 * exposition (lib/format/promtext).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/fsutil.h"
#include "base/metricnames.h"
#include "base/metrics.h"
#include "format/promtext.h"

#include "proxy.h"

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

enum MHD_Result
metrics_serve(struct request *rq, struct MHD_Connection *conn)
{
	struct metrics own = METRICS_INIT;
	struct buf out = BUF_INIT;
	char mdir[PATH_MAX];
	const char **texts = NULL;
	size_t *lens = NULL, n = 0, nf, i, len;
	struct error e;
	char **files = NULL, *text;
	char *data;

	own_metrics(rq->p, &own);
	nf = 0;
	if (statedir_sub(mdir, sizeof(mdir), "metrics", &e) == 0)
		nf = files_list(mdir, 0, ".prom", &files);
	texts = calloc(nf + 1, sizeof(*texts));
	lens = calloc(nf + 1, sizeof(*lens));
	if (texts == NULL || lens == NULL) {
		free(texts);
		free(lens);
		names_free(files, nf);
		metrics_release(&own);
		return respond_error(rq, conn, 500, "out of memory", NULL);
	}
	texts[n] = own.text.data != NULL ? own.text.data : "";
	lens[n++] = own.text.len;
	for (i = 0; i < nf; i++) {
		if (files_read(mdir, files[i], METRICS_MAX_FILE, &text, &len,
		    NULL) == -1)
			continue;
		texts[n] = text;
		lens[n++] = len;
	}
	prom_merge(texts, lens, n, &out);
	for (i = 1; i < n; i++)
		free((void *)texts[i]);
	free(texts);
	free(lens);
	names_free(files, nf);
	metrics_release(&own);
	if (buf_cstr(&out) == NULL)
		return respond_error(rq, conn, 500, "out of memory", NULL);
	len = out.len;
	data = out.data;
	return respond(rq, conn, 200, "text/plain; version=0.0.4; charset=utf-8",
	    data, len, 1, "no-store", NULL);
}
