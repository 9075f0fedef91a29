/* The digest set: membership through growth, the zero digest, saving and
 * loading, and every kind of damaged file refused. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "base/exitcode.h"
#include "base/fsutil.h"
#include "dedup/digestset.h"
#include "unit.h"

/* The digest of key i (the first DIGEST_BYTES of SHA-256 of "key-i"). */
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

TEST(digestset_add_and_grow)
{
	struct digestset s;
	unsigned char d[DIGEST_BYTES];
	unsigned long i;
	uint64_t cap0;

	CHECK_INT(digestset_init(&s, 0), 0);
	cap0 = s.cap;
	for (i = 0; i < 200000; i++) {
		dig(i, d);
		if (digestset_add(&s, d) != 1) {
			unit_fail(__FILE__, __LINE__, "key %lu not new", i);
			return;
		}
	}
	CHECK_U64(s.count, 200000);
	CHECK(s.cap > cap0);
	CHECK(s.count <= s.cap / 4 * 3);
	for (i = 0; i < 200000; i++) {
		dig(i, d);
		if (!digestset_has(&s, d) || digestset_add(&s, d) != 0) {
			unit_fail(__FILE__, __LINE__, "key %lu lost", i);
			return;
		}
	}
	for (i = 200000; i < 210000; i++) {
		dig(i, d);
		CHECK(!digestset_has(&s, d));
	}
	CHECK_U64(s.count, 200000);
	/* bytes per key within the documented bounds */
	CHECK((double)digestset_bytes(&s) / (double)s.count < 43.0 + 4096.0 / 200000);
	digestset_release(&s);
}

TEST(digestset_zero_digest)
{
	struct digestset s;
	unsigned char z[DIGEST_BYTES] = { 0 };

	CHECK_INT(digestset_init(&s, 10), 0);
	CHECK(!digestset_has(&s, z));
	CHECK_INT(digestset_add(&s, z), 1);
	CHECK(digestset_has(&s, z));
	CHECK_INT(digestset_add(&s, z), 0);
	CHECK_U64(s.count, 1);
	CHECK_INT(digestset_save(&s, "set", NULL, 0, NULL, 0, NULL), 0);
	digestset_release(&s);
	CHECK_INT(digestset_load(&s, "set", NULL, NULL, NULL), 0);
	CHECK(digestset_has(&s, z));
	CHECK_U64(s.count, 1);
	digestset_release(&s);
}

TEST(digestset_persist_and_reload)
{
	struct digestset s;
	struct buf meta = BUF_INIT, extra = BUF_INIT;
	unsigned char d[DIGEST_BYTES];
	char big[5000];
	struct error e;
	unsigned long i;
	struct stat st;

	CHECK_INT(digestset_init(&s, 0), 0);
	for (i = 0; i < 5000; i++) {
		dig(i, d);
		CHECK_INT(digestset_add(&s, d), 1);
	}
	memset(big, 'x', sizeof(big));
	CHECK_INT(digestset_save(&s, "set", "hello", 5, big, sizeof(big), &e), 0);
	/* the set is usable after saving */
	dig(5000, d);
	CHECK_INT(digestset_add(&s, d), 1);
	digestset_release(&s);
	CHECK_INT(stat("set", &st), 0);
	CHECK_INT(st.st_mode & 0777, 0600);
	CHECK_INT(digestset_load(&s, "set", &meta, &extra, &e), 0);
	CHECK_U64(s.count, 5000);
	CHECK_INT(meta.len, 5);
	CHECK(memcmp(meta.data, "hello", 5) == 0);
	CHECK_INT(extra.len, sizeof(big));
	CHECK(memcmp(extra.data, big, sizeof(big)) == 0);
	for (i = 0; i < 5000; i++) {
		dig(i, d);
		CHECK(digestset_has(&s, d));
	}
	dig(5000, d);
	CHECK(!digestset_has(&s, d));
	/* it keeps growing after a reload */
	for (i = 5000; i < 20000; i++) {
		dig(i, d);
		CHECK_INT(digestset_add(&s, d), 1);
	}
	CHECK_U64(s.count, 20000);
	digestset_release(&s);
	buf_release(&meta);
	buf_release(&extra);
	/* a missing file */
	CHECK_INT(digestset_load(&s, "nope", NULL, NULL, &e), 1);
	/* metadata too long */
	CHECK_INT(digestset_init(&s, 0), 0);
	CHECK_INT(digestset_save(&s, "set2", big, DIGESTSET_META_MAX + 1, NULL, 0,
	    &e), -1);
	digestset_release(&s);
}

/* Save a small set to "set", then let damage() alter the file. */
static int
load_damaged(int (*damage)(int fd, off_t size), struct error *e)
{
	struct digestset s;
	unsigned char d[DIGEST_BYTES];
	struct stat st;
	unsigned long i;
	int fd, rc;

	digestset_init(&s, 0);
	for (i = 0; i < 100; i++) {
		dig(i, d);
		digestset_add(&s, d);
	}
	digestset_save(&s, "set", "meta", 4, "extra", 5, e);
	digestset_release(&s);
	fd = open("set", O_RDWR);
	if (fd == -1 || fstat(fd, &st) == -1 || damage(fd, st.st_size) == -1) {
		if (fd != -1)
			close(fd);
		return 2;
	}
	close(fd);
	memset(e, 0, sizeof(*e));
	rc = digestset_load(&s, "set", NULL, NULL, e);
	if (rc == 0)
		digestset_release(&s);
	return rc;
}

static int
wr(int fd, const void *p, size_t n, off_t at)
{
	return pwrite(fd, p, n, at) == (ssize_t)n ? 0 : -1;
}

static int
flip_slot_byte(int fd, off_t size)
{
	unsigned char c;
	off_t at = 4096 + 123;

	(void)size;
	if (pread(fd, &c, 1, at) != 1)
		return -1;
	c ^= 0x40;
	return wr(fd, &c, 1, at);
}

static int
flip_extra_byte(int fd, off_t size)
{
	return wr(fd, "X", 1, size - 1);
}

static int
flip_meta_byte(int fd, off_t size)
{
	(void)size;
	return wr(fd, "M", 1, 80);
}

static int
truncate_tail(int fd, off_t size)
{
	return ftruncate(fd, size - 7);
}

static int
truncate_header(int fd, off_t size)
{
	(void)size;
	return ftruncate(fd, 100);
}

static int
bad_magic(int fd, off_t size)
{
	(void)size;
	return wr(fd, "NOTASET!", 8, 0);
}

static int
bad_capacity(int fd, off_t size)
{
	(void)size;
	return wr(fd, "\3", 1, 16);
}

static int
bad_version(int fd, off_t size)
{
	(void)size;
	return wr(fd, "\11", 1, 8);
}

static int
grow_file(int fd, off_t size)
{
	return wr(fd, "junk", 4, size);
}

static int
empty_file(int fd, off_t size)
{
	(void)size;
	return ftruncate(fd, 0);
}

TEST(digestset_corrupt_files_detected)
{
	static const struct {
		int (*damage)(int, off_t);
		const char *why;
	} cases[] = {
		{ flip_slot_byte, "checksum mismatch" },
		{ flip_extra_byte, "checksum mismatch" },
		{ flip_meta_byte, "checksum mismatch" },
		{ truncate_tail, "bad header or size" },
		{ truncate_header, "not a key set file" },
		{ bad_magic, "not a key set file" },
		{ bad_capacity, "bad header or size" },
		{ bad_version, "unknown version" },
		{ grow_file, "bad header or size" },
		{ empty_file, "not a key set file" },
	};
	struct error e;
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		if (load_damaged(cases[i].damage, &e) != -1 ||
		    e.code != EXIT_DATAERR || strstr(e.msg, cases[i].why) == NULL) {
			unit_fail(__FILE__, __LINE__, "case %zu: \"%s\"", i, e.msg);
			return;
		}
	}
}
