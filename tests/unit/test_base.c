/* Base utilities: parsers, buffers, atomic files, config, state dir. */
#include <errno.h>
#include <signal.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/clock.h"
#include "base/config.h"
#include "base/err.h"
#include "base/exitcode.h"
#include "base/fsutil.h"
#include "base/metrics.h"
#include "base/parse.h"
#include "base/sig.h"
#include "base/statedir.h"
#include "unit.h"

TEST(parse_durations)
{
	uint64_t v;

	CHECK(parse_duration_ms("500ms", &v) == 0 && v == 500);
	CHECK(parse_duration_ms("30s", &v) == 0 && v == 30000);
	CHECK(parse_duration_ms("5m", &v) == 0 && v == 300000);
	CHECK(parse_duration_ms("2h", &v) == 0 && v == 7200000);
	CHECK(parse_duration_ms("7d", &v) == 0 && v == 604800000);
	CHECK(parse_duration_ms("15", &v) == 0 && v == 15000);
	CHECK(parse_duration_ms("", &v) == -1);
	CHECK(parse_duration_ms("5x", &v) == -1);
	CHECK(parse_duration_ms("-5s", &v) == -1);
	CHECK(parse_duration_ms(" 5s", &v) == -1);
	CHECK(parse_duration_ms("5s ", &v) == -1);
	CHECK(parse_duration_ms("99999999999999999999d", &v) == -1);
	CHECK(parse_duration_ms("999999999999999d", &v) == -1 && errno == ERANGE);
}

TEST(parse_sizes)
{
	uint64_t v;
	char b[32];

	CHECK(parse_size("512", &v) == 0 && v == 512);
	CHECK(parse_size("64k", &v) == 0 && v == 65536);
	CHECK(parse_size("64K", &v) == 0 && v == 65536);
	CHECK(parse_size("100M", &v) == 0 && v == 104857600);
	CHECK(parse_size("1G", &v) == 0 && v == 1073741824);
	CHECK(parse_size("1GiB", &v) == 0 && v == 1073741824);
	CHECK(parse_size("1MB", &v) == 0 && v == 1048576);
	CHECK(parse_size("10B", &v) == 0 && v == 10);
	CHECK(parse_size("1.5M", &v) == -1);
	CHECK(parse_size("1Q", &v) == -1);
	CHECK(parse_size("M", &v) == -1);
	CHECK(parse_size("99999999T", &v) == -1);
	format_size(b, sizeof(b), 104857600);
	CHECK_STR(b, "100M");
	format_size(b, sizeof(b), 1000);
	CHECK_STR(b, "1000");
	format_duration(b, sizeof(b), 90000);
	CHECK_STR(b, "90s");
	format_duration(b, sizeof(b), 1500);
	CHECK_STR(b, "1500ms");
}

TEST(parse_rates)
{
	double r;

	CHECK(parse_rate_per_min("60/min", &r) == 0 && r == 60);
	CHECK(parse_rate_per_min("2/s", &r) == 0 && r == 120);
	CHECK(parse_rate_per_min("120/h", &r) == 0 && r == 2);
	CHECK(parse_rate_per_min("0/min", &r) == -1);
	CHECK(parse_rate_per_min("5/day", &r) == -1);
}

TEST(buf_escape_and_base64)
{
	struct buf b = BUF_INIT;

	buf_json_escape(&b, "a\"b\\c\n\x01\xc3\xa9", 9);
	CHECK_STR(buf_cstr(&b), "a\\\"b\\\\c\\n\\u0001\xc3\xa9");
	b.len = 0;
	buf_base64(&b, (const unsigned char *)"foobar", 6);
	CHECK_STR(buf_cstr(&b), "Zm9vYmFy");
	b.len = 0;
	buf_base64(&b, (const unsigned char *)"fooba", 5);
	CHECK_STR(buf_cstr(&b), "Zm9vYmE=");
	b.len = 0;
	buf_base64(&b, (const unsigned char *)"f", 1);
	CHECK_STR(buf_cstr(&b), "Zg==");
	buf_release(&b);
}

TEST(atomic_replace_replaces_whole_files)
{
	struct error e;
	struct stat st;
	char *d;
	size_t n;

	CHECK(atomic_replace("f", "one\n", 4, 0600, &e) == 0);
	CHECK(atomic_replace("f", "two two\n", 8, 0640, &e) == 0);
	CHECK(read_file("f", 100, &d, &n) == 0);
	CHECK_STR(d, "two two\n");
	free(d);
	CHECK(stat("f", &st) == 0 && (st.st_mode & 0777) == 0640);
	CHECK(read_file("f", 3, &d, &n) == -1 && errno == EFBIG);
	CHECK(atomic_replace("nodir/f", "x", 1, 0600, &e) == -1);
	CHECK_INT(e.code, EXIT_CANTCREAT);
}

TEST(mkdir_p_makes_parents)
{
	struct stat st;

	CHECK(mkdir_p("a/b//c/", 0700) == 0);
	CHECK(stat("a/b/c", &st) == 0 && S_ISDIR(st.st_mode));
	CHECK(mkdir_p("a/b/c", 0700) == 0);
	CHECK(atomic_replace("a/file", "", 0, 0600, &(struct error){0}) == 0);
	CHECK(mkdir_p("a/file/x", 0700) == -1);
}

TEST(config_parses_sections_and_env_beats_file)
{
	struct config c;
	struct error e;
	char src[CONFIG_SOURCE_MAX];
	const char **all;
	FILE *f = fopen("a.conf", "w");

	fputs("# comment\n[ingest]\nmax_backlog = 50M\n; other\n"
	    "[upstream  qdrant]\nurl = http://127.0.0.1:6333\n"
	    "allow = /healthz\nallow = /collections\nname = \" spaced \"\n", f);
	fclose(f);
	CHECK(config_load_file(&c, "a.conf", &e) == 0);
	CHECK_STR(config_lookup(&c, "ingest", "max_backlog", src), "50M");
	CHECK_STR(src, "a.conf:3");
	CHECK_STR(config_lookup(&c, "upstream qdrant", "url", NULL),
	    "http://127.0.0.1:6333");
	CHECK_STR(config_lookup(&c, "upstream qdrant", "name", NULL), " spaced ");
	CHECK_INT(config_lookup_all(&c, "upstream qdrant", "allow", &all), 2);
	CHECK_STR(all[1], "/collections");
	free(all);
	CHECK(config_lookup(&c, "ingest", "sync", src) == NULL);
	CHECK_STR(src, "");
	setenv("AISTACK_INGEST_MAX_BACKLOG", "1G", 1);
	CHECK_STR(config_lookup(&c, "ingest", "max_backlog", src), "1G");
	CHECK_STR(src, "AISTACK_INGEST_MAX_BACKLOG");
	setenv("AISTACK_UPSTREAM_QDRANT_URL", "http://x", 1);
	CHECK_STR(config_lookup(&c, "upstream qdrant", "url", NULL), "http://x");
	config_release(&c);
}

TEST(config_errors_name_file_and_line)
{
	struct config c;
	struct error e;
	FILE *f = fopen("bad.conf", "w");

	fputs("[ingest]\nmax_backlog 5\n", f);
	fclose(f);
	CHECK(config_load_file(&c, "bad.conf", &e) == -1);
	CHECK_INT(e.code, EXIT_CONFIG);
	CHECK_STR(e.msg, "bad.conf:2: expected \"key = value\"");
	f = fopen("bad.conf", "w");
	fputs("key = 1\n", f);
	fclose(f);
	CHECK(config_load_file(&c, "bad.conf", &e) == -1);
	CHECK_STR(e.msg, "bad.conf:1: \"key\" outside any section");
	f = fopen("bad.conf", "w");
	fputs("[open\n", f);
	fclose(f);
	CHECK(config_load_file(&c, "bad.conf", &e) == -1);
	setenv("AISTACK_CONFIG", "missing.conf", 1);
	CHECK(config_load(&c, &e) == -1);
	CHECK_INT(e.code, EXIT_CONFIG);
}

TEST(secret_files_must_be_private)
{
	struct error e;
	char buf[64];
	size_t len;
	int fd = open("tok", O_CREAT | O_WRONLY, 0644);

	CHECK(write(fd, "s3cret\n", 7) == 7);
	close(fd);
	chmod("tok", 0644);
	CHECK(secret_file_read("tok", buf, sizeof(buf), &len, &e) == -1);
	CHECK_INT(e.code, EXIT_CONFIG);
	chmod("tok", 0600);
	CHECK(secret_file_read("tok", buf, sizeof(buf), &len, &e) == 0);
	/* every byte, the newline too: the caller's rules strip it */
	CHECK_INT(len, 7);
	CHECK(memcmp(buf, "s3cret\n", 7) == 0);
	/* neither a directory nor a FIFO (which must not block) */
	CHECK(mkdir("tokdir", 0700) == 0);
	CHECK(secret_file_read("tokdir", buf, sizeof(buf), &len, &e) == -1);
	CHECK(strstr(e.msg, "not a regular file") != NULL);
	CHECK(mkfifo("tokfifo", 0600) == 0);
	CHECK(secret_file_read("tokfifo", buf, sizeof(buf), &len, &e) == -1);
	CHECK(strstr(e.msg, "not a regular file") != NULL);
	CHECK(symlink("tok", "toklink") == 0);
	CHECK(secret_file_read("toklink", buf, sizeof(buf), &len, &e) == -1);
	CHECK(strstr(e.msg, "symbolic link") != NULL);
	/* too long: n bytes or more */
	CHECK(secret_file_read("tok", buf, 7, &len, &e) == -1);
	CHECK(strstr(e.msg, "too long") != NULL);
}

TEST(statedir_resolution_order)
{
	char buf[4096];
	struct error e;
	struct stat st;
	char base[4096];

	snprintf(base, sizeof(base), "%s", unit_tmpdir());
	unsetenv("AISTACK_STATE_DIR");
	setenv("STATE_DIRECTORY", "sd1:sd2", 1);
	CHECK(statedir_get(buf, sizeof(buf), &e) == 0);
	CHECK_STR(buf, "sd1");
	unsetenv("STATE_DIRECTORY");
	setenv("XDG_STATE_HOME", "xdg", 1);
	CHECK(statedir_get(buf, sizeof(buf), &e) == 0);
	CHECK_STR(buf, "xdg/aistack");
	CHECK(stat("xdg/aistack", &st) == 0 && (st.st_mode & 0777) == 0700);
	unsetenv("XDG_STATE_HOME");
	setenv("HOME", "home", 1);
	CHECK(statedir_get(buf, sizeof(buf), &e) == 0);
	CHECK_STR(buf, "home/.local/state/aistack");
	setenv("AISTACK_STATE_DIR", "explicit", 1);
	CHECK(statedir_get(buf, sizeof(buf), &e) == 0);
	CHECK_STR(buf, "explicit");
}

TEST(names_and_operands)
{
	char buf[4096];
	struct error e;

	CHECK(name_valid("telemetry"));
	CHECK(name_valid("a.b_c-9"));
	CHECK(!name_valid("Telemetry"));
	CHECK(!name_valid(".hidden"));
	CHECK(!name_valid("-x"));
	CHECK(!name_valid(""));
	CHECK(!name_valid("a/b"));
	CHECK(name_valid("x234567890123456789012345678901234567890123456789012345678901234"));
	CHECK(!name_valid("x2345678901234567890123456789012345678901234567890123456789012345"));
	CHECK(statedir_resolve("../evil", "streams", buf, sizeof(buf), &e) == 0);
	CHECK_STR(buf, "../evil");	/* a path, used as given */
	CHECK(statedir_resolve("..", "streams", buf, sizeof(buf), &e) == -1);
	CHECK_INT(e.code, EXIT_USAGE);
}

TEST(metrics_text_format)
{
	struct metrics m = METRICS_INIT;
	struct error e;
	char *d;
	size_t n;

	metrics_family(&m, "aistack_x_total", "counter", "X.");
	metrics_sample(&m, "aistack_x_total", 3, "stream", "a\"b", NULL);
	metrics_sample(&m, "aistack_x_total", 0.5, NULL);
	CHECK(metrics_write(&m, "test", "we/ird", &e) == 0);
	CHECK(read_file("metrics/test-we_ird.prom", 4096, &d, &n) == 0);
	CHECK_STR(d, "# HELP aistack_x_total X.\n# TYPE aistack_x_total counter\n"
	    "aistack_x_total{stream=\"a\\\"b\"} 3\naistack_x_total 0.5\n");
	free(d);
	metrics_release(&m);
}

TEST(error_messages_compose)
{
	struct error e;

	errno = ENOSPC;
	error_errno(&e, EXIT_IOERR, "%s: write", "telemetry");
	CHECK_STR(e.msg, "telemetry: write: No space left on device");
	error_wrap(&e, "batch");
	CHECK_STR(e.msg, "batch: telemetry: write: No space left on device");
	CHECK_INT(e.code, EXIT_IOERR);
}

TEST(clock_rfc3339_round_trip)
{
	char b[CLOCK_RFC3339_SIZE], small[8];
	int64_t t;

	CHECK(clock_rfc3339(b, sizeof(b), 1795767517) == 0);
	CHECK_STR(b, "2026-11-27T08:18:37Z");
	CHECK(clock_rfc3339_parse(b, &t) == 0 && t == 1795767517);
	CHECK(clock_rfc3339(b, sizeof(b), 0) == 0);
	CHECK_STR(b, "1970-01-01T00:00:00Z");
	CHECK(clock_rfc3339(small, sizeof(small), 1795767517) == -1);
	CHECK_STR(small, "");
	CHECK(clock_rfc3339_parse("2026-11-27T07:38:37", &t) == -1);
	CHECK(clock_rfc3339_parse("2026-11-27T08:18:37Z ", &t) == -1);
	CHECK(clock_rfc3339_parse("", &t) == -1);
	CHECK(clock_wall_ms() > (int64_t)1795767517 * 1000);
	clock_rfc3339_now(b, sizeof(b));
	CHECK(clock_rfc3339_parse(b, &t) == 0);
}

struct applied {
	int given2;
	char seen[3][64];
	int fail;
};

static int
applied_given(void *arg, int opt)
{
	return opt == 2 && ((struct applied *)arg)->given2;
}

static int
applied_set(void *arg, int opt, const char *v, const char *src,
    struct error *e)
{
	struct applied *a = arg;

	if (a->fail)
		return error_set(e, EXIT_CONFIG, "%s: invalid \"%s\"", src, v);
	snprintf(a->seen[opt], sizeof(a->seen[opt]), "%s@%s", v, src);
	return 0;
}

TEST(config_apply_fills_what_no_flag_set)
{
	static const struct config_option opts[] = {
		{ "one", 1 }, { "two", 2 }, { "none", 0 },
	};
	struct applied a;
	struct error e;
	FILE *f = fopen("apply.conf", "w");

	fputs("[x]\none = 1\ntwo = 2\n[y]\nnone = 0\n", f);
	fclose(f);
	setenv("AISTACK_CONFIG", "apply.conf", 1);
	memset(&a, 0, sizeof(a));
	a.given2 = 1;
	CHECK(config_apply("x", opts, 3, applied_given, applied_set, &a,
	    &e) == 0);
	CHECK_STR(a.seen[1], "1@apply.conf:2");
	CHECK_STR(a.seen[2], "");		/* a flag set it */
	CHECK_STR(a.seen[0], "");		/* another section's */
	a.given2 = 0;
	CHECK(config_apply("x", opts, 3, applied_given, applied_set, &a,
	    &e) == 0);
	CHECK_STR(a.seen[2], "2@apply.conf:3");
	a.fail = 1;
	CHECK(config_apply("x", opts, 3, applied_given, applied_set, &a,
	    &e) == -1);
	CHECK_INT(e.code, EXIT_CONFIG);
	CHECK_STR(e.msg, "apply.conf:2: invalid \"1\"");
	unsetenv("AISTACK_CONFIG");
}

TEST(sig_stop_caught)
{
	struct sigaction old;

	sigaction(SIGINT, NULL, &old);
	CHECK(!sig_stopping());
	sig_catch_stop();
	CHECK(!sig_stopping());
	raise(SIGTERM);
	CHECK(sig_stopping());
	sigaction(SIGINT, &old, NULL);
	sigaction(SIGTERM, &old, NULL);
}
