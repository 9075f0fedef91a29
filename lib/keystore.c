#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/rand.h>

#include "exitcode.h"
#include "fsutil.h"
#include "keystore.h"
#include "le.h"

#define J_MAGIC		"AIJ1"
#define J_HEAD		32	/* magic, count, gen, mark, sigbytes, 0 */
#define J_SUM		16	/* truncated SHA-256 of the entry */
#define JOURNAL_MIN	(1 << 20)
#define JOURNAL_MAX	((size_t)1 << 31)

static int
sum16(const unsigned char *p, size_t n, unsigned char *out)
{
	unsigned char full[32];
	unsigned len;
	EVP_MD_CTX *ctx;
	int ok;

	if ((ctx = EVP_MD_CTX_new()) == NULL)
		return -1;
	ok = EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) &&
	    EVP_DigestUpdate(ctx, p, n) && EVP_DigestFinal_ex(ctx, full, &len);
	EVP_MD_CTX_free(ctx);
	if (!ok)
		return -1;
	memcpy(out, full, J_SUM);
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
add_sig(struct keystore *ks, const unsigned char *sig)
{
	if (minhash_index_add(&ks->ix, sig) == -1)
		return -1;
	return 0;
}

/*
 * Apply the journal's valid entries of the current generation; ks->jlen
 * becomes the length of the valid prefix (0 when the journal belongs to
 * another generation).
 */
static int
load_journal(struct keystore *ks, struct error *e)
{
	char *data;
	size_t len, off = 0;

	ks->jlen = 0;
	if (read_file(ks->journal, JOURNAL_MAX, &data, &len) == -1) {
		if (errno == ENOENT)
			return 0;
		if (errno == EFBIG)
			return 0;	/* void: the next save rewrites it */
		return error_errno(e, EXIT_IOERR, "%s", ks->journal);
	}
	while (len - off >= J_HEAD + J_SUM) {
		const unsigned char *p = (const unsigned char *)data + off;
		uint32_t n = get32(p + 4), sigbytes = get32(p + 24);
		uint64_t gen = get64(p + 8), size, i;
		unsigned char sum[J_SUM];

		if (memcmp(p, J_MAGIC, 4) != 0 || gen != ks->gen)
			break;
		if (sigbytes != 0 && sigbytes != (uint64_t)n * MINHASH_SIG)
			break;
		size = J_HEAD + (uint64_t)n * DIGEST_BYTES + sigbytes + J_SUM;
		if (size > len - off)
			break;
		if (sum16(p, (size_t)size - J_SUM, sum) == -1 ||
		    memcmp(sum, p + size - J_SUM, J_SUM) != 0)
			break;
		for (i = 0; i < n; i++) {
			const unsigned char *d = p + J_HEAD + i * DIGEST_BYTES;
			int r = digestset_add(&ks->set, d);
			if (r == -1)
				goto nomem;
			if (r != 1 || !ks->near)
				continue;
			if (sigbytes == 0)
				ks->nosigs = 1;	/* made without them */
			else if (add_sig(ks, p + J_HEAD + (uint64_t)n *
			    DIGEST_BYTES + i * MINHASH_SIG) == -1)
				goto nomem;
		}
		ks->mark = get64(p + 16);
		off += (size_t)size;
	}
	ks->jlen = off;
	free(data);
	return 0;
nomem:
	free(data);
	return error_errno(e, EXIT_SOFTWARE, "%s", ks->journal);
}

int
keystore_open(struct keystore *ks, const char *path, int near, double t,
    struct error *e)
{
	char dir[PATH_MAX];
	struct buf meta = BUF_INIT, sigs = BUF_INIT;
	struct stat st;
	int rc;

	memset(ks, 0, sizeof(*ks));
	path_dirname(path, dir, sizeof(dir));
	if (snprintf(ks->path, sizeof(ks->path), "%s", path) >=
	    (int)sizeof(ks->path) ||
	    snprintf(ks->journal, sizeof(ks->journal), "%s/.%s.journal", dir,
	    path_basename(path)) >= (int)sizeof(ks->journal))
		return error_set(e, EXIT_USAGE, "%s: path too long", path);
	ks->near = near;
	if (near && minhash_index_init(&ks->ix, t) == -1)
		return error_errno(e, EXIT_SOFTWARE, "%s", path);
	rc = digestset_load(&ks->set, path, &meta, near ? &sigs : NULL, e);
	if (rc == -1)
		goto fail;
	if (rc == 1) {
		/* none yet: an empty set, written by the first save */
		if (digestset_init(&ks->set, 0) == -1) {
			error_errno(e, EXIT_SOFTWARE, "%s", path);
			goto fail;
		}
		ks->rewrite = 1;
		buf_release(&meta);
		return 1;
	}
	if (meta.len < 16) {
		error_set(e, EXIT_DATAERR, "%s: corrupt key set file (metadata)",
		    path);
		goto fail;
	}
	ks->gen = get64((unsigned char *)meta.data);
	ks->mark = get64((unsigned char *)meta.data + 8);
	if (buf_append(&ks->meta, meta.data + 16, meta.len - 16) == -1 ||
	    (near && minhash_index_load(&ks->ix, sigs.data, sigs.len) == -1)) {
		error_errno(e, errno == EINVAL ? EXIT_DATAERR : EXIT_SOFTWARE,
		    "%s: signatures", path);
		goto fail;
	}
	/* made without signatures (another key definition), or damaged */
	if (near && ks->ix.n != ks->set.count)
		ks->nosigs = 1;
	buf_release(&meta);
	buf_release(&sigs);
	ks->snapbytes = stat(path, &st) == 0 ? (uint64_t)st.st_size : 0;
	if (load_journal(ks, e) == -1)
		goto fail;
	ks->saved_mark = ks->mark;
	return 0;
fail:
	buf_release(&meta);
	buf_release(&sigs);
	keystore_close(ks);
	return -1;
}

int
keystore_add(struct keystore *ks, const unsigned char *digest,
    const unsigned char *sig)
{
	int r = digestset_add(&ks->set, digest);

	if (r != 1)
		return r;
	if (buf_append(&ks->pend, digest, DIGEST_BYTES) == -1)
		return -1;
	if (ks->near) {
		if (add_sig(ks, sig) == -1 ||
		    buf_append(&ks->pendsig, sig, MINHASH_SIG) == -1)
			return -1;
	}
	ks->npend++;
	return 1;
}

int
keystore_reset(struct keystore *ks, const void *meta, size_t metalen)
{
	double t = ks->ix.threshold;

	digestset_release(&ks->set);
	if (digestset_init(&ks->set, 0) == -1)
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
	ks->pend.len = ks->pendsig.len = 0;
	ks->npend = 0;
	ks->rewrite = 1;
	return 0;
}

int
keystore_meta_is(const struct keystore *ks, const void *meta, size_t metalen)
{
	return ks->meta.len == metalen &&
	    (metalen == 0 || memcmp(ks->meta.data, meta, metalen) == 0);
}

/* fdatasync, retried when a signal interrupts it. */
static int
datasync(int fd)
{
	int rc;

	do
		rc = fdatasync(fd);
	while (rc == -1 && errno == EINTR);
	return rc;
}

/* Write a new snapshot of everything, of a new generation. */
static int
save_snapshot(struct keystore *ks, struct error *e)
{
	unsigned char head[16];
	struct buf meta = BUF_INIT;
	const void *sigs = NULL;
	size_t nsigs = 0;
	uint64_t gen;
	struct stat st;
	int fd;

	if (ks->meta.len > KEYSTORE_META_MAX)
		return error_set(e, EXIT_SOFTWARE, "%s: metadata too long",
		    ks->path);
	if (new_gen(ks->gen, &gen) == -1)
		return error_set(e, EXIT_SOFTWARE, "%s: no random bytes",
		    ks->path);
	put64(head, gen);
	put64(head + 8, ks->mark);
	if (buf_append(&meta, head, sizeof(head)) == -1 ||
	    buf_append(&meta, ks->meta.data != NULL ? ks->meta.data : "",
	    ks->meta.len) == -1) {
		buf_release(&meta);
		return error_errno(e, EXIT_SOFTWARE, "%s", ks->path);
	}
	if (ks->near)
		sigs = minhash_index_sigs(&ks->ix, &nsigs);
	if (digestset_save(&ks->set, ks->path, meta.data, meta.len, sigs,
	    nsigs, e) == -1) {
		buf_release(&meta);
		return -1;
	}
	buf_release(&meta);
	ks->gen = gen;
	ks->snapbytes = stat(ks->path, &st) == 0 ? (uint64_t)st.st_size : 0;
	ks->pend.len = ks->pendsig.len = 0;
	ks->npend = 0;
	ks->rewrite = 0;
	ks->saved_mark = ks->mark;
	/* the journal is void now; empty it */
	if ((fd = open(ks->journal, O_WRONLY | O_CLOEXEC)) != -1) {
		if (ftruncate(fd, 0) == -1 || datasync(fd) == -1) {
			error_errno(e, EXIT_IOERR, "%s", ks->journal);
			close(fd);
			return -1;
		}
		close(fd);
	} else if (errno != ENOENT)
		return error_errno(e, EXIT_IOERR, "%s", ks->journal);
	ks->jlen = 0;
	return 0;
}

int
keystore_save(struct keystore *ks, struct error *e)
{
	struct buf b = BUF_INIT;
	unsigned char head[J_HEAD], sum[J_SUM];
	uint64_t limit;
	int fd;

	if (!ks->rewrite && ks->npend == 0 && ks->mark == ks->saved_mark)
		return 0;
	limit = ks->snapbytes / 2 > JOURNAL_MIN ? ks->snapbytes / 2 :
	    JOURNAL_MIN;
	if (ks->rewrite || ks->gen == 0 || ks->jlen + J_HEAD + ks->pend.len +
	    ks->pendsig.len + J_SUM > limit)
		return save_snapshot(ks, e);

	memset(head, 0, sizeof(head));
	memcpy(head, J_MAGIC, 4);
	put32(head + 4, (uint32_t)ks->npend);
	put64(head + 8, ks->gen);
	put64(head + 16, ks->mark);
	put32(head + 24, (uint32_t)ks->pendsig.len);
	if (buf_append(&b, head, sizeof(head)) == -1 ||
	    buf_append(&b, ks->pend.data != NULL ? ks->pend.data : "",
	    ks->pend.len) == -1 ||
	    buf_append(&b, ks->pendsig.data != NULL ? ks->pendsig.data : "",
	    ks->pendsig.len) == -1 ||
	    sum16((unsigned char *)b.data, b.len, sum) == -1 ||
	    buf_append(&b, sum, sizeof(sum)) == -1) {
		buf_release(&b);
		return error_errno(e, EXIT_SOFTWARE, "%s", ks->journal);
	}
	if ((fd = open(ks->journal, O_WRONLY | O_CREAT | O_CLOEXEC, 0600)) ==
	    -1) {
		buf_release(&b);
		return error_errno(e, error_code_for_errno(errno), "%s",
		    ks->journal);
	}
	/* cut a torn entry away, then append after the valid ones */
	if (ftruncate(fd, (off_t)ks->jlen) == -1 ||
	    lseek(fd, (off_t)ks->jlen, SEEK_SET) == -1 ||
	    write_all(fd, b.data, b.len) == -1 || datasync(fd) == -1) {
		error_errno(e, error_code_for_errno(errno), "%s", ks->journal);
		close(fd);
		buf_release(&b);
		return -1;
	}
	close(fd);
	if (ks->jlen == 0) {
		/* a journal just created: its directory entry too */
		char dir[PATH_MAX];
		path_dirname(ks->journal, dir, sizeof(dir));
		if (fsync_dir(dir) == -1) {
			buf_release(&b);
			return error_errno(e, EXIT_IOERR, "%s", dir);
		}
	}
	ks->jlen += b.len;
	buf_release(&b);
	ks->pend.len = ks->pendsig.len = 0;
	ks->npend = 0;
	ks->saved_mark = ks->mark;
	return 0;
}

void
keystore_close(struct keystore *ks)
{
	if (ks == NULL)
		return;
	digestset_release(&ks->set);
	if (ks->near)
		minhash_index_release(&ks->ix);
	buf_release(&ks->meta);
	buf_release(&ks->pend);
	buf_release(&ks->pendsig);
}

int
keystore_stat(const char *path, struct keystore_stat *st, struct error *e)
{
	char dir[PATH_MAX], journal[PATH_MAX * 2];
	struct stat js;
	int rc;

	memset(st, 0, sizeof(*st));
	if ((rc = digestset_peek(path, &st->keys, &st->bytes, e)) != 0)
		return rc;
	path_dirname(path, dir, sizeof(dir));
	snprintf(journal, sizeof(journal), "%s/.%s.journal", dir,
	    path_basename(path));
	if (stat(journal, &js) == 0)
		st->bytes += (uint64_t)js.st_size;
	return 0;
}
