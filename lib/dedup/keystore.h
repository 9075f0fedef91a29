/*
 * A persistent key set that opens in constant time: an open-addressing
 * table of digests (lib/dedup/digestset.h) in a file that is mapped, not read,
 * with a caller's metadata, a mark (a caller's position, such as the
 * stream offset the keys cover) and four cumulative counters.
 *
 * Files, beside PATH in DIR:
 *   PATH               the table: a 4096-byte header, then the slots
 *   DIR/.BASE.journal  the last commit, a redo record
 *   DIR/.BASE.sigs     MinHash signatures, when near duplicates are kept
 *   DIR/.BASE.bands    their LSH band table (a cache, remade when unfit)
 *   DIR/.BASE.tmp      a table being written (growth or rebuild)
 *
 * The header's first part is written once, when the file is made:
 * "AISTKEYS", version 2, digest size, capacity, a generation (random,
 * new at each rebuild), the metadata, and a checksum of them.  Then two
 * slots of the changing values: a sequence number, the count, the mark,
 * the counters, the signature count, each with its own checksum.
 *
 * Keys added by a run are kept in memory (RSS grows with the batch, not
 * with the set) until keystore_save commits them: it writes a journal
 * record (sequence n+1, the keys, the new values) with one write and
 * fdatasync (the commit point), puts the keys into the mapped table and
 * msyncs it, then writes the new values into the older header slot and
 * msyncs the header.  Opening replays a complete journal record of the
 * next sequence, n+1 (idempotent), so a kill -9 or a power cut at any
 * instant leaves the last committed state, or the one before it when
 * the commit point was not reached, never a mix.  When the table would be more than
 * three quarters full, saving writes a table of twice the capacity to
 * the temporary name, syncs it and renames it over (amortised: the
 * capacity doubles).  A run touches only the pages of the keys it looks
 * up and adds.
 *
 * Opening checks the header (magic, version, sizes, checksums, the count
 * against the capacity, the file's size against the capacity); the slots
 * are not read, so damage inside them is not detected (lookups still
 * end).  A set of the earlier format (version 1, read whole) is loaded
 * and converted by its first save.
 *
 * Mapped files: if another process truncates the table while it is
 * mapped, a lookup past the end raises SIGBUS (the caller's handler
 * decides what that means); opening checks the size after mapping.
 *
 * The keystore does not lock: callers serialise access (lib/base/lock.h).
 */
#ifndef AISTACK_KEYSTORE_H
#define AISTACK_KEYSTORE_H

#include <limits.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "base/err.h"
#include "digestset.h"
#include "minhash.h"

#define KEYSTORE_META_MAX	3520

/* Cumulative counts of a dedup state: looked up, kept, dropped (near
 * ones included), dropped as near duplicates. */
struct keystore_counts {
	uint64_t seen, unique, duplicates, near;
};

struct keystore {
	char path[PATH_MAX];		/* the table */
	char journal[PATH_MAX];		/* DIR/.BASE.journal */
	char sigpath[PATH_MAX];		/* DIR/.BASE.sigs */
	char tmp[PATH_MAX];		/* DIR/.BASE.tmp */
	int fd;				/* the table, -1: none */
	unsigned char *map;		/* the whole table file, mapped */
	size_t maplen;
	struct digestset set;		/* the committed keys (attached) */
	int near;			/* signatures are kept */
	double threshold;		/* of near */
	struct minhash_index ix;	/* signatures added by this run */
	struct minhash_index mix;	/* the committed ones, mapped */
	char bandpath[PATH_MAX];	/* DIR/.BASE.bands */
	unsigned char *sigmap, *bandmap;
	size_t sigmaplen, bandmaplen;
	struct buf meta;		/* the caller's metadata */
	uint64_t mark;			/* the caller's position */
	struct keystore_counts ctr;	/* the caller adds a run's counts */
	uint64_t gen, seq;		/* the table's generation and commit */
	uint64_t nsigs;			/* committed signatures */
	/* added since the last save */
	struct digestset pend;
	struct buf pendlist, pendsig;
	size_t npend;
	uint64_t saved_mark;
	struct keystore_counts saved_ctr;
	int rewrite;			/* the next save writes a new table */
	int nosigs;			/* near, but signatures are missing */
	int fd_journal;			/* -1 until the first commit */
};

/*
 * Near duplicates: the committed signatures file is mapped read-only,
 * and so is a band table of them for the threshold's band count,
 * DIR/.BASE.bands: a 4096-byte header ("AISTBAND", version, rows per
 * band, the set's generation, the signatures it covers, capacity, pairs
 * used, checksum), then the pairs of lib/dedup/minhash.h.  Opening adds the
 * bands of the signatures committed since the table covered them (the
 * last run's), syncs those pages, then the header: a crash in between
 * only adds them again.  A missing table, or one of another generation
 * or band count, damaged, or too full, is written anew from the
 * signatures to DIR/.BASE.bands.tmp and renamed over (the one step that
 * reads every signature).  Signatures added by this run are in ks->ix.
 *
 * Open the key set at path: map the table and replay the journal when
 * they exist.  near says whether signatures are kept (t: the threshold
 * of the near-duplicate index).  Returns 0 when opened, 1
 * when there was none (an empty set, made by keystore_save), -1 with e
 * set (a damaged set is EXIT_DATAERR naming the file and why).  ks->meta,
 * ks->mark and ks->ctr hold what was saved.  With near, ks->nosigs is set
 * when the set does not hold a signature for every key.
 */
int keystore_open(struct keystore *ks, const char *path, int near, double t,
    struct error *e);

/* Whether a near duplicate of sig is committed or added since, with at
 * least the threshold's similarity (*sim). */
int keystore_near(const struct keystore *ks, const unsigned char *sig,
    double *sim);

/* Whether d is a member (committed or added since). */
int keystore_has(const struct keystore *ks, const unsigned char *d);

/* Hint that d will be looked up soon. */
void keystore_prefetch(const struct keystore *ks, const unsigned char *d);

/* Members, committed and added since. */
uint64_t keystore_count(const struct keystore *ks);

/* Add a key (sig: MINHASH_SIG bytes when near, else NULL): 1 when new,
 * 0 when present, -1 (ENOMEM). */
int keystore_add(struct keystore *ks, const unsigned char *digest,
    const unsigned char *sig);

/* Empty the set and give it new metadata and mark 0 (a rebuild); the
 * counters are kept.  The next save writes a new table. */
int keystore_reset(struct keystore *ks, const void *meta, size_t metalen);

/* Whether the metadata is meta[0..metalen). */
int keystore_meta_is(const struct keystore *ks, const void *meta,
    size_t metalen);

/*
 * Commit what was added, the mark and the counters, as described above.
 * Nothing to do is not an error.  Returns 0, or -1 with e set.
 */
int keystore_save(struct keystore *ks, struct error *e);

void keystore_close(struct keystore *ks);

/* What a key set file says of itself, for reports (lib/state/stateview.h). */
struct keystore_stat {
	uint64_t keys;			/* keys committed */
	uint64_t bytes;			/* bytes of its files */
	int have_counters;		/* it keeps the counts below */
	uint64_t seen, unique, duplicates, near;
};

/*
 * Describe the key set at path from its header and the sizes of its
 * files, without mapping or locking it (the cost does not grow with the
 * set; a commit not yet replayed is not counted): 0, 1 when there is
 * none, -1.  A set of the earlier format keeps no counts (have_counters
 * 0).
 */
int keystore_stat(const char *path, struct keystore_stat *st, struct error *e);

#endif
