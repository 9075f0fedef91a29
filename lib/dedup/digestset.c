#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "base/exitcode.h"
#include "base/fsutil.h"
#include "base/le.h"
#include "digestset.h"

#define HEADER_SIZE	4096
#define MIN_BITS	10
#define MAX_BITS	40
#define MAGIC		"AISTDSET"
#define VERSION		1

/* Header fields, at these offsets. */
#define H_MAGIC		0	/* 8 bytes */
#define H_VERSION	8	/* u32 */
#define H_DIGEST	12	/* u32 */
#define H_CAP		16	/* u64 */
#define H_COUNT		24	/* u64 */
#define H_ZERO		32	/* u32 */
#define H_METALEN	36	/* u32 */
#define H_EXTRALEN	40	/* u64 */
#define H_SUM		48	/* 32 bytes: SHA-256 of [0, 48), meta, slots, extra */
#define H_META		80

static inline uint64_t
home(const struct digestset *s, const unsigned char *d)
{
	return get64(d) >> (64 - s->bits);
}

static inline int
is_zero(const unsigned char *d)
{
	uint64_t a, b;

	memcpy(&a, d, 8);
	memcpy(&b, d + 8, 8);
	return (a | b) == 0;
}

static inline int
same(const unsigned char *x, const unsigned char *y)
{
	uint64_t a, b, c, d;

	memcpy(&a, x, 8);
	memcpy(&b, x + 8, 8);
	memcpy(&c, y, 8);
	memcpy(&d, y + 8, 8);
	return ((a ^ c) | (b ^ d)) == 0;
}

static int
map_table(struct digestset *s, unsigned bits)
{
	size_t len = HEADER_SIZE + ((size_t)DIGEST_BYTES << bits);
	void *m;

	m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
	    -1, 0);
	if (m == MAP_FAILED) {
		errno = ENOMEM;
		return -1;
	}
	s->map = m;
	s->maplen = len;
	s->slots = s->map + HEADER_SIZE;
	s->bits = bits;
	s->cap = (uint64_t)1 << bits;
	return 0;
}

int
digestset_init(struct digestset *s, uint64_t hint)
{
	unsigned bits = MIN_BITS;

	memset(s, 0, sizeof(*s));
	while (bits < MAX_BITS && ((uint64_t)1 << bits) / 4 * 3 < hint)
		bits++;
	return map_table(s, bits);
}

/* Put d (not zero, not a member) into its slot. */
static inline void
place(struct digestset *s, const unsigned char *d)
{
	uint64_t mask = s->cap - 1, i = home(s, d);

	while (!is_zero(s->slots + i * DIGEST_BYTES))
		i = (i + 1) & mask;
	memcpy(s->slots + i * DIGEST_BYTES, d, DIGEST_BYTES);
}

/*
 * Double the table.  The old slots are read in order and their pages
 * given back to the kernel as soon as they are copied, so the resident
 * peak is the new table plus one chunk of the old.
 */
static int
grow(struct digestset *s)
{
	struct digestset n;
	const size_t chunk = 1 << 20;
	size_t off, total = (size_t)s->cap * DIGEST_BYTES, i;

	if (s->bits >= MAX_BITS) {
		errno = ENOMEM;
		return -1;
	}
	memset(&n, 0, sizeof(n));
	if (map_table(&n, s->bits + 1) == -1)
		return -1;
	for (off = 0; off < total; off += chunk) {
		size_t end = off + chunk < total ? off + chunk : total;
		for (i = off; i < end; i += DIGEST_BYTES)
			if (!is_zero(s->slots + i))
				place(&n, s->slots + i);
		/* slots start a page after the mapping's start */
		madvise(s->slots + off, end - off, MADV_DONTNEED);
	}
	munmap(s->map, s->maplen);
	n.count = s->count;
	n.has_zero = s->has_zero;
	*s = n;
	return 0;
}

int
digestset_add(struct digestset *s, const unsigned char *d)
{
	uint64_t mask, i;

	if (is_zero(d)) {
		if (s->has_zero)
			return 0;
		s->has_zero = 1;
		s->count++;
		return 1;
	}
	mask = s->cap - 1;
	for (i = home(s, d);; i = (i + 1) & mask) {
		const unsigned char *slot = s->slots + i * DIGEST_BYTES;
		if (is_zero(slot))
			break;
		if (same(slot, d))
			return 0;
	}
	if ((s->count + 1) > s->cap / 4 * 3) {
		if (grow(s) == -1)
			return -1;
		place(s, d);
	} else
		memcpy(s->slots + i * DIGEST_BYTES, d, DIGEST_BYTES);
	s->count++;
	return 1;
}

int
digestset_has(const struct digestset *s, const unsigned char *d)
{
	uint64_t mask = s->cap - 1, i, n;

	if (is_zero(d))
		return s->has_zero;
	if (s->cap == 0)
		return 0;
	for (i = home(s, d), n = 0; n < s->cap; i = (i + 1) & mask, n++) {
		const unsigned char *slot = s->slots + i * DIGEST_BYTES;
		if (is_zero(slot))
			return 0;
		if (same(slot, d))
			return 1;
	}
	return 0;
}

void
digestset_attach(struct digestset *s, unsigned char *slots, uint64_t cap,
    uint64_t count, int has_zero)
{
	memset(s, 0, sizeof(*s));
	s->slots = slots;
	s->cap = cap;
	for (s->bits = 0; ((uint64_t)1 << s->bits) < cap; s->bits++)
		;
	s->count = count;
	s->has_zero = has_zero;
	s->attached = 1;
}

int
digestset_put(struct digestset *s, const unsigned char *d)
{
	uint64_t mask = s->cap - 1, i, n;

	if (is_zero(d)) {
		if (s->has_zero)
			return 0;
		s->has_zero = 1;
		s->count++;
		return 1;
	}
	for (i = home(s, d), n = 0; n < s->cap; i = (i + 1) & mask, n++) {
		unsigned char *slot = s->slots + i * DIGEST_BYTES;
		if (is_zero(slot)) {
			memcpy(slot, d, DIGEST_BYTES);
			s->count++;
			return 1;
		}
		if (same(slot, d))
			return 0;
	}
	errno = ENOSPC;
	return -1;
}

void
digestset_prefetch(const struct digestset *s, const unsigned char *d)
{
	if (s->cap == 0)
		return;
	__builtin_prefetch(s->slots + home(s, d) * DIGEST_BYTES);
}

size_t
digestset_bytes(const struct digestset *s)
{
	return s->maplen;
}

void
digestset_release(struct digestset *s)
{
	if (s == NULL)
		return;
	if (s->map != NULL && !s->attached)
		munmap(s->map, s->maplen);
	memset(s, 0, sizeof(*s));
}

/* SHA-256 of the header's fixed fields, meta, slots and extra. */
static int
checksum(const unsigned char *hdr, const void *meta, size_t metalen,
    const unsigned char *slots, size_t slotlen, const void *extra,
    size_t extralen, unsigned char *sum)
{
	EVP_MD_CTX *ctx;
	unsigned len;
	int ok;

	if ((ctx = EVP_MD_CTX_new()) == NULL)
		return -1;
	ok = EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) &&
	    EVP_DigestUpdate(ctx, hdr, H_SUM) &&
	    EVP_DigestUpdate(ctx, meta, metalen) &&
	    EVP_DigestUpdate(ctx, slots, slotlen) &&
	    EVP_DigestUpdate(ctx, extra, extralen) &&
	    EVP_DigestFinal_ex(ctx, sum, &len);
	EVP_MD_CTX_free(ctx);
	if (!ok) {
		errno = EIO;
		return -1;
	}
	return 0;
}

int
digestset_save(struct digestset *s, const char *path, const void *meta,
    size_t metalen, const void *extra, size_t extralen, struct error *e)
{
	size_t slotlen = (size_t)s->cap * DIGEST_BYTES, len, grown = 0;
	unsigned char *h = s->map;
	int rc;

	if (metalen > DIGESTSET_META_MAX)
		return error_set(e, EXIT_SOFTWARE, "%s: metadata too long", path);
	memset(h, 0, HEADER_SIZE);
	memcpy(h + H_MAGIC, MAGIC, 8);
	put32(h + H_VERSION, VERSION);
	put32(h + H_DIGEST, DIGEST_BYTES);
	put64(h + H_CAP, s->cap);
	put64(h + H_COUNT, s->count);
	put32(h + H_ZERO, (uint32_t)s->has_zero);
	put32(h + H_METALEN, (uint32_t)metalen);
	put64(h + H_EXTRALEN, extralen);
	if (metalen > 0)
		memcpy(h + H_META, meta, metalen);
	if (checksum(h, meta != NULL ? meta : "", metalen, s->slots, slotlen,
	    extra != NULL ? extra : "", extralen, h + H_SUM) == -1)
		return error_errno(e, EXIT_SOFTWARE, "%s: checksum", path);
	len = HEADER_SIZE + slotlen;
	if (extralen > 0) {
		/* the extra data goes after the slots in one buffer */
		long pg = sysconf(_SC_PAGESIZE);
		size_t room = (extralen + (size_t)pg - 1) / (size_t)pg *
		    (size_t)pg;
		void *m = mremap(s->map, s->maplen, s->maplen + room,
		    MREMAP_MAYMOVE);
		if (m == MAP_FAILED)
			return error_errno(e, EXIT_SOFTWARE, "%s", path);
		s->map = m;
		s->slots = s->map + HEADER_SIZE;
		grown = room;
		memcpy(s->map + len, extra, extralen);
		len += extralen;
	}
	rc = atomic_replace(path, s->map, len, 0600, e);
	if (grown > 0) {
		void *m = mremap(s->map, s->maplen + grown, s->maplen, 0);
		if (m != MAP_FAILED) {
			s->map = m;
			s->slots = s->map + HEADER_SIZE;
		}
	}
	return rc;
}

int
digestset_load(struct digestset *s, const char *path, struct buf *meta,
    struct buf *extra, struct error *e)
{
	unsigned char hdr[HEADER_SIZE], sum[32];
	struct buf ext = BUF_INIT, *xb;
	size_t xoff;
	uint64_t cap, count, extralen, n, i;
	uint32_t metalen, zero;
	unsigned bits;
	struct stat st;
	ssize_t got;
	int fd;

	memset(s, 0, sizeof(*s));
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1) {
		if (errno == ENOENT)
			return 1;
		return error_errno(e, errno == EACCES ? EXIT_NOINPUT :
		    EXIT_IOERR, "%s", path);
	}
	if (fstat(fd, &st) == -1) {
		error_errno(e, EXIT_IOERR, "%s", path);
		goto fail;
	}
	if ((got = read_full(fd, hdr, HEADER_SIZE)) == -1) {
		error_errno(e, EXIT_IOERR, "%s", path);
		goto fail;
	}
	if (got < HEADER_SIZE || memcmp(hdr + H_MAGIC, MAGIC, 8) != 0) {
		error_set(e, EXIT_DATAERR, "%s: not a key set file", path);
		goto fail;
	}
	cap = get64(hdr + H_CAP);
	count = get64(hdr + H_COUNT);
	zero = get32(hdr + H_ZERO);
	metalen = get32(hdr + H_METALEN);
	extralen = get64(hdr + H_EXTRALEN);
	for (bits = MIN_BITS; bits < MAX_BITS && ((uint64_t)1 << bits) < cap;
	    bits++)
		;
	if (get32(hdr + H_VERSION) != VERSION ||
	    get32(hdr + H_DIGEST) != DIGEST_BYTES) {
		error_set(e, EXIT_DATAERR, "%s: unknown version of the key set "
		    "file", path);
		goto fail;
	}
	if (((uint64_t)1 << bits) != cap || count > cap / 4 * 3 + 1 ||
	    zero > 1 || metalen > DIGESTSET_META_MAX ||
	    extralen > (uint64_t)st.st_size ||
	    (uint64_t)st.st_size != HEADER_SIZE + cap * DIGEST_BYTES +
	    extralen) {
		error_set(e, EXIT_DATAERR, "%s: corrupt key set file (bad "
		    "header or size)", path);
		goto fail;
	}
	if (map_table(s, bits) == -1) {
		error_errno(e, EXIT_SOFTWARE, "%s", path);
		goto fail;
	}
	memcpy(s->map, hdr, HEADER_SIZE);
	/* the extra data is read straight into the caller's buffer */
	xb = extra != NULL ? extra : &ext;
	xoff = xb->len;
	if ((got = read_full(fd, s->slots, (size_t)cap * DIGEST_BYTES)) == -1 ||
	    buf_reserve(xb, (size_t)extralen) == -1 ||
	    (extralen > 0 &&
	    (got = read_full(fd, xb->data + xoff, (size_t)extralen)) == -1)) {
		error_errno(e, EXIT_IOERR, "%s", path);
		goto fail;
	}
	if (checksum(hdr, hdr + H_META, metalen, s->slots,
	    (size_t)cap * DIGEST_BYTES, xb->data != NULL ? xb->data + xoff : "",
	    (size_t)extralen, sum) == -1) {
		error_errno(e, EXIT_SOFTWARE, "%s: checksum", path);
		goto fail;
	}
	if (memcmp(sum, hdr + H_SUM, sizeof(sum)) != 0) {
		error_set(e, EXIT_DATAERR, "%s: corrupt key set file (checksum "
		    "mismatch)", path);
		goto fail;
	}
	for (i = 0, n = 0; i < cap; i++)
		if (!is_zero(s->slots + i * DIGEST_BYTES))
			n++;
	if (n + zero != count) {
		error_set(e, EXIT_DATAERR, "%s: corrupt key set file (count)",
		    path);
		goto fail;
	}
	s->count = count;
	s->has_zero = (int)zero;
	close(fd);
	xb->len = xoff + (size_t)extralen;
	buf_release(&ext);
	if (meta != NULL && buf_append(meta, hdr + H_META, metalen) == -1) {
		digestset_release(s);
		return error_errno(e, EXIT_SOFTWARE, "%s", path);
	}
	return 0;
fail:
	buf_release(&ext);
	digestset_release(s);
	close(fd);
	return -1;
}

int
digestset_peek(const char *path, uint64_t *count, uint64_t *bytes,
    struct error *e)
{
	unsigned char hdr[H_META];
	struct stat st;
	ssize_t got;
	int fd;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
		return errno == ENOENT ? 1 : error_errno(e, EXIT_NOINPUT, "%s",
		    path);
	got = fstat(fd, &st) == -1 ? -1 : read_full(fd, hdr, sizeof(hdr));
	close(fd);
	if (got == -1)
		return error_errno(e, EXIT_IOERR, "%s", path);
	if ((size_t)got < sizeof(hdr) || memcmp(hdr + H_MAGIC, MAGIC, 8) != 0 ||
	    get32(hdr + H_VERSION) != VERSION)
		return error_set(e, EXIT_DATAERR, "%s: not a digest set "
		    "(bad header)", path);
	*count = get64(hdr + H_COUNT);
	*bytes = (uint64_t)st.st_size;
	return 0;
}
