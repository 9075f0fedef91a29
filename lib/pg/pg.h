/*
 * Loading records into PostgreSQL (libpq).  The table is created when
 * missing:
 *
 *	id bigserial PRIMARY KEY, sha256 bytea UNIQUE NOT NULL,
 *	record jsonb NOT NULL, ingested_at timestamptz NOT NULL DEFAULT now()
 *
 * where sha256 is the SHA-256 of the record's key (lib/dedup/dedupkey.h): by
 * default its canonical form (lib/format/canon.h); with key paths and
 * normalization, the digest aistack-dedup -k PATHS --normalize LIST
 * compares, so that records that differ outside the key are one row.
 * The key definition is the sha256 column's comment ("aistack-ingest
 * key 1", then dedupkey_def_str); a table whose comment names another
 * definition is refused (EXIT_CONFIG), since its digests mean something
 * else; a table without one (made before --key) holds canonical digests.
 *
 * Each batch is one transaction: COPY into a temporary table, then
 * INSERT ... SELECT ... ON CONFLICT (sha256) DO NOTHING.  Rows are
 * inserted in digest order, so that loaders sharing keys never deadlock,
 * and take ids in input order; of the records of one key in a batch the
 * first is kept.  A batch either commits whole or leaves nothing, and a
 * record already present (a retried batch, another host's copy) is
 * skipped, so loading the same records again adds nothing.
 *
 * Passwords come only from libpq's own environment (PGPASSWORD) or
 * PGPASSFILE: a URI that carries one is refused, so it never shows in
 * argument lists or messages.
 */
#ifndef AISTACK_PG_H
#define AISTACK_PG_H

#include <stddef.h>
#include <stdint.h>

#include "base/err.h"
#include "dedup/dedupkey.h"

struct pg_sink;

/* Nonzero when uri is a postgres:// or postgresql:// URI. */
int pg_uri_is(const char *uri);

/* Nonzero when uri carries a password (user:password@ or password=). */
int pg_uri_has_password(const char *uri);

/* Nonzero when table is a plain or schema-qualified lower-case name. */
int pg_table_valid(const char *table);

/*
 * Connect and make sure the table exists with digests of key definition
 * def (borrowed until pg_sink_close; DEDUPKEY_EXACT is not supported).
 * A refused or failed connection is EXIT_UNAVAILABLE; a URI with a
 * password EXIT_USAGE; a table of another key definition EXIT_CONFIG.
 * The caller frees *ps with pg_sink_close.
 */
int pg_sink_open(struct pg_sink **ps, const char *uri, const char *table,
    const struct dedupkey_def *def, struct error *e);

/*
 * Load the nrec whole records of data[0..n) in one transaction.
 * *added receives the rows inserted (records already present are
 * skipped).  A record the server refuses (PostgreSQL's jsonb has no
 * "\u0000", for one) fails with EXIT_DATAERR and *bad the index of the
 * record in the batch (0-based); a lost connection or a server error
 * fails with EXIT_UNAVAILABLE.  Nothing of a failed batch is committed.
 */
int pg_sink_load(struct pg_sink *ps, const char *data, size_t n,
    uint64_t nrec, uint64_t *added, uint64_t *bad, struct error *e);

/* A display form of the target that never includes a password. */
const char *pg_sink_name(const struct pg_sink *ps);

void pg_sink_close(struct pg_sink *ps);

#endif
