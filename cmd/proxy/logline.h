/*
 * The access log's line, made from plain values: pure (no I/O, no
 * state), so that tests/unit links it (see README, "The tree").
 *
 *	CLIENT - - [TIME] "METHOD TARGET" STATUS BYTES SECONDS ROUTE[ aborted]
 *
 * STATUS and BYTES are "-" for an answer libmicrohttpd made itself.
 * Every field is escaped as logline_escape does (CLIENT, METHOD, TARGET
 * and ROUTE alike), so a line is printable ASCII, one line, whatever a
 * client sent.
 */
#ifndef AISTACK_PROXY_LOGLINE_H
#define AISTACK_PROXY_LOGLINE_H

#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"

#define LOG_TARGET_MAX	512	/* target bytes logged at most */

struct logline {
	const char *client;	/* "" or NULL: "-" */
	const char *when;	/* "27/Nov/2026:13:05:00 +0000" */
	const char *method;	/* "" or NULL: "-" */
	size_t methodfull;	/* the method's full length, when cut */
	const char *target;	/* targetlen bytes of a target of full bytes */
	size_t targetlen;
	size_t full;
	int status;		/* 0: answered by libmicrohttpd itself */
	uint64_t bytes;
	double seconds;
	const char *route;	/* route_label_name */
	int aborted;
};

/* Append s (n bytes) to b with every byte that is not printable ASCII,
 * '"' or '\' escaped as \xHH, at most LOG_TARGET_MAX bytes of it, and
 * "..." when the whole (full bytes) was longer. */
int logline_escape(struct buf *b, const char *s, size_t n, size_t full);

/* Append l's line, with its newline, to b; -1 when out of memory. */
int logline_format(struct buf *b, const struct logline *l);

#endif
