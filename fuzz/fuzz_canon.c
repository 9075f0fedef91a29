/*
 * The canonicalizer (lib/format/canon.c).  The input is a JSON text, or after a
 * leading '#' a number.  Properties:
 * - canon_value and canon_text accept every valid text
 *   (json_scan_value), with and without normalization flags, and stay
 *   in bounds on any other;
 * - canon_value is idempotent: the form of a form is itself, and the
 *   form of a valid text is valid JSON;
 * - JSON-equal inputs have equal forms: jansson's re-serializations of
 *   the input (compact with every non-ASCII character and '/' escaped,
 *   and indented with sorted keys) canonicalize to the same bytes, for
 *   inputs whose numbers jansson keeps exactly (integers within int64);
 * - numbers: canon_number is idempotent, keeps the value (strtod of the
 *   form is strtod of the input), and 1, 1e0, 10e-1 agree, as do 1.5
 *   and 1.50.
 */
#include <jansson.h>
#include <math.h>
#include <string.h>

#include "base/buf.h"
#include "format/canon.h"
#include "format/json.h"
#include "fuzz.h"

static struct canon *cn;


int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	if ((cn = canon_new()) == NULL)
		abort();
	return 0;
}

/* Canonical form of p[0..n) with flags into out (reset); 0 or -1. */
static int
canon(const char *p, size_t n, unsigned flags, struct buf *out)
{
	out->len = 0;
	return canon_value(cn, p, n, flags, out);
}

static int
same(const struct buf *a, const struct buf *b)
{
	return a->len == b->len && (a->len == 0 ||
	    memcmp(a->data, b->data, a->len) == 0);
}

/* Does jansson hold every number of j exactly?  (No reals.) */
static int
exact(json_t *j)
{
	const char *k;
	json_t *v;
	size_t i;

	if (json_is_real(j))
		return 0;
	if (json_is_object(j)) {
		json_object_foreach(j, k, v)
			if (!exact(v))
				return 0;
	}
	if (json_is_array(j))
		json_array_foreach(j, i, v)
			if (!exact(v))
				return 0;
	return 1;
}

static void
check_equal_forms(const uint8_t *data, size_t size, const struct buf *form)
{
	static const size_t how[] = {
		JSON_COMPACT | JSON_ENSURE_ASCII | JSON_ESCAPE_SLASH,
		JSON_INDENT(2) | JSON_SORT_KEYS,
	};
	struct buf other = BUF_INIT;
	json_error_t je;
	json_t *j;
	size_t i;

	j = json_loadb((const char *)data, size, JSON_DECODE_ANY |
	    JSON_ALLOW_NUL, &je);
	if (j == NULL)
		return;
	if (exact(j)) {
		for (i = 0; i < sizeof(how) / sizeof(how[0]); i++) {
			char *text = json_dumps(j, how[i] | JSON_ENCODE_ANY);

			if (text == NULL)
				continue;	/* a key with NUL: not dumped */
			FUZZ_CHECK(canon(text, strlen(text), 0, &other) == 0);
			if (!same(&other, form))
				fprintf(stderr, "canon: %.*s\nvs %.*s (from %s)\n",
				    (int)form->len, form->data, (int)other.len,
				    other.data, text);
			FUZZ_CHECK(same(&other, form));
			free(text);
		}
	}
	json_decref(j);
	buf_release(&other);
}

static void
check_number(const uint8_t *data, size_t size)
{
	struct buf c = BUF_INIT, again = BUF_INIT, v = BUF_INIT;
	char *x, *cs;
	double dx, dc;

	if (size > 400 || size == 0 ||
	    memchr(data, ' ', size) != NULL || memchr(data, '\t', size) != NULL ||
	    memchr(data, '\n', size) != NULL || memchr(data, '\r', size) != NULL ||
	    json_scan_value((const char *)data, size, NULL) != 0 ||
	    !(data[0] == '-' || (data[0] >= '0' && data[0] <= '9')))
		return;
	x = fuzz_strndup(data, size);
	FUZZ_CHECK(canon_number(x, size, &c) == 0);
	cs = buf_cstr(&c);
	FUZZ_CHECK(cs != NULL);
	FUZZ_CHECK(json_scan_value(c.data, c.len, NULL) == 0);
	FUZZ_CHECK(canon_number(c.data, c.len, &again) == 0 && same(&c, &again));
	dx = strtod(x, NULL);
	dc = strtod(cs, NULL);
	FUZZ_CHECK(dx == dc || (isnan(dx) && isnan(dc)));
	if (strpbrk(x, "eE") == NULL) {
		/* x, xe0, xE+0, and x0e-1 for an integer, x0 for a
		 * fraction: the same value */
		static const char *const tails[] = { "e0", "E+0", "0e-1", "0" };
		int frac = strchr(x, '.') != NULL;
		for (size_t i = 0; i < 4; i++) {
			if ((i == 2 && frac) || (i == 3 && !frac))
				continue;
			v.len = 0;
			buf_printf(&v, "%s%s", x, tails[i]);
			again.len = 0;
			FUZZ_CHECK(canon_number(v.data, v.len, &again) == 0);
			FUZZ_CHECK(same(&c, &again));
		}
	}
	free(x);
	buf_release(&c);
	buf_release(&again);
	buf_release(&v);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const unsigned flagsets[] = {
		0, CANON_TRIM, CANON_LOWER | CANON_SPACE,
		CANON_TRIM | CANON_LOWER | CANON_SPACE,
	};
	const char *p = (const char *)data;
	struct buf form = BUF_INIT, again = BUF_INIT;
	int valid;
	size_t i;

	if (size > 0 && data[0] == '#') {
		check_number(data + 1, size - 1);
		return 0;
	}
	valid = json_scan_value(p, size, NULL) == 0;
	for (i = 0; i < sizeof(flagsets) / sizeof(flagsets[0]); i++) {
		int ok = canon(p, size, flagsets[i], &form) == 0;

		/* every valid text has a form; an invalid one may too: the
		 * reader trusts its callers to have scanned the text
		 * (fuzz/README.md, finding 2) and must only stay in bounds */
		if (valid && !ok)
			fprintf(stderr, "canon refuses a valid text\n");
		FUZZ_CHECK(ok || !valid);
		if (!ok)
			continue;
		if (valid)
			FUZZ_CHECK(json_scan_value(form.data, form.len,
			    NULL) == 0);
		FUZZ_CHECK(canon(form.data, form.len, flagsets[i], &again) == 0);
		FUZZ_CHECK(same(&form, &again));
		again.len = 0;
		FUZZ_CHECK(canon_text(cn, p, size, flagsets[i], &again) == 0);
	}
	if (valid) {
		FUZZ_CHECK(canon(p, size, 0, &form) == 0);
		check_equal_forms(data, size, &form);
	}
	buf_release(&form);
	buf_release(&again);
	return 0;
}
