/* Connections per client across threads: the count, the limit, the
 * keys (IPv4-mapped IPv6 is the IPv4 client, an IPv6 client its prefix),
 * and a table that empties. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

#include "net/connlimit.h"
#include "unit.h"

static struct sockaddr_in
v4(const char *a)
{
	struct sockaddr_in sin;

	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	inet_pton(AF_INET, a, &sin.sin_addr);
	return sin;
}

static struct sockaddr_in6
v6(const char *a)
{
	struct sockaddr_in6 sin6;

	memset(&sin6, 0, sizeof(sin6));
	sin6.sin6_family = AF_INET6;
	inet_pton(AF_INET6, a, &sin6.sin6_addr);
	return sin6;
}

#define SA(x) ((const struct sockaddr *)(const void *)&(x))

TEST(connlimit_counts_per_client)
{
	struct sockaddr_in a = v4("127.0.0.2"), b = v4("127.0.0.3");
	struct sockaddr_in6 am = v6("::ffff:127.0.0.2"), c = v6("2001:db8::1");
	struct sockaddr_in6 c2 = v6("2001:db8::2");
	struct connlimit *cl;

	CHECK((cl = connlimit_new(256, 2, 128)) != NULL);
	CHECK_INT(connlimit_enter(cl, SA(a)), 1);
	CHECK_INT(connlimit_enter(cl, SA(am)), 1);	/* the same client */
	CHECK_INT(connlimit_enter(cl, SA(a)), 0);	/* over, counted */
	CHECK_INT(connlimit_enter(cl, SA(b)), 1);
	CHECK_INT(connlimit_enter(cl, SA(c)), 1);
	CHECK_INT(connlimit_enter(cl, SA(c2)), 1);	/* exact addresses */
	CHECK_INT(connlimit_clients(cl), 4);
	connlimit_leave(cl, SA(a));
	CHECK_INT(connlimit_enter(cl, SA(a)), 0);	/* 3 again: over */
	connlimit_leave(cl, SA(a));
	connlimit_leave(cl, SA(a));
	CHECK_INT(connlimit_enter(cl, SA(am)), 1);	/* 2 now */
	connlimit_leave(cl, SA(a));
	connlimit_leave(cl, SA(am));
	connlimit_leave(cl, SA(b));
	connlimit_leave(cl, SA(c));
	connlimit_leave(cl, SA(c2));
	CHECK_INT(connlimit_clients(cl), 0);
	/* a client never seen: nothing to undo */
	connlimit_leave(cl, SA(b));
	CHECK_INT(connlimit_clients(cl), 0);
	connlimit_free(cl);
}

/* One host's /64 is one client: its addresses share the limit; another
 * /64 is another client; IPv4 clients stay per address. */
TEST(connlimit_counts_ipv6_per_prefix)
{
	struct sockaddr_in6 a1 = v6("2001:db8:1:2::1");
	struct sockaddr_in6 a2 = v6("2001:db8:1:2:ffff:ffff:ffff:fffe");
	struct sockaddr_in6 a3 = v6("2001:db8:1:2:8000::9");
	struct sockaddr_in6 b = v6("2001:db8:1:3::1");
	struct sockaddr_in v1 = v4("192.0.2.1"), v2 = v4("192.0.2.2");
	struct connlimit *cl;

	CHECK((cl = connlimit_new(256, 2, 64)) != NULL);
	CHECK_INT(connlimit_enter(cl, SA(a1)), 1);
	CHECK_INT(connlimit_enter(cl, SA(a2)), 1);
	CHECK_INT(connlimit_enter(cl, SA(a3)), 0);	/* the same /64: over */
	CHECK_INT(connlimit_enter(cl, SA(b)), 1);	/* the next /64 */
	CHECK_INT(connlimit_enter(cl, SA(v1)), 1);
	CHECK_INT(connlimit_enter(cl, SA(v2)), 1);	/* IPv4: per address */
	CHECK_INT(connlimit_enter(cl, SA(v1)), 1);
	CHECK_INT(connlimit_clients(cl), 4);
	connlimit_leave(cl, SA(a3));
	connlimit_leave(cl, SA(a1));
	CHECK_INT(connlimit_enter(cl, SA(a3)), 1);	/* 2 again */
	connlimit_leave(cl, SA(a2));
	connlimit_leave(cl, SA(a3));
	connlimit_leave(cl, SA(b));
	connlimit_leave(cl, SA(v1));
	connlimit_leave(cl, SA(v1));
	connlimit_leave(cl, SA(v2));
	CHECK_INT(connlimit_clients(cl), 0);
	connlimit_free(cl);

	/* a /48: the whole site is one client */
	CHECK((cl = connlimit_new(256, 1, 48)) != NULL);
	CHECK_INT(connlimit_enter(cl, SA(a1)), 1);
	CHECK_INT(connlimit_enter(cl, SA(b)), 0);
	connlimit_leave(cl, SA(a1));
	connlimit_leave(cl, SA(b));
	CHECK_INT(connlimit_clients(cl), 0);
	connlimit_free(cl);
}
