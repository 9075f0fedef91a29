/*
 * The value parsers (lib/base/parse.c): durations, sizes, unsigned integers
 * and rates.  The input is the text to parse.  Properties: each parser
 * accepts exactly the strict grammar of lib/base/parse.h (checked here by an
 * independent reference that works in 128-bit arithmetic), gives the
 * reference's value, and its formatter writes text that parses back to
 * the same value.
 */
#include <errno.h>
#include <string.h>

#include "base/parse.h"
#include "fuzz.h"

typedef unsigned __int128 u128;

/* Leading digits as a 128-bit value (saturated), their count in *nd. */
static u128
ref_digits(const char *s, size_t *nd)
{
	u128 x = 0;
	size_t i;

	for (i = 0; s[i] >= '0' && s[i] <= '9'; i++)
		if (x <= (u128)UINT64_MAX * 10)
			x = x * 10 + (u128)(s[i] - '0');
	*nd = i;
	return x;
}

static void
check_duration(const char *s)
{
	static const struct {
		const char *unit;
		uint64_t mul;
	} units[] = {
		{ "", 1000 }, { "ms", 1 }, { "s", 1000 }, { "m", 60000 },
		{ "h", 3600000 }, { "d", 86400000 },
	};
	uint64_t ms = 0, again = 0;
	size_t nd, i;
	u128 x = ref_digits(s, &nd), want = 0;
	int ok = 0, rc;
	char text[64];

	if (nd > 0)
		for (i = 0; i < sizeof(units) / sizeof(units[0]); i++)
			if (strcmp(s + nd, units[i].unit) == 0) {
				want = x * units[i].mul;
				ok = x <= UINT64_MAX && want <= UINT64_MAX;
				break;
			}
	errno = 0;
	rc = parse_duration_ms(s, &ms);
	FUZZ_CHECK((rc == 0) == ok);
	if (rc != 0) {
		FUZZ_CHECK(errno == EINVAL || errno == ERANGE);
		return;
	}
	FUZZ_CHECK(ms == (uint64_t)want);
	format_duration(text, sizeof(text), ms);
	FUZZ_CHECK(parse_duration_ms(text, &again) == 0 && again == ms);
}

static void
check_size(const char *s)
{
	uint64_t v = 0, again = 0;
	size_t nd;
	u128 x = ref_digits(s, &nd), mul = 0;
	const char *u = s + nd;
	int rc;
	char text[64];

	if (nd > 0) {
		if (strcmp(u, "") == 0 || strcmp(u, "B") == 0)
			mul = 1;
		else if (strchr("kKMGT", u[0]) != NULL && u[0] != '\0' &&
		    (u[1] == '\0' || strcmp(u + 1, "B") == 0 ||
		    strcmp(u + 1, "iB") == 0)) {
			mul = 1024;
			for (const char *q = "kMGT"; *q != '\0' &&
			    *q != (u[0] == 'K' ? 'k' : u[0]); q++)
				mul *= 1024;
		}
	}
	errno = 0;
	rc = parse_size(s, &v);
	FUZZ_CHECK((rc == 0) == (mul != 0 && x * mul <= UINT64_MAX));
	if (rc != 0)
		return;
	FUZZ_CHECK(v == (uint64_t)(x * mul));
	format_size(text, sizeof(text), v);
	FUZZ_CHECK(parse_size(text, &again) == 0 && again == v);
}

static void
check_u64(const char *s)
{
	uint64_t v = 0;
	size_t nd;
	u128 x = ref_digits(s, &nd);
	int rc = parse_u64(s, &v);

	FUZZ_CHECK((rc == 0) == (nd > 0 && s[nd] == '\0' && x <= UINT64_MAX));
	if (rc == 0)
		FUZZ_CHECK(v == (uint64_t)x);
}

static void
check_rate(const char *s)
{
	double per_min = -1;
	size_t nd;
	u128 x = ref_digits(s, &nd);
	const char *u = s + nd;
	int ok, rc;

	ok = nd > 0 && x > 0 && x <= UINT64_MAX &&
	    (strcmp(u, "") == 0 || strcmp(u, "/min") == 0 ||
	    strcmp(u, "/m") == 0 || strcmp(u, "/s") == 0 ||
	    (strcmp(u, "/h") == 0 && x >= 60));
	rc = parse_rate_per_min(s, &per_min);
	FUZZ_CHECK((rc == 0) == ok);
	if (rc == 0)
		FUZZ_CHECK(per_min >= 1.0);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s;

	if (size > 256)
		return 0;
	s = fuzz_strndup(data, size);
	check_duration(s);
	check_size(s);
	check_u64(s);
	check_rate(s);
	free(s);
	return 0;
}
