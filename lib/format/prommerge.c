#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "prommerge.h"
#include "promtext.h"

enum ptype { T_UNTYPED, T_COUNTER, T_GAUGE, T_HISTOGRAM, T_SUMMARY };

static const char *const type_names[] = {
	"untyped", "counter", "gauge", "histogram", "summary"
};

/* A family of the output. */
struct family {
	char *name;
	char *help;		/* the HELP text as written, or NULL */
	char *source;		/* where it first came from */
	enum ptype type;
	int closed;		/* owned by a closed text */
	struct buf samples;
};

/* The series of the output: "name\0k=v,...\0" keys in a hash table. */
struct keyset {
	size_t *slot;		/* offset + 1 into store, 0 empty */
	size_t cap, n;
	struct buf store;
};

struct prommerge {
	struct family *f;
	size_t n, cap;
	struct keyset keys;
};

/* --- names and text ---------------------------------------------------------- */

static int
name_start(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

static int
name_char(char c)
{
	return name_start(c) || (c >= '0' && c <= '9');
}

/* A metric name: [a-zA-Z_:][a-zA-Z0-9_:]* */
static size_t
metric_name_len(const char *p, size_t n)
{
	size_t i = 0;

	if (n == 0 || !(name_start(p[0]) || p[0] == ':'))
		return 0;
	while (i < n && (name_char(p[i]) || p[i] == ':'))
		i++;
	return i;
}

/* Valid UTF-8 (no overlong forms, no surrogates, at most U+10FFFF). */
static int
utf8_valid(const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0, k, len;
	uint32_t c;

	while (i < n) {
		if (p[i] < 0x80) {
			i++;
			continue;
		}
		if (p[i] >= 0xc2 && p[i] <= 0xdf) {
			len = 2;
			c = p[i] & 0x1f;
		} else if (p[i] >= 0xe0 && p[i] <= 0xef) {
			len = 3;
			c = p[i] & 0x0f;
		} else if (p[i] >= 0xf0 && p[i] <= 0xf4) {
			len = 4;
			c = p[i] & 0x07;
		} else
			return 0;
		if (i + len > n)
			return 0;
		for (k = 1; k < len; k++) {
			if ((p[i + k] & 0xc0) != 0x80)
				return 0;
			c = (c << 6) | (p[i + k] & 0x3f);
		}
		if ((len == 3 && c < 0x800) || (len == 4 && (c < 0x10000 ||
		    c > 0x10ffff)) || (c >= 0xd800 && c <= 0xdfff))
			return 0;
		i += len;
	}
	return 1;
}

/* HELP text: UTF-8, escapes only \\ and \n. */
static int
help_valid(const char *p, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (p[i] == '\0')
			return 0;
		else if (p[i] == '\\') {
			if (i + 1 >= n || (p[i + 1] != '\\' && p[i + 1] != 'n'))
				return 0;
			i++;
		}
	return utf8_valid(p, n);
}

static int
ends_with(const char *s, size_t n, const char *suffix)
{
	size_t k = strlen(suffix);

	return n >= k && memcmp(s + n - k, suffix, k) == 0;
}

/* Whether word (lower case) is a "_word_" part or the "_word" end of the
 * lower-cased name. */
static int
has_part(const char *lname, const char *word)
{
	size_t k = strlen(word);
	const char *p;

	for (p = strchr(lname, '_'); p != NULL; p = strchr(p + 1, '_'))
		if (strncmp(p + 1, word, k) == 0 && (p[1 + k] == '_' ||
		    p[1 + k] == '\0'))
			return 1;
	return 0;
}

/* promtool's linter on a family's name and type (NULL: none refused). */
static const char *
lint_name(const char *name, enum ptype t)
{
	static const char *const base[] = { "amperes", "bytes", "celsius",
	    "grams", "joules", "kelvin", "meters", "metres", "seconds",
	    "volts", NULL };
	static const char *const other[] = { "minutes", "hours", "days",
	    "weeks", "kelvins", "fahrenheit", "rankine", "inches", "yards",
	    "miles", "bits", "calories", "pounds", "ounces", NULL };
	static const char *const prefix[] = { "pico", "nano", "micro",
	    "milli", "centi", "deci", "deca", "hecto", "kilo", "kibi", "mega",
	    "mibi", "giga", "gibi", "tera", "tebi", "peta", "pebi", NULL };
	static const char *const abbrev[] = { "s", "ms", "us", "ns", "sec",
	    "b", "kb", "mb", "gb", "tb", "pb", "m", "h", "d", NULL };
	static const char *const types[] = { "counter", "gauge", "histogram",
	    "summary", "gauge_histogram", NULL };
	char lname[256], part[256];
	size_t n = strlen(name), i, j, k, p;

	if (n >= sizeof(lname))
		return "metric name too long";
	for (i = 0; i < n; i++) {
		lname[i] = (char)(name[i] >= 'A' && name[i] <= 'Z' ?
		    name[i] - 'A' + 'a' : name[i]);
		if (i > 0 && name[i - 1] >= 'a' && name[i - 1] <= 'z' &&
		    name[i] >= 'A' && name[i] <= 'Z')
			return "metric name in camelCase";
	}
	lname[n] = '\0';
	if (strchr(name, ':') != NULL)
		return "metric name with ':'";
	if (t == T_COUNTER && !ends_with(name, n, "_total"))
		return "counter without the _total suffix";
	if (t != T_COUNTER && t != T_UNTYPED && ends_with(name, n, "_total"))
		return "_total suffix on a non-counter";
	if (t != T_UNTYPED && t != T_HISTOGRAM && ends_with(name, n, "_bucket"))
		return "_bucket suffix on a non-histogram";
	if (t != T_UNTYPED && t != T_HISTOGRAM && t != T_SUMMARY &&
	    (ends_with(name, n, "_count") || ends_with(name, n, "_sum")))
		return "_count or _sum suffix on a non-histogram";
	for (i = 0; types[i] != NULL; i++)
		if (has_part(lname, types[i]))
			return "metric type in the metric name";
	for (i = 0; abbrev[i] != NULL; i++)
		if (has_part(lname, abbrev[i]))
			return "abbreviated unit in the metric name";
	/* the first unit word decides, as promtool's does */
	for (i = 0; i <= n; i = j + 1) {
		for (j = i; j < n && name[j] != '_'; j++)
			;
		memcpy(part, name + i, j - i);
		part[j - i] = '\0';
		for (k = 0; base[k] != NULL; k++)
			if (strcmp(part, base[k]) == 0)
				return NULL;
		for (k = 0; other[k] != NULL; k++)
			if (strcmp(part, other[k]) == 0)
				return "non-base unit in the metric name";
		for (p = 0; prefix[p] != NULL; p++) {
			size_t pl = strlen(prefix[p]);
			if (strncmp(part, prefix[p], pl) != 0)
				continue;
			for (k = 0; base[k] != NULL; k++)
				if (strcmp(part + pl, base[k]) == 0)
					return "non-base unit in the metric name";
			for (k = 0; other[k] != NULL; k++)
				if (strcmp(part + pl, other[k]) == 0)
					return "non-base unit in the metric name";
		}
	}
	return NULL;
}

/* --- labels ------------------------------------------------------------------ */

struct label {
	const char *name, *value;	/* value: raw, escaped */
	size_t namelen, valuelen;
};

#define MAX_LABELS	64

/* Split a parsed sample's labels (promtext checked their syntax). */
static int
labels_split(const struct prom_sample *s, struct label *l, size_t *nl)
{
	const char *p = s->labels;
	size_t n = s->labelslen, i = 0, k = 0;

	for (;;) {
		while (i < n && (p[i] == ' ' || p[i] == '\t' || p[i] == ','))
			i++;
		if (i >= n)
			break;
		if (k == MAX_LABELS)
			return -1;
		l[k].name = p + i;
		while (i < n && name_char(p[i]))
			i++;
		l[k].namelen = (size_t)(p + i - l[k].name);
		while (i < n && p[i] != '"')
			i++;
		l[k].value = p + ++i;
		while (i < n && p[i] != '"')
			i += p[i] == '\\' ? 2 : 1;
		l[k].valuelen = (size_t)(p + i - l[k].value);
		i++;
		k++;
	}
	*nl = k;
	return 0;
}

static int
label_is(const struct label *l, const char *name)
{
	return l->namelen == strlen(name) && memcmp(l->name, name,
	    l->namelen) == 0;
}

static int
label_cmp(const void *a, const void *b)
{
	const struct label *x = a, *y = b;
	size_t n = x->namelen < y->namelen ? x->namelen : y->namelen;
	int c = memcmp(x->name, y->name, n);

	return c != 0 ? c : (x->namelen > y->namelen) - (x->namelen < y->namelen);
}

/* --- the series set ------------------------------------------------------ */

static uint64_t
hash(const char *p, size_t n)
{
	uint64_t h = 1469598103934665603ULL;
	size_t i;

	for (i = 0; i < n; i++) {
		h ^= (unsigned char)p[i];
		h *= 1099511628211ULL;
	}
	return h;
}

/* Whether key (n bytes) is in the set; added when add is nonzero.
 * 1 present, 0 not (added), -1 out of memory. */
static int
keyset_has(struct keyset *ks, const char *key, size_t n, int add)
{
	size_t i, j, off, *ns;

	if (add && (ks->n + 1) * 2 > ks->cap) {
		size_t cap = ks->cap ? ks->cap * 2 : 256;
		if ((ns = calloc(cap, sizeof(*ns))) == NULL)
			return -1;
		for (j = 0; j < ks->cap; j++) {
			const char *k2;
			size_t len;
			if (ks->slot[j] == 0)
				continue;
			k2 = ks->store.data + ks->slot[j] - 1;
			len = strlen(k2);
			len += strlen(k2 + len + 1) + 1;
			for (i = hash(k2, len) & (cap - 1); ns[i] != 0;
			    i = (i + 1) & (cap - 1))
				;
			ns[i] = ks->slot[j];
		}
		free(ks->slot);
		ks->slot = ns;
		ks->cap = cap;
	}
	if (ks->cap == 0)
		return 0;
	for (i = hash(key, n) & (ks->cap - 1); ks->slot[i] != 0;
	    i = (i + 1) & (ks->cap - 1)) {
		const char *k2 = ks->store.data + ks->slot[i] - 1;
		size_t len = strlen(k2);
		len += strlen(k2 + len + 1) + 1;
		if (len == n && memcmp(k2, key, n) == 0)
			return 1;
	}
	if (!add)
		return 0;
	off = ks->store.len;
	if (buf_append(&ks->store, key, n) == -1 ||
	    buf_putc(&ks->store, '\0') == -1)
		return -1;
	ks->slot[i] = off + 1;
	ks->n++;
	return 0;
}

/* The key of a sample: its name, NUL, its labels sorted by name. */
static int
series_key(const struct prom_sample *s, struct label *l, size_t nl,
    struct buf *key)
{
	size_t i;

	key->len = 0;
	qsort(l, nl, sizeof(*l), label_cmp);
	if (buf_append(key, s->name, s->namelen) == -1 ||
	    buf_putc(key, '\0') == -1)
		return -1;
	for (i = 0; i < nl; i++)
		if (buf_printf(key, "%.*s=\"%.*s\",", (int)l[i].namelen,
		    l[i].name, (int)l[i].valuelen, l[i].value) < 0)
			return -1;
	return 0;
}

/* --- one text ------------------------------------------------------------ */

enum { L_SKIP, L_HELP, L_TYPE, L_SAMPLE };

struct line {
	size_t no;
	const char *p;
	size_t len;
	int kind;
	size_t fam;		/* its family in the text */
	const char *reason;	/* why it is dropped, or NULL */
	struct prom_sample s;
};

/* A family as one text gives it. */
struct tfam {
	const char *name;
	size_t namelen;
	enum ptype type;
	int typed;		/* it has a TYPE line */
	int help;		/* it has a HELP line */
	size_t samples;
	int le, quantile, camel;	/* labels seen */
	const char *reason;	/* why the whole family is dropped */
};

struct text {
	struct line *l;
	size_t nl;
	struct tfam *f;
	size_t nf, capf;
};

static struct tfam *
tfam_find(struct text *t, const char *name, size_t n)
{
	size_t i;

	for (i = 0; i < t->nf; i++)
		if (t->f[i].namelen == n && memcmp(t->f[i].name, name, n) == 0)
			return &t->f[i];
	return NULL;
}

static struct tfam *
tfam_get(struct text *t, const char *name, size_t n)
{
	struct tfam *f, *nf;

	if ((f = tfam_find(t, name, n)) != NULL)
		return f;
	if (t->nf == t->capf) {
		size_t cap = t->capf ? t->capf * 2 : 16;
		if ((nf = realloc(t->f, cap * sizeof(*nf))) == NULL)
			return NULL;
		t->f = nf;
		t->capf = cap;
	}
	f = &t->f[t->nf++];
	memset(f, 0, sizeof(*f));
	f->name = name;
	f->namelen = n;
	return f;
}

/* Whether a sample named s (n bytes) is one of family f's. */
static int
belongs(const struct tfam *f, const char *s, size_t n)
{
	size_t fl = f->namelen;

	if (n < fl || memcmp(s, f->name, fl) != 0)
		return 0;
	switch (f->type) {
	case T_HISTOGRAM:
		return (n - fl == 7 && memcmp(s + fl, "_bucket", 7) == 0) ||
		    (n - fl == 4 && memcmp(s + fl, "_sum", 4) == 0) ||
		    (n - fl == 6 && memcmp(s + fl, "_count", 6) == 0);
	case T_SUMMARY:
		return n == fl ||
		    (n - fl == 4 && memcmp(s + fl, "_sum", 4) == 0) ||
		    (n - fl == 6 && memcmp(s + fl, "_count", 6) == 0);
	default:
		return n == fl;
	}
}

/* The family of a sample: the current one, one named by it, a histogram
 * or summary it is a part of, else a new untyped one. */
static struct tfam *
sample_family(struct text *t, size_t cur, const struct prom_sample *s)
{
	static const char *const suffix[] = { "_bucket", "_sum", "_count" };
	struct tfam *f;
	size_t i, k;

	if (cur != SIZE_MAX && belongs(&t->f[cur], s->name, s->namelen))
		return &t->f[cur];
	if ((f = tfam_find(t, s->name, s->namelen)) != NULL)
		return f;
	for (i = 0; i < 3; i++) {
		k = strlen(suffix[i]);
		if (s->namelen > k && memcmp(s->name + s->namelen - k,
		    suffix[i], k) == 0 && (f = tfam_find(t, s->name,
		    s->namelen - k)) != NULL && belongs(f, s->name, s->namelen))
			return f;
	}
	return tfam_get(t, s->name, s->namelen);
}

/* A number as the le and quantile labels must hold: decimal digits, sign,
 * point and exponent only (what every parser reads the same), or +Inf,
 * -Inf, NaN. */
static int
float_ok(const char *p, size_t n)
{
	char tmp[64];
	char *end;
	size_t i;

	if (n == 0 || n >= sizeof(tmp))
		return 0;
	memcpy(tmp, p, n);
	tmp[n] = '\0';
	if (strcmp(tmp, "+Inf") == 0 || strcmp(tmp, "-Inf") == 0 ||
	    strcmp(tmp, "NaN") == 0)
		return 1;
	for (i = 0; i < n; i++)
		if (strchr("0123456789+-.eE", tmp[i]) == NULL)
			return 0;
	(void)strtod(tmp, &end);
	return *end == '\0';
}

/* Line checks of a sample beyond its syntax. */
static const char *
sample_check(const struct prom_sample *s, struct tfam *f)
{
	struct label l[MAX_LABELS];
	size_t nl, i, j;
	int le = 0, q = 0;

	if (labels_split(s, l, &nl) == -1)
		return "too many labels";
	for (i = 0; i < nl; i++) {
		if (l[i].namelen >= 2 && l[i].name[0] == '_' &&
		    l[i].name[1] == '_')
			return "reserved label name";
		if (!utf8_valid(l[i].value, l[i].valuelen) ||
		    memchr(l[i].value, '\0', l[i].valuelen) != NULL)
			return "label value not UTF-8 text";
		for (j = 0; j < i; j++)
			if (l[j].namelen == l[i].namelen && memcmp(l[j].name,
			    l[i].name, l[i].namelen) == 0)
				return "duplicate label name";
		for (j = 1; j < l[i].namelen; j++)
			if (l[i].name[j - 1] >= 'a' && l[i].name[j - 1] <= 'z' &&
			    l[i].name[j] >= 'A' && l[i].name[j] <= 'Z')
				f->camel = 1;
		if (label_is(&l[i], "le")) {
			le = 1;
			if (!float_ok(l[i].value, l[i].valuelen))
				return "le label not a number";
		}
		if (label_is(&l[i], "quantile")) {
			q = 1;
			if (!float_ok(l[i].value, l[i].valuelen))
				return "quantile label not a number";
		}
	}
	f->le |= le;
	f->quantile |= q;
	if (f->type == T_HISTOGRAM && s->namelen == f->namelen + 7 && !le)
		return "histogram bucket without an le label";
	if (f->type == T_SUMMARY && s->namelen == f->namelen && !q)
		return "summary sample without a quantile label";
	if (f->type == T_COUNTER && s->value < 0)
		return "counter below zero";
	return NULL;
}

static enum ptype
type_parse(const char *p, size_t n, int *ok)
{
	size_t i;

	*ok = 1;
	for (i = 0; i < sizeof(type_names) / sizeof(type_names[0]); i++)
		if (strlen(type_names[i]) == n && memcmp(type_names[i], p, n) == 0)
			return (enum ptype)i;
	*ok = 0;
	return T_UNTYPED;
}

/* Read a text's lines and families, with the reasons to drop them. */
static int
text_read(struct text *t, const char *text, size_t n)
{
	size_t i = 0, no = 0, cur = SIZE_MAX, cap = 0, j, k;
	struct tfam *f;
	struct line *nl, *ln;

	while (i < n) {
		const char *e = memchr(text + i, '\n', n - i);
		size_t end = e != NULL ? (size_t)(e - text) : n;

		no++;
		if (t->nl == cap) {
			cap = cap ? cap * 2 : 64;
			if ((nl = realloc(t->l, cap * sizeof(*nl))) == NULL)
				return -1;
			t->l = nl;
		}
		ln = &t->l[t->nl++];
		memset(ln, 0, sizeof(*ln));
		ln->no = no;
		ln->p = text + i;
		ln->len = end - i;
		i = end + 1;
		if (ln->len > 0 && ln->p[ln->len - 1] == '\r')
			ln->len--;
		ln->kind = L_SKIP;
		for (j = 0; j < ln->len && (ln->p[j] == ' ' || ln->p[j] == '\t');
		    j++)
			;
		if (j == ln->len)
			continue;
		if (ln->p[0] == '#') {
			int help = ln->len > 7 && memcmp(ln->p, "# HELP ", 7) == 0;
			int type = ln->len > 7 && memcmp(ln->p, "# TYPE ", 7) == 0;
			int ok;
			if (!help && !type)
				continue;	/* a comment */
			ln->kind = help ? L_HELP : L_TYPE;
			if ((j = metric_name_len(ln->p + 7, ln->len - 7)) == 0 ||
			    (7 + j < ln->len && ln->p[7 + j] != ' ')) {
				ln->reason = "bad metric name";
				continue;
			}
			if ((f = tfam_get(t, ln->p + 7, j)) == NULL)
				return -1;
			ln->fam = (size_t)(f - t->f);
			cur = ln->fam;
			k = 7 + j + (7 + j < ln->len);
			if (help) {
				if (f->help)
					ln->reason = "second HELP line";
				else if (!help_valid(ln->p + k, ln->len - k))
					ln->reason = "bad HELP text";
				f->help = 1;
				continue;
			}
			f->type = type_parse(ln->p + k, ln->len - k, &ok);
			if (!ok)
				f->reason = "unknown type";
			else if (f->typed)
				f->reason = "second TYPE line";
			else if (f->samples > 0)
				f->reason = "TYPE line after the family's samples";
			f->typed = 1;
			continue;
		}
		ln->kind = L_SAMPLE;
		if (prom_parse_sample(ln->p, ln->len, &ln->s) == -1) {
			ln->reason = "not a valid sample line";
			continue;
		}
		if ((f = sample_family(t, cur, &ln->s)) == NULL)
			return -1;
		if (!belongs(f, ln->s.name, ln->s.namelen)) {
			ln->reason = "sample name does not fit its family's type";
			continue;
		}
		ln->fam = (size_t)(f - t->f);
		f->samples++;
		ln->reason = sample_check(&ln->s, f);
	}
	return 0;
}

/* --- the merger ------------------------------------------------------------ */

struct prommerge *
prommerge_new(void)
{
	return calloc(1, sizeof(struct prommerge));
}

static struct family *
family_find(struct prommerge *m, const char *name, size_t n)
{
	size_t i;

	for (i = 0; i < m->n; i++)
		if (strlen(m->f[i].name) == n && memcmp(m->f[i].name, name,
		    n) == 0)
			return &m->f[i];
	return NULL;
}

static struct family *
family_add(struct prommerge *m, const struct tfam *tf, const char *source,
    int closed)
{
	struct family *f, *nf;

	if (m->n == m->cap) {
		size_t cap = m->cap ? m->cap * 2 : 32;
		if ((nf = realloc(m->f, cap * sizeof(*nf))) == NULL)
			return NULL;
		m->f = nf;
		m->cap = cap;
	}
	f = &m->f[m->n];
	memset(f, 0, sizeof(*f));
	if ((f->name = strndup(tf->name, tf->namelen)) == NULL ||
	    (f->source = strdup(source != NULL ? source : "a file")) == NULL) {
		free(f->name);
		return NULL;
	}
	f->type = tf->type;
	f->closed = closed;
	m->n++;
	return f;
}

/*
 * Whether family tf would take the series of another family of the
 * output, or the reverse: a histogram h beside a family h_bucket, h_sum or
 * h_count, a summary s beside s_sum or s_count (a parser would read the
 * second as part of the first).
 */
static int
family_collides(struct prommerge *m, const struct tfam *tf)
{
	static const char *const suffix[] = { "_bucket", "_sum", "_count" };
	char name[300];
	struct family *f;
	size_t i, k;

	if (tf->namelen > 256)
		return 0;
	for (i = 0; i < 3; i++) {
		if (tf->type == T_HISTOGRAM || (tf->type == T_SUMMARY && i > 0)) {
			snprintf(name, sizeof(name), "%.*s%s", (int)tf->namelen,
			    tf->name, suffix[i]);
			if (family_find(m, name, strlen(name)) != NULL)
				return 1;
		}
		k = strlen(suffix[i]);
		if (tf->namelen > k && memcmp(tf->name + tf->namelen - k,
		    suffix[i], k) == 0 && (f = family_find(m, tf->name,
		    tf->namelen - k)) != NULL && (f->type == T_HISTOGRAM ||
		    (f->type == T_SUMMARY && i > 0)))
			return 1;
	}
	return 0;
}

/* Family-level reasons of tf, given what the output has (g, or NULL);
 * the names of a closed text are trusted. */
static const char *
family_check(struct prommerge *m, struct tfam *tf, const struct family *g,
    int closed)
{
	char name[256];

	if (tf->reason != NULL)
		return tf->reason;
	if (g != NULL && g->type != tf->type)
		return "type clashes with the one given first";
	if (g == NULL && family_collides(m, tf))
		return "name clashes with a histogram's or summary's series";
	if (closed)
		return NULL;
	if (tf->namelen >= sizeof(name))
		return "metric name too long";
	memcpy(name, tf->name, tf->namelen);
	name[tf->namelen] = '\0';
	if ((tf->reason = lint_name(name, tf->type)) != NULL)
		return tf->reason;
	if (tf->type != T_UNTYPED) {
		if (tf->le && tf->type != T_HISTOGRAM)
			return "le label outside a histogram";
		if (tf->quantile && tf->type != T_SUMMARY)
			return "quantile label outside a summary";
	}
	if (tf->camel)
		return "label name in camelCase";
	return NULL;
}

long
prommerge_add(struct prommerge *m, const char *text, size_t n,
    const char *source, int closed, prommerge_reject_fn *reject, void *arg)
{
	struct text t;
	size_t *gf = NULL;	/* the output's family of each, or SIZE_MAX */
	const char **why = NULL;
	struct buf key = BUF_INIT;
	struct label l[MAX_LABELS];
	long dropped = 0;
	size_t i, nl;
	int rc = -1, has;

	memset(&t, 0, sizeof(t));
	if (text_read(&t, text, n) == -1)
		goto out;
	if (t.nf > 0 && ((gf = calloc(t.nf, sizeof(*gf))) == NULL ||
	    (why = calloc(t.nf, sizeof(*why))) == NULL))
		goto out;
	/* the families, in the order they appear, against the output's */
	for (i = 0; i < t.nf; i++) {
		struct family *g = family_find(m, t.f[i].name, t.f[i].namelen);
		gf[i] = SIZE_MAX;
		if (g != NULL && g->closed && !closed) {
			why[i] = NULL;	/* superseded: left out, silently */
			continue;
		}
		why[i] = family_check(m, &t.f[i], g, closed);
		if (why[i] != NULL)
			continue;
		if (g == NULL && (g = family_add(m, &t.f[i], source,
		    closed)) == NULL)
			goto out;
		gf[i] = (size_t)(g - m->f);
	}
	for (i = 0; i < t.nl; i++) {
		struct line *ln = &t.l[i];
		struct family *g = NULL;
		const char *reason = ln->reason;
		if (ln->kind == L_SKIP)
			continue;
		if (reason == NULL) {
			if (why[ln->fam] != NULL)
				reason = why[ln->fam];
			else if (gf[ln->fam] == SIZE_MAX)
				continue;	/* superseded */
			else
				g = &m->f[gf[ln->fam]];
		}
		if (reason == NULL && ln->kind == L_HELP) {
			size_t k = 7 + strlen(g->name);
			k += k < ln->len;
			if (g->help == NULL && k < ln->len &&
			    (g->help = strndup(ln->p + k, ln->len - k)) == NULL)
				goto out;
			continue;
		}
		if (reason == NULL && ln->kind == L_TYPE)
			continue;
		if (reason == NULL) {
			if (labels_split(&ln->s, l, &nl) == -1 ||
			    series_key(&ln->s, l, nl, &key) == -1 ||
			    (has = keyset_has(&m->keys, key.data, key.len,
			    1)) == -1)
				goto out;
			if (has)
				reason = "duplicate series";
			else if (buf_append(&g->samples, ln->p, ln->len) == -1 ||
			    buf_putc(&g->samples, '\n') == -1)
				goto out;
		}
		if (reason != NULL) {
			dropped++;
			if (reject != NULL)
				reject(arg, ln->no, reason);
		}
	}
	rc = 0;
out:
	buf_release(&key);
	free(gf);
	free(why);
	free(t.l);
	free(t.f);
	return rc == 0 ? dropped : -1;
}

int
prommerge_write(const struct prommerge *m, struct buf *out)
{
	size_t i;
	int rc = 0;

	for (i = 0; i < m->n; i++) {
		const struct family *f = &m->f[i];
		if (f->samples.len == 0)
			continue;
		if (f->help != NULL)
			rc |= buf_printf(out, "# HELP %s %s\n", f->name, f->help);
		else
			rc |= buf_printf(out, "# HELP %s Read from %s.\n", f->name,
			    f->source);
		rc |= buf_printf(out, "# TYPE %s %s\n", f->name,
		    type_names[f->type]);
		rc |= buf_append(out, f->samples.data, f->samples.len);
	}
	return rc < 0 ? -1 : 0;
}

void
prommerge_free(struct prommerge *m)
{
	size_t i;

	if (m == NULL)
		return;
	for (i = 0; i < m->n; i++) {
		free(m->f[i].name);
		free(m->f[i].help);
		free(m->f[i].source);
		buf_release(&m->f[i].samples);
	}
	free(m->f);
	free(m->keys.slot);
	buf_release(&m->keys.store);
	free(m);
}
