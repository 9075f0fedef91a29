/*
 * Answers: the headers every answer carries (security headers, the rate
 * limit's, Cache-Control), JSON bodies and errors.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proxy.h"

static int
add_header(struct MHD_Response *r, const char *name, const char *value)
{
	return MHD_add_response_header(r, name, value) == MHD_YES ? 0 : -1;
}

/* Add "Name: value\n" lines (from an upstream) to r. */
static void
add_header_lines(struct MHD_Response *r, const struct buf *lines)
{
	char name[128], value[1024];
	size_t i = 0, end, nl;
	const char *colon;

	while (i < lines->len) {
		end = i;
		while (end < lines->len && lines->data[end] != '\n')
			end++;
		colon = memchr(lines->data + i, ':', end - i);
		if (colon != NULL) {
			nl = (size_t)(colon - (lines->data + i));
			if (nl < sizeof(name) && end - nl - i - 2 < sizeof(value) &&
			    end >= i + nl + 2) {
				memcpy(name, lines->data + i, nl);
				name[nl] = '\0';
				memcpy(value, colon + 2, end - i - nl - 2);
				value[end - i - nl - 2] = '\0';
				add_header(r, name, value);
			}
		}
		i = end + 1;
	}
}

enum MHD_Result
respond(struct request *rq, struct MHD_Connection *conn, int status,
    const char *ctype, const char *body, size_t len, int owned,
    const char *cache, const struct buf *extra)
{
	struct MHD_Response *r;
	enum MHD_Result ret;
	char v[160];

	if (owned)
		r = MHD_create_response_from_buffer_with_free_callback(len,
		    (void *)body, free);
	else
		r = MHD_create_response_from_buffer(len, (void *)body,
		    MHD_RESPMEM_PERSISTENT);
	if (r == NULL) {
		if (owned)
			free((void *)body);
		return MHD_NO;
	}
	add_header(r, "Content-Security-Policy", PROXY_CSP);
	add_header(r, "X-Content-Type-Options", "nosniff");
	add_header(r, "Referrer-Policy", "no-referrer");
	add_header(r, "X-Frame-Options", "DENY");
	add_header(r, "Cross-Origin-Resource-Policy", "same-origin");
	if (ctype != NULL)
		add_header(r, "Content-Type", ctype);
	if (cache != NULL)
		add_header(r, "Cache-Control", cache);
	if (rq->have_rv) {
		snprintf(v, sizeof(v), "\"client\";q=%llu;w=%llu",
		    (unsigned long long)rq->p->burst, (unsigned long long)
		    ceil((double)rq->p->burst * 60.0 / rq->p->per_min));
		add_header(r, "RateLimit-Policy", v);
		snprintf(v, sizeof(v), "\"client\";r=%llu;t=%llu",
		    (unsigned long long)rq->rv.remaining,
		    (unsigned long long)rq->rv.reset_s);
		add_header(r, "RateLimit", v);
	}
	if (extra != NULL)
		add_header_lines(r, extra);
	rq->status = status;
	rq->bytes = len;
	ret = MHD_queue_response(conn, (unsigned)status, r);
	MHD_destroy_response(r);
	return ret;
}

enum MHD_Result
respond_json(struct request *rq, struct MHD_Connection *conn, int status,
    struct buf *b, const struct buf *extra)
{
	size_t len;
	char *data;

	if (buf_putc(b, '\n') == -1) {
		buf_release(b);
		return MHD_NO;
	}
	len = b->len;
	data = b->data;
	b->data = NULL;
	b->len = b->cap = 0;
	return respond(rq, conn, status, "application/json", data, len, 1,
	    "no-store", extra);
}

enum MHD_Result
respond_error(struct request *rq, struct MHD_Connection *conn, int status,
    const char *msg, const struct buf *extra)
{
	struct buf b = BUF_INIT;

	buf_printf(&b, "{\"error\":\"");
	buf_json_escape(&b, msg, strlen(msg));
	buf_printf(&b, "\"}");
	return respond_json(rq, conn, status, &b, extra);
}
