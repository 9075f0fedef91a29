/* The proxy's router: every refusal class, exact allow lists, the bearer
 * check; and a fuzz loop that checks invariants on random targets. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "net/route.h"
#include "unit.h"

static const char *const aidb_allow[] = { "/v1/health", "/v1/search?q=x" };
static const char *const qd_allow[] = { "/collections" };
static const struct route_upstream ups[] = {
	{ "aidb", aidb_allow, 2 },
	{ "qdrant", qd_allow, 1 },
};
#define NUP (sizeof(ups) / sizeof(ups[0]))

static int
rt(const char *method, const char *target, struct route *r)
{
	return route_match(ups, NUP, method, target, strlen(target), 2048, r);
}

TEST(route_local_routes)
{
	struct route r;

	CHECK_INT(rt("GET", "/health", &r), 0);
	CHECK_INT(r.kind, ROUTE_HEALTH);
	CHECK_INT(r.auth, 0);
	CHECK_INT(rt("HEAD", "/metrics", &r), 0);
	CHECK_INT(r.kind, ROUTE_METRICS);
	CHECK_INT(r.head, 1);
	CHECK_INT(rt("GET", "/api/stats", &r), 0);
	CHECK_INT(r.kind, ROUTE_STATS);
	CHECK_INT(r.auth, 1);
	CHECK_INT(rt("GET", "/api/other", &r), 404);
	CHECK_INT(r.auth, 1);
	CHECK_INT(rt("GET", "/", &r), 0);
	CHECK_INT(r.kind, ROUTE_DASHBOARD);
	CHECK(r.filelen == 10 && memcmp(r.file, "index.html", 10) == 0);
	CHECK_INT(rt("GET", "/app.js?v=2", &r), 0);
	CHECK(r.filelen == 6 && memcmp(r.file, "app.js", 6) == 0);
	CHECK_INT(rt("GET", "/health?x=1", &r), 0);
	CHECK_INT(r.kind, ROUTE_HEALTH);
	CHECK_INT(rt("GET", "/nothere", &r), 404);
	CHECK_INT(rt("GET", "/a/b.js", &r), 404);
	CHECK_INT(rt("GET", "/.hidden.js", &r), 404);
	CHECK_INT(rt("GET", "/healthz", &r), 404);
}

TEST(route_upstream_exact)
{
	struct route r;

	CHECK_INT(rt("GET", "/upstream/aidb/v1/health", &r), 0);
	CHECK_INT(r.kind, ROUTE_UPSTREAM);
	CHECK_INT(r.upstream, 0);
	CHECK_STR(r.target, "/v1/health");
	CHECK_INT(r.auth, 1);
	CHECK_INT(rt("GET", "/upstream/qdrant/collections", &r), 0);
	CHECK_INT(r.upstream, 1);
	/* prefixes and extensions of an allowed path are not allowed */
	CHECK_INT(rt("GET", "/upstream/aidb/v1/health/x", &r), 403);
	CHECK_INT(r.refusal, ROUTE_NOT_ALLOWED);
	CHECK_INT(rt("GET", "/upstream/aidb/v1/healt", &r), 403);
	CHECK_INT(rt("GET", "/upstream/aidb/v1/health/", &r), 403);
	CHECK_INT(rt("GET", "/upstream/aidb/V1/health", &r), 403);
	CHECK_INT(rt("GET", "/upstream/aidb", &r), 403);
	CHECK_INT(rt("GET", "/upstream/aidb/", &r), 403);
	/* query strings only when listed, exactly */
	CHECK_INT(rt("GET", "/upstream/aidb/v1/health?x=1", &r), 403);
	CHECK_INT(r.refusal, ROUTE_NOT_ALLOWED);
	CHECK_INT(rt("GET", "/upstream/aidb/v1/search?q=x", &r), 0);
	CHECK_STR(r.target, "/v1/search?q=x");
	CHECK_INT(rt("GET", "/upstream/aidb/v1/search?q=y", &r), 403);
	CHECK_INT(rt("GET", "/upstream/aidb/v1/search", &r), 403);
	/* unknown upstreams */
	CHECK_INT(rt("GET", "/upstream/nope/v1/health", &r), 403);
	CHECK_INT(r.refusal, ROUTE_UNKNOWN_UPSTREAM);
	CHECK_INT(r.auth, 1);
	CHECK_INT(rt("GET", "/upstream/aid/v1/health", &r), 403);
	CHECK_INT(rt("GET", "/upstream/aidbx/v1/health", &r), 403);
	CHECK_INT(rt("GET", "/upstream/", &r), 403);
	CHECK_INT(rt("GET", "/upstream", &r), 403);
}

TEST(route_refusals)
{
	static const char *const bad[] = {
		"/upstream/aidb/../etc/passwd", "/upstream/aidb/v1/../health",
		"/upstream/aidb/./v1/health", "/upstream/aidb/v1/.",
		"/upstream/aidb/v1/..", "/..", "/.", "/./health",
		"/upstream/aidb/%2e%2e/x", "/upstream/aidb/%2E%2E/x",
		"/upstream/aidb/v1%2fhealth", "/upstream/aidb/v1%2Fhealth",
		"/upstream/aidb/v1%5chealth", "/upstream/aidb/v1%5Chealth",
		"/upstream/aidb/%2e/health", "/upstream/aidb/v1/health%00",
		"/upstream/aidb/v1%252e", "/upstream/aidb/v1/%0a",
		"/upstream/aidb/v1\\health", "/upstream\\aidb/v1/health",
		"//upstream/aidb/v1/health", "/upstream//aidb/v1/health",
		"/upstream/aidb//v1/health", "/upstream/aidb/v1/health//",
		"/health#x", "/he alth", "/h\xc3\xa9", "/%", "/%2", "/%zz",
		"health", "", "*", "http://x/health", "/health?a=%0d",
	};
	struct route r;
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (rt("GET", bad[i], &r) != 403 ||
		    r.refusal != ROUTE_BAD_TARGET) {
			unit_fail(__FILE__, __LINE__, "not refused: \"%s\"",
			    bad[i]);
			return;
		}
	}
	/* a NUL inside the target */
	CHECK_INT(route_match(ups, NUP, "GET", "/health\0/x", 10, 2048, &r), 403);
	CHECK_INT(r.refusal, ROUTE_BAD_TARGET);
	/* "..." and ".x" are names, not dot segments; %2e in a query is data */
	CHECK_INT(rt("GET", "/upstream/aidb/.../x", &r), 403);
	CHECK_INT(r.refusal, ROUTE_NOT_ALLOWED);
	CHECK_INT(rt("GET", "/upstream/aidb/.x", &r), 403);
	CHECK_INT(r.refusal, ROUTE_NOT_ALLOWED);
	CHECK_INT(rt("GET", "/health?a=%2e%2e%2f", &r), 0);
	/* the target's safety is checked before the method */
	CHECK_INT(rt("POST", "/../x", &r), 403);
	CHECK_INT(rt("POST", "/health", &r), 405);
	CHECK_INT(r.refusal, ROUTE_BAD_METHOD);
	CHECK_INT(rt("get", "/health", &r), 405);
	CHECK_INT(rt("OPTIONS", "/health", &r), 405);
	CHECK_INT(rt("PUT", "/upstream/aidb/v1/health", &r), 405);
	/* length */
	CHECK_INT(route_match(ups, NUP, "GET", "/health", 7, 6, &r), 414);
	CHECK_INT(r.refusal, ROUTE_TOO_LONG);
	CHECK_INT(route_match(ups, NUP, "GET", "/health", 7, 7, &r), 0);
}

TEST(route_target_safe_for_config)
{
	CHECK(route_target_safe("/v1/health", 10));
	CHECK(route_target_safe("/v1/search?q=a%2Fb", 18));
	CHECK(!route_target_safe("v1/health", 9));
	CHECK(!route_target_safe("/v1/../x", 8));
}

TEST(route_bearer)
{
	CHECK(route_bearer_ok("Bearer s3cret", "s3cret", 6));
	CHECK(route_bearer_ok("bearer   s3cret  ", "s3cret", 6));
	CHECK(!route_bearer_ok(NULL, "s3cret", 6));
	CHECK(!route_bearer_ok("", "s3cret", 6));
	CHECK(!route_bearer_ok("Bearer", "s3cret", 6));
	CHECK(!route_bearer_ok("Bearer ", "s3cret", 6));
	CHECK(!route_bearer_ok("Basic s3cret", "s3cret", 6));
	CHECK(!route_bearer_ok("Bearers3cret", "s3cret", 6));
	CHECK(!route_bearer_ok("Bearer s3cre", "s3cret", 6));
	CHECK(!route_bearer_ok("Bearer s3cretX", "s3cret", 6));
	CHECK(!route_bearer_ok("Bearer S3cret", "s3cret", 6));
	CHECK(!route_bearer_ok("Bearer s3cret", "", 0));
	/* a credential that repeats the token is still wrong */
	CHECK(!route_bearer_ok("Bearer s3crets3cret", "s3cret", 6));
}

/* Random targets built from an alphabet rich in the dangerous bytes:
 * whatever is routed is safe, and what reaches an upstream is exactly
 * one of its allow entries. */
TEST(route_fuzz)
{
	static const char *const pieces[] = {
		"/", "/", "/", ".", "..", "%2e", "%2f", "%5c", "%00", "%", "\\",
		"upstream", "aidb", "qdrant", "v1", "health", "search", "?",
		"q=x", "#", " ", "a", "%41", "\x01", "\xff", "api", "stats",
		"collections", "//", "/./", "/../",
	};
	char target[256];
	struct route r;
	unsigned seed = 12345;
	int i, k, n;

	for (i = 0; i < 200000; i++) {
		size_t len = 0;
		n = 1 + (int)(rand_r(&seed) % 8);
		for (k = 0; k < n; k++) {
			const char *p = pieces[rand_r(&seed) %
			    (sizeof(pieces) / sizeof(pieces[0]))];
			size_t pl = strlen(p);
			if (len + pl >= sizeof(target))
				break;
			memcpy(target + len, p, pl);
			len += pl;
		}
		route_match(ups, NUP, "GET", target, len, 2048, &r);
		if (r.status == 0 && !route_target_safe(target, len)) {
			unit_fail(__FILE__, __LINE__, "unsafe routed: %.*s",
			    (int)len, target);
			return;
		}
		if (r.kind == ROUTE_UPSTREAM) {
			const struct route_upstream *u = &ups[r.upstream];
			size_t j, ok = 0;
			for (j = 0; j < u->nallow; j++)
				ok |= r.target == u->allow[j];
			if (!ok || memmem(target, len, "/..", 3) != NULL ||
			    memmem(target, len, "%2", 2) != NULL) {
				unit_fail(__FILE__, __LINE__, "bad upstream "
				    "route: %.*s", (int)len, target);
				return;
			}
		}
		if ((r.status == 0) != (r.kind != ROUTE_REFUSED)) {
			unit_fail(__FILE__, __LINE__, "status and kind disagree");
			return;
		}
	}
}
