/* The access log's line (logline.h). */
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

int
logline_format(struct buf *b, const struct logline *l)
{
	int rc = 0;

	rc |= buf_printf(b, "%s - - [%s] \"%s ",
	    l->client != NULL && l->client[0] ? l->client : "-", l->when,
	    l->method != NULL && l->method[0] ? l->method : "-");
	rc |= logline_escape(b, l->target, l->targetlen, l->full);
	if (l->status != 0)
		rc |= buf_printf(b, "\" %d %llu", l->status,
		    (unsigned long long)l->bytes);
	else
		rc |= buf_printf(b, "\" - -");
	rc |= buf_printf(b, " %.3f %s%s\n", l->seconds, l->route,
	    l->aborted ? " aborted" : "");
	return rc != 0 ? -1 : 0;
}
