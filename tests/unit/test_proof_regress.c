/* Regression tests for what the fuzz targets found (fuzz/README.md). */
#include <string.h>

#include "base/buf.h"
#include "format/canon.h"
#include "format/keypath.h"
#include "unit.h"

/* Finding 1: normalizing a string longer than the scratch buffer read
 * freed memory (caught here by ASan in SANITIZE=1 and by valgrind). */
TEST(canon_normalize_long_string)
{
	struct canon *c = canon_new();
	struct buf in = BUF_INIT, out = BUF_INIT, want = BUF_INIT;
	int i;

	CHECK(c != NULL);
	buf_printf(&in, "{\"t\":\"  \\u0041");
	buf_printf(&want, "{\"t\":\"a");
	for (i = 0; i < 300; i++) {
		buf_printf(&in, "B  c");
		buf_printf(&want, "b c");
	}
	buf_printf(&in, "  \"}");
	buf_printf(&want, "\"}");
	CHECK_INT(canon_value(c, in.data, in.len, CANON_TRIM | CANON_LOWER |
	    CANON_SPACE, &out), 0);
	CHECK(out.len == want.len && memcmp(out.data, want.data, out.len) == 0);
	canon_free(c);
	buf_release(&in);
	buf_release(&out);
	buf_release(&want);
}

/* Finding 3: a path starting with an index is spelled with its dot. */
TEST(keypath_spelling_of_leading_index)
{
	struct keypath_list l, l2;
	struct buf b = BUF_INIT;
	struct error e;

	CHECK_INT(keypath_parse(".[5],.a[-1],.[0].b", &l, &e), 0);
	CHECK_INT(keypath_list_str(&l, &b), 0);
	CHECK_STR(buf_cstr(&b), ".[5],.a[-1],.[0].b");
	CHECK_INT(keypath_parse(b.data, &l2, &e), 0);
	CHECK_INT(l2.n, 3);
	keypath_list_release(&l);
	keypath_list_release(&l2);
	buf_release(&b);
}
