/* The upstream client's header policy, its URL checks and its event
 * loop (the answers themselves are tested in tests/proxy.bats against a
 * local upstream). */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "err.h"
#include "exitcode.h"
#include "httpclient.h"
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
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int calls;
	enum httpc_result res;
};

static void
on_done(void *arg, enum httpc_result res)
{
	struct seen *s = arg;

	pthread_mutex_lock(&s->mu);
	s->calls++;
	s->res = res;
	pthread_cond_signal(&s->cv);
	pthread_mutex_unlock(&s->mu);
}

/* The loop: a call ends with its result, once; stopping gives up a call
 * still waiting (a server that accepts and never answers) at once. */
TEST(httpclient_loop)
{
	struct seen a = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER,
	    0, HTTPC_OK };
	struct seen b = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER,
	    0, HTTPC_OK };
	struct httpc_response ra = HTTPC_RESPONSE_INIT;
	struct httpc_response rb = HTTPC_RESPONSE_INIT;
	struct sockaddr_in sin;
	socklen_t len = sizeof(sin);
	struct httpc_loop *l;
	struct httpc *down, *mute;
	struct error e;
	char url[64];
	int fd;

	CHECK(httpc_global_init(&e) == 0);
	/* listens, never accepts: the kernel completes the connection */
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	CHECK((fd = socket(AF_INET, SOCK_STREAM, 0)) >= 0);
	CHECK(bind(fd, (struct sockaddr *)&sin, sizeof(sin)) == 0);
	CHECK(listen(fd, 8) == 0);
	CHECK(getsockname(fd, (struct sockaddr *)&sin, &len) == 0);
	snprintf(url, sizeof(url), "http://127.0.0.1:%u", ntohs(sin.sin_port));
	CHECK((down = httpc_new("http://127.0.0.1:1", 2000, 100, "t", &e)) !=
	    NULL);
	CHECK((mute = httpc_new(url, 60000, 100, "t", &e)) != NULL);
	CHECK((l = httpc_loop_start(&e)) != NULL);

	CHECK_INT(httpc_loop_submit(l, down, "/x", 0, &ra, on_done, &a), 0);
	CHECK_INT(httpc_loop_submit(l, mute, "/y", 0, &rb, on_done, &b), 0);
	pthread_mutex_lock(&a.mu);
	while (a.calls == 0)
		pthread_cond_wait(&a.cv, &a.mu);
	pthread_mutex_unlock(&a.mu);
	CHECK_INT(a.res, HTTPC_DOWN);
	CHECK(ra.error[0] != '\0');
	CHECK_INT(b.calls, 0);

	httpc_loop_stop(l);
	CHECK_INT(a.calls, 1);
	CHECK_INT(b.calls, 1);
	CHECK_INT(b.res, HTTPC_CANCELLED);
	CHECK_STR(rb.error, "shutting down");
	CHECK_STR(httpc_result_name(HTTPC_CANCELLED), "cancelled");
	httpc_response_release(&ra);
	httpc_response_release(&rb);
	httpc_free(down);
	httpc_free(mute);
	close(fd);
}
