/*
 * The dedup key (lib/dedup/dedupkey.c: key paths, normalization, canonical
 * value, SHA-256) against a reference built on jansson, differentially.
 * The input is a flags byte (its low three bits: CANON_TRIM, LOWER,
 * SPACE), a key path list up to the first newline (empty: the canonical
 * record), then a record.  Properties, for every record json_scan_record
 * accepts:
 * - dedupkey_digest succeeds, and gives the same digest with the --near
 *   text computed from the same reading as without it; the text is
 *   canon_text's;
 * - when jansson holds every number of the record exactly (integers
 *   within int64) and every name without NUL, the digest is the SHA-256
 *   of the key bytes the reference writes from jansson's tree: members
 *   sorted by the bytes of their names, the last of a repeated name
 *   winning (as jansson keeps it), strings with the minimal escapes,
 *   normalized with glibc's towlower (C.UTF-8; the simple lower-case
 *   mapping) and the White_Space list of lib/format/canon.h, and for each path
 *   its value or 0x01, each followed by a newline;
 * - jansson's re-spelling of the record with every non-ASCII character
 *   escaped (\uXXXX, surrogate pairs) and '/' as \/ has the same digest.
 */
#include <jansson.h>
#include <locale.h>
#include <openssl/sha.h>
#include <string.h>
#include <wctype.h>

#include "base/buf.h"
#include "dedup/dedupkey.h"
#include "format/canon.h"
#include "format/json.h"
#include "format/keypath.h"
#include "fuzz.h"

static struct dedupkey dk;
static struct canon *cn;

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	if (setlocale(LC_CTYPE, "C.UTF-8") == NULL || dedupkey_init(&dk) == -1 ||
	    (cn = canon_new()) == NULL)
		abort();
	return 0;
}

/* --- the reference -------------------------------------------------------- */

static int
white(uint32_t c)
{
	return (c >= 0x09 && c <= 0x0D) || c == 0x20 || c == 0x85 ||
	    c == 0xA0 || c == 0x1680 || (c >= 0x2000 && c <= 0x200A) ||
	    c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F ||
	    c == 0x3000;
}

/* Decode valid UTF-8 s[0..n) into code points (caller frees). */
static uint32_t *
decode(const char *s, size_t n, size_t *count)
{
	const unsigned char *p = (const unsigned char *)s, *end = p + n;
	uint32_t *v = malloc((n + 1) * sizeof(*v));
	size_t k = 0;

	if (v == NULL)
		abort();
	while (p < end) {
		uint32_t c = *p++;
		int more = c >= 0xF0 ? 3 : c >= 0xE0 ? 2 : c >= 0xC0 ? 1 : 0;
		if (more)
			c &= 0x3F >> more;
		while (more-- > 0 && p < end)
			c = c << 6 | (*p++ & 0x3F);
		v[k++] = c;
	}
	*count = k;
	return v;
}

static void
put_cp(struct buf *b, uint32_t c)
{
	char o[4];

	if (c < 0x80) {
		buf_putc(b, (char)c);
		return;
	}
	if (c < 0x800) {
		o[0] = (char)(0xC0 | c >> 6);
		o[1] = (char)(0x80 | (c & 0x3F));
		buf_append(b, o, 2);
	} else if (c < 0x10000) {
		o[0] = (char)(0xE0 | c >> 12);
		o[1] = (char)(0x80 | ((c >> 6) & 0x3F));
		o[2] = (char)(0x80 | (c & 0x3F));
		buf_append(b, o, 3);
	} else {
		o[0] = (char)(0xF0 | c >> 18);
		o[1] = (char)(0x80 | ((c >> 12) & 0x3F));
		o[2] = (char)(0x80 | ((c >> 6) & 0x3F));
		o[3] = (char)(0x80 | (c & 0x3F));
		buf_append(b, o, 4);
	}
}

/* A string, normalized with flags, quoted and minimally escaped. */
static void
ref_string(struct buf *b, const char *s, size_t n, unsigned flags)
{
	size_t k, i, lo = 0, hi;
	uint32_t *v = decode(s, n, &k);
	int run = 0;

	hi = k;
	if (flags & CANON_TRIM) {
		while (lo < hi && white(v[lo]))
			lo++;
		while (hi > lo && white(v[hi - 1]))
			hi--;
	}
	buf_putc(b, '"');
	for (i = lo; i < hi; i++) {
		uint32_t c = v[i];
		if ((flags & CANON_SPACE) && white(c)) {
			if (!run)
				buf_putc(b, ' ');
			run = 1;
			continue;
		}
		run = 0;
		if (flags & CANON_LOWER)
			c = (uint32_t)towlower((wint_t)c);
		switch (c) {
		case '"': buf_append(b, "\\\"", 2); break;
		case '\\': buf_append(b, "\\\\", 2); break;
		case '\b': buf_append(b, "\\b", 2); break;
		case '\f': buf_append(b, "\\f", 2); break;
		case '\n': buf_append(b, "\\n", 2); break;
		case '\r': buf_append(b, "\\r", 2); break;
		case '\t': buf_append(b, "\\t", 2); break;
		default:
			if (c < 0x20)
				buf_printf(b, "\\u%04x", (unsigned)c);
			else
				put_cp(b, c);
		}
	}
	buf_putc(b, '"');
	free(v);
}

static int
name_cmp(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The canonical form of j, or -1 when the reference cannot tell (a real,
 * an integer jansson could not hold, a name with NUL). */
static int
ref_value(struct buf *b, json_t *j, unsigned flags)
{
	size_t i, n;
	const char **names;
	const char *k;
	json_t *v;

	switch (json_typeof(j)) {
	case JSON_OBJECT:
		n = json_object_size(j);
		if ((names = malloc((n + 1) * sizeof(*names))) == NULL)
			abort();
		i = 0;
		json_object_foreach(j, k, v)
			names[i++] = k;
		/* strcmp on UTF-8 is byte order, the canonical one */
		qsort(names, n, sizeof(*names), name_cmp);
		buf_putc(b, '{');
		for (i = 0; i < n; i++) {
			if (i > 0)
				buf_putc(b, ',');
			ref_string(b, names[i], strlen(names[i]), 0);
			buf_putc(b, ':');
			if (ref_value(b, json_object_get(j, names[i]), flags) == -1) {
				free(names);
				return -1;
			}
		}
		free(names);
		buf_putc(b, '}');
		return 0;
	case JSON_ARRAY:
		buf_putc(b, '[');
		json_array_foreach(j, i, v) {
			if (i > 0)
				buf_putc(b, ',');
			if (ref_value(b, v, flags) == -1)
				return -1;
		}
		buf_putc(b, ']');
		return 0;
	case JSON_STRING:
		ref_string(b, json_string_value(j), json_string_length(j), flags);
		return 0;
	case JSON_INTEGER:
		buf_printf(b, "%lld", (long long)json_integer_value(j));
		return 0;
	case JSON_TRUE:
		buf_printf(b, "true");
		return 0;
	case JSON_FALSE:
		buf_printf(b, "false");
		return 0;
	case JSON_NULL:
		buf_printf(b, "null");
		return 0;
	default:
		return -1;	/* a real: not exact in jansson */
	}
}

/* The value at path kp in j, or NULL when absent. */
static json_t *
ref_get(json_t *j, const struct keypath *kp)
{
	size_t i;

	for (i = 0; i < kp->n && j != NULL; i++) {
		const struct keypath_step *st = &kp->steps[i];
		if (st->type == KEYPATH_NAME)
			j = json_is_object(j) ? json_object_getn(j, st->name,
			    st->len) : NULL;
		else if (!json_is_array(j))
			j = NULL;
		else {
			long long k = st->index;
			if (k < 0)
				k += (long long)json_array_size(j);
			j = k < 0 ? NULL : json_array_get(j, (size_t)k);
		}
	}
	return j;
}

/* The key bytes by the reference, or -1 when it cannot tell. */
static int
ref_key(struct buf *b, json_t *j, const struct dedupkey_def *def)
{
	size_t i;

	if (def->mode == DEDUPKEY_CANON)
		return ref_value(b, j, def->norm);
	for (i = 0; i < def->paths.n; i++) {
		json_t *v = ref_get(j, &def->paths.v[i]);
		if (v == NULL)
			buf_putc(b, '\x01');
		else if (ref_value(b, v, def->norm) == -1)
			return -1;
		buf_putc(b, '\n');
	}
	return 0;
}

/* --- the properties ------------------------------------------------------- */

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct dedupkey_def def;
	unsigned char d[DEDUPKEY_DIGEST], d2[DEDUPKEY_DIGEST], want[32];
	struct buf text = BUF_INIT, text2 = BUF_INIT, ref = BUF_INIT;
	const char *p, *nl;
	char *spec;
	struct error e;
	json_error_t je;
	json_t *j;
	size_t n, i;

	if (size < 1)
		return 0;
	memset(&def, 0, sizeof(def));
	def.norm = data[0] & (CANON_TRIM | CANON_LOWER | CANON_SPACE);
	p = (const char *)data + 1;
	n = size - 1;
	if ((nl = memchr(p, '\n', n)) == NULL)
		return 0;
	spec = fuzz_strndup((const uint8_t *)p, (size_t)(nl - p));
	def.mode = DEDUPKEY_CANON;
	if (*spec != '\0') {
		if (strlen(spec) != (size_t)(nl - p) ||
		    keypath_parse(spec, &def.paths, &e) == -1) {
			free(spec);
			return 0;
		}
		def.mode = DEDUPKEY_PATHS;
	}
	free(spec);
	n -= (size_t)(nl + 1 - p);
	p = nl + 1;
	if (json_scan_record(p, n, NULL) != 0)
		goto out;

	FUZZ_CHECK(dedupkey_digest(&dk, &def, p, n, d, NULL) == 0);
	FUZZ_CHECK(dedupkey_digest(&dk, &def, p, n, d2, &text) == 0);
	FUZZ_CHECK(memcmp(d, d2, sizeof(d)) == 0);
	if (def.mode == DEDUPKEY_CANON)
		FUZZ_CHECK(canon_text(cn, p, n, def.norm, &text2) == 0);
	else
		for (i = 0; i < def.paths.n; i++) {
			const char *vp;
			size_t vn;
			if (keypath_get(&def.paths.v[i], p, n, &vp, &vn))
				FUZZ_CHECK(canon_text(cn, vp, vn, def.norm,
				    &text2) == 0);
		}
	FUZZ_CHECK(text.len == text2.len && (text.len == 0 ||
	    memcmp(text.data, text2.data, text.len) == 0));

	j = json_loadb(p, n, JSON_DECODE_ANY | JSON_ALLOW_NUL, &je);
	if (j == NULL)
		goto out;
	if (ref_key(&ref, j, &def) == 0) {
		char *again;
		SHA256((const unsigned char *)ref.data, ref.len, want);
		if (memcmp(want, d, sizeof(d)) != 0)
			fprintf(stderr, "dedupkey: reference key %.*s\n",
			    (int)ref.len, ref.data);
		FUZZ_CHECK(memcmp(want, d, sizeof(d)) == 0);
		/* another spelling of the same record, the same digest */
		again = json_dumps(j, JSON_COMPACT | JSON_ENSURE_ASCII |
		    JSON_ESCAPE_SLASH | JSON_ENCODE_ANY);
		if (again != NULL) {
			FUZZ_CHECK(json_scan_record(again, strlen(again),
			    NULL) == 0);
			FUZZ_CHECK(dedupkey_digest(&dk, &def, again,
			    strlen(again), d2, NULL) == 0);
			FUZZ_CHECK(memcmp(d, d2, sizeof(d)) == 0);
			free(again);
		}
	}
	json_decref(j);
out:
	dedupkey_def_release(&def);
	buf_release(&text);
	buf_release(&text2);
	buf_release(&ref);
	return 0;
}
