/* The persistent key store: snapshot and journal, torn and stale journals,
 * compaction, signatures, and kill -9 at random instants while saving. */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "exitcode.h"
#include "fsutil.h"
#include "keystore.h"
#include "minhash.h"
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
		n += (unsigned long)digestset_has(&ks->set, d);
	}
	return n;
}

static off_t
size_of(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 ? st.st_size : -1;
}

TEST(keystore_snapshot_and_journal)
{
	struct keystore ks;
	struct error e;
	uint64_t gen;

	CHECK_INT(keystore_open(&ks, "st", 0, 0, &e), 1);
	CHECK_INT(keystore_reset(&ks, "def", 3), 0);
	CHECK_INT(add_range(&ks, 0, 100), 0);
	ks.mark = 7;
	CHECK_INT(keystore_save(&ks, &e), 0);	/* the first: a snapshot */
	gen = ks.gen;
	CHECK(gen != 0);
	CHECK(size_of("st") > 4096);
	CHECK_INT(add_range(&ks, 100, 150), 0);
	ks.mark = 9;
	CHECK_INT(keystore_save(&ks, &e), 0);	/* then journal entries */
	CHECK_U64(ks.gen, gen);
	CHECK_INT(size_of(".st.journal"), 32 + 50 * DIGEST_BYTES + 16);
	ks.mark = 11;				/* a mark alone */
	CHECK_INT(keystore_save(&ks, &e), 0);
	CHECK_INT(size_of(".st.journal"), 32 + 50 * DIGEST_BYTES + 16 + 48);
	CHECK_INT(keystore_save(&ks, &e), 0);	/* nothing new: no entry */
	CHECK_INT(size_of(".st.journal"), 32 + 50 * DIGEST_BYTES + 16 + 48);
	keystore_close(&ks);

	CHECK_INT(keystore_open(&ks, "st", 0, 0, &e), 0);
	CHECK_U64(ks.mark, 11);
	CHECK_U64(ks.set.count, 150);
	CHECK_INT(count_range(&ks, 0, 150), 150);
	CHECK(keystore_meta_is(&ks, "def", 3));
	CHECK(!keystore_meta_is(&ks, "deg", 3));
	keystore_close(&ks);
}

TEST(keystore_torn_journal_is_cut)
{
	struct keystore ks;
	struct error e;
	int fd;

	CHECK_INT(keystore_open(&ks, "st", 0, 0, &e), 1);
	CHECK_INT(add_range(&ks, 0, 10), 0);
	CHECK_INT(keystore_save(&ks, &e), 0);
	CHECK_INT(add_range(&ks, 10, 20), 0);
	ks.mark = 20;
	CHECK_INT(keystore_save(&ks, &e), 0);
	CHECK_INT(add_range(&ks, 20, 30), 0);
	ks.mark = 30;
	CHECK_INT(keystore_save(&ks, &e), 0);
	keystore_close(&ks);
	/* the last entry torn by a crash: 5 bytes short */
	CHECK_INT(truncate(".st.journal", size_of(".st.journal") - 5), 0);
	CHECK_INT(keystore_open(&ks, "st", 0, 0, &e), 0);
	CHECK_U64(ks.mark, 20);
	CHECK_INT(count_range(&ks, 0, 30), 20);
	/* the next save cuts the torn bytes before appending */
	CHECK_INT(add_range(&ks, 30, 31), 0);
	ks.mark = 31;
	CHECK_INT(keystore_save(&ks, &e), 0);
	keystore_close(&ks);
	CHECK_INT(keystore_open(&ks, "st", 0, 0, &e), 0);
	CHECK_U64(ks.mark, 31);
	CHECK_INT(count_range(&ks, 0, 31), 21);
	keystore_close(&ks);
	/* garbage after valid entries, and a flipped byte in an entry */
	fd = open(".st.journal", O_WRONLY | O_APPEND);
	CHECK(fd != -1);
	CHECK_INT(write(fd, "garbage-garbage-garbage-garbage-garbage-garbage", 47),
	    47);
	close(fd);
	CHECK_INT(keystore_open(&ks, "st", 0, 0, &e), 0);
	CHECK_U64(ks.mark, 31);
	keystore_close(&ks);
	fd = open(".st.journal", O_WRONLY);
	CHECK_INT(pwrite(fd, "\xff", 1, 40), 1);	/* inside the first entry */
	close(fd);
	CHECK_INT(keystore_open(&ks, "st", 0, 0, &e), 0);
	CHECK_U64(ks.mark, 0);
	CHECK_INT(count_range(&ks, 0, 31), 10);
	keystore_close(&ks);
}

TEST(keystore_compaction_and_stale_journal)
{
	struct keystore ks;
	struct error e;
	char *old;
	size_t oldlen;
	uint64_t gen;
	unsigned long next = 0;
	int saves = 0;

	CHECK_INT(keystore_open(&ks, "st", 0, 0, &e), 1);
	CHECK_INT(keystore_save(&ks, &e), 0);
	gen = ks.gen;
	/* journal entries until the journal would pass 1 MiB */
	while (ks.gen == gen) {
		CHECK_INT(add_range(&ks, next, next + 5000), 0);
		next += 5000;
		ks.mark = next;
		if (saves == 1) {
			/* keep a copy of the journal as it is now */
			CHECK_INT(read_file(".st.journal", 1 << 30, &old, &oldlen),
			    0);
		}
		CHECK_INT(keystore_save(&ks, &e), 0);
		saves++;
	}
	CHECK(saves > 5);
	CHECK_INT(size_of(".st.journal"), 0);	/* compacted */
	keystore_close(&ks);
	/* a journal of the old generation, put back, is ignored */
	{
		int fd = open(".st.journal", O_WRONLY | O_TRUNC);
		CHECK(fd != -1);
		CHECK_INT(write_all(fd, old, oldlen), (ssize_t)oldlen);
		close(fd);
		free(old);
	}
	CHECK_INT(keystore_open(&ks, "st", 0, 0, &e), 0);
	CHECK_U64(ks.mark, next);
	CHECK_U64(ks.set.count, next);
	CHECK_INT(ks.jlen, 0);
	CHECK_INT(count_range(&ks, 0, next), next);
	keystore_close(&ks);
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
	CHECK_INT(keystore_save(&ks, &e), 0);	/* in the journal */
	keystore_close(&ks);
	CHECK_INT(keystore_open(&ks, "st", 1, 0.9, &e), 0);
	CHECK_INT(ks.nosigs, 0);
	CHECK_INT(ks.ix.n, 150);
	minhash_sign("word-120 a b c", 14, sig);
	CHECK_INT(minhash_index_query(&ks.ix, sig, &sim), 1);
	keystore_close(&ks);
	/* opened without signatures, and a file made without them */
	CHECK_INT(keystore_open(&ks, "st", 0, 0, &e), 0);
	CHECK_U64(ks.set.count, 150);
	keystore_close(&ks);
	CHECK_INT(keystore_open(&ks, "plain", 0, 0, &e), 1);
	CHECK_INT(add_range(&ks, 0, 10), 0);
	CHECK_INT(keystore_save(&ks, &e), 0);
	keystore_close(&ks);
	CHECK_INT(keystore_open(&ks, "plain", 1, 0.9, &e), 0);
	CHECK_INT(ks.nosigs, 1);
	keystore_close(&ks);
}

TEST(keystore_reset_rewrites)
{
	struct keystore ks;
	struct error e;

	CHECK_INT(keystore_open(&ks, "st", 0, 0, &e), 1);
	CHECK_INT(add_range(&ks, 0, 10), 0);
	ks.mark = 10;
	CHECK_INT(keystore_save(&ks, &e), 0);
	CHECK_INT(add_range(&ks, 10, 20), 0);
	CHECK_INT(keystore_save(&ks, &e), 0);
	CHECK_INT(keystore_reset(&ks, "new", 3), 0);
	CHECK_INT(add_range(&ks, 100, 105), 0);
	CHECK_INT(keystore_save(&ks, &e), 0);
	keystore_close(&ks);
	CHECK_INT(keystore_open(&ks, "st", 0, 0, &e), 0);
	CHECK_U64(ks.set.count, 5);
	CHECK_U64(ks.mark, 0);
	CHECK(keystore_meta_is(&ks, "new", 3));
	CHECK_INT(count_range(&ks, 0, 20), 0);
	keystore_close(&ks);
}

TEST(keystore_corrupt_snapshot_reported)
{
	struct keystore ks;
	struct error e;
	int fd;

	CHECK_INT(keystore_open(&ks, "st", 0, 0, &e), 1);
	CHECK_INT(add_range(&ks, 0, 10), 0);
	CHECK_INT(keystore_save(&ks, &e), 0);
	keystore_close(&ks);
	fd = open("st", O_WRONLY);
	CHECK_INT(pwrite(fd, "\x01", 1, 5000), 1);
	close(fd);
	CHECK_INT(keystore_open(&ks, "st", 0, 0, &e), -1);
	CHECK_INT(e.code, EXIT_DATAERR);
	CHECK(strstr(e.msg, "st: corrupt key set file") != NULL);
}

/*
 * A child saves key i with mark i, over and over, and tells the parent
 * each time a save returned; the parent kills it at a random moment.
 * Whatever the moment, the store opens, holds exactly keys 0..mark-1,
 * and its mark is at least the last one acknowledged.
 */
TEST(keystore_kill9_while_saving)
{
	int round;

	srand((unsigned)time(NULL) ^ (unsigned)getpid());
	for (round = 0; round < 8; round++) {
		struct keystore ks;
		struct error e;
		unsigned long acked = 0, v;
		int p[2], status, i, want = 1 + rand() % 40;
		pid_t pid;

		CHECK_INT(pipe(p), 0);
		if ((pid = fork()) == 0) {
			close(p[0]);
			if (keystore_open(&ks, "st", 1, 0.8, &e) == -1)
				_exit(1);
			for (v = ks.mark;; v++) {
				if (add_range(&ks, v, v + 1) == -1)
					_exit(2);
				ks.mark = v + 1;
				if (v % 7 == 0)
					ks.rewrite = 1;	/* a snapshot now and then */
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
		CHECK_U64(ks.set.count, ks.mark);
		CHECK_INT(count_range(&ks, 0, ks.mark + 50), ks.mark);
		CHECK_INT(ks.ix.n, ks.mark);
		keystore_close(&ks);
	}
}
