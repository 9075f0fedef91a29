/*
 * The consumer file parser (lib/stream/consumer.c consumer_parse).  Properties:
 * no crash or leak; an accepted file has pending >= committed and a
 * NUL-terminated "updated"; a refused one says why with EXIT_DATAERR;
 * and the state written back in the consumer file's own format parses to
 * the same values.
 */
#include <string.h>

#include "base/buf.h"
#include "base/exitcode.h"
#include "format/json.h"
#include "stream/consumer.h"
#include "fuzz.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct consumer_state st, again;
	struct error e;
	struct buf b = BUF_INIT;

	memset(&e, 0, sizeof(e));
	memset(&st, 0x5a, sizeof(st));
	if (consumer_parse((const char *)data, size, &st, &e) == -1) {
		FUZZ_CHECK(e.code == EXIT_DATAERR && e.msg[0] != '\0');
		return 0;
	}
	FUZZ_CHECK(st.pending >= st.committed);
	FUZZ_CHECK(memchr(st.updated, '\0', sizeof(st.updated)) != NULL);
	buf_printf(&b, "{\"committed\":%llu,\"pending\":%llu,\"records\":%llu,"
	    "\"updated\":\"", (unsigned long long)st.committed,
	    (unsigned long long)st.pending, (unsigned long long)st.records);
	/* a value cut at 31 bytes may end inside a character; the
	 * commands check before printing it, and so does this */
	if (utf8_valid(st.updated, strlen(st.updated)))
		buf_json_escape(&b, st.updated, strlen(st.updated));
	buf_printf(&b, "\"}\n");
	if (b.data == NULL)
		abort();
	FUZZ_CHECK(consumer_parse(b.data, b.len, &again, &e) == 0);
	FUZZ_CHECK(again.committed == st.committed);
	FUZZ_CHECK(again.pending == st.pending);
	FUZZ_CHECK(again.records == st.records);
	buf_release(&b);
	return 0;
}
