/*
 * A strict, non-allocating RFC 8259 scanner for records: one JSON object
 * per line, valid UTF-8.  It agrees with jansson (json_loadb with
 * JSON_DECODE_INT_AS_REAL | JSON_ALLOW_NUL) on every input except in
 * three ways: numbers too large for a double are valid here (RFC 8259
 * sets no range) and an error in jansson; a raw NUL byte outside strings
 * is an error here, where jansson may take it for the end of the input;
 * and the nesting limit counts containers here, where jansson counts
 * every value, so that 2048 nested containers with a scalar innermost
 * ({"a":[[...[1]...]]}) are valid here and too deep for jansson.
 *
 * Accepted and refused, precisely:
 * - the text is optional white space (space, tab, CR, LF), one value,
 *   optional white space; a record's value must be an object;
 * - strings hold no raw control character (U+0000..U+001F); escapes are
 *   the eight short ones and \uXXXX, surrogates only as a high-low pair;
 *   "\u0000" is valid in a string value but refused in an object key
 *   (jansson, jq's C library and PostgreSQL's jsonb cannot hold it);
 * - bytes must form valid UTF-8 (no overlong forms, no encoded surrogates,
 *   nothing above U+10FFFF);
 * - at most JSON_MAX_DEPTH (2048) objects and arrays nested in each
 *   other, whatever the innermost value: the 2049th container is
 *   refused (JSON_DEPTH, at its opening bracket).
 *
 * Every function here reads each input byte a bounded number of times:
 * the cost is linear in the input, whatever its escapes or nesting.
 */
#ifndef AISTACK_JSON_H
#define AISTACK_JSON_H

#include <endian.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define JSON_MAX_DEPTH 2048

enum json_status {
	JSON_OK = 0,
	JSON_EMPTY,		/* nothing but white space */
	JSON_UNEXPECTED,	/* a character that cannot start or continue */
	JSON_TRUNCATED,		/* the text ends inside a value */
	JSON_TRAILING,		/* more after the value */
	JSON_CONTROL,		/* raw control character in a string */
	JSON_ESCAPE,		/* invalid escape sequence */
	JSON_SURROGATE,		/* unpaired UTF-16 surrogate escape */
	JSON_UTF8,		/* invalid UTF-8 */
	JSON_NUMBER,		/* malformed number */
	JSON_DEPTH,		/* nested deeper than JSON_MAX_DEPTH */
	JSON_KEY_NUL,		/* "\u0000" inside an object key */
	JSON_NOT_OBJECT		/* valid JSON, but not an object */
};

struct json_result {
	enum json_status status;
	size_t offset;		/* byte offset of the problem */
	unsigned char byte;	/* the byte at offset, when there is one */
};

/*
 * Check that p[0..n) is one record.  Returns 0 when valid, -1 otherwise
 * with r (when not NULL) describing the first problem.  Never reads
 * outside p[0..n); needs no allocation and no recursion.
 */
int json_scan_record(const char *p, size_t n, struct json_result *r);

/* Same grammar, any JSON value at the top level. */
int json_scan_value(const char *p, size_t n, struct json_result *r);

/* What json_string_end found in a string's body. */
enum {
	JSON_ESC_NONE = 0,	/* no backslash */
	JSON_ESC_SHORT,		/* only \" \\ \b \f \n \r \t */
	JSON_ESC_OTHER		/* some \uXXXX or \/ (or an invalid escape) */
};

/*
 * The closing quote of the JSON string whose body starts at s (just
 * after its opening quote), skipping escaped characters, or NULL when
 * the text ends first.  *esc receives one of JSON_ESC_* (nonzero: the
 * body holds a backslash).  It checks nothing else (json_scan_value
 * does: on a text that is not valid the answer may be wrong) and never
 * reads at or past end.
 */
const char *json_string_end(const char *s, const char *end, int *esc);

/*
 * Eight bytes at a time.  json_load8 reads s[0..8) with s[0] in the low
 * byte, on any host; json_escape8 of it is nonzero when one of the bytes
 * is a quote, a backslash or below 0x20 (what a JSON string cannot hold
 * raw), and its lowest set bit is then exactly in the first such byte:
 * __builtin_ctzll(m) >> 3 is its index (bits above it may be set falsely).
 */
#define JSON_ONES	0x0101010101010101ULL
#define JSON_HIGHS	0x8080808080808080ULL

static inline uint64_t
json_load8(const unsigned char *s)
{
	uint64_t v;

	memcpy(&v, s, 8);
	return le64toh(v);
}

static inline uint64_t
json_escape8(uint64_t v)
{
	uint64_t q = v ^ (JSON_ONES * '"'), b = v ^ (JSON_ONES * '\\');

	return (((v - JSON_ONES * 0x20) & ~v) | ((q - JSON_ONES) & ~q) |
	    ((b - JSON_ONES) & ~b)) & JSON_HIGHS;
}

/* The value of each hex digit, 0xFF for every other byte. */
extern const unsigned char json_hex_value[256];

/* Read the four hex digits at s (of \uXXXX) into *u: 0, or -1 when one
 * is not a hex digit. */
static inline int
json_hex4(const unsigned char *s, uint32_t *u)
{
	uint32_t a = json_hex_value[s[0]], b = json_hex_value[s[1]],
	    c = json_hex_value[s[2]], d = json_hex_value[s[3]];

	if ((a | b | c | d) > 0xF)
		return -1;
	*u = a << 12 | b << 8 | c << 4 | d;
	return 0;
}

/* Nonzero when p[0..n) is valid UTF-8 (the rule above). */
int utf8_valid(const char *p, size_t n);

struct buf;

/*
 * Append the name s (a file name, a path: bytes, not always UTF-8) as the
 * inside of a JSON string: escaped as buf_json_escape does when s is
 * UTF-8; otherwise each byte >= 0x80 becomes '?', so that the record
 * stays valid.  -1 when out of memory.
 */
int json_escape_name(struct buf *b, const char *s);

/* Describe r in words: "invalid UTF-8 at byte 17" (into buf, returned). */
const char *json_result_str(const struct json_result *r, char *buf, size_t n);

#endif
