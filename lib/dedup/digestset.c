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

/* The header fields of a key set file. */
struct ds_header {
	uint64_t cap, count, extralen;
	uint32_t metalen, zero;
	unsigned bits;
};

/* Check the header hdr (got bytes read) of a file of size bytes. */
static int
header_parse(const unsigned char *hdr, ssize_t got, uint64_t size,
    const char *path, struct ds_header *h, struct error *e)
{
	if (got < HEADER_SIZE || memcmp(hdr + H_MAGIC, MAGIC, 8) != 0)
		return error_set(e, EXIT_DATAERR, "%s: not a key set file", path);
	h->cap = get64(hdr + H_CAP);
	h->count = get64(hdr + H_COUNT);
	h->zero = get32(hdr + H_ZERO);
	h->metalen = get32(hdr + H_METALEN);
	h->extralen = get64(hdr + H_EXTRALEN);
	for (h->bits = MIN_BITS; h->bits < MAX_BITS &&
	    ((uint64_t)1 << h->bits) < h->cap; h->bits++)
		;
	if (get32(hdr + H_VERSION) != VERSION ||
	    get32(hdr + H_DIGEST) != DIGEST_BYTES)
		return error_set(e, EXIT_DATAERR, "%s: unknown version of the "
		    "key set file", path);
	if (((uint64_t)1 << h->bits) != h->cap ||
	    h->count > h->cap / 4 * 3 + 1 || h->zero > 1 ||
	    h->metalen > DIGESTSET_META_MAX || h->extralen > size ||
	    size != HEADER_SIZE + h->cap * DIGEST_BYTES + h->extralen)
		return error_set(e, EXIT_DATAERR, "%s: corrupt key set file "
		    "(bad header or size)", path);
	return 0;
}

/* Check the table and extra data read against the header's sum and count. */
static int
body_verify(const struct digestset *s, const struct ds_header *h,
    const unsigned char *hdr, const char *extra, const char *path,
    struct error *e)
{
	unsigned char sum[32];
	uint64_t i, n;

	if (checksum(hdr, hdr + H_META, h->metalen, s->slots,
	    (size_t)h->cap * DIGEST_BYTES, extra, (size_t)h->extralen,
	    sum) == -1)
		return error_errno(e, EXIT_SOFTWARE, "%s: checksum", path);
	if (memcmp(sum, hdr + H_SUM, sizeof(sum)) != 0)
		return error_set(e, EXIT_DATAERR, "%s: corrupt key set file "
		    "(checksum mismatch)", path);
	for (i = 0, n = 0; i < h->cap; i++)
		if (!is_zero(s->slots + i * DIGEST_BYTES))
			n++;
	if (n + h->zero != h->count)
		return error_set(e, EXIT_DATAERR, "%s: corrupt key set file "
		    "(count)", path);
	return 0;
}

int
digestset_load(struct digestset *s, const char *path, struct buf *meta,
    struct buf *extra, struct error *e)
{
	unsigned char hdr[HEADER_SIZE];
	struct buf ext = BUF_INIT, *xb;
	struct ds_header h = { 0 };
	struct stat st;
	size_t xoff;
	ssize_t got;
	int fd;

	memset(s, 0, sizeof(*s));
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1) {
		if (errno == ENOENT)
			return 1;
		return error_errno(e, errno == EACCES ? EXIT_NOINPUT :
		    EXIT_IOERR, "%s", path);
	}
	if (fstat(fd, &st) == -1 ||
	    (got = read_full(fd, hdr, HEADER_SIZE)) == -1) {
		error_errno(e, EXIT_IOERR, "%s", path);
		goto fail;
	}
	if (header_parse(hdr, got, (uint64_t)st.st_size, path, &h, e) == -1)
		goto fail;
	if (map_table(s, h.bits) == -1) {
		error_errno(e, EXIT_SOFTWARE, "%s", path);
		goto fail;
	}
	memcpy(s->map, hdr, HEADER_SIZE);
	/* the extra data is read straight into the caller's buffer */
	xb = extra != NULL ? extra : &ext;
	xoff = xb->len;
	if (read_full(fd, s->slots, (size_t)h.cap * DIGEST_BYTES) == -1 ||
	    buf_reserve(xb, (size_t)h.extralen) == -1 || (h.extralen > 0 &&
	    read_full(fd, xb->data + xoff, (size_t)h.extralen) == -1)) {
		error_errno(e, EXIT_IOERR, "%s", path);
		goto fail;
	}
	if (body_verify(s, &h, hdr, xb->data != NULL ? xb->data + xoff : "",
	    path, e) == -1)
		goto fail;
	s->count = h.count;
	s->has_zero = (int)h.zero;
	close(fd);
	xb->len = xoff + (size_t)h.extralen;
	buf_release(&ext);
	if (meta != NULL && buf_append(meta, hdr + H_META, h.metalen) == -1) {
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
