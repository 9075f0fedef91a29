/*
 * GET and HEAD /upstream/NAME/PATH: through the upstream's breaker, then
 * the call in the worker's event loop while the connection is suspended
 * (the server never waits for an upstream), answered when it has ended.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proxy.h"

const double upstream_buckets[PROXY_NBUCKETS] = {
	0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10
};

static void
observe(struct upstream *u, double seconds)
{
	size_t j;

	for (j = 0; j < PROXY_NBUCKETS && seconds > upstream_buckets[j]; j++)
		;
	count(&u->hist[j], 1);
	count(&u->sum_us, (uint64_t)(seconds * 1e6));
}

/* The call ended: hand the request back (answered by the next MHD_run). */
static void
on_upstream_done(void *arg, enum httpc_result res)
{
	struct request *rq = arg;

	rq->res = res;
	rq->up_state = UP_ENDED;
	MHD_resume_connection(rq->conn);
	/* libmicrohttpd answers it in the next MHD_run, which must come
	 * before the loop waits: it does not wake the loop itself */
	rq->w->resumed = 1;
}

enum MHD_Result
upstream_serve(struct request *rq, struct MHD_Connection *conn,
    const struct route *r)
{
	struct proxy *p = rq->p;
	struct upstream *u = &p->up[r->upstream];
	struct buf extra = BUF_INIT, b = BUF_INIT;
	enum MHD_Result ret;
	uint64_t retry_ms, retry_s;
	struct error e;
	int rc;

	rc = breaker_acquire(&u->br, &rq->ticket, &retry_ms, &e);
	if (rc == -1) {
		count(&u->outcomes[U_BREAKER_ERR], 1);
		if (p->o->verbose)
			warnmsg("%s: breaker: %s", u->name, e.msg);
		return respond_error(rq, conn, 500, "breaker state unreadable",
		    NULL);
	}
	if (rc == BREAKER_REFUSED) {
		count(&u->outcomes[U_OPEN], 1);
		retry_s = (retry_ms + 999) / 1000;
		if (retry_s == 0)
			retry_s = 1;
		buf_printf(&extra, "Retry-After: %llu\n",
		    (unsigned long long)retry_s);
		buf_printf(&b, "{\"error\":\"upstream unavailable\",\"upstream\":"
		    "\"%s\",\"retry_after_seconds\":%llu}", u->name,
		    (unsigned long long)retry_s);
		ret = respond_json(rq, conn, 503, &b, &extra);
		buf_release(&extra);
		return ret;
	}
	rq->up = u;
	rq->conn = conn;
	/* done is only ever called from the loop, after this returns */
	if (httpc_loop_submit(rq->w->loop, u->http, r->target, r->head, &rq->resp,
	    on_upstream_done, rq) == -1) {
		breaker_cancel(&rq->ticket);
		return respond_error(rq, conn, 503, rq->resp.error, NULL);
	}
	rq->up_state = UP_CALLING;
	MHD_suspend_connection(conn);
	return MHD_YES;
}

enum MHD_Result
upstream_answer(struct request *rq, struct MHD_Connection *conn)
{
	struct proxy *p = rq->p;
	struct upstream *u = rq->up;
	struct httpc_response *resp = &rq->resp;
	struct breaker_ticket *t = &rq->ticket;
	enum httpc_result res = rq->res;
	struct error e;
	int status;
	char *data;
	size_t len;

	rq->up_state = UP_ANSWERED;
	if (res == HTTPC_CANCELLED) {
		/* says nothing of the upstream's health */
		breaker_cancel(t);
		return respond_error(rq, conn, 503, "shutting down", NULL);
	}
	observe(u, resp->seconds);
	count(&u->outcomes[res], 1);
	if (res != HTTPC_OK && p->o->verbose)
		warnmsg("%s: %s: %s", u->name, rq->target, resp->error);
	switch (res) {
	case HTTPC_OK:
		status = (int)resp->status;
		if (status < 200 || status > 599) {
			breaker_record(&u->br, t, 0, &e);
			return respond_error(rq, conn, 502, "bad upstream status",
			    NULL);
		}
		breaker_record(&u->br, t, status < 500, &e);
		/* HEAD: the upstream's Content-Length, not that of no body */
		if (strcmp(rq->method, "HEAD") == 0)
			return respond_head(rq, conn, status,
			    resp->content_type[0] != '\0' ? resp->content_type :
			    "application/octet-stream", resp->length, "no-store",
			    &resp->headers);
		len = resp->body.len;
		if (buf_reserve(&resp->body, 1) == -1)
			return MHD_NO;
		data = resp->body.data != NULL ? resp->body.data : strdup("");
		resp->body.data = NULL;
		resp->body.len = resp->body.cap = 0;
		/* the upstream's Cache-Control when one passes, else ours */
		return respond(rq, conn, status, resp->content_type[0] != '\0' ?
		    resp->content_type : "application/octet-stream", data, len, 1,
		    "no-store", &resp->headers);
	case HTTPC_TIMEOUT:
		breaker_record(&u->br, t, 0, &e);
		return respond_error(rq, conn, 504, "upstream timed out", NULL);
	case HTTPC_TOO_BIG:
		/* the upstream answered: says nothing of its health */
		breaker_cancel(t);
		return respond_error(rq, conn, 502, "upstream response too large",
		    NULL);
	case HTTPC_DOWN:
	case HTTPC_ERROR:
	case HTTPC_CANCELLED:
		break;
	}
	breaker_record(&u->br, t, 0, &e);
	return respond_error(rq, conn, 502, res == HTTPC_DOWN ?
	    "upstream unreachable" : "bad upstream response", NULL);
}
