#include <dlfcn.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <curl/curl.h>

#include "base/clock.h"
#include "base/exitcode.h"
#include "pg/pqdl.h"
#include "probe.h"

#define LIBCURL_SONAME	"libcurl.so.4"

/*
 * The functions used from libcurl, resolved by dlopen/dlsym once per
 * process and kept (libcurl and OpenSSL must not be unloaded); libpq's
 * come from pqdl.h.  These tables are the module's only static state.
 */
struct curl_api {
	int loaded;
	__typeof__(curl_global_init) *global_init;
	__typeof__(curl_easy_init) *easy_init;
	__typeof__(curl_easy_setopt) *easy_setopt;
	__typeof__(curl_easy_perform) *easy_perform;
	__typeof__(curl_easy_getinfo) *easy_getinfo;
	__typeof__(curl_easy_cleanup) *easy_cleanup;
	__typeof__(curl_easy_strerror) *easy_strerror;
};

static struct curl_api curl_api;

#define RESOLVE(h, api, field, sym) do {				\
	if (((api)->field = (__typeof__((api)->field))dlsym(h, #sym)) == NULL) \
		goto missing;						\
} while (0)

static int
curl_load(struct error *e)
{
	struct curl_api *a = &curl_api;
	void *h;

	if (a->loaded)
		return 0;
	if ((h = dlopen(LIBCURL_SONAME, RTLD_NOW | RTLD_LOCAL)) == NULL)
		return error_set(e, EXIT_UNAVAILABLE, "%s", dlerror());
	RESOLVE(h, a, global_init, curl_global_init);
	RESOLVE(h, a, easy_init, curl_easy_init);
	RESOLVE(h, a, easy_setopt, curl_easy_setopt);
	RESOLVE(h, a, easy_perform, curl_easy_perform);
	RESOLVE(h, a, easy_getinfo, curl_easy_getinfo);
	RESOLVE(h, a, easy_cleanup, curl_easy_cleanup);
	RESOLVE(h, a, easy_strerror, curl_easy_strerror);
	if (a->global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		return error_set(e, EXIT_UNAVAILABLE, "%s: initialisation "
		    "failed", LIBCURL_SONAME);
	a->loaded = 1;
	return 0;
missing:
	return error_set(e, EXIT_UNAVAILABLE, "%s", dlerror());
}

/* libpq's table, loaded on first use (pqdl.h). */
static const struct pq_api *pq;

static int
pq_load(struct error *e)
{
	if (pq == NULL && (pq = pq_api_load(e)) == NULL)
		return -1;
	return 0;
}

static int
has_prefix(const char *s, const char *p)
{
	return strncasecmp(s, p, strlen(p)) == 0;
}

/* Nonzero when the authority of an http(s) URL holds "user:password@". */
static int
http_has_password(const char *url)
{
	const char *a = strstr(url, "://"), *at, *end;

	if (a == NULL)
		return 0;
	a += 3;
	end = a + strcspn(a, "/?#");
	at = memchr(a, '@', (size_t)(end - a));
	/* the last '@' ends the user information */
	while (at != NULL && memchr(at + 1, '@', (size_t)(end - at - 1)) != NULL)
		at = memchr(at + 1, '@', (size_t)(end - at - 1));
	return at != NULL && memchr(a, ':', (size_t)(at - a)) != NULL;
}

static int
pq_has_password(const char *url, struct error *e)
{
	PQconninfoOption *opts, *o;
	char *msg = NULL;
	int found = 0;

	if (pq_load(e) == -1)
		return -1;
	if ((opts = pq->conninfo_parse(url, &msg)) == NULL) {
		if (msg != NULL) {
			msg[strcspn(msg, "\n")] = '\0';
			error_set(e, EXIT_USAGE, "invalid postgres URL: %s", msg);
			pq->freemem(msg);
		} else
			error_set(e, EXIT_USAGE, "invalid postgres URL");
		return -1;
	}
	for (o = opts; o->keyword != NULL; o++)
		if (strcmp(o->keyword, "password") == 0 && o->val != NULL &&
		    o->val[0] != '\0')
			found = 1;
	pq->conninfo_free(opts);
	return found;
}

int
probe_check(const char *url, enum probe_kind *kind, struct error *e)
{
	int pw;

	if (has_prefix(url, "http://") || has_prefix(url, "https://")) {
		*kind = PROBE_HTTP;
		if (http_has_password(url))
			return error_set(e, EXIT_USAGE, "URL carries a password; "
			    "use ~/.netrc instead");
		return 0;
	}
	if (has_prefix(url, "postgres://") || has_prefix(url, "postgresql://")) {
		*kind = PROBE_POSTGRES;
		if ((pw = pq_has_password(url, e)) == -1)
			return -1;
		if (pw)
			return error_set(e, EXIT_USAGE, "URL carries a password; "
			    "use PGPASSWORD or PGPASSFILE instead");
		return 0;
	}
	return error_set(e, EXIT_USAGE, "unsupported URL scheme (expected "
	    "http://, https://, postgres:// or postgresql://)");
}

static size_t
discard(char *p, size_t size, size_t n, void *arg)
{
	(void)p;
	(void)arg;
	return size * n;
}

static int
probe_http(const char *url, uint64_t timeout_ms, const char *user_agent,
    int *timed_out, struct error *e)
{
	char ebuf[CURL_ERROR_SIZE] = "";
	struct curl_api *a = &curl_api;
	long code = 0;
	CURLcode rc;
	CURL *c;

	if (curl_load(e) == -1)
		return -1;
	if ((c = a->easy_init()) == NULL)
		return error_set(e, EXIT_UNAVAILABLE, "cannot start libcurl");
	a->easy_setopt(c, CURLOPT_URL, url);
	a->easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	a->easy_setopt(c, CURLOPT_ERRORBUFFER, ebuf);
	a->easy_setopt(c, CURLOPT_WRITEFUNCTION, discard);
	a->easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
	a->easy_setopt(c, CURLOPT_NETRC, (long)CURL_NETRC_OPTIONAL);
	if (user_agent != NULL)
		a->easy_setopt(c, CURLOPT_USERAGENT, user_agent);
	a->easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	if (timeout_ms > 0) {
		a->easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)timeout_ms);
		a->easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, (long)timeout_ms);
	}
	rc = a->easy_perform(c);
	if (rc == CURLE_OK)
		a->easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
	a->easy_cleanup(c);
	if (rc != CURLE_OK) {
		*timed_out = rc == CURLE_OPERATION_TIMEDOUT;
		return error_set(e, EXIT_UNAVAILABLE, "%s", ebuf[0] != '\0' ?
		    ebuf : a->easy_strerror(rc));
	}
	if (code < 200 || code > 299)
		return error_set(e, EXIT_UNAVAILABLE, "HTTP status %ld", code);
	return 0;
}

/* libpq's message, first line only, without the trailing newline. */
static int
pq_fail(PGconn *conn, struct error *e)
{
	const char *m = conn != NULL ? pq->error_message(conn) : NULL;

	if (m == NULL || *m == '\0')
		m = "connection failed";
	error_set(e, EXIT_UNAVAILABLE, "%.*s", (int)strcspn(m, "\n"), m);
	pq->finish(conn);
	return -1;
}

static int
probe_pg(const char *url, uint64_t timeout_ms, int *timed_out,
    struct error *e)
{
	PostgresPollingStatusType ps = PGRES_POLLING_WRITING;
	int64_t deadline = (int64_t)clock_mono_ms() + (int64_t)timeout_ms, left;
	struct pollfd pfd;
	PGconn *conn;
	int rc;

	if (pq_load(e) == -1)
		return -1;
	if ((conn = pq->connect_start(url)) == NULL)
		return error_set(e, EXIT_UNAVAILABLE, "out of memory");
	if (pq->status(conn) == CONNECTION_BAD)
		return pq_fail(conn, e);
	/* the asynchronous connection of libpq's documentation */
	for (;;) {
		if (ps == PGRES_POLLING_OK)
			break;
		if (ps == PGRES_POLLING_FAILED)
			return pq_fail(conn, e);
		pfd.fd = pq->socket(conn);
		pfd.events = ps == PGRES_POLLING_READING ? POLLIN : POLLOUT;
		pfd.revents = 0;
		left = timeout_ms > 0 ? deadline - (int64_t)clock_mono_ms() : -1;
		if (timeout_ms > 0 && left <= 0) {
			*timed_out = 1;
			pq->finish(conn);
			return error_set(e, EXIT_UNAVAILABLE, "connection timed "
			    "out");
		}
		rc = poll(&pfd, 1, left > INT32_MAX ? INT32_MAX : (int)left);
		if (rc == -1 && errno != EINTR) {
			pq->finish(conn);
			return error_errno(e, EXIT_UNAVAILABLE, "poll");
		}
		if (rc > 0)
			ps = pq->connect_poll(conn);
	}
	pq->finish(conn);
	return 0;
}

int
probe_run(const char *url, uint64_t timeout_ms, const char *user_agent,
    int *timed_out, struct error *e)
{
	enum probe_kind kind;

	*timed_out = 0;
	if (probe_check(url, &kind, e) == -1)
		return -1;
	if (kind == PROBE_HTTP)
		return probe_http(url, timeout_ms, user_agent, timed_out, e);
	return probe_pg(url, timeout_ms, timed_out, e);
}
