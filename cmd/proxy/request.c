/*
 * A request's life in libmicrohttpd's callbacks: its target kept
 * (request_begin), then admitted (a rate limit token, refused ones
 * included), routed (lib/net/route), authenticated and dispatched to its
 * room (request_handle), then counted and logged (request_end).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/clock.h"

#include "proxy.h"

void *
request_begin(void *cls, const char *uri, struct MHD_Connection *conn)
{
	struct worker *w = cls;
	struct proxy *p = w->p;
	struct request *rq;
	size_t len = strlen(uri), keep;

	keep = len > p->max_url ? p->max_url + 1 : len;
	if ((rq = malloc(sizeof(*rq) + keep + 1)) == NULL)
		return NULL;
	memset(rq, 0, sizeof(*rq));
	rq->p = p;
	rq->w = w;
	rq->start_us = clock_mono_us();
	rq->label = ROUTE_LABEL_OTHER;
	rq->len = len;
	memcpy(rq->target, uri, keep);
	rq->target[keep] = '\0';
	/*
	 * libmicrohttpd hands over the target as a C string, cut at the
	 * space before the version.  When the version does not follow the
	 * string's end, the target held a NUL byte (or stray spaces): the
	 * string is not all the client sent, and the request is refused.
	 */
	rq->nul = strncmp(uri + len + 1, "HTTP/", 5) != 0;
	count(&p->inflight, 1);
	server_request_line(conn, rq);
	return rq;
}

/* The client's address as text ("-" when unknown) into rq->client. */
static const struct sockaddr *
client_address(struct request *rq, struct MHD_Connection *conn)
{
	const union MHD_ConnectionInfo *ci;
	const struct sockaddr *sa = NULL;

	ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	if (ci != NULL && (sa = ci->client_addr) != NULL) {
		if (sa->sa_family == AF_INET)
			inet_ntop(AF_INET, &((const struct sockaddr_in *)
			    (const void *)sa)->sin_addr, rq->client,
			    sizeof(rq->client));
		else if (sa->sa_family == AF_INET6)
			inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)
			    (const void *)sa)->sin6_addr, rq->client,
			    sizeof(rq->client));
	}
	if (rq->client[0] == '\0')
		snprintf(rq->client, sizeof(rq->client), "-");
	return sa;
}

/* 429 with Retry-After. */
static enum MHD_Result
refuse_rate(struct request *rq, struct MHD_Connection *conn)
{
	struct buf extra = BUF_INIT, b = BUF_INIT;
	enum MHD_Result ret;

	count(&rq->p->rate_limited, 1);
	buf_printf(&extra, "Retry-After: %llu\n",
	    (unsigned long long)rq->rv.retry_after_s);
	buf_printf(&b, "{\"error\":\"rate limit exceeded\","
	    "\"retry_after_seconds\":%llu}",
	    (unsigned long long)rq->rv.retry_after_s);
	ret = respond_json(rq, conn, 429, &b, &extra);
	buf_release(&extra);
	return ret;
}

/* What the header check found. */
struct head_check {
	int hosts;		/* Host fields */
	int bad;		/* a control byte in a name or value */
};

static enum MHD_Result
check_field(void *cls, enum MHD_ValueKind kind, const char *key,
    size_t key_size, const char *value, size_t value_size)
{
	struct head_check *hc = cls;
	size_t i;

	(void)kind;
	if (key_size == 4 && strncasecmp(key, "host", 4) == 0)
		hc->hosts++;
	for (i = 0; i < key_size; i++)
		if ((unsigned char)key[i] <= 0x20 || key[i] == 0x7f)
			hc->bad = 1;
	for (i = 0; value != NULL && i < value_size; i++)
		if (((unsigned char)value[i] < 0x20 && value[i] != '\t') ||
		    value[i] == 0x7f)
			hc->bad = 1;
	return MHD_YES;
}

/*
 * The head's fields, as libmicrohttpd leaves them: a control byte (a
 * lone CR among them) in a name or value, no Host in an HTTP/1.1
 * request, or more than one Host, is a bad request (RFC 9112 3.2,
 * RFC 9110 5.5).  NULL when the head is good, else what is wrong.
 */
static const char *
head_refusal(struct MHD_Connection *conn, const char *version)
{
	struct head_check hc = { 0, 0 };

	MHD_get_connection_values_n(conn, MHD_HEADER_KIND, check_field, &hc);
	if (hc.bad)
		return "bad header field";
	if (hc.hosts > 1)
		return "more than one Host";
	if (hc.hosts == 0 && strcmp(version, MHD_HTTP_VERSION_1_0) != 0)
		return "missing Host";
	return NULL;
}

/* An error answer with one extra header line. */
static enum MHD_Result
refuse_with(struct request *rq, struct MHD_Connection *conn, int status,
    const char *msg, const char *header)
{
	struct buf extra = BUF_INIT;
	enum MHD_Result ret;

	buf_printf(&extra, "%s\n", header);
	ret = respond_error(rq, conn, status, msg, &extra);
	buf_release(&extra);
	return ret;
}

enum MHD_Result
request_handle(void *cls, struct MHD_Connection *conn, const char *url,
    const char *method, const char *version, const char *upload_data,
    size_t *upload_data_size, void **req_cls)
{
	struct proxy *p = cls;
	struct request *rq = *req_cls;
	const struct sockaddr *sa;
	struct route r;
	const char *authz, *bad;

	(void)url;
	(void)upload_data;
	if (rq == NULL)
		return MHD_NO;
	if (rq->up_state != UP_NONE) {
		*upload_data_size = 0;	/* a body: never sent on */
		if (rq->up_state == UP_ENDED)
			return upstream_answer(rq, conn);
		return MHD_YES;
	}
	if (rq->answered) {
		*upload_data_size = 0;	/* a body: never sent on */
		return MHD_YES;
	}
	/*
	 * libmicrohttpd keeps the connection alive only for an answer
	 * queued after the first call.  A request with a body is answered
	 * at once (and its connection closed) rather than read to its end.
	 */
	if (!rq->seen) {
		rq->seen = 1;
		/* timed out or shed while its head came in: already answered */
		if (!server_head_done(conn))
			return MHD_NO;
		if (MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
		    MHD_HTTP_HEADER_CONTENT_LENGTH) == NULL &&
		    MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
		    MHD_HTTP_HEADER_TRANSFER_ENCODING) == NULL)
			return MHD_YES;
	}
	rq->answered = 1;
	snprintf(rq->method, sizeof(rq->method), "%s", method);
	rq->methodlen = strlen(method);
	sa = client_address(rq, conn);

	/* every request costs a token, refused ones included */
	ratelimit_take_addr(p->rl, sa, clock_mono_us(), &rq->rv);
	rq->have_rv = 1;
	if (!rq->rv.allowed)
		return refuse_rate(rq, conn);

	if ((bad = head_refusal(conn, version)) != NULL)
		return respond_error(rq, conn, 400, bad, NULL);
	if (rq->nul)
		return respond_error(rq, conn, 403,
		    route_refusal_name(ROUTE_BAD_TARGET), NULL);
	route_match(p->rt, p->nup, method, rq->target, rq->len, p->max_url, &r);
	rq->label = r.label;
	if (r.refusal == ROUTE_TOO_LONG || r.refusal == ROUTE_BAD_TARGET)
		return respond_error(rq, conn, r.status,
		    route_refusal_name(r.refusal), NULL);
	if (r.refusal == ROUTE_BAD_METHOD)
		return refuse_with(rq, conn, 405, "method not allowed",
		    "Allow: GET, HEAD");
	if (r.auth && p->toklen > 0) {
		authz = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
		    MHD_HTTP_HEADER_AUTHORIZATION);
		if (!route_bearer_ok(authz, p->token, p->toklen))
			return refuse_with(rq, conn, 401, "unauthorized",
			    "WWW-Authenticate: Bearer realm=\"aistack-proxy\"");
	}
	switch (r.kind) {
	case ROUTE_REFUSED:
		return respond_error(rq, conn, r.status,
		    route_refusal_name(r.refusal), NULL);
	case ROUTE_DASHBOARD:
		return dashboard_serve(rq, conn, &r);
	case ROUTE_HEALTH:
		return status_health(rq, conn);
	case ROUTE_METRICS:
		return metrics_serve(rq, conn);
	case ROUTE_STATS:
		return status_stats(rq, conn);
	case ROUTE_UPSTREAM:
		return upstream_serve(rq, conn, &r);
	}
	return MHD_NO;
}

/*
 * A request has ended: count it and log its line, held in its worker's
 * batch until the loop has handled its batch of events (one write a
 * batch rather than one a request) or the lines make a batch.
 */
void
request_end(void *cls, struct MHD_Connection *conn, void **req_cls,
    enum MHD_RequestTerminationCode toe)
{
	struct proxy *p = cls;
	struct request *rq = *req_cls;
	const struct sockaddr *sa;

	server_request_done(conn);
	if (rq == NULL)
		return;
	*req_cls = NULL;
	sa = rq->client[0] == '\0' ? client_address(rq, conn) : NULL;
	/* one libmicrohttpd answered itself costs a token all the same */
	if (!rq->have_rv && rq->status == 0 && sa != NULL)
		ratelimit_take_addr(p->rl, sa, clock_mono_us(), &rq->rv);
	if (rq->status >= 100 && rq->status < MAX_STATUS)
		count(&p->requests[rq->label][rq->status], 1);
	accesslog_add(rq, toe);
	__atomic_fetch_sub(&p->inflight, 1, __ATOMIC_RELAXED);
	httpc_response_release(&rq->resp);
	free(rq);
}
