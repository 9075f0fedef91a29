/*
 * Probes: one call to a dependency that says whether it is up.
 *
 * http:// and https://: a libcurl GET; a 2xx answer is up.  Redirects
 * are not followed (a 3xx is down), the body is read and discarded.
 * postgres:// and postgresql://: a libpq connection (no query); the
 * password comes from libpq's environment (PGPASSWORD) or its password
 * file (PGPASSFILE, ~/.pgpass), never from the URL.
 *
 * libcurl (libcurl.so.4) and libpq (libpq.so.5) are loaded with dlopen
 * on the first probe of their kind, so that a program linking this
 * module starts as fast as one that does not (aistack-breaker run never
 * loads them).  A library that cannot be loaded is EXIT_UNAVAILABLE.
 */
#ifndef AISTACK_PROBE_H
#define AISTACK_PROBE_H

#include <stdint.h>

#include "base/err.h"

enum probe_kind {
	PROBE_HTTP,
	PROBE_POSTGRES
};

/*
 * Classify url by its scheme.  Fails with EXIT_USAGE for any other
 * scheme and for a URL that carries a password (secrets never travel on
 * command lines); the message does not repeat the URL.
 */
int probe_check(const char *url, enum probe_kind *kind, struct error *e);

/*
 * Probe url once, giving up after timeout_ms (0: no limit); an HTTP probe
 * sends user_agent (NULL: libcurl's none).  Returns 0
 * when the dependency is up, -1 otherwise with the reason in e
 * (EXIT_UNAVAILABLE when it is down or timed out, *timed_out set
 * then; EXIT_USAGE for a URL that probe_check refuses).  Not
 * thread-safe on its first call (libcurl's global initialisation).
 */
int probe_run(const char *url, uint64_t timeout_ms, const char *user_agent,
    int *timed_out, struct error *e);

#endif
