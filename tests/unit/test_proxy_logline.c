/* aistack-proxy's access log line (cmd/proxy/logline.c, a pure room). */
#include "proxy/logline.h"
#include "unit.h"

static int
is(const struct buf *b, const char *want)
{
	return b->len == strlen(want) && memcmp(b->data, want, b->len) == 0;
}

TEST(logline_escapes_the_target)
{
	struct buf b = BUF_INIT;
	const char t[] = "/a\"b\\c d\x1b\x7f\xff\x01z";

	CHECK_INT(logline_escape(&b, t, sizeof(t) - 1, sizeof(t) - 1), 0);
	CHECK(is(&b, "/a\\x22b\\x5cc\\x20d\\x1b\\x7f\\xff\\x01z"));
	buf_release(&b);
}

TEST(logline_cuts_a_long_target)
{
	struct buf b = BUF_INIT;
	char t[LOG_TARGET_MAX + 10];

	memset(t, 'a', sizeof(t));
	CHECK_INT(logline_escape(&b, t, sizeof(t), sizeof(t) + 100), 0);
	CHECK_INT(b.len, LOG_TARGET_MAX + 3);
	CHECK(memcmp(b.data + LOG_TARGET_MAX, "...", 3) == 0);
	buf_release(&b);
	/* kept whole but known to be longer (the proxy keeps max_url + 1) */
	CHECK_INT(logline_escape(&b, "/x", 2, 5000), 0);
	CHECK(is(&b, "/x..."));
	buf_release(&b);
}

TEST(logline_formats_a_line)
{
	struct buf b = BUF_INIT;
	struct logline l;

	memset(&l, 0, sizeof(l));
	l.client = "127.0.0.1";
	l.when = "27/Nov/2026:13:05:00 +0000";
	l.method = "GET";
	l.target = "/health";
	l.targetlen = l.full = 7;
	l.status = 200;
	l.bytes = 42;
	l.seconds = 0.25;
	l.route = "health";
	CHECK_INT(logline_format(&b, &l), 0);
	CHECK(is(&b, "127.0.0.1 - - [27/Nov/2026:13:05:00 +0000] "
	    "\"GET /health\" 200 42 0.250 health\n"));
	buf_release(&b);
	/* answered by libmicrohttpd itself, aborted, nothing known */
	l.client = "";
	l.method = NULL;
	l.status = 0;
	l.aborted = 1;
	l.route = "other";
	CHECK_INT(logline_format(&b, &l), 0);
	CHECK(is(&b, "- - - [27/Nov/2026:13:05:00 +0000] "
	    "\"- /health\" - - 0.250 other aborted\n"));
	buf_release(&b);
}

TEST(logline_escapes_every_field)
{
	struct buf b = BUF_INIT;
	struct logline l;

	memset(&l, 0, sizeof(l));
	l.client = "::1";
	l.when = "27/Nov/2026:13:05:00 +0000";
	/* the hole: a terminal-title sequence as the method went raw */
	l.method = "\x1b]0;pwn\x07";
	l.target = "/health";
	l.targetlen = l.full = 7;
	l.status = 200;
	l.bytes = 3;
	l.route = "health";
	CHECK_INT(logline_format(&b, &l), 0);
	CHECK(is(&b, "::1 - - [27/Nov/2026:13:05:00 +0000] "
	    "\"\\x1b]0;pwn\\x07 /health\" 200 3 0.000 health\n"));
	buf_release(&b);
	/* '"', '\', CR, a space, bytes >= 0x7f; a cut method says so */
	l.method = "G\"E\\T\r \x7f\xc3";
	l.methodfull = 40;
	l.client = "a\"b";
	l.route = "x y";
	CHECK_INT(logline_format(&b, &l), 0);
	CHECK(is(&b, "a\\x22b - - [27/Nov/2026:13:05:00 +0000] "
	    "\"G\\x22E\\x5cT\\x0d\\x20\\x7f\\xc3... /health\" 200 3 0.000 "
	    "x\\x20y\n"));
	buf_release(&b);
}
