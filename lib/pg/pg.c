#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/exitcode.h"
#include "pg.h"
#include "pqdl.h"

/* The first line of the sha256 column's comment: what follows is the key
 * definition (dedupkey_def_str) of the table's digests. */
#define KEY_COMMENT	"aistack-ingest key 1\n"

struct pg_sink {
	const struct pq_api *pq;	/* libpq, loaded on first use */
	PGconn *conn;
	char *table;		/* quoted identifier(s), for SQL */
	char name[512];		/* host/db and table, for messages */
	const struct dedupkey_def *def;
	struct dedupkey key;
	struct buf copy;	/* COPY text of the current batch */
	char *insert;		/* from aistack_load into the table */
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

/* Make a message one line: strip the trailing newline libpq puts on its
 * messages, and join the lines of a detail (a deadlock's) with spaces. */
static void
chomp(struct error *e)
{
	size_t l = strlen(e->msg), i;

	while (l > 0 && (e->msg[l - 1] == '\n' || e->msg[l - 1] == ' '))
		e->msg[--l] = '\0';
	for (i = 0; i < l; i++)
		if (e->msg[i] == '\n' || e->msg[i] == '\t')
			e->msg[i] = ' ';
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
		error_set(e, code, "%s: %s%s%s", ps->name, primary,
		    detail ? ": " : "", detail ? detail : "");
	else {
		const char *m = ps->pq->error_message(ps->conn);
		error_set(e, EXIT_UNAVAILABLE, "%s: %.*s", ps->name,
		    (int)strcspn(m, "\n"), m);
	}
	chomp(e);
	return -1;
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



/* A string literal for SQL (caller frees), or NULL. */
static char *
literal(struct pg_sink *ps, const char *s)
{
	char *l = ps->pq->escape_literal(ps->conn, s, strlen(s)), *c;

	if (l == NULL)
		return NULL;
	c = strdup(l);
	ps->pq->freemem(l);
	return c;
}

/*
 * Run a query that returns at most one row of one column: 1 with *val
 * set (a copy, caller frees; NULL for SQL NULL), 0 for no row, -1 with e
 * set.
 */
static int
query1(struct pg_sink *ps, const char *sql, char **val, struct error *e)
{
	PGresult *r = ps->pq->exec(ps->conn, sql);
	int rc = 0;

	*val = NULL;
	if (ps->pq->result_status(r) != PGRES_TUPLES_OK) {
		describe(ps, r, e);
		ps->pq->clear(r);
		return -1;
	}
	if (ps->pq->ntuples(r) > 0) {
		rc = 1;
		if (!ps->pq->get_is_null(r, 0, 0) &&
		    (*val = strdup(ps->pq->get_value(r, 0, 0))) == NULL)
			rc = error_errno(e, EXIT_SOFTWARE, "%s", ps->name);
	}
	ps->pq->clear(r);
	return rc;
}

/* "key paths .a\nnormalize lower\n" as "key paths .a; normalize lower". */
static void
def_words(const char *def, char *out, size_t n)
{
	size_t o = 0;

	for (; *def != '\0' && o + 3 < n; def++) {
		if (*def != '\n') {
			out[o++] = *def;
			continue;
		}
		if (def[1] != '\0') {
			out[o++] = ';';
			out[o++] = ' ';
		}
	}
	out[o] = '\0';
}

/*
 * The key definition have (the sha256 column's comment; NULL: a table
 * made before --key, its digests of the canonical form) must be want.
 */
static int
key_check(const struct pg_sink *ps, const char *have, const char *want,
    struct error *e)
{
	char a[256], b[256];

	if (have == NULL)
		have = KEY_COMMENT "key canonical\nnormalize none\n";
	if (strcmp(have, want) == 0)
		return 0;
	if (strncmp(have, KEY_COMMENT, strlen(KEY_COMMENT)) != 0)
		return error_set(e, EXIT_CONFIG, "%s: the comment of the sha256 "
		    "column is not a key definition of aistack-ingest; its "
		    "digests cannot be trusted to be this key's", ps->name);
	def_words(have + strlen(KEY_COMMENT), a, sizeof(a));
	def_words(want + strlen(KEY_COMMENT), b, sizeof(b));
	return error_set(e, EXIT_CONFIG, "%s: the table's sha256 is the "
	    "digest of another key (%s), not of this one (%s): load it with "
	    "the table's --key and --normalize, or into another --table",
	    ps->name, a, b);
}

/*
 * The INSERT of a batch, in digest order: two loaders whose batches
 * share keys take their locks in one order, and so never deadlock; ids
 * (from the sequence seq, when the table has one) in input order.
 */
static int
insert_prepare(struct pg_sink *ps, const char *seq, struct error *e)
{
	struct buf sql = BUF_INIT;
	char *ls = NULL;
	int rc;

	if (seq != NULL && (ls = literal(ps, seq)) == NULL)
		return error_set(e, EXIT_SOFTWARE, "%s: cannot quote the "
		    "sequence name", ps->name);
	if (ls != NULL)
		rc = buf_printf(&sql, "INSERT INTO %s (id, sha256, record) "
		    "SELECT id, sha256, record FROM (SELECT "
		    "nextval(%s::regclass) AS id, sha256, record, ord FROM "
		    "(SELECT * FROM aistack_load ORDER BY ord) o) n "
		    "ORDER BY sha256, ord ON CONFLICT (sha256) DO NOTHING",
		    ps->table, ls);
	else
		rc = buf_printf(&sql, "INSERT INTO %s (sha256, record) SELECT "
		    "sha256, record FROM aistack_load ORDER BY sha256, ord "
		    "ON CONFLICT (sha256) DO NOTHING", ps->table);
	free(ls);
	if (rc == -1 || (ps->insert = strdup(sql.data)) == NULL)
		rc = error_errno(e, EXIT_SOFTWARE, "%s", ps->name);
	buf_release(&sql);
	return rc;
}

/*
 * Make sure the table exists and that its digests are of this key
 * definition: create it when missing, with the definition as its sha256
 * column's comment, or compare the comment of the one there (a table
 * without one predates --key: its digests are of the canonical record).
 * One transaction under an advisory lock on the table's name, so that
 * loaders starting at once create it once.  Then the INSERT statement.
 */
static int
table_prepare(struct pg_sink *ps, struct error *e)
{
	struct buf sql = BUF_INIT, want = BUF_INIT;
	char *lt = NULL, *lk = NULL, *lc = NULL, *have = NULL, *seq = NULL;
	int rc = -1, r;

	if (buf_printf(&want, "%s", KEY_COMMENT) == -1 ||
	    dedupkey_def_str(ps->def, &want) == -1 || buf_cstr(&want) == NULL ||
	    buf_printf(&sql, "aistack-ingest %s", ps->table) == -1 ||
	    (lk = literal(ps, buf_cstr(&sql))) == NULL ||
	    (lt = literal(ps, ps->table)) == NULL ||
	    (lc = literal(ps, want.data)) == NULL) {
		error_set(e, EXIT_SOFTWARE, "%s: cannot quote the table name",
		    ps->name);
		goto out;
	}
	if (exec(ps, "BEGIN", e) == -1)
		goto out;
#define SQL(...) (sql.len = 0, buf_printf(&sql, __VA_ARGS__) == -1 ?	\
	error_errno(e, EXIT_SOFTWARE, "%s", ps->name) : 0)
	if (SQL("SELECT pg_advisory_xact_lock(hashtext(%s))", lk) == -1 ||
	    query1(ps, sql.data, &have, e) == -1)
		goto fail;
	free(have);
	have = NULL;
	if (SQL("SELECT 1 WHERE to_regclass(%s) IS NOT NULL", lt) == -1 ||
	    (r = query1(ps, sql.data, &have, e)) == -1)
		goto fail;
	free(have);
	have = NULL;
	if (r == 0) {
		if (SQL("CREATE TABLE %s (id bigserial PRIMARY KEY, "
		    "sha256 bytea UNIQUE NOT NULL, record jsonb NOT NULL, "
		    "ingested_at timestamptz NOT NULL DEFAULT now())",
		    ps->table) == -1 || exec(ps, sql.data, e) == -1 ||
		    SQL("COMMENT ON COLUMN %s.sha256 IS %s", ps->table,
		    lc) == -1 || exec(ps, sql.data, e) == -1)
			goto fail;
	} else {
		if (SQL("SELECT col_description(attrelid, attnum) FROM "
		    "pg_attribute WHERE attrelid = to_regclass(%s) AND "
		    "attname = 'sha256' AND NOT attisdropped", lt) == -1 ||
		    (r = query1(ps, sql.data, &have, e)) == -1)
			goto fail;
		if (r == 0) {
			error_set(e, EXIT_CONFIG, "%s: the table has no sha256 "
			    "column (not made by aistack-ingest?)", ps->name);
			goto fail;
		}
		if (key_check(ps, have, want.data, e) == -1)
			goto fail;
	}
	/* ids in input order, though rows are inserted in digest order */
	if (SQL("SELECT pg_get_serial_sequence(%s, 'id')", lt) == -1 ||
	    query1(ps, sql.data, &seq, e) == -1)
		goto fail;
#undef SQL
	if (exec(ps, "COMMIT", e) == 0)
		rc = insert_prepare(ps, seq, e);
	goto out;
fail:
	if (ps->pq->status(ps->conn) == CONNECTION_OK) {
		PGresult *rb = ps->pq->exec(ps->conn, "ROLLBACK");
		ps->pq->clear(rb);
	}
out:
	free(lt);
	free(lk);
	free(lc);
	free(have);
	free(seq);
	buf_release(&sql);
	buf_release(&want);
	return rc;
}

int
pg_sink_open(struct pg_sink **psp, const char *uri, const char *table,
    const struct dedupkey_def *def, struct error *e)
{
	struct pg_sink *ps;
	char *qt, *dot;

	*psp = NULL;
	if (pg_uri_has_password(uri))
		return error_set(e, EXIT_USAGE, "the PostgreSQL URI carries a "
		    "password; give it in PGPASSWORD or a PGPASSFILE instead");
	if (!pg_table_valid(table))
		return error_set(e, EXIT_USAGE, "%s: invalid table name "
		    "(expected [schema.]name in lower case)", table);
	if ((ps = calloc(1, sizeof(*ps))) == NULL)
		return error_errno(e, EXIT_SOFTWARE, "postgres");
	ps->def = def;
	if (dedupkey_init(&ps->key) == -1) {
		pg_sink_close(ps);
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
	if (exec(ps, "SET client_min_messages = warning", e) == -1 ||
	    table_prepare(ps, e) == -1 ||
	    exec(ps, "CREATE TEMPORARY TABLE aistack_load (ord integer, "
	    "sha256 bytea, record jsonb) ON COMMIT DELETE ROWS", e) == -1) {
		chomp(e);
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
	unsigned char md[DEDUPKEY_DIGEST];
	char line[32 + 2 * DEDUPKEY_DIGEST + 8];
	size_t i, start = 0, o;

	if (dedupkey_digest(&ps->key, ps->def, p, n, md, NULL) == -1)
		return -1;
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
	r = ps->pq->exec(ps->conn, ps->insert);
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
	free(ps->insert);
	dedupkey_release(&ps->key);
	buf_release(&ps->copy);
	free(ps);
}
