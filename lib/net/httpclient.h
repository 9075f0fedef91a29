/*
 * Upstream HTTP calls for the proxy, through libcurl.
 *
 * One struct httpc per upstream: its base URL (http or https, no query),
 * its timeout (the whole call, connection included) and the largest
 * response body it accepts.  A call takes an idle easy handle from a
 * pool (or makes one) and gives it back.  A loop's connections are kept
 * alive (curl's connection cache, one a loop) and watched while idle: an
 * idle connection on which the upstream writes anything, hangs up or
 * fails is closed at once and never carries another call, and a
 * connection taken for a call is checked once more just before the
 * request goes (bytes nobody asked for must never answer a later call).
 * httpc_get's connections are not kept: one a call.  A loop keeps its
 * own pools, so that a handle never moves between threads.
 *
 * What is sent: GET (or HEAD) of base URL + target, "Accept:
 * application/json, text/plain;q=0.9", the User-Agent given; nothing of
 * the client's request (no cookies, no Authorization, no body).
 * Redirects are not followed; only http and https are spoken; compressed
 * bodies are decoded (and the size cap applies to the decoded bytes).
 *
 * What is kept of the answer: the status, the body (at most max_response
 * bytes), the Content-Type only when it is JSON or text/plain (or
 * text/csv), and of the other headers only a few end-to-end ones
 * (httpc_header_kept); hop-by-hop headers, and those named by
 * Connection, never.
 *
 * Two ways to call: httpc_get blocks its thread for the call; an
 * httpc_loop runs any number of calls at once in the caller's event loop
 * and tells each caller when its call ends.
 *
 * Thread-safe: any number of threads may call httpc_get on one httpc and
 * run loops of their own with it.  Call httpc_global_init once before any
 * thread starts.  No function prints or exits.
 */
#ifndef AISTACK_HTTPCLIENT_H
#define AISTACK_HTTPCLIENT_H

#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "base/err.h"

enum httpc_result {
	HTTPC_OK = 0,		/* an HTTP answer, any status */
	HTTPC_DOWN,		/* could not connect or resolve */
	HTTPC_TIMEOUT,		/* the timeout passed */
	HTTPC_TOO_BIG,		/* the body was larger than max_response */
	HTTPC_ERROR,		/* anything else (a broken answer...) */
	HTTPC_CANCELLED		/* not made or given up: the loop stopped */
};

struct httpc;

struct httpc_response {
	long status;
	struct buf body;
	char content_type[128];	/* "" when not kept */
	struct buf headers;	/* kept headers: "Name: value\n" each */
	double seconds;		/* the call's duration */
	char error[256];	/* curl's words when not HTTPC_OK */
	int64_t length;		/* the answer's Content-Length (for HEAD, the
				 * body's it would have had); -1: none, two
				 * that disagree, or a Content-Encoding */
};

#define HTTPC_RESPONSE_INIT { 0, BUF_INIT, "", BUF_INIT, 0, "", -1 }

/* libcurl's global set-up; once, before threads.  -1 with e set. */
int httpc_global_init(struct error *e);
void httpc_global_cleanup(void);

/*
 * A client for the upstream at base_url (copied; a trailing '/' is
 * dropped).  EXIT_CONFIG for a URL that is not http(s), or that holds
 * a query, a fragment or user information.  The caller frees it with
 * httpc_free.
 */
struct httpc *httpc_new(const char *base_url, uint64_t timeout_ms,
    size_t max_response, const char *user_agent, struct error *e);
void httpc_free(struct httpc *c);

/* GET (HEAD when head is nonzero) base_url + target ("/path?query"). */
enum httpc_result httpc_get(struct httpc *c, const char *target, int head,
    struct httpc_response *r);

/*
 * The event loop: any number of calls at once on the caller's thread,
 * through libcurl's multi interface, its sockets watched in the caller's
 * epoll set, so that an event-driven server never waits for an upstream
 * and every call shares one cache of keep-alive connections.
 *
 * httpc_loop_new(epfd) adds the sockets of its calls to epfd with
 * data.ptr set to its own; the caller passes every event of epfd that is
 * not its own to httpc_loop_event, waits at most httpc_loop_timeout_ms
 * (-1: no limit) and then calls httpc_loop_timer.
 *
 * httpc_loop_submit starts GET (HEAD) of c's base URL + target and
 * returns at once: 0, and done(arg, result) is called exactly once,
 * from httpc_loop_event, _timer or _cancel, when the call ends, with r
 * filled as httpc_get fills it (r must live until then); or -1 with
 * r->error set, and done is never called.  httpc_loop_cancel gives up
 * every call in flight (each done gets HTTPC_CANCELLED); httpc_loop_free
 * does, then closes the connections.  One thread only: every function
 * on one loop is called from the thread that drives it.
 */
struct httpc_loop;
typedef void httpc_done_fn(void *arg, enum httpc_result result);

struct httpc_loop *httpc_loop_new(int epfd, struct error *e);
int httpc_loop_submit(struct httpc_loop *l, struct httpc *c,
    const char *target, int head, struct httpc_response *r,
    httpc_done_fn *done, void *arg);
void httpc_loop_event(struct httpc_loop *l, void *ptr, uint32_t events);
int httpc_loop_timeout_ms(const struct httpc_loop *l);
void httpc_loop_timer(struct httpc_loop *l);
size_t httpc_loop_calls(const struct httpc_loop *l);
void httpc_loop_cancel(struct httpc_loop *l);
void httpc_loop_free(struct httpc_loop *l);

void httpc_response_release(struct httpc_response *r);

/* Nonzero for a hop-by-hop header name (RFC 9110 7.6.1 and RFC 2616). */
int httpc_hop_by_hop(const char *name, size_t n);

/* Nonzero for an end-to-end header that the proxy passes on. */
int httpc_header_kept(const char *name, size_t n);

/* Nonzero when a Content-Type value is JSON or plain text. */
int httpc_content_type_kept(const char *v);

/* "ok", "down", "timeout", "too_big", "error", "cancelled". */
const char *httpc_result_name(enum httpc_result r);

#endif
