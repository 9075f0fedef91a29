/* The persistent key store: the mapped table, commits through the
 * journal, growth, torn journals and header slots, damaged and truncated
 * files, signatures, the earlier format, the pages a run touches, and
 * kill -9 at random instants while saving. */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "base/exitcode.h"
#include "base/fsutil.h"
#include "base/le.h"
#include "dedup/keystore.h"
#include "dedup/minhash.h"
#include "unit.h"

static void
dig(unsigned long i, unsigned char *d)
{
	unsigned char full[32];
	char s[32];
	unsigned len;

	snprintf(s, sizeof(s), "key-%lu", i);
	EVP_Digest(s, strlen(s), full, &len, EVP_sha256(), NULL);
	memcpy(d, full, DIGEST_BYTES);
}

/* Add keys from..to-1 (with signatures of "word-i ..." when near). */
static int
add_range(struct keystore *ks, unsigned long from, unsigned long to)
{
	unsigned char d[DIGEST_BYTES], sig[MINHASH_SIG];
	char text[64];
	unsigned long i;

	for (i = from; i < to; i++) {
		dig(i, d);
		snprintf(text, sizeof(text), "word-%lu a b c", i);
		minhash_sign(text, strlen(text), sig);
		if (keystore_add(ks, d, ks->near ? sig : NULL) != 1)
			return -1;
	}
	return 0;
}

/* The number of keys from..to-1 present. */
static unsigned long
count_range(struct keystore *ks, unsigned long from, unsigned long to)
{
	unsigned char d[DIGEST_BYTES];
	unsigned long i, n = 0;

	for (i = from; i < to; i++) {
		dig(i, d);
		n += (unsigned long)keystore_has(ks, d);
	}
	return n;
}

static off_t
size_of(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 ? st.st_size : -1;
}

static int
copy_file(const char *from, const char *to)
{
	char *data;
	size_t len;
	int fd, rc;

	if (read_file(from, 1 << 30, &data, &len) == -1)
		return -1;
	fd = open(to, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	rc = fd == -1 || write_all(fd, data, len) == -1 ? -1 : 0;
	if (fd != -1)
		close(fd);
	free(data);
	return rc;
}

TEST(keystore_commit_and_reopen)
{
	struct keystore ks;
	struct error e;
	off_t table;

	CHECK_INT(keystore_open(&ks, "st", 0, 0, &e), 1);
	CHECK_INT(keystore_reset(&ks, "def", 3), 0);
	CHECK_INT(add_range(&ks, 0, 100), 0);
	ks.mark = 7;
	CHECK_INT(keystore_save(&ks, &e), 0);	/* the first: a new table */
	table = size_of("st");
	CHECK_INT(table, 4096 + 1024 * DIGEST_BYTES);
	CHECK_INT(add_range(&ks, 100, 150), 0);
	ks.mark = 9;
	ks.ctr.seen = 10;
	ks.ctr.unique = 6;
	ks.ctr.duplicates = 4;
	ks.ctr.near = 1;
	CHECK_INT(keystore_save(&ks, &e), 0);	/* then in place */
	CHECK_INT(size_of("st"), table);
	CHECK(size_of(".st.journal") > 50 * DIGEST_BYTES);
	ks.mark = 11;				/* a mark alone */
	CHECK_INT(keystore_save(&ks, &e), 0);
	CHECK_INT(keystore_save(&ks, &e), 0);	/* nothing new */
	keystore_close(&ks);

	CHECK_INT(keystore_open(&ks, "st", 0, 0, &e), 0);
	CHECK_U64(ks.mark, 11);
	CHECK_U64(keystore_count(&ks), 150);
	CHECK_INT(count_range(&ks, 0, 200), 150);
	CHECK_U64(ks.ctr.seen, 10);
	CHECK_U64(ks.ctr.unique, 6);
	CHECK_U64(ks.ctr.duplicates, 4);
	CHECK_U64(ks.ctr.near, 1);
	CHECK(keystore_meta_is(&ks, "def", 3));
	CHECK(!keystore_meta_is(&ks, "deg", 3));
	keystore_close(&ks);
	{
		struct keystore_stat st;
		CHECK_INT(keystore_stat("st", &st, &e), 0);
		CHECK_U64(st.keys, 150);
		CHECK(st.have_counters);
		CHECK_U64(st.seen, 10);
		CHECK_U64(st.unique, 6);
		CHECK_U64(st.duplicates, 4);
		CHECK_U64(st.near, 1);
		CHECK_U64(st.bytes, (uint64_t)(table + size_of(".st.journal")));
		CHECK_INT(keystore_stat("none", &st, &e), 1);
	}
}

TEST(keystore_grows_by_doubling)
{
	struct keystore ks;
	struct error e;
	unsigned long next = 0;
	off_t last = 0;
	int doublings = 0;

	CHECK_INT(keystore_open(&ks, "st", 0, 0, &e), 1);
	while (next < 20000) {
		CHECK_INT(add_range(&ks, next, next + 250), 0);
		next += 250;
		ks.mark = next;
		CHECK_INT(keystore_save(&ks, &e), 0);
		if (size_of("st") != last) {
			if (last != 0)
				CHECK_INT(size_of("st") - 4096, 2 * (last - 4096));
			last = size_of("st");
			doublings++;
		}
	}
	CHECK_INT(doublings, 6);		/* 1024 .. 32768 slots */
	CHECK(size_of(".st.tmp") == -1);
	keystore_close(&ks);
	CHECK_INT(keystore_open(&ks, "st", 0, 0, &e), 0);
	CHECK_U64(ks.mark, next);
	CHECK_U64(keystore_count(&ks), next);
	CHECK_INT(count_range(&ks, 0, next + 1000), next);
	keystore_close(&ks);
}

/*
 * A crash after the journal's record was written but before the table
 * and header had it (the table copied back from before the commit): the
 * next open replays it.  A torn record is not replayed.
 */
TEST(keystore_journal_replayed_or_ignored)
{
	struct keystore ks;
	struct error e;

	CHECK_INT(keystore_open(&ks, "st", 0, 0, &e), 1);
	CHECK_INT(add_range(&ks, 0, 10), 0);
	ks.mark = 10;
	CHECK_INT(keystore_save(&ks, &e), 0);
	CHECK_INT(add_range(&ks, 10, 20), 0);
	ks.mark = 20;
	CHECK_INT(keystore_save(&ks, &e), 0);
	CHECK_INT(copy_file("st", "before"), 0);
	CHECK_INT(add_range(&ks, 20, 30), 0);
	ks.mark = 30;
	ks.ctr.seen = 5;
	CHECK_INT(keystore_save(&ks, &e), 0);
	keystore_close(&ks);

	CHECK_INT(copy_file("before", "st"), 0);
	CHECK_INT(keystore_open(&ks, "st", 0, 0, &e), 0);
	CHECK_U64(ks.mark, 30);
	CHECK_U64(ks.ctr.seen, 5);
	CHECK_U64(keystore_count(&ks), 30);
	CHECK_INT(count_range(&ks, 0, 40), 30);
	keystore_close(&ks);
	/* replayed once, it is harmless again */
	CHECK_INT(keystore_open(&ks, "st", 0, 0, &e), 0);
	CHECK_U64(ks.mark, 30);
	CHECK_U64(keystore_count(&ks), 30);
	keystore_close(&ks);

	/* torn: the state before it */
	CHECK_INT(copy_file("before", "st"), 0);
	CHECK_INT(truncate(".st.journal", size_of(".st.journal") - 5), 0);
	CHECK_INT(keystore_open(&ks, "st", 0, 0, &e), 0);
	CHECK_U64(ks.mark, 20);
	CHECK_U64(keystore_count(&ks), 20);
	CHECK_INT(count_range(&ks, 0, 40), 20);
	/* and the next commit goes on from there */
	CHECK_INT(add_range(&ks, 40, 45), 0);
	ks.mark = 45;
	CHECK_INT(keystore_save(&ks, &e), 0);
	keystore_close(&ks);
	CHECK_INT(keystore_open(&ks, "st", 0, 0, &e), 0);
	CHECK_U64(ks.mark, 45);
	CHECK_INT(count_range(&ks, 0, 50), 25);
	keystore_close(&ks);
}

/* A header slot torn (the newer one altered): the older one and the
 * journal give the last commit back; both altered: reported. */
TEST(keystore_torn_header_slot)
{
	struct keystore ks;
	struct error e;
	int fd, i;

	CHECK_INT(keystore_open(&ks, "st", 0, 0, &e), 1);
	for (i = 0; i < 4; i++) {
		CHECK_INT(add_range(&ks, (unsigned long)i * 10,
		    (unsigned long)i * 10 + 10), 0);
		ks.mark = (uint64_t)i * 10 + 10;
		CHECK_INT(keystore_save(&ks, &e), 0);
	}
	keystore_close(&ks);
	/* the newest values are in one of the two slots (3584, 3840) */
	for (i = 0; i < 2; i++) {
		CHECK_INT(copy_file("st", "good"), 0);
		fd = open("st", O_WRONLY);
		CHECK_INT(pwrite(fd, "\xff", 1, 3584 + 256 * i + 24), 1);
		close(fd);
		CHECK_INT(keystore_open(&ks, "st", 0, 0, &e), 0);
		CHECK_U64(ks.mark, 40);
		CHECK_INT(count_range(&ks, 0, 50), 40);
		keystore_close(&ks);
		CHECK_INT(copy_file("good", "st"), 0);
	}
	fd = open("st", O_WRONLY);
	CHECK_INT(pwrite(fd, "\xff", 1, 3584 + 24), 1);
	CHECK_INT(pwrite(fd, "\xff", 1, 3840 + 24), 1);
	close(fd);
	CHECK_INT(keystore_open(&ks, "st", 0, 0, &e), -1);
	CHECK_INT(e.code, EXIT_DATAERR);
	CHECK(strstr(e.msg, "no valid header values") != NULL);
}

TEST(keystore_signatures)
{
	struct keystore ks;
	struct error e;
	unsigned char sig[MINHASH_SIG];
	double sim;

	CHECK_INT(keystore_open(&ks, "st", 1, 0.9, &e), 1);
	CHECK_INT(add_range(&ks, 0, 100), 0);
	CHECK_INT(keystore_save(&ks, &e), 0);
	CHECK_INT(add_range(&ks, 100, 150), 0);
	CHECK_INT(keystore_save(&ks, &e), 0);	/* through the journal */
	CHECK_INT(add_range(&ks, 150, 1000), 0);
	CHECK_INT(keystore_save(&ks, &e), 0);	/* grown */
	keystore_close(&ks);
	CHECK_INT(keystore_open(&ks, "st", 1, 0.9, &e), 0);
	CHECK_INT(ks.nosigs, 0);
	CHECK_INT(ks.mix.n, 1000);
	CHECK_INT(ks.ix.n, 0);
	minhash_sign("word-120 a b c", 14, sig);
	CHECK_INT(keystore_near(&ks, sig, &sim), 1);
	minhash_sign("word-920 a b c", 14, sig);
	CHECK_INT(keystore_near(&ks, sig, &sim), 1);
	keystore_close(&ks);
	/* opened without signatures, and a file made without them */
	CHECK_INT(keystore_open(&ks, "st", 0, 0, &e), 0);
	CHECK_U64(keystore_count(&ks), 1000);
	keystore_close(&ks);
	CHECK_INT(keystore_open(&ks, "plain", 0, 0, &e), 1);
	CHECK_INT(add_range(&ks, 0, 10), 0);
	CHECK_INT(keystore_save(&ks, &e), 0);
	keystore_close(&ks);
	CHECK_INT(keystore_open(&ks, "plain", 1, 0.9, &e), 0);
	CHECK_INT(ks.nosigs, 1);
	keystore_close(&ks);
	/* a signatures file of another generation is not used */
	CHECK_INT(copy_file(".st.sigs", ".plain.sigs"), 0);
	CHECK_INT(keystore_open(&ks, "plain", 1, 0.9, &e), 0);
	CHECK_INT(ks.nosigs, 1);
	keystore_close(&ks);
}

/* The band table's header: 1 when it covers n signatures. */
static int
bands_cover(uint64_t n)
{
	unsigned char h[64];
	int fd = open(".st.bands", O_RDONLY), ok;

	if (fd == -1)
		return n == 0;
	ok = pread(fd, h, sizeof(h), 0) == (ssize_t)sizeof(h) &&
	    memcmp(h, "AISTBAND", 8) == 0 && get64(h + 24) == n;
	close(fd);
	return ok;
}

static int
bands_rows(void)
{
	unsigned char h[16];
	int fd = open(".st.bands", O_RDONLY), rows = -1;

	if (fd != -1 && pread(fd, h, sizeof(h), 0) == (ssize_t)sizeof(h))
		rows = (int)get32(h + 12);
	if (fd != -1)
		close(fd);
	return rows;
}

/*
 * The band table is mapped, not rebuilt: each open adds the bands of the
 * signatures committed since (the file is not written again when there
 * are none), and one of another band count, damaged, missing or too full
 * is written anew; the answers are the same whichever it was.
 */
TEST(keystore_bands_file)
{
	struct keystore ks;
	struct error e;
	unsigned char sig[MINHASH_SIG];
	struct stat a, b;
	double sim;
	int fd, round;

	CHECK_INT(keystore_open(&ks, "st", 1, 0.9, &e), 1);
	CHECK_INT(add_range(&ks, 0, 100), 0);
	CHECK_INT(keystore_save(&ks, &e), 0);
	keystore_close(&ks);
	CHECK(access(".st.bands", F_OK) == -1);	/* made by the next open */
	CHECK_INT(keystore_open(&ks, "st", 1, 0.9, &e), 0);
	CHECK_INT(bands_cover(100), 1);
	CHECK_INT(add_range(&ks, 100, 150), 0);
	CHECK_INT(keystore_save(&ks, &e), 0);	/* through the journal */
	/* this run's own committed keys are still found */
	minhash_sign("word-120 a b c", 14, sig);
	CHECK_INT(keystore_near(&ks, sig, &sim), 1);
	keystore_close(&ks);
	CHECK_INT(stat(".st.bands", &a), 0);
	CHECK_INT(keystore_open(&ks, "st", 1, 0.9, &e), 0);
	CHECK_INT(bands_cover(150), 1);
	CHECK_INT(stat(".st.bands", &b), 0);
	CHECK(a.st_ino == b.st_ino);		/* added to, not made anew */
	CHECK_INT(ks.ix.n, 0);
	CHECK_INT(keystore_near(&ks, sig, &sim), 1);
	minhash_sign("word-20 a b c", 13, sig);
	CHECK_INT(keystore_near(&ks, sig, &sim), 1);
	minhash_sign("nothing like any of them", 24, sig);
	CHECK_INT(keystore_near(&ks, sig, &sim), 0);
	keystore_close(&ks);
	CHECK_INT(keystore_open(&ks, "st", 1, 0.9, &e), 0);
	CHECK_INT(stat(".st.bands", &a), 0);
	CHECK(a.st_ino == b.st_ino && a.st_mtime == b.st_mtime);
	keystore_close(&ks);
	/* another threshold's band count, a damaged header, none, garbage:
	 * made anew, same answers */
	for (round = 0; round < 4; round++) {
		double t = round == 0 ? 0.7 : 0.9;
		if (round == 1) {
			CHECK((fd = open(".st.bands", O_WRONLY)) != -1);
			CHECK_INT(pwrite(fd, "\xff", 1, 30), 1);
			close(fd);
		} else if (round == 2)
			CHECK_INT(unlink(".st.bands"), 0);
		else if (round == 3)
			CHECK_INT(truncate(".st.bands", 5000), 0);
		CHECK_INT(keystore_open(&ks, "st", 1, t, &e), 0);
		CHECK_INT(bands_cover(150), 1);
		minhash_sign("word-140 a b c", 14, sig);
		CHECK_INT(keystore_near(&ks, sig, &sim), 1);
		CHECK_INT(bands_rows(), (int)minhash_rows(t));
		keystore_close(&ks);
	}
	/* a set that grows: its band table is made larger */
	CHECK_INT(keystore_open(&ks, "st", 1, 0.9, &e), 0);
	CHECK_INT(add_range(&ks, 150, 3000), 0);
	CHECK_INT(keystore_save(&ks, &e), 0);	/* grown */
	keystore_close(&ks);
	CHECK_INT(keystore_open(&ks, "st", 1, 0.9, &e), 0);
	CHECK_INT(bands_cover(3000), 1);	/* and the band table too */
	minhash_sign("word-2999 a b c", 15, sig);
	CHECK_INT(keystore_near(&ks, sig, &sim), 1);
	keystore_close(&ks);
}

TEST(keystore_reset_rewrites)
{
	struct keystore ks;
	struct error e;

	CHECK_INT(keystore_open(&ks, "st", 0, 0, &e), 1);
	CHECK_INT(add_range(&ks, 0, 10), 0);
	ks.mark = 10;
	ks.ctr.seen = 3;
	CHECK_INT(keystore_save(&ks, &e), 0);
	CHECK_INT(add_range(&ks, 10, 20), 0);
	CHECK_INT(keystore_save(&ks, &e), 0);
	CHECK_INT(keystore_reset(&ks, "new", 3), 0);
	CHECK_U64(keystore_count(&ks), 0);
	CHECK_INT(add_range(&ks, 100, 105), 0);
	CHECK_INT(keystore_save(&ks, &e), 0);
	keystore_close(&ks);
	CHECK_INT(keystore_open(&ks, "st", 0, 0, &e), 0);
	CHECK_U64(keystore_count(&ks), 5);
	CHECK_U64(ks.mark, 0);
	CHECK_U64(ks.ctr.seen, 3);		/* the counts are kept */
	CHECK(keystore_meta_is(&ks, "new", 3));
	CHECK_INT(count_range(&ks, 0, 20), 0);
	CHECK_INT(count_range(&ks, 100, 105), 5);
	keystore_close(&ks);
}

TEST(keystore_damage_reported)
{
	struct keystore ks;
	struct error e;
	int fd;

	CHECK_INT(keystore_open(&ks, "st", 0, 0, &e), 1);
	CHECK_INT(add_range(&ks, 0, 10), 0);
	CHECK_INT(keystore_save(&ks, &e), 0);
	keystore_close(&ks);
	CHECK_INT(copy_file("st", "good"), 0);
	fd = open("st", O_WRONLY);
	CHECK_INT(pwrite(fd, "\x01", 1, 20), 1);	/* the capacity */
	close(fd);
	CHECK_INT(keystore_open(&ks, "st", 0, 0, &e), -1);
	CHECK_INT(e.code, EXIT_DATAERR);
	CHECK(strstr(e.msg, "st: corrupt key set file (bad header)") != NULL);
	CHECK_INT(copy_file("good", "st"), 0);
	CHECK_INT(truncate("st", 10000), 0);
	CHECK_INT(keystore_open(&ks, "st", 0, 0, &e), -1);
	CHECK_INT(e.code, EXIT_DATAERR);
	CHECK(strstr(e.msg, "(10000 bytes where its header says 20480)") !=
	    NULL);
	CHECK_INT(truncate("st", 100), 0);
	CHECK_INT(keystore_open(&ks, "st", 0, 0, &e), -1);
	CHECK(strstr(e.msg, "st: not a key set file") != NULL);
	/* a table full of garbage: lookups and additions still end */
	CHECK_INT(copy_file("good", "st"), 0);
	{
		char junk[1024 * DIGEST_BYTES];
		memset(junk, 0x5a, sizeof(junk));
		fd = open("st", O_WRONLY);
		CHECK_INT(pwrite(fd, junk, sizeof(junk), 4096),
		    (ssize_t)sizeof(junk));
		close(fd);
	}
	CHECK_INT(keystore_open(&ks, "st", 0, 0, &e), 0);
	CHECK_INT(count_range(&ks, 0, 10), 0);
	CHECK_INT(add_range(&ks, 0, 3), 0);
	CHECK_INT(keystore_save(&ks, &e), -1);
	CHECK(strstr(e.msg, "no free slot") != NULL);
	keystore_close(&ks);
}

/* A set of the earlier format (version 1: a snapshot read whole, and
 * its journal) opens, and its first save converts it. */
TEST(keystore_converts_version_1)
{
	struct keystore ks;
	struct digestset old;
	struct error e;
	unsigned char meta[19], d[DIGEST_BYTES];
	unsigned long i;

	CHECK_INT(digestset_init(&old, 0), 0);
	for (i = 0; i < 40; i++) {
		dig(i, d);
		CHECK_INT(digestset_add(&old, d), 1);
	}
	memset(meta, 0, sizeof(meta));
	meta[0] = 7;			/* the generation */
	meta[8] = 33;			/* the mark */
	memcpy(meta + 16, "def", 3);
	CHECK_INT(digestset_save(&old, "v1", meta, sizeof(meta), NULL, 0, &e),
	    0);
	digestset_release(&old);
	{
		struct keystore_stat st;
		CHECK_INT(keystore_stat("v1", &st, &e), 0);
		CHECK_U64(st.keys, 40);
		CHECK(!st.have_counters);
	}
	CHECK_INT(keystore_open(&ks, "v1", 0, 0, &e), 0);
	CHECK_U64(ks.mark, 33);
	CHECK(keystore_meta_is(&ks, "def", 3));
	CHECK_INT(count_range(&ks, 0, 50), 40);
	CHECK_INT(keystore_save(&ks, &e), 0);
	keystore_close(&ks);
	CHECK_INT(keystore_open(&ks, "v1", 0, 0, &e), 0);
	CHECK_U64(ks.mark, 33);
	CHECK_U64(keystore_count(&ks), 40);
	CHECK_INT(count_range(&ks, 0, 50), 40);
	CHECK(ks.map != NULL);			/* the new format, mapped */
	keystore_close(&ks);
}

/*
 * Opening a set of 300,000 keys (a 8 MiB table) and looking up and
 * adding 100 keys touches about 100 of its 2,000 pages: the page faults
 * stay far below what reading the table would cost.
 */
TEST(keystore_open_touches_only_its_keys)
{
	struct keystore ks;
	struct error e;
	struct rusage a, b;
	long faults;

	CHECK_INT(keystore_open(&ks, "big", 0, 0, &e), 1);
	CHECK_INT(add_range(&ks, 0, 300000), 0);
	CHECK_INT(keystore_save(&ks, &e), 0);
	keystore_close(&ks);
	CHECK(size_of("big") > 8 << 20);
	getrusage(RUSAGE_SELF, &a);
	CHECK_INT(keystore_open(&ks, "big", 0, 0, &e), 0);
	CHECK_INT(count_range(&ks, 299950, 300050), 50);
	CHECK_INT(add_range(&ks, 300050, 300100), 0);
	ks.mark = 1;
	CHECK_INT(keystore_save(&ks, &e), 0);
	getrusage(RUSAGE_SELF, &b);
	faults = (b.ru_minflt - a.ru_minflt) + (b.ru_majflt - a.ru_majflt);
	CHECK(faults < 600);
	keystore_close(&ks);
	CHECK_INT(keystore_open(&ks, "big", 0, 0, &e), 0);
	CHECK_U64(keystore_count(&ks), 300050);
	keystore_close(&ks);
}

/*
 * A child saves keys i..i+19 with mark i+20, over and over, and tells the parent
 * each time a save returned; the parent kills it at a random moment.
 * Whatever the moment, the store opens, holds exactly keys 0..mark-1,
 * and its mark is at least the last one acknowledged.
 */
TEST(keystore_kill9_while_saving)
{
	int round;

	srand((unsigned)time(NULL) ^ (unsigned)getpid());
	for (round = 0; round < 16; round++) {
		struct keystore ks;
		struct error e;
		unsigned long acked = 0, v;
		int p[2], status, i, want = 1 + rand() % 60;
		pid_t pid;

		CHECK_INT(pipe(p), 0);
		if ((pid = fork()) == 0) {
			close(p[0]);
			if (keystore_open(&ks, "st", 1, 0.8, &e) == -1)
				_exit(1);
			/* 20 keys a save: the table grows now and then */
			for (v = ks.mark;; v += 20) {
				if (add_range(&ks, v, v + 20) == -1)
					_exit(2);
				ks.mark = v + 20;
				if (keystore_save(&ks, &e) == -1)
					_exit(3);
				if (write(p[1], &ks.mark, sizeof(ks.mark)) < 0)
					_exit(4);
			}
		}
		close(p[1]);
		for (i = 0; i < want; i++)
			if (read(p[0], &acked, sizeof(acked)) != sizeof(acked))
				break;
		/* and a little later, mid-save with luck */
		usleep((useconds_t)(rand() % 3000));
		kill(pid, SIGKILL);
		waitpid(pid, &status, 0);
		while (read(p[0], &v, sizeof(v)) == sizeof(v))
			acked = v;
		close(p[0]);
		CHECK(WIFSIGNALED(status));
		CHECK_INT(keystore_open(&ks, "st", 1, 0.8, &e), 0);
		CHECK(ks.mark >= acked);
		CHECK_U64(keystore_count(&ks), ks.mark);
		CHECK_INT(count_range(&ks, 0, ks.mark + 50), ks.mark);
		CHECK_INT(ks.mix.n, ks.mark);
		CHECK_INT(bands_cover(ks.mark), 1);
		keystore_close(&ks);
	}
}
