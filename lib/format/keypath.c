#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/exitcode.h"
#include "canon.h"
#include "json.h"
#include "keypath.h"

/* --- parsing ------------------------------------------------------------- */

static int
is_name_start(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

static int
is_name_char(char c)
{
	return is_name_start(c) || (c >= '0' && c <= '9');
}

/*
 * Room for one more of the n items of size bytes in the array whose
 * pointer is at pp: it doubles when n is a power of two (or 0), so that
 * a long list of paths costs linear time to build.
 */
static int
grow(void *pp, size_t n, size_t size)
{
	void *p, *np;

	if (n != 0 && (n & (n - 1)) != 0)
		return 0;
	memcpy(&p, pp, sizeof(p));
	if ((np = realloc(p, (n ? 2 * n : 1) * size)) == NULL)
		return -1;
	memcpy(pp, &np, sizeof(np));
	return 0;
}

static int
step_add(struct keypath *kp, struct keypath_step *st)
{
	if (grow(&kp->steps, kp->n, sizeof(*kp->steps)) == -1)
		return -1;
	kp->steps[kp->n++] = *st;
	return 0;
}

static void
path_release(struct keypath *kp)
{
	size_t i;

	for (i = 0; i < kp->n; i++)
		free(kp->steps[i].name);
	free(kp->steps);
	kp->steps = NULL;
	kp->n = 0;
}

/*
 * Read the JSON string literal at s[*i] (a quote) into a new name; *i
 * moves past its closing quote.  Returns 0, or -1 with *why set.
 */
static int
read_string(const char *s, size_t *i, struct keypath_step *st,
    const char **why)
{
	struct buf b = BUF_INIT;
	size_t j = *i + 1;

	while (s[j] != '\0' && s[j] != '"')
		j += s[j] == '\\' && s[j + 1] != '\0' ? 2 : 1;
	if (s[j] != '"') {
		*why = "unterminated string";
		return -1;
	}
	if (json_scan_value(s + *i, j + 1 - *i, NULL) == -1) {
		*why = "invalid string";
		return -1;
	}
	if (canon_unescape(s + *i + 1, j - *i - 1, &b) == -1 ||
	    buf_putc(&b, '\0') == -1) {
		buf_release(&b);
		*why = "invalid string";
		return -1;
	}
	st->type = KEYPATH_NAME;
	st->name = b.data;
	st->len = b.len - 1;
	*i = j + 1;
	return 0;
}

/* Read "[...]" at s[*i]. */
static int
read_bracket(const char *s, size_t *i, struct keypath_step *st,
    const char **why)
{
	size_t j = *i + 1;
	int neg = 0;
	long long v = 0;

	if (s[j] == '"') {
		if (read_string(s, &j, st, why) == -1)
			return -1;
	} else {
		if (s[j] == '-') {
			neg = 1;
			j++;
		}
		if (!(s[j] >= '0' && s[j] <= '9')) {
			*i = j;
			*why = "expected an index or a string";
			return -1;
		}
		for (; s[j] >= '0' && s[j] <= '9'; j++) {
			if (v > (INT64_MAX - 9) / 10) {
				*i = j;
				*why = "index too large";
				return -1;
			}
			v = v * 10 + (s[j] - '0');
		}
		st->type = KEYPATH_INDEX;
		st->name = NULL;
		st->len = 0;
		st->index = neg ? -v : v;
	}
	if (s[j] != ']') {
		free(st->name);
		st->name = NULL;
		*i = j;
		*why = "expected ']'";
		return -1;
	}
	*i = j + 1;
	return 0;
}

int
keypath_parse(const char *s, struct keypath_list *l, struct error *e)
{
	const char *why = NULL;
	struct keypath kp = { NULL, 0 };
	struct keypath_step st;
	size_t i = 0;

	l->v = NULL;
	l->n = 0;
	for (;;) {
		if (s[i] != '.') {
			why = "expected '.'";
			goto fail;
		}
		i++;
		/* the first step may follow the leading dot directly */
		if (s[i] == '\0' || s[i] == ',')
			goto end_path;
		goto step;
	next:
		if (s[i] == '\0' || s[i] == ',')
			goto end_path;
		if (s[i] == '[')
			goto bracket;
		if (s[i] != '.') {
			why = "expected '.', '[', ',' or the end";
			goto fail;
		}
		i++;
	step:
		memset(&st, 0, sizeof(st));
		if (is_name_start(s[i])) {
			size_t j = i;
			while (is_name_char(s[j]))
				j++;
			if ((st.name = malloc(j - i + 1)) == NULL)
				goto nomem;
			memcpy(st.name, s + i, j - i);
			st.name[j - i] = '\0';
			st.type = KEYPATH_NAME;
			st.len = j - i;
			i = j;
		} else if (s[i] == '"') {
			if (read_string(s, &i, &st, &why) == -1)
				goto fail;
		} else if (s[i] == '[') {
			goto bracket;
		} else {
			why = "expected a name, a string or '['";
			goto fail;
		}
		if (step_add(&kp, &st) == -1) {
			free(st.name);
			goto nomem;
		}
		goto next;
	bracket:
		memset(&st, 0, sizeof(st));
		if (read_bracket(s, &i, &st, &why) == -1)
			goto fail;
		if (step_add(&kp, &st) == -1) {
			free(st.name);
			goto nomem;
		}
		goto next;
	end_path:
		if (grow(&l->v, l->n, sizeof(*l->v)) == -1)
			goto nomem;
		l->v[l->n++] = kp;
		kp.steps = NULL;
		kp.n = 0;
		if (s[i] == '\0')
			return 0;
		i++;		/* the comma */
	}
fail:
	path_release(&kp);
	keypath_list_release(l);
	return error_set(e, EXIT_USAGE, "%s: %s at character %zu", s, why,
	    i + 1);
nomem:
	path_release(&kp);
	keypath_list_release(l);
	return error_errno(e, EXIT_SOFTWARE, "key paths");
}

void
keypath_list_release(struct keypath_list *l)
{
	size_t i;

	if (l == NULL)
		return;
	for (i = 0; i < l->n; i++)
		path_release(&l->v[i]);
	free(l->v);
	l->v = NULL;
	l->n = 0;
}

int
keypath_list_str(const struct keypath_list *l, struct buf *out)
{
	size_t i, j, k;

	for (i = 0; i < l->n; i++) {
		const struct keypath *kp = &l->v[i];
		if (i > 0 && buf_putc(out, ',') == -1)
			return -1;
		if (kp->n == 0 && buf_putc(out, '.') == -1)
			return -1;
		for (j = 0; j < kp->n; j++) {
			const struct keypath_step *st = &kp->steps[j];
			int plain;
			if (st->type == KEYPATH_INDEX) {
				/* a path starts with a dot: ".[0]" */
				if (buf_printf(out, "%s[%lld]", j == 0 ? "." : "",
				    st->index) == -1)
					return -1;
				continue;
			}
			plain = st->len > 0 && is_name_start(st->name[0]);
			for (k = 1; plain && k < st->len; k++)
				plain = is_name_char(st->name[k]);
			if (buf_putc(out, '.') == -1)
				return -1;
			if (plain) {
				if (buf_append(out, st->name, st->len) == -1)
					return -1;
			} else if (buf_putc(out, '"') == -1 ||
			    buf_json_escape(out, st->name, st->len) == -1 ||
			    buf_putc(out, '"') == -1)
				return -1;
		}
	}
	return 0;
}

/* --- evaluation ---------------------------------------------------------- */

static const char *
skip_ws(const char *s, const char *end)
{
	while (s < end && (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r'))
		s++;
	return s;
}

/* The end of a string whose body starts at s (after its closing quote),
 * or NULL; *esc says whether the body holds escapes. */
static const char *
string_skip(const char *s, const char *end, int *esc)
{
	const char *q = json_string_end(s, end, esc);

	return q != NULL ? q + 1 : NULL;
}

/* The end of the value starting at s, or NULL. */
static const char *
value_skip(const char *s, const char *end)
{
	size_t depth = 0;
	int esc;

	if (s >= end)
		return NULL;
	if (*s == '"')
		return string_skip(s + 1, end, &esc);
	if (*s != '{' && *s != '[') {
		while (s < end && *s != ',' && *s != '}' && *s != ']' &&
		    *s != ' ' && *s != '\t' && *s != '\n' && *s != '\r')
			s++;
		return s;
	}
	while (s < end) {
		switch (*s) {
		case '"':
			if ((s = string_skip(s + 1, end, &esc)) == NULL)
				return NULL;
			continue;
		case '{': case '[':
			depth++;
			break;
		case '}': case ']':
			if (--depth == 0)
				return s + 1;
			break;
		}
		s++;
	}
	return NULL;
}

/* The member named st->name of the object at s (last one wins). */
static int
get_member(const struct keypath_step *st, const char *s, const char *end,
    const char **vs, const char **ve)
{
	int found = 0, esc;

	s = skip_ws(s + 1, end);
	if (s < end && *s == '}')
		return 0;
	while (s < end && *s == '"') {
		const char *k = s + 1, *ke, *v, *w;
		if ((ke = string_skip(k, end, &esc)) == NULL)
			return 0;
		s = skip_ws(ke, end);
		if (s >= end || *s != ':')
			return 0;
		v = skip_ws(s + 1, end);
		if ((w = value_skip(v, end)) == NULL)
			return 0;
		if (esc ? canon_unescape_equal(k, (size_t)(ke - 1 - k),
		    st->name, st->len) : ((size_t)(ke - 1 - k) == st->len &&
		    memcmp(k, st->name, st->len) == 0)) {
			*vs = v;
			*ve = w;
			found = 1;
		}
		s = skip_ws(w, end);
		if (s >= end || *s != ',')
			break;
		s = skip_ws(s + 1, end);
	}
	return found;
}

/* Count the elements of the array whose first element is at s. */
static long long
count_elements(const char *s, const char *end)
{
	long long n = 0;
	const char *w;

	while (s < end && (w = value_skip(s, end)) != NULL) {
		n++;
		s = skip_ws(w, end);
		if (s >= end || *s != ',')
			break;
		s = skip_ws(s + 1, end);
	}
	return n;
}

/* Element st->index of the array at s (negative: from the end). */
static int
get_element(const struct keypath_step *st, const char *s, const char *end,
    const char **vs, const char **ve)
{
	long long want = st->index, i;
	const char *w;

	s = skip_ws(s + 1, end);
	if (s < end && *s == ']')
		return 0;
	if (want < 0 && (want += count_elements(s, end)) < 0)
		return 0;
	for (i = 0; s < end; i++) {
		if ((w = value_skip(s, end)) == NULL)
			return 0;
		if (i == want) {
			*vs = s;
			*ve = w;
			return 1;
		}
		s = skip_ws(w, end);
		if (s >= end || *s != ',')
			break;
		s = skip_ws(s + 1, end);
	}
	return 0;
}

int
keypath_get(const struct keypath *kp, const char *p, size_t n,
    const char **vp, size_t *vn)
{
	const char *s = p, *end = p + n, *vs, *ve;
	size_t i;

	s = skip_ws(s, end);
	while (end > s && (end[-1] == ' ' || end[-1] == '\t' ||
	    end[-1] == '\n' || end[-1] == '\r'))
		end--;
	if (s >= end)
		return 0;
	for (i = 0; i < kp->n; i++) {
		const struct keypath_step *st = &kp->steps[i];
		if (st->type == KEYPATH_NAME) {
			if (*s != '{' || !get_member(st, s, end, &vs, &ve))
				return 0;
		} else {
			if (*s != '[' || !get_element(st, s, end, &vs, &ve))
				return 0;
		}
		s = vs;
		end = ve;
	}
	*vp = s;
	*vn = (size_t)(end - s);
	return 1;
}
