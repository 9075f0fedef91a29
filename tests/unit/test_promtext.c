/* Prometheus text: the sample parser and the merger of several files. */
#include <math.h>
#include <string.h>

#include "format/promtext.h"
#include "unit.h"

#define P(text) prom_parse_sample(text, strlen(text), &s)

TEST(promtext_parse_sample)
{
	struct prom_sample s;
	char v[64];

	CHECK_INT(P("a_b 1"), 0);
	CHECK(s.namelen == 3 && s.value == 1);
	CHECK_INT(P("x{k=\"v\",l=\"a\\\"b\"} -2.5e3 123"), 0);
	CHECK(s.value == -2500);
	CHECK_INT(prom_label(&s, "l", v, sizeof(v)), 0);
	CHECK_STR(v, "a\"b");
	CHECK_INT(prom_label(&s, "k", v, sizeof(v)), 0);
	CHECK_STR(v, "v");
	CHECK_INT(prom_label(&s, "z", v, sizeof(v)), -1);
	CHECK_INT(P("x +Inf"), 0);
	CHECK(isinf(s.value));
	CHECK_INT(P("x NaN"), 0);
	CHECK_INT(P("x{} 1"), 0);
	CHECK_INT(P("x{a=\"1\",} 1"), 0);
	CHECK_INT(P("x"), -1);
	CHECK_INT(P("x 1 2 3"), -1);
	CHECK_INT(P("x inf"), -1);
	CHECK_INT(P("1x 1"), -1);
	CHECK_INT(P("x{a=1} 1"), -1);
	CHECK_INT(P("x{a=\"1} 1"), -1);
	CHECK_INT(P("x 0x10"), -1);
}

TEST(promtext_merge_families_once)
{
	const char *a =
	    "# HELP m_total Things.\n# TYPE m_total counter\n"
	    "m_total{s=\"a\"} 1\n"
	    "# TYPE g gauge\ng 5\n";
	const char *b =
	    "# HELP m_total Things again.\n# TYPE m_total counter\n"
	    "m_total{s=\"b\"} 2\nm_total{s=\"a\"} 9\n"
	    "# TYPE g counter\ng 6\n"
	    "bad line here\n"
	    "# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_bucket{le=\"+Inf\"} 2\n"
	    "h_sum 3\nh_count 2\n";
	const char *texts[2] = { a, b };
	size_t lens[2] = { strlen(a), strlen(b) };
	struct buf out = BUF_INIT;

	CHECK_INT(prom_merge(texts, lens, 2, &out), 0);
	CHECK_STR(buf_cstr(&out),
	    "# HELP m_total Things.\n# TYPE m_total counter\n"
	    "m_total{s=\"a\"} 1\nm_total{s=\"b\"} 2\n"
	    "# TYPE g gauge\ng 5\n"
	    "# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_bucket{le=\"+Inf\"} 2\n"
	    "h_sum 3\nh_count 2\n");
	buf_release(&out);
}
