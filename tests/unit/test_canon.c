/* The canonical form: fixed outputs, equivalences that must hold and
 * differences that must stay, normalization, and hostile inputs. */
#include <errno.h>
#include <jansson.h>
#include <locale.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <wctype.h>

#include "base/buf.h"
#include "dedup/dedupkey.h"
#include "dedup/minhash.h"
#include "format/canon.h"
#include "format/json.h"
#include "format/keypath.h"
#include "unit.h"

/* The canonical form of s with flags, in a static buffer ("<error>" when
 * canon_value fails). */
static const char *
canon_f(const char *s, unsigned flags)
{
	static char out[8192];
	struct canon *c = canon_new();
	struct buf b = BUF_INIT;

	if (c == NULL || canon_value(c, s, strlen(s), flags, &b) == -1)
		snprintf(out, sizeof(out), "<error>");
	else
		snprintf(out, sizeof(out), "%.*s", (int)b.len, b.data);
	buf_release(&b);
	canon_free(c);
	return out;
}

static const char *
canon(const char *s)
{
	return canon_f(s, 0);
}

static int
same(const char *a, const char *b)
{
	char x[8192];

	snprintf(x, sizeof(x), "%s", canon(a));
	return strcmp(x, canon(b)) == 0 && strcmp(x, "<error>") != 0;
}

static const char *
number(const char *s)
{
	static char out[256];
	struct buf b = BUF_INIT;

	if (canon_number(s, strlen(s), &b) == -1)
		snprintf(out, sizeof(out), "<error>");
	else
		snprintf(out, sizeof(out), "%.*s", (int)b.len, b.data);
	buf_release(&b);
	return out;
}

TEST(canon_fixed_outputs)
{
	CHECK_STR(canon("{}"), "{}");
	CHECK_STR(canon(" { } "), "{}");
	CHECK_STR(canon("[ ]"), "[]");
	CHECK_STR(canon("{\"b\":1,\"a\":[true,false,null]}"),
	    "{\"a\":[true,false,null],\"b\":1}");
	CHECK_STR(canon("{ \"z\" : { \"y\" : 2 , \"x\" : [ 1 , { \"d\":0,\"c\":1 } ] } }"),
	    "{\"z\":{\"x\":[1,{\"c\":1,\"d\":0}],\"y\":2}}");
	CHECK_STR(canon("\"x\""), "\"x\"");
	CHECK_STR(canon("12"), "12");
	CHECK_STR(canon("null"), "null");
}

TEST(canon_key_order_is_bytes)
{
	/* UTF-8 byte order: "Z" < "a" < "é" < "€" < "😀"; a prefix first */
	CHECK_STR(canon("{\"\xf0\x9f\x98\x80\":1,\"\xe2\x82\xac\":2,\"\xc3\xa9\":3,"
	    "\"a\":4,\"Z\":5,\"ab\":6,\"\":7}"),
	    "{\"\":7,\"Z\":5,\"a\":4,\"ab\":6,\"\xc3\xa9\":3,\"\xe2\x82\xac\":2,"
	    "\"\xf0\x9f\x98\x80\":1}");
	/* names compare decoded: "\u0062" is "b" */
	CHECK_STR(canon("{\"\\u0062\":1,\"a\":2}"), "{\"a\":2,\"b\":1}");
	/* "\n" (0x0a) sorts before "A" even though its escape starts with '\' */
	CHECK_STR(canon("{\"A\":1,\"\\n\":2}"), "{\"\\n\":2,\"A\":1}");
}

TEST(canon_equivalences)
{
	/* key order, white space */
	CHECK(same("{\"a\":1,\"b\":2}", "{\"b\":2,\"a\":1}"));
	CHECK(same("{\"a\":1,\"b\":2}", " {\t\"a\" :1 ,\r\n\"b\": 2 } "));
	/* escapes */
	CHECK(same("{\"s\":\"\\u00e9\"}", "{\"s\":\"\xc3\xa9\"}"));
	CHECK(same("{\"s\":\"\\u00E9\"}", "{\"s\":\"\xc3\xa9\"}"));
	CHECK(same("{\"s\":\"\\/\"}", "{\"s\":\"/\"}"));
	CHECK(same("{\"s\":\"\\ud83d\\ude00\"}", "{\"s\":\"\xf0\x9f\x98\x80\"}"));
	CHECK(same("{\"s\":\"\\u000a\"}", "{\"s\":\"\\n\"}"));
	CHECK(same("{\"s\":\"\\u0041\"}", "{\"s\":\"A\"}"));
	CHECK(same("{\"\\u00e9\":1}", "{\"\xc3\xa9\":1}"));
	/* numbers written alike */
	CHECK(same("{\"n\":1}", "{\"n\":1.0}"));
	CHECK(same("{\"n\":1}", "{\"n\":1e0}"));
	CHECK(same("{\"n\":1}", "{\"n\":10e-1}"));
	CHECK(same("{\"n\":1}", "{\"n\":0.1e1}"));
	CHECK(same("{\"n\":100}", "{\"n\":1e2}"));
	CHECK(same("{\"n\":100}", "{\"n\":1E+2}"));
	CHECK(same("{\"n\":100}", "{\"n\":100.000}"));
	CHECK(same("{\"n\":0}", "{\"n\":-0}"));
	CHECK(same("{\"n\":0}", "{\"n\":0.0e10}"));
	CHECK(same("{\"n\":0.5}", "{\"n\":5e-1}"));
	CHECK(same("{\"n\":-2.5}", "{\"n\":-25e-1}"));
	/* nested, in arrays */
	CHECK(same("[{\"b\":[1.0,{\"d\":\"\\u00e9\",\"c\":2}],\"a\":0}]",
	    "[ { \"a\" : 0 , \"b\" : [ 1 , { \"c\" : 2e0 , \"d\" : \"\xc3\xa9\" } ] } ]"));
}

TEST(canon_differences_kept)
{
	CHECK(!same("[1,2]", "[2,1]"));
	CHECK(!same("{\"a\":1}", "{\"a\":\"1\"}"));
	CHECK(!same("{\"a\":null}", "{}"));
	CHECK(!same("{\"a\":0.1}", "{\"a\":0.10000000000000001}"));
	CHECK(!same("{\"a\":9007199254740993}", "{\"a\":9007199254740992}"));
	CHECK(!same("{\"a\":1e400}", "{\"a\":1e401}"));
	CHECK(!same("{\"s\":\"A\"}", "{\"s\":\"a\"}"));
	CHECK(!same("{\"s\":\" a\"}", "{\"s\":\"a\"}"));
	CHECK(!same("{\"a\":{}}", "{\"a\":[]}"));
	CHECK(!same("{\"a\":true}", "{\"a\":1}"));
}

TEST(canon_string_escaping)
{
	/* only the escapes JSON requires, short forms where they exist */
	CHECK_STR(canon("\"\\u0001\\b\\f\\n\\r\\t\\u001f\\\"\\\\\""),
	    "\"\\u0001\\b\\f\\n\\r\\t\\u001f\\\"\\\\\"");
	CHECK_STR(canon("\"\\u0000\""), "\"\\u0000\"");
	/* '/', DEL, U+2028 and everything else raw */
	CHECK_STR(canon("\"\\/\\u007f\\u2028\\u00e9\""),
	    "\"/\x7f\xe2\x80\xa8\xc3\xa9\"");
	CHECK_STR(canon("{\"a\\\"b\":1}"), "{\"a\\\"b\":1}");
}

TEST(canon_numbers)
{
	CHECK_STR(number("0"), "0");
	CHECK_STR(number("-0"), "0");
	CHECK_STR(number("-0.000e-5"), "0");
	CHECK_STR(number("1.0"), "1");
	CHECK_STR(number("1e2"), "100");
	CHECK_STR(number("123.4500"), "123.45");
	CHECK_STR(number("0.5"), "0.5");
	CHECK_STR(number("0.000001"), "0.000001");
	CHECK_STR(number("1e-7"), "1e-7");
	CHECK_STR(number("1.5e-7"), "1.5e-7");
	CHECK_STR(number("1e20"), "100000000000000000000");
	CHECK_STR(number("1e21"), "1e+21");
	CHECK_STR(number("-12.5e21"), "-1.25e+22");
	CHECK_STR(number("1e400"), "1e+400");
	CHECK_STR(number("123456789012345678901234567890"),
	    "1.2345678901234567890123456789e+29");
	CHECK_STR(number("0.1e-400"), "1e-401");
	CHECK_STR(number("00012"), "12");	/* lenient: same value */
	/* exponents beyond 64 bits, with the significand's shift */
	CHECK_STR(number("1e100000000000000000000"), "1e+100000000000000000000");
	CHECK_STR(number("10e100000000000000000000"), "1e+100000000000000000001");
	CHECK_STR(number("0.001e100000000000000000000"),
	    "1e+99999999999999999997");
	CHECK_STR(number("1e-100000000000000000000"), "1e-100000000000000000000");
	CHECK_STR(number("0.01e-99999999999999999999"),
	    "1e-100000000000000000001");
	CHECK_STR(number("1e000000000000000000000002"), "100");
	CHECK_STR(number("1."), "<error>");
	CHECK_STR(number("-"), "<error>");
	CHECK_STR(number("1e"), "<error>");
	CHECK_STR(number("1x"), "<error>");
	CHECK_STR(number(""), "<error>");
}

TEST(canon_duplicate_names_last_wins)
{
	CHECK_STR(canon("{\"a\":1,\"a\":2}"), "{\"a\":2}");
	CHECK_STR(canon("{\"a\":1,\"b\":0,\"a\":{\"x\":[3]}}"),
	    "{\"a\":{\"x\":[3]},\"b\":0}");
	CHECK_STR(canon("{\"\\u0061\":1,\"a\":2,\"b\":3,\"a\":4}"),
	    "{\"a\":4,\"b\":3}");
	CHECK(same("{\"a\":1,\"a\":2}", "{\"a\":2}"));
}

TEST(canon_normalize)
{
	CHECK_STR(canon_f("{\"s\":\"  Hello   World \\t\"}", CANON_TRIM),
	    "{\"s\":\"Hello   World\"}");
	CHECK_STR(canon_f("{\"s\":\"  Hello   World \\t\"}", CANON_SPACE),
	    "{\"s\":\" Hello World \"}");
	CHECK_STR(canon_f("{\"s\":\"  Hello \\n  World \"}",
	    CANON_SPACE | CANON_TRIM | CANON_LOWER), "{\"s\":\"hello world\"}");
	/* names are never changed; nested values are */
	CHECK_STR(canon_f("{\"A B\":[\" X \",{\"K\":\"Y\"}]}",
	    CANON_TRIM | CANON_LOWER), "{\"A B\":[\"x\",{\"K\":\"y\"}]}");
	/* Unicode lower case and white space */
	CHECK_STR(canon_f("\"\xc3\x89T\xc3\x89 \xce\xa3\xd0\x96 \xc4\xb0\"",
	    CANON_LOWER), "\"\xc3\xa9t\xc3\xa9 \xcf\x83\xd0\xb6 i\"");
	CHECK_STR(canon_f("\"\xc2\xa0 a\xe3\x80\x80\xe2\x80\x83" "b\xc2\x85\"",
	    CANON_TRIM | CANON_SPACE), "\"a b\"");
	/* empty strings, and a string of nothing but space */
	CHECK_STR(canon_f("[\"\",{\"\":\"\"}]", CANON_TRIM | CANON_LOWER | CANON_SPACE),
	    "[\"\",{\"\":\"\"}]");
	CHECK_STR(canon_f("\" \\t \"", CANON_TRIM), "\"\"");
	CHECK_STR(canon_f("\" \\t \"", CANON_SPACE), "\" \"");
	/* escapes are decoded before normalizing */
	CHECK_STR(canon_f("\"\\u0041\\u00C9\"", CANON_LOWER), "\"a\xc3\xa9\"");
	/* other scalars untouched */
	CHECK_STR(canon_f("[1.0,true,\"T\"]", CANON_LOWER), "[1,true,\"t\"]");
}

/*
 * lower is the simple lower-case mapping of every code point: the same as
 * glibc's towlower in C.UTF-8 (2.36 is Unicode 14, the table's source).
 */
TEST(canon_lower_is_towlower_for_every_code_point)
{
	struct buf b = BUF_INIT;
	uint32_t cp;
	int bad = 0;

	CHECK(setlocale(LC_CTYPE, "C.UTF-8") != NULL);
	for (cp = 1; cp < 0x110000; cp++) {
		char in[4], want[4];
		size_t n, m;
		uint32_t l;

		if (cp >= 0xD800 && cp <= 0xDFFF)
			continue;
		n = (size_t)(cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4);
		l = (uint32_t)towlower((wint_t)cp);
		m = (size_t)(l < 0x80 ? 1 : l < 0x800 ? 2 : l < 0x10000 ? 3 : 4);
		/* UTF-8 by hand, so as not to test the code with itself */
		for (size_t k = 0; k < 2; k++) {
			uint32_t c = k == 0 ? cp : l;
			size_t len = k == 0 ? n : m;
			char *o = k == 0 ? in : want;
			static const unsigned char lead[] = { 0, 0, 0xC0, 0xE0, 0xF0 };
			size_t i;
			for (i = len - 1; i > 0; i--) {
				o[i] = (char)(0x80 | (c & 0x3F));
				c >>= 6;
			}
			o[0] = (char)(lead[len] | c);
		}
		b.len = 0;
		CHECK_INT(canon_normalize(in, n, CANON_LOWER, &b), 0);
		if ((b.len != m || memcmp(b.data, want, m) != 0) && bad++ < 5)
			unit_fail(__FILE__, __LINE__, "U+%04X: towlower U+%04X",
			    (unsigned)cp, (unsigned)l);
	}
	CHECK_INT(bad, 0);
	buf_release(&b);
	setlocale(LC_CTYPE, "C");
}

TEST(canon_flags_parse)
{
	unsigned f;
	char s[32];

	CHECK_INT(canon_flags_parse("trim,lower", &f), 0);
	CHECK_INT(f, CANON_TRIM | CANON_LOWER);
	canon_flags_str(f, s, sizeof(s));
	CHECK_STR(s, "lower,trim");
	CHECK_INT(canon_flags_parse("space,trim,lower,trim", &f), 0);
	canon_flags_str(f, s, sizeof(s));
	CHECK_STR(s, "lower,space,trim");
	CHECK_INT(canon_flags_parse("", &f), -1);
	CHECK_INT(canon_flags_parse("trim,", &f), -1);
	CHECK_INT(canon_flags_parse("upper", &f), -1);
	CHECK_INT(canon_flags_parse("trim,,lower", &f), -1);
}

TEST(canon_text)
{
	struct canon *c = canon_new();
	struct buf b = BUF_INIT;
	const char *s = "{\"b\":\"World\",\"a\":[\"Hello\\n\",1.0,null],"
	    "\"c\":{\"z\":\"x\"}}";

	CHECK(c != NULL);
	CHECK_INT(canon_text(c, s, strlen(s), CANON_LOWER, &b), 0);
	CHECK_INT(buf_putc(&b, '\0'), 0);
	CHECK_STR(b.data, "hello\n 1 null world x ");
	buf_release(&b);
	canon_free(c);
}

TEST(canon_unescape)
{
	struct buf b = BUF_INIT;

	{
		const char *s = "a\\u00e9\\\"\\ud83d\\ude00";
		CHECK_INT(canon_unescape(s, strlen(s), &b), 0);
	}
	CHECK_INT(b.len, 1 + 2 + 1 + 4);
	CHECK(memcmp(b.data, "a\xc3\xa9\"\xf0\x9f\x98\x80", 8) == 0);
	b.len = 0;
	CHECK_INT(canon_unescape("\\ud83d", 6, &b), -1);
	CHECK_INT(canon_unescape("\\x", 2, &b), -1);
	CHECK_INT(canon_unescape("\\", 1, &b), -1);
	CHECK_INT(canon_unescape("\\u12", 4, &b), -1);
	buf_release(&b);
}

TEST(canon_refuses_invalid_text)
{
	static const char *bad[] = {
		"", " ", "{", "}", "[1,]", "{\"a\"}", "{\"a\":}", "{\"a\":1,}",
		"{\"a\":1]", "[1}", "\"abc", "tru", "nul", "{1:2}", "[1 2]",
		"{\"a\":1}x", "1.", "[--1]", "{\"a\":\"\\q\"}",
	};
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (strcmp(canon(bad[i]), "<error>") != 0) {
			unit_fail(__FILE__, __LINE__, "accepted \"%s\"", bad[i]);
			return;
		}
	}
}

TEST(canon_deep_nesting)
{
	size_t depth, i;
	char *s;
	struct canon *c = canon_new();
	struct buf b = BUF_INIT;

	CHECK(c != NULL);
	for (depth = JSON_MAX_DEPTH - 1; depth <= JSON_MAX_DEPTH + 1; depth++) {
		/* {"a":{"a":...{}...}}: depth + 1 containers */
		s = malloc(depth * 6 + 8);
		CHECK(s != NULL);
		for (i = 0; i < depth; i++)
			memcpy(s + 5 * i, "{\"a\":", 5);
		memcpy(s + 5 * depth, "{}", 2);
		memset(s + 5 * depth + 2, '}', depth);
		b.len = 0;
		if (json_scan_value(s, 5 * depth + 2 + depth, NULL) == 0) {
			CHECK_INT(canon_value(c, s, 5 * depth + 2 + depth, 0, &b),
			    0);
			CHECK_INT(b.len, 5 * depth + 2 + depth);
			CHECK(memcmp(b.data, s, b.len) == 0);
		} else
			CHECK_INT(canon_value(c, s, 5 * depth + 2 + depth, 0, &b),
			    -1);
		free(s);
	}
	buf_release(&b);
	canon_free(c);
}

/* The canonicalizer's limit is the scanner's: 2048 containers whatever
 * the innermost value, in arrays or objects; the 2049th is refused. */
TEST(canon_depth_limit_is_the_scanners)
{
	static const char *const inner[] = { "", "1", "\"\\u00e9\"" };
	struct canon *c = canon_new();
	struct buf in = BUF_INIT, out = BUF_INIT;
	size_t k, i, j;
	int obj;

	CHECK(c != NULL);
	for (obj = 0; obj < 2; obj++)
		for (j = 0; j < 3; j++)
			for (k = JSON_MAX_DEPTH - 1; k <= JSON_MAX_DEPTH + 1; k++) {
				in.len = out.len = 0;
				/* { then k - 1 arrays or objects */
				buf_putc(&in, '{');
				for (i = 1; i < k; i++)
					buf_printf(&in, "%s%c", obj || i == 1 ?
					    " \"k\" : " : "", obj ? '{' : '[');
				if (*inner[j] != '\0')
					buf_printf(&in, "%s%s", obj || k == 1 ?
					    "\"k\":" : "", inner[j]);
				for (i = 1; i < k; i++)
					buf_putc(&in, obj ? '}' : ']');
				buf_putc(&in, '}');
				CHECK_INT(json_scan_value(in.data, in.len, NULL) == 0,
				    k <= JSON_MAX_DEPTH);
				CHECK_INT(canon_value(c, in.data, in.len, 0, &out) == 0,
				    k <= JSON_MAX_DEPTH);
				if (k <= JSON_MAX_DEPTH) {
					/* the form is valid, and its own form */
					struct buf again = BUF_INIT;
					CHECK_INT(json_scan_value(out.data, out.len,
					    NULL), 0);
					CHECK_INT(canon_value(c, out.data, out.len, 0,
					    &again), 0);
					CHECK(again.len == out.len &&
					    memcmp(again.data, out.data, out.len) == 0);
					buf_release(&again);
				}
			}
	buf_release(&in);
	buf_release(&out);
	canon_free(c);
}

TEST(canon_reuse_and_big_objects)
{
	struct canon *c = canon_new();
	struct buf in = BUF_INIT, out = BUF_INIT, again = BUF_INIT;
	int i;

	CHECK(c != NULL);
	/* 3000 members in reverse order, canonical twice with one scratch */
	buf_putc(&in, '{');
	for (i = 3000; i > 0; i--)
		buf_printf(&in, "%s\"k%05d\":[%d.0,\"v\\u00e9\"]", i < 3000 ?
		    "," : "", i, i);
	buf_putc(&in, '}');
	CHECK_INT(json_scan_value(in.data, in.len, NULL), 0);
	CHECK_INT(canon_value(c, in.data, in.len, 0, &out), 0);
	CHECK_INT(canon_value(c, out.data, out.len, 0, &again), 0);
	CHECK_INT(out.len, again.len);
	CHECK(memcmp(out.data, again.data, out.len) == 0);
	{
		const char *want = "{\"k00001\":[1,\"v\xc3\xa9\"],\"k00002\":";
		CHECK(memcmp(out.data, want, strlen(want)) == 0);
	}
	buf_release(&in);
	buf_release(&out);
	buf_release(&again);
	canon_free(c);
}

/* --- generated values, each written two ways ---------------------------- */

static unsigned long long rng_s, rng_w;

static unsigned
rnd(unsigned long long *st, unsigned n)
{
	*st ^= *st << 13;
	*st ^= *st >> 7;
	*st ^= *st << 17;
	return (unsigned)(*st % n);
}

#define S(n) rnd(&rng_s, (n))	/* what the value is */
#define W(n) rnd(&rng_w, (n))	/* how it is written */

static void
spell(struct buf *b, const char *const *alts, unsigned n)
{
	const char *s = alts[W(n)];

	buf_append(b, s, strlen(s));
}

static void
gws(struct buf *b)
{
	static const char *const w[] = { "", "", " ", "\t", "\r\n", "  " };

	spell(b, w, 6);
}

static void
gstring(struct buf *b, int key, unsigned id)
{
	static const char *const pieces[][4] = {
		{ "a", "\\u0061", "\\u0061", "a" },
		{ "\xc3\xa9", "\\u00e9", "\\u00E9", "\xc3\xa9" },
		{ "/", "\\/", "\\u002f", "/" },
		{ "\\n", "\\u000a", "\\u000A", "\\n" },
		{ "\\\"", "\\u0022", "\\\"", "\\\"" },
		{ "\\\\", "\\u005c", "\\\\", "\\u005C" },
		{ "\xf0\x9f\x98\x80", "\\ud83d\\ude00", "\\uD83D\\uDE00",
		    "\xf0\x9f\x98\x80" },
		{ " ", "\\u0020", " ", " " },
		{ "\\u0000", "\\u0000", "\\u0000", "\\u0000" },
		{ "\\t", "\\u0009", "\\t", "\\t" },
		{ "\x7f", "\\u007f", "\\u007F", "\x7f" },
	};
	unsigned i, n = key ? 0 : S(5);

	buf_putc(b, '"');
	if (key) {
		/* distinct names: a digit string of id, in a piece's dress */
		char d[16];
		snprintf(d, sizeof(d), "%u", id);
		spell(b, pieces[S(8)], 4);
		buf_append(b, d, strlen(d));
	}
	for (i = 0; i < n; i++)
		spell(b, pieces[S(11)], 4);
	buf_putc(b, '"');
}

static void
gnumber(struct buf *b)
{
	static const char *const nums[][5] = {
		{ "1", "1.0", "1e0", "10e-1", "0.1e1" },
		{ "100", "1e2", "1E+2", "100.00", "0.001e5" },
		{ "0", "-0", "0.0", "0e5", "-0.000E-3" },
		{ "-2.5", "-25e-1", "-0.25e1", "-2.50", "-250E-2" },
		{ "123456789012345678901234", "1.23456789012345678901234e23",
		    "123456789012345678901234.0", "12345678901234567890123.4e1",
		    "0.123456789012345678901234e24" },
		{ "0.000001", "1e-6", "10e-7", "0.0000010", "1E-6" },
		{ "6.02e23", "602e21", "6.020E+23", "60.2e22", "0.602e24" },
		{ "3", "3", "3.000", "300e-2", "3e0" },
	};

	spell(b, nums[S(8)], 5);
}

static void gvalue(struct buf *b, int depth);

static void
gobject(struct buf *b, int depth)
{
	struct buf m[5];
	unsigned n = depth > 3 ? 0 : S(6), i, order[5];

	/* members in generation order, then written in a shuffled order */
	for (i = 0; i < n; i++) {
		memset(&m[i], 0, sizeof(m[i]));
		gws(&m[i]);
		gstring(&m[i], 1, i);
		gws(&m[i]);
		buf_putc(&m[i], ':');
		gws(&m[i]);
		gvalue(&m[i], depth + 1);
		gws(&m[i]);
		order[i] = i;
	}
	for (i = n; i > 1; i--) {
		unsigned j = W(i), t = order[i - 1];
		order[i - 1] = order[j];
		order[j] = t;
	}
	buf_putc(b, '{');
	for (i = 0; i < n; i++) {
		if (i > 0)
			buf_putc(b, ',');
		buf_append(b, m[order[i]].data, m[order[i]].len);
		buf_release(&m[order[i]]);
	}
	gws(b);
	buf_putc(b, '}');
}

static void
gvalue(struct buf *b, int depth)
{
	unsigned i, n;

	switch (S(depth > 3 ? 5 : 7)) {
	case 0: gstring(b, 0, 0); break;
	case 1: gnumber(b); break;
	case 2: buf_printf(b, "true"); break;
	case 3: buf_printf(b, "false"); break;
	case 4: buf_printf(b, "null"); break;
	case 5: gobject(b, depth); break;
	default:
		buf_putc(b, '[');
		n = S(4);
		for (i = 0; i < n; i++) {
			if (i > 0)
				buf_putc(b, ',');
			gws(b);
			gvalue(b, depth + 1);
			gws(b);
		}
		buf_putc(b, ']');
	}
}

/* Generate value number i written with spelling seed w. */
static void
generate(struct buf *b, unsigned long long i, unsigned long long w)
{
	rng_s = 0x9E3779B97F4A7C15ULL ^ (i * 0xBF58476D1CE4E5B9ULL + 1);
	rng_w = 0xD1B54A32D192ED03ULL ^ (w * 0x94D049BB133111EBULL + 7);
	b->len = 0;
	gws(b);
	gobject(b, 0);
	gws(b);
}

TEST(canon_generated_spellings_agree)
{
	struct canon *c = canon_new();
	struct buf x = BUF_INIT, y = BUF_INIT, cx = BUF_INIT, cy = BUF_INIT,
	    ccx = BUF_INIT;
	unsigned long long i;
	unsigned bad = 0;

	CHECK(c != NULL);
	for (i = 0; i < 20000; i++) {
		generate(&x, i, 2 * i);
		generate(&y, i, 2 * i + 1);
		cx.len = cy.len = ccx.len = 0;
		if (json_scan_record(x.data, x.len, NULL) != 0 ||
		    json_scan_record(y.data, y.len, NULL) != 0 ||
		    canon_value(c, x.data, x.len, 0, &cx) != 0 ||
		    canon_value(c, y.data, y.len, 0, &cy) != 0 ||
		    canon_value(c, cx.data, cx.len, 0, &ccx) != 0 ||
		    json_scan_record(cx.data, cx.len, NULL) != 0) {
			if (bad++ < 3)
				unit_fail(__FILE__, __LINE__, "failed on %.*s",
				    (int)x.len, x.data);
			continue;
		}
		if (cx.len != cy.len || memcmp(cx.data, cy.data, cx.len) != 0 ||
		    ccx.len != cx.len || memcmp(ccx.data, cx.data, cx.len) != 0) {
			if (bad++ < 3)
				unit_fail(__FILE__, __LINE__, "differ:\n%.*s\n%.*s\n"
				    "-> %.*s\n-> %.*s", (int)x.len, x.data,
				    (int)y.len, y.data, (int)cx.len, cx.data,
				    (int)cy.len, cy.data);
		}
	}
	CHECK_INT(bad, 0);
	buf_release(&x);
	buf_release(&y);
	buf_release(&cx);
	buf_release(&cy);
	buf_release(&ccx);
	canon_free(c);
}

TEST(canon_agrees_with_jansson)
{
	struct canon *c = canon_new();
	struct buf x = BUF_INIT, cx = BUF_INIT;
	unsigned long long i;
	unsigned bad = 0, compared = 0;
	size_t flags = JSON_DECODE_INT_AS_REAL | JSON_ALLOW_NUL |
	    JSON_REJECT_DUPLICATES;

	CHECK(c != NULL);
	for (i = 0; i < 20000; i++) {
		json_t *a, *b;
		json_error_t err;

		generate(&x, i + 1000000, i);
		cx.len = 0;
		if (canon_value(c, x.data, x.len, 0, &cx) != 0) {
			bad++;
			continue;
		}
		a = json_loadb(x.data, x.len, flags, &err);
		b = json_loadb(cx.data, cx.len, flags, &err);
		if (a != NULL && b != NULL) {
			compared++;
			if (!json_equal(a, b) && bad++ < 3)
				unit_fail(__FILE__, __LINE__, "jansson differs: "
				    "%.*s -> %.*s", (int)x.len, x.data,
				    (int)cx.len, cx.data);
		} else if ((a == NULL) != (b == NULL) && bad++ < 3)
			unit_fail(__FILE__, __LINE__, "jansson loads only one: "
			    "%.*s -> %.*s", (int)x.len, x.data, (int)cx.len,
			    cx.data);
		json_decref(a);
		json_decref(b);
	}
	CHECK_INT(bad, 0);
	CHECK(compared > 15000);
	buf_release(&x);
	buf_release(&cx);
	canon_free(c);
}

/* --- cost linear in the bytes --------------------------------------------- */

/*
 * Each way of reading a record for its key (canonical form, normalized,
 * text, a key path that skips the string or lands on it, the digest, the
 * MinHash signature) on a record of n and of 16 n units: the cost must
 * grow 16-fold, not 256-fold.  The measure is the thread's CPU time, the
 * best of three rounds of at least 2 ms each, so that a busy machine
 * seldom moves a ratio far; the bound is 64: four times the linear
 * ratio (sorting members, n log n, and the caches make it 20 to 30
 * here) and a quarter of the quadratic one (the reader of issue #17 gave
 * 116 to 342).
 */
enum cost_op {
	OP_SCAN, OP_VALUE, OP_NORMALIZED, OP_TEXT, OP_PATH_OFF, OP_PATH_ON,
	OP_DIGEST, OP_SIGN, OP_COUNT
};
static const char *const op_name[] = {
	"json_scan_record", "canon_value", "canon_value normalized",
	"canon_text", "keypath_get .meta", "keypath_get .text + canon_value",
	"dedupkey_digest -k .meta,.text", "canon_text + minhash_sign",
};

struct cost_ctx {
	struct canon *c;
	struct dedupkey k;
	struct dedupkey_def def;
	struct keypath_list meta, text;
	struct buf out;
};

static double
cpu_seconds(void)
{
	struct timespec t;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
	return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static int
cost_run(struct cost_ctx *x, enum cost_op op, const char *p, size_t n)
{
	unsigned char d[DEDUPKEY_DIGEST], sig[MINHASH_SIG];
	const char *vp;
	size_t vn;

	x->out.len = 0;
	switch (op) {
	case OP_SCAN:
		return json_scan_record(p, n, NULL);
	case OP_VALUE:
		return canon_value(x->c, p, n, 0, &x->out);
	case OP_NORMALIZED:
		return canon_value(x->c, p, n, CANON_TRIM | CANON_LOWER |
		    CANON_SPACE, &x->out);
	case OP_TEXT:
		return canon_text(x->c, p, n, 0, &x->out);
	case OP_PATH_OFF:
		return keypath_get(&x->meta.v[0], p, n, &vp, &vn) ? 0 : -1;
	case OP_PATH_ON:
		if (!keypath_get(&x->text.v[0], p, n, &vp, &vn))
			return -1;
		return canon_value(x->c, vp, vn, 0, &x->out);
	case OP_DIGEST:
		return dedupkey_digest(&x->k, &x->def, p, n, d, NULL);
	case OP_SIGN:
		if (canon_text(x->c, p, n, CANON_LOWER, &x->out) == -1)
			return -1;
		minhash_sign(x->out.data, x->out.len, sig);
		return 0;
	default:
		return -1;
	}
}

/* CPU seconds of one op on p[0..n): the best of three rounds. */
static double
cost_of(struct cost_ctx *x, enum cost_op op, const char *p, size_t n)
{
	double best = 1e9;
	int round;

	for (round = 0; round < 3; round++) {
		double t0 = cpu_seconds(), t;
		long k = 0;
		do {
			if (cost_run(x, op, p, n) == -1)
				return -1;
			k++;
		} while ((t = cpu_seconds() - t0) < 0.002);
		if (t / (double)k < best)
			best = t / (double)k;
	}
	return best;
}

/* The record {"meta":1,"text":"UNIT x count"}, or with shape 'o' an
 * object of count members "UNITi":i, or 'd' count nested arrays. */
static char *
cost_record(const char *unit, char shape, size_t count, size_t *len)
{
	struct buf b = BUF_INIT;
	size_t i;

	if (shape == 'o') {
		buf_printf(&b, "{\"meta\":1,\"text\":{");
		for (i = 0; i < count; i++)
			buf_printf(&b, "%s\"%s%zu\":%zu", i ? "," : "", unit,
			    count - i, i);
		buf_printf(&b, "}}");
	} else if (shape == 'd') {
		buf_printf(&b, "{\"meta\":1,\"text\":");
		for (i = 0; i < count; i++)
			buf_putc(&b, '[');
		buf_printf(&b, "\"%s\"", unit);
		for (i = 0; i < count; i++)
			buf_putc(&b, ']');
		buf_putc(&b, '}');
	} else {
		buf_printf(&b, "{\"meta\":1,\"text\":\"");
		for (i = 0; i < count; i++)
			buf_append(&b, unit, strlen(unit));
		buf_printf(&b, "\"}");
	}
	*len = b.len;
	return b.data;
}

TEST(canon_key_cost_is_linear_for_every_escape_mix)
{
	static const struct {
		const char *unit;
		char shape;
		size_t n;
	} cases[] = {
		{ "\\u00e9", 's', 2048 },
		{ "\\ud83d\\ude00", 's', 2048 },
		{ "\\n", 's', 4096 },
		{ "\xc3\xa9", 's', 4096 },
		{ "\\u4e2d\\u6587", 's', 2048 },	/* ensure_ascii CJK */
		{ "\\\"\\\\\\/\\t\\u0001a \\u00C9", 's', 1024 },
		{ "\\u00e9", 'o', 1024 },	/* escaped member names */
		{ "k", 'o', 1024 },		/* sorting: n log n */
		{ "x", 'd', 120 },		/* nesting, to 1920 deep */
	};
	struct cost_ctx x;
	struct error e;
	double worst = 0;
	size_t i;
	int op;

	memset(&x, 0, sizeof(x));
	CHECK((x.c = canon_new()) != NULL);
	CHECK(dedupkey_init(&x.k) == 0);
	CHECK(keypath_parse(".meta", &x.meta, &e) == 0);
	CHECK(keypath_parse(".text", &x.text, &e) == 0);
	CHECK(keypath_parse(".meta,.text", &x.def.paths, &e) == 0);
	x.def.mode = DEDUPKEY_PATHS;
	x.def.norm = CANON_LOWER;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		size_t ls, lb;
		char *small = cost_record(cases[i].unit, cases[i].shape,
		    cases[i].n, &ls);
		char *big = cost_record(cases[i].unit, cases[i].shape,
		    16 * cases[i].n, &lb);
		CHECK_INT(json_scan_record(small, ls, NULL), 0);
		CHECK_INT(json_scan_record(big, lb, NULL), 0);
		for (op = 0; op < OP_COUNT; op++) {
			double a = cost_of(&x, op, small, ls);
			double b = cost_of(&x, op, big, lb);
			if (a > 0 && b / a > worst)
				worst = b / a;
			if (a <= 0 || b <= 0 || b / a > 64)
				unit_fail(__FILE__, __LINE__, "%s on %zu and %zu "
				    "units of %s (%c): %.1f us and %.1f us, "
				    "x%.1f", op_name[op], cases[i].n,
				    16 * cases[i].n, cases[i].unit,
				    cases[i].shape, a * 1e6, b * 1e6, b / a);
		}
		free(small);
		free(big);
	}
	fprintf(stderr, "    16 times the bytes cost at most %.1f times the "
	    "time (linear: 16, quadratic: 256)\n", worst);
	keypath_list_release(&x.meta);
	keypath_list_release(&x.text);
	dedupkey_def_release(&x.def);
	dedupkey_release(&x.k);
	buf_release(&x.out);
	canon_free(x.c);
}
