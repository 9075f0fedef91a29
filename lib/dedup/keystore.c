#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/rand.h>

#include "base/exitcode.h"
#include "base/fsutil.h"
#include "base/le.h"
#include "keystore.h"

#define K_MAGIC		"AISTKEYS"
#define K_VERSION	2
#define HDR		4096
#define MIN_BITS	10
#define MAX_BITS	40

/* the fixed part of the header, written once */
#define F_MAGIC		0	/* 8 bytes */
#define F_VERSION	8	/* u32 */
#define F_DIGEST	12	/* u32 */
#define F_CAP		16	/* u64 */
#define F_GEN		24	/* u64 */
#define F_METALEN	32	/* u32 */
#define F_SUM		40	/* 16: of [0, 40) and the metadata */
#define F_META		64	/* up to KEYSTORE_META_MAX bytes */
#define SLOT0		3584	/* two slots of SLOT_LEN */
#define SLOT_LEN	256

/* a slot of the header, and the values of a journal record */
#define S_SEQ		0
#define S_COUNT		8
#define S_ZERO		16
#define S_MARK		24
#define S_SEEN		32
#define S_UNIQUE	40
#define S_DUPS		48
#define S_NEAR		56
#define S_NSIGS		64
#define S_GEN		72
#define S_SUM		80	/* 16: of [0, 80) */
#define S_LEN		96

/* a journal record: magic, the values (S_LEN), key count, signature
 * start, then the digests, the signatures and a checksum of it all */
#define J_MAGIC		"AIJ2"
#define J_VALUES	8
#define J_N		(J_VALUES + S_LEN)		/* u32 */
#define J_SIGSTART	(J_N + 8)			/* u64 */
#define J_HEAD		(J_SIGSTART + 8)
#define J_SUM		16
#define JOURNAL_MAX	((size_t)1 << 31)

/* the signatures file: magic and generation, then the signatures */
#define G_MAGIC		"AISTSIGS"
#define G_HEAD		16

/* the earlier format (version 1) */
#define V1_J_MAGIC	"AIJ1"
#define V1_J_HEAD	32

static int
sum16(const void *p, size_t n, const void *q, size_t m, unsigned char *out)
{
	unsigned char full[32];
	unsigned len;
	EVP_MD_CTX *ctx;
	int ok;

	if ((ctx = EVP_MD_CTX_new()) == NULL)
		return -1;
	ok = EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) &&
	    EVP_DigestUpdate(ctx, p, n) &&
	    (m == 0 || EVP_DigestUpdate(ctx, q, m)) &&
	    EVP_DigestFinal_ex(ctx, full, &len);
	EVP_MD_CTX_free(ctx);
	if (!ok)
		return -1;
	memcpy(out, full, 16);
	return 0;
}

static int
new_gen(uint64_t old, uint64_t *gen)
{
	unsigned char r[8];

	do {
		if (RAND_bytes(r, sizeof(r)) != 1)
			return -1;
		*gen = get64(r);
	} while (*gen == 0 || *gen == old);
	return 0;
}

static int
pwrite_all(int fd, const void *p, size_t n, off_t off)
{
	const char *c = p;

	while (n > 0) {
		ssize_t w = pwrite(fd, c, n, off);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		c += w;
		n -= (size_t)w;
		off += w;
	}
	return 0;
}

/* Map len bytes of fd shared, for lookups and writes at random places:
 * no read-around, no large folios (which a later lookup of any run would
 * map whole, a 2 MB folio for a 16-byte slot). */
static void *
map_random(int fd, size_t len, int prot)
{
	void *m = mmap(NULL, len, prot, MAP_SHARED, fd, 0);

	if (m != MAP_FAILED) {
		madvise(m, len, MADV_RANDOM);
		madvise(m, len, MADV_NOHUGEPAGE);
	}
	return m;
}

static int
counts_equal(const struct keystore_counts *a, const struct keystore_counts *b)
{
	return a->seen == b->seen && a->unique == b->unique &&
	    a->duplicates == b->duplicates && a->near == b->near;
}

/* The values of the set after the pending keys are committed. */
static void
values_make(const struct keystore *ks, unsigned char *v, uint64_t seq,
    uint64_t count, int has_zero, uint64_t nsigs, uint64_t gen)
{
	memset(v, 0, S_LEN);
	put64(v + S_SEQ, seq);
	put64(v + S_COUNT, count);
	put64(v + S_ZERO, (uint64_t)has_zero);
	put64(v + S_MARK, ks->mark);
	put64(v + S_SEEN, ks->ctr.seen);
	put64(v + S_UNIQUE, ks->ctr.unique);
	put64(v + S_DUPS, ks->ctr.duplicates);
	put64(v + S_NEAR, ks->ctr.near);
	put64(v + S_NSIGS, nsigs);
	put64(v + S_GEN, gen);
	sum16(v, S_SUM, NULL, 0, v + S_SUM);
}

static int
values_valid(const unsigned char *v, uint64_t gen)
{
	unsigned char sum[16];

	return sum16(v, S_SUM, NULL, 0, sum) == 0 &&
	    memcmp(sum, v + S_SUM, 16) == 0 && get64(v + S_GEN) == gen;
}

/* The slot of the header holding the values of the highest sequence:
 * NULL when neither is valid. */
static const unsigned char *
header_values(const unsigned char *h, uint64_t gen)
{
	const unsigned char *a = h + SLOT0, *b = h + SLOT0 + SLOT_LEN;
	int va = values_valid(a, gen), vb = values_valid(b, gen);

	if (va && vb)
		return get64(a + S_SEQ) >= get64(b + S_SEQ) ? a : b;
	return va ? a : vb ? b : NULL;
}

/* Check the fixed part of a header read from a file of size bytes. */
static int
header_check(const char *path, const unsigned char *h, uint64_t size,
    struct error *e)
{
	unsigned char sum[16];
	uint64_t cap = get64(h + F_CAP);
	uint32_t metalen = get32(h + F_METALEN);

	if (memcmp(h + F_MAGIC, K_MAGIC, 8) != 0)
		return error_set(e, EXIT_DATAERR, "%s: not a key set file",
		    path);
	if (get32(h + F_VERSION) != K_VERSION ||
	    get32(h + F_DIGEST) != DIGEST_BYTES)
		return error_set(e, EXIT_DATAERR, "%s: unknown version of the "
		    "key set file", path);
	if (cap < ((uint64_t)1 << MIN_BITS) || cap > ((uint64_t)1 << MAX_BITS) ||
	    (cap & (cap - 1)) != 0 || metalen > KEYSTORE_META_MAX ||
	    sum16(h, F_SUM, h + F_META, metalen, sum) == -1 ||
	    memcmp(sum, h + F_SUM, 16) != 0)
		return error_set(e, EXIT_DATAERR, "%s: corrupt key set file "
		    "(bad header)", path);
	if (size != HDR + cap * DIGEST_BYTES)
		return error_set(e, EXIT_DATAERR, "%s: corrupt key set file "
		    "(%llu bytes where its header says %llu)", path,
		    (unsigned long long)size,
		    (unsigned long long)(HDR + cap * DIGEST_BYTES));
	return 0;
}

/* Check a slot's values against the capacity. */
static int
values_check(const char *path, const unsigned char *v, uint64_t cap,
    struct error *e)
{
	if (v == NULL)
		return error_set(e, EXIT_DATAERR, "%s: corrupt key set file "
		    "(no valid header values)", path);
	if (get64(v + S_COUNT) > cap / 4 * 3 + 1 || get64(v + S_ZERO) > 1 ||
	    get64(v + S_NSIGS) > get64(v + S_COUNT) ||
	    get64(v + S_DUPS) > get64(v + S_SEEN) ||
	    get64(v + S_NEAR) > get64(v + S_DUPS))
		return error_set(e, EXIT_DATAERR, "%s: corrupt key set file "
		    "(count)", path);
	return 0;
}

/* Take the values v into ks (the set's count and zero flag included). */
static void
values_take(struct keystore *ks, const unsigned char *v)
{
	ks->seq = get64(v + S_SEQ);
	ks->set.count = get64(v + S_COUNT);
	ks->set.has_zero = get64(v + S_ZERO) != 0;
	ks->mark = ks->saved_mark = get64(v + S_MARK);
	ks->ctr.seen = get64(v + S_SEEN);
	ks->ctr.unique = get64(v + S_UNIQUE);
	ks->ctr.duplicates = get64(v + S_DUPS);
	ks->ctr.near = get64(v + S_NEAR);
	ks->saved_ctr = ks->ctr;
	ks->nsigs = get64(v + S_NSIGS);
}

static void
unmap_table(struct keystore *ks)
{
	if (ks->map != NULL)
		munmap(ks->map, ks->maplen);
	if (ks->fd != -1)
		close(ks->fd);
	ks->map = NULL;
	ks->maplen = 0;
	ks->fd = -1;
	memset(&ks->set, 0, sizeof(ks->set));
}

/* Write the signatures sig[0..n) at index start of the signatures file
 * and sync it; a new file (start 0) gets the generation. */
static int
sigs_write(struct keystore *ks, const char *path, uint64_t gen,
    uint64_t start, const void *sig, size_t bytes, struct error *e)
{
	unsigned char head[G_HEAD];
	int fd, flags = O_RDWR | O_CREAT | O_CLOEXEC;

	if (start == 0)
		flags |= O_TRUNC;
	if ((fd = open(path, flags, 0600)) == -1)
		return error_errno(e, error_code_for_errno(errno), "%s", path);
	memcpy(head, G_MAGIC, 8);
	put64(head + 8, gen);
	if ((start == 0 && pwrite_all(fd, head, G_HEAD, 0) == -1) ||
	    (bytes > 0 && pwrite_all(fd, sig, bytes, (off_t)(G_HEAD +
	    start * MINHASH_SIG)) == -1) || fdatasync_fd(fd) == -1) {
		error_errno(e, error_code_for_errno(errno), "%s", path);
		close(fd);
		return -1;
	}
	close(fd);
	(void)ks;
	return 0;
}

/* The band table file: header fields */
#define B_MAGIC		"AISTBAND"
#define B_VERSION	1
#define B_ROWS		12	/* u32 */
#define B_GEN		16	/* u64 */
#define B_COVERED	24	/* u64: signatures 1..covered are in */
#define B_CAP		32	/* u64: pairs */
#define B_USED		40	/* u64 */
#define B_SUM		48	/* 16: of [0, 48) */
#define BHDR		4096
#define B_MIN_CAP	1024

static void
bands_unmap(struct keystore *ks)
{
	if (ks->bandmap != NULL)
		munmap(ks->bandmap, ks->bandmaplen);
	if (ks->sigmap != NULL)
		munmap(ks->sigmap, ks->sigmaplen);
	ks->bandmap = ks->sigmap = NULL;
	ks->bandmaplen = ks->sigmaplen = 0;
	memset(&ks->mix, 0, sizeof(ks->mix));
}

static void
bands_header(unsigned char *h, unsigned rows, uint64_t gen, uint64_t covered,
    uint64_t cap, uint64_t used)
{
	memcpy(h, B_MAGIC, 8);
	put32(h + 8, B_VERSION);
	put32(h + B_ROWS, rows);
	put64(h + B_GEN, gen);
	put64(h + B_COVERED, covered);
	put64(h + B_CAP, cap);
	put64(h + B_USED, used);
	sum16(h, B_SUM, NULL, 0, h + B_SUM);
}

/* Map a band table file of cap pairs, opened as fd (closed here). */
static int
bands_map(struct keystore *ks, int fd, uint64_t cap, uint64_t used,
    struct error *e)
{
	size_t len = BHDR + (size_t)cap * 8;
	void *m;

	m = map_random(fd, len, PROT_READ | PROT_WRITE);
	close(fd);
	if (m == MAP_FAILED)
		return error_errno(e, EXIT_IOERR, "%s", ks->bandpath);
	ks->bandmap = m;
	ks->bandmaplen = len;
	minhash_index_attach(&ks->mix, ks->threshold, ks->sigmap + G_HEAD,
	    (size_t)ks->nsigs, (uint32_t *)(void *)(ks->bandmap + BHDR),
	    (size_t)cap, (size_t)used);
	return 0;
}

/* Write a band table of every committed signature, renamed over the
 * file, and map it. */
static int
bands_build(struct keystore *ks, struct error *e)
{
	char tmp[PATH_MAX + 8];
	unsigned char *m;
	uint64_t cap = B_MIN_CAP, i, need;
	struct minhash_index t;
	size_t len;
	int fd;

	minhash_index_attach(&t, ks->threshold, ks->sigmap + G_HEAD,
	    (size_t)ks->nsigs, NULL, 0, 0);
	need = ks->nsigs * t.bands;
	/* at most 3/8 full when made: room for as much again */
	while (cap < ((uint64_t)1 << 40) && cap / 8 * 3 < need)
		cap *= 2;
	len = BHDR + (size_t)cap * 8;
	snprintf(tmp, sizeof(tmp), "%s.tmp", ks->bandpath);
	if ((fd = open(tmp, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600)) ==
	    -1)
		return error_errno(e, error_code_for_errno(errno), "%s", tmp);
	if (ftruncate(fd, (off_t)len) == -1 || (m = map_random(fd, len,
	    PROT_READ | PROT_WRITE)) == MAP_FAILED) {
		error_errno(e, error_code_for_errno(errno), "%s", tmp);
		close(fd);
		unlink(tmp);
		return -1;
	}
	minhash_index_attach(&t, ks->threshold, ks->sigmap + G_HEAD,
	    (size_t)ks->nsigs, (uint32_t *)(void *)(m + BHDR), (size_t)cap, 0);
	for (i = 0; i < ks->nsigs; i++)
		(void)minhash_index_put(&t, ks->sigmap + G_HEAD +
		    i * MINHASH_SIG, (uint32_t)(i + 1));
	bands_header(m, t.rows, ks->gen, ks->nsigs, cap, t.used);
	if (msync(m, len, MS_SYNC) == -1 || fsync_fd(fd) == -1 ||
	    rename(tmp, ks->bandpath) == -1) {
		error_errno(e, EXIT_IOERR, "%s", tmp);
		munmap(m, len);
		close(fd);
		unlink(tmp);
		return -1;
	}
	munmap(m, len);
	return bands_map(ks, fd, cap, t.used, e);
}

/*
 * The band table of the committed signatures: mapped, with the bands of
 * the signatures committed since it last covered them added, or made
 * anew when it does not fit this set (see keystore.h).
 */
static int
bands_open(struct keystore *ks, struct error *e)
{
	unsigned char h[BHDR], sum[16];
	struct stat st;
	uint64_t cap, covered, used, i, need;
	unsigned rows = minhash_rows(ks->threshold);
	int fd;

	if ((fd = open(ks->bandpath, O_RDWR | O_CLOEXEC)) == -1) {
		if (errno != ENOENT)
			return error_errno(e, EXIT_IOERR, "%s", ks->bandpath);
		return bands_build(ks, e);
	}
	if (fstat(fd, &st) == -1 || pread_full(fd, h, BHDR, 0) != BHDR) {
		close(fd);
		return bands_build(ks, e);
	}
	cap = get64(h + B_CAP);
	covered = get64(h + B_COVERED);
	used = get64(h + B_USED);
	need = (ks->nsigs > covered ? ks->nsigs - covered : 0) *
	    (MINHASH_PERM / rows);
	if (memcmp(h, B_MAGIC, 8) != 0 || get32(h + 8) != B_VERSION ||
	    get32(h + B_ROWS) != rows || get64(h + B_GEN) != ks->gen ||
	    sum16(h, B_SUM, NULL, 0, sum) == -1 ||
	    memcmp(sum, h + B_SUM, 16) != 0 || cap < B_MIN_CAP ||
	    cap > ((uint64_t)1 << 40) || (cap & (cap - 1)) != 0 ||
	    (uint64_t)st.st_size != BHDR + cap * 8 || covered > ks->nsigs ||
	    used + need > cap / 4 * 3) {
		close(fd);
		return bands_build(ks, e);
	}
	if (bands_map(ks, fd, cap, used, e) == -1)
		return -1;
	if (covered == ks->nsigs)
		return 0;
	for (i = covered; i < ks->nsigs; i++)
		(void)minhash_index_put(&ks->mix, ks->sigmap + G_HEAD +
		    i * MINHASH_SIG, (uint32_t)(i + 1));
	/* the pairs on disk before the header says they are */
	bands_header(h, rows, ks->gen, ks->nsigs, cap, ks->mix.used);
	if (msync(ks->bandmap + BHDR, ks->bandmaplen - BHDR, MS_SYNC) == -1)
		return error_errno(e, EXIT_IOERR, "%s", ks->bandpath);
	memcpy(ks->bandmap, h, B_SUM + 16);
	if (msync(ks->bandmap, BHDR, MS_SYNC) == -1)
		return error_errno(e, EXIT_IOERR, "%s", ks->bandpath);
	return 0;
}

/* Map the committed signatures and their band table; a file that does
 * not hold them all sets nosigs. */
static int
sigs_load(struct keystore *ks, struct error *e)
{
	unsigned char head[G_HEAD];
	size_t len = G_HEAD + (size_t)ks->nsigs * MINHASH_SIG;
	struct stat st;
	void *m;
	int fd;

	if (ks->nsigs != ks->set.count)
		ks->nosigs = 1;		/* made without them */
	if (ks->nsigs == 0 || ks->nosigs)
		return 0;
	if ((fd = open(ks->sigpath, O_RDONLY | O_CLOEXEC)) == -1) {
		if (errno == ENOENT) {
			ks->nosigs = 1;
			return 0;
		}
		return error_errno(e, EXIT_IOERR, "%s", ks->sigpath);
	}
	if (fstat(fd, &st) == -1) {
		close(fd);
		return error_errno(e, EXIT_IOERR, "%s", ks->sigpath);
	}
	if ((uint64_t)st.st_size < len || pread_full(fd, head, G_HEAD, 0) !=
	    G_HEAD || memcmp(head, G_MAGIC, 8) != 0 ||
	    get64(head + 8) != ks->gen) {
		close(fd);
		ks->nosigs = 1;
		return 0;
	}
	m = map_random(fd, len, PROT_READ);
	close(fd);
	if (m == MAP_FAILED)
		return error_errno(e, EXIT_IOERR, "%s", ks->sigpath);
	ks->sigmap = m;
	ks->sigmaplen = len;
	return bands_open(ks, e);
}

int
keystore_near(const struct keystore *ks, const unsigned char *sig,
    double *sim)
{
	if (ks->mix.table != NULL && minhash_index_query(&ks->mix, sig, sim))
		return 1;
	return minhash_index_query(&ks->ix, sig, sim);
}

/*
 * Make the set's values v durable in the header: the slots the keys went
 * into are synced first (msync writes only the dirty pages), then the
 * older header slot gets v and the header page is synced.  So a header
 * on disk never describes keys that are not: only the next record of
 * the journal ever needs replaying.
 */
static int
header_commit(struct keystore *ks, const unsigned char *v, struct error *e)
{
	const unsigned char *cur = header_values(ks->map, ks->gen);
	unsigned char *slot = ks->map + SLOT0;

	if (msync(ks->map + HDR, ks->maplen - HDR, MS_SYNC) == -1)
		return error_errno(e, EXIT_IOERR, "%s", ks->path);
	if (cur == slot)
		slot += SLOT_LEN;
	memcpy(slot, v, S_LEN);
	if (msync(ks->map, HDR, MS_SYNC) == -1)
		return error_errno(e, EXIT_IOERR, "%s", ks->path);
	return 0;
}

/* Put digests d[0..n) into the mapped table. */
static int
table_put(struct keystore *ks, const unsigned char *d, size_t n,
    struct error *e)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (digestset_put(&ks->set, d + i * DIGEST_BYTES) == -1)
			return error_set(e, EXIT_DATAERR, "%s: corrupt key set "
			    "file (no free slot)", ks->path);
	return 0;
}

/*
 * Replay the journal's record when it is complete, of this table's
 * generation and of the next sequence (a commit that a crash cut short
 * after its commit point): its keys go into the table (some perhaps
 * again, harmlessly) and its values into the header.
 */
static int
journal_replay(struct keystore *ks, struct error *e)
{
	const unsigned char *p, *v;
	unsigned char sum[J_SUM], head[J_HEAD];
	char *data = NULL;
	size_t len;
	uint64_t n, sigstart, seq, size, sigbytes;
	struct stat st;
	ssize_t got;
	int fd;

	/* the record's head first: the file may be longer than the record */
	if ((fd = open(ks->journal, O_RDONLY | O_CLOEXEC)) == -1) {
		if (errno == ENOENT)
			return 0;
		return error_errno(e, EXIT_IOERR, "%s", ks->journal);
	}
	if (fstat(fd, &st) == -1 || (got = pread_full(fd, head, J_HEAD, 0)) ==
	    -1) {
		close(fd);
		return error_errno(e, EXIT_IOERR, "%s", ks->journal);
	}
	v = head + J_VALUES;
	/* a record already applied (the usual case) is not read further:
	 * after a large commit, such as a rebuild's, it would cost every
	 * later open the read and checksum of megabytes */
	if (got < J_HEAD || memcmp(head, J_MAGIC, 4) != 0 ||
	    get64(v + S_SEQ) != ks->seq + 1 || !values_valid(v, ks->gen)) {
		close(fd);
		return 0;
	}
	n = get32(head + J_N);
	sigstart = get64(head + J_SIGSTART);
	size = J_HEAD + n * DIGEST_BYTES + J_SUM;
	if (get64(v + S_NSIGS) >= sigstart)
		size += (get64(v + S_NSIGS) - sigstart) * MINHASH_SIG;
	if (size > (uint64_t)st.st_size || size > JOURNAL_MAX ||
	    (data = malloc((size_t)size)) == NULL ||
	    pread_full(fd, data, (size_t)size, 0) != (ssize_t)size) {
		free(data);
		close(fd);
		return 0;	/* torn or unreadable: not a commit */
	}
	close(fd);
	len = (size_t)size;
	p = (const unsigned char *)data;
	v = p + J_VALUES;
	n = get32(p + J_N);
	sigstart = get64(p + J_SIGSTART);
	seq = get64(v + S_SEQ);
	if (get64(v + S_NSIGS) < sigstart || n > len / DIGEST_BYTES)
		goto ignore;
	sigbytes = (get64(v + S_NSIGS) - sigstart) * MINHASH_SIG;
	if (sigbytes > len)
		goto ignore;
	size = J_HEAD + n * DIGEST_BYTES + sigbytes + J_SUM;
	if (size > len || sum16(p, (size_t)size - J_SUM, NULL, 0, sum) == -1 ||
	    memcmp(sum, p + size - J_SUM, J_SUM) != 0 ||
	    !values_valid(v, ks->gen) || seq != ks->seq + 1)
		goto ignore;
	if (values_check(ks->journal, v, ks->set.cap, e) == -1 ||
	    table_put(ks, p + J_HEAD, (size_t)n, e) == -1 ||
	    (sigbytes > 0 && sigs_write(ks, ks->sigpath, ks->gen, sigstart,
	    p + J_HEAD + n * DIGEST_BYTES, (size_t)sigbytes, e) == -1) ||
	    header_commit(ks, v, e) == -1) {
		free(data);
		return -1;
	}
	values_take(ks, v);
ignore:
	free(data);
	return 0;
}

/* Map the table file fd of size bytes with header h (checked). */
static int
map_table(struct keystore *ks, int fd, const unsigned char *h, uint64_t size,
    struct error *e)
{
	struct stat st;
	void *m;

	m = map_random(fd, (size_t)size, PROT_READ | PROT_WRITE);
	if (m == MAP_FAILED)
		return error_errno(e, EXIT_IOERR, "%s", ks->path);
	ks->fd = fd;
	ks->map = m;
	ks->maplen = (size_t)size;
	/* the size again, now that it is mapped: a shorter file would be
	 * a SIGBUS at the first lookup past its end */
	if (fstat(fd, &st) == -1)
		return error_errno(e, EXIT_IOERR, "%s", ks->path);
	if ((uint64_t)st.st_size != size)
		return error_set(e, EXIT_DATAERR, "%s: corrupt key set file "
		    "(truncated while opened)", ks->path);
	digestset_attach(&ks->set, ks->map + HDR, get64(h + F_CAP), 0, 0);
	ks->gen = get64(h + F_GEN);
	return 0;
}

static int pend_add(struct keystore *, const unsigned char *,
    const unsigned char *);

/*
 * Load a set of the earlier format (a snapshot read whole, and its
 * journal) as keys to add: the first save writes the new format.
 */
static int
load_v1(struct keystore *ks, struct error *e)
{
	struct digestset old = { 0 };
	struct buf meta = BUF_INIT, sigs = BUF_INIT;
	char *data = NULL;
	size_t len = 0, off = 0;
	uint64_t gen, i;
	int rc = -1;

	if (digestset_load(&old, ks->path, &meta, ks->near ? &sigs : NULL,
	    e) != 0)
		goto out;
	if (meta.len < 16) {
		error_set(e, EXIT_DATAERR, "%s: corrupt key set file "
		    "(metadata)", ks->path);
		goto out;
	}
	gen = get64((unsigned char *)meta.data);
	ks->mark = get64((unsigned char *)meta.data + 8);
	if (buf_append(&ks->meta, meta.data + 16, meta.len - 16) == -1)
		goto nomem;
	if (ks->near && sigs.len != old.count * MINHASH_SIG)
		ks->nosigs = 1;
	for (i = 0; i < old.cap; i++) {
		const unsigned char *d = old.slots + i * DIGEST_BYTES;
		static const unsigned char zero[DIGEST_BYTES];
		if (memcmp(d, zero, DIGEST_BYTES) != 0 &&
		    pend_add(ks, d, NULL) == -1)
			goto nomem;
	}
	if (old.has_zero) {
		static const unsigned char zero[DIGEST_BYTES];
		if (pend_add(ks, zero, NULL) == -1)
			goto nomem;
	}
	if (ks->near && !ks->nosigs && (minhash_index_load(&ks->ix, sigs.data,
	    sigs.len) == -1 || buf_append(&ks->pendsig, sigs.data,
	    sigs.len) == -1))
		goto nomem;
	/* the journal's entries of that snapshot */
	if (read_file(ks->journal, JOURNAL_MAX, &data, &len) == -1)
		len = 0;
	while (len - off >= V1_J_HEAD + 16) {
		const unsigned char *p = (const unsigned char *)data + off;
		uint32_t n = get32(p + 4), sigbytes = get32(p + 24);
		uint64_t size;
		unsigned char sum[16];

		if (memcmp(p, V1_J_MAGIC, 4) != 0 || get64(p + 8) != gen ||
		    (sigbytes != 0 && sigbytes != (uint64_t)n * MINHASH_SIG))
			break;
		size = V1_J_HEAD + (uint64_t)n * DIGEST_BYTES + sigbytes + 16;
		if (size > len - off || sum16(p, (size_t)size - 16, NULL, 0,
		    sum) == -1 || memcmp(sum, p + size - 16, 16) != 0)
			break;
		for (i = 0; i < n; i++) {
			const unsigned char *d = p + V1_J_HEAD + i * DIGEST_BYTES;
			const unsigned char *sg = p + V1_J_HEAD +
			    (uint64_t)n * DIGEST_BYTES + i * MINHASH_SIG;
			int r;
			if (keystore_has(ks, d))
				continue;
			if (ks->near && sigbytes == 0)
				ks->nosigs = 1;
			r = ks->near && !ks->nosigs ? keystore_add(ks, d, sg) :
			    pend_add(ks, d, NULL);
			if (r == -1)
				goto nomem;
		}
		ks->mark = get64(p + 16);
		off += (size_t)size;
	}
	ks->rewrite = 1;
	rc = 0;
	goto out;
nomem:
	error_errno(e, EXIT_SOFTWARE, "%s", ks->path);
out:
	digestset_release(&old);
	free(data);
	buf_release(&meta);
	buf_release(&sigs);
	return rc;
}

int
keystore_open(struct keystore *ks, const char *path, int near, double t,
    struct error *e)
{
	char dir[PATH_MAX];
	const char *base = path_basename(path);
	unsigned char h[HDR];
	const unsigned char *v;
	struct stat st;
	ssize_t got;
	int fd;

	memset(ks, 0, sizeof(*ks));
	ks->fd = -1;
	ks->fd_journal = -1;
	path_dirname(path, dir, sizeof(dir));
	if (snprintf(ks->path, sizeof(ks->path), "%s", path) >=
	    (int)sizeof(ks->path) ||
	    snprintf(ks->journal, sizeof(ks->journal), "%s/.%s.journal", dir,
	    base) >= (int)sizeof(ks->journal) ||
	    snprintf(ks->sigpath, sizeof(ks->sigpath), "%s/.%s.sigs", dir,
	    base) >= (int)sizeof(ks->sigpath) ||
	    snprintf(ks->tmp, sizeof(ks->tmp), "%s/.%s.tmp", dir, base) >=
	    (int)sizeof(ks->tmp) ||
	    snprintf(ks->bandpath, sizeof(ks->bandpath), "%s/.%s.bands", dir,
	    base) >= (int)sizeof(ks->bandpath))
		return error_set(e, EXIT_USAGE, "%s: path too long", path);
	ks->near = near;
	ks->threshold = t;
	if (near && minhash_index_init(&ks->ix, t) == -1)
		return error_errno(e, EXIT_SOFTWARE, "%s", path);
	if (digestset_init(&ks->pend, 0) == -1) {
		error_errno(e, EXIT_SOFTWARE, "%s", path);
		goto fail;
	}
	if ((fd = open(path, O_RDWR | O_CLOEXEC)) == -1) {
		if (errno == ENOENT) {
			ks->rewrite = 1;	/* none yet: the first save */
			return 1;
		}
		error_errno(e, errno == EACCES ? EXIT_NOINPUT : EXIT_IOERR,
		    "%s", path);
		goto fail;
	}
	if (fstat(fd, &st) == -1 || (got = pread_full(fd, h, HDR, 0)) == -1) {
		error_errno(e, EXIT_IOERR, "%s", path);
		close(fd);
		goto fail;
	}
	if (got >= 8 && memcmp(h, "AISTDSET", 8) == 0) {
		close(fd);
		if (load_v1(ks, e) == -1)
			goto fail;
		return 0;
	}
	if (got < HDR) {
		error_set(e, EXIT_DATAERR, "%s: not a key set file", path);
		close(fd);
		goto fail;
	}
	if (header_check(path, h, (uint64_t)st.st_size, e) == -1) {
		close(fd);
		goto fail;
	}
	if (map_table(ks, fd, h, (uint64_t)st.st_size, e) == -1)
		goto fail;
	v = header_values(ks->map, ks->gen);
	if (values_check(path, v, ks->set.cap, e) == -1)
		goto fail;
	values_take(ks, v);
	if (buf_append(&ks->meta, ks->map + F_META,
	    get32(ks->map + F_METALEN)) == -1) {
		error_errno(e, EXIT_SOFTWARE, "%s", path);
		goto fail;
	}
	if (journal_replay(ks, e) == -1 || (near && sigs_load(ks, e) == -1))
		goto fail;
	return 0;
fail:
	keystore_close(ks);
	return -1;
}

int
keystore_has(const struct keystore *ks, const unsigned char *d)
{
	if (ks->map != NULL && digestset_has(&ks->set, d))
		return 1;
	return ks->npend > 0 && digestset_has(&ks->pend, d);
}

void
keystore_prefetch(const struct keystore *ks, const unsigned char *d)
{
	if (ks->map != NULL)
		digestset_prefetch(&ks->set, d);
}

uint64_t
keystore_count(const struct keystore *ks)
{
	return (ks->map != NULL ? ks->set.count : 0) + ks->npend;
}

/* Add a key known not to be a member to the pending ones. */
static int
pend_add(struct keystore *ks, const unsigned char *d, const unsigned char *sig)
{
	if (digestset_add(&ks->pend, d) == -1 ||
	    buf_append(&ks->pendlist, d, DIGEST_BYTES) == -1)
		return -1;
	if (sig != NULL && (minhash_index_add(&ks->ix, sig) == -1 ||
	    buf_append(&ks->pendsig, sig, MINHASH_SIG) == -1))
		return -1;
	ks->npend++;
	return 0;
}

int
keystore_add(struct keystore *ks, const unsigned char *digest,
    const unsigned char *sig)
{
	if (keystore_has(ks, digest))
		return 0;
	return pend_add(ks, digest, ks->near ? sig : NULL) == -1 ? -1 : 1;
}

int
keystore_reset(struct keystore *ks, const void *meta, size_t metalen)
{
	double t = ks->ix.threshold;

	unmap_table(ks);
	bands_unmap(ks);
	digestset_release(&ks->pend);
	if (digestset_init(&ks->pend, 0) == -1)
		return -1;
	if (ks->near) {
		minhash_index_release(&ks->ix);
		if (minhash_index_init(&ks->ix, t) == -1)
			return -1;
	}
	ks->meta.len = 0;
	if (buf_append(&ks->meta, meta, metalen) == -1)
		return -1;
	ks->mark = 0;
	ks->pendlist.len = ks->pendsig.len = 0;
	ks->npend = 0;
	ks->nsigs = 0;
	ks->nosigs = 0;
	ks->rewrite = 1;
	return 0;
}

int
keystore_meta_is(const struct keystore *ks, const void *meta, size_t metalen)
{
	return ks->meta.len == metalen &&
	    (metalen == 0 || memcmp(ks->meta.data, meta, metalen) == 0);
}

static void
pend_clear(struct keystore *ks)
{
	digestset_release(&ks->pend);
	digestset_init(&ks->pend, 0);
	ks->pendlist.len = ks->pendsig.len = 0;
	ks->npend = 0;
	ks->saved_mark = ks->mark;
	ks->saved_ctr = ks->ctr;
}

/*
 * The pending signatures of --near, appended to the signatures file (a
 * new one, renamed into place, for a new generation); *nsigs gets the
 * count of signatures the table will stand for.
 */
static int
table_sigs(struct keystore *ks, uint64_t gen, uint64_t *nsigs,
    struct error *e)
{
	char sigtmp[PATH_MAX + 8];

	*nsigs = ks->map != NULL ? ks->nsigs : 0;
	if (!ks->near || ks->pendsig.len == 0)
		return 0;
	snprintf(sigtmp, sizeof(sigtmp), "%s.tmp", ks->sigpath);
	if (sigs_write(ks, *nsigs == 0 ? sigtmp : ks->sigpath, gen, *nsigs,
	    ks->pendsig.data, ks->pendsig.len, e) == -1)
		return -1;
	if (*nsigs == 0 && rename(sigtmp, ks->sigpath) == -1)
		return error_errno(e, EXIT_IOERR, "%s", ks->sigpath);
	*nsigs += ks->pendsig.len / MINHASH_SIG;
	return 0;
}

/* The fixed header of a new table of cap slots at m. */
static void
table_header(const struct keystore *ks, unsigned char *m, uint64_t cap,
    uint64_t gen)
{
	memcpy(m + F_MAGIC, K_MAGIC, 8);
	put32(m + F_VERSION, K_VERSION);
	put32(m + F_DIGEST, DIGEST_BYTES);
	put64(m + F_CAP, cap);
	put64(m + F_GEN, gen);
	put32(m + F_METALEN, (uint32_t)ks->meta.len);
	if (ks->meta.len > 0)
		memcpy(m + F_META, ks->meta.data, ks->meta.len);
	sum16(m, F_SUM, m + F_META, ks->meta.len, m + F_SUM);
}

/*
 * Put the committed keys (when a table is mapped: its slots in order,
 * their pages let go once copied) and the pending ones into n; -1 when
 * n has no free slot left.
 */
static int
table_fill(struct keystore *ks, struct digestset *n)
{
	static const unsigned char zero[DIGEST_BYTES];
	const size_t chunk = 1 << 20;
	size_t total, off, end, j;
	uint64_t i;

	if (ks->map != NULL) {
		total = (size_t)ks->set.cap * DIGEST_BYTES;
		for (off = 0; off < total; off += chunk) {
			end = off + chunk < total ? off + chunk : total;
			for (j = off; j < end; j += DIGEST_BYTES)
				if (memcmp(ks->set.slots + j, zero,
				    DIGEST_BYTES) != 0)
					digestset_put(n, ks->set.slots + j);
			madvise(ks->set.slots + off, end - off, MADV_DONTNEED);
		}
		if (ks->set.has_zero)
			digestset_put(n, zero);
	}
	for (i = 0; i < ks->npend; i++)
		if (digestset_put(n, (unsigned char *)ks->pendlist.data +
		    i * DIGEST_BYTES) == -1)
			return -1;
	return 0;
}

/*
 * Write a new table holding the committed keys (when one is mapped) and
 * the pending ones, sized for count keys, to the temporary name; sync it
 * and rename it over the table.  A first table or a rebuild (none
 * mapped) gets a new generation and a new signatures file, renamed
 * first: a crash between the renames leaves a table whose signatures
 * are missing, which callers rebuild.  Growth keeps the generation and
 * appends to the signatures file.
 */
static int
table_write(struct keystore *ks, uint64_t count, struct error *e)
{
	char dir[PATH_MAX];
	unsigned char *m, v[S_LEN];
	unsigned bits = MIN_BITS;
	uint64_t cap, gen = ks->gen, nsigs;
	struct digestset n;
	size_t len;
	int fd, has_zero;

	if (ks->meta.len > KEYSTORE_META_MAX)
		return error_set(e, EXIT_SOFTWARE, "%s: metadata too long",
		    ks->path);
	if (ks->map != NULL && ks->set.bits > bits)
		bits = ks->set.bits;
	while (bits < MAX_BITS && ((uint64_t)1 << bits) / 4 * 3 < count)
		bits++;
	cap = (uint64_t)1 << bits;
	len = HDR + (size_t)cap * DIGEST_BYTES;
	if (ks->map == NULL && new_gen(ks->gen, &gen) == -1)
		return error_set(e, EXIT_SOFTWARE, "%s: no random bytes",
		    ks->path);
	if (table_sigs(ks, gen, &nsigs, e) == -1)
		return -1;
	if ((fd = open(ks->tmp, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC,
	    0600)) == -1)
		return error_errno(e, error_code_for_errno(errno), "%s",
		    ks->tmp);
	if (ftruncate(fd, (off_t)len) == -1) {
		error_errno(e, error_code_for_errno(errno), "%s", ks->tmp);
		goto fail;
	}
	m = map_random(fd, len, PROT_READ | PROT_WRITE);
	if (m == MAP_FAILED) {
		error_errno(e, EXIT_IOERR, "%s", ks->tmp);
		goto fail;
	}
	table_header(ks, m, cap, gen);
	digestset_attach(&n, m + HDR, cap, 0, 0);
	if (table_fill(ks, &n) == -1) {
		error_set(e, EXIT_DATAERR, "%s: corrupt key set file (no free "
		    "slot)", ks->path);
		munmap(m, len);
		goto fail;
	}
	has_zero = n.has_zero;
	values_make(ks, v, ks->seq + 1, n.count, has_zero, nsigs, gen);
	memcpy(m + SLOT0, v, S_LEN);
	if (msync(m, len, MS_SYNC) == -1 || fsync_fd(fd) == -1) {
		error_errno(e, EXIT_IOERR, "%s", ks->tmp);
		munmap(m, len);
		goto fail;
	}
	if (rename(ks->tmp, ks->path) == -1) {
		error_errno(e, EXIT_IOERR, "%s", ks->path);
		munmap(m, len);
		goto fail;
	}
	path_dirname(ks->path, dir, sizeof(dir));
	if (fsync_dir(dir) == -1) {
		munmap(m, len);
		close(fd);
		return error_errno(e, EXIT_IOERR, "%s", dir);
	}
	unmap_table(ks);
	ks->fd = fd;
	ks->map = m;
	ks->maplen = len;
	ks->set = n;
	ks->gen = gen;
	ks->seq++;
	ks->nsigs = nsigs;
	ks->rewrite = 0;
	pend_clear(ks);
	return 0;
fail:
	close(fd);
	unlink(ks->tmp);
	return -1;
}

/* Commit the pending keys into the mapped table through the journal. */
static int
journal_commit(struct keystore *ks, uint64_t count, struct error *e)
{
	struct buf b = BUF_INIT;
	unsigned char head[J_HEAD], sum[J_SUM];
	uint64_t nsigs = ks->nsigs + ks->pendsig.len / MINHASH_SIG;
	int created = 0, has_zero = ks->set.has_zero;
	struct stat jst;

	if (ks->npend > 0 && digestset_has(&ks->pend,
	    (const unsigned char *)"\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0"))
		has_zero = 1;
	memset(head, 0, sizeof(head));
	memcpy(head, J_MAGIC, 4);
	values_make(ks, head + J_VALUES, ks->seq + 1, count, has_zero, nsigs,
	    ks->gen);
	put32(head + J_N, (uint32_t)ks->npend);
	put64(head + J_SIGSTART, ks->nsigs);
	if (buf_append(&b, head, sizeof(head)) == -1 ||
	    buf_append(&b, ks->pendlist.data != NULL ? ks->pendlist.data : "",
	    ks->pendlist.len) == -1 ||
	    buf_append(&b, ks->pendsig.data != NULL ? ks->pendsig.data : "",
	    ks->pendsig.len) == -1 ||
	    sum16(b.data, b.len, NULL, 0, sum) == -1 ||
	    buf_append(&b, sum, sizeof(sum)) == -1) {
		buf_release(&b);
		return error_errno(e, EXIT_SOFTWARE, "%s", ks->journal);
	}
	if (ks->fd_journal == -1) {
		if ((ks->fd_journal = open(ks->journal, O_RDWR | O_CLOEXEC)) ==
		    -1 && errno == ENOENT) {
			ks->fd_journal = open(ks->journal, O_RDWR | O_CREAT |
			    O_CLOEXEC, 0600);
			created = 1;
		}
		if (ks->fd_journal == -1) {
			buf_release(&b);
			return error_errno(e, error_code_for_errno(errno),
			    "%s", ks->journal);
		}
	}
	/* the commit point: the record complete on disk (a file left long
	 * by a large record is cut back, in the same sync) */
	if (pwrite_all(ks->fd_journal, b.data, b.len, 0) == -1 ||
	    (fstat(ks->fd_journal, &jst) == 0 && jst.st_size > (off_t)b.len &&
	    jst.st_size > (1 << 20) &&
	    ftruncate(ks->fd_journal, (off_t)b.len) == -1) ||
	    fdatasync_fd(ks->fd_journal) == -1) {
		buf_release(&b);
		return error_errno(e, error_code_for_errno(errno), "%s",
		    ks->journal);
	}
	if (created) {
		char dir[PATH_MAX];
		path_dirname(ks->journal, dir, sizeof(dir));
		if (fsync_dir(dir) == -1) {
			buf_release(&b);
			return error_errno(e, EXIT_IOERR, "%s", dir);
		}
	}
	/* from here the record is committed: its sequence is spent even if
	 * applying it fails (the next open replays it) */
	ks->seq++;
	if (table_put(ks, (unsigned char *)ks->pendlist.data, ks->npend,
	    e) == -1 || (ks->pendsig.len > 0 && sigs_write(ks, ks->sigpath,
	    ks->gen, ks->nsigs, ks->pendsig.data, ks->pendsig.len, e) == -1) ||
	    header_commit(ks, head + J_VALUES, e) == -1) {
		buf_release(&b);
		return -1;
	}
	buf_release(&b);
	ks->set.count = count;
	ks->set.has_zero = has_zero;
	ks->nsigs = nsigs;
	pend_clear(ks);
	return 0;
}

int
keystore_save(struct keystore *ks, struct error *e)
{
	uint64_t count;

	if (!ks->rewrite && ks->npend == 0 && ks->mark == ks->saved_mark &&
	    counts_equal(&ks->ctr, &ks->saved_ctr))
		return 0;
	if (ks->meta.len > KEYSTORE_META_MAX)
		return error_set(e, EXIT_SOFTWARE, "%s: metadata too long",
		    ks->path);
	count = keystore_count(ks);
	if (ks->rewrite || ks->map == NULL || count > ks->set.cap / 4 * 3)
		return table_write(ks, count, e);
	return journal_commit(ks, count, e);
}

void
keystore_close(struct keystore *ks)
{
	if (ks == NULL)
		return;
	unmap_table(ks);
	bands_unmap(ks);
	if (ks->fd_journal != -1)
		close(ks->fd_journal);
	ks->fd_journal = -1;
	digestset_release(&ks->pend);
	if (ks->near)
		minhash_index_release(&ks->ix);
	buf_release(&ks->meta);
	buf_release(&ks->pendlist);
	buf_release(&ks->pendsig);
}

int
keystore_stat(const char *path, struct keystore_stat *st, struct error *e)
{
	char dir[PATH_MAX], other[PATH_MAX * 2];
	const char *suffix[] = { "journal", "sigs", "bands" };
	unsigned char h[HDR];
	const unsigned char *v;
	struct stat fs, js;
	ssize_t got;
	size_t i;
	int fd;

	memset(st, 0, sizeof(*st));
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
		return errno == ENOENT ? 1 : error_errno(e, EXIT_NOINPUT, "%s",
		    path);
	got = fstat(fd, &fs) == -1 ? -1 : pread_full(fd, h, HDR, 0);
	close(fd);
	if (got == -1)
		return error_errno(e, EXIT_IOERR, "%s", path);
	if (got >= 8 && memcmp(h, "AISTDSET", 8) == 0) {
		if (digestset_peek(path, &st->keys, &st->bytes, e) != 0)
			return -1;
	} else {
		if (got < HDR || header_check(path, h, (uint64_t)fs.st_size,
		    e) == -1)
			return error_set(e, EXIT_DATAERR, "%s: not a key set "
			    "(bad header)", path);
		v = header_values(h, get64(h + F_GEN));
		if (values_check(path, v, get64(h + F_CAP), e) == -1)
			return -1;
		st->keys = get64(v + S_COUNT);
		st->bytes = (uint64_t)fs.st_size;
		st->have_counters = 1;
		st->seen = get64(v + S_SEEN);
		st->unique = get64(v + S_UNIQUE);
		st->duplicates = get64(v + S_DUPS);
		st->near = get64(v + S_NEAR);
	}
	path_dirname(path, dir, sizeof(dir));
	for (i = 0; i < sizeof(suffix) / sizeof(suffix[0]); i++) {
		snprintf(other, sizeof(other), "%s/.%s.%s", dir,
		    path_basename(path), suffix[i]);
		if (stat(other, &js) == 0)
			st->bytes += (uint64_t)js.st_size;
	}
	return 0;
}
