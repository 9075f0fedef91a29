#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>

#include "exitcode.h"
#include "httpclient.h"

#define POOL_MAX	64
#define MAX_HEADERS	(64 * 1024)
#define LOOP_MAX_IDLE	256

struct httpc {
	char *base;
	size_t baselen;
	uint64_t timeout_ms;
	size_t max_response;
	char *user_agent;
	struct curl_slist *req_headers;
	pthread_mutex_t mu;
	CURL *pool[POOL_MAX];	/* idle handles, each with its connections */
	size_t npool;
};

/* One call: what it collects, shared with the callbacks. */
struct call {
	struct httpc *c;
	CURL *h;
	struct httpc_response *r;
	int too_big;
	struct buf url;
	struct buf connection;	/* the Connection header's tokens */
	struct buf raw;		/* end-to-end headers seen */
	size_t header_bytes;
	char errbuf[CURL_ERROR_SIZE];
	/* httpc_loop_submit's */
	httpc_done_fn *done;
	void *arg;
	struct call *next, *prev;
};

/* The event loop of httpc_loop_start: one thread, one multi handle. */
struct httpc_loop {
	CURLM *m;
	pthread_t thread;
	pthread_mutex_t mu;
	struct call *queue;	/* submitted, not yet added (under mu) */
	struct call **qtail;	/* where the next one goes (under mu) */
	int stopping;		/* under mu */
	struct call *active;	/* added to m (the loop's thread only) */
};

int
httpc_global_init(struct error *e)
{
	CURLcode rc;

	if ((rc = curl_global_init(CURL_GLOBAL_DEFAULT)) != CURLE_OK)
		return error_set(e, EXIT_SOFTWARE, "libcurl: %s",
		    curl_easy_strerror(rc));
	return 0;
}

void
httpc_global_cleanup(void)
{
	curl_global_cleanup();
}

const char *
httpc_result_name(enum httpc_result r)
{
	switch (r) {
	case HTTPC_OK:
		return "ok";
	case HTTPC_DOWN:
		return "down";
	case HTTPC_TIMEOUT:
		return "timeout";
	case HTTPC_TOO_BIG:
		return "too_big";
	case HTTPC_ERROR:
		return "error";
	case HTTPC_CANCELLED:
		return "cancelled";
	}
	return "error";
}

static int
name_is(const char *name, size_t n, const char *s)
{
	return strlen(s) == n && strncasecmp(name, s, n) == 0;
}

int
httpc_hop_by_hop(const char *name, size_t n)
{
	static const char *const hop[] = {
		"Connection", "Keep-Alive", "Proxy-Authenticate",
		"Proxy-Authorization", "Proxy-Connection", "TE", "Trailer",
		"Trailers", "Transfer-Encoding", "Upgrade",
	};
	size_t i;

	for (i = 0; i < sizeof(hop) / sizeof(hop[0]); i++)
		if (name_is(name, n, hop[i]))
			return 1;
	return 0;
}

int
httpc_header_kept(const char *name, size_t n)
{
	static const char *const kept[] = {
		"Cache-Control", "Content-Language", "ETag", "Expires",
		"Last-Modified", "Retry-After",
	};
	size_t i;

	if (httpc_hop_by_hop(name, n))
		return 0;
	for (i = 0; i < sizeof(kept) / sizeof(kept[0]); i++)
		if (name_is(name, n, kept[i]))
			return 1;
	return 0;
}

int
httpc_content_type_kept(const char *v)
{
	static const char *const types[] = {
		"application/json", "text/plain", "text/csv",
		"application/x-ndjson", "application/jsonl",
		"application/problem+json",
	};
	size_t n, i;

	while (*v == ' ' || *v == '\t')
		v++;
	for (n = 0; v[n] != '\0' && v[n] != ';' && v[n] != ' ' &&
	    v[n] != '\t'; n++)
		;
	for (i = 0; i < sizeof(types) / sizeof(types[0]); i++)
		if (name_is(v, n, types[i]))
			return 1;
	/* application/<anything>+json */
	if (n > 17 && strncasecmp(v, "application/", 12) == 0 &&
	    strncasecmp(v + n - 5, "+json", 5) == 0)
		return 1;
	return 0;
}

struct httpc *
httpc_new(const char *base_url, uint64_t timeout_ms, size_t max_response,
    const char *user_agent, struct error *e)
{
	struct httpc *c;
	const char *host;
	size_t n;

	if (strncmp(base_url, "http://", 7) == 0)
		host = base_url + 7;
	else if (strncmp(base_url, "https://", 8) == 0)
		host = base_url + 8;
	else {
		error_set(e, EXIT_CONFIG, "%s: not an http or https URL",
		    base_url);
		return NULL;
	}
	if (host[0] == '\0' || host[0] == '/' || strpbrk(base_url, "?#@ \t\r\n\\")
	    != NULL) {
		error_set(e, EXIT_CONFIG, "%s: a base URL has a host and no "
		    "query, fragment, user information or space", base_url);
		return NULL;
	}
	if ((c = calloc(1, sizeof(*c))) == NULL) {
		error_errno(e, EXIT_SOFTWARE, "upstream");
		return NULL;
	}
	pthread_mutex_init(&c->mu, NULL);
	c->base = strdup(base_url);
	c->user_agent = strdup(user_agent);
	c->req_headers = curl_slist_append(NULL,
	    "Accept: application/json, text/plain;q=0.9");
	if (c->base == NULL || c->user_agent == NULL || c->req_headers == NULL) {
		httpc_free(c);
		error_errno(e, EXIT_SOFTWARE, "upstream");
		return NULL;
	}
	n = strlen(c->base);
	while (n > 0 && c->base[n - 1] == '/')
		c->base[--n] = '\0';
	c->baselen = n;
	c->timeout_ms = timeout_ms;
	c->max_response = max_response;
	return c;
}

void
httpc_free(struct httpc *c)
{
	size_t i;

	if (c == NULL)
		return;
	for (i = 0; i < c->npool; i++)
		curl_easy_cleanup(c->pool[i]);
	curl_slist_free_all(c->req_headers);
	pthread_mutex_destroy(&c->mu);
	free(c->base);
	free(c->user_agent);
	free(c);
}

static size_t
on_body(char *p, size_t size, size_t nmemb, void *arg)
{
	struct call *k = arg;
	size_t n = size * nmemb;

	if (k->r->body.len + n > k->c->max_response) {
		k->too_big = 1;
		return 0;
	}
	if (buf_append(&k->r->body, p, n) == -1)
		return 0;
	return n;
}

static void
trim(const char **p, size_t *n)
{
	while (*n > 0 && ((*p)[0] == ' ' || (*p)[0] == '\t')) {
		(*p)++;
		(*n)--;
	}
	while (*n > 0 && ((*p)[*n - 1] == ' ' || (*p)[*n - 1] == '\t' ||
	    (*p)[*n - 1] == '\r' || (*p)[*n - 1] == '\n'))
		(*n)--;
}

static size_t
on_header(char *p, size_t size, size_t nmemb, void *arg)
{
	struct call *k = arg;
	size_t n = size * nmemb, namelen, vlen;
	const char *colon, *v;

	k->header_bytes += n;
	if (k->header_bytes > MAX_HEADERS)
		return 0;
	if (n >= 5 && memcmp(p, "HTTP/", 5) == 0) {
		/* a new answer (after a 1xx): forget the last one's */
		k->raw.len = 0;
		k->connection.len = 0;
		k->r->content_type[0] = '\0';
		return n;
	}
	if ((colon = memchr(p, ':', n)) == NULL)
		return n;
	namelen = (size_t)(colon - p);
	v = colon + 1;
	vlen = n - namelen - 1;
	trim(&v, &vlen);
	if (name_is(p, namelen, "Connection")) {
		if (buf_append(&k->connection, v, vlen) == -1 ||
		    buf_putc(&k->connection, ',') == -1)
			return 0;
		return n;
	}
	if (name_is(p, namelen, "Content-Type")) {
		char ct[sizeof(k->r->content_type)];
		if (vlen < sizeof(ct)) {
			memcpy(ct, v, vlen);
			ct[vlen] = '\0';
			if (httpc_content_type_kept(ct) &&
			    strpbrk(ct, "\r\n") == NULL)
				memcpy(k->r->content_type, ct, vlen + 1);
		}
		return n;
	}
	if (!httpc_header_kept(p, namelen))
		return n;
	if (buf_append(&k->raw, p, namelen) == -1 ||
	    buf_append(&k->raw, ": ", 2) == -1 ||
	    buf_append(&k->raw, v, vlen) == -1 || buf_putc(&k->raw, '\n') == -1)
		return 0;
	return n;
}

/* Nonzero when the Connection header named the header at p. */
static int
named_by_connection(const struct buf *conn, const char *p, size_t n)
{
	size_t i = 0, start, len;
	const char *t;

	while (i < conn->len) {
		start = i;
		while (i < conn->len && conn->data[i] != ',')
			i++;
		t = conn->data + start;
		len = i - start;
		trim(&t, &len);
		if (len == n && strncasecmp(t, p, n) == 0)
			return 1;
		i++;
	}
	return 0;
}

/* Copy the kept headers of k->raw to r->headers, leaving out those that
 * the Connection header made hop-by-hop. */
static int
keep_headers(struct call *k)
{
	size_t i = 0, end, namelen;
	const char *line;

	while (i < k->raw.len) {
		line = k->raw.data + i;
		end = i;
		while (end < k->raw.len && k->raw.data[end] != '\n')
			end++;
		namelen = (size_t)((const char *)memchr(line, ':', end - i) -
		    line);
		if (!named_by_connection(&k->connection, line, namelen) &&
		    buf_append(&k->r->headers, line, end - i + 1) == -1)
			return -1;
		i = end + 1;
	}
	return 0;
}

static CURL *
handle_get(struct httpc *c)
{
	CURL *h = NULL;

	pthread_mutex_lock(&c->mu);
	if (c->npool > 0)
		h = c->pool[--c->npool];
	pthread_mutex_unlock(&c->mu);
	if (h != NULL)
		return h;
	if ((h = curl_easy_init()) == NULL)
		return NULL;
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)c->timeout_ms);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, (long)c->timeout_ms);
	curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(h, CURLOPT_USERAGENT, c->user_agent);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, c->req_headers);
	curl_easy_setopt(h, CURLOPT_ACCEPT_ENCODING, "");
	curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(h, CURLOPT_TCP_NODELAY, 1L);
	curl_easy_setopt(h, CURLOPT_MAXFILESIZE_LARGE,
	    (curl_off_t)c->max_response);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
	return h;
}

static void
handle_put(struct httpc *c, CURL *h)
{
	pthread_mutex_lock(&c->mu);
	if (c->npool < POOL_MAX) {
		c->pool[c->npool++] = h;
		h = NULL;
	}
	pthread_mutex_unlock(&c->mu);
	if (h != NULL)
		curl_easy_cleanup(h);
}

/* Set up k for GET (HEAD) of c's base URL + target on a pooled handle;
 * -1 with r->error set. */
static int
call_begin(struct call *k, struct httpc *c, const char *target, int head,
    struct httpc_response *r)
{
	r->status = 0;
	r->body.len = 0;
	r->headers.len = 0;
	r->content_type[0] = '\0';
	r->error[0] = '\0';
	r->seconds = 0;
	memset(k, 0, sizeof(*k));
	k->c = c;
	k->r = r;
	if ((k->h = handle_get(c)) == NULL || buf_append(&k->url, c->base,
	    c->baselen) == -1 || buf_printf(&k->url, "%s", target) == -1) {
		if (k->h != NULL)
			handle_put(c, k->h);
		buf_release(&k->url);
		snprintf(r->error, sizeof(r->error), "out of memory");
		return -1;
	}
	curl_easy_setopt(k->h, CURLOPT_URL, buf_cstr(&k->url));
	if (head)
		curl_easy_setopt(k->h, CURLOPT_NOBODY, 1L);
	else
		curl_easy_setopt(k->h, CURLOPT_HTTPGET, 1L);
	curl_easy_setopt(k->h, CURLOPT_WRITEDATA, k);
	curl_easy_setopt(k->h, CURLOPT_HEADERDATA, k);
	curl_easy_setopt(k->h, CURLOPT_ERRORBUFFER, k->errbuf);
	curl_easy_setopt(k->h, CURLOPT_PRIVATE, k);
	return 0;
}

/* The result of k's transfer, which ended with rc; gives the handle back. */
static enum httpc_result
call_end(struct call *k, CURLcode rc)
{
	struct httpc_response *r = k->r;
	enum httpc_result res;
	double t = 0;

	curl_easy_getinfo(k->h, CURLINFO_TOTAL_TIME, &t);
	r->seconds = t;
	curl_easy_getinfo(k->h, CURLINFO_RESPONSE_CODE, &r->status);
	curl_easy_setopt(k->h, CURLOPT_ERRORBUFFER, NULL);
	curl_easy_setopt(k->h, CURLOPT_WRITEDATA, NULL);
	curl_easy_setopt(k->h, CURLOPT_HEADERDATA, NULL);
	curl_easy_setopt(k->h, CURLOPT_PRIVATE, NULL);
	switch (rc) {
	case CURLE_OK:
		res = keep_headers(k) == 0 ? HTTPC_OK : HTTPC_ERROR;
		break;
	case CURLE_COULDNT_CONNECT:
	case CURLE_COULDNT_RESOLVE_HOST:
		res = HTTPC_DOWN;
		break;
	case CURLE_OPERATION_TIMEDOUT:
		res = HTTPC_TIMEOUT;
		break;
	case CURLE_FILESIZE_EXCEEDED:
		res = HTTPC_TOO_BIG;
		break;
	case CURLE_WRITE_ERROR:
		res = k->too_big ? HTTPC_TOO_BIG : HTTPC_ERROR;
		break;
	default:
		res = HTTPC_ERROR;
		break;
	}
	if (rc != CURLE_OK)
		snprintf(r->error, sizeof(r->error), "%s",
		    k->errbuf[0] != '\0' ? k->errbuf : curl_easy_strerror(rc));
	if (res == HTTPC_TOO_BIG)
		snprintf(r->error, sizeof(r->error), "response larger than "
		    "%zu bytes", k->c->max_response);
	buf_release(&k->url);
	buf_release(&k->raw);
	buf_release(&k->connection);
	handle_put(k->c, k->h);
	k->h = NULL;
	return res;
}

enum httpc_result
httpc_get(struct httpc *c, const char *target, int head,
    struct httpc_response *r)
{
	struct call k;

	if (call_begin(&k, c, target, head, r) == -1)
		return HTTPC_ERROR;
	return call_end(&k, curl_easy_perform(k.h));
}

/* --- the event loop ------------------------------------------------------ */

static void
active_add(struct httpc_loop *l, struct call *k)
{
	k->prev = NULL;
	k->next = l->active;
	if (l->active != NULL)
		l->active->prev = k;
	l->active = k;
}

static void
active_remove(struct httpc_loop *l, struct call *k)
{
	if (k->prev != NULL)
		k->prev->next = k->next;
	else
		l->active = k->next;
	if (k->next != NULL)
		k->next->prev = k->prev;
}

/* End k (no longer in the multi handle) and tell its submitter. */
static void
call_finish(struct call *k, enum httpc_result res)
{
	k->done(k->arg, res);
	free(k);
}

/* End k without a transfer: the loop is stopping. */
static void
call_cancel(struct call *k)
{
	call_end(k, CURLE_ABORTED_BY_CALLBACK);
	snprintf(k->r->error, sizeof(k->r->error), "shutting down");
	call_finish(k, HTTPC_CANCELLED);
}

static void *
loop_main(void *arg)
{
	struct httpc_loop *l = arg;
	struct call *k, *next;
	CURLMsg *msg;
	int stop, running, left;

	for (;;) {
		pthread_mutex_lock(&l->mu);
		k = l->queue;
		l->queue = NULL;
		l->qtail = &l->queue;
		stop = l->stopping;
		pthread_mutex_unlock(&l->mu);
		for (; k != NULL; k = next) {
			next = k->next;
			if (stop) {
				call_cancel(k);
			} else if (curl_multi_add_handle(l->m, k->h) !=
			    CURLM_OK) {
				snprintf(k->errbuf, sizeof(k->errbuf),
				    "cannot start the transfer");
				call_finish(k, call_end(k, CURLE_FAILED_INIT));
			} else {
				active_add(l, k);
			}
		}
		if (stop) {
			while ((k = l->active) != NULL) {
				active_remove(l, k);
				curl_multi_remove_handle(l->m, k->h);
				call_cancel(k);
			}
			return NULL;
		}
		curl_multi_perform(l->m, &running);
		while ((msg = curl_multi_info_read(l->m, &left)) != NULL) {
			CURL *h = msg->easy_handle;
			CURLcode rc = msg->data.result;
			char *priv = NULL;

			if (msg->msg != CURLMSG_DONE)
				continue;
			curl_easy_getinfo(h, CURLINFO_PRIVATE, &priv);
			k = (struct call *)(void *)priv;
			curl_multi_remove_handle(l->m, h);
			active_remove(l, k);
			call_finish(k, call_end(k, rc));
		}
		curl_multi_poll(l->m, NULL, 0, 1000, NULL);
	}
}

struct httpc_loop *
httpc_loop_start(struct error *e)
{
	struct httpc_loop *l;
	int err;

	if ((l = calloc(1, sizeof(*l))) == NULL) {
		error_errno(e, EXIT_SOFTWARE, "upstream calls");
		return NULL;
	}
	if ((l->m = curl_multi_init()) == NULL) {
		free(l);
		error_set(e, EXIT_SOFTWARE, "upstream calls: libcurl's multi "
		    "interface failed to start");
		return NULL;
	}
	/* enough idle connections for every call in flight to keep its own */
	curl_multi_setopt(l->m, CURLMOPT_MAXCONNECTS, (long)LOOP_MAX_IDLE);
	pthread_mutex_init(&l->mu, NULL);
	l->qtail = &l->queue;
	if ((err = pthread_create(&l->thread, NULL, loop_main, l)) != 0) {
		pthread_mutex_destroy(&l->mu);
		curl_multi_cleanup(l->m);
		free(l);
		errno = err;
		error_errno(e, EXIT_SOFTWARE, "upstream calls: thread");
		return NULL;
	}
	return l;
}

int
httpc_loop_submit(struct httpc_loop *l, struct httpc *c, const char *target,
    int head, struct httpc_response *r, httpc_done_fn *done, void *arg)
{
	struct call *k;
	int stopping;

	if ((k = malloc(sizeof(*k))) == NULL) {
		snprintf(r->error, sizeof(r->error), "out of memory");
		return -1;
	}
	if (call_begin(k, c, target, head, r) == -1) {
		free(k);
		return -1;
	}
	k->done = done;
	k->arg = arg;
	pthread_mutex_lock(&l->mu);
	stopping = l->stopping;
	if (!stopping) {
		/* first in, first started */
		k->next = NULL;
		*l->qtail = k;
		l->qtail = &k->next;
	}
	pthread_mutex_unlock(&l->mu);
	if (stopping) {
		call_end(k, CURLE_ABORTED_BY_CALLBACK);
		free(k);
		snprintf(r->error, sizeof(r->error), "shutting down");
		return -1;
	}
	curl_multi_wakeup(l->m);
	return 0;
}

void
httpc_loop_stop(struct httpc_loop *l)
{
	if (l == NULL)
		return;
	pthread_mutex_lock(&l->mu);
	l->stopping = 1;
	pthread_mutex_unlock(&l->mu);
	curl_multi_wakeup(l->m);
	pthread_join(l->thread, NULL);
	curl_multi_cleanup(l->m);
	pthread_mutex_destroy(&l->mu);
	free(l);
}

void
httpc_response_release(struct httpc_response *r)
{
	if (r == NULL)
		return;
	buf_release(&r->body);
	buf_release(&r->headers);
}
