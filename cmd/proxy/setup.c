/*
 * The configuration (the command line, then the environment, then the
 * [proxy] and [upstream NAME] sections of the file, then the defaults)
 * made into a struct proxy, and its release.
 */
#include <errno.h>
#include <math.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/exitcode.h"
#include "base/parse.h"

#include "proxy.h"
#include "token.h"

#define DEFAULT_LISTEN		"127.0.0.1:8888"
#define DEFAULT_RATE		"60/min"
#define DEFAULT_TIMEOUT_MS	5000
#define DEFAULT_MAX_RESPONSE	(1024 * 1024)
#define DEFAULT_MAX_BACKLOG	(100ULL * 1024 * 1024)

/* A setting: the flag's value, else the environment's or the file's. */
static const char *
setting(struct proxy *p, const char *flag, const char *key, char *src)
{
	if (flag != NULL) {
		src[0] = '\0';
		return flag;
	}
	return config_lookup(&p->cfg, "proxy", key, src);
}

/* A bad value: of the configuration (src names it) or of a flag (""). */
static int
bad_setting(struct error *e, const char *src, const char *key, const char *v)
{
	if (src[0] != '\0')
		return error_set(e, EXIT_CONFIG, "%s: invalid %s \"%s\"", src,
		    key, v);
	return error_set(e, EXIT_USAGE, "--%s: invalid value \"%s\"", key, v);
}

/* A size, duration or count setting of [proxy] with its default. */
enum kind { K_SIZE, K_DURATION, K_COUNT };

static int
numeric(struct proxy *p, const char *key, enum kind k, uint64_t def,
    uint64_t min, uint64_t max, uint64_t *out, struct error *e)
{
	char src[CONFIG_SOURCE_MAX];
	const char *v;
	int rc;

	*out = def;
	if ((v = config_lookup(&p->cfg, "proxy", key, src)) == NULL)
		return 0;
	rc = k == K_SIZE ? parse_size(v, out) : k == K_DURATION ?
	    parse_duration_ms(v, out) : parse_u64(v, out);
	if (rc == -1 || *out < min || *out > max)
		return bad_setting(e, src, key, v);
	return 0;
}

static int
parse_listen(struct proxy *p, const char *s, const char *src,
    struct error *e)
{
	struct addrinfo hints, *res = NULL;
	char host[256];
	const char *colon, *port;
	size_t hl;
	int rc;

	if (s[0] == '[') {
		colon = strstr(s, "]:");
		if (colon == NULL)
			return bad_setting(e, src, "listen", s);
		hl = (size_t)(colon - s - 1);
		if (hl >= sizeof(host))
			return bad_setting(e, src, "listen", s);
		memcpy(host, s + 1, hl);
		port = colon + 2;
	} else {
		colon = strrchr(s, ':');
		if (colon == NULL || (size_t)(colon - s) >= sizeof(host))
			return bad_setting(e, src, "listen", s);
		hl = (size_t)(colon - s);
		memcpy(host, s, hl);
		port = colon + 1;
	}
	host[hl] = '\0';
	if (port[0] == '\0' || strspn(port, "0123456789") != strlen(port) ||
	    strlen(port) > 5 || strtol(port, NULL, 10) > 65535)
		return bad_setting(e, src, "listen", s);
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	if ((rc = getaddrinfo(host[0] ? host : NULL, port, &hints, &res)) != 0)
		return error_set(e, src[0] != '\0' ? EXIT_CONFIG : EXIT_USAGE,
		    "%s: %s", s, gai_strerror(rc));
	memcpy(&p->addr, res->ai_addr, res->ai_addrlen);
	p->addrlen = res->ai_addrlen;
	freeaddrinfo(res);
	return 0;
}

/* The names of the [upstream NAME] sections, each once, into p->up. */
static int
upstream_names(struct proxy *p, struct error *e)
{
	size_t i, j, cap = 0;

	for (i = 0; i < p->cfg.n; i++) {
		const char *sec = p->cfg.entries[i].section;
		const char *name = sec + 9;
		struct upstream *u;
		if (strncmp(sec, "upstream ", 9) != 0)
			continue;
		for (j = 0; j < p->nup; j++)
			if (strcmp(p->up[j].name, name) == 0)
				break;
		if (j < p->nup)
			continue;
		if (!name_valid(name))
			return error_set(e, EXIT_CONFIG, "%s:%d: [%s]: an "
			    "upstream name is [a-z0-9][a-z0-9._-]{0,63}",
			    p->cfg.path, p->cfg.entries[i].line, sec);
		if (p->nup == cap) {
			struct upstream *nu;
			cap = cap ? cap * 2 : 8;
			if ((nu = realloc(p->up, cap * sizeof(*nu))) == NULL)
				return error_errno(e, EXIT_SOFTWARE, "upstreams");
			p->up = nu;
		}
		u = &p->up[p->nup++];
		memset(u, 0, sizeof(*u));
		snprintf(u->name, sizeof(u->name), "%s", name);
	}
	return 0;
}

/* Add the paths of one allow value (white space or comma separated). */
static int
upstream_allow(struct proxy *p, struct upstream *u, const char *sec,
    const char *value, struct error *e)
{
	char *copy = strdup(value), *tok, *save = NULL;
	const char **na;

	if (copy == NULL)
		return error_errno(e, EXIT_SOFTWARE, "[%s] allow", sec);
	for (tok = strtok_r(copy, " \t,", &save); tok != NULL;
	    tok = strtok_r(NULL, " \t,", &save)) {
		if (!route_target_safe(tok, strlen(tok))) {
			error_set(e, EXIT_CONFIG, "%s: [%s]: allow \"%s\": not "
			    "a safe absolute path", p->cfg.path, sec, tok);
			free(copy);
			return -1;
		}
		na = realloc(u->allow, (u->nallow + 1) * sizeof(*na));
		if (na != NULL)
			u->allow = na;
		if (na == NULL || (na[u->nallow] = strdup(tok)) == NULL) {
			error_errno(e, EXIT_SOFTWARE, "[%s] allow", sec);
			free(copy);
			return -1;
		}
		u->nallow++;
	}
	free(copy);
	return 0;
}

/* One [upstream NAME] section: url, timeout, max_response, allow, its
 * client and its breaker. */
static int
upstream_load(struct proxy *p, struct upstream *u, const char *ua,
    struct error *e)
{
	struct breaker_settings bs;
	char src[CONFIG_SOURCE_MAX];
	const char *v, **vals;
	char sec[NAME_MAX_LEN + 16];
	size_t nv, j;

	snprintf(sec, sizeof(sec), "upstream %s", u->name);
	if ((v = config_lookup(&p->cfg, sec, "url", src)) == NULL)
		return error_set(e, EXIT_CONFIG, "%s: [%s]: missing url",
		    p->cfg.path, sec);
	if ((u->url = strdup(v)) == NULL)
		return error_errno(e, EXIT_SOFTWARE, "[%s] url", sec);
	u->timeout_ms = DEFAULT_TIMEOUT_MS;
	if ((v = config_lookup(&p->cfg, sec, "timeout", src)) != NULL &&
	    (parse_duration_ms(v, &u->timeout_ms) == -1 ||
	    u->timeout_ms == 0 || u->timeout_ms > LONG_MAX))
		return bad_setting(e, src, "timeout", v);
	u->max_response = DEFAULT_MAX_RESPONSE;
	if ((v = config_lookup(&p->cfg, sec, "max_response", src)) != NULL &&
	    (parse_size(v, &u->max_response) == -1 ||
	    u->max_response == 0 || u->max_response > (1ULL << 30)))
		return bad_setting(e, src, "max_response", v);
	/* allow: repeated keys, each one or more paths */
	nv = config_lookup_all(&p->cfg, sec, "allow", &vals);
	for (j = 0; j < nv; j++)
		if (upstream_allow(p, u, sec, vals[j], e) == -1) {
			free(vals);
			return -1;
		}
	free(vals);
	if ((u->http = httpc_new(u->url, u->timeout_ms,
	    (size_t)u->max_response, ua, e)) == NULL)
		return error_wrap(e, "[%s] url", sec);
	breaker_settings_init(&bs);
	if (breaker_settings_load(&bs, &p->cfg, u->name, e) == -1 ||
	    breaker_settings_check(&bs, e) == -1 ||
	    breaker_init(&u->br, u->name, &bs, e) == -1 ||
	    breaker_cache_enable(&u->br, e) == -1)
		return -1;
	return 0;
}

/* Collect the [upstream NAME] sections and the router's table of them. */
static int
load_upstreams(struct proxy *p, struct error *e)
{
	char ua[64];
	size_t i;

	snprintf(ua, sizeof(ua), "aistack-proxy/%s", AISTACK_VERSION);
	if (upstream_names(p, e) == -1)
		return -1;
	for (i = 0; i < p->nup; i++)
		if (upstream_load(p, &p->up[i], ua, e) == -1)
			return -1;
	if (p->nup > 0 && (p->rt = calloc(p->nup, sizeof(*p->rt))) == NULL)
		return error_errno(e, EXIT_SOFTWARE, "upstreams");
	for (i = 0; i < p->nup; i++) {
		p->rt[i].name = p->up[i].name;
		p->rt[i].allow = p->up[i].allow;
		p->rt[i].nallow = p->up[i].nallow;
	}
	return 0;
}

/* The bearer token: AISTACK_PROXY_TOKEN, else token_file's bytes
 * (token.h has the rules); none: no route asks for one. */
static int
load_token(struct proxy *p, struct error *e)
{
	const char *env = getenv("AISTACK_PROXY_TOKEN"), *v;
	char src[CONFIG_SOURCE_MAX];
	char why[64];
	size_t i, len;
	long n;

	for (i = 0; i < p->cfg.n; i++)
		if (strcmp(p->cfg.entries[i].section, "proxy") == 0 &&
		    strcmp(p->cfg.entries[i].key, "token") == 0)
			return error_set(e, EXIT_CONFIG, "%s:%d: token: secrets "
			    "are not read from the configuration file; use "
			    "token_file (mode 0600)", p->cfg.path,
			    p->cfg.entries[i].line);
	if (env != NULL) {
		if (strlen(env) >= sizeof(p->token))
			return error_set(e, EXIT_CONFIG,
			    "AISTACK_PROXY_TOKEN: too long");
		if ((n = token_parse(env, strlen(env), 0, why,
		    sizeof(why))) == -1)
			return error_set(e, EXIT_CONFIG, "AISTACK_PROXY_TOKEN: "
			    "%s", why);
		memcpy(p->token, env, (size_t)n);
		p->toklen = (size_t)n;
		return 0;
	}
	if ((v = config_lookup(&p->cfg, "proxy", "token_file", src)) == NULL)
		return 0;
	if (secret_file_read(v, p->token, sizeof(p->token), &len, e) == -1)
		return error_wrap(e, "%s: token_file", src);
	if ((n = token_parse(p->token, len, 1, why, sizeof(why))) == -1) {
		explicit_bzero(p->token, sizeof(p->token));
		return error_set(e, EXIT_CONFIG, "%s: token_file: %s: %s", src,
		    v, why);
	}
	p->toklen = (size_t)n;
	return 0;
}

/* [proxy] rate, burst, listen and the numeric settings. */
static int
load_limits(struct proxy *p, struct error *e)
{
	const struct proxy_opts *o = p->o;
	char src[CONFIG_SOURCE_MAX];
	const char *v;
	uint64_t mu;

	v = setting(p, o->rate, "rate", src);
	if (parse_rate_per_min(v != NULL ? v : DEFAULT_RATE, &p->per_min) == -1)
		return bad_setting(e, src, "rate", v);
	p->burst = (uint64_t)ceil(p->per_min);
	if ((v = setting(p, o->burst, "burst", src)) != NULL &&
	    (parse_u64(v, &p->burst) == -1 || p->burst == 0 ||
	    p->burst > 1000000000))
		return bad_setting(e, src, "burst", v);
	v = setting(p, o->listen, "listen", src);
	if (parse_listen(p, v != NULL ? v : DEFAULT_LISTEN, src, e) == -1)
		return -1;
	if (numeric(p, "max_clients", K_COUNT, 65536, 1, 1u << 30,
	    &p->max_clients, e) == -1 ||
	    numeric(p, "ipv6_prefix", K_COUNT, 64, 1, 128, &p->prefix6,
	    e) == -1 ||
	    numeric(p, "max_connections", K_COUNT, 256, 1, 65536,
	    &p->max_connections, e) == -1 ||
	    numeric(p, "max_connections_per_client", K_COUNT, 64, 1, 65536,
	    &p->max_per_client, e) == -1 ||
	    numeric(p, "idle_timeout", K_DURATION, 30000, 1000, 86400000,
	    &p->idle_timeout_ms, e) == -1 ||
	    numeric(p, "header_timeout", K_DURATION, 10000, 1000, 3600000,
	    &p->header_timeout_ms, e) == -1 ||
	    numeric(p, "max_header", K_SIZE, 32768, 4096, 1 << 24,
	    &p->max_header, e) == -1 ||
	    numeric(p, "shutdown_grace", K_DURATION, 10000, 0, 3600000,
	    &p->shutdown_grace_ms, e) == -1 ||
	    numeric(p, "max_url", K_SIZE, 2048, 16, 65536, &mu, e) == -1)
		return -1;
	p->max_url = (size_t)mu;
	p->max_backlog = DEFAULT_MAX_BACKLOG;
	if ((v = config_lookup(&p->cfg, "ingest", "max_backlog", src)) != NULL &&
	    parse_size(v, &p->max_backlog) == -1)
		return error_set(e, EXIT_CONFIG, "%s: invalid max_backlog "
		    "\"%s\"", src, v);
	return 0;
}

/* The rate limit and connection tables. */
static int
load_tables(struct proxy *p, struct error *e)
{
	struct ratelimit_settings rs;

	ratelimit_settings_init(&rs);
	rs.per_min = p->per_min;
	rs.burst = p->burst;
	rs.max_clients = (size_t)p->max_clients;
	rs.prefix6 = (unsigned)p->prefix6;
	if ((p->rl = ratelimit_new(&rs)) == NULL)
		return error_errno(e, EXIT_SOFTWARE, "rate limit table");
	if ((p->conns = connlimit_new(p->max_connections,
	    (unsigned)p->max_per_client, (unsigned)p->prefix6)) == NULL)
		return error_errno(e, EXIT_SOFTWARE, "connection table");
	return 0;
}

static int
setup(struct proxy *p, struct error *e)
{
	const struct proxy_opts *o = p->o;
	char src[CONFIG_SOURCE_MAX];

	if ((o->config != NULL ? config_load_file(&p->cfg, o->config, e) :
	    config_load(&p->cfg, e)) == -1)
		return -1;
	if (load_limits(p, e) == -1 || load_token(p, e) == -1 ||
	    httpc_global_init(e) == -1 || load_upstreams(p, e) == -1 ||
	    load_tables(p, e) == -1)
		return -1;

	if (dashboard_load(p, setting(p, o->dashboard, "dashboard", src),
	    e) == -1)
		return -1;
	return accesslog_open(p, setting(p, o->access_log, "access_log", src),
	    e);
}

struct proxy *
proxy_new(const struct proxy_opts *o, struct error *e)
{
	struct proxy *p;

	if ((p = calloc(1, sizeof(*p))) == NULL) {
		error_errno(e, EXIT_SOFTWARE, "proxy");
		return NULL;
	}
	p->o = o;
	p->logfd = -1;
	p->stopfd = -1;
	if (setup(p, e) == -1) {
		proxy_free(p);
		return NULL;
	}
	return p;
}

void
proxy_free(struct proxy *p)
{
	size_t i, j;

	if (p == NULL)
		return;
	server_stop(p);
	for (i = 0; i < p->nup; i++) {
		httpc_free(p->up[i].http);
		breaker_fini(&p->up[i].br);
		free(p->up[i].url);
		for (j = 0; j < p->up[i].nallow; j++)
			free((void *)p->up[i].allow[j]);
		free(p->up[i].allow);
	}
	free(p->up);
	free(p->rt);
	for (i = 0; i < p->nfiles; i++)
		if (p->files[i].owned)
			free((void *)p->files[i].data);
	ratelimit_free(p->rl);
	connlimit_free(p->conns);
	accesslog_close(p);
	explicit_bzero(p->token, sizeof(p->token));
	config_release(&p->cfg);
	httpc_global_cleanup();
	free(p);
}
