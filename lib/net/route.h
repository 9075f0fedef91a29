/*
 * The proxy's router: a pure function from a request's method and raw
 * request target (as received, before any percent-decoding) to a route
 * or a refusal.  It reads nothing but its arguments, so it can be fuzzed.
 *
 * Checks, in this order:
 *   1. the target is at most max_len bytes (414);
 *   2. the target is safe (403): it starts with '/', holds no NUL, no
 *      control, space, non-ASCII, '#' or backslash byte, every '%' starts
 *      a two-digit escape, and its path (the part before '?') has no
 *      doubled slash, no dot segment ("." or ".."), and no escape of '.',
 *      '/', '\', '%', NUL or a control character;
 *   3. the method is GET or HEAD (405);
 *   4. the path is matched, exactly: "/" and "/NAME.EXT" are dashboard
 *      files, "/health", "/metrics", "/api/stats", and
 *      "/upstream/NAME/PATH", where NAME must be a configured upstream
 *      (403 otherwise) and "/PATH" (with its query string, when there is
 *      one) must be one of its allow entries, byte for byte (403
 *      otherwise).  Anything else is 404.  Local routes ignore the query
 *      string.
 * Paths under /api/ and /upstream/ are flagged as needing the bearer
 * token, whether they match or not, so that a caller can answer 401
 * before it reveals which upstreams and paths exist.
 */
#ifndef AISTACK_ROUTE_H
#define AISTACK_ROUTE_H

#include <stddef.h>

enum route_kind {
	ROUTE_REFUSED,		/* see refusal and status */
	ROUTE_DASHBOARD,	/* file, filelen: a file of the dashboard */
	ROUTE_HEALTH,
	ROUTE_METRICS,
	ROUTE_STATS,
	ROUTE_UPSTREAM		/* upstream, target */
};

/* What a request is counted as in the proxy's metrics and access log;
 * route_label_name gives each its label value. */
enum route_label {
	ROUTE_LABEL_DASHBOARD,
	ROUTE_LABEL_HEALTH,
	ROUTE_LABEL_METRICS,
	ROUTE_LABEL_API,
	ROUTE_LABEL_UPSTREAM,
	ROUTE_LABEL_OTHER,
	ROUTE_LABEL_N
};

enum route_refusal {
	ROUTE_OK = 0,
	ROUTE_TOO_LONG,		/* 414 */
	ROUTE_BAD_TARGET,	/* 403: an unsafe target (check 2) */
	ROUTE_BAD_METHOD,	/* 405 */
	ROUTE_UNKNOWN_UPSTREAM,	/* 403 */
	ROUTE_NOT_ALLOWED,	/* 403: not in the upstream's allow list */
	ROUTE_NOT_FOUND		/* 404 */
};

/* One configured upstream: its name and its allow list (borrowed). */
struct route_upstream {
	const char *name;
	const char *const *allow;	/* "/path" or "/path?query" */
	size_t nallow;
};

struct route {
	enum route_kind kind;
	enum route_refusal refusal;
	int status;		/* the refusal's HTTP status, 0 when routed */
	int auth;		/* under /api/ or /upstream/: needs the token */
	int head;		/* the method is HEAD */
	enum route_label label;	/* for metrics and the access log */
	const char *file;	/* ROUTE_DASHBOARD: not NUL-terminated */
	size_t filelen;
	size_t upstream;	/* ROUTE_UPSTREAM: index into the table */
	const char *target;	/* ROUTE_UPSTREAM: the allow entry (borrowed) */
};

/*
 * Route the request: method (NUL-terminated), the raw target of len
 * bytes (it may hold NUL bytes, which are refused), the upstreams.
 * Fills *r and returns r->status (0 when routed).  Pointers in *r borrow
 * from target, the table or static strings.
 */
int route_match(const struct route_upstream *up, size_t nup,
    const char *method, const char *target, size_t len, size_t max_len,
    struct route *r);

/* Nonzero when the n bytes at p are a safe target (check 2 above);
 * also used to check allow entries in the configuration. */
int route_target_safe(const char *p, size_t n);

/*
 * Nonzero when the Authorization header value authz (NULL: none) is
 * "Bearer " followed by exactly the token of toklen bytes.  The scheme is
 * case-insensitive.  The credential is compared in time that depends only
 * on its own length, never on where it differs from the token.
 */
int route_bearer_ok(const char *authz, const char *token, size_t toklen);

/* "dashboard", "health", "metrics", "api", "upstream" or "other" (static);
 * "other" for a value out of range. */
const char *route_label_name(enum route_label l);

/* The reason phrase of a refusal, for messages ("dot segment"...). */
const char *route_refusal_name(enum route_refusal f);

#endif
