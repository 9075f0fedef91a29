/* The upstream client's header policy, its URL checks and its event
 * loop (the answers themselves are tested in tests/proxy.bats against a
 * local upstream). */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "base/err.h"
#include "base/exitcode.h"
#include "net/httpclient.h"
#include "unit.h"

#define IS(f, s) f(s, strlen(s))

TEST(httpclient_header_policy)
{
	CHECK(IS(httpc_hop_by_hop, "Connection"));
	CHECK(IS(httpc_hop_by_hop, "keep-alive"));
	CHECK(IS(httpc_hop_by_hop, "TRANSFER-ENCODING"));
	CHECK(IS(httpc_hop_by_hop, "Upgrade"));
	CHECK(IS(httpc_hop_by_hop, "Proxy-Authenticate"));
	CHECK(!IS(httpc_hop_by_hop, "ETag"));
	CHECK(IS(httpc_header_kept, "ETag"));
	CHECK(IS(httpc_header_kept, "cache-control"));
	CHECK(!IS(httpc_header_kept, "Set-Cookie"));
	CHECK(!IS(httpc_header_kept, "Access-Control-Allow-Origin"));
	CHECK(!IS(httpc_header_kept, "Content-Security-Policy"));
	CHECK(!IS(httpc_header_kept, "Keep-Alive"));
	CHECK(!IS(httpc_header_kept, "Location"));
}

TEST(httpclient_content_types)
{
	CHECK(httpc_content_type_kept("application/json"));
	CHECK(httpc_content_type_kept("application/json; charset=utf-8"));
	CHECK(httpc_content_type_kept("Application/JSON"));
	CHECK(httpc_content_type_kept("application/problem+json"));
	CHECK(httpc_content_type_kept("application/vnd.api+json"));
	CHECK(httpc_content_type_kept("text/plain; charset=utf-8"));
	CHECK(!httpc_content_type_kept("text/html"));
	CHECK(!httpc_content_type_kept("application/javascript"));
	CHECK(!httpc_content_type_kept("image/svg+xml"));
	CHECK(!httpc_content_type_kept("application/jsonx"));
	CHECK(!httpc_content_type_kept(""));
}

TEST(httpclient_base_urls)
{
	struct error e;
	struct httpc *c;

	CHECK((c = httpc_new("http://127.0.0.1:8091/", 1000, 100, "t", &e)) != NULL);
	httpc_free(c);
	CHECK((c = httpc_new("https://qdrant:6333/api", 1000, 100, "t", &e)) != NULL);
	httpc_free(c);
	CHECK(httpc_new("ftp://x/", 1000, 100, "t", &e) == NULL);
	CHECK_INT(e.code, EXIT_CONFIG);
	CHECK(httpc_new("http://u:p@x/", 1000, 100, "t", &e) == NULL);
	CHECK(httpc_new("http://x/?q=1", 1000, 100, "t", &e) == NULL);
	CHECK(httpc_new("http://", 1000, 100, "t", &e) == NULL);
	CHECK(httpc_new("file:///etc/passwd", 1000, 100, "t", &e) == NULL);
}

/* A refused connection is "down", counted as such, with curl's words. */
TEST(httpclient_down)
{
	struct httpc_response r = HTTPC_RESPONSE_INIT;
	struct error e;
	struct httpc *c;

	CHECK(httpc_global_init(&e) == 0);
	CHECK((c = httpc_new("http://127.0.0.1:1", 2000, 100, "t", &e)) != NULL);
	CHECK_INT(httpc_get(c, "/x", 0, &r), HTTPC_DOWN);
	CHECK(r.error[0] != '\0');
	httpc_response_release(&r);
	httpc_free(c);
}

/* What the loop's done callback saw. */
struct seen {
	int calls;
	enum httpc_result res;
};

static void
on_done(void *arg, enum httpc_result res)
{
	struct seen *s = arg;

	s->calls++;
	s->res = res;
}

/* Run loop l (its sockets in epfd) until *calls reaches want, or for
 * ms milliseconds when want is 0. */
static void
drive(struct httpc_loop *l, int epfd, const int *calls, int want, int ms)
{
	struct epoll_event ev[8];
	struct timespec t0, t;
	int n, i, wait;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		clock_gettime(CLOCK_MONOTONIC, &t);
		if (want > 0 ? *calls >= want : (t.tv_sec - t0.tv_sec) * 1000 +
		    (t.tv_nsec - t0.tv_nsec) / 1000000 >= ms)
			return;
		wait = httpc_loop_timeout_ms(l);
		if (wait < 0 || wait > 10)
			wait = 10;
		n = epoll_wait(epfd, ev, 8, wait);
		for (i = 0; i < n; i++)
			httpc_loop_event(l, ev[i].data.ptr, ev[i].events);
		httpc_loop_timer(l);
	}
}

/* A listening socket on a free loopback port; its URL in url. */
static int
listener(char *url, size_t n)
{
	struct sockaddr_in sin;
	socklen_t len = sizeof(sin);
	int fd;

	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if ((fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0 ||
	    bind(fd, (struct sockaddr *)&sin, sizeof(sin)) != 0 ||
	    listen(fd, 8) != 0 ||
	    getsockname(fd, (struct sockaddr *)&sin, &len) != 0)
		return -1;
	snprintf(url, n, "http://127.0.0.1:%u", ntohs(sin.sin_port));
	return fd;
}

/* The loop: a call ends with its result, once; cancelling gives up a
 * call still waiting (a server that accepts and never answers) at once. */
TEST(httpclient_loop)
{
	struct seen a = { 0, HTTPC_OK }, b = { 0, HTTPC_OK };
	struct httpc_response ra = HTTPC_RESPONSE_INIT;
	struct httpc_response rb = HTTPC_RESPONSE_INIT;
	struct httpc_loop *l;
	struct httpc *down, *mute;
	struct error e;
	char url[64];
	int fd, epfd;

	CHECK(httpc_global_init(&e) == 0);
	/* listens, never accepts: the kernel completes the connection */
	CHECK((fd = listener(url, sizeof(url))) >= 0);
	CHECK((down = httpc_new("http://127.0.0.1:1", 2000, 100, "t", &e)) !=
	    NULL);
	CHECK((mute = httpc_new(url, 60000, 100, "t", &e)) != NULL);
	CHECK((epfd = epoll_create1(EPOLL_CLOEXEC)) >= 0);
	CHECK((l = httpc_loop_new(epfd, &e)) != NULL);

	CHECK_INT(httpc_loop_submit(l, down, "/x", 0, &ra, on_done, &a), 0);
	CHECK_INT(httpc_loop_submit(l, mute, "/y", 0, &rb, on_done, &b), 0);
	CHECK_INT(httpc_loop_calls(l), 2);
	drive(l, epfd, &a.calls, 1, 0);
	CHECK_INT(a.res, HTTPC_DOWN);
	CHECK(ra.error[0] != '\0');
	drive(l, epfd, NULL, 0, 50);
	CHECK_INT(b.calls, 0);
	CHECK_INT(httpc_loop_calls(l), 1);

	httpc_loop_cancel(l);
	CHECK_INT(a.calls, 1);
	CHECK_INT(b.calls, 1);
	CHECK_INT(b.res, HTTPC_CANCELLED);
	CHECK_STR(rb.error, "shutting down");
	CHECK_STR(httpc_result_name(HTTPC_CANCELLED), "cancelled");
	CHECK_INT(httpc_loop_calls(l), 0);
	httpc_loop_free(l);
	httpc_response_release(&ra);
	httpc_response_release(&rb);
	httpc_free(down);
	httpc_free(mute);
	close(epfd);
	close(fd);
}

/* An upstream that answers one request a connection, keep-alive in its
 * words, and then closes the connection (as an idle timeout would). */
struct once_server {
	int fd;
	int conns;	/* to serve, then return */
};

static void *
serve_once(void *arg)
{
	static const char answer[] = "HTTP/1.1 200 OK\r\nContent-Type: "
	    "application/json\r\nContent-Length: 2\r\n\r\n{}";
	struct once_server *s = arg;
	char req[4096];
	size_t got;
	ssize_t n;
	int i, c;

	for (i = 0; i < s->conns; i++) {
		if ((c = accept(s->fd, NULL, NULL)) < 0)
			break;
		for (got = 0; got < sizeof(req) - 1; got += (size_t)n) {
			if ((n = read(c, req + got, sizeof(req) - 1 - got)) <= 0)
				break;
			req[got + (size_t)n] = '\0';
			if (strstr(req, "\r\n\r\n") != NULL)
				break;
		}
		if (write(c, answer, sizeof(answer) - 1) < 0)
			break;
		close(c);
	}
	return NULL;
}

/*
 * A kept-alive connection that the upstream closes while it sits idle
 * (parked in the epoll set): the loop stops watching it when it stirs,
 * and the next call opens a new connection (often with the same
 * descriptor number) and gets its answer.
 */
TEST(httpclient_loop_idle_close)
{
	struct once_server srv = { -1, 3 };
	struct seen s = { 0, HTTPC_OK };
	struct httpc_response r = HTTPC_RESPONSE_INIT;
	struct httpc_loop *l;
	struct httpc *c;
	struct error e;
	pthread_t th;
	char url[64];
	int epfd, i;

	CHECK(httpc_global_init(&e) == 0);
	CHECK((srv.fd = listener(url, sizeof(url))) >= 0);
	CHECK(pthread_create(&th, NULL, serve_once, &srv) == 0);
	CHECK((c = httpc_new(url, 5000, 100, "t", &e)) != NULL);
	CHECK((epfd = epoll_create1(EPOLL_CLOEXEC)) >= 0);
	CHECK((l = httpc_loop_new(epfd, &e)) != NULL);
	for (i = 1; i <= 3; i++) {
		CHECK_INT(httpc_loop_submit(l, c, "/v1/health", 0, &r,
		    on_done, &s), 0);
		drive(l, epfd, &s.calls, i, 0);
		CHECK_INT(s.res, HTTPC_OK);
		CHECK_INT(r.status, 200);
		CHECK_INT(r.body.len, 2);
		CHECK(memcmp(r.body.data, "{}", 2) == 0);
		CHECK_STR(r.content_type, "application/json");
		/* the server closes the idle connection meanwhile */
		drive(l, epfd, NULL, 0, 50);
	}
	pthread_join(th, NULL);
	httpc_loop_free(l);
	httpc_response_release(&r);
	httpc_free(c);
	close(epfd);
	close(srv.fd);
}

/*
 * A hostile upstream: on each connection it answers every request with
 * {"path":"<target>"} and then, unasked, writes a second whole response
 * on the idle connection, and says so on a pipe.
 */
struct stray_server {
	int fd;
	int said[2];	/* one byte written to said[1] per stray answer */
	int conns;	/* to serve, then return */
};

static void *
serve_stray(void *arg)
{
	static const char stray[] = "HTTP/1.1 200 OK\r\nContent-Type: "
	    "application/json\r\nContent-Length: 14\r\n\r\n{\"SMUGGLED\":1}";
	struct stray_server *s = arg;
	char req[4096], answer[4096], body[600];
	size_t got;
	ssize_t n;
	int i, c, len;

	for (i = 0; i < s->conns; i++) {
		if ((c = accept(s->fd, NULL, NULL)) < 0)
			break;
		for (;;) {
			for (got = 0, n = 0; got < sizeof(req) - 1;
			    got += (size_t)n) {
				if ((n = read(c, req + got, sizeof(req) - 1 -
				    got)) <= 0)
					break;
				req[got + (size_t)n] = '\0';
				if (strstr(req, "\r\n\r\n") != NULL)
					break;
			}
			if (n <= 0 || strncmp(req, "GET /", 5) != 0)
				break;
			len = snprintf(body, sizeof(body), "{\"path\":\"%.*s\"}",
			    (int)strcspn(req + 4, " \r\n"), req + 4);
			len = snprintf(answer, sizeof(answer), "HTTP/1.1 200 OK"
			    "\r\nContent-Type: application/json\r\n"
			    "Content-Length: %d\r\n\r\n%s", len, body);
			if (write(c, answer, (size_t)len) != len ||
			    write(c, stray, sizeof(stray) - 1) < 0 ||
			    write(s->said[1], "s", 1) != 1)
				break;
		}
		close(c);
	}
	return NULL;
}

/* Call target through l and check that the answer is the one asked for;
 * with first, the call is started before the loop reads its events (the
 * stray bytes not yet seen by the loop: only the check before reuse can
 * catch them). */
static int
ask(struct httpc_loop *l, int epfd, struct httpc *c, const char *target,
    int first)
{
	struct seen s = { 0, HTTPC_OK };
	struct httpc_response r = HTTPC_RESPONSE_INIT;
	char want[128];
	int ok;

	if (httpc_loop_submit(l, c, target, 0, &r, on_done, &s) != 0)
		return 0;
	if (first)
		httpc_loop_timer(l);
	drive(l, epfd, &s.calls, 1, 0);
	snprintf(want, sizeof(want), "{\"path\":\"%s\"}", target);
	ok = s.res == HTTPC_OK && r.status == 200 &&
	    r.body.len == strlen(want) && memcmp(r.body.data, want,
	    r.body.len) == 0;
	if (!ok)
		fprintf(stderr, "asked %s, got %d %ld \"%.*s\"\n", target,
		    (int)s.res, r.status, (int)r.body.len, r.body.data ?
		    r.body.data : "");
	httpc_response_release(&r);
	return ok;
}

/*
 * An idle kept-alive connection on which the upstream writes unasked is
 * never reused: every answer is the one asked for, whether the loop saw
 * the bytes arrive (its event) or the next call came first (the check
 * before reuse).
 */
TEST(httpclient_loop_stray_bytes)
{
	struct stray_server srv = { -1, { -1, -1 }, 8 };
	struct httpc_loop *l;
	struct httpc *c;
	struct error e;
	pthread_t th;
	char url[64], ch, target[16];
	int epfd, i;

	CHECK(httpc_global_init(&e) == 0);
	CHECK((srv.fd = listener(url, sizeof(url))) >= 0);
	CHECK(pipe(srv.said) == 0);
	CHECK(pthread_create(&th, NULL, serve_stray, &srv) == 0);
	CHECK((c = httpc_new(url, 5000, 1000, "t", &e)) != NULL);
	CHECK((epfd = epoll_create1(EPOLL_CLOEXEC)) >= 0);
	CHECK((l = httpc_loop_new(epfd, &e)) != NULL);
	for (i = 0; i < 8; i++) {
		snprintf(target, sizeof(target), "/r%d", i);
		CHECK(ask(l, epfd, c, target, i % 2));
		/* the stray answer is written... */
		CHECK(read(srv.said[0], &ch, 1) == 1);
		/* ...and has arrived (loopback), unread by the loop when
		 * the next call starts first */
		usleep(50000);
		if (i % 2 == 1)
			drive(l, epfd, NULL, 0, 20);
	}
	httpc_loop_free(l);
	httpc_free(c);
	(void)shutdown(srv.fd, SHUT_RDWR);	/* its accept returns */
	pthread_join(th, NULL);
	close(srv.fd);
	close(epfd);
	close(srv.said[0]);
	close(srv.said[1]);
}

/* One connection answered with a canned head (a HEAD's: no body). */
struct canned {
	int fd;
	const char *answer;
};

static void *
serve_canned(void *arg)
{
	struct canned *s = arg;
	char req[4096];
	size_t got = 0;
	ssize_t n;
	int c;

	if ((c = accept(s->fd, NULL, NULL)) < 0)
		return NULL;
	while (got < sizeof(req) - 1 &&
	    (n = read(c, req + got, sizeof(req) - 1 - got)) > 0) {
		got += (size_t)n;
		req[got] = '\0';
		if (strstr(req, "\r\n\r\n") != NULL)
			break;
	}
	if (write(c, s->answer, strlen(s->answer)) < 0)
		perror("write");
	close(c);
	return NULL;
}

/* A HEAD's answer keeps the Content-Length the upstream said, but for a
 * compressed body (the GET's would be decoded) or none at all. */
TEST(httpclient_head_length)
{
	static const char *const answers[] = {
		"HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\n",
		"HTTP/1.1 200 OK\r\nContent-Length: 11\r\n"
		    "Content-Encoding: gzip\r\n\r\n",
		"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n",
	};
	static const long want[] = { 11, -1, -1 };
	struct httpc_response r = HTTPC_RESPONSE_INIT;
	struct canned s;
	struct error e;
	struct httpc *c;
	pthread_t t;
	char url[64];
	size_t i;

	CHECK(httpc_global_init(&e) == 0);
	for (i = 0; i < 3; i++) {
		CHECK((s.fd = listener(url, sizeof(url))) >= 0);
		s.answer = answers[i];
		CHECK(pthread_create(&t, NULL, serve_canned, &s) == 0);
		CHECK((c = httpc_new(url, 2000, 100, "t", &e)) != NULL);
		CHECK_INT(httpc_get(c, "/x", 1, &r), HTTPC_OK);
		CHECK_INT(r.status, 200);
		CHECK_INT(r.length, want[i]);
		pthread_join(t, NULL);
		close(s.fd);
		httpc_free(c);
	}
	httpc_response_release(&r);
}
