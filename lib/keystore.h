/*
 * A persistent key set: the digests of lib/digestset.h, optionally the
 * MinHash signatures of lib/minhash.h, a caller's metadata and a mark (a
 * caller's position, such as the stream offset the keys cover).
 *
 * On disk it is a snapshot, PATH (the digestset file format, saved with
 * atomic_replace), and an append-only journal, DIR/.BASE.journal, of the
 * keys added since.  Each journal entry holds the snapshot's generation,
 * the new mark, the added digests and signatures, and a checksum; it is
 * appended with one write and fdatasync.  Loading applies the entries of
 * the current generation in order and stops at the first torn or
 * altered one, which the next save cuts away.  When the journal grows
 * past half the snapshot's size (at least 1 MiB), or the metadata
 * changes, saving writes a new snapshot of another generation instead,
 * which makes the old journal void; then it empties the journal.  So a
 * save costs what it adds, amortised, and a crash at any instant leaves
 * the state of the last completed save, or of the one before it.
 *
 * The keystore does not lock: callers serialise access (lib/lock.h).
 */
#ifndef AISTACK_KEYSTORE_H
#define AISTACK_KEYSTORE_H

#include <limits.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "digestset.h"
#include "err.h"
#include "minhash.h"

#define KEYSTORE_META_MAX	(DIGESTSET_META_MAX - 16)

struct keystore {
	char path[PATH_MAX];		/* the snapshot */
	char journal[PATH_MAX];		/* DIR/.BASE.journal */
	struct digestset set;
	int near;			/* signatures are kept */
	struct minhash_index ix;
	struct buf meta;		/* the caller's metadata */
	uint64_t mark;
	uint64_t gen;			/* the snapshot's generation, 0: none */
	uint64_t snapbytes;		/* the snapshot's size */
	uint64_t jlen;			/* valid bytes of the journal */
	struct buf pend;		/* digests added since the last save */
	struct buf pendsig;		/* their signatures (near) */
	size_t npend;
	uint64_t saved_mark;
	int rewrite;			/* the next save writes a snapshot */
	int nosigs;			/* near, but the file lacks signatures */
};

/*
 * Open the key set at path, loading the snapshot and journal when they
 * exist.  near says whether signatures are kept (t: the threshold of the
 * near-duplicate index).  Returns 0 when loaded, 1 when there was none
 * (an empty set, to be created by keystore_save), -1 with e set (a
 * corrupt snapshot is EXIT_DATAERR naming the file).  ks->meta and
 * ks->mark hold what was saved.  With near, ks->nosigs is set when the
 * file does not hold a signature for every key (it was made without).
 */
int keystore_open(struct keystore *ks, const char *path, int near, double t,
    struct error *e);

/* Add a key (sig: MINHASH_SIG bytes when near, else NULL): 1 when new,
 * 0 when present, -1 (ENOMEM). */
int keystore_add(struct keystore *ks, const unsigned char *digest,
    const unsigned char *sig);

/* Empty the set and give it new metadata and mark 0 (a rebuild). */
int keystore_reset(struct keystore *ks, const void *meta, size_t metalen);

/* Whether the metadata is meta[0..metalen). */
int keystore_meta_is(const struct keystore *ks, const void *meta,
    size_t metalen);

/*
 * Make what was added and the current mark durable (journal entry or new
 * snapshot, as described above).  Nothing to do is not an error.
 * Returns 0, or -1 with e set.
 */
int keystore_save(struct keystore *ks, struct error *e);

void keystore_close(struct keystore *ks);

/* What a key set file says of itself, for reports (lib/stateview.h). */
struct keystore_stat {
	uint64_t keys;			/* keys of its snapshot */
	uint64_t bytes;			/* bytes of its snapshot and journal */
	int have_counters;		/* it keeps the counts below */
	/* cumulative: looked up, kept, dropped (near ones included), near */
	uint64_t seen, unique, duplicates, near;
};

/*
 * Describe the key set at path from the header of its snapshot and the
 * size of its journal, without loading it (the cost does not grow with
 * the set): 0, 1 when there is none, -1.  This format keeps no
 * cumulative counts (have_counters 0).
 */
int keystore_stat(const char *path, struct keystore_stat *st, struct error *e);

#endif
