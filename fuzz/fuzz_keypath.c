/*
 * The key-path parser and evaluator (lib/format/keypath.c).  The input is a path
 * list, a newline, and a JSON text.  Properties:
 * - the canonical spelling of a parsed list (keypath_list_str) parses
 *   again to the same paths and spells the same way;
 * - on a valid text, each path's value is a valid JSON value inside the
 *   text, and it is found exactly when jansson finds it by the same steps
 *   (object member, last one winning; array index, negative from the
 *   end; absent on a value of another type), with a JSON-equal value.
 */
#include <jansson.h>
#include <string.h>

#include "base/buf.h"
#include "base/err.h"
#include "format/json.h"
#include "format/keypath.h"
#include "fuzz.h"

static int
same_paths(const struct keypath_list *a, const struct keypath_list *b)
{
	size_t i, j;

	if (a->n != b->n)
		return 0;
	for (i = 0; i < a->n; i++) {
		if (a->v[i].n != b->v[i].n)
			return 0;
		for (j = 0; j < a->v[i].n; j++) {
			const struct keypath_step *x = &a->v[i].steps[j];
			const struct keypath_step *y = &b->v[i].steps[j];
			if (x->type != y->type)
				return 0;
			if (x->type == KEYPATH_INDEX && x->index != y->index)
				return 0;
			if (x->type == KEYPATH_NAME && (x->len != y->len ||
			    memcmp(x->name, y->name, x->len) != 0))
				return 0;
		}
	}
	return 1;
}

/* The reference: the same steps through jansson's tree (borrowed). */
static json_t *
walk(json_t *j, const struct keypath *kp)
{
	size_t i;

	for (i = 0; i < kp->n && j != NULL; i++) {
		const struct keypath_step *st = &kp->steps[i];
		if (st->type == KEYPATH_NAME) {
			j = json_is_object(j) ? json_object_getn(j, st->name,
			    st->len) : NULL;
		} else {
			long long k = st->index, n;
			if (!json_is_array(j))
				return NULL;
			n = (long long)json_array_size(j);
			if (k < 0)
				k += n;
			j = k >= 0 && k < n ? json_array_get(j, (size_t)k) : NULL;
		}
	}
	return j;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *nl = memchr(data, '\n', size);
	struct keypath_list l, l2;
	struct buf s1 = BUF_INIT, s2 = BUF_INIT;
	struct error e;
	const char *doc, *vp;
	size_t dn, vn, i;
	json_error_t je;
	json_t *root;
	char *list;

	if (nl == NULL)
		nl = data + size;
	list = fuzz_strndup(data, (size_t)(nl - data));
	memset(&e, 0, sizeof(e));
	if (memchr(list, '\0', (size_t)(nl - data)) != NULL ||
	    keypath_parse(list, &l, &e) == -1) {
		free(list);
		return 0;
	}
	FUZZ_CHECK(keypath_list_str(&l, &s1) == 0 && s1.len > 0);
	FUZZ_CHECK(buf_cstr(&s1) != NULL);
	if (keypath_parse(s1.data, &l2, &e) != 0) {
		fprintf(stderr, "keypath: %s -> %s: %s\n", list, s1.data, e.msg);
		FUZZ_CHECK(!"the canonical spelling parses");
	}
	FUZZ_CHECK(same_paths(&l, &l2));
	FUZZ_CHECK(keypath_list_str(&l2, &s2) == 0);
	FUZZ_CHECK(s1.len == s2.len && memcmp(s1.data, s2.data, s1.len) == 0);
	keypath_list_release(&l2);

	doc = nl < data + size ? (const char *)nl + 1 : "";
	dn = nl < data + size ? size - (size_t)(nl + 1 - data) : 0;
	if (json_scan_value(doc, dn, NULL) == 0) {
		root = json_loadb(doc, dn, JSON_DECODE_ANY | JSON_ALLOW_NUL |
		    JSON_DECODE_INT_AS_REAL, &je);
		for (i = 0; i < l.n; i++) {
			json_t *want = root != NULL ? walk(root, &l.v[i]) : NULL;
			int got = keypath_get(&l.v[i], doc, dn, &vp, &vn);

			if (got) {
				json_t *v;

				FUZZ_CHECK(vp >= doc && vp + vn <= doc + dn);
				FUZZ_CHECK(json_scan_value(vp, vn, NULL) == 0);
				if (root == NULL)
					continue;	/* a number jansson cannot hold */
				v = json_loadb(vp, vn, JSON_DECODE_ANY |
				    JSON_ALLOW_NUL | JSON_DECODE_INT_AS_REAL, &je);
				FUZZ_CHECK(v != NULL && want != NULL);
				FUZZ_CHECK(json_equal(v, want));
				json_decref(v);
			} else if (root != NULL)
				FUZZ_CHECK(want == NULL);
		}
		json_decref(root);
	}
	keypath_list_release(&l);
	buf_release(&s1);
	buf_release(&s2);
	free(list);
	return 0;
}
