#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "promtext.h"

static int
name_start(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
	    c == ':';
}

static int
name_char(char c)
{
	return name_start(c) || (c >= '0' && c <= '9');
}

static size_t
skip_blank(const char *p, size_t i, size_t n)
{
	while (i < n && (p[i] == ' ' || p[i] == '\t'))
		i++;
	return i;
}

/* Parse a float as the format allows: Go's ParseFloat, NaN, +Inf, -Inf. */
static int
parse_value(const char *p, size_t n, double *v)
{
	char tmp[64];
	char *end;

	if (n == 0 || n >= sizeof(tmp))
		return -1;
	memcpy(tmp, p, n);
	tmp[n] = '\0';
	if (strcmp(tmp, "NaN") == 0) {
		*v = NAN;
		return 0;
	}
	if (strcmp(tmp, "+Inf") == 0 || strcmp(tmp, "Inf") == 0) {
		*v = INFINITY;
		return 0;
	}
	if (strcmp(tmp, "-Inf") == 0) {
		*v = -INFINITY;
		return 0;
	}
	/* strtod also takes "inf", "nan", hex and spaces: refuse those */
	if (strspn(tmp, "0123456789+-.eE") != n)
		return -1;
	errno = 0;
	*v = strtod(tmp, &end);
	if (end != tmp + n || errno == ERANGE)
		return -1;
	return 0;
}

int
prom_parse_sample(const char *p, size_t n, struct prom_sample *s)
{
	size_t i = 0, start;
	int64_t ts;

	memset(s, 0, sizeof(*s));
	s->labels = "";
	if (n == 0 || !name_start(p[0]))
		return -1;
	while (i < n && name_char(p[i]))
		i++;
	s->name = p;
	s->namelen = i;
	if (i < n && p[i] == '{') {
		start = ++i;
		for (;;) {
			i = skip_blank(p, i, n);
			if (i < n && p[i] == '}')
				break;
			if (i >= n || !name_start(p[i]))
				return -1;
			while (i < n && name_char(p[i]))
				i++;
			i = skip_blank(p, i, n);
			if (i >= n || p[i] != '=')
				return -1;
			i = skip_blank(p, i + 1, n);
			if (i >= n || p[i] != '"')
				return -1;
			for (i++; i < n && p[i] != '"'; i++) {
				if (p[i] == '\\') {
					if (i + 1 >= n || (p[i + 1] != '\\' &&
					    p[i + 1] != '"' && p[i + 1] != 'n'))
						return -1;
					i++;
				} else if (p[i] == '\n')
					return -1;
			}
			if (i >= n)
				return -1;
			i = skip_blank(p, i + 1, n);
			if (i < n && p[i] == ',') {
				i++;
				continue;
			}
			if (i < n && p[i] == '}')
				break;
			return -1;
		}
		s->labels = p + start;
		s->labelslen = i - start;
		i++;
	}
	if (i >= n || (p[i] != ' ' && p[i] != '\t'))
		return -1;
	i = skip_blank(p, i, n);
	start = i;
	while (i < n && p[i] != ' ' && p[i] != '\t')
		i++;
	if (parse_value(p + start, i - start, &s->value) == -1)
		return -1;
	i = skip_blank(p, i, n);
	if (i == n)
		return 0;
	/* a timestamp: an integer, milliseconds */
	start = i;
	if (p[i] == '-')
		i++;
	ts = 0;
	while (i < n && p[i] >= '0' && p[i] <= '9') {
		ts = ts * 10 + (p[i] - '0');
		if (ts > INT64_MAX / 10)
			return -1;
		i++;
	}
	if (i == start || (p[start] == '-' && i == start + 1))
		return -1;
	return skip_blank(p, i, n) == n ? 0 : -1;
}

int
prom_label(const struct prom_sample *s, const char *key, char *buf, size_t n)
{
	const char *p = s->labels;
	size_t len = s->labelslen, i = 0, k, klen = strlen(key), o;
	int match;

	while (i < len) {
		i = skip_blank(p, i, len);
		k = i;
		while (i < len && name_char(p[i]))
			i++;
		match = i - k == klen && memcmp(p + k, key, klen) == 0;
		i = skip_blank(p, i, len);
		i = skip_blank(p, i + 1, len);	/* '=' */
		i++;				/* '"' */
		o = 0;
		for (; i < len && p[i] != '"'; i++) {
			char c = p[i];
			if (c == '\\' && i + 1 < len) {
				c = p[++i] == 'n' ? '\n' : p[i];
			}
			if (match) {
				if (o + 1 >= n)
					return -1;
				buf[o++] = c;
			}
		}
		if (match) {
			buf[o] = '\0';
			return 0;
		}
		i = skip_blank(p, i + 1, len);
		if (i < len && p[i] == ',')
			i++;
	}
	return -1;
}

void
prom_each_sample(const char *text, size_t n,
    int (*fn)(const struct prom_sample *s, void *arg), void *arg)
{
	struct prom_sample s;
	size_t i = 0, end;

	while (i < n) {
		const char *nl = memchr(text + i, '\n', n - i);
		end = nl != NULL ? (size_t)(nl - text) : n;
		if (text[i] != '#' &&
		    prom_parse_sample(text + i, end - i, &s) == 0 &&
		    fn(&s, arg) != 0)
			return;
		i = end + 1;
	}
}

/* --- merging -------------------------------------------------------------- */

struct family {
	char *name;
	char *help;		/* the whole line, or NULL */
	char *type;		/* the type word, or NULL (untyped) */
	struct buf samples;
	struct buf keys;	/* "\n" + each series key + "\n" */
};

struct merge {
	struct family *f;
	size_t n, cap;
};

static struct family *
family_get(struct merge *m, const char *name, size_t n)
{
	struct family *f;
	size_t i;

	for (i = 0; i < m->n; i++)
		if (strlen(m->f[i].name) == n && memcmp(m->f[i].name, name, n) == 0)
			return &m->f[i];
	if (m->n == m->cap) {
		size_t cap = m->cap ? m->cap * 2 : 32;
		struct family *nf = realloc(m->f, cap * sizeof(*nf));
		if (nf == NULL)
			return NULL;
		m->f = nf;
		m->cap = cap;
	}
	f = &m->f[m->n];
	memset(f, 0, sizeof(*f));
	if ((f->name = strndup(name, n)) == NULL)
		return NULL;
	m->n++;
	return f;
}

/* Whether a sample named s (n bytes) belongs to family f. */
static int
belongs(const struct family *f, const char *s, size_t n)
{
	static const char *const suffix[] = {
		"_bucket", "_sum", "_count", "_total", "_created", "_info"
	};
	size_t fl = strlen(f->name), i;

	if (n == fl && memcmp(s, f->name, n) == 0)
		return 1;
	if (n <= fl || memcmp(s, f->name, fl) != 0)
		return 0;
	for (i = 0; i < sizeof(suffix) / sizeof(suffix[0]); i++)
		if (strlen(suffix[i]) == n - fl &&
		    memcmp(s + fl, suffix[i], n - fl) == 0)
			return 1;
	return 0;
}

/* Add a sample line to f unless its series is there already. */
static int
add_sample(struct family *f, const char *line, size_t n,
    const struct prom_sample *s)
{
	struct buf key = BUF_INIT;
	size_t i;
	int rc = 0;

	if (buf_putc(&key, '\n') == -1 || buf_append(&key, s->name,
	    s->namelen) == -1 || buf_putc(&key, '{') == -1)
		goto fail;
	for (i = 0; i < s->labelslen; i++)
		if (s->labels[i] != ' ' && s->labels[i] != '\t' &&
		    buf_putc(&key, s->labels[i]) == -1)
			goto fail;
	if (buf_append(&key, "}\n", 2) == -1 || buf_cstr(&key) == NULL)
		goto fail;
	if (f->keys.len > 0 && memmem(f->keys.data, f->keys.len, key.data,
	    key.len) != NULL)
		goto out;
	if (buf_append(&f->keys, key.data + (f->keys.len > 0 ? 1 : 0),
	    key.len - (f->keys.len > 0 ? 1 : 0)) == -1 ||
	    buf_append(&f->samples, line, n) == -1 ||
	    buf_putc(&f->samples, '\n') == -1)
		goto fail;
	goto out;
fail:
	rc = -1;
out:
	buf_release(&key);
	return rc;
}

static int
merge_text(struct merge *m, const char *text, size_t n)
{
	struct family *cur = NULL, *f;
	struct prom_sample s;
	size_t i = 0, end, j, k;
	int skip = 0;

	while (i < n) {
		const char *nl = memchr(text + i, '\n', n - i);
		const char *line = text + i;
		size_t len;

		end = nl != NULL ? (size_t)(nl - text) : n;
		len = end - i;
		i = end + 1;
		if (len > 0 && line[len - 1] == '\r')
			len--;
		if (len == 0)
			continue;
		if (line[0] == '#') {
			int help = len > 7 && memcmp(line, "# HELP ", 7) == 0;
			int type = len > 7 && memcmp(line, "# TYPE ", 7) == 0;
			if (!help && !type)
				continue;
			for (j = 7; j < len && name_char(line[j]); j++)
				;
			if (j == 7 || !name_start(line[7]))
				continue;
			if ((f = family_get(m, line + 7, j - 7)) == NULL)
				return -1;
			if (help) {
				if (f->help == NULL &&
				    (f->help = strndup(line, len)) == NULL)
					return -1;
				continue;
			}
			k = skip_blank(line, j, len);
			if (f->type == NULL && f->samples.len == 0) {
				if ((f->type = strndup(line + k, len - k)) == NULL)
					return -1;
				skip = 0;
			} else
				skip = f->type == NULL || strlen(f->type) !=
				    len - k || memcmp(f->type, line + k, len - k) != 0;
			cur = f;
			continue;
		}
		if (prom_parse_sample(line, len, &s) == -1)
			continue;
		if (cur != NULL && belongs(cur, s.name, s.namelen)) {
			if (skip)
				continue;
			f = cur;
		} else {
			if ((f = family_get(m, s.name, s.namelen)) == NULL)
				return -1;
			if (f->type != NULL && strcmp(f->type, "untyped") != 0)
				continue;	/* typed elsewhere: it would clash */
		}
		if (add_sample(f, line, len, &s) == -1)
			return -1;
	}
	return 0;
}

int
prom_merge(const char *const *text, const size_t *len, size_t n,
    struct buf *out)
{
	struct merge m = { NULL, 0, 0 };
	size_t i;
	int rc = 0;

	for (i = 0; i < n && rc == 0; i++)
		rc = merge_text(&m, text[i], len[i]);
	for (i = 0; i < m.n && rc == 0; i++) {
		struct family *f = &m.f[i];
		if (f->samples.len == 0)
			continue;
		if (f->help != NULL)
			rc |= buf_printf(out, "%s\n", f->help);
		if (f->type != NULL)
			rc |= buf_printf(out, "# TYPE %s %s\n", f->name, f->type);
		rc |= buf_append(out, f->samples.data, f->samples.len);
	}
	for (i = 0; i < m.n; i++) {
		free(m.f[i].name);
		free(m.f[i].help);
		free(m.f[i].type);
		buf_release(&m.f[i].samples);
		buf_release(&m.f[i].keys);
	}
	free(m.f);
	return rc != 0 ? -1 : 0;
}
