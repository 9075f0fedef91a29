/* config_parse: the parser of lib/base/config.c on text in memory (fuzzed by
 * fuzz/fuzz_config.c). */
#include <string.h>

#include "base/config.h"
#include "base/exitcode.h"
#include "unit.h"

TEST(config_parse_text_without_nul)
{
	/* the text ends in the middle of a buffer: nothing after len is read */
	static const char text[] = "[a]\nk = v\nj = wxyz";
	struct config c;
	struct error e;

	CHECK_INT(config_parse(&c, "mem.conf", text, sizeof(text) - 3, &e), 0);
	CHECK_INT(c.n, 2);
	CHECK_STR(c.entries[1].key, "j");
	CHECK_STR(c.entries[1].value, "wx");
	CHECK_STR(c.path, "mem.conf");
	config_release(&c);
}

TEST(config_parse_refuses_nul_and_names_the_line)
{
	struct config c;
	struct error e;

	CHECK_INT(config_parse(&c, "mem.conf", "[a]\nk = v\0w\n", 12, &e), -1);
	CHECK_INT(e.code, EXIT_CONFIG);
	CHECK_STR(e.msg, "mem.conf: NUL byte in file");
	CHECK_INT(config_parse(&c, "mem.conf", "[a]\nk = v\nbad\n", 14, &e), -1);
	CHECK_STR(e.msg, "mem.conf:3: expected \"key = value\"");
	CHECK_INT(c.n, 0);
	CHECK_INT(config_parse(&c, "mem.conf", "", 0, &e), 0);
	CHECK_INT(c.n, 0);
}
