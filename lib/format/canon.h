/*
 * The canonical form of a JSON value: one text for every way of writing
 * the same value, so that records can be compared by what they say.
 *
 * - No white space outside strings.
 * - Object members are sorted by the bytes of their names once escapes
 *   are decoded (UTF-8 byte order is code point order).  When a name
 *   occurs more than once the last member wins, as in jq, jansson and
 *   PostgreSQL's jsonb: {"a":1,"a":2} is {"a":2}.  Array order is kept.
 * - Strings (names and values) are written with the only escapes JSON
 *   requires: \" and \\, \b \f \n \r \t, and \u00XX (lower-case hex) for
 *   the other control characters U+0000..U+001F.  Everything else, '/'
 *   and U+007F included, is raw UTF-8: "\u00e9" and "é" are the same.
 * - Numbers are compared by their exact decimal value, never rounded to
 *   a binary double: 1, 1.0, 1e0, 10e-1 and 0.1e1 are the same, as are
 *   100 and 1e2, and -0 and 0; but 0.1 and 0.10000000000000001 differ,
 *   as do 9007199254740993 and 9007199254740992.  A number is written
 *   as ECMAScript's Number::toString writes it (RFC 8785) from its exact
 *   significant digits: 100, 0.5, 1.5e+300, 1e-7.
 * - true, false and null are written as they are.
 *
 * Normalization flags change string values (never member names) before
 * they are written: CANON_SPACE replaces each run of white space by one
 * space, CANON_TRIM removes white space at both ends, CANON_LOWER maps
 * every character to its Unicode 14 simple lower-case mapping.  White
 * space is Unicode's White_Space property (ASCII space, tab, LF, VT, FF,
 * CR, U+0085, U+00A0, U+1680, U+2000..U+200A, U+2028, U+2029, U+202F,
 * U+205F, U+3000).  No other Unicode normalization (such as NFC) is done.
 *
 * Cost: every function here reads each input byte a bounded number of
 * times, whatever the escapes (a string with only the short escapes is
 * copied as it is; any other is rewritten in one pass), so the time is
 * linear in the text, but for sorting each object's members (n log n).
 */
#ifndef AISTACK_CANON_H
#define AISTACK_CANON_H

#include <stddef.h>

#include "base/buf.h"

#define CANON_TRIM	0x01
#define CANON_LOWER	0x02
#define CANON_SPACE	0x04

/* Reusable scratch space for canon_value; one per thread. */
struct canon;

/* A new scratch space (caller frees with canon_free), or NULL (ENOMEM). */
struct canon *canon_new(void);
void canon_free(struct canon *c);

/*
 * Append the canonical form of the JSON value p[0..n) (surrounding white
 * space allowed) to out, applying the normalization flags to string
 * values.  The text must have passed json_scan_value: canon_value checks
 * the structure but not every rule (it lets leading zeros, raw control
 * characters, invalid UTF-8 and "\u0000" in names through), failing with
 * errno EINVAL on what it cannot read, and never reads outside p[0..n).
 * Returns 0, or -1 (EINVAL, ENOMEM).  Nesting deeper than JSON_MAX_DEPTH
 * is EINVAL.
 */
int canon_value(struct canon *c, const char *p, size_t n, unsigned flags,
    struct buf *out);

/*
 * Append the text of the value p[0..n) for similarity measures: its
 * scalars in canonical order (members sorted as above, names left out),
 * strings decoded and normalized, other scalars in canonical form, each
 * followed by one space.  Same contract as canon_value.
 */
int canon_text(struct canon *c, const char *p, size_t n, unsigned flags,
    struct buf *out);

/* Both of the above from one reading of the text. */
int canon_value_text(struct canon *c, const char *p, size_t n, unsigned flags,
    struct buf *out, struct buf *text);

/*
 * Append the decoded body of a valid JSON string literal (the bytes
 * between the quotes) to out as UTF-8.  Returns 0, or -1 (EINVAL on a bad
 * escape, ENOMEM).
 */
int canon_unescape(const char *p, size_t n, struct buf *out);

/*
 * Nonzero when the body of a valid JSON string literal p[0..n) decodes
 * to exactly name[0..len), without decoding it anywhere.
 */
int canon_unescape_equal(const char *p, size_t n, const char *name,
    size_t len);

/* Append the canonical form of a valid JSON number p[0..n) to out. */
int canon_number(const char *p, size_t n, struct buf *out);

/*
 * Normalize the UTF-8 text p[0..n) (valid) with flags, appending the
 * result to out.  Returns 0 or -1 (ENOMEM).
 */
int canon_normalize(const char *p, size_t n, unsigned flags, struct buf *out);

/*
 * Parse a --normalize list such as "trim,lower" (words trim, lower and
 * space, comma-separated, in any order) into *flags.  Returns 0, or -1
 * with errno EINVAL.
 */
int canon_flags_parse(const char *s, unsigned *flags);

/* Write flags as their list in a fixed order ("lower,space,trim"; "" for
 * none) to buf. */
void canon_flags_str(unsigned flags, char *buf, size_t n);

#endif
