/* The bearer token's rules (token.h). */
#include <stdio.h>

#include "token.h"

long
token_parse(const char *s, size_t n, int nl, char *why, size_t whylen)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t i, spaces = 0;

	if (nl && n > 0 && u[n - 1] == '\n') {
		n--;
		if (n > 0 && u[n - 1] == '\r')
			n--;
	}
	if (n == 0) {
		snprintf(why, whylen, "empty token");
		return -1;
	}
	for (i = 0; i < n; i++) {
		if (u[i] == '\0') {
			snprintf(why, whylen, "a NUL byte at offset %zu", i);
			return -1;
		}
		if (u[i] < 0x20 || u[i] == 0x7f) {
			snprintf(why, whylen, "a control byte (0x%02x) at "
			    "offset %zu", u[i], i);
			return -1;
		}
		if (u[i] == ' ')
			spaces++;
	}
	if (spaces == n) {
		snprintf(why, whylen, "white space only");
		return -1;
	}
	if (u[0] == ' ' || u[n - 1] == ' ') {
		snprintf(why, whylen, "begins or ends with a space");
		return -1;
	}
	if (n > 0x7fffffffUL) {
		snprintf(why, whylen, "too long");
		return -1;
	}
	return (long)n;
}
