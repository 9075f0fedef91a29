/* The access log's line (logline.h). */
#include <string.h>

#include "logline.h"

int
logline_escape(struct buf *b, const char *s, size_t n, size_t full)
{
	size_t i, run;
	int rc = 0;

	if (n > LOG_TARGET_MAX)
		n = LOG_TARGET_MAX;
	for (i = 0; i < n; i += run) {
		unsigned char c;
		for (run = 0; i + run < n; run++) {
			c = (unsigned char)s[i + run];
			if (c < 0x21 || c > 0x7e || c == '"' || c == '\\')
				break;
		}
		if (run > 0) {
			rc |= buf_append(b, s + i, run);
			continue;
		}
		rc |= buf_printf(b, "\\x%02x", (unsigned char)s[i]);
		run = 1;
	}
	if (full > n)
		rc |= buf_append(b, "...", 3);
	return rc != 0 ? -1 : 0;
}

/* A field of the line: "-" when there is none, else s (n bytes of a
 * whole of full) escaped as the target is. */
static int
field(struct buf *b, const char *s, size_t n, size_t full)
{
	if (s == NULL || n == 0)
		return buf_putc(b, '-');
	return logline_escape(b, s, n, full > n ? full : n);
}

int
logline_format(struct buf *b, const struct logline *l)
{
	size_t n;
	int rc = 0;

	/* every field a client or an upstream could have chosen goes
	 * through logline_escape: no byte of the line is a control byte,
	 * a '"' or a '\' that a reader of the log could take for more */
	n = l->client != NULL ? strlen(l->client) : 0;
	rc |= field(b, l->client, n, n);
	rc |= buf_printf(b, " - - [%s] \"", l->when);
	n = l->method != NULL ? strlen(l->method) : 0;
	rc |= field(b, l->method, n, l->methodfull);
	rc |= buf_putc(b, ' ');
	rc |= logline_escape(b, l->target, l->targetlen, l->full);
	if (l->status != 0)
		rc |= buf_printf(b, "\" %d %llu", l->status,
		    (unsigned long long)l->bytes);
	else
		rc |= buf_printf(b, "\" - -");
	rc |= buf_putc(b, ' ');
	rc |= buf_printf(b, "%.3f ", l->seconds);
	n = l->route != NULL ? strlen(l->route) : 0;
	rc |= field(b, l->route, n, n);
	if (l->aborted)
		rc |= buf_printf(b, " aborted");
	rc |= buf_putc(b, '\n');
	return rc != 0 ? -1 : 0;
}
