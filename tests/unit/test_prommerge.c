/*
 * lib/format/prommerge: files merged into one exposition that promtool accepts,
 * what is invalid dropped line by line or family by family with its
 * reason, closed texts owning their families.
 */
#include <string.h>

#include "format/prommerge.h"
#include "unit.h"

struct seen {
	size_t n;
	size_t line[32];
	const char *reason[32];
};

static void
note(void *arg, size_t line, const char *reason)
{
	struct seen *s = arg;

	if (s->n < 32) {
		s->line[s->n] = line;
		s->reason[s->n] = reason;
	}
	s->n++;
}

/* Merge own (closed) and file; the output in out, the rejections in s. */
static long
merge(const char *own, const char *file, struct buf *out, struct seen *s)
{
	struct prommerge *m = prommerge_new();
	long n;

	memset(s, 0, sizeof(*s));
	out->len = 0;
	if (m == NULL)
		return -1;
	if (own != NULL && prommerge_add(m, own, strlen(own), "own", 1, NULL,
	    NULL) != 0) {
		prommerge_free(m);
		return -1;
	}
	n = prommerge_add(m, file, strlen(file), "metrics/f.prom", 0, note, s);
	if (n >= 0 && (prommerge_write(m, out) == -1 || buf_cstr(out) == NULL))
		n = -1;
	prommerge_free(m);
	return n;
}

TEST(prommerge_bad_lines_dropped_with_reasons)
{
	struct buf out = BUF_INIT;
	struct seen s;

	CHECK_INT(merge(NULL,
	    "dup{a=\"1\",a=\"2\"} 1\n"
	    "a{__name__=\"x\"} 1\n"
	    "ok_one{x=\"1\"} 2\n"
	    "bad-name 1\n"
	    "v abc\n"
	    "ok_one{x=\"1\"} 3\n"
	    "l{a:b=\"1\"} 1\n"
	    "u{l=\"\xff\"} 1\n", &out, &s), 7);
	CHECK_INT(s.line[0], 1);
	CHECK_STR(s.reason[0], "duplicate label name");
	CHECK_INT(s.line[1], 2);
	CHECK_STR(s.reason[1], "reserved label name");
	CHECK_INT(s.line[2], 4);
	CHECK_INT(s.line[3], 5);
	CHECK_INT(s.line[4], 6);
	CHECK_STR(s.reason[4], "duplicate series");
	CHECK_INT(s.line[5], 7);
	/* the one good series stays, with a HELP line saying where from */
	CHECK_STR(out.data,
	    "# HELP ok_one Read from metrics/f.prom.\n"
	    "# TYPE ok_one untyped\n"
	    "ok_one{x=\"1\"} 2\n");
	buf_release(&out);
}

TEST(prommerge_bad_families_dropped_whole)
{
	struct buf out = BUF_INIT;
	struct seen s;

	CHECK_INT(merge(NULL,
	    "# TYPE c counter\nc 1\n"			/* no _total */
	    "# TYPE g_total gauge\ng_total 1\n"		/* _total on a gauge */
	    "# TYPE t gauge\n# TYPE t gauge\nt 1\n"	/* a second TYPE */
	    "late 1\n# TYPE late gauge\n"		/* TYPE after samples */
	    "# TYPE fooBar gauge\nfooBar 1\n"		/* camelCase */
	    "# TYPE w_milliseconds gauge\nw_milliseconds 1\n"
	    "# TYPE k_gauge gauge\nk_gauge 1\n"
	    "# TYPE q weird\nq 1\n"
	    "# HELP h_seconds Latency.\n# TYPE h_seconds histogram\n"
	    "h_seconds_bucket{le=\"1\"} 1\nh_seconds_bucket{le=\"+Inf\"} 2\n"
	    "h_seconds_sum 3\nh_seconds_count 2\nh_seconds 9\n"
	    "# TYPE n_total counter\nn_total -1\n",
	    &out, &s), 19);
	CHECK_STR(s.reason[0], "counter without the _total suffix");
	CHECK_STR(s.reason[2], "_total suffix on a non-counter");
	CHECK_STR(s.reason[4], "second TYPE line");
	CHECK_STR(s.reason[7], "TYPE line after the family's samples");
	CHECK_STR(s.reason[9], "metric name in camelCase");
	CHECK_STR(s.reason[11], "non-base unit in the metric name");
	CHECK_STR(s.reason[13], "metric type in the metric name");
	CHECK_STR(s.reason[15], "unknown type");
	CHECK_STR(s.reason[17], "sample name does not fit its family's type");
	CHECK_STR(s.reason[18], "counter below zero");
	CHECK_STR(out.data,
	    "# HELP h_seconds Latency.\n# TYPE h_seconds histogram\n"
	    "h_seconds_bucket{le=\"1\"} 1\nh_seconds_bucket{le=\"+Inf\"} 2\n"
	    "h_seconds_sum 3\nh_seconds_count 2\n");
	buf_release(&out);
}

TEST(prommerge_closed_families_and_clashes)
{
	const char *own =
	    "# HELP up_total Own.\n# TYPE up_total counter\nup_total 1\n"
	    "# HELP live_bytes Live.\n# TYPE live_bytes gauge\n";
	const char *a = "# TYPE x gauge\nx{s=\"1\"} 1\n";
	const char *b = "# HELP x Again.\n# TYPE x counter\nx{s=\"2\"} 2\n"
	    "# TYPE y gauge\ny{b=\"1\",a=\"2\"} 1\ny{a=\"2\", b=\"1\"} 5\n";
	struct prommerge *m = prommerge_new();
	struct buf out = BUF_INIT;
	struct seen s;

	CHECK(m != NULL);
	memset(&s, 0, sizeof(s));
	CHECK_INT(prommerge_add(m, own, strlen(own), "own", 1, NULL, NULL), 0);
	/* a file's samples of a closed family are left out, not rejected,
	 * even of one that has no sample (a live family with nothing now) */
	CHECK_INT(prommerge_add(m, "up_total 7\nlive_bytes 9\n", 23, "f", 0,
	    note, &s), 0);
	CHECK_INT(prommerge_add(m, a, strlen(a), "metrics/a.prom", 0, note, &s),
	    0);
	/* x clashes with a's type; y's second line is the same series */
	CHECK_INT(prommerge_add(m, b, strlen(b), "metrics/b.prom", 0, note, &s),
	    4);
	CHECK_STR(s.reason[0], "type clashes with the one given first");
	CHECK_STR(s.reason[3], "duplicate series");
	CHECK_INT(s.line[3], 6);
	CHECK_INT(prommerge_write(m, &out), 0);
	CHECK_STR(buf_cstr(&out),
	    "# HELP up_total Own.\n# TYPE up_total counter\nup_total 1\n"
	    "# HELP x Read from metrics/a.prom.\n# TYPE x gauge\nx{s=\"1\"} 1\n"
	    "# HELP y Read from metrics/b.prom.\n# TYPE y gauge\n"
	    "y{b=\"1\",a=\"2\"} 1\n");
	buf_release(&out);
	prommerge_free(m);
}

/* Found by a differential test against promtool: a histogram h beside a
 * family h_bucket (a parser reads the second as h's), a summary's
 * quantile that is not a number. */
TEST(prommerge_histogram_names_and_quantiles)
{
	struct buf out = BUF_INIT;
	struct seen s;

	CHECK_INT(merge(NULL,
	    "# TYPE h histogram\nh_count 1\n"
	    "# HELP h_bucket Other.\nh_bucket 2\n"
	    "# TYPE s summary\ns{quantile=\"x\"} 1\ns{quantile=\"0.5\"} 1\n"
	    "g{le=\"0x10\"} 1\n", &out, &s), 4);
	CHECK_STR(s.reason[0],
	    "name clashes with a histogram's or summary's series");
	CHECK_INT(s.line[1], 4);
	CHECK_STR(s.reason[2], "quantile label not a number");
	CHECK_STR(s.reason[3], "le label not a number");
	CHECK_STR(out.data,
	    "# HELP h Read from metrics/f.prom.\n# TYPE h histogram\nh_count 1\n"
	    "# HELP s Read from metrics/f.prom.\n# TYPE s summary\n"
	    "s{quantile=\"0.5\"} 1\n");
	buf_release(&out);
}
