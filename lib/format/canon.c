#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "canon.h"
#include "json.h"

/*
 * The value is first read into a flat array of nodes (no recursion, one
 * pass), then written out from the nodes, each object's members sorted
 * through an index array.  Every input byte is read a bounded number of
 * times whatever the nesting.
 */
enum node_type { N_OBJ, N_ARR, N_STR, N_NUM, N_LIT, N_KEY };

struct node {
	unsigned char type;
	unsigned char esc;	/* a string's JSON_ESC_*; a key decoded */
	size_t start;		/* token offset (strings: after the quote);
				 * a decoded key: offset in keys */
	size_t len;
	size_t next;		/* the node after this value's subtree */
};

struct canon {
	struct node *nodes;
	size_t nnodes, capnodes;
	size_t *ord;		/* member order, a stack of per-object runs */
	size_t nord, capord;
	size_t *open;		/* open containers while reading */
	struct buf keys;	/* decoded names that held escapes */
	struct buf tmp;		/* a decoded string being normalized */
	struct buf norm;	/* tmp normalized (never the same buffer) */
	const char *p;		/* the text being read */
	unsigned flags;
	int text;		/* canon_text rather than canon_value */
};

/*
 * Unicode 14 simple lower-case mapping as runs: code points start..end
 * (every stride-th one) map to themselves plus delta.  Generated with
 * Python 3.11's unicodedata (str.lower, with U+0130 mapped to U+0069,
 * its simple mapping).
 */
static const struct lower_run {
	uint32_t start, end;
	int32_t delta;
	uint32_t stride;
} lower_runs[] = {
	{ 0x0041, 0x005A, 32, 1 }, { 0x00C0, 0x00D6, 32, 1 },
	{ 0x00D8, 0x00DE, 32, 1 }, { 0x0100, 0x012E, 1, 2 },
	{ 0x0130, 0x0130, -199, 1 }, { 0x0132, 0x0136, 1, 2 },
	{ 0x0139, 0x0147, 1, 2 }, { 0x014A, 0x0176, 1, 2 },
	{ 0x0178, 0x0178, -121, 1 }, { 0x0179, 0x017D, 1, 2 },
	{ 0x0181, 0x0181, 210, 1 }, { 0x0182, 0x0184, 1, 2 },
	{ 0x0186, 0x0186, 206, 1 }, { 0x0187, 0x0187, 1, 1 },
	{ 0x0189, 0x018A, 205, 1 }, { 0x018B, 0x018B, 1, 1 },
	{ 0x018E, 0x018E, 79, 1 }, { 0x018F, 0x018F, 202, 1 },
	{ 0x0190, 0x0190, 203, 1 }, { 0x0191, 0x0191, 1, 1 },
	{ 0x0193, 0x0193, 205, 1 }, { 0x0194, 0x0194, 207, 1 },
	{ 0x0196, 0x0196, 211, 1 }, { 0x0197, 0x0197, 209, 1 },
	{ 0x0198, 0x0198, 1, 1 }, { 0x019C, 0x019C, 211, 1 },
	{ 0x019D, 0x019D, 213, 1 }, { 0x019F, 0x019F, 214, 1 },
	{ 0x01A0, 0x01A4, 1, 2 }, { 0x01A6, 0x01A6, 218, 1 },
	{ 0x01A7, 0x01A7, 1, 1 }, { 0x01A9, 0x01A9, 218, 1 },
	{ 0x01AC, 0x01AC, 1, 1 }, { 0x01AE, 0x01AE, 218, 1 },
	{ 0x01AF, 0x01AF, 1, 1 }, { 0x01B1, 0x01B2, 217, 1 },
	{ 0x01B3, 0x01B5, 1, 2 }, { 0x01B7, 0x01B7, 219, 1 },
	{ 0x01B8, 0x01B8, 1, 1 }, { 0x01BC, 0x01BC, 1, 1 },
	{ 0x01C4, 0x01C4, 2, 1 }, { 0x01C5, 0x01C5, 1, 1 },
	{ 0x01C7, 0x01C7, 2, 1 }, { 0x01C8, 0x01C8, 1, 1 },
	{ 0x01CA, 0x01CA, 2, 1 }, { 0x01CB, 0x01DB, 1, 2 },
	{ 0x01DE, 0x01EE, 1, 2 }, { 0x01F1, 0x01F1, 2, 1 },
	{ 0x01F2, 0x01F4, 1, 2 }, { 0x01F6, 0x01F6, -97, 1 },
	{ 0x01F7, 0x01F7, -56, 1 }, { 0x01F8, 0x021E, 1, 2 },
	{ 0x0220, 0x0220, -130, 1 }, { 0x0222, 0x0232, 1, 2 },
	{ 0x023A, 0x023A, 10795, 1 }, { 0x023B, 0x023B, 1, 1 },
	{ 0x023D, 0x023D, -163, 1 }, { 0x023E, 0x023E, 10792, 1 },
	{ 0x0241, 0x0241, 1, 1 }, { 0x0243, 0x0243, -195, 1 },
	{ 0x0244, 0x0244, 69, 1 }, { 0x0245, 0x0245, 71, 1 },
	{ 0x0246, 0x024E, 1, 2 }, { 0x0370, 0x0372, 1, 2 },
	{ 0x0376, 0x0376, 1, 1 }, { 0x037F, 0x037F, 116, 1 },
	{ 0x0386, 0x0386, 38, 1 }, { 0x0388, 0x038A, 37, 1 },
	{ 0x038C, 0x038C, 64, 1 }, { 0x038E, 0x038F, 63, 1 },
	{ 0x0391, 0x03A1, 32, 1 }, { 0x03A3, 0x03AB, 32, 1 },
	{ 0x03CF, 0x03CF, 8, 1 }, { 0x03D8, 0x03EE, 1, 2 },
	{ 0x03F4, 0x03F4, -60, 1 }, { 0x03F7, 0x03F7, 1, 1 },
	{ 0x03F9, 0x03F9, -7, 1 }, { 0x03FA, 0x03FA, 1, 1 },
	{ 0x03FD, 0x03FF, -130, 1 }, { 0x0400, 0x040F, 80, 1 },
	{ 0x0410, 0x042F, 32, 1 }, { 0x0460, 0x0480, 1, 2 },
	{ 0x048A, 0x04BE, 1, 2 }, { 0x04C0, 0x04C0, 15, 1 },
	{ 0x04C1, 0x04CD, 1, 2 }, { 0x04D0, 0x052E, 1, 2 },
	{ 0x0531, 0x0556, 48, 1 }, { 0x10A0, 0x10C5, 7264, 1 },
	{ 0x10C7, 0x10C7, 7264, 1 }, { 0x10CD, 0x10CD, 7264, 1 },
	{ 0x13A0, 0x13EF, 38864, 1 }, { 0x13F0, 0x13F5, 8, 1 },
	{ 0x1C90, 0x1CBA, -3008, 1 }, { 0x1CBD, 0x1CBF, -3008, 1 },
	{ 0x1E00, 0x1E94, 1, 2 }, { 0x1E9E, 0x1E9E, -7615, 1 },
	{ 0x1EA0, 0x1EFE, 1, 2 }, { 0x1F08, 0x1F0F, -8, 1 },
	{ 0x1F18, 0x1F1D, -8, 1 }, { 0x1F28, 0x1F2F, -8, 1 },
	{ 0x1F38, 0x1F3F, -8, 1 }, { 0x1F48, 0x1F4D, -8, 1 },
	{ 0x1F59, 0x1F5F, -8, 2 }, { 0x1F68, 0x1F6F, -8, 1 },
	{ 0x1F88, 0x1F8F, -8, 1 }, { 0x1F98, 0x1F9F, -8, 1 },
	{ 0x1FA8, 0x1FAF, -8, 1 }, { 0x1FB8, 0x1FB9, -8, 1 },
	{ 0x1FBA, 0x1FBB, -74, 1 }, { 0x1FBC, 0x1FBC, -9, 1 },
	{ 0x1FC8, 0x1FCB, -86, 1 }, { 0x1FCC, 0x1FCC, -9, 1 },
	{ 0x1FD8, 0x1FD9, -8, 1 }, { 0x1FDA, 0x1FDB, -100, 1 },
	{ 0x1FE8, 0x1FE9, -8, 1 }, { 0x1FEA, 0x1FEB, -112, 1 },
	{ 0x1FEC, 0x1FEC, -7, 1 }, { 0x1FF8, 0x1FF9, -128, 1 },
	{ 0x1FFA, 0x1FFB, -126, 1 }, { 0x1FFC, 0x1FFC, -9, 1 },
	{ 0x2126, 0x2126, -7517, 1 }, { 0x212A, 0x212A, -8383, 1 },
	{ 0x212B, 0x212B, -8262, 1 }, { 0x2132, 0x2132, 28, 1 },
	{ 0x2160, 0x216F, 16, 1 }, { 0x2183, 0x2183, 1, 1 },
	{ 0x24B6, 0x24CF, 26, 1 }, { 0x2C00, 0x2C2F, 48, 1 },
	{ 0x2C60, 0x2C60, 1, 1 }, { 0x2C62, 0x2C62, -10743, 1 },
	{ 0x2C63, 0x2C63, -3814, 1 }, { 0x2C64, 0x2C64, -10727, 1 },
	{ 0x2C67, 0x2C6B, 1, 2 }, { 0x2C6D, 0x2C6D, -10780, 1 },
	{ 0x2C6E, 0x2C6E, -10749, 1 }, { 0x2C6F, 0x2C6F, -10783, 1 },
	{ 0x2C70, 0x2C70, -10782, 1 }, { 0x2C72, 0x2C72, 1, 1 },
	{ 0x2C75, 0x2C75, 1, 1 }, { 0x2C7E, 0x2C7F, -10815, 1 },
	{ 0x2C80, 0x2CE2, 1, 2 }, { 0x2CEB, 0x2CED, 1, 2 },
	{ 0x2CF2, 0x2CF2, 1, 1 }, { 0xA640, 0xA66C, 1, 2 },
	{ 0xA680, 0xA69A, 1, 2 }, { 0xA722, 0xA72E, 1, 2 },
	{ 0xA732, 0xA76E, 1, 2 }, { 0xA779, 0xA77B, 1, 2 },
	{ 0xA77D, 0xA77D, -35332, 1 }, { 0xA77E, 0xA786, 1, 2 },
	{ 0xA78B, 0xA78B, 1, 1 }, { 0xA78D, 0xA78D, -42280, 1 },
	{ 0xA790, 0xA792, 1, 2 }, { 0xA796, 0xA7A8, 1, 2 },
	{ 0xA7AA, 0xA7AA, -42308, 1 }, { 0xA7AB, 0xA7AB, -42319, 1 },
	{ 0xA7AC, 0xA7AC, -42315, 1 }, { 0xA7AD, 0xA7AD, -42305, 1 },
	{ 0xA7AE, 0xA7AE, -42308, 1 }, { 0xA7B0, 0xA7B0, -42258, 1 },
	{ 0xA7B1, 0xA7B1, -42282, 1 }, { 0xA7B2, 0xA7B2, -42261, 1 },
	{ 0xA7B3, 0xA7B3, 928, 1 }, { 0xA7B4, 0xA7C2, 1, 2 },
	{ 0xA7C4, 0xA7C4, -48, 1 }, { 0xA7C5, 0xA7C5, -42307, 1 },
	{ 0xA7C6, 0xA7C6, -35384, 1 }, { 0xA7C7, 0xA7C9, 1, 2 },
	{ 0xA7D0, 0xA7D0, 1, 1 }, { 0xA7D6, 0xA7D8, 1, 2 },
	{ 0xA7F5, 0xA7F5, 1, 1 }, { 0xFF21, 0xFF3A, 32, 1 },
	{ 0x10400, 0x10427, 40, 1 }, { 0x104B0, 0x104D3, 40, 1 },
	{ 0x10570, 0x1057A, 39, 1 }, { 0x1057C, 0x1058A, 39, 1 },
	{ 0x1058C, 0x10592, 39, 1 }, { 0x10594, 0x10595, 39, 1 },
	{ 0x10C80, 0x10CB2, 64, 1 }, { 0x118A0, 0x118BF, 32, 1 },
	{ 0x16E40, 0x16E5F, 32, 1 }, { 0x1E900, 0x1E921, 34, 1 },
};

static uint32_t
lower_cp(uint32_t c)
{
	size_t lo = 0, hi = sizeof(lower_runs) / sizeof(lower_runs[0]);

	if (c < 0x80)
		return c >= 'A' && c <= 'Z' ? c + 32 : c;
	if (c < 0x100)
		return c >= 0xC0 && c <= 0xDE && c != 0xD7 ? c + 32 : c;
	if ((c > 0x2CF2 && c < 0xA640) || (c > 0xA7F5 && c < 0xFF21) ||
	    c > 0x1E921)
		return c;	/* CJK, kana, Hangul, emoji: no mapping */
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (c < lower_runs[mid].start)
			hi = mid;
		else if (c > lower_runs[mid].end)
			lo = mid + 1;
		else {
			const struct lower_run *r = &lower_runs[mid];
			if ((c - r->start) % r->stride != 0)
				return c;
			return (uint32_t)((int32_t)c + r->delta);
		}
	}
	return c;
}

static int
is_space_cp(uint32_t c)
{
	if (c < 0x80)
		return c == ' ' || (c >= 0x09 && c <= 0x0D);
	return c == 0x85 || c == 0xA0 || c == 0x1680 ||
	    (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 ||
	    c == 0x202F || c == 0x205F || c == 0x3000;
}

/* Decode the UTF-8 character at s (valid, s < end); returns its length. */
static size_t
utf8_decode(const unsigned char *s, const unsigned char *end, uint32_t *cp)
{
	size_t left = (size_t)(end - s);

	if (s[0] < 0x80 || left < 2) {
		*cp = s[0];
		return 1;
	}
	if (s[0] < 0xE0) {
		*cp = (uint32_t)(s[0] & 0x1F) << 6 | (s[1] & 0x3F);
		return 2;
	}
	if (s[0] < 0xF0 || left < 4) {
		if (left < 3) {
			*cp = s[0];
			return 1;
		}
		*cp = (uint32_t)(s[0] & 0x0F) << 12 | (uint32_t)(s[1] & 0x3F) << 6 |
		    (s[2] & 0x3F);
		return 3;
	}
	*cp = (uint32_t)(s[0] & 0x07) << 18 | (uint32_t)(s[1] & 0x3F) << 12 |
	    (uint32_t)(s[2] & 0x3F) << 6 | (s[3] & 0x3F);
	return 4;
}

/* Write code point cp as UTF-8 into o (room for 4); returns the length. */
static inline size_t
utf8_encode(uint32_t cp, char *o)
{
	if (cp < 0x80) {
		o[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		o[0] = (char)(0xC0 | cp >> 6);
		o[1] = (char)(0x80 | (cp & 0x3F));
		return 2;
	}
	if (cp < 0x10000) {
		o[0] = (char)(0xE0 | cp >> 12);
		o[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
		o[2] = (char)(0x80 | (cp & 0x3F));
		return 3;
	}
	o[0] = (char)(0xF0 | cp >> 18);
	o[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
	o[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
	o[3] = (char)(0x80 | (cp & 0x3F));
	return 4;
}

/* The character of each two-character escape (\\n: '\n'), 0 for others. */
static const unsigned char short_escape[256] = {
	['"'] = '"', ['\\'] = '\\', ['/'] = '/', ['b'] = '\b', ['f'] = '\f',
	['n'] = '\n', ['r'] = '\r', ['t'] = '\t',
};

/*
 * Decode the escape at s (a backslash, s < end) into *cp.  Returns its
 * length (2, 6, or 12 for a surrogate pair), or 0 when it is not one.
 */
static inline __attribute__((always_inline)) size_t
unescape_one(const unsigned char *s, const unsigned char *end, uint32_t *cp)
{
	uint32_t lo;

	if (end - s < 2)
		return 0;
	if (s[1] != 'u') {
		*cp = short_escape[s[1]];
		return *cp != 0 ? 2 : 0;
	}
	if (end - s < 6 || json_hex4(s + 2, cp) == -1 ||
	    (*cp >= 0xDC00 && *cp <= 0xDFFF))
		return 0;
	if (*cp < 0xD800 || *cp > 0xDBFF)
		return 6;
	if (end - s < 12 || s[6] != '\\' || s[7] != 'u' ||
	    json_hex4(s + 8, &lo) == -1 || lo < 0xDC00 || lo > 0xDFFF)
		return 0;
	*cp = 0x10000 + ((*cp - 0xD800) << 10) + (lo - 0xDC00);
	return 12;
}

int
canon_unescape_equal(const char *p, size_t n, const char *name, size_t len)
{
	const unsigned char *s = (const unsigned char *)p, *end = s + n;
	const char *o = name, *oe = name + len;

	while (s < end) {
		uint32_t cp;
		size_t l, k;
		char u[4];

		if (*s != '\\') {
			if (o == oe || *o != (char)*s)
				return 0;
			o++;
			s++;
			continue;
		}
		if ((l = unescape_one(s, end, &cp)) == 0)
			return 0;
		k = utf8_encode(cp, u);
		if ((size_t)(oe - o) < k || memcmp(o, u, k) != 0)
			return 0;
		o += k;
		s += l;
	}
	return o == oe;
}

/* Write the canonical escape of control character or quote cp at o;
 * returns its length. */
static size_t
escape_cp(uint32_t cp, char *o)
{
	static const char hex[] = "0123456789abcdef";

	o[0] = '\\';
	switch (cp) {
	case '"': o[1] = '"'; return 2;
	case '\\': o[1] = '\\'; return 2;
	case '\b': o[1] = 'b'; return 2;
	case '\f': o[1] = 'f'; return 2;
	case '\n': o[1] = 'n'; return 2;
	case '\r': o[1] = 'r'; return 2;
	case '\t': o[1] = 't'; return 2;
	default:
		memcpy(o + 1, "u00", 3);
		o[4] = hex[cp >> 4];
		o[5] = hex[cp & 15];
		return 6;
	}
}

/*
 * Append the decoded text p[0..n) as the body of a JSON string with the
 * canonical escapes, eight bytes at a time between them.
 */
static int
escape_text(const char *p, size_t n, struct buf *out)
{
	const unsigned char *s = (const unsigned char *)p, *end = s + n, *run;
	char *o;

	if (buf_reserve(out, n) == -1)
		return -1;
	while (s < end) {
		run = s;
		for (;;) {
			uint64_t m;
			if (end - s < 8) {
				while (s < end && *s >= 0x20 && *s != '"' &&
				    *s != '\\')
					s++;
				break;
			}
			if ((m = json_escape8(json_load8(s))) == 0) {
				s += 8;
				continue;
			}
			s += __builtin_ctzll(m) >> 3;
			break;
		}
		/* room for the run was reserved; an escape takes more */
		memcpy(out->data + out->len, run, (size_t)(s - run));
		out->len += (size_t)(s - run);
		if (s == end)
			break;
		if (buf_reserve(out, (size_t)(end - s) + 6) == -1)
			return -1;
		o = out->data + out->len;
		out->len += escape_cp(*s++, o);
	}
	return 0;
}

/*
 * Rewrite the string body p[0..n) (with escapes) at o, in one pass, each
 * byte read once: decoded to UTF-8, or with canonical set, in canonical
 * form.  Canonical escapes (\" \\ \b \f \n \r \t, \u00XX below U+0020)
 * are copied; any other \uXXXX becomes UTF-8 or one of those; \/ becomes
 * '/'.  Neither form is ever longer than the escaped one (an escape of 2,
 * 6 or 12 bytes gives at most 2, 6 or 4), so o needs n bytes of room and
 * no check.  Returns the end of the output, or NULL (EINVAL) on a bad
 * escape.
 */
static inline __attribute__((always_inline)) char *
transcode(const char *p, size_t n, char *o, int canonical)
{
	const unsigned char *s = (const unsigned char *)p, *end = s + n;
	const unsigned char *bs;

	while (s < end) {
		uint32_t cp;
		size_t l;

		if (*s != '\\') {
			if ((bs = memchr(s, '\\', (size_t)(end - s))) == NULL)
				bs = end;
			memcpy(o, s, (size_t)(bs - s));
			o += bs - s;
			s = bs;
			continue;
		}
		if (end - s >= 2 && s[1] != '/' && short_escape[s[1]] != 0) {
			/* a short escape: its character, or as it is */
			if (canonical) {
				o[0] = '\\';
				o[1] = (char)s[1];
				o += 2;
			} else
				*o++ = (char)short_escape[s[1]];
			s += 2;
			continue;
		}
		if ((l = unescape_one(s, end, &cp)) == 0) {
			errno = EINVAL;
			return NULL;
		}
		if (canonical && (cp < 0x20 || cp == '"' || cp == '\\'))
			o += escape_cp(cp, o);
		else
			o += utf8_encode(cp, o);
		s += l;
	}
	return o;
}

int
canon_unescape(const char *p, size_t n, struct buf *out)
{
	char *o;

	if (n == 0)
		return 0;
	if (buf_reserve(out, n) == -1)
		return -1;
	if ((o = transcode(p, n, out->data + out->len, 0)) == NULL)
		return -1;
	out->len = (size_t)(o - out->data);
	return 0;
}

/* Append the string body p[0..n) in canonical form, quoted. */
static int
write_escaped(const char *p, size_t n, struct buf *out)
{
	char *o;

	if (buf_reserve(out, n + 2) == -1)
		return -1;
	o = out->data + out->len;
	*o++ = '"';
	if ((o = transcode(p, n, o, 1)) == NULL)
		return -1;
	*o++ = '"';
	out->len = (size_t)(o - out->data);
	return 0;
}

/*
 * One pass: leading white space is dropped as it comes, and trailing
 * white space by cutting the output back to the end of its last other
 * character.  The output is at most 3/2 of the input (a lower-case
 * mapping turns at most 2 bytes into 3), reserved once.
 */
int
canon_normalize(const char *p, size_t n, unsigned flags, struct buf *out)
{
	const unsigned char *s = (const unsigned char *)p, *end;
	char *o, *keep;
	int lead = (flags & CANON_TRIM) != 0, in_space = 0;

	if (n == 0)
		return 0;	/* p may be NULL then */
	end = s + n;
	if (buf_reserve(out, n + n / 2 + 4) == -1)
		return -1;
	o = keep = out->data + out->len;
	while (s < end) {
		uint32_t cp;
		size_t l;

		if (*s < 0x80) {
			unsigned char c = *s;
			if (c == ' ' || (c >= 0x09 && c <= 0x0D)) {
				l = 1;
				goto space;
			}
			if ((flags & CANON_LOWER) && c >= 'A' && c <= 'Z')
				c += 32;
			*o++ = (char)c;
			s++;
			keep = o;
			lead = in_space = 0;
			continue;
		}
		if (end - s >= 2 && s[0] == 0xC3 && (s[1] & 0xC0) == 0x80) {
			/* a run of U+00C0..U+00FF (é), the commonest: no
			 * space, and the upper-case letters map 32 up */
			do {
				unsigned char c2 = s[1];
				if ((flags & CANON_LOWER) && c2 <= 0x9E &&
				    c2 != 0x97)
					c2 += 0x20;
				o[0] = (char)0xC3;
				o[1] = (char)c2;
				o += 2;
				s += 2;
			} while (end - s >= 2 && s[0] == 0xC3 &&
			    (s[1] & 0xC0) == 0x80);
			keep = o;
			lead = in_space = 0;
			continue;
		}
		if (end - s >= 3 && s[0] >= 0xE4 && s[0] <= 0xE9 &&
		    (s[1] & 0xC0) == 0x80 && (s[2] & 0xC0) == 0x80) {
			/* a run of U+4000..U+9FFF (CJK): no space, no
			 * mapping */
			do {
				memcpy(o, s, 3);
				o += 3;
				s += 3;
			} while (end - s >= 3 && s[0] >= 0xE4 && s[0] <= 0xE9 &&
			    (s[1] & 0xC0) == 0x80 && (s[2] & 0xC0) == 0x80);
			keep = o;
			lead = in_space = 0;
			continue;
		}
		l = utf8_decode(s, end, &cp);
		if (is_space_cp(cp))
			goto space;
		if ((flags & CANON_LOWER) && l > 1) {
			/* (a lone byte of invalid UTF-8 stays as it is: its
			 * mapping could take two bytes) */
			uint32_t lc = lower_cp(cp);
			if (lc != cp)
				o += utf8_encode(lc, o);
			else {
				memcpy(o, s, l);
				o += l;
			}
		} else {
			memcpy(o, s, l);
			o += l;
		}
		s += l;
		keep = o;
		lead = in_space = 0;
		continue;
	space:
		if (!lead) {
			if (!(flags & CANON_SPACE)) {
				memcpy(o, s, l);
				o += l;
			} else if (!in_space)
				*o++ = ' ';
			in_space = 1;
		}
		s += l;
	}
	if (flags & CANON_TRIM)
		o = keep;
	out->len = (size_t)(o - out->data);
	return 0;
}

int
canon_flags_parse(const char *s, unsigned *flags)
{
	*flags = 0;
	while (*s != '\0') {
		size_t l = strcspn(s, ",");
		if (l == 4 && memcmp(s, "trim", 4) == 0)
			*flags |= CANON_TRIM;
		else if (l == 5 && memcmp(s, "lower", 5) == 0)
			*flags |= CANON_LOWER;
		else if (l == 5 && memcmp(s, "space", 5) == 0)
			*flags |= CANON_SPACE;
		else {
			errno = EINVAL;
			return -1;
		}
		s += l;
		if (*s == ',') {
			s++;
			if (*s == '\0') {
				errno = EINVAL;
				return -1;
			}
		}
	}
	if (*flags == 0) {
		errno = EINVAL;
		return -1;
	}
	return 0;
}

void
canon_flags_str(unsigned flags, char *buf, size_t n)
{
	snprintf(buf, n, "%s%s%s%s%s",
	    flags & CANON_LOWER ? "lower" : "",
	    (flags & CANON_LOWER) && (flags & (CANON_SPACE | CANON_TRIM)) ?
	    "," : "",
	    flags & CANON_SPACE ? "space" : "",
	    (flags & CANON_SPACE) && (flags & CANON_TRIM) ? "," : "",
	    flags & CANON_TRIM ? "trim" : "");
}

/* --- numbers ------------------------------------------------------------- */

/*
 * Write sign and magnitude m[0..len) plus delta (|delta| < 2^62, and m at
 * least 10^17, so the sign cannot change) as a decimal exponent.
 */
static int
bigexp(struct buf *out, int neg, const char *m, size_t len, int64_t delta)
{
	char *d;
	size_t i;
	uint64_t carry;
	int add;

	add = (delta >= 0) != neg;	/* the magnitude grows */
	carry = delta >= 0 ? (uint64_t)delta : (uint64_t)0 - (uint64_t)delta;
	if ((d = malloc(len + 1)) == NULL)
		return -1;
	d[0] = '0';
	memcpy(d + 1, m, len);
	for (i = len + 1; i-- > 0 && carry != 0;) {
		int64_t v = d[i] - '0';
		int64_t c = (int64_t)(carry % 10);
		carry /= 10;
		if (add) {
			v += c;
			if (v >= 10) {
				v -= 10;
				carry++;
			}
		} else {
			v -= c;
			if (v < 0) {
				v += 10;
				carry++;
			}
		}
		d[i] = (char)('0' + v);
	}
	for (i = 0; i < len && d[i] == '0'; i++)
		;
	if (buf_append(out, neg ? "e-" : "e+", 2) == -1 ||
	    buf_append(out, d + i, len + 1 - i) == -1) {
		free(d);
		return -1;
	}
	free(d);
	return 0;
}

int
canon_number(const char *p, size_t n, struct buf *out)
{
	const char *s = p, *end = p + n, *ip, *fp = NULL, *ep = NULL;
	size_t ni, nf = 0, ne = 0, nd, lead, last, k, i;
	int neg = 0, eneg = 0;
	int64_t expv = 0, pos;

	if (s < end && *s == '-') {
		neg = 1;
		s++;
	}
	ip = s;
	while (s < end && *s >= '0' && *s <= '9')
		s++;
	ni = (size_t)(s - ip);
	if (ni == 0)
		goto bad;
	if (s < end && *s == '.') {
		fp = ++s;
		while (s < end && *s >= '0' && *s <= '9')
			s++;
		nf = (size_t)(s - fp);
		if (nf == 0)
			goto bad;
	}
	if (s < end && (*s == 'e' || *s == 'E')) {
		s++;
		if (s < end && (*s == '+' || *s == '-'))
			eneg = *s++ == '-';
		ep = s;
		while (s < end && *s >= '0' && *s <= '9')
			s++;
		ne = (size_t)(s - ep);
		if (ne == 0)
			goto bad;
		while (ne > 0 && *ep == '0') {
			ep++;
			ne--;
		}
	}
	if (s != end)
		goto bad;

#define DIGIT(j) ((j) < ni ? ip[(j)] : fp[(j) - ni])
	nd = ni + nf;
	for (lead = 0; lead < nd && DIGIT(lead) == '0'; lead++)
		;
	if (lead == nd)
		return buf_putc(out, '0');
	for (last = nd - 1; DIGIT(last) == '0'; last--)
		;
	k = last - lead + 1;
	if (neg && buf_putc(out, '-') == -1)
		return -1;
	if (ne > 17) {
		/* an exponent beyond any int64: always the "e" form */
		if (buf_putc(out, DIGIT(lead)) == -1)
			return -1;
		if (k > 1 && buf_putc(out, '.') == -1)
			return -1;
		for (i = lead + 1; i <= last; i++)
			if (buf_putc(out, DIGIT(i)) == -1)
				return -1;
		return bigexp(out, eneg, ep, ne,
		    (int64_t)ni - (int64_t)lead - 1);
	}
	for (i = 0; i < ne; i++)
		expv = expv * 10 + (ep[i] - '0');
	if (eneg)
		expv = -expv;
	/* the value is 0.D x 10^pos, D the k significant digits */
	pos = (int64_t)ni - (int64_t)lead + expv;
	if (buf_reserve(out, k + 32) == -1)
		return -1;
	if ((int64_t)k <= pos && pos <= 21) {
		for (i = lead; i <= last; i++)
			buf_putc(out, DIGIT(i));
		for (i = 0; i < (size_t)(pos - (int64_t)k); i++)
			buf_putc(out, '0');
	} else if (pos > 0 && pos <= 21) {
		for (i = lead; i <= last; i++) {
			if (i - lead == (size_t)pos)
				buf_putc(out, '.');
			buf_putc(out, DIGIT(i));
		}
	} else if (pos <= 0 && pos > -6) {
		buf_append(out, "0.", 2);
		for (i = 0; i < (size_t)-pos; i++)
			buf_putc(out, '0');
		for (i = lead; i <= last; i++)
			buf_putc(out, DIGIT(i));
	} else {
		buf_putc(out, DIGIT(lead));
		if (k > 1)
			buf_putc(out, '.');
		for (i = lead + 1; i <= last; i++)
			if (buf_putc(out, DIGIT(i)) == -1)
				return -1;
		if (buf_printf(out, "e%c%lld", pos - 1 >= 0 ? '+' : '-',
		    (long long)(pos - 1 >= 0 ? pos - 1 : 1 - pos)) == -1)
			return -1;
	}
#undef DIGIT
	return 0;
bad:
	errno = EINVAL;
	return -1;
}

/* --- reading into nodes -------------------------------------------------- */

struct canon *
canon_new(void)
{
	return calloc(1, sizeof(struct canon));
}

void
canon_free(struct canon *c)
{
	if (c == NULL)
		return;
	free(c->nodes);
	free(c->ord);
	free(c->open);
	buf_release(&c->keys);
	buf_release(&c->tmp);
	buf_release(&c->norm);
	free(c);
}

static struct node *
node_add(struct canon *c, unsigned char type, size_t start, size_t len)
{
	struct node *nd;

	if (c->nnodes == c->capnodes) {
		size_t cap = c->capnodes ? c->capnodes * 2 : 256;
		struct node *v = realloc(c->nodes, cap * sizeof(*v));
		if (v == NULL)
			return NULL;
		c->nodes = v;
		c->capnodes = cap;
	}
	nd = &c->nodes[c->nnodes];
	nd->type = type;
	nd->esc = 0;
	nd->start = start;
	nd->len = len;
	nd->next = ++c->nnodes;
	return nd;
}

static const unsigned char *
skip_ws(const unsigned char *s, const unsigned char *end)
{
	while (s < end && (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r'))
		s++;
	return s;
}

/* The closing quote of a string whose body starts at s, or NULL. */
static const unsigned char *
string_end(const unsigned char *s, const unsigned char *end, int *esc)
{
	return (const unsigned char *)json_string_end((const char *)s,
	    (const char *)end, esc);
}

/*
 * Read the value p[0..n) into nodes.  Object members are a KEY node
 * followed by the value's nodes.  Returns 0 or -1 (EINVAL, ENOMEM).
 */
static int
read_nodes(struct canon *c, const char *p, size_t n)
{
	const unsigned char *base = (const unsigned char *)p;
	const unsigned char *s = base, *end = base + n, *q;
	size_t depth = 0;
	struct node *nd;
	int esc;

	c->nnodes = 0;
	c->keys.len = 0;
	c->p = p;
	if (c->open == NULL &&
	    (c->open = malloc(JSON_MAX_DEPTH * sizeof(size_t))) == NULL)
		return -1;
	s = skip_ws(s, end);
value:
	if (s >= end)
		goto bad;
	switch (*s) {
	case '{':
	case '[':
		if (depth >= JSON_MAX_DEPTH)
			goto bad;
		if (node_add(c, *s == '{' ? N_OBJ : N_ARR, (size_t)(s - base),
		    0) == NULL)
			return -1;
		c->open[depth++] = c->nnodes - 1;
		s = skip_ws(s + 1, end);
		if (s < end && (*s == '}' || *s == ']')) {
			if ((*s == '}') != (c->nodes[c->open[depth - 1]].type ==
			    N_OBJ))
				goto bad;
			s++;
			c->nodes[c->open[--depth]].next = c->nnodes;
			goto after;
		}
		if (c->nodes[c->open[depth - 1]].type == N_OBJ)
			goto key;
		goto value;
	case '"':
		if ((q = string_end(s + 1, end, &esc)) == NULL)
			goto bad;
		if ((nd = node_add(c, N_STR, (size_t)(s + 1 - base),
		    (size_t)(q - s - 1))) == NULL)
			return -1;
		nd->esc = (unsigned char)esc;
		s = q + 1;
		goto after;
	case 't': case 'f': case 'n':
		q = s;
		while (q < end && *q >= 'a' && *q <= 'z')
			q++;
		if (!((q - s == 4 && (memcmp(s, "true", 4) == 0 ||
		    memcmp(s, "null", 4) == 0)) ||
		    (q - s == 5 && memcmp(s, "false", 5) == 0)))
			goto bad;
		if (node_add(c, N_LIT, (size_t)(s - base), (size_t)(q - s)) ==
		    NULL)
			return -1;
		s = q;
		goto after;
	default:
		q = s;
		while (q < end && ((*q >= '0' && *q <= '9') || *q == '-' ||
		    *q == '+' || *q == '.' || *q == 'e' || *q == 'E'))
			q++;
		if (q == s)
			goto bad;
		if (node_add(c, N_NUM, (size_t)(s - base), (size_t)(q - s)) ==
		    NULL)
			return -1;
		s = q;
		goto after;
	}
key:
	if (s >= end || *s != '"' || (q = string_end(s + 1, end, &esc)) == NULL)
		goto bad;
	if (esc) {
		size_t at = c->keys.len;
		if (canon_unescape((const char *)s + 1, (size_t)(q - s - 1),
		    &c->keys) == -1)
			return -1;
		if ((nd = node_add(c, N_KEY, at, c->keys.len - at)) == NULL)
			return -1;
		nd->esc = 1;
	} else if (node_add(c, N_KEY, (size_t)(s + 1 - base),
	    (size_t)(q - s - 1)) == NULL)
		return -1;
	s = skip_ws(q + 1, end);
	if (s >= end || *s != ':')
		goto bad;
	s = skip_ws(s + 1, end);
	goto value;
after:
	s = skip_ws(s, end);
	if (depth == 0) {
		if (s != end)
			goto bad;
		return 0;
	}
	if (s >= end)
		goto bad;
	if (*s == ',') {
		s = skip_ws(s + 1, end);
		if (c->nodes[c->open[depth - 1]].type == N_OBJ)
			goto key;
		goto value;
	}
	if (*s == (c->nodes[c->open[depth - 1]].type == N_OBJ ? '}' : ']')) {
		s++;
		c->nodes[c->open[--depth]].next = c->nnodes;
		goto after;
	}
bad:
	errno = EINVAL;
	return -1;
}

/* --- writing ------------------------------------------------------------- */

static const char *
key_bytes(const struct canon *c, const struct node *k)
{
	return k->esc ? c->keys.data + k->start : c->p + k->start;
}

/* Compare members by name, then by position (a stable order). */
static int
member_cmp(const void *a, const void *b, void *arg)
{
	const struct canon *c = arg;
	const struct node *ka = &c->nodes[*(const size_t *)a];
	const struct node *kb = &c->nodes[*(const size_t *)b];
	size_t l = ka->len < kb->len ? ka->len : kb->len;
	int r = memcmp(key_bytes(c, ka), key_bytes(c, kb), l);

	if (r != 0)
		return r;
	if (ka->len != kb->len)
		return ka->len < kb->len ? -1 : 1;
	if (*(const size_t *)a == *(const size_t *)b)
		return 0;
	return *(const size_t *)a < *(const size_t *)b ? -1 : 1;
}

static int
same_key(const struct canon *c, size_t a, size_t b)
{
	const struct node *ka = &c->nodes[a], *kb = &c->nodes[b];

	return ka->len == kb->len &&
	    memcmp(key_bytes(c, ka), key_bytes(c, kb), ka->len) == 0;
}

/*
 * Write a string's body canonically (with quotes unless for text), in
 * one pass over its bytes unless it is normalized (then decoded,
 * normalized and escaped: three).
 */
static int
write_string(struct canon *c, const struct node *nd, int normalize,
    struct buf *out)
{
	const char *src = c->p + nd->start;
	const char *t = src;
	size_t tn = nd->len;

	if (!(normalize && c->flags)) {
		if (c->text && nd->esc)
			return canon_unescape(src, nd->len, out);
		if (nd->esc == JSON_ESC_OTHER)
			return write_escaped(src, nd->len, out);
		/* nothing to decode, or only the short escapes, which are
		 * canonical: the bytes are already canonical */
		if (c->text)
			return buf_append(out, src, nd->len);
		if (buf_reserve(out, nd->len + 2) == -1)
			return -1;
		out->data[out->len++] = '"';
		memcpy(out->data + out->len, src, nd->len);
		out->len += nd->len;
		out->data[out->len++] = '"';
		return 0;
	}
	if (nd->esc) {
		c->tmp.len = 0;
		if (canon_unescape(src, nd->len, &c->tmp) == -1)
			return -1;
		t = c->tmp.data;
		tn = c->tmp.len;
	}
	c->norm.len = 0;
	if (canon_normalize(t, tn, c->flags, &c->norm) == -1)
		return -1;
	if (c->norm.len == 0)	/* norm.data may be NULL */
		return c->text ? 0 : buf_append(out, "\"\"", 2);
	if (c->text)
		return buf_append(out, c->norm.data, c->norm.len);
	if (buf_putc(out, '"') == -1 ||
	    escape_text(c->norm.data, c->norm.len, out) == -1)
		return -1;
	return buf_putc(out, '"');
}

static int
write_key(struct canon *c, const struct node *k, struct buf *out)
{
	if (buf_putc(out, '"') == -1 ||
	    escape_text(key_bytes(c, k), k->len, out) == -1)
		return -1;
	return buf_append(out, "\":", 2);
}

/* Write the value at node i and its subtree. */
static int
write_node(struct canon *c, size_t i, struct buf *out)
{
	const struct node *nd = &c->nodes[i];
	size_t base, m, j, k, end = nd->next;
	int first;

	switch (nd->type) {
	case N_STR:
		if (write_string(c, nd, 1, out) == -1)
			return -1;
		return c->text ? buf_putc(out, ' ') : 0;
	case N_NUM:
		if (canon_number(c->p + nd->start, nd->len, out) == -1)
			return -1;
		return c->text ? buf_putc(out, ' ') : 0;
	case N_LIT:
		if (buf_append(out, c->p + nd->start, nd->len) == -1)
			return -1;
		return c->text ? buf_putc(out, ' ') : 0;
	case N_ARR:
		if (!c->text && buf_putc(out, '[') == -1)
			return -1;
		for (j = i + 1; j < end; j = c->nodes[j].next) {
			if (!c->text && j != i + 1 && buf_putc(out, ',') == -1)
				return -1;
			if (write_node(c, j, out) == -1)
				return -1;
		}
		return c->text ? 0 : buf_putc(out, ']');
	case N_OBJ:
		break;
	default:
		errno = EINVAL;
		return -1;
	}
	/* the members' key nodes, sorted in a run of ord */
	base = c->nord;
	for (j = i + 1; j < end; j = c->nodes[j + 1].next) {
		if (c->nord == c->capord) {
			size_t cap = c->capord ? c->capord * 2 : 64;
			size_t *v = realloc(c->ord, cap * sizeof(*v));
			if (v == NULL)
				return -1;
			c->ord = v;
			c->capord = cap;
		}
		c->ord[c->nord++] = j;
	}
	m = c->nord - base;
	if (m > 1) {
		/* already in order is common: check before sorting */
		for (j = 1; j < m; j++)
			if (member_cmp(&c->ord[base + j - 1], &c->ord[base + j],
			    c) > 0)
				break;
		if (j < m)
			qsort_r(c->ord + base, m, sizeof(size_t), member_cmp, c);
	}
	if (!c->text && buf_putc(out, '{') == -1)
		return -1;
	first = 1;
	for (j = 0; j < m; j++) {
		k = c->ord[base + j];
		/* of members with one name, the last wins */
		if (j + 1 < m && same_key(c, k, c->ord[base + j + 1]))
			continue;
		if (!c->text) {
			if (!first && buf_putc(out, ',') == -1)
				return -1;
			if (write_key(c, &c->nodes[k], out) == -1)
				return -1;
		}
		first = 0;
		if (write_node(c, k + 1, out) == -1)
			return -1;
	}
	c->nord = base;
	return c->text ? 0 : buf_putc(out, '}');
}

/*
 * Read p[0..n) once and write its canonical form to out (when not NULL)
 * and its text to text (when not NULL).  On failure neither grows.
 */
static int
canon_run(struct canon *c, const char *p, size_t n, unsigned flags,
    struct buf *out, struct buf *text)
{
	size_t len = out != NULL ? out->len : 0;
	size_t tlen = text != NULL ? text->len : 0;

	c->flags = flags;
	c->nord = 0;
	if (read_nodes(c, p, n) == -1 || c->nnodes == 0)
		goto fail;
	c->text = 0;
	if (out != NULL && write_node(c, 0, out) == -1)
		goto fail;
	c->text = 1;
	if (text != NULL && write_node(c, 0, text) == -1)
		goto fail;
	return 0;
fail:
	if (c->nnodes == 0)
		errno = EINVAL;
	if (out != NULL)
		out->len = len;
	if (text != NULL)
		text->len = tlen;
	return -1;
}

int
canon_value(struct canon *c, const char *p, size_t n, unsigned flags,
    struct buf *out)
{
	return canon_run(c, p, n, flags, out, NULL);
}

int
canon_text(struct canon *c, const char *p, size_t n, unsigned flags,
    struct buf *out)
{
	return canon_run(c, p, n, flags, NULL, out);
}

int
canon_value_text(struct canon *c, const char *p, size_t n, unsigned flags,
    struct buf *out, struct buf *text)
{
	return canon_run(c, p, n, flags, out, text);
}
