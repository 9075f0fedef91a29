/* jq-style key paths: the grammar, its errors, and evaluation on text. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "format/canon.h"
#include "format/json.h"
#include "format/keypath.h"
#include "unit.h"

/* The canonical spelling of a parsed list, or the error message. */
static const char *
parsed(const char *s)
{
	static char out[2048];
	struct keypath_list l;
	struct error e;
	struct buf b = BUF_INIT;

	if (keypath_parse(s, &l, &e) == -1) {
		snprintf(out, sizeof(out), "error: %s", e.msg);
		return out;
	}
	keypath_list_str(&l, &b);
	snprintf(out, sizeof(out), "%.*s", (int)b.len, b.data);
	buf_release(&b);
	keypath_list_release(&l);
	return out;
}

/* The value of the first path of list s in json, or "<absent>". */
static const char *
get(const char *s, const char *json)
{
	static char out[512];
	struct keypath_list l;
	struct error e;
	const char *vp;
	size_t vn;

	if (keypath_parse(s, &l, &e) == -1)
		return "<parse error>";
	if (keypath_get(&l.v[0], json, strlen(json), &vp, &vn))
		snprintf(out, sizeof(out), "%.*s", (int)vn, vp);
	else
		snprintf(out, sizeof(out), "<absent>");
	keypath_list_release(&l);
	return out;
}

TEST(keypath_grammar)
{
	CHECK_STR(parsed("."), ".");
	CHECK_STR(parsed(".a"), ".a");
	CHECK_STR(parsed(".a.b_2.C"), ".a.b_2.C");
	CHECK_STR(parsed(".a[1].c"), ".a[1].c");
	CHECK_STR(parsed(".a.[1]"), ".a[1]");
	CHECK_STR(parsed(".[0]"), ".[0]");
	CHECK_STR(parsed(".a[-1]"), ".a[-1]");
	CHECK_STR(parsed(".\"odd key\""), ".\"odd key\"");
	CHECK_STR(parsed(".[\"odd key\"]"), ".\"odd key\"");
	CHECK_STR(parsed(".a[\"b\"]"), ".a.b");
	CHECK_STR(parsed(".\"b\""), ".b");
	CHECK_STR(parsed(".\"caf\\u00e9\""), ".\"caf\xc3\xa9\"");
	CHECK_STR(parsed(".\"a,b\",.c"), ".\"a,b\",.c");
	CHECK_STR(parsed(".\"a\\\"b\""), ".\"a\\\"b\"");
	CHECK_STR(parsed(".prompt,.response"), ".prompt,.response");
	CHECK_STR(parsed(".a,.,.b[2][3]"), ".a,.,.b[2][3]");
	CHECK_STR(parsed("._x1"), "._x1");
	CHECK_STR(parsed(".\"1a\""), ".\"1a\"");
	CHECK_STR(parsed(".\"\""), ".\"\"");
}

TEST(keypath_canonical_spelling_parses_again)
{
	static const char *lists[] = {
		".", ".a", ".[0]", ".[-2].x", ".\"odd key\"[3]", ".a,.,.b[2][3]",
		".[\"x,y\"][0].z", ".\"\\u0000\"", ".\"\\n\\t\\\"\"", "._[1]",
	};
	char once[2048];
	size_t i;

	for (i = 0; i < sizeof(lists) / sizeof(lists[0]); i++) {
		snprintf(once, sizeof(once), "%s", parsed(lists[i]));
		if (strncmp(once, "error", 5) == 0 ||
		    strcmp(parsed(once), once) != 0) {
			unit_fail(__FILE__, __LINE__, "%s -> %s -> %s", lists[i],
			    once, parsed(once));
			return;
		}
	}
}

TEST(keypath_grammar_errors)
{
	CHECK_STR(parsed(""), "error: : expected '.' at character 1");
	CHECK_STR(parsed("a"), "error: a: expected '.' at character 1");
	CHECK_STR(parsed(".a."),
	    "error: .a.: expected a name, a string or '[' at character 4");
	CHECK_STR(parsed(".a,"), "error: .a,: expected '.' at character 4");
	CHECK_STR(parsed(".a,,.b"), "error: .a,,.b: expected '.' at character 4");
	CHECK_STR(parsed(".1a"),
	    "error: .1a: expected a name, a string or '[' at character 2");
	CHECK_STR(parsed(".a[x]"),
	    "error: .a[x]: expected an index or a string at character 4");
	CHECK_STR(parsed(".a[1"), "error: .a[1: expected ']' at character 5");
	CHECK_STR(parsed(".a[]"),
	    "error: .a[]: expected an index or a string at character 4");
	CHECK_STR(parsed(".a[-]"),
	    "error: .a[-]: expected an index or a string at character 5");
	CHECK_STR(parsed(".\"abc"),
	    "error: .\"abc: unterminated string at character 2");
	CHECK_STR(parsed(".\"a\\x\""),
	    "error: .\"a\\x\": invalid string at character 2");
	CHECK_STR(parsed(".\"a\tb\""),
	    "error: .\"a\tb\": invalid string at character 2");
	CHECK_STR(parsed(".a b"),
	    "error: .a b: expected '.', '[', ',' or the end at character 3");
	CHECK_STR(parsed(".a[99999999999999999999]"),
	    "error: .a[99999999999999999999]: index too large at character 22");
	CHECK_STR(parsed("..a"),
	    "error: ..a: expected a name, a string or '[' at character 2");
	CHECK_STR(parsed(".a|.b"),
	    "error: .a|.b: expected '.', '[', ',' or the end at character 3");
}

TEST(keypath_get_values)
{
	const char *r = "{ \"a\" : { \"b\" : [ 10 , { \"c\" : \"x\" } , [1,2] ] } ,"
	    " \"odd key\":true, \"n\":null, \"s\":\"str\", \"e\\u00e9\":5 } ";

	CHECK_STR(get(".", r), "{ \"a\" : { \"b\" : [ 10 , { \"c\" : \"x\" } , "
	    "[1,2] ] } , \"odd key\":true, \"n\":null, \"s\":\"str\", "
	    "\"e\\u00e9\":5 }");
	CHECK_STR(get(".a.b[0]", r), "10");
	CHECK_STR(get(".a.b[1].c", r), "\"x\"");
	CHECK_STR(get(".a.b[2]", r), "[1,2]");
	CHECK_STR(get(".a.b[2][1]", r), "2");
	CHECK_STR(get(".a.b[-1][0]", r), "1");
	CHECK_STR(get(".a.b[-3]", r), "10");
	CHECK_STR(get(".\"odd key\"", r), "true");
	CHECK_STR(get(".n", r), "null");
	CHECK_STR(get(".\"e\xc3\xa9\"", r), "5");	/* escaped in the text */
	CHECK_STR(get(".a[\"b\"][0]", r), "10");
}

TEST(keypath_absent)
{
	const char *r = "{\"a\":{\"b\":[10]},\"s\":\"str\",\"n\":null}";

	CHECK_STR(get(".missing", r), "<absent>");
	CHECK_STR(get(".a.c", r), "<absent>");
	CHECK_STR(get(".a.b[1]", r), "<absent>");
	CHECK_STR(get(".a.b[-2]", r), "<absent>");
	CHECK_STR(get(".s.x", r), "<absent>");	/* jq: an error */
	CHECK_STR(get(".s[0]", r), "<absent>");
	CHECK_STR(get(".n.x", r), "<absent>");	/* jq: null */
	CHECK_STR(get(".a[0]", r), "<absent>");
	CHECK_STR(get(".a.b.c", r), "<absent>");
	CHECK_STR(get(".x", "{}"), "<absent>");
	CHECK_STR(get(".[0]", "[]"), "<absent>");
	CHECK_STR(get(".[0]", "{\"0\":1}"), "<absent>");
}

TEST(keypath_last_duplicate_wins)
{
	CHECK_STR(get(".a", "{\"a\":1,\"b\":2,\"a\":3}"), "3");
	CHECK_STR(get(".a", "{\"a\":1,\"\\u0061\":4}"), "4");
	CHECK_STR(get(".a.x", "{\"a\":{\"x\":1},\"a\":{\"y\":2}}"), "<absent>");
}

TEST(keypath_strings_and_nesting_skipped)
{
	/* brackets and quotes inside strings do not confuse skipping */
	const char *r = "{\"a\":\"}]\\\"[{\",\"b\":[\"]\",{\"c\":\"\\\\\"}],"
	    "\"d\":{\"e\":[[[]]],\"f\":\"\\\"\"},\"g\":-1.5e3}";

	CHECK_STR(get(".b[1].c", r), "\"\\\\\"");
	CHECK_STR(get(".d.f", r), "\"\\\"\"");
	CHECK_STR(get(".g", r), "-1.5e3");
	CHECK_STR(get(".d.e[0][0]", r), "[]");
}

TEST(keypath_truncated_text_is_safe)
{
	/* invalid text must never be read past its end */
	const char *r = "{\"a\":{\"b\":[1,2,{\"c\":\"xyz\"}]}}";
	struct keypath_list l;
	struct error e;
	size_t n;
	const char *vp;
	size_t vn;

	CHECK_INT(keypath_parse(".a.b[2].c", &l, &e), 0);
	for (n = 0; n < strlen(r); n++) {
		char *copy = strndup(r, n);
		CHECK(copy != NULL);
		(void)keypath_get(&l.v[0], copy, n, &vp, &vn);
		free(copy);
	}
	CHECK_INT(keypath_get(&l.v[0], r, strlen(r), &vp, &vn), 1);
	keypath_list_release(&l);
}

TEST(keypath_escaped_names_match_without_decoding)
{
	/* every escape form of a name, and near misses */
	CHECK_STR(get(".\"caf\\u00e9\"", "{\"caf\\u00E9\":1}"), "1");
	CHECK_STR(get(".\"café\"", "{\"caf\\u00e9\":2}"), "2");
	CHECK_STR(get(".\"\\ud83d\\ude00\"", "{\"\xf0\x9f\x98\x80\":3}"), "3");
	CHECK_STR(get(".\"😀\"", "{\"\\uD83D\\uDE00\":4}"), "4");
	CHECK_STR(get(".\"a/b\"", "{\"a\\/b\":5}"), "5");
	CHECK_STR(get(".\"a\\nb\"", "{\"a\\u000ab\":6}"), "6");
	CHECK_STR(get(".\"caf\"", "{\"caf\\u00e9\":7}"), "<absent>");
	CHECK_STR(get(".\"café!\"", "{\"caf\\u00e9\":8}"), "<absent>");
	CHECK_STR(get(".\"cafe\"", "{\"caf\\u00e9\":9}"), "<absent>");
	CHECK_INT(canon_unescape_equal("a\\u00e9", 7, "a\xc3\xa9", 3), 1);
	CHECK_INT(canon_unescape_equal("a\\u00e9", 7, "a\xc3", 2), 0);
	CHECK_INT(canon_unescape_equal("a\\q", 3, "aq", 2), 0);
	CHECK_INT(canon_unescape_equal("a\\u00", 5, "a", 1), 0);
	CHECK_INT(canon_unescape_equal("", 0, "", 0), 1);
}

/* A path reaches the innermost value of 2048 nested containers. */
TEST(keypath_deepest_value)
{
	struct buf r = BUF_INIT, p = BUF_INIT;
	struct keypath_list l;
	struct error e;
	const char *vp;
	size_t vn, i;

	buf_printf(&r, "{\"k\":");
	for (i = 1; i < JSON_MAX_DEPTH; i++)
		buf_putc(&r, '[');
	buf_printf(&r, "\"\\u00e9\"");
	for (i = 1; i < JSON_MAX_DEPTH; i++)
		buf_putc(&r, ']');
	buf_putc(&r, '}');
	CHECK_INT(json_scan_record(r.data, r.len, NULL), 0);
	buf_printf(&p, ".k");
	for (i = 1; i < JSON_MAX_DEPTH; i++)
		buf_printf(&p, "[0]");
	CHECK(buf_cstr(&p) != NULL);
	CHECK_INT(keypath_parse(p.data, &l, &e), 0);
	CHECK_INT(keypath_get(&l.v[0], r.data, r.len, &vp, &vn), 1);
	CHECK_INT(vn, 8);
	CHECK(memcmp(vp, "\"\\u00e9\"", 8) == 0);
	keypath_list_release(&l);
	buf_release(&r);
	buf_release(&p);
}
