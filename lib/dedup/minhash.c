#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "minhash.h"

#define EMPTY_ENTRY	0xFFFF

/* splitmix64: the fixed constants of the hash functions come from it. */
static uint64_t
splitmix(uint64_t *x)
{
	uint64_t z = (*x += 0x9E3779B97F4A7C15ULL);

	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
	return z ^ (z >> 31);
}

static uint64_t
mix64(uint64_t z)
{
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
	return z ^ (z >> 31);
}

static struct {
	uint64_t a[MINHASH_PERM], b[MINHASH_PERM];
} perm;
static pthread_once_t perm_once = PTHREAD_ONCE_INIT;

/* The fixed hash functions: odd multipliers and offsets from splitmix64. */
static void
perm_init(void)
{
	uint64_t seed = 0x61697374616B2D64ULL;	/* "aistak-d" */
	int i;

	for (i = 0; i < MINHASH_PERM; i++) {
		perm.a[i] = splitmix(&seed) | 1;
		perm.b[i] = splitmix(&seed);
	}
}

static int
is_space(unsigned char c)
{
	return c == ' ' || (c >= '\t' && c <= '\r');
}

/*
 * The hash of the word at *sp (not white space), which ends at the next
 * white space or at end: FNV-1a of its bytes, mixed with its length.
 * Reads the word once, moving *sp past it.
 */
static uint64_t
word_hash(const unsigned char **sp, const unsigned char *end)
{
	const unsigned char *s = *sp, *w = s;
	uint64_t h = 0xCBF29CE484222325ULL;

	for (; s < end && !is_space(*s); s++)
		h = (h ^ *s) * 0x100000001B3ULL;
	*sp = s;
	return mix64(h ^ (uint64_t)(s - w));
}

static void
fold(uint32_t *mins, uint64_t x)
{
	int i;

	for (i = 0; i < MINHASH_PERM; i++) {
		uint32_t v = (uint32_t)((perm.a[i] * x + perm.b[i]) >> 32);
		if (v < mins[i])
			mins[i] = v;
	}
}

size_t
minhash_sign(const char *text, size_t n, unsigned char *sig)
{
	const unsigned char *s = (const unsigned char *)text;
	const unsigned char *end = n > 0 ? s + n : s;	/* text may be NULL */
	uint64_t w[MINHASH_SHINGLE] = { 0 };
	uint32_t mins[MINHASH_PERM];
	size_t words = 0, shingles = 0;
	int i;

	pthread_once(&perm_once, perm_init);
	for (i = 0; i < MINHASH_PERM; i++)
		mins[i] = UINT32_MAX;
	for (;;) {
		while (s < end && is_space(*s))
			s++;
		if (s >= end)
			break;
		/* the last MINHASH_SHINGLE word hashes, oldest first */
		memmove(w, w + 1, sizeof(w) - sizeof(w[0]));
		w[MINHASH_SHINGLE - 1] = word_hash(&s, end);
		if (++words >= MINHASH_SHINGLE) {
			uint64_t h = 0;
			for (i = 0; i < MINHASH_SHINGLE; i++)
				h = mix64(h * 0x9E3779B97F4A7C15ULL + w[i]);
			fold(mins, h);
			shingles++;
		}
	}
	if (words > 0 && words < MINHASH_SHINGLE) {
		/* a short text is one shingle of all its words */
		uint64_t h = 0;
		for (i = MINHASH_SHINGLE - (int)words; i < MINHASH_SHINGLE; i++)
			h = mix64(h * 0x9E3779B97F4A7C15ULL + w[i]);
		fold(mins, h);
		shingles = 1;
	}
	for (i = 0; i < MINHASH_PERM; i++) {
		uint32_t v = shingles > 0 ? mins[i] & 0xFFFF : EMPTY_ENTRY;
		sig[2 * i] = (unsigned char)v;
		sig[2 * i + 1] = (unsigned char)(v >> 8);
	}
	return shingles;
}

static int
sig_empty(const unsigned char *sig)
{
	int i;

	for (i = 0; i < MINHASH_SIG; i++)
		if (sig[i] != 0xFF)
			return 0;
	return 1;
}

double
minhash_similarity(const unsigned char *a, const unsigned char *b)
{
	int i, eq = 0;
	double f, r = 1.0 / 65536;

	for (i = 0; i < MINHASH_SIG; i += 2)
		eq += a[i] == b[i] && a[i + 1] == b[i + 1];
	/* two different minima agree on 16 bits by chance 1 time in 65536 */
	f = ((double)eq / MINHASH_PERM - r) / (1 - r);
	return f < 0 ? 0 : f > 1 ? 1 : f;
}

unsigned
minhash_rows(double t)
{
	unsigned r;

	for (r = 16; r > 1; r /= 2)
		if (1 - pow(1 - pow(t, r), (double)(MINHASH_PERM / r)) >= 0.99)
			break;
	return r;
}

int
minhash_index_init(struct minhash_index *ix, double t)
{
	memset(ix, 0, sizeof(*ix));
	ix->threshold = t;
	ix->rows = minhash_rows(t);
	ix->bands = MINHASH_PERM / ix->rows;
	ix->cap = 1024;
	if ((ix->table = calloc(ix->cap, 2 * sizeof(uint32_t))) == NULL)
		return -1;
	return 0;
}

/* The hash of band j of sig, never 0. */
static uint32_t
band_hash(const struct minhash_index *ix, const unsigned char *sig, unsigned j)
{
	const unsigned char *p = sig + 2 * j * ix->rows;
	uint64_t h = 0xCBF29CE484222325ULL ^ j;
	unsigned i;

	for (i = 0; i < 2 * ix->rows; i++)
		h = (h ^ p[i]) * 0x100000001B3ULL;
	h = mix64(h);
	return (uint32_t)h != 0 ? (uint32_t)h : 1;
}

static void
table_put(uint32_t *table, size_t cap, uint32_t h, uint32_t id1)
{
	size_t i = (size_t)(mix64(h) & (cap - 1)), k;

	/* a whole turn without a free pair: a damaged attached table */
	for (k = 0; k < cap && table[2 * i + 1] != 0; k++)
		i = (i + 1) & (cap - 1);
	if (k == cap)
		return;
	table[2 * i] = h;
	table[2 * i + 1] = id1;
}

static int
table_grow(struct minhash_index *ix)
{
	size_t cap = ix->cap * 2, i;
	uint32_t *t;

	if ((t = calloc(cap, 2 * sizeof(uint32_t))) == NULL)
		return -1;
	for (i = 0; i < ix->cap; i++)
		if (ix->table[2 * i + 1] != 0)
			table_put(t, cap, ix->table[2 * i],
			    ix->table[2 * i + 1]);
	free(ix->table);
	ix->table = t;
	ix->cap = cap;
	return 0;
}

int
minhash_index_add(struct minhash_index *ix, const unsigned char *sig)
{
	unsigned j;
	uint32_t id1;

	if (ix->attached) {
		errno = EINVAL;
		return -1;
	}
	if (ix->n == UINT32_MAX - 1) {
		errno = ENOMEM;
		return -1;
	}
	if (ix->n == ix->capsigs) {
		size_t cap = ix->capsigs ? ix->capsigs * 2 : 1024;
		unsigned char *v = realloc(ix->sigs, cap * MINHASH_SIG);
		if (v == NULL)
			return -1;
		ix->sigs = v;
		ix->capsigs = cap;
	}
	memcpy(ix->sigs + ix->n * MINHASH_SIG, sig, MINHASH_SIG);
	id1 = (uint32_t)++ix->n;
	if (sig_empty(sig))
		return 0;
	while ((ix->used + ix->bands) > ix->cap / 4 * 3)
		if (table_grow(ix) == -1) {
			ix->n--;
			return -1;
		}
	for (j = 0; j < ix->bands; j++)
		table_put(ix->table, ix->cap, band_hash(ix, sig, j), id1);
	ix->used += ix->bands;
	return 0;
}

int
minhash_index_query(const struct minhash_index *ix, const unsigned char *sig,
    double *sim)
{
	double best = -1;
	unsigned j;

	if (ix->used == 0 || sig_empty(sig))
		return 0;
	for (j = 0; j < ix->bands; j++) {
		uint32_t h = band_hash(ix, sig, j);
		size_t i = (size_t)(mix64(h) & (ix->cap - 1)), k;
		for (k = 0; k < ix->cap && ix->table[2 * i + 1] != 0;
		    k++, i = (i + 1) & (ix->cap - 1)) {
			const unsigned char *o;
			double s;
			if (ix->table[2 * i] != h || ix->table[2 * i + 1] > ix->n)
				continue;
			o = ix->sigs + (size_t)(ix->table[2 * i + 1] - 1) *
			    MINHASH_SIG;
			/* only signatures that really share band j count */
			if (memcmp(o + 2 * j * ix->rows, sig + 2 * j * ix->rows,
			    2 * ix->rows) != 0)
				continue;
			s = minhash_similarity(sig, o);
			if (s > best)
				best = s;
		}
		if (best >= 1)
			break;
	}
	if (best >= ix->threshold) {
		*sim = best;
		return 1;
	}
	return 0;
}

void
minhash_index_attach(struct minhash_index *ix, double t,
    const unsigned char *sigs, size_t n, uint32_t *table, size_t cap,
    size_t used)
{
	memset(ix, 0, sizeof(*ix));
	ix->threshold = t;
	ix->rows = minhash_rows(t);
	ix->bands = MINHASH_PERM / ix->rows;
	ix->sigs = (unsigned char *)sigs;
	ix->n = ix->capsigs = n;
	ix->table = table;
	ix->cap = cap;
	ix->used = used;
	ix->attached = 1;
}

unsigned
minhash_index_pairs(const struct minhash_index *ix, const unsigned char *sig)
{
	return sig_empty(sig) ? 0 : ix->bands;
}

int
minhash_index_put(struct minhash_index *ix, const unsigned char *sig,
    uint32_t id1)
{
	unsigned j;

	if (sig_empty(sig))
		return 0;
	if (ix->used + ix->bands > ix->cap / 4 * 3) {
		errno = ENOSPC;
		return -1;
	}
	for (j = 0; j < ix->bands; j++)
		table_put(ix->table, ix->cap, band_hash(ix, sig, j), id1);
	ix->used += ix->bands;
	return 0;
}

int
minhash_index_load(struct minhash_index *ix, const void *p, size_t n)
{
	const unsigned char *s = p;
	size_t i;

	if (n % MINHASH_SIG != 0) {
		errno = EINVAL;
		return -1;
	}
	for (i = 0; i < n / MINHASH_SIG; i++)
		if (minhash_index_add(ix, s + i * MINHASH_SIG) == -1)
			return -1;
	return 0;
}

const void *
minhash_index_sigs(const struct minhash_index *ix, size_t *n)
{
	*n = ix->n * MINHASH_SIG;
	return ix->sigs;
}

void
minhash_index_release(struct minhash_index *ix)
{
	if (ix == NULL)
		return;
	if (!ix->attached) {
		free(ix->sigs);
		free(ix->table);
	}
	memset(ix, 0, sizeof(*ix));
}
