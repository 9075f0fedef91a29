/*
 * The record scanner (lib/format/json.c) against jansson, differentially: on
 * every input json_scan_record accepts exactly when jansson loads an
 * object (json_loadb with JSON_DECODE_INT_AS_REAL | JSON_ALLOW_NUL), and
 * json_scan_value exactly when jansson loads any value (JSON_DECODE_ANY),
 * except for the three divergences documented in lib/format/json.h:
 * - a number beyond the range of a double is valid here, an "overflow"
 *   error in jansson;
 * - a raw NUL byte outside strings is an error here, where jansson may
 *   take it for the end of the input;
 * - 2048 nested containers with a scalar innermost are valid here, too
 *   deep for jansson (it counts the scalar as a level).
 * utf8_valid is also checked against a plain reference decoder, and the
 * scanner's error offsets against the input's length.
 */
#include <jansson.h>
#include <string.h>

#include "format/json.h"
#include "fuzz.h"

static int
jansson_loads(const uint8_t *p, size_t n, size_t flags, int want_object,
    int *overflow)
{
	json_error_t je;
	json_t *j;
	int ok;

	j = json_loadb((const char *)p, n, flags | JSON_DECODE_INT_AS_REAL |
	    JSON_ALLOW_NUL, &je);
	ok = j != NULL && (!want_object || json_is_object(j));
	/* the documented divergences: a number beyond a double, and a
	 * scalar inside the 2048th container */
	*overflow = j == NULL && (strstr(je.text, "overflow") != NULL ||
	    strstr(je.text, "maximum parsing depth") != NULL);
	json_decref(j);
	return ok;
}

/* RFC 3629 by the book, one code point at a time. */
static int
utf8_reference(const uint8_t *p, size_t n)
{
	size_t i = 0;

	while (i < n) {
		uint32_t cp;
		size_t len, k;

		if (p[i] < 0x80) {
			i++;
			continue;
		} else if ((p[i] & 0xe0) == 0xc0) {
			len = 2;
			cp = p[i] & 0x1f;
		} else if ((p[i] & 0xf0) == 0xe0) {
			len = 3;
			cp = p[i] & 0x0f;
		} else if ((p[i] & 0xf8) == 0xf0) {
			len = 4;
			cp = p[i] & 0x07;
		} else
			return 0;
		if (n - i < len)
			return 0;
		for (k = 1; k < len; k++) {
			if ((p[i + k] & 0xc0) != 0x80)
				return 0;
			cp = (cp << 6) | (p[i + k] & 0x3f);
		}
		if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) ||
		    (len == 4 && cp < 0x10000) || cp > 0x10ffff ||
		    (cp >= 0xd800 && cp <= 0xdfff))
			return 0;
		i += len;
	}
	return 1;
}

/*
 * Compare one verdict.  A disagreement is allowed only as documented:
 * ours accepts and jansson overflowed or went too deep, or ours refused
 * at a raw NUL.
 */
static void
compare(const uint8_t *p, size_t n, int ours, const struct json_result *r,
    int theirs, int overflow)
{
	if (ours == theirs)
		return;
	if (ours && overflow)
		return;
	if (!ours && r->offset < n && p[r->offset] == '\0' &&
	    (r->status == JSON_UNEXPECTED || r->status == JSON_TRAILING ||
	    r->status == JSON_TRUNCATED))
		return;
	fprintf(stderr, "json: ours %s (status %d at %zu), jansson %s\n",
	    ours ? "accepts" : "refuses", (int)r->status, r->offset,
	    theirs ? "accepts" : "refuses");
	FUZZ_CHECK(ours == theirs);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *p = (const char *)data;
	struct json_result r;
	char msg[128];
	int ours, theirs, overflow;

	memset(&r, 0, sizeof(r));
	ours = json_scan_record(p, size, &r) == 0;
	if (ours)
		FUZZ_CHECK(r.status == JSON_OK);
	else {
		FUZZ_CHECK(r.status != JSON_OK);
		FUZZ_CHECK(r.offset <= size);
		json_result_str(&r, msg, sizeof(msg));
		FUZZ_CHECK(strlen(msg) > 0);
	}
	theirs = jansson_loads(data, size, 0, 1, &overflow);
	compare(data, size, ours, &r, theirs, overflow);

	/* a record is a valid value that is an object */
	memset(&r, 0, sizeof(r));
	ours = json_scan_value(p, size, &r) == 0;
	FUZZ_CHECK(ours || r.offset <= size);
	theirs = jansson_loads(data, size, JSON_DECODE_ANY, 0, &overflow);
	compare(data, size, ours, &r, theirs, overflow);
	if (json_scan_record(p, size, NULL) == 0)
		FUZZ_CHECK(ours);

	FUZZ_CHECK(!utf8_valid(p, size) == !utf8_reference(data, size));
	return 0;
}
