/* The upstream client's header policy and its URL checks (the calls
 * themselves are tested in tests/proxy.bats against a local upstream). */
#include <string.h>

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
