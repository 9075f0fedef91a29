/* The record scanner: fixed cases, the nesting limit, and a differential
 * test against jansson over generated and mutated inputs. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "format/json.h"
#include "unit.h"

static int
ok(const char *s)
{
	return json_scan_record(s, strlen(s), NULL) == 0;
}

static enum json_status
status_of(const char *s, size_t n)
{
	struct json_result r;

	json_scan_record(s, n, &r);
	return r.status;
}

TEST(json_valid_records)
{
	CHECK(ok("{}"));
	CHECK(ok(" {} "));
	CHECK(ok("{\"a\":1}"));
	CHECK(ok("{\"a\":[1,2.5,-3e10,0,-0.0,1E+2,1e-2],\"b\":{\"c\":null}}"));
	CHECK(ok("{\"s\":\"\\\"\\\\\\/\\b\\f\\n\\r\\t\\u00e9\\uD83D\\uDE00\"}"));
	CHECK(ok("{\"s\":\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\"}"));
	CHECK(ok("{\"t\":true,\"f\":false,\"n\":null}"));
	CHECK(ok("{\"nul\":\"\\u0000\"}"));
	CHECK(ok("{\"a\":1}\r"));
	CHECK(ok("{\"big\":1e400}"));
	CHECK(ok("{\"long\":\"abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnop\"}"));
}

TEST(json_invalid_records)
{
	CHECK_INT(status_of("", 0), JSON_EMPTY);
	CHECK_INT(status_of("  \t", 3), JSON_EMPTY);
	CHECK_INT(status_of("[1]", 3), JSON_NOT_OBJECT);
	CHECK_INT(status_of("\"s\"", 3), JSON_NOT_OBJECT);
	CHECK_INT(status_of("{}{}", 4), JSON_TRAILING);
	CHECK_INT(status_of("{} x", 4), JSON_TRAILING);
	CHECK_INT(status_of("{\"a\":1", 6), JSON_TRUNCATED);
	CHECK_INT(status_of("{\"a", 3), JSON_TRUNCATED);
	CHECK_INT(status_of("{\"a\":01}", 8), JSON_UNEXPECTED);
	CHECK_INT(status_of("{\"a\":1.}", 8), JSON_NUMBER);
	CHECK_INT(status_of("{\"a\":-}", 7), JSON_NUMBER);
	CHECK_INT(status_of("{\"a\":1e}", 8), JSON_NUMBER);
	CHECK_INT(status_of("{\"a\":tru}", 9), JSON_UNEXPECTED);
	CHECK_INT(status_of("{\"a\":\"\\x\"}", 10), JSON_ESCAPE);
	CHECK_INT(status_of("{\"a\":\"\\u12G4\"}", 14), JSON_ESCAPE);
	CHECK_INT(status_of("{\"a\":\"\\uD800\"}", 14), JSON_SURROGATE);
	CHECK_INT(status_of("{\"a\":\"\\uDC00\"}", 14), JSON_SURROGATE);
	CHECK_INT(status_of("{\"a\":\"\t\"}", 8), JSON_CONTROL);
	CHECK_INT(status_of("{\"a\":\"\0\"}", 8), JSON_CONTROL);
	CHECK_INT(status_of("{\"a\":1,}", 8), JSON_UNEXPECTED);
	CHECK_INT(status_of("{\"a\" 1}", 7), JSON_UNEXPECTED);
	CHECK_INT(status_of("{'a':1}", 7), JSON_UNEXPECTED);
	CHECK_INT(status_of("{\"a\":\"\xff\"}", 9), JSON_UTF8);
	CHECK_INT(status_of("{\"a\":\"\xc0\xaf\"}", 10), JSON_UTF8);	/* overlong */
	CHECK_INT(status_of("{\"a\":\"\xed\xa0\x80\"}", 11), JSON_UTF8); /* surrogate */
	CHECK_INT(status_of("{\"a\":\"\xf4\x90\x80\x80\"}", 12), JSON_UTF8);
	CHECK_INT(status_of("{\"a\":\"\xe2\x82\"}", 10), JSON_UTF8);	/* truncated */
	CHECK_INT(status_of("{\"a\":1}\xff", 8), JSON_TRAILING);
}

TEST(json_error_offsets)
{
	struct json_result r;
	char why[128];

	CHECK(json_scan_record("{\"a\":x}", 7, &r) == -1);
	CHECK_U64(r.offset, 5);
	CHECK_STR(json_result_str(&r, why, sizeof(why)),
	    "invalid JSON: unexpected 'x' at byte 5");
	CHECK(json_scan_record("{\"a\":\"\xff\"}", 9, &r) == -1);
	CHECK_STR(json_result_str(&r, why, sizeof(why)), "invalid UTF-8 at byte 6");
}

/* Build k nested arrays inside a record, with or without a scalar. */
static char *
nested(size_t k, int scalar, size_t *len)
{
	struct buf b = BUF_INIT;
	size_t i;

	buf_append(&b, "{\"a\":", 5);
	for (i = 0; i < k; i++)
		buf_putc(&b, '[');
	if (scalar)
		buf_putc(&b, '1');
	for (i = 0; i < k; i++)
		buf_putc(&b, ']');
	buf_putc(&b, '}');
	*len = b.len;
	return b.data;
}

static int
jansson_accepts(const char *p, size_t n, int *overflow)
{
	json_error_t je;
	json_t *j = json_loadb(p, n, JSON_DECODE_INT_AS_REAL | JSON_ALLOW_NUL, &je);
	int acc = j != NULL && json_is_object(j);

	*overflow = j == NULL && strstr(je.text, "overflow") != NULL;
	json_decref(j);
	return acc;
}

/*
 * A record of k nested containers: the outer object, then arrays (shape
 * 'a'), objects {"k":...} (shape 'o') or both in turn ('m'); the
 * innermost container is empty or holds one value, inner.
 */
static int
container_is_object(size_t i, char shape)
{
	return i == 1 || shape == 'o' || (shape == 'm' && i % 2 == 1);
}

static char *
containers(size_t k, char shape, const char *inner, size_t *len)
{
	struct buf b = BUF_INIT;
	size_t i;

	for (i = 1; i <= k; i++) {
		if (i > 1 && container_is_object(i - 1, shape))
			buf_append(&b, "\"k\":", 4);
		buf_putc(&b, container_is_object(i, shape) ? '{' : '[');
	}
	if (*inner != '\0') {
		if (container_is_object(k, shape))
			buf_append(&b, "\"k\":", 4);
		buf_append(&b, inner, strlen(inner));
	}
	for (i = k; i >= 1; i--)
		buf_putc(&b, container_is_object(i, shape) ? '}' : ']');
	*len = b.len;
	return b.data;
}

/* Does jansson refuse p[0..n) as too deep? */
static int
jansson_too_deep(const char *p, size_t n)
{
	json_error_t je;
	json_t *j = json_loadb(p, n, JSON_DECODE_INT_AS_REAL, &je);

	json_decref(j);
	return j == NULL && strstr(je.text, "maximum parsing depth") != NULL;
}

TEST(json_depth_limit_is_exact)
{
	static const char *const inner[] = { "", "1", "\"x\"", "null" };
	static const char shapes[] = "aom";
	size_t k, len, si, ii;
	struct json_result r;

	/* the real shapes of the issue first */
	{
		char *p = containers(JSON_MAX_DEPTH, 'a', "1", &len);
		CHECK(memcmp(p, "{\"k\":[[", 7) == 0);
		CHECK(memmem(p, len, "[[1]]", 5) != NULL);
		CHECK(memcmp(p + len - 2, "]}", 2) == 0);
		free(p);
	}
	for (k = JSON_MAX_DEPTH - 1; k <= JSON_MAX_DEPTH + 1; k++)
		for (si = 0; si < 3; si++)
			for (ii = 0; ii < 4; ii++) {
				char *p = containers(k, shapes[si], inner[ii], &len);
				int ours = json_scan_record(p, len, &r) == 0;
				int ov, theirs = jansson_accepts(p, len, &ov);
				if (ours != (k <= JSON_MAX_DEPTH))
					unit_fail(__FILE__, __LINE__, "%zu containers, "
					    "shape %c, inner '%s': ours %d", k,
					    shapes[si], inner[ii], ours);
				if (!ours && r.status != JSON_DEPTH)
					unit_fail(__FILE__, __LINE__, "%zu: status %d",
					    k, (int)r.status);
				/* jansson counts the innermost scalar as a
				 * level: the one documented divergence */
				if (theirs != ours && !(k == JSON_MAX_DEPTH &&
				    *inner[ii] != '\0' && jansson_too_deep(p, len)))
					unit_fail(__FILE__, __LINE__, "%zu containers, "
					    "shape %c, inner '%s': jansson %d", k,
					    shapes[si], inner[ii], theirs);
				CHECK_INT(json_scan_value(p, len, NULL) == 0, ours);
				free(p);
			}
}

/* The 2049th container is refused at its opening bracket. */
TEST(json_depth_error_names_the_2049th_container)
{
	size_t len;
	char *p = nested(JSON_MAX_DEPTH, 1, &len);
	struct json_result r;
	char msg[128];

	/* {"a": then 2048 arrays: the last '[' is container 2049 */
	CHECK(json_scan_record(p, len, &r) == -1);
	CHECK_INT(r.status, JSON_DEPTH);
	CHECK_INT(r.offset, 5 + JSON_MAX_DEPTH - 1);
	CHECK_STR(json_result_str(&r, msg, sizeof(msg)),
	    "nested deeper than 2048 at byte 2052");
	free(p);
	p = nested(JSON_MAX_DEPTH - 1, 1, &len);
	CHECK(json_scan_record(p, len, &r) == 0);
	free(p);
}

TEST(json_deep_nesting_is_refused_without_crash)
{
	size_t len;
	char *p = nested(200000, 1, &len);
	struct json_result r;

	CHECK(json_scan_record(p, len, &r) == -1);
	CHECK_INT(r.status, JSON_DEPTH);
	free(p);
}

/* --- differential testing against jansson ------------------------------ */

static unsigned long long rng_state = 0x9E3779B97F4A7C15ULL;

static unsigned
rnd(unsigned n)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return (unsigned)(rng_state % n);
}

static void gen_value(struct buf *b, int depth);

static void
gen_string(struct buf *b)
{
	static const char *pieces[] = {
		"a", "hello", " ", "\\\"", "\\\\", "\\/", "\\n", "\\t", "\\u00e9",
		"\\uD83D\\uDE00", "\\u0000", "\xc3\xa9", "\xe2\x82\xac",
		"\xf0\x9f\x98\x80", "x y z", "0", "\\b\\f\\r", "\x7f",
	};
	unsigned i, n = rnd(6);

	buf_putc(b, '"');
	for (i = 0; i < n; i++) {
		const char *s = pieces[rnd(sizeof(pieces) / sizeof(pieces[0]))];
		buf_append(b, s, strlen(s));
	}
	buf_putc(b, '"');
}

static void
gen_number(struct buf *b)
{
	static const char *nums[] = {
		"0", "-0", "1", "-17", "3.25", "1e5", "-2.5E-3", "12345678901234",
		"0.0001", "6.02e23", "1E+2", "99999999999999999999",
	};
	const char *s = nums[rnd(sizeof(nums) / sizeof(nums[0]))];

	buf_append(b, s, strlen(s));
}

static void
ws(struct buf *b)
{
	static const char *w[] = { "", "", "", " ", "\t", "\r", "  " };

	buf_printf(b, "%s", w[rnd(7)]);
}

static void
gen_object(struct buf *b, int depth)
{
	unsigned i, n = depth > 4 ? 0 : rnd(5);

	buf_putc(b, '{');
	for (i = 0; i < n; i++) {
		if (i > 0)
			buf_putc(b, ',');
		ws(b);
		gen_string(b);
		ws(b);
		buf_putc(b, ':');
		ws(b);
		gen_value(b, depth + 1);
		ws(b);
	}
	buf_putc(b, '}');
}

static void
gen_value(struct buf *b, int depth)
{
	unsigned i, n;

	switch (rnd(depth > 4 ? 5 : 7)) {
	case 0: gen_string(b); break;
	case 1: gen_number(b); break;
	case 2: buf_printf(b, "true"); break;
	case 3: buf_printf(b, "false"); break;
	case 4: buf_printf(b, "null"); break;
	case 5: gen_object(b, depth); break;
	default:
		buf_putc(b, '[');
		n = rnd(4);
		for (i = 0; i < n; i++) {
			if (i > 0)
				buf_putc(b, ',');
			ws(b);
			gen_value(b, depth + 1);
		}
		buf_putc(b, ']');
	}
}

static void
mutate(struct buf *b)
{
	static const char bytes[] = "{}[]\":,\\ntfu0e.-+ \t\x00\x01\x1f\x7f"
	    "\x80\xbf\xc0\xc3\xe2\xed\xf0\xf4\xf8\xff/xX";
	unsigned i, k = 1 + rnd(3);

	for (i = 0; i < k && b->len > 0; i++) {
		size_t at = rnd((unsigned)b->len);
		switch (rnd(4)) {
		case 0:		/* replace */
			b->data[at] = bytes[rnd(sizeof(bytes) - 1)];
			break;
		case 1:		/* insert */
			buf_putc(b, 0);
			memmove(b->data + at + 1, b->data + at, b->len - at - 1);
			b->data[at] = bytes[rnd(sizeof(bytes) - 1)];
			break;
		case 2:		/* delete */
			memmove(b->data + at, b->data + at + 1, b->len - at - 1);
			b->len--;
			break;
		default:	/* truncate */
			b->len = at;
		}
	}
}

TEST(json_differential_against_jansson)
{
	unsigned long i, valid = 0, invalid = 0, skipped = 0, nulquirk = 0, bad = 0;

	for (i = 0; i < 300000; i++) {
		struct buf b = BUF_INIT;
		int ours, theirs, ov;

		ws(&b);
		gen_object(&b, 0);
		ws(&b);
		if (i % 3 != 0)
			mutate(&b);
		ours = json_scan_record(b.data, b.len, NULL) == 0;
		theirs = jansson_accepts(b.data, b.len, &ov);
		if (ours != theirs) {
			if (ours && ov) {
				skipped++;	/* a number beyond double range */
			} else if (!ours && memchr(b.data, '\0', b.len) != NULL) {
				/* jansson takes a raw NUL after a token as the
				 * end of input ("{\"a\":1\0}" loads); RFC 8259
				 * allows no NUL outside strings */
				nulquirk++;
			} else if (bad++ < 5) {
				unit_fail(__FILE__, __LINE__, "disagree (ours %d, "
				    "jansson %d) on %zu bytes: %.*s", ours, theirs,
				    b.len, (int)b.len, b.data);
			}
		}
		if (ours)
			valid++;
		else
			invalid++;
		buf_release(&b);
	}
	fprintf(stderr, "    differential: %lu valid, %lu invalid, %lu overflow "
	    "and %lu raw-NUL cases set aside, %lu disagreements\n", valid,
	    invalid, skipped, nulquirk, bad);
	CHECK(valid > 50000 && invalid > 50000);
	CHECK_INT(bad, 0);
}

TEST(json_utf8_valid)
{
	CHECK(utf8_valid("abc\xc3\xa9", 5));
	CHECK(!utf8_valid("\xc3", 1));
	CHECK(!utf8_valid("\xe0\x80\x80", 3));
	CHECK(utf8_valid("\xef\xbf\xbf", 3));
	CHECK(utf8_valid("\xf4\x8f\xbf\xbf", 4));
	CHECK(!utf8_valid("\xf4\x90\x80\x80", 4));
}

/* json_string_end: the closing quote, what the body holds, never past end. */
TEST(json_string_end_finds_the_quote_and_the_escapes)
{
	static const struct {
		const char *body;	/* after the opening quote */
		int end;		/* offset of the closing quote, -1 none */
		int esc;
	} cases[] = {
		{ "\"", 0, JSON_ESC_NONE },
		{ "abc\"x", 3, JSON_ESC_NONE },
		{ "a long body without escapes\"", 27, JSON_ESC_NONE },
		{ "\\\"\"", 2, JSON_ESC_SHORT },
		{ "\\\\\"", 2, JSON_ESC_SHORT },
		{ "\\\\\\\"\"", 4, JSON_ESC_SHORT },
		{ "x\\n\\t\\r\\b\\f\"", 11, JSON_ESC_SHORT },
		{ "\\/\"", 2, JSON_ESC_OTHER },
		{ "\\u00e9\\n\"", 8, JSON_ESC_OTHER },
		{ "\\ud83d\\ude00\"", 12, JSON_ESC_OTHER },
		{ "\\q\"", 2, JSON_ESC_OTHER },
		{ "abc", -1, 0 },
		{ "abc\\", -1, 0 },
		{ "abc\\\"", -1, 0 },
		{ "\\u00", -1, 0 },
	};
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		size_t n = strlen(cases[i].body);
		char *copy = malloc(n + 1);	/* exactly n bytes are read */
		const char *q;
		int esc = -1;
		CHECK(copy != NULL);
		memcpy(copy, cases[i].body, n);
		q = json_string_end(copy, copy + n, &esc);
		if (cases[i].end < 0)
			CHECK(q == NULL);
		else {
			CHECK(q == copy + cases[i].end);
			CHECK_INT(esc, cases[i].esc);
		}
		free(copy);
	}
}

TEST(json_escape_name_keeps_records_valid)
{
	struct buf b = BUF_INIT;

	CHECK(json_escape_name(&b, "logs/app\"1\".jsonl") == 0);
	CHECK(buf_cstr(&b) != NULL);
	CHECK_STR(b.data, "logs/app\\\"1\\\".jsonl");
	b.len = 0;
	/* not UTF-8: each high byte is '?', the rest still escaped */
	CHECK(json_escape_name(&b, "a\xff\"\n\xc3") == 0);
	CHECK(buf_cstr(&b) != NULL);
	CHECK_STR(b.data, "a?\\\"\\n?");
	b.len = 0;
	CHECK(json_escape_name(&b, "caf\xc3\xa9") == 0);
	CHECK(buf_cstr(&b) != NULL);
	CHECK_STR(b.data, "caf\xc3\xa9");
	buf_release(&b);
}
