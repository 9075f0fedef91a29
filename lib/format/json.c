#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "base/buf.h"
#include "json.h"

/* Byte classes inside a string: 0 plain, 1 quote, 2 backslash, 3 control,
 * 4 a UTF-8 lead or continuation byte (checked by utf8_char). */
static const unsigned char str_class[256] = {
	3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3,
	3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3,
	0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0,
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4,
	4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4,
	4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4,
	4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4,
	4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4,
	4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4,
	4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4,
	4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4,
};

#define ONES	JSON_ONES
#define HIGHS	JSON_HIGHS

/* Nonzero when some byte of v is a quote, a backslash, < 0x20 or >= 0x80
 * (the lowest such byte flagged exactly, as in json_escape8). */
static inline uint64_t
special8(uint64_t v)
{
	return json_escape8(v) | (v & HIGHS);
}

/* Nonzero when some byte of v is a quote or a backslash (likewise). */
static inline uint64_t
quote_or_backslash8(uint64_t v)
{
	uint64_t q = v ^ (ONES * '"'), b = v ^ (ONES * '\\');

	return (((q - ONES) & ~q) | ((b - ONES) & ~b)) & HIGHS;
}

/* JSON_ESC_SHORT for the character after a backslash of a short escape
 * other than \/, JSON_ESC_OTHER for any other (\u, \/, invalid). */
static const unsigned char escape_kind[256] = {
	2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
	2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
	2, 2, 1, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
	2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
	2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
	2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 1, 2, 2, 2,
	2, 2, 1, 2, 2, 2, 1, 2, 2, 2, 2, 2, 2, 2, 1, 2,
	2, 2, 1, 2, 1, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
	2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
	2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
	2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
	2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
	2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
	2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
	2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
	2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
};

const char *
json_string_end(const char *p, const char *e, int *esc)
{
	const unsigned char *s = (const unsigned char *)p;
	const unsigned char *end = (const unsigned char *)e;
	int kind = JSON_ESC_NONE;

	while (s < end) {
		if (end - s >= 8) {
			uint64_t m = quote_or_backslash8(json_load8(s));
			if (m == 0) {
				s += 8;
				continue;
			}
			s += __builtin_ctzll(m) >> 3;
		}
		if (*s == '"') {
			*esc = kind & JSON_ESC_OTHER ? JSON_ESC_OTHER : kind;
			return (const char *)s;
		}
		if (*s != '\\') {
			s++;
			continue;
		}
		/* a run of escapes, one after the other; \u is followed by
		 * four hex digits in a valid text, never by the quote */
		do {
			if (end - s < 2)
				return NULL;
			kind |= escape_kind[s[1]];
			if (s[1] != 'u')
				s += 2;
			else if (end - s < 6)
				return NULL;
			else
				s += 6;
		} while (s < end && *s == '\\');
	}
	return NULL;
}

/*
 * Check one UTF-8 sequence starting at s (s[0] >= 0x80); returns its
 * length, or 0 when invalid or truncated.
 */
static inline size_t
utf8_char(const unsigned char *s, const unsigned char *end)
{
	unsigned char c = s[0];
	size_t left = (size_t)(end - s);

	if (c >= 0xC2 && c <= 0xDF) {
		if (left < 2 || (s[1] & 0xC0) != 0x80)
			return 0;
		return 2;
	}
	if (c >= 0xE0 && c <= 0xEF) {
		if (left < 3 || (s[1] & 0xC0) != 0x80 || (s[2] & 0xC0) != 0x80)
			return 0;
		if (c == 0xE0 && s[1] < 0xA0)
			return 0;	/* overlong */
		if (c == 0xED && s[1] >= 0xA0)
			return 0;	/* surrogate */
		return 3;
	}
	if (c >= 0xF0 && c <= 0xF4) {
		if (left < 4 || (s[1] & 0xC0) != 0x80 ||
		    (s[2] & 0xC0) != 0x80 || (s[3] & 0xC0) != 0x80)
			return 0;
		if (c == 0xF0 && s[1] < 0x90)
			return 0;	/* overlong */
		if (c == 0xF4 && s[1] >= 0x90)
			return 0;	/* above U+10FFFF */
		return 4;
	}
	return 0;
}

int
utf8_valid(const char *p, size_t n)
{
	const unsigned char *s = (const unsigned char *)p, *end = s + n;
	size_t l;

	while (s < end) {
		if (*s < 0x80) {
			s++;
			continue;
		}
		l = utf8_char(s, end);
		if (l == 0)
			return 0;
		s += l;
	}
	return 1;
}

const unsigned char json_hex_value[256] = {
	255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255,
	255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255,
	255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255,
	0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 255, 255, 255, 255, 255, 255,
	255, 10, 11, 12, 13, 14, 15, 255, 255, 255, 255, 255, 255, 255, 255, 255,
	255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255,
	255, 10, 11, 12, 13, 14, 15, 255, 255, 255, 255, 255, 255, 255, 255, 255,
	255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255,
	255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255,
	255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255,
	255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255,
	255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255,
	255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255,
	255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255,
	255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255,
	255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255,
};

#define FAIL(st, at) do {						\
	res->status = (st);						\
	res->offset = (size_t)((at) - base);				\
	res->byte = (at) < end ? *(at) : 0;				\
	return NULL;							\
} while (0)

/*
 * Scan a string whose opening quote is at s[-1]; returns the position
 * after the closing quote, or NULL with res set.
 */
static const unsigned char *
scan_string(const unsigned char *s, const unsigned char *end,
    const unsigned char *base, int key, struct json_result *res)
{
	for (;;) {
		/* eight bytes at a time, jumping straight to the first special */
		if (end - s >= 8) {
			uint64_t m = special8(json_load8(s));
			if (m == 0) {
				s += 8;
				continue;
			}
			s += __builtin_ctzll(m) >> 3;
		} else if (s >= end)
			FAIL(JSON_TRUNCATED, s);
		switch (str_class[*s]) {
		case 0:
			s++;
			break;
		case 1:
			return s + 1;
		case 2:
		escape:
			if (end - s < 2)
				FAIL(JSON_TRUNCATED, end);
			switch (s[1]) {
			case '"': case '\\': case '/': case 'b':
			case 'f': case 'n': case 'r': case 't':
				s += 2;
				break;
			case 'u': {
				uint32_t u, lo;
				if (end - s < 6)
					FAIL(JSON_TRUNCATED, end);
				if (json_hex4(s + 2, &u) == -1)
					FAIL(JSON_ESCAPE, s);
				if (u == 0 && key)
					FAIL(JSON_KEY_NUL, s);
				if (u >= 0xDC00 && u <= 0xDFFF)
					FAIL(JSON_SURROGATE, s);
				if (u >= 0xD800 && u <= 0xDBFF) {
					if (end - s < 12 || s[6] != '\\' ||
					    s[7] != 'u' || json_hex4(s + 8, &lo) == -1 ||
					    lo < 0xDC00 || lo > 0xDFFF)
						FAIL(JSON_SURROGATE, s);
					s += 12;
				} else
					s += 6;
				break;
			}
			default:
				FAIL(JSON_ESCAPE, s);
			}
			/* escapes come in runs: the next one at once */
			if (s < end && *s == '\\')
				goto escape;
			break;
		case 3:
			FAIL(JSON_CONTROL, s);
		default:
			/* and so do characters beyond ASCII */
			do {
				size_t l = utf8_char(s, end);
				if (l == 0)
					FAIL(JSON_UTF8, s);
				s += l;
			} while (s < end && *s >= 0x80);
		}
	}
}

/* Scan a number starting at s; returns the position after it or NULL. */
static const unsigned char *
scan_number(const unsigned char *s, const unsigned char *end,
    const unsigned char *base, struct json_result *res)
{
	if (*s == '-')
		s++;
	if (s >= end)
		FAIL(JSON_TRUNCATED, s);
	if (*s == '0')
		s++;
	else if (*s >= '1' && *s <= '9') {
		while (s < end && *s >= '0' && *s <= '9')
			s++;
	} else
		FAIL(JSON_NUMBER, s);
	if (s < end && *s == '.') {
		s++;
		if (s >= end)
			FAIL(JSON_TRUNCATED, s);
		if (!(*s >= '0' && *s <= '9'))
			FAIL(JSON_NUMBER, s);
		while (s < end && *s >= '0' && *s <= '9')
			s++;
	}
	if (s < end && (*s == 'e' || *s == 'E')) {
		s++;
		if (s < end && (*s == '+' || *s == '-'))
			s++;
		if (s >= end)
			FAIL(JSON_TRUNCATED, s);
		if (!(*s >= '0' && *s <= '9'))
			FAIL(JSON_NUMBER, s);
		while (s < end && *s >= '0' && *s <= '9')
			s++;
	}
	return s;
}

static inline const unsigned char *
skip_ws(const unsigned char *s, const unsigned char *end)
{
	while (s < end && (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r'))
		s++;
	return s;
}

/*
 * The scanner proper: an explicit state machine with a bit stack of open
 * containers (1 = object), so that no input can exhaust the C stack.
 */
static int
scan(const char *p, size_t n, int need_object, struct json_result *r)
{
	struct json_result dummy;
	struct json_result *res = r != NULL ? r : &dummy;
	const unsigned char *base = (const unsigned char *)p;
	const unsigned char *s = base, *end = base + n, *first;
	unsigned char stack[JSON_MAX_DEPTH / 8];
	unsigned depth = 0;

#undef FAIL
#define FAIL(st, at) do {						\
	res->status = (st);						\
	res->offset = (size_t)((at) - base);				\
	res->byte = (at) < end ? *(at) : 0;				\
	return -1;							\
} while (0)
#define TOP_IS_OBJECT() (stack[(depth - 1) >> 3] & (1u << ((depth - 1) & 7)))
#define PUSH(obj) do {							\
	if (obj)							\
		stack[depth >> 3] |= (unsigned char)(1u << (depth & 7));	\
	else								\
		stack[depth >> 3] &= (unsigned char)~(1u << (depth & 7));	\
	depth++;							\
} while (0)

	res->status = JSON_OK;
	res->offset = 0;
	res->byte = 0;
	s = skip_ws(s, end);
	if (s >= end)
		FAIL(JSON_EMPTY, s);
	first = s;

value:
	if (s >= end)
		FAIL(JSON_TRUNCATED, s);
	switch (*s) {
	case '{':
		/* the limit counts containers: a scalar inside the 2048th is
		 * fine, a 2049th container is not */
		if (depth >= JSON_MAX_DEPTH)
			FAIL(JSON_DEPTH, s);
		PUSH(1);
		s = skip_ws(s + 1, end);
		if (s < end && *s == '}') {
			s++;
			depth--;
			goto after_value;
		}
		goto key;
	case '[':
		if (depth >= JSON_MAX_DEPTH)
			FAIL(JSON_DEPTH, s);
		PUSH(0);
		s = skip_ws(s + 1, end);
		if (s < end && *s == ']') {
			s++;
			depth--;
			goto after_value;
		}
		goto value;
	case '"':
		if ((s = scan_string(s + 1, end, base, 0, res)) == NULL)
			return -1;
		goto after_value;
	case '-': case '0': case '1': case '2': case '3': case '4':
	case '5': case '6': case '7': case '8': case '9':
		if ((s = scan_number(s, end, base, res)) == NULL)
			return -1;
		goto after_value;
	case 't':
		if (end - s < 4 || memcmp(s, "true", 4) != 0)
			goto bad_literal;
		s += 4;
		goto after_value;
	case 'f':
		if (end - s < 5 || memcmp(s, "false", 5) != 0)
			goto bad_literal;
		s += 5;
		goto after_value;
	case 'n':
		if (end - s < 4 || memcmp(s, "null", 4) != 0)
			goto bad_literal;
		s += 4;
		goto after_value;
	default:
		FAIL(*s >= 0x80 && utf8_char(s, end) == 0 ? JSON_UTF8 :
		    JSON_UNEXPECTED, s);
	}

bad_literal:
	{
		const char *lit = *s == 't' ? "true" : *s == 'f' ? "false" : "null";
		size_t i = 0;
		while (s + i < end && lit[i] != '\0' && s[i] == (unsigned char)lit[i])
			i++;
		FAIL(s + i >= end ? JSON_TRUNCATED : JSON_UNEXPECTED, s + i);
	}

key:
	if (s >= end)
		FAIL(JSON_TRUNCATED, s);
	if (*s != '"')
		FAIL(JSON_UNEXPECTED, s);
	if ((s = scan_string(s + 1, end, base, 1, res)) == NULL)
		return -1;
	s = skip_ws(s, end);
	if (s >= end)
		FAIL(JSON_TRUNCATED, s);
	if (*s != ':')
		FAIL(JSON_UNEXPECTED, s);
	s = skip_ws(s + 1, end);
	goto value;

after_value:
	s = skip_ws(s, end);
	if (depth == 0) {
		if (s < end)
			FAIL(JSON_TRAILING, s);
		if (need_object && *first != '{')
			FAIL(JSON_NOT_OBJECT, first);
		return 0;
	}
	if (s >= end)
		FAIL(JSON_TRUNCATED, s);
	if (*s == ',') {
		s = skip_ws(s + 1, end);
		if (TOP_IS_OBJECT())
			goto key;
		goto value;
	}
	if (*s == (TOP_IS_OBJECT() ? '}' : ']')) {
		s++;
		depth--;
		goto after_value;
	}
	FAIL(JSON_UNEXPECTED, s);
}

int
json_scan_record(const char *p, size_t n, struct json_result *r)
{
	return scan(p, n, 1, r);
}

int
json_scan_value(const char *p, size_t n, struct json_result *r)
{
	return scan(p, n, 0, r);
}

const char *
json_result_str(const struct json_result *r, char *buf, size_t n)
{
	char ch[16];
	unsigned char c = r->byte;

	if (c >= 0x21 && c < 0x7F && c != '\'')
		snprintf(ch, sizeof(ch), "'%c'", c);
	else
		snprintf(ch, sizeof(ch), "0x%02x", c);
	switch (r->status) {
	case JSON_OK:
		snprintf(buf, n, "valid");
		break;
	case JSON_EMPTY:
		snprintf(buf, n, "empty record");
		break;
	case JSON_UNEXPECTED:
		if (c == 0)
			snprintf(buf, n, "NUL byte at byte %zu", r->offset);
		else
			snprintf(buf, n, "invalid JSON: unexpected %s at byte %zu",
			    ch, r->offset);
		break;
	case JSON_TRUNCATED:
		snprintf(buf, n, "invalid JSON: unexpected end at byte %zu",
		    r->offset);
		break;
	case JSON_TRAILING:
		snprintf(buf, n, "trailing data after the object at byte %zu",
		    r->offset);
		break;
	case JSON_CONTROL:
		if (c == 0)
			snprintf(buf, n, "NUL byte in a string at byte %zu",
			    r->offset);
		else
			snprintf(buf, n, "invalid JSON: control character %s in "
			    "a string at byte %zu", ch, r->offset);
		break;
	case JSON_ESCAPE:
		snprintf(buf, n, "invalid JSON: bad escape at byte %zu",
		    r->offset);
		break;
	case JSON_SURROGATE:
		snprintf(buf, n, "invalid JSON: unpaired surrogate escape at "
		    "byte %zu", r->offset);
		break;
	case JSON_UTF8:
		snprintf(buf, n, "invalid UTF-8 at byte %zu", r->offset);
		break;
	case JSON_NUMBER:
		snprintf(buf, n, "invalid JSON: malformed number at byte %zu",
		    r->offset);
		break;
	case JSON_KEY_NUL:
		snprintf(buf, n, "\\u0000 in an object key at byte %zu",
		    r->offset);
		break;
	case JSON_DEPTH:
		snprintf(buf, n, "nested deeper than %d at byte %zu",
		    JSON_MAX_DEPTH, r->offset);
		break;
	case JSON_NOT_OBJECT:
		snprintf(buf, n, "not a JSON object");
		break;
	}
	return buf;
}

int
json_escape_name(struct buf *b, const char *s)
{
	size_t n = strlen(s), i;
	int rc = 0;

	if (utf8_valid(s, n))
		return buf_json_escape(b, s, n);
	for (i = 0; i < n; i++)
		rc |= buf_json_escape(b, (unsigned char)s[i] < 0x80 ? s + i :
		    "?", 1);
	return rc != 0 ? -1 : 0;
}
