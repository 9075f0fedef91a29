#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "parse.h"

/* Read leading decimal digits into *v; returns the count, 0 on none or overflow. */
static size_t
digits(const char *s, uint64_t *v)
{
	size_t i = 0;
	uint64_t x = 0;

	while (s[i] >= '0' && s[i] <= '9') {
		unsigned d = (unsigned)(s[i] - '0');
		if (x > (UINT64_MAX - d) / 10)
			return 0;
		x = x * 10 + d;
		i++;
	}
	*v = x;
	return i;
}

int
parse_u64(const char *s, uint64_t *v)
{
	size_t n;

	if (s == NULL || (n = digits(s, v)) == 0 || s[n] != '\0') {
		errno = EINVAL;
		return -1;
	}
	return 0;
}

static int
scaled(uint64_t x, uint64_t mul, uint64_t *out)
{
	if (mul != 0 && x > UINT64_MAX / mul) {
		errno = ERANGE;
		return -1;
	}
	*out = x * mul;
	return 0;
}

int
parse_duration_ms(const char *s, uint64_t *ms)
{
	static const struct {
		const char *unit;
		uint64_t mul;
	} units[] = {
		{ "", 1000 }, { "ms", 1 }, { "s", 1000 }, { "m", 60000 },
		{ "h", 3600000 }, { "d", 86400000 },
	};
	uint64_t x;
	size_t n, i;

	if (s == NULL || (n = digits(s, &x)) == 0) {
		errno = EINVAL;
		return -1;
	}
	for (i = 0; i < sizeof(units) / sizeof(units[0]); i++)
		if (strcmp(s + n, units[i].unit) == 0)
			return scaled(x, units[i].mul, ms);
	errno = EINVAL;
	return -1;
}

int
parse_size(const char *s, uint64_t *bytes)
{
	uint64_t x, mul = 1;
	const char *u;
	size_t n;

	if (s == NULL || (n = digits(s, &x)) == 0) {
		errno = EINVAL;
		return -1;
	}
	u = s + n;
	switch (*u) {
	case '\0':
		return scaled(x, 1, bytes);
	case 'k':
	case 'K':
		mul = 1024;
		break;
	case 'M':
		mul = 1024 * 1024;
		break;
	case 'G':
		mul = 1024ULL * 1024 * 1024;
		break;
	case 'T':
		mul = 1024ULL * 1024 * 1024 * 1024;
		break;
	case 'B':
		if (u[1] == '\0')
			return scaled(x, 1, bytes);
		/* FALLTHROUGH */
	default:
		errno = EINVAL;
		return -1;
	}
	u++;
	if (*u != '\0' && strcmp(u, "B") != 0 && strcmp(u, "iB") != 0) {
		errno = EINVAL;
		return -1;
	}
	return scaled(x, mul, bytes);
}

int
parse_rate_per_min(const char *s, double *per_min)
{
	uint64_t x;
	size_t n;

	if (s == NULL || (n = digits(s, &x)) == 0 || x == 0) {
		errno = EINVAL;
		return -1;
	}
	if (strcmp(s + n, "/min") == 0 || strcmp(s + n, "/m") == 0 ||
	    s[n] == '\0')
		*per_min = (double)x;
	else if (strcmp(s + n, "/s") == 0)
		*per_min = (double)x * 60.0;
	else if (strcmp(s + n, "/h") == 0) {
		if (x < 60) {
			errno = ERANGE;
			return -1;
		}
		*per_min = (double)x / 60.0;
	} else {
		errno = EINVAL;
		return -1;
	}
	return 0;
}

void
format_duration(char *buf, size_t n, uint64_t ms)
{
	if (ms != 0 && ms % 86400000 == 0)
		snprintf(buf, n, "%llud", (unsigned long long)(ms / 86400000));
	else if (ms != 0 && ms % 3600000 == 0)
		snprintf(buf, n, "%lluh", (unsigned long long)(ms / 3600000));
	else if (ms != 0 && ms % 60000 == 0)
		snprintf(buf, n, "%llum", (unsigned long long)(ms / 60000));
	else if (ms % 1000 == 0)
		snprintf(buf, n, "%llus", (unsigned long long)(ms / 1000));
	else
		snprintf(buf, n, "%llums", (unsigned long long)ms);
}

void
format_size(char *buf, size_t n, uint64_t bytes)
{
	static const char units[] = "kMGT";
	int i = -1;

	while (bytes != 0 && bytes % 1024 == 0 && i < 3) {
		bytes /= 1024;
		i++;
	}
	if (i < 0)
		snprintf(buf, n, "%llu", (unsigned long long)bytes);
	else
		snprintf(buf, n, "%llu%c", (unsigned long long)bytes, units[i]);
}
