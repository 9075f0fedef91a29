/*
 * Sockets, workers and their event loops.
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
 * workers) and per client (counted across them, lib/net/connlimit) and time
 * out when idle; a request head has header_timeout to come in whole (else
 * 408), and a worker whose share is full sheds the connection that has
 * waited longest for its head (shed.c chooses).  The main thread waits
 * for signals: SIGTERM or SIGINT
 * tell the workers to stop accepting, let the requests in flight finish
 * (up to shutdown_grace; calls still running then are given up with 503)
 * and exit 0; SIGHUP reopens the access log.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "base/clock.h"
#include "base/exitcode.h"

#include "proxy.h"

#define MAX_WORKERS		8
#define MAX_EVENTS		64
#define FLUSH_MS		1000	/* to send the 503s after the grace */

/*
 * libmicrohttpd 0.9.75's MHD_OPTION_STRICT_FOR_CLIENT: at -1 it refuses
 * white space before a header's colon (400); at 1 it would instead
 * refuse spaces in the target (the proxy refuses those itself, 403) and
 * a missing Host, answered by the library without the proxy's headers
 * (the proxy answers that 400 itself).  aistack-proxy(1), "What
 * libmicrohttpd answers by itself".
 */
#define STRICTNESS		(-1)

/* Tags of serve()'s own descriptors in its epoll set (data.ptr). */
static char tag_mhd, tag_stop;

/*
 * A connection, from its opening to its end (its socket context): its
 * phase, in its worker's table (w->tab), and whether it is counted in
 * p->conns.  Only its worker's thread touches it, but at the end, when
 * server_stop closes what is left once the workers have stopped.
 */
struct conn {
	struct conn_state st;	/* first: w->tab holds &st */
	struct worker *w;
	struct request *rq;	/* the request being read or answered */
	int fd;
	int counted;
	size_t slot;		/* its index in w->tab */
};

static struct conn *
conn_of(struct MHD_Connection *mc)
{
	const union MHD_ConnectionInfo *ci;

	ci = MHD_get_connection_info(mc, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
	return ci != NULL ? ci->socket_context : NULL;
}

/* c's phase is now ph; the loop looks again at its deadline, if sooner. */
static void
conn_phase(struct conn *c, enum conn_phase ph)
{
	struct worker *w = c->w;
	uint64_t d;

	if (c->st.phase == PHASE_CLOSING)
		return;
	c->st.phase = ph;
	c->st.since_us = clock_mono_us();
	d = shed_deadline(&c->st, w->p->header_timeout_ms * 1000,
	    w->p->idle_timeout_ms * 1000);
	if (d != 0 && (w->next_check == 0 || d < w->next_check))
		w->next_check = d;
}

/*
 * Refuse c with status, written to its socket by the proxy itself, then
 * shut it (libmicrohttpd, seeing the end, closes it).  Only while c
 * waits for a request head: libmicrohttpd then has nothing of its own
 * to send on it.  The answer carries the headers of every answer (not
 * the rate limit's: no token was taken), and Connection: close.
 */
static void
conn_refuse(struct conn *c, int status, const char *reason,
    const char *msg)
{
	char body[128], head[1024], date[64];
	struct tm tm;
	time_t now = time(NULL);
	int bl, hl;

	gmtime_r(&now, &tm);
	strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S GMT", &tm);
	bl = snprintf(body, sizeof(body), "{\"error\":\"%s\"}\n", msg);
	hl = snprintf(head, sizeof(head), "HTTP/1.1 %d %s\r\n"
	    "Date: %s\r\n"
	    "Connection: close\r\n"
	    "Content-Length: %d\r\n"
	    "Content-Type: application/json\r\n"
	    "Cache-Control: no-store\r\n"
	    "Content-Security-Policy: " PROXY_CSP "\r\n"
	    "X-Content-Type-Options: nosniff\r\n"
	    "Referrer-Policy: no-referrer\r\n"
	    "X-Frame-Options: DENY\r\n"
	    "Cross-Origin-Resource-Policy: same-origin\r\n"
	    "\r\n%s", status, reason, date, bl, body);
	if (hl > 0 && (size_t)hl < sizeof(head))
		(void)send(c->fd, head, (size_t)hl, MSG_DONTWAIT | MSG_NOSIGNAL);
	(void)shutdown(c->fd, SHUT_RDWR);
	c->st.phase = PHASE_CLOSING;
	if (c->rq != NULL) {
		c->rq->status = status;
		c->rq->bytes = (uint64_t)bl;
	}
}

/* Shut c without a word (idle, or over its client's limit). */
static void
conn_drop(struct conn *c)
{
	(void)shutdown(c->fd, SHUT_RDWR);
	c->st.phase = PHASE_CLOSING;
}

/*
 * w's table is full: shed the connection that has waited longest for
 * its request head (503), or else the one idle longest, so that the new
 * one is served.  Nothing when every connection is busy.
 */
static void
shed(struct worker *w)
{
	struct conn *c;
	size_t i;

	if ((i = shed_choose((const struct conn_state *const *)w->tab,
	    w->ntab)) == w->ntab)
		return;
	c = (struct conn *)(void *)w->tab[i];
	if (c->st.phase == PHASE_HEAD)
		conn_refuse(c, 503, "Service Unavailable",
		    "too many connections");
	else
		conn_drop(c);
}

/*
 * The phases that have run out: a request head not in within
 * header_timeout is answered 408; a kept-alive connection whose next
 * request line has not come within idle_timeout of its last answer is
 * closed.  Then the next deadline.
 */
static void
check_deadlines(struct worker *w)
{
	const struct proxy *p = w->p;
	uint64_t now = clock_mono_us(), d, next = 0;
	struct conn *c;
	size_t i;

	for (i = 0; i < w->ntab; i++) {
		c = (struct conn *)(void *)w->tab[i];
		if ((d = shed_deadline(&c->st, p->header_timeout_ms * 1000,
		    p->idle_timeout_ms * 1000)) == 0)
			continue;
		if (d > now) {
			if (next == 0 || d < next)
				next = d;
		} else if (c->st.phase == PHASE_HEAD)
			conn_refuse(c, 408, "Request Timeout",
			    "request header timeout");
		else
			conn_drop(c);
	}
	w->next_check = next;
}

static int
table_add(struct worker *w, struct conn *c)
{
	struct conn_state **nt;
	size_t cap;

	if (w->ntab == w->captab) {
		cap = w->captab ? w->captab * 2 : 64;
		if ((nt = realloc(w->tab, cap * sizeof(struct conn_state *))) == NULL)
			return -1;
		w->tab = nt;
		w->captab = cap;
	}
	c->slot = w->ntab;
	w->tab[w->ntab++] = &c->st;
	return 0;
}

static void
table_remove(struct worker *w, struct conn *c)
{
	struct conn *last;

	last = (struct conn *)(void *)w->tab[--w->ntab];
	w->tab[c->slot] = &last->st;
	last->slot = c->slot;
}

/*
 * Connections: counted per client across the workers (a client over
 * max_connections_per_client has the new connection shut down at once,
 * and libmicrohttpd then closes it, as its own per-address limit would,
 * which counts one daemon's connections only), and kept in the worker's
 * table, which sheds one when the new one fills it.
 */
static void
on_connection(void *cls, struct MHD_Connection *mc, void **socket_ctx,
    enum MHD_ConnectionNotificationCode toe)
{
	struct worker *w = cls;
	struct proxy *p = w->p;
	const union MHD_ConnectionInfo *ci;
	const struct sockaddr *sa;
	struct conn *c = *socket_ctx;
	int rc;

	ci = MHD_get_connection_info(mc, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	sa = ci != NULL ? ci->client_addr : NULL;
	if (toe != MHD_CONNECTION_NOTIFY_STARTED) {
		__atomic_fetch_sub(&p->connections, 1, __ATOMIC_RELAXED);
		if (c == NULL)
			return;
		if (c->counted && sa != NULL)
			connlimit_leave(p->conns, sa);
		table_remove(w, c);
		w->freed = 1;
		free(c);
		*socket_ctx = NULL;
		return;
	}
	count(&p->connections, 1);
	ci = MHD_get_connection_info(mc, MHD_CONNECTION_INFO_CONNECTION_FD);
	if (ci == NULL || (c = calloc(1, sizeof(*c))) == NULL)
		return;
	c->w = w;
	c->fd = ci->connect_fd;
	c->st.phase = PHASE_HEAD;
	c->st.since_us = clock_mono_us();
	if (table_add(w, c) == -1) {
		free(c);
		return;
	}
	*socket_ctx = c;
	if (sa != NULL && (rc = connlimit_enter(p->conns, sa)) != -1) {
		c->counted = 1;
		if (rc == 0) {
			conn_drop(c);
			return;
		}
	}
	if (w->ntab >= w->limit)
		shed(w);
	conn_phase(c, PHASE_HEAD);
}

void
server_request_line(struct MHD_Connection *mc, struct request *rq)
{
	struct conn *c = conn_of(mc);

	if (c == NULL)
		return;
	c->rq = rq;
	/* the first request's head is timed from the opening */
	if (c->st.phase == PHASE_IDLE)
		conn_phase(c, PHASE_HEAD);
}

int
server_head_done(struct MHD_Connection *mc)
{
	struct conn *c = conn_of(mc);

	if (c == NULL)
		return 1;
	if (c->st.phase == PHASE_CLOSING)
		return 0;
	conn_phase(c, PHASE_BUSY);
	return 1;
}

void
server_request_done(struct MHD_Connection *mc)
{
	struct conn *c = conn_of(mc);

	if (c == NULL)
		return;
	c->rq = NULL;
	conn_phase(c, PHASE_IDLE);
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

/* How long serve() may wait: until libmicrohttpd's or libcurl's next
 * timeout, the first phase of a connection to run out, or `until` (a
 * clock_mono_us time, 0: none). */
static int
wait_ms(const struct worker *w, uint64_t until)
{
	MHD_UNSIGNED_LONG_LONG mt;
	uint64_t now;
	int t, c;

	/* libmicrohttpd takes up accepting again (at its connection limit
	 * it had stopped) only in the MHD_run after a connection closed */
	if (w->resumed || w->freed)
		return 0;
	t = MHD_get_timeout(w->mhd, &mt) == MHD_YES ?
	    (mt > INT_MAX ? INT_MAX : (int)mt) : -1;
	c = httpc_loop_timeout_ms(w->loop);
	if (c >= 0 && (t < 0 || c < t))
		t = c;
	if (w->next_check != 0 && (until == 0 || w->next_check < until))
		until = w->next_check;
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
		accesslog_flush(w);	/* this batch's lines */
		n = epoll_wait(w->epfd, ev, MAX_EVENTS, wait_ms(w, until));
		for (i = 0; i < n; i++) {
			if (ev[i].data.ptr == &tag_mhd)
				continue;	/* MHD_run below */
			if (ev[i].data.ptr == &tag_stop) {
				/* every worker sees it: nobody reads it */
				(void)epoll_ctl(w->epfd, EPOLL_CTL_DEL,
				    p->stopfd, NULL);
				stopping = 1;
				/* its socket is closed by server_stop() */
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
		w->resumed = w->freed = 0;
		MHD_run(w->mhd);
		if (w->next_check != 0 && clock_mono_us() >= w->next_check) {
			check_deadlines(w);
			/* the connections shut are closed now */
			MHD_run(w->mhd);
		}
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
	accesslog_flush(w);
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
listen_error(const struct proxy *p, struct error *e)
{
	return error_set(e, EXIT_UNAVAILABLE, "%s: cannot listen: %s",
	    p->o->listen != NULL ? p->o->listen : "listen address",
	    strerror(errno));
}

/*
 * Claim p->addr before the workers bind it together: a bind without
 * SO_REUSEPORT fails while anything listens there (another aistack-proxy
 * included, which the workers' SO_REUSEPORT would otherwise join), and
 * port 0 becomes the free port it found.  EXIT_UNAVAILABLE when the
 * address is in use or not ours.
 */
static int
claim_address(struct proxy *p, struct error *e)
{
	socklen_t len = sizeof(p->addr);
	int fd;

	if ((fd = tcp_socket(p, 0)) == -1)
		return listen_error(p, e);
	if (bind(fd, (struct sockaddr *)&p->addr, p->addrlen) == -1 ||
	    getsockname(fd, (struct sockaddr *)&p->addr, &len) == -1) {
		int err = errno;
		close(fd);
		errno = err;
		return listen_error(p, e);
	}
	close(fd);
	return 0;
}

/* Worker w's listening socket on p->addr.  Each worker has its own, bound
 * with SO_REUSEPORT, so that the kernel shares the new connections out
 * among them evenly. */
static int
listen_socket(struct proxy *p, struct worker *w, struct error *e)
{
	if ((w->lsock = tcp_socket(p, 1)) == -1 ||
	    bind(w->lsock, (struct sockaddr *)&p->addr, p->addrlen) == -1 ||
	    listen(w->lsock, SOMAXCONN) == -1)
		return listen_error(p, e);
	return 0;
}

/* Worker i: its epoll set, its upstream loop, its daemon on its own
 * listening socket with its share of the connections. */
static int
worker_init(struct proxy *p, size_t i, struct error *e)
{
	struct worker *w = &p->workers[i];
	const union MHD_DaemonInfo *di;
	uint64_t limit;
	unsigned flags;

	w->p = p;
	if (listen_socket(p, w, e) == -1)
		return -1;
	if ((w->epfd = epoll_create1(EPOLL_CLOEXEC)) == -1 ||
	    watch_fd(w, p->stopfd, &tag_stop) == -1)
		return error_errno(e, EXIT_SOFTWARE, "event loop");
	if ((w->loop = httpc_loop_new(w->epfd, e)) == NULL)
		return -1;
	/* as libmicrohttpd's own thread pool shares them out */
	limit = p->max_connections / p->nworkers +
	    (i < p->max_connections % p->nworkers);
	/* run from serve(): its epoll set is watched in ours */
	flags = MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG;
	if (p->addr.ss_family == AF_INET6)
		flags |= MHD_USE_IPv6;
	w->limit = (size_t)limit;
	w->mhd = MHD_start_daemon(flags, 0, NULL, NULL, request_handle, p,
	    MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, p,
	    MHD_OPTION_LISTEN_SOCKET, w->lsock,
	    MHD_OPTION_CONNECTION_LIMIT, (unsigned)limit,
	    MHD_OPTION_CONNECTION_TIMEOUT,
	    (unsigned)((p->idle_timeout_ms + 999) / 1000),
	    MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)p->max_header,
	    MHD_OPTION_URI_LOG_CALLBACK, request_begin, w,
	    MHD_OPTION_NOTIFY_COMPLETED, request_end, p,
	    MHD_OPTION_NOTIFY_CONNECTION, on_connection, w,
	    MHD_OPTION_STRICT_FOR_CLIENT, STRICTNESS,
	    MHD_OPTION_END);
	if (w->mhd == NULL)
		return error_set(e, EXIT_SOFTWARE, "libmicrohttpd failed to start");
	if ((di = MHD_get_daemon_info(w->mhd, MHD_DAEMON_INFO_EPOLL_FD)) ==
	    NULL || watch_fd(w, di->epoll_fd, &tag_mhd) == -1)
		return error_set(e, EXIT_SOFTWARE, "event loop: cannot watch "
		    "libmicrohttpd's epoll set");
	return 0;
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

static void
signals(sigset_t *set)
{
	sigemptyset(set);
	sigaddset(set, SIGTERM);
	sigaddset(set, SIGINT);
	sigaddset(set, SIGHUP);
}

int
server_start(struct proxy *p, struct error *e)
{
	sigset_t set;
	size_t i;
	long ncpu;
	int err;

	/* the workers' threads inherit this mask */
	signals(&set);
	pthread_sigmask(SIG_BLOCK, &set, NULL);

	if (claim_address(p, e) == -1)
		return -1;
	if ((p->stopfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) == -1)
		return error_errno(e, EXIT_SOFTWARE, "event loop");
	ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	p->nworkers = ncpu < 1 ? 1 : ncpu > MAX_WORKERS ? MAX_WORKERS :
	    (size_t)ncpu;
	if (p->nworkers > p->max_connections)
		p->nworkers = p->max_connections;
	if ((p->workers = calloc(p->nworkers, sizeof(*p->workers))) == NULL) {
		p->nworkers = 0;
		return error_errno(e, EXIT_SOFTWARE, "workers");
	}
	for (i = 0; i < p->nworkers; i++)
		p->workers[i].lsock = p->workers[i].epfd = -1;
	for (i = 0; i < p->nworkers; i++)
		if (worker_init(p, i, e) == -1)
			return -1;
	for (i = 0; i < p->nworkers; i++) {
		if ((err = pthread_create(&p->workers[i].thread, NULL, serve,
		    &p->workers[i])) != 0)
			return error_set(e, EXIT_SOFTWARE, "event loop: %s",
			    strerror(err));
		p->workers[i].started = 1;
	}
	if (p->o->verbose)
		print_address(p);
	return 0;
}

void
server_wait(struct proxy *p)
{
	sigset_t set;
	int sig;

	signals(&set);
	for (;;) {
		if (sigwait(&set, &sig) != 0)
			continue;
		if (sig == SIGHUP) {
			accesslog_reopen(p);
			continue;
		}
		break;
	}
	if (p->o->verbose)
		warnmsg("%s: shutting down", strsignal(sig));
}

void
server_stop(struct proxy *p)
{
	size_t i;

	if (p->stopfd >= 0)
		(void)eventfd_write(p->stopfd, 1);
	for (i = 0; i < p->nworkers; i++)
		if (p->workers[i].started)
			pthread_join(p->workers[i].thread, NULL);
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
		accesslog_flush(w);
		buf_release(&w->log);
		free(w->tab);
		if (w->epfd >= 0)
			close(w->epfd);
	}
	free(p->workers);
	p->workers = NULL;
	p->nworkers = 0;
	if (p->stopfd >= 0)
		close(p->stopfd);
	p->stopfd = -1;
}
