#include <errno.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "canon.h"
#include "exitcode.h"
#include "pg.h"
#include "pqdl.h"

struct pg_sink {
	const struct pq_api *pq;	/* libpq, loaded on first use */
	PGconn *conn;
	char *table;		/* quoted identifier(s), for SQL */
	char name[512];		/* host/db and table, for messages */
	struct canon *canon;
	struct buf copy;	/* COPY text of the current batch */
	struct buf scratch;
};

int
pg_uri_is(const char *uri)
{
	return strncmp(uri, "postgres://", 11) == 0 ||
	    strncmp(uri, "postgresql://", 13) == 0;
}

int
pg_uri_has_password(const char *uri)
{
	const char *p = strstr(uri, "://"), *at, *slash, *colon;

	if (p == NULL)
		return 0;
	p += 3;
	slash = p + strcspn(p, "/?");
	at = memchr(p, '@', (size_t)(slash - p));
	if (at != NULL && (colon = memchr(p, ':', (size_t)(at - p))) != NULL)
		return 1;
	return strstr(uri, "password=") != NULL;
}

int
pg_table_valid(const char *t)
{
	int part = 0, len = 0;

	for (; *t != '\0'; t++) {
		if (*t == '.') {
			if (len == 0 || ++part > 1)
				return 0;
			len = 0;
			continue;
		}
		if (!((*t >= 'a' && *t <= 'z') || *t == '_' ||
		    (len > 0 && *t >= '0' && *t <= '9')))
			return 0;
		if (++len > 63)
			return 0;
	}
	return len > 0;
}

/*
 * Describe a failure in one line: the server's primary message and
 * detail, or the first line of libpq's own message (a lost connection).
 * A data exception (SQLSTATE class 22) is EXIT_DATAERR, anything else
 * EXIT_UNAVAILABLE.
 */
static int
describe(struct pg_sink *ps, const PGresult *r, struct error *e)
{
	const char *state = r ? ps->pq->result_error_field(r, PG_DIAG_SQLSTATE) : NULL;
	const char *primary = r ?
	    ps->pq->result_error_field(r, PG_DIAG_MESSAGE_PRIMARY) : NULL;
	const char *detail = r ?
	    ps->pq->result_error_field(r, PG_DIAG_MESSAGE_DETAIL) : NULL;
	int code = state != NULL && strncmp(state, "22", 2) == 0 ?
	    EXIT_DATAERR : EXIT_UNAVAILABLE;

	if (primary != NULL)
		return error_set(e, code, "%s: %s%s%s", ps->name, primary,
		    detail ? ": " : "", detail ? detail : "");
	const char *m = ps->pq->error_message(ps->conn);
	return error_set(e, EXIT_UNAVAILABLE, "%s: %.*s", ps->name,
	    (int)strcspn(m, "\n"), m);
}

/* Run a command that returns no rows; -1 with e set on failure. */
static int
exec(struct pg_sink *ps, const char *sql, struct error *e)
{
	PGresult *r = ps->pq->exec(ps->conn, sql);
	int ok = ps->pq->result_status(r) == PGRES_COMMAND_OK;

	if (!ok)
		describe(ps, r, e);
	ps->pq->clear(r);
	return ok ? 0 : -1;
}

/* Server notices (a shutdown warning, say) are not the user's business:
 * errors are reported through describe. */
static void
quiet(void *arg, const char *message)
{
	(void)arg;
	(void)message;
}

/* Strip the trailing newline libpq puts on its messages. */
static void
chomp(struct error *e)
{
	size_t l = strlen(e->msg);

	while (l > 0 && (e->msg[l - 1] == '\n' || e->msg[l - 1] == ' '))
		e->msg[--l] = '\0';
}

int
pg_sink_open(struct pg_sink **psp, const char *uri, const char *table,
    struct error *e)
{
	struct pg_sink *ps;
	char *qt, *dot, sql[1024];

	*psp = NULL;
	if (pg_uri_has_password(uri))
		return error_set(e, EXIT_USAGE, "the PostgreSQL URI carries a "
		    "password; give it in PGPASSWORD or a PGPASSFILE instead");
	if (!pg_table_valid(table))
		return error_set(e, EXIT_USAGE, "%s: invalid table name "
		    "(expected [schema.]name in lower case)", table);
	if ((ps = calloc(1, sizeof(*ps))) == NULL ||
	    (ps->canon = canon_new()) == NULL) {
		free(ps);
		return error_errno(e, EXIT_SOFTWARE, "postgres");
	}
	if ((ps->pq = pq_api_load(e)) == NULL) {
		pg_sink_close(ps);
		return error_wrap(e, "postgres");
	}
	ps->conn = ps->pq->connectdb(uri);
	if (ps->pq->status(ps->conn) != CONNECTION_OK) {
		const char *m = ps->pq->error_message(ps->conn);
		error_set(e, EXIT_UNAVAILABLE, "postgres: %.*s",
		    (int)strcspn(m, "\n"), m);
		chomp(e);
		pg_sink_close(ps);
		return -1;
	}
	ps->pq->set_notice_processor(ps->conn, quiet, NULL);
	snprintf(ps->name, sizeof(ps->name), "postgres %s/%s %s",
	    ps->pq->host(ps->conn) ? ps->pq->host(ps->conn) : "", ps->pq->db(ps->conn), table);
	/* quote each part of [schema.]table */
	if ((dot = strchr(table, '.')) != NULL) {
		char *s = ps->pq->escape_identifier(ps->conn, table, (size_t)(dot - table));
		char *t = ps->pq->escape_identifier(ps->conn, dot + 1, strlen(dot + 1));
		qt = NULL;
		if (s != NULL && t != NULL && (qt = malloc(strlen(s) +
		    strlen(t) + 2)) != NULL)
			sprintf(qt, "%s.%s", s, t);
		ps->pq->freemem(s);
		ps->pq->freemem(t);
	} else {
		char *s = ps->pq->escape_identifier(ps->conn, table, strlen(table));
		qt = s != NULL ? strdup(s) : NULL;
		ps->pq->freemem(s);
	}
	if ((ps->table = qt) == NULL) {
		error_set(e, EXIT_SOFTWARE, "%s: cannot quote the table name",
		    ps->name);
		pg_sink_close(ps);
		return -1;
	}
	snprintf(sql, sizeof(sql), "CREATE TABLE IF NOT EXISTS %s ("
	    "id bigserial PRIMARY KEY, sha256 bytea UNIQUE NOT NULL, "
	    "record jsonb NOT NULL, "
	    "ingested_at timestamptz NOT NULL DEFAULT now())", ps->table);
	if (exec(ps, "SET client_min_messages = warning", e) == -1 ||
	    exec(ps, sql, e) == -1 ||
	    exec(ps, "CREATE TEMPORARY TABLE aistack_load (ord integer, "
	    "sha256 bytea, record jsonb) ON COMMIT DELETE ROWS", e) == -1) {
		pg_sink_close(ps);
		return -1;
	}
	*psp = ps;
	return 0;
}

/* Append one record as a line of COPY text: ord, \x<sha256>, record. */
static int
copy_line(struct pg_sink *ps, uint64_t ord, const char *p, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	unsigned char md[SHA256_DIGEST_LENGTH];
	char line[32 + 2 * SHA256_DIGEST_LENGTH + 8];
	size_t i, start = 0, o;

	ps->scratch.len = 0;
	if (canon_value(ps->canon, p, n, 0, &ps->scratch) == -1)
		return -1;
	SHA256((const unsigned char *)ps->scratch.data, ps->scratch.len, md);
	o = (size_t)snprintf(line, sizeof(line), "%llu\t\\\\x",
	    (unsigned long long)ord);
	for (i = 0; i < sizeof(md); i++) {
		line[o++] = hex[md[i] >> 4];
		line[o++] = hex[md[i] & 15];
	}
	line[o++] = '\t';
	if (buf_append(&ps->copy, line, o) == -1)
		return -1;
	/* COPY text format: escape backslash, tab, CR (no LF in a record) */
	for (i = 0; i < n; i++) {
		const char *esc = p[i] == '\\' ? "\\\\" : p[i] == '\t' ? "\\t" :
		    p[i] == '\r' ? "\\r" : NULL;
		if (esc == NULL)
			continue;
		if (buf_append(&ps->copy, p + start, i - start) == -1 ||
		    buf_append(&ps->copy, esc, 2) == -1)
			return -1;
		start = i + 1;
	}
	if (buf_append(&ps->copy, p + start, n - start) == -1)
		return -1;
	return buf_putc(&ps->copy, '\n');
}

/* The record index from a COPY error's context ("... line N, ..."). */
static uint64_t
copy_error_line(const struct pg_sink *ps, const PGresult *r)
{
	static const char copy[] = "COPY aistack_load, line ";
	const char *ctx = ps->pq->result_error_field(r, PG_DIAG_CONTEXT), *l;

	if (ctx == NULL || (l = strstr(ctx, copy)) == NULL)
		return 0;
	return strtoull(l + sizeof(copy) - 1, NULL, 10);
}

static int
fail(struct pg_sink *ps, PGresult *r, uint64_t *bad, struct error *e)
{
	const char *state = r != NULL ?
	    ps->pq->result_error_field(r, PG_DIAG_SQLSTATE) : NULL;
	int data = state != NULL && strncmp(state, "22", 2) == 0;
	uint64_t line = r != NULL ? copy_error_line(ps, r) : 0;

	const char *primary = r != NULL ?
	    ps->pq->result_error_field(r, PG_DIAG_MESSAGE_PRIMARY) : NULL;
	const char *detail = r != NULL ?
	    ps->pq->result_error_field(r, PG_DIAG_MESSAGE_DETAIL) : NULL;

	if (data && line > 0)
		*bad = line - 1;
	if (primary != NULL)
		error_set(e, data ? EXIT_DATAERR : EXIT_UNAVAILABLE, "%s: %s%s%s",
		    ps->name, primary, detail ? ": " : "", detail ? detail : "");
	else {
		/* the first line of libpq's message (a lost connection) */
		const char *m = ps->pq->error_message(ps->conn);
		error_set(e, EXIT_UNAVAILABLE, "%s: %.*s", ps->name,
		    (int)strcspn(m, "\n"), m);
	}
	chomp(e);
	ps->pq->clear(r);
	if (ps->pq->status(ps->conn) == CONNECTION_OK) {
		PGresult *rb = ps->pq->exec(ps->conn, "ROLLBACK");
		ps->pq->clear(rb);
	}
	return -1;
}

int
pg_sink_load(struct pg_sink *ps, const char *data, size_t n, uint64_t nrec,
    uint64_t *added, uint64_t *bad, struct error *e)
{
	const char *p = data, *end = data + n;
	char sql[1024];
	PGresult *r;
	uint64_t ord = 0;

	*added = 0;
	*bad = UINT64_MAX;
	ps->copy.len = 0;
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t len = nl != NULL ? (size_t)(nl - p) : (size_t)(end - p);
		if (copy_line(ps, ord++, p, len) == -1) {
			*bad = ord - 1;
			return error_set(e, errno == ENOMEM ? EXIT_SOFTWARE :
			    EXIT_DATAERR, "%s: cannot canonicalize record",
			    ps->name);
		}
		p += len + 1;
	}
	(void)nrec;
	if (exec(ps, "BEGIN", e) == -1)
		return -1;
	r = ps->pq->exec(ps->conn, "COPY aistack_load (ord, sha256, record) FROM STDIN");
	if (ps->pq->result_status(r) != PGRES_COPY_IN)
		return fail(ps, r, bad, e);
	ps->pq->clear(r);
	if (ps->pq->put_copy_data(ps->conn, ps->copy.data, (int)ps->copy.len) != 1 ||
	    ps->pq->put_copy_end(ps->conn, NULL) != 1)
		return fail(ps, NULL, bad, e);
	r = ps->pq->get_result(ps->conn);
	if (ps->pq->result_status(r) != PGRES_COMMAND_OK) {
		PGresult *more;
		while ((more = ps->pq->get_result(ps->conn)) != NULL)
			ps->pq->clear(more);
		return fail(ps, r, bad, e);
	}
	ps->pq->clear(r);
	snprintf(sql, sizeof(sql), "INSERT INTO %s (sha256, record) "
	    "SELECT sha256, record FROM aistack_load ORDER BY ord "
	    "ON CONFLICT (sha256) DO NOTHING", ps->table);
	r = ps->pq->exec(ps->conn, sql);
	if (ps->pq->result_status(r) != PGRES_COMMAND_OK)
		return fail(ps, r, bad, e);
	*added = strtoull(ps->pq->cmd_tuples(r), NULL, 10);
	ps->pq->clear(r);
	r = ps->pq->exec(ps->conn, "COMMIT");
	if (ps->pq->result_status(r) != PGRES_COMMAND_OK)
		return fail(ps, r, bad, e);
	ps->pq->clear(r);
	return 0;
}

const char *
pg_sink_name(const struct pg_sink *ps)
{
	return ps->name;
}

void
pg_sink_close(struct pg_sink *ps)
{
	if (ps == NULL)
		return;
	if (ps->conn != NULL)
		ps->pq->finish(ps->conn);
	free(ps->table);
	canon_free(ps->canon);
	buf_release(&ps->copy);
	buf_release(&ps->scratch);
	free(ps);
}
