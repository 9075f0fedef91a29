/*
 * aistack-proxy: the stack's front door.  Serves the dashboard, /health,
 * /metrics and /api/stats from the state directory, and passes GET and
 * HEAD requests for allow-listed paths to the configured upstreams
 * through their circuit breakers, rate limited per client address.
 *
 * Threads: one worker a CPU (up to MAX_WORKERS), each an event loop
 * (epoll, serve()) that does all the work of its connections: a
 * libmicrohttpd daemon of its own (run from the loop, its epoll set
 * inside ours, on a listening socket of its own: SO_REUSEPORT shares the
 * connections out) and their upstream calls (a libcurl multi handle, its
 * sockets in our set, connections kept alive).  An upstream call suspends
 * its connection, which is resumed, in the same thread, when the call
 * ends: nothing ever waits for an upstream, and a request crosses no
 * thread.  Connections are bounded in total (shared out among the
 * workers) and per client (counted across them, lib/connlimit) and time
 * out when idle.  The main thread waits for signals: SIGTERM or SIGINT
 * tell the workers to stop accepting, let the requests in flight finish
 * (up to shutdown_grace; calls still running then are given up with 503)
 * and exit 0; SIGHUP reopens the access log.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <microhttpd.h>

#include "breaker.h"
#include "buf.h"
#include "clock.h"
#include "config.h"
#include "connlimit.h"
#include "consumer.h"
#include "err.h"
#include "exitcode.h"
#include "fsutil.h"
#include "httpclient.h"
#include "parse.h"
#include "promtext.h"
#include "ratelimit.h"
#include "route.h"
#include "statedir.h"
#include "stream.h"

#define DEFAULT_LISTEN		"127.0.0.1:8888"
#define DEFAULT_RATE		"60/min"
#define DEFAULT_TIMEOUT_MS	5000
#define DEFAULT_MAX_RESPONSE	(1024 * 1024)
#define DEFAULT_MAX_BACKLOG	(100ULL * 1024 * 1024)
#define DASHBOARD_REL		"../share/aistack/dashboard"
#define DASHBOARD_MAX_FILES	64
#define DASHBOARD_MAX_FILE	(1024 * 1024)
#define METRICS_MAX_FILE	(4 * 1024 * 1024)
#define INGEST_FRESH_S		30
#define MAX_TOKEN		4096
#define LOG_TARGET_MAX		512
#define MAX_WORKERS		8
#define MAX_EVENTS		64
#define FLUSH_MS		1000	/* to send the 503s after the grace */
#define LOG_BATCH		(64 * 1024)	/* access log bytes held at most */

#define CSP "default-src 'self'; base-uri 'none'; frame-ancestors 'none'; " \
	"form-action 'self'"

enum route_label { L_DASHBOARD, L_HEALTH, L_METRICS, L_API, L_UPSTREAM,
	L_OTHER, L_N };
static const char *const label_names[L_N] = {
	"dashboard", "health", "metrics", "api", "upstream", "other"
};

/* Upstream latency histogram bounds, seconds. */
static const double buckets[] = {
	0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10
};
#define NBUCKETS (sizeof(buckets) / sizeof(buckets[0]))

/* Upstream outcomes counted (httpc results, then the proxy's own). */
enum { U_OK, U_DOWN, U_TIMEOUT, U_TOO_BIG, U_ERROR, U_OPEN, U_BREAKER_ERR,
	U_N };
static const char *const outcome_names[U_N] = {
	"ok", "down", "timeout", "too_big", "error", "breaker_open",
	"breaker_error"
};

struct proxy_opts {
	int verbose;
	const char *config;
	const char *listen;
	const char *rate;
	const char *burst;
	const char *dashboard;
	const char *access_log;
};

struct upstream {
	char name[NAME_MAX_LEN + 1];
	char *url;
	uint64_t timeout_ms;
	uint64_t max_response;
	const char **allow;	/* strings owned by the upstream */
	size_t nallow;
	struct breaker br;
	struct httpc *http;
	uint64_t hist[NBUCKETS + 1];	/* atomic */
	uint64_t sum_us;		/* atomic */
	uint64_t outcomes[U_N];		/* atomic */
};

struct dfile {
	char name[129];
	char *data;
	size_t len;
	const char *ctype;
};

struct proxy {
	const struct proxy_opts *o;
	struct config cfg;
	struct upstream *up;
	size_t nup;
	struct route_upstream *rt;
	struct worker *workers;
	size_t nworkers;
	int stopfd;		/* an eventfd: the main thread says stop */
	struct ratelimit *rl;
	struct connlimit *conns;	/* connections per client, all workers */
	double per_min;
	uint64_t burst;
	char token[MAX_TOKEN];
	size_t toklen;
	char dashdir[PATH_MAX];
	struct dfile files[DASHBOARD_MAX_FILES];
	size_t nfiles;
	char *access_log;
	int logfd;
	uint64_t max_backlog;
	size_t max_url;
	uint64_t max_header;
	uint64_t max_connections;
	uint64_t max_per_client;
	uint64_t idle_timeout_ms;
	uint64_t shutdown_grace_ms;
	uint64_t max_clients;
	uint64_t prefix6;
	struct sockaddr_storage addr;
	socklen_t addrlen;
	/* counters, updated with __atomic builtins */
	uint64_t requests[L_N][600];
	uint64_t rate_limited;
	uint64_t inflight;
	uint64_t connections;
};

/* One event loop (serve()): a thread, its connections (a libmicrohttpd
 * daemon run from the loop) and its upstream calls. */
struct worker {
	struct proxy *p;
	struct MHD_Daemon *mhd;
	struct httpc_loop *loop;
	int lsock;		/* its listening socket (SO_REUSEPORT) */
	int epfd;		/* libmicrohttpd's set, libcurl's sockets, stopfd */
	pthread_t thread;
	int started;
	int resumed;		/* a connection was resumed since MHD_run */
	struct buf log;		/* access log lines not yet written */
};

enum { UP_NONE, UP_CALLING, UP_ENDED, UP_ANSWERED };

struct request {
	struct proxy *p;
	struct worker *w;	/* whose connection this is */
	uint64_t start_us;
	int seen;		/* the first call was made */
	int nul;		/* the target held a NUL byte */
	int answered;
	int status;		/* 0: answered by libmicrohttpd itself */
	uint64_t bytes;
	enum route_label label;
	struct ratelimit_verdict rv;
	int have_rv;
	char method[16];
	char client[INET6_ADDRSTRLEN];
	/* an upstream call: made while the connection is suspended */
	int up_state;		/* UP_NONE, UP_CALLING, UP_ENDED, UP_ANSWERED */
	struct upstream *up;
	struct MHD_Connection *conn;
	struct breaker_ticket ticket;
	struct httpc_response resp;
	enum httpc_result res;
	size_t len;		/* the target's full length */
	char target[];		/* its first min(len, max_url + 1) bytes */
};

static const char usage_text[] =
"usage: aistack-proxy [-v] [-c CONFIG] [-l ADDR:PORT] [--rate N/min] [--burst N]\n"
"                     [--dashboard DIR] [--access-log FILE]\n"
"\n"
"Serve the dashboard, /health, /metrics and /api/stats, and pass GET and\n"
"HEAD requests for allow-listed paths to the configured upstreams through\n"
"their circuit breakers, rate limited per client address.\n"
"\n"
"  -v, --verbose            report the address and upstream failures on standard error\n"
"  -c, --config CONFIG      read CONFIG instead of the usual configuration file\n"
"  -l, --listen ADDR:PORT   listen there (default 127.0.0.1:8888; port 0: any free one)\n"
"      --rate N/min         requests a client may make (default 60/min; also N/s, N/h)\n"
"      --burst N            requests a client may make at once (default: the rate a minute)\n"
"      --dashboard DIR      serve the dashboard from DIR\n"
"      --access-log FILE    append one line a request to FILE (default standard error)\n"
"  -h, --help               show this help\n"
"      --version            show the version\n";

static void
count(uint64_t *c, uint64_t n)
{
	__atomic_fetch_add(c, n, __ATOMIC_RELAXED);
}

static uint64_t
load(const uint64_t *c)
{
	return __atomic_load_n(c, __ATOMIC_RELAXED);
}

/* --- responses ------------------------------------------------------------ */

static int
add_header(struct MHD_Response *r, const char *name, const char *value)
{
	return MHD_add_response_header(r, name, value) == MHD_YES ? 0 : -1;
}

/* Add "Name: value\n" lines (from an upstream) to r. */
static void
add_header_lines(struct MHD_Response *r, const struct buf *lines)
{
	char name[128], value[1024];
	size_t i = 0, end, nl;
	const char *colon;

	while (i < lines->len) {
		end = i;
		while (end < lines->len && lines->data[end] != '\n')
			end++;
		colon = memchr(lines->data + i, ':', end - i);
		if (colon != NULL) {
			nl = (size_t)(colon - (lines->data + i));
			if (nl < sizeof(name) && end - nl - i - 2 < sizeof(value) &&
			    end >= i + nl + 2) {
				memcpy(name, lines->data + i, nl);
				name[nl] = '\0';
				memcpy(value, colon + 2, end - i - nl - 2);
				value[end - i - nl - 2] = '\0';
				add_header(r, name, value);
			}
		}
		i = end + 1;
	}
}

/*
 * Queue a response: status, content type, body (when owned is nonzero
 * the buffer's memory passes to libmicrohttpd; otherwise it must outlive
 * the response), extra headers ("Name: value\n" lines, may be NULL), and
 * the headers every response carries.
 */
static enum MHD_Result
respond(struct request *rq, struct MHD_Connection *conn, int status,
    const char *ctype, const char *body, size_t len, int owned,
    const char *cache, const struct buf *extra)
{
	struct MHD_Response *r;
	enum MHD_Result ret;
	char v[160];

	if (owned)
		r = MHD_create_response_from_buffer_with_free_callback(len,
		    (void *)body, free);
	else
		r = MHD_create_response_from_buffer(len, (void *)body,
		    MHD_RESPMEM_PERSISTENT);
	if (r == NULL) {
		if (owned)
			free((void *)body);
		return MHD_NO;
	}
	add_header(r, "Content-Security-Policy", CSP);
	add_header(r, "X-Content-Type-Options", "nosniff");
	add_header(r, "Referrer-Policy", "no-referrer");
	add_header(r, "X-Frame-Options", "DENY");
	add_header(r, "Cross-Origin-Resource-Policy", "same-origin");
	if (ctype != NULL)
		add_header(r, "Content-Type", ctype);
	if (cache != NULL)
		add_header(r, "Cache-Control", cache);
	if (rq->have_rv) {
		snprintf(v, sizeof(v), "\"client\";q=%llu;w=%llu",
		    (unsigned long long)rq->p->burst, (unsigned long long)
		    ceil((double)rq->p->burst * 60.0 / rq->p->per_min));
		add_header(r, "RateLimit-Policy", v);
		snprintf(v, sizeof(v), "\"client\";r=%llu;t=%llu",
		    (unsigned long long)rq->rv.remaining,
		    (unsigned long long)rq->rv.reset_s);
		add_header(r, "RateLimit", v);
	}
	if (extra != NULL)
		add_header_lines(r, extra);
	rq->status = status;
	rq->bytes = len;
	ret = MHD_queue_response(conn, (unsigned)status, r);
	MHD_destroy_response(r);
	return ret;
}

/* A JSON answer built in b (whose memory passes on). */
static enum MHD_Result
respond_json(struct request *rq, struct MHD_Connection *conn, int status,
    struct buf *b, const struct buf *extra)
{
	size_t len = b->len;
	char *data;

	if (buf_putc(b, '\n') == -1) {
		buf_release(b);
		return MHD_NO;
	}
	len = b->len;
	data = b->data;
	b->data = NULL;
	b->len = b->cap = 0;
	return respond(rq, conn, status, "application/json", data, len, 1,
	    "no-store", extra);
}

/* {"error":MSG} with extra headers. */
static enum MHD_Result
respond_error(struct request *rq, struct MHD_Connection *conn, int status,
    const char *msg, const struct buf *extra)
{
	struct buf b = BUF_INIT;

	buf_printf(&b, "{\"error\":\"");
	buf_json_escape(&b, msg, strlen(msg));
	buf_printf(&b, "\"}");
	return respond_json(rq, conn, status, &b, extra);
}

/* --- the state directory ------------------------------------------------- */

static int
names_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The NAMEs of the entries of dir (directories when dirs is nonzero, else
 * regular files ending in suffix), sorted.  Caller frees. */
static size_t
list_dir(const char *dir, int dirs, const char *suffix, char ***out)
{
	struct dirent *de;
	size_t n = 0, cap = 0, sl = suffix != NULL ? strlen(suffix) : 0;
	char **v = NULL, **nv;
	DIR *d;

	*out = NULL;
	if ((d = opendir(dir)) == NULL)
		return 0;
	while ((de = readdir(d)) != NULL) {
		struct stat st;
		size_t l = strlen(de->d_name);
		if (de->d_name[0] == '.')
			continue;
		if (fstatat(dirfd(d), de->d_name, &st, 0) == -1)
			continue;
		if (dirs ? !S_ISDIR(st.st_mode) || !name_valid(de->d_name) :
		    !S_ISREG(st.st_mode) || l <= sl ||
		    strcmp(de->d_name + l - sl, suffix) != 0)
			continue;
		if (n == cap) {
			cap = cap ? cap * 2 : 16;
			if ((nv = realloc(v, cap * sizeof(*v))) == NULL)
				break;
			v = nv;
		}
		if ((v[n] = strdup(de->d_name)) == NULL)
			break;
		n++;
	}
	closedir(d);
	if (n > 0)
		qsort(v, n, sizeof(*v), names_cmp);
	*out = v;
	return n;
}

/* What metrics/ingest-NAME.prom says. */
struct ingest_info {
	int have;
	int paused;
	double appended, rejected, empty, bytes;
};

static int
is_name(const struct prom_sample *s, const char *name)
{
	return s->namelen == strlen(name) && memcmp(s->name, name, s->namelen) == 0;
}

static int
ingest_sample(const struct prom_sample *s, void *arg)
{
	struct ingest_info *in = arg;
	char result[32];

	if (is_name(s, "aistack_ingest_paused"))
		in->paused = s->value > 0;
	else if (is_name(s, "aistack_ingest_records_total") &&
	    prom_label(s, "result", result, sizeof(result)) == 0) {
		if (strcmp(result, "appended") == 0)
			in->appended = s->value;
		else if (strcmp(result, "rejected") == 0)
			in->rejected = s->value;
		else if (strcmp(result, "empty") == 0)
			in->empty = s->value;
	} else if (is_name(s, "aistack_ingest_bytes_total"))
		in->bytes = s->value;
	return 0;
}

static void
ingest_read(const char *metricsdir, const char *name, struct ingest_info *in)
{
	char path[PATH_MAX + 80];
	struct stat st;
	char *text;
	size_t len;

	memset(in, 0, sizeof(*in));
	snprintf(path, sizeof(path), "%s/ingest-%s.prom", metricsdir, name);
	if (stat(path, &st) == -1 || read_file(path, METRICS_MAX_FILE, &text,
	    &len) == -1)
		return;
	in->have = 1;
	prom_each_sample(text, len, ingest_sample, in);
	/* a paused gauge left by an ingest that died long ago says nothing */
	if (time(NULL) - st.st_mtime > INGEST_FRESH_S)
		in->paused = 0;
	free(text);
}

/* Append the streams as JSON: an object name -> {head, backlog, paused}
 * (full == 0, /health) or an array with consumers and ingest counters.
 * *degraded is set when a stream is paused. */
static void
streams_json(struct proxy *p, struct buf *b, int full, int *degraded)
{
	char sdir[PATH_MAX], mdir[PATH_MAX], dir[PATH_MAX + 80];
	char **names = NULL, **cons = NULL;
	size_t n, i, nc, j;
	struct error e;

	buf_putc(b, full ? '[' : '{');
	if (statedir_sub(sdir, sizeof(sdir), "streams", &e) == -1 ||
	    statedir_sub(mdir, sizeof(mdir), "metrics", &e) == -1) {
		buf_putc(b, full ? ']' : '}');
		return;
	}
	n = list_dir(sdir, 1, NULL, &names);
	for (i = 0; i < n; i++) {
		uint64_t head = 0, first = 0, backlog = 0, minc = 0;
		struct ingest_info in;
		int paused;

		snprintf(dir, sizeof(dir), "%s/%s", sdir, names[i]);
		if (stream_backlog(dir, &head, &backlog, &minc, &e) == -1)
			continue;
		stream_head(dir, &head, &first, &e);
		ingest_read(mdir, names[i], &in);
		paused = in.paused || (p->max_backlog > 0 &&
		    backlog > p->max_backlog);
		if (paused)
			*degraded = 1;
		if (b->data != NULL && b->data[b->len - 1] != '[' &&
		    b->data[b->len - 1] != '{')
			buf_putc(b, ',');
		if (!full) {
			buf_printf(b, "\"%s\":{\"head\":%llu,\"backlog\":%llu,"
			    "\"paused\":%s}", names[i], (unsigned long long)head,
			    (unsigned long long)backlog, paused ? "true" : "false");
			continue;
		}
		buf_printf(b, "{\"name\":\"%s\",\"head\":%llu,\"first\":%llu,"
		    "\"backlog\":%llu,\"paused\":%s,\"consumers\":[", names[i],
		    (unsigned long long)head, (unsigned long long)first,
		    (unsigned long long)backlog, paused ? "true" : "false");
		nc = 0;
		if (consumer_list(dir, &cons, &nc, &e) == -1)
			nc = 0;
		for (j = 0; j < nc; j++) {
			struct consumer_state st;
			if (!name_valid(cons[j]) ||
			    consumer_load(dir, cons[j], &st, &e) != 0)
				continue;
			if (b->data[b->len - 1] != '[')
				buf_putc(b, ',');
			buf_printf(b, "{\"name\":\"%s\",\"committed\":%llu,"
			    "\"pending\":%llu,\"lag\":%llu,\"records\":%llu,"
			    "\"updated\":\"", cons[j],
			    (unsigned long long)st.committed,
			    (unsigned long long)st.pending,
			    (unsigned long long)(head > st.committed ?
			    head - st.committed : 0),
			    (unsigned long long)st.records);
			buf_json_escape(b, st.updated, strnlen(st.updated,
			    sizeof(st.updated)));
			buf_printf(b, "\"}");
		}
		if (nc > 0)
			names_free(cons, nc);
		cons = NULL;
		buf_printf(b, "],\"ingest\":");
		if (in.have)
			buf_printf(b, "{\"appended\":%.0f,\"rejected\":%.0f,"
			    "\"empty\":%.0f,\"bytes\":%.0f}", in.appended,
			    in.rejected, in.empty, in.bytes);
		else
			buf_printf(b, "null");
		buf_putc(b, '}');
	}
	names_free(names, n);
	buf_putc(b, full ? ']' : '}');
}

/* The breakers: every breaker file, and every configured upstream's. */
static size_t
breaker_names(struct proxy *p, char ***out)
{
	char **v = NULL, **nv;
	size_t n = 0, i, j;
	struct error e;

	if (breaker_list(&v, &n, &e) == -1) {
		v = NULL;
		n = 0;
	}
	for (i = 0; i < p->nup; i++) {
		for (j = 0; j < n; j++)
			if (strcmp(v[j], p->up[i].name) == 0)
				break;
		if (j < n)
			continue;
		if ((nv = realloc(v, (n + 1) * sizeof(*v))) == NULL)
			break;
		v = nv;
		if ((v[n] = strdup(p->up[i].name)) == NULL)
			break;
		n++;
	}
	if (n > 0)
		qsort(v, n, sizeof(*v), names_cmp);
	*out = v;
	return n;
}

static void
breakers_json(struct proxy *p, struct buf *b, int full, int *degraded)
{
	struct breaker_status st;
	struct error e;
	char **names, when[32];
	size_t n, i;
	int first = 1;

	n = breaker_names(p, &names);
	buf_putc(b, full ? '[' : '{');
	for (i = 0; i < n; i++) {
		if (breaker_status_read(names[i], &st, &e) == -1)
			continue;
		if (st.state != BREAKER_CLOSED)
			*degraded = 1;
		if (!first)
			buf_putc(b, ',');
		first = 0;
		if (!full) {
			buf_printf(b, "\"%s\":\"%s\"", st.name,
			    breaker_state_name(st.state));
			continue;
		}
		when[0] = '\0';
		if (st.data.last_failure != 0) {
			time_t t = (time_t)st.data.last_failure;
			struct tm tm;
			if (gmtime_r(&t, &tm) != NULL)
				strftime(when, sizeof(when),
				    "%Y-%m-%dT%H:%M:%SZ", &tm);
		}
		buf_printf(b, "{\"name\":\"%s\",\"state\":\"%s\",\"failures\":%llu,"
		    "\"retry_in\":%llu,\"opened\":%llu,\"last_failure\":",
		    st.name, breaker_state_name(st.state),
		    (unsigned long long)st.data.failures,
		    (unsigned long long)((st.retry_in_ms + 999) / 1000),
		    (unsigned long long)st.data.opened);
		buf_printf(b, when[0] ? "\"%s\"}" : "null}", when);
	}
	names_free(names, n);
	buf_putc(b, full ? ']' : '}');
}

/* Dedup statistics from metrics/dedup-*.prom: aistack_dedup_records_total
 * by state (the dedup state's name, else the file's); results whose name
 * holds "dup" (duplicate, near_duplicate) are duplicates, "unique" is
 * unique, seen is their sum (lines that were not records are left out). */
struct dedup_acc {
	char names[32][NAME_MAX_LEN + 1];
	double seen[32], dups[32];
	size_t n;
	const char *file;
};

static int
dedup_sample(const struct prom_sample *s, void *arg)
{
	struct dedup_acc *a = arg;
	char state[NAME_MAX_LEN + 1], result[64];
	size_t i;

	if (!is_name(s, "aistack_dedup_records_total") || isnan(s->value))
		return 0;
	if (prom_label(s, "state", state, sizeof(state)) == -1 ||
	    state[0] == '\0')
		snprintf(state, sizeof(state), "%s", a->file);
	if (prom_label(s, "result", result, sizeof(result)) == -1)
		result[0] = '\0';
	for (i = 0; i < a->n; i++)
		if (strcmp(a->names[i], state) == 0)
			break;
	if (i == a->n) {
		if (a->n == 32)
			return 0;
		snprintf(a->names[a->n], sizeof(a->names[0]), "%s", state);
		a->seen[a->n] = a->dups[a->n] = 0;
		a->n++;
	}
	if (strstr(result, "dup") != NULL) {
		a->dups[i] += s->value;
		a->seen[i] += s->value;
	} else if (strcmp(result, "unique") == 0)
		a->seen[i] += s->value;
	return 0;
}

static void
dedup_json(struct buf *b)
{
	char mdir[PATH_MAX], path[PATH_MAX + 300], label[NAME_MAX_LEN + 1];
	struct dedup_acc a;
	struct error e;
	char **files, *text;
	size_t n, i, len;

	memset(&a, 0, sizeof(a));
	buf_putc(b, '[');
	if (statedir_sub(mdir, sizeof(mdir), "metrics", &e) == -1) {
		buf_putc(b, ']');
		return;
	}
	n = list_dir(mdir, 0, ".prom", &files);
	for (i = 0; i < n; i++) {
		if (strncmp(files[i], "dedup-", 6) != 0)
			continue;
		snprintf(path, sizeof(path), "%s/%s", mdir, files[i]);
		if (read_file(path, METRICS_MAX_FILE, &text, &len) == -1)
			continue;
		snprintf(label, sizeof(label), "%.*s",
		    (int)(strlen(files[i]) - 11), files[i] + 6);
		a.file = label;
		prom_each_sample(text, len, dedup_sample, &a);
		free(text);
	}
	names_free(files, n);
	for (i = 0; i < a.n; i++) {
		if (i > 0)
			buf_putc(b, ',');
		buf_printf(b, "{\"name\":\"");
		buf_json_escape(b, a.names[i], strlen(a.names[i]));
		buf_printf(b, "\",\"seen\":%.0f,\"unique\":%.0f,\"duplicates\":%.0f,"
		    "\"duplicate_rate\":%.6f}", a.seen[i], a.seen[i] - a.dups[i],
		    a.dups[i], a.seen[i] > 0 ? a.dups[i] / a.seen[i] : 0.0);
	}
	buf_putc(b, ']');
}

/* --- routes --------------------------------------------------------------- */

static enum MHD_Result
serve_health(struct request *rq, struct MHD_Connection *conn)
{
	struct buf b = BUF_INIT, br = BUF_INIT, st = BUF_INIT;
	int degraded = 0;

	breakers_json(rq->p, &br, 0, &degraded);
	streams_json(rq->p, &st, 0, &degraded);
	buf_printf(&b, "{\"status\":\"%s\",\"circuit_breakers\":",
	    degraded ? "degraded" : "ok");
	buf_append(&b, br.data, br.len);
	buf_printf(&b, ",\"streams\":");
	buf_append(&b, st.data, st.len);
	buf_putc(&b, '}');
	buf_release(&br);
	buf_release(&st);
	return respond_json(rq, conn, 200, &b, NULL);
}

static enum MHD_Result
serve_stats(struct request *rq, struct MHD_Connection *conn)
{
	struct proxy *p = rq->p;
	struct buf b = BUF_INIT, br = BUF_INIT, st = BUF_INIT;
	struct ratelimit_stats rs;
	struct timespec ts;
	uint64_t total = 0;
	size_t i, j;
	int degraded = 0;

	breakers_json(p, &br, 1, &degraded);
	streams_json(p, &st, 1, &degraded);
	clock_gettime(CLOCK_REALTIME, &ts);
	buf_printf(&b, "{\"time\":%.3f,\"status\":\"%s\",\"streams\":",
	    (double)ts.tv_sec + ts.tv_nsec / 1e9, degraded ? "degraded" : "ok");
	buf_append(&b, st.data, st.len);
	buf_printf(&b, ",\"breakers\":");
	buf_append(&b, br.data, br.len);
	buf_printf(&b, ",\"dedup\":");
	dedup_json(&b);
	for (i = 0; i < L_N; i++)
		for (j = 0; j < 600; j++)
			total += load(&p->requests[i][j]);
	ratelimit_stats(p->rl, &rs);
	buf_printf(&b, ",\"proxy\":{\"requests\":%llu,\"rate_limited\":%llu,"
	    "\"clients\":%zu,\"ratelimit_memory_bytes\":%zu,"
	    "\"rate_per_min\":%g,\"burst\":%llu,\"upstreams\":[",
	    (unsigned long long)total, (unsigned long long)load(&p->rate_limited),
	    rs.clients, rs.memory, p->per_min, (unsigned long long)p->burst);
	for (i = 0; i < p->nup; i++) {
		struct upstream *u = &p->up[i];
		uint64_t n = 0;
		for (j = 0; j < U_N; j++)
			n += load(&u->outcomes[j]);
		buf_printf(&b, "%s{\"name\":\"%s\",\"requests\":%llu,"
		    "\"ok\":%llu}", i ? "," : "", u->name,
		    (unsigned long long)n,
		    (unsigned long long)load(&u->outcomes[U_OK]));
	}
	buf_printf(&b, "]}}");
	buf_release(&br);
	buf_release(&st);
	return respond_json(rq, conn, 200, &b, NULL);
}

static void
own_metrics(struct proxy *p, struct buf *b)
{
	struct ratelimit_stats rs;
	size_t i, j;
	uint64_t cum;

	buf_printf(b, "# HELP aistack_proxy_requests_total Requests answered "
	    "by the proxy, by route and status code.\n"
	    "# TYPE aistack_proxy_requests_total counter\n");
	for (i = 0; i < L_N; i++)
		for (j = 0; j < 600; j++) {
			uint64_t v = load(&p->requests[i][j]);
			if (v > 0)
				buf_printf(b, "aistack_proxy_requests_total{route="
				    "\"%s\",code=\"%zu\"} %llu\n", label_names[i],
				    j, (unsigned long long)v);
		}
	buf_printf(b, "# HELP aistack_proxy_rate_limited_total Requests "
	    "refused with 429.\n# TYPE aistack_proxy_rate_limited_total "
	    "counter\naistack_proxy_rate_limited_total %llu\n",
	    (unsigned long long)load(&p->rate_limited));
	ratelimit_stats(p->rl, &rs);
	buf_printf(b, "# HELP aistack_proxy_ratelimit_clients Client buckets "
	    "in the rate limit table.\n# TYPE aistack_proxy_ratelimit_clients "
	    "gauge\naistack_proxy_ratelimit_clients %zu\n"
	    "# HELP aistack_proxy_ratelimit_max_clients Size of the rate limit "
	    "table.\n# TYPE aistack_proxy_ratelimit_max_clients gauge\n"
	    "aistack_proxy_ratelimit_max_clients %zu\n"
	    "# HELP aistack_proxy_ratelimit_memory_bytes Memory allocated for "
	    "the rate limit table.\n# TYPE aistack_proxy_ratelimit_memory_bytes "
	    "gauge\naistack_proxy_ratelimit_memory_bytes %zu\n"
	    "# HELP aistack_proxy_ratelimit_evictions_total Buckets evicted "
	    "from the full table, by whether they had refilled.\n"
	    "# TYPE aistack_proxy_ratelimit_evictions_total counter\n"
	    "aistack_proxy_ratelimit_evictions_total{refilled=\"yes\"} %llu\n"
	    "aistack_proxy_ratelimit_evictions_total{refilled=\"no\"} %llu\n",
	    rs.clients, rs.max_clients, rs.memory,
	    (unsigned long long)(rs.evicted - rs.evicted_unrefilled),
	    (unsigned long long)rs.evicted_unrefilled);
	buf_printf(b, "# HELP aistack_proxy_connections Open client "
	    "connections.\n# TYPE aistack_proxy_connections gauge\n"
	    "aistack_proxy_connections %llu\n",
	    (unsigned long long)load(&p->connections));
	if (p->nup == 0)
		return;
	buf_printf(b, "# HELP aistack_proxy_upstream_requests_total Upstream "
	    "calls by outcome.\n# TYPE aistack_proxy_upstream_requests_total "
	    "counter\n");
	for (i = 0; i < p->nup; i++)
		for (j = 0; j < U_N; j++)
			buf_printf(b, "aistack_proxy_upstream_requests_total{"
			    "upstream=\"%s\",outcome=\"%s\"} %llu\n", p->up[i].name,
			    outcome_names[j],
			    (unsigned long long)load(&p->up[i].outcomes[j]));
	buf_printf(b, "# HELP aistack_proxy_upstream_duration_seconds Upstream "
	    "call latency.\n# TYPE aistack_proxy_upstream_duration_seconds "
	    "histogram\n");
	for (i = 0; i < p->nup; i++) {
		struct upstream *u = &p->up[i];
		cum = 0;
		for (j = 0; j <= NBUCKETS; j++) {
			cum += load(&u->hist[j]);
			if (j < NBUCKETS)
				buf_printf(b, "aistack_proxy_upstream_duration_"
				    "seconds_bucket{upstream=\"%s\",le=\"%g\"} "
				    "%llu\n", u->name, buckets[j],
				    (unsigned long long)cum);
			else
				buf_printf(b, "aistack_proxy_upstream_duration_"
				    "seconds_bucket{upstream=\"%s\",le=\"+Inf\"} "
				    "%llu\n", u->name, (unsigned long long)cum);
		}
		buf_printf(b, "aistack_proxy_upstream_duration_seconds_sum{"
		    "upstream=\"%s\"} %.6f\naistack_proxy_upstream_duration_"
		    "seconds_count{upstream=\"%s\"} %llu\n", u->name,
		    (double)load(&u->sum_us) / 1e6, u->name,
		    (unsigned long long)cum);
	}
}

static enum MHD_Result
serve_metrics(struct request *rq, struct MHD_Connection *conn)
{
	struct buf own = BUF_INIT, out = BUF_INIT;
	char mdir[PATH_MAX], path[PATH_MAX + 300];
	const char **texts = NULL;
	size_t *lens = NULL, n = 0, nf, i, len;
	struct error e;
	char **files = NULL, *text;
	char *data;

	own_metrics(rq->p, &own);
	nf = 0;
	if (statedir_sub(mdir, sizeof(mdir), "metrics", &e) == 0)
		nf = list_dir(mdir, 0, ".prom", &files);
	texts = calloc(nf + 1, sizeof(*texts));
	lens = calloc(nf + 1, sizeof(*lens));
	if (texts == NULL || lens == NULL) {
		free(texts);
		free(lens);
		names_free(files, nf);
		buf_release(&own);
		return respond_error(rq, conn, 500, "out of memory", NULL);
	}
	texts[n] = own.data != NULL ? own.data : "";
	lens[n++] = own.len;
	for (i = 0; i < nf; i++) {
		snprintf(path, sizeof(path), "%s/%s", mdir, files[i]);
		if (read_file(path, METRICS_MAX_FILE, &text, &len) == -1)
			continue;
		texts[n] = text;
		lens[n++] = len;
	}
	prom_merge(texts, lens, n, &out);
	for (i = 1; i < n; i++)
		free((void *)texts[i]);
	free(texts);
	free(lens);
	names_free(files, nf);
	buf_release(&own);
	if (buf_cstr(&out) == NULL)
		return respond_error(rq, conn, 500, "out of memory", NULL);
	len = out.len;
	data = out.data;
	return respond(rq, conn, 200, "text/plain; version=0.0.4; charset=utf-8",
	    data, len, 1, "no-store", NULL);
}

static enum MHD_Result
serve_file(struct request *rq, struct MHD_Connection *conn,
    const struct route *r)
{
	struct proxy *p = rq->p;
	size_t i;

	for (i = 0; i < p->nfiles; i++)
		if (strlen(p->files[i].name) == r->filelen &&
		    memcmp(p->files[i].name, r->file, r->filelen) == 0)
			return respond(rq, conn, 200, p->files[i].ctype,
			    p->files[i].data, p->files[i].len, 0, "no-cache",
			    NULL);
	return respond_error(rq, conn, 404, "not found", NULL);
}

static void
observe(struct upstream *u, double seconds)
{
	size_t j;

	for (j = 0; j < NBUCKETS && seconds > buckets[j]; j++)
		;
	count(&u->hist[j], 1);
	count(&u->sum_us, (uint64_t)(seconds * 1e6));
}

/* The call ended: hand the request back (answered by the next MHD_run). */
static void
on_upstream_done(void *arg, enum httpc_result res)
{
	struct request *rq = arg;

	rq->res = res;
	rq->up_state = UP_ENDED;
	MHD_resume_connection(rq->conn);
	/* libmicrohttpd answers it in the next MHD_run, which must come
	 * before the loop waits: it does not wake the loop itself */
	rq->w->resumed = 1;
}

/*
 * An allowed route to an upstream: through its breaker, then the call in
 * the event loop while this connection is suspended, so that the server
 * never waits for an upstream; answer_upstream answers when the call
 * has ended.
 */
static enum MHD_Result
serve_upstream(struct request *rq, struct MHD_Connection *conn,
    const struct route *r)
{
	struct proxy *p = rq->p;
	struct upstream *u = &p->up[r->upstream];
	struct buf extra = BUF_INIT, b = BUF_INIT;
	enum MHD_Result ret;
	uint64_t retry_ms, retry_s;
	struct error e;
	int rc;

	rc = breaker_acquire(&u->br, &rq->ticket, &retry_ms, &e);
	if (rc == -1) {
		count(&u->outcomes[U_BREAKER_ERR], 1);
		if (p->o->verbose)
			warnmsg("%s: breaker: %s", u->name, e.msg);
		return respond_error(rq, conn, 500, "breaker state unreadable",
		    NULL);
	}
	if (rc == BREAKER_REFUSED) {
		count(&u->outcomes[U_OPEN], 1);
		retry_s = (retry_ms + 999) / 1000;
		if (retry_s == 0)
			retry_s = 1;
		buf_printf(&extra, "Retry-After: %llu\n",
		    (unsigned long long)retry_s);
		buf_printf(&b, "{\"error\":\"upstream unavailable\",\"upstream\":"
		    "\"%s\",\"retry_after_seconds\":%llu}", u->name,
		    (unsigned long long)retry_s);
		ret = respond_json(rq, conn, 503, &b, &extra);
		buf_release(&extra);
		return ret;
	}
	rq->up = u;
	rq->conn = conn;
	/* done is only ever called from the loop, after this returns */
	if (httpc_loop_submit(rq->w->loop, u->http, r->target, r->head, &rq->resp,
	    on_upstream_done, rq) == -1) {
		breaker_cancel(&rq->ticket);
		return respond_error(rq, conn, 503, rq->resp.error, NULL);
	}
	rq->up_state = UP_CALLING;
	MHD_suspend_connection(conn);
	return MHD_YES;
}

/* The call of serve_upstream has ended: count it and answer. */
static enum MHD_Result
answer_upstream(struct request *rq, struct MHD_Connection *conn)
{
	struct proxy *p = rq->p;
	struct upstream *u = rq->up;
	struct httpc_response *resp = &rq->resp;
	struct breaker_ticket *t = &rq->ticket;
	enum httpc_result res = rq->res;
	struct error e;
	int status;
	char *data;
	size_t len;

	rq->up_state = UP_ANSWERED;
	if (res == HTTPC_CANCELLED) {
		/* says nothing of the upstream's health */
		breaker_cancel(t);
		return respond_error(rq, conn, 503, "shutting down", NULL);
	}
	observe(u, resp->seconds);
	count(&u->outcomes[res], 1);
	if (res != HTTPC_OK && p->o->verbose)
		warnmsg("%s: %s: %s", u->name, rq->target, resp->error);
	switch (res) {
	case HTTPC_OK:
		status = (int)resp->status;
		if (status < 200 || status > 599) {
			breaker_record(&u->br, t, 0, &e);
			return respond_error(rq, conn, 502, "bad upstream status",
			    NULL);
		}
		breaker_record(&u->br, t, status < 500, &e);
		len = resp->body.len;
		if (buf_reserve(&resp->body, 1) == -1)
			return MHD_NO;
		data = resp->body.data != NULL ? resp->body.data : strdup("");
		resp->body.data = NULL;
		resp->body.len = resp->body.cap = 0;
		return respond(rq, conn, status, resp->content_type[0] != '\0' ?
		    resp->content_type : "application/octet-stream", data, len, 1,
		    strcasestr(resp->headers.data != NULL ?
		    buf_cstr(&resp->headers) : "", "Cache-Control:") != NULL ?
		    NULL : "no-store", &resp->headers);
	case HTTPC_TIMEOUT:
		breaker_record(&u->br, t, 0, &e);
		return respond_error(rq, conn, 504, "upstream timed out", NULL);
	case HTTPC_TOO_BIG:
		/* the upstream answered: says nothing of its health */
		breaker_cancel(t);
		return respond_error(rq, conn, 502, "upstream response too large",
		    NULL);
	case HTTPC_DOWN:
	case HTTPC_ERROR:
	case HTTPC_CANCELLED:
		break;
	}
	breaker_record(&u->br, t, 0, &e);
	return respond_error(rq, conn, 502, res == HTTPC_DOWN ?
	    "upstream unreachable" : "bad upstream response", NULL);
}

/* --- libmicrohttpd callbacks ---------------------------------------------- */

static void *
on_uri(void *cls, const char *uri, struct MHD_Connection *conn)
{
	struct worker *w = cls;
	struct proxy *p = w->p;
	struct request *rq;
	size_t len = strlen(uri), keep;

	(void)conn;
	keep = len > p->max_url ? p->max_url + 1 : len;
	if ((rq = malloc(sizeof(*rq) + keep + 1)) == NULL)
		return NULL;
	memset(rq, 0, sizeof(*rq));
	rq->p = p;
	rq->w = w;
	rq->start_us = clock_mono_us();
	rq->label = L_OTHER;
	rq->len = len;
	memcpy(rq->target, uri, keep);
	rq->target[keep] = '\0';
	/*
	 * libmicrohttpd hands over the target as a C string, cut at the
	 * space before the version.  When the version does not follow the
	 * string's end, the target held a NUL byte (or stray spaces): the
	 * string is not all the client sent, and the request is refused.
	 */
	rq->nul = strncmp(uri + len + 1, "HTTP/", 5) != 0;
	count(&p->inflight, 1);
	return rq;
}

static enum route_label
label_of(const char *s)
{
	size_t i;

	for (i = 0; i < L_N; i++)
		if (strcmp(label_names[i], s) == 0)
			return (enum route_label)i;
	return L_OTHER;
}

static enum MHD_Result
on_request(void *cls, struct MHD_Connection *conn, const char *url,
    const char *method, const char *version, const char *upload_data,
    size_t *upload_data_size, void **req_cls)
{
	struct proxy *p = cls;
	struct request *rq = *req_cls;
	const union MHD_ConnectionInfo *ci;
	const struct sockaddr *sa = NULL;
	struct buf extra = BUF_INIT, b = BUF_INIT;
	struct route r;
	enum MHD_Result ret;
	const char *authz;

	(void)url;
	(void)version;
	(void)upload_data;
	if (rq == NULL)
		return MHD_NO;
	if (rq->up_state != UP_NONE) {
		*upload_data_size = 0;	/* a body: never sent on */
		if (rq->up_state == UP_ENDED)
			return answer_upstream(rq, conn);
		return MHD_YES;
	}
	if (rq->answered) {
		*upload_data_size = 0;	/* a body: never sent on */
		return MHD_YES;
	}
	/*
	 * libmicrohttpd keeps the connection alive only for an answer
	 * queued after the first call.  A request with a body is answered
	 * at once (and its connection closed) rather than read to its end.
	 */
	if (!rq->seen) {
		rq->seen = 1;
		if (MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
		    MHD_HTTP_HEADER_CONTENT_LENGTH) == NULL &&
		    MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
		    MHD_HTTP_HEADER_TRANSFER_ENCODING) == NULL)
			return MHD_YES;
	}
	rq->answered = 1;
	snprintf(rq->method, sizeof(rq->method), "%s", method);
	ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	if (ci != NULL && (sa = ci->client_addr) != NULL) {
		if (sa->sa_family == AF_INET)
			inet_ntop(AF_INET, &((const struct sockaddr_in *)
			    (const void *)sa)->sin_addr, rq->client,
			    sizeof(rq->client));
		else if (sa->sa_family == AF_INET6)
			inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)
			    (const void *)sa)->sin6_addr, rq->client,
			    sizeof(rq->client));
	}
	if (rq->client[0] == '\0')
		snprintf(rq->client, sizeof(rq->client), "-");

	/* every request costs a token, refused ones included */
	ratelimit_take_addr(p->rl, sa, clock_mono_us(), &rq->rv);
	rq->have_rv = 1;
	if (!rq->rv.allowed) {
		count(&p->rate_limited, 1);
		buf_printf(&extra, "Retry-After: %llu\n",
		    (unsigned long long)rq->rv.retry_after_s);
		buf_printf(&b, "{\"error\":\"rate limit exceeded\","
		    "\"retry_after_seconds\":%llu}",
		    (unsigned long long)rq->rv.retry_after_s);
		ret = respond_json(rq, conn, 429, &b, &extra);
		buf_release(&extra);
		return ret;
	}

	if (rq->nul)
		return respond_error(rq, conn, 403,
		    route_refusal_name(ROUTE_BAD_TARGET), NULL);
	route_match(p->rt, p->nup, method, rq->target, rq->len, p->max_url, &r);
	rq->label = label_of(r.label);
	if (r.refusal == ROUTE_TOO_LONG || r.refusal == ROUTE_BAD_TARGET)
		return respond_error(rq, conn, r.status,
		    route_refusal_name(r.refusal), NULL);
	if (r.refusal == ROUTE_BAD_METHOD) {
		buf_printf(&extra, "Allow: GET, HEAD\n");
		ret = respond_error(rq, conn, 405, "method not allowed", &extra);
		buf_release(&extra);
		return ret;
	}
	if (r.auth && p->toklen > 0) {
		authz = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
		    MHD_HTTP_HEADER_AUTHORIZATION);
		if (!route_bearer_ok(authz, p->token, p->toklen)) {
			buf_printf(&extra, "WWW-Authenticate: Bearer "
			    "realm=\"aistack-proxy\"\n");
			ret = respond_error(rq, conn, 401, "unauthorized",
			    &extra);
			buf_release(&extra);
			return ret;
		}
	}
	switch (r.kind) {
	case ROUTE_REFUSED:
		return respond_error(rq, conn, r.status,
		    route_refusal_name(r.refusal), NULL);
	case ROUTE_DASHBOARD:
		return serve_file(rq, conn, &r);
	case ROUTE_HEALTH:
		return serve_health(rq, conn);
	case ROUTE_METRICS:
		return serve_metrics(rq, conn);
	case ROUTE_STATS:
		return serve_stats(rq, conn);
	case ROUTE_UPSTREAM:
		return serve_upstream(rq, conn, &r);
	}
	return MHD_NO;
}

/* Write target to b with every byte that is not printable ASCII, '"' or
 * '\' escaped as \xHH, at most LOG_TARGET_MAX bytes of it. */
static void
log_escape(struct buf *b, const char *s, size_t n, size_t full)
{
	size_t i, run;

	if (n > LOG_TARGET_MAX)
		n = LOG_TARGET_MAX;
	for (i = 0; i < n; i += run) {
		unsigned char c;
		for (run = 0; i + run < n; run++) {
			c = (unsigned char)s[i + run];
			if (c < 0x21 || c > 0x7e || c == '"' || c == '\\')
				break;
		}
		if (run > 0) {
			buf_append(b, s + i, run);
			continue;
		}
		buf_printf(b, "\\x%02x", (unsigned char)s[i]);
		run = 1;
	}
	if (full > n)
		buf_append(b, "...", 3);
}

/* The access log's time, "27/Nov/2026:13:05:00 +0000", made once a
 * second a thread. */
static const char *
log_time(void)
{
	static __thread time_t last = -1;
	static __thread char when[64];
	time_t now = time(NULL);
	struct tm tm;

	if (now != last) {
		gmtime_r(&now, &tm);
		strftime(when, sizeof(when), "%d/%b/%Y:%H:%M:%S +0000", &tm);
		last = now;
	}
	return when;
}

/* Write w's access log lines: whole lines, one write(2) (O_APPEND keeps
 * the workers' batches apart). */
static void
log_flush(struct worker *w)
{
	if (w->log.len > 0 && w->p->logfd >= 0)
		(void)write_all(w->p->logfd, w->log.data, w->log.len);
	w->log.len = 0;
}

/*
 * A request has ended: count it and log its line, held in its worker's
 * batch until the loop has handled its batch of events (one write a
 * batch rather than one a request) or the lines make LOG_BATCH bytes.
 */
static void
on_completed(void *cls, struct MHD_Connection *conn, void **req_cls,
    enum MHD_RequestTerminationCode toe)
{
	struct proxy *p = cls;
	struct request *rq = *req_cls;
	struct buf *line;

	(void)conn;
	if (rq == NULL)
		return;
	*req_cls = NULL;
	if (rq->status >= 100 && rq->status < 600)
		count(&p->requests[rq->label][rq->status], 1);
	line = &rq->w->log;
	buf_printf(line, "%s - - [%s] \"%s ", rq->client[0] ? rq->client : "-",
	    log_time(), rq->method[0] ? rq->method : "-");
	log_escape(line, rq->target, strlen(rq->target), rq->len);
	if (rq->status != 0)
		buf_printf(line, "\" %d %llu", rq->status,
		    (unsigned long long)rq->bytes);
	else
		buf_printf(line, "\" - -");
	buf_printf(line, " %.3f %s%s\n", (double)(clock_mono_us() - rq->start_us) /
	    1e6, label_names[rq->label],
	    toe == MHD_REQUEST_TERMINATED_COMPLETED_OK ? "" : " aborted");
	if (line->len >= LOG_BATCH)
		log_flush(rq->w);
	__atomic_fetch_sub(&p->inflight, 1, __ATOMIC_RELAXED);
	httpc_response_release(&rq->resp);
	free(rq);
}

/* The socket context of a connection counted in p->conns. */
static char tag_counted;

/*
 * Connections, counted per client across the workers: a client over
 * max_connections_per_client has the new connection shut down at once
 * (libmicrohttpd then closes it), as libmicrohttpd's own per-address
 * limit would, which counts one daemon's connections only.
 */
static void
on_connection(void *cls, struct MHD_Connection *conn, void **socket_ctx,
    enum MHD_ConnectionNotificationCode toe)
{
	struct proxy *p = cls;
	const union MHD_ConnectionInfo *ci;
	const struct sockaddr *sa;
	int rc;

	ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	sa = ci != NULL ? ci->client_addr : NULL;
	if (toe != MHD_CONNECTION_NOTIFY_STARTED) {
		__atomic_fetch_sub(&p->connections, 1, __ATOMIC_RELAXED);
		if (*socket_ctx == &tag_counted && sa != NULL)
			connlimit_leave(p->conns, sa);
		return;
	}
	count(&p->connections, 1);
	if (sa == NULL || (rc = connlimit_enter(p->conns, sa)) == -1)
		return;
	*socket_ctx = &tag_counted;
	if (rc == 0 && (ci = MHD_get_connection_info(conn,
	    MHD_CONNECTION_INFO_CONNECTION_FD)) != NULL)
		(void)shutdown(ci->connect_fd, SHUT_RDWR);
}

static void
on_mhd_log(void *cls, const char *fmt, va_list ap)
{
	const struct proxy *p = cls;
	char msg[512];
	size_t n;

	if (!p->o->verbose)
		return;
	vsnprintf(msg, sizeof(msg), fmt, ap);
	n = strlen(msg);
	while (n > 0 && msg[n - 1] == '\n')
		msg[--n] = '\0';
	warnmsg("libmicrohttpd: %s", msg);
}

/* --- set-up ---------------------------------------------------------------- */

/* A setting: the flag's value, else the environment's or the file's. */
static const char *
setting(struct proxy *p, const char *flag, const char *key, const char **src)
{
	const char *v;

	if (flag != NULL) {
		*src = NULL;
		return flag;
	}
	v = config_lookup(&p->cfg, "proxy", key, src);
	return v;
}

static int
bad_setting(const char *src, const char *key, const char *v)
{
	if (src != NULL)
		warnmsg("%s: invalid %s \"%s\"", src, key, v);
	else
		warnmsg("--%s: invalid value \"%s\"", key, v);
	return src != NULL ? EXIT_CONFIG : EXIT_USAGE;
}

/* A size, duration or count setting of [proxy] with its default. */
enum kind { K_SIZE, K_DURATION, K_COUNT };

static int
numeric(struct proxy *p, const char *key, enum kind k, uint64_t def,
    uint64_t min, uint64_t max, uint64_t *out)
{
	const char *src, *v;
	int rc;

	*out = def;
	if ((v = config_lookup(&p->cfg, "proxy", key, &src)) == NULL)
		return 0;
	rc = k == K_SIZE ? parse_size(v, out) : k == K_DURATION ?
	    parse_duration_ms(v, out) : parse_u64(v, out);
	if (rc == -1 || *out < min || *out > max)
		return bad_setting(src, key, v);
	return 0;
}

static int
parse_listen(struct proxy *p, const char *s, const char *src)
{
	struct addrinfo hints, *res = NULL;
	char host[256];
	const char *colon, *port;
	size_t hl;
	int rc;

	if (s[0] == '[') {
		colon = strstr(s, "]:");
		if (colon == NULL)
			return bad_setting(src, "listen", s);
		hl = (size_t)(colon - s - 1);
		if (hl >= sizeof(host))
			return bad_setting(src, "listen", s);
		memcpy(host, s + 1, hl);
		port = colon + 2;
	} else {
		colon = strrchr(s, ':');
		if (colon == NULL || (size_t)(colon - s) >= sizeof(host))
			return bad_setting(src, "listen", s);
		hl = (size_t)(colon - s);
		memcpy(host, s, hl);
		port = colon + 1;
	}
	host[hl] = '\0';
	if (port[0] == '\0' || strspn(port, "0123456789") != strlen(port) ||
	    strlen(port) > 5 || strtol(port, NULL, 10) > 65535)
		return bad_setting(src, "listen", s);
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	if ((rc = getaddrinfo(host[0] ? host : NULL, port, &hints, &res)) != 0) {
		warnmsg("%s: %s", s, gai_strerror(rc));
		return src != NULL ? EXIT_CONFIG : EXIT_USAGE;
	}
	memcpy(&p->addr, res->ai_addr, res->ai_addrlen);
	p->addrlen = res->ai_addrlen;
	freeaddrinfo(res);
	return 0;
}

static const char *
content_type(const char *name)
{
	static const struct {
		const char *ext, *type;
	} types[] = {
		{ ".html", "text/html; charset=utf-8" },
		{ ".js", "text/javascript; charset=utf-8" },
		{ ".css", "text/css; charset=utf-8" },
		{ ".svg", "image/svg+xml" },
		{ ".png", "image/png" },
		{ ".ico", "image/x-icon" },
		{ ".json", "application/json" },
		{ ".webmanifest", "application/manifest+json" },
		{ ".txt", "text/plain; charset=utf-8" },
	};
	const char *dot = strrchr(name, '.');
	size_t i;

	if (dot == NULL)
		return NULL;
	for (i = 0; i < sizeof(types) / sizeof(types[0]); i++)
		if (strcmp(dot, types[i].ext) == 0)
			return types[i].type;
	return NULL;
}

/* The default dashboard directory: ../share/aistack/dashboard beside the
 * executable's directory (DATADIR when DATADIR is PREFIX/share). */
static void
default_dashboard(char *buf, size_t n)
{
	char exe[PATH_MAX], dir[PATH_MAX];
	ssize_t r;

	buf[0] = '\0';
	if ((r = readlink("/proc/self/exe", exe, sizeof(exe) - 1)) <= 0)
		return;
	exe[r] = '\0';
	path_dirname(exe, dir, sizeof(dir));
	if (strlen(dir) + sizeof(DASHBOARD_REL) + 1 <= n)
		snprintf(buf, n, "%.*s/%s", (int)(n - sizeof(DASHBOARD_REL) - 1),
		    dir, DASHBOARD_REL);
}

/* Read the dashboard's files into memory: one level, known extensions. */
static int
load_dashboard(struct proxy *p, int given)
{
	char **names, path[PATH_MAX * 2];
	size_t n, i;
	struct stat st;
	const char *ct;
	struct route r;

	if (stat(p->dashdir, &st) == -1 || !S_ISDIR(st.st_mode)) {
		warnmsg("%s: %s", p->dashdir, stat(p->dashdir, &st) == -1 ?
		    strerror(errno) : "not a directory");
		if (given)
			return EXIT_NOINPUT;
		warnmsg("dashboard: not installed; / answers 404");
		return 0;
	}
	n = list_dir(p->dashdir, 0, "", &names);
	for (i = 0; i < n && p->nfiles < DASHBOARD_MAX_FILES; i++) {
		struct dfile *f = &p->files[p->nfiles];
		char *data;
		size_t len;
		if ((ct = content_type(names[i])) == NULL ||
		    strlen(names[i]) >= sizeof(f->name))
			continue;
		/* only names the router can ask for */
		snprintf(path, sizeof(path), "/%s", names[i]);
		if (route_match(NULL, 0, "GET", path, strlen(path), 4096, &r) != 0 ||
		    r.kind != ROUTE_DASHBOARD)
			continue;
		snprintf(path, sizeof(path), "%s/%s", p->dashdir, names[i]);
		if (read_file(path, DASHBOARD_MAX_FILE, &data, &len) == -1) {
			warnmsg("%s: %s", path, strerror(errno));
			continue;
		}
		snprintf(f->name, sizeof(f->name), "%s", names[i]);
		f->data = data;
		f->len = len;
		f->ctype = ct;
		p->nfiles++;
	}
	names_free(names, n);
	return 0;
}

/*
 * The breakers' clock without re-reading the boot id on every call: it
 * cannot change while the process runs, so it is read once, before any
 * thread starts, into the one piece of process-wide state besides the
 * program name.
 */
static char boot_id[40];

static void
boot_id_init(void)
{
	struct breaker_clock c;

	breaker_clock_now(&c);
	memcpy(boot_id, c.boot_id, sizeof(boot_id));
}

static void
proxy_clock(struct breaker_clock *now)
{
	struct timespec ts;

	if (clock_gettime(CLOCK_BOOTTIME, &ts) == -1)
		clock_gettime(CLOCK_MONOTONIC, &ts);
	now->boot_ms = (uint64_t)ts.tv_sec * 1000 +
	    (uint64_t)ts.tv_nsec / 1000000;
	now->wall = (int64_t)time(NULL);
	memcpy(now->boot_id, boot_id, sizeof(now->boot_id));
}

/* Collect the [upstream NAME] sections. */
static int
load_upstreams(struct proxy *p)
{
	char ua[64];
	size_t i, j, k, cap = 0;
	struct error e;
	int rc;

	snprintf(ua, sizeof(ua), "aistack-proxy/%s", AISTACK_VERSION);
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
		if (!name_valid(name)) {
			warnmsg("%s:%d: [%s]: an upstream name is "
			    "[a-z0-9][a-z0-9._-]{0,63}", p->cfg.path,
			    p->cfg.entries[i].line, sec);
			return EXIT_CONFIG;
		}
		if (p->nup == cap) {
			struct upstream *nu;
			cap = cap ? cap * 2 : 8;
			if ((nu = realloc(p->up, cap * sizeof(*nu))) == NULL)
				return EXIT_SOFTWARE;
			p->up = nu;
		}
		u = &p->up[p->nup++];
		memset(u, 0, sizeof(*u));
		snprintf(u->name, sizeof(u->name), "%s", name);
	}
	for (i = 0; i < p->nup; i++) {
		struct upstream *u = &p->up[i];
		struct breaker_settings bs;
		const char *v, *src, **vals;
		char sec[NAME_MAX_LEN + 16];
		size_t nv;

		snprintf(sec, sizeof(sec), "upstream %s", u->name);
		if ((v = config_lookup(&p->cfg, sec, "url", &src)) == NULL) {
			warnmsg("%s: [%s]: missing url", p->cfg.path, sec);
			return EXIT_CONFIG;
		}
		if ((u->url = strdup(v)) == NULL)
			return EXIT_SOFTWARE;
		u->timeout_ms = DEFAULT_TIMEOUT_MS;
		if ((v = config_lookup(&p->cfg, sec, "timeout", &src)) != NULL &&
		    (parse_duration_ms(v, &u->timeout_ms) == -1 ||
		    u->timeout_ms == 0 || u->timeout_ms > LONG_MAX))
			return bad_setting(src, "timeout", v);
		u->max_response = DEFAULT_MAX_RESPONSE;
		if ((v = config_lookup(&p->cfg, sec, "max_response", &src)) != NULL &&
		    (parse_size(v, &u->max_response) == -1 ||
		    u->max_response == 0 || u->max_response > (1ULL << 30)))
			return bad_setting(src, "max_response", v);
		/* allow: repeated keys, each one or more paths */
		nv = config_lookup_all(&p->cfg, sec, "allow", &vals);
		for (j = 0; j < nv; j++) {
			char *copy = strdup(vals[j]), *tok, *save = NULL;
			if (copy == NULL) {
				free(vals);
				return EXIT_SOFTWARE;
			}
			for (tok = strtok_r(copy, " \t,", &save); tok != NULL;
			    tok = strtok_r(NULL, " \t,", &save)) {
				const char **na;
				if (!route_target_safe(tok, strlen(tok))) {
					warnmsg("%s: [%s]: allow \"%s\": not a "
					    "safe absolute path", p->cfg.path,
					    sec, tok);
					free(copy);
					free(vals);
					return EXIT_CONFIG;
				}
				na = realloc(u->allow, (u->nallow + 1) *
				    sizeof(*na));
				if (na == NULL || (na[u->nallow] = strdup(tok)) ==
				    NULL) {
					if (na != NULL)
						u->allow = na;
					free(copy);
					free(vals);
					return EXIT_SOFTWARE;
				}
				u->allow = na;
				u->nallow++;
			}
			free(copy);
		}
		free(vals);
		if ((u->http = httpc_new(u->url, u->timeout_ms,
		    (size_t)u->max_response, ua, &e)) == NULL) {
			error_wrap(&e, "[%s] url", sec);
			return error_report(&e);
		}
		breaker_settings_init(&bs);
		if (breaker_settings_load(&bs, &p->cfg, u->name, &e) == -1 ||
		    breaker_settings_check(&bs, &e) == -1 ||
		    breaker_init(&u->br, u->name, &bs, &e) == -1 ||
		    breaker_cache_enable(&u->br, &e) == -1)
			return error_report(&e);
		u->br.clock = proxy_clock;
	}
	if (p->nup > 0 && (p->rt = calloc(p->nup, sizeof(*p->rt))) == NULL)
		return EXIT_SOFTWARE;
	for (k = 0; k < p->nup; k++) {
		p->rt[k].name = p->up[k].name;
		p->rt[k].allow = p->up[k].allow;
		p->rt[k].nallow = p->up[k].nallow;
	}
	rc = 0;
	return rc;
}

static int
load_token(struct proxy *p)
{
	const char *env = getenv("AISTACK_PROXY_TOKEN"), *v, *src;
	struct error e;
	size_t i;

	for (i = 0; i < p->cfg.n; i++)
		if (strcmp(p->cfg.entries[i].section, "proxy") == 0 &&
		    strcmp(p->cfg.entries[i].key, "token") == 0) {
			warnmsg("%s:%d: token: secrets are not read from the "
			    "configuration file; use token_file (mode 0600)",
			    p->cfg.path, p->cfg.entries[i].line);
			return EXIT_CONFIG;
		}
	if (env != NULL) {
		p->toklen = strlen(env);
		if (p->toklen == 0 || p->toklen >= sizeof(p->token)) {
			warnmsg("AISTACK_PROXY_TOKEN: %s", p->toklen == 0 ?
			    "empty" : "too long");
			return EXIT_CONFIG;
		}
		memcpy(p->token, env, p->toklen + 1);
		return 0;
	}
	if ((v = config_lookup(&p->cfg, "proxy", "token_file", &src)) == NULL)
		return 0;
	if (secret_file_read(v, p->token, sizeof(p->token), &e) == -1) {
		error_wrap(&e, "%s: token_file", src);
		return error_report(&e);
	}
	p->toklen = strlen(p->token);
	return 0;
}

static int
setup(struct proxy *p)
{
	const struct proxy_opts *o = p->o;
	struct ratelimit_settings rs;
	const char *v, *src;
	char *end;
	struct error e;
	int rc;

	if ((o->config != NULL ? config_load_file(&p->cfg, o->config, &e) :
	    config_load(&p->cfg, &e)) == -1)
		return error_report(&e);

	v = setting(p, o->rate, "rate", &src);
	if (parse_rate_per_min(v != NULL ? v : DEFAULT_RATE, &p->per_min) == -1)
		return bad_setting(src, "rate", v);
	p->burst = (uint64_t)ceil(p->per_min);
	if ((v = setting(p, o->burst, "burst", &src)) != NULL &&
	    (parse_u64(v, &p->burst) == -1 || p->burst == 0 ||
	    p->burst > 1000000000))
		return bad_setting(src, "burst", v);
	v = setting(p, o->listen, "listen", &src);
	if ((rc = parse_listen(p, v != NULL ? v : DEFAULT_LISTEN, src)) != 0)
		return rc;
	if ((rc = numeric(p, "max_clients", K_COUNT, 65536, 1, 1u << 30,
	    &p->max_clients)) != 0 ||
	    (rc = numeric(p, "ipv6_prefix", K_COUNT, 64, 1, 128,
	    &p->prefix6)) != 0 ||
	    (rc = numeric(p, "max_connections", K_COUNT, 256, 1, 65536,
	    &p->max_connections)) != 0 ||
	    (rc = numeric(p, "max_connections_per_client", K_COUNT, 64, 1,
	    65536, &p->max_per_client)) != 0 ||
	    (rc = numeric(p, "idle_timeout", K_DURATION, 30000, 1000,
	    86400000, &p->idle_timeout_ms)) != 0 ||
	    (rc = numeric(p, "max_header", K_SIZE, 32768, 4096, 1 << 24,
	    &p->max_header)) != 0 ||
	    (rc = numeric(p, "shutdown_grace", K_DURATION, 10000, 0, 3600000,
	    &p->shutdown_grace_ms)) != 0)
		return rc;
	{
		uint64_t mu;
		if ((rc = numeric(p, "max_url", K_SIZE, 2048, 16, 65536,
		    &mu)) != 0)
			return rc;
		p->max_url = (size_t)mu;
	}
	p->max_backlog = DEFAULT_MAX_BACKLOG;
	if ((v = config_lookup(&p->cfg, "ingest", "max_backlog", &src)) != NULL &&
	    parse_size(v, &p->max_backlog) == -1) {
		warnmsg("%s: invalid max_backlog \"%s\"", src, v);
		return EXIT_CONFIG;
	}
	(void)end;

	if ((rc = load_token(p)) != 0)
		return rc;
	if (httpc_global_init(&e) == -1)
		return error_report(&e);
	boot_id_init();
	if ((rc = load_upstreams(p)) != 0)
		return rc;

	ratelimit_settings_init(&rs);
	rs.per_min = p->per_min;
	rs.burst = p->burst;
	rs.max_clients = (size_t)p->max_clients;
	rs.prefix6 = (unsigned)p->prefix6;
	if ((p->rl = ratelimit_new(&rs)) == NULL) {
		warnmsg("rate limit table: %s", strerror(errno));
		return EXIT_SOFTWARE;
	}
	if ((p->conns = connlimit_new(p->max_connections,
	    (unsigned)p->max_per_client)) == NULL) {
		warnmsg("connection table: %s", strerror(errno));
		return EXIT_SOFTWARE;
	}

	v = setting(p, o->dashboard, "dashboard", &src);
	if (v != NULL)
		snprintf(p->dashdir, sizeof(p->dashdir), "%s", v);
	else
		default_dashboard(p->dashdir, sizeof(p->dashdir));
	if ((rc = load_dashboard(p, v != NULL)) != 0)
		return rc;

	p->logfd = STDERR_FILENO;
	v = setting(p, o->access_log, "access_log", &src);
	if (v != NULL) {
		if ((p->access_log = strdup(v)) == NULL)
			return EXIT_SOFTWARE;
		p->logfd = open(v, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC,
		    0640);
		if (p->logfd == -1) {
			warnmsg("%s: %s", v, strerror(errno));
			return error_code_for_errno(errno);
		}
	}
	return 0;
}

/* SIGHUP: reopen the access log in place (dup2: writers never see a
 * closed descriptor). */
static void
reopen_log(struct proxy *p)
{
	int fd;

	if (p->access_log == NULL)
		return;
	fd = open(p->access_log, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC,
	    0640);
	if (fd == -1) {
		warnmsg("%s: %s", p->access_log, strerror(errno));
		return;
	}
	if (dup3(fd, p->logfd, O_CLOEXEC) == -1)
		warnmsg("%s: %s", p->access_log, strerror(errno));
	close(fd);
}

static void
release(struct proxy *p)
{
	size_t i, j;

	for (i = 0; i < p->nworkers; i++) {
		struct worker *w = &p->workers[i];
		/* gives up the calls in flight: resumes their connections */
		httpc_loop_free(w->loop);
		if (w->mhd != NULL) {
			/* w->lsock is ours to close */
			(void)MHD_quiesce_daemon(w->mhd);
			MHD_stop_daemon(w->mhd);
		}
		if (w->lsock >= 0)
			close(w->lsock);
		/* what the daemon's stop logged (connections it closed) */
		log_flush(w);
		buf_release(&w->log);
		if (w->epfd >= 0)
			close(w->epfd);
	}
	free(p->workers);
	if (p->stopfd >= 0)
		close(p->stopfd);
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
		free(p->files[i].data);
	ratelimit_free(p->rl);
	connlimit_free(p->conns);
	free(p->access_log);
	if (p->logfd > STDERR_FILENO)
		close(p->logfd);
	explicit_bzero(p->token, sizeof(p->token));
	config_release(&p->cfg);
}

static void
print_address(const struct proxy *p)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	char host[INET6_ADDRSTRLEN] = "?";
	unsigned port = 0;

	if (getsockname(p->workers[0].lsock, (struct sockaddr *)&ss, &len) ==
	    -1)
		ss = p->addr;
	if (ss.ss_family == AF_INET) {
		const struct sockaddr_in *sin = (const void *)&ss;
		inet_ntop(AF_INET, &sin->sin_addr, host, sizeof(host));
		port = ntohs(sin->sin_port);
	} else {
		const struct sockaddr_in6 *sin6 = (const void *)&ss;
		inet_ntop(AF_INET6, &sin6->sin6_addr, host, sizeof(host));
		port = ntohs(sin6->sin6_port);
	}
	warnmsg(p->addr.ss_family == AF_INET6 ? "listening on [%s]:%u" :
	    "listening on %s:%u", host, port);
}

/* Tags of serve()'s own descriptors in its epoll set (data.ptr). */
static char tag_mhd, tag_stop;

/* How long serve() may wait: until libmicrohttpd's or libcurl's next
 * timeout, or until `until` (a clock_mono_us time, 0: none). */
static int
wait_ms(const struct worker *w, uint64_t until)
{
	MHD_UNSIGNED_LONG_LONG mt;
	uint64_t now;
	int t, c;

	if (w->resumed)
		return 0;
	t = MHD_get_timeout(w->mhd, &mt) == MHD_YES ?
	    (mt > INT_MAX ? INT_MAX : (int)mt) : -1;
	c = httpc_loop_timeout_ms(w->loop);
	if (c >= 0 && (t < 0 || c < t))
		t = c;
	if (until != 0) {
		now = clock_mono_us();
		c = until <= now ? 0 : (int)((until - now + 999) / 1000);
		if (t < 0 || c < t)
			t = c;
	}
	return t;
}

/*
 * A worker's event loop: its connections and their upstream calls.
 * Once the main thread writes stopfd: stop accepting, let the requests
 * in flight finish for up to shutdown_grace, then give up the upstream
 * calls still running (503) and let those answers go out (up to
 * FLUSH_MS).
 */
static void *
serve(void *arg)
{
	struct worker *w = arg;
	struct proxy *p = w->p;
	struct epoll_event ev[MAX_EVENTS];
	uint64_t until = 0;
	int n, i, stopping = 0, cancelled = 0;

	for (;;) {
		log_flush(w);	/* this batch's lines */
		n = epoll_wait(w->epfd, ev, MAX_EVENTS, wait_ms(w, until));
		for (i = 0; i < n; i++) {
			if (ev[i].data.ptr == &tag_mhd)
				continue;	/* MHD_run below */
			if (ev[i].data.ptr == &tag_stop) {
				/* every worker sees it: nobody reads it */
				(void)epoll_ctl(w->epfd, EPOLL_CTL_DEL,
				    p->stopfd, NULL);
				stopping = 1;
				/* its socket is closed by release() */
				(void)MHD_quiesce_daemon(w->mhd);
				until = clock_mono_us() +
				    p->shutdown_grace_ms * 1000;
				continue;
			}
			httpc_loop_event(w->loop, ev[i].data.ptr, ev[i].events);
		}
		httpc_loop_timer(w->loop);
		/* the connections whose calls ended above are answered here,
		 * and new requests read */
		w->resumed = 0;
		MHD_run(w->mhd);
		/* their upstream calls go out now, while the others wait */
		httpc_loop_timer(w->loop);
		if (!stopping)
			continue;
		if (load(&p->inflight) == 0)
			break;
		if (clock_mono_us() < until)
			continue;
		if (cancelled)
			break;
		/* the grace is over: 503 for the calls still running */
		httpc_loop_cancel(w->loop);
		cancelled = 1;
		until = clock_mono_us() + FLUSH_MS * 1000;
	}
	log_flush(w);
	return NULL;
}

/* Add fd to w's epoll set, its events tagged with tag; -1 with errno. */
static int
watch_fd(struct worker *w, int fd, void *tag)
{
	struct epoll_event ev;

	memset(&ev, 0, sizeof(ev));
	ev.events = EPOLLIN;
	ev.data.ptr = tag;
	return epoll_ctl(w->epfd, EPOLL_CTL_ADD, fd, &ev);
}

/* A TCP socket for p->addr with SO_REUSEADDR (and SO_REUSEPORT when
 * reuseport); -1 with errno. */
static int
tcp_socket(const struct proxy *p, int reuseport)
{
	int fd, one = 1;

	if ((fd = socket(p->addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC |
	    SOCK_NONBLOCK, 0)) == -1)
		return -1;
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) == -1 ||
	    (reuseport && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one,
	    sizeof(one)) == -1) ||
	    (p->addr.ss_family == AF_INET6 && setsockopt(fd, IPPROTO_IPV6,
	    IPV6_V6ONLY, &one, sizeof(one)) == -1)) {
		int err = errno;
		close(fd);
		errno = err;
		return -1;
	}
	return fd;
}

static int
listen_error(const struct proxy *p)
{
	warnmsg("%s: cannot listen: %s", p->o->listen != NULL ? p->o->listen :
	    "listen address", strerror(errno));
	return EXIT_UNAVAILABLE;
}

/*
 * Claim p->addr before the workers bind it together: a bind without
 * SO_REUSEPORT fails while anything listens there (another aistack-proxy
 * included, which the workers' SO_REUSEPORT would otherwise join), and
 * port 0 becomes the free port it found.  EXIT_UNAVAILABLE when the
 * address is in use or not ours.
 */
static int
claim_address(struct proxy *p)
{
	socklen_t len = sizeof(p->addr);
	int fd;

	if ((fd = tcp_socket(p, 0)) == -1)
		return listen_error(p);
	if (bind(fd, (struct sockaddr *)&p->addr, p->addrlen) == -1 ||
	    getsockname(fd, (struct sockaddr *)&p->addr, &len) == -1) {
		int err = errno;
		close(fd);
		errno = err;
		return listen_error(p);
	}
	close(fd);
	return 0;
}

/* Worker w's listening socket on p->addr.  Each worker has its own, bound
 * with SO_REUSEPORT, so that the kernel shares the new connections out
 * among them evenly. */
static int
listen_socket(struct proxy *p, struct worker *w)
{
	if ((w->lsock = tcp_socket(p, 1)) == -1 ||
	    bind(w->lsock, (struct sockaddr *)&p->addr, p->addrlen) == -1 ||
	    listen(w->lsock, SOMAXCONN) == -1)
		return listen_error(p);
	return 0;
}

/* Worker i: its epoll set, its upstream loop, its daemon on p->lsock
 * with its share of the connections. */
static int
worker_init(struct proxy *p, size_t i)
{
	struct worker *w = &p->workers[i];
	const union MHD_DaemonInfo *di;
	uint64_t limit;
	unsigned flags;
	struct error e;
	int rc;

	w->p = p;
	if ((rc = listen_socket(p, w)) != 0)
		return rc;
	if ((w->epfd = epoll_create1(EPOLL_CLOEXEC)) == -1 ||
	    watch_fd(w, p->stopfd, &tag_stop) == -1) {
		warnmsg("event loop: %s", strerror(errno));
		return EXIT_SOFTWARE;
	}
	if ((w->loop = httpc_loop_new(w->epfd, &e)) == NULL)
		return error_report(&e);
	/* as libmicrohttpd's own thread pool shares them out */
	limit = p->max_connections / p->nworkers +
	    (i < p->max_connections % p->nworkers);
	/* run from serve(): its epoll set is watched in ours */
	flags = MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG;
	if (p->addr.ss_family == AF_INET6)
		flags |= MHD_USE_IPv6;
	w->mhd = MHD_start_daemon(flags, 0, NULL, NULL, on_request, p,
	    MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, p,
	    MHD_OPTION_LISTEN_SOCKET, w->lsock,
	    MHD_OPTION_CONNECTION_LIMIT, (unsigned)limit,
	    MHD_OPTION_CONNECTION_TIMEOUT,
	    (unsigned)((p->idle_timeout_ms + 999) / 1000),
	    MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)p->max_header,
	    MHD_OPTION_URI_LOG_CALLBACK, on_uri, w,
	    MHD_OPTION_NOTIFY_COMPLETED, on_completed, p,
	    MHD_OPTION_NOTIFY_CONNECTION, on_connection, p,
	    MHD_OPTION_END);
	if (w->mhd == NULL) {
		warnmsg("libmicrohttpd failed to start");
		return EXIT_SOFTWARE;
	}
	if ((di = MHD_get_daemon_info(w->mhd, MHD_DAEMON_INFO_EPOLL_FD)) ==
	    NULL || watch_fd(w, di->epoll_fd, &tag_mhd) == -1) {
		warnmsg("event loop: cannot watch libmicrohttpd's epoll set");
		return EXIT_SOFTWARE;
	}
	return 0;
}

static int
run(const struct proxy_opts *o)
{
	struct proxy *p;
	sigset_t set;
	size_t i;
	long ncpu;
	int rc, sig, err;

	if ((p = calloc(1, sizeof(*p))) == NULL) {
		warnmsg("%s", strerror(errno));
		return EXIT_SOFTWARE;
	}
	p->o = o;
	p->logfd = -1;
	p->stopfd = -1;
	if ((rc = setup(p)) != 0)
		goto out;

	/* the workers' threads inherit this mask */
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &set, NULL);

	if ((rc = claim_address(p)) != 0)
		goto out;
	if ((p->stopfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) == -1) {
		warnmsg("event loop: %s", strerror(errno));
		rc = EXIT_SOFTWARE;
		goto out;
	}
	ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	p->nworkers = ncpu < 1 ? 1 : ncpu > MAX_WORKERS ? MAX_WORKERS :
	    (size_t)ncpu;
	if (p->nworkers > p->max_connections)
		p->nworkers = p->max_connections;
	if ((p->workers = calloc(p->nworkers, sizeof(*p->workers))) == NULL) {
		warnmsg("%s", strerror(errno));
		rc = EXIT_SOFTWARE;
		goto out;
	}
	for (i = 0; i < p->nworkers; i++)
		p->workers[i].lsock = p->workers[i].epfd = -1;
	for (i = 0; i < p->nworkers; i++)
		if ((rc = worker_init(p, i)) != 0)
			goto stop;
	for (i = 0; i < p->nworkers; i++) {
		if ((err = pthread_create(&p->workers[i].thread, NULL, serve,
		    &p->workers[i])) != 0) {
			warnmsg("event loop: %s", strerror(err));
			rc = EXIT_SOFTWARE;
			goto stop;
		}
		p->workers[i].started = 1;
	}
	if (o->verbose)
		print_address(p);

	for (;;) {
		if (sigwait(&set, &sig) != 0)
			continue;
		if (sig == SIGHUP) {
			reopen_log(p);
			continue;
		}
		break;
	}
	if (o->verbose)
		warnmsg("%s: shutting down", strsignal(sig));
stop:
	(void)eventfd_write(p->stopfd, 1);
	for (i = 0; i < p->nworkers; i++)
		if (p->workers[i].started)
			pthread_join(p->workers[i].thread, NULL);
out:
	release(p);
	httpc_global_cleanup();
	free(p);
	return rc;
}

/* --- options ----------------------------------------------------------------- */

enum {
	OPT_ACCESS_LOG = 256, OPT_BURST, OPT_DASHBOARD, OPT_RATE, OPT_VERSION
};

static const struct option longopts[] = {
	{ "access-log",		required_argument,	NULL, OPT_ACCESS_LOG },
	{ "burst",		required_argument,	NULL, OPT_BURST },
	{ "config",		required_argument,	NULL, 'c' },
	{ "dashboard",		required_argument,	NULL, OPT_DASHBOARD },
	{ "help",		no_argument,		NULL, 'h' },
	{ "listen",		required_argument,	NULL, 'l' },
	{ "rate",		required_argument,	NULL, OPT_RATE },
	{ "verbose",		no_argument,		NULL, 'v' },
	{ "version",		no_argument,		NULL, OPT_VERSION },
	{ NULL,			0,			NULL, 0 }
};

int
main(int argc, char **argv)
{
	struct proxy_opts o;
	int ch, status;

	progname = "aistack-proxy";
	memset(&o, 0, sizeof(o));
	signal(SIGPIPE, SIG_IGN);

	while ((ch = getopt_long(argc, argv, "c:hl:v", longopts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			o.config = optarg;
			break;
		case 'h':
			fputs(usage_text, stdout);
			status = EXIT_OK;
			goto out;
		case 'l':
			o.listen = optarg;
			break;
		case 'v':
			o.verbose = 1;
			break;
		case OPT_ACCESS_LOG:
			o.access_log = optarg;
			break;
		case OPT_BURST:
			o.burst = optarg;
			break;
		case OPT_DASHBOARD:
			o.dashboard = optarg;
			break;
		case OPT_RATE:
			o.rate = optarg;
			break;
		case OPT_VERSION:
			printf("aistack-proxy %s\n", AISTACK_VERSION);
			status = EXIT_OK;
			goto out;
		default:
			fprintf(stderr, "%s", usage_text);
			return EXIT_USAGE;
		}
	}
	if (optind < argc) {
		warnmsg("%s: unexpected operand", argv[optind]);
		fprintf(stderr, "%s", usage_text);
		return EXIT_USAGE;
	}
	status = run(&o);
out:
	return exit_flush(status);
}
