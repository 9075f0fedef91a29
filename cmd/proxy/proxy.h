/*
 * aistack-proxy's shared structs and the functions its rooms call in one
 * another (main.c has the map of the rooms).  Nothing here is global
 * state: everything hangs off one struct proxy, made by proxy_new.
 */
#ifndef AISTACK_PROXY_H
#define AISTACK_PROXY_H

#include <sys/types.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <microhttpd.h>

#include "base/buf.h"
#include "base/config.h"
#include "base/err.h"
#include "base/statedir.h"
#include "breaker/breaker.h"
#include "net/connlimit.h"
#include "net/httpclient.h"
#include "net/ratelimit.h"
#include "net/route.h"

#include "shed.h"

#define MAX_TOKEN		4096
#define DASHBOARD_MAX_FILES	64
#define METRICS_MAX_FILE	(4 * 1024 * 1024)
#define MAX_STATUS		600	/* counted status codes: 0..599 */

/* The Content-Security-Policy of every answer. */
#define PROXY_CSP	"default-src 'self'; base-uri 'none'; " \
	"frame-ancestors 'none'; form-action 'self'"

/* Upstream latency histogram: PROXY_NBUCKETS bounds, seconds
 * (upstream.c), and the +Inf bucket. */
#define PROXY_NBUCKETS		11
extern const double upstream_buckets[PROXY_NBUCKETS];

/* Upstream outcomes counted (httpc results, then the proxy's own);
 * metrics.c names them. */
enum { U_OK, U_DOWN, U_TIMEOUT, U_TOO_BIG, U_ERROR, U_OPEN, U_BREAKER_ERR,
	U_N };

/* The command line (main.c); NULL: not given. */
struct proxy_opts {
	int verbose;
	const char *config;
	const char *listen;
	const char *rate;
	const char *burst;
	const char *dashboard;
	const char *access_log;
};

/* One [upstream NAME] section, its breaker, client and counters. */
struct upstream {
	char name[NAME_MAX_LEN + 1];
	char *url;
	uint64_t timeout_ms;
	uint64_t max_response;
	const char **allow;	/* strings owned by the upstream */
	size_t nallow;
	struct breaker br;
	struct httpc *http;
	uint64_t hist[PROXY_NBUCKETS + 1];	/* atomic */
	uint64_t sum_us;			/* atomic */
	uint64_t outcomes[U_N];			/* atomic */
	int warned_header;	/* atomic: a header of its was dropped */
};

/* A file of the dashboard, held in memory: read from --dashboard's
 * directory (owned: freed by proxy_free) or the binary's own copy. */
struct dfile {
	char name[129];
	const char *data;
	size_t len;
	const char *ctype;	/* static */
	int owned;
};

/* The running proxy: its settings (setup.c), tables, workers and
 * counters.  Read-only once the workers start, but for the counters
 * (atomic) and what the tables lock themselves. */
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
	uint64_t header_timeout_ms;
	uint64_t shutdown_grace_ms;
	uint64_t max_clients;
	uint64_t prefix6;
	struct sockaddr_storage addr;
	socklen_t addrlen;
	/* counters, updated with __atomic builtins */
	uint64_t requests[ROUTE_LABEL_N][MAX_STATUS];
	uint64_t rate_limited;
	uint64_t inflight;
	uint64_t connections;
};

/* One event loop (server.c): a thread, its connections (a libmicrohttpd
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
	int freed;		/* a connection closed in the last MHD_run */
	struct buf log;		/* access log lines not yet written */
	/* its connections (server.c's struct conn), their phases */
	struct conn_state **tab;
	size_t ntab, captab;
	size_t limit;		/* its share of max_connections */
	uint64_t next_check;	/* the first phase to run out, or 0 */
};

enum { UP_NONE, UP_CALLING, UP_ENDED, UP_ANSWERED };

/* One request, from its target (on_uri) to its end (on_completed). */
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
	char method[16];	/* its first 15 bytes (logged escaped) */
	size_t methodlen;	/* its full length */
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

/* Counters shared by the workers. */
static inline void
count(uint64_t *c, uint64_t n)
{
	__atomic_fetch_add(c, n, __ATOMIC_RELAXED);
}

static inline uint64_t
load(const uint64_t *c)
{
	return __atomic_load_n(c, __ATOMIC_RELAXED);
}

/* setup.c: the configuration and the command line made into a proxy
 * (caller frees with proxy_free), or NULL with e set. */
struct proxy *proxy_new(const struct proxy_opts *o, struct error *e);
void proxy_free(struct proxy *p);

/* server.c: block the signals, claim the address, start the workers
 * (-1 with e set: what started is stopped by server_stop); wait for
 * SIGTERM or SIGINT (SIGHUP reopens the access log); then stop the
 * workers, letting the requests in flight finish, and release them. */
int server_start(struct proxy *p, struct error *e);
void server_wait(struct proxy *p);
void server_stop(struct proxy *p);

/*
 * server.c: a connection's request moves on (request.c calls these): its
 * request line is in (rq: its request, until server_request_done), its
 * head is in (0: the connection was refused meanwhile, and the request
 * is to be dropped with MHD_NO), its answer has ended.
 */
void server_request_line(struct MHD_Connection *conn, struct request *rq);
int server_head_done(struct MHD_Connection *conn);
void server_request_done(struct MHD_Connection *conn);

/* request.c: the libmicrohttpd callbacks of a request. */
void *request_begin(void *cls, const char *uri, struct MHD_Connection *conn);
enum MHD_Result request_handle(void *cls, struct MHD_Connection *conn,
    const char *url, const char *method, const char *version,
    const char *upload_data, size_t *upload_data_size, void **req_cls);
void request_end(void *cls, struct MHD_Connection *conn, void **req_cls,
    enum MHD_RequestTerminationCode toe);

/* respond.c: queue an answer with the headers every answer carries.
 * body: owned nonzero passes its memory on (freed with free); otherwise
 * it must outlive the response.  extra: "Name: value\n" lines, or NULL;
 * a line whose value holds a control byte is dropped (and said once an
 * upstream).  cache: the proxy's Cache-Control, sent unless one of extra
 * was. */
enum MHD_Result respond(struct request *rq, struct MHD_Connection *conn,
    int status, const char *ctype, const char *body, size_t len, int owned,
    const char *cache, const struct buf *extra);
/* The answer to a HEAD that an upstream answered: its headers, and
 * length as the Content-Length (-1: none is sent). */
enum MHD_Result respond_head(struct request *rq, struct MHD_Connection *conn,
    int status, const char *ctype, int64_t length, const char *cache,
    const struct buf *extra);
/* A JSON answer built in b, whose memory passes on. */
enum MHD_Result respond_json(struct request *rq, struct MHD_Connection *conn,
    int status, struct buf *b, const struct buf *extra);
/* {"error":MSG}. */
enum MHD_Result respond_error(struct request *rq, struct MHD_Connection *conn,
    int status, const char *msg, const struct buf *extra);

/* status.c: GET /health and GET /api/stats. */
enum MHD_Result status_health(struct request *rq, struct MHD_Connection *conn);
enum MHD_Result status_stats(struct request *rq, struct MHD_Connection *conn);

/* metrics.c: GET /metrics. */
enum MHD_Result metrics_serve(struct request *rq, struct MHD_Connection *conn);

/* dashboard.c: take the files of the directory dir (a missing one is
 * EXIT_NOINPUT), or, dir NULL, the copy built into the program; serve
 * them. */
int dashboard_load(struct proxy *p, const char *dir, struct error *e);
enum MHD_Result dashboard_serve(struct request *rq,
    struct MHD_Connection *conn, const struct route *r);

/* upstream.c: an allowed route to an upstream, through its breaker;
 * upstream_answer answers once the call has ended. */
enum MHD_Result upstream_serve(struct request *rq, struct MHD_Connection *conn,
    const struct route *r);
enum MHD_Result upstream_answer(struct request *rq, struct MHD_Connection *conn);

/* accesslog.c: the access log (p->logfd: the file or standard error). */
int accesslog_open(struct proxy *p, const char *path, struct error *e);
void accesslog_reopen(struct proxy *p);
void accesslog_close(struct proxy *p);
/* Add rq's line to its worker's batch; flush it when it is large. */
void accesslog_add(const struct request *rq,
    enum MHD_RequestTerminationCode toe);
/* Write w's batch of lines. */
void accesslog_flush(struct worker *w);

/* files.c: the NAMEs of the entries of dir (directories that are valid
 * NAMEs when dirs is nonzero, else regular files whose names end in
 * suffix), sorted.  The caller frees them with names_free. */
size_t files_list(const char *dir, int dirs, const char *suffix,
    char ***out);
/* Sort n names in place (strcmp order). */
void files_sort(char **names, size_t n);
/* Open name (one component) beneath the directory dirfd for reading,
 * never through a symbolic link, and only a regular file: a descriptor,
 * or -1 with errno (ELOOP for a link, EINVAL for anything else that is
 * not a regular file). */
int files_open_beneath(int dirfd, const char *name);
/* files_open_beneath and read_fd (lib/base/fsutil.h) of name in the directory dir;
 * st, when not NULL, gets the file's status. */
int files_read(const char *dir, const char *name, size_t max, char **data,
    size_t *len, struct stat *st);

#endif
