/*
 * A set of fixed-size digests: an open-addressing hash table (linear
 * probing) in one anonymous mapping, with no allocation per key.
 *
 * A member is the first DIGEST_BYTES (16, that is 128 bits) of a SHA-256
 * digest.  With n keys the chance that two different keys share those
 * bits is about n^2 / 2^129: below 10^-20 for a billion keys.  A slot
 * holds one digest and nothing else, the all-zero slot meaning empty (the
 * all-zero digest itself is kept in a flag).  The table doubles when it
 * is three quarters full, so it is between 3/8 and 3/4 full: 21 to 43
 * bytes per key, in memory and on disk (plus a 4 KiB header).  While it
 * doubles, the old table is released as it is copied, so the peak is the
 * new table plus a little.
 *
 * File format (little-endian): a 4096-byte header ("AISTDSET", version,
 * digest size, capacity, count, a caller's metadata of up to
 * DIGESTSET_META_MAX bytes, the length of a caller's extra data, and the
 * SHA-256 of all of it), the slots exactly as in memory, then the extra
 * data.  It is saved with atomic_replace (a crash leaves the old file or
 * the new one); loading checks every field and the checksum, so a torn,
 * truncated or altered file is reported, never used.
 */
#ifndef AISTACK_DIGESTSET_H
#define AISTACK_DIGESTSET_H

#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "base/err.h"

#define DIGEST_BYTES		16
#define DIGESTSET_META_MAX	3968

struct digestset {
	unsigned char *map;	/* header page, then the slots */
	size_t maplen;
	unsigned char *slots;
	uint64_t cap;		/* a power of two */
	uint64_t count;		/* members, the zero digest included */
	unsigned bits;		/* log2(cap) */
	int has_zero;
	int attached;		/* the slots are a caller's (not unmapped) */
};

/* An empty set sized for about hint keys.  Returns 0 or -1 (ENOMEM). */
int digestset_init(struct digestset *s, uint64_t hint);

/* Add d: 1 when it was new, 0 when already a member, -1 (ENOMEM). */
int digestset_add(struct digestset *s, const unsigned char *d);

/*
 * Use slots[0..cap * DIGEST_BYTES) of a caller's mapping as the table (cap
 * a power of two, count and has_zero as the caller stored them).  The set
 * borrows the slots: digestset_release does not unmap them, and
 * digestset_add must not be used (it would grow); digestset_put can.
 */
void digestset_attach(struct digestset *s, unsigned char *slots, uint64_t cap,
    uint64_t count, int has_zero);

/*
 * Put d into the table without growing it: 1 when it was new (count
 * grows), 0 when already a member, -1 (ENOSPC) when no empty slot was
 * found in a whole turn of the table (full, or damaged).
 */
int digestset_put(struct digestset *s, const unsigned char *d);

/* 1 when d is a member, 0 otherwise (also after a whole turn of a full
 * or damaged table: lookups always end). */
int digestset_has(const struct digestset *s, const unsigned char *d);

/* Hint that d will be looked up soon (a cache prefetch). */
void digestset_prefetch(const struct digestset *s, const unsigned char *d);

/* Bytes the table occupies (header and slots). */
size_t digestset_bytes(const struct digestset *s);

/*
 * Save the set with meta[0..metalen) (at most DIGESTSET_META_MAX bytes)
 * and extra[0..extralen) to path with atomic_replace, mode 0600.  The set
 * is unchanged.  Returns 0, or -1 with e set.
 */
int digestset_save(struct digestset *s, const char *path, const void *meta,
    size_t metalen, const void *extra, size_t extralen, struct error *e);

/*
 * Load the set saved at path into s (which must not be initialised),
 * appending its metadata to meta and its extra data to extra (either may
 * be NULL to ignore it).  Returns 0; 1 when path does not exist; -1 with
 * e set: EXIT_DATAERR for a file that is not a valid set (naming why),
 * EXIT_IOERR or EXIT_NOINPUT for a file that cannot be read.
 */
int digestset_load(struct digestset *s, const char *path, struct buf *meta,
    struct buf *extra, struct error *e);

void digestset_release(struct digestset *s);

/*
 * The member count and file size of the saved set at path, from its
 * header alone (no checksum: for reports, never for use): 0, 1 when there
 * is no file, -1 (EXIT_DATAERR when it is not a digest set file).
 */
int digestset_peek(const char *path, uint64_t *count, uint64_t *bytes,
    struct error *e);

#endif
