/*
 * Answers: the headers every answer carries (security headers, the rate
 * limit's, Cache-Control), JSON bodies and errors.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "proxy.h"

static int
add_header(struct MHD_Response *r, const char *name, const char *value)
{
	return MHD_add_response_header(r, name, value) == MHD_YES ? 0 : -1;
}

/* A header an upstream sent that cannot be passed on: said once an
 * upstream, and every time with -v. */
static void
dropped(const struct request *rq, const char *name, size_t namelen,
    const char *why)
{
	struct upstream *u = rq->up;

	if (u == NULL || (__atomic_exchange_n(&u->warned_header, 1,
	    __ATOMIC_RELAXED) && !rq->p->o->verbose))
		return;
	warnmsg("%s: %s: header %.*s dropped: %s", u->name, rq->target,
	    (int)(namelen < 64 ? namelen : 64), name, why);
}

/* Add "Name: value\n" lines (an upstream's, or the proxy's own) to r,
 * each only when its value is free of control bytes (a CR in it would
 * have made it two headers).  Returns nonzero when a Cache-Control was
 * added. */
static int
add_header_lines(const struct request *rq, struct MHD_Response *r,
    const struct buf *lines)
{
	char name[128], value[1024], why[64];
	const unsigned char *v;
	size_t i = 0, end, nl, vl, j;
	const char *line, *colon;
	int cache = 0;

	for (; i < lines->len; i = end + 1) {
		line = lines->data + i;
		end = i;
		while (end < lines->len && lines->data[end] != '\n')
			end++;
		if ((colon = memchr(line, ':', end - i)) == NULL)
			continue;
		nl = (size_t)(colon - line);
		if (nl >= sizeof(name)) {
			dropped(rq, line, nl, "name too long");
			continue;
		}
		v = (const unsigned char *)colon + 1;
		vl = end - i - nl - 1;
		for (; vl > 0 && (*v == ' ' || *v == '\t'); v++, vl--)
			;
		if (vl >= sizeof(value)) {
			dropped(rq, line, nl, "value too long");
			continue;
		}
		for (j = 0; j < vl; j++)
			if ((v[j] < 0x20 && v[j] != '\t') || v[j] == 0x7f)
				break;
		if (j < vl) {
			snprintf(why, sizeof(why), "a control byte (0x%02x) in "
			    "its value", v[j]);
			dropped(rq, line, nl, why);
			continue;
		}
		memcpy(name, line, nl);
		name[nl] = '\0';
		memcpy(value, v, vl);
		value[vl] = '\0';
		if (add_header(r, name, value) == -1) {
			dropped(rq, line, nl, "refused by libmicrohttpd");
			continue;
		}
		if (strcasecmp(name, "Cache-Control") == 0)
			cache = 1;
	}
	return cache;
}

/* Queue r with the headers every answer carries; r is released. */
static enum MHD_Result
queue(struct request *rq, struct MHD_Connection *conn, int status,
    struct MHD_Response *r, const char *ctype, const char *cache,
    const struct buf *extra)
{
	enum MHD_Result ret;
	char v[160];

	add_header(r, "Content-Security-Policy", PROXY_CSP);
	add_header(r, "X-Content-Type-Options", "nosniff");
	add_header(r, "Referrer-Policy", "no-referrer");
	add_header(r, "X-Frame-Options", "DENY");
	add_header(r, "Cross-Origin-Resource-Policy", "same-origin");
	if (ctype != NULL)
		add_header(r, "Content-Type", ctype);
	/* the proxy's Cache-Control, unless an upstream's got through */
	if ((extra == NULL || !add_header_lines(rq, r, extra)) && cache != NULL)
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
	rq->status = status;
	ret = MHD_queue_response(conn, (unsigned)status, r);
	MHD_destroy_response(r);
	return ret;
}

enum MHD_Result
respond(struct request *rq, struct MHD_Connection *conn, int status,
    const char *ctype, const char *body, size_t len, int owned,
    const char *cache, const struct buf *extra)
{
	struct MHD_Response *r;

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
	rq->bytes = len;
	return queue(rq, conn, status, r, ctype, cache, extra);
}

/* A HEAD answer's body: never asked for (libmicrohttpd sends none). */
static ssize_t
no_body(void *cls, uint64_t pos, char *buf, size_t max)
{
	(void)cls;
	(void)pos;
	(void)buf;
	(void)max;
	return MHD_CONTENT_READER_END_WITH_ERROR;
}

enum MHD_Result
respond_head(struct request *rq, struct MHD_Connection *conn, int status,
    const char *ctype, int64_t length, const char *cache,
    const struct buf *extra)
{
	struct MHD_Response *r;

	/* libmicrohttpd sends the size it is given as the Content-Length
	 * of a HEAD answer */
	r = MHD_create_response_from_callback(length >= 0 ? (uint64_t)length :
	    MHD_SIZE_UNKNOWN, 4096, no_body, NULL, NULL);
	if (r == NULL)
		return MHD_NO;
	/* of an unknown size, libmicrohttpd would announce chunks and
	 * send the last one after the head: HTTP/1.0's way instead (no
	 * length, the connection closed after the answer) */
	if (length < 0 && MHD_set_response_options(r,
	    MHD_RF_HTTP_1_0_COMPATIBLE_STRICT, MHD_RO_END) != MHD_YES) {
		MHD_destroy_response(r);
		return MHD_NO;
	}
	rq->bytes = 0;
	return queue(rq, conn, status, r, ctype, cache, extra);
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
