/* Rotation modules: gzfile (crash-safe compression), retention (the plan)
 * and copytrunc (plain-file rotation and its naming rules). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "base/fsutil.h"
#include "stream/copytrunc.h"
#include "stream/gzfile.h"
#include "stream/retention.h"
#include "unit.h"

static int
put(const char *path, const char *text, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);

	if (fd == -1 || write_all(fd, text, strlen(text)) == -1)
		return -1;
	return close(fd);
}

/* The uncompressed content of a gzip file, NUL-terminated (caller frees). */
static char *
gunzip(const char *path)
{
	gzFile g = gzopen(path, "rb");
	char *out = malloc(1 << 20);
	int n;

	if (g == NULL || out == NULL)
		return NULL;
	n = gzread(g, out, (1 << 20) - 1);
	gzclose(g);
	if (n < 0)
		return NULL;
	out[n] = '\0';
	return out;
}

static char *
slurp(const char *path)
{
	char *d;
	size_t n;

	return read_file(path, 1 << 20, &d, &n) == 0 ? d : NULL;
}

/* --- gzfile --------------------------------------------------------------- */

TEST(gzfile_compress_replaces_the_file_keeping_mode_and_mtime)
{
	struct timespec t[2] = { { 1000000000, 0 }, { 1000000000, 0 } };
	struct gzfile_result res;
	struct error e;
	struct stat st;
	char *d;

	CHECK(put("a.jsonl", "{\"a\":1}\n{\"b\":2}\n", 0444) == 0);
	CHECK(utimensat(AT_FDCWD, "a.jsonl", t, 0) == 0);
	CHECK(gzfile_compress("a.jsonl", "a.jsonl.gz", 6, NULL, NULL, &res,
	    &e) == 0);
	CHECK(access("a.jsonl", F_OK) == -1 && errno == ENOENT);
	CHECK(stat("a.jsonl.gz", &st) == 0);
	CHECK_INT(st.st_mode & 07777, 0444);
	CHECK_INT(st.st_mtim.tv_sec, 1000000000);
	CHECK_U64(res.in_bytes, 16);
	CHECK_U64(res.out_bytes, (uint64_t)st.st_size);
	d = gunzip("a.jsonl.gz");
	CHECK_STR(d, "{\"a\":1}\n{\"b\":2}\n");
	free(d);
}

TEST(gzfile_compress_of_an_empty_file_is_a_valid_empty_gzip)
{
	struct error e;
	char *d;

	CHECK(put("e", "", 0644) == 0);
	CHECK(gzfile_compress("e", "e.gz", 6, NULL, NULL, NULL, &e) == 0);
	d = gunzip("e.gz");
	CHECK_STR(d, "");
	free(d);
}

TEST(gzfile_compress_of_a_missing_file_creates_nothing)
{
	struct error e;

	CHECK(gzfile_compress("nope", "nope.gz", 6, NULL, NULL, NULL, &e) == -1);
	CHECK_INT(e.code, 66);
	CHECK(access("nope.gz", F_OK) == -1);
}

TEST(gzfile_compress_failure_leaves_the_source_and_no_temporary)
{
	struct error e;

	CHECK(put("a", "{}\n", 0644) == 0);
	/* the destination's directory does not exist */
	CHECK(gzfile_compress("a", "no/such/a.gz", 6, NULL, NULL, NULL,
	    &e) == -1);
	CHECK(access("a", F_OK) == 0);
}

static uint64_t progress_last;

static void
on_progress(void *arg, uint64_t done, uint64_t total)
{
	(void)arg;
	CHECK(done <= total);
	progress_last = done;
}

TEST(gzfile_compress_reports_progress_up_to_the_total)
{
	struct error e;
	char *big = malloc(9 << 20);
	size_t i;
	int fd;

	CHECK(big != NULL);
	for (i = 0; i < (size_t)(9 << 20); i++)
		big[i] = (char)('a' + (i * 7919) % 26);
	CHECK((fd = open("big", O_WRONLY | O_CREAT, 0644)) != -1);
	CHECK(write_all(fd, big, 9 << 20) == 9 << 20);
	close(fd);
	free(big);
	CHECK(gzfile_compress("big", "big.gz", 1, on_progress, NULL, NULL,
	    &e) == 0);
	CHECK_U64(progress_last, 9 << 20);
}

TEST(gzfile_finish_removes_the_plain_form_when_the_gzip_is_complete)
{
	struct error e;
	char *d;

	CHECK(put("s", "{\"a\":1}\n", 0444) == 0);
	CHECK(gzfile_compress("s", "s.gz", 6, NULL, NULL, NULL, &e) == 0);
	/* as if the run died between the rename and the unlink */
	CHECK(put("s", "{\"a\":1}\n", 0444) == 0);
	CHECK_INT(gzfile_finish("s", "s.gz", &e), 1);
	CHECK(access("s", F_OK) == -1);
	d = gunzip("s.gz");
	CHECK_STR(d, "{\"a\":1}\n");
	free(d);
	CHECK_INT(gzfile_finish("s", "s.gz", &e), 0);
}

TEST(gzfile_finish_removes_a_gzip_that_does_not_match)
{
	struct error e;
	char *d;

	CHECK(put("s", "{\"a\":1}\n", 0444) == 0);
	CHECK(gzfile_compress("s", "s.gz", 6, NULL, NULL, NULL, &e) == 0);
	CHECK(put("s", "{\"a\":1}\n{\"b\":2}\n", 0444) == 0);
	CHECK_INT(gzfile_finish("s", "s.gz", &e), 2);
	CHECK(access("s.gz", F_OK) == -1);
	d = slurp("s");
	CHECK_STR(d, "{\"a\":1}\n{\"b\":2}\n");
	free(d);
}

TEST(gzfile_is_temp_recognises_only_its_own_names)
{
	CHECK(gzfile_is_temp(".00000000000000000000.jsonl.gz.tmpAb12Cd",
	    "00000000000000000000.jsonl.gz"));
	CHECK(gzfile_is_temp(".00000000000000000000.jsonl.gz.tmpAb12Cd", NULL));
	CHECK(!gzfile_is_temp(".00000000000000000000.jsonl.gz.tmpAb12Cd",
	    "00000000000000000001.jsonl.gz"));
	CHECK(!gzfile_is_temp("00000000000000000000.jsonl.gz.tmpAb12Cd", NULL));
	CHECK(!gzfile_is_temp(".x.jsonl.tmpAb12Cd", NULL));
	CHECK(!gzfile_is_temp(".x.gz.tmpAb12C", NULL));
	CHECK(!gzfile_is_temp(".gz.tmpAb12Cd", NULL));
}

/* --- retention ------------------------------------------------------------ */

#define DAY (86400LL * 1000)

static void
items(struct retain_item *v, size_t n, uint64_t size, int64_t now,
    const int *age_days)
{
	size_t i;

	memset(v, 0, n * sizeof(*v));
	for (i = 0; i < n; i++) {
		v[i].base = i * size;
		v[i].end = (i + 1) * size;
		v[i].disk = size;
		v[i].mtime_ms = now - age_days[i] * DAY;
	}
}

static struct retain_policy
policy(int64_t now)
{
	struct retain_policy p;

	memset(&p, 0, sizeof(p));
	p.now_ms = now;
	p.compress_after_ms = 7 * DAY;
	p.delete_after_ms = 30 * DAY;
	p.max_total = RETAIN_NEVER;
	p.min_committed = UINT64_MAX;
	return p;
}

TEST(retention_compresses_after_7_days_and_deletes_after_30)
{
	int64_t now = 2000000000000LL;
	int ages[] = { 40, 31, 20, 8, 6, 0 };
	struct retain_item v[6];
	struct retain_policy p = policy(now);
	struct retain_summary s;

	items(v, 6, 100, now, ages);
	v[3].gz = 0;
	retain_plan(v, 6, &p, &s);
	CHECK(v[0].delete && v[1].delete);
	CHECK(!v[2].delete && v[2].compress);
	CHECK(!v[3].delete && v[3].compress);
	CHECK(!v[4].compress && !v[5].compress);
	CHECK_INT(s.ndelete, 2);
	CHECK_INT(s.ncompress, 2);
	CHECK_U64(s.deleted_bytes, 200);
}

TEST(retention_never_compresses_twice)
{
	int64_t now = 2000000000000LL;
	int ages[] = { 10 };
	struct retain_item v[1];
	struct retain_policy p = policy(now);

	items(v, 1, 100, now, ages);
	v[0].gz = 1;
	retain_plan(v, 1, &p, NULL);
	CHECK(!v[0].compress && !v[0].delete);
}

TEST(retention_keeps_what_a_consumer_has_not_read)
{
	int64_t now = 2000000000000LL;
	int ages[] = { 40, 40, 40, 40 };
	struct retain_item v[4];
	struct retain_policy p = policy(now);
	struct retain_summary s;

	items(v, 4, 100, now, ages);
	p.min_committed = 150;		/* inside the second item */
	retain_plan(v, 4, &p, &s);
	CHECK(v[0].delete);
	CHECK(!v[1].delete && v[1].kept);
	CHECK(!v[2].delete && v[2].kept);
	CHECK(!v[3].delete && v[3].kept);
	CHECK_U64(s.unread, 0);
	/* a consumer exactly at the end of an item has read it */
	p.min_committed = 200;
	retain_plan(v, 4, &p, &s);
	CHECK(v[0].delete && v[1].delete && !v[2].delete && v[2].kept);
}

TEST(retention_force_deletes_and_counts_the_unread_bytes)
{
	int64_t now = 2000000000000LL;
	int ages[] = { 40, 40, 40, 3 };
	struct retain_item v[4];
	struct retain_policy p = policy(now);
	struct retain_summary s;

	items(v, 4, 100, now, ages);
	p.min_committed = 150;
	p.force = 1;
	retain_plan(v, 4, &p, &s);
	CHECK(v[0].delete && v[1].delete && v[2].delete && !v[3].delete);
	CHECK_U64(v[0].unread, 0);
	CHECK_U64(v[1].unread, 50);
	CHECK_U64(v[2].unread, 100);
	CHECK_U64(s.unread, 150);
}

TEST(retention_max_total_deletes_the_oldest_first)
{
	int64_t now = 2000000000000LL;
	int ages[] = { 1, 1, 1, 1 };
	struct retain_item v[4];
	struct retain_policy p = policy(now);
	struct retain_summary s;

	items(v, 4, 100, now, ages);
	p.max_total = 250;
	p.other_bytes = 50;		/* the active segment */
	retain_plan(v, 4, &p, &s);
	/* 450 -> 350 -> 250 */
	CHECK(v[0].delete && v[1].delete && !v[2].delete && !v[3].delete);
	CHECK_U64(s.deleted_bytes, 200);
}

TEST(retention_deletes_only_a_prefix)
{
	int64_t now = 2000000000000LL;
	int ages[] = { 5, 40, 40 };	/* an odd mtime in front */
	struct retain_item v[3];
	struct retain_policy p = policy(now);

	items(v, 3, 100, now, ages);
	retain_plan(v, 3, &p, NULL);
	CHECK(!v[0].delete && !v[1].delete && !v[2].delete);
}

TEST(retention_never_means_never)
{
	int64_t now = 2000000000000LL;
	int ages[] = { 4000 };
	struct retain_item v[1];
	struct retain_policy p = policy(now);

	items(v, 1, 100, now, ages);
	p.compress_after_ms = RETAIN_NEVER;
	p.delete_after_ms = RETAIN_NEVER;
	retain_plan(v, 1, &p, NULL);
	CHECK(!v[0].delete && !v[0].compress);
}

/* --- copytrunc ------------------------------------------------------------ */

TEST(rotcopy_names_round_trip_and_nothing_else_parses)
{
	char name[128];
	int64_t t;
	int gz;

	CHECK(rotcopy_name(name, sizeof(name), "app.jsonl", 1795737600, 0) == 0);
	CHECK_STR(name, "app.jsonl.20261127T000000Z");
	CHECK(rotcopy_parse("app.jsonl", name, &t, &gz) == 0);
	CHECK_INT(t, 1795737600);
	CHECK_INT(gz, 0);
	CHECK(rotcopy_parse("app.jsonl", "app.jsonl.20261127T000000Z.gz", &t,
	    &gz) == 0);
	CHECK_INT(gz, 1);
	CHECK(rotcopy_parse("app.jsonl", "app.jsonl.20261127T000000Z.bak", &t,
	    &gz) == -1);
	CHECK(rotcopy_parse("app.jsonl", "app.jsonl.20261127T000000", &t,
	    &gz) == -1);
	CHECK(rotcopy_parse("app.jsonl", "app.jsonl.20261327T000000Z", &t,
	    &gz) == -1);
	CHECK(rotcopy_parse("app.jsonl", "xapp.jsonl.20261127T000000Z", &t,
	    &gz) == -1);
	CHECK(rotcopy_parse("app.jsonl", "app.jsonl.1", &t, &gz) == -1);
	CHECK(rotcopy_parse("app", "app.jsonl.20261127T000000Z", &t,
	    &gz) == -1);
	CHECK(rotcopy_is_temp("app.jsonl", ".app.jsonl.20261127T000000Z.tmpAbCdEf"));
	CHECK(rotcopy_is_temp("app.jsonl",
	    ".app.jsonl.20261127T000000Z.gz.tmpAbCdEf"));
	CHECK(!rotcopy_is_temp("app.jsonl", ".app.jsonl.tmpAbCdEf"));
	CHECK(!rotcopy_is_temp("app.jsonl", ".other.jsonl.20261127T000000Z.tmpAbCdEf"));
}

TEST(copytrunc_copies_truncates_and_never_reuses_a_stamp)
{
	char copy[256], copy2[256];
	uint64_t bytes;
	struct error e;
	char *d;

	CHECK(put("app.jsonl", "{\"a\":1}\n{\"b\":2}\n", 0640) == 0);
	CHECK_INT(copytrunc("./app.jsonl", LOCK_KIND_FLOCK, 1795737600, 0, copy,
	    sizeof(copy), &bytes, &e), 1);
	CHECK_STR(copy, "app.jsonl.20261127T000000Z");
	CHECK_U64(bytes, 16);
	d = slurp("app.jsonl.20261127T000000Z");
	CHECK_STR(d, "{\"a\":1}\n{\"b\":2}\n");
	free(d);
	d = slurp("app.jsonl");
	CHECK_STR(d, "");
	free(d);
	/* empty: nothing to do */
	CHECK_INT(copytrunc("./app.jsonl", LOCK_KIND_FLOCK, 1795737600, 0, copy2,
	    sizeof(copy2), &bytes, &e), 0);
	/* same second: the next free stamp */
	CHECK(put("app.jsonl", "{\"c\":3}\n", 0640) == 0);
	CHECK_INT(copytrunc("./app.jsonl", LOCK_KIND_FCNTL, 1795737600, 0, copy2,
	    sizeof(copy2), &bytes, &e), 1);
	CHECK_STR(copy2, "app.jsonl.20261127T000001Z");
	/* a dry run changes nothing but names the copy */
	CHECK(put("app.jsonl", "{\"d\":4}\n", 0640) == 0);
	CHECK_INT(copytrunc("./app.jsonl", LOCK_KIND_FLOCK, 1795737600, 1, copy2,
	    sizeof(copy2), &bytes, &e), 1);
	CHECK_STR(copy2, "app.jsonl.20261127T000002Z");
	CHECK(access(copy2, F_OK) == -1);
	d = slurp("app.jsonl");
	CHECK_STR(d, "{\"d\":4}\n");
	free(d);
}

TEST(copytrunc_waits_for_the_writers_lock)
{
	char copy[256];
	uint64_t bytes;
	struct error e;
	pid_t pid;
	int fd, p[2];
	char c;

	CHECK(put("w.jsonl", "{\"a\":1}\n", 0644) == 0);
	CHECK(pipe(p) == 0);
	if ((pid = fork()) == 0) {
		/* a writer holding the lock in the middle of a line */
		fd = open("w.jsonl", O_WRONLY | O_APPEND);
		lock_take(fd, LOCK_KIND_FLOCK, 1, -1);
		write_all(fd, "{\"b\":", 5);
		write_all(p[1], "x", 1);
		usleep(200000);
		write_all(fd, "2}\n", 3);
		_exit(0);
	}
	CHECK(read(p[0], &c, 1) == 1);
	CHECK_INT(copytrunc("./w.jsonl", LOCK_KIND_FLOCK, 1795737600, 0, copy,
	    sizeof(copy), &bytes, &e), 1);
	CHECK_U64(bytes, 16);		/* the whole line, never half */
	waitpid(pid, NULL, 0);
}

TEST(rotrename_links_the_file_as_its_copy_and_puts_an_empty_one_in_place)
{
	char copy[256];
	struct stat a, b, n;
	uint64_t bytes;
	struct error e;
	char *d;
	int fd;

	CHECK(put("r.jsonl", "{\"a\":1}\n", 0604) == 0);
	CHECK(chmod("r.jsonl", 0604) == 0);
	CHECK(stat("r.jsonl", &a) == 0);
	/* a writer that opened it before */
	CHECK((fd = open("r.jsonl", O_WRONLY | O_APPEND)) != -1);
	CHECK_INT(rotrename_timed("./r.jsonl", LOCK_KIND_FLOCK, -1, 1795737600, 0,
	    copy, sizeof(copy), &bytes, &e), 1);
	CHECK_STR(copy, "r.jsonl.20261127T000000Z");
	CHECK_U64(bytes, 8);
	CHECK(stat(copy, &b) == 0);
	CHECK(a.st_ino == b.st_ino && b.st_nlink == 1);
	CHECK(stat("r.jsonl", &n) == 0);
	CHECK(n.st_ino != a.st_ino && n.st_size == 0);
	CHECK_INT((int)(n.st_mode & 07777), 0604);
	CHECK(write_all(fd, "{\"b\":2}\n", 8) == 8);
	close(fd);
	d = slurp(copy);
	CHECK_STR(d, "{\"a\":1}\n{\"b\":2}\n");
	free(d);
	/* empty: nothing to do; a dry run names the next copy */
	CHECK_INT(rotrename_timed("./r.jsonl", LOCK_KIND_FLOCK, -1, 1795737600,
	    0, copy, sizeof(copy), &bytes, &e), 0);
	CHECK(put("r.jsonl", "{\"c\":3}\n", 0604) == 0);
	CHECK_INT(rotrename_timed("./r.jsonl", LOCK_KIND_FLOCK, -1, 1795737600,
	    1, copy, sizeof(copy), &bytes, &e), 1);
	CHECK_STR(copy, "r.jsonl.20261127T000001Z");
	CHECK(access(copy, F_OK) == -1);
	/* a run that died after the link: finished without a second copy */
	CHECK(link("r.jsonl", "r.jsonl.20261127T000005Z") == 0);
	CHECK_INT(rotrename_timed("./r.jsonl", LOCK_KIND_FLOCK, -1, 1795737600,
	    0, copy, sizeof(copy), &bytes, &e), 1);
	CHECK_STR(copy, "r.jsonl.20261127T000005Z");
	CHECK(access("r.jsonl.20261127T000001Z", F_OK) == -1);
	CHECK(stat(copy, &b) == 0 && b.st_nlink == 1);
	d = slurp("r.jsonl");
	CHECK_STR(d, "");
	free(d);
}

TEST(rotcopy_list_merges_forms_and_rotdir_finds_bases)
{
	struct rotcopy *v;
	char **b;
	size_t n, nb;
	struct error e;

	CHECK(mkdir("d", 0755) == 0);
	CHECK(put("d/a.jsonl", "", 0644) == 0);
	CHECK(put("d/a.jsonl.20260101T000000Z", "x", 0644) == 0);
	CHECK(put("d/a.jsonl.20260101T000000Z.gz", "yy", 0644) == 0);
	CHECK(put("d/a.jsonl.20250101T000000Z.gz", "zzz", 0644) == 0);
	CHECK(put("d/a.jsonl.bak", "", 0644) == 0);
	CHECK(put("d/gone.jsonl.20250101T000000Z", "", 0644) == 0);
	CHECK(put("d/.hidden.jsonl", "", 0644) == 0);
	CHECK(put("d/notes.txt", "", 0644) == 0);
	CHECK(symlink("a.jsonl", "d/link.jsonl") == 0);
	CHECK(rotcopy_list("d", "a.jsonl", &v, &n, &e) == 0);
	CHECK_INT(n, 2);
	CHECK_STR(v[0].name, "a.jsonl.20250101T000000Z");
	CHECK(v[0].gz && !v[0].plain);
	CHECK_STR(v[1].name, "a.jsonl.20260101T000000Z");
	CHECK(v[1].gz && v[1].plain);
	CHECK_U64(v[1].disk, 2);
	rotcopy_list_free(v, n);
	CHECK(rotdir_bases("d", &b, &nb, &e) == 0);
	CHECK_INT(nb, 2);
	CHECK_STR(b[0], "a.jsonl");
	CHECK_STR(b[1], "gone.jsonl");
	rotdir_free(b, nb);
}
