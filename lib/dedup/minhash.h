/*
 * Near-duplicate detection: MinHash signatures of word shingles, and an
 * index of signatures with locality-sensitive hashing (LSH) by bands.
 *
 * Words are the maximal runs of bytes other than ASCII white space.  The
 * shingles of a text are its runs of MINHASH_SHINGLE (3) consecutive
 * words; a text of fewer words is one shingle; a text without words has
 * none.  Each shingle gets a 64-bit hash, and the signature keeps, for
 * each of MINHASH_PERM (128) hash functions h_i(x) = (a_i x + b_i) mod
 * 2^64, the high 32 bits' minimum over the shingles, of which the low 16
 * bits are stored (b-bit MinHash): 256 bytes per signature.  The fraction
 * of equal entries estimates the Jaccard similarity of the shingle sets,
 * with a standard error of at most 0.045 (0.027 at 0.9).  All constants
 * are fixed, so signatures compare across runs and machines.
 *
 * The index splits a signature into b bands of r entries (b r = 128) and
 * only compares signatures that agree on a whole band.  For a threshold
 * t it takes the largest r of 16, 8, 4, 2, 1 for which a pair with
 * similarity t shares a band with probability at least 0.99
 * (1 - (1 - t^r)^b >= 0.99): r = 16 (8 bands) from t = 0.9496, 8 (16
 * bands) from 0.8409, 4 (32) from 0.6049, 2 (64) from 0.2635, 1 (128)
 * below.  Candidates are then compared on the whole signature.  Memory: 256 bytes of signature
 * plus 8 bytes per band in a table kept at most 3/4 full, per signature
 * (at most 256 + 683 = 939 bytes with 32 bands).
 */
#ifndef AISTACK_MINHASH_H
#define AISTACK_MINHASH_H

#include <stddef.h>
#include <stdint.h>

#define MINHASH_PERM	128
#define MINHASH_SHINGLE	3
#define MINHASH_SIG	(MINHASH_PERM * 2)	/* bytes of a signature */

/*
 * Compute the signature of text[0..n) into sig (MINHASH_SIG bytes).
 * Returns the number of shingles (0: an empty text, whose signature
 * never matches anything).
 */
size_t minhash_sign(const char *text, size_t n, unsigned char *sig);

/* The estimated Jaccard similarity of two signatures, 0 to 1. */
double minhash_similarity(const unsigned char *a, const unsigned char *b);

/* Rows per band used for threshold t (0 < t <= 1). */
unsigned minhash_rows(double t);

struct minhash_index {
	double threshold;
	unsigned rows, bands;
	unsigned char *sigs;	/* n signatures, MINHASH_SIG bytes each */
	size_t n, capsigs;
	uint32_t *table;	/* pairs (band hash, id + 1); 0 id: empty */
	size_t cap;		/* pairs, a power of two */
	size_t used;
	int attached;		/* sigs and table are a caller's */
};

/* An empty index for threshold t.  Returns 0 or -1 (ENOMEM). */
int minhash_index_init(struct minhash_index *ix, double t);

/*
 * Add a copy of sig.  An empty signature (of a text without words) is
 * stored but never indexed.  Returns 0 or -1 (ENOMEM).
 */
int minhash_index_add(struct minhash_index *ix, const unsigned char *sig);

/*
 * Find the most similar indexed signature among those sharing a band
 * with sig.  Returns 1 with *sim set when its similarity is at least the
 * threshold, 0 otherwise.
 */
int minhash_index_query(const struct minhash_index *ix,
    const unsigned char *sig, double *sim);

/*
 * Add the signatures of a saved array p[0..n) (as minhash_index_sigs
 * gives it).  Returns 0, or -1 with errno EINVAL when n is not a whole
 * number of signatures, ENOMEM.
 */
int minhash_index_load(struct minhash_index *ix, const void *p, size_t n);

/*
 * Use a caller's signatures sigs[0..n) and band table table[0..2 cap) (cap
 * a power of two, used pairs filled) as an index for threshold t, such as
 * files mapped by lib/dedup/keystore.h: queries read them, minhash_index_put
 * fills the table, minhash_index_add is refused (EINVAL) and
 * minhash_index_release frees neither.  A query skips pairs whose id is
 * past n and ends after a whole turn of the table, so a damaged table
 * costs missed candidates, never a wrong read.
 */
void minhash_index_attach(struct minhash_index *ix, double t,
    const unsigned char *sigs, size_t n, uint32_t *table, size_t cap,
    size_t used);

/* Pairs a signature takes in the table (0 for an empty signature). */
unsigned minhash_index_pairs(const struct minhash_index *ix,
    const unsigned char *sig);

/*
 * Put the bands of sig, as id id1 (1 for the first signature), into an
 * attached table without growing it.  Returns 0, or -1 with errno ENOSPC
 * when the table would be more than three quarters full.
 */
int minhash_index_put(struct minhash_index *ix, const unsigned char *sig,
    uint32_t id1);

/* The signatures as one array to save (borrowed), and its size. */
const void *minhash_index_sigs(const struct minhash_index *ix, size_t *n);

void minhash_index_release(struct minhash_index *ix);

#endif
