/*
 * The configuration parser (lib/base/config.c config_parse).  Properties: it
 * never crashes or leaks; every entry it keeps has a section, a key of
 * [a-z0-9_-] and a value on one line; config_lookup finds the last value
 * of each key; and writing the entries back out as INI ("[section]",
 * key = "value") and parsing that again gives the same entries.
 */
#include <string.h>

#include "base/buf.h"
#include "base/config.h"
#include "fuzz.h"

static int
key_ok(const char *k)
{
	if (*k == '\0')
		return 0;
	for (; *k != '\0'; k++)
		if (!((*k >= 'a' && *k <= 'z') || (*k >= '0' && *k <= '9') ||
		    *k == '_' || *k == '-'))
			return 0;
	return 1;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct config c, c2;
	struct error e;
	struct buf b = BUF_INIT;
	const char *last = NULL;
	size_t i;

	memset(&e, 0, sizeof(e));
	if (config_parse(&c, "fuzz.conf", (const char *)data, size, &e) == -1) {
		FUZZ_CHECK(e.code != 0 && e.msg[0] != '\0');
		FUZZ_CHECK(c.n == 0 && c.entries == NULL);
		return 0;
	}
	for (i = 0; i < c.n; i++) {
		const struct config_entry *en = &c.entries[i];

		FUZZ_CHECK(en->section[0] != '\0');
		FUZZ_CHECK(key_ok(en->key));
		FUZZ_CHECK(strchr(en->value, '\n') == NULL);
		FUZZ_CHECK(en->line >= 1);
		if (i > 0)
			FUZZ_CHECK(en->line > c.entries[i - 1].line);
		/* write it back: a header whenever the section changes */
		if (i == 0 || strcmp(en->section, c.entries[i - 1].section) != 0)
			buf_printf(&b, "[%s]\n", en->section);
		buf_printf(&b, "%s = \"%s\"\n", en->key, en->value);
	}
	/* config_lookup: the last value wins (no AISTACK_* variables here) */
	if (c.n > 0) {
		const struct config_entry *en = &c.entries[c.n - 1];

		if (strlen(en->section) + strlen(en->key) < 400 &&
		    strchr(en->section, ' ') == NULL) {
			last = config_lookup(&c, en->section, en->key, NULL);
			FUZZ_CHECK(last != NULL && strcmp(last, en->value) == 0);
		}
	}
	memset(&e, 0, sizeof(e));
	FUZZ_CHECK(config_parse(&c2, "again.conf", b.data != NULL ? b.data : "",
	    b.len, &e) == 0);
	FUZZ_CHECK(c2.n == c.n);
	for (i = 0; i < c.n; i++) {
		FUZZ_CHECK(strcmp(c.entries[i].section, c2.entries[i].section) == 0);
		FUZZ_CHECK(strcmp(c.entries[i].key, c2.entries[i].key) == 0);
		FUZZ_CHECK(strcmp(c.entries[i].value, c2.entries[i].value) == 0);
	}
	config_release(&c2);
	config_release(&c);
	buf_release(&b);
	return 0;
}
