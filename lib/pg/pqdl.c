#include <dlfcn.h>

#include "base/exitcode.h"
#include "pqdl.h"

#define LIBPQ_SONAME	"libpq.so.5"

static struct pq_api api;
static int loaded;

#define RESOLVE(field, sym) do {					\
	if ((a.field = (__typeof__(a.field))dlsym(h, #sym)) == NULL)	\
		goto missing;						\
} while (0)

const struct pq_api *
pq_api_load(struct error *e)
{
	struct pq_api a;
	void *h;

	if (loaded)
		return &api;
	if ((h = dlopen(LIBPQ_SONAME, RTLD_NOW | RTLD_LOCAL)) == NULL) {
		error_set(e, EXIT_UNAVAILABLE, "%s", dlerror());
		return NULL;
	}
	RESOLVE(clear, PQclear);
	RESOLVE(cmd_tuples, PQcmdTuples);
	RESOLVE(connect_poll, PQconnectPoll);
	RESOLVE(connect_start, PQconnectStart);
	RESOLVE(connectdb, PQconnectdb);
	RESOLVE(conninfo_free, PQconninfoFree);
	RESOLVE(conninfo_parse, PQconninfoParse);
	RESOLVE(db, PQdb);
	RESOLVE(error_message, PQerrorMessage);
	RESOLVE(escape_identifier, PQescapeIdentifier);
	RESOLVE(escape_literal, PQescapeLiteral);
	RESOLVE(exec, PQexec);
	RESOLVE(finish, PQfinish);
	RESOLVE(freemem, PQfreemem);
	RESOLVE(get_result, PQgetResult);
	RESOLVE(get_is_null, PQgetisnull);
	RESOLVE(get_value, PQgetvalue);
	RESOLVE(host, PQhost);
	RESOLVE(ntuples, PQntuples);
	RESOLVE(put_copy_data, PQputCopyData);
	RESOLVE(put_copy_end, PQputCopyEnd);
	RESOLVE(result_error_field, PQresultErrorField);
	RESOLVE(result_status, PQresultStatus);
	RESOLVE(set_notice_processor, PQsetNoticeProcessor);
	RESOLVE(socket, PQsocket);
	RESOLVE(status, PQstatus);
	api = a;
	loaded = 1;
	return &api;
missing:
	error_set(e, EXIT_UNAVAILABLE, "%s: %s", LIBPQ_SONAME, dlerror());
	dlclose(h);
	return NULL;
}
