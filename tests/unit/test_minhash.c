/* MinHash signatures and the LSH index. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "dedup/minhash.h"
#include "unit.h"

/* Words w{from}..w{to-1}, with word number edit (if any) replaced. */
static void
words(struct buf *b, int from, int to, int edit, const char *prefix)
{
	int i;

	b->len = 0;
	for (i = from; i < to; i++) {
		if (i == edit)
			buf_printf(b, "%sCHANGED ", prefix);
		else
			buf_printf(b, "%s%d ", prefix, i);
	}
}

static double
sim_of(const char *a, size_t na, const char *b, size_t nb)
{
	unsigned char sa[MINHASH_SIG], sb[MINHASH_SIG];

	minhash_sign(a, na, sa);
	minhash_sign(b, nb, sb);
	return minhash_similarity(sa, sb);
}

TEST(minhash_signatures)
{
	struct buf a = BUF_INIT, b = BUF_INIT;
	unsigned char s1[MINHASH_SIG], s2[MINHASH_SIG];

	words(&a, 0, 100, -1, "w");
	CHECK_INT(minhash_sign(a.data, a.len, s1), 98);
	CHECK_INT(minhash_sign(a.data, a.len, s2), 98);
	CHECK(memcmp(s1, s2, MINHASH_SIG) == 0);
	CHECK(minhash_similarity(s1, s2) == 1.0);
	/* white space does not matter; case does */
	CHECK(sim_of("a b c d", 7, "  a\tb\n\nc  d ", 12) == 1.0);
	CHECK(sim_of("a b c d", 7, "A b c d", 7) < 0.5);
	/* one word changed in the middle of 100: 3 of 98 shingles change */
	words(&b, 0, 100, 50, "w");
	CHECK(sim_of(a.data, a.len, b.data, b.len) > 0.85);
	/* different texts */
	words(&b, 0, 100, -1, "v");
	CHECK(sim_of(a.data, a.len, b.data, b.len) < 0.1);
	/* short texts are one shingle */
	CHECK_INT(minhash_sign("hello world", 11, s1), 1);
	CHECK_INT(minhash_sign(" hello  world ", 14, s2), 1);
	CHECK(minhash_similarity(s1, s2) == 1.0);
	CHECK_INT(minhash_sign("hello", 5, s2), 1);
	CHECK(minhash_similarity(s1, s2) < 0.1);
	/* no words, no shingles */
	CHECK_INT(minhash_sign(" \t\n", 3, s1), 0);
	CHECK_INT(minhash_sign("", 0, s2), 0);
	CHECK_INT(minhash_sign(NULL, 0, s2), 0);
	CHECK(memcmp(s1, s2, MINHASH_SIG) == 0);
	buf_release(&a);
	buf_release(&b);
}

TEST(minhash_estimates_jaccard)
{
	struct buf a = BUF_INIT, b = BUF_INIT;
	static const struct {
		int from, to;
	} cases[] = { { 50, 150 }, { 20, 120 }, { 5, 105 }, { 80, 180 } };
	size_t i;

	words(&a, 0, 100, -1, "w");
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		/* shingles: 98 each; shared: those inside the overlap */
		int overlap = 100 - cases[i].from;
		double inter = overlap >= 3 ? overlap - 2 : 0;
		double j = inter / (98 + 98 - inter), est;
		words(&b, cases[i].from, cases[i].to, -1, "w");
		est = sim_of(a.data, a.len, b.data, b.len);
		if (fabs(est - j) > 0.15) {
			unit_fail(__FILE__, __LINE__, "case %zu: estimate %.3f, "
			    "Jaccard %.3f", i, est, j);
			return;
		}
	}
	buf_release(&a);
	buf_release(&b);
}

TEST(minhash_rows_by_threshold)
{
	CHECK_INT(minhash_rows(1.0), 16);
	CHECK_INT(minhash_rows(0.95), 16);
	CHECK_INT(minhash_rows(0.9), 8);
	CHECK_INT(minhash_rows(0.85), 8);
	CHECK_INT(minhash_rows(0.8), 4);
	CHECK_INT(minhash_rows(0.7), 4);
	CHECK_INT(minhash_rows(0.5), 2);
	CHECK_INT(minhash_rows(0.3), 2);
	CHECK_INT(minhash_rows(0.1), 1);
}

TEST(minhash_index_finds_near_duplicates)
{
	struct minhash_index ix, re;
	struct buf t = BUF_INIT;
	unsigned char s[MINHASH_SIG];
	double sim;
	const void *sigs;
	size_t nsigs;
	char prefix[16];
	int i;

	CHECK_INT(minhash_index_init(&ix, 0.8), 0);
	CHECK_INT(ix.bands, 32);
	CHECK_INT(minhash_index_query(&ix, s, &sim), 0);
	for (i = 0; i < 2000; i++) {
		snprintf(prefix, sizeof(prefix), "t%d_", i);
		words(&t, 0, 60, -1, prefix);
		minhash_sign(t.data, t.len, s);
		CHECK_INT(minhash_index_add(&ix, s), 0);
	}
	/* an empty text is stored, never found */
	minhash_sign("", 0, s);
	CHECK_INT(minhash_index_add(&ix, s), 0);
	CHECK_INT(minhash_index_query(&ix, s, &sim), 0);
	CHECK_INT(ix.n, 2001);
	/* one word edited in text 1234 */
	words(&t, 0, 60, 30, "t1234_");
	minhash_sign(t.data, t.len, s);
	CHECK_INT(minhash_index_query(&ix, s, &sim), 1);
	CHECK(sim >= 0.8);
	/* a text of its own */
	words(&t, 0, 60, -1, "other_");
	minhash_sign(t.data, t.len, s);
	CHECK_INT(minhash_index_query(&ix, s, &sim), 0);
	/* half of a text: similarity about 1/3, under the threshold */
	words(&t, 0, 30, -1, "t77_");
	minhash_sign(t.data, t.len, s);
	CHECK_INT(minhash_index_query(&ix, s, &sim), 0);

	/* the signatures saved and loaded into an index of another threshold */
	sigs = minhash_index_sigs(&ix, &nsigs);
	CHECK_INT(nsigs, 2001 * MINHASH_SIG);
	CHECK_INT(minhash_index_init(&re, 0.3), 0);
	CHECK_INT(minhash_index_load(&re, sigs, nsigs), 0);
	CHECK_INT(re.n, 2001);
	CHECK_INT(minhash_index_query(&re, s, &sim), 1);	/* the half */
	CHECK(sim > 0.2 && sim < 0.5);
	errno = 0;
	CHECK_INT(minhash_index_load(&re, sigs, MINHASH_SIG + 1), -1);
	CHECK_INT(errno, EINVAL);
	minhash_index_release(&re);
	minhash_index_release(&ix);
	buf_release(&t);
}
