/*
 * The proxy's router (lib/net/route.c).  The first byte chooses the method
 * and the length limit, or (high bit set) tests the bearer-token check
 * instead; the rest is the raw request target.  Properties:
 * - no input reaches an upstream path that is not allowed: a request
 *   routed to an upstream is exactly "/upstream/" NAME ALLOW-ENTRY, byte
 *   for byte, for a configured NAME and one of its entries;
 * - whatever is routed is a safe target (route_target_safe), within the
 *   length limit, by GET or HEAD, and its path has no dot segment, no
 *   doubled slash, no backslash and no encoded '.', '/', '\' or '%';
 * - a dashboard file is one segment of [A-Za-z0-9._-] not starting with
 *   a dot; everything under /api/ and /upstream/ asks for the token;
 * - the bearer check accepts exactly "Bearer" (any case), blanks, the
 *   token, blanks.
 */
#include <string.h>
#include <strings.h>

#include "net/route.h"
#include "fuzz.h"

static const char *const qdrant_allow[] = {
	"/collections", "/health", "/collections/docs/points/search?limit=10",
};
static const char *const llm_allow[] = { "/v1/models", "/" };
static const struct route_upstream table[] = {
	{ "qdrant", qdrant_allow, 3 },
	{ "llm", llm_allow, 2 },
	{ "empty", NULL, 0 },
};

/* The path part (before '?') holds nothing a traversal could use. */
static int
path_clean(const char *p, size_t n)
{
	const char *q = memchr(p, '?', n);
	size_t len = q != NULL ? (size_t)(q - p) : n, i;

	for (i = 0; i < len; i++) {
		if (p[i] == '\\' || p[i] == '\0')
			return 0;
		if (p[i] == '/' && i + 1 < len && p[i + 1] == '/')
			return 0;
		if (p[i] == '/' && i + 1 < len && p[i + 1] == '.' &&
		    (i + 2 == len || p[i + 2] == '/' || (p[i + 2] == '.' &&
		    (i + 3 == len || p[i + 3] == '/'))))
			return 0;
		if (p[i] == '%' && i + 2 < len &&
		    (strncasecmp(p + i + 1, "2e", 2) == 0 ||
		    strncasecmp(p + i + 1, "2f", 2) == 0 ||
		    strncasecmp(p + i + 1, "5c", 2) == 0 ||
		    strncmp(p + i + 1, "25", 2) == 0))
			return 0;
	}
	return 1;
}

static void
check_bearer(const uint8_t *data, size_t size)
{
	const uint8_t *nl = memchr(data, '\n', size);
	char *authz, *token;
	size_t alen, tlen, i;
	int want = 0;

	if (nl == NULL)
		return;
	authz = fuzz_strndup(data, (size_t)(nl - data));
	token = fuzz_strndup(nl + 1, size - (size_t)(nl + 1 - data));
	alen = strlen(authz);
	tlen = strlen(token);
	/* the reference: a token has no blank at either end */
	if (tlen > 0 && token[0] != ' ' && token[0] != '\t' &&
	    token[tlen - 1] != ' ' && token[tlen - 1] != '\t') {
		i = 6;
		if (alen > 6 && strncasecmp(authz, "bearer", 6) == 0 &&
		    (authz[6] == ' ' || authz[6] == '\t')) {
			while (authz[i] == ' ' || authz[i] == '\t')
				i++;
			if (strncmp(authz + i, token, tlen) == 0) {
				i += tlen;
				while (authz[i] == ' ' || authz[i] == '\t')
					i++;
				want = authz[i] == '\0';
			}
		}
		FUZZ_CHECK(route_bearer_ok(authz, token, tlen) == want);
	}
	FUZZ_CHECK(route_bearer_ok(NULL, token, tlen) == 0);
	FUZZ_CHECK(route_bearer_ok(authz, token, 0) == 0);
	free(authz);
	free(token);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const methods[] = { "GET", "HEAD", "POST", "get" };
	const char *target, *method;
	struct route r;
	size_t n, max_len;
	int status;

	if (size < 1)
		return 0;
	if (data[0] & 0x80) {
		check_bearer(data + 1, size - 1);
		return 0;
	}
	method = methods[data[0] & 3];
	max_len = (data[0] & 4) ? 64 : 8192;
	target = (const char *)data + 1;
	n = size - 1;
	status = route_match(table, 3, method, target, n, max_len, &r);
	FUZZ_CHECK(status == r.status);
	FUZZ_CHECK(r.label < ROUTE_LABEL_N);
	FUZZ_CHECK(route_refusal_name(r.refusal) != NULL);
	if (r.kind == ROUTE_REFUSED) {
		FUZZ_CHECK(status >= 400 && status <= 499 &&
		    r.refusal != ROUTE_OK);
		return 0;
	}
	FUZZ_CHECK(status == 0 && r.refusal == ROUTE_OK);
	FUZZ_CHECK(n <= max_len);
	FUZZ_CHECK(route_target_safe(target, n));
	FUZZ_CHECK(path_clean(target, n));
	FUZZ_CHECK(strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0);
	FUZZ_CHECK(r.head == (strcmp(method, "HEAD") == 0));
	switch (r.kind) {
	case ROUTE_UPSTREAM: {
		const struct route_upstream *u;
		size_t nl, al, j;
		int listed = 0;

		FUZZ_CHECK(r.upstream < 3 && r.auth);
		u = &table[r.upstream];
		nl = strlen(u->name);
		al = strlen(r.target);
		FUZZ_CHECK(n == 10 + nl + al);
		FUZZ_CHECK(memcmp(target, "/upstream/", 10) == 0);
		FUZZ_CHECK(memcmp(target + 10, u->name, nl) == 0);
		FUZZ_CHECK(memcmp(target + 10 + nl, r.target, al) == 0);
		for (j = 0; j < u->nallow; j++)
			listed |= u->allow[j] == r.target;
		FUZZ_CHECK(listed);
		break;
	}
	case ROUTE_DASHBOARD:
		FUZZ_CHECK(r.file != NULL && r.filelen > 0 && !r.auth);
		FUZZ_CHECK(r.file[0] != '.');
		for (size_t i = 0; i < r.filelen; i++)
			FUZZ_CHECK(strchr("abcdefghijklmnopqrstuvwxyz"
			    "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-",
			    r.file[i]) != NULL && r.file[i] != '\0');
		break;
	case ROUTE_STATS:
		FUZZ_CHECK(r.auth);
		break;
	case ROUTE_HEALTH:
	case ROUTE_METRICS:
		FUZZ_CHECK(!r.auth);
		break;
	case ROUTE_REFUSED:
		break;
	}
	return 0;
}
