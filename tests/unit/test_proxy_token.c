/* aistack-proxy's bearer token rules (cmd/proxy/token.c, a pure room). */
#include "net/route.h"
#include "proxy/token.h"
#include "unit.h"

static long
parse(const char *s, size_t n, int nl, char *why)
{
	return token_parse(s, n, nl, why, 64);
}

TEST(token_is_every_byte_but_one_trailing_newline)
{
	char why[64];

	CHECK_INT(parse("s3cret", 6, 1, why), 6);
	CHECK_INT(parse("s3cret\n", 7, 1, why), 6);
	CHECK_INT(parse("s3cret\r\n", 8, 1, why), 6);
	/* one newline only: a second is a control byte */
	CHECK_INT(parse("s3cret\n\n", 8, 1, why), -1);
	CHECK_STR(why, "a control byte (0x0a) at offset 6");
	/* a bare CR is not a newline */
	CHECK_INT(parse("s3cret\r", 7, 1, why), -1);
	/* from a variable, nothing is stripped */
	CHECK_INT(parse("s3cret\n", 7, 0, why), -1);
	/* inner spaces and bytes >= 0x80 are the token's */
	CHECK_INT(parse("a b\xc3\xa9", 5, 1, why), 5);
}

TEST(token_refuses_empty_nul_control_and_white_space)
{
	char why[64];

	CHECK_INT(parse("", 0, 1, why), -1);
	CHECK_STR(why, "empty token");
	CHECK_INT(parse("\n", 1, 1, why), -1);
	CHECK_STR(why, "empty token");
	CHECK_INT(parse("\r\n", 2, 1, why), -1);
	CHECK_STR(why, "empty token");
	/* the hole: a NUL first made strlen's token empty, auth off */
	CHECK_INT(parse("\0binarytokenbytes", 17, 1, why), -1);
	CHECK_STR(why, "a NUL byte at offset 0");
	CHECK_INT(parse("x\0y", 3, 1, why), -1);
	CHECK_STR(why, "a NUL byte at offset 1");
	CHECK_INT(parse("ab\tc", 4, 1, why), -1);
	CHECK_STR(why, "a control byte (0x09) at offset 2");
	CHECK_INT(parse("ab\x7f", 3, 1, why), -1);
	CHECK_STR(why, "a control byte (0x7f) at offset 2");
	CHECK_INT(parse("\x1b[0m", 4, 1, why), -1);
	CHECK_INT(parse("   \n", 4, 1, why), -1);
	CHECK_STR(why, "white space only");
	CHECK_INT(parse(" abc", 4, 1, why), -1);
	CHECK_STR(why, "begins or ends with a space");
	CHECK_INT(parse("abc \n", 5, 1, why), -1);
	CHECK_STR(why, "begins or ends with a space");
}

TEST(token_is_compared_over_its_length)
{
	char why[64];
	long n = parse("x\xffy\n", 4, 1, why);

	CHECK_INT(n, 3);
	CHECK(route_bearer_ok("Bearer x\xffy", "x\xffy", (size_t)n));
	CHECK(!route_bearer_ok("Bearer x", "x\xffy", (size_t)n));
	CHECK(!route_bearer_ok("Bearer x\xffyz", "x\xffy", (size_t)n));
}
