/*
 * libpq, loaded when first needed (dlopen of libpq.so.5), so that the
 * commands that can talk to PostgreSQL do not pay for loading it, and the
 * two dozen libraries it pulls in, on every start.  The table is resolved
 * once per process and kept; it is the module's only static state.
 */
#ifndef AISTACK_PQDL_H
#define AISTACK_PQDL_H

#include <libpq-fe.h>

#include "base/err.h"

struct pq_api {
	__typeof__(PQclear) *clear;
	__typeof__(PQcmdTuples) *cmd_tuples;
	__typeof__(PQconnectPoll) *connect_poll;
	__typeof__(PQconnectStart) *connect_start;
	__typeof__(PQconnectdb) *connectdb;
	__typeof__(PQconninfoFree) *conninfo_free;
	__typeof__(PQconninfoParse) *conninfo_parse;
	__typeof__(PQdb) *db;
	__typeof__(PQerrorMessage) *error_message;
	__typeof__(PQescapeIdentifier) *escape_identifier;
	__typeof__(PQescapeLiteral) *escape_literal;
	__typeof__(PQexec) *exec;
	__typeof__(PQfinish) *finish;
	__typeof__(PQfreemem) *freemem;
	__typeof__(PQgetResult) *get_result;
	__typeof__(PQgetisnull) *get_is_null;
	__typeof__(PQgetvalue) *get_value;
	__typeof__(PQhost) *host;
	__typeof__(PQntuples) *ntuples;
	__typeof__(PQputCopyData) *put_copy_data;
	__typeof__(PQputCopyEnd) *put_copy_end;
	__typeof__(PQresultErrorField) *result_error_field;
	__typeof__(PQresultStatus) *result_status;
	__typeof__(PQsetNoticeProcessor) *set_notice_processor;
	__typeof__(PQsocket) *socket;
	__typeof__(PQstatus) *status;
};

/* The loaded API (borrowed, valid for the process's life), or NULL with
 * e set (EXIT_UNAVAILABLE) when libpq cannot be loaded. */
const struct pq_api *pq_api_load(struct error *e);

#endif
