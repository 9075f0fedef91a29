/*
 * The configuration file and its environment overrides.
 *
 * The file is $AISTACK_CONFIG, else $XDG_CONFIG_HOME/aistack/aistack.conf
 * (or ~/.config/aistack/aistack.conf), else /etc/aistack/aistack.conf.  It
 * is INI: "[section]" or "[kind name]" headers, "key = value" lines, '#'
 * and ';' comments.  A value may be double-quoted to keep outer spaces.
 *
 * Precedence: flags (handled by each command) beat the environment, which
 * beats the file.  The environment name of a setting is
 * AISTACK_<SECTION>_<KEY>, upper-cased, every other character '_':
 * [ingest] max_backlog is AISTACK_INGEST_MAX_BACKLOG, [breaker postgres]
 * failures is AISTACK_BREAKER_POSTGRES_FAILURES.
 */
#ifndef AISTACK_CONFIG_H
#define AISTACK_CONFIG_H

#include <stddef.h>

#include "err.h"

struct config_entry {
	char *section;		/* "ingest", "upstream qdrant" */
	char *key;
	char *value;
	int line;
};

struct config {
	char path[4096];	/* the file read, "" when none */
	struct config_entry *entries;
	size_t n;
};

/*
 * Find and parse the configuration file into c (release with
 * config_release).  A missing file is an empty configuration unless it
 * was named by $AISTACK_CONFIG.  Syntax errors fail with EXIT_CONFIG and
 * name the file and line.
 */
int config_load(struct config *c, struct error *e);

/* Parse the file at path (must exist) into c. */
int config_load_file(struct config *c, const char *path, struct error *e);

/*
 * Parse the configuration text[0..len) into c as if read from the file
 * path (used in messages only).  The text need not be NUL-terminated.
 */
int config_parse(struct config *c, const char *path, const char *text,
    size_t len, struct error *e);

/*
 * The effective value of section/key: the environment override, else the
 * last value in the file, else NULL.  The result is borrowed.  When source
 * is not NULL (CONFIG_SOURCE_MAX bytes) it receives a description for
 * messages: "AISTACK_X_Y", "FILE:LINE", or "" when nothing was found.
 */
#define CONFIG_SOURCE_MAX	4200
const char *config_lookup(const struct config *c, const char *section,
    const char *key, char *source);

/* A setting of a command's section and the option it stands for. */
struct config_option {
	const char *key;	/* "max_backlog" */
	int opt;		/* the command's option code */
};

/*
 * A command's settings from the configuration: load it, and for each of
 * the n options that given(arg, opt) says no flag set, look the key up
 * in section and hand a value found to set(arg, opt, value, source, e).
 * Returns 0, or -1 with e when the file cannot be loaded or set fails
 * (the code EXIT_CONFIG then).
 */
int config_apply(const char *section, const struct config_option *opts,
    size_t n, int (*given)(void *arg, int opt),
    int (*set)(void *arg, int opt, const char *value, const char *source,
    struct error *e), void *arg, struct error *e);

/* Every file value of section/key, in file order (no environment); the
 * caller frees the array, not the strings.  Returns the count. */
size_t config_lookup_all(const struct config *c, const char *section,
    const char *key, const char ***values);

/*
 * Read the secret file path, every byte of it, into buf (*len bytes,
 * fewer than n; not NUL-terminated, nothing stripped: what a secret is
 * made of is the caller's rule).  Refused (EXIT_CONFIG): a symbolic link,
 * anything but a regular file (opened without blocking: a FIFO never
 * hangs the caller), a file owned by another user than the one running
 * (root excepted), a file that group or others can read or write, a file
 * of n bytes or more.  The caller wipes buf with explicit_bzero after
 * use.
 */
int secret_file_read(const char *path, char *buf, size_t n, size_t *len,
    struct error *e);

void config_release(struct config *c);

#endif
