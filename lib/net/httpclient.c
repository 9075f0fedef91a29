#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include <curl/curl.h>

#include "base/clock.h"

#include "base/exitcode.h"
#include "httpclient.h"

#define POOL_MAX	64
#define MAX_HEADERS	(64 * 1024)
#define LOOP_MAX_IDLE	256

/* Idle easy handles of one upstream, each with its options set. */
struct pool {
	CURL *h[POOL_MAX];
	size_t n;
};

struct httpc {
	char *base;
	size_t baselen;
	uint64_t timeout_ms;
	size_t max_response;
	char *user_agent;
	struct curl_slist *req_headers;
	pthread_mutex_t mu;
	struct pool pool;	/* httpc_get's idle handles (under mu) */
};

/* One call: what it collects, shared with the callbacks. */
struct call {
	struct httpc *c;
	struct httpc_loop *l;	/* NULL for httpc_get */
	CURL *h;
	struct httpc_response *r;
	int too_big;
	struct buf url;
	struct buf connection;	/* the Connection header's tokens */
	struct buf raw;		/* end-to-end headers seen */
	size_t header_bytes;
	int encoded;		/* a Content-Encoding: the length is not the body's */
	char errbuf[CURL_ERROR_SIZE];
	/* httpc_loop_submit's */
	httpc_done_fn *done;
	void *arg;
	struct call *next, *prev;
};

/* The event loop of httpc_loop_new: one multi handle, its sockets in the
 * caller's epoll set. */
struct httpc_loop {
	CURLM *m;
	int epfd;
	int timer_set;		/* libcurl wants a call at deadline_us */
	uint64_t deadline_us;
	struct call *active;	/* added to m */
	struct watch **byfd;	/* the sockets libcurl has open, by number */
	size_t nbyfd;
	struct watch *dead;	/* closed in this batch of events */
	struct watch *parked;	/* idle connections in libcurl's cache */
	/* idle handles by upstream: a thread's own (a handle that moved
	 * between threads would free memory of another thread's arena,
	 * under its lock, at every call) */
	struct loop_pool {
		const struct httpc *c;
		struct pool pool;
	} *pools;
	size_t npools;
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
	for (i = 0; i < c->pool.n; i++)
		curl_easy_cleanup(c->pool.h[i]);
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

/* A Content-Length value (v, n bytes) after the answer's earlier one
 * (prev, -1 for none): its length, or -1 when it is not one number or
 * disagrees with prev. */
static int64_t
content_length(const char *v, size_t n, int64_t prev)
{
	int64_t x = 0;
	size_t i;

	if (n == 0 || n > 18)
		return -1;
	for (i = 0; i < n; i++) {
		if (v[i] < '0' || v[i] > '9')
			return -1;
		x = x * 10 + (v[i] - '0');
	}
	return prev != -1 && prev != x ? -1 : x;
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
		k->r->length = -1;
		k->encoded = 0;
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
	if (name_is(p, namelen, "Content-Length")) {
		k->r->length = content_length(v, vlen, k->r->length);
		return n;
	}
	if (name_is(p, namelen, "Content-Encoding")) {
		if (!(vlen == 8 && strncasecmp(v, "identity", 8) == 0))
			k->encoded = 1;
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

static int on_close(void *arg, curl_socket_t s);
static int on_prereq(void *arg, char *conn_primary_ip, char *conn_local_ip,
    int conn_primary_port, int conn_local_port);

/* The pool of c's idle handles: l's own, or c's (under c->mu) for
 * httpc_get; NULL without memory. */
static struct pool *
pool_of(struct httpc *c, struct httpc_loop *l)
{
	struct loop_pool *lp;
	size_t i;

	if (l == NULL)
		return &c->pool;
	for (i = 0; i < l->npools; i++)
		if (l->pools[i].c == c)
			return &l->pools[i].pool;
	if ((lp = realloc(l->pools, (l->npools + 1) * sizeof(*lp))) == NULL)
		return NULL;
	l->pools = lp;
	lp += l->npools++;
	lp->c = c;
	lp->pool.n = 0;
	return &lp->pool;
}

static CURL *
handle_get(struct httpc *c, struct httpc_loop *l)
{
	struct pool *p;
	CURL *h = NULL;

	if (l == NULL)
		pthread_mutex_lock(&c->mu);
	if ((p = pool_of(c, l)) != NULL && p->n > 0)
		h = p->h[--p->n];
	if (l == NULL)
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
	curl_easy_setopt(h, CURLOPT_CLOSESOCKETFUNCTION, on_close);
	curl_easy_setopt(h, CURLOPT_PREREQFUNCTION, on_prereq);
	return h;
}

static void
handle_put(struct httpc *c, struct httpc_loop *l, CURL *h)
{
	struct pool *p;

	if (l == NULL)
		pthread_mutex_lock(&c->mu);
	if ((p = pool_of(c, l)) != NULL && p->n < POOL_MAX) {
		p->h[p->n++] = h;
		h = NULL;
	}
	if (l == NULL)
		pthread_mutex_unlock(&c->mu);
	if (h != NULL)
		curl_easy_cleanup(h);
}

/* Set up k for GET (HEAD) of c's base URL + target on a pooled handle;
 * -1 with r->error set. */
static int
call_begin(struct call *k, struct httpc *c, struct httpc_loop *l,
    const char *target, int head, struct httpc_response *r)
{
	r->status = 0;
	r->body.len = 0;
	r->headers.len = 0;
	r->content_type[0] = '\0';
	r->error[0] = '\0';
	r->seconds = 0;
	r->length = -1;
	memset(k, 0, sizeof(*k));
	k->c = c;
	k->l = l;
	k->r = r;
	if ((k->h = handle_get(c, l)) == NULL || buf_append(&k->url, c->base,
	    c->baselen) == -1 || buf_printf(&k->url, "%s", target) == -1) {
		if (k->h != NULL)
			handle_put(c, l, k->h);
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
	curl_easy_setopt(k->h, CURLOPT_PREREQDATA, k);
	/* httpc_get's connections are not watched while idle: not kept */
	curl_easy_setopt(k->h, CURLOPT_FORBID_REUSE, l == NULL ? 1L : 0L);
	/* the loop whose connections this call opens (none for httpc_get) */
	curl_easy_setopt(k->h, CURLOPT_CLOSESOCKETDATA, l);
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
	curl_easy_setopt(k->h, CURLOPT_PREREQDATA, NULL);
	switch (rc) {
	case CURLE_OK:
		res = keep_headers(k) == 0 ? HTTPC_OK : HTTPC_ERROR;
		/* decoded, the body is not the length the upstream said */
		if (k->encoded)
			r->length = -1;
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
	handle_put(k->c, k->l, k->h);
	k->h = NULL;
	return res;
}

enum httpc_result
httpc_get(struct httpc *c, const char *target, int head,
    struct httpc_response *r)
{
	struct call k;

	if (call_begin(&k, c, NULL, target, head, r) == -1)
		return HTTPC_ERROR;
	return call_end(&k, curl_easy_perform(k.h));
}

/* --- the event loop ------------------------------------------------------ */

/*
 * A socket libcurl opened, and its epoll data.ptr.  An idle keep-alive
 * connection stays in the epoll set (parked): libcurl stops watching it
 * after every call and watches it again at the next, and leaving it in
 * place spares two epoll_ctl calls a request.  A parked socket that
 * stirs (the upstream wrote unasked, closed it or reset it) is killed
 * at once (conn_kill): nothing it says can answer a later call.  The
 * watch lives until libcurl closes the socket (on_close), and is freed
 * after the batch of events that might still name it.
 */
enum { W_ACTIVE, W_PARKED, W_KILLED, W_DEAD };

struct watch {
	curl_socket_t fd;
	int state;
	int in_set;		/* in the epoll set, for events */
	uint32_t events;
	struct watch *next;	/* on l->dead */
	struct watch *pnext, *pprev;	/* on l->parked */
	/* its ends, as libcurl names them to on_prereq ("" until parked) */
	char local[INET6_ADDRSTRLEN], peer[INET6_ADDRSTRLEN];
	int local_port, peer_port;
};

/* An address and port as libcurl writes them ("" and 0 if unknown). */
static void
name_of(const struct sockaddr_storage *ss, char *ip, int *port)
{
	const struct sockaddr_in *in = (const void *)ss;
	const struct sockaddr_in6 *in6 = (const void *)ss;

	ip[0] = '\0';
	*port = 0;
	if (ss->ss_family == AF_INET) {
		inet_ntop(AF_INET, &in->sin_addr, ip, INET6_ADDRSTRLEN);
		*port = ntohs(in->sin_port);
	} else if (ss->ss_family == AF_INET6) {
		inet_ntop(AF_INET6, &in6->sin6_addr, ip, INET6_ADDRSTRLEN);
		*port = ntohs(in6->sin6_port);
	}
}

/* Move w to state st, on or off l->parked; a watch parked for the first
 * time learns its ends (two system calls a connection). */
static void
watch_set(struct httpc_loop *l, struct watch *w, int st)
{
	struct sockaddr_storage ss;
	socklen_t len;

	if (w->state == W_PARKED && st != W_PARKED) {
		if (w->pprev != NULL)
			w->pprev->pnext = w->pnext;
		else
			l->parked = w->pnext;
		if (w->pnext != NULL)
			w->pnext->pprev = w->pprev;
		w->pnext = w->pprev = NULL;
	} else if (w->state != W_PARKED && st == W_PARKED) {
		if (w->local_port == 0) {
			len = sizeof(ss);
			memset(&ss, 0, sizeof(ss));
			if (getsockname(w->fd, (struct sockaddr *)&ss, &len) == 0)
				name_of(&ss, w->local, &w->local_port);
			len = sizeof(ss);
			memset(&ss, 0, sizeof(ss));
			if (getpeername(w->fd, (struct sockaddr *)&ss, &len) == 0)
				name_of(&ss, w->peer, &w->peer_port);
		}
		w->pprev = NULL;
		w->pnext = l->parked;
		if (l->parked != NULL)
			l->parked->pprev = w;
		l->parked = w;
	}
	w->state = st;
}

static struct watch *
watch_of(const struct httpc_loop *l, curl_socket_t s)
{
	return s >= 0 && (size_t)s < l->nbyfd ? l->byfd[s] : NULL;
}

/* A new watch for s; NULL without memory. */
static struct watch *
watch_new(struct httpc_loop *l, curl_socket_t s)
{
	struct watch *w, **n;
	size_t cap;

	if (s < 0)
		return NULL;
	if ((size_t)s >= l->nbyfd) {
		cap = l->nbyfd > 0 ? l->nbyfd : 64;
		while (cap <= (size_t)s)
			cap *= 2;
		if ((n = realloc(l->byfd, cap * sizeof(struct watch *))) == NULL)
			return NULL;
		memset(n + l->nbyfd, 0, (cap - l->nbyfd) * sizeof(struct watch *));
		l->byfd = n;
		l->nbyfd = cap;
	}
	if ((w = calloc(1, sizeof(*w))) == NULL)
		return NULL;
	w->fd = s;
	l->byfd[s] = w;
	return w;
}

/*
 * Kill the idle connection on s, which libcurl keeps in its cache: the
 * TCP connection is closed now (its last descriptor goes), and s itself
 * becomes a socket whose peer has gone, which every check libcurl makes
 * takes for a dead connection (readable, end of file, hang-up) and which
 * refuses anything sent on it (EPIPE, a send error on a reused
 * connection, which libcurl retries on a new one).  libcurl closes s in
 * its own time (on_close).  Nothing read from the old connection is ever
 * handed to a call.
 */
static void
conn_kill(curl_socket_t s)
{
	int sv[2];

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0) {
		close(sv[1]);
		if (dup3(sv[0], s, O_CLOEXEC) != -1) {
			close(sv[0]);
			return;
		}
		close(sv[0]);
	}
	/* no descriptor to spare: no more bytes in, none out */
	(void)shutdown(s, SHUT_RDWR);
}

/* Nonzero when the idle connection on s has something to say: bytes
 * nobody asked for, an end of file, an error. */
static int
conn_stirred(curl_socket_t s)
{
	struct pollfd pfd;

	pfd.fd = s;
	pfd.events = POLLIN | POLLRDHUP;
	pfd.revents = 0;
	return poll(&pfd, 1, 0) > 0;
}

/*
 * CURLOPT_PREREQFUNCTION: the call's connection is made or taken from
 * the cache, and the request is about to go.  A kept-alive connection
 * that stirred since the loop last looked (the event not read yet) is
 * killed before it carries the request: the check before reuse.  A new
 * connection has nothing to read yet, so the check costs one poll(2) a
 * call and answers no for it.
 */
static int
on_prereq(void *arg, char *conn_primary_ip, char *conn_local_ip,
    int conn_primary_port, int conn_local_port)
{
	struct call *k = arg;
	struct watch *w;

	if (getenv("HTTPC_DEBUG")) { fprintf(stderr, "PREREQ %s:%d -> %s:%d\n", conn_local_ip, conn_local_port, conn_primary_ip, conn_primary_port); for (w = k->l->parked; w; w = w->pnext) fprintf(stderr, " parked %d %s:%d -> %s:%d stirred %d\n", w->fd, w->local, w->local_port, w->peer, w->peer_port, conn_stirred(w->fd)); }
	if (k == NULL || k->l == NULL)
		return CURL_PREREQFUNC_OK;
	for (w = k->l->parked; w != NULL; w = w->pnext)
		if (w->local_port == conn_local_port &&
		    w->peer_port == conn_primary_port &&
		    strcmp(w->local, conn_local_ip) == 0 &&
		    strcmp(w->peer, conn_primary_ip) == 0)
			break;
	if (w == NULL || !conn_stirred(w->fd))
		return CURL_PREREQFUNC_OK;
	if (w->in_set)
		(void)epoll_ctl(k->l->epfd, EPOLL_CTL_DEL, w->fd, NULL);
	w->in_set = 0;
	watch_set(k->l, w, W_KILLED);
	conn_kill(w->fd);
	return CURL_PREREQFUNC_OK;
}

/* CURLOPT_CLOSESOCKETFUNCTION: s is closing; its watch goes once the
 * batch of events is over (the kernel drops s from the epoll set). */
static int
on_close(void *arg, curl_socket_t s)
{
	struct httpc_loop *l = arg;
	struct watch *w;

	if (l != NULL && (w = watch_of(l, s)) != NULL) {
		l->byfd[s] = NULL;
		watch_set(l, w, W_DEAD);
		w->next = l->dead;
		l->dead = w;
	}
	return close(s);
}

/* CURLMOPT_SOCKETFUNCTION: watch s for what, or stop watching it. */
static int
on_socket(CURL *h, curl_socket_t s, int what, void *arg, void *sockp)
{
	struct httpc_loop *l = arg;
	struct watch *w = sockp;
	struct epoll_event ev;
	uint32_t want;

	(void)h;
	if (w == NULL)
		w = watch_of(l, s);
	if (what == CURL_POLL_REMOVE) {
		if (w == NULL || w->state != W_ACTIVE)
			return 0;
		watch_set(l, w, W_PARKED);
		/* parked, it is watched for anything the upstream says */
		if (w->in_set && !(w->events & EPOLLIN)) {
			memset(&ev, 0, sizeof(ev));
			ev.events = EPOLLIN;
			ev.data.ptr = w;
			if (epoll_ctl(l->epfd, EPOLL_CTL_MOD, s, &ev) == 0)
				w->events = EPOLLIN;
		}
		return 0;
	}
	if (w == NULL && (w = watch_new(l, s)) == NULL)
		return -1;
	want = (what & CURL_POLL_IN ? EPOLLIN : 0) |
	    (what & CURL_POLL_OUT ? EPOLLOUT : 0);
	if (!w->in_set || w->events != want) {
		memset(&ev, 0, sizeof(ev));
		ev.events = want;
		ev.data.ptr = w;
		if (epoll_ctl(l->epfd, w->in_set ? EPOLL_CTL_MOD :
		    EPOLL_CTL_ADD, s, &ev) == -1)
			return -1;
		w->in_set = 1;
		w->events = want;
	}
	watch_set(l, w, W_ACTIVE);
	curl_multi_assign(l->m, s, w);
	return 0;
}

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

/* CURLMOPT_TIMERFUNCTION: libcurl wants to be called in ms (-1: never). */
static int
on_timer(CURLM *m, long ms, void *arg)
{
	struct httpc_loop *l = arg;

	(void)m;
	l->deadline_us = ms < 0 ? 0 : clock_mono_us() + (uint64_t)ms * 1000;
	l->timer_set = ms >= 0;
	return 0;
}

/* Tell the submitters of every call that has ended. */
static void
reap(struct httpc_loop *l)
{
	struct call *k;
	CURLMsg *msg;
	int left;

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
}

struct httpc_loop *
httpc_loop_new(int epfd, struct error *e)
{
	struct httpc_loop *l;

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
	l->epfd = epfd;
	/* enough idle connections for every call in flight to keep its own */
	curl_multi_setopt(l->m, CURLMOPT_MAXCONNECTS, (long)LOOP_MAX_IDLE);
	curl_multi_setopt(l->m, CURLMOPT_SOCKETFUNCTION, on_socket);
	curl_multi_setopt(l->m, CURLMOPT_SOCKETDATA, l);
	curl_multi_setopt(l->m, CURLMOPT_TIMERFUNCTION, on_timer);
	curl_multi_setopt(l->m, CURLMOPT_TIMERDATA, l);
	return l;
}

int
httpc_loop_submit(struct httpc_loop *l, struct httpc *c, const char *target,
    int head, struct httpc_response *r, httpc_done_fn *done, void *arg)
{
	struct call *k;

	if ((k = malloc(sizeof(*k))) == NULL) {
		snprintf(r->error, sizeof(r->error), "out of memory");
		return -1;
	}
	if (call_begin(k, c, l, target, head, r) == -1) {
		free(k);
		return -1;
	}
	k->done = done;
	k->arg = arg;
	/* started by the timer libcurl sets now (0 ms) */
	if (curl_multi_add_handle(l->m, k->h) != CURLM_OK) {
		call_end(k, CURLE_FAILED_INIT);
		free(k);
		snprintf(r->error, sizeof(r->error), "cannot start the "
		    "transfer");
		return -1;
	}
	active_add(l, k);
	return 0;
}

void
httpc_loop_event(struct httpc_loop *l, void *ptr, uint32_t events)
{
	struct watch *w = ptr;
	int running, mask = 0;

	if (w->state == W_DEAD || w->state == W_KILLED)
		return;		/* closed or killed earlier in this batch */
	if (w->state == W_PARKED) {
		/* an idle connection stirred: whatever it says, nobody
		 * asked for it; it is closed now and never reused */
		(void)epoll_ctl(l->epfd, EPOLL_CTL_DEL, w->fd, NULL);
		w->in_set = 0;
		watch_set(l, w, W_KILLED);
		conn_kill(w->fd);
		return;
	}
	if (events & EPOLLIN)
		mask |= CURL_CSELECT_IN;
	if (events & EPOLLOUT)
		mask |= CURL_CSELECT_OUT;
	if (events & (EPOLLERR | EPOLLHUP))
		mask |= CURL_CSELECT_ERR;
	curl_multi_socket_action(l->m, w->fd, mask, &running);
	reap(l);
}

int
httpc_loop_timeout_ms(const struct httpc_loop *l)
{
	uint64_t now;

	if (!l->timer_set)
		return -1;
	now = clock_mono_us();
	if (l->deadline_us <= now)
		return 0;
	/* rounded up: waking early would only wait again */
	return (int)((l->deadline_us - now + 999) / 1000);
}

static void
bury(struct httpc_loop *l)
{
	struct watch *w;

	while ((w = l->dead) != NULL) {
		l->dead = w->next;
		free(w);
	}
}

void
httpc_loop_timer(struct httpc_loop *l)
{
	int running;

	if (l->timer_set && l->deadline_us <= clock_mono_us()) {
		l->timer_set = 0;
		curl_multi_socket_action(l->m, CURL_SOCKET_TIMEOUT, 0,
		    &running);
		reap(l);
	}
	/* no event of the last batch names these any more */
	bury(l);
}

void
httpc_loop_cancel(struct httpc_loop *l)
{
	struct call *k;

	while ((k = l->active) != NULL) {
		active_remove(l, k);
		curl_multi_remove_handle(l->m, k->h);
		call_end(k, CURLE_ABORTED_BY_CALLBACK);
		snprintf(k->r->error, sizeof(k->r->error), "shutting down");
		call_finish(k, HTTPC_CANCELLED);
	}
}

size_t
httpc_loop_calls(const struct httpc_loop *l)
{
	const struct call *k;
	size_t n = 0;

	for (k = l->active; k != NULL; k = k->next)
		n++;
	return n;
}

void
httpc_loop_free(struct httpc_loop *l)
{
	size_t i, j;

	if (l == NULL)
		return;
	httpc_loop_cancel(l);
	/* closes the cached connections (on_close) */
	curl_multi_cleanup(l->m);
	bury(l);
	for (i = 0; i < l->npools; i++)
		for (j = 0; j < l->pools[i].pool.n; j++)
			curl_easy_cleanup(l->pools[i].pool.h[j]);
	free(l->pools);
	for (i = 0; i < l->nbyfd; i++)
		free(l->byfd[i]);
	free(l->byfd);
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
