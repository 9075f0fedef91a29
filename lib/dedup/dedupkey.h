/*
 * The key of a record, as "aistack-dedup [-k PATHS] [--normalize LIST]
 * [--exact]" defines it, and its SHA-256 digest: one definition for the
 * filter and for aistack-ingest's PostgreSQL target (--key, --normalize),
 * so that a row's digest there is the digest the filter compares.
 *
 * The key bytes of a record are
 * - by default, its canonical form (lib/format/canon.h), string values
 *   normalized with the flags;
 * - with paths, for each path in order, the canonical form of its value
 *   (normalized likewise), or the byte 0x01 when the path is absent,
 *   followed by "\n" (canonical JSON holds no raw byte below 0x20, so
 *   different keys never have the same bytes);
 * - with --exact, the record's raw bytes.
 * The digest is the SHA-256 of the key bytes (aistack-dedup compares its
 * first DIGEST_BYTES).  Computing it costs time linear in the record's
 * bytes, whatever its escapes (lib/format/json.h).
 */
#ifndef AISTACK_DEDUPKEY_H
#define AISTACK_DEDUPKEY_H

#include <stddef.h>

#include "base/buf.h"
#include "format/keypath.h"

#define DEDUPKEY_DIGEST	32	/* bytes of a digest (SHA-256) */

enum dedupkey_mode { DEDUPKEY_CANON, DEDUPKEY_PATHS, DEDUPKEY_EXACT };

/* A key definition; the paths are owned (dedupkey_def_release). */
struct dedupkey_def {
	enum dedupkey_mode mode;
	struct keypath_list paths;	/* DEDUPKEY_PATHS */
	unsigned norm;			/* CANON_* flags */
};

void dedupkey_def_release(struct dedupkey_def *def);

/*
 * Append the definition as the lines "key canonical" (or "key exact", or
 * "key paths " and the paths' canonical spelling) and "normalize LIST"
 * (or "normalize none"), each ended by "\n": the same text for every way
 * of writing the same definition.  Returns 0 or -1 (ENOMEM).
 */
int dedupkey_def_str(const struct dedupkey_def *def, struct buf *out);

struct evp_md_st;
struct evp_md_ctx_st;

/* Scratch space for computing keys: one per thread. */
struct dedupkey {
	struct canon *canon;
	struct evp_md_st *md;		/* SHA-256, fetched once */
	struct evp_md_ctx_st *md_ctx;
	struct buf key;			/* the key bytes of the last record */
};

/* Returns 0 or -1 (ENOMEM); release with dedupkey_release. */
int dedupkey_init(struct dedupkey *k);
void dedupkey_release(struct dedupkey *k);

/*
 * The digest of the record p[0..n), which must have passed
 * json_scan_record (not needed for DEDUPKEY_EXACT), into d.  With text
 * not NULL, also append its text for near-duplicate detection
 * (canon_text of the record or of each present path's value), from the
 * same reading of the record.  Returns 0, or -1 with errno (EINVAL for a
 * text the canonicalizer cannot read, ENOMEM).
 */
int dedupkey_digest(struct dedupkey *k, const struct dedupkey_def *def,
    const char *p, size_t n, unsigned char d[DEDUPKEY_DIGEST],
    struct buf *text);

#endif
