#include <string.h>
#include <strings.h>

#include "route.h"

static int
hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int
route_target_safe(const char *p, size_t n)
{
	size_t i, pathlen;
	const char *q;
	int hi, lo, v;

	if (n == 0 || p[0] != '/')
		return 0;
	q = memchr(p, '?', n);
	pathlen = q != NULL ? (size_t)(q - p) : n;
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)p[i];
		if (c <= 0x20 || c >= 0x7f || c == '\\' || c == '#')
			return 0;
		if (c != '%')
			continue;
		if (i + 2 >= n)
			return 0;
		if ((hi = hexval(p[i + 1])) < 0 || (lo = hexval(p[i + 2])) < 0)
			return 0;
		v = hi * 16 + lo;
		if (i < pathlen && (v < 0x20 || v == 0x7f || v == '.' ||
		    v == '/' || v == '\\' || v == '%'))
			return 0;
		if (i >= pathlen && (v < 0x20 || v == 0x7f))
			return 0;
		i += 2;
	}
	for (i = 0; i < pathlen; i++) {
		size_t seg;
		if (p[i] != '/')
			continue;
		/* the segment after this slash */
		for (seg = i + 1; seg < pathlen && p[seg] != '/'; seg++)
			;
		seg -= i + 1;
		if (seg == 0 && i + 1 < pathlen)
			return 0;		/* doubled slash */
		if ((seg == 1 && p[i + 1] == '.') ||
		    (seg == 2 && p[i + 1] == '.' && p[i + 2] == '.'))
			return 0;		/* dot segment */
	}
	return 1;
}

static int
is_path(const char *p, size_t n, const char *s)
{
	return strlen(s) == n && memcmp(p, s, n) == 0;
}

/* A dashboard file name: one segment, [A-Za-z0-9_-][A-Za-z0-9._-]*, with
 * a dot (an extension). */
static int
file_name_ok(const char *p, size_t n)
{
	size_t i;
	int dot = 0;

	if (n == 0 || n > 128 || p[0] == '.')
		return 0;
	for (i = 0; i < n; i++) {
		char c = p[i];
		if (c == '.')
			dot = 1;
		else if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || c == '_' || c == '-'))
			return 0;
	}
	return dot;
}

static int
refuse(struct route *r, enum route_refusal f)
{
	static const int status[] = {
		[ROUTE_OK] = 0,
		[ROUTE_TOO_LONG] = 414,
		[ROUTE_BAD_TARGET] = 403,
		[ROUTE_BAD_METHOD] = 405,
		[ROUTE_UNKNOWN_UPSTREAM] = 403,
		[ROUTE_NOT_ALLOWED] = 403,
		[ROUTE_NOT_FOUND] = 404,
	};

	r->kind = ROUTE_REFUSED;
	r->refusal = f;
	r->status = status[f];
	return r->status;
}

int
route_match(const struct route_upstream *up, size_t nup, const char *method,
    const char *target, size_t len, size_t max_len, struct route *r)
{
	const char *q, *name, *rest;
	size_t pathlen, namelen, restlen, i, j;

	memset(r, 0, sizeof(*r));
	r->label = ROUTE_LABEL_OTHER;
	if (len > max_len)
		return refuse(r, ROUTE_TOO_LONG);
	if (!route_target_safe(target, len))
		return refuse(r, ROUTE_BAD_TARGET);
	if (strcmp(method, "HEAD") == 0)
		r->head = 1;
	else if (strcmp(method, "GET") != 0)
		return refuse(r, ROUTE_BAD_METHOD);

	q = memchr(target, '?', len);
	pathlen = q != NULL ? (size_t)(q - target) : len;

	if (pathlen >= 5 && memcmp(target, "/api/", 5) == 0) {
		r->auth = 1;
		r->label = ROUTE_LABEL_API;
		if (!is_path(target, pathlen, "/api/stats"))
			return refuse(r, ROUTE_NOT_FOUND);
		r->kind = ROUTE_STATS;
		return 0;
	}
	if (pathlen >= 10 && memcmp(target, "/upstream/", 10) == 0) {
		r->auth = 1;
		r->label = ROUTE_LABEL_UPSTREAM;
		name = target + 10;
		rest = memchr(name, '/', pathlen - 10);
		namelen = rest != NULL ? (size_t)(rest - name) : pathlen - 10;
		for (i = 0; i < nup; i++)
			if (strlen(up[i].name) == namelen &&
			    memcmp(up[i].name, name, namelen) == 0)
				break;
		if (i == nup)
			return refuse(r, ROUTE_UNKNOWN_UPSTREAM);
		if (rest == NULL)
			return refuse(r, ROUTE_NOT_ALLOWED);
		restlen = len - (size_t)(rest - target);	/* with the query */
		for (j = 0; j < up[i].nallow; j++)
			if (strlen(up[i].allow[j]) == restlen &&
			    memcmp(up[i].allow[j], rest, restlen) == 0)
				break;
		if (j == up[i].nallow)
			return refuse(r, ROUTE_NOT_ALLOWED);
		r->kind = ROUTE_UPSTREAM;
		r->upstream = i;
		r->target = up[i].allow[j];
		return 0;
	}
	if (is_path(target, pathlen, "/upstream")) {
		r->auth = 1;
		r->label = ROUTE_LABEL_UPSTREAM;
		return refuse(r, ROUTE_UNKNOWN_UPSTREAM);
	}
	if (is_path(target, pathlen, "/health")) {
		r->label = ROUTE_LABEL_HEALTH;
		r->kind = ROUTE_HEALTH;
		return 0;
	}
	if (is_path(target, pathlen, "/metrics")) {
		r->label = ROUTE_LABEL_METRICS;
		r->kind = ROUTE_METRICS;
		return 0;
	}
	if (is_path(target, pathlen, "/")) {
		r->label = ROUTE_LABEL_DASHBOARD;
		r->kind = ROUTE_DASHBOARD;
		r->file = "index.html";
		r->filelen = strlen(r->file);
		return 0;
	}
	if (file_name_ok(target + 1, pathlen - 1)) {
		r->label = ROUTE_LABEL_DASHBOARD;
		r->kind = ROUTE_DASHBOARD;
		r->file = target + 1;
		r->filelen = pathlen - 1;
		return 0;
	}
	return refuse(r, ROUTE_NOT_FOUND);
}

int
route_bearer_ok(const char *authz, const char *token, size_t toklen)
{
	const unsigned char *cred;
	size_t n, i;
	unsigned char diff;

	if (authz == NULL || toklen == 0 || strncasecmp(authz, "Bearer", 6) != 0 ||
	    (authz[6] != ' ' && authz[6] != '\t'))
		return 0;
	for (authz += 6; *authz == ' ' || *authz == '\t'; authz++)
		;
	cred = (const unsigned char *)authz;
	n = strlen(authz);
	while (n > 0 && (cred[n - 1] == ' ' || cred[n - 1] == '\t'))
		n--;
	/* every byte of the credential is compared, whatever it holds */
	diff = n != toklen;
	for (i = 0; i < n; i++)
		diff |= cred[i] ^ (unsigned char)token[i % toklen];
	return diff == 0;
}

const char *
route_refusal_name(enum route_refusal f)
{
	switch (f) {
	case ROUTE_OK:
		return "ok";
	case ROUTE_TOO_LONG:
		return "request target too long";
	case ROUTE_BAD_TARGET:
		return "forbidden request target";
	case ROUTE_BAD_METHOD:
		return "method not allowed";
	case ROUTE_UNKNOWN_UPSTREAM:
		return "unknown upstream";
	case ROUTE_NOT_ALLOWED:
		return "path not allowed";
	case ROUTE_NOT_FOUND:
		return "not found";
	}
	return "refused";
}

const char *
route_label_name(enum route_label l)
{
	static const char *const names[ROUTE_LABEL_N] = {
		[ROUTE_LABEL_DASHBOARD] = "dashboard",
		[ROUTE_LABEL_HEALTH] = "health",
		[ROUTE_LABEL_METRICS] = "metrics",
		[ROUTE_LABEL_API] = "api",
		[ROUTE_LABEL_UPSTREAM] = "upstream",
		[ROUTE_LABEL_OTHER] = "other",
	};

	return (unsigned)l < ROUTE_LABEL_N ? names[l] : "other";
}
